//! The event log goes away while the proxy serves: every answered call still reaches the
//! log exactly once (by `event_id`), through the durable spool, across restarts; and when
//! the spool is over its limit, new calls are refused instead of served unmetered.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::Path;
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use proxy::config::{ProxyConfig, SpoolConfig};
use proxy::server::{ProxyPorts, RunningProxy, start_proxy};
use proxy::upstream::{
    ModelInvocation, ModelRuntime, RuntimeError, UpstreamBody, UpstreamResponse, header_map,
};
use schemas::UsageEvent;
use store::memory::MemoryStore;
use store::{AppendResult, EventAppender, EventReader, LogRecord};

/// The memory log, switchable off: while down, every append fails as a whole.
struct SwitchableLog {
    inner: Arc<MemoryStore>,
    down: AtomicBool,
}

#[async_trait]
impl EventAppender for SwitchableLog {
    async fn append(&self, records: &[LogRecord]) -> store::Result<Vec<AppendResult>> {
        if self.down.load(Ordering::SeqCst) {
            return Err(store::StoreError::Unavailable(
                "injected: the event log is down".into(),
            ));
        }
        self.inner.append(records).await
    }
}

/// Answers at once, like a fast model.
struct InstantModel;

#[async_trait]
impl ModelRuntime for InstantModel {
    async fn send(&self, _: ModelInvocation) -> Result<UpstreamResponse, RuntimeError> {
        Ok(UpstreamResponse {
            status: 200,
            headers: header_map([("content-type", "application/json")]),
            body: UpstreamBody::Complete(Bytes::from_static(
                br#"{"usage":{"input_tokens":2,"output_tokens":3}}"#,
            )),
            upstream_latency: Duration::ZERO,
        })
    }
}

struct Setup {
    store: Arc<MemoryStore>,
    log: Arc<SwitchableLog>,
    token: String,
}

async fn setup() -> Setup {
    let store = Arc::new(MemoryStore::new());
    let token = common::customer_with_token(&store, "spool", 5).await;
    Setup {
        log: Arc::new(SwitchableLog {
            inner: Arc::clone(&store),
            down: AtomicBool::new(false),
        }),
        store,
        token,
    }
}

async fn start(setup: &Setup, spool_dir: &Path, limit_bytes: u64) -> RunningProxy {
    start_proxy(
        ProxyConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            spool: Some(SpoolConfig {
                directory: spool_dir.to_owned(),
                limit_bytes,
            }),
            shutdown_grace: Duration::from_secs(2),
            ..ProxyConfig::default()
        },
        ProxyPorts {
            registry: setup.store.clone(),
            counters: setup.store.clone(),
            quotas: setup.store.clone(),
            event_appender: setup.log.clone(),
            runtime: Arc::new(InstantModel),
        },
    )
    .await
    .unwrap()
}

async fn call(proxy: &RunningProxy, token: &str) -> (u16, Option<String>) {
    let response = reqwest::Client::new()
        .post(format!("http://{}/prod/bedrock", proxy.local_addr))
        .bearer_auth(token)
        .body(r#"{"modelId":"m","prompt":"hi"}"#)
        .send()
        .await
        .unwrap();
    let request_id = response
        .headers()
        .get("x-amzn-requestid")
        .map(|value| value.to_str().unwrap().to_owned());
    (response.status().as_u16(), request_id)
}

/// Every event in the log, and the distinct event ids among them.
async fn logged(store: &MemoryStore) -> (usize, BTreeSet<String>) {
    let events: Vec<UsageEvent> = store
        .read("0", None, 100_000)
        .await
        .unwrap()
        .entries
        .iter()
        .flat_map(|entry| schemas::usage_frame::decode_events(&entry.data).unwrap())
        .collect();
    let ids = events
        .iter()
        .map(|event| event.request_id.to_text())
        .collect();
    (events.len(), ids)
}

async fn wait_until_logged(store: &MemoryStore, expected: &BTreeSet<String>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, ids) = logged(store).await;
        if &ids == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the log never held exactly the served calls: {} of {}",
            ids.len(),
            expected.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Invariant: an event log outage of 10 s loses nothing. Calls are answered throughout;
/// their events wait in the spool and reach the log, in order, once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_seconds_without_the_event_log_lose_nothing() {
    let setup = setup().await;
    let spool_dir = tempfile::tempdir().unwrap();
    let proxy = start(&setup, spool_dir.path(), 64 * 1024 * 1024).await;
    let mut served = BTreeSet::new();
    for _ in 0..5 {
        let (status, id) = call(&proxy, &setup.token).await;
        assert_eq!(status, 200);
        served.insert(id.unwrap());
    }
    setup.log.down.store(true, Ordering::SeqCst);
    let outage = Instant::now();
    while outage.elapsed() < Duration::from_secs(10) {
        let (status, id) = call(&proxy, &setup.token).await;
        assert_eq!(status, 200, "calls are served while the log is down");
        served.insert(id.unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let spooled = std::fs::read_dir(spool_dir.path().join("slot-0"))
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
    assert!(spooled > 0, "events waited in the spool on disk");
    setup.log.down.store(false, Ordering::SeqCst);
    wait_until_logged(&setup.store, &served).await;
    let (records, ids) = logged(&setup.store).await;
    assert_eq!(ids, served);
    assert!(
        records >= served.len(),
        "duplicates are possible (a timed-out append), losses are not"
    );
    proxy.shutdown().await;
}

/// Invariant: a full spool refuses new calls (503, never forwarded) instead of serving
/// them unmetered, and a call already served is always kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_refuses_new_calls_until_the_log_takes_it() {
    let setup = setup().await;
    let spool_dir = tempfile::tempdir().unwrap();
    let proxy = start(&setup, spool_dir.path(), 1).await;
    setup.log.down.store(true, Ordering::SeqCst);
    let (status, first) = call(&proxy, &setup.token).await;
    assert_eq!(status, 200, "the spool had room");
    // The first event reaches the spool after the 2 s of direct attempts.
    let deadline = Instant::now() + Duration::from_secs(10);
    let refused = loop {
        let (status, _) = call(&proxy, &setup.token).await;
        if status == 503 {
            break true;
        }
        assert!(Instant::now() < deadline, "the full spool never refused");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(refused);
    let (status, _) = call(&proxy, &setup.token).await;
    assert_eq!(status, 503);
    setup.log.down.store(false, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut served = BTreeSet::new();
    served.insert(first.unwrap());
    loop {
        let (status, id) = call(&proxy, &setup.token).await;
        if status == 200 {
            served.insert(id.unwrap());
            break;
        }
        assert!(Instant::now() < deadline, "calls never resumed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The 503s were never metered: the log holds exactly the served calls, plus the
    // calls served before the spool was seen full.
    proxy.shutdown().await;
    let (_, ids) = logged(&setup.store).await;
    assert!(served.is_subset(&ids), "every served call is in the log");
}

/// Invariant: a proxy stopped while the log is down keeps its events in the spool, and the
/// next proxy started with that spool directory sends them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_spooled_at_shutdown_are_sent_by_the_next_start() {
    let setup = setup().await;
    let spool_dir = tempfile::tempdir().unwrap();
    let proxy = start(&setup, spool_dir.path(), 64 * 1024 * 1024).await;
    setup.log.down.store(true, Ordering::SeqCst);
    let mut served = BTreeSet::new();
    for _ in 0..3 {
        let (status, id) = call(&proxy, &setup.token).await;
        assert_eq!(status, 200);
        served.insert(id.unwrap());
    }
    proxy.shutdown().await;
    assert!(
        logged(&setup.store).await.1.is_empty(),
        "nothing reached the log while it was down"
    );
    setup.log.down.store(false, Ordering::SeqCst);
    let next = start(&setup, spool_dir.path(), 64 * 1024 * 1024).await;
    wait_until_logged(&setup.store, &served).await;
    next.shutdown().await;
}
