//! The spool's undelivered records kept in memory as they are written, so the drainer's
//! `peek` and `pop` do not read back from the segment files what this process has just
//! written. The files stay the truth: the mirror is used only while it holds every record
//! from the head to the tail ("complete"). After a restart, a failed write, or past its
//! size bound it is dropped, and reads go to the files until the spool is empty again.

use std::collections::VecDeque;

use crate::LogRecord;

/// Bytes of records the mirror holds at most (their encoded size in the segments).
pub const MIRROR_BYTES: u64 = 16 * 1024 * 1024;

/// One record and where it ends in the segments.
#[derive(Debug)]
struct Mirrored {
    record: LogRecord,
    size: u64,
    /// The segment number and the offset just after the record.
    end: (u64, u64),
}

#[derive(Debug)]
pub(super) struct Mirror {
    records: VecDeque<Mirrored>,
    bytes: u64,
    complete: bool,
    limit: u64,
}

/// Records read from the head: the records, the head after them, and their encoded bytes.
pub(super) type HeadRead = (Vec<LogRecord>, (u64, u64), u64);

impl Mirror {
    /// A mirror of a spool holding `records` records (complete only when it is empty).
    pub(super) fn new(records: u64, limit: u64) -> Self {
        Self {
            records: VecDeque::new(),
            bytes: 0,
            complete: records == 0,
            limit,
        }
    }

    /// Stops using the mirror until the spool is next empty.
    pub(super) fn drop_all(&mut self) {
        self.records.clear();
        self.bytes = 0;
        self.complete = false;
    }

    /// Records `records` just written to `segment`, the first starting at `offset`, each
    /// `sizes[i]` bytes long in the segment.
    pub(super) fn written(
        &mut self,
        records: &[LogRecord],
        sizes: &[u64],
        segment: u64,
        offset: u64,
    ) {
        if !self.complete {
            return;
        }
        let added: u64 = sizes.iter().sum();
        if self.bytes + added > self.limit || records.len() != sizes.len() {
            self.drop_all();
            return;
        }
        let mut end = offset;
        for (record, &size) in records.iter().zip(sizes) {
            end += size;
            self.records.push_back(Mirrored {
                record: record.clone(),
                size,
                end: (segment, end),
            });
        }
        self.bytes += added;
    }

    /// Up to `max` records from the head, when the mirror holds them all; `None` when
    /// the files must be read.
    pub(super) fn read(&self, max: usize, head: (u64, u64)) -> Option<HeadRead> {
        if !self.complete {
            return None;
        }
        let taken: Vec<&Mirrored> = self.records.iter().take(max).collect();
        let after = taken.last().map_or(head, |last| last.end);
        let bytes = taken.iter().map(|mirrored| mirrored.size).sum();
        Some((
            taken
                .iter()
                .map(|mirrored| mirrored.record.clone())
                .collect(),
            after,
            bytes,
        ))
    }

    /// Forgets the first `count` records (delivered); becomes complete again once the
    /// spool holds `remaining` = 0 records.
    pub(super) fn delivered(&mut self, count: usize, remaining: u64) {
        if self.complete {
            for mirrored in self.records.drain(..count.min(self.records.len())) {
                self.bytes -= mirrored.size;
            }
        } else if remaining == 0 {
            self.records.clear();
            self.bytes = 0;
            self.complete = true;
        }
    }
}
