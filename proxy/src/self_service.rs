//! `GET /prod/usage` (also `/usage`): a customer's own usage, with its own token. Today
//! and this month (UTC) per model, each limit with what is used and what remains, and the
//! customer's keys with their last use (never a token). Answers carry the same
//! `RateLimit-*` headers as model calls.

use axum::Extension;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use schemas::quota::{LimitStatus, month_start};
use schemas::{KeyStatus, UsageCounts};
use serde::Serialize;
use std::collections::BTreeMap;

use crate::call::Authenticated;
use crate::call::response_headers::{with_rate_limit, with_request_id};
use crate::error_response::ApiError;
use crate::state::ProxyState;

/// Usage over one window, per model and in total.
#[derive(Debug, Default, Serialize)]
struct WindowUsage {
    start_date: NaiveDate,
    end_date: NaiveDate,
    requests: u64,
    input_tokens: u64,
    output_tokens: u64,
    total_tokens: u64,
    by_model: BTreeMap<String, ModelUsage>,
}

#[derive(Debug, Default, Serialize)]
struct ModelUsage {
    requests: u64,
    input_tokens: u64,
    output_tokens: u64,
}

impl WindowUsage {
    fn starting(start_date: NaiveDate, end_date: NaiveDate) -> Self {
        Self {
            start_date,
            end_date,
            ..Self::default()
        }
    }

    fn add(&mut self, model_id: &str, counts: &UsageCounts) {
        self.requests += counts.requests;
        self.input_tokens += counts.input_tokens;
        self.output_tokens += counts.output_tokens;
        self.total_tokens += counts.input_tokens + counts.output_tokens;
        let model = self.by_model.entry(model_id.to_owned()).or_default();
        model.requests += counts.requests;
        model.input_tokens += counts.input_tokens;
        model.output_tokens += counts.output_tokens;
    }
}

#[derive(Debug, Serialize)]
struct KeyUse {
    key_id: String,
    state: &'static str,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize)]
struct SelfUsage {
    customer_id: String,
    name: String,
    today: WindowUsage,
    month: WindowUsage,
    limits: Vec<LimitStatus>,
    keys: Vec<KeyUse>,
    /// The usage counted so far: calls of the last second or so may not be in it yet.
    as_of: DateTime<Utc>,
}

fn key_state(key: &schemas::ApiKey, now: DateTime<Utc>) -> &'static str {
    if key.status == KeyStatus::Revoked {
        "revoked"
    } else if key.is_usable_at(now) {
        "active"
    } else {
        "expired"
    }
}

/// The handler.
pub async fn own_usage(
    State(state): State<ProxyState>,
    Extension(call): Extension<Authenticated>,
) -> Response {
    let request_id = call.start.request_id.clone();
    let customer = &call.caller.customer;
    let now = Utc::now();
    let today = now.date_naive();
    let first = month_start(today);
    let days = match state
        .counters
        .read_daily(&customer.customer_id, first, today)
        .await
    {
        Ok(days) => days,
        Err(error) => {
            tracing::warn!(error = %error, "usage: the counters cannot be read");
            return with_request_id(
                ApiError::unavailable("usage cannot be read right now; retry shortly")
                    .into_response(),
                &request_id,
            );
        }
    };
    let mut today_usage = WindowUsage::starting(today, today);
    let mut month_usage = WindowUsage::starting(first, today);
    for day in &days {
        month_usage.add(&day.model_id, &day.counts);
        if day.day == today {
            today_usage.add(&day.model_id, &day.counts);
        }
    }
    let keys = match state.registry.keys_of_customer(&customer.customer_id).await {
        Ok(keys) => keys,
        Err(error) => {
            tracing::warn!(error = %error, "usage: the keys cannot be read");
            return with_request_id(
                ApiError::unavailable("usage cannot be read right now; retry shortly")
                    .into_response(),
                &request_id,
            );
        }
    };
    let (limits, rate) = state.limiter.limit_statuses(customer, now).await;
    let answer = SelfUsage {
        customer_id: customer.customer_id.clone(),
        name: customer.name.clone(),
        today: today_usage,
        month: month_usage,
        limits,
        keys: keys
            .iter()
            .map(|key| KeyUse {
                key_id: key.key_id.clone(),
                state: key_state(key, now),
                created_at: key.created_at,
                expires_at: key.expires_at,
                last_used_at: key.last_used_at,
            })
            .collect(),
        as_of: now,
    };
    let response = axum::Json(answer).into_response();
    with_rate_limit(with_request_id(response, &request_id), rate)
}
