//! `consentry init [DIR] [--from-case FILE]`: creates a case directory (the case
//! file, `.consentry/store.db`, `evidence/`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::store::CaseDir;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The directory to create (default: `-C DIR`, else the current directory).
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Start from this case file (validated, then copied) instead of the template.
    #[arg(long, value_name = "FILE")]
    pub from_case: Option<PathBuf>,
}

pub fn run(args: Args, global_dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let root = match (&args.dir, global_dir) {
        (Some(d), Some(c)) => c.join(d),
        (Some(d), None) => d.clone(),
        (None, Some(c)) => c.to_path_buf(),
        (None, None) => PathBuf::from("."),
    };
    let dir = CaseDir::init(&root, args.from_case.as_deref())?;
    println!(
        "initialised case directory {} (case file {}, store {})",
        dir.root.display(),
        dir.case_file().display(),
        dir.store_path().display()
    );
    Ok(ExitCode::SUCCESS)
}
