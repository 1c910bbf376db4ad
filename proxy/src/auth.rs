//! Bearer-token authentication: shape check without a lookup, then a lookup by SHA-256 hash,
//! through a short-lived cache of the registry's records.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use schemas::token::check_token_shape;
use schemas::{ApiKey, Customer, CustomerStatus, Name, SecretToken, TokenHash};
use store::Registry;
use telemetry::metrics::Sample;

use crate::error_response::ApiError;

/// The authenticated caller of one request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub customer: Customer,
    pub key: ApiKey,
    /// The customer's and the key's ids as the names their usage events carry, made once
    /// per lookup: every event of a cached caller shares them.
    names: (Name, Name),
}

impl Caller {
    /// The caller these records describe.
    pub fn new(customer: Customer, key: ApiKey) -> Self {
        let names = (
            Name::from(customer.customer_id.as_str()),
            Name::from(key.key_id.as_str()),
        );
        Self {
            customer,
            key,
            names,
        }
    }

    /// The customer's id, as usage events carry it.
    pub fn customer_name(&self) -> Name {
        self.names.0.clone()
    }

    /// The key's id, as usage events carry it.
    pub fn key_name(&self) -> Name {
        self.names.1.clone()
    }
}

const HOW_TO_AUTHENTICATE: &str =
    "send the header Authorization: Bearer <token> (or x-api-key: <token>)";

/// Extracts the token from the `Authorization: Bearer` header, or from `x-api-key` (the
/// Anthropic SDK's header) when there is no `Authorization`, and checks its shape.
pub fn bearer_token(headers: &HeaderMap) -> Result<SecretToken, ApiError> {
    let Some(header) = headers.get(axum::http::header::AUTHORIZATION) else {
        return match headers.get("x-api-key") {
            Some(key) => api_key_token(key),
            None => Err(ApiError::unauthorized(format!(
                "missing bearer token; {HOW_TO_AUTHENTICATE}"
            ))),
        };
    };
    let header = header.to_str().map_err(|_| {
        ApiError::unauthorized(format!(
            "authorization header is not text; {HOW_TO_AUTHENTICATE}"
        ))
    })?;
    let (scheme, token) = header.trim().split_once(' ').ok_or_else(|| {
        ApiError::unauthorized(format!(
            "authorization header is not a bearer token; {HOW_TO_AUTHENTICATE}"
        ))
    })?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::unauthorized(format!(
            "authorization scheme is not Bearer; {HOW_TO_AUTHENTICATE}"
        )));
    }
    let token = token.trim();
    check_token_shape(token).map_err(|error| {
        ApiError::unauthorized(format!(
            "malformed bearer token: {error}; check the token you were given"
        ))
    })?;
    Ok(SecretToken::new(token.to_owned()))
}

/// The token of an `x-api-key` header, with the same checks as a bearer token.
fn api_key_token(value: &axum::http::HeaderValue) -> Result<SecretToken, ApiError> {
    let token = value
        .to_str()
        .map_err(|_| {
            ApiError::unauthorized(format!(
                "x-api-key header is not text; {HOW_TO_AUTHENTICATE}"
            ))
        })?
        .trim();
    check_token_shape(token).map_err(|error| {
        ApiError::unauthorized(format!(
            "malformed x-api-key: {error}; check the token you were given"
        ))
    })?;
    Ok(SecretToken::new(token.to_owned()))
}

/// Authenticates a request: the token must belong to a usable key of an active customer.
/// Reads the registry on every call; the proxy goes through [`AuthCache::authenticate`].
pub async fn authenticate(
    registry: &dyn Registry,
    headers: &HeaderMap,
    now: DateTime<Utc>,
) -> Result<Caller, ApiError> {
    let token = bearer_token(headers)?;
    let records = lookup(registry, &token.hash()).await?;
    admit_caller(&records, now)?;
    Ok(records)
}

fn invalid_token() -> ApiError {
    ApiError::unauthorized(
        "invalid bearer token; check the token, or ask your provider for a new one",
    )
}

fn registry_unavailable(error: &store::StoreError) -> ApiError {
    tracing::error!(error = %error, "registry lookup failed during authentication");
    ApiError::unavailable("authentication is temporarily unavailable; retry shortly")
}

/// The key of a token hash and its customer, as the registry has them.
async fn lookup(registry: &dyn Registry, token_hash: &TokenHash) -> Result<Caller, ApiError> {
    let key = registry
        .key_by_token_hash(token_hash)
        .await
        .map_err(|error| registry_unavailable(&error))?
        .ok_or_else(invalid_token)?;
    let customer = registry
        .customer(&key.customer_id)
        .await
        .map_err(|error| registry_unavailable(&error))?
        .ok_or_else(invalid_token)?;
    Ok(Caller::new(customer, key))
}

/// Whether the records allow a call at `now`: the key is neither revoked nor expired, and
/// the customer is active. Checked on every call, cached records included, so a key's
/// expiry takes effect to the second.
fn admit_caller(caller: &Caller, now: DateTime<Utc>) -> Result<(), ApiError> {
    if !caller.key.is_usable_at(now) {
        return Err(ApiError::unauthorized(format!(
            "bearer token {} has been revoked or has expired; use your current token",
            caller.key.key_id
        )));
    }
    if caller.customer.status != CustomerStatus::Active {
        return Err(ApiError::forbidden(
            "this customer account is disabled; contact your provider to re-enable it",
        ));
    }
    Ok(())
}

/// Most tokens whose records the cache keeps. Past it, expired entries are dropped first,
/// then everything: a burst of distinct tokens costs lookups, never unbounded memory.
const AUTH_CACHE_CAPACITY: usize = 100_000;

/// The registry's records of recently seen tokens, kept for a short time so a steady
/// caller costs no registry read per call. Only found records are kept: an unknown token
/// is looked up every time, so a new key works at once.
///
/// An entry older than the time to live is refreshed in the background by the first call
/// that finds it, and calls keep using it until the fresh records arrive, so no call waits
/// on the registry once its token is known. An entry older than twice the time to live is
/// not used at all. A revocation, a disabled customer or new limits therefore reach the
/// proxy within the time to live plus one registry read, and never later than twice it.
#[derive(Debug)]
pub struct AuthCache {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<TokenHash, CacheEntry>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

#[derive(Debug)]
struct CacheEntry {
    fetched_at: Instant,
    caller: Arc<Caller>,
    /// A background refresh of this entry is in flight.
    refreshing: bool,
}

/// What the cache holds for a token at some instant.
#[derive(Debug)]
pub enum Cached {
    /// Younger than the time to live.
    Fresh(Arc<Caller>),
    /// Older, but usable while it is refreshed; `refresh` is true for the one call that
    /// should start the refresh.
    Stale { caller: Arc<Caller>, refresh: bool },
    /// Nothing usable.
    Missing,
}

impl AuthCache {
    /// A cache whose entries live for `ttl`; a zero `ttl` reads the registry on every call.
    pub fn new(ttl: Duration) -> Self {
        Self::with_capacity(ttl, AUTH_CACHE_CAPACITY)
    }

    /// Like [`AuthCache::new`], holding at most `capacity` tokens.
    pub fn with_capacity(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Authenticates a request as [`authenticate`] does, from the cache when it can.
    pub async fn authenticate(
        self: &Arc<Self>,
        registry: &Arc<dyn Registry>,
        headers: &HeaderMap,
        now: DateTime<Utc>,
    ) -> Result<Arc<Caller>, ApiError> {
        let token = bearer_token(headers)?;
        let token_hash = token.hash();
        let caller = match self.get(&token_hash, Instant::now()) {
            Cached::Fresh(caller) => caller,
            Cached::Stale { caller, refresh } => {
                if refresh {
                    self.refresh_in_background(Arc::clone(registry), token_hash);
                }
                caller
            }
            Cached::Missing => {
                let fetched_at = Instant::now();
                let caller = Arc::new(lookup(registry.as_ref(), &token_hash).await?);
                self.insert(token_hash, Arc::clone(&caller), fetched_at);
                caller
            }
        };
        admit_caller(&caller, now)?;
        Ok(caller)
    }

    fn refresh_in_background(self: &Arc<Self>, registry: Arc<dyn Registry>, token_hash: TokenHash) {
        let cache = Arc::clone(self);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            cache.end_refresh(&token_hash);
            return;
        };
        runtime.spawn(async move {
            let fetched_at = Instant::now();
            match lookup(registry.as_ref(), &token_hash).await {
                Ok(caller) => cache.insert(token_hash, Arc::new(caller), fetched_at),
                Err(error) if error.status == axum::http::StatusCode::UNAUTHORIZED => {
                    // The key or its customer is gone from the registry.
                    cache.remove(&token_hash);
                }
                // The registry is unavailable: the entry serves until twice the time to
                // live, and the next call past it tries again.
                Err(_) => cache.end_refresh(&token_hash),
            }
        });
    }

    /// What the cache holds for a token at `now`; marks a stale entry as refreshing for
    /// the one call told to refresh it.
    pub fn get(&self, token_hash: &TokenHash, now: Instant) -> Cached {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let found = match entries.get_mut(token_hash) {
            Some(entry) => {
                let age = now.saturating_duration_since(entry.fetched_at);
                if age < self.ttl {
                    Cached::Fresh(Arc::clone(&entry.caller))
                } else if age < self.ttl.saturating_mul(2) {
                    let refresh = !entry.refreshing;
                    entry.refreshing = true;
                    Cached::Stale {
                        caller: Arc::clone(&entry.caller),
                        refresh,
                    }
                } else {
                    Cached::Missing
                }
            }
            None => Cached::Missing,
        };
        let counter = match found {
            Cached::Missing => &self.misses,
            _ => &self.hits,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Keeps the records of a token read from the registry at `fetched_at`.
    pub fn insert(&self, token_hash: TokenHash, caller: Arc<Caller>, fetched_at: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.capacity && !entries.contains_key(&token_hash) {
            let usable = self.ttl.saturating_mul(2);
            entries
                .retain(|_, entry| fetched_at.saturating_duration_since(entry.fetched_at) < usable);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(
            token_hash,
            CacheEntry {
                fetched_at,
                caller,
                refreshing: false,
            },
        );
    }

    fn remove(&self, token_hash: &TokenHash) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(token_hash);
    }

    fn end_refresh(&self, token_hash: &TokenHash) {
        if let Some(entry) = self
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(token_hash)
        {
            entry.refreshing = false;
        }
    }

    /// Tokens held now, expired ones included until they are replaced or dropped.
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Hit and miss counters, for `/metrics`.
    pub fn samples(&self) -> Vec<Sample> {
        vec![
            Sample {
                name: "tollgate_proxy_auth_cache_hits_total",
                help: "Calls authenticated from the cache of registry records.",
                counter: true,
                value: self.hits.load(Ordering::Relaxed) as f64,
            },
            Sample {
                name: "tollgate_proxy_auth_cache_misses_total",
                help: "Calls whose token was looked up in the registry.",
                counter: true,
                value: self.misses.load(Ordering::Relaxed) as f64,
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers_with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn bearer_tokens_are_extracted_case_insensitively() {
        let token = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJ0A==";
        assert_eq!(
            bearer_token(&headers_with(&format!("Bearer {token}")))
                .unwrap()
                .expose(),
            token
        );
        assert_eq!(
            bearer_token(&headers_with(&format!("bearer  {token} ")))
                .unwrap()
                .expose(),
            token
        );
    }

    #[test]
    fn an_x_api_key_header_carries_the_token_when_there_is_no_authorization() {
        let token = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJ0A==";
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", HeaderValue::from_str(token).unwrap());
        assert_eq!(bearer_token(&headers).unwrap().expose(), token);
        headers.insert("x-api-key", HeaderValue::from_static("short"));
        let refused = bearer_token(&headers).unwrap_err();
        assert_eq!(refused.status, axum::http::StatusCode::UNAUTHORIZED);
        assert!(
            refused.message.contains("malformed x-api-key"),
            "{}",
            refused.message
        );
        assert!(!refused.message.contains("short"), "never echoed");
        // Authorization wins when both are sent.
        headers.insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        assert_eq!(bearer_token(&headers).unwrap().expose(), token);
    }

    #[test]
    fn missing_or_malformed_tokens_are_refused_without_echoing_them() {
        assert!(
            bearer_token(&HeaderMap::new())
                .unwrap_err()
                .message
                .contains("missing bearer token")
        );
        assert!(bearer_token(&headers_with("Basic abc")).is_err());
        assert!(bearer_token(&headers_with("Bearer")).is_err());
        let short = bearer_token(&headers_with("Bearer shortsecret")).unwrap_err();
        assert!(!short.message.contains("shortsecret"), "{}", short.message);
        assert_eq!(short.status, axum::http::StatusCode::UNAUTHORIZED);
    }
}
