//! A spool in memory, for tests.

use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{Spool, SpoolLevel};
use crate::{LogRecord, Result, StoreError};

/// Records in memory; durable only as long as the process.
#[derive(Debug, Default)]
pub struct MemorySpool {
    records: Mutex<VecDeque<LogRecord>>,
}

impl MemorySpool {
    /// An empty spool.
    pub fn new() -> Self {
        Self::default()
    }

    fn head(&self, max: usize) -> Result<Vec<LogRecord>> {
        Ok(self.records()?.iter().take(max).cloned().collect())
    }

    fn remove_head(&self, count: usize) -> Result<()> {
        let mut records = self.records()?;
        let count = count.min(records.len());
        records.drain(..count);
        Ok(())
    }

    fn records(&self) -> Result<std::sync::MutexGuard<'_, VecDeque<LogRecord>>> {
        self.records
            .lock()
            .map_err(|_| StoreError::Task("memory spool lock poisoned".into()))
    }
}

#[async_trait]
impl Spool for MemorySpool {
    async fn push(&self, records: &[LogRecord]) -> Result<()> {
        self.records()?.extend(records.iter().cloned());
        Ok(())
    }

    async fn peek(&self, max: usize) -> Result<Vec<LogRecord>> {
        self.head(max)
    }

    async fn pop(&self, count: usize) -> Result<()> {
        self.remove_head(count)
    }

    fn peek_now(&self, max: usize) -> Option<Result<Vec<LogRecord>>> {
        Some(self.head(max))
    }

    fn pop_now(&self, count: usize) -> Option<Result<()>> {
        Some(self.remove_head(count))
    }

    fn level(&self) -> SpoolLevel {
        self.records()
            .map_or(SpoolLevel::default(), |records| SpoolLevel {
                records: records.len() as u64,
                bytes: records
                    .iter()
                    .map(|record| (record.partition_key.len() + record.data.len()) as u64)
                    .sum(),
            })
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn memory_spool_contract() {
        crate::contract::spool::run_all(&super::MemorySpool::new()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory_spool_level_settles_under_concurrent_pushes_and_pops() {
        crate::contract::spool::level_settles_on_the_records_held(std::sync::Arc::new(
            super::MemorySpool::new(),
        ))
        .await;
    }
}
