//! Where the embedded default keeps its files.

use std::path::PathBuf;

use crate::args::StoreArgs;

/// The database file and the data directory (Parquet, quarantine).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorePaths {
    pub database: PathBuf,
    pub data_dir: PathBuf,
}

impl StorePaths {
    /// Resolves `--db` and `--data-dir`: the database defaults to `<data-dir>/tollgate.db`.
    pub fn resolve(args: &StoreArgs) -> Self {
        let database = args
            .db
            .clone()
            .unwrap_or_else(|| args.data_dir.join("tollgate.db"));
        Self {
            database,
            data_dir: args.data_dir.clone(),
        }
    }
}
