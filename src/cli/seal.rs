//! `consentry seal`: signs the chain head with the case's Ed25519 key and appends the
//! signature as a `seal` record, so a third party can check the log with the public
//! key alone (`consentry verify --public-key HEX`).
//!
//! The key is created on first use: `.consentry/seal.key` (the 32-byte secret as
//! hex, mode 0600, from /dev/urandom) and `.consentry/seal.pub` (the public key as
//! hex, to hand out).

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use ed25519_dalek::SigningKey;

use crate::store::record::{hex, unhex};
use crate::store::{CaseDir, STORE_DIR};

#[derive(Debug, clap::Args)]
pub struct Args {}

/// The largest key or token file read: 64 hex digits with whitespace about them.
pub const MAX_KEY_FILE_BYTES: u64 = 4096;

/// The secret key file inside the case directory.
pub fn key_path(dir: &CaseDir) -> PathBuf {
    dir.root.join(STORE_DIR).join("seal.key")
}

/// The public key file inside the case directory.
pub fn public_key_path(dir: &CaseDir) -> PathBuf {
    dir.root.join(STORE_DIR).join("seal.pub")
}

/// Loads the case key, creating it (0600) on first use.
pub fn load_or_create_key(dir: &CaseDir) -> anyhow::Result<SigningKey> {
    let path = key_path(dir);
    if path.exists() {
        let text = crate::whole_file::read_text(&path, MAX_KEY_FILE_BYTES)
            .with_context(|| format!("case key {}", path.display()))?;
        let bytes: [u8; 32] = unhex(text.trim())
            .and_then(|b| b.try_into().ok())
            .with_context(|| format!("{} is not a 32-byte hex key", path.display()))?;
        return Ok(SigningKey::from_bytes(&bytes));
    }
    let mut secret = [0u8; 32];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut secret))
        .context("reading /dev/urandom for the case key")?;
    let key = SigningKey::from_bytes(&secret);
    crate::store::write_new(&path, format!("{}\n", hex(&secret)).as_bytes(), 0o600)?;
    let public = public_key_path(dir);
    crate::store::write_new(
        &public,
        format!("{}\n", hex(key.verifying_key().as_bytes())).as_bytes(),
        0o644,
    )?;
    Ok(key)
}

pub fn run(_args: Args, dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let dir = CaseDir::locate(dir)?;
    let key = load_or_create_key(&dir)?;
    let mut store = dir.open_store()?;
    let (head, seq) = store.seal(&key)?;
    println!(
        "sealed record {} (head {}) as record {seq}\npublic key {} (in {})",
        head.seq,
        hex(&head.hash),
        hex(key.verifying_key().as_bytes()),
        public_key_path(&dir).display()
    );
    Ok(ExitCode::SUCCESS)
}
