//! The JSON walk as it was before it was restructured around its states (kept for
//! the tests: the walk in `super` must agree with it on every input). A loop over an
//! explicit `Expect` state, with the separator fast path of the 30 November rounds.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A value (after `:` or `,` in an array).
    Value,
    /// A value or `]` (just after `[`).
    ValueOrClose,
    /// A key or `}` (just after `{`).
    KeyOrClose,
    /// A key (after `,` in an object).
    Key,
    Colon,
    CommaOrClose,
    /// Between top-level values.
    Top,
    /// Between top-level values, after the one comma allowed there.
    TopAfterComma,
}

/// The scanner behind [`scan`] and [`strings`].
fn walk<S: Sink>(data: &[u8], max_nesting: usize, max_values: usize, sink: &mut S) -> Outcome {
    if u32::try_from(data.len()).is_err() {
        return Outcome::TooLarge;
    }
    let stops = Stops::new(data);
    let mut stack: Vec<Frame> = Vec::new();
    let mut key = Key::Root;
    let mut expect = Expect::Top;
    let mut seen_value = false;
    let mut values = 0usize;
    let mut nodes = 0u32;
    let mut i = data.len() - strip_bom(data).len();
    let len = data.len();
    // Offsets fit in u32: checked above.
    let at32 = |i: usize| i as u32;
    loop {
        while i < len && matches!(data[i], b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
        }
        if i >= len {
            let between = matches!(expect, Expect::Top | Expect::TopAfterComma);
            return if between && seen_value {
                Outcome::Complete
            } else {
                Outcome::Malformed { at: len }
            };
        }
        let b = data[i];
        // Only containers and values need it (and only the index uses it).
        let parent = || stack.last().map_or(NO_PARENT, |f| f.node);
        match expect {
            Expect::Top if b == b',' && seen_value => {
                i += 1;
                expect = Expect::TopAfterComma;
            }
            Expect::Value | Expect::ValueOrClose | Expect::Top | Expect::TopAfterComma => {
                if expect == Expect::ValueOrClose && b == b']' {
                    stack.pop();
                    i += 1;
                    expect = after_value(&stack, &mut key);
                    continue;
                }
                // At `Top` the key is already `Key::Root` (set by `after_value`).
                match b {
                    b'{' | b'[' => {
                        if stack.len() >= max_nesting {
                            return Outcome::NestingLimit { at: i };
                        }
                        let node = nodes;
                        // At most one container per byte: below u32::MAX (checked above).
                        nodes += 1;
                        sink.container(parent(), key);
                        let object = b == b'{';
                        seen_value = true;
                        stack.push(Frame {
                            node,
                            object,
                            count: 0,
                        });
                        i += 1;
                        if object {
                            expect = Expect::KeyOrClose;
                            if let Some((k, next)) = member_key(data, &stops, i) {
                                key = k;
                                i = next;
                                expect = Expect::Value;
                            }
                        } else {
                            key = Key::Index(0);
                            expect = Expect::ValueOrClose;
                        }
                        continue;
                    }
                    b'"' => {
                        let Some((end, escaped)) = string_end(data, &stops, i + 1) else {
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
                                parent: parent(),
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
                                parent: parent(),
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
                seen_value = true;
                expect = after_value(&stack, &mut key);
            }
            Expect::KeyOrClose | Expect::Key => {
                if expect == Expect::KeyOrClose && b == b'}' {
                    stack.pop();
                    i += 1;
                    expect = after_value(&stack, &mut key);
                    continue;
                }
                if b != b'"' {
                    return Outcome::Malformed { at: i };
                }
                let Some((end, _)) = string_end(data, &stops, i + 1) else {
                    return Outcome::Malformed { at: len };
                };
                key = Key::Name {
                    start: at32(i + 1),
                    end: at32(end),
                };
                i = end + 1;
                // Almost always the colon follows at once: skip a round of the loop.
                if data.get(i) == Some(&b':') {
                    i += 1;
                    expect = Expect::Value;
                } else {
                    expect = Expect::Colon;
                }
            }
            Expect::Colon => {
                if b != b':' {
                    return Outcome::Malformed { at: i };
                }
                i += 1;
                expect = Expect::Value;
            }
            Expect::CommaOrClose => {
                match comma_or_close(data, &stops, &mut i, &mut stack, &mut key) {
                    Some(next) => expect = next,
                    None => return Outcome::Malformed { at: i },
                }
            }
        }
        // Separators that follow at once (`,"k":` after a value, `},{` between
        // objects, `]}` closing) are taken here rather than by another round of the
        // dispatch above, whose jump mispredicts: the same steps, in the same order.
        // Any other byte (whitespace, or one that does not fit) is left to that
        // dispatch: `comma_or_close` changes nothing when it returns `None`, and the
        // dispatch calls it again and reports the same byte as malformed.
        while expect == Expect::CommaOrClose {
            match comma_or_close(data, &stops, &mut i, &mut stack, &mut key) {
                Some(next) => expect = next,
                None => break,
            }
        }
    }
}

/// The step of [`walk`] at a `,`, `}` or `]` (`data[*i]`) after a value: advances `i`
/// past it (and past the next member's key and colon when they follow at once) and
/// returns what is expected next; `None` when the byte is no separator that fits
/// (then nothing is changed, and the walk reads it as malformed at `i` unless it is
/// whitespace).
#[inline(always)]
fn comma_or_close(
    data: &[u8],
    stops: &Stops,
    i: &mut usize,
    stack: &mut Vec<Frame>,
    key: &mut Key,
) -> Option<Expect> {
    // Invariant: CommaOrClose is only set with a non-empty stack.
    let top = stack.last_mut()?;
    let next = match (data.get(*i)?, top.object) {
        (b',', true) => {
            if let Some((k, next)) = member_key(data, stops, *i + 1) {
                *key = k;
                *i = next;
                return Some(Expect::Value);
            }
            Expect::Key
        }
        (b',', false) => {
            top.count = top.count.saturating_add(1);
            *key = Key::Index(top.count);
            Expect::Value
        }
        (b'}', true) | (b']', false) => {
            stack.pop();
            after_value(stack, key)
        }
        _ => return None,
    };
    *i += 1;
    Some(next)
}

/// The usual start of an object member at `from`: optional whitespace, a key and
/// its colon. Returns the key and the offset after the colon; `None` for anything
/// else, which the state machine then reads (and reports) the slow way. Taking the
/// common case in one step saves two rounds of [`walk`]'s dispatch per member.
#[inline]
fn member_key(data: &[u8], stops: &Stops, from: usize) -> Option<(Key, usize)> {
    let mut i = from;
    while matches!(data.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    if data.get(i) != Some(&b'"') {
        return None;
    }
    let (end, _) = string_end(data, stops, i + 1)?;
    if data.get(end + 1) != Some(&b':') {
        return None;
    }
    // Offsets fit in u32: `walk` checked the length.
    let key = Key::Name {
        start: (i + 1) as u32,
        end: end as u32,
    };
    Some((key, end + 2))
}

/// What follows a value (or a closed container); between top-level values the key
/// goes back to `Key::Root`, here rather than at each value (JSON lines, `1 2`).
fn after_value(stack: &[Frame], key: &mut Key) -> Expect {
    if stack.is_empty() {
        *key = Key::Root;
        Expect::Top
    } else {
        Expect::CommaOrClose
    }
}

/// What a walk told its sink, in order, for comparing two walks.
#[derive(Debug, Clone, PartialEq)]
enum Event {
    Container {
        parent: u32,
        key: Key,
    },
    Value {
        id: usize,
        start: u32,
        end: u32,
        parent: u32,
        key: Key,
        kind: ValueKind,
    },
}

/// A sink that records every call; `done` after `stop_after` values, if given (as
/// [`scan_upto`]'s sink ends the walk early).
struct Record {
    events: Vec<Event>,
    values: usize,
    stop_after: Option<usize>,
}

impl Sink for Record {
    fn container(&mut self, parent: u32, key: Key) {
        self.events.push(Event::Container { parent, key });
    }

    fn value(&mut self, id: usize, span: Span) {
        self.values += 1;
        self.events.push(Event::Value {
            id,
            start: span.start,
            end: span.end,
            parent: span.parent,
            key: span.key,
            kind: span.kind,
        });
    }

    fn done(&self) -> bool {
        self.stop_after.is_some_and(|n| self.values > n)
    }
}

fn record(
    walker: fn(&[u8], usize, usize, &mut Record) -> Outcome,
    data: &[u8],
    nesting: usize,
    values: usize,
    stop_after: Option<usize>,
) -> (Vec<Event>, Outcome) {
    let mut sink = Record {
        events: Vec::new(),
        values: 0,
        stop_after,
    };
    let outcome = walker(data, nesting, values, &mut sink);
    (sink.events, outcome)
}

/// A JSON text (compact or pretty) with escapes, non-ASCII and odd keys.
fn json_text() -> impl Strategy<Value = Vec<u8>> {
    use serde_json::Value as V;
    let leaf = prop_oneof![
        Just(V::Null),
        any::<bool>().prop_map(V::Bool),
        any::<i64>().prop_map(V::from),
        (-1e6f64..1e6).prop_map(V::from),
        "[a-z0-9+/=]{0,24}".prop_map(V::String),
        "[a-z\"\\\\/\n\u{1}\u{7f}-\u{10ffff}]{0,8}".prop_map(V::String),
    ];
    let tree = leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(V::Array),
            prop::collection::btree_map("[a-z_\" \\\\0-9\u{e9}]{0,6}", inner, 0..6)
                .prop_map(|m| V::Object(m.into_iter().collect())),
        ]
    });
    (tree, any::<bool>()).prop_map(|(v, pretty)| {
        if pretty {
            serde_json::to_vec_pretty(&v)
        } else {
            serde_json::to_vec(&v)
        }
        .unwrap_or_default()
    })
}

/// Bytes that JSON gives a meaning to, and a few it does not.
fn json_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        4 => prop::sample::select(b"{}[]:,\"\\ \n\t\r0123456789-+.eEtrufalsn".to_vec()),
        1 => any::<u8>(),
    ]
}

/// A JSON text damaged at a few places: bytes replaced, inserted, removed, and
/// maybe cut short.
fn damaged_json() -> impl Strategy<Value = Vec<u8>> {
    (
        json_text(),
        prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, json_byte()), 0..4),
        prop::option::of(any::<prop::sample::Index>()),
    )
        .prop_map(|(mut text, edits, cut)| {
            for (at, how, byte) in edits {
                let at = at.index(text.len() + 1);
                match how {
                    0 if at < text.len() => text[at] = byte,
                    1 => text.insert(at, byte),
                    _ if at < text.len() => {
                        text.remove(at);
                    }
                    _ => {}
                }
            }
            if let Some(cut) = cut {
                text.truncate(cut.index(text.len() + 1));
            }
            text
        })
}

fn input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        json_text(),
        damaged_json(),
        prop::collection::vec(json_byte(), 0..120),
        prop::collection::vec(any::<u8>(), 0..60),
    ]
}

/// The `Strings` sink as it was: the class of a value's key looked up from the
/// span's offsets at each value.
struct OldNoting<'d> {
    data: &'d [u8],
    noted: u8,
    strings: Vec<(usize, Range<usize>, bool)>,
}

impl Sink for OldNoting<'_> {
    fn container(&mut self, _parent: u32, _key: Key) {}

    fn value(&mut self, id: usize, span: Span) {
        if let Key::Name { start, end } = span.key {
            if let Some(key) = self.data.get(start as usize..end as usize) {
                self.noted |= sparse_class(key);
            }
        }
        if let ValueKind::String { escaped } = span.kind {
            let range = span.start as usize..span.end as usize;
            self.strings.push((id, range, escaped));
        }
    }
}

/// A key class for the tests: few keys have one, so that the union tells which.
fn sparse_class(key: &[u8]) -> u8 {
    match key {
        [a] => 1 << (a % 8),
        [a, b] if a == b => 1 << (a % 4),
        _ => 0,
    }
}

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// The restructured walk tells its sink the same things in the same order as
    /// this model, and ends the same way, under every limit.
    #[test]
    fn walk_agrees_with_model(
        data in input(),
        nesting in prop_oneof![Just(MAX_JSON_NESTING), 0usize..6],
        values in prop_oneof![Just(MAX_JSON_VALUES), 0usize..12],
        stop_after in prop::option::of(0usize..12),
    ) {
        let new = record(super::walk, &data, nesting, values, stop_after);
        let old = record(walk, &data, nesting, values, stop_after);
        prop_assert_eq!(new, old);
    }

    /// [`strings_noting_keys`] (keys classed as they are read) against the old
    /// walk with the old sink (keys classed at each value from its span).
    #[test]
    fn noted_keys_and_strings_agree_with_model(data in input()) {
        let mut got = Vec::new();
        let (outcome, noted) =
            strings_noting_keys(&data, |v| got.push((v.id, v.range, v.escaped)), sparse_class);
        let mut old = OldNoting { data: &data, noted: 0, strings: Vec::new() };
        let old_outcome = walk(&data, MAX_JSON_NESTING, MAX_JSON_VALUES, &mut old);
        prop_assert_eq!((outcome, noted, got), (old_outcome, old.noted, old.strings));
    }
}

/// What [`strings_noting_keys`]' walk reports: its outcome, the union of key classes,
/// and every string value with its number, raw range and escape flag.
type StringsReport = (Outcome, u8, Vec<(usize, Range<usize>, bool)>);

/// [`strings_within`] with the limits chosen by `limits` (constants in the walk, so
/// each pair is its own instantiation).
fn strings_walk(data: &[u8], limits: usize) -> (StringsReport, usize, usize) {
    fn run<const N: usize, const V: usize>(data: &[u8]) -> (StringsReport, usize, usize) {
        let mut got = Vec::new();
        let (outcome, noted) =
            strings_within::<N, V>(data, |v| got.push((v.id, v.range, v.escaped)), sparse_class);
        ((outcome, noted, got), N, V)
    }
    match limits % 8 {
        0 => run::<MAX_JSON_NESTING, MAX_JSON_VALUES>(data),
        1 => run::<0, 0>(data),
        2 => run::<1, 1>(data),
        3 => run::<2, 5>(data),
        4 => run::<3, 11>(data),
        5 => run::<5, MAX_JSON_VALUES>(data),
        6 => run::<MAX_JSON_NESTING, 2>(data),
        _ => run::<64, 40>(data),
    }
}

/// The model walk with the old `Strings`-like sink under the same limits.
fn strings_model(data: &[u8], nesting: usize, values: usize) -> StringsReport {
    let mut old = OldNoting {
        data,
        noted: 0,
        strings: Vec::new(),
    };
    let outcome = walk(data, nesting, values, &mut old);
    (outcome, old.noted, old.strings)
}

/// Texts made to hit the walk's edges: nesting around the limits, strings whose
/// backslash runs and quotes straddle the 64-byte words of the stop bitmap, bytes
/// JSON has no use for, and all of it cut anywhere.
fn adversarial() -> impl Strategy<Value = Vec<u8>> {
    // Objects and arrays mixed, so that every level's kind matters when it closes.
    let nested =
        (prop::collection::vec(any::<bool>(), 0..700), 0usize..3).prop_map(|(kinds, tail)| {
            let mut t = Vec::new();
            for &object in &kinds {
                t.extend_from_slice(if object { b"{\"ab\":" } else { b"[" });
            }
            t.extend_from_slice([&b"1"[..], b"\"x\"", b"[]"][tail]);
            for &object in kinds.iter().rev() {
                t.extend_from_slice(if object { b"}" } else { b",2]" });
            }
            t
        });
    // A string of `pad` bytes, then a run of backslashes and a quote, so that the run
    // ends on either side of a word edge.
    let straddling = (50usize..140, 0usize..6, prop::bool::ANY, prop::bool::ANY).prop_map(
        |(pad, run, closed, member)| {
            let mut t = if member {
                b"{\"k\":\"".to_vec()
            } else {
                b"[\"".to_vec()
            };
            t.extend(std::iter::repeat_n(b'a', pad));
            t.extend(std::iter::repeat_n(b'\\', run));
            t.extend_from_slice(b"\",\"b\"");
            if closed {
                t.extend_from_slice(if member { b"}" } else { b"]" });
            }
            t
        },
    );
    (
        prop_oneof![nested, straddling, json_text()],
        prop::collection::vec((any::<prop::sample::Index>(), json_byte()), 0..3),
        prop::option::of(any::<prop::sample::Index>()),
    )
        .prop_map(|(mut text, inserts, cut)| {
            for (at, byte) in inserts {
                let at = at.index(text.len() + 1);
                text.insert(at, byte);
            }
            if let Some(cut) = cut {
                text.truncate(cut.index(text.len() + 1));
            }
            text
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// The strings walk of its own against the model with the old sink: the same
    /// outcome, noted keys and string values, under several limits, on random,
    /// damaged and adversarial texts.
    #[test]
    fn strings_walk_agrees_with_model(
        data in prop_oneof![input(), adversarial()],
        limits in 0usize..8,
    ) {
        let (got, nesting, values) = strings_walk(&data, limits);
        prop_assert_eq!(got, strings_model(&data, nesting, values));
    }
}

/// The same on texts cut at every byte, with whitespace and escapes around the
/// structure (the proptests cut each text once).
#[test]
fn strings_walk_agrees_with_model_at_every_cut() {
    // Longer than a word of the stop bitmap (64 bytes), which the walk keeps from one
    // string to the next: an escaped quote across the first words' edge (backslash
    // at byte 63, quote at 64) and a closing quote first in the third word (byte
    // 128), with and without a backslash in the text (compiled apart for each).
    let (x, z, w) = ("x".repeat(57), "z".repeat(54), "w".repeat(60));
    let escaped = format!(r#"{{"a":"{x}\"y","b":["{z}"],"c":"{w}","d":12}}"#);
    let quotes_only = escaped.replace('\\', "q");
    let texts: [&[u8]; 6] = [
        br#"{"a":"1","b":[true,false,null,-1.5e3,{"c":"x\"y"}],"d":{}} [] "z" 7"#,
        b" [ { \"k\" : \"v\" , \"n\" : 12 } , [ ] , \"\\\\\" ]\n{\"a\":[[[\"deep\"]]]}",
        br#"{"consent":"yes","gdpr":1,"x":{"ll":[1,2]},"u":"\u00e9"}"#,
        b"\xef\xbb\xbf{\"a\":\"b\"}",
        escaped.as_bytes(),
        quotes_only.as_bytes(),
    ];
    assert_eq!(
        (escaped.as_bytes()[63], escaped.as_bytes()[128]),
        (b'\\', b'"')
    );
    for text in texts {
        for cut in 0..=text.len() {
            let data = &text[..cut];
            for limits in 0..8 {
                let (got, nesting, values) = strings_walk(data, limits);
                assert_eq!(
                    got,
                    strings_model(data, nesting, values),
                    "{:?} limits {limits}",
                    String::from_utf8_lossy(data)
                );
            }
        }
    }
}
