//! The embedded database's tables, versioned with `PRAGMA user_version`.

use rusqlite::Connection;

use crate::{Result, StoreError};

/// The schema version this build writes.
/// The newest schema: one step per `SCHEMA_V*` below, applied in order.
pub const SCHEMA_VERSION: i64 = 7;

const SCHEMA_V1: &str = "
CREATE TABLE event_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    partition_key TEXT NOT NULL,
    data BLOB NOT NULL,
    appended_at_ms INTEGER NOT NULL
);
CREATE TABLE checkpoints (
    consumer TEXT NOT NULL,
    partition TEXT NOT NULL,
    position TEXT NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (consumer, partition)
) WITHOUT ROWID;
CREATE TABLE customers (
    customer_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    limits_json TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE api_keys (
    key_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (customer_id),
    token_hash TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER
) WITHOUT ROWID;
CREATE INDEX api_keys_by_customer ON api_keys (customer_id, created_at_ms);
CREATE TABLE counter_dedupe (
    event_id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    applied_at_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE usage_counters (
    customer_id TEXT NOT NULL,
    day TEXT NOT NULL,
    model_id TEXT NOT NULL,
    requests INTEGER NOT NULL,
    rejected INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cache_read_tokens INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    PRIMARY KEY (customer_id, day, model_id)
) WITHOUT ROWID;
";

const SCHEMA_V2: &str = "
CREATE TABLE audit_log (
    audit_id TEXT PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    customer_id TEXT NOT NULL,
    entry_json TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX audit_log_by_customer ON audit_log (customer_id, at_ms);
";

const SCHEMA_V3: &str = "
CREATE TABLE quota_windows (
    customer_id TEXT NOT NULL,
    window_id TEXT NOT NULL,
    requests INTEGER NOT NULL,
    tokens INTEGER NOT NULL,
    forget_after_ms INTEGER NOT NULL,
    PRIMARY KEY (customer_id, window_id)
) WITHOUT ROWID;
ALTER TABLE api_keys ADD COLUMN last_used_at_ms INTEGER;
";

const SCHEMA_V4: &str = "
CREATE TABLE instance_progress (
    proxy_instance TEXT PRIMARY KEY,
    progress_json TEXT NOT NULL
) WITHOUT ROWID;
";

const SCHEMA_V5: &str = "
CREATE TABLE plans (
    plan_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    plan_json TEXT NOT NULL,
    PRIMARY KEY (plan_id, version)
) WITHOUT ROWID;
CREATE TABLE plan_assignments (
    customer_id TEXT NOT NULL REFERENCES customers (customer_id),
    effective_from TEXT NOT NULL,
    plan_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (customer_id, effective_from)
) WITHOUT ROWID;
";

const SCHEMA_V6: &str = "
CREATE TABLE alerts (
    alert_key TEXT PRIMARY KEY,
    raised_at_ms INTEGER NOT NULL,
    alert_json TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX alerts_by_time ON alerts (raised_at_ms);
";

const SCHEMA_V7: &str = "
CREATE TABLE usage_hourly (
    customer_id TEXT NOT NULL,
    hour TEXT NOT NULL,
    requests INTEGER NOT NULL,
    rejected INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cache_read_tokens INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    PRIMARY KEY (customer_id, hour)
) WITHOUT ROWID;
CREATE INDEX usage_hourly_by_hour ON usage_hourly (hour);
";

/// Brings the database to [`SCHEMA_VERSION`]; refuses a database from a newer build.
pub fn migrate(connection: &Connection) -> Result<()> {
    let version: i64 = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "database schema version {version} is newer than this build's {SCHEMA_VERSION}; upgrade tollgate"
        )));
    }
    // Each step moves the database from the version before it, in its own transaction.
    let steps = [
        SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, SCHEMA_V5, SCHEMA_V6, SCHEMA_V7,
    ];
    for (target, step) in (1_i64..).zip(steps) {
        if version < target {
            connection.execute_batch(&format!(
                "BEGIN IMMEDIATE; {step} PRAGMA user_version = {target}; COMMIT;"
            ))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_one_database_is_migrated_and_a_newer_one_refused() {
        let connection = Connection::open_in_memory().unwrap();
        connection
            .execute_batch(&format!("{SCHEMA_V1} PRAGMA user_version = 1;"))
            .unwrap();
        migrate(&connection).unwrap();
        let version: i64 = connection
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let audit_rows: i64 = connection
            .query_row("SELECT count(*) FROM audit_log", [], |row| row.get(0))
            .unwrap();
        assert_eq!(audit_rows, 0);
        let quota_rows: i64 = connection
            .query_row("SELECT count(*) FROM quota_windows", [], |row| row.get(0))
            .unwrap();
        assert_eq!(quota_rows, 0);

        connection
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let refused = migrate(&connection).unwrap_err();
        assert!(
            refused.to_string().contains("upgrade tollgate"),
            "{refused}"
        );
    }
}
