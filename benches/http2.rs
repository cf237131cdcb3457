//! HTTP/2 parsing throughput: HPACK header block decoding (Huffman, dynamic table) and
//! whole connections through [`Http2Conn`] (frames, HPACK, stream bookkeeping, bodies).
//!
//! Corpus (built in memory, deterministic):
//! - `hpack`: 1 000 request header blocks as a browser sends them on one connection:
//!   pseudo-headers, user-agent, accept-*, a 200-byte cookie and a per-request path
//!   with a query (all Huffman-coded; repeated fields as dynamic-table references
//!   after their first use). Throughput counts decoded header bytes.
//! - `connection`: one connection of 1 000 streams: each request's HEADERS plus a
//!   2 KiB JSON body in two DATA frames, each response's HEADERS plus a 6 KiB body in
//!   one DATA frame; each request, then its response, fed in 1 448-byte pieces (one
//!   TCP segment each).
//!
//! Run: `cargo bench --bench http2`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use consentry::net::hpack::encode::{self, Indexing};
use consentry::net::hpack::{HpackDecoder, DEFAULT_MAX_TABLE};
use consentry::net::http2::{build, flags, frame_type, Http2Conn, Http2Event, Http2Limits};
use consentry::net::sniff::H2_PREFACE;
use consentry::timestamp::Timestamp;

const STREAMS: u32 = 1_000;
const SEGMENT: usize = 1_448;

/// Header blocks of `n` requests on one connection (dynamic table shared).
fn request_blocks(n: u32) -> Vec<Vec<u8>> {
    let cookie = "session=0123456789abcdef0123456789abcdef; prefs=dark%2Clarge; _ga=GA1.2.1234567890.1764324000; consent=eyJhZHMiOmZhbHNlfQ; region=eu-west; build=4.2.0-release; ab=variant-b-0042; ts=1764324000123; trace=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut blocks = Vec::new();
    for i in 0..n {
        let mut b = Vec::new();
        encode::indexed(&mut b, 3); // :method POST
        encode::indexed(&mut b, 7); // :scheme https
        let path = format!("/v1/events?seq={i}&session=abc{}", i % 7);
        if i == 0 {
            encode::literal_with_name_index(
                &mut b,
                1,
                b"api.example-shop.com",
                Indexing::Incremental,
                true,
            );
            encode::literal(&mut b, b"user-agent", b"Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36", Indexing::Incremental, true);
            encode::literal_with_name_index(
                &mut b,
                19,
                b"application/json, text/plain, */*",
                Indexing::Incremental,
                true,
            );
            encode::literal_with_name_index(
                &mut b,
                17,
                b"en-US,en;q=0.9,zh-CN;q=0.8",
                Indexing::Incremental,
                true,
            );
            encode::literal_with_name_index(
                &mut b,
                32,
                cookie.as_bytes(),
                Indexing::Incremental,
                true,
            );
            encode::literal_with_name_index(
                &mut b,
                31,
                b"application/json",
                Indexing::Incremental,
                true,
            );
        } else {
            // Newest first: content-type 62, cookie 63, accept-language 64, accept 65,
            // user-agent 66, :authority 67.
            for idx in [67, 66, 65, 64, 63, 62] {
                encode::indexed(&mut b, idx);
            }
        }
        encode::literal_with_name_index(&mut b, 4, path.as_bytes(), Indexing::Without, true);
        blocks.push(b);
    }
    blocks
}

fn response_block() -> Vec<u8> {
    let mut b = Vec::new();
    encode::indexed(&mut b, 8);
    encode::literal_with_name_index(&mut b, 31, b"application/json", Indexing::Without, true);
    encode::literal_with_name_index(&mut b, 28, b"6144", Indexing::Without, true);
    b
}

/// The connection as turns: (client bytes, server bytes) per stream, request first.
fn connection() -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut turns = Vec::new();
    let mut client = H2_PREFACE.to_vec();
    client.extend(build::frame(frame_type::SETTINGS, 0, 0, &[]));
    let mut server = build::frame(frame_type::SETTINGS, 0, 0, &[]);
    let body: Vec<u8> = (0..2048)
        .map(|i| b"{\"k\":\"v\",\"n\":123}"[i % 17])
        .collect();
    let resp: Vec<u8> = (0..6144).map(|i| b"abcdefghijklmnop"[i % 16]).collect();
    for (i, block) in request_blocks(STREAMS).into_iter().enumerate() {
        let id = 2 * i as u32 + 1;
        client.extend(build::frame(
            frame_type::HEADERS,
            flags::END_HEADERS,
            id,
            &block,
        ));
        client.extend(build::frame(frame_type::DATA, 0, id, &body[..1024]));
        client.extend(build::frame(
            frame_type::DATA,
            flags::END_STREAM,
            id,
            &body[1024..],
        ));
        server.extend(build::frame(
            frame_type::HEADERS,
            flags::END_HEADERS,
            id,
            &response_block(),
        ));
        server.extend(build::frame(frame_type::DATA, flags::END_STREAM, id, &resp));
        turns.push((std::mem::take(&mut client), std::mem::take(&mut server)));
    }
    turns
}

fn bench(c: &mut Criterion) {
    let blocks = request_blocks(STREAMS);
    let compressed: usize = blocks.iter().map(Vec::len).sum();
    // Throughput in decoded header bytes (names and values): the compressed blocks
    // are mostly one-byte table references.
    let mut d = HpackDecoder::new(DEFAULT_MAX_TABLE);
    let mut decoded = 0usize;
    for block in &blocks {
        let mut out = Vec::new();
        d.decode(block, 64 << 10, &mut out).expect("valid block");
        decoded += out
            .iter()
            .map(|h| h.name.len() + h.value.len())
            .sum::<usize>();
    }
    eprintln!("hpack corpus: {compressed} bytes compressed, {decoded} bytes decoded");
    let mut group = c.benchmark_group("http2");
    group.throughput(Throughput::Bytes(decoded as u64));
    group.bench_function("hpack_request_blocks", |b| {
        b.iter(|| {
            let mut d = HpackDecoder::new(DEFAULT_MAX_TABLE);
            let mut fields = 0usize;
            let mut out = Vec::new();
            for block in &blocks {
                out.clear();
                d.decode(block, 64 << 10, &mut out).expect("valid block");
                fields += out.len();
            }
            fields
        })
    });

    let turns = connection();
    let total: usize = turns.iter().map(|(c, s)| c.len() + s.len()).sum();
    let run = || {
        let mut conn = Http2Conn::new(Http2Limits::default());
        let mut out = Vec::new();
        let mut exchanges = 0usize;
        let ts = Timestamp::from_micros(0);
        for (client, server) in &turns {
            for piece in client.chunks(SEGMENT) {
                conn.client_data(piece, ts, 1, &mut out);
            }
            for piece in server.chunks(SEGMENT) {
                conn.server_data(piece, ts, 2, &mut out);
            }
            exchanges += out
                .iter()
                .filter(|e| matches!(e, Http2Event::Exchange { .. }))
                .count();
            out.clear();
        }
        conn.close(&mut out);
        exchanges + out.len()
    };
    assert_eq!(run(), STREAMS as usize, "every stream is one exchange");
    group.throughput(Throughput::Bytes(total as u64));
    group.sample_size(20);
    group.bench_function("connection_1000_streams", |b| b.iter(run));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
