//! Reading and writing DynamoDB attribute values.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, TimeZone, Utc};

use crate::{Result, StoreError};

pub type Item = HashMap<String, AttributeValue>;

pub fn string(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub fn number(value: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub fn get_string(item: &Item, name: &str) -> Result<String> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Ok(value.clone()),
        _ => Err(StoreError::Corrupt(format!(
            "item attribute {name} is missing or not a string"
        ))),
    }
}

pub fn get_optional_number(item: &Item, name: &str) -> Result<Option<i64>> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::N(value)) => value.parse().map(Some).map_err(|_| {
            StoreError::Corrupt(format!("item attribute {name} is not a whole number"))
        }),
        Some(_) => Err(StoreError::Corrupt(format!(
            "item attribute {name} is not a number"
        ))),
    }
}

pub fn get_number(item: &Item, name: &str) -> Result<i64> {
    get_optional_number(item, name)?
        .ok_or_else(|| StoreError::Corrupt(format!("item attribute {name} is missing")))
}

pub fn get_count(item: &Item, name: &str) -> Result<u64> {
    let value = get_optional_number(item, name)?.unwrap_or(0);
    u64::try_from(value)
        .map_err(|_| StoreError::Corrupt(format!("item attribute {name} is negative")))
}

pub fn timestamp(millis: i64) -> Result<DateTime<Utc>> {
    Utc.timestamp_millis_opt(millis)
        .single()
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {millis} is out of range")))
}

pub fn key(partition_key: impl Into<String>, sort_key: impl Into<String>) -> Item {
    HashMap::from([
        ("pk".to_owned(), string(partition_key)),
        ("sk".to_owned(), string(sort_key)),
    ])
}

/// Every item of one `entity` kind in `table` (a consistent, paginated scan).
pub async fn scan_entity(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    entity: &str,
) -> Result<Vec<Item>> {
    client
        .scan()
        .table_name(table)
        .filter_expression("#entity = :entity")
        .expression_attribute_names("#entity", "entity")
        .expression_attribute_values(":entity", string(entity))
        .consistent_read(true)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|error| super::errors::aws_error("Scan", table, error))
}
