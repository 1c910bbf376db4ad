//! The wire-level fake Bedrock as a standalone process, for load benchmarks
//! (`bench/load.sh`): it listens on 127.0.0.1, prints `listening on URL`, answers like
//! Bedrock without keeping what it answered, and stops on SIGTERM or Ctrl-C. It accepts
//! any request with a SigV4-shaped `Authorization` header.
//!
//! `--tls DIR` serves HTTPS as Bedrock's endpoint does (HTTP/2 or HTTP/1.1, by ALPN) with a
//! new self-signed certificate for 127.0.0.1 and localhost, written to `DIR/ca.pem` for
//! clients to trust. `--http1` with it offers HTTP/1.1 only.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::PathBuf;

use tests::fake_bedrock::FakeBedrock;
use tests::tls::TestCertificate;

#[tokio::main]
async fn main() {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let tls_directory = arguments
        .iter()
        .position(|argument| argument == "--tls")
        .map(|at| PathBuf::from(arguments.get(at + 1).expect("--tls needs a directory")));
    let alpn: &[&[u8]] = if arguments.iter().any(|argument| argument == "--http1") {
        &[b"http/1.1"]
    } else {
        &[b"h2", b"http/1.1"]
    };
    // Kept until the process ends: its key file lives in a temporary directory.
    let certificate = TestCertificate::generate();
    let fake = match tls_directory {
        Some(directory) => {
            std::fs::create_dir_all(&directory).unwrap();
            std::fs::write(directory.join("ca.pem"), &certificate.certificate_pem).unwrap();
            FakeBedrock::start_tls(certificate.server_config(alpn)).await
        }
        None => FakeBedrock::start().await,
    };
    fake.set_recording(false);
    println!("listening on {}", fake.endpoint_url());
    std::io::stdout().flush().unwrap();
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    println!(
        "answered {} ({} over HTTP/2)",
        fake.answered_count(),
        fake.http2_calls()
    );
}
