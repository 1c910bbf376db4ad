//! The admission decision's tests: each cap at its edge, windows, the tightest limit, token reservations.
use super::*;

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn limits() -> Limits {
    Limits {
        daily_request_limit: Some(100),
        monthly_request_limit: Some(1_000),
        requests_per_minute: Some(10),
        daily_token_limit: Some(5_000),
        monthly_token_limit: Some(50_000),
        ..Limits::default()
    }
}

#[test]
fn windows_are_utc_calendar_windows() {
    let now = at("2026-12-31T23:59:30.250Z");
    let minute = WindowKind::Minute.containing(now);
    assert_eq!(minute.id, "minute:2026-12-31T23:59");
    assert_eq!(minute.resets_at, at("2027-01-01T00:00:00Z"));
    let day = WindowKind::Day.containing(now);
    assert_eq!(day.id, "day:2026-12-31");
    assert_eq!(day.starts_at, at("2026-12-31T00:00:00Z"));
    assert_eq!(day.resets_at, at("2027-01-01T00:00:00Z"));
    let month = WindowKind::Month.containing(now);
    assert_eq!(month.id, "month:2026-12");
    assert_eq!(month.starts_at, at("2026-12-01T00:00:00Z"));
    assert_eq!(month.resets_at, at("2027-01-01T00:00:00Z"));
    let february = WindowKind::Month.containing(at("2028-02-29T12:00:00Z"));
    assert_eq!(february.resets_at, at("2028-03-01T00:00:00Z"));
    assert_eq!(seconds_until(now, minute.resets_at), 30);
}

#[test]
#[allow(clippy::too_many_lines)] // one table of every cap at its edge
fn each_cap_refuses_at_its_edge() {
    let now = at("2026-11-29T10:15:00Z");
    let one = Cost {
        requests: 1,
        tokens: 0,
    };
    // (window levels, expected refusing limit)
    let cases = [
        (Level::default(), Level::default(), Level::default(), None),
        (
            Level {
                requests: 9,
                tokens: 0,
            },
            Level::default(),
            Level::default(),
            None,
        ),
        (
            Level {
                requests: 10,
                tokens: 0,
            },
            Level::default(),
            Level::default(),
            Some(LimitKind::RequestsPerMinute),
        ),
        (
            Level::default(),
            Level {
                requests: 100,
                tokens: 0,
            },
            Level::default(),
            Some(LimitKind::DailyRequests),
        ),
        (
            Level::default(),
            Level {
                requests: 1,
                tokens: 4_999,
            },
            Level::default(),
            None,
        ),
        (
            Level::default(),
            Level {
                requests: 1,
                tokens: 5_000,
            },
            Level::default(),
            Some(LimitKind::DailyTokens),
        ),
        (
            Level::default(),
            Level::default(),
            Level {
                requests: 1_000,
                tokens: 0,
            },
            Some(LimitKind::MonthlyRequests),
        ),
        (
            Level::default(),
            Level::default(),
            Level {
                requests: 1,
                tokens: 50_000,
            },
            Some(LimitKind::MonthlyTokens),
        ),
    ];
    for (minute, day, month, expected) in cases {
        let levels = |kind: WindowKind| match kind {
            WindowKind::Minute => minute,
            WindowKind::Day => day,
            WindowKind::Month => month,
        };
        let decision = evaluate(&limits(), now, levels, one);
        match (expected, decision) {
            (None, Decision::Admit(Some(_))) => {}
            (Some(kind), Decision::Reject(hit)) => {
                assert_eq!(hit.kind, kind);
                assert!(hit.message().contains(kind.describe()), "{}", hit.message());
            }
            (expected, decision) => panic!("expected {expected:?}, got {decision:?}"),
        }
    }
}

#[test]
fn the_refusal_names_the_limit_that_resets_last() {
    let now = at("2026-11-29T10:15:00Z");
    let full = Level {
        requests: 10_000,
        tokens: 0,
    };
    let decision = evaluate(
        &limits(),
        now,
        |_| full,
        Cost {
            requests: 1,
            tokens: 0,
        },
    );
    let Decision::Reject(hit) = decision else {
        panic!("should refuse")
    };
    assert_eq!(hit.kind, LimitKind::MonthlyRequests);
    assert_eq!(hit.resets_at, at("2026-12-01T00:00:00Z"));
    assert_eq!(hit.retry_after_seconds, 2 * 86_400 - 10 * 3_600 - 15 * 60);
    assert!(hit.message().contains("2026-12-01T00:00:00Z"));
}

#[test]
fn strict_token_reservations_must_fit_the_budget() {
    let now = at("2026-11-29T10:15:00Z");
    let only_tokens = Limits {
        daily_token_limit: Some(1_000),
        ..Limits::default()
    };
    let level = |tokens| {
        move |_| Level {
            requests: 0,
            tokens,
        }
    };
    let reserve = |tokens| Cost {
        requests: 1,
        tokens,
    };
    assert!(matches!(
        evaluate(&only_tokens, now, level(600), reserve(400)),
        Decision::Admit(Some(RateLimitStatus { remaining: 0, .. }))
    ));
    let Decision::Reject(hit) = evaluate(&only_tokens, now, level(601), reserve(400)) else {
        panic!("should refuse")
    };
    assert!(
        hit.message()
            .contains("601 of 1000 tokens used or reserved, and this request reserves 400"),
        "{}",
        hit.message()
    );
    // Eventual mode costs no tokens up front: it admits while any budget is left.
    assert!(matches!(
        evaluate(&only_tokens, now, level(999), reserve(0)),
        Decision::Admit(_)
    ));
    assert!(matches!(
        evaluate(&only_tokens, now, level(1_000), reserve(0)),
        Decision::Reject(_)
    ));
}

#[test]
fn the_tightest_limit_is_the_smallest_share_remaining() {
    let now = at("2026-11-29T10:15:00Z");
    let levels = |kind: WindowKind| match kind {
        WindowKind::Minute => Level {
            requests: 2,
            tokens: 0,
        },
        WindowKind::Day => Level {
            requests: 95,
            tokens: 100,
        },
        WindowKind::Month => Level {
            requests: 100,
            tokens: 100,
        },
    };
    let status = tightest(
        &limits(),
        now,
        levels,
        Cost {
            requests: 1,
            tokens: 0,
        },
    )
    .unwrap();
    assert_eq!(status.kind, LimitKind::DailyRequests);
    assert_eq!(status.limit, 100);
    assert_eq!(status.remaining, 4);
    assert_eq!(status.reset_seconds, 13 * 3_600 + 45 * 60);
    assert_eq!(
        tightest(&Limits::default(), now, levels, Cost::default()),
        None
    );
}

#[test]
fn max_tokens_is_read_in_every_model_familys_spelling() {
    let cases = [
        (r#"{"max_tokens": 300, "messages": []}"#, Some(300)),
        (r#"{"max_tokens_to_sample": 200, "prompt": "x"}"#, Some(200)),
        (r#"{"inferenceConfig": {"maxTokens": 150}}"#, Some(150)),
        (r#"{"max_gen_len": 512, "prompt": "x"}"#, Some(512)),
        (
            r#"{"textGenerationConfig": {"maxTokenCount": 64}}"#,
            Some(64),
        ),
        (r#"{"messages": []}"#, None),
        (r#"{"max_tokens": "many"}"#, None),
    ];
    for (body, expected) in cases {
        let value: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(requested_max_tokens(&value), expected, "{body}");
    }
    assert_eq!(token_reservation(300, Some(100), 4_096), 200);
    assert_eq!(token_reservation(0, None, 4_096), 4_096);
    assert_eq!(token_reservation(0, Some(0), 4_096), 1);
}

#[test]
fn set_cap_and_cap_agree_for_every_kind() {
    let mut limits = Limits::default();
    for (value, kind) in LimitKind::ALL.into_iter().enumerate() {
        kind.set_cap(&mut limits, Some(value as u64 + 1));
    }
    for (value, kind) in LimitKind::ALL.into_iter().enumerate() {
        assert_eq!(kind.cap(&limits), Some(value as u64 + 1));
        kind.set_cap(&mut limits, None);
        assert_eq!(kind.cap(&limits), None);
    }
    assert!(!has_caps(&limits));
}

#[test]
fn window_ids_are_written_as_chrono_formats_them() {
    // Stored ids (strict quota rows, counters) must not change with how they are written.
    let mut instants: Vec<DateTime<Utc>> = [
        "0001-01-01T00:00:00Z",
        "0999-09-09T09:09:09Z",
        "2026-01-02T03:04:05Z",
        "2026-12-31T23:59:59.999Z",
        "9999-12-31T23:59:59Z",
    ]
    .iter()
    .map(|text| at(text))
    .collect();
    let start = at("2026-02-27T22:58:00Z");
    instants.extend((0..5_000).map(|step| start + Duration::seconds(step * 977)));
    for now in instants {
        let day = now.date_naive();
        let minute_start = midnight(day)
            + Duration::hours(i64::from(now.hour()))
            + Duration::minutes(i64::from(now.minute()));
        assert_eq!(
            WindowKind::Minute.containing(now).id,
            format!("minute:{}", minute_start.format("%Y-%m-%dT%H:%M")),
            "{now}"
        );
        assert_eq!(
            WindowKind::Day.containing(now).id,
            format!("day:{day}"),
            "{now}"
        );
        assert_eq!(
            WindowKind::Month.containing(now).id,
            format!("month:{}", month_start(day).format("%Y-%m")),
            "{now}"
        );
    }
    // Past year 9999 chrono's own form is kept.
    let far = NaiveDate::from_ymd_opt(10_000, 3, 4).unwrap();
    assert_eq!(window_id("day", far, None, true), format!("day:{far}"));
}

#[test]
fn every_cap_set_is_reported_with_its_use_and_reset() {
    let now = at("2026-11-29T10:15:20Z");
    let levels = WindowLevels {
        minute: Level {
            requests: 2,
            tokens: 0,
        },
        day: Level {
            requests: 7,
            tokens: 900,
        },
        month: Level {
            requests: 40,
            tokens: 50_000,
        },
    };
    let limits = Limits {
        daily_request_limit: Some(5),
        monthly_token_limit: Some(100_000),
        requests_per_minute: Some(10),
        ..Limits::default()
    };
    let reported = statuses(&limits, now, &levels);
    let summary: Vec<(&str, u64, u64, u64)> = reported
        .iter()
        .map(|status| {
            (
                status.limit,
                status.limit_value,
                status.used,
                status.remaining,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("requests_per_minute", 10, 2, 8),
            ("daily_requests", 5, 7, 0),
            ("monthly_tokens", 100_000, 50_000, 50_000),
        ]
    );
    assert_eq!(reported[0].resets_at, at("2026-11-29T10:16:00Z"));
    assert_eq!(reported[1].resets_at, at("2026-11-30T00:00:00Z"));
    assert_eq!(reported[2].resets_at, at("2026-12-01T00:00:00Z"));
    assert!(statuses(&Limits::default(), now, &levels).is_empty());
}
