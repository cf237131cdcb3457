//! The 802.11 fragments sample capture (`captures/frag/`, written by `make_frag.py`):
//! a WPA/WPA2 mixed-mode lab network above its fragmentation threshold, whose phone
//! (TKIP, the Michael MIC of each MSDU cut across its last fragments) and tablet
//! (CCMP) send their requests in fragments, identifiers cut across them; one
//! fragment retransmitted, one MSDU missing a fragment, one with a packet-number
//! gap (an injected fragment), and a stranger's fragments that stay protected.

use std::collections::BTreeMap;
use std::process::Command;

use consentry::cli::input::InputOutcome;
use consentry::exchange::Exchange;
use consentry::net::wpa::WlanKey;

#[path = "common/sample.rs"]
mod sample;
use sample::{assert_requests, requests, wpa_counts};

const NAME: &str = "frag";

/// The key of `80211_keys`: the network's passphrase.
fn lab_keys() -> Vec<WlanKey> {
    sample::passphrase_keys(NAME)
}

fn read(keys: &[WlanKey]) -> (Vec<Exchange>, InputOutcome) {
    sample::read_with(NAME, "frag.pcap", sample::wlan_reading(keys))
}

#[test]
fn fragments_are_decrypted_and_put_together_into_the_requests() {
    let expected = sample::expected(NAME);
    let (xs, outcome) = read(&lab_keys());
    // Each request once (the retransmitted fragment ignored), at its first fragment;
    // the one missing a fragment and the one with a packet-number gap not at all.
    let want = expected["requests"].as_array().unwrap();
    assert_requests(&requests(&xs), want);
    for x in requests(&xs) {
        let w = want.iter().find(|w| w["host"] == x.host.as_str()).unwrap();
        let (first, last) = (w["frame"].as_u64(), w["last_fragment"].as_u64());
        assert_eq!(
            Some(*sample::frames(&x.evidence.locator).start()),
            first,
            "{}",
            x.host
        );
        assert!(sample::frames(&x.evidence.locator).contains(&last.unwrap()));
    }
    for unreported in expected["unreported_requests"].as_array().unwrap() {
        let host = unreported["host"].as_str().unwrap();
        assert!(
            xs.iter().all(|x| x.host != host || x.metadata_only),
            "{host}: {xs:?}"
        );
    }
    let decrypted = expected["decrypted_frames"].as_u64().unwrap();
    assert_eq!(decrypted, 83);
    assert_eq!(wpa_counts(&outcome), (2, 0, decrypted));
    let counts = &expected["fragments"];
    let traffic = outcome.traffic.as_ref().unwrap();
    assert_eq!(
        (traffic.wlan_reassembled, traffic.wlan_fragments_dropped),
        (
            counts["msdus_reassembled"].as_u64().unwrap(),
            counts["dropped"].as_u64().unwrap()
        )
    );
    assert_eq!(
        (traffic.wlan_reassembled, traffic.wlan_fragments_dropped),
        (7, 5)
    );
    assert_eq!(traffic.wlan_michael_failures, 0);
    // The stranger's frames stay protected; each dropped MSDU is one anomaly.
    let want_errors = sample::expected_errors(NAME);
    assert_eq!(
        want_errors,
        BTreeMap::from([
            ("wlan-fragment-dropped".into(), 2),
            ("wlan-protected".into(), 4)
        ])
    );
    assert_eq!(sample::packet_errors(&outcome), want_errors);
}

#[test]
fn the_findings_are_the_expected_ones() {
    // Those of the requests, and a tracker contact for each connection whose request
    // was dropped: its connection is still seen, named by its DNS answer.
    let run = consentry::cli::analyze::analyze_files_with(
        std::sync::Arc::new(sample::case(NAME)),
        &[sample::dir(NAME).join("frag.pcap")],
        None,
        &sample::wlan_reading(&lab_keys()),
        consentry::rules::Options::default(),
        0,
    )
    .unwrap();
    let (contacts, shares): (Vec<_>, Vec<_>) = run
        .findings
        .iter()
        .partition(|f| f.rule.as_str() == "tracker-contact-before-consent");
    let shares: Vec<_> = shares.into_iter().cloned().collect();
    assert_eq!(
        sample::finding_rows(&shares),
        sample::expected_finding_rows(NAME)
    );
    let contacted: Vec<&str> = contacts
        .iter()
        .map(|f| f.destination.host.as_str())
        .collect();
    let expected = sample::expected(NAME);
    let dropped: Vec<&str> = expected["unreported_requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["host"].as_str().unwrap())
        .collect();
    assert_eq!(contacted, dropped);
}

#[test]
fn a_wrong_passphrase_opens_nothing() {
    let line = "\"wpa-pwd\",\"not the passphrase:consentry-lab-frag\"\n";
    sample::assert_wrong_key_opens_nothing(NAME, "frag.pcap", line, 2);
}

#[test]
fn a_fragment_that_is_not_in_the_capture_drops_its_request() {
    // Without the second fragment of the phone's GET (frame 42) the MSDU cannot be
    // put together: that request goes, the others stay.
    let expected = sample::expected(NAME);
    let want = expected["requests"].as_array().unwrap();
    assert_eq!(want[0]["fragments"], serde_json::json!([40, 42, 44, 46]));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("frag-without-42.pcap");
    let original = std::fs::read(sample::dir(NAME).join("frag.pcap")).unwrap();
    std::fs::write(&path, sample::without_frames(&original, &[42])).unwrap();
    let (xs, outcome) = sample::read_path_with(NAME, &path, sample::wlan_reading(&lab_keys()));
    assert_requests(&requests(&xs), &want[1..]);
    let traffic = outcome.traffic.as_ref().unwrap();
    assert_eq!(
        (traffic.wlan_reassembled, traffic.wlan_fragments_dropped),
        (6, 5 + 3)
    );
    assert_eq!(sample::packet_errors(&outcome)["wlan-fragment-dropped"], 3);
}

#[test]
fn the_summary_counts_the_fragments() {
    let dir = sample::dir(NAME);
    let o = Command::new(env!("CARGO_BIN_EXE_consentry"))
        .arg("analyze")
        .arg(dir.join("frag.pcap"))
        .arg("--case")
        .arg(dir.join("consentry.toml"))
        .arg("--wlan-keys")
        .arg(dir.join("80211_keys"))
        .output()
        .unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(
        out.contains("802.11 fragments: 7 MSDUs put together, 5 fragments dropped"),
        "{out}"
    );
    assert!(
        out.contains("undecodable frames: wlan-fragment-dropped 2, wlan-protected 4"),
        "{out}"
    );
}
