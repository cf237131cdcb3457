//! Packet protection as a QUIC sender applies it (RFC 9001 §5), the inverse of what
//! `keys` removes: for tests, benchmarks and fuzzing, which need the packets a
//! [`QuicConnReader`](super::QuicConnReader) reads. consentry never sends QUIC and
//! never seals traffic; the reader does not use this.

use ring::aead::{quic as hp, Aad};

use super::keys::{next_secret, KeyMaterial, Labels, PacketKey, Suite, SAMPLE_LEN};
use super::MAX_CID_LEN;
use crate::net::quic::{server_initial_secrets, PacketType, QUIC_V1, QUIC_V2};

/// AEAD tag length of every QUIC cipher suite.
const TAG_LEN: usize = 16;

/// Protects 0-RTT, 1-RTT, Handshake and Initial packets with one set of packet keys,
/// as a sender does: for tests, benchmarks and fuzzing, never used on traffic.
pub struct PacketSealer {
    key: PacketKey,
    hp: hp::HeaderProtectionKey,
}

impl std::fmt::Debug for PacketSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketSealer").finish_non_exhaustive()
    }
}

impl PacketSealer {
    /// The keys a traffic secret gives (as logged: `CLIENT_TRAFFIC_SECRET_0`,
    /// `SERVER_TRAFFIC_SECRET_0`, `CLIENT_EARLY_TRAFFIC_SECRET`) under `cipher_suite`
    /// (IANA number, 0x1301..=0x1303) with the labels of `version` (QUIC v1 or v2);
    /// `None` for another suite or version.
    pub fn new(cipher_suite: u16, version: u32, secret: &[u8]) -> Option<Self> {
        Self::after_key_updates(cipher_suite, version, secret, 0)
    }

    /// The keys of the key phase `updates` key updates after `secret` (RFC 9001 §6;
    /// the header protection key does not change): its packets carry the key phase
    /// bit `updates % 2 == 1`.
    pub fn after_key_updates(
        cipher_suite: u16,
        version: u32,
        secret: &[u8],
        updates: usize,
    ) -> Option<Self> {
        let suite = Suite::from_id(cipher_suite)?;
        let labels = Labels::of(version)?;
        let hp_key = KeyMaterial::new(suite, labels, secret).hp;
        let mut s = secret.to_vec();
        for _ in 0..updates {
            s = next_secret(suite, labels, &s);
        }
        let mut m = KeyMaterial::new(suite, labels, &s);
        m.hp = hp_key;
        Self::from_material(suite, &m)
    }

    /// The server's Initial keys (RFC 9001 §5.2) for a connection whose client's first
    /// Initial went to `original_dcid` (or whose Retry gave that SCID); `None` for a
    /// version other than QUIC v1 and v2.
    pub fn server_initial(version: u32, original_dcid: &[u8]) -> Option<Self> {
        let s = server_initial_secrets(version, original_dcid)?;
        let m = KeyMaterial {
            key: s.key.to_vec(),
            iv: s.iv,
            hp: s.hp.to_vec(),
        };
        Self::from_material(Suite::Aes128Gcm, &m)
    }

    fn from_material(suite: Suite, m: &KeyMaterial) -> Option<Self> {
        Some(PacketSealer {
            key: PacketKey::new(suite, m)?,
            hp: hp::HeaderProtectionKey::new(suite.header_protection(), &m.hp).ok()?,
        })
    }

    /// A 1-RTT packet (short header) to `dcid`, packet number `pn` written in `pn_len`
    /// bytes, with `key_phase`, carrying `frames` (PADDING added when they are too
    /// short for the header protection sample). `None` for a `pn_len` outside 1..=4
    /// or a `dcid` over 20 bytes.
    pub fn short(
        &self,
        dcid: &[u8],
        pn: u64,
        pn_len: usize,
        key_phase: bool,
        frames: &[u8],
    ) -> Option<Vec<u8>> {
        if !(1..=4).contains(&pn_len) || dcid.len() > MAX_CID_LEN {
            return None;
        }
        let mut packet = Vec::with_capacity(1 + dcid.len() + pn_len + frames.len() + 20);
        packet.push(0x40 | u8::from(key_phase) << 2 | (pn_len as u8 - 1));
        packet.extend_from_slice(dcid);
        self.seal(packet, pn, pn_len, frames, false)
    }

    /// A long-header packet of `kind` (Initial without a token, 0-RTT or Handshake)
    /// in `version`, from `scid` to `dcid`; otherwise as [`short`](Self::short).
    /// `None` for a Retry, a version other than QUIC v1 and v2, a `pn_len` outside
    /// 1..=4, a connection ID over 20 bytes or a packet of 2^30 bytes or more.
    #[allow(clippy::too_many_arguments)]
    pub fn long(
        &self,
        version: u32,
        kind: PacketType,
        dcid: &[u8],
        scid: &[u8],
        pn: u64,
        pn_len: usize,
        frames: &[u8],
    ) -> Option<Vec<u8>> {
        let type_bits = long_type_bits(version, kind)?;
        if !(1..=4).contains(&pn_len) || dcid.len() > MAX_CID_LEN || scid.len() > MAX_CID_LEN {
            return None;
        }
        let mut packet = vec![0xc0 | type_bits << 4 | (pn_len as u8 - 1)];
        packet.extend(version.to_be_bytes());
        packet.push(dcid.len() as u8);
        packet.extend_from_slice(dcid);
        packet.push(scid.len() as u8);
        packet.extend_from_slice(scid);
        if kind == PacketType::Initial {
            packet.push(0); // no token
        }
        let length = u32::try_from(pn_len + padded_len(frames, pn_len) + TAG_LEN)
            .ok()
            .filter(|&l| l < 1 << 30)?;
        // Two bytes when it fits (as the RFC examples), else four.
        match u16::try_from(length) {
            Ok(l) if l < 1 << 14 => packet.extend((0x4000 | l).to_be_bytes()),
            _ => packet.extend((0x8000_0000 | length).to_be_bytes()),
        }
        self.seal(packet, pn, pn_len, frames, true)
    }

    /// Appends the packet number and the sealed payload to `packet` (the header up to
    /// the packet number), then masks the header.
    fn seal(
        &self,
        mut packet: Vec<u8>,
        pn: u64,
        pn_len: usize,
        frames: &[u8],
        long: bool,
    ) -> Option<Vec<u8>> {
        let pn_offset = packet.len();
        packet.extend(&pn.to_be_bytes()[8 - pn_len..]);
        let body_start = packet.len();
        packet.extend_from_slice(frames);
        packet.resize(body_start + padded_len(frames, pn_len), 0);
        let (header, body) = packet.split_at_mut(body_start);
        let tag = self
            .key
            .aead
            .seal_in_place_separate_tag(self.key.nonce(pn), Aad::from(&*header), body)
            .ok()?;
        packet.extend_from_slice(tag.as_ref());
        // The sample starts 4 bytes after the packet number's start (RFC 9001 §5.4.2).
        let sample = packet.get(pn_offset + 4..pn_offset + 4 + SAMPLE_LEN)?;
        let mask = self.hp.new_mask(sample).ok()?;
        packet[0] ^= mask[0] & if long { 0x0f } else { 0x1f };
        for (b, m) in packet[pn_offset..body_start].iter_mut().zip(&mask[1..]) {
            *b ^= m;
        }
        Some(packet)
    }
}

/// The payload length of `frames` with the PADDING the header protection sample
/// needs: 4 bytes after the packet number's start, then 16, of which the tag gives 16.
fn padded_len(frames: &[u8], pn_len: usize) -> usize {
    frames.len().max(4 - pn_len)
}

/// The type bits of a protected long-header packet (RFC 9369 §3.2: v2 rotates them).
fn long_type_bits(version: u32, kind: PacketType) -> Option<u8> {
    let v1 = match kind {
        PacketType::Initial => 0,
        PacketType::ZeroRtt => 1,
        PacketType::Handshake => 2,
        PacketType::Retry => return None,
    };
    match version {
        QUIC_V1 => Some(v1),
        QUIC_V2 => Some((v1 + 1) & 3),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::quic::parse_long_header;

    #[test]
    fn what_cannot_be_sealed_is_none() {
        let secret = [7; 32];
        assert!(PacketSealer::new(0x1304, QUIC_V1, &secret).is_none());
        assert!(PacketSealer::new(0x1301, 0xff00_001d, &secret).is_none());
        assert!(PacketSealer::server_initial(0xff00_001d, &[1; 8]).is_none());
        let s = PacketSealer::new(0x1301, QUIC_V1, &secret).unwrap();
        assert!(s.short(&[1; 8], 0, 0, false, b"").is_none());
        assert!(s.short(&[1; 8], 0, 5, false, b"").is_none());
        assert!(s.short(&[1; 21], 0, 1, false, b"").is_none());
        let long = |version, kind, dcid: &[u8], pn_len| {
            s.long(version, kind, dcid, &[2; 4], 0, pn_len, b"\x01")
        };
        assert!(long(QUIC_V1, PacketType::Retry, &[1; 8], 1).is_none());
        assert!(long(0xff00_001d, PacketType::Handshake, &[1; 8], 1).is_none());
        assert!(long(QUIC_V1, PacketType::Handshake, &[1; 21], 1).is_none());
        assert!(long(QUIC_V1, PacketType::Handshake, &[1; 8], 0).is_none());
        // An empty payload is padded for the sample; long lengths take 4 bytes.
        assert_eq!(
            s.short(&[], 0, 1, false, b"").unwrap().len(),
            1 + 1 + 3 + 16
        );
        for version in [QUIC_V1, QUIC_V2] {
            for (kind, frames) in [
                (PacketType::Initial, vec![0; 20_000]),
                (PacketType::ZeroRtt, vec![1]),
                (PacketType::Handshake, vec![]),
            ] {
                let p = s
                    .long(version, kind, &[1; 8], &[2; 4], 0, 2, &frames)
                    .unwrap();
                let h = parse_long_header(&p).unwrap();
                assert_eq!((h.version, h.kind, h.packet_len), (version, kind, p.len()));
            }
        }
    }
}
