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

/// Object store errors are `Unavailable` (retryable): every object write is idempotent, and
/// the local and S3 stores fail mostly for transient reasons. The message starts with
/// `object store:`.
impl From<object_store::Error> for StoreError {
    fn from(error: object_store::Error) -> Self {
        Self::Unavailable(format!("object store: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_store_errors_are_retryable() {
        let error = StoreError::from(object_store::Error::Generic {
            store: "test",
            source: "refused".into(),
        });
        assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
        assert!(error.is_retryable());
        assert!(error.to_string().contains("object store: "), "{error}");
    }
}
