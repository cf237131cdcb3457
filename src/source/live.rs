//! Live capture from a network interface with libpcap (feature `live`): packets go
//! through the same [`Tap`] as capture files, and unchanged into the evidence ring.
//! Or packets read as another program writes them ([`PacketSource::Savefile`]: a
//! gateway's `tcpdump -w -` over ssh, piped in), with libpcap's savefile reader.
//!
//! Reads from an interface are non-blocking and the loop looks at the stop flag
//! between packets (every few milliseconds when idle), so SIGINT
//! and SIGTERM end it within a fraction of a second; then every open flow is flushed
//! into exchanges and the ring file is closed, and libpcap's counters (packets the
//! kernel dropped, the interface dropped) are reported. A savefile is read blocking:
//! a stop takes effect at the next packet, or when the writer closes the pipe (as
//! Ctrl-C in a shell pipeline does).
//!
//! `--keylog` files are followed while capturing: an app instrumented with Frida or a
//! browser with `SSLKEYLOGFILE` writes its secrets as it connects, so every
//! [`KEYLOG_POLL`] the lines appended since (complete lines only) are added to the tap.
//! A file that shrinks (truncated, replaced) is read again from its start. Those
//! secrets are written just *after* the handshake messages that derive them went on the
//! wire, and the decryptor looks them up when it reads the hellos; so while key logs
//! are followed, packets reach the tap [`KEYLOG_DELAY`] after their capture (the key
//! logs polled just before), bounded by [`MAX_DELAYED_BYTES`] (beyond it the oldest go
//! at once). The evidence ring gets every packet at once.

use std::cell::RefCell;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::case::DeviceResolver;
use crate::exchange::{Exchange, SourceKind};
use crate::net::capture::{Frame, LinkType};
use crate::net::tap::{Tap, TapLimits, TapStats};
use crate::net::tunnel::UdpTunnelPorts;
use crate::net::wpa::{WlanKeys, WpaStats};
use crate::timestamp::Timestamp;

use super::ring::{EvidenceRing, FrameFiles, RingEvent, RingLimits};

/// How often followed key log files are looked at for new lines.
pub const KEYLOG_POLL: Duration = Duration::from_millis(200);
/// Bytes read from a followed key log at one look (the rest waits for the next).
const KEYLOG_READ_MAX: u64 = 16 << 20;
/// How long packets wait for their secrets while key logs are followed.
pub const KEYLOG_DELAY: Duration = Duration::from_millis(500);
/// Captured bytes held back at most for [`KEYLOG_DELAY`].
pub const MAX_DELAYED_BYTES: usize = 64 << 20;

/// libpcap's read timeout (buffering delay in non-immediate kernels).
pub const POLL_MILLIS: i32 = 200;
/// Pause when no packet is waiting, before the stop flag is looked at again.
const IDLE_SLEEP: Duration = Duration::from_millis(5);
/// Longest time packets wait in the evidence ring's write buffer: what a crash
/// (`kill -9`, power aside) can lose of the file being written.
pub const RING_FLUSH: Duration = Duration::from_secs(1);

/// Where the packets come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PacketSource {
    /// Captured on this network interface.
    Interface(String),
    /// Read from a pcap or pcapng stream as it is written: a pipe, standard input
    /// (`/dev/stdin`), a FIFO (or a file, read at once). One link type.
    Savefile(PathBuf),
}

impl std::fmt::Display for PacketSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PacketSource::Interface(name) => write!(f, "interface {name}"),
            PacketSource::Savefile(path) => write!(f, "{}", path.display()),
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
    /// Where the evidence ring goes; `None` writes no packets to disk.
    pub ring_dir: Option<PathBuf>,
    pub ring_limits: RingLimits,
    pub devices: DeviceResolver,
    pub fallback_device: Option<String>,
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
    /// WPA handshakes followed and frames decrypted (`--wlan-keys`).
    pub wpa: WpaStats,
}

/// Packets held back for [`KEYLOG_DELAY`], oldest first.
#[derive(Default)]
struct DelayQueue {
    /// (arrival, frame number, capture time, bytes, original length)
    packets: std::collections::VecDeque<(Instant, u64, Timestamp, Vec<u8>, u32)>,
    bytes: usize,
}

impl DelayQueue {
    fn push(&mut self, now: Instant, number: u64, ts: Timestamp, data: &[u8], len: u32) {
        self.bytes += data.len();
        self.packets
            .push_back((now, number, ts, data.to_vec(), len));
    }

    /// The oldest packet has waited long enough.
    fn due(&self, now: Instant) -> bool {
        self.packets
            .front()
            .is_some_and(|p| now.duration_since(p.0) >= KEYLOG_DELAY)
    }

    fn pop_into(
        &mut self,
        link: LinkType,
        tap: &mut Tap,
        consumer: &mut dyn FnMut(Exchange),
    ) -> bool {
        let Some((_, number, ts, data, original_len)) = self.packets.pop_front() else {
            return false;
        };
        self.bytes = self.bytes.saturating_sub(data.len());
        let frame = Frame {
            number,
            ts,
            link,
            interface: 0,
            data: &data,
            original_len,
            comment: None,
        };
        tap.frame(&frame, consumer);
        true
    }

    /// Hands the packets that waited [`KEYLOG_DELAY`] to the tap.
    fn release(
        &mut self,
        now: Instant,
        link: LinkType,
        tap: &mut Tap,
        consumer: &mut dyn FnMut(Exchange),
    ) {
        while self.due(now) && self.pop_into(link, tap, consumer) {}
    }

    /// Over [`MAX_DELAYED_BYTES`]: the oldest go at once.
    fn release_over_budget(
        &mut self,
        link: LinkType,
        tap: &mut Tap,
        consumer: &mut dyn FnMut(Exchange),
    ) {
        while self.bytes > MAX_DELAYED_BYTES && self.pop_into(link, tap, consumer) {}
    }

    fn release_all(&mut self, link: LinkType, tap: &mut Tap, consumer: &mut dyn FnMut(Exchange)) {
        while self.pop_into(link, tap, consumer) {}
    }
}

/// A key log file followed as it grows.
struct Followed {
    path: PathBuf,
    /// Bytes of it already added (up to a line end).
    offset: u64,
}

impl Followed {
    /// Adds the complete lines appended since the last look. Errors (the file gone for
    /// a moment, unreadable) are retried at the next look.
    fn poll(&mut self, tap: &mut Tap) {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return;
        };
        let Ok(len) = file.metadata().map(|m| m.len()) else {
            return;
        };
        if len < self.offset {
            self.offset = 0;
        }
        if len == self.offset || file.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut new = Vec::new();
        if file
            .take((len - self.offset).min(KEYLOG_READ_MAX))
            .read_to_end(&mut new)
            .is_err()
        {
            return;
        }
        match new.iter().rposition(|&b| b == b'\n') {
            Some(end) => {
                let lines = &new[..=end];
                tap.add_keylog(lines);
                self.offset += lines.len() as u64;
            }
            // No line end in a whole read: no key log line is that long; skip it.
            None if new.len() as u64 == KEYLOG_READ_MAX => self.offset += KEYLOG_READ_MAX,
            None => {}
        }
    }
}

/// Why a live capture could not run.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// libpcap could not open or read the source (named as [`PacketSource`] shows).
    #[error("{from}: {message}")]
    Pcap { from: String, message: String },
    /// (The I/O error is in the message only, so that `{:#}` says it once.)
    #[error("evidence ring in {dir}: {error}")]
    Ring { dir: String, error: std::io::Error },
}

/// Captures until `stop` is set (or the duration passes), handing out exchanges as
/// they complete and the evidence ring's files as they are closed or removed (the
/// last one closed at the end). `ready` is called once the interface is open and
/// filtering.
pub fn capture(
    opts: &LiveOptions,
    stop: &AtomicBool,
    ready: &mut dyn FnMut(),
    consumer: &mut dyn FnMut(Exchange),
    ring_events: &mut dyn FnMut(RingEvent),
) -> Result<LiveSummary, LiveError> {
    let pcap_err = |e: pcap::Error| LiveError::Pcap {
        from: opts.source.to_string(),
        message: e.to_string(),
    };
    let mut cap: pcap::Capture<dyn pcap::Activated> = match &opts.source {
        PacketSource::Interface(name) => pcap::Capture::from_device(name.as_str())
            .map_err(pcap_err)?
            .snaplen(opts.snaplen)
            .promisc(opts.promiscuous)
            .immediate_mode(true)
            .timeout(POLL_MILLIS)
            .open()
            .map_err(pcap_err)?
            // With immediate mode, Linux libpcap may block without ever honouring the
            // read timeout; non-blocking reads plus a short sleep when idle keep the
            // stop flag and the duration checked.
            .setnonblock()
            .map_err(pcap_err)?
            .into(),
        PacketSource::Savefile(path) => pcap::Capture::from_file(path).map_err(pcap_err)?.into(),
    };
    if let Some(filter) = &opts.bpf {
        cap.filter(filter, true).map_err(pcap_err)?;
    }
    let dlt = cap.get_datalink().0;
    let link = LinkType::from_number(u32::try_from(dlt).unwrap_or(u32::MAX));
    let started = Timestamp::now();
    let mut ring = match &opts.ring_dir {
        Some(dir) => Some(
            EvidenceRing::create(
                dir,
                started,
                u16::try_from(dlt).unwrap_or(0),
                u32::try_from(opts.snaplen).unwrap_or(65535),
                opts.ring_limits,
            )
            .map_err(|error| LiveError::Ring {
                dir: dir.display().to_string(),
                error,
            })?,
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
    let mut next_poll = Instant::now() + KEYLOG_POLL;
    let mut delayed = DelayQueue::default();
    ready();
    let clock = Instant::now();
    let mut number = 0u64;
    let mut ring_error = None;
    let mut next_ring_flush = Instant::now() + RING_FLUSH;
    while !stop.load(Ordering::Relaxed) {
        if opts.duration.is_some_and(|d| clock.elapsed() >= d) {
            break;
        }
        if let Some(r) = &mut ring {
            let now = Instant::now();
            if now >= next_ring_flush {
                next_ring_flush = now + RING_FLUSH;
                if let Err(e) = r.flush() {
                    ring_error = Some(e);
                    break;
                }
            }
        }
        if !followed.is_empty() {
            let now = Instant::now();
            if now >= next_poll || delayed.due(now) {
                // Polled right before any release, so held packets meet fresh secrets.
                next_poll = now + KEYLOG_POLL;
                for f in &mut followed {
                    f.poll(&mut tap);
                }
            }
            delayed.release(now, link, &mut tap, consumer);
        }
        match cap.next_packet() {
            Ok(packet) => {
                number += 1;
                let (secs, micros) = (packet.header.ts.tv_sec, packet.header.ts.tv_usec);
                // `time_t`/`suseconds_t` are i64 on the 64-bit targets we build for; the
                // `From` keeps this compiling (not truncating) where they are narrower.
                #[allow(clippy::useless_conversion)]
                let ts = Timestamp::from_micros(
                    i64::from(secs)
                        .saturating_mul(1_000_000)
                        .saturating_add(i64::from(micros)),
                );
                if let Some(r) = &mut ring {
                    let written = r.write(ts, packet.data, packet.header.len);
                    frame_files.borrow_mut().note(r);
                    r.take_events().into_iter().for_each(&mut *ring_events);
                    if let Err(e) = written {
                        // Evidence that cannot be written stops the tap: findings
                        // without their packets would not hold up.
                        ring_error = Some(e);
                        break;
                    }
                }
                if !followed.is_empty() {
                    delayed.push(Instant::now(), number, ts, packet.data, packet.header.len);
                    delayed.release_over_budget(link, &mut tap, consumer);
                    continue;
                }
                let frame = Frame {
                    number,
                    ts,
                    link,
                    interface: 0,
                    data: packet.data,
                    original_len: packet.header.len,
                    comment: None,
                };
                tap.frame(&frame, consumer);
            }
            Err(pcap::Error::TimeoutExpired) => std::thread::sleep(IDLE_SLEEP),
            // The savefile's writer closed it.
            Err(pcap::Error::NoMorePackets) => break,
            Err(e) => {
                delayed.release_all(link, &mut tap, consumer);
                tap.finish(consumer);
                // The packets written so far are evidence all the same.
                if let Some(r) = &mut ring {
                    let _ = r.close();
                    r.take_events().into_iter().for_each(&mut *ring_events);
                }
                return Err(pcap_err(e));
            }
        }
    }
    for f in &mut followed {
        f.poll(&mut tap);
    }
    delayed.release_all(link, &mut tap, consumer);
    tap.finish(consumer);
    let mut summary = LiveSummary {
        tap: tap.stats().clone(),
        wpa: tap.packet_stats().wpa,
        ..LiveSummary::default()
    };
    // A savefile has no such counters (libpcap says so with an error).
    if let Ok(stats) = cap.stats() {
        summary.received = u64::from(stats.received);
        summary.kernel_dropped = u64::from(stats.dropped);
        summary.interface_dropped = u64::from(stats.if_dropped);
    }
    if let Some(mut r) = ring {
        let closed = r.close();
        r.take_events().into_iter().for_each(&mut *ring_events);
        summary.ring_files = r.files().map(|p| p.to_path_buf()).collect();
        summary.ring_packets = r.packets();
        if let Some(e) = ring_error.or(closed.err()) {
            return Err(LiveError::Ring {
                dir: opts
                    .ring_dir
                    .as_ref()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default(),
                error: e,
            });
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn line(n: u8) -> String {
        format!(
            "CLIENT_RANDOM {} {}\n",
            format!("{n:02x}").repeat(32),
            "ab".repeat(48)
        )
    }

    #[test]
    fn delayed_packets_reach_the_tap_after_the_delay_in_order() {
        let mut tap = Tap::new(
            DeviceResolver::default(),
            None,
            None,
            SourceKind::Pcap,
            TapLimits::default(),
        );
        let link = LinkType::from_number(1);
        let mut q = DelayQueue::default();
        let t0 = Instant::now();
        let mut got = Vec::new();
        q.push(t0, 1, Timestamp::from_micros(1), &[0u8; 20], 20);
        q.push(
            t0 + Duration::from_millis(300),
            2,
            Timestamp::from_micros(2),
            &[0; 30],
            30,
        );
        assert_eq!(q.bytes, 50);
        q.release(t0 + Duration::from_millis(100), link, &mut tap, &mut |x| {
            got.push(x)
        });
        assert_eq!(tap.stats().frames, 0, "nothing waited long enough");
        q.release(t0 + KEYLOG_DELAY, link, &mut tap, &mut |x| got.push(x));
        assert_eq!(tap.stats().frames, 1);
        assert_eq!(q.bytes, 30);
        q.release_all(link, &mut tap, &mut |x| got.push(x));
        assert_eq!((tap.stats().frames, tap.stats().bytes), (2, 50));
        assert_eq!(q.bytes, 0);
        assert!(!q.due(t0 + KEYLOG_DELAY * 10));
    }

    #[test]
    fn a_followed_key_log_adds_complete_lines_as_they_are_appended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.log");
        let mut file = std::fs::File::create(&path).unwrap();
        let mut tap = Tap::new(
            DeviceResolver::default(),
            None,
            None,
            SourceKind::Pcap,
            TapLimits::default(),
        );
        let mut f = Followed {
            path: path.clone(),
            offset: 0,
        };
        f.poll(&mut tap);
        assert_eq!(tap.keylog().len(), 0);
        file.write_all(line(1).as_bytes()).unwrap();
        f.poll(&mut tap);
        assert_eq!(tap.keylog().len(), 1);
        // Half a line waits for its end.
        let second = line(2);
        let (a, b) = second.split_at(30);
        file.write_all(a.as_bytes()).unwrap();
        f.poll(&mut tap);
        assert_eq!(tap.keylog().len(), 1);
        file.write_all(b.as_bytes()).unwrap();
        f.poll(&mut tap);
        assert_eq!(tap.keylog().len(), 2);
        assert_eq!(tap.keylog().stats().skipped, 0);
        // Replaced by a shorter file: read from its start.
        std::fs::write(&path, line(3)).unwrap();
        f.poll(&mut tap);
        assert_eq!(tap.keylog().len(), 3);
        // Gone for a moment: nothing happens.
        std::fs::remove_file(&path).unwrap();
        f.poll(&mut tap);
        assert_eq!(tap.keylog().len(), 3);
    }
}
