//! The counter projection's records, and how events aggregate into them.
//!
//! Counters are kept per (customer, UTC day, model). A rejected call counts in
//! `rejected` only; every admitted call counts in `requests`, and failed ones also in
//! `errors`. Admitted calls also count by the API the customer called (`by_api`); events
//! written before the API was recorded count in `requests` only.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::name::ByAddress;
use crate::usage_event::{ApiSurface, UsageEvent};

/// The cells of one batch, summed under keys borrowed from its events: foldhash, as
/// these maps live for one call and their keys are short strings (SipHash, std's
/// default, was a tenth of the in-memory counters' time).
type BatchCells<K> = HashMap<K, UsageCounts, foldhash::fast::RandomState>;

/// Admitted calls by the API the customer called.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiRequests {
    pub bedrock: u64,
    pub spec: u64,
    pub anthropic: u64,
    pub openai: u64,
}

impl ApiRequests {
    /// The calls through one API.
    pub fn of(&self, surface: ApiSurface) -> u64 {
        match surface {
            ApiSurface::Bedrock => self.bedrock,
            ApiSurface::Spec => self.spec,
            ApiSurface::Anthropic => self.anthropic,
            ApiSurface::OpenAi => self.openai,
        }
    }

    fn slot(&mut self, surface: ApiSurface) -> &mut u64 {
        match surface {
            ApiSurface::Bedrock => &mut self.bedrock,
            ApiSurface::Spec => &mut self.spec,
            ApiSurface::Anthropic => &mut self.anthropic,
            ApiSurface::OpenAi => &mut self.openai,
        }
    }

    /// The calls through every API.
    pub fn total(&self) -> u64 {
        ApiSurface::ALL
            .into_iter()
            .fold(0, |total, surface| total.saturating_add(self.of(surface)))
    }
}

/// Additive counts for one counter cell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageCounts {
    /// Admitted calls (every outcome but `rejected_limit`).
    pub requests: u64,
    /// Calls refused for limits.
    pub rejected: u64,
    /// Admitted calls that ended in a client or upstream error.
    pub errors: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    /// Admitted calls by API; their sum falls short of `requests` by the calls whose events
    /// predate the API being recorded.
    #[serde(default)]
    pub by_api: ApiRequests,
}

/// The stored name of every count, in [`UsageCounts::named`] order: the column and
/// attribute names of every counter store.
pub const COUNT_NAMES: [&str; 11] = [
    "requests",
    "rejected",
    "errors",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "requests_bedrock",
    "requests_spec",
    "requests_anthropic",
    "requests_openai",
];

impl UsageCounts {
    /// The increments one event contributes.
    pub fn of_event(event: &UsageEvent) -> Self {
        let admitted = event.outcome.was_admitted();
        let mut by_api = ApiRequests::default();
        if let Some(surface) = event.api {
            *by_api.slot(surface) = u64::from(admitted);
        }
        Self {
            requests: u64::from(admitted),
            rejected: u64::from(!admitted),
            errors: u64::from(event.outcome.is_error()),
            input_tokens: event.input_tokens,
            output_tokens: event.output_tokens,
            cache_read_tokens: event.cache_read_tokens,
            cache_write_tokens: event.cache_write_tokens,
            by_api,
        }
    }

    /// Adds another set of counts, saturating. Field by field: it runs once per event in
    /// every aggregation.
    pub fn add(&mut self, other: &Self) {
        self.requests = self.requests.saturating_add(other.requests);
        self.rejected = self.rejected.saturating_add(other.rejected);
        self.errors = self.errors.saturating_add(other.errors);
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
        self.cache_read_tokens = self
            .cache_read_tokens
            .saturating_add(other.cache_read_tokens);
        self.cache_write_tokens = self
            .cache_write_tokens
            .saturating_add(other.cache_write_tokens);
        let (mine, theirs) = (&mut self.by_api, &other.by_api);
        mine.bedrock = mine.bedrock.saturating_add(theirs.bedrock);
        mine.spec = mine.spec.saturating_add(theirs.spec);
        mine.anthropic = mine.anthropic.saturating_add(theirs.anthropic);
        mine.openai = mine.openai.saturating_add(theirs.openai);
    }

    /// Each count, in [`COUNT_NAMES`] order.
    pub fn values(&self) -> [u64; 11] {
        [
            self.requests,
            self.rejected,
            self.errors,
            self.input_tokens,
            self.output_tokens,
            self.cache_read_tokens,
            self.cache_write_tokens,
            self.by_api.bedrock,
            self.by_api.spec,
            self.by_api.anthropic,
            self.by_api.openai,
        ]
    }

    /// The counts from values in [`COUNT_NAMES`] order.
    pub fn from_values(values: [u64; 11]) -> Self {
        let [
            requests,
            rejected,
            errors,
            input_tokens,
            output_tokens,
            cache_read_tokens,
            cache_write_tokens,
            bedrock,
            spec,
            anthropic,
            openai,
        ] = values;
        Self {
            requests,
            rejected,
            errors,
            input_tokens,
            output_tokens,
            cache_read_tokens,
            cache_write_tokens,
            by_api: ApiRequests {
                bedrock,
                spec,
                anthropic,
                openai,
            },
        }
    }

    /// Reads the counts by name (a stored row or item), in [`COUNT_NAMES`] order.
    pub fn try_from_named<E>(
        mut read: impl FnMut(&'static str) -> Result<u64, E>,
    ) -> Result<Self, E> {
        let mut values = [0; 11];
        for (value, name) in values.iter_mut().zip(COUNT_NAMES) {
            *value = read(name)?;
        }
        Ok(Self::from_values(values))
    }

    /// Each count with its stored name (the column and attribute name everywhere), in
    /// [`COUNT_NAMES`] order.
    pub fn named(&self) -> [(&'static str, u64); 11] {
        let values = self.values();
        std::array::from_fn(|index| (COUNT_NAMES[index], values[index]))
    }

    /// Every kind of token (input, output, cache read and cache write), saturating.
    pub fn all_tokens(&self) -> u64 {
        [
            self.input_tokens,
            self.output_tokens,
            self.cache_read_tokens,
            self.cache_write_tokens,
        ]
        .into_iter()
        .fold(0, u64::saturating_add)
    }

    /// Input plus output tokens.
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }
}

/// One counter cell's address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CounterKey {
    pub customer_id: String,
    pub day: NaiveDate,
    pub model_id: String,
}

impl CounterKey {
    /// The cell an event counts in.
    pub fn of_event(event: &UsageEvent) -> Self {
        Self {
            customer_id: event.customer_id.as_str().to_owned(),
            day: event.day(),
            model_id: event.model_id.as_str().to_owned(),
        }
    }
}

/// A read of one customer's counters: one day and model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyUsage {
    pub day: NaiveDate,
    pub model_id: String,
    pub counts: UsageCounts,
}

/// Sums events into counter cells. The caller dedupes first; this counts what it is given.
///
/// The cells are summed under keys borrowed from the events: their names by address (the
/// events of a decoded run share one copy of each name), their day by number. Each cell's
/// key is then made once, its text owned and its date from the calendar, and cells of one
/// text in two copies are added together.
pub fn aggregate_events<'a>(
    events: impl IntoIterator<Item = &'a UsageEvent>,
) -> BTreeMap<CounterKey, UsageCounts> {
    const DAY_MILLIS: i64 = 86_400_000;
    let mut cells: BatchCells<(ByAddress<'a>, i64, ByAddress<'a>)> = BatchCells::default();
    for event in events {
        let day = event.occurred_at.timestamp_millis().div_euclid(DAY_MILLIS);
        cells
            .entry((
                ByAddress(&event.customer_id),
                day,
                ByAddress(&event.model_id),
            ))
            .or_default()
            .add(&UsageCounts::of_event(event));
    }
    let mut summed: BTreeMap<CounterKey, UsageCounts> = BTreeMap::new();
    for ((customer_id, day, model_id), counts) in cells {
        // The day's first instant is in chrono's range: the event's instant was.
        let day = DateTime::from_timestamp_millis(day.saturating_mul(DAY_MILLIS))
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
            .date_naive();
        let key = CounterKey {
            customer_id: customer_id.0.as_str().to_owned(),
            day,
            model_id: model_id.0.as_str().to_owned(),
        };
        summed.entry(key).or_default().add(&counts);
    }
    summed
}

/// Sums many cells into one total.
pub fn total_counts<'a>(counts: impl IntoIterator<Item = &'a UsageCounts>) -> UsageCounts {
    let mut total = UsageCounts::default();
    for item in counts {
        total.add(item);
    }
    total
}

/// The start of the UTC hour containing an instant.
pub fn hour_start(instant: DateTime<Utc>) -> DateTime<Utc> {
    const HOUR_MILLIS: i64 = 3_600_000;
    let millis = instant.timestamp_millis();
    DateTime::from_timestamp_millis(millis - millis.rem_euclid(HOUR_MILLIS)).unwrap_or(instant)
}

/// An hour's id, as stored: `2026-11-29T10` (UTC).
pub fn hour_id(hour: DateTime<Utc>) -> String {
    hour.format("%Y-%m-%dT%H").to_string()
}

/// Parses an hour id written by [`hour_id`].
pub fn parse_hour_id(text: &str) -> Option<DateTime<Utc>> {
    let date = NaiveDate::parse_from_str(text.get(..10)?, "%Y-%m-%d").ok()?;
    let hour: u32 = text.get(10..)?.strip_prefix('T')?.parse().ok()?;
    Some(DateTime::from_naive_utc_and_offset(
        date.and_hms_opt(hour, 0, 0)?,
        Utc,
    ))
}

/// One customer's counts for one UTC hour, all models together: the history the alert
/// rules judge error rates and unusual usage by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HourlyUsage {
    /// The start of the hour.
    pub hour: DateTime<Utc>,
    pub counts: UsageCounts,
}

/// Sums events into (customer, hour) cells. The caller dedupes first.
///
/// Summed under the events' own customer ids, copied once per cell.
pub fn aggregate_hourly<'a>(
    events: impl IntoIterator<Item = &'a UsageEvent>,
) -> BTreeMap<(String, DateTime<Utc>), UsageCounts> {
    // Keyed by the hour's number since the epoch: a division per event, and the calendar
    // (a date from a day number) once per cell, not once per event.
    const HOUR_MILLIS: i64 = 3_600_000;
    let mut cells: BatchCells<(ByAddress<'a>, i64)> = BatchCells::default();
    for event in events {
        let hour = event.occurred_at.timestamp_millis().div_euclid(HOUR_MILLIS);
        cells
            .entry((ByAddress(&event.customer_id), hour))
            .or_default()
            .add(&UsageCounts::of_event(event));
    }
    let mut summed: BTreeMap<(String, DateTime<Utc>), UsageCounts> = BTreeMap::new();
    for ((customer_id, hour), counts) in cells {
        // Only an event in the first hour chrono can represent has an hour start before
        // it; its counts stay, at the earliest instant there is.
        let hour = DateTime::from_timestamp_millis(hour.saturating_mul(HOUR_MILLIS))
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        summed
            .entry((customer_id.0.as_str().to_owned(), hour))
            .or_default()
            .add(&counts);
    }
    summed
}

#[cfg(test)]
mod hour_tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn hour_ids_round_trip_and_truncate() {
        let at = Utc.with_ymd_and_hms(2026, 11, 29, 7, 59, 58).unwrap();
        let hour = hour_start(at);
        assert_eq!(hour, Utc.with_ymd_and_hms(2026, 11, 29, 7, 0, 0).unwrap());
        assert_eq!(hour_id(hour), "2026-11-29T07");
        assert_eq!(parse_hour_id("2026-11-29T07"), Some(hour));
        assert_eq!(parse_hour_id("2026-11-29T24"), None);
        assert_eq!(parse_hour_id("2026-11-29"), None);
    }

    /// The aggregation as first written: owned keys, one copy per event.
    fn reference_cells(events: &[UsageEvent]) -> BTreeMap<CounterKey, UsageCounts> {
        let mut cells: BTreeMap<CounterKey, UsageCounts> = BTreeMap::new();
        for event in events {
            cells
                .entry(CounterKey::of_event(event))
                .or_default()
                .add(&UsageCounts::of_event(event));
        }
        cells
    }

    fn reference_hours(events: &[UsageEvent]) -> BTreeMap<(String, DateTime<Utc>), UsageCounts> {
        use chrono::Timelike;
        let mut cells: BTreeMap<(String, DateTime<Utc>), UsageCounts> = BTreeMap::new();
        for event in events {
            let hour = event
                .occurred_at
                .with_nanosecond(0)
                .and_then(|at| at.with_second(0))
                .and_then(|at| at.with_minute(0))
                .unwrap();
            cells
                .entry((event.customer_id.to_string(), hour))
                .or_default()
                .add(&UsageCounts::of_event(event));
        }
        cells
    }

    fn event(customer: u8, model: u8, millis: i64, tokens: u64, outcome: u8) -> UsageEvent {
        use crate::usage_event::{ApiSurface, Operation, Outcome, USAGE_EVENT_SCHEMA_VERSION};
        UsageEvent {
            event_id: uuid::Uuid::from_u128(u128::from(tokens)),
            schema_version: USAGE_EVENT_SCHEMA_VERSION,
            occurred_at: Utc.timestamp_millis_opt(millis).unwrap(),
            customer_id: format!("cust-{customer}").into(),
            key_id: "key".into(),
            request_id: "req".into(),
            upstream_request_id: None,
            model_id: format!("model-{model}").into(),
            operation: Operation::Invoke,
            // Every surface, and events from before the surface was recorded.
            api: [
                None,
                Some(ApiSurface::Bedrock),
                Some(ApiSurface::Spec),
                Some(ApiSurface::Anthropic),
                Some(ApiSurface::OpenAi),
            ][usize::try_from(tokens % 5).unwrap()],
            status: 200,
            outcome: [
                Outcome::Success,
                Outcome::ClientError,
                Outcome::UpstreamError,
                Outcome::RejectedLimit,
                Outcome::ClientAborted,
            ][usize::from(outcome % 5)],
            input_tokens: tokens,
            output_tokens: tokens / 3,
            cache_read_tokens: tokens % 7,
            cache_write_tokens: u64::MAX - tokens,
            latency_ms: 1,
            upstream_latency_ms: None,
            request_bytes: 1,
            response_bytes: 1,
            proxy_instance: "proxy".into(),
            instance_seq: 1,
        }
    }

    #[test]
    fn admitted_calls_count_by_api_and_older_events_in_requests_only() {
        use crate::usage_event::Outcome;
        let mut total = UsageCounts::default();
        // tokens % 5 picks the API: 0 none, 1 bedrock, 2 spec, 3 anthropic, 4 openai.
        for tokens in [1, 2, 3, 4, 4, 5] {
            total.add(&UsageCounts::of_event(&event(0, 0, 0, tokens, 0)));
        }
        let mut rejected = event(0, 0, 0, 9, 0);
        rejected.outcome = Outcome::RejectedLimit;
        total.add(&UsageCounts::of_event(&rejected));
        assert_eq!(total.requests, 6);
        assert_eq!(total.rejected, 1);
        assert_eq!(
            total.by_api,
            ApiRequests {
                bedrock: 1,
                spec: 1,
                anthropic: 1,
                openai: 2,
            }
        );
        assert_eq!(total.by_api.total(), 5);
        assert_eq!(total.by_api.of(ApiSurface::OpenAi), 2);
        let named = total.named();
        assert_eq!(named[10], ("requests_openai", 2));
        let read_back = UsageCounts::try_from_named(|name| {
            Ok::<_, ()>(named.iter().find(|(n, _)| *n == name).unwrap().1)
        });
        assert_eq!(read_back, Ok(total));
    }

    proptest::proptest! {
        #[test]
        fn aggregation_matches_the_reference(
            specs in proptest::collection::vec(
                (0u8..4, 0u8..3, -10_000_000_000i64..10_000_000_000_000, proptest::num::u64::ANY, 0u8..5),
                0..200,
            )
        ) {
            let events: Vec<UsageEvent> = specs
                .into_iter()
                .map(|(customer, model, millis, tokens, outcome)| event(customer, model, millis, tokens, outcome))
                .collect();
            proptest::prop_assert_eq!(aggregate_events(&events), reference_cells(&events));
            proptest::prop_assert_eq!(aggregate_hourly(&events), reference_hours(&events));
            // Names shared as a decoded run shares them, for every other event: one text in
            // one shared copy and in copies of its own, summed as one.
            let mut names = crate::name::Names::default();
            let mixed: Vec<UsageEvent> = events
                .iter()
                .enumerate()
                .map(|(index, event)| {
                    let mut event = event.clone();
                    if index % 2 == 0 {
                        event.customer_id = names.name(&event.customer_id);
                        event.model_id = names.name(&event.model_id);
                    }
                    event
                })
                .collect();
            proptest::prop_assert_eq!(aggregate_events(&mixed), reference_cells(&events));
            proptest::prop_assert_eq!(aggregate_hourly(&mixed), reference_hours(&events));
        }
    }
}
