//! The sample captures of `captures/NAME/` whose scripts write an `expected.json`
//! (tunnels, wifi, wpa2, wpa3, tkip, wep, gcmp, ft): their paths, case files and
//! expectations. Each test file includes it and uses a part.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::Value;

/// `captures/NAME`.
pub fn dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("captures")
        .join(name)
}

/// The case file next to the capture.
pub fn case(name: &str) -> consentry::case::Case {
    consentry::case::load(&dir(name).join("consentry.toml")).unwrap()
}

/// What the capture's script says a correct reading finds.
pub fn expected(name: &str) -> Value {
    let text = std::fs::read_to_string(dir(name).join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The frame numbers of an evidence locator (`frame 11`, `frames 4-6`).
pub fn frames(locator: &str) -> std::ops::RangeInclusive<u64> {
    let numbers = locator.rsplit(' ').next().unwrap();
    let (first, last) = numbers.split_once('-').unwrap_or((numbers, numbers));
    first.parse().unwrap()..=last.parse().unwrap()
}

/// One finding as its time, rule and identifier types (sorted, comma-separated).
pub type FindingRow = (String, String, String);

/// `findings` as [`FindingRow`]s.
pub fn finding_rows(findings: &[consentry::rules::Finding]) -> Vec<FindingRow> {
    findings
        .iter()
        .map(|f| {
            let mut types: Vec<String> = f.data.iter().map(|d| d.kind.to_string()).collect();
            types.sort();
            (
                f.at.to_string(),
                f.rule.as_str().to_string(),
                types.join(","),
            )
        })
        .collect()
}

/// The exchanges (by time) of the capture `file` of `captures/NAME/` read with its
/// case and `reading`, and what reading it gave; it must read to the end.
pub fn read_with(
    name: &str,
    file: &str,
    reading: consentry::cli::analyze::CaptureReading,
) -> (
    Vec<consentry::exchange::Exchange>,
    consentry::cli::input::InputOutcome,
) {
    read_path_with(name, &dir(name).join(file), reading)
}

/// [`read_with`] of a capture at `path`, read with the case of `captures/NAME/`.
pub fn read_path_with(
    name: &str,
    path: &Path,
    reading: consentry::cli::analyze::CaptureReading,
) -> (
    Vec<consentry::exchange::Exchange>,
    consentry::cli::input::InputOutcome,
) {
    let mut attribution = consentry::cli::input::Attribution::new(&case(name), None).unwrap();
    attribution.reading = reading;
    let mut xs = Vec::new();
    let outcome =
        consentry::cli::input::read_input(path, &attribution, &String::new, &mut |x| xs.push(x));
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    xs.sort_by_key(|x| x.at);
    (xs, outcome)
}

/// The keys of `captures/NAME/80211_keys`.
pub fn keys_file(name: &str) -> consentry::net::wpa::KeysFile {
    let text = std::fs::read_to_string(dir(name).join("80211_keys")).unwrap();
    consentry::net::wpa::parse_keys(&text).unwrap()
}

/// The one key of `captures/NAME/80211_keys`, the network's passphrase.
pub fn passphrase_keys(name: &str) -> Vec<consentry::net::wpa::WlanKey> {
    let file = keys_file(name);
    assert!(file.skipped.is_empty());
    assert!(matches!(
        file.keys.as_slice(),
        [consentry::net::wpa::WlanKey::Passphrase { .. }]
    ));
    file.keys
}

/// How to read a capture with the 802.11 `keys`.
pub fn wlan_reading(
    keys: &[consentry::net::wpa::WlanKey],
) -> consentry::cli::analyze::CaptureReading {
    consentry::cli::analyze::CaptureReading {
        wlan_keys: std::sync::Arc::new(consentry::net::wpa::WlanKeys::new(keys)),
        ..Default::default()
    }
}

/// The frames of a read that gave no packet, by kind.
pub fn packet_errors(
    outcome: &consentry::cli::input::InputOutcome,
) -> std::collections::BTreeMap<String, u64> {
    outcome.traffic.as_ref().unwrap().packet_errors.clone()
}

/// Asserts that analysing the capture `file` of `captures/NAME/` with `reading` (one
/// thread) gives the findings its `expected.json` calls for.
pub fn assert_expected_findings(
    name: &str,
    file: &str,
    reading: &consentry::cli::analyze::CaptureReading,
) {
    let run = consentry::cli::analyze::analyze_files_with(
        std::sync::Arc::new(case(name)),
        &[dir(name).join(file)],
        None,
        reading,
        consentry::rules::Options::default(),
        0,
    )
    .unwrap();
    assert_eq!(finding_rows(&run.findings), expected_finding_rows(name));
}

/// The findings the requests of the capture's `expected.json` call for: one each,
/// `share-after-refusal` for a request after the refusal, else `share-before-consent`.
pub fn expected_finding_rows(name: &str) -> Vec<FindingRow> {
    expected(name)["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            let rule = match w["consent"].as_str().unwrap() {
                "after-refusal" => "share-after-refusal",
                _ => "share-before-consent",
            };
            expected_finding_row(w, rule)
        })
        .collect()
}

/// The finding of `rule` that the request `w` of an `expected.json` calls for: its
/// time, the rule and the identifier types it carries.
pub fn expected_finding_row(w: &Value, rule: &str) -> FindingRow {
    let mut types: Vec<&str> = w["identifiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    types.sort();
    (
        w["at"].as_str().unwrap().to_string(),
        rule.to_string(),
        types.join(","),
    )
}

/// Asserts that exchange `x` is the request `w` of an `expected.json`: its time,
/// device, host, method, path (without the query) and the frame that completes it
/// among its evidence frames, with no anomaly.
pub fn assert_is_request(x: &consentry::exchange::Exchange, w: &Value) {
    assert_eq!(x.at.to_string(), w["at"].as_str().unwrap());
    assert_eq!(x.device.as_deref(), w["device"].as_str());
    assert_eq!(Some(x.host.as_str()), w["host"].as_str());
    assert_eq!(Some(x.method.as_str()), w["method"].as_str());
    assert_eq!(x.path.split('?').next(), w["path"].as_str());
    let frame = w["frame"].as_u64().unwrap();
    assert!(
        frames(&x.evidence.locator).contains(&frame),
        "{} does not hold frame {frame}",
        x.evidence.locator
    );
    assert!(x.anomalies.is_empty(), "{:?}", x.anomalies);
}

/// The undecodable frames the capture's `expected.json` lists, counted by kind (its
/// "negative" frames that have one).
pub fn expected_errors(name: &str) -> std::collections::BTreeMap<String, u64> {
    let mut errors = std::collections::BTreeMap::new();
    for n in expected(name)["negative"].as_array().unwrap() {
        if let Some(kind) = n["kind"].as_str() {
            *errors.entry(kind.to_string()).or_default() += 1;
        }
    }
    errors
}

/// A classic little-endian pcap without the records of the given frame numbers
/// (1-based).
pub fn without_frames(pcap: &[u8], drop: &[usize]) -> Vec<u8> {
    let mut out = pcap[..24].to_vec();
    let (mut at, mut number) = (24, 0);
    while at + 16 <= pcap.len() {
        number += 1;
        let len = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap()) as usize;
        let record = &pcap[at..at + 16 + len];
        if !drop.contains(&number) {
            out.extend_from_slice(record);
        }
        at += 16 + len;
    }
    out
}

/// Handshakes with a given key, handshakes with none, frames decrypted.
pub fn wpa_counts(outcome: &consentry::cli::input::InputOutcome) -> (u64, u64, u64) {
    let t = outcome.traffic.as_ref().unwrap();
    (
        t.wlan_handshakes,
        t.wlan_handshakes_unmatched,
        t.wlan_decrypted,
    )
}

/// The HTTP requests: exchanges of a case device with a request read.
pub fn requests(xs: &[consentry::exchange::Exchange]) -> Vec<&consentry::exchange::Exchange> {
    xs.iter()
        .filter(|x| x.device.is_some() && !x.metadata_only)
        .collect()
}

/// Asserts that `xs` are the requests `want` of an `expected.json`, in order.
pub fn assert_requests(xs: &[&consentry::exchange::Exchange], want: &[Value]) {
    assert_eq!(xs.len(), want.len(), "{xs:?}");
    for (x, w) in xs.iter().zip(want) {
        assert_is_request(x, w);
    }
}

/// Asserts that the capture `file` of `captures/NAME/` read with the keys of
/// `keys_line` (a passphrase not the network's) opens nothing: no request, every
/// handshake (`handshakes` of them) matching no key, every protected frame left
/// `wlan-protected` (`expected.json`'s `all_protected_frames`).
pub fn assert_wrong_key_opens_nothing(name: &str, file: &str, keys_line: &str, handshakes: u64) {
    let keys = consentry::net::wpa::parse_keys(keys_line).unwrap().keys;
    let (xs, outcome) = read_with(name, file, wlan_reading(&keys));
    assert!(requests(&xs).is_empty());
    assert_eq!(wpa_counts(&outcome), (0, handshakes, 0));
    let all = expected(name)["all_protected_frames"].as_u64().unwrap();
    let errors = packet_errors(&outcome);
    assert_eq!(
        errors,
        std::collections::BTreeMap::from([("wlan-protected".into(), all)])
    );
}
