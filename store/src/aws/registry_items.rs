//! The registry's DynamoDB items (table layout in `dynamo_registry`): their keys, and the
//! conversions between them and customers, keys and audit entries.

use schemas::{ApiKey, AuditEntry, Customer, CustomerStatus, KeyStatus, Limits, TokenHash};

use super::attributes::{
    Item, get_number, get_optional_number, get_string, key, number, string, timestamp,
};
use crate::{Result, StoreError};

pub(super) fn customer_pk(customer_id: &str) -> String {
    format!("CUSTOMER#{customer_id}")
}

pub(super) fn key_pk(token_hash: &TokenHash) -> String {
    format!("KEY#{}", token_hash.as_str())
}

pub(super) fn pointer_sk(key: &ApiKey) -> String {
    format!(
        "KEY#{:013}#{}",
        key.created_at.timestamp_millis(),
        key.key_id
    )
}

pub(super) fn customer_item(customer: &Customer) -> Result<Item> {
    let mut item = key(customer_pk(&customer.customer_id), "PROFILE");
    item.insert("entity".into(), string("customer"));
    item.insert("customer_id".into(), string(&customer.customer_id));
    item.insert("name".into(), string(&customer.name));
    item.insert("email".into(), string(&customer.email));
    item.insert("status".into(), string(customer.status.as_str()));
    item.insert(
        "created_at_ms".into(),
        number(customer.created_at.timestamp_millis()),
    );
    item.insert("limits".into(), string(limits_json(&customer.limits)?));
    Ok(item)
}

pub(super) fn limits_json(limits: &Limits) -> Result<String> {
    serde_json::to_string(limits).map_err(|error| StoreError::Corrupt(error.to_string()))
}

pub(super) fn customer_from_item(item: &Item) -> Result<Customer> {
    let status = get_string(item, "status")?;
    Ok(Customer {
        customer_id: get_string(item, "customer_id")?,
        name: get_string(item, "name")?,
        email: get_string(item, "email")?,
        status: CustomerStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown customer status {status:?}")))?,
        created_at: timestamp(get_number(item, "created_at_ms")?)?,
        limits: serde_json::from_str(&get_string(item, "limits")?)
            .map_err(|error| StoreError::Corrupt(format!("customer limits: {error}")))?,
    })
}

pub(super) fn key_item(api_key: &ApiKey) -> Item {
    let mut item = key(key_pk(&api_key.token_hash), "KEY");
    item.insert("entity".into(), string("key"));
    item.insert("key_id".into(), string(&api_key.key_id));
    item.insert("customer_id".into(), string(&api_key.customer_id));
    item.insert("token_hash".into(), string(api_key.token_hash.as_str()));
    item.insert("status".into(), string(api_key.status.as_str()));
    item.insert(
        "created_at_ms".into(),
        number(api_key.created_at.timestamp_millis()),
    );
    if let Some(expires_at) = api_key.expires_at {
        item.insert(
            "expires_at_ms".into(),
            number(expires_at.timestamp_millis()),
        );
    }
    item
}

pub(super) fn pointer_item(api_key: &ApiKey) -> Item {
    let mut item = key(customer_pk(&api_key.customer_id), pointer_sk(api_key));
    item.insert("entity".into(), string("key_pointer"));
    item.insert("token_hash".into(), string(api_key.token_hash.as_str()));
    item
}

pub(super) fn key_from_item(item: &Item) -> Result<ApiKey> {
    let status = get_string(item, "status")?;
    Ok(ApiKey {
        key_id: get_string(item, "key_id")?,
        customer_id: get_string(item, "customer_id")?,
        token_hash: TokenHash::from_stored(get_string(item, "token_hash")?),
        status: KeyStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown key status {status:?}")))?,
        created_at: timestamp(get_number(item, "created_at_ms")?)?,
        expires_at: get_optional_number(item, "expires_at_ms")?
            .map(timestamp)
            .transpose()?,
        last_used_at: get_optional_number(item, "last_used_at_ms")?
            .map(timestamp)
            .transpose()?,
    })
}

pub(super) fn audit_item(entry: &AuditEntry) -> Result<Item> {
    let mut item = key(
        format!("AUDIT#{}", entry.customer_id),
        format!("{:013}#{}", entry.at.timestamp_millis(), entry.audit_id),
    );
    item.insert("entity".into(), string("audit"));
    item.insert(
        "entry".into(),
        string(
            serde_json::to_string(entry).map_err(|error| StoreError::Corrupt(error.to_string()))?,
        ),
    );
    Ok(item)
}
