//! `Quotas` on DynamoDB: one item per customer in the counters table, holding every live
//! window of that customer as attributes, so a reservation across the minute, day and
//! month windows is one conditional `UpdateItem` (atomic, and it returns the new levels).
//!
//! | item | pk | sk | attributes |
//! |---|---|---|---|
//! | quota windows | `QUOTA#<customer_id>` | `WINDOWS` | `r\|<window>` requests, `t\|<window>` tokens, `e\|<window>` forget-after (epoch s), `expires_at` (TTL) |
//!
//! A window's attributes are removed once its forget-after time has passed (when a later
//! reservation sees them). One item per customer caps strict enforcement at DynamoDB's
//! per-item write rate (about 1,000 writes/s, and a settlement is a second write).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{Duration, Utc};
use schemas::quota::Level;

use super::attributes::{Item, key, number};
use super::errors::aws_error;
use crate::Result;
use crate::quotas::{QuotaAdjustment, QuotaCharge, Quotas, Reservation, WINDOW_GRACE};

/// How long an idle customer's quota item lives (longer than any window).
const ITEM_LIFETIME: Duration = Duration::days(40);
/// Reservation attempts when a refusal turns out to be a race with a window's end.
const MAX_ATTEMPTS: usize = 4;

/// Strict-mode quota windows in the counters table.
#[derive(Debug, Clone)]
pub struct DynamoQuotas {
    client: Client,
    table: String,
}

fn quota_key(customer_id: &str) -> Item {
    key(format!("QUOTA#{customer_id}"), "WINDOWS")
}

fn attribute_count(item: &Item, name: &str) -> u64 {
    match item.get(name) {
        Some(AttributeValue::N(value)) => value
            .parse::<i64>()
            .ok()
            .and_then(|value| u64::try_from(value).ok())
            .unwrap_or(0),
        _ => 0,
    }
}

fn level_in(item: &Item, window: &str) -> Level {
    Level {
        requests: attribute_count(item, &format!("r|{window}")),
        tokens: attribute_count(item, &format!("t|{window}")),
    }
}

/// Builds `ADD`/`SET` clauses with numbered placeholders.
#[derive(Default)]
struct Expression {
    adds: Vec<String>,
    sets: Vec<String>,
    conditions: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expression {
    fn name(&mut self, placeholder: String, attribute: String) -> String {
        self.names.insert(placeholder.clone(), attribute);
        placeholder
    }

    fn value(&mut self, placeholder: String, value: AttributeValue) -> String {
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    fn touch_window(&mut self, index: usize, window: &str, forget_after: i64) {
        let name = self.name(format!("#e{index}"), format!("e|{window}"));
        let value = self.value(format!(":e{index}"), number(forget_after));
        self.sets.push(format!("{name} = {value}"));
    }

    fn update_expression(&self) -> String {
        let mut clauses = Vec::new();
        if !self.adds.is_empty() {
            clauses.push(format!("ADD {}", self.adds.join(", ")));
        }
        if !self.sets.is_empty() {
            clauses.push(format!("SET {}", self.sets.join(", ")));
        }
        clauses.join(" ")
    }
}

impl DynamoQuotas {
    /// Quota windows in `table` (the counters table).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    async fn read_item(&self, customer_id: &str) -> Result<Item> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(quota_key(customer_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| aws_error("GetItem", &self.table, error))?;
        Ok(output.item.unwrap_or_default())
    }

    /// Removes the attributes of windows whose forget-after time has passed.
    async fn forget_ended_windows(&self, customer_id: &str, item: &Item) {
        let now = Utc::now().timestamp();
        let mut expression = Expression::default();
        let mut removals = Vec::new();
        for (attribute, value) in item {
            let Some(window) = attribute.strip_prefix("e|") else {
                continue;
            };
            let ended = matches!(value, AttributeValue::N(at) if at.parse::<i64>().is_ok_and(|at| at < now));
            if ended {
                let index = removals.len();
                for (prefix, letter) in [("r", "r"), ("t", "t"), ("e", "e")] {
                    let name =
                        expression.name(format!("#{letter}{index}"), format!("{prefix}|{window}"));
                    removals.push(name);
                }
            }
        }
        if removals.is_empty() {
            return;
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(quota_key(customer_id)))
            .update_expression(format!("REMOVE {}", removals.join(", ")))
            .set_expression_attribute_names(Some(expression.names))
            .send()
            .await;
        if let Err(error) = result {
            tracing::warn!(error = %aws_error("UpdateItem", &self.table, error), "could not remove ended quota windows; a later reservation retries");
        }
    }

    async fn try_reserve(
        &self,
        customer_id: &str,
        charges: &[QuotaCharge],
    ) -> Result<Option<Item>> {
        let mut expression = Expression::default();
        for (index, charge) in charges.iter().enumerate() {
            let requests = expression.name(format!("#r{index}"), format!("r|{}", charge.window));
            let tokens = expression.name(format!("#t{index}"), format!("t|{}", charge.window));
            let add_requests = expression.value(format!(":r{index}"), number(charge.requests));
            let add_tokens = expression.value(format!(":t{index}"), number(charge.tokens));
            expression.adds.push(format!("{requests} {add_requests}"));
            expression.adds.push(format!("{tokens} {add_tokens}"));
            let forget_after = (charge.resets_at + WINDOW_GRACE).timestamp();
            expression.touch_window(index, &charge.window, forget_after);
            if let Some(cap) = charge.request_cap {
                let most = expression.value(
                    format!(":rc{index}"),
                    number(cap.saturating_sub(charge.requests)),
                );
                expression.conditions.push(format!(
                    "(attribute_not_exists({requests}) OR {requests} <= {most})"
                ));
            }
            if let Some(cap) = charge.token_cap {
                let most = expression.value(
                    format!(":tc{index}"),
                    number(cap.saturating_sub(charge.tokens)),
                );
                expression.conditions.push(format!(
                    "(attribute_not_exists({tokens}) OR {tokens} <= {most})"
                ));
            }
        }
        let lifetime = expression.value(
            ":lifetime".to_owned(),
            number((Utc::now() + ITEM_LIFETIME).timestamp()),
        );
        expression.sets.push(format!("expires_at = {lifetime}"));
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(quota_key(customer_id)))
            .update_expression(expression.update_expression())
            .set_expression_attribute_names(Some(expression.names))
            .set_expression_attribute_values(Some(expression.values))
            .return_values(ReturnValue::AllNew);
        if !expression.conditions.is_empty() {
            request = request.condition_expression(expression.conditions.join(" AND "));
        }
        match request.send().await {
            Ok(output) => Ok(Some(output.attributes.unwrap_or_default())),
            Err(SdkError::ServiceError(context))
                if matches!(
                    context.err(),
                    UpdateItemError::ConditionalCheckFailedException(_)
                ) =>
            {
                Ok(None)
            }
            Err(error) => Err(aws_error("UpdateItem", &self.table, error)),
        }
    }
}

#[async_trait]
impl Quotas for DynamoQuotas {
    async fn reserve(&self, customer_id: &str, charges: &[QuotaCharge]) -> Result<Reservation> {
        let impossible = charges
            .iter()
            .position(|charge| !charge.fits(Level::default()));
        let mut levels = Vec::new();
        for _ in 0..MAX_ATTEMPTS {
            if impossible.is_none()
                && let Some(item) = self.try_reserve(customer_id, charges).await?
            {
                let after = charges
                    .iter()
                    .map(|charge| level_in(&item, &charge.window))
                    .collect();
                self.forget_ended_windows(customer_id, &item).await;
                return Ok(Reservation::Granted(after));
            }
            let item = self.read_item(customer_id).await?;
            levels = charges
                .iter()
                .map(|charge| level_in(&item, &charge.window))
                .collect::<Vec<_>>();
            if let Some(refused) = charges
                .iter()
                .zip(&levels)
                .position(|(charge, level)| !charge.fits(*level))
            {
                return Ok(Reservation::Refused { refused, levels });
            }
        }
        Ok(Reservation::Refused { refused: 0, levels })
    }

    async fn adjust(&self, customer_id: &str, adjustments: &[QuotaAdjustment]) -> Result<()> {
        if adjustments.is_empty() {
            return Ok(());
        }
        let mut expression = Expression::default();
        for (index, adjustment) in adjustments.iter().enumerate() {
            if adjustment.tokens != 0 {
                let tokens =
                    expression.name(format!("#t{index}"), format!("t|{}", adjustment.window));
                let change = expression.value(format!(":t{index}"), number(adjustment.tokens));
                expression.adds.push(format!("{tokens} {change}"));
            }
            if adjustment.requests != 0 {
                let requests =
                    expression.name(format!("#r{index}"), format!("r|{}", adjustment.window));
                let change = expression.value(format!(":r{index}"), number(adjustment.requests));
                expression.adds.push(format!("{requests} {change}"));
            }
            let forget_after = (adjustment.resets_at + WINDOW_GRACE).timestamp();
            expression.touch_window(index, &adjustment.window, forget_after);
        }
        let lifetime = expression.value(
            ":lifetime".to_owned(),
            number((Utc::now() + ITEM_LIFETIME).timestamp()),
        );
        expression.sets.push(format!("expires_at = {lifetime}"));
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(quota_key(customer_id)))
            .update_expression(expression.update_expression())
            .set_expression_attribute_names(Some(expression.names))
            .set_expression_attribute_values(Some(expression.values))
            .send()
            .await
            .map_err(|error| aws_error("UpdateItem", &self.table, error))?;
        Ok(())
    }

    async fn levels(&self, customer_id: &str, windows: &[String]) -> Result<Vec<Level>> {
        let item = self.read_item(customer_id).await?;
        Ok(windows
            .iter()
            .map(|window| level_in(&item, window))
            .collect())
    }
}
