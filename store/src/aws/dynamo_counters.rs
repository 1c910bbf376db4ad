//! `Counters` on DynamoDB, and the consumer's checkpoints, in one table (`pk`, `sk`).
//!
//! | item | pk | sk | attributes |
//! |---|---|---|---|
//! | counter cell | `USAGE#<customer_id>` | `DAY#<yyyy-mm-dd>#MODEL#<model_id>` | requests, rejected, errors, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens (numbers, `ADD`ed) |
//! | hourly cell | `USAGE#<customer_id>` | `HOUR#<yyyy-mm-ddThh>` | the same counts, expires_at (TTL, 35 days after the hour) |
//! | dedupe mark | `EVENT#<event_id>` | `DEDUPE` | source, applied_at_ms, expires_at (TTL, epoch seconds) |
//! | checkpoint | `CHECKPOINT#<consumer>` | `PARTITION#<partition>` | position, updated_at_ms |
//!
//! `apply` groups new events by (customer, day) and writes each group in
//! `TransactWriteItems`: one conditional `Put` of a dedupe mark per event
//! (`attribute_not_exists(pk)`) and one `Update … ADD` per daily and hourly cell, so a mark and its
//! increments commit together. A transaction holds at most 100 actions and never touches an
//! item twice (cells are merged per transaction). When a condition fails, the marks are read
//! back to learn which events were already counted, and the rest are written again.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use chrono::{NaiveDate, Utc};
use schemas::usage_counts::{
    aggregate_events, aggregate_hourly, hour_id, hour_start, parse_hour_id,
};
use schemas::{DailyUsage, HourlyUsage, UsageCounts};
use uuid::Uuid;

use super::attributes::{Item, get_count, get_string, key, number, string};
use super::errors::{aws_error, rejected};
use crate::counters::{ApplyReport, Counters, HOURLY_RETENTION_DAYS, SourcedEvent};
use crate::dedupe::classify_batch;
use crate::{Result, StoreError};

/// Most actions in one DynamoDB transaction.
pub const MAX_TRANSACTION_ACTIONS: usize = 100;
/// How often a group is retried after some of its marks turned out to exist already.
const MAX_CONDITION_ROUNDS: usize = 8;

/// Counters, dedupe marks and checkpoints in one DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoCounters {
    client: Client,
    table: String,
    dedupe_retention: Duration,
}

fn usage_pk(customer_id: &str) -> String {
    format!("USAGE#{customer_id}")
}

fn cell_sk(day: NaiveDate, model_id: &str) -> String {
    format!("DAY#{day}#MODEL#{model_id}")
}

fn hour_sk(hour: chrono::DateTime<Utc>) -> String {
    format!("HOUR#{}", hour_id(hour))
}

fn mark_key(event_id: Uuid) -> Item {
    key(format!("EVENT#{}", event_id.hyphenated()), "DEDUPE")
}

fn build<T, E: std::fmt::Display>(built: std::result::Result<T, E>) -> Result<T> {
    built.map_err(|error| rejected(format!("invalid request: {error}")))
}

/// Splits a (customer, day) group of events into transactions of at most 100 actions:
/// one per event plus one per distinct model and one per distinct hour among them.
pub fn chunk_for_transactions<'a>(events: &[&'a SourcedEvent]) -> Vec<Vec<&'a SourcedEvent>> {
    let mut chunks: Vec<Vec<&SourcedEvent>> = Vec::new();
    let mut current: Vec<&SourcedEvent> = Vec::new();
    let mut cells: Vec<String> = Vec::new();
    for sourced in events {
        let event_cells = [
            cell_sk(sourced.event.day(), &sourced.event.model_id),
            hour_sk(hour_start(sourced.event.occurred_at)),
        ];
        let new_cells = event_cells
            .iter()
            .filter(|cell| !cells.contains(cell))
            .count();
        let actions_after = current.len() + 1 + cells.len() + new_cells;
        if actions_after > MAX_TRANSACTION_ACTIONS && !current.is_empty() {
            chunks.push(std::mem::take(&mut current));
            cells.clear();
        }
        for cell in event_cells {
            if !cells.contains(&cell) {
                cells.push(cell);
            }
        }
        current.push(sourced);
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

enum GroupWrite {
    Written,
    /// Per action: whether its condition failed.
    ConditionsFailed(Vec<bool>),
}

impl DynamoCounters {
    /// Counters over `table`; dedupe marks expire `dedupe_retention` after they are written.
    pub fn new(client: Client, table: impl Into<String>, dedupe_retention: Duration) -> Self {
        Self {
            client,
            table: table.into(),
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

    fn mark_put(&self, sourced: &SourcedEvent) -> Result<TransactWriteItem> {
        let now = Utc::now();
        let expires_at = now.timestamp()
            + i64::try_from(self.dedupe_retention.as_secs()).unwrap_or(i64::MAX / 2);
        let mut item = mark_key(sourced.event.event_id);
        item.insert("source".into(), string(&sourced.source));
        item.insert("customer_id".into(), string(&sourced.event.customer_id));
        item.insert("applied_at_ms".into(), number(now.timestamp_millis()));
        item.insert("expires_at".into(), number(expires_at));
        let put = build(
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build(),
        )?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// One `Update … ADD` of counts into a cell, setting its descriptive attributes.
    fn counts_update(
        &self,
        sort_key: String,
        customer_id: &str,
        counts: &UsageCounts,
        attributes: &[(&str, aws_sdk_dynamodb::types::AttributeValue)],
    ) -> Result<TransactWriteItem> {
        let mut set = vec!["#customer = :customer".to_owned()];
        let mut builder = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(usage_pk(customer_id), sort_key)))
            .expression_attribute_names("#requests", "requests")
            .expression_attribute_names("#rejected", "rejected")
            .expression_attribute_names("#errors", "errors")
            .expression_attribute_names("#input", "input_tokens")
            .expression_attribute_names("#output", "output_tokens")
            .expression_attribute_names("#cache_read", "cache_read_tokens")
            .expression_attribute_names("#cache_write", "cache_write_tokens")
            .expression_attribute_names("#customer", "customer_id")
            .expression_attribute_values(":requests", number(counts.requests))
            .expression_attribute_values(":rejected", number(counts.rejected))
            .expression_attribute_values(":errors", number(counts.errors))
            .expression_attribute_values(":input", number(counts.input_tokens))
            .expression_attribute_values(":output", number(counts.output_tokens))
            .expression_attribute_values(":cache_read", number(counts.cache_read_tokens))
            .expression_attribute_values(":cache_write", number(counts.cache_write_tokens))
            .expression_attribute_values(":customer", string(customer_id));
        for (name, value) in attributes {
            set.push(format!("#{name} = :{name}"));
            builder = builder
                .expression_attribute_names(format!("#{name}"), *name)
                .expression_attribute_values(format!(":{name}"), value.clone());
        }
        let update = build(
            builder
                .update_expression(format!(
                    "ADD #requests :requests, #rejected :rejected, #errors :errors, #input :input, \
                     #output :output, #cache_read :cache_read, #cache_write :cache_write SET {}",
                    set.join(", ")
                ))
                .build(),
        )?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    async fn write_group(&self, events: &[&SourcedEvent]) -> Result<GroupWrite> {
        let mut actions = Vec::with_capacity(events.len() + 4);
        for sourced in events {
            actions.push(self.mark_put(sourced)?);
        }
        for (cell, counts) in aggregate_events(events.iter().map(|sourced| &sourced.event)) {
            actions.push(self.counts_update(
                cell_sk(cell.day, &cell.model_id),
                &cell.customer_id,
                &counts,
                &[
                    ("day", string(cell.day.to_string())),
                    ("model_id", string(&cell.model_id)),
                ],
            )?);
        }
        for ((customer_id, hour), counts) in
            aggregate_hourly(events.iter().map(|sourced| &sourced.event))
        {
            let expires_at = (hour + chrono::Duration::days(HOURLY_RETENTION_DAYS)).timestamp();
            actions.push(self.counts_update(
                hour_sk(hour),
                &customer_id,
                &counts,
                &[
                    ("hour", string(hour_id(hour))),
                    ("expires_at", number(expires_at)),
                ],
            )?);
        }
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .await;
        match result {
            Ok(_) => Ok(GroupWrite::Written),
            Err(SdkError::ServiceError(context))
                if matches!(
                    context.err(),
                    TransactWriteItemsError::TransactionCanceledException(_)
                ) =>
            {
                let TransactWriteItemsError::TransactionCanceledException(cancelled) =
                    context.err()
                else {
                    return Err(rejected("unexpected transaction error"));
                };
                let failed: Vec<bool> = cancelled
                    .cancellation_reasons()
                    .iter()
                    .map(|reason| reason.code() == Some("ConditionalCheckFailed"))
                    .collect();
                if failed.iter().any(|failed| *failed) {
                    Ok(GroupWrite::ConditionsFailed(failed))
                } else {
                    Err(StoreError::Unavailable(format!(
                        "TransactWriteItems on {} was cancelled: {cancelled}",
                        self.table
                    )))
                }
            }
            Err(error) => Err(aws_error("TransactWriteItems", &self.table, error)),
        }
    }

    async fn mark_owner(&self, event_id: Uuid) -> Result<Option<String>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(mark_key(event_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| aws_error("GetItem", &self.table, error))?;
        output
            .item
            .as_ref()
            .map(|item| get_string(item, "source"))
            .transpose()
    }

    /// Writes one (customer, day) chunk of new marks with their counts. A mark whose
    /// condition fails is read back and recorded in `stored_marks` (its event is not
    /// written); the rest of the chunk is written again.
    async fn apply_chunk(
        &self,
        chunk: Vec<&SourcedEvent>,
        stored_marks: &mut HashMap<Uuid, String>,
    ) -> Result<()> {
        let mut pending = chunk;
        for _ in 0..MAX_CONDITION_ROUNDS {
            if pending.is_empty() {
                return Ok(());
            }
            match self.write_group(&pending).await? {
                GroupWrite::Written => return Ok(()),
                GroupWrite::ConditionsFailed(failed) => {
                    let mut still_pending = Vec::new();
                    for (index, sourced) in pending.into_iter().enumerate() {
                        if failed.get(index).copied().unwrap_or(false) {
                            match self.mark_owner(sourced.event.event_id).await? {
                                Some(owner) => {
                                    stored_marks.insert(sourced.event.event_id, owner);
                                }
                                None => still_pending.push(sourced),
                            }
                        } else {
                            still_pending.push(sourced);
                        }
                    }
                    pending = still_pending;
                }
            }
        }
        Err(StoreError::Unavailable(format!(
            "counter transaction on {} kept conflicting; retry the batch",
            self.table
        )))
    }
}

#[async_trait]
impl Counters for DynamoCounters {
    /// Marks are not read first: every first occurrence is written with a conditional put
    /// (as if no mark were stored), and a failed condition reveals a stored mark. Once every
    /// chunk is written, the batch is classified against the marks so revealed: exactly the
    /// events written are its new ones.
    async fn apply(&self, events: &[SourcedEvent]) -> Result<ApplyReport> {
        let optimistic = classify_batch(events, &HashMap::new());
        let mut groups: BTreeMap<(String, NaiveDate), Vec<&SourcedEvent>> = BTreeMap::new();
        for sourced in optimistic.new_marks() {
            groups
                .entry((sourced.event.customer_id.clone(), sourced.event.day()))
                .or_default()
                .push(sourced);
        }
        let mut stored_marks: HashMap<Uuid, String> = HashMap::new();
        for group in groups.into_values() {
            for chunk in chunk_for_transactions(&group) {
                self.apply_chunk(chunk, &mut stored_marks).await?;
            }
        }
        Ok(classify_batch(events, &stored_marks).report())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{day, event_on};
    use schemas::Outcome;

    fn sourced_with_model(index: usize, model: &str) -> SourcedEvent {
        SourcedEvent {
            source: format!("p/{index}"),
            event: event_on("c", day(0), model, Outcome::Success, 1, 1),
        }
    }

    #[test]
    fn chunks_stay_within_one_hundred_actions() {
        let events: Vec<SourcedEvent> = (0..250)
            .map(|index| sourced_with_model(index, &format!("m{}", index % 3)))
            .collect();
        let references: Vec<&SourcedEvent> = events.iter().collect();
        let chunks = chunk_for_transactions(&references);
        let mut total = 0;
        for chunk in &chunks {
            let mut models: Vec<&str> = chunk
                .iter()
                .map(|sourced| sourced.event.model_id.as_str())
                .collect();
            models.sort_unstable();
            models.dedup();
            // Every event of the fixture is in the same hour: one hourly cell.
            let hourly_cells = 1;
            assert!(chunk.len() + models.len() + hourly_cells <= MAX_TRANSACTION_ACTIONS);
            total += chunk.len();
        }
        assert_eq!(total, 250);
        assert_eq!(chunks.len(), 3);
    }

    #[test]
    fn many_models_still_fit() {
        let events: Vec<SourcedEvent> = (0..120)
            .map(|index| sourced_with_model(index, &format!("m{index}")))
            .collect();
        let references: Vec<&SourcedEvent> = events.iter().collect();
        for chunk in chunk_for_transactions(&references) {
            assert!(chunk.len() * 2 <= MAX_TRANSACTION_ACTIONS);
        }
    }
}
