//! Whole-analysis throughput: `Analyzer::observe` (decode, consent-signal extraction,
//! personal-data detection, classification, rules) over generated app requests, with
//! and without reading consent signals; and signal extraction and interpretation
//! alone against the decoding they ride on.
//!
//! Corpus: 2 000 POST requests to a mix of first- and third-party hosts, JSON bodies
//! of 0.5–8 KiB with ids, timestamps and base64 blobs; one in ten carries a device
//! identifier, one in five an IAB consent parameter, one in twenty is an OpenRTB bid
//! request. Deterministic (fixed seed).

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use consentry::exchange::{Exchange, Header, SourceKind};
use consentry::parties::Classifier;
use consentry::pii::Detector;
use consentry::rules::{Analyzer, Options};
use consentry::timestamp::Timestamp;

const CASE: &str = r#"
[app]
name = "Shop"
first_party = ["example-shop.com"]
[[device]]
id = "phone"
[device.identifiers]
advertising_id = "38400000-8cf0-11bd-b23e-10b96e40000d"
android_id = "9774d56d682e549c"
imei = "490154203237518"
oaid = "a1b2c3d4-0000-4e5f-8a9b-0c1d2e3f4a5b"
mac = "02:00:00:44:55:66"
phone = "+8613800138000"
email = "tester@example.org"
[[consent]]
device = "phone"
at = "2026-11-28T10:00:30Z"
decision = "refused"
purposes = ["advertising"]
"#;

const HOSTS: [&str; 8] = [
    "api.example-shop.com",
    "graph.facebook.com",
    "ulogs.umeng.com",
    "t.appsflyer.com",
    "sdk.e.qq.com",
    "api2.amplitude.com",
    "securepubads.g.doubleclick.net",
    "log.unknown-partner.io",
];

/// xorshift64: a tiny deterministic generator for the corpus.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn corpus() -> Vec<Exchange> {
    let mut rng = Rng(0x5eed_cafe_f00d_d00d);
    let t0 = Timestamp::parse_rfc3339("2026-11-28T10:00:00Z").unwrap();
    (0..2000u64)
        .map(|i| {
            let mut x = Exchange::new(format!("x-{i}"), SourceKind::Har, t0.add_millis(i as i64 * 30));
            x.device = Some("phone".into());
            x.host = HOSTS[(rng.next() % HOSTS.len() as u64) as usize].to_string();
            x.method = "POST".into();
            let mut query = format!("/v1/collect?seq={i}");
            if rng.next().is_multiple_of(5) {
                query.push_str("&gdpr=1&gdpr_consent=CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA&us_privacy=1YNN");
            }
            x.path = query;
            x.request_headers.push(Header::new("Content-Type", "application/json"));
            let size = 512 << (rng.next() % 5);
            let mut body = String::from("{\"events\":[");
            while body.len() < size {
                body.push_str(&format!(
                    "{{\"id\":\"{:016x}\",\"ts\":{},\"blob\":\"{}\"}},",
                    rng.next(),
                    1_795_860_000_000u64 + rng.next() % 100_000_000,
                    "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3"
                ));
            }
            body.push_str("{}]");
            if rng.next().is_multiple_of(10) {
                body.push_str(",\"device\":{\"oaid\":\"a1b2c3d4-0000-4e5f-8a9b-0c1d2e3f4a5b\"}");
            }
            if rng.next().is_multiple_of(20) {
                body.push_str(",\"imp\":[{\"id\":\"1\"}],\"regs\":{\"ext\":{\"gdpr\":1}}");
            }
            body.push('}');
            x.request_body = body.into_bytes();
            x
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let case = Arc::new(consentry::case::parse(CASE, "bench.toml").unwrap());
    let exchanges = corpus();
    // Built once, as a long-running tap or proxy would.
    let detector = Arc::new(Detector::new(&case));
    let classifier = Arc::new(Classifier::new(&case.app));
    let bytes: u64 = exchanges
        .iter()
        .map(|x| (x.request_body.len() + x.path.len()) as u64)
        .sum();
    let mut g = c.benchmark_group("observe");
    g.throughput(Throughput::Bytes(bytes));
    for (name, wire_signals) in [("with_signals", true), ("without_signals", false)] {
        let options = Options {
            wire_signals,
            ..Options::default()
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut a = Analyzer::with_parts(
                    case.clone(),
                    detector.clone(),
                    classifier.clone(),
                    options.clone(),
                );
                let mut n = 0;
                for x in &exchanges {
                    n += a.observe(x).findings.len();
                }
                n
            })
        });
    }
    g.finish();

    // Signal extraction alone, against the decoding it rides on.
    let limits = consentry::decode::Limits::default();
    let mut g = c.benchmark_group("signals");
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("decode", |b| {
        b.iter(|| {
            let mut n = 0;
            for x in &exchanges {
                n += consentry::decode::request_parts(x, &limits, &mut Vec::new()).len();
            }
            n
        })
    });
    g.bench_function("decode_and_extract", |b| {
        b.iter(|| {
            let mut n = 0;
            for x in &exchanges {
                let parts = consentry::decode::request_parts(x, &limits, &mut Vec::new());
                for s in consentry::consent::signals::extract(&parts) {
                    n += usize::from(matches!(
                        consentry::consent::wire::interpret(&s),
                        Ok(Some(_))
                    ));
                }
                n += parts.len();
            }
            n
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
