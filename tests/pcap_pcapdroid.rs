//! The PCAPdroid sample captures (`captures/pcapdroid/`, written by
//! `make_pcapdroid.py`): one phone's traffic as PCAPdroid saves it with its dump
//! extensions, a pcap file with a trailer after every packet and a pcapng file with
//! UID mapping blocks and packet comments. Every exchange must name the app that made
//! it; only the case's app and PCAPdroid's "unknown" UID are judged, unless
//! `--all-apps`; a trailer with a bad CRC-32 gives no app.

use std::process::Command;
use std::sync::Arc;

use consentry::cli::analyze::{analyze_files_with, CaptureReading};
use consentry::exchange::Exchange;
use serde_json::Value;

#[path = "common/sample.rs"]
mod sample;

const NAME: &str = "pcapdroid";
const FILES: [&str; 2] = ["pcapdroid.pcap", "pcapdroid.pcapng"];

fn read(file: &str) -> (Vec<Exchange>, consentry::cli::input::InputOutcome) {
    sample::read_with(NAME, file, CaptureReading::default())
}

/// The expected exchanges, by time.
fn expected_exchanges() -> Vec<Value> {
    let mut want = sample::expected(NAME)["exchanges"]
        .as_array()
        .unwrap()
        .clone();
    want.sort_by_key(|w| w["at"].as_str().unwrap().to_string());
    want
}

#[test]
fn every_exchange_names_its_app() {
    let want = expected_exchanges();
    for file in FILES {
        let (xs, _) = read(file);
        assert_eq!(xs.len(), want.len(), "{file}");
        for (x, w) in xs.iter().zip(&want) {
            let app = x
                .app
                .as_ref()
                .unwrap_or_else(|| panic!("{file}: {} has no app", x.id));
            assert_eq!(x.at.to_string(), w["at"].as_str().unwrap(), "{file}");
            assert_eq!(x.host, w["host"].as_str().unwrap(), "{file}");
            assert_eq!(
                i64::from(app.uid),
                w["uid"].as_i64().unwrap(),
                "{file}: {}",
                x.host
            );
            let judged = w["judged"].as_bool().unwrap();
            // The pcap trailer has no package and a label cut to 19 bytes; the pcapng
            // mapping has both in full.
            if file.ends_with(".pcapng") {
                assert_eq!(app.package.as_deref(), w["package"].as_str(), "{file}");
                assert_eq!(app.name.as_deref(), w["label"].as_str(), "{file}");
            } else {
                assert_eq!(app.package, None, "{file}");
                assert_eq!(app.name.as_deref(), w["trailer_label"].as_str(), "{file}");
            }
            // UID -1 may be any app: judged, as is the case's app.
            let want_under_test = if app.uid == -1 { None } else { Some(judged) };
            assert_eq!(app.under_test, want_under_test, "{file}: {}", x.host);
            assert_eq!(x.of_another_app(), !judged, "{file}: {}", x.host);
            assert_eq!(x.device.as_deref(), Some("phone"));
        }
    }
}

#[test]
fn summary_counts_exchanges_per_app_and_the_bad_trailer() {
    let expected = sample::expected(NAME);
    let apps = expected["apps"].as_object().unwrap();
    for file in FILES {
        let (_, outcome) = read(file);
        let t = outcome.traffic.as_ref().unwrap();
        assert_eq!(t.apps.len(), apps.len(), "{file}");
        for a in &t.apps {
            let w = &apps[&a.app.uid.to_string()];
            assert_eq!(
                a.exchanges,
                w["exchanges"].as_u64().unwrap(),
                "{file}: {}",
                a.app.uid
            );
        }
        // Busiest first.
        assert!(t.apps.windows(2).all(|p| p[0].exchanges >= p[1].exchanges));
        let others: u64 = apps
            .values()
            .filter(|w| w["judged"] == false)
            .map(|w| w["exchanges"].as_u64().unwrap())
            .sum();
        assert_eq!(t.other_app_exchanges, others, "{file}");
        assert!(!t.other_apps_judged);
        let bad_fcs = outcome
            .warnings
            .iter()
            .any(|w| w.contains("CRC-32 does not match"));
        assert_eq!(
            bad_fcs,
            file.ends_with(".pcap"),
            "{file}: {:?}",
            outcome.warnings
        );
        assert!(
            outcome
                .notes
                .iter()
                .any(|n| n.contains("of other apps than the case's, listed but not judged")),
            "{file}: {:?}",
            outcome.notes
        );
    }
}

/// (time, rule, identifier types) of the findings the expected exchanges call for:
/// `rules` when the case's app alone is judged, `rules_all_apps` with `--all-apps`.
fn expected_rows(key: &str) -> Vec<sample::FindingRow> {
    let mut rows: Vec<sample::FindingRow> = expected_exchanges()
        .iter()
        .flat_map(|w| {
            w[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|rule| sample::expected_finding_row(w, rule.as_str().unwrap()))
        })
        .collect();
    rows.sort();
    rows
}

fn findings(file: &str, all_apps: bool) -> Vec<consentry::rules::Finding> {
    let reading = CaptureReading {
        all_apps,
        ..CaptureReading::default()
    };
    let run = analyze_files_with(
        Arc::new(sample::case(NAME)),
        &[sample::dir(NAME).join(file)],
        None,
        &reading,
        consentry::rules::Options::default(),
        0,
    )
    .unwrap();
    run.findings
}

#[test]
fn only_the_case_app_is_judged_unless_all_apps() {
    for file in FILES {
        let judged = findings(file, false);
        let mut rows = sample::finding_rows(&judged);
        rows.sort();
        assert_eq!(rows, expected_rows("rules"), "{file}");
        assert!(judged
            .iter()
            .all(|f| f.app.as_ref().is_some_and(|a| a.under_test != Some(false))));

        let all = findings(file, true);
        let mut rows = sample::finding_rows(&all);
        rows.sort();
        assert_eq!(rows, expected_rows("rules_all_apps"), "{file}");
        assert!(all.len() > judged.len());
        // Each finding names its app; the other apps' are marked as such.
        let others: Vec<&str> = all
            .iter()
            .filter(|f| f.app.as_ref().is_some_and(|a| a.under_test == Some(false)))
            .map(|f| f.destination.host.as_str())
            .collect();
        assert_eq!(others.len(), all.len() - judged.len(), "{file}: {others:?}");
    }
}

#[test]
fn a_damaged_trailer_gives_no_app_and_loses_no_traffic() {
    let expected = sample::expected(NAME);
    let bad: Vec<u64> = expected["bad_fcs_frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(bad.len(), 1);
    // Without the frame, the same exchanges, and no warning.
    let pcap = std::fs::read(sample::dir(NAME).join("pcapdroid.pcap")).unwrap();
    let without = sample::without_frames(&pcap, &[bad[0] as usize]);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("without.pcap");
    std::fs::write(&path, &without).unwrap();
    let (xs, outcome) = sample::read_path_with(NAME, &path, CaptureReading::default());
    let (with, _) = read("pcapdroid.pcap");
    assert_eq!(xs.len(), with.len());
    assert!(outcome.warnings.is_empty(), "{:?}", outcome.warnings);
    // Every trailer damaged: the packets are still read, with no app.
    let mut damaged = pcap.clone();
    let mut at = 24;
    while at + 16 <= damaged.len() {
        let len = u32::from_le_bytes(damaged[at + 8..at + 12].try_into().unwrap()) as usize;
        let end = at + 16 + len;
        damaged[end - 1] ^= 0xff;
        at = end;
    }
    let path = tmp.path().join("damaged.pcap");
    std::fs::write(&path, &damaged).unwrap();
    let (xs, outcome) = sample::read_path_with(NAME, &path, CaptureReading::default());
    assert_eq!(xs.len(), with.len());
    assert!(xs.iter().all(|x| x.app.is_none()));
    assert!(outcome.traffic.as_ref().unwrap().apps.is_empty());
    assert!(
        outcome
            .warnings
            .iter()
            .any(|w| w.contains("79 frames carry a PCAPdroid trailer whose CRC-32 does not match")),
        "{:?}",
        outcome.warnings
    );
}

#[test]
fn cli_prints_the_apps_and_the_all_apps_switch() {
    let dir = sample::dir(NAME);
    let analyze = ["analyze", "pcapdroid.pcapng", "--case", "consentry.toml"];
    let run = |extra: &[&str]| consentry_in(&dir, &[&analyze[..], extra].concat());
    let table = run(&[]);
    assert!(
        table.contains("\napps (PCAPdroid): com.example.shop 3, com.example.weather 2, unknown 1,"),
        "{table}"
    );
    assert!(
        table.contains("\n3 exchanges of other apps, not analysed (see --all-apps)\n"),
        "{table}"
    );
    // `exchanges` gains an app column for such captures.
    let list = consentry_in(
        &dir,
        &["exchanges", "pcapdroid.pcapng", "--case", "consentry.toml"],
    );
    let mut lines = list.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("time (UTC)                  device     app    "));
    let gms = lines.find(|l| l.contains("app-measurement.com")).unwrap();
    assert!(gms.contains(" com.google.android.gms "), "{list}");
    let all = run(&["--all-apps", "--format", "json"]);
    let v: Value = serde_json::from_str(&all).unwrap();
    assert_eq!(v["summary"]["traffic"]["other_app_exchanges"], 3);
    assert_eq!(v["summary"]["traffic"]["other_apps_judged"], true);
    let gms = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["destination"]["host"] == "app-measurement.com")
        .expect("Google Play services' finding with --all-apps");
    assert_eq!(
        gms["app"],
        serde_json::json!({"uid": 10045, "package": "com.google.android.gms",
                           "name": "Google Play services", "under_test": false})
    );
}

/// `consentry` with `args` in case directory `dir`; its standard output.
fn consentry_in(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_consentry"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_case_store_keeps_each_exchanges_app() {
    let capture = sample::dir(NAME).join("pcapdroid.pcapng");
    let capture = capture.to_str().unwrap();
    let case = sample::dir(NAME).join("consentry.toml");
    for (all_apps, findings) in [(false, 4), (true, 7)] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        consentry_in(dir, &["init", ".", "--from-case", case.to_str().unwrap()]);
        let mut ingest = vec!["ingest", capture];
        if all_apps {
            ingest.push("--all-apps");
        }
        consentry_in(dir, &ingest);
        let stored: Vec<Value> = consentry_in(dir, &["exchanges", "--format", "jsonl"])
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(stored.len(), 7);
        let others = stored
            .iter()
            .filter(|x| x["app"]["under_test"] == false)
            .count();
        assert_eq!(others, 3);
        assert!(stored.iter().all(|x| x["app"]["uid"].is_i64()));
        let found = consentry_in(dir, &["findings", "--format", "jsonl"]);
        assert_eq!(
            found.lines().count(),
            findings,
            "--all-apps {all_apps}: {found}"
        );
        consentry_in(dir, &["verify"]);
        let report = consentry_in(dir, &["report", "--format", "md"]);
        assert!(
            report.contains("The captures name the Android app of each connection"),
            "{report}"
        );
    }
}

#[test]
fn a_bad_mapping_block_is_a_warning_with_its_offset() {
    // The first UID mapping block, its version field made 7.
    let mut pcapng = std::fs::read(sample::dir(NAME).join("pcapdroid.pcapng")).unwrap();
    let mut at = 0;
    let end = loop {
        let btype = u32::from_le_bytes(pcapng[at..at + 4].try_into().unwrap());
        let len = u32::from_le_bytes(pcapng[at + 4..at + 8].try_into().unwrap()) as usize;
        if btype == 0x0bad {
            pcapng[at + 12] = 7;
            break at + len;
        }
        at += len;
    };
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bad-block.pcapng");
    std::fs::write(&path, &pcapng).unwrap();
    let (xs, outcome) = sample::read_path_with(NAME, &path, CaptureReading::default());
    let want = format!(
        "1 PCAPdroid blocks could not be read, the first: PCAPdroid block version 7 is not known (block ending at byte offset {end})"
    );
    assert!(
        outcome.warnings.iter().any(|w| w.contains(&want)),
        "{:?}",
        outcome.warnings
    );
    // Everything is still read; the app whose names were lost is judged (it cannot
    // be told from the case's), the others keep theirs.
    assert_eq!(xs.len(), expected_exchanges().len());
    let shop: Vec<_> = xs
        .iter()
        .filter_map(|x| x.app.as_ref())
        .filter(|a| a.uid == 10123)
        .collect();
    assert_eq!(shop.len(), 3);
    assert!(shop
        .iter()
        .all(|a| a.package.is_none() && a.under_test.is_none()));
    assert_eq!(xs.iter().filter(|x| x.of_another_app()).count(), 3);
}
