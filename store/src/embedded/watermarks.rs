//! `Watermarks` on SQLite: one row per proxy instance with its progress as JSON, folded in
//! an immediate transaction so observers in several processes never lose an update.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use schemas::watermark::InstanceProgress;

use super::EmbeddedStore;
use crate::watermarks::{SeqObservation, Watermarks, fold_observations};
use crate::{Result, StoreError};

fn decode(json: &str) -> Result<InstanceProgress> {
    serde_json::from_str(json)
        .map_err(|error| StoreError::Corrupt(format!("instance progress: {error}")))
}

#[async_trait]
impl Watermarks for EmbeddedStore {
    async fn observe(&self, observations: &[SeqObservation]) -> Result<()> {
        let observations = observations.to_vec();
        self.with_connection(move |connection| {
            let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut load_error = None;
            let updated = fold_observations(
                |instance| {
                    let stored: rusqlite::Result<Option<String>> = transaction
                        .query_row(
                            "SELECT progress_json FROM instance_progress WHERE proxy_instance = ?1",
                            params![instance],
                            |row| row.get(0),
                        )
                        .optional();
                    match stored.map_err(StoreError::from).and_then(|json| {
                        json.map(|json| decode(&json)).transpose()
                    }) {
                        Ok(Some(progress)) => progress,
                        Ok(None) => InstanceProgress::new(instance),
                        Err(error) => {
                            load_error = Some(error);
                            InstanceProgress::new(instance)
                        }
                    }
                },
                &observations,
            );
            if let Some(error) = load_error {
                return Err(error);
            }
            for progress in updated {
                let json = serde_json::to_string(&progress)
                    .map_err(|error| StoreError::Corrupt(error.to_string()))?;
                transaction.execute(
                    "INSERT INTO instance_progress (proxy_instance, progress_json) VALUES (?1, ?2)
                     ON CONFLICT (proxy_instance) DO UPDATE SET progress_json = excluded.progress_json",
                    params![progress.proxy_instance, json],
                )?;
            }
            transaction.commit()?;
            Ok(())
        })
        .await
    }

    async fn progress(&self) -> Result<Vec<InstanceProgress>> {
        self.with_connection(|connection| {
            let mut select = connection.prepare_cached(
                "SELECT progress_json FROM instance_progress ORDER BY proxy_instance",
            )?;
            let rows = select.query_map([], |row| row.get::<_, String>(0))?;
            let mut progress = Vec::new();
            for row in rows {
                progress.push(decode(&row?)?);
            }
            Ok(progress)
        })
        .await
    }
}
