//! The Wi-Fi sample capture (`captures/wifi/`, written by `make_wifi.py`): a phone on
//! an open access point captured in monitor mode (radiotap + 802.11, a frame check
//! sequence after each frame), known to the case by its MAC address only. Its three
//! requests must be found, attributed by the 802.11 source address, with the findings
//! their consent state calls for, the one sent in an A-MSDU aggregate too; the
//! WPA-protected frame and a frame with a spoofed A-MSDU bit are counted, not read.

use consentry::cli::analyze::CaptureReading;

#[path = "common/sample.rs"]
mod sample;

const NAME: &str = "wifi";

#[test]
fn requests_in_monitor_mode_frames_are_found_by_the_phones_mac() {
    let (xs, outcome) = sample::read_with(NAME, "wifi.pcap", CaptureReading::default());
    let expected = sample::expected(NAME);
    let want = expected["requests"].as_array().unwrap();
    assert_eq!(xs.len(), want.len());
    assert!(
        want.iter().any(|w| w["a_msdu"] == true),
        "a request in an A-MSDU"
    );
    for (x, w) in xs.iter().zip(want) {
        sample::assert_is_request(x, w);
    }
    // The protected frame and the spoofed A-MSDU are counted by kind; the null-data frame,
    // beacons and ACKs carry no network layer and are no errors.
    let errors = sample::expected_errors(NAME);
    assert_eq!(errors.len(), 2);
    assert_eq!(sample::packet_errors(&outcome), errors);
}

#[test]
fn findings_follow_the_refusal() {
    sample::assert_expected_findings(NAME, "wifi.pcap", &CaptureReading::default());
}
