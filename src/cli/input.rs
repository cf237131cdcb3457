//! Reading input files into exchanges for the commands that take captures
//! (`analyze`, `exchanges`): type detection, hashing, the progress bar, and the
//! summary of what each file held. The readers themselves live in `source`.

use std::cell::Cell;
use std::io::{self, IsTerminal, Read};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use crate::case::{Case, DeviceResolver};
use crate::exchange::Exchange;
use crate::net::tap::TapLimits;
use crate::report::{InputInfo, TrafficSummary};
use crate::source::pcap::{self, CaptureOptions, CaptureProgress, CaptureSummary};
use crate::source::{self, HarOptions, InputKind};

/// How inputs are attributed to devices.
pub struct Attribution {
    pub devices: DeviceResolver,
    /// `--device`: HAR traffic always, capture traffic of unknown clients.
    pub device: Option<String>,
    /// Device ids of the case, for the HAR rule "one device or say which".
    pub device_ids: Vec<String>,
    /// `--keylog` files' contents: TLS secrets for the captures (see `cli::keylog`).
    pub keylogs: Vec<Arc<[u8]>>,
    /// Whether capture exchanges carry their response header fields and reason
    /// (default): `analyze` reads only the status and turns this off.
    pub keep_response_headers: bool,
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
            keylogs: Vec::new(),
            keep_response_headers: true,
        })
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
pub struct InputOutcome {
    /// `None` when the file could not even be opened or recognised.
    pub info: Option<InputInfo>,
    pub traffic: Option<TrafficSummary>,
    /// Why the input was not read (to the end).
    pub error: Option<String>,
    pub warnings: Vec<String>,
    /// What else the reader wants the user to know (the key log a pcapng carried).
    pub notes: Vec<String>,
}

/// Reads `path` and hands every exchange to `consumer`. `status` adds a word to the
/// progress bar (e.g. findings so far).
pub fn read_input(
    path: &Path,
    attribution: &Attribution,
    status: &dyn Fn() -> String,
    consumer: &mut dyn FnMut(Exchange),
) -> InputOutcome {
    read_input_with_hash(path, None, attribution, status, consumer)
}

/// [`read_input`] of a file whose SHA-256 the caller already has (an evidence copy
/// it just verified), so the file is not read an extra time to hash it.
pub fn read_input_with_hash(
    path: &Path,
    known_sha256: Option<&str>,
    attribution: &Attribution,
    status: &dyn Fn() -> String,
    consumer: &mut dyn FnMut(Exchange),
) -> InputOutcome {
    let label = path.display().to_string();
    let mut outcome = InputOutcome {
        info: None,
        traffic: None,
        error: None,
        warnings: Vec::new(),
        notes: Vec::new(),
    };
    let opened = source::open_input(path)
        .map_err(anyhow::Error::from)
        .and_then(|opened| {
            let sha256 = match known_sha256 {
                Some(known) => known.to_string(),
                None => source::file_sha256(path)?,
            };
            Ok((opened, sha256))
        });
    let (source::Opened { kind, gzip, file }, sha256) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            outcome.error = Some(format!("{e:#}"));
            return outcome;
        }
    };
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = progress_bar(size, &label);
    // The bar counts bytes of the file as stored (compressed or not).
    let counting = Counting {
        inner: file,
        bar: bar.clone(),
    };
    let reader: Box<dyn Read> = if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(counting))
    } else {
        Box::new(counting)
    };
    let exchanges = Cell::new(0u64);
    let mut counted = |x: Exchange| {
        exchanges.set(exchanges.get() + 1);
        consumer(x)
    };
    match kind {
        InputKind::Har => match attribution.har_device() {
            Err(e) => outcome.error = Some(format!("{label}: {e}")),
            Ok(device) => {
                let opts = HarOptions::new(label.clone(), Some(sha256.clone()));
                let read = source::read_har(reader, &opts, |mut x| {
                    x.device = device.clone();
                    counted(x);
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
        },
        InputKind::Pcap | InputKind::Pcapng => {
            let opts = CaptureOptions {
                label: label.clone(),
                file_sha256: Some(sha256.clone()),
                devices: attribution.devices.clone(),
                fallback_device: attribution.device.clone(),
                limits: {
                    let mut limits = TapLimits::default();
                    limits.flow.http.keep_response_headers = attribution.keep_response_headers;
                    limits
                },
                keylogs: attribution.keylogs.clone(),
            };
            let started = Instant::now();
            let mut on_progress = |p: CaptureProgress| {
                let secs = started.elapsed().as_secs_f64().max(0.001);
                bar.set_message(format!(
                    "{label} {:.0} pkt/s {} flows {} exchanges {}",
                    p.frames as f64 / secs,
                    p.open_flows,
                    p.exchanges,
                    status()
                ));
            };
            match pcap::read_capture(reader, &opts, &mut on_progress, &mut counted) {
                Ok((summary, error)) => {
                    if let Some(offset) = summary.truncated_at {
                        outcome.warnings.push(format!(
                            "{label}: the capture is cut short at byte {offset}; everything before it was analysed"
                        ));
                    }
                    if summary.secrets_keylog.lines > 0 {
                        outcome.notes.push(super::keylog::describe(
                            &format!(
                                "in the secrets blocks of {label} ({})",
                                summary.secrets_blocks
                            ),
                            &summary.secrets_keylog,
                        ));
                    }
                    outcome.traffic = Some(traffic_summary(&summary));
                    outcome.error = error.map(|e| e.to_string());
                }
                Err(e) => outcome.error = Some(e.to_string()),
            }
        }
        InputKind::Jsonl => {
            outcome.error = Some(format!(
                "{label}: JSON lines input is not supported yet (HAR, pcap and pcapng are)"
            ));
        }
    }
    bar.finish_and_clear();
    outcome.info = Some(InputInfo {
        path: label,
        kind: kind.name().to_string(),
        sha256,
        exchanges: exchanges.get(),
    });
    outcome
}

fn traffic_summary(s: &CaptureSummary) -> TrafficSummary {
    let mut unknown: Vec<(String, u64)> = s
        .tap
        .unknown_clients
        .iter()
        .map(|(ip, n)| (ip.to_string(), *n))
        .collect();
    // Busiest first; ties by address for a stable order.
    unknown.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    TrafficSummary {
        packets: s.tap.frames,
        bytes: s.tap.bytes,
        tcp_connections: s.flows.tcp_connections,
        udp_flows: s.flows.udp_flows,
        dns_messages: s.flows.dns_messages,
        packet_errors: s.tap.packet_errors.clone(),
        unknown_client_exchanges: unknown.iter().map(|(_, n)| n).sum::<u64>()
            + s.tap.unknown_clients_other,
        unknown_clients: unknown,
        secrets_blocks: s.secrets_blocks,
        tls_decrypted: s.flows.tls_decrypted,
        tls_not_decrypted: s.flows.tls_not_decrypted.clone(),
    }
}

/// A progress bar on a terminal, nothing when stderr is piped.
fn progress_bar(total: u64, name: &str) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg}\n{wide_bar} {bytes}/{total_bytes} {bytes_per_sec} {eta}",
    ) {
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
