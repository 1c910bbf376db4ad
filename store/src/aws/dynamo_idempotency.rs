//! `IdempotencyKeys` on DynamoDB: one item per key in the counters table, whose TTL
//! (`expires_at`) forgets it a day later.
//!
//! | item | pk | sk | attributes |
//! |---|---|---|---|
//! | idempotency key | `IDEMPOTENCY#<lookup>` | `REQUEST` | request_hash, created_at_ms, status, answer (B, sealed), expires_at (TTL), entity=`idempotency` |
//!
//! A claim is one conditional `PutItem`: the item must be absent or expired (TTL deletes
//! lazily, so an expired item may still be there). An answer is an `UpdateItem` that needs
//! the item unanswered; a release a `DeleteItem` that needs it unanswered.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::attributes::{
    Item, get_number, get_optional_number, get_string, key, number, string, timestamp,
};
use super::errors::aws_error;
use crate::idempotency::{Claim, IDEMPOTENCY_RETENTION_HOURS, IdempotencyKeys, IdempotencyRecord};
use crate::{Result, StoreError};

/// Idempotency records in the counters table.
#[derive(Debug, Clone)]
pub struct DynamoIdempotency {
    client: Client,
    table: String,
}

impl DynamoIdempotency {
    /// Records in `table` (the counters table, which has the `expires_at` TTL).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    async fn read(&self, lookup: &str) -> Result<Option<IdempotencyRecord>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(record_key(lookup)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| aws_error("GetItem", &self.table, error))?;
        output
            .item
            .map(|item| record_from_item(lookup, &item))
            .transpose()
    }
}

fn record_key(lookup: &str) -> Item {
    key(format!("IDEMPOTENCY#{lookup}"), "REQUEST")
}

fn record_from_item(lookup: &str, item: &Item) -> Result<IdempotencyRecord> {
    let status = get_optional_number(item, "status")?
        .map(|status| {
            u16::try_from(status)
                .map_err(|_| StoreError::Corrupt(format!("idempotency status {status}")))
        })
        .transpose()?;
    let answer = match item.get("answer") {
        Some(AttributeValue::B(blob)) => Some(blob.as_ref().to_vec()),
        _ => None,
    };
    Ok(IdempotencyRecord {
        lookup: lookup.to_owned(),
        request_hash: get_string(item, "request_hash")?,
        created_at: timestamp(get_number(item, "created_at_ms")?)?,
        answer: status.zip(answer),
    })
}

#[async_trait]
impl IdempotencyKeys for DynamoIdempotency {
    async fn claim(&self, lookup: &str, request_hash: &str, now: DateTime<Utc>) -> Result<Claim> {
        let retention = chrono::Duration::hours(IDEMPOTENCY_RETENTION_HOURS);
        let mut item = record_key(lookup);
        item.insert("entity".into(), string("idempotency"));
        item.insert("request_hash".into(), string(request_hash));
        item.insert("created_at_ms".into(), number(now.timestamp_millis()));
        item.insert("expires_at".into(), number((now + retention).timestamp()));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR created_at_ms <= :expired")
            .expression_attribute_values(":expired", number((now - retention).timestamp_millis()))
            .send()
            .await;
        match put {
            Ok(_) => Ok(Claim::Claimed),
            Err(SdkError::ServiceError(context))
                if matches!(
                    context.err(),
                    PutItemError::ConditionalCheckFailedException(_)
                ) =>
            {
                // Deleted between the failed put and this read: a retry finds it free.
                self.read(lookup)
                    .await?
                    .map(Claim::Existing)
                    .ok_or_else(|| {
                        StoreError::Unavailable(format!(
                            "idempotency key {lookup} changed while it was claimed; retry"
                        ))
                    })
            }
            Err(error) => Err(aws_error("PutItem", &self.table, error)),
        }
    }

    async fn complete(&self, lookup: &str, status: u16, sealed: &[u8]) -> Result<()> {
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(record_key(lookup)))
            .update_expression("SET #status = :status, answer = :answer")
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(#status)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", number(status))
            .expression_attribute_values(":answer", AttributeValue::B(Blob::new(sealed)))
            .send()
            .await;
        match updated {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(context))
                if context.err().is_conditional_check_failed_exception() =>
            {
                Err(StoreError::not_found(format!("idempotency claim {lookup}")))
            }
            Err(error) => Err(aws_error("UpdateItem", &self.table, error)),
        }
    }

    async fn release(&self, lookup: &str) -> Result<()> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(record_key(lookup)))
            .condition_expression("attribute_not_exists(#status)")
            .expression_attribute_names("#status", "status")
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(context))
                if context.err().is_conditional_check_failed_exception() =>
            {
                Ok(())
            }
            Err(error) => Err(aws_error("DeleteItem", &self.table, error)),
        }
    }
}
