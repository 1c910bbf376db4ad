//! Bad CLI input gets a clear error and a non-zero exit, with nothing written.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

struct Installation {
    directory: tempfile::TempDir,
}

impl Installation {
    fn new() -> Self {
        Self {
            directory: tempfile::tempdir().unwrap(),
        }
    }

    fn run(&self, arguments: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .env_remove("TOLLGATE_DB")
            .env_remove("TOLLGATE_NEW_TOKEN")
            .env("TOLLGATE_DATA_DIR", self.directory.path())
            .args(arguments)
            .output()
            .unwrap()
    }
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_fails_with(output: &Output, code: i32, expected: &str) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stderr: {}",
        stderr_of(output)
    );
    assert!(
        stderr_of(output).contains(expected),
        "expected {expected:?} in: {}",
        stderr_of(output)
    );
}

#[test]
fn bad_dates_and_ranges_are_explained() {
    let tollgate = Installation::new();
    let bad_date = tollgate.run(&[
        "usage",
        "--customer-id",
        "x",
        "--start-date",
        "2023-02-30",
        "--end-date",
        "2023-03-01",
    ]);
    assert_fails_with(&bad_date, 2, "use YYYY-MM-DD");
    let reversed = tollgate.run(&[
        "usage",
        "--customer-id",
        "x",
        "--start-date",
        "2023-04-30",
        "--end-date",
        "2023-04-01",
    ]);
    assert_fails_with(&reversed, 2, "is before --start-date");
}

#[test]
fn unknown_customers_are_named_with_the_fix() {
    let tollgate = Installation::new();
    for arguments in [
        vec![
            "usage",
            "--customer-id",
            "nobody",
            "--start-date",
            "2023-04-01",
            "--end-date",
            "2023-04-30",
        ],
        vec![
            "update-limits",
            "--customer-id",
            "nobody",
            "--daily-limit",
            "10",
        ],
        vec!["update-token", "--customer-id", "nobody"],
        vec!["show", "--customer-id", "nobody"],
        vec!["list-keys", "--customer-id", "nobody"],
        vec![
            "revoke-token",
            "--customer-id",
            "nobody",
            "--key-id",
            "key_x",
        ],
        vec!["disable", "--customer-id", "nobody"],
        vec!["enable", "--customer-id", "nobody"],
        vec!["delete", "--customer-id", "nobody"],
    ] {
        assert_fails_with(
            &tollgate.run(&arguments),
            3,
            "unknown customer id \"nobody\"; run `tollgate list`",
        );
    }
}

#[test]
fn bad_create_arguments_write_nothing() {
    let tollgate = Installation::new();
    assert_fails_with(
        &tollgate.run(&["create", "--name", "Acme", "--email", "nope"]),
        2,
        "is not an email address",
    );
    assert_fails_with(
        &tollgate.run(&[
            "create",
            "--name",
            "Acme",
            "--email",
            "a@acme.example",
            "--token",
            "tooshort",
        ]),
        2,
        "at least 32",
    );
    assert_fails_with(&tollgate.run(&["create", "--name", "Acme"]), 2, "--email");
    assert_fails_with(
        &tollgate.run(&[
            "update-limits",
            "--customer-id",
            "x",
            "--daily-limit",
            "lots",
        ]),
        2,
        "whole number",
    );
    assert_fails_with(&tollgate.run(&["frobnicate"]), 2, "unrecognized subcommand");
    let listed = tollgate.run(&["--json", "list"]);
    assert!(listed.status.success());
    assert_eq!(String::from_utf8_lossy(&listed.stdout).trim(), "[]");
}

#[test]
fn a_supplied_token_is_never_printed_back() {
    let tollgate = Installation::new();
    let token = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJ0A==";
    let created = tollgate.run(&[
        "create",
        "--name",
        "Acme",
        "--email",
        "a@acme.example",
        "--token",
        token,
    ]);
    assert!(created.status.success(), "{}", stderr_of(&created));
    assert!(!String::from_utf8_lossy(&created.stdout).contains(token));
    let again = tollgate.run(&[
        "create",
        "--name",
        "Other",
        "--email",
        "o@other.example",
        "--token",
        token,
    ]);
    assert_fails_with(&again, 4, "already in use");
    assert!(!stderr_of(&again).contains(token));
}

#[test]
fn serve_refuses_bad_tls_files_and_a_busy_port() {
    let tollgate = Installation::new();
    let missing = tollgate.run(&[
        "serve",
        "--upstream",
        "simulated",
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        "/nonexistent/cert.pem",
        "--tls-key",
        "/nonexistent/key.pem",
    ]);
    assert_fails_with(
        &missing,
        1,
        "cannot read TLS certificate chain /nonexistent/cert.pem",
    );
    let only_cert = tollgate.run(&["serve", "--tls-cert", "/nonexistent/cert.pem"]);
    assert_fails_with(&only_cert, 2, "--tls-key");

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = busy.local_addr().unwrap().to_string();
    let taken = tollgate.run(&["serve", "--upstream", "simulated", "--listen", &address]);
    assert_fails_with(&taken, 1, "choose another address with --listen");
}

#[test]
fn serve_refuses_unusable_alert_settings_before_listening() {
    let tollgate = Installation::new();
    let no_secret = tollgate.run(&[
        "serve",
        "--upstream",
        "simulated",
        "--listen",
        "127.0.0.1:0",
        "--alert-webhook-url",
        "https://hooks.example.com/tollgate",
    ]);
    assert_fails_with(&no_secret, 2, "set TOLLGATE_ALERT_WEBHOOK_SECRET");
    let short_secret = tollgate.run(&[
        "serve",
        "--alert-webhook-url",
        "https://hooks.example.com/tollgate",
        "--alert-webhook-secret",
        "tiny-secret",
    ]);
    assert_fails_with(&short_secret, 2, "shorter than 16 characters");
    assert!(
        !stderr_of(&short_secret).contains("tiny-secret"),
        "the secret is not echoed"
    );
    let sns_embedded = tollgate.run(&[
        "serve",
        "--upstream",
        "simulated",
        "--listen",
        "127.0.0.1:0",
        "--alert-sns-topic-arn",
        "arn:aws:sns:us-east-1:123456789012:alerts",
    ]);
    assert_fails_with(&sns_embedded, 2, "needs the AWS backend");
    let bad_rate = tollgate.run(&["serve", "--alert-error-rate-percent", "150"]);
    assert_fails_with(&bad_rate, 2, "not a percentage");
}

#[test]
fn bad_limit_changes_are_refused_and_change_nothing() {
    let tollgate = Installation::new();
    let created = tollgate.run(&[
        "--json",
        "create",
        "--name",
        "Acme",
        "--email",
        "a@acme.example",
        "--daily-limit",
        "100",
        "--rpm",
        "10",
    ]);
    assert!(created.status.success(), "{}", stderr_of(&created));
    let created: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    let id = created["customer_id"].as_str().unwrap().to_owned();
    let limits_now = || {
        let shown = tollgate.run(&["--json", "show", "--customer-id", &id]);
        let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
        shown["customer"]["limits"].clone()
    };
    let before = limits_now();
    assert_eq!(before["daily_request_limit"], 100);
    assert_eq!(before["requests_per_minute"], 10);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![], "nothing to change"),
        (
            vec!["--daily-limit", "5", "--clear", "daily-limit"],
            "--daily-limit is both set and cleared",
        ),
        (vec!["--monthly-limit", "-5"], "whole number"),
        (vec!["--rpm", "1.5"], "whole number"),
        (vec!["--clear", "weekly-limit"], "invalid value"),
        (vec!["--enforcement", "lax"], "strict, eventual or default"),
    ];
    for (flags, expected) in cases {
        let mut arguments = vec!["update-limits", "--customer-id", id.as_str()];
        arguments.extend(flags);
        assert_fails_with(&tollgate.run(&arguments), 2, expected);
    }
    assert_eq!(limits_now(), before, "a refused change changes nothing");
    let audit = tollgate.run(&["--json", "audit", "--customer-id", &id]);
    let audit: serde_json::Value = serde_json::from_slice(&audit.stdout).unwrap();
    assert_eq!(
        audit.as_array().unwrap().len(),
        1,
        "only the create: {audit}"
    );

    // Unknown key ids are not-found errors (exit 3); a good change applies only what it names.
    assert_fails_with(
        &tollgate.run(&["revoke-token", "--customer-id", &id, "--key-id", "key_nope"]),
        3,
        "has no key",
    );
    let changed = tollgate.run(&[
        "update-limits",
        "--customer-id",
        &id,
        "--monthly-token-limit",
        "5000000",
        "--clear",
        "rpm",
        "--enforcement",
        "strict",
    ]);
    assert!(changed.status.success(), "{}", stderr_of(&changed));
    let after = limits_now();
    assert_eq!(after["daily_request_limit"], 100);
    assert_eq!(after["monthly_token_limit"], 5_000_000);
    assert!(after["requests_per_minute"].is_null());
    assert_eq!(after["enforcement"], "strict");
}

#[test]
fn plan_validate_accepts_the_documented_plans_and_points_at_mistakes() {
    let tollgate = Installation::new();
    let plans = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/plans");
    let good = tollgate.run(&[
        "plan",
        "validate",
        plans.join("tiered.toml").to_str().unwrap(),
    ]);
    assert!(good.status.success(), "{}", stderr_of(&good));
    assert!(String::from_utf8_lossy(&good.stdout).contains("is valid"));

    let broken = tollgate.directory.path().join("broken.toml");
    std::fs::write(
        &broken,
        "schema_version = 1\nid = \"x\"\nversion = 1\nname = \"X\"\ncurrency = \"USD\"\n\n[[charges]]\ntype = \"per_request\"\nunit_price = 0.002\n",
    )
    .unwrap();
    assert_fails_with(
        &tollgate.run(&["plan", "validate", broken.to_str().unwrap()]),
        2,
        "write amounts and prices as strings",
    );
    assert_fails_with(
        &tollgate.run(&["plan", "validate", "/nonexistent/plan.toml"]),
        1,
        "cannot read the plan",
    );
}
