//! Plans and price tables as operators edit them, mutated at random: parsing either
//! accepts the document or names what is wrong, and whatever is accepted prices any usage
//! a counter can hold (up to `u64::MAX` of everything) without panicking.

use std::collections::BTreeMap;

use proptest::prelude::*;
use schemas::UsageCounts;
use schemas::model_prices::ModelPriceTable;
use schemas::plan::Plan;

use super::{PeriodUsage, rate};
use crate::cost::cost_of_usage;

fn documented(path: &str) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::read_to_string(root.join(path)).unwrap()
}

/// Every plan in `docs/plans/`.
fn documented_plans() -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/plans");
    let mut plans: Vec<String> = std::fs::read_dir(root)
        .unwrap()
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
        .collect();
    plans.sort();
    plans
}

/// Values an edit might leave: prices at and past the bounds, negative and fractional
/// numbers, wrong types.
fn toml_value() -> impl Strategy<Value = toml::Value> {
    prop_oneof![
        proptest::sample::select(vec![
            "0",
            "0.002",
            "1000000",
            "1000000.000000000001",
            "999999.999999999999",
            "1000000000000",
            "79228162514264337593543950335",
            "-1",
            "1e3",
            "abc",
            "",
            "0.0000000000000000000000000001",
            "USD",
            "usd",
            "per_request",
            "per_token",
            "graduated",
            "volume",
            "package",
            "subscription",
            "minimum_commitment",
            "requests",
            "tokens",
            "input_tokens",
            "success",
            "admitted",
            "*",
            "*claude*",
        ])
        .prop_map(|text| toml::Value::String(text.to_owned())),
        any::<i64>().prop_map(toml::Value::Integer),
        (0_i64..5).prop_map(toml::Value::Integer),
        any::<bool>().prop_map(toml::Value::Boolean),
        any::<f64>().prop_map(toml::Value::Float),
        Just(toml::Value::Array(Vec::new())),
        Just(toml::Value::Table(toml::Table::new())),
    ]
}

/// One edit: a value replaced, a key removed, or a table or array entry repeated, at a
/// place chosen by `path` (indices into the document's keys and arrays, wrapped).
#[derive(Debug, Clone)]
enum Edit {
    Replace(toml::Value),
    Remove,
    Repeat,
    /// Every price in the document set to one value (the fields where a wrong magnitude
    /// would reach the arithmetic).
    Prices(toml::Value),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => toml_value().prop_map(Edit::Replace),
        1 => Just(Edit::Remove),
        1 => Just(Edit::Repeat),
        2 => prop_oneof![
            3 => proptest::sample::select(vec![
                "1000000", "1000000.000000000001", "999999.999999999999", "1000000000000",
                "79228162514264337593543950335", "18446744073709551615", "-0.01",
                "0.0000000000000000000000000001", "0.000000000001",
            ])
            .prop_map(|price| toml::Value::String(price.to_owned())),
            1 => toml_value(),
        ]
        .prop_map(Edit::Prices),
    ]
}

/// Applies `edit` at the place `path` leads to, descending while the path lasts.
fn apply(value: &mut toml::Value, path: &[usize], edit: &Edit) {
    if let Edit::Prices(price) = edit {
        set_prices(value, price, price);
        return;
    }
    let Some((&step, rest)) = path.split_first() else {
        if let Edit::Replace(new) = edit {
            *value = new.clone();
        }
        return;
    };
    match value {
        toml::Value::Table(table) if !table.is_empty() => {
            let key = table.keys().nth(step % table.len()).unwrap().clone();
            match (rest.is_empty(), edit) {
                (true, Edit::Remove) => {
                    table.remove(&key);
                }
                _ => apply(table.get_mut(&key).unwrap(), rest, edit),
            }
        }
        toml::Value::Array(items) if !items.is_empty() => {
            let index = step % items.len();
            match (rest.is_empty(), edit) {
                (true, Edit::Remove) => {
                    items.remove(index);
                }
                (true, Edit::Repeat) => {
                    for _ in 0..40 {
                        items.push(items[index].clone());
                    }
                }
                _ => apply(&mut items[index], rest, edit),
            }
        }
        other => {
            if let Edit::Replace(new) = edit {
                *other = new.clone();
            }
        }
    }
}

fn mutated(text: &str, edits: &[(Vec<usize>, Edit)]) -> String {
    let mut document = toml::Value::Table(text.parse::<toml::Table>().unwrap());
    for (path, edit) in edits {
        apply(&mut document, path, edit);
    }
    toml::to_string(&document).unwrap_or_default()
}

fn edits() -> impl Strategy<Value = Vec<(Vec<usize>, Edit)>> {
    proptest::collection::vec((proptest::collection::vec(0_usize..8, 1..5), edit()), 1..4)
}

fn counts() -> impl Strategy<Value = UsageCounts> {
    let count = prop_oneof![Just(0), Just(u64::MAX), 0_u64..10_000, any::<u64>()];
    proptest::collection::vec(count, 11)
        .prop_map(|values| UsageCounts::from_values(values.try_into().unwrap()))
}

fn usage() -> impl Strategy<Value = BTreeMap<String, UsageCounts>> {
    proptest::collection::btree_map(
        proptest::sample::select(vec![
            "anthropic.claude-3-5-haiku-20241022-v1:0",
            "us.anthropic.claude-3-7-sonnet-20250219-v1:0",
            "amazon.nova-lite-v1:0",
            "meta.llama3-70b-instruct-v1:0",
        ])
        .prop_map(str::to_owned),
        counts(),
        0..4,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn any_edited_plan_is_refused_by_name_or_prices_any_usage(
        which in 0_usize..16,
        edits in edits(),
        by_model in usage(),
    ) {
        let plans = documented_plans();
        let text = mutated(&plans[which % plans.len()], &edits);
        match Plan::from_toml(&text) {
            Ok(plan) => {
                // Priced, or refused with a reason; never a panic.
                let _ = rate(&plan, &PeriodUsage { by_model });
            }
            Err(error) => prop_assert!(!error.to_string().is_empty()),
        }
    }

    #[test]
    fn any_edited_price_table_is_refused_by_name_or_costs_any_usage(
        edits in edits(),
        usage in usage(),
    ) {
        let text = mutated(&documented("docs/model-prices.toml"), &edits);
        match ModelPriceTable::from_toml(&text) {
            Ok(table) => {
                let _ = cost_of_usage(&table, &usage);
            }
            Err(error) => prop_assert!(!error.to_string().is_empty()),
        }
    }
}

/// Every price in a plan or price table set: those per unit to `per_unit`, the fixed ones
/// (`fee`, `amount`) to `fixed`.
fn set_prices(value: &mut toml::Value, per_unit: &toml::Value, fixed: &toml::Value) {
    match value {
        toml::Value::Table(table) => {
            for (key, field) in table.iter_mut() {
                if !field.is_str() {
                    set_prices(field, per_unit, fixed);
                } else if key.ends_with("price") || key.ends_with("per_million") {
                    *field = per_unit.clone();
                } else if key == "fee" || key == "amount" {
                    *field = fixed.clone();
                }
            }
        }
        toml::Value::Array(items) => items
            .iter_mut()
            .for_each(|item| set_prices(item, per_unit, fixed)),
        _ => {}
    }
}

/// The documented plans at their prices' bounds still price the most usage a counter can
/// hold; past the bounds the plan is refused, naming the field.
#[test]
fn the_price_bounds_keep_the_largest_usage_within_range() {
    let at_bound: Vec<String> = documented_plans()
        .iter()
        .map(|text| {
            let mut document = toml::Value::Table(text.parse::<toml::Table>().unwrap());
            set_prices(
                &mut document,
                &toml::Value::String("1000000".into()),
                &toml::Value::String("1000000000000".into()),
            );
            toml::to_string(&document).unwrap()
        })
        .collect();
    let most = UsageCounts::from_values([u64::MAX; 11]);
    let usage = PeriodUsage {
        by_model: [
            "anthropic.claude-3-5-haiku-20241022-v1:0",
            "amazon.nova-lite-v1:0",
        ]
        .into_iter()
        .map(|model| (model.to_owned(), most))
        .collect(),
    };
    for text in &at_bound {
        let plan = Plan::from_toml(text).unwrap_or_else(|error| panic!("{error}\n{text}"));
        let rated = rate(&plan, &usage);
        assert!(
            !matches!(rated, Err(super::RatingError::Overflow(_))),
            "{text}"
        );
    }
    let past = at_bound[0].replacen("\"1000000\"", "\"1000000.01\"", 1);
    assert_ne!(past, at_bound[0]);
    let error = Plan::from_toml(&past).unwrap_err().to_string();
    assert!(error.contains("at most 1000000"), "{error}");
    // A plan stored before the bounds existed is named, not priced.
    let per_request = at_bound
        .iter()
        .find(|text| text.contains("per_request"))
        .unwrap();
    let mut stored = Plan::from_toml(per_request).unwrap();
    for charge in &mut stored.charges {
        if let schemas::plan::Charge::PerRequest { unit_price, .. } = charge {
            *unit_price = rust_decimal::Decimal::MAX;
        }
    }
    let refused = rate(&stored, &usage).unwrap_err().to_string();
    assert!(
        refused.contains("is not valid under this build"),
        "{refused}"
    );
    assert!(refused.contains("tollgate plan add"), "{refused}");
}
