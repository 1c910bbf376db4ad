//! `Quotas` in memory: every window of a reservation checked and charged under one lock.

use async_trait::async_trait;
use schemas::quota::Level;

use super::MemoryStore;
use crate::Result;
use crate::quotas::{QuotaAdjustment, QuotaCharge, Quotas, Reservation};

#[async_trait]
impl Quotas for MemoryStore {
    async fn reserve(&self, customer_id: &str, charges: &[QuotaCharge]) -> Result<Reservation> {
        let mut state = self.state()?;
        let key = |window: &str| (customer_id.to_owned(), window.to_owned());
        let levels: Vec<Level> = charges
            .iter()
            .map(|charge| {
                state
                    .quota_windows
                    .get(&key(&charge.window))
                    .copied()
                    .unwrap_or_default()
            })
            .collect();
        if let Some(refused) = charges
            .iter()
            .zip(&levels)
            .position(|(charge, level)| !charge.fits(*level))
        {
            return Ok(Reservation::Refused { refused, levels });
        }
        let mut after = Vec::with_capacity(charges.len());
        for charge in charges {
            let level = state.quota_windows.entry(key(&charge.window)).or_default();
            level.requests = level.requests.saturating_add(charge.requests);
            level.tokens = level.tokens.saturating_add(charge.tokens);
            after.push(*level);
        }
        Ok(Reservation::Granted(after))
    }

    async fn adjust(&self, customer_id: &str, adjustments: &[QuotaAdjustment]) -> Result<()> {
        let mut state = self.state()?;
        for adjustment in adjustments {
            let level = state
                .quota_windows
                .entry((customer_id.to_owned(), adjustment.window.clone()))
                .or_default();
            level.requests = level.requests.saturating_add_signed(adjustment.requests);
            level.tokens = level.tokens.saturating_add_signed(adjustment.tokens);
        }
        Ok(())
    }

    async fn levels(&self, customer_id: &str, windows: &[String]) -> Result<Vec<Level>> {
        let state = self.state()?;
        Ok(windows
            .iter()
            .map(|window| {
                state
                    .quota_windows
                    .get(&(customer_id.to_owned(), window.clone()))
                    .copied()
                    .unwrap_or_default()
            })
            .collect())
    }
}
