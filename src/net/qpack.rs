//! QPACK (RFC 9204), the field compression of HTTP/3: decoding only, sans I/O.
//!
//! [`http3`](super::http3) keeps one [`QpackDecoder`] per direction of a connection.
//! It feeds it that direction's encoder stream (the peer's unidirectional stream of
//! type 0x02, [`QpackDecoder::encoder_stream`]) and each HEADERS frame payload
//! ([`QpackDecoder::decode`]); the decoder answers the fields in order, as [`Header`]s,
//! pseudo-headers (`:method`, `:path`, …) included.
//!
//! Written here rather than taken from a crate for the reason [`hpack`](super::hpack)
//! is: hostile input must neither panic it nor make it grow without bound. The
//! Huffman code is HPACK's ([`huffman_decode`]).
//!
//! Policies:
//! - **Passive decoder**: we read the encoder stream and the field sections but send
//!   nothing, so there is no decoder stream and no acknowledgement to track. Entries
//!   are evicted, oldest first, whenever an insert or a capacity change needs the
//!   room, whether or not the real decoder had acknowledged them; a reference to an
//!   evicted entry is an error ([`QpackError::Evicted`]).
//! - **Blocked sections**: a section whose Required Insert Count is above the inserts
//!   seen so far is [`QpackError::Blocked`], with `out` untouched; the caller keeps it
//!   and calls `decode` again after more encoder-stream bytes. How many it keeps is
//!   the caller's limit (SETTINGS_QPACK_BLOCKED_STREAMS binds the encoder, not us).
//! - **Dynamic table**: its capacity starts at 0. The encoder may set it up to the
//!   SETTINGS_QPACK_MAX_TABLE_CAPACITY the decoding side announced
//!   ([`QpackDecoder::set_max_table_capacity`]; 0 until then, the protocol's
//!   default), and never above our hard cap (`max_table`). Above the announced
//!   maximum is the peer's error; above our cap is a limit we refuse to follow, since
//!   following it would mean holding more than the cap.
//! - **Encoder stream**: instructions may arrive split anywhere; an incomplete one is
//!   buffered. Its strings are checked against the room left in the table as soon as
//!   their lengths are read (plain: the room; Huffman-coded: 4 times it, the longest
//!   code being 30 bits), so the buffer holds at most about 4 × the capacity.
//! - **Errors** ([`QpackError`]): an encoder-stream error leaves the table out of step
//!   with the encoder's. The decoder is then broken: every later call, to
//!   `encoder_stream` or to `decode`, returns that same error. A field section does
//!   not change the table, so a section error loses only that section, and leaves
//!   `out` as it was.
//! - **Field list limit**: fields past `max_list` bytes (RFC 9204 §3.2.1 accounting:
//!   name + value + 32) are dropped; [`Decoded::truncated`] says so. The strings of a
//!   section are slices of the block, whose size the caller bounds.
//! - **Leniency**: where the RFC lets a decoder refuse without needing to (a Required
//!   Insert Count larger than the section's references need, §2.2.1; capacity
//!   instructions while the maximum is 0), we decode.

use std::collections::VecDeque;

use crate::exchange::Header;
use crate::net::hpack::{huffman_decode, HpackError};
use crate::net::message_budget::BudgetShare;

/// Default hard cap on a dynamic table: 64 KiB, as for HPACK.
pub const DEFAULT_MAX_TABLE: usize = 64 << 10;
/// Per-entry overhead in the table size accounting (RFC 9204 §3.2.1).
const ENTRY_OVERHEAD: usize = 32;
/// Largest integer we decode: RFC 9204 §4.1.1 asks for 62 bits, QUIC's largest value.
const MAX_INTEGER: u64 = (1 << 62) - 1;
/// Continuation bytes of a prefix integer we follow: 9 × 7 bits cover 62 bits.
const MAX_INTEGER_BYTES: u32 = 9;
/// Wire bytes a Huffman-coded string may take per decoded byte: the longest code
/// (RFC 7541 Appendix B) is 30 bits, under 4 bytes.
const HUFFMAN_WIRE_PER_BYTE: usize = 4;

/// Why an encoder-stream instruction or a field section could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QpackError {
    /// Only from `decode`: on the encoder stream, the rest is waited for.
    #[error("field section ends inside its prefix or a field line")]
    Truncated,
    #[error("integer above 2^62 - 1")]
    IntegerOverflow,
    #[error("invalid Huffman string: {0}")]
    Huffman(HpackError),
    #[error("static table index {0} past its 99 entries")]
    BadStaticIndex(u64),
    #[error("relative index {relative} not below base {base}")]
    BadRelativeIndex { relative: u64, base: u64 },
    #[error("dynamic table index {index} not below the Required Insert Count {required}")]
    IndexAboveRequired { index: u64, required: u64 },
    #[error("dynamic table entry {index} was evicted")]
    Evicted { index: u64 },
    #[error(
        "encoded Required Insert Count {encoded} is invalid with {max_entries} maximum entries"
    )]
    BadRequiredInsertCount { encoded: u64, max_entries: u64 },
    #[error("Base below zero: Required Insert Count {required}, negative delta {delta}")]
    NegativeBase { required: u64, delta: u64 },
    #[error("field section needs {required} inserts on the encoder stream")]
    Blocked { required: u64 },
    #[error("dynamic table capacity {requested} above the announced maximum {maximum}")]
    CapacityAboveMaximum { requested: u64, maximum: u64 },
    #[error("dynamic table capacity {requested} above our cap of {cap} bytes")]
    CapacityAboveCap { requested: u64, cap: usize },
    #[error("string of {len} bytes on the wire, more than the {limit} that fit the table")]
    StringTooLong { len: u64, limit: u64 },
    #[error("entry of {size} bytes larger than the table capacity {capacity}")]
    EntryTooLarge { size: usize, capacity: usize },
    #[error(
        "dynamic table entry of {size} bytes not kept: messages in progress on all \
         connections together hold the capture's budget"
    )]
    OverBudget { size: usize },
}

/// One decoded field section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decoded {
    /// Fields past the field list limit were dropped.
    pub truncated: bool,
    /// Fields sent as literals with the 'N' bit (RFC 9204 §4.5.4–§4.5.6), by position
    /// in `out`: values the sender marked sensitive.
    pub never_indexed: Vec<usize>,
}

/// Where a field line's index points (RFC 9204 §3.2.4–§3.2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Index {
    /// Static table entry.
    Static(u64),
    /// Dynamic table entry counted back from the Base (on the encoder stream, from
    /// the Insert Count): 0 is the entry just below it.
    Relative(u64),
    /// Dynamic table entry counted up from the Base: 0 is the entry at it.
    PostBase(u64),
}

/// A field found in either table.
#[derive(Debug, Clone, Copy)]
struct Field<'t> {
    name: &'t str,
    /// Raw length of the name, for the size accounting (stored names are lossy).
    name_len: usize,
    value: &'t [u8],
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    name: String,
    name_len: usize,
    value: Vec<u8>,
}

impl Entry {
    fn literal(name: &[u8], value: &[u8]) -> Self {
        Entry {
            name: String::from_utf8_lossy(name).into_owned(),
            name_len: name.len(),
            value: value.to_vec(),
        }
    }

    fn with_name_of(field: Field<'_>, value: &[u8]) -> Self {
        Entry {
            name: field.name.to_owned(),
            name_len: field.name_len,
            value: value.to_vec(),
        }
    }

    /// Size by RFC 9204 §3.2.1.
    fn size(&self) -> usize {
        self.name_len
            .saturating_add(self.value.len())
            .saturating_add(ENTRY_OVERHEAD)
    }

    fn field(&self) -> Field<'_> {
        Field {
            name: &self.name,
            name_len: self.name_len,
            value: &self.value,
        }
    }
}

/// The Required Insert Count and Base of a field section (§4.5.1): the window of the
/// dynamic table its lines may reference.
#[derive(Debug, Clone, Copy)]
struct Section {
    required: u64,
    base: u64,
}

/// QPACK decoding state of one direction of a connection: the peer encoder's dynamic
/// table as rebuilt from its encoder stream.
#[derive(Debug)]
pub struct QpackDecoder {
    /// Oldest first: `table[0]` has absolute index `inserts - table.len()`.
    table: VecDeque<Entry>,
    size: usize,
    /// Current capacity, set by the encoder.
    capacity: usize,
    /// SETTINGS_QPACK_MAX_TABLE_CAPACITY of the decoding side.
    max_capacity: u64,
    /// Our hard cap.
    max_table: usize,
    /// The Insert Count.
    inserts: u64,
    /// Unparsed encoder-stream bytes: the start of an incomplete instruction.
    pending: Vec<u8>,
    /// Length `pending` must reach before the instruction can be complete.
    wanted: usize,
    /// The encoder-stream error that put the table out of step.
    broken: Option<QpackError>,
    /// The table's bytes in the flow table's budget of message bytes (none: no
    /// budget): past it an insert is an error ([`QpackError::OverBudget`]) that puts
    /// the table out of step, as a table missing an entry would misname fields.
    held: BudgetShare,
}

/// A copy holds a share of its own (of the same budget, if any).
impl Clone for QpackDecoder {
    fn clone(&self) -> Self {
        let mut held = self.held.sibling();
        held.sync(self.size);
        QpackDecoder {
            table: self.table.clone(),
            size: self.size,
            capacity: self.capacity,
            max_capacity: self.max_capacity,
            max_table: self.max_table,
            inserts: self.inserts,
            pending: self.pending.clone(),
            wanted: self.wanted,
            broken: self.broken.clone(),
            held,
        }
    }
}

impl QpackDecoder {
    /// A decoder at the start of a connection, holding at most `max_table` bytes of
    /// dynamic table (RFC 9204 §3.2.1 accounting: name + value + 32).
    pub fn new(max_table: usize) -> Self {
        QpackDecoder {
            table: VecDeque::new(),
            size: 0,
            capacity: 0,
            max_capacity: 0,
            max_table,
            inserts: 0,
            pending: Vec::new(),
            wanted: 0,
            broken: None,
            held: BudgetShare::default(),
        }
    }

    /// Keeps the dynamic table within a share of the flow table's budget too (as
    /// header fields: the budget's headroom included).
    pub fn set_budget(&mut self, held: BudgetShare) {
        self.held = held;
        self.held.sync(self.size);
    }

    /// The decoding side announced `SETTINGS_QPACK_MAX_TABLE_CAPACITY = capacity`.
    pub fn set_max_table_capacity(&mut self, capacity: u64) {
        self.max_capacity = capacity;
    }

    /// Entries inserted so far (the Insert Count), evicted ones included.
    pub fn insert_count(&self) -> u64 {
        self.inserts
    }

    /// Applies the next bytes of the peer encoder's stream (after its stream type).
    /// They may end inside an instruction: its start is kept for the next call. After
    /// an error the table is out of step with the encoder's: this call and every later
    /// one, here and in [`decode`](Self::decode), return that error.
    pub fn encoder_stream(&mut self, data: &[u8]) -> Result<(), QpackError> {
        if let Some(e) = &self.broken {
            return Err(e.clone());
        }
        let result = self.feed(data);
        if let Err(e) = &result {
            self.broken = Some(e.clone());
            self.pending = Vec::new();
        }
        result
    }

    /// Decodes one complete encoded field section (a HEADERS frame payload), appending
    /// its fields to `out` until they reach `max_list` bytes (name + value + 32).
    ///
    /// A section that needs inserts not seen yet is [`QpackError::Blocked`]: `out` is
    /// untouched, and the same block decodes once the encoder stream has caught up.
    /// On any error `out` is left as it was.
    pub fn decode(
        &mut self,
        block: &[u8],
        max_list: usize,
        out: &mut Vec<Header>,
    ) -> Result<Decoded, QpackError> {
        if let Some(e) = &self.broken {
            return Err(e.clone());
        }
        let mut r = Reader::new(block);
        let section = self.section_prefix(&mut r)?;
        if section.required > self.inserts {
            return Err(QpackError::Blocked {
                required: section.required,
            });
        }
        let start = out.len();
        let mut list = FieldList {
            out,
            size: 0,
            max: max_list,
            info: Decoded::default(),
        };
        match self.field_lines(&mut r, section, &mut list) {
            Ok(()) => Ok(list.info),
            Err(e) => {
                list.out.truncate(start);
                Err(e)
            }
        }
    }

    fn feed(&mut self, data: &[u8]) -> Result<(), QpackError> {
        if self.pending.is_empty() {
            let used = self.run(data)?;
            self.pending
                .extend_from_slice(data.get(used..).unwrap_or_default());
            return Ok(());
        }
        self.pending.extend_from_slice(data);
        if self.pending.len() < self.wanted {
            return Ok(());
        }
        let mut pending = std::mem::take(&mut self.pending);
        let used = self.run(&pending)?;
        pending.drain(..used.min(pending.len()));
        self.pending = pending;
        Ok(())
    }

    /// Applies the complete instructions at the start of `input`; answers how many
    /// bytes they took.
    fn run(&mut self, input: &[u8]) -> Result<usize, QpackError> {
        let mut r = Reader::new(input);
        let (mut names, mut values) = (Vec::new(), Vec::new());
        let mut done = 0;
        while !r.is_empty() {
            let room = self.capacity.saturating_sub(ENTRY_OVERHEAD);
            match parse_instruction(&mut r, room, &mut names, &mut values) {
                Ok(instruction) => self.apply(instruction)?,
                // On this stream running out of input only means "wait for more".
                Err(QpackError::Truncated) => {
                    self.wanted = r.needed.saturating_sub(done);
                    return Ok(done);
                }
                Err(e) => return Err(e),
            }
            done = r.pos;
        }
        self.wanted = 0;
        Ok(done)
    }

    fn apply(&mut self, instruction: Instruction<'_>) -> Result<(), QpackError> {
        match instruction {
            Instruction::SetCapacity(capacity) => self.set_capacity(capacity),
            Instruction::InsertWithNameRef { name, value } => {
                let entry = Entry::with_name_of(self.encoder_field(name)?, value);
                self.insert(entry)
            }
            Instruction::InsertWithLiteralName { name, value } => {
                self.insert(Entry::literal(name, value))
            }
            Instruction::Duplicate(relative) => {
                let field = self.encoder_field(Index::Relative(relative))?;
                let entry = Entry::with_name_of(field, field.value);
                self.insert(entry)
            }
        }
    }

    fn set_capacity(&mut self, requested: u64) -> Result<(), QpackError> {
        if requested > self.max_capacity {
            return Err(QpackError::CapacityAboveMaximum {
                requested,
                maximum: self.max_capacity,
            });
        }
        let capacity = usize::try_from(requested)
            .ok()
            .filter(|&c| c <= self.max_table)
            .ok_or(QpackError::CapacityAboveCap {
                requested,
                cap: self.max_table,
            })?;
        self.capacity = capacity;
        self.evict_to(capacity);
        self.held.sync(self.size);
        Ok(())
    }

    /// Adds `entry`, evicting what it needs. The entry was built before anything was
    /// evicted: it may copy the name or the whole of an entry it evicts (§3.2.2).
    fn insert(&mut self, entry: Entry) -> Result<(), QpackError> {
        let size = entry.size();
        if size > self.capacity {
            return Err(QpackError::EntryTooLarge {
                size,
                capacity: self.capacity,
            });
        }
        self.evict_to(self.capacity - size);
        self.held.sync(self.size);
        if !self.held.has_room_for_headers(size) {
            return Err(QpackError::OverBudget { size });
        }
        self.size += size;
        self.table.push_back(entry);
        self.inserts += 1;
        self.held.sync(self.size);
        Ok(())
    }

    /// Evicts oldest entries until the table holds at most `target` bytes.
    fn evict_to(&mut self, target: usize) {
        while self.size > target {
            match self.table.pop_front() {
                Some(e) => self.size -= e.size(),
                None => break,
            }
        }
    }

    /// Reads a section's Required Insert Count and Base (§4.5.1).
    fn section_prefix(&self, r: &mut Reader<'_>) -> Result<Section, QpackError> {
        let encoded = r.integer(8)?;
        let max_entries = self.max_capacity / ENTRY_OVERHEAD as u64;
        let required = required_insert_count(encoded, max_entries, self.inserts)?;
        let negative = r.peek()? & 0x80 != 0;
        let delta = r.integer(7)?;
        let base = if negative {
            required
                .checked_sub(delta)
                .and_then(|b| b.checked_sub(1))
                .ok_or(QpackError::NegativeBase { required, delta })?
        } else {
            required
                .checked_add(delta)
                .ok_or(QpackError::IntegerOverflow)?
        };
        Ok(Section { required, base })
    }

    fn field_lines(
        &self,
        r: &mut Reader<'_>,
        section: Section,
        list: &mut FieldList<'_>,
    ) -> Result<(), QpackError> {
        let (mut names, mut values) = (Vec::new(), Vec::new());
        while !r.is_empty() {
            match parse_line(r, &mut names, &mut values)? {
                Line::Indexed(index) => {
                    let f = self.field(section, index)?;
                    list.push(f.name, f.name_len, f.value, false);
                }
                Line::Literal {
                    name: Name::Ref(index),
                    value,
                    never,
                } => {
                    let f = self.field(section, index)?;
                    list.push(f.name, f.name_len, value, never);
                }
                Line::Literal {
                    name: Name::Literal(raw),
                    value,
                    never,
                } => list.push(&String::from_utf8_lossy(raw), raw.len(), value, never),
            }
        }
        Ok(())
    }

    /// The field at `index` as seen from `section`; dynamic entries must lie below its
    /// Required Insert Count and must not have been evicted (§2.2.3).
    fn field(&self, section: Section, index: Index) -> Result<Field<'_>, QpackError> {
        let absolute = match index {
            Index::Static(i) => return static_field(i),
            Index::Relative(i) => section
                .base
                .checked_sub(i)
                .and_then(|b| b.checked_sub(1))
                .ok_or(QpackError::BadRelativeIndex {
                    relative: i,
                    base: section.base,
                })?,
            Index::PostBase(i) => section.base.saturating_add(i),
        };
        if absolute >= section.required {
            return Err(QpackError::IndexAboveRequired {
                index: absolute,
                required: section.required,
            });
        }
        self.entry(absolute)
    }

    /// The field at `index` for an encoder instruction: relative indices count back
    /// from the Insert Count (§3.2.5), as in a section whose Base and Required Insert
    /// Count both are the Insert Count.
    fn encoder_field(&self, index: Index) -> Result<Field<'_>, QpackError> {
        let now = Section {
            required: self.inserts,
            base: self.inserts,
        };
        self.field(now, index)
    }

    /// The dynamic entry at `absolute`, which callers checked is below the Insert
    /// Count: a miss is an evicted entry.
    fn entry(&self, absolute: u64) -> Result<Field<'_>, QpackError> {
        let oldest = self.inserts.saturating_sub(self.table.len() as u64);
        absolute
            .checked_sub(oldest)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.table.get(i))
            .map(Entry::field)
            .ok_or(QpackError::Evicted { index: absolute })
    }
}

fn static_field(index: u64) -> Result<Field<'static>, QpackError> {
    let &(name, value) = usize::try_from(index)
        .ok()
        .and_then(|i| STATIC_TABLE.get(i))
        .ok_or(QpackError::BadStaticIndex(index))?;
    Ok(Field {
        name,
        name_len: name.len(),
        value: value.as_bytes(),
    })
}

/// Decodes the Required Insert Count from its encoded form (§4.5.1.1): the encoder
/// sends it modulo twice the most entries the table can hold, and the decoder's own
/// Insert Count says which wrap it is in.
fn required_insert_count(encoded: u64, max_entries: u64, inserts: u64) -> Result<u64, QpackError> {
    if encoded == 0 {
        return Ok(0);
    }
    let bad = || QpackError::BadRequiredInsertCount {
        encoded,
        max_entries,
    };
    // `max_entries` is a capacity over 32: doubling it cannot overflow.
    let full_range = 2 * max_entries;
    if encoded > full_range {
        return Err(bad());
    }
    let max_value = inserts.checked_add(max_entries).ok_or_else(bad)?;
    let max_wrapped = max_value / full_range * full_range;
    let mut required = max_wrapped.checked_add(encoded - 1).ok_or_else(bad)?;
    if required > max_value {
        // The encoder's value wrapped one time fewer, unless that makes it negative.
        if required <= full_range {
            return Err(bad());
        }
        required -= full_range;
    }
    // Zero is sent as zero.
    if required == 0 {
        return Err(bad());
    }
    Ok(required)
}

/// One encoder-stream instruction (§4.3), its strings borrowed from the input or from
/// the scratch buffers.
#[derive(Debug)]
enum Instruction<'s> {
    SetCapacity(u64),
    InsertWithNameRef { name: Index, value: &'s [u8] },
    InsertWithLiteralName { name: &'s [u8], value: &'s [u8] },
    Duplicate(u64),
}

/// Reads one instruction; `room` is the most a new entry's name and value can hold.
fn parse_instruction<'a: 's, 's>(
    r: &mut Reader<'a>,
    room: usize,
    names: &'s mut Vec<u8>,
    values: &'s mut Vec<u8>,
) -> Result<Instruction<'s>, QpackError> {
    let first = r.peek()?;
    Ok(match first.leading_zeros() {
        // 1Txxxxxx: Insert with Name Reference, T for the static table.
        0 => {
            let index = r.integer(6)?;
            let name = if first & 0x40 != 0 {
                Index::Static(index)
            } else {
                Index::Relative(index)
            };
            let value = r.string(7, room, values)?;
            Instruction::InsertWithNameRef { name, value }
        }
        // 01Hxxxxx: Insert with Literal Name.
        1 => {
            let name = r.string(5, room, names)?;
            let value = r.string(7, room.saturating_sub(name.len()), values)?;
            Instruction::InsertWithLiteralName { name, value }
        }
        // 001xxxxx: Set Dynamic Table Capacity.
        2 => Instruction::SetCapacity(r.integer(5)?),
        // 000xxxxx: Duplicate.
        _ => Instruction::Duplicate(r.integer(5)?),
    })
}

/// One field line (§4.5.2–§4.5.6).
#[derive(Debug)]
enum Line<'s> {
    Indexed(Index),
    Literal {
        name: Name<'s>,
        value: &'s [u8],
        /// The 'N' bit: intermediaries must not index the field.
        never: bool,
    },
}

#[derive(Debug)]
enum Name<'s> {
    Ref(Index),
    Literal(&'s [u8]),
}

fn parse_line<'a: 's, 's>(
    r: &mut Reader<'a>,
    names: &'s mut Vec<u8>,
    values: &'s mut Vec<u8>,
) -> Result<Line<'s>, QpackError> {
    let first = r.peek()?;
    let table = |index, is_static| {
        if is_static {
            Index::Static(index)
        } else {
            Index::Relative(index)
        }
    };
    let (name, never) = match first.leading_zeros() {
        // 1Txxxxxx: Indexed Field Line.
        0 => return Ok(Line::Indexed(table(r.integer(6)?, first & 0x40 != 0))),
        // 01NTxxxx: Literal Field Line with Name Reference.
        1 => (
            Name::Ref(table(r.integer(4)?, first & 0x10 != 0)),
            first & 0x20 != 0,
        ),
        // 001NHxxx: Literal Field Line with Literal Name.
        2 => (
            Name::Literal(r.string(3, usize::MAX, names)?),
            first & 0x10 != 0,
        ),
        // 0001xxxx: Indexed Field Line with Post-Base Index.
        3 => return Ok(Line::Indexed(Index::PostBase(r.integer(4)?))),
        // 0000Nxxx: Literal Field Line with Post-Base Name Reference.
        _ => (Name::Ref(Index::PostBase(r.integer(3)?)), first & 0x08 != 0),
    };
    let value = r.string(7, usize::MAX, values)?;
    Ok(Line::Literal { name, value, never })
}

/// The fields decoded so far and the list limit.
struct FieldList<'o> {
    out: &'o mut Vec<Header>,
    size: usize,
    max: usize,
    info: Decoded,
}

impl FieldList<'_> {
    /// Appends one field unless the list limit was reached.
    fn push(&mut self, name: &str, name_len: usize, value: &[u8], never: bool) {
        let size = name_len
            .saturating_add(value.len())
            .saturating_add(ENTRY_OVERHEAD);
        if self.info.truncated || self.size.saturating_add(size) > self.max {
            self.info.truncated = true;
            return;
        }
        self.size += size;
        if never {
            self.info.never_indexed.push(self.out.len());
        }
        self.out.push(Header::new(name, value));
    }
}

/// A cursor over encoded bytes. Running out of input is [`QpackError::Truncated`],
/// with `needed` set to the input length that would get further: the encoder stream
/// waits for that much before trying again.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    needed: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            needed: 0,
        }
    }

    fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn short(&mut self, n: usize) -> QpackError {
        self.needed = self.pos.saturating_add(n);
        QpackError::Truncated
    }

    fn peek(&mut self) -> Result<u8, QpackError> {
        match self.buf.get(self.pos) {
            Some(&b) => Ok(b),
            None => Err(self.short(1)),
        }
    }

    fn byte(&mut self) -> Result<u8, QpackError> {
        let b = self.peek()?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], QpackError> {
        match self.buf.get(self.pos..self.pos.saturating_add(n)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(self.short(n)),
        }
    }

    /// A prefix integer (§4.1.1) whose prefix is the low `bits` bits (1 to 8) of the
    /// next byte.
    fn integer(&mut self, bits: u32) -> Result<u64, QpackError> {
        let max = (1u64 << bits) - 1;
        let mut value = u64::from(self.byte()?) & max;
        if value < max {
            return Ok(value);
        }
        for i in 0..MAX_INTEGER_BYTES {
            let b = self.byte()?;
            // At most 255 plus 9 groups of 7 bits: below 2^64, no overflow.
            value += u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return if value <= MAX_INTEGER {
                    Ok(value)
                } else {
                    Err(QpackError::IntegerOverflow)
                };
            }
        }
        Err(QpackError::IntegerOverflow)
    }

    /// A string literal (§4.1.2) whose length has a `bits`-bit prefix, with the
    /// Huffman flag just above it: the plain bytes borrowed from the input, or the
    /// decoded ones in `scratch`. Strings that cannot fit in `room` decoded bytes are
    /// refused as soon as their length is read.
    fn string<'s>(
        &mut self,
        bits: u32,
        room: usize,
        scratch: &'s mut Vec<u8>,
    ) -> Result<&'s [u8], QpackError>
    where
        'a: 's,
    {
        let huffman = self.peek()? & (1 << bits) != 0;
        let len = self.integer(bits)?;
        let limit = if huffman {
            room.saturating_mul(HUFFMAN_WIRE_PER_BYTE)
        } else {
            room
        };
        let len =
            usize::try_from(len)
                .ok()
                .filter(|&l| l <= limit)
                .ok_or(QpackError::StringTooLong {
                    len,
                    limit: u64::try_from(limit).unwrap_or(u64::MAX),
                })?;
        let raw = self.take(len)?;
        if !huffman {
            return Ok(raw);
        }
        scratch.clear();
        huffman_decode(raw, scratch).map_err(QpackError::Huffman)?;
        Ok(scratch)
    }
}

/// Encoders for tests, benchmarks and capture generators (we never send QPACK).
pub mod encode {
    use super::Index;
    use crate::net::hpack::encode::{huffman as huffman_code, integer};

    /// A string literal with a `bits`-bit length prefix, the Huffman flag just above
    /// it and `flags` above that.
    pub fn string(out: &mut Vec<u8>, flags: u8, bits: u32, s: &[u8], huffman: bool) {
        if huffman {
            let code = huffman_code(s);
            integer(out, flags | 1 << bits, bits, code.len() as u64);
            out.extend_from_slice(&code);
        } else {
            integer(out, flags, bits, s.len() as u64);
            out.extend_from_slice(s);
        }
    }

    /// Set Dynamic Table Capacity (§4.3.1).
    pub fn set_capacity(out: &mut Vec<u8>, capacity: u64) {
        integer(out, 0x20, 5, capacity);
    }

    /// Insert with Name Reference to the static table (§4.3.2).
    pub fn insert_with_static_name(out: &mut Vec<u8>, index: u64, value: &[u8], huffman: bool) {
        integer(out, 0xc0, 6, index);
        string(out, 0, 7, value, huffman);
    }

    /// Insert with Name Reference to the dynamic table, `relative` to the Insert Count
    /// (§4.3.2).
    pub fn insert_with_dynamic_name(out: &mut Vec<u8>, relative: u64, value: &[u8], huffman: bool) {
        integer(out, 0x80, 6, relative);
        string(out, 0, 7, value, huffman);
    }

    /// Insert with Literal Name (§4.3.3).
    pub fn insert_with_literal_name(out: &mut Vec<u8>, name: &[u8], value: &[u8], huffman: bool) {
        string(out, 0x40, 5, name, huffman);
        string(out, 0, 7, value, huffman);
    }

    /// Duplicate (§4.3.4).
    pub fn duplicate(out: &mut Vec<u8>, relative: u64) {
        integer(out, 0x00, 5, relative);
    }

    /// A field section prefix (§4.5.1); `max_entries` is the decoder's maximum
    /// capacity over 32.
    pub fn prefix(out: &mut Vec<u8>, required: u64, base: u64, max_entries: u64) {
        // With no entries allowed, 1 is as wrong an encoding as any: tests use it.
        let full_range = max_entries.saturating_mul(2).max(1);
        let encoded = if required == 0 {
            0
        } else {
            required % full_range + 1
        };
        integer(out, 0, 8, encoded);
        if base >= required {
            integer(out, 0x00, 7, base - required);
        } else {
            integer(out, 0x80, 7, required - base - 1);
        }
    }

    /// An Indexed Field Line (§4.5.2), or one with a Post-Base Index (§4.5.3).
    pub fn indexed(out: &mut Vec<u8>, index: Index) {
        match index {
            Index::Static(i) => integer(out, 0xc0, 6, i),
            Index::Relative(i) => integer(out, 0x80, 6, i),
            Index::PostBase(i) => integer(out, 0x10, 4, i),
        }
    }

    /// A Literal Field Line with Name Reference (§4.5.4), or with a Post-Base Name
    /// Reference (§4.5.5); `never` is the 'N' bit.
    pub fn literal_with_name_ref(
        out: &mut Vec<u8>,
        name: Index,
        value: &[u8],
        never: bool,
        huffman: bool,
    ) {
        match name {
            Index::Static(i) => integer(out, 0x50 | if never { 0x20 } else { 0 }, 4, i),
            Index::Relative(i) => integer(out, 0x40 | if never { 0x20 } else { 0 }, 4, i),
            Index::PostBase(i) => integer(out, if never { 0x08 } else { 0 }, 3, i),
        }
        string(out, 0, 7, value, huffman);
    }

    /// A Literal Field Line with Literal Name (§4.5.6); `never` is the 'N' bit.
    pub fn literal(out: &mut Vec<u8>, name: &[u8], value: &[u8], never: bool, huffman: bool) {
        string(out, 0x20 | if never { 0x10 } else { 0 }, 3, name, huffman);
        string(out, 0, 7, value, huffman);
    }
}

/// The static table (RFC 9204 Appendix A), index 0 first.
pub const STATIC_TABLE: [(&str, &str); 99] = [
    (":authority", ""),
    (":path", "/"),
    ("age", "0"),
    ("content-disposition", ""),
    ("content-length", "0"),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    // 10
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("referer", ""),
    ("set-cookie", ""),
    (":method", "CONNECT"),
    (":method", "DELETE"),
    (":method", "GET"),
    (":method", "HEAD"),
    (":method", "OPTIONS"),
    // 20
    (":method", "POST"),
    (":method", "PUT"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "103"),
    (":status", "200"),
    (":status", "304"),
    (":status", "404"),
    (":status", "503"),
    ("accept", "*/*"),
    // 30
    ("accept", "application/dns-message"),
    ("accept-encoding", "gzip, deflate, br"),
    ("accept-ranges", "bytes"),
    ("access-control-allow-headers", "cache-control"),
    ("access-control-allow-headers", "content-type"),
    ("access-control-allow-origin", "*"),
    ("cache-control", "max-age=0"),
    ("cache-control", "max-age=2592000"),
    ("cache-control", "max-age=604800"),
    ("cache-control", "no-cache"),
    // 40
    ("cache-control", "no-store"),
    ("cache-control", "public, max-age=31536000"),
    ("content-encoding", "br"),
    ("content-encoding", "gzip"),
    ("content-type", "application/dns-message"),
    ("content-type", "application/javascript"),
    ("content-type", "application/json"),
    ("content-type", "application/x-www-form-urlencoded"),
    ("content-type", "image/gif"),
    ("content-type", "image/jpeg"),
    // 50
    ("content-type", "image/png"),
    ("content-type", "text/css"),
    ("content-type", "text/html; charset=utf-8"),
    ("content-type", "text/plain"),
    ("content-type", "text/plain;charset=utf-8"),
    ("range", "bytes=0-"),
    ("strict-transport-security", "max-age=31536000"),
    (
        "strict-transport-security",
        "max-age=31536000; includesubdomains",
    ),
    (
        "strict-transport-security",
        "max-age=31536000; includesubdomains; preload",
    ),
    ("vary", "accept-encoding"),
    // 60
    ("vary", "origin"),
    ("x-content-type-options", "nosniff"),
    ("x-xss-protection", "1; mode=block"),
    (":status", "100"),
    (":status", "204"),
    (":status", "206"),
    (":status", "302"),
    (":status", "400"),
    (":status", "403"),
    (":status", "421"),
    // 70
    (":status", "425"),
    (":status", "500"),
    ("accept-language", ""),
    ("access-control-allow-credentials", "FALSE"),
    ("access-control-allow-credentials", "TRUE"),
    ("access-control-allow-headers", "*"),
    ("access-control-allow-methods", "get"),
    ("access-control-allow-methods", "get, post, options"),
    ("access-control-allow-methods", "options"),
    ("access-control-expose-headers", "content-length"),
    // 80
    ("access-control-request-headers", "content-type"),
    ("access-control-request-method", "get"),
    ("access-control-request-method", "post"),
    ("alt-svc", "clear"),
    ("authorization", ""),
    (
        "content-security-policy",
        "script-src 'none'; object-src 'none'; base-uri 'none'",
    ),
    ("early-data", "1"),
    ("expect-ct", ""),
    ("forwarded", ""),
    ("if-range", ""),
    // 90
    ("origin", ""),
    ("purpose", "prefetch"),
    ("server", ""),
    ("timing-allow-origin", "*"),
    ("upgrade-insecure-requests", "1"),
    ("user-agent", ""),
    ("x-forwarded-for", ""),
    ("x-frame-options", "deny"),
    ("x-frame-options", "sameorigin"),
];

#[cfg(test)]
mod tests {
    use super::encode;
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

    /// The bytes `f` encodes.
    fn bytes(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut out = Vec::new();
        f(&mut out);
        out
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn decode_all(d: &mut QpackDecoder, block: &[u8]) -> Result<Vec<(String, String)>, QpackError> {
        let mut out = Vec::new();
        d.decode(block, usize::MAX, &mut out)?;
        Ok(fields(&out))
    }

    /// (absolute index, name, value) of every entry, oldest first.
    fn table(d: &QpackDecoder) -> Vec<(u64, String, String)> {
        let oldest = d.inserts - d.table.len() as u64;
        d.table
            .iter()
            .zip(oldest..)
            .map(|(e, i)| {
                (
                    i,
                    e.name.clone(),
                    String::from_utf8_lossy(&e.value).into_owned(),
                )
            })
            .collect()
    }

    fn row(i: u64, name: &str, value: &str) -> (u64, String, String) {
        (i, name.to_string(), value.to_string())
    }

    /// Everything the encoder stream changes.
    fn snapshot(d: &QpackDecoder) -> (Vec<Entry>, usize, usize, u64, Vec<u8>) {
        (
            d.table.iter().cloned().collect(),
            d.size,
            d.capacity,
            d.inserts,
            d.pending.clone(),
        )
    }

    // RFC 9204 Appendix B, in the RFC's hex.
    const B1_SECTION: &str = "0000 510b 2f69 6e64 6578 2e68 746d 6c";
    const B2_ENCODER: &str = "3fbd01 c00f 7777 772e 6578 616d 706c 652e 636f 6d
                              c10c 2f73 616d 706c 652f 7061 7468";
    const B2_SECTION: &str = "0381 10 11";
    const B3_ENCODER: &str = "4a63 7573 746f 6d2d 6b65 790c 6375 7374 6f6d 2d76 616c 7565";
    const B4_ENCODER: &str = "02";
    const B4_SECTION: &str = "0500 80 c1 81";
    const B5_ENCODER: &str = "810d 6375 7374 6f6d 2d76 616c 7565 32";
    /// The examples' decoder allows 220 bytes: MaxEntries is 6.
    const B_MAX_CAPACITY: u64 = 220;

    fn appendix_b_decoder() -> QpackDecoder {
        let mut d = QpackDecoder::new(DEFAULT_MAX_TABLE);
        d.set_max_table_capacity(B_MAX_CAPACITY);
        d
    }

    fn appendix_b_encoder_stream() -> Vec<u8> {
        [B2_ENCODER, B3_ENCODER, B4_ENCODER, B5_ENCODER]
            .iter()
            .flat_map(|s| hex(s))
            .collect()
    }

    #[test]
    fn static_table_matches_rfc9204_appendix_a() {
        assert_eq!(STATIC_TABLE.len(), 99);
        for (i, name, value) in [
            (0, ":authority", ""),
            (1, ":path", "/"),
            (15, ":method", "CONNECT"),
            (17, ":method", "GET"),
            (25, ":status", "200"),
            (29, "accept", "*/*"),
            (52, "content-type", "text/html; charset=utf-8"),
            (62, "x-xss-protection", "1; mode=block"),
            (63, ":status", "100"),
            (
                85,
                "content-security-policy",
                "script-src 'none'; object-src 'none'; base-uri 'none'",
            ),
            (95, "user-agent", ""),
            (98, "x-frame-options", "sameorigin"),
        ] {
            assert_eq!(STATIC_TABLE[i], (name, value), "index {i}");
        }
        for (i, &(name, value)) in STATIC_TABLE.iter().enumerate() {
            assert!(
                !name.bytes().any(|b| b.is_ascii_uppercase()),
                "index {i}: {name}"
            );
            assert!(
                !STATIC_TABLE[..i].contains(&(name, value)),
                "index {i} repeats"
            );
        }
    }

    #[test]
    fn rfc9204_b1_literal_with_static_name_reference() {
        // The default maximum capacity (0) is enough: no dynamic table.
        let mut d = QpackDecoder::new(DEFAULT_MAX_TABLE);
        assert_eq!(
            decode_all(&mut d, &hex(B1_SECTION)).unwrap(),
            pairs(&[(":path", "/index.html")])
        );
        let mut block = Vec::new();
        encode::prefix(&mut block, 0, 0, 0);
        encode::literal_with_name_ref(&mut block, Index::Static(1), b"/index.html", false, false);
        assert_eq!(block, hex(B1_SECTION));
    }

    #[test]
    fn rfc9204_b2_dynamic_table() {
        let mut d = appendix_b_decoder();
        d.encoder_stream(&hex(B2_ENCODER)).unwrap();
        assert_eq!(
            table(&d),
            [
                row(0, ":authority", "www.example.com"),
                row(1, ":path", "/sample/path")
            ]
        );
        assert_eq!((d.size, d.insert_count()), (106, 2));
        assert_eq!(
            decode_all(&mut d, &hex(B2_SECTION)).unwrap(),
            pairs(&[(":authority", "www.example.com"), (":path", "/sample/path")])
        );

        let mut stream = Vec::new();
        encode::set_capacity(&mut stream, 220);
        encode::insert_with_static_name(&mut stream, 0, b"www.example.com", false);
        encode::insert_with_static_name(&mut stream, 1, b"/sample/path", false);
        assert_eq!(stream, hex(B2_ENCODER));
        let mut section = Vec::new();
        encode::prefix(&mut section, 2, 0, B_MAX_CAPACITY / 32);
        encode::indexed(&mut section, Index::PostBase(0));
        encode::indexed(&mut section, Index::PostBase(1));
        assert_eq!(section, hex(B2_SECTION));
    }

    #[test]
    fn rfc9204_b3_speculative_insert() {
        let mut d = appendix_b_decoder();
        d.encoder_stream(&hex(B2_ENCODER)).unwrap();
        d.encoder_stream(&hex(B3_ENCODER)).unwrap();
        assert_eq!(table(&d)[2], row(2, "custom-key", "custom-value"));
        assert_eq!((d.size, d.insert_count()), (160, 3));
        let mut stream = Vec::new();
        encode::insert_with_literal_name(&mut stream, b"custom-key", b"custom-value", false);
        assert_eq!(stream, hex(B3_ENCODER));
    }

    #[test]
    fn rfc9204_b4_duplicate() {
        let mut d = appendix_b_decoder();
        for step in [B2_ENCODER, B3_ENCODER, B4_ENCODER] {
            d.encoder_stream(&hex(step)).unwrap();
        }
        assert_eq!(table(&d)[3], row(3, ":authority", "www.example.com"));
        assert_eq!((d.size, d.insert_count()), (217, 4));
        assert_eq!(
            decode_all(&mut d, &hex(B4_SECTION)).unwrap(),
            pairs(&[
                (":authority", "www.example.com"),
                (":path", "/"),
                ("custom-key", "custom-value")
            ])
        );
        let mut section = Vec::new();
        encode::prefix(&mut section, 4, 4, B_MAX_CAPACITY / 32);
        encode::indexed(&mut section, Index::Relative(0));
        encode::indexed(&mut section, Index::Static(1));
        encode::indexed(&mut section, Index::Relative(1));
        assert_eq!(section, hex(B4_SECTION));
    }

    #[test]
    fn rfc9204_b5_insert_with_eviction() {
        let mut d = appendix_b_decoder();
        d.encoder_stream(&appendix_b_encoder_stream()).unwrap();
        assert_eq!(
            table(&d),
            [
                row(1, ":path", "/sample/path"),
                row(2, "custom-key", "custom-value"),
                row(3, ":authority", "www.example.com"),
                row(4, "custom-key", "custom-value2"),
            ]
        );
        assert_eq!((d.size, d.insert_count()), (215, 5));
        // Required 5 and Base 5: relative 4 is the evicted entry 0, relative 0 entry 4.
        assert_eq!(
            decode_all(&mut d, &hex("0600 84")),
            Err(QpackError::Evicted { index: 0 })
        );
        assert_eq!(
            decode_all(&mut d, &hex("0600 80")).unwrap(),
            pairs(&[("custom-key", "custom-value2")])
        );
        let mut stream = Vec::new();
        encode::insert_with_dynamic_name(&mut stream, 1, b"custom-value2", false);
        assert_eq!(stream, hex(B5_ENCODER));
    }

    #[test]
    fn prefix_integers_of_every_prefix_size() {
        for bits in 1..=8u32 {
            let max = (1u64 << bits) - 1;
            // The bits above the prefix are flags, not part of the value.
            let high = if bits == 8 { 0 } else { !0u8 << bits };
            for value in [0, 1, max - 1, max, max + 1, 127, 128, 1 << 20, MAX_INTEGER] {
                for flags in [0, high] {
                    let mut wire = Vec::new();
                    crate::net::hpack::encode::integer(&mut wire, flags, bits, value);
                    wire.push(0xee);
                    let mut r = Reader::new(&wire);
                    assert_eq!(r.integer(bits), Ok(value), "{bits} bits, {value}");
                    assert_eq!(r.pos, wire.len() - 1);
                }
            }
        }
        let mut too_big = Vec::new();
        crate::net::hpack::encode::integer(&mut too_big, 0, 5, MAX_INTEGER + 1);
        assert_eq!(
            Reader::new(&too_big).integer(5),
            Err(QpackError::IntegerOverflow)
        );
        // Padding with zero groups is accepted up to 9 continuation bytes, not past.
        let padded = [0xff, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00];
        assert_eq!(Reader::new(&padded).integer(8), Ok(255));
        let long = [
            0xff, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00,
        ];
        assert_eq!(
            Reader::new(&long).integer(8),
            Err(QpackError::IntegerOverflow)
        );
        let mut r = Reader::new(&[0x1f, 0x80]);
        assert_eq!(r.integer(5), Err(QpackError::Truncated));
        assert_eq!(r.needed, 3);
    }

    #[test]
    fn required_insert_count_wraps_around() {
        // (encoded, MaxEntries, Insert Count) → Required Insert Count.
        for (encoded, max_entries, inserts, want) in [
            (0, 0, 0, 0),
            (0, 6, 100, 0),
            (3, 6, 2, 2),
            (5, 6, 4, 4),
            (11, 6, 10, 10),
            // 12 is sent as 1: after a wrap.
            (1, 6, 13, 12),
            // Above the inserts seen (a blocked section), up to MaxEntries ahead.
            (1, 6, 6, 12),
            (3, 6, 0, 2),
            (5, 6, 1_000_003, 1_000_000),
            // The RFC's own example: a 100-byte table, 10 inserts.
            (4, 3, 10, 9),
        ] {
            assert_eq!(
                required_insert_count(encoded, max_entries, inserts),
                Ok(want),
                "{encoded} {max_entries} {inserts}"
            );
        }
        // Every value within MaxEntries of the Insert Count round-trips.
        for max_entries in 1..=20u64 {
            for inserts in 0..=100u64 {
                let low = inserts.saturating_sub(max_entries) + 1;
                for required in low..=inserts + max_entries {
                    let encoded = required % (2 * max_entries) + 1;
                    assert_eq!(
                        required_insert_count(encoded, max_entries, inserts),
                        Ok(required)
                    );
                }
            }
        }
    }

    #[test]
    fn required_insert_count_errors() {
        for (encoded, max_entries, inserts) in [
            // No dynamic table allowed.
            (1, 0, 0),
            // Past the full range (2 × MaxEntries).
            (13, 6, 100),
            // Would be 11, which no wrap of 12 with 0 inserts allows.
            (12, 6, 0),
            // Would be 0, which must be sent as 0.
            (1, 6, 0),
        ] {
            assert_eq!(
                required_insert_count(encoded, max_entries, inserts),
                Err(QpackError::BadRequiredInsertCount {
                    encoded,
                    max_entries
                })
            );
        }
        // Through decode: with no SETTINGS seen, any dynamic reference is an error.
        let mut d = QpackDecoder::new(DEFAULT_MAX_TABLE);
        assert_eq!(
            decode_all(&mut d, &hex(B2_SECTION)),
            Err(QpackError::BadRequiredInsertCount {
                encoded: 3,
                max_entries: 0
            })
        );
    }

    #[test]
    fn base_sign_bit() {
        let mut d = appendix_b_decoder();
        d.encoder_stream(&hex(B2_ENCODER)).unwrap();
        // Required 2, S=1, delta 1: Base 0 (B.2). Delta 2 would make Base -1.
        assert!(decode_all(&mut d, &hex("0381 10")).is_ok());
        assert_eq!(
            decode_all(&mut d, &hex("0382 10")),
            Err(QpackError::NegativeBase {
                required: 2,
                delta: 2
            })
        );
        assert_eq!(
            decode_all(&mut d, &hex("0080")),
            Err(QpackError::NegativeBase {
                required: 0,
                delta: 0
            })
        );
        // S=0, delta 1: Base 3, above the Required Insert Count 2; relative 1 is entry 1.
        assert_eq!(
            decode_all(&mut d, &hex("0301 81")).unwrap(),
            pairs(&[(":path", "/sample/path")])
        );
        // An empty section has no prefix.
        assert_eq!(decode_all(&mut d, &[]), Err(QpackError::Truncated));
        assert_eq!(decode_all(&mut d, &[0x03]), Err(QpackError::Truncated));
    }

    /// A decoder with a, b and c inserted (absolute 0, 1, 2), 35 bytes each.
    fn abc_decoder() -> QpackDecoder {
        let mut d = appendix_b_decoder();
        let mut stream = Vec::new();
        encode::set_capacity(&mut stream, 220);
        for (n, v) in [("a", "1"), ("b", "2"), ("c", "3")] {
            encode::insert_with_literal_name(&mut stream, n.as_bytes(), v.as_bytes(), false);
        }
        d.encoder_stream(&stream).unwrap();
        d
    }

    #[test]
    fn every_field_line_representation() {
        let mut d = abc_decoder();
        let mut block = Vec::new();
        // Base 1: entry 0 is relative 0, entries 1 and 2 are post-base 0 and 1.
        encode::prefix(&mut block, 3, 1, B_MAX_CAPACITY / 32);
        encode::indexed(&mut block, Index::Static(17));
        encode::indexed(&mut block, Index::Relative(0));
        encode::indexed(&mut block, Index::PostBase(1));
        encode::literal_with_name_ref(&mut block, Index::Static(1), b"/x", false, true);
        encode::literal_with_name_ref(&mut block, Index::Relative(0), b"v", true, false);
        encode::literal_with_name_ref(&mut block, Index::PostBase(0), b"w", true, true);
        encode::literal(&mut block, b"x-literal", b"y", true, true);
        encode::literal(&mut block, b"n", b"", false, false);
        encode::literal_with_name_ref(&mut block, Index::PostBase(1), b"z", false, false);
        let mut out = vec![Header::new("sentinel", "1")];
        let info = d.decode(&block, usize::MAX, &mut out).unwrap();
        assert_eq!(
            fields(&out[1..]),
            pairs(&[
                (":method", "GET"),
                ("a", "1"),
                ("c", "3"),
                (":path", "/x"),
                ("a", "v"),
                ("b", "w"),
                ("x-literal", "y"),
                ("n", ""),
                ("c", "z"),
            ])
        );
        // Positions in `out`, which held one field already.
        assert_eq!(
            info,
            Decoded {
                truncated: false,
                never_indexed: vec![5, 6, 7]
            }
        );
        // Sections do not change the table.
        assert_eq!(d.insert_count(), 3);
    }

    #[test]
    fn references_out_of_range_are_errors() {
        let mut d = abc_decoder();
        // Capacity 70 holds two entries: entry 0 is evicted.
        let mut shrink = Vec::new();
        encode::set_capacity(&mut shrink, 70);
        d.encoder_stream(&shrink).unwrap();
        assert_eq!(table(&d).len(), 2);
        let max_entries = B_MAX_CAPACITY / 32;
        let section = |required: u64, base: u64, line: &dyn Fn(&mut Vec<u8>)| {
            let mut block = Vec::new();
            encode::prefix(&mut block, required, base, max_entries);
            line(&mut block);
            block
        };
        for (block, want) in [
            (
                section(0, 0, &|b| encode::indexed(b, Index::Static(99))),
                QpackError::BadStaticIndex(99),
            ),
            (
                section(0, 0, &|b| {
                    encode::literal_with_name_ref(b, Index::Static(1000), b"", false, false)
                }),
                QpackError::BadStaticIndex(1000),
            ),
            (
                section(3, 3, &|b| encode::indexed(b, Index::Relative(3))),
                QpackError::BadRelativeIndex {
                    relative: 3,
                    base: 3,
                },
            ),
            (
                section(3, 3, &|b| encode::indexed(b, Index::Relative(2))),
                QpackError::Evicted { index: 0 },
            ),
            (
                section(2, 0, &|b| encode::indexed(b, Index::PostBase(2))),
                QpackError::IndexAboveRequired {
                    index: 2,
                    required: 2,
                },
            ),
            (
                section(2, 3, &|b| encode::indexed(b, Index::Relative(0))),
                QpackError::IndexAboveRequired {
                    index: 2,
                    required: 2,
                },
            ),
            (
                section(0, 0, &|b| {
                    encode::literal_with_name_ref(b, Index::PostBase(0), b"", false, false)
                }),
                QpackError::IndexAboveRequired {
                    index: 0,
                    required: 0,
                },
            ),
            (
                section(0, 0, &|b| {
                    encode::literal_with_name_ref(b, Index::Relative(0), b"", true, false)
                }),
                QpackError::BadRelativeIndex {
                    relative: 0,
                    base: 0,
                },
            ),
            (
                section(3, 0, &|b| {
                    encode::indexed(b, Index::PostBase(u64::from(u32::MAX)))
                }),
                QpackError::IndexAboveRequired {
                    index: u64::from(u32::MAX),
                    required: 3,
                },
            ),
        ] {
            let mut out = vec![Header::new("sentinel", "1")];
            assert_eq!(d.decode(&block, usize::MAX, &mut out), Err(want));
            assert_eq!(fields(&out), pairs(&[("sentinel", "1")]));
        }
        // A section error breaks nothing.
        assert!(decode_all(&mut d, &hex(B1_SECTION)).is_ok());

        // On the encoder stream, relative indices count back from the Insert Count.
        for (stream, want) in [
            (
                bytes(|s| encode::insert_with_static_name(s, 99, b"v", false)),
                QpackError::BadStaticIndex(99),
            ),
            (
                bytes(|s| encode::insert_with_dynamic_name(s, 3, b"v", false)),
                QpackError::BadRelativeIndex {
                    relative: 3,
                    base: 3,
                },
            ),
            (
                bytes(|s| encode::duplicate(s, 2)),
                QpackError::Evicted { index: 0 },
            ),
        ] {
            assert_eq!(d.clone().encoder_stream(&stream), Err(want));
        }
    }

    #[test]
    fn blocked_section_decodes_after_the_inserts() {
        let mut d = appendix_b_decoder();
        let stream = hex(B2_ENCODER);
        // Capacity and the first insert (":authority"), not the second.
        d.encoder_stream(&stream[..20]).unwrap();
        assert_eq!(d.insert_count(), 1);
        let mut out = vec![Header::new("sentinel", "1")];
        for _ in 0..2 {
            assert_eq!(
                d.decode(&hex(B2_SECTION), usize::MAX, &mut out),
                Err(QpackError::Blocked { required: 2 })
            );
            assert_eq!(fields(&out), pairs(&[("sentinel", "1")]));
        }
        d.encoder_stream(&stream[20..]).unwrap();
        d.decode(&hex(B2_SECTION), usize::MAX, &mut out).unwrap();
        assert_eq!(
            fields(&out),
            pairs(&[
                ("sentinel", "1"),
                (":authority", "www.example.com"),
                (":path", "/sample/path")
            ])
        );
    }

    #[test]
    fn encoder_stream_split_anywhere_gives_the_same_table() {
        let mut stream = appendix_b_encoder_stream();
        encode::insert_with_literal_name(&mut stream, b"x-huffman", b"some value", true);
        encode::insert_with_static_name(&mut stream, 95, b"Mozilla/5.0", true);
        encode::duplicate(&mut stream, 0);
        encode::insert_with_dynamic_name(&mut stream, 0, &[b'v'; 150], false);
        encode::set_capacity(&mut stream, 100);
        let mut whole = appendix_b_decoder();
        whole.encoder_stream(&stream).unwrap();
        let want = snapshot(&whole);
        assert_eq!(want.3, 9);
        for i in 0..=stream.len() {
            let mut d = appendix_b_decoder();
            d.encoder_stream(&stream[..i]).unwrap();
            d.encoder_stream(&stream[i..]).unwrap();
            assert_eq!(snapshot(&d), want, "split at {i}");
        }
        let mut d = appendix_b_decoder();
        for b in &stream {
            d.encoder_stream(std::slice::from_ref(b)).unwrap();
        }
        assert_eq!(snapshot(&d), want);
        // Once a string's length is known the rest is waited for, not parsed again at
        // every byte: 1 byte of name index, 2 of length, 150 of value.
        let mut d = appendix_b_decoder();
        d.encoder_stream(&hex(B2_ENCODER)).unwrap();
        let mut long = Vec::new();
        encode::insert_with_dynamic_name(&mut long, 0, &[b'v'; 150], false);
        d.encoder_stream(&long[..3]).unwrap();
        assert_eq!((d.pending.len(), d.wanted), (3, 153));
        d.encoder_stream(&long[3..152]).unwrap();
        assert_eq!(d.insert_count(), 2);
        d.encoder_stream(&long[152..]).unwrap();
        assert_eq!((d.insert_count(), d.pending.len(), d.wanted), (3, 0, 0));
    }

    #[test]
    fn encoder_stream_error_breaks_the_decoder() {
        let mut d = appendix_b_decoder();
        let mut bad = Vec::new();
        encode::set_capacity(&mut bad, 221);
        let error = QpackError::CapacityAboveMaximum {
            requested: 221,
            maximum: 220,
        };
        assert_eq!(d.encoder_stream(&bad), Err(error.clone()));
        assert_eq!(d.encoder_stream(&hex(B2_ENCODER)), Err(error.clone()));
        assert_eq!(decode_all(&mut d, &hex(B1_SECTION)), Err(error));
        assert_eq!(d.insert_count(), 0);
    }

    #[test]
    fn capacity_is_bounded_by_settings_and_cap() {
        let set = |d: &mut QpackDecoder, capacity| {
            let mut stream = Vec::new();
            encode::set_capacity(&mut stream, capacity);
            d.encoder_stream(&stream)
        };
        // No SETTINGS seen: the maximum is 0.
        let mut d = QpackDecoder::new(1024);
        assert_eq!(set(&mut d.clone(), 0), Ok(()));
        assert_eq!(
            set(&mut d.clone(), 1),
            Err(QpackError::CapacityAboveMaximum {
                requested: 1,
                maximum: 0
            })
        );
        d.set_max_table_capacity(4096);
        assert_eq!(
            set(&mut d.clone(), 2048),
            Err(QpackError::CapacityAboveCap {
                requested: 2048,
                cap: 1024
            })
        );
        assert_eq!(
            set(&mut d.clone(), 5000),
            Err(QpackError::CapacityAboveMaximum {
                requested: 5000,
                maximum: 4096
            })
        );
        assert_eq!(
            set(&mut d.clone(), u64::MAX >> 2),
            Err(QpackError::CapacityAboveMaximum {
                requested: u64::MAX >> 2,
                maximum: 4096
            })
        );
        assert_eq!(set(&mut d, 1024), Ok(()));
        // Lowering the capacity evicts, oldest first; 0 empties the table.
        let mut stream = Vec::new();
        for v in [b"1", b"2", b"3"] {
            encode::insert_with_static_name(&mut stream, 2, v, false);
        }
        d.encoder_stream(&stream).unwrap();
        assert_eq!(d.size, 3 * 36);
        set(&mut d, 72).unwrap();
        assert_eq!(table(&d), [row(1, "age", "2"), row(2, "age", "3")]);
        set(&mut d, 0).unwrap();
        assert_eq!((d.table.len(), d.size, d.insert_count()), (0, 0, 3));
    }

    #[test]
    fn inserts_may_name_or_duplicate_the_entry_they_evict() {
        let mut d = appendix_b_decoder();
        let mut stream = Vec::new();
        // 60 bytes hold one entry.
        encode::set_capacity(&mut stream, 60);
        encode::insert_with_static_name(&mut stream, 0, b"www.example.com", false);
        encode::insert_with_dynamic_name(&mut stream, 0, b"x", false);
        d.encoder_stream(&stream).unwrap();
        assert_eq!(table(&d), [row(1, ":authority", "x")]);
        let mut dup = Vec::new();
        encode::duplicate(&mut dup, 0);
        d.encoder_stream(&dup).unwrap();
        assert_eq!(table(&d), [row(2, ":authority", "x")]);
        assert_eq!(d.size, 43);
    }

    #[test]
    fn the_dynamic_table_counts_in_the_tables_budget() {
        use crate::net::message_budget::MessageBudget;
        // Room for two 43-byte entries of header fields (the headroom included), not three.
        let budget = MessageBudget::new(100);
        let mut d = appendix_b_decoder();
        d.set_budget(BudgetShare::of(&budget));
        let mut stream = Vec::new();
        encode::set_capacity(&mut stream, 200);
        encode::insert_with_literal_name(&mut stream, b"a", b"0123456789", false);
        encode::insert_with_literal_name(&mut stream, b"b", b"0123456789", false);
        d.encoder_stream(&stream).unwrap();
        assert_eq!(budget.held(), 86);
        // A copy holds a share of its own.
        let copy = d.clone();
        assert_eq!(budget.held(), 172);
        drop(copy);
        // The third does not fit the budget (it would the table): the table is out of
        // step from then on, as after any encoder-stream error.
        let mut third = Vec::new();
        encode::insert_with_literal_name(&mut third, b"c", b"0123456789", false);
        let over = Err(QpackError::OverBudget { size: 43 });
        assert_eq!(d.encoder_stream(&third), over);
        assert_eq!(d.encoder_stream(&[]), over);
        assert_eq!(budget.held(), 86);
        drop(d);
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn oversized_strings_and_entries_are_errors() {
        let mut d = appendix_b_decoder();
        let mut stream = Vec::new();
        encode::set_capacity(&mut stream, 100);
        d.encoder_stream(&stream).unwrap();
        // A literal name of 69 bytes cannot fit in 100 - 32: refused from its length
        // alone, before its bytes arrive.
        let mut name = Vec::new();
        encode::string(&mut name, 0x40, 5, &[b'n'; 69], false);
        assert_eq!(
            d.clone().encoder_stream(&name[..2]),
            Err(QpackError::StringTooLong { len: 69, limit: 68 })
        );
        // The value gets what the name left.
        let mut fits = Vec::new();
        encode::insert_with_literal_name(&mut fits, &[b'n'; 60], &[b'v'; 8], false);
        assert!(d.clone().encoder_stream(&fits).is_ok());
        let mut over = Vec::new();
        encode::insert_with_literal_name(&mut over, &[b'n'; 60], &[b'v'; 9], false);
        assert_eq!(
            d.clone().encoder_stream(&over),
            Err(QpackError::StringTooLong { len: 9, limit: 8 })
        );
        // Huffman strings may take 4 wire bytes a byte; decoded, they must fit.
        let mut wide = Vec::new();
        encode::insert_with_static_name(&mut wide, 2, &[b'a'; 100], true);
        assert_eq!(
            d.clone().encoder_stream(&wide),
            Err(QpackError::EntryTooLarge {
                size: 135,
                capacity: 100
            })
        );
        // Byte 0xff has a 26-bit code: 100 of them take 325 bytes, more than 4 × 68.
        let mut long = Vec::new();
        encode::string(&mut long, 0x80, 7, &[0xff; 100], true);
        assert_eq!(
            d.clone()
                .encoder_stream(&[&[0xc2][..], &long[..3]].concat()),
            Err(QpackError::StringTooLong {
                len: 325,
                limit: 272
            })
        );
    }

    #[test]
    fn field_list_limit_drops_fields() {
        let mut d = abc_decoder();
        let mut block = Vec::new();
        encode::prefix(&mut block, 3, 3, B_MAX_CAPACITY / 32);
        encode::indexed(&mut block, Index::Static(17)); // 7 + 3 + 32 = 42
        encode::literal(&mut block, &[0xff, b'x'], b"", true, false); // 2 + 32 = 34
        encode::literal(&mut block, b"big", &[b'x'; 100], true, false);
        encode::indexed(&mut block, Index::Relative(0));
        let mut out = Vec::new();
        let info = d.decode(&block, 76, &mut out).unwrap();
        // The size counts the raw name bytes, not the lossy replacement (4 bytes).
        assert_eq!(
            fields(&out),
            pairs(&[(":method", "GET"), ("\u{fffd}x", "")])
        );
        assert_eq!(
            info,
            Decoded {
                truncated: true,
                never_indexed: vec![1]
            }
        );
        // The fields after the first one dropped are dropped too.
        let mut out = Vec::new();
        assert!(d.decode(&block, 75, &mut out).unwrap().truncated);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn truncations_and_byte_flips_never_panic() {
        let stream = appendix_b_encoder_stream();
        let sections = [
            hex(B1_SECTION),
            hex(B2_SECTION),
            hex(B4_SECTION),
            hex("0600 80"),
        ];
        let mut full = appendix_b_decoder();
        full.encoder_stream(&stream).unwrap();
        let check = |d: &QpackDecoder| {
            assert!(d.size <= d.capacity && d.capacity <= DEFAULT_MAX_TABLE);
            let sum: usize = d.table.iter().map(Entry::size).sum();
            assert_eq!(sum, d.size);
        };
        // A prefix of a valid encoder stream is always fine: the rest may follow.
        for i in 0..=stream.len() {
            let mut d = appendix_b_decoder();
            assert_eq!(d.encoder_stream(&stream[..i]), Ok(()));
            check(&d);
        }
        for section in &sections {
            for i in 0..section.len() {
                let mut out = Vec::new();
                let _ = full.clone().decode(&section[..i], 1 << 16, &mut out);
            }
        }
        for mask in [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff] {
            for i in 0..stream.len() {
                let mut flipped = stream.clone();
                flipped[i] ^= mask;
                let mut d = appendix_b_decoder();
                let _ = d.encoder_stream(&flipped);
                check(&d);
                for section in &sections {
                    let _ = d.decode(section, 1 << 16, &mut Vec::new());
                }
            }
            for section in &sections {
                for i in 0..section.len() {
                    let mut flipped = section.clone();
                    flipped[i] ^= mask;
                    let _ = full.clone().decode(&flipped, 1 << 16, &mut Vec::new());
                }
            }
        }
    }

    /// An encoder-stream instruction for the model test; indices are taken modulo the
    /// live entries.
    #[derive(Debug, Clone)]
    enum Op {
        Literal(Vec<u8>, Vec<u8>, bool),
        StaticName(u64, Vec<u8>, bool),
        DynamicName(usize, Vec<u8>, bool),
        Duplicate(usize),
        Capacity(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        let bytes = |n| prop::collection::vec(any::<u8>(), 0..n);
        prop_oneof![
            (bytes(8), bytes(24), any::<bool>()).prop_map(|(n, v, h)| Op::Literal(n, v, h)),
            (0u64..99, bytes(24), any::<bool>()).prop_map(|(i, v, h)| Op::StaticName(i, v, h)),
            (any::<usize>(), bytes(24), any::<bool>())
                .prop_map(|(i, v, h)| Op::DynamicName(i, v, h)),
            any::<usize>().prop_map(Op::Duplicate),
            (0u64..=300).prop_map(Op::Capacity),
        ]
    }

    /// A naive dynamic table: every live entry, oldest first, sizes summed anew.
    #[derive(Default)]
    struct Model {
        capacity: usize,
        live: VecDeque<Entry>,
        inserts: u64,
    }

    impl Model {
        fn evict(&mut self) {
            while self.live.iter().map(Entry::size).sum::<usize>() > self.capacity {
                self.live.pop_front();
            }
        }

        /// The live entry `i` back from the newest, `i` taken modulo the live count;
        /// with its relative index.
        fn pick(&self, i: usize) -> Option<(u64, Entry)> {
            let relative = i.checked_rem(self.live.len())?;
            let entry = self.live.get(self.live.len() - 1 - relative)?;
            Some((relative as u64, entry.clone()))
        }

        /// Encodes `op` and applies it, unless the encoder could not send it.
        fn apply(&mut self, op: &Op, stream: &mut Vec<u8>) {
            let (entry, encoded) = match op {
                Op::Capacity(c) => {
                    encode::set_capacity(stream, *c);
                    self.capacity = *c as usize;
                    self.evict();
                    return;
                }
                Op::Literal(n, v, h) => (
                    Entry::literal(n, v),
                    bytes(|s| encode::insert_with_literal_name(s, n, v, *h)),
                ),
                Op::StaticName(i, v, h) => (
                    Entry::literal(STATIC_TABLE[*i as usize].0.as_bytes(), v),
                    bytes(|s| encode::insert_with_static_name(s, *i, v, *h)),
                ),
                Op::DynamicName(i, v, h) => {
                    let Some((relative, named)) = self.pick(*i) else {
                        return;
                    };
                    (
                        Entry {
                            value: v.clone(),
                            ..named
                        },
                        bytes(|s| encode::insert_with_dynamic_name(s, relative, v, *h)),
                    )
                }
                Op::Duplicate(i) => {
                    let Some((relative, entry)) = self.pick(*i) else {
                        return;
                    };
                    (entry, bytes(|s| encode::duplicate(s, relative)))
                }
            };
            if entry.size() > self.capacity {
                return;
            }
            stream.extend_from_slice(&encoded);
            self.live.push_back(entry);
            self.inserts += 1;
            self.evict();
        }
    }

    proptest! {
        #[test]
        fn sections_decode_against_a_naive_table(
            ops in prop::collection::vec(op(), 0..60),
            split in any::<prop::sample::Index>(),
            base_offset in 0u64..6,
            huffman in any::<bool>(),
        ) {
            let mut model = Model::default();
            let mut stream = Vec::new();
            for op in &ops {
                model.apply(op, &mut stream);
            }
            let mut d = QpackDecoder::new(DEFAULT_MAX_TABLE);
            d.set_max_table_capacity(300);
            let at = split.index(stream.len() + 1);
            d.encoder_stream(&stream[..at]).unwrap();
            d.encoder_stream(&stream[at..]).unwrap();
            prop_assert_eq!(d.insert_count(), model.inserts);
            prop_assert_eq!(&d.table, &model.live);

            // Reference every live entry, on either side of a Base that may be below,
            // inside or above the live window, indexed or by name.
            let oldest = model.inserts - model.live.len() as u64;
            let required = if model.live.is_empty() { 0 } else { model.inserts };
            let base = (oldest + base_offset).saturating_sub(3);
            let mut block = Vec::new();
            encode::prefix(&mut block, required, base, 300 / 32);
            let mut want = Vec::new();
            for (abs, e) in (oldest..).zip(&model.live) {
                let index = if abs < base {
                    Index::Relative(base - 1 - abs)
                } else {
                    Index::PostBase(abs - base)
                };
                if abs % 2 == 0 {
                    encode::indexed(&mut block, index);
                    want.push((e.name.clone(), e.value.clone()));
                } else {
                    encode::literal_with_name_ref(&mut block, index, b"v", false, huffman);
                    want.push((e.name.clone(), b"v".to_vec()));
                }
            }
            let mut out = Vec::new();
            d.decode(&block, usize::MAX, &mut out).unwrap();
            let got: Vec<(String, Vec<u8>)> =
                out.into_iter().map(|h| (h.name.into_owned(), h.value)).collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn arbitrary_input_never_panics(
            stream in prop::collection::vec(any::<u8>(), 0..300),
            split in any::<prop::sample::Index>(),
            block in prop::collection::vec(any::<u8>(), 0..300),
        ) {
            let mut d = QpackDecoder::new(1024);
            d.set_max_table_capacity(u64::MAX);
            let at = split.index(stream.len() + 1);
            let _ = d.encoder_stream(&stream[..at]);
            let _ = d.encoder_stream(&stream[at..]);
            let mut out = Vec::new();
            let _ = d.decode(&block, 4096, &mut out);
            prop_assert!(d.size <= d.capacity && d.capacity <= 1024);
            prop_assert!(d.pending.len() <= HUFFMAN_WIRE_PER_BYTE * 1024 + 20);
        }
    }
}
