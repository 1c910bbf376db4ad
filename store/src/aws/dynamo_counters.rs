//! `Counters` on DynamoDB, and the consumer's checkpoints, in one table (`pk`, `sk`).
//!
//! | item | pk | sk | attributes |
//! |---|---|---|---|
//! | counter cell | `USAGE#<customer_id>` | `DAY#<yyyy-mm-dd>#MODEL#<model_id>` | requests, rejected, errors, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, requests_bedrock, requests_spec, requests_anthropic, requests_openai (numbers, `ADD`ed; a missing one reads 0); `at#<partition>` per log partition |
//! | hourly cell | `USAGE#<customer_id>` | `HOUR#<yyyy-mm-ddThh>` | the same, and expires_at (TTL, 35 days after the hour) |
//! | producer ranges | `PRODUCER#<proxy_instance>` | `SEQS` | see `dynamo_producers` |
//! | checkpoint | `CHECKPOINT#<consumer>` | `PARTITION#<partition>` | position, updated_at_ms |
//!
//! `apply` reads the ranges of the batch's producers, classifies the batch
//! (`crate::dedupe`), then writes each touched cell with one conditional `UpdateItem`, and
//! last merges the new numbers into the producers' items. No transaction is needed, because
//! every cell write is idempotent on its own: it `ADD`s the counts of the batch's events for
//! that cell and sets `at#<partition>` to the position of the last of them, on condition
//! that the stored `at#<partition>` is older than the first. When the condition fails (an
//! earlier attempt of this batch got that far), the cell is read and only the events after
//! its stamp are added. So a batch cut short anywhere and applied again, whole, in parts or
//! extended, adds each event to each cell once; once its producers' items hold its numbers,
//! any later copy of its events is a duplicate. A stamp means "every event of this
//! partition up to here is in this cell", which holds because every batch starts where
//! everything before it is in every cell: at the consumer's checkpoint (committed only after
//! a complete apply), or where another attempt of the same batch started. Two consumers
//! reading one partition at once keep to that, so they need no lock. See
//! `docs/exactly-once.md`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use chrono::{NaiveDate, Utc};
use schemas::usage_counts::parse_hour_id;
use schemas::{DailyUsage, HourlyUsage, UsageCounts};

use super::attributes::{Item, get_count, get_string, string};
pub use super::counter_apply::ApplyStop;
use super::counter_apply::apply_events;
use super::dynamo_cells::{hour_sk, usage_pk};
use super::errors::aws_error;
use super::item_table::{DynamoItemTable, ItemTable};
use crate::counters::{ApplyReport, Counters, SourcedEvent};
use crate::{Result, StoreError};

/// Counters, producer ranges and checkpoints in one DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoCounters {
    client: Client,
    table: String,
    items: Arc<dyn ItemTable>,
    /// How long a producer's ranges outlive its last counted event.
    dedupe_retention: Duration,
}

impl DynamoCounters {
    /// Counters over `table`; a producer's ranges expire `dedupe_retention` after its last
    /// counted event.
    pub fn new(client: Client, table: impl Into<String>, dedupe_retention: Duration) -> Self {
        let table = table.into();
        Self {
            items: Arc::new(DynamoItemTable::new(client.clone(), table.clone())),
            client,
            table,
            dedupe_retention,
        }
    }

    /// A customer's usage items with sort keys in `from..=to`, strongly consistent.
    async fn usage_items(&self, customer_id: &str, from: String, to: String) -> Result<Vec<Item>> {
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
            .expression_attribute_values(":pk", string(usage_pk(customer_id)))
            .expression_attribute_values(":from", string(from))
            .expression_attribute_values(":to", string(to))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|error| aws_error("Query", &self.table, error))
    }

    /// The table (shared with the Kinesis checkpoints).
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The client (shared with the Kinesis checkpoints).
    pub fn client(&self) -> &Client {
        &self.client
    }
}

impl DynamoCounters {
    /// Applies `events` like `Counters::apply`, but stops at `stop` as if the process died
    /// there (an `Unavailable` error). For fault tests.
    #[cfg(any(test, feature = "contract-tests"))]
    pub async fn apply_interrupted(&self, events: &[SourcedEvent], stop: ApplyStop) -> Result<()> {
        super::counter_apply::apply_partition(
            self.items.as_ref(),
            self.dedupe_retention,
            events,
            Some(stop),
        )
        .await
        .map(|_| ())
    }
}

#[async_trait]
impl Counters for DynamoCounters {
    async fn apply(&self, events: &[SourcedEvent]) -> Result<ApplyReport> {
        apply_events(self.items.as_ref(), self.dedupe_retention, events).await
    }

    async fn read_daily(
        &self,
        customer_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DailyUsage>> {
        let items = self
            .usage_items(customer_id, format!("DAY#{from}"), format!("DAY#{to}$"))
            .await?;
        let mut usage = items
            .iter()
            .map(daily_usage_from_item)
            .collect::<Result<Vec<_>>>()?;
        usage.sort_by(|a, b| (a.day, &a.model_id).cmp(&(b.day, &b.model_id)));
        Ok(usage)
    }

    async fn read_hourly(
        &self,
        customer_id: &str,
        from: chrono::DateTime<Utc>,
        to: chrono::DateTime<Utc>,
    ) -> Result<Vec<HourlyUsage>> {
        if from > to {
            return Ok(Vec::new());
        }
        let items = self
            .usage_items(customer_id, hour_sk(from), hour_sk(to))
            .await?;
        let mut usage = items
            .iter()
            .map(hourly_usage_from_item)
            .collect::<Result<Vec<_>>>()?;
        usage.sort_by_key(|cell| cell.hour);
        Ok(usage)
    }
}

fn counts_from_item(item: &Item) -> Result<UsageCounts> {
    UsageCounts::try_from_named(|name| get_count(item, name))
}

fn hourly_usage_from_item(item: &Item) -> Result<HourlyUsage> {
    let hour_text = get_string(item, "hour")?;
    Ok(HourlyUsage {
        hour: parse_hour_id(&hour_text).ok_or_else(|| {
            StoreError::Corrupt(format!("hourly counter hour {hour_text:?} is not an hour"))
        })?,
        counts: counts_from_item(item)?,
    })
}

fn daily_usage_from_item(item: &Item) -> Result<DailyUsage> {
    let day_text = get_string(item, "day")?;
    Ok(DailyUsage {
        day: day_text
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("counter day {day_text:?} is not a date")))?,
        model_id: get_string(item, "model_id")?,
        counts: counts_from_item(item)?,
    })
}
