//! The server's Initial packets (RFC 9001 §5.2), opened for the ServerHello: its
//! cipher suite and version say how to read the 1-RTT packets. A Retry's SCID gives
//! the server's Initial keys anew.

use std::ops::Range;

use super::MAX_CID_LEN;
use crate::net::quic::{
    self, open_packet, read_frames, CryptoStream, Cur, InitialKeys, LongHeader,
};
use crate::net::tls;

/// Server Initial packets opened in search of the ServerHello before giving up.
const MAX_SERVER_INITIALS: usize = 16;
/// DCIDs the server's Initial keys may derive from: the original and Retry ones.
const MAX_INITIAL_DCIDS: usize = 3;
/// TLS handshake message type of a ServerHello.
pub(super) const SERVER_HELLO: u8 = 2;

/// What reading the server's Initial packets came to.
pub(super) enum HelloOutcome {
    NeedMore,
    Hello(tls::ServerHello),
    Failed(String),
}

/// Reads the ServerHello from the server's Initial packets.
pub(super) struct ServerHelloReader {
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
    pub(super) fn new(original_dcid: &[u8]) -> Self {
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
    pub(super) fn retry(&mut self, scid: &[u8]) {
        if !self.done
            && self.dcids.len() < MAX_INITIAL_DCIDS
            && !self.dcids.iter().any(|d| d == scid)
        {
            self.dcids.push(scid.to_vec());
        }
    }

    pub(super) fn push(
        &mut self,
        h: &LongHeader<'_>,
        packet: &[u8],
        scratch: &mut Vec<u8>,
    ) -> HelloOutcome {
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
pub(super) fn retry_scid(packet: &[u8]) -> Option<&[u8]> {
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

#[cfg(test)]
mod tests {
    use crate::net::keylog::Secrets;
    use crate::net::quic::tests::crypto_frame;
    use crate::net::quic::{PacketType, QUIC_V1, QUIC_V2};
    use crate::net::quic_conn::keys::Suite;
    use crate::net::quic_conn::test_util::*;
    use crate::net::quic_conn::{QuicConnLimits, QuicConnReader, QuicStatus};

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
}
