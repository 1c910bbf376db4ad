//! Authentication against a registry that counts its reads: a mangled token is refused
//! before any store read, and key expiry follows the clock the caller passes in.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use chrono::{DateTime, Duration, SubsecRound, TimeZone, Utc};
use proxy::auth::authenticate;
use schemas::plan::{Plan, PlanAssignment};
use schemas::token::format_generated_token;
use schemas::{ApiKey, AuditEntry, Customer, CustomerStatus, KeyStatus, Limits, TokenHash};
use store::memory::MemoryStore;
use store::{KeyUse, Registry};

/// A registry that counts every read it serves.
struct CountingRegistry {
    inner: MemoryStore,
    reads: AtomicUsize,
}

#[async_trait]
impl Registry for CountingRegistry {
    async fn create_customer(
        &self,
        customer: &Customer,
        first_key: &ApiKey,
        audit: &AuditEntry,
    ) -> store::Result<()> {
        self.inner.create_customer(customer, first_key, audit).await
    }
    async fn customer(&self, customer_id: &str) -> store::Result<Option<Customer>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.customer(customer_id).await
    }
    async fn list_customers(&self) -> store::Result<Vec<Customer>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.list_customers().await
    }
    async fn key_by_token_hash(&self, token_hash: &TokenHash) -> store::Result<Option<ApiKey>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.key_by_token_hash(token_hash).await
    }
    async fn keys_of_customer(&self, customer_id: &str) -> store::Result<Vec<ApiKey>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.keys_of_customer(customer_id).await
    }
    async fn replace_keys(
        &self,
        new_key: &ApiKey,
        retire_at: Option<DateTime<Utc>>,
        audit: &AuditEntry,
    ) -> store::Result<()> {
        self.inner.replace_keys(new_key, retire_at, audit).await
    }
    async fn revoke_key(
        &self,
        customer_id: &str,
        key_id: &str,
        audit: &AuditEntry,
    ) -> store::Result<ApiKey> {
        self.inner.revoke_key(customer_id, key_id, audit).await
    }
    async fn set_customer_status(
        &self,
        customer_id: &str,
        status: CustomerStatus,
        audit: &AuditEntry,
    ) -> store::Result<()> {
        self.inner
            .set_customer_status(customer_id, status, audit)
            .await
    }
    async fn append_audit(&self, entry: &AuditEntry) -> store::Result<()> {
        self.inner.append_audit(entry).await
    }
    async fn audit_entries(&self, customer_id: Option<&str>) -> store::Result<Vec<AuditEntry>> {
        self.inner.audit_entries(customer_id).await
    }
    async fn set_limits(
        &self,
        customer_id: &str,
        limits: &Limits,
        audit: &AuditEntry,
    ) -> store::Result<()> {
        self.inner.set_limits(customer_id, limits, audit).await
    }
    async fn put_plan(&self, plan: &Plan, audit: &AuditEntry) -> store::Result<()> {
        self.inner.put_plan(plan, audit).await
    }
    async fn plan(&self, plan_id: &str, version: u32) -> store::Result<Option<Plan>> {
        self.inner.plan(plan_id, version).await
    }
    async fn plans(&self) -> store::Result<Vec<Plan>> {
        self.inner.plans().await
    }
    async fn assign_plan(
        &self,
        assignment: &PlanAssignment,
        audit: &AuditEntry,
    ) -> store::Result<()> {
        self.inner.assign_plan(assignment, audit).await
    }
    async fn plan_assignments(&self, customer_id: &str) -> store::Result<Vec<PlanAssignment>> {
        self.inner.plan_assignments(customer_id).await
    }
    async fn record_key_use(&self, uses: &[KeyUse]) -> store::Result<()> {
        self.inner.record_key_use(uses).await
    }
}

/// An audit entry for a change made by this test.
fn audit_for(customer_id: &str, action: &str) -> AuditEntry {
    AuditEntry {
        audit_id: uuid::Uuid::now_v7(),
        at: Utc::now(),
        actor: "test".into(),
        action: action.into(),
        customer_id: customer_id.into(),
        before: serde_json::Value::Null,
        after: serde_json::Value::Null,
    }
}

fn bearer(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    headers
}

async fn registry_with_key(expires_at: Option<DateTime<Utc>>) -> (CountingRegistry, String) {
    let registry = CountingRegistry {
        inner: MemoryStore::new(),
        reads: AtomicUsize::new(0),
    };
    let token = format_generated_token(&[5u8; 32]);
    let created_at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    registry
        .create_customer(
            &Customer {
                customer_id: "c".into(),
                name: "C".into(),
                email: "c@c.example".into(),
                status: CustomerStatus::Active,
                created_at,
                limits: Limits::default(),
            },
            &ApiKey {
                key_id: "key_c".into(),
                customer_id: "c".into(),
                token_hash: token.hash(),
                status: KeyStatus::Active,
                created_at,
                expires_at,
                last_used_at: None,
            },
            &audit_for("c", "create"),
        )
        .await
        .unwrap();
    (registry, token.expose().to_owned())
}

#[tokio::test]
async fn a_mangled_token_is_refused_without_reading_the_store() {
    let (registry, token) = registry_with_key(None).await;
    let mut mangled = token.clone().into_bytes();
    mangled[20] = if mangled[20] == b'A' { b'B' } else { b'A' };
    let mangled = String::from_utf8(mangled).unwrap();

    let refused = authenticate(&registry, &bearer(&mangled), Utc::now())
        .await
        .unwrap_err();
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.message.contains("checksum"), "{}", refused.message);
    assert_eq!(
        registry.reads.load(Ordering::SeqCst),
        0,
        "no store read for a mangled token"
    );

    authenticate(&registry, &bearer(&token), Utc::now())
        .await
        .unwrap();
    assert_eq!(
        registry.reads.load(Ordering::SeqCst),
        2,
        "a good token costs a key and a customer read"
    );
}

#[tokio::test]
async fn a_key_works_until_its_expiry_on_the_callers_clock() {
    let expires_at = Utc
        .with_ymd_and_hms(2026, 6, 1, 12, 0, 0)
        .unwrap()
        .trunc_subsecs(3);
    let (registry, token) = registry_with_key(Some(expires_at)).await;
    let just_before = expires_at - Duration::milliseconds(1);
    assert!(
        authenticate(&registry, &bearer(&token), just_before)
            .await
            .is_ok()
    );
    let at_expiry = authenticate(&registry, &bearer(&token), expires_at)
        .await
        .unwrap_err();
    assert_eq!(at_expiry.status, StatusCode::UNAUTHORIZED);
    assert!(at_expiry.message.contains("revoked or has expired"));

    // A rotation with a grace period ends the old key at the end of the grace, not before.
    let new_token = format_generated_token(&[6u8; 32]);
    let now = Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap();
    let grace_end = now + Duration::hours(24);
    registry
        .replace_keys(
            &ApiKey {
                key_id: "key_new".into(),
                customer_id: "c".into(),
                token_hash: new_token.hash(),
                status: KeyStatus::Active,
                created_at: now,
                expires_at: None,
                last_used_at: None,
            },
            Some(grace_end),
            &audit_for("c", "rotate"),
        )
        .await
        .unwrap();
    assert!(
        authenticate(&registry, &bearer(&token), grace_end - Duration::seconds(1))
            .await
            .is_ok()
    );
    assert!(
        authenticate(&registry, &bearer(&token), grace_end)
            .await
            .is_err()
    );
    assert!(
        authenticate(
            &registry,
            &bearer(new_token.expose()),
            grace_end + Duration::days(400)
        )
        .await
        .is_ok()
    );
}
