//! The embedded database's tables, versioned with `PRAGMA user_version`.

use rusqlite::Connection;

use crate::{Result, StoreError};

/// The schema version this build writes.
/// The newest schema: one step per `SCHEMA_V*` below, applied in order.
pub const SCHEMA_VERSION: i64 = 12;

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

/// Counted events are remembered per producer as ranges of sequence numbers
/// (`crate::dedupe`), no longer one mark per event. [`seed_producer_seqs`] fills the new
/// table from the old marks before they are dropped.
const SCHEMA_V8: &str = "
CREATE TABLE producer_seqs (
    producer TEXT PRIMARY KEY,
    ranges TEXT NOT NULL,
    updated_at_ms INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Carries the counted events of a database written before schema 8 over to
/// `producer_seqs`: every event of the log that has a dedupe mark was counted, so its
/// producer's number goes into that producer's ranges. Then the marks are dropped. Runs
/// inside the step's transaction, so an interrupted upgrade leaves the old schema whole.
fn seed_producer_seqs(connection: &Connection) -> Result<()> {
    let mut select = connection.prepare(
        "SELECT json_extract(CAST(event_log.data AS TEXT), '$.proxy_instance'),
                json_extract(CAST(event_log.data AS TEXT), '$.instance_seq')
         FROM event_log JOIN counter_dedupe
           ON counter_dedupe.event_id = json_extract(CAST(event_log.data AS TEXT), '$.event_id')
         WHERE json_valid(CAST(event_log.data AS TEXT))",
    )?;
    let mut producers: std::collections::BTreeMap<String, crate::dedupe::SeqRanges> =
        std::collections::BTreeMap::new();
    let rows = select.query_map([], |row| {
        Ok((
            row.get::<_, Option<String>>(0)?,
            row.get::<_, Option<i64>>(1)?,
        ))
    })?;
    for row in rows {
        if let (Some(producer), Some(seq)) = row?
            && let Ok(seq) = u64::try_from(seq)
        {
            producers.entry(producer).or_default().insert(seq);
        }
    }
    let now = chrono::Utc::now().timestamp_millis();
    let mut insert = connection.prepare(
        "INSERT INTO producer_seqs (producer, ranges, updated_at_ms) VALUES (?1, ?2, ?3)",
    )?;
    for (producer, ranges) in producers {
        insert.execute(rusqlite::params![producer, ranges.to_string(), now])?;
    }
    connection.execute_batch("DROP TABLE counter_dedupe;")?;
    Ok(())
}

/// Schema 9: the file gives pages freed by the log's retention back to the file system
/// (`auto_vacuum=INCREMENTAL`, then `PRAGMA incremental_vacuum` in short steps). A new
/// database is created that way ([`prepare_new_database`]); an older one is rewritten once
/// by `VACUUM`, which cannot run inside a transaction and takes about as long as copying
/// the file. A crash during it leaves the file as it was, at version 8, and the next open
/// runs it again.
fn enable_incremental_vacuum(connection: &Connection) -> Result<()> {
    let mode: i64 = connection.pragma_query_value(None, "auto_vacuum", |row| row.get(0))?;
    if mode != AUTO_VACUUM_INCREMENTAL {
        tracing::info!(
            "rewriting the database once so that retention can give freed space back (schema 9)"
        );
        connection.execute_batch("PRAGMA auto_vacuum = INCREMENTAL; VACUUM;")?;
    }
    connection.execute_batch("PRAGMA user_version = 9;")?;
    Ok(())
}

/// Schema 10: named admin credentials (`AdminCredentials`), by name and by token hash.
const SCHEMA_V10: &str = "
CREATE TABLE admin_credentials (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at_ms INTEGER NOT NULL,
    revoked_at_ms INTEGER
) WITHOUT ROWID;
";

/// Schema 11: the admin API's idempotency keys (`IdempotencyKeys`), kept a day.
const SCHEMA_V11: &str = "
CREATE TABLE idempotency_keys (
    lookup TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    status INTEGER,
    answer BLOB
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at_ms);
";

/// Schema 12: admitted calls by the API the customer called, in the daily and hourly
/// counters; cells counted before read zero for each API.
const SCHEMA_V12: &str = "
ALTER TABLE usage_counters ADD COLUMN requests_bedrock INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_counters ADD COLUMN requests_spec INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_counters ADD COLUMN requests_anthropic INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_counters ADD COLUMN requests_openai INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hourly ADD COLUMN requests_bedrock INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hourly ADD COLUMN requests_spec INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hourly ADD COLUMN requests_anthropic INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hourly ADD COLUMN requests_openai INTEGER NOT NULL DEFAULT 0;
";

/// Steps after schema 9, each applied in its own transaction: (version, statements).
const LATER_STEPS: [(i64, &str); 3] = [(10, SCHEMA_V10), (11, SCHEMA_V11), (12, SCHEMA_V12)];

/// `PRAGMA auto_vacuum`'s value for INCREMENTAL.
pub const AUTO_VACUUM_INCREMENTAL: i64 = 2;

/// Sets what must be set before a database's first table: free pages go back to the file
/// system on `PRAGMA incremental_vacuum`. No effect on a database that has tables.
pub fn prepare_new_database(connection: &Connection) -> Result<()> {
    let tables: i64 =
        connection.query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get(0))?;
    if tables == 0 {
        connection.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    }
    Ok(())
}

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
        SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, SCHEMA_V5, SCHEMA_V6, SCHEMA_V7, SCHEMA_V8,
    ];
    for (target, step) in (1_i64..).zip(steps) {
        if version < target {
            connection.execute_batch(&format!("BEGIN IMMEDIATE; {step}"))?;
            let seeded = if target == 8 {
                seed_producer_seqs(connection)
            } else {
                Ok(())
            };
            match seeded.and_then(|()| {
                Ok(
                    connection
                        .execute_batch(&format!("PRAGMA user_version = {target}; COMMIT;"))?,
                )
            }) {
                Ok(()) => {}
                Err(error) => {
                    let _ = connection.execute_batch("ROLLBACK;");
                    return Err(error);
                }
            }
        }
    }
    if version < 9 {
        enable_incremental_vacuum(connection)?;
    }
    for (target, step) in LATER_STEPS {
        if version < target {
            let applied = connection.execute_batch(&format!(
                "BEGIN IMMEDIATE; {step} PRAGMA user_version = {target}; COMMIT;"
            ));
            if let Err(error) = applied {
                let _ = connection.execute_batch("ROLLBACK;");
                return Err(error.into());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_events_of_a_schema_seven_database_become_producer_ranges() {
        let connection = Connection::open_in_memory().unwrap();
        let upto_seven = [
            SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, SCHEMA_V5, SCHEMA_V6, SCHEMA_V7,
        ]
        .join("\n");
        connection
            .execute_batch(&format!("{upto_seven} PRAGMA user_version = 7;"))
            .unwrap();
        for seq in 1..=5_u64 {
            let event_id = format!("00000000-0000-7000-8000-00000000000{seq}");
            let data = format!(
                r#"{{"event_id":"{event_id}","proxy_instance":"proxy-a","instance_seq":{seq}}}"#
            );
            connection
                .execute(
                    "INSERT INTO event_log (partition_key, data, appended_at_ms) VALUES ('c', ?1, 0)",
                    rusqlite::params![data.as_bytes()],
                )
                .unwrap();
            // Events 1, 2, 3 and 5 were counted; 4 was not yet.
            if seq != 4 {
                connection
                    .execute(
                        "INSERT INTO counter_dedupe (event_id, source, applied_at_ms) VALUES (?1, '0/1', 0)",
                        rusqlite::params![event_id],
                    )
                    .unwrap();
            }
        }
        connection
            .execute(
                "INSERT INTO event_log (partition_key, data, appended_at_ms) VALUES ('c', X'00ff', 0)",
                [],
            )
            .unwrap();
        migrate(&connection).unwrap();
        let ranges: String = connection
            .query_row(
                "SELECT ranges FROM producer_seqs WHERE producer = 'proxy-a'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(ranges, "1-3,5");
    }

    #[test]
    fn a_version_one_database_is_migrated_and_a_newer_one_refused() {
        let connection = Connection::open_in_memory().unwrap();
        connection
            .execute_batch(&format!("{SCHEMA_V1} PRAGMA user_version = 1;"))
            .unwrap();
        connection
            .execute(
                "INSERT INTO usage_counters VALUES ('c', '2026-01-01', 'm', 3, 0, 0, 1, 1, 0, 0)",
                [],
            )
            .unwrap();
        migrate(&connection).unwrap();
        let version: i64 = connection
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        // Cells counted before the API was recorded read zero calls through each API.
        let by_api: (i64, i64, i64, i64, i64) = connection
            .query_row(
                "SELECT requests, requests_bedrock, requests_spec, requests_anthropic, requests_openai FROM usage_counters",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?)),
            )
            .unwrap();
        assert_eq!(by_api, (3, 0, 0, 0, 0));
        let audit_rows: i64 = connection
            .query_row("SELECT count(*) FROM audit_log", [], |row| row.get(0))
            .unwrap();
        assert_eq!(audit_rows, 0);
        let quota_rows: i64 = connection
            .query_row("SELECT count(*) FROM quota_windows", [], |row| row.get(0))
            .unwrap();
        assert_eq!(quota_rows, 0);

        let marks: i64 = connection
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'counter_dedupe'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(marks, 0, "the per-event marks are gone");
        let auto_vacuum: i64 = connection
            .pragma_query_value(None, "auto_vacuum", |row| row.get(0))
            .unwrap();
        assert_eq!(
            auto_vacuum, AUTO_VACUUM_INCREMENTAL,
            "an existing database is rewritten to give freed pages back"
        );

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
