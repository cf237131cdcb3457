//! TLS in captures (issue 7): the corpus in `captures/tls/` (real rustls connections in
//! every suite and version, written by `examples/gen_tls_capture.rs` from
//! `tests/tls_corpus`) must give, decrypted with its key log (a file, or the
//! Decryption Secrets Block inside the pcapng), the same findings as its plaintext
//! twin; without keys, metadata-only exchanges named by their SNI and marked "no key";
//! with wrong keys, anomalies and no crash. `tshark`, when installed, cross-checks the
//! requests. `CONSENTRY_BLESS=1` rewrites the golden findings of the plaintext twin.
//!
//! The OpenSSL half of the corpus (module `openssl` at the end) covers the suites rustls
//! cannot make — TLS 1.2 AES-CBC-SHA/SHA256/SHA384 with and without encrypt-then-MAC,
//! RSA key exchange, DHE, extended master secret off, resumption by session id, TLS 1.1
//! and 1.0 CBC — written by `captures/tls/make_openssl_tls.py` (OpenSSL through
//! Python's `ssl`, in memory), checked the same way against its own plaintext twin.

mod tls_corpus;

#[path = "common/late_secrets.rs"]
mod late_secrets;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use consentry::case::DeviceResolver;
use consentry::cli::analyze::{
    analyze_files_with, analyze_files_with_keylogs, AnalysisRun, CaptureReading,
};
use consentry::exchange::Exchange;
use consentry::report::write_jsonl;
use consentry::rules::Options;
use consentry::source::pcap::{read_capture, CaptureOptions, CaptureSummary};
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/tls")
}

/// A key log of the corpus, by file name.
fn keylog_named(name: &str) -> Arc<[u8]> {
    let path = dir().join(name);
    Arc::from(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// The key log of the rustls corpus.
fn keylog() -> Arc<[u8]> {
    keylog_named("tls.keylog")
}

/// TLS connections of the corpus (one per `tls_corpus::specs` entry).
fn tls_connections() -> u64 {
    tls_corpus::specs().len() as u64
}

/// `analyze` of a corpus capture with the corpus's case and `keylogs`, through the
/// library's key-log entry point.
fn analyse(file: &str, keylogs: &[Arc<[u8]>]) -> AnalysisRun {
    let run = analyze_files_with_keylogs(
        corpus_case(),
        &[dir().join(file)],
        None,
        keylogs,
        Options::default(),
        0,
    )
    .unwrap();
    without_input_errors(run)
}

/// `analyze` of the capture at `path` with the corpus's case, read as `reading` says.
fn analyse_path(path: &Path, reading: &CaptureReading) -> AnalysisRun {
    let run = analyze_files_with(
        corpus_case(),
        &[path.to_path_buf()],
        None,
        reading,
        Options::default(),
        0,
    )
    .unwrap();
    without_input_errors(run)
}

fn corpus_case() -> Arc<consentry::case::Case> {
    Arc::new(consentry::case::load(&dir().join("consentry.toml")).unwrap())
}

/// `run`, once it is known to have read every input without an error.
fn without_input_errors(run: AnalysisRun) -> AnalysisRun {
    assert!(
        run.summary.input_errors.is_empty(),
        "{:?}",
        run.summary.input_errors
    );
    run
}

/// The findings as JSON values without what names the connection or the file (the
/// finding and exchange ids are derived from the capture's hash and frames).
fn projected(run: &AnalysisRun) -> Vec<Value> {
    let mut out = Vec::new();
    write_jsonl(&run.findings, &mut out).unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            if let Some(o) = v.as_object_mut() {
                o.remove("id");
                o.remove("exchange");
            }
            v
        })
        .collect()
}

/// `got` equals `want`, reported finding by finding.
fn assert_same_findings(got: &[Value], want: &[Value], what: &str) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g, w, "{what}: finding {i} differs");
    }
    assert_eq!(got.len(), want.len(), "{what}: number of findings");
}

/// Every exchange of a capture, read with `keylogs`, and the reader's summary.
fn exchanges(file: &str, keylogs: Vec<Arc<[u8]>>) -> (Vec<Exchange>, CaptureSummary) {
    exchanges_at(&dir().join(file), keylogs)
}

/// [`exchanges`] of the capture at `path`.
fn exchanges_at(path: &Path, keylogs: Vec<Arc<[u8]>>) -> (Vec<Exchange>, CaptureSummary) {
    let case = consentry::case::load(&dir().join("consentry.toml")).unwrap();
    let opts = CaptureOptions {
        keylogs,
        ..CaptureOptions::new(path.display().to_string(), DeviceResolver::new(&case))
    };
    let bytes = std::fs::read(path).unwrap();
    let mut list = Vec::new();
    let (summary, error) =
        read_capture(&bytes[..], &opts, &mut |_| {}, &mut |x| list.push(x)).unwrap();
    assert!(error.is_none(), "{error:?}");
    (list, summary)
}

/// `METHOD host path` of every request exchange, sorted.
fn request_lines(list: &[Exchange]) -> Vec<String> {
    let mut lines: Vec<String> = list
        .iter()
        .filter(|x| !x.metadata_only)
        .map(|x| format!("{} {} {}", x.method, x.host, x.path))
        .collect();
    lines.sort();
    lines
}

#[test]
fn plaintext_twin_gives_the_golden_findings() {
    let run = analyse("plain.pcap", &[]);
    let mut got = Vec::new();
    write_jsonl(&run.findings, &mut got).unwrap();
    let golden = dir().join("plain.findings.jsonl");
    if std::env::var_os("CONSENTRY_BLESS").is_some() {
        std::fs::write(&golden, &got).unwrap();
        return;
    }
    let want = std::fs::read(&golden)
        .unwrap_or_else(|e| panic!("{}: {e} (run with CONSENTRY_BLESS=1)", golden.display()));
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want)
    );
    // The twin carries every request of the corpus, HTTP/1 and HTTP/2 alike.
    assert!(run.findings.len() >= 11, "{} findings", run.findings.len());
}

#[test]
fn with_the_key_log_the_findings_are_the_plaintext_ones() {
    let want = projected(&analyse("plain.pcap", &[]));
    for file in ["tls.pcap", "tls.pcapng"] {
        let run = analyse(file, &[keylog()]);
        assert_same_findings(&projected(&run), &want, file);
        let traffic = run.summary.traffic.as_ref().unwrap();
        assert_eq!(traffic.tls_decrypted, tls_connections(), "{file}");
        assert!(traffic.tls_not_decrypted.is_empty(), "{file}: {traffic:?}");
    }
}

#[test]
fn the_secrets_block_alone_decrypts() {
    let want = projected(&analyse("plain.pcap", &[]));
    let run = analyse("tls-dsb.pcapng", &[]);
    assert_same_findings(&projected(&run), &want, "tls-dsb.pcapng");
    let (list, summary) = exchanges("tls-dsb.pcapng", Vec::new());
    assert_eq!(summary.secrets_blocks, 1);
    let lines = keylog()
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .count() as u64;
    assert_eq!(summary.secrets_keylog.lines, lines);
    assert_eq!(summary.secrets_keylog.used, lines);
    assert!(list
        .iter()
        .all(|x| x.tls.as_ref().is_some_and(|t| t.decrypted)));
}

#[test]
fn without_keys_each_connection_is_metadata_named_by_its_sni() {
    for file in ["tls.pcap", "tls.pcapng"] {
        let (list, summary) = exchanges(file, Vec::new());
        let tls: Vec<&Exchange> = list.iter().filter(|x| x.tls.is_some()).collect();
        assert_eq!(tls.len() as u64, tls_connections(), "{file}");
        let mut hosts: Vec<&str> = tls.iter().map(|x| x.host.as_str()).collect();
        hosts.sort();
        let mut want: Vec<&str> = tls_corpus::specs().iter().map(|s| s.host).collect();
        want.sort();
        assert_eq!(hosts, want, "{file}");
        for x in &tls {
            let t = x.tls.as_ref().unwrap();
            assert!(x.metadata_only, "{file}: {}", x.host);
            assert_eq!(x.scheme, "tls");
            assert_eq!(t.sni.as_deref(), Some(x.host.as_str()));
            assert!(!t.decrypted);
            assert!(
                t.decrypt_error
                    .as_deref()
                    .is_some_and(|e| e.starts_with("no key")),
                "{file}: {:?}",
                t.decrypt_error
            );
            assert!(matches!(t.version.as_deref(), Some("TLS 1.2" | "TLS 1.3")));
        }
        assert_eq!(summary.flows.tls_decrypted, 0);
        assert_eq!(
            summary.flows.tls_not_decrypted,
            BTreeMap::from([("no-key".to_string(), tls_connections())]),
            "{file}"
        );
    }
}

#[test]
fn a_key_log_for_other_connections_leaves_them_unread_with_no_key() {
    // Lines of the right shape for other client randoms: keys present, none fits.
    let other = format!(
        "CLIENT_RANDOM {} {}\nCLIENT_TRAFFIC_SECRET_0 {} {}\n",
        "ab".repeat(32),
        "cd".repeat(48),
        "ef".repeat(32),
        "01".repeat(32)
    );
    let (list, summary) = exchanges("tls.pcap", vec![Arc::from(other.into_bytes())]);
    for x in list.iter().filter(|x| x.tls.is_some()) {
        let t = x.tls.as_ref().unwrap();
        assert!(x.metadata_only && !t.decrypted, "{}", x.host);
        assert_eq!(t.sni.as_deref(), Some(x.host.as_str()));
    }
    assert_eq!(
        summary.flows.tls_not_decrypted.get("no-key"),
        Some(&tls_connections()),
        "{:?}",
        summary.flows.tls_not_decrypted
    );
}

#[test]
fn wrong_keys_are_anomalies_not_a_crash() {
    // Every secret of the real key log with its bits flipped: the client randoms
    // match, the records do not authenticate.
    let text = String::from_utf8(keylog().to_vec()).unwrap();
    let wrong: String = text
        .lines()
        .map(|l| {
            let mut f: Vec<String> = l.split(' ').map(str::to_string).collect();
            if let Some(secret) = f.get_mut(2) {
                *secret = secret
                    .chars()
                    .map(|c| match c {
                        '0' => 'f',
                        'f' => '0',
                        c if c.is_ascii_digit() => 'a',
                        _ => '1',
                    })
                    .collect();
            }
            f.join(" ") + "\n"
        })
        .collect();
    let (list, summary) = exchanges("tls.pcap", vec![Arc::from(wrong.into_bytes())]);
    let tls: Vec<&Exchange> = list.iter().filter(|x| x.tls.is_some()).collect();
    assert_eq!(tls.len() as u64, tls_connections());
    for x in &tls {
        let t = x.tls.as_ref().unwrap();
        assert!(x.metadata_only && !t.decrypted, "{}", x.host);
        assert_eq!(t.sni.as_deref(), Some(x.host.as_str()));
        assert!(t.decrypt_error.is_some(), "{}", x.host);
    }
    assert_eq!(summary.flows.tls_decrypted, 0);
    assert!(
        summary.flows.anomalies > 0 || tls.iter().any(|x| !x.anomalies.is_empty()),
        "authentication failures are recorded"
    );
    assert!(
        summary
            .flows
            .tls_not_decrypted
            .contains_key("authentication-failed"),
        "{:?}",
        summary.flows.tls_not_decrypted
    );
}

#[test]
fn decrypted_requests_are_the_plaintext_requests() {
    let (plain, _) = exchanges("plain.pcap", Vec::new());
    let (tls, summary) = exchanges("tls.pcap", vec![keylog()]);
    assert_eq!(request_lines(&tls), request_lines(&plain));
    assert_eq!(summary.flows.tls_decrypted, tls_connections());
    for x in tls.iter().filter(|x| !x.metadata_only) {
        assert_eq!(x.scheme, "https");
        let t = x.tls.as_ref().expect("TLS facts on a decrypted exchange");
        assert!(t.decrypted && t.decrypt_error.is_none());
        assert_eq!(t.sni.as_deref(), Some(x.host.as_str()));
    }
}

#[test]
fn the_generator_runs_every_suite_resumption_and_key_update() {
    let corpus = tls_corpus::generate();
    let n = |needle: &str| {
        corpus
            .negotiated
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    };
    for suite in [
        "TLS13_AES_128_GCM_SHA256",
        "TLS13_AES_256_GCM_SHA384",
        "TLS13_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    ] {
        assert!(n(suite) >= 1, "{suite}: {:#?}", corpus.negotiated);
    }
    assert_eq!(n("Resumed"), 2, "{:#?}", corpus.negotiated);
    assert_eq!(n("alpn=h2"), 2, "{:#?}", corpus.negotiated);
    for label in [
        "CLIENT_RANDOM",
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
    ] {
        assert!(corpus.keylog.contains(label), "{label}");
    }
    // The same packets in the three container forms consentry reads alike.
    let pcap = tls_corpus::write_pcap(&corpus.tls);
    let ng = tls_corpus::write_pcapng(&corpus.tls, Some(corpus.keylog.as_bytes()));
    assert!(pcap.starts_with(&[0xd4, 0xc3, 0xb2, 0xa1]));
    assert!(ng.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]));
}

// --- secrets written after the handshakes ---------------------------------------

/// How the captures with late secrets are read: with `--secrets-first` or without.
fn secrets_first(on: bool) -> CaptureReading {
    CaptureReading {
        secrets_first: on,
        ..CaptureReading::default()
    }
}

#[test]
fn secrets_after_every_handshake_are_late_and_read_first_decrypt_all() {
    let want = projected(&analyse("plain.pcap", &[]));
    let (_tmp, late) = late_secrets::with_late_secrets(|packets| packets);
    let run = analyse_path(&late, &secrets_first(false));
    let traffic = run.summary.traffic.as_ref().unwrap();
    assert_eq!(traffic.tls_decrypted, 0);
    assert_eq!(traffic.tls_keys_late, tls_connections(), "{traffic:?}");
    assert!(run.findings.len() < want.len());

    let run = analyse_path(&late, &secrets_first(true));
    assert_same_findings(&projected(&run), &want, "late.pcapng, secrets first");
    let traffic = run.summary.traffic.as_ref().unwrap();
    assert_eq!(traffic.tls_decrypted, tls_connections());
    assert_eq!(traffic.tls_keys_late, 0);
    // The block still counts once, where it stands.
    assert_eq!(traffic.secrets_blocks, 1);
}

#[test]
fn secrets_amid_the_packets_decrypt_what_follows_and_name_what_came_before() {
    let want = projected(&analyse("plain.pcap", &[]));
    let (_tmp, late) = late_secrets::with_late_secrets(|packets| packets / 2);
    let run = analyse_path(&late, &secrets_first(false));
    let traffic = run.summary.traffic.as_ref().unwrap();
    // Every connection is either decrypted (its handshake after the block) or late:
    // connections closed before it, and those it came in the middle of.
    assert!(
        traffic.tls_decrypted > 0 && traffic.tls_keys_late > 0,
        "{traffic:?}"
    );
    assert_eq!(
        traffic.tls_decrypted + traffic.tls_keys_late,
        tls_connections(),
        "{traffic:?}"
    );
    let run = analyse_path(&late, &secrets_first(true));
    assert_same_findings(&projected(&run), &want, "secrets amid, read first");

    // Five packets before the end: inside the last connection, past its handshake
    // (its last ten packets follow the ServerHello) and before its close. It has its
    // key when it closes, and is as late as those closed before the block.
    let (_tmp, late) = late_secrets::with_late_secrets(|packets| packets - 5);
    let traffic = analyse_path(&late, &secrets_first(false))
        .summary
        .traffic
        .unwrap();
    assert_eq!(traffic.tls_decrypted, 0, "{traffic:?}");
    assert_eq!(traffic.tls_keys_late, tls_connections(), "{traffic:?}");
}

#[test]
fn secrets_first_reads_a_stream_twice_and_the_warning_names_it() {
    let (_tmp, late) = late_secrets::with_late_secrets(|packets| packets);
    let case = dir().join("consentry.toml");
    let run = |extra: &[&str]| {
        let o = bin()
            .args(["analyze", "-", "--format", "jsonl", "--case"])
            .arg(&case)
            .args(extra)
            .stdin(std::fs::File::open(&late).unwrap())
            .output()
            .unwrap();
        let findings = String::from_utf8_lossy(&o.stdout).lines().count();
        (
            o.status.code(),
            findings,
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let want = analyse("plain.pcap", &[]).findings.len();
    let (code, first, err) = run(&["--secrets-first"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(first, want, "{err}");
    assert!(!err.contains("were not decrypted"), "{err}");
    let (code, found, err) = run(&[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(found < want, "{err}");
    assert!(
        err.contains(&format!(
            "/dev/stdin: {} TLS connections were not decrypted: their keys are in a secrets block after their handshakes; --secrets-first",
            tls_connections()
        )),
        "{err}"
    );
    // The summary table says it too.
    let o = bin()
        .arg("analyze")
        .arg(&late)
        .arg("--case")
        .arg(&case)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains(&format!(
            "\n{} TLS connections have their keys later in the capture: --secrets-first\n",
            tls_connections()
        )),
        "{table}"
    );
    // On a case store's exchanges, there is nothing to read first.
    let o = bin()
        .args(["exchanges", "--secrets-first", "-C"])
        .arg(dir())
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("give the files"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

// --- tshark cross-check ---------------------------------------------------------

fn tshark() -> Option<PathBuf> {
    let found = Command::new("tshark").arg("--version").output().ok()?;
    found.status.success().then(|| PathBuf::from("tshark"))
}

/// `METHOD host path` of every HTTP/1 and HTTP/2 request tshark finds in `file`
/// (decrypting with `keylog` when given).
fn tshark_requests(tshark: &Path, file: &str, keylog: Option<&Path>) -> Vec<String> {
    let mut cmd = Command::new(tshark);
    cmd.arg("-n").arg("-r").arg(dir().join(file));
    if let Some(k) = keylog {
        cmd.arg("-o")
            .arg(format!("tls.keylog_file:{}", k.display()));
    }
    // The plaintext twin's HTTP/2 runs with prior knowledge, found by its preface.
    cmd.args(["--enable-heuristic", "http2_tcp"]);
    cmd.args([
        "-Y",
        "http.request or http2.headers.method",
        "-T",
        "fields",
        "-E",
        "separator=\t",
        "-e",
        "http.request.method",
        "-e",
        "http.host",
        "-e",
        "http.request.uri",
        "-e",
        "http2.headers.method",
        "-e",
        "http2.headers.authority",
        "-e",
        "http2.headers.path",
    ]);
    let out = cmd.output().expect("running tshark");
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let get = |i: usize| f.get(i).copied().unwrap_or("");
            if !get(0).is_empty() {
                Some(format!("{} {} {}", get(0), get(1), get(2)))
            } else if !get(3).is_empty() {
                Some(format!("{} {} {}", get(3), get(4), get(5)))
            } else {
                None
            }
        })
        .collect();
    lines.sort();
    lines
}

#[test]
fn tshark_reads_the_corpus_as_its_plaintext_twin() {
    let Some(tshark) = tshark() else {
        eprintln!("note: tshark not on PATH; the tshark cross-check is skipped");
        return;
    };
    let keylog = dir().join("tls.keylog");
    let plain = tshark_requests(&tshark, "plain.pcap", None);
    assert_eq!(plain.len(), 12, "{plain:#?}");
    for file in ["tls.pcap", "tls.pcapng"] {
        assert_eq!(
            tshark_requests(&tshark, file, Some(&keylog)),
            plain,
            "tshark on {file}"
        );
    }
    assert_eq!(tshark_requests(&tshark, "tls-dsb.pcapng", None), plain);
}

#[test]
fn tshark_and_consentry_decrypt_the_same_requests() {
    let Some(tshark) = tshark() else {
        eprintln!("note: tshark not on PATH; the tshark cross-check is skipped");
        return;
    };
    let (plain, _) = exchanges("plain.pcap", Vec::new());
    assert_eq!(
        request_lines(&plain),
        tshark_requests(&tshark, "plain.pcap", None),
        "plain.pcap"
    );
    let theirs = tshark_requests(&tshark, "tls.pcap", Some(&dir().join("tls.keylog")));
    let (ours, _) = exchanges("tls.pcap", vec![keylog()]);
    assert_eq!(request_lines(&ours), theirs, "tls.pcap");
}

// --- the command line ---------------------------------------------------------

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_consentry"))
}

#[test]
fn cli_reports_each_key_log_and_names_a_missing_one() {
    let case = dir().join("consentry.toml");
    let o = bin()
        .arg("exchanges")
        .arg(dir().join("tls.pcap"))
        .arg("--case")
        .arg(&case)
        .arg("--keylog")
        .arg(dir().join("tls.keylog"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let lines = keylog()
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    assert!(
        err.contains(&format!(": {lines} lines, {lines} used, 0 skipped")),
        "{err}"
    );

    let o = bin()
        .arg("analyze")
        .arg(dir().join("tls.pcap"))
        .arg("--case")
        .arg(&case)
        .arg("--keylog")
        .arg(dir().join("no-such.keylog"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("no-such.keylog"), "{err}");
}

#[test]
fn cli_summary_counts_tls_connections_by_reason() {
    let o = bin()
        .arg("analyze")
        .arg(dir().join("tls.pcap"))
        .arg("--case")
        .arg(dir().join("consentry.toml"))
        .output()
        .unwrap();
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    let n = tls_connections();
    assert!(
        out.contains(&format!(
            "{n} TLS connections: 0 decrypted, {n} not (no-key {n})"
        )),
        "{out}"
    );
}

#[test]
fn the_secrets_block_is_reported() {
    let o = bin()
        .arg("exchanges")
        .arg(dir().join("tls-dsb.pcapng"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("key log in the secrets blocks of ") && err.contains("tls-dsb.pcapng (1): "),
        "{err}"
    );
}

/// A case directory at `case_dir` for the corpus's case file.
fn init_case(case_dir: &Path) {
    let init = bin()
        .arg("init")
        .arg(case_dir)
        .arg("--from-case")
        .arg(dir().join("consentry.toml"))
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
}

#[test]
fn ingest_keeps_the_key_log_as_hashed_evidence() {
    let tmp = tempfile::tempdir().unwrap();
    let case_dir = tmp.path().join("case");
    init_case(&case_dir);
    let ingest = |file: &str| {
        let o = bin()
            .arg("-C")
            .arg(&case_dir)
            .arg("ingest")
            .arg(dir().join(file))
            .arg("--keylog")
            .arg(dir().join("tls.keylog"))
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "{out}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        out
    };
    let out = ingest("tls.pcap");
    assert!(out.contains("key log stored as evidence/"), "{out}");
    // Nothing analysed, nothing stored: not even the key log is looked at.
    let again = ingest("tls.pcap");
    assert!(
        again.contains("already ingested") && !again.contains("key log"),
        "{again}"
    );
    // Another capture with the same key log: stored once.
    let other = ingest("tls.pcapng");
    assert!(other.contains("key log already stored"), "{other}");
    let evidence: Vec<String> = std::fs::read_dir(case_dir.join("evidence"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    // The two captures, the key log and the case file.
    assert_eq!(evidence.len(), 4, "{evidence:?}");
    assert!(
        evidence.iter().any(|n| n.ends_with("tls.keylog")),
        "{evidence:?}"
    );
    let verify = bin().arg("verify").arg(&case_dir).output().unwrap();
    let out = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{out}");
    assert!(out.contains(" 4 evidence files"), "{out}");
}

#[test]
fn the_store_keeps_each_exchanges_connection_as_the_capture_gives_it() {
    let tmp = tempfile::tempdir().unwrap();
    let case_dir = tmp.path().join("case");
    let run = |args: &[&std::ffi::OsStr]| {
        let o = bin().arg("-C").arg(&case_dir).args(args).output().unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    init_case(&case_dir);
    let capture = dir().join("tls.pcap");
    let keylog = dir().join("tls.keylog");
    run(&[
        "ingest".as_ref(),
        capture.as_os_str(),
        "--keylog".as_ref(),
        keylog.as_os_str(),
    ]);
    let jsonl = |text: &str| -> Vec<Value> {
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let stored = jsonl(&run(&[
        "exchanges".as_ref(),
        "--format".as_ref(),
        "jsonl".as_ref(),
    ]));
    // What `exchanges FILE` says of the same capture, by exchange id.
    let listed = jsonl(&run(&[
        "exchanges".as_ref(),
        capture.as_os_str(),
        "--keylog".as_ref(),
        keylog.as_os_str(),
        "--format".as_ref(),
        "jsonl".as_ref(),
    ]));
    assert_eq!(stored.len(), listed.len());
    let mut with_certificate = 0;
    for x in &listed {
        let row = stored.iter().find(|r| r["id"] == x["id"]).unwrap();
        for (field, want) in [
            ("client", &x["client"]),
            ("server", &x["server"]),
            ("sni", &x["tls"]["sni"]),
            ("ja3", &x["tls"]["ja3"]),
            ("ja4", &x["tls"]["ja4"]),
            ("decrypt_error", &x["tls"]["decrypt_error"]),
            ("server_certificate", &x["tls"]["server_certificate"]),
        ] {
            assert_eq!(&row[field], want, "{field} of {row:#}");
        }
        assert!(
            row["server"].is_string() && row["ja4"].is_string(),
            "{row:#}"
        );
        if row["server_certificate"].is_object() {
            with_certificate += 1;
        }
    }
    // Every connection of the corpus showed its certificate (in clear up to TLS 1.2,
    // through the key log over 1.3) but the resumed ones.
    assert!(
        with_certificate * 2 > listed.len(),
        "{with_certificate} of {}",
        listed.len()
    );
    // The case report names the servers of the hosts findings name, with them.
    let report: Value = serde_json::from_str(&run(&[
        "report".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
    ]))
    .unwrap();
    let servers = report["servers"].as_array().unwrap();
    assert!(!servers.is_empty(), "{report:#}");
    for s in servers {
        let host = s["host"].as_str().unwrap();
        let certs = s["certificates"].as_array().unwrap();
        assert!(!s["addresses"].as_array().unwrap().is_empty(), "{s:#}");
        assert!(
            certs.iter().all(|c| stored
                .iter()
                .any(|r| r["host"] == host && r["server_certificate"]["sha256"] == c["sha256"])),
            "{s:#}"
        );
    }
    assert!(run(&["verify".as_ref()]).starts_with("OK"));
}

// --- the OpenSSL half of the corpus ----------------------------------------------

mod openssl {
    use super::*;

    /// Connections in the capture (`CONNS` of the script).
    const CONNECTIONS: u64 = 18;
    /// Two HTTP/1.1 requests per connection.
    const REQUESTS: usize = 36;

    fn keylog() -> Arc<[u8]> {
        keylog_named("openssl.keylog")
    }

    #[test]
    fn with_the_key_log_the_findings_are_the_plaintext_twins() {
        let want = projected(&analyse("openssl-plain.pcap", &[]));
        // Each connection's two requests carry identifiers after the refusal.
        assert!(want.len() >= REQUESTS, "{} findings", want.len());
        let run = analyse("openssl.pcap", &[keylog()]);
        assert_same_findings(&projected(&run), &want, "openssl.pcap");
        let traffic = run.summary.traffic.as_ref().unwrap();
        assert_eq!(traffic.tls_decrypted, CONNECTIONS);
        assert!(traffic.tls_not_decrypted.is_empty(), "{traffic:?}");
    }

    #[test]
    fn every_connection_is_decrypted_in_every_version() {
        let (list, summary) = exchanges("openssl.pcap", vec![keylog()]);
        assert_eq!(list.len(), REQUESTS);
        let mut versions: Vec<&str> = Vec::new();
        for x in &list {
            let t = x.tls.as_ref().expect("a TLS exchange");
            assert!(t.decrypted, "{} {:?}", x.host, t.decrypt_error);
            assert!(!x.metadata_only, "{}", x.host);
            assert!(x.anomalies.is_empty(), "{}: {:?}", x.host, x.anomalies);
            versions.push(t.version.as_deref().unwrap_or("?"));
        }
        versions.sort();
        versions.dedup();
        assert_eq!(versions, ["TLS 1.0", "TLS 1.1", "TLS 1.2"]);
        assert_eq!(summary.flows.tls_decrypted, CONNECTIONS);
    }

    #[test]
    fn without_the_key_log_nothing_is_read() {
        let (list, summary) = exchanges("openssl.pcap", Vec::new());
        assert_eq!(list.len() as u64, CONNECTIONS);
        assert!(list.iter().all(|x| x.metadata_only));
        assert_eq!(summary.flows.tls_decrypted, 0);
        assert!(analyse("openssl.pcap", &[]).findings.len() < REQUESTS);
    }

    #[test]
    fn tshark_reads_the_same_requests() {
        let Some(tshark) = tshark() else {
            eprintln!("note: tshark not on PATH; the tshark cross-check is skipped");
            return;
        };
        let plain = tshark_requests(&tshark, "openssl-plain.pcap", None);
        assert_eq!(plain.len(), REQUESTS, "{plain:#?}");
        let keylog_path = dir().join("openssl.keylog");
        assert_eq!(
            tshark_requests(&tshark, "openssl.pcap", Some(&keylog_path)),
            plain
        );
        // And consentry reads those very requests.
        let (list, _) = exchanges("openssl.pcap", vec![keylog()]);
        assert_eq!(request_lines(&list), plain);
    }
}

/// `wss.pcap` (captures/tls/make_wss.py): a WebSocket inside TLS 1.2, whose client
/// messages the key log opens; each becomes an exchange, as in cleartext.
mod wss {
    use super::*;

    #[test]
    fn websocket_messages_inside_tls_are_exchanges() {
        let (list, summary) = exchanges("wss.pcap", vec![keylog_named("wss.keylog")]);
        let seen: Vec<(&str, &str, &str, bool)> = list
            .iter()
            .map(|x| {
                let decrypted = x.tls.as_ref().is_some_and(|t| t.decrypted);
                (
                    x.method.as_str(),
                    x.scheme.as_str(),
                    x.path.as_str(),
                    decrypted,
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("GET", "https", "/v1/stream", true),
                ("WS", "wss", "/v1/stream", true),
                ("WS", "wss", "/v1/stream", true),
            ]
        );
        assert_eq!(list[1].request_body, br#"{"imei": "490154203237518"}"#);
        // The second message was compressed (permessage-deflate).
        assert_eq!(
            list[2].request_body,
            br#"{"android_id": "9774d56d682e549c"}"#
        );
        assert_eq!(summary.flows.tls_decrypted, 1);
        // Without the key log: one metadata-only exchange named by its SNI.
        let (list, _) = exchanges("wss.pcap", Vec::new());
        assert_eq!(list.len(), 1);
        assert!(list[0].metadata_only);
        assert_eq!(list[0].host, "ws.umeng.com");
    }
}

/// The exchanges of a capture of tunnels through a proxy: the method (or, for a
/// metadata-only exchange, its scheme in capitals), host and status of each.
fn tunnel_rows(list: &[Exchange]) -> Vec<(String, String, Option<u16>)> {
    list.iter()
        .map(|x| {
            let kind = if x.metadata_only {
                x.scheme.to_uppercase()
            } else {
                x.method.clone()
            };
            (kind, x.host.clone(), x.response.as_ref().map(|r| r.status))
        })
        .collect()
}

fn tunnel_row(kind: &str, host: &str, status: Option<u16>) -> (String, String, Option<u16>) {
    (kind.into(), host.into(), status)
}

/// (rule, host) of each finding of `run`.
fn rules_and_hosts(run: &AnalysisRun) -> Vec<(&str, &str)> {
    run.findings
        .iter()
        .map(|f| (f.rule.as_str(), f.destination.host.as_str()))
        .collect()
}

/// Without keys, the tunnels of `file` give contact with `tracker` (reached over TLS)
/// and the push login's identifier at `payload` on `push`.
fn assert_contact_and_payload(file: &str, tracker: &str, push: &str) {
    let run = analyse(file, &[]);
    assert_eq!(
        rules_and_hosts(&run),
        [
            ("tracker-contact-before-consent", tracker),
            ("share-after-refusal", push),
        ]
    );
    assert_eq!(run.findings[1].data[0].location, "payload");
}

/// `connect.pcap` (captures/tls/make_connect.py): a phone behind an explicit HTTP
/// proxy. What each `CONNECT` tunnel carries is a connection of its own, as Wireshark
/// and Zeek read it: TLS without keys is its metadata exchange named by its server
/// name (so contact with a tracker still counts), with the key log its requests are
/// paired with their responses (the tunnel's second HTTP/1 parser counts its
/// requests after the `CONNECT`s), and a protocol no parser reads is searched.
mod connect {
    use super::*;

    const TRACKER: &str = "ulogs.umeng.com";
    const PUSH: &str = "api.jpush.cn";

    #[test]
    fn without_keys_each_tunnel_is_a_connection_of_its_own() {
        let (list, _) = exchanges("connect.pcap", Vec::new());
        assert_eq!(
            tunnel_rows(&list),
            [
                tunnel_row("CONNECT", TRACKER, Some(407)),
                tunnel_row("CONNECT", TRACKER, Some(200)),
                tunnel_row("TLS", TRACKER, None),
                tunnel_row("CONNECT", PUSH, Some(200)),
                tunnel_row("TCP", PUSH, None),
            ]
        );
        let tls = list[2].tls.as_ref().unwrap();
        assert_eq!(tls.sni.as_deref(), Some(TRACKER));
        assert!(!tls.decrypted);
        // Timed at the tunnel's first byte (the ClientHello), after its `200`.
        assert!(list[2].at > list[1].at, "{} {}", list[2].at, list[1].at);
        assert!(list[4]
            .request_body
            .ends_with(br#""oaid": "a1b2c3d4-0000-4e5f-8a9b-0c1d2e3f4a5b"}"#));

        assert!(list.iter().all(|x| x.anomalies.is_empty()), "{list:#?}");
        assert_contact_and_payload("connect.pcap", TRACKER, PUSH);
    }

    #[test]
    fn with_the_key_log_the_tunnels_requests_pair_with_their_responses() {
        let (list, summary) = exchanges("connect.pcap", vec![keylog_named("connect.keylog")]);
        assert_eq!(
            tunnel_rows(&list),
            [
                tunnel_row("CONNECT", TRACKER, Some(407)),
                tunnel_row("CONNECT", TRACKER, Some(200)),
                tunnel_row("POST", TRACKER, Some(200)),
                tunnel_row("GET", TRACKER, Some(200)),
                tunnel_row("CONNECT", PUSH, Some(200)),
                tunnel_row("TCP", PUSH, None),
            ]
        );
        // No response without its request: the tunnel's requests are paired.
        assert!(list.iter().all(|x| x.anomalies.is_empty()), "{list:#?}");
        assert!(list[2].tls.as_ref().is_some_and(|t| t.decrypted));
        assert_eq!(summary.flows.tls_decrypted, 1);
        let run = analyse("connect.pcap", &[keylog_named("connect.keylog")]);
        let on_tracker = run
            .findings
            .iter()
            .filter(|f| f.destination.host == TRACKER && f.rule.as_str() == "share-after-refusal")
            .count();
        assert_eq!(on_tracker, 2, "both requests in the tunnel");
    }

    #[test]
    fn tshark_reads_the_same_requests() {
        let Some(tshark) = tshark() else {
            eprintln!("note: tshark not on PATH; the tshark cross-check is skipped");
            return;
        };
        let keylog = dir().join("connect.keylog");
        let theirs = tshark_requests(&tshark, "connect.pcap", Some(&keylog));
        let (list, _) = exchanges("connect.pcap", vec![keylog_named("connect.keylog")]);
        let (connects, inside): (Vec<String>, Vec<String>) =
            theirs.into_iter().partition(|l| l.starts_with("CONNECT "));
        assert_eq!(connects.len(), 3, "{connects:?}");
        let ours: Vec<String> = request_lines(&list)
            .into_iter()
            .filter(|l| !l.starts_with("CONNECT "))
            .collect();
        assert_eq!(ours, inside);
    }
}

/// `socks5.pcap` (captures/tls/make_connect.py): the phone through a SOCKS5 proxy.
/// The handshake is watched from the side; the tunnel it opens is the connection
/// (named by its TLS server name, else the `CONNECT` target), as Wireshark's and
/// Zeek's SOCKS analysers hand it on; a refused tunnel is an anomaly.
mod socks5 {
    use super::*;

    const TRACKER: &str = "app-measurement.com";
    const PUSH: &str = "api.jpush.cn";

    #[test]
    fn without_keys_the_tunnels_are_named_by_what_they_reach() {
        let (list, _) = exchanges("socks5.pcap", Vec::new());
        assert_eq!(
            tunnel_rows(&list),
            [
                tunnel_row("TLS", TRACKER, None),
                tunnel_row("TCP", "10.8.0.1", None),
                tunnel_row("TCP", PUSH, None),
            ]
        );
        assert_eq!(list[0].tls.as_ref().unwrap().sni.as_deref(), Some(TRACKER));
        let refused = &list[1].anomalies;
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].kind, "socks-refused");
        assert!(
            refused[0].detail.contains("graph.facebook.com:443")
                && refused[0]
                    .detail
                    .contains("connection not allowed by ruleset"),
            "{}",
            refused[0].detail
        );
        // A refused tunnel's client bytes are searched (a protocol that only looked
        // like SOCKS5 would lose nothing).
        assert!(list[1]
            .request_body
            .starts_with(b"\x05\x01\x00\x05\x01\x00\x03"));
        assert!(
            list[2].request_body.starts_with(b"\x01\x01"),
            "the tunnel's bytes only"
        );

        assert_contact_and_payload("socks5.pcap", TRACKER, PUSH);
    }

    #[test]
    fn with_the_key_log_the_tunnels_requests_are_read() {
        let (list, summary) = exchanges("socks5.pcap", vec![keylog_named("socks5.keylog")]);
        assert_eq!(
            tunnel_rows(&list),
            [
                tunnel_row("POST", TRACKER, Some(200)),
                tunnel_row("GET", TRACKER, Some(200)),
                tunnel_row("TCP", "10.8.0.1", None),
                tunnel_row("TCP", PUSH, None),
            ]
        );
        assert!(list[..2].iter().all(|x| x.anomalies.is_empty()));
        assert_eq!(summary.flows.tls_decrypted, 1);
        if let Some(tshark) = tshark() {
            let keylog = dir().join("socks5.keylog");
            assert_eq!(
                tshark_requests(&tshark, "socks5.pcap", Some(&keylog)),
                request_lines(&list)
            );
        }
    }
}

/// `ech.pcap` (captures/tls/make_ech.py): Go's TLS client and server with Encrypted
/// Client Hello; each outer ClientHello names the CDN's public name, the server the
/// app meant is in the sealed inner one. Go logs the TLS 1.3 secrets under the inner
/// hello's random (as the key log draft says), which no packet shows, so tshark 4.0
/// decrypts nothing of it with `ech.keylog`; the key log's ECH_SECRET and ECH_CONFIG
/// lines open the inner hello, and without them the secrets are found by trial.
/// Without keys, the DNS HTTPS answers that gave the device each ECH config name
/// the connections that used it.
mod ech {
    use super::*;

    const PUBLIC: &str = "ech.cdn.example";
    const MEASUREMENT: &str = "app-measurement.com";
    const UMENG: &str = "ulogs.umeng.com";

    /// `ech.keylog` without its ECH lines: what Go, BoringSSL and NSS clients write
    /// unless asked for more.
    fn without_ech_lines() -> Arc<[u8]> {
        let all = keylog_named("ech.keylog");
        let kept: Vec<&[u8]> = all
            .split(|&b| b == b'\n')
            .filter(|l| !l.starts_with(b"ECH_"))
            .collect();
        assert_eq!(kept.iter().filter(|l| !l.is_empty()).count(), 8);
        Arc::from(kept.join(&b'\n'))
    }

    fn ech_of(x: &Exchange) -> (Option<&str>, Option<&str>, Option<&str>, bool) {
        let t = x.tls.as_ref().expect("a TLS exchange");
        (
            t.ech.as_deref(),
            t.sni.as_deref(),
            t.outer_sni.as_deref(),
            t.decrypted,
        )
    }

    fn requests() -> Vec<(String, String, Option<u16>)> {
        vec![
            tunnel_row("POST", MEASUREMENT, Some(200)),
            tunnel_row("GET", MEASUREMENT, Some(200)),
            tunnel_row("POST", UMENG, Some(200)),
        ]
    }

    /// The requests' findings: the identifiers each carries, to the server it meant.
    fn assert_shared_with_both(keylogs: &[Arc<[u8]>]) {
        let run = analyse("ech.pcap", keylogs);
        for (host, requests) in [(MEASUREMENT, 2), (UMENG, 1)] {
            let shared = run
                .findings
                .iter()
                .filter(|f| f.destination.host == host && f.rule.as_str() == "share-after-refusal")
                .count();
            assert_eq!(shared, requests, "{host}");
        }
    }

    /// `ech.pcap` without its DNS messages (every UDP frame dropped), as a capture
    /// of a device that resolves over DNS over HTTPS would be.
    fn without_dns() -> Vec<u8> {
        let bytes = std::fs::read(dir().join("ech.pcap")).unwrap();
        let mut out = bytes[..24].to_vec();
        let mut at = 24;
        while at + 16 <= bytes.len() {
            let len = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
            let frame = &bytes[at + 16..at + 16 + len];
            // Ethernet, IPv4: the protocol byte.
            if frame[14 + 9] != 17 {
                out.extend_from_slice(&bytes[at..at + 16 + len]);
            }
            at += 16 + len;
        }
        out
    }

    #[test]
    fn without_keys_the_dns_answer_that_gave_the_config_names_the_server() {
        let (list, summary) = exchanges("ech.pcap", Vec::new());
        assert_eq!(
            tunnel_rows(&list),
            [
                tunnel_row("TLS", MEASUREMENT, None),
                tunnel_row("TLS", UMENG, None)
            ]
        );
        // The same address and public name for both, and the decoy's name answered
        // last for that address: the config id each ClientHello used tells them apart.
        for x in &list {
            assert_eq!(ech_of(x), (Some("named-by-dns"), Some(PUBLIC), None, false));
        }
        assert_eq!(summary.flows.dns_messages, 12);
        let run = analyse("ech.pcap", &[]);
        assert_eq!(
            rules_and_hosts(&run),
            [
                ("tracker-contact-before-consent", MEASUREMENT),
                ("tracker-contact-before-consent", UMENG)
            ]
        );
    }

    #[test]
    fn without_keys_or_dns_the_public_name_is_all_a_tap_sees() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ech-without-dns.pcap");
        std::fs::write(&path, without_dns()).unwrap();
        let run = analyse_path(&path, &CaptureReading::default());
        assert!(run.findings.is_empty(), "{:?}", run.findings);
        let (list, _) = exchanges_at(&path, Vec::new());
        assert_eq!(
            tunnel_rows(&list),
            [
                tunnel_row("TLS", PUBLIC, None),
                tunnel_row("TLS", PUBLIC, None)
            ]
        );
        for x in &list {
            assert_eq!(ech_of(x), (Some("offered"), Some(PUBLIC), None, false));
        }
    }

    #[test]
    fn the_ech_secret_opens_the_inner_hello_which_names_the_server() {
        let (list, summary) = exchanges("ech.pcap", vec![keylog_named("ech.keylog")]);
        assert_eq!(tunnel_rows(&list), requests());
        assert!(list.iter().all(|x| x.anomalies.is_empty()), "{list:#?}");
        for x in &list {
            assert_eq!(
                ech_of(x),
                (
                    Some("inner-read"),
                    Some(x.host.as_str()),
                    Some(PUBLIC),
                    true
                )
            );
        }
        // The second connection's HelloRetryRequest: its second outer hello opened
        // with the next HPKE nonce (else an anomaly), the ChaCha20-Poly1305 suite.
        assert_eq!(summary.flows.tls_decrypted, 2);
        assert_shared_with_both(&[keylog_named("ech.keylog")]);
    }

    #[test]
    fn without_ech_lines_the_secrets_are_found_by_trial() {
        let (list, summary) = exchanges("ech.pcap", vec![without_ech_lines()]);
        assert_eq!(tunnel_rows(&list), requests());
        assert!(list.iter().all(|x| x.anomalies.is_empty()), "{list:#?}");
        for x in &list {
            // The inner hello stays sealed: the server's name is the request's Host.
            assert_eq!(ech_of(x), (Some("keys-matched"), Some(PUBLIC), None, true));
        }
        assert_eq!(summary.flows.tls_decrypted, 2);
        assert_shared_with_both(&[without_ech_lines()]);
    }

    #[test]
    fn a_wrong_ech_secret_is_an_anomaly_and_the_trial_still_decrypts() {
        let text = String::from_utf8(keylog_named("ech.keylog").to_vec()).unwrap();
        let broken: String = text
            .lines()
            .map(|l| match l.strip_prefix("ECH_SECRET ") {
                Some(rest) => format!("ECH_SECRET {}{}\n", &rest[..65], "00".repeat(32)),
                None => format!("{l}\n"),
            })
            .collect();
        let (list, _) = exchanges("ech.pcap", vec![Arc::from(broken.into_bytes())]);
        assert_eq!(tunnel_rows(&list), requests());
        for x in &list {
            assert_eq!(ech_of(x).0, Some("keys-matched"));
        }
        let kinds: Vec<&str> = list
            .iter()
            .flat_map(|x| x.anomalies.iter().map(|a| a.kind.as_str()))
            .collect();
        assert!(kinds.contains(&"tls-ech-failed"), "{kinds:?}");
    }

    /// The trial stops after `MAX_ECH_TRIALS` key log entries: with that many
    /// unrelated TLS 1.3 entries logged first the connections stay unread (and say
    /// why); with one fewer they decrypt.
    #[test]
    fn the_trial_is_bounded() {
        use consentry::net::tls_decrypt::MAX_ECH_TRIALS;
        let padded = |n: usize| {
            let mut text = String::new();
            for i in 0..n {
                let random = format!("{:064x}", i + 1);
                text.push_str(&format!(
                    "SERVER_HANDSHAKE_TRAFFIC_SECRET {random} {}\n",
                    "5a".repeat(32)
                ));
            }
            let mut bytes = text.into_bytes();
            bytes.extend_from_slice(&without_ech_lines());
            Arc::<[u8]>::from(bytes)
        };
        // The first connection's entries come first in ech.keylog, the second's after.
        let (list, summary) = exchanges("ech.pcap", vec![padded(MAX_ECH_TRIALS - 1)]);
        let mut rows = requests();
        // Unread, the connection is still named by the DNS answer that gave its config.
        rows[2] = tunnel_row("TLS", UMENG, None);
        assert_eq!(tunnel_rows(&list), rows);
        assert_eq!(summary.flows.tls_decrypted, 1);
        assert_eq!(
            ech_of(&list[0]),
            (Some("keys-matched"), Some(PUBLIC), None, true)
        );
        let unread = &list[2];
        assert_eq!(
            ech_of(unread),
            (Some("named-by-dns"), Some(PUBLIC), None, false)
        );
        assert!(
            unread.anomalies.iter().any(|a| a.kind == "tls-limit"
                && a.detail
                    .contains(&format!("first {MAX_ECH_TRIALS} key log entries"))),
            "{:?}",
            unread.anomalies
        );
        let (list, summary) = exchanges("ech.pcap", vec![padded(MAX_ECH_TRIALS - 2)]);
        assert_eq!(tunnel_rows(&list), requests());
        assert_eq!(summary.flows.tls_decrypted, 2);
    }
}

/// `h2ws.pcap` (captures/tls/make_h2_ws.py): a WebSocket over HTTP/2 (RFC 8441) in
/// TLS 1.3, made by the `h2` library: an extended `CONNECT` on stream 1 whose DATA
/// carries the client's WebSocket frames (masked; one message deflated), and a GET
/// alongside. tshark 4.0 reads the HTTP/2 frames but not the messages inside them.
mod h2_websocket {
    use super::*;

    #[test]
    fn each_client_message_is_an_exchange_with_its_findings() {
        let keylog = keylog_named("h2ws.keylog");
        let (list, summary) = exchanges("h2ws.pcap", vec![keylog.clone()]);
        assert_eq!(summary.flows.tls_decrypted, 1);
        let rows: Vec<(&str, &str, Option<u16>)> = list
            .iter()
            .map(|x| {
                let status = x.response.as_ref().map(|r| r.status);
                (x.method.as_str(), x.path.as_str(), status)
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("GET", "/v1/config", Some(200)),
                ("WS", "/v1/stream", None),
                ("WS", "/v1/stream", None),
                ("CONNECT", "/v1/stream", Some(200)),
            ]
        );
        assert!(list.iter().all(|x| x.anomalies.is_empty()), "{list:#?}");
        assert!(list.iter().all(|x| x.host == "ws.umeng.com"));
        assert_eq!(list[1].request_body, br#"{"imei": "490154203237518"}"#);
        // Inflated (permessage-deflate), as on an HTTP/1.1 WebSocket.
        assert_eq!(
            list[2].request_body,
            br#"{"android_id": "9774d56d682e549c"}"#
        );
        // The CONNECT keeps no frames as its body.
        assert!(list[3].request_body.is_empty());

        let run = analyse("h2ws.pcap", &[keylog]);
        let found: Vec<(&str, &str)> = run
            .findings
            .iter()
            .map(|f| (f.rule.as_str(), f.data[0].location.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                ("share-after-refusal", "body:$.imei"),
                ("share-after-refusal", "body:$.android_id"),
            ]
        );
    }
}

/// DNS over TLS (`dot.pcap`, written by `make_dot.py`): the phone's private DNS
/// setting sends its lookups to a resolver on port 853; one of them is an SDK's beacon
/// whose first label is the MD5 of the IMEI, and the SDK then opens TLS to that name.
mod dot {
    use super::*;

    /// (rule, host, data items) of each finding of `run`.
    type Row<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str, &'a str)>);

    fn rows(run: &AnalysisRun) -> Vec<Row<'_>> {
        run.findings
            .iter()
            .map(|f| {
                let data = f
                    .data
                    .iter()
                    .map(|d| (d.kind.as_str(), d.encoding.as_str(), d.location.as_str()))
                    .collect();
                (f.rule.as_str(), f.destination.host.as_str(), data)
            })
            .collect()
    }

    const BEACON: &str = "0eaed834a1e6f4b2bf0c024e0013dea1.b.metrics-sdk.example";

    #[test]
    fn queries_inside_dns_over_tls_are_searched_and_answers_name_servers() {
        let keylogs = [keylog_named("dot.keylog")];
        let run = analyse("dot.pcap", &keylogs);
        let imei_at = |place| vec![("imei", "md5", place)];
        assert_eq!(
            rows(&run),
            [
                // The query's name, read from the decrypted stream.
                ("share-after-refusal", BEACON, imei_at("payload")),
                // The name again, in the ClientHello of the connection to it.
                ("share-after-refusal", BEACON, imei_at("sni")),
                // Named by the answer inside the TLS connection.
                (
                    "tracker-contact-before-consent",
                    "app-measurement.com",
                    vec![]
                ),
            ]
        );
        // At the segment that carried the second query (the time `make_dot.py` gives
        // it: 1 ms per handshake flight, then 20 ms per DNS message).
        assert_eq!(
            run.findings[0].at.to_string(),
            "2026-11-28T10:03:10.065000Z"
        );
        let (list, summary) = exchanges("dot.pcap", keylogs.to_vec());
        let hosts: Vec<&str> = list.iter().map(|x| x.host.as_str()).collect();
        assert_eq!(
            hosts,
            ["dot.resolver.example", BEACON, "app-measurement.com"]
        );
        assert_eq!(summary.flows.tls_decrypted, 2);
    }

    #[test]
    fn without_keys_the_server_name_still_carries_the_identifier() {
        // The lookup is unreadable; the ClientHello's server name is in clear. The
        // later server is known by its address only: no tracker contact.
        let run = analyse("dot.pcap", &[]);
        assert_eq!(
            rows(&run),
            [("share-after-refusal", BEACON, vec![("imei", "md5", "sni")])]
        );
        let (list, _) = exchanges("dot.pcap", Vec::new());
        let hosts: Vec<&str> = list.iter().map(|x| x.host.as_str()).collect();
        assert_eq!(hosts, ["dot.resolver.example", BEACON, "203.0.113.80"]);
    }
}

/// DNS over HTTPS (`doh.pcap`, written by `make_doh.py`): an SDK resolving names
/// itself over HTTPS, then connecting to the answers' addresses.
mod doh {
    use super::*;

    #[test]
    fn answers_inside_dns_over_https_name_later_connections() {
        let keylogs = vec![keylog_named("doh.keylog")];
        let (list, summary) = exchanges("doh.pcap", keylogs.clone());
        // The three queries and their answers count as DNS messages (the summary's
        // `DNS messages` adds them to the flow table's).
        assert_eq!(
            (summary.tap.doh_messages, summary.flows.dns_messages),
            (6, 0)
        );
        let rows: Vec<(&str, &str)> = list
            .iter()
            .map(|x| (x.method.as_str(), x.host.as_str()))
            .collect();
        assert_eq!(
            rows,
            [
                // A POST of the query, a GET with it in `dns`, a POST of the name
                // with the IMEI's MD5: each answered `application/dns-message`.
                ("POST", "dns.resolver.example"),
                ("GET", "dns.resolver.example"),
                ("POST", "dns.resolver.example"),
                ("", "collector.metrics-sdk.example"),
                ("", "app-measurement.com"),
            ]
        );
        // So contact with a tracker known only by that name is found; and the name
        // that carries the IMEI reaches both the resolver (an SDK's own: an unknown
        // third party) and the name servers of its domain, as over UDP.
        let run = analyse("doh.pcap", &keylogs);
        let id_name = "0eaed834a1e6f4b2bf0c024e0013dea1.b.metrics-sdk.example";
        let mut found = rules_and_hosts(&run);
        found.sort();
        assert_eq!(
            found,
            [
                ("share-after-refusal", id_name),
                ("share-after-refusal", "dns.resolver.example"),
                ("tracker-contact-before-consent", "app-measurement.com"),
            ]
        );
        let by_name = run
            .findings
            .iter()
            .find(|f| f.destination.host == id_name)
            .unwrap();
        let via_resolver = run
            .findings
            .iter()
            .find(|f| f.destination.host == "dns.resolver.example")
            .unwrap();
        // The name's exchange is the query's: the request's time and first frame.
        assert_eq!(by_name.at, list[2].at);
        assert_eq!(by_name.at, via_resolver.at);
        assert_eq!(by_name.destination.site, "metrics-sdk.example");
        assert_eq!(
            (
                by_name.data[0].kind.as_str(),
                by_name.data[0].encoding.as_str()
            ),
            ("imei", "md5")
        );
        assert_eq!(by_name.data[0].location, "payload");
        assert_eq!(via_resolver.data[0].location, "body");
        assert_ne!(by_name.exchange, via_resolver.exchange);
        // Without the key log the later servers are known by their addresses only.
        let (list, summary) = exchanges("doh.pcap", Vec::new());
        assert_eq!(summary.tap.doh_messages, 0);
        let hosts: Vec<&str> = list.iter().map(|x| x.host.as_str()).collect();
        assert_eq!(
            hosts,
            ["dns.resolver.example", "203.0.113.81", "203.0.113.80"]
        );
        assert!(analyse("doh.pcap", &[]).findings.is_empty());
    }
}

/// JA3 and JA4 of each connection's ClientHello (`tls.ja3`, `tls.ja4`), against the
/// reference tools' values for the same files, recorded when this test was written:
/// tshark 4.0's `tls.handshake.ja3` and FoxIO's `ja4` tool (0.18.6, built from its
/// repository's `rust/`). When tshark is on PATH it also gives the JA3 of every
/// connection of the TLS captures here.
mod fingerprints {
    use super::*;

    fn fingerprints(x: &Exchange) -> (&str, &str) {
        let t = x.tls.as_ref().expect("a TLS exchange");
        (
            t.ja3.as_deref().expect("a JA3"),
            t.ja4.as_deref().expect("a JA4"),
        )
    }

    #[test]
    fn rustls_connections_in_tls_1_2_and_1_3_give_the_reference_values() {
        // Server, tshark's JA3, FoxIO's JA4, in capture order: the generator pins
        // one suite per connection, and resumption adds an extension (the second
        // connections to .10 and .13).
        let want = [
            (
                "203.0.113.10",
                "07eb8741dee31796bd05a47e5cfb4eeb",
                "t13d0110h1_0f2cb44170f4_6a7d638fc319",
            ),
            (
                "203.0.113.11",
                "13d574bf473cc6e9126788e622a5a712",
                "t13d0110h1_ee47968ec53b_6a7d638fc319",
            ),
            (
                "203.0.113.12",
                "703cda77f18fe604c6461a466b0eab8a",
                "t13d0110h1_58070c528ac8_6a7d638fc319",
            ),
            (
                "203.0.113.13",
                "a8fa937147f1582b715de28adbdae526",
                "t12d0209h1_6d4732649639_2541d505c05f",
            ),
            (
                "203.0.113.14",
                "b6f22daf83bec762c5b3fa62f9a7a5d9",
                "t12d0209h1_6a7d5ebe9983_2541d505c05f",
            ),
            (
                "203.0.113.15",
                "289a65ef494a1e94b1fa779e0bb7adef",
                "t12d0209h1_14e71d778212_2541d505c05f",
            ),
            (
                "203.0.113.10",
                "272d0c6ae17e98188152f8097153c5cf",
                "t13d0111h1_0f2cb44170f4_d4929ced8316",
            ),
            (
                "203.0.113.13",
                "d3f0bc0cf49431cb2de7d717508ff02c",
                "t12d0209h1_6d4732649639_2541d505c05f",
            ),
            (
                "203.0.113.11",
                "852787b746287e522207e67d01422318",
                "t13d0110h1_0f2cb44170f4_6a7d638fc319",
            ),
            (
                "203.0.113.16",
                "3a4208b607a92c8bf4445e2481f7f827",
                "t13d0110h2_0f2cb44170f4_6a7d638fc319",
            ),
            (
                "203.0.113.17",
                "16dc32e63dd104a08677e8fd51f096f7",
                "t12d0209h2_6d4732649639_2541d505c05f",
            ),
        ];
        let mut want: Vec<_> = want.to_vec();
        want.sort();
        for keylogs in [Vec::new(), vec![keylog()]] {
            let decrypting = !keylogs.is_empty();
            let (list, _) = exchanges("tls.pcap", keylogs);
            // Decrypted, a connection is several exchanges; no two connections here
            // share server, JA3 and JA4, so the distinct triples are the connections.
            let rows: std::collections::BTreeSet<(&str, &str, &str)> = list
                .iter()
                .map(|x| {
                    let (ja3, ja4) = fingerprints(x);
                    (x.server.as_deref().unwrap(), ja3, ja4)
                })
                .collect();
            assert_eq!(
                rows.into_iter().collect::<Vec<_>>(),
                want,
                "decrypting: {decrypting}"
            );
        }
    }

    #[test]
    fn an_ech_connection_is_fingerprinted_by_its_outer_hello() {
        let outer = (
            "fa9da34220a2d1fce58da94e2b39c28f",
            "t13d030800_55b375c5d22e_1b8ac57cf182",
        );
        for keylogs in [Vec::new(), vec![keylog_named("ech.keylog")]] {
            let (list, _) = exchanges("ech.pcap", keylogs);
            assert!(!list.is_empty());
            for x in &list {
                assert_eq!(fingerprints(x), outer, "{} {}", x.host, x.path);
            }
        }
    }

    /// JA3 of the first ClientHello of each TCP stream tshark reads in `file`.
    fn tshark_ja3(tshark: &Path, file: &str) -> std::collections::BTreeSet<String> {
        let out = Command::new(tshark)
            .arg("-n")
            .arg("-r")
            .arg(dir().join(file))
            .args(["-Y", "tls.handshake.type == 1", "-T", "fields"])
            .args(["-e", "tcp.stream", "-e", "tls.handshake.ja3"])
            .output()
            .expect("running tshark");
        assert!(out.status.success(), "tshark on {file}");
        let mut first = BTreeMap::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some((stream, ja3)) = line.split_once('\t') {
                let ja3 = ja3.split(',').next().unwrap_or_default();
                first.entry(stream.to_string()).or_insert(ja3.to_string());
            }
        }
        first.into_values().collect()
    }

    #[test]
    fn tshark_gives_the_same_ja3_for_every_connection() {
        let Some(tshark) = tshark() else {
            eprintln!("note: tshark not on PATH; the tshark cross-check is skipped");
            return;
        };
        for file in [
            "tls.pcap",
            "openssl.pcap",
            "dot.pcap",
            "doh.pcap",
            "ech.pcap",
        ] {
            let (list, _) = exchanges(file, Vec::new());
            let ours: std::collections::BTreeSet<String> = list
                .iter()
                .filter_map(|x| x.tls.as_ref()?.ja3.clone())
                .collect();
            let theirs = tshark_ja3(&tshark, file);
            assert!(!theirs.is_empty(), "{file}");
            assert_eq!(ours, theirs, "{file}");
        }
    }
}

mod certificates {
    use super::*;
    use consentry::exchange::ServerCertificate;
    use sha2::{Digest, Sha256};

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// (server address, JA3) → the certificate its exchanges carry; every exchange of
    /// one connection carries the same. (No two connections of `tls.pcap` share
    /// server and JA3.)
    fn certificates(list: &[Exchange]) -> BTreeMap<(String, String), Option<ServerCertificate>> {
        let mut out = BTreeMap::new();
        for x in list {
            let tls = x.tls.as_ref().expect("a TLS exchange");
            let key = (x.server.clone().unwrap(), tls.ja3.clone().unwrap());
            let cert = tls.server_certificate.as_deref().cloned();
            let before = out.insert(key.clone(), cert.clone());
            assert!(before.is_none() || before == Some(cert), "{key:?}");
        }
        out
    }

    #[test]
    fn tls12_certificates_are_read_in_clear_tls13_ones_with_the_key_log() {
        let (clear, _) = exchanges("tls.pcap", Vec::new());
        let (decrypted, _) = exchanges("tls.pcap", vec![keylog()]);
        let (clear, decrypted) = (certificates(&clear), certificates(&decrypted));
        assert_eq!(clear.len(), 11, "one entry per connection");
        assert_eq!(
            clear.keys().collect::<Vec<_>>(),
            decrypted.keys().collect::<Vec<_>>()
        );
        let hosts: Vec<String> = tls_corpus::specs()
            .iter()
            .map(|s| s.host.to_string())
            .collect();
        let mut digests = std::collections::BTreeSet::new();
        for ((server, ja3), cert) in &decrypted {
            // The resumed connections (the second to .10, by TLS 1.3 ticket; the second
            // to .13, by TLS 1.2 session id) show none; the others the one certificate
            // the generator made for every host.
            let resumed = matches!(
                ja3.as_str(),
                "272d0c6ae17e98188152f8097153c5cf" | "d3f0bc0cf49431cb2de7d717508ff02c"
            );
            let Some(cert) = cert else {
                assert!(resumed, "{server} {ja3}: no certificate");
                continue;
            };
            assert!(!resumed, "{server} {ja3}: a resumed connection has none");
            assert_eq!(cert.subject, "CN=rcgen self signed cert");
            assert_eq!(cert.issuer, cert.subject);
            assert_eq!(cert.names, hosts);
            assert_eq!(cert.chain, 1);
            digests.insert(cert.sha256.clone());
            // In clear only over TLS 1.2: .13 to .15 and .17.
            let tls12 = [
                "203.0.113.13",
                "203.0.113.14",
                "203.0.113.15",
                "203.0.113.17",
            ]
            .contains(&server.as_str());
            let in_clear = &clear[&(server.clone(), ja3.clone())];
            assert_eq!(in_clear.as_ref(), tls12.then_some(cert), "{server} {ja3}");
        }
        assert_eq!(digests.len(), 1, "one certificate for all: {digests:?}");
        assert_eq!(decrypted.values().filter(|c| c.is_some()).count(), 9);
    }

    #[test]
    fn a_connection_without_server_name_or_dns_is_named_by_the_certificate() {
        let spec = tls_corpus::specs()
            .into_iter()
            .find(|s| s.server_ip == [203, 0, 113, 14])
            .expect("the TLS 1.2 connection to .14");
        let (packets, der) = tls_corpus::without_server_name(&spec);
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("no-sni.pcap");
        std::fs::write(&path, tls_corpus::write_pcap(&packets)).unwrap();
        let (list, _) = exchanges_at(&path, Vec::new());
        assert_eq!(list.len(), 1, "one metadata exchange");
        let x = &list[0];
        assert!(x.metadata_only);
        let tls = x.tls.as_ref().unwrap();
        assert_eq!(tls.sni, None);
        let cert = tls.server_certificate.as_deref().expect("certificate");
        assert_eq!(cert.sha256, hex(&Sha256::digest(&der)));
        assert_eq!(cert.names, [spec.host]);
        assert_eq!(x.host, spec.host, "named by the certificate");
    }

    /// SHA-256 of the first certificate of each Certificate message tshark reads in
    /// `file`.
    fn tshark_leaves(tshark: &Path, file: &str) -> std::collections::BTreeSet<String> {
        let out = Command::new(tshark)
            .arg("-n")
            .arg("-r")
            .arg(dir().join(file))
            .args(["-Y", "tls.handshake.type == 11", "-T", "fields"])
            .args(["-e", "tls.handshake.certificate"])
            .output()
            .expect("running tshark");
        assert!(out.status.success(), "tshark on {file}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| {
                let first = line.split(',').next()?.replace(':', "");
                let der: Vec<u8> = (0..first.len() / 2)
                    .map(|i| u8::from_str_radix(&first[2 * i..2 * i + 2], 16))
                    .collect::<Result<_, _>>()
                    .ok()?;
                (!der.is_empty()).then(|| hex(&Sha256::digest(&der)))
            })
            .collect()
    }

    #[test]
    fn tshark_reads_the_same_certificates() {
        let Some(tshark) = tshark() else {
            eprintln!("note: tshark not on PATH; the tshark cross-check is skipped");
            return;
        };
        for file in ["tls.pcap", "openssl.pcap", "connect.pcap", "wss.pcap"] {
            let (list, _) = exchanges(file, Vec::new());
            let ours: std::collections::BTreeSet<String> = list
                .iter()
                .filter_map(|x| Some(x.tls.as_ref()?.server_certificate.as_ref()?.sha256.clone()))
                .collect();
            let theirs = tshark_leaves(&tshark, file);
            assert!(!theirs.is_empty(), "{file}");
            assert_eq!(ours, theirs, "{file}");
        }
    }
}

/// `early.pcap` (`make_early_data.py`): a real OpenSSL TLS 1.3 resumption whose first
/// request, with the IMEI, is 0-RTT data in the ClientHello's segment (frame 4); the
/// decryptor reads it once the server's flight (frame 5) gives the keys. It is dated
/// and located where it was captured, as tshark shows it; the request under the
/// 1-RTT keys where its own record is.
#[test]
fn zero_rtt_data_is_dated_and_located_where_it_was_captured() {
    let run = analyse("early.pcap", &[keylog_named("early.keylog")]);
    assert_eq!(
        rules_and_hosts(&run),
        [
            ("share-after-refusal", "api.mixpanel.com"),
            ("share-after-refusal", "api.mixpanel.com")
        ]
    );
    let (list, summary) = exchanges("early.pcap", vec![keylog_named("early.keylog")]);
    assert_eq!(summary.flows.tls_decrypted, 1);
    let rows: Vec<(String, String, String)> = list
        .iter()
        .filter(|x| !x.metadata_only)
        .map(|x| (x.path.clone(), x.evidence.locator.clone(), x.at.to_string()))
        .collect();
    assert_eq!(
        rows,
        [
            (
                "/early?imei=490154203237518".to_string(),
                "frame 4".to_string(),
                "2026-11-28T10:03:50.001000Z".to_string()
            ),
            (
                "/later?android_id=9774d56d682e549c".to_string(),
                "frame 8".to_string(),
                "2026-11-28T10:03:50.081000Z".to_string()
            ),
        ]
    );
}
