//! `Counters` in memory: producers' counted sequence numbers and the daily and hourly cells,
//! updated under one lock.

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
        let classified = classify_batch(events, &state.producer_seqs);
        let counted = || classified.new_events().map(|sourced| &sourced.event);
        for (key, counts) in aggregate_hourly(counted()) {
            state.hourly.entry(key).or_default().add(&counts);
        }
        for (key, counts) in aggregate_events(counted()) {
            state.cells.entry(key).or_default().add(&counts);
        }
        for (producer, taken) in classified.taken() {
            state
                .producer_seqs
                .entry(producer.to_owned())
                .or_default()
                .extend(&taken);
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
