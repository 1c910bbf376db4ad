//! The proxy Lambda: the same axum router as the server, behind API Gateway (REST stage
//! `prod`) through `lambda_http`, with Lambda response streaming: API Gateway invokes it with
//! `InvokeWithResponseStream` (the integration's `ResponseTransferMode: STREAM`), so a
//! Bedrock stream reaches the client as it is produced, and answers are not capped at
//! 10 MB or 29 s. Each response ends only after its usage event is durable in Kinesis,
//! since Lambda may freeze the process right after. The admin API and the console
//! (`/admin/…`) are served by the same function.
//! Configuration comes from the same `TOLLGATE_*` environment variables as every binary.

/// mimalloc rather than the system allocator: the consumer allocates and frees a few
/// strings per event, and glibc's malloc was a sixth of its time (BENCHMARKS.md, issue 17).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use proxy::lambda::{LambdaArguments, run_lambda};
use tollgate_cli::args::AdminCredentialArgs;
use tollgate_cli::commands::{OperatorSettings, operator_routes};

/// The proxy Lambda's configuration, with the operator's routes.
#[derive(Debug, Parser)]
#[command(name = "tollgate-proxy-lambda", version)]
struct Arguments {
    #[command(flatten)]
    lambda: LambdaArguments,
    #[command(flatten)]
    admin: AdminCredentialArgs,
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::process::init_logging("info");
    telemetry::process::small_pages_only();
    let arguments = Arguments::parse();
    let operator = match OperatorSettings::from_args(&arguments.admin) {
        Ok(operator) => operator,
        Err(error) => return Err(error.into()),
    };
    let routes = |ports: &store::backend::Ports| Some(operator_routes(ports.clone(), &operator));
    run_lambda(arguments.lambda, routes).await
}
