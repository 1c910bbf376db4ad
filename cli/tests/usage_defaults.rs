//! `tollgate usage` without dates shows the current month to date (UTC).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

fn tollgate(directory: &std::path::Path, arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .env_remove("TOLLGATE_DB")
        .env_remove("TOLLGATE_NEW_TOKEN")
        .env("TOLLGATE_DATA_DIR", directory)
        .args(arguments)
        .output()
        .unwrap()
}

#[test]
fn usage_without_dates_covers_the_month_to_date() {
    let directory = tempfile::tempdir().unwrap();
    let created = tollgate(
        directory.path(),
        &[
            "--json",
            "create",
            "--name",
            "Acme",
            "--email",
            "a@acme.example",
        ],
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let created: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    let id = created["customer_id"].as_str().unwrap();

    let before = chrono::Utc::now().date_naive();
    let usage = tollgate(directory.path(), &["--json", "usage", "--customer-id", id]);
    let after = chrono::Utc::now().date_naive();
    assert!(
        usage.status.success(),
        "{}",
        String::from_utf8_lossy(&usage.stderr)
    );
    let usage: serde_json::Value = serde_json::from_slice(&usage.stdout).unwrap();
    let end: chrono::NaiveDate = usage["end_date"].as_str().unwrap().parse().unwrap();
    let start: chrono::NaiveDate = usage["start_date"].as_str().unwrap().parse().unwrap();
    assert!(before <= end && end <= after, "ends today: {usage}");
    assert_eq!(
        start,
        chrono::Datelike::with_day(&end, 1).unwrap(),
        "starts on the first"
    );
    assert_eq!(usage["totals"]["requests"], 0);

    let month_ago = (after - chrono::Days::new(30)).to_string();
    let only_start = tollgate(
        directory.path(),
        &["usage", "--customer-id", id, "--start-date", &month_ago],
    );
    assert!(
        only_start.status.success(),
        "{}",
        String::from_utf8_lossy(&only_start.stderr)
    );
    let text = String::from_utf8_lossy(&only_start.stdout);
    assert!(
        text.contains(&format!("usage of {id} from {month_ago} to ")),
        "{text}"
    );
    assert!(
        text.contains("complete through: nothing metered yet"),
        "{text}"
    );
}
