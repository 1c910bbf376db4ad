//! The exactly-once rules, once: which events of a batch a projection takes, judged by
//! their producer's sequence number, and what it remembers afterwards.
//!
//! Every event carries its producer (`proxy_instance`, one per proxy process) and that
//! producer's sequence number (`instance_seq`, 1, 2, 3, …), stamped once and never again:
//! a record the proxy appends twice (an append that timed out but had succeeded, a spooled
//! batch sent again) carries the same numbers both times. A projection keeps, per producer,
//! the numbers it has taken as ranges ([`SeqRanges`]): one small item per producer, not
//! one per event. An event is taken when its number is not in its producer's ranges and
//! no earlier event of the same batch claimed it ([`classify_batch`]).
//!
//! Redelivery of the same log records (a consumer retry, a Lambda bisecting its batch)
//! is recognised by position, not here: see `docs/exactly-once.md` for how each backend
//! makes a batch's writes idempotent by the log position they cover.

mod seq_ranges;
#[cfg(test)]
mod tests;

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

pub use seq_ranges::{SeqRanges, SeqRangesError};

use crate::counters::{ApplyReport, SourcedEvent};

/// How one event of a batch stands against what the projection has taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventClass {
    /// Taken by this batch: its number is new to its producer's ranges and it is the first
    /// event of the batch with that number.
    New,
    /// Already taken, by an earlier batch or earlier in this one.
    Duplicate,
}

/// The classification of a batch: one class per event, in input order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchClasses<'a> {
    events: &'a [SourcedEvent],
    /// One class per input event, in input order.
    pub classes: Vec<EventClass>,
}

impl<'a> BatchClasses<'a> {
    /// The events this batch takes, in input order.
    pub fn new_events(&self) -> impl Iterator<Item = &'a SourcedEvent> + '_ {
        self.events
            .iter()
            .zip(&self.classes)
            .filter(|(_, class)| **class == EventClass::New)
            .map(|(sourced, _)| sourced)
    }

    /// Per producer, the numbers this batch takes: what to add to the stored ranges once
    /// the batch's own writes are done.
    pub fn taken(&self) -> BTreeMap<&'a str, SeqRanges> {
        let mut taken: BTreeMap<&'a str, SeqRanges> = BTreeMap::new();
        for sourced in self.new_events() {
            taken
                .entry(sourced.event.proxy_instance.as_str())
                .or_default()
                .insert(sourced.event.instance_seq);
        }
        taken
    }

    /// What `Counters::apply` reports once the new events are counted.
    pub fn report(&self) -> ApplyReport {
        let counted = self
            .classes
            .iter()
            .filter(|class| **class == EventClass::New)
            .count();
        ApplyReport {
            counted,
            duplicates: self.classes.len() - counted,
        }
    }
}

/// The distinct producers of a batch, in order of first occurrence: whose ranges a
/// backend loads before classifying.
pub fn producers_of(events: &[SourcedEvent]) -> Vec<&str> {
    let mut seen = std::collections::HashSet::new();
    events
        .iter()
        .map(|sourced| sourced.event.proxy_instance.as_str())
        .filter(|producer| seen.insert(*producer))
        .collect()
}

/// Classifies every event of a batch against the ranges already taken per producer
/// (`taken`; a producer absent from it has taken nothing).
pub fn classify_batch<'a>(
    events: &'a [SourcedEvent],
    taken: &HashMap<String, SeqRanges>,
) -> BatchClasses<'a> {
    let mut claimed: HashMap<&str, SeqRanges> = HashMap::new();
    let classes = events
        .iter()
        .map(|sourced| {
            let producer = sourced.event.proxy_instance.as_str();
            let seq = sourced.event.instance_seq;
            let stored = taken
                .get(producer)
                .is_some_and(|ranges| ranges.contains(seq));
            let in_batch = claimed.entry(producer).or_default();
            if stored || in_batch.contains(seq) {
                EventClass::Duplicate
            } else {
                in_batch.insert(seq);
                EventClass::New
            }
        })
        .collect();
    BatchClasses { events, classes }
}

/// Orders two log positions of the same partition. Positions are decimal numbers as
/// text (the embedded log's row ids, Kinesis sequence numbers of up to 128 digits), so
/// the shorter one (leading zeros aside) is smaller, and equal lengths compare as text.
pub fn compare_positions(left: &str, right: &str) -> Ordering {
    let left = left.trim_start_matches('0');
    let right = right.trim_start_matches('0');
    left.len().cmp(&right.len()).then_with(|| left.cmp(right))
}

/// A position in a form whose plain text order is its numeric order (three digits of
/// length, then the digits), for stores that compare strings: DynamoDB conditions.
pub fn sortable_position(position: &str) -> String {
    let digits = position.trim_start_matches('0');
    format!("{:03}{digits}", digits.len())
}
