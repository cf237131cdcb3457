//! `consentry tap --read -`: the tap fed a capture as another program writes it (a
//! gateway's `tcpdump -w -` over ssh), here the gateway capture piped in. Needs no
//! capture privileges. The findings must be the ones `analyze` gives for the file,
//! the evidence ring must hold every packet, and a run into a case directory must
//! store them as a live run.

#![cfg(feature = "live")]

#[path = "common/piped.rs"]
mod piped;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_consentry"))
}

fn gateway(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("captures/gateway")
        .join(file)
}

/// Runs `cmd` with the bytes of the file `input` on its standard input.
fn run_with_file_on_stdin(cmd: &mut Command, input: &Path) -> Output {
    piped::run_with_stdin(cmd, std::fs::read(input).unwrap())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Each finding line without what names its run (`id`, `exchange`).
fn findings(jsonl: &str) -> BTreeSet<String> {
    jsonl
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            let object = v.as_object_mut().unwrap();
            object.remove("id");
            object.remove("exchange");
            v.to_string()
        })
        .collect()
}

fn analyze_findings(capture: &Path) -> BTreeSet<String> {
    let o = bin()
        .arg("analyze")
        .arg(capture)
        .arg("--case")
        .arg(gateway("consentry.toml"))
        .args(["--format", "jsonl"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    findings(&text(&o.stdout))
}

#[test]
fn a_piped_capture_gives_the_findings_of_the_file_and_a_ring_of_its_packets() {
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("ring");
    let o = run_with_file_on_stdin(
        bin()
            .args(["tap", "--read", "-", "--case"])
            .arg(gateway("consentry.toml"))
            .args(["--format", "jsonl", "--ring-dir"])
            .arg(&ring),
        &gateway("gateway.pcap"),
    );
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("reading packets from /dev/stdin"), "{err}");
    assert!(err.contains("369 packets"), "{err}");
    // No kernel counters to report for a pipe.
    assert!(!err.contains("libpcap received"), "{err}");
    let want = analyze_findings(&gateway("gateway.pcap"));
    assert_eq!(want.len(), 27);
    assert_eq!(findings(&text(&o.stdout)), want);
    // The ring holds the packets: analysing it finds the same.
    let files: Vec<PathBuf> = std::fs::read_dir(&ring)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(analyze_findings(&files[0]), want);
}

#[test]
fn a_piped_capture_into_a_case_directory_is_stored_as_a_tap_run() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("case");
    let init = bin()
        .arg("init")
        .arg(&root)
        .arg("--from-case")
        .arg(gateway("consentry.toml"))
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", text(&init.stderr));
    let o = run_with_file_on_stdin(
        bin()
            .args(["tap", "-r", "-", "--case"])
            .arg(root.join("consentry.toml")),
        &gateway("gateway.pcap"),
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let stored = bin()
        .arg("-C")
        .arg(&root)
        .args(["findings", "--format", "jsonl"])
        .output()
        .unwrap();
    assert_eq!(
        findings(&text(&stored.stdout)),
        analyze_findings(&gateway("gateway.pcap"))
    );
    let verify = bin().arg("verify").arg(&root).output().unwrap();
    assert!(verify.status.success(), "{}", text(&verify.stdout));
    // The run's annotation says where the packets came from.
    let annotations = piped::stored_annotations(&root);
    assert_eq!(annotations.len(), 1, "{annotations:?}");
    assert!(
        annotations[0].contains(" started reading /dev/stdin with case file "),
        "{annotations:?}"
    );
}

#[test]
fn read_takes_one_link_type_and_no_capture_options() {
    // The gateway pcapng has interfaces of two link types, which libpcap's reader
    // refuses: said, naming the input.
    let o = run_with_file_on_stdin(
        bin()
            .args(["tap", "--read", "-", "--no-ring", "--case"])
            .arg(gateway("consentry.toml")),
        &gateway("gateway.pcapng"),
    );
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("/dev/stdin: ")
            && err.contains("different from the type of the first interface"),
        "{err}"
    );
    let o = bin()
        .args(["tap", "--read", "-", "--snaplen", "100", "--case"])
        .arg(gateway("consentry.toml"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("cannot be used with"),
        "{}",
        text(&o.stderr)
    );
}
