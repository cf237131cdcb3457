//! Case store append throughput: exchange records (canonical JSON, SHA-256 chain,
//! the `exchanges` index with its four B-trees) appended in transactions of
//! `store::db::BATCH`, on a file in a temporary directory (WAL, synchronous = NORMAL,
//! as `Store::open` sets it).
//! Analysis is not included: this is the cost the store adds to an ingest.
//!
//! `live_proxy_exchange`: what `consentry proxy`'s consumer thread does with one
//! intercepted request of `benches/proxy_compare.sh` (HTTPS GET carrying a device's
//! advertising id, consent refused): the exchange record with its raw heads and body
//! digests plus its one finding, through `LiveStore` (a commit every
//! [`LIVE_COMMIT`] exchanges, about what the proxy's 100 ms commit interval groups at
//! 3 000 req/s). `judge_encode`: the analysis half of the same consumer for an
//! exchange prepared on the runtime threads (judging it, and the finding's JSON), as
//! for a request of `proxy::PREPARE_INLINE_FROM` bytes or more; `observe_encode`: the
//! same with the preparation (decoding and matching), as the consumer does it for
//! smaller ones such as this. All measure the thread's CPU time (user + system), not
//! wall time.
//! `live_proxy_exchange_bare`: the same without the connection's facts (addresses,
//! JA3/JA4, the upstream certificate), as the proxy stored it before 5 December
//! 2026: the difference is what keeping them costs the consumer.
//! `live_proxy_exchange_grown`: the same appends to a store already holding 300 000
//! live exchanges (a long proxy session), where each index insert at a random key
//! lands on a page of its own.
//!
//! `query_1m`: a time-range query returning 1 000 exchanges (one second) from a store
//! of 1 000 000 exchanges (one per millisecond), through the `exchanges_at` index.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use consentry::exchange::{Exchange, Response, SourceKind, TlsInfo};
use consentry::store::db::Side;
use consentry::store::record::{ExchangeBody, Kind};
use consentry::store::{Query, Store, StoredTable};
use consentry::timestamp::Timestamp;

// The allocator of the `consentry` binary: the consumer's work is measured as the
// proxy does it.
#[global_allocator]
static ALLOC: consentry::allocator::Mimalloc = consentry::allocator::Mimalloc;

use std::sync::Arc;

use consentry::cli::live_store::LiveStore;
use consentry::exchange::{BodyDigests, Header, RawHead, ServerCertificate};
use consentry::rules::{finding_json, Analyzer, Observation, Options, Preparer};
use consentry::store::CaseDir;

const N: usize = 20_000;
const HOSTS: [&str; 4] = [
    "api.example-shop.com",
    "graph.facebook.com",
    "ulogs.umeng.com",
    "app-measurement.com",
];

fn exchanges() -> Vec<ExchangeBody> {
    exchanges_n(N)
}

fn exchanges_n(n: usize) -> Vec<ExchangeBody> {
    (0..n)
        .map(|i| {
            let at = Timestamp::from_micros(1_764_000_000_000_000 + i as i64 * 1_000);
            let mut x = Exchange::new(format!("x-{i:016x}"), SourceKind::Har, at);
            x.device = Some("pixel7".into());
            x.host = HOSTS[i % HOSTS.len()].into();
            x.method = "POST".into();
            x.path = format!("/v1/collect?session={i}&platform=android");
            x.response = Some(Response {
                status: 200,
                ..Response::default()
            });
            x.tls = Some(TlsInfo {
                version: Some("TLS 1.3".into()),
                sni: None,
                decrypted: true,
                decrypt_error: None,
                ..Default::default()
            });
            x.evidence.file_sha256 = Some("ab".repeat(32));
            x.evidence.locator = format!("entry {i}");
            ExchangeBody::of(&x)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let bodies = exchanges();
    let mut g = c.benchmark_group("store");
    g.sample_size(10);
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("append_exchanges", |b| {
        b.iter_with_large_drop(|| {
            let dir = tempfile::tempdir().expect("temp dir");
            let mut store = Store::open(&dir.path().join("store.db")).expect("store");
            // The seq of the file's `started` ingest record.
            let ingest = 1;
            for x in &bodies {
                let side = Side::Exchange {
                    ingest,
                    id: &x.id,
                    at: x.at,
                    device: x.device.as_deref(),
                    host: &x.host,
                };
                store.append(Kind::Exchange, x, side).expect("append");
            }
            store.commit().expect("commit");
            dir
        })
    });
    g.finish();
}

fn bench_query(c: &mut Criterion) {
    const BIG: usize = 1_000_000;
    let mut g = c.benchmark_group("store");
    g.sample_size(20);
    g.bench_function("query_1m_range_1000", |b| {
        // Built here, not before: only when this benchmark is selected.
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store.db");
        {
            let mut store = Store::open(&path).expect("store");
            for x in exchanges_n(BIG) {
                let side = Side::Exchange {
                    ingest: 1,
                    id: &x.id,
                    at: x.at,
                    device: x.device.as_deref(),
                    host: &x.host,
                };
                store.append(Kind::Exchange, &x, side).expect("append");
            }
            store.commit().expect("commit");
        }
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0)
            + std::fs::metadata(dir.path().join("store.db-wal"))
                .map(|m| m.len())
                .unwrap_or(0);
        eprintln!(
            "store of {BIG} exchanges: {size} bytes, {} bytes per exchange",
            size / BIG as u64
        );
        let store = Store::open(&path).expect("store");
        let t0 = 1_764_000_000_000_000i64 + 500_000 * 1_000;
        let q = Query {
            since: Some(Timestamp::from_micros(t0)),
            until: Some(Timestamp::from_micros(t0 + 1_000_000)),
            ..Query::default()
        };
        b.iter(|| {
            let rows = store.query(StoredTable::Exchanges, &q).expect("query");
            assert_eq!(rows.len(), 1000);
            rows
        })
    });
    g.finish();
}

/// Exchanges per commit in `live_proxy_exchange`.
const LIVE_COMMIT: usize = 300;
/// Exchanges per `live_proxy_exchange` iteration.
const LIVE_N: usize = 3_000;
/// Exchanges in the store before `live_proxy_exchange_grown` measures (about an hour
/// of a phone's traffic at 100 requests/s).
const GROWN: usize = 300_000;

const ADID: &str = "68f662b5-fcdd-46af-ae5c-b58c76bdc10a";

/// A case as `proxy_helpers.py case` writes it, cut to one device: consent refused.
fn live_case() -> consentry::case::Case {
    let text = format!(
        "[case]\nid = \"bench\"\n[app]\nname = \"Example Shop\"\nfirst_party = [\"example-shop.com\"]\n\
         [[device]]\nid = \"phone00\"\naddresses = [\"127.0.0.1\"]\n[device.identifiers]\n\
         advertising_id = \"{ADID}\"\nemail = \"tester00@example.org\"\nimei = \"490154203237518\"\n\
         [[consent]]\ndevice = \"phone00\"\nat = \"2026-01-01T00:00:00Z\"\ndecision = \"refused\"\n"
    );
    consentry::case::parse(&text, "bench.toml").expect("bench case")
}

/// The `i`th request of the proxy benchmark, as the proxy hands it to the consumer:
/// with its connection's addresses, ClientHello fingerprints (oha's, to an address:
/// no SNI) and the certificate nginx presented (`proxy_compare.sh`'s).
fn live_exchange(i: usize) -> Exchange {
    let mut x = live_exchange_bare(i);
    x.client = Some("127.0.0.1:51234".into());
    x.server = Some("127.0.0.1:27401".into());
    if let Some(tls) = &mut x.tls {
        tls.ja3 = Some("8d9f7747675e24454cd9b7ed35c58707".into());
        tls.ja4 = Some("t13i311100_e8f1e7e78f70_ce5650b735ce".into());
        tls.server_certificate = Some(Arc::new(ServerCertificate {
            subject: "CN=127.0.0.1".into(),
            issuer: "CN=proxy_compare upstream CA".into(),
            names: vec!["127.0.0.1".into(), "localhost".into()],
            not_before: Some(Timestamp::from_micros(1_764_000_000_000_000)),
            not_after: Some(Timestamp::from_micros(1_764_172_800_000_000)),
            serial: "3f2a9c0e5b7d41e6a8c3f01b2d4e6a8c9b1d3f50".into(),
            sha256: "5d41402abc4b2a76b9719d911017c592ae2e5d3f0b7c8a6e4d2c1b0a99887766".into(),
            chain: 1,
            host: Some("localhost".into()),
        }));
    }
    x
}

/// [`live_exchange`] without its connection's facts.
fn live_exchange_bare(i: usize) -> Exchange {
    let at = Timestamp::from_micros(1_764_000_000_000_000 + i as i64 * 300);
    // Ids in no particular order, as the proxy's (the first 8 bytes of a SHA-256).
    let mut x = Exchange::new(format!("x-{:016x}", mix(i as u64)), SourceKind::Proxy, at);
    x.device = Some("phone00".into());
    x.host = "127.0.0.1".into();
    x.scheme = "https".into();
    x.path = format!("/small.json?adid={ADID}");
    x.http_version = "HTTP/1.1".into();
    x.request_headers = vec![
        Header::new("host", "127.0.0.1:27401"),
        Header::new("user-agent", "oha/1.16.0"),
        Header::new("accept", "*/*"),
    ];
    x.response = Some(Response {
        status: 200,
        headers: vec![Header::new("content-type", "application/json")],
        ..Response::default()
    });
    x.tls = Some(TlsInfo {
        version: Some("TLS 1.3".into()),
        sni: None,
        decrypted: true,
        decrypt_error: None,
        ..Default::default()
    });
    x.evidence.locator = format!("proxy 2026-11-29T13:32:00.561223Z record {i}");
    x.evidence.request_head = Some(RawHead::new(
        format!(
            "GET /small.json?adid={ADID} HTTP/1.1\r\nhost: 127.0.0.1:27401\r\nuser-agent: oha/1.16.0\r\naccept: */*\r\n\r\n"
        )
        .as_bytes(),
    ));
    x.evidence.response_head = Some(RawHead::new(
        b"HTTP/1.1 200 OK\r\nserver: nginx/1.22.1\r\ndate: Sun, 29 Nov 2026 13:32:02 GMT\r\ncontent-type: application/json\r\ncontent-length: 240\r\nlast-modified: Sun, 29 Nov 2026 13:32:00 GMT\r\nconnection: keep-alive\r\netag: \"692af3a0-f0\"\r\naccept-ranges: bytes\r\n\r\n",
    ));
    x.digests = Some(BodyDigests {
        request_bytes: 0,
        request_sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
        response_bytes: Some(240),
        response_sha256: Some(
            "6489d6d7a33c5d40e18fc61eeb6c34c341279ee61816394dde5189aa4ad8fae5".into(),
        ),
    });
    x
}

/// A bijective mix of `i` (splitmix64's finaliser): distinct ids in random order.
fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `x` judged as the consumer has it: observed, each finding encoded once.
fn judge_encoded(
    analyzer: &mut Analyzer,
    preparer: &Preparer,
    x: &Exchange,
) -> (Observation, finding_json::Encoded) {
    let obs = analyzer.judge(x, preparer.prepare(x));
    let mut encoded = finding_json::Encoded::default();
    encoded.encode(&obs.findings);
    (obs, encoded)
}

/// Appends exchanges judged beforehand as the consumer does: a commit every
/// [`LIVE_COMMIT`] and one at the end.
fn append_judged(
    live: &mut LiveStore,
    xs: &[Exchange],
    judged: &[(Observation, finding_json::Encoded)],
) {
    for (i, (x, (obs, encoded))) in xs.iter().zip(judged).enumerate() {
        live.exchange_json(x, &obs.findings, encoded, &obs.consent_events)
            .expect("append");
        if i % LIVE_COMMIT == LIVE_COMMIT - 1 {
            live.commit().expect("commit");
        }
    }
    live.commit().expect("commit");
}

fn bench_live(c: &mut Criterion<ThreadCpu>) {
    let case = Arc::new(live_case());
    let mut analyzer = Analyzer::new(case, Options::default());
    let preparer = analyzer.preparer();
    let mut g = c.benchmark_group("store");
    g.sample_size(10);
    g.throughput(Throughput::Elements(LIVE_N as u64));
    for (name, make) in [
        (
            "live_proxy_exchange",
            live_exchange as fn(usize) -> Exchange,
        ),
        ("live_proxy_exchange_bare", live_exchange_bare),
    ] {
        let xs: Vec<Exchange> = (0..LIVE_N).map(make).collect();
        // Findings as the consumer has them: judged in order, each encoded once.
        let judged: Vec<_> = xs
            .iter()
            .map(|x| judge_encoded(&mut analyzer, &preparer, x))
            .collect();
        assert!(judged.iter().all(|(o, _)| !o.findings.is_empty()));
        g.bench_function(name, |b| {
            b.iter_batched(
                // A fresh case directory per iteration, created outside the
                // measurement (its files are synced).
                || {
                    let tmp = tempfile::tempdir().expect("temp dir");
                    let dir = CaseDir::init(tmp.path(), None).expect("case dir");
                    let live = LiveStore::open(dir, "proxy").expect("live store");
                    (tmp, live)
                },
                |(tmp, mut live)| {
                    append_judged(&mut live, &xs, &judged);
                    (tmp, live)
                },
                criterion::BatchSize::PerIteration,
            )
        });
    }
    g.finish();

    // The same appends to a store that already holds GROWN exchanges of an earlier
    // run (a long proxy session): index inserts at random keys touch more pages.
    let mut g = c.benchmark_group("store");
    g.sample_size(10);
    g.throughput(Throughput::Elements(LIVE_N as u64));
    g.bench_function("live_proxy_exchange_grown", |b| {
        // Built here, not before: only when this benchmark is selected.
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = CaseDir::init(tmp.path(), None).expect("case dir");
        let mut live = LiveStore::open(dir, "proxy").expect("live store");
        let mut next = LIVE_N;
        let mut append = |live: &mut LiveStore, n: usize| {
            for _ in 0..n {
                let x = live_exchange(next);
                next += 1;
                let (obs, encoded) = judge_encoded(&mut analyzer, &preparer, &x);
                live.exchange_json(&x, &obs.findings, &encoded, &obs.consent_events)
                    .expect("append");
                if next.is_multiple_of(LIVE_COMMIT) {
                    live.commit().expect("commit");
                }
            }
            live.commit().expect("commit");
        };
        append(&mut live, GROWN);
        // Appends of the measured exchanges only: judged beforehand, as above.
        b.iter_batched(
            || {
                let xs: Vec<Exchange> = (next..next + LIVE_N).map(live_exchange).collect();
                next += LIVE_N;
                let judged: Vec<_> = xs
                    .iter()
                    .map(|x| judge_encoded(&mut analyzer, &preparer, x))
                    .collect();
                (xs, judged)
            },
            |(xs, judged)| {
                append_judged(&mut live, &xs, &judged);
                (xs, judged)
            },
            criterion::BatchSize::PerIteration,
        )
    });
    g.finish();

    let mut g = c.benchmark_group("consumer");
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    let mut encoded = finding_json::Encoded::default();
    g.bench_function("judge_encode", |b| {
        b.iter_batched(
            || {
                i += 1;
                let x = live_exchange(LIVE_N + i);
                let p = preparer.prepare(&x);
                (x, p)
            },
            |(x, p)| {
                let obs = analyzer.judge(&x, p);
                encoded.encode(&obs.findings);
                obs
            },
            criterion::BatchSize::SmallInput,
        )
    });
    g.bench_function("observe_encode", |b| {
        b.iter_batched(
            || {
                i += 1;
                live_exchange(LIVE_N + i)
            },
            |x| {
                let obs = analyzer.observe(&x);
                encoded.encode(&obs.findings);
                obs
            },
            criterion::BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// CPU time of the measuring thread (user + system), not wall time: the figure the
/// proxy benchmark compares (CPU ms per request), and steady on a shared machine
/// where wall time is not.
struct ThreadCpu;

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl criterion::measurement::Measurement for ThreadCpu {
    type Intermediate = u64;
    type Value = u64;
    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, i: u64) -> u64 {
        thread_cpu_ns().saturating_sub(i)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn criterion::measurement::ValueFormatter {
        &CpuFormatter
    }
}

/// Nanoseconds shown as ns, µs or ms, throughput per second of CPU time.
struct CpuFormatter;

impl criterion::measurement::ValueFormatter for CpuFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (div, unit) = match typical {
            t if t < 1e3 => (1.0, "ns"),
            t if t < 1e6 => (1e3, "µs"),
            _ => (1e6, "ms"),
        };
        values.iter_mut().for_each(|v| *v /= div);
        unit
    }
    fn scale_throughputs(
        &self,
        typical: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        let n = match throughput {
            Throughput::Elements(n) | Throughput::Bytes(n) | Throughput::BytesDecimal(n) => *n,
        } as f64;
        let _ = typical;
        values.iter_mut().for_each(|v| *v = n * 1e9 / *v);
        "elem/s (CPU)"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

criterion_group!(benches, bench, bench_query);
criterion_group! {
    name = live;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = bench_live
}
criterion_main!(benches, live);
