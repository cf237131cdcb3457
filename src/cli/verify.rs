//! `consentry verify [DIR]`: recomputes the hash chain, checks SQLite's structure
//! and the indexes against the hashed records, and re-hashes every evidence file.
//! Prints `OK: …` and exits 0, or names the first record or file that does not match
//! and exits 1. Seal records are checked in the chain walk; `--public-key` further
//! requires the last seal to be by that key. Given a file, verifies an export bundle
//! instead (`store::bundle`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use crate::store::record::{hex, unhex};
use crate::store::CaseDir;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The case directory (default: `-C DIR`, else found from the current directory
    /// up), or an export bundle (`case.zip`).
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Require the log to be sealed by this Ed25519 public key (hex, or a file
    /// holding it, such as `.consentry/seal.pub`).
    #[arg(long, value_name = "HEX|FILE")]
    pub public_key: Option<String>,
}

pub fn run(args: Args, global_dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    if let Some(file) = args.dir.as_deref().filter(|p| p.is_file()) {
        return verify_bundle(file, args.public_key.as_deref());
    }
    let dir = CaseDir::locate(args.dir.as_deref().or(global_dir))?;
    let store = match dir.open_store() {
        Ok(s) => s,
        Err(e) => {
            println!("FAILED: the store does not open: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    let wanted = match &args.public_key {
        None => None,
        Some(k) => {
            let text = public_key_text(k)?;
            let key: [u8; 32] = unhex(text.trim())
                .and_then(|b| b.try_into().ok())
                .with_context(|| format!("--public-key {k}: not 32 bytes of hex"))?;
            Some(key)
        }
    };
    match store.verify(&dir.root) {
        Ok(v) => {
            if let Some(want) = wanted {
                match v.head.last_seal {
                    Some((_, key)) if key == want => {}
                    Some((_, key)) => {
                        println!(
                            "FAILED: the last seal is by key {}, not {}",
                            hex(&key),
                            hex(&want)
                        );
                        return Ok(ExitCode::from(1));
                    }
                    None => {
                        println!("FAILED: the log is not sealed");
                        return Ok(ExitCode::from(1));
                    }
                }
            }
            println!(
                "OK: {} records, {} evidence files, head {}",
                v.head.records,
                v.files,
                hex(&v.head.hash)
            );
            if let Some((sealed, key)) = v.head.last_seal {
                println!(
                    "sealed: {} seals; the last covers records 1-{sealed}, key {}; {} records after it",
                    v.head.seals,
                    hex(&key),
                    v.head.seq - sealed - 1
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("FAILED: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// `verify case.zip`: the bundle's manifest, chain and evidence (see `store::bundle`).
fn verify_bundle(file: &Path, public_key: Option<&str>) -> anyhow::Result<ExitCode> {
    use crate::store::bundle;
    if !bundle::is_zip(file) {
        anyhow::bail!(
            "{}: neither a case directory nor a bundle (zip)",
            file.display()
        );
    }
    match bundle::verify_bundle(file) {
        Ok(v) => {
            let m = &v.manifest;
            if let Some(k) = public_key {
                let text = public_key_text(k)?;
                let want = text.trim().to_ascii_lowercase();
                match &m.sealed {
                    Some((_, key)) if *key == want => {}
                    Some((_, key)) => {
                        println!("FAILED: the last seal is by key {key}, not {want}");
                        return Ok(ExitCode::from(1));
                    }
                    None => {
                        println!("FAILED: the bundle's log is not sealed");
                        return Ok(ExitCode::from(1));
                    }
                }
            }
            println!(
                "OK: bundle of case {}: {} members, {} records, head {}",
                m.case, v.members, m.chain_head.records, m.chain_head.hash
            );
            if let Some((seq, key)) = &m.sealed {
                println!("sealed: the last seal covers records 1-{seq}, key {key}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("FAILED: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// `--public-key`'s value: the text of the file it names, or the key itself when it
/// names no file that can be read.
fn public_key_text(value: &str) -> anyhow::Result<String> {
    use crate::whole_file::{read_text, WholeFileError};
    match read_text(Path::new(value), super::seal::MAX_KEY_FILE_BYTES) {
        Ok(text) => Ok(text),
        Err(WholeFileError::Io(_)) => Ok(value.to_string()),
        Err(e) => Err(e).with_context(|| format!("--public-key {value}")),
    }
}
