//! Benchmarks of personal-data detection (DESIGN.md §3).
//!
//! Run: `cargo bench --bench matcher -- --warm-up-time 1 --measurement-time 3`
//!
//! Corpus: decoded request bodies generated here, deterministically (a fixed-seed
//! xorshift): JSON event batches, form bodies and query strings of 1–64 KiB with hex
//! ids, UUIDs, millisecond timestamps, user agents and base64 blobs, and a few planted
//! identifier variants of device 0. Pattern sets: every variant of synthetic devices
//! (all identifier kinds), ~1 000 (a stratified sample, so the length mix is the real
//! one) and 30 000 (13 devices, truncated).
//!
//! Groups: `build` (Detector for 10 devices × all kinds; Matcher for 30 000 patterns),
//! `matcher` (our matcher, bytes/s), `matcher_by_length` (the 30 000 set split by
//! shard), `baseline` (`aho_corasick` DFA and default builder, overlapping search, same
//! corpus and patterns; plus leftmost-first non-overlapping DFA for reference), `detector` (whole
//! `Detector::scan`: matcher + patterns + post-processing), `tail_search` (the search
//! of a body past the analysis cap, raw and decoded from gzip and br).

use std::borrow::Cow;
use std::hint::black_box;
use std::ops::ControlFlow;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use consentry::case::{Case, Device, Identifier, IdentifierKind, IdentifierValue};
use consentry::decode::Part;
use consentry::pii::matcher::Matcher;
use consentry::pii::variants::variants;
use consentry::pii::Detector;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn hex(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b"0123456789abcdef"[self.below(16)]))
            .collect()
    }
    fn uuid(&mut self) -> String {
        format!(
            "{}-{}-4{}-a{}-{}",
            self.hex(8),
            self.hex(4),
            self.hex(3),
            self.hex(3),
            self.hex(12)
        )
    }
    fn b64(&mut self, n: usize) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut s: String = (0..n).map(|_| char::from(A[self.below(64)])).collect();
        s.push_str("==");
        s
    }
    fn word(&mut self) -> &'static str {
        const W: &[&str] = &[
            "event",
            "screen_view",
            "session_start",
            "app_open",
            "purchase",
            "click",
            "impression",
            "banner",
            "home",
            "settings",
            "cart",
            "checkout",
            "true",
            "false",
            "zh-CN",
            "en-US",
            "Android",
            "14",
            "arm64-v8a",
            "wifi",
            "release",
            "com.example.shop",
        ];
        W[self.below(W.len())]
    }
}

fn text(s: &str) -> IdentifierValue {
    IdentifierValue::Text(s.to_string())
}

/// Synthetic device `i` with a value of every built-in kind and a custom string.
fn synthetic_device(i: usize) -> Device {
    let mut identifiers: Vec<Identifier> = IdentifierKind::BUILTIN
        .iter()
        .map(|k| {
            let value = match k {
                IdentifierKind::Location => IdentifierValue::Location {
                    lat: 30.0 + i as f64 * 0.0137,
                    lon: 120.0 + i as f64 * 0.0213,
                },
                IdentifierKind::Phone => text(&format!("+86138{:08}", 138000 + i)),
                IdentifierKind::Email => text(&format!("tester{i}@example.org")),
                IdentifierKind::Imei => text(&format!("4901542032{:05}", 37518 + i)),
                IdentifierKind::AndroidId => text(&format!("9774d56d682e{:04x}", 0x549c + i)),
                IdentifierKind::Mac | IdentifierKind::Bssid => text(&format!(
                    "02:00:00:44:{:02x}:{:02x}",
                    i % 256,
                    k.key().len()
                )),
                IdentifierKind::Name => text(&format!("Tester Number{i}")),
                _ => text(&format!(
                    "38400000-8cf0-11bd-{:04x}-10b96e4{:05x}",
                    i,
                    k.key().len()
                )),
            };
            Identifier {
                kind: k.clone(),
                value,
            }
        })
        .collect();
    identifiers.push(Identifier {
        kind: IdentifierKind::Custom("user_name".into()),
        value: text(&format!("user{i}name")),
    });
    Device {
        id: format!("dev{i}"),
        identifiers,
        ..Device::default()
    }
}

fn case(devices: usize) -> Case {
    Case {
        devices: (0..devices).map(synthetic_device).collect(),
        ..Case::default()
    }
}

/// Distinct variant byte strings of the first `devices` synthetic devices.
fn pattern_pool(devices: usize) -> Vec<Vec<u8>> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for d in 0..devices {
        for id in synthetic_device(d).identifiers {
            for v in variants(&id.kind, &id.value) {
                if seen.insert(v.bytes.clone()) {
                    out.push(v.bytes);
                }
            }
        }
    }
    out
}

fn patterns(n: usize) -> Vec<Vec<u8>> {
    let mut devices = 1;
    let mut pool = pattern_pool(devices);
    while pool.len() < n {
        devices += 1;
        pool = pattern_pool(devices);
    }
    // Stratified: every k-th, so the length mix stays that of the full variant set.
    let step = pool.len() as f64 / n as f64;
    (0..n)
        .map(|i| pool[(i as f64 * step) as usize].clone())
        .collect()
}

fn json_body(r: &mut Rng, target: usize, plants: &[Vec<u8>]) -> Vec<u8> {
    let mut s = String::from("{\"batch\":[");
    let mut i = 0;
    while s.len() < target {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!(
            "{{\"ts\":{},\"name\":\"{}\",\"id\":\"{}\",\"session\":\"{}\",\"params\":{{\"screen\":\"{}\",\"v\":{}.{},\"ok\":{}}}",
            1_732_790_000_000u64 + r.below(10_000_000) as u64,
            r.word(),
            r.uuid(),
            r.hex(32),
            r.word(),
            r.below(100),
            r.below(1000),
            r.word(),
        ));
        if r.below(4) == 0 {
            let n = 40 + r.below(400);
            s.push_str(&format!(",\"blob\":\"{}\"", r.b64(n)));
        }
        if r.below(6) == 0 {
            s.push_str(&format!(
                ",\"ua\":\"Mozilla/5.0 (Linux; Android 14; Pixel 7 Build/UQ1A.{}) AppleWebKit/537.36\"",
                r.below(999_999)
            ));
        }
        if !plants.is_empty() && r.below(40) == 0 {
            let p = &plants[r.below(plants.len())];
            s.push_str(&format!(",\"x\":\"{}\"", String::from_utf8_lossy(p)));
        }
        s.push('}');
        i += 1;
    }
    s.push_str("]}");
    s.into_bytes()
}

fn form_body(r: &mut Rng, target: usize, plants: &[Vec<u8>]) -> Vec<u8> {
    let mut s = String::new();
    while s.len() < target {
        if !s.is_empty() {
            s.push('&');
        }
        match r.below(6) {
            0 => s.push_str(&format!("sid={}", r.hex(40))),
            1 => s.push_str(&format!("t={}", 1_732_790_000 + r.below(100_000))),
            2 => s.push_str(&format!("cid={}", r.uuid())),
            3 => s.push_str(&format!("ev={}&ep.{}={}", r.word(), r.word(), r.word())),
            4 => {
                let n = 60 + r.below(200);
                s.push_str(&format!("d={}", r.b64(n)))
            }
            _ => s.push_str(&format!(
                "dl=https%3A%2F%2Fexample-shop.com%2F{}%3Fp%3D{}",
                r.word(),
                r.below(1000)
            )),
        }
        if !plants.is_empty() && r.below(60) == 0 {
            let p = &plants[r.below(plants.len())];
            s.push_str(&format!("&y={}", String::from_utf8_lossy(p)));
        }
    }
    s.into_bytes()
}

/// About 2 MiB of bodies, 1–64 KiB each.
fn corpus() -> Vec<Vec<u8>> {
    let dev0 = synthetic_device(0);
    let plants: Vec<Vec<u8>> = dev0
        .identifiers
        .iter()
        .flat_map(|id| variants(&id.kind, &id.value))
        .filter(|v| v.bytes.len() >= 8)
        .step_by(97)
        .map(|v| v.bytes)
        .collect();
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    let mut out = Vec::new();
    let mut total = 0;
    while total < 2 << 20 {
        let size = 1024 << r.below(7); // 1, 2, 4, … 64 KiB
        let body = if r.below(3) == 0 {
            form_body(&mut r, size, &plants)
        } else {
            json_body(&mut r, size, &plants)
        };
        total += body.len();
        out.push(body);
    }
    out
}

fn bench(c: &mut Criterion) {
    let corpus = corpus();
    let bytes: usize = corpus.iter().map(Vec::len).sum();

    let mut g = c.benchmark_group("build");
    let ten = case(10);
    let det = Detector::new(&ten);
    eprintln!(
        "detector: 10 devices x {} kinds -> {} patterns",
        IdentifierKind::BUILTIN.len() + 1,
        det.pattern_count()
    );
    g.bench_function("detector_10_devices", |b| {
        b.iter(|| Detector::new(black_box(&ten)))
    });
    let p30k = patterns(30_000);
    g.bench_function("matcher_30000", |b| {
        b.iter(|| Matcher::new(black_box(&p30k)))
    });
    g.finish();

    let sets = [(1_000usize, patterns(1_000)), (30_000, p30k)];
    let mut g = c.benchmark_group("matcher");
    g.throughput(Throughput::Bytes(bytes as u64));
    for (n, pats) in &sets {
        let m = Matcher::new(pats);
        let mut hits = 0usize;
        for body in &corpus {
            let _ = m.for_each(body, |_, _| {
                hits += 1;
                ControlFlow::Continue(())
            });
        }
        eprintln!(
            "matcher {n}: {hits} hits over {bytes} bytes in {} bodies",
            corpus.len()
        );
        g.bench_with_input(BenchmarkId::new("sampled_qgram", n), &m, |b, m| {
            b.iter(|| {
                let mut hits = 0usize;
                for body in &corpus {
                    let _ = m.for_each(body, |_, _| {
                        hits += 1;
                        ControlFlow::Continue(())
                    });
                }
                hits
            })
        });
    }
    g.finish();

    // Where the time goes: the 30 000 set split by pattern length (shard classes).
    let mut g = c.benchmark_group("matcher_by_length");
    g.throughput(Throughput::Bytes(bytes as u64));
    for (lo, hi) in [(1usize, 6usize), (6, 12), (12, 32), (32, usize::MAX)] {
        let subset: Vec<&Vec<u8>> = sets[1]
            .1
            .iter()
            .filter(|p| (lo..hi).contains(&p.len()))
            .collect();
        let m = Matcher::new(&subset);
        eprintln!("length {lo}..{}: {} patterns", hi.min(999), subset.len());
        g.bench_with_input(
            BenchmarkId::new("30000", format!("{lo}..{}", hi.min(999))),
            &m,
            |b, m| {
                b.iter(|| {
                    let mut hits = 0usize;
                    for body in &corpus {
                        let _ = m.for_each(body, |_, _| {
                            hits += 1;
                            ControlFlow::Continue(())
                        });
                    }
                    hits
                })
            },
        );
    }
    g.finish();

    let mut g = c.benchmark_group("baseline");
    g.throughput(Throughput::Bytes(bytes as u64));
    for (n, pats) in &sets {
        for (name, kind) in [
            ("aho_corasick_dfa", Some(AhoCorasickKind::DFA)),
            ("aho_corasick_default", None),
        ] {
            let ac = AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .kind(kind)
                .build(pats)
                .expect("aho-corasick build");
            eprintln!(
                "{name} {n}: kind {:?}, {} bytes of heap",
                ac.kind(),
                ac.memory_usage()
            );
            g.bench_with_input(BenchmarkId::new(name, n), &ac, |b, ac| {
                b.iter(|| {
                    let mut hits = 0usize;
                    for body in &corpus {
                        hits += ac.find_overlapping_iter(body.as_slice()).count();
                    }
                    hits
                })
            });
        }
        // Not the same job (leftmost-first, no overlaps: misses nested variants) but the
        // figure usually quoted for aho-corasick, with its prefilters active.
        let ac = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            .kind(Some(AhoCorasickKind::DFA))
            .build(pats)
            .expect("aho-corasick build");
        g.bench_with_input(
            BenchmarkId::new("aho_corasick_dfa_leftmost_no_overlaps", n),
            &ac,
            |b, ac| {
                b.iter(|| {
                    let mut hits = 0usize;
                    for body in &corpus {
                        hits += ac.find_iter(body.as_slice()).count();
                    }
                    hits
                })
            },
        );
    }
    g.finish();

    let mut g = c.benchmark_group("detector");
    g.throughput(Throughput::Bytes(bytes as u64));
    let parts: Vec<Part<'_>> = corpus
        .iter()
        .map(|b| Part::new("body", Cow::Borrowed(b.as_slice())))
        .collect();
    let found = parts
        .iter()
        .map(|p| det.scan(std::slice::from_ref(p)).len())
        .sum::<usize>();
    eprintln!("detector scan: {found} matches");
    g.bench_function("scan_10_devices", |b| {
        b.iter(|| {
            parts
                .iter()
                .map(|p| det.scan(std::slice::from_ref(p)).len())
                .sum::<usize>()
        })
    });
    g.finish();

    tail_search(c);
}

/// The search of a request body past the analysis cap (`pii::decoded_tail::body_tail`):
/// 4 MiB of JSON event batches with 256 KiB kept, the rest fed in 64 KiB pieces, as it
/// is sent (raw) and sent gzip- or br-encoded (decoded as it passes). Throughput is
/// the body's decoded bytes.
fn tail_search(c: &mut Criterion) {
    use consentry::decode::Limits;
    use consentry::net::tail_search::TailStart;
    use consentry::pii::decoded_tail::body_tail;
    use std::io::Write;

    let mut r = Rng(0x7a11_5eac);
    let mut plain = Vec::new();
    while plain.len() < 4 << 20 {
        plain.extend_from_slice(&json_body(&mut r, 64 << 10, &[]));
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).unwrap();
    let gzip = gz.finish().unwrap();
    let mut br = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut br, 4096, 5, 22);
        w.write_all(&plain).unwrap();
    }
    let det = std::sync::Arc::new(Detector::new(&case(10)));
    let limits = Limits::default();
    let mut g = c.benchmark_group("tail_search");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(plain.len() as u64));
    for (name, body, encoding) in [
        ("raw", &plain, None),
        ("gzip", &gzip, Some(&b"gzip"[..])),
        ("br", &br, Some(&b"br"[..])),
    ] {
        let (kept, rest) = body.split_at(256 << 10);
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut tail = body_tail(
                    det.clone(),
                    &limits,
                    TailStart {
                        before: kept,
                        at: kept.len() as u64,
                        content_encoding: encoding,
                    },
                );
                for piece in rest.chunks(64 << 10) {
                    tail.feed(piece);
                }
                tail.finish().bytes
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
