//! The wire-level fake Bedrock as a standalone process, for load benchmarks
//! (`bench/load.sh`): it listens on 127.0.0.1, prints `listening on http://ADDR`, answers
//! like Bedrock without keeping what it answered, and stops on SIGTERM or Ctrl-C. It accepts
//! any request with a SigV4-shaped `Authorization` header.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;

use tests::fake_bedrock::FakeBedrock;

#[tokio::main]
async fn main() {
    let fake = FakeBedrock::start().await;
    fake.set_recording(false);
    println!("listening on {}", fake.endpoint_url());
    std::io::stdout().flush().unwrap();
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    println!("answered {}", fake.answered_count());
}
