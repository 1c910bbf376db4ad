//! `Checkpoints` in DynamoDB: items `CHECKPOINT#<consumer>` / `PARTITION#<shard>` in the
//! counters table, one per consumer and partition, read with strong consistency.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use chrono::Utc;

use super::attributes::{get_string, key, number, string};
use super::errors::aws_error;
use crate::Result;
use crate::event_log::Checkpoints;

/// Consumer checkpoints in a DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoCheckpoints {
    dynamo: Client,
    checkpoint_table: String,
}

impl DynamoCheckpoints {
    /// Checkpoints kept in `checkpoint_table` (the counters table).
    pub fn new(dynamo: Client, checkpoint_table: impl Into<String>) -> Self {
        Self {
            dynamo,
            checkpoint_table: checkpoint_table.into(),
        }
    }
}

#[async_trait]
impl Checkpoints for DynamoCheckpoints {
    async fn load_checkpoint(&self, consumer: &str, partition: &str) -> Result<Option<String>> {
        let output = self
            .dynamo
            .get_item()
            .table_name(&self.checkpoint_table)
            .set_key(Some(key(
                format!("CHECKPOINT#{consumer}"),
                format!("PARTITION#{partition}"),
            )))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| aws_error("GetItem", &self.checkpoint_table, error))?;
        output
            .item
            .as_ref()
            .map(|item| get_string(item, "position"))
            .transpose()
    }

    async fn commit_checkpoint(
        &self,
        consumer: &str,
        partition: &str,
        position: &str,
    ) -> Result<()> {
        let mut item = key(
            format!("CHECKPOINT#{consumer}"),
            format!("PARTITION#{partition}"),
        );
        item.insert("position".into(), string(position));
        item.insert(
            "updated_at_ms".into(),
            number(Utc::now().timestamp_millis()),
        );
        self.dynamo
            .put_item()
            .table_name(&self.checkpoint_table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|error| aws_error("PutItem", &self.checkpoint_table, error))?;
        Ok(())
    }
}
