//! `consentry decode STRING [--format json|table]`: decode a TC string, GPP string or
//! US Privacy string and print every field, like the IAB's own decoders.
//!
//! The kind is detected from the text: `1` followed by three of `Y`/`N`/`-` is US
//! Privacy; a `~`, or a first character `D` (GPP header type 3 in the top six bits),
//! is GPP; anything else is tried as a TC string. JSON is `{"type": …, "data": …}`
//! with the reference libraries' field names (see [`crate::consent::tcf`],
//! [`crate::consent::gpp`]).

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::{json, Value};

use crate::consent::gpp::GppString;
use crate::consent::tcf::TcString;
use crate::consent::usp::UsPrivacy;

/// Output format of `decode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Table,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The consent string: a TC string, a GPP string or a US Privacy string.
    pub string: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Which kind of consent string a text looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Tcf,
    Gpp,
    Usp,
}

/// Guesses the kind of consent string from its shape.
pub fn detect(text: &str) -> Kind {
    let t = text.trim();
    let b = t.as_bytes();
    let is_flag = |c: u8| matches!(c, b'Y' | b'N' | b'-' | b'y' | b'n');
    if b.len() == 4 && b[0] == b'1' && b[1..].iter().all(|&c| is_flag(c)) {
        Kind::Usp
    } else if t.contains('~') || t.starts_with('D') {
        Kind::Gpp
    } else if b.first() == Some(&b'1') && b.len() <= 4 {
        // Short strings starting with the US Privacy version: report its errors.
        Kind::Usp
    } else {
        Kind::Tcf
    }
}

/// Decodes `text` to `{"type": …, "data": …}`.
pub fn decode(text: &str) -> anyhow::Result<Value> {
    let v = match detect(text) {
        Kind::Usp => {
            let u = UsPrivacy::parse(text).context("not a valid US Privacy string")?;
            json!({"type": "usp", "data": u})
        }
        Kind::Gpp => {
            let g = GppString::parse(text).context("not a valid GPP string")?;
            json!({"type": "gpp", "data": g.to_json()})
        }
        Kind::Tcf => {
            let tc = TcString::parse(text).context("not a valid TC string")?;
            json!({"type": "tcf", "data": tc.to_json()})
        }
    };
    Ok(v)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let v = decode(&args.string)?;
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&v)?),
        Format::Table => write!(out, "{}", table(&v)),
    }
    .context("writing to stdout")?;
    Ok(ExitCode::SUCCESS)
}

/// Width the table is wrapped to.
const WIDTH: usize = 80;
/// Column where values start.
const KEY_WIDTH: usize = 36;

/// One line per field, long id lists wrapped under the value column.
pub fn table(v: &Value) -> String {
    let mut out = String::new();
    let kind = v["type"].as_str().unwrap_or("?");
    let label = match kind {
        "tcf" => "TC string (IAB TCF v2)",
        "gpp" => "GPP string (IAB Global Privacy Platform)",
        "usp" => "US Privacy string (IAB CCPA)",
        _ => kind,
    };
    out.push_str(label);
    out.push('\n');
    let data = &v["data"];
    if kind == "gpp" {
        row(&mut out, "version", &data["version"], 0);
        row(&mut out, "sectionIds", &data["sectionIds"], 0);
        for s in data["sections"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "section {} ({})\n",
                s["id"],
                s["name"].as_str().unwrap_or("unknown")
            ));
            if let Some(raw) = s.get("raw") {
                row(&mut out, "raw (not decoded)", raw, 2);
            }
            fields(&mut out, &s["fields"], 2);
        }
    } else {
        fields(&mut out, data, 0);
    }
    out
}

fn fields(out: &mut String, obj: &Value, indent: usize) {
    if let Some(m) = obj.as_object() {
        for (k, v) in m {
            row(out, k, v, indent);
        }
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) if a.iter().all(Value::is_boolean) => {
            // cmpapi's boolean arrays: show the 1-based numbers that are true.
            let on: Vec<String> = a
                .iter()
                .enumerate()
                .filter(|(_, b)| b.as_bool() == Some(true))
                .map(|(i, _)| (i + 1).to_string())
                .collect();
            if on.is_empty() {
                "(none)".into()
            } else {
                on.join(" ")
            }
        }
        Value::Array(a) if a.is_empty() => "(none)".into(),
        Value::Array(a) => a.iter().map(scalar).collect::<Vec<_>>().join(" "),
        Value::Object(_) => v.to_string(),
        other => other.to_string(),
    }
}

fn row(out: &mut String, key: &str, v: &Value, indent: usize) {
    // Publisher restrictions are objects: one line each.
    if let Some(a) = v.as_array().filter(|a| a.iter().any(Value::is_object)) {
        for (i, item) in a.iter().enumerate() {
            row(
                out,
                &format!("{key}[{i}]"),
                &Value::String(scalar(item)),
                indent,
            );
        }
        return;
    }
    let text = scalar(v);
    let pad = " ".repeat(indent);
    let key_col = KEY_WIDTH.max(indent + key.len() + 1);
    let mut line = format!("{pad}{key}");
    line.push_str(&" ".repeat(key_col - line.chars().count()));
    let room = WIDTH.saturating_sub(key_col).max(10);
    let mut first = true;
    let mut cur = String::new();
    for word in text.split(' ') {
        if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > room {
            flush(out, &mut line, &mut cur, key_col, &mut first);
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    flush(out, &mut line, &mut cur, key_col, &mut first);
}

fn flush(out: &mut String, line: &mut String, cur: &mut String, key_col: usize, first: &mut bool) {
    if *first {
        out.push_str(line);
        *first = false;
    } else {
        out.push_str(&" ".repeat(key_col));
    }
    out.push_str(cur);
    out.push('\n');
    cur.clear();
    line.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_kind() {
        assert_eq!(detect("1YNN"), Kind::Usp);
        assert_eq!(detect("1---"), Kind::Usp);
        assert_eq!(detect("1Y"), Kind::Usp);
        assert_eq!(detect("DBABTA~1YNN"), Kind::Gpp);
        assert_eq!(detect("DBABMA"), Kind::Gpp);
        assert_eq!(detect("CPXxRfAPXxRfAAfKABENB"), Kind::Tcf);
    }

    #[test]
    fn usp_json_and_table() {
        let v = decode("1NYN").unwrap();
        assert_eq!(v["type"], "usp");
        assert_eq!(v["data"]["optOutSale"], "Y");
        let t = table(&v);
        assert!(t.contains("optOutSale"), "{t}");
        assert!(t.lines().all(|l| l.chars().count() <= WIDTH));
    }

    #[test]
    fn long_lists_wrap_within_80_columns() {
        let ids: Vec<u32> = (1..400).collect();
        let v = json!({"type": "tcf", "data": {"vendorConsents": ids}});
        let t = table(&v);
        assert!(t.lines().count() > 5);
        assert!(t.lines().all(|l| l.chars().count() <= WIDTH), "{t}");
        assert!(t.contains(" 399\n"));
    }

    #[test]
    fn errors_name_field_and_offset() {
        let e = decode("DBABTA~1YXN").unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("uspv1.optOutSale at char 2"), "{msg}");
    }
}
