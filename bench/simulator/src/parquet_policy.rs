//! Parquet objects as the consumers would write them: one per applied run (before issue 17
//! section 3), buffered per shard consumer and flushed on size or age (the server
//! consumer), or one per invocation of the Parquet function on each shard (AWS).

/// Lambda's invocation payload limit, 6 MB, holds this much record data once the event's
/// base64 and JSON are paid for (about 4/3 of the data).
pub const LAMBDA_PAYLOAD_RECORD_BYTES: f64 = 6.0 * 1024.0 * 1024.0 * 3.0 / 4.0;

use crate::config::{ParquetFlush, SimulationConfig};

/// One shard consumer's Parquet buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct ParquetBuffer {
    flush: ParquetFlush,
    flush_bytes: f64,
    flush_age_ms: f64,
    bytes_per_event: f64,
    function_batch_records: u64,
    function_window_ms: f64,
    buffered_records: u64,
    buffered_record_bytes: f64,
    buffered_events: u64,
    oldest_ms: Option<f64>,
    pub objects: u64,
    pub object_bytes: f64,
    /// Every event taken, flushed or not.
    pub events: u64,
    /// Every record and record byte the Parquet function was given.
    pub records: u64,
    pub record_bytes: f64,
}

impl ParquetBuffer {
    pub fn new(config: &SimulationConfig) -> Self {
        Self {
            flush: config.parquet,
            flush_bytes: config.parquet_flush_mb * 1024.0 * 1024.0,
            flush_age_ms: config.parquet_flush_minutes * 60_000.0,
            bytes_per_event: config.parquet_bytes_per_event,
            function_batch_records: config.parquet_batch_records.max(1),
            function_window_ms: config.parquet_window_s * 1000.0,
            buffered_records: 0,
            buffered_record_bytes: 0.0,
            buffered_events: 0,
            oldest_ms: None,
            objects: 0,
            object_bytes: 0.0,
            events: 0,
            records: 0,
            record_bytes: 0.0,
        }
    }

    /// Objects an hour once the run is long enough for the policy to settle: at this
    /// consumer's rate of `events_per_second`, one per run for `PerRun` is what was
    /// measured, so this is for `Buffered`: one object per the size's fill time or the age,
    /// whichever is shorter.
    pub fn steady_objects_per_hour(&self, events_per_second: f64) -> f64 {
        if self.flush == ParquetFlush::Function {
            let seconds = self.events as f64 / events_per_second.max(1e-9);
            let records_per_second = self.records as f64 / seconds.max(1e-9);
            let record_bytes_per_second = self.record_bytes / seconds.max(1e-9);
            let fill_seconds = (self.function_batch_records as f64 / records_per_second.max(1e-9))
                .min(LAMBDA_PAYLOAD_RECORD_BYTES / record_bytes_per_second.max(1e-9))
                .min(self.function_window_ms / 1000.0);
            return 3600.0 / fill_seconds;
        }
        let bytes_per_second = events_per_second * self.bytes_per_event;
        if bytes_per_second <= 0.0 {
            return 0.0;
        }
        let fill_seconds = self.flush_bytes / bytes_per_second;
        3600.0 / fill_seconds.min(self.flush_age_ms / 1000.0)
    }

    /// Takes a record as it reaches the shard, for the Parquet function: it is invoked
    /// when its batch is full (records or payload) or its window has passed.
    pub fn add_record(&mut self, record_bytes: u64, events: u64, now_ms: f64) {
        if self.flush != ParquetFlush::Function {
            return;
        }
        if self
            .oldest_ms
            .is_some_and(|oldest| now_ms - oldest >= self.function_window_ms)
            || self.buffered_record_bytes + record_bytes as f64 > LAMBDA_PAYLOAD_RECORD_BYTES
        {
            self.flush();
        }
        self.oldest_ms.get_or_insert(now_ms);
        self.buffered_records += 1;
        self.buffered_record_bytes += record_bytes as f64;
        self.records += 1;
        self.record_bytes += record_bytes as f64;
        self.buffered_events += events;
        self.events += events;
        if self.buffered_records >= self.function_batch_records {
            self.flush();
        }
    }

    /// Takes a run of `events` applied at `now_ms`; writes what the policy says is due.
    pub fn add(&mut self, events: u64, now_ms: f64) {
        if events == 0 || self.flush == ParquetFlush::Function {
            return;
        }
        self.buffered_events += events;
        self.events += events;
        let oldest = *self.oldest_ms.get_or_insert(now_ms);
        let due = match self.flush {
            ParquetFlush::PerRun => true,
            ParquetFlush::Function => false,
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
        self.buffered_records = 0;
        self.buffered_record_bytes = 0.0;
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
    fn the_parquet_function_writes_an_object_per_invocation_at_its_batch_payload_or_window() {
        let mut parquet = buffer(ParquetFlush::Function, 128.0, 5.0);
        parquet.function_batch_records = 3;
        parquet.function_window_ms = 10_000.0;
        for record in 0..7 {
            parquet.add_record(1_000, 10, f64::from(record));
        }
        assert_eq!(parquet.objects, 2, "two batches of 3 records");
        parquet.add_record(1_000, 10, 20_000.0);
        assert_eq!(parquet.objects, 3, "the window passed for the 7th record");
        parquet.add_record(4_000_000, 10, 20_001.0);
        parquet.add_record(4_000_000, 10, 20_002.0);
        assert_eq!(
            parquet.objects, 4,
            "two 4 MB records exceed one 6 MB payload"
        );
        parquet.add(500, 20_003.0);
        assert_eq!(
            parquet.events, 100,
            "runs of the counting consumer do not count"
        );
        // 10 records a second of 1 KB: 3 records fill a batch in 0.3 s.
        assert!((parquet.steady_objects_per_hour(100.0) - 12_000.0).abs() < 1e-6);
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
