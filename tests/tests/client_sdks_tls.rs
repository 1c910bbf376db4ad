//! The official Anthropic and OpenAI SDKs (Python, and the openai npm package) over HTTPS:
//! `tollgate serve --tls-cert --tls-key` with a certificate the test makes, trusted the
//! way an operator's private CA is (`SSL_CERT_FILE`, `NODE_EXTRA_CA_CERTS`), the clients
//! themselves unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use tests::clients::{clients_dir, pinned as env, run_client as run, serve_for_clients};
use tests::fake_bedrock::FakeBedrock;
use tests::harness::Tollgate;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_anthropic_and_openai_sdks_work_over_tls() {
    let tollgate = Tollgate::new();
    let fake = FakeBedrock::start().await;
    fake.set_stream_chunks(3);
    let (customer_id, token) = tollgate.create_customer("TLS Clients", None);
    let certificate = tests::tls::TestCertificate::generate();
    let server = serve_for_clients(
        &tollgate,
        &fake,
        &[
            "--tls-cert",
            certificate.certificate_path.to_str().unwrap(),
            "--tls-key",
            certificate.key_path.to_str().unwrap(),
        ],
    );
    assert!(
        server.base_url.starts_with("https://"),
        "{}",
        server.base_url
    );
    let clients = clients_dir();
    let python = run(Command::new(env("TOLLGATE_TEST_PYTHON"))
        .arg(clients.join("sdks_over_tls.py"))
        .env("TOLLGATE_URL", &server.base_url)
        .env("TOLLGATE_TOKEN", &token)
        .env("SSL_CERT_FILE", &certificate.certificate_path));
    assert_eq!(python["anthropic"], "The capital of France is Paris.");
    assert_eq!(python["anthropic_stream"], "piece 0 piece 1 piece 2 ");
    assert_eq!(python["openai"], "The capital of France is Paris.");
    assert_eq!(python["openai_stream"], "piece 0 piece 1 piece 2 ");
    let javascript = run(Command::new("node")
        .arg(clients.join("openai_js.cjs"))
        .env("NODE_PATH", env("TOLLGATE_TEST_NODE_PATH"))
        .env("NODE_EXTRA_CA_CERTS", &certificate.certificate_path)
        .env("TOLLGATE_URL", &server.base_url)
        .env("TOLLGATE_TOKEN", &token));
    assert_eq!(
        javascript["chat"]["text"],
        "The capital of France is Paris."
    );
    assert_eq!(javascript["stream"]["text"], "piece 0 piece 1 piece 2 ");
    let answered = fake.answered();
    assert_eq!(answered.len(), 6);
    let output: u64 = answered.iter().map(|call| call.output_tokens).sum();
    let totals = tollgate
        .wait_for_usage(&customer_id, |totals| totals["requests"] == 6)
        .await;
    assert_eq!(
        totals["output_tokens"], output,
        "metered to the token over TLS too"
    );
    assert_eq!(
        totals["by_api"],
        serde_json::json!({"bedrock": 0, "spec": 0, "anthropic": 2, "openai": 4})
    );
    assert!(server.terminate().success());
}
