//! Keys: `update-token` (a new key, the old ones retired after a grace period), `list-keys`
//! and `revoke-token`, with the tokens they generate or check.

use chrono::{DateTime, SubsecRound, Utc};
use schemas::token::{check_token_shape, format_generated_token, format_key_id};
use schemas::{ApiKey, KeyStatus, SecretToken};
use serde::{Serialize, Serializer};
use store::{Registry, StoreError};

use crate::audit::{Actor, actions, audit_entry};
use crate::error::{ControlError, Result};
use crate::lookup::{existing_customer, unknown_customer};

/// A key just issued. `generated_token` is the token when Tollgate generated it: it is
/// shown to the operator once and never stored (only its hash is). A supplied token is
/// never given back.
#[derive(Debug, Clone)]
pub struct IssuedKey {
    pub customer_id: String,
    pub key_id: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub generated_token: Option<SecretToken>,
}

impl IssuedKey {
    pub(crate) fn new(
        customer_id: &str,
        key: &ApiKey,
        token: SecretToken,
        generated: bool,
    ) -> Self {
        Self {
            customer_id: customer_id.to_owned(),
            key_id: key.key_id.clone(),
            expires_at: key.expires_at,
            generated_token: generated.then_some(token),
        }
    }
}

/// How a key stands at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    Active,
    Expired,
    Revoked,
}

impl KeyState {
    /// `active`, `expired` or `revoked`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }

    /// How `key` stands at `now`.
    pub fn of(key: &ApiKey, now: DateTime<Utc>) -> Self {
        if key.status == KeyStatus::Revoked {
            Self::Revoked
        } else if key.is_usable_at(now) {
            Self::Active
        } else {
            Self::Expired
        }
    }
}

/// A key as operators see it (never its hash). Times serialize as RFC 3339 to the second;
/// audit entries hold keys in this form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyView {
    pub key_id: String,
    pub state: KeyState,
    #[serde(serialize_with = "seconds")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "optional_seconds")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "optional_seconds")]
    pub last_used_at: Option<DateTime<Utc>>,
}

fn seconds<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

fn optional_seconds<S: Serializer>(
    at: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => seconds(at, serializer),
        None => serializer.serialize_none(),
    }
}

/// The keys as operators see them at `now`.
pub fn key_views(keys: &[ApiKey], now: DateTime<Utc>) -> Vec<KeyView> {
    keys.iter()
        .map(|key| KeyView {
            key_id: key.key_id.clone(),
            state: KeyState::of(key, now),
            created_at: key.created_at,
            expires_at: key.expires_at,
            last_used_at: key.last_used_at,
        })
        .collect()
}

/// A key rotation: `update-token`.
#[derive(Debug, Clone)]
pub struct Rotation {
    pub customer_id: String,
    /// A token to use instead of a generated one (at least 32 characters).
    pub token: Option<SecretToken>,
    /// How long the previous keys keep working; zero revokes them at once.
    pub grace_period: std::time::Duration,
    /// The new key expires after this long; never when `None`.
    pub expires_in: Option<std::time::Duration>,
}

fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|error| {
        ControlError::internal(format!("the system random source failed: {error}"))
    })?;
    Ok(bytes)
}

/// A fresh token from the system's random source.
pub(crate) fn generated_token() -> Result<SecretToken> {
    Ok(format_generated_token(&random_bytes::<32>()?))
}

/// A supplied token, checked, or a newly generated one; `true` when generated.
pub(crate) fn token_or_generated(supplied: Option<SecretToken>) -> Result<(SecretToken, bool)> {
    match supplied {
        Some(token) => {
            let token = token.expose().trim().to_owned();
            check_token_shape(&token).map_err(|error| {
                ControlError::invalid(
                    "token",
                    format!("--token is not usable: {error}; generate one with `openssl rand -base64 32`, or omit --token"),
                )
            })?;
            Ok((SecretToken::new(token), false))
        }
        None => Ok((generated_token()?, true)),
    }
}

fn after(duration: std::time::Duration) -> Result<DateTime<Utc>> {
    let duration = chrono::Duration::from_std(duration)
        .map_err(|_| ControlError::invalid("duration", "duration is too long"))?;
    Ok((Utc::now() + duration).trunc_subsecs(3))
}

pub(crate) fn new_key(
    customer_id: &str,
    token: &SecretToken,
    expires_in: Option<std::time::Duration>,
) -> Result<ApiKey> {
    Ok(ApiKey {
        key_id: format_key_id(&random_bytes::<9>()?),
        customer_id: customer_id.to_owned(),
        token_hash: token.hash(),
        status: KeyStatus::Active,
        created_at: Utc::now().trunc_subsecs(3),
        expires_at: expires_in.map(after).transpose()?,
        last_used_at: None,
    })
}

/// A store `Conflict` on a new key: its token is in use.
pub(crate) fn token_in_use(error: StoreError) -> ControlError {
    match error {
        StoreError::Conflict(_) => ControlError::conflict(
            "that token is already in use by a key; supply a different --token or omit it",
        ),
        other => ControlError::from(other),
    }
}

/// A customer's keys as `replace_keys` leaves them: every active key retired at
/// `retire_old_keys_at` (or revoked at once), then `new_key`.
fn keys_after_rotation(
    keys_before: &[ApiKey],
    new_key: &ApiKey,
    retire_old_keys_at: Option<DateTime<Utc>>,
) -> Vec<ApiKey> {
    keys_before
        .iter()
        .map(|key| match key.status {
            KeyStatus::Active => key.retired(retire_old_keys_at),
            KeyStatus::Revoked => key.clone(),
        })
        .chain(std::iter::once(new_key.clone()))
        .collect()
}

/// `update-token`: issues a new key and retires every active key of the customer at the
/// end of the grace period (at once for zero), atomically, with an audit entry (action
/// `rotate`, the keys before and after). `NotFound` for an unknown customer, `Conflict`
/// when the supplied token is in use.
pub async fn rotate_token(
    registry: &dyn Registry,
    actor: &Actor,
    rotation: Rotation,
) -> Result<IssuedKey> {
    let customer_id = rotation.customer_id.as_str();
    let (token, generated) = token_or_generated(rotation.token)?;
    let key = new_key(customer_id, &token, rotation.expires_in)?;
    let retire_old_keys_at = if rotation.grace_period.is_zero() {
        None
    } else {
        Some(after(rotation.grace_period)?)
    };
    let keys_before = registry.keys_of_customer(customer_id).await?;
    let keys_after = keys_after_rotation(&keys_before, &key, retire_old_keys_at);
    let now = Utc::now();
    let entry = audit_entry(
        actor,
        actions::ROTATE,
        customer_id,
        serde_json::json!({ "keys": key_views(&keys_before, now) }),
        serde_json::json!({ "keys": key_views(&keys_after, now), "new_key_id": &key.key_id }),
    );
    registry
        .replace_keys(&key, retire_old_keys_at, &entry)
        .await
        .map_err(|error| match error {
            StoreError::NotFound { .. } => unknown_customer(customer_id, error),
            other => token_in_use(other),
        })?;
    Ok(IssuedKey::new(customer_id, &key, token, generated))
}

/// `list-keys`: a customer's keys, oldest first. `NotFound` for an unknown customer.
pub async fn list_keys(registry: &dyn Registry, customer_id: &str) -> Result<Vec<KeyView>> {
    existing_customer(registry, customer_id).await?;
    let keys = registry.keys_of_customer(customer_id).await?;
    Ok(key_views(&keys, Utc::now()))
}

/// `revoke-token`: revokes one key at once, with an audit entry (action `revoke`), and
/// returns it as stored now. `NotFound` for an unknown customer or key.
pub async fn revoke_key(
    registry: &dyn Registry,
    actor: &Actor,
    customer_id: &str,
    key_id: &str,
) -> Result<KeyView> {
    existing_customer(registry, customer_id).await?;
    let no_such_key = || {
        ControlError::not_found(format!(
            "customer {customer_id} has no key {key_id:?}; run `tollgate list-keys --customer-id {customer_id}` to see its keys"
        ))
    };
    let before = registry
        .keys_of_customer(customer_id)
        .await?
        .into_iter()
        .find(|key| key.key_id == key_id)
        .ok_or_else(no_such_key)?;
    let now = Utc::now();
    let entry = audit_entry(
        actor,
        actions::REVOKE,
        customer_id,
        serde_json::json!(key_views(std::slice::from_ref(&before), now).first()),
        serde_json::json!(key_views(&[before.retired(None)], now).first()),
    );
    let revoked = registry
        .revoke_key(customer_id, key_id, &entry)
        .await
        .map_err(|error| match error {
            StoreError::NotFound { .. } => no_such_key(),
            other => ControlError::from(other),
        })?;
    key_views(std::slice::from_ref(&revoked), Utc::now())
        .pop()
        .ok_or_else(|| ControlError::internal("the revoked key was not returned"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customers::{NewCustomer, create_customer};
    use crate::test_support::operator;
    use schemas::{Customer, CustomerStatus, Limits};
    use store::memory::MemoryStore;

    fn rotation(customer_id: &str, grace_seconds: u64) -> Rotation {
        Rotation {
            customer_id: customer_id.to_owned(),
            token: None,
            grace_period: std::time::Duration::from_secs(grace_seconds),
            expires_in: None,
        }
    }

    #[test]
    fn key_views_serialize_as_the_audit_trail_holds_them() {
        let created = DateTime::parse_from_rfc3339("2026-11-05T10:20:30.456Z")
            .unwrap()
            .with_timezone(&Utc);
        let key = ApiKey {
            key_id: "key_a".into(),
            customer_id: "c".into(),
            token_hash: schemas::TokenHash::of("x"),
            status: KeyStatus::Active,
            created_at: created,
            expires_at: None,
            last_used_at: None,
        };
        let view = key_views(&[key], created);
        assert_eq!(
            serde_json::to_value(&view[0]).unwrap(),
            serde_json::json!({"key_id": "key_a", "state": "active", "created_at": "2026-11-05T10:20:30Z", "expires_at": null, "last_used_at": null})
        );
    }

    #[test]
    fn supplied_tokens_are_checked_and_generated_ones_are_fresh() {
        assert!(token_or_generated(Some(SecretToken::new("short".into()))).is_err());
        let (first, generated) = token_or_generated(None).unwrap();
        let (second, _) = token_or_generated(None).unwrap();
        assert!(generated);
        assert_ne!(first, second);
        let supplied = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJ0A==".to_owned();
        let (token, generated) =
            token_or_generated(Some(SecretToken::new(format!(" {supplied} ")))).unwrap();
        assert!(!generated);
        assert_eq!(token.expose(), supplied);
    }

    #[tokio::test]
    async fn the_predicted_keys_after_a_rotation_are_the_stored_ones() {
        for retire_at in [
            None,
            Some(after(std::time::Duration::from_secs(3600)).unwrap()),
        ] {
            let store = MemoryStore::new();
            let customer = Customer {
                customer_id: "c".into(),
                name: "C".into(),
                email: "c@c.example".into(),
                status: CustomerStatus::Active,
                created_at: Utc::now().trunc_subsecs(3),
                limits: Limits::default(),
            };
            let entry = || {
                audit_entry(
                    &operator(),
                    "x",
                    "c",
                    serde_json::Value::Null,
                    serde_json::Value::Null,
                )
            };
            let token = || token_or_generated(None).unwrap().0;
            let first = new_key("c", &token(), None).unwrap();
            store
                .create_customer(&customer, &first, &entry())
                .await
                .unwrap();
            // An active key expiring soon, one expiring late, and a revoked one.
            let soon = new_key("c", &token(), Some(std::time::Duration::from_secs(60))).unwrap();
            store
                .replace_keys(&soon, Some(soon.created_at), &entry())
                .await
                .unwrap();
            let late =
                new_key("c", &token(), Some(std::time::Duration::from_secs(86_400))).unwrap();
            store
                .replace_keys(
                    &late,
                    Some(Utc::now() + chrono::Duration::seconds(60)),
                    &entry(),
                )
                .await
                .unwrap();
            let revoked = new_key("c", &token(), None).unwrap();
            store.replace_keys(&revoked, None, &entry()).await.unwrap();
            store
                .revoke_key("c", &revoked.key_id, &entry())
                .await
                .unwrap();

            let keys_before = store.keys_of_customer("c").await.unwrap();
            let new = new_key("c", &token(), None).unwrap();
            let predicted = keys_after_rotation(&keys_before, &new, retire_at);
            store.replace_keys(&new, retire_at, &entry()).await.unwrap();
            assert_eq!(predicted, store.keys_of_customer("c").await.unwrap());
        }
    }

    #[tokio::test]
    async fn rotation_keeps_old_keys_for_the_grace_period_or_revokes_them() {
        let store = MemoryStore::new();
        let issued = create_customer(&store, &operator(), NewCustomer::named("A", "a@a.example"))
            .await
            .unwrap();
        let id = issued.customer_id.as_str();
        let graced = rotate_token(&store, &operator(), rotation(id, 3600))
            .await
            .unwrap();
        assert!(graced.generated_token.is_some());
        let keys = list_keys(&store, id).await.unwrap();
        assert_eq!(keys.len(), 2);
        assert!(keys.iter().all(|key| key.state == KeyState::Active));
        assert!(
            keys[0].expires_at.is_some(),
            "the old key expires at the end of the grace"
        );
        let at_once = rotate_token(&store, &operator(), rotation(id, 0))
            .await
            .unwrap();
        let states: Vec<KeyState> = list_keys(&store, id)
            .await
            .unwrap()
            .iter()
            .map(|key| key.state)
            .collect();
        assert_eq!(
            states,
            [KeyState::Revoked, KeyState::Revoked, KeyState::Active]
        );
        let trail = store.audit_entries(Some(id)).await.unwrap();
        let last = trail.last().unwrap();
        assert_eq!(last.action, actions::ROTATE);
        assert_eq!(last.after["new_key_id"], at_once.key_id.as_str());
        let unknown = rotate_token(&store, &operator(), rotation("nobody", 0))
            .await
            .unwrap_err();
        assert!(
            unknown
                .to_string()
                .contains("unknown customer id \"nobody\"")
        );
        assert!(list_keys(&store, "nobody").await.is_err());
    }

    #[tokio::test]
    async fn revoking_stops_one_key_and_names_unknown_keys() {
        let store = MemoryStore::new();
        let issued = create_customer(&store, &operator(), NewCustomer::named("A", "a@a.example"))
            .await
            .unwrap();
        let id = issued.customer_id.as_str();
        let revoked = revoke_key(&store, &operator(), id, &issued.key_id)
            .await
            .unwrap();
        assert_eq!(revoked.state, KeyState::Revoked);
        let trail = store.audit_entries(Some(id)).await.unwrap();
        assert_eq!(trail.last().unwrap().after["state"], "revoked");
        assert_eq!(trail.last().unwrap().before["state"], "active");
        let missing = revoke_key(&store, &operator(), id, "key_missing")
            .await
            .unwrap_err();
        assert!(matches!(missing, ControlError::NotFound { .. }));
        assert!(missing.to_string().contains("has no key \"key_missing\""));
        let unknown = revoke_key(&store, &operator(), "nobody", "key_x")
            .await
            .unwrap_err();
        assert!(unknown.to_string().contains("unknown customer id"));
    }
}
