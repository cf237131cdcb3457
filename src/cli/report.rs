//! `consentry report [--out FILE] [--format html|md|json]`: the case report of
//! everything stored in the case directory — every ingested capture's findings, the
//! consent decisions, the evidence files with their hashes, and the chain head that
//! `consentry verify` checks. The same renderer as `analyze --report`.

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use crate::case;
use crate::consent::ConsentEvent;
use crate::report::{write_report, CaseInfo, InputInfo, ReportFormat, ReportInput, TrafficSummary};
use crate::rules::Finding;
use crate::store::record::{EvidenceFileBody, ExchangeBody, IngestBody, Kind, Phase, WrittenFiles};
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
    let case = case::load(&dir.case_file())?;
    let store = dir.open_store()?;
    let parse_err = |what: &str| format!("a stored {what} record does not read back");
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
    for body in store.bodies(Kind::Ingest)? {
        let ingest: IngestBody =
            serde_json::from_str(&body).with_context(|| parse_err("ingest"))?;
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
    Ok(ReportInput {
        case: CaseInfo::from_case(&case),
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
    })
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
