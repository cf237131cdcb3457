//! Validation of the TLS decryptor against third-party captures with their key logs
//! and tshark's per-stream plaintext digests, under `/work/shared/testdata/tls/`
//! (or `$CONSENTRY_TLS_TESTDATA`). The files are not part of the project: the test is
//! `#[ignore]`d and skips when they are absent. Run it with
//! `cargo test --test tls_testdata -- --ignored --nocapture` to print a pass/fail table.

use std::collections::HashMap;
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use consentry::net::capture::{CaptureEvent, CaptureReader};
use consentry::net::keylog::KeyLog;
use consentry::net::packet::{PacketDecoder, PacketLimits, Transport};
use consentry::net::tcp::{Delivery, Reassembler, SegmentMeta, TcpLimits};
use consentry::net::tls_decrypt::{TlsDecryptor, TlsOutput};
use sha2::{Digest, Sha256};

fn root() -> PathBuf {
    std::env::var_os("CONSENTRY_TLS_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/shared/testdata/tls"))
}

struct Conn {
    client: String,
    server: String,
    client_ip: (IpAddr, u16),
    tcp: [Reassembler; 2],
    tls: TlsDecryptor,
    plain: [Vec<u8>; 2],
    anomalies: Vec<String>,
}

fn read_all(path: &Path) -> Vec<u8> {
    let raw = std::fs::read(path).unwrap_or_default();
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .expect("gunzip");
        out
    } else {
        raw
    }
}

fn endpoint((ip, port): (IpAddr, u16)) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        // tshark's JSON writes IPv6 endpoints without brackets.
        IpAddr::V6(v6) => format!("{v6}:{port}"),
    }
}

/// Decrypts every TCP connection of a capture; keyed by "client server".
fn run(capture: &Path, keylog: Option<&Path>) -> Vec<Conn> {
    let mut keys = KeyLog::new();
    if let Some(k) = keylog {
        keys.add(&std::fs::read(k).unwrap_or_default());
    }
    let data = read_all(capture);
    let mut reader = CaptureReader::new(&data[..]).expect("capture");
    let mut decoder = PacketDecoder::new(PacketLimits::default());
    let mut conns: Vec<Conn> = Vec::new();
    type Endpoint = (IpAddr, u16);
    let mut by_key: HashMap<(Endpoint, Endpoint), usize> = HashMap::new();
    while let Some(ev) = reader.next_event().expect("capture event") {
        let frame = match ev {
            CaptureEvent::Secrets { data, .. } => {
                keys.add(data);
                continue;
            }
            CaptureEvent::Frame(f) => f,
            CaptureEvent::Custom { .. } => continue,
        };
        let mut segs = Vec::new();
        let _ = decoder.decode_frame(frame.ts, frame.number, frame.link, frame.data, &mut |p| {
            if let Transport::Tcp(t) = p.transport {
                segs.push((
                    (p.src, t.src_port),
                    (p.dst, t.dst_port),
                    t.seq,
                    t.syn,
                    t.ack_flag,
                    t.fin,
                    t.payload.to_vec(),
                ));
            }
        });
        for (src, dst, seq, syn, ack, fin, payload) in segs {
            let key = if src <= dst { (src, dst) } else { (dst, src) };
            let i = *by_key.entry(key).or_insert_with(|| {
                // The SYN sender is the client; else the first sender.
                let (c, s) = if syn && ack { (dst, src) } else { (src, dst) };
                conns.push(Conn {
                    client: endpoint(c),
                    server: endpoint(s),
                    client_ip: c,
                    tcp: [
                        Reassembler::new(TcpLimits::default()),
                        Reassembler::new(TcpLimits::default()),
                    ],
                    tls: TlsDecryptor::new(),
                    plain: [Vec::new(), Vec::new()],
                    anomalies: Vec::new(),
                });
                conns.len() - 1
            });
            let conn = &mut conns[i];
            let from_client = src == conn.client_ip;
            let d = usize::from(!from_client);
            if syn {
                conn.tcp[d].syn(seq);
                continue;
            }
            let mut delivered: Vec<Option<Vec<u8>>> = Vec::new();
            conn.tcp[d].segment(
                seq,
                &payload,
                fin,
                SegmentMeta::default(),
                &mut |dl| match dl {
                    Delivery::Data { bytes, .. } => delivered.push(Some(bytes.to_vec())),
                    Delivery::Gap { .. } => delivered.push(None),
                },
            );
            for dl in delivered {
                let mut out = Vec::new();
                match dl {
                    Some(b) => conn.tls.push(from_client, &b, &mut keys, &mut out),
                    None => conn.tls.gap(from_client),
                }
                for o in out {
                    match o {
                        TlsOutput::Plaintext {
                            from_client, data, ..
                        } => conn.plain[usize::from(!from_client)].extend_from_slice(&data),
                        TlsOutput::Anomaly(a) => {
                            conn.anomalies.push(format!("{}: {}", a.kind, a.detail))
                        }
                    }
                }
            }
        }
    }
    conns
}

fn sha(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

#[test]
#[ignore = "needs the third-party captures under /work/shared/testdata/tls"]
fn third_party_captures() {
    let root = root();
    if !root.exists() {
        eprintln!("{} absent: skipped", root.display());
        return;
    }
    let mut expected: Vec<PathBuf> = Vec::new();
    for sub in [
        "illustrated-tls12",
        "illustrated-tls13",
        "wireshark",
        "zeek",
        "snet",
    ] {
        if let Ok(rd) = std::fs::read_dir(root.join(sub).join("expected")) {
            expected.extend(rd.filter_map(|e| e.ok()).map(|e| e.path()));
        }
    }
    expected.sort();
    let filter = std::env::var("TLS_TESTDATA_FILTER").unwrap_or_default();
    let (mut pass, mut fail) = (0, 0);
    println!(
        "{:<70} {:>6} {:>6}  detail",
        "capture [keylog]", "want", "ok"
    );
    for exp in expected {
        let name = exp.display().to_string();
        if !name.contains(&filter) {
            continue;
        }
        let j: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&exp).unwrap()).expect("json");
        let dir = exp.parent().unwrap().parent().unwrap();
        let capture = dir.join(j["capture"].as_str().unwrap());
        let keylog = j["keylog"].as_str().map(|k| dir.join(k));
        let conns = run(&capture, keylog.as_deref());
        let streams = j["streams"].as_array().cloned().unwrap_or_default();
        let (mut want, mut ok) = (0, 0);
        let mut detail = Vec::new();
        for s in &streams {
            let client = s["client"].as_str().unwrap_or("");
            let server = s["server"].as_str().unwrap_or("");
            let conn = conns
                .iter()
                .find(|c| c.client == client && c.server == server);
            let app = &s["app_data"];
            let suite = s["cipher_suite"].as_str().unwrap_or("?");
            let Some(conn) = conn else {
                detail.push(format!("{client}: connection not found"));
                continue;
            };
            if app.is_null() {
                // tshark could not decrypt it either (no key, unsupported): note ours.
                if detail.len() < 4 {
                    detail.push(format!(
                        "{suite} not decrypted by tshark; ours {:?}",
                        conn.tls.status()
                    ));
                }
                continue;
            }
            want += 1;
            let c2s = app["c2s_sha256"].as_str().unwrap_or("");
            let s2c = app["s2c_sha256"].as_str().unwrap_or("");
            if sha(&conn.plain[0]) == c2s && sha(&conn.plain[1]) == s2c {
                ok += 1;
            } else {
                detail.push(format!(
                    "{suite} {client}: c2s {}/{} s2c {}/{} {:?} {:?}",
                    conn.plain[0].len(),
                    app["c2s_len"],
                    conn.plain[1].len(),
                    app["s2c_len"],
                    conn.tls.status(),
                    conn.anomalies.first()
                ));
            }
        }
        if want == ok {
            pass += 1;
        } else {
            fail += 1;
        }
        let label = format!(
            "{} [{}]",
            j["capture"].as_str().unwrap_or(""),
            j["keylog"].as_str().unwrap_or("DSB/none")
        );
        println!(
            "{:<70} {:>6} {:>6}  {}{}",
            label,
            want,
            ok,
            if want == ok { "PASS " } else { "FAIL " },
            detail.join("; ")
        );
    }
    println!("files: {pass} pass, {fail} fail");
}
