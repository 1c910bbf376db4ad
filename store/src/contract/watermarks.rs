//! The `Watermarks` contract.

use chrono::{Duration, TimeZone, Utc};
use schemas::watermark::Gap;

use super::unique;
use crate::watermarks::{SeqObservation, Watermarks};

fn seen(instance: &str, seq: u64) -> SeqObservation {
    SeqObservation {
        proxy_instance: instance.into(),
        instance_seq: seq,
        occurred_at: Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
            + Duration::seconds(i64::try_from(seq).unwrap()),
    }
}

/// Runs every scenario.
pub async fn run_all(watermarks: &dyn Watermarks) {
    let first = unique("proxy");
    let second = unique("proxy");
    watermarks
        .observe(&[
            seen(&first, 1),
            seen(&first, 2),
            seen(&second, 1),
            seen(&first, 5),
        ])
        .await
        .unwrap();
    watermarks
        .observe(&[seen(&first, 2), seen(&first, 3), seen(&second, 2)])
        .await
        .unwrap();
    let progress = watermarks.progress().await.unwrap();
    let of = |instance: &str| {
        progress
            .iter()
            .find(|progress| progress.proxy_instance == instance)
            .unwrap()
            .clone()
    };
    assert_eq!(of(&first).contiguous_through, 3);
    assert_eq!(
        of(&first).gaps(),
        vec![Gap {
            proxy_instance: first.clone(),
            first_missing: 4,
            last_missing: 4
        }]
    );
    assert_eq!(of(&first).newest_at, Some(seen(&first, 5).occurred_at));
    assert_eq!(of(&second).contiguous_through, 2);
    assert_eq!(
        of(&second).contiguous_at,
        Some(seen(&second, 2).occurred_at)
    );

    // Concurrent observers of one instance lose nothing.
    let third = unique("proxy");
    let batches: Vec<Vec<SeqObservation>> = (0..8u64)
        .map(|batch| {
            (1..=25)
                .map(|index| seen(&third, batch * 25 + index))
                .collect()
        })
        .collect();
    futures::future::join_all(batches.iter().map(|batch| watermarks.observe(batch)))
        .await
        .into_iter()
        .for_each(|result| result.unwrap());
    let progress = watermarks.progress().await.unwrap();
    let third_progress = progress
        .iter()
        .find(|progress| progress.proxy_instance == third)
        .unwrap();
    assert_eq!(third_progress.contiguous_through, 200);
    assert!(third_progress.runs.is_empty());
}
