//! pcap and pcapng files → exchanges: reads the file frame by frame (streaming, the
//! file is never held in memory) and runs each frame through a [`Tap`].
//!
//! A file cut short (a capture that was still being written, a copy that stopped)
//! gives every exchange before the cut and a warning with the byte offset; a damaged
//! block in the middle is an error with its offset, after the exchanges of everything
//! before it have been handed out (DESIGN: nothing already found is lost).

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use crate::case::DeviceResolver;
use crate::exchange::{Exchange, SourceKind};
use crate::net::capture::{CaptureError, CaptureEvent, CaptureLimits, CaptureReader};
use crate::net::flow::{FlowStats, SECRETS_TYPE_TLS_KEYLOG};
use crate::net::keylog::{KeyLog, KeyLogStats};
use crate::net::packet::PacketStats;
use crate::net::pcapdroid::{AppStats, AppTraffic, AppUnderTest};
use crate::net::provisional_id::InputIds;
use crate::net::tap::{DataProbe, Tap, TapLimits, TapStats};
use crate::net::tunnel::UdpTunnelPorts;
use crate::net::wpa::WlanKeys;
use crate::timestamp::Timestamp;

use super::direct_read::DIRECT_READ_LEN;
use super::{InputKind, SourceError};

/// Frames between two calls of the progress callback.
const PROGRESS_EVERY_FRAMES: u64 = 4096;

/// How to read one capture file.
#[derive(Debug, Clone)]
pub struct CaptureOptions {
    /// The file's name, for messages.
    pub label: String,
    /// SHA-256 of the file (evidence reference and exchange id seed).
    pub file_sha256: Option<String>,
    pub devices: DeviceResolver,
    /// Device for traffic of clients that are no case device (`--device`).
    pub fallback_device: Option<String>,
    /// The case's app, which the apps a capture names (PCAPdroid) are compared with.
    pub app: AppUnderTest,
    pub limits: TapLimits,
    /// The UDP ports of each UDP tunnel (`--tunnel-port`).
    pub tunnel_ports: UdpTunnelPorts,
    /// Keys for WPA2-protected 802.11 frames (`--wlan-keys`).
    pub wlan_keys: Arc<WlanKeys>,
    /// NSS key logs (`--keylog` files' contents) to decrypt TLS with, besides the
    /// capture's own Decryption Secrets Blocks, which are used as they are met …
    pub keylogs: Vec<Arc<[u8]>>,
    /// … and, with `--secrets-first`, all of them before the first packet too (see
    /// [`secrets_ahead`]).
    pub secrets_ahead: Option<Arc<KeyLog>>,
    /// Searches the names of clients' DNS queries ([`Tap::set_dns_probe`]).
    pub dns_probe: Option<DataProbe>,
}

impl CaptureOptions {
    /// Options for reading the file `label` with `devices`, and nothing else: no
    /// hash, fallback device, app, tunnel ports, WLAN keys, key logs or DNS probe,
    /// default limits.
    pub fn new(label: impl Into<String>, devices: DeviceResolver) -> Self {
        CaptureOptions {
            label: label.into(),
            file_sha256: None,
            devices,
            fallback_device: None,
            app: AppUnderTest::default(),
            limits: TapLimits::default(),
            tunnel_ports: UdpTunnelPorts::default(),
            wlan_keys: Arc::default(),
            keylogs: Vec::new(),
            secrets_ahead: None,
            dns_probe: None,
        }
    }
}

/// What reading a capture saw.
#[derive(Debug, Clone, Default)]
pub struct CaptureSummary {
    /// `pcap` or `pcapng`.
    pub format: &'static str,
    pub tap: TapStats,
    pub flows: FlowStats,
    pub packets: PacketStats,
    /// pcapng Decryption Secrets Blocks seen …
    pub secrets_blocks: u64,
    /// … and the key log lines of those that hold one (type `TLSK`).
    pub secrets_keylog: KeyLogStats,
    /// Set when the file ended in the middle of a block.
    pub truncated_at: Option<u64>,
    /// Exchanges per Android app, where the capture names apps (PCAPdroid) …
    pub apps: Vec<AppTraffic>,
    /// … what its marks gave, and the first PCAPdroid block that could not be read.
    pub pcapdroid: AppStats,
    pub pcapdroid_block_error: Option<String>,
}

impl CaptureSummary {
    /// Gives the tap a Decryption Secrets Block's TLS key log and counts it; other
    /// secrets (WireGuard, ZigBee, OPC UA, …) are only counted.
    pub fn secrets_block(&mut self, tap: &mut Tap, secrets_type: u32, data: &[u8]) {
        read_secrets_block(
            tap,
            secrets_type,
            data,
            &mut self.secrets_blocks,
            &mut self.secrets_keylog,
        );
    }
}

/// Gives `tap` a Decryption Secrets Block's TLS key log, counting the block in
/// `blocks` and its lines in `lines`; other secrets (WireGuard, ZigBee, OPC UA, …)
/// are only counted.
fn read_secrets_block(
    tap: &mut Tap,
    secrets_type: u32,
    data: &[u8],
    blocks: &mut u64,
    lines: &mut KeyLogStats,
) {
    *blocks += 1;
    if secrets_type == SECRETS_TYPE_TLS_KEYLOG {
        lines.add(&tap.add_keylog(data));
    }
}

/// Progress of a running read, for a progress bar.
#[derive(Debug, Clone, Copy, Default)]
pub struct CaptureProgress {
    pub frames: u64,
    pub bytes: u64,
    pub open_flows: usize,
    pub exchanges: u64,
}

/// Reads a pcap or pcapng stream, handing each exchange to `consumer` as soon as it
/// is complete, and `progress` every few thousand frames.
///
/// Fails at once when the stream is no capture. Otherwise returns what was read and,
/// when a damaged block stopped the reading, the error (its exchanges before the
/// damage were handed out all the same).
pub fn read_capture<R: Read>(
    reader: R,
    opts: &CaptureOptions,
    progress: &mut dyn FnMut(CaptureProgress),
    consumer: &mut dyn FnMut(Exchange),
) -> Result<(CaptureSummary, Option<SourceError>), SourceError> {
    read_capture_with_ids(reader, opts, None, progress, consumer)
}

/// [`read_capture`], naming the exchanges with `provisional` ids when given (for a
/// caller that hashes the file while it is read, see [`crate::net::provisional_id`]).
pub fn read_capture_with_ids<R: Read>(
    reader: R,
    opts: &CaptureOptions,
    provisional: Option<InputIds>,
    progress: &mut dyn FnMut(CaptureProgress),
    consumer: &mut dyn FnMut(Exchange),
) -> Result<(CaptureSummary, Option<SourceError>), SourceError> {
    let mut chain = CaptureChain::default();
    let (file, failure) = chain.read_file(reader, opts, provisional, progress, consumer)?;
    let mut summary = chain
        .finish(consumer)
        .map(|end| end.summary)
        .unwrap_or_default();
    summary.format = file.format;
    summary.truncated_at = file.truncated_at;
    Ok((summary, failure))
}

/// What reading one file of a [`CaptureChain`] saw of the file itself (the traffic
/// is summarised per chain, in [`ChainEnd`]).
#[derive(Debug, Clone, Default)]
pub struct FileRead {
    /// `pcap` or `pcapng`.
    pub format: &'static str,
    /// pcapng Decryption Secrets Blocks seen …
    pub secrets_blocks: u64,
    /// … and the key log lines of those that hold one (type `TLSK`).
    pub secrets_keylog: KeyLogStats,
    /// Set when the file ended in the middle of a block.
    pub truncated_at: Option<u64>,
    /// Whether it continued the capture of the file before it.
    pub continued: bool,
}

/// A capture the files of a [`CaptureChain`] held, read as one.
#[derive(Debug, Clone)]
pub struct ChainEnd {
    /// Its files' labels, in the order read.
    pub labels: Vec<String>,
    /// Its traffic (and the secrets blocks of all its files).
    pub summary: CaptureSummary,
    /// Exchanges per file, by the file of their first frame.
    pub exchanges: Vec<u64>,
}

/// Bytes of secrets and custom blocks before a file's first packet held until that
/// packet's time says whether the file continues the capture before it (a file of
/// the tap's evidence ring repeats the key log and app names kept so far there).
/// Past it, the file is taken to continue it.
const MAX_HELD_BLOCK_BYTES: usize = 16 << 20;

/// A secrets or custom block met before a file's first packet.
enum HeldBlock {
    Secrets {
        secrets_type: u32,
        data: Vec<u8>,
    },
    Custom {
        pen: u32,
        data: Vec<u8>,
        big_endian: bool,
        end_offset: u64,
    },
}

/// Capture files read one after another, as one capture where they are one split
/// into several (the tap's evidence ring, `tcpdump -C` or `-G`, dumpcap's ring
/// buffer, `editcap -c`): a file whose first packet is no earlier than the last
/// packet of the file before it continues that file's capture — its connections,
/// DNS answers, TLS secrets, 802.11 keys and app names — so a request or a TLS
/// connection cut by the split is read whole. A file that starts earlier (the same
/// traffic again, another interface's capture) ends the capture before it: its open
/// connections become exchanges, and the file starts one of its own.
#[derive(Default)]
pub struct CaptureChain {
    /// The capture being read, between files.
    current: Option<Capture>,
    /// Captures that a file's first packet ended, not yet taken.
    ended: Vec<ChainEnd>,
    /// The reader's buffer of the file read last, for the next: allocating and
    /// zeroing a new one of several MiB for each file took more than half the CPU
    /// time of a capture cut into files of one packet each.
    storage: Vec<u8>,
}

/// One capture of a chain: its tap and its files so far.
struct Capture {
    tap: Tap,
    /// Capture time of the last frame read.
    last_ts: Option<Timestamp>,
    labels: Vec<String>,
    /// The secrets and PCAPdroid blocks its files held.
    blocks: CaptureSummary,
}

impl CaptureChain {
    /// Reads one file: as the next part of the current capture, or as the start of a
    /// new one (see [`CaptureChain`]). Open connections stay open at its end, for the
    /// next file; [`finish`](Self::finish) closes them.
    ///
    /// Fails at once when the stream is no capture (and the chain is as before).
    /// Otherwise returns what was read and, when a damaged block stopped the
    /// reading, the error.
    pub fn read_file<R: Read>(
        &mut self,
        reader: R,
        opts: &CaptureOptions,
        provisional: Option<InputIds>,
        progress: &mut dyn FnMut(CaptureProgress),
        consumer: &mut dyn FnMut(Exchange),
    ) -> Result<(FileRead, Option<SourceError>), SourceError> {
        // Room for a whole direct read after the unread rest of a frame, so that a
        // `DirectReader` under `reader` reads into the capture buffer without a copy.
        let limits = CaptureLimits {
            initial_buffer: DIRECT_READ_LEN + (256 << 10),
            ..CaptureLimits::default()
        };
        let storage = std::mem::take(&mut self.storage);
        let mut reader = CaptureReader::with_storage(reader, limits, storage)
            .map_err(|e| capture_error(&opts.label, e))?;
        let label = opts.label.as_str();
        let mut file = FileRead {
            format: reader.format(),
            ..FileRead::default()
        };
        let mut provisional = provisional;
        // Blocks before the file's first packet, until it joins a capture …
        let mut held: Vec<HeldBlock> = Vec::new();
        let mut held_bytes = 0usize;
        // … its capture then, and the frames and bytes read before the file (for
        // the progress bar).
        let mut joined: Option<(Capture, u64, u64)> = None;
        let failure = loop {
            let event = match reader.next_event() {
                Ok(Some(event)) => event,
                Ok(None) => break None,
                Err(CaptureError::Truncated { offset, .. }) => {
                    file.truncated_at = Some(offset);
                    break None;
                }
                Err(e) => break Some(e),
            };
            let block = match event {
                CaptureEvent::Frame(frame) => {
                    let (capture, frames, bytes) = match &mut joined {
                        Some(joined) => joined,
                        None => {
                            let mut capture =
                                self.join(opts, provisional.take(), Some(frame.ts), consumer);
                            file.continued = capture.labels.len() > 1;
                            capture.replay(std::mem::take(&mut held), label, &mut file);
                            let stats = capture.tap.stats();
                            let (frames, bytes) = (stats.frames, stats.bytes);
                            joined.insert((capture, frames, bytes))
                        }
                    };
                    capture.tap.frame(&frame, consumer);
                    capture.last_ts = Some(frame.ts);
                    if frame.number % PROGRESS_EVERY_FRAMES == 0 {
                        let tap = &capture.tap;
                        progress(CaptureProgress {
                            frames: tap.stats().frames - *frames,
                            bytes: tap.stats().bytes - *bytes,
                            open_flows: tap.open_flows(),
                            exchanges: tap.stats().exchanges,
                        });
                    }
                    continue;
                }
                CaptureEvent::Secrets { secrets_type, data } => HeldBlock::Secrets {
                    secrets_type,
                    data: data.to_vec(),
                },
                CaptureEvent::Custom {
                    pen,
                    data,
                    big_endian,
                    ..
                } => HeldBlock::Custom {
                    pen,
                    data: data.to_vec(),
                    big_endian,
                    end_offset: reader.offset(),
                },
            };
            if let Some((capture, ..)) = &mut joined {
                capture.apply(block, label, &mut file);
                continue;
            }
            held_bytes += block.len();
            held.push(block);
            if held_bytes > MAX_HELD_BLOCK_BYTES {
                let mut capture = self.join(opts, provisional.take(), None, consumer);
                file.continued = capture.labels.len() > 1;
                capture.replay(std::mem::take(&mut held), label, &mut file);
                let stats = capture.tap.stats();
                let (frames, bytes) = (stats.frames, stats.bytes);
                joined = Some((capture, frames, bytes));
            }
        };
        let mut capture = match joined {
            Some((capture, ..)) => capture,
            None => {
                // No packet: nothing says it does not continue the capture before it.
                let mut capture = self.join(opts, provisional.take(), None, consumer);
                file.continued = capture.labels.len() > 1;
                capture.replay(held, label, &mut file);
                capture
            }
        };
        capture.blocks.secrets_blocks += file.secrets_blocks;
        capture.blocks.secrets_keylog.add(&file.secrets_keylog);
        self.current = Some(capture);
        self.storage = reader.into_storage();
        Ok((file, failure.map(|e| capture_error(label, e))))
    }

    /// Captures that the first packet of a file read since the last call ended.
    pub fn take_ended(&mut self) -> Vec<ChainEnd> {
        std::mem::take(&mut self.ended)
    }

    /// End of input: the open connections become exchanges; the last capture.
    pub fn finish(&mut self, consumer: &mut dyn FnMut(Exchange)) -> Option<ChainEnd> {
        self.end(consumer);
        self.ended.pop()
    }

    /// The capture the file being read joins, given its first packet's capture
    /// time (`None`: no packet yet): the current one, or a new one.
    fn join(
        &mut self,
        opts: &CaptureOptions,
        provisional: Option<InputIds>,
        first_ts: Option<Timestamp>,
        consumer: &mut dyn FnMut(Exchange),
    ) -> Capture {
        let last_ts = self.current.as_ref().and_then(|c| c.last_ts);
        if let (Some(first), Some(last)) = (first_ts, last_ts) {
            if first < last {
                self.end(consumer);
            }
        }
        let mut capture = match self.current.take() {
            Some(mut capture) => {
                let tap = &mut capture.tap;
                tap.next_input(opts.file_sha256.clone(), &opts.label, provisional);
                if let Some(ahead) = &opts.secrets_ahead {
                    tap.add_keys(ahead);
                }
                capture
            }
            None => Capture {
                tap: new_tap(opts, provisional),
                last_ts: None,
                labels: Vec::new(),
                blocks: CaptureSummary::default(),
            },
        };
        capture.labels.push(opts.label.clone());
        capture
    }

    /// Ends the current capture, if any: its open connections become exchanges.
    fn end(&mut self, consumer: &mut dyn FnMut(Exchange)) {
        let Some(Capture {
            mut tap,
            labels,
            blocks: mut summary,
            ..
        }) = self.current.take()
        else {
            return;
        };
        tap.finish(consumer);
        summary.tap = tap.stats().clone();
        summary.flows = tap.flow_stats().clone();
        summary.packets = tap.packet_stats().clone();
        summary.apps = tap.app_traffic();
        summary.pcapdroid = tap.pcapdroid_stats().clone();
        self.ended.push(ChainEnd {
            labels,
            summary,
            exchanges: tap.input_exchanges(),
        });
    }
}

impl HeldBlock {
    fn len(&self) -> usize {
        match self {
            HeldBlock::Secrets { data, .. } | HeldBlock::Custom { data, .. } => data.len(),
        }
    }
}

impl Capture {
    /// Blocks held until the file joined the capture.
    fn replay(&mut self, held: Vec<HeldBlock>, label: &str, file: &mut FileRead) {
        for block in held {
            self.apply(block, label, file);
        }
    }

    /// A secrets or custom block of the file being read, to the tap.
    fn apply(&mut self, block: HeldBlock, label: &str, file: &mut FileRead) {
        match block {
            HeldBlock::Secrets { secrets_type, data } => read_secrets_block(
                &mut self.tap,
                secrets_type,
                &data,
                &mut file.secrets_blocks,
                &mut file.secrets_keylog,
            ),
            HeldBlock::Custom {
                pen,
                data,
                big_endian,
                end_offset,
            } => {
                let read = self.tap.custom_block(pen, &data, big_endian);
                if let (Err(e), None) = (read, &self.blocks.pcapdroid_block_error) {
                    // A capture of several files says which.
                    let of = match self.labels.len() {
                        0 | 1 => String::new(),
                        _ => format!(" of {label}"),
                    };
                    self.blocks.pcapdroid_block_error = Some(format!(
                        "{e} (block ending at byte offset {end_offset}{of})"
                    ));
                }
            }
        }
    }
}

/// The tap of a capture whose first file `opts` describes.
fn new_tap(opts: &CaptureOptions, provisional: Option<InputIds>) -> Tap {
    let mut tap = Tap::new(
        opts.devices.clone(),
        opts.fallback_device.clone(),
        opts.file_sha256.clone(),
        SourceKind::Pcap,
        opts.limits.clone(),
    );
    tap.name_input(&opts.label);
    tap.set_udp_tunnel_ports(opts.tunnel_ports.clone());
    tap.set_wlan_keys(opts.wlan_keys.clone());
    tap.set_app_under_test(opts.app.clone());
    if let Some(probe) = &opts.dns_probe {
        tap.set_dns_probe(probe.clone());
    }
    if let Some(ids) = provisional {
        tap.use_provisional_ids(ids);
    }
    if let Some(ahead) = &opts.secrets_ahead {
        tap.set_keylog(KeyLog::clone(ahead));
    }
    for text in &opts.keylogs {
        tap.add_keylog(text);
    }
    tap
}

/// Bytes of a capture file read at most to find its first packet (blocks before it:
/// a pcapng's section and interface headers, its secrets and custom blocks).
const FIRST_PACKET_SEARCH_BYTES: u64 = 64 << 20;

/// The capture time of the first packet of the capture file at `path`; `None` for
/// anything else: no regular file (a pipe is never read here), no capture, no packet
/// in the first [`FIRST_PACKET_SEARCH_BYTES`], a damaged start.
pub fn first_packet_time(path: &Path) -> Option<Timestamp> {
    if !std::fs::metadata(path).ok()?.is_file() {
        return None;
    }
    let opened = super::open_input(path).ok()?;
    if !matches!(opened.kind, InputKind::Pcap | InputKind::Pcapng) {
        return None;
    }
    let file = std::io::BufReader::new(opened.file);
    let content: Box<dyn Read> = if opened.gzip {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut reader = CaptureReader::new(content.take(FIRST_PACKET_SEARCH_BYTES)).ok()?;
    loop {
        match reader.next_event() {
            Ok(Some(CaptureEvent::Frame(frame))) => return Some(frame.ts),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return None,
        }
    }
}

/// The TLS key log of all of a capture's Decryption Secrets Blocks, read before its
/// packets are (`--secrets-first`): a pass over the whole file that keeps only those
/// blocks, so that secrets written after the handshakes they are for (PCAPdroid may
/// write them so) decrypt them too. Bounded as any key log is
/// ([`crate::net::keylog::MAX_ENTRIES`]). A damaged or truncated file gives the
/// secrets before the damage: the reading pass after this one reports it. `None` when
/// there is no TLS key log block (then the file is read as without this pass).
pub fn secrets_ahead<R: Read>(reader: R) -> Option<KeyLog> {
    let mut capture = CaptureReader::new(reader).ok()?;
    let mut keys = None;
    while let Ok(Some(event)) = capture.next_event() {
        if let CaptureEvent::Secrets {
            secrets_type: SECRETS_TYPE_TLS_KEYLOG,
            data,
        } = event
        {
            keys.get_or_insert_with(KeyLog::new).add(data);
        }
    }
    keys
}

fn capture_error(file: &str, e: CaptureError) -> SourceError {
    match e {
        CaptureError::Io(error) => SourceError::Io {
            file: file.to_string(),
            error,
        },
        other => SourceError::Capture {
            file: file.to_string(),
            message: other.to_string(),
        },
    }
}
