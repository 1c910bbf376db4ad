//! The `AdminCredentials` contract suite. Audit entries are read back from the registry's
//! audit trail, so the suite also takes the registry the backend shares its storage with.

use chrono::{Duration, SubsecRound, Utc};
use schemas::{AdminCredential, AdminRole, TokenHash};

use super::registry::audit_for;
use super::unique;
use crate::StoreError;
use crate::admin_credentials::AdminCredentials;
use crate::registry::Registry;

/// Runs every scenario against one backend: `credentials` and `registry` share its storage.
pub async fn run_all(credentials: &dyn AdminCredentials, registry: &dyn Registry) {
    a_credential_is_found_by_its_hash_and_listed_by_name(credentials, registry).await;
    names_and_hashes_are_unique_for_ever(credentials, registry).await;
    revoking_keeps_the_record_and_its_first_time(credentials, registry).await;
}

/// A fresh credential named `name-<unique>`, created now.
pub fn new_credential(name: &str, role: AdminRole) -> AdminCredential {
    AdminCredential {
        name: unique(name),
        role,
        token_hash: TokenHash::of(&unique("admin-token")),
        created_at: Utc::now().trunc_subsecs(3),
        revoked_at: None,
    }
}

fn subject(credential: &AdminCredential) -> String {
    format!("admin-credential:{}", credential.name)
}

async fn entries_about(registry: &dyn Registry, credential: &AdminCredential) -> usize {
    registry
        .audit_entries(Some(&subject(credential)))
        .await
        .unwrap()
        .len()
}

async fn a_credential_is_found_by_its_hash_and_listed_by_name(
    credentials: &dyn AdminCredentials,
    registry: &dyn Registry,
) {
    let admin = new_credential("ops", AdminRole::Admin);
    let viewer = new_credential("support", AdminRole::Viewer);
    for credential in [&admin, &viewer] {
        credentials
            .create_admin_credential(credential, &audit_for(&subject(credential), "admin-token"))
            .await
            .unwrap();
        assert_eq!(entries_about(registry, credential).await, 1);
    }
    assert_eq!(
        credentials
            .admin_credential_by_hash(&viewer.token_hash)
            .await
            .unwrap(),
        Some(viewer.clone())
    );
    assert_eq!(
        credentials
            .admin_credential_by_hash(&TokenHash::of(&unique("nobody")))
            .await
            .unwrap(),
        None
    );
    let listed: Vec<AdminCredential> = credentials
        .admin_credentials()
        .await
        .unwrap()
        .into_iter()
        .filter(|stored| stored.name == admin.name || stored.name == viewer.name)
        .collect();
    assert_eq!(listed, vec![admin, viewer], "listed by name");
    let all = credentials.admin_credentials().await.unwrap();
    let mut names: Vec<&str> = all.iter().map(|stored| stored.name.as_str()).collect();
    let listed_order = names.clone();
    names.sort_unstable();
    assert_eq!(listed_order, names, "every credential is listed by name");
}

async fn names_and_hashes_are_unique_for_ever(
    credentials: &dyn AdminCredentials,
    registry: &dyn Registry,
) {
    let first = new_credential("billing", AdminRole::Admin);
    credentials
        .create_admin_credential(&first, &audit_for(&subject(&first), "admin-token"))
        .await
        .unwrap();
    let same_name = AdminCredential {
        token_hash: TokenHash::of(&unique("other-token")),
        ..first.clone()
    };
    let refused = credentials
        .create_admin_credential(&same_name, &audit_for(&subject(&first), "admin-token"))
        .await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    let same_hash = AdminCredential {
        name: unique("billing"),
        ..first.clone()
    };
    let refused = credentials
        .create_admin_credential(&same_hash, &audit_for(&subject(&same_hash), "admin-token"))
        .await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    assert_eq!(
        entries_about(registry, &same_hash).await,
        0,
        "a refused credential writes no audit entry"
    );
    // Revoked, the name still cannot be taken again.
    credentials
        .revoke_admin_credential(
            &first.name,
            Utc::now(),
            &audit_for(&subject(&first), "revoke"),
        )
        .await
        .unwrap();
    let refused = credentials
        .create_admin_credential(&same_name, &audit_for(&subject(&first), "admin-token"))
        .await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    assert_eq!(entries_about(registry, &first).await, 2);
}

async fn revoking_keeps_the_record_and_its_first_time(
    credentials: &dyn AdminCredentials,
    registry: &dyn Registry,
) {
    let credential = new_credential("console", AdminRole::Viewer);
    credentials
        .create_admin_credential(
            &credential,
            &audit_for(&subject(&credential), "admin-token"),
        )
        .await
        .unwrap();
    let first_time = Utc::now().trunc_subsecs(3);
    let revoked = credentials
        .revoke_admin_credential(
            &credential.name,
            first_time,
            &audit_for(&subject(&credential), "revoke"),
        )
        .await
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(first_time));
    assert!(!revoked.is_live());
    let again = credentials
        .revoke_admin_credential(
            &credential.name,
            first_time + Duration::seconds(5),
            &audit_for(&subject(&credential), "revoke"),
        )
        .await
        .unwrap();
    assert_eq!(
        again.revoked_at,
        Some(first_time),
        "the first revocation stands"
    );
    assert_eq!(
        credentials
            .admin_credential_by_hash(&credential.token_hash)
            .await
            .unwrap(),
        Some(revoked)
    );
    assert_eq!(entries_about(registry, &credential).await, 3);
    let unknown = credentials
        .revoke_admin_credential(
            &unique("nobody"),
            first_time,
            &audit_for("admin-credential:nobody", "revoke"),
        )
        .await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound { .. })),
        "{unknown:?}"
    );
    assert_eq!(
        registry
            .audit_entries(Some("admin-credential:nobody"))
            .await
            .unwrap()
            .len(),
        0
    );
}
