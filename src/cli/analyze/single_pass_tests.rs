//! The single-pass analysis ([`Passes::One`]) against the two-pass one it replaced
//! ([`Passes::Two`], final ids from the start): the whole run must be the same, for
//! every sample capture and for captures that exercise every text an exchange id
//! reaches (wire consent evidence, conflicts, `signal-ignored` summaries, request
//! lines), gzip'd, truncated, damaged, and several in one run.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{analyze_inputs, AnalysisRun, CaptureReading, Passes};
use crate::cli::final_ids;
use crate::consent::EventSource;
use crate::exchange::Exchange;
use crate::net::provisional_id::ProvisionalIds;
use crate::rules::Options;

fn captures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("captures")
}

fn run(
    case: &Path,
    files: &[PathBuf],
    keylogs: &[Arc<[u8]>],
    workers: usize,
    passes: Passes,
) -> AnalysisRun {
    let case = Arc::new(crate::case::load(case).unwrap());
    let reading = CaptureReading {
        keylogs: keylogs.to_vec(),
        ..CaptureReading::default()
    };
    analyze_inputs(
        case,
        files,
        None,
        &reading,
        Options::default(),
        workers,
        passes,
    )
    .unwrap()
}

/// The run as text, field by field, so a difference names its field.
fn fields(run: &AnalysisRun) -> [(&'static str, String); 4] {
    let json = |v: serde_json::Result<String>| v.unwrap();
    [
        (
            "findings",
            json(serde_json::to_string_pretty(&run.findings)),
        ),
        ("consent", json(serde_json::to_string_pretty(&run.consent))),
        ("summary", json(serde_json::to_string_pretty(&run.summary))),
        (
            "request_lines",
            json(serde_json::to_string_pretty(&run.request_lines)),
        ),
    ]
}

/// Runs both ways (on the calling thread and with a worker, with direct I/O and
/// through the page cache) and compares; returns the single-pass run.
fn same_both_ways(case: &Path, files: &[PathBuf], keylogs: &[Arc<[u8]>]) -> AnalysisRun {
    let two = run(case, files, keylogs, 0, Passes::Two);
    let mut last = None;
    for (workers, direct_io) in [(0, true), (1, true), (0, false)] {
        let one = run(case, files, keylogs, workers, Passes::One { direct_io });
        for ((name, a), (_, b)) in fields(&one).iter().zip(fields(&two).iter()) {
            assert!(
                a == b,
                "{files:?} -j{} direct I/O {direct_io}: {name} differ:\n{a}\n---\n{b}",
                workers + 1
            );
        }
        last = Some(one);
    }
    last.unwrap()
}

#[test]
fn every_sample_capture_gives_the_two_pass_run() {
    let dir = captures();
    let keylog = |name: &str| -> Arc<[u8]> { Arc::from(std::fs::read(dir.join(name)).unwrap()) };
    // Directory, files of one run, key logs.
    type Run<'a> = (&'a str, &'a [&'a str], Vec<Arc<[u8]>>);
    let cases: [Run<'_>; 10] = [
        ("gateway", &["gateway.pcap"], vec![]),
        ("gateway", &["gateway.pcapng"], vec![]),
        ("gateway", &["gateway.pcap", "gateway.pcapng"], vec![]),
        ("tls", &["tls.pcap"], vec![keylog("tls/tls.keylog")]),
        ("tls", &["tls.pcap", "tls.pcapng", "tls-dsb.pcapng"], vec![]),
        ("tls", &["plain.pcap"], vec![]),
        ("tls", &["openssl.pcap"], vec![keylog("tls/openssl.keylog")]),
        ("tls", &["openssl-plain.pcap"], vec![]),
        ("quic", &["quic.pcap"], vec![]),
        ("demo", &["demo.har"], vec![]),
    ];
    for (sub, files, keylogs) in cases {
        let case = dir.join(sub).join("consentry.toml");
        let files: Vec<PathBuf> = files.iter().map(|f| dir.join(sub).join(f)).collect();
        let one = same_both_ways(&case, &files, &keylogs);
        assert!(
            one.summary.input_errors.is_empty(),
            "{:?}",
            one.summary.input_errors
        );
        assert_eq!(one.summary.inputs.len(), files.len());
    }
}

/// A pcap of the demo HAR's requests, as plain HTTP from the case's phone, plus a
/// US Privacy signal that contradicts the user's refusal (a consent conflict).
fn demo_capture() -> Vec<u8> {
    let har = captures().join("demo/demo.har");
    let mut exchanges: Vec<Exchange> = Vec::new();
    let opts = crate::source::HarOptions::new("demo.har", Some("0".repeat(64)));
    crate::source::read_har(std::fs::File::open(har).unwrap(), &opts, |x| {
        exchanges.push(x);
        Ok::<(), std::convert::Infallible>(())
    })
    .unwrap();
    let mut conflict = exchanges[0].clone();
    conflict.at = crate::timestamp::Timestamp::from_micros(conflict.at.micros() + 100_000_000);
    conflict.path = "/v1/privacy/consent?us_privacy=1YNN".into();
    exchanges.push(conflict);
    let mut pcap = Pcap::new();
    for (i, x) in exchanges.iter().enumerate() {
        let mut head = format!("{} {} HTTP/1.1\r\nHost: {}\r\n", x.method, x.path, x.host);
        for h in &x.request_headers {
            let name = h.name.to_ascii_lowercase();
            if ["host", "content-length", "transfer-encoding", "connection"]
                .contains(&name.as_str())
                || name.starts_with(':')
            {
                continue;
            }
            head.push_str(&format!(
                "{}: {}\r\n",
                h.name,
                String::from_utf8_lossy(&h.value)
            ));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", x.request_body.len()));
        let mut request = head.into_bytes();
        request.extend_from_slice(&x.request_body);
        let port = 40000 + i as u16;
        pcap.connection(
            x.at.micros(),
            port,
            &request,
            b"HTTP/1.1 204 No Content\r\n\r\n",
        );
    }
    pcap.bytes
}

/// A classic pcap of Ethernet/IPv4/TCP connections between the demo phone and one
/// server (checksums zero: the decoder does not check them).
struct Pcap {
    bytes: Vec<u8>,
}

impl Pcap {
    fn new() -> Self {
        let mut bytes = 0xa1b2_c3d4u32.to_le_bytes().to_vec();
        bytes.extend_from_slice(&[2, 0, 4, 0]);
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(&65535u32.to_le_bytes());
        bytes.extend_from_slice(&1u32.to_le_bytes());
        Pcap { bytes }
    }

    /// One TCP segment; `tcp` is sequence number, acknowledgement number, flags.
    fn segment(
        &mut self,
        micros: i64,
        to_server: bool,
        port: u16,
        tcp: (u32, u32, u8),
        data: &[u8],
    ) {
        let (seq, ack, flags) = tcp;
        let (client, server) = ([192, 168, 50, 23], [203, 0, 113, 9]);
        let (src, dst, sport, dport) = if to_server {
            (client, server, port, 80)
        } else {
            (server, client, 80, port)
        };
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
        let total = (20 + 20 + data.len()) as u16;
        f.extend_from_slice(&[0x45, 0]);
        f.extend_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&[0, 1, 0x40, 0, 64, 6, 0, 0]);
        f.extend_from_slice(&src);
        f.extend_from_slice(&dst);
        f.extend_from_slice(&sport.to_be_bytes());
        f.extend_from_slice(&dport.to_be_bytes());
        f.extend_from_slice(&seq.to_be_bytes());
        f.extend_from_slice(&ack.to_be_bytes());
        f.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        f.extend_from_slice(data);
        let (secs, us) = (
            micros.div_euclid(1_000_000) as u32,
            micros.rem_euclid(1_000_000) as u32,
        );
        self.bytes.extend_from_slice(&secs.to_le_bytes());
        self.bytes.extend_from_slice(&us.to_le_bytes());
        self.bytes
            .extend_from_slice(&(f.len() as u32).to_le_bytes());
        self.bytes
            .extend_from_slice(&(f.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(&f);
    }

    /// Handshake, one request, one response, both sides closed.
    fn connection(&mut self, at: i64, port: u16, request: &[u8], response: &[u8]) {
        const SYN: u8 = 0x02;
        const ACK: u8 = 0x10;
        const PSH_ACK: u8 = 0x18;
        const FIN_ACK: u8 = 0x11;
        let (c, s) = (1000u32, 5000u32);
        let (cq, sq) = (request.len() as u32, response.len() as u32);
        self.segment(at - 3, true, port, (c, 0, SYN), &[]);
        self.segment(at - 2, false, port, (s, c + 1, SYN | ACK), &[]);
        self.segment(at - 1, true, port, (c + 1, s + 1, ACK), &[]);
        self.segment(at, true, port, (c + 1, s + 1, PSH_ACK), request);
        self.segment(at + 1, false, port, (s + 1, c + 1 + cq, PSH_ACK), response);
        self.segment(at + 2, true, port, (c + 1 + cq, s + 1 + sq, FIN_ACK), &[]);
        self.segment(at + 3, false, port, (s + 1 + sq, c + 2 + cq, FIN_ACK), &[]);
    }
}

/// Bytes that do not compress (a linear congruential generator's high bytes).
fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 56) as u8
        })
        .collect()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn wire_evidence_conflicts_and_damaged_files_get_the_final_ids() {
    let dir = tempfile::tempdir().unwrap();
    let case = captures().join("demo/consentry.toml");
    let pcap = demo_capture();
    let plain = write(dir.path(), "demo.pcap", &pcap);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&pcap).unwrap();
    let gzipped = gz.finish().unwrap();
    // Half-way into the capture's deflate data: past what type detection reads.
    let damage_at = gzipped.len() / 2;
    let gzipped = write(dir.path(), "demo.pcap.gz", &gzipped);
    // Cut inside the last record: a truncated capture (a warning, not an error).
    let truncated = write(dir.path(), "cut.pcap", &pcap[..pcap.len() - 7]);
    // A record header claiming 3 GB, two thirds in: a damaged capture (an error
    // after the exchanges before it; the rest, more than any read buffer, must
    // still be hashed).
    let mut damaged = pcap.clone();
    damaged.extend(noise(4 << 20));
    let mut at = 24;
    while at < pcap.len() * 2 / 3 {
        let caplen = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap());
        at += 16 + caplen as usize;
    }
    damaged[at + 8..at + 12].copy_from_slice(&3_000_000_000u32.to_le_bytes());
    let damaged = write(dir.path(), "damaged.pcap", &damaged);
    // A gzip stream damaged early, with megabytes after the damage.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&pcap).unwrap();
    gz.write_all(&noise(4 << 20)).unwrap();
    let mut bad_gzip = gz.finish().unwrap();
    for b in &mut bad_gzip[damage_at..damage_at + 64] {
        *b ^= 0x5a;
    }
    let bad_gzip = write(dir.path(), "bad.pcap.gz", &bad_gzip);
    let outcome = same_both_ways(&case, std::slice::from_ref(&bad_gzip), &[]);
    assert!(
        !outcome.summary.input_errors.is_empty() && outcome.summary.inputs.len() == 1,
        "the damaged gzip stream reads to its end: {:?}",
        outcome.summary
    );

    let one = same_both_ways(&case, std::slice::from_ref(&plain), &[]);
    // The capture reaches every text an id goes into, or this test proves little.
    let wire: Vec<_> = one
        .consent
        .iter()
        .filter(|e| e.source == EventSource::Wire)
        .collect();
    assert!(!wire.is_empty(), "no wire consent event");
    assert!(wire
        .iter()
        .all(|e| e.evidence.as_deref().is_some_and(|t| t.contains(" of x-"))));
    assert!(
        one.summary
            .consent_conflict_examples
            .iter()
            .any(|c| c.contains(" of x-")),
        "no conflict example: {:?}",
        one.summary.consent_conflict_examples
    );
    assert!(
        one.findings
            .iter()
            .any(|f| f.rule.as_str() == "signal-ignored" && f.summary.contains(" of x-")),
        "no signal-ignored finding citing an exchange"
    );
    assert!(one.findings.iter().any(|f| f
        .consent
        .event
        .as_ref()
        .and_then(|e| e.note.as_deref())
        .is_some_and(|n| n.contains(" of x-"))));
    assert!(!one.request_lines.is_empty());

    for files in [
        vec![gzipped.clone()],
        vec![truncated.clone()],
        vec![damaged.clone()],
        vec![bad_gzip.clone()],
        // Several files in one run: the same bytes plain and gzip'd share their ids.
        vec![plain.clone(), gzipped, truncated, damaged, bad_gzip, plain],
    ] {
        let one = same_both_ways(&case, &files, &[]);
        assert_eq!(one.summary.inputs.len(), files.len());
        // Captures are listed in the order they are read (their first packets, then
        // their names), not the order given: match each by its path.
        for path in &files {
            let input = one
                .summary
                .inputs
                .iter()
                .find(|i| Path::new(&i.path) == path.as_path())
                .unwrap_or_else(|| panic!("{} not listed", path.display()));
            assert_eq!(input.sha256, crate::source::file_sha256(path).unwrap());
        }
    }
}

#[test]
fn findings_of_an_input_that_cannot_be_hashed_are_dropped() {
    let two = run(
        &captures().join("gateway/consentry.toml"),
        &[captures().join("gateway/gateway.pcap")],
        &[],
        0,
        Passes::Two,
    );
    assert!(two.findings.len() > 2);
    let ids = ProvisionalIds::with_nonce([7; 16]);
    let (a, b) = (ids.input(0).id(3, 4), ids.input(1).id(5, u64::MAX));
    let mut findings = two.findings.clone();
    findings[0].exchange = a.clone();
    findings[1].exchange = b.clone();
    let mut consent = two.consent.clone();
    consent[0].evidence = Some(format!("TC string at query:x of {b}"));
    let mut conflicts = vec![format!("{a} and {b}")];
    let mut lines = vec![
        (a.clone(), "GET a".to_string()),
        (b.clone(), "GET b".to_string()),
    ];
    let sha = "ab".repeat(32);
    let dropped = final_ids::finalize(
        &ids,
        &[Some(sha.clone()), None],
        final_ids::RunTexts {
            findings: &mut findings,
            consent: &mut consent,
            conflict_examples: &mut conflicts,
            request_lines: &mut lines,
        },
    );
    assert_eq!(dropped, vec![0, 1]);
    assert_eq!(findings.len(), two.findings.len() - 1);
    let final_a = crate::net::tap::exchange_id_from(&crate::net::tap::id_seed(Some(&sha)), 3, 4);
    assert_eq!(findings[0].exchange, final_a);
    let mut want = findings[0].clone();
    want.refresh_id();
    assert_eq!(findings[0].id, want.id);
    assert_ne!(findings[0].id, two.findings[0].id);
    assert_eq!(lines, vec![(final_a.clone(), "GET a".to_string())]);
    let unreadable = "(an exchange of unreadable input 2)";
    assert_eq!(conflicts, vec![format!("{final_a} and {unreadable}")]);
    assert_eq!(
        consent[0].evidence.as_deref(),
        Some(format!("TC string at query:x of {unreadable}").as_str())
    );
    for text in conflicts.iter().chain(consent[0].evidence.iter()) {
        assert!(!ids.marks(text));
    }
}

#[test]
fn nonces_differ_between_runs() {
    let (a, b) = (
        final_ids::fresh_ids().unwrap(),
        final_ids::fresh_ids().unwrap(),
    );
    assert_ne!(a.input(0).id(1, 1), b.input(0).id(1, 1));
}

#[test]
fn a_leftover_provisional_id_is_seen_anywhere_in_the_run() {
    let case = captures().join("gateway/consentry.toml");
    let files = [captures().join("gateway/gateway.pcap")];
    let ids = ProvisionalIds::with_nonce([9; 16]);
    let left = ids.input(0).id(1, 2);
    assert!(!final_ids::any_left(
        &ids,
        &run(&case, &files, &[], 0, Passes::Two)
    ));
    let edits: [fn(&mut AnalysisRun, &str); 4] = [
        |r, id| r.findings[0].summary.push_str(id),
        |r, id| r.findings[1].data[0].location = id.to_string(),
        |r, id| r.summary.input_errors.push(id.to_string()),
        |r, id| {
            r.request_lines.insert(id.to_string(), String::new());
        },
    ];
    for edit in edits {
        let mut r = run(&case, &files, &[], 0, Passes::Two);
        edit(&mut r, &left);
        assert!(final_ids::any_left(&ids, &r));
    }
}
