//! Table-driven tests per charge model, with the expected amounts worked out by hand in
//! the comments, and property tests of the tier arithmetic.

use proptest::prelude::*;
use rust_decimal::Decimal;
use schemas::UsageCounts;
use schemas::plan::{BillableCalls, Charge, Metric, ModelPrice, Plan, Tier};

use super::*;

fn d(text: &str) -> Decimal {
    text.parse().unwrap()
}

fn plan(charges: Vec<Charge>) -> Plan {
    Plan {
        schema_version: 1,
        id: "test".into(),
        version: 1,
        name: "Test".into(),
        currency: "USD".into(),
        minor_units: 2,
        charges,
    }
}

fn usage(models: &[(&str, u64, u64, u64)]) -> PeriodUsage {
    PeriodUsage {
        by_model: models
            .iter()
            .map(|(model, requests, input, output)| {
                (
                    (*model).to_owned(),
                    UsageCounts {
                        requests: *requests,
                        input_tokens: *input,
                        output_tokens: *output,
                        ..UsageCounts::default()
                    },
                )
            })
            .collect(),
    }
}

fn tiers(bounds: &[(Option<u64>, &str)]) -> Vec<Tier> {
    bounds
        .iter()
        .map(|(up_to, price)| Tier {
            up_to: *up_to,
            unit_price: d(price),
        })
        .collect()
}

fn total(charges: Vec<Charge>, used: &PeriodUsage) -> Decimal {
    rate(&plan(charges), used).unwrap().total
}

#[test]
fn per_request() {
    // 12,345 requests at $0.002 = $24.69.
    let charge = |free| Charge::PerRequest {
        description: None,
        unit_price: d("0.002"),
        free_units: free,
        count: None,
    };
    let used = usage(&[("a", 12_345, 0, 0)]);
    assert_eq!(total(vec![charge(0)], &used), d("24.69"));
    // A free allowance of 2,345: 10,000 × $0.002 = $20.00.
    assert_eq!(total(vec![charge(2_345)], &used), d("20.00"));
    // More free units than used: nothing to pay.
    assert_eq!(total(vec![charge(99_999)], &used), d("0"));
}

#[test]
fn per_token_by_model_with_cache_tokens_and_patterns() {
    let charge = Charge::PerToken {
        description: None,
        models: vec![
            ModelPrice {
                pattern: "*claude-3-5-sonnet*".into(),
                input_per_million: d("3.00"),
                output_per_million: d("15.00"),
                cache_read_per_million: d("0.30"),
                cache_write_per_million: d("3.75"),
            },
            ModelPrice {
                pattern: "amazon.nova-lite-v1:0".into(),
                input_per_million: d("0.06"),
                output_per_million: d("0.24"),
                cache_read_per_million: d("0"),
                cache_write_per_million: d("0"),
            },
        ],
    };
    let mut used = usage(&[
        // An inference profile id maps to the base model's price through the pattern.
        (
            "us.anthropic.claude-3-5-sonnet-20240620-v1:0",
            10,
            2_000_000,
            500_000,
        ),
        ("amazon.nova-lite-v1:0", 5, 1_000_000, 1_000_000),
    ]);
    if let Some(counts) = used
        .by_model
        .get_mut("us.anthropic.claude-3-5-sonnet-20240620-v1:0")
    {
        counts.cache_read_tokens = 1_000_000;
        counts.cache_write_tokens = 200_000;
    }
    // Sonnet: 2M in × $3 = $6.00; 0.5M out × $15 = $7.50; 1M cache read × $0.30 = $0.30;
    // 0.2M cache write × $3.75 = $0.75. Nova Lite: 1M in × $0.06 = $0.06; 1M out × $0.24
    // = $0.24. Total $14.85.
    let rated = rate(&plan(vec![charge.clone()]), &used).unwrap();
    assert_eq!(rated.total, d("14.85"));
    assert_eq!(rated.lines.len(), 6);
    // A model no pattern matches cannot be priced: the invoice is refused, not guessed.
    let unpriced = usage(&[("meta.llama3-70b-instruct-v1:0", 1, 10, 10)]);
    assert_eq!(
        rate(&plan(vec![charge]), &unpriced),
        Err(RatingError::UnpricedModel(
            "meta.llama3-70b-instruct-v1:0".into()
        ))
    );
}

#[test]
fn graduated_tiers_price_each_tier_at_its_own_rate() {
    let charge = Charge::Graduated {
        description: None,
        metric: Metric::Requests,
        tiers: tiers(&[(Some(1_000), "0"), (Some(10_000), "0.002"), (None, "0.001")]),
        free_units: 0,
        count: None,
    };
    // 25,000 requests: 1,000 × $0 + 9,000 × $0.002 + 15,000 × $0.001 = $0 + $18 + $15 = $33.
    let rated = rate(&plan(vec![charge.clone()]), &usage(&[("a", 25_000, 0, 0)])).unwrap();
    assert_eq!(rated.total, d("33.00"));
    assert_eq!(rated.lines.len(), 3);
    assert_eq!(rated.lines[1].description, "requests (1,001 to 10,000)");
    // 1,000 requests stay in the free tier: $0.
    assert_eq!(
        total(vec![charge.clone()], &usage(&[("a", 1_000, 0, 0)])),
        d("0")
    );
    // 1,001: one request at $0.002 = $0.002, which rounds to $0.00.
    assert_eq!(
        total(vec![charge], &usage(&[("a", 1_001, 0, 0)])),
        d("0.00")
    );
}

#[test]
fn volume_tiers_price_every_unit_at_the_reached_rate() {
    let charge = Charge::Volume {
        description: None,
        metric: Metric::Tokens,
        tiers: tiers(&[(Some(1_000_000), "0.000010"), (None, "0.000008")]),
        free_units: 0,
        count: None,
    };
    // 800,000 tokens stay in the first tier: 800,000 × $0.00001 = $8.00.
    assert_eq!(
        total(vec![charge.clone()], &usage(&[("a", 1, 500_000, 300_000)])),
        d("8.00")
    );
    // 1,500,000 tokens reach the second tier: all 1,500,000 × $0.000008 = $12.00.
    assert_eq!(
        total(vec![charge], &usage(&[("a", 1, 1_000_000, 500_000)])),
        d("12.00")
    );
}

#[test]
fn packages_are_charged_per_started_block() {
    let charge = Charge::Package {
        description: None,
        metric: Metric::Requests,
        package_size: 1_000,
        package_price: d("1.50"),
        free_units: 0,
        count: None,
    };
    // 2,001 requests start 3 packages of 1,000: 3 × $1.50 = $4.50.
    assert_eq!(
        total(vec![charge.clone()], &usage(&[("a", 2_001, 0, 0)])),
        d("4.50")
    );
    // Exactly 2,000: 2 packages = $3.00.
    assert_eq!(
        total(vec![charge], &usage(&[("a", 2_000, 0, 0)])),
        d("3.00")
    );
}

#[test]
fn subscription_with_included_units_then_overage() {
    let charge = Charge::Subscription {
        description: None,
        fee: d("49.00"),
        metric: Metric::Requests,
        included_units: 10_000,
        count: None,
        overage_unit_price: d("0.004"),
    };
    // Within the included 10,000: the fee alone, $49.00.
    let within = rate(&plan(vec![charge.clone()]), &usage(&[("a", 9_999, 0, 0)])).unwrap();
    assert_eq!((within.total, within.lines.len()), (d("49.00"), 1));
    // 12,500: $49.00 + 2,500 × $0.004 = $49.00 + $10.00 = $59.00.
    assert_eq!(
        total(vec![charge], &usage(&[("a", 12_500, 0, 0)])),
        d("59.00")
    );
}

#[test]
fn a_minimum_commitment_tops_the_total_up() {
    let charges = |minimum: &str| {
        vec![
            Charge::PerRequest {
                description: None,
                unit_price: d("0.01"),
                free_units: 0,
                count: None,
            },
            Charge::MinimumCommitment {
                description: None,
                amount: d(minimum),
            },
        ]
    };
    // 1,234 requests × $0.01 = $12.34, under the $100 minimum: a top-up line of $87.66.
    let rated = rate(&plan(charges("100")), &usage(&[("a", 1_234, 0, 0)])).unwrap();
    assert_eq!(rated.total, d("100.00"));
    assert_eq!(rated.lines.last().unwrap().amount, d("87.66"));
    assert_eq!(
        rated
            .subtotals
            .iter()
            .map(|subtotal| (subtotal.charge.as_str(), subtotal.amount))
            .collect::<Vec<_>>(),
        vec![
            ("per request", d("12.34")),
            ("minimum commitment", d("87.66"))
        ],
        "one subtotal per charge, adding up to the total"
    );
    // Above the minimum: no top-up. 12,340 × $0.01 = $123.40.
    let above = rate(&plan(charges("100")), &usage(&[("a", 12_340, 0, 0)])).unwrap();
    assert_eq!((above.total, above.lines.len()), (d("123.40"), 1));
}

#[test]
fn rounding_is_half_to_even_per_line_and_lines_add_up() {
    let charge = |price: &str| Charge::PerRequest {
        description: None,
        unit_price: d(price),
        free_units: 0,
        count: None,
    };
    // 5 × $0.001 = $0.005 → $0.00 (half to even); 15 × $0.001 = $0.015 → $0.02.
    assert_eq!(
        total(vec![charge("0.001")], &usage(&[("a", 5, 0, 0)])),
        d("0.00")
    );
    assert_eq!(
        total(vec![charge("0.001")], &usage(&[("a", 15, 0, 0)])),
        d("0.02")
    );
    let rated = rate(
        &plan(vec![charge("0.001"), charge("0.001")]),
        &usage(&[("a", 15, 0, 0)]),
    )
    .unwrap();
    // Each line is rounded ($0.02 twice), and the total is their sum: $0.04.
    assert_eq!(rated.total, d("0.04"));
    assert_eq!(
        rated.total,
        rated.lines.iter().map(|line| line.amount).sum()
    );
}

fn arbitrary_tiers(increasing_prices: bool) -> impl Strategy<Value = Vec<Tier>> {
    (
        proptest::collection::vec(1u64..500, 1..5),
        proptest::collection::vec(0u32..10_000, 5),
    )
        .prop_map(move |(widths, mut prices)| {
            if increasing_prices {
                prices.sort_unstable();
            } else {
                prices.sort_unstable_by(|a, b| b.cmp(a));
            }
            let mut bound = 0u64;
            let mut tiers: Vec<Tier> = widths
                .iter()
                .enumerate()
                .map(|(index, width)| {
                    bound += width;
                    Tier {
                        up_to: Some(bound),
                        unit_price: Decimal::new(i64::from(prices[index]), 4),
                    }
                })
                .collect();
            tiers.push(Tier {
                up_to: None,
                unit_price: Decimal::new(i64::from(prices[widths.len()]), 4),
            });
            tiers
        })
}

proptest! {
    /// The graduated total never falls as usage grows, and has no jump at tier edges: one
    /// more unit adds exactly the price of the tier that unit falls in.
    #[test]
    fn graduated_is_monotonic_and_continuous(tiers in arbitrary_tiers(true), units in 0u64..3_000) {
        let here = graduated_amount(&tiers, units);
        let next = graduated_amount(&tiers, units + 1);
        prop_assert!(next >= here);
        let unit_tier = tiers
            .iter()
            .find(|tier| tier.up_to.is_none_or(|up_to| units < up_to))
            .unwrap();
        prop_assert_eq!(next - here, unit_tier.unit_price);
    }

    /// With rates that rise tier by tier, pricing every unit at the reached tier's rate
    /// (volume) costs at least as much as pricing each tier at its own rate (graduated); with
    /// falling rates (volume discounts), at most as much.
    #[test]
    fn volume_against_graduated(rising in arbitrary_tiers(true), falling in arbitrary_tiers(false), units in 0u64..3_000) {
        prop_assert!(volume_amount(&rising, units) >= graduated_amount(&rising, units));
        prop_assert!(volume_amount(&falling, units) <= graduated_amount(&falling, units));
    }
}

/// Two models' usage with failed calls: `(model, admitted requests, of which failed)`.
fn usage_with_failures(models: &[(&str, u64, u64)]) -> PeriodUsage {
    PeriodUsage {
        by_model: models
            .iter()
            .map(|(model, requests, errors)| {
                (
                    (*model).to_owned(),
                    UsageCounts {
                        requests: *requests,
                        errors: *errors,
                        ..UsageCounts::default()
                    },
                )
            })
            .collect(),
    }
}

#[test]
fn only_successful_calls_are_billed_unless_the_plan_version_predates_count() {
    // 1,000 + 600 admitted calls, of which 40 + 20 failed (client or upstream errors).
    let used = usage_with_failures(&[("a", 1_000, 40), ("b", 600, 20)]);
    let per_request = |count| Charge::PerRequest {
        description: None,
        unit_price: d("0.001"),
        free_units: 100,
        count,
    };
    // (count, expected total): success bills 1,540 − 100 free = 1,440 × $0.001 = $1.44;
    // admitted (and a version stored before count, None) bills 1,600 − 100 = 1,500 = $1.50.
    for (count, expected) in [
        (Some(BillableCalls::Success), "1.44"),
        (Some(BillableCalls::Admitted), "1.50"),
        (None, "1.50"),
    ] {
        let rated = rate(&plan(vec![per_request(count)]), &used).unwrap();
        assert_eq!(rated.total, d(expected), "{count:?}");
        let zero_line = rated
            .lines
            .iter()
            .find(|line| line.description.contains("not charged"));
        match count {
            Some(BillableCalls::Success) => {
                let line = zero_line.expect("the failed calls are shown");
                assert_eq!(line.quantity, d("60"));
                assert_eq!(line.amount, d("0"));
                assert_eq!(line.unit_price, d("0"));
            }
            _ => assert!(zero_line.is_none(), "{count:?}"),
        }
    }
}

#[test]
fn every_request_counting_charge_bills_only_successful_calls_by_count() {
    // 1,540 successful calls of 1,600 admitted.
    let used = usage_with_failures(&[("a", 1_000, 40), ("b", 600, 20)]);
    let tiers = tiers(&[(Some(1_000), "0.002"), (None, "0.001")]);
    let success = Some(BillableCalls::Success);
    let cases = [
        // 1,540 successful: 1,000 × 0.002 + 540 × 0.001 = 2.54.
        (
            Charge::Graduated {
                description: None,
                metric: Metric::Requests,
                tiers: tiers.clone(),
                free_units: 0,
                count: success,
            },
            "2.54",
        ),
        // 1,540 in the second tier: 1,540 × 0.001 = 1.54.
        (
            Charge::Volume {
                description: None,
                metric: Metric::Requests,
                tiers,
                free_units: 0,
                count: success,
            },
            "1.54",
        ),
        // 1,540 in packages of 500: 4 × 1.00 = 4.00.
        (
            Charge::Package {
                description: None,
                metric: Metric::Requests,
                package_size: 500,
                package_price: d("1.00"),
                free_units: 0,
                count: success,
            },
            "4.00",
        ),
        // 10 + (1,540 − 1,500) × 0.01 = 10.40.
        (
            Charge::Subscription {
                description: None,
                fee: d("10"),
                metric: Metric::Requests,
                included_units: 1_500,
                overage_unit_price: d("0.01"),
                count: success,
            },
            "10.40",
        ),
    ];
    for (charge, expected) in cases {
        assert_eq!(
            total(vec![charge.clone()], &used),
            d(expected),
            "{charge:?}"
        );
    }
}

#[test]
fn new_plan_versions_bill_successful_calls_and_count_belongs_to_request_charges() {
    let text = "schema_version = 1\nid = \"p\"\nversion = 2\nname = \"P\"\ncurrency = \"USD\"\n\n[[charges]]\ntype = \"per_request\"\nunit_price = \"0.001\"\n\n[[charges]]\ntype = \"graduated\"\nmetric = \"tokens\"\n[[charges.tiers]]\nunit_price = \"0.000001\"\n";
    let parsed = Plan::from_toml(text).unwrap();
    assert_eq!(parsed.charges[0].count(), Some(BillableCalls::Success));
    assert_eq!(
        parsed.charges[1].count(),
        None,
        "a token charge has no count"
    );
    let legacy: Plan = serde_json::from_str(
        r#"{"schema_version":1,"id":"p","version":1,"name":"P","currency":"USD","charges":[{"type":"per_request","unit_price":"0.001"}]}"#,
    )
    .unwrap();
    assert_eq!(legacy.charges[0].billable_calls(), BillableCalls::Admitted);
    assert!(
        !serde_json::to_string(&legacy).unwrap().contains("count"),
        "a stored legacy version serializes as it was"
    );
    let explicit = text.replacen(
        "unit_price = \"0.001\"",
        "unit_price = \"0.001\"\ncount = \"admitted\"",
        1,
    );
    assert_eq!(
        Plan::from_toml(&explicit).unwrap().charges[0].count(),
        Some(BillableCalls::Admitted)
    );
    let misplaced = text.replacen(
        "metric = \"tokens\"",
        "metric = \"tokens\"\ncount = \"success\"",
        1,
    );
    let error = Plan::from_toml(&misplaced).unwrap_err();
    assert!(error.to_string().contains("charges[1].count"), "{error}");
}
