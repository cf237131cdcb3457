//! `consentry case check FILE`: validate a case file and print what was understood.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::case::{self, Case, IdentifierValue};
use crate::consent::describe_purposes;
use crate::pii::Detector;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The case file (consentry.toml).
    pub file: PathBuf,
    /// Print identifier values in full instead of masked.
    #[arg(long)]
    pub reveal: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let case = case::load(&args.file)?;
    let mut out = std::io::stdout().lock();
    describe(
        &case,
        &args.file.display().to_string(),
        args.reveal,
        &mut out,
    )
    .context("writing to stdout")?;
    Ok(ExitCode::SUCCESS)
}

/// `380…0d`: enough to recognise a value without disclosing it.
pub fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() <= 6 {
        return "…".to_string();
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("{head}…{tail}")
}

fn describe(case: &Case, file: &str, reveal: bool, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "{file}: OK")?;
    writeln!(out, "case      {} — {}", case.meta.id, case.meta.title)?;
    writeln!(out, "app       {} ({})", case.app.name, case.app.package)?;
    writeln!(
        out,
        "first party domains: {}",
        case.app.first_party.join(", ")
    )?;
    let detector = Detector::new(case);
    for d in &case.devices {
        writeln!(
            out,
            "device {}  addresses: {}",
            d.id,
            d.addresses.join(", ")
        )?;
        if let Some(u) = &d.proxy_user {
            writeln!(out, "  proxy user {u}")?;
        }
        for id in &d.identifiers {
            let shown = match &id.value {
                IdentifierValue::Text(t) if reveal => t.clone(),
                IdentifierValue::Text(t) => mask(t),
                IdentifierValue::Location { lat, lon } if reveal => format!("{lat}, {lon}"),
                IdentifierValue::Location { .. } => "(lat, lon)".to_string(),
            };
            let sensitive = if id.kind.sensitive() {
                "  [sensitive]"
            } else {
                ""
            };
            writeln!(out, "  {:<22}{shown}{sensitive}", id.kind.key())?;
        }
    }
    writeln!(
        out,
        "search patterns (all variants of all devices): {}",
        detector.pattern_count()
    )?;
    for c in &case.consent {
        let purposes = describe_purposes(&c.purposes);
        writeln!(
            out,
            "consent   {}  {}  {} {}{}",
            c.at,
            c.device,
            c.decision.as_str(),
            purposes,
            c.note
                .as_deref()
                .map(|n| format!("  ({n})"))
                .unwrap_or_default()
        )?;
    }
    writeln!(
        out,
        "rules     grace {} ms, frequency limit {}/min, infrastructure {}, platform services {}",
        case.rules.grace_ms,
        case.rules.frequency_per_minute,
        flagged(case.rules.flag_infrastructure),
        flagged(case.rules.flag_platform),
    )
}

fn flagged(on: bool) -> &'static str {
    if on {
        "flagged"
    } else {
        "not flagged"
    }
}
