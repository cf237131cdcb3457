//! `consentry tap --read -`: the tap fed a capture as another program writes it (a
//! gateway's `tcpdump -w -` over ssh), here the gateway capture piped in. Needs no
//! capture privileges. The findings must be the ones `analyze` gives for the file,
//! the evidence ring must hold every packet, and a run into a case directory must
//! store them as a live run.

#![cfg(feature = "live")]

#[path = "common/late_secrets.rs"]
mod late_secrets;
#[path = "common/piped.rs"]
mod piped;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_consentry"))
}

/// `tap --read -` without a ring, printing JSON lines, with the case file `case`.
fn tap_stdin_jsonl(case: &Path) -> Command {
    let mut tap = bin();
    tap.args([
        "tap",
        "--read",
        "-",
        "--no-ring",
        "--format",
        "jsonl",
        "--case",
    ])
    .arg(case);
    tap
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

fn findings(jsonl: &str) -> BTreeSet<String> {
    piped::findings_without_run_ids(jsonl)
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

/// `upload.pcap.gz` piped in as it is (gzip, as `tcpdump -w - | gzip` would send it):
/// the tap inflates it and searches request bodies past the 8 MiB it keeps, as
/// `analyze` does (`make_upload.py`: an identifier past the mark in each of two 9 MiB
/// uploads).
#[test]
fn a_piped_gzipped_capture_of_large_uploads_gives_the_findings_past_the_analysis_cap() {
    let dir = tempfile::tempdir().unwrap();
    let o = run_with_file_on_stdin(
        bin()
            .args(["tap", "--read", "-", "--case"])
            .arg(gateway("consentry.toml"))
            .args(["--format", "jsonl", "--ring-dir"])
            .arg(dir.path().join("ring")),
        &gateway("upload.pcap.gz"),
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let want = analyze_findings(&gateway("upload.pcap.gz"));
    assert_eq!(want.len(), 2);
    assert!(
        want.iter()
            .all(|f| f.contains("\"where\":\"body-beyond-cap:")),
        "{want:?}"
    );
    assert_eq!(findings(&text(&o.stdout)), want);
}

/// `consentry init DIR/case --from-case` the gateway's case file: the case directory.
fn gateway_case_dir(dir: &Path) -> PathBuf {
    let root = dir.join("case");
    let init = bin()
        .arg("init")
        .arg(&root)
        .arg("--from-case")
        .arg(gateway("consentry.toml"))
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", text(&init.stderr));
    root
}

#[test]
fn a_piped_capture_into_a_case_directory_is_stored_as_a_tap_run() {
    let dir = tempfile::tempdir().unwrap();
    let root = gateway_case_dir(dir.path());
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

/// Starts `tap` (a `tap --read -`; its standard error as the caller set it) with the
/// first 3 000 bytes of the gateway capture on its standard input, 17 whole packets
/// and part of the 18th, and keeps that open: a stream gone quiet. Returns the
/// child, its standard input and the first line it printed (a finding).
fn start_quiet_stream(
    tap: &mut Command,
) -> (std::process::Child, std::process::ChildStdin, String) {
    use std::io::{BufRead, Write};
    let mut child = tap
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let whole = std::fs::read(gateway("gateway.pcap")).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&whole[..3000]).unwrap();
    stdin.flush().unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    (child, stdin, first)
}

/// A tap into a case directory commits its appends in groups, at least every tenth
/// of a second: another process sees a finding soon after it is printed, also when
/// the traffic then stops (the pipe stays open, nothing more comes).
#[test]
fn a_quiet_stream_into_a_case_directory_has_its_findings_stored_while_it_runs() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let root = gateway_case_dir(dir.path());
    let mut tap = tap_stdin_jsonl(&root.join("consentry.toml"));
    tap.stderr(Stdio::null());
    let (mut child, stdin, printed) = start_quiet_stream(&mut tap);
    let printed_at = Instant::now();
    let id = |line: &str| {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        v["id"].as_str().unwrap().to_string()
    };
    let stored = loop {
        let o = bin()
            .arg("-C")
            .arg(&root)
            .args(["findings", "--format", "jsonl"])
            .output()
            .unwrap();
        let stored: Vec<String> = text(&o.stdout).lines().map(id).collect();
        if !stored.is_empty() || printed_at.elapsed() > Duration::from_secs(10) {
            break stored;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(stored, [id(&printed)], "the printed finding, stored");
    assert!(
        child.try_wait().unwrap().is_none(),
        "the tap still runs, its stream open"
    );
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

/// `tap --read -` of `capture` (under `captures/`) with `case` and `extra` arguments,
/// its ring in `ring`: the findings (without run ids) and standard error.
fn tap_stream(
    capture: &str,
    case: &str,
    ring: &Path,
    extra: &[&str],
) -> (BTreeSet<String>, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    let o = run_with_file_on_stdin(
        bin()
            .args(["tap", "--read", "-", "--format", "jsonl", "--case"])
            .arg(root.join(case))
            .arg("--ring-dir")
            .arg(ring)
            .args(extra),
        &root.join(capture),
    );
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    (findings(&text(&o.stdout)), err)
}

/// `analyze` of `capture` (a path, or one under `captures/`) with `case` and `extra`.
fn analyze_with(capture: &Path, case: &str, extra: &[&str]) -> BTreeSet<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    let o = bin()
        .arg("analyze")
        .arg(root.join(capture))
        .arg("--case")
        .arg(root.join(case))
        .args(["--format", "jsonl"])
        .args(extra)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    findings(&text(&o.stdout))
}

/// The one file of a ring directory.
fn ring_file(ring: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(ring)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files.into_iter().next().unwrap()
}

/// The stream is read by consentry's own reader, as `analyze` reads a file: the TLS
/// key log in a pcapng's Decryption Secrets Block decrypts the stream's TLS (libpcap
/// drops those blocks), and the ring keeps the block, so its file decrypts alone.
#[test]
fn secrets_in_a_piped_pcapng_decrypt_its_tls_and_stay_with_the_ring() {
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("ring");
    let (got, err) = tap_stream("tls/tls-dsb.pcapng", "tls/consentry.toml", &ring, &[]);
    let want = analyze_with(Path::new("tls/tls-dsb.pcapng"), "tls/consentry.toml", &[]);
    assert_eq!(want.len(), 13);
    assert_eq!(got, want);
    assert!(
        err.contains("/dev/stdin: 1 decryption secrets blocks, 35 TLS key log lines (35 used, 0 not understood)"),
        "{err}"
    );
    assert_eq!(
        analyze_with(&ring_file(&ring), "tls/consentry.toml", &[]),
        want
    );
}

/// A stream's secrets block after the handshakes it is for: the tap, reading once,
/// says how many connections got their keys too late; the ring keeps the block where
/// it came, so `analyze --secrets-first` of the ring file decrypts them all.
#[test]
fn secrets_late_in_a_stream_are_named_and_the_ring_file_read_secrets_first_decrypts() {
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("ring");
    let (_tmp, late) = late_secrets::with_late_secrets(|packets| packets);
    let (got, err) = tap_stream(late.to_str().unwrap(), "tls/consentry.toml", &ring, &[]);
    let want = analyze_with(Path::new("tls/tls-dsb.pcapng"), "tls/consentry.toml", &[]);
    assert!(got.len() < want.len(), "{got:?}");
    assert!(
        err.contains("/dev/stdin: 11 TLS connections were not decrypted: their keys came after their handshakes;"),
        "{err}"
    );
    let ring_file = ring_file(&ring);
    assert!(analyze_with(&ring_file, "tls/consentry.toml", &[]).len() < want.len());
    assert_eq!(
        analyze_with(&ring_file, "tls/consentry.toml", &["--secrets-first"]),
        want
    );
}

/// PCAPdroid's pcapng names each packet's app through its custom blocks and packet
/// comments (libpcap drops both): only the case's app is judged unless --all-apps,
/// and the ring keeps blocks and comments, so its file names the same apps.
#[test]
fn a_piped_pcapdroid_capture_judges_the_case_app_and_its_ring_keeps_the_apps() {
    let dir = tempfile::tempdir().unwrap();
    let case = "pcapdroid/consentry.toml";
    let ring = dir.path().join("ring");
    let (got, err) = tap_stream("pcapdroid/pcapdroid.pcapng", case, &ring, &[]);
    let want = analyze_with(Path::new("pcapdroid/pcapdroid.pcapng"), case, &[]);
    assert_eq!(want.len(), 4);
    assert_eq!(got, want);
    assert!(
        err.contains(
            "0 exchanges of unknown clients and 3 of other apps than the case's not analysed"
        ) && err.contains("PCAPdroid names the app of 7 exchanges: com.example.shop 3"),
        "{err}"
    );
    assert_eq!(analyze_with(&ring_file(&ring), case, &[]), want);
    let all = dir.path().join("all");
    let (got, err) = tap_stream("pcapdroid/pcapdroid.pcapng", case, &all, &["--all-apps"]);
    let want = analyze_with(
        Path::new("pcapdroid/pcapdroid.pcapng"),
        case,
        &["--all-apps"],
    );
    assert_eq!(want.len(), 7);
    assert_eq!(got, want);
    assert!(err.contains("judged all the same (--all-apps)"), "{err}");
}

/// Interfaces of two link types (Ethernet and SLL2, which libpcap's reader refuses
/// in one stream): read, and kept in the ring as two interfaces.
#[test]
fn a_piped_pcapng_of_two_link_types_is_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let case = "gateway/consentry.toml";
    let ring = dir.path().join("ring");
    let (got, err) = tap_stream("gateway/gateway.pcapng", case, &ring, &[]);
    let want = analyze_findings(&gateway("gateway.pcapng"));
    assert_eq!(want.len(), 27);
    assert_eq!(got, want);
    assert!(err.contains("369 packets"), "{err}");
    assert_eq!(analyze_with(&ring_file(&ring), case, &[]), want);
}

/// --bpf filters a stream as libpcap filters an interface, compiled for each link
/// type: `tcp port 80` leaves the 36 frames tshark also counts (`-Y 'tcp.port==80 &&
/// !vlan'`: BPF's `tcp` does not look inside VLAN tags), and the ring holds those.
#[test]
fn a_capture_filter_applies_to_each_link_type_of_a_stream() {
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("ring");
    let (_, err) = tap_stream(
        "gateway/gateway.pcapng",
        "gateway/consentry.toml",
        &ring,
        &["--bpf", "tcp port 80"],
    );
    assert!(err.contains(" 36 packets ("), "{err}");
    assert!(err.contains("36 packets kept as evidence"), "{err}");
    let o = run_with_file_on_stdin(
        bin()
            .args([
                "tap",
                "--read",
                "-",
                "--no-ring",
                "--bpf",
                "tcp port nonsense",
                "--case",
            ])
            .arg(gateway("consentry.toml")),
        &gateway("gateway.pcapng"),
    );
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("/dev/stdin: --bpf \"tcp port nonsense\" for link type 1: "),
        "{err}"
    );
}

#[test]
fn read_takes_no_capture_options_and_says_what_is_no_capture() {
    for option in [["--snaplen", "100"], ["--buffer-mib", "8"]] {
        let o = bin()
            .args(["tap", "--read", "-"])
            .args(option)
            .arg("--case")
            .arg(gateway("consentry.toml"))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2));
        assert!(
            text(&o.stderr).contains("cannot be used with"),
            "{option:?}: {}",
            text(&o.stderr)
        );
    }
    let o = piped::run_with_stdin(
        bin()
            .args(["tap", "--read", "-", "--no-ring", "--case"])
            .arg(gateway("consentry.toml")),
        b"hello, not a capture".to_vec(),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("/dev/stdin: not a pcap or pcapng file"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn the_capture_buffer_takes_1_to_2047_mib() {
    // libpcap takes the size in bytes as an int.
    for size in ["0", "2048"] {
        let o = bin()
            .args(["tap", "--interface", "lo", "--buffer-mib", size, "--case"])
            .arg(gateway("consentry.toml"))
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2));
        assert!(
            text(&o.stderr).contains("--buffer-mib"),
            "{size}: {}",
            text(&o.stderr)
        );
    }
}

/// A stream cut in the middle of a block: everything before the cut is read, and the
/// warning names the byte offset, as `analyze` does for a file.
#[test]
fn a_stream_cut_short_is_read_up_to_the_cut() {
    let whole = std::fs::read(gateway("gateway.pcapng")).unwrap();
    let o = piped::run_with_stdin(
        &mut tap_stdin_jsonl(&gateway("consentry.toml")),
        whole[..5000].to_vec(),
    );
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("/dev/stdin: the stream was cut short in a block at byte offset 4624"),
        "{err}"
    );
    assert!(err.contains("18 packets"), "{err}");
}

/// A stream that goes quiet does not hold the tap: its packets so far reach the
/// ring's file on disk within the ring's flush second, and SIGTERM stops it at once
/// (the read waits on a thread of its own), with the summary and the findings.
#[test]
fn a_quiet_stream_is_flushed_and_stops_at_sigterm() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("ring");
    let mut tap = bin();
    tap.args(["tap", "--read", "-", "--case"])
        .arg(gateway("consentry.toml"))
        .arg("--ring-dir")
        .arg(&ring)
        .stderr(Stdio::piped());
    let (mut child, stdin, first) = start_quiet_stream(&mut tap);
    assert!(
        first.contains("share-before-consent sdk.e.qq.com"),
        "{first}"
    );
    // The ring's buffer reaches the disk while nothing more comes.
    let deadline = Instant::now() + Duration::from_secs(10);
    let on_disk = loop {
        let size: u64 = std::fs::read_dir(&ring)
            .map(|d| d.map(|e| e.unwrap().metadata().unwrap().len()).sum())
            .unwrap_or(0);
        if size > 2000 || Instant::now() > deadline {
            break size;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(on_disk > 2000, "ring on disk: {on_disk} bytes");
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    let sent = Instant::now();
    // SAFETY: `kill` on the pid of our own child, which has not been waited for.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "the tap did not stop at SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(stdin);
    assert!(status.success());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains(" 17 packets ("), "{err}");
    assert!(!err.contains("cut short"), "a stop is no cut: {err}");
}

/// What the tap met reading an exchange is said the first time a kind is met, and
/// counted in the run's summary: `wsdeflate.pcap`'s compressed WebSocket message that
/// inflates past the 8 MiB kept (`ws-message-limit`). Its detail only with `--reveal`.
#[test]
fn anomalies_are_said_once_per_kind_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let case = "gateway/consentry.toml";
    let (_, err) = tap_stream("gateway/wsdeflate.pcap", case, &dir.path().join("a"), &[]);
    let said: Vec<&str> = err.lines().filter(|l| l.contains(" anomaly ")).collect();
    assert_eq!(said.len(), 1, "{err}");
    assert!(
        said[0].starts_with("consentry: anomaly ws-message-limit (source) in exchange x-")
            && said[0].ends_with(" to ads.tracker.example; later ones of this kind are counted"),
        "{err}"
    );
    assert!(
        err.contains("; anomalies of the exchanges analysed: 1 (ws-message-limit 1)\n"),
        "{err}"
    );
    let (_, err) = tap_stream(
        "gateway/wsdeflate.pcap",
        case,
        &dir.path().join("b"),
        &["--reveal"],
    );
    assert!(
        err.contains(" to ads.tracker.example: WebSocket message of 27569 bytes on the wire;"),
        "{err}"
    );
}

/// The finding lines name a receiver whose name carries the data (a DNS query for
/// `<MD5 of the IMEI>.b.metrics-sdk.example`) without the labels that carry it, as
/// every log line keeps identifier values out; with `--reveal`, and in the findings
/// written out, the name is whole.
#[test]
fn finding_lines_mask_the_labels_of_a_name_that_carry_data() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    let lines = |ring: &str, extra: &[&str]| {
        let o = run_with_file_on_stdin(
            bin()
                .args(["tap", "--read", "-", "--case"])
                .arg(root.join("rawtcp/consentry.toml"))
                .arg("--ring-dir")
                .arg(dir.path().join(ring))
                .args(extra),
            &root.join("rawtcp/rawtcp.pcap"),
        );
        assert!(o.status.success(), "{}", text(&o.stderr));
        (text(&o.stdout), text(&o.stderr))
    };
    let md5 = "0eaed834a1e6f4b2bf0c024e0013dea1";
    let sha1 = "4dfaa92388699ac6539885aef1719293879985bf";
    let (out, err) = lines("a", &[]);
    let names: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|host| host.ends_with("metrics-sdk.example"))
        .collect();
    assert_eq!(
        names,
        ["•••.b.metrics-sdk.example", "•••.t.metrics-sdk.example"],
        "{out}"
    );
    assert!(!out.contains(md5) && !out.contains(sha1), "{out}");
    assert!(!err.contains(md5) && !err.contains(sha1), "{err}");
    let (out, _) = lines("b", &["--reveal"]);
    assert!(
        out.contains(&format!(" {md5}.b.metrics-sdk.example imei(md5)")),
        "{out}"
    );
    let (json, _) = lines("c", &["--format", "jsonl"]);
    assert!(json.contains(&format!("\"host\":\"{md5}.b.metrics-sdk.example\"")));
}
