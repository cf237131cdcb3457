//! Case report generation (issue 5 target: < 10 s for 100 000 findings): a case store
//! holding 100 000 finding records (the demo capture's findings repeated with fresh ids,
//! times, devices and hosts), then `consentry report`'s work — reading everything from
//! the store (`cli::report::report_input`) and rendering the HTML report — timed
//! together. Run: `cargo bench --bench report`.

use std::path::Path;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};

use consentry::report::{write_report, ReportFormat};
use consentry::store::db::Side;
use consentry::store::record::Kind;
use consentry::store::CaseDir;
use consentry::timestamp::Timestamp;

const FINDINGS: usize = 100_000;
const HOSTS: [&str; 6] = [
    "graph.facebook.com",
    "ulogs.umeng.com",
    "app-measurement.com",
    "ads.mopub.com",
    "api.example-shop.com",
    "sdk.iad-01.braze.com",
];

fn templates() -> Vec<serde_json::Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/demo/demo.findings.jsonl");
    std::fs::read_to_string(&path)
        .expect("demo golden findings")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a finding"))
        .collect()
}

/// A case directory whose store holds `FINDINGS` findings.
fn case_with_findings(root: &Path) -> CaseDir {
    let case_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/demo/consentry.toml");
    let dir = CaseDir::init(&root.join("case"), Some(&case_file)).expect("init");
    let mut store = dir.open_store().expect("store");
    let templates = templates();
    let t0 = 1_764_000_000_000_000i64;
    for i in 0..FINDINGS {
        let mut f = templates[i % templates.len()].clone();
        let at = Timestamp::from_micros(t0 + i as i64 * 10_000);
        let host = HOSTS[i % HOSTS.len()];
        let device = if i % 3 == 0 { "pixel7" } else { "iphone13" };
        f["id"] = format!("f-{i:016x}").into();
        f["exchange"] = format!("x-{i:016x}").into();
        f["at"] = serde_json::to_value(at).expect("time");
        f["device"] = device.into();
        f["destination"]["host"] = host.into();
        let rule = f["rule"].as_str().unwrap_or_default().to_string();
        let id = format!("f-{i:016x}");
        let side = Side::Finding {
            ingest: 1,
            id: &id,
            at,
            device,
            rule: &rule,
            host,
        };
        store.append(Kind::Finding, &f, side).expect("append");
    }
    store.commit().expect("commit");
    dir
}

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let t = Instant::now();
    let dir = case_with_findings(tmp.path());
    eprintln!(
        "store with {FINDINGS} findings built in {:.1?}",
        t.elapsed()
    );
    let mut g = c.benchmark_group("report");
    g.sample_size(10);
    g.bench_function("html_100k_findings_from_store", |b| {
        b.iter(|| {
            let input = consentry::cli::report::report_input(&dir).expect("report input");
            assert_eq!(input.findings.len(), FINDINGS);
            let mut out = Vec::with_capacity(64 << 20);
            write_report(&input, ReportFormat::Html, &mut out).expect("render");
            out.len()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
