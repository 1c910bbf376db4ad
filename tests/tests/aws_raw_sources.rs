//! Reconcile and replay on AWS read what the docs say they read, on the emulator:
//! - under the documented settings (`TOLLGATE_FIREHOSE_STREAM` empty, because the
//!   template's Firehose archives the stream itself; `TOLLGATE_ARCHIVE_BUCKET` set), they
//!   read the S3 archive, which keeps more than the stream;
//! - with no archive configured they read the Kinesis stream, say so with the window it
//!   holds, and read every shard to its tip even when Kinesis answers empty pages first (a
//!   relay in front of the emulator serves them).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::Output;

use chrono::{Days, NaiveDate, Utc};
use object_store::{ObjectStoreExt, PutPayload};
use schemas::Outcome;
use store::aws::{AwsBackend, AwsSettings};
use tests::aws_env::{create_fresh_table, create_resources};
use tests::fault_relay::FaultRelay;
use tests::harness::Tollgate;

/// The settings `docs/deploy.md` and `infra/deploy.sh` give: this process writes no
/// Firehose, and the archive is the template's, under `archive/` of the data bucket.
async fn documented_settings() -> AwsSettings {
    let created = create_resources(1).await;
    AwsSettings {
        firehose_stream: None,
        archive_bucket: Some(created.bucket.clone()),
        archive_prefix: "archive".into(),
        ..created
    }
}

/// Answers `calls` calls through `tollgate serve` (simulated model) and stops it, which
/// drains the stream into the counters and Parquet; returns the customer's id.
async fn meter_calls(tollgate: &Tollgate, calls: usize) -> String {
    let (customer_id, token) = tollgate.create_customer("Raw Sources Co", None);
    let server = tollgate.serve(&["--upstream", "simulated"]);
    assert_eq!(server.spec_calls(&token, calls).await, vec![200; calls]);
    assert!(server.terminate().success(), "serve drains on SIGTERM");
    let usage = tollgate.usage_today(&customer_id);
    assert_eq!(usage["totals"]["requests"], calls as u64, "{usage}");
    customer_id
}

/// Every record of the stream, read directly.
async fn stream_records(settings: &AwsSettings) -> Vec<bytes::Bytes> {
    let backend = AwsBackend::connect(settings.clone()).await.unwrap();
    let mut records = Vec::new();
    for partition in store::EventReader::partitions(backend.event_log.as_ref())
        .await
        .unwrap()
    {
        records.extend(
            store::contract::event_reader::read_until_caught_up(
                backend.event_log.as_ref(),
                &partition.id,
                None,
                1000,
            )
            .await
            .into_iter()
            .map(|entry| entry.data),
        );
    }
    records
}

/// Writes one gzip object of newline-delimited records under `archive/dt=<day>/`, the way
/// the template's Firehose delivers (`AppendDelimiterToRecord`, GZIP).
async fn put_archive_object(settings: &AwsSettings, day: NaiveDate, records: &[bytes::Bytes]) {
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for record in records {
        gzip.write_all(record).unwrap();
        gzip.write_all(b"\n").unwrap();
    }
    let body = gzip.finish().unwrap();
    let backend = AwsBackend::connect(settings.clone()).await.unwrap();
    let key = format!(
        "archive/dt={day}/tollgate-usage-archive-1-{day}-00-00-00-{}.gz",
        uuid::Uuid::now_v7()
    );
    backend
        .objects
        .put(&key.as_str().into(), PutPayload::from(body))
        .await
        .unwrap();
}

fn json_of(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "invalid JSON ({error}): {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Defect: with `TOLLGATE_FIREHOSE_STREAM` empty, as documented, reconcile read the stream
/// and said "no drift" while the archive held an event the stream no longer had. It must
/// read the archive, name it, and report the drift; replay must rebuild from it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_the_documented_settings_reconcile_and_replay_read_the_archive() {
    let settings = documented_settings().await;
    let tollgate = Tollgate::on_aws(settings.clone());
    let customer_id = meter_calls(&tollgate, 3).await;
    let today = Utc::now().date_naive();
    let yesterday = today - Days::new(1);

    // The template's Firehose copied the stream into the archive; yesterday's file holds an
    // event the stream (24 hours) no longer has, and that the counters never saw.
    let streamed = stream_records(&settings).await;
    // The drainer may carry several calls' events in one record.
    let streamed_events: usize = streamed
        .iter()
        .map(|record| schemas::usage_frame::record_event_count(record))
        .sum();
    assert_eq!(streamed_events, 3);
    put_archive_object(&settings, today, &streamed).await;
    let older =
        store::contract::event_on(&customer_id, yesterday, "model-a", Outcome::Success, 7, 3);
    put_archive_object(&settings, yesterday, &[older.encode_json().unwrap().into()]).await;

    let (from, to) = (yesterday.to_string(), today.to_string());
    let range = ["reconcile", "--start-date", &from, "--end-date", &to];
    let output = tollgate
        .command()
        .arg("--json")
        .args(range)
        .output()
        .unwrap();
    let found = json_of(&output);
    assert_eq!(output.status.code(), Some(6), "drift exits 6: {found}");
    assert_eq!(found["source"]["kind"], "archive", "{found}");
    assert_eq!(
        found["source"]["location"],
        format!("s3://{}/archive/", settings.bucket)
    );
    assert_eq!(found["source_covers_range"], true);
    assert_eq!(found["raw_events"], 4, "{found}");
    let drift = found["drift"].as_array().unwrap();
    assert!(
        drift.contains(&serde_json::json!({
            "customer_id": customer_id,
            "day": from,
            "field": "requests",
            "raw": 1,
            "counters": 0,
            "parquet": 0,
        })),
        "yesterday's archived event is drift: {found}"
    );
    assert!(
        drift.iter().all(|cell| cell["day"] == from.as_str()),
        "today matches: {found}"
    );

    let human = tollgate.run(&range);
    let printed = String::from_utf8_lossy(&human.stdout);
    println!("{printed}");
    assert_eq!(human.status.code(), Some(6), "{printed}");
    assert!(
        printed.contains(&format!(
            "raw events: the archive at s3://{}/archive/",
            settings.bucket
        )),
        "{printed}"
    );
    assert!(printed.contains("4 raw events"), "{printed}");

    let fresh_table = create_fresh_table("tollgate-replayed").await;
    let replayed = tollgate.run_json(&[
        "replay",
        "--to-counters-table",
        &fresh_table,
        "--to-prefix",
        "replayed",
    ]);
    assert_eq!(replayed["source"]["kind"], "archive", "{replayed}");
    assert_eq!(replayed["events"], 4, "{replayed}");
    assert_eq!(replayed["days"], 2, "{replayed}");
}

/// Defect: Kinesis may answer empty pages before a shard's records; after 6 of them,
/// reconcile read 0 events against counters of 40 and exited 6. Without an archive it
/// reads the stream to its tip, and says it read the stream and which window that holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_archive_reconcile_and_replay_read_the_stream_through_empty_pages() {
    let settings = AwsSettings {
        archive_bucket: None,
        ..documented_settings().await
    };
    let tollgate = Tollgate::on_aws(settings.clone());
    let customer_id = meter_calls(&tollgate, 40).await;
    let relay = FaultRelay::start(
        settings.endpoint_url.as_deref().unwrap(),
        "Kinesis_20131202.",
    )
    .await;
    let through_relay = Tollgate::on_aws(AwsSettings {
        endpoint_url: Some(relay.endpoint_url()),
        ..settings.clone()
    });
    let today = Utc::now().date_naive();
    let day = today.to_string();

    relay.answer_empty_get_records_pages(6);
    let found = through_relay.run_json(&["reconcile", "--start-date", &day, "--end-date", &day]);
    assert_eq!(relay.empty_get_records_pages_served(), 6);
    assert_eq!(found["raw_events"], 40, "{found}");
    assert_eq!(found["drift"], serde_json::json!([]), "{found}");
    assert_eq!(found["source"]["kind"], "kinesis_stream", "{found}");
    assert_eq!(found["source"]["location"], settings.stream_name.as_str());
    assert_eq!(found["source"]["retention_hours"], 24, "{found}");
    assert_eq!(found["source_covers_range"], true, "{found}");

    // More empty pages than one read follows (the caller reads on), and a range that starts
    // before the stream's window: the output says what was read and what it cannot cover.
    let yesterday = (today - Days::new(1)).to_string();
    relay.answer_empty_get_records_pages(3 * store::aws::kinesis_log::MAX_PAGES_PER_READ);
    let human = through_relay.run(&["reconcile", "--start-date", &yesterday, "--end-date", &day]);
    let printed = String::from_utf8_lossy(&human.stdout);
    println!("{printed}");
    assert!(human.status.success(), "{printed}");
    for expected in [
        format!(
            "raw events: the Kinesis stream {}, because no archive is configured; it keeps 24 hours",
            settings.stream_name
        ),
        "set TOLLGATE_ARCHIVE_BUCKET".to_owned(),
        format!("warning: {yesterday} starts before the stream's window"),
        "40 raw events".to_owned(),
        "no drift".to_owned(),
    ] {
        assert!(printed.contains(&expected), "{expected:?} in {printed}");
    }

    relay.answer_empty_get_records_pages(6);
    let fresh_table = create_fresh_table("tollgate-replayed").await;
    let replayed = through_relay.run_json(&[
        "replay",
        "--to-counters-table",
        &fresh_table,
        "--to-prefix",
        "replayed",
    ]);
    assert_eq!(replayed["source"]["kind"], "kinesis_stream", "{replayed}");
    assert_eq!(replayed["events"], 40, "{replayed}");
    let usage = tollgate.usage_today(&customer_id);
    assert_eq!(usage["totals"]["requests"], 40);
}
