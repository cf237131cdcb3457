//! The TKIP sample capture (`captures/tkip/`, written by `make_tkip.py`): a WPA/WPA2
//! mixed-mode lab network whose phone joins with WPA1 (TKIP pairwise, HMAC-MD5 MICs,
//! its group key by the WPA group key handshake inside its TKIP frames) and whose
//! tablet joins with WPA2 (CCMP pairwise, the same TKIP group key in message 3), and
//! a stranger's TKIP frames. The passphrase opens both stations and the group frames;
//! a `tk` line of TKIP's 32 bytes opens the stranger.

use std::collections::BTreeMap;

use consentry::cli::input::InputOutcome;
use consentry::exchange::Exchange;
use consentry::net::wpa::{parse_keys, WlanKey};

#[path = "common/sample.rs"]
mod sample;
use sample::{assert_requests, requests, wpa_counts};

const NAME: &str = "tkip";

/// The key of `80211_keys`: the network's passphrase.
fn lab_keys() -> Vec<WlanKey> {
    sample::passphrase_keys(NAME)
}

fn read_file(path: &std::path::Path, keys: &[WlanKey]) -> (Vec<Exchange>, InputOutcome) {
    sample::read_path_with(NAME, path, sample::wlan_reading(keys))
}

fn read(keys: &[WlanKey]) -> (Vec<Exchange>, InputOutcome) {
    read_file(&sample::dir(NAME).join("tkip.pcap"), keys)
}

#[test]
fn the_passphrase_opens_the_wpa1_phone_the_wpa2_tablet_and_the_group_frames() {
    let expected = sample::expected(NAME);
    let (xs, outcome) = read(&lab_keys());
    assert_requests(&requests(&xs), expected["requests"].as_array().unwrap());
    let decrypted = expected["decrypted_frames"].as_u64().unwrap();
    assert_eq!(decrypted, 44);
    assert_eq!(wpa_counts(&outcome), (2, 0, decrypted));
    assert_eq!(
        outcome.notes,
        [format!(
            "{}: WPA: 2 handshakes with a given key, {decrypted} frames decrypted",
            sample::dir(NAME).join("tkip.pcap").display()
        )]
    );
    // The AP's UDP broadcast under the TKIP group key (frame 105) was read: a flow
    // of no case device.
    let broadcast: Vec<_> = xs.iter().filter(|x| x.scheme == "udp").collect();
    assert_eq!(broadcast.len(), 1, "{broadcast:?}");
    assert!(broadcast[0].device.is_none());
    // Only the stranger's frames stay protected.
    let want_errors = sample::expected_errors(NAME);
    assert_eq!(want_errors, BTreeMap::from([("wlan-protected".into(), 3)]));
    assert_eq!(sample::packet_errors(&outcome), want_errors);
}

#[test]
fn the_findings_are_the_expected_ones() {
    sample::assert_expected_findings(NAME, "tkip.pcap", &sample::wlan_reading(&lab_keys()));
}

#[test]
fn a_wrong_passphrase_opens_nothing() {
    let line = "\"wpa-pwd\",\"not the passphrase:consentry-lab-wpa\"\n";
    sample::assert_wrong_key_opens_nothing(NAME, "tkip.pcap", line, 2);
}

#[test]
fn the_tablets_message_3_alone_gives_the_tkip_group_key() {
    // The capture without the phone's group key handshake (frames 23 and 25): the
    // first group frame (27, before the tablet joins) stays protected; the second
    // (105) opens with the GTK of the tablet's WPA2 message 3. (tshark 4.0 does not
    // open it: it tries a GTK from a version 2 message 3 as CCMP.)
    let expected = sample::expected(NAME);
    assert_eq!(expected["group_key_handshake"], serde_json::json!([23, 25]));
    assert_eq!(expected["gtk"]["frames"], serde_json::json!([27, 105]));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tkip-without-group-handshake.pcap");
    let original = std::fs::read(sample::dir(NAME).join("tkip.pcap")).unwrap();
    std::fs::write(&path, sample::without_frames(&original, &[23, 25])).unwrap();
    let (xs, outcome) = read_file(&path, &lab_keys());
    assert_requests(&requests(&xs), expected["requests"].as_array().unwrap());
    let decrypted = expected["decrypted_frames"].as_u64().unwrap() - 3;
    assert_eq!(wpa_counts(&outcome), (2, 0, decrypted));
    assert_eq!(xs.iter().filter(|x| x.scheme == "udp").count(), 1);
    let errors = sample::packet_errors(&outcome);
    assert_eq!(errors, BTreeMap::from([("wlan-protected".into(), 4)]));
}

#[test]
fn a_tkip_temporal_key_opens_the_stranger() {
    let expected = sample::expected(NAME);
    let stranger = &expected["stations"]["stranger"];
    let line = format!("\"tk\",\"{}\"\n", stranger["tk_line"].as_str().unwrap());
    let mut keys = lab_keys();
    keys.extend(parse_keys(&line).unwrap().keys);
    let (xs, outcome) = read(&keys);
    assert_requests(&requests(&xs), expected["requests"].as_array().unwrap());
    // Its NTP, now read: a UDP flow of no device; its second request, 1.6 s after
    // the first, a part of its own.
    let ip = stranger["ip"].as_str().unwrap();
    let ntp: Vec<_> = xs
        .iter()
        .filter(|x| x.client.as_deref() == Some(ip))
        .collect();
    assert_eq!(ntp.len(), 2, "{xs:?}");
    assert!(ntp
        .iter()
        .all(|x| x.metadata_only && x.device.is_none() && x.request_body.len() == 48));
    let all = expected["all_protected_frames"].as_u64().unwrap();
    assert_eq!(wpa_counts(&outcome), (2, 0, all));
    assert!(sample::packet_errors(&outcome).is_empty());
    // Its 16-byte TK alone, as Wireshark shows a TKIP TK, opens it too: by the ICV,
    // the Michael MIC unchecked (as tshark does).
    let short = format!("\"tk\",\"{}\"\n", stranger["tk"].as_str().unwrap());
    let mut keys = lab_keys();
    keys.extend(parse_keys(&short).unwrap().keys);
    let (_, outcome) = read(&keys);
    assert_eq!(wpa_counts(&outcome).2, all);
}

#[test]
fn a_frame_whose_michael_mic_is_wrong_is_not_read() {
    // tkip-michael.pcap: the phone's first request sealed again under the other
    // direction's Michael key. Its ICV comes out (tshark 4.0 reads the request); its
    // Michael MIC does not, so a receiver drops it: no request, a note, an anomaly.
    let expected = sample::expected(NAME);
    let twin = &expected["michael_twin"];
    let path = sample::dir(NAME).join(twin["capture"].as_str().unwrap());
    let (xs, outcome) = read_file(&path, &lab_keys());
    let all = expected["requests"].as_array().unwrap();
    assert_eq!(all[0]["frame"], twin["frame"]);
    assert_requests(&requests(&xs), &all[1..]);
    let decrypted = expected["decrypted_frames"].as_u64().unwrap() - 1;
    assert_eq!(wpa_counts(&outcome), (2, 0, decrypted));
    assert_eq!(
        outcome.notes,
        [format!(
            "{}: WPA: 2 handshakes with a given key, {decrypted} frames decrypted; \
             1 TKIP frames failed their Michael MIC (forged or damaged)",
            path.display()
        )]
    );
    let errors = sample::packet_errors(&outcome);
    assert_eq!(errors, BTreeMap::from([("wlan-protected".into(), 4)]));
    let traffic = outcome.traffic.as_ref().unwrap();
    assert_eq!(traffic.wlan_michael_failures, 1);
    // The connection is still seen, its response without a request.
    let host = twin["request"].as_str().unwrap();
    let seen: Vec<_> = xs.iter().filter(|x| x.host == host).collect();
    assert_eq!(seen.len(), 1, "{xs:?}");
    assert!(seen[0].metadata_only, "{:?}", seen[0]);
}
