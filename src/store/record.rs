//! Records of the case log and their hash chain, without any I/O.
//!
//! A record is `(seq, kind, at, body, prev_hash, hash)`. `body` is the record's
//! **canonical bytes**: the compact `serde_json` encoding of an [`Envelope`]
//! `{"kind":…,"at":…,"data":…}`, keys in the declaration order of the Rust structs
//! (serde's derive order, which never depends on a map's iteration order), no
//! whitespace, UTF-8. `data` is the kind's body: [`IngestBody`], [`ExchangeBody`],
//! the `ConsentEvent` or `Finding` JSON as the rest of consentry prints it,
//! [`AnnotationBody`], [`SealBody`], [`CheckpointBody`] or [`EvidenceFileBody`].
//! Putting `kind` and `at` inside the hashed bytes means the plain `kind`/`at`
//! columns cannot be altered unnoticed either.
//!
//! `hash = sha256(prev_hash ‖ body)`; the first record's `prev_hash` is 32 zero
//! bytes ([`GENESIS`]). [`verify_chain`] walks records in `seq` order and names the
//! first one that breaks the chain.
//!
//! A `seal` record ([`SealBody`]) carries an Ed25519 signature over the head before
//! it: the message is [`seal_message`] = `"consentry seal v1\0" ‖ seq (8 bytes,
//! big-endian) ‖ hash (32 bytes)`. The chain walk checks that the sealed head is the
//! record just before the seal and that the signature verifies with the public key
//! the seal names.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::timestamp::Timestamp;

/// `prev_hash` of the first record.
pub const GENESIS: [u8; 32] = [0; 32];

/// What a record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Ingest,
    Exchange,
    Consent,
    Finding,
    Annotation,
    Seal,
    /// Exchanges were pruned (`consentry prune`): see [`CheckpointBody`].
    Checkpoint,
    /// An evidence file consentry wrote itself (the tap's ring) was closed or
    /// removed: see [`EvidenceFileBody`].
    Evidence,
}

impl Kind {
    /// The name stored in the `kind` column (the same as in the canonical bytes).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Ingest => "ingest",
            Kind::Exchange => "exchange",
            Kind::Consent => "consent",
            Kind::Finding => "finding",
            Kind::Annotation => "annotation",
            Kind::Seal => "seal",
            Kind::Checkpoint => "checkpoint",
            Kind::Evidence => "evidence",
        }
    }
}

/// The hashed form of every record: `data` is the kind's body.
#[derive(Debug, Serialize)]
pub struct Envelope<'a, T: Serialize> {
    pub kind: Kind,
    /// When the record was appended (UTC, RFC 3339 as [`Timestamp`] prints it).
    pub at: &'a str,
    pub data: &'a T,
}

/// An envelope read back, `data` kept as the exact stored bytes.
#[derive(Debug, Deserialize)]
pub struct RawEnvelope<'a> {
    pub kind: Kind,
    pub at: String,
    #[serde(borrow)]
    pub data: &'a RawValue,
}

/// Canonical bytes of a record of `kind` appended at `at`.
pub fn canonical<T: Serialize>(kind: Kind, at: Timestamp, data: &T) -> serde_json::Result<Vec<u8>> {
    canonical_at(kind, &at.to_string(), data)
}

/// [`canonical`] with the time already formatted (`Timestamp`'s `Display`).
pub fn canonical_at<T: Serialize>(kind: Kind, at: &str, data: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(256);
    serde_json::to_writer(&mut out, &Envelope { kind, at, data })?;
    Ok(out)
}

/// [`canonical_at`] with `data`'s JSON written by `write_data` (appended to the buffer
/// it is given): the same envelope bytes, for data that writes its own JSON
/// ([`ExchangeBodyRef::write_json`]).
pub fn canonical_with(
    kind: Kind,
    at: &str,
    write_data: impl FnOnce(&mut Vec<u8>) -> serde_json::Result<()>,
) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(256);
    write_canonical(&mut out, kind, at, write_data)?;
    Ok(out)
}

/// [`canonical_with`] appended to `out` (on an error, part of it may be there).
pub fn write_canonical(
    out: &mut Vec<u8>,
    kind: Kind,
    at: &str,
    write_data: impl FnOnce(&mut Vec<u8>) -> serde_json::Result<()>,
) -> serde_json::Result<()> {
    out.extend_from_slice(b"{\"kind\":\"");
    out.extend_from_slice(kind.as_str().as_bytes());
    out.extend_from_slice(b"\",\"at\":");
    super::json_string::push(out, at);
    out.extend_from_slice(b",\"data\":");
    write_data(out)?;
    out.push(b'}');
    Ok(())
}

/// `sha256(prev_hash ‖ body)`.
pub fn chain_hash(prev_hash: &[u8; 32], body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev_hash);
    h.update(body);
    h.finalize().into()
}

/// Phase of an ingest: a file's `started` record comes before its exchanges, its
/// `complete` record after the last of them, so an interrupted ingest is visible
/// and resumable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Started,
    Complete,
}

/// Body of an `ingest` record: a capture copied into the evidence directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestBody {
    pub phase: Phase,
    /// The file name as given (last path component).
    pub name: String,
    pub size: u64,
    /// SHA-256 of the file, lowercase hex.
    pub sha256: String,
    /// Detected input type: `har`, `pcap`, `pcapng`.
    pub kind: String,
    /// Path of the copy, relative to the case directory.
    pub evidence: String,
    /// Exchanges and findings stored for the file (`complete` only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub exchanges: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub findings: Option<u64>,
    /// What a capture held (packets, TLS connections decrypted or not, …; `complete`
    /// records of captures only): the case report's statement of what could be seen.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub traffic: Option<crate::report::TrafficSummary>,
    /// What the file was analysed with besides its bytes (capture and HAR ingests;
    /// absent from key logs', case files' and older stores' records).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub options: Option<IngestOptions>,
    /// The SHA-256 of the capture file this one continues: ingested in the same run
    /// and read as one capture with it, this file starting where that one ends (a
    /// capture split into several files; `complete` records only). `export` reads
    /// them together again.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub continues: Option<String>,
}

/// `kind` of the ingest records of the files captures are analysed with (see
/// [`IngestOptions`]): the case file, a TLS key log, an 802.11 keys file.
pub const KIND_CASE: &str = "case";
pub const KIND_KEYLOG: &str = "keylog";
pub const KIND_WLAN_KEYS: &str = "wlan-keys";

impl IngestBody {
    /// Whether the file is an input whose exchanges were analysed (a capture or a
    /// HAR), not one captures were analysed with.
    pub fn is_capture(&self) -> bool {
        ![KIND_CASE, KIND_KEYLOG, KIND_WLAN_KEYS].contains(&self.kind.as_str())
    }
}

/// Checks, ingest record by ingest record in log order, that every file a capture was
/// analysed with (its `options`) is stored by an earlier ingest record of its kind,
/// so that the evidence holds all the capture's findings depend on. (Each stored file
/// is then re-hashed like any other.) Records without options (older stores) name
/// nothing.
#[derive(Debug, Default)]
pub struct SideFilesCheck {
    /// (kind, SHA-256) of each side file a `started` record stored.
    stored: std::collections::HashSet<(String, String)>,
}

/// How messages name a file stored by an ingest record of `kind`: `case file`, `key
/// log`, `802.11 keys file`, else `capture`.
pub fn side_file_words(kind: &str) -> &'static str {
    match kind {
        KIND_CASE => "case file",
        KIND_KEYLOG => "key log",
        KIND_WLAN_KEYS => "802.11 keys file",
        _ => "capture",
    }
}

/// A file a capture was analysed with that the log does not store before it.
#[derive(Debug, thiserror::Error)]
#[error(
    "ingest record {seq} ({name}): analysed with {} {}, which no ingest record before it stores",
    side_file_words(kind),
    short_sha256(sha256)
)]
pub struct SideFileMissing {
    pub seq: i64,
    /// The capture's name.
    pub name: String,
    /// The kind of ingest record that should store the file ([`KIND_CASE`], …).
    pub kind: &'static str,
    pub sha256: String,
}

impl SideFilesCheck {
    /// Takes the next ingest record, `seq`.
    pub fn add(&mut self, seq: i64, ingest: &IngestBody) -> Result<(), SideFileMissing> {
        if !ingest.is_capture() {
            if ingest.phase == Phase::Started {
                self.stored
                    .insert((ingest.kind.clone(), ingest.sha256.clone()));
            }
            return Ok(());
        }
        for (kind, sha256) in ingest.options.iter().flat_map(IngestOptions::files) {
            if !self
                .stored
                .contains(&(kind.to_string(), sha256.to_string()))
            {
                return Err(SideFileMissing {
                    seq,
                    name: ingest.name.clone(),
                    kind,
                    sha256: sha256.to_string(),
                });
            }
        }
        Ok(())
    }
}

/// What a capture's exchanges and findings depend on besides its own bytes: the case
/// file and the options of the `ingest` that analysed it. Every file named here is
/// itself stored as evidence (an ingest of kind `case`, `keylog` or `wlan-keys`), so
/// the analysis can be repeated from the evidence directory alone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestOptions {
    /// SHA-256 of the case file.
    pub case_sha256: String,
    /// `--device`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub device: Option<String>,
    /// `--all-apps`.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub all_apps: bool,
    /// `--secrets-first`.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub secrets_first: bool,
    /// SHA-256 of each `--keylog` file, sorted.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub keylogs: Vec<String>,
    /// SHA-256 of each `--wlan-keys` file, sorted.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub wlan_keys: Vec<String>,
    /// Each `--tunnel-port` setting as `KIND=PORTS` (`KIND=none`), sorted.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub tunnel_ports: Vec<String>,
}

impl IngestOptions {
    /// The options in the order a report lists them: `case file 1a2b…`, `--device D`,
    /// `--all-apps`, `--secrets-first`, `key log 3c4d…`, `802.11 keys 5e6f…`,
    /// `--tunnel-port vxlan=8472`.
    /// A file is named by the first 16 hex digits of its SHA-256, which begin the
    /// name of its copy in the evidence directory.
    pub fn describe(&self) -> Vec<String> {
        let mut out = vec![format!("case file {}", short_sha256(&self.case_sha256))];
        out.extend(self.device.iter().map(|d| format!("--device {d}")));
        if self.all_apps {
            out.push("--all-apps".into());
        }
        if self.secrets_first {
            out.push("--secrets-first".into());
        }
        out.extend(
            self.keylogs
                .iter()
                .map(|s| format!("key log {}", short_sha256(s))),
        );
        out.extend(
            self.wlan_keys
                .iter()
                .map(|s| format!("802.11 keys {}", short_sha256(s))),
        );
        out.extend(
            self.tunnel_ports
                .iter()
                .map(|t| format!("--tunnel-port {t}")),
        );
        out
    }

    /// The files named, as (the `kind` of the ingest record that stores each, its
    /// SHA-256): the case file, then key logs, then 802.11 keys files.
    pub fn files(&self) -> impl Iterator<Item = (&'static str, &str)> {
        std::iter::once((KIND_CASE, self.case_sha256.as_str()))
            .chain(self.keylogs.iter().map(|s| (KIND_KEYLOG, s.as_str())))
            .chain(self.wlan_keys.iter().map(|s| (KIND_WLAN_KEYS, s.as_str())))
    }

    /// How `now` differs from `self` (an earlier run's), one line per option, the
    /// case file's first: empty when a run with `now` gives the same exchanges and
    /// findings.
    pub fn differences(&self, now: &IngestOptions) -> Vec<String> {
        let mut out = Vec::new();
        if self.case_sha256 != now.case_sha256 {
            out.push(format!(
                "the case file: SHA-256 {} then, {} now",
                short_sha256(&self.case_sha256),
                short_sha256(&now.case_sha256)
            ));
        }
        if self.device != now.device {
            out.push(format!(
                "--device: {} then, {} now",
                self.device.as_deref().unwrap_or("none"),
                now.device.as_deref().unwrap_or("none")
            ));
        }
        let given = |b: bool| if b { "given" } else { "not given" };
        for (option, then, now) in [
            ("--all-apps", self.all_apps, now.all_apps),
            ("--secrets-first", self.secrets_first, now.secrets_first),
        ] {
            if then != now {
                out.push(format!(
                    "{option}: {} then, {} now",
                    given(then),
                    given(now)
                ));
            }
        }
        let files = |list: &[String]| match list {
            [] => "none".to_string(),
            list => list
                .iter()
                .map(|s| short_sha256(s))
                .collect::<Vec<_>>()
                .join(", "),
        };
        for (option, then, now) in [
            ("--keylog", &self.keylogs, &now.keylogs),
            ("--wlan-keys", &self.wlan_keys, &now.wlan_keys),
        ] {
            if then != now {
                out.push(format!(
                    "{option}: {} then, {} now",
                    files(then),
                    files(now)
                ));
            }
        }
        if self.tunnel_ports != now.tunnel_ports {
            let ports = |list: &[String]| match list {
                [] => "IANA's".to_string(),
                list => list.join(" "),
            };
            out.push(format!(
                "--tunnel-port: {} then, {} now",
                ports(&self.tunnel_ports),
                ports(&now.tunnel_ports)
            ));
        }
        out
    }
}

/// The first 16 hex digits of a SHA-256, as evidence file names begin.
pub fn short_sha256(sha256: &str) -> &str {
    sha256.get(..16).unwrap_or(sha256)
}

/// What happened to an evidence file of an [`EvidenceFileBody`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EvidenceEvent {
    /// Written and closed: from now on it must have exactly this size and SHA-256.
    Closed,
    /// Deleted by consentry on purpose (the ring's oldest file, to bound disk space):
    /// `verify` no longer expects it.
    Removed,
}

/// Body of an `evidence` record: a file consentry wrote into the case directory
/// itself (not a copy of an input, which is an `ingest`), such as a pcapng file of
/// the tap's evidence ring. Its exchanges were stored live, not under this record.
/// A `removed` record repeats the fields of the `closed` one it ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceFileBody {
    pub event: EvidenceEvent,
    /// Path relative to the case directory (`evidence/tap-….pcapng`).
    pub path: String,
    pub size: u64,
    /// SHA-256 of the file, lowercase hex.
    pub sha256: String,
    /// File type: `pcapng`.
    pub kind: String,
    /// Packets in it and the capture times of the first and last (none when empty).
    pub packets: u64,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
}

/// The files that `evidence` records say must exist, from the records in log order:
/// each path's `closed` record, unless a `removed` record of the same file (path and
/// SHA-256) came after it.
#[derive(Debug, Default)]
pub struct WrittenFiles {
    files: std::collections::BTreeMap<String, (i64, EvidenceFileBody)>,
}

impl WrittenFiles {
    /// Takes the body of record `seq`; a path that is not relative and inside the
    /// case directory is refused (`verify` would read whatever it named).
    pub fn add(&mut self, seq: i64, b: EvidenceFileBody) -> Result<(), String> {
        if super::bundle::safe_name(&b.path).is_none() {
            return Err(format!(
                "evidence path {:?} is not a path inside the case directory",
                b.path
            ));
        }
        match b.event {
            EvidenceEvent::Closed => {
                self.files.insert(b.path.clone(), (seq, b));
            }
            EvidenceEvent::Removed => {
                // A removal of other contents than the ones recorded ends nothing.
                if self
                    .files
                    .get(&b.path)
                    .is_some_and(|(_, c)| c.sha256 == b.sha256)
                {
                    self.files.remove(&b.path);
                }
            }
        }
        Ok(())
    }

    /// The files expected, each with the `seq` of its `closed` record, in log order.
    pub fn expected(&self) -> Vec<(i64, &EvidenceFileBody)> {
        let mut v: Vec<_> = self.files.values().map(|(s, b)| (*s, b)).collect();
        v.sort_by_key(|(s, _)| *s);
        v
    }
}

/// Body of an `exchange` record: metadata only, never bodies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangeBody {
    pub id: String,
    pub at: Timestamp,
    pub device: Option<String>,
    pub host: String,
    pub scheme: String,
    pub method: String,
    pub path: String,
    pub status: Option<u16>,
    /// `TLS 1.3 dec`, `TLS 1.2 enc`, or none.
    pub tls: Option<String>,
    pub metadata_only: bool,
    /// SHA-256 of the capture file the exchange came from.
    pub file_sha256: Option<String>,
    /// Position in that file: `entry 12`, `frames 10-14`.
    pub locator: String,
    /// Whole-body sizes and digests (proxy exchanges).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digests: Option<crate::exchange::BodyDigests>,
    /// The request head as received, with its SHA-256 (proxy exchanges).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_head: Option<crate::exchange::RawHead>,
    /// The response head as received from the server (proxy exchanges).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_head: Option<crate::exchange::RawHead>,
    /// The trailer fields after the request body, when any (proxy exchanges).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_trailer: Option<crate::exchange::RawHead>,
    /// The trailer fields after the response body, when any (proxy exchanges).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_trailer: Option<crate::exchange::RawHead>,
    /// The Android app, where the capture names it (PCAPdroid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<crate::exchange::AppRef>,
    // The connection the exchange travelled on, as the exchange's own JSON names it
    // (`client`, `server`, and its `tls` object's other fields): who sent, which
    // server received, and what that server proved itself to be. Absent in records
    // written before they were kept.
    /// The client's address (a capture's), or address and port (the proxy's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The server's address (a capture's); the proxy's: the address and port it
    /// connected to, or the name and port an upstream proxy was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decrypt_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ech: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outer_sni: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ja3: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ja4: Option<String>,
    /// Shared with the exchange's (a listing of many exchanges of one connection
    /// holds it once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_certificate: Option<std::sync::Arc<crate::exchange::ServerCertificate>>,
    /// What the source met reading the exchange, as the exchange's own JSON lists it
    /// (the proxy's `body-truncated` or `tls-rejected-by-client`, a capture parser's
    /// `http-malformed-trailer` …); not the analysis's. Absent when none, and in
    /// records written before 7 December 2026.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub anomalies: Vec<crate::exchange::Anomaly>,
}

impl ExchangeBody {
    /// The stored metadata of `x`.
    pub fn of(x: &crate::exchange::Exchange) -> Self {
        let tls = x.tls.as_ref().map(|t| {
            let version = t.version.as_deref().unwrap_or("TLS");
            format!("{version} {}", if t.decrypted { "dec" } else { "enc" })
        });
        ExchangeBody {
            id: x.id.clone(),
            at: x.at,
            device: x.device.clone(),
            host: x.host.clone(),
            scheme: x.scheme.clone(),
            method: x.method.clone(),
            path: x.path.clone(),
            status: x.response.as_ref().map(|r| r.status),
            tls,
            metadata_only: x.metadata_only,
            file_sha256: x.evidence.file_sha256.clone(),
            locator: x.evidence.locator.clone(),
            digests: x.digests.clone(),
            request_head: x.evidence.request_head.clone(),
            response_head: x.evidence.response_head.clone(),
            request_trailer: x.evidence.request_trailer.clone(),
            response_trailer: x.evidence.response_trailer.clone(),
            app: x.app.clone(),
            client: x.client.clone(),
            server: x.server.clone(),
            sni: tls_text(x, |t| &t.sni),
            decrypt_error: tls_text(x, |t| &t.decrypt_error),
            ech: tls_text(x, |t| &t.ech),
            outer_sni: tls_text(x, |t| &t.outer_sni),
            ja3: tls_text(x, |t| &t.ja3),
            ja4: tls_text(x, |t| &t.ja4),
            server_certificate: x.tls.as_ref().and_then(|t| t.server_certificate.clone()),
            anomalies: x.anomalies.clone(),
        }
    }
}

/// A text field of the exchange's TLS facts, owned.
fn tls_text(
    x: &crate::exchange::Exchange,
    field: impl Fn(&crate::exchange::TlsInfo) -> &Option<String>,
) -> Option<String> {
    x.tls.as_ref().and_then(|t| field(t).clone())
}

/// [`ExchangeBody`] borrowed from its exchange: the same fields in the same order
/// with the same serde attributes, so it serializes to the same bytes (tested) without
/// copying eight strings and two raw heads per stored exchange (the proxy's hot path).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ExchangeBodyRef<'a> {
    pub id: &'a str,
    pub at: Timestamp,
    pub device: Option<&'a str>,
    pub host: &'a str,
    pub scheme: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub status: Option<u16>,
    pub tls: Option<TlsLabel<'a>>,
    pub metadata_only: bool,
    pub file_sha256: Option<&'a str>,
    pub locator: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digests: Option<&'a crate::exchange::BodyDigests>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_head: Option<&'a crate::exchange::RawHead>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_head: Option<&'a crate::exchange::RawHead>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_trailer: Option<&'a crate::exchange::RawHead>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_trailer: Option<&'a crate::exchange::RawHead>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<&'a crate::exchange::AppRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decrypt_error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ech: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outer_sni: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja3: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja4: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_certificate: Option<&'a crate::exchange::ServerCertificate>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub anomalies: &'a [crate::exchange::Anomaly],
}

impl<'a> ExchangeBodyRef<'a> {
    /// The stored metadata of `x`, borrowed.
    pub fn of(x: &'a crate::exchange::Exchange) -> Self {
        let tls = x.tls.as_ref();
        ExchangeBodyRef {
            id: &x.id,
            at: x.at,
            device: x.device.as_deref(),
            host: &x.host,
            scheme: &x.scheme,
            method: &x.method,
            path: &x.path,
            status: x.response.as_ref().map(|r| r.status),
            tls: x.tls.as_ref().map(|t| TlsLabel {
                version: t.version.as_deref().unwrap_or("TLS"),
                decrypted: t.decrypted,
            }),
            metadata_only: x.metadata_only,
            file_sha256: x.evidence.file_sha256.as_deref(),
            locator: &x.evidence.locator,
            digests: x.digests.as_ref(),
            request_head: x.evidence.request_head.as_ref(),
            response_head: x.evidence.response_head.as_ref(),
            request_trailer: x.evidence.request_trailer.as_ref(),
            response_trailer: x.evidence.response_trailer.as_ref(),
            app: x.app.as_ref(),
            client: x.client.as_deref(),
            server: x.server.as_deref(),
            sni: tls.and_then(|t| t.sni.as_deref()),
            decrypt_error: tls.and_then(|t| t.decrypt_error.as_deref()),
            ech: tls.and_then(|t| t.ech.as_deref()),
            outer_sni: tls.and_then(|t| t.outer_sni.as_deref()),
            ja3: tls.and_then(|t| t.ja3.as_deref()),
            ja4: tls.and_then(|t| t.ja4.as_deref()),
            server_certificate: tls.and_then(|t| t.server_certificate.as_deref()),
            anomalies: &x.anomalies,
        }
    }
}

impl ExchangeBodyRef<'_> {
    /// Appends the JSON serde writes for this body (the same bytes, property-tested),
    /// its strings escaped by [`super::json_string`]: the raw heads are most of a
    /// proxy exchange record, and serde_json escapes byte by byte.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        use super::json_string::push as string;
        out.extend_from_slice(b"{\"id\":");
        string(out, self.id);
        out.extend_from_slice(b",\"at\":");
        super::json_string::push_timestamp(out, self.at);
        out.extend_from_slice(b",\"device\":");
        push_option(out, self.device, string);
        out.extend_from_slice(b",\"host\":");
        string(out, self.host);
        out.extend_from_slice(b",\"scheme\":");
        string(out, self.scheme);
        out.extend_from_slice(b",\"method\":");
        string(out, self.method);
        out.extend_from_slice(b",\"path\":");
        string(out, self.path);
        out.extend_from_slice(b",\"status\":");
        push_option(out, self.status, |out, n| push_u64(out, n.into()));
        out.extend_from_slice(b",\"tls\":");
        push_option(out, self.tls, |out, t| {
            out.push(b'"');
            super::json_string::push_contents(out, t.version.as_bytes());
            out.extend_from_slice(if t.decrypted { b" dec\"" } else { b" enc\"" });
        });
        out.extend_from_slice(b",\"metadata_only\":");
        out.extend_from_slice(if self.metadata_only {
            b"true"
        } else {
            b"false"
        });
        out.extend_from_slice(b",\"file_sha256\":");
        push_option(out, self.file_sha256, string);
        out.extend_from_slice(b",\"locator\":");
        string(out, self.locator);
        if let Some(d) = self.digests {
            out.extend_from_slice(b",\"digests\":{\"request_bytes\":");
            push_u64(out, d.request_bytes);
            out.extend_from_slice(b",\"request_sha256\":");
            string(out, &d.request_sha256);
            if let Some(n) = d.response_bytes {
                out.extend_from_slice(b",\"response_bytes\":");
                push_u64(out, n);
            }
            if let Some(h) = &d.response_sha256 {
                out.extend_from_slice(b",\"response_sha256\":");
                string(out, h);
            }
            out.push(b'}');
        }
        for (key, head) in [
            (&b",\"request_head\":"[..], self.request_head),
            (&b",\"response_head\":"[..], self.response_head),
            (&b",\"request_trailer\":"[..], self.request_trailer),
            (&b",\"response_trailer\":"[..], self.response_trailer),
        ] {
            if let Some(h) = head {
                out.extend_from_slice(key);
                push_raw_head(out, h);
            }
        }
        if let Some(app) = self.app {
            out.extend_from_slice(b",\"app\":");
            app.write_json(out);
        }
        for (key, text) in [
            (&b",\"client\":"[..], self.client),
            (b",\"server\":", self.server),
            (b",\"sni\":", self.sni),
            (b",\"decrypt_error\":", self.decrypt_error),
            (b",\"ech\":", self.ech),
            (b",\"outer_sni\":", self.outer_sni),
            (b",\"ja3\":", self.ja3),
            (b",\"ja4\":", self.ja4),
        ] {
            if let Some(t) = text {
                out.extend_from_slice(key);
                string(out, t);
            }
        }
        if let Some(c) = self.server_certificate {
            out.extend_from_slice(b",\"server_certificate\":");
            push_certificate(out, c);
        }
        if !self.anomalies.is_empty() {
            out.extend_from_slice(b",\"anomalies\":");
            push_anomalies(out, self.anomalies);
        }
        out.push(b'}');
    }
}

/// A list of [`crate::exchange::Anomaly`] as serde writes it.
fn push_anomalies(out: &mut Vec<u8>, anomalies: &[crate::exchange::Anomaly]) {
    use super::json_string::push as string;
    out.push(b'[');
    for (i, a) in anomalies.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"kind\":");
        string(out, &a.kind);
        out.extend_from_slice(b",\"detail\":");
        string(out, &a.detail);
        out.push(b'}');
    }
    out.push(b']');
}

/// A [`crate::exchange::ServerCertificate`] as serde writes it.
fn push_certificate(out: &mut Vec<u8>, c: &crate::exchange::ServerCertificate) {
    use super::json_string::{push as string, push_strings, push_timestamp};
    out.extend_from_slice(b"{\"subject\":");
    string(out, &c.subject);
    out.extend_from_slice(b",\"issuer\":");
    string(out, &c.issuer);
    if !c.names.is_empty() {
        out.extend_from_slice(b",\"names\":");
        push_strings(out, &c.names);
    }
    for (key, at) in [
        (&b",\"not_before\":"[..], c.not_before),
        (b",\"not_after\":", c.not_after),
    ] {
        if let Some(at) = at {
            out.extend_from_slice(key);
            push_timestamp(out, at);
        }
    }
    out.extend_from_slice(b",\"serial\":");
    string(out, &c.serial);
    out.extend_from_slice(b",\"sha256\":");
    string(out, &c.sha256);
    out.extend_from_slice(b",\"chain\":");
    push_u64(out, c.chain.into());
    out.push(b'}');
}

/// A [`crate::exchange::RawHead`] as serde writes it.
fn push_raw_head(out: &mut Vec<u8>, h: &crate::exchange::RawHead) {
    use super::json_string::push as string;
    // `{` then each present field with its separator; `sha256` and `bytes` always are.
    out.push(b'{');
    if let Some(t) = &h.text {
        out.extend_from_slice(b"\"text\":");
        string(out, t);
        out.push(b',');
    }
    if let Some(b) = &h.base64 {
        out.extend_from_slice(b"\"base64\":");
        string(out, b);
        out.push(b',');
    }
    out.extend_from_slice(b"\"sha256\":");
    string(out, &h.sha256);
    out.extend_from_slice(b",\"bytes\":");
    push_u64(out, h.bytes);
    if h.truncated {
        out.extend_from_slice(b",\"truncated\":true");
    }
    out.push(b'}');
}

/// `null`, or the value as `write` writes it.
fn push_option<T>(out: &mut Vec<u8>, v: Option<T>, write: impl FnOnce(&mut Vec<u8>, T)) {
    match v {
        Some(v) => write(out, v),
        None => out.extend_from_slice(b"null"),
    }
}

/// `n` in decimal.
fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    // u64::MAX has 20 digits; filled from the end.
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    for slot in digits.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        start -= 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(start..).unwrap_or_default());
}

/// `ExchangeBody::tls` unformatted: `{version} dec|enc`, serialized as that string.
#[derive(Debug, Clone, Copy)]
pub struct TlsLabel<'a> {
    pub version: &'a str,
    pub decrypted: bool,
}

impl std::fmt::Display for TlsLabel<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = if self.decrypted { "dec" } else { "enc" };
        write!(f, "{} {state}", self.version)
    }
}

impl Serialize for TlsLabel<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Body of an `annotation` record: a note by the investigator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnotationBody {
    pub text: String,
}

/// Body of a `seal` record: a signature over the chain head before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealBody {
    /// `seq` of the sealed record (the one just before the seal).
    pub head_seq: i64,
    /// Its hash, lowercase hex.
    pub head_hash: String,
    /// The Ed25519 public key, lowercase hex (32 bytes).
    pub public_key: String,
    /// The Ed25519 signature of [`seal_message`], lowercase hex (64 bytes).
    pub signature: String,
}

/// Body of a `checkpoint` record: exchange records older than `before` and without
/// findings had their bodies removed. Their rows stay in the log with `seq`,
/// `prev_hash` and `hash`, so the chain still links; `digest` fixes which records
/// were pruned and their hashes, which can no longer be recomputed from a body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointBody {
    pub before: Timestamp,
    /// Records pruned by this checkpoint.
    pub pruned: u64,
    /// Lowest and highest `seq` pruned (0 when none).
    pub first_seq: i64,
    pub last_seq: i64,
    /// [`PrunedDigest`] of the pruned records, lowercase hex.
    pub digest: String,
}

/// `sha256` over `seq (8 bytes, big-endian) ‖ hash (32 bytes)` of each pruned record,
/// in `seq` order.
#[derive(Debug, Clone, Default)]
pub struct PrunedDigest {
    hasher: Sha256,
    pub count: u64,
    pub first_seq: i64,
    pub last_seq: i64,
}

impl PrunedDigest {
    pub fn add(&mut self, seq: i64, hash: &[u8]) {
        self.hasher.update(seq.to_be_bytes());
        self.hasher.update(hash);
        if self.count == 0 {
            self.first_seq = seq;
        }
        self.last_seq = seq;
        self.count += 1;
    }

    /// The digest as a checkpoint records it.
    pub fn finish(self) -> String {
        hex(&self.hasher.finalize())
    }
}

/// Checks a record whose body was pruned: it must be an exchange, and it must link to
/// the head before it. Its own hash cannot be recomputed; the checkpoint that pruned it
/// vouches for it (see [`CheckpointBody`]), and the next record's `prev_hash` must be it.
pub fn check_pruned_record(head: &Head, r: &Record) -> Result<Head, ChainError> {
    let fail = |reason: String| ChainError { seq: r.seq, reason };
    if r.seq != head.seq + 1 {
        return Err(fail(format!(
            "sequence number {} follows {} (records missing or reordered)",
            r.seq, head.seq
        )));
    }
    if r.prev_hash.as_slice() != head.hash {
        return Err(fail(
            "prev_hash is not the hash of the record before it".into(),
        ));
    }
    if !r.body.is_empty() {
        return Err(fail("marked pruned but still has a body".into()));
    }
    if r.kind != Kind::Exchange.as_str() {
        return Err(fail(format!(
            "a pruned record must be an exchange, this one says {:?}",
            r.kind
        )));
    }
    let hash: [u8; 32] = r
        .hash
        .as_slice()
        .try_into()
        .map_err(|_| fail(format!("hash is {} bytes, not 32", r.hash.len())))?;
    Ok(Head {
        records: head.records + 1,
        seq: r.seq,
        hash,
        ..*head
    })
}

/// Walks a log record by record, pruned records included: each record is checked
/// against the head before it ([`check_record`], or [`check_pruned_record`] when it
/// was pruned by the checkpoint `pruned_by` names), and each checkpoint against the
/// pruned records found before it. The one place the chain rules live for the store,
/// the export and the bundle check.
#[derive(Debug, Default)]
pub struct ChainWalk {
    head: Option<Head>,
    /// Pruned records seen, by the checkpoint that pruned them.
    pruned: std::collections::HashMap<i64, PrunedDigest>,
}

impl ChainWalk {
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks the next record; `pruned_by` is the checkpoint that pruned it, if any.
    pub fn check(&mut self, r: &Record, pruned_by: Option<i64>) -> Result<Head, ChainError> {
        let head = self.head.unwrap_or(Head::EMPTY);
        let next = match pruned_by {
            Some(checkpoint) => {
                let next = check_pruned_record(&head, r)?;
                self.pruned
                    .entry(checkpoint)
                    .or_default()
                    .add(r.seq, &r.hash);
                next
            }
            None => {
                let next = check_record(&head, r)?;
                if r.kind == Kind::Checkpoint.as_str() {
                    check_checkpoint(r, self.pruned.remove(&r.seq).unwrap_or_default())?;
                }
                next
            }
        };
        self.head = Some(next);
        Ok(next)
    }

    /// The head after the last record; fails if a record was marked pruned by a
    /// checkpoint that never came after it.
    pub fn finish(self) -> Result<Head, ChainError> {
        if let Some((checkpoint, d)) = self.pruned.into_iter().min_by_key(|(c, _)| *c) {
            return Err(ChainError {
                seq: d.first_seq,
                reason: format!(
                    "marked pruned by record {checkpoint}, which is no checkpoint after it"
                ),
            });
        }
        Ok(self.head.unwrap_or(Head::EMPTY))
    }
}

/// Checks a checkpoint record's body against the records found pruned under it.
fn check_checkpoint(r: &Record, found: PrunedDigest) -> Result<(), ChainError> {
    let fail = |reason: String| ChainError { seq: r.seq, reason };
    let env: RawEnvelope<'_> = serde_json::from_slice(&r.body).map_err(|x| fail(x.to_string()))?;
    let b: CheckpointBody =
        serde_json::from_str(env.data.get()).map_err(|x| fail(format!("checkpoint body: {x}")))?;
    let (count, first, last) = (found.count, found.first_seq, found.last_seq);
    if b.pruned != count || (count > 0 && (b.first_seq != first || b.last_seq != last)) {
        return Err(fail(format!(
            "checkpoint says {} records ({}-{}) were pruned, the log has {count} ({first}-{last})",
            b.pruned, b.first_seq, b.last_seq
        )));
    }
    if found.finish() != b.digest {
        return Err(fail(
            "the hashes of the records pruned under this checkpoint were altered".into(),
        ));
    }
    Ok(())
}

/// What a seal signs.
pub fn seal_message(seq: i64, hash: &[u8; 32]) -> Vec<u8> {
    let mut m = b"consentry seal v1\0".to_vec();
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(hash);
    m
}

/// A seal of `head` by `key`.
pub fn seal(head: &Head, key: &ed25519_dalek::SigningKey) -> SealBody {
    use ed25519_dalek::Signer;
    let sig = key.sign(&seal_message(head.seq, &head.hash));
    SealBody {
        head_seq: head.seq,
        head_hash: hex(&head.hash),
        public_key: hex(key.verifying_key().as_bytes()),
        signature: hex(&sig.to_bytes()),
    }
}

/// Checks a seal against the head it must seal; its public key.
pub fn check_seal(head: &Head, s: &SealBody) -> Result<[u8; 32], String> {
    if s.head_seq != head.seq || s.head_hash != hex(&head.hash) {
        return Err(format!(
            "seal is over record {} ({}), but the record before it is {} ({})",
            s.head_seq,
            s.head_hash,
            head.seq,
            hex(&head.hash)
        ));
    }
    let key: [u8; 32] = unhex(&s.public_key)
        .and_then(|k| k.try_into().ok())
        .ok_or("seal public key is not 32 bytes of hex")?;
    let sig: [u8; 64] = unhex(&s.signature)
        .and_then(|k| k.try_into().ok())
        .ok_or("seal signature is not 64 bytes of hex")?;
    let verifying = ed25519_dalek::VerifyingKey::from_bytes(&key)
        .map_err(|e| format!("seal public key: {e}"))?;
    verifying
        .verify_strict(
            &seal_message(head.seq, &head.hash),
            &ed25519_dalek::Signature::from_bytes(&sig),
        )
        .map_err(|_| "seal signature does not verify with its public key".to_string())?;
    Ok(key)
}

/// Bytes of lowercase or uppercase hex; `None` if not hex.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|p| u8::from_str_radix(p, 16).ok()))
        .collect()
}

/// One stored record, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub seq: i64,
    pub kind: String,
    pub at: String,
    pub body: Vec<u8>,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

/// The last record of a verified chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Records verified.
    pub records: u64,
    /// `seq` of the last record (0: empty log).
    pub seq: i64,
    pub hash: [u8; 32],
    /// Seal records verified.
    pub seals: u64,
    /// The last seal: the `seq` it sealed and its public key.
    pub last_seal: Option<(i64, [u8; 32])>,
}

impl Head {
    /// The head of an empty log.
    pub const EMPTY: Head = Head {
        records: 0,
        seq: 0,
        hash: GENESIS,
        seals: 0,
        last_seal: None,
    };
}

/// The first record that breaks the chain, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record {seq}: {reason}")]
pub struct ChainError {
    pub seq: i64,
    pub reason: String,
}

/// Checks one record against the head before it and returns the new head.
pub fn check_record(head: &Head, r: &Record) -> Result<Head, ChainError> {
    let fail = |reason: String| ChainError { seq: r.seq, reason };
    if r.seq != head.seq + 1 {
        return Err(fail(format!(
            "sequence number {} follows {} (records missing or reordered)",
            r.seq, head.seq
        )));
    }
    if r.prev_hash.as_slice() != head.hash {
        return Err(fail(
            "prev_hash is not the hash of the record before it".into(),
        ));
    }
    let hash = chain_hash(&head.hash, &r.body);
    if r.hash.as_slice() != hash {
        return Err(fail(
            "hash does not match sha256(prev_hash ‖ body): the body or the hash was altered".into(),
        ));
    }
    let env: RawEnvelope<'_> = serde_json::from_slice(&r.body)
        .map_err(|e| fail(format!("body is not a record envelope: {e}")))?;
    if env.kind.as_str() != r.kind {
        return Err(fail(format!(
            "kind column {:?} differs from the hashed kind {:?}",
            r.kind,
            env.kind.as_str()
        )));
    }
    if env.at != r.at {
        return Err(fail(format!(
            "at column {:?} differs from the hashed time {:?}",
            r.at, env.at
        )));
    }
    let (mut seals, mut last_seal) = (head.seals, head.last_seal);
    if env.kind == Kind::Seal {
        let s: SealBody =
            serde_json::from_str(env.data.get()).map_err(|e| fail(format!("seal body: {e}")))?;
        let key = check_seal(head, &s).map_err(fail)?;
        seals += 1;
        last_seal = Some((s.head_seq, key));
    }
    Ok(Head {
        records: head.records + 1,
        seq: r.seq,
        hash,
        seals,
        last_seal,
    })
}

/// Verifies records given in `seq` order from the genesis; the head of the chain, or
/// the first record that breaks it.
pub fn verify_chain<I>(records: I) -> Result<Head, ChainError>
where
    I: IntoIterator<Item = Record>,
{
    let mut head = Head::EMPTY;
    for r in records {
        head = check_record(&head, &r)?;
    }
    Ok(head)
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    crate::source::hex(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> IngestOptions {
        IngestOptions {
            case_sha256: "c".repeat(64),
            device: Some("pixel7".into()),
            all_apps: true,
            secrets_first: true,
            keylogs: vec!["1".repeat(64), "2".repeat(64)],
            wlan_keys: vec!["3".repeat(64)],
            tunnel_ports: vec!["vxlan=4789,8472".into(), "teredo=none".into()],
        }
    }

    #[test]
    fn ingest_options_are_described_as_a_report_lists_them() {
        let c16 = "c".repeat(16);
        assert_eq!(
            options().describe(),
            [
                format!("case file {c16}"),
                "--device pixel7".into(),
                "--all-apps".into(),
                "--secrets-first".into(),
                format!("key log {}", "1".repeat(16)),
                format!("key log {}", "2".repeat(16)),
                format!("802.11 keys {}", "3".repeat(16)),
                "--tunnel-port vxlan=4789,8472".into(),
                "--tunnel-port teredo=none".into(),
            ]
        );
        let bare = IngestOptions {
            case_sha256: "c".repeat(64),
            ..IngestOptions::default()
        };
        assert_eq!(bare.describe(), [format!("case file {c16}")]);
    }

    #[test]
    fn ingest_options_name_each_difference_and_none_when_equal() {
        let then = options();
        assert!(then.differences(&then.clone()).is_empty());
        let now = IngestOptions {
            case_sha256: "d".repeat(64),
            device: None,
            all_apps: false,
            secrets_first: false,
            keylogs: vec!["1".repeat(64)],
            wlan_keys: Vec::new(),
            tunnel_ports: Vec::new(),
        };
        assert_eq!(
            then.differences(&now),
            [
                format!(
                    "the case file: SHA-256 {} then, {} now",
                    "c".repeat(16),
                    "d".repeat(16)
                ),
                "--device: pixel7 then, none now".into(),
                "--all-apps: given then, not given now".into(),
                "--secrets-first: given then, not given now".into(),
                format!(
                    "--keylog: {}, {} then, {} now",
                    "1".repeat(16),
                    "2".repeat(16),
                    "1".repeat(16)
                ),
                format!("--wlan-keys: {} then, none now", "3".repeat(16)),
                "--tunnel-port: vxlan=4789,8472 teredo=none then, IANA's now".into(),
            ]
        );
        // One option alone differs: one line.
        let other_device = IngestOptions {
            device: Some("redmi".into()),
            ..options()
        };
        assert_eq!(
            then.differences(&other_device),
            ["--device: pixel7 then, redmi now"]
        );
    }

    #[test]
    fn ingest_records_keep_their_options_and_older_ones_read_without() {
        let body = IngestBody {
            phase: Phase::Started,
            name: "a.pcap".into(),
            size: 1,
            sha256: "a".repeat(64),
            kind: "pcap".into(),
            evidence: "evidence/a.pcap".into(),
            exchanges: None,
            findings: None,
            traffic: None,
            options: Some(IngestOptions {
                case_sha256: "c".repeat(64),
                ..IngestOptions::default()
            }),
            continues: None,
        };
        let json = serde_json::to_string(&body).unwrap();
        // Unset options are left out, not written as null, false or [].
        assert!(
            json.ends_with(&format!(
                r#""options":{{"case_sha256":"{}"}}}}"#,
                "c".repeat(64)
            )),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<IngestBody>(&json).unwrap(), body);
        let full = IngestBody {
            options: Some(options()),
            ..body.clone()
        };
        let json = serde_json::to_string(&full).unwrap();
        assert_eq!(serde_json::from_str::<IngestBody>(&json).unwrap(), full);
        // A file that continues another names it; one that does not says nothing.
        let piece = IngestBody {
            phase: Phase::Complete,
            continues: Some("b".repeat(64)),
            ..body.clone()
        };
        let json = serde_json::to_string(&piece).unwrap();
        assert!(json.ends_with(&format!(r#","continues":"{}"}}"#, "b".repeat(64))));
        assert_eq!(serde_json::from_str::<IngestBody>(&json).unwrap(), piece);
        // A record written before options were kept.
        let older = r#"{"phase":"started","name":"a.pcap","size":1,"sha256":"aa","kind":"pcap","evidence":"evidence/a.pcap"}"#;
        let older = serde_json::from_str::<IngestBody>(older).unwrap();
        assert_eq!(older.options, None);
        assert_eq!(older.continues, None);
    }

    proptest::proptest! {
        /// The borrowed exchange body is the stored one, byte for byte.
        #[test]
        fn borrowed_exchange_body_serializes_as_the_owned_one(
            text in "\\PC{0,12}",
            flags in proptest::prelude::any::<[bool; 8]>(),
            us in proptest::prelude::any::<i64>(),
            status in proptest::prelude::any::<u16>(),
        ) {
            use crate::exchange::{BodyDigests, Exchange, RawHead, Response, SourceKind, TlsInfo};
            let mut x = Exchange::new(format!("x-{text}"), SourceKind::Proxy, Timestamp(us));
            x.device = flags[0].then(|| format!("d\"{text}"));
            x.host = format!("{text}.example");
            x.scheme = "https".into();
            x.method = text.clone();
            x.path = format!("/p?q={text}\r\n");
            x.response = flags[1].then(|| Response { status, ..Response::default() });
            x.tls = flags[2].then(|| TlsInfo {
                version: flags[3].then(|| format!("TLS {text}")),
                sni: flags[5].then(|| format!("{text}.sni")),
                decrypted: flags[4],
                decrypt_error: flags[6].then(|| format!("no key {text}")),
                ech: flags[7].then(|| text.clone()),
                outer_sni: flags[0].then(|| format!("o{text}")),
                ja3: flags[1].then(|| format!("ja3{text}")),
                ja4: flags[3].then(|| format!("ja4{text}")),
                server_certificate: flags[4].then(|| std::sync::Arc::new(certificate(&text, flags[5]))),
            });
            x.client = flags[6].then(|| format!("10.0.0.1:{status}"));
            x.server = flags[7].then(|| format!("[::1]:{text}"));
            x.metadata_only = flags[5];
            x.app = flags[3].then(|| crate::exchange::AppRef {
                uid: i32::from(status) - 1,
                package: flags[4].then(|| format!("com.{text}")),
                name: flags[0].then(|| format!("N\"{text}")),
                under_test: flags[1].then_some(flags[2]),
            });
            x.evidence.file_sha256 = flags[6].then(|| text.clone());
            x.evidence.locator = format!("record {text}");
            if flags[7] {
                x.digests = Some(BodyDigests {
                    request_bytes: 3,
                    request_sha256: text.clone(),
                    response_bytes: flags[0].then_some(9),
                    response_sha256: flags[1].then(|| text.clone()),
                });
                x.evidence.request_head = Some(RawHead::new(format!("GET /{text} HTTP/1.1\r\n\r\n").as_bytes()));
                x.evidence.response_head = Some(RawHead::new(b"HTTP/1.1 200 OK\r\nx: \xff\r\n\r\n"));
            }
            if flags[2] {
                x.anomalies.push(crate::exchange::Anomaly::new("body-truncated", format!("at {text}")));
                x.anomalies.push(crate::exchange::Anomaly::new(text.clone(), "\"q\"\n"));
            }
            let owned = serde_json::to_vec(&ExchangeBody::of(&x)).unwrap();
            let borrowed = serde_json::to_vec(&ExchangeBodyRef::of(&x)).unwrap();
            proptest::prop_assert_eq!(
                String::from_utf8_lossy(&owned),
                String::from_utf8_lossy(&borrowed)
            );
            let mut written = Vec::new();
            ExchangeBodyRef::of(&x).write_json(&mut written);
            proptest::prop_assert_eq!(
                String::from_utf8_lossy(&owned),
                String::from_utf8_lossy(&written)
            );
            // And it reads back as the owned body.
            if Timestamp(us).rfc3339().is_some() {
                let back: ExchangeBody = serde_json::from_slice(&borrowed).unwrap();
                proptest::prop_assert_eq!(back, ExchangeBody::of(&x));
            }
        }
    }

    proptest::proptest! {
        /// The body written without serde is serde's, byte for byte, whatever the
        /// strings hold (any character, controls included) and whichever optional
        /// fields are there.
        #[test]
        fn exchange_body_written_without_serde_is_serdes(
            strings in proptest::collection::vec(proptest::prelude::any::<String>(), 12),
            flags in proptest::prelude::any::<[bool; 14]>(),
            numbers in proptest::prelude::any::<[u64; 3]>(),
            us in proptest::prelude::any::<i64>(),
            status in proptest::prelude::any::<u16>(),
        ) {
            use crate::exchange::{BodyDigests, RawHead};
            let s = |i: usize| strings[i].as_str();
            let head = |i: usize, f: usize| RawHead {
                text: flags[f].then(|| strings[i].clone()),
                base64: flags[f + 1].then(|| strings[i + 1].clone()),
                sha256: strings[i + 2].clone(),
                bytes: numbers[f % 3],
                truncated: flags[f + 2],
            };
            let digests = BodyDigests {
                request_bytes: numbers[0],
                request_sha256: strings[9].clone(),
                response_bytes: flags[2].then_some(numbers[1]),
                response_sha256: flags[3].then(|| strings[10].clone()),
            };
            let request_head = head(3, 5);
            let response_head = head(6, 8);
            let anomalies = [
                crate::exchange::Anomaly::new(s(9), s(10)),
                crate::exchange::Anomaly::new(s(11), s(0)),
            ];
            let app = crate::exchange::AppRef {
                uid: numbers[2] as i32,
                package: flags[13].then(|| strings[1].clone()),
                name: flags[0].then(|| strings[2].clone()),
                under_test: flags[1].then_some(flags[13]),
            };
            let certificate = crate::exchange::ServerCertificate {
                subject: strings[3].clone(),
                issuer: strings[4].clone(),
                names: strings[..(numbers[1] % 4) as usize].to_vec(),
                not_before: flags[2].then_some(Timestamp(us)),
                not_after: flags[3].then_some(Timestamp(us.wrapping_add(numbers[0] as i64))),
                serial: strings[5].clone(),
                sha256: strings[6].clone(),
                chain: numbers[2] as u32,
                host: None,
            };
            let body = ExchangeBodyRef {
                id: s(0),
                at: Timestamp(us),
                device: flags[0].then(|| s(1)),
                host: s(2),
                scheme: s(11),
                method: s(1),
                path: s(4),
                status: flags[1].then_some(status),
                tls: flags[4].then(|| TlsLabel { version: s(5), decrypted: flags[11] }),
                metadata_only: flags[10],
                file_sha256: flags[11].then(|| s(7)),
                locator: s(8),
                digests: flags[6].then_some(&digests),
                request_head: flags[7].then_some(&request_head),
                response_head: flags[9].then_some(&response_head),
                request_trailer: flags[8].then_some(&response_head),
                response_trailer: flags[10].then_some(&request_head),
                app: flags[12].then_some(&app),
                client: flags[2].then(|| s(9)),
                server: flags[3].then(|| s(10)),
                sni: flags[5].then(|| s(2)),
                decrypt_error: flags[6].then(|| s(3)),
                ech: flags[7].then(|| s(4)),
                outer_sni: flags[8].then(|| s(5)),
                ja3: flags[9].then(|| s(6)),
                ja4: flags[10].then(|| s(7)),
                server_certificate: flags[11].then_some(&certificate),
                anomalies: &anomalies[..(numbers[0] % 3) as usize],
            };
            let mut written = Vec::new();
            body.write_json(&mut written);
            let serde = serde_json::to_vec(&body).unwrap();
            proptest::prop_assert_eq!(
                String::from_utf8_lossy(&serde),
                String::from_utf8_lossy(&written)
            );
            // And inside the envelope, as `canonical_at` writes it.
            let at = Timestamp(us).to_string();
            let envelope = canonical_with(Kind::Exchange, &at, |out| {
                body.write_json(out);
                Ok(())
            })
            .unwrap();
            proptest::prop_assert_eq!(envelope, canonical_at(Kind::Exchange, &at, &body).unwrap());
        }

        /// Every kind's envelope, with any `at` text, is `canonical_at`'s.
        #[test]
        fn envelopes_written_around_data_are_canonical(at in "\\PC{0,40}|[\\x00-\\x7f]{0,40}") {
            let data = AnnotationBody { text: at.clone() };
            for kind in [
                Kind::Ingest, Kind::Exchange, Kind::Consent, Kind::Finding,
                Kind::Annotation, Kind::Seal, Kind::Checkpoint, Kind::Evidence,
            ] {
                let with = canonical_with(kind, &at, |out| serde_json::to_writer(out, &data)).unwrap();
                proptest::prop_assert_eq!(with, canonical_at(kind, &at, &data).unwrap());
            }
        }
    }

    /// A server certificate whose texts carry `text`.
    fn certificate(text: &str, dated: bool) -> crate::exchange::ServerCertificate {
        crate::exchange::ServerCertificate {
            subject: format!("CN={text}"),
            issuer: format!("CN=CA \"{text}\""),
            names: vec![format!("{text}.example"), "192.0.2.1".into()],
            not_before: dated.then_some(Timestamp(1_700_000_000_000_000)),
            not_after: dated.then_some(Timestamp(1_800_000_000_000_000)),
            serial: "4833".into(),
            sha256: "ab".repeat(32),
            chain: 2,
            host: None,
        }
    }

    fn chain(n: usize) -> Vec<Record> {
        let mut prev = GENESIS;
        (1..=n as i64)
            .map(|seq| {
                let at = Timestamp::from_micros(1_700_000_000_000_000 + seq);
                let data = AnnotationBody {
                    text: format!("note {seq}"),
                };
                let body = canonical(Kind::Annotation, at, &data).unwrap();
                let hash = chain_hash(&prev, &body);
                let r = Record {
                    seq,
                    kind: "annotation".into(),
                    at: at.to_string(),
                    body,
                    prev_hash: prev.to_vec(),
                    hash: hash.to_vec(),
                };
                prev = hash;
                r
            })
            .collect()
    }

    #[test]
    fn canonical_bytes_are_fixed() {
        let at = Timestamp::from_micros(0);
        let b = canonical(Kind::Annotation, at, &AnnotationBody { text: "x".into() }).unwrap();
        assert_eq!(
            String::from_utf8(b).unwrap(),
            format!(
                r#"{{"kind":"annotation","at":{},"data":{{"text":"x"}}}}"#,
                serde_json::to_string(&at).unwrap()
            )
        );
    }

    #[test]
    fn intact_chain_verifies() {
        let records = chain(5);
        let head = verify_chain(records.clone()).unwrap();
        assert_eq!(head.records, 5);
        assert_eq!(head.seq, 5);
        assert_eq!(head.hash.as_slice(), records[4].hash.as_slice());
        assert_eq!(verify_chain(Vec::new()).unwrap(), Head::EMPTY);
    }

    #[test]
    fn a_flipped_body_byte_names_its_record() {
        for i in 0..5 {
            let mut records = chain(5);
            let len = records[i].body.len();
            records[i].body[len / 2] ^= 0x01;
            let e = verify_chain(records).unwrap_err();
            assert_eq!(e.seq, i as i64 + 1, "{e}");
        }
    }

    #[test]
    fn a_flipped_hash_byte_names_its_record() {
        let mut records = chain(5);
        records[2].hash[7] ^= 0x80;
        assert_eq!(verify_chain(records).unwrap_err().seq, 3);
        // A rewritten hash that is also carried into the next prev_hash is still
        // caught: it is not sha256 of the body.
        let mut records = chain(5);
        records[2].hash[7] ^= 0x80;
        records[3].prev_hash = records[2].hash.clone();
        assert_eq!(verify_chain(records).unwrap_err().seq, 3);
    }

    #[test]
    fn reordered_or_missing_records_are_named() {
        let mut records = chain(5);
        records.swap(1, 2);
        assert_eq!(verify_chain(records).unwrap_err().seq, 3);
        let mut records = chain(5);
        records.remove(3);
        assert_eq!(verify_chain(records).unwrap_err().seq, 5);
        // Renumbered after a removal: the prev_hash link breaks.
        let mut records = chain(5);
        records.remove(1);
        for (i, r) in records.iter_mut().enumerate() {
            r.seq = i as i64 + 1;
        }
        assert_eq!(verify_chain(records).unwrap_err().seq, 2);
    }

    #[test]
    fn altered_columns_are_caught() {
        let mut records = chain(3);
        records[1].kind = "finding".into();
        assert_eq!(verify_chain(records).unwrap_err().seq, 2);
        let mut records = chain(3);
        records[2].at = "2020-01-01T00:00:00Z".into();
        assert_eq!(verify_chain(records).unwrap_err().seq, 3);
    }

    fn seal_record(prev: &Record, key: &ed25519_dalek::SigningKey, records: u64) -> Record {
        let mut h = [0u8; 32];
        h.copy_from_slice(&prev.hash);
        let head = Head {
            records,
            seq: prev.seq,
            hash: h,
            seals: 0,
            last_seal: None,
        };
        let at = Timestamp::from_micros(1);
        let body = canonical(Kind::Seal, at, &seal(&head, key)).unwrap();
        let hash = chain_hash(&h, &body);
        Record {
            seq: prev.seq + 1,
            kind: "seal".into(),
            at: at.to_string(),
            body,
            prev_hash: h.to_vec(),
            hash: hash.to_vec(),
        }
    }

    #[test]
    fn seals_verify_and_forged_ones_are_named() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        let mut records = chain(3);
        let s = seal_record(&records[2], &key, 3);
        records.push(s);
        let head = verify_chain(records.clone()).unwrap();
        assert_eq!((head.records, head.seals), (4, 1));
        assert_eq!(head.last_seal, Some((3, *key.verifying_key().as_bytes())));
        // The sealed head must be the record just before the seal.
        let mut moved = chain(3);
        let early = seal_record(&moved[1], &key, 2);
        moved.push(Record {
            seq: 4,
            prev_hash: moved[2].hash.clone(),
            ..early
        });
        let fixed = chain_hash(
            &moved[3].prev_hash.clone().try_into().unwrap(),
            &moved[3].body,
        );
        moved[3].hash = fixed.to_vec();
        let e = verify_chain(moved).unwrap_err();
        assert!(
            e.seq == 4 && e.reason.contains("seal is over record 2"),
            "{e}"
        );

        // A signature by another key under this key's name fails.
        let other = ed25519_dalek::SigningKey::from_bytes(&[8u8; 32]);
        let mut forged = records.clone();
        let mut bad = seal(
            &Head {
                records: 3,
                seq: 3,
                hash: records[2].hash.clone().try_into().unwrap(),
                seals: 0,
                last_seal: None,
            },
            &other,
        );
        bad.public_key = hex(key.verifying_key().as_bytes());
        let at = Timestamp::from_micros(1);
        forged[3].body = canonical(Kind::Seal, at, &bad).unwrap();
        forged[3].hash = chain_hash(
            &forged[3].prev_hash.clone().try_into().unwrap(),
            &forged[3].body,
        )
        .to_vec();
        let e = verify_chain(forged).unwrap_err();
        assert_eq!(e.seq, 4);
        assert!(e.reason.contains("does not verify"), "{e}");
    }

    #[test]
    fn exchange_bodies_without_heads_keep_their_bytes_and_heads_round_trip() {
        let mut x = crate::exchange::Exchange::new(
            "x-1",
            crate::exchange::SourceKind::Pcap,
            Timestamp::from_micros(0),
        );
        let before = serde_json::to_string(&ExchangeBody::of(&x)).unwrap();
        // Records written before heads existed verify the same (no new keys).
        assert!(!before.contains("head"), "{before}");
        x.evidence.request_head = Some(crate::exchange::RawHead::new(b"GET / HTTP/1.1\r\n\r\n"));
        x.evidence.response_head = Some(crate::exchange::RawHead::new(b":status: 200\r\n"));
        let body = ExchangeBody::of(&x);
        let text = serde_json::to_string(&body).unwrap();
        let back: ExchangeBody = serde_json::from_str(&text).unwrap();
        assert_eq!(back, body);
        assert_eq!(
            back.response_head.unwrap().text.as_deref(),
            Some(":status: 200\r\n")
        );
        let old: ExchangeBody = serde_json::from_str(&before).unwrap();
        assert!(old.request_head.is_none());
    }

    #[test]
    fn unhex_round_trips() {
        assert_eq!(unhex("00ff10").unwrap(), vec![0, 255, 16]);
        assert_eq!(unhex(&hex(&[1, 2, 254])).unwrap(), vec![1, 2, 254]);
        assert!(unhex("0").is_none() && unhex("zz").is_none() && unhex("é0").is_none());
    }

    #[test]
    fn written_files_end_only_with_a_removal_of_the_same_file() {
        let body = |event, path: &str, sha: &str| EvidenceFileBody {
            event,
            path: path.into(),
            size: 1,
            sha256: sha.into(),
            kind: "pcapng".into(),
            packets: 0,
            first: None,
            last: None,
        };
        let mut w = WrittenFiles::default();
        w.add(3, body(EvidenceEvent::Closed, "evidence/b", "bb"))
            .unwrap();
        w.add(2, body(EvidenceEvent::Closed, "evidence/a", "aa"))
            .unwrap();
        w.add(4, body(EvidenceEvent::Closed, "evidence/c", "cc"))
            .unwrap();
        // Another file's hash under a's name ends nothing; b's own removal ends b.
        w.add(5, body(EvidenceEvent::Removed, "evidence/a", "xx"))
            .unwrap();
        w.add(6, body(EvidenceEvent::Removed, "evidence/b", "bb"))
            .unwrap();
        // A removal of a file never closed is no error (and expects nothing).
        w.add(7, body(EvidenceEvent::Removed, "evidence/z", "zz"))
            .unwrap();
        let left: Vec<(i64, &str)> = w
            .expected()
            .into_iter()
            .map(|(s, b)| (s, b.path.as_str()))
            .collect();
        assert_eq!(left, [(2, "evidence/a"), (4, "evidence/c")]);
        for bad in ["/etc/passwd", "../x", "evidence/../../x", ""] {
            assert!(
                w.add(8, body(EvidenceEvent::Closed, bad, "aa")).is_err(),
                "{bad}"
            );
        }
        let json =
            serde_json::to_string(&body(EvidenceEvent::Removed, "evidence/a", "aa")).unwrap();
        assert!(
            json.starts_with(r#"{"event":"removed","path":"evidence/a""#),
            "{json}"
        );
    }
}
