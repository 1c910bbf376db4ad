//! A set of sequence numbers kept as sorted ranges: which numbers of one producer a
//! projection has taken. A producer numbers its events 1, 2, 3, … and they mostly arrive in
//! order, so the set is nearly always one range, whatever the count.

use std::fmt;
use std::str::FromStr;

/// Sorted, disjoint, non-adjacent inclusive ranges of sequence numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeqRanges {
    ranges: Vec<(u64, u64)>,
}

impl SeqRanges {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `seq` is in the set.
    pub fn contains(&self, seq: u64) -> bool {
        let index = self.ranges.partition_point(|(_, last)| *last < seq);
        self.ranges
            .get(index)
            .is_some_and(|(first, _)| *first <= seq)
    }

    /// Adds `seq`; adding a number already present changes nothing.
    pub fn insert(&mut self, seq: u64) {
        let index = self
            .ranges
            .partition_point(|(_, last)| last.saturating_add(1) < seq);
        match self.ranges.get_mut(index) {
            Some((first, last)) if *first <= seq.saturating_add(1) => {
                *first = (*first).min(seq);
                *last = (*last).max(seq);
                // The grown range may now touch the next one.
                if let Some(&(next_first, next_last)) = self.ranges.get(index + 1)
                    && self.ranges[index].1.saturating_add(1) >= next_first
                {
                    self.ranges[index].1 = self.ranges[index].1.max(next_last);
                    self.ranges.remove(index + 1);
                }
            }
            _ => self.ranges.insert(index, (seq, seq)),
        }
    }

    /// Adds every number of `other`.
    pub fn extend(&mut self, other: &Self) {
        let mut all: Vec<(u64, u64)> = self.ranges.iter().chain(&other.ranges).copied().collect();
        all.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(all.len());
        for (first, last) in all {
            match merged.last_mut() {
                Some((_, previous_last)) if previous_last.saturating_add(1) >= first => {
                    *previous_last = (*previous_last).max(last);
                }
                _ => merged.push((first, last)),
            }
        }
        self.ranges = merged;
    }

    /// The ranges, oldest first.
    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.ranges
    }

    /// Whether nothing is in the set.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

/// `1-500,503,510-900`: the form stored in the backends.
impl fmt::Display for SeqRanges {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, (first, last)) in self.ranges.iter().enumerate() {
            if index > 0 {
                formatter.write_str(",")?;
            }
            if first == last {
                write!(formatter, "{first}")?;
            } else {
                write!(formatter, "{first}-{last}")?;
            }
        }
        Ok(())
    }
}

/// Why a stored range list could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sequence ranges {text:?} are damaged: {reason}")]
pub struct SeqRangesError {
    pub text: String,
    pub reason: &'static str,
}

impl FromStr for SeqRanges {
    type Err = SeqRangesError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let damaged = |reason| SeqRangesError {
            text: text.to_owned(),
            reason,
        };
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        for part in text.split(',').filter(|part| !part.is_empty()) {
            let (first, last) = match part.split_once('-') {
                Some((first, last)) => (first, last),
                None => (part, part),
            };
            let first: u64 = first.parse().map_err(|_| damaged("not a number"))?;
            let last: u64 = last.parse().map_err(|_| damaged("not a number"))?;
            if last < first {
                return Err(damaged("a range ends before it starts"));
            }
            if ranges
                .last()
                .is_some_and(|(_, previous)| previous.saturating_add(1) >= first)
            {
                return Err(damaged("ranges are not sorted and apart"));
            }
            ranges.push((first, last));
        }
        Ok(Self { ranges })
    }
}
