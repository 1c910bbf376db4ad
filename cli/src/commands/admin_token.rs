//! `tollgate admin-token`: a credential for the operator dashboard.

use control::admin_tokens::new_admin_token;
use serde::Serialize;

use crate::output::{print_json, print_lines};

#[derive(Serialize)]
struct AdminTokenJson<'a> {
    token: &'a str,
    sha256: &'a str,
}

/// `tollgate admin-token`: prints a fresh credential once, and the hash to configure.
pub fn run(json: bool) -> anyhow::Result<()> {
    let admin = new_admin_token()?;
    if json {
        return print_json(&AdminTokenJson {
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
            "start the dashboard with: tollgate serve --admin-token-sha256 {}",
            admin.sha256.as_str()
        ),
        "or set TOLLGATE_ADMIN_TOKEN_SHA256; only the hash is configured, never the token".into(),
    ]);
    Ok(())
}
