//! The audited update of a customer's profile item (name, email, limits), shared by
//! `Registry::set_profile` and `Registry::set_limits` on DynamoDB.

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use schemas::AuditEntry;

use super::attributes::key;
use super::dynamo_registry::{DynamoRegistry, TransactFailure, audit_conflict, build};
use super::registry_items::customer_pk;
use super::registry_transactions::failed_at;
use crate::{Result, StoreError};

impl DynamoRegistry {
    /// Sets attributes of a customer's profile item with its audit entry, in one
    /// transaction. `NotFound` if the customer is absent.
    pub(super) async fn update_profile(
        &self,
        customer_id: &str,
        values: &[(&str, AttributeValue)],
        audit: &AuditEntry,
    ) -> Result<()> {
        let mut builder = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(customer_pk(customer_id), "PROFILE")))
            .condition_expression("attribute_exists(pk)");
        let mut assignments = Vec::with_capacity(values.len());
        for (index, (attribute, value)) in values.iter().enumerate() {
            assignments.push(format!("#a{index} = :v{index}"));
            builder = builder
                .expression_attribute_names(format!("#a{index}"), *attribute)
                .expression_attribute_values(format!(":v{index}"), value.clone());
        }
        let update = build(
            builder
                .update_expression(format!("SET {}", assignments.join(", ")))
                .build(),
        )?;
        let actions = vec![
            TransactWriteItem::builder().update(update).build(),
            self.audit_put(audit)?,
        ];
        self.transact(actions)
            .await
            .map_err(|failure| match failure {
                TransactFailure::Conditions(failed) if failed_at(&failed, 0) => {
                    StoreError::not_found(format!("customer {customer_id}"))
                }
                TransactFailure::Conditions(_) => audit_conflict(audit),
                TransactFailure::Store(error) => error,
            })
    }
}
