//! One module per command (or per group of commands on one subject), named after it. Each
//! parses nothing and decides nothing: it turns its arguments into a control-layer call
//! and renders the result through `crate::output`.

mod admin_token;
mod alerts;
mod archive_log;
mod assign_plan;
mod audit;
mod compact;
mod create;
mod operator;

pub use operator::{OperatorSettings, admin_router as operator_routes};
mod disable_enable_delete;
mod invoice;
mod list;
mod list_keys;
mod plan;
mod quarantine;
mod reconcile;
mod replay;
mod report;
mod revoke_token;
mod serve;
mod show;
mod update_customer;
mod update_limits;
mod update_token;
mod usage;

use anyhow::Context;
use control::Actor;
use schemas::CustomerStatus;
use store::backend::{BackendArgs, BackendSettings, Ports};

use crate::args::{Cli, Command, ModelPricesCommand, PlanCommand, QuarantineCommand};

/// Runs a parsed command: the ones that need no store at once, the others on the
/// configured backend's ports.
pub async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let actor = actor_from(cli.actor.as_deref());
    let json = cli.json;
    match &cli.command {
        Command::Plan(PlanCommand::Validate { file }) => return plan::validate(file, json),
        Command::ModelPrices(ModelPricesCommand::Validate { file }) => {
            return plan::validate_model_prices(file, json);
        }
        Command::AdminToken(args) if !admin_token::needs_store(args) => {
            return admin_token::run_unstored(json);
        }
        _ => {}
    }
    let settings = cli
        .backend
        .settings()
        .map_err(|error| crate::exit::usage(error.to_string()))?;
    let ports = open_ports(&settings).await?;
    let session = Session {
        settings: &settings,
        backend: &cli.backend,
        ports: &ports,
        actor: &actor,
        json,
    };
    run_on_ports(cli.command, &session).await
}

/// What every command on open ports may use.
struct Session<'a> {
    settings: &'a BackendSettings,
    backend: &'a BackendArgs,
    ports: &'a Ports,
    actor: &'a Actor,
    json: bool,
}

/// The actor the audit trail records: `--actor` / `TOLLGATE_ACTOR` unless blank, else the
/// OS user, else `unknown`.
fn actor_from(flag: Option<&str>) -> Actor {
    let name = flag
        .filter(|actor| !actor.trim().is_empty())
        .map(str::to_owned)
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("LOGNAME").ok())
        .unwrap_or_else(|| "unknown".to_owned());
    Actor::operator(name)
}

/// How old a batch file must be before compaction may merge it: the oldest record
/// metering still retries.
fn settle_after(backend: &BackendArgs) -> std::time::Duration {
    std::time::Duration::from_secs(backend.max_record_age_hours * 3600)
}

/// Runs a command on open ports: one control-layer call and its rendering.
async fn run_on_ports(command: Command, session: &Session<'_>) -> anyhow::Result<()> {
    let Session {
        ports, actor, json, ..
    } = *session;
    let (registry, plans) = (ports.registry.as_ref(), ports.plans.as_ref());
    match command {
        Command::Create(args) => create::run(registry, actor, args, json).await,
        Command::List => list::run(registry, json).await,
        Command::Show(args) => show::run(registry, &args.customer_id, json).await,
        Command::Usage(args) => usage::run(ports, args, json).await,
        Command::UpdateToken(args) => update_token::run(registry, actor, args, json).await,
        Command::UpdateLimits(args) => update_limits::run(registry, actor, args, json).await,
        Command::UpdateCustomer(args) => update_customer::run(registry, actor, args, json).await,
        Command::ListKeys(args) => list_keys::run(registry, &args.customer_id, json).await,
        Command::RevokeToken(args) => revoke_token::run(registry, actor, args, json).await,
        Command::Disable(args) => {
            set_status(session, &args.customer_id, CustomerStatus::Disabled).await
        }
        Command::Enable(args) => {
            set_status(session, &args.customer_id, CustomerStatus::Active).await
        }
        Command::Delete(args) => {
            set_status(session, &args.customer_id, CustomerStatus::Deleted).await
        }
        Command::Audit(args) => audit::run(registry, args.customer_id.as_deref(), json).await,
        Command::Plan(PlanCommand::Validate { file }) => plan::validate(&file, json),
        Command::ModelPrices(ModelPricesCommand::Validate { file }) => {
            plan::validate_model_prices(&file, json)
        }
        Command::Plan(PlanCommand::Add { file }) => plan::add(plans, actor, &file, json).await,
        Command::Plan(PlanCommand::List) => plan::list(plans, json).await,
        Command::AssignPlan(args) => assign_plan::run(registry, plans, actor, args, json).await,
        Command::Invoice(args) => invoice::run(ports, args, json).await,
        Command::Report(args) => report::run(ports, args, json).await,
        Command::Alerts(args) => alerts::run(ports.alerts.as_ref(), args, json).await,
        Command::AdminToken(args) => {
            admin_token::run(ports.admin_credentials.as_ref(), actor, args, json).await
        }
        Command::Reconcile(args) => reconcile::run(ports, args, json).await,
        Command::Replay(args) => replay::run(session.settings, ports, args, json).await,
        Command::ArchiveLog(args) => archive_log::run(ports, &args, json).await,
        Command::Quarantine(QuarantineCommand::List) => quarantine::list(ports, json).await,
        Command::Quarantine(QuarantineCommand::Requeue) => quarantine::requeue(ports, json).await,
        Command::Compact(args) => {
            compact::run(ports, args, settle_after(session.backend), json).await
        }
        Command::Serve(args) => {
            serve::serve(
                ports.clone(),
                session.settings,
                *args,
                &session.backend.data_dir,
                json,
            )
            .await
        }
    }
}

async fn set_status(
    session: &Session<'_>,
    customer_id: &str,
    status: CustomerStatus,
) -> anyhow::Result<()> {
    let registry = session.ports.registry.as_ref();
    disable_enable_delete::run(registry, session.actor, customer_id, status, session.json).await
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
