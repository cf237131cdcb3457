//! The WPA2 sample capture (`captures/wpa2/`, written by `make_wpa2.py`): a phone
//! joining a WPA2-Personal lab access point, captured in monitor mode with its 4-way
//! handshake. With the network's key (`80211_keys`, Wireshark's format) its three
//! requests must be decrypted, found and judged; the group-addressed frame and
//! another station's frames stay `wlan-protected`. Without the key, or with a wrong
//! one, nothing is read and the summary says why.

use std::collections::BTreeMap;
use std::sync::Arc;

use consentry::cli::analyze::CaptureReading;
use consentry::cli::input::InputOutcome;
use consentry::exchange::Exchange;
use consentry::net::wpa::{WlanKey, WlanKeys};

#[path = "common/sample.rs"]
mod sample;

const NAME: &str = "wpa2";

fn lab_keys() -> Arc<WlanKeys> {
    Arc::new(WlanKeys::new(&sample::keys_file(NAME).keys))
}

fn capture() -> std::path::PathBuf {
    sample::dir(NAME).join("wpa2.pcap")
}

fn read(keys: Arc<WlanKeys>) -> (Vec<Exchange>, InputOutcome) {
    let reading = CaptureReading {
        wlan_keys: keys,
        ..CaptureReading::default()
    };
    sample::read_with(NAME, "wpa2.pcap", reading)
}

fn errors(outcome: &InputOutcome) -> BTreeMap<String, u64> {
    sample::packet_errors(outcome)
}

#[test]
fn the_networks_key_opens_the_phones_requests() {
    let expected = sample::expected(NAME);
    let (xs, outcome) = read(lab_keys());
    let want = expected["requests"].as_array().unwrap();
    assert_eq!(xs.len(), want.len(), "{xs:?}");
    for (x, w) in xs.iter().zip(want) {
        sample::assert_is_request(x, w);
    }
    // Every frame the phone's key protects decrypted, and the group-addressed frame
    // with the group key of message 3; the other station's stay protected.
    let protected =
        expected["protected_frames"].as_u64().unwrap() + expected["group_frames"].as_u64().unwrap();
    assert_eq!(
        outcome.notes,
        [format!(
            "{}: WPA: 1 handshakes with a given key, {protected} frames decrypted",
            capture().display()
        )]
    );
    let traffic = outcome.traffic.as_ref().unwrap();
    assert_eq!(
        (
            traffic.wlan_handshakes,
            traffic.wlan_handshakes_unmatched,
            traffic.wlan_decrypted
        ),
        (1, 0, protected)
    );
    let want_errors = sample::expected_errors(NAME);
    assert_eq!(want_errors.len(), 1, "only the other station's frames");
    assert_eq!(errors(&outcome), want_errors);
}

#[test]
fn a_passphrase_without_ssid_takes_the_one_the_access_point_names() {
    let any = WlanKey::Passphrase {
        passphrase: sample::expected(NAME)["passphrase"]
            .as_str()
            .unwrap()
            .into(),
        ssid: None,
    };
    let (xs, outcome) = read(Arc::new(WlanKeys::new(&[any])));
    let (with_ssid, _) = read(lab_keys());
    assert_eq!(xs.len(), 3);
    assert_eq!(xs, with_ssid);
    let traffic = outcome.traffic.unwrap();
    assert_eq!((traffic.wlan_handshakes, traffic.wlan_decrypted), (1, 31));
}

#[test]
fn without_the_key_or_with_a_wrong_one_nothing_is_read() {
    let expected = sample::expected(NAME);
    let protected = expected["protected_frames"].as_u64().unwrap();
    let negatives = expected["negative"].as_array().unwrap().len() as u64;
    // The group-addressed frame is one of the negatives.
    let all_protected = BTreeMap::from([("wlan-protected".to_string(), protected + negatives)]);

    let (xs, outcome) = read(Arc::default());
    assert!(xs.is_empty(), "{xs:?}");
    assert!(outcome.notes.is_empty(), "{:?}", outcome.notes);
    assert_eq!(errors(&outcome), all_protected);

    let wrong = WlanKey::Passphrase {
        passphrase: "incorrect horse battery staple".into(),
        ssid: Some(expected["ssid"].as_str().unwrap().as_bytes().to_vec()),
    };
    let (xs, outcome) = read(Arc::new(WlanKeys::new(&[wrong])));
    assert!(xs.is_empty(), "{xs:?}");
    assert_eq!(
        outcome.notes,
        [format!(
            "{}: WPA: 0 handshakes with a given key, 0 frames decrypted; \
             1 handshakes matched no key (wrong passphrase or SSID?)",
            capture().display()
        )]
    );
    assert_eq!(errors(&outcome), all_protected);
    let traffic = outcome.traffic.as_ref().unwrap();
    assert_eq!(
        (traffic.wlan_handshakes, traffic.wlan_handshakes_unmatched),
        (0, 1)
    );
}

#[test]
fn findings_follow_the_refusal() {
    let reading = CaptureReading {
        wlan_keys: lab_keys(),
        ..CaptureReading::default()
    };
    sample::assert_expected_findings(NAME, "wpa2.pcap", &reading);
}
