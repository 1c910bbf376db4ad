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
