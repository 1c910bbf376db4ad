//! Delivering alerts to a webhook: the alert as JSON, signed with HMAC-SHA256 under a shared
//! secret so the receiver can check it came from Tollgate (`X-Tollgate-Signature:
//! sha256=<hex>` over the exact body bytes).

use schemas::alert::Alert;
use sha2::{Digest, Sha256};

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

/// A webhook that receives alerts.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub url: String,
    secret: String,
    client: reqwest::Client,
}

impl Webhook {
    /// A webhook at `url`, signing with `secret`.
    pub fn new(url: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            secret: secret.into(),
            client: reqwest::Client::new(),
        }
    }

    /// Posts one alert; an answer other than 2xx is an error (the caller retries).
    pub async fn deliver(&self, alert: &Alert) -> Result<(), String> {
        let body = serde_json::to_vec(alert).map_err(|error| error.to_string())?;
        let response = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("x-tollgate-signature", signature(&self.secret, &body))
            .header("x-tollgate-alert-key", alert.key())
            .timeout(std::time::Duration::from_secs(10))
            .body(body)
            .send()
            .await
            .map_err(|error| format!("alert webhook {} unreachable: {error}", self.url))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!(
                "alert webhook {} answered {}",
                self.url,
                response.status()
            ))
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
        use axum::body::Bytes;
        use axum::http::HeaderMap;
        use std::sync::{Arc, Mutex};
        let received: Arc<Mutex<Vec<(String, Bytes)>>> = Arc::default();
        let store = Arc::clone(&received);
        let router = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let store = Arc::clone(&store);
                async move {
                    let signature = headers["x-tollgate-signature"].to_str().unwrap().to_owned();
                    store.lock().unwrap().push((signature, body));
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

        let alert = Alert {
            rule: "usage_100".into(),
            customer_id: "c".into(),
            window: "daily_requests:day:2026-11-29".into(),
            message: "100% of the daily request limit".into(),
            value: 10.0,
            threshold: 10.0,
        };
        let hook = Webhook::new(format!("http://{address}/hook"), "s3cret");
        hook.deliver(&alert).await.unwrap();
        let (signed, body) = received.lock().unwrap()[0].clone();
        assert_eq!(
            signed,
            signature("s3cret", &body),
            "the receiver can verify it"
        );
        assert_ne!(signed, signature("other", &body));
        let decoded: Alert = serde_json::from_slice(&body).unwrap();
        assert_eq!(decoded, alert);

        let missing = Webhook::new(format!("http://{address}/nowhere"), "s3cret");
        assert!(
            missing
                .deliver(&alert)
                .await
                .unwrap_err()
                .contains("answered 404")
        );
    }
}
