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
//! - **Handshake packets** are skipped: with logged secrets their CRYPTO data
//!   (certificates, Finished) is not needed. So are client Initial packets (read by
//!   `quic`), Version Negotiation and Retry packets (nothing can follow them in a
//!   datagram), and packets of versions other than QUIC v1 and v2.
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
//! (below a per-type watermark, stream IDs being allocated in order). At most
//! [`MAX_ANOMALIES_PER_KIND`] anomalies of each kind are reported over a connection's
//! life. Each packet costs a bounded number of trial decryptions (connection ID
//! lengths × candidate suites × key phases). The reader never panics on traffic.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use ring::aead::{self, quic as hp, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hkdf;

use crate::exchange::Anomaly;
use crate::net::keylog::Secrets;
use crate::net::quic::{
    self, decode_pn, expand_label, open_packet, parse_long_header, read_frames, CryptoStream, Cur,
    InitialKeys, LongHeader, PacketError, PacketType, QUIC_V1, QUIC_V2,
};
use crate::net::tls;

/// Anomalies of one kind reported over a connection's life; more are dropped.
pub const MAX_ANOMALIES_PER_KIND: usize = 4;
/// Longest connection ID (RFC 9000 §17.2).
const MAX_CID_LEN: usize = 20;
/// Every connection ID length, as a bit set (bit n: n bytes).
const ALL_CID_LENS: u32 = (1 << (MAX_CID_LEN + 1)) - 1;
/// Bytes of ciphertext sampled for header protection (RFC 9001 §5.4.2).
const SAMPLE_LEN: usize = 16;
/// Stream offsets and final sizes stay below 2^62 (RFC 9000 §4.5).
const MAX_STREAM_END: u64 = 1 << 62;
/// Server Initial packets opened in search of the ServerHello before giving up.
const MAX_SERVER_INITIALS: usize = 16;
/// DCIDs the server's Initial keys may derive from: the original and Retry ones.
const MAX_INITIAL_DCIDS: usize = 3;
/// TLS handshake message type of a ServerHello.
const SERVER_HELLO: u8 = 2;
/// Decryption buffer capacity kept between datagrams; a bigger one is freed.
const SCRATCH_KEPT: usize = 4096;

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

/// The TLS 1.3 cipher suites QUIC uses (RFC 9001 §5.3; AES-CCM is allowed but rare,
/// and ring lacks it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Suite {
    Aes128Gcm,
    Aes256Gcm,
    ChaCha20Poly1305,
}

impl Suite {
    fn from_id(id: u16) -> Option<Suite> {
        match id {
            0x1301 => Some(Suite::Aes128Gcm),
            0x1302 => Some(Suite::Aes256Gcm),
            0x1303 => Some(Suite::ChaCha20Poly1305),
            _ => None,
        }
    }

    fn id(self) -> u16 {
        match self {
            Suite::Aes128Gcm => 0x1301,
            Suite::Aes256Gcm => 0x1302,
            Suite::ChaCha20Poly1305 => 0x1303,
        }
    }

    fn hkdf(self) -> hkdf::Algorithm {
        match self {
            Suite::Aes256Gcm => hkdf::HKDF_SHA384,
            Suite::Aes128Gcm | Suite::ChaCha20Poly1305 => hkdf::HKDF_SHA256,
        }
    }

    fn aead(self) -> &'static aead::Algorithm {
        match self {
            Suite::Aes128Gcm => &aead::AES_128_GCM,
            Suite::Aes256Gcm => &aead::AES_256_GCM,
            Suite::ChaCha20Poly1305 => &aead::CHACHA20_POLY1305,
        }
    }

    fn header_protection(self) -> &'static hp::Algorithm {
        match self {
            Suite::Aes128Gcm => &hp::AES_128,
            Suite::Aes256Gcm => &hp::AES_256,
            Suite::ChaCha20Poly1305 => &hp::CHACHA20,
        }
    }

    /// Bytes of the packet key and of the header protection key.
    fn key_len(self) -> usize {
        match self {
            Suite::Aes128Gcm => 16,
            Suite::Aes256Gcm | Suite::ChaCha20Poly1305 => 32,
        }
    }

    /// The suites whose hash makes secrets of `len` bytes, likeliest first.
    fn for_secret_len(len: usize) -> &'static [Suite] {
        match len {
            32 => &[Suite::Aes128Gcm, Suite::ChaCha20Poly1305],
            48 => &[Suite::Aes256Gcm],
            _ => &[],
        }
    }
}

/// `first` (when given), then the other suites a secret of `len` bytes may belong to.
fn candidate_suites(first: Option<Suite>, len: usize) -> Vec<Suite> {
    let mut suites: Vec<Suite> = first.into_iter().collect();
    suites.extend(
        Suite::for_secret_len(len)
            .iter()
            .filter(|s| Some(**s) != first),
    );
    suites
}

/// The HKDF labels of a QUIC version's packet protection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Labels {
    key: &'static [u8],
    iv: &'static [u8],
    hp: &'static [u8],
    ku: &'static [u8],
}

impl Labels {
    fn of(version: u32) -> Option<Labels> {
        match version {
            QUIC_V1 => Some(Labels {
                key: b"quic key",
                iv: b"quic iv",
                hp: b"quic hp",
                ku: b"quic ku",
            }),
            // RFC 9369 §3.3.2.
            QUIC_V2 => Some(Labels {
                key: b"quicv2 key",
                iv: b"quicv2 iv",
                hp: b"quicv2 hp",
                ku: b"quicv2 ku",
            }),
            _ => None,
        }
    }
}

/// The key, IV and header protection key a traffic secret gives (RFC 9001 §5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyMaterial {
    key: Vec<u8>,
    iv: [u8; 12],
    hp: Vec<u8>,
}

impl KeyMaterial {
    fn new(suite: Suite, labels: Labels, secret: &[u8]) -> Self {
        let prk = hkdf::Prk::new_less_safe(suite.hkdf(), secret);
        let mut m = KeyMaterial {
            key: vec![0; suite.key_len()],
            iv: [0; 12],
            hp: vec![0; suite.key_len()],
        };
        expand_label(&prk, labels.key, &mut m.key);
        expand_label(&prk, labels.iv, &mut m.iv);
        expand_label(&prk, labels.hp, &mut m.hp);
        m
    }
}

/// The secret of the next key phase (RFC 9001 §6.1).
fn next_secret(suite: Suite, labels: Labels, secret: &[u8]) -> Vec<u8> {
    let prk = hkdf::Prk::new_less_safe(suite.hkdf(), secret);
    let mut next = vec![0; secret.len()];
    expand_label(&prk, labels.ku, &mut next);
    next
}

/// A packet protection key and its IV.
struct PacketKey {
    aead: LessSafeKey,
    iv: [u8; 12],
}

impl PacketKey {
    fn new(suite: Suite, m: &KeyMaterial) -> Option<Self> {
        Some(PacketKey {
            aead: LessSafeKey::new(UnboundKey::new(suite.aead(), &m.key).ok()?),
            iv: m.iv,
        })
    }

    fn nonce(&self, pn: u64) -> Nonce {
        let mut nonce = self.iv;
        for (n, p) in nonce[4..].iter_mut().zip(pn.to_be_bytes()) {
            *n ^= p;
        }
        Nonce::assume_unique_for_key(nonce)
    }
}

/// A packet header with its protection removed (but not yet written back).
#[derive(Debug, Clone, Copy)]
struct Unmasked {
    first: u8,
    pn_offset: usize,
    pn_len: usize,
    truncated_pn: u64,
}

impl Unmasked {
    /// The key phase bit of a short header.
    fn key_phase(&self) -> bool {
        self.first & 0x04 != 0
    }
}

/// Removes header protection (RFC 9001 §5.4) from the packet number at `pn_offset`;
/// `None` when the packet is too short for the sample.
fn unmask(
    key: &hp::HeaderProtectionKey,
    packet: &[u8],
    pn_offset: usize,
    long: bool,
) -> Option<Unmasked> {
    // The sample starts 4 bytes after the packet number's start, whatever its length.
    let sample = packet.get(pn_offset + 4..pn_offset + 4 + SAMPLE_LEN)?;
    let mask = key.new_mask(sample).ok()?;
    let first = packet.first()? ^ (mask[0] & if long { 0x0f } else { 0x1f });
    let pn_len = usize::from(first & 0x03) + 1;
    let pn_bytes = packet.get(pn_offset..pn_offset + pn_len)?;
    let truncated_pn = pn_bytes
        .iter()
        .zip(&mask[1..])
        .fold(0u64, |v, (b, m)| v << 8 | u64::from(b ^ m));
    Some(Unmasked {
        first,
        pn_offset,
        pn_len,
        truncated_pn,
    })
}

/// Decrypts `packet` (header unmasked as `h`, packet number `pn`) with `key` into
/// `scratch`; the plaintext payload's range there.
fn open_payload(
    key: &PacketKey,
    packet: &[u8],
    h: &Unmasked,
    pn: u64,
    scratch: &mut Vec<u8>,
) -> Option<Range<usize>> {
    // A failed open leaves the buffer unspecified: every trial starts from a copy.
    scratch.clear();
    scratch.extend_from_slice(packet);
    *scratch.first_mut()? = h.first;
    let body_start = h.pn_offset + h.pn_len;
    let pn_bytes = h.truncated_pn.to_be_bytes();
    scratch
        .get_mut(h.pn_offset..body_start)?
        .copy_from_slice(&pn_bytes[8 - h.pn_len..]);
    let (head, body) = scratch.split_at_mut(body_start);
    let plain = key
        .aead
        .open_in_place(key.nonce(pn), Aad::from(&*head), body)
        .ok()?;
    Some(body_start..body_start + plain.len())
}

/// A packet that opened: its number and its plaintext payload's range in the scratch.
struct Opened {
    pn: u64,
    payload: Range<usize>,
    suite: Suite,
}

/// One key phase's packet key and the secret it came from (for the next update).
struct Generation {
    secret: Vec<u8>,
    key: PacketKey,
}

/// The 1-RTT keys of one direction under one suite, across key updates.
struct AppKeys {
    suite: Suite,
    labels: Labels,
    hp: hp::HeaderProtectionKey,
    current: Generation,
    /// The key phase bit of `current`.
    phase: bool,
    /// The first packet number opened with `current`, once a key update made it
    /// current: packets below it with the other phase bit belong to `previous`.
    current_since: Option<u64>,
    previous: Option<PacketKey>,
    /// The next phase's keys, derived on the first packet that needs them.
    next: Option<Generation>,
    updates: u64,
}

impl AppKeys {
    fn new(suite: Suite, labels: Labels, secret: &[u8]) -> Option<Self> {
        let m = KeyMaterial::new(suite, labels, secret);
        Some(AppKeys {
            suite,
            labels,
            hp: hp::HeaderProtectionKey::new(suite.header_protection(), &m.hp).ok()?,
            current: Generation {
                secret: secret.to_vec(),
                key: PacketKey::new(suite, &m)?,
            },
            phase: false,
            current_since: None,
            previous: None,
            next: None,
            updates: 0,
        })
    }

    fn next_generation(&self) -> Option<Generation> {
        let secret = next_secret(self.suite, self.labels, &self.current.secret);
        let key = PacketKey::new(
            self.suite,
            &KeyMaterial::new(self.suite, self.labels, &secret),
        )?;
        Some(Generation { secret, key })
    }

    /// Opens a short-header packet whose DCID is `dcid_len` bytes; a packet of the
    /// next key phase that authenticates makes that phase current.
    fn open(
        &mut self,
        packet: &[u8],
        dcid_len: usize,
        largest: Option<u64>,
        scratch: &mut Vec<u8>,
    ) -> Option<Opened> {
        let h = unmask(&self.hp, packet, 1 + dcid_len, false)?;
        let pn = decode_pn(largest, h.truncated_pn, h.pn_len);
        let suite = self.suite;
        let opened = move |payload| Opened { pn, payload, suite };
        if h.key_phase() == self.phase {
            return open_payload(&self.current.key, packet, &h, pn, scratch).map(opened);
        }
        let reordered = self.current_since.is_some_and(|since| pn < since);
        if !reordered {
            if self.next.is_none() {
                self.next = self.next_generation();
            }
            let next = self.next.as_ref()?;
            if let Some(payload) = open_payload(&next.key, packet, &h, pn, scratch) {
                self.rotate(pn);
                return Some(opened(payload));
            }
        }
        // A late packet of the previous phase (also when packet numbers do not tell).
        let previous = self.previous.as_ref()?;
        open_payload(previous, packet, &h, pn, scratch).map(opened)
    }

    /// The next phase authenticated packet `pn`: it becomes current.
    fn rotate(&mut self, pn: u64) {
        if let Some(next) = self.next.take() {
            let old = std::mem::replace(&mut self.current, next);
            self.previous = Some(old.key);
            self.phase = !self.phase;
            self.current_since = Some(pn);
            self.updates += 1;
        }
    }
}

/// The 0-RTT keys of one candidate suite.
struct EarlyKeys {
    suite: Suite,
    hp: hp::HeaderProtectionKey,
    key: PacketKey,
}

impl EarlyKeys {
    fn new(suite: Suite, labels: Labels, secret: &[u8]) -> Option<Self> {
        let m = KeyMaterial::new(suite, labels, secret);
        Some(EarlyKeys {
            suite,
            hp: hp::HeaderProtectionKey::new(suite.header_protection(), &m.hp).ok()?,
            key: PacketKey::new(suite, &m)?,
        })
    }

    fn open(
        &self,
        h: &LongHeader<'_>,
        packet: &[u8],
        largest: Option<u64>,
        scratch: &mut Vec<u8>,
    ) -> Option<Opened> {
        let u = unmask(&self.hp, packet, h.pn_offset, true)?;
        let pn = decode_pn(largest, u.truncated_pn, u.pn_len);
        let payload = open_payload(&self.key, packet, &u, pn, scratch)?;
        Some(Opened {
            pn,
            payload,
            suite: self.suite,
        })
    }
}

/// The client's 0-RTT state.
#[derive(Default)]
struct Early {
    secret: Option<Vec<u8>>,
    /// Candidate keys, built on the first 0-RTT packet; one once a packet opened.
    keys: Vec<EarlyKeys>,
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

/// What reading the server's Initial packets came to.
enum HelloOutcome {
    NeedMore,
    Hello(tls::ServerHello),
    Failed(String),
}

/// Reads the ServerHello from the server's Initial packets.
struct ServerHelloReader {
    /// DCIDs the server's Initial keys may derive from: the original one, then those
    /// Retry packets gave (tried last first).
    dcids: Vec<Vec<u8>>,
    /// Keys built so far: (version, index in `dcids`, keys).
    keys: Vec<(u32, usize, InitialKeys)>,
    largest_pn: Option<u64>,
    crypto: CryptoStream,
    opened: usize,
    done: bool,
}

impl ServerHelloReader {
    fn new(original_dcid: &[u8]) -> Self {
        ServerHelloReader {
            dcids: vec![original_dcid.to_vec()],
            keys: Vec::new(),
            largest_pn: None,
            crypto: CryptoStream::default(),
            opened: 0,
            done: false,
        }
    }

    /// A Retry's SCID: the DCID of the client's next Initial, the source of new keys.
    fn retry(&mut self, scid: &[u8]) {
        if !self.done
            && self.dcids.len() < MAX_INITIAL_DCIDS
            && !self.dcids.iter().any(|d| d == scid)
        {
            self.dcids.push(scid.to_vec());
        }
    }

    fn push(&mut self, h: &LongHeader<'_>, packet: &[u8], scratch: &mut Vec<u8>) -> HelloOutcome {
        if self.done {
            return HelloOutcome::NeedMore;
        }
        let Some((pn, payload)) = self.open(h, packet, scratch) else {
            return HelloOutcome::NeedMore;
        };
        self.opened += 1;
        self.largest_pn = Some(self.largest_pn.map_or(pn, |l| l.max(pn)));
        let mut refused = None;
        // Malformed frames end the packet; what was read before them still counts.
        let _ = read_frames(&scratch[payload], &mut self.crypto, &mut refused);
        let outcome = match self.server_hello() {
            HelloOutcome::NeedMore if self.opened >= MAX_SERVER_INITIALS => HelloOutcome::Failed(
                format!("no ServerHello in {MAX_SERVER_INITIALS} server Initial packets"),
            ),
            other => other,
        };
        if !matches!(outcome, HelloOutcome::NeedMore) {
            self.done = true;
            self.crypto = CryptoStream::default();
            self.keys = Vec::new();
        }
        outcome
    }

    fn open(
        &mut self,
        h: &LongHeader<'_>,
        packet: &[u8],
        scratch: &mut Vec<u8>,
    ) -> Option<(u64, Range<usize>)> {
        for d in (0..self.dcids.len()).rev() {
            let i = match self.keys.iter().position(|k| k.0 == h.version && k.1 == d) {
                Some(i) => i,
                None => {
                    let keys = InitialKeys::server(h.version, &self.dcids[d])?;
                    self.keys.push((h.version, d, keys));
                    self.keys.len() - 1
                }
            };
            if let Ok(r) = open_packet(&self.keys[i].2, h, packet, self.largest_pn, scratch) {
                return Some(r);
            }
        }
        None
    }

    fn server_hello(&self) -> HelloOutcome {
        let data = self.crypto.contiguous();
        let Some(head) = data.get(..4) else {
            return HelloOutcome::NeedMore;
        };
        if head[0] != SERVER_HELLO {
            return HelloOutcome::Failed(format!(
                "handshake message type {} where a ServerHello was expected",
                head[0]
            ));
        }
        let len = usize::from(head[1]) << 16 | usize::from(head[2]) << 8 | usize::from(head[3]);
        if len > quic::MAX_CRYPTO_BYTES - 4 {
            return HelloOutcome::Failed(format!("ServerHello of {len} bytes"));
        }
        let Some(body) = data.get(4..4 + len) else {
            return HelloOutcome::NeedMore;
        };
        match tls::parse_server_hello(body) {
            Ok(hello) => HelloOutcome::Hello(hello),
            Err(e) => HelloOutcome::Failed(e),
        }
    }
}

/// The SCID of a Retry packet (RFC 9000 §17.2.5), which `parse_long_header` does
/// not return.
fn retry_scid(packet: &[u8]) -> Option<&[u8]> {
    let mut c = Cur::new(packet);
    c.take(5, "first byte and version").ok()?;
    let dcid_len = usize::from(c.u8("DCID length").ok()?);
    c.take(dcid_len, "DCID").ok()?;
    let scid_len = usize::from(c.u8("SCID length").ok()?);
    if scid_len > MAX_CID_LEN {
        return None;
    }
    c.take(scid_len, "SCID").ok()
}

/// One direction of one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct StreamKey {
    id: u64,
    from_client: bool,
}

impl StreamKey {
    /// Whether this side may send on the stream: both sides on a bidirectional one,
    /// only the initiator on a unidirectional one (RFC 9000 §2.1).
    fn may_send(&self) -> bool {
        let unidirectional = self.id & 0x02 != 0;
        let client_initiated = self.id & 0x01 == 0;
        !unidirectional || client_initiated == self.from_client
    }

    /// Index of the (direction, stream type) pair: 8 of them.
    fn class(&self) -> usize {
        usize::from(self.from_client) << 2 | (self.id & 0x03) as usize
    }
}

/// In-order bytes a stream hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Chunk {
    offset: u64,
    data: Vec<u8>,
    fin: bool,
}

/// Why stream data was refused (the frame is dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamError {
    /// Offset plus length at or beyond 2^62.
    TooFar,
    /// A FIN whose final size differs from the one known.
    FinalSizeChanged { known: u64, got: u64 },
    /// Data beyond the known final size.
    BeyondFinalSize { final_size: u64, end: u64 },
    /// A FIN below bytes already received.
    FinalSizeBelowReceived { got: u64, received: u64 },
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            StreamError::TooFar => f.write_str("stream data beyond 2^62 bytes"),
            StreamError::FinalSizeChanged { known, got } => {
                write!(f, "final size {got} after final size {known}")
            }
            StreamError::BeyondFinalSize { final_size, end } => {
                write!(f, "data up to {end} beyond final size {final_size}")
            }
            StreamError::FinalSizeBelowReceived { got, received } => {
                write!(f, "final size {got} below {received} bytes received")
            }
        }
    }
}

/// One direction of one stream put back in order: bytes are handed out as soon as
/// they follow what was handed out; bytes after a hole wait in `held`.
#[derive(Debug, Default)]
struct StreamIn {
    /// Offset of the next byte to hand out: all before it were handed out or given
    /// up as a gap.
    next: u64,
    /// Bytes received beyond `next`, in pieces by offset: disjoint, all starting
    /// after `next` (pieces may touch: see [`put`](Self::put)).
    held: BTreeMap<u64, Vec<u8>>,
    held_bytes: usize,
    final_size: Option<u64>,
    fin_delivered: bool,
    /// When the first hole opened (the connection's frame clock), to choose which
    /// stream gives up a hole first.
    hole_since: Option<u64>,
}

impl StreamIn {
    /// Takes `data` at `offset` (the end of the stream when `fin`); returns the bytes
    /// that are now in order. Bytes already held or handed out are kept.
    fn insert(
        &mut self,
        offset: u64,
        data: &[u8],
        fin: bool,
        now: u64,
    ) -> Result<Option<Chunk>, StreamError> {
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|&e| e < MAX_STREAM_END)
            .ok_or(StreamError::TooFar)?;
        match self.final_size {
            Some(known) if fin && end != known => {
                return Err(StreamError::FinalSizeChanged { known, got: end })
            }
            Some(final_size) if end > final_size => {
                return Err(StreamError::BeyondFinalSize { final_size, end })
            }
            None if fin && end < self.received_end() => {
                return Err(StreamError::FinalSizeBelowReceived {
                    got: end,
                    received: self.received_end(),
                })
            }
            _ => {}
        }
        if fin {
            self.final_size = Some(end);
        }
        if end > self.next {
            // Below `next` the bytes were handed out already: a retransmission.
            let skip = self.next.saturating_sub(offset);
            // skip < data.len() because end > next.
            self.hold(offset + skip, &data[skip as usize..]);
        }
        let chunk = self.drain();
        self.hole_since = if self.held.is_empty() {
            None
        } else {
            self.hole_since.or(Some(now))
        };
        Ok(chunk)
    }

    /// The end of the bytes received so far.
    fn received_end(&self) -> u64 {
        self.held
            .iter()
            .next_back()
            .map_or(self.next, |(&s, d)| s + d.len() as u64)
    }

    /// Keeps the parts of `data` (at `start >= next`) that are not held yet.
    fn hold(&mut self, start: u64, data: &[u8]) {
        let end = start + data.len() as u64;
        let mut pos = start;
        if let Some((&s, d)) = self.held.range(..start).next_back() {
            pos = pos.max(s + d.len() as u64);
        }
        let mut holes = Vec::new();
        for (&s, d) in self.held.range(start..end) {
            if s > pos {
                holes.push(pos..s);
            }
            pos = pos.max(s + d.len() as u64);
        }
        if pos < end {
            holes.push(pos..end);
        }
        for hole in holes {
            // Holes lie within [start, end): their offsets fit `data`.
            let piece = &data[(hole.start - start) as usize..(hole.end - start) as usize];
            self.put(hole.start, piece);
        }
    }

    /// Adds bytes at `start` where nothing is held: appended to the piece that ends
    /// there, if any. Never prepended to the piece after: that would copy it each
    /// time, and bytes arriving backwards would cost quadratic time.
    fn put(&mut self, start: u64, bytes: &[u8]) {
        let before = self
            .held
            .range_mut(..start)
            .next_back()
            .filter(|(&s, d)| s + d.len() as u64 == start);
        match before {
            Some((_, piece)) => piece.extend_from_slice(bytes),
            None => {
                self.held.insert(start, bytes.to_vec());
            }
        }
        self.held_bytes += bytes.len();
    }

    /// Hands out the held bytes at `next`, and the end of the stream once reached.
    fn drain(&mut self) -> Option<Chunk> {
        let offset = self.next;
        let mut data = Vec::new();
        while let Some(piece) = self.held.remove(&self.next) {
            self.held_bytes -= piece.len();
            self.next += piece.len() as u64;
            if data.is_empty() {
                data = piece;
            } else {
                data.extend_from_slice(&piece);
            }
        }
        let fin = !self.fin_delivered && self.final_size == Some(self.next);
        if data.is_empty() && !fin {
            return None;
        }
        self.fin_delivered |= fin;
        Some(Chunk { offset, data, fin })
    }

    /// Gives up the first hole: its range (offset, length) and the bytes after it.
    fn skip_hole(&mut self, now: u64) -> Option<(u64, u64, Option<Chunk>)> {
        let first = *self.held.keys().next()?;
        let gap = (self.next, first - self.next);
        self.next = first;
        let chunk = self.drain();
        self.hole_since = (!self.held.is_empty()).then_some(now);
        Some((gap.0, gap.1, chunk))
    }

    fn is_finished(&self) -> bool {
        self.fin_delivered
    }
}

/// Stream directions that ended: frames for them are retransmissions. Stream IDs of
/// each type are opened in order, so per (direction, type) every ID below a
/// watermark is ended, plus a bounded set of IDs above it.
#[derive(Debug)]
struct ClosedStreams {
    /// Per [`StreamKey::class`]: the lowest ID of that type not known to be ended.
    below: [u64; 8],
    above: BTreeSet<StreamKey>,
}

impl Default for ClosedStreams {
    fn default() -> Self {
        // The lowest ID of each type is its type bits.
        ClosedStreams {
            below: [0, 1, 2, 3, 0, 1, 2, 3],
            above: BTreeSet::new(),
        }
    }
}

impl ClosedStreams {
    fn contains(&self, key: StreamKey) -> bool {
        key.id < self.below[key.class()] || self.above.contains(&key)
    }

    /// Marks `key` ended; beyond `max_above` IDs above the watermarks, the lowest one
    /// raises its watermark (streams below it not seen yet would be dropped: the price
    /// of bounded memory, paid by the oldest).
    fn insert(&mut self, key: StreamKey, max_above: usize) {
        if self.contains(key) {
            return;
        }
        self.above.insert(key);
        self.advance(key.class());
        while self.above.len() > max_above {
            let Some(lowest) = self.above.pop_first() else {
                break;
            };
            let class = lowest.class();
            self.below[class] = self.below[class].max(lowest.id.saturating_add(4));
            self.advance(class);
        }
    }

    /// Moves a watermark over the ended IDs just above it.
    fn advance(&mut self, class: usize) {
        let from_client = class & 0x04 != 0;
        loop {
            let key = StreamKey {
                id: self.below[class],
                from_client,
            };
            if !self.above.remove(&key) {
                break;
            }
            self.below[class] = key.id.saturating_add(4);
        }
        // IDs the watermark passed are no longer needed in the set.
        let below = self.below[class];
        self.above.retain(|k| k.class() != class || k.id >= below);
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

/// Every stream of a connection, both directions, put back in order.
#[derive(Debug, Default)]
struct Streams {
    limits: QuicConnLimits,
    active: BTreeMap<StreamKey, StreamIn>,
    closed: ClosedStreams,
    held_bytes: usize,
    held_ranges: usize,
    /// STREAM frames taken: the age of a hole.
    clock: u64,
}

impl Streams {
    fn data(
        &mut self,
        key: StreamKey,
        offset: u64,
        data: &[u8],
        fin: bool,
        out: &mut Vec<QuicEvent>,
        anomalies: &mut Anomalies,
    ) {
        if !key.may_send() {
            anomalies.note("quic-stream-direction", || {
                format!("data on unidirectional stream {} from its receiver", key.id)
            });
            return;
        }
        let is_new = !self.active.contains_key(&key);
        if is_new {
            if self.closed.contains(key) {
                return;
            }
            if self.active.len() >= self.limits.max_streams {
                anomalies.note("quic-stream-limit", || {
                    format!(
                        "stream {} ignored: {} stream directions tracked already",
                        key.id, self.limits.max_streams
                    )
                });
                return;
            }
        }
        self.clock += 1;
        let now = self.clock;
        let stream = self.active.entry(key).or_default();
        let before = (stream.held_bytes, stream.held.len());
        let result = stream.insert(offset, data, fin, now);
        if result.is_err() && is_new {
            // A refused frame changed nothing: it must not take a stream slot.
            self.active.remove(&key);
        }
        self.account(before, key);
        match result {
            Ok(Some(chunk)) => out.push(stream_event(key, chunk)),
            Ok(None) => {}
            Err(e) => anomalies.note("quic-stream-final-size", || {
                format!("stream {}: {e}; frame dropped", key.id)
            }),
        }
        self.retire_if_done(key);
        self.enforce_limits(out, anomalies);
    }

    fn reset(
        &mut self,
        key: StreamKey,
        error_code: u64,
        out: &mut Vec<QuicEvent>,
        anomalies: &mut Anomalies,
    ) {
        if !key.may_send() {
            anomalies.note("quic-stream-direction", || {
                format!(
                    "RESET_STREAM of unidirectional stream {} from its receiver",
                    key.id
                )
            });
            return;
        }
        match self.active.remove(&key) {
            Some(stream) => self.release(&stream),
            // Already ended (a retransmitted reset, or one after the FIN).
            None if self.closed.contains(key) => return,
            None => {}
        }
        self.closed.insert(key, self.max_closed());
        out.push(QuicEvent::Reset {
            id: key.id,
            from_client: key.from_client,
            error_code,
        });
    }

    /// Updates the connection's totals after `key`'s stream changed from `before`
    /// (held bytes, held ranges).
    fn account(&mut self, before: (usize, usize), key: StreamKey) {
        if let Some(s) = self.active.get(&key) {
            self.held_bytes = self.held_bytes - before.0 + s.held_bytes;
            self.held_ranges = self.held_ranges - before.1 + s.held.len();
        }
    }

    fn release(&mut self, stream: &StreamIn) {
        self.held_bytes -= stream.held_bytes;
        self.held_ranges -= stream.held.len();
    }

    /// Ended stream directions remembered above the watermarks.
    fn max_closed(&self) -> usize {
        self.limits.max_streams.saturating_mul(4).max(64)
    }

    /// A stream direction whose end was handed out is no longer tracked.
    fn retire_if_done(&mut self, key: StreamKey) {
        if self.active.get(&key).is_some_and(StreamIn::is_finished) {
            if let Some(s) = self.active.remove(&key) {
                self.release(&s);
            }
            self.closed.insert(key, self.max_closed());
        }
    }

    /// While over a limit, the stream with the oldest hole gives it up.
    fn enforce_limits(&mut self, out: &mut Vec<QuicEvent>, anomalies: &mut Anomalies) {
        let (max_bytes, max_ranges) = (self.limits.max_buffered, self.limits.max_held_ranges);
        while self.held_bytes > max_bytes || self.held_ranges > max_ranges {
            let Some(key) = self.oldest_hole() else {
                break;
            };
            let (bytes, ranges) = (self.held_bytes, self.held_ranges);
            anomalies.note("quic-stream-buffer-limit", || {
                format!(
                    "{bytes} out-of-order bytes in {ranges} pieces held (limits {max_bytes}, \
                     {max_ranges}): a hole of stream {} given up",
                    key.id
                )
            });
            if !self.skip_hole(key, out) {
                break;
            }
            self.retire_if_done(key);
        }
    }

    fn oldest_hole(&self) -> Option<StreamKey> {
        self.active
            .iter()
            .filter(|(_, s)| !s.held.is_empty())
            .min_by_key(|(k, s)| (s.hole_since, **k))
            .map(|(k, _)| *k)
    }

    /// Gives up `key`'s first hole; false when it has none.
    fn skip_hole(&mut self, key: StreamKey, out: &mut Vec<QuicEvent>) -> bool {
        let now = self.clock;
        let Some(stream) = self.active.get_mut(&key) else {
            return false;
        };
        let before = (stream.held_bytes, stream.held.len());
        let Some((offset, len, chunk)) = stream.skip_hole(now) else {
            return false;
        };
        self.account(before, key);
        out.push(QuicEvent::Gap {
            id: key.id,
            from_client: key.from_client,
            offset,
            len,
        });
        if let Some(chunk) = chunk {
            out.push(stream_event(key, chunk));
        }
        true
    }

    /// Hands out everything held, gaps included (the flow ended).
    fn flush(&mut self, out: &mut Vec<QuicEvent>) {
        let keys: Vec<StreamKey> = self
            .active
            .iter()
            .filter(|(_, s)| !s.held.is_empty())
            .map(|(k, _)| *k)
            .collect();
        for key in keys {
            while self.skip_hole(key, out) {}
            self.retire_if_done(key);
        }
    }
}

fn stream_event(key: StreamKey, chunk: Chunk) -> QuicEvent {
    QuicEvent::Stream {
        id: key.id,
        from_client: key.from_client,
        offset: chunk.offset,
        data: chunk.data,
        fin: chunk.fin,
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
            client,
            server,
            early: Early {
                secret: secrets.client_early_traffic.clone(),
                ..Early::default()
            },
            streams: Streams {
                limits: limits.clone(),
                ..Streams::default()
            },
            limits,
            anomalies: Anomalies::default(),
            decrypted: 0,
            scratch: Vec::new(),
        }
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
            (PacketType::Handshake, false) => self.client.learn_dcid_len(h.scid.len()),
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
                    .filter_map(|s| EarlyKeys::new(s, labels, secret))
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

    /// Reads every frame of a decrypted payload (RFC 9000 §19, RFC 9221).
    fn read_frames(&mut self, payload: &[u8], from_client: bool, out: &mut Vec<QuicEvent>) {
        let mut c = Cur::new(payload);
        while !c.is_empty() {
            match self.read_frame(&mut c, from_client, out) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    self.anomalies.note("quic-malformed-frame", || {
                        format!("{e}; rest of the packet skipped")
                    });
                    break;
                }
            }
        }
    }

    /// Reads one frame; `Ok(false)` for an unknown type, which ends the packet.
    fn read_frame(
        &mut self,
        c: &mut Cur<'_>,
        from_client: bool,
        out: &mut Vec<QuicEvent>,
    ) -> Result<bool, PacketError> {
        let kind = c.varint("frame type")?;
        match kind {
            // PADDING: the whole run at once.
            0x00 => {
                let run = c.remaining().iter().take_while(|&&b| b == 0).count();
                c.take(run, "PADDING")?;
            }
            0x01 | 0x1e => {} // PING, HANDSHAKE_DONE
            0x02 | 0x03 => skip_ack(c, kind == 0x03)?,
            0x04 => {
                let id = c.varint("RESET_STREAM stream id")?;
                let error_code = c.varint("RESET_STREAM error code")?;
                c.varint("RESET_STREAM final size")?;
                let key = StreamKey { id, from_client };
                self.streams
                    .reset(key, error_code, out, &mut self.anomalies);
            }
            0x05 => {
                c.varint("STOP_SENDING stream id")?;
                c.varint("STOP_SENDING error code")?;
            }
            0x06 => {
                c.varint("CRYPTO offset")?;
                let n = c.varint_usize("CRYPTO length")?;
                c.take(n, "CRYPTO data")?;
            }
            0x07 => {
                let n = c.varint_usize("NEW_TOKEN length")?;
                c.take(n, "NEW_TOKEN token")?;
            }
            0x08..=0x0f => self.stream_frame(c, kind, from_client, out)?,
            // MAX_DATA, MAX_STREAMS (both), DATA_BLOCKED, STREAMS_BLOCKED (both),
            // RETIRE_CONNECTION_ID: one varint.
            0x10 | 0x12 | 0x13 | 0x14 | 0x16 | 0x17 | 0x19 => {
                c.varint("frame field")?;
            }
            // MAX_STREAM_DATA, STREAM_DATA_BLOCKED: stream id and a varint.
            0x11 | 0x15 => {
                c.varint("stream id")?;
                c.varint("frame field")?;
            }
            0x18 => self.new_connection_id(c, from_client)?,
            0x1a | 0x1b => {
                c.take(8, "PATH_CHALLENGE data")?;
            }
            0x1c | 0x1d => {
                let error_code = c.varint("CONNECTION_CLOSE error code")?;
                if kind == 0x1c {
                    c.varint("CONNECTION_CLOSE frame type")?;
                }
                let n = c.varint_usize("CONNECTION_CLOSE reason length")?;
                let reason = String::from_utf8_lossy(c.take(n, "CONNECTION_CLOSE reason")?);
                out.push(QuicEvent::Close {
                    from_client,
                    error_code,
                    reason: reason.into_owned(),
                });
            }
            // DATAGRAM without and with a length.
            0x30 => {
                c.take(c.remaining().len(), "DATAGRAM data")?;
            }
            0x31 => {
                let n = c.varint_usize("DATAGRAM length")?;
                c.take(n, "DATAGRAM data")?;
            }
            other => {
                self.anomalies.note("quic-unknown-frame", || {
                    format!("frame type 0x{other:x}; rest of the packet skipped")
                });
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn stream_frame(
        &mut self,
        c: &mut Cur<'_>,
        kind: u64,
        from_client: bool,
        out: &mut Vec<QuicEvent>,
    ) -> Result<(), PacketError> {
        let id = c.varint("STREAM stream id")?;
        let offset = if kind & 0x04 != 0 {
            c.varint("STREAM offset")?
        } else {
            0
        };
        // Without a length the data runs to the end of the packet.
        let n = if kind & 0x02 != 0 {
            c.varint_usize("STREAM length")?
        } else {
            c.remaining().len()
        };
        let data = c.take(n, "STREAM data")?;
        let key = StreamKey { id, from_client };
        let fin = kind & 0x01 != 0;
        self.streams
            .data(key, offset, data, fin, out, &mut self.anomalies);
        Ok(())
    }

    /// NEW_CONNECTION_ID: the peer of the issuing side may write to this ID.
    fn new_connection_id(&mut self, c: &mut Cur<'_>, from_client: bool) -> Result<(), PacketError> {
        c.varint("NEW_CONNECTION_ID sequence number")?;
        c.varint("NEW_CONNECTION_ID retire prior to")?;
        let len = usize::from(c.u8("NEW_CONNECTION_ID length")?);
        if !(1..=MAX_CID_LEN).contains(&len) {
            return Err(PacketError::Truncated("NEW_CONNECTION_ID length"));
        }
        c.take(len, "NEW_CONNECTION_ID connection id")?;
        c.take(16, "NEW_CONNECTION_ID stateless reset token")?;
        let writer = if from_client {
            &mut self.server
        } else {
            &mut self.client
        };
        writer.learn_dcid_len(len);
        Ok(())
    }
}

/// ACK and ACK_ECN (RFC 9000 §19.3): skipped field by field.
fn skip_ack(c: &mut Cur<'_>, ecn: bool) -> Result<(), PacketError> {
    c.varint("ACK largest")?;
    c.varint("ACK delay")?;
    let ranges = c.varint("ACK range count")?;
    c.varint("ACK first range")?;
    // Each range takes at least two bytes: a huge count runs out of payload after
    // linear work.
    for _ in 0..ranges {
        c.varint("ACK gap")?;
        c.varint("ACK range")?;
    }
    if ecn {
        for _ in 0..3 {
            c.varint("ECN count")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::quic::server_initial_secrets;
    use crate::net::quic::tests::{client_hello, crypto_frame, protect_initial};
    use proptest::prelude::*;

    /// The original DCID of the client's first Initial in these tests.
    const ODCID: [u8; 8] = [0x0d; 8];
    /// The client's SCID: the DCID of server short headers.
    const CLIENT_CID: [u8; 4] = [0xc1; 4];
    /// The server's SCID: the DCID of client short headers.
    const SERVER_CID: [u8; 6] = [0x5e; 6];
    const SUITES: [Suite; 3] = [Suite::Aes128Gcm, Suite::Aes256Gcm, Suite::ChaCha20Poly1305];

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn varint(v: u64) -> Vec<u8> {
        match v {
            0..=63 => vec![v as u8],
            64..=16383 => (0x4000 | v as u16).to_be_bytes().to_vec(),
            16384..=0x3fff_ffff => (0x8000_0000 | v as u32).to_be_bytes().to_vec(),
            _ => (0xc000_0000_0000_0000 | v).to_be_bytes().to_vec(),
        }
    }

    /// A traffic secret of `len` bytes, distinct per `tag`.
    fn secret(tag: u8, len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| tag.wrapping_mul(31).wrapping_add(i as u8))
            .collect()
    }

    /// Secrets for both directions and 0-RTT, of the length `suite`'s hash makes.
    fn secrets(suite: Suite) -> Secrets {
        let len = if suite == Suite::Aes256Gcm { 48 } else { 32 };
        Secrets {
            client_traffic_0: Some(secret(1, len)),
            server_traffic_0: Some(secret(2, len)),
            client_early_traffic: Some(secret(3, len)),
            ..Secrets::default()
        }
    }

    fn reader_with(version: u32, s: &Secrets, limits: QuicConnLimits) -> QuicConnReader {
        QuicConnReader::new(version, &ODCID, &CLIENT_CID, s, limits)
    }

    fn reader(s: &Secrets) -> QuicConnReader {
        reader_with(QUIC_V1, s, QuicConnLimits::default())
    }

    fn type_bits(version: u32, kind: PacketType) -> u8 {
        let v1 = match kind {
            PacketType::Initial => 0,
            PacketType::ZeroRtt => 1,
            PacketType::Handshake => 2,
            PacketType::Retry => 3,
        };
        // RFC 9369 §3.2: v2 rotates the types by one.
        if version == QUIC_V2 {
            (v1 + 1) & 3
        } else {
            v1
        }
    }

    /// Packet protection as a sender applies it (RFC 9001 §5), from key material.
    struct Sealer {
        key: LessSafeKey,
        iv: [u8; 12],
        hp: hp::HeaderProtectionKey,
    }

    impl Sealer {
        fn from_material(suite: Suite, m: &KeyMaterial) -> Self {
            Sealer {
                key: LessSafeKey::new(UnboundKey::new(suite.aead(), &m.key).unwrap()),
                iv: m.iv,
                hp: hp::HeaderProtectionKey::new(suite.header_protection(), &m.hp).unwrap(),
            }
        }

        fn new(suite: Suite, version: u32, secret: &[u8]) -> Self {
            Self::from_material(
                suite,
                &KeyMaterial::new(suite, Labels::of(version).unwrap(), secret),
            )
        }

        /// The keys of the `n`th key phase after `secret` (header protection unchanged).
        fn after_updates(suite: Suite, version: u32, secret: &[u8], n: usize) -> Self {
            let labels = Labels::of(version).unwrap();
            let hp = KeyMaterial::new(suite, labels, secret).hp;
            let mut s = secret.to_vec();
            for _ in 0..n {
                s = next_secret(suite, labels, &s);
            }
            let mut m = KeyMaterial::new(suite, labels, &s);
            m.hp = hp;
            Self::from_material(suite, &m)
        }

        fn initial_server(version: u32, dcid: &[u8]) -> Self {
            let s = server_initial_secrets(version, dcid).unwrap();
            let m = KeyMaterial {
                key: s.key.to_vec(),
                iv: s.iv,
                hp: s.hp.to_vec(),
            };
            Self::from_material(Suite::Aes128Gcm, &m)
        }

        /// Protects a packet whose `header` ends with the packet number at `pn_offset`.
        fn seal(
            &self,
            header: Vec<u8>,
            pn_offset: usize,
            pn: u64,
            payload: &[u8],
            long: bool,
        ) -> Vec<u8> {
            let pn_len = header.len() - pn_offset;
            let mut body = payload.to_vec();
            let mut nonce = self.iv;
            for (n, p) in nonce[4..].iter_mut().zip(pn.to_be_bytes()) {
                *n ^= p;
            }
            self.key
                .seal_in_place_append_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(&header[..]),
                    &mut body,
                )
                .unwrap();
            let mut packet = header;
            packet.extend(body);
            let mask = self
                .hp
                .new_mask(&packet[pn_offset + 4..pn_offset + 4 + SAMPLE_LEN])
                .unwrap();
            packet[0] ^= mask[0] & if long { 0x0f } else { 0x1f };
            for i in 0..pn_len {
                packet[pn_offset + i] ^= mask[1 + i];
            }
            packet
        }

        /// A 1-RTT packet.
        fn short(
            &self,
            dcid: &[u8],
            pn: u64,
            pn_len: usize,
            phase: bool,
            frames: &[u8],
        ) -> Vec<u8> {
            let mut header = vec![0x40 | u8::from(phase) << 2 | (pn_len as u8 - 1)];
            header.extend_from_slice(dcid);
            let pn_offset = header.len();
            header.extend(&pn.to_be_bytes()[8 - pn_len..]);
            self.seal(header, pn_offset, pn, &padded(frames, pn_len), false)
        }

        /// A long-header packet (no token for Initial packets).
        #[allow(clippy::too_many_arguments)]
        fn long(
            &self,
            version: u32,
            kind: PacketType,
            dcid: &[u8],
            scid: &[u8],
            pn: u64,
            pn_len: usize,
            frames: &[u8],
        ) -> Vec<u8> {
            let payload = padded(frames, pn_len);
            let mut header = vec![0xc0 | type_bits(version, kind) << 4 | (pn_len as u8 - 1)];
            header.extend(version.to_be_bytes());
            header.push(dcid.len() as u8);
            header.extend_from_slice(dcid);
            header.push(scid.len() as u8);
            header.extend_from_slice(scid);
            if kind == PacketType::Initial {
                header.push(0);
            }
            let length = pn_len + payload.len() + 16;
            header.extend((0x4000 | length as u16).to_be_bytes());
            let pn_offset = header.len();
            header.extend(&pn.to_be_bytes()[8 - pn_len..]);
            self.seal(header, pn_offset, pn, &payload, true)
        }
    }

    /// `frames` with PADDING so that the header protection sample exists.
    fn padded(frames: &[u8], pn_len: usize) -> Vec<u8> {
        let mut p = frames.to_vec();
        p.resize(p.len().max(4 - pn_len), 0);
        p
    }

    /// A STREAM frame with offset and length.
    fn stream(id: u64, offset: u64, data: &[u8], fin: bool) -> Vec<u8> {
        let mut f = vec![0x0e | u8::from(fin)];
        f.extend(varint(id));
        f.extend(varint(offset));
        f.extend(varint(data.len() as u64));
        f.extend_from_slice(data);
        f
    }

    /// A TLS 1.3 ServerHello handshake message choosing `suite`.
    fn server_hello(suite: u16) -> Vec<u8> {
        let mut body = vec![0x03, 0x03];
        body.extend([0x7a; 32]);
        body.push(0); // session id
        body.extend(suite.to_be_bytes());
        body.push(0);
        let ext = [0x00, 0x2b, 0x00, 0x02, 0x03, 0x04]; // supported_versions: TLS 1.3
        body.extend((ext.len() as u16).to_be_bytes());
        body.extend(ext);
        let mut msg = vec![SERVER_HELLO];
        msg.extend(&(body.len() as u32).to_be_bytes()[1..]);
        msg.extend(body);
        msg
    }

    /// The server's Initial with its ServerHello (and an ACK), in `version`.
    fn server_initial(version: u32, suite: u16) -> Vec<u8> {
        let mut frames = vec![0x02, 0x00, 0x00, 0x00, 0x00];
        frames.extend(crypto_frame(0, &server_hello(suite)));
        Sealer::initial_server(version, &ODCID).long(
            version,
            PacketType::Initial,
            &CLIENT_CID,
            &SERVER_CID,
            0,
            2,
            &frames,
        )
    }

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

    fn push(r: &mut QuicConnReader, datagram: &[u8], from_client: bool) -> Vec<QuicEvent> {
        let mut out = Vec::new();
        r.push(datagram, from_client, &mut out);
        out
    }

    /// The bytes of one stream direction, checking the events follow each other.
    fn stream_bytes(events: &[QuicEvent], id: u64, from_client: bool) -> (Vec<u8>, bool) {
        let mut data = Vec::new();
        let mut fin = false;
        for e in events {
            if let QuicEvent::Stream {
                id: i,
                from_client: c,
                offset,
                data: d,
                fin: f,
            } = e
            {
                if (*i, *c) == (id, from_client) {
                    assert_eq!(*offset, data.len() as u64, "events in order");
                    assert!(!fin, "nothing after the FIN");
                    data.extend_from_slice(d);
                    fin = *f;
                }
            }
        }
        (data, fin)
    }

    fn kinds(r: &mut QuicConnReader) -> Vec<String> {
        r.take_anomalies().into_iter().map(|a| a.kind).collect()
    }

    fn data_event(id: u64, from_client: bool, offset: u64, data: &[u8], fin: bool) -> QuicEvent {
        QuicEvent::Stream {
            id,
            from_client,
            offset,
            data: data.to_vec(),
            fin,
        }
    }

    /// RFC 9001 appendix A.5: key derivation, key update and the protected packet
    /// (a PING in a short header without DCID, packet number 654360564).
    #[test]
    fn rfc9001_a5_chacha20_short_header_packet() {
        let secret = hex("9ac312a7f877468ebe69422748ad00a15443f18203a07d6060f688f30f21632b");
        let labels = Labels::of(QUIC_V1).unwrap();
        let m = KeyMaterial::new(Suite::ChaCha20Poly1305, labels, &secret);
        assert_eq!(
            m.key,
            hex("c6d98ff3441c3fe1b2182094f69caa2ed4b716b65488960a7a984979fb23e1c8")
        );
        assert_eq!(m.iv.to_vec(), hex("e0459b3474bdd0e44a41c144"));
        assert_eq!(
            m.hp,
            hex("25a282b9e82f06f21f488917a4fc8f1b73573685608597d0efcb076b0ab7a7a4")
        );
        assert_eq!(
            next_secret(Suite::ChaCha20Poly1305, labels, &secret),
            hex("1223504755036d556342ee9361d253421a826c9ecdf3c7148684b36b714881f9")
        );
        let packet = hex("4cfe4189655e5cd55c41f69080575d7999c25a5bfb");
        // The test sealer makes the same bytes.
        let sealer = Sealer::new(Suite::ChaCha20Poly1305, QUIC_V1, &secret);
        assert_eq!(sealer.short(&[], 654_360_564, 3, false, &[0x01]), packet);
        // The reader, told nothing of the suite, finds ChaCha20-Poly1305 after
        // AES-128-GCM fails; the client's CID is empty.
        let s = Secrets {
            server_traffic_0: Some(secret),
            ..Secrets::default()
        };
        let mut r = QuicConnReader::new(QUIC_V1, &ODCID, &[], &s, QuicConnLimits::default());
        r.server.largest_pn = Some(654_360_563);
        assert!(push(&mut r, &packet, false).is_empty());
        assert_eq!(r.packets_decrypted(), 1);
        assert_eq!(r.server.largest_pn, Some(654_360_564));
        assert_eq!(r.cipher_suite(), Some(0x1303));
        assert_eq!(r.status(), QuicStatus::Decrypting);
        assert!(r.take_anomalies().is_empty());
    }

    /// RFC 9001 appendix A.3: the server's Initial gives the suite (AES-128-GCM) and
    /// the server's connection ID (8 bytes).
    #[test]
    fn rfc9001_a3_server_initial_names_the_suite() {
        let packet = hex(concat!(
            "cf000000010008f067a5502a4262b5004075c0d95a482cd0991cd25b0aac406a",
            "5816b6394100f37a1c69797554780bb38cc5a99f5ede4cf73c3ec2493a1839b3",
            "dbcba3f6ea46c5b7684df3548e7ddeb9c3bf9c73cc3f3bded74b562bfb19fb84",
            "022f8ef4cdd93795d77d06edbb7aaf2f58891850abbdca3d20398c276456cbc4",
            "2158407dd074ee",
        ));
        let rfc_dcid = hex("8394c8f03e515708");
        let mut r = QuicConnReader::new(
            QUIC_V1,
            &rfc_dcid,
            &[],
            &Secrets::default(),
            QuicConnLimits::default(),
        );
        assert!(push(&mut r, &packet, false).is_empty());
        assert_eq!(r.cipher_suite(), Some(0x1301));
        assert_eq!(r.client.dcid_lens, 1 << 8);
        assert_eq!(r.status(), QuicStatus::NoKey);
        assert!(r.take_anomalies().is_empty());
    }

    #[test]
    fn every_suite_in_both_directions_and_versions() {
        for version in [QUIC_V1, QUIC_V2] {
            for suite in SUITES {
                for with_hello in [true, false] {
                    let s = secrets(suite);
                    let mut r = reader_with(version, &s, QuicConnLimits::default());
                    if with_hello {
                        assert!(
                            push(&mut r, &server_initial(version, suite.id()), false).is_empty()
                        );
                        assert_eq!(r.cipher_suite(), Some(suite.id()));
                    }
                    let client =
                        Sealer::new(suite, version, s.client_traffic_0.as_deref().unwrap());
                    let server =
                        Sealer::new(suite, version, s.server_traffic_0.as_deref().unwrap());
                    let mut events = push(
                        &mut r,
                        &client.short(&SERVER_CID, 0, 1, false, &stream(0, 0, b"GET /", true)),
                        true,
                    );
                    events.extend(push(
                        &mut r,
                        &server.short(&CLIENT_CID, 0, 2, false, &stream(0, 0, b"200 OK", true)),
                        false,
                    ));
                    assert_eq!(
                        events,
                        vec![
                            data_event(0, true, 0, b"GET /", true),
                            data_event(0, false, 0, b"200 OK", true)
                        ],
                        "{version:#x} {suite:?} hello {with_hello}"
                    );
                    assert_eq!(r.cipher_suite(), Some(suite.id()));
                    assert_eq!(r.packets_decrypted(), 2);
                    assert_eq!(r.status(), QuicStatus::Decrypting);
                    assert!(r.take_anomalies().is_empty());
                }
            }
        }
    }

    /// STREAM frames out of order, duplicated and overlapping with other bytes, across
    /// packets: the first bytes received for an offset win, each byte comes out once.
    #[test]
    fn stream_data_out_of_order_duplicated_and_overlapping() {
        let s = secrets(Suite::Aes128Gcm);
        let mut r = reader(&s);
        let _ = push(&mut r, &server_initial(QUIC_V1, 0x1301), false);
        let c = Sealer::new(
            Suite::Aes128Gcm,
            QUIC_V1,
            s.client_traffic_0.as_deref().unwrap(),
        );
        let d = b"POST /collect HTTP/3 with a body of 36";
        let x = b"XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX";
        let frames = [
            stream(0, 10, &d[10..20], false),
            stream(0, 0, &d[..5], false),
            // Bytes 3..5 were handed out, 10..12 are held: only 5..10 are taken.
            stream(0, 3, &x[3..12], false),
            stream(0, 0, &d[..5], false),
            stream(0, 20, &d[20..], true),
            stream(0, 0, d, true), // after the end: a retransmission, dropped
        ];
        let mut events = Vec::new();
        for (pn, f) in frames.iter().enumerate() {
            events.push(push(
                &mut r,
                &c.short(&SERVER_CID, pn as u64, 1, false, f),
                true,
            ));
        }
        let mut expected = d[..5].to_vec();
        expected.extend(&x[5..10]);
        expected.extend(&d[10..20]);
        assert_eq!(
            events,
            vec![
                vec![],
                vec![data_event(0, true, 0, &d[..5], false)],
                vec![data_event(0, true, 5, &expected[5..], false)],
                vec![],
                vec![data_event(0, true, 20, &d[20..], true)],
                vec![],
            ]
        );
        assert!(r.take_anomalies().is_empty());
        assert!(r.streams.active.is_empty());
        // Several frames in one packet, and a stream frame without a length.
        let mut f = stream(4, 3, b"def", false);
        f.extend(stream(4, 0, b"abc", false));
        f.extend([0x0d, 4, 6]); // OFF and FIN, data to the end of the packet
        f.extend(b"ghi");
        let events = push(&mut r, &c.short(&SERVER_CID, 6, 1, false, &f), true);
        assert_eq!(
            stream_bytes(&events, 4, true),
            (b"abcdefghi".to_vec(), true)
        );
    }

    #[test]
    fn key_updates_and_a_late_packet_of_the_previous_phase() {
        for suite in SUITES {
            let s = secrets(suite);
            let secret = s.server_traffic_0.as_deref().unwrap();
            let gens: Vec<Sealer> = (0..3)
                .map(|n| Sealer::after_updates(suite, QUIC_V1, secret, n))
                .collect();
            let mut r = reader(&s);
            let _ = push(&mut r, &server_initial(QUIC_V1, suite.id()), false);
            // (packet number, generation): phase bit = generation % 2.
            let order = [(0, 0), (1, 0), (3, 1), (2, 0), (4, 1), (5, 2), (6, 2)];
            let mut events = Vec::new();
            for (pn, generation) in order {
                let byte = [b'a' + pn as u8];
                let fin = pn == 6;
                let packet = gens[generation].short(
                    &CLIENT_CID,
                    pn,
                    1,
                    generation % 2 == 1,
                    &stream(1, pn, &byte, fin),
                );
                events.extend(push(&mut r, &packet, false));
            }
            assert_eq!(
                stream_bytes(&events, 1, false),
                (b"abcdefg".to_vec(), true),
                "{suite:?}"
            );
            assert_eq!(r.key_updates(), 2);
            assert_eq!(r.packets_decrypted(), 7);
            assert!(r.take_anomalies().is_empty());
            // A packet of the first generation is no longer readable two updates on.
            let old = gens[0].short(&CLIENT_CID, 7, 1, false, &[0x01]);
            let _ = push(&mut r, &old, false);
            assert_eq!(r.packets_failed(), 1);
        }
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

    /// 0-RTT under the resumed session's suite, which the ServerHello did not choose.
    #[test]
    fn zero_rtt_with_another_suite_than_1rtt() {
        let s = secrets(Suite::Aes128Gcm);
        let mut r = reader(&s);
        let _ = push(&mut r, &server_initial(QUIC_V1, 0x1301), false);
        let early = Sealer::new(
            Suite::ChaCha20Poly1305,
            QUIC_V1,
            s.client_early_traffic.as_deref().unwrap(),
        );
        let p = early.long(
            QUIC_V1,
            PacketType::ZeroRtt,
            &ODCID,
            &CLIENT_CID,
            0,
            1,
            &stream(0, 0, b"x", true),
        );
        assert_eq!(
            push(&mut r, &p, true),
            vec![data_event(0, true, 0, b"x", true)]
        );
        assert_eq!(r.early.keys.len(), 1);
        assert_eq!(r.cipher_suite(), Some(0x1301));
        // Without an early secret, 0-RTT is skipped with one note.
        let mut r = reader(&Secrets {
            client_early_traffic: None,
            ..secrets(Suite::Aes128Gcm)
        });
        assert!(push(&mut r, &p, true).is_empty());
        assert_eq!(kinds(&mut r), vec!["quic-0rtt-no-key"]);
        assert_eq!(r.status(), QuicStatus::Pending);
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
    fn streams_tracked_at_once_are_limited() {
        let s = secrets(Suite::Aes128Gcm);
        let limits = QuicConnLimits {
            max_streams: 2,
            ..QuicConnLimits::default()
        };
        let mut r = reader_with(QUIC_V1, &s, limits);
        let _ = push(&mut r, &server_initial(QUIC_V1, 0x1301), false);
        let c = Sealer::new(
            Suite::Aes128Gcm,
            QUIC_V1,
            s.client_traffic_0.as_deref().unwrap(),
        );
        let mut pn = 0;
        let mut send = |r: &mut QuicConnReader, frames: Vec<u8>| {
            pn += 1;
            push(r, &c.short(&SERVER_CID, pn, 1, false, &frames), true)
        };
        assert_eq!(send(&mut r, stream(0, 0, b"a", false)).len(), 1);
        assert_eq!(send(&mut r, stream(4, 0, b"b", false)).len(), 1);
        assert!(send(&mut r, stream(8, 0, b"c", false)).is_empty());
        assert_eq!(kinds(&mut r), vec!["quic-stream-limit"]);
        // Stream 0 ends: its slot frees, and a retransmission of it is dropped.
        assert_eq!(
            send(&mut r, stream(0, 1, b"", true)),
            vec![data_event(0, true, 1, b"", true)]
        );
        assert!(send(&mut r, stream(0, 0, b"a", false)).is_empty());
        assert_eq!(
            send(&mut r, stream(8, 0, b"c", true)),
            vec![data_event(8, true, 0, b"c", true)]
        );
        assert!(r.take_anomalies().is_empty());
    }

    #[test]
    fn held_bytes_over_the_limit_become_a_gap() {
        let s = secrets(Suite::Aes128Gcm);
        let limits = QuicConnLimits {
            max_buffered: 100,
            max_held_ranges: 3,
            ..QuicConnLimits::default()
        };
        let mut r = reader_with(QUIC_V1, &s, limits);
        let _ = push(&mut r, &server_initial(QUIC_V1, 0x1301), false);
        let c = Sealer::new(
            Suite::Aes128Gcm,
            QUIC_V1,
            s.client_traffic_0.as_deref().unwrap(),
        );
        let e1 = push(
            &mut r,
            &c.short(&SERVER_CID, 0, 1, false, &stream(0, 10, &[b'a'; 60], false)),
            true,
        );
        assert!(e1.is_empty());
        let e2 = push(
            &mut r,
            &c.short(&SERVER_CID, 1, 1, false, &stream(4, 5, &[b'b'; 50], false)),
            true,
        );
        // Stream 0's hole is the older one: it is given up.
        assert_eq!(
            e2,
            vec![
                QuicEvent::Gap {
                    id: 0,
                    from_client: true,
                    offset: 0,
                    len: 10
                },
                data_event(0, true, 10, &[b'a'; 60], false),
            ]
        );
        assert_eq!(kinds(&mut r), vec!["quic-stream-buffer-limit"]);
        // The missing bytes, late: already skipped.
        let e3 = push(
            &mut r,
            &c.short(&SERVER_CID, 2, 1, false, &stream(0, 0, &[b'z'; 12], false)),
            true,
        );
        assert!(e3.is_empty());
        // Too many ranges: stream 8 in four 1-byte pieces (plus stream 4's range).
        let mut f = Vec::new();
        for off in [2, 4, 6] {
            f.extend(stream(8, off, b"x", false));
        }
        let e4 = push(&mut r, &c.short(&SERVER_CID, 3, 1, false, &f), true);
        assert_eq!(
            e4,
            vec![
                QuicEvent::Gap {
                    id: 4,
                    from_client: true,
                    offset: 0,
                    len: 5
                },
                data_event(4, true, 5, &[b'b'; 50], false),
            ]
        );
        assert_eq!(r.streams.held_ranges, 3);
        // Flushing at the end of the flow hands out the rest.
        let mut out = Vec::new();
        r.flush(&mut out);
        assert_eq!(out.len(), 6);
        assert_eq!(r.streams.held_bytes, 0);
        assert_eq!(r.streams.held_ranges, 0);
    }

    #[test]
    fn every_frame_type_is_read_to_its_end() {
        let s = secrets(Suite::Aes128Gcm);
        let mut r = reader(&s);
        let _ = push(&mut r, &server_initial(QUIC_V1, 0x1301), false);
        let server = Sealer::new(
            Suite::Aes128Gcm,
            QUIC_V1,
            s.server_traffic_0.as_deref().unwrap(),
        );
        let mut f = vec![0x00, 0x00, 0x00, 0x01]; // PADDING, PING
        f.extend([0x02, 0x40, 0x64, 0x05, 0x02, 0x01, 0x03, 0x04, 0x01, 0x00]); // ACK, 2 ranges
        f.extend([0x03, 0x10, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03]); // ACK_ECN
        f.extend([0x04, 0x05, 0x11, 0x20]); // RESET_STREAM 5
        f.extend([0x05, 0x00, 0x11]); // STOP_SENDING
        f.extend(crypto_frame(0, b"ticket"));
        f.extend([0x07, 0x03, 1, 2, 3]); // NEW_TOKEN
        f.extend([0x10, 0x44, 0x00]); // MAX_DATA
        f.extend([0x11, 0x00, 0x50, 0x00]); // MAX_STREAM_DATA
        f.extend([0x12, 0x10, 0x13, 0x03]); // MAX_STREAMS bidi, uni
        f.extend([0x14, 0x01, 0x15, 0x00, 0x01, 0x16, 0x01, 0x17, 0x01]); // *_BLOCKED
        f.extend([0x18, 0x02, 0x00, 0x08]); // NEW_CONNECTION_ID
        f.extend([0xab; 8]);
        f.extend([0xcd; 16]);
        f.extend([0x19, 0x00]); // RETIRE_CONNECTION_ID
        f.extend([0x1a, 1, 2, 3, 4, 5, 6, 7, 8, 0x1b, 8, 7, 6, 5, 4, 3, 2, 1]); // PATH_*
        f.extend([0x31, 0x02, 0xde, 0xad]); // DATAGRAM with length
        f.push(0x1e); // HANDSHAKE_DONE
        f.extend(stream(3, 0, b"\x00\x04\x00", false));
        f.extend([0x1c, 0x0a, 0x08, 0x03]); // CONNECTION_CLOSE (transport)
        f.extend(b"bye");
        f.extend([0x1d, 0x41, 0x00, 0x00]); // CONNECTION_CLOSE (application)
        f.extend([0x30, 0xbe, 0xef]); // DATAGRAM to the end
        let events = push(&mut r, &server.short(&CLIENT_CID, 0, 1, false, &f), false);
        assert_eq!(
            events,
            vec![
                QuicEvent::Reset {
                    id: 5,
                    from_client: false,
                    error_code: 0x11
                },
                data_event(3, false, 0, b"\x00\x04\x00", false),
                QuicEvent::Close {
                    from_client: false,
                    error_code: 0x0a,
                    reason: "bye".into()
                },
                QuicEvent::Close {
                    from_client: false,
                    error_code: 0x100,
                    reason: String::new()
                },
            ]
        );
        assert!(r.take_anomalies().is_empty());
        // The server's new connection ID is what the client may write to.
        assert_eq!(r.client.dcid_lens, 1 << SERVER_CID.len() | 1 << 8);
        // A retransmitted reset says nothing new.
        let again = server.short(&CLIENT_CID, 1, 1, false, &[0x04, 0x05, 0x11, 0x20]);
        assert!(push(&mut r, &again, false).is_empty());
    }

    #[test]
    fn unknown_and_malformed_frames_end_the_packet() {
        let s = secrets(Suite::Aes128Gcm);
        let mut r = reader(&s);
        let _ = push(&mut r, &server_initial(QUIC_V1, 0x1301), false);
        let c = Sealer::new(
            Suite::Aes128Gcm,
            QUIC_V1,
            s.client_traffic_0.as_deref().unwrap(),
        );
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                [vec![0x01, 0x21], stream(0, 0, b"a", false)].concat(),
                "quic-unknown-frame",
            ),
            (vec![0x0e, 0x00, 0x00, 0x10, b'a'], "quic-malformed-frame"),
            (vec![0x18, 0x00, 0x00, 21], "quic-malformed-frame"),
            (vec![0x1c, 0x00, 0x00, 0x40, 0xff], "quic-malformed-frame"),
            (
                vec![0x02, 0x00, 0x00, 0x7f, 0xff, 0x00],
                "quic-malformed-frame",
            ),
        ];
        for (pn, (frames, kind)) in cases.into_iter().enumerate() {
            let events = push(
                &mut r,
                &c.short(&SERVER_CID, pn as u64, 1, false, &frames),
                true,
            );
            assert!(events.is_empty(), "{frames:?}");
            assert_eq!(kinds(&mut r), vec![kind], "{frames:?}");
        }
        // An offset near 2^62: refused.
        let mut f = vec![0x0e, 0x00];
        f.extend(varint((1 << 62) - 1));
        f.extend([0x01, b'x']);
        assert!(push(&mut r, &c.short(&SERVER_CID, 9, 1, false, &f), true).is_empty());
        assert_eq!(kinds(&mut r), vec!["quic-stream-final-size"]);
        assert!(r.streams.active.is_empty(), "a refused frame takes no slot");
    }

    #[test]
    fn unidirectional_streams_carry_data_one_way() {
        let s = secrets(Suite::Aes128Gcm);
        let mut r = reader(&s);
        let _ = push(&mut r, &server_initial(QUIC_V1, 0x1301), false);
        let c = Sealer::new(
            Suite::Aes128Gcm,
            QUIC_V1,
            s.client_traffic_0.as_deref().unwrap(),
        );
        let sv = Sealer::new(
            Suite::Aes128Gcm,
            QUIC_V1,
            s.server_traffic_0.as_deref().unwrap(),
        );
        // Stream 2: client-initiated unidirectional; 3: server-initiated.
        let e = push(
            &mut r,
            &c.short(&SERVER_CID, 0, 1, false, &stream(2, 0, b"\x00", false)),
            true,
        );
        assert_eq!(e.len(), 1);
        let mut f = stream(2, 0, b"no", false);
        f.extend([0x04, 0x02, 0x00, 0x00]);
        f.extend(stream(3, 0, b"\x00", false));
        let e = push(&mut r, &sv.short(&CLIENT_CID, 0, 1, false, &f), false);
        assert_eq!(e, vec![data_event(3, false, 0, b"\x00", false)]);
        assert_eq!(
            kinds(&mut r),
            vec!["quic-stream-direction", "quic-stream-direction"]
        );
    }

    #[test]
    fn final_sizes_are_kept_consistent() {
        let mut st = StreamIn::default();
        assert_eq!(st.insert(5, b"fghij", true, 0), Ok(None));
        assert_eq!(
            st.insert(8, b"xyzw", false, 1),
            Err(StreamError::BeyondFinalSize {
                final_size: 10,
                end: 12
            })
        );
        assert_eq!(
            st.insert(0, b"ab", true, 2),
            Err(StreamError::FinalSizeChanged { known: 10, got: 2 })
        );
        let chunk = st.insert(0, b"abcde", false, 3).unwrap().unwrap();
        assert_eq!((chunk.data, chunk.fin), (b"abcdefghij".to_vec(), true));
        let mut st = StreamIn::default();
        st.insert(4, b"ef", false, 0).unwrap();
        assert_eq!(
            st.insert(0, b"ab", true, 1),
            Err(StreamError::FinalSizeBelowReceived {
                got: 2,
                received: 6
            })
        );
        // An empty FIN at the delivered end: the end alone.
        let mut st = StreamIn::default();
        assert!(st.insert(0, b"abc", false, 0).unwrap().is_some());
        let end = st.insert(3, b"", true, 1).unwrap().unwrap();
        assert_eq!((end.offset, end.data.len(), end.fin), (3, 0, true));
        assert_eq!(st.insert(3, b"", true, 2), Ok(None));
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

    /// After a Retry, the server's Initial keys come from the Retry's SCID.
    #[test]
    fn retry_gives_new_initial_keys() {
        let s = secrets(Suite::ChaCha20Poly1305);
        let mut r = reader(&s);
        let retry_cid = [0x3e_u8; 8];
        let mut retry = vec![0xf0, 0, 0, 0, 1, CLIENT_CID.len() as u8];
        retry.extend(CLIENT_CID);
        retry.push(retry_cid.len() as u8);
        retry.extend(retry_cid);
        retry.extend(b"token");
        retry.extend([0x11; 16]); // integrity tag (not checked)
        assert!(push(&mut r, &retry, false).is_empty());
        let mut frames = vec![0x01];
        frames.extend(crypto_frame(0, &server_hello(0x1303)));
        let initial = Sealer::initial_server(QUIC_V1, &retry_cid).long(
            QUIC_V1,
            PacketType::Initial,
            &CLIENT_CID,
            &SERVER_CID,
            0,
            1,
            &frames,
        );
        let _ = push(&mut r, &initial, false);
        assert_eq!(r.cipher_suite(), Some(0x1303));
        // The same Initial from the original DCID still reads on another reader.
        let mut r = reader(&s);
        let _ = push(&mut r, &server_initial(QUIC_V1, 0x1303), false);
        assert_eq!(r.cipher_suite(), Some(0x1303));
    }

    /// A ServerHello in two server Initial packets (a post-quantum key share), and
    /// compatible version negotiation: the client starts in v1, the server answers in
    /// v2, and 1-RTT keys use v2's labels.
    #[test]
    fn server_hello_across_packets_in_another_version() {
        let s = secrets(Suite::Aes128Gcm);
        let mut r = reader(&s);
        let mut hello = server_hello(0x1301);
        // Grow the message with a padding extension so it needs two packets.
        let pad = 1300;
        let ext_len = u16::from_be_bytes([hello[44], hello[45]]) + 4 + pad as u16;
        hello[44..46].copy_from_slice(&ext_len.to_be_bytes());
        hello.extend([0x00, 0x15]);
        hello.extend((pad as u16).to_be_bytes());
        hello.extend(vec![0; pad]);
        let body_len = (hello.len() - 4) as u32;
        hello[1..4].copy_from_slice(&body_len.to_be_bytes()[1..]);
        let sealer = Sealer::initial_server(QUIC_V2, &ODCID);
        let part = |pn: u64, from: usize, to: usize| {
            sealer.long(
                QUIC_V2,
                PacketType::Initial,
                &CLIENT_CID,
                &SERVER_CID,
                pn,
                1,
                &crypto_frame(from, &hello[from..to]),
            )
        };
        let _ = push(&mut r, &part(1, 900, hello.len()), false);
        assert_eq!(r.cipher_suite(), None);
        let _ = push(&mut r, &part(0, 0, 900), false);
        assert_eq!(r.cipher_suite(), Some(0x1301));
        assert_eq!(r.app_version, QUIC_V2);
        let server = Sealer::new(
            Suite::Aes128Gcm,
            QUIC_V2,
            s.server_traffic_0.as_deref().unwrap(),
        );
        let e = push(
            &mut r,
            &server.short(&CLIENT_CID, 0, 1, false, &stream(1, 0, b"v2", true)),
            false,
        );
        assert_eq!(e, vec![data_event(1, false, 0, b"v2", true)]);
    }

    #[test]
    fn closed_streams_are_remembered_within_bounds() {
        let key = |id| StreamKey {
            id,
            from_client: true,
        };
        let mut c = ClosedStreams::default();
        for id in [0, 8, 4] {
            c.insert(key(id), 2);
        }
        assert_eq!(c.below[key(0).class()], 12);
        assert!(c.above.is_empty());
        assert!(c.contains(key(4)) && !c.contains(key(12)));
        // Other types and directions have their own watermarks.
        assert!(!c.contains(key(1)));
        assert!(!c.contains(StreamKey {
            id: 0,
            from_client: false
        }));
        for id in [20, 28, 36] {
            c.insert(key(id), 2);
        }
        // Over the bound, the lowest entry (20) raised the watermark past 16.
        assert_eq!(c.below[key(0).class()], 24);
        assert!(c.contains(key(16)) && c.contains(key(28)) && !c.contains(key(32)));
        assert_eq!(c.above.len(), 2);
    }

    #[test]
    fn stream_in_hands_out_held_bytes_behind_a_skipped_hole() {
        let mut st = StreamIn::default();
        st.insert(4, b"ef", false, 0).unwrap();
        st.insert(8, b"ij", false, 1).unwrap();
        st.insert(6, b"gh", false, 2).unwrap();
        assert_eq!(st.held.len(), 2, "appended to the piece before, not after");
        assert_eq!(st.hole_since, Some(0));
        let (offset, len, chunk) = st.skip_hole(3).unwrap();
        assert_eq!((offset, len), (0, 4));
        assert_eq!(chunk.unwrap().data, b"efghij");
        assert!(st.skip_hole(4).is_none());
        assert_eq!((st.next, st.held_bytes, st.hole_since), (10, 0, None));
    }

    /// Runs the bytes of one stream, cut at `cuts`, through a connection in the frame
    /// order `order` picks, `per_packet` frames per packet.
    fn reassembled(data: &[u8], cuts: &[usize], order: u64, per_packet: usize) -> (Vec<u8>, bool) {
        let s = secrets(Suite::Aes128Gcm);
        let mut r = reader(&s);
        let _ = push(&mut r, &server_initial(QUIC_V1, 0x1301), false);
        let c = Sealer::new(
            Suite::Aes128Gcm,
            QUIC_V1,
            s.client_traffic_0.as_deref().unwrap(),
        );
        let mut points: Vec<usize> = cuts.iter().copied().filter(|&p| p < data.len()).collect();
        points.sort_unstable();
        points.dedup();
        let mut frames = Vec::new();
        let mut start = 0;
        for p in points.into_iter().chain([data.len()]) {
            frames.push(stream(0, start as u64, &data[start..p], p == data.len()));
            start = p;
        }
        // A deterministic shuffle from `order`.
        let mut seed = order;
        for i in (1..frames.len()).rev() {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            frames.swap(i, (seed >> 33) as usize % (i + 1));
        }
        let mut events = Vec::new();
        for (pn, group) in frames.chunks(per_packet.max(1)).enumerate() {
            let p = c.short(&SERVER_CID, pn as u64, 2, false, &group.concat());
            events.extend(push(&mut r, &p, true));
        }
        assert!(r.take_anomalies().is_empty());
        stream_bytes(&events, 0, true)
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
        /// A stream direction against a byte map: first write wins, the contiguous
        /// prefix is handed out once and in order, the rest is held exactly.
        #[test]
        fn stream_in_matches_a_byte_map(
            frags in proptest::collection::vec((0u64..300, 0usize..60, any::<u8>()), 0..40)
        ) {
            let mut st = StreamIn::default();
            let mut oracle: Vec<Option<u8>> = vec![None; 400];
            let mut handed_out = Vec::new();
            for (i, (off, len, fill)) in frags.into_iter().enumerate() {
                let data: Vec<u8> = (0..len).map(|j| fill.wrapping_add(j as u8)).collect();
                let chunk = st.insert(off, &data, false, i as u64).unwrap();
                for (j, &b) in data.iter().enumerate() {
                    oracle[off as usize + j].get_or_insert(b);
                }
                if let Some(c) = chunk {
                    prop_assert_eq!(c.offset, handed_out.len() as u64);
                    prop_assert!(!c.data.is_empty());
                    handed_out.extend(c.data);
                }
            }
            let expected: Vec<u8> = oracle.iter().map_while(|b| *b).collect();
            prop_assert_eq!(&handed_out, &expected);
            prop_assert_eq!(st.next, expected.len() as u64);
            let mut last_end = st.next;
            let mut total = 0;
            for (&s, d) in &st.held {
                prop_assert!(s > st.next && s >= last_end, "held pieces are disjoint, after a hole");
                prop_assert!(!d.is_empty());
                for (j, &b) in d.iter().enumerate() {
                    prop_assert_eq!(Some(b), oracle[s as usize + j]);
                }
                last_end = s + d.len() as u64;
                total += d.len();
            }
            prop_assert_eq!(total, st.held_bytes);
            // Every received byte beyond the prefix is held.
            let received = oracle.iter().skip(expected.len()).filter(|b| b.is_some()).count();
            prop_assert_eq!(received, total);
            prop_assert_eq!(st.hole_since.is_some(), !st.held.is_empty());
        }

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

        /// Arbitrary frame bytes in packets that authenticate never panic, and the
        /// stream totals stay consistent with what is held.
        #[test]
        fn arbitrary_frames_do_not_panic(
            payloads in proptest::collection::vec(
                proptest::collection::vec(any::<u8>(), 0..120),
                1..6,
            )
        ) {
            let s = secrets(Suite::Aes128Gcm);
            let limits = QuicConnLimits {
                max_buffered: 64,
                max_held_ranges: 4,
                max_streams: 3,
                ..QuicConnLimits::default()
            };
            let mut r = reader_with(QUIC_V1, &s, limits);
            let _ = push(&mut r, &server_initial(QUIC_V1, 0x1301), false);
            let c = Sealer::new(Suite::Aes128Gcm, QUIC_V1, s.client_traffic_0.as_deref().unwrap());
            for (pn, frames) in payloads.iter().enumerate() {
                let _ = push(&mut r, &c.short(&SERVER_CID, pn as u64, 2, false, frames), true);
            }
            prop_assert_eq!(r.packets_decrypted(), payloads.len() as u64);
            let held: usize = r.streams.active.values().map(|s| s.held_bytes).sum();
            let pieces: usize = r.streams.active.values().map(|s| s.held.len()).sum();
            prop_assert_eq!((held, pieces), (r.streams.held_bytes, r.streams.held_ranges));
            prop_assert!(held <= 64 && pieces <= 4 && r.streams.active.len() <= 3);
        }

        /// Any cutting of a stream into frames, in any order, packed any way into
        /// packets, gives the same bytes.
        #[test]
        fn any_framing_gives_the_same_stream(
            cuts in proptest::collection::vec(1usize..600, 0..12),
            order in any::<u64>(),
            per_packet in 1usize..4,
        ) {
            let data: Vec<u8> = (0..600u32).map(|i| (i * 7 % 251) as u8).collect();
            prop_assert_eq!(reassembled(&data, &cuts, order, per_packet), (data, true));
        }
    }
}
