//! The event log on SQLite (appender, reader and checkpoints): one table, one partition,
//! positions are zero-padded sequence numbers.

use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;
use rusqlite::{OptionalExtension, params};

use std::time::Duration;

use super::{EMBEDDED_PARTITION, EmbeddedStore, LOG_BUSY_TIMEOUT};
use crate::event_log::{
    AppendResult, Checkpoints, EventAppender, EventReader, LogEntry, LogRecord, PartitionInfo,
    ReadBatch,
};
use crate::{Result, StoreError};

pub(super) fn format_position(seq: i64) -> String {
    format!("{seq:020}")
}

pub(super) fn parse_position(position: &str) -> Result<i64> {
    position
        .parse()
        .map_err(|_| StoreError::Corrupt(format!("invalid embedded log position {position:?}")))
}

/// Appends records in one transaction; their positions, in order.
fn append_records(
    connection: &mut rusqlite::Connection,
    records: &[LogRecord],
) -> rusqlite::Result<Vec<AppendResult>> {
    let transaction =
        connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let now = Utc::now().timestamp_millis();
    let mut positions = Vec::with_capacity(records.len());
    {
        let mut insert = transaction.prepare_cached(
            "INSERT INTO event_log (partition_key, data, appended_at_ms) VALUES (?1, ?2, ?3)",
        )?;
        for record in records {
            insert.execute(params![record.partition_key, record.data.as_ref(), now])?;
            positions.push(Ok(format_position(transaction.last_insert_rowid())));
        }
    }
    transaction.commit()?;
    Ok(positions)
}

/// Whether SQLite refused because another connection holds the write lock.
fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

#[async_trait]
impl EventAppender for EmbeddedStore {
    async fn append(&self, records: &[LogRecord]) -> Result<Vec<AppendResult>> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let records = records.to_vec();
        self.with_log_connection(move |connection| Ok(append_records(connection, &records)?))
            .await
    }

    /// On the caller's thread, only when the append connection is free and no other
    /// connection holds the database's write lock (the consumer's counter transactions):
    /// it never waits for either.
    fn append_now(&self, records: &[LogRecord]) -> Option<Result<Vec<AppendResult>>> {
        if records.is_empty() {
            return Some(Ok(Vec::new()));
        }
        let mut connection = self.log_connection.try_lock().ok()?;
        if let Err(error) = connection.busy_timeout(Duration::ZERO) {
            return Some(Err(error.into()));
        }
        let appended = append_records(&mut connection, records);
        if let Err(error) = connection.busy_timeout(LOG_BUSY_TIMEOUT) {
            return Some(Err(error.into()));
        }
        match appended {
            Err(error) if is_busy(&error) => None,
            appended => Some(appended.map_err(StoreError::from)),
        }
    }
}

#[async_trait]
impl EventReader for EmbeddedStore {
    async fn partitions(&self) -> Result<Vec<PartitionInfo>> {
        Ok(vec![PartitionInfo {
            id: EMBEDDED_PARTITION.to_owned(),
            parents: Vec::new(),
        }])
    }

    async fn read(
        &self,
        partition: &str,
        after: Option<&str>,
        max_records: usize,
    ) -> Result<ReadBatch> {
        if partition != EMBEDDED_PARTITION {
            return Err(StoreError::not_found(format!("partition {partition}")));
        }
        let after_seq = after.map(parse_position).transpose()?.unwrap_or(0);
        let limit = i64::try_from(max_records).unwrap_or(i64::MAX);
        self.with_connection(move |connection| {
            let mut select = connection.prepare_cached(
                "SELECT seq, partition_key, data FROM event_log WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?;
            let rows = select.query_map(params![after_seq, limit], |row| {
                Ok(LogEntry {
                    partition: EMBEDDED_PARTITION.to_owned(),
                    position: format_position(row.get(0)?),
                    partition_key: row.get(1)?,
                    data: Bytes::from(row.get::<_, Vec<u8>>(2)?),
                })
            })?;
            let entries = rows.collect::<rusqlite::Result<Vec<_>>>()?;
            // One statement sees every row committed before it: fewer than asked for means
            // nothing more was there.
            Ok(ReadBatch {
                caught_up: entries.len() < max_records,
                entries,
                end_of_partition: false,
            })
        })
        .await
    }
}

#[async_trait]
impl Checkpoints for EmbeddedStore {
    async fn load_checkpoint(&self, consumer: &str, partition: &str) -> Result<Option<String>> {
        let (consumer, partition) = (consumer.to_owned(), partition.to_owned());
        self.with_connection(move |connection| {
            Ok(connection
                .query_row(
                    "SELECT position FROM checkpoints WHERE consumer = ?1 AND partition = ?2",
                    params![consumer, partition],
                    |row| row.get(0),
                )
                .optional()?)
        })
        .await
    }

    async fn commit_checkpoint(
        &self,
        consumer: &str,
        partition: &str,
        position: &str,
    ) -> Result<()> {
        let (consumer, partition, position) = (
            consumer.to_owned(),
            partition.to_owned(),
            position.to_owned(),
        );
        self.with_connection(move |connection| {
            connection.execute(
                "INSERT INTO checkpoints (consumer, partition, position, updated_at_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (consumer, partition) DO UPDATE SET position = excluded.position, updated_at_ms = excluded.updated_at_ms",
                params![consumer, partition, position, Utc::now().timestamp_millis()],
            )?;
            Ok(())
        })
        .await
    }
}
