//! `tollgate disable`, `tollgate enable` and `tollgate delete`: a customer's status.

use control::Actor;
use control::customers::set_customer_status;
use schemas::CustomerStatus;
use serde::Serialize;
use store::Registry;

use crate::output::{print_json, print_lines};

#[derive(Serialize)]
struct StatusChanged<'a> {
    customer_id: &'a str,
    status: &'static str,
}

/// `disable` (to `Disabled`), `enable` (to `Active`) or `delete` (to `Deleted`).
pub async fn run(
    registry: &dyn Registry,
    actor: &Actor,
    customer_id: &str,
    status: CustomerStatus,
    json: bool,
) -> anyhow::Result<()> {
    let status = set_customer_status(registry, actor, customer_id, status).await?;
    if json {
        return print_json(&StatusChanged {
            customer_id,
            status: status.as_str(),
        });
    }
    let explanation = match status {
        CustomerStatus::Active => "its keys work again",
        CustomerStatus::Disabled => "its calls are refused with 403 until `tollgate enable`",
        CustomerStatus::Deleted => "its keys are revoked; its usage history is kept",
    };
    print_lines(&[format!(
        "customer {customer_id} is {}: {explanation}",
        status.as_str()
    )]);
    Ok(())
}
