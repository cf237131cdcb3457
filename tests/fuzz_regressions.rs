//! Inputs that once broke a fuzz target, replayed as ordinary tests (STYLE.md #19).
//!
//! Every file under `tests/fuzz-regressions/<target>/` goes through the same entry
//! point as the cargo-fuzz target `<target>`: this test includes `fuzz/src/lib.rs`
//! itself, so neither cargo-fuzz nor nightly is needed. Add a crash input with
//! `cp fuzz/artifacts/<target>/minimized-from-… tests/fuzz-regressions/<target>/`
//! (see fuzz/README.md). Hand-written hostile inputs below run too, so the test is
//! meaningful while the directory is empty.

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod targets;

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

fn regressions() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions")
}

/// Every file of `tests/fuzz-regressions/<target>/`, sorted; none when it is absent.
fn saved_inputs(target: &str) -> Vec<PathBuf> {
    let dir = regressions().join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("reading tests/fuzz-regressions").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn saved_crash_inputs_do_not_crash() {
    for target in targets::TARGETS {
        for path in saved_inputs(target) {
            let data = std::fs::read(&path).expect("reading a regression input");
            eprintln!("{target}: {}", path.display());
            assert!(targets::run(target, &data));
        }
    }
}

#[test]
fn regression_dirs_name_known_targets() {
    // A misspelt directory would silently never run.
    let Ok(entries) = std::fs::read_dir(regressions()) else {
        return;
    };
    for e in entries {
        let path = e.unwrap().path();
        if path.is_dir() {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                targets::TARGETS.contains(&name.as_str()),
                "tests/fuzz-regressions/{name} is not a fuzz target ({:?})",
                targets::TARGETS
            );
        }
    }
    assert!(!targets::run("no-such-target", b""));
}

#[test]
fn the_targets_fixed_cases_are_valid() {
    // The targets `expect` these to parse; a case-format change must not turn every
    // fuzz input into a crash.
    targets::cases_parse().unwrap();
}

/// Deep nesting of one bracket kind, `depth` levels.
fn nested(open: &str, close: &str, depth: usize) -> Vec<u8> {
    let mut v = open.repeat(depth).into_bytes();
    v.extend(close.repeat(depth).into_bytes());
    v
}

/// A HAR file with one entry whose request has `post` as its `postData.text`.
fn har_with(url: &str, headers: &str, post: &str) -> Vec<u8> {
    format!(
        r#"{{"log":{{"entries":[{{"startedDateTime":"2026-11-28T10:15:00Z",
        "request":{{"method":"POST","url":{url},"headers":[{headers}],
        "postData":{{"mimeType":"application/json","text":{post}}}}}}}]}}}}"#
    )
    .into_bytes()
}

/// Hostile HAR inputs (for `har` and `analyze`).
fn hostile_hars() -> Vec<Vec<u8>> {
    let b64_of_b64 = "ZXlKaGJHY2lPaUp1YjI1bEluMC5leUpwYldWcElqb2lORGt3TVRVME1qQXpNak0zTlRFNEluMC4=";
    vec![
        Vec::new(),
        b"\xEF\xBB\xBF".to_vec(),
        b"{\"log\":".to_vec(),
        b"{\"log\":{\"entries\":[{}]}}".to_vec(),
        b"{\"log\":{\"entries\":[null, 1, \"x\", [], {\"request\":7}]}}".to_vec(),
        b"{\"log\":{\"entries\":{}}}".to_vec(),
        b"{\"log\":{\"entries\":[{\"startedDateTime\":\"9999-99-99T99:99:99Z\",\"request\":{\"method\":\"\",\"url\":\"\"}}]}}".to_vec(),
        nested("[", "]", 100_000),
        {
            let mut v = b"{\"log\":{\"entries\":[{\"request\":".to_vec();
            v.extend(nested("{\"a\":", "}", 50_000));
            v
        },
        har_with("\"http://[::1\"", "", "\"\""),
        har_with(
            "\"https://graph.facebook.com/x?aaid=38400000-8cf0-11bd-b23e-10b96e40000d&%zz=%\"",
            r#"{"name":"Content-Encoding","value":"gzip"},{"name":"Cookie","value":";;=;a=%;"}"#,
            "\"\\u0000\\ud800 not gzip\"",
        ),
        har_with(
            "\"https://t.example/\"",
            r#"{"name":"Content-Type","value":"multipart/form-data; boundary=b"}"#,
            "\"--b\\r\\nContent-Disposition: form-data; name=\\\"x\\\"\\r\\n\\r\\n--b--\\r\\n--b\"",
        ),
        har_with(
            "\"https://t.example/\"",
            "",
            &format!("\"{{\\\"d\\\":\\\"{b64_of_b64}\\\"}}\""),
        ),
        har_with(
            "\"https://t.example/\"",
            "",
            &format!("\"{}\"", "[".repeat(10_000)),
        ),
    ]
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A zstd frame of `blocks` RLE blocks of 128 KiB each, 4 bytes per block.
fn zstd_rle(blocks: usize) -> Vec<u8> {
    // Magic, frame header without content size, window 2^(10+7).
    let mut v = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38];
    for i in 0..blocks {
        let last = u32::from(i + 1 == blocks);
        let header = last | (1 << 1) | ((128 * 1024) << 3);
        v.extend_from_slice(&header.to_le_bytes()[..3]);
        v.push(b'A');
    }
    v
}

#[test]
fn hand_written_hostile_inputs_do_not_crash() {
    for data in hostile_hars() {
        targets::har(&data);
        targets::analyze(&data);
    }
    let demo = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/demo/demo.har"))
        .unwrap();
    targets::analyze(&demo);
    targets::analyze(&demo[..demo.len() / 2]);

    // decode: every header table entry with a few hostile bodies.
    let nested_b64 = (0..12).fold(b"{\"imei\":\"490154203237518\"}".to_vec(), |v, _| {
        STANDARD.encode(v).into_bytes()
    });
    let bomb = gzip(&gzip(&vec![0u8; 4 << 20]));
    let zstd_bomb = zstd_rle(100);
    let bodies: [&[u8]; 9] = [
        b"",
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff",
        b"\x28\xb5\x2f\xfd\x00\x58",
        b"fffffffffffffff\r\n",
        b"--XyZ\r\n\r\n--XyZ",
        b"0;x=\"\r\n\r\n",
        &nested_b64,
        &bomb,
        &zstd_bomb,
    ];
    for ct in 0..targets::CONTENT_TYPES.len() as u8 {
        for ce in 0..targets::CONTENT_ENCODINGS.len() as u8 {
            for (i, body) in bodies.iter().enumerate() {
                let mut input = vec![ct, ce, i as u8, 0b111, 3];
                input.extend_from_slice(b"/?a");
                input.extend_from_slice(body);
                targets::decode(&input);
            }
        }
    }
    for short in [&b""[..], b"\x01", b"\x01\x01\x01\x0f\xff"] {
        targets::decode(short);
    }

    // case: syntax errors, wrong types, deep nesting, odd bytes.
    let cases: [&[u8]; 8] = [
        b"",
        b"[[device]]\nid = 1\n",
        b"[[device]]\nid = \"a\"\n[device.identifiers]\nmac = \"zz:zz\"\nlocation = { lat = 1e400, lon = -nan }\n",
        b"[[consent]]\ndevice = \"x\"\nat = 1979-05-27T07:32:00Z\ndecision = \"maybe\"\n",
        b"[rules]\ngrace_ms = -9223372036854775808\nfrequency_per_minute = 9223372036854775807\n",
        b"\xff\xfe[case]\nid = \"\xc3\x28\"",
        b"a = \"\"\"\n\n\n",
        &nested("[", "]", 10_000)[..],
    ];
    for c in cases {
        targets::case(c);
    }
    targets::case(&nested("a = [", "]", 5_000));
    targets::case(&nested("a = {b=", "}", 5_000));

    // pii: the identifiers in many encodings, plus near misses and long runs.
    let pii_inputs: [&[u8]; 6] = [
        b"",
        b"38400000-8cf0-11bd-b23e-10b96e40000d tester%40example.org 020000445566",
        b"lat=31.230416&lng=121.473701 31.2304160,121.4737010 [121.473701,31.230416]",
        b"490154203237518490154203237518 +86 138 0013 8000 ab1ab1ab1",
        b"\xff\xfe\x00\x00\xc0\x80",
        b"@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@",
    ];
    for p in pii_inputs {
        targets::pii(p);
    }
    targets::pii(&b"1.2,".repeat(20_000));
    targets::pii(&b"a@b.cn ".repeat(20_000));
    targets::pii(&b"9".repeat(100_000));

    // consent: truncated, oversized, wrong-version and padded strings.
    let strings: [&[u8]; 7] = [
        b"",
        b"CPXxRfAPXxRfA",
        b"BOEFEAyOEFEAyAHABDENAI4AAAB9vABAASA",
        b"DBABMA~~~~",
        b"DBACNY~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA~1YNN",
        b"1YNN====",
        b"\xff\xfe~.~.",
    ];
    for s in strings {
        targets::consent(s);
    }
    targets::consent(&b"A".repeat(70_000));
    targets::consent(&b"D~".repeat(10_000));

    // tcp: op streams (see `targets::tcp`): every flag, wrap, jumps, zero limits.
    let mut ops = vec![0u8, 0, 0xf0, 0xff, 0xff, 0xff];
    for i in 0..2000u32 {
        // A FIN ends the stream, so only the last op carries one.
        let flags =
            [0u8, 0, 0, 0x10, 0x20, 0, 8, 2, 0x10, 4][(i % 10) as usize] | u8::from(i == 1999);
        // Mostly overlapping or reordered; jumps go 6.5 MB ahead.
        let delta = if flags & 0x10 != 0 {
            100
        } else {
            ((i * 7919) % 400) as i16 - 250
        };
        ops.push(flags);
        ops.extend_from_slice(&delta.to_le_bytes());
        ops.push((i * 31 % 256) as u8);
    }
    targets::tcp(&ops);
    ops[0] = 255;
    ops[1] = 15;
    targets::tcp(&ops);
    // Without altered bytes the target also checks where every byte lands.
    for op in ops[6..].chunks_mut(4) {
        op[0] &= !0x20;
    }
    targets::tcp(&ops);
    ops[0] = 4;
    ops[1] = 2;
    targets::tcp(&ops);
    for short in [
        &b""[..],
        b"\x01",
        b"\x00\x00\x00\x00\x00\x00\x01\xff\x7f\xff",
    ] {
        targets::tcp(short);
    }
}

#[test]
fn hand_written_hostile_net_inputs_do_not_crash() {
    // http1: a long head byte by byte, endless chunk extensions, a 101 with data
    // behind it, gaps everywhere (control bytes: see fuzz/src/lib.rs `http1_steps`).
    let mut long_head = b"\x3f\xff\xf0GET / HTTP/1.1\r\nX: ".to_vec();
    long_head.extend_from_slice(&[b'a'; 0xfff0 - 19]);
    targets::http1(&long_head);
    let mut ext = b"\x3f\x80\x00POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;".to_vec();
    ext.resize(3 + 0x8000, b'x');
    targets::http1(&ext);
    for http1 in [
        &b"\x1bGET /a HTTP/1.1\r\nUpgrade: x\r\n\r\n\x7f\xa2HTTP/1.1 101 Switching\r\n\r\n\x00\x01"
            [..],
        b"\x40\xc0\x41\x0eGET / HTTP/1.1\n\n\x4a\x01\xff",
        b"\x3f",
        b"\x3f\xff",
    ] {
        targets::http1(http1);
    }
    targets::http1(&b"\x12HTTP/1.1 200 OK\r\n".repeat(3_000));
    // Bytes held for a CONNECT's answer over two frames, the first frame's more than
    // the segments a hold tells apart: refused, the request in them is read from the
    // same frames whether each frame came whole or byte by byte.
    let first = [
        &b"CONNECT a:80 HTTP/1.1\r\n\r\nGET /x HTTP/1.1\r\nX: "[..],
        &[b'a'; 40],
        b"\r\n",
    ]
    .concat();
    let mut held = vec![0x3f];
    held.extend((first.len() as u16).to_be_bytes());
    held.extend(&first);
    let second = b"Host: a\r\n\r\n";
    held.push(second.len() as u8);
    held.extend(second);
    let refused = b"HTTP/1.1 407 Auth\r\nContent-Length: 0\r\n\r\n";
    held.push(0x80 | refused.len() as u8);
    held.extend(refused);
    targets::http1(&held);

    // dns: pointer chains, maximal counts, a TCP stream of empty messages.
    let mut chain = vec![0u8, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 0];
    for i in 0..200u16 {
        let prev = 12 + 2 * i.saturating_sub(1) + if i == 0 { 0 } else { 3 };
        chain.extend_from_slice(&(0xc000 | prev).to_be_bytes());
    }
    targets::dns(&chain);
    targets::dns(&[0xff; 12]);
    targets::dns(&[0; 4_096]);

    // tls_hello: records of every type, a hello announced larger than the stream limit.
    targets::tls_hello(b"\x16\x03\x01\x00\x04\x01\xff\xff\xff");
    targets::tls_hello(&b"\x16\x03\x03\x00\x01\x01".repeat(20_000));
    targets::tls_hello(b"\x15\x03\x03\x00\x02\x02\x28");

    // tls_decrypt: a hello then endless held records, gaps on both sides, an
    // oversized record header, a ServerHello without a ClientHello.
    let hello = b"\x16\x03\x01\x00\x2e\x01\x00\x00\x2a\x03\x03".to_vec();
    let mut steps = vec![hello.len() as u8];
    steps.extend(&hello);
    steps.extend([0u8; 32]);
    for _ in 0..2_000 {
        steps.extend(b"\x06\x17\x03\x03\x00\x01\x00");
    }
    targets::tls_decrypt(&steps);
    targets::tls_decrypt(b"\x7f\xff\x05\x16\x03\x03\xff\xff");
    targets::tls_decrypt(b"\x85\x16\x03\x03\x00\x04\x84\x02\x00\x00\x00");
    targets::tls_decrypt(&[0x7e; 4_000]);
    // quic: raw datagrams (mode 0) and frames the target protects (mode 1): a long
    // header cut everywhere, CRYPTO frames at huge offsets, an ACK with a huge range
    // count, too many pieces, a frame type varint cut short.
    let header = b"\xc0\x00\x00\x00\x01\x08\x83\x94\xc8\xf0\x3e\x51\x57\x08\x00\x00\x44\x9e";
    for n in 0..=header.len() {
        targets::quic(&[&[0u8][..], &header[..n]].concat());
    }
    targets::quic(b"\x00\xc0\x6b\x33\x43\xcf\x14");
    targets::quic(b"\x01\x06\xbf\xff\xff\xff\xff\xff\xff\xff\x01x");
    targets::quic(b"\x01\x06\x80\x00\xff\xff\x01x");
    targets::quic(b"\x05\x02\x00\x00\xbf\xff\xff\xff\x00");
    targets::quic(b"\x01\xff");
    targets::quic(&[&b"\x11"[..], &b"\x06\x00\x01\x01\xfe\xfd".repeat(200)].concat());
    targets::quic(&[&b"\x01"[..], &b"\x06\x00\x04\x01\x00\x00\x00"[..]].concat());
}

#[test]
fn hostile_websocket_inputs_do_not_crash() {
    // A 64-bit length of 2^62 with a few bytes behind it, a 16-bit length cut short,
    // endless empty continuation frames, pings between fragments, a compressed frame
    // of garbage, and every byte pattern of a two-byte header (flags: deflate, gap).
    targets::websocket(b"\x00\x05\x82\xff\x40\x00\x00\x00\x00\x00\x00\x00abc");
    targets::websocket(b"\x01\x01\x82\xfe\x01");
    let mut fragments = b"\x00\x07\x01\x00".to_vec();
    for _ in 0..5_000 {
        fragments.extend(b"\x00\x00\x89\x00");
    }
    targets::websocket(&fragments);
    targets::websocket(b"\x03\x09\xc2\x06\xff\xff\xff\xff\xff\xff\x80\x00");
    for b0 in 0..=255u8 {
        for b1 in [0x00, 0x7d, 0x7e, 0x7f, 0x80, 0xfe, 0xff] {
            targets::websocket(&[1, 1, b0, b1, 1, 2, 3, 4, 5, 6, 7, 8]);
        }
    }
}

#[test]
fn hand_written_bombs_hit_the_decompression_limit() {
    // The bombs above must really be bombs, or the hostile-input test proves little.
    for (ce, body) in [(1u8, gzip(&vec![0u8; 4 << 20])), (4, zstd_rle(100))] {
        let mut input = vec![0, ce, 0, 0, 1, b'/'];
        input.extend_from_slice(&body);
        let x = targets::decode_exchange(&input);
        let mut anomalies = Vec::new();
        consentry::decode::request_parts(&x, &Default::default(), &mut anomalies);
        assert!(
            anomalies.iter().any(|a| a.kind == "decompression-limit"),
            "{ce}: {anomalies:?}"
        );
    }
}

#[test]
fn decode_exchange_follows_its_layout() {
    // Guards the input layout that saved `decode` inputs depend on.
    let x = targets::decode_exchange(b"\x01\x01\x01\x09\x04/?q=body");
    assert_eq!(x.path, "/?q=");
    assert_eq!(x.request_body, b"body");
    assert_eq!(
        x.request_header("content-type"),
        Some(&b"application/json"[..])
    );
    assert_eq!(x.request_header("content-encoding"), Some(&b"gzip"[..]));
    assert_eq!(x.request_header("transfer-encoding"), Some(&b"chunked"[..]));
    assert_eq!(x.request_header("cookie"), Some(&b"/?q="[..]));
    assert_eq!(x.request_header("authorization"), None);
    assert!(x.metadata_only);
    // Bit 5: a coding list's last item in a line of its own.
    let x = targets::decode_exchange(b"\x01\x07\x02\x20\x01/");
    let lines = |name: &str| -> Vec<&[u8]> {
        x.request_headers
            .iter()
            .filter(|h| h.name == name)
            .map(|h| &h.value[..])
            .collect()
    };
    assert_eq!(lines("Content-Encoding"), [&b"gzip"[..], b"br"]);
    assert_eq!(lines("Transfer-Encoding"), [&b"gzip"[..], b"chunked"]);
    assert_eq!(lines("Content-Type"), [&b"application/json"[..]]);
    let empty = targets::decode_exchange(b"");
    assert_eq!(empty.path, "");
    assert!(empty.request_headers.is_empty() && empty.request_body.is_empty());
}

#[test]
fn capture_and_packet_targets_survive_hostile_inputs() {
    let mut pcap = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    pcap.extend_from_slice(&[0, 0, 0, 0, 1, 0, 0, 0]);
    let mut huge = pcap.clone();
    huge.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
    let shb = [
        0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 28, 0, 0, 0,
    ];
    let mut epb_no_idb = shb.to_vec();
    epb_no_idb.extend_from_slice(&[6, 0, 0, 0, 32, 0, 0, 0]);
    epb_no_idb.extend_from_slice(&[0; 20]);
    epb_no_idb.extend_from_slice(&[32, 0, 0, 0]);
    for input in [
        &b""[..],
        &pcap,
        &huge,
        &shb,
        &epb_no_idb,
        &pcap[..10],
        b"\x0a\x0d\x0d\x0a",
    ] {
        targets::capture(input);
    }
    // packet: every link type with empty, short and tag-bomb frames.
    let mut vlan_bomb = vec![0u8; 12];
    for _ in 0..1000 {
        vlan_bomb.extend_from_slice(&[0x81, 0x00, 0x00, 0x01]);
    }
    for link in 0..targets::PACKET_LINKS.len() as u8 {
        for frame in [
            &b""[..],
            b"\x45",
            b"\x60\x00\x00\x00\x00\x00\x2c\x40",
            &vlan_bomb,
        ] {
            let mut input = vec![link, 0];
            input.extend_from_slice(frame);
            targets::packet(&input);
        }
    }
}

/// The `tap` target over hostile traffic: connections more than the flow table holds,
/// out-of-order data beyond the budget, a SYN reusing a busy connection's ports, a
/// response without request, TLS garbage and UDP to port 53 that is no DNS.
#[test]
fn hand_written_hostile_tap_inputs_do_not_crash() {
    fn ipv4_tcp(sport: u16, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        let total = (40 + payload.len()) as u16;
        let mut f = vec![
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            1,
            0,
            0,
            64,
            6,
            0,
            0,
        ];
        f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        f.extend_from_slice(&sport.to_be_bytes());
        f.extend_from_slice(&80u16.to_be_bytes());
        f.extend_from_slice(&seq.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        f.extend_from_slice(payload);
        f
    }
    // Byte 0 = 3 picks raw IP from PACKET_LINKS; byte 1 = 0: no time passes.
    let mut input = vec![3u8, 0];
    let mut push = |frame: Vec<u8>| {
        assert!(!frame.contains(&0xfe), "frames must not hold the separator");
        input.extend_from_slice(&frame);
        input.push(0xfe);
    };
    for port in 1000..1010 {
        push(ipv4_tcp(port, 1, 0x02, b""));
        push(ipv4_tcp(
            port,
            2,
            0x18,
            b"POST / HTTP/1.1\r\nContent-Length: 40\r\n\r\n",
        ));
        push(ipv4_tcp(port, 200, 0x18, &[b'x'; 100]));
    }
    push(ipv4_tcp(1000, 5, 0x02, b""));
    push(ipv4_tcp(
        2000,
        9,
        0x18,
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    ));
    push(ipv4_tcp(
        2001,
        9,
        0x18,
        &[0x16, 3, 1, 0x40, 0, 1, 0, 0x3f, 0],
    ));
    targets::tap(&input);
    // The same with a time step of 200 s between frames: every flow times out.
    input[1] = 20;
    targets::tap(&input);
    targets::tap(&[3, 1]);
    targets::tap(&[0; 64]);
}

#[test]
fn hostile_http2_and_hpack_inputs_do_not_crash() {
    // hpack: a table of big entries referenced many times, size updates to the limit,
    // long integers, Huffman EOS and padding.
    let mut refs = vec![
        255u8, 255, 0x3f, 0xe1, 0x7f, 0x40, 0x01, b'a', 0x7f, 0x81, 0x0f,
    ];
    refs.extend(std::iter::repeat_n(b'x', 0x7f + 0x0f));
    refs.extend(std::iter::repeat_n(0xbe, 10_000));
    targets::hpack(&refs);
    targets::hpack(&[0, 0, 0x3f, 0xff, 0xff, 0xff, 0xff, 0x7f]);
    targets::hpack(&[1, 1, 0x00, 0x84, 0xff, 0xff, 0xff, 0xff, 0x00]);
    // http2 (layout of `http1`): a CONTINUATION flood, a frame of 2^24-1 bytes,
    // padding longer than its frame, streams without end.
    let step = |client: bool, data: &[u8]| {
        let mut s = vec![0x3f | if client { 0 } else { 0x80 }];
        s.extend_from_slice(&(data.len() as u16).to_be_bytes());
        s.extend_from_slice(data);
        s
    };
    let frame = |ty: u8, flags: u8, stream: u32, payload: &[u8]| {
        let mut f = (payload.len() as u32).to_be_bytes()[1..].to_vec();
        f.extend_from_slice(&[ty, flags]);
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    };
    let mut flood = frame(1, 0, 1, &[0x82]);
    for _ in 0..2_000 {
        flood.extend(frame(9, 0, 1, &[0x40; 16]));
    }
    let mut input = step(true, &flood);
    input.extend(step(false, &[0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 1, 1, 2, 3]));
    input.extend(step(true, &frame(0, 0x8, 1, &[200, 1, 2])));
    for id in (1..400u32).step_by(2) {
        input.extend(step(true, &frame(1, 0x4, id, &[0x82, 0x84])));
    }
    targets::http2(&input);
}

#[test]
fn pii_stream_finds_the_same_whatever_the_pieces() {
    // An identifier and a position around every cap and piece size the layout allows
    // here; the target asserts split-invariance and exact offsets.
    let mut body = b"x".repeat(30);
    body.extend_from_slice(b"38400000-8cf0-11bd-b23e-10b96e40000d&");
    body.extend_from_slice(b"{\"lat\":31.230416,\"lon\":121.473701}");
    for cap in [0u8, 5, 10, 16, 20, 255] {
        for step in [0u8, 1, 2, 5, 255] {
            let mut data = vec![cap, step];
            data.extend_from_slice(&body);
            targets::pii_stream(&data);
        }
    }
}

/// The files of the `capture_chain` layout: each behind its 2-byte big-endian length.
fn chain_input<'a>(files: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for file in files {
        let len = u16::try_from(file.len()).expect("a chain file fits in 64 KiB");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(file);
    }
    out
}

/// A little-endian pcap cut into files of `per_file` records, as `editcap -c` cuts it.
fn pcap_pieces(pcap: &[u8], per_file: usize) -> Vec<Vec<u8>> {
    let (header, mut rest) = pcap.split_at(24);
    let mut records = Vec::new();
    while rest.len() >= 16 {
        let len = u32::from_le_bytes(rest[8..12].try_into().unwrap()) as usize;
        let (record, after) = rest.split_at(16 + len);
        records.push(record);
        rest = after;
    }
    records
        .chunks(per_file)
        .map(|chunk| [&[header], chunk].concat().concat())
        .collect()
}

/// A little-endian pcapng cut into files of `per_file` blocks after its leading
/// section and interface blocks, which each file repeats.
fn pcapng_pieces(pcapng: &[u8], per_file: usize) -> Vec<Vec<u8>> {
    let mut blocks = Vec::new();
    let mut rest = pcapng;
    while rest.len() >= 12 {
        let len = u32::from_le_bytes(rest[4..8].try_into().unwrap()) as usize;
        let (block, after) = rest.split_at(len);
        blocks.push(block);
        rest = after;
    }
    let kind = |b: &[u8]| u32::from_le_bytes(b[..4].try_into().unwrap());
    let head = blocks
        .iter()
        .take_while(|b| matches!(kind(b), 0x0A0D_0D0A | 1))
        .count();
    let (head, body) = blocks.split_at(head);
    body.chunks(per_file)
        .map(|chunk| [head, chunk].concat().concat())
        .collect()
}

/// `capture_chain` over sample captures cut into pieces: read in order they give the
/// exchanges of the capture read whole (the target itself checks its accounting of
/// files, captures and exchanges); reversed, with a file that is no capture, one cut
/// short, or one empty, they still account for every exchange.
#[test]
fn capture_chain_reads_sample_captures_cut_into_pieces() {
    let captures = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    let read = |name: &str| std::fs::read(captures.join(name)).unwrap();
    let gateway = read("gateway/gateway.pcap");
    let tls = read("tls/tls-dsb.pcapng");
    let gateway_pieces = pcap_pieces(&gateway, 20);
    let tls_pieces = pcapng_pieces(&tls, 9);
    let mut whole = [&gateway[..24]].concat();
    whole.extend(gateway_pieces.iter().flat_map(|p| &p[24..]));
    assert_eq!(whole, gateway, "the pieces hold the capture");
    for (pieces, name) in [(&gateway_pieces, "gateway"), (&tls_pieces, "tls-dsb")] {
        assert!(pieces.len() > 3, "{name}: {} pieces", pieces.len());
        let one = targets::capture_chain(&chain_input(pieces.iter().map(|p| &p[..]).take(1)));
        let all = targets::capture_chain(&chain_input(pieces.iter().map(|p| &p[..])));
        assert!(
            all > one,
            "{name}: {all} exchanges in all, {one} in the first piece"
        );
        let mut reversed: Vec<&[u8]> = pieces.iter().map(|p| &p[..]).collect();
        reversed.reverse();
        targets::capture_chain(&chain_input(reversed));
        let short = &pieces[1][..pieces[1].len() - 7];
        let mut hostile: Vec<&[u8]> = pieces.iter().map(|p| &p[..]).collect();
        hostile.splice(1..2, [short, b"no capture".as_slice(), b"".as_slice()]);
        targets::capture_chain(&chain_input(hostile));
    }
    // In order, the pieces give what the whole file gives (same traffic, one capture;
    // the pcap's first 64 KiB or so, as a chain file holds at most that).
    let mut first = gateway[..24].to_vec();
    let cut: Vec<&[u8]> = gateway_pieces
        .iter()
        .take_while(|p| {
            first.extend_from_slice(&p[24..]);
            first.len() <= usize::from(u16::MAX)
        })
        .map(|p| &p[..])
        .collect();
    first.truncate(24 + cut.iter().map(|p| p.len() - 24).sum::<usize>());
    assert!(cut.len() > 3);
    let pcap_whole = targets::capture_chain(&chain_input([&first[..]]));
    assert_eq!(targets::capture_chain(&chain_input(cut)), pcap_whole);
    let ng_whole = targets::capture_chain(&chain_input([&tls[..]]));
    let ng_cut = targets::capture_chain(&chain_input(tls_pieces.iter().map(|p| &p[..])));
    assert_eq!(ng_cut, ng_whole);
}

/// A QPACK/HPACK prefix integer with `flags` above its `bits`-bit prefix.
fn prefix_int(flags: u8, bits: u32, value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    consentry::net::hpack::encode::integer(&mut out, flags, bits, value);
    out
}

/// A `qpack` input: the cap and announced capacity bytes, then pieces (kind byte and
/// bytes, see `targets::qpack`) joined by `FE FD`.
fn qpack_input(cap: u8, announced: u8, pieces: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = vec![cap, announced];
    for (i, (kind, bytes)) in pieces.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\xfe\xfd");
        }
        out.push(*kind);
        out.extend_from_slice(bytes);
    }
    out
}

#[test]
fn hostile_qpack_inputs_do_not_crash() {
    use consentry::net::qpack::encode;
    // Kind bytes: even = a section (list limit (k >> 1) * 64; 0xfe: 64 KiB), odd =
    // encoder-stream bytes (the second decoder cuts them at (k >> 1) mod len + 1).
    const SECTION: u8 = 0xfe;
    let encoder = |cut: u8| cut << 1 | 1;
    let stream = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut v = Vec::new();
        f(&mut v);
        v
    };
    // Announced 220 bytes (55 * 4): MaxEntries 6, Required Insert Count sent mod 12.
    // Thirteen inserts wrap it: 13 is sent as 2, 12 as 1; 7 (18) is ahead: blocked;
    // 13 (past twice MaxEntries) and 8 (7 with no wrap yet, past 6 ahead) are errors.
    let mut inserts = stream(&|s| encode::set_capacity(s, 220));
    for i in 0..13u8 {
        encode::insert_with_static_name(&mut inserts, 2, &[b'0' + i % 10], false);
    }
    let section = |encoded: u8, lines: &[u8]| [&[encoded, 0][..], lines].concat();
    for cut in [0, 1, 3, 40, 127] {
        targets::qpack(&qpack_input(
            14,
            55,
            &[
                (SECTION, section(8, b"\x80")),
                (SECTION, section(7, b"\x80")),
                (encoder(cut), inserts.clone()),
                (SECTION, section(2, b"\x80")),
                (SECTION, section(1, b"\x80\x85")),
                (SECTION, section(13, b"\x80")),
                (SECTION, [&[0x02, 0x8c][..], b"\x80"].concat()),
            ],
        ));
    }
    // Strings and integers of 2^62 - 1 and beyond, in sections and on the encoder
    // stream; an integer of ten continuation bytes.
    let huge = (1u64 << 62) - 1;
    let long_name = prefix_int(0x20, 3, huge);
    let long_value = [&b"\x51"[..], &prefix_int(0, 7, huge)].concat();
    let over = [
        0x3f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
    ];
    let literal_name_insert = prefix_int(0x40, 5, huge);
    let huffman_insert = [&b"\xc0"[..], &prefix_int(0x80, 7, huge)].concat();
    for (cap, announced) in [(0, 0), (255, 0xff), (14, 55)] {
        targets::qpack(&qpack_input(
            cap,
            announced,
            &[
                (SECTION, [&b"\x00\x00"[..], &long_name].concat()),
                (SECTION, [&b"\x00\x00"[..], &long_value].concat()),
                (SECTION, over.to_vec()),
                (SECTION, [&b"\x00\x00"[..], &over[1..]].concat()),
                (encoder(2), stream(&|s| encode::set_capacity(s, 200))),
                (encoder(1), huffman_insert.clone()),
                (encoder(0), literal_name_insert.clone()),
                (encoder(5), over.to_vec()),
                (SECTION, b"\x00\x00\xd1".to_vec()),
            ],
        ));
    }
    // A capacity above the cap (16 bytes) but within the announced maximum, and one
    // above the announced maximum (2^62 - 1, then 1 KiB).
    for announced in [0xff, 0xfe] {
        targets::qpack(&qpack_input(
            1,
            announced,
            &[
                (encoder(1), stream(&|s| encode::set_capacity(s, huge))),
                (encoder(0), stream(&|s| encode::set_capacity(s, 16))),
                (SECTION, b"\x00\x00\xd1".to_vec()),
            ],
        ));
    }
    // One big entry referenced 20 000 times: the list stops at its limit.
    let mut big = stream(&|s| encode::set_capacity(s, 1000));
    encode::insert_with_literal_name(&mut big, b"x-big", &[b'v'; 900], false);
    let mut refs = vec![0x02, 0x00];
    refs.extend(std::iter::repeat_n(0x80, 20_000));
    for kind in [SECTION, 0, 2, 30] {
        targets::qpack(&qpack_input(
            255,
            250,
            &[(encoder(100), big.clone()), (kind, refs.clone())],
        ));
    }
    // Short inputs and an encoder stream cut at every byte.
    for short in [
        &b""[..],
        b"\x01",
        b"\x01\x01",
        b"\x01\x01\x01",
        b"\xfe\xfd\xfe\xfd",
    ] {
        targets::qpack(short);
    }
    for cut in 0..=inserts.len() as u8 {
        targets::qpack(&qpack_input(14, 55, &[(encoder(cut), inserts.clone())]));
    }
}

/// One event of the `http3` input (see `targets::http3`): control byte `c` (bits 0-3
/// the stream, bit 4 the server's side, bits 5-7 what), the byte of what 4-7, then for
/// stream bytes their length, the split run's piece size and the bytes.
fn h3_event(c: u8, extra: Option<u8>, data: &[u8], piece: u8) -> Vec<u8> {
    let mut out = vec![c];
    out.extend(extra);
    if c >> 5 > 4 {
        return out;
    }
    if data.len() < 0xff {
        out.push(data.len() as u8);
    } else {
        out.push(0xff);
        out.extend_from_slice(&u16::try_from(data.len()).unwrap().to_be_bytes());
    }
    out.push(piece);
    out.extend_from_slice(data);
    out
}

#[test]
fn hostile_http3_inputs_do_not_crash() {
    // Control bytes: stream id | 0x10 server | what << 5 (0 bytes, 3 bytes + FIN,
    // 4 at a wrong offset, 5 gap, 6 reset, 7 close).
    const FIN: u8 = 3 << 5;
    const SERVER: u8 = 0x10;
    let max_varint = [0xff; 8];
    // HEADERS, DATA and SETTINGS frames of length 2^62 - 1, with bytes behind them.
    let huge_headers = [&b"\x01"[..], &max_varint, b"\x00\x00\xd1"].concat();
    let huge_data = [&b"\x01\x03\x00\x00\xd1\x00"[..], &max_varint, &[b'x'; 100]].concat();
    let huge_settings = [&b"\x00\x04"[..], &max_varint, b"\x01\x40\xdc"].concat();
    for piece in [0, 1, 5, 255] {
        let mut input = h3_event(FIN, None, &huge_headers, piece);
        input.extend(h3_event(4 | FIN, None, &huge_data, piece));
        input.extend(h3_event(3 | SERVER, None, &huge_settings, piece));
        input.extend(h3_event(2, None, &huge_settings, piece));
        targets::http3(&input);
    }
    // A stream type varint cut across events: 8 bytes for the encoder stream (type 2),
    // 2 for a control stream, then instructions and a SETTINGS frame.
    let mut input = Vec::new();
    for b in [0xc0, 0, 0, 0, 0, 0, 0, 2] {
        input.extend(h3_event(6, None, &[b], 0));
    }
    input.extend(h3_event(6, None, b"\x3f\xbd\x01\xc0\x01a", 2));
    input.extend(h3_event(3 | SERVER, None, b"\x40", 0));
    input.extend(h3_event(3 | SERVER, None, b"\x00\x04\x03\x01\x40\xdc", 1));
    input.extend(h3_event(FIN, None, b"\x01\x03\x03\x81\x80", 1));
    input.extend(h3_event(6, None, b"\x3f\xbd\x01\xc0\x01a", 3));
    targets::http3(&input);
    // SETTINGS frames that end inside a setting: after an identifier, inside a 4-byte
    // value, after a lone identifier byte of a 2-byte varint.
    for payload in [&b"\x01"[..], b"\x01\x80\x00", b"\x40"] {
        let settings = [&[0x00, 0x04, payload.len() as u8][..], payload].concat();
        for piece in [0, 1, 2] {
            targets::http3(&h3_event(3 | SERVER, None, &settings, piece));
            targets::http3(&h3_event(2, None, &settings, piece));
        }
    }
    // More uni streams than are tracked, every id type with every event kind, blocked
    // sections past the limit, streams cut by gaps, resets and a close.
    let mut input = Vec::new();
    for id in 0..16u8 {
        for side in [0, SERVER] {
            input.extend(h3_event(id | side, None, b"\x21\x00", 1));
            input.extend(h3_event(4 << 5 | id | side, Some(0x80), b"\x00\x01", 1));
            input.extend(h3_event(5 << 5 | id | side, Some(3), b"", 0));
            input.extend(h3_event(6 << 5 | id | side, Some(7), b"", 0));
        }
    }
    let blocked = b"\x01\x03\x0a\x00\x80".repeat(6);
    input.extend(h3_event(3 | SERVER, None, b"\x00\x04\x03\x01\x40\xdc", 0));
    input.extend(h3_event(4, None, &blocked, 4));
    input.extend(h3_event(7 << 5, Some(0x8c), b"", 0));
    input.extend(h3_event(8, None, &blocked, 4));
    targets::http3(&input);
    for short in [&b""[..], b"\x00", b"\x00\xff", b"\x80", b"\xe0"] {
        targets::http3(short);
    }
}

/// A QUIC variable-length integer (RFC 9000 §16).
fn quic_varint(v: u64) -> Vec<u8> {
    match v {
        0..=63 => vec![v as u8],
        64..=16383 => (0x4000 | v as u16).to_be_bytes().to_vec(),
        16384..=0x3fff_ffff => (0x8000_0000 | v as u32).to_be_bytes().to_vec(),
        _ => (0xc000_0000_0000_0000 | v).to_be_bytes().to_vec(),
    }
}

/// A STREAM frame with offset and length (and FIN).
fn quic_stream(id: u64, offset: u64, data: &[u8], fin: bool) -> Vec<u8> {
    let mut f = vec![0x0e | u8::from(fin)];
    f.extend(quic_varint(id));
    f.extend(quic_varint(offset));
    f.extend(quic_varint(data.len() as u64));
    f.extend_from_slice(data);
    f
}

/// A `quic_conn` input: the configuration byte, then pieces joined by `FE FD` (in
/// sealed mode each piece is its header bytes h0, h1, h2 and frames; see
/// `targets::quic_conn`).
fn qc_input(config: u8, pieces: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![config];
    for (i, piece) in pieces.iter().enumerate() {
        assert!(
            !piece.windows(2).any(|w| w == [0xfe, 0xfd]),
            "a piece holding the separator"
        );
        if i > 0 {
            out.extend_from_slice(b"\xfe\xfd");
        }
        out.extend_from_slice(piece);
    }
    out
}

/// A sealed-mode piece: its three header bytes, then frames.
fn qc_piece(h0: u8, h1: u8, h2: u8, frames: &[u8]) -> Vec<u8> {
    [&[h0, h1, h2][..], frames].concat()
}

// Configuration bits and piece header bits of the `quic_conn` layout.
const QC_SEALED: u8 = 0x01;
const QC_HELLO: u8 = 0x08;
const QC_CLIENT_1RTT: u8 = 0;
const QC_SERVER_1RTT: u8 = 1;
const QC_ZERO_RTT: u8 = 2;
const QC_SERVER_INITIAL: u8 = 3;
const QC_RETRY: u8 = 7;
const QC_JOIN: u8 = 0x80;
const QC_BROKEN: u8 = 0x08;
const QC_FLUSH: u8 = 0x10;

#[test]
fn quic_conn_seals_what_the_reader_opens() {
    // A request and its response, with an ACK, a NEW_CONNECTION_ID and a close: every
    // packet opens, whatever the suite, the versions and the coalescing.
    let mut request = quic_stream(0, 0, b"GET /track?aaid=1", false);
    request.extend([0x02, 0x00, 0x00, 0x00, 0x00]);
    let mut ncid = vec![0x18, 0x01, 0x00, 0x08];
    ncid.extend([0xab; 8]);
    ncid.extend([0xcd; 16]);
    for suite in 0..3u8 {
        for versions in [0, 0x10, 0x20, 0x30] {
            let config = QC_SEALED | QC_HELLO | suite << 1 | versions;
            let pieces = [
                qc_piece(QC_ZERO_RTT, 0, 0, &request),
                qc_piece(
                    QC_CLIENT_1RTT | QC_JOIN,
                    0,
                    0,
                    &quic_stream(0, 17, b" HTTP/3", true),
                ),
                qc_piece(
                    QC_SERVER_1RTT,
                    0,
                    0,
                    &[&ncid[..], &quic_stream(0, 0, b"200", true)].concat(),
                ),
                // To the server's new 8-byte ID (choice 4), after a key update.
                qc_piece(QC_CLIENT_1RTT | 1 << 5, 0, 4, &[0x1d, 0x00, 0x00]),
            ];
            assert_eq!(
                targets::quic_conn(&qc_input(config, &pieces)),
                4,
                "{config:#x}"
            );
        }
    }
    // Without the ServerHello the suite is found by trial; the unsupported suite opens
    // only 0-RTT.
    let pieces = [
        qc_piece(QC_ZERO_RTT, 0, 0, &request),
        qc_piece(QC_CLIENT_1RTT, 0, 0, &request),
    ];
    assert_eq!(
        targets::quic_conn(&qc_input(QC_SEALED | 2 << 1, &pieces)),
        2
    );
    assert_eq!(
        targets::quic_conn(&qc_input(QC_SEALED | QC_HELLO | 3 << 1, &pieces)),
        1
    );
    // After a Retry, the server's Initial is sealed with its SCID's keys: its
    // ServerHello, naming a suite the reader does not decrypt, stops the 1-RTT packet
    // from opening. The reader keeps two Retry SCIDs: after a third the Initial does
    // not open, and the 1-RTT packet opens by trial.
    let suite_0x1304 = |retries: &[u8]| {
        let mut body = vec![0x03, 0x03];
        body.extend([0x7a; 32]);
        body.extend([
            0x00, 0x13, 0x04, 0x00, 0x00, 0x06, 0x00, 0x2b, 0x00, 0x02, 0x03, 0x04,
        ]);
        let mut crypto = vec![0x06, 0x00, 0x40, 4 + body.len() as u8, 0x02, 0x00, 0x00];
        crypto.push(body.len() as u8);
        crypto.extend(body);
        let mut pieces: Vec<Vec<u8>> = retries
            .iter()
            .map(|&cid| qc_piece(QC_RETRY, 0, cid, b"token"))
            .collect();
        pieces.push(qc_piece(QC_SERVER_INITIAL, 0, 0, &crypto));
        pieces.push(qc_piece(
            QC_SERVER_1RTT,
            0,
            0,
            &quic_stream(3, 0, b"\x00\x04\x00", false),
        ));
        targets::quic_conn(&qc_input(QC_SEALED, &pieces))
    };
    assert_eq!(suite_0x1304(&[]), 0);
    assert_eq!(suite_0x1304(&[0]), 0);
    assert_eq!(suite_0x1304(&[1, 2]), 0);
    assert_eq!(suite_0x1304(&[1, 2, 3]), 1);
    // A broken tag does not open.
    let pieces = [qc_piece(QC_CLIENT_1RTT, 0, QC_BROKEN, &request)];
    assert_eq!(
        targets::quic_conn(&qc_input(QC_SEALED | QC_HELLO, &pieces)),
        0
    );
}

#[test]
fn hostile_quic_conn_inputs_do_not_crash() {
    let huge = (1u64 << 62) - 1;
    let far = |frame: u8, offset: u64, data: &[u8]| {
        let mut f = vec![frame, 0x00];
        f.extend(quic_varint(offset));
        f.extend(quic_varint(data.len() as u64));
        f.extend_from_slice(data);
        f
    };
    let mut frames: Vec<Vec<u8>> = vec![
        // STREAM at offset 2^62 - 1 with a byte (refused), just below with one byte
        // (held 2^62 - 2 bytes away), an empty FIN at 2^62 - 1, one without a length.
        far(0x0e, huge, b"x"),
        far(0x0e, huge - 1, b"x"),
        far(0x0f, huge, b""),
        [&[0x0c, 0x04][..], &quic_varint(huge - 3), b"abc"].concat(),
        // ACK and ACK_ECN with 2^62 - 1 ranges.
        [&[0x02, 0x00, 0x00][..], &quic_varint(huge), &[0x00; 40]].concat(),
        [&[0x03, 0x00, 0x00][..], &quic_varint(huge), &[0x01; 40]].concat(),
        // NEW_CONNECTION_ID of lengths 21, 0 and 20.
        [&[0x18, 0x01, 0x00, 21][..], &[0x44; 40]].concat(),
        [&[0x18, 0x01, 0x00, 0][..], &[0x44; 16]].concat(),
        [&[0x18, 0x02, 0x00, 20][..], &[0x44; 36]].concat(),
        // Lengths of 2^62 - 1: a close's reason, CRYPTO, NEW_TOKEN, DATAGRAM.
        [&[0x1c, 0x00, 0x00][..], &quic_varint(huge), b"bye"].concat(),
        [&[0x06, 0x00][..], &quic_varint(huge), b"ch"].concat(),
        [&[0x07][..], &quic_varint(huge)].concat(),
        [&[0x31][..], &quic_varint(huge), b"dg"].concat(),
        // RESET_STREAM of a server-initiated unidirectional stream, and of 2^62 - 1.
        vec![0x04, 0x03, 0x00, 0x00],
        [&[0x04][..], &quic_varint(huge), &[0x00, 0x00]].concat(),
        // An unknown frame type, a truncated varint.
        vec![0x01, 0x40, 0x21, 0x01],
        vec![0xc0, 0xff],
    ];
    // More streams than tracked, more bytes and pieces held than allowed.
    let mut limits = Vec::new();
    for id in 0..12u64 {
        limits.extend(quic_stream(id * 4, 5 + id, &[b'a' + id as u8; 100], false));
    }
    let mut pieces_frames = Vec::new();
    for off in 0..20u64 {
        pieces_frames.extend(quic_stream(8, 2 + off * 2, b"p", false));
    }
    frames.extend([limits, pieces_frames]);
    for config in [QC_SEALED | QC_HELLO, QC_SEALED, QC_SEALED | 1 << 1 | 0x30] {
        for kind in [QC_CLIENT_1RTT, QC_SERVER_1RTT, QC_ZERO_RTT] {
            let pieces: Vec<Vec<u8>> = frames
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    qc_piece(
                        kind | (i as u8 % 4) << 3,
                        0,
                        QC_FLUSH * (i as u8 % 3 / 2),
                        f,
                    )
                })
                .collect();
            targets::quic_conn(&qc_input(config, &pieces));
        }
    }
    // Packet numbers jumping to 2^62 - 1, reordered, every length; key updates, flipped
    // phases, broken tags until a side is given up; duplicates, padding, coalescing.
    let data = quic_stream(0, 0, b"GET /", false);
    let mut pieces = Vec::new();
    for i in 0..40u8 {
        let h0 = [QC_CLIENT_1RTT, QC_ZERO_RTT, QC_SERVER_1RTT][usize::from(i % 3)]
            | (i % 4) << 3
            | (i / 3 % 4) << 5
            | if i % 5 == 0 { QC_JOIN } else { 0 };
        let h1 = [0x00, 0x80, 0x7f, 0x81, 0x05][usize::from(i % 5)];
        let h2 = (i % 8) | [0x00, 0x08, 0x20, 0x40, 0x80, 0x10, 0x08, 0x08][usize::from(i / 5 % 8)];
        pieces.push(qc_piece(h0, h1, h2, &data));
    }
    for config in [QC_SEALED, QC_SEALED | QC_HELLO | 0xc0, QC_SEALED | 0x16] {
        targets::quic_conn(&qc_input(config, &pieces));
    }
    // Every configuration, both modes, over every packet kind.
    let every_kind: Vec<Vec<u8>> = (0..16u8)
        .map(|i| qc_piece((i % 8) | (i & 8) << 4, i, i * 17, &data))
        .collect();
    for config in 0..=255u8 {
        targets::quic_conn(&qc_input(config, &every_kind));
    }
    // Raw datagrams: Version Negotiation, an unknown version, a Retry cut short, a
    // 0-RTT header whose length runs past the datagram or is zero, a short header.
    let raw: Vec<Vec<u8>> = vec![
        vec![
            0x01, 0x80, 0, 0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 1,
        ],
        vec![0x00, 0xc0, 0xff, 0, 0, 0x1d, 0, 0, 0],
        vec![0x00, 0xf0, 0, 0, 0, 1, 4, 1, 2],
        vec![0x02, 0xf0, 0, 0, 0, 1, 0, 30, 1],
        vec![0x01, 0xd0, 0, 0, 0, 1, 0, 0, 0x7f, 0xff],
        vec![0x01, 0xd0, 0, 0, 0, 1, 0, 0, 0],
        [&[0x01, 0x40][..], &[0x5e; 6], &[0; 30]].concat(),
        vec![0x00; 3],
    ];
    for config in [0x00, QC_HELLO, 0x16, 0xe8] {
        targets::quic_conn(&qc_input(config, &raw));
    }
    for short in [
        &b""[..],
        b"\x01",
        b"\x01\x00",
        b"\x01\xfe\xfd",
        b"\x00\xfe\xfd\xfe\xfd",
    ] {
        targets::quic_conn(short);
    }
}
