//! The few item operations the counters, the producers' ranges and the watermarks make on
//! their DynamoDB table, as one small trait: [`DynamoItemTable`] implements it on the SDK
//! client, and the scale simulator (`bench/simulator`) on an in-memory table that counts
//! every item read and written. Both therefore run the same apply, with the same keys,
//! values and conditions; only the table differs.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};

pub use super::attributes::Item;
use super::attributes::{number, string};
pub use super::conditional::Expect;
use super::errors::{aws_error, rejected};
use crate::{Result, StoreError};

/// Keys in one `BatchGetItem` (DynamoDB's limit).
pub const MAX_BATCH_GET_KEYS: usize = 100;
/// Rounds of re-asking for keys DynamoDB left unprocessed.
const MAX_UNPROCESSED_ROUNDS: usize = 8;

/// What a counter cell's update expects of the cell's stamp for its partition (positions
/// in their sortable form, `dedupe::sortable_position`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StampCondition {
    /// No stamp, or one before this position (the first event the update adds).
    AbsentOrBefore(String),
    /// Exactly this stamp (the one read after a failed condition).
    Equals(String),
    /// No stamp (read as absent after a failed condition).
    Absent,
}

/// One conditional counter-cell update: `ADD` the counts, `SET` the attributes and the
/// stamp, if the stored stamp is as `condition` says.
#[derive(Debug, Clone, PartialEq)]
pub struct CellUpdate {
    pub key: Item,
    /// Counts added, by attribute name.
    pub add: Vec<(&'static str, u64)>,
    /// Attributes set, by name (the customer, the cell's day and model or hour, its TTL).
    pub set: Vec<(&'static str, AttributeValue)>,
    /// The stamp attribute (`at#<partition>`) and the value it is set to.
    pub stamp_attribute: String,
    pub stamp: String,
    pub condition: StampCondition,
}

/// The item operations of the counters table. Reads are strongly consistent.
#[async_trait]
pub trait ItemTable: Send + Sync + std::fmt::Debug {
    /// The item with `key` (`None`: absent).
    async fn get_item(&self, key: Item) -> Result<Option<Item>>;
    /// The items with these keys, in any order; absent ones are missing. Any number of
    /// keys: the implementation splits them into requests DynamoDB accepts.
    async fn batch_get_items(&self, keys: Vec<Item>) -> Result<Vec<Item>>;
    /// Puts `item` if the stored one is as `expect` says; `Ok(false)` when it is not.
    async fn put_item_if(&self, item: Item, expect: Expect) -> Result<bool>;
    /// Applies a cell update; `Ok(false)` when its condition failed.
    async fn update_cell(&self, update: &CellUpdate) -> Result<bool>;
}

/// [`ItemTable`] on a DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoItemTable {
    client: Client,
    table: String,
}

impl DynamoItemTable {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    async fn batch_get_chunk(&self, keys: Vec<Item>, found: &mut Vec<Item>) -> Result<()> {
        let mut request = Some(
            KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .build()
                .map_err(|error| rejected(format!("invalid request: {error}")))?,
        );
        for _ in 0..MAX_UNPROCESSED_ROUNDS {
            let Some(keys) = request.take() else { break };
            let output = self
                .client
                .batch_get_item()
                .request_items(&self.table, keys)
                .send()
                .await
                .map_err(|error| aws_error("BatchGetItem", &self.table, error))?;
            if let Some(items) = output
                .responses()
                .and_then(|responses| responses.get(&self.table))
            {
                found.extend(items.iter().cloned());
            }
            request = output
                .unprocessed_keys()
                .and_then(|unprocessed| unprocessed.get(&self.table))
                .filter(|left| !left.keys().is_empty())
                .cloned();
            if request.is_some() {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
        if request.is_some() {
            return Err(StoreError::Unavailable(format!(
                "DynamoDB left items unread in {} after {MAX_UNPROCESSED_ROUNDS} rounds; the batch is retried",
                self.table
            )));
        }
        Ok(())
    }
}

#[async_trait]
impl ItemTable for DynamoItemTable {
    async fn get_item(&self, key: Item) -> Result<Option<Item>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| aws_error("GetItem", &self.table, error))?;
        Ok(output.item)
    }

    async fn batch_get_items(&self, keys: Vec<Item>) -> Result<Vec<Item>> {
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(MAX_BATCH_GET_KEYS) {
            self.batch_get_chunk(chunk.to_vec(), &mut found).await?;
        }
        Ok(found)
    }

    async fn put_item_if(&self, item: Item, expect: Expect) -> Result<bool> {
        super::conditional::put_item_if(&self.client, &self.table, item, expect).await
    }

    async fn update_cell(&self, update: &CellUpdate) -> Result<bool> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(update.key.clone()))
            .expression_attribute_names("#stamp", &update.stamp_attribute)
            .expression_attribute_values(":last", string(&update.stamp));
        let mut add = Vec::with_capacity(update.add.len());
        for (name, value) in &update.add {
            add.push(format!("#{name} :{name}"));
            request = request
                .expression_attribute_names(format!("#{name}"), *name)
                .expression_attribute_values(format!(":{name}"), number(value));
        }
        let mut set = vec!["#stamp = :last".to_owned()];
        for (name, value) in &update.set {
            set.push(format!("#{name} = :{name}"));
            request = request
                .expression_attribute_names(format!("#{name}"), *name)
                .expression_attribute_values(format!(":{name}"), value.clone());
        }
        request = match &update.condition {
            StampCondition::AbsentOrBefore(first) => request
                .condition_expression("attribute_not_exists(#stamp) OR #stamp < :first")
                .expression_attribute_values(":first", string(first)),
            StampCondition::Equals(stamp) => request
                .condition_expression("#stamp = :stamp")
                .expression_attribute_values(":stamp", string(stamp)),
            StampCondition::Absent => request.condition_expression("attribute_not_exists(#stamp)"),
        };
        let result = request
            .update_expression(format!("ADD {} SET {}", add.join(", "), set.join(", ")))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(context))
                if matches!(
                    context.err(),
                    UpdateItemError::ConditionalCheckFailedException(_)
                ) =>
            {
                Ok(false)
            }
            Err(error) => Err(aws_error("UpdateItem", &self.table, error)),
        }
    }
}
