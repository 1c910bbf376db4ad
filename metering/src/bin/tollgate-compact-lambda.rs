//! The compaction Lambda, run daily at 01:00 UTC by EventBridge Scheduler: merges the Parquet
//! batch files of yesterday and of the day whose files have just settled (see
//! `metering::compact::scheduled_days`). An event `{"date": "YYYY-MM-DD"}` compacts that day
//! instead. Configuration comes from the same `TOLLGATE_*` environment variables as every
//! binary.

use std::time::Duration;

use chrono::NaiveDate;
use clap::Parser;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use metering::compact::{CompactionSettings, TARGET_FILE_BYTES, compact_day, scheduled_days};
use store::backend::BackendArgs;

/// Configuration, read from the environment.
#[derive(Debug, Parser)]
#[command(name = "tollgate-compact-lambda", version)]
struct Arguments {
    #[command(flatten)]
    backend: BackendArgs,
}

/// The days an invocation asks for: `{"date": "YYYY-MM-DD"}`, or the scheduled ones.
fn requested_days(
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

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::process::init_logging("info");
    let arguments = Arguments::parse();
    let settle_after = Duration::from_secs(arguments.backend.max_record_age_hours * 3600);
    let ports = arguments.backend.settings()?.open().await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let ports = ports.clone();
        async move {
            let settings = CompactionSettings {
                // The Kinesis event source mapping keeps no checkpoint here: only age settles.
                checkpoints: None,
                consumer_name: metering::ConsumerSettings::default().consumer_name,
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
