//! `Counters` in memory: dedupe marks and daily and hourly cells, updated under one lock.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use schemas::usage_counts::{aggregate_events, aggregate_hourly};
use schemas::{DailyUsage, HourlyUsage};

use super::MemoryStore;
use crate::Result;
use crate::counters::{ApplyReport, Counters, SourcedEvent};
use crate::dedupe::classify_batch;

#[async_trait]
impl Counters for MemoryStore {
    async fn apply(&self, events: &[SourcedEvent]) -> Result<ApplyReport> {
        let mut state = self.state()?;
        let classified = classify_batch(events, &state.dedupe_marks);
        for sourced in classified.new_marks() {
            state
                .dedupe_marks
                .insert(sourced.event.event_id, sourced.source.clone());
        }
        for (key, counts) in aggregate_hourly(classified.counted_events()) {
            state.hourly.entry(key).or_default().add(&counts);
        }
        for (key, counts) in aggregate_events(classified.counted_events()) {
            state.cells.entry(key).or_default().add(&counts);
        }
        Ok(classified.report())
    }

    async fn read_daily(
        &self,
        customer_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DailyUsage>> {
        let state = self.state()?;
        let mut usage: Vec<DailyUsage> = state
            .cells
            .iter()
            .filter(|(key, _)| key.customer_id == customer_id && key.day >= from && key.day <= to)
            .map(|(key, counts)| DailyUsage {
                day: key.day,
                model_id: key.model_id.clone(),
                counts: *counts,
            })
            .collect();
        usage.sort_by(|a, b| (a.day, &a.model_id).cmp(&(b.day, &b.model_id)));
        Ok(usage)
    }

    async fn read_hourly(
        &self,
        customer_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<HourlyUsage>> {
        if from > to {
            return Ok(Vec::new());
        }
        let state = self.state()?;
        Ok(state
            .hourly
            .range((customer_id.to_owned(), from)..=(customer_id.to_owned(), to))
            .map(|((_, hour), counts)| HourlyUsage {
                hour: *hour,
                counts: *counts,
            })
            .collect())
    }
}
