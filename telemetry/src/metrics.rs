//! Operational metrics in the Prometheus text format, served on a separate address
//! (`--metrics-listen`), never on the customers' listener.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Where metrics are served, shared by every long-running binary.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics at http://ADDR/metrics (for example 127.0.0.1:9464); off
    /// when not given. Never the customers' listener.
    #[arg(long, env = "TOLLGATE_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
}

/// One sample: a name, its help text, whether it only grows, and its value. The name may
/// carry labels in the exposition syntax, `family{label="value"}`; samples of one family
/// come one after another and share its help and type.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: &'static str,
    pub help: &'static str,
    pub counter: bool,
    pub value: f64,
}

/// Renders samples in the Prometheus text exposition format, one help and type line per
/// family.
pub fn render(samples: &[Sample]) -> String {
    let mut text = String::new();
    let mut previous_family = None;
    for sample in samples {
        let family = sample
            .name
            .split_once('{')
            .map_or(sample.name, |(family, _)| family);
        if previous_family != Some(family) {
            let kind = if sample.counter { "counter" } else { "gauge" };
            let _ = writeln!(text, "# HELP {family} {}", sample.help);
            let _ = writeln!(text, "# TYPE {family} {kind}");
            previous_family = Some(family);
        }
        let _ = writeln!(text, "{} {}", sample.name, sample.value);
    }
    text
}

/// What produces the current samples.
pub type SampleSource = Arc<dyn Fn() -> Vec<Sample> + Send + Sync>;

/// Serves `GET /metrics` on `listen` until the task is aborted. Anything else gets 404.
pub async fn serve_metrics(
    listen: SocketAddr,
    source: SampleSource,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(listen).await?;
    let address = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let source = Arc::clone(&source);
            tokio::spawn(async move {
                let mut request = vec![0u8; 4096];
                let Ok(Ok(read)) =
                    tokio::time::timeout(Duration::from_secs(5), stream.read(&mut request)).await
                else {
                    return;
                };
                let head = String::from_utf8_lossy(&request[..read]);
                let response = if head.starts_with("GET /metrics ") {
                    let body = render(&source());
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                } else {
                    "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        .to_owned()
                };
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    Ok((address, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn samples_are_served_in_the_text_format() {
        let source: SampleSource = Arc::new(|| {
            vec![Sample {
                name: "tollgate_things_total",
                help: "Things.",
                counter: true,
                value: 3.0,
            }]
        });
        let (address, task) = serve_metrics("127.0.0.1:0".parse().unwrap(), source)
            .await
            .unwrap();
        let body = reqwest::get(format!("http://{address}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(
            body,
            "# HELP tollgate_things_total Things.\n# TYPE tollgate_things_total counter\ntollgate_things_total 3\n"
        );
        let missing = reqwest::get(format!("http://{address}/other"))
            .await
            .unwrap();
        assert_eq!(missing.status(), 404);
        task.abort();
    }
}
