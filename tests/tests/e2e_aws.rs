//! End to end on emulated AWS, with the real binaries: `tollgate` creates customers in
//! DynamoDB, the standalone proxy (AWS backends) forwards to the fake Bedrock and writes
//! usage events to Kinesis, and the standalone poller drains Kinesis into DynamoDB
//! counters, Parquet on S3 and the Firehose archive.
#![allow(clippy::too_many_lines)] // end-to-end scenarios read top to bottom
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use schemas::parquet_codec::decode_events_parquet;
use schemas::{Outcome, UsageEvent};
use store::aws::AwsBackend;
use tests::aws_env::{create_resources, dynamo_dump};
use tests::fake_bedrock::FakeBedrock;
use tests::harness::{Tollgate, spec_body};

async fn objects_under(backend: &AwsBackend, prefix: &str) -> Vec<bytes::Bytes> {
    let listed: Vec<_> = backend
        .objects
        .list(Some(&prefix.into()))
        .try_collect()
        .await
        .unwrap();
    let mut bodies = Vec::new();
    for meta in listed {
        bodies.push(
            backend
                .objects
                .get(&meta.location)
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap(),
        );
    }
    bodies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_from_several_customers_are_metered_exactly_once_on_aws() {
    let settings = create_resources(2).await;
    let tollgate = Tollgate::on_aws(settings.clone());
    let fake = FakeBedrock::start().await;
    let limited_calls = 4u64;
    let customers: Vec<(String, String, u64)> = [
        ("Alpha Co", Some(limited_calls), 6u64),
        ("Beta Co", None, 5),
        ("Gamma Co", None, 3),
    ]
    .into_iter()
    .map(|(name, limit, calls)| {
        let (customer_id, token) = tollgate.create_customer(name, limit);
        (customer_id, token, calls)
    })
    .collect();
    let listed = tollgate.run_json(&["list"]);
    assert_eq!(
        listed.as_array().unwrap().len(),
        3,
        "customers live in DynamoDB"
    );

    let proxy = tollgate.standalone_proxy(&[
        "--upstream",
        "bedrock",
        "--bedrock-endpoint-url",
        &fake.endpoint_url(),
    ]);
    let poller = tollgate.poller();
    let endpoint = format!("{}/prod/bedrock", proxy.base_url);
    let client = reqwest::Client::new();
    let mut statuses: BTreeMap<String, Vec<u16>> = BTreeMap::new();
    for round in 0..6u64 {
        for (customer_id, token, calls) in &customers {
            if round >= *calls {
                continue;
            }
            let response = client
                .post(&endpoint)
                .bearer_auth(token)
                .json(&spec_body(&format!("{customer_id} round {round}")))
                .send()
                .await
                .unwrap();
            statuses
                .entry(customer_id.clone())
                .or_default()
                .push(response.status().as_u16());
        }
    }
    let alpha = &customers[0].0;
    assert_eq!(
        statuses[alpha],
        vec![200, 200, 200, 200, 429, 429],
        "the daily limit holds on AWS"
    );
    assert!(
        proxy.terminate().success(),
        "the proxy flushes its events to Kinesis on SIGTERM"
    );

    // The poller drains Kinesis; wait until the counters show every call.
    let today = chrono::Utc::now().date_naive().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    for (customer_id, _, _) in &customers {
        let expected: Vec<u16> = statuses[customer_id].clone();
        let admitted = expected.iter().filter(|status| **status == 200).count() as u64;
        let rejected = expected.len() as u64 - admitted;
        loop {
            let usage = tollgate.run_json(&[
                "usage",
                "--customer-id",
                customer_id,
                "--start-date",
                &today,
                "--end-date",
                &today,
            ]);
            let totals = &usage["totals"];
            if totals["requests"] == admitted && totals["rejected"] == rejected {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "counters of {customer_id} never reached {admitted}/{rejected}: {totals}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // Give the poller a moment past the counters, then stop it cleanly.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(poller.terminate().success());

    let answered = fake.answered();
    assert_eq!(answered.len(), 4 + 5 + 3);
    let fake_input: u64 = answered.iter().map(|call| call.input_tokens).sum();

    // Parquet on S3: exactly one row per metered call.
    let backend = AwsBackend::connect(settings).await.unwrap();
    let mut rows: Vec<UsageEvent> = Vec::new();
    for body in objects_under(&backend, "usage").await {
        rows.extend(decode_events_parquet(body).unwrap());
    }
    assert_eq!(
        rows.len(),
        4 + 2 + 5 + 3,
        "admitted calls plus the two rejections"
    );
    let ids: BTreeSet<_> = rows.iter().map(|row| row.event_id).collect();
    assert_eq!(ids.len(), rows.len());
    let successes: Vec<&UsageEvent> = rows
        .iter()
        .filter(|row| row.outcome == Outcome::Success)
        .collect();
    assert_eq!(successes.len(), 12);
    assert_eq!(
        successes.iter().map(|row| row.input_tokens).sum::<u64>(),
        fake_input
    );
    for (customer_id, _, _) in &customers {
        let per_customer = rows
            .iter()
            .filter(|row| &row.customer_id == customer_id)
            .count();
        assert_eq!(per_customer, statuses[customer_id].len());
    }

    // The Firehose archive on S3 holds every event once.
    let mut archived: Vec<UsageEvent> = Vec::new();
    for body in objects_under(&backend, "archive").await {
        for record in schemas::usage_frame::split_archive(&body) {
            archived.extend(schemas::usage_frame::decode_events(&record).unwrap());
        }
    }
    let archived_ids: Vec<_> = archived.iter().map(|event| event.event_id).collect();
    let unique_archived: BTreeSet<_> = archived_ids.iter().copied().collect();
    assert_eq!(
        archived_ids.len(),
        unique_archived.len(),
        "no event archived twice"
    );
    assert_eq!(
        unique_archived, ids,
        "the archive holds exactly the metered events"
    );

    // Reconciling the raw archive against DynamoDB counters and S3 Parquet finds no drift.
    let today = chrono::Utc::now().date_naive().to_string();
    let reconciled =
        tollgate.run_json(&["reconcile", "--start-date", &today, "--end-date", &today]);
    assert_eq!(reconciled["raw_events"], 14, "{reconciled}");
    assert_eq!(reconciled["source"]["kind"], "archive", "{reconciled}");
    assert_eq!(reconciled["drift"], serde_json::json!([]), "{reconciled}");
    assert_eq!(reconciled["parquet_duplicates"], 0);

    // Replay from the archive into a fresh table and prefix rebuilds the same counters.
    let fresh_table = tests::aws_env::create_fresh_table("tollgate-replayed").await;
    let replayed = tollgate.run_json(&[
        "replay",
        "--to-counters-table",
        &fresh_table,
        "--to-prefix",
        "replayed",
    ]);
    assert_eq!(replayed["events"], 14, "{replayed}");
    let rebuilt = AwsBackend::connect(store::aws::AwsSettings {
        counters_table: fresh_table.clone(),
        ..backend.settings.clone()
    })
    .await
    .unwrap();
    let day = chrono::Utc::now().date_naive();
    for (customer_id, _, _) in &customers {
        use store::Counters;
        assert_eq!(
            rebuilt
                .counters
                .read_daily(customer_id, day, day)
                .await
                .unwrap(),
            backend
                .counters
                .read_daily(customer_id, day, day)
                .await
                .unwrap(),
            "the replayed counters of {customer_id} equal the live ones"
        );
    }
    let again = tollgate.run_json(&[
        "replay",
        "--to-counters-table",
        &fresh_table,
        "--to-prefix",
        "replayed",
    ]);
    assert_eq!(again["newly_counted"], 0);

    // No token anywhere at rest: neither in DynamoDB nor in any S3 object.
    let dump = dynamo_dump(&backend.settings).await;
    let mut objects = objects_under(&backend, "").await;
    assert!(!objects.is_empty());
    objects.push(bytes::Bytes::from(dump));
    for (_, token, _) in &customers {
        for object in &objects {
            assert!(
                !String::from_utf8_lossy(object).contains(token.as_str()),
                "a token is stored at rest"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tollgate_serve_runs_on_the_aws_backend_too_and_alerts_reach_sns() {
    let settings = create_resources(1).await;
    let tollgate = Tollgate::on_aws(settings);
    let fake = FakeBedrock::start().await;
    let receiver = store::contract::notify::Receiver::start().await;
    let topic_arn = tests::aws_env::create_alert_topic(&receiver.url("/sns")).await;
    let (customer_id, token) = tollgate.create_customer("Serve Co", Some(2));
    let server = tollgate.serve(&[
        "--upstream",
        "bedrock",
        "--bedrock-endpoint-url",
        &fake.endpoint_url(),
        "--alert-sns-topic-arn",
        &topic_arn,
    ]);
    assert_eq!(server.spec_calls(&token, 2).await, vec![200; 2]);
    assert!(
        server.terminate().success(),
        "serve flushes to Kinesis and drains it on SIGTERM"
    );
    let usage = tollgate.usage_today(&customer_id);
    assert_eq!(usage["totals"]["requests"], 2);

    // Two calls against a daily limit of 2: 80% and 100% reached, each published once.
    let today = chrono::Utc::now().date_naive();
    let mut published: Vec<String> = receiver
        .requests()
        .iter()
        .map(|request| {
            let envelope: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
            let alert: schemas::alert::RecordedAlert =
                serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
            alert.alert.key()
        })
        .collect();
    published.sort();
    assert_eq!(
        published,
        vec![
            format!("usage_100|{customer_id}|daily_requests:day:{today}"),
            format!("usage_80|{customer_id}|daily_requests:day:{today}"),
        ]
    );
    let listed = tollgate.run_json(&["alerts", "--since", "1h"]);
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
}

/// An event of a customer the registry did not know yet is quarantined on S3; once the
/// customer exists, `tollgate quarantine requeue` sends it through Kinesis again and the
/// poller counts it, once, in DynamoDB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantined_event_is_requeued_through_kinesis_and_counted_once_on_aws() {
    use schemas::usage_frame::{FrameCodec, encode_frame};
    use store::LogRecord;
    use store::backend::BackendSettings;

    let settings = create_resources(1).await;
    let tollgate = Tollgate::on_aws(settings.clone());
    let ports = BackendSettings::Aws(settings).open().await.unwrap();
    let (known, _) = tollgate.create_customer("Known Co", None);
    let late = "0192c1a0-0000-7000-8000-00000000aaaa";
    let event = |customer: &str, seq: u64| {
        let mut event = store::contract::event_on(
            customer,
            chrono::Utc::now().date_naive(),
            "model-a",
            Outcome::Success,
            10,
            5,
        );
        event.proxy_instance = "proxy-late".into();
        event.instance_seq = seq;
        event
    };
    let frame = encode_frame(&[event(&known, 1), event(late, 2)], FrameCodec::Zstd).unwrap();
    ports
        .event_appender
        .append(&[LogRecord {
            partition_key: "proxy-late".into(),
            data: frame.into(),
        }])
        .await
        .unwrap();
    let poller = tollgate.poller();
    let deadline = Instant::now() + Duration::from_secs(60);
    let listed = loop {
        let listed = tollgate.run_json(&["quarantine", "list"]);
        if listed.as_array().is_some_and(|items| items.len() == 1) {
            break listed;
        }
        assert!(
            Instant::now() < deadline,
            "nothing was quarantined: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(listed[0]["line"], 2, "{listed}");
    assert_eq!(listed[0]["format"], "binary-v3", "{listed}");
    assert!(
        listed[0]["reason"]
            .as_str()
            .unwrap()
            .contains("unknown customer"),
        "{listed}"
    );

    // The customer is registered late, with the id its events carry.
    let mut customer = store::contract::registry::new_customer();
    customer.customer_id = late.to_owned();
    let key = store::contract::registry::new_key(late);
    ports
        .registry
        .create_customer(
            &customer,
            &key,
            &store::contract::registry::audit_for(late, "create"),
        )
        .await
        .unwrap();
    let requeued = tollgate.run_json(&["quarantine", "requeue"]);
    assert_eq!(requeued["requeued"], 1, "{requeued}");
    let today = chrono::Utc::now().date_naive().to_string();
    let requests = |customer: &str| {
        tollgate.run_json(&[
            "usage",
            "--customer-id",
            customer,
            "--start-date",
            &today,
            "--end-date",
            &today,
        ])["totals"]["requests"]
            .as_u64()
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while requests(late) != 1 {
        assert!(
            Instant::now() < deadline,
            "the requeued event was never counted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Sent twice: counted once.
    let requeued_again = tollgate.run_json(&["quarantine", "requeue"]);
    assert_eq!(requeued_again["requeued"], 0, "the quarantine is empty");
    // The duplicate, then a new event behind it on the one shard: once the new one is
    // counted, the poller has been past the duplicate.
    let again = encode_frame(&[event(late, 2), event(&known, 3)], FrameCodec::None).unwrap();
    ports
        .event_appender
        .append(&[LogRecord {
            partition_key: "proxy-late".into(),
            data: again.into(),
        }])
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while requests(&known) != 2 {
        assert!(
            Instant::now() < deadline,
            "the event after the duplicate was never counted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        requests(late),
        1,
        "the requeued event sent again is counted once"
    );
    assert!(
        tollgate
            .run_json(&["quarantine", "list"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(poller.terminate().success());
}
