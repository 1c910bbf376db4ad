//! `Registry` on DynamoDB: one table, keys `pk` (S) and `sk` (S), shared with `Plans`
//! (`dynamo_plans`, whose items are listed here too).
//!
//! | item | pk | sk | attributes |
//! |---|---|---|---|
//! | customer | `CUSTOMER#<customer_id>` | `PROFILE` | name, email, status, created_at_ms, limits (JSON), entity=`customer` |
//! | key | `KEY#<token_hash>` | `KEY` | key_id, customer_id, token_hash, status, created_at_ms, expires_at_ms, last_used_at_ms, entity=`key` |
//! | key pointer | `CUSTOMER#<customer_id>` | `KEY#<created_at_ms>#<key_id>` | token_hash |
//! | plan | `PLAN#<plan_id>` | `VERSION#<version>` | plan (JSON), entity=`plan` |
//! | plan assignment | `CUSTOMER#<customer_id>` | `ASSIGN#<yyyy-mm-dd>` | plan_id, plan_version, entity=`plan_assignment` |
//! | audit entry | `AUDIT#<customer_id>` | `<at_ms:013>#<audit_id>` | entry (JSON), entity=`audit` |
//!
//! The key item *is* the token-hash index: authentication is one consistent `GetItem`,
//! and `attribute_not_exists(pk)` on it makes token hashes unique (a GSI could do neither).
//!
//! Every audited change is one `TransactWriteItems` whose last action puts its audit entry,
//! so the change and its entry are written together or not at all.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{ConditionCheck, Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use schemas::{ApiKey, AuditEntry, Customer, CustomerStatus, KeyStatus, Limits, TokenHash};

use super::attributes::{Item, get_string, key, number, scan_entity, string};
use super::errors::{aws_error, rejected};
pub(super) use super::registry_items::customer_pk;
use super::registry_items::{
    audit_item, customer_from_item, customer_item, key_from_item, key_item, key_pk, limits_json,
    pointer_item,
};
pub(super) use super::registry_transactions::TransactFailure;
use super::registry_transactions::{
    check_transaction_size, failed_at, failed_conditions, failed_last,
};
use crate::registry::{KeyUse, Registry};
use crate::{Result, StoreError};

/// Customers, keys and limits in one DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoRegistry {
    client: Client,
    pub(super) table: String,
}

/// The error of an audit put whose condition failed: an entry with that id already exists.
pub(super) fn audit_conflict(entry: &AuditEntry) -> StoreError {
    StoreError::Conflict(format!(
        "audit entry {} of customer {} already exists; nothing was changed",
        entry.audit_id, entry.customer_id
    ))
}

pub(super) fn build<T, E: std::fmt::Display>(built: std::result::Result<T, E>) -> Result<T> {
    built.map_err(|error| rejected(format!("invalid request: {error}")))
}

impl DynamoRegistry {
    /// A registry over `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub(super) fn put_if_absent(&self, item: Item) -> Result<TransactWriteItem> {
        let put = build(
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build(),
        )?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// The put of an audit entry, the last action of an audited change.
    pub(super) fn audit_put(&self, entry: &AuditEntry) -> Result<TransactWriteItem> {
        self.put_if_absent(audit_item(entry)?)
    }

    pub(super) fn put(&self, item: Item) -> Result<TransactWriteItem> {
        let put = build(
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .build(),
        )?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// A customer's items whose sort key starts with `prefix` (a consistent query).
    pub(super) async fn customer_items(
        &self,
        customer_id: &str,
        prefix: &str,
    ) -> Result<Vec<Item>> {
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", string(customer_pk(customer_id)))
            .expression_attribute_values(":prefix", string(prefix))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|error| aws_error("Query", &self.table, error))
    }

    /// Every item of one `entity` kind (a consistent, paginated scan).
    pub(super) async fn scan_entity(&self, entity: &str) -> Result<Vec<Item>> {
        scan_entity(&self.client, &self.table, entity).await
    }

    /// An update of a key item's status and expiry to `api_key`'s.
    fn key_update(&self, api_key: &ApiKey) -> Result<TransactWriteItem> {
        let builder = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(key_pk(&api_key.token_hash), "KEY")))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", string(api_key.status.as_str()));
        let builder = match api_key.expires_at {
            Some(expires_at) => builder
                .update_expression("SET #status = :status, #expires = :expires")
                .expression_attribute_names("#expires", "expires_at_ms")
                .expression_attribute_values(":expires", number(expires_at.timestamp_millis())),
            None => builder.update_expression("SET #status = :status"),
        };
        Ok(TransactWriteItem::builder()
            .update(build(builder.build())?)
            .build())
    }

    pub(super) async fn get(&self, item_key: Item) -> Result<Option<Item>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(item_key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| aws_error("GetItem", &self.table, error))?;
        Ok(output.item)
    }

    pub(super) async fn transact(
        &self,
        actions: Vec<TransactWriteItem>,
    ) -> std::result::Result<(), TransactFailure> {
        self.client
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .await
            .map(|_| ())
            .map_err(|error| match failed_conditions(&error) {
                Some(failed) => TransactFailure::Conditions(failed),
                None => TransactFailure::Store(aws_error("TransactWriteItems", &self.table, error)),
            })
    }
}

#[async_trait]
impl Registry for DynamoRegistry {
    async fn create_customer(
        &self,
        customer: &Customer,
        first_key: &ApiKey,
        audit: &AuditEntry,
    ) -> Result<()> {
        let actions = vec![
            self.put_if_absent(customer_item(customer)?)?,
            self.put_if_absent(key_item(first_key))?,
            self.put(pointer_item(first_key))?,
            self.audit_put(audit)?,
        ];
        match self.transact(actions).await {
            Ok(()) => Ok(()),
            Err(TransactFailure::Conditions(failed)) if failed_at(&failed, 0) => Err(
                StoreError::Conflict(format!("customer {} already exists", customer.customer_id)),
            ),
            Err(TransactFailure::Conditions(failed))
                if failed_last(&failed) && !failed_at(&failed, 1) =>
            {
                Err(audit_conflict(audit))
            }
            Err(TransactFailure::Conditions(_)) => {
                Err(StoreError::Conflict("that token is already in use".into()))
            }
            Err(TransactFailure::Store(error)) => Err(error),
        }
    }

    async fn customer(&self, customer_id: &str) -> Result<Option<Customer>> {
        self.get(key(customer_pk(customer_id), "PROFILE"))
            .await?
            .as_ref()
            .map(customer_from_item)
            .transpose()
    }

    async fn list_customers(&self) -> Result<Vec<Customer>> {
        let items = self.scan_entity("customer").await?;
        let mut customers = items
            .iter()
            .map(customer_from_item)
            .collect::<Result<Vec<_>>>()?;
        customers
            .sort_by(|a, b| (a.created_at, &a.customer_id).cmp(&(b.created_at, &b.customer_id)));
        Ok(customers)
    }

    async fn key_by_token_hash(&self, token_hash: &TokenHash) -> Result<Option<ApiKey>> {
        self.get(key(key_pk(token_hash), "KEY"))
            .await?
            .as_ref()
            .map(key_from_item)
            .transpose()
    }

    async fn keys_of_customer(&self, customer_id: &str) -> Result<Vec<ApiKey>> {
        let pointers = self.customer_items(customer_id, "KEY#").await?;
        let token_hashes = pointers
            .iter()
            .map(|item| get_string(item, "token_hash").map(TokenHash::from_stored))
            .collect::<Result<Vec<_>>>()?;
        let mut keys = Vec::with_capacity(token_hashes.len());
        for token_hash in token_hashes {
            if let Some(api_key) = self.key_by_token_hash(&token_hash).await? {
                keys.push(api_key);
            }
        }
        Ok(keys)
    }

    async fn replace_keys(
        &self,
        new_key: &ApiKey,
        retire_old_keys_at: Option<DateTime<Utc>>,
        audit: &AuditEntry,
    ) -> Result<()> {
        let existing = self.keys_of_customer(&new_key.customer_id).await?;
        if existing
            .iter()
            .any(|old| old.token_hash == new_key.token_hash)
        {
            // One transaction cannot both revoke and re-create the same key item.
            return Err(StoreError::Conflict("that token is already in use".into()));
        }
        let customer_check = build(
            ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(key(customer_pk(&new_key.customer_id), "PROFILE")))
                .condition_expression("attribute_exists(pk)")
                .build(),
        )?;
        let mut actions = vec![
            TransactWriteItem::builder()
                .condition_check(customer_check)
                .build(),
        ];
        for old in existing
            .iter()
            .filter(|old| old.status == KeyStatus::Active)
        {
            actions.push(self.key_update(&old.retired(retire_old_keys_at))?);
        }
        let new_key_index = actions.len();
        actions.push(self.put_if_absent(key_item(new_key))?);
        actions.push(self.put(pointer_item(new_key))?);
        actions.push(self.audit_put(audit)?);
        check_transaction_size(actions.len(), || {
            format!(
                "replacing the {} active keys of customer {}",
                new_key_index - 1,
                new_key.customer_id
            )
        })?;
        match self.transact(actions).await {
            Ok(()) => Ok(()),
            Err(TransactFailure::Conditions(failed)) if failed_at(&failed, 0) => Err(
                StoreError::not_found(format!("customer {}", new_key.customer_id)),
            ),
            Err(TransactFailure::Conditions(failed)) if failed_at(&failed, new_key_index) => {
                Err(StoreError::Conflict("that token is already in use".into()))
            }
            Err(TransactFailure::Conditions(failed)) if failed_last(&failed) => {
                Err(audit_conflict(audit))
            }
            Err(TransactFailure::Conditions(_)) => Err(StoreError::Conflict(format!(
                "the keys of customer {} changed during the rotation; try again",
                new_key.customer_id
            ))),
            Err(TransactFailure::Store(error)) => Err(error),
        }
    }

    async fn revoke_key(
        &self,
        customer_id: &str,
        key_id: &str,
        audit: &AuditEntry,
    ) -> Result<ApiKey> {
        let existing = self
            .keys_of_customer(customer_id)
            .await?
            .into_iter()
            .find(|api_key| api_key.key_id == key_id)
            .ok_or_else(|| {
                StoreError::not_found(format!("key {key_id} of customer {customer_id}"))
            })?;
        let revoked = existing.retired(None);
        self.transact(vec![self.key_update(&revoked)?, self.audit_put(audit)?])
            .await
            .map_err(|failure| match failure {
                TransactFailure::Conditions(failed) if failed_at(&failed, 0) => {
                    StoreError::not_found(format!("key {key_id} of customer {customer_id}"))
                }
                TransactFailure::Conditions(_) => audit_conflict(audit),
                TransactFailure::Store(error) => error,
            })?;
        Ok(revoked)
    }

    async fn set_customer_status(
        &self,
        customer_id: &str,
        status: CustomerStatus,
        audit: &AuditEntry,
    ) -> Result<()> {
        let profile = build(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(customer_pk(customer_id), "PROFILE")))
                .update_expression("SET #status = :status")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":status", string(status.as_str()))
                .build(),
        )?;
        let mut actions = vec![TransactWriteItem::builder().update(profile).build()];
        if status == CustomerStatus::Deleted {
            let keys = self.keys_of_customer(customer_id).await?;
            check_transaction_size(keys.len() + 2, || {
                format!(
                    "deleting customer {customer_id} with its {} keys",
                    keys.len()
                )
            })?;
            for api_key in keys {
                actions.push(self.key_update(&api_key.retired(None))?);
            }
        }
        actions.push(self.audit_put(audit)?);
        self.transact(actions)
            .await
            .map_err(|failure| match failure {
                TransactFailure::Conditions(failed) if failed_at(&failed, 0) => {
                    StoreError::not_found(format!("customer {customer_id}"))
                }
                TransactFailure::Conditions(failed) if failed_last(&failed) => {
                    audit_conflict(audit)
                }
                TransactFailure::Conditions(_) => StoreError::Conflict(format!(
                    "the keys of customer {customer_id} changed during the status change; try again"
                )),
                TransactFailure::Store(error) => error,
            })
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<()> {
        let item = audit_item(entry)?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(|error| aws_error("PutItem", &self.table, error))?;
        Ok(())
    }

    async fn audit_entries(&self, customer_id: Option<&str>) -> Result<Vec<AuditEntry>> {
        let items = match customer_id {
            Some(customer_id) => self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", string(format!("AUDIT#{customer_id}")))
                .consistent_read(true)
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(|error| aws_error("Query", &self.table, error))?,
            None => self.scan_entity("audit").await?,
        };
        let mut entries = items
            .iter()
            .map(|item| {
                serde_json::from_str::<AuditEntry>(&get_string(item, "entry")?)
                    .map_err(|error| StoreError::Corrupt(format!("audit entry: {error}")))
            })
            .collect::<Result<Vec<_>>>()?;
        entries.sort_by_key(|entry| (entry.at, entry.audit_id));
        Ok(entries)
    }

    async fn set_limits(
        &self,
        customer_id: &str,
        limits: &Limits,
        audit: &AuditEntry,
    ) -> Result<()> {
        let values = [("limits", string(limits_json(limits)?))];
        self.update_profile(customer_id, &values, audit).await
    }

    async fn set_profile(
        &self,
        customer_id: &str,
        name: &str,
        email: &str,
        audit: &AuditEntry,
    ) -> Result<()> {
        let values = [("name", string(name)), ("email", string(email))];
        self.update_profile(customer_id, &values, audit).await
    }

    async fn record_key_use(&self, uses: &[KeyUse]) -> Result<()> {
        for key_use in uses {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(key_pk(&key_use.token_hash), "KEY")))
                .update_expression("SET #used = :at")
                .condition_expression(
                    "attribute_exists(pk) AND key_id = :key_id AND (attribute_not_exists(#used) OR #used < :at)",
                )
                .expression_attribute_names("#used", "last_used_at_ms")
                .expression_attribute_values(":at", number(key_use.at.timestamp_millis()))
                .expression_attribute_values(":key_id", string(&key_use.key_id))
                .send()
                .await;
            match result {
                Ok(_) => {}
                Err(SdkError::ServiceError(context))
                    if matches!(
                        context.err(),
                        aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(_)
                    ) => {}
                Err(error) => return Err(aws_error("UpdateItem", &self.table, error)),
            }
        }
        Ok(())
    }
}
