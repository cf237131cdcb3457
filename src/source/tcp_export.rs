//! PCAPdroid's "TCP exporter" as a capture stream: when a capture starts, the app
//! connects to the collector and writes the file's header (a pcap file header, or a
//! pcapng Section Header and Interface Description Block), then every pcap record or
//! pcapng block, as a file would hold them (`TCPDumper.java`); the next capture is a
//! new connection that starts with a header again.
//!
//! [`RecordSplitter`] cuts one connection's bytes into that header and those records.
//! Each goes through [`ExportFraming`](super::udp_export::ExportFraming) as one of the
//! UDP exporter's datagrams does, so that the connections join into one stream: a
//! pcap header again is skipped, a pcapng header starts a new section, and a
//! connection that ends in the middle of a record leaves nothing of that record in
//! the stream. Sans-I/O: the tap's reader thread accepts and reads.
//!
//! Policies:
//! - A connection must start with a pcap or pcapng header (the app always sends one).
//! - A length field beyond the capture reader's largest block ([`MAX_BLOCK_LEN`]), or
//!   a pcapng length that cannot be a block's, ends the connection: a byte stream
//!   cannot find its next record once one length is wrong.

use super::udp_export::{
    pcap_magic_byte_order, shb_byte_order, u32_at, Format, PCAPNG_SHB, PCAP_HEADER_LEN,
    PCAP_RECORD_HEADER_LEN,
};
use crate::net::capture::MAX_BLOCK_LEN;

/// A Section Header Block's bytes up to its byte-order magic.
const SHB_MAGIC_END: usize = 12;

/// Cuts one connection's bytes into its file header and records.
#[derive(Debug, Default)]
pub struct RecordSplitter {
    buf: Vec<u8>,
    /// Bytes of `buf` already handed out.
    at: usize,
    format: Option<Format>,
}

impl RecordSplitter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes read from the connection.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.at > 0 && self.at == self.buf.len() {
            self.buf.clear();
            self.at = 0;
        } else if self.at > self.buf.len() / 2 {
            self.buf.drain(..self.at);
            self.at = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next header or record, `None` until its last byte has come, or why the
    /// connection cannot go on.
    pub fn next_unit(&mut self) -> Option<Result<&[u8], &'static str>> {
        let rest = &self.buf[self.at..];
        let (len, format) = match unit_len(self.format, rest) {
            Ok(Some(unit)) => unit,
            Ok(None) => return None,
            Err(why) => return Some(Err(why)),
        };
        if rest.len() < len {
            return None;
        }
        // A header's format counts once the whole header is there.
        self.format = Some(format);
        let start = self.at;
        self.at += len;
        Some(Ok(&self.buf[start..start + len]))
    }

    /// Bytes of a header or record begun and not complete.
    pub fn unfinished(&self) -> usize {
        self.buf.len() - self.at
    }
}

/// The length of the unit `rest` starts with, once enough of it is there to tell,
/// and the connection's format from that unit on (a header's, or `format`).
fn unit_len(format: Option<Format>, rest: &[u8]) -> Result<Option<(usize, Format)>, &'static str> {
    let Some(first) = u32_at(rest, 0, false) else {
        return Ok(None);
    };
    let format = if first == PCAPNG_SHB {
        // A section header (at the start, or a new section): its own byte order.
        if rest.len() < SHB_MAGIC_END {
            return Ok(None);
        }
        let big_endian =
            shb_byte_order(rest).ok_or("a pcapng section header without its byte-order magic")?;
        if let Some(Format::Pcap { .. }) = format {
            return Err("a pcapng header in a pcap stream");
        }
        Format::Pcapng { big_endian }
    } else {
        match format {
            Some(format) => format,
            None => {
                let big_endian = pcap_magic_byte_order(first)
                    .ok_or("the connection starts with neither a pcap nor a pcapng header")?;
                return Ok(Some((PCAP_HEADER_LEN, Format::Pcap { big_endian })));
            }
        }
    };
    let len = match format {
        Format::Pcap { big_endian } => {
            let Some(captured) = u32_at(rest, 8, big_endian) else {
                return Ok(None);
            };
            let len = PCAP_RECORD_HEADER_LEN.saturating_add(captured as usize);
            if len > MAX_BLOCK_LEN {
                return Err("a pcap record longer than the capture reader takes");
            }
            len
        }
        Format::Pcapng { big_endian } => {
            let Some(len) = u32_at(rest, 4, big_endian).map(|l| l as usize) else {
                return Ok(None);
            };
            if len < 12 || len % 4 != 0 {
                return Err("a pcapng block length that no block can have");
            }
            if len > MAX_BLOCK_LEN {
                return Err("a pcapng block longer than the capture reader takes");
            }
            len
        }
    };
    Ok(Some((len, format)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::udp_export::PCAPNG_BYTE_ORDER_MAGIC;

    fn pcap_header() -> Vec<u8> {
        let mut h = Vec::new();
        h.extend_from_slice(&0xA1B2_C3D4u32.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&[0; 8]);
        h.extend_from_slice(&65_535u32.to_le_bytes());
        h.extend_from_slice(&101u32.to_le_bytes());
        h
    }

    fn pcap_record(data: &[u8]) -> Vec<u8> {
        let mut r = Vec::new();
        r.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);
        r.extend_from_slice(&(data.len() as u32).to_le_bytes());
        r.extend_from_slice(&(data.len() as u32).to_le_bytes());
        r.extend_from_slice(data);
        r
    }

    fn block(kind: u32, body: &[u8], big_endian: bool) -> Vec<u8> {
        let word = |v: u32| match big_endian {
            true => v.to_be_bytes(),
            false => v.to_le_bytes(),
        };
        let padded = body.len().div_ceil(4) * 4;
        let len = (12 + padded) as u32;
        let mut b = Vec::new();
        b.extend_from_slice(&word(kind));
        b.extend_from_slice(&word(len));
        b.extend_from_slice(body);
        b.resize(8 + padded, 0);
        b.extend_from_slice(&word(len));
        b
    }

    fn shb(big_endian: bool) -> Vec<u8> {
        let mut body = match big_endian {
            true => PCAPNG_BYTE_ORDER_MAGIC.to_be_bytes().to_vec(),
            false => PCAPNG_BYTE_ORDER_MAGIC.to_le_bytes().to_vec(),
        };
        body.extend_from_slice(&[0, 1, 0, 0]);
        body.extend_from_slice(&[0xff; 8]);
        block(PCAPNG_SHB, &body, big_endian)
    }

    /// Every unit of `bytes` fed in `chunk`-byte reads, and the error if one came.
    fn units(bytes: &[u8], chunk: usize) -> (Vec<Vec<u8>>, Option<&'static str>) {
        let mut s = RecordSplitter::new();
        let mut out = Vec::new();
        for piece in bytes.chunks(chunk.max(1)) {
            s.push(piece);
            while let Some(unit) = s.next_unit() {
                match unit {
                    Ok(u) => out.push(u.to_vec()),
                    Err(why) => return (out, Some(why)),
                }
            }
        }
        (out, None)
    }

    #[test]
    fn a_pcap_connection_splits_into_its_header_and_records_however_it_is_read() {
        let want = vec![pcap_header(), pcap_record(b"first"), pcap_record(&[7; 300])];
        let bytes = want.concat();
        for chunk in [1, 3, 16, 17, 24, 40, 1000] {
            assert_eq!(
                units(&bytes, chunk),
                (want.clone(), None),
                "reads of {chunk}"
            );
        }
        // A record cut by the end of the connection: unfinished, never handed out.
        let mut s = RecordSplitter::new();
        s.push(&bytes[..bytes.len() - 5]);
        while let Some(Ok(_)) = s.next_unit() {}
        assert_eq!(s.unfinished(), want[2].len() - 5);
    }

    #[test]
    fn a_pcapng_connection_splits_into_blocks_in_either_byte_order_and_new_sections() {
        for big_endian in [false, true] {
            let want = vec![
                shb(big_endian),
                block(1, &[0, 0, 0, 0, 0, 0, 4, 0], big_endian),
                block(6, &[9; 33], big_endian),
                shb(!big_endian),
                block(6, &[5; 20], !big_endian),
            ];
            for chunk in [1, 7, 64] {
                assert_eq!(units(&want.concat(), chunk), (want.clone(), None));
            }
        }
    }

    #[test]
    fn bad_starts_and_lengths_end_the_connection_with_a_reason() {
        let (got, why) = units(b"GET / HTTP/1.1\r\n", 64);
        assert!(got.is_empty());
        assert_eq!(
            why,
            Some("the connection starts with neither a pcap nor a pcapng header")
        );
        let mut huge = pcap_header();
        huge.extend_from_slice(&[0; 8]);
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            units(&huge, 64).1,
            Some("a pcap record longer than the capture reader takes")
        );
        let mut odd = shb(false);
        odd.extend_from_slice(&6u32.to_le_bytes());
        odd.extend_from_slice(&13u32.to_le_bytes());
        assert_eq!(
            units(&odd, 64).1,
            Some("a pcapng block length that no block can have")
        );
        let mut mixed = pcap_header();
        mixed.extend_from_slice(&shb(false));
        assert_eq!(
            units(&mixed, 64).1,
            Some("a pcapng header in a pcap stream")
        );
    }

    #[test]
    fn a_long_connection_keeps_a_small_buffer() {
        let mut s = RecordSplitter::new();
        s.push(&pcap_header());
        assert!(matches!(s.next_unit(), Some(Ok(_))));
        let record = pcap_record(&[1; 100]);
        for _ in 0..10_000 {
            // Each record in two reads, so that one is always unfinished.
            s.push(&record[..50]);
            assert!(s.next_unit().is_none());
            s.push(&record[50..]);
            assert_eq!(s.next_unit(), Some(Ok(&record[..])));
            assert!(s.buf.len() <= 2 * record.len(), "{}", s.buf.len());
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Any bytes, read in any pieces: no panic, and the units are the bytes given,
        /// in order.
        #[test]
        fn any_bytes_split_without_panic_into_the_bytes_given(
            start in 0u8..3,
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400),
            chunk in 1usize..50,
        ) {
            let mut input = match start {
                0 => pcap_header(),
                1 => shb(false),
                _ => Vec::new(),
            };
            input.extend_from_slice(&bytes);
            let mut s = RecordSplitter::new();
            let mut handed = Vec::new();
            'read: for piece in input.chunks(chunk) {
                s.push(piece);
                loop {
                    match s.next_unit() {
                        Some(Ok(u)) => handed.extend_from_slice(u),
                        Some(Err(_)) => break 'read,
                        None => break,
                    }
                }
            }
            proptest::prop_assert!(input.starts_with(&handed));
        }
    }
}
