//! The command line (DESIGN.md §9): one module per subcommand, each with its `Args`
//! and a `run` function. Exit codes: 0 success, 1 findings at or above `--fail-on`,
//! 2 bad usage or unreadable input.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod analyze;
mod anomaly_tally;
mod apps;
pub mod ca;
pub mod capture_order;
pub mod case_check;
pub mod consent;
pub mod decode;
pub mod exchanges;
pub mod export;
mod final_ids;
pub mod findings;
pub mod ingest;
pub mod init;
pub mod input;
pub mod keylog;
pub mod live_store;
pub mod pipeline;
mod prefetch;
pub mod proxy;
pub mod prune;
pub mod report;
pub mod seal;
pub mod signatures;
#[cfg(feature = "live")]
pub mod tap;
#[cfg(feature = "live")]
pub mod tap_judge;
pub mod tunnel_ports;
pub mod verify;
pub mod wlan_keys;

/// Findings at or above `--fail-on` were reported.
pub const EXIT_FINDINGS: u8 = 1;
/// Bad usage or unreadable input.
pub const EXIT_USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "consentry",
    version,
    about = "Finds personal data sent before consent, after refusal or beyond the purposes consented to"
)]
pub struct Cli {
    /// The case directory for case commands (`ingest`, `verify`, `findings`,
    /// `exchanges` without files, `report`, `seal`, `prune`, `export`, and `consent`
    /// without a running proxy); default: found from the current directory upward.
    #[arg(
        short = 'C',
        long = "case-dir",
        global = true,
        value_name = "DIR",
        env = "CONSENTRY_CASE_DIR"
    )]
    pub case_dir: Option<std::path::PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Analyse capture files (pcap, pcapng, HAR) against a case and print the findings.
    Analyze(analyze::Args),
    /// List the exchanges a capture holds (or, without files, the case store holds):
    /// time, device, host, request, status, TLS.
    Exchanges(exchanges::Args),
    /// Create a case directory: case file, evidence directory and store.
    Init(init::Args),
    /// Copy captures into the case as evidence and store their exchanges and findings.
    Ingest(ingest::Args),
    /// Check the case store's hash chain, indexes and evidence files (or an export
    /// bundle).
    Verify(verify::Args),
    /// List the findings stored in the case.
    Findings(findings::Args),
    /// Write the case report (HTML, Markdown or JSON) of everything stored in the case.
    Report(report::Args),
    /// Write the case as one zip bundle (report, findings, exchanges as JSON lines and
    /// HAR, evidence, log records, manifest) that `verify BUNDLE` checks.
    Export(export::Args),
    /// Sign the case log's head with the case's Ed25519 key.
    Seal(seal::Args),
    /// Remove old exchanges without findings from the case store, keeping the log
    /// verifiable.
    Prune(prune::Args),
    /// Work with case files.
    #[command(subcommand)]
    Case(CaseCommand),
    /// Decode a consent string (IAB TCF v2, GPP or US Privacy) and print every field.
    Decode(decode::Args),
    /// Capture live from a network interface (or read packets piped from another
    /// machine's tcpdump) and print findings as they happen (built with the `live`
    /// feature).
    #[cfg(feature = "live")]
    Tap(tap::Args),
    /// Work with the signature databases (trackers, citations).
    #[command(subcommand)]
    Signatures(SignaturesCommand),
    /// Run the intercepting proxy for test devices and print findings as they happen.
    Proxy(proxy::Args),
    /// Mark a consent decision in a running proxy (through its control API).
    Consent(consent::Args),
    /// Work with the proxy's certificate authority.
    #[command(subcommand)]
    Ca(CaCommand),
}

#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Print the CA certificate (created on first use).
    Export(ca::ExportArgs),
}

#[derive(Debug, Subcommand)]
pub enum CaseCommand {
    /// Validate a case file and print what it says.
    Check(case_check::Args),
}

#[derive(Debug, Subcommand)]
pub enum SignaturesCommand {
    /// Validate the tracker database and citation table.
    Check(signatures::Args),
}

impl Command {
    /// Whether this is `analyze`: a short batch run whose peak memory is bounded by
    /// design, so the binary keeps freed memory for reuse rather than handing it back
    /// to the kernel ([`crate::allocator::Mimalloc::keep_freed_memory`]). `ingest`
    /// runs the same analysis but showed no gain (its page faults are the store's).
    pub fn is_capture_batch(&self) -> bool {
        matches!(self, Command::Analyze(_))
    }

    /// Whether this runs until stopped, serving traffic (`proxy`, `tap`): its freed
    /// memory is handed back to the kernel only after [`Command::SERVER_PURGE_DELAY`]
    /// ([`crate::allocator::Mimalloc::purge_freed_memory_after`]), so a steady load
    /// does not fault in pages it freed a second ago while an idle server still
    /// returns to its baseline.
    pub fn is_server(&self) -> bool {
        match self {
            Command::Proxy(_) => true,
            #[cfg(feature = "live")]
            Command::Tap(_) => true,
            _ => false,
        }
    }

    /// How long a server's freed memory stays free before it goes back to the kernel.
    pub const SERVER_PURGE_DELAY: std::time::Duration = std::time::Duration::from_secs(10);
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let dir = cli.case_dir.as_deref();
    match cli.command {
        Command::Analyze(args) => analyze::run(args),
        Command::Exchanges(args) => exchanges::run(args, dir),
        Command::Init(args) => init::run(args, dir),
        Command::Ingest(args) => ingest::run(args, dir),
        Command::Verify(args) => verify::run(args, dir),
        Command::Findings(args) => findings::run(args, dir),
        Command::Report(args) => report::run(args, dir),
        Command::Export(args) => export::run(args, dir),
        Command::Seal(args) => seal::run(args, dir),
        Command::Prune(args) => prune::run(args, dir),
        Command::Case(CaseCommand::Check(args)) => case_check::run(args),
        Command::Decode(args) => decode::run(args),
        Command::Signatures(SignaturesCommand::Check(args)) => signatures::run(args),
        #[cfg(feature = "live")]
        Command::Tap(args) => tap::run(args),
        Command::Proxy(args) => proxy::run(args),
        Command::Consent(args) => consent::run(args, dir),
        Command::Ca(CaCommand::Export(args)) => ca::export(args),
    }
}

/// One line per finding, as the live sources print them:
/// `10:15:29.112345 pixel7 high share-before-consent graph.facebook.com advertising_id(plain)`,
/// the receiver named `host` (its name as
/// [`shown_host`](crate::report::host_mask::shown_host) shows it).
pub fn finding_line(f: &crate::rules::Finding, host: &str) -> String {
    let data: Vec<String> = f
        .data
        .iter()
        .map(|d| format!("{}({})", d.kind, d.encoding))
        .collect();
    let at = f.at.to_string();
    format!(
        "{} {} {} {} {} {}",
        at.get(11..26).unwrap_or(&at),
        f.device,
        f.severity.as_str(),
        f.rule.as_str(),
        host,
        data.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(args: &[&str]) -> Command {
        Cli::try_parse_from(args)
            .expect("a valid command line")
            .command
    }

    /// `main` picks the allocator's purge policy from these before any thread starts.
    #[test]
    fn batch_and_server_commands_are_told_apart() {
        let analyze = command(&["consentry", "analyze", "--case", "c.toml", "a.pcap"]);
        assert!(analyze.is_capture_batch() && !analyze.is_server());
        let proxy = command(&["consentry", "proxy", "--case", "c.toml"]);
        assert!(proxy.is_server() && !proxy.is_capture_batch());
        let report = command(&["consentry", "report"]);
        assert!(!report.is_server() && !report.is_capture_batch());
        #[cfg(feature = "live")]
        assert!(command(&["consentry", "tap", "--case", "c.toml", "-i", "lo"]).is_server());
    }
}
