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
    /// Per producer, the numbers of the events classed new.
    claimed: BTreeMap<&'a str, SeqRanges>,
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
    /// the batch's own writes are done. Producers with nothing new are left out.
    pub fn taken(&self) -> BTreeMap<&'a str, SeqRanges> {
        self.claimed
            .iter()
            .filter(|(_, ranges)| !ranges.is_empty())
            .map(|(producer, ranges)| (*producer, ranges.clone()))
            .collect()
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
///
/// A batch holds few producers, each in long runs (a frame is one producer's events), so
/// the producer of the previous event is tried first and the maps are consulted only when
/// the producer changes.
pub fn classify_batch<'a>(
    events: &'a [SourcedEvent],
    taken: &HashMap<String, SeqRanges>,
) -> BatchClasses<'a> {
    /// A producer of the batch: what it had taken before, and what the batch claims.
    struct Producer<'t> {
        stored: Option<&'t SeqRanges>,
        claimed: SeqRanges,
    }
    let mut producers: Vec<(&'a str, Producer<'_>)> = Vec::new();
    let mut index_of: HashMap<&'a str, usize> = HashMap::new();
    let mut current: Option<usize> = None;
    let mut classes = Vec::with_capacity(events.len());
    for sourced in events {
        let producer = sourced.event.proxy_instance.as_str();
        let slot = match current {
            Some(slot) if producers[slot].0 == producer => slot,
            _ => *index_of.entry(producer).or_insert_with(|| {
                producers.push((
                    producer,
                    Producer {
                        stored: taken.get(producer),
                        claimed: SeqRanges::default(),
                    },
                ));
                producers.len() - 1
            }),
        };
        current = Some(slot);
        let seq = sourced.event.instance_seq;
        let entry = &mut producers[slot].1;
        let stored = entry.stored.is_some_and(|ranges| ranges.contains(seq));
        if stored || entry.claimed.contains(seq) {
            classes.push(EventClass::Duplicate);
        } else {
            entry.claimed.insert(seq);
            classes.push(EventClass::New);
        }
    }
    let claimed = producers
        .into_iter()
        .map(|(producer, entry)| (producer, entry.claimed))
        .collect();
    BatchClasses {
        events,
        classes,
        claimed,
    }
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
