//! Customers: `create`, `list`, `show`, and the status changes `disable`, `enable` and
//! `delete`.

use chrono::{SubsecRound, Utc};
use schemas::{Customer, CustomerStatus, Limits, SecretToken};
use store::Registry;

use crate::audit::{Actor, actions, audit_entry};
use crate::error::{ControlError, Result, WhileDoing};
use crate::keys::{IssuedKey, KeyView, key_views, new_key, token_in_use, token_or_generated};
use crate::limits::LimitChanges;
use crate::lookup::{existing_customer, unknown_customer};

/// A customer to create, with its first key.
#[derive(Debug, Clone, Default)]
pub struct NewCustomer {
    pub name: String,
    pub email: String,
    /// A token to use instead of a generated one (at least 32 characters).
    pub token: Option<SecretToken>,
    pub limits: LimitChanges,
    /// The first key expires after this long; never when `None`.
    pub key_expires_in: Option<std::time::Duration>,
}

impl NewCustomer {
    /// A customer with a name and an email, no limits, and a generated token.
    pub fn named(name: &str, email: &str) -> Self {
        Self {
            name: name.to_owned(),
            email: email.to_owned(),
            ..Self::default()
        }
    }
}

/// A customer with its keys, as `show` presents it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CustomerDetails {
    pub customer: Customer,
    pub keys: Vec<KeyView>,
}

fn check_name_and_email(name: &str, email: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(ControlError::invalid(
            "name",
            "--name is empty; give the customer's name",
        ));
    }
    let email = email.trim();
    let valid_email = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && domain.contains('.') && !email.contains(char::is_whitespace)
    });
    if !valid_email {
        return Err(ControlError::invalid(
            "email",
            format!(
                "--email {email:?} is not an email address; give one like customer@example.com"
            ),
        ));
    }
    Ok(())
}

/// `create`: a customer and its first key, written atomically with an audit entry
/// (action `create`). `Invalid` for an empty name, a bad email, bad limits or an unusable
/// token; `Conflict` when the supplied token is in use.
pub async fn create_customer(
    registry: &dyn Registry,
    actor: &Actor,
    new: NewCustomer,
) -> Result<IssuedKey> {
    check_name_and_email(&new.name, &new.email)?;
    let mut limits = Limits::default();
    new.limits.apply(&mut limits, &[])?;
    let (token, generated) = token_or_generated(new.token)?;
    let customer = Customer {
        customer_id: uuid::Uuid::now_v7().to_string(),
        name: new.name.trim().to_owned(),
        email: new.email.trim().to_owned(),
        status: CustomerStatus::Active,
        created_at: Utc::now().trunc_subsecs(3),
        limits,
    };
    let key = new_key(&customer.customer_id, &token, new.key_expires_in)?;
    let after = serde_json::json!({"customer": &customer, "key_id": &key.key_id, "key_expires_at": key.expires_at});
    let entry = audit_entry(
        actor,
        actions::CREATE,
        &customer.customer_id,
        serde_json::Value::Null,
        after,
    );
    registry
        .create_customer(&customer, &key, &entry)
        .await
        .map_err(token_in_use)?;
    Ok(IssuedKey::new(
        &customer.customer_id,
        &key,
        token,
        generated,
    ))
}

/// `list`: every customer, by creation time.
pub async fn list_customers(registry: &dyn Registry) -> Result<Vec<Customer>> {
    registry
        .list_customers()
        .await
        .while_doing(|| "cannot list customers".into())
}

/// `show`: one customer with its keys. `NotFound` for an unknown id.
pub async fn show_customer(registry: &dyn Registry, customer_id: &str) -> Result<CustomerDetails> {
    let customer = existing_customer(registry, customer_id).await?;
    let keys = registry.keys_of_customer(customer_id).await?;
    Ok(CustomerDetails {
        customer,
        keys: key_views(&keys, Utc::now()),
    })
}

/// A change of a customer's name or email; `None` keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileChanges {
    pub name: Option<String>,
    pub email: Option<String>,
}

/// `update-customer`: a new name or email, checked as `create` checks them, with an audit
/// entry (action `profile`, before and after). `Invalid` when nothing is asked, `NotFound`
/// for an unknown id, `Conflict` for a deleted customer.
pub async fn update_profile(
    registry: &dyn Registry,
    actor: &Actor,
    customer_id: &str,
    changes: &ProfileChanges,
) -> Result<Customer> {
    if changes == &ProfileChanges::default() {
        return Err(ControlError::invalid(
            "name",
            "nothing to change; give --name or --email",
        ));
    }
    let before = existing_customer(registry, customer_id).await?;
    if before.status == CustomerStatus::Deleted {
        return Err(ControlError::conflict(format!(
            "customer {customer_id} is deleted and cannot be changed; create a new customer instead"
        )));
    }
    let name = changes.name.as_deref().unwrap_or(&before.name).trim();
    let email = changes.email.as_deref().unwrap_or(&before.email).trim();
    check_name_and_email(name, email)?;
    let entry = audit_entry(
        actor,
        actions::PROFILE,
        customer_id,
        serde_json::json!({ "name": &before.name, "email": &before.email }),
        serde_json::json!({ "name": name, "email": email }),
    );
    registry
        .set_profile(customer_id, name, email, &entry)
        .await
        .map_err(|error| unknown_customer(customer_id, error))?;
    Ok(Customer {
        name: name.to_owned(),
        email: email.to_owned(),
        ..before
    })
}

/// `disable`: the customer's calls are refused (403) until enabled again.
pub async fn disable_customer(
    registry: &dyn Registry,
    actor: &Actor,
    customer_id: &str,
) -> Result<CustomerStatus> {
    set_customer_status(registry, actor, customer_id, CustomerStatus::Disabled).await
}

/// `enable`: a disabled customer's calls are accepted again.
pub async fn enable_customer(
    registry: &dyn Registry,
    actor: &Actor,
    customer_id: &str,
) -> Result<CustomerStatus> {
    set_customer_status(registry, actor, customer_id, CustomerStatus::Active).await
}

/// `delete`: every key is revoked; the record and its usage history are kept.
pub async fn delete_customer(
    registry: &dyn Registry,
    actor: &Actor,
    customer_id: &str,
) -> Result<CustomerStatus> {
    set_customer_status(registry, actor, customer_id, CustomerStatus::Deleted).await
}

/// Sets a customer's status with its audit entry (action `enable`, `disable` or `delete`).
/// `NotFound` for an unknown id; `Conflict` for any change but `delete` to a deleted
/// customer.
pub async fn set_customer_status(
    registry: &dyn Registry,
    actor: &Actor,
    customer_id: &str,
    status: CustomerStatus,
) -> Result<CustomerStatus> {
    let customer = existing_customer(registry, customer_id).await?;
    if customer.status == CustomerStatus::Deleted && status != CustomerStatus::Deleted {
        return Err(ControlError::conflict(format!(
            "customer {customer_id} is deleted and cannot be changed; create a new customer instead"
        )));
    }
    let action = match status {
        CustomerStatus::Active => actions::ENABLE,
        CustomerStatus::Disabled => actions::DISABLE,
        CustomerStatus::Deleted => actions::DELETE,
    };
    let entry = audit_entry(
        actor,
        action,
        customer_id,
        serde_json::json!({ "status": customer.status.as_str() }),
        serde_json::json!({ "status": status.as_str() }),
    );
    registry
        .set_customer_status(customer_id, status, &entry)
        .await
        .map_err(|error| unknown_customer(customer_id, error))?;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyState;
    use crate::limits::Cap;
    use crate::test_support::operator;
    use store::memory::MemoryStore;

    #[tokio::test]
    async fn profiles_change_as_checked_as_at_creation() {
        let store = MemoryStore::new();
        let issued = create_customer(
            &store,
            &operator(),
            NewCustomer::named("Acme", "a@acme.example"),
        )
        .await
        .unwrap();
        let id = &issued.customer_id;
        let changed = update_profile(
            &store,
            &operator(),
            id,
            &ProfileChanges {
                email: Some(" billing@acme.example ".into()),
                ..ProfileChanges::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(
            (changed.name.as_str(), changed.email.as_str()),
            ("Acme", "billing@acme.example")
        );
        assert_eq!(existing_customer(&store, id).await.unwrap(), changed);
        for bad in [
            ProfileChanges::default(),
            ProfileChanges {
                email: Some("nope".into()),
                ..ProfileChanges::default()
            },
            ProfileChanges {
                name: Some(" ".into()),
                ..ProfileChanges::default()
            },
        ] {
            let error = update_profile(&store, &operator(), id, &bad)
                .await
                .unwrap_err();
            assert!(matches!(error, ControlError::Invalid { .. }), "{bad:?}");
        }
        delete_customer(&store, &operator(), id).await.unwrap();
        let deleted = update_profile(
            &store,
            &operator(),
            id,
            &ProfileChanges {
                name: Some("Gone".into()),
                ..ProfileChanges::default()
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(deleted, ControlError::Conflict { .. }));
    }

    #[test]
    fn names_and_emails_are_checked() {
        assert!(check_name_and_email("Acme", "ops@acme.example").is_ok());
        assert!(check_name_and_email(" ", "ops@acme.example").is_err());
        assert!(check_name_and_email("Acme", "not-an-email").is_err());
        assert!(check_name_and_email("Acme", "a@b").is_err());
    }

    #[tokio::test]
    async fn create_stores_the_customer_its_key_and_an_entry() {
        let store = MemoryStore::new();
        let mut new = NewCustomer::named(" Acme ", "ops@acme.example");
        new.limits.daily_request_limit = Some(Cap::Limit(1000));
        new.key_expires_in = Some(std::time::Duration::from_secs(3600));
        let issued = create_customer(&store, &operator(), new).await.unwrap();
        assert!(
            issued.generated_token.is_some(),
            "a generated token is shown once"
        );
        let customer = store.customer(&issued.customer_id).await.unwrap().unwrap();
        assert_eq!(customer.name, "Acme");
        assert_eq!(customer.limits.daily_request_limit, Some(1000));
        let keys = store.keys_of_customer(&issued.customer_id).await.unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].key_id, issued.key_id);
        assert!(keys[0].expires_at.is_some());
        let token = issued.generated_token.unwrap();
        assert_eq!(keys[0].token_hash, token.hash());
        let trail = store.audit_entries(None).await.unwrap();
        assert_eq!(trail.len(), 1);
        assert_eq!(trail[0].action, actions::CREATE);
        assert!(!trail[0].after.to_string().contains(token.expose()));
    }

    #[tokio::test]
    async fn create_refuses_bad_input_and_a_token_in_use() {
        let store = MemoryStore::new();
        let bad_email = create_customer(&store, &operator(), NewCustomer::named("Acme", "nope"))
            .await
            .unwrap_err();
        assert!(matches!(
            bad_email,
            ControlError::Invalid { field: "email", .. }
        ));
        let mut short = NewCustomer::named("Acme", "a@acme.example");
        short.token = Some(SecretToken::new("tooshort".into()));
        let short = create_customer(&store, &operator(), short)
            .await
            .unwrap_err();
        assert!(short.to_string().contains("at least 32"), "{short}");
        let token = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJ0A==";
        let mut supplied = NewCustomer::named("Acme", "a@acme.example");
        supplied.token = Some(SecretToken::new(token.into()));
        let issued = create_customer(&store, &operator(), supplied.clone())
            .await
            .unwrap();
        assert!(
            issued.generated_token.is_none(),
            "a supplied token is never shown back"
        );
        let again = create_customer(&store, &operator(), supplied)
            .await
            .unwrap_err();
        assert!(matches!(again, ControlError::Conflict { .. }));
        assert!(again.to_string().contains("already in use"));
        assert_eq!(
            list_customers(&store).await.unwrap().len(),
            1,
            "nothing else written"
        );
    }

    #[tokio::test]
    async fn list_and_show_return_the_stored_customers() {
        let store = MemoryStore::new();
        assert!(list_customers(&store).await.unwrap().is_empty());
        let first = create_customer(&store, &operator(), NewCustomer::named("A", "a@a.example"))
            .await
            .unwrap();
        let second = create_customer(&store, &operator(), NewCustomer::named("B", "b@b.example"))
            .await
            .unwrap();
        let ids: Vec<String> = list_customers(&store)
            .await
            .unwrap()
            .into_iter()
            .map(|customer| customer.customer_id)
            .collect();
        assert_eq!(ids, [first.customer_id.clone(), second.customer_id]);
        let details = show_customer(&store, &first.customer_id).await.unwrap();
        assert_eq!(details.customer.name, "A");
        assert_eq!(details.keys.len(), 1);
        assert_eq!(details.keys[0].state, KeyState::Active);
        let unknown = show_customer(&store, "nobody").await.unwrap_err();
        assert_eq!(
            unknown.to_string(),
            "unknown customer id \"nobody\"; run `tollgate list` to see customer ids"
        );
    }

    #[tokio::test]
    async fn disable_enable_and_delete_change_the_status_once_deleted_stays() {
        let store = MemoryStore::new();
        let issued = create_customer(&store, &operator(), NewCustomer::named("A", "a@a.example"))
            .await
            .unwrap();
        let id = issued.customer_id.as_str();
        async fn status(store: &MemoryStore, id: &str) -> CustomerStatus {
            store.customer(id).await.unwrap().unwrap().status
        }
        disable_customer(&store, &operator(), id).await.unwrap();
        assert_eq!(status(&store, id).await, CustomerStatus::Disabled);
        enable_customer(&store, &operator(), id).await.unwrap();
        assert_eq!(status(&store, id).await, CustomerStatus::Active);
        delete_customer(&store, &operator(), id).await.unwrap();
        assert_eq!(status(&store, id).await, CustomerStatus::Deleted);
        let keys = store.keys_of_customer(id).await.unwrap();
        assert!(
            keys.iter()
                .all(|key| key.status == schemas::KeyStatus::Revoked)
        );
        let refused = enable_customer(&store, &operator(), id).await.unwrap_err();
        assert!(matches!(refused, ControlError::Conflict { .. }));
        assert!(
            refused
                .to_string()
                .contains("is deleted and cannot be changed")
        );
        let actions: Vec<String> = store
            .audit_entries(Some(id))
            .await
            .unwrap()
            .into_iter()
            .map(|entry| entry.action)
            .collect();
        assert_eq!(actions, ["create", "disable", "enable", "delete"]);
        for unknown in [
            disable_customer(&store, &operator(), "nobody").await,
            enable_customer(&store, &operator(), "nobody").await,
            delete_customer(&store, &operator(), "nobody").await,
        ] {
            assert!(matches!(unknown, Err(ControlError::NotFound { .. })));
        }
    }
}
