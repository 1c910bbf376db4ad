//! Admission against a customer's limits, in either enforcement mode.
//!
//! The decision is the pure [`schemas::quota::evaluate`]; the modes supply the window
//! levels it decides on:
//! - `eventual`: the counter projection through a short cache, merged with this
//!   process's own counts; no store write on the request path;
//! - `strict`: an atomic reservation in the [`Quotas`] store before forwarding, settled
//!   to the actual token count when the call ends.
//!
//! [`Limiter`] chooses the mode per customer and delegates.

mod charges;
mod eventual;
mod lease;
mod strict;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use futures::future::BoxFuture;
use schemas::EnforcementMode;
use schemas::quota::{
    Cost, LimitHit, LimitStatus, RateLimitStatus, WindowLevels, has_caps, statuses, tightest,
};
use schemas::{Customer, Limits};
use store::{Counters, Quotas};

use eventual::EventualLimiter;
use strict::StrictLimiter;

/// The default most calls in one strict-mode block of quota.
pub const DEFAULT_STRICT_BLOCK_MAX: u64 = 1_000;

/// How admission is configured for a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionSettings {
    /// The mode for customers who have none of their own.
    pub default_mode: EnforcementMode,
    /// Output tokens a strict token budget reserves when the body names no `max_tokens`.
    pub default_output_reservation: u64,
    /// How long a counter read is reused by eventual mode.
    pub counter_cache_ttl: Duration,
    /// Eventual mode: how long a customer's calls wait for the first counter read (after
    /// the proxy starts, or a new day) before deciding on this process's own count.
    pub first_read_wait: Duration,
    /// Strict mode: most calls one leased block of quota holds (one store write per
    /// block); 1 reserves every call in the store, as Lambda does (an instance can be
    /// frozen or reaped holding a lease).
    pub strict_block_max: u64,
}

impl Default for AdmissionSettings {
    fn default() -> Self {
        Self {
            default_mode: EnforcementMode::Eventual,
            default_output_reservation: 4_096,
            counter_cache_ttl: Duration::from_secs(1),
            first_read_wait: Duration::from_secs(1),
            strict_block_max: DEFAULT_STRICT_BLOCK_MAX,
        }
    }
}

/// What an admitted call holds until it is settled, in its customer's mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// Counted in this process's tally.
    Eventual {
        customer_id: String,
        /// The day the call was counted in.
        day: NaiveDate,
        /// The tightest limit after admitting the call, for `RateLimit-*` headers.
        rate: Option<RateLimitStatus>,
    },
    /// Reserved in the quota store.
    Strict {
        customer_id: String,
        /// The token windows charged (window id, reset time).
        reserved: Vec<(String, DateTime<Utc>)>,
        /// The tokens reserved in each of them.
        reserved_tokens: u64,
        /// The tightest limit after admitting the call, for `RateLimit-*` headers.
        rate: Option<RateLimitStatus>,
    },
}

impl Grant {
    /// The tightest limit after admitting the call, for `RateLimit-*` headers.
    pub fn rate(&self) -> Option<RateLimitStatus> {
        match self {
            Self::Eventual { rate, .. } | Self::Strict { rate, .. } => *rate,
        }
    }
}

/// A grant and the limiter that settles it; settles exactly once, when consumed.
#[derive(Debug, Clone)]
pub struct Settlement {
    limiter: Arc<Limiter>,
    grant: Grant,
}

impl Settlement {
    /// Ties a grant to its limiter.
    pub fn new(limiter: Arc<Limiter>, grant: Grant) -> Self {
        Self { limiter, grant }
    }

    /// Settles with the call's actual tokens (input plus output), as [`Limiter::settle`].
    pub fn settle(self, actual_tokens: u64) -> Option<BoxFuture<'static, ()>> {
        self.limiter.settle(self.grant, actual_tokens)
    }
}

/// The result of admission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    Admit(Grant),
    /// Refused for a limit (metered as `rejected_limit`).
    Reject(LimitHit),
    /// Strict mode could not reach its store; the call is refused with 503, not metered.
    Unavailable(String),
}

/// Decides on calls and settles them: chooses each customer's mode and delegates to it.
pub struct Limiter {
    default_mode: EnforcementMode,
    eventual: EventualLimiter,
    strict: StrictLimiter,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Limiter")
            .field("default_mode", &self.default_mode)
            .finish()
    }
}

impl Limiter {
    /// A limiter over the counter projection (eventual) and the quota store (strict).
    pub fn new(
        counters: Arc<dyn Counters>,
        quotas: Arc<dyn Quotas>,
        settings: AdmissionSettings,
    ) -> Self {
        Self {
            default_mode: settings.default_mode,
            eventual: EventualLimiter::new(
                counters,
                settings.counter_cache_ttl,
                settings.first_read_wait,
            ),
            strict: StrictLimiter::new(
                quotas,
                settings.default_output_reservation,
                settings.strict_block_max,
            ),
        }
    }

    /// Gives back, every quarter second, the strict-mode leases no call used for a second,
    /// so that other proxies can have that quota. Stopped by aborting the handle; then
    /// [`Limiter::give_back_leases`].
    pub fn start_lease_sweeper(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let limiter = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_millis(250));
            loop {
                ticker.tick().await;
                limiter.strict.give_back_idle(lease::IDLE_RETURN).await;
            }
        })
    }

    /// Gives back every strict-mode lease this process holds (at shutdown, once calls
    /// have ended): one write per customer holding one.
    pub async fn give_back_leases(&self) {
        self.strict.give_back_idle(Duration::ZERO).await;
    }

    /// The mode that applies to a customer.
    pub fn mode_for(&self, limits: &Limits) -> EnforcementMode {
        limits.enforcement.unwrap_or(self.default_mode)
    }

    /// Decides on one call. `model_body` is what will be sent to the model (read for
    /// `max_tokens` only when a strict token budget applies).
    pub async fn admit(
        &self,
        customer: &Customer,
        model_body: &[u8],
        now: DateTime<Utc>,
    ) -> Admission {
        let limits = &customer.limits;
        let mode = self.mode_for(limits);
        if !has_caps(limits) {
            return Admission::Admit(uncapped_grant(mode, &customer.customer_id, now));
        }
        match mode {
            EnforcementMode::Eventual => {
                self.eventual
                    .admit(&customer.customer_id, limits, now)
                    .await
            }
            EnforcementMode::Strict => self.strict.admit(customer, model_body, now).await,
        }
    }

    /// What each capped window holds now, as the customer's mode sees it. `None` without
    /// caps, or when the levels cannot be read.
    async fn window_levels(&self, customer: &Customer, now: DateTime<Utc>) -> Option<WindowLevels> {
        let limits = &customer.limits;
        if !has_caps(limits) {
            return None;
        }
        let customer_id = &customer.customer_id;
        match self.mode_for(limits) {
            EnforcementMode::Strict => self.strict.window_levels(customer_id, limits, now).await,
            EnforcementMode::Eventual => {
                self.eventual.window_levels(customer_id, limits, now).await
            }
        }
    }

    /// The tightest limit as it stands, without counting a call: for the `RateLimit-*`
    /// headers of answers the proxy gives before admission (a bad body, a model that is not
    /// allowed). `None` without caps, or when the levels cannot be read.
    pub async fn peek(&self, customer: &Customer, now: DateTime<Utc>) -> Option<RateLimitStatus> {
        let levels = self.window_levels(customer, now).await?;
        tightest(
            &customer.limits,
            now,
            |kind| levels.of(kind),
            Cost::default(),
        )
    }

    /// Every limit set for the customer, with what its window holds and what remains, and
    /// the tightest of them (`GET /usage`), from one read of the levels. Empty without caps
    /// or when the levels cannot be read.
    pub async fn limit_statuses(
        &self,
        customer: &Customer,
        now: DateTime<Utc>,
    ) -> (Vec<LimitStatus>, Option<RateLimitStatus>) {
        let limits = &customer.limits;
        match self.window_levels(customer, now).await {
            Some(levels) => (
                statuses(limits, now, &levels),
                tightest(limits, now, |kind| levels.of(kind), Cost::default()),
            ),
            None => (Vec::new(), None),
        }
    }

    /// Settles a call once its tokens are known. Eventual: adds them to this process's
    /// tally, now. Strict: returns the store write that moves the reservation to the
    /// actual count; the caller runs it. The proxy hands it to the emitter with the call's
    /// event, which runs it before answering on Lambda (durable events, where the process
    /// may freeze once it answers) and in the background on servers.
    pub fn settle(&self, grant: Grant, actual_tokens: u64) -> Option<BoxFuture<'static, ()>> {
        match grant {
            Grant::Eventual {
                customer_id, day, ..
            } => {
                self.eventual.settle(&customer_id, day, actual_tokens);
                None
            }
            Grant::Strict {
                customer_id,
                reserved,
                reserved_tokens,
                ..
            } => self
                .strict
                .settle(customer_id, &reserved, reserved_tokens, actual_tokens),
        }
    }
}

/// The grant of a customer without caps: nothing reserved, nothing to report.
fn uncapped_grant(mode: EnforcementMode, customer_id: &str, now: DateTime<Utc>) -> Grant {
    match mode {
        EnforcementMode::Eventual => Grant::Eventual {
            customer_id: customer_id.to_owned(),
            day: now.date_naive(),
            rate: None,
        },
        EnforcementMode::Strict => Grant::Strict {
            customer_id: customer_id.to_owned(),
            reserved: Vec::new(),
            reserved_tokens: 0,
            rate: None,
        },
    }
}

#[cfg(test)]
mod tests;
