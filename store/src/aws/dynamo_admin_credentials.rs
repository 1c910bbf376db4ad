//! `AdminCredentials` on DynamoDB, in the registry's table (items listed in
//! `dynamo_registry`):
//!
//! | item | pk | sk | attributes |
//! |---|---|---|---|
//! | admin credential | `ADMIN#<name>` | `CREDENTIAL` | name, role, token_hash, created_at_ms, revoked_at_ms, entity=`admin_credential` |
//! | admin token | `ADMINTOKEN#<token_hash>` | `CREDENTIAL` | the same attributes, entity=`admin_token` |
//!
//! The token item is the hash index, as a customer key item is: authentication is one
//! consistent `GetItem`, and `attribute_not_exists(pk)` on both items makes names and
//! hashes unique. Both items change in the transaction that writes the audit entry.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use schemas::{AdminCredential, AdminRole, AuditEntry, TokenHash};

use super::attributes::{
    Item, get_number, get_optional_number, get_string, key, number, string, timestamp,
};
use super::dynamo_registry::{DynamoRegistry, TransactFailure, build};
use crate::admin_credentials::AdminCredentials;
use crate::{Result, StoreError};

/// Admin credentials in the registry's DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoAdminCredentials {
    registry: DynamoRegistry,
}

impl DynamoAdminCredentials {
    /// Admin credentials in `table` (the registry's table).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            registry: DynamoRegistry::new(client, table),
        }
    }

    /// The update that marks one of a credential's items revoked at `at` (the first time
    /// stands).
    fn revocation(&self, item_key: Item, at: DateTime<Utc>) -> Result<TransactWriteItem> {
        let update = build(
            Update::builder()
                .table_name(&self.registry.table)
                .set_key(Some(item_key))
                .condition_expression("attribute_exists(pk)")
                .update_expression("SET #revoked = if_not_exists(#revoked, :at)")
                .expression_attribute_names("#revoked", "revoked_at_ms")
                .expression_attribute_values(":at", number(at.timestamp_millis()))
                .build(),
        )?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

fn name_key(name: &str) -> Item {
    key(format!("ADMIN#{name}"), "CREDENTIAL")
}

fn token_key(token_hash: &TokenHash) -> Item {
    key(format!("ADMINTOKEN#{}", token_hash.as_str()), "CREDENTIAL")
}

fn credential_item(mut item: Item, entity: &str, credential: &AdminCredential) -> Item {
    item.insert("entity".into(), string(entity));
    item.insert("name".into(), string(&credential.name));
    item.insert("role".into(), string(credential.role.as_str()));
    item.insert("token_hash".into(), string(credential.token_hash.as_str()));
    item.insert(
        "created_at_ms".into(),
        number(credential.created_at.timestamp_millis()),
    );
    if let Some(revoked_at) = credential.revoked_at {
        item.insert(
            "revoked_at_ms".into(),
            number(revoked_at.timestamp_millis()),
        );
    }
    item
}

fn credential_from_item(item: &Item) -> Result<AdminCredential> {
    let role = get_string(item, "role")?;
    Ok(AdminCredential {
        name: get_string(item, "name")?,
        role: AdminRole::parse(&role)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown admin role {role:?}")))?,
        token_hash: TokenHash::from_stored(get_string(item, "token_hash")?),
        created_at: timestamp(get_number(item, "created_at_ms")?)?,
        revoked_at: get_optional_number(item, "revoked_at_ms")?
            .map(timestamp)
            .transpose()?,
    })
}

#[async_trait]
impl AdminCredentials for DynamoAdminCredentials {
    async fn create_admin_credential(
        &self,
        credential: &AdminCredential,
        audit: &AuditEntry,
    ) -> Result<()> {
        let actions = vec![
            self.registry.put_if_absent(credential_item(
                name_key(&credential.name),
                "admin_credential",
                credential,
            ))?,
            self.registry.put_if_absent(credential_item(
                token_key(&credential.token_hash),
                "admin_token",
                credential,
            ))?,
            self.registry.audit_put(audit)?,
        ];
        match self.registry.transact(actions).await {
            Ok(()) => Ok(()),
            Err(TransactFailure::Conditions(failed)) if failed.first() == Some(&true) => {
                Err(StoreError::Conflict(format!(
                    "an admin credential named {} exists; names are never reused, choose another",
                    credential.name
                )))
            }
            Err(TransactFailure::Conditions(failed)) if failed.get(1) == Some(&true) => Err(
                StoreError::Conflict("that admin token is already in use; generate another".into()),
            ),
            Err(TransactFailure::Conditions(_)) => Err(StoreError::Conflict(
                "that audit entry already exists; nothing was changed".into(),
            )),
            Err(TransactFailure::Store(error)) => Err(error),
        }
    }

    async fn admin_credential_by_hash(
        &self,
        token_hash: &TokenHash,
    ) -> Result<Option<AdminCredential>> {
        self.registry
            .get(token_key(token_hash))
            .await?
            .as_ref()
            .map(credential_from_item)
            .transpose()
    }

    async fn admin_credentials(&self) -> Result<Vec<AdminCredential>> {
        let mut credentials = self
            .registry
            .scan_entity("admin_credential")
            .await?
            .iter()
            .map(credential_from_item)
            .collect::<Result<Vec<_>>>()?;
        credentials.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(credentials)
    }

    async fn revoke_admin_credential(
        &self,
        name: &str,
        at: DateTime<Utc>,
        audit: &AuditEntry,
    ) -> Result<AdminCredential> {
        let not_found = || StoreError::not_found(format!("admin credential {name}"));
        let stored = self
            .registry
            .get(name_key(name))
            .await?
            .as_ref()
            .map(credential_from_item)
            .transpose()?
            .ok_or_else(not_found)?;
        let actions = vec![
            self.revocation(name_key(name), at)?,
            self.revocation(token_key(&stored.token_hash), at)?,
            self.registry.audit_put(audit)?,
        ];
        match self.registry.transact(actions).await {
            Ok(()) => {}
            Err(TransactFailure::Conditions(failed)) if failed.last() == Some(&true) => {
                return Err(StoreError::Conflict(
                    "that audit entry already exists; nothing was changed".into(),
                ));
            }
            Err(TransactFailure::Conditions(_)) => return Err(not_found()),
            Err(TransactFailure::Store(error)) => return Err(error),
        }
        Ok(AdminCredential {
            revoked_at: stored.revoked_at.or(Some(at)),
            ..stored
        })
    }
}
