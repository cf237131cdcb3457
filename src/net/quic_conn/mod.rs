//! QUIC connections after the handshake, with a key log: the 0-RTT and 1-RTT packets
//! of both directions decrypted, their frames read, and each stream's data put back
//! in order — the bytes HTTP/3 ([`http3`](crate::net::http3)) reads.
//!
//! [`quic`](crate::net::quic) reads a connection's client Initial packets for the
//! ClientHello. When the key log has secrets for its client random, the flow table
//! starts a [`QuicConnReader`] with the connection's version, original DCID and client
//! SCID (from the [`QuicInitialReader`](crate::net::quic::QuicInitialReader)) and feeds
//! it every UDP payload of the flow, both directions, in capture order — including
//! those the Initial reader saw, which may carry 0-RTT packets. Out come
//! [`QuicEvent`]s: ordered stream bytes, gaps, resets and closes; at the end of the
//! flow, [`QuicConnReader::flush`] hands out what is still held behind holes.
//! Sans-I/O: a datagram in, events out.
//!
//! # What is read
//! - **Datagrams** hold coalesced packets (RFC 9000 §12.2): long-header packets first,
//!   each as long as its Length field says; a short-header packet takes the rest. A
//!   byte without the fixed bit after long-header packets is datagram padding.
//! - **Server Initial packets** are decrypted with the server's Initial keys (RFC 9001
//!   §5.2: from the original DCID, or from the SCID of a Retry) for the ServerHello:
//!   its cipher suite says how to read everything else, and a version other than the
//!   client's (compatible version negotiation, RFC 9368) names the 1-RTT labels.
//! - **The server's Handshake packets** are decrypted with keys from
//!   `SERVER_HANDSHAKE_TRAFFIC_SECRET`, when logged, for the server's certificate
//!   ([`take_server_certificate`](QuicConnReader::take_server_certificate)); once it
//!   is read (or a resumed session shows none) they are skipped. The client's
//!   Handshake packets are skipped (its Finished, or a client certificate, which
//!   is not read), as are client Initial packets (read by `quic`), Version
//!   Negotiation and Retry packets (nothing can follow them in a datagram), and
//!   packets of versions other than QUIC v1 and v2.
//! - **0-RTT packets** (client only) open with `CLIENT_EARLY_TRAFFIC_SECRET`, **1-RTT
//!   packets** with `CLIENT_TRAFFIC_SECRET_0` / `SERVER_TRAFFIC_SECRET_0`: packet keys
//!   by HKDF-Expand-Label with the suite's hash ("quic key", "quic iv", "quic hp"; v2:
//!   "quicv2 …", RFC 9369 §3.3.2), AES-GCM or ChaCha20-Poly1305, AES or ChaCha20
//!   header protection, nonce = IV ⊕ packet number (RFC 9001 §5).
//! - **Frames**: every frame of RFC 9000 §19 and DATAGRAM (RFC 9221) is read to its
//!   end so that the frames after it are found; STREAM, RESET_STREAM and
//!   CONNECTION_CLOSE become events, NEW_CONNECTION_ID teaches connection ID lengths,
//!   the rest is skipped. An unknown frame type ends its packet (`quic-unknown-frame`):
//!   its length cannot be known.
//!
//! # Policies
//! - **Cipher suite**: the ServerHello's. Without one (server Initial not captured or
//!   not readable) it follows from the secret's length: 48 bytes ⇒ AES-256-GCM; 32 ⇒
//!   AES-128-GCM or ChaCha20-Poly1305, whichever authenticates a first packet, then
//!   kept for both directions. 0-RTT is protected with the suite of the resumed
//!   session, which only the client knows: the 1-RTT suite is tried first, then the
//!   others of the early secret's length.
//! - **Connection ID lengths**: a short header does not say how long its DCID is. The
//!   server writes to the client's SCID; the client writes to the server's, whose
//!   length comes from the SCID of the server's long-header packets or the DCID of
//!   the client's Handshake packets. NEW_CONNECTION_ID frames add lengths. While a
//!   direction has opened no short-header packet, lengths not learned (0..=20) are
//!   tried after the learned ones; the one that authenticates is kept.
//! - **Key updates** (RFC 9001 §6): a key phase bit other than the current one is a
//!   packet of the previous phase when its number is below the first packet of the
//!   current phase, else the first of the next phase, whose secret is
//!   HKDF-Expand-Label(secret, "quic ku" / "quicv2 ku"); the previous phase's key is
//!   kept for reordered packets. The header protection key never changes.
//! - **Packet numbers** are decoded per direction against the largest number opened
//!   in the application data space, which 0-RTT and 1-RTT share (RFC 9000 §12.3,
//!   appendix A.3).
//! - **Stream data**: the first bytes received for an offset win (as for CRYPTO data
//!   in `quic`: a retransmission carries the same bytes, and a conflicting one cannot
//!   be told from an attacker's); bytes already handed out are not handed out again.
//!   A stream direction ends at its final size (FIN) or RESET_STREAM; later frames
//!   for it are retransmissions and dropped. Inconsistent final sizes drop the frame
//!   (`quic-stream-final-size`), as does data on a unidirectional stream from the
//!   side that cannot send on it (`quic-stream-direction`).
//! - **Failures**: a packet that does not authenticate is counted and skipped
//!   (`quic-decrypt-failed`). After [`QuicConnLimits::max_failed_datagrams`]
//!   datagrams of one direction in a row where packets failed and none opened, that
//!   direction is given up (`quic-decrypt-gave-up`): wrong keys, or keys lost after
//!   key updates missing from the capture, would fail forever at the cost of trial
//!   decryptions.
//!
//! # Limits
//! [`QuicConnLimits`] bounds held out-of-order bytes and their pieces, streams tracked
//! at once and failing datagrams; streams that ended are remembered in a bounded set
//! (below a per-type watermark, stream IDs being allocated in order). The server's
//! handshake is read within 64 KiB of CRYPTO data and 64 Handshake packets, and
//! given up after 8 in a row that do not open. At most
//! [`MAX_ANOMALIES_PER_KIND`] anomalies of each kind are reported over a connection's
//! life. Each packet costs a bounded number of trial decryptions (connection ID
//! lengths × candidate suites × key phases). The reader never panics on traffic.
//!
//! # Parts
//! This module takes datagrams apart into packets and keeps each direction's state;
//! `keys` opens packets (suites, labels, key phases, 0-RTT), `server_hello` reads the
//! server's Initial packets, `server_certificate` its Handshake packets, `frames`
//! reads decrypted payloads and `streams` puts stream data back in order.
//! [`PacketSealer`] protects packets as a sender does, for tests, benchmarks and
//! fuzzing only.

mod frames;
mod keys;
mod seal;
mod server_certificate;
mod server_hello;
mod streams;
#[cfg(test)]
mod test_util;

pub use seal::PacketSealer;

use std::ops::Range;

use crate::exchange::{Anomaly, ServerCertificate};
use crate::net::keylog::Secrets;
use crate::net::message_budget::{BudgetShare, MessageBudget};
use crate::net::quic::{parse_long_header, LongHeader, PacketError, PacketType};
use keys::{candidate_suites, opens_first_long, AppKeys, Labels, LongKeys, Opened, Suite};
use server_certificate::{CertificateOutcome, ServerCertificateReader};
use server_hello::{retry_scid, HelloOutcome, ServerHelloReader};
use streams::Streams;

/// Anomalies of one kind reported over a connection's life; more are dropped.
pub const MAX_ANOMALIES_PER_KIND: usize = 4;
/// Longest connection ID (RFC 9000 §17.2).
const MAX_CID_LEN: usize = 20;
/// Every connection ID length, as a bit set (bit n: n bytes).
const ALL_CID_LENS: u32 = (1 << (MAX_CID_LEN + 1)) - 1;
/// Decryption buffer capacity kept between datagrams; a bigger one is freed.
const SCRATCH_KEPT: usize = 4096;

/// What trying a key log's entries on a server datagram found; see
/// [`try_handshake_secrets`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeTrial {
    /// The datagram holds no Handshake packet of the connection's version.
    NoHandshakePacket,
    /// The server handshake secret logged under this client random opened it.
    Opened([u8; 32]),
    /// None opened; `limit` when candidates were left untried.
    NoneOpened { limit: bool },
}

/// Tries, in order and at most `max`, the server handshake secrets of `candidates`
/// (client random, logged secrets) on the first Handshake packet of the server
/// datagram `datagram` (QUIC `version`), under each cipher suite of the secret's
/// length: how a connection that offered Encrypted Client Hello, whose secrets are
/// logged under a random the capture never shows, finds them.
pub fn try_handshake_secrets<'a>(
    version: u32,
    datagram: &[u8],
    candidates: impl Iterator<Item = (&'a [u8; 32], &'a Secrets)>,
    max: usize,
) -> HandshakeTrial {
    let Some(labels) = Labels::of(version) else {
        return HandshakeTrial::NoHandshakePacket;
    };
    let mut rest = datagram;
    let handshake = loop {
        if rest.first().is_none_or(|b| b & 0x80 == 0) {
            return HandshakeTrial::NoHandshakePacket;
        }
        let Ok(h) = parse_long_header(rest) else {
            return HandshakeTrial::NoHandshakePacket;
        };
        if h.packet_len == 0 {
            return HandshakeTrial::NoHandshakePacket;
        }
        let (packet, after) = rest.split_at(h.packet_len.min(rest.len()));
        if h.kind == PacketType::Handshake && h.version == version {
            break (packet, h.pn_offset);
        }
        rest = after;
    };
    let mut scratch = Vec::new();
    for (tried, (random, secrets)) in candidates.enumerate() {
        if tried == max {
            return HandshakeTrial::NoneOpened { limit: true };
        }
        let Some(secret) = secrets.server_handshake_traffic.as_deref() else {
            continue;
        };
        let (packet, pn_offset) = handshake;
        let opens = Suite::for_secret_len(secret.len())
            .iter()
            .any(|&suite| opens_first_long(suite, labels, secret, packet, pn_offset, &mut scratch));
        if opens {
            return HandshakeTrial::Opened(*random);
        }
    }
    HandshakeTrial::NoneOpened { limit: false }
}

/// Bounds on what one connection may hold; defaults documented per field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuicConnLimits {
    /// Out-of-order stream bytes held per connection, all streams together (default
    /// 1 MiB). Over it, the stream whose first hole is the oldest gives that hole up:
    /// a [`QuicEvent::Gap`] for it, then the held bytes after it; anomaly
    /// `quic-stream-buffer-limit`. The oldest hole is the likeliest to be a loss in
    /// the capture rather than reordering.
    pub max_buffered: usize,
    /// Pieces of held bytes per connection (default 4096; a piece grows while bytes
    /// arrive in order after it): each costs a map entry and a buffer, so tiny pieces
    /// are bounded as bytes are; same policy.
    pub max_held_ranges: usize,
    /// Stream directions tracked at once (default 256; a bidirectional stream with
    /// data both ways counts twice): data for a new one beyond it is ignored, anomaly
    /// `quic-stream-limit`. A direction stops being tracked at its FIN or reset.
    pub max_streams: usize,
    /// Datagrams of one direction in a row in which packets failed to authenticate
    /// and none opened (default 64), after which that direction is given up.
    pub max_failed_datagrams: usize,
}

impl Default for QuicConnLimits {
    fn default() -> Self {
        QuicConnLimits {
            max_buffered: 1 << 20,
            max_held_ranges: 4096,
            max_streams: 256,
            max_failed_datagrams: 64,
        }
    }
}

/// What a connection's packets yield, in packet order and frame order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuicEvent {
    /// In-order bytes of one stream from one side (`from_client`), starting at
    /// `offset`; `fin`: the stream's final size was reached with these bytes
    /// (possibly empty data with fin).
    Stream {
        id: u64,
        from_client: bool,
        offset: u64,
        data: Vec<u8>,
        fin: bool,
    },
    /// Bytes of a stream that will never be delivered (a limit dropped them): the
    /// stream's data continues at `offset + len` if more comes.
    Gap {
        id: u64,
        from_client: bool,
        offset: u64,
        len: u64,
    },
    /// RESET_STREAM from `from_client` side: its data on the stream ends here.
    Reset {
        id: u64,
        from_client: bool,
        error_code: u64,
    },
    /// CONNECTION_CLOSE (either type) from a side.
    Close {
        from_client: bool,
        error_code: u64,
        reason: String,
    },
}

/// Why a connection could not be read (for the summary); mirrors
/// [`NotDecrypted`](crate::net::tls_decrypt::NotDecrypted) where it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuicStatus {
    /// No 0-RTT or 1-RTT packet tried yet.
    Pending,
    /// At least one 1-RTT or 0-RTT packet opened.
    Decrypting,
    /// Packets came from a side whose secret is not logged (or is of no usable length).
    NoKey,
    /// The ServerHello chose a suite we do not decrypt (its IANA number).
    UnsupportedSuite(u16),
    /// Packets did not authenticate with the logged secrets.
    AuthenticationFailed,
    /// The connection's QUIC version is not one we read.
    UnsupportedVersion(u32),
}

impl std::fmt::Display for QuicStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QuicStatus::Pending => f.write_str("no QUIC packet after the handshake yet"),
            QuicStatus::Decrypting => f.write_str("decrypting"),
            QuicStatus::NoKey => f.write_str("no key for this client random"),
            QuicStatus::UnsupportedSuite(s) => write!(f, "unsupported cipher suite 0x{s:04x}"),
            QuicStatus::AuthenticationFailed => {
                f.write_str("packets failed authentication with the logged keys")
            }
            QuicStatus::UnsupportedVersion(v) => write!(f, "QUIC version 0x{v:08x} not read"),
        }
    }
}

/// The client's 0-RTT state.
#[derive(Default)]
struct Early {
    secret: Option<Vec<u8>>,
    /// Candidate keys, built on the first 0-RTT packet; one once a packet opened.
    keys: Vec<LongKeys>,
    built: bool,
    failed: u64,
}

/// The connection ID lengths in a bit set, shortest first.
fn cid_lens(set: u32) -> impl Iterator<Item = usize> {
    (0..=MAX_CID_LEN).filter(move |&l| set & (1 << l) != 0)
}

/// One direction: its 1-RTT keys and packet number space.
struct Side {
    from_client: bool,
    /// The 1-RTT traffic secret this side sends with, if logged.
    secret: Option<Vec<u8>>,
    /// One set of keys per candidate suite until a packet opens, then that one.
    app: Vec<AppKeys>,
    app_built: bool,
    /// Largest packet number opened in this side's application data space.
    largest_pn: Option<u64>,
    /// DCID lengths this side's short headers may carry (bit n: n bytes).
    dcid_lens: u32,
    /// A short-header packet opened: from then on only learned lengths are tried.
    opened_short: bool,
    failed: u64,
    /// Datagrams in a row in which packets failed and none opened.
    failing_datagrams: usize,
    gave_up: bool,
    /// Packets came while no usable secret was logged for this side.
    missing_key: bool,
}

impl Side {
    fn new(from_client: bool, secret: Option<Vec<u8>>) -> Self {
        Side {
            from_client,
            secret,
            app: Vec::new(),
            app_built: false,
            largest_pn: None,
            dcid_lens: 0,
            opened_short: false,
            failed: 0,
            failing_datagrams: 0,
            gave_up: false,
            missing_key: false,
        }
    }

    fn learn_dcid_len(&mut self, len: usize) {
        if len <= MAX_CID_LEN {
            self.dcid_lens |= 1 << len;
        }
    }

    /// Opens a short-header packet: learned DCID lengths first, then (until one
    /// packet opened) the others, each with every candidate suite.
    fn open_short(&mut self, packet: &[u8], scratch: &mut Vec<u8>) -> Option<Opened> {
        let learned = self.dcid_lens;
        let others = if self.opened_short {
            0
        } else {
            ALL_CID_LENS & !learned
        };
        for len in cid_lens(learned).chain(cid_lens(others)) {
            for keys in &mut self.app {
                if let Some(o) = keys.open(packet, len, self.largest_pn, scratch) {
                    self.learn_dcid_len(len);
                    self.opened_short = true;
                    self.note_pn(o.pn);
                    return Some(o);
                }
            }
        }
        None
    }

    fn note_pn(&mut self, pn: u64) {
        self.largest_pn = Some(self.largest_pn.map_or(pn, |l| l.max(pn)));
    }

    fn key_updates(&self) -> u64 {
        self.app.iter().map(|k| k.updates).max().unwrap_or(0)
    }
}

/// Anomalies kept until taken, at most [`MAX_ANOMALIES_PER_KIND`] per kind over a
/// connection's life.
#[derive(Debug, Default)]
struct Anomalies {
    kept: Vec<Anomaly>,
    counts: Vec<(&'static str, usize)>,
}

impl Anomalies {
    fn note(&mut self, kind: &'static str, detail: impl FnOnce() -> String) {
        let i = match self.counts.iter().position(|(k, _)| *k == kind) {
            Some(i) => i,
            None => {
                self.counts.push((kind, 0));
                self.counts.len() - 1
            }
        };
        let count = &mut self.counts[i].1;
        if *count < MAX_ANOMALIES_PER_KIND {
            *count += 1;
            self.kept.push(Anomaly::new(kind, detail()));
        }
    }
}

/// What the packets of one datagram came to, for the failure count.
#[derive(Debug, Default)]
struct Tally {
    opened: usize,
    failed: usize,
}

/// Reads a QUIC connection's packets after the handshake with its logged secrets;
/// see the module doc.
pub struct QuicConnReader {
    limits: QuicConnLimits,
    /// The version of the client's Initial packets.
    version: u32,
    /// The version whose labels the 1-RTT keys use: the server's, once a server
    /// Initial in another version we read gave the ServerHello (compatible version
    /// negotiation, RFC 9368).
    app_version: u32,
    suite: Option<Suite>,
    unsupported_suite: Option<u16>,
    hello: ServerHelloReader,
    certificate: ServerCertificateReader,
    /// The server's certificate once read, until taken.
    server_certificate: Option<ServerCertificate>,
    client: Side,
    server: Side,
    early: Early,
    streams: Streams,
    anomalies: Anomalies,
    decrypted: u64,
    /// Decryption buffer, reused across packets.
    scratch: Vec<u8>,
}

impl std::fmt::Debug for QuicConnReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuicConnReader")
            .field("version", &format_args!("0x{:08x}", self.version))
            .field("cipher_suite", &self.cipher_suite())
            .field("status", &self.status())
            .field("decrypted", &self.decrypted)
            .field("streams", &self.streams.active.len())
            .finish_non_exhaustive()
    }
}

impl QuicConnReader {
    /// `version`, `original_dcid`, `client_scid` from the
    /// [`QuicInitialReader`](crate::net::quic::QuicInitialReader) that read the
    /// ClientHello; `secrets` from the key log for the ClientHello's random.
    pub fn new(
        version: u32,
        original_dcid: &[u8],
        client_scid: &[u8],
        secrets: &Secrets,
        limits: QuicConnLimits,
    ) -> Self {
        let client = Side::new(true, secrets.client_traffic_0.clone());
        let mut server = Side::new(false, secrets.server_traffic_0.clone());
        // The server writes to the connection ID the client chose.
        server.learn_dcid_len(client_scid.len());
        QuicConnReader {
            version,
            app_version: version,
            suite: None,
            unsupported_suite: None,
            hello: ServerHelloReader::new(original_dcid),
            certificate: ServerCertificateReader::new(secrets.server_handshake_traffic.clone()),
            server_certificate: None,
            client,
            server,
            early: Early {
                secret: secrets.client_early_traffic.clone(),
                ..Early::default()
            },
            streams: Streams::new(limits.clone()),
            limits,
            anomalies: Anomalies::default(),
            decrypted: 0,
            scratch: Vec::new(),
        }
    }

    /// Holds out-of-order stream bytes within `budget` too, shared with the flow
    /// table's other connections (see
    /// [`message_budget`](crate::net::message_budget)); past it the stream with the
    /// oldest hole gives it up, as past [`QuicConnLimits::max_buffered`].
    pub fn with_budget(mut self, budget: &MessageBudget) -> Self {
        self.streams.keep_within(BudgetShare::of(budget));
        self
    }

    /// One UDP datagram of the connection; appends what it yields to `out` (in packet
    /// order, frames in frame order).
    pub fn push(&mut self, datagram: &[u8], from_client: bool, out: &mut Vec<QuicEvent>) {
        if Labels::of(self.version).is_none() || self.side(from_client).gave_up {
            return;
        }
        let mut tally = Tally::default();
        let mut rest = datagram;
        let mut first_packet = true;
        while let Some(&b0) = rest.first() {
            if b0 & 0x80 == 0 {
                // After long-header packets, a byte without the fixed bit is padding;
                // a datagram's first packet may have it cleared (RFC 9287 greasing).
                if first_packet || b0 & 0x40 != 0 {
                    self.short_packet(rest, from_client, out, &mut tally);
                }
                break;
            }
            first_packet = false;
            match parse_long_header(rest) {
                Ok(h) => {
                    let (packet, after) = rest.split_at(h.packet_len);
                    rest = after;
                    self.long_packet(&h, packet, from_client, out, &mut tally);
                }
                Err(PacketError::Retry) => {
                    if !from_client {
                        if let Some(scid) = retry_scid(rest) {
                            self.hello.retry(scid);
                        }
                    }
                    break;
                }
                // Version Negotiation, other versions, broken lengths: nothing after
                // them can be found.
                Err(_) => break,
            }
        }
        self.count_failures(from_client, &tally);
        if self.scratch.capacity() > SCRATCH_KEPT {
            self.scratch = Vec::new();
        }
    }

    /// Hands out the bytes still held behind holes, as gaps and data: for the end of
    /// the flow.
    pub fn flush(&mut self, out: &mut Vec<QuicEvent>) {
        self.streams.flush(out);
    }

    /// Where decryption stands; see [`QuicStatus`].
    pub fn status(&self) -> QuicStatus {
        let failed = self.client.failed + self.server.failed + self.early.failed;
        if self.decrypted > 0 {
            QuicStatus::Decrypting
        } else if Labels::of(self.version).is_none() {
            QuicStatus::UnsupportedVersion(self.version)
        } else if let Some(id) = self.unsupported_suite {
            QuicStatus::UnsupportedSuite(id)
        } else if failed > 0 {
            QuicStatus::AuthenticationFailed
        } else if self.client.missing_key
            || self.server.missing_key
            || (self.client.secret.is_none()
                && self.server.secret.is_none()
                && self.early.secret.is_none())
        {
            QuicStatus::NoKey
        } else {
            QuicStatus::Pending
        }
    }

    /// 0-RTT and 1-RTT packets opened so far.
    pub fn packets_decrypted(&self) -> u64 {
        self.decrypted
    }

    /// 0-RTT and 1-RTT packets that did not authenticate.
    pub fn packets_failed(&self) -> u64 {
        self.client.failed + self.server.failed + self.early.failed
    }

    /// The cipher suite (IANA number) the ServerHello chose or a packet proved.
    pub fn cipher_suite(&self) -> Option<u16> {
        self.suite.map(Suite::id)
    }

    /// Key updates seen (RFC 9001 §6), both directions together.
    pub fn key_updates(&self) -> u64 {
        self.client.key_updates() + self.server.key_updates()
    }

    /// The server's certificate, read from its Handshake packets with the logged
    /// handshake secret; handed out once.
    pub fn take_server_certificate(&mut self) -> Option<ServerCertificate> {
        self.server_certificate.take()
    }

    /// Hands out the anomalies recorded since the last call.
    pub fn take_anomalies(&mut self) -> Vec<Anomaly> {
        std::mem::take(&mut self.anomalies.kept)
    }

    fn side(&self, from_client: bool) -> &Side {
        if from_client {
            &self.client
        } else {
            &self.server
        }
    }

    fn long_packet(
        &mut self,
        h: &LongHeader<'_>,
        packet: &[u8],
        from_client: bool,
        out: &mut Vec<QuicEvent>,
        tally: &mut Tally,
    ) {
        match (h.kind, from_client) {
            (PacketType::Initial, false) => {
                // The server's SCID is the DCID of the client's short headers.
                self.client.learn_dcid_len(h.scid.len());
                self.server_initial(h, packet);
            }
            (PacketType::Handshake, false) => {
                self.client.learn_dcid_len(h.scid.len());
                self.server_handshake(h, packet);
            }
            // The client writes its Handshake packets to the server's connection ID.
            (PacketType::Handshake, true) => self.client.learn_dcid_len(h.dcid.len()),
            (PacketType::ZeroRtt, true) => self.zero_rtt_packet(h, packet, out, tally),
            // Client Initials were read by `quic`; only clients send 0-RTT; Retry
            // packets do not parse here.
            _ => {}
        }
    }

    fn server_initial(&mut self, h: &LongHeader<'_>, packet: &[u8]) {
        match self.hello.push(h, packet, &mut self.scratch) {
            HelloOutcome::NeedMore => {}
            HelloOutcome::Hello(hello) => {
                let opened_1rtt = self.client.opened_short || self.server.opened_short;
                if h.version != self.app_version && !opened_1rtt {
                    // The server chose another version we read: 1-RTT keys use its labels.
                    self.app_version = h.version;
                    self.drop_app_keys();
                }
                self.learn_suite(hello.cipher_suite);
            }
            HelloOutcome::Failed(why) => self.anomalies.note("quic-server-hello", || {
                format!("{why}; cipher suite guessed")
            }),
        }
    }

    fn server_handshake(&mut self, h: &LongHeader<'_>, packet: &[u8]) {
        if !self.certificate.reading() {
            return;
        }
        match self.certificate.push(h, packet, self.suite, &mut self.scratch) {
            CertificateOutcome::NeedMore | CertificateOutcome::NoCertificate => {}
            CertificateOutcome::Certificate(c) => self.server_certificate = Some(c),
            CertificateOutcome::Malformed(why) => self
                .anomalies
                .note("tls-malformed", || format!("server Certificate: {why}")),
            CertificateOutcome::KeysFailed(n) => self.anomalies.note("quic-decrypt-failed", || {
                format!("{n} Handshake packets from the server in a row did not authenticate with the logged handshake secret; its certificate is not read")
            }),
        }
    }

    /// The ServerHello's suite; a packet that proved another one wins.
    fn learn_suite(&mut self, id: u16) {
        match (Suite::from_id(id), self.suite) {
            (Some(s), None) => self.fix_suite(s),
            (Some(s), Some(known)) if s != known => {
                self.anomalies.note("quic-suite-mismatch", || {
                    format!(
                        "ServerHello chose 0x{id:04x} but packets opened with 0x{:04x}",
                        known.id()
                    )
                })
            }
            (Some(_), Some(_)) => {}
            (None, None) => {
                self.unsupported_suite = Some(id);
                self.drop_app_keys();
            }
            (None, Some(_)) => self.anomalies.note("quic-suite-mismatch", || {
                format!("ServerHello chose 0x{id:04x}, yet packets opened")
            }),
        }
    }

    /// Keeps only `suite`'s keys (rebuilt if none were).
    fn fix_suite(&mut self, suite: Suite) {
        self.suite = Some(suite);
        for side in [&mut self.client, &mut self.server] {
            side.app.retain(|k| k.suite == suite);
            if side.app.is_empty() {
                side.app_built = false;
            }
        }
    }

    fn drop_app_keys(&mut self) {
        for side in [&mut self.client, &mut self.server] {
            side.app.clear();
            side.app_built = false;
        }
    }

    /// Builds a side's 1-RTT key candidates if needed; false when it has none.
    fn app_keys_ready(&mut self, from_client: bool) -> bool {
        let labels = Labels::of(self.app_version);
        let (suite, unsupported) = (self.suite, self.unsupported_suite.is_some());
        let side = if from_client {
            &mut self.client
        } else {
            &mut self.server
        };
        let (Some(labels), false) = (labels, unsupported) else {
            return false;
        };
        let Some(secret) = side.secret.as_deref() else {
            side.missing_key = true;
            return false;
        };
        if !side.app_built {
            side.app_built = true;
            let suites = match suite {
                Some(s) => vec![s],
                None => Suite::for_secret_len(secret.len()).to_vec(),
            };
            side.app = suites
                .into_iter()
                .filter_map(|s| AppKeys::new(s, labels, secret))
                .collect();
            if side.app.is_empty() {
                side.missing_key = true;
                let len = secret.len();
                self.anomalies.note("quic-secret-length", || {
                    format!("a {len}-byte traffic secret fits no QUIC cipher suite")
                });
            }
        }
        !side.app.is_empty()
    }

    fn short_packet(
        &mut self,
        packet: &[u8],
        from_client: bool,
        out: &mut Vec<QuicEvent>,
        tally: &mut Tally,
    ) {
        if !self.app_keys_ready(from_client) {
            return;
        }
        let side = if from_client {
            &mut self.client
        } else {
            &mut self.server
        };
        match side.open_short(packet, &mut self.scratch) {
            Some(opened) => {
                tally.opened += 1;
                self.decrypted += 1;
                if self.suite.is_none() {
                    self.fix_suite(opened.suite);
                }
                self.read_payload(opened.payload, from_client, out);
            }
            None => {
                tally.failed += 1;
                side.failed += 1;
                let len = packet.len();
                self.anomalies.note("quic-decrypt-failed", || {
                    let who = if from_client { "client" } else { "server" };
                    format!("a {len}-byte 1-RTT packet from the {who} did not authenticate")
                });
            }
        }
    }

    fn zero_rtt_packet(
        &mut self,
        h: &LongHeader<'_>,
        packet: &[u8],
        out: &mut Vec<QuicEvent>,
        tally: &mut Tally,
    ) {
        let Some(secret) = self.early.secret.as_deref() else {
            self.anomalies.note("quic-0rtt-no-key", || {
                "0-RTT packets without a logged early secret".into()
            });
            return;
        };
        if !self.early.built {
            self.early.built = true;
            if let Some(labels) = Labels::of(h.version) {
                self.early.keys = candidate_suites(self.suite, secret.len())
                    .into_iter()
                    .filter_map(|s| LongKeys::new(s, labels, secret))
                    .collect();
            }
        }
        let largest = self.client.largest_pn;
        let mut opened = None;
        for (i, keys) in self.early.keys.iter().enumerate() {
            if let Some(o) = keys.open(h, packet, largest, &mut self.scratch) {
                opened = Some((i, o));
                break;
            }
        }
        match opened {
            Some((i, o)) => {
                if self.early.keys.len() > 1 {
                    let keys = self.early.keys.swap_remove(i);
                    self.early.keys = vec![keys];
                }
                tally.opened += 1;
                self.decrypted += 1;
                self.client.note_pn(o.pn);
                self.read_payload(o.payload, true, out);
            }
            None => {
                tally.failed += 1;
                self.early.failed += 1;
                self.anomalies.note("quic-decrypt-failed", || {
                    format!("a {}-byte 0-RTT packet did not authenticate", packet.len())
                });
            }
        }
    }

    fn count_failures(&mut self, from_client: bool, tally: &Tally) {
        let max = self.limits.max_failed_datagrams;
        let side = if from_client {
            &mut self.client
        } else {
            &mut self.server
        };
        if tally.opened > 0 {
            side.failing_datagrams = 0;
        } else if tally.failed > 0 {
            side.failing_datagrams += 1;
            if side.failing_datagrams >= max {
                side.gave_up = true;
                let who = if side.from_client { "client" } else { "server" };
                self.anomalies.note("quic-decrypt-gave-up", || {
                    format!("{max} datagrams in a row from the {who} did not decrypt; its packets are no longer tried")
                });
            }
        }
    }

    /// Reads the frames of the payload at `range` in the scratch buffer.
    fn read_payload(&mut self, range: Range<usize>, from_client: bool, out: &mut Vec<QuicEvent>) {
        let scratch = std::mem::take(&mut self.scratch);
        if let Some(payload) = scratch.get(range) {
            self.read_frames(payload, from_client, out);
        }
        self.scratch = scratch;
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::*;
    use super::*;
    use crate::net::quic::tests::{client_hello, crypto_frame, protect_initial};
    use crate::net::quic::QUIC_V1;
    use proptest::prelude::*;

    /// A Handshake packet we cannot (and need not) read.
    fn opaque_handshake(version: u32, from_client: bool) -> Vec<u8> {
        let (dcid, scid): (&[u8], &[u8]) = if from_client {
            (&SERVER_CID, &CLIENT_CID)
        } else {
            (&CLIENT_CID, &SERVER_CID)
        };
        Sealer::new(Suite::Aes128Gcm, version, &[9; 32]).long(
            version,
            PacketType::Handshake,
            dcid,
            scid,
            0,
            1,
            &crypto_frame(0, b"certificate and finished"),
        )
    }

    /// The trial of ECH: the entry whose server handshake secret opens the server's
    /// Handshake packet, after others that do not; in order, bounded, and only on a
    /// datagram that holds one.
    #[test]
    fn handshake_secrets_are_tried_in_order_on_the_first_handshake_packet() {
        let entry = |hs: u8| Secrets {
            server_handshake_traffic: Some(secret(hs, 32)),
            ..Secrets::default()
        };
        let (decoy, none, real) = (entry(1), Secrets::default(), entry(2));
        let randoms = [[0xd0; 32], [0xd1; 32], [0xee; 32]];
        let candidates = || randoms.iter().zip([&decoy, &none, &real]);
        let handshake = Sealer::new(Suite::ChaCha20Poly1305, QUIC_V1, &secret(2, 32)).long(
            QUIC_V1,
            PacketType::Handshake,
            &CLIENT_CID,
            &SERVER_CID,
            0,
            2,
            &crypto_frame(0, b"encrypted extensions"),
        );
        // Behind a server Initial, as servers coalesce them.
        let initial = opaque_initial_from_server();
        let datagram = [&initial[..], &handshake].concat();
        assert_eq!(
            try_handshake_secrets(QUIC_V1, &datagram, candidates(), 8),
            HandshakeTrial::Opened([0xee; 32])
        );
        assert_eq!(
            try_handshake_secrets(QUIC_V1, &datagram, candidates(), 2),
            HandshakeTrial::NoneOpened { limit: true }
        );
        assert_eq!(
            try_handshake_secrets(QUIC_V1, &datagram, candidates().take(2), 8),
            HandshakeTrial::NoneOpened { limit: false }
        );
        for other in [&initial[..], &[0x40; 60][..], &[]] {
            assert_eq!(
                try_handshake_secrets(QUIC_V1, other, candidates(), 8),
                HandshakeTrial::NoHandshakePacket
            );
        }
    }

    /// A server Initial packet (its contents do not matter here).
    fn opaque_initial_from_server() -> Vec<u8> {
        Sealer::initial_server(QUIC_V1, &ODCID).long(
            QUIC_V1,
            PacketType::Initial,
            &CLIENT_CID,
            &SERVER_CID,
            0,
            1,
            &[1],
        )
    }

    /// A client Initial with a 0-RTT packet and padding in one datagram; the server's
    /// Initial, Handshake and 1-RTT packets in another; the client's Handshake and
    /// 1-RTT packets in a third.
    #[test]
    fn coalesced_long_and_short_packets() {
        let suite = Suite::Aes128Gcm;
        let s = secrets(suite);
        let mut r = reader(&s);
        let early = Sealer::new(suite, QUIC_V1, s.client_early_traffic.as_deref().unwrap());
        let client = Sealer::new(suite, QUIC_V1, s.client_traffic_0.as_deref().unwrap());
        let server = Sealer::new(suite, QUIC_V1, s.server_traffic_0.as_deref().unwrap());
        let hello = client_hello("h3.example", &["h3"], 0);
        let mut d1 = protect_initial(
            QUIC_V1,
            &ODCID,
            &CLIENT_CID,
            0,
            1,
            &crypto_frame(0, &hello),
            0,
        );
        d1.extend(early.long(
            QUIC_V1,
            PacketType::ZeroRtt,
            &ODCID,
            &CLIENT_CID,
            1,
            1,
            &stream(0, 0, b"GET /early", false),
        ));
        d1.extend([0; 40]);
        let mut d2 = server_initial(QUIC_V1, 0x1301);
        d2.extend(opaque_handshake(QUIC_V1, false));
        d2.extend(server.short(&CLIENT_CID, 0, 1, false, &stream(3, 0, b"settings", false)));
        let mut d3 = opaque_handshake(QUIC_V1, true);
        d3.extend(client.short(&SERVER_CID, 2, 1, false, &stream(0, 10, b"?x=1", true)));
        let mut events = push(&mut r, &d1, true);
        events.extend(push(&mut r, &d2, false));
        events.extend(push(&mut r, &d3, true));
        assert_eq!(
            events,
            vec![
                data_event(0, true, 0, b"GET /early", false),
                data_event(3, false, 0, b"settings", false),
                data_event(0, true, 10, b"?x=1", true),
            ]
        );
        assert_eq!(r.packets_decrypted(), 3);
        assert_eq!(r.client.dcid_lens, 1 << SERVER_CID.len());
        assert!(r.take_anomalies().is_empty());
    }

    /// The server's Initial, its Handshake packet with the certificate and a 1-RTT
    /// packet in one datagram: the certificate is handed out once, beside the
    /// stream data; a certificate that does not parse, and Handshake packets the
    /// logged secret does not open, are anomalies.
    #[test]
    fn the_server_certificate_comes_from_its_handshake_packets() {
        use crate::net::tls::test_hellos::handshake_message;
        use crate::net::tls_certificate::tests::{certificate, message13};
        let suite = Suite::Aes128Gcm;
        let mut s = secrets(suite);
        s.server_handshake_traffic = Some(secret(4, 32));
        let handshake = Sealer::new(suite, QUIC_V1, &secret(4, 32));
        let server = Sealer::new(suite, QUIC_V1, s.server_traffic_0.as_deref().unwrap());
        let flight = |leaf: &[u8]| {
            let mut m = handshake_message(8, &[0, 0]);
            m.extend(handshake_message(11, &message13(&[leaf])));
            handshake.long(
                QUIC_V1,
                PacketType::Handshake,
                &CLIENT_CID,
                &SERVER_CID,
                0,
                1,
                &crypto_frame(0, &m),
            )
        };
        let leaf = certificate(&["sdk.tracker.example"]);
        let mut d = server_initial(QUIC_V1, 0x1301);
        d.extend(flight(&leaf));
        d.extend(server.short(&CLIENT_CID, 0, 1, false, &stream(3, 0, b"settings", false)));
        let mut r = reader(&s);
        let events = push(&mut r, &d, false);
        assert_eq!(events, vec![data_event(3, false, 0, b"settings", false)]);
        let cert = r.take_server_certificate().expect("the certificate");
        assert_eq!(cert.host.as_deref(), Some("sdk.tracker.example"));
        assert_eq!(r.take_server_certificate(), None);
        assert!(r.take_anomalies().is_empty());
        // Retransmitted, it is not read again.
        let _ = push(&mut r, &flight(&leaf), false);
        assert_eq!(r.take_server_certificate(), None);

        let mut r = reader(&s);
        let _ = push(&mut r, &flight(b"not a certificate"), false);
        assert_eq!(r.take_server_certificate(), None);
        assert_eq!(kinds(&mut r), vec!["tls-malformed"]);

        let mut wrong = s.clone();
        wrong.server_handshake_traffic = Some(secret(5, 32));
        let mut r = reader(&wrong);
        for _ in 0..8 {
            let _ = push(&mut r, &flight(&leaf), false);
        }
        assert_eq!(r.take_server_certificate(), None);
        assert_eq!(kinds(&mut r), vec!["quic-decrypt-failed"]);
        // Handshake packets count neither as decrypted nor as failed 1-RTT packets.
        assert_eq!((r.packets_decrypted(), r.packets_failed()), (0, 0));
    }

    #[test]
    fn unknown_server_cid_length_is_discovered() {
        let suite = Suite::ChaCha20Poly1305;
        let s = secrets(suite);
        let mut r = reader(&s);
        let client = Sealer::new(suite, QUIC_V1, s.client_traffic_0.as_deref().unwrap());
        let server = Sealer::new(suite, QUIC_V1, s.server_traffic_0.as_deref().unwrap());
        let cid11 = [0x77u8; 11];
        let e1 = push(
            &mut r,
            &client.short(&cid11, 0, 1, false, &stream(0, 0, b"ab", false)),
            true,
        );
        assert_eq!(e1, vec![data_event(0, true, 0, b"ab", false)]);
        assert_eq!(r.client.dcid_lens, 1 << 11);
        assert_eq!(r.cipher_suite(), Some(0x1303));
        // The server offers a 9-byte ID; the client moves to it.
        let mut ncid = vec![0x18, 1, 0, 9];
        ncid.extend([0x99; 9]);
        ncid.extend([0xee; 16]);
        let _ = push(
            &mut r,
            &server.short(&CLIENT_CID, 0, 1, false, &ncid),
            false,
        );
        let cid9 = [0x99u8; 9];
        let e2 = push(
            &mut r,
            &client.short(&cid9, 1, 1, false, &stream(0, 2, b"cd", true)),
            true,
        );
        assert_eq!(e2, vec![data_event(0, true, 2, b"cd", true)]);
        assert_eq!(r.client.dcid_lens, 1 << 11 | 1 << 9);
        // A length never learned is no longer tried once packets opened.
        let cid5 = [0x55u8; 5];
        let _ = push(&mut r, &client.short(&cid5, 2, 1, false, &[0x01]), true);
        assert_eq!(r.packets_failed(), 1);
        assert_eq!(kinds(&mut r), vec!["quic-decrypt-failed"]);
    }

    #[test]
    fn zero_rtt_shares_the_packet_number_space_with_1rtt() {
        let suite = Suite::Aes256Gcm;
        let s = secrets(suite);
        let mut r = reader(&s);
        let early = Sealer::new(suite, QUIC_V1, s.client_early_traffic.as_deref().unwrap());
        let client = Sealer::new(suite, QUIC_V1, s.client_traffic_0.as_deref().unwrap());
        let zrtt = |pn: u64, f: &[u8]| {
            early.long(QUIC_V1, PacketType::ZeroRtt, &ODCID, &CLIENT_CID, pn, 2, f)
        };
        let mut events = push(&mut r, &zrtt(0, &stream(0, 0, b"GET /a", false)), true);
        events.extend(push(
            &mut r,
            &zrtt(1, &stream(0, 6, b" HTTP/3", false)),
            true,
        ));
        let _ = push(&mut r, &server_initial(QUIC_V1, suite.id()), false);
        events.extend(push(
            &mut r,
            &client.short(&SERVER_CID, 2, 1, false, &stream(0, 13, b"!", true)),
            true,
        ));
        assert_eq!(
            stream_bytes(&events, 0, true),
            (b"GET /a HTTP/3!".to_vec(), true)
        );
        assert_eq!(r.client.largest_pn, Some(2));
        assert_eq!(r.packets_decrypted(), 3);
        assert!(r.take_anomalies().is_empty());
    }

    #[test]
    fn wrong_keys_are_anomalies_then_the_direction_is_given_up() {
        let suite = Suite::Aes128Gcm;
        let s = secrets(suite);
        let limits = QuicConnLimits {
            max_failed_datagrams: 3,
            ..QuicConnLimits::default()
        };
        let mut r = reader_with(QUIC_V1, &s, limits);
        let _ = push(&mut r, &server_initial(QUIC_V1, 0x1301), false);
        let wrong = Sealer::new(suite, QUIC_V1, &secret(99, 32));
        let right = Sealer::new(suite, QUIC_V1, s.server_traffic_0.as_deref().unwrap());
        let bad = wrong.short(&CLIENT_CID, 0, 1, false, &stream(1, 0, b"secret", true));
        let _ = push(&mut r, &bad, false);
        assert_eq!(r.status(), QuicStatus::AuthenticationFailed);
        assert_eq!(kinds(&mut r), vec!["quic-decrypt-failed"]);
        // A datagram that opens resets the count.
        let good = right.short(&CLIENT_CID, 1, 1, false, &[0x01]);
        let _ = push(&mut r, &good, false);
        assert_eq!(r.status(), QuicStatus::Decrypting);
        for _ in 0..3 {
            let _ = push(&mut r, &bad, false);
        }
        let k = kinds(&mut r);
        assert_eq!(
            k.last().map(String::as_str),
            Some("quic-decrypt-gave-up"),
            "{k:?}"
        );
        let good = right.short(&CLIENT_CID, 2, 1, false, &stream(1, 0, b"late", true));
        assert!(push(&mut r, &good, false).is_empty());
        assert_eq!(r.packets_failed(), 4);
        // Anomalies of a kind stop at the bound.
        let mut r = reader(&s);
        for _ in 0..20 {
            let _ = push(&mut r, &bad, false);
        }
        assert_eq!(kinds(&mut r).len(), MAX_ANOMALIES_PER_KIND);
        assert_eq!(r.packets_failed(), 20);
    }

    /// Datagrams of a connection: a lone 1-RTT packet, and coalesced packets.
    fn sample_datagrams() -> Vec<(Vec<u8>, bool)> {
        let suite = Suite::Aes128Gcm;
        let s = secrets(suite);
        let early = Sealer::new(suite, QUIC_V1, s.client_early_traffic.as_deref().unwrap());
        let client = Sealer::new(suite, QUIC_V1, s.client_traffic_0.as_deref().unwrap());
        let server = Sealer::new(suite, QUIC_V1, s.server_traffic_0.as_deref().unwrap());
        let mut frames = stream(0, 0, b"GET /index.html", true);
        frames.extend([0x02, 5, 0, 1, 0, 1, 0]);
        let lone = server.short(&CLIENT_CID, 0, 2, false, &frames);
        let mut server_flight = server_initial(QUIC_V1, 0x1301);
        server_flight.extend(opaque_handshake(QUIC_V1, false));
        server_flight.extend(server.short(
            &CLIENT_CID,
            1,
            1,
            false,
            &stream(3, 0, b"\x00\x04", false),
        ));
        let mut client_flight = early.long(
            QUIC_V1,
            PacketType::ZeroRtt,
            &ODCID,
            &CLIENT_CID,
            0,
            1,
            &stream(0, 0, b"GET /", false),
        );
        client_flight.extend(client.short(&SERVER_CID, 1, 1, false, &stream(0, 5, b"x", true)));
        vec![(lone, false), (server_flight, false), (client_flight, true)]
    }

    #[test]
    fn every_truncation_and_byte_flip_is_harmless() {
        let s = secrets(Suite::Aes128Gcm);
        for (datagram, from_client) in sample_datagrams() {
            let mut whole = reader(&s);
            let full = push(&mut whole, &datagram, from_client);
            assert!(!full.is_empty());
            for n in 0..datagram.len() {
                let mut r = reader(&s);
                let events = push(&mut r, &datagram[..n], from_client);
                // Whole packets before the cut may open; nothing beyond them appears.
                assert!(full.starts_with(&events), "cut at {n}: {events:?}");
            }
            for i in 0..datagram.len() {
                for flip in [0x01, 0x80] {
                    let mut d = datagram.clone();
                    d[i] ^= flip;
                    let mut r = reader(&s);
                    let events = push(&mut r, &d, from_client);
                    // Every byte of a packet we open is authenticated; a flip may only
                    // lose packets (or touch the unread Handshake packet).
                    assert!(
                        events.iter().all(|e| full.contains(e)),
                        "flip {flip:#x} at {i}: {events:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn garbage_datagrams_do_not_panic() {
        let s = secrets(Suite::Aes128Gcm);
        let mut r = reader(&s);
        let cases: Vec<Vec<u8>> = vec![
            vec![],
            vec![0x40],
            vec![0x00; 30],
            vec![0xff; 30],
            // Version Negotiation, unknown version, Retry cut short.
            vec![0x80, 0, 0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 1],
            vec![0xc0, 0xff, 0, 0, 0x1d, 0, 0, 0],
            vec![0xf0, 0, 0, 0, 1, 4, 1, 2],
            vec![0xf0, 0, 0, 0, 1, 0, 30, 1],
            // A 0-RTT header whose length runs past the datagram.
            vec![0xd0, 0, 0, 0, 1, 0, 0, 0x7f, 0xff],
            // A 0-RTT packet with a zero length.
            vec![0xd0, 0, 0, 0, 1, 0, 0, 0],
        ];
        for d in &cases {
            for from_client in [true, false] {
                assert!(push(&mut r, d, from_client).is_empty(), "{d:?}");
            }
        }
        // Every packet had at least one failure or nothing to open; no panic is the point.
        assert_eq!(r.packets_decrypted(), 0);
    }

    #[test]
    fn statuses() {
        // No secrets at all.
        let mut r = reader(&Secrets::default());
        assert_eq!(r.status(), QuicStatus::NoKey);
        let s = secrets(Suite::Aes128Gcm);
        let server = Sealer::new(
            Suite::Aes128Gcm,
            QUIC_V1,
            s.server_traffic_0.as_deref().unwrap(),
        );
        let p = server.short(&CLIENT_CID, 0, 1, false, &stream(1, 0, b"x", false));
        assert!(push(&mut r, &p, false).is_empty());
        assert_eq!(r.status(), QuicStatus::NoKey);
        // Only the client's secret, and a server packet.
        let only_client = Secrets {
            client_traffic_0: s.client_traffic_0.clone(),
            ..Secrets::default()
        };
        let mut r = reader(&only_client);
        assert_eq!(r.status(), QuicStatus::Pending);
        let _ = push(&mut r, &p, false);
        assert_eq!(r.status(), QuicStatus::NoKey);
        // A suite we do not read: nothing is tried.
        let mut r = reader(&s);
        let _ = push(&mut r, &server_initial(QUIC_V1, 0x1304), false);
        let _ = push(&mut r, &p, false);
        assert_eq!(r.status(), QuicStatus::UnsupportedSuite(0x1304));
        assert_eq!(r.packets_failed(), 0);
        // A secret of no suite's length.
        let mut r = reader(&Secrets {
            server_traffic_0: Some(vec![1; 40]),
            ..Secrets::default()
        });
        let _ = push(&mut r, &p, false);
        assert_eq!(r.status(), QuicStatus::NoKey);
        assert_eq!(kinds(&mut r), vec!["quic-secret-length"]);
        // A version we do not read.
        let mut r = reader_with(0xff00_001d, &s, QuicConnLimits::default());
        assert!(push(&mut r, &p, false).is_empty());
        assert_eq!(r.status(), QuicStatus::UnsupportedVersion(0xff00_001d));
        assert_eq!(
            QuicStatus::UnsupportedSuite(0x1304).to_string(),
            "unsupported cipher suite 0x1304"
        );
    }

    /// The UDP payloads of a classic pcap of Ethernet/IPv4/UDP frames, each with
    /// whether the first datagram's sender (the client) sent it.
    fn pcap_datagrams(pcap: &[u8]) -> Vec<(Vec<u8>, bool)> {
        let mut out = Vec::new();
        let mut client = None;
        let mut pos = 24;
        while pos + 16 <= pcap.len() {
            let len = u32::from_le_bytes(pcap[pos + 8..pos + 12].try_into().unwrap()) as usize;
            let frame = &pcap[pos + 16..pos + 16 + len];
            pos += 16 + len;
            let ip = &frame[14..];
            assert_eq!(
                (frame[12], frame[13], ip[9]),
                (0x08, 0x00, 17),
                "Ethernet/IPv4/UDP"
            );
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let src = (&ip[12..16], &ip[ihl..ihl + 2]);
            let udp_len = usize::from(u16::from_be_bytes([ip[ihl + 4], ip[ihl + 5]]));
            let payload = ip[ihl + 8..ihl + udp_len].to_vec();
            let from_client = *client.get_or_insert(src) == src;
            out.push((payload, from_client));
        }
        out
    }

    /// Reads one of the aioquic captures of `captures/quic` (see its make_h3.py) the
    /// way the flow table will: the Initial reader for the ClientHello, the key log
    /// for its random, then every datagram through a connection reader.
    fn read_capture(name: &str) -> Option<(QuicConnReader, Vec<QuicEvent>)> {
        use crate::net::keylog::KeyLog;
        use crate::net::quic::QuicInitialReader;
        use crate::net::tls::HelloPoll;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/quic");
        let pcap = std::fs::read(dir.join(format!("{name}.pcap"))).ok()?;
        let keylog = std::fs::read(dir.join(format!("{name}.keylog"))).ok()?;
        let datagrams = pcap_datagrams(&pcap);
        let mut initial = QuicInitialReader::new();
        let hello = datagrams
            .iter()
            .filter(|(_, c)| *c)
            .find_map(|(d, _)| match initial.push(d) {
                HelloPoll::Done(h) => Some(h),
                HelloPoll::NeedMore => None,
                other => panic!("{name}: {other:?}"),
            })
            .unwrap();
        let mut log = KeyLog::new();
        log.add(&keylog);
        let mut r = QuicConnReader::new(
            initial.version().unwrap(),
            initial.original_dcid().unwrap(),
            initial.client_scid().unwrap(),
            log.secrets(&hello.random).unwrap(),
            QuicConnLimits::default(),
        );
        let mut events = Vec::new();
        for (d, from_client) in &datagrams {
            r.push(d, *from_client, &mut events);
        }
        Some((r, events))
    }

    /// What `expected.json` says of the captures, checked at the QUIC level: suite,
    /// key updates, and every exchange's streams complete, with the identifiers its
    /// request body carries in clear.
    #[test]
    fn aioquic_captures_if_present() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/quic");
        let Ok(json) = std::fs::read(dir.join("expected.json")) else {
            eprintln!("captures/quic/expected.json absent: skipped");
            return;
        };
        let expected: serde_json::Value = serde_json::from_slice(&json).unwrap();
        for (name, suite) in [("h3", 0x1301), ("h3_chacha", 0x1303), ("h3_aes256", 0x1302)] {
            let Some((mut r, events)) = read_capture(name) else {
                eprintln!("captures/quic/{name}.pcap absent: skipped");
                continue;
            };
            let e = &expected["captures"][name];
            assert_eq!(r.status(), QuicStatus::Decrypting, "{name}");
            assert_eq!(r.cipher_suite(), Some(suite), "{name}");
            assert_eq!(r.packets_failed(), 0, "{name}");
            assert_eq!(
                r.key_updates(),
                e["key_updates"].as_array().unwrap().len() as u64,
                "{name}"
            );
            assert!(r.take_anomalies().is_empty(), "{name}");
            for x in e["exchanges"].as_array().unwrap() {
                let id = x["stream_id"].as_u64().unwrap();
                let (request, fin) = stream_bytes(&events, id, true);
                assert!(fin, "{name} stream {id}: request ends");
                let (response, fin) = stream_bytes(&events, id, false);
                assert!(fin, "{name} stream {id}: response ends");
                let body = x["request_body_length"].as_u64().unwrap() as usize;
                assert!(request.len() > body, "{name} stream {id}");
                let response_body = x["response_body_length"].as_u64().unwrap() as usize;
                assert!(response.len() > response_body, "{name} stream {id}");
                for ident in x["identifiers"].as_array().unwrap() {
                    let value = ident["value"].as_str().unwrap();
                    if ident["where"].as_str().unwrap().starts_with("body:") {
                        let found = request.windows(value.len()).any(|w| w == value.as_bytes());
                        assert!(found, "{name} stream {id}: {value} in the request body");
                    }
                }
            }
            // The control and QPACK encoder streams of both sides.
            for (side, from_client) in [("client", true), ("server", false)] {
                let control = e["uni_streams"][side]["control"].as_u64().unwrap();
                assert!(!stream_bytes(&events, control, from_client).0.is_empty());
                let encoder = e["uni_streams"][side]["qpack_encoder"].as_u64().unwrap();
                let bytes = e["qpack_encoder_stream_bytes"][side].as_u64().unwrap();
                let got = stream_bytes(&events, encoder, from_client).0;
                // The stream type (0x02, RFC 9204 §4.2), then the instructions.
                assert_eq!(got.first(), Some(&0x02), "{name} {side}");
                assert_eq!(got.len() as u64, 1 + bytes, "{name} {side} encoder stream");
            }
            assert!(events.iter().any(|e| matches!(
                e,
                QuicEvent::Close {
                    from_client: true,
                    ..
                }
            )));
        }
    }

    proptest! {
        /// Arbitrary datagrams, either way, never panic.
        #[test]
        fn arbitrary_datagrams_do_not_panic(
            datagrams in proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 0..200), any::<bool>()),
                0..8,
            )
        ) {
            let mut r = reader(&secrets(Suite::Aes128Gcm));
            for (d, from_client) in datagrams {
                let _ = push(&mut r, &d, from_client);
            }
            r.flush(&mut Vec::new());
        }
    }
}
