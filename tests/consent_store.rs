//! `consentry consent` without a proxy writes into the case store, while another
//! process appends to the same store: no error, no lost record, `verify` passes.

use std::path::Path;
use std::process::{Command, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_consentry"))
}

/// Consent record bodies in the store of `dir` that `consentry consent` wrote.
fn stored_consents(dir: &Path) -> Vec<String> {
    let c = rusqlite::Connection::open_with_flags(
        dir.join(".consentry").join("store.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut st = c
        .prepare("SELECT key FROM consents WHERE key LIKE 'consent:%'")
        .unwrap();
    let rows = st.query_map([], |r| r.get::<_, String>(0)).unwrap();
    rows.map(Result::unwrap).collect()
}

#[test]
fn consent_without_a_proxy_goes_into_the_store_while_an_ingest_appends() {
    let tmp = tempfile::tempdir().unwrap();
    let har = tmp.path().join("big.har");
    let gen = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/gen_har.py"))
        .arg(&har)
        .arg("5")
        .output()
        .expect("benches/gen_har.py needs python3");
    assert!(gen.status.success());
    let dir = tmp.path().join("case");
    let init = bin()
        .arg("init")
        .arg(&dir)
        .arg("--from-case")
        .arg(tmp.path().join("big.har.toml"))
        .output()
        .unwrap();
    assert!(init.status.success(), "{init:?}");
    let writer = bin()
        .arg("-C")
        .arg(&dir)
        .arg("ingest")
        .arg(&har)
        .env("CONSENTRY_STORE_BATCH", "20")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Nothing listens on port 1 of loopback: the connection is refused.
    let decisions = [
        "refused",
        "granted",
        "withdrawn",
        "granted",
        "refused",
        "granted",
    ];
    for (i, d) in decisions.iter().enumerate() {
        let at = format!("2026-03-0{}T10:00:00Z", i + 1);
        let o = bin()
            .arg("-C")
            .arg(&dir)
            .args([
                "consent",
                "phone",
                d,
                "--control",
                "127.0.0.1:1",
                "--at",
                &at,
            ])
            .args(["--purposes", "advertising"])
            .output()
            .unwrap();
        assert!(o.status.success(), "consent {d}: {o:?}");
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains("stored in the case store"), "{out}");
        let f = bin()
            .arg("-C")
            .arg(&dir)
            .args(["findings", "--format", "jsonl"])
            .output()
            .unwrap();
        assert!(f.status.success(), "findings: {f:?}");
    }
    let status = writer.wait_with_output().unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert_eq!(stored_consents(&dir).len(), decisions.len());
    let v = bin().arg("-C").arg(&dir).arg("verify").output().unwrap();
    assert!(v.status.success(), "verify: {v:?}");
    // An unknown device is refused, not stored.
    let o = bin()
        .arg("-C")
        .arg(&dir)
        .args(["consent", "nobody", "granted", "--control", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert_eq!(stored_consents(&dir).len(), decisions.len());
}
