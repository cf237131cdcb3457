//! The tunnel sample capture (`captures/tunnels/`, written by `make_tunnels.py`):
//! phones' HTTP requests seen only inside VXLAN, Geneve, GRE (with key and sequence
//! number, and bridging Ethernet), ERSPAN II and III, GTP-U, IP in IP, 6in4, Teredo,
//! GRE around VXLAN, and a VXLAN datagram whose outer IPv4 packet is fragmented; and
//! four frames that must not be decoded as tunnels or are broken. Every request of the
//! script's `expected.json` must be found with the device its inner addresses (or
//! inner MAC) name, and give the finding its consent state calls for.
//!
//! `flannel.pcap`, from the same script, carries VXLAN on Linux's port 8472: read
//! as a tunnel only when `--tunnel-port` says so.

use std::collections::BTreeMap;
use std::sync::Arc;

use consentry::cli::analyze::{analyze_files, analyze_files_with, CaptureReading};
use consentry::cli::input::InputOutcome;
use consentry::exchange::Exchange;
use consentry::net::tunnel::{TunnelKind, UdpTunnelPorts};
use consentry::rules::Options;
use serde_json::Value;

#[path = "common/sample.rs"]
mod sample;

const NAME: &str = "tunnels";

fn requests() -> Vec<Value> {
    sample::expected(NAME)["requests"]
        .as_array()
        .unwrap()
        .clone()
}

fn read() -> (Vec<Exchange>, InputOutcome) {
    read_with("tunnels.pcap", UdpTunnelPorts::default())
}

fn read_with(file: &str, tunnel_ports: UdpTunnelPorts) -> (Vec<Exchange>, InputOutcome) {
    let reading = CaptureReading {
        tunnel_ports,
        ..CaptureReading::default()
    };
    sample::read_with(NAME, file, reading)
}

#[test]
fn every_tunnelled_request_is_found_with_its_device() {
    let (xs, _) = read();
    let want = requests();
    assert_eq!(want.len(), 12);
    for w in &want {
        let at = w["at"].as_str().unwrap();
        let x = xs
            .iter()
            .find(|x| x.at.to_string() == at && !x.metadata_only)
            .unwrap_or_else(|| panic!("no request at {at} ({})", w["flow"]));
        let flow = w["flow"].as_str().unwrap();
        assert_eq!(x.device.as_deref(), w["device"].as_str(), "{flow}");
        assert_eq!(x.client.as_deref(), w["client"].as_str(), "{flow}");
        assert_eq!(x.server.as_deref(), w["server"].as_str(), "{flow}");
        assert_eq!(Some(x.host.as_str()), w["host"].as_str(), "{flow}");
        assert_eq!(Some(x.method.as_str()), w["method"].as_str(), "{flow}");
        let path = x.path.split('?').next().unwrap();
        assert_eq!(Some(path), w["path"].as_str(), "{flow}");
        let frame = w["frame"].as_u64().unwrap();
        assert!(
            sample::frames(&x.evidence.locator).contains(&frame),
            "{flow}: {} does not hold frame {frame}",
            x.evidence.locator
        );
        assert!(x.anomalies.is_empty(), "{flow}: {:?}", x.anomalies);
    }
    // Besides them, only the probe to UDP port 4789 that is no VXLAN: an ordinary
    // datagram, reported by its addresses.
    let others: Vec<&Exchange> = xs.iter().filter(|x| x.metadata_only).collect();
    assert_eq!(others.len(), 1, "{others:?}");
    assert_eq!(others[0].scheme, "udp");
    assert_eq!(others[0].evidence.locator, "frame 11");
    assert_eq!(xs.len(), want.len() + 1);
}

#[test]
fn tunnels_and_broken_frames_are_counted() {
    let (_, outcome) = read();
    let traffic = outcome.traffic.unwrap();
    // As many packets of each kind as the script sent through it: every packet of a
    // flow once per tunnel around it, and the broken frames up to where they break.
    let expected = sample::expected(NAME);
    let negatives = expected["negative"].as_array().unwrap();
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for w in requests() {
        for kind in w["kinds"].as_array().unwrap() {
            *want.entry(kind.as_str().unwrap().into()).or_default() +=
                w["packets"].as_u64().unwrap();
        }
    }
    for n in negatives {
        for kind in n["kinds"].as_array().unwrap() {
            *want.entry(kind.as_str().unwrap().into()).or_default() += 1;
        }
    }
    assert_eq!(want.len(), 7, "every kind of tunnel: {want:?}");
    assert_eq!(traffic.tunnelled, want);
    // The GRE header cut after 2 bytes and the VXLAN datagram with a 10-byte Ethernet
    // frame inside; the PPTP GRE and the probe are no errors.
    let malformed = negatives
        .iter()
        .filter(|n| n["outcome"] == "malformed")
        .count() as u64;
    assert_eq!(malformed, 2);
    assert_eq!(
        traffic.packet_errors,
        BTreeMap::from([("tunnel-malformed".to_string(), malformed)])
    );
}

#[test]
fn findings_follow_the_consent_timeline() {
    let run = analyze_files(
        Arc::new(sample::case(NAME)),
        &[sample::dir(NAME).join("tunnels.pcap")],
        None,
        Options::default(),
        0,
    )
    .unwrap();
    assert_eq!(run.findings.len(), 12);
    for w in requests() {
        let at = w["at"].as_str().unwrap();
        let flow = w["flow"].as_str().unwrap();
        let f = run
            .findings
            .iter()
            .find(|f| f.at.to_string() == at)
            .unwrap_or_else(|| panic!("no finding at {at} ({flow})"));
        let (rule, state) = match w["consent"].as_str().unwrap() {
            "after-refusal" => ("share-after-refusal", "refused"),
            _ => ("share-before-consent", "not-asked"),
        };
        assert_eq!(f.rule.as_str(), rule, "{flow}");
        assert_eq!(f.consent.state.to_string(), state, "{flow}");
        assert_eq!(Some(f.device.as_str()), w["device"].as_str(), "{flow}");
        let mut types: Vec<String> = f.data.iter().map(|d| d.kind.to_string()).collect();
        types.sort();
        let mut want: Vec<String> = w["identifiers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        want.sort();
        assert_eq!(types, want, "{flow}");
    }
}

/// VXLAN on 4789 and Linux's 8472, as `--tunnel-port vxlan=4789,8472` gives.
fn with_flannel() -> UdpTunnelPorts {
    let mut ports = UdpTunnelPorts::default();
    ports.set(TunnelKind::Vxlan, &[4789, 8472]).unwrap();
    ports
}

#[test]
fn vxlan_on_another_port_is_read_only_when_told() {
    let flannel = &sample::expected(NAME)["flannel"];
    let want = &flannel["requests"][0];
    assert_eq!(flannel["port"], 8472);

    // IANA's ports only: a UDP flow each way between the two nodes (each sends from
    // its own hash port), nothing inside seen: each flow's first datagram, then its
    // later ones as one more part.
    let (xs, outcome) = read_with("flannel.pcap", UdpTunnelPorts::default());
    let traffic = outcome.traffic.unwrap();
    assert!(traffic.tunnelled.is_empty(), "{:?}", traffic.tunnelled);
    let flows: std::collections::BTreeSet<_> = xs.iter().map(|x| &x.client).collect();
    assert_eq!((flows.len(), xs.len()), (2, 4), "{xs:?}");
    for x in &xs {
        assert_eq!((x.scheme.as_str(), x.metadata_only), ("udp", true));
        assert_eq!(x.device, None);
    }

    // Told: the phone's request inside, attributed by its inner MAC.
    let (xs, outcome) = read_with("flannel.pcap", with_flannel());
    let traffic = outcome.traffic.unwrap();
    assert_eq!(
        traffic.tunnelled,
        BTreeMap::from([("vxlan".to_string(), want["packets"].as_u64().unwrap())])
    );
    assert_eq!(xs.len(), 1, "{xs:?}");
    let x = &xs[0];
    assert_eq!(x.at.to_string(), want["at"].as_str().unwrap());
    assert_eq!(x.device.as_deref(), want["device"].as_str());
    assert_eq!(x.client.as_deref(), want["client"].as_str());
    assert_eq!(Some(x.host.as_str()), want["host"].as_str());
    assert_eq!(Some(x.method.as_str()), want["method"].as_str());
    let frame = want["frame"].as_u64().unwrap();
    assert!(sample::frames(&x.evidence.locator).contains(&frame));

    // The tunnels capture reads the same with port 8472 added.
    let (plain, _) = read();
    let (added, _) = read_with("tunnels.pcap", with_flannel());
    assert_eq!(plain, added);
}

#[test]
fn the_finding_inside_flannels_vxlan_needs_the_port() {
    let files = [sample::dir(NAME).join("flannel.pcap")];
    let case = Arc::new(sample::case(NAME));
    let run = |tunnel_ports| {
        let reading = CaptureReading {
            tunnel_ports,
            ..CaptureReading::default()
        };
        analyze_files_with(case.clone(), &files, None, &reading, Options::default(), 0).unwrap()
    };
    assert!(run(UdpTunnelPorts::default()).findings.is_empty());
    let findings = run(with_flannel()).findings;
    let want = &sample::expected(NAME)["flannel"]["requests"][0];
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].rule.as_str(), "share-before-consent");
    assert_eq!(Some(findings[0].device.as_str()), want["device"].as_str());
    let mut types: Vec<String> = findings[0]
        .data
        .iter()
        .map(|d| d.kind.to_string())
        .collect();
    types.sort();
    assert_eq!(types, ["advertising_id", "imei"]);
}
