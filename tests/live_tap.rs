//! The live tap end to end: `consentry tap` captures on the loopback interface while
//! this test sends an HTTP request carrying a case identifier to a server of its own
//! on 127.0.0.1; the finding must come out, and the evidence ring must hold the
//! packets (analysing the ring file gives the same finding). A second test sends the
//! request inside VXLAN datagrams to a port `--tunnel-port` names; a third keeps a
//! connection in a protocol no parser reads open and quiet, and its login must be
//! reported before it closes. A burst of small datagrams must be captured without a
//! kernel drop, and a datagram sent just before the stop still counted.
//!
//! Capturing needs CAP_NET_RAW (root in CI). Without it the test fails with a message
//! saying so, unless `CONSENTRY_SKIP_LIVE=1` says to skip it.

#![cfg(feature = "live")]

mod common;
#[path = "common/piped.rs"]
mod piped;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::thread;
use std::time::Duration;

use common::live::{interrupt_and_read, start_tap, start_tap_filtered, start_tap_reading_stderr};

const AD_ID: &str = "5f3c9a1e-7b2d-4e8f-9a6b-1c2d3e4f5a6b";

fn case_file(dir: &Path) -> PathBuf {
    let path = dir.join("consentry.toml");
    std::fs::write(
        &path,
        format!(
            r#"[case]
id = "live-tap-test"

[app]
name = "Loopback"
first_party = ["example-shop.com"]

[[device]]
id = "loopback-phone"
addresses = ["127.0.0.1"]
[device.identifiers]
advertising_id = "{AD_ID}"
"#
        ),
    )
    .unwrap();
    path
}

/// A one-request-per-connection HTTP server on 127.0.0.1; returns its port.
/// `consentry init ROOT --from-case SOURCE` in `dir`: the case directory and its case file.
fn init_case_dir(dir: &Path, source: &Path) -> (PathBuf, PathBuf) {
    let root = dir.join("case");
    let init = Command::new(env!("CARGO_BIN_EXE_consentry"))
        .arg("init")
        .arg(&root)
        .arg("--from-case")
        .arg(source)
        .output()
        .unwrap();
    assert!(init.status.success(), "init: {init:?}");
    let case = root.join("consentry.toml");
    (root, case)
}

/// `consentry -C ROOT ARGS…`.
fn consentry_in(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_consentry"))
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .unwrap()
}

/// Stops a tap as a user would: SIGINT.
fn interrupt(child: &Child) {
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
}

/// Lets the last packets (FIN/ACK) arrive, stops the tap and checks it exited cleanly.
fn stop(child: &mut Child) {
    thread::sleep(Duration::from_millis(800));
    interrupt(child);
    let status = child.wait().unwrap();
    assert!(status.success(), "tap exited with {status}");
}

/// Longer than the ring's flush interval, with a margin for a loaded machine.
fn live_flush_wait() -> Duration {
    consentry::source::live::RING_FLUSH + Duration::from_millis(1500)
}

/// The pcapng files in `dir` (the evidence ring).
fn pcapng_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcapng"))
        .collect()
}

fn serve() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut buf = [0u8; 4096];
            let mut got = Vec::new();
            // The head, then as many body bytes as it announces.
            loop {
                if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if got.len() >= end + 4 + length {
                        break;
                    }
                }
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    port
}

#[test]
fn tap_on_loopback_finds_the_identifier_and_keeps_the_packets() {
    let dir = tempfile::tempdir().unwrap();
    let case = case_file(dir.path());
    let ring = dir.path().join("evidence");
    let port = serve();
    let Some(mut child) = start_tap(port, &case, &["--ring-dir".as_ref(), ring.as_os_str()]) else {
        return;
    };

    let body = format!(
        r#"{{"event":"app_open","device":{{"ifa":"{AD_ID}"}},"pad":"xxxxxxxxxxxxxxxxxxxx"}}"#
    );
    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        client,
        "POST /v1/events HTTP/1.1\r\nHost: graph.facebook.com\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = Vec::new();
    client.read_to_end(&mut response).unwrap();
    assert!(response.starts_with(b"HTTP/1.1 200"));
    drop(client);

    // While the tap still runs, the packets are already on disk (the ring's buffer is
    // flushed every second): a crash now would not lose them.
    thread::sleep(live_flush_wait());
    let on_disk: Vec<u8> = pcapng_files(&ring)
        .iter()
        .flat_map(|f| std::fs::read(f).unwrap())
        .collect();
    assert!(
        on_disk.windows(AD_ID.len()).any(|w| w == AD_ID.as_bytes()),
        "the request is not in the ring file while the tap runs"
    );

    // Let the last packets (FIN/ACK) arrive, then stop the tap as a user would.
    thread::sleep(Duration::from_millis(800));
    let stdout = interrupt_and_read(&mut child);

    let has_finding = |jsonl: &str| {
        jsonl.lines().any(|l| {
            l.contains("\"rule\":\"share-before-consent\"")
                && l.contains("\"type\":\"advertising_id\"")
                && l.contains("\"host\":\"graph.facebook.com\"")
                && l.contains("\"device\":\"loopback-phone\"")
        })
    };
    assert!(
        has_finding(&stdout),
        "no finding printed by the tap: {stdout}"
    );

    // The evidence ring holds the packets: analysing it finds the same transmission.
    let files = pcapng_files(&ring);
    assert_eq!(files.len(), 1, "one ring file expected: {files:?}");
    let analysed = Command::new(env!("CARGO_BIN_EXE_consentry"))
        .arg("analyze")
        .arg(&files[0])
        .arg("--case")
        .arg(&case)
        .args(["--format", "jsonl"])
        .output()
        .unwrap();
    let analysed = String::from_utf8_lossy(&analysed.stdout);
    assert!(
        has_finding(&analysed),
        "the ring file does not give the finding: {analysed}"
    );
}

/// A push SDK's own protocol on a connection left open and quiet: the tap reports
/// its login while the connection stays open, though no packet follows (its clock
/// runs on while the interface is quiet), not when the connection closes.
#[test]
fn a_quiet_connection_in_a_protocol_no_parser_reads_is_reported_while_it_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let case = case_file(dir.path());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        // Reads whatever comes and keeps the connection open until the client ends it.
        if let Ok((mut s, _)) = listener.accept() {
            let _ = s.write_all(b"\x00\x02OK\n");
            let _ = std::io::copy(&mut s, &mut std::io::sink());
        }
    });
    let Some(mut child) = start_tap(port, &case, &["--no-ring".as_ref()]) else {
        return;
    };
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    client
        .write_all(format!("\x00\x01LOGIN ifa={AD_ID}\n").as_bytes())
        .unwrap();
    let mut greeting = [0u8; 4];
    client.read_exact(&mut greeting).unwrap();
    // A quiet second, the table's once-a-second sweep and the clock's margin of a
    // second: well within 15 s on a loaded machine.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut seen = Vec::new();
    let found = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if line.contains("\"rule\":\"share-before-consent\"")
                    && line.contains("\"type\":\"advertising_id\"")
                    && line.contains("\"where\":\"payload\"")
                {
                    break true;
                }
                seen.push(line);
            }
            Err(_) => break false,
        }
    };
    // Only now does the client close.
    drop(client);
    interrupt_and_read(&mut child);
    assert!(
        found,
        "no finding while the connection was open; the tap printed: {seen:?}"
    );
}

#[test]
fn tap_into_a_case_directory_stores_the_finding() {
    let dir = tempfile::tempdir().unwrap();
    let source = case_file(dir.path());
    let (root, case) = init_case_dir(dir.path(), &source);
    assert!(case.is_file());
    let port = serve();
    // A key log the tap follows; a line is appended while it runs.
    let key_log = dir.path().join("keys.log");
    let secret = |n: u8| {
        format!(
            "CLIENT_RANDOM {} {}\n",
            format!("{n:02x}").repeat(32),
            "aa".repeat(48)
        )
    };
    std::fs::write(&key_log, secret(1)).unwrap();
    let Some(mut child) = start_tap(
        port,
        &case,
        &[
            "--no-ring".as_ref(),
            "--keylog".as_ref(),
            key_log.as_os_str(),
        ],
    ) else {
        return;
    };
    std::fs::write(&key_log, secret(1) + &secret(2)).unwrap();
    let body = format!(r#"{{"device":{{"ifa":"{AD_ID}"}},"pad":"xxxxxxxxxxxxxxxxxxxxxxxx"}}"#);
    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        client,
        "POST /v1/events HTTP/1.1\r\nHost: graph.facebook.com\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = Vec::new();
    client.read_to_end(&mut response).unwrap();
    drop(client);
    stop(&mut child);

    let findings = consentry_in(&root, &["findings", "--format", "jsonl"]);
    let findings = String::from_utf8_lossy(&findings.stdout);
    assert!(
        findings.lines().any(|l| l.contains("share-before-consent")
            && l.contains("graph.facebook.com")
            && l.contains("loopback-phone")),
        "the stored findings lack the tap's: {findings}"
    );
    let verify = consentry_in(&root, &["verify"]);
    assert!(verify.status.success(), "verify failed: {verify:?}");
    // The run's annotation names the case file it judged by, stored as evidence.
    use sha2::Digest;
    let sha: String = sha2::Sha256::digest(std::fs::read(&case).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let annotations = piped::stored_annotations(&root);
    assert_eq!(annotations.len(), 2, "{annotations:?}");
    assert!(
        annotations[0].contains(&format!(" started on lo with case file {}\"", &sha[..16])),
        "{annotations:?}"
    );
    assert!(root
        .join("evidence")
        .join(format!("{}-consentry.toml", &sha[..16]))
        .is_file());
    // The key log is stored as it stood when the tap stopped, with both lines.
    let key_log_text = std::fs::read(&key_log).unwrap();
    let key_sha: String = sha2::Sha256::digest(&key_log_text)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(
        annotations[1].contains(&format!(" stopped with key log {}\"", &key_sha[..16])),
        "{annotations:?}"
    );
    assert_eq!(
        std::fs::read(
            root.join("evidence")
                .join(format!("{}-keys.log", &key_sha[..16]))
        )
        .unwrap(),
        key_log_text
    );
}

#[test]
fn ring_files_of_a_tap_into_a_case_directory_are_recorded_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let source = case_file(dir.path());
    let (root, case) = init_case_dir(dir.path(), &source);
    let port = serve();
    // Files of 64 KiB (the least `--ring-file-mib 0` gives), two kept: the request
    // below fills several, so the ring rotates and deletes.
    let ring_args = ["--ring-file-mib", "0", "--ring-files", "2"];
    let ring_args: Vec<&std::ffi::OsStr> = ring_args.iter().map(|a| a.as_ref()).collect();
    let Some(mut child) = start_tap(port, &case, &ring_args) else {
        return;
    };
    let body = format!(
        r#"{{"device":{{"ifa":"{AD_ID}"}},"pad":"{}"}}"#,
        "x".repeat(300_000)
    );
    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    client.set_nodelay(true).unwrap();
    write!(
        client,
        "POST /v1/events HTTP/1.1\r\nHost: graph.facebook.com\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    for chunk in body.as_bytes().chunks(1000) {
        client.write_all(chunk).unwrap();
        // One packet each: without a pause, Linux coalesces the writes (autocorking).
        thread::sleep(Duration::from_millis(1));
    }
    let mut response = Vec::new();
    client.read_to_end(&mut response).unwrap();
    drop(client);
    stop(&mut child);

    let consentry = |args: &[&str]| consentry_in(&root, args);
    let ring = pcapng_files(&root.join("evidence"));
    assert_eq!(ring.len(), 2, "two ring files kept: {ring:?}");
    let verify = consentry(&["verify"]);
    let out = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "verify failed: {out}");
    // The two ring files and the case file the run judged by.
    assert!(out.contains(" 3 evidence files"), "{out}");

    // The store names every file the ring closed, and the ones it deleted.
    let db = rusqlite::Connection::open(root.join(".consentry/store.db")).unwrap();
    let count = |event: &str| -> i64 {
        db.query_row(
            "SELECT COUNT(*) FROM records WHERE kind = 'evidence' AND json_extract(CAST(body AS TEXT), '$.data.event') = ?1",
            [event],
            |r| r.get(0),
        )
        .unwrap()
    };
    let (closed, removed) = (count("closed"), count("removed"));
    assert!(removed >= 1, "the ring rotated files out");
    assert_eq!(closed, removed + 2);

    // The stored exchange names the ring file(s) holding its packets, by the names
    // the evidence records give.
    let exchanges = consentry(&["exchanges", "--format", "jsonl"]);
    let exchanges = String::from_utf8_lossy(&exchanges.stdout);
    let post = exchanges
        .lines()
        .find(|l| l.contains("/v1/events"))
        .unwrap_or_else(|| panic!("no stored exchange: {exchanges}"));
    let locator: serde_json::Value = serde_json::from_str(post).unwrap();
    let locator = locator["locator"].as_str().unwrap().to_string();
    let recorded: Vec<String> = db
        .prepare("SELECT json_extract(CAST(body AS TEXT), '$.data.path') FROM records WHERE kind = 'evidence'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let first_file = locator.split(' ').next().unwrap();
    assert!(
        first_file.starts_with("tap-")
            && recorded
                .iter()
                .any(|p| p == &format!("evidence/{first_file}"))
            && locator.contains(" frame"),
        "{locator} does not name a recorded ring file: {recorded:?}"
    );

    // A kept ring file altered: verify names it.
    let victim = &ring[0];
    let mut bytes = std::fs::read(victim).unwrap();
    let last = bytes.len() - 40;
    bytes[last] ^= 0x20;
    std::fs::write(victim, bytes).unwrap();
    let verify = consentry(&["verify"]);
    let out = String::from_utf8_lossy(&verify.stdout);
    assert_eq!(verify.status.code(), Some(1), "{out}");
    let name = victim.file_name().unwrap().to_str().unwrap();
    assert!(
        out.contains("FAILED") && out.contains(name) && out.contains("evidence record"),
        "{out}"
    );
}

/// The frames of one inner HTTP connection from 127.0.0.1 to 127.0.0.2 (handshake,
/// request, response, FINs), as a VXLAN endpoint would carry them.
fn inner_connection(request: &[u8]) -> Vec<Vec<u8>> {
    use etherparse::PacketBuilder;
    let (phone, server) = ([127, 0, 0, 1], [127, 0, 0, 2]);
    let (phone_mac, gateway_mac) = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let (mut up_seq, mut down_seq) = (1000u32, 9000u32);
    let mut frames = Vec::new();
    let mut send = |up: bool, syn: bool, fin: bool, payload: &[u8]| {
        let (macs, ips, ports) = if up {
            ((phone_mac, gateway_mac), (phone, server), (41000, 80))
        } else {
            ((gateway_mac, phone_mac), (server, phone), (80, 41000))
        };
        let (seq, ack) = if up {
            (up_seq, down_seq)
        } else {
            (down_seq, up_seq)
        };
        let mut tcp = PacketBuilder::ethernet2(macs.0, macs.1)
            .ipv4(ips.0, ips.1, 64)
            .tcp(ports.0, ports.1, seq, 64240);
        if syn {
            tcp = tcp.syn();
        }
        if fin {
            tcp = tcp.fin();
        }
        if !(syn && up) {
            tcp = tcp.ack(ack);
        }
        let mut frame = Vec::new();
        tcp.write(&mut frame, payload).unwrap();
        frames.push(frame);
        let advance = payload.len() as u32 + u32::from(syn || fin);
        if up {
            up_seq += advance;
        } else {
            down_seq += advance;
        }
    };
    send(true, true, false, b"");
    send(false, true, false, b"");
    send(true, false, false, b"");
    send(true, false, false, request);
    send(
        false,
        false,
        false,
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    );
    send(true, false, true, b"");
    send(false, false, true, b"");
    send(true, false, false, b"");
    frames
}

#[test]
fn tap_reads_vxlan_on_the_port_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let case = case_file(dir.path());
    // The port the (simulated) VXLAN endpoint listens on: any free one, as a
    // cluster's own VXLAN port would be.
    let endpoint = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = endpoint.local_addr().unwrap().port();
    let setting = format!("vxlan={port}");
    let Some(mut child) = start_tap_filtered(
        &format!("udp dst port {port}"),
        &case,
        &[
            "--no-ring".as_ref(),
            "--tunnel-port".as_ref(),
            setting.as_ref(),
        ],
    ) else {
        return;
    };

    let body = format!(r#"{{"device":{{"ifa":"{AD_ID}"}}}}"#);
    let request = format!(
        "POST /v1/events HTTP/1.1\r\nHost: graph.facebook.com\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    for frame in inner_connection(request.as_bytes()) {
        // VXLAN header: I flag, VNI 1.
        let datagram = [&[0x08, 0, 0, 0, 0, 0, 1, 0][..], &frame].concat();
        sender.send_to(&datagram, ("127.0.0.1", port)).unwrap();
        thread::sleep(Duration::from_millis(5));
    }

    thread::sleep(Duration::from_millis(800));
    let stdout = interrupt_and_read(&mut child);
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("\"rule\":\"share-before-consent\"")
                && l.contains("\"host\":\"graph.facebook.com\"")
                && l.contains("\"device\":\"loopback-phone\"")),
        "no finding from inside the VXLAN datagrams: {stdout}"
    );
}

/// The number in `text` between `before` and the next non-digit.
fn number_after(text: &str, before: &str) -> Option<u64> {
    let rest = &text[text.find(before)? + before.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The packets a tap's summary line says it captured (`consentry: N packets (…`).
fn packets_captured(stderr: &str) -> Option<u64> {
    let summary = stderr.lines().find(|l| l.contains(" packets ("))?;
    number_after(summary, "consentry: ")
}

/// A burst of small packets fits the kernel's capture buffer. libpcap's immediate
/// mode on Linux gave each packet a slot as large as the snaplen allows (64 KiB on
/// loopback), so a 16 MiB buffer held a few hundred packets and most of a burst sent
/// while the tap paused between reads was dropped (about 2 700 of these 3 000
/// datagrams); the tap now captures without it, and the buffer holds packets at their
/// own size: the burst takes 7 MB of it (on `lo` each datagram is there twice, as
/// sent and as received), whether or not the tap reads meanwhile.
#[test]
fn a_burst_of_small_packets_is_captured_without_kernel_drops() {
    const DATAGRAMS: u64 = 3000;
    let dir = tempfile::tempdir().unwrap();
    let case = case_file(dir.path());
    let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = receiver.local_addr().unwrap().port();
    let Some((mut child, stderr)) = start_tap_reading_stderr(
        &format!("udp dst port {port}"),
        &case,
        &["--no-ring".as_ref(), "--buffer-mib".as_ref(), "16".as_ref()],
    ) else {
        return;
    };
    // As fast as the socket sends: the whole burst takes a few milliseconds, less
    // than the tap's pause between reads when it finds nothing waiting. The
    // receiving socket's buffer overflows; the capture sees every datagram before.
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let payload = [0x5a_u8; 1000];
    for _ in 0..DATAGRAMS {
        sender.send_to(&payload, ("127.0.0.1", port)).unwrap();
    }
    thread::sleep(Duration::from_millis(800));
    interrupt_and_read(&mut child);
    let stderr = stderr.all();
    assert_eq!(
        number_after(&stderr, "kernel dropped "),
        Some(0),
        "the kernel dropped packets: {stderr}"
    );
    assert_eq!(
        packets_captured(&stderr),
        Some(DATAGRAMS),
        "every datagram captured: {stderr}"
    );
}

/// A packet captured just before the stop signal is still read. The kernel hands over
/// a part-filled block of the capture buffer only after the read timeout, so a tap
/// that stopped reading at the signal lost the last moments' packets; it reads on
/// until the buffer is drained.
#[test]
fn a_packet_just_before_the_stop_is_still_captured() {
    let dir = tempfile::tempdir().unwrap();
    let case = case_file(dir.path());
    let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = receiver.local_addr().unwrap().port();
    let Some((mut child, stderr)) = start_tap_reading_stderr(
        &format!("udp dst port {port}"),
        &case,
        &["--no-ring".as_ref()],
    ) else {
        return;
    };
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender.send_to(b"last words", ("127.0.0.1", port)).unwrap();
    thread::sleep(Duration::from_millis(5));
    interrupt_and_read(&mut child);
    let stderr = stderr.all();
    assert_eq!(
        packets_captured(&stderr),
        Some(1),
        "the datagram sent before the stop: {stderr}"
    );
}

/// The evidence ring's disk fills (a tmpfs of 256 KiB, mounted in a mount namespace
/// of the test's own, so nothing outlives it): the tap stops with an error naming
/// the ring and the cause, and does not report what it could not keep. The capture is
/// `captures/gateway/upload.pcap.gz`, piped in: its first identifier lies 8.3 MiB
/// into the stream, past what the ring's writer thread can have queued (about 2.5
/// MiB) when the disk filled. Needs root for the mount, as the live tests need it
/// for capturing.
#[test]
fn a_full_disk_under_the_ring_stops_the_tap_before_it_reports_what_it_could_not_keep() {
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("ring");
    std::fs::create_dir(&ring).unwrap();
    let gateway = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/gateway");
    let mut tap = Command::new("unshare");
    tap.args(["--mount", "sh", "-c"])
        .arg(r#"mount -t tmpfs -o size=256k,mode=0700 consentry-test "$0" || exit 99; exec "$@""#)
        .arg(&ring)
        .arg(env!("CARGO_BIN_EXE_consentry"))
        .args(["tap", "--read", "-", "--case"])
        .arg(gateway.join("consentry.toml"))
        .args(["--format", "jsonl", "--ring-dir"])
        .arg(&ring);
    let o = piped::run_with_stdin(
        &mut tap,
        std::fs::read(gateway.join("upload.pcap.gz")).unwrap(),
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    if o.status.code() == Some(99) || o.status.code() == Some(1) && stderr.contains("unshare") {
        if std::env::var_os("CONSENTRY_SKIP_LIVE").is_some() {
            eprintln!("skipped: no mount namespace with a tmpfs: {stderr}");
            return;
        }
        panic!("a tmpfs in a mount namespace of its own needs root (set CONSENTRY_SKIP_LIVE=1 to skip): {stderr}");
    }
    assert!(!o.status.success(), "{stderr}");
    assert!(
        stderr.contains("evidence ring in") && stderr.contains("No space left on device"),
        "{stderr}"
    );
    assert!(
        stderr.contains("writing ") && stderr.contains(".pcapng"),
        "names the file: {stderr}"
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        !stdout.contains("advertising_id") && !stdout.contains("imei"),
        "a finding whose packets the ring could not keep: {stdout}"
    );
    // The tmpfs went with the namespace: the directory is empty again here.
    assert_eq!(std::fs::read_dir(&ring).unwrap().count(), 0);
}
