//! `Watermarks` in memory: per proxy instance progress.

use async_trait::async_trait;
use schemas::watermark::InstanceProgress;

use super::MemoryStore;
use crate::Result;
use crate::watermarks::{SeqObservation, Watermarks, fold_observations};

#[async_trait]
impl Watermarks for MemoryStore {
    async fn observe(&self, observations: &[SeqObservation]) -> Result<()> {
        let mut state = self.state()?;
        let updated = fold_observations(
            |instance| {
                state
                    .progress
                    .get(instance)
                    .cloned()
                    .unwrap_or_else(|| InstanceProgress::new(instance))
            },
            observations,
        );
        for progress in updated {
            state
                .progress
                .insert(progress.proxy_instance.clone(), progress);
        }
        Ok(())
    }

    async fn progress(&self) -> Result<Vec<InstanceProgress>> {
        Ok(self.state()?.progress.values().cloned().collect())
    }
}
