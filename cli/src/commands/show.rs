//! `tollgate show`.

use control::customers::show_customer;
use store::Registry;

use crate::output::{limit_lines, print_json, print_key_table, print_lines, seconds};

/// `tollgate show`: profile, limits and keys.
pub async fn run(registry: &dyn Registry, customer_id: &str, json: bool) -> anyhow::Result<()> {
    let details = show_customer(registry, customer_id).await?;
    if json {
        return print_json(&details);
    }
    let customer = &details.customer;
    print_lines(&[
        format!("customer_id: {}", customer.customer_id),
        format!("name:        {}", customer.name),
        format!("email:       {}", customer.email),
        format!("status:      {}", customer.status.as_str()),
        format!("created:     {}", seconds(&customer.created_at)),
    ]);
    print_lines(&limit_lines(&customer.limits));
    print_key_table(&details.keys);
    Ok(())
}
