//! pcap pipeline throughput: frames → exchanges through the [`Tap`] (link and IP
//! decoding, TCP reassembly, HTTP/1 parsing), and frames → findings (the tap plus the
//! whole analysis), over a capture generated in memory.
//!
//! Corpus: 400 TCP connections from one phone, each with a handshake, two keep-alive
//! HTTP/1.1 requests (JSON bodies of 1–6 KiB, one in eight carrying the advertising
//! id) split into 1 448-byte segments, and responses of 2–20 KiB; connections are
//! interleaved two at a time. Deterministic (fixed seed). The end-to-end comparison
//! with tshark, Suricata and ngrep on a 500 MB file is `benches/compare_pcap.sh`.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use consentry::case::DeviceResolver;
use consentry::exchange::SourceKind;
use consentry::net::capture::{CaptureEvent, CaptureReader};
use consentry::net::tap::{Tap, TapLimits};
use consentry::rules::{Analyzer, Options};

const CASE: &str = r#"
[app]
name = "Shop"
first_party = ["example-shop.com"]
[[device]]
id = "phone"
addresses = ["10.0.0.2"]
[device.identifiers]
advertising_id = "38400000-8cf0-11bd-b23e-10b96e40000d"
android_id = "9774d56d682e549c"
imei = "490154203237518"
oaid = "a1b2c3d4-0000-4e5f-8a9b-0c1d2e3f4a5b"
phone = "+8613800138000"
email = "tester@example.org"
"#;

const HOSTS: [&str; 4] = [
    "api.example-shop.com",
    "graph.facebook.com",
    "ulogs.umeng.com",
    "t.appsflyer.com",
];
const MSS: usize = 1448;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A classic pcap file (µs, little-endian, Ethernet) built frame by frame.
struct Pcap {
    bytes: Vec<u8>,
    micros: u64,
}

impl Pcap {
    fn new() -> Self {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        bytes.extend_from_slice(&2u16.to_le_bytes()); // version 2.4
        bytes.extend_from_slice(&4u16.to_le_bytes());
        for v in [0u32, 0, 262_144, 1] {
            // zone, sigfigs, snaplen, Ethernet
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        Pcap {
            bytes,
            micros: 1_764_324_000_000_000,
        }
    }

    fn tcp(&mut self, from_client: bool, port: u16, seq: u32, ack: u32, flags: u8, payload: &[u8]) {
        let (src, dst) = if from_client {
            ([10, 0, 0, 2], [203, 0, 113, 9])
        } else {
            ([203, 0, 113, 9], [10, 0, 0, 2])
        };
        let (sport, dport) = if from_client { (port, 80) } else { (80, port) };
        let mut f = Vec::with_capacity(54 + payload.len());
        f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00]);
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
        self.micros += 50;
        let secs = (self.micros / 1_000_000) as u32;
        let us = (self.micros % 1_000_000) as u32;
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

fn request(rng: &mut Rng, host: &str) -> Vec<u8> {
    let mut body = String::from("{\"events\":[");
    let size = 1024 + rng.below(5 * 1024) as usize;
    let mut i = 0;
    while body.len() < size {
        body.push_str(&format!(
            "{{\"name\":\"screen_view\",\"ts\":{},\"session\":\"{:016x}\",\"n\":{i}}},",
            1_764_324_000 + rng.below(1000),
            rng.next()
        ));
        i += 1;
    }
    if rng.below(8) == 0 {
        body.push_str("{\"ifa\":\"38400000-8cf0-11bd-b23e-10b96e40000d\"}");
    } else {
        body.push_str("{\"end\":true}");
    }
    body.push_str("]}");
    format!(
        "POST /v1/track HTTP/1.1\r\nHost: {host}\r\nUser-Agent: okhttp/4.12.0\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn response(rng: &mut Rng) -> Vec<u8> {
    let len = 2048 + rng.below(18 * 1024) as usize;
    let mut r = format!("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\n\r\n").into_bytes();
    r.extend((0..len).map(|i| (i * 7 + 13) as u8));
    r
}

fn send(p: &mut Pcap, from_client: bool, port: u16, seq: &mut u32, ack: u32, data: &[u8]) {
    for chunk in data.chunks(MSS) {
        p.tcp(from_client, port, *seq, ack, PSH_ACK, chunk);
        *seq = seq.wrapping_add(chunk.len() as u32);
    }
}

fn capture() -> Vec<u8> {
    let mut rng = Rng(0x5eed_cafe_f00d_d00d);
    let mut p = Pcap::new();
    for pair in 0..200u16 {
        // Two connections interleaved request by request.
        let ports = [20_000 + 2 * pair, 20_001 + 2 * pair];
        let mut cseq = [1_000u32, 5_000_000];
        let mut sseq = [9_000u32, 7_000_000];
        for (k, &port) in ports.iter().enumerate() {
            p.tcp(true, port, cseq[k], 0, SYN, &[]);
            p.tcp(false, port, sseq[k], cseq[k] + 1, SYN | ACK, &[]);
            cseq[k] += 1;
            sseq[k] += 1;
            p.tcp(true, port, cseq[k], sseq[k], ACK, &[]);
        }
        for _ in 0..2 {
            for (k, &port) in ports.iter().enumerate() {
                let host = HOSTS[rng.below(HOSTS.len() as u64) as usize];
                let req = request(&mut rng, host);
                send(&mut p, true, port, &mut cseq[k], sseq[k], &req);
                let resp = response(&mut rng);
                send(&mut p, false, port, &mut sseq[k], cseq[k], &resp);
            }
        }
        for (k, &port) in ports.iter().enumerate() {
            p.tcp(true, port, cseq[k], sseq[k], FIN_ACK, &[]);
            p.tcp(false, port, sseq[k], cseq[k] + 1, FIN_ACK, &[]);
            p.tcp(true, port, cseq[k] + 1, sseq[k] + 1, ACK, &[]);
        }
    }
    p.bytes
}

fn bench(c: &mut Criterion) {
    let file = capture();
    let case = Arc::new(consentry::case::parse(CASE, "bench.toml").expect("bench case"));
    let devices = DeviceResolver::new(&case);
    let run_tap = |on_exchange: &mut dyn FnMut(consentry::exchange::Exchange)| {
        let mut tap = Tap::new(
            devices.clone(),
            None,
            None,
            SourceKind::Pcap,
            TapLimits::default(),
        );
        let mut reader = CaptureReader::new(file.as_slice()).expect("bench capture");
        while let Ok(Some(event)) = reader.next_event() {
            if let CaptureEvent::Frame(frame) = event {
                tap.frame(&frame, on_exchange);
            }
        }
        tap.finish(on_exchange);
    };
    let mut exchanges = 0usize;
    run_tap(&mut |_| exchanges += 1);
    assert_eq!(exchanges, 800, "the corpus has 800 requests");

    let mut group = c.benchmark_group("tap");
    group.throughput(Throughput::Bytes(file.len() as u64));
    group.sample_size(10);
    group.bench_function("frames_to_exchanges", |b| {
        b.iter(|| {
            let mut n = 0usize;
            run_tap(&mut |_| n += 1);
            n
        })
    });
    group.bench_function("frames_to_findings", |b| {
        b.iter(|| {
            let mut analyzer = Analyzer::new(case.clone(), Options::default());
            let mut findings = 0usize;
            run_tap(&mut |x| findings += analyzer.observe(&x).findings.len());
            findings
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
