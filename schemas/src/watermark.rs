//! Completeness: which events the consumer has seen from each proxy instance, by
//! `instance_seq`, and up to when the counters can be called complete.
//!
//! Every proxy process numbers its events 1, 2, 3, … A missing number between two seen
//! ones is an event that did not (yet) reach the projections. [`InstanceProgress`] keeps,
//! per instance, the highest number seen with nothing missing below it, and the runs seen
//! above it; it stays small because it stores runs, not numbers.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// A run of sequence numbers seen above a gap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeqRun {
    pub first: u64,
    pub last: u64,
    /// The latest `occurred_at` among the run's events.
    pub latest_at: DateTime<Utc>,
}

/// What the consumer has seen of one proxy instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceProgress {
    pub proxy_instance: String,
    /// Every number from 1 to this one has been seen.
    pub contiguous_through: u64,
    /// The latest `occurred_at` among the events up to `contiguous_through`.
    pub contiguous_at: Option<DateTime<Utc>>,
    /// Runs seen above `contiguous_through`, sorted, separated by gaps.
    pub runs: Vec<SeqRun>,
    /// The latest `occurred_at` seen from this instance.
    pub newest_at: Option<DateTime<Utc>>,
}

/// A range of sequence numbers not seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    pub proxy_instance: String,
    pub first_missing: u64,
    pub last_missing: u64,
}

impl InstanceProgress {
    /// An instance nothing has been seen of yet.
    pub fn new(proxy_instance: impl Into<String>) -> Self {
        Self {
            proxy_instance: proxy_instance.into(),
            ..Self::default()
        }
    }

    /// Records that event `seq` (which occurred at `at`) was seen. Seeing it again changes
    /// nothing.
    pub fn observe(&mut self, seq: u64, at: DateTime<Utc>) {
        self.newest_at = Some(self.newest_at.map_or(at, |newest| newest.max(at)));
        if seq == 0 || seq <= self.contiguous_through {
            return;
        }
        if seq == self.contiguous_through + 1 {
            self.contiguous_through = seq;
            self.contiguous_at = Some(self.contiguous_at.map_or(at, |known| known.max(at)));
        } else if let Some(run) = self
            .runs
            .iter_mut()
            .find(|run| (run.first..=run.last).contains(&seq))
        {
            run.latest_at = run.latest_at.max(at);
        } else {
            let index = self.runs.partition_point(|run| run.last < seq);
            self.runs.insert(
                index,
                SeqRun {
                    first: seq,
                    last: seq,
                    latest_at: at,
                },
            );
            self.merge_runs();
        }
        // A run that now starts right after the contiguous part joins it.
        while let Some(first) = self.runs.first()
            && first.first == self.contiguous_through + 1
        {
            let joined = self.runs.remove(0);
            self.contiguous_through = joined.last;
            self.contiguous_at = Some(
                self.contiguous_at
                    .map_or(joined.latest_at, |known| known.max(joined.latest_at)),
            );
        }
    }

    fn merge_runs(&mut self) {
        let mut merged: Vec<SeqRun> = Vec::with_capacity(self.runs.len());
        for run in self.runs.drain(..) {
            match merged.last_mut() {
                Some(last) if run.first <= last.last + 1 => {
                    last.last = last.last.max(run.last);
                    last.latest_at = last.latest_at.max(run.latest_at);
                }
                _ => merged.push(run),
            }
        }
        self.runs = merged;
    }

    /// The numbers missing between the contiguous part and the runs above it.
    pub fn gaps(&self) -> Vec<Gap> {
        let mut gaps = Vec::new();
        let mut after = self.contiguous_through;
        for run in &self.runs {
            gaps.push(Gap {
                proxy_instance: self.proxy_instance.clone(),
                first_missing: after + 1,
                last_missing: run.first - 1,
            });
            after = run.last;
        }
        gaps
    }
}

/// The time through which every event is known to be counted: the newest event seen,
/// held back to the contiguous part of any instance with a gap, minus `allowance` (the
/// longest a call can take between its `occurred_at` and its event, so an event still in
/// flight is never claimed). `None` before anything was seen.
pub fn complete_through(
    instances: &[InstanceProgress],
    allowance: Duration,
) -> Option<DateTime<Utc>> {
    let newest = instances
        .iter()
        .filter_map(|instance| instance.newest_at)
        .max()?;
    let held_back = instances
        .iter()
        .filter(|instance| !instance.runs.is_empty())
        .map(|instance| instance.contiguous_at.unwrap_or(DateTime::<Utc>::MIN_UTC))
        .min();
    let through = held_back.map_or(newest, |held| held.min(newest));
    through.checked_sub_signed(allowance)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 29, 10, minute, 0).unwrap()
    }

    #[test]
    fn numbers_in_order_stay_contiguous() {
        let mut progress = InstanceProgress::new("p");
        for seq in 1..=5 {
            progress.observe(seq, at(seq as u32));
        }
        progress.observe(3, at(3));
        assert_eq!(progress.contiguous_through, 5);
        assert_eq!(progress.contiguous_at, Some(at(5)));
        assert!(progress.runs.is_empty());
        assert!(progress.gaps().is_empty());
    }

    #[test]
    fn a_gap_is_reported_until_it_fills_in_any_order() {
        let mut progress = InstanceProgress::new("p");
        for seq in [1, 2, 5, 6, 9, 7] {
            progress.observe(seq, at(seq as u32));
        }
        assert_eq!(progress.contiguous_through, 2);
        assert_eq!(
            progress.gaps(),
            vec![
                Gap {
                    proxy_instance: "p".into(),
                    first_missing: 3,
                    last_missing: 4
                },
                Gap {
                    proxy_instance: "p".into(),
                    first_missing: 8,
                    last_missing: 8
                },
            ]
        );
        progress.observe(4, at(4));
        progress.observe(3, at(3));
        assert_eq!(progress.contiguous_through, 7);
        progress.observe(8, at(8));
        assert_eq!(progress.contiguous_through, 9);
        assert!(progress.gaps().is_empty());
        assert_eq!(progress.contiguous_at, Some(at(9)));
    }

    #[test]
    fn completeness_is_held_back_by_gaps_and_the_allowance() {
        let mut steady = InstanceProgress::new("steady");
        for seq in 1..=30 {
            steady.observe(seq, at(seq as u32));
        }
        let mut holed = InstanceProgress::new("holed");
        holed.observe(1, at(1));
        holed.observe(2, at(4));
        holed.observe(4, at(20));
        let allowance = Duration::minutes(1);
        assert_eq!(complete_through(&[steady.clone()], allowance), Some(at(29)));
        assert_eq!(
            complete_through(&[steady.clone(), holed.clone()], allowance),
            Some(at(3)),
            "held back to where the holed instance is still contiguous"
        );
        holed.observe(3, at(5));
        assert_eq!(complete_through(&[steady, holed], allowance), Some(at(29)));
        assert_eq!(complete_through(&[], allowance), None);
    }
}
