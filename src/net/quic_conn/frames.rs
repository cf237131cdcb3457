//! The frames of a decrypted 0-RTT or 1-RTT payload (RFC 9000 §19, RFC 9221), each
//! read to its end: STREAM, RESET_STREAM and CONNECTION_CLOSE become events,
//! NEW_CONNECTION_ID teaches connection ID lengths, the rest is skipped.

use super::streams::StreamKey;
use super::{QuicConnReader, QuicEvent, MAX_CID_LEN};
use crate::net::quic::{skip_ack, Cur, PacketError};

impl QuicConnReader {
    /// Reads every frame of a decrypted payload (RFC 9000 §19, RFC 9221).
    pub(super) fn read_frames(
        &mut self,
        payload: &[u8],
        from_client: bool,
        out: &mut Vec<QuicEvent>,
    ) {
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

#[cfg(test)]
mod tests {
    use crate::net::quic::tests::crypto_frame;
    use crate::net::quic_conn::keys::Suite;
    use crate::net::quic_conn::test_util::*;
    use crate::net::quic_conn::QuicEvent;

    #[test]
    fn every_frame_type_is_read_to_its_end() {
        let Conn { mut r, server, .. } = connected(Suite::Aes128Gcm);
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
        let Conn { mut r, client, .. } = connected(Suite::Aes128Gcm);
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
                &client.short(&SERVER_CID, pn as u64, 1, false, &frames),
                true,
            );
            assert!(events.is_empty(), "{frames:?}");
            assert_eq!(kinds(&mut r), vec![kind], "{frames:?}");
        }
        // An offset near 2^62: refused.
        let mut f = vec![0x0e, 0x00];
        f.extend(varint((1 << 62) - 1));
        f.extend([0x01, b'x']);
        assert!(push(&mut r, &client.short(&SERVER_CID, 9, 1, false, &f), true).is_empty());
        assert_eq!(kinds(&mut r), vec!["quic-stream-final-size"]);
        assert!(r.streams.active.is_empty(), "a refused frame takes no slot");
    }
}
