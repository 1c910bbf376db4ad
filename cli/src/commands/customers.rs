//! `create`, `list`, `update-token`, `update-limits`.

use anyhow::Context;
use chrono::{SubsecRound, Utc};
use schemas::token::{check_token_shape, format_generated_token, format_key_id};
use schemas::{
    ApiKey, AuditEntry, Customer, CustomerStatus, KeyStatus, LimitKind, Limits, SecretToken,
};
use serde::Serialize;
use store::{Registry, StoreError};

use crate::args::{CreateArgs, RevokeTokenArgs, UpdateLimitsArgs, UpdateTokenArgs};
use crate::exit;
use crate::output::{print_json, print_lines, print_table};

fn random_bytes<const N: usize>() -> anyhow::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|error| anyhow::anyhow!("the system random source failed: {error}"))?;
    Ok(bytes)
}

/// A token from `--token`, checked, or a newly generated one.
fn token_from(supplied: Option<String>) -> anyhow::Result<(SecretToken, bool)> {
    match supplied {
        Some(token) => {
            let token = token.trim().to_owned();
            check_token_shape(&token)
                .map_err(|error| exit::usage(format!("--token is not usable: {error}; generate one with `openssl rand -base64 32`, or omit --token")))?;
            Ok((SecretToken::new(token), false))
        }
        None => Ok((format_generated_token(&random_bytes::<32>()?), true)),
    }
}

fn after(duration: std::time::Duration) -> anyhow::Result<chrono::DateTime<Utc>> {
    let duration = chrono::Duration::from_std(duration)
        .map_err(|_| anyhow::anyhow!("duration is too long"))?;
    Ok((Utc::now() + duration).trunc_subsecs(3))
}

fn new_key(
    customer_id: &str,
    token: &SecretToken,
    expires_in: Option<std::time::Duration>,
) -> anyhow::Result<ApiKey> {
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

fn check_name_and_email(name: &str, email: &str) -> anyhow::Result<()> {
    if name.trim().is_empty() {
        return Err(exit::usage("--name is empty; give the customer's name"));
    }
    let email = email.trim();
    let valid_email = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && domain.contains('.') && !email.contains(char::is_whitespace)
    });
    if !valid_email {
        return Err(exit::usage(format!(
            "--email {email:?} is not an email address; give one like customer@example.com"
        )));
    }
    Ok(())
}

fn unknown_customer(customer_id: &str, error: StoreError) -> anyhow::Error {
    match error {
        StoreError::NotFound { .. } => exit::not_found(format!(
            "unknown customer id {customer_id:?}; run `tollgate list` to see customer ids"
        )),
        other => anyhow::Error::new(other),
    }
}

fn conflict_hint(error: StoreError) -> anyhow::Error {
    match error {
        StoreError::Conflict(_) => exit::conflict(
            "that token is already in use by a key; supply a different --token or omit it",
        ),
        other => anyhow::Error::new(other),
    }
}

#[derive(Serialize)]
struct IssuedToken<'a> {
    customer_id: &'a str,
    key_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<&'a str>,
}

fn print_issued(
    customer_id: &str,
    key: &ApiKey,
    token: &SecretToken,
    generated: bool,
    json: bool,
) -> anyhow::Result<()> {
    let shown = generated.then(|| token.expose());
    if json {
        return print_json(&IssuedToken {
            customer_id,
            key_id: &key.key_id,
            token: shown,
        });
    }
    let mut lines = vec![
        format!("customer_id: {customer_id}"),
        format!("key_id:      {}", key.key_id),
    ];
    match shown {
        Some(token) => {
            lines.push(format!("token:       {token}"));
            lines.push("Give this token to the customer now: only its hash is stored, it cannot be shown again.".into());
        }
        None => lines.push("token:       (the one you supplied; only its hash is stored)".into()),
    }
    print_lines(&lines);
    Ok(())
}

/// `tollgate create`.
pub async fn create(
    registry: &dyn Registry,
    actor: &str,
    args: CreateArgs,
    json: bool,
) -> anyhow::Result<()> {
    check_name_and_email(&args.name, &args.email)?;
    let mut limits = Limits::default();
    args.limits.apply(&mut limits, &[]).map_err(exit::usage)?;
    let (token, generated) = token_from(args.token)?;
    let customer = Customer {
        customer_id: uuid::Uuid::now_v7().to_string(),
        name: args.name.trim().to_owned(),
        email: args.email.trim().to_owned(),
        status: CustomerStatus::Active,
        created_at: Utc::now().trunc_subsecs(3),
        limits,
    };
    let key = new_key(&customer.customer_id, &token, args.expires_in)?;
    let after = serde_json::json!({"customer": &customer, "key_id": &key.key_id, "key_expires_at": key.expires_at});
    let entry = audit_entry(
        actor,
        "create",
        &customer.customer_id,
        serde_json::Value::Null,
        after,
    );
    registry
        .create_customer(&customer, &key, &entry)
        .await
        .map_err(conflict_hint)?;
    print_issued(&customer.customer_id, &key, &token, generated, json)
}

#[derive(Serialize)]
struct CustomerRow<'a> {
    customer_id: &'a str,
    name: &'a str,
    email: &'a str,
    status: &'a str,
    daily_limit: Option<u64>,
    allowed_models: Option<&'a [String]>,
    limits: &'a Limits,
    created_at: String,
}

/// `tollgate list`.
pub async fn list(registry: &dyn Registry, json: bool) -> anyhow::Result<()> {
    let customers = registry
        .list_customers()
        .await
        .context("cannot list customers")?;
    let rows: Vec<CustomerRow<'_>> = customers
        .iter()
        .map(|customer| CustomerRow {
            customer_id: &customer.customer_id,
            name: &customer.name,
            email: &customer.email,
            status: customer.status.as_str(),
            daily_limit: customer.limits.daily_request_limit,
            allowed_models: customer.limits.allowed_models.as_deref(),
            limits: &customer.limits,
            created_at: customer
                .created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        })
        .collect();
    if json {
        return print_json(&rows);
    }
    if rows.is_empty() {
        print_lines(&[
            "No customers yet. Create one with `tollgate create --name NAME --email EMAIL`.".into(),
        ]);
        return Ok(());
    }
    print_table(
        &[
            "customer_id",
            "name",
            "email",
            "status",
            "daily limit",
            "other limits",
            "models",
            "created",
        ],
        rows.iter()
            .map(|row| {
                vec![
                    row.customer_id.to_owned(),
                    row.name.to_owned(),
                    row.email.to_owned(),
                    row.status.to_owned(),
                    row.daily_limit
                        .map_or_else(|| "none".into(), |limit| limit.to_string()),
                    describe_other_limits(row.limits),
                    describe_models(row.allowed_models),
                    row.created_at.clone(),
                ]
            })
            .collect(),
    );
    Ok(())
}

/// `tollgate update-token`.
pub async fn update_token(
    registry: &dyn Registry,
    actor: &str,
    args: UpdateTokenArgs,
    json: bool,
) -> anyhow::Result<()> {
    let (token, generated) = token_from(args.token)?;
    let key = new_key(&args.customer_id, &token, args.expires_in)?;
    let retire_old_keys_at = if args.grace_period.is_zero() {
        None
    } else {
        Some(after(args.grace_period)?)
    };
    let keys_before = registry.keys_of_customer(&args.customer_id).await?;
    let keys_after = keys_after_rotation(&keys_before, &key, retire_old_keys_at);
    let entry = audit_entry(
        actor,
        "rotate",
        &args.customer_id,
        serde_json::json!({ "keys": key_rows(&keys_before) }),
        serde_json::json!({ "keys": key_rows(&keys_after), "new_key_id": &key.key_id }),
    );
    registry
        .replace_keys(&key, retire_old_keys_at, &entry)
        .await
        .map_err(|error| match error {
            StoreError::NotFound { .. } => unknown_customer(&args.customer_id, error),
            other => conflict_hint(other),
        })?;
    print_issued(&args.customer_id, &key, &token, generated, json)
}

/// A customer's keys as `replace_keys` leaves them: every active key retired at
/// `retire_old_keys_at` (or revoked at once), then `new_key`.
fn keys_after_rotation(
    keys_before: &[ApiKey],
    new_key: &ApiKey,
    retire_old_keys_at: Option<chrono::DateTime<Utc>>,
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

#[derive(Serialize)]
struct LimitsChanged<'a> {
    customer_id: &'a str,
    daily_limit: Option<u64>,
    allowed_models: Option<&'a [String]>,
    limits: &'a Limits,
}

fn describe_models(models: Option<&[String]>) -> String {
    models.map_or_else(|| "all".to_owned(), |models| models.join(", "))
}

fn describe_cap(cap: Option<u64>) -> String {
    cap.map_or_else(|| "none".into(), |cap| cap.to_string())
}

/// Every limit but the daily request limit, compactly (`monthly 3000, rpm 60`), or `-`.
fn describe_other_limits(limits: &Limits) -> String {
    let mut parts: Vec<String> = LimitKind::ALL
        .iter()
        .filter(|kind| **kind != LimitKind::DailyRequests)
        .filter_map(|kind| {
            kind.cap(limits)
                .map(|cap| format!("{} {cap}", kind.as_str()))
        })
        .collect();
    if let Some(mode) = limits.enforcement {
        parts.push(mode.as_str().to_owned());
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

/// One line per limit, for `show` and `update-limits`.
fn limit_lines(limits: &Limits) -> Vec<String> {
    vec![
        format!(
            "daily limit:         {}",
            describe_cap(limits.daily_request_limit)
        ),
        format!(
            "monthly limit:       {}",
            describe_cap(limits.monthly_request_limit)
        ),
        format!(
            "daily token limit:   {}",
            describe_cap(limits.daily_token_limit)
        ),
        format!(
            "monthly token limit: {}",
            describe_cap(limits.monthly_token_limit)
        ),
        format!(
            "requests per minute: {}",
            describe_cap(limits.requests_per_minute)
        ),
        format!(
            "enforcement:         {}",
            limits
                .enforcement
                .map_or("deployment default", |mode| mode.as_str())
        ),
        format!(
            "models:              {}",
            describe_models(limits.allowed_models.as_deref())
        ),
    ]
}

/// `tollgate update-limits`.
pub async fn update_limits(
    registry: &dyn Registry,
    actor: &str,
    args: UpdateLimitsArgs,
    json: bool,
) -> anyhow::Result<()> {
    if args.limits.is_empty() && args.clear.is_empty() {
        return Err(exit::usage(
            "nothing to change; give a limit such as --daily-limit N|none, --monthly-limit, --daily-token-limit, --monthly-token-limit, --rpm, --allowed-models LIST|all or --enforcement, or --clear LIMIT",
        ));
    }
    let limits_before = registry
        .customer(&args.customer_id)
        .await?
        .ok_or_else(|| unknown_customer(&args.customer_id, StoreError::not_found("customer")))?
        .limits;
    let mut limits = limits_before.clone();
    args.limits
        .apply(&mut limits, &args.clear)
        .map_err(exit::usage)?;
    let entry = audit_entry(
        actor,
        "limits",
        &args.customer_id,
        serde_json::json!(limits_before),
        serde_json::json!(limits),
    );
    registry
        .set_limits(&args.customer_id, &limits, &entry)
        .await
        .map_err(|error| unknown_customer(&args.customer_id, error))?;
    if json {
        return print_json(&LimitsChanged {
            customer_id: &args.customer_id,
            daily_limit: limits.daily_request_limit,
            allowed_models: limits.allowed_models.as_deref(),
            limits: &limits,
        });
    }
    let mut lines = vec![format!("limits of {}:", args.customer_id)];
    lines.extend(
        limit_lines(&limits)
            .into_iter()
            .map(|line| format!("  {line}")),
    );
    print_lines(&lines);
    Ok(())
}

/// How a key stands at `now`: `active`, `expired` or `revoked`.
fn key_state(key: &ApiKey, now: chrono::DateTime<Utc>) -> &'static str {
    if key.status == KeyStatus::Revoked {
        "revoked"
    } else if key.is_usable_at(now) {
        "active"
    } else {
        "expired"
    }
}

#[derive(Serialize)]
struct KeyRow<'a> {
    key_id: &'a str,
    state: &'static str,
    created_at: String,
    expires_at: Option<String>,
    last_used_at: Option<String>,
}

fn key_rows(keys: &[ApiKey]) -> Vec<KeyRow<'_>> {
    let now = Utc::now();
    keys.iter()
        .map(|key| KeyRow {
            key_id: &key.key_id,
            state: key_state(key, now),
            created_at: key
                .created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            expires_at: key
                .expires_at
                .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            last_used_at: key
                .last_used_at
                .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        })
        .collect()
}

fn print_key_table(rows: &[KeyRow<'_>]) {
    print_table(
        &["key_id", "state", "created", "expires", "last used"],
        rows.iter()
            .map(|row| {
                vec![
                    row.key_id.to_owned(),
                    row.state.to_owned(),
                    row.created_at.clone(),
                    row.expires_at.clone().unwrap_or_else(|| "never".into()),
                    row.last_used_at.clone().unwrap_or_else(|| "never".into()),
                ]
            })
            .collect(),
    );
}

async fn existing_customer(registry: &dyn Registry, customer_id: &str) -> anyhow::Result<Customer> {
    registry
        .customer(customer_id)
        .await?
        .ok_or_else(|| unknown_customer(customer_id, StoreError::not_found("customer")))
}

/// `tollgate list-keys`.
pub async fn list_keys(
    registry: &dyn Registry,
    customer_id: &str,
    json: bool,
) -> anyhow::Result<()> {
    existing_customer(registry, customer_id).await?;
    let keys = registry.keys_of_customer(customer_id).await?;
    let rows = key_rows(&keys);
    if json {
        return print_json(&rows);
    }
    print_key_table(&rows);
    Ok(())
}

#[derive(Serialize)]
struct CustomerDetails<'a> {
    customer: &'a Customer,
    keys: Vec<KeyRow<'a>>,
}

/// `tollgate show`.
pub async fn show(registry: &dyn Registry, customer_id: &str, json: bool) -> anyhow::Result<()> {
    let customer = existing_customer(registry, customer_id).await?;
    let keys = registry.keys_of_customer(customer_id).await?;
    let details = CustomerDetails {
        customer: &customer,
        keys: key_rows(&keys),
    };
    if json {
        return print_json(&details);
    }
    print_lines(&[
        format!("customer_id: {}", customer.customer_id),
        format!("name:        {}", customer.name),
        format!("email:       {}", customer.email),
        format!("status:      {}", customer.status.as_str()),
        format!(
            "created:     {}",
            customer
                .created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
    ]);
    print_lines(&limit_lines(&customer.limits));
    print_key_table(&details.keys);
    Ok(())
}

/// `tollgate revoke-token`.
pub async fn revoke_token(
    registry: &dyn Registry,
    actor: &str,
    args: RevokeTokenArgs,
    json: bool,
) -> anyhow::Result<()> {
    existing_customer(registry, &args.customer_id).await?;
    let no_such_key = || {
        exit::not_found(format!(
            "customer {} has no key {:?}; run `tollgate list-keys --customer-id {}` to see its keys",
            args.customer_id, args.key_id, args.customer_id
        ))
    };
    let before = registry
        .keys_of_customer(&args.customer_id)
        .await?
        .into_iter()
        .find(|key| key.key_id == args.key_id)
        .ok_or_else(no_such_key)?;
    let entry = audit_entry(
        actor,
        "revoke",
        &args.customer_id,
        serde_json::json!(key_rows(std::slice::from_ref(&before)).first()),
        serde_json::json!(key_rows(&[before.retired(None)]).first()),
    );
    let revoked = registry
        .revoke_key(&args.customer_id, &args.key_id, &entry)
        .await
        .map_err(|error| match error {
            StoreError::NotFound { .. } => no_such_key(),
            other => anyhow::Error::new(other),
        })?;
    let rows = key_rows(std::slice::from_ref(&revoked));
    if json {
        return print_json(&rows[0]);
    }
    print_lines(&[format!(
        "key {} of {} is revoked",
        revoked.key_id, args.customer_id
    )]);
    Ok(())
}

#[derive(Serialize)]
struct StatusChanged<'a> {
    customer_id: &'a str,
    status: &'static str,
}

/// `tollgate disable`, `enable` and `delete`.
pub async fn set_status(
    registry: &dyn Registry,
    actor: &str,
    customer_id: &str,
    status: CustomerStatus,
    json: bool,
) -> anyhow::Result<()> {
    let customer = existing_customer(registry, customer_id).await?;
    if customer.status == CustomerStatus::Deleted && status != CustomerStatus::Deleted {
        return Err(exit::conflict(format!(
            "customer {customer_id} is deleted and cannot be changed; create a new customer instead"
        )));
    }
    let action = match status {
        CustomerStatus::Active => "enable",
        CustomerStatus::Disabled => "disable",
        CustomerStatus::Deleted => "delete",
    };
    let entry = audit_entry(
        actor,
        action,
        customer_id,
        serde_json::json!({ "status": customer.status.as_str() }),
        serde_json::json!({ "status": status.as_str() }),
    );
    registry
        .set_customer_status(customer_id, status, &entry)
        .await
        .map_err(|error| unknown_customer(customer_id, error))?;
    if json {
        return print_json(&StatusChanged {
            customer_id,
            status: status.as_str(),
        });
    }
    let explanation = match status {
        CustomerStatus::Active => "its keys work again",
        CustomerStatus::Disabled => "its calls are refused with 403 until `tollgate enable`",
        CustomerStatus::Deleted => "its keys are revoked; its usage history is kept",
    };
    print_lines(&[format!(
        "customer {customer_id} is {}: {explanation}",
        status.as_str()
    )]);
    Ok(())
}

/// The audit entry of an administrative action, built before the change: the registry
/// writes it in the same atomic change, so a change is never made without its entry.
fn audit_entry(
    actor: &str,
    action: &str,
    customer_id: &str,
    before: serde_json::Value,
    after: serde_json::Value,
) -> AuditEntry {
    AuditEntry {
        audit_id: uuid::Uuid::now_v7(),
        at: Utc::now().trunc_subsecs(3),
        actor: actor.to_owned(),
        action: action.to_owned(),
        customer_id: customer_id.to_owned(),
        before,
        after,
    }
}

#[derive(Serialize)]
struct AuditRow<'a> {
    at: String,
    actor: &'a str,
    action: &'a str,
    customer_id: &'a str,
    before: &'a serde_json::Value,
    after: &'a serde_json::Value,
}

/// `tollgate audit`.
pub async fn audit(
    registry: &dyn Registry,
    customer_id: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    if let Some(customer_id) = customer_id {
        existing_customer(registry, customer_id).await?;
    }
    let entries = registry.audit_entries(customer_id).await?;
    let rows: Vec<AuditRow<'_>> = entries
        .iter()
        .map(|entry| AuditRow {
            at: entry
                .at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            actor: &entry.actor,
            action: &entry.action,
            customer_id: &entry.customer_id,
            before: &entry.before,
            after: &entry.after,
        })
        .collect();
    if json {
        return print_json(&rows);
    }
    print_table(
        &["at", "actor", "action", "customer_id", "before", "after"],
        rows.iter()
            .map(|row| {
                vec![
                    row.at.clone(),
                    row.actor.to_owned(),
                    row.action.to_owned(),
                    row.customer_id.to_owned(),
                    row.before.to_string(),
                    row.after.to_string(),
                ]
            })
            .collect(),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_emails_are_checked() {
        assert!(check_name_and_email("Acme", "ops@acme.example").is_ok());
        assert!(check_name_and_email(" ", "ops@acme.example").is_err());
        assert!(check_name_and_email("Acme", "not-an-email").is_err());
        assert!(check_name_and_email("Acme", "a@b").is_err());
    }

    #[tokio::test]
    async fn the_predicted_keys_after_a_rotation_are_the_stored_ones() {
        use store::memory::MemoryStore;
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
                    "t",
                    "x",
                    "c",
                    serde_json::Value::Null,
                    serde_json::Value::Null,
                )
            };
            let token = || token_from(None).unwrap().0;
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

    #[test]
    fn supplied_tokens_are_checked_and_generated_ones_are_fresh() {
        assert!(token_from(Some("short".into())).is_err());
        let (first, generated) = token_from(None).unwrap();
        let (second, _) = token_from(None).unwrap();
        assert!(generated);
        assert_ne!(first, second);
        let supplied = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJ0A==".to_owned();
        let (token, generated) = token_from(Some(supplied.clone())).unwrap();
        assert!(!generated);
        assert_eq!(token.expose(), supplied);
    }
}

#[derive(Serialize)]
struct AdminToken<'a> {
    token: &'a str,
    sha256: &'a str,
}

/// `tollgate admin-token`: a fresh dashboard credential and the hash to configure.
pub fn admin_token(json: bool) -> anyhow::Result<()> {
    let token = format_generated_token(&random_bytes::<32>()?);
    let hash = token.hash();
    if json {
        return print_json(&AdminToken {
            token: token.expose(),
            sha256: hash.as_str(),
        });
    }
    print_lines(&[
        format!(
            "admin token: {} (shown once; keep it in your password manager)",
            token.expose()
        ),
        format!(
            "start the dashboard with: tollgate serve --admin-token-sha256 {}",
            hash.as_str()
        ),
        "or set TOLLGATE_ADMIN_TOKEN_SHA256; only the hash is configured, never the token".into(),
    ]);
    Ok(())
}
