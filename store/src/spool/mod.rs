//! The `Spool` port: a durable first-in, first-out queue of log records that could not be
//! appended to the event log yet (the log rejected them or timed out). The proxy pushes
//! them here, answers its clients, and a drainer appends them to the log in order once it
//! is back.
//!
//! Backends: [`FileSpool`] (segment files in a local directory, fsynced, one process at a
//! time per directory) and [`MemorySpool`] (tests).

mod file;
mod memory;

use async_trait::async_trait;

pub use file::{FileSpool, SpoolSlot};
pub use memory::MemorySpool;

use crate::{LogRecord, Result};

/// How much a spool holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpoolLevel {
    pub records: u64,
    pub bytes: u64,
}

/// A durable FIFO of log records.
///
/// Contracts every backend keeps:
/// - `push` is durable when it returns `Ok` (a crash after it loses nothing) and never
///   refuses for size: what was served must be kept. Callers bound the spool by refusing
///   new work once [`Spool::level`] is over their limit.
/// - `peek` returns records from the head, oldest first, in push order, without removing
///   them; `pop(n)` removes the first `n` (after they reached the log). A crash between
///   the log append and `pop` sends them again: consumers dedupe by `event_id`.
/// - Reopening the same place after the process stopped (even killed) finds exactly the
///   records pushed and not popped. After a crash of the machine, records popped shortly
///   before it may be found again (sent twice; consumers dedupe).
/// - `push_now`, where a backend has it, keeps the records as `push` does, except that
///   they survive a kill of the process but not a crash of the machine.
/// - `peek_now` and `pop_now`, where a backend has them, do what `peek` and `pop` do, on
///   the calling thread.
#[async_trait]
pub trait Spool: Send + Sync {
    /// Appends records at the tail, durably.
    async fn push(&self, records: &[LogRecord]) -> Result<()>;

    /// Appends records at the tail on the calling thread, written but not synced to disk:
    /// they survive a kill of the process, not a crash of the machine (as the embedded
    /// log's appends). For a caller that waits for its records and cannot afford an
    /// fsync. `None` when this spool has no such path.
    fn push_now(&self, _records: &[LogRecord]) -> Option<Result<()>> {
        None
    }

    /// Up to `max` records from the head, oldest first.
    async fn peek(&self, max: usize) -> Result<Vec<LogRecord>>;

    /// Removes the first `count` records (at most what the spool holds).
    async fn pop(&self, count: usize) -> Result<()>;

    /// [`Spool::peek`] on the calling thread, which it may block on the spool's files: for
    /// a caller with a thread of its own (the drainer), which saves a hand-off to the
    /// blocking pool and back. `None` when this spool has no such path.
    fn peek_now(&self, _max: usize) -> Option<Result<Vec<LogRecord>>> {
        None
    }

    /// [`Spool::pop`] on the calling thread, as [`Spool::peek_now`]. `None` when this spool
    /// has no such path.
    fn pop_now(&self, _count: usize) -> Option<Result<()>> {
        None
    }

    /// What the spool holds now.
    fn level(&self) -> SpoolLevel;
}

/// [`Spool::peek_now`] when `on_calling_thread` and the spool has it, else [`Spool::peek`].
pub async fn peek_on(
    spool: &dyn Spool,
    max: usize,
    on_calling_thread: bool,
) -> Result<Vec<LogRecord>> {
    if on_calling_thread && let Some(peeked) = spool.peek_now(max) {
        return peeked;
    }
    spool.peek(max).await
}

/// [`Spool::pop_now`] when `on_calling_thread` and the spool has it, else [`Spool::pop`].
pub async fn pop_on(spool: &dyn Spool, count: usize, on_calling_thread: bool) -> Result<()> {
    if on_calling_thread && let Some(popped) = spool.pop_now(count) {
        return popped;
    }
    spool.pop(count).await
}
