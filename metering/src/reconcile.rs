//! Reconciliation: the raw events (the embedded event log, the raw archive on AWS, or the
//! Kinesis stream when no archive is configured) against the two projections, counters and
//! Parquet, per customer and UTC day. The result names the source it read.
//!
//! The comparison is pure ([`compare`]); the loaders read what each side holds. Raw events
//! are deduplicated by `event_id` and filtered like the consumer filters them (undecodable
//! records and unknown customers are quarantined, not counted), so a healthy installation
//! shows no drift at all.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::NaiveDate;
use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::ObjectStoreExt;
use schemas::parquet_codec::decode_events_parquet;
use schemas::usage_counts::aggregate_events;
use schemas::{UsageCounts, UsageEvent};
use store::backend::Ports;

use crate::object_keys::usage_day_prefix;
use crate::raw::{RawSourceReport, meterable_events, unique_events};
use crate::{MeteringError, Result};

/// Totals per (customer, day).
pub type DayTotals = BTreeMap<(String, NaiveDate), UsageCounts>;

/// One number that differs between the sides.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Drift {
    pub customer_id: String,
    pub day: NaiveDate,
    pub field: &'static str,
    pub raw: u64,
    pub counters: u64,
    pub parquet: u64,
}

/// A run of `instance_seq` numbers missing from one proxy instance's events.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SequenceGap {
    pub proxy_instance: String,
    pub first_missing: u64,
    pub last_missing: u64,
}

/// What reconciling a range found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Reconciliation {
    /// Where the raw events were read: the archive, the embedded log or the stream.
    pub source: RawSourceReport,
    /// Whether the source can hold every event of the range. False when it is the stream
    /// and the range starts before the stream's window: older days then show drift that is
    /// not real.
    pub source_covers_range: bool,
    pub raw_events: usize,
    pub raw_duplicates: usize,
    pub raw_unmeterable: usize,
    pub parquet_rows: usize,
    pub parquet_duplicates: usize,
    pub drift: Vec<Drift>,
    pub gaps: Vec<SequenceGap>,
}

impl Reconciliation {
    /// Whether anything disagrees.
    pub fn has_drift(&self) -> bool {
        !self.drift.is_empty() || self.parquet_duplicates > 0
    }
}

/// Totals per customer and day of some events.
pub fn day_totals<'a>(events: impl IntoIterator<Item = &'a UsageEvent>) -> DayTotals {
    let mut totals = DayTotals::new();
    for (cell, counts) in aggregate_events(events) {
        totals
            .entry((cell.customer_id, cell.day))
            .or_default()
            .add(&counts);
    }
    totals
}

/// Every number that differs between the three sides, per customer, day and field.
pub fn compare(raw: &DayTotals, counters: &DayTotals, parquet: &DayTotals) -> Vec<Drift> {
    let keys: BTreeSet<&(String, NaiveDate)> = raw
        .keys()
        .chain(counters.keys())
        .chain(parquet.keys())
        .collect();
    let mut drift = Vec::new();
    for key in keys {
        let zero = UsageCounts::default();
        let raw_fields = raw.get(key).unwrap_or(&zero).named();
        let counter_fields = counters.get(key).unwrap_or(&zero).named();
        let parquet_fields = parquet.get(key).unwrap_or(&zero).named();
        for (((field, raw_value), (_, counters_value)), (_, parquet_value)) in raw_fields
            .into_iter()
            .zip(counter_fields)
            .zip(parquet_fields)
        {
            if raw_value != counters_value || raw_value != parquet_value {
                drift.push(Drift {
                    customer_id: key.0.clone(),
                    day: key.1,
                    field,
                    raw: raw_value,
                    counters: counters_value,
                    parquet: parquet_value,
                });
            }
        }
    }
    drift
}

/// Runs of `instance_seq` missing between the lowest and highest number seen per instance.
/// (A loss at the very end of an instance's life leaves no gap; see `docs/exactly-once.md`.)
pub fn sequence_gaps<'a>(events: impl IntoIterator<Item = &'a UsageEvent>) -> Vec<SequenceGap> {
    let mut by_instance: BTreeMap<&str, BTreeSet<u64>> = BTreeMap::new();
    for event in events {
        by_instance
            .entry(event.proxy_instance.as_str())
            .or_default()
            .insert(event.instance_seq);
    }
    let mut gaps = Vec::new();
    for (instance, seqs) in by_instance {
        let mut previous: Option<u64> = None;
        for seq in seqs {
            if let Some(previous) = previous
                && seq > previous + 1
            {
                gaps.push(SequenceGap {
                    proxy_instance: instance.to_owned(),
                    first_missing: previous + 1,
                    last_missing: seq - 1,
                });
            }
            previous = Some(seq);
        }
    }
    gaps
}

/// Every Parquet row of the days in `from..=to`.
pub async fn parquet_events(
    objects: &Arc<dyn ObjectStore>,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<UsageEvent>> {
    let mut events = Vec::new();
    for day in from.iter_days().take_while(|day| *day <= to) {
        let prefix = usage_day_prefix(day);
        let listed: Vec<_> = objects.list(Some(&prefix)).try_collect().await?;
        for meta in listed {
            let body = objects.get(&meta.location).await?.bytes().await?;
            events.extend(decode_events_parquet(body).map_err(|error| {
                MeteringError::Invalid(format!(
                    "Parquet object {} cannot be read: {error}",
                    meta.location
                ))
            })?);
        }
    }
    Ok(events)
}

/// Reconciles `from..=to` (UTC days by `occurred_at`), for one customer or all. The raw
/// side is the ports' raw source: the event log on the embedded backend, the raw archive
/// on AWS, or the stream when no archive is configured (then `source_covers_range` says
/// whether the stream's window reaches back to `from`).
pub async fn reconcile(
    ports: &Ports,
    from: NaiveDate,
    to: NaiveDate,
    customer_id: Option<&str>,
) -> Result<Reconciliation> {
    let sorted = meterable_events(ports).await?;
    let in_scope = |event: &UsageEvent| {
        (from..=to).contains(&event.day())
            && customer_id.is_none_or(|wanted| event.customer_id == wanted)
    };
    let unknown = sorted
        .unknown_customer
        .iter()
        .filter(|event| in_scope(event))
        .count();
    let raw: Vec<&UsageEvent> = sorted
        .meterable
        .iter()
        .filter(|event| in_scope(event))
        .collect();
    let raw_totals = day_totals(raw.iter().copied());

    let parquet_all = parquet_events(&ports.objects, from, to).await?;
    let parquet_rows = parquet_all
        .iter()
        .filter(|event| customer_id.is_none_or(|wanted| event.customer_id == wanted))
        .count();
    let (parquet_unique, parquet_duplicates) = unique_events(
        parquet_all
            .into_iter()
            .filter(|event| customer_id.is_none_or(|wanted| event.customer_id == wanted))
            .collect(),
    );
    let parquet_totals = day_totals(&parquet_unique);

    let mut counter_totals = DayTotals::new();
    let mut wanted: BTreeSet<String> = raw_totals.keys().map(|(id, _)| id.clone()).collect();
    wanted.extend(parquet_totals.keys().map(|(id, _)| id.clone()));
    match customer_id {
        Some(id) => {
            wanted.insert(id.to_owned());
        }
        None => wanted.extend(
            ports
                .registry
                .list_customers()
                .await?
                .into_iter()
                .map(|customer| customer.customer_id),
        ),
    }
    for id in wanted {
        for cell in ports.counters.read_daily(&id, from, to).await? {
            counter_totals
                .entry((id.clone(), cell.day))
                .or_default()
                .add(&cell.counts);
        }
    }

    Ok(Reconciliation {
        source_covers_range: sorted.source.covers_days_from(from),
        source: sorted.source.clone(),
        raw_events: raw.len(),
        raw_duplicates: sorted.duplicates,
        raw_unmeterable: sorted.undecodable + unknown,
        parquet_rows,
        parquet_duplicates,
        drift: compare(&raw_totals, &counter_totals, &parquet_totals),
        gaps: sequence_gaps(raw.iter().copied()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(customer: &str, day: u32, instance: &str, seq: u64) -> UsageEvent {
        let mut event = store::contract::event_on(
            customer,
            NaiveDate::from_ymd_opt(2026, 3, day).unwrap(),
            "m",
            schemas::Outcome::Success,
            10,
            5,
        );
        event.proxy_instance = instance.into();
        event.instance_seq = seq;
        event
    }

    #[test]
    fn matching_sides_show_no_drift_and_each_difference_is_named() {
        let events = vec![
            event("a", 1, "p", 1),
            event("a", 1, "p", 2),
            event("b", 2, "p", 3),
        ];
        let totals = day_totals(&events);
        assert!(compare(&totals, &totals, &totals).is_empty());

        let mut counters = totals.clone();
        if let Some(cell) =
            counters.get_mut(&("a".to_owned(), NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()))
        {
            cell.requests += 1;
            cell.input_tokens += 10;
        }
        let parquet = day_totals(&events[..2]);
        let drift = compare(&totals, &counters, &parquet);
        let named: Vec<(&str, &str, u64, u64, u64)> = drift
            .iter()
            .map(|drift| {
                (
                    drift.customer_id.as_str(),
                    drift.field,
                    drift.raw,
                    drift.counters,
                    drift.parquet,
                )
            })
            .collect();
        assert_eq!(
            named,
            vec![
                ("a", "requests", 2, 3, 2),
                ("a", "input_tokens", 20, 30, 20),
                ("b", "requests", 1, 1, 0),
                ("b", "input_tokens", 10, 10, 0),
                ("b", "output_tokens", 5, 5, 0),
                // The missing row was a call through Bedrock's routes.
                ("b", "requests_bedrock", 1, 1, 0),
            ]
        );
    }

    #[test]
    fn duplicates_are_dropped_by_event_id() {
        let first = event("a", 1, "p", 1);
        let (unique, dropped) = unique_events(vec![first.clone(), event("a", 1, "p", 2), first]);
        assert_eq!((unique.len(), dropped), (2, 1));
    }

    #[test]
    fn missing_sequence_numbers_are_reported_per_instance() {
        let events = [
            event("a", 1, "p1", 1),
            event("a", 1, "p1", 2),
            event("a", 1, "p1", 5),
            event("a", 1, "p1", 9),
            event("a", 1, "p2", 1),
            event("a", 1, "p2", 2),
        ];
        assert_eq!(
            sequence_gaps(&events),
            vec![
                SequenceGap {
                    proxy_instance: "p1".into(),
                    first_missing: 3,
                    last_missing: 4
                },
                SequenceGap {
                    proxy_instance: "p1".into(),
                    first_missing: 6,
                    last_missing: 8
                },
            ]
        );
    }
}
