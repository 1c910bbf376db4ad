//! Drives the real `tollgate` binary: one temporary data directory per test, commands run
//! as child processes, and `serve` as a background process stopped with SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use schemas::UsageEvent;
use schemas::parquet_codec::decode_events_parquet;

/// The `tollgate` binary built next to this test (override with `TOLLGATE_BIN`).
pub fn tollgate_binary() -> PathBuf {
    if let Ok(path) = std::env::var("TOLLGATE_BIN") {
        return PathBuf::from(path);
    }
    workspace_binary("tollgate")
}

/// A binary of the workspace built next to this test (`cargo test --workspace` builds them).
pub fn workspace_binary(name: &str) -> PathBuf {
    let test_executable = std::env::current_exe().expect("current test executable");
    let profile_dir = test_executable
        .parent()
        .and_then(Path::parent)
        .expect("test executables live in target/<profile>/deps");
    let binary = profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.exists(),
        "{} is missing; run the tests with `cargo test --workspace`, which builds it",
        binary.display()
    );
    binary
}

/// Sleeps past the next UTC midnight when it is less than two minutes away.
fn wait_clear_of_midnight() {
    let now = chrono::Utc::now();
    let Some(next_midnight) = now
        .date_naive()
        .succ_opt()
        .and_then(|day| day.and_hms_opt(0, 0, 1))
    else {
        return;
    };
    let left = next_midnight.and_utc() - now;
    if left < chrono::Duration::minutes(2)
        && let Ok(left) = left.to_std()
    {
        std::thread::sleep(left);
    }
}

/// A Tollgate installation in a temporary directory.
#[derive(Debug)]
pub struct Tollgate {
    pub data_dir: PathBuf,
    empty_aws_file: PathBuf,
    aws: Option<store::aws::AwsSettings>,
    _directory: tempfile::TempDir,
}

impl Default for Tollgate {
    fn default() -> Self {
        Self::new()
    }
}

impl Tollgate {
    /// A fresh, empty installation. Tests count usage by UTC day, so one that straddles
    /// midnight would see its traffic split in two: within two minutes of midnight this
    /// waits until just after it (rarely, and at most two minutes).
    pub fn new() -> Self {
        wait_clear_of_midnight();
        let directory = tempfile::tempdir().expect("temporary directory");
        let empty_aws_file = directory.path().join("empty-aws-config");
        std::fs::write(&empty_aws_file, "").expect("write an empty AWS config");
        Self {
            data_dir: directory.path().join("data"),
            empty_aws_file,
            aws: None,
            _directory: directory,
        }
    }

    /// An installation on the AWS backend, with the resources in `settings`.
    pub fn on_aws(settings: store::aws::AwsSettings) -> Self {
        Self {
            aws: Some(settings),
            ..Self::new()
        }
    }

    /// A command for another binary of the workspace, configured like [`Tollgate::command`].
    pub fn binary_command(&self, name: &str) -> Command {
        let command = self.command();
        let mut other = Command::new(workspace_binary(name));
        for (key, value) in command.get_envs() {
            match value {
                Some(value) => other.env(key, value),
                None => other.env_remove(key),
            };
        }
        other.stdin(Stdio::null());
        other
    }

    /// A `tollgate` command bound to this installation, with no AWS or Tollgate settings
    /// inherited from the environment except test credentials.
    pub fn command(&self) -> Command {
        let mut command = Command::new(tollgate_binary());
        for (name, _) in std::env::vars() {
            if name.starts_with("TOLLGATE_") || name.starts_with("AWS_") {
                command.env_remove(name);
            }
        }
        command
            .env("TOLLGATE_DATA_DIR", &self.data_dir)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", &self.empty_aws_file)
            .env("AWS_SHARED_CREDENTIALS_FILE", &self.empty_aws_file)
            .env("RUST_LOG", "warn,proxy=info,metering=info")
            // Tests read Parquet while the consumer runs: write it every batch, unless a
            // test sets the default buffering back (`serve_with_env`).
            .env("TOLLGATE_PARQUET_FLUSH_SECS", "0")
            .stdin(Stdio::null());
        if let Some(aws) = &self.aws {
            command
                .env("TOLLGATE_BACKEND", "aws")
                .env(
                    "TOLLGATE_AWS_ENDPOINT_URL",
                    aws.endpoint_url.clone().unwrap_or_default(),
                )
                .env("TOLLGATE_REGISTRY_TABLE", &aws.registry_table)
                .env("TOLLGATE_COUNTERS_TABLE", &aws.counters_table)
                .env("TOLLGATE_STREAM_NAME", &aws.stream_name)
                .env(
                    "TOLLGATE_FIREHOSE_STREAM",
                    aws.firehose_stream.clone().unwrap_or_default(),
                )
                .env(
                    "TOLLGATE_ARCHIVE_BUCKET",
                    aws.archive_bucket.clone().unwrap_or_default(),
                )
                .env("TOLLGATE_ARCHIVE_PREFIX", &aws.archive_prefix)
                .env("TOLLGATE_BUCKET", &aws.bucket)
                .env("TOLLGATE_PREFIX", &aws.prefix);
        }
        command
    }

    /// Runs a command to completion.
    pub fn run(&self, arguments: &[&str]) -> Output {
        self.command()
            .args(arguments)
            .output()
            .expect("tollgate runs")
    }

    /// Runs a command with `--json`, asserts success and parses its output.
    pub fn run_json(&self, arguments: &[&str]) -> serde_json::Value {
        let output = self
            .command()
            .arg("--json")
            .args(arguments)
            .output()
            .expect("tollgate runs");
        assert!(
            output.status.success(),
            "tollgate {arguments:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
            panic!(
                "tollgate {arguments:?} printed invalid JSON ({error}): {}",
                String::from_utf8_lossy(&output.stdout)
            )
        })
    }

    /// `tollgate usage --json` of one customer for today (UTC).
    pub fn usage_today(&self, customer_id: &str) -> serde_json::Value {
        let today = chrono::Utc::now().date_naive().to_string();
        self.run_json(&[
            "usage",
            "--customer-id",
            customer_id,
            "--start-date",
            &today,
            "--end-date",
            &today,
        ])
    }

    /// Waits (up to 30 s) until today's usage totals of a customer satisfy `done`, as the
    /// metering consumer catches up; returns them.
    pub async fn wait_for_usage(
        &self,
        customer_id: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let totals = self.usage_today(customer_id)["totals"].clone();
            if done(&totals) {
                return totals;
            }
            assert!(
                Instant::now() < deadline,
                "metering never caught up: {totals}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Creates a customer; returns its id and token.
    pub fn create_customer(&self, name: &str, daily_limit: Option<u64>) -> (String, String) {
        let email = format!("{}@example.com", name.to_lowercase().replace(' ', "-"));
        let mut arguments = vec!["create", "--name", name, "--email", &email];
        let limit_text = daily_limit.map(|limit| limit.to_string());
        if let Some(limit) = &limit_text {
            arguments.extend(["--daily-limit", limit.as_str()]);
        }
        let created = self.run_json(&arguments);
        (
            created["customer_id"].as_str().unwrap().to_owned(),
            created["token"].as_str().unwrap().to_owned(),
        )
    }

    /// Starts `tollgate serve` on an ephemeral port and waits until it listens.
    pub fn serve(&self, arguments: &[&str]) -> ServeProcess {
        self.serve_with_env(&[], arguments)
    }

    /// Like [`Tollgate::serve`], with extra environment variables (secrets go there).
    pub fn serve_with_env(&self, env: &[(&str, &str)], arguments: &[&str]) -> ServeProcess {
        let mut command = self.command();
        command.envs(env.iter().copied());
        command
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--metering-poll-ms",
                "50",
            ])
            .args(arguments);
        spawn_until_line(command, "listening on ")
    }

    /// Starts `tollgate serve --upstream bedrock` against the fake Bedrock, over HTTPS when a
    /// certificate is given.
    pub fn serve_against(
        &self,
        fake: &crate::fake_bedrock::FakeBedrock,
        certificate: Option<&crate::tls::TestCertificate>,
    ) -> ServeProcess {
        let mut flags: Vec<String> = vec![
            "--upstream".into(),
            "bedrock".into(),
            "--bedrock-endpoint-url".into(),
            fake.endpoint_url(),
        ];
        if let Some(certificate) = certificate {
            flags.extend(certificate.serve_flags());
        }
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        self.serve(&flags)
    }

    /// Starts the standalone `tollgate-proxy` on an ephemeral port and waits until it listens.
    pub fn standalone_proxy(&self, arguments: &[&str]) -> ServeProcess {
        let mut command = self.binary_command("tollgate-proxy");
        command.args(["--listen", "127.0.0.1:0"]).args(arguments);
        spawn_until_line(command, "listening on ")
    }

    /// Starts the standalone `tollgate-metering` poller and waits until it runs.
    pub fn poller(&self) -> ServeProcess {
        let mut command = self.binary_command("tollgate-metering");
        command.args(["--metering-poll-ms", "50"]);
        spawn_until_line(command, "metering ")
    }

    /// Every row of every usage Parquet file, sorted by `event_id`.
    pub fn parquet_rows(&self) -> Vec<UsageEvent> {
        parquet_rows_in(&self.data_dir)
    }

    /// Every usage Parquet row of this installation, wherever it lives (the local data
    /// directory, or S3 on AWS), sorted by `event_id`.
    pub async fn stored_parquet_rows(&self) -> Vec<UsageEvent> {
        use futures::TryStreamExt;
        use object_store::ObjectStoreExt;
        let Some(settings) = &self.aws else {
            return self.parquet_rows();
        };
        let backend = store::aws::AwsBackend::connect(settings.clone())
            .await
            .expect("connect to the emulator");
        let listed: Vec<_> = backend
            .objects
            .list(Some(&"usage".into()))
            .try_collect()
            .await
            .expect("list usage objects");
        let mut rows = Vec::new();
        for meta in listed {
            let body = backend
                .objects
                .get(&meta.location)
                .await
                .expect("get a usage object")
                .bytes()
                .await
                .expect("read a usage object");
            rows.extend(decode_events_parquet(body).expect("usage Parquet decodes"));
        }
        rows.sort_by_key(|event| event.event_id);
        rows
    }
}

/// Spawns a command and waits for a stdout line starting with `prefix`; `base_url` holds
/// the rest of that line. The process's log (stderr) goes to the test's captured output, so
/// it is shown only when the test fails: tests that inject faults on purpose would
/// otherwise fill the suite's log with the errors they cause.
fn spawn_until_line(mut command: Command, prefix: &'static str) -> ServeProcess {
    let mut process = ServeProcess {
        child: command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the process starts"),
        base_url: String::new(),
    };
    if let Some(stderr) = process.child.stderr.take() {
        forward_to_captured_output(stderr);
    }
    let stdout = process.child.stdout.take().expect("piped stdout");
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.strip_prefix(prefix) {
                let _ = sender.send(rest.trim().to_owned());
            }
        }
    });
    // On a timeout the panic drops `process`, which kills the child.
    process.base_url = receiver
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("the process printed {prefix:?} within 60 s"));
    process
}

/// Copies a child's stderr, line by line, to this test's output. The test harness captures
/// what a test thread and the threads it spawns print, and shows it only for a failed test.
#[allow(clippy::print_stderr)] // printing is the point: eprintln! is what the harness captures
fn forward_to_captured_output(stderr: std::process::ChildStderr) {
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            eprintln!("{line}");
        }
    });
}

/// Every row of every usage Parquet file under a data directory, sorted by `event_id`.
pub fn parquet_rows_in(data_dir: &Path) -> Vec<UsageEvent> {
    let mut rows = Vec::new();
    let usage_dir = data_dir.join("usage");
    let Ok(days) = std::fs::read_dir(&usage_dir) else {
        return rows;
    };
    for day in days {
        let day = day.unwrap().path();
        assert!(
            day.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("dt="),
            "{} is not a Hive partition",
            day.display()
        );
        for file in std::fs::read_dir(&day).unwrap() {
            let bytes = std::fs::read(file.unwrap().path()).unwrap();
            rows.extend(decode_events_parquet(bytes.into()).unwrap());
        }
    }
    rows.sort_by_key(|event| event.event_id);
    rows
}

/// A running `tollgate serve`.
#[derive(Debug)]
pub struct ServeProcess {
    child: Child,
    /// `http://127.0.0.1:PORT` or `https://…`.
    pub base_url: String,
}

impl ServeProcess {
    /// Makes `count` calls in a row to `POST /prod/bedrock` with the spec's body (prompts
    /// `call 0`, `call 1`, …) and `token`; returns the statuses in order.
    pub async fn spec_calls(&self, token: &str, count: usize) -> Vec<u16> {
        let client = reqwest::Client::new();
        let mut statuses = Vec::with_capacity(count);
        for call in 0..count {
            let response = client
                .post(format!("{}/prod/bedrock", self.base_url))
                .bearer_auth(token)
                .json(&spec_body(&format!("call {call}")))
                .send()
                .await
                .expect("the server answers");
            statuses.push(response.status().as_u16());
        }
        statuses
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident memory of the process so far, in KiB (Linux `VmHWM`).
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// Kills the process with SIGKILL (no chance to flush) and waits for it to go.
    pub fn kill_hard(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn terminate(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let signalled = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(signalled.success(), "could not signal tollgate serve");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait on tollgate serve") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "tollgate serve did not stop within 60 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The spec's curl example body, with a prompt of our choosing.
pub fn spec_body(prompt: &str) -> serde_json::Value {
    serde_json::json!({
        "modelId": "anthropic.claude-3-sonnet-20240229-v1:0",
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 1000,
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": prompt}]}
        ]
    })
}
