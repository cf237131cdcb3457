//! QUIC client Initial packets → the TLS ClientHello they carry: the server name of a
//! QUIC connection, which is all a tap can learn about it without keys.
//!
//! QUIC (RFC 9000) encrypts even its first packets, but with keys anyone can derive:
//! the client's Initial secret comes from the Destination Connection ID of its first
//! Initial packet and a salt fixed per version (RFC 9001 §5.2, RFC 9369 §3.3). So a
//! [`QuicInitialReader`] fed the client's datagrams of one UDP flow
//! 1. parses each long-header packet of the datagram (several may be coalesced, RFC
//!    9000 §12.2; a short-header packet or zero padding ends the datagram),
//! 2. for Initial packets of QUIC v1 (`0x00000001`) and v2 (`0x6b3343cf`, whose Initial
//!    type bits, salt and HKDF labels differ), derives the client Initial keys
//!    (HKDF-SHA256), removes header protection (AES-128) and decrypts the payload
//!    (AES-128-GCM), all with `ring`,
//! 3. reads the frames allowed in Initial packets (PADDING, PING, ACK, CRYPTO,
//!    CONNECTION_CLOSE); any other frame type ends that packet (its layout is unknown
//!    here, and RFC 9000 §12.4 forbids it there) with an anomaly,
//! 4. puts CRYPTO data back in order by offset, across packets and datagrams (Chrome's
//!    post-quantum ClientHello spans two Initial packets, and its CRYPTO frames come
//!    shuffled among PING and PADDING frames), and
//! 5. parses the complete ClientHello with [`tls::parse_client_hello`] (SNI, ALPN).
//!
//! The flow table feeds client datagrams of UDP flows whose first datagram looks like a
//! QUIC Initial ([`looks_like_initial`], content only: port 443 is not required) and
//! names the flow's metadata-only exchange by the SNI. Packets after the handshake
//! (Handshake, 0-RTT, 1-RTT) are skipped: reading them needs the TLS secrets.
//!
//! # Keys
//! Keys are derived from each (version, Destination Connection ID) pair that a packet
//! does not authenticate with otherwise, at most [`MAX_KEY_SETS`]: after the server's
//! first reply the client keeps its original keys under a new DCID, while after a Retry
//! it derives new ones from the DCID the Retry gave it; trying the known keys first
//! covers both.
//!
//! # Overlapping CRYPTO data
//! The first bytes received for an offset are kept; a later frame covering the same
//! offsets only fills what is still missing (a retransmission carries the same bytes;
//! a conflicting one cannot be told apart from an attacker's and is not believed).
//!
//! # Limits
//! All named constants below: CRYPTO bytes held ([`MAX_CRYPTO_BYTES`]), disjoint CRYPTO
//! ranges ([`MAX_CRYPTO_RANGES`]), packets looked at ([`MAX_PACKETS`]), datagrams fed
//! ([`MAX_DATAGRAMS`]), key sets, anomalies kept. Hitting one is recorded as an
//! [`Anomaly`] or answered `Malformed`; the reader never panics and its memory is
//! bounded by these constants and the largest datagram.

use ring::aead::{self, quic as hp, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hkdf;

use crate::exchange::Anomaly;
use crate::net::tls::{self, ClientHello, HelloPoll};

/// QUIC version 1 (RFC 9000).
pub const QUIC_V1: u32 = 0x0000_0001;
/// QUIC version 2 (RFC 9369).
pub const QUIC_V2: u32 = 0x6b33_43cf;
/// Most CRYPTO stream bytes held (offset + length of any frame): the ClientHello must
/// end within this (as `tls::MAX_HELLO_STREAM` for TCP).
pub const MAX_CRYPTO_BYTES: usize = tls::MAX_HELLO_STREAM;
/// Most disjoint CRYPTO ranges held while waiting for the gaps between them.
pub const MAX_CRYPTO_RANGES: usize = 64;
/// Most QUIC packets looked at (all datagrams together) before giving up.
pub const MAX_PACKETS: usize = 32;
/// Most datagrams fed before giving up.
pub const MAX_DATAGRAMS: usize = 16;
/// Most Initial key sets derived (one per version and DCID tried).
pub const MAX_KEY_SETS: usize = 4;
/// Anomalies kept per reader; more are dropped.
const MAX_ANOMALIES: usize = 8;
/// Longest connection ID in QUIC v1 and v2 (RFC 9000 §17.2).
pub(crate) const MAX_CID_LEN: usize = 20;
/// Bytes of ciphertext sampled for header protection (RFC 9001 §5.4.2).
const SAMPLE_LEN: usize = 16;
/// AEAD tag length of AES-128-GCM.
const TAG_LEN: usize = 16;
/// TLS handshake message type of a ClientHello.
const CLIENT_HELLO: u8 = 1;

const SALT_V1: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
    0xcc, 0xbb, 0x7f, 0x0a,
];
const SALT_V2: [u8; 20] = [
    0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb,
    0xf9, 0xbd, 0x2e, 0xd9,
];

/// Long-header packet types, named as in RFC 9000 (their wire bits differ per version).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketType {
    Initial,
    ZeroRtt,
    Handshake,
    Retry,
}

/// The type of a long-header packet from its first byte, for a version we know.
fn packet_type(version: u32, first: u8) -> Option<PacketType> {
    let bits = (first >> 4) & 0x03;
    let order = match version {
        QUIC_V1 => [
            PacketType::Initial,
            PacketType::ZeroRtt,
            PacketType::Handshake,
            PacketType::Retry,
        ],
        // RFC 9369 §3.2.
        QUIC_V2 => [
            PacketType::Retry,
            PacketType::Initial,
            PacketType::ZeroRtt,
            PacketType::Handshake,
        ],
        _ => return None,
    };
    order.get(usize::from(bits)).copied()
}

/// A long-header packet (RFC 9000 §17.2) of a known version, borrowed from its datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LongHeader<'a> {
    /// The first byte as on the wire (its low bits still header-protected).
    pub first: u8,
    pub version: u32,
    pub kind: PacketType,
    pub dcid: &'a [u8],
    pub scid: &'a [u8],
    /// The token of an Initial packet (empty for other types).
    pub token: &'a [u8],
    /// Offset of the (protected) packet number from the start of the packet.
    pub pn_offset: usize,
    /// Bytes of the whole packet (header, packet number and payload); the next
    /// coalesced packet starts there.
    pub packet_len: usize,
}

/// Why a packet was not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PacketError {
    /// Not a long header, or a version we do not read (the version number; 0 is
    /// Version Negotiation).
    NotLongHeader,
    UnknownVersion(u32),
    /// A field runs past the end of the datagram, or a length is out of range.
    Truncated(&'static str),
    /// A Retry packet: it has no length, so nothing after it can be found.
    Retry,
    /// Header protection or AEAD authentication failed with the keys tried.
    Authentication,
}

impl std::fmt::Display for PacketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PacketError::NotLongHeader => f.write_str("not a QUIC long header"),
            PacketError::UnknownVersion(v) => write!(f, "QUIC version 0x{v:08x} not read"),
            PacketError::Truncated(what) => write!(f, "{what} runs past the packet"),
            PacketError::Retry => f.write_str("a Retry packet"),
            PacketError::Authentication => f.write_str("packet did not authenticate"),
        }
    }
}

/// Big-endian cursor over a borrowed slice; every read is checked.
pub(crate) struct Cur<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cur<'a> {
    pub(crate) fn new(b: &'a [u8]) -> Self {
        Cur { b, pos: 0 }
    }

    /// The bytes not read yet (without consuming them).
    pub(crate) fn remaining(&self) -> &'a [u8] {
        self.b.get(self.pos..).unwrap_or_default()
    }

    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], PacketError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or(PacketError::Truncated(what))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, PacketError> {
        Ok(self.take(1, what)?[0])
    }

    /// A variable-length integer (RFC 9000 §16).
    pub(crate) fn varint(&mut self, what: &'static str) -> Result<u64, PacketError> {
        let first = self.u8(what)?;
        let len = 1usize << (first >> 6);
        let rest = self.take(len - 1, what)?;
        Ok(rest
            .iter()
            .fold(u64::from(first & 0x3f), |v, &b| v << 8 | u64::from(b)))
    }

    /// A varint used as a length or offset into memory.
    pub(crate) fn varint_usize(&mut self, what: &'static str) -> Result<usize, PacketError> {
        usize::try_from(self.varint(what)?).map_err(|_| PacketError::Truncated(what))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.b.len()
    }
}

/// Parses the long header at the start of `packet` (which may hold more coalesced
/// packets after it).
pub fn parse_long_header(packet: &[u8]) -> Result<LongHeader<'_>, PacketError> {
    parse_long_header_typed(packet, packet_type)
}

/// [`parse_long_header`] with the packet types of the versions `kind_of` knows
/// (from the version and the first byte).
fn parse_long_header_typed(
    packet: &[u8],
    kind_of: impl Fn(u32, u8) -> Option<PacketType>,
) -> Result<LongHeader<'_>, PacketError> {
    let mut c = Cur::new(packet);
    let first = c.u8("first byte")?;
    if first & 0x80 == 0 {
        return Err(PacketError::NotLongHeader);
    }
    let v = c.take(4, "version")?;
    let version = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
    let kind = kind_of(version, first).ok_or(PacketError::UnknownVersion(version))?;
    let dcid_len = usize::from(c.u8("DCID length")?);
    if dcid_len > MAX_CID_LEN {
        return Err(PacketError::Truncated("DCID length"));
    }
    let dcid = c.take(dcid_len, "DCID")?;
    let scid_len = usize::from(c.u8("SCID length")?);
    if scid_len > MAX_CID_LEN {
        return Err(PacketError::Truncated("SCID length"));
    }
    let scid = c.take(scid_len, "SCID")?;
    let token = match kind {
        PacketType::Retry => return Err(PacketError::Retry),
        PacketType::Initial => {
            let n = c.varint_usize("token length")?;
            c.take(n, "token")?
        }
        PacketType::ZeroRtt | PacketType::Handshake => &[],
    };
    let length = c.varint_usize("length")?;
    let pn_offset = c.pos;
    let packet_len = pn_offset
        .checked_add(length)
        .filter(|&e| e <= packet.len())
        .ok_or(PacketError::Truncated("packet length"))?;
    Ok(LongHeader {
        first,
        version,
        kind,
        dcid,
        scid,
        token,
        pn_offset,
        packet_len,
    })
}

/// Whether a datagram starts with a client Initial packet of a version we read: the
/// cheap test the flow table runs on a UDP flow's first datagram (decryption is the
/// real proof).
pub fn looks_like_initial(datagram: &[u8]) -> bool {
    matches!(parse_long_header(datagram), Ok(h) if h.kind == PacketType::Initial)
}

/// The client Initial secrets of a connection (RFC 9001 §5.2, appendix A.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialSecrets {
    /// `client_initial_secret`.
    pub secret: [u8; 32],
    /// AES-128-GCM packet protection key.
    pub key: [u8; 16],
    pub iv: [u8; 12],
    /// AES-128 header protection key.
    pub hp: [u8; 16],
}

/// Output length for `ring`'s HKDF.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Expand-Label (RFC 8446 §7.1) with an empty context, into `out`.
pub(crate) fn expand_label(prk: &hkdf::Prk, label: &[u8], out: &mut [u8]) {
    // The info is length (u16), "tls13 " + label (u8-prefixed), empty context (u8 0).
    // Our labels are at most 16 bytes and outputs at most 32: both fit their prefixes.
    let len = (out.len() as u16).to_be_bytes();
    let label_len = [(6 + label.len()) as u8];
    let info: [&[u8]; 5] = [&len, &label_len, b"tls13 ", label, &[0]];
    // `expand` fails only when the output exceeds 255 hash lengths, and `fill` only
    // when `out` differs from the length asked for: neither with these constant sizes.
    if let Ok(okm) = prk.expand(&info, Len(out.len())) {
        let _ = okm.fill(out);
    }
}

/// The client Initial secrets for `dcid` under `version`, or `None` for a version
/// we do not know.
pub fn client_initial_secrets(version: u32, dcid: &[u8]) -> Option<InitialSecrets> {
    initial_secrets(version, dcid, b"client in")
}

/// The server Initial secrets for `dcid` (the client's first DCID) under `version`
/// (RFC 9001 §5.2: the same initial secret, label "server in"), or `None` for a
/// version we do not know.
pub fn server_initial_secrets(version: u32, dcid: &[u8]) -> Option<InitialSecrets> {
    initial_secrets(version, dcid, b"server in")
}

/// QUIC v1's labels of the Initial key, IV and header protection key.
const LABELS_V1: [&[u8]; 3] = [b"quic key", b"quic iv", b"quic hp"];

/// The Initial secrets of one side: `side_label` is "client in" or "server in".
fn initial_secrets(version: u32, dcid: &[u8], side_label: &[u8]) -> Option<InitialSecrets> {
    let (salt, labels): (&[u8], [&[u8]; 3]) = match version {
        QUIC_V1 => (&SALT_V1, LABELS_V1),
        QUIC_V2 => (&SALT_V2, [b"quicv2 key", b"quicv2 iv", b"quicv2 hp"]),
        _ => return None,
    };
    Some(derive_initial_secrets(salt, labels, dcid, side_label))
}

/// The Initial secrets of one side under `salt` and `labels`.
fn derive_initial_secrets(
    salt: &[u8],
    labels: [&[u8]; 3],
    dcid: &[u8],
    side_label: &[u8],
) -> InitialSecrets {
    let initial = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(dcid);
    let mut s = InitialSecrets {
        secret: [0; 32],
        key: [0; 16],
        iv: [0; 12],
        hp: [0; 16],
    };
    expand_label(&initial, side_label, &mut s.secret);
    let client = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, &s.secret);
    expand_label(&client, labels[0], &mut s.key);
    expand_label(&client, labels[1], &mut s.iv);
    expand_label(&client, labels[2], &mut s.hp);
    s
}

/// The plaintext payload of the client Initial packet at the start of `datagram`,
/// of a version laid out and protected as QUIC v1 (draft-era long header, v1's
/// labels) under its own `salt`: Google QUIC's Q050, T050 and T051. `None` when it is
/// not such a packet or does not authenticate.
pub(crate) fn open_salted_initial(datagram: &[u8], salt: &[u8]) -> Option<Vec<u8>> {
    let initial = |_: u32, first: u8| ((first >> 4) & 0x03 == 0).then_some(PacketType::Initial);
    let header = parse_long_header_typed(datagram, initial).ok()?;
    let secrets = derive_initial_secrets(salt, LABELS_V1, header.dcid, b"client in");
    let keys = InitialKeys::from_secrets(header.version, header.dcid, secrets)?;
    let packet = datagram.get(..header.packet_len)?;
    let mut scratch = Vec::with_capacity(packet.len());
    let (_, plain) = open_packet(&keys, &header, packet, None, &mut scratch).ok()?;
    scratch.truncate(plain.end);
    scratch.drain(..plain.start);
    Some(scratch)
}

/// Ready-to-use keys of one (version, DCID).
pub(crate) struct InitialKeys {
    version: u32,
    dcid: Vec<u8>,
    aead: LessSafeKey,
    hp: hp::HeaderProtectionKey,
    iv: [u8; 12],
}

impl InitialKeys {
    fn new(version: u32, dcid: &[u8]) -> Option<Self> {
        Self::from_secrets(version, dcid, client_initial_secrets(version, dcid)?)
    }

    /// The server's Initial keys of a connection whose client first wrote to `dcid`.
    pub(crate) fn server(version: u32, dcid: &[u8]) -> Option<Self> {
        Self::from_secrets(version, dcid, server_initial_secrets(version, dcid)?)
    }

    fn from_secrets(version: u32, dcid: &[u8], s: InitialSecrets) -> Option<Self> {
        Some(InitialKeys {
            version,
            dcid: dcid.to_vec(),
            aead: LessSafeKey::new(UnboundKey::new(&aead::AES_128_GCM, &s.key).ok()?),
            hp: hp::HeaderProtectionKey::new(&hp::AES_128, &s.hp).ok()?,
            iv: s.iv,
        })
    }
}

/// The full packet number from its truncated encoding (RFC 9000 appendix A.3).
pub(crate) fn decode_pn(largest: Option<u64>, truncated: u64, pn_len: usize) -> u64 {
    let expected = largest.map_or(0, |l| l.saturating_add(1));
    let win = 1u64 << (8 * pn_len);
    let hwin = win / 2;
    let candidate = (expected & !(win - 1)) | truncated;
    if candidate.saturating_add(hwin) <= expected && candidate < (1u64 << 62) - win {
        candidate + win
    } else if candidate > expected.saturating_add(hwin) && candidate >= win {
        candidate - win
    } else {
        candidate
    }
}

/// Removes header protection and decrypts one Initial packet (`packet` is exactly
/// the packet, `header` its parse) into `scratch`; returns the packet number and the
/// plaintext payload's range in `scratch`.
pub(crate) fn open_packet(
    keys: &InitialKeys,
    header: &LongHeader<'_>,
    packet: &[u8],
    largest_pn: Option<u64>,
    scratch: &mut Vec<u8>,
) -> Result<(u64, std::ops::Range<usize>), PacketError> {
    let pn_offset = header.pn_offset;
    // The sample starts 4 bytes after the packet number's start, whatever its length.
    let sample = packet
        .get(pn_offset + 4..pn_offset + 4 + SAMPLE_LEN)
        .ok_or(PacketError::Truncated("header protection sample"))?;
    let mask = keys
        .hp
        .new_mask(sample)
        .map_err(|_| PacketError::Authentication)?;
    scratch.clear();
    scratch.extend_from_slice(packet);
    scratch[0] ^= mask[0] & 0x0f;
    let pn_len = usize::from(scratch[0] & 0x03) + 1;
    let mut truncated = 0u64;
    for i in 0..pn_len {
        // pn_offset + 4 + 16 <= packet.len() was checked with the sample.
        scratch[pn_offset + i] ^= mask[1 + i];
        truncated = truncated << 8 | u64::from(scratch[pn_offset + i]);
    }
    let pn = decode_pn(largest_pn, truncated, pn_len);
    let mut nonce = keys.iv;
    for (n, p) in nonce[4..].iter_mut().zip(pn.to_be_bytes()) {
        *n ^= p;
    }
    let body_start = pn_offset + pn_len;
    let (head, body) = scratch.split_at_mut(body_start);
    if body.len() < TAG_LEN {
        return Err(PacketError::Truncated("payload"));
    }
    let plain = keys
        .aead
        .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(&*head), body)
        .map_err(|_| PacketError::Authentication)?;
    let plain_len = plain.len();
    Ok((pn, body_start..body_start + plain_len))
}

/// The CRYPTO stream of one packet number space (Initial or Handshake), put back in
/// order.
#[derive(Debug, Default)]
pub(crate) struct CryptoStream {
    buf: Vec<u8>,
    /// Received ranges, sorted, disjoint and not touching.
    ranges: Vec<(usize, usize)>,
}

/// Why CRYPTO data was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CryptoRefused {
    /// Ends beyond [`MAX_CRYPTO_BYTES`].
    TooFar,
    /// Would leave more than [`MAX_CRYPTO_RANGES`] disjoint ranges.
    TooManyRanges,
}

impl CryptoStream {
    /// Takes `data` at `offset`; bytes already held are kept (see the module doc).
    pub(crate) fn insert(&mut self, offset: u64, data: &[u8]) -> Result<(), CryptoRefused> {
        let start = usize::try_from(offset).map_err(|_| CryptoRefused::TooFar)?;
        let end = start
            .checked_add(data.len())
            .filter(|&e| e <= MAX_CRYPTO_BYTES)
            .ok_or(CryptoRefused::TooFar)?;
        if data.is_empty() {
            return Ok(());
        }
        let mut merged = Vec::with_capacity(self.ranges.len() + 1);
        let (mut s, mut e) = (start, end);
        let mut placed = false;
        for &(rs, re) in &self.ranges {
            if re < s {
                merged.push((rs, re));
            } else if rs > e {
                if !placed {
                    merged.push((s, e));
                    placed = true;
                }
                merged.push((rs, re));
            } else {
                s = s.min(rs);
                e = e.max(re);
            }
        }
        if !placed {
            merged.push((s, e));
        }
        if merged.len() > MAX_CRYPTO_RANGES {
            return Err(CryptoRefused::TooManyRanges);
        }
        if self.buf.len() < end {
            self.buf.resize(end, 0);
        }
        // Fill only the gaps between ranges already held.
        let mut pos = start;
        for &(rs, re) in &self.ranges {
            if re <= pos {
                continue;
            }
            if rs >= end {
                break;
            }
            if rs > pos {
                self.buf[pos..rs].copy_from_slice(&data[pos - start..rs - start]);
            }
            pos = pos.max(re);
            if pos >= end {
                break;
            }
        }
        if pos < end {
            self.buf[pos..end].copy_from_slice(&data[pos - start..]);
        }
        self.ranges = merged;
        Ok(())
    }

    /// The bytes from offset 0 with no gap.
    pub(crate) fn contiguous(&self) -> &[u8] {
        match self.ranges.first() {
            Some(&(0, end)) => &self.buf[..end],
            _ => &[],
        }
    }
}

/// What one decrypted payload contained.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct FrameSummary {
    crypto_frames: usize,
    /// A frame type not allowed in Initial packets ended the payload (its type).
    unexpected: Option<u64>,
    /// The CONNECTION_CLOSE error code, if one was sent.
    close: Option<u64>,
}

/// ACK and ACK_ECN (RFC 9000 §19.3): skipped field by field.
pub(crate) fn skip_ack(c: &mut Cur<'_>, ecn: bool) -> Result<(), PacketError> {
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

/// Reads the frames of an Initial packet's payload, CRYPTO data into `crypto`.
pub(crate) fn read_frames(
    payload: &[u8],
    crypto: &mut CryptoStream,
    refused: &mut Option<CryptoRefused>,
) -> Result<FrameSummary, PacketError> {
    let mut c = Cur::new(payload);
    let mut summary = FrameSummary::default();
    while !c.is_empty() {
        let kind = c.varint("frame type")?;
        match kind {
            0x00 => {
                // PADDING: skip the whole run at once.
                let rest = &payload[c.pos..];
                c.pos += rest.iter().take_while(|&&b| b == 0).count();
            }
            0x01 => {}
            0x02 | 0x03 => skip_ack(&mut c, kind == 0x03)?,
            0x06 => {
                let offset = c.varint("CRYPTO offset")?;
                let len = c.varint_usize("CRYPTO length")?;
                let data = c.take(len, "CRYPTO data")?;
                summary.crypto_frames += 1;
                if let Err(e) = crypto.insert(offset, data) {
                    refused.get_or_insert(e);
                }
            }
            0x1c | 0x1d => {
                summary.close = Some(c.varint("CONNECTION_CLOSE error")?);
                if kind == 0x1c {
                    c.varint("CONNECTION_CLOSE frame type")?;
                }
                let n = c.varint_usize("CONNECTION_CLOSE reason length")?;
                c.take(n, "CONNECTION_CLOSE reason")?;
            }
            other => {
                summary.unexpected = Some(other);
                break;
            }
        }
    }
    Ok(summary)
}

/// Reads the ClientHello from the client datagrams of one QUIC connection; see the
/// module doc. Feed datagrams with [`push`](Self::push) until the answer is not
/// `NeedMore`; later feeds answer `Malformed("finished")`.
pub struct QuicInitialReader {
    keys: Vec<InitialKeys>,
    largest_pn: Option<u64>,
    crypto: CryptoStream,
    datagrams: usize,
    packets: usize,
    decrypted: usize,
    anomalies: Vec<Anomaly>,
    /// CRYPTO data refused by a limit (reported once).
    refused: Option<CryptoRefused>,
    refused_reported: bool,
    finished: bool,
    /// The SCID of the first Initial packet that decrypted.
    client_scid: Option<Vec<u8>>,
    /// Decryption buffer, reused across the packets of one datagram.
    scratch: Vec<u8>,
    /// The ClientHello's body when it offers ECH, kept once the CRYPTO data is freed.
    ech_hello_body: Option<Vec<u8>>,
}

impl Default for QuicInitialReader {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for QuicInitialReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuicInitialReader")
            .field("version", &self.version())
            .field("datagrams", &self.datagrams)
            .field("packets", &self.packets)
            .field("decrypted", &self.decrypted)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl QuicInitialReader {
    /// A reader before the connection's first client datagram.
    pub fn new() -> Self {
        QuicInitialReader {
            keys: Vec::new(),
            largest_pn: None,
            crypto: CryptoStream::default(),
            datagrams: 0,
            packets: 0,
            decrypted: 0,
            anomalies: Vec::new(),
            refused: None,
            refused_reported: false,
            finished: false,
            client_scid: None,
            scratch: Vec::new(),
            ech_hello_body: None,
        }
    }

    /// The QUIC version of the first Initial packet that decrypted.
    pub fn version(&self) -> Option<u32> {
        (self.decrypted > 0)
            .then(|| self.keys.first().map(|k| k.version))
            .flatten()
    }

    /// The Destination Connection ID of the client's first Initial packet that
    /// decrypted, from which both sides' Initial keys derive (what
    /// [`QuicConnReader`](crate::net::quic_conn::QuicConnReader) needs to read the
    /// server's Initial).
    pub fn original_dcid(&self) -> Option<&[u8]> {
        (self.decrypted > 0)
            .then(|| self.keys.first().map(|k| k.dcid.as_slice()))
            .flatten()
    }

    /// The Source Connection ID of the client's first Initial packet that decrypted:
    /// the connection ID the server writes to, so its length is the DCID length of
    /// the server's short-header packets.
    pub fn client_scid(&self) -> Option<&[u8]> {
        self.client_scid.as_deref()
    }

    /// Initial packets decrypted so far: more than 0 means the flow is QUIC.
    pub fn decrypted_packets(&self) -> usize {
        self.decrypted
    }

    /// Odd things seen so far (failed authentication, forbidden frames, limits).
    pub fn anomalies(&self) -> &[Anomaly] {
        &self.anomalies
    }

    /// Hands the anomalies out, leaving none.
    pub fn take_anomalies(&mut self) -> Vec<Anomaly> {
        std::mem::take(&mut self.anomalies)
    }

    fn note(&mut self, kind: &str, detail: String) {
        if self.anomalies.len() < MAX_ANOMALIES {
            self.anomalies.push(Anomaly::new(kind, detail));
        }
    }

    /// One UDP payload sent by the client. `NotTls` when the flow's first datagram
    /// holds no client Initial packet that decrypts; `Done` with the ClientHello once
    /// its CRYPTO data is complete.
    pub fn push(&mut self, datagram: &[u8]) -> HelloPoll<ClientHello> {
        if self.finished {
            return HelloPoll::Malformed("finished".into());
        }
        let answer = self.feed(datagram);
        // A reader waiting for more holds only its CRYPTO data, not a datagram's worth
        // of scratch space: flow tables keep many of them.
        self.scratch = Vec::new();
        if !matches!(answer, HelloPoll::NeedMore) {
            self.finished = true;
            if matches!(&answer, HelloPoll::Done(h) if h.offers_ech()) {
                // A complete ClientHello: its header and length were checked.
                let data = self.crypto.contiguous();
                let len = data.get(1..4).map_or(0, |l| {
                    usize::from(l[0]) << 16 | usize::from(l[1]) << 8 | usize::from(l[2])
                });
                self.ech_hello_body = data.get(4..4 + len).map(<[u8]>::to_vec);
            }
            self.crypto = CryptoStream::default();
        }
        answer
    }

    fn feed(&mut self, datagram: &[u8]) -> HelloPoll<ClientHello> {
        self.datagrams += 1;
        let first_datagram = self.datagrams == 1;
        let mut rest = datagram;
        while !rest.is_empty() && self.packets < MAX_PACKETS {
            // Zero bytes after the last packet are padding of the datagram, and a short
            // header (1-RTT) packet runs to the datagram's end.
            if rest[0] & 0x80 == 0 {
                break;
            }
            let header = match parse_long_header(rest) {
                Ok(h) => h,
                Err(e) => {
                    if self.decrypted > 0 {
                        self.note("quic-malformed-packet", e.to_string());
                    }
                    break;
                }
            };
            self.packets += 1;
            let (packet, after) = rest.split_at(header.packet_len);
            rest = after;
            if header.kind != PacketType::Initial {
                continue;
            }
            match self.open(&header, packet) {
                Ok(()) => {}
                Err(e) => {
                    if self.decrypted > 0 {
                        self.note("quic-initial-unreadable", e.to_string());
                    }
                }
            }
        }
        if self.refused.is_some() && !self.refused_reported {
            self.refused_reported = true;
            let detail = match self.refused {
                Some(CryptoRefused::TooManyRanges) => {
                    format!("CRYPTO data in more than {MAX_CRYPTO_RANGES} pieces; some dropped")
                }
                _ => format!("CRYPTO data beyond {MAX_CRYPTO_BYTES} bytes dropped"),
            };
            self.note("quic-crypto-limit", detail);
        }
        if self.decrypted == 0 {
            if first_datagram {
                return HelloPoll::NotTls;
            }
        } else if let Some(answer) = self.client_hello() {
            return answer;
        }
        if self.packets >= MAX_PACKETS {
            return HelloPoll::Malformed(format!("no ClientHello within {MAX_PACKETS} packets"));
        }
        if self.datagrams >= MAX_DATAGRAMS {
            return HelloPoll::Malformed(format!(
                "no ClientHello within {MAX_DATAGRAMS} datagrams"
            ));
        }
        HelloPoll::NeedMore
    }

    /// Decrypts one Initial packet with the known keys, else with keys for its own
    /// DCID, and reads its frames.
    fn open(&mut self, header: &LongHeader<'_>, packet: &[u8]) -> Result<(), PacketError> {
        let mut opened = None;
        for keys in &self.keys {
            if keys.version != header.version {
                continue;
            }
            if let Ok(r) = open_packet(keys, header, packet, self.largest_pn, &mut self.scratch) {
                opened = Some(r);
                break;
            }
        }
        let known = self
            .keys
            .iter()
            .any(|k| k.version == header.version && k.dcid == header.dcid);
        if opened.is_none() && !known && self.keys.len() < MAX_KEY_SETS {
            if let Some(keys) = InitialKeys::new(header.version, header.dcid) {
                let r = open_packet(&keys, header, packet, self.largest_pn, &mut self.scratch);
                if let Ok(r) = r {
                    opened = Some(r);
                    // The keys of the first packet that decrypts go first.
                    if self.decrypted == 0 {
                        self.keys.insert(0, keys);
                    } else {
                        self.keys.push(keys);
                    }
                } else if self.decrypted > 0 {
                    // Keys that opened nothing are kept only once the flow is known to
                    // be QUIC, so that a stray datagram cannot use up the key slots.
                    self.keys.push(keys);
                }
            }
        }
        let (pn, range) = opened.ok_or(PacketError::Authentication)?;
        if self.decrypted == 0 {
            self.client_scid = Some(header.scid.to_vec());
        }
        self.decrypted += 1;
        self.largest_pn = Some(self.largest_pn.map_or(pn, |l| l.max(pn)));
        let payload = &self.scratch[range];
        let summary = read_frames(payload, &mut self.crypto, &mut self.refused);
        match summary {
            Ok(s) => {
                if let Some(t) = s.unexpected {
                    self.note(
                        "quic-unexpected-frame",
                        format!("frame type 0x{t:x} in an Initial packet; rest of it skipped"),
                    );
                }
                if let Some(code) = s.close {
                    self.note(
                        "quic-connection-close",
                        format!("client closed the connection (error 0x{code:x})"),
                    );
                }
            }
            Err(e) => self.note("quic-malformed-frame", e.to_string()),
        }
        Ok(())
    }

    /// The version, original DCID and client SCID of the connection, once an Initial
    /// decrypted: what a reader of the rest of it needs.
    pub fn connection_ids(&self) -> Option<(u32, &[u8], &[u8])> {
        Some((self.version()?, self.original_dcid()?, self.client_scid()?))
    }

    /// The body of a ClientHello read that offers Encrypted Client Hello (after its
    /// 4-byte handshake header): the ECH payload's AAD is made of it.
    pub fn ech_hello_body(&self) -> Option<&[u8]> {
        self.ech_hello_body.as_deref()
    }

    /// The answer once the CRYPTO stream holds a complete first handshake message.
    fn client_hello(&self) -> Option<HelloPoll<ClientHello>> {
        let data = self.crypto.contiguous();
        let h = data.get(..4)?;
        if h[0] != CLIENT_HELLO {
            return Some(HelloPoll::Malformed(format!(
                "handshake message type {} where a ClientHello was expected",
                h[0]
            )));
        }
        let len = usize::from(h[1]) << 16 | usize::from(h[2]) << 8 | usize::from(h[3]);
        if len > MAX_CRYPTO_BYTES - 4 {
            return Some(HelloPoll::Malformed(format!("ClientHello of {len} bytes")));
        }
        let body = data.get(4..4 + len)?;
        Some(match tls::parse_client_hello(body) {
            Ok(hello) => HelloPoll::Done(hello),
            Err(e) => HelloPoll::Malformed(e),
        })
    }
}

/// Builds a protected client Initial packet as a client sends it (RFC 9001 §5; no
/// token; `frames` padded with PADDING to at least `min_payload` bytes): for tests,
/// fuzzing and capture generators. `None` for an unknown version, a packet number
/// length outside 1..=4 or a connection ID over 20 bytes.
pub fn protect_client_initial(
    version: u32,
    dcid: &[u8],
    scid: &[u8],
    pn: u64,
    pn_len: usize,
    frames: &[u8],
    min_payload: usize,
) -> Option<Vec<u8>> {
    let type_bits = match version {
        QUIC_V1 => 0u8,
        QUIC_V2 => 1,
        _ => return None,
    };
    if !(1..=4).contains(&pn_len) || dcid.len() > MAX_CID_LEN || scid.len() > MAX_CID_LEN {
        return None;
    }
    let s = client_initial_secrets(version, dcid)?;
    let mut payload = frames.to_vec();
    // The header protection sample needs 4 + 16 bytes after the packet number's start.
    let min = min_payload.max(4 - pn_len + SAMPLE_LEN);
    if payload.len() < min {
        payload.resize(min, 0);
    }
    let mut header = vec![0xc0 | type_bits << 4 | (pn_len as u8 - 1)];
    header.extend(version.to_be_bytes());
    header.push(dcid.len() as u8);
    header.extend_from_slice(dcid);
    header.push(scid.len() as u8);
    header.extend_from_slice(scid);
    header.push(0); // no token
    let length = u32::try_from(pn_len + payload.len() + TAG_LEN)
        .ok()
        .filter(|&l| l < 1 << 30)?;
    // Two bytes when it fits (as the RFC examples), else four.
    match u16::try_from(length) {
        Ok(l) if l < 1 << 14 => header.extend((0x4000 | l).to_be_bytes()),
        _ => header.extend((0x8000_0000 | length).to_be_bytes()),
    }
    let pn_offset = header.len();
    header.extend(&pn.to_be_bytes()[8 - pn_len..]);
    let key = LessSafeKey::new(UnboundKey::new(&aead::AES_128_GCM, &s.key).ok()?);
    let mut nonce = s.iv;
    for (n, p) in nonce[4..].iter_mut().zip(pn.to_be_bytes()) {
        *n ^= p;
    }
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(&header[..]),
        &mut payload,
    )
    .ok()?;
    let mut packet = header;
    packet.extend(payload);
    let hpk = hp::HeaderProtectionKey::new(&hp::AES_128, &s.hp).ok()?;
    let mask = hpk
        .new_mask(packet.get(pn_offset + 4..pn_offset + 4 + SAMPLE_LEN)?)
        .ok()?;
    packet[0] ^= mask[0] & 0x0f;
    for i in 0..pn_len {
        packet[pn_offset + i] ^= mask[1 + i];
    }
    Some(packet)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 9001 appendix A.2: the protected client Initial (1200 bytes).
    const V1_CLIENT_INITIAL: &str = concat!(
        "c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11",
        "d242b123dc9bd8bab936b47d92ec356c0bab7df5976d27cd449f63300099f399",
        "1c260ec4c60d17b31f8429157bb35a1282a643a8d2262cad67500cadb8e7378c",
        "8eb7539ec4d4905fed1bee1fc8aafba17c750e2c7ace01e6005f80fcb7df6212",
        "30c83711b39343fa028cea7f7fb5ff89eac2308249a02252155e2347b63d58c5",
        "457afd84d05dfffdb20392844ae812154682e9cf012f9021a6f0be17ddd0c208",
        "4dce25ff9b06cde535d0f920a2db1bf362c23e596d11a4f5a6cf3948838a3aec",
        "4e15daf8500a6ef69ec4e3feb6b1d98e610ac8b7ec3faf6ad760b7bad1db4ba3",
        "485e8a94dc250ae3fdb41ed15fb6a8e5eba0fc3dd60bc8e30c5c4287e53805db",
        "059ae0648db2f64264ed5e39be2e20d82df566da8dd5998ccabdae053060ae6c",
        "7b4378e846d29f37ed7b4ea9ec5d82e7961b7f25a9323851f681d582363aa5f8",
        "9937f5a67258bf63ad6f1a0b1d96dbd4faddfcefc5266ba6611722395c906556",
        "be52afe3f565636ad1b17d508b73d8743eeb524be22b3dcbc2c7468d54119c74",
        "68449a13d8e3b95811a198f3491de3e7fe942b330407abf82a4ed7c1b311663a",
        "c69890f4157015853d91e923037c227a33cdd5ec281ca3f79c44546b9d90ca00",
        "f064c99e3dd97911d39fe9c5d0b23a229a234cb36186c4819e8b9c5927726632",
        "291d6a418211cc2962e20fe47feb3edf330f2c603a9d48c0fcb5699dbfe58964",
        "25c5bac4aee82e57a85aaf4e2513e4f05796b07ba2ee47d80506f8d2c25e50fd",
        "14de71e6c418559302f939b0e1abd576f279c4b2e0feb85c1f28ff18f58891ff",
        "ef132eef2fa09346aee33c28eb130ff28f5b766953334113211996d20011a198",
        "e3fc433f9f2541010ae17c1bf202580f6047472fb36857fe843b19f5984009dd",
        "c324044e847a4f4a0ab34f719595de37252d6235365e9b84392b061085349d73",
        "203a4a13e96f5432ec0fd4a1ee65accdd5e3904df54c1da510b0ff20dcc0c77f",
        "cb2c0e0eb605cb0504db87632cf3d8b4dae6e705769d1de354270123cb11450e",
        "fc60ac47683d7b8d0f811365565fd98c4c8eb936bcab8d069fc33bd801b03ade",
        "a2e1fbc5aa463d08ca19896d2bf59a071b851e6c239052172f296bfb5e724047",
        "90a2181014f3b94a4e97d117b438130368cc39dbb2d198065ae3986547926cd2",
        "162f40a29f0c3c8745c0f50fba3852e566d44575c29d39a03f0cda721984b6f4",
        "40591f355e12d439ff150aab7613499dbd49adabc8676eef023b15b65bfc5ca0",
        "6948109f23f350db82123535eb8a7433bdabcb909271a6ecbcb58b936a88cd4e",
        "8f2e6ff5800175f113253d8fa9ca8885c2f552e657dc603f252e1a8e308f76f0",
        "be79e2fb8f5d5fbbe2e30ecadd220723c8c0aea8078cdfcb3868263ff8f09400",
        "54da48781893a7e49ad5aff4af300cd804a6b6279ab3ff3afb64491c85194aab",
        "760d58a606654f9f4400e8b38591356fbf6425aca26dc85244259ff2b19c41b9",
        "f96f3ca9ec1dde434da7d2d392b905ddf3d1f9af93d1af5950bd493f5aa731b4",
        "056df31bd267b6b90a079831aaf579be0a39013137aac6d404f518cfd4684064",
        "7e78bfe706ca4cf5e9c5453e9f7cfd2b8b4c8d169a44e55c88d4a9a7f9474241",
        "e221af44860018ab0856972e194cd934",
    );
    /// RFC 9369 appendix A.2: the same Initial under QUIC v2.
    const V2_CLIENT_INITIAL: &str = concat!(
        "d76b3343cf088394c8f03e5157080000449ea0c95e82ffe67b6abcdb4298b485",
        "dd04de806071bf03dceebfa162e75d6c96058bdbfb127cdfcbf903388e99ad04",
        "9f9a3dd4425ae4d0992cfff18ecf0fdb5a842d09747052f17ac2053d21f57c5d",
        "250f2c4f0e0202b70785b7946e992e58a59ac52dea6774d4f03b55545243cf1a",
        "12834e3f249a78d395e0d18f4d766004f1a2674802a747eaa901c3f10cda5500",
        "cb9122faa9f1df66c392079a1b40f0de1c6054196a11cbea40afb6ef5253cd68",
        "18f6625efce3b6def6ba7e4b37a40f7732e093daa7d52190935b8da58976ff33",
        "12ae50b187c1433c0f028edcc4c2838b6a9bfc226ca4b4530e7a4ccee1bfa2a3",
        "d396ae5a3fb512384b2fdd851f784a65e03f2c4fbe11a53c7777c023462239dd",
        "6f7521a3f6c7d5dd3ec9b3f233773d4b46d23cc375eb198c63301c21801f6520",
        "bcfb7966fc49b393f0061d974a2706df8c4a9449f11d7f3d2dcbb90c6b877045",
        "636e7c0c0fe4eb0f697545460c806910d2c355f1d253bc9d2452aaa549e27a1f",
        "ac7cf4ed77f322e8fa894b6a83810a34b361901751a6f5eb65a0326e07de7c12",
        "16ccce2d0193f958bb3850a833f7ae432b65bc5a53975c155aa4bcb4f7b2c4e5",
        "4df16efaf6ddea94e2c50b4cd1dfe06017e0e9d02900cffe1935e0491d77ffb4",
        "fdf85290fdd893d577b1131a610ef6a5c32b2ee0293617a37cbb08b847741c3b",
        "8017c25ca9052ca1079d8b78aebd47876d330a30f6a8c6d61dd1ab5589329de7",
        "14d19d61370f8149748c72f132f0fc99f34d766c6938597040d8f9e2bb522ff9",
        "9c63a344d6a2ae8aa8e51b7b90a4a806105fcbca31506c446151adfeceb51b91",
        "abfe43960977c87471cf9ad4074d30e10d6a7f03c63bd5d4317f68ff325ba3bd",
        "80bf4dc8b52a0ba031758022eb025cdd770b44d6d6cf0670f4e990b22347a7db",
        "848265e3e5eb72dfe8299ad7481a408322cac55786e52f633b2fb6b614eaed18",
        "d703dd84045a274ae8bfa73379661388d6991fe39b0d93debb41700b41f90a15",
        "c4d526250235ddcd6776fc77bc97e7a417ebcb31600d01e57f32162a8560cacc",
        "7e27a096d37a1a86952ec71bd89a3e9a30a2a26162984d7740f81193e8238e61",
        "f6b5b984d4d3dfa033c1bb7e4f0037febf406d91c0dccf32acf423cfa1e70710",
        "10d3f270121b493ce85054ef58bada42310138fe081adb04e2bd901f2f13458b",
        "3d6758158197107c14ebb193230cd1157380aa79cae1374a7c1e5bbcb80ee23e",
        "06ebfde206bfb0fcbc0edc4ebec309661bdd908d532eb0c6adc38b7ca7331dce",
        "8dfce39ab71e7c32d318d136b6100671a1ae6a6600e3899f31f0eed19e3417d1",
        "34b90c9058f8632c798d4490da4987307cba922d61c39805d072b589bd52fdf1",
        "e86215c2d54e6670e07383a27bbffb5addf47d66aa85a0c6f9f32e59d85a44dd",
        "5d3b22dc2be80919b490437ae4f36a0ae55edf1d0b5cb4e9a3ecabee93dfc6e3",
        "8d209d0fa6536d27a5d6fbb17641cde27525d61093f1b28072d111b2b4ae5f89",
        "d5974ee12e5cf7d5da4d6a31123041f33e61407e76cffcdcfd7e19ba58cf4b53",
        "6f4c4938ae79324dc402894b44faf8afbab35282ab659d13c93f70412e85cb19",
        "9a37ddec600545473cfb5a05e08d0b209973b2172b4d21fb69745a262ccde96b",
        "a18b2faa745b6fe189cf772a9f84cbfc",
    );
    /// RFC 9001 / RFC 9369 appendix A.2: the CRYPTO frame of the unprotected payload (then PADDING to 1162 bytes).
    const CRYPTO_FRAME: &str = concat!(
        "060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e868",
        "04fe3a47f06a2b69484c00000413011302010000c000000010000e00000b6578",
        "616d706c652e636f6dff01000100000a00080006001d00170018001000070005",
        "04616c706e000500050100000000003300260024001d00209370b2c9caa47fba",
        "baf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b000302030400",
        "0d0010000e0403050306030203080408050806002d00020101001c0002400100",
        "3900320408ffffffffffffffff05048000ffff07048000ffff08011001048000",
        "75300901100f088394c8f03e51570806048000ffff",
    );

    /// The DCID of the RFC examples.
    const RFC_DCID: [u8; 8] = [0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08];

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

    /// A CRYPTO frame.
    pub(crate) fn crypto_frame(offset: usize, data: &[u8]) -> Vec<u8> {
        let mut f = vec![0x06];
        f.extend(varint(offset as u64));
        f.extend(varint(data.len() as u64));
        f.extend_from_slice(data);
        f
    }

    /// A TLS ClientHello handshake message offering TLS 1.3, with `sni`, `alpn` and a
    /// padding extension of `pad` bytes (standing in for a post-quantum key share).
    pub(crate) fn client_hello(sni: &str, alpn: &[&str], pad: usize) -> Vec<u8> {
        fn ext(t: u16, d: &[u8]) -> Vec<u8> {
            let mut e = t.to_be_bytes().to_vec();
            e.extend((d.len() as u16).to_be_bytes());
            e.extend_from_slice(d);
            e
        }
        let mut exts = Vec::new();
        let mut name = vec![0u8];
        name.extend((sni.len() as u16).to_be_bytes());
        name.extend_from_slice(sni.as_bytes());
        let mut list = (name.len() as u16).to_be_bytes().to_vec();
        list.extend(name);
        exts.extend(ext(0, &list));
        let mut protos = Vec::new();
        for p in alpn {
            protos.push(p.len() as u8);
            protos.extend_from_slice(p.as_bytes());
        }
        let mut a = (protos.len() as u16).to_be_bytes().to_vec();
        a.extend(protos);
        exts.extend(ext(16, &a));
        exts.extend(ext(43, &[2, 0x03, 0x04]));
        exts.extend(ext(21, &vec![0; pad]));
        let mut body = vec![0x03, 0x03];
        body.extend([0x5a; 32]);
        body.push(0);
        body.extend([0, 2, 0x13, 0x01, 1, 0]);
        body.extend((exts.len() as u16).to_be_bytes());
        body.extend(exts);
        let mut msg = vec![CLIENT_HELLO];
        msg.extend(&(body.len() as u32).to_be_bytes()[1..]);
        msg.extend(body);
        msg
    }

    /// Protects an Initial packet as a client would (RFC 9001 §5): the header is built
    /// from the arguments, `frames` padded with PADDING to at least `min_payload`.
    pub(crate) fn protect_initial(
        version: u32,
        dcid: &[u8],
        scid: &[u8],
        pn: u64,
        pn_len: usize,
        frames: &[u8],
        min_payload: usize,
    ) -> Vec<u8> {
        protect_client_initial(version, dcid, scid, pn, pn_len, frames, min_payload).unwrap()
    }

    fn done(poll: HelloPoll<ClientHello>) -> ClientHello {
        match poll {
            HelloPoll::Done(h) => h,
            other => panic!("expected a ClientHello, got {other:?}"),
        }
    }

    #[test]
    fn v1_initial_secrets_match_rfc9001_a1() {
        let s = client_initial_secrets(QUIC_V1, &RFC_DCID).unwrap();
        assert_eq!(
            s.secret.to_vec(),
            hex("c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea")
        );
        assert_eq!(s.key.to_vec(), hex("1f369613dd76d5467730efcbe3b1a22d"));
        assert_eq!(s.iv.to_vec(), hex("fa044b2f42a3fd3b46fb255c"));
        assert_eq!(s.hp.to_vec(), hex("9f50449e04a0e810283a1e9933adedd2"));
    }

    #[test]
    fn v2_initial_secrets_match_rfc9369_a1() {
        let s = client_initial_secrets(QUIC_V2, &RFC_DCID).unwrap();
        assert_eq!(
            s.secret.to_vec(),
            hex("14ec9d6eb9fd7af83bf5a668bc17a7e283766aade7ecd0891f70f9ff7f4bf47b")
        );
        assert_eq!(s.key.to_vec(), hex("8b1a0bc121284290a29e0971b5cd045d"));
        assert_eq!(s.iv.to_vec(), hex("91f73e2351d8fa91660e909f"));
        assert_eq!(s.hp.to_vec(), hex("45b95e15235d6f45a6b19cbcb0294ba9"));
        assert!(client_initial_secrets(0xff00_001d, &RFC_DCID).is_none());
    }

    #[test]
    fn v1_server_initial_secrets_match_rfc9001_a1() {
        let s = server_initial_secrets(QUIC_V1, &RFC_DCID).unwrap();
        assert_eq!(
            s.secret.to_vec(),
            hex("3c199828fd139efd216c155ad844cc81fb82fa8d7446fa7d78be803acdda951b")
        );
        assert_eq!(s.key.to_vec(), hex("cf3a5331653c364c88f0f379b6067e37"));
        assert_eq!(s.iv.to_vec(), hex("0ac1493ca1905853b0bba03e"));
        assert_eq!(s.hp.to_vec(), hex("c206b8d9b9f0f37644430b490eeaa314"));
        assert!(server_initial_secrets(0xff00_001d, &RFC_DCID).is_none());
    }

    #[test]
    fn accessors_name_the_first_initial() {
        let mut r = QuicInitialReader::new();
        assert_eq!((r.original_dcid(), r.client_scid()), (None, None));
        let hello = client_hello("ids.example", &[], 0);
        let odcid = [0x11u8; 8];
        let p = protect_initial(
            QUIC_V1,
            &odcid,
            &[0x22; 5],
            0,
            1,
            &crypto_frame(0, &hello),
            0,
        );
        let _ = done(r.push(&p));
        assert_eq!(r.original_dcid(), Some(&odcid[..]));
        assert_eq!(r.client_scid(), Some(&[0x22u8; 5][..]));
        assert_eq!(r.version(), Some(QUIC_V1));
    }

    /// Decrypts a published packet and checks header, packet number and payload.
    fn check_rfc_packet(version: u32, packet_hex: &str) {
        let packet = hex(packet_hex);
        assert_eq!(packet.len(), 1200);
        let h = parse_long_header(&packet).unwrap();
        assert_eq!(
            (h.version, h.kind, h.dcid, h.scid, h.token),
            (
                version,
                PacketType::Initial,
                &RFC_DCID[..],
                &[][..],
                &[][..]
            )
        );
        assert_eq!((h.pn_offset, h.packet_len), (18, 1200));
        let keys = InitialKeys::new(version, h.dcid).unwrap();
        let mut scratch = Vec::new();
        let (pn, range) = open_packet(&keys, &h, &packet, None, &mut scratch).unwrap();
        assert_eq!(pn, 2);
        let plain = &scratch[range];
        assert_eq!(plain.len(), 1162);
        let frame = hex(CRYPTO_FRAME);
        assert_eq!(&plain[..frame.len()], &frame[..]);
        assert!(plain[frame.len()..].iter().all(|&b| b == 0));
    }

    #[test]
    fn rfc9001_client_initial_decrypts() {
        check_rfc_packet(QUIC_V1, V1_CLIENT_INITIAL);
    }

    #[test]
    fn rfc9369_client_initial_decrypts() {
        check_rfc_packet(QUIC_V2, V2_CLIENT_INITIAL);
    }

    /// The path gQUIC's salted Initials take, checked on the RFC's v1 packet with v1's
    /// salt; any other salt does not authenticate.
    #[test]
    fn a_salted_initial_opens_with_its_salt_only() {
        let packet = hex(V1_CLIENT_INITIAL);
        let plain = open_salted_initial(&packet, &SALT_V1).unwrap();
        assert_eq!(plain.len(), 1162);
        let frame = hex(CRYPTO_FRAME);
        assert_eq!(&plain[..frame.len()], &frame[..]);
        assert_eq!(open_salted_initial(&packet, &SALT_V2), None);
        assert_eq!(
            open_salted_initial(&packet[..600], &SALT_V1),
            None,
            "cut short"
        );
        let mut handshake = packet.clone();
        handshake[0] |= 0x20; // a Handshake packet's type bits
        assert_eq!(open_salted_initial(&handshake, &SALT_V1), None);
    }

    /// The test encryptor reproduces the published packets byte for byte, so the
    /// packets it makes below are what a real client sends.
    #[test]
    fn test_encryptor_reproduces_the_rfc_packets() {
        let frames = hex(CRYPTO_FRAME);
        for (version, published) in [(QUIC_V1, V1_CLIENT_INITIAL), (QUIC_V2, V2_CLIENT_INITIAL)] {
            let made = protect_initial(version, &RFC_DCID, &[], 2, 4, &frames, 1162);
            assert_eq!(made, hex(published), "version {version:#x}");
        }
    }

    #[test]
    fn reader_names_the_rfc_servers() {
        for packet in [V1_CLIENT_INITIAL, V2_CLIENT_INITIAL] {
            let mut r = QuicInitialReader::new();
            let hello = done(r.push(&hex(packet)));
            assert_eq!(hello.sni.as_deref(), Some("example.com"));
            assert_eq!(hello.alpn, vec!["alpn".to_string()]);
            assert_eq!(hello.offered_version(), 0x0304);
            assert_eq!(r.decrypted_packets(), 1);
            assert!(r.anomalies().is_empty(), "{:?}", r.anomalies());
            assert!(matches!(r.push(&hex(packet)), HelloPoll::Malformed(_)));
        }
        let mut r = QuicInitialReader::new();
        let _ = r.push(&hex(V2_CLIENT_INITIAL));
        assert_eq!(r.version(), Some(QUIC_V2));
    }

    /// Chrome's shape: a ClientHello too big for one packet, its CRYPTO frames
    /// shuffled among PING and PADDING, in two Initial packets of two datagrams.
    #[test]
    fn hello_across_two_datagrams_with_shuffled_frames() {
        let dcid = [7u8; 8];
        let hello = client_hello("tracker.example.net", &["h3"], 1800);
        assert!(hello.len() > 1800);
        let cut = 1100;
        let (a, b) = hello.split_at(cut);
        let mut p1 = crypto_frame(600, &a[600..]);
        p1.push(0x01); // PING
        p1.extend([0; 7]); // PADDING
        p1.extend(crypto_frame(0, &a[..300]));
        p1.extend(crypto_frame(300, &a[300..600]));
        let mut p2 = vec![0x01];
        p2.extend(crypto_frame(cut + 500, &b[500..]));
        p2.extend(crypto_frame(cut, &b[..500]));
        let d1 = protect_initial(QUIC_V1, &dcid, &[1, 2], 0, 1, &p1, 1162);
        let d2 = protect_initial(QUIC_V1, &dcid, &[1, 2], 1, 1, &p2, 1162);
        let mut r = QuicInitialReader::new();
        assert_eq!(r.push(&d1), HelloPoll::NeedMore);
        let h = done(r.push(&d2));
        assert_eq!(h.sni.as_deref(), Some("tracker.example.net"));
        assert_eq!(h.alpn, vec!["h3".to_string()]);
        // In the other order, and split across two coalesced packets of one datagram.
        let mut r = QuicInitialReader::new();
        assert_eq!(r.push(&d2), HelloPoll::NeedMore);
        assert_eq!(done(r.push(&d1)), h);
        let small1 = protect_initial(QUIC_V1, &dcid, &[], 0, 2, &p1, 0);
        let small2 = protect_initial(QUIC_V1, &dcid, &[], 1, 2, &p2, 0);
        let mut coalesced = small1;
        coalesced.extend(&small2);
        coalesced.extend([0; 40]); // datagram padding
        assert_eq!(done(QuicInitialReader::new().push(&coalesced)), h);
    }

    #[test]
    fn other_long_packets_and_short_headers_are_skipped() {
        let dcid = [9u8; 12];
        let hello = client_hello("a.example", &[], 0);
        let initial = protect_initial(QUIC_V1, &dcid, &[], 0, 1, &crypto_frame(0, &hello), 0);
        // A Handshake packet (type 2) before it and a short header packet after it.
        let mut handshake = vec![0xe0, 0, 0, 0, 1, 12];
        handshake.extend(dcid);
        handshake.push(0);
        handshake.extend(varint(30));
        handshake.extend([0xab; 30]);
        let mut d = handshake.clone();
        d.extend(&initial);
        d.extend([0x40, 1, 2, 3, 4, 5]);
        let h = done(QuicInitialReader::new().push(&d));
        assert_eq!(h.sni.as_deref(), Some("a.example"));
        // Only a Handshake packet: not a readable Initial.
        assert_eq!(QuicInitialReader::new().push(&handshake), HelloPoll::NotTls);
    }

    #[test]
    fn new_dcid_after_the_server_replied_and_after_a_retry() {
        let odcid = [1u8; 8];
        let hello = client_hello("b.example", &["h3"], 1500);
        let (a, b) = hello.split_at(1000);
        // After the server's first Initial the client writes to the server's CID but
        // keeps the keys of the original DCID.
        let p1 = protect_initial(QUIC_V1, &odcid, &[], 0, 1, &crypto_frame(0, a), 1162);
        let mut p2 = protect_initial(QUIC_V1, &odcid, &[], 1, 1, &crypto_frame(1000, b), 1162);
        let server_cid = [0x55u8; 8];
        // A DCID rewritten on the wire changes the associated data: the packet fails
        // (with every key tried) and is recorded, and reading goes on.
        p2[6..14].copy_from_slice(&server_cid);
        let mut r = QuicInitialReader::new();
        assert_eq!(r.push(&p1), HelloPoll::NeedMore);
        assert_eq!(r.push(&p2), HelloPoll::NeedMore);
        assert!(r
            .anomalies()
            .iter()
            .any(|a| a.kind == "quic-initial-unreadable"));
        // Properly made: original keys, new DCID in the header.
        let p2 = protect_with_keys_of(&odcid, &server_cid, 1, &crypto_frame(1000, b));
        assert_eq!(done(r.push(&p2)).sni.as_deref(), Some("b.example"));
        // After a Retry: a new DCID with its own keys, the CRYPTO stream sent again.
        let retry_cid = [0x66u8; 10];
        let q1 = protect_initial(QUIC_V1, &odcid, &[], 0, 1, &crypto_frame(0, a), 1162);
        let q2 = protect_initial(QUIC_V1, &retry_cid, &[], 1, 1, &crypto_frame(0, a), 1162);
        let q3 = protect_initial(QUIC_V1, &retry_cid, &[], 2, 1, &crypto_frame(1000, b), 1162);
        let mut r = QuicInitialReader::new();
        assert_eq!(r.push(&q1), HelloPoll::NeedMore);
        assert_eq!(r.push(&q2), HelloPoll::NeedMore);
        assert_eq!(done(r.push(&q3)).sni.as_deref(), Some("b.example"));
    }

    /// An Initial whose header carries `wire_dcid` but is protected with the keys of
    /// `key_dcid` (what a client sends once the server chose its connection ID).
    fn protect_with_keys_of(key_dcid: &[u8], wire_dcid: &[u8], pn: u64, frames: &[u8]) -> Vec<u8> {
        let s = client_initial_secrets(QUIC_V1, key_dcid).unwrap();
        let mut payload = frames.to_vec();
        payload.resize(payload.len().max(1162), 0);
        let mut header = vec![0xc0, 0, 0, 0, 1, wire_dcid.len() as u8];
        header.extend_from_slice(wire_dcid);
        header.extend([0, 0]);
        header.extend((0x4000 | (1 + payload.len() + TAG_LEN) as u16).to_be_bytes());
        let pn_offset = header.len();
        header.push(pn as u8);
        let key = LessSafeKey::new(UnboundKey::new(&aead::AES_128_GCM, &s.key).unwrap());
        let mut nonce = s.iv;
        nonce[11] ^= pn as u8;
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&header[..]),
            &mut payload,
        )
        .unwrap();
        let mut packet = header;
        packet.extend(payload);
        let hpk = hp::HeaderProtectionKey::new(&hp::AES_128, &s.hp).unwrap();
        let mask = hpk
            .new_mask(&packet[pn_offset + 4..pn_offset + 20])
            .unwrap();
        packet[0] ^= mask[0] & 0x0f;
        packet[pn_offset] ^= mask[1];
        packet
    }

    #[test]
    fn not_quic_answers_not_tls() {
        for d in [
            &b""[..],
            b"\x00\x01\x02",
            b"GET / HTTP/1.1\r\n\r\n",
            // Short header, unknown version, Version Negotiation.
            &[0x40; 40],
            &[0xc0, 0xff, 0, 0, 0x1d, 0, 0, 0, 5, 1, 2, 3, 4, 5],
            &[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        ] {
            assert_eq!(QuicInitialReader::new().push(d), HelloPoll::NotTls, "{d:?}");
            assert!(!looks_like_initial(d));
        }
        assert!(looks_like_initial(&hex(V1_CLIENT_INITIAL)));
        assert!(looks_like_initial(&hex(V2_CLIENT_INITIAL)));
        // A v1 header with v2's Initial type bits is a 0-RTT packet in v1.
        let mut p = hex(V1_CLIENT_INITIAL);
        p[0] = 0xd0;
        assert!(!looks_like_initial(&p));
    }

    #[test]
    fn every_truncation_and_byte_flip_is_harmless() {
        for packet in [hex(V1_CLIENT_INITIAL), hex(V2_CLIENT_INITIAL)] {
            for n in 0..packet.len() {
                let poll = QuicInitialReader::new().push(&packet[..n]);
                // A cut packet never authenticates (its length field says 1200).
                assert_eq!(poll, HelloPoll::NotTls, "cut at {n}");
            }
            for i in 0..packet.len() {
                let mut p = packet.clone();
                p[i] ^= 0x01;
                let poll = QuicInitialReader::new().push(&p);
                // Every byte is authenticated: the header as associated data (after
                // unmasking), the payload by the tag.
                assert!(
                    matches!(poll, HelloPoll::NotTls),
                    "flip at {i} gave {poll:?}"
                );
            }
        }
    }

    #[test]
    fn decrypted_garbage_frames_do_not_panic() {
        let dcid = [3u8; 8];
        let cases: Vec<Vec<u8>> = vec![
            vec![0x06],                                     // CRYPTO cut after the type
            vec![0x06, 0x00, 0x44],                         // length past the payload
            vec![0x02, 0x00, 0x00, 0x7f, 0xff, 0x00],       // ACK with many ranges, cut
            vec![0x03, 1, 0, 0, 0, 1, 1],                   // ACK_ECN missing counts
            vec![0x1c, 0x0a, 0x06, 0x05, b'h'],             // CONNECTION_CLOSE reason cut
            vec![0x08, 0x00],                               // STREAM: not allowed here
            vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // frame type varint cut
            crypto_frame(MAX_CRYPTO_BYTES, b"x"),           // beyond the limit
            {
                // an offset of 2^62 - 1
                let mut f = vec![0x06];
                f.extend([0xff; 8]);
                f.push(1);
                f.push(b'x');
                f
            },
            [vec![0x01], client_hello("c.example", &[], 0)[..3].to_vec()].concat(),
            crypto_frame(0, &[2, 0, 0, 1, 0]), // a ServerHello type
            crypto_frame(0, &[1, 0xff, 0xff, 0xff]), // a huge ClientHello
            crypto_frame(0, &[1, 0, 0, 2, 3, 3]), // a broken ClientHello
        ];
        for frames in cases {
            let p = protect_initial(QUIC_V1, &dcid, &[], 0, 1, &frames, 0);
            let mut r = QuicInitialReader::new();
            let poll = r.push(&p);
            assert!(
                matches!(poll, HelloPoll::NeedMore | HelloPoll::Malformed(_)),
                "{frames:?} gave {poll:?}"
            );
            assert_eq!(r.decrypted_packets(), 1);
        }
        // Unexpected frames and limits are recorded.
        let p = protect_initial(QUIC_V1, &dcid, &[], 0, 1, &[0x08, 0], 0);
        let mut r = QuicInitialReader::new();
        let _ = r.push(&p);
        assert_eq!(r.anomalies()[0].kind, "quic-unexpected-frame");
        let p = protect_initial(
            QUIC_V1,
            &dcid,
            &[],
            0,
            1,
            &crypto_frame(MAX_CRYPTO_BYTES, b"x"),
            0,
        );
        let mut r = QuicInitialReader::new();
        let _ = r.push(&p);
        assert_eq!(r.anomalies()[0].kind, "quic-crypto-limit");
    }

    #[test]
    fn gives_up_after_the_datagram_and_packet_limits() {
        let dcid = [4u8; 8];
        // The ClientHello's start never arrives.
        let p = protect_initial(QUIC_V1, &dcid, &[], 0, 1, &crypto_frame(10, b"late"), 0);
        let mut r = QuicInitialReader::new();
        let mut answers = Vec::new();
        for _ in 0..MAX_DATAGRAMS {
            answers.push(r.push(&p));
        }
        assert!(answers[..MAX_DATAGRAMS - 1]
            .iter()
            .all(|a| *a == HelloPoll::NeedMore));
        assert!(matches!(answers.last(), Some(HelloPoll::Malformed(_))));
        // Many coalesced packets in one datagram: at most MAX_PACKETS looked at.
        let one = protect_initial(QUIC_V1, &dcid, &[], 0, 1, &[0x01], 0);
        let many: Vec<u8> = std::iter::repeat_n(one, MAX_PACKETS + 5)
            .flatten()
            .collect();
        let mut r = QuicInitialReader::new();
        assert!(matches!(r.push(&many), HelloPoll::Malformed(_)));
        assert_eq!(r.decrypted_packets(), MAX_PACKETS);
    }

    #[test]
    fn protect_refuses_bad_arguments_and_handles_big_packets() {
        assert!(protect_client_initial(0xff00_001d, &[1; 8], &[], 0, 1, b"", 0).is_none());
        assert!(protect_client_initial(QUIC_V1, &[1; 21], &[], 0, 1, b"", 0).is_none());
        assert!(protect_client_initial(QUIC_V1, &[1; 8], &[], 0, 0, b"", 0).is_none());
        assert!(protect_client_initial(QUIC_V1, &[1; 8], &[], 0, 5, b"", 0).is_none());
        // Over 16 383 bytes the length field takes four bytes; still read.
        let hello = client_hello("big.example", &[], 20_000);
        let p = protect_initial(QUIC_V1, &[1; 8], &[], 0, 4, &crypto_frame(0, &hello), 0);
        assert_eq!(p[16] >> 6, 2, "four-byte length");
        let h = done(QuicInitialReader::new().push(&p));
        assert_eq!(h.sni.as_deref(), Some("big.example"));
    }

    #[test]
    fn crypto_ranges_are_bounded() {
        let mut c = CryptoStream::default();
        for i in 0..MAX_CRYPTO_RANGES {
            c.insert((i * 2 + 1) as u64, b"x").unwrap();
        }
        assert_eq!(c.insert(1000, b"y"), Err(CryptoRefused::TooManyRanges));
        // Filling a gap merges two ranges: accepted.
        c.insert(2, b"z").unwrap();
        assert_eq!(c.ranges.len(), MAX_CRYPTO_RANGES - 1);
        assert_eq!(c.insert(u64::MAX, b"y"), Err(CryptoRefused::TooFar));
        assert!(c.contiguous().is_empty());
        c.insert(0, b"a").unwrap();
        assert_eq!(c.contiguous(), b"axzx");
    }

    #[test]
    fn packet_numbers_decode_as_rfc9000_a3() {
        assert_eq!(decode_pn(Some(0xa82f30ea), 0x9b32, 2), 0xa82f9b32);
        assert_eq!(decode_pn(None, 2, 4), 2);
        assert_eq!(decode_pn(None, 0, 1), 0);
        assert_eq!(decode_pn(Some(250), 3, 1), 259);
        // Out-of-range inputs (never produced here) do not overflow.
        let _ = decode_pn(Some(u64::MAX), 1, 1);
        let _ = decode_pn(Some(u64::MAX - 1), 0xffff_ffff, 4);
    }

    proptest! {
        /// The CRYPTO stream against a byte map: first write wins, contiguous prefix.
        #[test]
        fn crypto_stream_matches_a_byte_map(
            frags in proptest::collection::vec((0usize..300, 0usize..60, any::<u8>()), 0..40)
        ) {
            let mut c = CryptoStream::default();
            let mut oracle: Vec<Option<u8>> = vec![None; 400];
            for (off, len, fill) in frags {
                let data: Vec<u8> = (0..len).map(|i| fill.wrapping_add(i as u8)).collect();
                if c.insert(off as u64, &data).is_ok() {
                    for (i, &b) in data.iter().enumerate() {
                        oracle[off + i].get_or_insert(b);
                    }
                }
            }
            let expected: Vec<u8> = oracle.iter().map_while(|b| *b).collect();
            prop_assert_eq!(c.contiguous(), &expected[..]);
            for w in c.ranges.windows(2) {
                prop_assert!(w[0].1 < w[1].0);
            }
            for &(s, e) in &c.ranges {
                prop_assert!(s < e);
                for (i, slot) in oracle.iter().enumerate().take(e).skip(s) {
                    prop_assert_eq!(Some(c.buf[i]), *slot);
                }
            }
        }

        /// Any split of the ClientHello into CRYPTO frames, in any order, over one or
        /// two datagrams, gives the same hello.
        #[test]
        fn any_framing_gives_the_same_hello(
            cuts in proptest::collection::vec(1usize..1400, 0..6),
            order in any::<u64>(),
            split_at in 0usize..8,
        ) {
            let hello = client_hello("p.example", &["h3", "h3-29"], 1200);
            let mut points: Vec<usize> = cuts.into_iter().filter(|&c| c < hello.len()).collect();
            points.sort_unstable();
            points.dedup();
            let mut pieces = Vec::new();
            let mut start = 0;
            for p in points.into_iter().chain([hello.len()]) {
                pieces.push(crypto_frame(start, &hello[start..p]));
                start = p;
            }
            // A deterministic shuffle from `order`.
            let mut seed = order;
            for i in (1..pieces.len()).rev() {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                pieces.swap(i, (seed >> 33) as usize % (i + 1));
            }
            let k = split_at.min(pieces.len());
            let dcid = [0x42u8; 8];
            let d1 = protect_initial(QUIC_V1, &dcid, &[], 0, 2, &pieces[..k].concat(), 1162);
            let d2 = protect_initial(QUIC_V1, &dcid, &[], 1, 2, &pieces[k..].concat(), 1162);
            let mut r = QuicInitialReader::new();
            let first = r.push(&d1);
            let hello = match first {
                HelloPoll::Done(h) => h,
                HelloPoll::NeedMore => done(r.push(&d2)),
                other => panic!("{other:?}"),
            };
            prop_assert_eq!(hello.sni.as_deref(), Some("p.example"));
        }
    }
}
