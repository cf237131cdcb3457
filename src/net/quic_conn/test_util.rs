//! Builders shared by the tests of `quic_conn` and its parts: connection IDs,
//! secrets, a sealer that protects packets as a sender does, frames and the server's
//! Initial.

use ring::aead::{quic as hp, Aad, LessSafeKey, Nonce, UnboundKey};

use super::keys::{next_secret, KeyMaterial, Labels, Suite, SAMPLE_LEN};
use super::server_hello::SERVER_HELLO;
use super::{QuicConnLimits, QuicConnReader, QuicEvent};
use crate::net::keylog::Secrets;
use crate::net::quic::server_initial_secrets;
use crate::net::quic::tests::crypto_frame;
use crate::net::quic::{PacketType, QUIC_V1, QUIC_V2};

/// The original DCID of the client's first Initial in these tests.
pub(super) const ODCID: [u8; 8] = [0x0d; 8];
/// The client's SCID: the DCID of server short headers.
pub(super) const CLIENT_CID: [u8; 4] = [0xc1; 4];
/// The server's SCID: the DCID of client short headers.
pub(super) const SERVER_CID: [u8; 6] = [0x5e; 6];

pub(super) fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

pub(super) fn varint(v: u64) -> Vec<u8> {
    match v {
        0..=63 => vec![v as u8],
        64..=16383 => (0x4000 | v as u16).to_be_bytes().to_vec(),
        16384..=0x3fff_ffff => (0x8000_0000 | v as u32).to_be_bytes().to_vec(),
        _ => (0xc000_0000_0000_0000 | v).to_be_bytes().to_vec(),
    }
}

/// A traffic secret of `len` bytes, distinct per `tag`.
pub(super) fn secret(tag: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| tag.wrapping_mul(31).wrapping_add(i as u8))
        .collect()
}

/// Secrets for both directions and 0-RTT, of the length `suite`'s hash makes.
pub(super) fn secrets(suite: Suite) -> Secrets {
    let len = if suite == Suite::Aes256Gcm { 48 } else { 32 };
    Secrets {
        client_traffic_0: Some(secret(1, len)),
        server_traffic_0: Some(secret(2, len)),
        client_early_traffic: Some(secret(3, len)),
        ..Secrets::default()
    }
}

pub(super) fn reader_with(version: u32, s: &Secrets, limits: QuicConnLimits) -> QuicConnReader {
    QuicConnReader::new(version, &ODCID, &CLIENT_CID, s, limits)
}

pub(super) fn reader(s: &Secrets) -> QuicConnReader {
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
pub(super) struct Sealer {
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

    pub(super) fn new(suite: Suite, version: u32, secret: &[u8]) -> Self {
        Self::from_material(
            suite,
            &KeyMaterial::new(suite, Labels::of(version).unwrap(), secret),
        )
    }

    /// The keys of the `n`th key phase after `secret` (header protection unchanged).
    pub(super) fn after_updates(suite: Suite, version: u32, secret: &[u8], n: usize) -> Self {
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

    pub(super) fn initial_server(version: u32, dcid: &[u8]) -> Self {
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
    pub(super) fn short(
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
    pub(super) fn long(
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
pub(super) fn stream(id: u64, offset: u64, data: &[u8], fin: bool) -> Vec<u8> {
    let mut f = vec![0x0e | u8::from(fin)];
    f.extend(varint(id));
    f.extend(varint(offset));
    f.extend(varint(data.len() as u64));
    f.extend_from_slice(data);
    f
}

/// A TLS 1.3 ServerHello handshake message choosing `suite`.
pub(super) fn server_hello(suite: u16) -> Vec<u8> {
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
pub(super) fn server_initial(version: u32, suite: u16) -> Vec<u8> {
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

pub(super) fn push(r: &mut QuicConnReader, datagram: &[u8], from_client: bool) -> Vec<QuicEvent> {
    let mut out = Vec::new();
    r.push(datagram, from_client, &mut out);
    out
}

/// The bytes of one stream direction, checking the events follow each other.
pub(super) fn stream_bytes(events: &[QuicEvent], id: u64, from_client: bool) -> (Vec<u8>, bool) {
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

pub(super) fn kinds(r: &mut QuicConnReader) -> Vec<String> {
    r.take_anomalies().into_iter().map(|a| a.kind).collect()
}

pub(super) fn data_event(
    id: u64,
    from_client: bool,
    offset: u64,
    data: &[u8],
    fin: bool,
) -> QuicEvent {
    QuicEvent::Stream {
        id,
        from_client,
        offset,
        data: data.to_vec(),
        fin,
    }
}
