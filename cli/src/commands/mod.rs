//! One module per group of commands; each opens the store it needs and calls the libraries.

mod customers;
mod serve;
mod usage;

use std::sync::Arc;

use anyhow::Context;
use store::embedded::EmbeddedStore;

use crate::args::{Cli, Command};
use crate::paths::StorePaths;

/// Runs a parsed command.
pub async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let paths = StorePaths::resolve(&cli.store);
    match cli.command {
        Command::Create(args) => customers::create(&*open_store(&paths)?, args, cli.json).await,
        Command::List => customers::list(&*open_store(&paths)?, cli.json).await,
        Command::Usage(args) => usage::show_usage(&*open_store(&paths)?, args, cli.json).await,
        Command::UpdateToken(args) => {
            customers::update_token(&*open_store(&paths)?, args, cli.json).await
        }
        Command::UpdateLimits(args) => {
            customers::update_limits(&*open_store(&paths)?, args, cli.json).await
        }
        Command::Serve(args) => serve::serve(paths, args, cli.json).await,
    }
}

/// Opens the embedded store, with an error that names the file.
pub fn open_store(paths: &StorePaths) -> anyhow::Result<Arc<EmbeddedStore>> {
    let store = EmbeddedStore::open(&paths.database).with_context(|| {
        format!(
            "cannot open the database {}; check --db / TOLLGATE_DB and that the directory is writable",
            paths.database.display()
        )
    })?;
    Ok(Arc::new(store))
}
