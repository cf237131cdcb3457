//! `consentry exchanges FILE...`: what a capture holds, one line per exchange (time,
//! device, host, request, status, TLS): the quick look a Wireshark user takes before
//! analysing. No case is needed; with `--case` the devices are named.
//!
//! `table` and `json` are sorted by time (then id) and so hold the list in memory;
//! `jsonl` streams each exchange as soon as it is complete (in the order the capture
//! completes them, which is deterministic), for pipelines over large captures.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use super::input::{Attribution, CaptureReading, InputFiles};
use super::tunnel_ports::TunnelPortArgs;
use super::wlan_keys::WlanKeyArgs;
use crate::case::{self, Case};
use crate::exchange::Exchange;
use crate::report::{fit, Format, InputInfo};
use crate::store::glob::Glob;
use crate::store::record::ExchangeBody;
use crate::store::{CaseDir, Query, StoredTable};
use crate::timestamp::Timestamp;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Capture files: pcap, pcapng or HAR (detected from the content); `-` reads
    /// standard input. Without files, the exchanges stored in the case directory are
    /// listed (the stored metadata, filtered with --since/--until/--device/--host).
    /// Files' exchanges are filtered with --since/--until/--host.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// A case file, to name the devices by their addresses.
    #[arg(long, value_name = "FILE", env = "CONSENTRY_CASE")]
    pub case: Option<PathBuf>,
    /// Attribute HAR traffic, and capture traffic of unknown clients, to this device
    /// (with files); only this device's exchanges (on a case).
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
    /// Only exchanges from this time on (RFC 3339, inclusive).
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub since: Option<Timestamp>,
    /// Only exchanges before this time (RFC 3339, exclusive).
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub until: Option<Timestamp>,
    /// Only hosts matching this glob (`*.example.com`; SQLite's GLOB: `*`, `?`,
    /// `[a-z]`, case-sensitive).
    #[arg(long, value_name = "GLOB")]
    pub host: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write to this file instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub tunnels: TunnelPortArgs,
    #[command(flatten)]
    pub wlan: WlanKeyArgs,
}

/// Path characters shown in the table before the cut.
const TABLE_PATH_CHARS: usize = 60;

fn parse_time(s: &str) -> Result<Timestamp, String> {
    Timestamp::parse_rfc3339(s).map_err(|e| e.to_string())
}

pub fn run(args: Args, dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    if args.files.is_empty() {
        if !args.keylog.is_empty() || args.secrets_first {
            anyhow::bail!("--keylog and --secrets-first decrypt capture files; give the files");
        }
        if !args.tunnels.tunnel_port.is_empty() || !args.wlan.wlan_keys.is_empty() {
            anyhow::bail!(
                "--tunnel-port and --wlan-keys say how capture files are read; give the files"
            );
        }
        return run_store(&args, dir);
    }
    let wanted = Wanted {
        since: args.since,
        until: args.until,
        host: args.host.as_deref().map(Glob::new),
    };
    let case = match &args.case {
        Some(path) => case::load(path)?,
        None => Case::default(),
    };
    let mut attribution = Attribution::new(&case, args.device.clone())?;
    let keylogs = super::keylog::load(&args.keylog)?;
    super::keylog::report(&keylogs);
    attribution.reading = CaptureReading::from_args(&keylogs, &args.tunnels, args.wlan.load()?)?;
    attribution.reading.secrets_first = args.secrets_first;
    // Nothing is searched here: a part needs no bytes of the one before.
    attribution.unparsed_overlap = 0;
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(io::stdout().lock())),
    };
    let mut kept: Vec<Exchange> = Vec::new();
    let mut inputs: Vec<InputInfo> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    let mut write_error: Option<io::Error> = None;
    let mut keep = |mut x: Exchange| {
        if !wanted.keeps(&x) {
            return;
        }
        if args.format == Format::Jsonl {
            if write_error.is_none() {
                let line = serde_json::to_string(&x).map_err(io::Error::other);
                if let Err(e) = line.and_then(|l| writeln!(out, "{l}")) {
                    write_error = Some(e);
                }
            }
        } else {
            // Bodies are not listed; dropping them bounds what the list holds.
            x.request_body = Vec::new();
            x.request_headers = Vec::new();
            kept.push(x);
        }
    };
    let given = super::input::input_paths(&args.files)?;
    let ordered = super::capture_order::in_capture_order(&given);
    if let Some(note) = super::capture_order::reordered_note(&given, &ordered) {
        eprintln!("consentry: {note}");
    }
    let mut files = InputFiles::new(&attribution);
    for path in &ordered {
        files.read(path, &String::new, &mut keep);
    }
    let outcomes = files.finish(&mut keep);
    super::input::print_messages(&outcomes);
    for outcome in outcomes {
        inputs.extend(outcome.info);
        errors.extend(outcome.error);
    }
    kept.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.id.cmp(&b.id)));
    let written = match (write_error, args.format) {
        (Some(e), _) => Err(e),
        (None, Format::Jsonl) => Ok(()),
        (None, Format::Json) => write_json(&inputs, &kept, &mut out),
        (None, Format::Table) => write_table(&kept, &mut out),
    };
    match written.and_then(|()| out.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(e).context("writing exchanges"),
    }
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("consentry: error: {e}");
        }
        return Ok(ExitCode::from(super::EXIT_USAGE));
    }
    Ok(ExitCode::SUCCESS)
}

/// The filters of `exchanges FILE…`, meaning what they mean on a case store (its
/// query compares the same time and host with SQL, the host with SQLite's GLOB).
struct Wanted {
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    host: Option<Glob>,
}

impl Wanted {
    fn keeps(&self, x: &Exchange) -> bool {
        self.since.is_none_or(|t| x.at >= t)
            && self.until.is_none_or(|t| x.at < t)
            && self.host.as_ref().is_none_or(|g| g.matches(&x.host))
    }
}

/// `exchanges` without files: the case store's exchanges, through its indexes.
fn run_store(args: &Args, dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let dir = CaseDir::locate(dir)
        .context("give capture files, or run inside a case directory (or with -C DIR)")?;
    let store = dir.open_store()?;
    let q = Query {
        since: args.since,
        until: args.until,
        device: args.device.clone(),
        rule: None,
        host: args.host.clone(),
    };
    let rows = store.query(StoredTable::Exchanges, &q)?;
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(io::stdout().lock())),
    };
    let written =
        super::findings::write_rows(&rows, args.format, &mut out, &mut write_stored_table);
    super::findings::finish(written.and_then(|()| out.flush()))
}

fn write_stored_table(rows: &[String], out: &mut dyn Write) -> io::Result<()> {
    let bodies = rows
        .iter()
        .map(|r| serde_json::from_str::<ExchangeBody>(r).map_err(io::Error::other))
        .collect::<io::Result<Vec<_>>>()?;
    write_rows_table(&bodies, out)
}

fn write_json(inputs: &[InputInfo], list: &[Exchange], out: &mut dyn Write) -> io::Result<()> {
    #[derive(serde::Serialize)]
    struct Doc<'a> {
        inputs: &'a [InputInfo],
        exchanges: &'a [Exchange],
    }
    serde_json::to_writer_pretty(
        &mut *out,
        &Doc {
            inputs,
            exchanges: list,
        },
    )
    .map_err(io::Error::other)?;
    writeln!(out)
}

fn write_table(list: &[Exchange], out: &mut dyn Write) -> io::Result<()> {
    let rows: Vec<ExchangeBody> = list.iter().map(ExchangeBody::of).collect();
    write_rows_table(&rows, out)
}

/// The path column of a metadata-only exchange: why there is no request to show.
/// `tls` is the row's TLS column (`TLS 1.3 dec` when a key log opened it).
fn metadata_path(scheme: &str, tls: Option<&str>) -> &'static str {
    match scheme {
        // A protocol no parser reads (its client bytes searched, when cleartext).
        "tcp" | "udp" => "(not parsed)",
        // A DNS query whose name carries personal data: the host is that name.
        "dns" => "(query name)",
        // An mDNS announcement that carries personal data (its bytes searched).
        "mdns" => "(announcement)",
        // The system's DHCP: not the app's, not searched.
        "dhcp" => "(network setup)",
        // Decrypted, but no request inside (DNS over TLS, a connection closed early).
        _ if tls.is_some_and(|t| t.ends_with(" dec")) => "(no request)",
        // TLS or QUIC without keys.
        _ => "(not readable)",
    }
}

/// Width of the method column: `M-SEARCH` and `PROPFIND` whole. (The time column
/// is 27, an RFC 3339 time with microseconds.)
const METHOD_CHARS: usize = 8;

/// Width of the app column, shown when a capture names apps (PCAPdroid).
const APP_CHARS: usize = 22;

/// The table of `exchanges`, from capture files or from the store alike.
fn write_rows_table(rows: &[ExchangeBody], out: &mut dyn Write) -> io::Result<()> {
    let with_apps = rows.iter().any(|x| x.app.is_some());
    let app_column = |app: String| {
        if with_apps {
            format!("{:<APP_CHARS$} ", fit(&app, APP_CHARS))
        } else {
            String::new()
        }
    };
    writeln!(
        out,
        "{:<27} {:<10} {}{:<30} {:<8} {:<6} {:<9} path",
        "time (UTC)",
        "device",
        app_column("app".into()),
        "host",
        "method",
        "status",
        "tls"
    )?;
    for x in rows {
        // `TLS 1.3 enc` shows as `1.3 enc`, gQUIC's `gQUIC Q043 enc` as `Q043 enc`;
        // without a known version, `TLS enc`.
        let tls = match x.tls.as_deref() {
            None => "-",
            Some(t) => t
                .strip_prefix("TLS ")
                .or_else(|| t.strip_prefix("gQUIC "))
                .filter(|rest| rest.contains(' '))
                .unwrap_or(t),
        };
        let (method, path) = if x.metadata_only {
            (
                x.scheme.to_ascii_uppercase(),
                metadata_path(&x.scheme, x.tls.as_deref()).to_string(),
            )
        } else {
            (x.method.clone(), fit(&x.path, TABLE_PATH_CHARS))
        };
        writeln!(
            out,
            "{:<27} {:<10} {}{:<30} {:<8} {:<6} {:<9} {}",
            x.at.to_string(),
            fit(x.device.as_deref().unwrap_or("-"), 10),
            app_column(
                x.app
                    .as_ref()
                    .map_or_else(|| "-".into(), |a| a.display_name())
            ),
            fit(&x.host, 30),
            fit(&method, METHOD_CHARS),
            x.status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
            tls,
            path
        )?;
    }
    writeln!(out, "{} exchanges", rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::{Exchange, SourceKind};

    #[test]
    fn columns_line_up_under_their_heads_and_fit_ssdp_methods() {
        let mut x = Exchange::blank("x-1", SourceKind::Pcap, Timestamp::from_micros(1_500));
        x.scheme = "httpu".into();
        x.host = "239.255.255.250".into();
        x.method = "M-SEARCH".into();
        x.path = "*".into();
        let mut out = Vec::new();
        write_rows_table(&[ExchangeBody::of(&x)], &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        // Each value after the space that ends the column before it.
        for (head, value) in [
            ("device", " - "),
            ("host", " 239."),
            ("method", " M-SEARCH "),
        ] {
            assert_eq!(
                lines[0].find(head),
                lines[1].find(value).map(|i| i + 1),
                "{head}\n{text}"
            );
        }
    }

    #[test]
    fn metadata_rows_say_why_there_is_no_request() {
        let row = |scheme: &str, host: &str, decrypted: Option<bool>| {
            let mut x = Exchange::blank("x-1", SourceKind::Pcap, Timestamp::from_micros(0));
            x.scheme = scheme.into();
            x.host = host.into();
            x.metadata_only = true;
            x.tls = decrypted.map(|decrypted| crate::exchange::TlsInfo {
                version: Some("TLS 1.3".into()),
                decrypted,
                ..Default::default()
            });
            ExchangeBody::of(&x)
        };
        let rows = [
            row("tls", "t.example", Some(false)),
            row("tcp", "s.jpush.cn", None),
            row("dns", "0eaed834.b.metrics-sdk.example", None),
            row("mdns", "224.0.0.251", None),
            row("tls", "dot.resolver.example", Some(true)),
            row("dhcp", "255.255.255.255", None),
        ];
        let mut out = Vec::new();
        write_rows_table(&rows, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let ends: Vec<&str> = text
            .lines()
            .skip(1)
            .take(6)
            .map(|l| l.rsplit("  ").next().unwrap_or("").trim())
            .collect();
        assert_eq!(
            ends,
            [
                "(not readable)",
                "(not parsed)",
                "(query name)",
                "(announcement)",
                "(no request)",
                "(network setup)"
            ]
        );
        assert!(text.contains("DNS "), "{text}");
    }
}
