//! The `Registry` contract suite.
#![allow(clippy::too_many_lines)] // each contract case is one scenario, read top to bottom

use chrono::{Duration, SubsecRound, Utc};
use schemas::{ApiKey, AuditEntry, Customer, CustomerStatus, KeyStatus, Limits, TokenHash};

use super::unique;
use crate::StoreError;
use crate::registry::{KeyUse, Registry};

/// Runs every scenario against one backend.
pub async fn run_all(registry: &dyn Registry) {
    created_customers_and_keys_read_back(registry).await;
    duplicate_ids_and_token_hashes_conflict_atomically(registry).await;
    replacing_keys_revokes_the_old_ones(registry).await;
    limits_are_replaced(registry).await;
    rotation_with_a_grace_period_keeps_old_keys_until_then(registry).await;
    single_keys_can_be_revoked(registry).await;
    customer_status_changes_and_deletion_revokes_keys(registry).await;
    the_audit_trail_keeps_every_entry_in_order(registry).await;
    a_failed_change_writes_no_audit_entry_and_a_successful_one_exactly_its_own(registry).await;
    absent_records_read_as_none_and_mutations_fail(registry).await;
    last_use_only_moves_forward(registry).await;
    profiles_are_replaced_with_their_entry(registry).await;
}

async fn profiles_are_replaced_with_their_entry(registry: &dyn Registry) {
    let customer = new_customer();
    registry
        .create_customer(
            &customer,
            &new_key(&customer.customer_id),
            &audit_for(&customer.customer_id, "create"),
        )
        .await
        .unwrap();
    registry
        .set_profile(
            &customer.customer_id,
            "Renamed Ltd",
            "billing@renamed.example",
            &audit_for(&customer.customer_id, "profile"),
        )
        .await
        .unwrap();
    let stored = registry
        .customer(&customer.customer_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.name, "Renamed Ltd");
    assert_eq!(stored.email, "billing@renamed.example");
    assert_eq!(stored.limits, customer.limits, "limits are untouched");
    assert_eq!(stored.status, customer.status);
    let trail = registry
        .audit_entries(Some(&customer.customer_id))
        .await
        .unwrap();
    assert_eq!(trail.len(), 2);
    let absent = unique("absent");
    let refused = registry
        .set_profile(&absent, "X", "x@x.example", &audit_for(&absent, "profile"))
        .await;
    assert!(
        matches!(refused, Err(StoreError::NotFound { .. })),
        "{refused:?}"
    );
    assert!(
        registry
            .audit_entries(Some(&absent))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn last_use_only_moves_forward(registry: &dyn Registry) {
    let customer = new_customer();
    let key = new_key(&customer.customer_id);
    registry
        .create_customer(&customer, &key, &audit_for(&customer.customer_id, "create"))
        .await
        .unwrap();
    let use_at = |at| KeyUse {
        customer_id: customer.customer_id.clone(),
        key_id: key.key_id.clone(),
        token_hash: key.token_hash.clone(),
        at,
    };
    let last_used = || async {
        registry
            .key_by_token_hash(&key.token_hash)
            .await
            .unwrap()
            .unwrap()
            .last_used_at
    };
    assert_eq!(last_used().await, None);
    let first = Utc::now().trunc_subsecs(3);
    let later = first + Duration::seconds(90);
    registry.record_key_use(&[use_at(first)]).await.unwrap();
    assert_eq!(last_used().await, Some(first));
    registry
        .record_key_use(&[use_at(later), use_at(first - Duration::hours(1))])
        .await
        .unwrap();
    assert_eq!(
        last_used().await,
        Some(later),
        "an older use changes nothing"
    );
    let listed = registry
        .keys_of_customer(&customer.customer_id)
        .await
        .unwrap();
    assert_eq!(listed[0].last_used_at, Some(later));
    // Unknown keys are skipped, and the batch still applies to the known ones.
    let unknown = KeyUse {
        key_id: unique("key"),
        token_hash: TokenHash::of(&unique("token")),
        ..use_at(later)
    };
    registry
        .record_key_use(&[unknown, use_at(later + Duration::seconds(1))])
        .await
        .unwrap();
    assert_eq!(last_used().await, Some(later + Duration::seconds(1)));
}

/// An audit entry of `action` on `customer_id`, as the CLI would pass with a change.
pub fn audit_for(customer_id: &str, action: &str) -> AuditEntry {
    AuditEntry {
        audit_id: uuid::Uuid::now_v7(),
        at: Utc::now().trunc_subsecs(3),
        actor: "contract@example.com".into(),
        action: action.to_owned(),
        customer_id: customer_id.to_owned(),
        before: serde_json::json!({"action": action, "side": "before"}),
        after: serde_json::json!({"action": action, "side": "after"}),
    }
}

/// Registers `count` new customers, each with one key; their ids, in order.
pub async fn register_customers(registry: &dyn Registry, count: usize) -> Vec<String> {
    register_customers_with_keys(registry, count)
        .await
        .into_iter()
        .map(|(customer_id, _)| customer_id)
        .collect()
}

/// Registers `count` new customers, each with one key; their ids and their keys' ids, in
/// order.
pub async fn register_customers_with_keys(
    registry: &dyn Registry,
    count: usize,
) -> Vec<(String, String)> {
    let mut customers = Vec::with_capacity(count);
    for _ in 0..count {
        let customer = new_customer();
        let key = new_key(&customer.customer_id);
        registry
            .create_customer(&customer, &key, &audit_for(&customer.customer_id, "create"))
            .await
            .unwrap();
        customers.push((customer.customer_id, key.key_id));
    }
    customers
}

pub fn new_customer() -> Customer {
    Customer {
        customer_id: unique("cust"),
        name: "Contract Co".into(),
        email: "ops@contract.example".into(),
        status: CustomerStatus::Active,
        created_at: Utc::now().trunc_subsecs(3),
        limits: Limits::default(),
    }
}

pub fn new_key(customer_id: &str) -> ApiKey {
    ApiKey {
        key_id: unique("key"),
        customer_id: customer_id.to_owned(),
        token_hash: TokenHash::of(&unique("token")),
        status: KeyStatus::Active,
        created_at: Utc::now().trunc_subsecs(3),
        expires_at: Some((Utc::now() + Duration::days(90)).trunc_subsecs(3)),
        last_used_at: None,
    }
}

async fn created_customers_and_keys_read_back(registry: &dyn Registry) {
    let customer = new_customer();
    let key = new_key(&customer.customer_id);
    registry
        .create_customer(&customer, &key, &audit_for(&customer.customer_id, "create"))
        .await
        .unwrap();

    assert_eq!(
        registry.customer(&customer.customer_id).await.unwrap(),
        Some(customer.clone())
    );
    assert_eq!(
        registry.key_by_token_hash(&key.token_hash).await.unwrap(),
        Some(key.clone())
    );
    assert_eq!(
        registry
            .keys_of_customer(&customer.customer_id)
            .await
            .unwrap(),
        vec![key]
    );
    let listed = registry.list_customers().await.unwrap();
    assert!(listed.contains(&customer));
}

async fn duplicate_ids_and_token_hashes_conflict_atomically(registry: &dyn Registry) {
    let customer = new_customer();
    let key = new_key(&customer.customer_id);
    registry
        .create_customer(&customer, &key, &audit_for(&customer.customer_id, "create"))
        .await
        .unwrap();

    let again = registry
        .create_customer(
            &customer,
            &new_key(&customer.customer_id),
            &audit_for(&customer.customer_id, "create"),
        )
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");

    let second = new_customer();
    let reused_token = ApiKey {
        customer_id: second.customer_id.clone(),
        key_id: unique("key"),
        ..key.clone()
    };
    let reused = registry
        .create_customer(
            &second,
            &reused_token,
            &audit_for(&second.customer_id, "create"),
        )
        .await;
    assert!(matches!(reused, Err(StoreError::Conflict(_))), "{reused:?}");
    assert_eq!(
        registry.customer(&second.customer_id).await.unwrap(),
        None,
        "a conflicting create writes nothing"
    );
}

async fn replacing_keys_revokes_the_old_ones(registry: &dyn Registry) {
    let customer = new_customer();
    let old_key = new_key(&customer.customer_id);
    registry
        .create_customer(
            &customer,
            &old_key,
            &audit_for(&customer.customer_id, "create"),
        )
        .await
        .unwrap();

    let new_key_record = new_key(&customer.customer_id);
    registry
        .replace_keys(
            &new_key_record,
            None,
            &audit_for(&new_key_record.customer_id, "rotate"),
        )
        .await
        .unwrap();

    let old = registry
        .key_by_token_hash(&old_key.token_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.status, KeyStatus::Revoked);
    let new = registry
        .key_by_token_hash(&new_key_record.token_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(new.status, KeyStatus::Active);
    assert_eq!(
        registry
            .keys_of_customer(&customer.customer_id)
            .await
            .unwrap()
            .len(),
        2
    );

    let reuse = registry
        .replace_keys(
            &ApiKey {
                key_id: unique("key"),
                ..new_key_record.clone()
            },
            None,
            &audit_for(&customer.customer_id, "rotate"),
        )
        .await;
    assert!(matches!(reuse, Err(StoreError::Conflict(_))), "{reuse:?}");
}

async fn limits_are_replaced(registry: &dyn Registry) {
    let customer = new_customer();
    registry
        .create_customer(
            &customer,
            &new_key(&customer.customer_id),
            &audit_for(&customer.customer_id, "create"),
        )
        .await
        .unwrap();
    let limits = Limits {
        daily_request_limit: Some(1000),
        monthly_request_limit: Some(20_000),
        daily_token_limit: Some(1_000_000),
        monthly_token_limit: Some(10_000_000),
        requests_per_minute: Some(60),
        allowed_models: Some(vec!["anthropic.*".into(), "amazon.nova-lite-v1:0".into()]),
        enforcement: Some(schemas::EnforcementMode::Strict),
    };
    registry
        .set_limits(
            &customer.customer_id,
            &limits,
            &audit_for(&customer.customer_id, "limits"),
        )
        .await
        .unwrap();
    let stored = registry
        .customer(&customer.customer_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.limits, limits);
}

async fn absent_records_read_as_none_and_mutations_fail(registry: &dyn Registry) {
    let absent = unique("absent");
    assert_eq!(registry.customer(&absent).await.unwrap(), None);
    assert_eq!(
        registry
            .key_by_token_hash(&TokenHash::of(&absent))
            .await
            .unwrap(),
        None
    );
    assert!(registry.keys_of_customer(&absent).await.unwrap().is_empty());
    let limits = registry
        .set_limits(&absent, &Limits::default(), &audit_for(&absent, "limits"))
        .await;
    assert!(
        matches!(limits, Err(StoreError::NotFound { .. })),
        "{limits:?}"
    );
    let keys = registry
        .replace_keys(&new_key(&absent), None, &audit_for(&absent, "rotate"))
        .await;
    assert!(matches!(keys, Err(StoreError::NotFound { .. })), "{keys:?}");
}

async fn rotation_with_a_grace_period_keeps_old_keys_until_then(registry: &dyn Registry) {
    let customer = new_customer();
    let old_key = ApiKey {
        expires_at: None,
        ..new_key(&customer.customer_id)
    };
    registry
        .create_customer(
            &customer,
            &old_key,
            &audit_for(&customer.customer_id, "create"),
        )
        .await
        .unwrap();
    let soon_expiring = ApiKey {
        expires_at: Some((Utc::now() + Duration::minutes(5)).trunc_subsecs(3)),
        ..new_key(&customer.customer_id)
    };
    registry
        .replace_keys(
            &soon_expiring,
            None,
            &audit_for(&soon_expiring.customer_id, "rotate"),
        )
        .await
        .unwrap();
    // soon_expiring is now the only active key; rotate it away with a one-day grace.
    let grace_end = (Utc::now() + Duration::days(1)).trunc_subsecs(3);
    let newest = new_key(&customer.customer_id);
    registry
        .replace_keys(
            &newest,
            Some(grace_end),
            &audit_for(&newest.customer_id, "rotate"),
        )
        .await
        .unwrap();

    let kept = registry
        .key_by_token_hash(&soon_expiring.token_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        kept.status,
        KeyStatus::Active,
        "still usable during the grace period"
    );
    assert_eq!(
        kept.expires_at, soon_expiring.expires_at,
        "an earlier expiry is kept"
    );
    let revoked = registry
        .key_by_token_hash(&old_key.token_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        revoked.status,
        KeyStatus::Revoked,
        "revoked keys stay revoked"
    );

    let another = new_key(&customer.customer_id);
    registry
        .replace_keys(
            &another,
            Some(grace_end),
            &audit_for(&another.customer_id, "rotate"),
        )
        .await
        .unwrap();
    let graced = registry
        .key_by_token_hash(&newest.token_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(graced.status, KeyStatus::Active);
    assert_eq!(
        graced.expires_at,
        Some(grace_end.min(newest.expires_at.unwrap()))
    );
}

async fn single_keys_can_be_revoked(registry: &dyn Registry) {
    let customer = new_customer();
    let first = new_key(&customer.customer_id);
    registry
        .create_customer(
            &customer,
            &first,
            &audit_for(&customer.customer_id, "create"),
        )
        .await
        .unwrap();
    let revoked = registry
        .revoke_key(
            &customer.customer_id,
            &first.key_id,
            &audit_for(&customer.customer_id, "revoke"),
        )
        .await
        .unwrap();
    assert_eq!(revoked.status, KeyStatus::Revoked);
    let stored = registry
        .key_by_token_hash(&first.token_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, KeyStatus::Revoked);
    let again = registry
        .revoke_key(
            &customer.customer_id,
            &first.key_id,
            &audit_for(&customer.customer_id, "revoke"),
        )
        .await
        .unwrap();
    assert_eq!(
        again.status,
        KeyStatus::Revoked,
        "revoking twice changes nothing"
    );
    let missing = registry
        .revoke_key(
            &customer.customer_id,
            "key_nope",
            &audit_for(&customer.customer_id, "revoke"),
        )
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );
    let stranger = unique("cust");
    let other_customer = registry
        .revoke_key(&stranger, &first.key_id, &audit_for(&stranger, "revoke"))
        .await;
    assert!(
        matches!(other_customer, Err(StoreError::NotFound { .. })),
        "{other_customer:?}"
    );
}

async fn customer_status_changes_and_deletion_revokes_keys(registry: &dyn Registry) {
    let customer = new_customer();
    let key = new_key(&customer.customer_id);
    registry
        .create_customer(&customer, &key, &audit_for(&customer.customer_id, "create"))
        .await
        .unwrap();

    registry
        .set_customer_status(
            &customer.customer_id,
            CustomerStatus::Disabled,
            &audit_for(&customer.customer_id, "disable"),
        )
        .await
        .unwrap();
    assert_eq!(
        registry
            .customer(&customer.customer_id)
            .await
            .unwrap()
            .unwrap()
            .status,
        CustomerStatus::Disabled
    );
    assert_eq!(
        registry
            .key_by_token_hash(&key.token_hash)
            .await
            .unwrap()
            .unwrap()
            .status,
        KeyStatus::Active
    );
    registry
        .set_customer_status(
            &customer.customer_id,
            CustomerStatus::Active,
            &audit_for(&customer.customer_id, "enable"),
        )
        .await
        .unwrap();

    registry
        .set_customer_status(
            &customer.customer_id,
            CustomerStatus::Deleted,
            &audit_for(&customer.customer_id, "delete"),
        )
        .await
        .unwrap();
    let deleted = registry
        .customer(&customer.customer_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        deleted.status,
        CustomerStatus::Deleted,
        "the record is kept"
    );
    assert_eq!(
        registry
            .key_by_token_hash(&key.token_hash)
            .await
            .unwrap()
            .unwrap()
            .status,
        KeyStatus::Revoked
    );

    let absent = unique("absent");
    let missing = registry
        .set_customer_status(
            &absent,
            CustomerStatus::Disabled,
            &audit_for(&absent, "disable"),
        )
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );
}

async fn the_audit_trail_keeps_every_entry_in_order(registry: &dyn Registry) {
    let customer_id = unique("audited");
    let other = unique("audited");
    let start = Utc::now().trunc_subsecs(3);
    let entries: Vec<AuditEntry> = (0..3)
        .map(|index| AuditEntry {
            audit_id: uuid::Uuid::now_v7(),
            at: start + Duration::milliseconds(index),
            actor: "ops@example.com".into(),
            action: ["create", "limits", "disable"][usize::try_from(index).unwrap()].into(),
            customer_id: customer_id.clone(),
            before: serde_json::json!({"index": index}),
            after: serde_json::json!({"index": index + 1}),
        })
        .collect();
    for entry in entries.iter().rev() {
        registry.append_audit(entry).await.unwrap();
    }
    let unrelated = AuditEntry {
        audit_id: uuid::Uuid::now_v7(),
        customer_id: other.clone(),
        ..entries[0].clone()
    };
    registry.append_audit(&unrelated).await.unwrap();

    assert_eq!(
        registry.audit_entries(Some(&customer_id)).await.unwrap(),
        entries,
        "oldest first, one customer's"
    );
    let all = registry.audit_entries(None).await.unwrap();
    assert!(entries.iter().all(|entry| all.contains(entry)));
    assert!(all.contains(&unrelated));
    assert!(
        registry
            .audit_entries(Some(&unique("nobody")))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_failed_change_writes_no_audit_entry_and_a_successful_one_exactly_its_own(
    registry: &dyn Registry,
) {
    let trail = |customer_id: String| async move {
        registry.audit_entries(Some(&customer_id)).await.unwrap()
    };

    // Every change of an absent customer fails, and leaves no entry.
    let absent = unique("absent");
    let limits = registry
        .set_limits(&absent, &Limits::default(), &audit_for(&absent, "limits"))
        .await;
    assert!(
        matches!(limits, Err(StoreError::NotFound { .. })),
        "{limits:?}"
    );
    let status = registry
        .set_customer_status(
            &absent,
            CustomerStatus::Deleted,
            &audit_for(&absent, "delete"),
        )
        .await;
    assert!(
        matches!(status, Err(StoreError::NotFound { .. })),
        "{status:?}"
    );
    let rotation = registry
        .replace_keys(&new_key(&absent), None, &audit_for(&absent, "rotate"))
        .await;
    assert!(
        matches!(rotation, Err(StoreError::NotFound { .. })),
        "{rotation:?}"
    );
    let revocation = registry
        .revoke_key(&absent, "key_nope", &audit_for(&absent, "revoke"))
        .await;
    assert!(
        matches!(revocation, Err(StoreError::NotFound { .. })),
        "{revocation:?}"
    );
    assert!(
        trail(absent.clone()).await.is_empty(),
        "failed changes write no audit entry"
    );

    // A successful create writes exactly its entry.
    let customer = new_customer();
    let key = new_key(&customer.customer_id);
    let created = audit_for(&customer.customer_id, "create");
    registry
        .create_customer(&customer, &key, &created)
        .await
        .unwrap();
    assert_eq!(
        trail(customer.customer_id.clone()).await,
        vec![created.clone()]
    );

    // Conflicting creates and rotations write nothing: not for the new customer, and not
    // for the existing one.
    let second = new_customer();
    let reused_token = ApiKey {
        customer_id: second.customer_id.clone(),
        key_id: unique("key"),
        ..key.clone()
    };
    let reused = registry
        .create_customer(
            &second,
            &reused_token,
            &audit_for(&second.customer_id, "create"),
        )
        .await;
    assert!(matches!(reused, Err(StoreError::Conflict(_))), "{reused:?}");
    assert!(
        trail(second.customer_id.clone()).await.is_empty(),
        "a create that conflicts on its token writes no audit entry"
    );
    let again = registry
        .create_customer(
            &customer,
            &new_key(&customer.customer_id),
            &audit_for(&customer.customer_id, "create"),
        )
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let reuse = registry
        .replace_keys(
            &ApiKey {
                key_id: unique("key"),
                ..key.clone()
            },
            None,
            &audit_for(&customer.customer_id, "rotate"),
        )
        .await;
    assert!(matches!(reuse, Err(StoreError::Conflict(_))), "{reuse:?}");
    let missing_key = registry
        .revoke_key(
            &customer.customer_id,
            "key_nope",
            &audit_for(&customer.customer_id, "revoke"),
        )
        .await;
    assert!(
        matches!(missing_key, Err(StoreError::NotFound { .. })),
        "{missing_key:?}"
    );
    assert_eq!(
        trail(customer.customer_id.clone()).await,
        vec![created.clone()],
        "failed changes of an existing customer write no audit entry"
    );

    // Each successful change adds exactly the entry it was given.
    let later = |index: i64| AuditEntry {
        at: created.at + Duration::milliseconds(index),
        ..audit_for(
            &customer.customer_id,
            ["limits", "rotate", "revoke", "disable"][usize::try_from(index - 1).unwrap()],
        )
    };
    let limited = later(1);
    registry
        .set_limits(
            &customer.customer_id,
            &Limits {
                daily_request_limit: Some(5),
                ..Limits::default()
            },
            &limited,
        )
        .await
        .unwrap();
    assert_eq!(
        trail(customer.customer_id.clone()).await,
        vec![created.clone(), limited.clone()]
    );
    let rotated = later(2);
    let second_key = new_key(&customer.customer_id);
    registry
        .replace_keys(&second_key, None, &rotated)
        .await
        .unwrap();
    let revoked = later(3);
    registry
        .revoke_key(&customer.customer_id, &second_key.key_id, &revoked)
        .await
        .unwrap();
    let disabled = later(4);
    registry
        .set_customer_status(&customer.customer_id, CustomerStatus::Disabled, &disabled)
        .await
        .unwrap();
    assert_eq!(
        trail(customer.customer_id.clone()).await,
        vec![created, limited, rotated, revoked, disabled]
    );
}
