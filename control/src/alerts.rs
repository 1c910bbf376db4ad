//! Alerts: `tollgate alerts`, the alerts raised recently.

use chrono::{DateTime, Utc};
use schemas::alert::RecordedAlert;
use store::Alerts;

use crate::error::{ControlError, Result};

/// `alerts`: the alerts raised in the `since` before `now`, oldest first. `Invalid` when
/// `since` is too long to subtract.
pub async fn recent_alerts(
    alerts: &dyn Alerts,
    since: std::time::Duration,
    now: DateTime<Utc>,
) -> Result<Vec<RecordedAlert>> {
    let since = chrono::Duration::from_std(since)
        .ok()
        .and_then(|since| now.checked_sub_signed(since))
        .ok_or_else(|| ControlError::invalid("since", "--since is too long"))?;
    Ok(alerts.since(since).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use store::memory::MemoryStore;

    #[tokio::test]
    async fn only_alerts_raised_within_the_window_are_listed() {
        let store = MemoryStore::new();
        let alert = store::contract::notify::sample_alert("recent");
        assert!(store.record(&alert.alert, alert.raised_at).await.unwrap());
        let raised = alert.raised_at;
        let hour = std::time::Duration::from_secs(3600);
        let listed = recent_alerts(&store, hour, raised + chrono::Duration::minutes(30))
            .await
            .unwrap();
        assert_eq!(listed, [alert]);
        let later = recent_alerts(&store, hour, raised + chrono::Duration::hours(2))
            .await
            .unwrap();
        assert!(later.is_empty());
        let too_long = recent_alerts(
            &store,
            std::time::Duration::from_secs(u64::MAX),
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        )
        .await
        .unwrap_err();
        assert!(too_long.to_string().contains("--since is too long"));
    }
}
