//! Packet protection after the Initial packets (RFC 9001 §5, §6): the cipher suites
//! and labels, the keys a traffic secret gives, header protection removed, and
//! Handshake, 0-RTT and 1-RTT packets opened, the last across key updates.

use std::ops::Range;

use ring::aead::{self, quic as hp, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hkdf;

use crate::net::quic::{decode_pn, expand_label, LongHeader, QUIC_V1, QUIC_V2};

/// Bytes of ciphertext sampled for header protection (RFC 9001 §5.4.2).
pub(super) const SAMPLE_LEN: usize = 16;

/// The TLS 1.3 cipher suites QUIC uses (RFC 9001 §5.3; AES-CCM is allowed but rare,
/// and ring lacks it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Suite {
    Aes128Gcm,
    Aes256Gcm,
    ChaCha20Poly1305,
}

impl Suite {
    pub(super) fn from_id(id: u16) -> Option<Suite> {
        match id {
            0x1301 => Some(Suite::Aes128Gcm),
            0x1302 => Some(Suite::Aes256Gcm),
            0x1303 => Some(Suite::ChaCha20Poly1305),
            _ => None,
        }
    }

    pub(super) fn id(self) -> u16 {
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

    pub(super) fn aead(self) -> &'static aead::Algorithm {
        match self {
            Suite::Aes128Gcm => &aead::AES_128_GCM,
            Suite::Aes256Gcm => &aead::AES_256_GCM,
            Suite::ChaCha20Poly1305 => &aead::CHACHA20_POLY1305,
        }
    }

    pub(super) fn header_protection(self) -> &'static hp::Algorithm {
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
    pub(super) fn for_secret_len(len: usize) -> &'static [Suite] {
        match len {
            32 => &[Suite::Aes128Gcm, Suite::ChaCha20Poly1305],
            48 => &[Suite::Aes256Gcm],
            _ => &[],
        }
    }
}

/// `first` (when given), then the other suites a secret of `len` bytes may belong to.
pub(super) fn candidate_suites(first: Option<Suite>, len: usize) -> Vec<Suite> {
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
pub(super) struct Labels {
    key: &'static [u8],
    iv: &'static [u8],
    hp: &'static [u8],
    ku: &'static [u8],
}

impl Labels {
    pub(super) fn of(version: u32) -> Option<Labels> {
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
pub(super) struct KeyMaterial {
    pub(super) key: Vec<u8>,
    pub(super) iv: [u8; 12],
    pub(super) hp: Vec<u8>,
}

impl KeyMaterial {
    pub(super) fn new(suite: Suite, labels: Labels, secret: &[u8]) -> Self {
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
pub(super) fn next_secret(suite: Suite, labels: Labels, secret: &[u8]) -> Vec<u8> {
    let prk = hkdf::Prk::new_less_safe(suite.hkdf(), secret);
    let mut next = vec![0; secret.len()];
    expand_label(&prk, labels.ku, &mut next);
    next
}

/// A packet protection key and its IV.
pub(super) struct PacketKey {
    pub(super) aead: LessSafeKey,
    iv: [u8; 12],
}

impl PacketKey {
    pub(super) fn new(suite: Suite, m: &KeyMaterial) -> Option<Self> {
        Some(PacketKey {
            aead: LessSafeKey::new(UnboundKey::new(suite.aead(), &m.key).ok()?),
            iv: m.iv,
        })
    }

    pub(super) fn nonce(&self, pn: u64) -> Nonce {
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

/// Whether the long-header `packet` (packet number at `pn_offset`), the first of its
/// space, opens with the keys `secret` gives under `suite`: ECH's trial of key log
/// entries on a server Handshake packet. Its number is taken as written (the
/// space's first packets are numbered from 0).
pub(super) fn opens_first_long(
    suite: Suite,
    labels: Labels,
    secret: &[u8],
    packet: &[u8],
    pn_offset: usize,
    scratch: &mut Vec<u8>,
) -> bool {
    let m = KeyMaterial::new(suite, labels, secret);
    let (Ok(hp_key), Some(key)) = (
        hp::HeaderProtectionKey::new(suite.header_protection(), &m.hp),
        PacketKey::new(suite, &m),
    ) else {
        return false;
    };
    unmask(&hp_key, packet, pn_offset, true)
        .and_then(|h| open_payload(&key, packet, &h, h.truncated_pn, scratch))
        .is_some()
}

/// A packet that opened: its number and its plaintext payload's range in the scratch.
pub(super) struct Opened {
    pub(super) pn: u64,
    pub(super) payload: Range<usize>,
    pub(super) suite: Suite,
}

/// One key phase's packet key and the secret it came from (for the next update).
struct Generation {
    secret: Vec<u8>,
    key: PacketKey,
}

/// The 1-RTT keys of one direction under one suite, across key updates.
pub(super) struct AppKeys {
    pub(super) suite: Suite,
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
    pub(super) updates: u64,
}

impl AppKeys {
    pub(super) fn new(suite: Suite, labels: Labels, secret: &[u8]) -> Option<Self> {
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
    pub(super) fn open(
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

/// The keys of one candidate suite for long-header packets after the Initial ones:
/// 0-RTT (the client's early secret) and Handshake (the server's handshake secret).
pub(super) struct LongKeys {
    suite: Suite,
    hp: hp::HeaderProtectionKey,
    key: PacketKey,
}

impl LongKeys {
    pub(super) fn new(suite: Suite, labels: Labels, secret: &[u8]) -> Option<Self> {
        let m = KeyMaterial::new(suite, labels, secret);
        Some(LongKeys {
            suite,
            hp: hp::HeaderProtectionKey::new(suite.header_protection(), &m.hp).ok()?,
            key: PacketKey::new(suite, &m)?,
        })
    }

    pub(super) fn open(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::keylog::Secrets;
    use crate::net::quic::PacketType;
    use crate::net::quic_conn::test_util::*;
    use crate::net::quic_conn::{QuicConnLimits, QuicConnReader, QuicStatus};

    const SUITES: [Suite; 3] = [Suite::Aes128Gcm, Suite::Aes256Gcm, Suite::ChaCha20Poly1305];

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
}
