//! `Counters` on SQLite: the producers' counted ranges (`producer_seqs`) and the counter
//! upserts (daily and hourly) commit in one transaction, so a batch applied again finds its
//! numbers taken and counts nothing twice. Hourly cells older than the retention are pruned
//! as new ones arrive.

use std::collections::HashMap;
use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{OptionalExtension, ParamsFromIter, ToSql, Transaction, params, params_from_iter};
use schemas::usage_counts::{
    COUNT_NAMES, aggregate_events, aggregate_hourly, hour_id, parse_hour_id,
};
use schemas::{DailyUsage, HourlyUsage, UsageCounts};

use super::EmbeddedStore;
use crate::counters::{ApplyReport, Counters, HOURLY_RETENTION_DAYS, SourcedEvent};
use crate::dedupe::{BatchClasses, SeqRanges, classify_batch, producers_of};
use crate::{Result, StoreError};

fn to_sql_count(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn from_sql_count(value: i64) -> rusqlite::Result<u64> {
    u64::try_from(value).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(0, value))
}

/// `columns` with every count column after them, for a statement built once.
fn with_count_columns(columns: &str) -> String {
    format!("{columns}, {}", COUNT_NAMES.join(", "))
}

/// An upsert of one cell: its key columns, then every count, added on conflict. Built
/// once per statement (the counts' names come from `COUNT_NAMES`), not once per batch.
fn upsert_statement(table: &str, key: &[&str]) -> String {
    let placeholders: Vec<String> = (1..=key.len() + COUNT_NAMES.len())
        .map(|index| format!("?{index}"))
        .collect();
    let add: Vec<String> = COUNT_NAMES
        .iter()
        .map(|name| format!("{name} = {name} + excluded.{name}"))
        .collect();
    format!(
        "INSERT INTO {table} ({columns}) VALUES ({values}) ON CONFLICT ({key}) DO UPDATE SET {add}",
        columns = with_count_columns(&key.join(", ")),
        values = placeholders.join(", "),
        key = key.join(", "),
        add = add.join(", "),
    )
}

static UPSERT_DAILY: LazyLock<String> =
    LazyLock::new(|| upsert_statement("usage_counters", &["customer_id", "day", "model_id"]));
static UPSERT_HOURLY: LazyLock<String> =
    LazyLock::new(|| upsert_statement("usage_hourly", &["customer_id", "hour"]));
static SELECT_DAILY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM usage_counters WHERE customer_id = ?1 AND day >= ?2 AND day <= ?3 ORDER BY day, model_id",
        with_count_columns("day, model_id")
    )
});
static SELECT_HOURLY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM usage_hourly WHERE customer_id = ?1 AND hour >= ?2 AND hour <= ?3 ORDER BY hour",
        with_count_columns("hour")
    )
});

/// The count columns as SQL values, in `COUNT_NAMES` order.
fn count_values(counts: &UsageCounts) -> [i64; COUNT_NAMES.len()] {
    counts.values().map(to_sql_count)
}

/// A cell's key columns followed by its counts, as statement parameters.
fn with_counts<'a>(
    key: &'a [&'a dyn ToSql],
    counts: &'a [i64],
) -> ParamsFromIter<impl Iterator<Item = &'a dyn ToSql>> {
    params_from_iter(
        key.iter()
            .copied()
            .chain(counts.iter().map(|count| count as &dyn ToSql)),
    )
}

/// Reads the count columns starting at column `first`.
fn counts_at(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<UsageCounts> {
    let mut offset = first;
    UsageCounts::try_from_named(|_| {
        let value = from_sql_count(row.get(offset)?);
        offset += 1;
        value
    })
}

/// The stored ranges of the batch's producers.
fn stored_ranges(
    transaction: &Transaction<'_>,
    events: &[SourcedEvent],
) -> Result<HashMap<String, SeqRanges>> {
    let mut find =
        transaction.prepare_cached("SELECT ranges FROM producer_seqs WHERE producer = ?1")?;
    let mut stored = HashMap::new();
    for producer in producers_of(events) {
        let text: Option<String> = find
            .query_row(params![producer], |row| row.get(0))
            .optional()?;
        if let Some(text) = text {
            let ranges = text
                .parse::<SeqRanges>()
                .map_err(|error| StoreError::Corrupt(format!("producer {producer}: {error}")))?;
            stored.insert(producer.to_owned(), ranges);
        }
    }
    Ok(stored)
}

/// Adds the batch's new events to the daily and hourly cells and their numbers to their
/// producers' ranges.
fn write_counts_and_ranges(
    transaction: &Transaction<'_>,
    classified: &BatchClasses<'_>,
    stored: &mut HashMap<String, SeqRanges>,
) -> Result<()> {
    let now = Utc::now().timestamp_millis();
    let mut upsert_ranges = transaction.prepare_cached(
        "INSERT INTO producer_seqs (producer, ranges, updated_at_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT (producer) DO UPDATE SET ranges = excluded.ranges,
             updated_at_ms = excluded.updated_at_ms",
    )?;
    for (producer, taken) in classified.taken() {
        let ranges = stored.entry(producer.to_owned()).or_default();
        ranges.extend(&taken);
        upsert_ranges.execute(params![producer, ranges.to_string(), now])?;
    }
    let counted = || classified.new_events().map(|sourced| &sourced.event);
    let mut upsert = transaction.prepare_cached(&UPSERT_DAILY)?;
    for (key, counts) in aggregate_events(counted()) {
        let day = key.day.to_string();
        let cell: [&dyn ToSql; 3] = [&key.customer_id, &day, &key.model_id];
        upsert.execute(with_counts(&cell, &count_values(&counts)))?;
    }
    let mut upsert_hour = transaction.prepare_cached(&UPSERT_HOURLY)?;
    for ((customer_id, hour), counts) in aggregate_hourly(counted()) {
        let hour = hour_id(hour);
        let cell: [&dyn ToSql; 2] = [&customer_id, &hour];
        upsert_hour.execute(with_counts(&cell, &count_values(&counts)))?;
    }
    let oldest_kept = Utc::now() - chrono::Duration::days(HOURLY_RETENTION_DAYS);
    transaction
        .prepare_cached("DELETE FROM usage_hourly WHERE hour < ?1")?
        .execute(params![hour_id(oldest_kept)])?;
    Ok(())
}

/// Counts a batch in one transaction: the producers' ranges read, the batch classified,
/// the new events' counts and numbers written.
fn apply_batch(
    connection: &mut rusqlite::Connection,
    events: &[SourcedEvent],
) -> Result<ApplyReport> {
    let transaction =
        connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut stored = stored_ranges(&transaction, events)?;
    let classified = classify_batch(events, &stored);
    write_counts_and_ranges(&transaction, &classified, &mut stored)?;
    let report = classified.report();
    transaction.commit()?;
    Ok(report)
}

#[async_trait]
impl Counters for EmbeddedStore {
    async fn apply(&self, events: &[SourcedEvent]) -> Result<ApplyReport> {
        if events.is_empty() {
            return Ok(ApplyReport::default());
        }
        // On a multi-threaded runtime (the servers') the transaction runs on this worker
        // and reads the batch where it is; otherwise the batch is copied to the blocking
        // pool (a copy of every event: a third of the embedded consumer's time).
        if let Some(report) = self.on_this_worker(|connection| apply_batch(connection, events)) {
            return report;
        }
        let events = events.to_vec();
        self.with_connection(move |connection| apply_batch(connection, &events))
            .await
    }

    async fn read_daily(
        &self,
        customer_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DailyUsage>> {
        let customer_id = customer_id.to_owned();
        self.with_connection(move |connection| {
            let mut select = connection.prepare_cached(&SELECT_DAILY)?;
            let rows = select.query_map(
                params![customer_id, from.to_string(), to.to_string()],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        counts_at(row, 2)?,
                    ))
                },
            )?;
            let mut usage = Vec::new();
            for row in rows {
                let (day_text, model_id, counts) = row?;
                let day = day_text.parse::<NaiveDate>().map_err(|_| {
                    StoreError::Corrupt(format!("counter day {day_text:?} is not a date"))
                })?;
                usage.push(DailyUsage {
                    day,
                    model_id,
                    counts,
                });
            }
            Ok(usage)
        })
        .await
    }

    async fn read_hourly(
        &self,
        customer_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<HourlyUsage>> {
        let customer_id = customer_id.to_owned();
        self.with_connection(move |connection| {
            let mut select = connection.prepare_cached(&SELECT_HOURLY)?;
            let rows = select
                .query_map(params![customer_id, hour_id(from), hour_id(to)], |row| {
                    Ok((row.get::<_, String>(0)?, counts_at(row, 1)?))
                })?;
            let mut usage = Vec::new();
            for row in rows {
                let (hour_text, counts) = row?;
                let hour = parse_hour_id(&hour_text).ok_or_else(|| {
                    StoreError::Corrupt(format!("hourly counter hour {hour_text:?} is not an hour"))
                })?;
                usage.push(HourlyUsage { hour, counts });
            }
            Ok(usage)
        })
        .await
    }
}
