//! `tollgate create`.

use control::Actor;
use control::customers::{NewCustomer, create_customer};
use store::Registry;

use crate::args::CreateArgs;
use crate::output::print_issued_key;

/// `tollgate create`: the customer and its first token (printed once when generated).
pub async fn run(
    registry: &dyn Registry,
    actor: &Actor,
    args: CreateArgs,
    json: bool,
) -> anyhow::Result<()> {
    let new = NewCustomer {
        name: args.name,
        email: args.email,
        token: args.token,
        limits: args.limits.changes(),
        key_expires_in: args.expires_in,
    };
    let issued = create_customer(registry, actor, new).await?;
    print_issued_key(&issued, json)
}
