//! Authentication against a registry that counts its reads: a mangled token is refused
//! before any store read, key expiry follows the clock the caller passes in, and the auth
//! cache spares reads for a while without hiding an expiry or keeping an unknown token.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use chrono::{DateTime, Duration, SubsecRound, TimeZone, Utc};
use proxy::auth::{AuthCache, Cached, authenticate};
use schemas::token::format_generated_token;
use schemas::{ApiKey, AuditEntry, Customer, CustomerStatus, KeyStatus, Limits, TokenHash};
use std::sync::Arc;
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
    async fn set_profile(
        &self,
        customer_id: &str,
        name: &str,
        email: &str,
        audit: &AuditEntry,
    ) -> store::Result<()> {
        self.inner
            .set_profile(customer_id, name, email, audit)
            .await
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

#[tokio::test]
async fn the_cache_spares_registry_reads_until_its_entries_expire() {
    let (registry, token) = registry_with_key(None).await;
    let registry = Arc::new(registry);
    let shared: Arc<dyn Registry> = registry.clone();
    let cache = Arc::new(AuthCache::new(std::time::Duration::from_millis(300)));
    for _ in 0..5 {
        let caller = cache
            .authenticate(&shared, &bearer(&token), Utc::now())
            .await
            .unwrap();
        assert_eq!(caller.customer.customer_id, "c");
    }
    assert_eq!(
        registry.reads.load(Ordering::SeqCst),
        2,
        "five calls, one key and one customer read"
    );

    // A revocation: the first call past the time to live is still served from the cache
    // and refreshes it in the background; the calls after it see the revocation.
    registry
        .revoke_key("c", "key_c", &audit_for("c", "revoke"))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(350)).await;
    assert!(
        cache
            .authenticate(&shared, &bearer(&token), Utc::now())
            .await
            .is_ok()
    );
    let mut refused = None;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        if let Err(error) = cache
            .authenticate(&shared, &bearer(&token), Utc::now())
            .await
        {
            refused = Some(error);
            break;
        }
    }
    let refused = refused.expect("the refreshed records show the revocation");
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.message.contains("revoked"), "{}", refused.message);
    assert_eq!(
        registry.reads.load(Ordering::SeqCst),
        4,
        "one background refresh: a key and a customer read"
    );

    // Past twice the time to live nothing cached is used: the call reads the registry.
    let other = Arc::new(AuthCache::new(std::time::Duration::from_millis(100)));
    let (second, second_token) = registry_with_key(None).await;
    let second: Arc<dyn Registry> = Arc::new(second);
    assert!(
        other
            .authenticate(&second, &bearer(&second_token), Utc::now())
            .await
            .is_ok()
    );
    second
        .revoke_key("c", "key_c", &audit_for("c", "revoke"))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    assert!(
        other
            .authenticate(&second, &bearer(&second_token), Utc::now())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_cached_key_still_expires_on_time_and_a_disabled_customer_is_refused() {
    let expires_at = Utc
        .with_ymd_and_hms(2026, 6, 1, 12, 0, 0)
        .unwrap()
        .trunc_subsecs(3);
    let (registry, token) = registry_with_key(Some(expires_at)).await;
    let registry = Arc::new(registry);
    let shared: Arc<dyn Registry> = registry.clone();
    let cache = Arc::new(AuthCache::new(std::time::Duration::from_secs(3600)));
    assert!(
        cache
            .authenticate(&shared, &bearer(&token), expires_at - Duration::seconds(1))
            .await
            .is_ok()
    );
    let expired = cache
        .authenticate(&shared, &bearer(&token), expires_at)
        .await
        .unwrap_err();
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        registry.reads.load(Ordering::SeqCst),
        2,
        "the expiry came from the cached key"
    );

    // Without a time to live, every call reads the registry and sees changes at once.
    let uncached = Arc::new(AuthCache::new(std::time::Duration::ZERO));
    let before = expires_at - Duration::seconds(1);
    assert!(
        uncached
            .authenticate(&shared, &bearer(&token), before)
            .await
            .is_ok()
    );
    registry
        .set_customer_status("c", CustomerStatus::Disabled, &audit_for("c", "disable"))
        .await
        .unwrap();
    let disabled = uncached
        .authenticate(&shared, &bearer(&token), before)
        .await
        .unwrap_err();
    assert_eq!(disabled.status, StatusCode::FORBIDDEN);
    assert_eq!(registry.reads.load(Ordering::SeqCst), 6);
    assert!(uncached.is_empty());
}

#[tokio::test]
async fn an_unknown_token_is_not_cached_so_a_new_key_works_at_once() {
    let (registry, _token) = registry_with_key(None).await;
    let registry = Arc::new(registry);
    let shared: Arc<dyn Registry> = registry.clone();
    let cache = Arc::new(AuthCache::new(std::time::Duration::from_secs(3600)));
    let new_token = format_generated_token(&[7u8; 32]);
    let unknown = cache
        .authenticate(&shared, &bearer(new_token.expose()), Utc::now())
        .await
        .unwrap_err();
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert!(cache.is_empty());

    registry
        .replace_keys(
            &ApiKey {
                key_id: "key_2".into(),
                customer_id: "c".into(),
                token_hash: new_token.hash(),
                status: KeyStatus::Active,
                created_at: Utc::now(),
                expires_at: None,
                last_used_at: None,
            },
            None,
            &audit_for("c", "rotate"),
        )
        .await
        .unwrap();
    assert!(
        cache
            .authenticate(&shared, &bearer(new_token.expose()), Utc::now())
            .await
            .is_ok()
    );
    let rendered = telemetry::metrics::render(&cache.samples());
    assert!(
        rendered.contains("tollgate_proxy_auth_cache_misses_total 2"),
        "{rendered}"
    );
    assert!(
        rendered.contains("tollgate_proxy_auth_cache_hits_total 0"),
        "{rendered}"
    );
}

#[test]
fn the_cache_stays_within_its_capacity() {
    let cache = AuthCache::with_capacity(std::time::Duration::from_secs(10), 2);
    let caller = |id: &str| {
        std::sync::Arc::new(proxy::auth::Caller::new(
            Customer {
                customer_id: id.into(),
                name: id.into(),
                email: "c@c.example".into(),
                status: CustomerStatus::Active,
                created_at: Utc::now(),
                limits: Limits::default(),
            },
            ApiKey {
                key_id: format!("key_{id}"),
                customer_id: id.into(),
                token_hash: format_generated_token(&[1u8; 32]).hash(),
                status: KeyStatus::Active,
                created_at: Utc::now(),
                expires_at: None,
                last_used_at: None,
            },
        ))
    };
    let hash = |byte: u8| format_generated_token(&[byte; 32]).hash();
    let start = std::time::Instant::now();
    cache.insert(hash(1), caller("a"), start);
    cache.insert(
        hash(2),
        caller("b"),
        start + std::time::Duration::from_secs(5),
    );
    // The first entry has expired by the third insert, so only it makes room.
    // Entries are usable for twice the time to live.
    let later = start + std::time::Duration::from_secs(21);
    cache.insert(hash(3), caller("c"), later);
    assert_eq!(cache.len(), 2);
    assert!(matches!(cache.get(&hash(1), later), Cached::Missing));
    assert!(matches!(
        cache.get(&hash(2), later),
        Cached::Stale { refresh: true, .. }
    ));
    assert!(matches!(
        cache.get(&hash(2), later),
        Cached::Stale { refresh: false, .. }
    ));
    // Nothing has expired: the cache starts over rather than grow.
    cache.insert(hash(4), caller("d"), later);
    assert_eq!(cache.len(), 1);
    let Cached::Fresh(fresh) = cache.get(&hash(4), later) else {
        panic!("the new entry is fresh")
    };
    assert_eq!(fresh.customer.customer_id, "d");
}
