//! HTTP/3 in captures: the QUIC connections of `captures/quic/h3*.pcap` (real aioquic
//! client and server, written by `captures/quic/make_h3.py` with the TLS key log beside
//! each file, and once with it inside the pcapng) must give, decrypted, exactly the
//! requests the generator sent (`captures/quic/expected.json`), in every cipher suite,
//! across key updates, reordering and duplicates, with QPACK's dynamic table; without
//! their keys they stay one metadata-only exchange named by the server name. A real
//! browser's connection (`captures/quic/chrome/`: headless Chromium against an aioquic
//! server on the loopback, captured by tcpdump with Chromium's key log) must give
//! exactly the requests the server logged.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use consentry::case::DeviceResolver;
use consentry::exchange::Exchange;
use consentry::net::tap::TapLimits;
use consentry::source::pcap::{read_capture, CaptureOptions, CaptureSummary};
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/quic")
}

fn expected() -> Value {
    let text = std::fs::read_to_string(dir().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn keylog(name: &str) -> Arc<[u8]> {
    std::fs::read(dir().join(name)).unwrap().into()
}

/// Every exchange of a capture read with `keylogs` and `limits`, and the summary.
fn read_with(
    file: &str,
    keylogs: Vec<Arc<[u8]>>,
    limits: TapLimits,
) -> (Vec<Exchange>, CaptureSummary) {
    read_in(&dir(), file, keylogs, limits)
}

/// [`read_with`] of `file` in `dir`, with the case file of `dir`.
fn read_in(
    dir: &Path,
    file: &str,
    keylogs: Vec<Arc<[u8]>>,
    limits: TapLimits,
) -> (Vec<Exchange>, CaptureSummary) {
    let case = consentry::case::load(&dir.join("consentry.toml")).unwrap();
    let opts = CaptureOptions {
        limits,
        keylogs,
        ..CaptureOptions::new(file, DeviceResolver::new(&case))
    };
    let bytes = std::fs::read(dir.join(file)).unwrap();
    let mut list = Vec::new();
    let (summary, error) =
        read_capture(&bytes[..], &opts, &mut |_| {}, &mut |x| list.push(x)).unwrap();
    assert!(error.is_none(), "{file}: {error:?}");
    list.sort_by_key(|x| x.at);
    (list, summary)
}

fn read(file: &str, keylogs: Vec<Arc<[u8]>>) -> (Vec<Exchange>, CaptureSummary) {
    read_with(file, keylogs, TapLimits::default())
}

/// The captures with their key logs (`None`: the secrets are in the pcapng).
const CAPTURES: [(&str, &str, Option<&str>); 4] = [
    ("h3", "h3.pcap", Some("h3.keylog")),
    ("h3_chacha", "h3_chacha.pcap", Some("h3_chacha.keylog")),
    ("h3_aes256", "h3_aes256.pcap", Some("h3_aes256.keylog")),
    ("h3_dsb", "h3_dsb.pcapng", None),
];

fn str_of<'v>(v: &'v Value, key: &str) -> &'v str {
    v[key].as_str().unwrap_or_else(|| panic!("{key} in {v}"))
}

#[test]
fn decrypted_requests_are_the_ones_the_generator_sent() {
    let expected = expected();
    for (name, file, key) in CAPTURES {
        let keylogs = key.map(keylog).into_iter().collect();
        let (list, summary) = read(file, keylogs);
        let want = &expected["captures"][name];
        let want_exchanges = want["exchanges"].as_array().unwrap();
        assert_eq!(list.len(), want_exchanges.len(), "{name}: {list:#?}");
        assert_eq!(summary.flows.tls_decrypted, 1, "{name}");
        for (x, w) in list.iter().zip(want_exchanges) {
            let what = format!("{name} stream {}", w["stream_id"]);
            assert!(!x.metadata_only, "{what}");
            // An exchange's time and first frame are those of its first bytes, as over
            // TCP: where the packet carrying them came late (`reordered_frames`), after
            // one carrying later bytes, they are that packet's, a fraction of a
            // millisecond after the request was sent.
            let request_frames: Vec<u64> = w["request_frames"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_u64)
                .collect();
            let late = want["reordered_frames"].as_array().unwrap();
            let first = request_frames
                .iter()
                .copied()
                .find(|f| late.iter().any(|l| l.as_u64() == Some(*f)))
                .unwrap_or(request_frames[0]);
            let sent = consentry::timestamp::Timestamp::parse_rfc3339(str_of(w, "at")).unwrap();
            let delay = x.at.micros() - sent.micros();
            assert!(
                (0..1000).contains(&delay),
                "{what}: at {} sent {sent:?}",
                x.at
            );
            assert_eq!(delay == 0, first == request_frames[0], "{what}");
            assert_eq!(x.method, str_of(w, "method"), "{what}");
            assert_eq!(x.host, str_of(w, "authority"), "{what}");
            assert_eq!(x.path, str_of(w, "path"), "{what}");
            assert_eq!(
                (x.scheme.as_str(), x.http_version.as_str()),
                ("https", "HTTP/3")
            );
            assert_eq!(x.device.as_deref(), Some("pixel7"), "{what}");
            assert_eq!(
                x.request_body.len() as u64,
                w["request_body_length"].as_u64().unwrap(),
                "{what}"
            );
            let status = x.response.as_ref().map(|r| u64::from(r.status));
            assert_eq!(status, w["status"].as_u64(), "{what}");
            // Every header the app sent is there, decoded from QPACK (static, dynamic
            // and post-base references alike).
            for (name, value) in w["request_headers"].as_object().unwrap() {
                let got = x
                    .request_headers
                    .iter()
                    .find(|h| h.name == name.as_str())
                    .map(|h| String::from_utf8_lossy(&h.value).into_owned());
                assert_eq!(got.as_deref(), value.as_str(), "{what}: header {name}");
            }
            let tls = x.tls.as_ref().unwrap();
            assert!(tls.decrypted, "{what}");
            assert_eq!(tls.sni.as_deref(), Some(str_of(want, "sni")));
            assert!(x.anomalies.is_empty(), "{what}: {:?}", x.anomalies);
            // The evidence spans the request's first frame to the response's last.
            let last = w["response_frames"].as_array().unwrap().last().unwrap();
            assert_eq!(
                x.evidence.locator,
                format!("frames {first}-{last}"),
                "{what}"
            );
        }
    }
}

#[test]
fn the_identifiers_planted_are_found_where_they_were_put() {
    let expected = expected();
    let case = Arc::new(consentry::case::load(&dir().join("consentry.toml")).unwrap());
    for (name, file, key) in CAPTURES {
        let keylogs: Vec<Arc<[u8]>> = key.map(keylog).into_iter().collect();
        let run = consentry::cli::analyze::analyze_files_with_keylogs(
            case.clone(),
            &[dir().join(file)],
            None,
            &keylogs,
            consentry::rules::Options::default(),
            0,
        )
        .unwrap();
        let found: Vec<(String, String)> = run
            .findings
            .iter()
            .flat_map(|f| f.data.iter())
            .map(|d| (d.kind.clone(), d.location.clone()))
            .collect();
        for w in expected["captures"][name]["exchanges"].as_array().unwrap() {
            for id in w["identifiers"].as_array().unwrap() {
                let want = (
                    str_of(id, "type").to_string(),
                    str_of(id, "where").to_string(),
                );
                assert!(found.contains(&want), "{name}: {want:?} not in {found:?}");
            }
        }
    }
}

/// The server's certificate comes from its Handshake packets, decrypted with the
/// logged handshake secret: the self-signed leaf the generator made (its common name
/// and SAN the server's name, serial 0x4833 as `make_h3.py` writes it), on every
/// exchange of the connection. The SHA-256 values are those of the certificate
/// tshark 4.0 shows in the same frames (`tls.handshake.certificate` with the key
/// log; `benches/certificate_check.py`).
#[test]
fn the_server_certificate_comes_from_the_handshake_packets() {
    let want = [
        (
            "h3",
            "launches.appsflyer.com",
            "f9c06cd9ae6489da7ac32951617920555d177ea9d703aefc00d7b8fa2ccbfb2f",
        ),
        (
            "h3_chacha",
            "api.mixpanel.com",
            "b284b39532ec2aade2493dab6ab46426e7cbb0eea7086493b0fa9740d3f04d9c",
        ),
        (
            "h3_aes256",
            "app.adjust.com",
            "aaa8526dd794b2ba917f1edd2d2a70ce8d9584397017964bdae3d1626eba46e9",
        ),
        (
            "h3_dsb",
            "launches.appsflyer.com",
            "f9c06cd9ae6489da7ac32951617920555d177ea9d703aefc00d7b8fa2ccbfb2f",
        ),
    ];
    for ((name, file, key), (want_name, host, sha256)) in CAPTURES.into_iter().zip(want) {
        assert_eq!(name, want_name);
        let (list, _) = read(file, key.map(keylog).into_iter().collect());
        assert!(!list.is_empty(), "{name}");
        for x in &list {
            let tls = x.tls.as_ref().unwrap();
            let cert = tls
                .server_certificate
                .as_ref()
                .unwrap_or_else(|| panic!("{name}: {tls:?}"));
            assert_eq!(cert.subject, format!("CN={host}"), "{name}");
            assert_eq!(cert.issuer, cert.subject, "{name}: self-signed");
            assert_eq!(cert.names, vec![host.to_string()], "{name}");
            assert_eq!((cert.serial.as_str(), cert.chain), ("4833", 1), "{name}");
            assert_eq!(cert.sha256, sha256, "{name}");
            assert!(
                !x.anomalies.iter().any(|a| a.kind == "tls-malformed"),
                "{name}: {:?}",
                x.anomalies
            );
        }
    }
    // Chromium's connection: the aioquic server's certificate for localhost.
    let chrome = dir().join("chrome");
    let keys = vec![Arc::from(
        std::fs::read(chrome.join("chrome.keylog")).unwrap(),
    )];
    let (list, _) = read_in(&chrome, "chrome_h3.pcap", keys, TapLimits::default());
    assert_eq!(list.len(), 6);
    for x in &list {
        let cert = x
            .tls
            .as_ref()
            .and_then(|t| t.server_certificate.as_ref())
            .unwrap();
        assert_eq!(cert.subject, "CN=localhost");
        assert_eq!(
            cert.sha256,
            "4ded8e5b0c83e5dc014e3bc54a62a42ecfe8efa910afffd4f9ec5ccc1c116af2"
        );
    }
    // Without the key log the certificate stays encrypted.
    let (list, _) = read("h3.pcap", vec![]);
    assert!(list[0].tls.as_ref().unwrap().server_certificate.is_none());
}

#[test]
fn without_its_keys_a_connection_is_one_metadata_exchange() {
    // No key log at all: as before HTTP/3 was read, only the Initial packets.
    let (list, summary) = read("h3.pcap", vec![]);
    assert_eq!(list.len(), 1);
    let x = &list[0];
    assert!(x.metadata_only);
    assert_eq!(
        (x.host.as_str(), x.scheme.as_str()),
        ("launches.appsflyer.com", "quic")
    );
    let tls = x.tls.as_ref().unwrap();
    assert!(!tls.decrypted);
    assert_eq!(
        tls.decrypt_error.as_deref(),
        Some("QUIC: only the Initial packets are read, not the payload")
    );
    assert_eq!(summary.flows.tls_decrypted, 0);
    // A key log without this connection's secrets: counted as "no key".
    let (list, summary) = read("h3.pcap", vec![keylog("h3_chacha.keylog")]);
    assert_eq!(list.len(), 1);
    let tls = list[0].tls.as_ref().unwrap();
    assert_eq!(
        tls.decrypt_error.as_deref(),
        Some("no key for this client random")
    );
    assert_eq!(summary.flows.tls_not_decrypted.get("no-key"), Some(&1));
}

#[test]
fn wrong_secrets_are_an_anomaly_not_a_crash() {
    // The connection's client random with other secrets: every packet fails.
    let right = String::from_utf8(keylog("h3.keylog").to_vec()).unwrap();
    let wrong: String = right
        .lines()
        .map(|line| {
            let mut parts: Vec<String> = line.split(' ').map(str::to_string).collect();
            if let Some(secret) = parts.last_mut() {
                *secret = secret.chars().rev().collect();
            }
            parts.join(" ") + "\n"
        })
        .collect();
    let (list, summary) = read("h3.pcap", vec![Arc::from(wrong.into_bytes())]);
    assert_eq!(list.len(), 1, "{list:#?}");
    let x = &list[0];
    assert!(x.metadata_only);
    let tls = x.tls.as_ref().unwrap();
    assert_eq!(
        tls.decrypt_error.as_deref(),
        Some("records failed authentication with the logged keys")
    );
    assert!(
        x.anomalies.iter().any(|a| a.kind == "quic-decrypt-failed"),
        "{:?}",
        x.anomalies
    );
    assert_eq!(
        summary.flows.tls_not_decrypted.get("authentication-failed"),
        Some(&1)
    );
}

#[test]
fn decryption_is_bounded_by_the_number_of_connections_at_once() {
    let mut limits = TapLimits::default();
    limits.flow.max_quic_sessions = 0;
    let (list, _) = read_with("h3.pcap", vec![keylog("h3.keylog")], limits);
    assert_eq!(list.len(), 1);
    assert!(list[0].metadata_only);
    assert!(list[0]
        .anomalies
        .iter()
        .any(|a| a.kind == "quic-session-limit"));
}

#[test]
fn chromium_requests_are_the_ones_the_server_received() {
    let chrome = dir().join("chrome");
    let keys: Arc<[u8]> = std::fs::read(chrome.join("chrome.keylog")).unwrap().into();
    let (list, summary) = read_in(
        &chrome,
        "chrome_h3.pcap",
        vec![keys.clone()],
        TapLimits::default(),
    );
    let received: Value =
        serde_json::from_str(&std::fs::read_to_string(chrome.join("received.json")).unwrap())
            .unwrap();
    let mut want: Vec<&Value> = received["requests"].as_array().unwrap().iter().collect();
    want.sort_by_key(|r| r["stream_id"].as_u64());
    assert_eq!(list.len(), want.len(), "{list:#?}");
    assert_eq!(summary.flows.tls_decrypted, 1);
    for (x, w) in list.iter().zip(want) {
        let what = format!("stream {}", w["stream_id"]);
        assert_eq!(
            (x.method.as_str(), x.path.as_str()),
            (str_of(w, "method"), str_of(w, "path"))
        );
        assert_eq!(
            (x.host.as_str(), x.http_version.as_str()),
            ("localhost", "HTTP/3")
        );
        // Every field Chromium sent, in its order, as the server decoded it from QPACK.
        let headers: Vec<(String, String)> = x
            .request_headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(&h.value).into_owned(),
                )
            })
            .collect();
        let sent: Vec<(String, String)> = w["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p[0].as_str().unwrap().to_string(),
                    p[1].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(headers, sent, "{what}");
        let body = w["body"].as_str().unwrap_or_default();
        assert_eq!(x.request_body, body.as_bytes(), "{what}");
        assert_eq!(
            x.request_body.len() as u64,
            w["body_length"].as_u64().unwrap()
        );
        let status = x.response.as_ref().map(|r| u64::from(r.status));
        assert_eq!(status, w["response"]["status"].as_u64(), "{what}");
        assert!(x.anomalies.is_empty(), "{what}: {:?}", x.anomalies);
        // Chromium's GREASE ECH extension, and the secrets under the outer hello's
        // random: the server used the outer hello, whose name is the real one.
        let tls = x.tls.as_ref().unwrap();
        assert_eq!(
            (tls.ech.as_deref(), tls.sni.as_deref()),
            (Some("outer-used"), Some("localhost")),
            "{what}"
        );
    }
    // Without the key log the offer stays `offered`: nothing tells GREASE apart.
    let (unread, _) = read_in(&chrome, "chrome_h3.pcap", Vec::new(), TapLimits::default());
    assert_eq!(unread.len(), 1);
    // Chromium's QUIC hello, as FoxIO's `ja4` tool (0.18.6) gives it, read or not.
    for x in unread.iter().chain(&list) {
        assert_eq!(
            x.tls.as_ref().unwrap().ja4.as_deref(),
            Some("q13d0312h3_55b375c5d22e_178839b6cec1")
        );
    }
    assert_eq!(
        unread[0].tls.as_ref().unwrap().ech.as_deref(),
        Some("offered")
    );
    // The server's own key log of the connection decrypts it the same.
    let server_keys: Arc<[u8]> = std::fs::read(chrome.join("server.keylog")).unwrap().into();
    let (again, _) = read_in(
        &chrome,
        "chrome_h3.pcap",
        vec![server_keys],
        TapLimits::default(),
    );
    let lines = |l: &[Exchange]| -> Vec<String> {
        l.iter()
            .map(|x| format!("{} {} {} {:?}", x.at, x.method, x.path, x.request_body))
            .collect()
    };
    assert_eq!(lines(&again), lines(&list));
    // The refusal came first: every request carrying an identifier is a finding.
    let case = Arc::new(consentry::case::load(&chrome.join("consentry.toml")).unwrap());
    let run = consentry::cli::analyze::analyze_files_with_keylogs(
        case,
        &[chrome.join("chrome_h3.pcap")],
        None,
        &[keys],
        consentry::rules::Options::default(),
        0,
    )
    .unwrap();
    let rules: Vec<&str> = run.findings.iter().map(|f| f.rule.as_str()).collect();
    assert_eq!(rules, ["share-after-refusal"; 5]);
}

/// `h3_ws.pcap` (captures/quic/make_h3_ws.py): a WebSocket over HTTP/3 (RFC 9220)
/// made by aioquic: an extended `CONNECT` on stream 0 whose DATA frames carry the
/// client's masked WebSocket frames (one message deflated). Each message is an
/// exchange with its findings; before, the frames were the CONNECT's body and no
/// identifier was found.
#[test]
fn websocket_messages_over_http3_are_exchanges_with_their_findings() {
    let (list, summary) = read("h3_ws.pcap", vec![keylog("h3_ws.keylog")]);
    assert_eq!(summary.flows.tls_decrypted, 1);
    let rows: Vec<(&str, &str, Option<u16>)> = list
        .iter()
        .map(|x| {
            let status = x.response.as_ref().map(|r| r.status);
            (x.method.as_str(), x.path.as_str(), status)
        })
        .collect();
    // In time order: the CONNECT (its request came first), then the two messages.
    assert_eq!(
        rows,
        [
            ("CONNECT", "/v1/stream", Some(200)),
            ("WS", "/v1/stream", None),
            ("WS", "/v1/stream", None),
        ]
    );
    assert!(list.iter().all(|x| x.host == "ws.appsflyer.com"));
    assert!(list.iter().all(|x| x.anomalies.is_empty()), "{list:#?}");
    assert!(
        list[0].request_body.is_empty(),
        "no frames as the CONNECT's body"
    );
    assert_eq!(
        list[1].request_body,
        br#"{"android_id": "9774d56d682e549c"}"#
    );
    assert_eq!(
        list[2].request_body,
        br#"{"adid": "38400000-8cf0-11bd-b23e-10b96e40000d"}"#
    );

    let case = Arc::new(consentry::case::load(&dir().join("consentry.toml")).unwrap());
    let run = consentry::cli::analyze::analyze_files_with_keylogs(
        case,
        &[dir().join("h3_ws.pcap")],
        None,
        &[keylog("h3_ws.keylog")],
        consentry::rules::Options::default(),
        0,
    )
    .unwrap();
    let found: Vec<(&str, &str)> = run
        .findings
        .iter()
        .map(|f| (f.rule.as_str(), f.data[0].location.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            ("share-after-refusal", "body:$.android_id"),
            ("share-after-refusal", "body:$.adid"),
        ]
    );
}
