//! `tollgate admin-token`: admin credentials for the admin API and the console.

use control::Actor;
use control::admin_tokens::{
    create_admin_credential, list_admin_credentials, new_admin_token, revoke_admin_credential,
};
use schemas::{AdminCredential, AdminRole};
use serde::Serialize;
use store::AdminCredentials;

use crate::args::{AdminRoleArg, AdminTokenArgs, AdminTokenCommand};
use crate::output::{print_json, print_lines, print_table, seconds};

#[derive(Serialize)]
struct UnstoredJson<'a> {
    token: &'a str,
    sha256: &'a str,
}

#[derive(Serialize)]
struct IssuedJson<'a> {
    name: &'a str,
    role: AdminRole,
    token: &'a str,
    created_at: chrono::DateTime<chrono::Utc>,
}

/// Whether the command needs the store (everything but the bare, unstored credential).
pub fn needs_store(args: &AdminTokenArgs) -> bool {
    args.name.is_some() || args.command.is_some()
}

/// Bare `tollgate admin-token`: prints a fresh unstored credential once, and the hash to
/// configure.
pub fn run_unstored(json: bool) -> anyhow::Result<()> {
    let admin = new_admin_token()?;
    if json {
        return print_json(&UnstoredJson {
            token: admin.token.expose(),
            sha256: admin.sha256.as_str(),
        });
    }
    print_lines(&[
        format!(
            "admin token: {} (shown once; keep it in your password manager)",
            admin.token.expose()
        ),
        format!(
            "start the server with: tollgate serve --admin-token-sha256 {}",
            admin.sha256.as_str()
        ),
        "or set TOLLGATE_ADMIN_TOKEN_SHA256; only the hash is configured, never the token".into(),
        "for named credentials with a role, stored and revocable: tollgate admin-token --name NAME --role admin|viewer".into(),
    ]);
    Ok(())
}

/// `tollgate admin-token --name … | list | revoke …` on the store.
pub async fn run(
    credentials: &dyn AdminCredentials,
    actor: &Actor,
    args: AdminTokenArgs,
    json: bool,
) -> anyhow::Result<()> {
    match (args.command, args.name) {
        (Some(AdminTokenCommand::List), _) => list(credentials, json).await,
        (Some(AdminTokenCommand::Revoke { name }), _) => {
            let revoked = revoke_admin_credential(credentials, actor, &name).await?;
            if json {
                return print_json(&revoked);
            }
            print_lines(&[format!(
                "admin credential {} revoked at {}; it authenticates nothing from now on",
                revoked.name,
                revoked.revoked_at.as_ref().map(seconds).unwrap_or_default()
            )]);
            Ok(())
        }
        (None, Some(name)) => {
            let role = match args.role {
                AdminRoleArg::Admin => AdminRole::Admin,
                AdminRoleArg::Viewer => AdminRole::Viewer,
            };
            let issued = create_admin_credential(credentials, actor, &name, role).await?;
            if json {
                return print_json(&IssuedJson {
                    name: &issued.credential.name,
                    role: issued.credential.role,
                    token: issued.token.expose(),
                    created_at: issued.credential.created_at,
                });
            }
            print_lines(&[
                format!(
                    "admin credential {} ({}) created",
                    issued.credential.name,
                    issued.credential.role.as_str()
                ),
                format!(
                    "token: {} (shown once; only its hash is stored)",
                    issued.token.expose()
                ),
                "use it as: Authorization: Bearer <token> on /admin/api/v1/ and /admin/".into(),
            ]);
            Ok(())
        }
        (None, None) => run_unstored(json),
    }
}

async fn list(credentials: &dyn AdminCredentials, json: bool) -> anyhow::Result<()> {
    let stored: Vec<AdminCredential> = list_admin_credentials(credentials).await?;
    if json {
        #[derive(Serialize)]
        struct Listed<'a> {
            name: &'a str,
            role: AdminRole,
            created_at: chrono::DateTime<chrono::Utc>,
            revoked_at: Option<chrono::DateTime<chrono::Utc>>,
        }
        let listed: Vec<Listed<'_>> = stored
            .iter()
            .map(|credential| Listed {
                name: &credential.name,
                role: credential.role,
                created_at: credential.created_at,
                revoked_at: credential.revoked_at,
            })
            .collect();
        return print_json(&listed);
    }
    let rows = stored
        .iter()
        .map(|credential| {
            vec![
                credential.name.clone(),
                credential.role.as_str().to_owned(),
                seconds(&credential.created_at),
                credential.revoked_at.as_ref().map_or_else(
                    || "live".to_owned(),
                    |at| format!("revoked {}", seconds(at)),
                ),
            ]
        })
        .collect();
    print_table(&["NAME", "ROLE", "CREATED", "STATE"], rows);
    Ok(())
}
