//! `consentry tap --interface IF --case FILE`: live capture (feature `live`), or
//! `--read -`: packets as another machine's tcpdump writes them, piped in.
//! Findings are printed as they happen, one line each (or one JSON object per line for
//! a SIEM); the raw packets go to an evidence ring of pcapng files beside the case
//! file; SIGINT/SIGTERM stop it cleanly with a summary on standard error. When the
//! case file lives in a case directory, every exchange, finding and consent event read
//! from traffic is appended to its store ([`super::live_store`]), committed at least
//! every tenth of a second and on stop, and so is each ring file as the ring closes
//! or deletes it (an `evidence` record: see [`super::live_store`]), when the ring lies
//! inside the case directory; a run first records the ring files a dead run left
//! unrecorded. The capture loop runs on the calling thread; judging, printing and
//! storing on one of their own ([`super::tap_judge`]).

use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use super::anomaly_tally::AnomalyTally;
use super::input::{Attribution, CaptureReading};
use super::tap_judge::{Backlog, Handed, Judge, Recording, QUEUED};
use super::tunnel_ports::TunnelPortArgs;
use super::wlan_keys::WlanKeyArgs;
use crate::case;
use crate::net::tap::TapLimits;
use crate::report::host_mask::HostMask;
use crate::rules::{Analyzer, Options};
use crate::source::live::{self, LiveOptions, LiveSummary, PacketSource};
use crate::source::pcap::CaptureSummary;
use crate::source::ring::RingLimits;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LiveFormat {
    /// One line per finding, for people.
    Line,
    /// One JSON object per finding and line (the `analyze --format jsonl` shape).
    Jsonl,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Network interface to capture on (`lo`, `eth0`, …).
    #[arg(
        long,
        short,
        value_name = "IF",
        required_unless_present_any = ["read", "udp", "tcp"]
    )]
    pub interface: Option<String>,
    /// Instead of an interface, read a pcap or pcapng stream as another program
    /// writes it (`-` for standard input, a pipe or a FIFO): a gateway's `tcpdump -U
    /// -w -` over ssh, PCAPdroid's HTTP stream through curl, say. Every link type,
    /// the TLS secrets and PCAPdroid's app blocks of a pcapng are read, as `analyze`
    /// reads them. The capture options (--snaplen, --no-promiscuous) are the
    /// writer's.
    #[arg(
        long,
        short = 'r',
        value_name = "FILE",
        conflicts_with_all = ["interface", "snaplen", "no_promiscuous", "buffer_mib"]
    )]
    pub read: Option<PathBuf>,
    /// Instead of an interface, receive PCAPdroid's UDP exporter on ADDR:PORT (the
    /// "collector" its settings name, e.g. `0.0.0.0:5123`): its pcap or pcapng,
    /// a record per datagram, read as --read reads a stream. Off loopback,
    /// --udp-sender must name the phone.
    #[arg(
        long,
        value_name = "ADDR:PORT",
        conflicts_with_all = ["interface", "read", "snaplen", "no_promiscuous", "buffer_mib"]
    )]
    pub udp: Option<std::net::SocketAddr>,
    /// Take --udp datagrams from this address only (the phone's); several allowed.
    /// Anyone else's are counted and ignored: they would be evidence.
    #[arg(long, value_name = "IP", requires = "udp")]
    pub udp_sender: Vec<std::net::IpAddr>,
    /// Instead of an interface, accept PCAPdroid's TCP exporter on ADDR:PORT (the
    /// collector its settings name): each capture on the phone is a connection
    /// carrying its pcap or pcapng, read as --read reads a stream; connections one
    /// after the other join into one stream. Off loopback, --tcp-sender must name
    /// the phone.
    #[arg(
        long,
        value_name = "ADDR:PORT",
        conflicts_with_all = ["interface", "read", "udp", "snaplen", "no_promiscuous", "buffer_mib"]
    )]
    pub tcp: Option<std::net::SocketAddr>,
    /// Accept --tcp connections from this address only (the phone's); several
    /// allowed. Anyone else's are closed at once and counted.
    #[arg(long, value_name = "IP", requires = "tcp")]
    pub tcp_sender: Vec<std::net::IpAddr>,
    /// Capture filter in tcpdump syntax, e.g. `host 192.168.50.23`.
    #[arg(long, value_name = "FILTER")]
    pub bpf: Option<String>,
    /// The case file: devices by address, identifiers, consent decisions.
    #[arg(long, value_name = "FILE", env = "CONSENTRY_CASE")]
    pub case: PathBuf,
    /// Attribute traffic of clients that match no device address to this device.
    #[arg(long, value_name = "ID")]
    pub device: Option<String>,
    /// NSS key log with the TLS secrets of the traffic (the `SSLKEYLOGFILE` format),
    /// followed for lines appended while capturing; several allowed.
    #[arg(long = "keylog", value_name = "FILE")]
    pub keylog: Vec<PathBuf>,
    /// How findings are printed.
    #[arg(long, value_enum, default_value_t = LiveFormat::Line)]
    pub format: LiveFormat,
    /// Include the matched personal data values in the output.
    #[arg(long)]
    pub reveal: bool,
    /// Directory of the evidence ring (default: `evidence/` beside the case file).
    #[arg(long, value_name = "DIR")]
    pub ring_dir: Option<PathBuf>,
    /// Size of one ring file in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 100)]
    pub ring_file_mib: u64,
    /// Ring files kept (the oldest is deleted beyond this).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub ring_files: usize,
    /// Write no evidence ring.
    #[arg(long)]
    pub no_ring: bool,
    /// Bytes kept of each packet.
    #[arg(long, default_value_t = 262_144)]
    pub snaplen: i32,
    /// Do not put the interface into promiscuous mode.
    #[arg(long)]
    pub no_promiscuous: bool,
    /// Size of the kernel's capture buffer for the interface, MiB (tcpdump's -B in
    /// KiB): what the kernel holds while the tap is busy before it drops packets.
    #[arg(long, value_name = "MIB", default_value_t = crate::source::live::DEFAULT_BUFFER_MIB,
          value_parser = clap::value_parser!(u32).range(1..=2047))]
    pub buffer_mib: u32,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<u64>,
    /// Judge the traffic of every app of a stream that names apps (PCAPdroid's), not
    /// only the case's `[app]`.
    #[arg(long)]
    pub all_apps: bool,
    #[command(flatten)]
    pub tunnels: TunnelPortArgs,
    #[command(flatten)]
    pub wlan: WlanKeyArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (case, case_sha256) = case::load_hashed(&args.case)?;
    let case = Arc::new(case);
    let mut attribution = Attribution::new(&case, args.device.clone())?;
    let keylogs = super::keylog::load(&args.keylog)?;
    super::keylog::report(&keylogs);
    let wlan_files = args.wlan.read_files()?;
    let mut reading = CaptureReading::from_args(
        &keylogs,
        &args.tunnels,
        super::wlan_keys::keys_of(&wlan_files),
    )?;
    // The stored options name it (`reading`); `judges` asks the attribution.
    reading.all_apps = args.all_apps;
    attribution.reading.all_apps = args.all_apps;
    // What the run's annotation names; the key logs are stored and named as the run
    // stops, since the tap follows them as they grow.
    let run_files = super::ingest::side_files(&args.case, &case_sha256, &[], &wlan_files);
    let run_options = super::ingest::options_of(&run_files, args.device.clone(), &reading);
    let ring_dir = if args.no_ring {
        None
    } else {
        Some(args.ring_dir.clone().unwrap_or_else(|| {
            args.case
                .parent()
                .map(|p| p.join("evidence"))
                .unwrap_or_else(|| PathBuf::from("evidence"))
        }))
    };
    // Off loopback, an exporter's receiver takes the phone's packets only: anyone
    // else's would become evidence.
    let senders_named = |option: &str,
                         listen: std::net::SocketAddr,
                         senders: &[std::net::IpAddr]| {
        if listen.ip().is_loopback() || !senders.is_empty() {
            return Ok(());
        }
        Err(anyhow::anyhow!(
            "--{option} {listen} is not a loopback address: give --{option}-sender with the phone's address, so that nobody else can put packets into the evidence"
        ))
    };
    let source = match (&args.interface, &args.read, args.udp, args.tcp) {
        (_, Some(path), _, _) => PacketSource::Savefile(
            super::input::input_paths(std::slice::from_ref(path))?
                .pop()
                .unwrap_or_default(),
        ),
        (_, None, Some(listen), _) => {
            senders_named("udp", listen, &args.udp_sender)?;
            PacketSource::Udp {
                listen,
                senders: args.udp_sender.clone(),
            }
        }
        (_, None, None, Some(listen)) => {
            senders_named("tcp", listen, &args.tcp_sender)?;
            PacketSource::Tcp {
                listen,
                senders: args.tcp_sender.clone(),
            }
        }
        (Some(name), None, None, None) => PacketSource::Interface(name.clone()),
        (None, None, None, None) => {
            anyhow::bail!("--interface, --read, --udp or --tcp is needed")
        }
    };
    let mut opts = LiveOptions {
        source: source.clone(),
        bpf: args.bpf.clone(),
        snaplen: args.snaplen,
        promiscuous: !args.no_promiscuous,
        // At most 2047 MiB (the value parser): fits libpcap's int.
        buffer_bytes: i32::try_from(u64::from(args.buffer_mib) << 20).unwrap_or(i32::MAX),
        ring_dir,
        ring_limits: RingLimits {
            max_file_bytes: args.ring_file_mib.saturating_mul(1 << 20).max(1 << 16),
            max_files: args.ring_files,
        },
        devices: attribution.devices.clone(),
        fallback_device: attribution.device.clone(),
        app: attribution.app.clone(),
        limits: TapLimits::default(),
        tunnel_ports: reading.tunnel_ports,
        wlan_keys: reading.wlan_keys,
        keylogs: keylogs
            .iter()
            .map(|k| (k.path.clone(), k.text.clone()))
            .collect(),
        duration: args.duration.map(Duration::from_secs),
        dns_probe: None,
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone()).context("installing signal handler")?;
    }
    let mut analyzer = Analyzer::new(
        case.clone(),
        Options {
            reveal: args.reveal,
            ..Options::default()
        },
    );
    opts.limits.flow.unparsed_overlap = analyzer.payload_overlap();
    opts.dns_probe = Some(analyzer.data_probe());
    // Host names as the lines show them: masked where they carry data.
    let hosts = HostMask::new(analyzer.data_probe(), args.reveal);
    opts.limits.flow.tail_search = Some(analyzer.tail_search());
    let mut ready = |source: &PacketSource| {
        let doing = match source {
            PacketSource::Interface(name) => format!("capturing on {name}"),
            PacketSource::Savefile(path) => format!("reading packets from {}", path.display()),
            PacketSource::Udp { listen, senders } => format!(
                "receiving PCAPdroid's UDP export on {listen}{}",
                from_senders(senders)
            ),
            PacketSource::Tcp { listen, senders } => format!(
                "receiving PCAPdroid's TCP export on {listen}{}",
                from_senders(senders)
            ),
        };
        eprintln!(
            "consentry: {doing}{} (Ctrl-C to stop)",
            args.bpf
                .as_deref()
                .map(|f| format!(" with filter {f:?}"))
                .unwrap_or_default()
        );
    };
    let mut store = super::live_store::LiveStore::open_beside(&args.case, "tap")?;
    let mut ring_in_case = None;
    if let Some(s) = store.as_mut() {
        let session = crate::timestamp::Timestamp::now().to_string();
        let run_case = super::live_store::RunCase {
            case: &case,
            files: run_files,
            options: run_options,
        };
        let on = match &source {
            PacketSource::Interface(name) => format!("on {name}"),
            PacketSource::Savefile(path) => format!("reading {}", path.display()),
            PacketSource::Udp { listen, .. } => format!("receiving UDP on {listen}"),
            PacketSource::Tcp { listen, .. } => format!("receiving TCP on {listen}"),
        };
        s.begin(Some(run_case), &session, &on)?;
        eprintln!(
            "consentry: recording into the case store of {}",
            s.dir.display()
        );
        if let Some(dir) = &opts.ring_dir {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("creating the evidence ring in {}", dir.display()))?;
            ring_in_case = super::live_store::ring_dir_in_case(&s.dir, dir);
            if let Some(rel) = &ring_in_case {
                for name in s.record_unrecorded_ring_files(dir, rel)? {
                    eprintln!(
                        "consentry: warning: ring file {name} was never recorded (an earlier run ended without closing it): recorded now, as found"
                    );
                }
            }
            if ring_in_case.is_none() {
                eprintln!(
                    "consentry: warning: the evidence ring in {} is outside the case directory: its files are not recorded in the case store",
                    dir.display()
                );
            }
        }
    }
    let backlog = Backlog::default();
    let judge = Judge {
        backlog: &backlog,
        attribution: &attribution,
        analyzer: &mut analyzer,
        hosts,
        recording: Recording::new(store, ring_in_case),
        format: args.format,
        reveal: args.reveal,
        findings: 0,
        anomalies: AnomalyTally::default(),
        unanalysed: 0,
        other_apps: 0,
    };
    // The capture loop on this thread, the judge on its own (`tap_judge`).
    let (summary, judge) = std::thread::scope(|scope| -> anyhow::Result<_> {
        let (hand, handed) = std::sync::mpsc::sync_channel(QUEUED);
        let judging = std::thread::Builder::new()
            .name("consentry-judge".into())
            .spawn_scoped(scope, move || judge.run(handed))
            .context("starting the judging thread")?;
        // A send fails only if the judge is gone (it panicked): the capture stops
        // rather than keep packets nobody judges, and the join below says why.
        let gone = || stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let summary = live::capture(
            &opts,
            &stop,
            &mut ready,
            &mut |x| {
                backlog.enter(x.body_bytes());
                if hand.send(Handed::Exchange(x)).is_err() {
                    gone();
                }
            },
            &mut |event| {
                if hand.send(Handed::Ring(event)).is_err() {
                    gone();
                }
            },
        );
        drop(hand);
        let judge = judging
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        Ok((summary, judge))
    })?;
    let summary = summary?;
    let Judge {
        recording,
        findings,
        anomalies,
        unanalysed,
        other_apps,
        ..
    } = judge;
    let Recording {
        mut store,
        error: store_error,
        ..
    } = recording;
    eprintln!(
        "consentry: {} packets ({} bytes), {} exchanges, {} findings; {} exchanges of unknown clients{} not analysed; anomalies of the exchanges analysed: {}",
        summary.tap.frames,
        summary.tap.bytes,
        summary.tap.exchanges,
        findings,
        unanalysed,
        match other_apps {
            0 => String::new(),
            n => format!(" and {n} of other apps than the case's"),
        },
        anomalies
    );
    let label = match &source {
        PacketSource::Interface(name) => name.clone(),
        PacketSource::Savefile(path) => path.display().to_string(),
        PacketSource::Udp { listen, .. } => {
            let bound = summary.udp.as_ref().and_then(|u| u.listen);
            format!("UDP {}", bound.unwrap_or(*listen))
        }
        PacketSource::Tcp { listen, .. } => {
            let bound = summary.tcp.as_ref().and_then(|t| t.listen);
            format!("TCP {}", bound.unwrap_or(*listen))
        }
    };
    if let Some(udp) = &summary.udp {
        report_udp(&label, udp);
    }
    if let Some(tcp) = &summary.tcp {
        report_tcp(&label, tcp);
    }
    if let Some(read) = &summary.stream {
        report_stream(&label, read, &summary, args.all_apps);
    }
    if let PacketSource::Interface(_) = &source {
        eprintln!(
            "consentry: libpcap received {}, kernel dropped {}, interface dropped {}",
            summary.received, summary.kernel_dropped, summary.interface_dropped
        );
    }
    if let Some(wpa) = super::wlan_keys::describe(&label, &summary.wpa) {
        eprintln!("consentry: {wpa}");
    }
    if summary.tls_keys_late > 0 {
        eprintln!(
            "consentry: warning: {label}: {} TLS connections were not decrypted: their keys came after their handshakes; the ring keeps keys where they came, and `consentry analyze --secrets-first` of a ring file decrypts the connections whose keys it holds",
            summary.tls_keys_late
        );
    }
    if !summary.ring_files.is_empty() {
        eprintln!(
            "consentry: {} packets kept as evidence in {}",
            summary.ring_packets,
            summary
                .ring_files
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if let Some(s) = store.as_mut() {
        s.commit()?;
        // The key logs as they stand now: the tap followed them as they grew.
        match super::keylog::load(&args.keylog) {
            Ok(key_logs) => s.keep_key_logs(&key_logs)?,
            Err(e) => {
                eprintln!("consentry: warning: the key logs could not be stored as evidence: {e:#}")
            }
        }
    }
    match store_error {
        Some(e) => Err(e),
        None => Ok(ExitCode::SUCCESS),
    }
}

/// What the receiver of PCAPdroid's UDP exporter saw: the datagrams, those dropped
/// and those of senders not allowed.
fn report_udp(label: &str, udp: &live::UdpSummary) {
    eprintln!("consentry: {label}: {} datagrams received", udp.datagrams);
    if let Some((from, why)) = udp.first_dropped {
        eprintln!(
            "consentry: warning: {label}: {} datagrams dropped, not one record of the stream (the first from {from}: {why})",
            udp.dropped
        );
    }
    if let Some(from) = udp.first_foreign {
        eprintln!(
            "consentry: warning: {label}: {} datagrams from senders not given with --udp-sender ignored (the first from {from})",
            udp.foreign
        );
    }
}

/// What the receiver of PCAPdroid's TCP exporter saw: the connections, those that
/// broke off, the records dropped and the connections of senders not allowed.
fn report_tcp(label: &str, tcp: &live::TcpSummary) {
    eprintln!(
        "consentry: {label}: {} connections received",
        tcp.connections
    );
    if let Some((from, why)) = tcp.first_broken {
        eprintln!(
            "consentry: warning: {label}: {} connections broke off, what was left of them lost (the first from {from}: {why})",
            tcp.broken
        );
    }
    if let Some((from, why)) = tcp.first_dropped {
        eprintln!(
            "consentry: warning: {label}: {} records dropped, not one record of the stream (the first from {from}: {why})",
            tcp.dropped
        );
    }
    if let Some(from) = tcp.first_foreign {
        eprintln!(
            "consentry: warning: {label}: {} connections from senders not given with --tcp-sender closed (the first from {from})",
            tcp.foreign
        );
    }
}

/// ` from A, B` for the senders a receiver takes packets from; nothing for anyone.
fn from_senders(senders: &[std::net::IpAddr]) -> String {
    match senders {
        [] => String::new(),
        s => format!(
            " from {}",
            s.iter()
                .map(|ip| ip.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// What reading a stream saw besides its packets: where it was cut short, its
/// secrets, its apps (PCAPdroid), and the blocks the ring could not carry.
fn report_stream(label: &str, read: &CaptureSummary, summary: &LiveSummary, all_apps: bool) {
    if let Some(offset) = read.truncated_at {
        eprintln!(
            "consentry: warning: {label}: the stream was cut short in a block at byte offset {offset}; everything before it was read"
        );
    }
    if read.secrets_blocks > 0 {
        let k = &read.secrets_keylog;
        eprintln!(
            "consentry: {label}: {} decryption secrets blocks, {} TLS key log lines ({} used, {} not understood)",
            read.secrets_blocks, k.lines, k.used, k.skipped
        );
    }
    let apps = super::apps::describe(label, read, all_apps);
    for w in &apps.warnings {
        eprintln!("consentry: warning: {w}");
    }
    for n in &apps.notes {
        eprintln!("consentry: {n}");
    }
    if summary.ring_blocks_not_copied > 0 {
        eprintln!(
            "consentry: warning: {label}: {} custom blocks not copied into the evidence ring (marked not to be copied, or of a big-endian section)",
            summary.ring_blocks_not_copied
        );
    }
    if summary.ring_blocks_not_kept > 0 {
        eprintln!(
            "consentry: warning: {label}: {} secrets or custom blocks past {} MiB (or half a ring file) are in the ring file that was being written only, not at the start of later ones",
            summary.ring_blocks_not_kept,
            crate::source::ring::MAX_KEPT_BLOCK_BYTES >> 20
        );
    }
}
