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
        }
    }

    /// Takes a run of `events` applied at `now_ms`; writes what the policy says is due.
    pub fn add(&mut self, events: u64, now_ms: f64) {
        if events == 0 {
            return;
        }
        self.buffered_events += events;
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
    }
}
