//! TLS in captures, the OpenSSL half of the corpus (issue 7, "done when"): the suites
//! rustls cannot make — TLS 1.2 AES-CBC-SHA/SHA256/SHA384 with and without
//! encrypt-then-MAC, RSA key exchange, DHE, extended master secret off, resumption by
//! session id, TLS 1.1 and 1.0 CBC — written by `captures/tls/make_openssl_tls.py`
//! (OpenSSL through Python's `ssl`, in memory). With `openssl.keylog` the capture must
//! give exactly the findings of its plaintext twin, every connection decrypted;
//! `tshark`, when installed, must read the same request lines from both.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use consentry::case::DeviceResolver;
use consentry::cli::analyze::{analyze_files_with_keylogs, AnalysisRun};
use consentry::exchange::Exchange;
use consentry::report::write_jsonl;
use consentry::rules::Options;
use consentry::source::pcap::{read_capture, CaptureOptions, CaptureSummary};
use serde_json::Value;

/// Connections in the capture (`CONNS` of the script).
const CONNECTIONS: u64 = 18;
/// Two HTTP/1.1 requests per connection.
const REQUESTS: usize = 36;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/tls")
}

fn keylog() -> Arc<[u8]> {
    Arc::from(std::fs::read(dir().join("openssl.keylog")).expect("captures/tls/openssl.keylog"))
}

fn analyse(file: &str, keylogs: &[Arc<[u8]>]) -> AnalysisRun {
    let case = Arc::new(consentry::case::load(&dir().join("consentry.toml")).unwrap());
    let run = analyze_files_with_keylogs(
        case,
        &[dir().join(file)],
        None,
        keylogs,
        Options::default(),
        0,
    )
    .unwrap();
    assert!(
        run.summary.input_errors.is_empty(),
        "{:?}",
        run.summary.input_errors
    );
    run
}

/// The findings as JSON without the ids (derived from the capture's hash and frames).
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

fn exchanges(file: &str, keylogs: Vec<Arc<[u8]>>) -> (Vec<Exchange>, CaptureSummary) {
    let case = consentry::case::load(&dir().join("consentry.toml")).unwrap();
    let opts = CaptureOptions {
        label: file.to_string(),
        file_sha256: None,
        devices: DeviceResolver::new(&case),
        fallback_device: None,
        limits: Default::default(),
        keylogs,
    };
    let bytes = std::fs::read(dir().join(file)).unwrap();
    let mut list = Vec::new();
    let (summary, error) =
        read_capture(&bytes[..], &opts, &mut |_| {}, &mut |x| list.push(x)).unwrap();
    assert!(error.is_none(), "{error:?}");
    (list, summary)
}

#[test]
fn with_the_key_log_the_findings_are_the_plaintext_twins() {
    let want = projected(&analyse("openssl-plain.pcap", &[]));
    // Each connection's two requests carry identifiers after the refusal.
    assert!(want.len() >= REQUESTS, "{} findings", want.len());
    let run = analyse("openssl.pcap", &[keylog()]);
    let got = projected(&run);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "finding {i} differs");
    }
    assert_eq!(got.len(), want.len(), "number of findings");
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

/// `METHOD host uri` of every HTTP/1 request tshark finds in `file`, sorted.
fn tshark_requests(file: &str, keylog: Option<&Path>) -> Option<Vec<String>> {
    let found = Command::new("tshark").arg("--version").output().ok()?;
    if !found.status.success() {
        return None;
    }
    let mut cmd = Command::new("tshark");
    cmd.arg("-n").arg("-r").arg(dir().join(file));
    if let Some(k) = keylog {
        cmd.arg("-o")
            .arg(format!("tls.keylog_file:{}", k.display()));
    }
    cmd.args(["-Y", "http.request", "-T", "fields", "-E", "separator= "]);
    cmd.args(["-e", "http.request.method", "-e", "http.host"]);
    cmd.args(["-e", "http.request.uri"]);
    let out = cmd.output().expect("running tshark");
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    Some(lines)
}

#[test]
fn tshark_reads_the_same_requests() {
    let Some(plain) = tshark_requests("openssl-plain.pcap", None) else {
        eprintln!("note: tshark not on PATH; the tshark cross-check is skipped");
        return;
    };
    assert_eq!(plain.len(), REQUESTS, "{plain:#?}");
    let keylog = dir().join("openssl.keylog");
    assert_eq!(
        tshark_requests("openssl.pcap", Some(&keylog)),
        Some(plain.clone())
    );
    // And consentry reads those very requests.
    let (list, _) = exchanges("openssl.pcap", vec![self::keylog()]);
    let mut ours: Vec<String> = list
        .iter()
        .map(|x| format!("{} {} {}", x.method, x.host, x.path))
        .collect();
    ours.sort();
    assert_eq!(ours, plain);
}
