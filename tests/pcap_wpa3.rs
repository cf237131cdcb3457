//! The WPA3 sample capture (`captures/wpa3/`, written by `make_wpa3.py`): a phone
//! joining a WPA3 transition-mode lab network with SAE, a tablet joining it with
//! PSK-SHA256, and a stranger with SAE, in monitor mode with their handshakes. The
//! phone's traffic opens with the PMK its SAE exchange gave (`wpa-psk`), the tablet's
//! with the passphrase (`wpa-pwd`), the stranger's with neither; each key opens its
//! own station's frames only, and a given temporal key (`tk`) opens the stranger's.

use std::collections::BTreeMap;

use consentry::cli::input::InputOutcome;
use consentry::exchange::Exchange;
use consentry::net::wpa::{parse_keys, WlanKey};
use serde_json::Value;

#[path = "common/sample.rs"]
mod sample;
use sample::wpa_counts;

const NAME: &str = "wpa3";

/// The keys of `80211_keys`: the phone's SAE PMK, then the network's passphrase.
fn lab_keys() -> Vec<WlanKey> {
    let file = sample::keys_file(NAME);
    assert!(file.skipped.is_empty());
    assert!(matches!(
        file.keys.as_slice(),
        [WlanKey::Psk(_), WlanKey::Passphrase { .. }]
    ));
    file.keys
}

fn capture() -> std::path::PathBuf {
    sample::dir(NAME).join("wpa3.pcap")
}

fn read(keys: &[WlanKey]) -> (Vec<Exchange>, InputOutcome) {
    sample::read_with(NAME, "wpa3.pcap", sample::wlan_reading(keys))
}

fn errors(outcome: &InputOutcome) -> BTreeMap<String, u64> {
    sample::packet_errors(outcome)
}

fn requests_of(expected: &Value, device: &str) -> Vec<Value> {
    let all = expected["requests"].as_array().unwrap();
    all.iter()
        .filter(|r| device.is_empty() || r["device"] == device)
        .cloned()
        .collect()
}

fn assert_requests(xs: &[Exchange], want: &[Value]) {
    assert_eq!(xs.len(), want.len(), "{xs:?}");
    for (x, w) in xs.iter().zip(want) {
        sample::assert_is_request(x, w);
    }
}

#[test]
fn the_sae_pmk_and_the_passphrase_open_the_phone_and_the_tablet() {
    let expected = sample::expected(NAME);
    let (xs, outcome) = read(&lab_keys());
    assert_requests(&xs, &requests_of(&expected, ""));
    let decrypted = expected["decrypted_frames"].as_u64().unwrap();
    assert_eq!(
        decrypted,
        expected["protected_frames"].as_u64().unwrap() + 2
    );
    assert_eq!(wpa_counts(&outcome), (2, 1, decrypted));
    assert_eq!(
        outcome.notes,
        [format!(
            "{}: WPA: 2 handshakes with a given key, {decrypted} frames decrypted; \
             1 SAE (WPA3) handshakes matched no key (an SAE association needs its PMK \
             as a wpa-psk key)",
            capture().display()
        )]
    );
    // Only the stranger's frames stay protected; the group key handshake inside the
    // phone's protected frames gave the second group key.
    let want_errors = sample::expected_errors(NAME);
    assert_eq!(want_errors, BTreeMap::from([("wlan-protected".into(), 4)]));
    assert_eq!(errors(&outcome), want_errors);
}

#[test]
fn each_key_opens_its_own_station_only() {
    let expected = sample::expected(NAME);
    let stations = &expected["stations"];
    let pairwise = |s: &str| expected["pairwise_frames"][s].as_u64().unwrap();
    let [pmk, passphrase] = <[WlanKey; 2]>::try_from(lab_keys()).unwrap();

    // The SAE PMK: the phone's frames and both group frames (the phone got both
    // group keys); the tablet's PSK-SHA256 handshake matches no key.
    let (xs, outcome) = read(std::slice::from_ref(&pmk));
    assert_requests(&xs, &requests_of(&expected, "phone"));
    assert_eq!(wpa_counts(&outcome), (1, 2, pairwise("phone") + 2));
    assert_eq!(stations["phone"]["in_keys_file"], "wpa-psk");

    // The passphrase: the tablet's frames; the group frames came before its
    // message 3. The phone's SAE handshake is not opened by the passphrase.
    let (xs, outcome) = read(std::slice::from_ref(&passphrase));
    assert_requests(&xs, &requests_of(&expected, "tablet"));
    assert_eq!(wpa_counts(&outcome), (1, 2, pairwise("tablet")));
    let note = &outcome.notes[0];
    assert!(
        note.ends_with(
            "2 SAE (WPA3) handshakes matched no key (an SAE association needs its PMK as \
             a wpa-psk key)"
        ),
        "{note}"
    );
    assert_eq!(stations["tablet"]["in_keys_file"], "wpa-pwd");
}

#[test]
fn a_temporal_key_opens_the_station_whose_pmk_is_unknown() {
    let expected = sample::expected(NAME);
    let tk = expected["stations"]["stranger"]["tk"].as_str().unwrap();
    let text = format!("\"tk\",\"{tk}\"\n\"wep\",\"0102030405\"\n");
    let file = parse_keys(&text).unwrap();
    assert!(file.skipped.is_empty());
    let mut keys = lab_keys();
    keys.extend(file.keys);
    let (xs, outcome) = read(&keys);
    // The stranger's NTP, now read: a UDP flow to the router, no device of the case;
    // its second request, 1.45 s after the first, a part of its own.
    let (ntp, http): (Vec<_>, Vec<_>) = xs.into_iter().partition(|x| x.scheme == "udp");
    assert_requests(&http, &requests_of(&expected, ""));
    let stranger = expected["stations"]["stranger"]["ip"].as_str().unwrap();
    assert_eq!(ntp.len(), 2, "{ntp:?}");
    for x in &ntp {
        assert!(x.metadata_only && x.device.is_none(), "{ntp:?}");
        assert!(
            x.client.as_deref().is_some_and(|c| c == stranger),
            "{ntp:?}"
        );
    }
    let all = expected["all_protected_frames"].as_u64().unwrap();
    assert_eq!(wpa_counts(&outcome), (2, 1, all));
    assert!(errors(&outcome).is_empty(), "{:?}", errors(&outcome));
}

/// A debug log of the lab's hostapd run with `-t -d -K`, as far as it concerns keys:
/// the phone's SAE PMK, the PMK each handshake derived its PTK from, the TKs
/// (the stranger's too, as the access point knows it), among other lines.
fn hostapd_log(expected: &Value) -> String {
    let station = |name: &str, key: &str| {
        expected["stations"][name][key]
            .as_str()
            .unwrap()
            .to_string()
    };
    let dump = |t: f64, title: &str, hex: &str| {
        let bytes: Vec<&str> = (0..hex.len()).step_by(2).map(|i| &hex[i..i + 2]).collect();
        format!(
            "{t:.6}: {title} - hexdump(len={}): {}",
            bytes.len(),
            bytes.join(" ")
        )
    };
    let mut log = vec![
        "Configuration file: /etc/hostapd/consentry-lab-wpa3.conf".to_string(),
        "1795942800.000100: wlan0: interface state COUNTRY_UPDATE->ENABLED".into(),
    ];
    for (t, name) in [
        (1795942800.2, "phone"),
        (1795942801.1, "tablet"),
        (1795942801.6, "stranger"),
    ] {
        log.push(format!(
            "{t:.6}: wlan0: STA {} IEEE 802.11: associated",
            station(name, "mac")
        ));
        if name != "tablet" {
            log.push(dump(t, "SAE: PMK", &station(name, "pmk")));
        }
        log.push(dump(t, "WPA: PMK", &station(name, "pmk")));
        log.push(dump(t, "WPA: PTK", &station(name, "ptk")));
        log.push(dump(t, "WPA: TK", &station(name, "tk")));
    }
    log.join("\n") + "\n"
}

#[test]
fn the_access_points_debug_log_opens_every_station() {
    let expected = sample::expected(NAME);
    let file = parse_keys(&hostapd_log(&expected)).unwrap();
    assert!(file.skipped.is_empty(), "{:?}", file.skipped);
    // Three PMKs (the phone's SAE one logged twice, kept once) and three TKs.
    assert_eq!(file.keys.len(), 6, "{:?}", file.keys);
    let (xs, outcome) = read(&file.keys);
    let http: Vec<_> = xs.into_iter().filter(|x| x.scheme == "http").collect();
    assert_requests(&http, &requests_of(&expected, ""));
    // The stranger's handshake now matches its PMK too.
    let all = expected["all_protected_frames"].as_u64().unwrap();
    assert_eq!(wpa_counts(&outcome), (3, 0, all));
    assert!(errors(&outcome).is_empty(), "{:?}", errors(&outcome));
}

#[test]
fn findings_follow_the_refusal() {
    sample::assert_expected_findings(NAME, "wpa3.pcap", &sample::wlan_reading(&lab_keys()));
}
