//! The Bedrock runtime against a raw HTTP/1.1 server on 127.0.0.1: what goes out on the
//! wire, and how the timeouts and a refused connection come back.

use std::time::Duration;

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use futures::StreamExt;
use schemas::Operation;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::bedrock::{BedrockRuntime, BedrockSettings};
use super::model_runtime::{ModelInvocation, ModelRuntime, RuntimeError, UpstreamBody};

fn runtime(endpoint: &str, timeout: Duration, read_timeout: Duration) -> BedrockRuntime {
    let settings = BedrockSettings {
        region: Some("us-west-2".to_owned()),
        endpoint_url: Some(endpoint.to_owned()),
        timeout,
        connect_timeout: Duration::from_secs(2),
        read_timeout,
        ca_bundle: None,
    };
    let credentials = Credentials::new("AKIDTEST", "secret", Some("token-1".to_owned()), None, "t");
    BedrockRuntime::new(
        &settings,
        "us-west-2".to_owned(),
        SharedCredentialsProvider::new(credentials),
    )
    .unwrap()
}

fn invocation(operation: Operation) -> ModelInvocation {
    ModelInvocation {
        operation,
        model_id: "anthropic.claude-3-haiku-20240307-v1:0".to_owned(),
        body: bytes::Bytes::from_static(br#"{"prompt":"hi"}"#),
        headers: crate::upstream::json_headers(),
    }
}

/// Reads one request (head and `content-length` body) and returns it as text.
async fn read_request(socket: &mut TcpStream) -> String {
    let mut buffer = Vec::new();
    let mut chunk = [0_u8; 4096];
    loop {
        let read = socket.read(&mut chunk).await.unwrap();
        assert!(read > 0, "the client closed before a whole request");
        buffer.extend_from_slice(&chunk[..read]);
        let text = String::from_utf8_lossy(&buffer).to_string();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length = text[..head_end]
                .lines()
                .find_map(|line| {
                    line.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_owned)
                })
                .map_or(0, |value| value.trim().parse::<usize>().unwrap());
            if buffer.len() >= head_end + 4 + length {
                return text;
            }
        }
    }
}

async fn local_listener() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    (listener, format!("127.0.0.1:{}", address.port()))
}

#[tokio::test]
async fn a_call_goes_out_signed_to_the_endpoint_path_and_its_answer_comes_back() {
    let (listener, host) = local_listener().await;
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let request = read_request(&mut socket).await;
        let answer = r#"{"completion":"hello"}"#;
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-amzn-bedrock-input-token-count: 7\r\ncontent-length: {}\r\n\r\n{answer}",
            answer.len()
        );
        socket.write_all(response.as_bytes()).await.unwrap();
        request
    });
    let bedrock = runtime(
        &format!("http://{host}/prefix/"),
        Duration::from_secs(5),
        Duration::from_secs(5),
    );
    let response = bedrock.send(invocation(Operation::Invoke)).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("x-amzn-bedrock-input-token-count"),
        Some("7")
    );
    let UpstreamBody::Complete(body) = response.body else {
        panic!("a non-streamed answer is read whole");
    };
    assert_eq!(&body[..], br#"{"completion":"hello"}"#);

    let request = server.await.unwrap();
    let lower = request.to_ascii_lowercase();
    assert!(
        request.starts_with(
            "POST /prefix/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke HTTP/1.1\r\n"
        ),
        "{request}"
    );
    assert!(
        lower.contains(&format!("\r\nhost: {host}\r\n")),
        "{request}"
    );
    assert!(
        lower.contains("\r\nauthorization: aws4-hmac-sha256 credential=akidtest/"),
        "{request}"
    );
    assert!(
        lower.contains("signedheaders=accept;content-type;host;x-amz-date;x-amz-security-token,"),
        "{request}"
    );
    assert!(
        lower.contains("\r\nx-amz-security-token: token-1\r\n"),
        "{request}"
    );
    assert!(lower.contains("\r\ncontent-length: 15\r\n"), "{request}");
    assert!(request.ends_with(r#"{"prompt":"hi"}"#), "{request}");
}

#[tokio::test]
async fn a_stream_that_goes_silent_ends_with_a_timeout_after_its_data() {
    let (listener, host) = local_listener().await;
    let _server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        read_request(&mut socket).await;
        socket
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/vnd.amazon.eventstream\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let read_timeout = Duration::from_millis(300);
    let bedrock = runtime(
        &format!("http://{host}"),
        Duration::from_secs(5),
        read_timeout,
    );
    let response = bedrock
        .send(invocation(Operation::InvokeStream))
        .await
        .unwrap();
    let UpstreamBody::Stream(mut stream) = response.body else {
        panic!("a streamed answer is passed on as it arrives");
    };
    assert_eq!(&stream.next().await.unwrap().unwrap()[..], b"first");
    assert_eq!(
        stream.next().await.unwrap().unwrap_err(),
        RuntimeError::Timeout(read_timeout)
    );
    assert!(
        stream.next().await.is_none(),
        "the stream ends after its error"
    );
}

#[tokio::test]
async fn no_answer_within_the_timeout_is_a_timeout_and_a_refused_connection_is_unreachable() {
    let (listener, host) = local_listener().await;
    let _server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        read_request(&mut socket).await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let timeout = Duration::from_millis(300);
    let bedrock = runtime(&format!("http://{host}"), timeout, Duration::from_secs(5));
    let error = bedrock
        .send(invocation(Operation::Converse))
        .await
        .unwrap_err();
    assert_eq!(error, RuntimeError::Timeout(timeout));

    let (closed, closed_host) = local_listener().await;
    drop(closed);
    let bedrock = runtime(&format!("http://{closed_host}"), timeout, timeout);
    let error = bedrock
        .send(invocation(Operation::Converse))
        .await
        .unwrap_err();
    assert!(matches!(error, RuntimeError::Unreachable(_)), "{error:?}");
}

#[tokio::test]
async fn an_https_endpoint_is_spoken_to_over_tls_and_an_unknown_certificate_is_refused() {
    let (_, server_config) = crate::tls::self_signed_for_tests(&["localhost", "127.0.0.1"]);
    let acceptor = tokio_rustls::TlsAcceptor::from(server_config);
    let (listener, host) = local_listener().await;
    let server = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        // The handshake fails on the client's side: it does not trust this certificate.
        acceptor
            .accept(socket)
            .await
            .map(|_| ())
            .map_err(|error| error.to_string())
    });
    let port = host.rsplit(':').next().unwrap();
    let bedrock = runtime(
        &format!("https://localhost:{port}"),
        Duration::from_secs(5),
        Duration::from_secs(5),
    );
    let error = bedrock
        .send(invocation(Operation::Invoke))
        .await
        .unwrap_err();
    let RuntimeError::Unreachable(message) = &error else {
        panic!("a refused certificate is a connection failure: {error:?}");
    };
    assert!(message.contains("certificate"), "{message}");
    assert!(
        server.await.unwrap().is_err(),
        "the server saw a TLS client hello"
    );
}
