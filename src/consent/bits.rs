//! Bit-level reading shared by the consent-string decoders ([`super::tcf`],
//! [`super::gpp`]): base64url text to bits, then fixed-width integers, booleans,
//! letters, decisecond timestamps, Fibonacci integers and id ranges.
//!
//! Every read is bounds-checked and fails with a [`DecodeError`] naming the field and
//! the bit offset where it starts; nothing here panics on hostile input, and id sets
//! never grow beyond [`MAX_ID`] + 1 entries however many ranges a string claims.

use std::fmt;

/// Longest consent string (or GPP section) we decode, in characters. Real TC strings
/// with disclosed-vendor segments reach a few kilobytes; 64 KiB leaves ample room and
/// bounds the work an attacker can ask for.
pub const MAX_CONSENT_STRING_LEN: usize = 65_536;

/// Highest vendor / section id a 16-bit field can carry; id sets are bitsets of this size.
pub const MAX_ID: u16 = u16::MAX;

/// Why a consent string could not be decoded, with where and in which field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} at {unit} {offset}: {kind}", unit = self.kind.unit())]
pub struct DecodeError {
    /// The field being read, prefixed with its segment or section (`core.cmpId`).
    pub field: String,
    /// Bit offset in the segment for bit-level errors, character offset for text errors.
    pub offset: usize,
    /// What went wrong.
    pub kind: DecodeErrorKind,
}

/// The kinds of [`DecodeError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// Nothing to decode.
    Empty,
    /// Longer than [`MAX_CONSENT_STRING_LEN`].
    TooLong { len: usize },
    /// A character outside the base64url alphabet.
    InvalidBase64 { found: char },
    /// The field needs more bits than remain.
    Truncated { needed: usize, available: usize },
    /// A version this decoder does not know.
    UnsupportedVersion { found: u64 },
    /// A value the format does not allow.
    Invalid { reason: String },
    /// A character the format does not allow (text formats such as US Privacy).
    InvalidText { reason: String },
}

impl DecodeErrorKind {
    fn unit(&self) -> &'static str {
        match self {
            DecodeErrorKind::Empty
            | DecodeErrorKind::TooLong { .. }
            | DecodeErrorKind::InvalidBase64 { .. }
            | DecodeErrorKind::InvalidText { .. } => "char",
            _ => "bit",
        }
    }
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeErrorKind::Empty => write!(f, "empty"),
            DecodeErrorKind::TooLong { len } => {
                write!(f, "{len} characters, limit {MAX_CONSENT_STRING_LEN}")
            }
            DecodeErrorKind::InvalidBase64 { found } => {
                write!(f, "{found:?} is not a base64url character")
            }
            DecodeErrorKind::Truncated { needed, available } => {
                write!(f, "truncated: needs {needed} bits, {available} left")
            }
            DecodeErrorKind::UnsupportedVersion { found } => {
                write!(f, "unsupported version {found}")
            }
            DecodeErrorKind::Invalid { reason } | DecodeErrorKind::InvalidText { reason } => {
                write!(f, "{reason}")
            }
        }
    }
}

impl DecodeError {
    pub(crate) fn new(field: impl Into<String>, offset: usize, kind: DecodeErrorKind) -> Self {
        DecodeError {
            field: field.into(),
            offset,
            kind,
        }
    }

    pub(crate) fn invalid(
        field: impl Into<String>,
        offset: usize,
        reason: impl Into<String>,
    ) -> Self {
        DecodeError::new(
            field,
            offset,
            DecodeErrorKind::Invalid {
                reason: reason.into(),
            },
        )
    }

    pub(crate) fn invalid_text(
        field: impl Into<String>,
        offset: usize,
        reason: impl Into<String>,
    ) -> Self {
        DecodeError::new(
            field,
            offset,
            DecodeErrorKind::InvalidText {
                reason: reason.into(),
            },
        )
    }

    /// Prefixes the field with the segment or section it was read in.
    pub(crate) fn within(mut self, prefix: &str) -> Self {
        self.field = format!("{prefix}.{}", self.field);
        self
    }
}

/// Refuses a whole consent string longer than [`MAX_CONSENT_STRING_LEN`].
pub(crate) fn check_len(text: &str) -> Result<(), DecodeError> {
    if text.len() > MAX_CONSENT_STRING_LEN {
        return Err(DecodeError::new(
            "string",
            0,
            DecodeErrorKind::TooLong { len: text.len() },
        ));
    }
    Ok(())
}

/// Maps a base64url character to its 6-bit value.
fn sextet(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'-' => Some(62),
        b'_' => Some(63),
        _ => None,
    }
}

/// Bits of one base64url segment, read front to back.
#[derive(Debug, Clone)]
pub(crate) struct BitReader {
    /// One 6-bit value per input character.
    sextets: Vec<u8>,
    len: usize,
    pos: usize,
}

impl BitReader {
    /// Decodes a base64url segment (no padding; trailing `=` is tolerated as the Java
    /// reference library does). `field` names the segment in errors; `base` is the
    /// character offset of the segment in the whole string.
    pub(crate) fn from_base64url(
        text: &str,
        field: &str,
        base: usize,
    ) -> Result<Self, DecodeError> {
        if text.is_empty() {
            return Err(DecodeError::new(field, base, DecodeErrorKind::Empty));
        }
        if text.len() > MAX_CONSENT_STRING_LEN {
            return Err(DecodeError::new(
                field,
                base,
                DecodeErrorKind::TooLong { len: text.len() },
            ));
        }
        let body = text.trim_end_matches('=');
        if body.is_empty() {
            return Err(DecodeError::new(field, base, DecodeErrorKind::Empty));
        }
        let mut sextets = Vec::with_capacity(body.len());
        for (i, c) in body.char_indices() {
            match u8::try_from(c).ok().and_then(sextet) {
                Some(v) => sextets.push(v),
                None => {
                    return Err(DecodeError::new(
                        field,
                        base + i,
                        DecodeErrorKind::InvalidBase64 { found: c },
                    ))
                }
            }
        }
        let len = sextets.len() * 6;
        Ok(BitReader {
            sextets,
            len,
            pos: 0,
        })
    }

    /// The bit offset of the next read.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Bits not yet read.
    pub(crate) fn remaining(&self) -> usize {
        self.len - self.pos
    }

    fn bit_at(&self, i: usize) -> bool {
        // `i < self.len` is checked by every caller, so the index is in bounds.
        (self.sextets[i / 6] >> (5 - i % 6)) & 1 == 1
    }

    fn need(&self, n: usize, field: &str) -> Result<(), DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::new(
                field,
                self.pos,
                DecodeErrorKind::Truncated {
                    needed: n,
                    available: self.remaining(),
                },
            ));
        }
        Ok(())
    }

    /// Reads an unsigned big-endian integer of `n` ≤ 64 bits.
    pub(crate) fn int(&mut self, n: usize, field: &str) -> Result<u64, DecodeError> {
        debug_assert!(n <= 64);
        self.need(n, field)?;
        let mut v: u64 = 0;
        for i in 0..n {
            v = (v << 1) | u64::from(self.bit_at(self.pos + i));
        }
        self.pos += n;
        Ok(v)
    }

    /// Reads an integer of `n` ≤ 16 bits.
    pub(crate) fn u16(&mut self, n: usize, field: &str) -> Result<u16, DecodeError> {
        debug_assert!(n <= 16);
        // At most 16 bits were read, so the value fits.
        self.int(n, field).map(|v| v as u16)
    }

    /// Reads an integer of `n` ≤ 8 bits.
    pub(crate) fn u8(&mut self, n: usize, field: &str) -> Result<u8, DecodeError> {
        debug_assert!(n <= 8);
        // At most 8 bits were read, so the value fits.
        self.int(n, field).map(|v| v as u8)
    }

    /// Reads one bit.
    pub(crate) fn bool(&mut self, field: &str) -> Result<bool, DecodeError> {
        self.need(1, field)?;
        let b = self.bit_at(self.pos);
        self.pos += 1;
        Ok(b)
    }

    /// Reads `n` bits as booleans (fixed-length bit fields).
    pub(crate) fn bools(&mut self, n: usize, field: &str) -> Result<Vec<bool>, DecodeError> {
        self.need(n, field)?;
        let v = (0..n).map(|i| self.bit_at(self.pos + i)).collect();
        self.pos += n;
        Ok(v)
    }

    /// Reads `n` bits and returns the 1-based numbers of the set ones.
    pub(crate) fn bitfield_ids(&mut self, n: usize, field: &str) -> Result<Vec<u16>, DecodeError> {
        self.need(n, field)?;
        let mut ids = Vec::new();
        for i in 0..n {
            if self.bit_at(self.pos + i) {
                // n comes from a 16-bit field, so i + 1 ≤ 65535.
                ids.push((i + 1) as u16);
            }
        }
        self.pos += n;
        Ok(ids)
    }

    /// Reads a two-letter code (two 6-bit letters, 0 = `A`).
    pub(crate) fn letters2(&mut self, field: &str) -> Result<String, DecodeError> {
        let at = self.pos;
        let mut s = String::with_capacity(2);
        for _ in 0..2 {
            let v = self.u8(6, field)?;
            if v > 25 {
                return Err(DecodeError::invalid(
                    field,
                    at,
                    format!("letter value {v} is not A-Z"),
                ));
            }
            s.push(char::from(b'A' + v));
        }
        Ok(s)
    }

    /// Reads a 36-bit count of deciseconds since the Unix epoch.
    pub(crate) fn deciseconds(&mut self, field: &str) -> Result<u64, DecodeError> {
        self.int(36, field)
    }

    /// Reads a Fibonacci-coded positive integer (terminated by two consecutive 1 bits).
    pub(crate) fn fibonacci(&mut self, field: &str) -> Result<u64, DecodeError> {
        let start = self.pos;
        // Current and next Fibonacci terms, F(2) and F(3); `None` once past u64.
        let (mut a, mut b) = (Some(1u64), Some(2u64));
        let mut value: u64 = 0;
        let mut prev = false;
        loop {
            if self.remaining() == 0 {
                return Err(DecodeError::new(
                    field,
                    start,
                    DecodeErrorKind::Truncated {
                        needed: self.pos - start + 1,
                        available: self.pos - start,
                    },
                ));
            }
            let bit = self.bit_at(self.pos);
            self.pos += 1;
            if bit && prev {
                return Ok(value);
            }
            if bit {
                value = a.and_then(|a| value.checked_add(a)).ok_or_else(|| {
                    DecodeError::invalid(field, start, "Fibonacci integer overflows 64 bits")
                })?;
            }
            prev = bit;
            let next = match (a, b) {
                (Some(x), Some(y)) => x.checked_add(y),
                _ => None,
            };
            a = b;
            b = next;
        }
    }

    /// Reads a TCF range section: a 12-bit entry count, then entries of a 1-bit
    /// is-range flag and one or two 16-bit ids. Returns the sorted, deduplicated ids.
    pub(crate) fn tcf_ranges(&mut self, field: &str) -> Result<Vec<u16>, DecodeError> {
        let count = self.u16(12, field)?;
        let mut set = IdSet::new();
        for _ in 0..count {
            self.tcf_range_entry(&mut set, field)?;
        }
        Ok(set.to_vec())
    }

    /// Reads one TCF range entry into `set`.
    pub(crate) fn tcf_range_entry(
        &mut self,
        set: &mut IdSet,
        field: &str,
    ) -> Result<(), DecodeError> {
        let at = self.pos;
        let is_range = self.bool(field)?;
        let start = self.u16(16, field)?;
        let end = if is_range {
            self.u16(16, field)?
        } else {
            start
        };
        if end < start {
            return Err(DecodeError::invalid(
                field,
                at,
                format!("range {start}-{end} ends before it starts"),
            ));
        }
        set.insert_range(start, end);
        Ok(())
    }

    /// Reads a TCF vendor section: max id (16), encoding flag, then bit field or ranges.
    pub(crate) fn vendor_section(&mut self, field: &str) -> Result<Vec<u16>, DecodeError> {
        let max = self.u16(16, field)?;
        if self.bool(field)? {
            self.tcf_ranges(field)
        } else {
            self.bitfield_ids(usize::from(max), field)
        }
    }

    /// Reads a GPP Fibonacci range: a 12-bit count, then entries of an is-range flag and
    /// Fibonacci-coded offsets from the previous id. At most `limit` ids are accepted.
    pub(crate) fn fibonacci_ranges(
        &mut self,
        limit: usize,
        field: &str,
    ) -> Result<Vec<u64>, DecodeError> {
        let at = self.pos;
        let count = self.int(12, field)?;
        let mut ids = Vec::new();
        let mut last: u64 = 0;
        let too_many = || DecodeError::invalid(field, at, format!("more than {limit} ids"));
        let overflow = || DecodeError::invalid(field, at, "id overflows 64 bits");
        for _ in 0..count {
            let is_range = self.bool(field)?;
            let start = last
                .checked_add(self.fibonacci(field)?)
                .ok_or_else(overflow)?;
            let end = if is_range {
                start
                    .checked_add(self.fibonacci(field)?)
                    .ok_or_else(overflow)?
            } else {
                start
            };
            if usize::try_from(end - start).map_or(true, |n| ids.len() + n >= limit) {
                return Err(too_many());
            }
            ids.extend(start..=end);
            last = end;
        }
        Ok(ids)
    }
}

/// A set of 16-bit ids stored as a 65 536-bit bitset (8 KiB), so a string claiming
/// thousands of overlapping ranges costs bounded memory and time.
#[derive(Debug, Clone)]
pub(crate) struct IdSet {
    words: Vec<u64>,
}

impl IdSet {
    pub(crate) fn new() -> Self {
        IdSet {
            words: vec![0; (usize::from(MAX_ID) + 1) / 64],
        }
    }

    /// Sets every id in `start..=end`, a word at a time.
    pub(crate) fn insert_range(&mut self, start: u16, end: u16) {
        let (s, e) = (usize::from(start), usize::from(end));
        let (sw, ew) = (s / 64, e / 64);
        for w in sw..=ew {
            let lo = if w == sw { s % 64 } else { 0 };
            let hi = if w == ew { e % 64 } else { 63 };
            let mask = (u64::MAX >> (63 - (hi - lo))) << lo;
            self.words[w] |= mask;
        }
    }

    /// The ids in ascending order.
    pub(crate) fn to_vec(&self) -> Vec<u16> {
        let mut out = Vec::new();
        for (w, &word) in self.words.iter().enumerate() {
            let mut rest = word;
            while rest != 0 {
                let bit = rest.trailing_zeros() as usize;
                // w < 1024 and bit < 64, so the id is at most 65535.
                out.push((w * 64 + bit) as u16);
                rest &= rest - 1;
            }
        }
        out
    }
}

/// Formats deciseconds since the epoch as RFC 3339 with milliseconds
/// (`2020-01-01T00:00:00.000Z`), the form `@iabtcf/core` prints.
pub(crate) fn deciseconds_rfc3339(ds: u64) -> String {
    // 36 bits of deciseconds is about 218 years, always a valid time.
    let ms = i128::from(ds) * 100;
    match time::OffsetDateTime::from_unix_timestamp_nanos(ms * 1_000_000) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.millisecond()
        ),
        Err(_) => format!("{ds} deciseconds"),
    }
}

/// Test-only encoder: the inverse of [`BitReader`], used to build vectors.
#[cfg(test)]
pub(crate) mod writer {
    /// Accumulates bits and renders them as unpadded base64url.
    #[derive(Debug, Default, Clone)]
    pub(crate) struct BitWriter {
        pub(crate) bits: Vec<bool>,
    }

    impl BitWriter {
        pub(crate) fn int(&mut self, n: usize, v: u64) -> &mut Self {
            for i in (0..n).rev() {
                self.bits.push((v >> i) & 1 == 1);
            }
            self
        }

        pub(crate) fn bool(&mut self, b: bool) -> &mut Self {
            self.bits.push(b);
            self
        }

        pub(crate) fn letters(&mut self, s: &str) -> &mut Self {
            for c in s.bytes() {
                self.int(6, u64::from(c - b'A'));
            }
            self
        }

        /// Bits for ids 1..=n: set where `ids` contains the number.
        pub(crate) fn bitfield(&mut self, n: usize, ids: &[u16]) -> &mut Self {
            for i in 1..=n {
                self.bits.push(ids.contains(&(i as u16)));
            }
            self
        }

        pub(crate) fn fibonacci(&mut self, v: u64) -> &mut Self {
            assert!(v > 0);
            let mut fibs = vec![1u64, 2];
            while *fibs.last().unwrap() <= v {
                let n = fibs[fibs.len() - 1] + fibs[fibs.len() - 2];
                fibs.push(n);
            }
            let mut code = vec![false; fibs.len()];
            let mut rest = v;
            for i in (0..fibs.len()).rev() {
                if fibs[i] <= rest {
                    code[i] = true;
                    rest -= fibs[i];
                }
            }
            while code.last() == Some(&false) {
                code.pop();
            }
            self.bits.extend(code);
            self.bits.push(true);
            self
        }

        /// A GPP Fibonacci range of single ids (ascending).
        pub(crate) fn fibonacci_ids(&mut self, ids: &[u64]) -> &mut Self {
            self.int(12, ids.len() as u64);
            let mut last = 0;
            for &id in ids {
                self.bool(false).fibonacci(id - last);
                last = id;
            }
            self
        }

        pub(crate) fn base64url(&self) -> String {
            const ALPHABET: &[u8; 64] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            self.bits
                .chunks(6)
                .map(|c| {
                    let mut v = 0usize;
                    for i in 0..6 {
                        v = (v << 1) | usize::from(c.get(i).copied().unwrap_or(false));
                    }
                    char::from(ALPHABET[v])
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::writer::BitWriter;
    use super::*;
    use proptest::prelude::*;

    fn reader(w: &BitWriter) -> BitReader {
        BitReader::from_base64url(&w.base64url(), "t", 0).unwrap()
    }

    #[test]
    fn reads_ints_and_bools_in_order() {
        let mut w = BitWriter::default();
        w.int(6, 2).int(36, 15_777_000_000).bool(true).letters("EN");
        let mut r = reader(&w);
        assert_eq!(r.int(6, "v").unwrap(), 2);
        assert_eq!(r.deciseconds("c").unwrap(), 15_777_000_000);
        assert!(r.bool("b").unwrap());
        assert_eq!(r.letters2("l").unwrap(), "EN");
    }

    #[test]
    fn truncation_names_field_and_offset() {
        let mut r = BitReader::from_base64url("AA", "seg", 0).unwrap();
        r.int(10, "a").unwrap();
        let e = r.int(6, "cmpId").unwrap_err();
        assert_eq!(e.field, "cmpId");
        assert_eq!(e.offset, 10);
        assert_eq!(
            e.kind,
            DecodeErrorKind::Truncated {
                needed: 6,
                available: 2
            }
        );
        assert_eq!(
            e.to_string(),
            "cmpId at bit 10: truncated: needs 6 bits, 2 left"
        );
    }

    #[test]
    fn bad_base64_names_the_character_offset() {
        let e = BitReader::from_base64url("AB+C", "core", 3).unwrap_err();
        assert_eq!(e.offset, 5);
        assert_eq!(e.kind, DecodeErrorKind::InvalidBase64 { found: '+' });
        assert!(BitReader::from_base64url("", "core", 0).is_err());
        assert!(BitReader::from_base64url("==", "core", 0).is_err());
        assert!(BitReader::from_base64url("QQ==", "core", 0).is_ok());
    }

    #[test]
    fn letters_beyond_z_are_rejected() {
        let mut w = BitWriter::default();
        w.int(6, 30).int(6, 0);
        assert!(reader(&w).letters2("lang").is_err());
    }

    #[test]
    fn fibonacci_known_codes() {
        // 1 = "11", 2 = "011", 3 = "0011", 4 = "1011", 7 = "01011".
        for (v, code) in [
            (1, "11"),
            (2, "011"),
            (3, "0011"),
            (4, "1011"),
            (7, "01011"),
        ] {
            let mut w = BitWriter::default();
            w.fibonacci(v);
            let s: String = w.bits.iter().map(|&b| if b { '1' } else { '0' }).collect();
            assert_eq!(s, code, "{v}");
            assert_eq!(reader(&w).fibonacci("f").unwrap(), v);
        }
    }

    #[test]
    fn fibonacci_without_terminator_is_truncated_not_a_panic() {
        let long = "A".repeat(500); // all zero bits
        let mut r = BitReader::from_base64url(&long, "s", 0).unwrap();
        assert!(r.fibonacci("f").is_err());
        let ones = "_".repeat(50);
        let mut r = BitReader::from_base64url(&ones, "s", 0).unwrap();
        assert_eq!(r.fibonacci("f").unwrap(), 1);
        // 0101…01 never terminates but its value overflows first.
        let mut w = BitWriter::default();
        for _ in 0..100 {
            w.bool(true).bool(false);
        }
        assert!(reader(&w).fibonacci("f").is_err());
    }

    #[test]
    fn huge_range_counts_stay_bounded() {
        let mut w = BitWriter::default();
        w.int(12, 4095);
        for _ in 0..4095 {
            w.bool(true).int(16, 1).int(16, 65535);
        }
        let ids = reader(&w).tcf_ranges("v").unwrap();
        assert_eq!(ids.len(), 65535);
        assert_eq!(ids.first(), Some(&1));
        assert_eq!(ids.last(), Some(&65535));
        // Claimed count larger than the data: an error, not a huge allocation.
        let mut w = BitWriter::default();
        w.int(12, 4095).bool(false).int(16, 7);
        assert!(reader(&w).tcf_ranges("v").is_err());
    }

    #[test]
    fn reversed_range_is_an_error() {
        let mut w = BitWriter::default();
        w.int(12, 1).bool(true).int(16, 9).int(16, 3);
        let e = reader(&w).tcf_ranges("vendorConsents").unwrap_err();
        assert!(e.to_string().contains("9-3"), "{e}");
    }

    #[test]
    fn fibonacci_ranges_respect_the_limit() {
        let mut w = BitWriter::default();
        w.int(12, 1).bool(true).fibonacci(1).fibonacci(1_000_000);
        assert!(reader(&w).fibonacci_ranges(10, "ids").is_err());
        let mut w = BitWriter::default();
        w.int(12, 2)
            .bool(false)
            .fibonacci(2)
            .bool(true)
            .fibonacci(4)
            .fibonacci(2);
        assert_eq!(
            reader(&w).fibonacci_ranges(10, "ids").unwrap(),
            vec![2, 6, 7, 8]
        );
    }

    #[test]
    fn times_print_like_iabtcf() {
        assert_eq!(deciseconds_rfc3339(160), "1970-01-01T00:00:16.000Z");
        assert_eq!(
            deciseconds_rfc3339(15_778_368_001),
            "2020-01-01T00:00:00.100Z"
        );
        assert_eq!(deciseconds_rfc3339((1 << 36) - 1).len(), 24);
    }

    proptest! {
        #[test]
        fn id_set_matches_naive_model(ranges in proptest::collection::vec((0u16..2000, 0u16..200), 0..20)) {
            let mut set = IdSet::new();
            let mut naive = std::collections::BTreeSet::new();
            for (s, len) in ranges {
                let e = s.saturating_add(len);
                set.insert_range(s, e);
                naive.extend(s..=e);
            }
            prop_assert_eq!(set.to_vec(), naive.into_iter().collect::<Vec<_>>());
        }

        #[test]
        fn fibonacci_round_trips(v in 1u64..u64::MAX / 2) {
            let mut w = BitWriter::default();
            w.fibonacci(v);
            prop_assert_eq!(reader(&w).fibonacci("f").unwrap(), v);
        }

        #[test]
        fn random_text_never_panics(s in "\\PC{0,64}") {
            if let Ok(mut r) = BitReader::from_base64url(&s, "s", 0) {
                let _ = r.vendor_section("v");
                let _ = r.fibonacci_ranges(100, "f");
            }
        }
    }
}
