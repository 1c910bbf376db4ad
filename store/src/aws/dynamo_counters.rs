//! `Counters` on DynamoDB, and the consumer's checkpoints, in one table (`pk`, `sk`).
//!
//! | item | pk | sk | attributes |
//! |---|---|---|---|
//! | counter cell | `USAGE#<customer_id>` | `DAY#<yyyy-mm-dd>#MODEL#<model_id>` | requests, rejected, errors, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens (numbers, `ADD`ed); `at#<partition>` per log partition |
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

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use chrono::{NaiveDate, Utc};
use futures::{StreamExt, TryStreamExt};
use schemas::usage_counts::parse_hour_id;
use schemas::{DailyUsage, HourlyUsage, UsageCounts};

use super::attributes::{Item, get_count, get_string, key, number, string};
use super::dynamo_cells::{CellShare, cell_shares, hour_sk, stamp_attribute, usage_pk};
use super::dynamo_producers::DynamoProducers;
use super::errors::aws_error;
use crate::counters::{ApplyReport, Counters, SourcedEvent};
use crate::dedupe::{SeqRanges, classify_batch, producers_of, sortable_position};
use crate::{Result, StoreError};

/// Cell writes in flight at once for one batch.
const CELL_WRITES_IN_FLIGHT: usize = 16;
/// Rounds of a cell's conditional write before the batch is failed (and retried).
const MAX_CELL_ROUNDS: usize = 8;

/// Counters, producer ranges and checkpoints in one DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoCounters {
    client: Client,
    table: String,
    producers: DynamoProducers,
}

impl DynamoCounters {
    /// Counters over `table`; a producer's ranges expire `dedupe_retention` after its last
    /// counted event.
    pub fn new(client: Client, table: impl Into<String>, dedupe_retention: Duration) -> Self {
        let table = table.into();
        Self {
            producers: DynamoProducers::new(client.clone(), table.clone(), dedupe_retention),
            client,
            table,
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

    /// The cell's stamp for its partition, read strongly consistent (`None`: no stamp).
    async fn read_stamp(&self, share: &CellShare<'_>) -> Result<Option<String>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(
                usage_pk(share.customer_id),
                share.sort_key.clone(),
            )))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| aws_error("GetItem", &self.table, error))?;
        let attribute = stamp_attribute(share.partition);
        Ok(output
            .item
            .as_ref()
            .and_then(|item| item.get(&attribute))
            .and_then(|value| value.as_s().ok())
            .and_then(|stamp| stamp.get(3..))
            .map(str::to_owned))
    }

    /// Adds a cell's share, once; returns how many of its events this call added. The
    /// first attempt assumes nothing of it is stored yet; a failed condition means an
    /// earlier or concurrent attempt stored some of it, so the stamp is read and only what
    /// follows it is added.
    async fn write_share(&self, share: &CellShare<'_>) -> Result<usize> {
        let mut stamp: Option<String> = None;
        let mut expect_stamp = false;
        for _ in 0..MAX_CELL_ROUNDS {
            let Some((counts, events, first, last)) = share.after(stamp.as_deref()) else {
                return Ok(0);
            };
            let expected = expect_stamp.then_some(stamp.as_deref()).flatten();
            if self
                .update_cell(share, &counts, first, last, expect_stamp, expected)
                .await?
            {
                return Ok(events);
            }
            stamp = self.read_stamp(share).await?;
            expect_stamp = true;
        }
        Err(StoreError::Unavailable(format!(
            "counter cell {} of {} kept changing; the batch is retried",
            share.sort_key, share.customer_id
        )))
    }

    /// One conditional `UpdateItem`: `ADD`s the counts and stamps `last`. Without
    /// `expect_stamp`, on condition that the stamp is absent or before `first`; with it, on
    /// condition that the stamp is still `expected` (`None`: absent). `false` when the
    /// condition failed.
    async fn update_cell(
        &self,
        share: &CellShare<'_>,
        counts: &UsageCounts,
        first: &str,
        last: &str,
        expect_stamp: bool,
        expected: Option<&str>,
    ) -> Result<bool> {
        let mut set = vec![
            "#customer = :customer".to_owned(),
            "#stamp = :last".to_owned(),
        ];
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                usage_pk(share.customer_id),
                share.sort_key.clone(),
            )))
            .expression_attribute_names("#stamp", stamp_attribute(share.partition))
            .expression_attribute_values(":last", string(sortable_position(last)))
            .expression_attribute_names("#customer", "customer_id")
            .expression_attribute_values(":customer", string(share.customer_id));
        let counted = counts.named();
        let mut add = Vec::with_capacity(counted.len());
        for (name, value) in counted {
            add.push(format!("#{name} :{name}"));
            request = request
                .expression_attribute_names(format!("#{name}"), name)
                .expression_attribute_values(format!(":{name}"), number(value));
        }
        for (name, value) in &share.attributes {
            set.push(format!("#{name} = :{name}"));
            request = request
                .expression_attribute_names(format!("#{name}"), *name)
                .expression_attribute_values(format!(":{name}"), value.clone());
        }
        request = match (expect_stamp, expected) {
            (false, _) => request
                .condition_expression("attribute_not_exists(#stamp) OR #stamp < :first")
                .expression_attribute_values(":first", string(sortable_position(first))),
            (true, Some(stamp)) => request
                .condition_expression("#stamp = :stamp")
                .expression_attribute_values(":stamp", string(sortable_position(stamp))),
            (true, None) => request.condition_expression("attribute_not_exists(#stamp)"),
        };
        let result = request
            .update_expression(format!("ADD {} SET {}", add.join(", "), set.join(", ")))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(context))
                if matches!(
                    context.err(),
                    UpdateItemError::ConditionalCheckFailedException(_)
                ) =>
            {
                Ok(false)
            }
            Err(error) => Err(aws_error("UpdateItem", &self.table, error)),
        }
    }
}

/// Where a deliberately interrupted apply stops, as a process dying there would: the fault
/// tests' way to reach every failure point between the steps of one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyStop {
    /// After this many cell writes (in key order, one at a time), before the producers.
    AfterCells(usize),
    /// After every cell and some producers' ranges (this many).
    AfterProducers(usize),
}

/// The stop that was reached, as an error (the batch is left as a crash would leave it).
fn stopped(stop: ApplyStop) -> StoreError {
    StoreError::Unavailable(format!("apply interrupted on purpose: {stop:?}"))
}

impl DynamoCounters {
    /// Applies `events` like `Counters::apply`, but stops at `stop` as if the process died
    /// there (an `Unavailable` error). For fault tests.
    #[cfg(any(test, feature = "contract-tests"))]
    pub async fn apply_interrupted(&self, events: &[SourcedEvent], stop: ApplyStop) -> Result<()> {
        self.apply_partition(events, Some(stop)).await.map(|_| ())
    }

    /// Applies the events of one partition, in log order: classifies them against their
    /// producers' ranges, counts the new ones into their cells, then merges their numbers
    /// into the producers' ranges.
    async fn apply_partition(
        &self,
        events: &[SourcedEvent],
        stop: Option<ApplyStop>,
    ) -> Result<ApplyReport> {
        let mut stored = self.producers.load(&producers_of(events)).await?;
        let taken_before: HashMap<String, SeqRanges> = stored
            .iter()
            .map(|(producer, stored)| (producer.clone(), stored.ranges.clone()))
            .collect();
        let classified = classify_batch(events, &taken_before);
        let shares = cell_shares(classified.new_events());
        if let Some(ApplyStop::AfterCells(cells)) = stop {
            for share in shares.iter().take(cells) {
                self.write_share(share).await?;
            }
            return Err(stopped(ApplyStop::AfterCells(cells)));
        }
        let writes: Vec<futures::future::BoxFuture<'_, Result<usize>>> = shares
            .iter()
            .map(|share| -> futures::future::BoxFuture<'_, Result<usize>> {
                Box::pin(async move {
                    let added = self.write_share(share).await?;
                    Ok(if share.daily { added } else { 0 })
                })
            })
            .collect();
        let counted: usize = futures::stream::iter(writes)
            .buffer_unordered(CELL_WRITES_IN_FLIGHT)
            .try_collect::<Vec<usize>>()
            .await?
            .into_iter()
            .sum();
        for (index, (producer, taken)) in classified.taken().into_iter().enumerate() {
            if stop == Some(ApplyStop::AfterProducers(index)) {
                return Err(stopped(ApplyStop::AfterProducers(index)));
            }
            let known = stored.remove(producer).unwrap_or_default();
            self.producers.merge(producer, known, &taken).await?;
        }
        // Counted: the events this call added to their daily cells (a concurrent attempt
        // of the same batch may have added some of them first).
        Ok(ApplyReport {
            counted,
            duplicates: events.len() - counted,
        })
    }
}

#[async_trait]
impl Counters for DynamoCounters {
    async fn apply(&self, events: &[SourcedEvent]) -> Result<ApplyReport> {
        let mut report = ApplyReport::default();
        let mut rest = events;
        while let Some(first) = rest.first() {
            let run = rest
                .iter()
                .position(|sourced| sourced.partition != first.partition)
                .unwrap_or(rest.len());
            let (partition_events, after) = rest.split_at(run);
            let applied = self.apply_partition(partition_events, None).await?;
            report.counted += applied.counted;
            report.duplicates += applied.duplicates;
            rest = after;
        }
        Ok(report)
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
    Ok(UsageCounts {
        requests: get_count(item, "requests")?,
        rejected: get_count(item, "rejected")?,
        errors: get_count(item, "errors")?,
        input_tokens: get_count(item, "input_tokens")?,
        output_tokens: get_count(item, "output_tokens")?,
        cache_read_tokens: get_count(item, "cache_read_tokens")?,
        cache_write_tokens: get_count(item, "cache_write_tokens")?,
    })
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
