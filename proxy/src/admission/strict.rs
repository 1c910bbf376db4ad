//! Strict enforcement: an atomic reservation in the [`Quotas`] store before forwarding
//! (one request, and for token budgets `max_tokens` plus an input estimate), settled to
//! the actual token count when the call ends. Concurrent requests never pass a cap.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use schemas::quota::{
    Cost, Decision, Level, LimitHit, LimitKind, RateLimitStatus, WindowKind, evaluate,
    has_token_caps, requested_max_tokens, tightest, token_reservation,
};
use schemas::{Customer, Limits};
use store::{QuotaAdjustment, QuotaCharge, Quotas, Reservation};

use super::{Admission, Grant};

/// The windows a customer's caps need, with what each charges and caps.
fn charges_for(limits: &Limits, now: DateTime<Utc>, reservation: u64) -> Vec<QuotaCharge> {
    [WindowKind::Minute, WindowKind::Day, WindowKind::Month]
        .into_iter()
        .filter_map(|window_kind| {
            let caps: Vec<LimitKind> = LimitKind::ALL
                .into_iter()
                .filter(|kind| kind.window() == window_kind && kind.cap(limits).is_some())
                .collect();
            if caps.is_empty() {
                return None;
            }
            let cap_of = |unit: schemas::quota::Unit| {
                caps.iter()
                    .find(|kind| kind.unit() == unit)
                    .and_then(|kind| kind.cap(limits))
            };
            let token_cap = cap_of(schemas::quota::Unit::Tokens);
            let window = window_kind.containing(now);
            Some(QuotaCharge {
                window: window.id,
                resets_at: window.resets_at,
                requests: 1,
                tokens: if token_cap.is_some() { reservation } else { 0 },
                request_cap: cap_of(schemas::quota::Unit::Requests),
                token_cap,
            })
        })
        .collect()
}

/// The level a window kind has in `levels`, matched to `charges` by window id.
fn level_for(
    charges: &[QuotaCharge],
    levels: &[Level],
    now: DateTime<Utc>,
    kind: WindowKind,
) -> Level {
    let id = kind.containing(now).id;
    charges
        .iter()
        .zip(levels)
        .find(|(charge, _)| charge.window == id)
        .map(|(_, level)| *level)
        .unwrap_or_default()
}

/// The strict mode's store and its reservation default.
pub(super) struct StrictLimiter {
    quotas: Arc<dyn Quotas>,
    /// Output tokens a token budget reserves when the body names no `max_tokens`.
    default_output_reservation: u64,
}

impl StrictLimiter {
    /// Reserves in `quotas`.
    pub(super) fn new(quotas: Arc<dyn Quotas>, default_output_reservation: u64) -> Self {
        Self {
            quotas,
            default_output_reservation,
        }
    }

    /// The tokens a call reserves: none without a token cap, else its `max_tokens` (or the
    /// default) plus an estimate of its input.
    fn reservation_for(&self, limits: &Limits, model_body: &[u8]) -> u64 {
        if !has_token_caps(limits) {
            return 0;
        }
        let max_tokens = serde_json::from_slice::<serde_json::Value>(model_body)
            .ok()
            .as_ref()
            .and_then(requested_max_tokens);
        token_reservation(
            u64::try_from(model_body.len()).unwrap_or(u64::MAX),
            max_tokens,
            self.default_output_reservation,
        )
    }

    /// Decides on one call of a customer with caps by reserving it in the store.
    pub(super) async fn admit(
        &self,
        customer: &Customer,
        model_body: &[u8],
        now: DateTime<Utc>,
    ) -> Admission {
        let limits = &customer.limits;
        let reservation = self.reservation_for(limits, model_body);
        let charges = charges_for(limits, now, reservation);
        let cost = Cost {
            requests: 1,
            tokens: reservation,
        };
        match self.quotas.reserve(&customer.customer_id, &charges).await {
            Ok(Reservation::Granted(after)) => Admission::Admit(Grant::Strict {
                customer_id: customer.customer_id.clone(),
                reserved: charges
                    .iter()
                    .filter(|charge| charge.tokens > 0)
                    .map(|charge| (charge.window.clone(), charge.resets_at))
                    .collect(),
                reserved_tokens: reservation,
                rate: tightest(
                    limits,
                    now,
                    |kind| level_for(&charges, &after, now, kind),
                    Cost::default(),
                ),
            }),
            Ok(Reservation::Refused { refused, levels }) => {
                match evaluate(
                    limits,
                    now,
                    |kind| level_for(&charges, &levels, now, kind),
                    cost,
                ) {
                    Decision::Reject(hit) => Admission::Reject(hit),
                    Decision::Admit(_) => {
                        Admission::Reject(refusal_of(limits, &charges, refused, now, cost))
                    }
                }
            }
            Err(error) => {
                tracing::error!(error = %error, customer_id = %customer.customer_id, "strict limit store unavailable; refusing the call");
                Admission::Unavailable(
                    "limits cannot be checked right now; retry in a few seconds".into(),
                )
            }
        }
    }

    /// The tightest limit as it stands, without counting a call; `None` when the store
    /// cannot be read.
    pub(super) async fn peek(
        &self,
        customer_id: &str,
        limits: &Limits,
        now: DateTime<Utc>,
    ) -> Option<RateLimitStatus> {
        let charges = charges_for(limits, now, 0);
        let windows: Vec<String> = charges.iter().map(|charge| charge.window.clone()).collect();
        let levels = self.quotas.levels(customer_id, &windows).await.ok()?;
        tightest(
            limits,
            now,
            |kind| level_for(&charges, &levels, now, kind),
            Cost::default(),
        )
    }

    /// The store write that moves a reservation to the actual count; `None` when there is
    /// nothing to move.
    pub(super) fn settle(
        &self,
        customer_id: String,
        reserved: &[(String, DateTime<Utc>)],
        reserved_tokens: u64,
        actual_tokens: u64,
    ) -> Option<BoxFuture<'static, ()>> {
        let delta = i128::from(actual_tokens) - i128::from(reserved_tokens);
        if reserved.is_empty() || delta == 0 {
            return None;
        }
        let tokens = i64::try_from(delta).unwrap_or(if delta > 0 { i64::MAX } else { i64::MIN });
        let adjustments: Vec<QuotaAdjustment> = reserved
            .iter()
            .map(|(window, resets_at)| QuotaAdjustment {
                window: window.clone(),
                resets_at: *resets_at,
                tokens,
            })
            .collect();
        let quotas = Arc::clone(&self.quotas);
        Some(Box::pin(async move {
            if let Err(error) = quotas.adjust(&customer_id, &adjustments).await {
                tracing::error!(error = %error, customer_id, "could not settle a token reservation; the window keeps the reserved amount");
            }
        }))
    }
}

/// A refusal for the charge the store named, when re-evaluating its levels admits (the
/// levels changed between the refusal and the read).
fn refusal_of(
    limits: &Limits,
    charges: &[QuotaCharge],
    refused: usize,
    now: DateTime<Utc>,
    cost: Cost,
) -> LimitHit {
    let window = charges.get(refused).map(|charge| charge.window.clone());
    let kind = LimitKind::ALL
        .into_iter()
        .find(|kind| kind.cap(limits).is_some() && Some(kind.window().containing(now).id) == window)
        .unwrap_or(LimitKind::DailyRequests);
    let resets_at = kind.window().containing(now).resets_at;
    let limit = kind.cap(limits).unwrap_or(0);
    LimitHit {
        kind,
        limit,
        used: limit,
        requested: match kind.unit() {
            schemas::quota::Unit::Requests => cost.requests,
            schemas::quota::Unit::Tokens => cost.tokens,
        },
        resets_at,
        retry_after_seconds: schemas::quota::seconds_until(now, resets_at),
    }
}
