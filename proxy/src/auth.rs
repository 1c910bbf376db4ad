//! Bearer-token authentication: shape check without a lookup, then a lookup by SHA-256 hash,
//! through a short-lived cache of the registry's records.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use schemas::token::check_token_shape;
use schemas::{ApiKey, Customer, CustomerStatus, SecretToken, TokenHash};
use store::Registry;
use store::metrics::Sample;

use crate::error_response::ApiError;

/// The authenticated caller of one request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub customer: Customer,
    pub key: ApiKey,
}

const HOW_TO_AUTHENTICATE: &str = "send the header Authorization: Bearer <token>";

/// Extracts the bearer token from the `Authorization` header and checks its shape.
pub fn bearer_token(headers: &HeaderMap) -> Result<SecretToken, ApiError> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::unauthorized(format!("missing bearer token; {HOW_TO_AUTHENTICATE}"))
        })?;
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
    Ok(Caller { customer, key })
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
/// is looked up every time, so a new key works at once. A revocation, a disabled customer
/// or new limits reach the proxy when the entry expires, within the time to live.
#[derive(Debug)]
pub struct AuthCache {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<TokenHash, (Instant, Arc<Caller>)>>,
    hits: AtomicU64,
    misses: AtomicU64,
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
        &self,
        registry: &dyn Registry,
        headers: &HeaderMap,
        now: DateTime<Utc>,
    ) -> Result<Arc<Caller>, ApiError> {
        let token = bearer_token(headers)?;
        let token_hash = token.hash();
        let caller = match self.get(&token_hash, Instant::now()) {
            Some(caller) => caller,
            None => {
                let fetched_at = Instant::now();
                let caller = Arc::new(lookup(registry, &token_hash).await?);
                self.insert(token_hash, Arc::clone(&caller), fetched_at);
                caller
            }
        };
        admit_caller(&caller, now)?;
        Ok(caller)
    }

    /// The cached records of a token, if they are younger than the time to live at `now`.
    pub fn get(&self, token_hash: &TokenHash, now: Instant) -> Option<Arc<Caller>> {
        let found = self
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(token_hash)
            .filter(|(fetched_at, _)| now.saturating_duration_since(*fetched_at) < self.ttl)
            .map(|(_, caller)| Arc::clone(caller));
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
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
            let ttl = self.ttl;
            entries.retain(|_, (at, _)| fetched_at.saturating_duration_since(*at) < ttl);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(token_hash, (fetched_at, caller));
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
