//! Limits under concurrency, with the real binaries: 64 clients fire at once at a customer's
//! limit edge, spread over two proxy processes sharing one store.
//!
//! - Strict mode never admits past a cap, on the embedded backend and on DynamoDB: the
//!   admitted count equals the limit exactly, and a token budget is never exceeded.
//! - Eventual mode is measured: one proxy is exact; two proxies overshoot by at most what
//!   the other proxy admitted before the counters caught up. The figure is printed and
//!   recorded in `docs/limits.md`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tests::aws_env::create_resources;
use tests::fake_bedrock::{Behavior, FakeBedrock};
use tests::harness::{ServeProcess, Tollgate, spec_body};
use tokio::sync::Barrier;

const CLIENTS: usize = 64;
const CALLS_PER_CLIENT: usize = 3;

/// What one call saw.
#[derive(Debug)]
struct Seen {
    status: u16,
    remaining: Option<u64>,
    limit: Option<u64>,
    body: serde_json::Value,
}

/// Fires `CLIENTS` clients at once, each making `CALLS_PER_CLIENT` calls, alternating
/// between the proxies.
async fn burst(endpoints: &[String], token: &str, max_tokens: u64) -> Vec<Seen> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()
        .unwrap();
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|index| {
            let client = client.clone();
            let barrier = Arc::clone(&barrier);
            let endpoint = endpoints[index % endpoints.len()].clone();
            let token = token.to_owned();
            tokio::spawn(async move {
                barrier.wait().await;
                let mut seen = Vec::new();
                for call in 0..CALLS_PER_CLIENT {
                    let mut body = spec_body(&format!("client {index} call {call}"));
                    body["max_tokens"] = max_tokens.into();
                    let response = client
                        .post(&endpoint)
                        .bearer_auth(&token)
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                    let header = |name: &str| {
                        response
                            .headers()
                            .get(name)
                            .and_then(|value| value.to_str().ok())
                            .and_then(|value| value.parse::<u64>().ok())
                    };
                    let status = response.status().as_u16();
                    let remaining = header("ratelimit-remaining");
                    let limit = header("ratelimit-limit");
                    let body = response.json().await.unwrap_or(serde_json::Value::Null);
                    seen.push(Seen {
                        status,
                        remaining,
                        limit,
                        body,
                    });
                }
                seen
            })
        })
        .collect();
    let mut seen = Vec::new();
    for task in tasks {
        seen.extend(task.await.unwrap());
    }
    seen
}

fn admitted(seen: &[Seen]) -> usize {
    seen.iter().filter(|call| call.status == 200).count()
}

fn create(tollgate: &Tollgate, name: &str, limit_flags: &[&str]) -> (String, String) {
    let email = format!("{}@example.com", name.to_lowercase().replace(' ', "-"));
    let mut arguments = vec!["create", "--name", name, "--email", &email];
    arguments.extend(limit_flags);
    let created = tollgate.run_json(&arguments);
    (
        created["customer_id"].as_str().unwrap().to_owned(),
        created["token"].as_str().unwrap().to_owned(),
    )
}

fn endpoints(proxies: &[&ServeProcess]) -> Vec<String> {
    proxies
        .iter()
        .map(|proxy| format!("{}/prod/bedrock", proxy.base_url))
        .collect()
}

/// Waits until the counters show `requests` admitted calls, and returns today's totals.
async fn settled_usage(
    tollgate: &Tollgate,
    customer_id: &str,
    requests: usize,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let totals = tollgate.usage_today(customer_id)["totals"].clone();
        if totals["requests"] == requests as u64
            && totals["requests"].as_u64().unwrap() + totals["rejected"].as_u64().unwrap()
                == (CLIENTS * CALLS_PER_CLIENT) as u64
        {
            return totals;
        }
        assert!(
            Instant::now() < deadline,
            "counters never showed {requests} admitted calls: {totals}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The strict-mode assertions, on whichever backend the proxies use.
async fn strict_mode_holds(tollgate: &Tollgate, proxies: &[&ServeProcess], fake: &FakeBedrock) {
    const LIMIT: usize = 50;
    let (customer_id, token) = create(
        tollgate,
        "Strict Requests",
        &["--daily-limit", "50", "--enforcement", "strict"],
    );
    let seen = burst(&endpoints(proxies), &token, 32).await;
    assert_eq!(
        admitted(&seen),
        LIMIT,
        "strict mode admits exactly the limit under {CLIENTS} concurrent clients"
    );
    // Every admitted call saw a distinct remaining count: the reservations serialized.
    let remaining: BTreeSet<u64> = seen
        .iter()
        .filter(|call| call.status == 200)
        .map(|call| {
            call.remaining
                .expect("RateLimit-Remaining on every admitted call")
        })
        .collect();
    assert_eq!(remaining, (0..LIMIT as u64).collect());
    for refused in seen.iter().filter(|call| call.status != 200) {
        assert_eq!(refused.status, 429, "{:?}", refused.body);
        assert_eq!(refused.body["limit"], "daily_requests");
        assert_eq!(refused.body["limit_value"], LIMIT as u64);
        assert_eq!(refused.remaining, Some(0));
        assert_eq!(refused.limit, Some(LIMIT as u64));
        assert!(
            refused.body["message"]
                .as_str()
                .unwrap()
                .contains("daily request limit reached"),
            "{}",
            refused.body
        );
    }
    let totals = settled_usage(tollgate, &customer_id, LIMIT).await;
    assert_eq!(
        totals["rejected"],
        (CLIENTS * CALLS_PER_CLIENT - LIMIT) as u64
    );

    // A token budget: each call reserves max_tokens plus an input estimate up front, so the
    // calls admitted never use more than the budget, however many race for it.
    const BUDGET: u64 = 3_000;
    let before = fake.answered().len();
    let (budget_customer, budget_token) = create(
        tollgate,
        "Strict Tokens",
        &["--daily-token-limit", "3000", "--enforcement", "strict"],
    );
    let seen = burst(&endpoints(proxies), &budget_token, 16).await;
    let served = admitted(&seen);
    assert!(
        served > 0 && served < CLIENTS * CALLS_PER_CLIENT,
        "{served}"
    );
    assert!(
        seen.iter()
            .filter(|call| call.status == 429)
            .all(|call| call.body["limit"] == "daily_tokens")
    );
    let totals = settled_usage(tollgate, &budget_customer, served).await;
    let used = totals["input_tokens"].as_u64().unwrap() + totals["output_tokens"].as_u64().unwrap();
    assert!(used <= BUDGET, "{used} tokens used of a {BUDGET} budget");
    let answered: u64 = fake.answered()[before..]
        .iter()
        .map(|call| call.input_tokens + call.output_tokens)
        .sum();
    assert_eq!(used, answered, "the counters hold Bedrock's token counts");
    println!(
        "strict token budget: {served} calls admitted, {used} of {BUDGET} tokens used (settled from reservations)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_limits_never_overshoot_on_the_embedded_backend() {
    let tollgate = Tollgate::new();
    let fake = FakeBedrock::start().await;
    fake.set_behavior(Behavior::Slow(Duration::from_millis(20)));
    let server = tollgate.serve_against(&fake, None);
    let second = tollgate.standalone_proxy(&[
        "--upstream",
        "bedrock",
        "--bedrock-endpoint-url",
        &fake.endpoint_url(),
    ]);
    strict_mode_holds(&tollgate, &[&server, &second], &fake).await;
    assert!(second.terminate().success());
    assert!(server.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_limits_never_overshoot_on_dynamodb() {
    let tollgate = Tollgate::on_aws(create_resources(1).await);
    let fake = FakeBedrock::start().await;
    fake.set_behavior(Behavior::Slow(Duration::from_millis(20)));
    let flags = [
        "--upstream",
        "bedrock",
        "--bedrock-endpoint-url",
        &fake.endpoint_url(),
    ];
    let first = tollgate.standalone_proxy(&flags);
    let second = tollgate.standalone_proxy(&flags);
    let poller = tollgate.poller();
    strict_mode_holds(&tollgate, &[&first, &second], &fake).await;
    assert!(first.terminate().success());
    assert!(second.terminate().success());
    assert!(poller.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventual_overshoot_is_measured_at_the_limit_edge() {
    const LIMIT: usize = 50;
    let tollgate = Tollgate::new();
    let fake = FakeBedrock::start().await;
    fake.set_behavior(Behavior::Slow(Duration::from_millis(20)));
    let server = tollgate.serve_against(&fake, None);
    let second = tollgate.standalone_proxy(&[
        "--upstream",
        "bedrock",
        "--bedrock-endpoint-url",
        &fake.endpoint_url(),
    ]);

    // One proxy: its own tally is exact, whatever the consumer's lag.
    let (single_customer, single_token) =
        create(&tollgate, "Eventual One", &["--daily-limit", "50"]);
    let seen = burst(&endpoints(&[&server]), &single_token, 32).await;
    assert_eq!(admitted(&seen), LIMIT, "a single proxy never overshoots");
    settled_usage(&tollgate, &single_customer, LIMIT).await;

    // Two proxies: each adds what the counters show to its own count. The overshoot is what
    // one proxy admitted that the other had not yet seen counted: at most one limit.
    let (customer_id, token) = create(&tollgate, "Eventual Two", &["--daily-limit", "50"]);
    let seen = burst(&endpoints(&[&server, &second]), &token, 32).await;
    let served = admitted(&seen);
    println!(
        "eventual mode, {CLIENTS} clients over 2 proxies, limit {LIMIT}: {served} admitted, overshoot {}",
        served.saturating_sub(LIMIT)
    );
    assert!(
        (LIMIT..=2 * LIMIT).contains(&served),
        "eventual mode admits at least the limit and at most one limit per proxy: {served}"
    );
    settled_usage(&tollgate, &customer_id, served).await;

    // Once the counters have caught up, both proxies refuse.
    for proxy in [&server, &second] {
        let response = reqwest::Client::new()
            .post(format!("{}/prod/bedrock", proxy.base_url))
            .bearer_auth(&token)
            .json(&spec_body("after the burst"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 429);
    }
    assert!(second.terminate().success());
    assert!(server.terminate().success());
}
