//! The file spool's own tests, beside the spool contract suite.

use super::format::HEADER_BYTES;
use super::*;
use crate::contract::spool::{numbered, run_all};

fn spool_in(directory: &Path) -> Arc<FileSpool> {
    Arc::new(FileSpool::open(directory).unwrap())
}

#[tokio::test]
async fn file_spool_contract() {
    let directory = tempfile::tempdir().unwrap();
    run_all(&spool_in(directory.path())).await;
    let small = tempfile::tempdir().unwrap();
    run_all(&Arc::new(
        FileSpool::open(small.path())
            .unwrap()
            .with_segment_bytes(40),
    ))
    .await;
    // Without the in-memory mirror: every read goes to the segment files.
    let unmirrored = tempfile::tempdir().unwrap();
    run_all(&Arc::new(
        FileSpool::open(unmirrored.path())
            .unwrap()
            .with_segment_bytes(40)
            .with_mirror_bytes(0),
    ))
    .await;
}

/// A small deterministic generator for the interleaving below.
fn next(seed: &mut u64) -> u64 {
    *seed = seed
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    *seed >> 33
}

#[tokio::test]
async fn peeks_and_pops_give_the_pushed_records_in_order_whether_read_from_memory_or_files() {
    let directory = tempfile::tempdir().unwrap();
    let open = || {
        Arc::new(
            FileSpool::open(directory.path())
                .unwrap()
                .with_segment_bytes(120)
                .with_mirror_bytes(600),
        )
    };
    let mut spool = open();
    let mut expected: std::collections::VecDeque<LogRecord> = std::collections::VecDeque::new();
    let mut seed = 7_u64;
    let mut number = 0_usize;
    let (mut emptied, mut largest) = (0, 0);
    for step in 0..600 {
        match next(&mut seed) % 10 {
            0..=3 => {
                let batch: Vec<LogRecord> = (0..=next(&mut seed) % 4)
                    .map(|_| {
                        number += 1;
                        numbered(number)
                    })
                    .collect();
                if next(&mut seed).is_multiple_of(2) {
                    spool.push(&batch).await.unwrap();
                } else {
                    spool.push_now(&batch).unwrap().unwrap();
                }
                expected.extend(batch);
            }
            4 | 5 => {
                let max = usize::try_from(next(&mut seed) % 6).unwrap() + 1;
                let peeked = spool.peek(max).await.unwrap();
                let want: Vec<LogRecord> = expected.iter().take(max).cloned().collect();
                assert_eq!(peeked, want, "peek({max}) at step {step}");
            }
            6..=8 => {
                let count = usize::try_from(next(&mut seed) % 8).unwrap();
                let count = count.min(expected.len());
                spool.pop(count).await.unwrap();
                expected.drain(..count);
            }
            _ if next(&mut seed).is_multiple_of(3) => {
                drop(spool);
                spool = open();
            }
            _ => {}
        }
        assert_eq!(
            Spool::level(&spool).records,
            expected.len() as u64,
            "step {step}"
        );
        if expected.is_empty() {
            emptied += 1;
        }
        largest = largest.max(Spool::level(&spool).bytes);
    }
    // Both regimes were crossed: empty (the mirror complete again) and past its bound.
    assert!(emptied > 20, "the spool was empty {emptied} times");
    assert!(largest > 600, "the spool held at most {largest} bytes");
    drop(spool);
    let reopened = open();
    assert_eq!(
        reopened.peek(10_000).await.unwrap(),
        expected.into_iter().collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn records_written_by_this_process_are_read_back_from_memory() {
    // The mirror's point: the drainer does not read back what was just written. Shown by
    // emptying the segment file under the spool: the records still come from memory, and
    // a spool whose mirror is off reports the change instead.
    for (mirror_bytes, from_memory) in [(super::mirror::MIRROR_BYTES, true), (0, false)] {
        let directory = tempfile::tempdir().unwrap();
        let spool = Arc::new(
            FileSpool::open(directory.path())
                .unwrap()
                .with_mirror_bytes(mirror_bytes),
        );
        spool.push(&[numbered(1), numbered(2)]).await.unwrap();
        for entry in fs::read_dir(directory.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|extension| extension == "seg") {
                fs::write(&path, b"").unwrap();
            }
        }
        let peeked = spool.peek(10).await;
        if from_memory {
            assert_eq!(peeked.unwrap(), vec![numbered(1), numbered(2)]);
        } else {
            assert!(peeked.is_err(), "the files are read: {peeked:?}");
        }
    }
}

#[tokio::test]
async fn what_was_pushed_and_not_popped_survives_a_restart_across_segments() {
    let directory = tempfile::tempdir().unwrap();
    {
        let spool = Arc::new(
            FileSpool::open(directory.path())
                .unwrap()
                .with_segment_bytes(100),
        );
        for index in 0..50 {
            spool.push(&[numbered(index)]).await.unwrap();
        }
        spool.pop(17).await.unwrap();
        let segments = fs::read_dir(directory.path())
            .unwrap()
            .filter(|entry| {
                entry
                    .as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".seg")
            })
            .count();
        assert!(segments > 1, "records span several segments");
    }
    let reopened = Arc::new(
        FileSpool::open(directory.path())
            .unwrap()
            .with_segment_bytes(100),
    );
    assert_eq!(Spool::level(&reopened).records, 33);
    assert_eq!(
        reopened.peek(1_000).await.unwrap(),
        (17..50).map(numbered).collect::<Vec<_>>()
    );
    reopened.push(&[numbered(50)]).await.unwrap();
    reopened.pop(33).await.unwrap();
    assert_eq!(reopened.peek(10).await.unwrap(), vec![numbered(50)]);
}

#[tokio::test]
async fn a_write_cut_short_by_a_crash_is_truncated_and_nothing_else_is_lost() {
    let directory = tempfile::tempdir().unwrap();
    {
        let spool = spool_in(directory.path());
        spool.push(&[numbered(1), numbered(2)]).await.unwrap();
    }
    let segment = segment_path(directory.path(), 1);
    let mut file = OpenOptions::new().append(true).open(&segment).unwrap();
    let torn = encode(&numbered(3)).unwrap();
    file.write_all(&torn[..torn.len() / 2]).unwrap();
    drop(file);
    let reopened = spool_in(directory.path());
    assert_eq!(
        reopened.peek(10).await.unwrap(),
        vec![numbered(1), numbered(2)]
    );
    reopened.push(&[numbered(4)]).await.unwrap();
    assert_eq!(
        reopened.peek(10).await.unwrap(),
        vec![numbered(1), numbered(2), numbered(4)]
    );
}

#[tokio::test]
async fn damage_inside_the_spool_is_moved_aside_not_dropped() {
    let directory = tempfile::tempdir().unwrap();
    {
        let spool = Arc::new(
            FileSpool::open(directory.path())
                .unwrap()
                .with_segment_bytes(30),
        );
        for index in 0..4 {
            spool.push(&[numbered(index)]).await.unwrap();
        }
    }
    // Flip a byte in the first record of the first segment (which holds records 0
    // and 1): record boundaries after damage cannot be trusted, so the rest of that
    // segment is moved aside whole.
    let first = segment_path(directory.path(), 1);
    let mut bytes = fs::read(&first).unwrap();
    let segment_len = bytes.len();
    bytes[HEADER_BYTES as usize + 3] ^= 0xff;
    fs::write(&first, &bytes).unwrap();
    let reopened = spool_in(directory.path());
    let kept: Vec<_> = fs::read_dir(directory.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".corrupt-"))
        .collect();
    assert_eq!(kept.len(), 1, "the damaged bytes are kept: {kept:?}");
    assert_eq!(
        fs::read(directory.path().join(&kept[0])).unwrap().len(),
        segment_len
    );
    assert_eq!(
        reopened.peek(10).await.unwrap(),
        (2..4).map(numbered).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn one_process_at_a_time_and_free_slots_are_found() {
    let directory = tempfile::tempdir().unwrap();
    let held = spool_in(directory.path());
    let refused = FileSpool::open(directory.path()).unwrap_err();
    assert!(refused.to_string().contains("--spool-dir"), "{refused}");
    drop(held);
    let parent = tempfile::tempdir().unwrap();
    let first = FileSpool::claim_slot(parent.path()).unwrap();
    let second = FileSpool::claim_slot(parent.path()).unwrap();
    assert_ne!(first.directory, second.directory);
    second.spool.push(&[numbered(1)]).await.unwrap();
    drop(second);
    let orphans = FileSpool::orphaned_slots(parent.path()).unwrap();
    assert_eq!(orphans.len(), 1, "the stopped process's records are found");
    assert_eq!(orphans[0].spool.peek(5).await.unwrap(), vec![numbered(1)]);
}

#[tokio::test]
async fn records_pushed_now_are_kept_in_order_with_the_others_and_survive_a_restart() {
    let directory = tempfile::tempdir().unwrap();
    {
        let spool = Arc::new(
            FileSpool::open(directory.path())
                .unwrap()
                .with_segment_bytes(60),
        );
        spool.push(&[numbered(0)]).await.unwrap();
        for index in 1..6 {
            spool.push_now(&[numbered(index)]).unwrap().unwrap();
        }
        spool.push(&[numbered(6)]).await.unwrap();
        assert_eq!(Spool::level(&spool).records, 7);
        assert_eq!(
            spool.peek(10).await.unwrap(),
            (0..7).map(numbered).collect::<Vec<_>>()
        );
        spool.pop(2).await.unwrap();
    }
    let reopened = spool_in(directory.path());
    assert_eq!(
        reopened.peek(10).await.unwrap(),
        (2..7).map(numbered).collect::<Vec<_>>(),
        "a restart finds what was pushed now and not popped"
    );
}

#[tokio::test]
async fn a_head_cut_short_by_a_crash_sends_the_spool_again_from_its_oldest_record() {
    let directory = tempfile::tempdir().unwrap();
    {
        let spool = spool_in(directory.path());
        spool
            .push(&[numbered(1), numbered(2), numbered(3)])
            .await
            .unwrap();
        spool.pop(2).await.unwrap();
    }
    fs::write(directory.path().join("HEAD"), "").unwrap();
    let reopened = spool_in(directory.path());
    assert_eq!(
        reopened.peek(10).await.unwrap(),
        (1..4).map(numbered).collect::<Vec<_>>(),
        "the delivered records come again (consumers drop them); none is lost"
    );
}

/// The level the drainer reads settles on the records held while pushes and pops race
/// (a pop once published its level after letting go of the lock, over a newer push's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_level_settles_on_the_records_held_under_concurrent_pushes_and_pops() {
    for _ in 0..5 {
        let directory = tempfile::tempdir().unwrap();
        crate::contract::spool::level_settles_on_the_records_held(Arc::new(spool_in(
            directory.path(),
        )))
        .await;
    }
}
