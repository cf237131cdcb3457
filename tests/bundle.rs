//! `consentry export` and `consentry verify BUNDLE` end to end through the binary: a
//! sealed case with the demo HAR and the QUIC capture is exported and verifies; one
//! byte changed in any member (with or without the manifest updated to match) fails
//! naming the member; hostile zips (path traversal, a member larger than the manifest
//! says) fail; the bundle's HAR analysed again gives the same findings.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, OnceLock};

use consentry::cli::analyze::analyze_files;
use consentry::rules::Options;
use consentry::store::bundle::Manifest;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_consentry"))
}

fn capture(dir: &str, file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("captures")
        .join(dir)
        .join(file)
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `consentry init CASE --from-case CASE_FILE`.
fn init_case(case: &Path, case_file: &Path) {
    ok(&bin()
        .arg("init")
        .arg(case)
        .arg("--from-case")
        .arg(case_file)
        .output()
        .unwrap());
}

/// A sealed case with the demo HAR and the QUIC capture, exported once for all tests.
fn exported() -> &'static (tempfile::TempDir, PathBuf) {
    static BUNDLE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let case = tmp.path().join("case");
        init_case(&case, &capture("demo", "consentry.toml"));
        ok(&bin()
            .arg("-C")
            .arg(&case)
            .arg("ingest")
            .arg(capture("demo", "demo.har"))
            .output()
            .unwrap());
        ok(&bin()
            .arg("-C")
            .arg(&case)
            .args(["ingest", "--device", "pixel7"])
            .arg(capture("quic", "quic.pcap"))
            .output()
            .unwrap());
        ok(&bin().arg("-C").arg(&case).arg("seal").output().unwrap());
        let zip = tmp.path().join("case.zip");
        let out = ok(&bin()
            .arg("-C")
            .arg(&case)
            .arg("export")
            .arg("--out")
            .arg(&zip)
            .output()
            .unwrap());
        // The two captures and the case file they were analysed with.
        assert!(out.contains("3 evidence files"), "{out}");
        (tmp, zip)
    })
}

fn verify(zip: &Path) -> (bool, String) {
    let o = bin().arg("verify").arg(zip).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    match o.status.code() {
        Some(0) => (true, text),
        Some(1) => (false, text),
        other => panic!(
            "exit {other:?}: {text} {}",
            String::from_utf8_lossy(&o.stderr)
        ),
    }
}

/// The members of a zip, in order.
fn members(zip: &Path) -> Vec<(String, Vec<u8>)> {
    let mut z = zip::ZipArchive::new(std::fs::File::open(zip).unwrap()).unwrap();
    (0..z.len())
        .map(|i| {
            let mut m = z.by_index(i).unwrap();
            let mut data = Vec::new();
            m.read_to_end(&mut data).unwrap();
            (m.name().to_string(), data)
        })
        .collect()
}

fn write_zip(path: &Path, members: &[(String, Vec<u8>)]) {
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in members {
        z.start_file(name.as_str(), opts).unwrap();
        z.write_all(data).unwrap();
    }
    z.finish().unwrap();
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    consentry::store::record::hex(&sha2::Sha256::digest(data))
}

#[test]
fn export_then_verify_is_ok_and_lists_everything() {
    let (_tmp, zip) = exported();
    let (good, text) = verify(zip);
    assert!(good, "{text}");
    assert!(text.starts_with("OK: bundle of case demo-"), "{text}");
    assert!(text.contains("sealed: the last seal covers"), "{text}");
    let ms = members(zip);
    let names: Vec<&str> = ms.iter().map(|(n, _)| n.as_str()).collect();
    for want in [
        "MANIFEST.json",
        "records.jsonl",
        "findings.jsonl",
        "exchanges.jsonl",
        "exchanges.har",
        "report.html",
        "consentry.toml",
        "seal.pub",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    assert_eq!(
        names.iter().filter(|n| n.starts_with("evidence/")).count(),
        3
    );
    assert!(names
        .iter()
        .any(|n| n.starts_with("evidence/") && n.ends_with("-consentry.toml")));
    let manifest: Manifest = serde_json::from_slice(&ms.last().unwrap().1).unwrap();
    assert_eq!(manifest.files.len(), ms.len() - 1);
    assert_eq!(manifest.counts["finding"], 32);
    assert_eq!(manifest.counts["exchange"], 35);
    // The HAR holds the HTTP exchanges only (the QUIC ones stay in exchanges.jsonl).
    assert_eq!(manifest.counts["har_entries"], 29);
    for (name, data) in &ms[..ms.len() - 1] {
        let listed = manifest.files.iter().find(|f| &f.path == name).unwrap();
        assert_eq!(listed.sha256, sha256_hex(data), "{name}");
        assert_eq!(listed.size, data.len() as u64);
    }
    // The records recompute the chain head the manifest states (verify did it too).
    let findings = String::from_utf8(
        ms.iter()
            .find(|(n, _)| n == "findings.jsonl")
            .unwrap()
            .1
            .clone(),
    )
    .unwrap();
    assert_eq!(findings.lines().count(), 32);
}

#[test]
fn one_changed_byte_in_any_member_fails_naming_it() {
    let (tmp, zip) = exported();
    let ms = members(zip);
    let bad = tmp.path().join("bad.zip");
    for (i, (name, data)) in ms.iter().enumerate() {
        let mut changed = ms.clone();
        let at = data.len() / 2;
        changed[i].1[at] ^= 0x20;
        write_zip(&bad, &changed);
        let (good, text) = verify(&bad);
        assert!(!good, "{name}: {text}");
        assert!(
            text.starts_with(&format!("FAILED: {name}:")),
            "{name}: {text}"
        );
    }
}

#[test]
fn a_member_changed_with_its_manifest_entry_still_fails() {
    let (tmp, zip) = exported();
    let ms = members(zip);
    let bad = tmp.path().join("bad-consistent.zip");
    for target in ["findings.jsonl", "exchanges.jsonl", "records.jsonl"] {
        let mut changed = ms.clone();
        let i = changed.iter().position(|(n, _)| n == target).unwrap();
        // Change the first finding's severity/record text: still valid JSON.
        let text = String::from_utf8(changed[i].1.clone()).unwrap();
        let edited = text.replacen("pixel7", "pixel8", 1);
        assert_ne!(text, edited);
        changed[i].1 = edited.into_bytes();
        let last = changed.len() - 1;
        let mut manifest: Manifest = serde_json::from_slice(&changed[last].1).unwrap();
        let entry = manifest
            .files
            .iter_mut()
            .find(|f| f.path == target)
            .unwrap();
        entry.sha256 = sha256_hex(&changed[i].1);
        entry.size = changed[i].1.len() as u64;
        changed[last].1 = serde_json::to_vec(&manifest).unwrap();
        write_zip(&bad, &changed);
        let (good, text) = verify(&bad);
        assert!(!good, "{target}: {text}");
        assert!(
            text.starts_with(&format!("FAILED: {target}:")),
            "{target}: {text}"
        );
    }
    // An evidence file replaced, manifest updated: its ingest record disagrees.
    let mut changed = ms.clone();
    let i = changed
        .iter()
        .position(|(n, _)| n.ends_with("quic.pcap"))
        .unwrap();
    changed[i].1.push(0);
    let name = changed[i].0.clone();
    let last = changed.len() - 1;
    let mut manifest: Manifest = serde_json::from_slice(&changed[last].1).unwrap();
    let entry = manifest.files.iter_mut().find(|f| f.path == name).unwrap();
    entry.sha256 = sha256_hex(&changed[i].1);
    entry.size = changed[i].1.len() as u64;
    changed[last].1 = serde_json::to_vec(&manifest).unwrap();
    write_zip(&bad, &changed);
    let (good, text) = verify(&bad);
    assert!(
        !good && text.contains(&name) && text.contains("ingest record"),
        "{text}"
    );
}

#[test]
fn hostile_bundles_fail() {
    let (tmp, zip) = exported();
    let ms = members(zip);
    let bad = tmp.path().join("hostile.zip");
    // A member that would extract outside the directory.
    let mut traversal = ms.clone();
    traversal.insert(0, ("../../etc/cron.d/x".into(), b"boom".to_vec()));
    write_zip(&bad, &traversal);
    let (good, text) = verify(&bad);
    assert!(
        !good && text.contains("../../etc/cron.d/x") && text.contains("unsafe"),
        "{text}"
    );
    // A member not in the manifest.
    let mut extra = ms.clone();
    extra.insert(0, ("extra.txt".into(), b"x".to_vec()));
    write_zip(&bad, &extra);
    let (good, text) = verify(&bad);
    assert!(
        !good && text.starts_with("FAILED: extra.txt: is not in the manifest"),
        "{text}"
    );
    // A bomb: 64 MiB of zeros (64 KiB compressed) where the manifest says the case
    // file is; verify stops reading right after the size the manifest gives.
    let mut bomb = ms.clone();
    let i = bomb
        .iter()
        .position(|(n, _)| n == "consentry.toml")
        .unwrap();
    bomb[i].1 = vec![0; 64 << 20];
    write_zip(&bad, &bomb);
    let started = std::time::Instant::now();
    let (good, text) = verify(&bad);
    assert!(
        !good && text.starts_with("FAILED: consentry.toml:") && text.contains("more than"),
        "{text}"
    );
    assert!(started.elapsed().as_secs() < 20, "read the whole bomb");
    // Not a zip, and a truncated one.
    std::fs::write(&bad, b"PK\x03\x04 not really").unwrap();
    assert!(!verify(&bad).0);
    let raw = std::fs::read(zip).unwrap();
    std::fs::write(&bad, &raw[..raw.len() / 2]).unwrap();
    assert!(!verify(&bad).0);
}

#[test]
fn the_bundle_har_gives_the_same_findings() {
    let (tmp, zip) = exported();
    let ms = members(zip);
    let har = tmp.path().join("bundle-extracted.har");
    std::fs::write(
        &har,
        &ms.iter().find(|(n, _)| n == "exchanges.har").unwrap().1,
    )
    .unwrap();
    let case = Arc::new(consentry::case::load(&capture("demo", "consentry.toml")).unwrap());
    // Ids differ by source (they hash the source's positions), and so does a wire
    // signal's note, which names the exchange that carried it; the rest must match.
    let key = |f: &consentry::rules::Finding| {
        let mut v = serde_json::to_value(f).unwrap();
        if let Some(e) = v["consent"]["event"].as_object_mut() {
            e.remove("note");
        }
        (
            v["rule"].to_string(),
            v["at"].to_string(),
            v["device"].to_string(),
            v["destination"].to_string(),
            v["data"].to_string(),
            v["consent"].to_string(),
        )
    };
    let run = |file: PathBuf| {
        let r = analyze_files(case.clone(), &[file], None, Options::default(), 0).unwrap();
        assert!(r.summary.input_errors.is_empty());
        let mut k: Vec<_> = r.findings.iter().map(key).collect();
        k.sort();
        k
    };
    let original = run(capture("demo", "demo.har"));
    assert_eq!(original.len(), 28);
    let again = run(har);
    assert_eq!(again.len(), original.len());
    for (a, b) in again.iter().zip(&original) {
        assert_eq!(a, b);
    }
}

/// A capture ingested with a key log is read again with it: the bundle's HAR holds its
/// decrypted requests, and the key log (evidence too) is in the bundle.
#[test]
fn a_capture_is_read_again_with_the_key_log_it_was_ingested_with() {
    let tmp = tempfile::tempdir().unwrap();
    let case = tmp.path().join("case");
    init_case(&case, &capture("tls", "consentry.toml"));
    ok(&bin()
        .arg("-C")
        .arg(&case)
        .arg("ingest")
        .arg(capture("tls", "tls.pcap"))
        .arg("--keylog")
        .arg(capture("tls", "tls.keylog"))
        .output()
        .unwrap());
    let zip = tmp.path().join("case.zip");
    let out = ok(&bin()
        .arg("-C")
        .arg(&case)
        .args(["export", "--out"])
        .arg(&zip)
        .output()
        .unwrap());
    assert!(out.contains("3 evidence files"), "{out}");
    let (good, text) = verify(&zip);
    assert!(good, "{text}");
    let ms = members(&zip);
    assert!(ms.iter().any(|(n, _)| n.ends_with("-tls.keylog")));
    let manifest: Manifest = serde_json::from_slice(&ms.last().unwrap().1).unwrap();
    // Every request of the capture is readable with its key log (none without).
    let listed = ok(&bin()
        .arg("exchanges")
        .arg(capture("tls", "tls.pcap"))
        .arg("--keylog")
        .arg(capture("tls", "tls.keylog"))
        .args(["--format", "jsonl"])
        .output()
        .unwrap());
    let decrypted = listed
        .lines()
        .filter(|l| !l.contains(r#""metadata_only":true"#))
        .count();
    assert!(decrypted > 10, "{listed}");
    assert_eq!(manifest.counts["har_entries"], decrypted as u64);
}
