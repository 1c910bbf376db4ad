//! The exactly-once rules of `Counters::apply`, once: how each event of a batch stands
//! against the dedupe marks (`event_id` → source), and which marks the batch writes.
//!
//! Every backend reads the marks it needs, calls [`classify_batch`], and writes the marks
//! and the counts of the [`MarkClass::New`] events in one atomic step. The function is pure;
//! a backend that learns the stored marks only when a conditional write fails (DynamoDB)
//! calls it again with the marks it has learned.

use std::collections::HashMap;

use schemas::UsageEvent;
use uuid::Uuid;

use crate::counters::{ApplyReport, SourcedEvent};

/// How one event of a batch stands against the dedupe marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkClass {
    /// Counted by this batch: the first occurrence of its `event_id` in the batch, and no
    /// mark exists yet. Its mark (`event_id` → its source) is to be written with its counts.
    New,
    /// Owned by its source without being counted now: the stored mark names its source (an
    /// earlier attempt of the same record), or an earlier occurrence in this batch from the
    /// same source claims the mark.
    Owned,
    /// A duplicate: the mark, stored or claimed earlier in this batch, names another source.
    Duplicate,
}

impl MarkClass {
    /// Whether the event's mark belongs to its source (it goes into the Parquet projection).
    pub fn is_owned(self) -> bool {
        matches!(self, Self::New | Self::Owned)
    }
}

/// The classification of a batch: one class per event, in input order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchMarks<'a> {
    events: &'a [SourcedEvent],
    /// One class per input event, in input order.
    pub classes: Vec<MarkClass>,
}

impl<'a> BatchMarks<'a> {
    /// The events whose marks this batch writes (class [`MarkClass::New`]), in input order;
    /// each mark is `event.event_id` → `source`. Their counts are the batch's increments.
    pub fn new_marks(&self) -> impl Iterator<Item = &'a SourcedEvent> + '_ {
        self.events
            .iter()
            .zip(&self.classes)
            .filter(|(_, class)| **class == MarkClass::New)
            .map(|(sourced, _)| sourced)
    }

    /// The events counted by this batch (those of [`BatchMarks::new_marks`]).
    pub fn counted_events(&self) -> impl Iterator<Item = &'a UsageEvent> + '_ {
        self.new_marks().map(|sourced| &sourced.event)
    }

    /// What `Counters::apply` reports once the new marks and their counts are written.
    pub fn report(&self) -> ApplyReport {
        let count = |wanted: MarkClass| {
            self.classes
                .iter()
                .filter(|class| **class == wanted)
                .count()
        };
        ApplyReport {
            counted: count(MarkClass::New),
            duplicates: count(MarkClass::Duplicate),
            owned: self.classes.iter().map(|class| class.is_owned()).collect(),
        }
    }
}

/// Classifies every event of a batch against the marks already stored for its `event_id`s
/// (`stored_marks`: `event_id` → source; ids absent from it have no mark).
///
/// Rules, per event in input order:
/// - a stored mark naming its source: [`MarkClass::Owned`] (a retry of the same record);
/// - a stored mark naming another source: [`MarkClass::Duplicate`];
/// - no stored mark, first occurrence of the `event_id` in the batch: [`MarkClass::New`];
/// - no stored mark, a later occurrence: `Owned` if the first occurrence has the same
///   source, `Duplicate` otherwise.
pub fn classify_batch<'a>(
    events: &'a [SourcedEvent],
    stored_marks: &HashMap<Uuid, String>,
) -> BatchMarks<'a> {
    let mut claimed_in_batch: HashMap<Uuid, &str> = HashMap::with_capacity(events.len());
    let classes = events
        .iter()
        .map(|sourced| {
            let event_id = sourced.event.event_id;
            let owner = stored_marks
                .get(&event_id)
                .map(String::as_str)
                .or_else(|| claimed_in_batch.get(&event_id).copied());
            match owner {
                Some(owner) if owner == sourced.source => MarkClass::Owned,
                Some(_) => MarkClass::Duplicate,
                None => {
                    claimed_in_batch.insert(event_id, &sourced.source);
                    MarkClass::New
                }
            }
        })
        .collect();
    BatchMarks { events, classes }
}

/// The distinct `event_id`s of a batch, in order of first occurrence: the marks a backend
/// has to look up before classifying.
pub fn distinct_event_ids(events: &[SourcedEvent]) -> Vec<Uuid> {
    let mut seen = std::collections::HashSet::new();
    events
        .iter()
        .map(|sourced| sourced.event.event_id)
        .filter(|event_id| seen.insert(*event_id))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{day, event_on};
    use proptest::prelude::*;
    use schemas::Outcome;

    fn event() -> UsageEvent {
        event_on("c", day(0), "m", Outcome::Success, 1, 1)
    }

    fn sourced(event: &UsageEvent, source: &str) -> SourcedEvent {
        SourcedEvent {
            source: source.to_owned(),
            event: event.clone(),
        }
    }

    fn marks(entries: &[(&UsageEvent, &str)]) -> HashMap<Uuid, String> {
        entries
            .iter()
            .map(|(event, source)| (event.event_id, (*source).to_owned()))
            .collect()
    }

    #[test]
    fn an_unmarked_event_is_new_and_its_mark_is_written() {
        let first = event();
        let batch = [sourced(&first, "p/1")];
        let classified = classify_batch(&batch, &HashMap::new());
        assert_eq!(classified.classes, vec![MarkClass::New]);
        let written: Vec<_> = classified.new_marks().collect();
        assert_eq!(written, vec![&batch[0]]);
        let report = classified.report();
        assert_eq!((report.counted, report.duplicates), (1, 0));
        assert_eq!(report.owned, vec![true]);
    }

    #[test]
    fn a_mark_of_the_same_source_is_owned_and_not_counted_again() {
        let first = event();
        let batch = [sourced(&first, "p/1")];
        let classified = classify_batch(&batch, &marks(&[(&first, "p/1")]));
        assert_eq!(classified.classes, vec![MarkClass::Owned]);
        assert_eq!(classified.new_marks().count(), 0);
        let report = classified.report();
        assert_eq!((report.counted, report.duplicates), (0, 0));
        assert_eq!(report.owned, vec![true]);
    }

    #[test]
    fn a_mark_of_another_source_makes_a_duplicate() {
        let first = event();
        let batch = [sourced(&first, "p/2")];
        let classified = classify_batch(&batch, &marks(&[(&first, "p/1")]));
        assert_eq!(classified.classes, vec![MarkClass::Duplicate]);
        let report = classified.report();
        assert_eq!((report.counted, report.duplicates), (0, 1));
        assert_eq!(report.owned, vec![false]);
    }

    #[test]
    fn a_repeat_inside_the_batch_from_another_source_is_a_duplicate() {
        let first = event();
        let batch = [sourced(&first, "p/1"), sourced(&first, "p/2")];
        let classified = classify_batch(&batch, &HashMap::new());
        assert_eq!(
            classified.classes,
            vec![MarkClass::New, MarkClass::Duplicate]
        );
        assert_eq!(classified.new_marks().count(), 1);
    }

    #[test]
    fn a_repeat_inside_the_batch_from_the_same_source_is_owned_once_counted_once() {
        let first = event();
        let batch = [sourced(&first, "p/1"), sourced(&first, "p/1")];
        let classified = classify_batch(&batch, &HashMap::new());
        assert_eq!(classified.classes, vec![MarkClass::New, MarkClass::Owned]);
        let report = classified.report();
        assert_eq!((report.counted, report.duplicates), (1, 0));
        assert_eq!(report.owned, vec![true, true]);
    }

    #[test]
    fn a_stored_mark_wins_over_the_first_occurrence_in_the_batch() {
        let first = event();
        let batch = [sourced(&first, "p/2"), sourced(&first, "p/1")];
        let classified = classify_batch(&batch, &marks(&[(&first, "p/1")]));
        assert_eq!(
            classified.classes,
            vec![MarkClass::Duplicate, MarkClass::Owned]
        );
        assert_eq!(classified.new_marks().count(), 0);
    }

    #[test]
    fn marks_of_events_outside_the_batch_change_nothing() {
        let (first, other) = (event(), event());
        let batch = [sourced(&first, "p/1")];
        let classified = classify_batch(&batch, &marks(&[(&other, "p/1")]));
        assert_eq!(classified.classes, vec![MarkClass::New]);
    }

    #[test]
    fn an_empty_batch_writes_nothing() {
        let classified = classify_batch(&[], &HashMap::new());
        assert!(classified.classes.is_empty());
        assert_eq!(classified.report(), ApplyReport::default());
    }

    #[test]
    fn distinct_ids_keep_the_order_of_first_occurrence() {
        let (first, second) = (event(), event());
        let batch = [
            sourced(&second, "p/1"),
            sourced(&first, "p/2"),
            sourced(&second, "p/3"),
        ];
        assert_eq!(
            distinct_event_ids(&batch),
            vec![second.event_id, first.event_id]
        );
    }

    /// The rules as the backends used to apply them: one event at a time, writing each
    /// new mark into the store before looking at the next event.
    fn sequential_model(
        events: &[SourcedEvent],
        stored_marks: &HashMap<Uuid, String>,
    ) -> (Vec<MarkClass>, HashMap<Uuid, String>) {
        let mut marks = stored_marks.clone();
        let classes = events
            .iter()
            .map(|sourced| match marks.get(&sourced.event.event_id) {
                Some(owner) if owner == &sourced.source => MarkClass::Owned,
                Some(_) => MarkClass::Duplicate,
                None => {
                    marks.insert(sourced.event.event_id, sourced.source.clone());
                    MarkClass::New
                }
            })
            .collect();
        (classes, marks)
    }

    proptest! {
        /// Against the sequential model, for batches drawn from a few events and sources
        /// (so repeats, retries and duplicates are frequent): the same classes, and the
        /// stored marks plus the new ones are the model's marks after the batch.
        #[test]
        fn classification_matches_the_sequential_model(
            batch in proptest::collection::vec((0usize..4, 0usize..3), 0..12),
            stored in proptest::collection::vec((0usize..4, 0usize..3), 0..4),
        ) {
            let pool: Vec<UsageEvent> = (0..4).map(|_| event()).collect();
            let source = |index: usize| format!("p/{index}");
            let events: Vec<SourcedEvent> = batch
                .iter()
                .map(|(event, from)| sourced(&pool[*event], &source(*from)))
                .collect();
            let stored_marks: HashMap<Uuid, String> = stored
                .iter()
                .map(|(event, from)| (pool[*event].event_id, source(*from)))
                .collect();
            let classified = classify_batch(&events, &stored_marks);
            let (expected_classes, expected_marks) = sequential_model(&events, &stored_marks);
            prop_assert_eq!(&classified.classes, &expected_classes);
            let mut marks_after = stored_marks.clone();
            for sourced in classified.new_marks() {
                let previous = marks_after.insert(sourced.event.event_id, sourced.source.clone());
                prop_assert!(previous.is_none(), "a mark is written at most once");
            }
            prop_assert_eq!(marks_after, expected_marks);
            let report = classified.report();
            prop_assert_eq!(report.counted + report.duplicates
                + expected_classes.iter().filter(|class| **class == MarkClass::Owned).count(),
                events.len());
        }
    }
}
