//! What the proxy's integration tests share.
#![allow(clippy::unwrap_used, dead_code)]

use chrono::{SubsecRound, Utc};
use schemas::token::format_generated_token;
use schemas::{ApiKey, AuditEntry, Customer, CustomerStatus, KeyStatus, Limits};
use store::Registry;
use store::memory::MemoryStore;

/// Creates the active customer `cust-{name}`, without limits, with one key `key_{name}`
/// whose token is made from `seed`; returns the token.
pub async fn customer_with_token(store: &MemoryStore, name: &str, seed: u8) -> String {
    let token = format_generated_token(&[seed; 32]);
    let customer = Customer {
        customer_id: format!("cust-{name}"),
        name: name.to_owned(),
        email: format!("{name}@{name}.example"),
        status: CustomerStatus::Active,
        created_at: Utc::now().trunc_subsecs(3),
        limits: Limits::default(),
    };
    let key = ApiKey {
        key_id: format!("key_{name}"),
        customer_id: customer.customer_id.clone(),
        token_hash: token.hash(),
        status: KeyStatus::Active,
        created_at: Utc::now().trunc_subsecs(3),
        expires_at: None,
        last_used_at: None,
    };
    let audit = AuditEntry {
        audit_id: uuid::Uuid::now_v7(),
        at: Utc::now(),
        actor: "test".into(),
        action: "create".into(),
        customer_id: customer.customer_id.clone(),
        before: serde_json::Value::Null,
        after: serde_json::Value::Null,
    };
    store
        .create_customer(&customer, &key, &audit)
        .await
        .unwrap();
    token.expose().to_owned()
}
