//! `Alerts` on DynamoDB: one item per alert key in the counters table, put only if absent,
//! so exactly one raiser records (and delivers) each alert.
//!
//! | item | pk | sk | attributes |
//! |---|---|---|---|
//! | alert | `ALERT#<rule>\|<customer>\|<window>` | `ALERT` | alert (JSON), raised_at_ms, entity=`alert` |

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use schemas::alert::{Alert, RecordedAlert};

use super::attributes::{get_number, get_string, key, number, scan_entity, string, timestamp};
use super::conditional::{Expect, put_item_if};
use crate::alerts::Alerts;
use crate::{Result, StoreError};

/// Raised alerts in the counters table.
#[derive(Debug, Clone)]
pub struct DynamoAlerts {
    client: Client,
    table: String,
}

impl DynamoAlerts {
    /// Alerts in `table` (the counters table).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

#[async_trait]
impl Alerts for DynamoAlerts {
    async fn record(&self, alert: &Alert, at: DateTime<Utc>) -> Result<bool> {
        let mut item = key(format!("ALERT#{}", alert.key()), "ALERT");
        item.insert("entity".into(), string("alert"));
        item.insert("raised_at_ms".into(), number(at.timestamp_millis()));
        item.insert(
            "alert".into(),
            string(
                serde_json::to_string(alert)
                    .map_err(|error| StoreError::Corrupt(error.to_string()))?,
            ),
        );
        put_item_if(&self.client, &self.table, item, Expect::Absent).await
    }

    async fn since(&self, since: DateTime<Utc>) -> Result<Vec<RecordedAlert>> {
        let mut alerts = Vec::new();
        for item in scan_entity(&self.client, &self.table, "alert").await? {
            let raised_at = timestamp(get_number(&item, "raised_at_ms")?)?;
            if raised_at < since {
                continue;
            }
            alerts.push(RecordedAlert {
                raised_at,
                alert: serde_json::from_str(&get_string(&item, "alert")?)
                    .map_err(|error| StoreError::Corrupt(format!("stored alert: {error}")))?,
            });
        }
        alerts.sort_by_key(|recorded| (recorded.raised_at, recorded.alert.key()));
        Ok(alerts)
    }
}
