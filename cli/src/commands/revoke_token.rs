//! `tollgate revoke-token`.

use control::Actor;
use control::keys::revoke_key;
use store::Registry;

use crate::args::RevokeTokenArgs;
use crate::output::{print_json, print_lines};

/// `tollgate revoke-token`: one key stops working at once.
pub async fn run(
    registry: &dyn Registry,
    actor: &Actor,
    args: RevokeTokenArgs,
    json: bool,
) -> anyhow::Result<()> {
    let revoked = revoke_key(registry, actor, &args.customer_id, &args.key_id).await?;
    if json {
        return print_json(&revoked);
    }
    print_lines(&[format!(
        "key {} of {} is revoked",
        revoked.key_id, args.customer_id
    )]);
    Ok(())
}
