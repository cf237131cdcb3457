//! `consentry findings [--since T] [--until T] [--device D] [--rule R] [--host GLOB]`:
//! the findings stored in the case, through the store's indexes. `json`/`jsonl` print
//! each finding exactly as stored (the DESIGN.md §6 object `analyze` prints).

use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;

use std::sync::Arc;

use anyhow::Context;

use crate::report::host_mask::HostMask;
use crate::report::Format;
use crate::rules::{Analyzer, Options};
use crate::store::{CaseDir, Query, StoredTable};
use crate::timestamp::Timestamp;

/// Filters shared by `findings` and `exchanges` on a case.
#[derive(Debug, Clone, clap::Args)]
pub struct Filters {
    /// From this time on (RFC 3339, inclusive).
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub since: Option<Timestamp>,
    /// Before this time (RFC 3339, exclusive).
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub until: Option<Timestamp>,
    /// Only this device.
    #[arg(long, value_name = "D")]
    pub device: Option<String>,
    /// Only hosts matching this glob (`*.example.com`; `*`, `?`, `[…]`).
    #[arg(long, value_name = "GLOB")]
    pub host: Option<String>,
}

fn parse_time(s: &str) -> Result<Timestamp, String> {
    Timestamp::parse_rfc3339(s).map_err(|e| e.to_string())
}

impl Filters {
    pub fn query(&self) -> Query {
        Query {
            since: self.since,
            until: self.until,
            device: self.device.clone(),
            rule: None,
            host: self.host.clone(),
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub filters: Filters,
    /// Only this rule id (e.g. `share-before-consent`).
    #[arg(long, value_name = "R")]
    pub rule: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub fn run(args: Args, dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let dir = CaseDir::locate(dir)?;
    let store = dir.open_store()?;
    let mut q = args.filters.query();
    q.rule = args.rule.clone();
    let rows = store.query(StoredTable::Findings, &q)?;
    let mut out = BufWriter::new(io::stdout().lock());
    let written = write_rows(&rows, args.format, &mut out, &mut |rows, out| {
        write_finding_table(rows, &mut case_host_mask(&dir), out)
    });
    finish(written.and_then(|()| out.flush()))
}

/// How the table shows host names: masked where the case directory's case file's
/// search finds its data in them (see [`HostMask`]). A case file that does not read
/// leaves them whole, saying so.
fn case_host_mask(dir: &CaseDir) -> Option<HostMask> {
    match crate::case::load(&dir.case_file()) {
        Ok(case) => {
            let analyzer = Analyzer::new(Arc::new(case), Options::default());
            Some(HostMask::new(analyzer.data_probe(), false))
        }
        Err(e) => {
            eprintln!("consentry: warning: {e:#}; host names are shown whole");
            None
        }
    }
}

/// Writes stored bodies (the rows) as a table.
pub type WriteTable<'a> = dyn FnMut(&[String], &mut dyn Write) -> io::Result<()> + 'a;

/// Writes stored bodies as a table (with `table`), a JSON array or JSON lines.
pub fn write_rows(
    rows: &[String],
    format: Format,
    out: &mut dyn Write,
    table: &mut WriteTable<'_>,
) -> io::Result<()> {
    match format {
        Format::Jsonl => {
            for r in rows {
                writeln!(out, "{r}")?;
            }
            Ok(())
        }
        Format::Json => {
            writeln!(out, "[")?;
            for (i, r) in rows.iter().enumerate() {
                let sep = if i + 1 < rows.len() { "," } else { "" };
                writeln!(out, "  {r}{sep}")?;
            }
            writeln!(out, "]")
        }
        Format::Table => table(rows, out),
    }
}

/// A closed pipe is the reader's choice, not an error.
pub fn finish(written: io::Result<()>) -> anyhow::Result<ExitCode> {
    match written {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e).context("writing the results"),
    }
}

/// The table of stored findings; a host name (and the summary naming it) as
/// `hosts` shows it.
fn write_finding_table(
    rows: &[String],
    hosts: &mut Option<HostMask>,
    out: &mut dyn Write,
) -> io::Result<()> {
    writeln!(
        out,
        "{:<28} {:<10} {:<32} {:<7} {:<30} summary",
        "time (UTC)", "device", "rule", "sev", "host"
    )?;
    for r in rows {
        let v: serde_json::Value = serde_json::from_str(r).map_err(io::Error::other)?;
        let s = |p: &str| {
            v.pointer(p)
                .and_then(|x| x.as_str())
                .unwrap_or("-")
                .to_string()
        };
        let (host, mut summary) = (s("/destination/host"), s("/summary"));
        let shown = match hosts {
            Some(hosts) => hosts.show(&host).into_owned(),
            None => host.clone(),
        };
        if shown != host {
            summary = summary.replace(&host, &shown);
        }
        writeln!(
            out,
            "{:<28} {:<10} {:<32} {:<7} {:<30} {}",
            s("/at"),
            s("/device"),
            s("/rule"),
            s("/severity"),
            shown,
            summary
        )?;
    }
    writeln!(out, "{} findings", rows.len())
}
