//! The rawtcp sample capture (`captures/rawtcp/`, written by `make_rawtcp.py`): SDKs
//! that send personal data over their own cleartext TCP protocols (a binary header
//! before JSON, a text line with base64, a JSON document alone on port 8080, a hex
//! MD5). No connection is HTTP, TLS or DNS: each must stay one metadata-only exchange,
//! and its client bytes must be searched, giving the data rules where they hold
//! personal data and contact with a tracker where they hold none. What each
//! connection must give is in the script's `expected.json`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use consentry::cli::analyze::analyze_files;
use consentry::cli::input::{read_input, Attribution};
use consentry::exchange::Exchange;
use consentry::rules::Options;
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/rawtcp")
}

fn case() -> consentry::case::Case {
    consentry::case::load(&dir().join("consentry.toml")).unwrap()
}

fn expected() -> Value {
    serde_json::from_slice(&std::fs::read(dir().join("expected.json")).unwrap()).unwrap()
}

fn exchanges() -> Vec<Exchange> {
    let attribution = Attribution::new(&case(), None).unwrap();
    let mut out = Vec::new();
    let file = dir().join("rawtcp.pcap");
    let outcome = read_input(&file, &attribution, &String::new, &mut |x| out.push(x));
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    out.sort_by_key(|x| x.at);
    out
}

#[test]
fn each_connection_is_one_metadata_exchange_carrying_its_client_bytes() {
    let want = expected();
    let rows = want["connections"].as_array().unwrap();
    let xs = exchanges();
    assert_eq!(xs.len(), rows.len());
    for (x, row) in xs.iter().zip(rows) {
        let (first, last) = (row["frames"][0].as_u64(), row["frames"][1].as_u64());
        let locator = format!("frames {}-{}", first.unwrap(), last.unwrap());
        assert_eq!(x.evidence.locator, locator, "{row}");
        assert_eq!(x.at.to_string(), row["at"].as_str().unwrap());
        assert_eq!(x.host, row["host"].as_str().unwrap());
        assert_eq!(x.scheme, "tcp");
        assert!(x.metadata_only && x.method.is_empty());
        let sent = row["client_bytes"].as_u64().unwrap() as usize;
        // Up to 64 KiB kept; the last connection sends more.
        assert_eq!(x.request_body.len(), sent.min(64 << 10), "{row}");
        let not_searched = x.anomalies.iter().any(|a| a.kind == "payload-not-searched");
        assert_eq!(not_searched, sent > 64 << 10, "{:?}", x.anomalies);
    }
}

#[test]
fn personal_data_in_the_bytes_gives_the_data_rules() {
    let want = expected();
    let run = analyze_files(
        Arc::new(case()),
        &[dir().join("rawtcp.pcap")],
        None,
        Options::default(),
        0,
    )
    .unwrap();
    let rows = want["connections"].as_array().unwrap();
    assert_eq!(run.findings.len(), rows.len(), "one finding per connection");
    for (f, row) in run.findings.iter().zip(rows) {
        assert_eq!(f.rule.as_str(), row["rule"].as_str().unwrap(), "{row}");
        assert_eq!(f.at.to_string(), row["at"].as_str().unwrap());
        assert_eq!(f.destination.host, row["host"].as_str().unwrap());
        let mut got: Vec<(String, String, String)> = f
            .data
            .iter()
            .map(|d| (d.kind.clone(), d.encoding.clone(), d.location.clone()))
            .collect();
        got.sort();
        let mut items: Vec<(String, String, String)> = row["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                let s = |i: usize| d[i].as_str().unwrap().to_string();
                (s(0), s(1), s(2))
            })
            .collect();
        items.sort();
        assert_eq!(got, items, "{row}");
    }
}
