//! The CLI's output layer: the only place that prints. Tables for people, JSON for scripts,
//! and the renderings several commands share (issued keys, key tables, limits).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use control::keys::{IssuedKey, KeyView};
use schemas::{LimitKind, Limits};
use serde::Serialize;

/// Prints a value as pretty JSON on stdout.
pub fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Prints a table with a header row on stdout.
pub fn print_table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    for row in rows {
        table.add_row(row);
    }
    println!("{table}");
}

/// Prints plain lines on stdout.
pub fn print_lines(lines: &[String]) {
    for line in lines {
        println!("{line}");
    }
}

/// Prints text as it is on stdout.
pub fn print_text(text: &str) {
    print!("{text}");
}

/// Prints an error and its causes on stderr.
pub fn print_error(error: &anyhow::Error) {
    eprintln!("error: {error:#}");
}

/// A time as RFC 3339 to the second (`2026-11-05T10:20:30Z`).
pub fn seconds(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[derive(Serialize)]
struct IssuedKeyJson<'a> {
    customer_id: &'a str,
    key_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<&'a str>,
}

/// Prints a key just issued by `create` or `update-token`: the token only when generated,
/// with the warning that it is shown once.
pub fn print_issued_key(issued: &IssuedKey, json: bool) -> anyhow::Result<()> {
    let shown = issued.generated_token.as_ref().map(|token| token.expose());
    if json {
        return print_json(&IssuedKeyJson {
            customer_id: &issued.customer_id,
            key_id: &issued.key_id,
            token: shown,
        });
    }
    let mut lines = vec![
        format!("customer_id: {}", issued.customer_id),
        format!("key_id:      {}", issued.key_id),
    ];
    match shown {
        Some(token) => {
            lines.push(format!("token:       {token}"));
            lines.push("Give this token to the customer now: only its hash is stored, it cannot be shown again.".into());
        }
        None => lines.push("token:       (the one you supplied; only its hash is stored)".into()),
    }
    print_lines(&lines);
    Ok(())
}

/// Prints keys as a table (`show`, `list-keys`).
pub fn print_key_table(keys: &[KeyView]) {
    let never = || "never".to_owned();
    print_table(
        &["key_id", "state", "created", "expires", "last used"],
        keys.iter()
            .map(|key| {
                vec![
                    key.key_id.clone(),
                    key.state.as_str().to_owned(),
                    seconds(&key.created_at),
                    key.expires_at.as_ref().map_or_else(never, seconds),
                    key.last_used_at.as_ref().map_or_else(never, seconds),
                ]
            })
            .collect(),
    );
}

/// An allow-list of models as shown: `all`, or the list.
pub fn describe_models(models: Option<&[String]>) -> String {
    models.map_or_else(|| "all".to_owned(), |models| models.join(", "))
}

fn describe_cap(cap: Option<u64>) -> String {
    cap.map_or_else(|| "none".into(), |cap| cap.to_string())
}

/// Every limit but the daily request limit, compactly (`monthly 3000, rpm 60`), or `-`.
pub fn describe_other_limits(limits: &Limits) -> String {
    let mut parts: Vec<String> = LimitKind::ALL
        .iter()
        .filter(|kind| **kind != LimitKind::DailyRequests)
        .filter_map(|kind| {
            kind.cap(limits)
                .map(|cap| format!("{} {cap}", kind.as_str()))
        })
        .collect();
    if let Some(mode) = limits.enforcement {
        parts.push(mode.as_str().to_owned());
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

/// One line per limit, for `show` and `update-limits`.
pub fn limit_lines(limits: &Limits) -> Vec<String> {
    vec![
        format!(
            "daily limit:         {}",
            describe_cap(limits.daily_request_limit)
        ),
        format!(
            "monthly limit:       {}",
            describe_cap(limits.monthly_request_limit)
        ),
        format!(
            "daily token limit:   {}",
            describe_cap(limits.daily_token_limit)
        ),
        format!(
            "monthly token limit: {}",
            describe_cap(limits.monthly_token_limit)
        ),
        format!(
            "requests per minute: {}",
            describe_cap(limits.requests_per_minute)
        ),
        format!(
            "enforcement:         {}",
            limits
                .enforcement
                .map_or("deployment default", |mode| mode.as_str())
        ),
        format!(
            "models:              {}",
            describe_models(limits.allowed_models.as_deref())
        ),
    ]
}

/// Writes a file the user asked for, with an error that names it.
pub fn write_file(path: &std::path::Path, contents: impl AsRef<[u8]>) -> anyhow::Result<()> {
    use anyhow::Context;
    std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
}

/// Creates a directory the user asked for, with an error that names it.
pub fn create_directory(path: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    std::fs::create_dir_all(path).with_context(|| format!("cannot create {}", path.display()))
}

/// A progress bar on stderr for a long job, drawn from `template` (indicatif's syntax), and
/// the `progress(done, total)` callback the job reports to. Clear it with
/// `finish_and_clear` when the job ends.
pub fn progress_bar(
    template: &str,
) -> (
    indicatif::ProgressBar,
    impl Fn(u64, u64) + Send + Sync + 'static,
) {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let progress = {
        let bar = bar.clone();
        move |done: u64, total: u64| {
            bar.set_length(total);
            bar.set_position(done);
        }
    };
    (bar, progress)
}
