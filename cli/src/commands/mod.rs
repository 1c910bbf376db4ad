//! One module per group of commands; each takes the ports it needs and calls the libraries.

mod admin;
mod customers;
mod invoices;
mod plans;
mod reconcile;
mod serve;
pub(crate) mod usage;

use anyhow::Context;
use schemas::CustomerStatus;
use store::backend::{BackendSettings, Ports};

use crate::args::{Cli, Command, PlanCommand};

/// Runs a parsed command.
pub async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let actor = cli
        .actor
        .clone()
        .filter(|actor| !actor.trim().is_empty())
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("LOGNAME").ok())
        .unwrap_or_else(|| "unknown".to_owned());
    if let Command::Plan(command @ PlanCommand::Validate { .. }) = &cli.command {
        return plans::run(command, cli.json);
    }
    if matches!(cli.command, Command::AdminToken) {
        return customers::admin_token(cli.json);
    }
    let settings = cli
        .backend
        .settings()
        .map_err(|error| crate::exit::usage(error.to_string()))?;
    let ports = open_ports(&settings).await?;
    match cli.command {
        Command::Create(args) => {
            customers::create(ports.registry.as_ref(), &actor, args, cli.json).await
        }
        Command::List => customers::list(ports.registry.as_ref(), cli.json).await,
        Command::Usage(args) => usage::show_usage(&ports, args, cli.json).await,
        Command::UpdateToken(args) => {
            customers::update_token(ports.registry.as_ref(), &actor, args, cli.json).await
        }
        Command::UpdateLimits(args) => {
            customers::update_limits(ports.registry.as_ref(), &actor, args, cli.json).await
        }
        Command::Show(args) => {
            customers::show(ports.registry.as_ref(), &args.customer_id, cli.json).await
        }
        Command::ListKeys(args) => {
            customers::list_keys(ports.registry.as_ref(), &args.customer_id, cli.json).await
        }
        Command::RevokeToken(args) => {
            customers::revoke_token(ports.registry.as_ref(), &actor, args, cli.json).await
        }
        Command::Disable(args) => {
            customers::set_status(
                ports.registry.as_ref(),
                &actor,
                &args.customer_id,
                CustomerStatus::Disabled,
                cli.json,
            )
            .await
        }
        Command::Enable(args) => {
            customers::set_status(
                ports.registry.as_ref(),
                &actor,
                &args.customer_id,
                CustomerStatus::Active,
                cli.json,
            )
            .await
        }
        Command::Delete(args) => {
            customers::set_status(
                ports.registry.as_ref(),
                &actor,
                &args.customer_id,
                CustomerStatus::Deleted,
                cli.json,
            )
            .await
        }
        Command::Reconcile(args) => reconcile::reconcile(&ports, args, cli.json).await,
        Command::Replay(args) => reconcile::replay(&settings, &ports, args, cli.json).await,
        Command::Plan(command) => {
            plans::run_stored(ports.plans.as_ref(), &actor, &command, cli.json).await
        }
        Command::Invoice(args) => invoices::invoice(&ports, args, cli.json).await,
        Command::Report(args) => invoices::report(&ports, args, cli.json).await,
        Command::AdminToken => customers::admin_token(cli.json),
        Command::Alerts(args) => {
            let since = chrono::Utc::now()
                - chrono::Duration::from_std(args.since)
                    .map_err(|_| crate::exit::usage("--since is too long"))?;
            let alerts = ports.alerts.since(since).await?;
            if cli.json {
                return crate::output::print_json(&alerts);
            }
            if alerts.is_empty() {
                crate::output::print_lines(&["no alerts in that time".into()]);
                return Ok(());
            }
            crate::output::print_table(
                &["raised", "rule", "customer_id", "window", "message"],
                alerts
                    .iter()
                    .map(|recorded| {
                        vec![
                            recorded
                                .raised_at
                                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                            recorded.alert.rule.clone(),
                            recorded.alert.customer_id.clone(),
                            recorded.alert.window.clone(),
                            recorded.alert.message.clone(),
                        ]
                    })
                    .collect(),
            );
            Ok(())
        }
        Command::AssignPlan(args) => {
            plans::assign(
                ports.registry.as_ref(),
                ports.plans.as_ref(),
                &actor,
                args,
                cli.json,
            )
            .await
        }
        Command::Compact(args) => {
            let settle_after =
                std::time::Duration::from_secs(cli.backend.max_record_age_hours * 3600);
            reconcile::compact(&ports, args, settle_after, cli.json).await
        }
        Command::Audit(args) => {
            customers::audit(
                ports.registry.as_ref(),
                args.customer_id.as_deref(),
                cli.json,
            )
            .await
        }
        Command::Serve(args) => {
            serve::serve(ports, &settings, *args, &cli.backend.data_dir, cli.json).await
        }
    }
}

/// Opens the configured backend, with an error that names what is wrong.
pub async fn open_ports(settings: &BackendSettings) -> anyhow::Result<Ports> {
    settings.open().await.with_context(|| match settings {
        BackendSettings::Embedded { database, .. } => format!(
            "cannot open the database {}; check --db / TOLLGATE_DB and that the directory is writable",
            database.display()
        ),
        BackendSettings::Aws(aws) => format!(
            "cannot use the AWS backend in region {}",
            aws.region.as_deref().unwrap_or("from the AWS chain")
        ),
    })
}

/// Refuses a reversed date range or one longer than `max_days`.
pub(crate) fn check_date_range(
    start: chrono::NaiveDate,
    end: chrono::NaiveDate,
    max_days: i64,
) -> anyhow::Result<()> {
    if end < start {
        return Err(crate::exit::usage(format!(
            "--end-date {end} is before --start-date {start}; swap them"
        )));
    }
    if (end - start).num_days() > max_days {
        return Err(crate::exit::usage(format!(
            "the date range is longer than {max_days} days; ask for a shorter range"
        )));
    }
    Ok(())
}

/// Refuses a customer id the registry does not know.
pub(crate) async fn check_customer_exists(
    registry: &dyn store::Registry,
    customer_id: &str,
) -> anyhow::Result<()> {
    if registry.customer(customer_id).await?.is_none() {
        return Err(crate::exit::not_found(format!(
            "unknown customer id {customer_id:?}; run `tollgate list` to see customer ids"
        )));
    }
    Ok(())
}
