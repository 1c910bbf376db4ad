//! What the compaction Lambda (`tollgate-compact-lambda`) runs, hourly from EventBridge
//! Scheduler: merge the Parquet batch files of today and yesterday, and at 01:00 UTC of the
//! day whose files have just settled by age ([`crate::compact::scheduled_days`]). An event
//! `{"date": "YYYY-MM-DD"}` compacts that day instead.

use std::time::Duration;

use chrono::NaiveDate;
use clap::Args;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use store::backend::BackendArgs;

use crate::compact::{CompactionSettings, TARGET_FILE_BYTES, compact_day, scheduled_days};

/// The compaction Lambda's configuration, read from the environment.
#[derive(Debug, Clone, Args)]
pub struct CompactLambdaArguments {
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// The days an invocation asks for: `{"date": "YYYY-MM-DD"}`, or the scheduled ones.
pub fn requested_days(
    event: &serde_json::Value,
    settle_after: Duration,
) -> Result<Vec<NaiveDate>, Error> {
    match event.get("date") {
        None => Ok(scheduled_days(chrono::Utc::now(), settle_after)),
        Some(serde_json::Value::String(text)) => text
            .parse::<NaiveDate>()
            .map(|day| vec![day])
            .map_err(|_| format!("\"date\" {text:?} is not a date; give YYYY-MM-DD").into()),
        Some(other) => Err(format!("\"date\" must be a YYYY-MM-DD string, not {other}").into()),
    }
}

/// Runs the compaction Lambda: each invocation compacts the requested days and answers
/// with one report per day.
pub async fn run_compact_lambda(arguments: CompactLambdaArguments) -> Result<(), Error> {
    let settle_after = Duration::from_secs(arguments.backend.max_record_age_hours * 3600);
    let ports = arguments.backend.settings()?.open().await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let ports = ports.clone();
        async move {
            let settings = CompactionSettings {
                settle_after,
                target_file_bytes: TARGET_FILE_BYTES,
            };
            let mut reports = Vec::new();
            for day in requested_days(&event.payload, settle_after)? {
                let report = compact_day(&ports.objects, day, &settings).await?;
                tracing::info!(?report, "compacted");
                reports.push(report);
            }
            Ok::<_, Error>(serde_json::to_value(reports)?)
        }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invocation_names_one_day_or_gets_the_scheduled_ones() {
        let settle = Duration::from_secs(168 * 3600);
        let named = requested_days(&serde_json::json!({"date": "2026-11-30"}), settle).unwrap();
        assert_eq!(named, vec![NaiveDate::from_ymd_opt(2026, 11, 30).unwrap()]);
        let scheduled = requested_days(&serde_json::json!({}), settle).unwrap();
        assert_eq!(scheduled, scheduled_days(chrono::Utc::now(), settle));
        let not_a_date = requested_days(&serde_json::json!({"date": "yesterday"}), settle)
            .unwrap_err()
            .to_string();
        assert!(
            not_a_date.contains("is not a date; give YYYY-MM-DD"),
            "{not_a_date}"
        );
        let not_text = requested_days(&serde_json::json!({"date": 20261130}), settle)
            .unwrap_err()
            .to_string();
        assert!(
            not_text.contains("must be a YYYY-MM-DD string"),
            "{not_text}"
        );
    }
}
