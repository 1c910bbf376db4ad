//! `tollgate list-keys`.

use control::keys::list_keys;
use store::Registry;

use crate::output::{print_json, print_key_table};

/// `tollgate list-keys`: a customer's keys with their state, creation and expiry.
pub async fn run(registry: &dyn Registry, customer_id: &str, json: bool) -> anyhow::Result<()> {
    let keys = list_keys(registry, customer_id).await?;
    if json {
        return print_json(&keys);
    }
    print_key_table(&keys);
    Ok(())
}
