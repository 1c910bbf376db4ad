//! `Archive` on Kinesis Data Firehose: `PutRecordBatch` with newline-delimited JSON, so the
//! delivery stream's S3 objects hold one event per line.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_firehose::Client;
use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::Record;
use bytes::Bytes;

use super::errors::{aws_error, is_retryable_code, rejected};
use crate::archive::Archive;
use crate::{Result, StoreError};

/// Most records in one `PutRecordBatch` call.
pub const MAX_BATCH_RECORDS: usize = 500;
/// Most bytes in one `PutRecordBatch` call.
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
const MAX_ROUNDS: usize = 6;

/// The Firehose archive.
#[derive(Debug, Clone)]
pub struct FirehoseArchive {
    client: Client,
    delivery_stream: String,
}

/// Splits lines into batches within Firehose's count and size limits.
pub fn split_batches(lines: &[Bytes]) -> Vec<&[Bytes]> {
    let mut batches = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (index, line) in lines.iter().enumerate() {
        let count = index - start;
        if count > 0 && (count == MAX_BATCH_RECORDS || bytes + line.len() > MAX_BATCH_BYTES) {
            batches.push(&lines[start..index]);
            start = index;
            bytes = 0;
        }
        bytes += line.len();
    }
    if start < lines.len() {
        batches.push(&lines[start..]);
    }
    batches
}

impl FirehoseArchive {
    /// An archive writing to `delivery_stream`.
    pub fn new(client: Client, delivery_stream: impl Into<String>) -> Self {
        Self {
            client,
            delivery_stream: delivery_stream.into(),
        }
    }

    /// Puts one batch, retrying only the failed records.
    async fn put_batch(&self, batch: &[Bytes]) -> Result<()> {
        let mut pending: Vec<Bytes> = batch.to_vec();
        let mut backoff = Duration::from_millis(100);
        for _ in 0..MAX_ROUNDS {
            let records: Vec<Record> = pending
                .iter()
                .map(|line| Record::builder().data(Blob::new(line.to_vec())).build())
                .collect::<std::result::Result<_, _>>()
                .map_err(|error| rejected(format!("invalid firehose record: {error}")))?;
            let output = self
                .client
                .put_record_batch()
                .delivery_stream_name(&self.delivery_stream)
                .set_records(Some(records))
                .send()
                .await
                .map_err(|error| aws_error("PutRecordBatch", &self.delivery_stream, error))?;
            if output.failed_put_count() == 0 {
                return Ok(());
            }
            let mut failed = Vec::new();
            for (line, response) in pending.into_iter().zip(output.request_responses()) {
                if let Some(code) = response.error_code() {
                    if !is_retryable_code(Some(code)) && code != "ServiceUnavailableException" {
                        return Err(rejected(format!(
                            "PutRecordBatch on {} refused a record: {code}: {}",
                            self.delivery_stream,
                            response.error_message().unwrap_or_default()
                        )));
                    }
                    failed.push(line);
                }
            }
            pending = failed;
            if pending.is_empty() {
                return Ok(());
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
        Err(StoreError::Unavailable(format!(
            "PutRecordBatch on {} kept failing for {} records",
            self.delivery_stream,
            pending.len()
        )))
    }
}

#[async_trait]
impl Archive for FirehoseArchive {
    async fn archive(&self, records: &[Bytes]) -> Result<()> {
        let lines: Vec<Bytes> = records
            .iter()
            .map(|record| {
                let mut line = Vec::with_capacity(record.len() + 1);
                line.extend_from_slice(record);
                if !record.ends_with(b"\n") {
                    line.push(b'\n');
                }
                Bytes::from(line)
            })
            .collect();
        for batch in split_batches(&lines) {
            self.put_batch(batch).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_firehose_limits() {
        let lines: Vec<Bytes> = (0..1001).map(|_| Bytes::from(vec![b'x'; 100])).collect();
        let sizes: Vec<usize> = split_batches(&lines)
            .iter()
            .map(|batch| batch.len())
            .collect();
        assert_eq!(sizes, vec![500, 500, 1]);
        let big: Vec<Bytes> = (0..10)
            .map(|_| Bytes::from(vec![b'x'; 900 * 1024]))
            .collect();
        for batch in split_batches(&big) {
            assert!(batch.iter().map(Bytes::len).sum::<usize>() <= MAX_BATCH_BYTES);
        }
    }
}
