//! The fast BSS transition sample capture (`captures/ft/`, written by `make_ft.py`):
//! two access points of one mobility domain (802.11r), a phone that joins the first
//! with FT-PSK and roams over the air to the second (FT authentication and
//! reassociation, no EAPOL), and a tablet that joins the first with FT-802.1X. The
//! passphrase opens the phone on both access points and the group frames; the MSK
//! opens the tablet.

use std::collections::BTreeMap;

use consentry::cli::input::InputOutcome;
use consentry::exchange::Exchange;
use consentry::net::wpa::WlanKey;
use serde_json::Value;

#[path = "common/sample.rs"]
mod sample;
use sample::{assert_requests, requests, wpa_counts};

const NAME: &str = "ft";

/// The keys of `80211_keys`: the network's passphrase, the tablet's MSK.
fn lab_keys() -> Vec<WlanKey> {
    let file = sample::keys_file(NAME);
    assert!(file.skipped.is_empty());
    assert!(matches!(
        file.keys.as_slice(),
        [WlanKey::Passphrase { .. }, WlanKey::Msk(_)]
    ));
    file.keys
}

fn read_file(path: &std::path::Path, keys: &[WlanKey]) -> (Vec<Exchange>, InputOutcome) {
    sample::read_path_with(NAME, path, sample::wlan_reading(keys))
}

fn read(keys: &[WlanKey]) -> (Vec<Exchange>, InputOutcome) {
    read_file(&sample::dir(NAME).join("ft.pcap"), keys)
}

fn requests_of(expected: &Value, frames: &[u64]) -> Vec<Value> {
    let all = expected["requests"].as_array().unwrap();
    all.iter()
        .filter(|r| frames.contains(&r["frame"].as_u64().unwrap()))
        .cloned()
        .collect()
}

#[test]
fn the_keys_open_the_phone_before_and_after_its_roam_and_the_tablet() {
    let expected = sample::expected(NAME);
    assert_eq!(expected["ft_roams"], 1);
    let (xs, outcome) = read(&lab_keys());
    assert_requests(&requests(&xs), expected["requests"].as_array().unwrap());
    let decrypted = expected["decrypted_frames"].as_u64().unwrap();
    assert_eq!(decrypted, 36);
    // Two 4-way handshakes and the roam's reassociation, each proven by its MIC.
    assert_eq!(wpa_counts(&outcome), (3, 0, decrypted));
    assert_eq!(
        outcome.notes,
        [format!(
            "{}: WPA: 3 handshakes with a given key, {decrypted} frames decrypted",
            sample::dir(NAME).join("ft.pcap").display()
        )]
    );
    // Both access points' group frames (ARP) opened: nothing stays protected.
    assert!(sample::expected_errors(NAME).is_empty());
    assert!(sample::packet_errors(&outcome).is_empty());
}

#[test]
fn the_findings_are_the_expected_ones() {
    sample::assert_expected_findings(NAME, "ft.pcap", &sample::wlan_reading(&lab_keys()));
}

#[test]
fn the_passphrase_opens_the_phone_and_the_msk_the_tablet() {
    let expected = sample::expected(NAME);
    let keys = lab_keys();
    let pairwise = &expected["pairwise_frames"];
    let (phone, tablet) = (
        pairwise["phone"].as_u64().unwrap(),
        pairwise["tablet"].as_u64().unwrap(),
    );
    let group = expected["group_frames"].as_u64().unwrap();

    let (xs, outcome) = read(&keys[..1]);
    assert_requests(&requests(&xs), &requests_of(&expected, &[32, 92, 111]));
    // The tablet's handshake matches no key.
    assert_eq!(wpa_counts(&outcome), (2, 1, phone + group));
    let errors = sample::packet_errors(&outcome);
    assert_eq!(errors, BTreeMap::from([("wlan-protected".into(), tablet)]));

    let (xs, outcome) = read(&keys[1..]);
    assert_requests(&requests(&xs), &requests_of(&expected, &[66]));
    // The phone's first handshake matches no key, so its roam cannot be followed.
    assert_eq!(wpa_counts(&outcome), (1, 1, tablet));
}

#[test]
fn without_the_reassociation_request_the_phones_frames_via_the_second_ap_stay_closed() {
    // The reassociation request's FTE holds the roam's nonces and proves them with
    // its MIC; without it (frame 82) the phone has no key for AP2, and AP2's GTK in
    // the response cannot be unwrapped.
    let expected = sample::expected(NAME);
    let roam = &expected["stations"]["phone"]["roam"];
    assert_eq!(roam["reassociation"], serde_json::json!([82, 84]));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ft-without-reassociation-request.pcap");
    let original = std::fs::read(sample::dir(NAME).join("ft.pcap")).unwrap();
    std::fs::write(&path, sample::without_frames(&original, &[82])).unwrap();
    let (xs, outcome) = read_file(&path, &lab_keys());
    assert_requests(&requests(&xs), &requests_of(&expected, &[32, 66]));
    let via_ap2 = roam["frames"].as_u64().unwrap();
    let decrypted = expected["decrypted_frames"].as_u64().unwrap();
    // The roam's frames and AP2's group frame stay protected.
    assert_eq!(wpa_counts(&outcome), (2, 0, decrypted - via_ap2 - 1));
    let errors = sample::packet_errors(&outcome);
    assert_eq!(
        errors,
        BTreeMap::from([("wlan-protected".into(), via_ap2 + 1)])
    );
}
