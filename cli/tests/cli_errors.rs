//! Bad CLI input gets a clear error and a non-zero exit, with nothing written.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

struct Installation {
    directory: tempfile::TempDir,
}

impl Installation {
    fn new() -> Self {
        Self {
            directory: tempfile::tempdir().unwrap(),
        }
    }

    fn run(&self, arguments: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .env_remove("TOLLGATE_DB")
            .env_remove("TOLLGATE_NEW_TOKEN")
            .env("TOLLGATE_DATA_DIR", self.directory.path())
            .args(arguments)
            .output()
            .unwrap()
    }
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_fails_with(output: &Output, code: i32, expected: &str) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stderr: {}",
        stderr_of(output)
    );
    assert!(
        stderr_of(output).contains(expected),
        "expected {expected:?} in: {}",
        stderr_of(output)
    );
}

#[test]
fn bad_dates_and_ranges_are_explained() {
    let tollgate = Installation::new();
    let bad_date = tollgate.run(&[
        "usage",
        "--customer-id",
        "x",
        "--start-date",
        "2023-02-30",
        "--end-date",
        "2023-03-01",
    ]);
    assert_fails_with(&bad_date, 2, "use YYYY-MM-DD");
    let reversed = tollgate.run(&[
        "usage",
        "--customer-id",
        "x",
        "--start-date",
        "2023-04-30",
        "--end-date",
        "2023-04-01",
    ]);
    assert_fails_with(&reversed, 1, "is before --start-date");
}

#[test]
fn unknown_customers_are_named_with_the_fix() {
    let tollgate = Installation::new();
    for arguments in [
        vec![
            "usage",
            "--customer-id",
            "nobody",
            "--start-date",
            "2023-04-01",
            "--end-date",
            "2023-04-30",
        ],
        vec![
            "update-limits",
            "--customer-id",
            "nobody",
            "--daily-limit",
            "10",
        ],
        vec!["update-token", "--customer-id", "nobody"],
        vec!["show", "--customer-id", "nobody"],
        vec!["list-keys", "--customer-id", "nobody"],
        vec![
            "revoke-token",
            "--customer-id",
            "nobody",
            "--key-id",
            "key_x",
        ],
        vec!["disable", "--customer-id", "nobody"],
        vec!["enable", "--customer-id", "nobody"],
        vec!["delete", "--customer-id", "nobody"],
    ] {
        assert_fails_with(
            &tollgate.run(&arguments),
            1,
            "unknown customer id \"nobody\"; run `tollgate list`",
        );
    }
}

#[test]
fn bad_create_arguments_write_nothing() {
    let tollgate = Installation::new();
    assert_fails_with(
        &tollgate.run(&["create", "--name", "Acme", "--email", "nope"]),
        1,
        "is not an email address",
    );
    assert_fails_with(
        &tollgate.run(&[
            "create",
            "--name",
            "Acme",
            "--email",
            "a@acme.example",
            "--token",
            "tooshort",
        ]),
        1,
        "at least 32",
    );
    assert_fails_with(&tollgate.run(&["create", "--name", "Acme"]), 2, "--email");
    assert_fails_with(
        &tollgate.run(&[
            "update-limits",
            "--customer-id",
            "x",
            "--daily-limit",
            "lots",
        ]),
        2,
        "whole number",
    );
    assert_fails_with(&tollgate.run(&["frobnicate"]), 2, "unrecognized subcommand");
    let listed = tollgate.run(&["--json", "list"]);
    assert!(listed.status.success());
    assert_eq!(String::from_utf8_lossy(&listed.stdout).trim(), "[]");
}

#[test]
fn a_supplied_token_is_never_printed_back() {
    let tollgate = Installation::new();
    let token = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJ0A==";
    let created = tollgate.run(&[
        "create",
        "--name",
        "Acme",
        "--email",
        "a@acme.example",
        "--token",
        token,
    ]);
    assert!(created.status.success(), "{}", stderr_of(&created));
    assert!(!String::from_utf8_lossy(&created.stdout).contains(token));
    let again = tollgate.run(&[
        "create",
        "--name",
        "Other",
        "--email",
        "o@other.example",
        "--token",
        token,
    ]);
    assert_fails_with(&again, 1, "already in use");
    assert!(!stderr_of(&again).contains(token));
}

#[test]
fn serve_refuses_bad_tls_files_and_a_busy_port() {
    let tollgate = Installation::new();
    let missing = tollgate.run(&[
        "serve",
        "--upstream",
        "simulated",
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        "/nonexistent/cert.pem",
        "--tls-key",
        "/nonexistent/key.pem",
    ]);
    assert_fails_with(
        &missing,
        1,
        "cannot read TLS certificate chain /nonexistent/cert.pem",
    );
    let only_cert = tollgate.run(&["serve", "--tls-cert", "/nonexistent/cert.pem"]);
    assert_fails_with(&only_cert, 2, "--tls-key");

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = busy.local_addr().unwrap().to_string();
    let taken = tollgate.run(&["serve", "--upstream", "simulated", "--listen", &address]);
    assert_fails_with(&taken, 1, "choose another address with --listen");
}
