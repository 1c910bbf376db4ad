//! The operator console (`/admin/` on `tollgate serve`) in a real browser: Debian's
//! Chromium driven by Selenium (`tests/clients/console_browser.py`, pinned and installed by
//! `scripts/test.sh`), against the wire-level fake Bedrock. What the page shows must equal
//! what the CLI says; a viewer sees no write control; another site's form and an inline
//! script are refused. Screenshots are kept under `target/test-artifacts/console/`.
#![allow(clippy::too_many_lines)] // end-to-end scenarios read top to bottom
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use tests::fake_bedrock::FakeBedrock;
use tests::harness::Tollgate;

fn required_env(name: &str, what: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the suite with `bash scripts/test.sh`, which installs {what}"
        )
    })
}

fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts/console");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A plan billing each successful call at one cent, so the invoice preview is not zero.
const PLAN: &str = "schema_version = 1\nid = \"console-cents\"\nversion = 1\nname = \"Console cents\"\ncurrency = \"USD\"\n\n[[charges]]\ntype = \"per_request\"\ndescription = \"API requests\"\nunit_price = \"0.01\"\ncount = \"success\"\n";

/// Runs the browser scenario; returns what the page showed.
fn drive_console(base_url: &str, admin: &str, viewer: &str) -> Value {
    let output = Command::new(required_env(
        "TOLLGATE_TEST_PYTHON",
        "the pinned Python clients (Selenium)",
    ))
    .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("clients/console_browser.py"))
    .env("TOLLGATE_URL", base_url)
    .env("TOLLGATE_ADMIN_TOKEN", admin)
    .env("TOLLGATE_VIEWER_TOKEN", viewer)
    .env("TOLLGATE_PLAN_ID", "console-cents")
    .env("TOLLGATE_ARTIFACTS", artifacts())
    .env(
        "TOLLGATE_CHROMIUM",
        required_env("TOLLGATE_TEST_CHROMIUM", "Debian's chromium"),
    )
    .env(
        "TOLLGATE_CHROMEDRIVER",
        required_env("TOLLGATE_TEST_CHROMEDRIVER", "Debian's chromium-driver"),
    )
    .output()
    .expect("the console client runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the browser scenario failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_runs_a_customer_from_the_console_and_it_agrees_with_the_cli() {
    let tollgate = Tollgate::new();
    let fake = FakeBedrock::start().await;
    let admin = tollgate.run_json(&["admin-token", "--name", "console-ops"])["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let viewer = tollgate.run_json(&["admin-token", "--name", "console-look", "--role", "viewer"])
        ["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let plans = tempfile::tempdir().unwrap();
    let plan = plans.path().join("console-cents.toml");
    std::fs::write(&plan, PLAN).unwrap();
    assert!(
        tollgate
            .run(&["plan", "add", &plan.to_string_lossy()])
            .status
            .success()
    );
    let prices = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/model-prices.toml");
    let endpoint = fake.endpoint_url();
    let server = tollgate.serve(&[
        "--upstream",
        "bedrock",
        "--bedrock-endpoint-url",
        &endpoint,
        "--auth-cache-ms",
        "0",
        "--model-prices",
        &prices.to_string_lossy(),
    ]);

    // A record no proxy would write, for the quarantine page to show and requeue.
    {
        use store::EventAppender;
        let log =
            store::embedded::EmbeddedStore::open(&tollgate.data_dir.join("tollgate.db")).unwrap();
        log.append(&[store::LogRecord {
            partition_key: "console-poison".into(),
            data: bytes::Bytes::from_static(b"not a usage event"),
        }])
        .await
        .unwrap();
    }

    let seen = drive_console(&server.base_url, &admin, &viewer);

    assert_eq!(seen["title"], "Tollgate console");
    assert_eq!(seen["quarantine_rows"], 1, "{seen}");
    assert!(
        seen["quarantine_reason"]
            .as_str()
            .unwrap()
            .contains("not valid json"),
        "{seen}"
    );
    assert_eq!(seen["requeue_status"], "1 sent through the log again.");
    assert_eq!(seen["viewer_sees_requeue"], false);
    assert_eq!(seen["signed_in_as"], "console-ops (admin)");
    assert_eq!(
        seen["call_statuses"],
        serde_json::json!(vec![200; 8]),
        "new and grace tokens work"
    );
    assert_eq!(
        seen["keys_after_rotation"], 2,
        "the old key stays for its grace period"
    );
    assert_eq!(seen["copy_button"], true);
    let customer_id = seen["customer_id"].as_str().unwrap();

    // The changes made in the page are the CLI's too.
    let shown = tollgate.run_json(&["show", "--customer-id", customer_id]);
    assert_eq!(shown["customer"]["name"], "Console Co");
    assert_eq!(shown["customer"]["limits"]["daily_request_limit"], 500);
    assert_eq!(
        shown["customer"]["limits"]["monthly_token_limit"],
        5_000_000
    );
    let audit = tollgate.run_json(&["audit", "--customer-id", customer_id]);
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["create", "rotate", "limits", "assign-plan"],
        "{audit}"
    );

    // The console's numbers are `tollgate usage`'s and `tollgate invoice`'s.
    let usage = tollgate.run_json(&["usage", "--customer-id", customer_id]);
    let totals = &usage["totals"];
    assert_eq!(totals["requests"], 8);
    assert_eq!(seen["page_requests"], totals["requests"]);
    assert_eq!(seen["page_input_tokens"], totals["input_tokens"]);
    assert_eq!(seen["page_output_tokens"], totals["output_tokens"]);
    assert_eq!(totals["by_api"]["spec"], 8);
    assert_eq!(
        seen["page_by_api"], "Spec route 8",
        "every call used the spec's route"
    );
    let period = chrono::Utc::now().format("%Y-%m").to_string();
    let invoice =
        tollgate.run_json(&["invoice", "--customer-id", customer_id, "--period", &period]);
    assert_eq!(seen["invoice_total"], invoice["total"]);
    assert_eq!(invoice["total"], "0.08", "8 successful calls at $0.01");
    assert_eq!(
        seen["invoice_cost_shown"], true,
        "the operator sees the cost"
    );
    let tokens =
        totals["input_tokens"].as_u64().unwrap() + totals["output_tokens"].as_u64().unwrap();
    assert_eq!(seen["overview_month_calls"], 8, "the only customer");
    assert_eq!(seen["overview_today_calls"], 8);
    assert_eq!(seen["overview_month_tokens"], tokens);
    assert_eq!(
        seen["overview_month_revenue"],
        serde_json::json!([{"amount": "0.08", "currency": "USD"}])
    );
    assert_eq!(seen["overview_month_cost"]["currency"], "USD");
    assert_eq!(seen["list_daily_used"], 8);
    assert_eq!(seen["chart_series"], 3, "calls, errors and rejections");
    assert_eq!(
        seen["legend"],
        serde_json::json!(["Calls", "Errors", "Limit rejections", "Tokens"])
    );

    // A viewer reads only; another site and inline scripts get nothing.
    assert_eq!(seen["viewer_sees_new_customer_link"], false);
    assert_eq!(seen["viewer_write_controls"], serde_json::json!([]));
    assert_eq!(seen["viewer_limit_input_disabled"], true);
    assert_eq!(seen["viewer_write_status"], 403);
    assert!(
        seen["cross_site_answer"]
            .as_str()
            .unwrap()
            .contains("forbidden"),
        "{seen}"
    );
    assert_eq!(seen["cross_site_created"], 0);
    assert_eq!(
        seen["inline_script_ran"], false,
        "the CSP blocks inline scripts"
    );
    assert_eq!(seen["console_errors"], serde_json::json!([]), "{seen}");
    for name in ["overview", "customer", "create-form", "customers", "viewer"] {
        let png = std::fs::read(artifacts().join(format!("{name}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{name}.png is a screenshot");
    }
    assert!(server.terminate().success());
}

/// The page and its assets: served with a strict CSP, no framing, no sniffing; the API
/// refuses a change whose Origin is another site before looking at the credential.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_served_with_a_strict_policy_and_other_sites_cannot_change_anything() {
    let tollgate = Tollgate::new();
    let admin = tollgate.run_json(&["admin-token", "--name", "policy-ops"])["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let server = tollgate.serve(&["--upstream", "simulated"]);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let bare = client
        .get(format!("{}/admin", server.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 308);
    assert_eq!(bare.headers()["location"], "admin/");
    for (path, kind) in [
        ("/admin/", "text/html"),
        ("/admin/console.js", "text/javascript"),
        ("/admin/console.css", "text/css"),
        ("/admin/favicon.svg", "image/svg+xml"),
    ] {
        let answer = client
            .get(format!("{}{path}", server.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{path}");
        let headers = answer.headers();
        assert!(headers["content-type"].to_str().unwrap().starts_with(kind));
        let policy = headers["content-security-policy"].to_str().unwrap();
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
            "form-action 'self'",
        ] {
            assert!(policy.contains(directive), "{path}: {policy}");
        }
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["x-content-type-options"], "nosniff");
    }
    let page = client
        .get(format!("{}/admin/", server.base_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("<script>"), "no inline script");
    assert!(!page.contains("style="), "no inline style");
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no external asset"
    );

    let create = |origin: Option<&str>| {
        let mut request = client
            .post(format!("{}/admin/api/v1/customers", server.base_url))
            .bearer_auth(&admin)
            .json(&serde_json::json!({"name": "Origin Co", "email": "o@origin.example"}));
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    let forged = create(Some("https://evil.example")).await.unwrap();
    assert_eq!(forged.status(), 403, "even with the admin credential");
    let null_origin = create(Some("null")).await.unwrap();
    assert_eq!(null_origin.status(), 403);
    let own = server.base_url.clone();
    assert_eq!(
        create(Some(&own)).await.unwrap().status(),
        201,
        "the console's own origin"
    );
    assert_eq!(
        create(None).await.unwrap().status(),
        201,
        "API clients send no Origin"
    );
    let listed = tollgate.run_json(&["list"]);
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    assert!(server.terminate().success());
}
