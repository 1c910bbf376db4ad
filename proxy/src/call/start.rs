//! What a call is given when it is accepted, before anything else happens: its ids and
//! its clocks.

use std::time::Instant;

use chrono::{DateTime, Utc};
use schemas::RequestId;
use uuid::Uuid;

/// A call's identity and start times, minted once when the request is accepted.
#[derive(Debug, Clone)]
pub struct CallStart {
    /// The usage event's id (UUIDv7).
    pub event_id: Uuid,
    /// Tollgate's request id, sent back as `x-amzn-requestid`: the event id as text.
    pub request_id: RequestId,
    /// When the call was accepted (the event's `occurred_at`).
    pub accepted_at: DateTime<Utc>,
    /// For the event's `latency_ms`.
    pub started: Instant,
}

impl CallStart {
    /// A call accepted now.
    pub fn now() -> Self {
        let started = Instant::now();
        let accepted_at = Utc::now();
        let event_id = event_id_at(accepted_at);
        Self {
            event_id,
            request_id: RequestId::of_uuid(event_id),
            accepted_at,
            started,
        }
    }
}

/// A UUIDv7 minted at `at`: its Unix milliseconds (the event's `occurred_at`, to the
/// millisecond) and 74 random bits from this thread's generator. `Uuid::now_v7` takes a
/// process-wide lock and asks the kernel for random bytes on every id: two system calls and
/// a contended lock per call across the I/O threads.
fn event_id_at(at: DateTime<Utc>) -> Uuid {
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or_default();
    let random: [u8; 10] = rand::random();
    uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn event_ids_are_version_7_at_the_calls_millisecond_and_distinct() {
        let mut seen = HashSet::new();
        for _ in 0..10_000 {
            let start = CallStart::now();
            assert_eq!(start.event_id.get_version(), Some(uuid::Version::SortRand));
            assert_eq!(start.event_id.get_variant(), uuid::Variant::RFC4122);
            let (seconds, nanos) = start
                .event_id
                .get_timestamp()
                .expect("a v7 id has a timestamp")
                .to_unix();
            let millis = i64::try_from(seconds).unwrap() * 1000 + i64::from(nanos / 1_000_000);
            assert_eq!(millis, start.accepted_at.timestamp_millis());
            assert_eq!(start.request_id, start.event_id.to_string());
            assert!(seen.insert(start.event_id), "a repeated id");
        }
    }

    #[test]
    fn ids_minted_on_other_threads_in_the_same_millisecond_differ() {
        let at = Utc::now();
        let ids: Vec<Uuid> = (0..4)
            .map(|_| {
                std::thread::spawn(move || (0..1000).map(|_| event_id_at(at)).collect::<Vec<_>>())
            })
            .flat_map(|thread| thread.join().unwrap())
            .collect();
        let distinct: HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
    }
}
