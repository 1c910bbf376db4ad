//! Compaction while the server consumer runs: every so often (hourly by default), today's
//! and yesterday's Parquet files are merged ([`crate::compact::compact_day`]), so the live
//! day is a few large files rather than one per flush. A failure is logged and tried again
//! at the next interval; `tollgate compact` does the same on demand.

use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::ObjectStore;

use crate::compact::{CompactionSettings, TARGET_FILE_BYTES, compact_day};

/// Batch files of partitions without Parquet progress settle by age after this long (the
/// longest a record is retried by default).
const SETTLE_AFTER: Duration = Duration::from_secs(168 * 3600);

/// The consumer's compaction schedule.
pub struct LiveCompaction {
    every: Option<Duration>,
    objects: Arc<dyn ObjectStore>,
    last: Option<Instant>,
}

impl LiveCompaction {
    /// Compacts every `every` (never without one).
    pub fn new(every: Option<Duration>, objects: Arc<dyn ObjectStore>) -> Self {
        Self {
            every,
            objects,
            last: None,
        }
    }

    /// Compacts today and yesterday if the interval has passed since the last run (the
    /// first run waits one interval after the start).
    pub async fn run_if_due(&mut self) {
        let Some(every) = self.every else {
            return;
        };
        let now = Instant::now();
        let last = *self.last.get_or_insert(now);
        if now.duration_since(last) < every {
            return;
        }
        self.last = Some(now);
        let settings = CompactionSettings {
            settle_after: SETTLE_AFTER,
            target_file_bytes: TARGET_FILE_BYTES,
        };
        let today = chrono::Utc::now().date_naive();
        for day in [today - chrono::Days::new(1), today] {
            match compact_day(&self.objects, day, &settings).await {
                Ok(report) if report.files_merged > 0 => {
                    tracing::info!(%day, merged = report.files_merged, written = report.files_written, "parquet compacted");
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%day, error = %error, "parquet compaction failed; it runs again at the next interval, or run `tollgate compact`");
                }
            }
        }
    }
}
