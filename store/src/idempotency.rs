//! The `IdempotencyKeys` port: what an `Idempotency-Key` of the admin API stands for, so a
//! retried request returns its first answer instead of running again.
//!
//! The store sees no key and no secret: records are found by a hash of the caller and the
//! key (`lookup`), and answers are kept sealed (encrypted under a key derived from the
//! idempotency key, which only the client holds); `control::idempotency` does both.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::Result;

/// One idempotency key's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// The hash of the caller and the key.
    pub lookup: String,
    /// The hash of the request first sent with the key (method, path, body).
    pub request_hash: String,
    /// When the key was first used; the record is forgotten [`IDEMPOTENCY_RETENTION_HOURS`]
    /// later.
    pub created_at: DateTime<Utc>,
    /// The answer, once the first request has one: its status and its sealed bytes.
    pub answer: Option<(u16, Vec<u8>)>,
}

/// How long a key is remembered.
pub const IDEMPOTENCY_RETENTION_HOURS: i64 = 24;

/// The outcome of [`IdempotencyKeys::claim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key was free (or its record had expired): the caller runs the request and then
    /// completes or releases the claim.
    Claimed,
    /// The key is in use: its record, in progress (`answer` is `None`) or answered.
    Existing(IdempotencyRecord),
}

/// Idempotency records: claimed once, answered once, forgotten after a day.
///
/// Contracts every backend keeps:
/// - `claim` is atomic: of concurrent claims of one lookup, exactly one is `Claimed`.
/// - A record older than [`IDEMPOTENCY_RETENTION_HOURS`] (by `created_at`) is as good as
///   absent: a claim replaces it.
/// - `complete` stores the answer of a claimed record once; `release` deletes a claim that
///   has no answer (so that a retry runs again) and leaves an answered record alone.
#[async_trait]
pub trait IdempotencyKeys: Send + Sync {
    /// Claims `lookup` for a request with `request_hash` at `now`.
    async fn claim(&self, lookup: &str, request_hash: &str, now: DateTime<Utc>) -> Result<Claim>;

    /// Stores the answer of a claimed record. `NotFound` if there is no claim to answer.
    async fn complete(&self, lookup: &str, status: u16, sealed: &[u8]) -> Result<()>;

    /// Deletes a claim that has no answer; an answered record is kept.
    async fn release(&self, lookup: &str) -> Result<()>;
}

/// Whether a record created at `created_at` has expired at `now`.
pub fn expired(created_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now - created_at >= chrono::Duration::hours(IDEMPOTENCY_RETENTION_HOURS)
}
