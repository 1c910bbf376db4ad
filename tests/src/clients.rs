//! What the tests that drive official clients share: the pinned clients' paths from the
//! environment `scripts/test.sh` sets, the client scripts' folder, and running a script
//! that prints what its client saw as JSON.

use std::path::PathBuf;
use std::process::Command;

/// An environment variable `scripts/test.sh` sets (the pinned Python, node modules, …).
pub fn pinned(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the suite with `bash scripts/test.sh`, which installs the pinned clients and sets it"
        )
    })
}

/// `tests/clients/`, where the client scripts are.
pub fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("clients")
}

/// The model names file the documentation ships (`docs/model-names.toml`).
pub fn model_names_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/model-names.toml")
}

/// Runs a client script, asserts it succeeded, and parses the JSON it printed.
pub fn run_client(command: &mut Command) -> serde_json::Value {
    let output = command.output().expect("the client runs");
    assert!(
        output.status.success(),
        "the client failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "the client printed invalid JSON ({error}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// `tollgate serve` forwarding to `fake`, with the documented model names and `extra`
/// flags: what the client API tests run against.
pub fn serve_for_clients(
    tollgate: &crate::harness::Tollgate,
    fake: &crate::fake_bedrock::FakeBedrock,
    extra: &[&str],
) -> crate::harness::ServeProcess {
    let endpoint = fake.endpoint_url();
    let names = model_names_file();
    let names = names.to_string_lossy();
    let mut arguments = vec![
        "--upstream",
        "bedrock",
        "--bedrock-endpoint-url",
        &endpoint,
        "--model-names",
        &names,
    ];
    arguments.extend_from_slice(extra);
    tollgate.serve(&arguments)
}

/// A customer allowed only `models` (an allow-list entry): its token.
pub fn restricted_customer(
    tollgate: &crate::harness::Tollgate,
    name: &str,
    models: &str,
) -> String {
    let email = format!("{}@example.com", name.to_lowercase().replace(' ', "-"));
    let created = tollgate.run_json(&[
        "create",
        "--name",
        name,
        "--email",
        &email,
        "--allowed-models",
        models,
    ]);
    created["token"].as_str().expect("a token").to_owned()
}
