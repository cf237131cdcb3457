//! `consentry analyze FILE... --case FILE`: one-shot, in-memory analysis of capture
//! files, printing the findings.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use super::final_ids::{self, RunTexts};
use super::ingest;
pub use super::input::CaptureReading;
use super::input::{Attribution, InputFiles, InputOutcome};
use super::pipeline::analyze_stream;
use super::tunnel_ports::TunnelPortArgs;
use super::wlan_keys::WlanKeyArgs;
use crate::case::{self, Case};
use crate::consent::ConsentEvent;
use crate::exchange::Exchange;
use crate::net::tap::DataProbe;
use crate::report::host_mask::HostMask;
use crate::report::{self, CaseFileInfo, CaseInfo, Format, ReportFormat, ReportInput, RunSummary};
use crate::rules::{Analyzer, Finding, Options, Severity};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Capture files to analyse: pcap, pcapng or HAR (the type is detected from the
    /// content, not the name); `-` reads standard input (`tcpdump -w - | consentry
    /// analyze - …`), as does a pipe or FIFO given by name.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The case file describing the devices, the app and the consent decisions.
    #[arg(long, value_name = "FILE", env = "CONSENTRY_CASE")]
    pub case: PathBuf,
    /// Attribute traffic without client addresses (HAR), and capture traffic of
    /// clients that match no device address, to this device of the case.
    #[arg(long, value_name = "ID")]
    pub device: Option<String>,
    /// NSS key log with the TLS secrets of the captures (the `SSLKEYLOGFILE` format);
    /// several allowed. Secrets inside a pcapng are used without it.
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
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Exit with status 1 when a finding is at or above this severity.
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub fail_on: Option<SeverityArg>,
    /// Include the matched personal data values in the output.
    #[arg(long)]
    pub reveal: bool,
    /// Threads to use (default: one per core). Results are the same for any number.
    #[arg(long, short = 'j', value_name = "N")]
    pub threads: Option<usize>,
    /// Write the findings to this file instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also write the case report of this analysis to this file (one self-contained
    /// HTML file by default).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Form of the `--report` file.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = ReportFormat::Html)]
    pub report_format: ReportFormat,
    /// Read capture files through the page cache. By default a capture on a local
    /// disk file system (Linux) that is not already in the page cache is read with
    /// direct I/O, which spares the kernel's copy of every byte and keeps the cache
    /// for the rest of the machine.
    #[arg(long)]
    pub no_direct_io: bool,
    /// Judge the traffic of every app of a capture that names apps (PCAPdroid's), not
    /// only the case's `[app]`.
    #[arg(long)]
    pub all_apps: bool,
    #[command(flatten)]
    pub tunnels: TunnelPortArgs,
    #[command(flatten)]
    pub wlan: WlanKeyArgs,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SeverityArg {
    Low,
    Medium,
    High,
}

impl From<SeverityArg> for Severity {
    fn from(s: SeverityArg) -> Self {
        match s {
            SeverityArg::Low => Severity::Low,
            SeverityArg::Medium => Severity::Medium,
            SeverityArg::High => Severity::High,
        }
    }
}

/// Characters of a request line kept for the report's examples.
pub const MAX_REQUEST_LINE_CHARS: usize = 1024;

/// The result of analysing a set of files.
pub struct AnalysisRun {
    pub summary: RunSummary,
    pub findings: Vec<Finding>,
    /// Every consent event of the case's devices: the case file's decisions, then
    /// those announced by wire signals (bounded per device by the analyzer).
    pub consent: Vec<ConsentEvent>,
    /// Request line of each exchange that has findings, by exchange id (for the
    /// report's examples; unmasked, cut to [`MAX_REQUEST_LINE_CHARS`]).
    pub request_lines: BTreeMap<String, String>,
    /// The servers that answered for each host the findings name.
    pub servers: crate::report::servers::ServersByHost,
    /// The case's search, for the table's host names ([`HostMask`]).
    pub data_probe: DataProbe,
}

impl AnalysisRun {
    /// The report input of this one-shot run (no chain head, no generation time).
    pub fn report_input(&self, case: &Case) -> ReportInput {
        ReportInput {
            case: CaseInfo::from_case(case),
            consent: self.consent.clone(),
            findings: self.findings.clone(),
            request_lines: self.request_lines.clone(),
            servers: self.servers.clone(),
            evidence: self.summary.inputs.clone(),
            exchanges: self.summary.exchanges,
            platform_exchanges: self.summary.platform_exchanges,
            platform_hosts: self.summary.platform_hosts.clone(),
            traffic: self.summary.traffic.clone(),
            chain_head: None,
            generated_at: None,
        }
    }
}

/// `METHOD scheme://host/path?query`, or the host alone for a metadata-only
/// connection; cut to [`MAX_REQUEST_LINE_CHARS`].
fn request_line(x: &Exchange) -> String {
    let line = if x.metadata_only || x.method.is_empty() {
        format!("(connection only) {}", x.host)
    } else {
        format!("{} {}", x.method, x.url())
    };
    line.chars().take(MAX_REQUEST_LINE_CHARS).collect()
}

/// Analyses `files` against `case`; the library entry point behind `analyze`.
///
/// Traffic of capture clients that are no case device (and not given `device`) is
/// counted in the summary, not analysed: its consent state is unknown. `workers`
/// threads prepare exchanges besides the calling thread (0: all on the calling
/// thread); the results are the same for any number.
pub fn analyze_files(
    case: Arc<Case>,
    files: &[PathBuf],
    device: Option<String>,
    options: Options,
    workers: usize,
) -> anyhow::Result<AnalysisRun> {
    let reading = CaptureReading::default();
    analyze_files_with(case, files, device, &reading, options, workers)
}

/// [`analyze_files`] decrypting the captures' TLS with `keylogs` (`--keylog` files'
/// contents, see [`super::keylog`]) besides the secrets the captures carry.
pub fn analyze_files_with_keylogs(
    case: Arc<Case>,
    files: &[PathBuf],
    device: Option<String>,
    keylogs: &[Arc<[u8]>],
    options: Options,
    workers: usize,
) -> anyhow::Result<AnalysisRun> {
    let reading = CaptureReading {
        keylogs: keylogs.to_vec(),
        ..CaptureReading::default()
    };
    analyze_files_with(case, files, device, &reading, options, workers)
}

/// [`analyze_files`] reading the captures as `reading` says.
pub fn analyze_files_with(
    case: Arc<Case>,
    files: &[PathBuf],
    device: Option<String>,
    reading: &CaptureReading,
    options: Options,
    workers: usize,
) -> anyhow::Result<AnalysisRun> {
    let passes = Passes::One { direct_io: true };
    analyze_inputs(case, files, device, reading, options, workers, passes)
}

/// How often a capture file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Passes {
    /// Hashed while parsed, its exchanges named provisionally until the end (the
    /// first pass was ~0.3 s of SHA-256 and up to 0.76 s of kernel copying of a
    /// 3 CPU-s run on the 522 MB bench file), with direct I/O unless told not to.
    One { direct_io: bool },
    /// Hashed, then parsed with the final ids: what `exchanges` and `ingest` do, and
    /// the model the single pass is tested against.
    #[cfg_attr(not(test), allow(dead_code))]
    Two,
}

fn analyze_inputs(
    case: Arc<Case>,
    files: &[PathBuf],
    device: Option<String>,
    reading: &CaptureReading,
    options: Options,
    workers: usize,
    passes: Passes,
) -> anyhow::Result<AnalysisRun> {
    let provisional = match passes {
        Passes::One { .. } => Some(final_ids::fresh_ids()?),
        Passes::Two => None,
    };
    let mut attribution = Attribution::new(&case, device)?;
    attribution.reading = reading.clone();
    attribution.direct_io = matches!(passes, Passes::One { direct_io: true });
    // Nothing `analyze` reports or judges reads a response's header fields.
    attribution.keep_response_headers = false;
    let mut analyzer = Analyzer::new(case.clone(), options);
    attribution.unparsed_overlap = analyzer.payload_overlap();
    attribution.dns_probe = Some(analyzer.data_probe());
    attribution.tail_search = Some(analyzer.tail_search());
    let mut summary = RunSummary {
        case: case.meta.id.clone(),
        ..RunSummary::default()
    };
    let mut read = RunSummary::default();
    let mut outcomes: Vec<InputOutcome> = Vec::new();
    let mut findings: Vec<Finding> = Vec::new();
    // Collected in judging order and sorted once at the end: an insertion into a map
    // of thousands of ids per exchange with findings waits on a cache miss per key
    // comparison (about 1 % of a `-j 1` run on the 522 MB bench file, perf).
    let mut request_lines: Vec<(String, String)> = Vec::new();
    let mut servers = crate::report::servers::ServersByHost::new();
    let mut platform_hosts = crate::report::HostCounts::default();
    let found = Cell::new(0usize);
    let status = || format!("{} findings", found.get());
    analyze_stream(
        &mut analyzer,
        workers,
        &mut |analyse| {
            let mut each = |x: Exchange| {
                read.exchanges += 1;
                if x.metadata_only {
                    read.metadata_only += 1;
                }
                count_anomalies(&mut read, &x.anomalies);
                if attribution.judges(&x) {
                    analyse(x);
                }
            };
            let mut inputs = InputFiles::new(&attribution);
            let ordered = super::capture_order::in_capture_order(files);
            if let Some(note) = super::capture_order::reordered_note(files, &ordered) {
                eprintln!("consentry: {note}");
            }
            for (index, path) in ordered.iter().enumerate() {
                // A bad input is reported and the others still analysed; what was
                // found before a file's defect is kept (nothing found is lost).
                match &provisional {
                    Some(ids) => {
                        let ids = ids.input(index as u64);
                        inputs.read_once(path, ids, &status, &mut each)
                    }
                    None => inputs.read(path, &status, &mut each),
                }
            }
            outcomes = inputs.finish(&mut each);
            super::input::print_messages(&outcomes);
        },
        &mut |x, obs| {
            if !obs.findings.is_empty() {
                request_lines.push((x.id.clone(), request_line(x)));
                crate::report::servers::note(
                    &mut servers,
                    obs.findings.iter().map(|f| f.destination.host.as_str()),
                    x.server.as_deref(),
                    x.tls.as_ref().and_then(|t| t.server_certificate.as_deref()),
                );
            }
            if obs.matches > 0 {
                summary.exchanges_with_personal_data += 1;
            }
            if obs.platform {
                summary.platform_with_personal_data += u64::from(obs.matches > 0);
                platform_hosts.add(&x.host);
            }
            count_anomalies(&mut summary, &obs.anomalies);
            findings.extend(obs.findings);
            found.set(findings.len());
            summary.add_conflicts(obs.consent_conflicts);
        },
    );
    summary.exchanges = read.exchanges;
    summary.platform_exchanges = platform_hosts.total();
    summary.platform_hosts = platform_hosts.busiest(crate::report::MAX_PLATFORM_HOSTS_LISTED);
    summary.metadata_only = read.metadata_only;
    summary.anomalies += read.anomalies;
    for (kind, n) in read.anomaly_kinds {
        *summary.anomaly_kinds.entry(kind).or_default() += n;
    }
    let mut consent = Vec::new();
    for timeline in [analyzer.timeline(), analyzer.wire_timeline()] {
        for d in &case.devices {
            consent.extend(timeline.events(&d.id).iter().cloned());
        }
    }
    if let Some(ids) = &provisional {
        // Every file's SHA-256 is known now: the exchanges get their final ids,
        // before anything is sorted by them.
        let file_sha256: Vec<Option<String>> = outcomes
            .iter()
            .map(|o| o.info.as_ref().map(|i| i.sha256.clone()))
            .collect();
        let texts = RunTexts {
            findings: &mut findings,
            consent: &mut consent,
            conflict_examples: &mut summary.consent_conflict_examples,
            request_lines: &mut request_lines,
        };
        let dropped = final_ids::finalize(ids, &file_sha256, texts);
        for (outcome, n) in outcomes.iter_mut().zip(dropped) {
            if let (Some(e), 1..) = (&mut outcome.error, n) {
                e.push_str(&format!(
                    " ({n} findings of it are dropped: their ids derive from the file's SHA-256)"
                ));
            }
        }
    }
    for outcome in outcomes {
        if let Some(traffic) = outcome.traffic {
            summary
                .traffic
                .get_or_insert_with(Default::default)
                .merge(traffic);
        }
        summary.inputs.extend(outcome.info);
        summary.input_errors.extend(outcome.error);
    }
    report::sort_findings(&mut findings);
    summary.count_findings(&findings);
    let run = AnalysisRun {
        summary,
        findings,
        consent,
        // A stable sort that keeps the last of equal keys: what inserting one by one
        // gave (the same file read twice yields the same ids).
        request_lines: request_lines.into_iter().collect(),
        servers,
        data_probe: analyzer.data_probe(),
    };
    if let Some(ids) = &provisional {
        debug_assert!(
            !final_ids::any_left(ids, &run),
            "a provisional exchange id is left in the run"
        );
    }
    Ok(run)
}

#[cfg(test)]
mod single_pass_tests;

/// Writes the case report to `path` (created or truncated).
pub fn write_report_file(
    path: &std::path::Path,
    input: &ReportInput,
    format: ReportFormat,
) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::new(file);
    report::write_report(input, format, &mut out)
        .and_then(|()| out.flush())
        .with_context(|| format!("writing report {}", path.display()))
}

fn count_anomalies(summary: &mut RunSummary, anomalies: &[crate::exchange::Anomaly]) {
    for a in anomalies {
        summary.anomalies += 1;
        *summary.anomaly_kinds.entry(a.kind.clone()).or_default() += 1;
    }
}

/// Worker threads by default: one per core beyond the calling thread's, at least one.
pub fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get().max(2) - 1)
        .unwrap_or(1)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (case, case_sha256) = case::load_hashed(&args.case)?;
    let case = Arc::new(case);
    let keylogs = super::keylog::load(&args.keylog)?;
    super::keylog::report(&keylogs);
    let wlan_files = args.wlan.read_files()?;
    let wlan_keys = super::wlan_keys::keys_of(&wlan_files);
    let mut reading = CaptureReading::from_args(&keylogs, &args.tunnels, wlan_keys)?;
    reading.all_apps = args.all_apps;
    reading.secrets_first = args.secrets_first;
    let options = Options {
        reveal: args.reveal,
        ..Options::default()
    };
    let workers = match args.threads {
        Some(0) | Some(1) => 0,
        Some(n) => n - 1,
        None => default_workers(),
    };
    let files = super::input::input_paths(&args.files)?;
    let run = analyze_inputs(
        case.clone(),
        &files,
        args.device.clone(),
        &reading,
        options,
        workers,
        Passes::One {
            direct_io: !args.no_direct_io,
        },
    )?;
    if let Some(path) = &args.report {
        // The report names what its inputs were analysed with, as a case report does.
        let side_files = ingest::side_files(&args.case, &case_sha256, &keylogs, &wlan_files);
        let read_with = ingest::options_of(&side_files, args.device.clone(), &reading).describe();
        let mut input = run.report_input(&case);
        input.mask_hosts(&mut HostMask::new(run.data_probe.clone(), false));
        input.case.file = Some(CaseFileInfo {
            sha256: crate::source::hex(&case_sha256),
            path: args.case.display().to_string(),
            note: None,
        });
        for e in &mut input.evidence {
            e.read_with = read_with.clone();
        }
        write_report_file(path, &input, args.report_format)?;
    }

    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(io::stdout().lock())),
    };
    let written = match args.format {
        Format::Table => {
            let mut hosts = HostMask::new(run.data_probe.clone(), args.reveal);
            report::write_table(&run.summary, &run.findings, &mut hosts, &mut out)
        }
        Format::Json => report::write_json(&run.summary, &run.findings, &mut out),
        Format::Jsonl => report::write_jsonl(&run.findings, &mut out),
    };
    match written.and_then(|()| out.flush()) {
        Ok(()) => {}
        // A closed pipe (`| head`) is the reader's choice, not an error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(e).context("writing findings"),
    }
    // Input errors come after the findings that were still made, and win over
    // `--fail-on`: the analysis is incomplete.
    if !run.summary.input_errors.is_empty() {
        for e in &run.summary.input_errors {
            eprintln!("consentry: error: {e}");
        }
        return Ok(ExitCode::from(super::EXIT_USAGE));
    }
    let fail = args
        .fail_on
        .is_some_and(|t| report::any_at_or_above(&run.findings, t.into()));
    Ok(if fail {
        ExitCode::from(super::EXIT_FINDINGS)
    } else {
        ExitCode::SUCCESS
    })
}
