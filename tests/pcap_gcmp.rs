//! The GCMP sample capture (`captures/gcmp/`, written by `make_gcmp.py`): a Wi-Fi 6/7
//! lab network whose group cipher is GCMP-256, a phone joining with PSK and GCMP-256,
//! a tablet with PSK-SHA256 and CCMP-256, a second phone with PSK and GCMP-128, and a
//! stranger's GCMP-256 frames. The passphrase opens the three stations and the group
//! frame; a `tk` line of the stranger's 32 bytes opens the stranger.

use std::collections::BTreeMap;

use consentry::cli::input::InputOutcome;
use consentry::exchange::Exchange;
use consentry::net::wpa::{parse_keys, WlanKey};

#[path = "common/sample.rs"]
mod sample;
use sample::{assert_requests, requests, wpa_counts};

const NAME: &str = "gcmp";

/// The key of `80211_keys`: the network's passphrase.
fn lab_keys() -> Vec<WlanKey> {
    sample::passphrase_keys(NAME)
}

fn read(keys: &[WlanKey]) -> (Vec<Exchange>, InputOutcome) {
    sample::read_with(NAME, "gcmp.pcap", sample::wlan_reading(keys))
}

#[test]
fn the_passphrase_opens_gcmp_256_gcmp_128_and_ccmp_256_stations_and_the_group_frame() {
    let expected = sample::expected(NAME);
    let ciphers: Vec<&str> = ["phone", "tablet", "phone2"]
        .iter()
        .map(|s| expected["stations"][s]["pairwise_cipher"].as_str().unwrap())
        .collect();
    assert_eq!(ciphers, ["GCMP-256", "CCMP-256", "GCMP-128"]);
    let (xs, outcome) = read(&lab_keys());
    assert_requests(&requests(&xs), expected["requests"].as_array().unwrap());
    let decrypted = expected["decrypted_frames"].as_u64().unwrap();
    assert_eq!(decrypted, 45);
    assert_eq!(wpa_counts(&outcome), (3, 0, decrypted));
    assert_eq!(
        outcome.notes,
        [format!(
            "{}: WPA: 3 handshakes with a given key, {decrypted} frames decrypted",
            sample::dir(NAME).join("gcmp.pcap").display()
        )]
    );
    // Only the stranger's frames stay protected.
    let want_errors = sample::expected_errors(NAME);
    assert_eq!(want_errors, BTreeMap::from([("wlan-protected".into(), 3)]));
    assert_eq!(sample::packet_errors(&outcome), want_errors);
}

#[test]
fn the_findings_are_the_expected_ones() {
    sample::assert_expected_findings(NAME, "gcmp.pcap", &sample::wlan_reading(&lab_keys()));
}

#[test]
fn a_wrong_passphrase_opens_nothing() {
    let line = "\"wpa-pwd\",\"not the passphrase:consentry-lab-gcmp\"\n";
    sample::assert_wrong_key_opens_nothing(NAME, "gcmp.pcap", line, 3);
}

#[test]
fn the_strangers_temporal_key_opens_its_gcmp_256_frames() {
    let expected = sample::expected(NAME);
    let stranger = &expected["stations"]["stranger"];
    assert_eq!(stranger["pairwise_cipher"], "GCMP-256");
    let line = format!("\"tk\",\"{}\"\n", stranger["tk_line"].as_str().unwrap());
    let mut keys = lab_keys();
    keys.extend(parse_keys(&line).unwrap().keys);
    let (xs, outcome) = read(&keys);
    assert_requests(&requests(&xs), expected["requests"].as_array().unwrap());
    let all = expected["all_protected_frames"].as_u64().unwrap();
    assert_eq!(wpa_counts(&outcome), (3, 0, all));
    assert!(sample::packet_errors(&outcome).is_empty());
    // Its traffic, now read, belongs to no case device.
    let ip = stranger["ip"].as_str().unwrap();
    assert!(xs
        .iter()
        .filter(|x| x.client.as_deref() == Some(ip))
        .all(|x| x.device.is_none()));
}

#[test]
fn the_stations_temporal_keys_alone_open_them() {
    // The TKs a hostapd debug log prints (32 bytes for GCMP-256 and CCMP-256, 16 for
    // GCMP-128), as `tk` lines: each station's frames open without its handshake's
    // key; the group frame, whose GTK no line gives, stays protected.
    let expected = sample::expected(NAME);
    let lines: String = ["phone", "tablet", "phone2"]
        .iter()
        .map(|s| {
            let tk = expected["stations"][s]["tk"].as_str().unwrap();
            format!("\"tk\",\"{tk}\"\n")
        })
        .collect();
    let (xs, outcome) = read(&parse_keys(&lines).unwrap().keys);
    assert_requests(&requests(&xs), expected["requests"].as_array().unwrap());
    let pairwise = expected["protected_frames"].as_u64().unwrap();
    assert_eq!(wpa_counts(&outcome), (0, 3, pairwise));
    // The stranger's 3 frames and the group frame.
    let errors = sample::packet_errors(&outcome);
    assert_eq!(errors, BTreeMap::from([("wlan-protected".into(), 4)]));
}
