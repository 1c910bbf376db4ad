//! AWS Signature Version 4 for the one request shape the proxy sends to Bedrock: a `POST`
//! with a body, no query string, signed in the `Authorization` header.
//!
//! The general signer (`aws-sigv4`) parses the URL, builds its canonical request from a
//! header map, and derives the signing key (four HMACs) on every call. Here the endpoint
//! is parsed once, the signing key is derived once per day and access key and kept with
//! its HMAC pads already absorbed, so a call costs two SHA-256 passes over small strings,
//! one over the body, and one HMAC. The unit tests check every signature against
//! `aws-sigv4`'s for the same request, credentials and time.
//!
//! Reference: "Create a signed AWS API request", AWS Identity and Access Management user
//! guide (canonical request, string to sign, signing key, signature).

use std::sync::Mutex;
use std::time::SystemTime;

use chrono::{DateTime, Datelike, Timelike, Utc};
use http::{HeaderName, HeaderValue};
use schemas::digits::{push_hex, push_zero_padded};
use sha2::{Digest, Sha256};

use super::model_runtime::push_percent_encoded;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const BLOCK: usize = 64;

/// HMAC-SHA256 with its key absorbed: the inner and outer hash states after the padded
/// key, cloned for each message (RFC 2104).
#[derive(Clone)]
struct HmacKey {
    inner: Sha256,
    outer: Sha256,
}

impl HmacKey {
    fn new(key: &[u8]) -> Self {
        let mut block = [0_u8; BLOCK];
        if key.len() > BLOCK {
            block[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let mut inner_pad = [0x36_u8; BLOCK];
        let mut outer_pad = [0x5c_u8; BLOCK];
        for ((inner, outer), byte) in inner_pad.iter_mut().zip(&mut outer_pad).zip(block) {
            *inner ^= byte;
            *outer ^= byte;
        }
        Self {
            inner: Sha256::new_with_prefix(inner_pad),
            outer: Sha256::new_with_prefix(outer_pad),
        }
    }

    fn mac(&self, message: &[u8]) -> [u8; 32] {
        let mut inner = self.inner.clone();
        inner.update(message);
        let mut outer = self.outer.clone();
        outer.update(inner.finalize());
        outer.finalize().into()
    }
}

fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    HmacKey::new(key).mac(message)
}

/// The credentials one request is signed with.
#[derive(Debug, Clone, Copy)]
pub struct SigningCredentials<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub session_token: Option<&'a str>,
}

/// The headers a signature adds to the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeaders {
    pub authorization: String,
    pub amz_date: String,
    pub security_token: Option<String>,
}

/// A derived signing key, valid for one access key on one UTC date.
struct DayKey {
    access_key_id: String,
    date: String,
    key: HmacKey,
}

/// Signs requests for one region and service, keeping the day's signing key.
pub struct RequestSigner {
    region: String,
    service: &'static str,
    day_key: Mutex<Option<DayKey>>,
}

impl std::fmt::Debug for RequestSigner {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RequestSigner")
            .field("region", &self.region)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

/// `YYYYMMDDTHHMMSSZ` of a UTC time (a year past 9999 keeps its last four digits: no
/// request is signed then). Its first eight characters are the date, `YYYYMMDD`.
fn amz_date(time: SystemTime) -> String {
    let time: DateTime<Utc> = time.into();
    let mut stamp = String::with_capacity(16);
    push_zero_padded(&mut stamp, u32::try_from(time.year()).unwrap_or(0), 4);
    push_zero_padded(&mut stamp, time.month(), 2);
    push_zero_padded(&mut stamp, time.day(), 2);
    stamp.push('T');
    push_zero_padded(&mut stamp, time.hour(), 2);
    push_zero_padded(&mut stamp, time.minute(), 2);
    push_zero_padded(&mut stamp, time.second(), 2);
    stamp.push('Z');
    stamp
}

/// Appends the canonical request's path: the request's path percent-encoded once more
/// (every byte but the unreserved ones and `/`). Its segments are already encoded, so this
/// is SigV4's double encoding (`%` becomes `%25`), which every AWS service but S3 expects.
fn push_canonical_uri(out: &mut String, path: &str) {
    push_percent_encoded(out, path, b"/");
}

/// The texts a signature is built in, kept per thread and reused: signing then allocates
/// only the headers it returns.
#[derive(Default)]
struct Scratch {
    canonical: String,
    names: String,
    string_to_sign: String,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// A header value as SigV4 canonicalises it: trimmed, inner runs of spaces as one.
fn push_canonical_value(out: &mut String, value: &str) {
    let mut last_was_space = false;
    for character in value.trim().chars() {
        if character == ' ' {
            if !last_was_space {
                out.push(' ');
            }
            last_was_space = true;
        } else {
            out.push(character);
            last_was_space = false;
        }
    }
}

/// Writes the canonical request of `POST {path}` with the `signed` headers (sorted by
/// name) and `body` into `canonical`, and the signed headers' names into `names`.
fn write_canonical_request(
    canonical: &mut String,
    names: &mut String,
    path: &str,
    signed: &[(&str, &str)],
    body: &[u8],
) {
    canonical.clear();
    names.clear();
    canonical.push_str("POST\n");
    push_canonical_uri(canonical, path);
    canonical.push_str("\n\n");
    for (index, (name, value)) in signed.iter().enumerate() {
        let repeated = index > 0 && signed[index - 1].0 == *name;
        if repeated {
            canonical.push(',');
        } else {
            if index > 0 {
                canonical.push('\n');
                names.push(';');
            }
            canonical.push_str(name);
            canonical.push(':');
            names.push_str(name);
        }
        push_canonical_value(canonical, value);
    }
    canonical.push_str("\n\n");
    canonical.push_str(names);
    canonical.push('\n');
    push_hex(canonical, &Sha256::digest(body));
}

impl RequestSigner {
    /// A signer for `service` (Bedrock's runtime signs as `bedrock`) in `region`.
    pub fn new(region: impl Into<String>, service: &'static str) -> Self {
        Self {
            region: region.into(),
            service,
            day_key: Mutex::new(None),
        }
    }

    fn signature(
        &self,
        credentials: &SigningCredentials<'_>,
        date: &str,
        string_to_sign: &[u8],
    ) -> [u8; 32] {
        let mut cached = self
            .day_key
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let current = cached
            .as_ref()
            .filter(|day| day.date == date && day.access_key_id == credentials.access_key_id);
        if let Some(day) = current {
            return day.key.mac(string_to_sign);
        }
        let secret = format!("AWS4{}", credentials.secret_access_key);
        let date_key = hmac(secret.as_bytes(), date.as_bytes());
        let region_key = hmac(&date_key, self.region.as_bytes());
        let service_key = hmac(&region_key, self.service.as_bytes());
        let signing_key = HmacKey::new(&hmac(&service_key, b"aws4_request"));
        let signature = signing_key.mac(string_to_sign);
        *cached = Some(DayKey {
            access_key_id: credentials.access_key_id.to_owned(),
            date: date.to_owned(),
            key: signing_key,
        });
        signature
    }

    /// Signs `POST {path}` to `host` with `headers` (lower-case names; `host`,
    /// `x-amz-date` and `x-amz-security-token` are added here) and `body`, at `time`.
    /// `path` is the request's path as sent, its segments already percent-encoded.
    pub fn sign(
        &self,
        credentials: &SigningCredentials<'_>,
        time: SystemTime,
        host: &str,
        path: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: &[u8],
    ) -> SignatureHeaders {
        let amz_date = amz_date(time);
        let date = &amz_date[..8];
        let mut signed: Vec<(&str, &str)> = Vec::with_capacity(headers.len() + 3);
        // Values that are not visible ASCII are never forwarded (`forwarded_headers`).
        signed.extend(
            headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.to_str().unwrap_or_default())),
        );
        signed.push(("host", host));
        signed.push(("x-amz-date", &amz_date));
        if let Some(token) = credentials.session_token {
            signed.push(("x-amz-security-token", token));
        }
        // Stable: repeated names keep their order, and their values join with ','.
        signed.sort_by(|left, right| left.0.cmp(right.0));

        let authorization = SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let Scratch {
                canonical,
                names,
                string_to_sign,
            } = &mut *scratch;
            write_canonical_request(canonical, names, path, &signed, body);
            string_to_sign.clear();
            // The string to sign; the scope is its third line.
            string_to_sign.push_str(ALGORITHM);
            string_to_sign.push('\n');
            string_to_sign.push_str(&amz_date);
            string_to_sign.push('\n');
            let scope_start = string_to_sign.len();
            string_to_sign.push_str(date);
            string_to_sign.push('/');
            string_to_sign.push_str(&self.region);
            string_to_sign.push('/');
            string_to_sign.push_str(self.service);
            string_to_sign.push_str("/aws4_request");
            let scope_end = string_to_sign.len();
            string_to_sign.push('\n');
            push_hex(string_to_sign, &Sha256::digest(canonical.as_bytes()));
            let signature = self.signature(credentials, date, string_to_sign.as_bytes());

            let scope = &string_to_sign[scope_start..scope_end];
            let mut authorization = String::with_capacity(
                ALGORITHM.len()
                    + credentials.access_key_id.len()
                    + scope.len()
                    + names.len()
                    + 64
                    + 48,
            );
            authorization.push_str(ALGORITHM);
            authorization.push_str(" Credential=");
            authorization.push_str(credentials.access_key_id);
            authorization.push('/');
            authorization.push_str(scope);
            authorization.push_str(", SignedHeaders=");
            authorization.push_str(names);
            authorization.push_str(", Signature=");
            push_hex(&mut authorization, &signature);
            authorization
        });
        SignatureHeaders {
            authorization,
            amz_date,
            security_token: credentials.session_token.map(str::to_owned),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_sigv4::sign::v4;
    use aws_smithy_runtime_api::client::identity::Identity;
    use std::time::Duration;

    /// The headers `aws-sigv4` (the SDK's signer) adds for the same request.
    fn reference(
        credentials: &Credentials,
        region: &str,
        time: SystemTime,
        url: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Vec<(String, String)> {
        let identity: Identity = credentials.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name("bedrock")
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let signable = SignableRequest::new(
            "POST",
            url,
            headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str())),
            SignableBody::Bytes(body),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        let mut added: Vec<(String, String)> = instructions
            .headers()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        added.sort();
        added
    }

    fn ours(signature: SignatureHeaders) -> Vec<(String, String)> {
        let mut added = vec![
            ("authorization".to_owned(), signature.authorization),
            ("x-amz-date".to_owned(), signature.amz_date),
        ];
        if let Some(token) = signature.security_token {
            added.push(("x-amz-security-token".to_owned(), token));
        }
        added.sort();
        added
    }

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn signatures_match_the_sdk_signer() {
        let cases = [
            (
                "/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke",
                headers(&[
                    ("content-type", "application/json"),
                    ("accept", "application/json"),
                ]),
                &br#"{"messages":[]}"#[..],
                None,
            ),
            (
                "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse-stream",
                headers(&[
                    ("content-type", "application/json"),
                    ("accept", "application/vnd.amazon.eventstream"),
                    ("x-amzn-bedrock-trace", "  ENABLED  "),
                    ("x-amzn-bedrock-guardrailidentifier", "gr  1 2"),
                ]),
                &b""[..],
                Some("session-token/with+odd=chars"),
            ),
            (
                "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.meta.llama3/invoke-with-response-stream",
                headers(&[
                    ("accept", "*/*"),
                    ("content-type", "application/json"),
                    ("x-amzn-bedrock-performanceconfig-latency", "optimized"),
                ]),
                &[0xff_u8, 0x00, 0x7f][..],
                None,
            ),
        ];
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_633_599);
        let signer = RequestSigner::new("us-west-2", "bedrock");
        for (index, (path, headers, body, token)) in cases.iter().enumerate() {
            let credentials = Credentials::new(
                format!("AKIDEXAMPLE{index}"),
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                token.map(str::to_owned),
                None,
                "test",
            );
            // The same signer across a date change, and twice within one day (the key is
            // derived once, then reused).
            for time in [
                start,
                start + Duration::from_secs(1),
                start + Duration::from_secs(70),
            ] {
                let host = "bedrock-runtime.us-west-2.amazonaws.com";
                let url = format!("https://{host}{path}");
                let mut with_host = headers.clone();
                with_host.push(("host".to_owned(), host.to_owned()));
                let expected = reference(&credentials, "us-west-2", time, &url, &with_host, body);
                let as_headers: Vec<(HeaderName, HeaderValue)> = headers
                    .iter()
                    .map(|(name, value)| {
                        (
                            HeaderName::from_bytes(name.as_bytes()).unwrap(),
                            HeaderValue::from_str(value).unwrap(),
                        )
                    })
                    .collect();
                let signature = signer.sign(
                    &SigningCredentials {
                        access_key_id: credentials.access_key_id(),
                        secret_access_key: credentials.secret_access_key(),
                        session_token: credentials.session_token(),
                    },
                    time,
                    host,
                    path,
                    &as_headers,
                    body,
                );
                assert_eq!(ours(signature), expected, "case {index} at {time:?}");
            }
        }
    }

    #[test]
    fn a_new_access_key_gets_its_own_signing_key() {
        let signer = RequestSigner::new("us-east-1", "bedrock");
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_600_000);
        let sign_with = |access_key_id: &str, secret: &str| {
            signer
                .sign(
                    &SigningCredentials {
                        access_key_id,
                        secret_access_key: secret,
                        session_token: None,
                    },
                    time,
                    "localhost:9",
                    "/model/m/invoke",
                    &[],
                    b"{}",
                )
                .authorization
        };
        let first = sign_with("AKIDONE", "secret-one");
        let second = sign_with("AKIDTWO", "secret-two");
        let first_again = sign_with("AKIDONE", "secret-one");
        assert_ne!(first, second);
        assert_eq!(first, first_again);
        let credentials = Credentials::new("AKIDTWO", "secret-two", None, None, "test");
        let expected = reference(
            &credentials,
            "us-east-1",
            time,
            "http://localhost:9/model/m/invoke",
            &headers(&[("host", "localhost:9")]),
            b"{}",
        );
        assert!(expected.contains(&("authorization".to_owned(), second)));
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2_and_a_long_key() {
        let mac = hmac(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // RFC 4231 test case 6: a key longer than the block is hashed first.
        let mac = hmac(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        assert_eq!(
            hex::encode(mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }
}
