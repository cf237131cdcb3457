//! `consentry prune --before T [--dry-run] [--vacuum]`: removes the bodies of stored
//! exchanges older than T that no finding refers to, keeping the log verifiable (a
//! `checkpoint` record fixes which records were pruned and their hashes). Findings,
//! consent events, ingests and the evidence files themselves are never pruned.

use std::path::Path;
use std::process::ExitCode;

use crate::store::CaseDir;
use crate::timestamp::Timestamp;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Prune exchanges before this time (RFC 3339, exclusive).
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub before: Timestamp,
    /// Say what would be pruned, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Afterwards give the freed space back to the file system (SQLite VACUUM;
    /// rewrites the database file, so no proxy or tap should be writing meanwhile).
    #[arg(long)]
    pub vacuum: bool,
}

fn parse_time(s: &str) -> Result<Timestamp, String> {
    Timestamp::parse_rfc3339(s).map_err(|e| e.to_string())
}

pub fn run(args: Args, dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let dir = CaseDir::locate(dir)?;
    let mut store = dir.open_store()?;
    let p = store.prune(args.before, args.dry_run)?;
    let kept = p.older - p.pruned;
    let verb = if args.dry_run {
        "would prune"
    } else {
        "pruned"
    };
    print!(
        "{verb} {} of {} exchanges before {} ({kept} kept: findings refer to them or their ingest is unfinished)",
        p.pruned, p.older, args.before
    );
    match p.checkpoint {
        Some(seq) => println!("; checkpoint record {seq}"),
        None => println!(),
    }
    if args.vacuum && !args.dry_run {
        store.vacuum()?;
        println!("database compacted");
    }
    Ok(ExitCode::SUCCESS)
}
