//! Object storage for Parquet, archive and quarantine files, through `object_store`.

use std::path::Path;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;

use crate::{Result, StoreError};

/// A local directory as an object store; creates the directory if needed.
pub fn local_object_store(root: &Path) -> Result<Arc<dyn ObjectStore>> {
    std::fs::create_dir_all(root).map_err(|error| {
        StoreError::Unavailable(format!(
            "cannot create data directory {}: {error}",
            root.display()
        ))
    })?;
    let store = LocalFileSystem::new_with_prefix(root)?;
    Ok(Arc::new(store))
}
