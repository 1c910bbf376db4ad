//! `Quotas` on SQLite: one row per (customer, window), reserved in one immediate
//! transaction, so concurrent reservations from any process sharing the file serialize.

use async_trait::async_trait;
use chrono::Utc;
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use schemas::quota::Level;

use super::EmbeddedStore;
use crate::Result;
use crate::quotas::{QuotaAdjustment, QuotaCharge, Quotas, Reservation, WINDOW_GRACE};

fn level_of(connection: &rusqlite::Connection, customer_id: &str, window: &str) -> Result<Level> {
    let level = connection
        .query_row(
            "SELECT requests, tokens FROM quota_windows WHERE customer_id = ?1 AND window_id = ?2",
            params![customer_id, window],
            |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)),
        )
        .optional()?
        .map_or(Level::default(), |(requests, tokens)| Level {
            requests: u64::try_from(requests).unwrap_or(0),
            tokens: u64::try_from(tokens).unwrap_or(0),
        });
    Ok(level)
}

fn clamp(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[async_trait]
impl Quotas for EmbeddedStore {
    async fn reserve(&self, customer_id: &str, charges: &[QuotaCharge]) -> Result<Reservation> {
        let customer_id = customer_id.to_owned();
        let charges = charges.to_vec();
        self.with_quota_connection(move |connection| {
            let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut levels = Vec::with_capacity(charges.len());
            let mut new_window = false;
            for charge in &charges {
                let level = level_of(&transaction, &customer_id, &charge.window)?;
                new_window |= level == Level::default();
                levels.push(level);
            }
            if new_window {
                // A window starts: the customer's ended windows can go (once a minute at most
                // per customer, not on every reservation).
                transaction.execute(
                    "DELETE FROM quota_windows WHERE customer_id = ?1 AND forget_after_ms < ?2",
                    params![customer_id, Utc::now().timestamp_millis()],
                )?;
            }
            if let Some(refused) = charges
                .iter()
                .zip(&levels)
                .position(|(charge, level)| !charge.fits(*level))
            {
                return Ok(Reservation::Refused { refused, levels });
            }
            let mut after = Vec::with_capacity(charges.len());
            for (charge, level) in charges.iter().zip(&levels) {
                let forget_after_ms = (charge.resets_at + WINDOW_GRACE).timestamp_millis();
                transaction.execute(
                    "INSERT INTO quota_windows (customer_id, window_id, requests, tokens, forget_after_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (customer_id, window_id) DO UPDATE SET
                        requests = requests + excluded.requests,
                        tokens = tokens + excluded.tokens",
                    params![
                        customer_id,
                        charge.window,
                        clamp(charge.requests),
                        clamp(charge.tokens),
                        forget_after_ms
                    ],
                )?;
                after.push(Level {
                    requests: level.requests.saturating_add(charge.requests),
                    tokens: level.tokens.saturating_add(charge.tokens),
                });
            }
            transaction.commit()?;
            Ok(Reservation::Granted(after))
        })
        .await
    }

    async fn adjust(&self, customer_id: &str, adjustments: &[QuotaAdjustment]) -> Result<()> {
        let customer_id = customer_id.to_owned();
        let adjustments = adjustments.to_vec();
        self.with_quota_connection(move |connection| {
            let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for adjustment in &adjustments {
                let forget_after_ms = (adjustment.resets_at + WINDOW_GRACE).timestamp_millis();
                transaction.execute(
                    "INSERT INTO quota_windows (customer_id, window_id, requests, tokens, forget_after_ms)
                     VALUES (?1, ?2, max(?5, 0), max(?3, 0), ?4)
                     ON CONFLICT (customer_id, window_id) DO UPDATE SET
                        requests = max(requests + ?5, 0),
                        tokens = max(tokens + ?3, 0)",
                    params![
                        customer_id,
                        adjustment.window,
                        adjustment.tokens,
                        forget_after_ms,
                        adjustment.requests
                    ],
                )?;
            }
            transaction.commit()?;
            Ok(())
        })
        .await
    }

    async fn levels(&self, customer_id: &str, windows: &[String]) -> Result<Vec<Level>> {
        let customer_id = customer_id.to_owned();
        let windows = windows.to_vec();
        self.with_quota_connection(move |connection| {
            windows
                .iter()
                .map(|window| level_of(connection, &customer_id, window))
                .collect()
        })
        .await
    }
}
