//! Capture files → frames: a streaming pcap and pcapng reader.
//!
//! The first stage of the pcap tap. [`CaptureReader`] wraps any [`Read`] (the caller
//! opens files; nothing here does I/O of its own) and yields [`CaptureEvent`]s one at a
//! time: frames borrowed from its buffer (zero-copy) with their link type, timestamp
//! and 1-based frame number (the number Wireshark shows, so evidence can cite it),
//! and the contents of pcapng Decryption Secrets Blocks for TLS decryption later.
//!
//! Block parsing is `pcap-parser`'s (its record and block parsers); the buffer is
//! our own [`CaptureBuffer`], whose aligned refills let a direct-I/O reader write
//! into it without a copy. This module adds what a hostile file needs on top:
//! - **Bounded memory.** The buffer starts at [`CaptureLimits::initial_buffer`] and
//!   grows only to hold one block of at most [`CaptureLimits::max_block_len`] bytes
//!   (16 MiB by default); a block claiming more is [`CaptureError::Malformed`] naming
//!   its offset, before anything is read into memory.
//! - **Truncation is not malformation.** Every block is checked to be whole in the
//!   buffer before it is parsed, so a file cut short yields every frame before the
//!   cut and then [`CaptureError::Truncated`] with the offset of the cut block, while
//!   a block whose inside contradicts its length is `Malformed`.
//! - **Lengths are not trusted.** A frame's data is never longer than its block, the
//!   captured length or the snapshot length (pcap header or pcapng interface; 0 means
//!   "no limit"): a longer claim is cut to the snapshot length and counted
//!   ([`CaptureStats::cut_to_snaplen`]), as libpcap does.
//!
//! Format coverage: pcap with µs or ns magic in either byte order (and the "modified"
//! Kuznetzov format pcap-parser knows); pcapng with any number of sections (each with
//! its own byte order; interfaces reset per section), interfaces with their own link
//! type, snapshot length, `if_tsresol` (powers of 10 and of 2) and `if_tsoffset`;
//! Enhanced, Simple and Obsolete packet blocks; Decryption Secrets Blocks. Other
//! blocks (name resolution, statistics, custom, unknown) are skipped and counted.
//!
//! Policies:
//! - A packet block naming an interface its section has not described is **skipped
//!   and counted** ([`CaptureStats::undefined_interface`]) rather than ending the read
//!   (Wireshark stops there); frame numbers count delivered frames only.
//! - A Simple Packet Block has no timestamp: it gets the last timestamp seen in the
//!   file (0 before any), so that timeouts downstream see time stand still, not jump.
//! - After an error or the end of the file, [`CaptureReader::next_event`] returns
//!   `Ok(None)`.

use std::io::{self, Read};
use std::ops::Range;

use pcap_parser::nom;
use pcap_parser::pcapng::{parse_block_be, parse_block_le, parse_sectionheaderblock, Block};
use pcap_parser::{
    parse_pcap_frame, parse_pcap_frame_be, parse_pcap_frame_modified, LegacyPcapBlock, PcapError,
};

use super::capture_buffer::CaptureBuffer;
use crate::timestamp::Timestamp;

/// Default largest block (pcap record or pcapng block) the reader accepts: 16 MiB.
pub const MAX_BLOCK_LEN: usize = 16 << 20;
/// Default initial buffer size: 256 KiB (several typical blocks per read).
pub const INITIAL_BUFFER: usize = 256 << 10;
/// Default largest number of interfaces one pcapng section may describe.
pub const MAX_INTERFACES: usize = 4096;

/// The limits of a [`CaptureReader`]; [`Default`] gives the constants above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureLimits {
    /// Largest block, in bytes, before the file is declared malformed.
    pub max_block_len: usize,
    /// Initial buffer size in bytes.
    pub initial_buffer: usize,
    /// Interfaces per pcapng section beyond which descriptions are ignored (and
    /// packets naming them skipped as undefined).
    pub max_interfaces: usize,
}

impl Default for CaptureLimits {
    fn default() -> Self {
        CaptureLimits {
            max_block_len: MAX_BLOCK_LEN,
            initial_buffer: INITIAL_BUFFER,
            max_interfaces: MAX_INTERFACES,
        }
    }
}

/// The link layer of a frame, from its DLT / LINKTYPE number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// 1: Ethernet II (VLAN tags inside).
    Ethernet,
    /// 113: Linux cooked capture v1 (16-byte header).
    LinuxSll,
    /// 276: Linux cooked capture v2 (20-byte header).
    LinuxSll2,
    /// 101 (and the DLT values 12 and 14 some systems write): raw IPv4 or IPv6.
    Raw,
    /// 228: raw IPv4 only.
    Ipv4,
    /// 229: raw IPv6 only.
    Ipv6,
    /// 0: BSD loopback, address family in host byte order.
    Null,
    /// 108: OpenBSD loopback, address family in network byte order.
    Loop,
    /// Any other link type, kept as its number.
    Other(u32),
}

impl LinkType {
    /// The link type of a DLT/LINKTYPE number.
    pub fn from_number(n: u32) -> Self {
        match n {
            1 => LinkType::Ethernet,
            113 => LinkType::LinuxSll,
            276 => LinkType::LinuxSll2,
            101 | 12 | 14 => LinkType::Raw,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            0 => LinkType::Null,
            108 => LinkType::Loop,
            other => LinkType::Other(other),
        }
    }

    /// The LINKTYPE number (`Raw` gives 101).
    pub fn number(self) -> u32 {
        match self {
            LinkType::Ethernet => 1,
            LinkType::LinuxSll => 113,
            LinkType::LinuxSll2 => 276,
            LinkType::Raw => 101,
            LinkType::Ipv4 => 228,
            LinkType::Ipv6 => 229,
            LinkType::Null => 0,
            LinkType::Loop => 108,
            LinkType::Other(n) => n,
        }
    }
}

/// One captured frame, borrowed from the reader's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// 1-based number over the whole file, like Wireshark's frame number.
    pub number: u64,
    /// Capture time in µs (finer resolutions floored).
    pub ts: Timestamp,
    /// Link layer of `data`.
    pub link: LinkType,
    /// pcapng interface index within its section (0 for pcap).
    pub interface: u32,
    /// The captured bytes (never longer than the block or the snapshot length).
    pub data: &'a [u8],
    /// Length of the packet on the wire, as the file claims it.
    pub original_len: u32,
    /// The first comment of a pcapng packet block (`opt_comment`), if any.
    pub comment: Option<&'a [u8]>,
}

/// What the reader yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureEvent<'a> {
    /// A captured frame.
    Frame(Frame<'a>),
    /// A pcapng Decryption Secrets Block (e.g. type 0x544c534b: a TLS key log).
    Secrets { secrets_type: u32, data: &'a [u8] },
    /// A pcapng Custom Block: its Private Enterprise Number, the data after it
    /// (options included: their layout is the enterprise's), the section's byte
    /// order, and whether a program writing another file may copy it (type
    /// `0x00000BAD`; `0x40000BAD` may not be copied).
    Custom {
        pen: u32,
        data: &'a [u8],
        big_endian: bool,
        copiable: bool,
    },
}

/// Counters of what the reader saw besides frames.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Frames delivered.
    pub frames: u64,
    /// Decryption Secrets Blocks delivered.
    pub secrets: u64,
    /// Custom Blocks delivered.
    pub custom: u64,
    /// pcapng sections seen.
    pub sections: u64,
    /// pcapng blocks skipped (name resolution, statistics, unknown types).
    pub skipped_blocks: u64,
    /// Packet blocks skipped because they name an undescribed interface.
    pub undefined_interface: u64,
    /// Interface descriptions ignored beyond [`CaptureLimits::max_interfaces`].
    pub ignored_interfaces: u64,
    /// Frames whose captured length exceeded the snapshot length and were cut to it.
    pub cut_to_snaplen: u64,
}

/// Why a capture could not be read (further).
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The input is neither pcap nor pcapng.
    #[error("not a pcap or pcapng file: {detail}")]
    NotACapture { detail: String },
    /// The input ends inside a block; everything before it was delivered.
    #[error(
        "capture truncated at byte offset {offset}: the {what} there needs {needed} bytes, \
         the file ends after {available}"
    )]
    Truncated {
        offset: u64,
        what: &'static str,
        needed: u64,
        available: u64,
    },
    /// A block contradicts itself or a limit.
    #[error("malformed capture at byte offset {offset}: {detail}")]
    Malformed { offset: u64, detail: String },
    /// The underlying reader failed. (In the message only, not also the `source`.)
    #[error("reading capture: {0}")]
    Io(io::Error),
}

impl From<io::Error> for CaptureError {
    fn from(e: io::Error) -> Self {
        CaptureError::Io(e)
    }
}

const SHB_BYTES: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
const BOM_LE: [u8; 4] = [0x4d, 0x3c, 0x2b, 0x1a];
const BOM_BE: [u8; 4] = [0x1a, 0x2b, 0x3c, 0x4d];
const PCAP_HEADER_LEN: usize = 24;
const OPB_TYPE: u32 = 2;
const SPB_TYPE: u32 = 3;
const IDB_TYPE: u32 = 1;
const EPB_TYPE: u32 = 6;
const DSB_TYPE: u32 = 0x0000_000a;
/// Custom Block types: copyable, and not to be copied by a rewriting tool.
const CB_TYPE: u32 = 0x0000_0bad;
const DCB_TYPE: u32 = 0x4000_0bad;
const OPT_COMMENT: u16 = 1;
const SHB_TYPE: u32 = 0x0a0d_0d0a;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;

#[derive(Debug, Clone, Copy)]
struct PcapInfo {
    big_endian: bool,
    nanos: bool,
    parse: ParseFrame,
    record_header: usize,
    link: LinkType,
    snaplen: u32,
}

#[derive(Debug, Clone, Copy)]
struct Interface {
    link: LinkType,
    snaplen: u32,
    tsresol: u8,
    tsoffset: i64,
}

/// What one block turned out to be, with ranges into the buffer (so that no borrow
/// of the buffer outlives the parse).
enum Step {
    Frame {
        ts: Timestamp,
        link: LinkType,
        interface: u32,
        original_len: u32,
        data: Range<usize>,
        comment: Option<Range<usize>>,
    },
    Secrets {
        secrets_type: u32,
        data: Range<usize>,
    },
    Custom {
        pen: u32,
        data: Range<usize>,
        big_endian: bool,
        copiable: bool,
    },
}

/// pcap-parser's parser of one pcap record, chosen by the file header.
type ParseFrame = for<'a> fn(&'a [u8]) -> PcapResult<'a, LegacyPcapBlock<'a>>;

type PcapResult<'a, T> = nom::IResult<&'a [u8], T, PcapError<&'a [u8]>>;

/// A parse error as pcap-parser's streaming readers reported it (a whole block is
/// in the buffer before it is parsed, so "incomplete" means the block's inside
/// claims more than the block).
fn parse_error(e: nom::Err<PcapError<&[u8]>>) -> PcapError<&[u8]> {
    match e {
        nom::Err::Error(e) | nom::Err::Failure(e) => e,
        nom::Err::Incomplete(_) => PcapError::Incomplete(0),
    }
}

/// Streaming reader of pcap and pcapng files (see the module documentation).
pub struct CaptureReader<R: Read> {
    buf: CaptureBuffer<R>,
    limits: CaptureLimits,
    /// Bytes of the file before the next block.
    offset: u64,
    /// Bytes of the last delivered block not yet consumed in the buffer.
    pending: usize,
    done: bool,
    number: u64,
    last_ts: Timestamp,
    pcap: Option<PcapInfo>,
    ng_big_endian: bool,
    interfaces: Vec<Interface>,
    stats: CaptureStats,
}

fn u32_at(buf: &[u8], at: usize, be: bool) -> Option<u32> {
    let b: [u8; 4] = buf.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(if be {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    })
}

fn u16_at(buf: &[u8], at: usize, be: bool) -> Option<u16> {
    let b: [u8; 2] = buf.get(at..at.checked_add(2)?)?.try_into().ok()?;
    Some(if be {
        u16::from_be_bytes(b)
    } else {
        u16::from_le_bytes(b)
    })
}

/// Reads until `buf` is full or the reader ends (retrying interruptions); returns
/// the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// µs since the epoch of a pcapng timestamp in `tsresol` units plus `tsoffset` seconds.
fn ng_micros(units: u64, tsresol: u8, tsoffset: i64) -> Timestamp {
    let units = u128::from(units);
    let us: u128 = if tsresol & 0x80 == 0 {
        let n = u32::from(tsresol);
        if n <= 6 {
            units * 10u128.pow(6 - n)
        } else if n <= 38 {
            units / 10u128.pow(n - 6)
        } else {
            0
        }
    } else {
        // units < 2^64, so units * 10^6 < 2^84 and the shift (< 128) is defined.
        (units * 1_000_000) >> u32::from(tsresol & 0x7f)
    };
    let total = i128::try_from(us).unwrap_or(i128::MAX) + i128::from(tsoffset) * 1_000_000;
    Timestamp(i64::try_from(total).unwrap_or(if total < 0 { i64::MIN } else { i64::MAX }))
}

fn describe(e: &PcapError<&[u8]>) -> String {
    match e {
        // The input of a nom error is the rest of the buffer: never print it.
        PcapError::NomError(_, kind) | PcapError::OwnedNomError(_, kind) => {
            format!("inconsistent contents ({kind:?})")
        }
        PcapError::Incomplete(_) | PcapError::UnexpectedEof | PcapError::BufferTooSmall => {
            "a field claims more bytes than the block holds".to_string()
        }
        other => other.to_string(),
    }
}

fn block_name(t: u32) -> &'static str {
    match t {
        SHB_TYPE => "section header block",
        IDB_TYPE => "interface description block",
        EPB_TYPE => "enhanced packet block",
        SPB_TYPE => "simple packet block",
        OPB_TYPE => "packet block",
        DSB_TYPE => "decryption secrets block",
        CB_TYPE | DCB_TYPE => "custom block",
        _ => "block",
    }
}

/// Whether the reader reads `block`, one whole pcapng block of a section of that byte
/// order (its length and trailing length already agree), without a
/// [`CaptureError::Malformed`]: the checks [`CaptureReader`] makes of a block's
/// contents, for a writer that joins blocks from elsewhere into a stream the reader
/// gets (PCAPdroid's UDP export), where one bad block would end the whole stream.
/// A test checks it against the reader.
pub fn check_pcapng_block(block: &[u8], big_endian: bool) -> Result<(), String> {
    let btype = if block.get(..4) == Some(&SHB_BYTES[..]) {
        SHB_TYPE
    } else {
        u32_at(block, 0, big_endian).unwrap_or(0)
    };
    let blen = block.len();
    match btype {
        SHB_TYPE | IDB_TYPE | EPB_TYPE | SPB_TYPE | DSB_TYPE => {
            let parse = if big_endian {
                parse_block_be
            } else {
                parse_block_le
            };
            match parse(block) {
                Ok(([], _)) => Ok(()),
                Ok((rest, _)) => Err(format!(
                    "{} of {blen} bytes parsed as {} bytes",
                    block_name(btype),
                    blen - rest.len()
                )),
                Err(e) => Err(format!(
                    "{}: {}",
                    block_name(btype),
                    describe(&parse_error(e))
                )),
            }
        }
        OPB_TYPE => {
            let caplen = u32_at(block, 20, big_endian).map(|c| c as usize);
            match caplen {
                Some(c) if blen >= 32 && c <= blen - 32 => Ok(()),
                _ => Err(format!(
                    "packet block of {blen} bytes is too short for its data"
                )),
            }
        }
        CB_TYPE | DCB_TYPE if blen < 16 => Err(format!(
            "custom block of {blen} bytes has no room for its enterprise number"
        )),
        _ => Ok(()),
    }
}

impl<R: Read> CaptureReader<R> {
    /// A reader with the default [`CaptureLimits`]; fails when the input is neither
    /// pcap nor pcapng, or its file header is cut short.
    pub fn new(reader: R) -> Result<Self, CaptureError> {
        Self::with_limits(reader, CaptureLimits::default())
    }

    /// A reader with explicit limits.
    pub fn with_limits(reader: R, limits: CaptureLimits) -> Result<Self, CaptureError> {
        Self::with_storage(reader, limits, Vec::new())
    }

    /// [`with_limits`](Self::with_limits), its buffer in the memory of `storage`:
    /// what [`into_storage`](Self::into_storage) of the reader of another file gave
    /// back. Only bytes it lacks are allocated and zeroed.
    pub fn with_storage(
        reader: R,
        limits: CaptureLimits,
        storage: Vec<u8>,
    ) -> Result<Self, CaptureError> {
        let mut src = reader;
        let mut prefix = vec![0u8; 12];
        let got = read_full(&mut src, &mut prefix)?;
        prefix.truncate(got);
        let truncated = |needed: usize, available: usize, what| CaptureError::Truncated {
            offset: 0,
            what,
            needed: needed as u64,
            available: available as u64,
        };
        let pcap_magic = |m: &[u8]| -> Option<(bool, bool, bool)> {
            // (big endian, nanoseconds, modified format)
            match m {
                [0xd4, 0xc3, 0xb2, 0xa1] => Some((false, false, false)),
                [0xa1, 0xb2, 0xc3, 0xd4] => Some((true, false, false)),
                [0x4d, 0x3c, 0xb2, 0xa1] => Some((false, true, false)),
                [0xa1, 0xb2, 0x3c, 0x4d] => Some((true, true, false)),
                [0x34, 0xcd, 0xb2, 0xa1] => Some((false, false, true)),
                _ => None,
            }
        };
        if got < 4 {
            let known: [&[u8]; 6] = [
                &SHB_BYTES,
                &[0xd4, 0xc3, 0xb2, 0xa1],
                &[0xa1, 0xb2, 0xc3, 0xd4],
                &[0x4d, 0x3c, 0xb2, 0xa1],
                &[0xa1, 0xb2, 0x3c, 0x4d],
                &[0x34, 0xcd, 0xb2, 0xa1],
            ];
            if got > 0 && known.iter().any(|m| m.starts_with(&prefix)) {
                return Err(truncated(4, got, "file header"));
            }
            return Err(CaptureError::NotACapture {
                detail: if got == 0 {
                    "the input is empty".into()
                } else {
                    format!("it is only {got} bytes long")
                },
            });
        }
        let capacity;
        // The bytes read past the file header, for the buffer.
        let head;
        let mut pcap = None;
        let mut ng_big_endian = false;
        if let Some((big_endian, nanos, modified)) = pcap_magic(&prefix[..4]) {
            prefix.resize(PCAP_HEADER_LEN, 0);
            let more = read_full(&mut src, &mut prefix[got.min(PCAP_HEADER_LEN)..])?;
            let have = got.min(PCAP_HEADER_LEN) + more;
            if have < PCAP_HEADER_LEN {
                return Err(truncated(PCAP_HEADER_LEN, have, "pcap file header"));
            }
            let snaplen = u32_at(&prefix, 16, big_endian).unwrap_or(0);
            // The upper bits carry FCS information (LT_FCS_DATALINK_EXT).
            let network = u32_at(&prefix, 20, big_endian).unwrap_or(0) & 0x03ff_ffff;
            pcap = Some(PcapInfo {
                big_endian,
                nanos,
                // As pcap-parser's streaming reader chose.
                parse: if modified {
                    parse_pcap_frame_modified
                } else if big_endian {
                    parse_pcap_frame_be
                } else {
                    parse_pcap_frame
                },
                record_header: if modified { 24 } else { 16 },
                link: LinkType::from_number(network),
                snaplen,
            });
            capacity = limits.initial_buffer.max(64);
            head = Vec::new();
        } else if prefix[..4] == SHB_BYTES {
            if got < 12 {
                return Err(truncated(12, got, "section header block"));
            }
            let big_endian = match prefix[8..12] {
                [a, b, c, d] if [a, b, c, d] == BOM_LE => false,
                [a, b, c, d] if [a, b, c, d] == BOM_BE => true,
                _ => {
                    return Err(CaptureError::NotACapture {
                        detail: "pcapng section header without a byte-order magic".into(),
                    })
                }
            };
            ng_big_endian = big_endian;
            let len = u32_at(&prefix, 4, big_endian).unwrap_or(0) as usize;
            if len < 28 || !len.is_multiple_of(4) || len > limits.max_block_len {
                return Err(CaptureError::Malformed {
                    offset: 0,
                    detail: format!("section header block claims {len} bytes"),
                });
            }
            prefix.resize(len, 0);
            let more = read_full(&mut src, &mut prefix[12..])?;
            if 12 + more < len {
                return Err(truncated(len, 12 + more, "section header block"));
            }
            if let Err(e) = parse_sectionheaderblock(&prefix) {
                return Err(CaptureError::Malformed {
                    offset: 0,
                    detail: describe(&parse_error(e)),
                });
            }
            capacity = limits.initial_buffer.max(len).max(64);
            // The section header is parsed again as the first block.
            head = prefix;
        } else {
            return Err(CaptureError::NotACapture {
                detail: format!(
                    "it starts with {:02x} {:02x} {:02x} {:02x}",
                    prefix[0], prefix[1], prefix[2], prefix[3]
                ),
            });
        }
        let reader = CaptureReader {
            buf: CaptureBuffer::with_storage(src, capacity, &head, storage),
            limits,
            offset: if pcap.is_some() {
                PCAP_HEADER_LEN as u64
            } else {
                0
            },
            pending: 0,
            done: false,
            number: 0,
            last_ts: Timestamp(0),
            pcap,
            ng_big_endian,
            interfaces: Vec::new(),
            stats: CaptureStats::default(),
        };
        Ok(reader)
    }

    /// The buffer's memory, to read another file in ([`with_storage`](Self::with_storage)).
    pub fn into_storage(self) -> Vec<u8> {
        self.buf.into_storage()
    }

    /// "pcap" or "pcapng".
    pub fn format(&self) -> &'static str {
        if self.pcap.is_some() {
            "pcap"
        } else {
            "pcapng"
        }
    }

    /// Bytes of the file consumed so far (up to the end of the last event).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Current buffer size in bytes (never above `max_block_len` + 32 once grown).
    pub fn buffer_capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Counters of skipped and adjusted blocks.
    pub fn stats(&self) -> &CaptureStats {
        &self.stats
    }

    /// The frame `step` describes, numbered `number`; `None` when it is no frame or
    /// its ranges lie outside the buffer.
    fn frame_of(&self, number: u64, step: &Step) -> Option<Frame<'_>> {
        let Step::Frame {
            ts,
            link,
            interface,
            original_len,
            data,
            comment,
        } = step
        else {
            return None;
        };
        let buf = self.buf.data();
        let comment = match comment {
            Some(c) => Some(buf.get(c.clone())?),
            None => None,
        };
        Some(Frame {
            number,
            ts: *ts,
            link: *link,
            interface: *interface,
            data: buf.get(data.clone())?,
            original_len: *original_len,
            comment,
        })
    }

    /// The next frame or secrets block; `Ok(None)` at the end of the file (and after
    /// an error).
    pub fn next_event(&mut self) -> Result<Option<CaptureEvent<'_>>, CaptureError> {
        self.next_event_where(|_| true)
    }

    /// [`CaptureReader::next_event`], passing over the frames `keep` refuses (they
    /// are numbered and counted all the same): a capture filter, without the borrow of
    /// a refused frame outliving the reading of the next.
    ///
    /// An input that has nothing yet may say so with [`io::ErrorKind::WouldBlock`]
    /// (a live stream read with a timeout): that error comes back as
    /// [`CaptureError::Io`] without ending the reading, and the next call carries on
    /// where it stopped (no block is taken before all of it is in the buffer).
    pub fn next_event_where(
        &mut self,
        mut keep: impl FnMut(&Frame<'_>) -> bool,
    ) -> Result<Option<CaptureEvent<'_>>, CaptureError> {
        let step = loop {
            if self.done {
                return Ok(None);
            }
            let step = match self.advance() {
                Ok(Some(step)) => step,
                Ok(None) => {
                    self.done = true;
                    return Ok(None);
                }
                Err(CaptureError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(CaptureError::Io(e));
                }
                Err(e) => {
                    self.done = true;
                    return Err(e);
                }
            };
            let refused = self
                .frame_of(self.number + 1, &step)
                .is_some_and(|f| !keep(&f));
            if !refused {
                break step;
            }
            self.number += 1;
            self.stats.frames += 1;
        };
        let offset = self.offset;
        let malformed = || CaptureError::Malformed {
            offset,
            detail: "packet data outside its block".into(),
        };
        Ok(Some(match step {
            step @ Step::Frame { .. } => {
                self.number += 1;
                self.stats.frames += 1;
                // Checked apart from the frame returned: a borrow that is returned
                // cannot end early for `done` to be set.
                if self.frame_of(self.number, &step).is_none() {
                    self.done = true;
                    return Err(malformed());
                }
                let frame = self.frame_of(self.number, &step);
                CaptureEvent::Frame(frame.ok_or_else(malformed)?)
            }
            Step::Secrets { secrets_type, data } => {
                self.stats.secrets += 1;
                let Some(data) = self.buf.data().get(data) else {
                    self.done = true;
                    return Err(malformed());
                };
                CaptureEvent::Secrets { secrets_type, data }
            }
            Step::Custom {
                pen,
                data,
                big_endian,
                copiable,
            } => {
                self.stats.custom += 1;
                let Some(data) = self.buf.data().get(data) else {
                    self.done = true;
                    return Err(malformed());
                };
                CaptureEvent::Custom {
                    pen,
                    data,
                    big_endian,
                    copiable,
                }
            }
        }))
    }

    /// Makes at least `n` bytes available at the start of the buffer unless the input
    /// ends first; returns how many are available. `n` must be within the limits.
    fn fill(&mut self, n: usize) -> Result<usize, CaptureError> {
        let max_total = self.max_total();
        loop {
            let avail = self.buf.data().len();
            if avail >= n || self.buf.exhausted() {
                return Ok(avail);
            }
            let capacity = self.buf.capacity();
            if capacity < n {
                let cap = n.max(capacity.saturating_mul(2)).min(max_total);
                self.buf.grow(cap.max(n));
            }
            self.buf.refill()?;
        }
    }

    /// The largest buffer ever needed: one maximal block with its record header.
    fn max_total(&self) -> usize {
        self.limits.max_block_len.saturating_add(32)
    }

    fn truncated(&self, what: &'static str, needed: usize, available: usize) -> CaptureError {
        CaptureError::Truncated {
            offset: self.offset,
            what,
            needed: needed as u64,
            available: available as u64,
        }
    }

    fn malformed(&self, detail: String) -> CaptureError {
        CaptureError::Malformed {
            offset: self.offset,
            detail,
        }
    }

    /// Finds the next frame or secrets block, consuming the blocks before it.
    fn advance(&mut self) -> Result<Option<Step>, CaptureError> {
        if self.pending > 0 {
            // Already counted in `offset` when delivered.
            let n = std::mem::take(&mut self.pending);
            // `refill` moves the few unread bytes left when the buffer runs dry.
            self.buf.consume(n);
        }
        match self.pcap {
            Some(info) => self.advance_pcap(info),
            None => self.advance_ng(),
        }
    }

    fn advance_pcap(&mut self, info: PcapInfo) -> Result<Option<Step>, CaptureError> {
        let hdr = info.record_header;
        let avail = self.fill(hdr)?;
        if avail == 0 {
            return Ok(None);
        }
        if avail < hdr {
            return Err(self.truncated("packet record header", hdr, avail));
        }
        let caplen = u32_at(self.buf.data(), 8, info.big_endian).unwrap_or(0) as usize;
        if caplen > self.limits.max_block_len {
            return Err(self.malformed(format!(
                "packet record claims {caplen} captured bytes, more than the limit of {}",
                self.limits.max_block_len
            )));
        }
        let total = hdr + caplen;
        let avail = self.fill(total)?;
        if avail < total {
            return Err(self.truncated("packet record", total, avail));
        }
        let base = self.buf.data().as_ptr() as usize;
        let data = self.buf.data();
        let (consumed, ts_sec, ts_frac, origlen, start, len) = match (info.parse)(data) {
            Ok((rest, b)) => (
                data.len() - rest.len(),
                b.ts_sec,
                b.ts_usec,
                b.origlen,
                (b.data.as_ptr() as usize).wrapping_sub(base),
                b.data.len(),
            ),
            Err(e) => {
                let d = describe(&parse_error(e));
                return Err(self.malformed(format!("packet record: {d}")));
            }
        };
        let frac = if info.nanos { ts_frac / 1000 } else { ts_frac };
        let ts = Timestamp(i64::from(ts_sec) * 1_000_000 + i64::from(frac));
        let len = self.cut_to_snaplen(len, caplen, info.snaplen);
        self.last_ts = ts;
        self.deliver(consumed);
        Ok(Some(Step::Frame {
            ts,
            link: info.link,
            interface: 0,
            original_len: origlen,
            data: start..start.saturating_add(len),
            comment: None,
        }))
    }

    /// Counts a delivered block in `offset()` at once; its bytes are consumed in
    /// the buffer only at the next call, while the event borrows them.
    fn deliver(&mut self, n: usize) {
        self.pending = n;
        self.offset += n as u64;
    }

    /// The length of a frame's data: `len` bytes present, `caplen` claimed, cut to a
    /// nonzero snapshot length.
    fn cut_to_snaplen(&mut self, len: usize, caplen: usize, snaplen: u32) -> usize {
        let len = len.min(caplen);
        let snap = snaplen as usize;
        if snap != 0 && len > snap {
            self.stats.cut_to_snaplen += 1;
            snap
        } else {
            len
        }
    }

    fn advance_ng(&mut self) -> Result<Option<Step>, CaptureError> {
        loop {
            let avail = self.fill(12)?;
            if avail == 0 {
                return Ok(None);
            }
            if avail < 12 {
                return Err(self.truncated("block header", 12, avail));
            }
            let head = self.buf.data();
            let is_shb = head.get(..4) == Some(&SHB_BYTES[..]);
            let be = if is_shb {
                match head.get(8..12) {
                    Some(b) if b == BOM_LE => false,
                    Some(b) if b == BOM_BE => true,
                    _ => {
                        return Err(
                            self.malformed("section header without a byte-order magic".into())
                        )
                    }
                }
            } else {
                self.ng_big_endian
            };
            let btype = if is_shb {
                SHB_TYPE
            } else {
                u32_at(head, 0, be).unwrap_or(0)
            };
            let blen = u32_at(head, 4, be).unwrap_or(0) as usize;
            let min = if is_shb { 28 } else { 12 };
            if blen < min || !blen.is_multiple_of(4) {
                return Err(self.malformed(format!(
                    "{} (type {btype:#x}) has an invalid length of {blen} bytes",
                    block_name(btype)
                )));
            }
            if blen > self.limits.max_block_len {
                return Err(self.malformed(format!(
                    "{} (type {btype:#x}) claims {blen} bytes, more than the limit of {}",
                    block_name(btype),
                    self.limits.max_block_len
                )));
            }
            let avail = self.fill(blen)?;
            if avail < blen {
                return Err(self.truncated(block_name(btype), blen, avail));
            }
            if u32_at(self.buf.data(), blen - 4, be) != Some(blen as u32) {
                return Err(self.malformed(format!(
                    "{} of {blen} bytes ends with a different length",
                    block_name(btype)
                )));
            }
            match btype {
                SHB_TYPE | IDB_TYPE | EPB_TYPE | SPB_TYPE | DSB_TYPE => {
                    if let Some(step) = self.parse_ng_block(btype, blen, be)? {
                        return Ok(Some(step));
                    }
                }
                OPB_TYPE => {
                    if let Some(step) = self.parse_opb(blen, be)? {
                        return Ok(Some(step));
                    }
                }
                CB_TYPE | DCB_TYPE => {
                    return self.custom_block(blen, be, btype == CB_TYPE).map(Some)
                }
                _ => {
                    self.stats.skipped_blocks += 1;
                    self.skip(blen);
                }
            }
        }
    }

    fn skip(&mut self, n: usize) {
        self.buf.consume(n);
        self.offset += n as u64;
    }

    fn interface(&mut self, id: u32) -> Option<Interface> {
        let found = self.interfaces.get(id as usize).copied();
        if found.is_none() {
            self.stats.undefined_interface += 1;
        }
        found
    }

    /// A whole block of a type pcap-parser knows, parsed by it.
    fn parse_ng_block(
        &mut self,
        btype: u32,
        blen: usize,
        be: bool,
    ) -> Result<Option<Step>, CaptureError> {
        enum Parsed {
            Section(bool),
            Interface(Interface),
            Packet {
                if_id: u32,
                units: u64,
                caplen: usize,
                origlen: u32,
                start: usize,
                len: usize,
                comment: Option<Range<usize>>,
            },
            Simple {
                origlen: u32,
                start: usize,
                len: usize,
            },
            Secrets {
                secrets_type: u32,
                start: usize,
                len: usize,
            },
        }
        let base = self.buf.data().as_ptr() as usize;
        let pos = |p: *const u8| (p as usize).wrapping_sub(base);
        let data = self.buf.data();
        let parse = if be { parse_block_be } else { parse_block_le };
        let parsed = match parse(data).map(|(rest, block)| (data.len() - rest.len(), block)) {
            Ok((n, block)) if n == blen => match block {
                Block::SectionHeader(shb) => Parsed::Section(shb.big_endian()),
                Block::InterfaceDescription(idb) => {
                    let mut tsresol = 6;
                    let mut tsoffset = 0;
                    for opt in &idb.options {
                        match opt.code.0 {
                            OPT_IF_TSRESOL => {
                                if let Some(&v) = opt.value.first() {
                                    tsresol = v;
                                }
                            }
                            OPT_IF_TSOFFSET => {
                                // pcap-parser reads this one little-endian whatever the
                                // section's byte order: read it ourselves.
                                if let Some(b) = opt.value.get(..8) {
                                    let b: [u8; 8] = b.try_into().unwrap_or([0; 8]);
                                    tsoffset = if be {
                                        i64::from_be_bytes(b)
                                    } else {
                                        i64::from_le_bytes(b)
                                    };
                                }
                            }
                            _ => {}
                        }
                    }
                    Parsed::Interface(Interface {
                        link: LinkType::from_number(idb.linktype.0 as u32 & 0xffff),
                        snaplen: idb.snaplen,
                        tsresol,
                        tsoffset,
                    })
                }
                Block::EnhancedPacket(epb) => Parsed::Packet {
                    if_id: epb.if_id,
                    units: (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low),
                    caplen: epb.caplen as usize,
                    origlen: epb.origlen,
                    start: pos(epb.data.as_ptr()),
                    len: epb.data.len(),
                    comment: epb
                        .options
                        .iter()
                        .find(|o| o.code.0 == OPT_COMMENT)
                        .and_then(|o| o.as_bytes().ok())
                        .map(|c| pos(c.as_ptr())..pos(c.as_ptr()).saturating_add(c.len())),
                },
                Block::SimplePacket(spb) => Parsed::Simple {
                    origlen: spb.origlen,
                    start: pos(spb.data.as_ptr()),
                    len: spb.data.len(),
                },
                Block::DecryptionSecrets(dsb) => Parsed::Secrets {
                    secrets_type: dsb.secrets_type.0,
                    start: pos(dsb.data.as_ptr()),
                    len: dsb.data.len().min(dsb.secrets_len as usize),
                },
                _ => {
                    return Err(self.malformed(format!(
                        "{} parsed as another block type",
                        block_name(btype)
                    )))
                }
            },
            Ok((n, _)) => {
                return Err(self.malformed(format!(
                    "{} of {blen} bytes parsed as {n} bytes",
                    block_name(btype)
                )))
            }
            Err(e) => {
                let d = describe(&parse_error(e));
                return Err(self.malformed(format!("{}: {d}", block_name(btype))));
            }
        };
        match parsed {
            Parsed::Section(big_endian) => {
                self.ng_big_endian = big_endian;
                self.interfaces.clear();
                self.stats.sections += 1;
                self.skip(blen);
                Ok(None)
            }
            Parsed::Interface(iface) => {
                if self.interfaces.len() < self.limits.max_interfaces {
                    self.interfaces.push(iface);
                } else {
                    self.stats.ignored_interfaces += 1;
                }
                self.skip(blen);
                Ok(None)
            }
            Parsed::Packet {
                if_id,
                units,
                caplen,
                origlen,
                start,
                len,
                comment,
            } => {
                let Some(iface) = self.interface(if_id) else {
                    self.skip(blen);
                    return Ok(None);
                };
                let ts = ng_micros(units, iface.tsresol, iface.tsoffset);
                let len = self.cut_to_snaplen(len, caplen, iface.snaplen);
                self.last_ts = ts;
                self.deliver(blen);
                Ok(Some(Step::Frame {
                    ts,
                    link: iface.link,
                    interface: if_id,
                    original_len: origlen,
                    data: start..start.saturating_add(len),
                    comment,
                }))
            }
            Parsed::Simple {
                origlen,
                start,
                len,
            } => {
                let Some(iface) = self.interface(0) else {
                    self.skip(blen);
                    return Ok(None);
                };
                let len = self.cut_to_snaplen(len, origlen as usize, iface.snaplen);
                self.deliver(blen);
                Ok(Some(Step::Frame {
                    ts: self.last_ts,
                    link: iface.link,
                    interface: 0,
                    original_len: origlen,
                    data: start..start.saturating_add(len),
                    comment: None,
                }))
            }
            Parsed::Secrets {
                secrets_type,
                start,
                len,
            } => {
                self.deliver(blen);
                Ok(Some(Step::Secrets {
                    secrets_type,
                    data: start..start.saturating_add(len),
                }))
            }
        }
    }

    /// A Custom Block: type, length, Private Enterprise Number, data, length.
    fn custom_block(
        &mut self,
        blen: usize,
        be: bool,
        copiable: bool,
    ) -> Result<Step, CaptureError> {
        let Some(pen) = u32_at(self.buf.data(), 8, be).filter(|_| blen >= 16) else {
            return Err(self.malformed(format!(
                "custom block of {blen} bytes has no room for its enterprise number"
            )));
        };
        self.deliver(blen);
        Ok(Step::Custom {
            pen,
            data: 12..blen - 4,
            big_endian: be,
            copiable,
        })
    }

    /// An Obsolete Packet Block (type 2), which pcap-parser does not know: interface
    /// (u16), drops (u16), timestamp high and low, captured and original length, data.
    fn parse_opb(&mut self, blen: usize, be: bool) -> Result<Option<Step>, CaptureError> {
        let b = self.buf.data();
        let (Some(if_id), Some(hi), Some(lo), Some(caplen), Some(origlen)) = (
            u16_at(b, 8, be),
            u32_at(b, 12, be),
            u32_at(b, 16, be),
            u32_at(b, 20, be),
            u32_at(b, 24, be),
        ) else {
            return Err(self.malformed(format!("packet block of {blen} bytes is too short")));
        };
        let room = blen.saturating_sub(32);
        let caplen = caplen as usize;
        if blen < 32 || caplen > room {
            return Err(self.malformed(format!(
                "packet block claims {caplen} captured bytes in a block of {blen}"
            )));
        }
        let Some(iface) = self.interface(u32::from(if_id)) else {
            self.skip(blen);
            return Ok(None);
        };
        let ts = ng_micros(
            (u64::from(hi) << 32) | u64::from(lo),
            iface.tsresol,
            iface.tsoffset,
        );
        let len = self.cut_to_snaplen(caplen, caplen, iface.snaplen);
        self.last_ts = ts;
        self.deliver(blen);
        Ok(Some(Step::Frame {
            ts,
            link: iface.link,
            interface: u32::from(if_id),
            original_len: origlen,
            data: 28..28 + len,
            comment: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little-endian pcapng block of `btype` around `body` (padded to 32 bits).
    fn le_block(btype: u32, body: &[u8]) -> Vec<u8> {
        let len = 12 + body.len().div_ceil(4) * 4;
        let mut b = Vec::with_capacity(len);
        b.extend_from_slice(&btype.to_le_bytes());
        b.extend_from_slice(&(len as u32).to_le_bytes());
        b.extend_from_slice(body);
        b.resize(len - 4, 0);
        b.extend_from_slice(&(len as u32).to_le_bytes());
        b
    }

    proptest::proptest! {
        /// `check_pcapng_block` accepts a block exactly when the reader, given it
        /// after a section header and an interface, reads on without a malformed
        /// error.
        #[test]
        fn the_block_check_agrees_with_the_reader(
            kind in 0usize..9,
            mut body in proptest::collection::vec(proptest::num::u8::ANY, 0..80),
            fit in proptest::bool::ANY,
            at in 0usize..24,
        ) {
            const TYPES: [u32; 9] = [1, 2, 3, 5, 6, 0xa, 0xbad, 0x4000_0bad, 0x77];
            let btype = TYPES[kind];
            // Half the time a length field that fits, so the accepting paths are met.
            if fit && body.len() >= at + 4 {
                let room = (body.len().saturating_sub(at + 4)) as u32;
                body[at..at + 4].copy_from_slice(&(room / 2).to_le_bytes());
            }
            let block = le_block(btype, &body);
            let mut file = le_block(SHB_TYPE, &[0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
            file.extend(le_block(IDB_TYPE, &[101, 0, 0, 0, 0, 0, 0, 0]));
            file.extend_from_slice(&block);
            let mut reader = CaptureReader::new(&file[..]).unwrap();
            let malformed = loop {
                match reader.next_event() {
                    Ok(Some(_)) => {}
                    Ok(None) => break false,
                    Err(CaptureError::Malformed { .. }) => break true,
                    Err(e) => panic!("{e}"),
                }
            };
            proptest::prop_assert_eq!(
                check_pcapng_block(&block, false).is_ok(),
                !malformed,
                "{:?}",
                check_pcapng_block(&block, false)
            );
        }
    }

    /// A pcap file: (ts_sec, ts_frac, data) records.
    fn pcap(
        big_endian: bool,
        nanos: bool,
        snaplen: u32,
        link: u32,
        recs: &[(u32, u32, &[u8])],
    ) -> Vec<u8> {
        let w32 = |v: &mut Vec<u8>, x: u32| {
            v.extend_from_slice(&if big_endian {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            })
        };
        let w16 = |v: &mut Vec<u8>, x: u16| {
            v.extend_from_slice(&if big_endian {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            })
        };
        let mut v = Vec::new();
        w32(&mut v, if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 });
        w16(&mut v, 2);
        w16(&mut v, 4);
        w32(&mut v, 0);
        w32(&mut v, 0);
        w32(&mut v, snaplen);
        w32(&mut v, link);
        for (sec, frac, data) in recs {
            w32(&mut v, *sec);
            w32(&mut v, *frac);
            w32(&mut v, data.len() as u32);
            w32(&mut v, data.len() as u32 + 4);
            v.extend_from_slice(data);
        }
        v
    }

    /// pcapng blocks written in one byte order.
    struct Ng {
        be: bool,
        out: Vec<u8>,
    }

    impl Ng {
        fn u32(&self, x: u32) -> [u8; 4] {
            if self.be {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            }
        }
        fn u16(&self, x: u16) -> [u8; 2] {
            if self.be {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            }
        }
        fn block(&mut self, btype: u32, body: &[u8]) -> &mut Self {
            let mut body = body.to_vec();
            while !body.len().is_multiple_of(4) {
                body.push(0);
            }
            let len = 12 + body.len() as u32;
            let t = if btype == SHB_TYPE {
                SHB_BYTES
            } else {
                self.u32(btype)
            };
            self.out.extend_from_slice(&t);
            self.out.extend_from_slice(&self.u32(len));
            self.out.extend_from_slice(&body);
            self.out.extend_from_slice(&self.u32(len));
            self
        }
        fn shb(&mut self) -> &mut Self {
            let mut b = vec![];
            b.extend_from_slice(&self.u32(0x1a2b_3c4d));
            b.extend_from_slice(&self.u16(1));
            b.extend_from_slice(&self.u16(0));
            b.extend_from_slice(&[0xff; 8]);
            self.block(SHB_TYPE, &b)
        }
        /// An IDB with optional if_tsresol and if_tsoffset.
        fn idb(
            &mut self,
            link: u16,
            snaplen: u32,
            tsresol: Option<u8>,
            tsoffset: Option<i64>,
        ) -> &mut Self {
            let mut b = vec![];
            b.extend_from_slice(&self.u16(link));
            b.extend_from_slice(&[0, 0]);
            b.extend_from_slice(&self.u32(snaplen));
            if let Some(r) = tsresol {
                b.extend_from_slice(&self.u16(OPT_IF_TSRESOL));
                b.extend_from_slice(&self.u16(1));
                b.extend_from_slice(&[r, 0, 0, 0]);
            }
            if let Some(o) = tsoffset {
                b.extend_from_slice(&self.u16(OPT_IF_TSOFFSET));
                b.extend_from_slice(&self.u16(8));
                b.extend_from_slice(&if self.be {
                    o.to_be_bytes()
                } else {
                    o.to_le_bytes()
                });
            }
            if tsresol.is_some() || tsoffset.is_some() {
                b.extend_from_slice(&[0, 0, 0, 0]); // opt_endofopt
            }
            self.block(IDB_TYPE, &b)
        }
        fn epb(&mut self, iface: u32, ts: u64, data: &[u8]) -> &mut Self {
            self.epb_with_options(iface, ts, data, &[])
        }
        /// An EPB with options (code, value), each padded to 4 bytes, and an end.
        fn epb_with_options(
            &mut self,
            iface: u32,
            ts: u64,
            data: &[u8],
            options: &[(u16, &[u8])],
        ) -> &mut Self {
            let mut b = vec![];
            b.extend_from_slice(&self.u32(iface));
            b.extend_from_slice(&self.u32((ts >> 32) as u32));
            b.extend_from_slice(&self.u32(ts as u32));
            b.extend_from_slice(&self.u32(data.len() as u32));
            b.extend_from_slice(&self.u32(data.len() as u32));
            b.extend_from_slice(data);
            if !options.is_empty() {
                while b.len() % 4 != 0 {
                    b.push(0);
                }
                for (code, value) in options {
                    b.extend_from_slice(&self.u16(*code));
                    b.extend_from_slice(&self.u16(value.len() as u16));
                    b.extend_from_slice(value);
                    while b.len() % 4 != 0 {
                        b.push(0);
                    }
                }
                b.extend_from_slice(&[0, 0, 0, 0]);
            }
            self.block(EPB_TYPE, &b)
        }
        fn custom(&mut self, btype: u32, pen: u32, data: &[u8]) -> &mut Self {
            let mut b = self.u32(pen).to_vec();
            b.extend_from_slice(data);
            self.block(btype, &b)
        }
        fn spb(&mut self, origlen: u32, data: &[u8]) -> &mut Self {
            let mut b = self.u32(origlen).to_vec();
            b.extend_from_slice(data);
            self.block(SPB_TYPE, &b)
        }
        fn opb(&mut self, iface: u16, ts: u64, data: &[u8]) -> &mut Self {
            let mut b = vec![];
            b.extend_from_slice(&self.u16(iface));
            b.extend_from_slice(&self.u16(0));
            b.extend_from_slice(&self.u32((ts >> 32) as u32));
            b.extend_from_slice(&self.u32(ts as u32));
            b.extend_from_slice(&self.u32(data.len() as u32));
            b.extend_from_slice(&self.u32(data.len() as u32));
            b.extend_from_slice(data);
            self.block(OPB_TYPE, &b)
        }
        fn dsb(&mut self, stype: u32, data: &[u8]) -> &mut Self {
            let mut b = self.u32(stype).to_vec();
            b.extend_from_slice(&self.u32(data.len() as u32));
            b.extend_from_slice(data);
            self.block(DSB_TYPE, &b)
        }
    }

    fn ng(be: bool) -> Ng {
        Ng {
            be,
            out: Vec::new(),
        }
    }

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Ev {
        F {
            number: u64,
            ts: i64,
            link: LinkType,
            interface: u32,
            data: Vec<u8>,
            orig: u32,
        },
        S(u32, Vec<u8>),
        /// The comment of the frame before.
        Comment(Vec<u8>),
        C {
            pen: u32,
            data: Vec<u8>,
            be: bool,
            copy: bool,
        },
    }

    fn read_all_from<R: Read>(r: R) -> (Vec<Ev>, Result<(), CaptureError>) {
        // A tiny initial buffer exercises growth (and keeps debug tests fast).
        let limits = CaptureLimits {
            initial_buffer: 64,
            ..CaptureLimits::default()
        };
        let mut reader = match CaptureReader::with_limits(r, limits) {
            Ok(r) => r,
            Err(e) => return (Vec::new(), Err(e)),
        };
        let mut evs = Vec::new();
        loop {
            match reader.next_event() {
                Ok(Some(CaptureEvent::Frame(f))) => {
                    evs.push(Ev::F {
                        number: f.number,
                        ts: f.ts.0,
                        link: f.link,
                        interface: f.interface,
                        data: f.data.to_vec(),
                        orig: f.original_len,
                    });
                    if let Some(c) = f.comment {
                        evs.push(Ev::Comment(c.to_vec()));
                    }
                }
                Ok(Some(CaptureEvent::Custom {
                    pen,
                    data,
                    big_endian,
                    copiable,
                })) => evs.push(Ev::C {
                    pen,
                    data: data.to_vec(),
                    be: big_endian,
                    copy: copiable,
                }),
                Ok(Some(CaptureEvent::Secrets { secrets_type, data })) => {
                    evs.push(Ev::S(secrets_type, data.to_vec()))
                }
                Ok(None) => {
                    // Fused after the end.
                    assert!(matches!(reader.next_event(), Ok(None)));
                    return (evs, Ok(()));
                }
                // Nothing yet: the reading carries on at the next call.
                Err(CaptureError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    assert!(matches!(reader.next_event(), Ok(None)));
                    return (evs, Err(e));
                }
            }
        }
    }

    fn read_all(bytes: &[u8]) -> (Vec<Ev>, Result<(), CaptureError>) {
        read_all_from(bytes)
    }

    /// A reader handing out at most `n` bytes per call.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn frames(evs: &[Ev]) -> Vec<(u64, i64, Vec<u8>)> {
        evs.iter()
            .filter_map(|e| match e {
                Ev::F {
                    number, ts, data, ..
                } => Some((*number, *ts, data.clone())),
                Ev::S(..) | Ev::Comment(_) | Ev::C { .. } => None,
            })
            .collect()
    }

    #[test]
    fn pcap_all_magics_and_byte_orders() {
        for be in [false, true] {
            for nanos in [false, true] {
                let frac = if nanos { 123_456_789 } else { 123_456 };
                let f = pcap(
                    be,
                    nanos,
                    65535,
                    1,
                    &[(1_700_000_000, frac, b"abc"), (1_700_000_001, 0, b"")],
                );
                let (evs, end) = read_all(&f);
                end.unwrap();
                assert_eq!(
                    evs[0],
                    Ev::F {
                        number: 1,
                        ts: 1_700_000_000_123_456,
                        link: LinkType::Ethernet,
                        interface: 0,
                        data: b"abc".to_vec(),
                        orig: 7
                    },
                    "be={be} nanos={nanos}"
                );
                assert_eq!(frames(&evs)[1], (2, 1_700_000_001_000_000, vec![]));
                let r = CaptureReader::new(&f[..]).unwrap();
                assert_eq!(r.format(), "pcap");
            }
        }
    }

    #[test]
    fn pcap_link_types_and_fcs_bits() {
        for (n, lt) in [
            (113, LinkType::LinuxSll),
            (276, LinkType::LinuxSll2),
            (101, LinkType::Raw),
            (12, LinkType::Raw),
            (14, LinkType::Raw),
            (228, LinkType::Ipv4),
            (229, LinkType::Ipv6),
            (0, LinkType::Null),
            (108, LinkType::Loop),
            (127, LinkType::Other(127)),
            (1 | 0x1000_0000, LinkType::Ethernet),
        ] {
            let (evs, end) = read_all(&pcap(false, false, 0, n, &[(0, 0, b"x")]));
            end.unwrap();
            assert!(matches!(evs[0], Ev::F { link, .. } if link == lt), "{n}");
        }
    }

    #[test]
    fn pcap_snaplen_zero_and_caplen_beyond_snaplen() {
        // Snaplen 0: no limit.
        let (evs, end) = read_all(&pcap(false, false, 0, 1, &[(0, 0, &[7; 100])]));
        end.unwrap();
        assert_eq!(frames(&evs)[0].2.len(), 100);
        // Snaplen 10: the 100 claimed bytes are skipped, 10 are delivered, the next
        // record is still found.
        let f = pcap(true, false, 10, 1, &[(0, 0, &[7; 100]), (1, 0, b"next")]);
        let mut r = CaptureReader::new(&f[..]).unwrap();
        let Some(CaptureEvent::Frame(fr)) = r.next_event().unwrap() else {
            panic!()
        };
        assert_eq!((fr.data.len(), fr.original_len), (10, 104));
        let Some(CaptureEvent::Frame(fr)) = r.next_event().unwrap() else {
            panic!()
        };
        assert_eq!(fr.data, b"next");
        assert_eq!(r.stats().cut_to_snaplen, 1);
        assert_eq!(r.offset(), f.len() as u64);
    }

    #[test]
    fn pcap_huge_caplen_is_malformed_with_offset() {
        let mut f = pcap(false, false, 0, 1, &[(0, 0, b"ok")]);
        let second = f.len();
        f.extend_from_slice(&[0; 8]);
        f.extend_from_slice(&u32::MAX.to_le_bytes());
        f.extend_from_slice(&[0; 4]);
        let (evs, end) = read_all(&f);
        assert_eq!(evs.len(), 1);
        let e = end.unwrap_err();
        assert!(
            matches!(e, CaptureError::Malformed { offset, .. } if offset == second as u64),
            "{e}"
        );
        assert!(e.to_string().contains(&format!("offset {second}")), "{e}");
    }

    /// Two sections (little- then big-endian), two interfaces of different link types
    /// and resolutions, every packet block type, a DSB and an unknown block.
    fn two_sections() -> Vec<u8> {
        let mut a = ng(false);
        a.shb()
            .idb(1, 0, None, None) // Ethernet, µs
            .idb(101, 0, Some(9), Some(-1)) // raw IP, ns, 1 s before
            .epb(0, 1_700_000_000_000_001, b"eth frame")
            .epb_with_options(
                1,
                1_700_000_000_123_456_789,
                b"raw ip",
                &[
                    (2, &[1, 0, 0, 0]),
                    (OPT_COMMENT, b"u-10123"),
                    (OPT_COMMENT, b"2nd"),
                ],
            )
            .block(0x0c00, b"unknown block contents")
            .custom(CB_TYPE, 62652, b"\x01\x00\x01\x00custom")
            .dsb(0x544c_534b, b"CLIENT_RANDOM 00 11\n")
            .spb(3, b"spb-padded")
            .opb(1, 5_000_000_000, b"opb");
        let mut b = ng(true);
        b.shb()
            .idb(113, 4, Some(0x80 | 10), None) // SLL, 2^-10 s, snaplen 4
            .epb(0, 3 << 10, b"sll frame")
            .custom(DCB_TYPE, 7, b"")
            .epb(1, 0, b"undefined interface")
            .spb(100, b"short");
        let mut out = a.out;
        out.extend(b.out);
        out
    }

    fn two_sections_expected() -> Vec<Ev> {
        vec![
            Ev::F {
                number: 1,
                ts: 1_700_000_000_000_001,
                link: LinkType::Ethernet,
                interface: 0,
                data: b"eth frame".to_vec(),
                orig: 9,
            },
            Ev::F {
                number: 2,
                ts: 1_699_999_999_123_456,
                link: LinkType::Raw,
                interface: 1,
                data: b"raw ip".to_vec(),
                orig: 6,
            },
            // The first comment, after the flags option.
            Ev::Comment(b"u-10123".to_vec()),
            Ev::C {
                pen: 62652,
                // Padded to 4 bytes: the block's layout below the PEN is its own.
                data: b"\x01\x00\x01\x00custom\x00\x00".to_vec(),
                be: false,
                copy: true,
            },
            Ev::S(0x544c_534b, b"CLIENT_RANDOM 00 11\n".to_vec()),
            // SPB: interface 0, origlen 3 bounds the data, last timestamp.
            Ev::F {
                number: 3,
                ts: 1_699_999_999_123_456,
                link: LinkType::Ethernet,
                interface: 0,
                data: b"spb".to_vec(),
                orig: 3,
            },
            Ev::F {
                number: 4,
                ts: 4_000_000,
                link: LinkType::Raw,
                interface: 1,
                data: b"opb".to_vec(),
                orig: 3,
            },
            // Second section: big-endian, interfaces reset, snaplen 4.
            Ev::F {
                number: 5,
                ts: 3_000_000,
                link: LinkType::LinuxSll,
                interface: 0,
                data: b"sll ".to_vec(),
                orig: 9,
            },
            // Type 0x40000BAD: not to be copied.
            Ev::C {
                pen: 7,
                data: Vec::new(),
                be: true,
                copy: false,
            },
            Ev::F {
                number: 6,
                ts: 3_000_000,
                link: LinkType::LinuxSll,
                interface: 0,
                data: b"shor".to_vec(),
                orig: 100,
            },
        ]
    }

    #[test]
    fn pcapng_sections_interfaces_and_blocks() {
        let f = two_sections();
        let mut r = CaptureReader::new(&f[..]).unwrap();
        assert_eq!(r.format(), "pcapng");
        let mut evs = Vec::new();
        while let Some(ev) = r.next_event().unwrap() {
            evs.push(format!("{ev:?}"));
        }
        assert_eq!(r.offset(), f.len() as u64);
        assert_eq!(r.stats().sections, 2);
        assert_eq!(r.stats().skipped_blocks, 1);
        assert_eq!(r.stats().custom, 2);
        assert_eq!(r.stats().undefined_interface, 1);
        assert_eq!(r.stats().cut_to_snaplen, 2);
        let (evs, end) = read_all(&f);
        end.unwrap();
        assert_eq!(evs, two_sections_expected());
    }

    #[test]
    fn any_read_size_gives_the_same_events() {
        let f = two_sections();
        for n in [1, 2, 3, 7, 64, 4096] {
            let (evs, end) = read_all_from(Trickle(&f, n));
            end.unwrap();
            assert_eq!(evs, two_sections_expected(), "reads of {n}");
        }
        let p = pcap(true, true, 0, 1, &[(1, 2, b"a"), (3, 4, b"bc")]);
        let (evs, end) = read_all_from(Trickle(&p, 1));
        end.unwrap();
        assert_eq!(frames(&evs).len(), 2);
    }

    /// A live stream read with a timeout: past its file header (which the reader
    /// takes whole when it opens), every other read has nothing yet
    /// ([`io::ErrorKind::WouldBlock`]), the others hand out at most `n` bytes.
    struct Hesitant<'a> {
        bytes: &'a [u8],
        n: usize,
        header: usize,
        read: usize,
        waited: bool,
    }
    impl Read for Hesitant<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.read >= self.header && !self.waited && !self.bytes.is_empty() {
                self.waited = true;
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.waited = false;
            let n = self.n.min(buf.len()).min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            self.read += n;
            Ok(n)
        }
    }

    /// "Nothing yet" at any point of any block leaves the reading where it was: the
    /// same events as reading it all at once.
    #[test]
    fn nothing_yet_resumes_where_the_reading_stood() {
        let f = two_sections();
        let shb = u32::from_le_bytes(f[4..8].try_into().unwrap()) as usize;
        for n in [1, 3, 7, 64, 4096] {
            let hesitant = Hesitant {
                bytes: &f,
                n,
                header: shb,
                read: 0,
                waited: false,
            };
            let (evs, end) = read_all_from(hesitant);
            end.unwrap();
            assert_eq!(evs, two_sections_expected(), "reads of {n}");
        }
        let p = pcap(true, true, 0, 1, &[(1, 2, b"a"), (3, 4, b"bc")]);
        let hesitant = Hesitant {
            bytes: &p,
            n: 5,
            header: PCAP_HEADER_LEN,
            read: 0,
            waited: false,
        };
        let (evs, end) = read_all_from(hesitant);
        end.unwrap();
        assert_eq!(frames(&evs), frames(&read_all(&p).0));
    }

    #[test]
    fn small_buffer_grows_for_large_blocks_within_the_limit() {
        let big = vec![0x5a; 100_000];
        let mut w = ng(false);
        w.shb()
            .idb(1, 0, None, None)
            .epb(0, 0, &big)
            .epb(0, 0, b"after");
        let limits = CaptureLimits {
            initial_buffer: 64,
            ..CaptureLimits::default()
        };
        let mut r = CaptureReader::with_limits(&w.out[..], limits).unwrap();
        let Some(CaptureEvent::Frame(f)) = r.next_event().unwrap() else {
            panic!()
        };
        assert_eq!(f.data.len(), 100_000);
        let Some(CaptureEvent::Frame(f)) = r.next_event().unwrap() else {
            panic!()
        };
        assert_eq!(f.data, b"after");
        // The same block over a 50 000-byte limit is malformed, naming its offset.
        let limits = CaptureLimits {
            max_block_len: 50_000,
            ..CaptureLimits::default()
        };
        let mut r = CaptureReader::with_limits(&w.out[..], limits).unwrap();
        let e = r.next_event().unwrap_err();
        let idb_end = 28 + 20;
        assert!(
            matches!(e, CaptureError::Malformed { offset, .. } if offset == idb_end),
            "{e}"
        );
    }

    /// Offsets where a block (or the pcap file header) ends.
    fn boundaries(f: &[u8]) -> Vec<usize> {
        let mut out = Vec::new();
        let mut at;
        if f[..4] == SHB_BYTES {
            at = 0;
            let mut be = false;
            while at + 12 <= f.len() {
                if f[at..at + 4] == SHB_BYTES {
                    be = f[at + 8..at + 12] == BOM_BE;
                }
                at += u32_at(f, at + 4, be).unwrap() as usize;
                out.push(at);
            }
        } else {
            let be = f[0] == 0xa1;
            at = 24;
            out.push(at);
            while at + 16 <= f.len() {
                at += 16 + u32_at(f, at + 8, be).unwrap() as usize;
                out.push(at);
            }
        }
        out
    }

    #[test]
    fn truncated_at_every_offset_yields_the_frames_before_the_cut() {
        let cases = [
            two_sections(),
            pcap(
                false,
                false,
                0,
                1,
                &[(1, 0, b"first"), (2, 0, b"second"), (3, 0, b"")],
            ),
            pcap(true, true, 0, 101, &[(1, 0, b"first"), (2, 0, b"second")]),
        ];
        // One event per block: a frame's comment is part of the frame's event.
        let blocks = |evs: Vec<Ev>| -> Vec<Ev> {
            evs.into_iter()
                .filter(|e| !matches!(e, Ev::Comment(_)))
                .collect()
        };
        for f in &cases {
            let (full, end) = read_all(f);
            let full = blocks(full);
            end.unwrap();
            // Where each event's block ends.
            let mut ends = Vec::new();
            let limits = CaptureLimits {
                initial_buffer: 64,
                ..CaptureLimits::default()
            };
            let mut r = CaptureReader::with_limits(&f[..], limits).unwrap();
            while r.next_event().unwrap().is_some() {
                ends.push(r.offset() as usize);
            }
            for cut in 0..f.len() {
                let (evs, end) = read_all(&f[..cut]);
                let evs = blocks(evs);
                let complete = ends.iter().filter(|&&e| e <= cut).count();
                assert_eq!(evs, full[..complete], "cut at {cut}");
                match end {
                    Err(CaptureError::Truncated { offset, .. }) => {
                        assert!(offset as usize <= cut, "cut at {cut}: offset {offset}")
                    }
                    Err(CaptureError::NotACapture { .. }) if cut == 0 => {}
                    Ok(()) if boundaries(f).contains(&cut) => {}
                    other => panic!("cut at {cut}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn not_a_capture() {
        for bytes in [
            &b""[..],
            b"GET / HTTP/1.1\r\n\r\n",
            b"\x1f\x8b\x08\x00\x00",
            b"ab",
        ] {
            let e = CaptureReader::new(bytes).err().unwrap();
            assert!(
                matches!(e, CaptureError::NotACapture { .. }),
                "{bytes:?}: {e}"
            );
        }
        // The start of a magic is a truncated capture, not "not a capture".
        let e = CaptureReader::new(&[0xd4u8, 0xc3][..]).err().unwrap();
        assert!(
            matches!(e, CaptureError::Truncated { offset: 0, .. }),
            "{e}"
        );
        // pcapng magic without a byte-order magic.
        let e = CaptureReader::new(&[0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 1, 2, 3, 4][..])
            .err()
            .unwrap();
        assert!(matches!(e, CaptureError::NotACapture { .. }), "{e}");
    }

    #[test]
    fn pcapng_bogus_lengths_are_malformed() {
        let mut w = ng(false);
        w.shb().idb(1, 0, None, None);
        let good = w.out.len() as u64;
        // Not a multiple of 4, too small, trailing length differs, EPB caplen beyond block.
        let mut odd = w.out.clone();
        odd.extend_from_slice(&[6, 0, 0, 0, 33, 0, 0, 0]);
        odd.extend_from_slice(&[0; 40]);
        let mut small = w.out.clone();
        small.extend_from_slice(&[6, 0, 0, 0, 8, 0, 0, 0, 8, 0, 0, 0]);
        let mut trailer = ng(false);
        trailer.shb().idb(1, 0, None, None).epb(0, 0, b"abcd");
        let n = trailer.out.len();
        trailer.out[n - 4] ^= 4;
        let mut caplen = ng(false);
        caplen.shb().idb(1, 0, None, None).epb(0, 0, b"abcd");
        caplen.out[good as usize + 20..good as usize + 24].copy_from_slice(&1000u32.to_le_bytes());
        let mut custom = w.out.clone();
        custom.extend_from_slice(&[0xad, 0x0b, 0, 0, 12, 0, 0, 0, 12, 0, 0, 0]);
        for (name, f) in [
            ("odd", odd),
            ("small", small),
            ("custom without an enterprise number", custom),
            ("trailer", trailer.out),
            ("caplen", caplen.out),
        ] {
            let (evs, end) = read_all(&f);
            assert!(evs.is_empty(), "{name}");
            let e = end.unwrap_err();
            assert!(
                matches!(e, CaptureError::Malformed { offset, .. } if offset == good),
                "{name}: {e}"
            );
        }
    }

    #[test]
    fn io_errors_are_passed_on() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let f = pcap(false, false, 0, 1, &[(0, 0, b"x")]);
                if self.0 >= f.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionReset,
                        "disk on fire",
                    ));
                }
                let n = buf.len().min(f.len() - self.0);
                buf[..n].copy_from_slice(&f[self.0..self.0 + n]);
                self.0 += n;
                Ok(n)
            }
        }
        let (evs, end) = read_all_from(Failing(0));
        assert_eq!(evs.len(), 1);
        let e = end.unwrap_err();
        assert!(
            matches!(&e, CaptureError::Io(io) if io.to_string() == "disk on fire"),
            "{e}"
        );
    }

    #[test]
    fn reader_can_move_to_another_thread() {
        fn send<T: Send>() {}
        send::<CaptureReader<std::fs::File>>();
        send::<crate::net::packet::PacketDecoder>();
    }

    #[test]
    fn timestamp_resolutions() {
        assert_eq!(ng_micros(1_500, 3, 0), Timestamp(1_500_000)); // ms
        assert_eq!(ng_micros(1_999, 9, 0), Timestamp(1)); // ns floored
        assert_eq!(ng_micros(7, 0, 10), Timestamp(17_000_000)); // s + offset
        assert_eq!(ng_micros(1 << 20, 0x80 | 20, 0), Timestamp(1_000_000)); // 2^-20
        assert_eq!(ng_micros(u64::MAX, 0, 0), Timestamp(i64::MAX)); // saturates
        assert_eq!(ng_micros(u64::MAX, 127, 0), Timestamp(0));
        assert_eq!(ng_micros(u64::MAX, 0xff, i64::MIN), Timestamp(i64::MIN));
    }
}
