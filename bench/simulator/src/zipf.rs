//! Customers by a Zipf distribution: the customer of rank `k` (1-based) gets a share of
//! the calls proportional to `1 / k^s`.

use crate::rng::SeededRng;

/// A Zipf distribution over `0..n` (rank 0 is the busiest), sampled by its cumulative
/// distribution.
#[derive(Debug, Clone)]
pub struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    /// Ranks `0..n` with exponent `exponent` (1.0 is the classic Zipf's law). `n` > 0.
    pub fn new(n: usize, exponent: f64) -> Self {
        let weights: Vec<f64> = (1..=n).map(|rank| (rank as f64).powf(-exponent)).collect();
        let total: f64 = weights.iter().sum();
        let mut running = 0.0;
        let cumulative = weights
            .iter()
            .map(|weight| {
                running += weight / total;
                running
            })
            .collect();
        Self { cumulative }
    }

    /// The share of draws that land on `rank`.
    pub fn share(&self, rank: usize) -> f64 {
        let below = if rank == 0 {
            0.0
        } else {
            self.cumulative[rank - 1]
        };
        self.cumulative.get(rank).map_or(0.0, |upto| upto - below)
    }

    /// A rank, drawn with the distribution's weights.
    pub fn sample(&self, rng: &mut SeededRng) -> usize {
        let draw = rng.next_unit();
        self.cumulative
            .partition_point(|upto| *upto <= draw)
            .min(self.cumulative.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_follow_one_over_rank_and_add_up_to_one() {
        let zipf = Zipf::new(1000, 1.0);
        let harmonic: f64 = (1..=1000).map(|rank| 1.0 / rank as f64).sum();
        assert!((zipf.share(0) - 1.0 / harmonic).abs() < 1e-12);
        assert!((zipf.share(9) - zipf.share(0) / 10.0).abs() < 1e-12);
        let total: f64 = (0..1000).map(|rank| zipf.share(rank)).sum();
        assert!((total - 1.0).abs() < 1e-9);
    }

    #[test]
    fn sampling_is_deterministic_per_seed_and_matches_the_shares() {
        let zipf = Zipf::new(1000, 1.0);
        let draws = |seed| {
            let mut rng = SeededRng::new(seed);
            (0..100_000)
                .map(|_| zipf.sample(&mut rng))
                .collect::<Vec<_>>()
        };
        let first = draws(42);
        assert_eq!(first, draws(42));
        assert_ne!(first, draws(43));
        let top = first.iter().filter(|rank| **rank == 0).count() as f64 / 100_000.0;
        assert!((top - zipf.share(0)).abs() < 0.005, "top share {top}");
        assert!(first.iter().all(|rank| *rank < 1000));
        assert!(
            first.iter().any(|rank| *rank > 500),
            "the tail is drawn too"
        );
    }
}
