//! The fuzz entry points of consentry, one per parser entry point (STYLE.md #19).
//!
//! Each function takes the raw fuzz input and drives one public API of the library
//! with it; a panic, an abort, a hang or unbounded memory is a bug. The binaries in
//! `fuzz_targets/` are one-line wrappers around these functions, and the main crate's
//! `tests/fuzz_regressions.rs` includes this very file (`#[path]`) to replay saved
//! crash inputs through the same code, so a fix is checked by `cargo test` without
//! cargo-fuzz or a nightly toolchain.
//!
//! This file depends on `consentry` and `std` only, so that both crates can compile it.

use std::sync::{Arc, OnceLock};

use consentry::case::Case;
use consentry::decode::{self, Limits, Part};
use consentry::exchange::{Exchange, Header, SourceKind};
use consentry::parties::Classifier;
use consentry::pii::Detector;
use consentry::rules::{Analyzer, Options};
use consentry::source::{read_har, HarOptions};
use consentry::timestamp::Timestamp;

/// The fuzz target names, in the order of fuzz/README.md.
pub const TARGETS: [&str; 27] = [
    "har",
    "decode",
    "case",
    "pii",
    "pii_stream",
    "decoded_tail",
    "analyze",
    "consent",
    "capture",
    "packet",
    "http1",
    "dns",
    "tls_hello",
    "tcp",
    "tls_decrypt",
    "tap",
    "tls_tap",
    "hpack",
    "http2",
    "quic",
    "udp_export",
    "tcp_export",
    "capture_chain",
    "websocket",
    "qpack",
    "http3",
    "quic_conn",
];

/// Runs the entry point called `target` on `data`; `false` when there is no such target.
pub fn run(target: &str, data: &[u8]) -> bool {
    match target {
        "har" => har(data),
        "decode" => decode(data),
        "case" => case(data),
        "pii" => pii(data),
        "analyze" => analyze(data),
        "consent" => consent(data),
        "capture" => capture(data),
        "packet" => packet(data),
        "http1" => http1(data),
        "dns" => dns(data),
        "tls_hello" => tls_hello(data),
        "tls_decrypt" => tls_decrypt(data),
        "tcp" => tcp(data),
        "quic" => quic(data),
        "tap" => tap(data),
        "tls_tap" => tls_tap(data),
        "hpack" => hpack(data),
        "http2" => http2(data),
        "pii_stream" => pii_stream(data),
        "decoded_tail" => decoded_tail(data),
        "udp_export" => udp_export(data),
        "tcp_export" => tcp_export(data),
        "capture_chain" => {
            capture_chain(data);
        }
        "websocket" => websocket(data),
        "qpack" => qpack(data),
        "http3" => http3(data),
        "quic_conn" => {
            quic_conn(data);
        }
        _ => return false,
    }
    true
}

/// `consent`: the input (lossy UTF-8) as a TC string, a GPP string and a US Privacy
/// string, each decoded and, when it decodes, printed as JSON; the GPP string
/// interpreted as a wire signal (sections decode independently); and the input as a
/// request to the CMP endpoint table (see `cmp_call`).
pub fn consent(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(tc) = consentry::consent::tcf::TcString::parse(&text) {
        let _ = tc.to_json();
    }
    if let Ok(gpp) = consentry::consent::gpp::GppString::parse(&text) {
        let _ = gpp.to_json();
    }
    let _ = consentry::consent::usp::UsPrivacy::parse(&text);
    // Interpretation, including GPP strings with some bad sections.
    use consentry::consent::signals::{SignalKind, WireSignal};
    let signal = WireSignal {
        kind: SignalKind::Gpp,
        value: text.to_string(),
        location: "fuzz".into(),
        cmp: None,
    };
    let _ = consentry::consent::wire::interpret(&signal);
    cmp_call(data);
}

/// The CMP endpoint table over a request built from the input: first line the host,
/// second the path and query, the rest a JSON or form body; the first byte picks
/// the method and content type.
fn cmp_call(data: &[u8]) {
    use consentry::consent::cmp::CmpTable;
    let mut lines = data.splitn(3, |&b| b == b'\n');
    let host = String::from_utf8_lossy(lines.next().unwrap_or(b""));
    let path = String::from_utf8_lossy(lines.next().unwrap_or(b""));
    let body = lines.next().unwrap_or(b"");
    let mut x = Exchange::new("x-fuzz", SourceKind::Har, Timestamp(0));
    let pick = data.first().copied().unwrap_or(0);
    x.method = if pick & 1 == 0 { "GET" } else { "POST" }.into();
    x.host = host.trim().to_string();
    x.path = path.trim().to_string();
    let ct = if pick & 2 == 0 {
        "application/json"
    } else {
        "application/x-www-form-urlencoded"
    };
    x.request_headers.push(Header::new("Content-Type", ct));
    x.request_body = body.to_vec();
    let parts = decode::request_parts(&x, &Limits::default(), &mut Vec::new());
    if let Some(signal) = consentry::consent::signals::extract_cmp(
        CmpTable::embedded(),
        &x.host,
        &x.method,
        &x.path,
        &parts,
    ) {
        let _ = consentry::consent::wire::interpret(&signal);
    }
}

/// `capture`: the input is a pcap or pcapng file, read to its end (or first error)
/// with every frame decoded by a `net::packet::PacketDecoder`; a small initial buffer
/// makes growth happen on small inputs too.
pub fn capture(data: &[u8]) {
    use consentry::net::capture::{CaptureEvent, CaptureLimits, CaptureReader};
    let limits = CaptureLimits {
        initial_buffer: 64,
        ..CaptureLimits::default()
    };
    let Ok(mut reader) = CaptureReader::with_limits(data, limits) else {
        return;
    };
    let mut decoder = consentry::net::packet::PacketDecoder::new(Default::default());
    let mut last = 0;
    while let Ok(Some(event)) = reader.next_event() {
        if let CaptureEvent::Frame(f) = event {
            let _ = decoder.decode(f.ts, f.link, f.data, &mut |_| {});
        }
        // Every event consumes bytes: no loop can stand still.
        assert!(reader.offset() > last, "no progress");
        last = reader.offset();
    }
}

/// `source::udp_export::ExportFraming` (the tap's receiver of PCAPdroid's UDP
/// exporter) over datagrams, each a 2-byte big-endian length then its bytes; what it
/// appends is read by `CaptureReader` (64-byte initial buffer). Asserts the stream
/// reads to its end without an error: a datagram the reader would refuse must have
/// been dropped, or one hostile datagram would end the tap.
pub fn udp_export(data: &[u8]) {
    use consentry::source::udp_export::{ExportFraming, Framed};
    let mut framing = ExportFraming::new();
    let mut stream = Vec::new();
    let mut rest = data;
    while let [high, low, more @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*high, *low])).min(more.len());
        let (datagram, after) = more.split_at(len);
        if let Framed::Append(bytes) = framing.datagram(datagram) {
            stream.extend_from_slice(&bytes);
        }
        rest = after;
    }
    read_joined_stream(&stream);
}

/// `source::tcp_export::RecordSplitter` (the tap's receiver of PCAPdroid's TCP
/// exporter) over connections, each a byte of read size, a 2-byte big-endian length,
/// then its bytes: each connection, read in pieces of that size, is cut into units
/// that go through one `ExportFraming`, as the tap does; what it appends is read by
/// `CaptureReader`. Asserts the joined stream reads to its end without an error, so no
/// connection can stop the tap.
pub fn tcp_export(data: &[u8]) {
    use consentry::source::tcp_export::RecordSplitter;
    use consentry::source::udp_export::{ExportFraming, Framed};
    let mut framing = ExportFraming::new();
    let mut stream = Vec::new();
    let mut rest = data;
    while let [read, high, low, more @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*high, *low])).min(more.len());
        let (connection, after) = more.split_at(len);
        let mut splitter = RecordSplitter::new();
        'connection: for piece in connection.chunks(usize::from(*read).max(1)) {
            splitter.push(piece);
            while let Some(unit) = splitter.next_unit() {
                match unit {
                    Ok(unit) => {
                        if let Framed::Append(bytes) = framing.datagram(unit) {
                            stream.extend_from_slice(&bytes);
                        }
                    }
                    Err(_) => break 'connection,
                }
            }
        }
        rest = after;
    }
    read_joined_stream(&stream);
}

/// Reads what an exporter's framing joined (64-byte initial buffer); panics when it
/// does not read to its end.
fn read_joined_stream(stream: &[u8]) {
    use consentry::net::capture::{CaptureLimits, CaptureReader};
    if stream.is_empty() {
        return;
    }
    let limits = CaptureLimits {
        initial_buffer: 64,
        ..CaptureLimits::default()
    };
    let mut reader = CaptureReader::with_limits(stream, limits)
        .expect("the stream starts with a header the framing checked");
    loop {
        match reader.next_event() {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => panic!("the joined stream does not read: {e}"),
        }
    }
}

/// Link types the `packet` target picks from (byte 0 of the input).
pub const PACKET_LINKS: [u32; 13] = [1, 113, 276, 101, 228, 229, 0, 108, 12, 147, 239, 105, 127];

/// The keys of the WPA samples (their `expected.json`), so that the seeds made of
/// their handshakes and frames decrypt and mutations of them run the WPA paths: the
/// PMK of `captures/wpa2/`, the SAE PMK of `captures/wpa3/`'s phone, and the TK of its
/// stranger (whose handshake matches no key); the PMK of `captures/tkip/` and its
/// stranger's TKIP key; the WEP key of `captures/wep/`; the PMK of `captures/gcmp/`
/// and its stranger's GCMP-256 key; the PSK of `captures/ft/` and its tablet's MSK;
/// the PMK of `captures/frag/`.
const SAMPLE_WLAN_KEYS: &str = "\
    \"wpa-psk\",\"443fa6d7571a372bd1cc6952d9d855fddfc1047c09646595db6b9b224c3c13a9\"\n\
    \"wpa-psk\",\"814b7b5efc5b856d6faa215f31e7de785384e2c9ec5d7c99aa847523faed43b1\"\n\
    \"tk\",\"9cc3889c22c544c30823092b3bee98d9\"\n\
    \"wpa-psk\",\"b0123c01a3c7285b8def399bf4cc967ed05c48721e0c10627ad92136fca63e33\"\n\
    \"tk\",\"57f5a1e7fd604312cfd69483929ff606123365c853332f10dbf7373358ca1742\"\n\
    \"wep\",\"751dbbe2c718fc03a364635cee\"\n\
    \"wpa-psk\",\"01772e049428a304e57866a020914fde340293eea0bfe50179f37c820670146d\"\n\
    \"tk\",\"08669f572d4e7d1e2781f660a1ef52ada865de2e35822ce1a845a767dd69d83b\"\n\
    \"wpa-psk\",\"7a967fea3089da8b814e720f0cbcfcab60f0d2e61c2d03693fc1ed1590bbc2ea\"\n\
    \"msk\",\"2a9c4f02bae021e7813c8b3c024d798e09da55a72627138f11af554faaac5f7f693971ad884a6d1c628baca491d82260792c593347c97879f1336d5438f21419\"\n\
    \"wpa-psk\",\"c1079b4a0e4b8ab836c7efd59dc8714876c6cbae370e78a381c8c1f3b2e853b1\"\n";

fn sample_wlan_keys() -> std::sync::Arc<consentry::net::wpa::WlanKeys> {
    use consentry::net::wpa::{parse_keys, WlanKeys};
    static KEYS: std::sync::OnceLock<std::sync::Arc<WlanKeys>> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let keys = parse_keys(SAMPLE_WLAN_KEYS).unwrap_or_default();
        std::sync::Arc::new(WlanKeys::new(&keys.keys))
    })
    .clone()
}

/// `packet`: byte 0 picks a link type from [`PACKET_LINKS`], byte 1 a timestamp step
/// in seconds; the rest is split at 0xFE 0xFD markers into frames decoded in turn by
/// one `PacketDecoder` (so fragments of one datagram can meet, and a WPA handshake
/// the frames after it; the decoder has the keys of the WPA samples).
pub fn packet(data: &[u8]) {
    use consentry::net::capture::LinkType;
    use consentry::net::packet::{PacketDecoder, Transport};
    let link = LinkType::from_number(pick(&PACKET_LINKS, data.first().copied().unwrap_or(0)));
    let step = i64::from(data.get(1).copied().unwrap_or(0)) * 1_000_000;
    let rest = data.get(2..).unwrap_or(&[]);
    let mut decoder = PacketDecoder::new(Default::default());
    decoder.set_wlan_keys(sample_wlan_keys());
    let mut ts = 0i64;
    let mut start = 0;
    let mut frames = Vec::new();
    for i in 0..rest.len() {
        if rest[i] == 0xfe && rest.get(i + 1) == Some(&0xfd) {
            frames.push(&rest[start..i]);
            start = i + 2;
        }
    }
    frames.push(rest.get(start..).unwrap_or(&[]));
    for f in frames {
        ts += step;
        let _ = decoder.decode(Timestamp::from_micros(ts), link, f, &mut |p| {
            // Touch the payload so a bad slice would show.
            if let Transport::Tcp(t) = p.transport {
                let _ = t.payload.iter().map(|&b| usize::from(b)).sum::<usize>();
            }
        });
    }
}

/// `tap`: byte 0 the link type (as `packet`), byte 1 the time step; the rest frames
/// split at `FE`, in which `FD 00` stands for `FD` and `FD 01` for `FE`
/// ([`tap_frames`]), run through a whole `net::tap::Tap` (flow table, reassembly,
/// HTTP/TLS/DNS parsing, exchange building) with tiny limits, so that eviction, budget
/// and timeout paths run; every exchange must have a host and an id.
pub fn tap(data: &[u8]) {
    use consentry::net::capture::{Frame, LinkType};
    use consentry::net::tap::Tap;
    let link = LinkType::from_number(pick(&PACKET_LINKS, data.first().copied().unwrap_or(0)));
    let step = i64::from(data.get(1).copied().unwrap_or(0)) * 100_000;
    let rest = data.get(2..).unwrap_or(&[]);
    let mut tap = Tap::new(
        any_device().clone(),
        None,
        None,
        SourceKind::Pcap,
        tiny_tap_limits(),
    );
    // DNS query names and mDNS announcements searched too (bytes with a digit
    // "carry" a value here), so that they become exchanges as under `analyze`.
    tap.set_dns_probe(consentry::net::tap::DataProbe(std::sync::Arc::new(
        |bytes: &[u8]| bytes.iter().any(|b| b.is_ascii_digit()),
    )));
    let mut check = |x: Exchange| {
        assert!(!x.host.is_empty(), "exchange without host");
        assert!(x.id.starts_with("x-"));
    };
    let mut ts = 0i64;
    for (number, f) in tap_frames(rest).iter().enumerate() {
        ts += step;
        let frame = Frame {
            number: number as u64 + 1,
            ts: Timestamp::from_micros(ts),
            link,
            interface: 0,
            data: f,
            original_len: f.len() as u32,
            comment: None,
        };
        tap.frame(&frame, &mut check);
    }
    tap.finish(&mut check);
}

/// The `tap` target's frames: `rest` split at `FE`, each with `FD 00` read as `FD` and
/// `FD 01` as `FE`, so that any real frame can be written into a seed
/// (`make_seeds.py`'s `stuffed`); any other `FD` stands for itself.
fn tap_frames(rest: &[u8]) -> Vec<Vec<u8>> {
    rest.split(|&b| b == 0xfe)
        .map(|stuffed| {
            let mut frame = Vec::with_capacity(stuffed.len());
            let mut bytes = stuffed.iter().copied().peekable();
            while let Some(b) = bytes.next() {
                match (b, bytes.peek()) {
                    (0xfd, Some(0)) => {
                        bytes.next();
                        frame.push(0xfd);
                    }
                    (0xfd, Some(1)) => {
                        bytes.next();
                        frame.push(0xfe);
                    }
                    _ => frame.push(b),
                }
            }
            frame
        })
        .collect()
}

/// Tap limits small enough for a fuzz input to reach eviction, budget and timeout
/// paths: 4 flows, 64-byte reassembly buffers, 2 pending requests, 128 bytes of
/// messages in progress for the whole table.
fn tiny_tap_limits() -> consentry::net::tap::TapLimits {
    use consentry::net::flow::FlowLimits;
    use consentry::net::tap::TapLimits;
    use consentry::net::tcp::TcpLimits;
    TapLimits {
        flow: FlowLimits {
            tcp: TcpLimits {
                max_buffered_bytes: 64,
                max_segments: 4,
                ..TcpLimits::default()
            },
            max_flows: 4,
            max_buffered_total: 96,
            tcp_idle_micros: 2_000_000,
            udp_idle_micros: 1_000_000,
            max_pending_requests: 2,
            max_message_total: 128,
            // Parts of a protocol no parser reads: cut by size, depth and table.
            max_unparsed_bytes: 16,
            max_unparsed_depth: 48,
            max_unparsed_parts: 4,
            max_unparsed_total: 64,
            // Leads shorter and longer than a part: both ways of keeping a tail.
            unparsed_overlap: 6,
            ..FlowLimits::default()
        },
        ..TapLimits::default()
    }
}

/// A case whose one device has every address: attribution and mid-stream client
/// choice both run.
fn any_device() -> &'static consentry::case::DeviceResolver {
    use consentry::case::DeviceResolver;
    static DEVICES: OnceLock<DeviceResolver> = OnceLock::new();
    DEVICES.get_or_init(|| {
        let case = consentry::case::parse(
            "[[device]]\nid = \"any\"\naddresses = [\"0.0.0.0/0\", \"::/0\"]\n",
            "tap-case.toml",
        )
        .expect("tap case is valid");
        DeviceResolver::new(&case)
    })
}

/// `capture_chain`: capture files read one after another by one
/// `source::pcap::CaptureChain` (the split-capture reader of `analyze`), with the tap
/// limits of `tap` and the key log of `tls_tap`, so that files continue one another's
/// connections, hold and replay their secrets and custom blocks, or end the capture
/// before them. Asserts that every exchange has an id, a host and the hash of one of
/// the files; that each file read belongs to exactly one capture, in reading order;
/// and that the captures' exchanges per file add up to the exchanges delivered.
/// Returns how many were.
pub fn capture_chain(data: &[u8]) -> u64 {
    use consentry::source::pcap::{CaptureChain, CaptureOptions};
    let mut files = Vec::new();
    let mut rest = data;
    while let [high, low, more @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*high, *low])).min(more.len());
        let (file, after) = more.split_at(len);
        files.push(file);
        rest = after;
    }
    let hashes: Vec<String> = (0..files.len()).map(|i| format!("{i:064x}")).collect();
    let mut delivered = 0u64;
    let mut check = |x: Exchange| {
        assert!(!x.host.is_empty(), "exchange without host");
        assert!(x.id.starts_with("x-"));
        let file = x
            .evidence
            .file_sha256
            .as_ref()
            .expect("evidence names a file");
        assert!(hashes.contains(file), "evidence names no file read");
        assert!(!x.evidence.locator.is_empty());
        delivered += 1;
    };
    let mut chain = CaptureChain::default();
    let mut read = Vec::new();
    let mut ended = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let opts = CaptureOptions {
            file_sha256: Some(hashes[i].clone()),
            limits: tiny_tap_limits(),
            keylogs: vec![Arc::from(TLS_CORPUS_KEYLOG)],
            ..CaptureOptions::new(format!("f{i}"), any_device().clone())
        };
        if chain
            .read_file(*file, &opts, None, &mut |_| {}, &mut check)
            .is_ok()
        {
            read.push(opts.label);
        }
        ended.extend(chain.take_ended());
    }
    ended.extend(chain.finish(&mut check));
    let labels: Vec<&String> = ended.iter().flat_map(|c| &c.labels).collect();
    assert_eq!(
        labels,
        read.iter().collect::<Vec<_>>(),
        "files and captures"
    );
    for capture in &ended {
        assert_eq!(capture.exchanges.len(), capture.labels.len());
    }
    let counted: u64 = ended.iter().flat_map(|c| &c.exchanges).sum();
    assert_eq!(
        counted, delivered,
        "exchanges per file against exchanges delivered"
    );
    delivered
}

/// The key log of the TLS corpus (`captures/tls/`), which the `tls_tap` seeds use.
const TLS_CORPUS_KEYLOG: &[u8] = include_bytes!("../../captures/tls/tls.keylog");
/// The key logs of the other TLS captures that are `tls_tap` seeds: the tunnels
/// through proxies (`captures/tls/connect.pcap`, `socks5.pcap`) and Encrypted Client
/// Hello (`ech.pcap`: its ECH lines open mutated outer hellos, its secrets are tried on
/// the connections that have none).
const OTHER_KEYLOGS: [&[u8]; 3] = [
    include_bytes!("../../captures/tls/connect.keylog"),
    include_bytes!("../../captures/tls/socks5.keylog"),
    include_bytes!("../../captures/tls/ech.keylog"),
];

/// `tls_tap`: the input is a pcap or pcapng file (seeds: `captures/tls/*`), run through
/// a `Tap` that knows the TLS corpus's key log, and also the key log of any Decryption
/// Secrets Block in it, so mutated records, hellos and secrets reach the decryptor and
/// the plaintext the parsers above it. Asserts every exchange has an id and a host.
pub fn tls_tap(data: &[u8]) {
    use consentry::case::DeviceResolver;
    use consentry::net::capture::{CaptureEvent, CaptureReader};
    use consentry::net::flow::SECRETS_TYPE_TLS_KEYLOG;
    use consentry::net::tap::Tap;
    let Ok(mut reader) = CaptureReader::new(data) else {
        return;
    };
    let mut tap = Tap::new(
        DeviceResolver::default(),
        None,
        None,
        SourceKind::Pcap,
        Default::default(),
    );
    tap.add_keylog(TLS_CORPUS_KEYLOG);
    for keylog in OTHER_KEYLOGS {
        tap.add_keylog(keylog);
    }
    let mut check = |x: Exchange| {
        assert!(!x.host.is_empty(), "exchange without host");
        assert!(x.id.starts_with("x-"));
    };
    while let Ok(Some(event)) = reader.next_event() {
        match event {
            CaptureEvent::Frame(f) => tap.frame(&f, &mut check),
            CaptureEvent::Secrets { secrets_type, data } => {
                if secrets_type == SECRETS_TYPE_TLS_KEYLOG {
                    tap.add_keylog(data);
                }
            }
            CaptureEvent::Custom {
                pen,
                data,
                big_endian,
                ..
            } => {
                let _ = tap.custom_block(pen, data, big_endian);
            }
        }
    }
    tap.finish(&mut check);
}

/// `har`: the input is a HAR file, streamed by `source::read_har`.
pub fn har(data: &[u8]) {
    let opts = HarOptions::new("fuzz", None);
    let _ = read_har(data, &opts, |_x| Ok::<(), std::convert::Infallible>(()));
}

/// `Content-Type` values the `decode` target picks from (`None`: no header).
pub const CONTENT_TYPES: [Option<&str>; 12] = [
    None,
    Some("application/json"),
    Some("application/x-www-form-urlencoded"),
    Some("multipart/form-data; boundary=XyZ"),
    Some("multipart/form-data; boundary=\"a b\""),
    Some("multipart/form-data"),
    Some("text/plain; charset=utf-8"),
    Some("application/octet-stream"),
    Some("application/json; charset=utf-8"),
    Some("application/x-protobuf"),
    Some("multipart/mixed; boundary="),
    Some("application/vnd.api+json"),
];

/// `Content-Encoding` values the `decode` target picks from.
pub const CONTENT_ENCODINGS: [Option<&str>; 12] = [
    None,
    Some("gzip"),
    Some("deflate"),
    Some("br"),
    Some("zstd"),
    Some("x-gzip"),
    Some("identity"),
    Some("gzip, br"),
    Some("deflate, gzip, zstd"),
    Some("gzip, gzip, gzip"),
    Some("compress"),
    Some(""),
];

/// `Transfer-Encoding` values the `decode` target picks from.
pub const TRANSFER_ENCODINGS: [Option<&str>; 5] = [
    None,
    Some("chunked"),
    Some("gzip, chunked"),
    Some("identity"),
    Some("CHUNKED"),
];

/// Bytes of the `decode` input read before the path length and the rest.
pub const DECODE_HEADER_LEN: usize = 5;

/// Picks entry `b` of a table (modulo its length).
fn pick<T: Copy>(table: &[T], b: u8) -> T {
    table[usize::from(b) % table.len()]
}

/// Builds the exchange the `decode` target decodes. Input layout:
///
/// | byte | meaning |
/// |---|---|
/// | 0 | `Content-Type` from [`CONTENT_TYPES`] |
/// | 1 | `Content-Encoding` from [`CONTENT_ENCODINGS`] |
/// | 2 | `Transfer-Encoding` from [`TRANSFER_ENCODINGS`] |
/// | 3 | flags: bit 0 the text also as `Cookie`, bit 1 as `Authorization`, bit 2 as `X-Data`, bit 3 `metadata_only`, bit 4 `request_body_cut` (the body kept only in part), bit 5 a coding list's last item in a second header line (`gzip, br` as `gzip` then `br`) |
/// | 4 | length n of the text (clamped to what is left) |
/// | 5..5+n | the text: path and query (lossy UTF-8), and the header values above |
/// | rest | the request body |
///
/// Shorter inputs read missing bytes as 0.
pub fn decode_exchange(data: &[u8]) -> Exchange {
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let rest = data.get(DECODE_HEADER_LEN..).unwrap_or(&[]);
    let n = usize::from(byte(4)).min(rest.len());
    let (text, body) = rest.split_at(n);
    let flags = byte(3);

    let mut x = Exchange::new("x-fuzz", SourceKind::Har, Timestamp::from_micros(0));
    x.host = "fuzz.example".into();
    x.method = "POST".into();
    x.path = String::from_utf8_lossy(text).into_owned();
    let mut headers = Vec::new();
    // The coding fields are lists, which bit 5 writes in two lines.
    let two_lines = flags & 32 != 0;
    for (name, table, b, list) in [
        ("Content-Type", &CONTENT_TYPES[..], byte(0), false),
        ("Content-Encoding", &CONTENT_ENCODINGS[..], byte(1), true),
        ("Transfer-Encoding", &TRANSFER_ENCODINGS[..], byte(2), true),
    ] {
        let Some(value) = pick(table, b) else {
            continue;
        };
        match value.rsplit_once(',').filter(|_| list && two_lines) {
            Some((first, last)) => {
                headers.push(Header::new(name, first));
                headers.push(Header::new(name, last.trim_start()));
            }
            None => headers.push(Header::new(name, value)),
        }
    }
    for (bit, name) in [(0, "Cookie"), (1, "Authorization"), (2, "X-Data")] {
        if flags & (1 << bit) != 0 {
            headers.push(Header::new(name, text));
        }
    }
    x.request_headers = headers;
    x.request_body = body.to_vec();
    x.metadata_only = flags & 8 != 0;
    x.request_body_cut = flags & 16 != 0;
    x
}

/// `decode`: an exchange built by [`decode_exchange`], split and decoded into parts.
pub fn decode(data: &[u8]) {
    let x = decode_exchange(data);
    let mut anomalies = Vec::new();
    let parts = decode::request_parts(&x, &Limits::default(), &mut anomalies);
    // Touch every part so that lazily wrong data (a bad range) would show.
    for p in &parts {
        let _ = p.location_at(0..p.data.len());
    }
}

/// `case`: the input, as lossy UTF-8, is a case file.
pub fn case(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = consentry::case::parse(&text, "fuzz.toml");
}

/// The case of the `pii` target: one device with identifiers of many kinds (all
/// synthetic values).
pub const PII_CASE: &str = r#"
[case]
id = "fuzz"

[app]
name = "Fuzz"
first_party = ["fuzz.example"]

[[device]]
id = "d1"
[device.identifiers]
advertising_id = "38400000-8cf0-11bd-b23e-10b96e40000d"
android_id = "9774d56d682e549c"
imei = "490154203237518"
oaid = "a1b2c3d4-0000-4e5f-8a9b-0c1d2e3f4a5b"
mac = "02:00:00:44:55:66"
phone = "+8613800138000"
email = "tester@example.org"
serial = "R58M12ABCDE"
location = { lat = 31.230416, lon = 121.473701 }
custom = { user_name = "Zhang San", short = "ab1" }
"#;

fn pii_detector() -> &'static Detector {
    static DETECTOR: OnceLock<Detector> = OnceLock::new();
    DETECTOR.get_or_init(|| {
        // A constant that tests/fuzz_regressions.rs checks parses.
        let case = consentry::case::parse(PII_CASE, "pii-case.toml").expect("PII_CASE is valid");
        Detector::new(&case)
    })
}

/// `pii`: the input is one message body scanned by a fixed detector; then the same
/// bytes as JSON text and as a `traceparent` header. Asserts the tracing-id rule
/// only ever drops pattern hits: none in the header, and, when the body's scan hit
/// no limit, every one of the JSON scan (positions aside: JSON names add those)
/// found by the body's.
pub fn pii(data: &[u8]) {
    use consentry::case::IdentifierKind;
    use consentry::pii::{Confidence, PiiMatch};
    let det = pii_detector();
    let mut limits = Vec::new();
    let body = det.scan_with_anomalies(&[Part::new("body", data)], &mut limits);
    let json = Part {
        json: Some(decode::LazyIndex::default()),
        ..Part::new("body", data)
    };
    let as_json = det.scan(&[json]);
    let patterns = |ms: &[PiiMatch]| -> Vec<(String, std::ops::Range<usize>)> {
        ms.iter()
            .filter(|m| m.confidence == Confidence::Pattern && m.kind != IdentifierKind::Location)
            .map(|m| (m.kind.key(), m.range.clone()))
            .collect()
    };
    if limits.is_empty() {
        let in_body = patterns(&body);
        for hit in patterns(&as_json) {
            assert!(in_body.contains(&hit), "{hit:?} found as JSON only");
        }
    }
    let header = det.scan(&[Part::new("header:traceparent", data)]);
    assert!(
        patterns(&header).is_empty(),
        "a pattern hit in a tracing header"
    );
}

fn pii_stream_detector() -> Arc<Detector> {
    static DETECTOR: OnceLock<Arc<Detector>> = OnceLock::new();
    DETECTOR
        .get_or_init(|| {
            let case =
                consentry::case::parse(PII_CASE, "pii-case.toml").expect("PII_CASE is valid");
            Arc::new(Detector::new(&case))
        })
        .clone()
}

/// `pii_stream`: byte 0 picks the cap (byte × 4, at most the body's length), byte 1
/// the piece size (1 + byte × 8); the rest is a body whose bytes past the cap go
/// through `pii::stream::StreamScanner`. Asserts that feeding it in those pieces
/// finds the same as feeding it whole, and that every hit's value is the body's
/// bytes at its offset, ending past the cap; and, with the second piece lost (a
/// capture's gap), that every hit is still the body's bytes at its offset and none
/// takes a byte from the lost piece.
pub fn pii_stream(data: &[u8]) {
    use consentry::pii::stream::StreamScanner;
    let (Some(&c), Some(&k)) = (data.first(), data.get(1)) else {
        return;
    };
    let body = data.get(2..).unwrap_or_default();
    let cap = (usize::from(c) * 4).min(body.len());
    let step = 1 + usize::from(k) * 8;
    let det = pii_stream_detector();
    let (prefix, rest) = body.split_at(cap);
    let mut whole = StreamScanner::new(det.clone(), prefix);
    whole.feed(rest);
    let whole = whole.finish();
    let mut pieces = StreamScanner::new(det, prefix);
    for piece in rest.chunks(step) {
        pieces.feed(piece);
    }
    let pieces = pieces.finish();
    assert_eq!(whole, pieces, "a split changed what the stream found");
    for h in &whole.hits {
        let at = h.offset as usize;
        let end = at + h.value.len();
        assert!(end > cap, "a hit inside the analysed prefix: {h:?}");
        assert_eq!(body.get(at..end), Some(&h.value[..]), "{h:?}");
    }
    let mut gapped = StreamScanner::new(pii_stream_detector(), prefix);
    let mut lost = cap..cap;
    for (i, piece) in rest.chunks(step).enumerate() {
        if i == 1 {
            lost = cap + step..cap + step + piece.len();
            gapped.gap(piece.len() as u64);
        } else {
            gapped.feed(piece);
        }
    }
    for h in &gapped.finish().hits {
        let at = h.offset as usize;
        let end = at + h.value.len();
        assert_eq!(body.get(at..end), Some(&h.value[..]), "{h:?}");
        let across = !lost.is_empty() && end > lost.start && at < lost.end;
        assert!(!across, "a hit across the gap {lost:?}: {h:?}");
    }
    // The same bytes cut at `cap` as two parts of a payload: what is found across
    // the cut are the body's bytes, and straddle it.
    let det = pii_stream_detector();
    let across = consentry::pii::stream::across_cut(&det, prefix, rest, &mut Vec::new());
    for h in &across {
        let len = h.value.len();
        let straddles = (cap.saturating_sub(len.saturating_sub(1))..cap)
            .any(|at| at + len > cap && body.get(at..at + len) == Some(&h.value[..]));
        assert!(straddles, "found across the cut but not across it: {h:?}");
    }
}

/// `decoded_tail`: byte 0 picks the request's `Content-Encoding` (gzip, deflate, br,
/// zstd, two codings, none), byte 1 the cap (byte × 16, at most the body's length),
/// byte 2 the piece size (1 + byte × 8); the rest is the body as sent, whose bytes
/// past the cap go through `pii::decoded_tail::body_tail` (small decoding limits, and
/// an analysis that examines less than a long kept part).
/// Asserts that a decoded search's hits all name its coding, that it searched no more
/// decoded bytes than the ratio allows, and that, when decoding did not stop (no
/// anomaly either way), feeding the tail in those pieces finds the same as feeding it
/// whole.
pub fn decoded_tail(data: &[u8]) {
    use consentry::decode::Limits;
    use consentry::net::tail_search::TailStart;
    use consentry::pii::decoded_tail::body_tail;
    const CODINGS: [&str; 7] = [
        "gzip",
        "deflate",
        "br",
        "zstd",
        "gzip, br",
        "identity",
        "deflate, gzip",
    ];
    let (Some(&e), Some(&c), Some(&k)) = (data.first(), data.get(1), data.get(2)) else {
        return;
    };
    let body = data.get(3..).unwrap_or_default();
    let encoding = CODINGS[usize::from(e) % CODINGS.len()];
    let cap = (usize::from(c) * 16).min(body.len());
    let step = 1 + usize::from(k) * 8;
    // The analysis examines 2 048 bytes of what is kept (up to 4 080): a kept part
    // longer than that is decoded past it too.
    let limits = Limits {
        max_body_bytes: 2048,
        max_decoded_bytes: 4096,
        max_ratio: 20,
        ..Limits::default()
    };
    let (kept, rest) = body.split_at(cap);
    let run = |pieces: usize| {
        let mut tail = body_tail(
            pii_stream_detector(),
            &limits,
            TailStart {
                before: kept,
                at: cap as u64,
                content_encoding: Some(encoding.as_bytes()),
            },
        );
        for piece in rest.chunks(pieces.max(1)) {
            tail.feed(piece);
        }
        tail.finish()
    };
    let whole = run(rest.len());
    let pieces = run(step);
    for found in [&whole, &pieces] {
        for h in &found.hits {
            assert_eq!(h.decoded_from, found.decoded_from, "{h:?}");
        }
        if found.decoded_from.is_some() {
            // At most 20 times the body's bytes (but 1 MiB), kept part included.
            let allowed = (body.len() as u64 * 20).max(1 << 20);
            assert!(
                found.bytes <= allowed,
                "{} decoded bytes searched",
                found.bytes
            );
        }
    }
    if whole.anomalies.is_empty() && pieces.anomalies.is_empty() {
        assert_eq!(
            whole, pieces,
            "a split changed what the decoded search found"
        );
    }
}

/// The case of the `analyze` target: the demo case (one device, refusals, grants).
pub const ANALYZE_CASE: &str = include_str!("../../captures/demo/consentry.toml");
/// The device every HAR exchange is attributed to, as the CLI does for a one-device case.
pub const ANALYZE_DEVICE: &str = "pixel7";

struct Shared {
    case: Arc<Case>,
    detector: Arc<Detector>,
    classifier: Arc<Classifier>,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        // A constant that tests/fuzz_regressions.rs checks parses.
        let case = consentry::case::parse(ANALYZE_CASE, "demo.toml").expect("demo case is valid");
        Shared {
            detector: Arc::new(Detector::new(&case)),
            classifier: Arc::new(Classifier::new(&case.app)),
            case: Arc::new(case),
        }
    })
}

/// `analyze`: the input is a HAR file; every exchange goes through a fresh analyzer
/// of the demo case (decode, pii, parties, consent, rules) and the findings are
/// written as JSON lines.
pub fn analyze(data: &[u8]) {
    let s = shared();
    let mut analyzer = Analyzer::with_parts(
        s.case.clone(),
        s.detector.clone(),
        s.classifier.clone(),
        Options::default(),
    );
    let mut findings = Vec::new();
    let _ = read_har(data, &HarOptions::new("fuzz", None), |mut x| {
        x.device = Some(ANALYZE_DEVICE.to_string());
        findings.extend(analyzer.observe(&x).findings);
        Ok::<(), std::convert::Infallible>(())
    });
    consentry::report::sort_findings(&mut findings);
    let _ = consentry::report::write_jsonl(&findings, &mut std::io::sink());
}

/// Whether the shared cases parse (for tests: the targets `expect` it).
pub fn cases_parse() -> Result<(), String> {
    consentry::case::parse(PII_CASE, "pii-case.toml").map_err(|e| e.to_string())?;
    consentry::case::parse(ANALYZE_CASE, "demo.toml").map_err(|e| e.to_string())?;
    Ok(())
}

/// One step of the `http1` input: see [`http1`].
enum Http1Step<'a> {
    Data { client: bool, bytes: &'a [u8] },
    Gap { client: bool, len: u64 },
}

/// Splits an `http1` input into steps. Each step starts with a control byte `c`:
/// bit 7 = server side; bit 6 = a gap of `(c & 0x3f) + 1` bytes; otherwise `c & 0x3f`
/// is the length of the data that follows (0x3f: the next two bytes, big-endian).
fn http1_steps(mut data: &[u8]) -> Vec<Http1Step<'_>> {
    let mut steps = Vec::new();
    while let Some((&c, rest)) = data.split_first() {
        data = rest;
        let client = c & 0x80 == 0;
        if c & 0x40 != 0 {
            steps.push(Http1Step::Gap {
                client,
                len: u64::from(c & 0x3f) + 1,
            });
            continue;
        }
        let mut len = usize::from(c & 0x3f);
        if len == 0x3f {
            let [a, b, ..] = data else { break };
            len = usize::from(u16::from_be_bytes([*a, *b]));
            data = &data[2..];
        }
        let (bytes, rest) = data.split_at(len.min(data.len()));
        data = rest;
        steps.push(Http1Step::Data { client, bytes });
    }
    steps
}

fn http1_run(steps: &[Http1Step<'_>], bytewise: bool) -> Vec<consentry::net::http1::Http1Event> {
    use consentry::net::http1::{Http1Conn, Http1Limits};
    let limits = Http1Limits {
        max_body_bytes: 256,
        max_pending_requests: 8,
        ..Http1Limits::default()
    };
    let mut conn = Http1Conn::new(limits).with_tail_search(Some(keep_all()));
    let mut out = Vec::new();
    for (frame, step) in steps.iter().enumerate() {
        let ts = Timestamp::from_micros(frame as i64);
        match *step {
            Http1Step::Data { client, bytes } => {
                let pieces: Vec<&[u8]> = if bytewise {
                    bytes.chunks(1).collect()
                } else {
                    vec![bytes]
                };
                for p in pieces {
                    if client {
                        conn.client_data(p, ts, frame as u64, &mut out);
                    } else {
                        conn.server_data(p, ts, frame as u64, &mut out);
                    }
                }
                let _ = conn.take_opaque_bytes(client);
            }
            Http1Step::Gap { client: true, len } => conn.client_gap(len, &mut out),
            Http1Step::Gap { client: false, len } => conn.server_gap(len, &mut out),
        }
    }
    conn.close(&mut out);
    out
}

/// A tail search that keeps all it is given as one hit: the lead-in as its kind, the
/// offset it started at, the bytes fed with each gap written `<gap N>`. The `http1`
/// target's events then show that a body's rest past the cap reaches the search the
/// same however the input is cut.
fn keep_all() -> consentry::net::tail_search::TailSearch {
    use consentry::exchange::BeyondCapHit;
    use consentry::net::tail_search::{TailFound, TailScan, TailSearch, TailStart};
    struct KeepAll {
        lead: Vec<u8>,
        at: u64,
        seen: Vec<u8>,
    }
    impl TailScan for KeepAll {
        fn feed(&mut self, chunk: &[u8]) {
            self.seen.extend_from_slice(chunk);
        }
        fn gap(&mut self, len: u64) {
            self.seen
                .extend_from_slice(format!("<gap {len}>").as_bytes());
        }
        fn finish(self: Box<Self>) -> TailFound {
            TailFound {
                bytes: self.seen.len() as u64,
                total_hits: 1,
                hits: vec![BeyondCapHit {
                    kind: String::from_utf8_lossy(&self.lead).into_owned(),
                    device: None,
                    encoding: String::new(),
                    offset: self.at,
                    decoded_from: None,
                    sensitive: false,
                    value: self.seen,
                }],
                ..TailFound::default()
            }
        }
    }
    TailSearch(Arc::new(|start: TailStart<'_>| {
        Box::new(KeepAll {
            lead: start.before.to_vec(),
            at: start.at,
            seen: Vec::new(),
        }) as Box<dyn TailScan>
    }))
}

/// `http1`: the input is split into client data, server data and gaps by control bytes
/// (see `http1_steps`); the events must not depend on how each piece is split further
/// (the same steps fed byte by byte give the same events).
pub fn http1(data: &[u8]) {
    let steps = http1_steps(data);
    let whole = http1_run(&steps, false);
    let bytewise = http1_run(&steps, true);
    assert_eq!(whole, bytewise, "split-dependent HTTP/1 events");
}

/// The input as the answer to each form of HTTP DNS lookup (`net::http_dns`), plain,
/// gzipped, brotli-coded and in two codings (one header line or two): within its bounds, every name it gives a DNS name, and
/// what it maps inserted without a panic; and as a form a lookup is posted in.
fn http_dns(data: &[u8], map: &mut consentry::net::dns::DnsMap) {
    use consentry::exchange::Header;
    use consentry::net::http_dns::{lookup, lookup_request, names_query, MAX_ADDRESSES, MAX_NAMES};
    let codings = [
        Vec::new(),
        vec![Header::new("content-encoding", "gzip")],
        vec![Header::new("content-encoding", "br")],
        vec![
            Header::new("content-encoding", "gzip"),
            Header::new("Content-Encoding", "br"),
        ],
        vec![Header::new("content-encoding", "deflate, gzip")],
    ];
    let targets = [
        "/resolve?name=a.example&type=A",
        "/1/d?host=a.example",
        "/1/resolve?host=a.example,b.example",
        "/d?dn=a.example",
        "/d?dn=a.example,b.example&ttl=1",
    ];
    for target in targets {
        for headers in &codings {
            let Some(l) = lookup(target, 200, headers, data) else {
                continue;
            };
            assert!(l.asked.len() <= MAX_NAMES, "too many names asked");
            for m in &l.answers {
                assert!(
                    m.response && m.rcode == 0,
                    "a lookup's answer is a response"
                );
                assert!(m.answers.len() <= 2 * MAX_ADDRESSES, "unbounded answer");
                for r in &m.answers {
                    assert!(
                        !r.name.is_empty()
                            && r.name.bytes().all(|b| b.is_ascii_lowercase()
                                || b.is_ascii_digit()
                                || matches!(b, b'.' | b'-' | b'_')),
                        "not a DNS name: {:?}",
                        r.name
                    );
                }
                map.insert_answers(m, Timestamp::from_micros(4));
            }
        }
    }
    // The input as a form a lookup is posted in: its query is the form itself.
    let form = [Header::new(
        "content-type",
        "application/x-www-form-urlencoded",
    )];
    if let Some(query) = names_query("/d", &form, data) {
        assert!(
            data.starts_with(query.as_bytes()),
            "a posted lookup's query is its form"
        );
        let _ = lookup_request("/d", &form, data, 200, &[], b"192.0.2.1;fd00::1,60");
    }
}

/// The proxy's DNS relay on `data` as a client's message and as an upstream answer:
/// its verdict, its own answer (a header with the message's id, and its question
/// bytes or none), and the ECH switch (no byte moves, only version fields change,
/// and an answer section that parsed still parses, with no ECH config left in it).
fn dns_relay(data: &[u8]) {
    use consentry::proxy::dns_relay::{error_reply, judge_query, SERVFAIL};
    let _ = judge_query(data, true);
    let _ = judge_query(data, false);
    if let Some(reply) = error_reply(data, SERVFAIL) {
        assert!(
            reply.len() >= 12 && reply[..2] == data[..2],
            "error reply header"
        );
        assert!(
            reply.len() == 12 || data[12..].starts_with(&reply[12..]),
            "error reply question"
        );
    }
    let mut switched = data.to_vec();
    let disabled = consentry::proxy::dns_ech::disable_ech(&mut switched);
    assert_eq!(switched.len(), data.len(), "ECH switch moved bytes");
    let changed = data.iter().zip(&switched).filter(|(a, b)| a != b).count();
    assert!(
        changed <= 2 * disabled,
        "ECH switch changed more than versions"
    );
    if consentry::net::dns::parse(data).is_ok() {
        let after = consentry::net::dns::parse(&switched).expect("parses after the ECH switch");
        for rec in &after.answers {
            if let consentry::net::dns::RecordData::Svcb(svcb) = &rec.data {
                assert!(svcb.ech.is_empty(), "an ECH config left");
            }
        }
    }
}

/// `dns`: the input as a DNS message (into a `DnsMap`), and as a DNS-over-TCP stream
/// cut at the position given by its first byte (both cuts must frame alike).
pub fn dns(data: &[u8]) {
    use consentry::net::dns::{parse, DnsMap, DnsTcpFramer};
    let mut map = DnsMap::new();
    if let Ok(msg) = parse(data) {
        map.insert_answers(&msg, Timestamp::from_micros(1));
        for rec in &msg.answers {
            match &rec.data {
                consentry::net::dns::RecordData::A(a) => {
                    let _ = map.lookup(std::net::IpAddr::V4(*a), Timestamp::from_micros(2));
                }
                // An SVCB/HTTPS answer alone in its message: a hinted address's ECH
                // name under each of the record's configs is its DNS name.
                consentry::net::dns::RecordData::Svcb(svcb) if msg.answers.len() == 1 => {
                    let at = Timestamp::from_micros(2);
                    for (addr, front) in svcb.hints.iter().zip(&svcb.ech) {
                        let name = map.ech_name(*addr, &front.public_name, front.config_id, at);
                        assert_eq!(name, map.lookup(*addr, at), "ECH name of a hinted address");
                    }
                }
                _ => {}
            }
        }
    }
    // The names an mDNS message is about: every question of a message that parses is
    // among them, and a message about the system alone names something.
    if let (Ok(msg), Ok(names)) = (parse(data), consentry::net::dns::subject_names(data)) {
        for q in &msg.questions {
            assert!(names.contains(&q.name), "question {} not a subject", q.name);
        }
    }
    if consentry::net::mdns::is_system_message(data) {
        let names = consentry::net::dns::subject_names(data).unwrap_or_default();
        assert!(
            names.iter().any(|n| !n.is_empty()),
            "system message naming nothing"
        );
    }
    dns_relay(data);
    http_dns(data, &mut map);
    let cut = usize::from(data.first().copied().unwrap_or(0)).min(data.len());
    let mut framer = DnsTcpFramer::new();
    let mut split = Vec::new();
    framer.push(&data[..cut], &mut split);
    framer.push(&data[cut..], &mut split);
    let mut whole = Vec::new();
    DnsTcpFramer::new().push(data, &mut whole);
    assert_eq!(whole, split, "split-dependent DNS framing");
    // In a small message budget: a message held over a cut may be passed over, so the
    // messages are those of the whole input with some left out, in order, and the
    // budget is never overspent nor left held.
    let budget = consentry::net::message_budget::MessageBudget::new(2048);
    let mut held_in_budget = DnsTcpFramer::new().with_budget(&budget);
    let mut kept = Vec::new();
    held_in_budget.push(&data[..cut], &mut kept);
    assert!(budget.held() <= 2048, "DNS framer over its budget");
    held_in_budget.push(&data[cut..], &mut kept);
    assert!(budget.held() <= 2048, "DNS framer over its budget");
    let mut rest = whole.iter();
    for m in &kept {
        assert!(
            rest.any(|w| w == m),
            "a message the whole input does not give"
        );
    }
    drop(held_in_budget);
    assert_eq!(budget.held(), 0, "DNS framer's budget not given back");
    for m in &whole {
        if let Ok(msg) = parse(m) {
            map.insert_answers(&msg, Timestamp::from_micros(3));
        }
    }
}

/// `tls_hello`: the input as a client and as a server stream for `HelloReader`, whole
/// and cut at the position given by its first byte (same answer), and through the
/// protocol sniffer.
pub fn tls_hello(data: &[u8]) {
    use consentry::net::sniff;
    use consentry::net::tls::{
        decode_inner_client_hello, parse_client_hello, version_name, HelloPoll, HelloReader,
    };
    let cut = usize::from(data.first().copied().unwrap_or(0)).min(data.len());
    // An EncodedClientHelloInner (what an ECH payload opens to) against an outer hello.
    if let Ok(inner) = decode_inner_client_hello(&data[cut..], &data[..cut]) {
        let _ = parse_client_hello(&inner);
    }
    let whole = HelloReader::new().client_hello(data);
    let mut r = HelloReader::new();
    let split = match r.client_hello(&data[..cut]) {
        HelloPoll::NeedMore => r.client_hello(&data[cut..]),
        other => other,
    };
    assert_eq!(whole, split, "split-dependent ClientHello");
    if let HelloPoll::Done(h) = whole {
        let _ = version_name(h.offered_version());
        // Fixed shapes whatever the hello: 32 hex digits, 36 ASCII characters.
        use consentry::net::tls_fingerprint::Transport;
        let (ja3, ja4) = (h.fingerprints.ja3(), h.fingerprints.ja4(Transport::Quic));
        assert!(
            ja3.len() == 32 && ja3.bytes().all(|b| b.is_ascii_hexdigit()),
            "{ja3}"
        );
        assert!(
            ja4.len() == 36 && ja4.is_ascii() && ja4.starts_with('q'),
            "{ja4}"
        );
    }
    let _ = HelloReader::new().server_hello(data);
    server_flight(data, cut);
    let _ = sniff::sniff_client(data);
    let _ = sniff::sniff_client_with_ports(data, 53, 1);
    let _ = sniff::sniff_server(data);
    let _ = sniff::sniff_server_with_ports(data, 53, 1);
}

/// The input as a server's first flight for `ServerFlightReader`, whole and cut at
/// `cut` (same hello, same certificate, same answer), and as a certificate message
/// body in both layouts and compressed.
fn server_flight(data: &[u8], cut: usize) {
    use consentry::net::tls::{FlightPoll, ServerFlightReader};
    use consentry::net::tls_certificate::{
        decompress_certificate, parse_certificate, MAX_NAMES, MAX_TEXT,
    };
    let read = |pieces: &[&[u8]]| {
        let mut r = ServerFlightReader::new();
        let (mut hello, mut cert, mut poll) = (None, None, FlightPoll::NeedMore);
        for piece in pieces {
            poll = r.push(piece);
            hello = hello.or(r.take_hello());
            cert = cert.or(r.take_certificate());
            if poll != FlightPoll::NeedMore {
                break;
            }
        }
        (poll, hello, cert)
    };
    let whole = read(&[data]);
    assert_eq!(
        whole,
        read(&[&data[..cut], &data[cut..]]),
        "split-dependent flight"
    );
    let mut certs: Vec<_> = whole.2.into_iter().collect();
    for tls13 in [false, true] {
        certs.extend(parse_certificate(data, tls13).ok().flatten());
    }
    if let Ok(message) = decompress_certificate(data) {
        certs.extend(parse_certificate(&message, true).ok().flatten());
    }
    for c in certs {
        assert!(c.names.len() <= MAX_NAMES);
        // Cut text ends in `…` (3 bytes) after at most MAX_TEXT bytes.
        assert!(c.subject.len() <= MAX_TEXT + 3 && c.issuer.len() <= MAX_TEXT + 3);
        assert!(c.sha256.len() == 64 && c.chain >= 1);
    }
}

/// The key log of the `tls_decrypt` target: RFC 8448 §3's traffic secrets for its
/// client random, and a TLS 1.2 master secret for the all-zero client random.
const TLS_DECRYPT_KEYLOG: &str = "\
CLIENT_HANDSHAKE_TRAFFIC_SECRET cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7 b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21
SERVER_HANDSHAKE_TRAFFIC_SECRET cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7 b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38
CLIENT_TRAFFIC_SECRET_0 cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7 9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5
SERVER_TRAFFIC_SECRET_0 cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7 a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643
CLIENT_RANDOM 0000000000000000000000000000000000000000000000000000000000000000 616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161
";

/// `tls_decrypt`: `net::tls_decrypt::TlsDecryptor` with a fixed key log. The input is
/// steps: a byte `h` (bit 7: server side; `h & 0x7f == 0x7f`: a gap on that side;
/// else that many bytes follow, fewer at the end), each pushed as captured in a frame
/// of its own (`push_at`). Asserts that cutting every step in two at its middle gives
/// the same outputs and status (stream-split invariance), plaintext of held records
/// saying the same frames either way.
pub fn tls_decrypt(data: &[u8]) {
    use consentry::net::keylog::KeyLog;
    use consentry::net::tls_decrypt::{TlsDecryptor, TlsOutput};
    let mut steps: Vec<(bool, Option<&[u8]>)> = Vec::new();
    let mut rest = data;
    while let [h, tail @ ..] = rest {
        let from_client = h & 0x80 == 0;
        let n = usize::from(h & 0x7f);
        if n == 0x7f {
            steps.push((from_client, None));
            rest = tail;
            continue;
        }
        let (bytes, tail) = tail.split_at(n.min(tail.len()));
        steps.push((from_client, Some(bytes)));
        rest = tail;
    }
    let run = |split: bool| {
        let mut keys = KeyLog::new();
        keys.add(TLS_DECRYPT_KEYLOG.as_bytes());
        let mut tls = TlsDecryptor::new();
        // Per direction: runs of plaintext captured at the same place.
        type Run = (Option<(Timestamp, u64)>, Vec<u8>);
        let mut plain: [Vec<Run>; 2] = [Vec::new(), Vec::new()];
        let mut anomalies = Vec::new();
        for (frame, &(from_client, bytes)) in steps.iter().enumerate() {
            let at = (Timestamp::from_micros(frame as i64), frame as u64);
            let mut out = Vec::new();
            match bytes {
                None => tls.gap(from_client),
                Some(b) if split => {
                    let (x, y) = b.split_at(b.len() / 2);
                    tls.push_at(from_client, x, at, &mut keys, &mut out);
                    tls.push_at(from_client, y, at, &mut keys, &mut out);
                }
                Some(b) => tls.push_at(from_client, b, at, &mut keys, &mut out),
            }
            for o in out {
                match o {
                    TlsOutput::Plaintext {
                        from_client,
                        data,
                        captured,
                    } => {
                        let runs = &mut plain[usize::from(!from_client)];
                        match runs.last_mut() {
                            Some((c, d)) if *c == captured => d.extend(data),
                            _ => runs.push((captured, data)),
                        }
                    }
                    TlsOutput::Anomaly(a) => anomalies.push(a),
                }
            }
        }
        let _ = (tls.alpn(), tls.client_hello(), tls.server_hello());
        (plain, anomalies, tls.status(), tls.records_decrypted())
    };
    assert_eq!(run(false), run(true), "split-dependent TLS decryption");
}

/// `quic`: byte 0 picks the mode, the rest is split at `FE FD` into pieces.
/// Mode bit 0 clear: each piece is a client datagram fed to one
/// `net::quic::QuicInitialReader` as it is (header parsing, authentication failures).
/// Bit 0 set: each piece is the plaintext frames of an Initial packet, protected with
/// `net::quic::protect_client_initial` (bit 1: QUIC v2 instead of v1; packet number =
/// the piece's index, its length from bits 2-3) and fed one per datagram, or all
/// coalesced in one when bit 4 is set — so frame parsing, CRYPTO reassembly and the
/// ClientHello parser see the fuzzer's bytes. Answers must be consistent: `NotTls`
/// only on the first datagram, nothing but `Malformed` after a final answer.
pub fn quic(data: &[u8]) {
    use consentry::net::quic::{self, QuicInitialReader, QUIC_V1, QUIC_V2};
    use consentry::net::tls::HelloPoll;
    let mode = data.first().copied().unwrap_or(0);
    let rest = data.get(1..).unwrap_or(&[]);
    let mut pieces: Vec<&[u8]> = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + 1 < rest.len() {
        if rest[i] == 0xfe && rest[i + 1] == 0xfd {
            pieces.push(&rest[start..i]);
            start = i + 2;
            i += 2;
        } else {
            i += 1;
        }
    }
    pieces.push(&rest[start..]);
    let datagrams: Vec<Vec<u8>> = if mode & 1 == 0 {
        pieces.iter().map(|p| p.to_vec()).collect()
    } else {
        let version = if mode & 2 == 0 { QUIC_V1 } else { QUIC_V2 };
        let pn_len = usize::from((mode >> 2) & 3) + 1;
        let packets: Vec<Vec<u8>> = pieces
            .iter()
            .enumerate()
            .filter_map(|(n, p)| {
                quic::protect_client_initial(version, &[0x5a; 8], &[1, 2], n as u64, pn_len, p, 0)
            })
            .collect();
        if mode & 16 != 0 {
            vec![packets.concat()]
        } else {
            packets
        }
    };
    let mut r = QuicInitialReader::new();
    let mut finished = false;
    for (n, d) in datagrams.iter().enumerate() {
        let _ = quic::looks_like_initial(d);
        let poll = r.push(d);
        if finished {
            assert!(
                matches!(poll, HelloPoll::Malformed(_)),
                "answer after the end"
            );
        }
        if n > 0 {
            assert_ne!(poll, HelloPoll::NotTls, "NotTls after the first datagram");
        }
        if let HelloPoll::Done(h) = &poll {
            let _ = consentry::net::tls::version_name(h.offered_version());
        }
        finished |= poll != HelloPoll::NeedMore;
        assert!(r.anomalies().len() <= 8);
    }
}

/// Bytes of the `tcp` input read before the ops.
pub const TCP_HEADER_LEN: usize = 6;

/// What the `tcp` target checks about the deliveries it sees.
struct TcpCheck {
    /// Bytes delivered plus gap lengths: must equal `Reassembler::next_offset`.
    total: u64,
    /// The byte expected next (segment bytes are their sequence number's low byte),
    /// once a first data byte was seen; checked only when no op altered bytes.
    expect: Option<u8>,
    clean: bool,
}

impl TcpCheck {
    fn see(&mut self, d: consentry::net::tcp::Delivery<'_>) {
        use consentry::net::tcp::Delivery;
        match d {
            Delivery::Data { bytes, .. } => {
                assert!(!bytes.is_empty(), "empty data delivery");
                self.total += bytes.len() as u64;
                for &b in bytes {
                    if self.clean {
                        if let Some(e) = self.expect {
                            assert_eq!(b, e, "byte delivered out of its place");
                        }
                    }
                    self.expect = Some(b.wrapping_add(1));
                }
            }
            Delivery::Gap { len, .. } => {
                assert!(len > 0, "empty gap");
                self.total += len;
                self.expect = self.expect.map(|e| e.wrapping_add(len as u8));
            }
        }
    }
}

/// `tcp`: one `net::tcp::Reassembler` with small limits, driven by ops. Input layout:
///
/// | byte | meaning |
/// |---|---|
/// | 0 | `max_buffered_bytes` / 4 |
/// | 1 | `max_segments` - 1 (mod 16); `max_window` is 4096 |
/// | 2..6 | the first sequence number (little endian) |
/// | then 4 bytes per op | flags, sequence delta (i16 LE), length |
///
/// The sequence number of an op is the end of the previous segment plus the delta
/// (plus the delta shifted by 16 bits when flag 0x10 is set: a jump). Flags: 0x01 FIN,
/// 0x02 a SYN at that sequence number instead of a segment, 0x04 flush, 0x08
/// `shrink_to(length)` instead of a segment, 0x20 bytes altered (otherwise every
/// payload byte is the low byte of its sequence number, which lets the target check
/// that each delivered byte sits at its place). Shorter inputs read missing bytes as 0.
pub fn tcp(data: &[u8]) {
    use consentry::net::tcp::{Reassembler, SegmentMeta, TcpLimits};
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let limits = TcpLimits {
        max_buffered_bytes: usize::from(byte(0)) * 4,
        max_segments: usize::from(byte(1) % 16) + 1,
        max_window: 4096,
    };
    let ops = data.get(TCP_HEADER_LEN..).unwrap_or(&[]);
    let mut r = Reassembler::new(limits);
    let mut check = TcpCheck {
        total: 0,
        expect: None,
        clean: !ops
            .chunks(4)
            .any(|op| op.first().is_some_and(|f| f & 0x20 != 0)),
    };
    let mut cursor = u32::from_le_bytes([byte(2), byte(3), byte(4), byte(5)]);
    let mut payload = Vec::with_capacity(255);
    for (frame, op) in ops.chunks(4).enumerate() {
        let at = |i: usize| op.get(i).copied().unwrap_or(0);
        let (flags, len) = (at(0), at(3));
        let delta = i32::from(i16::from_le_bytes([at(1), at(2)])) as u32;
        let mut seq = cursor.wrapping_add(delta);
        if flags & 0x10 != 0 {
            seq = seq.wrapping_add(delta << 16);
        }
        let meta = SegmentMeta {
            ts: Timestamp::from_micros(frame as i64),
            frame: frame as u64,
        };
        if flags & 0x02 != 0 {
            r.syn(seq);
        } else if flags & 0x08 != 0 {
            r.shrink_to(usize::from(len), &mut |d| check.see(d));
            assert!(r.buffered_bytes() <= usize::from(len));
        } else {
            let xor = if flags & 0x20 != 0 { 0x5a } else { 0 };
            payload.clear();
            payload.extend((0..u32::from(len)).map(|k| seq.wrapping_add(k) as u8 ^ xor));
            r.segment(seq, &payload, flags & 0x01 != 0, meta, &mut |d| {
                check.see(d)
            });
            cursor = seq.wrapping_add(u32::from(len));
        }
        if flags & 0x04 != 0 {
            r.flush(&mut |d| check.see(d));
            assert_eq!(r.buffered_bytes(), 0);
        }
        assert!(r.buffered_bytes() <= limits.max_buffered_bytes);
        assert!(r.buffered_segments() <= limits.max_segments);
        assert_eq!(check.total, r.next_offset());
    }
    r.flush(&mut |d| check.see(d));
    assert_eq!(r.buffered_bytes(), 0);
    assert_eq!(check.total, r.next_offset());
}

/// `hpack`: byte 0 picks the dynamic table cap (`byte * 64`) and byte 1 the announced
/// `SETTINGS_HEADER_TABLE_SIZE` (`byte * 256`); the rest is split at `FE FD` into
/// header blocks decoded in turn by one `HpackDecoder` (so the dynamic table carries
/// over) until the first error; the table must stay within the cap. Each block is also
/// Huffman-decoded on its own: a valid Huffman string has exactly one encoding, so
/// re-encoding what was decoded must give the input back.
pub fn hpack(data: &[u8]) {
    use consentry::net::hpack::{encode, huffman_decode, HpackDecoder};
    let cap = usize::from(data.first().copied().unwrap_or(0)) * 64;
    let announced = u32::from(data.get(1).copied().unwrap_or(0)) * 256;
    let rest = data.get(2..).unwrap_or(&[]);
    let mut decoder = HpackDecoder::new(cap);
    decoder.announce_table_size(announced);
    let mut broken = false;
    let mut start = 0;
    let mut blocks = Vec::new();
    for i in 0..rest.len() {
        if rest[i] == 0xfe && rest.get(i + 1) == Some(&0xfd) {
            blocks.push(&rest[start..i]);
            start = i + 2;
        }
    }
    blocks.push(rest.get(start..).unwrap_or(&[]));
    for block in blocks {
        if !broken {
            let mut out = Vec::new();
            broken = decoder.decode(block, 4096, &mut out).is_err();
            let listed: usize = out.iter().map(|h| h.name.len() + h.value.len() + 32).sum();
            assert!(listed <= 4096, "header list over its limit");
            assert!(decoder.table_size() <= cap, "dynamic table over its cap");
        }
        let mut text = Vec::new();
        if huffman_decode(block, &mut text).is_ok() {
            assert_eq!(
                encode::huffman(&text),
                block,
                "Huffman decoding is not one-to-one"
            );
        }
    }
}

fn http2_run(steps: &[Http1Step<'_>], bytewise: bool) -> Vec<consentry::net::http2::Http2Event> {
    use consentry::net::http2::{Http2Conn, Http2Limits};
    let limits = Http2Limits {
        max_frame_bytes: 512,
        max_header_list_bytes: 1024,
        max_streams_open: 4,
        max_body_bytes: 64,
        max_held_bytes: 2048,
        max_dynamic_table: 512,
    };
    let mut conn = Http2Conn::new(limits).with_tail_search(Some(keep_all()));
    let mut out = Vec::new();
    conn.client_data(
        consentry::net::sniff::H2_PREFACE,
        Timestamp::from_micros(0),
        0,
        &mut out,
    );
    for (frame, step) in steps.iter().enumerate() {
        let ts = Timestamp::from_micros(frame as i64);
        match *step {
            Http1Step::Data { client, bytes } => {
                let pieces: Vec<&[u8]> = if bytewise {
                    bytes.chunks(1).collect()
                } else {
                    vec![bytes]
                };
                for p in pieces {
                    if client {
                        conn.client_data(p, ts, frame as u64, &mut out);
                    } else {
                        conn.server_data(p, ts, frame as u64, &mut out);
                    }
                }
            }
            Http1Step::Gap { client: true, len } => conn.client_gap(len, &mut out),
            Http1Step::Gap { client: false, len } => conn.server_gap(len, &mut out),
        }
    }
    conn.close(&mut out);
    out
}

/// `websocket`: a client's WebSocket bytes for `WsReader` with small limits. Byte 0:
/// bit 0 permessage-deflate offered, bit 1 a gap after the cut; byte 1: where the
/// rest is cut in two (mod its length + 1). The two pieces must give the events the
/// whole gives (without the gap), what a tail search is given past the limit
/// included, and every message stays within its limit.
pub fn websocket(data: &[u8]) {
    use consentry::net::websocket::{WsEvent, WsLimits, WsReader};
    let (Some(&flags), Some(&cut)) = (data.first(), data.get(1)) else {
        return;
    };
    let rest = &data[2..];
    let limits = WsLimits {
        max_message_bytes: 256,
        max_inflated_bytes: 4096,
    };
    let deflate = flags & 1 != 0;
    let at = usize::from(cut) % (rest.len() + 1);
    let read = |pieces: &[&[u8]], gap: bool| {
        let mut r = WsReader::new(limits.clone(), deflate).with_tail_search(Some(keep_all()));
        let mut out = Vec::new();
        for (i, p) in pieces.iter().enumerate() {
            r.push(p, Timestamp::from_micros(i as i64), i as u64 + 1, &mut out);
            if gap && i == 0 {
                r.gap(3, &mut out);
            }
        }
        r.close(&mut out);
        out
    };
    let whole = read(&[rest], false);
    let split = read(&[&rest[..at], &rest[at..]], false);
    // What the tail search was given (`keep_all`) is part of each message.
    type Stripped = (
        bool,
        Vec<u8>,
        u64,
        bool,
        Vec<consentry::exchange::BeyondCapHit>,
    );
    let strip = |ev: &[WsEvent]| -> Vec<Stripped> {
        ev.iter()
            .filter_map(|e| match e {
                WsEvent::Message(m) => Some((
                    m.binary,
                    m.data.clone(),
                    m.wire_len,
                    m.truncated,
                    m.beyond_cap.clone(),
                )),
                WsEvent::Anomaly(_) => None,
            })
            .collect()
    };
    assert_eq!(
        strip(&whole),
        strip(&split),
        "split-dependent WebSocket messages"
    );
    for ev in [whole, read(&[&rest[..at], &rest[at..]], flags & 2 != 0)] {
        for e in &ev {
            if let WsEvent::Message(m) = e {
                assert!(m.data.len() <= limits.max_message_bytes);
            }
        }
    }
}

/// `http2`: the `http1` input layout (client data, server data and gaps by control
/// bytes) driving an `Http2Conn` with small limits, after the client preface (fed
/// first, so frames are reached at once); the same steps fed byte by byte must give
/// the same events, and bodies stay within their limit.
pub fn http2(data: &[u8]) {
    use consentry::net::http2::Http2Event;
    let steps = http1_steps(data);
    let whole = http2_run(&steps, false);
    let bytewise = http2_run(&steps, true);
    assert_eq!(whole, bytewise, "split-dependent HTTP/2 events");
    for e in &whole {
        if let Http2Event::Exchange {
            request, response, ..
        } = e
        {
            assert!(request.body.len() <= 64);
            assert!(response.as_ref().is_none_or(|r| r.body.len() <= 64));
        }
    }
}

/// `input` split at every `FE FD` (the separator of the `packet`, `hpack`, `quic`,
/// `qpack` and `quic_conn` inputs); the last piece runs to the end.
fn split_at_fe_fd(input: &[u8]) -> Vec<&[u8]> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + 1 < input.len() {
        if input[i] == 0xfe && input[i + 1] == 0xfd {
            pieces.push(&input[start..i]);
            start = i + 2;
            i += 2;
        } else {
            i += 1;
        }
    }
    pieces.push(&input[start..]);
    pieces
}

/// Blocked field sections the `qpack` target keeps to try again after encoder-stream
/// bytes (a connection's `MAX_BLOCKED_SECTIONS` per message).
pub const QPACK_WAITING: usize = 4;

/// The least number of bytes a lossily decoded name can have come from: every U+FFFD
/// in it (3 bytes) replaced at least one raw byte.
fn raw_len_at_least(lossy: &str) -> usize {
    lossy.len() - 2 * lossy.chars().filter(|&c| c == '\u{fffd}').count()
}

/// `qpack`: `net::qpack::QpackDecoder` over encoder-stream pieces and field sections.
/// Byte 0 is the decoder's hard cap (`byte * 16`), byte 1 the announced
/// `SETTINGS_QPACK_MAX_TABLE_CAPACITY` (`byte * 4`; `FF`: 2^62 - 1); the rest is split
/// at `FE FD` into pieces, each a kind byte `k` then its bytes: `k` odd, encoder-stream
/// bytes, which a second decoder is fed cut in two at `(k >> 1) % (len + 1)`; `k` even,
/// a field section decoded by both with `max_list = (k >> 1) * 64` (127: 64 KiB).
/// Sections answered `Blocked` (at most [`QPACK_WAITING`]) are decoded again after
/// each later encoder-stream piece, as `http3` does.
///
/// Asserts that both decoders give the same answers, insert counts and fields (an
/// encoder stream cut anywhere applies alike); that a decoded list stays within
/// `max_list` (name + value + 32; the name's raw length is bounded below from its
/// lossy text), and its `never_indexed` positions are its own; that `out` is untouched
/// on any error and `Blocked` asks for more inserts than seen; and that after an
/// encoder-stream error every later call returns that error.
pub fn qpack(data: &[u8]) {
    use consentry::net::qpack::{QpackDecoder, QpackError};
    let cap = usize::from(data.first().copied().unwrap_or(0)) * 16;
    let announced = match data.get(1).copied().unwrap_or(0) {
        0xff => (1 << 62) - 1,
        b => u64::from(b) * 4,
    };
    let mut whole = QpackDecoder::new(cap);
    whole.set_max_table_capacity(announced);
    let mut split = whole.clone();
    let mut broken: Option<QpackError> = None;
    let mut waiting: Vec<(&[u8], usize)> = Vec::new();
    for piece in split_at_fe_fd(data.get(2..).unwrap_or_default()) {
        let Some((&kind, bytes)) = piece.split_first() else {
            continue;
        };
        if kind & 1 == 0 {
            let max_list = match kind >> 1 {
                127 => 64 << 10,
                k => usize::from(k) * 64,
            };
            let result = qpack_section(&mut whole, &mut split, bytes, max_list, &broken);
            if matches!(result, Err(QpackError::Blocked { .. })) && waiting.len() < QPACK_WAITING {
                waiting.push((bytes, max_list));
            }
            continue;
        }
        let at = usize::from(kind >> 1) % (bytes.len() + 1);
        let a = whole.encoder_stream(bytes);
        let first = split.encoder_stream(&bytes[..at]);
        let second = split.encoder_stream(&bytes[at..]);
        if let Err(e) = &first {
            assert_eq!(
                second,
                Err(e.clone()),
                "an encoder-stream call after an error"
            );
        }
        assert_eq!(a, first.and(second), "encoder stream cut at {at}");
        assert_eq!(whole.insert_count(), split.insert_count(), "cut at {at}");
        if let Some(e) = &broken {
            assert_eq!(a, Err(e.clone()), "an encoder-stream call after an error");
        }
        if let Err(e) = a {
            broken = Some(e);
        }
        waiting.retain(|&(block, max_list)| {
            let result = qpack_section(&mut whole, &mut split, block, max_list, &broken);
            matches!(result, Err(QpackError::Blocked { .. }))
        });
    }
}

/// One field section of the `qpack` target through both decoders; see [`qpack`].
fn qpack_section(
    whole: &mut consentry::net::qpack::QpackDecoder,
    split: &mut consentry::net::qpack::QpackDecoder,
    block: &[u8],
    max_list: usize,
    broken: &Option<consentry::net::qpack::QpackError>,
) -> Result<consentry::net::qpack::Decoded, consentry::net::qpack::QpackError> {
    use consentry::net::qpack::QpackError;
    // Fields already in the list: a section appends after them, or leaves them alone.
    let before = vec![
        Header::new(":method", b"GET".as_slice()),
        Header::new("x-before", b"\xff".as_slice()),
    ];
    let mut out = before.clone();
    let result = whole.decode(block, max_list, &mut out);
    let mut out_split = before.clone();
    let result_split = split.decode(block, max_list, &mut out_split);
    assert_eq!(result, result_split, "sections after a cut encoder stream");
    assert_eq!(out, out_split, "fields after a cut encoder stream");
    if let Some(e) = broken {
        assert_eq!(result, Err(e.clone()), "a section decoded after an error");
    }
    match &result {
        Err(e) => {
            assert_eq!(out, before, "out changed by a failed section");
            if let QpackError::Blocked { required } = e {
                assert!(*required > whole.insert_count(), "blocked on {required}");
            }
        }
        Ok(info) => {
            assert_eq!(out[..before.len()], before[..], "fields before the section");
            let listed: usize = out[before.len()..]
                .iter()
                .map(|h| raw_len_at_least(&h.name) + h.value.len() + 32)
                .sum();
            assert!(
                listed <= max_list,
                "{listed} bytes listed, limit {max_list}"
            );
            assert!(info.never_indexed.windows(2).all(|w| w[0] < w[1]));
            assert!(info
                .never_indexed
                .iter()
                .all(|i| (before.len()..out.len()).contains(i)));
        }
    }
    result
}

/// The limits of the `http3` target: small enough that a fuzz input reaches each of
/// them (the fourth request stream id is one too many).
pub fn http3_limits() -> consentry::net::http3::Http3Limits {
    consentry::net::http3::Http3Limits {
        max_header_list_bytes: 256,
        max_streams_open: 3,
        max_body_bytes: 32,
        max_held_bytes: 80,
        max_dynamic_table: 512,
    }
}

/// One event of the `http3` input, and the piece size the split run cuts it into.
struct Http3Step {
    event: consentry::net::quic_conn::QuicEvent,
    piece: usize,
}

/// Parses the `http3` input layout (see [`http3`]) into events.
fn http3_steps(mut data: &[u8]) -> Vec<Http3Step> {
    use consentry::net::quic_conn::QuicEvent;
    use std::collections::HashMap;
    // The offset each (stream, side) continues at.
    let mut next: HashMap<(u64, bool), u64> = HashMap::new();
    let mut steps = Vec::new();
    let take = |data: &mut &[u8]| -> Option<u8> {
        let (&b, rest) = data.split_first()?;
        *data = rest;
        Some(b)
    };
    while let Some(c) = take(&mut data) {
        let id = u64::from(c & 0x0f);
        let from_client = c & 0x10 == 0;
        let expected = next.get(&(id, from_client)).copied().unwrap_or(0);
        let event = match c >> 5 {
            what @ 0..=4 => {
                let offset = if what == 4 {
                    let delta = i64::from(take(&mut data).unwrap_or(1) as i8);
                    let delta = if delta == 0 { 1 } else { delta };
                    expected.saturating_add_signed(delta)
                } else {
                    expected
                };
                let mut len = usize::from(take(&mut data).unwrap_or(0));
                if len == 0xff {
                    let (Some(high), Some(low)) = (take(&mut data), take(&mut data)) else {
                        break;
                    };
                    len = usize::from(u16::from_be_bytes([high, low]));
                }
                let piece = usize::from(take(&mut data).unwrap_or(0)).max(1);
                let (bytes, rest) = data.split_at(len.min(data.len()));
                data = rest;
                next.insert((id, from_client), offset + bytes.len() as u64);
                steps.push(Http3Step {
                    event: QuicEvent::Stream {
                        id,
                        from_client,
                        offset,
                        data: bytes.to_vec(),
                        fin: what == 3,
                    },
                    piece,
                });
                continue;
            }
            5 => {
                let len = u64::from(take(&mut data).unwrap_or(0)) + 1;
                next.insert((id, from_client), expected + len);
                QuicEvent::Gap {
                    id,
                    from_client,
                    offset: expected,
                    len,
                }
            }
            6 => QuicEvent::Reset {
                id,
                from_client,
                error_code: u64::from(take(&mut data).unwrap_or(0)),
            },
            _ => {
                let b = take(&mut data).unwrap_or(0);
                let error_code = u64::from(b & 0x7f) + if b & 0x80 != 0 { 0x100 } else { 0 };
                QuicEvent::Close {
                    from_client,
                    error_code,
                    reason: if b & 1 != 0 { "fuzz" } else { "" }.into(),
                }
            }
        };
        steps.push(Http3Step { event, piece: 1 });
    }
    steps
}

/// Where the split run of `http3` cuts the bytes of a stream event: request (and
/// server-initiated bidirectional) streams into pieces of `piece` bytes; a
/// unidirectional stream only at its start, within or right after its type varint.
/// Cutting a QPACK encoder stream's instructions would retry blocked sections at
/// other points, and a section's outcome may legitimately depend on when it is retried
/// (its Required Insert Count is read against the Insert Count of the retry, and
/// later inserts may evict what it references); what `qpack` checks instead is that
/// the decoder's table does not depend on the cuts.
fn http3_cuts(id: u64, offset: u64, data: &[u8], piece: usize) -> Vec<usize> {
    if id & 2 == 0 {
        return (piece..data.len()).step_by(piece).collect();
    }
    match data.first() {
        Some(&b) if offset == 0 => {
            let at = piece.min(1 << (b >> 6));
            (at < data.len()).then_some(at).into_iter().collect()
        }
        _ => Vec::new(),
    }
}

/// Runs the `http3` steps through one `Http3Conn`, each stream event whole or (split)
/// cut where [`http3_cuts`] says; then closes it. Checks what must hold of one run.
fn http3_run(steps: &[Http3Step], split: bool) -> Vec<consentry::net::http3::Http3Event> {
    use consentry::net::http3::{Http3Conn, Http3Event};
    use consentry::net::quic_conn::QuicEvent;
    let limits = http3_limits();
    let mut conn = Http3Conn::new(limits.clone()).with_tail_search(Some(keep_all()));
    let mut out = Vec::new();
    let mut closed = false;
    for (i, step) in steps.iter().enumerate() {
        let (ts, frame) = (Timestamp::from_micros(i as i64), i as u64 + 1);
        let before = out.len();
        match &step.event {
            QuicEvent::Stream {
                id,
                from_client,
                offset,
                data,
                fin,
            } if split => {
                let cuts = http3_cuts(*id, *offset, data, step.piece);
                let ends = cuts.iter().copied().chain([data.len()]);
                let mut start = 0;
                for end in ends {
                    let event = QuicEvent::Stream {
                        id: *id,
                        from_client: *from_client,
                        offset: offset + start as u64,
                        data: data[start..end].to_vec(),
                        fin: *fin && end == data.len(),
                    };
                    conn.push(event, ts, frame, &mut out);
                    start = end;
                }
            }
            event => conn.push(event.clone(), ts, frame, &mut out),
        }
        if closed {
            assert_eq!(out.len(), before, "events after the connection closed");
        }
        closed |= matches!(step.event, QuicEvent::Close { .. });
        assert_eq!(conn.is_closed(), closed, "closed state");
    }
    conn.close(&mut out);
    assert!(conn.is_closed());
    // Nothing comes out of a closed connection.
    let end = out.len();
    let late = [
        QuicEvent::Stream {
            id: 0,
            from_client: true,
            offset: 0,
            data: b"\x01\x03\x00\x00\xd1".to_vec(),
            fin: true,
        },
        QuicEvent::Stream {
            id: 64,
            from_client: true,
            offset: 0,
            data: b"\x01\x03\x00\x00\xd1".to_vec(),
            fin: true,
        },
        QuicEvent::Gap {
            id: 0,
            from_client: false,
            offset: 0,
            len: 1,
        },
        QuicEvent::Reset {
            id: 0,
            from_client: true,
            error_code: 0x10c,
        },
        QuicEvent::Close {
            from_client: false,
            error_code: 0x101,
            reason: String::new(),
        },
    ];
    for event in late {
        conn.push(event, Timestamp::from_micros(0), 0, &mut out);
    }
    conn.close(&mut out);
    assert_eq!(out.len(), end, "events after close()");
    let mut ids = std::collections::HashSet::new();
    for e in &out {
        let Http3Event::Exchange {
            stream_id,
            request,
            response,
        } = e
        else {
            continue;
        };
        assert!(ids.insert(*stream_id), "stream {stream_id} emitted twice");
        assert_eq!(stream_id % 4, 0, "not a request stream");
        let bodies = [(&request.body, request.body_len)]
            .into_iter()
            .chain(response.as_ref().map(|r| (&r.body, r.body_len)));
        for (body, body_len) in bodies {
            assert!(body.len() <= limits.max_body_bytes, "body over its limit");
            assert!(
                body_len >= body.len() as u64,
                "body_len below the body kept"
            );
        }
    }
    out
}

/// `http3`: `net::http3::Http3Conn` (small limits: [`http3_limits`]) over QUIC stream
/// events built from the input, then `close()`. Each event starts with a control byte
/// `c`: bits 0-3 the stream id (0..=15: every id type), bit 4 the server's side, bits
/// 5-7 what:
///
/// | what | event | bytes after `c` |
/// |---|---|---|
/// | 0-2 | stream bytes at the offset that follows the side's previous ones | length (`FF`: 2 more, big-endian), piece size, the bytes |
/// | 3 | the same with FIN | same |
/// | 4 | stream bytes at another offset (the delta an `i8`, 0 read as 1) | delta, then as 0 |
/// | 5 | a gap of `byte + 1` bytes | byte |
/// | 6 | RESET_STREAM, error code `byte` | byte |
/// | 7 | CONNECTION_CLOSE, error `byte & 0x7f` (+ 0x100 with bit 7) | byte |
///
/// Asserts in each run: nothing comes out after a close (the event or `close()`), a
/// request stream id (a multiple of 4) is emitted at most once, bodies stay within
/// `max_body_bytes` and `body_len` counts at least what was kept. Then the same events
/// with each stream event cut into pieces of its piece size (0 read as 1; see
/// [`http3_cuts`] for unidirectional streams) must give the same events, in the same
/// order.
pub fn http3(data: &[u8]) {
    let steps = http3_steps(data);
    let whole = http3_run(&steps, false);
    let split = http3_run(&steps, true);
    assert_eq!(whole, split, "split-dependent HTTP/3 events");
}

/// The connection IDs of the `quic_conn` target's connection: the DCID of the client's
/// first Initial, the client's and the server's SCIDs, the SCID of a Retry.
const QC_ODCID: [u8; 8] = [0x0d; 8];
const QC_CLIENT_CID: [u8; 4] = [0xc1; 4];
const QC_SERVER_CID: [u8; 6] = [0x5e; 6];
const QC_RETRY_CID: [u8; 8] = [0x3e; 8];
/// The connection ID lengths a `quic_conn` packet picks instead of the usual ID
/// (choices 1 to 7; the ID's bytes are `0x70 + choice`).
const QC_CID_LENS: [usize; 7] = [0, 1, 4, 8, 11, 16, 20];
/// The handshake traffic secret of both sides' Handshake packets.
const QC_HANDSHAKE_SECRET: [u8; 32] = [9; 32];
/// The largest QUIC packet number (RFC 9000 §12.3).
const QC_MAX_PN: u64 = (1 << 62) - 1;

/// The limits of the `quic_conn` target: small enough that an input within libFuzzer's
/// default 4096 bytes reaches each of them.
pub fn quic_conn_limits() -> consentry::net::quic_conn::QuicConnLimits {
    consentry::net::quic_conn::QuicConnLimits {
        max_buffered: 1024,
        max_held_ranges: 16,
        max_streams: 8,
        max_failed_datagrams: 8,
    }
}

/// A traffic secret of the `quic_conn` target, distinct per `tag` (1: the client's,
/// 2: the server's, 3: the client's early secret).
fn qc_secret(tag: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| tag.wrapping_mul(31).wrapping_add(i as u8))
        .collect()
}

/// The connection ID `choice` picks: 0 the usual one, 1 to 7 one of [`QC_CID_LENS`].
fn qc_cid(choice: usize, usual: &[u8]) -> Vec<u8> {
    match choice.checked_sub(1).and_then(|i| QC_CID_LENS.get(i)) {
        Some(&len) => vec![0x70 + choice as u8; len],
        None => usual.to_vec(),
    }
}

/// What byte 0 of a `quic_conn` input says; see [`quic_conn`].
struct QcConfig {
    sealed: bool,
    /// The suite packets are sealed with, and the one the ServerHello names.
    seal_suite: u16,
    hello_suite: u16,
    secret_len: usize,
    hello_first: bool,
    /// The client's version (0-RTT, client Initial packets, the reader's `version`)
    /// and the server's (its long-header packets, the labels of 1-RTT keys).
    version: u32,
    server_version: u32,
    /// What the key log holds (the target seals with every secret regardless).
    secrets: consentry::net::keylog::Secrets,
}

impl QcConfig {
    fn new(b: u8) -> Self {
        use consentry::net::quic::{QUIC_V1, QUIC_V2};
        let (seal_suite, hello_suite) = match (b >> 1) & 3 {
            0 => (0x1301, 0x1301),
            1 => (0x1302, 0x1302),
            2 => (0x1303, 0x1303),
            _ => (0x1301, 0x1304),
        };
        let secret_len = if seal_suite == 0x1302 { 48 } else { 32 };
        let version = if b & 0x10 == 0 { QUIC_V1 } else { QUIC_V2 };
        let other = if version == QUIC_V1 { QUIC_V2 } else { QUIC_V1 };
        QcConfig {
            sealed: b & 1 != 0,
            seal_suite,
            hello_suite,
            secret_len,
            hello_first: b & 0x08 != 0,
            version,
            server_version: if b & 0x20 != 0 { other } else { version },
            secrets: consentry::net::keylog::Secrets {
                client_traffic_0: Some(qc_secret(1, secret_len)),
                server_traffic_0: (b & 0x80 == 0).then(|| qc_secret(2, secret_len)),
                client_early_traffic: (b & 0x40 == 0).then(|| qc_secret(3, secret_len)),
                // What Handshake packets are sealed with (role 4 of `QcSealers`): the
                // server's are opened for its certificate.
                server_handshake_traffic: Some(QC_HANDSHAKE_SECRET.to_vec()),
                ..Default::default()
            },
        }
    }

    fn reader(&self) -> consentry::net::quic_conn::QuicConnReader {
        consentry::net::quic_conn::QuicConnReader::new(
            self.version,
            &QC_ODCID,
            &QC_CLIENT_CID,
            &self.secrets,
            quic_conn_limits(),
        )
    }
}

/// The sealers of one `quic_conn` input, made when first needed, by (role, n): role 0
/// the client's 1-RTT keys after `n` key updates, 1 the server's, 2 the client's 0-RTT
/// keys, 3 the server's Initial keys from the original DCID (`n` 0) or from a Retry's
/// SCID (`n` = 1 + its choice), 4 the Handshake keys ([`QC_HANDSHAKE_SECRET`]
/// under AES-128-GCM; the key log has them, and the reader opens the server's
/// Handshake packets for its certificate) and client Initial keys no reader has.
struct QcSealers<'c> {
    cfg: &'c QcConfig,
    made: std::collections::HashMap<(u8, usize), Option<consentry::net::quic_conn::PacketSealer>>,
}

impl QcSealers<'_> {
    fn get(&mut self, role: u8, n: usize) -> Option<&consentry::net::quic_conn::PacketSealer> {
        use consentry::net::quic_conn::PacketSealer;
        let cfg = self.cfg;
        let make = || {
            let (suite, len) = (cfg.seal_suite, cfg.secret_len);
            match role {
                0 | 1 => {
                    let secret = qc_secret(role + 1, len);
                    PacketSealer::after_key_updates(suite, cfg.server_version, &secret, n)
                }
                2 => PacketSealer::new(suite, cfg.version, &qc_secret(3, len)),
                3 => {
                    let dcid = match n {
                        0 => QC_ODCID.to_vec(),
                        n => qc_cid(n - 1, &QC_RETRY_CID),
                    };
                    PacketSealer::server_initial(cfg.server_version, &dcid)
                }
                _ => PacketSealer::new(0x1301, cfg.server_version, &QC_HANDSHAKE_SECRET),
            }
        };
        self.made.entry((role, n)).or_insert_with(make).as_ref()
    }
}

/// A TLS 1.3 ServerHello handshake message naming `suite`.
fn qc_server_hello(suite: u16) -> Vec<u8> {
    let mut body = vec![0x03, 0x03];
    body.extend([0x7a; 32]);
    body.push(0); // session id
    body.extend(suite.to_be_bytes());
    body.push(0); // compression
    body.extend([0x00, 0x06, 0x00, 0x2b, 0x00, 0x02, 0x03, 0x04]); // supported_versions
    let mut msg = vec![2];
    msg.extend(&(body.len() as u32).to_be_bytes()[1..]);
    msg.extend(body);
    msg
}

/// A Retry packet (RFC 9000 §17.2.5) from the server giving `scid`, with `token`; its
/// integrity tag is not checked by the reader.
fn qc_retry(version: u32, scid: &[u8], token: &[u8]) -> Vec<u8> {
    let first = if version == consentry::net::quic::QUIC_V2 {
        0xc0
    } else {
        0xf0
    };
    let mut p = vec![first];
    p.extend(version.to_be_bytes());
    p.push(QC_CLIENT_CID.len() as u8);
    p.extend(QC_CLIENT_CID);
    p.push(scid.len() as u8);
    p.extend(scid);
    p.extend(token);
    p.extend([0x11; 16]);
    p
}

/// One packet of a `quic_conn` input as sealed, and how it may be delivered.
#[derive(Clone)]
struct QcUnit {
    bytes: Vec<u8>,
    from_client: bool,
    /// May share the datagram of the packet before it (same side, datagram open).
    join: bool,
    /// Nothing may follow it in its datagram: a short header, a Retry, padding.
    last: bool,
    flush_after: bool,
    /// A 0-RTT or 1-RTT packet: it opens or fails at most once.
    app: bool,
}

/// The server's Initial with an ACK and its ServerHello (packet number 0).
fn qc_hello_unit(cfg: &QcConfig, sealers: &mut QcSealers<'_>) -> Option<QcUnit> {
    let hello = qc_server_hello(cfg.hello_suite);
    let mut frames = vec![0x02, 0x00, 0x00, 0x00, 0x00, 0x06, 0x00];
    frames.extend((0x4000 | hello.len() as u16).to_be_bytes());
    frames.extend(hello);
    let bytes = sealers.get(3, 0)?.long(
        cfg.server_version,
        consentry::net::quic::PacketType::Initial,
        &QC_CLIENT_CID,
        &QC_SERVER_CID,
        0,
        2,
        &frames,
    )?;
    Some(QcUnit {
        bytes,
        from_client: false,
        join: false,
        last: false,
        flush_after: false,
        app: false,
    })
}

/// Seals the pieces of a `quic_conn` input (see [`quic_conn`] for their header).
fn qc_units(cfg: &QcConfig, pieces: &[&[u8]]) -> Vec<QcUnit> {
    use consentry::net::quic::PacketType;
    let mut sealers = QcSealers {
        cfg,
        made: std::collections::HashMap::new(),
    };
    let mut units = Vec::new();
    if cfg.hello_first {
        units.extend(qc_hello_unit(cfg, &mut sealers));
    }
    // The next packet number of each space: the client's application data (0-RTT and
    // 1-RTT share it), the server's, the server's Initial packets, the others.
    let mut next_pn = [0, 0, u64::from(cfg.hello_first), 0];
    let mut initial_keys = 0;
    let (v, sv) = (cfg.version, cfg.server_version);
    for piece in pieces {
        let byte = |i: usize| piece.get(i).copied().unwrap_or(0);
        let (h0, h1, h2) = (byte(0), byte(1), byte(2));
        let frames = piece.get(3..).unwrap_or_default();
        let kind = h0 & 7;
        let pn_len = usize::from(h0 >> 3 & 3) + 1;
        let updates = usize::from(h0 >> 5 & 3);
        let choice = usize::from(h2 & 7);
        let space = match kind {
            0 | 2 => 0,
            1 => 1,
            3 => 2,
            _ => 3,
        };
        // -128: the farthest ahead a number of this length can be read (RFC 9000
        // appendix A.3: within half its window of the next one expected).
        let pn = match h1 as i8 {
            i8::MIN => next_pn[space] + (1 << (8 * pn_len - 1)) - 1,
            delta => next_pn[space].saturating_add_signed(i64::from(delta)),
        }
        .min(QC_MAX_PN);
        next_pn[space] = next_pn[space].max(pn + 1);
        let phase = (updates % 2 == 1) ^ (h2 & 0x20 != 0);
        let cid = |usual: &[u8]| qc_cid(choice, usual);
        let role = match kind {
            0..=2 => kind,
            3 => 3,
            _ => 4,
        };
        let n = match kind {
            0 | 1 => updates,
            3 => initial_keys,
            _ => 0,
        };
        let packet = match kind {
            0 | 1 => {
                let usual: &[u8] = if kind == 0 {
                    &QC_SERVER_CID
                } else {
                    &QC_CLIENT_CID
                };
                let sealer = sealers.get(role, n);
                sealer.and_then(|s| s.short(&cid(usual), pn, pn_len, phase, frames))
            }
            7 => {
                initial_keys = 1 + choice;
                Some(qc_retry(sv, &cid(&QC_RETRY_CID), frames))
            }
            _ => {
                let odcid = cid(&QC_ODCID);
                let (client, server) = (QC_CLIENT_CID.to_vec(), cid(&QC_SERVER_CID));
                let (version, kind, dcid, scid) = match kind {
                    2 => (v, PacketType::ZeroRtt, odcid, client),
                    3 => (sv, PacketType::Initial, client, server),
                    4 => (sv, PacketType::Handshake, server, client),
                    5 => (sv, PacketType::Handshake, client, server),
                    _ => (v, PacketType::Initial, odcid, client),
                };
                let sealer = sealers.get(role, n);
                sealer.and_then(|s| s.long(version, kind, &dcid, &scid, pn, pn_len, frames))
            }
        };
        let Some(mut bytes) = packet else {
            continue;
        };
        if h2 & 0x08 != 0 {
            if let Some(b) = bytes.last_mut() {
                *b ^= 1;
            }
        }
        let pad = h2 & 0x40 != 0;
        if pad {
            bytes.extend([0; 16]);
        }
        let unit = QcUnit {
            bytes,
            from_client: kind % 2 == 0,
            join: h0 & 0x80 != 0,
            last: kind < 2 || kind == 7 || pad,
            flush_after: h2 & 0x10 != 0,
            app: kind <= 2,
        };
        if h2 & 0x80 != 0 {
            units.push(QcUnit {
                flush_after: false,
                ..unit.clone()
            });
            units.push(QcUnit { join: true, ..unit });
        } else {
            units.push(unit);
        }
    }
    units
}

/// A datagram of a `quic_conn` run, and whether the reader is flushed after it.
struct QcDatagram {
    bytes: Vec<u8>,
    from_client: bool,
    flush_after: bool,
}

/// The units in datagrams: coalesced where a unit may join the one before it, or
/// (`coalesce` false) one per datagram. A flush closes its datagram, so both ways
/// flush between the same packets.
fn qc_datagrams(units: &[QcUnit], coalesce: bool) -> Vec<QcDatagram> {
    let mut out: Vec<QcDatagram> = Vec::new();
    let mut open = false;
    for u in units {
        match out.last_mut() {
            Some(d) if coalesce && open && u.join && d.from_client == u.from_client => {
                d.bytes.extend_from_slice(&u.bytes);
                d.flush_after = u.flush_after;
            }
            _ => out.push(QcDatagram {
                bytes: u.bytes.clone(),
                from_client: u.from_client,
                flush_after: u.flush_after,
            }),
        }
        open = !u.last && !u.flush_after;
    }
    out
}

/// What a `quic_conn` run checks of the events and anomalies as they come.
#[derive(Default)]
struct QcCheck {
    /// Per (stream id, from the client): the offset the next bytes must have, and
    /// whether the direction ended (FIN handed out, or reset).
    streams: std::collections::HashMap<(u64, bool), (u64, bool)>,
    /// Anomalies seen per kind.
    kinds: std::collections::HashMap<String, usize>,
    /// A `quic-stream-buffer-limit` anomaly was seen: gaps may come out of a push.
    limit_hit: bool,
    /// A side was given up (`quic-decrypt-gave-up`): the one thing that depends on
    /// where datagrams start and end.
    gave_up: bool,
}

impl QcCheck {
    fn anomalies(&mut self, anomalies: &[consentry::exchange::Anomaly]) {
        use consentry::net::quic_conn::MAX_ANOMALIES_PER_KIND;
        for a in anomalies {
            let n = self.kinds.entry(a.kind.clone()).or_default();
            *n += 1;
            assert!(*n <= MAX_ANOMALIES_PER_KIND, "{n} anomalies {}", a.kind);
            self.limit_hit |= a.kind == "quic-stream-buffer-limit";
            self.gave_up |= a.kind == "quic-decrypt-gave-up";
        }
    }

    /// Checks events out of a push from `pushed` (`Some(from_client)`) or out of
    /// `flush` (`None`).
    fn events(&mut self, events: &[consentry::net::quic_conn::QuicEvent], pushed: Option<bool>) {
        use consentry::net::quic_conn::QuicEvent;
        for e in events {
            let (id, from_client) = match e {
                QuicEvent::Stream {
                    id, from_client, ..
                }
                | QuicEvent::Gap {
                    id, from_client, ..
                }
                | QuicEvent::Reset {
                    id, from_client, ..
                } => (*id, *from_client),
                QuicEvent::Close { from_client, .. } => {
                    assert_eq!(pushed, Some(*from_client), "a close from {from_client}");
                    continue;
                }
            };
            // Only the initiator sends on a unidirectional stream.
            assert!(
                id & 2 == 0 || (id & 1 == 0) == from_client,
                "stream {id} from {from_client}"
            );
            let (next, ended) = self.streams.entry((id, from_client)).or_default();
            assert!(!*ended, "stream {id} ({from_client}): {e:?} after its end");
            match e {
                QuicEvent::Stream {
                    offset, data, fin, ..
                } => {
                    assert_eq!(
                        *offset, *next,
                        "stream {id} ({from_client}): not contiguous"
                    );
                    assert!(!data.is_empty() || *fin, "empty stream data without FIN");
                    *next += data.len() as u64;
                    *ended = *fin;
                }
                QuicEvent::Gap { offset, len, .. } => {
                    assert!(
                        pushed.is_none() || self.limit_hit,
                        "a gap out of a push with no limit hit"
                    );
                    assert_eq!(
                        *offset, *next,
                        "stream {id} ({from_client}): gap not at its end"
                    );
                    assert!(*len > 0, "empty gap");
                    *next = next.checked_add(*len).expect("gap past 2^64");
                }
                _ => {
                    assert_eq!(pushed, Some(from_client), "a reset from {from_client}");
                    *ended = true;
                }
            }
            assert!(*next < 1 << 62, "stream {id} past 2^62 bytes");
        }
        // A direction with bytes or gaps out and not ended is tracked.
        let open = self.streams.values().filter(|(_, ended)| !ended).count();
        let max = quic_conn_limits().max_streams;
        assert!(open <= max, "{open} stream directions open, limit {max}");
    }
}

/// One `QuicConnReader` of the `quic_conn` target and everything it gave.
struct QcRun {
    reader: consentry::net::quic_conn::QuicConnReader,
    check: QcCheck,
    events: Vec<consentry::net::quic_conn::QuicEvent>,
    anomalies: Vec<consentry::exchange::Anomaly>,
    /// The server's certificate, handed out at most once.
    certificate: Option<consentry::exchange::ServerCertificate>,
    /// The server's version, and a key log entry whose server handshake secret is
    /// the one server packets are sealed with: ECH's trial runs on server datagrams.
    server_version: u32,
    trial_entry: consentry::net::keylog::Secrets,
}

impl QcRun {
    fn new(cfg: &QcConfig) -> Self {
        QcRun {
            reader: cfg.reader(),
            check: QcCheck::default(),
            events: Vec::new(),
            anomalies: Vec::new(),
            certificate: None,
            server_version: cfg.server_version,
            trial_entry: consentry::net::keylog::Secrets {
                server_handshake_traffic: Some(qc_secret(2, cfg.secret_len)),
                ..Default::default()
            },
        }
    }

    fn push(&mut self, d: &QcDatagram) {
        use consentry::net::quic_conn::{try_handshake_secrets, HandshakeTrial};
        if !d.from_client {
            let candidates = std::iter::once((&[0x5a; 32], &self.trial_entry));
            let found = try_handshake_secrets(self.server_version, &d.bytes, candidates, 1);
            assert!(
                !matches!(found, HandshakeTrial::NoneOpened { limit: true }),
                "the limit hit with one candidate"
            );
        }
        let mut out = Vec::new();
        self.reader.push(&d.bytes, d.from_client, &mut out);
        let anomalies = self.reader.take_anomalies();
        self.check.anomalies(&anomalies);
        self.check.events(&out, Some(d.from_client));
        assert!(
            out.is_empty() || self.reader.packets_decrypted() > 0,
            "events from no packet"
        );
        self.events.extend(out);
        self.anomalies.extend(anomalies);
        if let Some(c) = self.reader.take_server_certificate() {
            assert!(self.certificate.is_none(), "a second certificate: {c:?}");
            self.certificate = Some(c);
        }
        if d.flush_after {
            self.flush();
        }
    }

    /// Flushes: what comes out is what was held, within the limits; a second flush
    /// has nothing left.
    fn flush(&mut self) {
        use consentry::net::quic_conn::QuicEvent;
        let limits = quic_conn_limits();
        let mut out = Vec::new();
        self.reader.flush(&mut out);
        let (mut held, mut pieces) = (0, 0);
        for e in &out {
            match e {
                QuicEvent::Stream { data, .. } => {
                    assert!(!data.is_empty(), "an empty flushed piece");
                    held += data.len();
                    pieces += 1;
                }
                QuicEvent::Gap { .. } => {}
                other => panic!("{other:?} out of flush"),
            }
        }
        assert!(held <= limits.max_buffered, "{held} bytes were held");
        assert!(
            pieces <= limits.max_held_ranges,
            "{pieces} pieces were held"
        );
        self.check.events(&out, None);
        let mut again = Vec::new();
        self.reader.flush(&mut again);
        assert!(again.is_empty(), "a second flush gave {again:?}");
        let anomalies = self.reader.take_anomalies();
        self.check.anomalies(&anomalies);
        self.events.extend(out);
        self.anomalies.extend(anomalies);
    }

    /// Every datagram, then a flush.
    fn run(&mut self, datagrams: &[QcDatagram]) {
        for d in datagrams {
            self.push(d);
        }
        self.flush();
    }

    /// What the reader says of itself, for the differential check.
    fn summary(&self) -> impl PartialEq + std::fmt::Debug {
        let r = &self.reader;
        (
            r.status(),
            r.packets_decrypted(),
            r.packets_failed(),
            r.cipher_suite(),
            r.key_updates(),
            self.certificate.clone(),
        )
    }
}

/// `quic_conn`: `net::quic_conn::QuicConnReader` (small limits: [`quic_conn_limits`])
/// of a connection with fixed secrets ([`qc_secret`]; ODCID `0d…`, client SCID `c1…`,
/// server SCID `5e…`). Byte 0 configures:
///
/// | bits | meaning |
/// |---|---|
/// | 0 | mode: 0 raw datagrams, 1 frames the target seals |
/// | 1-2 | suite: AES-128-GCM, AES-256-GCM (48-byte secrets), ChaCha20-Poly1305, or a ServerHello naming 0x1304 (packets sealed with AES-128-GCM) |
/// | 3 | a server Initial with the ServerHello comes first |
/// | 4 | QUIC v2 (else v1) is the client's version |
/// | 5 | the server answers in the other version (RFC 9368): its long headers and the 1-RTT keys |
/// | 6, 7 | the key log lacks the client's early secret, the server's secret |
///
/// The rest is split at `FE FD` into pieces. Raw mode: a piece is a byte `d` (bit 0
/// from the client, bit 1 flush after it) then a datagram as it is. Sealed mode: a
/// piece is three header bytes, then the frames of one packet, sealed with
/// `PacketSealer` so that packets authenticate and the fuzzer's bytes reach the frame
/// parser and stream reassembly:
///
/// | byte | bits | meaning |
/// |---|---|---|
/// | h0 | 0-2 | kind: client 1-RTT, server 1-RTT, client 0-RTT, server Initial, client Handshake, server Handshake, client Initial, server Retry (the frames its token; later server Initials sealed with its SCID's keys) |
/// | h0 | 3-4 | packet number length − 1 |
/// | h0 | 5-6 | key updates before the 1-RTT keys (key phase: odd) |
/// | h0 | 7 | coalesced after the packet before, when of the same side and its datagram can take more (not after a short header, padding, a Retry or a flush) |
/// | h1 | all | packet number: the space's next plus this `i8` (−128: plus half the window of its length, less one), at most 2^62 − 1 |
/// | h2 | 0-2 | connection ID (the DCID; the SCID of server Initial, Handshake and Retry packets): 0 the usual one, else of a length from [`QC_CID_LENS`] |
/// | h2 | 3, 4, 5 | tag broken; flush after its datagram; key phase bit flipped |
/// | h2 | 6, 7 | 16 bytes of datagram padding after it; sent twice |
///
/// Asserts in every run: events well formed per stream direction (bytes contiguous
/// from 0 except after a gap that starts where they stopped, nothing after the FIN or
/// a reset, unidirectional streams from their initiator), a gap out of a push only
/// after a buffer-limit anomaly, resets and closes from the pushing side, at most
/// `max_streams` directions open, each flush handing out at most `max_buffered` bytes
/// in at most `max_held_ranges` pieces and a second flush nothing, at most
/// `MAX_ANOMALIES_PER_KIND` anomalies per kind. Sealed mode also: at most one open or
/// failure per 0-RTT/1-RTT packet, at most three key updates per side, and the same
/// packets delivered one per datagram give the same events, anomalies, status and
/// counts and server certificate (unless a side was given up: failures count per
/// datagram); a certificate is handed out at most once. Then the
/// datagrams again after the final flush, and a flush. Returns the packets decrypted
/// before those (of the coalesced run in sealed mode).
pub fn quic_conn(data: &[u8]) -> u64 {
    let cfg = QcConfig::new(data.first().copied().unwrap_or(0));
    let pieces = split_at_fe_fd(data.get(1..).unwrap_or_default());
    let (mut run, datagrams) = if cfg.sealed {
        let units = qc_units(&cfg, &pieces);
        let coalesced = qc_datagrams(&units, true);
        let mut alone = QcRun::new(&cfg);
        alone.run(&qc_datagrams(&units, false));
        let mut run = QcRun::new(&cfg);
        run.run(&coalesced);
        let app = units.iter().filter(|u| u.app).count() as u64;
        for r in [&run, &alone] {
            let opened_or_failed = r.reader.packets_decrypted() + r.reader.packets_failed();
            assert!(
                opened_or_failed <= app,
                "{opened_or_failed} of {app} packets"
            );
            assert!(
                r.reader.key_updates() <= 6,
                "{} key updates",
                r.reader.key_updates()
            );
        }
        if !run.check.gave_up && !alone.check.gave_up {
            assert_eq!(run.events, alone.events, "events depend on coalescing");
            assert_eq!(
                run.anomalies, alone.anomalies,
                "anomalies depend on coalescing"
            );
            assert_eq!(
                run.summary(),
                alone.summary(),
                "counts depend on coalescing"
            );
        }
        (run, coalesced)
    } else {
        let mut sealers = QcSealers {
            cfg: &cfg,
            made: std::collections::HashMap::new(),
        };
        let hello = cfg
            .hello_first
            .then(|| qc_hello_unit(&cfg, &mut sealers))
            .flatten();
        let datagrams: Vec<QcDatagram> = hello
            .map(|u| QcDatagram {
                bytes: u.bytes,
                from_client: false,
                flush_after: false,
            })
            .into_iter()
            .chain(pieces.iter().map(|p| {
                let (d, bytes) = p.split_first().unwrap_or((&0, &[]));
                QcDatagram {
                    bytes: bytes.to_vec(),
                    from_client: d & 1 != 0,
                    flush_after: d & 2 != 0,
                }
            }))
            .collect();
        let mut run = QcRun::new(&cfg);
        run.run(&datagrams);
        (run, datagrams)
    };
    let decrypted = run.reader.packets_decrypted();
    // A flushed reader takes more datagrams: retransmissions of them all.
    run.run(&datagrams);
    decrypted
}

/// `gquic`: `net::gquic::client_hello` over any datagram: no panic, and what it
/// reports is what the bytes say (a version tag it read, a server name only with a
/// CHLO).
pub fn gquic(data: &[u8]) {
    let Some(hello) = consentry::net::gquic::client_hello(data) else {
        return;
    };
    let tag = hello.version.as_bytes();
    assert_eq!(tag.len(), 4, "{hello:?}");
    assert!(
        data.windows(4).take(16).any(|w| w == tag),
        "a version not in the header: {hello:?}"
    );
    if let Some(sni) = &hello.sni {
        assert!(sni.len() <= data.len() * 4, "{hello:?}");
    }
}
