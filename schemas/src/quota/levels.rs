//! Window levels from the daily counters, as the proxy's eventual limiter and the
//! console's usage bars read them.

use chrono::NaiveDate;

use super::Level;
use crate::DailyUsage;
use crate::usage_counts::total_counts;

impl Level {
    /// What the daily counters `cells` hold over the days `from..=to`.
    pub fn of_days(cells: &[DailyUsage], from: NaiveDate, to: NaiveDate) -> Self {
        let totals = total_counts(
            cells
                .iter()
                .filter(|cell| (from..=to).contains(&cell.day))
                .map(|cell| &cell.counts),
        );
        Self {
            requests: totals.requests,
            tokens: totals.total_tokens(),
        }
    }
}
