//! The standalone poller refuses bad configuration with an error that names the fix.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

#[test]
fn the_aws_backend_without_a_bucket_is_refused_clearly() {
    let output = Command::new(env!("CARGO_BIN_EXE_tollgate-metering"))
        .env_remove("TOLLGATE_BUCKET")
        .args(["--backend", "aws"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("needs an S3 bucket: set --bucket or TOLLGATE_BUCKET"),
        "{stderr}"
    );
}

#[test]
fn a_bad_poll_interval_is_refused_by_name() {
    let output = Command::new(env!("CARGO_BIN_EXE_tollgate-metering"))
        .args(["--metering-poll-ms", "1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--metering-poll-ms"));
}
