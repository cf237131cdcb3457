//! `consentry ingest FILE... [--device ID]`: copies captures into the case's evidence
//! directory, logs their SHA-256, analyses them against the case file and appends
//! their exchanges (metadata), findings and consent events to the case store.
//!
//! Each file is analysed on its own (a fresh analyser per file), with the case file
//! as it is at ingest time. Exactly once: a file whose SHA-256 has a `complete`
//! ingest record is skipped; one with only a `started` record (an ingest that was
//! interrupted) is analysed again and only the exchanges, findings and consent
//! events not yet stored are appended (their ids are deterministic). An input that
//! fails to read (e.g. a HAR in a case of several devices without `--device`) keeps
//! what was read but gets no `complete` record, so ingesting it again resumes it.
//! The case file's
//! own consent decisions are stored once per case (keyed by their hash).
//!
//! `--keylog FILE` key logs are evidence too: each is copied into the evidence
//! directory and logged with its SHA-256 (an ingest record of kind `keylog`, checked by
//! `verify` like a capture) before the captures are analysed with its secrets. A
//! capture already ingested is not analysed again: give its key log the first time.

use std::cell::RefCell;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use sha2::{Digest, Sha256};

use super::analyze::{default_workers, CaptureReading};
use super::input::{read_input_with_hash, Attribution};
use super::keylog::{self, KeyLogFile};
use super::pipeline::analyze_stream;
use super::tunnel_ports::TunnelPortArgs;
use super::wlan_keys::WlanKeyArgs;
use crate::case::{self, Case};
use crate::consent::ConsentEvent;
use crate::rules::{Analyzer, Options};
use crate::source;
use crate::store::db::Side;
use crate::store::record::{ExchangeBodyRef, IngestBody, Kind, Phase};
use crate::store::{copy_evidence, evidence_name, CaseDir, Store, StoreError, StoredTable};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Capture files to ingest: pcap, pcapng or HAR (detected from the content).
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
    AlreadyPresent { sha256: String },
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
}

pub fn run(args: Args, dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let dir = CaseDir::locate(dir)?;
    let case = Arc::new(case::load(&dir.case_file())?);
    let workers = match args.threads {
        Some(0) | Some(1) => 0,
        Some(n) => n - 1,
        None => default_workers(),
    };
    let keylogs = keylog::load(&args.keylog)?;
    keylog::report(&keylogs);
    let mut reading = CaptureReading::from_args(&keylogs, &args.tunnels, &args.wlan)?;
    reading.all_apps = args.all_apps;
    let mut store = dir.open_store()?;
    let mut failed = false;
    store_case_consent(&mut store, &case)?;
    for k in &keylogs {
        match ingest_keylog(&dir, &mut store, k)? {
            Ingested::AlreadyPresent { sha256 } => println!(
                "{}: key log already stored (SHA-256 {sha256})",
                k.path.display()
            ),
            Ingested::Stored {
                sha256, evidence, ..
            } => println!(
                "{}: key log stored as {evidence} (SHA-256 {sha256})",
                k.path.display()
            ),
        }
    }
    for path in &args.files {
        match ingest_file_with(
            &dir,
            &mut store,
            case.clone(),
            path,
            args.device.clone(),
            &reading,
            workers,
        )? {
            Ingested::AlreadyPresent { sha256 } => println!(
                "{}: already ingested (SHA-256 {sha256}); nothing to do",
                path.display()
            ),
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
        }
    }
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

/// Mutable state shared by the reading and the judging half of the analysis.
struct Sink<'s> {
    store: &'s mut Store,
    sha256: String,
    /// `seq` of the file's `started` ingest record.
    ingest: i64,
    have_exchanges: HashSet<String>,
    have_findings: HashSet<String>,
    exchanges: u64,
    findings: u64,
    wire_events: u64,
    new_records: u64,
    error: Option<StoreError>,
}

impl Sink<'_> {
    fn exchange(&mut self, x: &crate::exchange::Exchange) {
        self.exchanges += 1;
        if self.error.is_some() || self.have_exchanges.contains(&x.id) {
            return;
        }
        let body = ExchangeBodyRef::of(x);
        let side = Side::Exchange {
            ingest: self.ingest,
            id: body.id,
            at: body.at,
            device: body.device,
            host: body.host,
        };
        match self.store.append(Kind::Exchange, &body, side) {
            Ok(_) => self.new_records += 1,
            Err(e) => self.error = Some(e),
        }
    }

    fn observation(&mut self, obs: crate::rules::Observation) {
        for f in &obs.findings {
            self.findings += 1;
            if self.error.is_some() || self.have_findings.contains(&f.id) {
                continue;
            }
            let side = Side::Finding {
                ingest: self.ingest,
                id: &f.id,
                at: f.at,
                device: &f.device,
                rule: f.rule.as_str(),
                host: &f.destination.host,
            };
            match self.store.append(Kind::Finding, f, side) {
                Ok(_) => self.new_records += 1,
                Err(e) => self.error = Some(e),
            }
        }
        for e in &obs.consent_events {
            // Wire events are numbered in analysis order, which is deterministic.
            self.wire_events += 1;
            if self.error.is_some() {
                continue;
            }
            let key = format!("{}:{}", self.sha256, self.wire_events);
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
                Ok(true) => self.new_records += 1,
                Ok(false) => {}
                Err(err) => self.error = Some(err),
            }
        }
    }
}

/// Copies a key log into the evidence directory and logs its SHA-256 (an ingest of
/// kind `keylog`, with no exchanges), once per content.
pub fn ingest_keylog(
    dir: &CaseDir,
    store: &mut Store,
    file: &KeyLogFile,
) -> anyhow::Result<Ingested> {
    let sha256 = crate::store::record::hex(&Sha256::digest(&file.text));
    let phase = store.ingest_phase(&sha256)?;
    if let Some((Phase::Complete, _)) = phase {
        return Ok(Ingested::AlreadyPresent { sha256 });
    }
    let name = file
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "keylog".into());
    let evidence = copy_evidence(dir, &file.path, &evidence_name(&sha256, &name), &sha256)?;
    let mut body = IngestBody {
        phase: Phase::Started,
        name,
        size: file.text.len() as u64,
        sha256: sha256.clone(),
        kind: "keylog".to_string(),
        evidence: evidence.clone(),
        exchanges: None,
        findings: None,
        traffic: None,
    };
    let mut new_records = 0;
    for phase in [Phase::Started, Phase::Complete] {
        // An interrupted earlier run may have written the `started` record already.
        if phase == Phase::Started && store.ingest_phase(&sha256)?.is_some() {
            continue;
        }
        body.phase = phase;
        store.append(
            Kind::Ingest,
            &body,
            Side::Ingest {
                sha256: &sha256,
                phase,
            },
        )?;
        new_records += 1;
    }
    store.commit()?;
    Ok(Ingested::Stored {
        sha256,
        evidence,
        exchanges: 0,
        findings: 0,
        new_records,
        resumed: phase.is_some(),
        complete: true,
        error: None,
    })
}

/// Ingests one capture into the case (see the module documentation).
pub fn ingest_file(
    dir: &CaseDir,
    store: &mut Store,
    case: Arc<Case>,
    path: &Path,
    device: Option<String>,
    workers: usize,
) -> anyhow::Result<Ingested> {
    let reading = CaptureReading::default();
    ingest_file_with(dir, store, case, path, device, &reading, workers)
}

/// [`ingest_file`] reading the capture as `reading` says (`--keylog`,
/// `--tunnel-port`).
pub fn ingest_file_with(
    dir: &CaseDir,
    store: &mut Store,
    case: Arc<Case>,
    path: &Path,
    device: Option<String>,
    reading: &CaptureReading,
    workers: usize,
) -> anyhow::Result<Ingested> {
    let source::Opened { kind, file, .. } = source::open_input(path)?;
    let size = file
        .metadata()
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    drop(file);
    let sha256 = source::file_sha256(path)?;
    let phase = store.ingest_phase(&sha256)?;
    if let Some((Phase::Complete, _)) = phase {
        return Ok(Ingested::AlreadyPresent { sha256 });
    }
    let resumed = phase.is_some();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "capture".into());
    let evidence = copy_evidence(dir, path, &evidence_name(&sha256, &name), &sha256)?;
    let mut body = IngestBody {
        phase: Phase::Started,
        name,
        size,
        sha256: sha256.clone(),
        kind: kind.name().to_string(),
        evidence: evidence.clone(),
        exchanges: None,
        findings: None,
        traffic: None,
    };
    let mut new_records = 0;
    let ingest = match phase {
        Some((_, started)) => started,
        None => {
            new_records += 1;
            store.append(
                Kind::Ingest,
                &body,
                Side::Ingest {
                    sha256: &sha256,
                    phase: Phase::Started,
                },
            )?
        }
    };
    let mut attribution = Attribution::new(&case, device)?;
    attribution.reading = reading.clone();
    let mut analyzer = Analyzer::new(case.clone(), Options::default());
    let sink = RefCell::new(Sink {
        have_exchanges: store.stored_ids(StoredTable::Exchanges, ingest)?,
        have_findings: store.stored_ids(StoredTable::Findings, ingest)?,
        ingest,
        store,
        sha256: sha256.clone(),
        exchanges: 0,
        findings: 0,
        wire_events: 0,
        new_records,
        error: None,
    });
    let evidence_path = dir.root.join(&evidence);
    let mut outcome = None;
    analyze_stream(
        &mut analyzer,
        workers,
        &mut |analyse| {
            let status = String::new;
            // The copy was hashed and checked against `sha256` as it was made.
            let read = read_input_with_hash(
                &evidence_path,
                Some(&sha256),
                &attribution,
                &status,
                &mut |x| {
                    sink.borrow_mut().exchange(&x);
                    // As `analyze`: capture traffic of no case device, or of another
                    // app, is listed, not judged.
                    if attribution.judges(&x) {
                        analyse(x);
                    }
                },
            );
            for w in &read.warnings {
                eprintln!("consentry: warning: {w}");
            }
            for n in &read.notes {
                eprintln!("consentry: {n}");
            }
            outcome = Some(read);
        },
        &mut |_, obs| sink.borrow_mut().observation(obs),
    );
    let mut sink = sink.into_inner();
    if let Some(e) = sink.error.take() {
        return Err(e.into());
    }
    let (error, traffic) = match outcome {
        Some(o) => (o.error, o.traffic),
        None => (None, None),
    };
    if error.is_some() {
        // Not marked complete: what was read is kept, and a later `ingest` of the
        // same file (e.g. with the missing --device) resumes it.
        sink.store.commit()?;
        return Ok(Ingested::Stored {
            sha256,
            evidence,
            exchanges: sink.exchanges,
            findings: sink.findings,
            new_records: sink.new_records,
            resumed,
            complete: false,
            error,
        });
    }
    body.phase = Phase::Complete;
    body.exchanges = Some(sink.exchanges);
    body.findings = Some(sink.findings);
    body.traffic = traffic;
    sink.store.append(
        Kind::Ingest,
        &body,
        Side::Ingest {
            sha256: &sha256,
            phase: Phase::Complete,
        },
    )?;
    sink.store.commit()?;
    Ok(Ingested::Stored {
        sha256,
        evidence,
        exchanges: sink.exchanges,
        findings: sink.findings,
        new_records: sink.new_records + 1,
        resumed,
        complete: true,
        error: None,
    })
}
