//! A strict call's charges in its customer's windows, and refusals: pure functions over
//! limits, windows and the levels the store reports.

use chrono::{DateTime, Utc};
use schemas::Limits;
use schemas::quota::{Cost, Decision, Level, LimitHit, LimitKind, WindowKind, evaluate};
use store::QuotaCharge;

use super::Admission;

/// The windows a customer's caps need, with what each charges and caps.
pub(super) fn charges_for(
    limits: &Limits,
    now: DateTime<Utc>,
    reservation: u64,
) -> Vec<QuotaCharge> {
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
pub(super) fn level_for(
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

/// A block's charges: `requests` in every window of a call's `charges`, `tokens` in those
/// with a token cap.
pub(super) fn block_charges(
    charges: &[QuotaCharge],
    requests: u64,
    tokens: u64,
) -> Vec<QuotaCharge> {
    charges
        .iter()
        .map(|charge| QuotaCharge {
            requests,
            tokens: if charge.token_cap.is_some() {
                tokens
            } else {
                0
            },
            ..charge.clone()
        })
        .collect()
}

/// The refusal of a call the store had no room for, at the levels it reported.
pub(super) fn refuse(
    limits: &Limits,
    charges: &[QuotaCharge],
    levels: &[Level],
    reservation: u64,
    now: DateTime<Utc>,
) -> Admission {
    let cost = Cost {
        requests: 1,
        tokens: reservation,
    };
    match evaluate(
        limits,
        now,
        |kind| level_for(charges, levels, now, kind),
        cost,
    ) {
        Decision::Reject(hit) => Admission::Reject(hit),
        Decision::Admit(_) => {
            let refused = charges
                .iter()
                .zip(levels)
                .position(|(charge, level)| !charge.fits(*level))
                .unwrap_or(0);
            Admission::Reject(refusal_of(limits, charges, refused, now, cost))
        }
    }
}

/// A refusal for the charge the store named, when re-evaluating its levels admits (the
/// levels changed between the refusal and the read).
pub(super) fn refusal_of(
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
