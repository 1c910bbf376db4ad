//! Proxy benchmark: requests per second and added latency of Tollgate in front of the
//! wire-level fake Bedrock, against calling the fake directly with the same AWS SDK.
//!
//! Run it with `bench/proxy.sh` (it sets dummy AWS credentials and builds in release mode).
//! Bounded: `--requests` calls per path, `--concurrency` at a time, all on 127.0.0.1.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr
)]

/// mimalloc rather than the system allocator: the consumer allocates and frees a few
/// strings per event, and glibc's malloc was a sixth of its time (BENCHMARKS.md, issue 17).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{SubsecRound, Utc};
use metering::{ConsumerSettings, MeteringConsumer};
use proxy::config::ProxyConfig;
use proxy::server::{ProxyPorts, start_proxy};
use proxy::upstream::{BedrockRuntime, BedrockSettings, ModelInvocation, ModelRuntime};
use schemas::token::format_generated_token;
use schemas::{ApiKey, AuditEntry, Customer, CustomerStatus, KeyStatus, Limits};
use store::embedded::EmbeddedStore;
use store::{Counters, Registry};
use tests::fake_bedrock::FakeBedrock;
use tests::harness::spec_body;

struct Figures {
    label: &'static str,
    requests: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Figures {
    fn percentile(&self, fraction: f64) -> Duration {
        let index = ((self.latencies.len() as f64 - 1.0) * fraction).round() as usize;
        self.latencies[index.min(self.latencies.len() - 1)]
    }

    fn print(&self) {
        println!(
            "{:<44} {:>7} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            self.label,
            self.requests,
            self.requests as f64 / self.elapsed.as_secs_f64(),
            self.percentile(0.50).as_secs_f64() * 1000.0,
            self.percentile(0.90).as_secs_f64() * 1000.0,
            self.percentile(0.99).as_secs_f64() * 1000.0,
            self.latencies.last().unwrap().as_secs_f64() * 1000.0,
        );
    }
}

async fn measure<F, Fut>(
    label: &'static str,
    requests: usize,
    concurrency: usize,
    call: F,
) -> Figures
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let call = Arc::new(call);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let call = Arc::clone(&call);
            let next = Arc::clone(&next);
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while next.fetch_add(1, Ordering::Relaxed) < requests {
                    let begun = Instant::now();
                    call().await;
                    latencies.push(begun.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(requests);
    for worker in workers {
        latencies.extend(worker.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    Figures {
        label,
        requests,
        elapsed,
        latencies,
    }
}

fn argument(name: &str, default: usize) -> usize {
    let arguments: Vec<String> = std::env::args().collect();
    arguments
        .iter()
        .position(|argument| argument == name)
        .and_then(|index| arguments.get(index + 1))
        .map(|value| {
            value
                .parse()
                .unwrap_or_else(|_| panic!("{name} takes a whole number"))
        })
        .unwrap_or(default)
}

#[tokio::main]
#[allow(clippy::too_many_lines)] // the benchmark script, step by step
async fn main() {
    for variable in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"] {
        if std::env::var(variable).is_err() {
            eprintln!(
                "{variable} is not set; run this benchmark through bench/proxy.sh, which sets dummy credentials"
            );
            std::process::exit(2);
        }
    }
    let arguments: Vec<String> = std::env::args().collect();
    let strict = match arguments
        .iter()
        .position(|argument| argument == "--limit-mode")
        .and_then(|index| arguments.get(index + 1))
        .map(String::as_str)
    {
        None | Some("eventual") => false,
        Some("strict") => true,
        Some(other) => {
            eprintln!("--limit-mode takes eventual or strict, not {other:?}");
            std::process::exit(2);
        }
    };
    let durable = !arguments
        .iter()
        .any(|argument| argument == "--durable-events=false");
    let requests = argument("--requests", 5000);
    let concurrency = argument("--concurrency", 32).max(1);
    let fake = FakeBedrock::start().await;
    let settings = BedrockSettings {
        region: Some("us-east-1".into()),
        endpoint_url: Some(fake.endpoint_url()),
        timeout: Duration::from_secs(30),
        ..BedrockSettings::default()
    };
    let model_body = {
        let mut body = spec_body("What is the capital of France?");
        let model_id = body.as_object_mut().unwrap().remove("modelId").unwrap();
        (
            model_id.as_str().unwrap().to_owned(),
            Bytes::from(body.to_string()),
        )
    };

    // Baseline: the same SDK client calling the fake directly.
    let direct_runtime = Arc::new(BedrockRuntime::connect(&settings).await.unwrap());
    let (model_id, body) = model_body.clone();
    let direct = measure(
        "direct: SigV4 -> fake bedrock",
        requests,
        concurrency,
        move || {
            let runtime = Arc::clone(&direct_runtime);
            let invocation = ModelInvocation {
                model_id: model_id.clone(),
                body: body.clone(),
                operation: schemas::Operation::Invoke,
                headers: proxy::upstream::json_headers(),
            };
            async move {
                let answer = runtime.send(invocation).await.unwrap();
                assert_eq!(answer.status, 200);
            }
        },
    )
    .await;

    // Through Tollgate on the embedded store, with the metering consumer running alongside.
    let directory = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(&directory.path().join("bench.db")).unwrap());
    let objects = store::objects::local_object_store(&directory.path().join("data")).unwrap();
    let token = format_generated_token(&[3u8; 32]);
    let customer = Customer {
        customer_id: "bench-customer".into(),
        name: "Bench".into(),
        email: "bench@example.com".into(),
        status: CustomerStatus::Active,
        created_at: Utc::now().trunc_subsecs(3),
        // Limits that never refuse, so every call pays for admission: in strict mode a
        // reservation of a request and tokens, then a settlement.
        limits: Limits {
            daily_request_limit: Some(u64::MAX / 4),
            daily_token_limit: Some(u64::MAX / 4),
            enforcement: Some(if strict {
                schemas::EnforcementMode::Strict
            } else {
                schemas::EnforcementMode::Eventual
            }),
            ..Limits::default()
        },
    };
    let key = ApiKey {
        key_id: "key_bench".into(),
        customer_id: customer.customer_id.clone(),
        token_hash: token.hash(),
        status: KeyStatus::Active,
        created_at: Utc::now().trunc_subsecs(3),
        expires_at: None,
        last_used_at: None,
    };
    let audit = AuditEntry {
        audit_id: uuid::Uuid::now_v7(),
        at: Utc::now().trunc_subsecs(3),
        actor: "bench-proxy".into(),
        action: "create".into(),
        customer_id: customer.customer_id.clone(),
        before: serde_json::Value::Null,
        after: serde_json::Value::Null,
    };
    store
        .create_customer(&customer, &key, &audit)
        .await
        .unwrap();
    let proxy = start_proxy(
        ProxyConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            durable_events: durable,
            ..ProxyConfig::default()
        },
        ProxyPorts {
            registry: store.clone(),
            counters: store.clone(),
            quotas: store.clone(),
            event_appender: store.clone(),
            runtime: Arc::new(BedrockRuntime::connect(&settings).await.unwrap()),
        },
    )
    .await
    .unwrap();
    let consumer = Arc::new(MeteringConsumer::new(
        store.clone(),
        store.clone(),
        store.clone(),
        objects,
        ConsumerSettings::default(),
    ));
    let (stop_consumer, consumer_stopped) = tokio::sync::oneshot::channel::<()>();
    let consumer_task = {
        let consumer = Arc::clone(&consumer);
        tokio::spawn(async move {
            consumer
                .run_until(async {
                    let _ = consumer_stopped.await;
                })
                .await;
        })
    };

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let endpoint = format!("http://{}/prod/bedrock", proxy.local_addr);
    let spec_payload = Bytes::from(spec_body("What is the capital of France?").to_string());
    let secret = token.expose().to_owned();
    let proxied = measure(
        match (strict, durable) {
            (true, false) => "tollgate (strict): client -> proxy",
            (false, false) => "tollgate (eventual): client -> proxy",
            (true, true) => "tollgate (strict, durable): client -> proxy",
            (false, true) => "tollgate (durable): client -> proxy",
        },
        requests,
        concurrency,
        move || {
            let request = client
                .post(&endpoint)
                .bearer_auth(&secret)
                .header("content-type", "application/json")
                .body(spec_payload.clone());
            async move {
                let response = request.send().await.unwrap();
                assert_eq!(response.status(), 200);
                response.bytes().await.unwrap();
            }
        },
    )
    .await;

    proxy.shutdown().await;
    let _ = stop_consumer.send(());
    consumer_task.await.unwrap();
    let today = Utc::now().date_naive();
    let metered: u64 = store
        .read_daily("bench-customer", today, today)
        .await
        .unwrap()
        .iter()
        .map(|cell| cell.counts.requests)
        .sum();

    println!(
        "proxy benchmark: {requests} requests per path, concurrency {concurrency}, 127.0.0.1, release build"
    );
    println!(
        "{:<44} {:>7} {:>10} {:>9} {:>9} {:>9} {:>9}",
        "path", "calls", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    direct.print();
    proxied.print();
    println!(
        "added latency: p50 {:.2} ms, p99 {:.2} ms; metered {metered} of {requests} proxied calls",
        (proxied.percentile(0.50).as_secs_f64() - direct.percentile(0.50).as_secs_f64()) * 1000.0,
        (proxied.percentile(0.99).as_secs_f64() - direct.percentile(0.99).as_secs_f64()) * 1000.0,
    );
    assert_eq!(
        metered, requests as u64,
        "every proxied call was metered exactly once"
    );
}
