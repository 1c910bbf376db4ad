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
    // Every admitted call carries the limit's state as its proxy sees it (the store's level
    // less the quota this proxy holds unspent): below the limit, reaching 0.
    let remaining: BTreeSet<u64> = seen
        .iter()
        .filter(|call| call.status == 200)
        .map(|call| {
            call.remaining
                .expect("RateLimit-Remaining on every admitted call")
        })
        .collect();
    assert!(remaining.contains(&0), "{remaining:?}");
    assert!(
        remaining.iter().all(|left| *left < LIMIT as u64),
        "{remaining:?}"
    );
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

/// A customer at 15 of a daily limit of 15, the counters caught up, and a proxy that has
/// just restarted: 8 concurrent calls arrive during its first counter read. They wait for
/// it instead of deciding on a count of zero, and none is admitted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_right_after_a_restart_admits_nothing_over_the_limit() {
    const LIMIT: usize = 15;
    const BURST: usize = 8;
    let tollgate = Tollgate::new();
    let fake = FakeBedrock::start().await;
    let (customer_id, token) = create(&tollgate, "Restart Burst", &["--daily-limit", "15"]);
    let server = tollgate.serve_against(&fake, None);
    let statuses = server.spec_calls(&token, LIMIT).await;
    assert!(statuses.iter().all(|status| *status == 200), "{statuses:?}");
    tollgate
        .wait_for_usage(&customer_id, |totals| totals["requests"] == LIMIT as u64)
        .await;
    assert!(server.terminate().success());

    let server = tollgate.serve_against(&fake, None);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(BURST)
        .build()
        .unwrap();
    let barrier = Arc::new(Barrier::new(BURST));
    let calls: Vec<_> = (0..BURST)
        .map(|index| {
            let (client, barrier) = (client.clone(), Arc::clone(&barrier));
            let (url, token) = (format!("{}/prod/bedrock", server.base_url), token.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                client
                    .post(url)
                    .bearer_auth(token)
                    .json(&spec_body(&format!("after restart {index}")))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for call in calls {
        statuses.push(call.await.unwrap());
    }
    assert_eq!(
        statuses,
        vec![429; BURST],
        "nothing admitted over the limit"
    );
    assert!(server.terminate().success());
    assert_eq!(fake.answered().len(), LIMIT);
    let totals = tollgate
        .wait_for_usage(&customer_id, |totals| totals["rejected"] == BURST as u64)
        .await;
    assert_eq!(totals["requests"], LIMIT as u64);
}

/// Three proxy processes on one embedded store lease blocks of one customer's strict daily
/// limit: none passes it, what they hold unspent at the end is at most one block (blocks
/// shrink to one call near the cap), and what they did not spend goes back at shutdown,
/// where a new proxy can use it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_proxies_leasing_one_strict_limit_never_overshoot() {
    use store::Quotas;
    const LIMIT: usize = 300;
    let tollgate = Tollgate::new();
    let fake = FakeBedrock::start().await;
    fake.set_behavior(Behavior::Slow(Duration::from_millis(5)));
    let flags = [
        "--upstream",
        "bedrock",
        "--bedrock-endpoint-url",
        &fake.endpoint_url(),
    ];
    let (customer_id, token) = create(
        &tollgate,
        "Strict Leases",
        &["--daily-limit", "300", "--enforcement", "strict"],
    );
    let server = tollgate.serve_against(&fake, None);
    let second = tollgate.standalone_proxy(&flags);
    let third = tollgate.standalone_proxy(&flags);
    // 64 clients × 3 calls, twice: 384 calls for 300.
    let mut seen = burst(&endpoints(&[&server, &second, &third]), &token, 32).await;
    seen.extend(burst(&endpoints(&[&server, &second, &third]), &token, 32).await);
    let served = admitted(&seen);
    assert!(
        served <= LIMIT,
        "no overshoot: {served} admitted of {LIMIT}"
    );
    assert!(
        seen.iter()
            .filter(|call| call.status != 200)
            .all(|call| call.status == 429 && call.body["limit"] == "daily_requests")
    );
    let quotas =
        store::embedded::EmbeddedStore::open(&tollgate.data_dir.join("tollgate.db")).unwrap();
    let day = format!("day:{}", chrono::Utc::now().date_naive());
    let charged = quotas
        .levels(&customer_id, std::slice::from_ref(&day))
        .await
        .unwrap()[0]
        .requests;
    assert!(charged <= LIMIT as u64);
    let unspent = charged - served as u64;
    assert!(
        unspent <= 3 && LIMIT - served <= 3,
        "at most a block of one call per proxy left unspent: {served} admitted, {charged} charged"
    );
    println!(
        "strict leases over 3 proxies, limit {LIMIT}: {served} admitted, {charged} charged in the store"
    );

    // A clean shutdown gives back what each proxy held: the store counts the calls admitted,
    // and a new proxy admits exactly the rest.
    for proxy in [server, second, third] {
        assert!(proxy.terminate().success());
    }
    let after = quotas
        .levels(&customer_id, std::slice::from_ref(&day))
        .await
        .unwrap()[0]
        .requests;
    assert_eq!(after, served as u64);
    let server = tollgate.serve_against(&fake, None);
    let statuses = server.spec_calls(&token, LIMIT - served + 2).await;
    assert_eq!(
        statuses.iter().filter(|status| **status == 200).count(),
        LIMIT - served
    );
    assert!(server.terminate().success());
}
