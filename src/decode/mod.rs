//! Decoding of requests before matching (DESIGN.md §2): one [`Exchange`] becomes the
//! list of [`Part`]s that `pii` searches — the URL path, each query parameter, header,
//! cookie and form field, and the body, plus everything found encoded inside them.
//!
//! # What becomes a part
//! - `path`: the percent-decoded URL path. Path segments that hold base64 are decoded
//!   into further `path` parts.
//! - `query:NAME`: each query value, percent-decoded (`+` is a space). A parameter
//!   without `=` becomes a part `query` holding its name.
//! - `header:NAME` (name as sent): every header except the HTTP/2 pseudo-headers
//!   `:method`, `:path`, `:scheme`; `Cookie` is split into `cookie:NAME` parts instead
//!   (values percent-decoded when they contain `%XX`).
//! - The body, after undoing `Transfer-Encoding: chunked` (when it really is chunked:
//!   sources such as HAR hand it over de-chunked) and every `Content-Encoding` (gzip,
//!   x-gzip, deflate as zlib or raw, br, zstd; a body that is already decoded despite
//!   the header passes as is, see [`content`]):
//!   - `application/x-www-form-urlencoded` (or a body that reads like one): one
//!     `form:NAME` part per field, percent-decoded;
//!   - `multipart/form-data`: one `form:NAME` part per part (`form:FILENAME` when it
//!     only has a file name);
//!   - JSON (by type or by sniffing): ONE part `body` holding the whole text, which is
//!     what is searched, with an index of the span and JSON path of every string and
//!     number value (see [`Part::location_at`]);
//!   - anything else: one part `body`.
//!
//! # Nested encodings
//! Any value — query, form, cookie or header value, JSON string, path segment,
//! multipart content, or the body itself — is looked into, up to `max_depth` levels
//! (the part itself is level 1):
//! - base64 (standard or URL-safe, padded or not; the heuristic is in [`b64`]) gives a
//!   new part at the same location with `"base64"` added to its layers; JWTs
//!   (`eyJ….….…`) are decoded segment by segment the same way;
//! - gzip, zlib or zstd data (by magic number, also right after base64) is inflated
//!   into a new part with layer `"gzip"`, `"deflate"` or `"zstd"`;
//! - JSON text is indexed like a JSON body, and a JSON string value holding escapes
//!   (`tester\u0040example.org`) also becomes a part of its own with the unescaped
//!   text, located at its JSON path (unescaping is container syntax: no layer);
//! - a form string (`a=b&c=d`) inside a value is split into its fields.
//!
//! `layers` lists the encodings undone, innermost first, as [`Part::layers`] says:
//! base64 of gzip of JSON gives `["gzip", "base64"]`.
//!
//! # Location convention
//! A JSON path is appended to the location of the part whose text holds the JSON:
//! with a `:` when the location has none yet (`body` → `body:$.device.adid`,
//! `path` → `path:$.id`), directly otherwise (`query:data` → `query:data$.device.imei`,
//! a JSON string holding JSON: `body:$.payload$.imei`). A field of a form string found
//! inside a value is appended with `&` (`query:data&imei`, `form:p&uid`).
//!
//! # Limits and failures
//! Everything is bounded by [`Limits`] (defaults below) and, for JSON, by
//! [`json::MAX_JSON_NESTING`] and [`json::MAX_JSON_VALUES`]. A limit hit or a decoding
//! failure becomes an [`Anomaly`] and processing goes on with what is there: a body
//! that fails to decompress is searched raw (or, if part of it decompressed, as that
//! part); a malformed JSON body is still searched as text. Anomaly kinds:
//! `body-size-limit`, `decompression-limit`, `content-decoding-error`,
//! `chunked-malformed`, `multipart-malformed`, `json-malformed`,
//! `json-nesting-limit`, `json-value-limit`, `too-many-parts`. Decoding that is only a
//! guess (base64 or magic numbers found inside values) fails silently.
//!
//! Parts borrow from the exchange when nothing had to be decoded; only decoded data
//! is allocated.

pub mod b64;
pub mod chunked;
pub mod content;
pub(crate) mod first_bytes;
pub mod form;
mod inflate;
pub mod json;
pub mod multipart;
pub mod stream;
pub mod zstd;

use std::borrow::Cow;
use std::cell::{Cell, OnceCell};
use std::fmt;
use std::ops::Range;

use crate::exchange::{Anomaly, Exchange};

use self::content::{Coding, Decoded};
use self::json::JsonIndex;

/// Default [`Limits::max_body_bytes`]: 8 MiB, above any real analytics upload.
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 << 20;
/// Default [`Limits::max_decoded_bytes`]: 32 MiB of decompressed data per message.
pub const DEFAULT_MAX_DECODED_BYTES: usize = 32 << 20;
/// Default [`Limits::max_ratio`]: 100; outputs under [`content::SMALL_OUTPUT_BYTES`]
/// are accepted whatever the ratio.
pub const DEFAULT_MAX_RATIO: usize = 100;
/// Default [`Limits::max_depth`]: 3 (a value, base64 inside it, base64 inside that).
pub const DEFAULT_MAX_DEPTH: usize = 3;
/// Default [`Limits::max_parts`]: 10 000 parts per message.
pub const DEFAULT_MAX_PARTS: usize = 10_000;
/// Most anomalies one message adds; a hostile message cannot flood the log.
const MAX_ANOMALIES: usize = 32;
/// Hard cap on how deep decoding recurses, whatever `max_depth` says (JSON strings
/// holding JSON, forms in forms: syntax levels that add no layer).
const MAX_NESTING: usize = 16;

/// Limits on work an attacker controls. Each, when hit, becomes an anomaly.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest body (after transfer decoding, before content decoding) examined.
    pub max_body_bytes: usize,
    /// Largest result of decompressing one body.
    pub max_decoded_bytes: usize,
    /// Largest decompression ratio accepted (decoded / encoded).
    pub max_ratio: usize,
    /// Deepest nesting of encodings (base64 in JSON in base64 …) followed.
    pub max_depth: usize,
    /// Most parts produced for one message.
    pub max_parts: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_decoded_bytes: DEFAULT_MAX_DECODED_BYTES,
            max_ratio: DEFAULT_MAX_RATIO,
            max_depth: DEFAULT_MAX_DEPTH,
            max_parts: DEFAULT_MAX_PARTS,
        }
    }
}

/// One piece of a request to search: a header, a cookie, a query or form value, a
/// body, or something decoded out of one of them.
#[derive(Clone)]
pub struct Part<'a> {
    /// Where the data sits in the message (`query:aaid`, `header:User-Agent`, `body`).
    pub location: Location<'a>,
    /// Encodings wrapped around this data on the wire, innermost first, that the
    /// decoder undid (e.g. `["base64"]`). Transport encodings (gzip, chunked) and the
    /// container's own syntax (percent-encoding of query values) are not listed.
    pub layers: Vec<&'static str>,
    pub data: Cow<'a, [u8]>,
    /// When `data` is JSON text: where its values are, for [`Part::location_at`]
    /// (built on first use: see [`LazyIndex`]).
    pub json: Option<LazyIndex>,
}

/// The [`JsonIndex`] of a part's JSON text, built the first time it is asked for.
/// Most JSON texts never need one: only the values where a hit or a decoded blob is
/// found get a path, and indexing every text up front was a tenth of the analysis.
#[derive(Clone, Default)]
pub struct LazyIndex {
    index: OnceCell<JsonIndex>,
    /// A hit's location was found by a walk up to the hit ([`json::scan_upto`]): the
    /// next location builds the whole index, so several hits never walk the text
    /// more than twice.
    partial_used: Cell<bool>,
    /// Which kinds of keys values sit under ([`KEY_SIGNAL`], [`KEY_COORDINATE`]),
    /// noted by the decoder's walk over the text; `None` when not noted.
    keys: Option<u8>,
}

/// A value sits under a consent-signal key
/// ([`signals::is_signal_key`](crate::consent::signals::is_signal_key)).
const KEY_SIGNAL: u8 = 1;
/// A value sits under a latitude or longitude key
/// ([`coordinates::is_axis_key`](crate::pii::coordinates::is_axis_key)).
const KEY_COORDINATE: u8 = 2;

/// The kinds of a JSON member key that later readers of the text ask about.
/// Inlined into the JSON walk (it runs for every value under a key), the rare keys
/// out of line.
#[inline(always)]
fn key_class(key: &[u8]) -> u8 {
    // Every such key starts with one of these letters (in either case): most keys
    // are settled by their first byte, in one table load.
    match key.first() {
        Some(&b) if CLASSED_KEY_FIRST[usize::from(b)] => key_class_slow(key),
        _ => 0,
    }
}

/// Whether a key starting with this byte may have a class: `c`, `g`, `u` or `l` in
/// either case (a compare chain per key cost the walk 4–5 instructions more).
static CLASSED_KEY_FIRST: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = matches!(b as u8 | 0x20, b'c' | b'g' | b'u' | b'l');
        b += 1;
    }
    table
};

// Cold: for the JSON walk it is one call in tens, and LLVM otherwise kept the walk's
// registers on the stack around every key, called or not.
#[cold]
#[inline(never)]
fn key_class_slow(key: &[u8]) -> u8 {
    let mut class = 0;
    if crate::consent::signals::is_signal_key(key) {
        class |= KEY_SIGNAL;
    }
    if crate::pii::coordinates::is_axis_key(key) {
        class |= KEY_COORDINATE;
    }
    class
}

impl LazyIndex {
    /// The index of `data`, which must be the text this index belongs to.
    pub fn get(&self, data: &[u8]) -> &JsonIndex {
        self.index.get_or_init(|| json::scan(data).0)
    }

    /// `f` of an index of `data` (this index's text) that holds every value starting
    /// at or before `pos`, for a path there: the whole index once built; before that,
    /// the first time, a walk up to `pos` ([`json::scan_upto`], which answers the
    /// same); after it the whole index, so several paths never walk the text more
    /// than twice. Most texts need one path, for a value near the start.
    fn upto<T>(&self, data: &[u8], pos: usize, f: impl FnOnce(&JsonIndex) -> T) -> T {
        match self.index.get() {
            Some(index) => f(index),
            None if !self.partial_used.replace(true) => f(&json::scan_upto(data, pos)),
            None => f(self.get(data)),
        }
    }

    /// The JSON path of value `id` of `data`, a value starting at `start`.
    fn path(&self, data: &[u8], id: usize, start: usize) -> String {
        self.upto(data, start, |index| index.path(data, id))
    }

    /// Whether some value of the text sits directly under a consent-signal key, when
    /// the decoder noted it (`None`: not known, look).
    pub fn names_signal_key(&self) -> Option<bool> {
        self.keys.map(|k| k & KEY_SIGNAL != 0)
    }

    /// Whether some value of the text sits directly under a latitude or longitude
    /// key, when the decoder noted it (`None`: not known, look).
    pub fn names_coordinate_key(&self) -> Option<bool> {
        self.keys.map(|k| k & KEY_COORDINATE != 0)
    }
}

impl fmt::Debug for LazyIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index.get() {
            Some(index) => index.fmt(f),
            None => f.write_str("JsonIndex(not built)"),
        }
    }
}

impl fmt::Debug for Part<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = String::from_utf8_lossy(&self.data[..self.data.len().min(200)]);
        f.debug_struct("Part")
            .field("location", &self.location)
            .field("layers", &self.layers)
            .field("data", &text)
            .field("len", &self.data.len())
            .field("json", &self.json)
            .finish()
    }
}

impl<'a> Part<'a> {
    /// A part with no layers and no JSON index.
    pub fn new(location: impl Into<Location<'a>>, data: impl Into<Cow<'a, [u8]>>) -> Self {
        Part {
            location: location.into(),
            layers: Vec::new(),
            data: data.into(),
            json: None,
        }
    }

    /// The location of a hit at `range` of `data`, refined where the part knows more
    /// (the JSON path of a value: `body:$.device.adid`).
    pub fn location_at(&self, range: Range<usize>) -> String {
        let Some(lazy) = &self.json else {
            return self.location.text();
        };
        let path = lazy.upto(&self.data, range.start, |index| {
            index.value_at(&range).map(|id| index.path(&self.data, id))
        });
        match path {
            Some(path) => joined(&self.location, &path),
            None => self.location.text(),
        }
    }

    /// The JSON index of `data` when it is JSON text (built now if not yet).
    pub fn json_index(&self) -> Option<&JsonIndex> {
        self.json.as_ref().map(|lazy| lazy.get(&self.data))
    }

    /// The location split at its first `:` into place and name (`("query", "aaid")`,
    /// `("body", "$.a")`): [`Location::place_and_name`].
    pub fn place_and_name(&self) -> Option<(&str, &str)> {
        self.location.place_and_name()
    }
}

/// Where a part's data sits in the message, kept as its pieces when it is a place
/// and a name (`header` and `User-Agent`, the name borrowed from the exchange): most
/// parts never hold a hit, and building the text of each (`header:User-Agent`) was
/// most of the allocations of splitting a request. The text is built when a finding
/// or an anomaly needs it ([`fmt::Display`], [`Part::location_at`]).
#[derive(Clone)]
pub struct Location<'a> {
    /// The place before the `:` (`header`; never holds a `:`), or empty when `text`
    /// is the whole location.
    place: &'static str,
    /// The name after the place and its `:`, or the whole location.
    text: Cow<'a, str>,
}

impl<'a> Location<'a> {
    /// `place:name` (`query:aaid`); `place` is not empty and holds no `:`.
    fn named(place: &'static str, name: Cow<'a, str>) -> Self {
        debug_assert!(!place.is_empty() && !place.contains(':'));
        Location { place, text: name }
    }

    /// The location split at its first `:` into place and name, as
    /// `split_once(':')` splits its text; `None` without a `:`.
    /// A byte loop: locations are short, and the char searcher behind `split_once`
    /// cost about 120 instructions a part for each reader that asks (signals,
    /// coordinates), on every part of every request.
    pub fn place_and_name(&self) -> Option<(&str, &str)> {
        if !self.place.is_empty() {
            return Some((self.place, &self.text));
        }
        let at = self.text.bytes().position(|b| b == b':')?;
        // `:` is ASCII, so both ends of it are character boundaries.
        Some((self.text.get(..at)?, self.text.get(at + 1..)?))
    }

    /// The text (`header:User-Agent`).
    pub fn text(&self) -> String {
        self.extended(None, "")
    }

    /// Whether the text holds a `:`.
    fn has_colon(&self) -> bool {
        !self.place.is_empty() || self.text.contains(':')
    }

    /// The text with `sep` (if any) and `tail` appended.
    fn extended(&self, sep: Option<char>, tail: &str) -> String {
        let len = self.place.len() + 1 + self.text.len() + 1 + tail.len();
        let mut s = String::with_capacity(len);
        if !self.place.is_empty() {
            s.push_str(self.place);
            s.push(':');
        }
        s.push_str(&self.text);
        if let Some(sep) = sep {
            s.push(sep);
        }
        s.push_str(tail);
        s
    }
}

impl fmt::Display for Location<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.place.is_empty() {
            f.write_str(self.place)?;
            f.write_str(":")?;
        }
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Location<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text(), f)
    }
}

impl PartialEq<str> for Location<'_> {
    fn eq(&self, other: &str) -> bool {
        if self.place.is_empty() {
            return *self.text == *other;
        }
        other
            .strip_prefix(self.place)
            .and_then(|rest| rest.strip_prefix(':'))
            .is_some_and(|rest| rest == &*self.text)
    }
}

impl PartialEq<&str> for Location<'_> {
    fn eq(&self, other: &&str) -> bool {
        *self == **other
    }
}

impl<'a> From<&'a str> for Location<'a> {
    fn from(text: &'a str) -> Self {
        Location {
            place: "",
            text: Cow::Borrowed(text),
        }
    }
}

impl From<String> for Location<'_> {
    fn from(text: String) -> Self {
        Location {
            place: "",
            text: Cow::Owned(text),
        }
    }
}

/// Appends a JSON path (or a form field) to a location; see the module doc.
fn joined(location: &Location<'_>, path: &str) -> String {
    location.extended((!location.has_colon()).then_some(':'), path)
}

/// [`joined`] as a location.
fn join(location: &Location<'_>, path: &str) -> Location<'static> {
    joined(location, path).into()
}

/// `bytes` as text (invalid UTF-8 replaced), borrowed when they are.
fn lossy_cow(bytes: Cow<'_, [u8]>) -> Cow<'_, str> {
    match bytes {
        Cow::Borrowed(b) => String::from_utf8_lossy(b),
        Cow::Owned(v) => match String::from_utf8(v) {
            Ok(s) => Cow::Owned(s),
            Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
        },
    }
}

/// The server name [`request_parts`] searches in a metadata-only exchange: the SNI
/// of a TLS or QUIC connection's one metadata exchange (`tls` or `quic`).
pub fn searched_server_name(ex: &Exchange) -> Option<&str> {
    if !ex.metadata_only || !matches!(ex.scheme.as_str(), "tls" | "quic") {
        return None;
    }
    ex.tls.as_ref().and_then(|t| t.sni.as_deref())
}

/// Splits and decodes a request into parts, recording limit hits and decode failures.
pub fn request_parts<'a>(
    exchange: &'a Exchange,
    limits: &Limits,
    anomalies: &mut Vec<Anomaly>,
) -> Vec<Part<'a>> {
    let mut cx = Ctx {
        limits,
        anomalies,
        added: 0,
        parts: Vec::new(),
        full: false,
        budget: limits.max_decoded_bytes,
        budget_spent: false,
        body_cut: false,
    };
    if exchange.metadata_only {
        // No request was read; a cleartext protocol no parser reads still has its
        // client bytes searched, a TLS or QUIC connection its server name.
        cx.server_name(exchange);
        cx.payload(exchange);
        return cx.parts;
    }
    // A part per header at least, and a few for the query and the body: sized once
    // instead of grown (and copied) from 4 to 8 to 16.
    cx.parts = Vec::with_capacity(exchange.request_headers.len() + 8);
    // The body's own codings are undone first, so that they, not values decoded out
    // of the URL or the headers, have the first call on the message's decompression
    // budget: the search past the cap (`pii::decoded_tail`) starts where a body that
    // decodes to the whole budget ends, and a header's compressed value that finds the
    // budget spent says so in an anomaly. Its parts still come after theirs.
    let body = cx.decoded_body(exchange);
    cx.url(&exchange.path);
    cx.headers(exchange);
    if let Some(body) = body {
        cx.body_content(exchange, body);
    }
    cx.parts
}

/// Where a value sits in the decoding: how many levels deep, how far recursed, and
/// whether it is a body (whose JSON faults are worth an anomaly).
#[derive(Debug, Clone, Copy)]
struct Level {
    depth: usize,
    nest: usize,
    body: bool,
}

impl Level {
    const TOP: Level = Level {
        depth: 1,
        nest: 0,
        body: false,
    };

    /// A level for a value decoded out of this one.
    fn deeper(self) -> Level {
        Level {
            depth: self.depth + 1,
            nest: self.nest + 1,
            body: false,
        }
    }

    /// A level for a value taken out of this one's syntax (no new encoding layer).
    fn inside(self) -> Level {
        Level {
            nest: self.nest + 1,
            body: false,
            ..self
        }
    }
}

struct Ctx<'a, 'l> {
    limits: &'l Limits,
    anomalies: &'l mut Vec<Anomaly>,
    /// Anomalies added so far.
    added: usize,
    parts: Vec<Part<'a>>,
    /// `max_parts` was hit: add nothing more.
    full: bool,
    /// Decompressed bytes still allowed for this message.
    budget: usize,
    /// The budget ran out and that was recorded.
    budget_spent: bool,
    /// The body at hand is a part cut from a longer one (see `decoded_body`): text that
    /// runs to its end unfinished is expected, not malformed.
    body_cut: bool,
}

/// `piece`, a sub-slice of `data`, with `data`'s lifetime when `data` is borrowed.
fn lift<'a>(data: &Cow<'a, [u8]>, piece: &[u8]) -> Cow<'a, [u8]> {
    match data {
        Cow::Borrowed(whole) => {
            // `piece` was sliced out of `data`, so its offset lies within it.
            let start = (piece.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
            match whole.get(start..start.saturating_add(piece.len())) {
                Some(s) if s.as_ptr() == piece.as_ptr() => Cow::Borrowed(s),
                _ => Cow::Owned(piece.to_vec()),
            }
        }
        Cow::Owned(_) => Cow::Owned(piece.to_vec()),
    }
}

/// Percent-decodes `piece` of `data`, borrowing from `data` when possible.
fn lift_decoded<'a>(data: &Cow<'a, [u8]>, piece: &[u8], plus_is_space: bool) -> Cow<'a, [u8]> {
    match form::percent_decode(piece, plus_is_space) {
        Cow::Borrowed(_) => lift(data, piece),
        Cow::Owned(v) => Cow::Owned(v),
    }
}

fn lossy(name: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(name)
}

// `&Cow` arguments are deliberate: whether data is borrowed decides whether the
// pieces cut from it can borrow too (`lift`).
#[allow(clippy::ptr_arg)]
impl<'a> Ctx<'a, '_> {
    fn anomaly(&mut self, kind: &str, detail: String) {
        if self.added < MAX_ANOMALIES {
            self.added += 1;
            self.anomalies.push(Anomaly::new(kind, detail));
        }
    }

    /// Reserves a part; `None` once `max_parts` is reached.
    fn push(&mut self, part: Part<'a>) -> Option<usize> {
        if self.full {
            return None;
        }
        if self.parts.len() >= self.limits.max_parts {
            self.full = true;
            let detail = format!(
                "more than {} parts; the rest is not searched",
                self.limits.max_parts
            );
            self.anomaly("too-many-parts", detail);
            return None;
        }
        self.parts.push(part);
        Some(self.parts.len() - 1)
    }

    /// Adds a part for `data` at `location`, then what is encoded inside it.
    fn field(
        &mut self,
        data: Cow<'a, [u8]>,
        location: Location<'a>,
        layers: Vec<&'static str>,
        level: Level,
    ) {
        // The slot is reserved first (parts stay in the order they are found); it is
        // filled after looking inside, which needs location and layers too.
        let Some(slot) = self.push(Part::new("", &[][..])) else {
            return;
        };
        let json = self.look_inside(&data, &location, &layers, level);
        let part = &mut self.parts[slot];
        part.location = location;
        part.layers = layers;
        part.data = data;
        part.json = json;
    }

    /// Finds what is encoded in `data`, a part's content, and adds parts for it;
    /// returns the JSON index when `data` is JSON.
    fn look_inside(
        &mut self,
        data: &Cow<'a, [u8]>,
        location: &Location<'a>,
        layers: &[&'static str],
        level: Level,
    ) -> Option<LazyIndex> {
        if self.full || level.nest > MAX_NESTING {
            return None;
        }
        if json::looks_like_json(data) {
            return Some(self.json_values(data, location, layers, level));
        }
        if (!layers.is_empty() || memchr::memchr(b'&', data).is_some())
            && form::looks_like_form(data)
        {
            self.form_fields(data, location, layers, level);
            return None;
        }
        self.blobs(data, &|| location.clone(), layers, level);
        None
    }

    /// Decodes `data` — a value, or a piece of one (JSON string, path segment) — if it
    /// is compressed or base64, and adds a part for the result. The location is only
    /// built when something is found: most values hold nothing.
    fn blobs(
        &mut self,
        data: &[u8],
        location: &dyn Fn() -> Location<'a>,
        layers: &[&'static str],
        level: Level,
    ) {
        self.blobs_screened(data, None, location, layers, level);
    }

    /// [`Ctx::blobs`]; `screened`, when given, is `b64::screen(data)` already
    /// computed (the JSON walk's screen), so `data` is not screened twice.
    fn blobs_screened(
        &mut self,
        data: &[u8],
        screened: Option<Option<b64::Screened>>,
        location: &dyn Fn() -> Location<'a>,
        layers: &[&'static str],
        level: Level,
    ) {
        if self.full || level.nest > MAX_NESTING || level.depth >= self.limits.max_depth {
            return;
        }
        if let Some(coding) = magic(data) {
            self.inflate(coding, data, location, layers, level, &[]);
            return;
        }
        let decoded = match screened {
            Some(screened) => screened.and_then(|sc| b64::decode_screened(data, sc)),
            None => b64::decode(data),
        };
        if let Some((decoded, kind)) = decoded {
            self.decoded_blob(decoded, kind, location, layers, level);
            return;
        }
        if data.starts_with(b"eyJ") && memchr::memchr(b'.', data).is_some() {
            // A JWT: header.payload.signature, each base64url.
            for seg in data.split(|&b| b == b'.') {
                if let Some((decoded, kind)) = b64::decode(seg) {
                    self.decoded_blob(decoded, kind, location, layers, level);
                }
            }
        }
    }

    /// Adds a part for each field of the form string `data` found at `location`.
    fn form_fields(
        &mut self,
        data: &Cow<'a, [u8]>,
        location: &Location<'a>,
        layers: &[&'static str],
        level: Level,
    ) {
        for pair in form::pairs(data) {
            let Some(value) = pair.value.filter(|v| !v.is_empty()) else {
                continue;
            };
            let name = form::percent_decode(pair.name, true);
            let loc = location.extended(Some('&'), &lossy(&name)).into();
            let value = lift_decoded(data, value, true);
            self.field(value, loc, layers.to_vec(), level.inside());
        }
    }

    /// Adds the part for the base64-decoded `decoded` found at `location`.
    fn decoded_blob(
        &mut self,
        decoded: Vec<u8>,
        kind: b64::Content,
        location: &dyn Fn() -> Location<'a>,
        layers: &[&'static str],
        level: Level,
    ) {
        if kind == b64::Content::Compressed {
            if let Some(coding) = magic(&decoded) {
                self.inflate(
                    coding,
                    &Cow::Owned(decoded),
                    location,
                    layers,
                    level,
                    &["base64"],
                );
            }
            return;
        }
        self.field(
            Cow::Owned(decoded),
            location(),
            with_layer("base64", layers),
            level.deeper(),
        );
    }

    /// Decompresses `data` found inside a value (a guess by magic number: failure is
    /// silent) and adds a part for the result. `also` are layers undone on the way
    /// (base64 around the compressed data), innermost first. The location is built
    /// only when needed: most guesses fail, and a JSON path costs an index.
    fn inflate(
        &mut self,
        coding: Coding,
        data: &[u8],
        location: &dyn Fn() -> Location<'a>,
        layers: &[&'static str],
        level: Level,
        also: &[&'static str],
    ) {
        if self.budget == 0 {
            // Said once per message, not once per further compressed value.
            if !self.budget_spent {
                self.budget_spent = true;
                let detail = format!(
                    "the message's decompression budget of {} bytes is used up; further compressed values (from {} on) are searched as they are",
                    self.limits.max_decoded_bytes,
                    location()
                );
                self.anomaly("decompression-limit", detail);
            }
            return;
        }
        if coding == Coding::Deflate && content::zlib_guess_fails(data) {
            return; // what the attempt below would find: nothing
        }
        let cap = content::output_cap(
            data.len(),
            self.budget.min(self.limits.max_decoded_bytes),
            self.limits.max_ratio,
        );
        let out = match content::decode(coding, data, cap) {
            Decoded::Complete(v) => v,
            Decoded::Limited(v) => {
                self.anomaly(
                    "decompression-limit",
                    format!(
                        "{} data in {} decompresses past {cap} bytes; searching the first {}",
                        coding.name(),
                        location(),
                        v.len()
                    ),
                );
                v
            }
            // A value is whole: a stream cut short in it is as malformed as a corrupt one.
            Decoded::Passthrough
            | Decoded::Cut(_)
            | Decoded::Starved { .. }
            | Decoded::Failed { .. } => return,
        };
        if out.is_empty() {
            return;
        }
        self.budget = self.budget.saturating_sub(out.len());
        let mut all = vec![coding.name()];
        all.extend_from_slice(also);
        all.extend_from_slice(layers);
        self.field(Cow::Owned(out), location(), all, level.deeper());
    }

    /// Checks JSON `data` and looks inside its string values; paths are computed (the
    /// index built) only for values where something is found.
    fn json_values(
        &mut self,
        data: &Cow<'a, [u8]>,
        location: &Location<'a>,
        layers: &[&'static str],
        level: Level,
    ) -> LazyIndex {
        // The strings worth a closer look: escaped ones, and those that could be
        // base64. Collected first so that the scan's own anomaly comes before those
        // of the values, as it always has.
        // The walk also notes consent-signal and coordinate keys, so that signal
        // extraction and the coordinate detector need not search every JSON text.
        // Each with its `b64::screen` when it was taken (not escaped), so that
        // `blobs` need not screen it again.
        let mut wanted = SPARE_WANTED.try_with(Cell::take).unwrap_or_default();
        wanted.clear();
        let mut pending = PendingStrings::new();
        let (outcome, keys) = json::strings_noting_keys(
            data,
            |v| {
                // Most strings are settled by their length, here in the walk; the
                // rest later, out of line (a call per string value was 2 % of
                // `analyze`), without a branch here on which they are.
                let len = v.range.len();
                let take = len >= 2 && (v.escaped || len >= b64::MIN_LEN);
                pending.note(v, take, data, &mut wanted);
            },
            key_class,
        );
        pending.flush(data, &mut wanted);
        match outcome {
            json::Outcome::Complete => {}
            // A body cut by a cap or a loss ends inside its JSON: the anomaly that
            // cut it says so.
            json::Outcome::Malformed { at } if level.body && self.body_cut && at == data.len() => {}
            json::Outcome::Malformed { at } if level.body => self.anomaly(
                "json-malformed",
                format!(
                    "{location}: JSON ends or breaks at byte {at}; values before it are indexed"
                ),
            ),
            json::Outcome::Malformed { .. } => {}
            json::Outcome::NestingLimit { at } => self.anomaly(
                "json-nesting-limit",
                format!(
                    "{location}: JSON nested deeper than {} at byte {at}",
                    json::MAX_JSON_NESTING
                ),
            ),
            json::Outcome::ValueLimit => self.anomaly(
                "json-value-limit",
                format!(
                    "{location}: more than {} JSON values; the rest is searched as text only",
                    json::MAX_JSON_VALUES
                ),
            ),
            json::Outcome::TooLarge => self.anomaly(
                "json-value-limit",
                format!("{location}: JSON text too large to index"),
            ),
        }
        let index = LazyIndex {
            keys: Some(keys),
            ..LazyIndex::default()
        };
        for (v, screened) in wanted.drain(..) {
            if self.full {
                break;
            }
            let raw = &data[v.range.clone()];
            if v.escaped {
                // Also for `\/` alone: the matcher's JSON-escaped variants need not
                // cover it, and `Europe\/Berlin` must still be found.
                let plain = json::unescape(raw);
                let loc = join(location, &index.path(data, v.id, v.range.start));
                self.field(Cow::Owned(plain), loc, layers.to_vec(), level.inside());
                continue;
            }
            let loc = || join(location, &index.path(data, v.id, v.range.start));
            self.blobs_screened(raw, Some(screened), &loc, layers, level.inside());
        }
        // Kept for the next text unless one with very many candidates grew it.
        if wanted.capacity() <= MAX_SPARE_WANTED {
            // Fails only while the thread is being torn down; it is then dropped.
            let _ = SPARE_WANTED.try_with(|spare| spare.set(wanted));
        }
        index
    }

    fn url(&mut self, target: &'a str) {
        let target = target.split('#').next().unwrap_or(target);
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.as_bytes(), Some(q.as_bytes())),
            None => (target.as_bytes(), None),
        };
        if !path.is_empty() {
            let decoded = form::percent_decode(path, false);
            if self.push(Part::new("path", decoded)).is_some() {
                for seg in path
                    .split(|&b| b == b'/')
                    .filter(|s| s.len() >= b64::MIN_LEN)
                {
                    let seg = form::percent_decode(seg, false);
                    self.blobs(&seg, &|| "path".into(), &[], Level::TOP);
                }
            }
        }
        let Some(query) = query else {
            return;
        };
        let whole = Cow::Borrowed(query);
        for pair in form::pairs(query) {
            let name = form::percent_decode(pair.name, true);
            match pair.value {
                Some(v) => {
                    // A DNS-over-HTTPS `GET`: the names of the query it carries.
                    if *name == *b"dns" {
                        if let Some(names) = crate::net::dns::doh_query_names(v) {
                            let location = Location::named("query", "dns".into());
                            self.push(Part::new(location, names.into_bytes()));
                        }
                    }
                    let value = lift_decoded(&whole, v, true);
                    self.field(
                        value,
                        Location::named("query", lossy_cow(name)),
                        Vec::new(),
                        Level::TOP,
                    );
                }
                None => {
                    let name = lift_decoded(&whole, pair.name, true);
                    self.field(name, "query".into(), Vec::new(), Level::TOP);
                }
            }
        }
    }

    fn headers(&mut self, ex: &'a Exchange) {
        for h in &ex.request_headers {
            if matches!(&*h.name, ":method" | ":path" | ":scheme") {
                continue;
            }
            let value: &'a [u8] = &h.value;
            // A trailer field is named as one (`trailer:NAME`): the evidence must say
            // where the value was, and its name is no head field's (a trailer
            // `Cookie` is not split into cookies).
            if h.name.eq_ignore_ascii_case("cookie") && !h.trailer {
                self.cookies(value);
                continue;
            }
            let section = if h.trailer { "trailer" } else { "header" };
            let location = Location::named(section, Cow::Borrowed(&h.name));
            let auth = h.name.eq_ignore_ascii_case("authorization")
                || h.name.eq_ignore_ascii_case("proxy-authorization");
            // `Basic <base64>`, `Bearer <jwt>`: the credentials after the scheme. Only
            // credential headers are searched for the space (a memchr call per header
            // of every request otherwise).
            let token = auth
                .then(|| memchr::memchr(b' ', value))
                .flatten()
                .map(|sp| value[sp + 1..].trim_ascii());
            // Only credentials need the location a second time: other headers hand
            // theirs over without a copy.
            let again = token.map(|_| location.clone());
            self.field(Cow::Borrowed(value), location, Vec::new(), Level::TOP);
            if let (Some(token), Some(location)) = (token, again) {
                self.blobs(token, &|| location.clone(), &[], Level::TOP);
            }
        }
    }

    fn cookies(&mut self, value: &'a [u8]) {
        for c in form::cookies(value) {
            let (location, raw) = match c.value {
                Some(v) => (Location::named("cookie", lossy(c.name)), v),
                None => ("cookie".into(), c.name),
            };
            let data = if form::has_percent_escape(raw) {
                form::percent_decode(raw, false)
            } else {
                Cow::Borrowed(raw)
            };
            self.field(data, location, Vec::new(), Level::TOP);
        }
    }

    /// The request body with its transfer and content codings undone (as far as they
    /// go, within the decompression budget); `None` when it is empty.
    fn decoded_body(&mut self, ex: &'a Exchange) -> Option<Cow<'a, [u8]>> {
        let raw: &'a [u8] = &ex.request_body;
        if raw.is_empty() {
            return None;
        }
        let examined = self.examined(raw, "body");
        // A body kept only in part ends inside whatever it holds (a compressed stream,
        // chunked framing, JSON, multipart): expected, not malformed; the anomaly that
        // cut it says so.
        self.body_cut = ex.request_body_cut || examined.len() < raw.len();
        let mut data = Cow::Borrowed(examined);
        let tokens = |value: Option<&[u8]>| -> Vec<String> {
            value
                .map(|v| {
                    lossy(v)
                        .split(',')
                        .map(|t| t.trim().to_ascii_lowercase())
                        .filter(|t| !t.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        // The codings are every `Content-Encoding` and `Transfer-Encoding` line's, in
        // order (both are lists: RFC 9110 §8.4, RFC 9112 §6.1).
        let transfer = tokens(ex.request_header_list("transfer-encoding").as_deref());
        if transfer.iter().any(|t| t == "chunked") {
            data = self.dechunk(data);
        }
        // Codings were applied content first, then transfer; undo them in reverse.
        let mut codings = tokens(ex.request_header_list("content-encoding").as_deref());
        codings.extend(transfer.into_iter().filter(|t| t != "chunked"));
        for token in codings.iter().rev() {
            let coding = match Coding::parse(token) {
                Ok(Some(c)) => c,
                Ok(None) => continue,
                Err(content::UnknownCoding) => {
                    self.anomaly(
                        "content-decoding-error",
                        format!("unsupported coding {token:?}; body searched as is"),
                    );
                    break;
                }
            };
            let cap = content::output_cap(
                data.len(),
                self.budget.min(self.limits.max_decoded_bytes),
                self.limits.max_ratio,
            );
            match content::decode(coding, &data, cap) {
                Decoded::Passthrough => break,
                Decoded::Complete(v) => {
                    self.budget = self.budget.saturating_sub(v.len());
                    data = Cow::Owned(v);
                }
                Decoded::Limited(v) => {
                    self.anomaly(
                        "decompression-limit",
                        format!(
                            "{} body of {} bytes decompresses past {cap} bytes; searching the first {}",
                            coding.name(),
                            data.len(),
                            v.len()
                        ),
                    );
                    self.budget = self.budget.saturating_sub(v.len());
                    data = Cow::Owned(v);
                }
                Decoded::Cut(partial) => {
                    if !self.body_cut {
                        let what = if partial.is_empty() {
                            "body searched undecoded".to_string()
                        } else {
                            format!("searching the {} bytes decoded from it", partial.len())
                        };
                        self.anomaly(
                            "content-decoding-error",
                            format!(
                                "{} stream cut short: the body ends before the stream does; \
                                 {what}",
                                coding.name(),
                            ),
                        );
                    }
                    if partial.is_empty() {
                        break;
                    }
                    self.budget = self.budget.saturating_sub(partial.len());
                    data = Cow::Owned(partial);
                    // A body cut by its source is cut in every coding: the inner ones
                    // (`gzip, br`: the gzip stream inside the br one) are undone as far
                    // as they go too.
                    if !self.body_cut {
                        break;
                    }
                }
                Decoded::Starved { partial, taken } => {
                    self.anomaly(
                        "decompression-limit",
                        format!(
                            "{} body: {taken} encoded bytes decode to only {} (empty gzip \
                             members or the like); decoding stopped there",
                            coding.name(),
                            partial.len()
                        ),
                    );
                    if !partial.is_empty() {
                        data = Cow::Owned(partial);
                    }
                    break;
                }
                Decoded::Failed { partial, error } => {
                    let what = if partial.is_empty() {
                        "body searched undecoded".to_string()
                    } else {
                        format!(
                            "searching the {} bytes decoded before the error",
                            partial.len()
                        )
                    };
                    self.anomaly(
                        "content-decoding-error",
                        format!("{}: {error}; {what}", coding.name()),
                    );
                    if !partial.is_empty() {
                        data = Cow::Owned(partial);
                    }
                    break;
                }
            }
        }
        Some(data)
    }

    /// The client's bytes of a connection in a protocol no parser reads (a
    /// metadata-only exchange's `request_body`): searched as they are, and looked into
    /// like a body without a type (JSON, a form, base64, compression), at
    /// [`PAYLOAD_LOCATION`].
    fn payload(&mut self, ex: &'a Exchange) {
        let raw: &'a [u8] = &ex.request_body;
        if raw.is_empty() {
            return;
        }
        let data = self.examined(raw, "payload");
        let level = Level {
            body: true,
            ..Level::TOP
        };
        self.field(
            Cow::Borrowed(data),
            PAYLOAD_LOCATION.into(),
            Vec::new(),
            level,
        );
    }

    /// The server name a TLS or QUIC connection's ClientHello sent in clear, on the
    /// connection's one metadata exchange ([`SNI_LOCATION`]): an SDK that made a
    /// host name of an identifier (`<md5 of the IMEI>.b.example.net`) sends it there
    /// too, where DNS over TLS or HTTPS hides the lookup. (Parts of a decrypted
    /// connection carry the same name: searched once, here.)
    fn server_name(&mut self, ex: &'a Exchange) {
        if let Some(sni) = searched_server_name(ex) {
            self.push(Part::new(SNI_LOCATION, sni.as_bytes()));
        }
    }

    /// The part of a body (or payload, `what`) that is examined: its first
    /// `max_body_bytes`, with an anomaly when there is more.
    fn examined<'b>(&mut self, raw: &'b [u8], what: &str) -> &'b [u8] {
        let max = self.limits.max_body_bytes;
        if raw.len() <= max {
            return raw;
        }
        self.anomaly(
            "body-size-limit",
            format!(
                "{what} of {} bytes; only the first {max} are examined",
                raw.len()
            ),
        );
        &raw[..max]
    }

    /// Undoes chunked framing when the body really is framed.
    fn dechunk(&mut self, data: Cow<'a, [u8]>) -> Cow<'a, [u8]> {
        match chunked::dechunk(&data) {
            chunked::Dechunked::NotChunked => data,
            chunked::Dechunked::Complete(v) => Cow::Owned(v),
            chunked::Dechunked::Truncated(v) if self.body_cut => Cow::Owned(v),
            chunked::Dechunked::Truncated(v) => {
                self.anomaly(
                    "chunked-malformed",
                    format!(
                        "chunked body ends before its last chunk ({} data bytes)",
                        v.len()
                    ),
                );
                Cow::Owned(v)
            }
            chunked::Dechunked::Malformed { data: mut out, at } => {
                self.anomaly(
                    "chunked-malformed",
                    format!("chunked framing breaks at byte {at}; the rest is searched as is"),
                );
                out.extend_from_slice(data.get(at..).unwrap_or_default());
                Cow::Owned(out)
            }
        }
    }

    fn body_content(&mut self, ex: &Exchange, data: Cow<'a, [u8]>) {
        let ct = ex.request_header("content-type").unwrap_or(b"");
        let mime = lossy(ct.split(|&b| b == b';').next().unwrap_or(b""))
            .trim()
            .to_ascii_lowercase();
        let body = Level {
            body: true,
            ..Level::TOP
        };
        if mime.starts_with("multipart/") {
            if let Some(boundary) = multipart::boundary(ct) {
                let room = self.limits.max_parts.saturating_sub(self.parts.len()) + 1;
                if let Some(m) = multipart::parse(&data, &boundary, room) {
                    if m.truncated && !self.body_cut {
                        self.anomaly(
                            "multipart-malformed",
                            "multipart body ends without its closing delimiter".into(),
                        );
                    }
                    for p in &m.parts {
                        let location = match (&p.name, &p.filename) {
                            (Some(n), _) => Location::named("form", Cow::Owned(n.clone())),
                            (None, Some(f)) => Location::named("form", Cow::Owned(f.clone())),
                            (None, None) => "form".into(),
                        };
                        self.field(lift(&data, p.content), location, Vec::new(), Level::TOP);
                    }
                    return;
                }
            }
        }
        let is_json = json::looks_like_json(&data);
        let declared_form = mime == "application/x-www-form-urlencoded"
            // Some SDKs send one base64 blob under the form type.
            && (memchr::memchr(b'&', &data).is_some() || b64::decode(&data).is_none());
        if !is_json && (declared_form || form::looks_like_form(&data)) {
            for pair in form::pairs(&data) {
                let name = form::percent_decode(pair.name, true);
                let (location, value) = match pair.value {
                    Some(v) => (Location::named("form", lossy(&name).into_owned().into()), v),
                    None => ("form".into(), pair.name),
                };
                let value = lift_decoded(&data, value, true);
                self.field(value, location, Vec::new(), Level::TOP);
            }
            return;
        }
        self.field(data, "body".into(), Vec::new(), body);
    }
}

/// Where the client's bytes of a connection in a protocol no parser reads are found
/// (`payload`, `payload:$.imei` inside JSON): see [`Ctx::payload`].
pub const PAYLOAD_LOCATION: &str = "payload";
/// Location of the server name of a TLS or QUIC ClientHello.
pub const SNI_LOCATION: &str = "sni";

/// A JSON text's strings that [`Ctx::json_values`] looks into.
type Wanted = Vec<(json::StringValue, Option<b64::Screened>)>;

thread_local! {
    /// The thread's spare [`Wanted`] list: each of a capture's thousands of JSON texts
    /// built and grew its own. Taken out while a text is looked into (a text nested in
    /// one of its strings then makes its own).
    static SPARE_WANTED: Cell<Wanted> = const { Cell::new(Vec::new()) };
}

/// The largest [`Wanted`] list kept for the next text.
const MAX_SPARE_WANTED: usize = 1 << 12;

/// The string values the JSON walk takes, gathered a few at a time and handed to
/// [`want_string`] in their order. Every value is written to the next slot and the
/// count moves on only for those taken: which strings are taken (by length, mostly)
/// varies from one value to the next, and as a branch in the walk it was often
/// mispredicted.
struct PendingStrings {
    /// (id, start, end, escaped) of the values taken, in `slots[..n]`.
    slots: [(usize, usize, usize, bool); PENDING_SLOTS],
    n: usize,
}

/// Slots of [`PendingStrings`]: a power of two, so that the slot index is a mask.
const PENDING_SLOTS: usize = 32;

impl PendingStrings {
    fn new() -> PendingStrings {
        PendingStrings {
            slots: [(0, 0, 0, false); PENDING_SLOTS],
            n: 0,
        }
    }

    /// Notes `v`, kept when `take`; the slots handed over when full.
    #[inline(always)]
    fn note(&mut self, v: json::StringValue, take: bool, data: &[u8], wanted: &mut Wanted) {
        // `n` is below the slot count here (a full set was handed over at once).
        let n = self.n % PENDING_SLOTS;
        self.slots[n] = (v.id, v.range.start, v.range.end, v.escaped);
        self.n = n + usize::from(take);
        if self.n == PENDING_SLOTS {
            self.flush(data, wanted);
        }
    }

    /// Hands the values kept to [`want_string`], in their order.
    #[inline(never)]
    fn flush(&mut self, data: &[u8], wanted: &mut Wanted) {
        for &(id, start, end, escaped) in self.slots.iter().take(self.n) {
            want_string(data, id, start, end, escaped, wanted);
        }
        self.n = 0;
    }
}

/// The strings of a JSON text that [`Ctx::json_values`] looks into: an escaped one
/// (at least 2 bytes long, which the caller checked), or one that
/// [`blob_worth_trying`], with what its screen learnt.
/// The value comes in its fields: as one argument it was a 40-byte copy on the
/// stack, written for every string value before the walk knew whether to call.
#[inline(never)]
fn want_string(
    data: &[u8],
    id: usize,
    start: usize,
    end: usize,
    escaped: bool,
    wanted: &mut Wanted,
) {
    let v = json::StringValue {
        id,
        range: start..end,
        escaped,
    };
    if v.escaped {
        wanted.push((v, None));
    } else if let Some(screened) = data.get(v.range.clone()).and_then(blob_worth_trying) {
        wanted.push((v, screened));
    }
}

/// Whether [`Ctx::blobs`] could find anything in `raw`, an unescaped JSON string
/// that [`b64::candidate`] accepts or not. Exact: `false` only where `blobs` would do
/// nothing, for each of its three tries —
/// - a magic number: tested here the same way ([`magic`]);
/// - base64: [`b64::decode`] returns `None` wherever [`b64::worth_decoding`] is false
///   (it runs the same checks first), and every string `worth_decoding` accepts is a
///   `candidate` (length, alphabet and padding are among its checks);
/// - a JWT: the same test as `blobs` (`eyJ` and a dot).
///
/// For the first and last the string must also be a `candidate`, as before this
/// screen existed. Hex ids (most base64-alphabet strings in app JSON) are settled
/// here instead of being collected and looked at a second time.
///
/// Returns `None` for "nothing to find", else `Some` of `b64::screen(raw)` (itself
/// `None` when only the magic number or the JWT shape let the string through).
#[inline]
fn blob_worth_trying(raw: &[u8]) -> Option<Option<b64::Screened>> {
    // Every try needs a `candidate`, at least `MIN_LEN` long: most JSON strings (keys'
    // values, words, numbers as text) are settled by their length, without a call.
    if raw.len() < b64::MIN_LEN {
        return None;
    }
    let screened = b64::screen(raw);
    // Most strings the screen rejects are settled by their first byte, one table
    // load instead of the chain of magic-number and `eyJ` compares.
    let other = || {
        raw.first()
            .is_some_and(|&b| MAGIC_OR_JWT_FIRST[usize::from(b)])
            && (magic(raw).is_some()
                || (raw.starts_with(b"eyJ") && memchr::memchr(b'.', raw).is_some()))
            && b64::candidate(raw)
    };
    (screened.is_some() || other()).then_some(screened)
}

/// The first bytes of the strings that [`magic`] or the JWT test (`eyJ`) can accept:
/// gzip's `1f`, zstd's `28`, a zlib header's (compression method 8, window at most
/// 7) and `e`.
const MAGIC_OR_JWT_FIRST: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = b == 0x1f || b == 0x28 || (b & 0x0f == 8 && b >> 4 <= 7) || b == b'e' as usize;
        b += 1;
    }
    t
};

/// `layer` added as the innermost of `outer`.
fn with_layer(layer: &'static str, outer: &[&'static str]) -> Vec<&'static str> {
    let mut v = Vec::with_capacity(outer.len() + 1);
    v.push(layer);
    v.extend_from_slice(outer);
    v
}

/// The compression whose magic number `data` starts with.
fn magic(data: &[u8]) -> Option<Coding> {
    // Most values (every base64 blob the JSON walk collects) start with a byte no
    // magic number has: one table load instead of the three tests.
    if !data
        .first()
        .is_some_and(|&b| MAGIC_OR_JWT_FIRST[usize::from(b)])
    {
        return None;
    }
    if content::is_gzip(data) {
        Some(Coding::Gzip)
    } else if content::is_zstd(data) {
        Some(Coding::Zstd)
    } else if content::is_zlib(data) {
        Some(Coding::Deflate)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::content::tests::{
        brotli, gzip, gzip_then_empty_members, raw_deflate, zlib, zstd_raw,
    };
    use super::*;
    use crate::exchange::{Header, SourceKind};
    use crate::timestamp::Timestamp;
    use base64::engine::general_purpose as gp;
    use base64::Engine;
    use proptest::prelude::*;

    /// A location kept as place and name reads as its text would: same text, same
    /// split at the first `:`, same comparisons, same joins.
    #[test]
    fn location_pieces_read_as_their_text() {
        let cases = [
            Location::named("header", Cow::Borrowed("User-Agent")),
            Location::named("header", Cow::Borrowed(":authority")),
            Location::named("query", Cow::Owned("a:b".to_string())),
            Location::named("form", Cow::Borrowed("")),
            Location::from("body"),
            Location::from("body:$.a"),
            Location::from("query&x".to_string()),
        ];
        for loc in &cases {
            let text = loc.to_string();
            assert_eq!(loc.text(), text);
            assert_eq!(format!("{loc:?}"), format!("{text:?}"));
            assert_eq!(loc.place_and_name(), text.split_once(':'));
            assert!(*loc == *text.as_str());
            assert!(*loc != *format!("{text}x").as_str());
            assert!(*loc != *format!("x{text}").as_str());
            let whole = Location::from(text.as_str());
            assert_eq!(joined(loc, "$.k"), joined(&whole, "$.k"));
            assert_eq!(loc.extended(Some('&'), "n"), format!("{text}&n"));
        }
        assert_eq!(joined(&cases[4], "$.k"), "body:$.k");
        assert_eq!(joined(&cases[5], ".k"), "body:$.a.k");
    }

    /// The first-byte table against the compare chain it replaced, for every byte.
    #[test]
    fn classed_key_table_is_the_first_letter_test() {
        for b in 0..=255u8 {
            let chain = matches!(b | 0x20, b'c' | b'g' | b'u' | b'l');
            assert_eq!(CLASSED_KEY_FIRST[usize::from(b)], chain, "byte {b}");
        }
    }

    /// No string that the magic-number tests or the JWT test accept starts with a
    /// byte the first-byte table rules out: each magic number and `eyJ` behind every
    /// first byte, and zlib's two-byte header with every second byte.
    #[test]
    fn magic_or_jwt_first_byte_table_misses_nothing() {
        for b0 in 0..=255u8 {
            let mut starts = vec![
                vec![b0, 0x8b, 8],
                vec![b0, 0xb5, 0x2f, 0xfd],
                vec![b0, b'y', b'J'],
            ];
            starts.extend((0..=255u8).map(|b1| vec![b0, b1]));
            for mut s in starts {
                s.extend_from_slice(b".AAAAAAAAAAAA");
                // The tests themselves: `magic` now consults the table first.
                let magic = content::is_gzip(&s) || content::is_zstd(&s) || content::is_zlib(&s);
                if magic || s.starts_with(b"eyJ") {
                    assert!(MAGIC_OR_JWT_FIRST[usize::from(b0)], "{s:?}");
                }
            }
        }
        assert!(!MAGIC_OR_JWT_FIRST[usize::from(b'a')]);
    }

    const IMEI: &str = "490154203237518";
    const JSON: &[u8] = br#"{"device":{"imei":"490154203237518","adid":"38400000-8cf0-11bd-b23e-10b96e40000d"},"email":"tester\u0040example.org"}"#;

    fn ex(path: &str, headers: &[(&str, &[u8])], body: &[u8]) -> Exchange {
        let mut e = Exchange::new("x-1", SourceKind::Har, Timestamp(0));
        e.path = path.into();
        e.request_headers = headers.iter().map(|(n, v)| Header::new(*n, *v)).collect();
        e.request_body = body.to_vec();
        e
    }

    fn run(e: &Exchange) -> (Vec<Part<'_>>, Vec<Anomaly>) {
        run_with(e, &Limits::default())
    }

    fn run_with<'a>(e: &'a Exchange, limits: &Limits) -> (Vec<Part<'a>>, Vec<Anomaly>) {
        let mut anomalies = Vec::new();
        let parts = request_parts(e, limits, &mut anomalies);
        (parts, anomalies)
    }

    fn kinds(a: &[Anomaly]) -> Vec<&str> {
        a.iter().map(|a| a.kind.as_str()).collect()
    }

    /// (location of the hit, layers) for every occurrence of `needle` in any part.
    fn hits(parts: &[Part<'_>], needle: &str) -> Vec<(String, Vec<&'static str>)> {
        let n = needle.as_bytes();
        let mut out = Vec::new();
        for p in parts {
            for i in memchr::memmem::find_iter(&p.data, n) {
                out.push((p.location_at(i..i + n.len()), p.layers.clone()));
            }
        }
        out
    }

    #[test]
    fn a_dns_over_https_get_has_its_query_names_searched() {
        // RFC 8484 §4.1.1's example: a query for www.example.com.
        let e = ex(
            "/dns-query?dns=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB",
            &[],
            b"",
        );
        let (parts, _) = run(&e);
        assert_eq!(&part(&parts, "query:dns").data[..], b"www.example.com");
        // Another parameter of that shape is not read as DNS.
        let e = ex(
            "/q?d=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB",
            &[],
            b"",
        );
        assert!(hits(&run(&e).0, "www.example.com").is_empty());
    }

    #[test]
    fn a_tls_or_quic_connections_server_name_is_searched_once() {
        let name = "0eaed834a1e6f4b2bf0c024e0013dea1.b.metrics-sdk.example";
        let mut e = ex("", &[], b"");
        e.metadata_only = true;
        e.tls = Some(crate::exchange::TlsInfo {
            sni: Some(name.into()),
            ..Default::default()
        });
        for (scheme, searched) in [("tls", true), ("quic", true), ("tcp", false)] {
            // A part of a decrypted connection in a protocol no parser reads
            // (`tcp`) carries the name too; its metadata exchange searched it.
            e.scheme = scheme.into();
            let (parts, _) = run(&e);
            let sni: Vec<&Part> = parts.iter().filter(|p| p.location == "sni").collect();
            assert_eq!(sni.len(), usize::from(searched), "{scheme}");
            if searched {
                assert_eq!(&sni[0].data[..], name.as_bytes());
            }
        }
        // A request's host is searched in its Host header instead.
        e.metadata_only = false;
        e.scheme = "https".into();
        assert!(run(&e).0.iter().all(|p| p.location != "sni"));
    }

    fn part<'p>(parts: &'p [Part<'_>], location: &str) -> &'p Part<'p> {
        parts
            .iter()
            .find(|p| p.location == location)
            .unwrap_or_else(|| {
                panic!(
                    "no part {location}: {:?}",
                    parts.iter().map(|p| &p.location).collect::<Vec<_>>()
                )
            })
    }

    #[test]
    fn json_walk_notes_signal_and_coordinate_keys() {
        let noted = |body: &str| {
            let e = ex(
                "/",
                &[("Content-Type", b"application/json")],
                body.as_bytes(),
            );
            let (parts, _) = run(&e);
            let j = part(&parts, "body").json.clone().expect("a JSON part");
            (j.names_signal_key(), j.names_coordinate_key())
        };
        assert_eq!(
            noted(r#"{"a":"gdpr","lat":{"x":1},"gpp":[1]}"#),
            (Some(false), Some(false))
        );
        assert_eq!(noted(r#"{"regs":{"gdpr":1}}"#), (Some(true), Some(false)));
        assert_eq!(noted(r#"[{"Latitude":"1.5"}]"#), (Some(false), Some(true)));
        assert_eq!(
            noted(r#"{"gps_lng":2,"consent":"x"}"#),
            (Some(true), Some(true))
        );
        assert_eq!(LazyIndex::default().names_signal_key(), None, "not walked");
    }

    #[test]
    fn url_path_and_query() {
        let e = ex(
            "/v1/dev%20ice/list?aaid=abc&name=Zhang+San&e=tester%40example.org&flag#frag",
            &[],
            b"",
        );
        let (parts, anomalies) = run(&e);
        assert!(anomalies.is_empty());
        assert_eq!(&*part(&parts, "path").data, b"/v1/dev ice/list");
        assert!(matches!(
            part(&parts, "query:aaid").data,
            Cow::Borrowed(b"abc")
        ));
        assert_eq!(&*part(&parts, "query:name").data, b"Zhang San");
        assert_eq!(&*part(&parts, "query:e").data, b"tester@example.org");
        assert_eq!(&*part(&parts, "query").data, b"flag");
        assert_eq!(parts.len(), 5);
    }

    #[test]
    fn base64_path_segment() {
        let seg = gp::URL_SAFE_NO_PAD.encode(format!("imei={IMEI}"));
        let e = ex(&format!("/t/{seg}/x"), &[], b"");
        let (parts, _) = run(&e);
        assert_eq!(
            hits(&parts, IMEI),
            vec![
                ("path".to_string(), vec!["base64"]),
                ("path&imei".to_string(), vec!["base64"])
            ]
        );
    }

    #[test]
    fn headers_and_cookies() {
        let basic = format!("Basic {}", gp::STANDARD.encode("tester@example.org:secret"));
        let e = ex(
            "/",
            &[
                (":method", b"GET"),
                (":path", b"/"),
                (":scheme", b"https"),
                (":authority", b"h.example"),
                ("User-Agent", b"Mozilla/5.0"),
                ("Cookie", b"sid=s1; em=tester%40example.org; uid=\"u1\""),
                ("Authorization", basic.as_bytes()),
            ],
            b"",
        );
        let (parts, _) = run(&e);
        let locs: Vec<_> = parts.iter().map(|p| p.location.to_string()).collect();
        assert_eq!(
            locs,
            vec![
                "path",
                "header::authority",
                "header:User-Agent",
                "cookie:sid",
                "cookie:em",
                "cookie:uid",
                "header:Authorization",
                "header:Authorization",
            ]
        );
        assert_eq!(&*part(&parts, "cookie:em").data, b"tester@example.org");
        assert_eq!(&*part(&parts, "cookie:uid").data, b"u1");
        assert_eq!(
            hits(&parts, "tester@example.org"),
            vec![
                ("cookie:em".to_string(), vec![]),
                ("header:Authorization".to_string(), vec!["base64"])
            ]
        );
    }

    /// Trailer fields are searched and named as such, but their names mean nothing:
    /// a trailer `Content-Encoding` or `Content-Type` does not change how the body is
    /// read, a trailer `Cookie` is not split into cookies.
    #[test]
    fn trailer_fields_are_searched_but_never_acted_on() {
        let body = gzip(JSON);
        let plain = ex("/", &[("Host", b"h.example")], &body);
        let mut e = plain.clone();
        e.request_headers.extend([
            Header::trailer("Content-Encoding", &b"gzip"[..]),
            Header::trailer("Content-Type", &b"application/x-www-form-urlencoded"[..]),
            Header::trailer("Cookie", &b"uid=u1"[..]),
            Header::trailer("X-Device", IMEI.as_bytes()),
        ]);
        let (parts, anomalies) = run(&e);
        let (plain_parts, plain_anomalies) = run(&plain);
        assert_eq!(kinds(&anomalies), kinds(&plain_anomalies));
        let locations = |parts: &[Part<'_>]| -> Vec<String> {
            parts.iter().map(|p| p.location.to_string()).collect()
        };
        let (locs, plain_locs) = (locations(&parts), locations(&plain_parts));
        assert_eq!(
            locs[..6],
            [
                "path",
                "header:Host",
                "trailer:Content-Encoding",
                "trailer:Content-Type",
                "trailer:Cookie",
                "trailer:X-Device",
            ]
        );
        // The body is read as it is without them (gzip found by its magic bytes).
        assert_eq!(locs[6..], plain_locs[2..]);
        let body_of = |parts: &[Part<'_>]| {
            parts
                .iter()
                .filter(|p| p.location == "body")
                .map(|p| p.data.to_vec())
                .collect::<Vec<_>>()
        };
        assert_eq!(body_of(&parts), body_of(&plain_parts));
        assert_eq!(
            hits(&parts, IMEI)[0],
            ("trailer:X-Device".to_string(), vec![])
        );
        // The same fields in the head are acted on: the body gunzipped, the cookie
        // split.
        for h in &mut e.request_headers {
            h.trailer = false;
        }
        let (parts, _) = run(&e);
        assert_eq!(
            hits(&parts, IMEI),
            [
                ("header:X-Device".to_string(), vec![]),
                ("body:$.device.imei".to_string(), vec![])
            ]
        );
        assert!(parts.iter().any(|p| p.location == "cookie:uid"));
    }

    #[test]
    fn each_content_encoding() {
        for (name, enc) in [
            ("gzip", gzip(JSON)),
            ("x-gzip", gzip(JSON)),
            ("deflate", zlib(JSON)),
            ("deflate", raw_deflate(JSON)),
            ("br", brotli(JSON)),
            ("zstd", zstd_raw(JSON)),
        ] {
            let e = ex("/", &[("Content-Encoding", name.as_bytes())], &enc);
            let (parts, anomalies) = run(&e);
            assert!(anomalies.is_empty(), "{name}: {anomalies:?}");
            assert_eq!(&*part(&parts, "body").data, JSON, "{name}");
        }
    }

    #[test]
    fn several_encodings_and_chunked() {
        let enc = brotli(&gzip(JSON));
        let mut chunked = Vec::new();
        for c in enc.chunks(7) {
            chunked.extend_from_slice(format!("{:x};x=y\r\n", c.len()).as_bytes());
            chunked.extend_from_slice(c);
            chunked.extend_from_slice(b"\r\n");
        }
        chunked.extend_from_slice(b"0\r\nTrailer: t\r\n\r\n");
        let e = ex(
            "/",
            &[
                ("Content-Encoding", b"gzip, br"),
                ("Transfer-Encoding", b"chunked"),
                ("Content-Type", b"application/json; charset=utf-8"),
            ],
            &chunked,
        );
        let (parts, anomalies) = run(&e);
        assert!(anomalies.is_empty(), "{anomalies:?}");
        assert_eq!(&*part(&parts, "body").data, JSON);
    }

    #[test]
    fn content_codings_listed_in_two_lines_are_all_undone() {
        // `Content-Encoding: gzip` then `Content-Encoding: br`: one list, gzip applied
        // first (RFC 9110 §5.3); a trailer's line is no part of it.
        let enc = brotli(&gzip(JSON));
        let e = ex(
            "/",
            &[("Content-Encoding", b"gzip"), ("content-encoding", b"br")],
            &enc,
        );
        let (parts, anomalies) = run(&e);
        assert!(anomalies.is_empty(), "{anomalies:?}");
        assert_eq!(&*part(&parts, "body").data, JSON);
        let mut e = ex("/", &[("Content-Encoding", b"gzip")], &gzip(JSON));
        let mut trailer = Header::new("Content-Encoding", "br");
        trailer.trailer = true;
        e.request_headers.push(trailer);
        let (parts, anomalies) = run(&e);
        assert!(anomalies.is_empty(), "{anomalies:?}");
        assert_eq!(&*part(&parts, "body").data, JSON);
    }

    #[test]
    fn transfer_codings_listed_in_two_lines_are_all_undone() {
        // `Transfer-Encoding: deflate` then `Transfer-Encoding: gzip, chunked` (the
        // capture parser has taken the chunks off already): deflate applied first.
        let enc = gzip(&zlib(JSON));
        let e = ex(
            "/",
            &[
                ("Transfer-Encoding", b"deflate"),
                ("transfer-encoding", b"gzip, chunked"),
            ],
            &enc,
        );
        let (parts, anomalies) = run(&e);
        assert!(anomalies.is_empty(), "{anomalies:?}");
        assert_eq!(&*part(&parts, "body").data, JSON);
    }

    #[test]
    fn already_decoded_bodies_pass_silently() {
        // HAR: decoded text, headers still say chunked and gzip.
        let e = ex(
            "/",
            &[
                ("Content-Encoding", b"gzip"),
                ("Transfer-Encoding", b"chunked"),
            ],
            JSON,
        );
        let (parts, anomalies) = run(&e);
        assert!(anomalies.is_empty(), "{anomalies:?}");
        assert!(matches!(part(&parts, "body").data, Cow::Borrowed(_)));
        assert_eq!(
            hits(&parts, IMEI),
            vec![("body:$.device.imei".to_string(), vec![])]
        );
    }

    #[test]
    fn corrupt_and_unknown_encodings() {
        let mut enc = gzip(JSON);
        enc.truncate(12);
        let e = ex("/", &[("Content-Encoding", b"gzip")], &enc);
        let (parts, anomalies) = run(&e);
        assert_eq!(kinds(&anomalies), vec!["content-decoding-error"]);
        assert_eq!(
            anomalies[0].detail,
            "gzip stream cut short: the body ends before the stream does; body searched undecoded"
        );
        assert_eq!(&*part(&parts, "body").data, &enc[..]);

        let e = ex(
            "/",
            &[("Content-Encoding", b"compress")],
            b"\x1f\x9d\x90abc",
        );
        let (parts, anomalies) = run(&e);
        assert_eq!(kinds(&anomalies), vec!["content-decoding-error"]);
        assert_eq!(&*part(&parts, "body").data, b"\x1f\x9d\x90abc");
    }

    /// About 1.5 MB of a JSON array of events, the IMEI's object after the first
    /// 60 KB.
    fn events() -> Vec<u8> {
        let mut plain = b"[".to_vec();
        let mut i = 0u32;
        while plain.len() < 1_500_000 {
            if i == 3_000 {
                plain.extend_from_slice(JSON);
                plain.push(b',');
            }
            plain.extend_from_slice(format!("{{\"seq\":{i},\"t\":{}}},", i * 7919).as_bytes());
            i += 1;
        }
        plain.extend_from_slice(b"{}]");
        plain
    }

    /// `gzip, br` cut by the source: the br stream's part decodes to a gzip stream's
    /// part, which is undone too (it was searched as gzip bytes until 7 December).
    #[test]
    fn a_body_of_several_codings_cut_by_a_cap_is_undone_in_each() {
        let enc = brotli(&gzip(&events()));
        let kept = &enc[..enc.len() / 2];
        let mut e = ex("/", &[("Content-Encoding", b"gzip, br")], kept);
        e.request_body_cut = true;
        let (parts, anomalies) = run(&e);
        assert!(anomalies.is_empty(), "{anomalies:?}");
        let body = &part(&parts, "body").data;
        assert!(body.len() > 100_000 && events().starts_with(body));
        assert!(!hits(&parts, IMEI).is_empty());
        // Sent whole but cut short by the app: the outer coding's error, as before.
        let e = ex("/", &[("Content-Encoding", b"gzip, br")], kept);
        let (_, anomalies) = run(&e);
        assert_eq!(kinds(&anomalies), vec!["content-decoding-error"]);
        assert!(
            anomalies[0].detail.starts_with("br stream cut short"),
            "{anomalies:?}"
        );
    }

    #[test]
    fn a_compressed_body_cut_by_a_cap_is_not_a_decoding_error() {
        let enc = gzip(&events());
        let kept = &enc[..enc.len() / 2];
        // Cut by the source (the proxy's --body-cap, a capture's kept part): its own
        // anomaly says so.
        let mut e = ex("/", &[("Content-Encoding", b"gzip")], kept);
        e.request_body_cut = true;
        let (parts, anomalies) = run(&e);
        assert!(anomalies.is_empty(), "{anomalies:?}");
        assert!(events().starts_with(&part(&parts, "body").data));
        assert!(part(&parts, "body").data.len() > 100_000);
        assert!(!hits(&parts, IMEI).is_empty());
        // Cut by the analysis's own limit: its body-size-limit only.
        let e = ex("/", &[("Content-Encoding", b"gzip")], &enc);
        let limits = Limits {
            max_body_bytes: kept.len(),
            ..Limits::default()
        };
        let (parts, anomalies) = run_with(&e, &limits);
        assert_eq!(kinds(&anomalies), vec!["body-size-limit"]);
        assert!(!hits(&parts, IMEI).is_empty());
        // Sent whole but cut short by the app: a decoding error that says so.
        let e = ex("/", &[("Content-Encoding", b"gzip")], kept);
        let (parts, anomalies) = run(&e);
        assert_eq!(
            kinds(&anomalies),
            vec!["content-decoding-error", "json-malformed"]
        );
        assert!(
            anomalies[0].detail.contains("gzip stream cut short"),
            "{anomalies:?}"
        );
        assert!(!hits(&parts, IMEI).is_empty());
    }

    #[test]
    fn a_body_cut_by_a_cap_ends_inside_its_json_chunks_or_parts_silently() {
        let json = &JSON[..60];
        let chunked = b"40\r\n{\"device\":{\"imei\":\"490154203237518\"";
        let multipart = b"--b\r\nContent-Disposition: form-data; name=\"imei\"\r\n\r\n490154203237518\r\n--b\r\nContent-Disposition: form-data; name=\"log\"\r\n\r\nline one";
        for (headers, body, whole_anomaly) in [
            (
                &[("Content-Type", &b"application/json"[..])][..],
                json,
                "json-malformed",
            ),
            (
                &[("Transfer-Encoding", b"chunked")],
                &chunked[..],
                "chunked-malformed",
            ),
            (
                &[("Content-Type", b"multipart/form-data; boundary=b")],
                &multipart[..],
                "multipart-malformed",
            ),
        ] {
            // Sent like this: malformed.
            let mut e = ex("/", headers, body);
            let (parts, anomalies) = run(&e);
            assert!(kinds(&anomalies).contains(&whole_anomaly), "{anomalies:?}");
            assert!(!hits(&parts, IMEI).is_empty());
            // Kept like this of a longer body: as expected, and still searched.
            e.request_body_cut = true;
            let (parts, anomalies) = run(&e);
            assert!(anomalies.is_empty(), "{whole_anomaly}: {anomalies:?}");
            assert!(!hits(&parts, IMEI).is_empty(), "{whole_anomaly}");
        }
        // JSON that breaks before the cut is malformed all the same.
        let mut e = ex(
            "/",
            &[("Content-Type", b"application/json")],
            b"{\"a\":}, \"490154203237518\"",
        );
        e.request_body_cut = true;
        assert_eq!(kinds(&run(&e).1), vec!["json-malformed"]);
    }

    #[test]
    fn empty_gzip_members_stop_the_decoding() {
        // A real member, then 7 MiB of empty ones: a decoder set-up per 20 bytes,
        // about a second of CPU before the encoded-ahead rule.
        let enc = gzip_then_empty_members(JSON, 7 << 20);
        let e = ex("/", &[("Content-Encoding", b"gzip")], &enc);
        let (parts, anomalies) = run(&e);
        assert_eq!(kinds(&anomalies), vec!["decompression-limit"]);
        assert!(
            anomalies[0].detail.contains("empty gzip members"),
            "{anomalies:?}"
        );
        assert_eq!(&*part(&parts, "body").data, JSON);
        assert_eq!(
            hits(&parts, IMEI),
            vec![("body:$.device.imei".to_string(), vec![])]
        );
    }

    #[test]
    fn decompression_bomb_is_cut() {
        let member = gzip(&vec![0u8; 1 << 20]);
        let bomb = member.repeat(100);
        let e = ex("/", &[("Content-Encoding", b"gzip")], &bomb);
        let limits = Limits {
            max_decoded_bytes: 4 << 20,
            ..Limits::default()
        };
        let (parts, anomalies) = run_with(&e, &limits);
        assert_eq!(kinds(&anomalies), vec!["decompression-limit"]);
        assert_eq!(part(&parts, "body").data.len(), 4 << 20);
    }

    #[test]
    fn body_size_limit() {
        let e = ex("/", &[], b"abcdefghij");
        let limits = Limits {
            max_body_bytes: 4,
            ..Limits::default()
        };
        let (parts, anomalies) = run_with(&e, &limits);
        assert_eq!(kinds(&anomalies), vec!["body-size-limit"]);
        assert_eq!(&*part(&parts, "body").data, b"abcd");
    }

    #[test]
    fn malformed_chunked_keeps_everything() {
        let e = ex(
            "/",
            &[("Transfer-Encoding", b"chunked")],
            b"5\r\nhello\r\nzz\r\nworld",
        );
        let (parts, anomalies) = run(&e);
        assert_eq!(kinds(&anomalies), vec!["chunked-malformed"]);
        assert_eq!(&*part(&parts, "body").data, b"hellozz\r\nworld");
    }

    #[test]
    fn form_body() {
        let e = ex(
            "/",
            &[("Content-Type", b"application/x-www-form-urlencoded")],
            b"imei=490154203237518&email=tester%40example.org&n=a+b",
        );
        let (parts, _) = run(&e);
        assert!(matches!(part(&parts, "form:imei").data, Cow::Borrowed(_)));
        assert_eq!(&*part(&parts, "form:email").data, b"tester@example.org");
        assert_eq!(&*part(&parts, "form:n").data, b"a b");
        // Sniffed without a content type, too.
        let e = ex(
            "/",
            &[("Content-Type", b"text/plain")],
            b"a=1&imei=490154203237518",
        );
        assert_eq!(
            hits(&run(&e).0, IMEI),
            vec![("form:imei".to_string(), vec![])]
        );
    }

    #[test]
    fn multipart_body() {
        let gz = gzip(format!("log line imei {IMEI}").as_bytes());
        let mut body = b"--a\"b\r\nContent-Disposition: form-data; name=\"meta\"\r\nContent-Type: application/json\r\n\r\n{\"d\":{\"imei\":\"490154203237518\"}}\r\n--a\"b\r\nContent-Disposition: form-data; filename=\"crash.gz\"\r\n\r\n".to_vec();
        body.extend_from_slice(&gz);
        body.extend_from_slice(b"\r\n--a\"b--\r\n");
        let e = ex(
            "/",
            &[("Content-Type", b"multipart/form-data; boundary=\"a\\\"b\"")],
            &body,
        );
        let (parts, anomalies) = run(&e);
        assert!(anomalies.is_empty(), "{anomalies:?}");
        assert_eq!(
            hits(&parts, IMEI),
            vec![
                ("form:meta$.d.imei".to_string(), vec![]),
                ("form:crash.gz".to_string(), vec!["gzip"])
            ]
        );
        // LF line ends, unquoted boundary.
        let e = ex(
            "/",
            &[("Content-Type", b"multipart/form-data; boundary=XX")],
            b"--XX\nContent-Disposition: form-data; name=imei\n\n490154203237518\n--XX--\n",
        );
        assert_eq!(
            hits(&run(&e).0, IMEI),
            vec![("form:imei".to_string(), vec![])]
        );
    }

    #[test]
    fn json_body_paths_and_unescaped_strings() {
        let e = ex("/", &[("Content-Type", b"application/json")], JSON);
        let (parts, anomalies) = run(&e);
        assert!(anomalies.is_empty());
        assert_eq!(parts.len(), 4, "{parts:?}"); // path, header, body, body:$.email
        let body = part(&parts, "body");
        assert!(matches!(body.data, Cow::Borrowed(_)));
        assert_eq!(
            hits(&parts, IMEI),
            vec![("body:$.device.imei".to_string(), vec![])]
        );
        assert_eq!(
            hits(&parts, "8cf0"),
            vec![("body:$.device.adid".to_string(), vec![])]
        );
        // The plain form of an escaped string is its own part at its path.
        assert_eq!(
            hits(&parts, "tester@example.org"),
            vec![("body:$.email".to_string(), vec![])]
        );
        // A hit spanning two values, or outside any, is just `body`.
        let at = memchr::memmem::find(JSON, b"518\",\"adid").unwrap();
        assert_eq!(body.location_at(at..at + 10), "body");
        assert_eq!(body.location_at(0..1), "body");
    }

    #[test]
    fn truncated_and_deep_json() {
        let e = ex("/", &[("Content-Type", b"application/json")], &JSON[..60]);
        let (parts, anomalies) = run(&e);
        assert_eq!(kinds(&anomalies), vec!["json-malformed"]);
        assert_eq!(
            hits(&parts, IMEI),
            vec![("body:$.device.imei".to_string(), vec![])]
        );

        let e = ex("/", &[], &vec![b'['; 100_000]);
        let (parts, anomalies) = run(&e);
        assert_eq!(kinds(&anomalies), vec!["json-nesting-limit"]);
        assert_eq!(part(&parts, "body").data.len(), 100_000);
    }

    #[test]
    fn base64_nested_twice() {
        let inner = gp::STANDARD.encode(format!("imei={IMEI}"));
        let outer = gp::URL_SAFE.encode(format!("{{\"a\":1,\"blob\":\"{inner}\"}}"));
        let e = ex(&format!("/c?data={outer}"), &[], b"");
        let (parts, _) = run(&e);
        assert_eq!(
            hits(&parts, IMEI),
            vec![
                ("query:data$.blob".to_string(), vec!["base64", "base64"]),
                (
                    "query:data$.blob&imei".to_string(),
                    vec!["base64", "base64"]
                ),
            ]
        );
        // One level less deep than needed: the inner blob stays encoded.
        let limits = Limits {
            max_depth: 2,
            ..Limits::default()
        };
        assert!(hits(&run_with(&e, &limits).0, IMEI).is_empty());
    }

    #[test]
    fn percent_encoded_json_and_base64_gzip_values() {
        let e = ex(
            "/c?data=%7B%22device%22%3A%7B%22imei%22%3A%22490154203237518%22%7D%7D",
            &[],
            b"",
        );
        assert_eq!(
            hits(&run(&e).0, IMEI),
            vec![("query:data$.device.imei".to_string(), vec![])]
        );
        let blob = gp::STANDARD.encode(gzip(JSON));
        let e = ex("/", &[("X-Info", blob.as_bytes())], b"");
        assert_eq!(
            hits(&run(&e).0, IMEI),
            vec![(
                "header:X-Info$.device.imei".to_string(),
                vec!["gzip", "base64"]
            )]
        );
    }

    #[test]
    fn slash_escapes_are_undone() {
        let blob = gp::STANDARD.encode(format!("??>imei={IMEI}??>"));
        assert!(blob.contains('/'));
        let body = format!(
            "{{\"tz\":\"Europe\\/Berlin\",\"b\":\"{}\"}}",
            blob.replace('/', "\\/")
        );
        let e = ex("/", &[], body.as_bytes());
        let (parts, _) = run(&e);
        assert_eq!(
            hits(&parts, "Europe/Berlin"),
            vec![("body:$.tz".to_string(), vec![])]
        );
        assert_eq!(
            hits(&parts, IMEI),
            vec![("body:$.b".to_string(), vec!["base64"])]
        );
    }

    #[test]
    fn json_string_holding_json_and_jwt() {
        let body = br#"{"payload":"{\"imei\":\"490154203237518\"}"}"#;
        let e = ex("/", &[], body);
        // The raw text shows the IMEI too (inside the escaped string).
        assert_eq!(
            hits(&run(&e).0, IMEI),
            vec![
                ("body:$.payload".to_string(), vec![]),
                ("body:$.payload$.imei".to_string(), vec![])
            ]
        );
        let jwt = format!(
            "Bearer {}.{}.c2lnbmF0dXJl",
            gp::URL_SAFE_NO_PAD.encode("{\"alg\":\"HS256\"}"),
            gp::URL_SAFE_NO_PAD.encode(format!("{{\"sub\":\"{IMEI}\"}}"))
        );
        let e = ex("/", &[("Authorization", jwt.as_bytes())], b"");
        assert_eq!(
            hits(&run(&e).0, IMEI),
            vec![("header:Authorization$.sub".to_string(), vec!["base64"])]
        );
    }

    #[test]
    fn ordinary_values_are_not_decoded() {
        let e = ex(
            "/c?app=ApplicationName&id=9774d56d682e549c&u=38400000-8cf0-11bd-b23e-10b96e40000d",
            &[("User-Agent", b"okhttp/4.9.0")],
            b"",
        );
        let (parts, _) = run(&e);
        assert!(parts.iter().all(|p| p.layers.is_empty()));
        assert_eq!(parts.len(), 5);
    }

    #[test]
    fn too_many_parts() {
        let query: String = (0..50).map(|i| format!("k{i}=v&")).collect();
        let e = ex(&format!("/?{query}"), &[("Cookie", b"a=1")], b"");
        let limits = Limits {
            max_parts: 10,
            ..Limits::default()
        };
        let (parts, anomalies) = run_with(&e, &limits);
        assert_eq!(parts.len(), 10);
        assert_eq!(kinds(&anomalies), vec!["too-many-parts"]);
    }

    #[test]
    fn nested_bomb_counts_against_the_budget() {
        let member = gzip(&vec![b'a'; 1 << 20]);
        let blob = gp::STANDARD.encode(member.repeat(8));
        let e = ex(&format!("/?a={blob}&b={blob}"), &[], b"");
        let limits = Limits {
            max_decoded_bytes: 3 << 20,
            ..Limits::default()
        };
        let (parts, anomalies) = run_with(&e, &limits);
        let decoded: usize = parts
            .iter()
            .filter(|p| p.layers.contains(&"gzip"))
            .map(|p| p.data.len())
            .sum();
        assert!(decoded <= 3 << 20, "{decoded}");
        assert!(kinds(&anomalies).contains(&"decompression-limit"));
    }

    #[test]
    fn a_spent_budget_is_reported_once() {
        let blob = gp::STANDARD.encode(gzip(&vec![b'a'; 1 << 20]));
        let query: Vec<String> = (0..6).map(|i| format!("v{i}={blob}")).collect();
        let e = ex(&format!("/?{}", query.join("&")), &[], b"");
        let limits = Limits {
            max_decoded_bytes: 2 << 20,
            ..Limits::default()
        };
        let (_, anomalies) = run_with(&e, &limits);
        let spent = anomalies
            .iter()
            .filter(|a| a.detail.contains("budget"))
            .count();
        assert_eq!(spent, 1, "{anomalies:?}");
        assert!(
            kinds(&anomalies)
                .iter()
                .filter(|k| **k == "decompression-limit")
                .count()
                <= 2
        );
    }

    proptest! {
        /// The strings gathered by [`PendingStrings`] (a set handed over when full,
        /// the rest at the end) are those of [`want_string`] called for each string
        /// taken as the walk finds it (the call it replaces), in the same order.
        #[test]
        fn pending_strings_hand_over_as_direct_calls(
            data in prop::collection::vec(
                prop_oneof![
                    3 => prop::sample::select(b"ABCDEFabcdef0123456789+/=".to_vec()),
                    1 => any::<u8>(),
                ],
                0..200,
            ),
            values in prop::collection::vec((0usize..210, 0usize..80, any::<bool>()), 0..100),
        ) {
            let mut direct: Wanted = Vec::new();
            let mut gathered: Wanted = Vec::new();
            let mut pending = PendingStrings::new();
            for (id, &(start, len, escaped)) in values.iter().enumerate() {
                let v = json::StringValue { id, range: start..start + len, escaped };
                let take = len >= 2 && (escaped || len >= b64::MIN_LEN);
                if take {
                    want_string(&data, id, start, start + len, escaped, &mut direct);
                }
                pending.note(v, take, &data, &mut gathered);
            }
            pending.flush(&data, &mut gathered);
            prop_assert_eq!(gathered, direct);
        }
    }

    proptest! {
        /// Paths asked of a [`LazyIndex`] not built yet (the first by a walk up to its
        /// value, the others of the whole index) are those of the whole index, asked
        /// in any order.
        #[test]
        fn lazy_paths_are_those_of_the_whole_index(
            v in json::tests::arb_json(),
            pretty in any::<bool>(),
            picks in prop::collection::vec(any::<prop::sample::Index>(), 1..4),
        ) {
            let text = if pretty { serde_json::to_string_pretty(&v) } else { serde_json::to_string(&v) }.unwrap();
            let data = text.as_bytes();
            let (whole, _) = json::scan(data);
            let values: Vec<_> = whole.values().collect();
            prop_assume!(!values.is_empty());
            let lazy = LazyIndex::default();
            for pick in picks {
                let v = &values[pick.index(values.len())];
                prop_assert_eq!(lazy.path(data, v.id, v.range.start), whole.path(data, v.id));
            }
        }
    }

    proptest! {
        /// `place_and_name` splits as `split_once(':')` does, on any text (colons
        /// made common, non-ASCII included).
        #[test]
        fn place_and_name_splits_as_split_once(location in "[a-z:$.é€]{0,24}") {
            let part = Part::new(location.clone(), &[][..]);
            prop_assert_eq!(part.place_and_name(), location.split_once(':'));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn never_panics(
            body in prop::collection::vec(any::<u8>(), 0..400),
            ct in prop::sample::select(vec!["", "application/json", "application/x-www-form-urlencoded", "multipart/form-data; boundary=b", "multipart/form-data", "text/plain", "application/octet-stream"]),
            ce in prop::sample::select(vec!["", "gzip", "deflate", "br", "zstd", "gzip, br", "identity", "bogus"]),
            te in prop::sample::select(vec!["", "chunked", "gzip, chunked"]),
            query in "[a-z0-9=&%+/_-]{0,40}",
            tight in any::<bool>(),
        ) {
            let mut headers: Vec<(&str, &[u8])> = Vec::new();
            if !ct.is_empty() { headers.push(("Content-Type", ct.as_bytes())); }
            if !ce.is_empty() { headers.push(("Content-Encoding", ce.as_bytes())); }
            if !te.is_empty() { headers.push(("Transfer-Encoding", te.as_bytes())); }
            headers.push(("Cookie", &body[..body.len().min(30)]));
            let e = ex(&format!("/p?{query}"), &headers, &body);
            let limits = if tight {
                Limits { max_body_bytes: 100, max_decoded_bytes: 1000, max_ratio: 2, max_depth: 6, max_parts: 4 }
            } else {
                Limits::default()
            };
            let (parts, _) = run_with(&e, &limits);
            prop_assert!(parts.len() <= limits.max_parts);
            for p in &parts {
                for at in [0, p.data.len() / 2] {
                    let _ = p.location_at(at..(at + 3).min(p.data.len()));
                }
            }
        }

        /// The JSON walk's screen ([`blob_worth_trying`]) drops only strings in which
        /// [`Ctx::blobs`] finds nothing: no part, no anomaly.
        #[test]
        fn blob_screen_hides_nothing(
            s in prop_oneof![
                "[A-Za-z0-9+/=._ -]{0,48}".prop_map(String::into_bytes),
                "[0-9a-f]{12,40}".prop_map(String::into_bytes),
                "[a-z]{12,30}|[A-Z]{12,30}|[0-9]{12,30}".prop_map(String::into_bytes),
                "eyJ[A-Za-z0-9_.=-]{0,40}".prop_map(String::into_bytes),
                "[xh8HX][ -~]{1,20}".prop_map(String::into_bytes),
                prop::collection::vec(any::<u8>(), 0..48)
                    .prop_map(|raw| gp::STANDARD.encode(raw).into_bytes()),
                "[ -~]{0,40}".prop_map(|t| gp::URL_SAFE_NO_PAD.encode(t).into_bytes()),
                Just(gp::STANDARD.encode(gzip(b"{\"imei\":\"490154203237518\"}")).into_bytes()),
                Just(zlib(b"hello hello hello hello")),
            ],
        ) {
            // Only strings the walk would have collected before the screen matter.
            if !b64::candidate(&s) || blob_worth_trying(&s).is_some() {
                return Ok(());
            }
            let limits = Limits::default();
            let mut anomalies = Vec::new();
            let mut cx = Ctx {
                limits: &limits,
                anomalies: &mut anomalies,
                added: 0,
                parts: Vec::new(),
                full: false,
                budget: limits.max_decoded_bytes,
                budget_spent: false,
                body_cut: false,
            };
            cx.blobs(&s, &|| "body:$.v".into(), &[], Level::TOP.inside());
            prop_assert!(cx.parts.is_empty());
            prop_assert!(anomalies.is_empty());
        }

        #[test]
        fn never_panics_on_structured_input(
            body in prop::collection::vec(prop::sample::select(b"{}[]\":,\\u0a=&%+eyJ-_/QUJD 1\r\n".to_vec()), 0..300),
        ) {
            let e = ex("/", &[], &body);
            let _ = run(&e);
            let e = ex("/", &[("Content-Type", b"multipart/form-data; boundary=\"\r\"")], &body);
            let _ = run(&e);
        }
    }
}
