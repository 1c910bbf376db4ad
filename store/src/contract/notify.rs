//! The `Notifier` contract suite, and a local HTTP receiver to observe deliveries with.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use chrono::{TimeZone, Utc};
use schemas::alert::{Alert, RecordedAlert};

use super::unique;
use crate::notify::Notifier;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl ReceivedRequest {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    }
}

/// An HTTP server on 127.0.0.1 that records every `POST`. `POST /status/NNN` answers NNN.
#[derive(Debug, Clone)]
pub struct Receiver {
    address: std::net::SocketAddr,
    received: Arc<Mutex<Vec<ReceivedRequest>>>,
}

impl Receiver {
    /// Starts a receiver on a free port.
    pub async fn start() -> Self {
        let received: Arc<Mutex<Vec<ReceivedRequest>>> = Arc::default();
        let store = Arc::clone(&received);
        let record = move |path: String, headers: HeaderMap, body: Bytes| {
            store.lock().unwrap().push(ReceivedRequest {
                path,
                headers,
                body,
            });
        };
        let record_any = record.clone();
        let router = axum::Router::new()
            .route(
                "/status/{code}",
                axum::routing::post(
                    move |Path(code): Path<u16>, headers: HeaderMap, body: Bytes| async move {
                        record(format!("/status/{code}"), headers, body);
                        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
                    },
                ),
            )
            .fallback(axum::routing::post(
                move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| async move {
                    record_any(uri.path().to_owned(), headers, body);
                    "ok"
                },
            ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self { address, received }
    }

    /// The URL of `path` on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Everything received so far, in arrival order.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.received.lock().unwrap().clone()
    }
}

/// An alert with a unique customer.
pub fn sample_alert(tag: &str) -> RecordedAlert {
    RecordedAlert {
        raised_at: Utc.with_ymd_and_hms(2026, 11, 29, 10, 15, 0).unwrap(),
        alert: Alert {
            rule: "usage_80".into(),
            customer_id: unique(tag),
            window: "daily_requests:day:2026-11-29".into(),
            message: "80% of the daily request limit".into(),
            value: 80.0,
            threshold: 80.0,
        },
    }
}

/// Runs every scenario. `received` returns the alerts the destination has received so far,
/// decoded from whatever envelope the backend wraps them in.
pub async fn run_all<F, Fut>(notifier: &dyn Notifier, received: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Vec<RecordedAlert>>,
{
    assert!(!notifier.describe().is_empty());
    let first = sample_alert("first");
    let second = sample_alert("second");
    notifier.notify(&first).await.unwrap();
    notifier.notify(&second).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let alerts = received().await;
        let ours: Vec<&RecordedAlert> = alerts
            .iter()
            .filter(|alert| {
                alert.alert.key() == first.alert.key() || alert.alert.key() == second.alert.key()
            })
            .collect();
        if ours.len() >= 2 {
            assert_eq!(
                ours,
                vec![&first, &second],
                "each alert arrives once, whole, in order"
            );
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the destination did not receive both alerts: {alerts:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
