//! The metering Lambda's handler: a Kinesis event in, `batch_item_failures` out.
//!
//! Records arrive in shard order. They are applied in runs of [`LAMBDA_RUN_RECORDS`]; if a
//! run fails, its first record is reported as the batch item failure and the rest of that
//! shard is left for the retry, which then starts exactly at the first record not yet
//! known to be applied. Parquet is buffered over the invocation and written once per
//! shard at its end; if that write fails, the shard's first record is reported instead. Records that cannot be metered (undecodable, unknown customer) are
//! quarantined by the applier and never fail the batch.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_lambda_events::event::kinesis::{KinesisEvent, KinesisEventRecord};
use aws_lambda_events::event::streams::{KinesisBatchItemFailure, KinesisEventResponse};
use bytes::Bytes;
use clap::Args;
use lambda_runtime::{LambdaEvent, service_fn};
use store::LogEntry;
use store::backend::BackendArgs;

use crate::apply::{BatchApplier, MeteringRole, PassReport};
use crate::parquet_buffer::{FlushPolicy, ProjectionClock};

/// Parquet in a Lambda invocation: one file per shard and day per invocation (written out
/// at its end), or more when a batch holds more than this.
pub const LAMBDA_PARQUET_FLUSH: FlushPolicy = FlushPolicy {
    max_bytes: 128 * 1024 * 1024,
    max_age: std::time::Duration::from_secs(u32::MAX as u64),
};
use crate::settings::AlertArgs;

/// The metering Lambda's configuration, read from the same `TOLLGATE_*` variables as every
/// binary, the alert rules and destinations (`TOLLGATE_ALERT_*`) included.
#[derive(Debug, Clone, Args)]
pub struct LambdaArguments {
    #[command(flatten)]
    pub backend: BackendArgs,
    #[command(flatten)]
    pub alerts: AlertArgs,
    /// Which projections this function writes: `all`, or, with two functions on the stream,
    /// `counters` (short batches: limits stay current) and `parquet` (long batches: large
    /// files).
    #[arg(long, env = "TOLLGATE_METERING_ROLE", value_enum, default_value_t = MeteringRole::All)]
    pub role: MeteringRole,
}

/// Runs the metering Lambda: opens the ports once, then applies each Kinesis event the
/// event source mapping delivers and writes one CloudWatch embedded-metric line per event.
pub async fn run_lambda(arguments: LambdaArguments) -> Result<(), lambda_runtime::Error> {
    let settings = arguments.backend.settings()?;
    let ports = settings.open().await?;
    let alerts = arguments.alerts.engine(&ports, &settings).await?;
    let applier = Arc::new(
        BatchApplier::from_ports(&ports)
            .with_alert_engine(alerts)
            .with_role(arguments.role)
            .with_parquet_flush(LAMBDA_PARQUET_FLUSH, ProjectionClock::System),
    );
    lambda_runtime::run(service_fn(move |event: LambdaEvent<KinesisEvent>| {
        let applier = Arc::clone(&applier);
        async move {
            let (response, report) = handle_kinesis_event(&applier, event.payload).await;
            telemetry::process::announce(&embedded_metrics(
                &report,
                response.batch_item_failures.len(),
                chrono::Utc::now().timestamp_millis(),
            ));
            Ok::<_, lambda_runtime::Error>(response)
        }
    }))
    .await
}

/// Most records applied together; a failure retries from the start of its run. As large
/// as the largest batch Lambda delivers (`BatchSize` is at most 10,000), so a shard's part
/// of a batch is one run: a counter cell is written once per run, so the longer the run,
/// the fewer writes per event (`bench/simulate.sh`: runs of 100 cost $0.44 per million
/// events at issue 17's scale, whole batches of up to 2,500 in 5 s $0.08).
pub const LAMBDA_RUN_RECORDS: usize = 10_000;

/// The shard a record came from (`eventID` is `shardId-…:sequenceNumber`).
pub fn shard_of(record: &KinesisEventRecord) -> String {
    record
        .event_id
        .as_deref()
        .and_then(|event_id| event_id.split_once(':'))
        .map(|(shard, _)| shard.to_owned())
        .unwrap_or_else(|| "unknown-shard".to_owned())
}

fn entry_of(shard: &str, record: &KinesisEventRecord) -> LogEntry {
    LogEntry {
        partition: shard.to_owned(),
        position: record.kinesis.sequence_number.clone(),
        partition_key: record.kinesis.partition_key.clone(),
        data: Bytes::from(record.kinesis.data.0.clone()),
    }
}

/// Applies a Kinesis event; returns the records Lambda must retry (at most one per shard).
pub async fn handle_kinesis_event(
    applier: &BatchApplier,
    event: KinesisEvent,
) -> (KinesisEventResponse, PassReport) {
    let mut shards: BTreeMap<String, Vec<LogEntry>> = BTreeMap::new();
    for record in &event.records {
        let shard = shard_of(record);
        let entry = entry_of(&shard, record);
        shards.entry(shard).or_default().push(entry);
    }
    let mut response = KinesisEventResponse::default();
    let mut total = PassReport::default();
    for (shard, entries) in shards {
        let mut failed_at = None;
        for run in entries.chunks(LAMBDA_RUN_RECORDS) {
            match applier.apply_entries(&shard, run).await {
                Ok(report) => total.add(&report),
                Err(error) => {
                    let first = run.first().map(|entry| entry.position.clone());
                    tracing::warn!(shard, first_position = ?first, error = %error, "metering run failed; Lambda will retry from its first record");
                    failed_at = first;
                    break;
                }
            }
        }
        // Parquet is written once per shard per invocation; if that fails, the whole
        // shard's part of the batch comes again (the counters skip what they hold).
        if let Err(error) = applier.flush_parquet_partition(&shard).await {
            let first = entries.first().map(|entry| entry.position.clone());
            tracing::warn!(shard, first_position = ?first, error = %error, "parquet write failed; Lambda will retry the shard's records");
            failed_at = first;
        }
        if let Some(position) = failed_at {
            let mut failure = KinesisBatchItemFailure::default();
            failure.item_identifier = Some(position);
            response.batch_item_failures.push(failure);
        }
    }
    (response, total)
}

/// One invocation's numbers as a CloudWatch embedded-metric-format line (namespace
/// `Tollgate`): Lambda writes stdout to CloudWatch Logs, which turns it into metrics without
/// an API call, so `RecordsQuarantined` can be alarmed on.
pub fn embedded_metrics(report: &PassReport, failures: usize, at_millis: i64) -> String {
    let metric = |name: &str| serde_json::json!({ "Name": name, "Unit": "Count" });
    serde_json::json!({
        "_aws": {
            "Timestamp": at_millis,
            "CloudWatchMetrics": [{
                "Namespace": "Tollgate",
                "Dimensions": [[]],
                "Metrics": [
                    metric("RecordsRead"),
                    metric("EventsCounted"),
                    metric("DuplicatesSkipped"),
                    metric("RecordsQuarantined"),
                    metric("BatchItemFailures"),
                ],
            }],
        },
        "RecordsRead": report.records_read,
        "EventsCounted": report.events_counted,
        "DuplicatesSkipped": report.duplicates_skipped,
        "RecordsQuarantined": report.records_quarantined,
        "BatchItemFailures": failures,
    })
    .to_string()
}

#[cfg(test)]
mod metric_tests {
    use super::*;

    /// The values `infra/template.yaml` sets in `TOLLGATE_METERING_ROLE` are the ones the
    /// function accepts (a value it refused would stop the function at start).
    #[test]
    fn the_template_roles_parse_and_a_wrong_one_is_named() {
        use clap::Parser;
        #[derive(Parser)]
        struct Function {
            #[command(flatten)]
            lambda: LambdaArguments,
        }
        for (value, role) in [
            ("all", MeteringRole::All),
            ("counters", MeteringRole::Counters),
            ("parquet", MeteringRole::Parquet),
        ] {
            let parsed = Function::try_parse_from(["metering", "--role", value]).unwrap();
            assert_eq!(parsed.lambda.role, role);
        }
        let default = Function::try_parse_from(["metering"]).unwrap();
        assert_eq!(default.lambda.role, MeteringRole::All);
        let wrong = Function::try_parse_from(["metering", "--role", "everything"])
            .err()
            .unwrap()
            .to_string();
        assert!(
            wrong.contains("counters") && wrong.contains("parquet"),
            "{wrong}"
        );
    }

    #[test]
    fn the_metric_line_is_cloudwatch_embedded_metric_format() {
        let report = PassReport {
            records_read: 10,
            events_counted: 8,
            duplicates_skipped: 1,
            records_quarantined: 1,
        };
        let line: serde_json::Value =
            serde_json::from_str(&embedded_metrics(&report, 0, 1_700_000_000_000)).unwrap();
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Tollgate");
        let names: Vec<&str> = directive["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|metric| metric["Name"].as_str().unwrap())
            .collect();
        for name in &names {
            assert!(line.get(*name).is_some(), "{name} has a value");
        }
        assert_eq!(line["RecordsQuarantined"], 1);
        assert_eq!(line["_aws"]["Timestamp"], 1_700_000_000_000i64);
    }
}
