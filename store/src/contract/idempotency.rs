//! The `IdempotencyKeys` contract suite.

use chrono::{Duration, SubsecRound, Utc};

use super::unique;
use crate::idempotency::{Claim, IDEMPOTENCY_RETENTION_HOURS, IdempotencyKeys};

/// Runs every scenario against one backend.
pub async fn run_all(keys: &dyn IdempotencyKeys) {
    a_key_is_claimed_once_then_answered(keys).await;
    a_released_claim_runs_again_and_an_answer_stays(keys).await;
    expired_records_are_claimed_anew(keys).await;
    concurrent_claims_have_one_winner(keys).await;
}

async fn a_key_is_claimed_once_then_answered(keys: &dyn IdempotencyKeys) {
    let lookup = unique("lookup");
    let now = Utc::now().trunc_subsecs(3);
    assert_eq!(
        keys.claim(&lookup, "request-a", now).await.unwrap(),
        Claim::Claimed
    );
    match keys.claim(&lookup, "request-b", now).await.unwrap() {
        Claim::Existing(record) => {
            assert_eq!(
                record.request_hash, "request-a",
                "the first request's hash is kept"
            );
            assert_eq!(record.answer, None, "in progress");
            assert_eq!(record.created_at, now);
        }
        Claim::Claimed => panic!("a key in use was claimed again"),
    }
    keys.complete(&lookup, 201, b"sealed answer").await.unwrap();
    match keys.claim(&lookup, "request-a", now).await.unwrap() {
        Claim::Existing(record) => {
            assert_eq!(record.answer, Some((201, b"sealed answer".to_vec())));
        }
        Claim::Claimed => panic!("an answered key was claimed again"),
    }
    assert!(
        keys.complete(&unique("never-claimed"), 200, b"x")
            .await
            .is_err(),
        "only a claim can be answered"
    );
}

async fn a_released_claim_runs_again_and_an_answer_stays(keys: &dyn IdempotencyKeys) {
    let lookup = unique("lookup");
    let now = Utc::now().trunc_subsecs(3);
    assert_eq!(keys.claim(&lookup, "r", now).await.unwrap(), Claim::Claimed);
    keys.release(&lookup).await.unwrap();
    assert_eq!(keys.claim(&lookup, "r", now).await.unwrap(), Claim::Claimed);
    keys.complete(&lookup, 200, b"done").await.unwrap();
    keys.release(&lookup).await.unwrap();
    assert!(
        matches!(keys.claim(&lookup, "r", now).await.unwrap(), Claim::Existing(record) if record.answer.is_some()),
        "release leaves an answered record"
    );
    keys.release(&unique("absent")).await.unwrap();
}

async fn expired_records_are_claimed_anew(keys: &dyn IdempotencyKeys) {
    let lookup = unique("lookup");
    let long_ago = Utc::now().trunc_subsecs(3) - Duration::hours(IDEMPOTENCY_RETENTION_HOURS + 1);
    assert_eq!(
        keys.claim(&lookup, "old", long_ago).await.unwrap(),
        Claim::Claimed
    );
    keys.complete(&lookup, 200, b"old answer").await.unwrap();
    let now = Utc::now().trunc_subsecs(3);
    assert_eq!(
        keys.claim(&lookup, "new", now).await.unwrap(),
        Claim::Claimed
    );
    match keys.claim(&lookup, "new", now).await.unwrap() {
        Claim::Existing(record) => {
            assert_eq!(record.request_hash, "new");
            assert_eq!(record.answer, None);
        }
        Claim::Claimed => panic!("claimed twice"),
    }
}

async fn concurrent_claims_have_one_winner(keys: &dyn IdempotencyKeys) {
    let lookup = unique("lookup");
    let now = Utc::now().trunc_subsecs(3);
    let claims = futures::future::join_all((0..8).map(|_| keys.claim(&lookup, "same", now))).await;
    let won = claims
        .into_iter()
        .filter(|claim| matches!(claim, Ok(Claim::Claimed)))
        .count();
    assert_eq!(won, 1, "exactly one concurrent claim wins");
}
