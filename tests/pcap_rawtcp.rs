//! The rawtcp sample capture (`captures/rawtcp/`, written by `make_rawtcp.py`): SDKs
//! that send personal data over their own cleartext TCP protocols (a binary header
//! before JSON, a text line with base64, a JSON document alone on port 8080, a hex
//! MD5), over a WebSocket and in UDP datagrams. A connection that is not HTTP, TLS or
//! DNS must be metadata-only exchanges whose client bytes are searched, one per part
//! of them (a long connection's message after a pause, or past 64 KiB, is a part of
//! its own, judged at its own time), giving the data rules where they hold personal
//! data and contact with a tracker where they hold none; each
//! message a WebSocket client sends must be an exchange of its own (method `WS`),
//! compressed ones inflated; each SSDP datagram (HTTP over UDP) an HTTP request of
//! its own (scheme `httpu`); a DNS query whose name carries an identifier an
//! exchange of its own (scheme `dns`), the other lookups none. What each connection
//! must give is in the script's `expected.json`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use consentry::cli::analyze::analyze_files;
use consentry::cli::input::{read_input, Attribution};
use consentry::exchange::Exchange;
use consentry::rules::{Analyzer, Options};
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
    let mut attribution = Attribution::new(&case(), None).unwrap();
    // As `analyze` reads it: DNS queries whose names carry the case's values are
    // exchanges.
    let analyzer = Analyzer::new(Arc::new(case()), Options::default());
    attribution.dns_probe = Some(analyzer.data_probe());
    let mut out = Vec::new();
    let file = dir().join("rawtcp.pcap");
    let outcome = read_input(&file, &attribution, &String::new, &mut |x| out.push(x));
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    out.sort_by_key(|x| x.at);
    out
}

/// Every exchange `expected.json` lists, in time order, with its connection.
fn expected_exchanges(want: &Value) -> Vec<(&Value, &Value)> {
    let mut rows = Vec::new();
    for c in want["connections"].as_array().unwrap() {
        for x in c["exchanges"].as_array().unwrap() {
            rows.push((c, x));
        }
    }
    // The same format throughout: the text sorts as the time.
    rows.sort_by_key(|(_, x)| x["at"].as_str().unwrap().to_string());
    rows
}

#[test]
fn each_connection_gives_the_exchanges_expected() {
    let want = expected();
    let rows = expected_exchanges(&want);
    let xs = exchanges();
    assert_eq!(xs.len(), rows.len());
    // Client bytes searched per connection (by its first exchange's time), over all
    // its parts.
    let mut searched = std::collections::BTreeMap::<String, usize>::new();
    for (x, (conn, row)) in xs.iter().zip(rows) {
        let frames = (row["frames"][0].as_u64(), row["frames"][1].as_u64());
        let locator = match frames {
            (Some(a), Some(b)) if a == b => format!("frame {a}"),
            (Some(a), Some(b)) => format!("frames {a}-{b}"),
            _ => panic!("{row}"),
        };
        assert_eq!(x.evidence.locator, locator, "{row}");
        assert_eq!(x.at.to_string(), row["at"].as_str().unwrap(), "{row}");
        assert_eq!(x.host, conn["host"].as_str().unwrap());
        assert_eq!(x.method, row["method"].as_str().unwrap());
        if x.method.is_empty() {
            // A protocol no parser reads: metadata only, its client bytes kept in
            // parts of at most 64 KiB, every byte searched.
            assert!(x.metadata_only);
            let scheme = conn["scheme"].as_str().or(conn["transport"].as_str());
            assert_eq!(x.scheme, scheme.unwrap_or("tcp"), "{row}");
            assert!(x.request_body.len() <= 64 << 10, "{row}");
            assert!(
                !x.anomalies.iter().any(|a| a.kind == "payload-not-searched"),
                "{:?}",
                x.anomalies
            );
            let opened = conn["exchanges"][0]["at"].as_str().unwrap().to_string();
            *searched.entry(opened).or_default() += x.request_body.len();
        } else {
            assert!(!x.metadata_only);
            assert_eq!(x.path, row["path"].as_str().unwrap());
            let scheme = conn["scheme"].as_str();
            let scheme = scheme.unwrap_or(if x.method == "WS" { "ws" } else { "http" });
            assert_eq!(x.scheme, scheme, "{row}");
            assert!(x.anomalies.is_empty(), "{:?}", x.anomalies);
        }
    }
    for c in want["connections"].as_array().unwrap() {
        if c["exchanges"][0]["method"] == "" {
            let opened = c["exchanges"][0]["at"].as_str().unwrap();
            assert_eq!(
                searched.get(opened).copied(),
                c["client_bytes"].as_u64().map(|n| n as usize),
                "{}",
                c["server"]
            );
        }
    }
}

#[test]
fn personal_data_in_the_bytes_and_messages_gives_the_data_rules() {
    let want = expected();
    let run = analyze_files(
        Arc::new(case()),
        &[dir().join("rawtcp.pcap")],
        None,
        Options::default(),
        0,
    )
    .unwrap();
    let rows: Vec<&Value> = expected_exchanges(&want)
        .into_iter()
        .map(|(_, x)| x)
        .filter(|x| !x["rule"].is_null())
        .collect();
    assert_eq!(
        run.findings.len(),
        rows.len(),
        "one finding per exchange with a rule"
    );
    // Wireless debugging's announcement, its instance named by the serial the case
    // lists: the system's, counted, not judged.
    let traffic = run.summary.traffic.as_ref().unwrap();
    assert_eq!(traffic.mdns_system, 1);
    for (f, row) in run.findings.iter().zip(rows) {
        assert_eq!(f.rule.as_str(), row["rule"].as_str().unwrap(), "{row}");
        assert_eq!(f.at.to_string(), row["at"].as_str().unwrap());
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
