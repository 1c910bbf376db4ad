use std::collections::{BTreeSet, HashMap, HashSet};

use proptest::prelude::*;
use schemas::{Outcome, UsageEvent};

use super::*;
use crate::contract::{day, event_on};

fn produced(producer: &str, seq: u64) -> UsageEvent {
    let mut event = event_on("c", day(0), "m", Outcome::Success, 1, 1);
    event.proxy_instance = producer.into();
    event.instance_seq = seq;
    event
}

fn sourced(event: &UsageEvent, position: u64) -> SourcedEvent {
    SourcedEvent {
        partition: "p".into(),
        position: position.to_string().into(),
        event: event.clone(),
    }
}

fn ranges(numbers: &[u64]) -> SeqRanges {
    let mut ranges = SeqRanges::new();
    for number in numbers {
        ranges.insert(*number);
    }
    ranges
}

#[test]
fn numbers_in_order_stay_one_range_and_print_compactly() {
    let taken = ranges(&(1..=500).collect::<Vec<_>>());
    assert_eq!(taken.ranges(), &[(1, 500)]);
    assert_eq!(taken.to_string(), "1-500");
    let with_gap = ranges(&[1, 2, 3, 7, 9, 8, 20]);
    assert_eq!(with_gap.to_string(), "1-3,7-9,20");
    assert_eq!("1-3,7-9,20".parse::<SeqRanges>().unwrap(), with_gap);
    assert_eq!("".parse::<SeqRanges>().unwrap(), SeqRanges::new());
}

#[test]
fn damaged_range_text_is_an_error_naming_it() {
    for text in ["1-x", "5-2", "3,1", "1-3,4", "-"] {
        let error = text.parse::<SeqRanges>().unwrap_err();
        assert!(error.to_string().contains("damaged"), "{text}: {error}");
    }
}

#[test]
fn a_new_number_is_taken_and_a_stored_one_is_a_duplicate() {
    let (first, second) = (produced("a", 1), produced("a", 2));
    let batch = [sourced(&first, 10), sourced(&second, 11)];
    let taken = HashMap::from([("a".to_owned(), ranges(&[1]))]);
    let classes = classify_batch(&batch, &taken);
    assert_eq!(
        classes.classes,
        vec![EventClass::Duplicate, EventClass::New]
    );
    assert_eq!(
        classes.report(),
        ApplyReport {
            counted: 1,
            duplicates: 1
        }
    );
    assert_eq!(classes.taken().get("a"), Some(&ranges(&[2])));
}

#[test]
fn the_same_number_twice_in_a_batch_is_taken_once() {
    let event = produced("a", 5);
    let batch = [sourced(&event, 1), sourced(&event, 2)];
    let classes = classify_batch(&batch, &HashMap::new());
    assert_eq!(
        classes.classes,
        vec![EventClass::New, EventClass::Duplicate]
    );
    assert_eq!(classes.new_events().count(), 1);
}

#[test]
fn producers_are_independent() {
    let batch = [sourced(&produced("a", 1), 1), sourced(&produced("b", 1), 2)];
    let taken = HashMap::from([("a".to_owned(), ranges(&[1]))]);
    let classes = classify_batch(&batch, &taken);
    assert_eq!(
        classes.classes,
        vec![EventClass::Duplicate, EventClass::New]
    );
    assert_eq!(producers_of(&batch), vec!["a", "b"]);
}

#[test]
fn positions_order_by_number_and_sortable_text_keeps_that_order() {
    use std::cmp::Ordering::*;
    assert_eq!(compare_positions("9", "10"), Less);
    assert_eq!(compare_positions("010", "10"), Equal);
    assert_eq!(
        compare_positions(
            "49590338271490256608559692538361571095921575989136588898",
            "49590338271490256608559692538361571095921575989136588899"
        ),
        Less
    );
    assert!(sortable_position("9") < sortable_position("10"));
    assert_eq!(sortable_position("0042"), "00242");
}

proptest! {
    /// `SeqRanges` against a plain set of numbers: the same members, in sorted, disjoint,
    /// non-adjacent ranges, through insert, extend and the stored text.
    #[test]
    fn seq_ranges_behave_like_a_set(
        first in proptest::collection::vec(0u64..60, 0..40),
        second in proptest::collection::vec(0u64..60, 0..40),
    ) {
        let model: BTreeSet<u64> = first.iter().chain(&second).copied().collect();
        let mut inserted = ranges(&first);
        inserted.extend(&ranges(&second));
        let mut one_by_one = ranges(&first);
        for number in &second {
            one_by_one.insert(*number);
        }
        prop_assert_eq!(&inserted, &one_by_one);
        for number in 0..62 {
            prop_assert_eq!(inserted.contains(number), model.contains(&number));
        }
        for pair in inserted.ranges().windows(2) {
            prop_assert!(pair[0].1 + 1 < pair[1].0, "ranges apart: {:?}", pair);
        }
        prop_assert_eq!(inserted.to_string().parse::<SeqRanges>().unwrap(), inserted);
    }

    /// Against the obvious model (a set of `(producer, seq)` taken so far, one event at a
    /// time): the same classes, and stored ranges plus `taken()` are the model's set after.
    #[test]
    fn classification_matches_the_one_at_a_time_model(
        batch in proptest::collection::vec((0usize..3, 1u64..8), 0..16),
        stored in proptest::collection::vec((0usize..3, 1u64..8), 0..6),
    ) {
        let producer = |index: usize| format!("producer-{index}");
        let events: Vec<SourcedEvent> = batch
            .iter()
            .enumerate()
            .map(|(position, (who, seq))| sourced(&produced(&producer(*who), *seq), position as u64))
            .collect();
        let mut taken: HashMap<String, SeqRanges> = HashMap::new();
        let mut model: HashSet<(String, u64)> = HashSet::new();
        for (who, seq) in &stored {
            taken.entry(producer(*who)).or_default().insert(*seq);
            model.insert((producer(*who), *seq));
        }
        let classes = classify_batch(&events, &taken);
        let expected: Vec<EventClass> = events
            .iter()
            .map(|sourced| {
                let key = (sourced.event.proxy_instance.to_string(), sourced.event.instance_seq);
                if model.insert(key) { EventClass::New } else { EventClass::Duplicate }
            })
            .collect();
        prop_assert_eq!(&classes.classes, &expected);
        for (who, added) in classes.taken() {
            taken.entry(who.to_owned()).or_default().extend(&added);
        }
        let after: HashSet<(String, u64)> = taken
            .iter()
            .flat_map(|(who, ranges)| {
                ranges.ranges().iter().flat_map(move |(first, last)| (*first..=*last).map(move |seq| (who.clone(), seq)))
            })
            .collect();
        prop_assert_eq!(after, model);
    }

    #[test]
    fn sortable_positions_sort_like_numbers(left in 0u128..u128::MAX, right in 0u128..u128::MAX) {
        let (left_text, right_text) = (left.to_string(), right.to_string());
        prop_assert_eq!(compare_positions(&left_text, &right_text), left.cmp(&right));
        prop_assert_eq!(sortable_position(&left_text).cmp(&sortable_position(&right_text)), left.cmp(&right));
    }
}
