//! `tollgate serve --tls-cert --tls-key` speaks HTTPS with a certificate the test makes,
//! and refuses plain HTTP on that port.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tests::fake_bedrock::FakeBedrock;
use tests::harness::{Tollgate, spec_body};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_speaks_https_with_the_given_certificate() {
    let tollgate = Tollgate::new();
    let fake = FakeBedrock::start().await;
    let (customer_id, token) = tollgate.create_customer("Secure Co", None);

    let certificate = tests::tls::TestCertificate::generate();
    let certificate_pem = certificate.certificate_pem.clone();

    let server = tollgate.serve(&[
        "--upstream",
        "bedrock",
        "--bedrock-endpoint-url",
        &fake.endpoint_url(),
        "--tls-cert",
        certificate.certificate_path.to_str().unwrap(),
        "--tls-key",
        certificate.key_path.to_str().unwrap(),
    ]);
    assert!(
        server.base_url.starts_with("https://"),
        "{}",
        server.base_url
    );

    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(certificate_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let response = client
        .post(format!("{}/prod/bedrock", server.base_url))
        .bearer_auth(&token)
        .json(&spec_body("over TLS"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.version(),
        reqwest::Version::HTTP_2,
        "ALPN offers h2"
    );

    let untrusting = reqwest::Client::new();
    assert!(
        untrusting
            .get(format!("{}/health", server.base_url))
            .send()
            .await
            .is_err(),
        "a client that does not trust the certificate is refused"
    );
    let plain_url = server.base_url.replacen("https://", "http://", 1);
    let plain = reqwest::Client::new()
        .post(format!("{plain_url}/prod/bedrock"))
        .bearer_auth(&token)
        .json(&spec_body("plain"))
        .send()
        .await;
    assert!(
        plain.is_err(),
        "plain HTTP is not served on the TLS port: {plain:?}"
    );

    assert!(server.terminate().success());
    let usage = tollgate.usage_today(&customer_id);
    assert_eq!(usage["totals"]["requests"], 1);
    assert_eq!(fake.answered().len(), 1);
}

/// `tollgate serve` against an HTTPS fake Bedrock whose certificate is in `bundle` (or
/// trusting the public roots when `None`).
fn serve_trusting(
    tollgate: &Tollgate,
    fake: &FakeBedrock,
    bundle: Option<&std::path::Path>,
) -> tests::harness::ServeProcess {
    let mut flags = vec![
        "--upstream".to_owned(),
        "bedrock".to_owned(),
        "--bedrock-endpoint-url".to_owned(),
        fake.endpoint_url(),
    ];
    if let Some(bundle) = bundle {
        flags.extend([
            "--bedrock-ca-bundle".to_owned(),
            bundle.display().to_string(),
        ]);
    }
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    tollgate.serve(&flags)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bedrock_over_https_is_trusted_through_the_operators_ca_bundle_and_speaks_http2() {
    let tollgate = Tollgate::new();
    let (customer_id, token) = tollgate.create_customer("Private CA Co", None);
    let certificate = tests::tls::TestCertificate::generate();
    let fake = FakeBedrock::start_tls(certificate.server_config(&[b"h2", b"http/1.1"])).await;
    assert!(fake.endpoint_url().starts_with("https://"));

    // Without the bundle the fake's certificate is not trusted: no call reaches it.
    let untrusting = serve_trusting(&tollgate, &fake, None);
    assert_eq!(untrusting.spec_calls(&token, 1).await, vec![502]);
    assert_eq!(fake.answered_count(), 0);
    assert!(untrusting.terminate().success());

    let server = serve_trusting(&tollgate, &fake, Some(&certificate.certificate_path));
    assert_eq!(server.spec_calls(&token, 5).await, vec![200; 5]);
    assert!(server.terminate().success());
    assert_eq!(fake.answered_count(), 5);
    assert_eq!(
        fake.http2_calls(),
        5,
        "Bedrock's endpoint offers h2: calls use it"
    );
    // The refused call is on the customer's record as an error, with no tokens.
    let usage = tollgate.usage_today(&customer_id);
    assert_eq!(usage["totals"]["requests"], 6, "{usage}");
    assert_eq!(usage["totals"]["errors"], 1, "{usage}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_endpoint_that_offers_only_http1_is_called_over_http1() {
    let tollgate = Tollgate::new();
    let (_, token) = tollgate.create_customer("Old Proxy Co", None);
    let certificate = tests::tls::TestCertificate::generate();
    let fake = FakeBedrock::start_tls(certificate.server_config(&[b"http/1.1"])).await;
    let server = serve_trusting(&tollgate, &fake, Some(&certificate.certificate_path));
    assert_eq!(server.spec_calls(&token, 3).await, vec![200; 3]);
    assert!(server.terminate().success());
    assert_eq!(fake.answered_count(), 3);
    assert_eq!(fake.http2_calls(), 0);
}

#[test]
fn a_ca_bundle_that_is_missing_or_holds_no_certificate_stops_serve_with_the_fix() {
    let tollgate = Tollgate::new();
    let directory = tempfile::tempdir().unwrap();
    let not_pem = directory.path().join("bundle.txt");
    std::fs::write(&not_pem, "this is not a certificate\n").unwrap();
    let missing = directory.path().join("missing.pem");
    for (bundle, reason) in [
        (&missing, "No such file"),
        (&not_pem, "holds no PEM certificate"),
    ] {
        let output = tollgate.run(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "bedrock",
            "--bedrock-endpoint-url",
            "https://127.0.0.1:9",
            "--bedrock-ca-bundle",
            bundle.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "serve must not start: {stderr}");
        assert!(stderr.contains(bundle.to_str().unwrap()), "{stderr}");
        assert!(stderr.contains(reason), "{stderr}");
        assert!(stderr.contains("--bedrock-ca-bundle"), "{stderr}");
    }
}
