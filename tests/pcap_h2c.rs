//! Cleartext HTTP/2 in a capture, end to end through `consentry analyze`: one h2c
//! connection with prior knowledge and one upgraded from HTTP/1.1 (`Upgrade: h2c`),
//! built here packet by packet with the crate's own HPACK/frame builders (synthetic
//! identifiers only). The requests carry the case device's identifiers in a Huffman-
//! coded header, a header taken from the dynamic table, a padded DATA body split over
//! TCP segments, and the HTTP/1.1 upgrade request answered on HTTP/2 stream 1. When
//! `tshark` is installed, its reading of the same file is compared with ours.

use std::path::Path;
use std::process::Command;

use consentry::net::hpack::encode::{self, Indexing};
use consentry::net::http2::{build, flags, frame_type};
use consentry::net::sniff::H2_PREFACE;
use serde_json::Value;

const CASE: &str = r#"
[case]
id = "h2c"

[app]
name = "Shop"
first_party = ["example-shop.com"]

[[device]]
id = "pixel7"
addresses = ["192.168.50.23"]
[device.identifiers]
advertising_id = "38400000-8cf0-11bd-b23e-10b96e40000d"
imei = "490154203237518"
"#;

const AD_ID: &str = "38400000-8cf0-11bd-b23e-10b96e40000d";
const IMEI: &str = "490154203237518";

/// A classic pcap (µs, Ethernet) of IPv4/TCP frames between the phone and a server.
struct Pcap {
    bytes: Vec<u8>,
    micros: u64,
}

impl Pcap {
    fn new() -> Self {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        bytes.extend_from_slice(&2u16.to_le_bytes());
        bytes.extend_from_slice(&4u16.to_le_bytes());
        for v in [0u32, 0, 262_144, 1] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        Pcap {
            bytes,
            micros: 1_764_324_000_000_000, // 2025-11-28T10:00:00Z
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn tcp(
        &mut self,
        up: bool,
        server: [u8; 4],
        port: u16,
        seq: u32,
        ack: u32,
        flags: u8,
        payload: &[u8],
    ) {
        let phone = [192, 168, 50, 23];
        let (src, dst) = if up { (phone, server) } else { (server, phone) };
        let (sport, dport) = if up { (port, 80) } else { (80, port) };
        let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
        let total = (40 + payload.len()) as u16;
        f.extend_from_slice(&[
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            0,
            0x40,
            0,
            64,
            6,
            0,
            0,
        ]);
        f.extend_from_slice(&src);
        f.extend_from_slice(&dst);
        f.extend_from_slice(&sport.to_be_bytes());
        f.extend_from_slice(&dport.to_be_bytes());
        f.extend_from_slice(&seq.to_be_bytes());
        f.extend_from_slice(&ack.to_be_bytes());
        f.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        f.extend_from_slice(payload);
        self.micros += 1_000;
        let (secs, us) = (
            (self.micros / 1_000_000) as u32,
            (self.micros % 1_000_000) as u32,
        );
        for v in [secs, us, f.len() as u32, f.len() as u32] {
            self.bytes.extend_from_slice(&v.to_le_bytes());
        }
        self.bytes.extend_from_slice(&f);
    }
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH_ACK: u8 = 0x18;
const FIN_ACK: u8 = 0x11;

/// One TCP connection: handshake, then `turns` (client bytes, server bytes) each
/// sent in segments of at most `mss`, then FINs.
fn connection(p: &mut Pcap, server: [u8; 4], port: u16, turns: &[(Vec<u8>, Vec<u8>)], mss: usize) {
    let (mut c, mut s) = (1_000u32, 9_000u32);
    p.tcp(true, server, port, c, 0, SYN, &[]);
    p.tcp(false, server, port, s, c + 1, SYN | ACK, &[]);
    c += 1;
    s += 1;
    p.tcp(true, server, port, c, s, ACK, &[]);
    for (up, down) in turns {
        for chunk in up.chunks(mss) {
            p.tcp(true, server, port, c, s, PSH_ACK, chunk);
            c += chunk.len() as u32;
        }
        for chunk in down.chunks(mss) {
            p.tcp(false, server, port, s, c, PSH_ACK, chunk);
            s += chunk.len() as u32;
        }
    }
    p.tcp(true, server, port, c, s, FIN_ACK, &[]);
    p.tcp(false, server, port, s, c + 1, FIN_ACK, &[]);
    p.tcp(true, server, port, c + 1, s + 1, ACK, &[]);
}

fn settings() -> Vec<u8> {
    build::frame(frame_type::SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100])
}

fn response(stream: u32) -> Vec<u8> {
    let mut b = Vec::new();
    encode::indexed(&mut b, 8); // :status 200
    encode::literal_with_name_index(&mut b, 31, b"application/json", Indexing::Incremental, true);
    let mut r = build::frame(frame_type::HEADERS, flags::END_HEADERS, stream, &b);
    r.extend(build::frame(
        frame_type::DATA,
        flags::END_STREAM,
        stream,
        b"{}",
    ));
    r
}

/// Prior knowledge to graph.facebook.com: stream 1 sends the advertising id in a
/// Huffman-coded header (indexed into the table), stream 3 repeats the header from
/// the table and posts the IMEI in a padded DATA frame.
fn prior_knowledge() -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut c = H2_PREFACE.to_vec();
    c.extend(settings());
    let mut b = Vec::new();
    encode::indexed(&mut b, 2); // :method GET
    encode::indexed(&mut b, 6); // :scheme http
    encode::literal_with_name_index(
        &mut b,
        1,
        b"graph.facebook.com",
        Indexing::Incremental,
        true,
    );
    encode::literal_with_name_index(
        &mut b,
        4,
        b"/v19.0/activities?event=launch",
        Indexing::Without,
        true,
    );
    encode::literal(
        &mut b,
        b"x-ad-id",
        AD_ID.as_bytes(),
        Indexing::Incremental,
        true,
    );
    c.extend(build::frame(
        frame_type::HEADERS,
        flags::END_HEADERS | flags::END_STREAM,
        1,
        &b,
    ));
    let first = (
        c,
        [
            settings(),
            build::frame(frame_type::SETTINGS, flags::ACK, 0, &[]),
            response(1),
        ]
        .concat(),
    );

    let mut b = Vec::new();
    encode::indexed(&mut b, 3); // :method POST
    encode::indexed(&mut b, 6);
    encode::indexed(&mut b, 63); // :authority graph.facebook.com
    encode::literal_with_name_index(&mut b, 4, b"/v19.0/events", Indexing::Without, false);
    encode::indexed(&mut b, 62); // x-ad-id
    encode::literal_with_name_index(&mut b, 31, b"application/json", Indexing::Without, true);
    let mut c = build::frame(frame_type::HEADERS, flags::END_HEADERS, 3, &b);
    let body = format!("{{\"device\":{{\"imei\":\"{IMEI}\"}}}}");
    let mut payload = vec![6u8];
    payload.extend_from_slice(body.as_bytes());
    payload.extend_from_slice(&[0; 6]);
    c.extend(build::frame(
        frame_type::DATA,
        flags::PADDED | flags::END_STREAM,
        3,
        &payload,
    ));
    let second = (c, response(3));
    vec![first, second]
}

/// An HTTP/1.1 request upgraded to h2c; the server answers it on stream 1.
fn upgrade() -> Vec<(Vec<u8>, Vec<u8>)> {
    let req = format!(
        "GET /collect?imei={IMEI} HTTP/1.1\r\nHost: ulogs.umeng.com\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n"
    );
    let mut down =
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n".to_vec();
    down.extend(settings());
    down.extend(response(1));
    let mut c = H2_PREFACE.to_vec();
    c.extend(settings());
    c.extend(build::frame(
        frame_type::HEADERS,
        flags::END_HEADERS | flags::END_STREAM,
        3,
        &build::block(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":authority", "ulogs.umeng.com"),
            (":path", &format!("/config?aid={AD_ID}")),
        ]),
    ));
    vec![(req.into_bytes(), down), (c, response(3))]
}

fn capture() -> Vec<u8> {
    let mut p = Pcap::new();
    connection(&mut p, [157, 240, 1, 35], 41000, &prior_knowledge(), 40);
    connection(&mut p, [203, 0, 113, 7], 41001, &upgrade(), 1448);
    p.bytes
}

fn write_inputs(dir: &Path) {
    std::fs::write(dir.join("consentry.toml"), CASE).unwrap();
    std::fs::write(dir.join("h2c.pcap"), capture()).unwrap();
}

fn consentry(dir: &Path, args: &[&str]) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_consentry"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn h2c_requests_give_findings_through_analyze() {
    let dir = tempfile::tempdir().unwrap();
    write_inputs(dir.path());
    let findings = consentry(
        dir.path(),
        &[
            "analyze",
            "--case",
            "consentry.toml",
            "--format",
            "jsonl",
            "h2c.pcap",
        ],
    );
    let mut got: Vec<(String, String, String, String)> = findings
        .iter()
        .flat_map(|f| {
            let host = f["destination"]["host"].as_str().unwrap().to_string();
            let rule = f["rule"].as_str().unwrap().to_string();
            f["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |d| {
                    (
                        host.clone(),
                        rule.clone(),
                        d["type"].as_str().unwrap().to_string(),
                        d["where"].as_str().unwrap().to_string(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .filter(|(_, rule, _, _)| rule == "share-before-consent")
        .collect();
    got.sort();
    got.dedup();
    let want = [
        ("graph.facebook.com", "advertising_id", "header:x-ad-id"),
        ("graph.facebook.com", "imei", "body:$.device.imei"),
        ("ulogs.umeng.com", "advertising_id", "query:aid"),
        ("ulogs.umeng.com", "imei", "query:imei"),
    ];
    for (host, ty, place) in want {
        assert!(
            got.iter().any(|g| g.0 == host && g.2 == ty && g.3 == place),
            "no share-before-consent of {ty} at {place} to {host} in {got:?}"
        );
    }
    // Two exchanges to graph.facebook.com carry the header (stream 1 literally,
    // stream 3 from the dynamic table).
    let header_hits = findings
        .iter()
        .filter(|f| {
            f["destination"]["host"] == "graph.facebook.com"
                && f["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|d| d["where"] == "header:x-ad-id")
        })
        .map(|f| f["exchange"].as_str().unwrap().to_string())
        .collect::<std::collections::BTreeSet<_>>();
    assert_eq!(header_hits.len(), 2, "{findings:?}");
}

#[test]
fn h2c_exchanges_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    write_inputs(dir.path());
    let xs = consentry(
        dir.path(),
        &[
            "exchanges",
            "--case",
            "consentry.toml",
            "--format",
            "jsonl",
            "h2c.pcap",
        ],
    );
    let mut rows: Vec<(String, String, String, String, u64)> = xs
        .iter()
        .map(|x| {
            (
                x["host"].as_str().unwrap().to_string(),
                x["method"].as_str().unwrap().to_string(),
                x["path"].as_str().unwrap().to_string(),
                x["http_version"].as_str().unwrap().to_string(),
                x["response"]["status"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    rows.sort();
    let want = vec![
        (
            "graph.facebook.com",
            "GET",
            "/v19.0/activities?event=launch",
            "HTTP/2",
            200,
        ),
        ("graph.facebook.com", "POST", "/v19.0/events", "HTTP/2", 200),
        (
            "ulogs.umeng.com",
            "GET",
            "/collect?imei=490154203237518",
            "HTTP/1.1",
            200,
        ),
        (
            "ulogs.umeng.com",
            "GET",
            "/config?aid=38400000-8cf0-11bd-b23e-10b96e40000d",
            "HTTP/2",
            200,
        ),
    ];
    let want: Vec<(String, String, String, String, u64)> = want
        .into_iter()
        .map(|(a, b, c, d, e)| (a.into(), b.into(), c.into(), d.into(), e))
        .collect();
    assert_eq!(rows, want);
    assert!(xs.iter().all(|x| x.get("anomalies").is_none()), "{xs:?}");
}

/// tshark (when installed) reads the same requests from the file.
#[test]
fn tshark_agrees_on_the_h2c_requests() {
    if Command::new("tshark").arg("--version").output().is_err() {
        eprintln!("tshark not installed: skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    write_inputs(dir.path());
    // Prior knowledge on port 80 needs "decode as"; the upgrade is found by the HTTP
    // dissector itself.
    let tshark = |extra: &[&str]| {
        let out = Command::new("tshark")
            .args(["-r", "h2c.pcap"])
            .args(extra)
            .args([
                "-T",
                "fields",
                "-e",
                "http2.header.value",
                "-E",
                "occurrence=a",
            ])
            .current_dir(dir.path())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let text = tshark(&[
        "-d",
        "tcp.port==80,http2",
        "-Y",
        "tcp.stream == 0 && http2.type == 1",
    ]);
    for path in ["/v19.0/activities?event=launch", "/v19.0/events"] {
        assert!(text.contains(path), "tshark did not see {path}: {text}");
    }
    let upgraded = tshark(&["-Y", "tcp.stream == 1 && http2.type == 1"]);
    let path = format!("/config?aid={AD_ID}");
    assert!(
        upgraded.contains(&path),
        "tshark did not see {path}: {upgraded}"
    );
    assert!(
        text.contains(AD_ID),
        "tshark did not decode x-ad-id: {text}"
    );
}
