//! `Plans` on DynamoDB, in the registry's table (items listed in `dynamo_registry`):
//!
//! | item | pk | sk | attributes |
//! |---|---|---|---|
//! | plan | `PLAN#<plan_id>` | `VERSION#<version, 10 digits>` | plan (JSON), entity=`plan` |
//! | plan assignment | `CUSTOMER#<customer_id>` | `ASSIGN#<yyyy-mm-dd>` | plan_id, plan_version, entity=`plan_assignment` |
//!
//! Every change is one `TransactWriteItems` whose last action puts its audit entry.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{ConditionCheck, TransactWriteItem};
use schemas::AuditEntry;
use schemas::plan::{Plan, PlanAssignment};

use super::attributes::{Item, get_number, get_string, key, number, string};
use super::dynamo_registry::{DynamoRegistry, TransactFailure, build, customer_pk};
use crate::plans::Plans;
use crate::{Result, StoreError};

/// The plan catalogue in the registry's DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoPlans {
    /// The registry over the same table: its customers, its audit trail and its helpers.
    registry: DynamoRegistry,
}

impl DynamoPlans {
    /// Plans in `table` (the registry's table).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            registry: DynamoRegistry::new(client, table),
        }
    }
}

fn plan_key(plan_id: &str, version: u32) -> Item {
    key(format!("PLAN#{plan_id}"), format!("VERSION#{version:010}"))
}

fn plan_from_item(item: &Item) -> Result<Plan> {
    serde_json::from_str(&get_string(item, "plan")?)
        .map_err(|error| StoreError::Corrupt(format!("stored plan: {error}")))
}

#[async_trait]
impl Plans for DynamoPlans {
    async fn put_plan(&self, plan: &Plan, audit: &AuditEntry) -> Result<()> {
        for _ in 0..2 {
            if let Some(stored) = self.plan(&plan.id, plan.version).await? {
                if &stored == plan {
                    return Ok(());
                }
                return Err(StoreError::Conflict(format!(
                    "plan {} version {} is stored with other content; raise the version",
                    plan.id, plan.version
                )));
            }
            let mut item = plan_key(&plan.id, plan.version);
            item.insert("entity".into(), string("plan"));
            item.insert(
                "plan".into(),
                string(
                    serde_json::to_string(plan)
                        .map_err(|error| StoreError::Corrupt(error.to_string()))?,
                ),
            );
            match self
                .registry
                .transact(vec![
                    self.registry.put_if_absent(item)?,
                    self.registry.audit_put(audit)?,
                ])
                .await
            {
                Ok(()) => return Ok(()),
                // Stored meanwhile by someone else: compare with what is there now.
                Err(TransactFailure::Conditions(failed)) if failed.first() == Some(&true) => {}
                Err(TransactFailure::Conditions(_)) => {
                    return Err(StoreError::Conflict(
                        "that audit entry already exists; nothing was changed".into(),
                    ));
                }
                Err(TransactFailure::Store(error)) => return Err(error),
            }
        }
        Err(StoreError::Conflict(format!(
            "plan {} version {} changed while it was stored; try again",
            plan.id, plan.version
        )))
    }

    async fn plan(&self, plan_id: &str, version: u32) -> Result<Option<Plan>> {
        self.registry
            .get(plan_key(plan_id, version))
            .await?
            .as_ref()
            .map(plan_from_item)
            .transpose()
    }

    async fn plans(&self) -> Result<Vec<Plan>> {
        let mut plans = self
            .registry
            .scan_entity("plan")
            .await?
            .iter()
            .map(plan_from_item)
            .collect::<Result<Vec<_>>>()?;
        plans.sort_by(|a, b| (&a.id, a.version).cmp(&(&b.id, b.version)));
        Ok(plans)
    }

    async fn assign_plan(&self, assignment: &PlanAssignment, audit: &AuditEntry) -> Result<()> {
        let exists = |item_key: Item| -> Result<TransactWriteItem> {
            Ok(TransactWriteItem::builder()
                .condition_check(build(
                    ConditionCheck::builder()
                        .table_name(&self.registry.table)
                        .set_key(Some(item_key))
                        .condition_expression("attribute_exists(pk)")
                        .build(),
                )?)
                .build())
        };
        let mut item = key(
            customer_pk(&assignment.customer_id),
            format!("ASSIGN#{}", assignment.effective_from),
        );
        item.insert("entity".into(), string("plan_assignment"));
        item.insert("plan_id".into(), string(&assignment.plan_id));
        item.insert("plan_version".into(), number(assignment.plan_version));
        let actions = vec![
            exists(key(customer_pk(&assignment.customer_id), "PROFILE"))?,
            exists(plan_key(&assignment.plan_id, assignment.plan_version))?,
            self.registry.put(item)?,
            self.registry.audit_put(audit)?,
        ];
        match self.registry.transact(actions).await {
            Ok(()) => Ok(()),
            Err(TransactFailure::Conditions(failed)) if failed.first() == Some(&true) => Err(
                StoreError::not_found(format!("customer {}", assignment.customer_id)),
            ),
            Err(TransactFailure::Conditions(failed)) if failed.get(1) == Some(&true) => {
                Err(StoreError::not_found(format!(
                    "plan {} version {}",
                    assignment.plan_id, assignment.plan_version
                )))
            }
            Err(TransactFailure::Conditions(_)) => Err(StoreError::Conflict(
                "that audit entry already exists; nothing was changed".into(),
            )),
            Err(TransactFailure::Store(error)) => Err(error),
        }
    }

    async fn plan_assignments(&self, customer_id: &str) -> Result<Vec<PlanAssignment>> {
        let items: Vec<Item> = self.registry.customer_items(customer_id, "ASSIGN#").await?;
        items
            .iter()
            .map(|item| {
                let sk = get_string(item, "sk")?;
                let date = sk.trim_start_matches("ASSIGN#");
                Ok(PlanAssignment {
                    customer_id: customer_id.to_owned(),
                    plan_id: get_string(item, "plan_id")?,
                    plan_version: u32::try_from(get_number(item, "plan_version")?).map_err(
                        |_| StoreError::Corrupt("plan assignment version out of range".into()),
                    )?,
                    effective_from: date.parse().map_err(|_| {
                        StoreError::Corrupt(format!("plan assignment date {date:?}"))
                    })?,
                })
            })
            .collect()
    }
}
