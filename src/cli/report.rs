//! `consentry report [--out FILE] [--format html|md|json]`: the case report of
//! everything stored in the case directory — every ingested capture's findings, the
//! consent decisions, the evidence files with their hashes, and the chain head that
//! `consentry verify` checks. The same renderer as `analyze --report`.

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use crate::case;
use crate::consent::ConsentEvent;
use crate::report::host_mask::HostMask;
use crate::report::{
    write_report, CaseFileInfo, CaseInfo, InputInfo, ReportFormat, ReportInput, TrafficSummary,
};
use crate::rules::{Analyzer, Finding, Options};
use crate::source::hex;
use crate::store::record::{
    short_sha256, EvidenceFileBody, ExchangeBody, IngestBody, Kind, Phase, WrittenFiles, KIND_CASE,
};
use crate::store::{CaseDir, Query, StoredTable};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write the report here (default: standard output).
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// `html` (one self-contained file), `md` or `json`.
    #[arg(long, value_enum, default_value_t = ReportFormat::Html)]
    pub format: ReportFormat,
}

pub fn run(args: Args, dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let dir = CaseDir::locate(dir)?;
    let input = report_input(&dir)?;
    let mut out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(io::stdout().lock())),
    };
    match write_report(&input, args.format, &mut out).and_then(|()| out.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(e).context("writing the report"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Everything the report shows, read from the case directory's store.
pub fn report_input(dir: &CaseDir) -> anyhow::Result<ReportInput> {
    let store = dir.open_store()?;
    let parse_err = |what: &str| format!("a stored {what} record does not read back");
    let mut ingests = Vec::new();
    for body in store.bodies(Kind::Ingest)? {
        let ingest: IngestBody =
            serde_json::from_str(&body).with_context(|| parse_err("ingest"))?;
        ingests.push(ingest);
    }
    let (case, case_file) = case_frame(dir, &stored_case_files(&ingests))?;
    let findings: Vec<Finding> = store
        .query(StoredTable::Findings, &Query::default())?
        .iter()
        .map(|body| serde_json::from_str(body))
        .collect::<Result<_, _>>()
        .with_context(|| parse_err("finding"))?;
    let consent: Vec<ConsentEvent> = store
        .bodies(Kind::Consent)?
        .iter()
        .map(|body| serde_json::from_str(body))
        .collect::<Result<_, _>>()
        .with_context(|| parse_err("consent"))?;
    // Example request lines and servers of the exchanges that findings name.
    let mut named: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for f in &findings {
        named
            .entry(f.exchange.as_str())
            .or_default()
            .push(f.destination.host.as_str());
    }
    let mut servers = crate::report::servers::ServersByHost::new();
    let exchanges = store.query(StoredTable::Exchanges, &Query::default())?;
    let mut request_lines = BTreeMap::new();
    // Exchanges by the tap's ring file their locators name.
    let mut in_ring_file: BTreeMap<String, u64> = BTreeMap::new();
    let mut platform = PlatformExchanges::new(&case);
    for body in &exchanges {
        let x: ExchangeBody = serde_json::from_str(body).with_context(|| parse_err("exchange"))?;
        platform.note(&x);
        if let Some(hosts) = named.get(x.id.as_str()) {
            request_lines.insert(x.id.clone(), request_line(&x));
            crate::report::servers::note(
                &mut servers,
                hosts.iter().copied(),
                x.server.as_deref(),
                x.server_certificate.as_deref(),
            );
        }
        for name in crate::source::ring::files_in_locator(&x.locator) {
            match in_ring_file.get_mut(name) {
                Some(n) => *n += 1,
                None => {
                    in_ring_file.insert(name.to_string(), 1);
                }
            }
        }
    }
    let mut evidence = Vec::new();
    let mut traffic: Option<TrafficSummary> = None;
    let mut all_apps = false;
    for ingest in ingests {
        all_apps |= ingest.options.as_ref().is_some_and(|o| o.all_apps);
        if ingest.phase == Phase::Complete {
            if let Some(t) = ingest.traffic {
                traffic.get_or_insert_with(TrafficSummary::default).merge(t);
            }
            evidence.push(InputInfo {
                path: ingest.evidence,
                kind: ingest.kind,
                sha256: ingest.sha256,
                exchanges: ingest.exchanges.unwrap_or(0),
                read_with: ingest.options.map(|o| o.describe()).unwrap_or_default(),
            });
        }
    }
    // The tap's ring files that the log still expects (what `verify` re-hashes), with
    // the exchanges whose locators name them.
    let mut written = WrittenFiles::default();
    for (n, body) in store.bodies(Kind::Evidence)?.iter().enumerate() {
        let file: EvidenceFileBody =
            serde_json::from_str(body).with_context(|| parse_err("evidence"))?;
        written
            .add(n as i64, file)
            .map_err(|e| anyhow::anyhow!("{}: {e}", parse_err("evidence")))?;
    }
    for (_, file) in written.expected() {
        let name = file.path.rsplit('/').next().unwrap_or(&file.path);
        evidence.push(InputInfo {
            path: file.path.clone(),
            kind: file.kind.clone(),
            sha256: file.sha256.clone(),
            exchanges: in_ring_file.get(name).copied().unwrap_or(0),
            read_with: Vec::new(),
        });
    }
    let head = store.head()?;
    let (platform_exchanges, platform_hosts) = platform.tally(all_apps);
    let mut input = ReportInput {
        case: CaseInfo {
            file: Some(case_file),
            ..CaseInfo::from_case(&case)
        },
        consent,
        findings,
        request_lines,
        servers,
        evidence,
        exchanges: exchanges.len() as u64,
        platform_exchanges,
        platform_hosts,
        traffic,
        chain_head: (head.seq > 0).then(|| crate::source::hex(&head.hash)),
        generated_at: None,
    };
    // Host names carrying the data of the case the report is framed by are masked.
    let probe = Analyzer::new(Arc::new(case), Options::default()).data_probe();
    input.mask_hosts(&mut HostMask::new(probe, false));
    Ok(input)
}

/// The case files the runs stored as evidence, as (SHA-256, evidence copy), in the
/// order they were first stored (a content is stored once).
fn stored_case_files(ingests: &[IngestBody]) -> Vec<(&str, &str)> {
    let mut files: Vec<(&str, &str)> = Vec::new();
    for i in ingests {
        if i.kind == KIND_CASE
            && i.phase == Phase::Complete
            && !files.iter().any(|(sha256, _)| *sha256 == i.sha256)
        {
            files.push((i.sha256.as_str(), i.evidence.as_str()));
        }
    }
    files
}

/// The case file the report is framed by, of the case directory's own and the ones
/// the runs read (`stored`, from [`stored_case_files`]): its own when a run read it
/// (or no run stored one); else the last stored copy that still reads back with its
/// hash, saying why. A case directory whose own file is edited or broken after its
/// runs still gets the report of what was analysed; only when nothing can be read is
/// it an error (the case directory's file's).
fn case_frame(
    dir: &CaseDir,
    stored: &[(&str, &str)],
) -> anyhow::Result<(case::Case, CaseFileInfo)> {
    let own_path = dir.case_file();
    let own_name = crate::store::CASE_FILE;
    let own = case::load_hashed(&own_path).map(|(case, sha256)| (case, hex(&sha256)));
    let other_versions = |sha256: &str| {
        let others = stored.iter().filter(|(s, _)| *s != sha256).count();
        (others > 0).then(|| {
            format!(
                "the runs read {} versions of the case file, each input's row naming the \
                 one it was read with; this report is framed by the case directory's",
                others + 1
            )
        })
    };
    let own_was_read = matches!(&own, Ok((_, sha256))
        if stored.is_empty() || stored.iter().any(|(s, _)| s == sha256));
    if own_was_read {
        let (case, sha256) = own?;
        let info = CaseFileInfo {
            note: other_versions(&sha256),
            sha256,
            path: own_name.into(),
        };
        return Ok((case, info));
    }
    let why_not_own = match &own {
        Ok((_, sha256)) => format!(
            "the case directory's {own_name} (SHA-256 {}) was edited after the runs and \
             none of them read it",
            short_sha256(sha256)
        ),
        Err(e) => format!("the case directory's {own_name} does not read: {e}"),
    };
    let mut unreadable = Vec::new();
    for (sha256, evidence) in stored.iter().rev() {
        match case::load_hashed(&dir.root.join(evidence)) {
            Ok((case, read)) if hex(&read) == *sha256 => {
                let info = CaseFileInfo {
                    sha256: sha256.to_string(),
                    path: evidence.to_string(),
                    note: Some(format!(
                        "{why_not_own}; this report is framed by the case file the runs \
                         stored last, {evidence}"
                    )),
                };
                return Ok((case, info));
            }
            Ok(_) => unreadable.push(format!("{evidence} no longer has its SHA-256")),
            Err(e) => unreadable.push(e.to_string()),
        }
    }
    // No stored copy reads back (`verify` says more): the case directory's own, if
    // it reads, saying so.
    let (case, sha256) = own?;
    let info = CaseFileInfo {
        note: Some(format!(
            "none of the case files the runs read reads back ({}); this report is framed \
             by the case directory's {own_name}, which no run read",
            unreadable.join("; ")
        )),
        sha256,
        path: own_name.into(),
    };
    Ok((case, info))
}

/// The stored exchanges that the analysis left unjudged because they went to the
/// operating systems' own services, counted as `analyze` counts them: among the
/// exchanges it judges (the proxy's, which name no file, and a file's of a case
/// device; a capture's other clients are never judged), those of the case's app
/// unless an ingest judged every app (`--all-apps`).
struct PlatformExchanges {
    /// `None` when the case judges them (`rules.flag_platform`): none to count.
    classifier: Option<crate::parties::Classifier>,
    of_the_app: crate::report::HostCounts,
    of_other_apps: crate::report::HostCounts,
}

impl PlatformExchanges {
    fn new(case: &case::Case) -> Self {
        PlatformExchanges {
            classifier: (!case.rules.flag_platform)
                .then(|| crate::parties::Classifier::new(&case.app)),
            of_the_app: crate::report::HostCounts::default(),
            of_other_apps: crate::report::HostCounts::default(),
        }
    }

    fn note(&mut self, x: &ExchangeBody) {
        let Some(classifier) = &self.classifier else {
            return;
        };
        let judged = x.device.is_some() || x.file_sha256.is_none();
        if !judged || !classifier.classify(&x.host).platform {
            return;
        }
        if x.app.as_ref().is_some_and(|a| a.under_test == Some(false)) {
            self.of_other_apps.add(&x.host);
        } else {
            self.of_the_app.add(&x.host);
        }
    }

    /// How many, and their busiest hosts.
    fn tally(mut self, all_apps: bool) -> (u64, Vec<(String, u64)>) {
        if all_apps {
            self.of_the_app.merge(&self.of_other_apps);
        }
        let hosts = self
            .of_the_app
            .busiest(crate::report::MAX_PLATFORM_HOSTS_LISTED);
        (self.of_the_app.total(), hosts)
    }
}

/// `METHOD scheme://host/path`, or the host alone for a connection that was not
/// readable (the form `analyze --report` uses).
fn request_line(x: &ExchangeBody) -> String {
    let line = if x.metadata_only || x.method.is_empty() {
        format!("(connection only) {}", x.host)
    } else {
        format!("{} {}://{}{}", x.method, x.scheme, x.host, x.path)
    };
    line.chars()
        .take(super::analyze::MAX_REQUEST_LINE_CHARS)
        .collect()
}
