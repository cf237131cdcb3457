//! The case store end to end through the binary: init, ingest, verify, queries,
//! tampering, and SIGKILL during an ingest.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_consentry"))
}

fn capture(dir: &str, file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("captures")
        .join(dir)
        .join(file)
}

fn run(args: &[&std::ffi::OsStr]) -> Output {
    bin().args(args).output().expect("running consentry")
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

macro_rules! args {
    ($($a:expr),* $(,)?) => { &[$(std::ffi::OsStr::new($a)),*] };
}

/// JSON lines as a sorted set of values (order-independent comparison).
fn json_lines(s: &str) -> BTreeSet<String> {
    s.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            v.to_string()
        })
        .collect()
}

/// Inits a case from `case_file` and ingests `file` into it.
fn case_with(tmp: &Path, case_file: &Path, file: &Path) -> PathBuf {
    let dir = tmp.join("case");
    ok(&run(args!("init", &dir, "--from-case", case_file)));
    let out = ok(&run(args!("-C", &dir, "ingest", file)));
    assert!(out.contains("ingested as evidence/"), "{out}");
    dir
}

fn verify(dir: &Path) -> (bool, String) {
    let o = run(args!("verify", dir));
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

fn check_case(dir_name: &str, file: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let case_file = capture(dir_name, "consentry.toml");
    let input = capture(dir_name, file);
    let dir = case_with(tmp.path(), &case_file, &input);

    let (good, out) = verify(&dir);
    assert!(good, "{out}");
    assert!(
        // The capture and the case file.
        out.starts_with("OK: ") && out.contains(" 2 evidence files, head "),
        "{out}"
    );

    // The stored findings are the findings `analyze` prints.
    let stored = ok(&run(args!("-C", &dir, "findings", "--format", "jsonl")));
    let analysed = ok(&run(args!(
        "analyze", &input, "--case", &case_file, "--format", "jsonl"
    )));
    let stored = json_lines(&stored);
    assert!(!stored.is_empty());
    assert_eq!(stored, json_lines(&analysed));

    // So are the exchanges (ids) that `exchanges FILE` lists.
    let listed = ok(&run(args!(
        "exchanges",
        &input,
        "--case",
        &case_file,
        "--format",
        "jsonl"
    )));
    let stored_x = ok(&run(args!("-C", &dir, "exchanges", "--format", "jsonl")));
    let ids = |s: &str| -> Vec<String> {
        let mut v: Vec<String> = s
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(ids(&stored_x), ids(&listed));
    // With what the parsers met reading them: the stored records keep the
    // exchanges' anomalies (their kinds compared: a listing searches no body past
    // the parsers' cap, so a `body-size-limit` says nothing of such a search).
    let anomalies = |s: &str| -> BTreeSet<String> {
        s.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter_map(|x| {
                let kinds: Vec<String> = x
                    .get("anomalies")?
                    .as_array()?
                    .iter()
                    .map(|a| a["kind"].to_string())
                    .collect();
                Some(format!("{} {}", x["id"], kinds.join(",")))
            })
            .collect()
    };
    assert_eq!(anomalies(&stored_x), anomalies(&listed));

    // Ingesting again does nothing.
    let head_before = out.clone();
    let again = ok(&run(args!("-C", &dir, "ingest", &input)));
    assert!(again.contains("already ingested"), "{again}");
    let (good, out) = verify(&dir);
    assert!(good);
    assert_eq!(out, head_before);
}

#[test]
fn demo_har_case_verifies_and_matches_analyze() {
    check_case("demo", "demo.har");
}

#[test]
fn gateway_pcapng_case_verifies_and_matches_analyze() {
    check_case("gateway", "gateway.pcapng");
}

/// Identifiers past the 8 MiB of a body the parsers keep (`make_upload.py`) are
/// stored as `analyze` finds them (none stored would fail `check_case`), and the
/// exchanges' records say their bodies were cut.
#[test]
fn gateway_uploads_past_the_analysis_cap_verify_and_match_analyze() {
    check_case("gateway", "upload.pcap.gz");
}

#[test]
fn queries_filter_through_the_indexes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = case_with(
        tmp.path(),
        &capture("demo", "consentry.toml"),
        &capture("demo", "demo.har"),
    );
    let all = json_lines(&ok(&run(args!(
        "-C", &dir, "findings", "--format", "jsonl"
    ))));
    let field = |s: &String, k: &str| -> String {
        let v: serde_json::Value = serde_json::from_str(s).unwrap();
        v.pointer(k)
            .and_then(|x| x.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let rule = "share-before-consent";
    let by_rule = json_lines(&ok(&run(args!(
        "-C", &dir, "findings", "--rule", rule, "--format", "jsonl"
    ))));
    let want: BTreeSet<String> = all
        .iter()
        .filter(|f| field(f, "/rule") == rule)
        .cloned()
        .collect();
    assert!(!want.is_empty() && want.len() < all.len());
    assert_eq!(by_rule, want);

    let by_host = json_lines(&ok(&run(args!(
        "-C",
        &dir,
        "findings",
        "--host",
        "*.umeng.com",
        "--format",
        "jsonl"
    ))));
    let want: BTreeSet<String> = all
        .iter()
        .filter(|f| field(f, "/destination/host").ends_with(".umeng.com"))
        .cloned()
        .collect();
    assert!(!want.is_empty());
    assert_eq!(by_host, want);

    let since = "2026-11-28T10:15:10.250Z";
    let later = json_lines(&ok(&run(args!(
        "-C", &dir, "findings", "--since", since, "--format", "jsonl"
    ))));
    let want: BTreeSet<String> = all
        .iter()
        .filter(|f| field(f, "/at").as_str() >= "2026-11-28T10:15:10.250000Z")
        .cloned()
        .collect();
    assert!(!want.is_empty() && want.len() < all.len());
    assert_eq!(later, want);

    let none = ok(&run(args!("-C", &dir, "findings", "--device", "nobody")));
    assert!(none.ends_with("0 findings\n"), "{none}");

    // The case directory is found from a subdirectory, as git does.
    let sub = dir.join("evidence");
    let o = bin()
        .current_dir(&sub)
        .args(["findings", "--format", "jsonl"])
        .output()
        .unwrap();
    assert_eq!(json_lines(&ok(&o)), all);
    // Outside a case directory: a clear error, exit 2.
    let o = bin()
        .current_dir(tmp.path())
        .args(["findings"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no case directory"));
}

#[test]
fn a_flipped_evidence_byte_fails_verify_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = case_with(
        tmp.path(),
        &capture("demo", "consentry.toml"),
        &capture("demo", "demo.har"),
    );
    let evidence = std::fs::read_dir(dir.join("evidence"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .next()
        .unwrap();
    let mut bytes = std::fs::read(&evidence).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&evidence, bytes).unwrap();
    let (good, out) = verify(&dir);
    assert!(!good);
    let name = evidence.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        out.starts_with("FAILED: evidence file") && out.contains(&name),
        "{out}"
    );
}

#[test]
fn a_flipped_database_byte_fails_verify_naming_the_record() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = case_with(
        tmp.path(),
        &capture("demo", "consentry.toml"),
        &capture("demo", "demo.har"),
    );
    let db = dir.join(".consentry/store.db");
    // Pick a finding record in the middle and a piece of its body found nowhere else
    // in the file (the summary text is not in any index).
    let (seq, needle) = {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let rows: Vec<(i64, Vec<u8>)> = conn
            .prepare("SELECT seq, body FROM records WHERE kind = 'finding' ORDER BY seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let (seq, body) = rows[rows.len() / 2].clone();
        let body = String::from_utf8(body).unwrap();
        let at = body.find("\"summary\":\"").unwrap();
        // The summary plus the finding's own id make the needle unique.
        (seq, body[..at + 40].to_string())
    };
    let mut bytes = std::fs::read(&db).unwrap();
    assert!(
        !dir.join(".consentry/store.db-wal").exists()
            || std::fs::metadata(dir.join(".consentry/store.db-wal"))
                .unwrap()
                .len()
                == 0,
        "the WAL is checkpointed when the last connection closes"
    );
    let needle = needle.as_bytes();
    let hits: Vec<usize> = bytes
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(hits.len(), 1, "the record body is stored once");
    let pos = hits[0] + needle.len() - 3;
    bytes[pos] ^= 0x01;
    std::fs::write(&db, bytes).unwrap();
    let (good, out) = verify(&dir);
    assert!(!good, "{out}");
    assert!(out.starts_with(&format!("FAILED: record {seq}: ")), "{out}");
}

#[test]
fn prune_drops_old_exchanges_without_findings_and_verify_still_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = case_with(
        tmp.path(),
        &capture("gateway", "consentry.toml"),
        &capture("gateway", "gateway.pcapng"),
    );
    let ids = |out: &str| -> BTreeSet<String> {
        json_lines(out)
            .iter()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].to_string())
            .collect()
    };
    let findings_before = ok(&run(args!("-C", &dir, "findings", "--format", "jsonl")));
    let exchanges_before = ids(&ok(&run(args!(
        "-C",
        &dir,
        "exchanges",
        "--format",
        "jsonl"
    ))));
    // Exchanges a finding points at must survive.
    let needed: BTreeSet<String> = json_lines(&findings_before)
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["exchange"].to_string())
        .collect();
    assert!(!needed.is_empty() && needed.len() < exchanges_before.len());

    let cut = "2100-01-01T00:00:00Z";
    let dry = ok(&run(args!(
        "-C",
        &dir,
        "prune",
        "--before",
        cut,
        "--dry-run"
    )));
    assert!(dry.starts_with("would prune "), "{dry}");
    assert_eq!(
        ids(&ok(&run(args!(
            "-C",
            &dir,
            "exchanges",
            "--format",
            "jsonl"
        )))),
        exchanges_before,
        "a dry run changes nothing"
    );
    let out = ok(&run(args!(
        "-C", &dir, "prune", "--before", cut, "--vacuum"
    )));
    let want = format!(
        "pruned {} of {} exchanges",
        exchanges_before.len() - needed.len(),
        exchanges_before.len()
    );
    assert!(
        out.starts_with(&want) && out.contains("checkpoint record"),
        "{out}"
    );

    let (passed, text) = verify(&dir);
    assert!(passed, "{text}");
    assert_eq!(
        ids(&ok(&run(args!(
            "-C",
            &dir,
            "exchanges",
            "--format",
            "jsonl"
        )))),
        needed
    );
    assert_eq!(
        json_lines(&ok(&run(args!(
            "-C", &dir, "findings", "--format", "jsonl"
        )))),
        json_lines(&findings_before),
        "findings are never pruned"
    );
    ok(&run(args!(
        "-C",
        &dir,
        "report",
        "--out",
        &tmp.path().join("r.html")
    )));
    // A bundle of a pruned case verifies without the store.
    let zip = tmp.path().join("case.zip");
    ok(&run(args!("-C", &dir, "export", "--out", &zip)));
    ok(&run(args!("verify", &zip)));
}

#[test]
fn init_makes_a_template_case_and_store_files_private() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("new");
    ok(&run(args!("init", &dir)));
    assert!(std::fs::read_to_string(dir.join("consentry.toml"))
        .unwrap()
        .contains("[case]"));
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.join(".consentry")), 0o700);
    assert_eq!(mode(&dir.join(".consentry/store.db")), 0o600);
    let (good, out) = verify(&dir);
    assert!(good, "{out}");
    assert!(out.starts_with("OK: 0 records, 0 evidence files"), "{out}");
    // The template case is usable: a HAR needs no device when the case has none.
    let o = ok(&run(args!(
        "-C",
        &dir,
        "ingest",
        &capture("demo", "demo.har")
    )));
    assert!(o.contains("ingested"), "{o}");
    // The HAR and the case file it was analysed with, both private.
    let evidence: Vec<_> = std::fs::read_dir(dir.join("evidence")).unwrap().collect();
    assert_eq!(evidence.len(), 2);
    for file in evidence {
        assert_eq!(mode(&file.unwrap().path()), 0o600);
    }
}

/// A small deterministic generator, seeded from the clock (the seed is printed).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

/// Waits until the store at `path` holds more records than when called (or `limit`
/// passes): a reader in WAL mode sees each commit of the writer.
fn wait_for_new_records(path: &Path, limit: Duration) {
    let count = || -> i64 {
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .and_then(|c| {
                c.query_row("SELECT COALESCE(MAX(seq), 0) FROM records", [], |r| {
                    r.get(0)
                })
            })
            .unwrap_or(0)
    };
    let start = count();
    let t0 = std::time::Instant::now();
    while count() <= start && t0.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn sigkill_during_ingest_leaves_a_verifiable_store_and_the_rerun_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let har = tmp.path().join("big.har");
    let gen = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/gen_har.py"))
        .arg(&har)
        .arg("4")
        .output();
    match gen {
        Ok(o) if o.status.success() => {}
        other => panic!("benches/gen_har.py (python3) is needed: {other:?}"),
    }
    let case_file = tmp.path().join("big.har.toml");
    let dir = tmp.path().join("case");
    ok(&run(args!("init", &dir, "--from-case", &case_file)));
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("kill schedule seed {seed}");
    let mut rng = Lcg(seed);
    let mut partial_seen = false;
    for round in 0..5 {
        let mut child = bin()
            .args([std::ffi::OsStr::new("-C"), dir.as_os_str()])
            .arg("ingest")
            .arg(&har)
            .args(["-j", "1"])
            // Small transactions: many commits, so kills land between and inside them.
            .env("CONSENTRY_STORE_BATCH", "25")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        if round > 0 {
            // Later rounds kill after the first commits of this run (the WAL grows),
            // however slow the machine: a kill must land mid-ingest, not before it.
            wait_for_new_records(&dir.join(".consentry/store.db"), Duration::from_secs(30));
            std::thread::sleep(Duration::from_millis(rng.next(1500)));
        } else {
            std::thread::sleep(Duration::from_millis(200 + rng.next(2500)));
        }
        // SIGKILL: no destructor, no flush, no commit.
        let _ = child.kill();
        let _ = child.wait();
        let (good, out) = verify(&dir);
        assert!(good, "round {round}, seed {seed}: {out}");
        let records: u64 = out
            .trim_start_matches("OK: ")
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        if records > 1 {
            partial_seen = true;
        }
    }
    let out = ok(&run(args!("-C", &dir, "ingest", &har)));
    assert!(
        out.contains("ingested as") || out.contains("already ingested"),
        "{out}"
    );
    let (good, out) = verify(&dir);
    assert!(good, "{out}");
    assert!(
        partial_seen,
        "no kill landed after the first commit (seed {seed})"
    );

    // Exactly the exchanges and findings of one uninterrupted analysis, no duplicate.
    let stored = ok(&run(args!("-C", &dir, "exchanges", "--format", "jsonl")));
    let ids: Vec<&str> = stored.lines().collect();
    let unique: BTreeSet<String> = ids
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].to_string())
        .collect();
    assert_eq!(unique.len(), ids.len(), "duplicate exchanges");
    let listed = ok(&run(args!("exchanges", &har, "--format", "jsonl")));
    assert_eq!(ids.len(), listed.lines().count());
    let stored_f = ok(&run(args!("-C", &dir, "findings", "--format", "jsonl")));
    let analysed = ok(&run(args!(
        "analyze", &har, "--case", &case_file, "--format", "jsonl"
    )));
    assert_eq!(stored_f.lines().count(), json_lines(&stored_f).len());
    assert_eq!(json_lines(&stored_f), json_lines(&analysed));
}

#[test]
fn seal_signs_the_head_and_verify_checks_the_key() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = case_with(
        tmp.path(),
        &capture("demo", "consentry.toml"),
        &capture("demo", "demo.har"),
    );
    let (_, before) = verify(&dir);
    let records: u64 = before[4..].split(' ').next().unwrap().parse().unwrap();
    let out = ok(&run(args!("-C", &dir, "seal")));
    assert!(
        out.starts_with(&format!("sealed record {records} ")),
        "{out}"
    );
    let key = dir.join(".consentry/seal.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let public = dir.join(".consentry/seal.pub");
    let o = run(args!("verify", &dir, "--public-key", &public));
    let out = ok(&o);
    assert!(
        out.contains(&format!("the last covers records 1-{records}")),
        "{out}"
    );
    // Another key is refused.
    let o = run(args!("verify", &dir, "--public-key", &"11".repeat(32)));
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("FAILED: the last seal is by key"));
    // An unsealed case is refused when a key is required.
    let tmp2 = tempfile::tempdir().unwrap();
    let other = tmp2.path().join("c");
    ok(&run(args!("init", &other)));
    let o = run(args!("verify", &other, "--public-key", &public));
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("not sealed"));
}

#[test]
fn readers_in_other_processes_see_consistent_snapshots_during_an_ingest() {
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
    ok(&run(args!(
        "init",
        &dir,
        "--from-case",
        &tmp.path().join("big.har.toml")
    )));
    let mut writer = bin()
        .args([std::ffi::OsStr::new("-C"), dir.as_os_str()])
        .arg("ingest")
        .arg(&har)
        .env("CONSENTRY_STORE_BATCH", "20")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen = BTreeSet::new();
    let mut done = false;
    while !done {
        done = writer.try_wait().unwrap().is_some();
        let (good, out) = verify(&dir);
        assert!(good, "{out}");
        seen.insert(out);
        let o = run(args!("-C", &dir, "exchanges", "--format", "jsonl"));
        ok(&o);
    }
    let status = writer.wait_with_output().unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    // At least one state before the final one was read mid-ingest.
    assert!(seen.len() >= 2, "the readers saw the log grow: {seen:?}");
}

/// A case directory `case` in `tmp` whose case file has two devices: a HAR needs
/// `--device`.
fn two_device_case(tmp: &Path) -> PathBuf {
    let dir = tmp.join("case");
    ok(&run(args!(
        "init",
        &dir,
        "--from-case",
        &capture("gateway", "consentry.toml")
    )));
    dir
}

#[test]
fn a_failed_input_is_not_marked_complete_and_a_rerun_finishes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = two_device_case(tmp.path());
    let har = capture("demo", "demo.har");
    let o = run(args!("-C", &dir, "ingest", &har));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stdout).contains("NOT complete"));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--device"));
    let (good, out) = verify(&dir);
    assert!(good, "{out}");
    let o = ok(&run(args!(
        "-C", &dir, "ingest", &har, "--device", "pixel7"
    )));
    assert!(o.contains("interrupted ingest completed"), "{o}");
    let o = ok(&run(args!(
        "-C", &dir, "ingest", &har, "--device", "pixel7"
    )));
    assert!(o.contains("already ingested"), "{o}");
    let (good, out) = verify(&dir);
    assert!(good, "{out}");
}

/// The ingest records (their `data`) of a case, in log order.
fn ingest_records(dir: &Path) -> Vec<serde_json::Value> {
    let db = rusqlite::Connection::open_with_flags(
        dir.join(".consentry/store.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut stmt = db
        .prepare("SELECT body FROM records WHERE kind = 'ingest' ORDER BY seq")
        .unwrap();
    let rows = stmt
        .query_map([], |r| r.get::<_, Vec<u8>>(0))
        .unwrap()
        .map(|body| {
            serde_json::from_slice::<serde_json::Value>(&body.unwrap()).unwrap()["data"].clone()
        })
        .collect();
    rows
}

fn sha256_hex(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(std::fs::read(path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What a capture's findings depend on besides its bytes (the case file, key logs,
/// 802.11 keys, the options) is stored with it: the files as evidence, the options in
/// its ingest records, and the report says it.
#[test]
fn ingest_keeps_the_case_file_and_keys_as_evidence_and_the_options_with_the_capture() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("case");
    let case_file = capture("wpa2", "consentry.toml");
    ok(&run(args!("init", &dir, "--from-case", &case_file)));
    let keys = capture("wpa2", "80211_keys");
    let keylog = capture("tls", "tls.keylog");
    let out = ok(&run(args!(
        "-C",
        &dir,
        "ingest",
        &capture("wpa2", "wpa2.pcap"),
        "--wlan-keys",
        &keys,
        "--keylog",
        &keylog,
        "--tunnel-port",
        "vxlan=8472,4789",
        "--all-apps",
        "--secrets-first"
    )));
    let (case_sha, keys_sha, keylog_sha) = (
        sha256_hex(&dir.join("consentry.toml")),
        sha256_hex(&keys),
        sha256_hex(&keylog),
    );
    for (what, sha) in [
        ("case file", &case_sha),
        ("802.11 keys file", &keys_sha),
        ("key log", &keylog_sha),
    ] {
        assert!(
            out.contains(&format!(": {what} stored as evidence/{}-", &sha[..16])),
            "{what}: {out}"
        );
    }
    let records = ingest_records(&dir);
    let kinds: Vec<&str> = records
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    // Each side file started and complete, then the capture's two records.
    assert_eq!(
        kinds,
        [
            "case",
            "case",
            "keylog",
            "keylog",
            "wlan-keys",
            "wlan-keys",
            "pcap",
            "pcap"
        ]
    );
    let want = serde_json::json!({
        "case_sha256": case_sha,
        "all_apps": true,
        "secrets_first": true,
        "keylogs": [keylog_sha],
        "wlan_keys": [keys_sha],
        "tunnel_ports": ["vxlan=4789,8472"],
    });
    for capture_record in &records[6..] {
        assert_eq!(capture_record["options"], want);
    }
    assert!(records[..6].iter().all(|r| r.get("options").is_none()));
    let (good, out) = verify(&dir);
    assert!(good && out.contains(" 4 evidence files,"), "{out}");

    let md = ok(&run(args!("-C", &dir, "report", "--format", "md")));
    let row = md
        .lines()
        .find(|l| l.contains("| pcap |"))
        .expect("the capture's evidence row");
    assert!(
        row.ends_with(&format!(
            "| case file {}; --all-apps; --secrets-first; key log {}; 802.11 keys {}; --tunnel-port vxlan=4789,8472 |",
            &case_sha[..16],
            &keylog_sha[..16],
            &keys_sha[..16]
        )),
        "{row}"
    );

    // Another capture with the same case file stores the case file no second time.
    let out = ok(&run(args!(
        "-C",
        &dir,
        "ingest",
        &capture("demo", "demo.har")
    )));
    assert!(!out.contains("case file"), "{out}");
    let records = ingest_records(&dir);
    assert_eq!(records.len(), 10);
    assert_eq!(
        records[9]["options"],
        serde_json::json!({ "case_sha256": case_sha })
    );

    // The stored 802.11 keys are evidence `verify` checks like a capture.
    let copy = std::fs::read_dir(dir.join("evidence"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("-80211_keys"))
        .unwrap();
    let mut bytes = std::fs::read(&copy).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&copy, bytes).unwrap();
    let (good, out) = verify(&dir);
    assert!(!good && out.contains("80211_keys"), "{out}");
}

/// A capture is analysed once per case: ingesting it again with a key log it did not
/// have says so, stores nothing and leaves its findings as they were.
#[test]
fn a_key_log_given_after_the_capture_was_ingested_is_not_taken_silently() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = case_with(
        tmp.path(),
        &capture("tls", "consentry.toml"),
        &capture("tls", "tls.pcap"),
    );
    let findings = ok(&run(args!("-C", &dir, "findings", "--format", "jsonl")));
    let records = ingest_records(&dir).len();
    let keylog = capture("tls", "tls.keylog");
    let o = run(args!(
        "-C",
        &dir,
        "ingest",
        &capture("tls", "tls.pcap"),
        "--keylog",
        &keylog
    ));
    let out = ok(&o);
    assert!(
        out.contains("tls.pcap: already ingested (SHA-256 ")
            && out.contains(") with other options; NOT analysed again"),
        "{out}"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("consentry: warning: ")
            && err.contains("ingest it into a new case directory")
            && err.contains(&format!(
                "\n  --keylog: none then, {} now\n",
                &sha256_hex(&keylog)[..16]
            )),
        "{err}"
    );
    // Nothing stored: not the key log either, since nothing was analysed with it.
    assert_eq!(ingest_records(&dir).len(), records);
    assert_eq!(
        ok(&run(args!("-C", &dir, "findings", "--format", "jsonl"))),
        findings
    );
    // Without the key log, as it ran: nothing to do, no warning.
    let o = run(args!("-C", &dir, "ingest", &capture("tls", "tls.pcap")));
    assert!(ok(&o).contains("; nothing to do"));
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// An ingest interrupted after it stored records resumes only as it ran: with other
/// options (or another case file) it would store a mix of two analyses.
#[test]
fn an_interrupted_ingest_resumes_only_with_the_options_it_ran_with() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = two_device_case(tmp.path());
    // A HAR cut inside its entries: what comes before the cut is stored, the ingest
    // stays incomplete, as an interrupted one does.
    let har = tmp.path().join("cut.har");
    let text = std::fs::read(capture("demo", "demo.har")).unwrap();
    std::fs::write(&har, &text[..text.len() * 2 / 3]).unwrap();
    let o = run(args!("-C", &dir, "ingest", &har, "--device", "pixel7"));
    assert_eq!(o.status.code(), Some(2));
    let first = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(first.contains("NOT complete"), "{first}");
    let (good, head) = verify(&dir);
    assert!(good, "{head}");

    let refused = |extra: &[&str], want: &[&str]| {
        let mut cmd = bin();
        cmd.args([
            std::ffi::OsStr::new("-C"),
            dir.as_os_str(),
            "ingest".as_ref(),
            har.as_os_str(),
        ]);
        let o = cmd.args(extra).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{extra:?}");
        let stdout = String::from_utf8_lossy(&o.stdout);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(
            stdout.contains("cut.har: NOT ingested"),
            "{extra:?}: {stdout}"
        );
        assert!(
            stderr.contains("an interrupted ingest of this file stored ")
                && stderr.contains(" made with other options"),
            "{extra:?}: {stderr}"
        );
        for w in want {
            assert!(stderr.contains(w), "{extra:?}: want {w:?} in {stderr}");
        }
        // Nothing was written.
        assert_eq!(verify(&dir), (true, head.clone()), "{extra:?}");
    };
    refused(
        &["--device", "redmi"],
        &["  --device: pixel7 then, redmi now"],
    );
    refused(
        &["--device", "pixel7", "--all-apps"],
        &["  --all-apps: not given then, given now"],
    );
    refused(
        &["--device", "pixel7", "--secrets-first"],
        &["  --secrets-first: not given then, given now"],
    );
    // The case file edited since: the message says where the one it ran with is.
    let case_file = dir.join("consentry.toml");
    let case_text = std::fs::read_to_string(&case_file).unwrap();
    let old_sha = sha256_hex(&case_file);
    std::fs::write(
        &case_file,
        format!(
            "{case_text}# edited
"
        ),
    )
    .unwrap();
    let copy = format!("evidence/{}-consentry.toml", &old_sha[..16]);
    refused(
        &["--device", "pixel7"],
        &[
            &format!("  the case file: SHA-256 {} then, ", &old_sha[..16]),
            &format!(" now (the one it ran with is {copy})\n"),
        ],
    );
    assert_eq!(
        std::fs::read_to_string(dir.join(&copy)).unwrap(),
        case_text,
        "the evidence copy restores the case file"
    );
    std::fs::write(&case_file, &case_text).unwrap();
    // As it ran: resumed (the cut file still stops it, and nothing new is stored).
    let o = run(args!("-C", &dir, "ingest", &har, "--device", "pixel7"));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("NOT complete") && stdout.contains(", 0 new records"),
        "{stdout}"
    );
}

/// The JSON case report of a case directory holding `file`, and the one-shot
/// `analyze --report` of the same file, with the case directory.
fn stored_and_one_shot_reports(
    tmp: &Path,
    dir_name: &str,
    file: &str,
) -> (serde_json::Value, serde_json::Value, PathBuf) {
    let case_file = capture(dir_name, "consentry.toml");
    let input = capture(dir_name, file);
    let dir = case_with(tmp, &case_file, &input);
    let stored: serde_json::Value =
        serde_json::from_str(&ok(&run(args!("-C", &dir, "report", "--format", "json")))).unwrap();
    let one_shot_path = tmp.join("one-shot.json");
    ok(&run(args!(
        "analyze",
        &input,
        "--case",
        &case_file,
        "--report",
        &one_shot_path,
        "--report-format",
        "json"
    )));
    let one_shot: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&one_shot_path).unwrap()).unwrap();
    (stored, one_shot, dir)
}

/// A stored capture keeps what it held (packets, TLS connections decrypted or not):
/// the case report states what the captures could show, as the one-shot report does.
#[test]
fn the_case_report_says_what_the_stored_captures_could_show() {
    let tmp = tempfile::tempdir().unwrap();
    let (stored, one_shot, dir) =
        stored_and_one_shot_reports(tmp.path(), "gateway", "gateway.pcapng");
    assert!(one_shot["traffic"]["packets"].as_u64().unwrap() > 0);
    assert_eq!(stored["traffic"], one_shot["traffic"]);
    let md = ok(&run(args!("-C", &dir, "report", "--format", "md")));
    assert!(md.contains("What the captures could show:"), "{md}");
    assert!(md.contains(" TLS connections"), "{md}");
}

/// `consentry report` renders what the store holds: the same findings, consent
/// timeline, groups and citations as the one-shot `analyze --report` of the same
/// capture, plus the evidence copy and the chain head that `verify` prints.
#[test]
fn the_case_report_shows_the_stored_findings_and_the_chain_head() {
    let tmp = tempfile::tempdir().unwrap();
    let (stored, one_shot, dir) = stored_and_one_shot_reports(tmp.path(), "demo", "demo.har");
    let keys: Vec<&String> = one_shot.as_object().unwrap().keys().collect();
    for key in keys {
        // The evidence (the copy in the case) and its chain head differ by design;
        // the case block is the store's copy of the same case file.
        if matches!(key.as_str(), "evidence" | "chain_head") {
            continue;
        }
        if key == "case" {
            // The same case file, read from the case directory rather than as given.
            let (mut stored_case, mut one_shot_case) = (stored[key].clone(), one_shot[key].clone());
            let stored_file = stored_case["file"].take();
            let one_shot_file = one_shot_case["file"].take();
            assert_eq!(stored_case, one_shot_case, "report field case");
            assert_eq!(stored_file["sha256"], one_shot_file["sha256"]);
            assert_eq!(stored_file["path"], "consentry.toml");
            assert!(one_shot_file["path"]
                .as_str()
                .unwrap()
                .ends_with("consentry.toml"));
            assert_eq!(stored_file.get("note"), None, "{stored_file}");
            continue;
        }
        assert_eq!(stored[key], one_shot[key], "report field {key}");
    }
    assert!(!stored["findings"].as_array().unwrap().is_empty());
    let (verified, out) = verify(&dir);
    assert!(verified, "{out}");
    let head = stored["evidence"]["chain_head"]
        .as_str()
        .or_else(|| stored["chain_head"].as_str())
        .expect("a chain head in the stored report");
    assert!(out.contains(head), "verify prints {out}, report has {head}");
    // The HTML form as a browser gets it.
    let html = ok(&run(args!("-C", &dir, "report")));
    assert!(
        html.starts_with("<!DOCTYPE html>"),
        "{}",
        &html[..40.min(html.len())]
    );
    assert!(html.contains(head));
}

/// The case report is framed (title, app, devices) by a case file the runs read:
/// edited or broken after them, the case directory's own gives way to the evidence
/// copy of the one they read, saying so; once a run reads the edited one, it frames
/// the report, which says the runs read two versions.
#[test]
fn the_case_report_is_framed_by_a_case_file_the_runs_read() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = case_with(
        tmp.path(),
        &capture("demo", "consentry.toml"),
        &capture("demo", "demo.har"),
    );
    let report = |format: &str| ok(&run(args!("-C", &dir, "report", "--format", format)));
    let json_report = || -> serde_json::Value { serde_json::from_str(&report("json")).unwrap() };
    let case_file = dir.join("consentry.toml");
    let text = std::fs::read_to_string(&case_file).unwrap();
    let read_sha = sha256_hex(&case_file);
    let title = "Example Shop 4.2 on Android 14, first launch";

    let r = json_report();
    assert_eq!(r["case"]["title"], title);
    assert_eq!(
        r["case"]["file"],
        serde_json::json!({"sha256": read_sha, "path": "consentry.toml"})
    );

    // Edited after the run: the copy the run read frames the report.
    let edited = text.replace(title, "Edited afterwards");
    assert_ne!(edited, text);
    std::fs::write(&case_file, &edited).unwrap();
    let copy = format!("evidence/{}-consentry.toml", &read_sha[..16]);
    let r = json_report();
    assert_eq!(r["case"]["title"], title);
    assert_eq!(r["case"]["file"]["path"], copy.as_str());
    assert_eq!(r["case"]["file"]["sha256"], read_sha.as_str());
    let note = r["case"]["file"]["note"].as_str().unwrap();
    assert!(
        note.contains("consentry.toml (SHA-256 ")
            && note.contains("was edited after the runs and none of them read it")
            && note.ends_with(&format!("the case file the runs stored last, {copy}")),
        "{note}"
    );
    // Broken: the same, saying why.
    std::fs::write(&case_file, "[case\n").unwrap();
    let r = json_report();
    assert_eq!(r["case"]["title"], title);
    let note = r["case"]["file"]["note"].as_str().unwrap();
    assert!(
        note.starts_with("the case directory's consentry.toml does not read: "),
        "{note}"
    );

    // Edited, and the copy gone (`verify` fails): the case directory's own, saying so.
    std::fs::write(&case_file, &edited).unwrap();
    std::fs::remove_file(dir.join(&copy)).unwrap();
    let r = json_report();
    assert_eq!(r["case"]["title"], "Edited afterwards");
    assert_eq!(r["case"]["file"]["path"], "consentry.toml");
    let note = r["case"]["file"]["note"].as_str().unwrap();
    assert!(
        note.starts_with("none of the case files the runs read reads back (")
            && note.ends_with(
                "this report is framed by the case directory's consentry.toml, which no run read"
            ),
        "{note}"
    );
    std::fs::write(dir.join(&copy), &text).unwrap();

    // A run reads the edited one: now it frames the report.
    let edited_sha = sha256_hex(&case_file);
    let second = tmp.path().join("second.har");
    let har = std::fs::read_to_string(capture("demo", "demo.har")).unwrap();
    std::fs::write(&second, format!("{har}\n ")).unwrap();
    ok(&run(args!("-C", &dir, "ingest", &second)));
    let r = json_report();
    assert_eq!(r["case"]["title"], "Edited afterwards");
    assert_eq!(r["case"]["file"]["path"], "consentry.toml");
    assert_eq!(r["case"]["file"]["sha256"], edited_sha.as_str());
    let md = report("md");
    assert!(
        md.contains(&format!(
            "- Case file: consentry.toml (SHA-256 {edited_sha}): the runs read 2 versions of \
             the case file, each input's row naming the one it was read with; this report \
             is framed by the case directory's\n"
        )),
        "{md}"
    );
    let html = report("html");
    assert!(
        html.contains(&format!(
            "<dt>Case file</dt><dd><code>consentry.toml</code> <span class=\"muted mono\">\
             SHA-256 {edited_sha}</span><br><span class=\"small\">the runs read 2 versions"
        )),
        "{html}"
    );
    let (verified, out) = verify(&dir);
    assert!(verified, "{out}");
}

/// `findings`' table names a receiver whose name carries the data (a DNS query for
/// `<MD5 of the IMEI>.b.metrics-sdk.example`) without the labels that carry it, in
/// its host column and its summary, as `analyze`'s table does; JSON lines give the
/// findings as stored.
#[test]
fn the_findings_table_masks_the_labels_of_a_name_that_carry_data() {
    let tmp = tempfile::tempdir().unwrap();
    let case_file = capture("rawtcp", "consentry.toml");
    let dir = case_with(tmp.path(), &case_file, &capture("rawtcp", "rawtcp.pcap"));
    let md5 = "0eaed834a1e6f4b2bf0c024e0013dea1";
    let table = ok(&run(args!("-C", &dir, "findings")));
    let line = table
        .lines()
        .find(|l| l.contains("b.metrics-sdk.example"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        line.contains(" •••.b.metrics-sdk.example ")
            && line.ends_with(
                "imei (md5) sent to •••.b.metrics-sdk.example before any consent decision"
            ),
        "{line}"
    );
    assert!(!table.contains(md5), "{table}");
    let jsonl = ok(&run(args!("-C", &dir, "findings", "--format", "jsonl")));
    assert!(jsonl.contains(&format!("\"host\":\"{md5}.b.metrics-sdk.example\"")));
}
