//! HPACK (RFC 7541), the header compression of HTTP/2: decoding only, sans I/O.
//!
//! [`http2`](super::http2) keeps one [`HpackDecoder`] per direction of a connection
//! and hands it each complete header block (HEADERS or PUSH_PROMISE plus its
//! CONTINUATION frames); the decoder answers the header fields in order, as
//! [`Header`]s with lower-case names, pseudo-headers (`:method`, `:path`, …) included.
//!
//! Written here rather than taken from a crate: the decoder must never panic or grow
//! without bound on hostile input, and a small decoder of our own (fuzzed by the
//! `hpack` target) is easier to hold to that than a general-purpose codec.
//!
//! Policies:
//! - **Dynamic table**: starts at 4096 bytes (the protocol's default). A size update
//!   may raise it to the largest `SETTINGS_HEADER_TABLE_SIZE` the decoding side
//!   announced ([`HpackDecoder::announce_table_size`]; a passive observer cannot know
//!   which of several in-flight values the encoder saw, so the largest is allowed),
//!   and never above our own hard cap (`max_table`). A larger update is an error:
//!   following it would mean holding more than the cap.
//! - **Size updates** are accepted anywhere in a block (RFC 7541 wants them first):
//!   applying them keeps us in step with a lenient peer and costs nothing.
//! - **Header list limit**: fields past `max_list` bytes (RFC 7541 §4.1 accounting:
//!   name + value + 32) are still decoded, so the dynamic table stays in step, but
//!   not returned; [`Decoded::truncated`] says so.
//! - **Errors** ([`HpackError`]) are connection errors in HTTP/2: after one the
//!   table is out of step with the encoder's, and the caller treats every later block
//!   of that direction as lost.
//! - **Huffman** (Appendix B, transcribed in `HUFFMAN_CODES`): an 11-bit lookup table
//!   for the short codes, canonical-code search for the long ones; EOS inside a
//!   string, padding longer than 7 bits or not all ones are errors.

use std::collections::VecDeque;
use std::sync::OnceLock;

use crate::exchange::Header;
use crate::net::message_budget::BudgetShare;

/// The protocol's initial dynamic table size (RFC 7541 §4.2, RFC 9113 §6.5.2).
pub const DEFAULT_TABLE_SIZE: usize = 4096;
/// Default hard cap on a dynamic table: 64 KiB (what Chrome announces).
pub const DEFAULT_MAX_TABLE: usize = 64 << 10;
/// Per-entry overhead in the table size accounting (RFC 7541 §4.1).
const ENTRY_OVERHEAD: usize = 32;
/// Longest prefix-integer continuation we follow: 5 bytes of 7 bits past the prefix
/// reach 2^35, more than any length or index can be.
const MAX_INTEGER_BYTES: usize = 5;

/// Why a header block could not be decoded; the decoder is out of step afterwards.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HpackError {
    #[error("header block ends inside a field representation")]
    Truncated,
    #[error("integer too large")]
    IntegerOverflow,
    #[error("index {0} is in neither table")]
    BadIndex(u64),
    #[error("index 0")]
    ZeroIndex,
    #[error("invalid Huffman code")]
    BadHuffman,
    #[error("EOS symbol inside a Huffman string")]
    HuffmanEos,
    #[error("Huffman padding longer than 7 bits or not all ones")]
    BadPadding,
    #[error("dynamic table size update to {requested} above the allowed {allowed}")]
    TableSizeTooLarge { requested: u64, allowed: usize },
    #[error(
        "dynamic table entry of {size} bytes not kept: messages in progress on all \
         connections together hold the capture's budget"
    )]
    OverBudget { size: usize },
}

/// One decoded header block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decoded {
    /// Fields past the header list limit were dropped.
    pub truncated: bool,
    /// Fields sent as never-indexed literals (RFC 7541 §6.2.3), by position in the
    /// returned list: values the sender marked sensitive.
    pub never_indexed: Vec<usize>,
}

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    value: Vec<u8>,
    /// Size by RFC 7541 §4.1, from the raw octets (names are stored lossily).
    size: usize,
}

/// HPACK decoding state of one direction of a connection.
#[derive(Debug)]
pub struct HpackDecoder {
    /// Newest first (index 62 is `table[0]`).
    table: VecDeque<Entry>,
    size: usize,
    /// Current maximum set by the encoder's size updates.
    capacity: usize,
    /// Largest size the decoding side announced (SETTINGS_HEADER_TABLE_SIZE).
    announced: usize,
    /// Our hard cap.
    max_table: usize,
    /// The table's bytes in the flow table's budget of message bytes (none: no
    /// budget): past it an entry is not kept and the block is an error
    /// ([`HpackError::OverBudget`]), since a table missing an entry the encoder
    /// refers to would misname every later field.
    held: BudgetShare,
}

impl HpackDecoder {
    /// A decoder at the start of a connection, holding at most `max_table` bytes of
    /// dynamic table (RFC 7541 size accounting).
    pub fn new(max_table: usize) -> Self {
        HpackDecoder {
            table: VecDeque::new(),
            size: 0,
            capacity: DEFAULT_TABLE_SIZE.min(max_table),
            announced: DEFAULT_TABLE_SIZE,
            max_table,
            held: BudgetShare::default(),
        }
    }

    /// Keeps the dynamic table within a share of the flow table's budget too (as
    /// header fields: the budget's headroom included).
    pub fn set_budget(&mut self, held: BudgetShare) {
        self.held = held;
        self.held.sync(self.size);
    }

    /// The decoding side announced `SETTINGS_HEADER_TABLE_SIZE = size`.
    pub fn announce_table_size(&mut self, size: u32) {
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        self.announced = self.announced.max(size);
    }

    /// Current dynamic table size (RFC 7541 accounting).
    pub fn table_size(&self) -> usize {
        self.size
    }

    /// Entries in the dynamic table.
    pub fn table_len(&self) -> usize {
        self.table.len()
    }

    /// Decodes one complete header block, appending its fields to `out` until they
    /// reach `max_list` bytes (RFC 7541 §4.1 accounting).
    pub fn decode(
        &mut self,
        mut block: &[u8],
        max_list: usize,
        out: &mut Vec<Header>,
    ) -> Result<Decoded, HpackError> {
        let mut info = Decoded::default();
        let mut list = 0usize;
        let mut scratch_name = Vec::new();
        let mut scratch_value = Vec::new();
        while let Some(&first) = block.first() {
            if first & 0x80 != 0 {
                // Indexed field (§6.1).
                let (index, rest) = integer(block, 7)?;
                block = rest;
                let (name, value) = self.lookup(index)?;
                emit(out, &mut list, max_list, &mut info, name, value, false);
            } else if first & 0xe0 == 0x20 {
                // Dynamic table size update (§6.3).
                let (size, rest) = integer(block, 5)?;
                block = rest;
                self.resize(size)?;
            } else {
                // Literal (§6.2): with incremental indexing (01), without (0000) or
                // never indexed (0001).
                let (prefix, index_it, never) = match first & 0xf0 {
                    f if f & 0xc0 == 0x40 => (6, true, false),
                    0x10 => (4, false, true),
                    _ => (4, false, false),
                };
                let (index, rest) = integer(block, prefix)?;
                block = rest;
                let (name, name_len) = if index == 0 {
                    let (plain, rest) = string(block, &mut scratch_name)?;
                    block = rest;
                    let raw = plain.unwrap_or(&scratch_name);
                    // Size accounting uses the raw octets, not the lossy String.
                    (String::from_utf8_lossy(raw).into_owned(), raw.len())
                } else {
                    let name = self.lookup(index)?.0;
                    (name.to_string(), name.len())
                };
                let (plain, rest) = string(block, &mut scratch_value)?;
                block = rest;
                let value = plain.unwrap_or(&scratch_value).to_vec();
                emit(out, &mut list, max_list, &mut info, &name, &value, never);
                if index_it {
                    self.insert(name, name_len, value)?;
                }
            }
        }
        Ok(info)
    }

    /// Field `index` (1-based, static then dynamic).
    fn lookup(&self, index: u64) -> Result<(&str, &[u8]), HpackError> {
        if index == 0 {
            return Err(HpackError::ZeroIndex);
        }
        let i = usize::try_from(index).map_err(|_| HpackError::BadIndex(index))?;
        if let Some(&(name, value)) = STATIC_TABLE.get(i - 1) {
            return Ok((name, value.as_bytes()));
        }
        self.table
            .get(i - 1 - STATIC_TABLE.len())
            .map(|e| (e.name.as_str(), e.value.as_slice()))
            .ok_or(HpackError::BadIndex(index))
    }

    fn resize(&mut self, size: u64) -> Result<(), HpackError> {
        let allowed = self.announced.min(self.max_table);
        match usize::try_from(size) {
            Ok(s) if s <= allowed => {
                self.capacity = s;
                self.evict(0);
                self.held.sync(self.size);
                Ok(())
            }
            _ => Err(HpackError::TableSizeTooLarge {
                requested: size,
                allowed,
            }),
        }
    }

    /// Evicts oldest entries until `room` more bytes fit.
    fn evict(&mut self, room: usize) {
        while self.size + room > self.capacity {
            match self.table.pop_back() {
                Some(e) => self.size -= e.size,
                None => break,
            }
        }
    }

    fn insert(&mut self, name: String, name_len: usize, value: Vec<u8>) -> Result<(), HpackError> {
        let size = name_len + value.len() + ENTRY_OVERHEAD;
        // An entry larger than the table empties it and is not added (§4.4).
        self.evict(size);
        self.held.sync(self.size);
        if self.size + size <= self.capacity {
            if !self.held.has_room_for_headers(size) {
                return Err(HpackError::OverBudget { size });
            }
            self.size += size;
            self.table.push_front(Entry { name, value, size });
            self.held.sync(self.size);
        }
        Ok(())
    }
}

/// Appends one field unless the list limit was reached.
fn emit(
    out: &mut Vec<Header>,
    list: &mut usize,
    max_list: usize,
    info: &mut Decoded,
    name: &str,
    value: &[u8],
    never: bool,
) {
    let size = name.len() + value.len() + ENTRY_OVERHEAD;
    if info.truncated || list.saturating_add(size) > max_list {
        info.truncated = true;
        return;
    }
    *list += size;
    if never {
        info.never_indexed.push(out.len());
    }
    out.push(Header::new(name, value));
}

/// A prefix integer (§5.1) whose prefix is the low `bits` bits of the first byte.
fn integer(block: &[u8], bits: u32) -> Result<(u64, &[u8]), HpackError> {
    let (&first, mut rest) = block.split_first().ok_or(HpackError::Truncated)?;
    let max = (1u64 << bits) - 1;
    let mut value = u64::from(first) & max;
    if value < max {
        return Ok((value, rest));
    }
    for shift in 0..=MAX_INTEGER_BYTES {
        let (&b, tail) = rest.split_first().ok_or(HpackError::Truncated)?;
        rest = tail;
        if shift == MAX_INTEGER_BYTES {
            return Err(HpackError::IntegerOverflow);
        }
        value += u64::from(b & 0x7f) << (7 * shift);
        if b & 0x80 == 0 {
            return Ok((value, rest));
        }
    }
    Err(HpackError::IntegerOverflow)
}

/// A string literal (§5.2): `Some` borrowed slice when plain, else `None` with the
/// string decoded into `scratch`; then the rest of the block.
fn string<'a>(
    block: &'a [u8],
    scratch: &mut Vec<u8>,
) -> Result<(Option<&'a [u8]>, &'a [u8]), HpackError> {
    let huffman = block.first().is_some_and(|b| b & 0x80 != 0);
    let (len, rest) = integer(block, 7)?;
    let len = usize::try_from(len).map_err(|_| HpackError::Truncated)?;
    if len > rest.len() {
        return Err(HpackError::Truncated);
    }
    let (raw, rest) = rest.split_at(len);
    scratch.clear();
    if huffman {
        huffman_decode(raw, scratch)?;
        Ok((None, rest))
    } else {
        Ok((Some(raw), rest))
    }
}

/// Bits resolved by the first lookup.
const FAST_BITS: u32 = 11;

struct HuffmanTables {
    /// Top `FAST_BITS` bits → `symbol | len << 9`, 0 when the code is longer.
    fast: Vec<u16>,
    /// Per code length: first code, number of codes, offset into `symbols`.
    first: [u32; 31],
    count: [u32; 31],
    offset: [u32; 31],
    /// Symbols ordered by (length, code).
    symbols: Vec<u16>,
}

fn tables() -> &'static HuffmanTables {
    static TABLES: OnceLock<HuffmanTables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let mut order: Vec<u16> = (0..HUFFMAN_CODES.len() as u16).collect();
        order.sort_by_key(|&s| {
            let (code, len) = HUFFMAN_CODES[usize::from(s)];
            (len, code)
        });
        let mut t = HuffmanTables {
            fast: vec![0; 1 << FAST_BITS],
            first: [0; 31],
            count: [0; 31],
            offset: [0; 31],
            symbols: order.clone(),
        };
        for (i, &s) in order.iter().enumerate() {
            let (code, len) = HUFFMAN_CODES[usize::from(s)];
            let l = usize::from(len);
            if t.count[l] == 0 {
                t.first[l] = code;
                t.offset[l] = i as u32;
            }
            t.count[l] += 1;
            if u32::from(len) <= FAST_BITS {
                let shift = FAST_BITS - u32::from(len);
                let base = (code << shift) as usize;
                for suffix in 0..(1usize << shift) {
                    t.fast[base | suffix] = s | (u16::from(len) << 9);
                }
            }
        }
        t
    })
}

/// Decodes the symbol at the top of `window` (bits left-aligned): (symbol, length).
fn huffman_symbol(t: &HuffmanTables, window: u64) -> Result<(u16, u32), HpackError> {
    let top = (window >> (64 - FAST_BITS)) as usize;
    let e = t.fast.get(top).copied().unwrap_or(0);
    if e != 0 {
        return Ok((e & 0x1ff, u32::from(e >> 9)));
    }
    for len in (FAST_BITS + 1)..=30 {
        let code = (window >> (64 - len)) as u32;
        let l = len as usize;
        let (first, count) = (t.first[l], t.count[l]);
        if count > 0 && code >= first && code - first < count {
            let i = (t.offset[l] + code - first) as usize;
            return t
                .symbols
                .get(i)
                .map(|&s| (s, len))
                .ok_or(HpackError::BadHuffman);
        }
    }
    Err(HpackError::BadHuffman)
}

/// Decodes a Huffman-coded string (§5.2, Appendix B) onto `out`.
pub fn huffman_decode(src: &[u8], out: &mut Vec<u8>) -> Result<(), HpackError> {
    let t = tables();
    out.reserve(src.len() + src.len() / 2);
    // Bits left-aligned in `acc`; `nbits` of them are input.
    let mut acc: u64 = 0;
    let mut nbits: u32 = 0;
    let mut bytes = src.iter();
    loop {
        while nbits <= 56 {
            match bytes.next() {
                Some(&b) => {
                    acc |= u64::from(b) << (56 - nbits);
                    nbits += 8;
                }
                None => break,
            }
        }
        if nbits == 0 {
            return Ok(());
        }
        // At the end of input the missing bits read as ones, like padding: a symbol
        // found longer than the bits left means what is left is padding.
        let window = if nbits >= 30 {
            acc
        } else {
            acc | (u64::MAX >> nbits)
        };
        let (sym, len) = huffman_symbol(t, window)?;
        if len > nbits {
            let pad = acc >> (64 - nbits);
            if nbits > 7 || pad != (1u64 << nbits) - 1 {
                return Err(HpackError::BadPadding);
            }
            return Ok(());
        }
        if sym >= 256 {
            return Err(HpackError::HuffmanEos);
        }
        out.push(sym as u8);
        acc <<= len;
        nbits -= len;
    }
}

/// Encoders for tests, benchmarks and capture generators (we never send HPACK).
pub mod encode {
    use super::HUFFMAN_CODES;

    /// A prefix integer: `flags` are the first byte's bits above the `bits`-bit prefix.
    pub fn integer(out: &mut Vec<u8>, flags: u8, bits: u32, mut value: u64) {
        let max = (1u64 << bits) - 1;
        if value < max {
            out.push(flags | value as u8);
            return;
        }
        out.push(flags | max as u8);
        value -= max;
        while value >= 0x80 {
            out.push((value as u8 & 0x7f) | 0x80);
            value >>= 7;
        }
        out.push(value as u8);
    }

    /// The Huffman code of `s` with its EOS-prefix padding.
    pub fn huffman(s: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let (mut acc, mut n) = (0u64, 0u32);
        for &b in s {
            let (code, len) = HUFFMAN_CODES[usize::from(b)];
            acc = (acc << len) | u64::from(code);
            n += u32::from(len);
            while n >= 8 {
                out.push((acc >> (n - 8)) as u8);
                n -= 8;
            }
        }
        if n > 0 {
            out.push(((acc << (8 - n)) as u8) | (0xff >> n));
        }
        out
    }

    /// A string literal, Huffman-coded or plain.
    pub fn string(out: &mut Vec<u8>, s: &[u8], huffman: bool) {
        if huffman {
            let h = self::huffman(s);
            integer(out, 0x80, 7, h.len() as u64);
            out.extend_from_slice(&h);
        } else {
            integer(out, 0, 7, s.len() as u64);
            out.extend_from_slice(s);
        }
    }

    /// An indexed field (§6.1).
    pub fn indexed(out: &mut Vec<u8>, index: u64) {
        integer(out, 0x80, 7, index);
    }

    /// How a literal is to be treated by the decoder's table.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Indexing {
        Incremental,
        Without,
        Never,
    }

    /// A literal field with a literal name (§6.2).
    pub fn literal(out: &mut Vec<u8>, name: &[u8], value: &[u8], mode: Indexing, huffman: bool) {
        literal_indexed_name(out, 0, mode);
        string(out, name, huffman);
        string(out, value, huffman);
    }

    /// A literal field whose name is table entry `name_index` (§6.2).
    pub fn literal_with_name_index(
        out: &mut Vec<u8>,
        name_index: u64,
        value: &[u8],
        mode: Indexing,
        huffman: bool,
    ) {
        literal_indexed_name(out, name_index, mode);
        string(out, value, huffman);
    }

    fn literal_indexed_name(out: &mut Vec<u8>, index: u64, mode: Indexing) {
        match mode {
            Indexing::Incremental => integer(out, 0x40, 6, index),
            Indexing::Without => integer(out, 0x00, 4, index),
            Indexing::Never => integer(out, 0x10, 4, index),
        }
    }

    /// A dynamic table size update (§6.3).
    pub fn size_update(out: &mut Vec<u8>, size: u64) {
        integer(out, 0x20, 5, size);
    }
}

/// The static table (RFC 7541 Appendix A), index 1 first.
pub const STATIC_TABLE: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// The Huffman code (RFC 7541 Appendix B): (code, length in bits) of symbols 0–255
/// and EOS (256), transcribed from the RFC's table.
#[rustfmt::skip]
pub const HUFFMAN_CODES: [(u32, u8); 257] = [
    (0x1ff8, 13), (0x7fffd8, 23), (0xfffffe2, 28), (0xfffffe3, 28),
    (0xfffffe4, 28), (0xfffffe5, 28), (0xfffffe6, 28), (0xfffffe7, 28),
    (0xfffffe8, 28), (0xffffea, 24), (0x3ffffffc, 30), (0xfffffe9, 28),
    (0xfffffea, 28), (0x3ffffffd, 30), (0xfffffeb, 28), (0xfffffec, 28),
    (0xfffffed, 28), (0xfffffee, 28), (0xfffffef, 28), (0xffffff0, 28),
    (0xffffff1, 28), (0xffffff2, 28), (0x3ffffffe, 30), (0xffffff3, 28),
    (0xffffff4, 28), (0xffffff5, 28), (0xffffff6, 28), (0xffffff7, 28),
    (0xffffff8, 28), (0xffffff9, 28), (0xffffffa, 28), (0xffffffb, 28),
    // ' ' (32) .. '/' (47)
    (0x14, 6), (0x3f8, 10), (0x3f9, 10), (0xffa, 12),
    (0x1ff9, 13), (0x15, 6), (0xf8, 8), (0x7fa, 11),
    (0x3fa, 10), (0x3fb, 10), (0xf9, 8), (0x7fb, 11),
    (0xfa, 8), (0x16, 6), (0x17, 6), (0x18, 6),
    // '0' (48) .. '?' (63)
    (0x0, 5), (0x1, 5), (0x2, 5), (0x19, 6),
    (0x1a, 6), (0x1b, 6), (0x1c, 6), (0x1d, 6),
    (0x1e, 6), (0x1f, 6), (0x5c, 7), (0xfb, 8),
    (0x7ffc, 15), (0x20, 6), (0xffb, 12), (0x3fc, 10),
    // '@' (64) .. 'O' (79)
    (0x1ffa, 13), (0x21, 6), (0x5d, 7), (0x5e, 7),
    (0x5f, 7), (0x60, 7), (0x61, 7), (0x62, 7),
    (0x63, 7), (0x64, 7), (0x65, 7), (0x66, 7),
    (0x67, 7), (0x68, 7), (0x69, 7), (0x6a, 7),
    // 'P' (80) .. '_' (95)
    (0x6b, 7), (0x6c, 7), (0x6d, 7), (0x6e, 7),
    (0x6f, 7), (0x70, 7), (0x71, 7), (0x72, 7),
    (0xfc, 8), (0x73, 7), (0xfd, 8), (0x1ffb, 13),
    (0x7fff0, 19), (0x1ffc, 13), (0x3ffc, 14), (0x22, 6),
    // '`' (96) .. 'o' (111)
    (0x7ffd, 15), (0x3, 5), (0x23, 6), (0x4, 5),
    (0x24, 6), (0x5, 5), (0x25, 6), (0x26, 6),
    (0x27, 6), (0x6, 5), (0x74, 7), (0x75, 7),
    (0x28, 6), (0x29, 6), (0x2a, 6), (0x7, 5),
    // 'p' (112) .. 127
    (0x2b, 6), (0x76, 7), (0x2c, 6), (0x8, 5),
    (0x9, 5), (0x2d, 6), (0x77, 7), (0x78, 7),
    (0x79, 7), (0x7a, 7), (0x7b, 7), (0x7ffe, 15),
    (0x7fc, 11), (0x3ffd, 14), (0x1ffd, 13), (0xffffffc, 28),
    // 128 .. 143
    (0xfffe6, 20), (0x3fffd2, 22), (0xfffe7, 20), (0xfffe8, 20),
    (0x3fffd3, 22), (0x3fffd4, 22), (0x3fffd5, 22), (0x7fffd9, 23),
    (0x3fffd6, 22), (0x7fffda, 23), (0x7fffdb, 23), (0x7fffdc, 23),
    (0x7fffdd, 23), (0x7fffde, 23), (0xffffeb, 24), (0x7fffdf, 23),
    // 144 .. 159
    (0xffffec, 24), (0xffffed, 24), (0x3fffd7, 22), (0x7fffe0, 23),
    (0xffffee, 24), (0x7fffe1, 23), (0x7fffe2, 23), (0x7fffe3, 23),
    (0x7fffe4, 23), (0x1fffdc, 21), (0x3fffd8, 22), (0x7fffe5, 23),
    (0x3fffd9, 22), (0x7fffe6, 23), (0x7fffe7, 23), (0xffffef, 24),
    // 160 .. 175
    (0x3fffda, 22), (0x1fffdd, 21), (0xfffe9, 20), (0x3fffdb, 22),
    (0x3fffdc, 22), (0x7fffe8, 23), (0x7fffe9, 23), (0x1fffde, 21),
    (0x7fffea, 23), (0x3fffdd, 22), (0x3fffde, 22), (0xfffff0, 24),
    (0x1fffdf, 21), (0x3fffdf, 22), (0x7fffeb, 23), (0x7fffec, 23),
    // 176 .. 191
    (0x1fffe0, 21), (0x1fffe1, 21), (0x3fffe0, 22), (0x1fffe2, 21),
    (0x7fffed, 23), (0x3fffe1, 22), (0x7fffee, 23), (0x7fffef, 23),
    (0xfffea, 20), (0x3fffe2, 22), (0x3fffe3, 22), (0x3fffe4, 22),
    (0x7ffff0, 23), (0x3fffe5, 22), (0x3fffe6, 22), (0x7ffff1, 23),
    // 192 .. 207
    (0x3ffffe0, 26), (0x3ffffe1, 26), (0xfffeb, 20), (0x7fff1, 19),
    (0x3fffe7, 22), (0x7ffff2, 23), (0x3fffe8, 22), (0x1ffffec, 25),
    (0x3ffffe2, 26), (0x3ffffe3, 26), (0x3ffffe4, 26), (0x7ffffde, 27),
    (0x7ffffdf, 27), (0x3ffffe5, 26), (0xfffff1, 24), (0x1ffffed, 25),
    // 208 .. 223
    (0x7fff2, 19), (0x1fffe3, 21), (0x3ffffe6, 26), (0x7ffffe0, 27),
    (0x7ffffe1, 27), (0x3ffffe7, 26), (0x7ffffe2, 27), (0xfffff2, 24),
    (0x1fffe4, 21), (0x1fffe5, 21), (0x3ffffe8, 26), (0x3ffffe9, 26),
    (0xffffffd, 28), (0x7ffffe3, 27), (0x7ffffe4, 27), (0x7ffffe5, 27),
    // 224 .. 239
    (0xfffec, 20), (0xfffff3, 24), (0xfffed, 20), (0x1fffe6, 21),
    (0x3fffe9, 22), (0x1fffe7, 21), (0x1fffe8, 21), (0x7ffff3, 23),
    (0x3fffea, 22), (0x3fffeb, 22), (0x1ffffee, 25), (0x1ffffef, 25),
    (0xfffff4, 24), (0xfffff5, 24), (0x3ffffea, 26), (0x7ffff4, 23),
    // 240 .. 255
    (0x3ffffeb, 26), (0x7ffffe6, 27), (0x3ffffec, 26), (0x3ffffed, 26),
    (0x7ffffe7, 27), (0x7ffffe8, 27), (0x7ffffe9, 27), (0x7ffffea, 27),
    (0x7ffffeb, 27), (0xffffffe, 28), (0x7ffffec, 27), (0x7ffffed, 27),
    (0x7ffffee, 27), (0x7ffffef, 27), (0x7fffff0, 27), (0x3ffffee, 26),
    // EOS (256)
    (0x3fffffff, 30),
];

#[cfg(test)]
mod tests {
    use super::encode::{self, Indexing};
    use super::*;
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn fields(h: &[Header]) -> Vec<(String, String)> {
        h.iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(&h.value).into_owned(),
                )
            })
            .collect()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn decode_all(d: &mut HpackDecoder, block: &[u8]) -> Result<Vec<(String, String)>, HpackError> {
        let mut out = Vec::new();
        d.decode(block, usize::MAX, &mut out)?;
        Ok(fields(&out))
    }

    #[test]
    fn huffman_table_is_the_canonical_code_of_its_lengths() {
        // Recompute every code from the lengths alone (canonical Huffman: by length,
        // then symbol); a transcription error in a code or a length shows here.
        let mut syms: Vec<usize> = (0..257).collect();
        syms.sort_by_key(|&s| (HUFFMAN_CODES[s].1, s));
        let mut code = 0u32;
        let mut prev_len = HUFFMAN_CODES[syms[0]].1;
        for (i, &s) in syms.iter().enumerate() {
            let len = HUFFMAN_CODES[s].1;
            if i > 0 {
                code = (code + 1) << (len - prev_len);
            }
            prev_len = len;
            assert_eq!(HUFFMAN_CODES[s].0, code, "symbol {s}");
        }
        // Complete code: the Kraft sum is exactly one.
        let kraft: u64 = HUFFMAN_CODES.iter().map(|&(_, l)| 1u64 << (30 - l)).sum();
        assert_eq!(kraft, 1 << 30);
        assert_eq!(HUFFMAN_CODES[256], (0x3fff_ffff, 30));
    }

    #[test]
    fn rfc7541_c3_requests_without_huffman() {
        let mut d = HpackDecoder::new(DEFAULT_MAX_TABLE);
        let first = decode_all(
            &mut d,
            &hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"),
        )
        .unwrap();
        assert_eq!(
            first,
            pairs(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com")
            ])
        );
        assert_eq!(d.table_size(), 57);
        let second = decode_all(&mut d, &hex("8286 84be 5808 6e6f 2d63 6163 6865")).unwrap();
        assert_eq!(
            second.last().unwrap(),
            &pairs(&[("cache-control", "no-cache")])[0]
        );
        assert_eq!(second[3].1, "www.example.com");
        assert_eq!(d.table_size(), 110);
        let third = decode_all(
            &mut d,
            &hex("8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65"),
        )
        .unwrap();
        assert_eq!(
            third,
            pairs(&[
                (":method", "GET"),
                (":scheme", "https"),
                (":path", "/index.html"),
                (":authority", "www.example.com"),
                ("custom-key", "custom-value")
            ])
        );
        assert_eq!((d.table_size(), d.table_len()), (164, 3));
    }

    #[test]
    fn rfc7541_c4_requests_with_huffman() {
        let mut d = HpackDecoder::new(DEFAULT_MAX_TABLE);
        let first = decode_all(&mut d, &hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff")).unwrap();
        assert_eq!(first[3], pairs(&[(":authority", "www.example.com")])[0]);
        let second = decode_all(&mut d, &hex("8286 84be 5886 a8eb 1064 9cbf")).unwrap();
        assert_eq!(second[4], pairs(&[("cache-control", "no-cache")])[0]);
        let third = decode_all(
            &mut d,
            &hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"),
        )
        .unwrap();
        assert_eq!(third[4], pairs(&[("custom-key", "custom-value")])[0]);
        assert_eq!(d.table_size(), 164);
    }

    #[test]
    fn rfc7541_c2_literals() {
        let mut d = HpackDecoder::new(DEFAULT_MAX_TABLE);
        let mut out = Vec::new();
        let info = d
            .decode(
                &hex("1008 7061 7373 776f 7264 0673 6563 7265 74"),
                1 << 20,
                &mut out,
            )
            .unwrap();
        assert_eq!(fields(&out), pairs(&[("password", "secret")]));
        assert_eq!(info.never_indexed, [0]);
        assert_eq!(d.table_len(), 0);
        assert_eq!(
            decode_all(&mut d, &hex("040c 2f73 616d 706c 652f 7061 7468")).unwrap(),
            pairs(&[(":path", "/sample/path")])
        );
        assert_eq!(d.table_len(), 0);
    }

    #[test]
    fn the_dynamic_table_counts_in_the_tables_budget() {
        use crate::net::message_budget::MessageBudget;
        // Room for two 43-byte entries of header fields (the headroom included), not three.
        let budget = MessageBudget::new(100);
        let mut d = HpackDecoder::new(DEFAULT_MAX_TABLE);
        d.set_budget(BudgetShare::of(&budget));
        let entry = |n: &str| {
            let mut block = Vec::new();
            encode::literal(
                &mut block,
                n.as_bytes(),
                b"0123456789",
                Indexing::Incremental,
                true,
            );
            block
        };
        decode_all(&mut d, &entry("a")).unwrap();
        decode_all(&mut d, &entry("b")).unwrap();
        assert_eq!(budget.held(), 86);
        // The third does not fit the budget (it would the table): an error, so that
        // no later reference is misread.
        assert_eq!(
            decode_all(&mut d, &entry("c")),
            Err(HpackError::OverBudget { size: 43 })
        );
        assert_eq!((d.table_len(), budget.held()), (2, 86));
        // A smaller table gives its evicted bytes back; the decoder's end, all.
        let mut shrink = Vec::new();
        encode::size_update(&mut shrink, 50);
        decode_all(&mut d, &shrink).unwrap();
        assert_eq!(budget.held(), 43);
        drop(d);
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn eviction_and_size_updates() {
        let mut d = HpackDecoder::new(DEFAULT_MAX_TABLE);
        let mut block = Vec::new();
        encode::size_update(&mut block, 100);
        // Each entry is 1 + 10 + 32 = 43 bytes: two fit in 100, the third evicts one.
        for (n, v) in [
            ("a", "0123456789"),
            ("b", "0123456789"),
            ("c", "0123456789"),
        ] {
            encode::literal(
                &mut block,
                n.as_bytes(),
                v.as_bytes(),
                Indexing::Incremental,
                true,
            );
        }
        decode_all(&mut d, &block).unwrap();
        assert_eq!((d.table_len(), d.table_size()), (2, 86));
        let mut refs = Vec::new();
        encode::indexed(&mut refs, 62);
        encode::indexed(&mut refs, 63);
        assert_eq!(
            decode_all(&mut d, &refs).unwrap(),
            pairs(&[("c", "0123456789"), ("b", "0123456789")])
        );
        let mut gone = Vec::new();
        encode::indexed(&mut gone, 64);
        assert_eq!(decode_all(&mut d, &gone), Err(HpackError::BadIndex(64)));
        // Size 0 empties the table.
        let mut zero = Vec::new();
        encode::size_update(&mut zero, 0);
        decode_all(&mut d, &zero).unwrap();
        assert_eq!((d.table_len(), d.table_size()), (0, 0));
        // An entry larger than the table is not added, and empties it.
        let mut d = HpackDecoder::new(DEFAULT_MAX_TABLE);
        let mut big = Vec::new();
        encode::literal(&mut big, b"x", &[b'v'; 5000], Indexing::Incremental, false);
        decode_all(&mut d, &big).unwrap();
        assert_eq!(d.table_len(), 0);
    }

    #[test]
    fn table_size_is_bounded_by_settings_and_cap() {
        let mut d = HpackDecoder::new(8192);
        let mut up = Vec::new();
        encode::size_update(&mut up, 8000);
        assert_eq!(
            decode_all(&mut d, &up),
            Err(HpackError::TableSizeTooLarge {
                requested: 8000,
                allowed: 4096
            })
        );
        d.announce_table_size(65536);
        assert!(decode_all(&mut d, &up).is_ok());
        let mut huge = Vec::new();
        encode::size_update(&mut huge, 10_000);
        assert_eq!(
            decode_all(&mut d, &huge),
            Err(HpackError::TableSizeTooLarge {
                requested: 10_000,
                allowed: 8192
            })
        );
    }

    #[test]
    fn header_list_limit_drops_fields_but_keeps_the_table_in_step() {
        let mut d = HpackDecoder::new(DEFAULT_MAX_TABLE);
        let mut block = Vec::new();
        encode::indexed(&mut block, 2);
        encode::literal(
            &mut block,
            b"big",
            &[b'x'; 100],
            Indexing::Incremental,
            false,
        );
        encode::literal(&mut block, b"small", b"1", Indexing::Incremental, false);
        let mut out = Vec::new();
        let info = d.decode(&block, 100, &mut out).unwrap();
        assert!(info.truncated);
        assert_eq!(fields(&out), pairs(&[(":method", "GET")]));
        assert_eq!(d.table_len(), 2);
        let mut refs = Vec::new();
        encode::indexed(&mut refs, 63);
        assert_eq!(decode_all(&mut d, &refs).unwrap()[0].0, "big");
    }

    #[test]
    fn malformed_blocks_are_errors() {
        let mut d = HpackDecoder::new(DEFAULT_MAX_TABLE);
        assert_eq!(decode_all(&mut d, &[0x80]), Err(HpackError::ZeroIndex));
        assert_eq!(decode_all(&mut d, &[0xff]), Err(HpackError::Truncated));
        assert_eq!(
            decode_all(&mut d, &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
            Err(HpackError::IntegerOverflow)
        );
        assert_eq!(
            decode_all(&mut d, &[0x40, 0x05, b'a']),
            Err(HpackError::Truncated)
        );
        assert_eq!(decode_all(&mut d, &[0xbe]), Err(HpackError::BadIndex(62)));
        // Huffman "a" is 00011 + padding 111; padding 000 is wrong.
        assert_eq!(
            decode_all(&mut d, &[0x00, 0x01, b'a', 0x81, 0x18]),
            Err(HpackError::BadPadding)
        );
        assert_eq!(
            decode_all(&mut d, &[0x00, 0x01, b'a', 0x81, 0x1f]).unwrap(),
            pairs(&[("a", "a")])
        );
        // Eight or more bits of padding.
        assert_eq!(
            decode_all(&mut d, &[0x00, 0x01, b'a', 0x82, 0x1f, 0xff]),
            Err(HpackError::BadPadding)
        );
        // 32 one bits hold EOS.
        assert_eq!(
            decode_all(&mut d, &[0x00, 0x01, b'a', 0x84, 0xff, 0xff, 0xff, 0xff]),
            Err(HpackError::HuffmanEos)
        );
    }

    #[test]
    fn huffman_edge_symbols() {
        // Every symbol alone (5 to 30 bits, with all paddings 0..7).
        for b in 0..=255u8 {
            let mut out = Vec::new();
            huffman_decode(&encode::huffman(&[b]), &mut out).unwrap();
            assert_eq!(out, [b]);
        }
        let mut out = Vec::new();
        huffman_decode(&[], &mut out).unwrap();
        assert!(out.is_empty());
    }

    proptest! {
        #[test]
        fn huffman_round_trip(s in prop::collection::vec(any::<u8>(), 0..200)) {
            let mut out = Vec::new();
            huffman_decode(&encode::huffman(&s), &mut out).unwrap();
            prop_assert_eq!(out, s);
        }

        #[test]
        fn encoded_fields_decode(fields_in in prop::collection::vec(
            (prop::collection::vec(any::<u8>(), 0..20), prop::collection::vec(any::<u8>(), 0..40), 0u8..3, any::<bool>()), 0..20)) {
            // A naive model: every literal decodes to itself, and incrementally
            // indexed ones are found again at 62.. in reverse order.
            let mut block = Vec::new();
            let mut want = Vec::new();
            for (n, v, mode, huff) in &fields_in {
                let mode = [Indexing::Incremental, Indexing::Without, Indexing::Never][usize::from(*mode)];
                encode::literal(&mut block, n, v, mode, *huff);
                want.push((String::from_utf8_lossy(n).into_owned(), v.clone()));
            }
            let mut d = HpackDecoder::new(DEFAULT_MAX_TABLE);
            let mut out = Vec::new();
            d.decode(&block, usize::MAX, &mut out).unwrap();
            let got: Vec<(String, Vec<u8>)> = out.into_iter().map(|h| (h.name.into_owned(), h.value)).collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn arbitrary_blocks_never_panic(block in prop::collection::vec(any::<u8>(), 0..300)) {
            let mut d = HpackDecoder::new(1024);
            d.announce_table_size(u32::MAX);
            let mut out = Vec::new();
            let _ = d.decode(&block, 4096, &mut out);
            prop_assert!(d.table_size() <= 1024);
        }
    }
}
