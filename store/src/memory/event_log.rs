//! The event log in memory (appender, reader, checkpoints): one partition, positions are 1-based indexes, zero-padded.

use async_trait::async_trait;

use super::{MEMORY_PARTITION, MemoryStore};
use crate::event_log::{
    AppendResult, Checkpoints, EventAppender, EventReader, LogEntry, LogRecord, PartitionInfo,
    ReadBatch,
};
use crate::{Result, StoreError};

fn format_position(index: usize) -> String {
    format!("{index:020}")
}

fn parse_position(position: &str) -> Result<usize> {
    position
        .parse()
        .map_err(|_| StoreError::Corrupt(format!("invalid memory log position {position:?}")))
}

#[async_trait]
impl EventAppender for MemoryStore {
    async fn append(&self, records: &[LogRecord]) -> Result<Vec<AppendResult>> {
        self.append_records(records)
    }

    fn append_now(&self, records: &[LogRecord]) -> Option<Result<Vec<AppendResult>>> {
        Some(self.append_records(records))
    }
}

impl MemoryStore {
    fn append_records(&self, records: &[LogRecord]) -> Result<Vec<AppendResult>> {
        let mut state = self.state()?;
        let mut results = Vec::with_capacity(records.len());
        for record in records {
            state.log.push(record.clone());
            results.push(Ok(format_position(state.log.len())));
        }
        Ok(results)
    }
}

#[async_trait]
impl EventReader for MemoryStore {
    async fn partitions(&self) -> Result<Vec<PartitionInfo>> {
        Ok(vec![PartitionInfo {
            id: MEMORY_PARTITION.to_owned(),
            parents: Vec::new(),
        }])
    }

    async fn read(
        &self,
        partition: &str,
        after: Option<&str>,
        max_records: usize,
    ) -> Result<ReadBatch> {
        if partition != MEMORY_PARTITION {
            return Err(StoreError::not_found(format!("partition {partition}")));
        }
        let start = after.map(parse_position).transpose()?.unwrap_or(0);
        let state = self.state()?;
        let entries: Vec<LogEntry> = state
            .log
            .iter()
            .enumerate()
            .skip(start)
            .take(max_records)
            .map(|(index, record)| LogEntry {
                partition: MEMORY_PARTITION.to_owned(),
                position: format_position(index + 1),
                partition_key: record.partition_key.clone(),
                data: record.data.clone(),
            })
            .collect();
        Ok(ReadBatch {
            caught_up: start + entries.len() >= state.log.len(),
            entries,
            end_of_partition: false,
        })
    }
}

#[async_trait]
impl Checkpoints for MemoryStore {
    async fn load_checkpoint(&self, consumer: &str, partition: &str) -> Result<Option<String>> {
        Ok(self
            .state()?
            .checkpoints
            .get(&(consumer.to_owned(), partition.to_owned()))
            .cloned())
    }

    async fn commit_checkpoint(
        &self,
        consumer: &str,
        partition: &str,
        position: &str,
    ) -> Result<()> {
        self.state()?.checkpoints.insert(
            (consumer.to_owned(), partition.to_owned()),
            position.to_owned(),
        );
        Ok(())
    }
}
