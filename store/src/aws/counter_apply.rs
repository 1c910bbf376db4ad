//! The counters' apply on DynamoDB's key layout, over any [`ItemTable`]: the DynamoDB
//! backend runs it on the table, the scale simulator on an in-memory one.
//!
//! It reads the ranges of the batch's producers, classifies the batch (`crate::dedupe`),
//! then writes each touched cell with one conditional `UpdateItem`, and last merges the new
//! numbers into the producers' items (`dynamo_counters` has the argument).

use std::collections::HashMap;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};

use super::dynamo_cells::{CellShare, cell_key, cell_shares, plan_cell_update, stamp_of};
use super::dynamo_producers::DynamoProducers;
use super::item_table::ItemTable;
use crate::counters::{ApplyReport, SourcedEvent};
use crate::dedupe::{SeqRanges, classify_batch, producers_of};
use crate::{Result, StoreError};

/// Cell writes in flight at once for one batch.
pub const CELL_WRITES_IN_FLIGHT: usize = 16;
/// Rounds of a cell's conditional write before the batch is failed (and retried).
const MAX_CELL_ROUNDS: usize = 8;

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

/// Counts `events` (in log order, any partitions) into the cells of `items`, exactly once
/// per producer number; a producer's ranges expire `retention` after its last write.
pub async fn apply_events(
    items: &dyn ItemTable,
    retention: Duration,
    events: &[SourcedEvent],
) -> Result<ApplyReport> {
    let mut report = ApplyReport::default();
    let mut rest = events;
    while let Some(first) = rest.first() {
        let run = rest
            .iter()
            .position(|sourced| sourced.partition != first.partition)
            .unwrap_or(rest.len());
        let (partition_events, after) = rest.split_at(run);
        let applied = apply_partition(items, retention, partition_events, None).await?;
        report.counted += applied.counted;
        report.duplicates += applied.duplicates;
        rest = after;
    }
    Ok(report)
}

/// Adds a cell's share, once; returns how many of its events this call added. The first
/// attempt assumes nothing of it is stored yet; a failed condition means an earlier or
/// concurrent attempt stored some of it, so the stamp is read and only what follows it is
/// added.
async fn write_share(items: &dyn ItemTable, share: &CellShare<'_>) -> Result<usize> {
    let mut stamp: Option<String> = None;
    let mut expect_stamp = false;
    for _ in 0..MAX_CELL_ROUNDS {
        let Some((counts, events, first, last)) = share.after(stamp.as_deref()) else {
            return Ok(0);
        };
        let expected = expect_stamp.then_some(stamp.as_deref()).flatten();
        let update = plan_cell_update(share, &counts, first, last, expect_stamp, expected);
        if items.update_cell(&update).await? {
            return Ok(events);
        }
        stamp = items
            .get_item(cell_key(share))
            .await?
            .and_then(|item| stamp_of(&item, share.partition));
        expect_stamp = true;
    }
    Err(StoreError::Unavailable(format!(
        "counter cell {} of {} kept changing; the batch is retried",
        share.sort_key, share.customer_id
    )))
}

/// Applies the events of one partition, in log order: classifies them against their
/// producers' ranges, counts the new ones into their cells, then merges their numbers into
/// the producers' ranges. With `stop`, stops there as a crash would (an error).
pub async fn apply_partition(
    items: &dyn ItemTable,
    retention: Duration,
    events: &[SourcedEvent],
    stop: Option<ApplyStop>,
) -> Result<ApplyReport> {
    let producers = DynamoProducers::new(retention);
    let mut stored = producers.load(items, &producers_of(events)).await?;
    let taken_before: HashMap<String, SeqRanges> = stored
        .iter()
        .map(|(producer, stored)| (producer.clone(), stored.ranges.clone()))
        .collect();
    let classified = classify_batch(events, &taken_before);
    let shares = cell_shares(classified.new_events());
    if let Some(ApplyStop::AfterCells(cells)) = stop {
        for share in shares.iter().take(cells) {
            write_share(items, share).await?;
        }
        return Err(stopped(ApplyStop::AfterCells(cells)));
    }
    let writes: Vec<futures::future::BoxFuture<'_, Result<usize>>> = shares
        .iter()
        .map(|share| -> futures::future::BoxFuture<'_, Result<usize>> {
            Box::pin(async move {
                let added = write_share(items, share).await?;
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
        producers.merge(items, producer, known, &taken).await?;
    }
    // Counted: the events this call added to their daily cells (a concurrent attempt of
    // the same batch may have added some of them first).
    Ok(ApplyReport {
        counted,
        duplicates: events.len() - counted,
    })
}
