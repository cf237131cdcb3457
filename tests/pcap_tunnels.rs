//! The tunnel sample capture (`captures/tunnels/`, written by `make_tunnels.py`):
//! phones' HTTP requests seen only inside VXLAN, Geneve, GRE (with key and sequence
//! number, and bridging Ethernet), ERSPAN II and III, GTP-U, IP in IP, 6in4, Teredo,
//! GRE around VXLAN, and a VXLAN datagram whose outer IPv4 packet is fragmented; and
//! four frames that must not be decoded as tunnels or are broken. Every request of the
//! script's `expected.json` must be found with the device its inner addresses (or
//! inner MAC) name, and give the finding its consent state calls for.

use std::collections::BTreeMap;
use std::sync::Arc;

use consentry::cli::analyze::analyze_files;
use consentry::cli::input::{read_input, Attribution, InputOutcome};
use consentry::exchange::Exchange;
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
    let attribution = Attribution::new(&sample::case(NAME), None).unwrap();
    let mut out = Vec::new();
    let outcome = read_input(
        &sample::dir(NAME).join("tunnels.pcap"),
        &attribution,
        &String::new,
        &mut |x| out.push(x),
    );
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    out.sort_by_key(|x| x.at);
    (out, outcome)
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
