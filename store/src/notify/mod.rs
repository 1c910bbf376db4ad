//! The `Notifier` port: where a raised alert is delivered. Backends: the process log
//! ([`LogNotifier`]), a signed webhook ([`webhook::WebhookNotifier`]) and an SNS topic
//! ([`crate::aws::sns_notifier::SnsNotifier`]).

pub mod webhook;

use async_trait::async_trait;
use schemas::alert::RecordedAlert;

use crate::Result;

/// Delivers alerts somewhere a person will see them.
///
/// Contracts every backend keeps:
/// - `notify` returns `Ok` only once the destination accepted the alert; the receiver gets
///   the alert as JSON (the `RecordedAlert` fields) and can tell alerts apart by their key
///   (rule, customer, window).
/// - A destination that is unreachable or refuses the alert is an error naming it, so the
///   caller can retry and report it; `notify` never panics.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Where alerts go, for logs and start-up messages (never includes a secret).
    fn describe(&self) -> String;

    /// Delivers one alert.
    async fn notify(&self, alert: &RecordedAlert) -> Result<()>;
}

/// Writes alerts to the process log, as a `WARN` line with the alert's fields.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogNotifier;

#[async_trait]
impl Notifier for LogNotifier {
    fn describe(&self) -> String {
        "log".into()
    }

    async fn notify(&self, alert: &RecordedAlert) -> Result<()> {
        tracing::warn!(
            target: "tollgate::alert",
            rule = %alert.alert.rule,
            customer_id = %alert.alert.customer_id,
            window = %alert.alert.window,
            value = alert.alert.value,
            threshold = alert.alert.threshold,
            raised_at = %alert.raised_at,
            "ALERT {}",
            alert.alert.message
        );
        Ok(())
    }
}
