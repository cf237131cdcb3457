//! Live capture from a network interface with libpcap (feature `live`): packets go
//! through the same [`Tap`] as capture files, and unchanged into the evidence ring.
//! Or packets read as another program writes them ([`PacketSource::Savefile`]: a
//! gateway's `tcpdump -w -` over ssh, PCAPdroid's HTTP stream, piped in; or
//! [`PacketSource::Udp`], PCAPdroid's UDP exporter, joined by [`ExportFraming`]; or
//! [`PacketSource::Tcp`], its TCP exporter, connection after connection), with
//! consentry's own capture reader, as `analyze` reads a file: every link type of a
//! pcapng, its Decryption Secrets Blocks (TLS key logs, used as met) and custom
//! blocks (PCAPdroid's apps), and the packet comments all reach the tap and the ring,
//! none of which libpcap's savefile reader passes on. `--bpf` is compiled by libpcap
//! for each link type the stream has and applied to each packet.
//!
//! Reads from an interface are non-blocking and the loop looks at the stop flag
//! between packets (every few milliseconds when idle), so SIGINT
//! and SIGTERM end it within a fraction of a second; then every open flow is flushed
//! into exchanges and the ring file is closed, and libpcap's counters (packets the
//! kernel dropped, the interface dropped) are reported. A stream is read on a
//! thread of its own ([`Feed`]), so the loop gets a turn every [`STREAM_TICK`] while
//! the stream is quiet: a stop, `--duration`, the ring's flush and the key logs
//! followed do not wait for the writer's next packet.
//!
//! `--keylog` files are followed while capturing: an app instrumented with Frida or a
//! browser with `SSLKEYLOGFILE` writes its secrets as it connects, so every
//! [`KEYLOG_POLL`] the lines appended since (complete lines only) are added to the tap.
//! A file that shrinks (truncated, replaced) is read again from its start. Those
//! secrets are written just *after* the handshake messages that derive them went on the
//! wire, and the decryptor looks them up when it reads the hellos; so while key logs
//! are followed, packets reach the tap [`KEYLOG_DELAY`] after their capture (the key
//! logs polled just before), bounded by [`MAX_DELAYED_BYTES`] (beyond it the oldest go
//! at once). The evidence ring gets them at the same time, after the lines polled
//! meanwhile, as a Decryption Secrets Block ([`EvidenceRing::block_for_next_packets`]):
//! a ring file decrypts alone even in a single-pass reader (`tshark -r`, `analyze`),
//! which needs a connection's secrets before its handshake. Without key logs followed,
//! packets go to the ring and the tap as they come.

use std::cell::RefCell;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::case::DeviceResolver;
use crate::exchange::{Exchange, SourceKind};
use crate::net::capture::{CaptureError, CaptureEvent, CaptureReader, Frame, LinkType};
use crate::net::pcapdroid::AppUnderTest;
use crate::net::tap::{DataProbe, Tap, TapLimits, TapStats};
use crate::net::tunnel::UdpTunnelPorts;
use crate::net::wpa::{WlanKeys, WpaStats};
use crate::timestamp::Timestamp;

use super::pcap::CaptureSummary;
use super::ring::{custom_block, secrets_block, EvidenceRing, FrameFiles, RingEvent, RingLimits};
use super::tcp_export::RecordSplitter;
use super::udp_export::{ExportFraming, Framed};

/// How often followed key log files are looked at for new lines.
pub const KEYLOG_POLL: Duration = Duration::from_millis(200);
/// Bytes read from a followed key log at one look (the rest waits for the next).
const KEYLOG_READ_MAX: u64 = 16 << 20;
/// How long packets wait for their secrets while key logs are followed.
pub const KEYLOG_DELAY: Duration = Duration::from_millis(500);
/// Captured bytes held back at most for [`KEYLOG_DELAY`].
pub const MAX_DELAYED_BYTES: usize = 64 << 20;

/// libpcap's read timeout: on Linux, how long the kernel fills a block of the capture
/// ring before handing it over part full, so the longest a packet of a quiet link
/// waits before the tap reads it.
pub const POLL_MILLIS: i32 = 50;
/// Default size of the kernel's capture buffer for an interface (`--buffer-mib`).
/// libpcap's own default, 2 MiB (tcpdump's and dumpcap's too), holds 17 ms of a
/// 1 Gbit/s link, not much more than the loop's pause when idle ([`IDLE_SLEEP`]) or
/// one large exchange's analysis: the benchmark capture replayed at 1.9 Gbit/s lost
/// 6 % of its packets with it and none with 32 MiB (`benches/live_compare.sh`).
pub const DEFAULT_BUFFER_MIB: u32 = 32;
/// Pause when no packet is waiting, before the stop flag is looked at again.
const IDLE_SLEEP: Duration = Duration::from_millis(5);
/// How long an interface is read on after a stop (SIGINT, `--duration`): the kernel
/// hands over a part-filled block of its capture buffer only after [`POLL_MILLIS`],
/// so the packets of the last moments before the stop would be lost unread.
const STOP_DRAIN: Duration = Duration::from_millis(2 * POLL_MILLIS as u64);
/// Longest read on after a stop: a link that keeps sending is never idle.
const STOP_DRAIN_MAX: Duration = Duration::from_secs(1);
/// Longest time packets wait in the evidence ring's batch before they go to its
/// writer thread: about what a crash (`kill -9`, power aside) can lose of the file
/// being written.
pub const RING_FLUSH: Duration = Duration::from_secs(1);
/// How far the tap's clock stays behind the source's while it is quiet (see
/// [`QuietClock`]): a packet read late by up to this much still finds the tap as a
/// file read would.
const QUIET_CLOCK_MARGIN: Duration = Duration::from_secs(1);

/// Where the packets come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PacketSource {
    /// Captured on this network interface.
    Interface(String),
    /// Read from a pcap or pcapng stream as it is written: a pipe, standard input
    /// (`/dev/stdin`), a FIFO (or a file, read at once).
    Savefile(PathBuf),
    /// The datagrams of PCAPdroid's UDP exporter received on `listen`, from the
    /// `senders` only (none: from anyone).
    Udp {
        listen: std::net::SocketAddr,
        senders: Vec<std::net::IpAddr>,
    },
    /// The connections of PCAPdroid's TCP exporter accepted on `listen`, one at a
    /// time, from the `senders` only (none: from anyone).
    Tcp {
        listen: std::net::SocketAddr,
        senders: Vec<std::net::IpAddr>,
    },
}

impl std::fmt::Display for PacketSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PacketSource::Interface(name) => write!(f, "interface {name}"),
            PacketSource::Savefile(path) => write!(f, "{}", path.display()),
            PacketSource::Udp { listen, .. } => write!(f, "UDP {listen}"),
            PacketSource::Tcp { listen, .. } => write!(f, "TCP {listen}"),
        }
    }
}

/// How to capture.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    pub source: PacketSource,
    /// A BPF capture filter (tcpdump syntax).
    pub bpf: Option<String>,
    pub snaplen: i32,
    pub promiscuous: bool,
    /// Size of the kernel's capture buffer for an interface, bytes.
    pub buffer_bytes: i32,
    /// Where the evidence ring goes; `None` writes no packets to disk.
    pub ring_dir: Option<PathBuf>,
    pub ring_limits: RingLimits,
    pub devices: DeviceResolver,
    pub fallback_device: Option<String>,
    /// The case's app, which the apps a stream names (PCAPdroid) are compared with.
    pub app: AppUnderTest,
    pub limits: TapLimits,
    /// The UDP ports of each UDP tunnel (`--tunnel-port`).
    pub tunnel_ports: UdpTunnelPorts,
    /// Keys for WPA2-protected 802.11 frames (`--wlan-keys`).
    pub wlan_keys: Arc<WlanKeys>,
    /// NSS key logs to decrypt TLS with: each file and the contents it had when it
    /// was read; the file is followed for lines appended later.
    pub keylogs: Vec<(PathBuf, Arc<[u8]>)>,
    /// Stop after this long (for tests and timed runs).
    pub duration: Option<Duration>,
    /// Searches the names of clients' DNS queries ([`Tap::set_dns_probe`]).
    pub dns_probe: Option<DataProbe>,
}

/// What a live capture saw.
#[derive(Debug, Clone, Default)]
pub struct LiveSummary {
    pub tap: TapStats,
    /// libpcap: packets received by the filter, dropped by the kernel for lack of
    /// buffer space, dropped by the interface.
    pub received: u64,
    pub kernel_dropped: u64,
    pub interface_dropped: u64,
    pub ring_files: Vec<PathBuf>,
    pub ring_packets: u64,
    /// Secrets and custom blocks of a stream not repeated at the start of every ring
    /// file (past [`super::ring::MAX_KEPT_BLOCK_BYTES`]) …
    pub ring_blocks_not_kept: u64,
    /// … and custom blocks not copied into the ring at all (ones marked not to be
    /// copied, or of a big-endian section).
    pub ring_blocks_not_copied: u64,
    /// WPA handshakes followed and frames decrypted (`--wlan-keys`).
    pub wpa: WpaStats,
    /// TLS connections not decrypted whose keys came after their handshakes (key log
    /// lines written late, secrets blocks after the handshakes).
    pub tls_keys_late: u64,
    /// For a stream: what reading it saw (secrets, apps, where it was cut short).
    pub stream: Option<CaptureSummary>,
    /// For PCAPdroid's UDP exporter: the datagrams received.
    pub udp: Option<UdpSummary>,
    /// For PCAPdroid's TCP exporter: the connections accepted.
    pub tcp: Option<TcpSummary>,
}

/// What the receiver of PCAPdroid's UDP exporter saw.
#[derive(Debug, Clone, Default)]
pub struct UdpSummary {
    /// The address bound (the port chosen for a port 0).
    pub listen: Option<std::net::SocketAddr>,
    pub datagrams: u64,
    /// Not one record of the stream ([`Framed::Drop`]) …
    pub dropped: u64,
    /// … the first of them: its sender and why.
    pub first_dropped: Option<(std::net::SocketAddr, &'static str)>,
    /// From an address not among the senders allowed.
    pub foreign: u64,
    pub first_foreign: Option<std::net::SocketAddr>,
}

/// What the receiver of PCAPdroid's TCP exporter saw.
#[derive(Debug, Clone, Default)]
pub struct TcpSummary {
    /// The address bound (the port chosen for a port 0).
    pub listen: Option<std::net::SocketAddr>,
    /// Connections accepted from allowed senders …
    pub connections: u64,
    /// … those that ended in the middle of a record, or could not go on (the rest of
    /// them lost), the first with its sender and why …
    pub broken: u64,
    pub first_broken: Option<(std::net::SocketAddr, &'static str)>,
    /// … and their records that were not one record of the stream (dropped).
    pub dropped: u64,
    pub first_dropped: Option<(std::net::SocketAddr, &'static str)>,
    /// Connections closed at once: not from a sender allowed.
    pub foreign: u64,
    pub first_foreign: Option<std::net::SocketAddr>,
}

/// How big the UDP receive buffer is asked to be: a burst of the exporter while the
/// tap is busy waits there (the kernel's default of about 200 KiB holds ~150 packets).
const UDP_RECEIVE_BUFFER: usize = 8 << 20;

/// PCAPdroid's UDP exporter as a byte stream: each datagram received (from an
/// allowed sender) goes through [`ExportFraming`], and what it appends is read.
struct UdpExport {
    socket: std::net::UdpSocket,
    senders: Vec<std::net::IpAddr>,
    framing: ExportFraming,
    datagram: Vec<u8>,
    pending: Vec<u8>,
    at: usize,
    summary: Arc<std::sync::Mutex<UdpSummary>>,
}

impl Read for UdpExport {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.pending.len() {
            let (n, from) = self.socket.recv_from(&mut self.datagram)?;
            let d = self.datagram.get(..n).unwrap_or_default();
            let framed =
                if self.senders.is_empty() || self.senders.contains(&from.ip().to_canonical()) {
                    Some(self.framing.datagram(d))
                } else {
                    None
                };
            // A panic elsewhere while holding it leaves counts: still valid.
            let mut summary = self.summary.lock().unwrap_or_else(|e| e.into_inner());
            summary.datagrams += 1;
            match framed {
                Some(Framed::Append(bytes)) => (self.pending, self.at) = (bytes, 0),
                Some(Framed::Skip) => {}
                Some(Framed::Drop(why)) => {
                    summary.dropped += 1;
                    summary.first_dropped.get_or_insert((from, why));
                }
                None => {
                    summary.foreign += 1;
                    summary.first_foreign.get_or_insert(from);
                }
            }
        }
        let n = buf.len().min(self.pending.len() - self.at);
        buf[..n].copy_from_slice(&self.pending[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// How long a TCP exporter connection may be quiet before the receiver looks for a
/// newer one.
const TCP_QUIET: Duration = Duration::from_secs(1);

/// PCAPdroid's TCP exporter as a byte stream: connections accepted one at a time (a
/// new capture on the phone is a new connection), each cut into its header and
/// records by [`RecordSplitter`], which then go through [`ExportFraming`] as the UDP
/// exporter's datagrams do. A connection waiting while another is read is accepted
/// when that one ends, or as soon as that one is quiet for [`TCP_QUIET`]: the app
/// exports over one connection at a time, so a quiet one whose successor came is
/// taken for dead (the phone left the Wi-Fi without closing it, say), and would
/// otherwise hold the next capture back for good.
struct TcpExport {
    listener: std::net::TcpListener,
    senders: Vec<std::net::IpAddr>,
    connection: Option<(std::net::TcpStream, std::net::SocketAddr)>,
    splitter: RecordSplitter,
    framing: ExportFraming,
    received: Vec<u8>,
    pending: Vec<u8>,
    at: usize,
    summary: Arc<std::sync::Mutex<TcpSummary>>,
}

impl TcpExport {
    fn summary(&self) -> std::sync::MutexGuard<'_, TcpSummary> {
        // A panic elsewhere while holding it leaves counts: still valid.
        self.summary.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for the next connection from an allowed sender (`waiting`: only takes
    /// one already waiting, and says whether there was one). A connection that went
    /// away before it was accepted is no reason to stop.
    fn accept(&mut self, waiting: bool) -> std::io::Result<bool> {
        use std::io::ErrorKind::{ConnectionAborted, ConnectionReset, Interrupted, WouldBlock};
        self.listener.set_nonblocking(waiting)?;
        loop {
            let (stream, from) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if waiting && e.kind() == WouldBlock => return Ok(false),
                Err(e) if matches!(e.kind(), ConnectionAborted | ConnectionReset | Interrupted) => {
                    continue
                }
                Err(e) => return Err(e),
            };
            let mut summary = self.summary();
            if !self.senders.is_empty() && !self.senders.contains(&from.ip().to_canonical()) {
                summary.foreign += 1;
                summary.first_foreign.get_or_insert(from);
                continue;
            }
            summary.connections += 1;
            drop(summary);
            // Accepted sockets do not inherit the listener's non-blocking mode on
            // Linux; the timeout lets a quiet one give way to a newer one.
            stream.set_nonblocking(false)?;
            stream.set_read_timeout(Some(TCP_QUIET))?;
            self.close(
                (self.splitter.unfinished() > 0)
                    .then_some("quiet in the middle of a record when a newer connection came"),
            );
            self.splitter = RecordSplitter::new();
            self.connection = Some((stream, from));
            return Ok(true);
        }
    }

    /// Ends the connection, `why` when it broke off (unread bytes count as that too).
    fn close(&mut self, why: Option<&'static str>) {
        let Some((_, from)) = self.connection.take() else {
            return;
        };
        let why = why.or((self.splitter.unfinished() > 0)
            .then_some("the connection ended in the middle of a record"));
        if let Some(why) = why {
            let mut summary = self.summary();
            summary.broken += 1;
            summary.first_broken.get_or_insert((from, why));
        }
    }

    /// Reads the connection once and frames what it completes.
    fn receive(&mut self) -> std::io::Result<()> {
        use std::io::ErrorKind::{Interrupted, TimedOut, WouldBlock};
        let Some((stream, from)) = self.connection.as_mut() else {
            return self.accept(false).map(drop);
        };
        let from = *from;
        let n = match stream.read(&mut self.received) {
            Ok(0) => {
                self.close(None);
                return Ok(());
            }
            Ok(n) => n,
            Err(e) if e.kind() == Interrupted => return Ok(()),
            // Quiet: a newer connection, if one is waiting, takes its place.
            Err(e) if matches!(e.kind(), WouldBlock | TimedOut) => {
                return self.accept(true).map(drop)
            }
            Err(_) => {
                self.close(Some("the connection failed (reset by the sender?)"));
                return Ok(());
            }
        };
        self.splitter.push(&self.received[..n]);
        loop {
            let framed = match self.splitter.next_unit() {
                None => return Ok(()),
                Some(Ok(unit)) => self.framing.datagram(unit),
                Some(Err(why)) => {
                    self.close(Some(why));
                    return Ok(());
                }
            };
            match framed {
                Framed::Append(bytes) => self.pending.extend_from_slice(&bytes),
                Framed::Skip => {}
                Framed::Drop(why) => {
                    let mut summary = self.summary();
                    summary.dropped += 1;
                    summary.first_dropped.get_or_insert((from, why));
                }
            }
        }
    }
}

impl Read for TcpExport {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.pending.len() {
            self.pending.clear();
            self.at = 0;
            self.receive()?;
        }
        let n = buf.len().min(self.pending.len() - self.at);
        buf[..n].copy_from_slice(&self.pending[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// A packet held back for [`KEYLOG_DELAY`]: a [`Frame`] with its bytes owned.
struct Delayed {
    arrival: Instant,
    number: u64,
    ts: Timestamp,
    link: LinkType,
    interface: u32,
    data: Vec<u8>,
    original_len: u32,
    comment: Option<Vec<u8>>,
}

impl Delayed {
    fn frame(&self) -> Frame<'_> {
        Frame {
            number: self.number,
            ts: self.ts,
            link: self.link,
            interface: self.interface,
            data: &self.data,
            original_len: self.original_len,
            comment: self.comment.as_deref(),
        }
    }
}

/// Packets held back for [`KEYLOG_DELAY`], oldest first.
#[derive(Default)]
struct DelayQueue {
    packets: std::collections::VecDeque<Delayed>,
    bytes: usize,
}

impl DelayQueue {
    fn push(&mut self, now: Instant, frame: &Frame<'_>) {
        self.bytes += frame.data.len();
        self.packets.push_back(Delayed {
            arrival: now,
            number: frame.number,
            ts: frame.ts,
            link: frame.link,
            interface: frame.interface,
            data: frame.data.to_vec(),
            original_len: frame.original_len,
            comment: frame.comment.map(<[u8]>::to_vec),
        });
    }

    fn len(&self) -> usize {
        self.packets.len()
    }

    /// The oldest packet has waited long enough.
    fn due(&self, now: Instant) -> bool {
        self.packets
            .front()
            .is_some_and(|p| now.duration_since(p.arrival) >= KEYLOG_DELAY)
    }

    /// The oldest packet.
    fn pop(&mut self) -> Option<Delayed> {
        let p = self.packets.pop_front()?;
        self.bytes = self.bytes.saturating_sub(p.data.len());
        Some(p)
    }

    /// The oldest packet if it waited [`KEYLOG_DELAY`] …
    fn pop_due(&mut self, now: Instant) -> Option<Delayed> {
        if self.due(now) {
            self.pop()
        } else {
            None
        }
    }

    /// … or if the queue holds more than [`MAX_DELAYED_BYTES`].
    fn pop_over_budget(&mut self) -> Option<Delayed> {
        if self.bytes > MAX_DELAYED_BYTES {
            self.pop()
        } else {
            None
        }
    }
}

/// A key log file followed as it grows.
struct Followed {
    path: PathBuf,
    /// Bytes of it already added (up to a line end).
    offset: u64,
}

impl Followed {
    /// The complete lines appended since the last look. Errors (the file gone for a
    /// moment, unreadable) are retried at the next look.
    fn poll(&mut self) -> Option<Vec<u8>> {
        let mut file = std::fs::File::open(&self.path).ok()?;
        let len = file.metadata().ok()?.len();
        if len < self.offset {
            self.offset = 0;
        }
        if len == self.offset {
            return None;
        }
        file.seek(SeekFrom::Start(self.offset)).ok()?;
        let mut new = Vec::new();
        file.take((len - self.offset).min(KEYLOG_READ_MAX))
            .read_to_end(&mut new)
            .ok()?;
        match new.iter().rposition(|&b| b == b'\n') {
            Some(end) => {
                new.truncate(end + 1);
                self.offset += new.len() as u64;
                Some(new)
            }
            // No line end in a whole read: no key log line is that long; skip it.
            None if new.len() as u64 == KEYLOG_READ_MAX => {
                self.offset += KEYLOG_READ_MAX;
                None
            }
            None => None,
        }
    }
}

/// Why a live capture could not run.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// libpcap could not open or read the source (named as [`PacketSource`] shows).
    #[error("{from}: {message}")]
    Pcap { from: String, message: String },
    /// The stream could not be opened or read as a capture.
    #[error("{from}: {message}")]
    Stream { from: String, message: String },
    /// (The I/O error is in the message only, so that `{:#}` says it once.)
    #[error("evidence ring in {dir}: {error}")]
    Ring { dir: String, error: std::io::Error },
}

/// A `--bpf` filter applied to a stream's packets, compiled by libpcap for each link
/// type the stream has (as libpcap applies it to an interface).
struct StreamFilter {
    text: String,
    programs: Vec<(LinkType, pcap::BpfProgram)>,
}

impl StreamFilter {
    fn matches(&mut self, link: LinkType, data: &[u8]) -> Result<bool, String> {
        if let Some((_, p)) = self.programs.iter().find(|(l, _)| *l == link) {
            return Ok(p.filter(data));
        }
        let dlt = i32::try_from(link.number()).unwrap_or(i32::MAX);
        let program = pcap::Capture::dead(pcap::Linktype(dlt))
            .and_then(|dead| dead.compile(&self.text, true))
            .map_err(|e| format!("--bpf {:?} for link type {dlt}: {e}", self.text))?;
        let matched = program.filter(data);
        self.programs.push((link, program));
        Ok(matched)
    }
}

/// How long a read of a stream waits for bytes before the capture loop gets a turn
/// (the stop flag, `--duration`, the ring's flush, key logs followed).
const STREAM_TICK: Duration = Duration::from_millis(100);
/// Chunks read ahead of the capture reader: at most this many of [`STREAM_CHUNK`].
const STREAM_CHUNKS_AHEAD: usize = 4;
const STREAM_CHUNK: usize = 64 << 10;

/// A stream read on a thread of its own, so that waiting for its next bytes does
/// not hold up the capture loop: a pipe gone quiet still lets SIGTERM stop the tap
/// (the signal handler restarts a blocked `read`), `--duration` end it, and the ring
/// go to disk every second. Until the file header is read, a wait ends at the stop
/// only (as the end of the stream); after it ([`Feed::ticking`]), each wait of
/// [`STREAM_TICK`] without bytes is a [`std::io::ErrorKind::WouldBlock`], which the
/// capture reader passes on and resumes after.
struct Feed<'a> {
    chunks: std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    at: usize,
    ended: bool,
    ticking: std::rc::Rc<std::cell::Cell<bool>>,
    stop: &'a AtomicBool,
}

impl<'a> Feed<'a> {
    fn new(
        mut file: impl Read + Send + 'static,
        stop: &'a AtomicBool,
        ticking: std::rc::Rc<std::cell::Cell<bool>>,
    ) -> std::io::Result<Feed<'a>> {
        let (tx, chunks) = std::sync::mpsc::sync_channel(STREAM_CHUNKS_AHEAD);
        // Detached: at a stop it may stay blocked in `read` until the process exits.
        std::thread::Builder::new()
            .name("consentry-read".into())
            .spawn(move || loop {
                let mut chunk = vec![0u8; STREAM_CHUNK];
                let read = match file.read(&mut chunk) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Ok(n) => {
                        chunk.truncate(n);
                        Ok(chunk)
                    }
                    Err(e) => Err(e),
                };
                let last = !matches!(&read, Ok(c) if !c.is_empty());
                if tx.send(read).is_err() || last {
                    return;
                }
            })?;
        Ok(Feed {
            chunks,
            chunk: Vec::new(),
            at: 0,
            ended: false,
            ticking,
            stop,
        })
    }
}

impl Read for Feed<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::sync::mpsc::RecvTimeoutError;
        while self.at == self.chunk.len() {
            if self.ended {
                return Ok(0);
            }
            match self.chunks.recv_timeout(STREAM_TICK) {
                Ok(Ok(chunk)) if chunk.is_empty() => self.ended = true,
                Ok(Ok(chunk)) => (self.chunk, self.at) = (chunk, 0),
                Ok(Err(e)) => {
                    self.ended = true;
                    return Err(e);
                }
                Err(RecvTimeoutError::Disconnected) => self.ended = true,
                Err(RecvTimeoutError::Timeout) if self.ticking.get() => {
                    return Err(std::io::ErrorKind::WouldBlock.into())
                }
                Err(RecvTimeoutError::Timeout) if self.stop.load(Ordering::Relaxed) => {
                    self.ended = true
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// What PCAPdroid's exporters' receivers count, shared with their reader thread.
#[derive(Default)]
struct Exporters {
    udp: Arc<std::sync::Mutex<UdpSummary>>,
    tcp: Arc<std::sync::Mutex<TcpSummary>>,
}

/// The packets' source, opened.
enum Packets<'a> {
    /// A network interface through libpcap, read without blocking.
    Interface {
        cap: pcap::Capture<pcap::Active>,
        link: LinkType,
    },
    /// A pcap or pcapng stream through consentry's own reader: every link type,
    /// secrets blocks and custom blocks, as `analyze` reads a file.
    Stream {
        /// Boxed: the reader is large, and one per run.
        reader: Box<CaptureReader<Feed<'a>>>,
        filter: Option<StreamFilter>,
    },
    /// A stream stopped before its file header came: nothing to read.
    Stopped,
}

/// A stream's reader once its source is open: its capture reader, or a stop that
/// came before the file header.
fn stream_reader<'a>(
    from: &str,
    source: impl Read + Send + 'static,
    opts: &LiveOptions,
    stop: &'a AtomicBool,
    ready: &mut dyn FnMut(),
) -> Result<Packets<'a>, LiveError> {
    // Ready before the file header: a writer may start later (PCAPdroid's exporter).
    ready();
    let stream_err = |message: String| LiveError::Stream {
        from: from.to_string(),
        message,
    };
    let ticking = std::rc::Rc::new(std::cell::Cell::new(false));
    let feed = Feed::new(source, stop, ticking.clone())
        .map_err(|e| stream_err(format!("starting its reader: {e}")))?;
    let reader = match CaptureReader::new(feed) {
        Ok(reader) => reader,
        // Stopped while waiting for the file header: not its fault.
        Err(_) if stop.load(Ordering::Relaxed) => return Ok(Packets::Stopped),
        Err(e) => return Err(stream_err(e.to_string())),
    };
    ticking.set(true);
    let filter = opts.bpf.as_ref().map(|text| StreamFilter {
        text: text.clone(),
        programs: Vec::new(),
    });
    Ok(Packets::Stream {
        reader: Box::new(reader),
        filter,
    })
}

/// A `--read` stream, inflated when it starts like gzip (`tcpdump -w - | gzip` over
/// ssh, a `.pcap.gz` file), as `analyze` reads such files. The first two bytes are
/// looked at on the first read, in the feed's thread, so that waiting for a writer
/// that starts later still heeds the stop flag.
enum GzipOrPlain<R: Read> {
    Unread(Option<R>),
    Plain(std::io::Chain<std::io::Cursor<Vec<u8>>, R>),
    Gzip(Box<flate2::read::MultiGzDecoder<std::io::Chain<std::io::Cursor<Vec<u8>>, R>>>),
}

impl<R: Read> GzipOrPlain<R> {
    fn new(inner: R) -> Self {
        GzipOrPlain::Unread(Some(inner))
    }
}

impl<R: Read> Read for GzipOrPlain<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let GzipOrPlain::Unread(inner) = self {
            let Some(mut inner) = inner.take() else {
                return Ok(0);
            };
            let mut head = [0u8; 2];
            let mut got = 0;
            while got < head.len() {
                match inner.read(&mut head[got..]) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            let gzip = head[..got] == [0x1f, 0x8b];
            let whole = std::io::Cursor::new(head[..got].to_vec()).chain(inner);
            *self = if gzip {
                GzipOrPlain::Gzip(Box::new(flate2::read::MultiGzDecoder::new(whole)))
            } else {
                GzipOrPlain::Plain(whole)
            };
        }
        match self {
            GzipOrPlain::Unread(_) => Ok(0),
            GzipOrPlain::Plain(r) => r.read(buf),
            GzipOrPlain::Gzip(r) => r.read(buf),
        }
    }
}

/// What the source gave.
enum Item<'a> {
    Frame(Frame<'a>),
    Secrets {
        secrets_type: u32,
        data: &'a [u8],
    },
    Custom {
        pen: u32,
        data: &'a [u8],
        big_endian: bool,
        copiable: bool,
    },
    /// Nothing waiting: look again (the source waited a moment already).
    Idle,
    /// The stream ended, at its end or (`Some(offset)`) cut short in a block there.
    End(Option<u64>),
}

impl<'a> Packets<'a> {
    /// Opens the source and calls `ready` once it is open (an interface once it
    /// filters; a stream before its file header is read, which may take a while).
    fn open(
        opts: &LiveOptions,
        stop: &'a AtomicBool,
        exporters: &Exporters,
        ready: &mut dyn FnMut(&PacketSource),
    ) -> Result<Packets<'a>, LiveError> {
        match &opts.source {
            PacketSource::Interface(name) => {
                let pcap_err = |e: pcap::Error| LiveError::Pcap {
                    from: opts.source.to_string(),
                    message: e.to_string(),
                };
                let mut cap = pcap::Capture::from_device(name.as_str())
                    .map_err(pcap_err)?
                    .snaplen(opts.snaplen)
                    .promisc(opts.promiscuous)
                    .buffer_size(opts.buffer_bytes)
                    // Not immediate mode: on Linux that makes libpcap use a ring of
                    // fixed slots, each as large as the snaplen allows (up to 64
                    // KiB), so libpcap's default 2 MiB held a few dozen packets and
                    // the kernel dropped 90 % of a 500 Mbit/s link
                    // (`benches/live_compare.sh`). Without it the ring's blocks hold
                    // packets at their own length and are handed over full or after
                    // the timeout.
                    .timeout(POLL_MILLIS)
                    .open()
                    .map_err(pcap_err)?
                    // Non-blocking reads plus a short sleep when idle keep the stop
                    // flag and the duration checked.
                    .setnonblock()
                    .map_err(pcap_err)?;
                if let Some(filter) = &opts.bpf {
                    cap.filter(filter, true).map_err(pcap_err)?;
                }
                let dlt = cap.get_datalink().0;
                let link = LinkType::from_number(u32::try_from(dlt).unwrap_or(u32::MAX));
                ready(&opts.source);
                Ok(Packets::Interface { cap, link })
            }
            PacketSource::Savefile(path) => {
                let file = std::fs::File::open(path).map_err(|e| LiveError::Stream {
                    from: path.display().to_string(),
                    message: e.to_string(),
                })?;
                let ready = &mut || ready(&opts.source);
                let stream = GzipOrPlain::new(file);
                stream_reader(&path.display().to_string(), stream, opts, stop, ready)
            }
            PacketSource::Udp { listen, senders } => {
                let udp_err = |e: std::io::Error| LiveError::Stream {
                    from: opts.source.to_string(),
                    message: e.to_string(),
                };
                let socket = std::net::UdpSocket::bind(listen).map_err(udp_err)?;
                let listen = socket.local_addr().map_err(udp_err)?;
                exporters
                    .udp
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .listen = Some(listen);
                let bound = PacketSource::Udp {
                    listen,
                    senders: senders.clone(),
                };
                // A smaller buffer than asked for still works (the kernel caps it at
                // net.core.rmem_max): best effort.
                let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(UDP_RECEIVE_BUFFER);
                let export = UdpExport {
                    socket,
                    senders: senders.iter().map(|ip| ip.to_canonical()).collect(),
                    framing: ExportFraming::new(),
                    datagram: vec![0; 1 << 16],
                    pending: Vec::new(),
                    at: 0,
                    summary: exporters.udp.clone(),
                };
                let ready = &mut || ready(&bound);
                stream_reader(&bound.to_string(), export, opts, stop, ready)
            }
            PacketSource::Tcp { listen, senders } => {
                let tcp_err = |e: std::io::Error| LiveError::Stream {
                    from: opts.source.to_string(),
                    message: e.to_string(),
                };
                let listener = std::net::TcpListener::bind(listen).map_err(tcp_err)?;
                let listen = listener.local_addr().map_err(tcp_err)?;
                exporters
                    .tcp
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .listen = Some(listen);
                let bound = PacketSource::Tcp {
                    listen,
                    senders: senders.clone(),
                };
                let export = TcpExport {
                    listener,
                    senders: senders.iter().map(|ip| ip.to_canonical()).collect(),
                    connection: None,
                    splitter: RecordSplitter::new(),
                    framing: ExportFraming::new(),
                    received: vec![0; 1 << 16],
                    pending: Vec::new(),
                    at: 0,
                    summary: exporters.tcp.clone(),
                };
                let ready = &mut || ready(&bound);
                stream_reader(&bound.to_string(), export, opts, stop, ready)
            }
        }
    }

    /// The next frame (one the filter passes), block or state of the source.
    fn next(&mut self, from: &PacketSource) -> Result<Item<'_>, LiveError> {
        match self {
            Packets::Interface { cap, link } => match cap.next_packet() {
                Ok(packet) => {
                    let (secs, micros) = (packet.header.ts.tv_sec, packet.header.ts.tv_usec);
                    // `time_t`/`suseconds_t` are i64 on the 64-bit targets we build for;
                    // the `From` keeps this compiling (not truncating) where they are
                    // narrower.
                    #[allow(clippy::useless_conversion)]
                    let ts = Timestamp::from_micros(
                        i64::from(secs)
                            .saturating_mul(1_000_000)
                            .saturating_add(i64::from(micros)),
                    );
                    Ok(Item::Frame(Frame {
                        number: 0,
                        ts,
                        link: *link,
                        interface: 0,
                        data: packet.data,
                        original_len: packet.header.len,
                        comment: None,
                    }))
                }
                Err(pcap::Error::TimeoutExpired) => {
                    std::thread::sleep(IDLE_SLEEP);
                    Ok(Item::Idle)
                }
                Err(e) => Err(LiveError::Pcap {
                    from: from.to_string(),
                    message: e.to_string(),
                }),
            },
            Packets::Stream { reader, filter } => {
                let stream_err = |message: String| LiveError::Stream {
                    from: from.to_string(),
                    message,
                };
                let mut filter_error = None;
                let event = reader.next_event_where(|f| match filter {
                    Some(filter) => filter.matches(f.link, f.data).unwrap_or_else(|e| {
                        filter_error.get_or_insert(e);
                        true
                    }),
                    None => true,
                });
                if let Some(e) = filter_error {
                    return Err(stream_err(e));
                }
                Ok(match event {
                    Ok(None) => Item::End(None),
                    Ok(Some(CaptureEvent::Frame(f))) => Item::Frame(f),
                    Ok(Some(CaptureEvent::Secrets { secrets_type, data })) => {
                        Item::Secrets { secrets_type, data }
                    }
                    Ok(Some(CaptureEvent::Custom {
                        pen,
                        data,
                        big_endian,
                        copiable,
                    })) => Item::Custom {
                        pen,
                        data,
                        big_endian,
                        copiable,
                    },
                    Err(CaptureError::Truncated { offset, .. }) => Item::End(Some(offset)),
                    Err(CaptureError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        Item::Idle
                    }
                    Err(e) => return Err(stream_err(e.to_string())),
                })
            }
            Packets::Stopped => Ok(Item::End(None)),
        }
    }

    /// libpcap's counters: (received, dropped by the kernel, by the interface).
    fn counters(&mut self) -> Option<(u64, u64, u64)> {
        match self {
            Packets::Interface { cap, .. } => cap.stats().ok().map(|s| {
                (
                    u64::from(s.received),
                    u64::from(s.dropped),
                    u64::from(s.if_dropped),
                )
            }),
            Packets::Stream { .. } | Packets::Stopped => None,
        }
    }
}
/// Where packets go: the evidence ring (noting which file holds each), then the tap,
/// whose exchanges go to the consumer.
struct Outlet<'c> {
    frame_files: &'c RefCell<FrameFiles>,
    ring_events: &'c mut dyn FnMut(RingEvent),
    consumer: &'c mut dyn FnMut(Exchange),
}

/// The capture's clock while no packet comes: the time stamp of the last packet read
/// plus the time since, less [`QUIET_CLOCK_MARGIN`]. Derived from the source's own
/// time stamps, so a source whose clock differs from this machine's (a phone
/// streaming its capture) is not judged by this machine's clock.
#[derive(Default)]
struct QuietClock {
    last: Option<(Timestamp, Instant)>,
}

impl QuietClock {
    /// A packet stamped `ts` came `now`.
    fn packet(&mut self, ts: Timestamp, now: Instant) {
        self.last = Some((ts, now));
    }

    /// The time the tap may advance to now, once the source has been quiet for
    /// longer than the margin.
    fn now(&self) -> Option<Timestamp> {
        let (ts, at) = self.last?;
        let quiet = at.elapsed().checked_sub(QUIET_CLOCK_MARGIN)?;
        let micros = i64::try_from(quiet.as_micros()).ok()?;
        Some(Timestamp::from_micros(ts.micros().saturating_add(micros)))
    }
}

impl Outlet<'_> {
    /// One packet. Once the ring has failed to write, no packet is analysed: a
    /// finding without its packets would not hold up. (The ring's writer thread
    /// reports a failure a few batches late, so the packets queued for it then, at
    /// most 2.5 MiB, were analysed; their file is never recorded closed.)
    fn deliver(
        &mut self,
        frame: &Frame<'_>,
        ring: Option<&mut EvidenceRing>,
        tap: &mut Tap,
    ) -> std::io::Result<()> {
        if let Some(r) = ring {
            let written = u16::try_from(frame.link.number())
                .map_err(|_| std::io::Error::other("link type beyond pcapng's 16 bits"))
                .and_then(|link| r.interface(link))
                .and_then(|i| r.write(frame.ts, i, frame.data, frame.original_len, frame.comment));
            self.frame_files.borrow_mut().note(r);
            r.take_events().into_iter().for_each(&mut *self.ring_events);
            written?;
        }
        tap.frame(frame, self.consumer);
        Ok(())
    }

    /// The held packets `next` takes from the queue, oldest first, until it takes
    /// none or the ring fails.
    fn deliver_held(
        &mut self,
        delayed: &mut DelayQueue,
        mut next: impl FnMut(&mut DelayQueue) -> Option<Delayed>,
        mut ring: Option<&mut EvidenceRing>,
        tap: &mut Tap,
    ) -> std::io::Result<()> {
        while let Some(p) = next(delayed) {
            self.deliver(&p.frame(), ring.as_deref_mut(), tap)?;
        }
        Ok(())
    }
}

/// Adds the lines appended to the followed key logs to the tap and, as a secrets
/// block, to the ring, where the `waiting` packets held back (whose handshakes they
/// may decrypt) will follow them.
fn follow(
    followed: &mut [Followed],
    tap: &mut Tap,
    mut ring: Option<&mut EvidenceRing>,
    waiting: usize,
) -> std::io::Result<()> {
    for f in followed {
        let Some(lines) = f.poll() else { continue };
        tap.add_keylog(&lines);
        if let Some(r) = ring.as_deref_mut() {
            let block = secrets_block(crate::net::flow::SECRETS_TYPE_TLS_KEYLOG, &lines);
            r.block_for_next_packets(block, waiting as u64)?;
        }
    }
    Ok(())
}

/// Captures until `stop` is set (or the duration passes), handing out exchanges as
/// they complete and the evidence ring's files as they are closed or removed (the
/// last one closed at the end). `ready` is called once the source is open (for a
/// stream, before its file header is read; for an interface, filtering), with the
/// source as opened (a UDP port 0 replaced by the port bound).
pub fn capture(
    opts: &LiveOptions,
    stop: &AtomicBool,
    ready: &mut dyn FnMut(&PacketSource),
    consumer: &mut dyn FnMut(Exchange),
    ring_events: &mut dyn FnMut(RingEvent),
) -> Result<LiveSummary, LiveError> {
    let exporters = Exporters::default();
    let mut packets = Packets::open(opts, stop, &exporters, ready)?;
    let started = Timestamp::now();
    let ring_error = |error: std::io::Error| LiveError::Ring {
        dir: opts
            .ring_dir
            .as_ref()
            .map(|d| d.display().to_string())
            .unwrap_or_default(),
        error,
    };
    // An interface's packets are cut at --snaplen; a stream's were cut by its writer,
    // whose limit the ring does not know (0: none).
    let ring_snaplen = match &packets {
        Packets::Interface { .. } => u32::try_from(opts.snaplen).unwrap_or(65535),
        Packets::Stream { .. } | Packets::Stopped => 0,
    };
    let mut ring = match &opts.ring_dir {
        Some(dir) => Some(
            EvidenceRing::create(dir, started, ring_snaplen, opts.ring_limits)
                .map_err(ring_error)?,
        ),
        None => None,
    };
    let mut tap = Tap::new(
        opts.devices.clone(),
        opts.fallback_device.clone(),
        None,
        SourceKind::Pcap,
        opts.limits.clone(),
    );
    tap.set_udp_tunnel_ports(opts.tunnel_ports.clone());
    tap.set_wlan_keys(opts.wlan_keys.clone());
    tap.set_app_under_test(opts.app.clone());
    if let Some(probe) = &opts.dns_probe {
        tap.set_dns_probe(probe.clone());
    }
    let mut followed: Vec<Followed> = opts
        .keylogs
        .iter()
        .map(|(path, text)| {
            tap.add_keylog(text);
            // A last line still being written is read again once it is complete.
            let complete = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            Followed {
                path: path.clone(),
                offset: complete as u64,
            }
        })
        .collect();
    // Exchanges name the ring file holding their packets (their frame numbers are the
    // ring's packet numbers: every packet goes to the ring, and a failed write stops).
    let frame_files = RefCell::new(FrameFiles::default());
    let mut named = |mut x: Exchange| {
        let located = crate::net::tap::parse_frames(&x.evidence.locator)
            .and_then(|(a, b)| frame_files.borrow().locate(a, b));
        if let Some(l) = located {
            x.evidence.locator = l;
        }
        consumer(x)
    };
    let consumer: &mut dyn FnMut(Exchange) = if ring.is_some() { &mut named } else { consumer };
    let mut outlet = Outlet {
        frame_files: &frame_files,
        ring_events: &mut *ring_events,
        consumer: &mut *consumer,
    };
    // The time the last item came, read once per item (a read at each use was about
    // 6 % of the loop's CPU while key logs were followed).
    let mut now = Instant::now();
    let mut next_poll = now + KEYLOG_POLL;
    let mut delayed = DelayQueue::default();
    let mut read = CaptureSummary {
        format: match &packets {
            Packets::Interface { .. } => "live",
            Packets::Stream { reader, .. } => reader.format(),
            Packets::Stopped => "",
        },
        ..CaptureSummary::default()
    };
    let clock = Instant::now();
    let mut quiet_clock = QuietClock::default();
    let mut number = 0u64;
    let mut failure: Option<LiveError> = None;
    let mut not_copied = 0u64;
    let mut next_ring_flush = now + RING_FLUSH;
    // A stream stops at once; an interface is read on until its buffer is drained.
    let drains = matches!(packets, Packets::Interface { .. });
    let mut stopped_at: Option<Instant> = None;
    loop {
        if stop.load(Ordering::Relaxed) || opts.duration.is_some_and(|d| clock.elapsed() >= d) {
            let since = *stopped_at.get_or_insert_with(Instant::now);
            if !drains || since.elapsed() >= STOP_DRAIN_MAX {
                break;
            }
        }
        if let Some(r) = &mut ring {
            if now >= next_ring_flush {
                next_ring_flush = now + RING_FLUSH;
                if let Err(e) = r.flush() {
                    failure = Some(ring_error(e));
                    break;
                }
                // A file closed while the link went quiet is recorded now, not at
                // the next packet.
                r.take_events()
                    .into_iter()
                    .for_each(&mut *outlet.ring_events);
            }
        }
        if !followed.is_empty() {
            if now >= next_poll || delayed.due(now) {
                // Polled right before any release, so held packets meet fresh secrets
                // in the tap and come after them in the ring.
                next_poll = now + KEYLOG_POLL;
                if let Err(e) = follow(&mut followed, &mut tap, ring.as_mut(), delayed.len()) {
                    failure = Some(ring_error(e));
                    break;
                }
            }
            let released =
                outlet.deliver_held(&mut delayed, |q| q.pop_due(now), ring.as_mut(), &mut tap);
            if let Err(e) = released {
                failure = Some(ring_error(e));
                break;
            }
        }
        let item = match packets.next(&opts.source) {
            Ok(item) => item,
            Err(e) => {
                failure = Some(e);
                break;
            }
        };
        now = Instant::now();
        let idle = matches!(item, Item::Idle);
        let kept = match item {
            Item::Frame(frame) => {
                number += 1;
                quiet_clock.packet(frame.ts, now);
                let frame = Frame { number, ..frame };
                if followed.is_empty() {
                    outlet.deliver(&frame, ring.as_mut(), &mut tap)
                } else {
                    // The ring gets it with the tap, after the secrets that came
                    // meanwhile, so that a ring file decrypts alone.
                    delayed.push(now, &frame);
                    outlet.deliver_held(
                        &mut delayed,
                        DelayQueue::pop_over_budget,
                        ring.as_mut(),
                        &mut tap,
                    )
                }
            }
            Item::Secrets { secrets_type, data } => {
                // Secrets of every type are kept in the ring, as read.
                read.secrets_block(&mut tap, secrets_type, data);
                match &mut ring {
                    Some(r) => r.keep_block(secrets_block(secrets_type, data)),
                    None => Ok(()),
                }
            }
            Item::Custom {
                pen,
                data,
                big_endian,
                copiable,
            } => {
                if let Err(e) = tap.custom_block(pen, data, big_endian) {
                    read.pcapdroid_block_error
                        .get_or_insert_with(|| e.to_string());
                }
                // The ring's sections are little-endian: a big-endian section's block
                // data (its layout the enterprise's) cannot be carried over as it is.
                match &mut ring {
                    Some(r) if copiable && !big_endian => r.keep_block(custom_block(pen, data)),
                    Some(_) => {
                        not_copied += 1;
                        Ok(())
                    }
                    None => Ok(()),
                }
            }
            Item::Idle => {
                // Quiet: what falls due meanwhile (a client's part, an idle
                // connection) happens now, not at the next packet; not while packets
                // are held back, which come before it.
                if delayed.len() == 0 {
                    if let Some(now) = quiet_clock.now() {
                        tap.tick(now, outlet.consumer);
                    }
                }
                Ok(())
            }
            Item::End(cut) => {
                read.truncated_at = cut;
                break;
            }
        };
        if let Err(e) = kept {
            failure = Some(ring_error(e));
            break;
        }
        if idle && stopped_at.is_some_and(|t| t.elapsed() >= STOP_DRAIN) {
            break;
        }
    }
    // Secrets appended up to the stop still meet the packets held back. After a ring
    // failure those packets are not analysed: they could not be kept as evidence.
    if !matches!(failure, Some(LiveError::Ring { .. })) {
        let kept = follow(&mut followed, &mut tap, ring.as_mut(), delayed.len()).and_then(|()| {
            outlet.deliver_held(&mut delayed, DelayQueue::pop, ring.as_mut(), &mut tap)
        });
        if let (None, Err(e)) = (&failure, kept) {
            failure = Some(ring_error(e));
        }
    }
    // Whatever stopped the capture, the open connections still become exchanges, and
    // the packets written so far are evidence all the same.
    tap.finish(consumer);
    let mut summary = LiveSummary {
        tap: tap.stats().clone(),
        wpa: tap.packet_stats().wpa,
        tls_keys_late: tap.flow_stats().tls_keys_late,
        ..LiveSummary::default()
    };
    if let Some((received, kernel, interface)) = packets.counters() {
        summary.received = received;
        summary.kernel_dropped = kernel;
        summary.interface_dropped = interface;
    }
    match &opts.source {
        PacketSource::Udp { .. } => {
            summary.udp = Some(
                exporters
                    .udp
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone(),
            )
        }
        PacketSource::Tcp { .. } => {
            summary.tcp = Some(
                exporters
                    .tcp
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone(),
            )
        }
        PacketSource::Interface(_) | PacketSource::Savefile(_) => {}
    }
    if let Packets::Stream { .. } | Packets::Stopped = &packets {
        read.tap = tap.stats().clone();
        read.apps = tap.app_traffic();
        read.pcapdroid = tap.pcapdroid_stats().clone();
        summary.stream = Some(read);
    }
    if let Some(mut r) = ring {
        let closed = r.close();
        r.take_events().into_iter().for_each(&mut *ring_events);
        summary.ring_files = r.files().map(|p| p.to_path_buf()).collect();
        summary.ring_packets = r.packets();
        summary.ring_blocks_not_kept = r.blocks_not_kept();
        summary.ring_blocks_not_copied = not_copied;
        if let (None, Err(e)) = (&failure, closed) {
            failure = Some(ring_error(e));
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(summary),
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Reads all of `r` a few bytes at a time, as a pipe hands them over.
    fn read_in_small_pieces(mut r: impl Read) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 3];
        loop {
            match r.read(&mut buf).unwrap() {
                0 => return out,
                n => out.extend_from_slice(&buf[..n]),
            }
        }
    }

    #[test]
    fn a_read_stream_is_inflated_only_when_it_starts_like_gzip() {
        let pcap = b"\xd4\xc3\xb2\xa1 and the rest of a capture".to_vec();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&pcap).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(read_in_small_pieces(GzipOrPlain::new(&pcap[..])), pcap);
        assert_eq!(read_in_small_pieces(GzipOrPlain::new(&gz[..])), pcap);
        // Two gzip members, as `gzip` appends them: one stream.
        let twice = [gz.clone(), gz].concat();
        assert_eq!(
            read_in_small_pieces(GzipOrPlain::new(&twice[..])),
            [pcap.clone(), pcap].concat()
        );
        // Shorter than the magic, or nothing: passed on as they are.
        assert_eq!(read_in_small_pieces(GzipOrPlain::new(&[0x1f][..])), [0x1f]);
        assert!(read_in_small_pieces(GzipOrPlain::new(&[][..])).is_empty());
        // A damaged gzip stream is an error, not a panic.
        let mut broken = GzipOrPlain::new(&[0x1f, 0x8b, 0x08, 0, 0xff, 0xff][..]);
        let mut sink = Vec::new();
        assert!(broken.read_to_end(&mut sink).is_err());
    }

    #[test]
    fn the_quiet_clock_runs_from_the_last_packet_less_the_margin() {
        let mut clock = QuietClock::default();
        assert_eq!(clock.now(), None, "no packet yet");
        clock.packet(Timestamp::from_micros(5_000_000), Instant::now());
        assert_eq!(clock.now(), None, "not quiet for the margin yet");
        let three_ago = Instant::now().checked_sub(Duration::from_secs(3)).unwrap();
        clock.last = Some((Timestamp::from_micros(5_000_000), three_ago));
        let now = clock.now().unwrap().micros();
        assert!((7_000_000..7_100_000).contains(&now), "{now}");
    }

    fn line(n: u8) -> String {
        format!(
            "CLIENT_RANDOM {} {}\n",
            format!("{n:02x}").repeat(32),
            "ab".repeat(48)
        )
    }

    #[test]
    fn delayed_packets_leave_after_the_delay_in_order() {
        let frame = |number: u64, data: &'static [u8]| Frame {
            number,
            ts: Timestamp::from_micros(number as i64),
            link: LinkType::from_number(1),
            interface: 0,
            data,
            original_len: data.len() as u32,
            comment: None,
        };
        let mut q = DelayQueue::default();
        let t0 = Instant::now();
        q.push(t0, &frame(1, &[0u8; 20]));
        q.push(t0 + Duration::from_millis(300), &frame(2, &[0; 30]));
        assert_eq!((q.len(), q.bytes), (2, 50));
        assert!(
            q.pop_due(t0 + Duration::from_millis(100)).is_none(),
            "nothing waited long enough"
        );
        assert!(q.pop_over_budget().is_none());
        let first = q.pop_due(t0 + KEYLOG_DELAY).unwrap();
        assert_eq!(
            (first.frame().number, first.frame().data),
            (1, &[0u8; 20][..])
        );
        assert!(q.pop_due(t0 + KEYLOG_DELAY).is_none());
        assert_eq!(q.bytes, 30);
        assert_eq!(q.pop().unwrap().frame().number, 2);
        assert_eq!((q.len(), q.bytes), (0, 0));
        assert!(q.pop_due(t0 + KEYLOG_DELAY * 10).is_none());
    }

    #[test]
    fn delayed_packets_over_the_budget_leave_at_once() {
        let big = vec![7u8; MAX_DELAYED_BYTES / 2 + 1];
        let frame = |number: u64| Frame {
            number,
            ts: Timestamp::from_micros(0),
            link: LinkType::from_number(1),
            interface: 0,
            data: &big,
            original_len: big.len() as u32,
            comment: Some(b"c"),
        };
        let mut q = DelayQueue::default();
        let now = Instant::now();
        q.push(now, &frame(1));
        assert!(q.pop_over_budget().is_none());
        q.push(now, &frame(2));
        let oldest = q.pop_over_budget().unwrap();
        assert_eq!(
            (oldest.frame().number, oldest.frame().comment),
            (1, Some(&b"c"[..]))
        );
        assert!(q.pop_over_budget().is_none());
    }

    #[test]
    fn a_followed_key_log_gives_complete_lines_as_they_are_appended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.log");
        let mut file = std::fs::File::create(&path).unwrap();
        let mut f = Followed {
            path: path.clone(),
            offset: 0,
        };
        assert_eq!(f.poll(), None);
        file.write_all(line(1).as_bytes()).unwrap();
        assert_eq!(f.poll(), Some(line(1).into_bytes()));
        assert_eq!(f.poll(), None, "given once");
        // Half a line waits for its end.
        let second = line(2);
        let (a, b) = second.split_at(30);
        file.write_all(a.as_bytes()).unwrap();
        assert_eq!(f.poll(), None);
        file.write_all(b.as_bytes()).unwrap();
        assert_eq!(f.poll(), Some(second.into_bytes()));
        // Replaced by a shorter file: read from its start.
        std::fs::write(&path, line(3)).unwrap();
        assert_eq!(f.poll(), Some(line(3).into_bytes()));
        // Gone for a moment: nothing happens.
        std::fs::remove_file(&path).unwrap();
        assert_eq!(f.poll(), None);
        assert_eq!(f.offset, line(3).len() as u64);
    }

    /// Lines followed reach the tap's key log and the ring, as a secrets block the
    /// packets held back come after, in the file written and in a file begun before
    /// they are all written; not in later ones.
    #[test]
    fn followed_lines_go_to_the_tap_and_before_the_waiting_packets_in_the_ring() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.log");
        std::fs::write(&path, line(1)).unwrap();
        let mut tap = Tap::new(
            DeviceResolver::default(),
            None,
            None,
            SourceKind::Pcap,
            TapLimits::default(),
        );
        // Room for the head, the secrets block (196 bytes) and two packets (184 each).
        let limits = RingLimits {
            max_file_bytes: 700,
            max_files: 10,
        };
        let mut ring = EvidenceRing::create(
            &dir.path().join("ring"),
            Timestamp::from_micros(0),
            0,
            limits,
        )
        .unwrap();
        let mut followed = [Followed { path, offset: 0 }];
        let files = RefCell::new(FrameFiles::default());
        let packet = |ring: &mut EvidenceRing, tap: &mut Tap, n: u8| {
            let data = [n; 150];
            let frame = Frame {
                number: u64::from(n),
                ts: Timestamp::from_micros(i64::from(n)),
                link: LinkType::from_number(101),
                interface: 0,
                data: &data,
                original_len: 150,
                comment: None,
            };
            let mut outlet = Outlet {
                frame_files: &files,
                ring_events: &mut |_| {},
                consumer: &mut |_| {},
            };
            outlet.deliver(&frame, Some(ring), tap).unwrap();
        };
        packet(&mut ring, &mut tap, 1);
        // Two packets wait for the line: the second lands in a new file.
        follow(&mut followed, &mut tap, Some(&mut ring), 2).unwrap();
        assert_eq!(tap.keylog().len(), 1);
        for n in 2..=5 {
            packet(&mut ring, &mut tap, n);
        }
        ring.close().unwrap();
        let paths: Vec<PathBuf> = ring.files().map(|p| p.to_path_buf()).collect();
        assert_eq!(paths.len(), 3, "{paths:?}");
        let read = |path: &PathBuf| {
            let mut reader = CaptureReader::new(std::fs::File::open(path).unwrap()).unwrap();
            let mut seen = Vec::new();
            while let Some(event) = reader.next_event().unwrap() {
                seen.push(match event {
                    CaptureEvent::Frame(f) => format!("packet {}", f.data[0]),
                    CaptureEvent::Secrets { data, .. } => {
                        assert_eq!(data, line(1).as_bytes());
                        "secrets".to_string()
                    }
                    CaptureEvent::Custom { .. } => "custom".to_string(),
                });
            }
            seen.join(", ")
        };
        assert_eq!(read(&paths[0]), "packet 1, secrets, packet 2");
        assert_eq!(read(&paths[1]), "secrets, packet 3, packet 4");
        assert_eq!(read(&paths[2]), "packet 5");
        assert_eq!(ring.blocks_not_kept(), 0);
    }
}
