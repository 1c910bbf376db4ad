//! The `Quotas` port: atomic reservations against limit windows (strict enforcement).
//!
//! A window is named by an id such as `day:2026-11-29` (see `schemas::quota::Window`) and
//! holds two levels: requests and tokens. The proxy reserves a request's cost in every
//! window it is limited in before forwarding, and settles the token part to the actual
//! count afterwards.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use schemas::quota::Level;

use crate::Result;

/// One window's part of a reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaCharge {
    /// The window's id, e.g. `minute:2026-11-29T10:15`.
    pub window: String,
    /// When the window ends; the backend may forget it some time after.
    pub resets_at: DateTime<Utc>,
    pub requests: u64,
    pub tokens: u64,
    /// The window may hold at most this many requests after the charge.
    pub request_cap: Option<u64>,
    /// The window may hold at most this many tokens after the charge.
    pub token_cap: Option<u64>,
}

impl QuotaCharge {
    /// Whether the charge fits on top of `level`.
    pub fn fits(&self, level: Level) -> bool {
        self.request_cap
            .is_none_or(|cap| level.requests.saturating_add(self.requests) <= cap)
            && self
                .token_cap
                .is_none_or(|cap| level.tokens.saturating_add(self.tokens) <= cap)
    }
}

/// The result of a reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// Every charge was applied; the windows' levels after it, in charge order.
    Granted(Vec<Level>),
    /// Nothing was applied: the charge at `refused` did not fit. `levels` are the windows'
    /// levels as read, in charge order.
    Refused { refused: usize, levels: Vec<Level> },
}

/// A signed change to one window's levels: settling a reservation's tokens to the actual
/// count, or returning the unspent part of a leased block (requests and tokens).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaAdjustment {
    pub window: String,
    pub resets_at: DateTime<Utc>,
    pub requests: i64,
    pub tokens: i64,
}

/// Atomic per-customer window levels.
///
/// Contracts every backend keeps:
/// - `reserve` is all or nothing: either every charge fits its caps and all are applied
///   together, or none is applied. Concurrent reservations never take a window past a cap.
/// - An unknown window reads as zero. Levels never read below zero.
/// - `adjust` adds signed request and token changes without a cap check (a settlement or a
///   returned lease is never refused), in one write.
/// - Windows are independent per customer.
#[async_trait]
pub trait Quotas: Send + Sync {
    /// Applies every charge if every one fits, atomically.
    async fn reserve(&self, customer_id: &str, charges: &[QuotaCharge]) -> Result<Reservation>;

    /// Adds signed request and token changes to windows.
    async fn adjust(&self, customer_id: &str, adjustments: &[QuotaAdjustment]) -> Result<()>;

    /// The current levels of some windows, in the order asked.
    async fn levels(&self, customer_id: &str, windows: &[String]) -> Result<Vec<Level>>;
}

/// How long a backend keeps a window after it ends, so that a settlement arriving late or
/// a proxy with a slightly slow clock still finds it.
pub const WINDOW_GRACE: chrono::Duration = chrono::Duration::minutes(10);
