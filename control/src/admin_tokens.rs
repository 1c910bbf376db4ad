//! Admin tokens: `tollgate admin-token`, a fresh credential for the operator dashboard and
//! the SHA-256 to configure (only the hash is ever configured).

use schemas::{SecretToken, TokenHash};

use crate::error::Result;
use crate::keys::generated_token;

/// A new admin credential: the token (shown once) and its hash.
#[derive(Debug, Clone)]
pub struct AdminToken {
    pub token: SecretToken,
    pub sha256: TokenHash,
}

/// `admin-token`: a fresh credential from the system's random source.
pub fn new_admin_token() -> Result<AdminToken> {
    let token = generated_token()?;
    let sha256 = token.hash();
    Ok(AdminToken { token, sha256 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_admin_token_is_fresh_and_its_hash_matches() {
        let first = new_admin_token().unwrap();
        let second = new_admin_token().unwrap();
        assert_ne!(first.token, second.token);
        assert!(first.sha256.matches(&TokenHash::of(first.token.expose())));
        assert_eq!(first.sha256.as_str().len(), 64);
    }
}
