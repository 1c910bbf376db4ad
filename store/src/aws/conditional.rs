//! Conditional writes, once: a `PutItem` that must find the item absent, or still at the
//! version it was read at (optimistic concurrency). A failed condition is an answer, not an
//! error: the caller reads again, merges, and tries again.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;

use super::attributes::{Item, number};
use super::errors::aws_error;
use crate::Result;

/// What a conditional put expects of the stored item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// No item with this key exists.
    Absent,
    /// The item's `version` attribute is this.
    Version(i64),
}

impl Expect {
    /// `Version(v)` for an item read at `v`, `Absent` for one not found.
    pub fn read_at(version: Option<i64>) -> Self {
        version.map_or(Self::Absent, Self::Version)
    }
}

/// Puts `item` into `table` if the stored item is as `expect` says. `Ok(false)` when it is
/// not (someone else wrote it meanwhile).
pub async fn put_item_if(client: &Client, table: &str, item: Item, expect: Expect) -> Result<bool> {
    let request = client.put_item().table_name(table).set_item(Some(item));
    let request = match expect {
        Expect::Version(version) => request
            .condition_expression("version = :version")
            .expression_attribute_values(":version", number(version)),
        Expect::Absent => request.condition_expression("attribute_not_exists(pk)"),
    };
    match request.send().await {
        Ok(_) => Ok(true),
        Err(SdkError::ServiceError(context))
            if matches!(
                context.err(),
                PutItemError::ConditionalCheckFailedException(_)
            ) =>
        {
            Ok(false)
        }
        Err(error) => Err(aws_error("PutItem", table, error)),
    }
}
