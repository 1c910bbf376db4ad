//! The audit trail's record: who changed what, when, with before and after values.
//! Never holds a token: keys appear by `key_id` only.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One administrative action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// UUIDv7, so entries sort by time.
    pub audit_id: Uuid,
    pub at: DateTime<Utc>,
    /// Who acted: `--actor`, `TOLLGATE_ACTOR`, or the OS user.
    pub actor: String,
    /// What was done: `create`, `rotate`, `revoke`, `limits`, `disable`, `enable`, `delete`.
    pub action: String,
    pub customer_id: String,
    /// The value before the action (`null` for a creation), as JSON.
    pub before: serde_json::Value,
    /// The value after the action, as JSON.
    pub after: serde_json::Value,
}
