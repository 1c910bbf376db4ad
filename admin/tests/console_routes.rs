//! The routes the console opens with, in process on the memory store: who is signed in,
//! the overview's figures, the chart series, the list with usage against limits, and
//! changes sent from another site's page.
#![allow(clippy::too_many_lines)] // scenarios read top to bottom
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use admin::PREFIX;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};

use common::{api, calls, cent_plan, error_code, priced};

#[tokio::test]
async fn the_session_names_the_credential_and_its_role() {
    let api = api().await;
    let admin = api.admin(Method::GET, "/session", None).await;
    assert_eq!(admin.status, StatusCode::OK);
    assert_eq!(
        admin.json,
        json!({"name": "ops", "role": "admin", "may_write": true})
    );
    let viewer = api
        .call(Some(&api.viewer.clone()), Method::GET, "/session", None)
        .await;
    assert_eq!(
        viewer.json,
        json!({"name": "support", "role": "viewer", "may_write": false})
    );
    let nobody = api.call(None, Method::GET, "/session", None).await;
    assert_eq!(nobody.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_overview_shows_todays_and_the_months_figures_worked_by_hand() {
    let api = priced(&api().await);
    let customer = api.create("Busy").await;
    let id = customer["customer_id"].as_str().unwrap().to_owned();
    api.create("Idle").await;
    calls(&api, &id, 3).await;
    cent_plan(&api, &id).await;

    let overview = api.admin(Method::GET, "/overview", None).await;
    assert_eq!(overview.status, StatusCode::OK, "{}", overview.json);
    let figures = &overview.json["month_to_date"];
    assert_eq!(figures["calls"], 3);
    assert_eq!(figures["tokens"], 1_800_000);
    assert_eq!(figures["active_customers"], 1, "Idle made no call");
    // 3 calls at $0.01; 1,500,000 × $2 + 300,000 × $10 per million = $6.00 of cost.
    assert_eq!(
        figures["revenue"],
        json!([{"amount": "0.03", "currency": "USD"}])
    );
    assert_eq!(
        figures["cost"],
        json!({"amount": "6.00", "currency": "USD"})
    );
    assert_eq!(
        figures["gross_margin"],
        json!({"amount": "-5.97", "currency": "USD"})
    );
    assert_eq!(figures["error_rate_percent"], "0.0");
    assert_eq!(overview.json["today_figures"]["calls"], 3);
    let rows = overview.json["customers"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["name"], "Busy");
    assert_eq!(rows[0]["gross_margin"]["amount"], "-5.97");

    let viewer = api
        .call(Some(&api.viewer.clone()), Method::GET, "/overview", None)
        .await;
    assert_eq!(viewer.status, StatusCode::OK, "a viewer reads the figures");
    let unknown = api.admin(Method::GET, "/overview?range=7d", None).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(unknown.json["error"]["field"], "range");

    // Without prices: cost and margin are absent, never zero.
    let plain = common::api().await;
    let bare = plain.admin(Method::GET, "/overview", None).await;
    assert_eq!(bare.json["month_to_date"]["cost"], Value::Null);
    assert_eq!(bare.json["prices_configured"], false);
}

#[tokio::test]
async fn series_cover_every_bucket_and_refuse_mixed_ranges() {
    let api = priced(&api().await);
    let customer = api.create("Charted").await;
    let id = customer["customer_id"].as_str().unwrap().to_owned();
    calls(&api, &id, 2).await;
    let hours = api
        .admin(Method::GET, "/series?granularity=hour&hours=24", None)
        .await;
    assert_eq!(hours.status, StatusCode::OK, "{}", hours.json);
    let points = hours.json["points"].as_array().unwrap();
    assert_eq!(points.len(), 24);
    assert!(points.iter().all(|point| point["cost"].is_null()));
    let today = chrono::Utc::now().date_naive();
    let start = today - chrono::Days::new(6);
    let days = api
        .admin(
            Method::GET,
            &format!(
                "/series?granularity=day&start_date={start}&end_date={today}&customer_id={id}"
            ),
            None,
        )
        .await;
    assert_eq!(days.status, StatusCode::OK, "{}", days.json);
    let points = days.json["points"].as_array().unwrap();
    assert_eq!(points.len(), 7);
    let last = points.last().unwrap();
    assert_eq!(last["calls"], 2);
    // 1,000,000 × $2 + 200,000 × $10 per million.
    assert_eq!(last["cost"], "4.00");
    assert_eq!(days.json["currency"], "USD");
    let default = api.admin(Method::GET, "/series", None).await;
    assert_eq!(default.json["points"].as_array().unwrap().len(), 30);

    for (query, field) in [
        ("granularity=hour&start_date=2026-11-01", "start_date"),
        ("granularity=day&hours=5", "hours"),
        ("granularity=hour&hours=0", "hours"),
        ("granularity=minute", "granularity"),
        ("customer_id=..", "customer_id"),
    ] {
        let refused = api
            .admin(Method::GET, &format!("/series?{query}"), None)
            .await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            refused.json
        );
        assert_eq!(refused.json["error"]["field"], field, "{query}");
    }
    let unknown = api
        .admin(
            Method::GET,
            "/series?customer_id=01900000-0000-7000-8000-000000000000",
            None,
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_list_carries_usage_against_limits_when_asked() {
    let api = api().await;
    let customer = api.create("Capped").await;
    let id = customer["customer_id"].as_str().unwrap().to_owned();
    calls(&api, &id, 4).await;
    let plain = api.admin(Method::GET, "/customers", None).await;
    assert!(plain.json.get("limit_usage").is_none());
    let listed = api
        .admin(Method::GET, "/customers?include=limit_usage", None)
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.json);
    let bars = listed.json["limit_usage"][&id].as_array().unwrap();
    assert_eq!(bars.len(), 1, "the daily limit of 100 the helper sets");
    assert_eq!(bars[0]["limit"], "daily_requests");
    assert_eq!(bars[0]["used"], 4);
    assert_eq!(bars[0]["remaining"], 96);
    let wrong = api
        .admin(Method::GET, "/customers?include=everything", None)
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&wrong), "validation");
}

#[tokio::test]
async fn changes_from_another_sites_page_are_refused_and_the_servers_own_origin_is_not() {
    let api = api().await;
    let post = |origin: &'static str, host: Option<&'static str>| {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(format!("{PREFIX}/customers"))
            .header("authorization", format!("Bearer {}", api.admin))
            .header("content-type", "application/json")
            .header("origin", origin);
        if let Some(host) = host {
            request = request.header("host", host);
        }
        request
            .body(Body::from(
                json!({"name": "O", "email": "o@example.com"}).to_string(),
            ))
            .unwrap()
    };
    let other = api
        .send(post("https://evil.example", Some("tollgate.example")))
        .await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    assert!(
        other.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("another site")
    );
    let same = api
        .send(post("https://tollgate.example", Some("tollgate.example")))
        .await;
    assert_eq!(same.status, StatusCode::CREATED, "{}", same.json);
    let no_host = api.send(post("https://tollgate.example", None)).await;
    assert_eq!(no_host.status, StatusCode::FORBIDDEN, "nothing to match");
    // Reads are not concerned: a cross-site read gets no CORS permission anyway.
    let read = api
        .send(
            Request::builder()
                .uri(format!("{PREFIX}/session"))
                .header("authorization", format!("Bearer {}", api.admin))
                .header("origin", "https://evil.example")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(read.status, StatusCode::OK);
}
