//! Delivering alerts to a webhook: the alert as JSON, signed with HMAC-SHA256 under a shared
//! secret so the receiver can check it came from Tollgate (`X-Tollgate-Signature:
//! sha256=<hex>` over the exact body bytes).

use std::time::Duration;

use async_trait::async_trait;
use schemas::alert::RecordedAlert;
use sha2::{Digest, Sha256};

use super::Notifier;
use crate::{Result, StoreError};

/// HMAC-SHA256 of `message` under `key` (RFC 2104), lowercase hex.
pub fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    const BLOCK: usize = 64;
    let mut block_key = [0u8; BLOCK];
    if key.len() > BLOCK {
        block_key[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block_key[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block_key.map(|key_byte| key_byte ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    let outer = Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize();
    outer.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The signature header's value for a body.
pub fn signature(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hmac_sha256_hex(secret.as_bytes(), body))
}

/// A webhook that receives alerts: `POST` of the alert as JSON, with
/// `X-Tollgate-Signature` and `X-Tollgate-Alert-Key` headers.
#[derive(Clone)]
pub struct WebhookNotifier {
    url: String,
    secret: String,
    client: reqwest::Client,
}

impl std::fmt::Debug for WebhookNotifier {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("WebhookNotifier")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl WebhookNotifier {
    /// A webhook at `url`, signing with `secret`. The URL must be `http` or `https`.
    pub fn new(url: impl Into<String>, secret: impl Into<String>) -> Result<Self> {
        let url = url.into();
        let parsed = reqwest::Url::parse(&url).map_err(|error| {
            StoreError::Config(format!(
                "alert webhook URL {url:?} is not a URL ({error}); give a full http:// or https:// URL"
            ))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(StoreError::Config(format!(
                "alert webhook URL {url:?} must use http or https"
            )));
        }
        let secret = secret.into();
        if secret.is_empty() {
            return Err(StoreError::Config(
                "the alert webhook needs a signing secret; set TOLLGATE_ALERT_WEBHOOK_SECRET"
                    .into(),
            ));
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|error| StoreError::Config(format!("cannot build an HTTP client: {error}")))?;
        Ok(Self {
            url,
            secret,
            client,
        })
    }
}

#[async_trait]
impl Notifier for WebhookNotifier {
    fn describe(&self) -> String {
        format!("webhook {}", self.url)
    }

    async fn notify(&self, alert: &RecordedAlert) -> Result<()> {
        let body = serde_json::to_vec(alert)
            .map_err(|error| StoreError::Corrupt(format!("alert is not serializable: {error}")))?;
        let response = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("x-tollgate-signature", signature(&self.secret, &body))
            .header("x-tollgate-alert-key", alert.alert.key())
            .body(body)
            .send()
            .await
            .map_err(|error| {
                StoreError::Unavailable(format!("alert webhook {} unreachable: {error}", self.url))
            })?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(StoreError::Unavailable(format!(
                "alert webhook {} answered {}",
                self.url,
                response.status()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_the_rfc_4231_test_vectors() {
        // RFC 4231, test case 2.
        assert_eq!(
            hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // RFC 4231, test case 6: a key longer than the block.
        assert_eq!(
            hmac_sha256_hex(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            ),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[tokio::test]
    async fn a_receiver_can_check_the_signature() {
        let receiver = crate::contract::notify::Receiver::start().await;
        let hook = WebhookNotifier::new(receiver.url("/hook"), "s3cret").unwrap();
        let alert = crate::contract::notify::sample_alert("sig");
        hook.notify(&alert).await.unwrap();
        let received = receiver.requests();
        let request = &received[0];
        assert_eq!(
            request.header("x-tollgate-signature"),
            Some(signature("s3cret", &request.body)),
            "the receiver can verify it"
        );
        assert_ne!(
            request.header("x-tollgate-signature"),
            Some(signature("other", &request.body))
        );
        assert_eq!(
            request.header("x-tollgate-alert-key"),
            Some(alert.alert.key())
        );
    }

    #[tokio::test]
    async fn webhook_notifier_contract() {
        let receiver = crate::contract::notify::Receiver::start().await;
        let hook = WebhookNotifier::new(receiver.url("/hook"), "s3cret").unwrap();
        crate::contract::notify::run_all(&hook, || async {
            receiver
                .requests()
                .iter()
                .map(|request| serde_json::from_slice(&request.body).unwrap())
                .collect()
        })
        .await;
    }

    #[tokio::test]
    async fn refusals_and_unreachable_hooks_are_errors_naming_the_hook() {
        let receiver = crate::contract::notify::Receiver::start().await;
        let alert = crate::contract::notify::sample_alert("refused");
        let missing = WebhookNotifier::new(receiver.url("/status/500"), "s3cret").unwrap();
        let error = missing.notify(&alert).await.unwrap_err().to_string();
        assert!(error.contains("answered 500"), "{error}");
        let closed = WebhookNotifier::new("http://127.0.0.1:9/hook", "s3cret").unwrap();
        let error = closed.notify(&alert).await.unwrap_err().to_string();
        assert!(
            error.contains("unreachable") && error.contains("127.0.0.1:9"),
            "{error}"
        );
    }

    #[test]
    fn bad_webhook_settings_are_refused_with_advice() {
        let error = WebhookNotifier::new("not a url", "s")
            .unwrap_err()
            .to_string();
        assert!(error.contains("full http:// or https:// URL"), "{error}");
        let error = WebhookNotifier::new("ftp://host/x", "s")
            .unwrap_err()
            .to_string();
        assert!(error.contains("http or https"), "{error}");
        let error = WebhookNotifier::new("https://host/x", "")
            .unwrap_err()
            .to_string();
        assert!(error.contains("TOLLGATE_ALERT_WEBHOOK_SECRET"), "{error}");
    }
}
