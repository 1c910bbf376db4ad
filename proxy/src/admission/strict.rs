//! Strict enforcement: calls are admitted from a block of quota leased from the [`Quotas`]
//! store (one conditional write per block, see [`super::lease`]): one request each, and
//! for token budgets `max_tokens` plus an input estimate, settled to the actual count when
//! the call ends. Concurrent requests never pass a cap, on any number of proxies.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use schemas::quota::{
    Cost, WindowKind, WindowLevels, has_token_caps, requested_max_tokens, tightest,
    token_reservation,
};
use schemas::{Customer, Limits};
use store::{QuotaAdjustment, QuotaCharge, Quotas, Reservation};

use super::charges::{block_charges, charges_for, level_for, refuse};
use super::lease::{Lease, block_requests, block_tokens, next_demand, remaining};
use super::{Admission, Grant};

/// One customer's lease, and the one block request in flight for it.
#[derive(Default)]
struct CustomerLease {
    lease: Mutex<Option<Lease>>,
    refill: tokio::sync::Mutex<()>,
    /// Requests the next block asks for (see [`next_demand`]).
    demand: AtomicU64,
}

impl CustomerLease {
    fn lease(&self) -> std::sync::MutexGuard<'_, Option<Lease>> {
        self.lease
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The strict mode's store, its reservation default and the leases this process holds.
pub(super) struct StrictLimiter {
    quotas: Arc<dyn Quotas>,
    /// Output tokens a token budget reserves when the body names no `max_tokens`.
    default_output_reservation: u64,
    /// Most calls one block holds; 1 reserves every call in the store.
    max_block: u64,
    leases: Mutex<HashMap<String, Arc<CustomerLease>>>,
}

impl StrictLimiter {
    /// Leases from `quotas`, blocks of at most `max_block` calls.
    pub(super) fn new(
        quotas: Arc<dyn Quotas>,
        default_output_reservation: u64,
        max_block: u64,
    ) -> Self {
        Self {
            quotas,
            default_output_reservation,
            max_block: max_block.max(1),
            leases: Mutex::new(HashMap::new()),
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

    /// The customer's lease state, created on first use (the id is copied only then).
    fn customer(&self, customer_id: &str) -> Arc<CustomerLease> {
        let mut leases = self.leases();
        if let Some(held) = leases.get(customer_id) {
            return Arc::clone(held);
        }
        Arc::clone(leases.entry(customer_id.to_owned()).or_default())
    }

    /// The customer's lease state if this process has one; never creates it.
    fn held_by(&self, customer_id: &str) -> Option<Arc<CustomerLease>> {
        self.leases().get(customer_id).map(Arc::clone)
    }

    fn leases(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<CustomerLease>>> {
        self.leases
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Decides on one call of a customer with caps: from the lease this process holds, or
    /// from a new block leased from the store.
    pub(super) async fn admit(
        &self,
        customer: &Customer,
        model_body: &[u8],
        now: DateTime<Utc>,
    ) -> Admission {
        let limits = &customer.limits;
        let reservation = self.reservation_for(limits, model_body);
        let charges = charges_for(limits, now, reservation);
        let held = self.customer(&customer.customer_id);
        if let Some(grant) = spend(&held, customer, &charges, reservation, now) {
            return Admission::Admit(grant);
        }
        // One block request at a time per customer; a call that waited may find the lease
        // refilled by the one before it.
        let _refill = held.refill.lock().await;
        if let Some(grant) = spend(&held, customer, &charges, reservation, now) {
            return Admission::Admit(grant);
        }
        self.lease_block(&held, customer, &charges, reservation, now)
            .await
    }

    /// Takes a new block from the store, adds it to the lease held and spends this call
    /// from it. The lease stays in place meanwhile, so calls and settlements keep using it
    /// while the store answers. A lease held in other windows (a new minute or day) is
    /// given back first.
    async fn lease_block(
        &self,
        held: &CustomerLease,
        customer: &Customer,
        charges: &[QuotaCharge],
        reservation: u64,
        now: DateTime<Utc>,
    ) -> Admission {
        let customer_id = &customer.customer_id;
        self.prepare_refill(held, customer_id, charges).await;
        let demand = held.demand.load(Ordering::Relaxed).max(1);
        // What the store had left after the last block, if known; else only the demand.
        let (mut requests_left, mut tokens_left) =
            held.lease().as_ref().map_or((u64::MAX, u64::MAX), |lease| {
                remaining(charges, &lease.levels)
            });
        let mut levels = Vec::new();
        for _ in 0..4 {
            let (carried_requests, carried_tokens) = held
                .lease()
                .as_ref()
                .map_or((0, 0), |lease| (lease.requests_left, lease.tokens_left));
            // Requests and tokens run out at different times (a settlement above its
            // reservation spends tokens only): each is topped up by a whole block's worth,
            // and at least by what this call lacks: if the store has less, it refuses, and
            // its fresh levels decide between a smaller block and a refusal.
            let block = block_requests(demand, requests_left, self.max_block).max(1);
            let requests = if carried_requests > 0 { 0 } else { block };
            let needed_tokens = reservation.saturating_sub(carried_tokens);
            let tokens = if needed_tokens == 0 {
                0
            } else {
                block_tokens(reservation, block, needed_tokens, tokens_left).max(needed_tokens)
            };
            tracing::debug!(customer_id, requests, tokens, "leasing a block of quota");
            let block = block_charges(charges, requests, tokens);
            match self.quotas.reserve(customer_id, &block).await {
                Ok(Reservation::Granted(after)) => {
                    let mut slot = held.lease();
                    let lease = slot.get_or_insert_with(|| Lease::empty(charges));
                    lease.add_block(requests, tokens, after);
                    if lease.take(reservation) {
                        return Admission::Admit(strict_grant(
                            customer,
                            charges,
                            reservation,
                            now,
                            lease,
                        ));
                    }
                    // Calls spent what was carried while the store answered: top up again.
                }
                Ok(Reservation::Refused {
                    levels: refused_levels,
                    ..
                }) => {
                    (requests_left, tokens_left) = remaining(charges, &refused_levels);
                    levels = refused_levels;
                    let fits = carried_requests.saturating_add(requests_left) >= 1
                        && carried_tokens.saturating_add(tokens_left) >= reservation;
                    if !fits {
                        break;
                    }
                }
                Err(error) => {
                    tracing::error!(error = %error, customer_id, "strict limit store unavailable; refusing the call");
                    return Admission::Unavailable(
                        "limits cannot be checked right now; retry in a few seconds".into(),
                    );
                }
            }
        }
        refuse(&customer.limits, charges, &levels, reservation, now)
    }

    /// Before a refill: a lease in other windows is given back; for one in the call's
    /// windows, the next block's demand follows how fast the last one was used.
    async fn prepare_refill(
        &self,
        held: &CustomerLease,
        customer_id: &str,
        charges: &[QuotaCharge],
    ) {
        let stale = {
            let mut slot = held.lease();
            match slot.as_mut() {
                Some(lease) if lease.serves(charges) => {
                    let demand = held.demand.load(Ordering::Relaxed).max(1);
                    held.demand.store(
                        next_demand(demand, lease.granted_at, self.max_block),
                        Ordering::Relaxed,
                    );
                    Err(lease.take_owed())
                }
                Some(_) => Ok(slot.take()),
                None => Ok(None),
            }
        };
        match stale {
            Ok(Some(stale)) => self.give_back(customer_id, &stale).await,
            Ok(None) => {}
            // Tokens calls used beyond the lease: one write for all of them.
            Err(owed) if !owed.is_empty() => {
                if let Err(error) = self.quotas.adjust(customer_id, &owed).await {
                    tracing::error!(error = %error, customer_id, "could not write tokens used beyond their reservations");
                }
            }
            Err(_) => {}
        }
    }

    /// Gives a lease's unspent part back to the store (one write); on failure it stays
    /// counted until its windows reset.
    async fn give_back(&self, customer_id: &str, lease: &Lease) {
        let adjustments = lease.give_back();
        if adjustments.is_empty() {
            return;
        }
        tracing::debug!(
            customer_id,
            requests = lease.requests_left,
            tokens = lease.tokens_left,
            "giving back a quota lease"
        );
        if let Err(error) = self.quotas.adjust(customer_id, &adjustments).await {
            tracing::warn!(error = %error, customer_id, requests = lease.requests_left, tokens = lease.tokens_left, "could not give back a quota lease; it stays counted until its window resets");
        }
    }

    /// Gives back every lease unused for `idle` (all of them with `Duration::ZERO`, at
    /// shutdown). A lease whose block request is in flight is left alone.
    pub(super) async fn give_back_idle(&self, idle: Duration) {
        let held: Vec<(String, Arc<CustomerLease>)> = self
            .leases()
            .iter()
            .map(|(customer_id, held)| (customer_id.clone(), Arc::clone(held)))
            .collect();
        for (customer_id, held) in held {
            let Ok(_refill) = held.refill.try_lock() else {
                continue;
            };
            let lease = {
                let mut lease = held.lease();
                match lease.as_ref() {
                    Some(current) if current.last_used.elapsed() >= idle => lease.take(),
                    _ => None,
                }
            };
            if let Some(lease) = lease {
                self.give_back(&customer_id, &lease).await;
            }
        }
    }

    /// What each window holds in the store, with this process's lease counted as used.
    pub(super) async fn window_levels(
        &self,
        customer_id: &str,
        limits: &Limits,
        now: DateTime<Utc>,
    ) -> Option<WindowLevels> {
        let charges = charges_for(limits, now, 0);
        let windows: Vec<String> = charges.iter().map(|charge| charge.window.clone()).collect();
        let mut levels = self.quotas.levels(customer_id, &windows).await.ok()?;
        if let Some(held) = self.held_by(customer_id)
            && let Some(lease) = held.lease().as_ref()
            && lease.serves(&charges)
        {
            let mut own = lease.clone();
            own.levels = levels;
            levels = own.used_levels();
        }
        let level = |kind| level_for(&charges, &levels, now, kind);
        Some(WindowLevels {
            minute: level(WindowKind::Minute),
            day: level(WindowKind::Day),
            month: level(WindowKind::Month),
        })
    }

    /// Settles a call's tokens to the actual count: within the lease it came from when this
    /// process still holds it (no write), else the store write that moves the reservation;
    /// `None` when there is nothing to write.
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
        if let Some(held) = self.held_by(&customer_id)
            && let Some(lease) = held.lease().as_mut()
            && lease.holds_tokens_of(reserved)
        {
            lease.settle(reserved_tokens, actual_tokens);
            return None;
        }
        let tokens = i64::try_from(delta).unwrap_or(if delta > 0 { i64::MAX } else { i64::MIN });
        let adjustments: Vec<QuotaAdjustment> = reserved
            .iter()
            .map(|(window, resets_at)| QuotaAdjustment {
                window: window.clone(),
                resets_at: *resets_at,
                requests: 0,
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

/// Spends one call from the lease held, if it serves the call's windows and holds enough.
fn spend(
    held: &CustomerLease,
    customer: &Customer,
    charges: &[QuotaCharge],
    reservation: u64,
    now: DateTime<Utc>,
) -> Option<Grant> {
    let mut lease = held.lease();
    let lease = lease.as_mut()?;
    if !lease.serves(charges) || !lease.take(reservation) {
        return None;
    }
    Some(strict_grant(customer, charges, reservation, now, lease))
}

/// The grant of a call spent from `lease`, with the limit state this process sees.
fn strict_grant(
    customer: &Customer,
    charges: &[QuotaCharge],
    reservation: u64,
    now: DateTime<Utc>,
    lease: &Lease,
) -> Grant {
    let used = lease.used_levels();
    Grant::Strict {
        customer_id: customer.customer_id.clone(),
        reserved: charges
            .iter()
            .filter(|charge| charge.tokens > 0)
            .map(|charge| (charge.window.clone(), charge.resets_at))
            .collect(),
        reserved_tokens: reservation,
        rate: tightest(
            &customer.limits,
            now,
            |kind| level_for(charges, &used, now, kind),
            Cost::default(),
        ),
    }
}
