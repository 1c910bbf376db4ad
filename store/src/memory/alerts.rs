//! `Alerts` in memory: each alert key recorded once.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use schemas::alert::{Alert, RecordedAlert};

use super::MemoryStore;
use crate::Result;
use crate::alerts::Alerts;

#[async_trait]
impl Alerts for MemoryStore {
    async fn record(&self, alert: &Alert, at: DateTime<Utc>) -> Result<bool> {
        let mut state = self.state()?;
        let key = alert.key();
        if state
            .alerts
            .iter()
            .any(|recorded| recorded.alert.key() == key)
        {
            return Ok(false);
        }
        state.alerts.push(RecordedAlert {
            raised_at: at,
            alert: alert.clone(),
        });
        Ok(true)
    }

    async fn since(&self, since: DateTime<Utc>) -> Result<Vec<RecordedAlert>> {
        let mut alerts: Vec<_> = self
            .state()?
            .alerts
            .iter()
            .filter(|recorded| recorded.raised_at >= since)
            .cloned()
            .collect();
        alerts.sort_by_key(|recorded| recorded.raised_at);
        Ok(alerts)
    }
}
