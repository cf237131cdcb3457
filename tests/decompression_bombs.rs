//! Compressed data that claims far more output than it may have costs no memory:
//! a counting global allocator measures the peak heap while each way in decodes it
//! (a request body's analysis, the search past the analysis cap, a TLS certificate
//! compressed per RFC 8879). The inputs are built here.

use std::sync::{Arc, Mutex};

use consentry::decode::{request_parts, Limits};
use consentry::exchange::{Exchange, Header, SourceKind};
use consentry::net::tail_search::TailStart;
use consentry::net::tls_certificate::{decompress_certificate, MAX_MESSAGE};
use consentry::pii::decoded_tail::body_tail;
use consentry::pii::Detector;
use consentry::timestamp::Timestamp;

#[path = "common/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::{assert_counts, peak_of, Counting};

#[global_allocator]
static ALLOC: Counting = Counting;

/// The tests share one heap count: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Most heap a decoding may add to what was in use when it started.
const PEAK_LIMIT: usize = 16 << 20;

/// A zstd frame: 8 raw bytes, then one compressed block of 65 KB holding 32 512
/// matches of 131 074 bytes each (RLE-coded sequence tables, every extra bit set),
/// 4.2 GB where a block may decode to 128 KiB. ruzstd 0.7 built all of it in memory
/// before handing out a byte.
fn zstd_sequence_bomb() -> Vec<u8> {
    const SEQUENCES: usize = 0x7f00;
    let mut out = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38];
    out.extend_from_slice(&(8u32 << 3).to_le_bytes()[..3]);
    out.extend_from_slice(b"AAAAAAAA");
    // No literals; the sequence count in its three-byte form (0x7f00 + 0).
    let mut block = vec![0x00, 0xff, 0x00, 0x00];
    // Literal lengths, offsets, match lengths all RLE: codes 0, 0 and 52.
    block.extend_from_slice(&[0x54, 0, 0, 52]);
    block.resize(block.len() + 2 * SEQUENCES, 0xff);
    block.push(0x01);
    let header = 1 | (2 << 1) | ((block.len() as u32) << 3);
    out.extend_from_slice(&header.to_le_bytes()[..3]);
    out.extend_from_slice(&block);
    out
}

fn detector() -> Arc<Detector> {
    let case = consentry::case::parse(
        r#"
[case]
id = "bombs"

[app]
name = "Bombs"
first_party = ["bombs.example"]

[[device]]
id = "pixel7"
[device.identifiers]
advertising_id = "38400000-8cf0-11bd-b23e-10b96e40000d"
"#,
        "bombs.toml",
    )
    .expect("a valid case");
    Arc::new(Detector::new(&case))
}

#[test]
fn a_zstd_body_claiming_gigabytes_in_one_block_is_refused_within_bounded_memory() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let bomb = zstd_sequence_bomb();
    assert!(bomb.len() < 70 * 1024);
    let mut x = Exchange::new("x-bomb", SourceKind::Har, Timestamp::from_micros(0));
    x.host = "sdk.example.net".into();
    x.method = "POST".into();
    x.path = "/v1/batch".into();
    x.request_headers = vec![
        Header::new("Content-Type", "application/json"),
        Header::new("Content-Encoding", "zstd"),
    ];
    x.request_body = bomb;
    let (anomalies, peak) = peak_of(|| {
        let mut anomalies = Vec::new();
        let _parts = request_parts(&x, &Limits::default(), &mut anomalies);
        anomalies
    });
    assert!(peak < PEAK_LIMIT, "{peak} bytes of heap");
    assert_counts(PEAK_LIMIT);
    assert!(
        anomalies
            .iter()
            .any(|a| a.kind == "content-decoding-error"
                && a.detail.contains("TooManyBytesGenerated")),
        "{anomalies:?}"
    );
}

#[test]
fn a_zstd_tail_past_the_cap_claiming_gigabytes_is_refused_within_bounded_memory() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let detector = detector();
    let bomb = zstd_sequence_bomb();
    // The kept part ends inside the big block; the rest arrives in pieces.
    let (kept, rest) = bomb.split_at(4096);
    let limits = Limits {
        max_body_bytes: kept.len(),
        ..Limits::default()
    };
    let (found, peak) = peak_of(|| {
        let mut tail = body_tail(
            detector,
            &limits,
            TailStart {
                before: kept,
                at: kept.len() as u64,
                content_encoding: Some(b"zstd"),
            },
        );
        for piece in rest.chunks(1448) {
            tail.feed(piece);
        }
        tail.finish()
    });
    assert!(peak < PEAK_LIMIT, "{peak} bytes of heap");
    assert_counts(PEAK_LIMIT);
    assert_eq!(
        found.decoded_from.map(|c| c.to_string()).as_deref(),
        Some("zstd")
    );
    assert!(found.hits.is_empty());
    assert_eq!(found.anomalies.len(), 1, "{:?}", found.anomalies);
    assert_eq!(found.anomalies[0].kind, "content-decoding-error");
}

#[test]
fn a_zstd_compressed_certificate_claiming_gigabytes_is_refused_within_bounded_memory() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let bomb = zstd_sequence_bomb();
    // CompressedCertificate: algorithm 3 (zstd), the length announced, the data.
    let mut body = vec![0x00, 0x03];
    body.extend_from_slice(&(MAX_MESSAGE as u32).to_be_bytes()[1..]);
    body.extend_from_slice(&(bomb.len() as u32).to_be_bytes()[1..]);
    body.extend_from_slice(&bomb);
    let (decompressed, peak) = peak_of(|| decompress_certificate(&body));
    assert!(peak < PEAK_LIMIT, "{peak} bytes of heap");
    assert_counts(PEAK_LIMIT);
    let error = decompressed.expect_err("refused");
    assert!(error.contains("TooManyBytesGenerated"), "{error}");
}
