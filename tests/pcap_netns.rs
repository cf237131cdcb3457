//! The capture of a phone's traffic through real network stacks (`captures/netns/`,
//! recorded by `make_netns.sh`): curl, nginx and dnsmasq in network namespaces,
//! Linux's TCP recovering from lost segments (out-of-order and retransmitted segments
//! at the tap, a request's body completed after its response), IPv6, a gzipped and
//! chunked response, a chunked request, `Expect: 100-continue`, pipelining, HTTP/1.0,
//! keep-alive, HTTP on port 8080, HTTP/2 in cleartext, TLS 1.3 to a tracker with and
//! without curl's key log, an SDK's own protocol to names answered by DNS over TCP
//! and in IPv4 and IPv6 fragments, VLAN and QinQ tags. `expected.json` lists each request as curl sent it,
//! with its time window, written by the script, not by consentry.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use consentry::case::DeviceResolver;
use consentry::cli::analyze::{analyze_files, analyze_files_with_keylogs};
use consentry::exchange::Exchange;
use consentry::rules::Options;
use consentry::source::pcap::{read_capture, CaptureOptions};
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/netns")
}

fn expected() -> Value {
    let text = std::fs::read_to_string(dir().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn keylog() -> Arc<[u8]> {
    Arc::from(std::fs::read(dir().join("netns.keylog")).unwrap())
}

/// Every exchange of the capture, read with `keylogs`.
fn exchanges(keylogs: Vec<Arc<[u8]>>) -> Vec<Exchange> {
    let case = consentry::case::load(&dir().join("consentry.toml")).unwrap();
    let opts = CaptureOptions {
        keylogs,
        ..CaptureOptions::new("netns.pcap", DeviceResolver::new(&case))
    };
    let bytes = std::fs::read(dir().join("netns.pcap")).unwrap();
    let mut list = Vec::new();
    let (summary, error) =
        read_capture(&bytes[..], &opts, &mut |_| {}, &mut |x| list.push(x)).unwrap();
    assert!(error.is_none(), "{error:?}");
    let want = expected()["tcp_connections"].as_u64().unwrap();
    assert_eq!(summary.flows.tcp_connections, want, "{summary:#?}");
    assert!(summary.flows.dns_messages >= 10, "{summary:#?}");
    list
}

fn within(at: &str, window: &Value) -> bool {
    let (start, end) = (
        window["start"].as_str().unwrap(),
        window["end"].as_str().unwrap(),
    );
    // RFC 3339 with six fraction digits in UTC on both sides: ordered as text.
    start <= at && at <= end
}

#[test]
fn every_request_is_read_and_answered_as_curl_sent_it() {
    let xs = exchanges(Vec::new());
    let expected = expected();
    let requests = expected["requests"].as_array().unwrap();
    // In the order of their first bytes, as `expected.json` lists them (the two
    // pipelined requests share their first segment: then in request order).
    let mut http: Vec<&Exchange> = xs.iter().filter(|x| !x.metadata_only).collect();
    http.sort_by_key(|x| x.at);
    assert_eq!(
        http.len(),
        requests.len(),
        "{:#?}",
        http.iter().map(|x| (&x.host, &x.path)).collect::<Vec<_>>()
    );
    for (x, want) in http.iter().zip(requests) {
        let what = format!("{} {}{}", x.method, x.host, x.path);
        assert_eq!(x.host, want["host"].as_str().unwrap(), "{what}");
        assert_eq!(x.method, want["method"].as_str().unwrap(), "{what}");
        assert_eq!(x.path, want["path"].as_str().unwrap(), "{what}");
        assert_eq!(x.device.as_deref(), Some("pixel7"), "{what}");
        assert!(
            within(&x.at.to_string(), want),
            "{what} at {} outside {want}",
            x.at
        );
        let client = x.client.as_deref().unwrap_or_default();
        let v6 = want["family"].as_i64() == Some(6);
        assert_eq!(client.contains(':'), v6, "{what} from {client}");
        // Every request has its response: the tracker's long POST is answered before
        // its body's lost segment comes again, so only pairing by request index
        // (not by completion) gets this right.
        let status = x.response.as_ref().map(|r| r.status);
        assert_eq!(status, Some(200), "{what}");
        assert!(x.anomalies.is_empty(), "{what}: {:?}", x.anomalies);
        let header = |name: &str| {
            x.request_headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| h.value.as_slice())
        };
        if want["chunked"].as_bool() == Some(true) {
            assert_eq!(header("transfer-encoding"), Some(&b"chunked"[..]), "{what}");
        }
        if want["expect_continue"].as_bool() == Some(true) {
            // The `100 Continue` is interim: the exchange has the final answer.
            assert_eq!(header("expect"), Some(&b"100-continue"[..]), "{what}");
            assert!(!x.request_body.is_empty(), "{what}");
        }
        let version = want["version"].as_str().unwrap_or("HTTP/1.1");
        assert_eq!(x.http_version, version, "{what}");
    }
    // The pipelined pair: both requests in one segment, each with its own answer.
    let pipelined_at = http_at(&http, "pipelined");
    assert_eq!(http.iter().filter(|x| x.at == pipelined_at).count(), 2);
    // The configuration came gzipped and chunked, and was read to its end (the next
    // request on the connection is there, answered).
    let config = http
        .iter()
        .find(|x| x.host == "api.example-shop.com" && x.path == "/config.json")
        .and_then(|x| x.response.as_ref())
        .unwrap();
    let header = |name: &str| {
        config
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.clone())
    };
    assert_eq!(header("content-encoding").as_deref(), Some(&b"gzip"[..]));
    assert_eq!(
        header("transfer-encoding").as_deref(),
        Some(&b"chunked"[..])
    );
    // TLS without a key log: a metadata exchange each, named by its ClientHello.
    let tls: Vec<&Exchange> = xs
        .iter()
        .filter(|x| x.metadata_only && x.tls.is_some())
        .collect();
    let want = expected["tls"].as_array().unwrap();
    assert_eq!(tls.len(), want.len());
    for (x, want) in tls.iter().zip(want) {
        assert_eq!(x.host, want["sni"].as_str().unwrap());
        assert!(within(&x.at.to_string(), want), "{} outside {want}", x.at);
    }
}

/// An SDK's own protocol to three names: `cdn.ads-sdk.example`, whose 60 addresses
/// the phone's resolver got over TCP (the answer was too long for UDP),
/// `img.ads-sdk.example`, whose 91 addresses came over UDP with EDNS in two IPv4
/// fragments, and `v6.ads-sdk.example`, whose 100 IPv6 addresses came in IPv6
/// fragments. Each connection is named by its answer and its bytes are searched.
#[test]
fn sdk_connections_are_named_by_answers_over_tcp_and_in_ip_fragments() {
    let expected = expected();
    assert!(expected["dns_tcp_connections"].as_u64().unwrap() >= 1);
    let xs = exchanges(Vec::new());
    let mut sdk: Vec<&Exchange> = xs
        .iter()
        .filter(|x| x.metadata_only && x.tls.is_none())
        .collect();
    sdk.sort_by_key(|x| x.at);
    let want = expected["payloads"].as_array().unwrap();
    assert_eq!(sdk.len(), want.len(), "{sdk:#?}");
    for (x, want) in sdk.iter().zip(want) {
        assert_eq!(x.host, want["host"].as_str().unwrap(), "{x:#?}");
        assert!(within(&x.at.to_string(), want), "{} outside {want}", x.at);
        assert!(
            !x.request_body.is_empty(),
            "its client bytes are kept to search"
        );
    }
}

/// With curl's key log, the second TLS connection is read: its request, answered,
/// and the advertising id it sent after the refusal.
#[test]
fn the_tls_connection_of_the_key_log_is_read_with_it() {
    let expected = expected();
    let want = expected["tls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["keylog"].is_string())
        .unwrap();
    let xs = exchanges(vec![keylog()]);
    let read: Vec<&Exchange> = xs
        .iter()
        .filter(|x| x.tls.as_ref().is_some_and(|t| t.decrypted))
        .collect();
    assert_eq!(read.len(), 1, "{read:#?}");
    let x = read[0];
    assert_eq!(x.host, want["sni"].as_str().unwrap());
    assert_eq!(x.method, want["method"].as_str().unwrap());
    assert_eq!(x.path, want["path"].as_str().unwrap());
    assert!(within(&x.at.to_string(), want));
    assert_eq!(x.response.as_ref().map(|r| r.status), Some(200));
    // The other TLS connection, whose secrets the key log does not hold, stays
    // metadata only.
    let still_sealed = xs.iter().filter(|x| x.metadata_only && x.tls.is_some());
    assert_eq!(still_sealed.count(), 1);

    let case = Arc::new(consentry::case::load(&dir().join("consentry.toml")).unwrap());
    let run = analyze_files_with_keylogs(
        case,
        &[dir().join("netns.pcap")],
        None,
        &[keylog()],
        Options::default(),
        0,
    )
    .unwrap();
    let inside: Vec<(&str, &str)> = run
        .findings
        .iter()
        .filter(|f| f.destination.host == x.host && !f.data.is_empty())
        .flat_map(|f| {
            f.data
                .iter()
                .map(move |d| (f.rule.as_str(), d.location.as_str()))
        })
        .collect();
    assert_eq!(inside, [("share-after-refusal", "body:$.advertising_id")]);
}

/// The time of the request whose path holds `marker`.
fn http_at(http: &[&Exchange], marker: &str) -> consentry::timestamp::Timestamp {
    http.iter()
        .find(|x| x.path.contains(marker))
        .map(|x| x.at)
        .unwrap()
}

#[test]
fn findings_follow_the_refusal() {
    let case = Arc::new(consentry::case::load(&dir().join("consentry.toml")).unwrap());
    let run = analyze_files(
        case,
        &[dir().join("netns.pcap")],
        None,
        Options::default(),
        0,
    )
    .unwrap();
    assert!(
        run.summary.input_errors.is_empty(),
        "{:?}",
        run.summary.input_errors
    );
    let expected = expected();
    let refused = expected["refused_at"].as_str().unwrap();
    let mut want: BTreeSet<(String, String, String)> = BTreeSet::new();
    for r in expected["requests"].as_array().unwrap() {
        let host = r["host"].as_str().unwrap();
        for data in r["data"].as_array().unwrap() {
            let rule = if host == "api.example-shop.com" {
                "collect-before-consent"
            } else if r["start"].as_str().unwrap() < refused {
                "share-before-consent"
            } else {
                "share-after-refusal"
            };
            want.insert((rule.into(), host.into(), data.as_str().unwrap().into()));
        }
    }
    for p in expected["payloads"].as_array().unwrap() {
        let host = p["host"].as_str().unwrap();
        let rule = if p["start"].as_str().unwrap() < refused {
            "share-before-consent"
        } else {
            "share-after-refusal"
        };
        for data in p["data"].as_array().unwrap() {
            want.insert((rule.into(), host.into(), data.as_str().unwrap().into()));
        }
    }
    // Without the key log both TLS connections are contacts (the rule holds while
    // consent is not asked or refused).
    for t in expected["tls"].as_array().unwrap() {
        let host = t["sni"].as_str().unwrap();
        want.insert((
            "tracker-contact-before-consent".into(),
            host.into(),
            String::new(),
        ));
    }
    let got: BTreeSet<(String, String, String)> = run
        .findings
        .iter()
        .flat_map(|f| {
            let items: Vec<String> = if f.data.is_empty() {
                vec![String::new()]
            } else {
                f.data.iter().map(|d| d.kind.as_str().to_string()).collect()
            };
            items
                .into_iter()
                .map(move |d| (f.rule.as_str().to_string(), f.destination.host.clone(), d))
        })
        .collect();
    assert_eq!(got, want, "{:#?}", run.findings);
    // The advertising id in the long POST straddles two segments, and the segment
    // before it was lost and resent: found once, at its JSON path.
    let collect = run
        .findings
        .iter()
        .filter(|f| f.rule.as_str() == "share-before-consent")
        .flat_map(|f| f.data.iter())
        .filter(|d| d.location == "body:$.advertiser_id")
        .count();
    assert_eq!(collect, 1);
}
