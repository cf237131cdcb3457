//! Golden pipeline tests: each capture in `captures/` runs through the whole pipeline
//! and its findings must equal the checked-in `.findings.jsonl` byte for byte.
//! Regenerate after an intended change with `CONSENTRY_BLESS=1 cargo test --test golden`
//! and review the diff.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use consentry::cli::analyze::{analyze_files_with, CaptureReading};
use consentry::report::write_jsonl;
use consentry::rules::Options;

fn captures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("captures")
}

fn run_golden(dir: &str, capture: &str, device: Option<&str>) {
    run_golden_reading(dir, capture, device, CaptureReading::default());
}

/// [`run_golden_reading`] of a Wi-Fi capture decrypted with the keys of its
/// directory's `80211_keys`.
fn run_golden_with_its_keys(dir: &str, capture: &str) {
    let keys = std::fs::read_to_string(captures().join(dir).join("80211_keys")).unwrap();
    let keys = consentry::net::wpa::parse_keys(&keys).unwrap().keys;
    let reading = CaptureReading {
        wlan_keys: Arc::new(consentry::net::wpa::WlanKeys::new(&keys)),
        ..CaptureReading::default()
    };
    run_golden_reading(dir, capture, None, reading);
}

fn run_golden_reading(dir: &str, capture: &str, device: Option<&str>, reading: CaptureReading) {
    let dir = captures().join(dir);
    let case = Arc::new(consentry::case::load(&dir.join("consentry.toml")).expect("case file"));
    let findings = |workers: usize| {
        let run = analyze_files_with(
            case.clone(),
            &[dir.join(capture)],
            device.map(str::to_string),
            &reading,
            Options::default(),
            workers,
        )
        .expect("analysis");
        assert!(
            run.summary.input_errors.is_empty(),
            "{:?}",
            run.summary.input_errors
        );
        let mut out = Vec::new();
        write_jsonl(&run.findings, &mut out).unwrap();
        out
    };
    let got = findings(0);
    // The same findings, byte for byte, whatever the number of threads.
    for workers in [1, 3] {
        assert!(
            findings(workers) == got,
            "{capture}: findings with {workers} worker threads differ from one thread"
        );
    }
    // `upload.pcap.gz` has `upload.findings.jsonl`.
    let golden = dir.join(
        capture
            .trim_end_matches(".gz")
            .rsplit_once('.')
            .map_or(capture, |(stem, _)| stem)
            .to_string()
            + ".findings.jsonl",
    );
    if std::env::var_os("CONSENTRY_BLESS").is_some() {
        std::fs::write(&golden, &got).unwrap();
        return;
    }
    let want = std::fs::read(&golden)
        .unwrap_or_else(|e| panic!("{}: {e} (run with CONSENTRY_BLESS=1)", golden.display()));
    if got != want {
        let got = String::from_utf8_lossy(&got);
        let want = String::from_utf8_lossy(&want);
        for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
            assert_eq!(g, w, "first difference at line {}", i + 1);
        }
        assert_eq!(
            got.lines().count(),
            want.lines().count(),
            "number of findings differs"
        );
    }
}

#[test]
fn wpa2_lab_network_decrypted_with_its_passphrase() {
    run_golden_with_its_keys("wpa2", "wpa2.pcap");
}

#[test]
fn tkip_mixed_mode_lab_network_decrypted_with_its_passphrase() {
    run_golden_with_its_keys("tkip", "tkip.pcap");
}

#[test]
fn gcmp_lab_network_decrypted_with_its_passphrase() {
    run_golden_with_its_keys("gcmp", "gcmp.pcap");
}

#[test]
fn ft_lab_network_decrypted_across_a_roam() {
    run_golden_with_its_keys("ft", "ft.pcap");
}

#[test]
fn frag_lab_network_put_together_from_its_fragments() {
    run_golden_with_its_keys("frag", "frag.pcap");
}

#[test]
fn wep_lab_network_decrypted_with_its_key() {
    run_golden_with_its_keys("wep", "wep.pcap");
}

#[test]
fn wpa3_lab_network_decrypted_with_the_sae_pmk_and_the_passphrase() {
    run_golden_with_its_keys("wpa3", "wpa3.pcap");
}

#[test]
fn demo_first_launch() {
    run_golden("demo", "demo.har", None);
}

#[test]
fn gateway_span_port() {
    run_golden("gateway", "gateway.pcapng", None);
}

/// The phone's own system traffic beside the app's: only the app's is judged.
#[test]
fn gateway_platform_services() {
    run_golden("gateway", "platform.pcap", None);
}

/// SDKs resolving through HTTP DNS APIs: the names judged, the connections to the
/// answered addresses named by them.
#[test]
fn gateway_http_dns_lookups() {
    run_golden("gateway", "httpdns.pcap", None);
}

/// An identifier in an HTTP/1.1 trailer field, after a chunked body.
#[test]
fn gateway_http1_trailer_fields() {
    run_golden("gateway", "trailers.pcap", None);
}

/// A WebSocket upgrade whose `Connection` options come in two lines, its first
/// message sent before the `101`.
#[test]
fn gateway_websocket_upgrade_over_two_connection_lines() {
    run_golden("gateway", "wsupgrade.pcap", None);
}

/// A request written into a CONNECT tunnel before the proxy's `200`.
#[test]
fn gateway_request_sent_into_a_connect_tunnel_before_its_answer() {
    run_golden("gateway", "connectearly.pcap", None);
}

/// Two 9 MiB uploads whose identifiers lie past the 8 MiB the analysis keeps.
#[test]
fn gateway_uploads_past_the_analysis_cap() {
    run_golden("gateway", "upload.pcap.gz", None);
}

/// Two compressed uploads whose identifiers lie in their tails, past the 8 MiB kept.
#[test]
fn gateway_compressed_uploads_past_the_analysis_cap() {
    run_golden("gateway", "gzupload.pcap.gz", None);
}

/// A zstd upload whose identifier lies in its tail, and a zstd block bomb.
#[test]
fn gateway_zstd_uploads() {
    run_golden("gateway", "zstdupload.pcap.gz", None);
}

/// A compressed WebSocket message that inflates past the 8 MiB the analysis keeps.
#[test]
fn gateway_compressed_websocket_message_past_the_analysis_cap() {
    run_golden("gateway", "wsdeflate.pcap", None);
}

#[test]
fn tunnels_mirror_and_mobile_core() {
    run_golden("tunnels", "tunnels.pcap", None);
}

#[test]
fn wifi_monitor_mode() {
    run_golden("wifi", "wifi.pcap", None);
}

#[test]
fn pcapdroid_apps_of_one_phone() {
    run_golden("pcapdroid", "pcapdroid.pcapng", None);
}

#[test]
fn rawtcp_sdks_speaking_their_own_protocols() {
    run_golden("rawtcp", "rawtcp.pcap", None);
}

#[test]
fn netns_real_stacks_with_lost_and_resent_segments() {
    run_golden("netns", "netns.pcap", None);
}

#[test]
fn quic_http3_decrypted_with_the_secrets_in_the_capture() {
    run_golden("quic", "h3_dsb.pcapng", None);
}
