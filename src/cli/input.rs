//! Reading input files into exchanges for the commands that take captures
//! (`analyze`, `exchanges`): type detection, hashing, the progress bar, and the
//! summary of what each file held. The readers themselves live in `source`.

use std::cell::Cell;
use std::io::{self, IsTerminal, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use super::keylog::KeyLogFile;
use super::tunnel_ports::TunnelPortArgs;
use crate::case::{Case, DeviceResolver};
use crate::exchange::{Exchange, SourceKind};
use crate::net::keylog::KeyLog;
use crate::net::pcapdroid::AppUnderTest;
use crate::net::provisional_id::InputIds;
use crate::net::tail_search::TailSearch;
use crate::net::tap::{DataProbe, TapLimits};
use crate::net::tunnel::UdpTunnelPorts;
use crate::net::wpa::WlanKeys;
use crate::report::{InputInfo, TrafficSummary, MAX_APPS_SHOWN};
use crate::source::direct_read::DirectReader;
use crate::source::pcap::{self, CaptureOptions, CaptureProgress, CaptureSummary};
use crate::source::{self, HarOptions, InputKind};

/// How capture files are read, besides the case: `--keylog`, `--tunnel-port`,
/// `--wlan-keys` and `--all-apps`.
#[derive(Debug, Clone, Default)]
pub struct CaptureReading {
    /// TLS secrets (`--keylog` files' contents, see [`super::keylog`]) besides the
    /// ones the captures carry.
    pub keylogs: Vec<Arc<[u8]>>,
    /// The UDP ports of each UDP tunnel.
    pub tunnel_ports: UdpTunnelPorts,
    /// Keys for WPA-protected 802.11 frames.
    pub wlan_keys: Arc<WlanKeys>,
    /// `--all-apps`: judge the traffic of apps other than the case's too, where a
    /// capture names apps (PCAPdroid).
    pub all_apps: bool,
    /// `--secrets-first`: read a pcapng's Decryption Secrets Blocks before its packets
    /// (see [`pcap::secrets_ahead`]).
    pub secrets_first: bool,
}

impl CaptureReading {
    /// What the command line asks for: the `--keylog` files read, `--tunnel-port`
    /// and the keys of the `--wlan-keys` files. Says on standard error when the
    /// tunnel ports are not IANA's.
    pub fn from_args(
        keylogs: &[KeyLogFile],
        tunnels: &TunnelPortArgs,
        wlan_keys: Arc<WlanKeys>,
    ) -> anyhow::Result<Self> {
        let reading = CaptureReading {
            keylogs: super::keylog::texts(keylogs),
            tunnel_ports: tunnels.ports()?,
            wlan_keys,
            all_apps: false,
            secrets_first: false,
        };
        if let Some(ports) = super::tunnel_ports::describe(&reading.tunnel_ports) {
            eprintln!("consentry: {ports}");
        }
        Ok(reading)
    }
}

/// How inputs are attributed to devices, and how captures are read.
pub struct Attribution {
    pub devices: DeviceResolver,
    /// `--device`: HAR traffic always, capture traffic of unknown clients.
    pub device: Option<String>,
    /// Device ids of the case, for the HAR rule "one device or say which".
    pub device_ids: Vec<String>,
    /// How captures are read: TLS secrets, tunnel ports, 802.11 keys.
    pub reading: CaptureReading,
    /// Whether capture exchanges carry their response header fields and reason
    /// (default): `analyze` reads only the status and turns this off.
    pub keep_response_headers: bool,
    /// Whether a capture read once is read with direct I/O (`analyze` unless
    /// `--no-direct-io`; see [`DirectReader`]).
    pub direct_io: bool,
    /// The case's app, which the apps a capture names (PCAPdroid) are compared with.
    pub app: AppUnderTest,
    /// Bytes a part of a connection in a protocol no parser reads carries from the
    /// part before (`FlowLimits::unparsed_overlap`): what the analysis needs
    /// ([`Analyzer::payload_overlap`](crate::rules::Analyzer::payload_overlap)).
    pub unparsed_overlap: usize,
    /// Searches the names of clients' DNS queries, making those that carry personal
    /// data exchanges (`analyze`, `ingest`: the analysis's
    /// [`data_probe`](crate::rules::Analyzer::data_probe)); none lists no query.
    pub dns_probe: Option<DataProbe>,
    /// Searches HTTP request bodies past the analysis cap as they pass
    /// (`FlowLimits::tail_search`: the analysis's
    /// [`tail_search`](crate::rules::Analyzer::tail_search)); none only counts them.
    pub tail_search: Option<TailSearch>,
}

impl Attribution {
    pub fn new(case: &Case, device: Option<String>) -> anyhow::Result<Self> {
        let device_ids: Vec<String> = case.devices.iter().map(|d| d.id.clone()).collect();
        if let Some(id) = &device {
            if !device_ids.contains(id) {
                anyhow::bail!(
                    "--device {id:?} is not a device of the case (it has: {})",
                    device_ids.join(", ")
                );
            }
        }
        Ok(Attribution {
            devices: DeviceResolver::new(case),
            device,
            device_ids,
            reading: CaptureReading::default(),
            keep_response_headers: true,
            direct_io: false,
            app: AppUnderTest::new(&case.app.package, &case.app.name),
            unparsed_overlap: crate::net::flow::DEFAULT_UNPARSED_OVERLAP,
            dns_probe: None,
            tail_search: None,
        })
    }

    /// Whether an exchange is judged: capture traffic of no case device is listed
    /// and counted, not judged (its consent state is unknown), and so is the traffic
    /// of an app other than the case's where the capture names apps (PCAPdroid),
    /// unless `--all-apps`.
    pub fn judges(&self, x: &Exchange) -> bool {
        (x.device.is_some() || x.source != SourceKind::Pcap)
            && (self.reading.all_apps || !x.of_another_app())
    }

    /// The device of a HAR file's traffic (HAR has no client addresses).
    fn har_device(&self) -> Result<Option<String>, String> {
        match (&self.device, self.device_ids.as_slice()) {
            (Some(id), _) => Ok(Some(id.clone())),
            (None, []) => Ok(None),
            (None, [only]) => Ok(Some(only.clone())),
            (None, several) => Err(format!(
                "the case has {} devices ({}) and HAR files carry no client address: say which one with --device",
                several.len(),
                several.join(", ")
            )),
        }
    }
}

/// What reading one input gave.
#[derive(Default)]
pub struct InputOutcome {
    /// `None` when the file could not even be opened or recognised.
    pub info: Option<InputInfo>,
    pub traffic: Option<TrafficSummary>,
    /// Why the input was not read (to the end).
    pub error: Option<String>,
    pub warnings: Vec<String>,
    /// What else the reader wants the user to know (the key log a pcapng carried).
    pub notes: Vec<String>,
    /// The SHA-256 of the file read before this one in the same capture, when this
    /// file continues it (a capture split into several files).
    pub continues: Option<String>,
}

/// Prints each outcome's warnings and notes on standard error.
pub fn print_messages(outcomes: &[InputOutcome]) {
    for outcome in outcomes {
        for w in &outcome.warnings {
            eprintln!("consentry: warning: {w}");
        }
        for n in &outcome.notes {
            eprintln!("consentry: {n}");
        }
    }
}

/// The command line's input files, `-` standing for standard input, which is read
/// as `/dev/stdin` (so messages name it so) and can be given once.
pub fn input_paths(files: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    if files.iter().filter(|f| f.as_os_str() == "-").count() > 1 {
        anyhow::bail!("`-` (standard input) is given more than once; it can be read once");
    }
    Ok(files
        .iter()
        .map(|f| {
            if f.as_os_str() == "-" {
                PathBuf::from("/dev/stdin")
            } else {
                f.clone()
            }
        })
        .collect())
}

/// Reads `path` and hands every exchange to `consumer`. `status` adds a word to the
/// progress bar (e.g. findings so far).
pub fn read_input(
    path: &Path,
    attribution: &Attribution,
    status: &dyn Fn() -> String,
    consumer: &mut dyn FnMut(Exchange),
) -> InputOutcome {
    let mut files = InputFiles::new(attribution);
    files.read(path, status, consumer);
    let mut outcomes = files.finish(consumer);
    outcomes.pop().unwrap_or_default()
}

/// When an input's SHA-256 is had.
enum Hashing<'a> {
    /// The caller has it.
    Known(&'a str),
    /// A pass over the file before it is read.
    Before,
    /// While a capture is read (its exchanges get these provisional ids).
    WhileReading(InputIds),
}

/// A run's input files, read in the order given; consecutive capture files that
/// continue one another (a capture split into several files) are read as one
/// capture (see [`pcap::CaptureChain`]). Each file's outcome is complete once the
/// capture it belongs to has ended: [`finish`](Self::finish) gives them all.
pub struct InputFiles<'a> {
    attribution: &'a Attribution,
    chain: pcap::CaptureChain,
    outcomes: Vec<InputOutcome>,
    /// Index in `outcomes` of each capture file read into a capture not yet ended.
    in_capture: Vec<usize>,
}

impl<'a> InputFiles<'a> {
    pub fn new(attribution: &'a Attribution) -> Self {
        InputFiles {
            attribution,
            chain: pcap::CaptureChain::default(),
            outcomes: Vec::new(),
            in_capture: Vec::new(),
        }
    }

    /// Reads `path`, handing every exchange complete so far to `consumer` (those of
    /// connections still open at its end come with a later file, or at the finish).
    /// `status` adds a word to the progress bar (e.g. findings so far).
    pub fn read(
        &mut self,
        path: &Path,
        status: &dyn Fn() -> String,
        consumer: &mut dyn FnMut(Exchange),
    ) {
        self.read_as(path, Hashing::Before, status, consumer)
    }

    /// [`read`](Self::read) of a file whose SHA-256 the caller already has (an
    /// evidence copy it just verified), so the file is not read an extra time to hash
    /// it.
    pub fn read_known(
        &mut self,
        path: &Path,
        sha256: &str,
        status: &dyn Fn() -> String,
        consumer: &mut dyn FnMut(Exchange),
    ) {
        self.read_as(path, Hashing::Known(sha256), status, consumer)
    }

    /// [`read`](Self::read) reading a pcap/pcapng file once: its bytes as stored are
    /// hashed as they are read, and its exchanges carry `ids`' provisional ids, which
    /// the caller rewrites once the SHA-256 is known (a HAR file is hashed first as
    /// usual, its ids are final). The outcome's `info` holds the SHA-256; it is
    /// `None`, and `error` says why, when the file could not be read to its end.
    pub fn read_once(
        &mut self,
        path: &Path,
        ids: InputIds,
        status: &dyn Fn() -> String,
        consumer: &mut dyn FnMut(Exchange),
    ) {
        self.read_as(path, Hashing::WhileReading(ids), status, consumer)
    }

    /// End of input: the last capture's open connections become exchanges; the
    /// outcome of every file read, in order.
    pub fn finish(mut self, consumer: &mut dyn FnMut(Exchange)) -> Vec<InputOutcome> {
        if let Some(end) = self.chain.finish(consumer) {
            self.capture_ended(end);
        }
        self.outcomes
    }

    /// The files of a capture are read: their exchange counts, and what the
    /// capture's traffic said (on its last file's outcome).
    fn capture_ended(&mut self, end: pcap::ChainEnd) {
        let n = end.labels.len().min(self.in_capture.len());
        let files: Vec<usize> = self.in_capture.drain(..n).collect();
        for (&i, &exchanges) in files.iter().zip(&end.exchanges) {
            if let Some(info) = &mut self.outcomes[i].info {
                info.exchanges = exchanges;
            }
        }
        for pair in files.windows(2) {
            let before = self.outcomes[pair[0]]
                .info
                .as_ref()
                .map(|i| i.sha256.clone());
            self.outcomes[pair[1]].continues = before;
        }
        let Some(&last) = files.last() else {
            return;
        };
        let all_apps = self.attribution.reading.all_apps;
        let outcome = &mut self.outcomes[last];
        let label = capture_label(&end.labels);
        if end.labels.len() > 1 {
            outcome.notes.push(format!(
                "{label}: read as one capture (each file starts where the one before ends)"
            ));
        }
        let summary = &end.summary;
        if summary.flows.tls_keys_late > 0 {
            outcome
                .warnings
                .push(late_keys_warning(&label, summary.flows.tls_keys_late));
        }
        outcome
            .notes
            .extend(super::wlan_keys::describe(&label, &summary.packets.wpa));
        let apps = super::apps::describe(&label, summary, all_apps);
        outcome.notes.extend(apps.notes);
        outcome.warnings.extend(apps.warnings);
        outcome.traffic = Some(traffic_summary(summary, all_apps));
    }

    fn read_as(
        &mut self,
        path: &Path,
        hashing: Hashing<'_>,
        status: &dyn Fn() -> String,
        consumer: &mut dyn FnMut(Exchange),
    ) {
        let (mut outcome, captured) = self.read_file(path, hashing, status, consumer);
        // Captures its first packet ended (the one before it, since the chain takes
        // any file that does not start earlier).
        let ended = self.chain.take_ended();
        if let Some(before) = ended.last().and_then(|end| end.labels.last()) {
            outcome.notes.push(format!(
                "{} starts before the last packet of {before}: read as a capture of its own",
                path.display()
            ));
        }
        for end in ended {
            self.capture_ended(end);
        }
        if captured {
            self.in_capture.push(self.outcomes.len());
        }
        self.outcomes.push(outcome);
    }

    /// Reads one file; whether it joined a capture of the chain.
    fn read_file(
        &mut self,
        path: &Path,
        hashing: Hashing<'_>,
        status: &dyn Fn() -> String,
        consumer: &mut dyn FnMut(Exchange),
    ) -> (InputOutcome, bool) {
        let attribution = self.attribution;
        let label = path.display().to_string();
        let mut outcome = InputOutcome::default();
        let secrets_first = attribution.reading.secrets_first;
        let opened = source::open_input(path).and_then(|opened| {
            let capture = matches!(opened.kind, InputKind::Pcap | InputKind::Pcapng);
            // Secrets read first need a second read: a stream is copied for it.
            let read_twice = secrets_first && opened.kind == InputKind::Pcapng;
            let once = capture && !(read_twice && opened.stream_head.is_some());
            Ok(match hashing {
                Hashing::Known(known) => (opened, Some(known.to_string()), None),
                // A stream too: a capture read once needs no second read.
                Hashing::WhileReading(ids) if once => (opened, None, Some(ids)),
                Hashing::Before | Hashing::WhileReading(_) if opened.stream_head.is_some() => {
                    let (copy, sha256) = source::spool_stream(opened, &label)?;
                    (copy, sha256, None)
                }
                Hashing::Before | Hashing::WhileReading(_) => {
                    (opened, Some(source::file_sha256(path)?), None)
                }
            })
        });
        let (mut opened, sha256, provisional) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                outcome.error = Some(e.to_string());
                return (outcome, false);
            }
        };
        let (kind, gzip) = (opened.kind, opened.gzip);
        // A stream's size is unknown: the bar counts bytes without a total.
        let size = match opened.stream_head {
            None => opened.file.metadata().map(|m| m.len()).ok(),
            Some(_) => None,
        };
        let bar = progress_bar(size, &label);
        let secrets_ahead = if secrets_first && kind == InputKind::Pcapng {
            bar.set_message(format!("{label}: its secrets blocks first"));
            let keys = read_secrets_ahead(&mut opened, &label, &bar);
            bar.reset();
            bar.set_message(label.clone());
            match keys {
                Ok(keys) => keys.map(Arc::new),
                Err(e) => {
                    bar.finish_and_clear();
                    outcome.error = Some(e.to_string());
                    return (outcome, false);
                }
            }
        } else {
            None
        };
        // A file read once skips the page cache (see `direct_read`); one hashed first
        // is read a second time, from the cache. A stream is read as it comes.
        let direct_io = provisional.is_some() && attribution.direct_io;
        let content: Box<dyn Read> = match opened.stream_head {
            None => Box::new(DirectReader::new(opened.file, direct_io)),
            Some(_) => Box::new(opened.into_reader()),
        };
        // The bar counts bytes of the file as stored (compressed or not); so does the
        // hash.
        let counting = Counting {
            inner: content,
            bar: bar.clone(),
        };
        let mut stored = Hashed::new(counting, provisional.is_some());
        let exchanges = Cell::new(0u64);
        let reader: Box<dyn Read + '_> = if gzip {
            Box::new(flate2::read::MultiGzDecoder::new(&mut stored))
        } else {
            Box::new(&mut stored)
        };
        let mut counted = |x: Exchange| {
            exchanges.set(exchanges.get() + 1);
            consumer(x)
        };
        let content = Content {
            label: &label,
            sha256: sha256.as_deref(),
            attribution,
            status,
            bar: &bar,
        };
        let mut captured = false;
        match kind {
            InputKind::Har => content.read_har(reader, &mut outcome, &mut counted),
            InputKind::Pcap | InputKind::Pcapng => {
                captured = content.read_capture(
                    reader,
                    provisional,
                    secrets_ahead,
                    &mut self.chain,
                    &mut outcome,
                    &mut counted,
                )
            }
            InputKind::Jsonl => {
                drop(reader);
                outcome.error = Some(format!(
                    "{label}: JSON lines input is not supported yet (HAR, pcap and pcapng are)"
                ));
            }
        }
        // Whatever stopped the parser, the rest of the file goes through the hash.
        let sha256 = match sha256 {
            Some(known) => known,
            None => match stored.finish() {
                Ok(sha256) => sha256,
                Err(error) => {
                    bar.finish_and_clear();
                    let e = source::SourceError::Io { file: label, error };
                    outcome.error = Some(e.to_string());
                    return (outcome, captured);
                }
            },
        };
        bar.finish_and_clear();
        outcome.info = Some(InputInfo {
            path: label,
            kind: kind.name().to_string(),
            sha256,
            // A capture's are counted when it ends (its last connections may end later).
            exchanges: exchanges.get(),
            read_with: Vec::new(),
        });
        (outcome, captured)
    }
}

/// What parsing an opened input's content needs besides the content itself.
struct Content<'a> {
    label: &'a str,
    /// The file's SHA-256 when known before it is parsed.
    sha256: Option<&'a str>,
    attribution: &'a Attribution,
    status: &'a dyn Fn() -> String,
    bar: &'a ProgressBar,
}

impl Content<'_> {
    /// Parses a HAR file (`reader`: decompressed when it was gzip'd).
    fn read_har(
        &self,
        reader: Box<dyn Read + '_>,
        outcome: &mut InputOutcome,
        counted: &mut dyn FnMut(Exchange),
    ) {
        let label = self.label;
        let device = match self.attribution.har_device() {
            Ok(device) => device,
            Err(e) => {
                outcome.error = Some(format!("{label}: {e}"));
                return;
            }
        };
        let opts = HarOptions::new(label, self.sha256.map(str::to_string));
        let probe = self.attribution.dns_probe.as_ref();
        let read = source::read_har(reader, &opts, |mut x| {
            x.device = device.clone();
            // A DNS-over-HTTPS query's names, as the tap and the proxy make them.
            let names = probe.map(|p| source::doh_names::doh_name_exchanges(&x, p));
            counted(x);
            for name in names.into_iter().flatten() {
                counted(name);
            }
            Ok::<(), std::convert::Infallible>(())
        });
        match read {
            Ok(har) => {
                if har.skipped > 0 {
                    outcome
                        .warnings
                        .push(format!("{label}: {} entries skipped", har.skipped));
                    for s in &har.skip_reasons {
                        outcome
                            .warnings
                            .push(format!("  entry {}: {}", s.index, s.reason));
                    }
                }
            }
            Err(e) => outcome.error = Some(e.to_string()),
        }
    }

    /// Parses a pcap or pcapng capture (`reader`: decompressed when it was gzip'd)
    /// into `chain`, naming its exchanges with `provisional` ids when given, and
    /// knowing the `secrets_ahead` of its packets when read first; whether it was
    /// a capture (and joined one of the chain).
    fn read_capture(
        &self,
        reader: Box<dyn Read + '_>,
        provisional: Option<InputIds>,
        secrets_ahead: Option<Arc<KeyLog>>,
        chain: &mut pcap::CaptureChain,
        outcome: &mut InputOutcome,
        counted: &mut dyn FnMut(Exchange),
    ) -> bool {
        let label = self.label;
        let attribution = self.attribution;
        let opts = CaptureOptions {
            label: label.to_string(),
            // Unknown until the end when hashed while read: nothing `analyze`
            // outputs reads it.
            file_sha256: self.sha256.map(str::to_string),
            devices: attribution.devices.clone(),
            fallback_device: attribution.device.clone(),
            app: attribution.app.clone(),
            limits: {
                let mut limits = TapLimits::default();
                limits.flow.http.keep_response_headers = attribution.keep_response_headers;
                limits.flow.unparsed_overlap = attribution.unparsed_overlap;
                limits.flow.tail_search = attribution.tail_search.clone();
                limits
            },
            tunnel_ports: attribution.reading.tunnel_ports.clone(),
            wlan_keys: attribution.reading.wlan_keys.clone(),
            keylogs: attribution.reading.keylogs.clone(),
            secrets_ahead,
            dns_probe: attribution.dns_probe.clone(),
        };
        let started = Instant::now();
        let mut on_progress = |p: CaptureProgress| {
            let secs = started.elapsed().as_secs_f64().max(0.001);
            self.bar.set_message(format!(
                "{label} {:.0} pkt/s {} flows {} exchanges {}",
                p.frames as f64 / secs,
                p.open_flows,
                p.exchanges,
                (self.status)()
            ));
        };
        match chain.read_file(reader, &opts, provisional, &mut on_progress, counted) {
            Ok((file, error)) => {
                if let Some(offset) = file.truncated_at {
                    outcome.warnings.push(format!(
                        "{label}: the capture is cut short at byte {offset}; everything before it was analysed"
                    ));
                }
                if file.secrets_keylog.lines > 0 {
                    outcome.notes.push(super::keylog::describe(
                        &format!("in the secrets blocks of {label} ({})", file.secrets_blocks),
                        &file.secrets_keylog,
                    ));
                }
                outcome.error = error.map(|e| e.to_string());
                true
            }
            Err(e) => {
                outcome.error = Some(e.to_string());
                false
            }
        }
    }
}

/// How messages name a capture of `files`: the file, or the first and last of
/// several.
fn capture_label(files: &[String]) -> String {
    match files {
        [] => String::new(),
        [one] => one.clone(),
        [first, .., last] => format!("{first} to {last} ({} files)", files.len()),
    }
}

/// What to say when `late` TLS connections of capture `label` were not decrypted
/// because their keys came later in it.
fn late_keys_warning(label: &str, late: u64) -> String {
    format!(
        "{label}: {late} TLS connections were not decrypted: their keys are in a secrets \
         block after their handshakes; --secrets-first reads a capture's secrets before \
         its packets"
    )
}

/// The key log of all of an opened pcapng's secrets blocks (decompressed when it was
/// gzip'd), read through a pass of its own counted on `bar`; the file is rewound for
/// the reading pass.
fn read_secrets_ahead(
    opened: &mut source::Opened,
    label: &str,
    bar: &ProgressBar,
) -> Result<Option<KeyLog>, source::SourceError> {
    let io_err = |error| source::SourceError::Io {
        file: label.to_string(),
        error,
    };
    let counting = Counting {
        inner: &opened.file,
        bar: bar.clone(),
    };
    let file = io::BufReader::with_capacity(1 << 20, counting);
    let keys = if opened.gzip {
        pcap::secrets_ahead(flate2::read::MultiGzDecoder::new(file))
    } else {
        pcap::secrets_ahead(file)
    };
    opened.file.seek(SeekFrom::Start(0)).map_err(io_err)?;
    Ok(keys)
}

fn traffic_summary(s: &CaptureSummary, all_apps: bool) -> TrafficSummary {
    let mut unknown: Vec<(String, u64)> = s
        .tap
        .unknown_clients
        .iter()
        .map(|(ip, n)| (ip.to_string(), *n))
        .collect();
    // Busiest first; ties by address for a stable order.
    unknown.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let unknown_client_dhcp = s
        .tap
        .unknown_clients
        .keys()
        .filter_map(|ip| {
            let (mac, facts) = s.tap.dhcp.holding(*ip)?;
            Some((ip.to_string(), crate::net::dhcp::describe(mac, facts)))
        })
        .collect();
    TrafficSummary {
        packets: s.tap.frames,
        bytes: s.tap.bytes,
        tcp_connections: s.flows.tcp_connections,
        udp_flows: s.flows.udp_flows,
        // A lookup through an HTTP DNS API is a query and its answer.
        dns_messages: s.flows.dns_messages
            + s.tap.doh_messages
            + s.tap.http_dns_lookups.saturating_mul(2),
        mdns_system: s.flows.mdns_system,
        packet_errors: s.tap.packet_errors.clone(),
        tunnelled: s
            .packets
            .tunnels()
            .map(|(kind, n)| (kind.to_string(), n))
            .collect(),
        unknown_client_exchanges: unknown.iter().map(|(_, n)| n).sum::<u64>()
            + s.tap.unknown_clients_other,
        unknown_clients: unknown,
        unknown_client_dhcp,
        secrets_blocks: s.secrets_blocks,
        tls_decrypted: s.flows.tls_decrypted,
        wlan_handshakes: s.packets.wpa.handshakes,
        wlan_handshakes_unmatched: s.packets.wpa.wrong_key + s.packets.wpa.unsupported,
        wlan_decrypted: s.packets.wpa.decrypted,
        wlan_michael_failures: s.packets.wpa.michael_failures,
        wlan_reassembled: s.packets.wlan_fragments.reassembled,
        wlan_fragments_dropped: s.packets.wlan_fragments.dropped(),
        tls_not_decrypted: s.flows.tls_not_decrypted.clone(),
        tls_keys_late: s.flows.tls_keys_late,
        apps: s.apps.iter().take(MAX_APPS_SHOWN).cloned().collect(),
        other_app_exchanges: s.tap.other_app_exchanges,
        other_apps_judged: all_apps && s.tap.other_app_exchanges > 0,
    }
}

/// A progress bar on a terminal, nothing when stderr is piped; without a `total`
/// (a stream), a count of bytes.
fn progress_bar(total: Option<u64>, name: &str) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let (bar, template) = match total {
        Some(total) => (
            ProgressBar::new(total),
            "{msg}\n{wide_bar} {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        ),
        None => (
            ProgressBar::no_length(),
            "{msg}\n{spinner} {bytes} {bytes_per_sec}",
        ),
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_message(name.to_string());
    bar
}

/// Hashes the bytes read through it (when asked to), for a file hashed as it is read.
pub(super) struct Hashed<R> {
    inner: R,
    hasher: Option<Sha256>,
    /// The first read error: the hash of a file not read to its end is unknown.
    failed: Option<io::Error>,
}

impl<R: Read> Hashed<R> {
    pub(super) fn new(inner: R, hash: bool) -> Self {
        Hashed {
            inner,
            hasher: hash.then(Sha256::new),
            failed: None,
        }
    }

    /// The reader hashed.
    pub(super) fn get_ref(&self) -> &R {
        &self.inner
    }

    /// Reads what the parser left through the hash; the file's SHA-256 (lowercase
    /// hex), or why it cannot be had.
    pub(super) fn finish(mut self) -> io::Result<String> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let mut hasher = self
            .hasher
            .take()
            .ok_or_else(|| io::Error::other("the file was not hashed"))?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match self.inner.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => hasher.update(buf.get(..n).unwrap_or_default()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(source::hex(&hasher.finalize()))
    }
}

impl<R: Read> Read for Hashed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                if let Some(hasher) = &mut self.hasher {
                    hasher.update(buf.get(..n).unwrap_or_default());
                }
                Ok(n)
            }
            Err(e) => {
                if e.kind() != io::ErrorKind::Interrupted && self.hasher.is_some() {
                    self.failed
                        .get_or_insert_with(|| io::Error::new(e.kind(), e.to_string()));
                }
                Err(e)
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `data`, then a read error when `fail` is set.
    struct Source<'a> {
        data: &'a [u8],
        fail: bool,
    }

    impl Read for Source<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.data.is_empty() && self.fail {
                return Err(io::Error::other("device gone"));
            }
            let n = self.data.len().min(buf.len()).min(1000);
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn the_rest_of_a_file_the_parser_left_is_hashed() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let want = source::hex(&Sha256::digest(&data));
        for parsed in [0, 1, 999, 150_000, data.len()] {
            let mut hashed = Hashed::new(
                Source {
                    data: &data,
                    fail: false,
                },
                true,
            );
            let mut sink = vec![0u8; parsed];
            hashed.read_exact(&mut sink).unwrap();
            assert_eq!(hashed.finish().unwrap(), want, "parsed {parsed}");
        }
    }

    #[test]
    fn a_file_not_read_to_its_end_has_no_hash() {
        let data = [7u8; 5000];
        // The error met by the parser…
        let mut hashed = Hashed::new(
            Source {
                data: &data,
                fail: true,
            },
            true,
        );
        assert!(io::copy(&mut hashed, &mut io::sink()).is_err());
        assert!(hashed.finish().is_err());
        // … or only while draining.
        let hashed = Hashed::new(
            Source {
                data: &data,
                fail: true,
            },
            true,
        );
        assert_eq!(hashed.finish().unwrap_err().to_string(), "device gone");
    }
}
