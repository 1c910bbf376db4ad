//! Spool slots: one spool directory per running proxy under a parent, and the slots a
//! stopped process left with records, for the next one to drain.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::FileSpool;
use crate::spool::Spool;
use crate::{Result, StoreError};

/// A spool directory claimed under a parent: `slot-0`, `slot-1`, … Each running proxy
/// holds one; a slot left by a process that stopped is free for the next one to take, with
/// whatever it still holds.
#[derive(Debug)]
pub struct SpoolSlot {
    pub spool: Arc<FileSpool>,
    pub directory: PathBuf,
}

impl SpoolSlot {
    /// The slot's spool as the port.
    pub fn port(&self) -> Arc<dyn Spool> {
        Arc::new(Arc::clone(&self.spool))
    }
}

impl FileSpool {
    /// Claims the first free `slot-N` under `parent` for this process.
    pub fn claim_slot(parent: &Path) -> Result<SpoolSlot> {
        for index in 0..1024 {
            let directory = parent.join(format!("slot-{index}"));
            if let Some(spool) = Self::try_open(&directory)? {
                return Ok(SpoolSlot {
                    spool: Arc::new(spool),
                    directory,
                });
            }
        }
        Err(StoreError::Unavailable(format!(
            "every spool slot under {} is in use",
            parent.display()
        )))
    }

    /// Free slots under `parent` that still hold records (left by a process that stopped),
    /// opened for this process to drain. Each stays held until dropped.
    pub fn orphaned_slots(parent: &Path) -> Result<Vec<SpoolSlot>> {
        let Ok(entries) = fs::read_dir(parent) else {
            return Ok(Vec::new());
        };
        let mut orphans = Vec::new();
        for entry in entries.flatten() {
            let directory = entry.path();
            let is_slot = directory
                .file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with("slot-"));
            if !is_slot || !directory.is_dir() {
                continue;
            }
            if let Some(spool) = Self::try_open(&directory)?
                && spool.level().records > 0
            {
                orphans.push(SpoolSlot {
                    spool: Arc::new(spool),
                    directory,
                });
            }
        }
        Ok(orphans)
    }
}
