//! `Idempotency-Key`: a retried change returns its first answer and changes nothing.
//!
//! The store never sees the key or an answer in the clear. A record is found by
//! `lookup = SHA-256("tollgate idempotency lookup", caller, key)`, and the answer (which may
//! hold a new customer token) is sealed with ChaCha20-Poly1305 under
//! `SHA-256("tollgate idempotency answer", caller, key)`: only a client presenting the key
//! again can open it. Keys are per caller (admin credential), so two systems cannot collide
//! or read each other's answers.
//!
//! A request that ends in 503 (the store was unavailable) releases its key, so the retry
//! runs again. Any other answer is kept for a day. A request whose server stopped before it
//! answered keeps its key in progress (409) rather than run twice: the change may have
//! been made.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use store::idempotency::{Claim, IdempotencyKeys};

use crate::error::{ControlError, Result, WhileDoing};

/// The longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// Checks a key: 1 to 255 visible ASCII characters (a UUID is the usual choice).
pub fn check_key(key: &str) -> Result<()> {
    if !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && key.bytes().all(|byte| byte.is_ascii_graphic())
    {
        return Ok(());
    }
    Err(ControlError::invalid(
        "Idempotency-Key",
        format!(
            "the Idempotency-Key header must be 1 to {MAX_KEY_LEN} visible ASCII characters; send a fresh UUID per operation"
        ),
    ))
}

fn digest(purpose: &str, caller: &str, key: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in [purpose, caller, key] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.finalize().into()
}

/// Where a caller's key is stored.
pub fn lookup(caller: &str, key: &str) -> String {
    hex::encode(digest("tollgate idempotency lookup", caller, key))
}

/// The hash a request is recognised by: its method, path and body.
pub fn request_hash(method: &str, path: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    for part in [method.as_bytes(), path.as_bytes(), body] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hex::encode(hasher.finalize())
}

fn cipher(caller: &str, key: &str) -> ChaCha20Poly1305 {
    let secret = digest("tollgate idempotency answer", caller, key);
    ChaCha20Poly1305::new(Key::from_slice(&secret))
}

/// Seals an answer: a random nonce, then the ciphertext.
pub fn seal(caller: &str, key: &str, answer: &[u8]) -> Result<Vec<u8>> {
    let mut nonce = [0u8; 12];
    getrandom::fill(&mut nonce).map_err(|error| {
        ControlError::internal(format!("the system random source failed: {error}"))
    })?;
    let sealed = cipher(caller, key)
        .encrypt(Nonce::from_slice(&nonce), answer)
        .map_err(|_| ControlError::internal("cannot seal the idempotent answer"))?;
    Ok([nonce.as_slice(), &sealed].concat())
}

/// Opens a sealed answer; `Internal` if it was not sealed under this caller and key.
pub fn open(caller: &str, key: &str, sealed: &[u8]) -> Result<Vec<u8>> {
    let (nonce, ciphertext) = sealed
        .split_at_checked(12)
        .ok_or_else(|| ControlError::internal("the stored idempotent answer is cut short"))?;
    cipher(caller, key)
        .decrypt(Nonce::from_slice(nonce), ciphertext)
        .map_err(|_| ControlError::internal("the stored idempotent answer cannot be opened"))
}

/// What to do with a request that carries a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// Run it, then [`finish`] with its answer.
    Run,
    /// Answer this (the first request's answer), without running.
    Replay { status: u16, answer: Vec<u8> },
    /// The key came with another request (HTTP 422).
    Reused,
    /// The first request has no answer yet (HTTP 409): still running, or its server
    /// stopped while making it.
    InProgress { since: DateTime<Utc> },
}

/// Claims the key for this request, or finds its first answer; `Invalid` for a key of the
/// wrong shape.
pub async fn begin(
    keys: &dyn IdempotencyKeys,
    caller: &str,
    key: &str,
    request: &str,
    now: DateTime<Utc>,
) -> Result<Begin> {
    check_key(key)?;
    let claim = keys
        .claim(&lookup(caller, key), request, now)
        .await
        .while_doing(|| "cannot check the Idempotency-Key".into())?;
    let record = match claim {
        Claim::Claimed => return Ok(Begin::Run),
        Claim::Existing(record) => record,
    };
    if record.request_hash != request {
        return Ok(Begin::Reused);
    }
    match record.answer {
        Some((status, sealed)) => Ok(Begin::Replay {
            status,
            answer: open(caller, key, &sealed)?,
        }),
        None => Ok(Begin::InProgress {
            since: record.created_at,
        }),
    }
}

/// Records the answer of a request that ran: kept (sealed), or, for a 503, released so
/// that a retry runs again.
pub async fn finish(
    keys: &dyn IdempotencyKeys,
    caller: &str,
    key: &str,
    status: u16,
    answer: &[u8],
) -> Result<()> {
    let lookup = lookup(caller, key);
    if status == 503 {
        return keys
            .release(&lookup)
            .await
            .while_doing(|| "cannot release the Idempotency-Key".into());
    }
    let sealed = seal(caller, key, answer)?;
    keys.complete(&lookup, status, &sealed)
        .await
        .while_doing(|| "cannot record the answer of the Idempotency-Key".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::memory::MemoryStore;

    #[test]
    fn answers_open_only_with_the_same_caller_and_key() {
        let sealed = seal("billing", "key-1", b"{\"token\":\"tg_secret\"}").unwrap();
        assert!(
            !sealed.windows(9).any(|window| window == b"tg_secret"),
            "sealed, not clear"
        );
        assert_eq!(
            open("billing", "key-1", &sealed).unwrap(),
            b"{\"token\":\"tg_secret\"}"
        );
        assert!(open("billing", "key-2", &sealed).is_err());
        assert!(open("signup", "key-1", &sealed).is_err());
        assert!(open("billing", "key-1", &sealed[..5]).is_err());
        assert_ne!(lookup("billing", "key-1"), lookup("signup", "key-1"));
        assert_ne!(
            lookup("ab", "c"),
            lookup("a", "bc"),
            "parts are length-prefixed"
        );
        assert_ne!(
            request_hash("POST", "/a", b"x"),
            request_hash("POST", "/a", b"y")
        );
    }

    #[test]
    fn keys_are_visible_ascii_of_bounded_length() {
        assert!(check_key("6f1c2a9e-3b1d-4c55-9a0e-1f2b3c4d5e6f").is_ok());
        for bad in ["", "has space", "ünï", &"k".repeat(256)] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn a_retry_replays_a_different_request_is_refused_and_503_releases() {
        let store = MemoryStore::new();
        let now = Utc::now();
        let request = request_hash("POST", "/customers", b"{}");
        assert_eq!(
            begin(&store, "ops", "k", &request, now).await.unwrap(),
            Begin::Run
        );
        let in_progress = begin(&store, "ops", "k", &request, now).await.unwrap();
        assert!(matches!(in_progress, Begin::InProgress { .. }));
        finish(&store, "ops", "k", 201, b"first answer")
            .await
            .unwrap();
        assert_eq!(
            begin(&store, "ops", "k", &request, now).await.unwrap(),
            Begin::Replay {
                status: 201,
                answer: b"first answer".to_vec()
            }
        );
        let other = request_hash("POST", "/customers", b"{\"name\":\"x\"}");
        assert_eq!(
            begin(&store, "ops", "k", &other, now).await.unwrap(),
            Begin::Reused
        );
        assert_eq!(
            begin(&store, "billing", "k", &request, now).await.unwrap(),
            Begin::Run,
            "keys are per caller"
        );
        assert_eq!(
            begin(&store, "ops", "k2", &request, now).await.unwrap(),
            Begin::Run
        );
        finish(&store, "ops", "k2", 503, b"unavailable")
            .await
            .unwrap();
        assert_eq!(
            begin(&store, "ops", "k2", &request, now).await.unwrap(),
            Begin::Run,
            "a 503 runs again"
        );
    }
}
