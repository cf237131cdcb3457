//! pcap and pcapng files → exchanges: reads the file frame by frame (streaming, the
//! file is never held in memory) and runs each frame through a [`Tap`].
//!
//! A file cut short (a capture that was still being written, a copy that stopped)
//! gives every exchange before the cut and a warning with the byte offset; a damaged
//! block in the middle is an error with its offset, after the exchanges of everything
//! before it have been handed out (DESIGN: nothing already found is lost).

use std::io::Read;
use std::sync::Arc;

use crate::case::DeviceResolver;
use crate::exchange::{Exchange, SourceKind};
use crate::net::capture::{CaptureError, CaptureEvent, CaptureLimits, CaptureReader};
use crate::net::flow::{FlowStats, SECRETS_TYPE_TLS_KEYLOG};
use crate::net::keylog::{KeyLog, KeyLogStats};
use crate::net::packet::PacketStats;
use crate::net::pcapdroid::{AppStats, AppTraffic, AppUnderTest};
use crate::net::provisional_id::InputIds;
use crate::net::tap::{Tap, TapLimits, TapStats};
use crate::net::tunnel::UdpTunnelPorts;
use crate::net::wpa::WlanKeys;

use super::direct_read::DIRECT_READ_LEN;
use super::SourceError;

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
        self.secrets_blocks += 1;
        if secrets_type == SECRETS_TYPE_TLS_KEYLOG {
            let stats = tap.add_keylog(data);
            self.secrets_keylog.lines += stats.lines;
            self.secrets_keylog.used += stats.used;
            self.secrets_keylog.skipped += stats.skipped;
        }
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
    // Room for a whole direct read after the unread rest of a frame, so that a
    // `DirectReader` under `reader` reads into the capture buffer without a copy.
    let limits = CaptureLimits {
        initial_buffer: DIRECT_READ_LEN + (256 << 10),
        ..CaptureLimits::default()
    };
    let mut capture =
        CaptureReader::with_limits(reader, limits).map_err(|e| capture_error(&opts.label, e))?;
    let mut tap = Tap::new(
        opts.devices.clone(),
        opts.fallback_device.clone(),
        opts.file_sha256.clone(),
        SourceKind::Pcap,
        opts.limits.clone(),
    );
    tap.set_udp_tunnel_ports(opts.tunnel_ports.clone());
    tap.set_wlan_keys(opts.wlan_keys.clone());
    tap.set_app_under_test(opts.app.clone());
    if let Some(ids) = provisional {
        tap.use_provisional_ids(ids);
    }
    if let Some(ahead) = &opts.secrets_ahead {
        tap.set_keylog(KeyLog::clone(ahead));
    }
    for text in &opts.keylogs {
        tap.add_keylog(text);
    }
    let mut summary = CaptureSummary {
        format: capture.format(),
        ..CaptureSummary::default()
    };
    let failure = loop {
        match capture.next_event() {
            Ok(None) => break None,
            Ok(Some(CaptureEvent::Frame(frame))) => {
                tap.frame(&frame, consumer);
                if frame.number % PROGRESS_EVERY_FRAMES == 0 {
                    progress(CaptureProgress {
                        frames: tap.stats().frames,
                        bytes: tap.stats().bytes,
                        open_flows: tap.open_flows(),
                        exchanges: tap.stats().exchanges,
                    });
                }
            }
            Ok(Some(CaptureEvent::Secrets { secrets_type, data })) => {
                summary.secrets_block(&mut tap, secrets_type, data);
            }
            Ok(Some(CaptureEvent::Custom {
                pen,
                data,
                big_endian,
                ..
            })) => {
                let read = tap.custom_block(pen, data, big_endian);
                if let (Err(e), None) = (read, &summary.pcapdroid_block_error) {
                    summary.pcapdroid_block_error = Some(format!(
                        "{e} (block ending at byte offset {})",
                        capture.offset()
                    ));
                }
            }
            Err(CaptureError::Truncated { offset, .. }) => {
                summary.truncated_at = Some(offset);
                break None;
            }
            Err(e) => break Some(e),
        }
    };
    // Whatever stopped the reading, the open connections still become exchanges.
    tap.finish(consumer);
    summary.tap = tap.stats().clone();
    summary.flows = tap.flow_stats().clone();
    summary.packets = tap.packet_stats().clone();
    summary.apps = tap.app_traffic();
    summary.pcapdroid = tap.pcapdroid_stats().clone();
    Ok((summary, failure.map(|e| capture_error(&opts.label, e))))
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
