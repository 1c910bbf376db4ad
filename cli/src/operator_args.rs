//! The operator's flags shared by `tollgate serve`, `tollgate-proxy` and the proxy Lambda:
//! an admin credential given by its hash, and Bedrock's price table.

use clap::Args;

/// The admin credential given by its hash, shared by `serve`, `tollgate-proxy` and the
/// proxy Lambda.
#[derive(Debug, Clone, Default, Args)]
pub struct AdminCredentialArgs {
    /// SHA-256 (hex) of one more admin credential (role admin, named `configured`),
    /// besides those stored with `tollgate admin-token --name`; a bare `tollgate
    /// admin-token` makes one and prints its hash.
    #[arg(long, env = "TOLLGATE_ADMIN_TOKEN_SHA256", value_name = "HEX", value_parser = parse_sha256)]
    pub admin_token_sha256: Option<String>,
    /// Bedrock's price table (docs/model-prices.toml): invoices from the admin API then
    /// carry their cost of goods and margin.
    #[arg(long, env = "TOLLGATE_MODEL_PRICES", value_name = "FILE")]
    pub model_prices: Option<std::path::PathBuf>,
    /// The operator as the seller (docs/seller.toml): on invoices from the admin API.
    #[arg(long, env = "TOLLGATE_SELLER_PROFILE", value_name = "FILE")]
    pub seller: Option<std::path::PathBuf>,
}

impl AdminCredentialArgs {
    /// The configured credential's hash, if any.
    pub fn configured(&self) -> Option<schemas::TokenHash> {
        self.admin_token_sha256
            .clone()
            .map(schemas::TokenHash::from_stored)
    }
}

/// Parses a lowercase or uppercase hex SHA-256.
pub fn parse_sha256(text: &str) -> Result<String, String> {
    let text = text.trim().to_ascii_lowercase();
    if text.len() == 64 && text.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        Ok(text)
    } else {
        Err("give the 64 hex digits printed by `tollgate admin-token`".into())
    }
}
