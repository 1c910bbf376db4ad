//! Quota leases for strict mode: a proxy takes a block of a customer's remaining quota
//! (requests, and tokens under a token budget) from the store with one conditional write,
//! then admits calls from it locally until it runs out.
//!
//! The block is sized by two rules, both pure functions here:
//! - **demand**: the block doubles while blocks are used up within [`RAMP`] of being taken,
//!   and halves when they are not, so a busy customer costs one write per block of up to
//!   `max_block` calls and a quiet one a write per call at most;
//! - **share**: a block is at most a [`SHARE`]th of what remains under the tightest cap,
//!   so blocks shrink to a single call as the quota runs out and no proxy sits on much of
//!   the last of it.
//!
//! The store never grants past a cap, and a proxy never admits past its block, so a
//! request cap is never exceeded, whatever the number of proxies. What a proxy holds and
//! has not spent goes back to the store (one write) when it has been idle for
//! [`IDLE_RETURN`] and when the proxy shuts down; after a crash it stays counted until the
//! window resets (at most one block, and blocks are small exactly when quota is scarce).

use std::time::{Duration, Instant};

use schemas::quota::Level;
use store::{QuotaAdjustment, QuotaCharge};

/// A block is at most this fraction (1/SHARE) of what remains under the tightest cap.
pub(super) const SHARE: u64 = 4;

/// A block used up sooner than this after it was taken makes the next one twice as large.
pub(super) const RAMP: Duration = Duration::from_secs(1);

/// A lease no call has used for this long goes back to the store.
pub(super) const IDLE_RETURN: Duration = Duration::from_secs(1);

/// What remains under the caps of `charges` at `levels`: requests and tokens;
/// `u64::MAX` for a unit no window caps.
pub(super) fn remaining(charges: &[QuotaCharge], levels: &[Level]) -> (u64, u64) {
    charges.iter().zip(levels).fold(
        (u64::MAX, u64::MAX),
        |(requests, tokens), (charge, level)| {
            (
                charge.request_cap.map_or(requests, |cap| {
                    requests.min(cap.saturating_sub(level.requests))
                }),
                charge
                    .token_cap
                    .map_or(tokens, |cap| tokens.min(cap.saturating_sub(level.tokens))),
            )
        },
    )
}

/// Requests to lease: the demand, at most `max_block` and a [`SHARE`]th of `remaining`,
/// and at least one while anything remains.
pub(super) fn block_requests(demand: u64, remaining: u64, max_block: u64) -> u64 {
    demand
        .min(max_block)
        .min(remaining / SHARE)
        .max(1)
        .min(remaining)
}

/// Tokens to lease for a block of `requests` calls reserving `per_call` each: at most a
/// [`SHARE`]th of `remaining`, and at least `needed` (what this call lacks) when it fits.
pub(super) fn block_tokens(per_call: u64, requests: u64, needed: u64, remaining: u64) -> u64 {
    if per_call == 0 {
        return 0;
    }
    per_call
        .saturating_mul(requests.max(1))
        .min(remaining / SHARE)
        .max(needed)
        .min(remaining)
}

/// The next demand after a block taken at `granted_at` ran out now.
pub(super) fn next_demand(demand: u64, granted_at: Instant, max_block: u64) -> u64 {
    if granted_at.elapsed() < RAMP {
        demand.saturating_mul(2).min(max_block).max(1)
    } else {
        (demand / 2).max(1)
    }
}

/// A block of quota this process holds for one customer, in one set of windows.
#[derive(Debug, Clone)]
pub(super) struct Lease {
    /// The windows it was taken in, with their caps (a call's charges, one request each).
    pub charges: Vec<QuotaCharge>,
    pub requests_left: u64,
    pub tokens_left: u64,
    /// Tokens calls used beyond their reservations and beyond what the lease held, not yet
    /// written to the store (written with the next block, or when the lease goes back).
    pub tokens_owed: u64,
    /// The windows' levels in the store right after the last block was taken.
    pub levels: Vec<Level>,
    pub granted_at: Instant,
    pub last_used: Instant,
}

impl Lease {
    /// An empty lease in the windows of `charges`.
    pub fn empty(charges: &[QuotaCharge]) -> Self {
        let at = Instant::now();
        Self {
            charges: charges.to_vec(),
            requests_left: 0,
            tokens_left: 0,
            tokens_owed: 0,
            levels: vec![Level::default(); charges.len()],
            granted_at: at,
            last_used: at,
        }
    }

    /// Adds a block the store granted, with the windows' levels after it.
    pub fn add_block(&mut self, requests: u64, tokens: u64, levels: Vec<Level>) {
        self.requests_left = self.requests_left.saturating_add(requests);
        self.tokens_left = self.tokens_left.saturating_add(tokens);
        self.levels = levels;
        self.granted_at = Instant::now();
        self.last_used = self.granted_at;
    }

    /// Whether a call with `charges` is charged in the same windows under the same caps.
    pub fn serves(&self, charges: &[QuotaCharge]) -> bool {
        self.charges.len() == charges.len()
            && self.charges.iter().zip(charges).all(|(held, wanted)| {
                held.window == wanted.window
                    && held.request_cap == wanted.request_cap
                    && held.token_cap == wanted.token_cap
            })
    }

    /// Spends one call reserving `tokens`, if the lease still holds them.
    pub fn take(&mut self, tokens: u64) -> bool {
        if self.requests_left == 0 || self.tokens_left < tokens {
            return false;
        }
        self.requests_left -= 1;
        self.tokens_left -= tokens;
        self.last_used = Instant::now();
        true
    }

    /// The windows' levels as this process sees them: the store's after the last block,
    /// less what this process holds unspent.
    pub fn used_levels(&self) -> Vec<Level> {
        self.charges
            .iter()
            .zip(&self.levels)
            .map(|(charge, level)| Level {
                requests: level.requests.saturating_sub(self.requests_left),
                tokens: if charge.token_cap.is_some() {
                    level
                        .tokens
                        .saturating_sub(self.tokens_left)
                        .saturating_add(self.tokens_owed)
                } else {
                    level.tokens
                },
            })
            .collect()
    }

    /// Whether the lease holds a call's reserved tokens in the windows `reserved` names.
    pub fn holds_tokens_of(&self, reserved: &[(String, chrono::DateTime<chrono::Utc>)]) -> bool {
        let token_windows = self
            .charges
            .iter()
            .filter(|charge| charge.token_cap.is_some())
            .map(|charge| &charge.window);
        token_windows.eq(reserved.iter().map(|(window, _)| window))
    }

    /// Settles a call's tokens inside the lease: what it did not use comes back; what it
    /// used beyond its reservation is taken from the lease, and past what the lease holds,
    /// owed (written to the store later, with one write for many calls).
    pub fn settle(&mut self, reserved: u64, actual: u64) {
        if actual <= reserved {
            self.tokens_left = self.tokens_left.saturating_add(reserved - actual);
            return;
        }
        let extra = actual - reserved;
        let from_lease = extra.min(self.tokens_left);
        self.tokens_left -= from_lease;
        self.tokens_owed = self.tokens_owed.saturating_add(extra - from_lease);
    }

    /// The tokens owed, to be written to the store now; the lease owes nothing after.
    pub fn take_owed(&mut self) -> Vec<QuotaAdjustment> {
        let owed = std::mem::take(&mut self.tokens_owed);
        if owed == 0 {
            return Vec::new();
        }
        self.charges
            .iter()
            .filter(|charge| charge.token_cap.is_some())
            .map(|charge| QuotaAdjustment {
                window: charge.window.clone(),
                resets_at: charge.resets_at,
                requests: 0,
                tokens: i64::try_from(owed).unwrap_or(i64::MAX),
            })
            .collect()
    }

    /// The adjustment that gives the unspent part back to the store; empty when nothing is
    /// left.
    pub fn give_back(&self) -> Vec<QuotaAdjustment> {
        if self.requests_left == 0 && self.tokens_left == 0 && self.tokens_owed == 0 {
            return Vec::new();
        }
        let negative = |value: u64| -i64::try_from(value).unwrap_or(i64::MAX);
        let tokens = i64::try_from(self.tokens_owed)
            .unwrap_or(i64::MAX)
            .saturating_add(negative(self.tokens_left));
        self.charges
            .iter()
            .map(|charge| QuotaAdjustment {
                window: charge.window.clone(),
                resets_at: charge.resets_at,
                requests: negative(self.requests_left),
                tokens: if charge.token_cap.is_some() {
                    tokens
                } else {
                    0
                },
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn charge(window: &str, request_cap: Option<u64>, token_cap: Option<u64>) -> QuotaCharge {
        QuotaCharge {
            window: window.to_owned(),
            resets_at: Utc::now(),
            requests: 1,
            tokens: 0,
            request_cap,
            token_cap,
        }
    }

    #[test]
    fn what_remains_is_the_tightest_cap_less_its_level() {
        let charges = [
            charge("minute", Some(100), None),
            charge("day", Some(1_000), Some(50_000)),
        ];
        let levels = [
            Level {
                requests: 90,
                tokens: 0,
            },
            Level {
                requests: 500,
                tokens: 49_000,
            },
        ];
        assert_eq!(remaining(&charges, &levels), (10, 1_000));
        assert_eq!(
            remaining(&[charge("day", None, None)], &[Level::default()]),
            (u64::MAX, u64::MAX)
        );
    }

    #[test]
    fn blocks_shrink_to_one_call_as_the_quota_runs_out() {
        assert_eq!(block_requests(64, 100_000, 1_000), 64, "the demand");
        assert_eq!(block_requests(5_000, 100_000, 1_000), 1_000, "the most");
        assert_eq!(
            block_requests(1_000, 400, 1_000),
            100,
            "a quarter of what remains"
        );
        assert_eq!(block_requests(1_000, 7, 1_000), 1);
        assert_eq!(block_requests(1_000, 1, 1_000), 1);
        assert_eq!(block_requests(1_000, 50, 1), 1, "a block of one is a call");
        let sizes: Vec<u64> = [1_000_u64, 200, 40, 8, 3, 1]
            .iter()
            .map(|left| block_requests(1_000, *left, 1_000))
            .collect();
        assert_eq!(sizes, vec![250, 50, 10, 2, 1, 1]);
    }

    #[test]
    fn token_blocks_cover_the_call_and_never_pass_what_remains() {
        assert_eq!(block_tokens(0, 10, 0, 1_000), 0, "no token budget");
        assert_eq!(block_tokens(100, 10, 100, 1_000_000), 1_000);
        assert_eq!(block_tokens(100, 10, 100, 2_000), 500, "a quarter");
        assert_eq!(
            block_tokens(100, 10, 100, 150),
            100,
            "at least the call's own"
        );
        assert_eq!(block_tokens(100, 10, 60, 150), 60, "what the lease lacks");
    }

    #[test]
    fn demand_doubles_while_blocks_run_out_fast() {
        let now = Instant::now();
        assert_eq!(next_demand(1, now, 1_000), 2);
        assert_eq!(next_demand(800, now, 1_000), 1_000);
        let long_ago = now.checked_sub(Duration::from_secs(5)).unwrap_or(now);
        if long_ago < now {
            assert_eq!(next_demand(64, long_ago, 1_000), 32);
            assert_eq!(next_demand(1, long_ago, 1_000), 1);
        }
    }

    #[test]
    fn a_lease_spends_gives_back_and_reports_what_this_process_used() {
        let charges = vec![
            charge("minute", Some(100), None),
            charge("day", None, Some(10_000)),
        ];
        let mut lease = Lease {
            charges: charges.clone(),
            requests_left: 2,
            tokens_left: 500,
            tokens_owed: 0,
            levels: vec![
                Level {
                    requests: 10,
                    tokens: 0,
                },
                Level {
                    requests: 10,
                    tokens: 3_000,
                },
            ],
            granted_at: Instant::now(),
            last_used: Instant::now(),
        };
        assert!(lease.serves(&charges));
        assert!(!lease.serves(&charges[..1]));
        let mut other_day = charges.clone();
        other_day[1].window = "day2".into();
        assert!(!lease.serves(&other_day));
        assert!(!lease.take(600), "more tokens than held");
        assert!(lease.take(200));
        assert_eq!(
            lease.used_levels(),
            vec![
                Level {
                    requests: 9,
                    tokens: 0
                },
                Level {
                    requests: 9,
                    tokens: 2_700
                }
            ]
        );
        let back = lease.give_back();
        assert_eq!(back.len(), 2);
        assert_eq!((back[0].requests, back[0].tokens), (-1, 0));
        assert_eq!((back[1].requests, back[1].tokens), (-1, -300));
        assert!(lease.take(300));
        assert!(!lease.take(0), "no requests left");
        assert!(lease.give_back().is_empty());
        assert!(lease.holds_tokens_of(&[("day".to_owned(), Utc::now())]));
        // A call that used 100 less than reserved gives them back; one that used 150 more
        // takes 100 from the lease and owes 50.
        lease.settle(200, 100);
        assert_eq!(lease.tokens_left, 100);
        lease.settle(200, 350);
        assert_eq!((lease.tokens_left, lease.tokens_owed), (0, 50));
        assert_eq!(lease.used_levels()[1].tokens, 3_050);
        let back = lease.give_back();
        assert_eq!(
            (back[1].requests, back[1].tokens),
            (0, 50),
            "owed is written back"
        );
        let owed = lease.take_owed();
        assert_eq!(owed.len(), 1);
        assert_eq!((owed[0].window.as_str(), owed[0].tokens), ("day", 50));
        assert!(lease.take_owed().is_empty());
        assert!(!lease.holds_tokens_of(&[("minute".to_owned(), Utc::now())]));
    }
}
