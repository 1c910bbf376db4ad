//! Appends to the event log with retries of only the failed records: until a deadline
//! (then the caller spools what is left), or until every record is durable.

use std::sync::atomic::Ordering;
use std::time::Duration;

use schemas::usage_frame::record_event_count;
use store::{EventAppender, LogRecord};

use super::backoff::{MAX_BACKOFF, with_jitter};
use super::metrics::EmitterStats;

/// Longest wait for one append before it counts as failed (it may still have been written;
/// consumers dedupe by `event_id`).
pub const APPEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Where an append runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOn {
    /// As a task: the log's `append`, which hands blocking work to the blocking pool.
    Task,
    /// On the calling thread when the log can ([`EventAppender::append_now`]), blocking
    /// it: for a caller with a thread of its own (the spool's drainer).
    CallingThread,
}

/// Appends records, retrying only the failed ones, until they are durable or `deadline`
/// has passed; returns the records still not in the log. The first attempt is always made.
pub async fn append_within(
    log: &dyn EventAppender,
    records: Vec<LogRecord>,
    deadline: Duration,
    stats: &EmitterStats,
) -> Vec<LogRecord> {
    append_within_on(log, records, deadline, stats, AppendOn::Task).await
}

/// [`append_within`], each attempt made where `on` says.
pub async fn append_within_on(
    log: &dyn EventAppender,
    mut records: Vec<LogRecord>,
    deadline: Duration,
    stats: &EmitterStats,
    on: AppendOn,
) -> Vec<LogRecord> {
    let give_up_at = tokio::time::Instant::now() + deadline;
    let mut backoff = Duration::from_millis(50);
    while !records.is_empty() {
        records = append_once(log, records, stats, on).await;
        if records.is_empty() {
            break;
        }
        stats.append_retries.fetch_add(1, Ordering::Relaxed);
        let pause = with_jitter(backoff);
        if tokio::time::Instant::now() + pause >= give_up_at {
            break;
        }
        tokio::time::sleep(pause).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    records
}

/// One append, where `on` says; returns the records that did not make it.
async fn append_once(
    log: &dyn EventAppender,
    records: Vec<LogRecord>,
    stats: &EmitterStats,
    on: AppendOn,
) -> Vec<LogRecord> {
    let now = match on {
        AppendOn::CallingThread => log.append_now(&records),
        AppendOn::Task => None,
    };
    let answer = match now {
        Some(answer) => Ok(answer),
        None => tokio::time::timeout(APPEND_TIMEOUT, log.append(&records)).await,
    };
    match answer {
        Ok(Ok(results)) if results.len() != records.len() => {
            tracing::error!(
                sent = records.len(),
                answered = results.len(),
                "event log answered a different number of results; retrying the whole batch"
            );
            records
        }
        Ok(Ok(results)) => {
            let mut failed = Vec::new();
            for (record, result) in records.into_iter().zip(results) {
                match result {
                    Ok(_) => {
                        let events = record_event_count(&record.data) as u64;
                        stats.appended.fetch_add(events, Ordering::Relaxed);
                    }
                    Err(failure) => {
                        tracing::warn!(message = %failure.message, retryable = failure.retryable, "usage event append failed; retrying");
                        failed.push(record);
                    }
                }
            }
            failed
        }
        Ok(Err(error)) => {
            tracing::warn!(error = %error, records = records.len(), "usage event log unavailable; retrying");
            records
        }
        Err(_) => {
            tracing::warn!(records = records.len(), timeout = ?APPEND_TIMEOUT, "usage event log did not answer in time; retrying");
            records
        }
    }
}

/// Appends records, retrying only the failed ones, until all are durable.
pub async fn append_until_durable(
    log: &dyn EventAppender,
    mut records: Vec<LogRecord>,
    stats: &EmitterStats,
) {
    let mut backoff = Duration::from_millis(50);
    while !records.is_empty() {
        records = append_once(log, records, stats, AppendOn::Task).await;
        if !records.is_empty() {
            stats.append_retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(with_jitter(backoff)).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}
