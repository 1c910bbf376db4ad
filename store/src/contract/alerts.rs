//! The `Alerts` contract.

use chrono::{Duration, Utc};
use schemas::alert::Alert;

use super::unique;
use crate::alerts::Alerts;

fn alert(customer_id: &str, window: &str) -> Alert {
    Alert {
        rule: "usage_80".into(),
        customer_id: customer_id.to_owned(),
        window: window.to_owned(),
        message: "80% of the daily request limit".into(),
        value: 80.0,
        threshold: 80.0,
    }
}

/// Runs every scenario.
pub async fn run_all(alerts: &dyn Alerts) {
    let customer = unique("alerted");
    let start = Utc::now() - Duration::seconds(1);
    let first = alert(&customer, "day:2026-03-01");
    assert!(alerts.record(&first, Utc::now()).await.unwrap(), "new");
    assert!(
        !alerts.record(&first, Utc::now()).await.unwrap(),
        "once per key"
    );
    let next_day = alert(&customer, "day:2026-03-02");
    // Concurrent raisers of one new key: exactly one wins.
    let raised =
        futures::future::join_all((0..8).map(|_| alerts.record(&next_day, Utc::now()))).await;
    assert_eq!(
        raised
            .into_iter()
            .filter(|won| *won.as_ref().unwrap())
            .count(),
        1
    );
    let listed: Vec<_> = alerts
        .since(start)
        .await
        .unwrap()
        .into_iter()
        .filter(|recorded| recorded.alert.customer_id == customer)
        .collect();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].alert, first);
    assert_eq!(listed[1].alert, next_day);
    assert!(
        alerts
            .since(Utc::now() + Duration::hours(1))
            .await
            .unwrap()
            .is_empty()
    );
}
