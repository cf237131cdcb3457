//! A JSON scanner that records where every string and number value sits and under
//! which JSON path, so a hit found in the raw text can be reported as
//! `body:$.device.adid` (DESIGN.md §2: JSON is matched on the raw decoded text).
//!
//! The scanner is a loop over bytes with an explicit stack (no recursion: 100 000 `[`
//! cannot overflow anything), stops at [`MAX_JSON_NESTING`] and [`MAX_JSON_VALUES`], and
//! allocates only two vectors of small fixed-size records: paths are rebuilt from
//! parent links when a hit asks for one. Before the loop, one SIMD pass marks every
//! `"` and `\` of the text in a bitmap (one bit per byte, an eighth of the text's size:
//! `Stops`), so the end of each string is a bit search rather than a byte search.
//! Malformed or truncated input keeps the values found before the fault. Several
//! top-level values in a row (JSON lines) are accepted, also with one comma between
//! two (event batches sent as objects joined by commas, without the brackets).

use std::cell::Cell;
use std::fmt;
use std::ops::Range;

#[cfg(test)]
mod model;
mod strings_walk;

use strings_walk::walk_strings;

/// Deepest nesting of arrays and objects indexed; deeper input stops the scan.
pub const MAX_JSON_NESTING: usize = 512;
/// Most values indexed in one document (a record costs 24 bytes).
pub const MAX_JSON_VALUES: usize = 1_000_000;
/// Longest key rendered in a path; longer keys are cut and marked with `…`.
const MAX_KEY_CHARS: usize = 128;

const NO_PARENT: u32 = u32::MAX;

/// How a value's parent refers to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    /// A top-level value.
    Root,
    Index(u32),
    /// An object member; the key's raw text (between the quotes) in the data.
    Name {
        start: u32,
        end: u32,
    },
}

/// An array or object, so a path can walk up from a value.
#[derive(Debug, Clone, Copy)]
struct Node {
    parent: u32,
    key: Key,
}

/// The kind of an indexed value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// A string; the span is its raw text between the quotes. `escaped` when it holds
    /// backslash escapes, so the raw text differs from the string's value.
    String {
        escaped: bool,
    },
    Number,
}

#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    end: u32,
    parent: u32,
    key: Key,
    kind: ValueKind,
}

/// One indexed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    /// Its number in the index (for [`JsonIndex::path`]).
    pub id: usize,
    /// Byte range in the data (string contents without the quotes).
    pub range: Range<usize>,
    pub kind: ValueKind,
}

/// Byte spans and paths of the string and number values of a JSON text.
#[derive(Clone, Default)]
pub struct JsonIndex {
    spans: Vec<Span>,
    nodes: Vec<Node>,
}

impl fmt::Debug for JsonIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonIndex")
            .field("values", &self.spans.len())
            .field("containers", &self.nodes.len())
            .finish()
    }
}

/// How a scan ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Complete,
    /// Not JSON from byte `at` on (`at == len` for truncated input).
    Malformed {
        at: usize,
    },
    /// Nesting deeper than [`MAX_JSON_NESTING`] at byte `at`.
    NestingLimit {
        at: usize,
    },
    /// More than [`MAX_JSON_VALUES`] values; those after it are not indexed.
    ValueLimit,
    /// The text is too large for 32-bit offsets; nothing indexed.
    TooLarge,
}

impl JsonIndex {
    /// Number of indexed values.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether no value was indexed.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The indexed values, in text order.
    pub fn values(&self) -> impl Iterator<Item = Value> + '_ {
        self.spans.iter().enumerate().map(|(id, s)| Value {
            id,
            range: s.start as usize..s.end as usize,
            kind: s.kind,
        })
    }

    /// The value whose span contains all of `range`, if any.
    pub fn value_at(&self, range: &Range<usize>) -> Option<usize> {
        // Spans are in text order and do not overlap.
        let after = self
            .spans
            .partition_point(|s| (s.start as usize) <= range.start);
        let id = after.checked_sub(1)?;
        let s = &self.spans[id];
        (range.end <= s.end as usize).then_some(id)
    }

    /// The JSON path of value `id` (`$.events[3].id`, `$['a.b']`) in `data`, the text
    /// the index was built from.
    pub fn path(&self, data: &[u8], id: usize) -> String {
        let Some(span) = self.spans.get(id) else {
            return "$".into();
        };
        let mut keys = vec![span.key];
        let mut parent = span.parent;
        // Each node's parent was pushed before it, so this walk ends.
        while let Some(n) = self.nodes.get(parent as usize) {
            keys.push(n.key);
            parent = n.parent;
        }
        let mut out = String::from("$");
        for k in keys.iter().rev() {
            match *k {
                Key::Root => {}
                Key::Index(i) => {
                    out.push('[');
                    out.push_str(&i.to_string());
                    out.push(']');
                }
                Key::Name { start, end } => {
                    let raw = data.get(start as usize..end as usize).unwrap_or(&[]);
                    push_key(&mut out, &String::from_utf8_lossy(&unescape(raw)));
                }
            }
        }
        out
    }
}

fn push_key(out: &mut String, key: &str) {
    let plain = !key.is_empty()
        && !key.starts_with(|c: char| c.is_ascii_digit())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let cut: String = key.chars().take(MAX_KEY_CHARS).collect();
    let ellipsis = if cut.len() < key.len() { "…" } else { "" };
    if plain {
        out.push('.');
        out.push_str(&cut);
        out.push_str(ellipsis);
    } else {
        out.push_str("['");
        for c in cut.chars() {
            if c == '\'' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push_str(ellipsis);
        out.push_str("']");
    }
}

/// The object key right before the value starting at `start` (string contents
/// start after the quote), or `None` when the value is not an object member or
/// the key is escaped. Cheap: looks back over `"key" :` and whitespace only.
pub fn key_before(json: &[u8], start: usize) -> Option<&[u8]> {
    let mut i = start.min(json.len());
    if i > 0 && json[i - 1] == b'"' {
        i -= 1; // the opening quote of a string value
    }
    while i > 0 && json[i - 1].is_ascii_whitespace() {
        i -= 1;
    }
    if i == 0 || json[i - 1] != b':' {
        return None;
    }
    i -= 1;
    while i > 0 && json[i - 1].is_ascii_whitespace() {
        i -= 1;
    }
    if i == 0 || json[i - 1] != b'"' {
        return None;
    }
    let end = i - 1;
    let open = memchr::memrchr(b'"', &json[..end])?;
    let key = &json[open + 1..end];
    (!key.contains(&b'\\')).then_some(key)
}

/// Whether `data`, after leading whitespace, starts like a JSON object or array.
pub fn looks_like_json(data: &[u8]) -> bool {
    let t = strip_bom(data).trim_ascii_start();
    match t.first() {
        Some(b'{') => matches!(t[1..].trim_ascii_start().first(), Some(b'"' | b'}')),
        Some(b'[') => matches!(
            t[1..].trim_ascii_start().first(),
            Some(b'"' | b'{' | b'[' | b']' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n')
        ),
        _ => false,
    }
}

/// `data` without a leading UTF-8 byte order mark.
fn strip_bom(data: &[u8]) -> &[u8] {
    data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data)
}

#[derive(Debug, Clone, Copy)]
struct Frame {
    node: u32,
    object: bool,
    count: u32,
}

/// Indexes the values of `data`.
pub fn scan(data: &[u8]) -> (JsonIndex, Outcome) {
    scan_with(data, MAX_JSON_NESTING, MAX_JSON_VALUES)
}

/// The start of [`scan`]'s index of `data`: every value that starts at or before
/// `pos` (and the containers above them), plus at most one after it. For a range
/// starting at `pos`, [`JsonIndex::value_at`] and [`JsonIndex::path`] answer as on
/// the whole index (values are indexed in text order and do not overlap; a value's
/// containers are indexed before it), so a hit's JSON path costs a walk up to the
/// hit rather than an index of the whole text.
pub fn scan_upto(data: &[u8], pos: usize) -> JsonIndex {
    let mut sink = Upto {
        index: JsonIndex::default(),
        pos,
    };
    walk(data, MAX_JSON_NESTING, MAX_JSON_VALUES, &mut sink);
    sink.index
}

/// The sink of [`scan_upto`].
struct Upto {
    index: JsonIndex,
    pos: usize,
}

impl Sink for Upto {
    fn container(&mut self, parent: u32, key: Key) {
        self.index.container(parent, key);
    }

    fn value(&mut self, id: usize, span: Span) {
        self.index.value(id, span);
    }

    fn done(&self) -> bool {
        self.index
            .spans
            .last()
            .is_some_and(|s| s.start as usize > self.pos)
    }
}

/// [`scan`] with explicit limits.
pub fn scan_with(data: &[u8], max_nesting: usize, max_values: usize) -> (JsonIndex, Outcome) {
    let mut index = JsonIndex::default();
    let outcome = walk(data, max_nesting, max_values, &mut index);
    (index, outcome)
}

/// A string value found by [`strings`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringValue {
    /// Its number among all values (as [`JsonIndex::path`] takes it).
    pub id: usize,
    /// Its raw text between the quotes.
    pub range: Range<usize>,
    /// Whether it holds backslash escapes.
    pub escaped: bool,
}

/// The same walk as [`scan`], with the same limits and outcome, but nothing stored:
/// `each` sees every string value in text order. The decoder looks into strings on
/// every message and needs paths only for the few values where it finds something;
/// not building the index for every JSON text saves a fifth of the JSON work.
pub fn strings(data: &[u8], each: impl FnMut(StringValue)) -> Outcome {
    strings_noting_keys(data, each, |_| 0).0
}

/// [`strings`], also returning the union (bitwise or) of `key_class` over the member
/// keys (raw text between the quotes) that string or number values sit directly
/// under: what later readers of the text would otherwise find out with searches of
/// their own ("is there a value under a key named like this?").
pub fn strings_noting_keys(
    data: &[u8],
    each: impl FnMut(StringValue),
    key_class: impl Fn(&[u8]) -> u8,
) -> (Outcome, u8) {
    strings_within::<MAX_JSON_NESTING, MAX_JSON_VALUES>(data, each, key_class)
}

/// [`strings_noting_keys`] with other limits (constants, as the walk's are).
fn strings_within<const MAX_NESTING: usize, const MAX_VALUES: usize>(
    data: &[u8],
    each: impl FnMut(StringValue),
    key_class: impl Fn(&[u8]) -> u8,
) -> (Outcome, u8) {
    if u32::try_from(data.len()).is_err() {
        return (Outcome::TooLarge, 0);
    }
    with_stops(data, |stops| {
        if stops.quotes_only {
            walk_strings::<_, _, true, MAX_NESTING, MAX_VALUES>(data, stops, &key_class, each)
        } else {
            walk_strings::<_, _, false, MAX_NESTING, MAX_VALUES>(data, stops, &key_class, each)
        }
    })
}

/// Receives what [`walk`] finds, in text order.
trait Sink {
    /// An array or object opens; containers are numbered from 0 in this order.
    fn container(&mut self, parent: u32, key: Key);
    /// A string or number value; values are numbered from 0 in this order.
    fn value(&mut self, id: usize, span: Span);
    /// Whether the sink has what it needs: asked after each value, `true` ends the walk.
    #[inline(always)]
    fn done(&self) -> bool {
        false
    }
}

impl Sink for JsonIndex {
    fn container(&mut self, parent: u32, key: Key) {
        self.nodes.push(Node { parent, key });
    }

    fn value(&mut self, _id: usize, span: Span) {
        self.spans.push(span);
    }
}

/// The scanner behind [`scan`] and [`strings`]. The walk over a text without any
/// backslash (most app JSON) is compiled apart, so that it takes every stop for a
/// closing quote without a test per string.
fn walk<S: Sink>(data: &[u8], max_nesting: usize, max_values: usize, sink: &mut S) -> Outcome {
    if u32::try_from(data.len()).is_err() {
        return Outcome::TooLarge;
    }
    with_stops(data, |stops| {
        if stops.quotes_only {
            walk_stops::<S, true>(data, stops, max_nesting, max_values, sink)
        } else {
            walk_stops::<S, false>(data, stops, max_nesting, max_values, sink)
        }
    })
}

/// `f` of the [`Stops`] of `data`, built in the thread's spare vector.
#[inline(always)]
fn with_stops<T>(data: &[u8], f: impl FnOnce(&Stops) -> T) -> T {
    let stops = Stops::new_in(data, SPARE_WORDS.try_with(Cell::take).unwrap_or_default());
    let result = f(&stops);
    // Kept unless a huge text made it large.
    if stops.words.capacity() <= MAX_SPARE_WORDS {
        // Fails only while the thread is being torn down; it is then dropped.
        let _ = SPARE_WORDS.try_with(|spare| spare.set(stops.words));
    }
    result
}

thread_local! {
    /// The thread's spare vector for the stop bitmap of [`walk`]: a capture holds
    /// thousands of small JSON texts, and each allocated its own. Taken out of the
    /// cell while a walk runs.
    static SPARE_WORDS: Cell<Vec<u64>> = const { Cell::new(Vec::new()) };
}

/// The largest stop bitmap kept for the next walk: that of a 1 MiB text.
const MAX_SPARE_WORDS: usize = 1 << 14;

/// [`walk`] once the length is checked and `stops` are found; `QUOTES_ONLY` is
/// `stops.quotes_only`. Where the walk stands is where it is in the code, not a
/// state variable: the top of the outer loop reads a value (after `:`, `,`, the
/// first element of an array, or at the top level), the inner loop what follows a
/// value. Each turn of the outer loop is one value, and the common shapes
/// (`,"key":` and `},{` after a value, `]}` closing) take no dispatch on a state.
/// Never inlined: within the decoder's larger functions its loop shared their
/// registers and spilled.
#[inline(never)]
fn walk_stops<S: Sink, const QUOTES_ONLY: bool>(
    data: &[u8],
    stops: &Stops,
    max_nesting: usize,
    max_values: usize,
    sink: &mut S,
) -> Outcome {
    let len = data.len();
    // Offsets fit in u32: checked by `walk`.
    let at32 = |i: usize| i as u32;
    let mut stack: Vec<Frame> = Vec::new();
    let mut key = Key::Root;
    // A top-level value was read (the text is complete when it ends between values).
    let mut seen_value = false;
    let mut values = 0usize;
    let mut nodes = 0u32;
    let mut i = len - strip_bom(data).len();
    'value: loop {
        let Some(b) = next_token(data, &mut i) else {
            // Between top-level values, or inside one (after `[`, `:` or `,`).
            return if stack.is_empty() && seen_value {
                Outcome::Complete
            } else {
                Outcome::Malformed { at: len }
            };
        };
        // Only containers and values need it (and only the index uses it).
        let parent = stack.last().map_or(NO_PARENT, |f| f.node);
        match b {
            b'{' | b'[' => {
                if stack.len() >= max_nesting {
                    return Outcome::NestingLimit { at: i };
                }
                let node = nodes;
                // At most one container per byte: below u32::MAX (checked by `walk`).
                nodes += 1;
                sink.container(parent, key);
                let object = b == b'{';
                stack.push(Frame {
                    node,
                    object,
                    count: 0,
                });
                i += 1;
                let Some(first) = next_token(data, &mut i) else {
                    return Outcome::Malformed { at: len };
                };
                match (first, object) {
                    // Empty: closed at once, then what follows a value.
                    (b'}', true) | (b']', false) => {
                        stack.pop();
                        i += 1;
                    }
                    (_, true) => {
                        match member_key::<QUOTES_ONLY>(data, stops, &mut i) {
                            Ok(k) => key = k,
                            Err(outcome) => return outcome,
                        }
                        continue 'value;
                    }
                    (_, false) => {
                        key = Key::Index(0);
                        continue 'value;
                    }
                }
            }
            b'"' => {
                let Some((end, escaped)) = string_end_as::<QUOTES_ONLY>(data, stops, i + 1) else {
                    return Outcome::Malformed { at: len };
                };
                if values >= max_values {
                    return Outcome::ValueLimit;
                }
                sink.value(
                    values,
                    Span {
                        start: at32(i + 1),
                        end: at32(end),
                        parent,
                        key,
                        kind: ValueKind::String { escaped },
                    },
                );
                values += 1;
                if sink.done() {
                    return Outcome::Complete;
                }
                i = end + 1;
            }
            b'-' | b'0'..=b'9' => {
                let end = number_end(data, i);
                if end == i + 1 && b == b'-' {
                    return Outcome::Malformed { at: i };
                }
                if values >= max_values {
                    return Outcome::ValueLimit;
                }
                sink.value(
                    values,
                    Span {
                        start: at32(i),
                        end: at32(end),
                        parent,
                        key,
                        kind: ValueKind::Number,
                    },
                );
                values += 1;
                if sink.done() {
                    return Outcome::Complete;
                }
                i = end;
            }
            b't' | b'f' | b'n' => match literal_end(data, i) {
                Ok(end) => i = end,
                Err(malformed) => return malformed,
            },
            _ => return Outcome::Malformed { at: i },
        }
        // What follows a value: `,` (then the next member's key, or the next
        // element), or the close of its container (then what follows that).
        loop {
            let Some(top) = stack.last_mut() else {
                // Between top-level values (JSON lines, `1 2`, `{…},{…}`).
                key = Key::Root;
                seen_value = true;
                if next_token(data, &mut i) == Some(b',') {
                    i += 1;
                }
                continue 'value;
            };
            let Some(b) = next_token(data, &mut i) else {
                return Outcome::Malformed { at: len };
            };
            // A comma first: three in four separators here.
            if b == b',' {
                i += 1;
                if top.object {
                    match member_key::<QUOTES_ONLY>(data, stops, &mut i) {
                        Ok(k) => key = k,
                        Err(outcome) => return outcome,
                    }
                } else {
                    top.count = top.count.saturating_add(1);
                    key = Key::Index(top.count);
                }
                continue 'value;
            }
            match (b, top.object) {
                (b'}', true) | (b']', false) => {
                    stack.pop();
                    i += 1;
                }
                _ => return Outcome::Malformed { at: i },
            }
        }
    }
}

/// The byte at `*i` or, when that is whitespace, the first one after it (moving
/// `*i` there); `None` at the end of `data`. Compact JSON has no whitespace: one
/// compare settles it (every JSON whitespace byte is at most `b' '`). The loop over
/// whitespace is out of line: inlined at each of a walk's reads it crowded the walk's
/// registers.
#[inline(always)]
fn next_token(data: &[u8], i: &mut usize) -> Option<u8> {
    let b = *data.get(*i)?;
    if b > b' ' {
        return Some(b);
    }
    // By value: a reference to `i` kept it in memory all through the walk.
    *i = after_whitespace(data, *i);
    data.get(*i).copied()
}

/// The first byte at or after `i` that is no JSON whitespace (`data.len()` if none).
/// Runs of spaces (indentation) are passed eight bytes a step. Not `#[cold]`: in a
/// pretty-printed text it runs before every token.
#[inline(never)]
fn after_whitespace(data: &[u8], mut i: usize) -> usize {
    loop {
        while let Some(word) = data.get(i..i + 8) {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(word);
            // Zero bytes where there is a space.
            let other = u64::from_le_bytes(bytes) ^ 0x2020_2020_2020_2020;
            if other != 0 {
                i += (other.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
        match data.get(i) {
            Some(b' ' | b'\t' | b'\n' | b'\r') => i += 1,
            _ => return i,
        }
    }
}

/// An object member's key and its colon, from `*i` (after `{` or `,`; whitespace
/// allowed around the key): the key, with `*i` moved past the colon, or the outcome
/// that ends the walk (the byte that does not fit, or the end of the text).
#[inline(always)]
fn member_key<const QUOTES_ONLY: bool>(
    data: &[u8],
    stops: &Stops,
    i: &mut usize,
) -> Result<Key, Outcome> {
    let len = data.len();
    match next_token(data, i) {
        Some(b'"') => {}
        Some(_) => return Err(Outcome::Malformed { at: *i }),
        None => return Err(Outcome::Malformed { at: len }),
    }
    let Some((end, _)) = string_end_as::<QUOTES_ONLY>(data, stops, *i + 1) else {
        return Err(Outcome::Malformed { at: len });
    };
    // Offsets fit in u32: `walk` checked the length.
    let key = Key::Name {
        start: (*i + 1) as u32,
        end: end as u32,
    };
    *i = end + 1;
    match next_token(data, i) {
        Some(b':') => {
            *i += 1;
            Ok(key)
        }
        Some(_) => Err(Outcome::Malformed { at: *i }),
        None => Err(Outcome::Malformed { at: len }),
    }
}

/// The index of the quote closing a string whose contents start at `from`, and
/// whether the string holds escapes; `None` when the input ends first. `stops` must
/// be the [`Stops`] of `data`. (The walk calls [`string_end_as`] directly.)
#[cfg(test)]
fn string_end(data: &[u8], stops: &Stops, from: usize) -> Option<(usize, bool)> {
    if stops.quotes_only {
        string_end_as::<true>(data, stops, from)
    } else {
        string_end_as::<false>(data, stops, from)
    }
}

/// `string_end` (the tests' entry) where `QUOTES_ONLY` is `stops.quotes_only`, known to
/// the caller.
#[inline(always)]
fn string_end_as<const QUOTES_ONLY: bool>(
    data: &[u8],
    stops: &Stops,
    from: usize,
) -> Option<(usize, bool)> {
    string_end_by::<QUOTES_ONLY>(data, |at| stops.next(at), from)
}

/// [`string_end_as`] with the stops found by `next_stop` (the first `"` or `\` at
/// or after a position): the bitmap itself, or a cursor over it.
#[inline(always)]
fn string_end_by<const QUOTES_ONLY: bool>(
    data: &[u8],
    mut next_stop: impl FnMut(usize) -> Option<usize>,
    from: usize,
) -> Option<(usize, bool)> {
    if QUOTES_ONLY {
        // Every stop is a quote: no need to look at the byte.
        return Some((next_stop(from)?, false));
    }
    let mut i = from;
    let mut escaped = false;
    loop {
        let j = next_stop(i)?;
        if *data.get(j)? == b'"' {
            return Some((j, escaped));
        }
        // A backslash: the byte after it is escaped, whatever it is.
        escaped = true;
        i = j + 2;
    }
}

/// Where the `"` and `\` bytes of a text are: one bit per byte, 64 bytes a word,
/// found 16 bytes at a time before the walk starts. The walk then finds the end of
/// each string with a shift and a count of trailing zeros instead of a search per
/// string (string ends were a third of the walk: app JSON is made of short strings).
struct Stops {
    words: Vec<u64>,
    /// The text holds no `\` (as most app JSON): every stop is a quote.
    quotes_only: bool,
}

impl Stops {
    #[cfg(test)]
    fn new(data: &[u8]) -> Stops {
        Stops::new_in(data, Vec::new())
    }

    /// The stops of `data`, in `words` (emptied first; its capacity reused).
    fn new_in(data: &[u8], mut words: Vec<u64>) -> Stops {
        let blocks = data.chunks_exact(64);
        let rest = blocks.remainder();
        words.clear();
        words.reserve(data.len() / 64 + 1);
        #[cfg(target_arch = "x86_64")]
        let mut backslashes = if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 is present (checked just above).
            unsafe { stop_words_avx2(blocks, &mut words) }
        } else {
            stop_words(blocks, &mut words)
        };
        #[cfg(not(target_arch = "x86_64"))]
        let mut backslashes = stop_words(blocks, &mut words);
        if !rest.is_empty() {
            // Zero bytes past the end are no stops.
            let mut last = [0u8; 64];
            last[..rest.len()].copy_from_slice(rest);
            let (stops, escapes) = stop_bits(&last);
            words.push(stops);
            backslashes |= escapes;
        }
        Stops {
            words,
            quotes_only: backslashes == 0,
        }
    }

    /// The first `"` or `\` at or after `from`.
    #[inline]
    fn next(&self, from: usize) -> Option<usize> {
        let w = from / 64;
        // The word shifted down to `from` rather than masked: the common stop in the
        // same word is then `from` plus a count, one shift on the walk's chain of
        // dependent steps instead of two and a merge of the word's index.
        let ahead = *self.words.get(w)? >> (from % 64);
        if ahead != 0 {
            return Some(from + ahead.trailing_zeros() as usize);
        }
        let (w, bits) = self.word_after(w)?;
        Some(w * 64 + bits.trailing_zeros() as usize)
    }

    /// The first word after word `w` that holds a stop: its index and its bits.
    #[inline]
    fn word_after(&self, mut w: usize) -> Option<(usize, u64)> {
        loop {
            w += 1;
            let bits = *self.words.get(w)?;
            if bits != 0 {
                return Some((w, bits));
            }
        }
    }
}

/// The stop word of each of `blocks` appended to `words`; non-zero exactly when a
/// block holds a `\`.
fn stop_words(blocks: std::slice::ChunksExact<'_, u8>, words: &mut Vec<u64>) -> u64 {
    let mut backslashes = 0u64;
    // An exact-size `extend` writes the words without a capacity check each.
    words.extend(blocks.map(|block| {
        // Always 64 bytes (`chunks_exact`); the fallback is never taken.
        let block = <&[u8; 64]>::try_from(block).unwrap_or(&[0; 64]);
        let (stops, escapes) = stop_bits(block);
        backslashes |= escapes;
        stops
    }));
    backslashes
}

/// [`stop_words`] 32 bytes per compare: two loads per block where SSE2 takes four,
/// and the backslashes of all blocks gathered in a register, turned into bits once.
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn stop_words_avx2(blocks: std::slice::ChunksExact<'_, u8>, words: &mut Vec<u64>) -> u64 {
    use std::arch::x86_64::{
        _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_or_si256,
        _mm256_set1_epi8, _mm256_setzero_si256,
    };
    let quote = _mm256_set1_epi8(b'"' as i8);
    let backslash = _mm256_set1_epi8(b'\\' as i8);
    let mut escapes = _mm256_setzero_si256();
    words.extend(blocks.map(|block| {
        // Always 64 bytes (`chunks_exact`); the fallback is never taken.
        let block = <&[u8; 64]>::try_from(block).unwrap_or(&[0; 64]);
        // SAFETY: the two unaligned loads read bytes 0..32 and 32..64 of `block`,
        // which is 64 bytes long.
        let (lo, hi) = unsafe {
            (
                _mm256_loadu_si256(block.as_ptr().cast()),
                _mm256_loadu_si256(block.as_ptr().add(32).cast()),
            )
        };
        let (e_lo, e_hi) = (
            _mm256_cmpeq_epi8(lo, backslash),
            _mm256_cmpeq_epi8(hi, backslash),
        );
        escapes = _mm256_or_si256(escapes, _mm256_or_si256(e_lo, e_hi));
        let bits = |l, e| {
            u64::from(_mm256_movemask_epi8(_mm256_or_si256(_mm256_cmpeq_epi8(l, quote), e)) as u32)
        };
        bits(lo, e_lo) | bits(hi, e_hi) << 32
    }));
    u64::from(_mm256_movemask_epi8(escapes) as u32)
}

/// Bit `k` set where `block[k]` is `"` or `\`, and a value that is non-zero exactly
/// when the block holds a `\`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn stop_bits(block: &[u8; 64]) -> (u64, u64) {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    // SAFETY: SSE2 is part of the x86_64 baseline, so these intrinsics are always
    // available; the four loads read bytes 0..16, 16..32, 32..48 and 48..64 of
    // `block`, which is 64 bytes long (unaligned loads are allowed). Each lane is
    // loaded once, straight from the text (the loop over `chunks_exact(16)` this
    // replaces copied every block to the stack first).
    unsafe {
        let quote = _mm_set1_epi8(b'"' as i8);
        let backslash = _mm_set1_epi8(b'\\' as i8);
        let at = block.as_ptr();
        let lane = |k: usize| _mm_loadu_si128(at.add(16 * k).cast());
        let (l0, l1, l2, l3) = (lane(0), lane(1), lane(2), lane(3));
        let (e0, e1, e2, e3) = (
            _mm_cmpeq_epi8(l0, backslash),
            _mm_cmpeq_epi8(l1, backslash),
            _mm_cmpeq_epi8(l2, backslash),
            _mm_cmpeq_epi8(l3, backslash),
        );
        let bits = |l: __m128i, e: __m128i| {
            u64::from(_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(l, quote), e)) as u16)
        };
        let stops = bits(l0, e0) | bits(l1, e1) << 16 | bits(l2, e2) << 32 | bits(l3, e3) << 48;
        // Whether there is a backslash is all the caller needs: the lanes' compares
        // are OR-ed together and turned into bits once.
        let escapes = _mm_or_si128(_mm_or_si128(e0, e1), _mm_or_si128(e2, e3));
        (stops, u64::from(_mm_movemask_epi8(escapes) as u16))
    }
}

/// Bit `k` set where `block[k]` is `"` or `\`, and where it is `\`.
#[cfg_attr(target_arch = "x86_64", cfg(test))]
fn stop_bits_bytewise(block: &[u8; 64]) -> (u64, u64) {
    block
        .iter()
        .enumerate()
        .fold((0, 0), |(bits, escapes), (k, &b)| {
            (
                bits | u64::from(b == b'"' || b == b'\\') << k,
                escapes | u64::from(b == b'\\') << k,
            )
        })
}

#[cfg(not(target_arch = "x86_64"))]
use stop_bits_bytewise as stop_bits;

/// End of the literal `true`, `false` or `null` starting at `from` (whose first byte is
/// `t`, `f` or `n`); a literal that differs is malformed where it starts, one cut short
/// at the end of `data`.
pub(super) fn literal_end(data: &[u8], from: usize) -> Result<usize, Outcome> {
    let word: &[u8] = match data.get(from) {
        Some(b't') => b"true",
        Some(b'f') => b"false",
        _ => b"null",
    };
    let have = data
        .get(from..data.len().min(from + word.len()))
        .unwrap_or_default();
    if !word.starts_with(have) {
        return Err(Outcome::Malformed { at: from });
    }
    if have.len() < word.len() {
        return Err(Outcome::Malformed { at: data.len() });
    }
    Ok(from + word.len())
}

/// The end of the number starting at `from`: the first byte after it that is not a
/// digit, `.`, `e`, `E`, `+` or `-`.
#[inline]
fn number_end(data: &[u8], from: usize) -> usize {
    let mut i = from + 1;
    // Runs of digits (timestamps, ids: most of a number) eight bytes a step; the
    // byte loop below takes what stops them, so the end is where it always was.
    while let Some(word) = data.get(i..i + 8) {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        let non_digits = non_digit_bytes(u64::from_le_bytes(bytes));
        if non_digits != 0 {
            i += (non_digits.trailing_zeros() / 8) as usize;
            break;
        }
        i += 8;
    }
    // One table load per byte: the byte that ends a number (`,`, `}`) was a chain of
    // range compares and a bit test.
    while let Some(&b) = data.get(i) {
        if !NUMBER_BYTE[usize::from(b)] {
            break;
        }
        i += 1;
    }
    i
}

/// The bytes a number's end runs over: digits, `.`, `e`, `E`, `+` and `-`. A
/// constant, so that each walk that inlines [`number_end`] has it at hand (as a
/// static of this module it was reached through the global offset table).
const NUMBER_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = matches!(b as u8, b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-');
        b += 1;
    }
    table
};

/// The high bit of each byte of `word` set where that byte is not an ASCII digit.
#[inline(always)]
fn non_digit_bytes(word: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Digits become 0..=9; `+ 0x76` carries into the high bit from 10 up, and never
    // out of a byte (the high bit is masked off first and tested on its own).
    let t = word ^ 0x3030_3030_3030_3030;
    (((t & LOW7) + 0x7676_7676_7676_7676) | t) & HIGH
}

/// The value of a JSON string from its raw text between the quotes, as UTF-8 bytes.
/// Invalid escapes are kept as written; lone surrogates become U+FFFD.
pub fn unescape(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let Some(off) = memchr::memchr(b'\\', &raw[i..]) else {
            out.extend_from_slice(&raw[i..]);
            break;
        };
        out.extend_from_slice(&raw[i..i + off]);
        i += off;
        let simple = match raw.get(i + 1) {
            Some(b'"') => Some(b'"'),
            Some(b'\\') => Some(b'\\'),
            Some(b'/') => Some(b'/'),
            Some(b'b') => Some(8),
            Some(b'f') => Some(12),
            Some(b'n') => Some(b'\n'),
            Some(b'r') => Some(b'\r'),
            Some(b't') => Some(b'\t'),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            i += 2;
            continue;
        }
        let Some(u) = hex4(raw, i + 2).filter(|_| raw.get(i + 1) == Some(&b'u')) else {
            out.push(b'\\');
            i += 1;
            continue;
        };
        i += 6;
        let c = if (0xd800..0xdc00).contains(&u) {
            match (raw.get(i..i + 2), hex4(raw, i + 2)) {
                (Some(b"\\u"), Some(lo)) if (0xdc00..0xe000).contains(&lo) => {
                    i += 6;
                    char::from_u32(0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00))
                }
                _ => None,
            }
        } else {
            char::from_u32(u)
        };
        let mut buf = [0u8; 4];
        out.extend_from_slice(
            c.unwrap_or(char::REPLACEMENT_CHARACTER)
                .encode_utf8(&mut buf)
                .as_bytes(),
        );
    }
    out
}

fn hex4(raw: &[u8], at: usize) -> Option<u32> {
    let h = raw.get(at..at + 4)?;
    let s = std::str::from_utf8(h).ok()?;
    if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

#[cfg(test)]
pub(super) mod tests {
    #[test]
    fn key_before_values() {
        let j = br#"{"a": {"consent" : "xyz", "gdpr":1, "n":[2]}}"#;
        let at = |needle: &[u8]| memchr::memmem::find(j, needle).unwrap();
        assert_eq!(key_before(j, at(b"xyz")), Some(&b"consent"[..]));
        assert_eq!(key_before(j, at(b"1,")), Some(&b"gdpr"[..]));
        assert_eq!(key_before(j, at(b"2]")), None, "array element");
        assert_eq!(key_before(j, 0), None);
    }

    #[test]
    fn strings_note_wanted_keys_of_values_only() {
        let wanted = |k: &[u8]| u8::from(k == b"gdpr") | u8::from(k == b"x") << 1;
        let noted = |j: &[u8]| strings_noting_keys(j, |_| {}, wanted).1 & 1 == 1;
        assert_eq!(
            strings_noting_keys(br#"{"x":1,"a":[{"gdpr":"2"}]}"#, |_| {}, wanted).1,
            3
        );
        assert!(noted(br#"{"a":{"gdpr":1}}"#), "number value");
        assert!(
            noted(br#"[{"x":"y"},{"gdpr" : "1"}]"#),
            "string value, spaces"
        );
        assert!(!noted(br#"{"gdpr":{"a":1}}"#), "a container is no value");
        assert!(!noted(br#"{"gdpr":[1]}"#), "an array element has no key");
        assert!(
            !noted(br#"{"a":"gdpr","gd\u0070r":1}"#),
            "a value, an escaped key"
        );
        assert!(!noted(br#"{"a":1,"#), "malformed before the key");
        let mut seen = Vec::new();
        let (outcome, _) =
            strings_noting_keys(br#"{"a":"x","b":2}"#, |v| seen.push(v.range), wanted);
        assert_eq!(outcome, Outcome::Complete);
        // One string value, `x`, at bytes 6..7.
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0], 6..7);
    }

    use super::*;

    fn paths(data: &[u8]) -> (Vec<(String, String)>, Outcome) {
        let (idx, outcome) = scan(data);
        let v = idx
            .values()
            .map(|v| {
                (
                    idx.path(data, v.id),
                    String::from_utf8_lossy(&data[v.range]).into_owned(),
                )
            })
            .collect();
        (v, outcome)
    }

    fn p(a: &str, b: &str) -> (String, String) {
        (a.to_string(), b.to_string())
    }

    #[test]
    fn nested_paths() {
        let data = br#" {"device":{"adid":"38400000-8cf0","geo":[31.23,-121.4e2]},
            "events":[{"id":1},[],{},{"id":"x","tags":[["a"],["b","c"]]}], "ok":true, "n":null } "#;
        let (v, outcome) = paths(data);
        assert_eq!(outcome, Outcome::Complete);
        assert_eq!(
            v,
            vec![
                p("$.device.adid", "38400000-8cf0"),
                p("$.device.geo[0]", "31.23"),
                p("$.device.geo[1]", "-121.4e2"),
                p("$.events[0].id", "1"),
                p("$.events[3].id", "x"),
                p("$.events[3].tags[0][0]", "a"),
                p("$.events[3].tags[1][0]", "b"),
                p("$.events[3].tags[1][1]", "c"),
            ]
        );
    }

    #[test]
    fn odd_keys_and_escapes() {
        let data = br#"{"a.b":"1","it's":"2","\u0041x":"3","9z":"4","\u540d":"tester\u0040example.org","q\"k":5}"#;
        let (v, outcome) = paths(data);
        assert_eq!(outcome, Outcome::Complete);
        assert_eq!(
            v,
            vec![
                p("$['a.b']", "1"),
                p("$['it\\'s']", "2"),
                p("$.Ax", "3"),
                p("$['9z']", "4"),
                p("$['名']", "tester\\u0040example.org"),
                p("$['q\"k']", "5"),
            ]
        );
        let (idx, _) = scan(data);
        let kinds: Vec<_> = idx.values().map(|v| v.kind).collect();
        assert_eq!(kinds[4], ValueKind::String { escaped: true });
        assert_eq!(kinds[0], ValueKind::String { escaped: false });
    }

    #[test]
    fn top_level_values_and_json_lines() {
        assert_eq!(paths(b"\"abc\"").0, vec![p("$", "abc")]);
        assert_eq!(paths(b"[]"), (vec![], Outcome::Complete));
        assert_eq!(paths(b" {} "), (vec![], Outcome::Complete));
        assert_eq!(paths(b"[1,2]").0, vec![p("$[0]", "1"), p("$[1]", "2")]);
        let (v, outcome) = paths(b"{\"a\":1}\n{\"a\":2}\n");
        assert_eq!(outcome, Outcome::Complete);
        assert_eq!(v, vec![p("$.a", "1"), p("$.a", "2")]);
        // An event batch of objects joined by commas, without the brackets (a trailing
        // comma too): each object indexed like a line.
        let (v, outcome) = paths(b"{\"a\":1},{\"a\":2} ,\n{\"b\":\"x\"},");
        assert_eq!(outcome, Outcome::Complete);
        assert_eq!(v, vec![p("$.a", "1"), p("$.a", "2"), p("$.b", "x")]);
        // One comma between two values, none before the first.
        assert_eq!(
            paths(b"{\"a\":1},,{\"a\":2}"),
            (vec![p("$.a", "1")], Outcome::Malformed { at: 8 })
        );
        assert_eq!(paths(b",{\"a\":1}"), (vec![], Outcome::Malformed { at: 0 }));
    }

    #[test]
    fn truncated_and_malformed_keep_earlier_values() {
        let (v, outcome) = paths(br#"{"a":"1","b":{"c":"xy"#);
        assert_eq!(v, vec![p("$.a", "1")]);
        assert_eq!(outcome, Outcome::Malformed { at: 21 });
        let (v, outcome) = paths(br#"{"a":1,"b" 2}"#);
        assert_eq!(v, vec![p("$.a", "1")]);
        assert_eq!(outcome, Outcome::Malformed { at: 11 });
        assert!(matches!(paths(b"[1,2}").1, Outcome::Malformed { at: 4 }));
        assert!(matches!(paths(b"{\"a\":tru}").1, Outcome::Malformed { .. }));
        assert!(matches!(
            paths(b"{\"a\":tr").1,
            Outcome::Malformed { at: 7 }
        ));
        assert!(matches!(paths(b"").1, Outcome::Malformed { at: 0 }));
        assert!(matches!(paths(b"[-]").1, Outcome::Malformed { .. }));
        assert!(matches!(paths(b"{\"a\\").1, Outcome::Malformed { .. }));
    }

    #[test]
    fn deep_nesting_stops_without_recursion() {
        let data = vec![b'['; 100_000];
        let (idx, outcome) = scan(&data);
        assert_eq!(
            outcome,
            Outcome::NestingLimit {
                at: MAX_JSON_NESTING
            }
        );
        assert!(idx.is_empty());
        // Under the limit, a deep value gets its full path.
        let mut d = vec![b'['; 300];
        d.extend_from_slice(b"7");
        d.extend(vec![b']'; 300]);
        let (v, outcome) = paths(&d);
        assert_eq!(outcome, Outcome::Complete);
        assert_eq!(v[0].0, format!("${}", "[0]".repeat(300)));
    }

    #[test]
    fn value_limit() {
        let (idx, outcome) = scan_with(b"[1,2,3,4]", 10, 3);
        assert_eq!(outcome, Outcome::ValueLimit);
        assert_eq!(idx.len(), 3);
    }

    #[test]
    fn value_lookup() {
        let data = br#"{"a":"hello","b":[12345]}"#;
        let (idx, _) = scan(data);
        assert_eq!(idx.value_at(&(6..9)), Some(0));
        assert_eq!(idx.value_at(&(6..11)), Some(0));
        assert_eq!(idx.value_at(&(6..13)), None);
        assert_eq!(idx.value_at(&(0..2)), None);
        assert_eq!(idx.value_at(&(18..23)), Some(1));
        assert_eq!(idx.value_at(&(8..20)), None);
    }

    #[test]
    fn unescaping() {
        assert_eq!(unescape(br"tester\u0040example.org"), b"tester@example.org");
        assert_eq!(unescape(br#"a\"b\\c\/d\n"#), b"a\"b\\c/d\n");
        assert_eq!(unescape(br"\ud83d\ude00"), "😀".as_bytes());
        assert_eq!(unescape(br"\ud83dx"), "\u{fffd}x".as_bytes());
        assert_eq!(unescape(br"\u12"), b"\\u12");
        assert_eq!(unescape(br"\q"), b"\\q");
        assert_eq!(unescape(b"\\"), b"\\");
    }

    fn reference(v: &serde_json::Value, path: String, out: &mut Vec<(String, String)>) {
        use serde_json::Value as V;
        match v {
            V::String(s) => {
                let enc = serde_json::to_string(s).unwrap();
                out.push((path, enc[1..enc.len() - 1].to_string()));
            }
            V::Number(n) => out.push((path, n.to_string())),
            V::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    reference(x, format!("{path}[{i}]"), out);
                }
            }
            V::Object(m) => {
                for (k, x) in m {
                    let plain = k
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                    let p = if plain {
                        format!("{path}.{k}")
                    } else {
                        format!("{path}['{}']", k.replace('\\', "\\\\").replace('\'', "\\'"))
                    };
                    reference(x, p, out);
                }
            }
            _ => {}
        }
    }

    pub(in crate::decode) fn arb_json(
    ) -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        use serde_json::Value as V;
        let leaf = prop_oneof![
            Just(V::Null),
            any::<bool>().prop_map(V::Bool),
            any::<i64>().prop_map(V::from),
            (-1e6f64..1e6).prop_map(V::from),
            "\\PC{0,12}".prop_map(V::String),
            "[a-z\"\\\\\n\u{7f}-\u{10ffff}]{0,6}".prop_map(V::String),
        ];
        leaf.prop_recursive(6, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(V::Array),
                prop::collection::btree_map("[a-z_.' \\\\0-9\u{e9}]{0,6}", inner, 0..6)
                    .prop_map(|m| V::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// STYLE.md #18: the scanner against serde_json's own tree.
        #[test]
        fn agrees_with_serde_json(v in arb_json(), pretty in proptest::bool::ANY) {
            let text = if pretty { serde_json::to_string_pretty(&v) } else { serde_json::to_string(&v) }.unwrap();
            let mut want = Vec::new();
            reference(&v, "$".into(), &mut want);
            let (got, outcome) = paths(text.as_bytes());
            proptest::prop_assert_eq!(outcome, Outcome::Complete);
            proptest::prop_assert_eq!(got, want);
        }

        /// The bitmap-driven string end against a byte-by-byte reading of the same
        /// rule (a backslash escapes the byte after it), across 64-byte words.
        #[test]
        fn string_end_agrees_with_bytewise_reading(
            data in proptest::collection::vec(proptest::sample::select(vec![b'"', b'\\', b'a', b'{']), 0..300),
            from in 0usize..310,
        ) {
            let naive = || {
                let mut i = from;
                let mut escaped = false;
                while i < data.len() {
                    match data[i] {
                        b'"' => return Some((i, escaped)),
                        b'\\' => {
                            escaped = true;
                            i += 2;
                        }
                        _ => i += 1,
                    }
                }
                None
            };
            proptest::prop_assert_eq!(string_end(&data, &Stops::new(&data), from), naive());
        }

        /// The eight-byte steps over spaces against a byte loop, with runs of every
        /// length and every JSON whitespace byte among others.
        #[test]
        fn after_whitespace_agrees_with_bytewise_reading(
            data in proptest::collection::vec(
                proptest::prop_oneof![
                    6 => proptest::strategy::Just(b' '),
                    1 => proptest::sample::select(b"\t\n\r\"a{0\x0b\x00\xa0".to_vec()),
                    1 => proptest::prelude::any::<u8>(),
                ],
                0..40,
            ),
            from in 0usize..42,
        ) {
            let mut naive = from;
            while matches!(data.get(naive), Some(b' ' | b'\t' | b'\n' | b'\r')) {
                naive += 1;
            }
            proptest::prop_assert_eq!(after_whitespace(&data, from), naive);
        }

        /// The SIMD stop bits of a block against a byte-by-byte reading.
        #[test]
        fn stop_bits_agree_with_bytewise_reading(
            block in proptest::collection::vec(
                proptest::prop_oneof![
                    2 => proptest::sample::select(vec![b'"', b'\\', b'a', b'"' + 128, b'\\' + 128]),
                    1 => proptest::prelude::any::<u8>(),
                ],
                64,
            ),
        ) {
            let block: [u8; 64] = block.try_into().unwrap();
            let (bits, escapes) = stop_bits(&block);
            let (want_bits, want_escapes) = stop_bits_bytewise(&block);
            proptest::prop_assert_eq!(bits, want_bits);
            proptest::prop_assert_eq!(escapes != 0, want_escapes != 0);
        }

        /// The same on texts without a backslash, where every stop is taken for a
        /// quote without a look at the byte: still the byte-by-byte reading.
        #[test]
        fn string_end_without_backslashes_agrees_with_bytewise_reading(
            data in proptest::collection::vec(proptest::sample::select(vec![b'"', b'a', b'{']), 0..300),
            from in 0usize..310,
        ) {
            let naive = (from..data.len()).find(|&i| data[i] == b'"').map(|i| (i, false));
            let stops = Stops::new(&data);
            proptest::prop_assert!(stops.quotes_only);
            proptest::prop_assert_eq!(string_end(&data, &stops, from), naive);
        }

        /// The stop words of whole texts (the AVX2 pass where the CPU has it) against
        /// the bytewise reading of each block, and the backslash flag with them.
        #[test]
        fn stop_words_agree_with_bytewise_reading(
            data in proptest::collection::vec(
                proptest::prop_oneof![
                    4 => proptest::sample::select(vec![b'"', b'\\', b'a', b'"' + 128, b'\\' + 128]),
                    1 => proptest::prelude::any::<u8>(),
                ],
                0..400,
            ),
        ) {
            let stops = Stops::new(&data);
            let mut want = Vec::new();
            let mut any_backslash = false;
            for chunk in data.chunks(64) {
                let mut block = [0u8; 64];
                block[..chunk.len()].copy_from_slice(chunk);
                let (bits, escapes) = stop_bits_bytewise(&block);
                want.push(bits);
                any_backslash |= escapes != 0;
            }
            proptest::prop_assert_eq!(&stops.words, &want);
            proptest::prop_assert_eq!(stops.quotes_only, !any_backslash);
            // The plain pass too (what a CPU without AVX2 runs).
            let mut plain = Vec::new();
            let escapes = stop_words(data.chunks_exact(64), &mut plain);
            proptest::prop_assert_eq!(&plain[..], &want[..data.len() / 64]);
            let whole_have_backslash = data[..data.len() / 64 * 64].contains(&b'\\');
            proptest::prop_assert_eq!(escapes != 0, whole_have_backslash);
        }

        /// Stops built in a vector left by another text (the walk's spare) are those
        /// of a fresh vector: nothing of the earlier text remains.
        #[test]
        fn stops_in_a_used_vector_are_those_of_a_fresh_one(
            earlier in proptest::collection::vec(proptest::prelude::any::<u64>(), 0..40),
            data in proptest::collection::vec(proptest::sample::select(vec![b'"', b'\\', b'a']), 0..300),
        ) {
            let fresh = Stops::new(&data);
            let reused = Stops::new_in(&data, earlier);
            proptest::prop_assert_eq!(&reused.words, &fresh.words);
            proptest::prop_assert_eq!(reused.quotes_only, fresh.quotes_only);
        }

        /// The word-at-a-time number end against the byte loop alone, with digit runs
        /// long and short and every byte value around them.
        #[test]
        fn number_end_agrees_with_bytewise_reading(
            data in proptest::collection::vec(
                proptest::prop_oneof![
                    4 => b'0'..=b'9',
                    1 => proptest::sample::select(vec![b'.', b'e', b'E', b'+', b'-', b'/', b':', b'0' - 1, b'9' + 1, 0x80, 0xb0, 0xb9, 0xff, b',']),
                    1 => proptest::prelude::any::<u8>(),
                ],
                1..80,
            ),
            from in 0usize..80,
        ) {
            let from = from % data.len();
            let mut naive = from + 1;
            while naive < data.len()
                && matches!(data[naive], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
            {
                naive += 1;
            }
            proptest::prop_assert_eq!(number_end(&data, from), naive);
        }

        /// A hit's value and path from [`scan_upto`] are those of the whole index.
        #[test]
        fn partial_index_answers_as_the_whole(
            v in arb_json(),
            pretty in proptest::bool::ANY,
            at in 0usize..400,
            len in 0usize..8,
        ) {
            let text = if pretty { serde_json::to_string_pretty(&v) } else { serde_json::to_string(&v) }.unwrap();
            let data = text.as_bytes();
            let range = at..at + len;
            let (whole, _) = scan(data);
            let part = scan_upto(data, at);
            let answer = |idx: &JsonIndex| idx.value_at(&range).map(|id| (id, idx.path(data, id)));
            proptest::prop_assert_eq!(answer(&part), answer(&whole));
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let (idx, _) = scan(&data);
            for v in idx.values() {
                let _ = idx.path(&data, v.id);
                proptest::prop_assert!(v.range.end <= data.len());
            }
        }
    }

    #[test]
    fn sniffing() {
        assert!(looks_like_json(b"  {\"a\":1}"));
        assert!(looks_like_json(b"[1]"));
        assert!(looks_like_json(b"{}"));
        assert!(looks_like_json(b"\xef\xbb\xbf{\"a\":1}"));
        assert_eq!(
            paths(b"\xef\xbb\xbf{\"a\":1}"),
            (vec![p("$.a", "1")], Outcome::Complete)
        );
        assert!(!looks_like_json(b"[abc]"));
        assert!(!looks_like_json(b"{abc}"));
        assert!(!looks_like_json(b"a=1"));
    }
}
