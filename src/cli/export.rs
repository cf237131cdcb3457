//! `consentry export --out case.zip`: the case directory as one bundle — report,
//! findings, exchanges (JSON lines and HAR), evidence files, the log's records and a
//! manifest of hashes — that `consentry verify case.zip` checks without the store
//! (see `store::bundle`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::store::{bundle, CaseDir};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The bundle to write (a zip file).
    #[arg(long, short, value_name = "FILE")]
    pub out: PathBuf,
}

pub fn run(args: Args, dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let dir = CaseDir::locate(dir)?;
    let done = bundle::export(&dir, &args.out)?;
    let m = &done.manifest;
    let count = |k: &str| m.counts.get(k).copied().unwrap_or(0);
    println!(
        "wrote {}: {} records (head {}), {} findings, {} exchanges ({} in the HAR), {} evidence files",
        args.out.display(),
        m.chain_head.records,
        m.chain_head.hash,
        count("finding"),
        count("exchange"),
        count("har_entries"),
        count("evidence_files"),
    );
    Ok(ExitCode::SUCCESS)
}
