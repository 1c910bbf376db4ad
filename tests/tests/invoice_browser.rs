//! The HTML invoice and usage report in a real browser: headless Chromium (Debian's `chromium`, installed by
//! `scripts/test.sh`) renders it, prints it to an A4 PDF, and the total it shows equals the
//! JSON invoice's total.
#![allow(clippy::too_many_lines)] // end-to-end scenarios read top to bottom
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use tests::harness::Tollgate;

fn chromium() -> String {
    std::env::var("TOLLGATE_TEST_CHROMIUM").unwrap_or_else(|_| {
        panic!(
            "TOLLGATE_TEST_CHROMIUM is not set: run the suite with `bash scripts/test.sh`, which installs Debian's chromium"
        )
    })
}

fn headless(arguments: &[&str], profile: &std::path::Path) -> std::process::Output {
    Command::new(chromium())
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(arguments)
        .output()
        .expect("chromium runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_html_invoice_renders_and_shows_the_json_total() {
    let tollgate = Tollgate::new();
    let (customer_id, token) = tollgate.create_customer("Browser <Co>", None);
    let work = tempfile::tempdir().unwrap();
    let plan = work.path().join("plan.toml");
    std::fs::write(
        &plan,
        "schema_version = 1\nid = \"browser\"\nversion = 1\nname = \"Browser\"\ncurrency = \"EUR\"\n\n[[charges]]\ntype = \"per_request\"\nunit_price = \"0.25\"\n",
    )
    .unwrap();
    let server = tollgate.serve(&["--upstream", "simulated"]);
    assert_eq!(server.spec_calls(&token, 3).await, vec![200; 3]);
    tollgate
        .wait_for_usage(&customer_id, |totals| totals["requests"] == 3)
        .await;
    assert!(server.terminate().success());

    let period = chrono::Utc::now().date_naive().format("%Y-%m").to_string();
    let plan_path = plan.to_string_lossy().into_owned();
    let json = tollgate.run_json(&[
        "invoice",
        "--customer-id",
        &customer_id,
        "--period",
        &period,
        "--plan",
        &plan_path,
    ]);
    // 3 requests × €0.25 = €0.75.
    assert_eq!(json["total"], "0.75");
    let html = work.path().join("invoice.html");
    let written = tollgate.run(&[
        "invoice",
        "--customer-id",
        &customer_id,
        "--period",
        &period,
        "--plan",
        &plan_path,
        "--format",
        "html",
        "--out",
        &html.to_string_lossy(),
    ]);
    assert!(
        written.status.success(),
        "{}",
        String::from_utf8_lossy(&written.stderr)
    );

    let profile = work.path().join("profile");
    let url = format!("file://{}", html.display());
    let dom = headless(&["--dump-dom", &url], &profile);
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom = String::from_utf8_lossy(&dom.stdout);
    let shown = dom
        .split("id=\"total\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("the rendered page has the total cell");
    assert_eq!(
        shown,
        json["total"].as_str().unwrap(),
        "the page shows the JSON total"
    );
    assert!(
        dom.contains("Browser &lt;Co&gt;"),
        "the name is shown, escaped"
    );

    let pdf = work.path().join("invoice.pdf");
    let printed = headless(
        &[
            &format!("--print-to-pdf={}", pdf.display()),
            "--no-pdf-header-footer",
            &url,
        ],
        &profile,
    );
    assert!(
        printed.status.success(),
        "{}",
        String::from_utf8_lossy(&printed.stderr)
    );
    let bytes = std::fs::read(&pdf).unwrap();
    assert!(bytes.starts_with(b"%PDF"), "a PDF was printed");
    // A4 is 595 × 842 points.
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.contains("/MediaBox [0 0 595") || text.contains("/MediaBox [0 0 594"),
        "printed on A4"
    );
    let artifacts = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("invoice-browser");
    std::fs::create_dir_all(&artifacts).unwrap();
    std::fs::copy(&pdf, artifacts.join("invoice.pdf")).unwrap();
    std::fs::copy(&html, artifacts.join("invoice.html")).unwrap();
}

/// The usage report in a real browser: every chart is present, a known number from the data
/// is shown, and a screenshot is kept as a test artifact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_usage_report_renders_every_chart_with_the_data() {
    let tollgate = Tollgate::new();
    let (alpha, alpha_token) = tollgate.create_customer("Alpha Reports", Some(4));
    let (beta, beta_token) = tollgate.create_customer("Beta Reports", None);
    let server = tollgate.serve(&["--upstream", "simulated"]);
    server.spec_calls(&alpha_token, 6).await;
    server.spec_calls(&beta_token, 3).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while tollgate.usage_today(&alpha)["totals"]["rejected"] != 2
        || tollgate.usage_today(&beta)["totals"]["requests"] != 3
    {
        assert!(
            std::time::Instant::now() < deadline,
            "metering never caught up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(server.terminate().success());

    let work = tempfile::tempdir().unwrap();
    let today = chrono::Utc::now().date_naive().to_string();
    let html = work.path().join("report.html");
    let csv = work.path().join("csv");
    let written = tollgate.run(&[
        "report",
        "--start-date",
        &today,
        "--end-date",
        &today,
        "--out",
        &html.to_string_lossy(),
        "--csv",
        &csv.to_string_lossy(),
    ]);
    assert!(
        written.status.success(),
        "{}",
        String::from_utf8_lossy(&written.stderr)
    );
    assert_eq!(
        std::fs::read_dir(&csv).unwrap().count(),
        7,
        "one CSV per view"
    );
    let trend = std::fs::read_to_string(csv.join("daily-trend.csv")).unwrap();
    assert!(
        trend.contains(&format!("{today},7,")),
        "4 + 3 admitted calls today: {trend}"
    );

    let profile = work.path().join("profile");
    let url = format!("file://{}", html.display());
    let dom = headless(&["--dump-dom", &url], &profile);
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom = String::from_utf8_lossy(&dom.stdout);
    for chart in [
        "calls-per-customer-per-day",
        "monthly-usage-per-customer",
        "daily-trend",
        "most-active-customers",
        "tokens-by-model",
        "calls-by-api",
        "error-and-rejection-rates",
    ] {
        assert!(
            dom.contains(&format!("<svg class=\"chart\" id=\"chart-{chart}\"")),
            "{chart}"
        );
        assert!(dom.contains(&format!("id=\"table-{chart}\"")), "{chart}");
    }
    // Alpha: 4 admitted, 2 rejected of 6: a rejection rate shown for today of 2 / 9 = 22.2%.
    assert!(dom.contains("<td>22.2</td>"), "the rejection rate is shown");
    assert!(
        dom.contains("<td>Alpha Reports</td><td>4</td>"),
        "the most active table"
    );

    let artifacts = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-browser");
    std::fs::create_dir_all(&artifacts).unwrap();
    let screenshot = artifacts.join("report.png");
    let shot = headless(
        &[
            &format!("--screenshot={}", screenshot.display()),
            "--window-size=800,2400",
            &url,
        ],
        &profile,
    );
    assert!(
        shot.status.success(),
        "{}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let png = std::fs::read(&screenshot).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a screenshot was taken");
}
