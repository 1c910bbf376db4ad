//! `tollgate update-token`.

use control::Actor;
use control::keys::{Rotation, rotate_token};
use store::Registry;

use crate::args::UpdateTokenArgs;
use crate::output::print_issued_key;

/// `tollgate update-token`: a new token; the old ones work until the grace period ends.
pub async fn run(
    registry: &dyn Registry,
    actor: &Actor,
    args: UpdateTokenArgs,
    json: bool,
) -> anyhow::Result<()> {
    let rotation = Rotation {
        customer_id: args.customer_id,
        token: args.token,
        grace_period: args.grace_period,
        expires_in: args.expires_in,
    };
    let issued = rotate_token(registry, actor, rotation).await?;
    print_issued_key(&issued, json)
}
