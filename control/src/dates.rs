//! Date ranges of queries: checks and the default range.

use chrono::{Datelike, NaiveDate};

use crate::error::{ControlError, Result};

/// Refuses a reversed date range or one longer than `max_days`.
pub fn check_date_range(start: NaiveDate, end: NaiveDate, max_days: i64) -> Result<()> {
    if end < start {
        return Err(ControlError::invalid(
            "end_date",
            format!("--end-date {end} is before --start-date {start}; swap them"),
        ));
    }
    if (end - start).num_days() > max_days {
        return Err(ControlError::invalid(
            "end_date",
            format!("the date range is longer than {max_days} days; ask for a shorter range"),
        ));
    }
    Ok(())
}

/// A range with its missing ends filled in: the end defaults to `today`, the start to the
/// first day of the end's month. With neither, that is the current month to date.
pub fn month_to_date_unless_given(
    start: Option<NaiveDate>,
    end: Option<NaiveDate>,
    today: NaiveDate,
) -> (NaiveDate, NaiveDate) {
    let end = end.unwrap_or(today);
    let start = start.unwrap_or_else(|| end.with_day(1).unwrap_or(end));
    (start, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn missing_ends_default_to_the_month_to_date() {
        let today = day("2026-12-17");
        assert_eq!(
            month_to_date_unless_given(None, None, today),
            (day("2026-12-01"), today)
        );
        assert_eq!(
            month_to_date_unless_given(Some(day("2026-11-05")), None, today),
            (day("2026-11-05"), today)
        );
        assert_eq!(
            month_to_date_unless_given(None, Some(day("2026-11-20")), today),
            (day("2026-11-01"), day("2026-11-20"))
        );
        assert_eq!(
            month_to_date_unless_given(None, None, day("2026-12-01")),
            (day("2026-12-01"), day("2026-12-01"))
        );
    }

    #[test]
    fn reversed_and_overlong_ranges_are_refused() {
        assert!(check_date_range(day("2026-01-01"), day("2026-01-31"), 31).is_ok());
        let reversed = check_date_range(day("2026-02-01"), day("2026-01-01"), 31).unwrap_err();
        assert!(reversed.to_string().contains("is before --start-date"));
        let long = check_date_range(day("2026-01-01"), day("2026-03-01"), 31).unwrap_err();
        assert!(matches!(
            long,
            ControlError::Invalid {
                field: "end_date",
                ..
            }
        ));
    }
}
