//! The WEP sample capture (`captures/wep/`, written by `make_wep.py`): a phone on a
//! WEP-104 lab network (open system, no handshake), its requests and the access
//! point's broadcast under the network's key, and a stranger's frame under another
//! key. The key opens every frame but the stranger's; without it nothing opens.

use std::collections::BTreeMap;

use consentry::cli::input::InputOutcome;
use consentry::exchange::Exchange;
use consentry::net::wpa::{parse_keys, WlanKey};

#[path = "common/sample.rs"]
mod sample;

const NAME: &str = "wep";

/// The key of `80211_keys`: the network's WEP-104 key.
fn lab_keys() -> Vec<WlanKey> {
    let file = sample::keys_file(NAME);
    assert!(file.skipped.is_empty());
    assert!(matches!(file.keys.as_slice(), [WlanKey::Wep(key)] if key.len() == 13));
    file.keys
}

fn read(keys: &[WlanKey]) -> (Vec<Exchange>, InputOutcome) {
    sample::read_with(NAME, "wep.pcap", sample::wlan_reading(keys))
}

#[test]
fn the_network_key_opens_the_phone_and_the_broadcast() {
    let expected = sample::expected(NAME);
    let (xs, outcome) = read(&lab_keys());
    let want = expected["requests"].as_array().unwrap();
    assert_eq!(xs.len(), want.len(), "{xs:?}");
    for (x, w) in xs.iter().zip(want) {
        sample::assert_is_request(x, w);
    }
    let decrypted = expected["decrypted_frames"].as_u64().unwrap();
    let t = outcome.traffic.as_ref().unwrap();
    assert_eq!((t.wlan_handshakes, t.wlan_decrypted), (0, decrypted));
    assert_eq!(
        outcome.notes,
        [format!(
            "{}: WPA: 0 handshakes with a given key, {decrypted} frames decrypted \
             ({decrypted} of them WEP)",
            sample::dir(NAME).join("wep.pcap").display()
        )]
    );
    // Only the stranger's frame, under another key, stays protected.
    let want_errors = sample::expected_errors(NAME);
    assert_eq!(want_errors, BTreeMap::from([("wlan-protected".into(), 1)]));
    assert_eq!(sample::packet_errors(&outcome), want_errors);
}

#[test]
fn the_findings_are_the_expected_ones() {
    sample::assert_expected_findings(NAME, "wep.pcap", &sample::wlan_reading(&lab_keys()));
}

#[test]
fn another_key_or_none_opens_nothing() {
    let all = sample::expected(NAME)["all_protected_frames"]
        .as_u64()
        .unwrap();
    let wrong = parse_keys("\"wep\",\"0102030405060708090a0b0c0d\"\n").unwrap();
    for keys in [wrong.keys, Vec::new()] {
        let (xs, outcome) = read(&keys);
        assert!(xs.is_empty(), "{xs:?}");
        assert_eq!(outcome.traffic.as_ref().unwrap().wlan_decrypted, 0);
        let errors = sample::packet_errors(&outcome);
        assert_eq!(errors, BTreeMap::from([("wlan-protected".into(), all)]));
    }
}
