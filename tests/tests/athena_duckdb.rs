//! The Athena named queries of `infra/athena/`, run in DuckDB (pinned, from PyPI) over the
//! Parquet output as Athena would see the Glue table, give the same numbers as
//! `tollgate report`.
#![allow(clippy::too_many_lines)] // end-to-end scenarios read top to bottom
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::process::Command;

use tests::fake_bedrock::{Behavior, FakeBedrock};
use tests::harness::{Tollgate, spec_body};

fn python() -> String {
    std::env::var("TOLLGATE_TEST_PYTHON").unwrap_or_else(|_| {
        panic!(
            "TOLLGATE_TEST_PYTHON is not set: run the suite with `bash scripts/test.sh`, which installs the pinned DuckDB"
        )
    })
}

/// A report CSV file as rows of cells (header first).
fn csv_rows(path: &std::path::Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| line.split(',').map(str::to_owned).collect())
        .collect()
}

fn as_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Number(number) => match number.as_f64() {
            Some(float) if number.is_f64() => format!("{float:.1}"),
            _ => number.to_string(),
        },
        other => other.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_named_queries_agree_with_the_report() {
    let tollgate = Tollgate::new();
    let fake = FakeBedrock::start().await;
    let (alpha, alpha_token) = tollgate.create_customer("Alpha", Some(4));
    let (beta, beta_token) = tollgate.create_customer("Beta", None);
    let server = tollgate.serve_against(&fake, None);
    let client = reqwest::Client::new();
    let call = |token: String, prompt: String| {
        let client = client.clone();
        let url = format!("{}/prod/bedrock", server.base_url);
        async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&spec_body(&prompt))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    for index in 0..6 {
        call(alpha_token.clone(), format!("alpha {index}")).await;
    }
    for index in 0..3 {
        assert_eq!(call(beta_token.clone(), format!("beta {index}")).await, 200);
    }
    fake.set_behavior(Behavior::ServerError);
    for index in 0..2 {
        assert_eq!(
            call(beta_token.clone(), format!("beta failing {index}")).await,
            500
        );
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while tollgate.usage_today(&alpha)["totals"]["rejected"] != 2
        || tollgate.usage_today(&beta)["totals"]["requests"] != 5
    {
        assert!(
            std::time::Instant::now() < deadline,
            "metering never caught up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(server.terminate().success());

    let today = chrono::Utc::now().date_naive().to_string();
    let work = tempfile::tempdir().unwrap();
    let csv = work.path().join("csv");
    let report = tollgate.run(&[
        "report",
        "--start-date",
        &today,
        "--end-date",
        &today,
        "--out",
        &work.path().join("report.html").to_string_lossy(),
        "--csv",
        &csv.to_string_lossy(),
    ]);
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );

    let sql = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/athena");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/athena_views.py");
    let output = Command::new(python())
        .arg(script)
        .arg(tollgate.data_dir.join("usage"))
        .arg(&sql)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut athena: BTreeMap<String, Vec<BTreeMap<String, serde_json::Value>>> =
        serde_json::from_slice(&output.stdout).unwrap();
    // Each file's footer statistics (one row group per file here), as DuckDB reads them,
    // are the file's own minimum, maximum and null count (upstream_request_id has none:
    // no query filters on it).
    let statistics = athena.remove("_statistics").unwrap();
    assert!(statistics.len() >= 5, "{statistics:?}");
    for check in &statistics {
        if check["column"] == "upstream_request_id" {
            assert_eq!(check["footer"][0], "1", "{check:?}");
            assert!(
                check["footer"][1].is_null() && check["footer"][3].is_null(),
                "{check:?}"
            );
        } else {
            assert_eq!(check["footer"], check["values"], "{check:?}");
        }
    }
    assert_eq!(
        athena.len(),
        7,
        "one result per named query: {:?}",
        athena.keys()
    );
    let name_of = |customer_id: &str| {
        if customer_id == alpha {
            "Alpha"
        } else {
            "Beta"
        }
    };

    // Calls per customer per day: the report has a column per customer name.
    let calls = csv_rows(&csv.join("calls-per-customer-per-day.csv"));
    for row in &athena["calls_per_customer_per_day"] {
        let customer = name_of(row["customer_id"].as_str().unwrap());
        let column = calls[0].iter().position(|name| name == customer).unwrap();
        let day = calls
            .iter()
            .find(|cells| cells[0] == as_text(&row["day"]))
            .unwrap();
        assert_eq!(day[column], as_text(&row["requests"]), "{customer}");
    }
    // The trend, tokens by model, and the rates, row for row.
    for (query, file, columns) in [
        (
            "daily_trend",
            "daily-trend.csv",
            vec!["day", "requests", "tokens"],
        ),
        (
            "tokens_by_model",
            "tokens-by-model.csv",
            vec!["model_id", "input_tokens", "output_tokens"],
        ),
        (
            "error_and_rejection_rates",
            "error-and-rejection-rates.csv",
            vec!["day", "error_rate", "rejection_rate"],
        ),
    ] {
        let expected: Vec<Vec<String>> = csv_rows(&csv.join(file)).into_iter().skip(1).collect();
        let found: Vec<Vec<String>> = athena[query]
            .iter()
            .map(|row| {
                columns
                    .iter()
                    .map(|column| as_text(&row[*column]))
                    .collect()
            })
            .collect();
        assert_eq!(found, expected, "{query}");
    }
    // 2 errors (Beta's) of the 9 admitted calls (Alpha 4, Beta 5): 22.2%; 2 rejections
    // (Alpha's) of the 11 calls in all: 18.2%.
    let rates = &athena["error_and_rejection_rates"][0];
    assert_eq!(as_text(&rates["error_rate"]), "22.2");
    assert_eq!(as_text(&rates["rejection_rate"]), "18.2");
    // Most active customers and monthly usage.
    let active = csv_rows(&csv.join("most-active-customers.csv"));
    for (row, cells) in athena["most_active_customers"]
        .iter()
        .zip(active.iter().skip(1))
    {
        assert_eq!(name_of(row["customer_id"].as_str().unwrap()), cells[0]);
        assert_eq!(as_text(&row["requests"]), cells[1]);
        assert_eq!(as_text(&row["tokens"]), cells[2]);
    }
    // Calls by API: every call here used the spec's route. The report lists every API (the
    // unused ones at 0); the query only those with events.
    let by_api = csv_rows(&csv.join("calls-by-api.csv"));
    assert_eq!(by_api[0], ["API", "calls", "share %", "customers"]);
    let label = |api: &str| match api {
        "bedrock" => "Bedrock runtime (/model/…)",
        "spec" => "Tollgate spec (POST /prod/bedrock)",
        "anthropic" => "Anthropic Messages (/v1/messages)",
        "openai" => "OpenAI Chat Completions (/v1/chat/completions)",
        other => panic!("unexpected api {other}"),
    };
    let queried: Vec<(String, String, String)> = athena["calls_by_api"]
        .iter()
        .map(|row| {
            (
                label(row["api"].as_str().unwrap()).to_owned(),
                as_text(&row["requests"]),
                as_text(&row["customers"]),
            )
        })
        .collect();
    let reported: Vec<(String, String, String)> = by_api
        .iter()
        .skip(1)
        .filter(|cells| cells[1] != "0")
        .map(|cells| (cells[0].clone(), cells[1].clone(), cells[3].clone()))
        .collect();
    assert_eq!(queried, reported);
    assert_eq!(
        queried,
        [(label("spec").to_owned(), "9".to_owned(), "2".to_owned())]
    );
    let monthly = csv_rows(&csv.join("monthly-usage-per-customer.csv"));
    for row in &athena["monthly_usage_per_customer"] {
        let customer = name_of(row["customer_id"].as_str().unwrap());
        let cells = monthly.iter().find(|cells| cells[1] == customer).unwrap();
        assert_eq!(cells[0], as_text(&row["month"]));
        assert_eq!(cells[2], as_text(&row["requests"]));
        assert_eq!(cells[3], as_text(&row["input_tokens"]));
        assert_eq!(cells[4], as_text(&row["output_tokens"]));
    }
}
