//! A capture split into several files — the live tap's evidence ring, `tcpdump -C`,
//! `editcap -c` — is read as one capture when its files are given in order: the
//! connections cut by a split are read whole, and the findings are those of the
//! capture in one file. Files that do not continue one another (the same traffic
//! twice, files out of order) are each a capture of their own.
//!
//! The split files are written here from the sample captures: pcap chunks of a few
//! packets (as `editcap -c` would cut them), and the live tap's own ring writer fed
//! the TLS capture whose key log travels in a Decryption Secrets Block.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use consentry::case::Case;
use consentry::cli::analyze::{analyze_files, AnalysisRun};
use consentry::cli::capture_order::{in_capture_order, reordered_note};
use consentry::cli::input::{Attribution, InputFiles, InputOutcome};
use consentry::exchange::Exchange;
use consentry::net::capture::{CaptureEvent, CaptureReader};
use consentry::rules::Options;
use consentry::source::ring::{secrets_block, EvidenceRing, RingLimits};
use consentry::timestamp::Timestamp;

fn captures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("captures")
}

fn case(dir: &str) -> Arc<Case> {
    Arc::new(consentry::case::load(&captures().join(dir).join("consentry.toml")).unwrap())
}

fn analyse(case: &Arc<Case>, files: &[PathBuf]) -> AnalysisRun {
    let run = analyze_files(case.clone(), files, None, Options::default(), 0).unwrap();
    assert!(
        run.summary.input_errors.is_empty(),
        "{:?}",
        run.summary.input_errors
    );
    run
}

/// The findings of a run without the ids that derive from the files' hashes, sorted.
fn findings(run: &AnalysisRun) -> Vec<String> {
    let mut list: Vec<String> = run
        .findings
        .iter()
        .map(|f| {
            let mut v = serde_json::to_value(f).unwrap();
            let o = v.as_object_mut().unwrap();
            o.remove("id");
            o.remove("exchange");
            v.to_string()
        })
        .collect();
    list.sort();
    list
}

/// The exchanges of `files` read in order, and each file's outcome.
fn exchanges(case: &Case, files: &[PathBuf]) -> (Vec<Exchange>, Vec<InputOutcome>) {
    let attribution = Attribution::new(case, None).unwrap();
    let mut inputs = InputFiles::new(&attribution);
    let mut list = Vec::new();
    for f in files {
        inputs.read(f, &String::new, &mut |x| list.push(x));
    }
    let outcomes = inputs.finish(&mut |x| list.push(x));
    (list, outcomes)
}

/// What an exchange is, whatever file it was read from: time, host, request.
fn what(x: &Exchange) -> String {
    format!(
        "{} {} {} {} {}",
        x.at, x.host, x.method, x.path, x.metadata_only
    )
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Cuts a pcap file into files of `per_file` packets each, as `editcap -c` does.
fn split_pcap(src: &Path, per_file: usize, dir: &Path) -> Vec<PathBuf> {
    let bytes = std::fs::read(src).unwrap();
    let (header, mut rest) = bytes.split_at(24);
    let little = header[..4] == [0xd4, 0xc3, 0xb2, 0xa1] || header[..4] == [0x4d, 0x3c, 0xb2, 0xa1];
    let mut records = Vec::new();
    while rest.len() >= 16 {
        let field: [u8; 4] = rest[8..12].try_into().unwrap();
        let len = if little {
            u32::from_le_bytes(field)
        } else {
            u32::from_be_bytes(field)
        } as usize;
        let (record, after) = rest.split_at(16 + len);
        records.push(record);
        rest = after;
    }
    assert!(rest.is_empty());
    records
        .chunks(per_file)
        .enumerate()
        .map(|(i, chunk)| {
            let path = dir.join(format!("part-{i:03}.pcap"));
            let mut f = File::create(&path).unwrap();
            f.write_all(header).unwrap();
            for record in chunk {
                f.write_all(record).unwrap();
            }
            path
        })
        .collect()
}

#[test]
fn a_capture_cut_into_pieces_gives_the_findings_of_the_whole() {
    let case = case("gateway");
    let whole = [captures().join("gateway/gateway.pcap")];
    let tmp = tempfile::tempdir().unwrap();
    let parts = split_pcap(&whole[0], 7, tmp.path());
    assert!(parts.len() > 40, "{}", parts.len());

    let (whole_x, _) = exchanges(&case, &whole);
    let (parts_x, outcomes) = exchanges(&case, &parts);
    assert_eq!(
        sorted(parts_x.iter().map(what).collect()),
        sorted(whole_x.iter().map(what).collect())
    );
    // Exchanges cut by a split name both files; each is counted for the file of
    // its first frame.
    let spanning: Vec<&str> = parts_x
        .iter()
        .map(|x| x.evidence.locator.as_str())
        .filter(|l| l.contains(" to "))
        .collect();
    assert!(spanning.len() >= 5, "{spanning:?}");
    for l in &spanning {
        assert!(
            l.starts_with(tmp.path().to_str().unwrap()) && l.contains(".pcap frame "),
            "{l}"
        );
    }
    let counted: u64 = outcomes
        .iter()
        .map(|o| o.info.as_ref().unwrap().exchanges)
        .sum();
    assert_eq!(counted, parts_x.len() as u64);
    // Each file but the first continues the one before.
    assert_eq!(outcomes[0].continues, None);
    for pair in outcomes.windows(2) {
        let before = &pair[0].info.as_ref().unwrap().sha256;
        assert_eq!(pair[1].continues.as_ref(), Some(before));
    }
    let notes: Vec<&String> = outcomes.iter().flat_map(|o| &o.notes).collect();
    assert!(
        notes.iter().any(|n| n.ends_with(&format!(
            "({} files): read as one capture (each file starts where the one before ends)",
            parts.len()
        ))),
        "{notes:?}"
    );

    let split = analyse(&case, &parts);
    let alone = analyse(&case, &whole);
    assert_eq!(findings(&split), findings(&alone));
    assert_eq!(split.summary.exchanges, alone.summary.exchanges);
    let traffic = |run: &AnalysisRun| {
        let t = run.summary.traffic.clone().unwrap();
        (t.packets, t.bytes, t.tcp_connections, t.dns_messages)
    };
    assert_eq!(traffic(&split), traffic(&alone));
}

#[test]
fn files_out_of_order_are_captures_of_their_own() {
    let case = case("gateway");
    let whole = [captures().join("gateway/gateway.pcap")];
    let tmp = tempfile::tempdir().unwrap();
    let mut parts = split_pcap(&whole[0], 7, tmp.path());
    parts.reverse();
    let (_, outcomes) = exchanges(&case, &parts);
    // Read as given, every file but the first starts before the one before it ended.
    let starts_before = outcomes
        .iter()
        .flat_map(|o| &o.notes)
        .filter(|n| n.contains("starts before the last packet of"))
        .count();
    assert_eq!(starts_before, parts.len() - 1);
    assert!(outcomes
        .iter()
        .flat_map(|o| &o.notes)
        .all(|n| !n.contains("read as one capture")));
}

#[test]
fn analyze_puts_capture_files_in_the_order_of_their_first_packets() {
    let case = case("gateway");
    let dir = captures().join("gateway");
    let whole = [dir.join("gateway.pcap")];
    let tmp = tempfile::tempdir().unwrap();
    let parts = split_pcap(&whole[0], 7, tmp.path());
    let mut shuffled = parts.clone();
    shuffled.reverse();
    shuffled.swap(3, 17);
    let (har, missing) = (
        dir.join("../demo/demo.har"),
        tmp.path().join("missing.pcap"),
    );
    shuffled.insert(5, har.clone());
    shuffled.insert(9, missing.clone());
    let ordered = in_capture_order(&shuffled);
    // The other inputs keep their places; the captures fill the rest in time order.
    assert_eq!((&ordered[5], &ordered[9]), (&har, &missing));
    let captures: Vec<&PathBuf> = ordered
        .iter()
        .filter(|f| **f != har && **f != missing)
        .collect();
    assert_eq!(captures, parts.iter().collect::<Vec<_>>());
    let note = reordered_note(&shuffled, &ordered).unwrap();
    assert!(
        note.starts_with("capture files read in the order of their first packets, not as given: "),
        "{note}"
    );
    assert!(
        note.ends_with(&format!("… ({} files)", ordered.len())),
        "{note}"
    );
    assert_eq!(reordered_note(&parts, &in_capture_order(&parts)), None);
    // Same first packet (the pcap and the pcapng of one capture): by name.
    let same = [dir.join("gateway.pcapng"), dir.join("gateway.pcap")];
    assert_eq!(in_capture_order(&same), [same[1].clone(), same[0].clone()]);

    shuffled.retain(|f| *f != har && *f != missing);
    assert_eq!(
        findings(&analyse(&case, &shuffled)),
        findings(&analyse(&case, &whole))
    );
}

#[test]
fn the_same_traffic_twice_is_two_captures() {
    // The pcap and the pcapng of the gateway hold the same packets at the same times:
    // the second starts before the first ends, so it is a capture of its own, and
    // every finding comes twice.
    let case = case("gateway");
    let dir = captures().join("gateway");
    let files = [dir.join("gateway.pcap"), dir.join("gateway.pcapng")];
    let (_, outcomes) = exchanges(&case, &files);
    assert_eq!(
        outcomes[1].notes,
        [format!(
            "{} starts before the last packet of {}: read as a capture of its own",
            files[1].display(),
            files[0].display()
        )]
    );
    let both = analyse(&case, &files);
    let alone = analyse(&case, &files[..1]);
    let twice: Vec<String> = sorted(
        findings(&alone)
            .into_iter()
            .flat_map(|f| [f.clone(), f])
            .collect(),
    );
    assert_eq!(findings(&both), twice);
}

/// Writes `src` into the live tap's evidence ring in `dir`, files of at most
/// `file_bytes`, the way the tap does: secrets blocks kept for every later file.
fn write_ring(src: &Path, dir: &Path, file_bytes: u64) -> Vec<PathBuf> {
    let started = Timestamp::parse_rfc3339("2026-12-03T09:00:00Z").unwrap();
    let limits = RingLimits {
        max_file_bytes: file_bytes,
        max_files: 1000,
    };
    let mut ring = EvidenceRing::create(dir, started, 0, limits).unwrap();
    let mut reader = CaptureReader::new(File::open(src).unwrap()).unwrap();
    while let Some(event) = reader.next_event().unwrap() {
        match event {
            CaptureEvent::Frame(frame) => {
                let link = u16::try_from(frame.link.number()).unwrap();
                let interface = ring.interface(link).unwrap();
                ring.write(
                    frame.ts,
                    interface,
                    frame.data,
                    frame.original_len,
                    frame.comment,
                )
                .unwrap();
            }
            CaptureEvent::Secrets { secrets_type, data } => {
                ring.keep_block(secrets_block(secrets_type, data)).unwrap()
            }
            CaptureEvent::Custom { .. } => {}
        }
    }
    ring.close().unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

#[test]
fn the_tap_evidence_ring_reads_as_the_capture_it_holds() {
    // TLS connections whose handshake and requests fall in different ring files.
    // The ring repeats the key log (5.7 kB) at the start of each file when it takes
    // at most half a file: with 12 KiB files it does, with 4 KiB files only the
    // first file has it, and the capture's later files are decrypted with it.
    let case = case("tls");
    let whole = [captures().join("tls/tls-dsb.pcapng")];
    let (whole_x, _) = exchanges(&case, &whole);
    let alone = analyse(&case, &whole);
    assert!(!alone.findings.is_empty());
    // Exchanges whose frames are in two files (a request in one, its response in
    // the next).
    let mut spanning = 0;
    for file_bytes in [12 << 10, 4 << 10] {
        let tmp = tempfile::tempdir().unwrap();
        let ring = write_ring(&whole[0], tmp.path(), file_bytes);
        assert!(ring.len() >= 5, "{file_bytes}: {}", ring.len());

        let (ring_x, _) = exchanges(&case, &ring);
        assert_eq!(
            sorted(ring_x.iter().map(what).collect()),
            sorted(whole_x.iter().map(what).collect()),
            "{file_bytes}"
        );
        assert!(ring_x
            .iter()
            .all(|x| x.tls.as_ref().is_some_and(|t| t.decrypted)));
        spanning += ring_x
            .iter()
            .filter(|x| x.evidence.locator.contains(".pcapng frame "))
            .count();
        assert_eq!(
            findings(&analyse(&case, &ring)),
            findings(&alone),
            "{file_bytes}"
        );

        // Each file read alone loses the connections cut by a rotation.
        let one_by_one: usize = ring
            .iter()
            .map(|f| analyse(&case, std::slice::from_ref(f)).findings.len())
            .sum();
        assert!(
            one_by_one < alone.findings.len(),
            "{file_bytes}: {one_by_one}"
        );
    }
    assert!(spanning > 0);
}

#[test]
fn a_capture_of_its_own_keeps_the_secrets_before_its_first_packet() {
    // The key log block of the second copy comes before its first packet, which
    // ends the first copy's capture: the block goes to the new capture.
    let case = case("tls");
    let file = captures().join("tls/tls-dsb.pcapng");
    let files = [file.clone(), file];
    let (list, outcomes) = exchanges(&case, &files);
    assert!(outcomes[1]
        .notes
        .iter()
        .any(|n| n.contains("starts before")));
    assert!(list.len() >= 24, "{}", list.len());
    assert!(list
        .iter()
        .all(|x| x.tls.as_ref().is_some_and(|t| t.decrypted)));
    let alone = analyse(&case, &files[..1]);
    assert_eq!(
        analyse(&case, &files).findings.len(),
        2 * alone.findings.len()
    );
}

/// Runs the binary, which must succeed: its standard output and error.
fn consentry(args: &[&std::ffi::OsStr]) -> (String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_consentry"))
        .args(args)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{args:?}\n{stdout}\n{stderr}");
    (stdout, stderr)
}

macro_rules! args {
    ($($a:expr),* $(,)?) => { &[$(std::ffi::OsStr::new($a)),*] };
}

/// JSON lines, without the fields named, sorted.
fn lines_without(text: &str, fields: &[&str]) -> Vec<String> {
    let mut list: Vec<String> = text
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            for f in fields {
                v.as_object_mut().unwrap().remove(*f);
            }
            v.to_string()
        })
        .collect();
    list.sort();
    list
}

/// `head` followed by `files`, as arguments.
fn with_files<'a>(head: &[&'a std::ffi::OsStr], files: &'a [PathBuf]) -> Vec<&'a std::ffi::OsStr> {
    let mut args = head.to_vec();
    args.extend(files.iter().map(|p| p.as_os_str()));
    args
}

/// Exports the case in `dir` to `bundle`: the summary line.
fn export(dir: &Path, bundle: &Path) -> String {
    consentry(args!("-C", dir, "export", "--out", bundle)).0
}

/// The HAR entries `export` wrote, from its summary line.
fn har_entries(export_out: &str) -> u64 {
    let (_, rest) = export_out.split_once(" exchanges (").unwrap();
    rest.split(' ').next().unwrap().parse().unwrap()
}

#[test]
fn ingest_stores_a_capture_cut_into_pieces_as_the_capture_in_one_file() {
    let case_file = captures().join("gateway/consentry.toml");
    let whole = captures().join("gateway/gateway.pcap");
    let tmp = tempfile::tempdir().unwrap();
    let pieces = tmp.path().join("pieces");
    std::fs::create_dir(&pieces).unwrap();
    let parts = split_pcap(&whole, 7, &pieces);
    let mut reversed = parts.clone();
    reversed.reverse();

    let one = tmp.path().join("one");
    consentry(args!("init", &one, "--from-case", &case_file));
    consentry(args!("-C", &one, "ingest", &whole));
    let one_export = export(&one, &tmp.path().join("one.zip"));

    let split = tmp.path().join("split");
    consentry(args!("init", &split, "--from-case", &case_file));
    let ingest = with_files(args!("-C", &split, "ingest"), &reversed);
    let (out, err) = consentry(&ingest);
    assert_eq!(
        out.matches(": ingested as evidence/").count(),
        parts.len(),
        "{out}"
    );
    assert!(
        err.contains(&format!("({} files): read as one capture", parts.len())),
        "{err}"
    );

    // The findings and exchanges of the capture in one file (but for the ids, which
    // name the file an exchange starts in) ...
    let findings = |dir: &Path| consentry(args!("-C", dir, "findings", "--format", "jsonl")).0;
    let exchanges = |dir: &Path| consentry(args!("-C", dir, "exchanges", "--format", "jsonl")).0;
    assert_eq!(
        lines_without(&findings(&split), &["id", "exchange"]),
        lines_without(&findings(&one), &["id", "exchange"])
    );
    assert_eq!(
        lines_without(&exchanges(&split), &["id", "file_sha256", "locator"]),
        lines_without(&exchanges(&one), &["id", "file_sha256", "locator"])
    );
    // ... and exactly those `analyze` gives for the pieces.
    let analyze = with_files(
        args!("analyze", "--case", &case_file, "--format", "jsonl"),
        &parts,
    );
    assert_eq!(
        lines_without(&findings(&split), &[]),
        lines_without(&consentry(&analyze).0, &[])
    );

    // `export` reads the pieces together again: the HAR holds what the one file's does.
    let split_export = export(&split, &tmp.path().join("split.zip"));
    assert_eq!(har_entries(&split_export), har_entries(&one_export));
    let (verified, _) = consentry(args!("verify", &tmp.path().join("split.zip")));
    assert!(verified.starts_with("OK: bundle"), "{verified}");

    // Once: ingesting them again stores nothing.
    let (again, _) = consentry(&ingest);
    assert_eq!(
        again.matches(": already ingested").count(),
        parts.len(),
        "{again}"
    );
    let (verified, _) = consentry(args!("verify", &split));
    assert!(verified.starts_with("OK: "), "{verified}");
}

#[test]
fn pieces_ingested_in_two_runs_are_two_captures() {
    let case_file = captures().join("gateway/consentry.toml");
    let whole = captures().join("gateway/gateway.pcap");
    let tmp = tempfile::tempdir().unwrap();
    let parts = split_pcap(&whole, 7, tmp.path());
    let dir = tmp.path().join("case");
    consentry(args!("init", &dir, "--from-case", &case_file));
    let half = parts.len() / 2;
    let ingest = |files: &[PathBuf]| consentry(&with_files(args!("-C", &dir, "ingest"), files)).0;
    ingest(&parts[..half]);
    let second = ingest(&parts);
    // The first half is in the case already, and not read again: the second run
    // starts a capture of its own, whose first connections are picked up mid-stream.
    assert_eq!(
        second.matches(": already ingested").count(),
        half,
        "{second}"
    );
    assert_eq!(
        second.matches(": ingested as evidence/").count(),
        parts.len() - half
    );
    let stored = consentry(args!("-C", &dir, "exchanges", "--format", "jsonl")).0;
    let (whole_x, _) = exchanges(&case("gateway"), &[whole]);
    assert!(stored.lines().count() > whole_x.len(), "{stored}");
}
