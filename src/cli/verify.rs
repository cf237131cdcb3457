//! `consentry verify [DIR]`: recomputes the hash chain, checks SQLite's structure
//! and the indexes against the hashed records, and re-hashes every evidence file.
//! Prints `OK: …` and exits 0, or names the first record or file that does not match
//! and exits 1.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::store::record::hex;
use crate::store::CaseDir;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The case directory (default: `-C DIR`, else found from the current directory up).
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub fn run(args: Args, global_dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let dir = CaseDir::locate(args.dir.as_deref().or(global_dir))?;
    let store = match dir.open_store() {
        Ok(s) => s,
        Err(e) => {
            println!("FAILED: the store does not open: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    match store.verify(&dir.root) {
        Ok(v) => {
            println!(
                "OK: {} records, {} evidence files, head {}",
                v.head.records,
                v.files,
                hex(&v.head.hash)
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("FAILED: {e}");
            Ok(ExitCode::from(1))
        }
    }
}
