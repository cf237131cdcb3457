//! The case store (DESIGN.md §8): a case directory holding the case file, the
//! evidence copies of ingested captures, and an SQLite database with an append-only,
//! hash-chained log of records plus indexes for queries.
//!
//! ```text
//! DIR/consentry.toml          the case file
//! DIR/evidence/<sha256[..16]>-<name>   captures, copied unchanged (0600)
//! DIR/.consentry/store.db     the log (0600; directory 0700), WAL mode
//! ```
//!
//! [`record`] is the pure part (canonical bytes, hashes, chain verification), [`db`]
//! the SQLite I/O. The CLI commands `init`, `ingest`, `verify`, `findings` and
//! `exchanges` (without files) work on a case directory found by [`CaseDir::locate`].

use std::fs;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;

pub mod bundle;
pub mod db;
pub mod glob;
pub(crate) mod json_string;
pub mod record;
mod static_insert;

pub use db::{Pruned, Query, Store, StoreError, StoredTable, Verified, VerifyError};

/// The case file's name inside a case directory.
pub const CASE_FILE: &str = "consentry.toml";
/// The store's directory inside a case directory.
pub const STORE_DIR: &str = ".consentry";
/// The database file inside [`STORE_DIR`].
pub const DB_FILE: &str = "store.db";
/// Where ingested captures are copied.
pub const EVIDENCE_DIR: &str = "evidence";

/// The case file `init` writes when not given one: valid as it is, the rest commented.
pub const CASE_TEMPLATE: &str = r#"# consentry case file (DESIGN.md §10). Times are RFC 3339; stored times are UTC.

[case]
id = "new-case"                      # free text, shown in reports
title = "App X.Y on Device Z, first launch"
# timezone = "Asia/Shanghai"         # for display only

# [app]
# name = "Example Shop"
# package = "com.example.shop"
# first_party = ["example-shop.com"] # registrable domains of the operator

# [[device]]
# id = "pixel7"
# addresses = ["192.168.50.23"]      # client addresses that identify it (pcap, proxy)
# [device.identifiers]               # the device's real values
# advertising_id = "38400000-8cf0-11bd-b23e-10b96e40000d"
# email = "tester@example.org"

# [[consent]]                        # decisions known in advance or recorded by hand
# device = "pixel7"
# at = "2026-11-28T10:15:30.250Z"
# decision = "refused"               # granted | refused | withdrawn
# purposes = ["advertising", "analytics"]
# note = "tapped Disagree on the first-launch privacy dialog"
"#;

/// A case directory.
#[derive(Debug, Clone)]
pub struct CaseDir {
    pub root: PathBuf,
}

impl CaseDir {
    /// The case directory at `start` or its nearest ancestor holding
    /// `.consentry/store.db` (as git finds `.git`).
    pub fn find(start: &Path) -> Option<CaseDir> {
        start
            .ancestors()
            .find(|d| d.join(STORE_DIR).join(DB_FILE).is_file())
            .map(|d| CaseDir {
                root: d.to_path_buf(),
            })
    }

    /// `-C DIR` when given (it must be a case directory), else the case directory
    /// found from the current directory upward.
    pub fn locate(explicit: Option<&Path>) -> anyhow::Result<CaseDir> {
        match explicit {
            Some(dir) => {
                if dir.join(STORE_DIR).join(DB_FILE).is_file() {
                    Ok(CaseDir {
                        root: dir.to_path_buf(),
                    })
                } else {
                    anyhow::bail!(
                        "{} is not a case directory (no {STORE_DIR}/{DB_FILE}; create one with `consentry init`)",
                        dir.display()
                    )
                }
            }
            None => {
                let cwd = std::env::current_dir().context("reading the current directory")?;
                CaseDir::find(&cwd).with_context(|| {
                    format!(
                        "no case directory in {} or above (create one with `consentry init`, or give -C DIR)",
                        cwd.display()
                    )
                })
            }
        }
    }

    /// Creates a case directory at `root`: the case file (a copy of `from_case`, or
    /// [`CASE_TEMPLATE`]), the store and the evidence directory. An existing case file
    /// is kept; an existing store is opened (and migrated), never emptied.
    pub fn init(root: &Path, from_case: Option<&Path>) -> anyhow::Result<CaseDir> {
        fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
        let dir = CaseDir {
            root: root.to_path_buf(),
        };
        let case_file = dir.case_file();
        if let Some(src) = from_case {
            // Validate what is copied: a case directory starts with a usable case.
            let (_, text) = crate::case::load_text(src)?;
            if case_file.exists() {
                anyhow::bail!(
                    "{} exists already; not overwriting it with {}",
                    case_file.display(),
                    src.display()
                );
            }
            write_new(&case_file, text.as_bytes(), 0o644)?;
        } else if !case_file.exists() {
            write_new(&case_file, CASE_TEMPLATE.as_bytes(), 0o644)?;
        }
        for sub in [dir.root.join(STORE_DIR), dir.evidence_dir()] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&sub)
                .with_context(|| format!("creating {}", sub.display()))?;
        }
        Store::open(&dir.store_path())?;
        Ok(dir)
    }

    pub fn case_file(&self) -> PathBuf {
        self.root.join(CASE_FILE)
    }

    pub fn store_path(&self) -> PathBuf {
        self.root.join(STORE_DIR).join(DB_FILE)
    }

    pub fn evidence_dir(&self) -> PathBuf {
        self.root.join(EVIDENCE_DIR)
    }

    /// Opens the case's store.
    pub fn open_store(&self) -> Result<Store, StoreError> {
        Store::open(&self.store_path())
    }
}

/// The evidence name of a capture: `<first 16 hex of its SHA-256>-<file name>`, with
/// anything but `[A-Za-z0-9._-]` in the name replaced by `_`.
pub fn evidence_name(sha256: &str, file_name: &str) -> String {
    let clean: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let prefix: String = sha256.chars().take(16).collect();
    format!("{prefix}-{clean}")
}

/// Writes a file that must not exist yet, with `mode`, and syncs it.
pub(crate) fn write_new(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::io::Write;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// Copies `src` into the evidence directory as `name` (mode 0600) unless a file of
/// that name with the same SHA-256 is there already; returns the path relative to the
/// case directory. Written to a temporary name, synced, then renamed: a crash leaves
/// no half-copied evidence under the final name.
pub fn copy_evidence(
    dir: &CaseDir,
    src: &Path,
    name: &str,
    sha256: &str,
) -> anyhow::Result<String> {
    place_evidence(dir, name, sha256, &src.display().to_string(), |tmp| {
        let mut input =
            fs::File::open(src).with_context(|| format!("reading {}", src.display()))?;
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        std::io::copy(&mut input, &mut out)
            .and_then(|_| out.sync_all())
            .with_context(|| format!("copying {} to {}", src.display(), tmp.display()))
    })
}

/// [`copy_evidence`] of a file written for the purpose (a stream copied as it was
/// read), moved into place rather than copied again; `what` names it in errors.
pub fn move_evidence(
    dir: &CaseDir,
    src: &Path,
    name: &str,
    sha256: &str,
    what: &str,
) -> anyhow::Result<String> {
    place_evidence(dir, name, sha256, what, |tmp| {
        fs::rename(src, tmp)
            .with_context(|| format!("moving {} to {}", src.display(), tmp.display()))
    })
}

/// [`copy_evidence`] of bytes in memory (`what` names them in errors): a file read
/// once, whose copy must be exactly what was read even if the file changes after.
pub fn save_evidence(
    dir: &CaseDir,
    bytes: &[u8],
    name: &str,
    sha256: &str,
    what: &str,
) -> anyhow::Result<String> {
    place_evidence(dir, name, sha256, what, |tmp| write_new(tmp, bytes, 0o600))
}

/// Writes evidence file `name` with `write` (to a temporary path), checks its SHA-256
/// and renames it into place; nothing when it is there already.
fn place_evidence(
    dir: &CaseDir,
    name: &str,
    sha256: &str,
    what: &str,
    write: impl FnOnce(&Path) -> anyhow::Result<()>,
) -> anyhow::Result<String> {
    let rel = format!("{EVIDENCE_DIR}/{name}");
    let dest = dir.root.join(&rel);
    if dest.exists() && crate::source::file_sha256(&dest).ok().as_deref() == Some(sha256) {
        return Ok(rel);
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir.evidence_dir())
        .with_context(|| format!("creating {}", dir.evidence_dir().display()))?;
    let tmp = dir.evidence_dir().join(format!(".{name}.part"));
    let _ = fs::remove_file(&tmp);
    write(&tmp)?;
    let copied = crate::source::file_sha256(&tmp)?;
    if copied != sha256 {
        let _ = fs::remove_file(&tmp);
        anyhow::bail!(
            "{what} changed while being copied (SHA-256 {sha256} before, {copied} after)"
        );
    }
    fs::rename(&tmp, &dest)
        .with_context(|| format!("moving {} to {}", tmp.display(), dest.display()))?;
    Ok(rel)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn template_is_a_valid_case() {
        crate::case::parse(CASE_TEMPLATE, "template").unwrap();
    }

    #[test]
    fn init_then_find_from_a_subdirectory() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("case");
        CaseDir::init(&root, None).unwrap();
        assert!(root.join(CASE_FILE).is_file());
        let mode = fs::metadata(root.join(STORE_DIR))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o700);
        let deep = root.join("a/b");
        fs::create_dir_all(&deep).unwrap();
        assert_eq!(CaseDir::find(&deep).unwrap().root, root);
        assert!(CaseDir::find(tmp.path()).is_none());
        // Idempotent: a second init keeps the case file and the store.
        fs::write(root.join(CASE_FILE), "[case]\nid = \"kept\"\n").unwrap();
        CaseDir::init(&root, None).unwrap();
        assert!(fs::read_to_string(root.join(CASE_FILE))
            .unwrap()
            .contains("kept"));
    }

    #[test]
    fn evidence_names_are_safe() {
        assert_eq!(
            evidence_name("0123456789abcdef0123", "../a b.har"),
            "0123456789abcdef-.._a_b.har"
        );
    }
}
