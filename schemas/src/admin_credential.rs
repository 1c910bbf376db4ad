//! Admin credentials: named operator credentials for the admin API and the console, each
//! with a role. Only the token's hash is ever stored.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::token::TokenHash;

/// What an admin credential may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminRole {
    /// Reads and changes everything the admin API offers.
    Admin,
    /// Reads only: every change is refused with 403.
    Viewer,
}

impl AdminRole {
    /// The stored and command-line name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Viewer => "viewer",
        }
    }

    /// Parses a stored or command-line name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admin" => Some(Self::Admin),
            "viewer" => Some(Self::Viewer),
            _ => None,
        }
    }

    /// Whether this role may change state.
    pub fn may_write(self) -> bool {
        self == Self::Admin
    }
}

/// One admin credential as stored: its name (unique for ever, so an audit actor
/// `admin-api:<name>` always names one credential), role and token hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminCredential {
    pub name: String,
    pub role: AdminRole,
    pub token_hash: TokenHash,
    pub created_at: DateTime<Utc>,
    /// When it was revoked; a revoked credential authenticates nothing.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl AdminCredential {
    /// Whether it still authenticates.
    pub fn is_live(&self) -> bool {
        self.revoked_at.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_their_names_and_only_admins_write() {
        for role in [AdminRole::Admin, AdminRole::Viewer] {
            assert_eq!(AdminRole::parse(role.as_str()), Some(role));
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(json, format!("\"{}\"", role.as_str()));
        }
        assert_eq!(AdminRole::parse("root"), None);
        assert!(AdminRole::Admin.may_write());
        assert!(!AdminRole::Viewer.may_write());
    }
}
