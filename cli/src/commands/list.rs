//! `tollgate list`.

use control::customers::list_customers;
use schemas::Limits;
use serde::Serialize;
use store::Registry;

use crate::output::{
    describe_models, describe_other_limits, print_json, print_lines, print_table, seconds,
};

#[derive(Serialize)]
struct CustomerRow<'a> {
    customer_id: &'a str,
    name: &'a str,
    email: &'a str,
    status: &'a str,
    daily_limit: Option<u64>,
    allowed_models: Option<&'a [String]>,
    limits: &'a Limits,
    created_at: String,
}

/// `tollgate list`.
pub async fn run(registry: &dyn Registry, json: bool) -> anyhow::Result<()> {
    let customers = list_customers(registry).await?;
    let rows: Vec<CustomerRow<'_>> = customers
        .iter()
        .map(|customer| CustomerRow {
            customer_id: &customer.customer_id,
            name: &customer.name,
            email: &customer.email,
            status: customer.status.as_str(),
            daily_limit: customer.limits.daily_request_limit,
            allowed_models: customer.limits.allowed_models.as_deref(),
            limits: &customer.limits,
            created_at: seconds(&customer.created_at),
        })
        .collect();
    if json {
        return print_json(&rows);
    }
    if rows.is_empty() {
        print_lines(&[
            "No customers yet. Create one with `tollgate create --name NAME --email EMAIL`.".into(),
        ]);
        return Ok(());
    }
    print_table(
        &[
            "customer_id",
            "name",
            "email",
            "status",
            "daily limit",
            "other limits",
            "models",
            "created",
        ],
        rows.iter()
            .map(|row| {
                vec![
                    row.customer_id.to_owned(),
                    row.name.to_owned(),
                    row.email.to_owned(),
                    row.status.to_owned(),
                    row.daily_limit
                        .map_or_else(|| "none".into(), |limit| limit.to_string()),
                    describe_other_limits(row.limits),
                    describe_models(row.allowed_models),
                    row.created_at.clone(),
                ]
            })
            .collect(),
    );
    Ok(())
}
