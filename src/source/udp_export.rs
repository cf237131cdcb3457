//! PCAPdroid's "UDP exporter" as a capture stream: it sends the file's header (a pcap
//! file header, or a pcapng Section Header and Interface Description Block) in one
//! datagram, then every pcap record or pcapng block (packets, Decryption Secrets
//! Blocks) in a datagram of its own. Joined in order, the datagrams are a capture
//! file; [`ExportFraming`] joins them, so that the stream the capture reader gets is
//! well formed whatever arrives. Sans-I/O: the tap's reader thread receives.
//!
//! Policies:
//! - A datagram that is not exactly one record (a pcap record whose length field
//!   disagrees with the datagram's, a pcapng block whose lengths do not close it or
//!   whose contents the reader refuses) is dropped with its reason: passed on, it
//!   would make the reader misread, or stop at, everything after it. A lost datagram
//!   loses its packet only, as on the wire.
//! - A collector started after the app, or one whose header datagram was lost, gets
//!   records before any header: the header is made up as PCAPdroid writes it
//!   (little-endian; pcap of raw IP, or of Ethernet when the record ends in
//!   PCAPdroid's trailer; pcapng with one raw-IP interface), as PCAPdroid's own
//!   `udp_receiver.py` does for pcap.
//! - A pcap header again (the app restarted its capture) is skipped; a pcapng
//!   preamble again starts a new section, as pcapng allows. A header of the other
//!   format than the stream's is dropped: one stream has one format.

use crate::net::capture::check_pcapng_block;

/// The pcap file header's length.
pub(super) const PCAP_HEADER_LEN: usize = 24;
/// A pcap record's header length.
pub(super) const PCAP_RECORD_HEADER_LEN: usize = 16;
pub(super) const PCAPNG_SHB: u32 = 0x0A0D_0D0A;
pub(super) const PCAPNG_BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
/// PCAPdroid's trailer (32 bytes at a frame's end) starts with this magic.
const PCAPDROID_TRAILER_MAGIC: [u8; 4] = [0x01, 0x07, 0x20, 0x21];
const PCAPDROID_TRAILER_LEN: usize = 32;
/// Snap length of a made-up header: PCAPdroid's largest, so no record is cut.
const MADE_UP_SNAPLEN: u32 = 262_144;
const LINKTYPE_ETHERNET: u32 = 1;
const LINKTYPE_RAW: u32 = 101;

/// The format of the stream, as its first header said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    Pcap { big_endian: bool },
    Pcapng { big_endian: bool },
}

/// What to do with one datagram.
#[derive(Debug, PartialEq, Eq)]
pub enum Framed {
    /// Append these bytes to the stream (the datagram, after a made-up header if
    /// it came first).
    Append(Vec<u8>),
    /// A header repeated: nothing to append.
    Skip,
    /// Not one record of the stream: dropped, and why.
    Drop(&'static str),
}

/// Joins an exporter's datagrams into one capture stream.
#[derive(Debug, Default)]
pub struct ExportFraming {
    format: Option<Format>,
}

impl ExportFraming {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decides about the next datagram.
    pub fn datagram(&mut self, d: &[u8]) -> Framed {
        if let Some(big_endian) = pcap_header(d) {
            return match self.format {
                None => {
                    self.format = Some(Format::Pcap { big_endian });
                    Framed::Append(d.to_vec())
                }
                Some(Format::Pcap { .. }) => Framed::Skip,
                Some(Format::Pcapng { .. }) => Framed::Drop("a pcap header in a pcapng stream"),
            };
        }
        if u32_at(d, 0, false) == Some(PCAPNG_SHB) {
            let Some(big_endian) = shb_byte_order(d) else {
                return Framed::Drop("a pcapng section header without its byte-order magic");
            };
            if !whole_blocks(d, big_endian) {
                return Framed::Drop("a pcapng section header whose lengths do not close it");
            }
            return match self.format {
                None | Some(Format::Pcapng { .. }) => {
                    self.format = Some(Format::Pcapng { big_endian });
                    Framed::Append(d.to_vec())
                }
                Some(Format::Pcap { .. }) => Framed::Drop("a pcapng header in a pcap stream"),
            };
        }
        match self.format {
            Some(Format::Pcap { big_endian }) => match one_pcap_record(d, big_endian) {
                true => Framed::Append(d.to_vec()),
                false => Framed::Drop("not one pcap record"),
            },
            Some(Format::Pcapng { big_endian }) => match whole_blocks(d, big_endian) {
                true => Framed::Append(d.to_vec()),
                false => Framed::Drop("not whole pcapng blocks"),
            },
            None if one_pcap_record(d, false) => {
                self.format = Some(Format::Pcap { big_endian: false });
                let mut out = made_up_pcap_header(has_pcapdroid_trailer(d));
                out.extend_from_slice(d);
                Framed::Append(out)
            }
            None if whole_blocks(d, false) => {
                self.format = Some(Format::Pcapng { big_endian: false });
                let mut out = made_up_pcapng_preamble();
                out.extend_from_slice(d);
                Framed::Append(out)
            }
            None => Framed::Drop("neither a header nor one record"),
        }
    }
}

pub(super) fn u32_at(d: &[u8], at: usize, big_endian: bool) -> Option<u32> {
    let b: [u8; 4] = d.get(at..at + 4)?.try_into().ok()?;
    Some(match big_endian {
        true => u32::from_be_bytes(b),
        false => u32::from_le_bytes(b),
    })
}

/// A pcap file header (µs or ns magic, either byte order): its byte order.
fn pcap_header(d: &[u8]) -> Option<bool> {
    if d.len() != PCAP_HEADER_LEN {
        return None;
    }
    pcap_magic_byte_order(u32_at(d, 0, false)?)
}

/// The byte order a pcap file's magic (its first four bytes, read little-endian)
/// says, µs or ns.
pub(super) fn pcap_magic_byte_order(magic: u32) -> Option<bool> {
    match magic {
        0xA1B2_C3D4 | 0xA1B2_3C4D => Some(false),
        0xD4C3_B2A1 | 0x4D3C_B2A1 => Some(true),
        _ => None,
    }
}

/// The byte order a Section Header Block's magic says.
pub(super) fn shb_byte_order(d: &[u8]) -> Option<bool> {
    match u32_at(d, 8, false)? {
        PCAPNG_BYTE_ORDER_MAGIC => Some(false),
        m if m.swap_bytes() == PCAPNG_BYTE_ORDER_MAGIC => Some(true),
        _ => None,
    }
}

/// Exactly one pcap record: its captured length is the rest of the datagram.
fn one_pcap_record(d: &[u8], big_endian: bool) -> bool {
    let Some(captured) = u32_at(d, 8, big_endian) else {
        return false;
    };
    d.len() >= PCAP_RECORD_HEADER_LEN && captured as usize == d.len() - PCAP_RECORD_HEADER_LEN
}

/// One or more whole pcapng blocks the capture reader reads: each length a
/// multiple of 4, at least 12, and repeated at its end, the contents as the reader
/// checks them ([`check_pcapng_block`]); the last one ends the datagram. A section
/// header only first (where [`ExportFraming::datagram`] has checked its byte-order
/// magic).
fn whole_blocks(d: &[u8], big_endian: bool) -> bool {
    let mut at = 0;
    while at < d.len() {
        if at > 0 && u32_at(d, at, big_endian) == Some(PCAPNG_SHB) {
            return false;
        }
        let Some(len) = u32_at(d, at + 4, big_endian).map(|l| l as usize) else {
            return false;
        };
        let end = at.saturating_add(len);
        if len < 12 || len % 4 != 0 || end > d.len() {
            return false;
        }
        if u32_at(d, end - 4, big_endian) != Some(len as u32) {
            return false;
        }
        if check_pcapng_block(&d[at..end], big_endian).is_err() {
            return false;
        }
        at = end;
    }
    !d.is_empty()
}

fn has_pcapdroid_trailer(record: &[u8]) -> bool {
    record.len() >= PCAP_RECORD_HEADER_LEN + PCAPDROID_TRAILER_LEN
        && record[record.len() - PCAPDROID_TRAILER_LEN..].starts_with(&PCAPDROID_TRAILER_MAGIC)
}

/// A little-endian pcap header as PCAPdroid writes it.
fn made_up_pcap_header(ethernet: bool) -> Vec<u8> {
    let mut h = Vec::with_capacity(PCAP_HEADER_LEN);
    h.extend_from_slice(&0xA1B2_C3D4u32.to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&4u16.to_le_bytes());
    h.extend_from_slice(&[0; 8]);
    h.extend_from_slice(&MADE_UP_SNAPLEN.to_le_bytes());
    let link = if ethernet {
        LINKTYPE_ETHERNET
    } else {
        LINKTYPE_RAW
    };
    h.extend_from_slice(&link.to_le_bytes());
    h
}

/// A little-endian Section Header Block and one raw-IP Interface Description Block,
/// as PCAPdroid's pcapng preamble has (without its options).
fn made_up_pcapng_preamble() -> Vec<u8> {
    let mut p = Vec::with_capacity(48);
    p.extend_from_slice(&PCAPNG_SHB.to_le_bytes());
    p.extend_from_slice(&28u32.to_le_bytes());
    p.extend_from_slice(&PCAPNG_BYTE_ORDER_MAGIC.to_le_bytes());
    p.extend_from_slice(&1u16.to_le_bytes());
    p.extend_from_slice(&0u16.to_le_bytes());
    p.extend_from_slice(&(-1i64).to_le_bytes());
    p.extend_from_slice(&28u32.to_le_bytes());
    p.extend_from_slice(&1u32.to_le_bytes());
    p.extend_from_slice(&20u32.to_le_bytes());
    p.extend_from_slice(&(LINKTYPE_RAW as u16).to_le_bytes());
    p.extend_from_slice(&0u16.to_le_bytes());
    p.extend_from_slice(&MADE_UP_SNAPLEN.to_le_bytes());
    p.extend_from_slice(&20u32.to_le_bytes());
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::capture::{CaptureEvent, CaptureReader};

    fn pcap_record(ts: u32, data: &[u8]) -> Vec<u8> {
        let mut r = Vec::new();
        r.extend_from_slice(&ts.to_le_bytes());
        r.extend_from_slice(&0u32.to_le_bytes());
        r.extend_from_slice(&(data.len() as u32).to_le_bytes());
        r.extend_from_slice(&(data.len() as u32).to_le_bytes());
        r.extend_from_slice(data);
        r
    }

    fn block(kind: u32, body: &[u8]) -> Vec<u8> {
        let len = 12 + body.len().div_ceil(4) * 4;
        let mut b = Vec::new();
        b.extend_from_slice(&kind.to_le_bytes());
        b.extend_from_slice(&(len as u32).to_le_bytes());
        b.extend_from_slice(body);
        b.resize(len - 4, 0);
        b.extend_from_slice(&(len as u32).to_le_bytes());
        b
    }

    fn epb(data: &[u8]) -> Vec<u8> {
        let mut body = vec![0u8; 12];
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(data);
        block(6, &body)
    }

    /// The frames (link type, bytes) a stream of `datagrams` gives the capture reader.
    fn frames_of(datagrams: &[Vec<u8>]) -> (Vec<(u32, Vec<u8>)>, Vec<&'static str>) {
        let mut framing = ExportFraming::new();
        let (mut stream, mut drops) = (Vec::new(), Vec::new());
        for d in datagrams {
            match framing.datagram(d) {
                Framed::Append(bytes) => stream.extend_from_slice(&bytes),
                Framed::Skip => {}
                Framed::Drop(why) => drops.push(why),
            }
        }
        let mut reader = CaptureReader::new(&stream[..]).unwrap();
        let mut frames = Vec::new();
        while let Some(event) = reader.next_event().unwrap() {
            if let CaptureEvent::Frame(f) = event {
                frames.push((f.link.number(), f.data.to_vec()));
            }
        }
        (frames, drops)
    }

    #[test]
    fn pcap_datagrams_join_into_a_capture_with_bad_ones_dropped() {
        let header = made_up_pcap_header(false);
        let (frames, drops) = frames_of(&[
            header.clone(),
            pcap_record(1, b"\x45first"),
            // Its length field claims more than the datagram holds.
            [&pcap_record(2, b"\x45second")[..], b"extra"].concat(),
            b"garbage".to_vec(),
            // The app restarted.
            header,
            pcap_record(3, b"\x45third"),
        ]);
        assert_eq!(
            frames,
            vec![(101, b"\x45first".to_vec()), (101, b"\x45third".to_vec())]
        );
        assert_eq!(drops, vec!["not one pcap record", "not one pcap record"]);
    }

    #[test]
    fn a_header_is_made_up_for_records_that_come_first() {
        let (frames, drops) = frames_of(&[pcap_record(1, b"\x45raw")]);
        assert_eq!((frames, drops), (vec![(101, b"\x45raw".to_vec())], vec![]));
        // A frame ending in PCAPdroid's trailer: the export is of Ethernet frames.
        let mut frame = vec![0u8; 14];
        frame.extend_from_slice(b"\x45ip");
        frame.extend_from_slice(&PCAPDROID_TRAILER_MAGIC);
        frame.resize(14 + 3 + PCAPDROID_TRAILER_LEN, 0);
        let (frames, _) = frames_of(&[pcap_record(1, &frame)]);
        assert_eq!(frames, vec![(1, frame)]);
        // pcapng blocks first: a raw-IP interface is made up.
        let (frames, drops) = frames_of(&[epb(b"\x45ng"), b"\x06\0\0\0".to_vec()]);
        assert_eq!(frames, vec![(101, b"\x45ng".to_vec())]);
        assert_eq!(drops, vec!["not whole pcapng blocks"]);
        assert_eq!(
            ExportFraming::new().datagram(b"x"),
            Framed::Drop("neither a header nor one record")
        );
    }

    #[test]
    fn pcapng_preambles_start_sections_and_formats_do_not_mix() {
        let preamble = made_up_pcapng_preamble();
        let secrets = block(10, b"\x4b\x53\x4c\x54\x05\0\0\0keys\n");
        let (frames, drops) = frames_of(&[
            preamble.clone(),
            secrets,
            epb(b"\x45a"),
            made_up_pcap_header(false),
            preamble,
            epb(b"\x45b"),
        ]);
        assert_eq!(
            frames,
            vec![(101, b"\x45a".to_vec()), (101, b"\x45b".to_vec())]
        );
        assert_eq!(drops, vec!["a pcap header in a pcapng stream"]);
        let mut framing = ExportFraming::new();
        assert!(matches!(
            framing.datagram(&made_up_pcap_header(true)),
            Framed::Append(_)
        ));
        assert_eq!(
            framing.datagram(&made_up_pcapng_preamble()),
            Framed::Drop("a pcapng header in a pcap stream")
        );
    }

    proptest::proptest! {
        /// Whatever datagrams come, in any order, the stream reads without error
        /// to its end: every appended piece is whole.
        #[test]
        fn any_datagrams_make_a_stream_that_reads_to_its_end(
            picks in proptest::collection::vec((0u8..8, proptest::collection::vec(proptest::num::u8::ANY, 0..40)), 0..20),
        ) {
            let datagrams: Vec<Vec<u8>> = picks
                .iter()
                .map(|(kind, bytes)| match kind {
                    0 => made_up_pcap_header(false),
                    1 => made_up_pcapng_preamble(),
                    2 => pcap_record(7, bytes),
                    3 => epb(bytes),
                    4 => [&pcap_record(7, bytes)[..], b"x"].concat(),
                    // Whole blocks whose contents are anything: an EPB, a secrets block.
                    5 => block(6, bytes),
                    6 => block(10, bytes),
                    _ => bytes.clone(),
                })
                .collect();
            let mut framing = ExportFraming::new();
            let mut stream = Vec::new();
            for d in &datagrams {
                if let Framed::Append(bytes) = framing.datagram(d) {
                    stream.extend_from_slice(&bytes);
                }
            }
            if stream.is_empty() {
                return Ok(());
            }
            let mut reader = CaptureReader::new(&stream[..]).unwrap();
            loop {
                match reader.next_event() {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) => proptest::prop_assert!(false, "{e}"),
                }
            }
        }
    }
}
