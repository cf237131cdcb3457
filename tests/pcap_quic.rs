//! The QUIC sample capture (`captures/quic/`, written by `make_quic.py`): QUIC v1 and
//! v2 connections whose client Initial packets carry the server name — one ClientHello
//! spanning two Initial packets with shuffled CRYPTO frames, one Initial coalesced
//! with a 0-RTT packet — and one UDP flow on port 443 that is not QUIC. Each QUIC
//! connection must become a metadata-only exchange named by its SNI, and contact with
//! a tracker must give `tracker-contact-before-consent`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use consentry::cli::analyze::analyze_files;
use consentry::cli::input::{read_input, Attribution};
use consentry::exchange::Exchange;
use consentry::rules::Options;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/quic")
}

fn case() -> consentry::case::Case {
    consentry::case::load(&dir().join("consentry.toml")).unwrap()
}

fn exchanges(file: &Path) -> Vec<Exchange> {
    let attribution = Attribution::new(&case(), None).unwrap();
    let mut out = Vec::new();
    let outcome = read_input(file, &attribution, &String::new, &mut |x| out.push(x));
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    out.sort_by_key(|x| x.at);
    out
}

#[test]
fn quic_connections_are_named_by_their_client_hello() {
    let xs = exchanges(&dir().join("quic.pcap"));
    let seen: Vec<(String, &str, &str, Option<&str>)> = xs
        .iter()
        .map(|x| {
            (
                x.at.to_string(),
                x.host.as_str(),
                x.scheme.as_str(),
                x.tls.as_ref().and_then(|t| t.sni.as_deref()),
            )
        })
        .collect();
    let want = [
        ("2026-11-28T11:00:01.000000Z", "app-measurement.com", "quic"),
        ("2026-11-28T11:00:02.000000Z", "graph.facebook.com", "quic"),
        (
            "2026-11-28T11:00:03.000000Z",
            "www.example-shop.com",
            "quic",
        ),
        ("2026-11-28T11:00:04.000000Z", "api.mixpanel.com", "quic"),
        ("2026-11-28T11:00:05.000000Z", "203.0.113.50", "udp"),
        ("2026-11-28T11:00:12.000000Z", "app-measurement.com", "quic"),
    ];
    assert_eq!(seen.len(), want.len(), "{seen:?}");
    for ((at, host, scheme, sni), (w_at, w_host, w_scheme)) in seen.iter().zip(want) {
        assert_eq!((at.as_str(), *host, *scheme), (w_at, w_host, w_scheme));
        let want_sni = (w_scheme == "quic").then_some(w_host);
        assert_eq!(*sni, want_sni);
    }
    for x in &xs {
        assert!(x.metadata_only);
        assert_eq!(x.device.as_deref(), Some("pixel7"));
        assert!(x.anomalies.is_empty(), "{:?}", x.anomalies);
        if x.scheme == "quic" {
            let tls = x.tls.as_ref().unwrap();
            assert_eq!(tls.version.as_deref(), Some("TLS 1.3"));
            assert!(!tls.decrypted);
            // FoxIO's `ja4` tool (0.18.6) gives every hello of the file this value.
            assert_eq!(
                tls.ja4.as_deref(),
                Some("q13d0308h3_55b375c5d22e_f0736a66fa6b")
            );
        }
    }
    // The evidence of a QUIC exchange is the datagrams up to the one completing the
    // ClientHello (reported then, like every UDP flow, not at the flow's end).
    assert_eq!(xs[0].evidence.locator, "frame 1");
    assert_eq!(xs[1].evidence.locator, "frames 5-6");
}

#[test]
fn tracker_contact_over_quic_is_found() {
    let run = analyze_files(
        Arc::new(case()),
        &[dir().join("quic.pcap")],
        None,
        Options::default(),
        0,
    )
    .unwrap();
    let mut got: Vec<(String, String, String, String)> = run
        .findings
        .iter()
        .map(|f| {
            (
                f.at.to_string(),
                f.rule.as_str().to_string(),
                f.destination.host.clone(),
                f.consent.state.to_string(),
            )
        })
        .collect();
    got.sort();
    let want: Vec<(String, String, String, String)> = [
        (
            "2026-11-28T11:00:01.000000Z",
            "app-measurement.com",
            "not-asked",
        ),
        (
            "2026-11-28T11:00:02.000000Z",
            "graph.facebook.com",
            "not-asked",
        ),
        (
            "2026-11-28T11:00:04.000000Z",
            "api.mixpanel.com",
            "not-asked",
        ),
        (
            "2026-11-28T11:00:12.000000Z",
            "app-measurement.com",
            "refused",
        ),
    ]
    .into_iter()
    .map(|(at, host, state)| {
        (
            at.to_string(),
            "tracker-contact-before-consent".to_string(),
            host.to_string(),
            state.to_string(),
        )
    })
    .collect();
    assert_eq!(got, want);
}

/// Byte offset of frame `n` (1-based) in a classic pcap file.
fn frame_offset(pcap: &[u8], n: usize) -> usize {
    let mut at = 24;
    for _ in 1..n {
        let len = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap()) as usize;
        at += 16 + len;
    }
    at
}

/// A capture cut inside the second datagram of the two-packet ClientHello (frame 6):
/// that connection is reported by its address, marked QUIC without a ClientHello;
/// the one before it keeps its name. Other cuts read without panicking.
#[test]
fn cut_capture_reports_the_unfinished_quic_connection_by_address() {
    let data = std::fs::read(dir().join("quic.pcap")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("cut.pcap");
    let cut = frame_offset(&data, 6) + 16 + 500;
    std::fs::write(&path, &data[..cut]).unwrap();
    let xs = exchanges(&path);
    let hosts: Vec<&str> = xs.iter().map(|x| x.host.as_str()).collect();
    assert_eq!(hosts, ["app-measurement.com", "157.240.1.35"]);
    assert_eq!(xs[1].scheme, "quic");
    assert_eq!(xs[1].anomalies[0].kind, "quic-no-client-hello");
    for cut in (24..data.len()).step_by(97) {
        std::fs::write(&path, &data[..cut]).unwrap();
        let attribution = Attribution::new(&case(), None).unwrap();
        let mut xs = Vec::new();
        let _ = read_input(&path, &attribution, &String::new, &mut |x| xs.push(x));
        assert!(xs.iter().all(|x| !x.host.is_empty()));
    }
}

/// Google QUIC (`make_gquic.py`): each flow one metadata-only `quic` exchange named
/// by the server name of its client's handshake — the CHLO of Q043 and Q046 (big-
/// endian frames) and Q025 (little-endian, a private flags byte), Q050's CHLO and
/// T051's ClientHello in Initial packets under gQUIC's own salts — and a Q050 flow
/// whose Initial does not open, named by DNS; contact with the trackers found.
/// (time, host, scheme, tls.version, tls.sni) of an exchange.
type Row<'a> = (String, &'a str, &'a str, Option<&'a str>, Option<&'a str>);

#[test]
fn gquic_flows_are_named_by_their_chlo() {
    let xs = exchanges(&dir().join("gquic.pcap"));
    let seen: Vec<Row> = xs
        .iter()
        .map(|x| {
            let tls = x.tls.as_ref();
            (
                x.at.to_string(),
                x.host.as_str(),
                x.scheme.as_str(),
                tls.and_then(|t| t.version.as_deref()),
                tls.and_then(|t| t.sni.as_deref()),
            )
        })
        .collect();
    let ads = "googleads.g.doubleclick.net";
    let firebase = "firebaseinstallations.googleapis.com";
    let want = [
        (
            "2026-11-28T11:00:01.000000Z",
            ads,
            "quic",
            Some("gQUIC Q043"),
            Some(ads),
        ),
        (
            "2026-11-28T11:00:02.000000Z",
            "www.example-shop.com",
            "quic",
            Some("gQUIC Q025"),
            Some("www.example-shop.com"),
        ),
        (
            "2026-11-28T11:00:03.000000Z",
            "app-measurement.com",
            "quic",
            Some("gQUIC Q046"),
            Some("app-measurement.com"),
        ),
        (
            "2026-11-28T11:00:04.000000Z",
            firebase,
            "quic",
            Some("gQUIC Q050"),
            Some(firebase),
        ),
        (
            "2026-11-28T11:00:05.000000Z",
            "www.example-shop.com",
            "quic",
            Some("gQUIC T051"),
            Some("www.example-shop.com"),
        ),
        // Its Initial does not open: named by the DNS answer for its address.
        (
            "2026-11-28T11:00:06.000000Z",
            firebase,
            "quic",
            Some("gQUIC Q050"),
            None,
        ),
        (
            "2026-11-28T11:00:12.000000Z",
            ads,
            "quic",
            Some("gQUIC Q043"),
            Some(ads),
        ),
    ];
    let want: Vec<Row> = want
        .into_iter()
        .map(|(at, host, scheme, version, sni)| (at.to_string(), host, scheme, version, sni))
        .collect();
    // The DNS lookup is no exchange of its own.
    assert_eq!(seen, want);
    for x in &xs {
        assert!(x.metadata_only && x.request_body.is_empty(), "{x:?}");
        assert!(x.anomalies.is_empty(), "{:?}", x.anomalies);
        let tls = x.tls.as_ref().unwrap();
        assert!(!tls.decrypted);
        assert!(tls.decrypt_error.as_deref().unwrap().starts_with("gQUIC: "));
        // Only T051 carries a TLS ClientHello; FoxIO's `ja4` tool (0.18.6) gives it
        // this value (QUIC Crypto's CHLO has none).
        let t051 = tls.version.as_deref() == Some("gQUIC T051");
        assert_eq!(
            tls.ja4.as_deref(),
            t051.then_some("q13d0308h1_55b375c5d22e_f0736a66fa6b")
        );
        assert_eq!(tls.ja3.is_some(), t051);
    }
    // Each flow is one exchange, its later datagrams (encrypted) not parts: the
    // first flow's evidence is its client's first packet.
    assert_eq!(xs[0].evidence.locator, "frame 1");

    let run = analyze_files(
        Arc::new(case()),
        &[dir().join("gquic.pcap")],
        None,
        Options::default(),
        0,
    )
    .unwrap();
    let mut got: Vec<(String, &str, &str)> = run
        .findings
        .iter()
        .map(|f| {
            (
                f.at.to_string(),
                f.rule.as_str(),
                f.destination.host.as_str(),
            )
        })
        .collect();
    got.sort();
    let contact = "tracker-contact-before-consent";
    assert_eq!(
        got,
        [
            ("2026-11-28T11:00:01.000000Z".to_string(), contact, ads),
            (
                "2026-11-28T11:00:03.000000Z".to_string(),
                contact,
                "app-measurement.com"
            ),
            ("2026-11-28T11:00:04.000000Z".to_string(), contact, firebase),
            ("2026-11-28T11:00:06.000000Z".to_string(), contact, firebase),
            ("2026-11-28T11:00:12.000000Z".to_string(), contact, ads),
        ]
    );
}
