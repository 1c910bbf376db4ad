//! What Tollgate's AWS calls cost: every request attempt per (service, operation), and the
//! billable units each implies (Kinesis payload units, DynamoDB request units), counted in
//! one process-wide meter and exposed as Prometheus samples. `docs/cost.md` turns them into
//! dollars. The hooks that feed it are in `meter_hooks`.

use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex, MutexGuard};

use telemetry::metrics::Sample;

/// A Kinesis PUT payload unit (provisioned mode) covers this much of one record.
pub const KINESIS_PUT_PAYLOAD_UNIT_BYTES: u64 = 25 * 1024;
/// On-demand Kinesis bills each record's ingested bytes rounded up to this.
pub const KINESIS_ON_DEMAND_ROUNDING_BYTES: u64 = 1024;
/// A DynamoDB write request unit covers this much of one item.
pub const DYNAMO_WRITE_UNIT_BYTES: u64 = 1024;
/// A DynamoDB read request unit covers this much of one item (or of a query's page).
pub const DYNAMO_READ_UNIT_BYTES: u64 = 4 * 1024;

/// Billable unit names, the `unit` label.
pub mod unit {
    /// Kinesis provisioned PUT payload units: one per started 25 KiB of each record.
    pub const KINESIS_PUT_PAYLOAD_UNITS: &str = "put_payload_units";
    /// Kinesis on-demand ingested KiB: each record rounded up to 1 KiB.
    pub const KINESIS_INGESTED_KIB: &str = "ingested_kib";
    /// Kinesis records put (the raw archive's Firehose bills each rounded up to 5 KiB).
    pub const KINESIS_RECORDS_PUT: &str = "records_put";
    /// Kinesis bytes read by GetRecords (on-demand bills retrieval per GB).
    pub const KINESIS_RETRIEVED_BYTES: &str = "retrieved_bytes";
    /// DynamoDB write request units (on-demand).
    pub const DYNAMO_WRITE_REQUEST_UNITS: &str = "write_request_units";
    /// DynamoDB read request units (on-demand).
    pub const DYNAMO_READ_REQUEST_UNITS: &str = "read_request_units";
    /// Firehose Direct PUT ingested KiB: each record rounded up to 5 KiB.
    pub const FIREHOSE_INGESTED_KIB: &str = "ingested_kib";
}

/// How a DynamoDB read was made, which sets its price per 4 KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadConsistency {
    /// Half a unit per 4 KiB.
    Eventual,
    /// One unit per 4 KiB.
    Strong,
    /// Two units per 4 KiB (TransactGetItems).
    Transactional,
}

/// PUT payload units of one Kinesis record of `record_bytes` (data plus partition key).
pub fn kinesis_put_payload_units(record_bytes: u64) -> u64 {
    record_bytes.div_ceil(KINESIS_PUT_PAYLOAD_UNIT_BYTES).max(1)
}

/// On-demand billed KiB of one Kinesis record of `record_bytes`.
pub fn kinesis_on_demand_kib(record_bytes: u64) -> u64 {
    record_bytes
        .div_ceil(KINESIS_ON_DEMAND_ROUNDING_BYTES)
        .max(1)
}

/// Firehose billed KiB of one record: rounded up to a multiple of 5 KiB.
pub fn firehose_ingested_kib(record_bytes: u64) -> u64 {
    record_bytes.div_ceil(5 * 1024).max(1) * 5
}

/// Write request units of writing one item of `item_bytes`; doubled inside a transaction.
pub fn dynamo_write_units(item_bytes: u64, transactional: bool) -> u64 {
    let units = item_bytes.div_ceil(DYNAMO_WRITE_UNIT_BYTES).max(1);
    if transactional { units * 2 } else { units }
}

/// Read request units of reading `bytes` (one item, or the items of one query page).
pub fn dynamo_read_units(bytes: u64, consistency: ReadConsistency) -> f64 {
    let blocks = bytes.div_ceil(DYNAMO_READ_UNIT_BYTES).max(1) as f64;
    match consistency {
        ReadConsistency::Eventual => blocks / 2.0,
        ReadConsistency::Strong => blocks,
        ReadConsistency::Transactional => blocks * 2.0,
    }
}

/// A copy of the meter's totals.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MeterSnapshot {
    /// Request attempts per (service, operation), retries included.
    pub requests: BTreeMap<(String, String), u64>,
    /// Billable units per (service, operation, unit).
    pub units: BTreeMap<(String, String, String), f64>,
}

impl MeterSnapshot {
    /// Attempts of one operation (0 when never called).
    pub fn requests_of(&self, service: &str, operation: &str) -> u64 {
        self.requests
            .get(&(service.to_owned(), operation.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// Units of one kind over every operation of a service (0 when none).
    pub fn units_of(&self, service: &str, unit: &str) -> f64 {
        self.units
            .iter()
            .filter(|((of_service, _, of_unit), _)| of_service == service && of_unit == unit)
            .map(|(_, amount)| amount)
            .sum()
    }

    /// What happened between `earlier` and this snapshot.
    pub fn since(&self, earlier: &MeterSnapshot) -> MeterSnapshot {
        MeterSnapshot {
            requests: self
                .requests
                .iter()
                .map(|(key, count)| {
                    let before = earlier.requests.get(key).copied().unwrap_or(0);
                    (key.clone(), count.saturating_sub(before))
                })
                .filter(|(_, count)| *count > 0)
                .collect(),
            units: self
                .units
                .iter()
                .map(|(key, total)| {
                    (
                        key.clone(),
                        total - earlier.units.get(key).copied().unwrap_or(0.0),
                    )
                })
                .filter(|(_, total)| *total > 0.0)
                .collect(),
        }
    }
}

/// One counter and its sample name with labels, made once per label set.
#[derive(Debug)]
struct Counted<T> {
    sample_name: &'static str,
    value: T,
}

#[derive(Debug, Default)]
struct Totals {
    requests: BTreeMap<(String, String), Counted<u64>>,
    units: BTreeMap<(String, String, String), Counted<f64>>,
}

/// Counts AWS requests and billable units; cheap to update from any thread.
#[derive(Debug, Default)]
pub struct AwsMeter {
    totals: Mutex<Totals>,
}

static PROCESS_METER: LazyLock<AwsMeter> = LazyLock::new(AwsMeter::default);

/// The meter every AWS client of this process reports to.
pub fn process_meter() -> &'static AwsMeter {
    &PROCESS_METER
}

/// The sample name of a labelled counter, leaked once per label set: label sets are the
/// few (service, operation) and (service, unit) pairs Tollgate uses.
fn labelled_name(family: &str, labels: &[(&str, &str)]) -> &'static str {
    let rendered: Vec<String> = labels
        .iter()
        .map(|(label, value)| format!("{label}=\"{}\"", value.replace(['"', '\\', '\n'], "_")))
        .collect();
    Box::leak(format!("{family}{{{}}}", rendered.join(",")).into_boxed_str())
}

impl AwsMeter {
    fn totals(&self) -> MutexGuard<'_, Totals> {
        self.totals
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts one request attempt.
    pub fn count_request(&self, service: &str, operation: &str) {
        let mut totals = self.totals();
        let key = (service.to_owned(), operation.to_owned());
        totals
            .requests
            .entry(key)
            .or_insert_with(|| Counted {
                sample_name: labelled_name(
                    "tollgate_aws_requests_total",
                    &[("service", service), ("operation", operation)],
                ),
                value: 0,
            })
            .value += 1;
    }

    /// Adds billable units of one kind, caused by one operation.
    pub fn add_units(&self, service: &str, operation: &str, unit: &str, amount: f64) {
        if amount <= 0.0 {
            return;
        }
        let mut totals = self.totals();
        let key = (service.to_owned(), operation.to_owned(), unit.to_owned());
        totals
            .units
            .entry(key)
            .or_insert_with(|| Counted {
                sample_name: labelled_name(
                    "tollgate_aws_billable_units_total",
                    &[
                        ("service", service),
                        ("operation", operation),
                        ("unit", unit),
                    ],
                ),
                value: 0.0,
            })
            .value += amount;
    }

    /// The totals so far.
    pub fn snapshot(&self) -> MeterSnapshot {
        let totals = self.totals();
        MeterSnapshot {
            requests: totals
                .requests
                .iter()
                .map(|(key, counted)| (key.clone(), counted.value))
                .collect(),
            units: totals
                .units
                .iter()
                .map(|(key, counted)| (key.clone(), counted.value))
                .collect(),
        }
    }

    /// The totals as Prometheus samples: `tollgate_aws_requests_total{service,operation}`
    /// and `tollgate_aws_billable_units_total{service,operation,unit}`.
    pub fn samples(&self) -> Vec<Sample> {
        let totals = self.totals();
        let requests = totals.requests.values().map(|counted| Sample {
            name: counted.sample_name,
            help: "AWS request attempts (retries included), by service and operation.",
            counter: true,
            value: counted.value as f64,
        });
        let units = totals.units.values().map(|counted| Sample {
            name: counted.sample_name,
            help: "Billable units implied by the AWS requests made, by service and unit (docs/cost.md).",
            counter: true,
            value: counted.value,
        });
        requests.chain(units).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinesis_units_round_each_record_up() {
        assert_eq!(kinesis_put_payload_units(0), 1);
        assert_eq!(kinesis_put_payload_units(700), 1);
        assert_eq!(kinesis_put_payload_units(25 * 1024), 1);
        assert_eq!(kinesis_put_payload_units(25 * 1024 + 1), 2);
        assert_eq!(kinesis_on_demand_kib(700), 1);
        assert_eq!(kinesis_on_demand_kib(1025), 2);
        assert_eq!(firehose_ingested_kib(700), 5);
        assert_eq!(firehose_ingested_kib(5 * 1024 + 1), 10);
    }

    #[test]
    fn dynamo_writes_are_per_started_kib_and_double_in_transactions() {
        assert_eq!(dynamo_write_units(1, false), 1);
        assert_eq!(dynamo_write_units(1024, false), 1);
        assert_eq!(dynamo_write_units(1025, false), 2);
        assert_eq!(dynamo_write_units(300, true), 2);
        assert_eq!(dynamo_write_units(2049, true), 6);
    }

    #[test]
    fn dynamo_reads_are_per_started_4_kib_by_consistency() {
        assert_eq!(dynamo_read_units(0, ReadConsistency::Eventual), 0.5);
        assert_eq!(dynamo_read_units(4096, ReadConsistency::Strong), 1.0);
        assert_eq!(dynamo_read_units(4097, ReadConsistency::Strong), 2.0);
        assert_eq!(dynamo_read_units(4097, ReadConsistency::Eventual), 1.0);
        assert_eq!(dynamo_read_units(100, ReadConsistency::Transactional), 2.0);
    }

    #[test]
    fn the_meter_counts_per_label_set_and_renders_labels() {
        let meter = AwsMeter::default();
        meter.count_request("Kinesis", "PutRecords");
        meter.count_request("Kinesis", "PutRecords");
        meter.count_request("DynamoDB", "GetItem");
        meter.add_units("DynamoDB", "GetItem", unit::DYNAMO_READ_REQUEST_UNITS, 0.5);
        meter.add_units("DynamoDB", "GetItem", unit::DYNAMO_READ_REQUEST_UNITS, 1.0);
        meter.add_units("DynamoDB", "PutItem", unit::DYNAMO_WRITE_REQUEST_UNITS, 0.0);
        let snapshot = meter.snapshot();
        assert_eq!(snapshot.requests_of("Kinesis", "PutRecords"), 2);
        assert_eq!(snapshot.requests_of("Kinesis", "GetRecords"), 0);
        assert_eq!(snapshot.units_of("DynamoDB", "read_request_units"), 1.5);
        assert!(snapshot.units.len() == 1, "zero amounts add no series");

        meter.count_request("Kinesis", "PutRecords");
        let later = meter.snapshot().since(&snapshot);
        assert_eq!(later.requests_of("Kinesis", "PutRecords"), 1);
        assert_eq!(later.requests.len(), 1);
        assert!(later.units.is_empty());

        let text = telemetry::metrics::render(&meter.samples());
        assert!(text.contains(
            "tollgate_aws_requests_total{service=\"Kinesis\",operation=\"PutRecords\"} 3\n"
        ));
        assert!(text.contains(
            "tollgate_aws_billable_units_total{service=\"DynamoDB\",operation=\"GetItem\",unit=\"read_request_units\"} 1.5\n"
        ));
        assert_eq!(
            text.matches("# TYPE tollgate_aws_requests_total counter")
                .count(),
            1,
            "{text}"
        );
    }
}
