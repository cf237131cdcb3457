//! Case store append throughput: exchange records (canonical JSON, SHA-256 chain,
//! the `exchanges` index with its four B-trees) appended in transactions of
//! `store::db::BATCH`, on a file in a temporary directory (WAL, synchronous = FULL).
//! Analysis is not included: this is the cost the store adds to an ingest.
//!
//! `query_1m`: a time-range query returning 1 000 exchanges (one second) from a store
//! of 1 000 000 exchanges (one per millisecond), through the `exchanges_at` index.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use consentry::exchange::{Exchange, Response, SourceKind, TlsInfo};
use consentry::store::db::Side;
use consentry::store::record::{ExchangeBody, Kind};
use consentry::store::{Query, Store, StoredTable};
use consentry::timestamp::Timestamp;

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
    let mut g = c.benchmark_group("store");
    g.sample_size(20);
    g.bench_function("query_1m_range_1000", |b| {
        b.iter(|| {
            let rows = store.query(StoredTable::Exchanges, &q).expect("query");
            assert_eq!(rows.len(), 1000);
            rows
        })
    });
    g.finish();
}

criterion_group!(benches, bench, bench_query);
criterion_main!(benches);
