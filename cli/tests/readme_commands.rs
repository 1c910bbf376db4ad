//! README's run command, `cargo run --release -p tollgate -- serve …`, needs the package to
//! say which of its binaries `cargo run` runs: it also builds tollgate-proxy and the proxy
//! Lambda.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[test]
fn cargo_run_of_the_tollgate_package_runs_the_cli() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let package = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|package| package["name"] == "tollgate")
        .unwrap();
    let binaries: Vec<&str> = package["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|target| target["kind"][0] == "bin")
        .map(|target| target["name"].as_str().unwrap())
        .collect();
    assert!(binaries.len() > 1, "{binaries:?}");
    assert_eq!(package["default_run"], "tollgate");
    let readme = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"),
    )
    .unwrap();
    assert!(readme.contains("cargo run --release -p tollgate -- serve --upstream simulated"));
}
