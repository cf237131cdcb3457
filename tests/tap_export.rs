//! `consentry tap --udp` and `--tcp`: the receivers of PCAPdroid's UDP and TCP
//! exporters. The tests send a capture the way PCAPdroid does to a tap on 127.0.0.1
//! — over UDP the file's header in one datagram, then one record or block per
//! datagram, with a bad datagram among them; over TCP a connection per capture, the
//! file as written, in reads of any size, one connection broken off — and the
//! findings must be the ones `analyze` gives for the file. Needs no capture
//! privileges.

#![cfg(feature = "live")]

#[path = "common/piped.rs"]
mod piped;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_consentry"))
}

fn captures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("captures")
}

fn findings(jsonl: &str) -> BTreeSet<String> {
    piped::findings_without_run_ids(jsonl)
}

fn analyze(capture: &Path, case: &Path) -> BTreeSet<String> {
    let o = bin()
        .arg("analyze")
        .arg(capture)
        .arg("--case")
        .arg(case)
        .args(["--format", "jsonl"])
        .output()
        .unwrap();
    assert!(o.status.success());
    findings(&String::from_utf8_lossy(&o.stdout))
}

/// The datagrams PCAPdroid's exporter sends for a pcapng file: the section header
/// and interface blocks in one, then a block per datagram.
fn pcapng_datagrams(file: &[u8]) -> Vec<Vec<u8>> {
    let mut blocks = Vec::new();
    let mut at = 0;
    while at + 8 <= file.len() {
        let len = u32::from_le_bytes(file[at + 4..at + 8].try_into().unwrap()) as usize;
        blocks.push(file[at..at + len].to_vec());
        at += len;
    }
    let kind = |b: &[u8]| u32::from_le_bytes(b[..4].try_into().unwrap());
    let preamble = blocks
        .iter()
        .take_while(|b| matches!(kind(b), 0x0A0D_0D0A | 1))
        .count();
    let mut datagrams = vec![blocks[..preamble].concat()];
    datagrams.extend(blocks.into_iter().skip(preamble));
    datagrams
}

/// The records of a little-endian pcap file, one per datagram, without the header
/// (a collector started after the app).
fn pcap_records(file: &[u8]) -> Vec<Vec<u8>> {
    let mut records = Vec::new();
    let mut at = 24;
    while at + 16 <= file.len() {
        let len = u32::from_le_bytes(file[at + 8..at + 12].try_into().unwrap()) as usize;
        records.push(file[at..at + 16 + len].to_vec());
        at += 16 + len;
    }
    records
}

/// A tap receiving PCAPdroid's UDP export on 127.0.0.1, port 0, once it says so:
/// it, its standard error and the port it bound.
fn start_tap(
    case: &Path,
    ring: &Path,
    extra: &[&str],
) -> (Child, BufReader<std::process::ChildStderr>, u16) {
    start_receiver("udp", case, ring, extra)
}

/// A tap receiving PCAPdroid's `transport` ("udp", "tcp") export on 127.0.0.1,
/// port 0, once it says so: it, its standard error and the port it bound.
fn start_receiver(
    transport: &str,
    case: &Path,
    ring: &Path,
    extra: &[&str],
) -> (Child, BufReader<std::process::ChildStderr>, u16) {
    let mut child = bin()
        .args(["tap", &format!("--{transport}"), "127.0.0.1:0"])
        .args(["--format", "jsonl"])
        .arg("--case")
        .arg(case)
        .arg("--ring-dir")
        .arg(ring)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let key = format!(
        "receiving PCAPdroid's {} export on 127.0.0.1:",
        transport.to_uppercase()
    );
    let port = loop {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "the tap ended");
        if let Some((_, rest)) = line.split_once(key.as_str()) {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            break digits.parse::<u16>().unwrap();
        }
    };
    assert_ne!(port, 0, "the port bound is printed");
    (child, stderr, port)
}

/// Stops the tap (SIGTERM) once it has had time to read what was sent: its findings
/// and the rest of its standard error.
fn stop(
    mut child: Child,
    mut stderr: BufReader<std::process::ChildStderr>,
) -> (BTreeSet<String>, String) {
    // Loopback loses no datagram; reading them takes milliseconds, this is margin
    // for a loaded machine.
    std::thread::sleep(Duration::from_millis(1500));
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: `kill` on the pid of our own child, which has not been waited for.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the tap did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    stderr.read_to_string(&mut err).unwrap();
    assert!(status.success(), "{err}");
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    (findings(&out), err)
}

/// PCAPdroid's pcapng (apps in custom blocks and comments) over UDP: the findings of
/// the file; a datagram that is not one block is left out and reported; the ring
/// holds the stream.
#[test]
fn pcapdroid_pcapng_over_udp_gives_the_findings_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("ring");
    let capture = captures().join("pcapdroid/pcapdroid.pcapng");
    let case = captures().join("pcapdroid/consentry.toml");
    let (child, stderr, port) = start_tap(&case, &ring, &["--udp-sender", "127.0.0.1"]);
    let phone = UdpSocket::bind("127.0.0.1:0").unwrap();
    let datagrams = pcapng_datagrams(&std::fs::read(&capture).unwrap());
    for (i, d) in datagrams.iter().enumerate() {
        phone.send_to(d, ("127.0.0.1", port)).unwrap();
        if i == 3 {
            phone
                .send_to(&d[..d.len() - 4], ("127.0.0.1", port))
                .unwrap();
        }
    }
    let (got, err) = stop(child, stderr);
    let want = analyze(&capture, &case);
    assert_eq!(want.len(), 4);
    assert_eq!(got, want, "{err}");
    let total = datagrams.len() + 1;
    assert!(
        err.contains(&format!("UDP 127.0.0.1:{port}: {total} datagrams received")),
        "{err}"
    );
    assert!(
        err.contains(
            "1 datagrams dropped, not one record of the stream (the first from 127.0.0.1:"
        ) && err.contains("not whole pcapng blocks)"),
        "{err}"
    );
    assert!(!err.contains("--udp-sender ignored"), "{err}");
    assert_apps_named_and_ring_alike(&err, &ring, &case, &want);
}

/// The PCAPdroid pcapng's apps were named, and the ring's one file gives `want`.
fn assert_apps_named_and_ring_alike(err: &str, ring: &Path, case: &Path, want: &BTreeSet<String>) {
    assert!(
        err.contains("PCAPdroid names the app of 7 exchanges"),
        "{err}"
    );
    let files: Vec<PathBuf> = std::fs::read_dir(ring)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    assert_eq!(&analyze(&files[0], case), want);
}

/// PCAPdroid's pcap with its trailer, received by a collector started after the app
/// (no header datagram): the header is made up, of Ethernet frames because of the
/// trailer, and the findings are the file's.
#[test]
fn pcap_records_without_their_header_are_read_as_pcapdroid_writes_them() {
    let dir = tempfile::tempdir().unwrap();
    let capture = captures().join("pcapdroid/pcapdroid.pcap");
    let case = captures().join("pcapdroid/consentry.toml");
    let (child, stderr, port) = start_tap(&case, &dir.path().join("ring"), &[]);
    let phone = UdpSocket::bind("127.0.0.1:0").unwrap();
    for record in pcap_records(&std::fs::read(&capture).unwrap()) {
        phone.send_to(&record, ("127.0.0.1", port)).unwrap();
    }
    let (got, err) = stop(child, stderr);
    let want = analyze(&capture, &case);
    assert!(!want.is_empty());
    assert_eq!(got, want, "{err}");
    assert!(!err.contains("dropped"), "{err}");
}

/// Datagrams from an address not given with --udp-sender are counted and ignored
/// (here all of them: the sender allowed is ::1, the datagrams come from 127.0.0.1).
#[test]
fn datagrams_of_other_senders_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let capture = captures().join("pcapdroid/pcapdroid.pcap");
    let case = captures().join("pcapdroid/consentry.toml");
    let (child, stderr, port) =
        start_tap(&case, &dir.path().join("ring"), &["--udp-sender", "::1"]);
    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    let records = pcap_records(&std::fs::read(&capture).unwrap());
    for record in &records {
        stranger.send_to(record, ("127.0.0.1", port)).unwrap();
    }
    let (got, err) = stop(child, stderr);
    assert!(got.is_empty(), "{got:?}");
    assert!(
        err.contains(&format!(
            "{} datagrams from senders not given with --udp-sender ignored (the first from 127.0.0.1:",
            records.len()
        )),
        "{err}"
    );
}

/// Off loopback, the senders must be named: anyone else's packets would be evidence.
#[test]
fn udp_off_loopback_needs_its_senders() {
    let o = bin()
        .args(["tap", "--udp", "0.0.0.0:5123", "--case"])
        .arg(captures().join("pcapdroid/consentry.toml"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("give --udp-sender"), "{err}");
}

// --- TCP ------------------------------------------------------------------------

/// A connection to the tap's TCP receiver writing `bytes` in writes of `chunk`
/// bytes, then closing.
fn send_over_tcp(port: u16, bytes: &[u8], chunk: usize) {
    let mut phone = TcpStream::connect(("127.0.0.1", port)).unwrap();
    phone.set_nodelay(true).unwrap();
    for piece in bytes.chunks(chunk) {
        phone.write_all(piece).unwrap();
    }
}

/// PCAPdroid's pcapng (apps in custom blocks and comments) over one TCP connection,
/// written in odd pieces: the findings of the file, and the ring holds the stream.
#[test]
fn pcapdroid_pcapng_over_tcp_gives_the_findings_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("ring");
    let capture = captures().join("pcapdroid/pcapdroid.pcapng");
    let case = captures().join("pcapdroid/consentry.toml");
    let (child, stderr, port) = start_receiver("tcp", &case, &ring, &["--tcp-sender", "127.0.0.1"]);
    send_over_tcp(port, &std::fs::read(&capture).unwrap(), 77);
    let (got, err) = stop(child, stderr);
    let want = analyze(&capture, &case);
    assert_eq!(want.len(), 4);
    assert_eq!(got, want, "{err}");
    assert!(
        err.contains(&format!("TCP 127.0.0.1:{port}: 1 connections received")),
        "{err}"
    );
    assert!(
        !err.contains("broke off") && !err.contains("dropped"),
        "{err}"
    );
    assert_apps_named_and_ring_alike(&err, &ring, &case, &want);
}

/// Two captures on the phone, two connections: the first breaks off in the middle of
/// a record (its rest lost, reported), the second starts with the header again
/// (skipped) and the records from the one cut: one stream, the file's findings.
/// A connection that is no capture breaks off with its reason, and the tap goes on.
#[test]
fn pcap_connections_one_after_the_other_join_into_one_stream() {
    let dir = tempfile::tempdir().unwrap();
    let capture = captures().join("pcapdroid/pcapdroid.pcap");
    let case = captures().join("pcapdroid/consentry.toml");
    let (child, stderr, port) = start_receiver("tcp", &case, &dir.path().join("ring"), &[]);
    let file = std::fs::read(&capture).unwrap();
    let header = &file[..24];
    let records = pcap_records(&file);
    let half = records.len() / 2;
    send_over_tcp(port, b"GET / HTTP/1.1\r\nHost: phone\r\n\r\n", 64);
    let mut first = header.to_vec();
    first.extend(records[..half].concat());
    first.extend_from_slice(&records[half][..20]);
    send_over_tcp(port, &first, 1000);
    let mut second = header.to_vec();
    second.extend(records[half..].concat());
    send_over_tcp(port, &second, 333);
    let (got, err) = stop(child, stderr);
    let want = analyze(&capture, &case);
    assert!(!want.is_empty());
    assert_eq!(got, want, "{err}");
    assert!(
        err.contains(&format!("TCP 127.0.0.1:{port}: 3 connections received")),
        "{err}"
    );
    assert!(
        err.contains(
            "2 connections broke off, what was left of them lost (the first from 127.0.0.1:"
        ) && err.contains(": the connection starts with neither a pcap nor a pcapng header)"),
        "{err}"
    );
}

/// A connection left open and quiet (the phone lost the Wi-Fi in the middle of a
/// record) gives way to the next capture's connection once that one comes: one
/// stream, the file's findings, the lost record reported.
#[test]
fn a_quiet_connection_gives_way_to_a_newer_one() {
    let dir = tempfile::tempdir().unwrap();
    let capture = captures().join("pcapdroid/pcapdroid.pcap");
    let case = captures().join("pcapdroid/consentry.toml");
    let (child, stderr, port) = start_receiver("tcp", &case, &dir.path().join("ring"), &[]);
    let file = std::fs::read(&capture).unwrap();
    let records = pcap_records(&file);
    let half = records.len() / 2;
    let mut lost = TcpStream::connect(("127.0.0.1", port)).unwrap();
    lost.write_all(&file[..24]).unwrap();
    lost.write_all(&records[..half].concat()).unwrap();
    lost.write_all(&records[half][..20]).unwrap();
    let mut second = file[..24].to_vec();
    second.extend(records[half..].concat());
    send_over_tcp(port, &second, 4096);
    // The first connection stays open; the receiver looks for a newer one once it
    // has been quiet for a second.
    std::thread::sleep(Duration::from_millis(2500));
    let (got, err) = stop(child, stderr);
    drop(lost);
    assert_eq!(got, analyze(&capture, &case), "{err}");
    assert!(
        err.contains(&format!("TCP 127.0.0.1:{port}: 2 connections received")),
        "{err}"
    );
    assert!(
        err.contains(
            "1 connections broke off, what was left of them lost (the first from 127.0.0.1:"
        ) && err.contains(": quiet in the middle of a record when a newer connection came)"),
        "{err}"
    );
}

/// Connections from an address not given with --tcp-sender are closed and counted.
#[test]
fn tcp_connections_of_other_senders_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let capture = captures().join("pcapdroid/pcapdroid.pcap");
    let case = captures().join("pcapdroid/consentry.toml");
    let (child, stderr, port) = start_receiver(
        "tcp",
        &case,
        &dir.path().join("ring"),
        &["--tcp-sender", "::1"],
    );
    let mut stranger = TcpStream::connect(("127.0.0.1", port)).unwrap();
    // Closed at once: the writes fail or vanish, the read sees the end.
    let _ = stranger.write_all(&std::fs::read(&capture).unwrap());
    let mut rest = Vec::new();
    let _ = stranger.read_to_end(&mut rest);
    let (got, err) = stop(child, stderr);
    assert!(got.is_empty(), "{got:?}");
    assert!(
        err.contains("1 connections from senders not given with --tcp-sender closed (the first from 127.0.0.1:"),
        "{err}"
    );
}

/// Off loopback, the senders must be named.
#[test]
fn tcp_off_loopback_needs_its_senders() {
    let o = bin()
        .args(["tap", "--tcp", "0.0.0.0:5124", "--case"])
        .arg(captures().join("pcapdroid/consentry.toml"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("give --tcp-sender"), "{err}");
}
