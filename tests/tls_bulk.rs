//! The benchmark capture generator (`tests/tls_corpus/bulk.rs`, behind
//! `gen_tls_capture --size`): a small one must be read whole — every connection
//! decrypted with its key log, every request an exchange, the identifier-carrying ones
//! found — so the benchmark measures decryption, not failures.

mod tls_corpus;

use std::sync::Arc;

use consentry::case::DeviceResolver;
use consentry::source::pcap::{read_capture, CaptureOptions};

#[test]
fn a_small_bulk_capture_is_read_whole() {
    let mut pcap = Vec::new();
    let (keylog, sum) = tls_corpus::bulk::write_bulk(3_000_000, &mut pcap).unwrap();
    assert!(pcap.len() as u64 >= 3_000_000);
    assert_eq!(pcap.len() as u64, sum.bytes);
    assert!(sum.connections >= 2, "{sum:?}");
    assert!(sum.with_identifiers > 0, "{sum:?}");
    let case_file = concat!(env!("CARGO_MANIFEST_DIR"), "/captures/tls/consentry.toml");
    let case = consentry::case::load(std::path::Path::new(case_file)).unwrap();
    let opts = CaptureOptions {
        keylogs: vec![Arc::from(keylog.into_bytes())],
        ..CaptureOptions::new("bulk.pcap", DeviceResolver::new(&case))
    };
    let mut list = Vec::new();
    let (summary, error) =
        read_capture(&pcap[..], &opts, &mut |_| {}, &mut |x| list.push(x)).unwrap();
    assert!(error.is_none(), "{error:?}");
    assert_eq!(summary.flows.tls_decrypted, sum.connections);
    assert_eq!(list.len() as u64, sum.requests);
    assert!(list
        .iter()
        .all(|x| !x.metadata_only && x.anomalies.is_empty()));
    let http2 = list.iter().filter(|x| x.http_version.contains('2')).count();
    assert!(http2 > 0 && http2 < list.len(), "{http2} of {}", list.len());
    let carrying = list
        .iter()
        .filter(|x| {
            let body = String::from_utf8_lossy(&x.request_body);
            body.contains(tls_corpus::ADVERTISING_ID)
        })
        .count() as u64;
    assert_eq!(carrying, sum.with_identifiers);
}
