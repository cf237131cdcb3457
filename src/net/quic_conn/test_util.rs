//! Builders shared by the tests of `quic_conn` and its parts: connection IDs,
//! secrets, a sealer ([`PacketSealer`] for the tests), frames and the server's Initial.

use super::keys::Suite;
use super::server_hello::SERVER_HELLO;
use super::{PacketSealer, QuicConnLimits, QuicConnReader, QuicEvent};
use crate::net::keylog::Secrets;
use crate::net::quic::tests::crypto_frame;
use crate::net::quic::{PacketType, QUIC_V1};

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

/// A connection past the server's Initial with its ServerHello choosing `suite`, in
/// QUIC v1, and sealers of both directions' first 1-RTT keys.
pub(super) struct Conn {
    pub(super) r: QuicConnReader,
    pub(super) client: Sealer,
    pub(super) server: Sealer,
}

pub(super) fn connected(suite: Suite) -> Conn {
    connected_with(suite, QuicConnLimits::default())
}

pub(super) fn connected_with(suite: Suite, limits: QuicConnLimits) -> Conn {
    let s = secrets(suite);
    let mut r = reader_with(QUIC_V1, &s, limits);
    let _ = push(&mut r, &server_initial(QUIC_V1, suite.id()), false);
    let sealer = |secret: &Option<Vec<u8>>| Sealer::new(suite, QUIC_V1, secret.as_deref().unwrap());
    Conn {
        r,
        client: sealer(&s.client_traffic_0),
        server: sealer(&s.server_traffic_0),
    }
}

/// [`PacketSealer`] for the tests: suites as [`Suite`], packets unwrapped.
pub(super) struct Sealer(PacketSealer);

impl Sealer {
    pub(super) fn new(suite: Suite, version: u32, secret: &[u8]) -> Self {
        Sealer(PacketSealer::new(suite.id(), version, secret).unwrap())
    }

    /// The keys of the `n`th key phase after `secret` (header protection unchanged).
    pub(super) fn after_updates(suite: Suite, version: u32, secret: &[u8], n: usize) -> Self {
        Sealer(PacketSealer::after_key_updates(suite.id(), version, secret, n).unwrap())
    }

    pub(super) fn initial_server(version: u32, dcid: &[u8]) -> Self {
        Sealer(PacketSealer::server_initial(version, dcid).unwrap())
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
        self.0.short(dcid, pn, pn_len, phase, frames).unwrap()
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
        self.0
            .long(version, kind, dcid, scid, pn, pn_len, frames)
            .unwrap()
    }
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
