//! The live tap decrypting TLS with a key log that is written while it captures, as a
//! Frida script or a browser's `SSLKEYLOGFILE` would: `consentry tap --keylog FILE`
//! on the loopback interface, a rustls client and server on 127.0.0.1 whose client
//! appends its NSS key log lines to FILE as it derives them. The finding must come out
//! of the tap, and the evidence ring must give it too: with the same key log, and
//! alone (the lines followed are in it, before the handshake they decrypt).
//!
//! Capturing needs CAP_NET_RAW (root in CI); `CONSENTRY_SKIP_LIVE=1` skips the test.

#![cfg(feature = "live")]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::live::{interrupt_and_read, start_tap};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

const AD_ID: &str = "5f3c9a1e-7b2d-4e8f-9a6b-1c2d3e4f5a6b";
const HOST: &str = "graph.facebook.com";

fn case_file(dir: &Path) -> PathBuf {
    let path = dir.join("consentry.toml");
    std::fs::write(
        &path,
        format!(
            r#"[case]
id = "live-tls-test"

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

/// Appends each secret to a file at once, as instrumentation does.
#[derive(Debug)]
struct AppendKeyLog(Mutex<std::fs::File>);

impl rustls::KeyLog for AppendKeyLog {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        if let Ok(mut f) = self.0.lock() {
            let _ = writeln!(f, "{label} {} {}", hex(client_random), hex(secret));
            let _ = f.flush();
        }
    }
}

type Configs = (Arc<rustls::ClientConfig>, Arc<rustls::ServerConfig>);

fn configs(keylog: &Path) -> Configs {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certified = rcgen::generate_simple_self_signed(vec![HOST.to_string()]).unwrap();
    let cert: CertificateDer<'static> = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let mut client = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(keylog)
        .unwrap();
    client.key_log = Arc::new(AppendKeyLog(Mutex::new(file)));
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    (Arc::new(client), Arc::new(server))
}

/// A one-request-per-connection HTTPS server on 127.0.0.1; returns its port.
fn serve(config: Arc<rustls::ServerConfig>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                return;
            };
            let mut tls = rustls::StreamOwned::new(conn, stream);
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
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
                match tls.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let _ = tls
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    port
}

fn has_finding(jsonl: &str) -> bool {
    jsonl.lines().any(|l| {
        l.contains("\"rule\":\"share-before-consent\"")
            && l.contains("\"type\":\"advertising_id\"")
            && l.contains(&format!("\"host\":\"{HOST}\""))
            && l.contains("\"device\":\"loopback-phone\"")
    })
}

#[test]
fn tap_decrypts_with_a_key_log_written_while_it_captures() {
    let dir = tempfile::tempdir().unwrap();
    let case = case_file(dir.path());
    let ring = dir.path().join("evidence");
    let keylog = dir.path().join("sslkeys.log");
    std::fs::write(&keylog, "").unwrap();
    let (client_config, server_config) = configs(&keylog);
    let port = serve(server_config);
    let extra = [
        "--keylog".as_ref(),
        keylog.as_os_str(),
        "--ring-dir".as_ref(),
        ring.as_os_str(),
    ];
    let Some(mut child) = start_tap(port, &case, &extra) else {
        return;
    };

    let body = format!(r#"{{"event":"app_open","device":{{"ifa":"{AD_ID}"}}}}"#);
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let conn =
        rustls::ClientConnection::new(client_config, ServerName::try_from(HOST).unwrap()).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, stream);
    write!(
        tls,
        "POST /v1/events HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response);
    assert!(response.starts_with(b"HTTP/1.1 200"), "{response:?}");
    drop(tls);
    assert!(
        std::fs::read_to_string(&keylog)
            .unwrap()
            .contains("CLIENT_TRAFFIC_SECRET_0"),
        "the client logged its secrets"
    );

    thread::sleep(Duration::from_millis(1500));
    let stdout = interrupt_and_read(&mut child);
    assert!(
        has_finding(&stdout),
        "no finding printed by the tap: {stdout}"
    );

    // The ring and the key log are the evidence: analysed together, same finding.
    let files: Vec<_> = std::fs::read_dir(&ring)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcapng"))
        .collect();
    assert_eq!(files.len(), 1, "one ring file expected: {files:?}");
    let analysed = |extra: &[&std::ffi::OsStr]| {
        let o = Command::new(env!("CARGO_BIN_EXE_consentry"))
            .arg("analyze")
            .arg(&files[0])
            .arg("--case")
            .arg(&case)
            .args(extra)
            .args(["--format", "jsonl"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let with_keylog = analysed(&["--keylog".as_ref(), keylog.as_os_str()]);
    assert!(
        has_finding(&with_keylog),
        "the ring file with the key log does not give the finding: {with_keylog}"
    );
    let alone = analysed(&[]);
    assert!(
        has_finding(&alone),
        "the ring file alone does not give the finding: {alone}"
    );
}
