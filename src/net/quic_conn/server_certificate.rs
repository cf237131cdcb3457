//! The server's certificate from its Handshake packets: in QUIC the TLS 1.3 handshake
//! after the ServerHello (EncryptedExtensions, CertificateRequest, Certificate …)
//! travels in CRYPTO frames of the Handshake packet number space (RFC 9001 §4.1.4),
//! protected with keys from the logged `SERVER_HANDSHAKE_TRAFFIC_SECRET`. The
//! leaf is read as over TCP ([`tls_certificate`]), within the same 64 KiB of CRYPTO
//! data the Initial space is held to; then the reader's buffers are freed.

use std::ops::Range;

use super::keys::{candidate_suites, Labels, LongKeys, Suite};
use crate::exchange::ServerCertificate;
use crate::net::quic::{self, read_frames, CryptoRefused, CryptoStream, LongHeader};
use crate::net::tls_certificate::{self, CERTIFICATE, COMPRESSED_CERTIFICATE};

/// Handshake packets opened in search of the Certificate before giving up: 64 KiB of
/// CRYPTO data fills about 55 full-sized packets.
const MAX_HANDSHAKE_PACKETS: usize = 64;
/// Handshake packets in a row that do not open with the logged secret before the
/// reader gives up: a wrong or mistyped secret would fail on every one.
const MAX_FAILED_PACKETS: usize = 8;

/// TLS 1.3 handshake messages that may come before the server's Certificate.
const ENCRYPTED_EXTENSIONS: u8 = 8;
const CERTIFICATE_REQUEST: u8 = 13;
/// Messages that end the server's flight without a Certificate before them: a
/// resumed session (PSK) sends EncryptedExtensions then Finished.
const CERTIFICATE_VERIFY: u8 = 15;
const FINISHED: u8 = 20;

/// What reading the server's Handshake packets came to.
#[derive(Debug, PartialEq)]
pub(super) enum CertificateOutcome {
    NeedMore,
    Certificate(ServerCertificate),
    /// The flight has no certificate (a resumed session, or an empty list).
    NoCertificate,
    /// The handshake messages did not read, or no Certificate came within the limits.
    Malformed(String),
    /// [`MAX_FAILED_PACKETS`] Handshake packets in a row did not authenticate.
    KeysFailed(usize),
}

/// Reads the server's Certificate from its Handshake packets.
pub(super) struct ServerCertificateReader {
    /// The server's handshake traffic secret; `None` once done or when not logged.
    secret: Option<Vec<u8>>,
    /// One set of keys per candidate suite until a packet opens, then that one.
    keys: Vec<LongKeys>,
    built: bool,
    largest_pn: Option<u64>,
    crypto: CryptoStream,
    opened: usize,
    failing: usize,
}

impl ServerCertificateReader {
    /// `secret`: the logged `SERVER_HANDSHAKE_TRAFFIC_SECRET`, if any (without it the
    /// reader does nothing).
    pub(super) fn new(secret: Option<Vec<u8>>) -> Self {
        ServerCertificateReader {
            secret,
            keys: Vec::new(),
            built: false,
            largest_pn: None,
            crypto: CryptoStream::default(),
            opened: 0,
            failing: 0,
        }
    }

    /// One of the server's Handshake packets; `suite`: the ServerHello's, when read.
    /// Every answer but `NeedMore` is the last: the reader frees its buffers.
    pub(super) fn push(
        &mut self,
        h: &LongHeader<'_>,
        packet: &[u8],
        suite: Option<Suite>,
        scratch: &mut Vec<u8>,
    ) -> CertificateOutcome {
        let Some(payload) = self.open(h, packet, suite, scratch) else {
            return self.after_failure();
        };
        self.failing = 0;
        self.opened += 1;
        let mut refused = None;
        // Malformed frames end the packet; what was read before them still counts.
        let _ = scratch
            .get(payload)
            .map(|p| read_frames(p, &mut self.crypto, &mut refused));
        let outcome = match (self.certificate(), refused) {
            (CertificateOutcome::NeedMore, Some(CryptoRefused::TooFar)) => {
                CertificateOutcome::Malformed(format!(
                    "no Certificate within the first {} bytes of the server's handshake",
                    quic::MAX_CRYPTO_BYTES
                ))
            }
            (CertificateOutcome::NeedMore, Some(CryptoRefused::TooManyRanges)) => {
                CertificateOutcome::Malformed(
                    "the server's handshake came in too many pieces".into(),
                )
            }
            (CertificateOutcome::NeedMore, None) if self.opened >= MAX_HANDSHAKE_PACKETS => {
                CertificateOutcome::Malformed(format!(
                    "no Certificate in {MAX_HANDSHAKE_PACKETS} server Handshake packets"
                ))
            }
            (outcome, _) => outcome,
        };
        if outcome != CertificateOutcome::NeedMore {
            self.finish();
        }
        outcome
    }

    /// Whether the reader still wants Handshake packets.
    pub(super) fn reading(&self) -> bool {
        self.secret.is_some()
    }

    fn after_failure(&mut self) -> CertificateOutcome {
        if self.secret.is_none() {
            return CertificateOutcome::NeedMore;
        }
        self.failing += 1;
        if self.failing < MAX_FAILED_PACKETS {
            return CertificateOutcome::NeedMore;
        }
        self.finish();
        CertificateOutcome::KeysFailed(MAX_FAILED_PACKETS)
    }

    fn finish(&mut self) {
        self.secret = None;
        self.keys = Vec::new();
        self.crypto = CryptoStream::default();
    }

    /// Opens `packet` with the candidate keys; the plaintext payload's range in
    /// `scratch`.
    fn open(
        &mut self,
        h: &LongHeader<'_>,
        packet: &[u8],
        suite: Option<Suite>,
        scratch: &mut Vec<u8>,
    ) -> Option<Range<usize>> {
        let secret = self.secret.as_deref()?;
        if !self.built {
            self.built = true;
            let labels = Labels::of(h.version)?;
            self.keys = candidate_suites(suite, secret.len())
                .into_iter()
                .filter_map(|s| LongKeys::new(s, labels, secret))
                .collect();
        }
        let (i, opened) = self
            .keys
            .iter()
            .enumerate()
            .find_map(|(i, k)| Some((i, k.open(h, packet, self.largest_pn, scratch)?)))?;
        if self.keys.len() > 1 {
            let keys = self.keys.swap_remove(i);
            self.keys = vec![keys];
        }
        self.largest_pn = Some(self.largest_pn.map_or(opened.pn, |l| l.max(opened.pn)));
        Some(opened.payload)
    }

    /// Walks the handshake messages received in order so far.
    fn certificate(&self) -> CertificateOutcome {
        let mut data = self.crypto.contiguous();
        loop {
            let Some(head) = data.get(..4) else {
                return CertificateOutcome::NeedMore;
            };
            let len = usize::from(head[1]) << 16 | usize::from(head[2]) << 8 | usize::from(head[3]);
            if len > quic::MAX_CRYPTO_BYTES - 4 {
                return CertificateOutcome::Malformed(format!(
                    "handshake message type {} of {len} bytes",
                    head[0]
                ));
            }
            let Some(body) = data.get(4..4 + len) else {
                return CertificateOutcome::NeedMore;
            };
            let certificate = match head[0] {
                ENCRYPTED_EXTENSIONS | CERTIFICATE_REQUEST => {
                    data = &data[4 + len..];
                    continue;
                }
                CERTIFICATE => tls_certificate::parse_certificate(body, true),
                COMPRESSED_CERTIFICATE => tls_certificate::decompress_certificate(body)
                    .and_then(|message| tls_certificate::parse_certificate(&message, true)),
                CERTIFICATE_VERIFY | FINISHED => return CertificateOutcome::NoCertificate,
                other => {
                    return CertificateOutcome::Malformed(format!(
                        "handshake message type {other} where a Certificate was expected"
                    ))
                }
            };
            return match certificate {
                Ok(Some(c)) => CertificateOutcome::Certificate(c),
                Ok(None) => CertificateOutcome::NoCertificate,
                Err(e) => CertificateOutcome::Malformed(e),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::quic::tests::crypto_frame;
    use crate::net::quic::{parse_long_header, PacketType, QUIC_V1};
    use crate::net::quic_conn::test_util::*;
    use crate::net::tls::test_hellos::handshake_message;
    use crate::net::tls_certificate::tests::{certificate, message13};

    const HS_SECRET: u8 = 4;

    fn sealer(suite: Suite) -> Sealer {
        let len = if suite == Suite::Aes256Gcm { 48 } else { 32 };
        Sealer::new(suite, QUIC_V1, &secret(HS_SECRET, len))
    }

    fn new_reader(suite: Suite) -> ServerCertificateReader {
        let len = if suite == Suite::Aes256Gcm { 48 } else { 32 };
        ServerCertificateReader::new(Some(secret(HS_SECRET, len)))
    }

    /// The server's Handshake packet number `pn` carrying `frames`.
    fn packet(s: &Sealer, pn: u64, frames: &[u8]) -> Vec<u8> {
        s.long(
            QUIC_V1,
            PacketType::Handshake,
            &CLIENT_CID,
            &SERVER_CID,
            pn,
            2,
            frames,
        )
    }

    fn feed(r: &mut ServerCertificateReader, suite: Option<Suite>, p: &[u8]) -> CertificateOutcome {
        let h = parse_long_header(p).expect("long header");
        r.push(&h, p, suite, &mut Vec::new())
    }

    /// EncryptedExtensions, Certificate (the leaf and one more), CertificateVerify and
    /// Finished: the server's flight.
    fn flight(leaf: &[u8]) -> Vec<u8> {
        let mut m = handshake_message(ENCRYPTED_EXTENSIONS, &[0, 0]);
        m.extend(handshake_message(
            CERTIFICATE,
            &message13(&[leaf, b"intermediate"]),
        ));
        m.extend(handshake_message(
            CERTIFICATE_VERIFY,
            &[0x08, 0x04, 0, 2, 1, 2],
        ));
        m.extend(handshake_message(FINISHED, &[0x5a; 32]));
        m
    }

    fn expect_leaf(outcome: CertificateOutcome, name: &str) {
        match outcome {
            CertificateOutcome::Certificate(c) => {
                assert_eq!(c.host.as_deref(), Some(name));
                assert_eq!(c.chain, 2);
            }
            other => panic!("expected the certificate, got {other:?}"),
        }
    }

    #[test]
    fn the_leaf_comes_from_crypto_frames_across_packets_in_any_order() {
        let leaf = certificate(&["cdn.tracker.example"]);
        let m = flight(&leaf);
        let cut = m.len() / 3;
        for suite in [Suite::Aes128Gcm, Suite::Aes256Gcm, Suite::ChaCha20Poly1305] {
            let s = sealer(suite);
            let first = packet(&s, 0, &crypto_frame(0, &m[..cut]));
            let second = packet(&s, 1, &crypto_frame(cut, &m[cut..]));
            // In order, the suite known from the ServerHello.
            let mut r = new_reader(suite);
            assert_eq!(
                feed(&mut r, Some(suite), &first),
                CertificateOutcome::NeedMore
            );
            expect_leaf(feed(&mut r, Some(suite), &second), "cdn.tracker.example");
            assert!(!r.reading());
            // The later packet first, the suite told by the packet alone.
            let mut r = new_reader(suite);
            assert_eq!(feed(&mut r, None, &second), CertificateOutcome::NeedMore);
            expect_leaf(feed(&mut r, None, &first), "cdn.tracker.example");
        }
    }

    #[test]
    fn a_compressed_certificate_is_read() {
        let leaf = certificate(&["push.tracker.example"]);
        let message = message13(&[&leaf, b"intermediate"]);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut z, &message).expect("compress");
        let compressed = z.finish().expect("compress");
        let mut body = vec![0, 1]; // zlib
        body.extend(&(message.len() as u32).to_be_bytes()[1..]);
        body.extend(&(compressed.len() as u32).to_be_bytes()[1..]);
        body.extend(&compressed);
        let mut m = handshake_message(ENCRYPTED_EXTENSIONS, &[0, 0]);
        m.extend(handshake_message(COMPRESSED_CERTIFICATE, &body));
        let s = sealer(Suite::Aes128Gcm);
        let mut r = new_reader(Suite::Aes128Gcm);
        let p = packet(&s, 0, &crypto_frame(0, &m));
        expect_leaf(feed(&mut r, None, &p), "push.tracker.example");
    }

    #[test]
    fn a_resumed_session_has_no_certificate() {
        let mut m = handshake_message(ENCRYPTED_EXTENSIONS, &[0, 0]);
        m.extend(handshake_message(FINISHED, &[0x5a; 32]));
        let s = sealer(Suite::ChaCha20Poly1305);
        let mut r = new_reader(Suite::ChaCha20Poly1305);
        let p = packet(&s, 0, &crypto_frame(0, &m));
        assert_eq!(feed(&mut r, None, &p), CertificateOutcome::NoCertificate);
        assert!(!r.reading());
    }

    #[test]
    fn malformed_flights_say_what_is_wrong() {
        let s = sealer(Suite::Aes128Gcm);
        let cases: [(Vec<u8>, &str); 3] = [
            (
                handshake_message(CERTIFICATE, &message13(&[b"not der"])),
                "certificate 1 of 1: not an X.509",
            ),
            (
                handshake_message(2, &[0; 40]),
                "handshake message type 2 where a Certificate was expected",
            ),
            (
                vec![CERTIFICATE, 0xff, 0xff, 0xff],
                "handshake message type 11 of 16777215 bytes",
            ),
        ];
        for (m, why) in cases {
            let mut r = new_reader(Suite::Aes128Gcm);
            match feed(&mut r, None, &packet(&s, 0, &crypto_frame(0, &m))) {
                CertificateOutcome::Malformed(e) => assert!(e.starts_with(why), "{e}"),
                other => panic!("{why}: {other:?}"),
            }
            assert!(!r.reading());
        }
    }

    #[test]
    fn a_flight_beyond_the_crypto_limit_gives_up() {
        let s = sealer(Suite::Aes128Gcm);
        let mut r = new_reader(Suite::Aes128Gcm);
        // A Certificate announced at 60 000 bytes, then data past the 64 KiB limit.
        let mut head = vec![CERTIFICATE, 0, 0xea, 0x60];
        head.extend([0; 100]);
        assert_eq!(
            feed(&mut r, None, &packet(&s, 0, &crypto_frame(0, &head))),
            CertificateOutcome::NeedMore
        );
        let far = packet(&s, 1, &crypto_frame(quic::MAX_CRYPTO_BYTES - 10, &[0; 100]));
        assert_eq!(
            feed(&mut r, None, &far),
            CertificateOutcome::Malformed(
                "no Certificate within the first 65536 bytes of the server's handshake".into()
            )
        );
    }

    #[test]
    fn packets_that_do_not_open_give_up_after_a_few() {
        let wrong = Sealer::new(Suite::Aes128Gcm, QUIC_V1, &secret(9, 32));
        let mut r = new_reader(Suite::Aes128Gcm);
        let m = flight(&certificate(&["x.example"]));
        for pn in 0..MAX_FAILED_PACKETS as u64 - 1 {
            let p = packet(&wrong, pn, &crypto_frame(0, &m));
            assert_eq!(feed(&mut r, None, &p), CertificateOutcome::NeedMore);
        }
        let p = packet(&wrong, 99, &crypto_frame(0, &m));
        assert_eq!(
            feed(&mut r, None, &p),
            CertificateOutcome::KeysFailed(MAX_FAILED_PACKETS)
        );
        assert!(!r.reading());
        // Nothing more is tried, not even the right packet.
        let right = packet(&sealer(Suite::Aes128Gcm), 0, &crypto_frame(0, &m));
        assert_eq!(feed(&mut r, None, &right), CertificateOutcome::NeedMore);
    }

    #[test]
    fn without_a_logged_secret_nothing_is_read() {
        let mut r = ServerCertificateReader::new(None);
        assert!(!r.reading());
        let p = packet(
            &sealer(Suite::Aes128Gcm),
            0,
            &crypto_frame(0, &flight(b"x")),
        );
        for _ in 0..2 * MAX_FAILED_PACKETS {
            assert_eq!(feed(&mut r, None, &p), CertificateOutcome::NeedMore);
        }
    }
}
