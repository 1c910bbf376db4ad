//! The CLI's output layer: the only place that prints. Tables for people, JSON for scripts.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
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
