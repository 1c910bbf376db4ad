//! The proxy in-process over the memory store: event emission through log failures,
//! events for clients that hang up, and connection timeouts.
#![allow(clippy::too_many_lines)] // end-to-end scenarios read top to bottom
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;
use proxy::config::ProxyConfig;
use proxy::emitter::{EmitterStats, EventEmitter, append_until_durable};
use proxy::server::{ProxyPorts, start_proxy};
use proxy::upstream::{
    ModelInvocation, ModelRuntime, RuntimeError, UpstreamBody, UpstreamResponse, header_map,
};
use schemas::usage_frame::decode_events;
use schemas::{AuditEntry, Limits, Outcome, RequestId, UsageEvent};
use store::memory::MemoryStore;
use store::{AppendFailure, AppendResult, EventAppender, EventReader, LogRecord, Registry};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A log that refuses whole appends a number of times, then fails every other record once.
struct FlakyLog {
    inner: MemoryStore,
    whole_failures_left: AtomicUsize,
    record_failures_left: AtomicUsize,
}

#[async_trait]
impl EventAppender for FlakyLog {
    async fn append(&self, records: &[LogRecord]) -> store::Result<Vec<AppendResult>> {
        if self.whole_failures_left.load(Ordering::SeqCst) > 0 {
            self.whole_failures_left.fetch_sub(1, Ordering::SeqCst);
            return Err(store::StoreError::Unavailable("injected outage".into()));
        }
        let mut results = Vec::new();
        for (index, record) in records.iter().enumerate() {
            if index % 2 == 1 && self.record_failures_left.load(Ordering::SeqCst) > 0 {
                self.record_failures_left.fetch_sub(1, Ordering::SeqCst);
                results.push(Err(AppendFailure {
                    retryable: true,
                    message: "injected throttle".into(),
                }));
            } else {
                results.extend(self.inner.append(std::slice::from_ref(record)).await?);
            }
        }
        Ok(results)
    }
}

fn record(index: usize) -> LogRecord {
    LogRecord {
        partition_key: "c".into(),
        data: Bytes::from(format!("record-{index}")),
    }
}

#[tokio::test]
async fn only_failed_records_are_retried_until_every_record_is_in_the_log_once() {
    let log = FlakyLog {
        inner: MemoryStore::new(),
        whole_failures_left: AtomicUsize::new(2),
        record_failures_left: AtomicUsize::new(5),
    };
    let stats = EmitterStats::default();
    let records: Vec<LogRecord> = (0..10).map(record).collect();
    append_until_durable(&log, records.clone(), &stats).await;

    let stored = log.inner.read("0", None, 100).await.unwrap().entries;
    let mut stored_data: Vec<Bytes> = stored.into_iter().map(|entry| entry.data).collect();
    let mut expected: Vec<Bytes> = records.into_iter().map(|record| record.data).collect();
    stored_data.sort();
    expected.sort();
    assert_eq!(
        stored_data, expected,
        "every record once, none lost, none doubled"
    );
    assert_eq!(stats.appended.load(Ordering::SeqCst), 10);
    assert!(stats.append_retries.load(Ordering::SeqCst) >= 3);
}

fn sample_event(seq: u64) -> UsageEvent {
    let mut event =
        store::contract::event_on("c", Utc::now().date_naive(), "m", Outcome::Success, 1, 1);
    event.instance_seq = seq;
    event
}

#[tokio::test]
async fn the_emitter_flushes_everything_queued_when_it_finishes() {
    let store = Arc::new(MemoryStore::new());
    let (emitter, handle) = EventEmitter::start(store.clone(), "test-instance".into());
    for seq in 1..=1200 {
        handle.record(sample_event(seq), None).await;
    }
    drop(handle);
    emitter.finish(Duration::from_secs(5)).await;
    let stored = store.read("0", None, 5000).await.unwrap().entries;
    let sequences: Vec<u64> = stored
        .iter()
        .flat_map(|entry| decode_events(&entry.data).unwrap())
        .map(|event| event.instance_seq)
        .collect();
    assert_eq!(sequences.len(), 1200);
    assert_eq!(sequences, (1..=1200).collect::<Vec<_>>(), "in order");
}

#[tokio::test]
async fn finishing_with_a_handle_still_held_flushes_what_was_queued() {
    let store = Arc::new(MemoryStore::new());
    let (emitter, handle) = EventEmitter::start(store.clone(), "test-instance".into());
    handle.record(sample_event(1), None).await;
    emitter.finish(Duration::from_millis(50)).await;
    assert_eq!(store.read("0", None, 10).await.unwrap().entries.len(), 1);
    drop(handle);
}

/// Answers after a delay, like a slow model.
struct SlowRuntime {
    delay: Duration,
}

#[async_trait]
impl ModelRuntime for SlowRuntime {
    async fn send(&self, invocation: ModelInvocation) -> Result<UpstreamResponse, RuntimeError> {
        tokio::time::sleep(self.delay).await;
        Ok(UpstreamResponse {
            status: 200,
            headers: header_map([
                ("content-type", "application/json".to_owned()),
                ("x-amzn-requestid", format!("slow-{}", invocation.model_id)),
            ]),
            body: UpstreamBody::Complete(Bytes::from_static(
                br#"{"usage":{"input_tokens":3,"output_tokens":4}}"#,
            )),
            upstream_latency: self.delay,
        })
    }
}

async fn proxy_with(
    store: Arc<MemoryStore>,
    runtime: Arc<dyn ModelRuntime>,
    config: ProxyConfig,
) -> (proxy::server::RunningProxy, String) {
    let token = common::customer_with_token(&store, "slow", 9).await;
    let ports = ProxyPorts {
        registry: store.clone(),
        counters: store.clone(),
        quotas: store.clone(),
        event_appender: store,
        runtime,
    };
    let config = ProxyConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..config
    };
    (start_proxy(config, ports).await.unwrap(), token)
}

/// Every event the proxy wrote to the memory store's log.
async fn stored_events(store: &MemoryStore, most: usize) -> Vec<UsageEvent> {
    store
        .read("0", None, most)
        .await
        .unwrap()
        .entries
        .iter()
        .flat_map(|entry| decode_events(&entry.data).unwrap())
        .collect()
}

/// A client gives up before Bedrock answers (300 ms); the proxy is stopped after `wait`.
/// The call carries on without its client and is metered once, with Bedrock's tokens,
/// before shutdown returns, whether the proxy stops long after or at once.
async fn a_client_gives_up_and_the_proxy_stops(io_threads: usize, wait: Duration) {
    let store = Arc::new(MemoryStore::new());
    let runtime = Arc::new(SlowRuntime {
        delay: Duration::from_millis(300),
    });
    let config = ProxyConfig {
        io_threads,
        ..ProxyConfig::default()
    };
    let (proxy, token) = proxy_with(store.clone(), runtime, config).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    let result = client
        .post(format!("http://{}/prod/bedrock", proxy.local_addr))
        .bearer_auth(&token)
        .body(r#"{"modelId":"m","prompt":"hi"}"#)
        .send()
        .await;
    assert!(result.is_err(), "the client gave up");
    tokio::time::sleep(wait).await;
    proxy.shutdown().await;

    let stored = stored_events(&store, 10).await;
    assert_eq!(
        stored.len(),
        1,
        "exactly one event, written before shutdown returned"
    );
    let event = stored[0].clone();
    assert_eq!(event.outcome, Outcome::ClientAborted);
    assert_eq!(
        (event.input_tokens, event.output_tokens),
        (3, 4),
        "the tokens Bedrock used are billed"
    );
    assert_eq!(
        event
            .upstream_request_id
            .as_ref()
            .map(RequestId::to_text)
            .as_deref(),
        Some("slow-m")
    );
}

#[tokio::test]
async fn a_client_that_hangs_up_mid_call_is_still_metered_as_client_aborted() {
    a_client_gives_up_and_the_proxy_stops(0, Duration::from_millis(500)).await;
}

#[tokio::test]
async fn shutdown_waits_for_a_call_whose_client_left_on_the_shared_runtime() {
    a_client_gives_up_and_the_proxy_stops(0, Duration::ZERO).await;
}

#[tokio::test]
async fn shutdown_waits_for_a_call_whose_client_left_on_io_threads() {
    a_client_gives_up_and_the_proxy_stops(2, Duration::ZERO).await;
}

/// Calls on I/O threads (each its own single-threaded runtime) are answered and metered,
/// across several connections, and shutdown flushes every event.
#[tokio::test]
async fn calls_served_on_io_threads_are_answered_and_metered_once() {
    let store = Arc::new(MemoryStore::new());
    let runtime = Arc::new(SlowRuntime {
        delay: Duration::from_millis(1),
    });
    let config = ProxyConfig {
        io_threads: 3,
        ..ProxyConfig::default()
    };
    let (proxy, token) = proxy_with(store.clone(), runtime, config).await;
    let mut calls = Vec::new();
    for _ in 0..8 {
        // A client per task: eight connections, spread over the threads by the kernel.
        let (address, token) = (proxy.local_addr, token.clone());
        calls.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut statuses = Vec::new();
            for _ in 0..5 {
                let response = client
                    .post(format!("http://{address}/prod/bedrock"))
                    .bearer_auth(&token)
                    .body(r#"{"modelId":"m","prompt":"hi"}"#)
                    .send()
                    .await
                    .unwrap();
                statuses.push(response.status().as_u16());
            }
            statuses
        }));
    }
    for call in calls {
        assert_eq!(call.await.unwrap(), vec![200; 5]);
    }
    proxy.shutdown().await;
    let stored = stored_events(&store, 100).await;
    assert_eq!(stored.len(), 40, "one event per call");
    let ids: std::collections::BTreeSet<_> = stored.iter().map(|event| event.event_id).collect();
    assert_eq!(ids.len(), 40, "no event twice");
    assert!(stored.iter().all(|event| event.outcome == Outcome::Success));
}

/// Connections are spread evenly over the I/O threads whichever thread the kernel wakes
/// to accept them, and a closed connection stops counting.
#[tokio::test]
async fn connections_are_balanced_over_the_io_threads() {
    let store = Arc::new(MemoryStore::new());
    let runtime = Arc::new(SlowRuntime {
        delay: Duration::ZERO,
    });
    let config = ProxyConfig {
        io_threads: 2,
        ..ProxyConfig::default()
    };
    let (proxy, token) = proxy_with(store.clone(), runtime, config).await;
    // A burst of connections at once, as a client pool opens them: one thread's wake-up
    // may accept most of them.
    let calls = (0..32).map(|_| {
        let (address, token) = (proxy.local_addr, token.clone());
        tokio::spawn(async move {
            // One client each: a connection each, kept open after its call.
            let client = reqwest::Client::new();
            let response = client
                .post(format!("http://{address}/prod/bedrock"))
                .bearer_auth(&token)
                .body(r#"{"modelId":"m","prompt":"hi"}"#)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 200);
            client
        })
    });
    let clients = futures::future::join_all(calls).await;
    let open = proxy.connections_by_io_thread();
    assert_eq!(open.iter().sum::<usize>(), 32, "{open:?}");
    assert!(
        open.iter().max().unwrap() - open.iter().min().unwrap() <= 2,
        "connections spread unevenly over the threads: {open:?}"
    );
    let handed_over = proxy
        .samples()
        .into_iter()
        .find(|sample| sample.name == "tollgate_proxy_connections_handed_over_total")
        .expect("the balance's metrics are exported");
    assert!(handed_over.counter);

    drop(clients);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while proxy.connections_by_io_thread() != vec![0, 0] {
        assert!(
            tokio::time::Instant::now() < deadline,
            "closed connections still counted: {:?}",
            proxy.connections_by_io_thread()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    proxy.shutdown().await;
    assert_eq!(
        stored_events(&store, 100).await.len(),
        32,
        "one event per call"
    );
}

#[tokio::test]
async fn slow_headers_and_idle_connections_are_closed() {
    let store = Arc::new(MemoryStore::new());
    let runtime = Arc::new(SlowRuntime {
        delay: Duration::ZERO,
    });
    let config = ProxyConfig {
        header_read_timeout: Duration::from_millis(300),
        ..ProxyConfig::default()
    };
    let (proxy, _token) = proxy_with(store, runtime, config).await;

    let mut slow = tokio::net::TcpStream::connect(proxy.local_addr)
        .await
        .unwrap();
    slow.write_all(b"POST /prod/bedrock HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buffer = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut buffer)).await;
    assert!(
        closed.is_ok(),
        "a client that never finishes its headers is disconnected"
    );

    let mut idle = tokio::net::TcpStream::connect(proxy.local_addr)
        .await
        .unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), idle.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "an idle keep-alive connection is closed");
    proxy.shutdown().await;
}

#[tokio::test]
async fn a_body_that_stops_arriving_gets_408_and_no_event() {
    let store = Arc::new(MemoryStore::new());
    let runtime = Arc::new(SlowRuntime {
        delay: Duration::ZERO,
    });
    let config = ProxyConfig {
        body_read_timeout: Duration::from_millis(200),
        ..ProxyConfig::default()
    };
    let (proxy, token) = proxy_with(store.clone(), runtime, config).await;
    let mut stream = tokio::net::TcpStream::connect(proxy.local_addr)
        .await
        .unwrap();
    let head = format!(
        "POST /prod/bedrock HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"modelId\""
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut response = vec![0u8; 12];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut response))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&response, b"HTTP/1.1 408");
    proxy.shutdown().await;
    assert!(store.read("0", None, 10).await.unwrap().entries.is_empty());
}

#[tokio::test]
async fn every_authenticated_answer_carries_the_tightest_limit() {
    let store = Arc::new(MemoryStore::new());
    let runtime = Arc::new(SlowRuntime {
        delay: Duration::ZERO,
    });
    // The limits change while the proxy runs: read them on every call.
    let config = ProxyConfig {
        auth_cache_ttl: std::time::Duration::ZERO,
        ..ProxyConfig::default()
    };
    let (proxy, token) = proxy_with(store.clone(), runtime, config).await;
    let client = reqwest::Client::new();
    let call = |body: &'static str| {
        client
            .post(format!("http://{}/prod/bedrock", proxy.local_addr))
            .bearer_auth(&token)
            .body(body)
            .send()
    };
    let headers_of = |response: &reqwest::Response| {
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|value| value.to_str().unwrap().to_owned())
        };
        (
            header("ratelimit-limit"),
            header("ratelimit-remaining"),
            header("x-tollgate-ratelimit-name"),
        )
    };

    // Without limits, no RateLimit headers.
    let unlimited = call(r#"{"modelId":"m"}"#).await.unwrap();
    assert_eq!(unlimited.status(), 200);
    assert_eq!(headers_of(&unlimited), (None, None, None));

    let limits = Limits {
        daily_request_limit: Some(3),
        monthly_request_limit: Some(1_000),
        allowed_models: Some(vec!["m".into()]),
        ..Limits::default()
    };
    let audit = AuditEntry {
        audit_id: uuid::Uuid::now_v7(),
        at: Utc::now(),
        actor: "test".into(),
        action: "limits".into(),
        customer_id: "cust-slow".into(),
        before: serde_json::Value::Null,
        after: serde_json::Value::Null,
    };
    store
        .set_limits("cust-slow", &limits, &audit)
        .await
        .unwrap();
    let daily = |remaining: &str| {
        (
            Some("3".to_owned()),
            Some(remaining.to_owned()),
            Some("daily_requests".to_owned()),
        )
    };
    let first = call(r#"{"modelId":"m"}"#).await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(headers_of(&first), daily("2"));
    // Answers before admission carry the limit as it stands, and count nothing.
    let not_allowed = call(r#"{"modelId":"other"}"#).await.unwrap();
    assert_eq!(not_allowed.status(), 403);
    assert_eq!(headers_of(&not_allowed), daily("2"));
    let malformed = call("not json").await.unwrap();
    assert_eq!(malformed.status(), 400);
    assert_eq!(headers_of(&malformed), daily("2"));
    assert_eq!(
        headers_of(&call(r#"{"modelId":"m"}"#).await.unwrap()),
        daily("1")
    );
    assert_eq!(
        headers_of(&call(r#"{"modelId":"m"}"#).await.unwrap()),
        daily("0")
    );
    let refused = call(r#"{"modelId":"m"}"#).await.unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(headers_of(&refused), daily("0"));
    assert!(refused.headers().contains_key("retry-after"));
    assert!(refused.headers().contains_key("ratelimit-reset"));
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["limit"], "daily_requests");
    assert_eq!(body["limit_value"], 3);
    proxy.shutdown().await;
}
