//! Parquet objects as the consumer would write them: one per applied run (today), or
//! buffered per shard consumer and flushed on size or age (issue 17, section 3).

use crate::config::{ParquetFlush, SimulationConfig};

/// One shard consumer's Parquet buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct ParquetBuffer {
    flush: ParquetFlush,
    flush_bytes: f64,
    flush_age_ms: f64,
    bytes_per_event: f64,
    buffered_events: u64,
    oldest_ms: Option<f64>,
    pub objects: u64,
    pub object_bytes: f64,
    /// Every event taken, flushed or not.
    pub events: u64,
}

impl ParquetBuffer {
    pub fn new(config: &SimulationConfig) -> Self {
        Self {
            flush: config.parquet,
            flush_bytes: config.parquet_flush_mb * 1024.0 * 1024.0,
            flush_age_ms: config.parquet_flush_minutes * 60_000.0,
            bytes_per_event: config.parquet_bytes_per_event,
            buffered_events: 0,
            oldest_ms: None,
            objects: 0,
            object_bytes: 0.0,
            events: 0,
        }
    }

    /// Objects an hour once the run is long enough for the policy to settle: at this
    /// consumer's rate of `events_per_second`, one per run for `PerRun` is what was
    /// measured, so this is for `Buffered`: one object per the size's fill time or the age,
    /// whichever is shorter.
    pub fn steady_objects_per_hour(&self, events_per_second: f64) -> f64 {
        let bytes_per_second = events_per_second * self.bytes_per_event;
        if bytes_per_second <= 0.0 {
            return 0.0;
        }
        let fill_seconds = self.flush_bytes / bytes_per_second;
        3600.0 / fill_seconds.min(self.flush_age_ms / 1000.0)
    }

    /// Takes a run of `events` applied at `now_ms`; writes what the policy says is due.
    pub fn add(&mut self, events: u64, now_ms: f64) {
        if events == 0 {
            return;
        }
        self.buffered_events += events;
        self.events += events;
        let oldest = *self.oldest_ms.get_or_insert(now_ms);
        let due = match self.flush {
            ParquetFlush::PerRun => true,
            ParquetFlush::Buffered => {
                self.buffered_events as f64 * self.bytes_per_event >= self.flush_bytes
                    || now_ms - oldest >= self.flush_age_ms
            }
        };
        if due {
            self.flush();
        }
    }

    /// Writes what is buffered as one object (on size, age or shutdown).
    pub fn flush(&mut self) {
        if self.buffered_events == 0 {
            return;
        }
        self.objects += 1;
        self.object_bytes += self.buffered_events as f64 * self.bytes_per_event;
        self.buffered_events = 0;
        self.oldest_ms = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buffer(flush: ParquetFlush, mb: f64, minutes: f64) -> ParquetBuffer {
        let mut config = SimulationConfig::issue_17();
        config.parquet = flush;
        config.parquet_flush_mb = mb;
        config.parquet_flush_minutes = minutes;
        config.parquet_bytes_per_event = 100.0;
        ParquetBuffer::new(&config)
    }

    #[test]
    fn per_run_writes_one_object_per_run() {
        let mut parquet = buffer(ParquetFlush::PerRun, 128.0, 5.0);
        for run in 0..3 {
            parquet.add(10, f64::from(run));
        }
        parquet.add(0, 4.0);
        assert_eq!(parquet.objects, 3);
    }

    #[test]
    fn buffered_flushes_on_size_or_age_whichever_first() {
        // 1 MiB at 100 bytes an event is 10,486 events.
        let mut parquet = buffer(ParquetFlush::Buffered, 1.0, 1.0);
        for second in 0..10 {
            parquet.add(1_000, f64::from(second) * 1_000.0);
        }
        assert_eq!(parquet.objects, 0, "10,000 events in 10 s: neither due");
        parquet.add(1_000, 10_000.0);
        assert_eq!(parquet.objects, 1, "past 1 MiB");
        parquet.add(10, 11_000.0);
        parquet.add(10, 71_000.0);
        assert_eq!(parquet.objects, 2, "a minute old");
        parquet.add(10, 72_000.0);
        parquet.flush();
        assert_eq!(parquet.objects, 3, "shutdown writes the rest");
        assert!((parquet.object_bytes - 1_103_000.0).abs() < 1e-6);
        // 1,000 events/s of 100 bytes fill 1 MiB in 10.5 s: 343 objects an hour; at 10
        // events/s the minute comes first: 60.
        assert!((parquet.steady_objects_per_hour(1_000.0) - 343.3).abs() < 0.1);
        assert!((parquet.steady_objects_per_hour(10.0) - 60.0).abs() < 1e-9);
    }
}
