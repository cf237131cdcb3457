//! `--keylog FILE` (several allowed) on `analyze`, `exchanges`, `tap` and `ingest`: the
//! NSS key logs (`SSLKEYLOGFILE` of browsers, Frida dumps of apps) whose secrets
//! decrypt the TLS in captures. Secrets in a pcapng's own Decryption Secrets Blocks
//! need no flag: the capture reader applies them where it meets them.
//!
//! Files are read whole (bounded by [`MAX_KEYLOG_BYTES`]) and checked at once: a
//! missing or unreadable file is an error naming it, and what each held is reported
//! (`key log F: N lines, M used, K skipped`), so a key log that matches nothing is
//! noticed before the analysis says "no key".

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use crate::net::keylog::{KeyLog, KeyLogStats};

/// Largest key log file read (a key log has about 1 KiB per TLS connection; the
/// decryptor keeps at most `keylog::MAX_ENTRIES` client randoms anyway).
pub const MAX_KEYLOG_BYTES: u64 = 1 << 30;

/// One `--keylog` file, read.
#[derive(Debug, Clone)]
pub struct KeyLogFile {
    pub path: PathBuf,
    /// The file's bytes, shared by every capture of the run.
    pub text: Arc<[u8]>,
    /// What its lines gave.
    pub stats: KeyLogStats,
}

impl KeyLogFile {
    /// `key log F: N lines, M used, K skipped`.
    pub fn describe(&self) -> String {
        describe(&self.path.display().to_string(), &self.stats)
    }
}

/// `key log LABEL: N lines, M used, K skipped`, the one-line account of a key log.
pub fn describe(label: &str, stats: &KeyLogStats) -> String {
    format!(
        "key log {label}: {} lines, {} used, {} skipped",
        stats.lines, stats.used, stats.skipped
    )
}

/// Reads every `--keylog` file; the first that cannot be read is an error naming it.
pub fn load(paths: &[PathBuf]) -> anyhow::Result<Vec<KeyLogFile>> {
    paths.iter().map(|p| load_one(p)).collect()
}

fn load_one(path: &Path) -> anyhow::Result<KeyLogFile> {
    let bytes = crate::whole_file::read(path, MAX_KEYLOG_BYTES)
        .with_context(|| format!("key log {}", path.display()))?;
    let stats = KeyLog::new().add(&bytes);
    if stats.lines > 0 && stats.used == 0 {
        // Not an error (concatenated logs of other tools are normal), but worth saying
        // before the analysis reports every connection as "no key".
        eprintln!(
            "consentry: warning: key log {}: none of its {} lines is an NSS key log line",
            path.display(),
            stats.lines
        );
    }
    Ok(KeyLogFile {
        path: path.to_path_buf(),
        text: Arc::from(bytes),
        stats,
    })
}

/// The texts of `files`, for [`CaptureOptions::keylogs`](crate::source::pcap::CaptureOptions).
pub fn texts(files: &[KeyLogFile]) -> Vec<Arc<[u8]>> {
    files.iter().map(|f| f.text.clone()).collect()
}

/// Prints what each key log held on standard error (the CLI's account of its inputs).
pub fn report(files: &[KeyLogFile]) {
    for f in files {
        eprintln!("consentry: {}", f.describe());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_key_log_is_an_error_naming_it() {
        let err = load(&[PathBuf::from("/nonexistent/keys.log")]).unwrap_err();
        assert!(
            format!("{err:#}").contains("key log /nonexistent/keys.log"),
            "{err:#}"
        );
    }

    #[test]
    fn lines_are_counted_per_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.log");
        let line = format!("CLIENT_RANDOM {} {}\n", "11".repeat(32), "22".repeat(48));
        std::fs::write(&path, format!("# comment\n{line}garbage\n")).unwrap();
        let files = load(std::slice::from_ref(&path)).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(
            files[0].describe(),
            format!("key log {}: 2 lines, 1 used, 1 skipped", path.display())
        );
        assert_eq!(texts(&files)[0].len(), line.len() + 18);
    }
}
