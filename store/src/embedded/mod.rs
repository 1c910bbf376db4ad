//! The embedded backend: every port on one SQLite file in WAL mode.
//!
//! Calls run on Tokio's blocking pool. One connection per `EmbeddedStore`, guarded by a
//! mutex; other processes (the CLI while `serve` runs) share the file through WAL and a
//! busy timeout.

mod admin_credentials;
mod alerts;
mod counters;
mod errors;
mod event_log;
mod idempotency;
mod log_retention;
mod plans;
mod quotas;
mod registry;
mod schema;
mod watermarks;

pub use log_retention::EmbeddedLogRetention;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;

use crate::{Result, StoreError};

/// Partition name of the embedded log (it has one).
pub const EMBEDDED_PARTITION: &str = "0";

/// Prepared statements kept per connection. The ports together run a few dozen distinct
/// statements on the main connection; rusqlite's default of 16 made the least recently used
/// ones compile again on nearly every call (about 4% of the proxy's CPU under load).
const STATEMENT_CACHE_CAPACITY: usize = 128;

/// The write-ahead log is cut back to this size when it restarts after a checkpoint, so a
/// burst of writes (the log's retention deleting a day of records) does not leave it large.
const WAL_SIZE_LIMIT_BYTES: i64 = 16 * 1024 * 1024;

/// How long an append waits for another connection's write transaction to end.
const LOG_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Every port on one SQLite database file.
#[derive(Clone)]
pub struct EmbeddedStore {
    connection: Arc<Mutex<Connection>>,
    /// Strict-limit reservations, on their own connection with `synchronous=NORMAL`: in
    /// WAL mode a commit then survives a crash of the process (not of the machine) without
    /// an fsync, and reservations do not queue behind the log's and counters' writes.
    quota_connection: Arc<Mutex<Connection>>,
    /// Appends to the event log, on their own connection with `synchronous=NORMAL` for the
    /// same reasons: a proxy answers a call only once its event is appended (durable events),
    /// so an append must not wait for an fsync, nor for the consumer's counter writes on the
    /// main connection. An appended event survives a kill of the process; a crash of the
    /// machine can lose the last appends before the next checkpoint of the log. It never
    /// checkpoints the write-ahead log itself: the main connection's commits do.
    log_connection: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("EmbeddedStore")
            .field("path", &self.path)
            .finish()
    }
}

impl EmbeddedStore {
    /// Opens (creating if needed) the database at `path`, in WAL mode, and migrates it.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent).map_err(|error| {
                StoreError::Unavailable(format!(
                    "cannot create directory {}: {error}",
                    parent.display()
                ))
            })?;
        }
        let connection = Connection::open(path)?;
        connection.busy_timeout(Duration::from_secs(10))?;
        schema::prepare_new_database(&connection)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT_BYTES)?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
        schema::migrate(&connection)?;
        let quota_connection = Connection::open(path)?;
        quota_connection.busy_timeout(Duration::from_secs(10))?;
        quota_connection.pragma_update(None, "synchronous", "NORMAL")?;
        quota_connection.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT_BYTES)?;
        quota_connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
        let log_connection = Connection::open(path)?;
        log_connection.busy_timeout(LOG_BUSY_TIMEOUT)?;
        log_connection.pragma_update(None, "synchronous", "NORMAL")?;
        log_connection.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT_BYTES)?;
        // A commit that fills the write-ahead log past its limit checkpoints it, with an
        // fsync of the database file: milliseconds that a call waiting for its event would
        // wait too. Appends leave checkpoints to the main connection (the consumer's and
        // the registry's commits, off the calls' path).
        log_connection.pragma_update(None, "wal_autocheckpoint", 0)?;
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
            quota_connection: Arc::new(Mutex::new(quota_connection)),
            log_connection: Arc::new(Mutex::new(log_connection)),
            path: path.to_owned(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` with the connection on the blocking pool.
    async fn with_connection<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        Self::run_on(Arc::clone(&self.connection), work).await
    }

    /// Runs `work` with the main connection on this worker thread, when the runtime is
    /// multi-threaded (its other tasks move to another worker meanwhile); `None` without
    /// running it otherwise. Unlike [`EmbeddedStore::with_connection`], `work` may borrow.
    fn on_this_worker<T>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T>,
    ) -> Option<Result<T>> {
        if !multi_threaded_runtime() {
            return None;
        }
        Some(tokio::task::block_in_place(|| {
            let mut guard = self
                .connection
                .lock()
                .map_err(|_| StoreError::Task("sqlite connection lock poisoned".into()))?;
            work(&mut guard)
        }))
    }

    /// Runs `work` with the event log's append connection on the blocking pool.
    async fn with_log_connection<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        // A durable call waits for its append: on a multi-threaded runtime the append runs
        // on this worker (its other tasks move to another), saving the hand-off to the
        // blocking pool and back.
        if multi_threaded_runtime() {
            let connection = Arc::clone(&self.log_connection);
            return tokio::task::block_in_place(move || {
                let mut guard = connection
                    .lock()
                    .map_err(|_| StoreError::Task("sqlite connection lock poisoned".into()))?;
                work(&mut guard)
            });
        }
        Self::run_on(Arc::clone(&self.log_connection), work).await
    }

    /// Runs `work` with the quota connection on the blocking pool.
    async fn with_quota_connection<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        Self::run_on(Arc::clone(&self.quota_connection), work).await
    }

    async fn run_on<T, F>(connection: Arc<Mutex<Connection>>, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        tokio::task::spawn_blocking(move || {
            let mut guard = connection
                .lock()
                .map_err(|_| StoreError::Task("sqlite connection lock poisoned".into()))?;
            work(&mut guard)
        })
        .await
        .map_err(|error| StoreError::Task(error.to_string()))?
    }
}

/// Whether this thread runs a multi-threaded tokio runtime, where `block_in_place` may run
/// blocking work on the current worker.
fn multi_threaded_runtime() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|handle| handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract;

    fn temp_store() -> (tempfile::TempDir, EmbeddedStore) {
        let directory = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&directory.path().join("tollgate.db")).unwrap();
        (directory, store)
    }

    #[tokio::test]
    async fn embedded_event_log_contracts() {
        let (_directory, store) = temp_store();
        contract::event_appender::run_all(&store).await;
        contract::event_reader::run_all(&store, &store).await;
        contract::checkpoints::run_all(&store, EMBEDDED_PARTITION).await;
    }

    #[tokio::test]
    async fn an_append_now_gives_way_rather_than_wait_for_another_writer() {
        use crate::{EventAppender, LogRecord};
        let (_directory, store) = temp_store();
        let record = LogRecord {
            partition_key: "p".into(),
            data: bytes::Bytes::from_static(b"event"),
        };
        // Another connection (the consumer's) holds the database's write lock.
        let other = Connection::open(store.path()).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let started = std::time::Instant::now();
        assert!(store.append_now(std::slice::from_ref(&record)).is_none());
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "it gave way at once instead of waiting for the lock"
        );
        other.execute_batch("COMMIT").unwrap();
        // The append connection is in use on another thread.
        {
            let _held = store.log_connection.lock().unwrap();
            assert!(store.append_now(std::slice::from_ref(&record)).is_none());
        }
        // Free again: it appends, and a later append waits for busy writers as before.
        let appended = store
            .append_now(std::slice::from_ref(&record))
            .unwrap()
            .unwrap();
        assert_eq!(appended.len(), 1);
        let timeout: i64 = store
            .log_connection
            .lock()
            .unwrap()
            .pragma_query_value(None, "busy_timeout", |row| row.get(0))
            .unwrap();
        assert_eq!(
            timeout, 10_000,
            "the append connection waits again for other writers"
        );
    }

    #[tokio::test]
    async fn appends_leave_checkpoints_to_the_main_connection() {
        use crate::{EventAppender, LogRecord};
        let (_directory, store) = temp_store();
        let record = LogRecord {
            partition_key: "p".into(),
            data: bytes::Bytes::from(vec![7u8; 200]),
        };
        let wal = store.path().with_extension("db-wal");
        let wal_bytes = || std::fs::metadata(&wal).map_or(0, |metadata| metadata.len());
        // 1,500 commits write more than the 1,000 pages after which a commit checkpoints.
        for _ in 0..1500 {
            store
                .append_now(std::slice::from_ref(&record))
                .unwrap()
                .unwrap();
        }
        // Checkpointed at 1,000 frames, the log would start over and stay that size.
        let frame_bytes = 4096 + 24;
        assert!(
            wal_bytes() > 1200 * frame_bytes,
            "no append checkpointed: the log holds {} bytes",
            wal_bytes()
        );
        // A commit on the main connection (the consumer's checkpoint) checkpoints it, so
        // the next append starts the log over.
        use crate::Checkpoints;
        store
            .commit_checkpoint("c", EMBEDDED_PARTITION, "00000000000000000001")
            .await
            .unwrap();
        store
            .append_now(std::slice::from_ref(&record))
            .unwrap()
            .unwrap();
        let frames: i64 = store
            .with_connection(|connection| {
                Ok(connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))?)
            })
            .await
            .unwrap();
        assert!(frames < 100, "the log started over: {frames} frames");
    }

    #[tokio::test]
    async fn embedded_registry_contract() {
        let (_directory, store) = temp_store();
        contract::registry::run_all(&store).await;
    }

    #[tokio::test]
    async fn embedded_plans_contract() {
        let (_directory, store) = temp_store();
        contract::plans::run_all(&store, &store).await;
    }

    #[tokio::test]
    async fn embedded_idempotency_contract() {
        let (_directory, store) = temp_store();
        contract::idempotency::run_all(&store).await;
    }

    #[tokio::test]
    async fn embedded_admin_credentials_contract() {
        let (_directory, store) = temp_store();
        contract::admin_credentials::run_all(&store, &store).await;
    }

    #[tokio::test]
    async fn embedded_alerts_contract() {
        let (_directory, store) = temp_store();
        contract::alerts::run_all(&store).await;
    }

    #[tokio::test]
    async fn embedded_watermarks_contract() {
        let (_directory, store) = temp_store();
        contract::watermarks::run_all(&store).await;
    }

    #[tokio::test]
    async fn embedded_quotas_contract() {
        let (_directory, store) = temp_store();
        contract::quotas::run_all(&store).await;
    }

    #[tokio::test]
    async fn embedded_quotas_hold_across_processes_sharing_the_file() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("tollgate.db");
        let first = EmbeddedStore::open(&path).unwrap();
        let second = EmbeddedStore::open(&path).unwrap();
        contract::quotas::concurrent_reservations_never_pass_the_cap(&[&first, &second]).await;
    }

    #[tokio::test]
    async fn embedded_counters_contract() {
        let (_directory, store) = temp_store();
        contract::counters::run_all(&store).await;
    }

    /// On a multi-threaded runtime a batch is counted on the calling worker, read where
    /// it is; the contract holds there too.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn embedded_counters_contract_on_a_multi_threaded_runtime() {
        assert!(multi_threaded_runtime());
        let (_directory, store) = temp_store();
        contract::counters::run_all(&store).await;
    }

    #[tokio::test]
    async fn a_new_database_gives_freed_pages_back_on_incremental_vacuum() {
        let (_directory, store) = temp_store();
        let mode: i64 = store
            .with_connection(|connection| {
                Ok(connection.pragma_query_value(None, "auto_vacuum", |row| row.get(0))?)
            })
            .await
            .unwrap();
        assert_eq!(mode, schema::AUTO_VACUUM_INCREMENTAL);
    }

    #[tokio::test]
    async fn database_is_in_wal_mode_and_survives_reopen() {
        use crate::Checkpoints;
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("nested").join("tollgate.db");
        let store = EmbeddedStore::open(&path).unwrap();
        let mode: String = store
            .with_connection(|connection| {
                Ok(connection.pragma_query_value(None, "journal_mode", |row| row.get(0))?)
            })
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        store
            .commit_checkpoint("c", EMBEDDED_PARTITION, "00000000000000000003")
            .await
            .unwrap();
        drop(store);
        let reopened = EmbeddedStore::open(&path).unwrap();
        assert_eq!(
            reopened
                .load_checkpoint("c", EMBEDDED_PARTITION)
                .await
                .unwrap()
                .as_deref(),
            Some("00000000000000000003")
        );
    }
}
