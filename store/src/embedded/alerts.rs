//! `Alerts` on SQLite: one row per alert key; the primary key makes `record` once-only.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::params;
use schemas::alert::{Alert, RecordedAlert};

use super::EmbeddedStore;
use crate::alerts::Alerts;
use crate::{Result, StoreError};

#[async_trait]
impl Alerts for EmbeddedStore {
    async fn record(&self, alert: &Alert, at: DateTime<Utc>) -> Result<bool> {
        let json =
            serde_json::to_string(alert).map_err(|error| StoreError::Corrupt(error.to_string()))?;
        let key = alert.key();
        self.with_connection(move |connection| {
            let inserted = connection.execute(
                "INSERT INTO alerts (alert_key, raised_at_ms, alert_json) VALUES (?1, ?2, ?3)
                 ON CONFLICT (alert_key) DO NOTHING",
                params![key, at.timestamp_millis(), json],
            )?;
            Ok(inserted == 1)
        })
        .await
    }

    async fn since(&self, since: DateTime<Utc>) -> Result<Vec<RecordedAlert>> {
        self.with_connection(move |connection| {
            let mut select = connection.prepare_cached(
                "SELECT raised_at_ms, alert_json FROM alerts WHERE raised_at_ms >= ?1 ORDER BY raised_at_ms, alert_key",
            )?;
            let rows = select.query_map(params![since.timestamp_millis()], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
            })?;
            let mut alerts = Vec::new();
            for row in rows {
                let (at_ms, json) = row?;
                alerts.push(RecordedAlert {
                    raised_at: chrono::TimeZone::timestamp_millis_opt(&Utc, at_ms)
                        .single()
                        .ok_or_else(|| StoreError::Corrupt(format!("alert time {at_ms}")))?,
                    alert: serde_json::from_str(&json)
                        .map_err(|error| StoreError::Corrupt(format!("stored alert: {error}")))?,
                });
            }
            Ok(alerts)
        })
        .await
    }
}
