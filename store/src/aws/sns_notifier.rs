//! `Notifier` on an SNS topic: one `Publish` per alert, the alert as JSON in the message,
//! a short subject for e-mail subscribers, and the rule and customer as message attributes
//! so subscriptions can filter.

use async_trait::async_trait;
use aws_sdk_sns::Client;
use aws_sdk_sns::types::MessageAttributeValue;
use schemas::alert::RecordedAlert;

use super::errors::{aws_error, rejected};
use super::meter::process_meter;
use super::meter_hooks::MeterInterceptor;
use super::settings::{AwsSettings, load_sdk_config};
use crate::notify::Notifier;
use crate::{Result, StoreError};

/// SNS allows subjects of at most this many ASCII characters.
const MAX_SUBJECT: usize = 100;

/// Publishes alerts to one SNS topic.
#[derive(Debug, Clone)]
pub struct SnsNotifier {
    client: Client,
    topic_arn: String,
}

/// The e-mail subject of an alert: printable ASCII, at most 100 characters.
pub fn subject_of(alert: &RecordedAlert) -> String {
    format!(
        "Tollgate alert: {} for {}",
        alert.alert.rule, alert.alert.customer_id
    )
    .chars()
    .map(|character| {
        if character.is_ascii_graphic() || character == ' ' {
            character
        } else {
            '?'
        }
    })
    .take(MAX_SUBJECT)
    .collect()
}

fn attribute(value: &str) -> Result<MessageAttributeValue> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|error| rejected(format!("invalid SNS message attribute: {error}")))
}

/// Refuses a topic ARN that is not of the form `arn:aws:sns:REGION:ACCOUNT:TOPIC`.
fn check_topic_arn(topic_arn: &str) -> Result<()> {
    if !topic_arn.starts_with("arn:") || topic_arn.split(':').count() != 6 {
        return Err(StoreError::Config(format!(
            "{topic_arn:?} is not an SNS topic ARN; give arn:aws:sns:REGION:ACCOUNT:TOPIC"
        )));
    }
    Ok(())
}

impl SnsNotifier {
    /// A notifier publishing to `topic_arn`, its client built from the AWS backend's
    /// settings (the same chain, region and endpoint as the backend's clients).
    pub async fn connect(settings: &AwsSettings, topic_arn: impl Into<String>) -> Result<Self> {
        let topic_arn = topic_arn.into();
        check_topic_arn(&topic_arn)?;
        Self::new(&load_sdk_config(settings).await, topic_arn)
    }

    /// A notifier publishing to `topic_arn` with the given AWS configuration.
    pub fn new(config: &aws_config::SdkConfig, topic_arn: impl Into<String>) -> Result<Self> {
        let topic_arn = topic_arn.into();
        check_topic_arn(&topic_arn)?;
        Ok(Self {
            client: Client::from_conf(
                aws_sdk_sns::config::Builder::from(config)
                    .interceptor(MeterInterceptor::new(process_meter()))
                    .build(),
            ),
            topic_arn,
        })
    }
}

#[async_trait]
impl Notifier for SnsNotifier {
    fn describe(&self) -> String {
        format!("sns {}", self.topic_arn)
    }

    async fn notify(&self, alert: &RecordedAlert) -> Result<()> {
        let message = serde_json::to_string(alert)
            .map_err(|error| StoreError::Corrupt(format!("alert is not serializable: {error}")))?;
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject_of(alert))
            .message(message)
            .message_attributes("rule", attribute(&alert.alert.rule)?)
            .message_attributes("customer_id", attribute(&alert.alert.customer_id)?)
            .message_attributes("alert_key", attribute(&alert.alert.key())?)
            .send()
            .await
            .map_err(|error| aws_error("Publish", &self.topic_arn, error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_short_printable_ascii() {
        let mut alert = crate::contract::notify::sample_alert("subject");
        alert.alert.customer_id = format!("ünïcode\n{}", "x".repeat(200));
        let subject = subject_of(&alert);
        assert_eq!(subject.len(), MAX_SUBJECT);
        assert!(subject.starts_with("Tollgate alert: usage_80 for ?n?code?x"));
    }

    #[tokio::test]
    async fn a_malformed_topic_arn_is_refused_with_the_expected_form() {
        let config = aws_config::SdkConfig::builder().build();
        let error = SnsNotifier::new(&config, "alerts").unwrap_err().to_string();
        assert!(
            error.contains("arn:aws:sns:REGION:ACCOUNT:TOPIC"),
            "{error}"
        );
    }
}
