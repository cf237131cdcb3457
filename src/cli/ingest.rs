//! `consentry ingest FILE... [--device ID]`: copies captures into the case's evidence
//! directory, logs their SHA-256, analyses them against the case file and appends
//! their exchanges (metadata), findings and consent events to the case store.
//!
//! A stream (`-`, a pipe) is copied into the evidence directory as it is read and
//! ingested from that copy (`SpooledStream`).
//!
//! The files of a run are analysed together with the case file as it is at ingest
//! time, as `analyze` reads several files: capture files in the order of their first
//! packets, the pieces of a capture cut into several files read as one capture
//! ([`InputFiles`]). Each file has its own evidence copy and ingest records; an
//! exchange, its findings and consent events belong to the file of its first frame,
//! and the `complete` record of a file that continues another names it
//! ([`IngestBody::continues`]), so that `export` reads them together again.
//!
//! Exactly once: a file whose SHA-256 has a `complete` ingest record is skipped
//! (and not read: the files before and after it are then not one capture); one with
//! only a `started` record (an ingest that was interrupted) is analysed again and
//! only the exchanges, findings and consent events not yet stored are appended
//! (their ids are deterministic, given the same files). An input that fails to read
//! (e.g. a HAR in a case of several devices without `--device`) keeps what was read
//! but gets no `complete` record, so ingesting it again resumes it. The case file's
//! own consent decisions are stored once per case (keyed by their hash).
//!
//! What a capture's findings depend on besides its bytes is evidence too: the case
//! file, each `--keylog` key log and each `--wlan-keys` file is copied into the
//! evidence directory once per content and logged with its SHA-256 (an ingest record
//! of kind `case`, `keylog` or `wlan-keys`, checked by `verify` like a capture), and
//! each capture's ingest records name them and the other options in
//! [`IngestOptions`]. A capture already ingested is not analysed again: give its key
//! log the first time (ingesting it again with other options says which differ, and
//! that its findings stay those of the first analysis). An interrupted ingest resumes
//! only with the options it ran with, unless it stored nothing yet: its records would
//! otherwise mix two analyses.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use sha2::{Digest, Sha256};

use super::analyze::{default_workers, CaptureReading};
use super::input::{print_messages, Attribution, InputFiles};
use super::keylog::{self, KeyLogFile};
use super::pipeline::analyze_stream;
use super::tunnel_ports::{self, TunnelPortArgs};
use super::wlan_keys::{self, WlanKeyArgs, WlanKeysFile};
use crate::case::{self, Case};
use crate::consent::ConsentEvent;
use crate::exchange::Exchange;
use crate::rules::{Analyzer, Options};
use crate::source;
use crate::store::db::Side;
use crate::store::record::{
    hex, ExchangeBodyRef, IngestBody, IngestOptions, Kind, Phase, KIND_CASE, KIND_KEYLOG,
    KIND_WLAN_KEYS,
};
use crate::store::{
    copy_evidence, evidence_name, move_evidence, save_evidence, CaseDir, Store, StoreError,
    StoredTable,
};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Capture files to ingest: pcap, pcapng or HAR (detected from the content); `-`
    /// reads standard input, which is stored as evidence named `stdin.pcapng` (or
    /// `.pcap`, `.har`: the type detected).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Attribute traffic without client addresses (HAR), and capture traffic of
    /// clients that match no device address, to this device of the case.
    #[arg(long, value_name = "ID")]
    pub device: Option<String>,
    /// NSS key log with the TLS secrets of the captures (the `SSLKEYLOGFILE` format),
    /// stored as evidence beside them; several allowed.
    #[arg(long = "keylog", value_name = "FILE")]
    pub keylog: Vec<PathBuf>,
    /// Read each pcapng's Decryption Secrets Blocks before its packets, in a pass of
    /// their own over the file (a stream is copied first), so that secrets written
    /// after the handshakes they are for decrypt them too (tshark 4.0 decrypts none
    /// of those, even with `-2`). Without it secrets count from where they stand,
    /// and a warning says when a later block held the keys of connections already
    /// read.
    #[arg(long)]
    pub secrets_first: bool,
    /// Threads to use (default: one per core).
    #[arg(long, short = 'j', value_name = "N")]
    pub threads: Option<usize>,
    /// Judge the traffic of every app of a capture that names apps (PCAPdroid's), not
    /// only the case's `[app]`.
    #[arg(long)]
    pub all_apps: bool,
    #[command(flatten)]
    pub tunnels: TunnelPortArgs,
    #[command(flatten)]
    pub wlan: WlanKeyArgs,
}

/// What ingesting one file did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingested {
    /// Already fully ingested: nothing done.
    AlreadyPresent {
        sha256: String,
        /// How the options it was analysed with differ from this run's, one line per
        /// option ([`IngestOptions::differences`]); empty when they are the same (or
        /// an older store did not keep them).
        differences: Vec<String>,
    },
    /// Stored (or completed after an interruption).
    Stored {
        sha256: String,
        evidence: String,
        exchanges: u64,
        findings: u64,
        new_records: u64,
        resumed: bool,
        /// Whether the `complete` record was written (not when the input failed).
        complete: bool,
        /// The input could not be read to the end (what was read is stored).
        error: Option<String>,
    },
    /// An interrupted ingest of the file stored records made with other options:
    /// nothing done.
    OptionsDiffer {
        sha256: String,
        /// What the interrupted ingest stored, as `N exchanges and M findings`.
        stored: String,
        /// One line per option that differs ([`IngestOptions::differences`]).
        differences: Vec<String>,
    },
}

/// A file the analysis of captures depends on, stored as evidence beside them.
pub(super) struct SideFile<'a> {
    path: &'a Path,
    sha256: String,
    /// The ingest record's `kind`.
    kind: &'static str,
    /// The bytes as read, when held (key logs): stored as they are, whatever the
    /// file holds by then. Otherwise the file is copied and checked against `sha256`.
    bytes: Option<Arc<[u8]>>,
}

impl<'a> SideFile<'a> {
    /// A key log as it was read.
    pub(super) fn key_log(file: &'a KeyLogFile) -> Self {
        SideFile {
            path: &file.path,
            sha256: hex(&Sha256::digest(&file.text)),
            kind: KIND_KEYLOG,
            bytes: Some(file.text.clone()),
        }
    }

    /// The first 16 hex digits of its SHA-256, as the evidence copy's name begins.
    #[cfg_attr(not(feature = "live"), allow(dead_code))] // the tap's annotation
    pub(super) fn short_sha256(&self) -> &str {
        crate::store::record::short_sha256(&self.sha256)
    }

    /// The case file at `path`, whose bytes as parsed have the SHA-256 `sha256` (hex).
    pub(super) fn case_file(path: &'a Path, sha256: String) -> Self {
        SideFile {
            path,
            sha256,
            kind: KIND_CASE,
            bytes: None,
        }
    }
}

/// The run's side files, stored as evidence just before the first capture is
/// analysed: an `ingest` that analyses nothing stores none.
struct SideFiles<'a> {
    files: Vec<SideFile<'a>>,
    stored: bool,
}

impl SideFiles<'_> {
    /// Stores every file not stored yet (once per run), saying so.
    fn store(&mut self, dir: &CaseDir, store: &mut Store) -> anyhow::Result<()> {
        if self.stored {
            return Ok(());
        }
        for file in &self.files {
            let (path, sha256) = (file.path.display(), &file.sha256);
            let what = crate::store::record::side_file_words(file.kind);
            match ingest_side_file(dir, store, file)? {
                Some(evidence) => {
                    println!("{path}: {what} stored as {evidence} (SHA-256 {sha256})")
                }
                // The case file is stored once per content: no word each time.
                None if file.kind == KIND_CASE => {}
                None => println!("{path}: {what} already stored (SHA-256 {sha256})"),
            }
        }
        self.stored = true;
        Ok(())
    }
}

pub fn run(args: Args, dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let dir = CaseDir::locate(dir)?;
    let case_path = dir.case_file();
    let (case, case_sha256) = case::load_hashed(&case_path)?;
    let case = Arc::new(case);
    let workers = match args.threads {
        Some(0) | Some(1) => 0,
        Some(n) => n - 1,
        None => default_workers(),
    };
    let keylogs = keylog::load(&args.keylog)?;
    keylog::report(&keylogs);
    let wlan_files = args.wlan.read_files()?;
    let mut reading =
        CaptureReading::from_args(&keylogs, &args.tunnels, wlan_keys::keys_of(&wlan_files))?;
    reading.all_apps = args.all_apps;
    reading.secrets_first = args.secrets_first;
    let side_files = side_files(&case_path, &case_sha256, &keylogs, &wlan_files);
    let mut run = IngestRun {
        dir: &dir,
        case: case.clone(),
        options: options_of(&side_files, args.device.clone(), &reading),
        reading,
        side_files: SideFiles {
            files: side_files,
            stored: false,
        },
        workers,
    };
    let mut store = dir.open_store()?;
    for left in SpooledStream::remove_left_behind(&dir.evidence_dir()) {
        eprintln!(
            "consentry: removed {}, the partial copy of a stream whose ingest was killed",
            left.display()
        );
    }
    let mut failed = false;
    store_case_consent(&mut store, &case)?;
    let given = super::input::input_paths(&args.files)?;
    let ordered = super::capture_order::in_capture_order(&given);
    if let Some(note) = super::capture_order::reordered_note(&given, &ordered) {
        eprintln!("consentry: {note}");
    }
    // The files to analyse are analysed together, in runs between those that need
    // nothing (as `analyze` reads several files: one capture cut into pieces is read
    // as one).
    let mut ready: Vec<(PathBuf, Prepared)> = Vec::new();
    let mut seen = HashSet::new();
    for path in &ordered {
        let step = match run.prepare(&mut store, path) {
            Ok(step) => step,
            Err(e) => {
                // The files before it are ingested all the same.
                run.analyse_and_say(&mut store, ready)?;
                return Err(e);
            }
        };
        let done = match step {
            Step::Ready(file) if seen.insert(file.sha256.clone()) => {
                ready.push((path.clone(), *file));
                continue;
            }
            // The same content given twice in one run: analysed once.
            Step::Ready(file) => Ingested::AlreadyPresent {
                sha256: file.sha256,
                differences: Vec::new(),
            },
            Step::Done(done) => done,
        };
        failed |= run.analyse_and_say(&mut store, std::mem::take(&mut ready))?;
        failed |= say(path, done);
    }
    failed |= run.analyse_and_say(&mut store, ready)?;
    let head = store.head()?;
    println!(
        "store: {} records, head {}",
        head.records,
        crate::store::record::hex(&head.hash)
    );
    Ok(if failed {
        ExitCode::from(super::EXIT_USAGE)
    } else {
        ExitCode::SUCCESS
    })
}

/// Prints what ingesting `path` did; whether it failed.
fn say(path: &Path, ingested: Ingested) -> bool {
    let mut failed = false;
    match ingested {
        Ingested::AlreadyPresent {
            sha256,
            differences,
        } if differences.is_empty() => println!(
            "{}: already ingested (SHA-256 {sha256}); nothing to do",
            path.display()
        ),
        Ingested::AlreadyPresent {
            sha256,
            differences,
        } => {
            // Not an error (the capture is in the case), but what was asked for
            // now (a key log given late, an edited case file) is not done.
            println!(
                "{}: already ingested (SHA-256 {sha256}) with other options; NOT analysed again",
                path.display()
            );
            eprintln!(
                "consentry: warning: {}: a case analyses a capture once; this one was analysed with other options than now, and its exchanges and findings stay those of that analysis (to analyse it with these options, ingest it into a new case directory):",
                path.display()
            );
            for d in &differences {
                eprintln!("  {d}");
            }
        }
        Ingested::Stored {
            sha256,
            evidence,
            exchanges,
            findings,
            new_records,
            resumed,
            complete,
            error,
        } => {
            let how = match (complete, resumed) {
                (false, _) => "NOT complete (run ingest again once the error is fixed); ",
                (true, true) => "interrupted ingest completed; ",
                (true, false) => "",
            };
            println!(
                "{}: {how}ingested as {evidence} (SHA-256 {sha256}): {exchanges} exchanges, {findings} findings, {new_records} new records",
                path.display(),
            );
            if let Some(e) = error {
                eprintln!("consentry: error: {e}");
                failed = true;
            }
        }
        Ingested::OptionsDiffer {
            sha256,
            stored,
            differences,
        } => {
            println!(
                "{}: NOT ingested (SHA-256 {sha256}): an interrupted ingest of it ran with other options",
                path.display()
            );
            eprintln!(
                "consentry: error: {}: an interrupted ingest of this file stored {stored} made with other options; run `consentry ingest` again as it ran then to complete it:",
                path.display()
            );
            for d in &differences {
                eprintln!("  {d}");
            }
            failed = true;
        }
    }
    failed
}

/// Appends the case file's consent decisions not stored yet.
pub fn store_case_consent(store: &mut Store, case: &Case) -> Result<(), StoreError> {
    for c in &case.consent {
        let event = ConsentEvent::manual(c);
        let bytes = serde_json::to_vec(&event)?;
        let key = format!(
            "case:{}",
            crate::store::record::hex(&Sha256::digest(&bytes))
        );
        if !store.has_consent(&key)? {
            store.append(
                Kind::Consent,
                &event,
                Side::Consent {
                    key: &key,
                    at: event.at,
                    device: &event.device,
                },
            )?;
        }
    }
    store.commit()
}

/// What one file of an analysis stored, for its `complete` record.
struct FileTally {
    sha256: String,
    /// `seq` of the file's `started` ingest record.
    ingest: i64,
    exchanges: u64,
    findings: u64,
    /// Consent events read from it, numbered in analysis order (deterministic).
    wire_events: u64,
    new_records: u64,
}

/// Mutable state shared by the reading and the judging half of the analysis of the
/// files of one run. An exchange, its findings and its consent events belong to the
/// file of its first frame, named by its evidence.
struct Sink<'s> {
    store: &'s mut Store,
    files: Vec<FileTally>,
    /// Index in `files` by SHA-256.
    by_sha256: HashMap<String, usize>,
    have_exchanges: HashSet<String>,
    have_findings: HashSet<String>,
    error: Option<StoreError>,
}

impl Sink<'_> {
    /// The file an exchange was read from (the first of the run if it names none,
    /// which no file input does).
    fn file_of(&self, x: &crate::exchange::Exchange) -> usize {
        x.evidence
            .file_sha256
            .as_deref()
            .and_then(|sha256| self.by_sha256.get(sha256))
            .copied()
            .unwrap_or(0)
    }

    fn exchange(&mut self, x: &crate::exchange::Exchange) {
        let file = self.file_of(x);
        self.files[file].exchanges += 1;
        if self.error.is_some() || self.have_exchanges.contains(&x.id) {
            return;
        }
        let body = ExchangeBodyRef::of(x);
        let side = Side::Exchange {
            ingest: self.files[file].ingest,
            id: body.id,
            at: body.at,
            device: body.device,
            host: body.host,
        };
        match self.store.append(Kind::Exchange, &body, side) {
            Ok(_) => self.files[file].new_records += 1,
            Err(e) => self.error = Some(e),
        }
    }

    fn observation(&mut self, x: &crate::exchange::Exchange, obs: crate::rules::Observation) {
        let file = self.file_of(x);
        let tally = &mut self.files[file];
        for f in &obs.findings {
            tally.findings += 1;
            if self.error.is_some() || self.have_findings.contains(&f.id) {
                continue;
            }
            let side = Side::Finding {
                ingest: tally.ingest,
                id: &f.id,
                at: f.at,
                device: &f.device,
                rule: f.rule.as_str(),
                host: &f.destination.host,
            };
            match self.store.append(Kind::Finding, f, side) {
                Ok(_) => tally.new_records += 1,
                Err(e) => self.error = Some(e),
            }
        }
        for e in &obs.consent_events {
            // Wire events are numbered in analysis order, which is deterministic.
            tally.wire_events += 1;
            if self.error.is_some() {
                continue;
            }
            let key = format!("{}:{}", tally.sha256, tally.wire_events);
            let appended = self.store.has_consent(&key).and_then(|have| {
                if have {
                    return Ok(false);
                }
                self.store
                    .append(
                        Kind::Consent,
                        e,
                        Side::Consent {
                            key: &key,
                            at: e.at,
                            device: &e.device,
                        },
                    )
                    .map(|_| true)
            });
            match appended {
                Ok(true) => tally.new_records += 1,
                Ok(false) => {}
                Err(err) => self.error = Some(err),
            }
        }
    }
}

/// Where the evidence copy of the file with `sha256` is, if the store has one.
fn evidence_copy(store: &Store, sha256: &str) -> anyhow::Result<Option<String>> {
    let Some((_, started)) = store.ingest_phase(sha256)? else {
        return Ok(None);
    };
    let Some(data) = store.record_data(started)? else {
        return Ok(None);
    };
    let body: IngestBody = serde_json::from_str(&data)
        .with_context(|| format!("reading the ingest record {started}"))?;
    Ok(Some(body.evidence))
}

/// The files a run reads captures with: the case file (`case_sha256`: of the bytes
/// parsed), the `--keylog` files and the `--wlan-keys` files.
pub(super) fn side_files<'a>(
    case_path: &'a Path,
    case_sha256: &[u8; 32],
    keylogs: &'a [KeyLogFile],
    wlan_files: &'a [WlanKeysFile],
) -> Vec<SideFile<'a>> {
    let mut files = vec![SideFile::case_file(case_path, hex(case_sha256))];
    files.extend(keylogs.iter().map(SideFile::key_log));
    files.extend(wlan_files.iter().map(|w| SideFile {
        path: &w.path,
        sha256: w.sha256.clone(),
        kind: KIND_WLAN_KEYS,
        bytes: None,
    }));
    files
}

/// What captures are analysed with: the `side_files` (each under its SHA-256),
/// `--device`, and what `reading` says (`--all-apps`, `--tunnel-port`).
pub(super) fn options_of(
    side_files: &[SideFile],
    device: Option<String>,
    reading: &CaptureReading,
) -> IngestOptions {
    let hashes = |kind: &str| {
        let mut list: Vec<String> = side_files
            .iter()
            .filter(|f| f.kind == kind)
            .map(|f| f.sha256.clone())
            .collect();
        list.sort();
        list.dedup();
        list
    };
    IngestOptions {
        case_sha256: side_files
            .iter()
            .find(|f| f.kind == KIND_CASE)
            .map(|f| f.sha256.clone())
            .unwrap_or_default(),
        device,
        all_apps: reading.all_apps,
        secrets_first: reading.secrets_first,
        keylogs: hashes(KIND_KEYLOG),
        wlan_keys: hashes(KIND_WLAN_KEYS),
        tunnel_ports: tunnel_ports::settings(&reading.tunnel_ports),
    }
}

/// How a stored capture was read, rebuilt from the options of its ingest record and
/// the evidence copies of the files they name (`ingests`: the store's ingest
/// records), for `export`, which reads the captures again. `--device` is in
/// `options`.
pub fn stored_reading(
    dir: &CaseDir,
    options: &IngestOptions,
    ingests: &[IngestBody],
) -> anyhow::Result<CaptureReading> {
    let copies = |kind: &str, hashes: &[String]| -> anyhow::Result<Vec<PathBuf>> {
        hashes
            .iter()
            .map(|sha256| {
                ingests
                    .iter()
                    .find(|i| i.kind == kind && &i.sha256 == sha256)
                    .map(|i| dir.root.join(&i.evidence))
                    .ok_or_else(|| {
                        anyhow::anyhow!("no {kind} file with SHA-256 {sha256} is in the store")
                    })
            })
            .collect()
    };
    let keylogs = keylog::load(&copies(KIND_KEYLOG, &options.keylogs)?)?;
    let wlan_keys = WlanKeyArgs {
        wlan_keys: copies(KIND_WLAN_KEYS, &options.wlan_keys)?,
    }
    .load()?;
    Ok(CaptureReading {
        keylogs: keylog::texts(&keylogs),
        tunnel_ports: tunnel_ports::from_settings(&options.tunnel_ports)?,
        wlan_keys,
        all_apps: options.all_apps,
        secrets_first: options.secrets_first,
    })
}

/// Copies a file the analysis depends on into the evidence directory and logs its
/// SHA-256 (an ingest of the file's kind, with no exchanges), once per content. The
/// copy is checked against `file.sha256`, the hash of the bytes that were read.
/// Returns the copy's path when this call stored it.
pub(super) fn ingest_side_file(
    dir: &CaseDir,
    store: &mut Store,
    file: &SideFile,
) -> anyhow::Result<Option<String>> {
    let sha256 = &file.sha256;
    let stored_phase = store.ingest_phase(sha256)?;
    if let Some((Phase::Complete, _)) = stored_phase {
        return Ok(None);
    }
    let name = file
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.kind.into());
    let copy_name = evidence_name(sha256, &name);
    let evidence = match &file.bytes {
        Some(bytes) => {
            let what = file.path.display().to_string();
            save_evidence(dir, bytes, &copy_name, sha256, &what)?
        }
        None => copy_evidence(dir, file.path, &copy_name, sha256)?,
    };
    let copy = dir.root.join(&evidence);
    let size = std::fs::metadata(&copy)
        .with_context(|| format!("reading {}", copy.display()))?
        .len();
    let mut body = IngestBody {
        phase: Phase::Started,
        name,
        size,
        sha256: sha256.clone(),
        kind: file.kind.to_string(),
        evidence: evidence.clone(),
        exchanges: None,
        findings: None,
        traffic: None,
        options: None,
        continues: None,
    };
    for phase in [Phase::Started, Phase::Complete] {
        // An interrupted earlier run may have written the `started` record already.
        if phase == Phase::Started && stored_phase.is_some() {
            continue;
        }
        body.phase = phase;
        store.append(Kind::Ingest, &body, Side::Ingest { sha256, phase })?;
    }
    store.commit()?;
    Ok(Some(evidence))
}

/// What every capture of one `ingest` run is read and recorded with.
struct IngestRun<'a> {
    dir: &'a CaseDir,
    case: Arc<Case>,
    /// How captures are read (`--keylog`, `--wlan-keys`, `--tunnel-port`, `--all-apps`).
    reading: CaptureReading,
    /// The same for the ingest records, with the case file's hash and `--device`.
    options: IngestOptions,
    side_files: SideFiles<'a>,
    /// Analysis threads besides the reader.
    workers: usize,
}

/// A file of a run ready to be analysed: its evidence copy made and its `started`
/// record written (or found, when an interrupted ingest is resumed).
struct Prepared {
    sha256: String,
    /// The copy, relative to the case directory.
    evidence: String,
    /// The `started` record's body, which becomes the `complete` one.
    body: IngestBody,
    /// `seq` of the `started` record.
    ingest: i64,
    resumed: bool,
    /// Records this run wrote for the file so far (its `started` record).
    new_records: u64,
    /// What an interrupted ingest of the file stored already.
    have_exchanges: HashSet<String>,
    have_findings: HashSet<String>,
}

/// What [`IngestRun::prepare`] made of a file.
enum Step {
    /// Nothing to analyse: already ingested, or it cannot be resumed with this run's
    /// options.
    Done(Ingested),
    Ready(Box<Prepared>),
}

impl IngestRun<'_> {
    /// Copies one input into the evidence directory and writes its `started` record
    /// (see the module documentation), unless it is ingested already; the side files
    /// are stored before the first input is copied.
    fn prepare(&mut self, store: &mut Store, path: &Path) -> anyhow::Result<Step> {
        let (dir, options) = (self.dir, &self.options);
        let mut name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "capture".into());
        let opened = source::open_input(path)?;
        let kind = opened.kind;
        if opened.stream_head.is_some() && Path::new(&name).extension().is_none() {
            // `stdin` becomes `stdin.pcapng`: its copy opens in the right program.
            let gz = if opened.gzip { ".gz" } else { "" };
            name = format!("{name}.{}{gz}", kind.name());
        }
        // A stream can be read once: it is copied into the evidence directory first
        // (hashed as it comes) and ingested from there like a file.
        let spooled = match opened.stream_head {
            Some(_) => Some(SpooledStream::new(dir, opened, path, &name)?),
            None => None,
        };
        let path = spooled.as_ref().map_or(path, |s| s.path.as_path());
        let size = std::fs::metadata(path)
            .with_context(|| format!("reading {}", path.display()))?
            .len();
        let sha256 = match &spooled {
            Some(s) => s.sha256.clone(),
            None => source::file_sha256(path)?,
        };
        let phase = store.ingest_phase(&sha256)?;
        if let Some((Phase::Complete, _)) = phase {
            let differences = analysed_with_other_options(store, &sha256, options)?;
            return Ok(Step::Done(Ingested::AlreadyPresent {
                sha256,
                differences,
            }));
        }
        let resumed = phase.is_some();
        let (have_exchanges, have_findings) = match phase {
            Some((_, started)) => {
                let have = (
                    store.stored_ids(StoredTable::Exchanges, started)?,
                    store.stored_ids(StoredTable::Findings, started)?,
                );
                let stored = (have.0.len(), have.1.len());
                if let Some(conflict) = resume_conflict(store, started, &sha256, options, stored)? {
                    return Ok(Step::Done(conflict));
                }
                have
            }
            None => Default::default(),
        };
        self.side_files.store(dir, store)?;
        let evidence_file = evidence_name(&sha256, &name);
        let evidence = match &spooled {
            Some(s) => move_evidence(dir, &s.path, &evidence_file, &sha256, &s.what)?,
            None => copy_evidence(dir, path, &evidence_file, &sha256)?,
        };
        let body = IngestBody {
            phase: Phase::Started,
            name,
            size,
            sha256: sha256.clone(),
            kind: kind.name().to_string(),
            evidence: evidence.clone(),
            exchanges: None,
            findings: None,
            traffic: None,
            options: Some(options.clone()),
            continues: None,
        };
        let (ingest, new_records) = match phase {
            Some((_, started)) => (started, 0),
            None => {
                let side = Side::Ingest {
                    sha256: &sha256,
                    phase: Phase::Started,
                };
                (store.append(Kind::Ingest, &body, side)?, 1)
            }
        };
        Ok(Step::Ready(Box::new(Prepared {
            sha256,
            evidence,
            body,
            ingest,
            resumed,
            new_records,
            have_exchanges,
            have_findings,
        })))
    }

    /// [`analyse`](Self::analyse)s `files` (none: nothing) and says what each gave;
    /// whether any failed.
    fn analyse_and_say(
        &mut self,
        store: &mut Store,
        files: Vec<(PathBuf, Prepared)>,
    ) -> anyhow::Result<bool> {
        if files.is_empty() {
            return Ok(false);
        }
        let (paths, files): (Vec<PathBuf>, Vec<Prepared>) = files.into_iter().unzip();
        let mut failed = false;
        for (path, ingested) in paths.iter().zip(self.analyse(store, files)?) {
            failed |= say(path, ingested);
        }
        Ok(failed)
    }

    /// Analyses the prepared files of a run together, as `analyze` reads several
    /// files (capture files that continue one another as one capture), stores what
    /// was not stored yet and completes each file read to its end. One result per
    /// file, in order.
    fn analyse(
        &mut self,
        store: &mut Store,
        mut files: Vec<Prepared>,
    ) -> anyhow::Result<Vec<Ingested>> {
        let (dir, case, reading) = (self.dir, &self.case, &self.reading);
        let mut attribution = Attribution::new(case, self.options.device.clone())?;
        attribution.reading = reading.clone();
        let mut analyzer = Analyzer::new(case.clone(), Options::default());
        attribution.unparsed_overlap = analyzer.payload_overlap();
        attribution.dns_probe = Some(analyzer.data_probe());
        attribution.tail_search = Some(analyzer.tail_search());
        let mut sink = Sink {
            store,
            files: Vec::with_capacity(files.len()),
            by_sha256: HashMap::with_capacity(files.len()),
            have_exchanges: HashSet::new(),
            have_findings: HashSet::new(),
            error: None,
        };
        for (i, f) in files.iter_mut().enumerate() {
            sink.files.push(FileTally {
                sha256: f.sha256.clone(),
                ingest: f.ingest,
                exchanges: 0,
                findings: 0,
                wire_events: 0,
                new_records: f.new_records,
            });
            sink.by_sha256.insert(f.sha256.clone(), i);
            sink.have_exchanges
                .extend(std::mem::take(&mut f.have_exchanges));
            sink.have_findings
                .extend(std::mem::take(&mut f.have_findings));
        }
        let sink = RefCell::new(sink);
        let mut outcomes = Vec::new();
        analyze_stream(
            &mut analyzer,
            self.workers,
            &mut |analyse| {
                let status = String::new;
                let mut each = |x: Exchange| {
                    sink.borrow_mut().exchange(&x);
                    // As `analyze`: capture traffic of no case device, or of another
                    // app, is listed, not judged.
                    if attribution.judges(&x) {
                        analyse(x);
                    }
                };
                let mut inputs = InputFiles::new(&attribution);
                for f in &files {
                    // The copy was hashed and checked against `sha256` as it was made.
                    let copy = dir.root.join(&f.evidence);
                    inputs.read_known(&copy, &f.sha256, &status, &mut each);
                }
                outcomes = inputs.finish(&mut each);
                print_messages(&outcomes);
            },
            &mut |x, obs| sink.borrow_mut().observation(x, obs),
        );
        let mut sink = sink.into_inner();
        if let Some(e) = sink.error.take() {
            return Err(e.into());
        }
        let mut results = Vec::with_capacity(files.len());
        let mut outcomes = outcomes.into_iter();
        for (file, tally) in files.into_iter().zip(std::mem::take(&mut sink.files)) {
            let outcome = outcomes.next().unwrap_or_default();
            let mut new_records = tally.new_records;
            let complete = outcome.error.is_none();
            if complete {
                let mut body = file.body;
                body.phase = Phase::Complete;
                body.exchanges = Some(tally.exchanges);
                body.findings = Some(tally.findings);
                body.traffic = outcome.traffic;
                body.continues = outcome.continues;
                let side = Side::Ingest {
                    sha256: &file.sha256,
                    phase: Phase::Complete,
                };
                sink.store.append(Kind::Ingest, &body, side)?;
                new_records += 1;
            }
            // Otherwise not marked complete: what was read is kept, and a later
            // `ingest` of the same file (e.g. with the missing --device) resumes it.
            results.push(Ingested::Stored {
                sha256: file.sha256,
                evidence: file.evidence,
                exchanges: tally.exchanges,
                findings: tally.findings,
                new_records,
                resumed: file.resumed,
                complete,
                error: outcome.error,
            });
        }
        sink.store.commit()?;
        Ok(results)
    }
}

/// A stream being ingested, copied into the evidence directory under a temporary
/// name; removed when dropped unless it was moved into place as evidence.
struct SpooledStream {
    path: PathBuf,
    sha256: String,
    /// The stream, as errors name it.
    what: String,
}

impl SpooledStream {
    /// The file name of a spool of `name` by process `pid`.
    fn file_name(name: &str, pid: u32) -> String {
        format!(".{name}.{pid}.stream")
    }

    /// Removes the spools in `evidence` whose process is gone (an ingest killed while
    /// it copied a stream; a live ingest's is left to it), returning their paths.
    fn remove_left_behind(evidence: &Path) -> Vec<PathBuf> {
        // Without /proc no process could be seen alive: leave them all.
        if !Path::new("/proc/self").exists() {
            return Vec::new();
        }
        let Ok(entries) = std::fs::read_dir(evidence) else {
            return Vec::new();
        };
        let mut removed = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = name
                .strip_prefix('.')
                .and_then(|n| n.strip_suffix(".stream"))
                .and_then(|n| n.rsplit_once('.'))
                .and_then(|(_, pid)| pid.parse::<u32>().ok())
            else {
                continue;
            };
            let running = Path::new("/proc").join(pid.to_string()).exists();
            if !running && std::fs::remove_file(entry.path()).is_ok() {
                removed.push(entry.path());
            }
        }
        removed.sort();
        removed
    }

    fn new(dir: &CaseDir, opened: source::Opened, from: &Path, name: &str) -> anyhow::Result<Self> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let evidence = dir.evidence_dir();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&evidence)
            .with_context(|| format!("creating {}", evidence.display()))?;
        let path = evidence.join(Self::file_name(name, std::process::id()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        let mut spooled = SpooledStream {
            path,
            sha256: String::new(),
            what: from.display().to_string(),
        };
        let (copy, sha256) = source::spool_stream_to(opened, &spooled.what, file)?;
        // On disk before it is moved into place as evidence, as a copy is.
        copy.file
            .sync_all()
            .with_context(|| format!("writing {}", spooled.path.display()))?;
        spooled.sha256 = sha256;
        Ok(spooled)
    }
}

impl Drop for SpooledStream {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether resuming the interrupted ingest whose `started` record is `started` would
/// mix two analyses: it stored records for the file (`stored`: exchanges, findings;
/// or a consent signal read from it) with other options than `options`. `Some` says
/// how they differ.
fn resume_conflict(
    store: &Store,
    started: i64,
    sha256: &str,
    options: &IngestOptions,
    stored: (usize, usize),
) -> anyhow::Result<Option<Ingested>> {
    // A consent signal read from the file is stored under `SHA256:N`, from 1.
    let stored_consent = store.has_consent(&format!("{sha256}:1"))?;
    if stored == (0, 0) && !stored_consent {
        return Ok(None);
    }
    let differences = differences_from_record(store, started, options)?;
    if differences.is_empty() {
        return Ok(None);
    }
    Ok(Some(Ingested::OptionsDiffer {
        sha256: sha256.to_string(),
        stored: format!("{} exchanges and {} findings", stored.0, stored.1),
        differences,
    }))
}

/// How `options` differ from those the completed ingest of the file `sha256` was
/// analysed with (empty when the same, or not kept by an older store).
fn analysed_with_other_options(
    store: &Store,
    sha256: &str,
    options: &IngestOptions,
) -> anyhow::Result<Vec<String>> {
    // The `complete` record names the options the analysis ran with: a resumed
    // ingest that had stored nothing ran with those given when it was resumed.
    match store.complete_ingest(sha256)? {
        Some(complete) => differences_from_record(store, complete, options),
        None => Ok(Vec::new()),
    }
}

/// [`IngestOptions::differences`] between the options of the ingest record `seq` and
/// `options`, the case file's line naming the evidence copy of the one it ran with.
/// Empty when the record kept no options (older stores).
fn differences_from_record(
    store: &Store,
    seq: i64,
    options: &IngestOptions,
) -> anyhow::Result<Vec<String>> {
    let Some(data) = store.record_data(seq)? else {
        return Ok(Vec::new());
    };
    let record: IngestBody =
        serde_json::from_str(&data).with_context(|| format!("reading the ingest record {seq}"))?;
    let Some(then) = record.options else {
        return Ok(Vec::new());
    };
    let mut differences = then.differences(options);
    if then.case_sha256 != options.case_sha256 {
        // The case file's line comes first: say where the one it ran with is.
        if let (Some(copy), Some(line)) = (
            evidence_copy(store, &then.case_sha256)?,
            differences.first_mut(),
        ) {
            line.push_str(&format!(" (the one it ran with is {copy})"));
        }
    }
    Ok(differences)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timestamp::Timestamp;

    const SHA: &str = "ab";

    fn started(store: &mut Store, options: Option<IngestOptions>) -> i64 {
        ingest_record(store, Phase::Started, options)
    }

    fn ingest_record(store: &mut Store, phase: Phase, options: Option<IngestOptions>) -> i64 {
        let body = IngestBody {
            phase,
            name: "a.pcap".into(),
            size: 1,
            sha256: SHA.into(),
            kind: "pcap".into(),
            evidence: "evidence/a.pcap".into(),
            exchanges: None,
            findings: None,
            traffic: None,
            options,
            continues: None,
        };
        let side = Side::Ingest { sha256: SHA, phase };
        store.append(Kind::Ingest, &body, side).unwrap()
    }

    #[test]
    fn only_the_spools_of_processes_gone_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let ours = SpooledStream::file_name("stdin.pcap", std::process::id());
        // Above any pid_max Linux allows (2^22): no such process.
        let gone = SpooledStream::file_name("stdin.pcap", 999_999_999);
        for name in [
            &ours,
            &gone,
            &".stdin.pcap.stream".to_string(),
            &"stdin.pcap".to_string(),
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        assert_eq!(
            SpooledStream::remove_left_behind(dir.path()),
            [dir.path().join(&gone)]
        );
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut want = [".stdin.pcap.stream", ours.as_str(), "stdin.pcap"];
        want.sort();
        assert_eq!(left, want);
        assert!(SpooledStream::remove_left_behind(&dir.path().join("none")).is_empty());
    }

    #[test]
    fn a_completed_ingest_is_compared_with_the_options_its_complete_record_names() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("store.db")).unwrap();
        // Interrupted before storing anything, then resumed with --device redmi.
        started(&mut store, Some(options("pixel7")));
        ingest_record(&mut store, Phase::Complete, Some(options("redmi")));
        let differ = |o: &IngestOptions| analysed_with_other_options(&store, SHA, o).unwrap();
        assert!(differ(&options("redmi")).is_empty());
        assert_eq!(
            differ(&options("pixel7")),
            ["--device: redmi then, pixel7 now"]
        );
        let mut late_key = options("redmi");
        late_key.keylogs = vec!["f".repeat(64)];
        assert_eq!(
            differ(&late_key),
            ["--keylog: none then, ffffffffffffffff now"]
        );
        // Not ingested at all: nothing to compare.
        assert!(analysed_with_other_options(&store, "cd", &late_key)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_completed_ingest_without_options_is_not_compared() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("store.db")).unwrap();
        started(&mut store, None);
        ingest_record(&mut store, Phase::Complete, None);
        assert!(analysed_with_other_options(&store, SHA, &options("redmi"))
            .unwrap()
            .is_empty());
    }

    fn options(device: &str) -> IngestOptions {
        IngestOptions {
            case_sha256: "c".repeat(64),
            device: Some(device.into()),
            ..IngestOptions::default()
        }
    }

    #[test]
    fn a_resume_conflicts_only_when_records_were_stored_with_other_options() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("store.db")).unwrap();
        let seq = started(&mut store, Some(options("pixel7")));
        let conflict = |store: &Store, stored| {
            resume_conflict(store, seq, SHA, &options("redmi"), stored).unwrap()
        };
        // Nothing of the file stored yet: the options given now apply.
        assert_eq!(conflict(&store, (0, 0)), None);
        // The same options: no conflict, whatever was stored.
        assert_eq!(
            resume_conflict(&store, seq, SHA, &options("pixel7"), (5, 2)).unwrap(),
            None
        );
        let Some(Ingested::OptionsDiffer {
            sha256,
            stored,
            differences,
        }) = conflict(&store, (5, 2))
        else {
            panic!("a conflict");
        };
        assert_eq!(sha256, SHA);
        assert_eq!(stored, "5 exchanges and 2 findings");
        assert_eq!(differences, ["--device: pixel7 then, redmi now"]);
        // A consent signal read from the file is a stored record too.
        let event = serde_json::json!({"device": "pixel7"});
        let side = Side::Consent {
            key: &format!("{SHA}:1"),
            at: Timestamp::from_micros(1),
            device: "pixel7",
        };
        store.append(Kind::Consent, &event, side).unwrap();
        assert!(conflict(&store, (0, 0)).is_some());
    }

    #[test]
    fn an_ingest_record_without_options_resumes_unchecked() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("store.db")).unwrap();
        let seq = started(&mut store, None);
        assert_eq!(
            resume_conflict(&store, seq, SHA, &options("redmi"), (5, 2)).unwrap(),
            None
        );
    }
}
