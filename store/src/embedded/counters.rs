//! `Counters` on SQLite: the dedupe marks and the counter upserts commit in one transaction.

use async_trait::async_trait;
use chrono::{NaiveDate, Utc};
use rusqlite::{OptionalExtension, params};
use schemas::usage_counts::aggregate_events;
use schemas::{DailyUsage, UsageCounts};

use super::EmbeddedStore;
use crate::counters::{ApplyReport, Counters, SourcedEvent};
use crate::{Result, StoreError};

fn to_sql_count(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn from_sql_count(value: i64) -> rusqlite::Result<u64> {
    u64::try_from(value).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(0, value))
}

#[async_trait]
impl Counters for EmbeddedStore {
    async fn apply(&self, events: &[SourcedEvent]) -> Result<ApplyReport> {
        if events.is_empty() {
            return Ok(ApplyReport::default());
        }
        let events = events.to_vec();
        self.with_connection(move |connection| {
            let transaction = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let now = Utc::now().timestamp_millis();
            let mut report = ApplyReport::default();
            let mut newly_counted = Vec::new();
            {
                let mut find_mark =
                    transaction.prepare_cached("SELECT source FROM counter_dedupe WHERE event_id = ?1")?;
                let mut insert_mark = transaction.prepare_cached(
                    "INSERT INTO counter_dedupe (event_id, source, applied_at_ms) VALUES (?1, ?2, ?3)",
                )?;
                for sourced in &events {
                    let event_id = sourced.event.event_id;
                    let key = event_id.hyphenated().to_string();
                    let owner: Option<String> = find_mark.query_row(params![key], |row| row.get(0)).optional()?;
                    match owner {
                        Some(owner) if owner == sourced.source => {
                            report.owned.push(true);
                        }
                        Some(_) => {
                            report.duplicates += 1;
                            report.owned.push(false);
                        }
                        None => {
                            insert_mark.execute(params![key, sourced.source, now])?;
                            report.owned.push(true);
                            report.counted += 1;
                            newly_counted.push(&sourced.event);
                        }
                    }
                }
                let mut upsert = transaction.prepare_cached(
                    "INSERT INTO usage_counters (customer_id, day, model_id, requests, rejected, errors,
                         input_tokens, output_tokens, cache_read_tokens, cache_write_tokens)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                     ON CONFLICT (customer_id, day, model_id) DO UPDATE SET
                         requests = requests + excluded.requests,
                         rejected = rejected + excluded.rejected,
                         errors = errors + excluded.errors,
                         input_tokens = input_tokens + excluded.input_tokens,
                         output_tokens = output_tokens + excluded.output_tokens,
                         cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
                         cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens",
                )?;
                for (key, counts) in aggregate_events(newly_counted) {
                    upsert.execute(params![
                        key.customer_id,
                        key.day.to_string(),
                        key.model_id,
                        to_sql_count(counts.requests),
                        to_sql_count(counts.rejected),
                        to_sql_count(counts.errors),
                        to_sql_count(counts.input_tokens),
                        to_sql_count(counts.output_tokens),
                        to_sql_count(counts.cache_read_tokens),
                        to_sql_count(counts.cache_write_tokens),
                    ])?;
                }
            }
            transaction.commit()?;
            Ok(report)
        })
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
            let mut select = connection.prepare_cached(
                "SELECT day, model_id, requests, rejected, errors, input_tokens, output_tokens,
                        cache_read_tokens, cache_write_tokens
                 FROM usage_counters WHERE customer_id = ?1 AND day >= ?2 AND day <= ?3
                 ORDER BY day, model_id",
            )?;
            let rows = select.query_map(
                params![customer_id, from.to_string(), to.to_string()],
                |row| {
                    let day_text: String = row.get(0)?;
                    Ok((
                        day_text,
                        row.get::<_, String>(1)?,
                        UsageCounts {
                            requests: from_sql_count(row.get(2)?)?,
                            rejected: from_sql_count(row.get(3)?)?,
                            errors: from_sql_count(row.get(4)?)?,
                            input_tokens: from_sql_count(row.get(5)?)?,
                            output_tokens: from_sql_count(row.get(6)?)?,
                            cache_read_tokens: from_sql_count(row.get(7)?)?,
                            cache_write_tokens: from_sql_count(row.get(8)?)?,
                        },
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
}
