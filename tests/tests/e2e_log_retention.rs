//! End to end on the embedded default: `tollgate serve` moves settled log records into the
//! data directory's archive while it serves, `tollgate archive-log` finds nothing more to
//! move, and `reconcile` and `replay` count the same events from the archive and the log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use tests::harness::Tollgate;

fn archive_files(tollgate: &Tollgate) -> usize {
    let root = tollgate.data_dir.join("archive");
    std::fs::read_dir(&root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|folder| folder.path().is_dir())
        .flat_map(|folder| std::fs::read_dir(folder.path()).unwrap().flatten())
        .filter(|file| file.file_name().to_string_lossy().ends_with(".gz"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_moves_settled_records_into_the_archive_and_the_counts_hold() {
    let tollgate = Tollgate::new();
    let (customer_id, token) = tollgate.create_customer("Retained", None);
    let server = tollgate.serve(&[
        "--upstream",
        "simulated",
        "--log-retention-hours",
        "0",
        "--log-retention-check-seconds",
        "1",
    ]);
    let statuses = server.spec_calls(&token, 12).await;
    assert!(statuses.iter().all(|status| *status == 200), "{statuses:?}");
    tollgate
        .wait_for_usage(&customer_id, |totals| totals["requests"] == 12)
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while archive_files(&tollgate) == 0 {
        assert!(
            Instant::now() < deadline,
            "serve never archived the settled records"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(server.terminate().success());

    let moved = tollgate.run_json(&["archive-log", "--log-retention-hours", "0"]);
    assert_eq!(moved["after"]["records"], 0, "{moved}");
    assert_eq!(
        moved["partitions"][0]["records_archived"], 0,
        "serve had moved every record: {moved}"
    );

    let today = chrono::Utc::now().date_naive().to_string();
    let reconciled =
        tollgate.run_json(&["reconcile", "--start-date", &today, "--end-date", &today]);
    assert_eq!(reconciled["raw_events"], 12, "{reconciled}");
    assert_eq!(reconciled["raw_duplicates"], 0, "{reconciled}");
    assert_eq!(
        reconciled["drift"].as_array().unwrap().len(),
        0,
        "{reconciled}"
    );
    assert_eq!(reconciled["source"]["kind"], "archive_and_event_log");

    let target = tollgate.data_dir.with_file_name("replayed");
    let replayed = tollgate.run_json(&["replay", "--to-data-dir", target.to_str().unwrap()]);
    assert_eq!(replayed["events"], 12, "{replayed}");
}
