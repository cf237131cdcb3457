//! `consentry analyze FILE... --case FILE`: one-shot, in-memory analysis of capture
//! files, printing the findings.

use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};

use crate::case::{self, Case};
use crate::report::{self, Format, InputInfo, RunSummary};
use crate::rules::{Analyzer, Finding, Options, Severity};
use crate::source::{self, HarOptions, InputKind};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Capture files to analyse (HAR; the type is detected from the content).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The case file describing the devices, the app and the consent decisions.
    #[arg(long, value_name = "FILE", env = "CONSENTRY_CASE")]
    pub case: PathBuf,
    /// Attribute traffic without client addresses (HAR) to this device of the case.
    #[arg(long, value_name = "ID")]
    pub device: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Exit with status 1 when a finding is at or above this severity.
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub fail_on: Option<SeverityArg>,
    /// Include the matched personal data values in the output.
    #[arg(long)]
    pub reveal: bool,
    /// Write the findings to this file instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
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

/// Which device file-level traffic without client addresses belongs to.
fn har_device(case: &Case, wanted: Option<&str>) -> anyhow::Result<Option<String>> {
    match (wanted, case.devices.as_slice()) {
        (Some(id), devices) => {
            if devices.iter().any(|d| d.id == id) {
                Ok(Some(id.to_string()))
            } else {
                let known: Vec<&str> = devices.iter().map(|d| d.id.as_str()).collect();
                bail!(
                    "--device {id:?} is not a device of the case (it has: {})",
                    known.join(", ")
                )
            }
        }
        (None, []) => Ok(None),
        (None, [only]) => Ok(Some(only.id.clone())),
        (None, several) => {
            let known: Vec<&str> = several.iter().map(|d| d.id.as_str()).collect();
            bail!(
                "the case has {} devices ({}) and HAR files carry no client address: say which one with --device",
                several.len(),
                known.join(", ")
            )
        }
    }
}

/// A progress bar on a terminal, nothing when stderr is piped.
fn progress(total: u64, name: &str) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) =
        ProgressStyle::with_template("{msg} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} {eta}")
    {
        bar.set_style(style);
    }
    bar.set_message(name.to_string());
    bar
}

/// Counts bytes read through it into a progress bar.
struct Counting<R> {
    inner: R,
    bar: ProgressBar,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

/// The result of analysing a set of files.
pub struct AnalysisRun {
    pub summary: RunSummary,
    pub findings: Vec<Finding>,
}

/// Analyses `files` against `case`; the library entry point behind `analyze`.
pub fn analyze_files(
    case: Arc<Case>,
    files: &[PathBuf],
    device: Option<String>,
    options: Options,
) -> anyhow::Result<AnalysisRun> {
    let mut analyzer = Analyzer::new(case.clone(), options);
    let mut summary = RunSummary {
        case: case.meta.id.clone(),
        ..RunSummary::default()
    };
    let mut findings: Vec<Finding> = Vec::new();
    for path in files {
        let label = path.display().to_string();
        // A bad input is reported and the others still analysed; what was found
        // before a file's defect is kept (DESIGN: nothing already found is lost).
        let opened = source::open_input(path)
            .map_err(anyhow::Error::from)
            .and_then(|(kind, file)| {
                if kind != InputKind::Har {
                    bail!(
                        "{label}: {} input is not supported yet (HAR is)",
                        kind.name()
                    );
                }
                Ok((kind, file, source::file_sha256(path)?))
            });
        let (kind, file, sha256) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                summary.input_errors.push(format!("{e:#}"));
                continue;
            }
        };
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let bar = progress(size, &label);
        let reader = Counting {
            inner: file,
            bar: bar.clone(),
        };
        let opts = HarOptions::new(label.clone(), Some(sha256.clone()));
        let mut exchanges = 0u64;
        let har = source::read_har(reader, &opts, |mut x| {
            x.device = device.clone();
            exchanges += 1;
            let obs = analyzer.observe(&x);
            if obs.matches > 0 {
                summary.exchanges_with_personal_data += 1;
            }
            if x.metadata_only {
                summary.metadata_only += 1;
            }
            for a in x.anomalies.iter().chain(&obs.anomalies) {
                summary.anomalies += 1;
                *summary.anomaly_kinds.entry(a.kind.clone()).or_default() += 1;
            }
            findings.extend(obs.findings);
            summary.add_conflicts(obs.consent_conflicts);
            Ok::<(), std::convert::Infallible>(())
        });
        bar.finish_and_clear();
        match har {
            Ok(har) if har.skipped > 0 => {
                eprintln!(
                    "consentry: warning: {label}: {} entries skipped",
                    har.skipped
                );
                for s in &har.skip_reasons {
                    eprintln!("  entry {}: {}", s.index, s.reason);
                }
            }
            Ok(_) => {}
            Err(e) => summary.input_errors.push(e.to_string()),
        }
        summary.exchanges += exchanges;
        summary.inputs.push(InputInfo {
            path: label,
            kind: kind.name().to_string(),
            sha256,
            exchanges,
        });
    }
    report::sort_findings(&mut findings);
    summary.count_findings(&findings);
    Ok(AnalysisRun { summary, findings })
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let case = Arc::new(case::load(&args.case)?);
    let device = har_device(&case, args.device.as_deref())?;
    let options = Options {
        reveal: args.reveal,
        ..Options::default()
    };
    let run = analyze_files(case, &args.files, device, options)?;

    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(io::stdout().lock())),
    };
    let written = match args.format {
        Format::Table => report::write_table(&run.summary, &run.findings, &mut out),
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
