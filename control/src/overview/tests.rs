//! The overview's figures against sums worked by hand.

use super::*;
use crate::customers::{NewCustomer, create_customer};
use crate::plans::{PlanChoice, assign_plan, parse_plan, store_plan};
use crate::test_support::operator;
use schemas::Outcome;
use store::contract::{event_on, sourced_at};
use store::memory::MemoryStore;
use store::{Counters, SourcedEvent};

const PLAN: &str = "schema_version = 1\nid = \"cents\"\nversion = 1\nname = \"Cents\"\ncurrency = \"USD\"\n\n[[charges]]\ntype = \"per_request\"\nunit_price = \"0.01\"\ncount = \"success\"\n";

const PRICES: &str = "schema_version = 1\ncurrency = \"USD\"\nas_of = \"2026-11-01\"\n\n[[prices]]\npattern = \"model-a\"\ninput_per_million = \"1.00\"\noutput_per_million = \"5.00\"\nsource = \"https://aws.amazon.com/bedrock/pricing/\"\n";

fn day(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

fn usd(cents: i64) -> Money {
    Money {
        amount: Decimal::new(cents, 2),
        currency: "USD".into(),
    }
}

/// A and D have the plan, B has none, C the plan and no usage. Returns the ids.
async fn business(store: &MemoryStore) -> Vec<String> {
    let mut ids = Vec::new();
    for name in ["A", "B", "C", "D"] {
        let issued = create_customer(
            store,
            &operator(),
            NewCustomer::named(name, &format!("{name}@example.com")),
        )
        .await
        .unwrap();
        ids.push(issued.customer_id);
    }
    store_plan(store, &operator(), &parse_plan(PLAN, "cents.toml").unwrap())
        .await
        .unwrap();
    for planned in [&ids[0], &ids[2], &ids[3]] {
        let choice = PlanChoice {
            customer_id: planned.clone(),
            plan_id: "cents".into(),
            plan_version: None,
            effective_from: day("2026-10-01"),
        };
        assign_plan(store, store, &operator(), &choice)
            .await
            .unwrap();
    }
    let (yesterday, today) = (day("2026-11-14"), day("2026-11-15"));
    let a_call = |on| event_on(&ids[0], on, "model-a", Outcome::Success, 100_000, 20_000);
    let mut events = vec![a_call(yesterday), a_call(yesterday), a_call(yesterday)];
    events.extend([a_call(today), a_call(today)]);
    events.push(event_on(
        &ids[0],
        today,
        "model-a",
        Outcome::UpstreamError,
        0,
        0,
    ));
    events.push(event_on(
        &ids[1],
        today,
        "model-a",
        Outcome::Success,
        500_000,
        0,
    ));
    events.push(event_on(
        &ids[1],
        today,
        "model-a",
        Outcome::RejectedLimit,
        0,
        0,
    ));
    events.push(event_on(
        &ids[3],
        day("2026-10-31"),
        "model-a",
        Outcome::Success,
        9,
        9,
    ));
    let sourced: Vec<SourcedEvent> = events
        .into_iter()
        .enumerate()
        .map(|(index, event)| sourced_at("0", index as u64 + 1, event))
        .collect();
    store.apply(&sourced).await.unwrap();
    ids
}

fn now() -> DateTime<Utc> {
    day("2026-11-15").and_hms_opt(12, 30, 0).unwrap().and_utc()
}

async fn overview_of(store: &MemoryStore, prices: Option<&ModelPriceTable>) -> Overview {
    let sources = MarginSources {
        registry: store,
        plans: store,
        counters: store,
        watermarks: store,
    };
    overview(&sources, prices, now()).await.unwrap()
}

#[tokio::test]
async fn month_to_date_figures_worked_by_hand() {
    let store = MemoryStore::new();
    let ids = business(&store).await;
    let prices = ModelPriceTable::from_toml(PRICES).unwrap();
    let overview = overview_of(&store, Some(&prices)).await;
    assert_eq!(overview.month_start, day("2026-11-01"));
    let month = &overview.month_to_date;
    // A: 5 successes and 1 failure, B: 1 success and 1 refusal; D's call was in October.
    assert_eq!((month.calls, month.errors, month.rejected), (7, 1, 1));
    // A: 5 × (100,000 + 20,000); B: 500,000.
    assert_eq!(month.tokens, 1_100_000);
    assert_eq!(month.error_rate_percent, Some(Decimal::new(143, 1)), "1/7");
    assert_eq!(month.active_customers, 2);
    // A's plan bills successes only: 5 × $0.01. B has no plan.
    assert_eq!(month.revenue, [usd(5)]);
    // A: 500,000 in × $1 + 100,000 out × $5 per million = $1.00; B: 500,000 in = $0.50.
    assert_eq!(month.cost, Some(usd(150)));
    assert_eq!(month.gross_margin, Some(usd(-145)));
    assert!(month.unpriced_models.is_empty());
    // Rows: A and B, who used the month; C (idle) and D (October only) are left out.
    let rows: Vec<&str> = overview
        .customers
        .iter()
        .map(|row| row.customer_id.as_str())
        .collect();
    assert_eq!(rows, [ids[0].as_str(), ids[1].as_str()]);
    let (a, b) = (&overview.customers[0], &overview.customers[1]);
    assert_eq!((a.calls, a.tokens, a.errors), (6, 600_000, 1));
    assert_eq!(
        (a.revenue.clone(), a.cost.clone(), a.gross_margin.clone()),
        (Some(usd(5)), Some(usd(100)), Some(usd(-95)))
    );
    assert_eq!((b.calls, b.rejected), (1, 1));
    assert_eq!(
        (b.revenue.clone(), b.cost.clone(), b.gross_margin.clone()),
        (None, Some(usd(50)), None)
    );
}

#[tokio::test]
async fn todays_figures_are_what_today_added_worked_by_hand() {
    let store = MemoryStore::new();
    business(&store).await;
    let prices = ModelPriceTable::from_toml(PRICES).unwrap();
    let overview = overview_of(&store, Some(&prices)).await;
    let today = &overview.today_figures;
    // A: 2 successes and 1 failure; B: 1 success and 1 refusal.
    assert_eq!((today.calls, today.errors, today.rejected), (4, 1, 1));
    assert_eq!(today.tokens, 2 * 120_000 + 500_000);
    assert_eq!(today.error_rate_percent, Some(Decimal::new(250, 1)));
    assert_eq!(today.active_customers, 2);
    // The month to date ($0.05) less the month through yesterday (3 × $0.01).
    assert_eq!(today.revenue, [usd(2)]);
    // A: 200,000 in = $0.20, 40,000 out = $0.20; B: 500,000 in = $0.50.
    assert_eq!(today.cost, Some(usd(90)));
    assert_eq!(today.gross_margin, Some(usd(-88)));
}

#[tokio::test]
async fn without_prices_or_with_unpriced_models_there_is_no_margin() {
    let store = MemoryStore::new();
    let ids = business(&store).await;
    let without = overview_of(&store, None).await;
    assert!(!without.prices_configured);
    assert_eq!(without.month_to_date.cost, None, "absent, never zero");
    assert_eq!(without.month_to_date.gross_margin, None);
    assert!(
        without
            .month_to_date
            .margin_note
            .as_deref()
            .unwrap()
            .contains("--model-prices")
    );
    assert_eq!(
        without.month_to_date.revenue,
        [usd(5)],
        "revenue needs no prices"
    );
    let unpriced = event_on(
        &ids[1],
        day("2026-11-15"),
        "model-z",
        Outcome::Success,
        7,
        7,
    );
    store
        .apply(&[sourced_at("0", 100, unpriced)])
        .await
        .unwrap();
    let prices = ModelPriceTable::from_toml(PRICES).unwrap();
    let overview = overview_of(&store, Some(&prices)).await;
    let month = &overview.month_to_date;
    assert_eq!(month.unpriced_models, ["model-z"]);
    assert_eq!(month.cost, Some(usd(150)), "the priced models' cost");
    assert_eq!(month.gross_margin, None, "never as if model-z were free");
    assert!(month.margin_note.as_deref().unwrap().contains("model-z"));
}

#[tokio::test]
async fn a_plan_that_cannot_price_the_usage_is_named_and_the_rest_still_shows() {
    let store = MemoryStore::new();
    let ids = business(&store).await;
    let narrow = "schema_version = 1\nid = \"narrow\"\nversion = 1\nname = \"Narrow\"\ncurrency = \"USD\"\n\n[[charges]]\ntype = \"per_token\"\n\n[[charges.models]]\npattern = \"model-x\"\ninput_per_million = \"1.00\"\noutput_per_million = \"1.00\"\n";
    store_plan(
        &store,
        &operator(),
        &parse_plan(narrow, "narrow.toml").unwrap(),
    )
    .await
    .unwrap();
    let choice = PlanChoice {
        customer_id: ids[1].clone(),
        plan_id: "narrow".into(),
        plan_version: None,
        effective_from: day("2026-11-01"),
    };
    assign_plan(&store, &store, &operator(), &choice)
        .await
        .unwrap();
    let prices = ModelPriceTable::from_toml(PRICES).unwrap();
    let overview = overview_of(&store, Some(&prices)).await;
    let month = &overview.month_to_date;
    assert_eq!(month.revenue, [usd(5)], "A's revenue still shows");
    assert_eq!(month.revenue_errors.len(), 1);
    assert!(
        month.revenue_errors[0].contains(&ids[1]),
        "{:?}",
        month.revenue_errors
    );
    assert!(month.revenue_errors[0].contains("model-a"));
    assert_eq!(month.gross_margin, None, "not stated without B's revenue");
    assert_eq!(month.cost, Some(usd(150)));
    let b = &overview.customers[1];
    assert_eq!(b.revenue, None);
    assert!(b.revenue_error.is_some());
}
