//! Admin credentials: `tollgate admin-token`. Named credentials with a role (`admin` or
//! `viewer`) for the admin API and the console, stored as hashes, several live at once,
//! each revocable; and the one check every adapter uses to tell who presented a token.
//!
//! A bare `tollgate admin-token` still prints an unstored credential and its SHA-256 for
//! `tollgate serve --admin-token-sha256` (a configured credential, role admin, named
//! [`CONFIGURED_CREDENTIAL_NAME`]).

use chrono::{SubsecRound, Utc};
use schemas::{AdminCredential, AdminRole, SecretToken, TokenHash};
use serde_json::json;
use store::{AdminCredentials, Registry};

use crate::audit::{Actor, actions, audit_entry};
use crate::error::{ControlError, Result, WhileDoing};
use crate::keys::generated_token;

/// The name the audit trail gives the credential configured by `--admin-token-sha256`.
pub const CONFIGURED_CREDENTIAL_NAME: &str = "configured";
/// The longest credential name.
pub const MAX_NAME_LEN: usize = 64;

/// A new unstored admin credential: the token (shown once) and its hash.
#[derive(Debug, Clone)]
pub struct AdminToken {
    pub token: SecretToken,
    pub sha256: TokenHash,
}

/// Bare `admin-token`: a fresh credential from the system's random source, not stored.
pub fn new_admin_token() -> Result<AdminToken> {
    let token = generated_token()?;
    let sha256 = token.hash();
    Ok(AdminToken { token, sha256 })
}

/// A stored credential just made: its token, shown once, and the record.
#[derive(Debug, Clone)]
pub struct IssuedAdminCredential {
    pub token: SecretToken,
    pub credential: AdminCredential,
}

/// The audit trail's subject for a credential.
pub fn audit_subject(name: &str) -> String {
    format!("admin-credential:{name}")
}

/// Checks a credential name: 1 to 64 letters, digits, `.`, `_` or `-`, so that
/// `admin-api:<name>` reads unambiguously in the audit trail.
pub fn check_name(name: &str) -> Result<()> {
    let usable = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'));
    if usable && name != CONFIGURED_CREDENTIAL_NAME {
        return Ok(());
    }
    if name == CONFIGURED_CREDENTIAL_NAME {
        return Err(ControlError::invalid(
            "name",
            format!(
                "{CONFIGURED_CREDENTIAL_NAME:?} names the credential of --admin-token-sha256; choose another name"
            ),
        ));
    }
    Err(ControlError::invalid(
        "name",
        format!(
            "credential name {name:?} is not usable: use 1 to {MAX_NAME_LEN} letters, digits, '.', '_' or '-', for example billing-system"
        ),
    ))
}

/// What the audit trail records of a credential: never its hash.
fn described(credential: &AdminCredential) -> serde_json::Value {
    json!({
        "name": credential.name,
        "role": credential.role.as_str(),
        "created_at": credential.created_at,
        "revoked_at": credential.revoked_at,
    })
}

/// `admin-token --name N --role R`: a fresh credential, stored as its hash.
pub async fn create_admin_credential(
    credentials: &dyn AdminCredentials,
    actor: &Actor,
    name: &str,
    role: AdminRole,
) -> Result<IssuedAdminCredential> {
    check_name(name)?;
    let token = generated_token()?;
    let credential = AdminCredential {
        name: name.to_owned(),
        role,
        token_hash: token.hash(),
        created_at: Utc::now().trunc_subsecs(3),
        revoked_at: None,
    };
    let audit = audit_entry(
        actor,
        actions::ADMIN_TOKEN,
        &audit_subject(name),
        serde_json::Value::Null,
        described(&credential),
    );
    credentials
        .create_admin_credential(&credential, &audit)
        .await
        .while_doing(|| format!("cannot create admin credential {name}"))?;
    Ok(IssuedAdminCredential { token, credential })
}

/// `admin-token list`: every credential, live and revoked, by name.
pub async fn list_admin_credentials(
    credentials: &dyn AdminCredentials,
) -> Result<Vec<AdminCredential>> {
    credentials
        .admin_credentials()
        .await
        .while_doing(|| "cannot list admin credentials".to_owned())
}

/// `admin-token revoke N`: the credential authenticates nothing from now on.
pub async fn revoke_admin_credential(
    credentials: &dyn AdminCredentials,
    actor: &Actor,
    name: &str,
) -> Result<AdminCredential> {
    let before = credentials
        .admin_credentials()
        .await
        .while_doing(|| format!("cannot revoke admin credential {name}"))?
        .into_iter()
        .find(|credential| credential.name == name)
        .ok_or_else(|| {
            ControlError::not_found(format!(
                "no admin credential is named {name}; `tollgate admin-token list` shows them"
            ))
        })?;
    let now = Utc::now().trunc_subsecs(3);
    let after = AdminCredential {
        revoked_at: before.revoked_at.or(Some(now)),
        ..before.clone()
    };
    let audit = audit_entry(
        actor,
        actions::REVOKE_ADMIN_TOKEN,
        &audit_subject(name),
        described(&before),
        described(&after),
    );
    credentials
        .revoke_admin_credential(name, now, &audit)
        .await
        .while_doing(|| format!("cannot revoke admin credential {name}"))
}

/// Who presented a token to an operator surface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    /// A live admin credential.
    Admin { name: String, role: AdminRole },
    /// A customer's key: never an operator, whatever its state (HTTP 403).
    CustomerToken,
    /// A revoked admin credential (HTTP 401).
    Revoked { name: String },
    /// Nothing this deployment knows (HTTP 401).
    Unknown,
}

/// Tells who presented `token`: a stored admin credential by its hash, the configured
/// credential (`--admin-token-sha256`, role admin), or a customer's key.
pub async fn identify(
    credentials: &dyn AdminCredentials,
    registry: &dyn Registry,
    configured: Option<&TokenHash>,
    token: &str,
) -> Result<Presented> {
    let hash = TokenHash::of(token);
    if configured.is_some_and(|configured| configured.matches(&hash)) {
        return Ok(Presented::Admin {
            name: CONFIGURED_CREDENTIAL_NAME.to_owned(),
            role: AdminRole::Admin,
        });
    }
    let stored = credentials
        .admin_credential_by_hash(&hash)
        .await
        .while_doing(|| "cannot check the admin credential".to_owned())?;
    if let Some(credential) = stored {
        return Ok(if credential.is_live() {
            Presented::Admin {
                name: credential.name,
                role: credential.role,
            }
        } else {
            Presented::Revoked {
                name: credential.name,
            }
        });
    }
    let customer_key = registry
        .key_by_token_hash(&hash)
        .await
        .while_doing(|| "cannot check the admin credential".to_owned())?;
    Ok(if customer_key.is_some() {
        Presented::CustomerToken
    } else {
        Presented::Unknown
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customers::{NewCustomer, create_customer};
    use crate::test_support::operator;
    use store::memory::MemoryStore;

    #[test]
    fn each_unstored_admin_token_is_fresh_and_its_hash_matches() {
        let first = new_admin_token().unwrap();
        let second = new_admin_token().unwrap();
        assert_ne!(first.token, second.token);
        assert!(first.sha256.matches(&TokenHash::of(first.token.expose())));
        assert_eq!(first.sha256.as_str().len(), 64);
    }

    #[test]
    fn names_are_short_plain_words() {
        for good in ["billing", "ops-console", "support.eu_1", &"a".repeat(64)] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "has space",
            "admin:api",
            "ünïcode",
            &"a".repeat(65),
            "configured",
        ] {
            let error = check_name(bad).unwrap_err();
            assert!(
                matches!(error, ControlError::Invalid { field: "name", .. }),
                "{bad}: {error}"
            );
        }
    }

    #[tokio::test]
    async fn a_stored_credential_identifies_its_holder_until_revoked() {
        let store = MemoryStore::new();
        let issued = create_admin_credential(&store, &operator(), "billing", AdminRole::Viewer)
            .await
            .unwrap();
        assert_eq!(
            issued.credential.token_hash,
            TokenHash::of(issued.token.expose())
        );
        let who = identify(&store, &store, None, issued.token.expose())
            .await
            .unwrap();
        assert_eq!(
            who,
            Presented::Admin {
                name: "billing".into(),
                role: AdminRole::Viewer
            }
        );
        let revoked = revoke_admin_credential(&store, &operator(), "billing")
            .await
            .unwrap();
        assert!(!revoked.is_live());
        assert_eq!(
            identify(&store, &store, None, issued.token.expose())
                .await
                .unwrap(),
            Presented::Revoked {
                name: "billing".into()
            }
        );
        let trail = store
            .audit_entries(Some(&audit_subject("billing")))
            .await
            .unwrap();
        let actions_seen: Vec<&str> = trail.iter().map(|entry| entry.action.as_str()).collect();
        assert_eq!(
            actions_seen,
            [actions::ADMIN_TOKEN, actions::REVOKE_ADMIN_TOKEN]
        );
        assert!(
            !serde_json::to_string(&trail)
                .unwrap()
                .contains(issued.credential.token_hash.as_str()),
            "the audit trail never holds the hash"
        );
    }

    #[tokio::test]
    async fn customer_tokens_configured_hashes_and_strangers_are_told_apart() {
        let store = MemoryStore::new();
        let customer = create_customer(
            &store,
            &operator(),
            NewCustomer::named("Acme", "a@acme.example"),
        )
        .await
        .unwrap();
        assert_eq!(
            identify(
                &store,
                &store,
                None,
                customer.generated_token.unwrap().expose()
            )
            .await
            .unwrap(),
            Presented::CustomerToken
        );
        assert_eq!(
            identify(&store, &store, None, "tg_nobody").await.unwrap(),
            Presented::Unknown
        );
        let configured = new_admin_token().unwrap();
        assert_eq!(
            identify(
                &store,
                &store,
                Some(&configured.sha256),
                configured.token.expose()
            )
            .await
            .unwrap(),
            Presented::Admin {
                name: CONFIGURED_CREDENTIAL_NAME.into(),
                role: AdminRole::Admin
            }
        );
        let unknown = revoke_admin_credential(&store, &operator(), "nobody")
            .await
            .unwrap_err();
        assert!(
            matches!(unknown, ControlError::NotFound { .. }),
            "{unknown}"
        );
        create_admin_credential(&store, &operator(), "ops", AdminRole::Admin)
            .await
            .unwrap();
        let again = create_admin_credential(&store, &operator(), "ops", AdminRole::Admin)
            .await
            .unwrap_err();
        assert!(matches!(again, ControlError::Conflict { .. }), "{again}");
    }
}
