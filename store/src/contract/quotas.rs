//! The `Quotas` contract.

use std::sync::Arc;

use chrono::{Duration, Utc};
use schemas::quota::Level;

use super::unique;
use crate::quotas::{QuotaAdjustment, QuotaCharge, Quotas, Reservation};

fn charge(
    window: &str,
    requests: u64,
    tokens: u64,
    request_cap: Option<u64>,
    token_cap: Option<u64>,
) -> QuotaCharge {
    QuotaCharge {
        window: window.to_owned(),
        resets_at: Utc::now() + Duration::hours(1),
        requests,
        tokens,
        request_cap,
        token_cap,
    }
}

fn level(requests: u64, tokens: u64) -> Level {
    Level { requests, tokens }
}

/// Runs every scenario against `quotas`.
pub async fn run_all(quotas: &dyn Quotas) {
    grants_until_a_cap_and_reports_levels(quotas).await;
    a_refusal_applies_nothing(quotas).await;
    adjustments_settle_tokens_and_never_go_below_zero(quotas).await;
    a_returned_block_frees_its_requests_and_tokens(quotas).await;
    customers_and_windows_are_independent(quotas).await;
    concurrent_reservations_never_pass_the_cap(&[quotas]).await;
}

async fn grants_until_a_cap_and_reports_levels(quotas: &dyn Quotas) {
    let customer = unique("quota");
    let charges = [
        charge("day:2026-03-01", 1, 100, Some(2), Some(250)),
        charge("month:2026-03", 1, 100, Some(10), None),
    ];
    assert_eq!(
        quotas.reserve(&customer, &charges).await.unwrap(),
        Reservation::Granted(vec![level(1, 100), level(1, 100)])
    );
    assert_eq!(
        quotas.reserve(&customer, &charges).await.unwrap(),
        Reservation::Granted(vec![level(2, 200), level(2, 200)])
    );
    // The day's request cap (2) and token cap (250) are both reached now.
    assert_eq!(
        quotas.reserve(&customer, &charges).await.unwrap(),
        Reservation::Refused {
            refused: 0,
            levels: vec![level(2, 200), level(2, 200)]
        }
    );
    let tokens_only = [charge("day:2026-03-01", 0, 50, None, Some(250))];
    assert_eq!(
        quotas.reserve(&customer, &tokens_only).await.unwrap(),
        Reservation::Granted(vec![level(2, 250)]),
        "a charge that lands exactly on the cap fits"
    );
    assert_eq!(
        quotas
            .levels(
                &customer,
                &["day:2026-03-01".to_owned(), "never".to_owned()]
            )
            .await
            .unwrap(),
        vec![level(2, 250), Level::default()]
    );
}

async fn a_refusal_applies_nothing(quotas: &dyn Quotas) {
    let customer = unique("quota");
    let full_minute = [charge("minute:2026-03-01T10:00", 1, 0, Some(1), None)];
    assert!(matches!(
        quotas.reserve(&customer, &full_minute).await.unwrap(),
        Reservation::Granted(_)
    ));
    let both = [
        charge("day:2026-03-01", 1, 0, Some(100), None),
        charge("minute:2026-03-01T10:00", 1, 0, Some(1), None),
    ];
    assert_eq!(
        quotas.reserve(&customer, &both).await.unwrap(),
        Reservation::Refused {
            refused: 1,
            levels: vec![Level::default(), level(1, 0)]
        }
    );
    assert_eq!(
        quotas
            .levels(&customer, &["day:2026-03-01".to_owned()])
            .await
            .unwrap(),
        vec![Level::default()],
        "the day window must not keep the refused reservation"
    );
}

async fn adjustments_settle_tokens_and_never_go_below_zero(quotas: &dyn Quotas) {
    let customer = unique("quota");
    let window = "day:2026-03-02";
    quotas
        .reserve(&customer, &[charge(window, 1, 1_000, None, Some(5_000))])
        .await
        .unwrap();
    let adjust = |tokens| QuotaAdjustment {
        window: window.to_owned(),
        resets_at: Utc::now() + Duration::hours(1),
        requests: 0,
        tokens,
    };
    quotas.adjust(&customer, &[adjust(-700)]).await.unwrap();
    assert_eq!(
        quotas
            .levels(&customer, &[window.to_owned()])
            .await
            .unwrap(),
        vec![level(1, 300)]
    );
    quotas.adjust(&customer, &[adjust(50)]).await.unwrap();
    quotas.adjust(&customer, &[adjust(-10_000)]).await.unwrap();
    assert_eq!(
        quotas
            .levels(&customer, &[window.to_owned()])
            .await
            .unwrap(),
        vec![level(1, 0)]
    );
    // Settling a window the store has not seen yet counts the tokens.
    let other = QuotaAdjustment {
        window: "month:2026-03".to_owned(),
        resets_at: Utc::now() + Duration::hours(1),
        requests: 0,
        tokens: 42,
    };
    quotas.adjust(&customer, &[other]).await.unwrap();
    assert_eq!(
        quotas
            .levels(&customer, &["month:2026-03".to_owned()])
            .await
            .unwrap(),
        vec![level(0, 42)]
    );
}

/// A leased block charged as one reservation; its unspent part returned by one adjustment
/// of every window it charged, after which others can take it.
async fn a_returned_block_frees_its_requests_and_tokens(quotas: &dyn Quotas) {
    let customer = unique("quota");
    let (day, minute) = ("day:2026-03-03", "minute:2026-03-03T10:00");
    let block = [
        charge(day, 10, 1_000, Some(12), Some(1_200)),
        charge(minute, 10, 0, Some(10), None),
    ];
    assert_eq!(
        quotas.reserve(&customer, &block).await.unwrap(),
        Reservation::Granted(vec![level(10, 1_000), level(10, 0)])
    );
    // Spent 3 requests and 400 tokens of it: 7 and 600 go back, in one write.
    let back = |window: &str, tokens| QuotaAdjustment {
        window: window.to_owned(),
        resets_at: Utc::now() + Duration::hours(1),
        requests: -7,
        tokens,
    };
    quotas
        .adjust(&customer, &[back(day, -600), back(minute, 0)])
        .await
        .unwrap();
    assert_eq!(
        quotas
            .levels(&customer, &[day.to_owned(), minute.to_owned()])
            .await
            .unwrap(),
        vec![level(3, 400), level(3, 0)]
    );
    // The returned requests can be reserved again, up to the cap and no further.
    assert!(matches!(
        quotas
            .reserve(&customer, &[charge(day, 9, 800, Some(12), Some(1_200))])
            .await
            .unwrap(),
        Reservation::Granted(_)
    ));
    assert!(matches!(
        quotas
            .reserve(&customer, &[charge(day, 1, 0, Some(12), Some(1_200))])
            .await
            .unwrap(),
        Reservation::Refused { .. }
    ));
}

async fn customers_and_windows_are_independent(quotas: &dyn Quotas) {
    let first = unique("quota");
    let second = unique("quota");
    let cap_one = |window: &str| [charge(window, 1, 0, Some(1), None)];
    for (customer, window) in [
        (&first, "day:2026-03-03"),
        (&second, "day:2026-03-03"),
        (&first, "day:2026-03-04"),
    ] {
        assert!(
            matches!(
                quotas.reserve(customer, &cap_one(window)).await.unwrap(),
                Reservation::Granted(_)
            ),
            "{customer} {window}"
        );
    }
}

/// 64 concurrent reservations against a cap of 20, spread over the given handles to the
/// same store: exactly 20 are granted and the window holds exactly 20.
pub async fn concurrent_reservations_never_pass_the_cap(handles: &[&dyn Quotas]) {
    let customer = Arc::new(unique("quota"));
    let window = "minute:2026-03-05T12:00";
    let granted = futures::future::join_all((0..64).map(|index| {
        let quotas = handles[index % handles.len()];
        let customer = Arc::clone(&customer);
        async move {
            let charges = [
                charge(window, 1, 10, Some(20), None),
                charge("day:2026-03-05", 1, 10, None, Some(1_000)),
            ];
            matches!(
                quotas.reserve(&customer, &charges).await.unwrap(),
                Reservation::Granted(_)
            )
        }
    }))
    .await;
    assert_eq!(granted.iter().filter(|granted| **granted).count(), 20);
    assert_eq!(
        handles[0]
            .levels(&customer, &[window.to_owned(), "day:2026-03-05".to_owned()])
            .await
            .unwrap(),
        vec![level(20, 200), level(20, 200)]
    );
}
