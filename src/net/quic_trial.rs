//! A QUIC connection that offered Encrypted Client Hello and whose secrets the key log
//! holds under a random the capture never shows (the inner ClientHello's), waiting
//! for the server's first Handshake packet to say which key log entry is its own.
//!
//! The flow table starts a [`QuicTrial`] instead of reporting the connection as
//! without a key when its ClientHello offered ECH and no secrets are logged under
//! its random (nor under the inner one's, when `ECH_SECRET` opened it). Every
//! datagram of the flow is held, both directions; each server datagram's first
//! Handshake packet is tried with the key log's TLS 1.3 entries in the order logged
//! ([`try_handshake_secrets`], at most [`MAX_ECH_TRIALS`]), as the TCP decryptor
//! tries the server's first encrypted record. The entry that opens it starts the
//! connection's decryption, and the held datagrams are read first. Bounded: at most
//! [`MAX_HELD_BYTES`] held and [`MAX_SERVER_DATAGRAMS`] server datagrams without a
//! Handshake packet; past either, or when no entry opens, the connection is reported
//! without a key. A flow table runs at most [`MAX_TRIALS_AT_ONCE`]. Sans-I/O.

use crate::exchange::Anomaly;
use crate::net::keylog::KeyLog;
use crate::net::quic_conn::{try_handshake_secrets, HandshakeTrial};
use crate::net::tls_decrypt::MAX_ECH_TRIALS;
use crate::timestamp::Timestamp;

/// Datagram bytes held at most while waiting.
pub const MAX_HELD_BYTES: usize = 64 << 10;
/// Server datagrams without a Handshake packet waited through at most.
pub const MAX_SERVER_DATAGRAMS: usize = 8;
/// Trials under way at once in one flow table (so at most 64 MiB held); a QUIC
/// connection past it is reported without a key at once.
pub const MAX_TRIALS_AT_ONCE: usize = 1024;

/// One datagram held, as the flow table would have read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldDatagram {
    pub payload: Vec<u8>,
    pub from_client: bool,
    pub ts: Timestamp,
    pub frame: u64,
}

/// What a datagram brought; see the module doc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrialStep {
    /// Still waiting for a server Handshake packet.
    Wait,
    /// This client random's secrets open the connection: start reading it with them,
    /// then read the held datagrams (this one last).
    Opened([u8; 32]),
    /// No key: report the connection, with this anomaly when a limit ended it.
    GaveUp(Option<Anomaly>),
}

/// The waiting state of one QUIC flow; see the module doc.
#[derive(Debug)]
pub struct QuicTrial {
    /// The connection's version, original DCID and client SCID: what its reader
    /// needs once the secrets are known.
    pub version: u32,
    pub original_dcid: Vec<u8>,
    pub client_scid: Vec<u8>,
    held: Vec<HeldDatagram>,
    held_bytes: usize,
    server_datagrams: usize,
    /// Anomalies of the flow's Initial packets, handed on with its outcome.
    pub anomalies: Vec<Anomaly>,
}

impl QuicTrial {
    /// A trial of a connection of QUIC `version` whose client Initial (to
    /// `original_dcid`, from `client_scid`) came in `first`.
    pub fn new(
        version: u32,
        original_dcid: &[u8],
        client_scid: &[u8],
        first: HeldDatagram,
        anomalies: Vec<Anomaly>,
    ) -> Self {
        let mut trial = QuicTrial {
            version,
            original_dcid: original_dcid.to_vec(),
            client_scid: client_scid.to_vec(),
            held: Vec::new(),
            held_bytes: 0,
            server_datagrams: 0,
            anomalies,
        };
        trial.hold(first);
        trial
    }

    fn hold(&mut self, datagram: HeldDatagram) -> bool {
        if self.held_bytes + datagram.payload.len() > MAX_HELD_BYTES {
            return false;
        }
        self.held_bytes += datagram.payload.len();
        self.held.push(datagram);
        true
    }

    /// One more datagram of the flow; `keys` is the key log to try.
    pub fn push(&mut self, datagram: HeldDatagram, keys: &KeyLog) -> TrialStep {
        let from_client = datagram.from_client;
        if !self.hold(datagram) {
            return TrialStep::GaveUp(Some(Anomaly::new(
                "tls-limit",
                format!("ECH offered, keys not logged under its random: more than {MAX_HELD_BYTES} bytes of datagrams before the server's Handshake packet"),
            )));
        }
        let Some(last) = self.held.last().filter(|_| !from_client) else {
            return TrialStep::Wait;
        };
        let found = try_handshake_secrets(
            self.version,
            &last.payload,
            keys.tls13_candidates(),
            MAX_ECH_TRIALS,
        );
        match found {
            HandshakeTrial::Opened(random) => TrialStep::Opened(random),
            HandshakeTrial::NoneOpened { limit: false } => TrialStep::GaveUp(None),
            HandshakeTrial::NoneOpened { limit: true } => TrialStep::GaveUp(Some(Anomaly::new(
                "tls-limit",
                format!("ECH offered, keys not logged under its random: the first {MAX_ECH_TRIALS} key log entries tried, none opened the server's Handshake packet"),
            ))),
            HandshakeTrial::NoHandshakePacket => {
                self.server_datagrams += 1;
                if self.server_datagrams >= MAX_SERVER_DATAGRAMS {
                    TrialStep::GaveUp(Some(Anomaly::new(
                        "tls-limit",
                        format!("ECH offered, keys not logged under its random: no Handshake packet in the server's first {MAX_SERVER_DATAGRAMS} datagrams"),
                    )))
                } else {
                    TrialStep::Wait
                }
            }
        }
    }

    /// The datagrams held, in the order they came.
    pub fn take_held(&mut self) -> Vec<HeldDatagram> {
        self.held_bytes = 0;
        std::mem::take(&mut self.held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::quic::QUIC_V1;

    fn datagram(len: usize, from_client: bool) -> HeldDatagram {
        HeldDatagram {
            payload: vec![0x40; len],
            from_client,
            ts: Timestamp::from_micros(1),
            frame: 1,
        }
    }

    fn trial() -> QuicTrial {
        QuicTrial::new(QUIC_V1, &[1; 8], &[], datagram(1200, true), Vec::new())
    }

    fn limit_detail(step: TrialStep) -> String {
        match step {
            TrialStep::GaveUp(Some(a)) if a.kind == "tls-limit" => a.detail,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn server_datagrams_without_a_handshake_packet_are_waited_through_up_to_a_bound() {
        let keys = KeyLog::new();
        let mut t = trial();
        assert_eq!(t.push(datagram(100, true), &keys), TrialStep::Wait);
        for _ in 1..MAX_SERVER_DATAGRAMS {
            assert_eq!(t.push(datagram(100, false), &keys), TrialStep::Wait);
        }
        let detail = limit_detail(t.push(datagram(100, false), &keys));
        assert!(detail.contains("no Handshake packet"), "{detail}");
        // Everything held, in order.
        let held = t.take_held();
        assert_eq!(held.len(), MAX_SERVER_DATAGRAMS + 2);
        assert!(held[0].from_client && held[1].from_client && !held[2].from_client);
    }

    #[test]
    fn held_bytes_are_bounded() {
        let keys = KeyLog::new();
        let mut t = trial();
        let room = MAX_HELD_BYTES - 1200;
        assert_eq!(t.push(datagram(room, true), &keys), TrialStep::Wait);
        let detail = limit_detail(t.push(datagram(1, true), &keys));
        assert!(
            detail.contains(&format!("{MAX_HELD_BYTES} bytes")),
            "{detail}"
        );
    }
}
