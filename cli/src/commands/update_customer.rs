//! `tollgate update-customer`.

use control::Actor;
use control::customers::{ProfileChanges, update_profile};
use store::Registry;

use crate::args::UpdateCustomerArgs;
use crate::output::{print_json, print_lines};

/// `tollgate update-customer`: a new name or email.
pub async fn run(
    registry: &dyn Registry,
    actor: &Actor,
    args: UpdateCustomerArgs,
    json: bool,
) -> anyhow::Result<()> {
    let changes = ProfileChanges {
        name: args.name,
        email: args.email,
    };
    let customer = update_profile(registry, actor, &args.customer_id, &changes).await?;
    if json {
        return print_json(&customer);
    }
    print_lines(&[format!(
        "customer {}: name {:?}, email {}",
        customer.customer_id, customer.name, customer.email
    )]);
    Ok(())
}
