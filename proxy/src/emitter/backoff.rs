//! Retry pauses: capped exponential backoff, spread with jitter.

use std::time::Duration;

/// The longest pause between two retries.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Spreads retries of many proxies: a delay between half and all of `backoff`.
pub fn with_jitter(backoff: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let fraction = 0.5 + (random % 1000) as f64 / 2000.0;
    backoff.mul_f64(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_between_half_and_all_of_the_backoff() {
        let backoff = Duration::from_millis(800);
        for _ in 0..200 {
            let delay = with_jitter(backoff);
            assert!(delay >= backoff / 2 && delay <= backoff, "{delay:?}");
        }
    }
}
