//! Streaming HAR 1.2 reader: turns each `log.entries[i]` of an HTTP Archive into an
//! [`Exchange`] and hands it to a callback, one at a time.
//!
//! The file is never held whole: serde_json walks `log` → `entries` with hand-written
//! seeds, each entry is read into a small `serde_json::Value` (response bodies, which
//! dominate HAR sizes, are skipped while parsing unless
//! [`HarOptions::keep_response_bodies`]), converted, delivered and dropped. Other
//! `log` members (`pages`, `creator`, `browser`, …) are skipped without being stored.
//! Peak memory is a small multiple of the largest entry.
//!
//! Real exporters (Chrome, Firefox, Safari, Charles, Fiddler, Insomnia, mitmproxy)
//! disagree on details, so reading is lenient where the meaning is clear and every
//! liberty taken is recorded as an [`Anomaly`] on the exchange:
//!
//! - `startedDateTime`: RFC 3339 with any offset and fraction; also `+0100` (no colon),
//!   `+01`, a space instead of `T`, and no zone at all, which is read as UTC. An entry
//!   whose time cannot be read is skipped and counted in [`HarSummary::skipped`] (a
//!   guessed time would be worse evidence than none).
//! - Entries without `request` or without a usable URL are skipped the same way.
//!   URLs that are not network traffic (`data:`, `blob:`, `about:`, browser-extension
//!   schemes — anything but http, https, ws, wss) are skipped and counted in
//!   [`HarSummary::non_network`].
//! - Host: the `:authority` pseudo-header, else the URL's host, else `Host`. A relative
//!   URL (old Chrome) takes its scheme from `:scheme`, else `http`.
//! - Path: path and query exactly as in the URL (the fragment is dropped: it is never
//!   sent). If the URL has no query but `queryString` is not empty, the query is
//!   rebuilt from it (percent-encoded; anomaly `har-synthesized`).
//! - Cookies listed in `request.cookies` but absent from every `Cookie` header are
//!   appended as one synthesized `Cookie` header (anomaly `har-synthesized`).
//! - `postData.text` is the request body (base64-decoded when `encoding` is `base64`);
//!   without `text`, a body is rebuilt from `params` (urlencoded, or multipart when the
//!   MIME type says so or a param has a `fileName`; anomaly `har-synthesized`).
//!   `postData.mimeType` becomes a `Content-Type` header when there is none.
//! - Bodies are stored as exported: HAR `content.text` is usually already decoded
//!   although `Content-Encoding` still names gzip.
//! - `status` may be a number or a numeric string; a wrong type elsewhere in an entry
//!   (`headers: 5`) becomes anomaly `har-field-type` and the field is treated as absent.
//! - `_webSocketMessages` (Chrome, mitmproxy): each `send` message becomes a further
//!   exchange with method `WS`, the handshake's host and path, the message as body
//!   (base64-decoded for binary opcode 2), at the message's `time`: seconds since the
//!   epoch (what Chrome and mitmproxy write), or, if the value is below 10^9, seconds
//!   after the entry's start.
//!
//! Ids are `x-` and the first 16 hex digits of SHA-256(file SHA-256 in hex ‖ entry
//! index as 8 big-endian bytes), with `‖ "ws" ‖ message index` for websocket messages:
//! stable across runs and machines.

use std::borrow::Cow;
use std::fmt;
use std::io::{self, BufReader, Read};

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{hex, BoxError, SourceError};
use crate::exchange::{
    header, header_list, Anomaly, EvidenceRef, Exchange, Header, Response, SourceKind, TlsInfo,
};
use crate::timestamp::{TimeError, Timestamp};

/// Default cap on one header value; longer values are truncated (`header-size-limit`).
pub const MAX_HEADER_VALUE: usize = 1024 * 1024;
/// Default cap on headers per message; further ones are dropped (`header-count-limit`).
pub const MAX_HEADERS: usize = 1_000;
/// Default cap on one body; longer bodies are truncated (`body-size-limit`).
pub const MAX_BODY: usize = 64 * 1024 * 1024;
/// Default cap on websocket messages turned into exchanges per entry
/// (`websocket-message-limit`).
pub const MAX_WS_MESSAGES: usize = 10_000;
/// How many skipped entries [`HarSummary::skip_reasons`] describes; all are counted.
pub const MAX_SKIP_REASONS: usize = 100;

/// Cap on one header name (`header-size-limit`).
pub const MAX_HEADER_NAME: usize = 1024;

const READ_BUFFER: usize = 64 * 1024;
const MAX_CREATOR_LEN: usize = 200;

/// Caps on what one HAR entry may make us store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HarLimits {
    pub max_header_value: usize,
    pub max_headers: usize,
    pub max_body: usize,
    pub max_ws_messages: usize,
}

impl Default for HarLimits {
    fn default() -> Self {
        HarLimits {
            max_header_value: MAX_HEADER_VALUE,
            max_headers: MAX_HEADERS,
            max_body: MAX_BODY,
            max_ws_messages: MAX_WS_MESSAGES,
        }
    }
}

/// How to read one HAR file.
#[derive(Debug, Clone)]
pub struct HarOptions {
    /// Name of the file in error messages (usually its path).
    pub file: String,
    /// SHA-256 (lowercase hex) of the file: goes into evidence references and ids.
    pub file_sha256: Option<String>,
    /// Keep `response.content.text` as the response body (default: skipped unread).
    pub keep_response_bodies: bool,
    pub limits: HarLimits,
}

impl HarOptions {
    /// Options for `file` with the given SHA-256 and default limits.
    pub fn new(file: impl Into<String>, file_sha256: Option<String>) -> Self {
        HarOptions {
            file: file.into(),
            file_sha256,
            keep_response_bodies: false,
            limits: HarLimits::default(),
        }
    }

    /// Keep response bodies.
    pub fn keep_response_bodies(mut self, keep: bool) -> Self {
        self.keep_response_bodies = keep;
        self
    }

    /// Use other limits.
    pub fn limits(mut self, limits: HarLimits) -> Self {
        self.limits = limits;
        self
    }
}

/// One entry that produced no exchange, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedEntry {
    /// 0-based index in `log.entries`.
    pub index: u64,
    pub reason: String,
}

/// What reading a HAR file found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HarSummary {
    /// Entries seen in `log.entries`.
    pub entries: u64,
    /// Exchanges delivered to the callback (entries plus websocket messages).
    pub exchanges: u64,
    /// Of those, exchanges made from websocket messages.
    pub websocket_messages: u64,
    /// Entries whose URL is not network traffic (`data:`, `blob:`, `about:`, …).
    pub non_network: u64,
    /// Entries that could not be turned into an exchange.
    pub skipped: u64,
    /// The first [`MAX_SKIP_REASONS`] skipped entries with their reason.
    pub skip_reasons: Vec<SkippedEntry>,
    /// Anomalies recorded on delivered exchanges.
    pub anomalies: u64,
    /// `log.creator` name and version, e.g. `Firefox 115.0`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creator: Option<String>,
}

/// Reads a HAR file from `input`, calling `each` with every exchange in file order.
///
/// Exchanges before a syntax error are delivered before the error is returned. An
/// error from `each` stops reading and comes back as [`SourceError::Consumer`].
pub fn read_har<R, E, F>(
    input: R,
    opts: &HarOptions,
    mut each: F,
) -> Result<HarSummary, SourceError>
where
    R: Read,
    E: Into<BoxError>,
    F: FnMut(Exchange) -> Result<(), E>,
{
    let io_err = |error| SourceError::Io {
        file: opts.file.clone(),
        error,
    };
    let reader = BufReader::with_capacity(READ_BUFFER, strip_bom(input).map_err(io_err)?);
    let mut sink = |x: Exchange| each(x).map_err(Into::into);
    let mut ctx = Ctx {
        opts,
        sink: &mut sink,
        summary: HarSummary::default(),
        path: Vec::new(),
        consumer_error: None,
        saw_log: false,
        saw_entries: false,
    };
    let mut de = serde_json::Deserializer::from_reader(reader);
    let result = RootSeed { ctx: &mut ctx }
        .deserialize(&mut de)
        .and_then(|()| de.end());
    match result {
        Ok(()) if !ctx.saw_log => Err(SourceError::NotHar {
            file: opts.file.clone(),
            reason: "the top-level object has no `log` member".into(),
        }),
        Ok(()) if !ctx.saw_entries => Err(SourceError::NotHar {
            file: opts.file.clone(),
            reason: "`log` has no `entries` array".into(),
        }),
        Ok(()) => Ok(ctx.summary),
        Err(e) => Err(ctx.into_error(e)),
    }
}

/// Drops a leading UTF-8 byte order mark, however the reader splits its first bytes.
fn strip_bom<R: Read>(mut input: R) -> io::Result<io::Chain<io::Cursor<Vec<u8>>, R>> {
    let mut head = Vec::with_capacity(3);
    (&mut input).take(3).read_to_end(&mut head)?;
    if head == b"\xEF\xBB\xBF" {
        head.clear();
    }
    Ok(io::Cursor::new(head).chain(input))
}

/// One step of a JSON path, for error messages.
enum Seg {
    Key(String),
    Index(u64),
}

fn format_path(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    if s.is_empty() {
        s.push_str("top level");
    }
    s
}

type Sink<'a> = dyn FnMut(Exchange) -> Result<(), BoxError> + 'a;

/// State shared by the seeds while one file is read.
struct Ctx<'o, 's> {
    opts: &'o HarOptions,
    sink: &'s mut Sink<'s>,
    summary: HarSummary,
    /// Where the parser is, maintained by the seeds; left as-is when an error unwinds,
    /// so it names the innermost value at the error.
    path: Vec<Seg>,
    consumer_error: Option<(u64, BoxError)>,
    saw_log: bool,
    saw_entries: bool,
}

impl Ctx<'_, '_> {
    fn into_error(self, e: serde_json::Error) -> SourceError {
        let file = self.opts.file.clone();
        if let Some((entry, error)) = self.consumer_error {
            return SourceError::Consumer { file, entry, error };
        }
        let (line, column) = (e.line(), e.column());
        let message = {
            let full = e.to_string();
            let suffix = format!(" at line {line} column {column}");
            full.strip_suffix(&suffix)
                .map(str::to_string)
                .unwrap_or(full)
        };
        let path = format_path(&self.path);
        match e.classify() {
            serde_json::error::Category::Io => SourceError::Io {
                file,
                error: io::Error::from(e),
            },
            serde_json::error::Category::Data if self.path.is_empty() => SourceError::NotHar {
                file,
                reason: format!("{message} (line {line}, column {column})"),
            },
            serde_json::error::Category::Data => SourceError::WrongType {
                file,
                line,
                column,
                path,
                message,
            },
            serde_json::error::Category::Eof => SourceError::HarSyntax {
                file,
                line,
                column,
                path,
                message: format!("{message} (file truncated?)"),
            },
            serde_json::error::Category::Syntax => SourceError::HarSyntax {
                file,
                line,
                column,
                path,
                message,
            },
        }
    }

    /// Converts entry `index` and delivers its exchanges.
    fn entry<Err: de::Error>(&mut self, index: u64, value: Value) -> Result<(), Err> {
        self.summary.entries += 1;
        let exchanges = match convert_entry(&value, index, self.opts) {
            Ok(x) => x,
            Err(Skip::NonNetwork) => {
                self.summary.non_network += 1;
                return Ok(());
            }
            Err(Skip::Invalid(reason)) => {
                self.summary.skipped += 1;
                if self.summary.skip_reasons.len() < MAX_SKIP_REASONS {
                    self.summary
                        .skip_reasons
                        .push(SkippedEntry { index, reason });
                }
                return Ok(());
            }
        };
        drop(value);
        for x in exchanges {
            self.summary.exchanges += 1;
            if x.method == "WS" {
                self.summary.websocket_messages += 1;
            }
            self.summary.anomalies += x.anomalies.len() as u64;
            if let Err(e) = (self.sink)(x) {
                self.consumer_error = Some((index, e));
                return Err(Err::custom("stopped by the consumer"));
            }
        }
        Ok(())
    }
}

/// The top-level object: finds `log`, skips anything else.
struct RootSeed<'c, 'o, 's> {
    ctx: &'c mut Ctx<'o, 's>,
}

impl<'de> DeserializeSeed<'de> for RootSeed<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RootSeed<'_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object with a `log` member (HTTP Archive)")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Cow<str>>()? {
            if key == "log" {
                self.ctx.saw_log = true;
                self.ctx.path.push(Seg::Key("log".into()));
                map.next_value_seed(LogSeed {
                    ctx: &mut *self.ctx,
                })?;
                self.ctx.path.pop();
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// `log`: streams `entries`, notes `creator`, skips the rest.
struct LogSeed<'c, 'o, 's> {
    ctx: &'c mut Ctx<'o, 's>,
}

impl<'de> DeserializeSeed<'de> for LogSeed<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for LogSeed<'_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the HAR `log` object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Cow<str>>()? {
            match &*key {
                "entries" => {
                    self.ctx.saw_entries = true;
                    self.ctx.path.push(Seg::Key("entries".into()));
                    map.next_value_seed(EntriesSeed {
                        ctx: &mut *self.ctx,
                    })?;
                    self.ctx.path.pop();
                }
                "creator" => {
                    self.ctx.path.push(Seg::Key("creator".into()));
                    let creator = map.next_value_seed(PrunedSeed {
                        path: &mut self.ctx.path,
                        children: CREATOR_PRUNE,
                    })?;
                    self.ctx.path.pop();
                    self.ctx.summary.creator = describe_creator(&creator);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// `log.creator` members never used (`comment` can be long).
const CREATOR_PRUNE: &[PruneNode] = &[drop_key("comment")];

/// `name version` of `log.creator`, if it is an object with string members.
fn describe_creator(creator: &Value) -> Option<String> {
    let name = creator.get("name").and_then(Value::as_str).unwrap_or("");
    let version = creator.get("version").and_then(Value::as_str).unwrap_or("");
    let s = format!("{name} {version}").trim().to_string();
    (!s.is_empty()).then(|| truncate_str(&s, MAX_CREATOR_LEN).to_string())
}

/// `log.entries`: one entry at a time.
struct EntriesSeed<'c, 'o, 's> {
    ctx: &'c mut Ctx<'o, 's>,
}

impl<'de> DeserializeSeed<'de> for EntriesSeed<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for EntriesSeed<'_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the `entries` array")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let prune = if self.ctx.opts.keep_response_bodies {
            ENTRY_PRUNE_KEEP_BODY
        } else {
            ENTRY_PRUNE
        };
        loop {
            // Indices continue across a (malformed) second `entries` member.
            let index = self.ctx.summary.entries;
            self.ctx.path.push(Seg::Index(index));
            let next = seq.next_element_seed(PrunedSeed {
                path: &mut self.ctx.path,
                children: prune,
            })?;
            self.ctx.path.pop();
            match next {
                Some(value) => self.ctx.entry(index, value)?,
                None => return Ok(()),
            }
        }
    }
}

/// A member of an entry that is skipped while parsing (never stored), or descended
/// into to skip some of its members.
struct PruneNode {
    key: &'static str,
    drop: bool,
    children: &'static [PruneNode],
}

const fn drop_key(key: &'static str) -> PruneNode {
    PruneNode {
        key,
        drop: true,
        children: &[],
    }
}

/// Entry members never used: timings, cache, Chrome's initiator stack traces (which
/// can be large).
const ENTRY_PRUNE_KEEP_BODY: &[PruneNode] = &[
    drop_key("timings"),
    drop_key("cache"),
    drop_key("_initiator"),
];

/// As [`ENTRY_PRUNE_KEEP_BODY`], and the response body.
const ENTRY_PRUNE: &[PruneNode] = &[
    drop_key("timings"),
    drop_key("cache"),
    drop_key("_initiator"),
    PruneNode {
        key: "response",
        drop: false,
        children: &[PruneNode {
            key: "content",
            drop: false,
            children: &[drop_key("text")],
        }],
    },
];

/// Reads any JSON value into a [`Value`], dropping pruned members and keeping the JSON
/// path up to date for error messages.
struct PrunedSeed<'p> {
    path: &'p mut Vec<Seg>,
    children: &'static [PruneNode],
}

impl<'de> DeserializeSeed<'de> for PrunedSeed<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for PrunedSeed<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        loop {
            self.path.push(Seg::Index(out.len() as u64));
            let next = seq.next_element_seed(PrunedSeed {
                path: &mut *self.path,
                children: &[],
            })?;
            self.path.pop();
            match next {
                Some(v) => out.push(v),
                None => return Ok(Value::Array(out)),
            }
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let node = self.children.iter().find(|n| n.key == key);
            self.path.push(Seg::Key(key));
            let value = match node {
                Some(n) if n.drop => {
                    map.next_value::<IgnoredAny>()?;
                    None
                }
                _ => Some(map.next_value_seed(PrunedSeed {
                    path: &mut *self.path,
                    children: node.map_or(&[], |n| n.children),
                })?),
            };
            if let (Some(Seg::Key(key)), Some(value)) = (self.path.pop(), value) {
                out.insert(key, value);
            }
        }
        Ok(Value::Object(out))
    }
}

/// Why an entry produced no exchange.
#[derive(Debug)]
enum Skip {
    NonNetwork,
    Invalid(String),
}

/// The exchange id for entry `index` (and websocket message `ws`) of a file.
fn exchange_id(file_sha256: &str, index: u64, ws: Option<u64>) -> String {
    let mut h = Sha256::new();
    h.update(file_sha256.as_bytes());
    h.update(index.to_be_bytes());
    if let Some(m) = ws {
        h.update(b"ws");
        h.update(m.to_be_bytes());
    }
    let digest = h.finalize();
    format!("x-{}", hex(&digest[..8]))
}

/// Anomaly collection with the entry-relative path of each complaint.
#[derive(Default)]
struct Notes {
    anomalies: Vec<Anomaly>,
}

impl Notes {
    fn add(&mut self, kind: &str, detail: impl Into<String>) {
        self.anomalies.push(Anomaly::new(kind, detail));
    }
    fn wrong_type(&mut self, field: &str, expected: &str, got: &Value) {
        self.add(
            "har-field-type",
            format!(
                "{field} is {}, expected {expected}; ignored",
                type_name(got)
            ),
        );
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A string member; a non-string, non-null value is noted and treated as absent.
fn str_field<'v>(
    obj: &'v Map<String, Value>,
    key: &str,
    field: &str,
    notes: &mut Notes,
) -> Option<&'v str> {
    match obj.get(key)? {
        Value::String(s) => Some(s),
        Value::Null => None,
        other => {
            notes.wrong_type(field, "a string", other);
            None
        }
    }
}

/// An array member; other types (except null) are noted and treated as absent.
fn array_field<'v>(
    obj: &'v Map<String, Value>,
    key: &str,
    field: &str,
    notes: &mut Notes,
) -> &'v [Value] {
    match obj.get(key) {
        Some(Value::Array(a)) => a,
        Some(Value::Null) | None => &[],
        Some(other) => {
            notes.wrong_type(field, "an array", other);
            &[]
        }
    }
}

/// Text of a scalar: strings as-is, numbers and booleans printed (`"value": 1`).
fn scalar_text(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Owned(b.to_string())),
        _ => None,
    }
}

fn convert_entry(value: &Value, index: u64, opts: &HarOptions) -> Result<Vec<Exchange>, Skip> {
    let Value::Object(entry) = value else {
        return Err(Skip::Invalid(format!(
            "entry is {}, not an object",
            type_name(value)
        )));
    };
    let mut notes = Notes::default();
    let limits = &opts.limits;

    let request = match entry.get("request") {
        Some(Value::Object(r)) => r,
        Some(other) => return Err(Skip::Invalid(format!("request is {}", type_name(other)))),
        None => return Err(Skip::Invalid("no request".into())),
    };
    let url = match request.get("url") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim(),
        Some(Value::String(_)) => return Err(Skip::Invalid("request.url is empty".into())),
        Some(other) => {
            return Err(Skip::Invalid(format!(
                "request.url is {}",
                type_name(other)
            )))
        }
        None => return Err(Skip::Invalid("no request.url".into())),
    };
    let parts = split_url(url);
    if let Some(scheme) = &parts.scheme {
        // `httpu`: HTTP over UDP, as consentry's own HAR export names SSDP requests.
        if !matches!(scheme.as_str(), "http" | "https" | "ws" | "wss" | "httpu") {
            return Err(Skip::NonNetwork);
        }
    }
    let at = match entry.get("startedDateTime") {
        Some(Value::String(s)) => {
            parse_har_time(s).map_err(|e| Skip::Invalid(format!("startedDateTime: {e}")))?
        }
        Some(other) => {
            return Err(Skip::Invalid(format!(
                "startedDateTime is {}",
                type_name(other)
            )))
        }
        None => return Err(Skip::Invalid("no startedDateTime".into())),
    };

    let mut headers = read_headers(
        array_field(request, "headers", "request.headers", &mut notes),
        "request",
        limits,
        &mut notes,
    );

    let authority =
        header(&headers, ":authority").and_then(|v| host_of(&String::from_utf8_lossy(v)));
    let host_header = header(&headers, "host").and_then(|v| host_of(&String::from_utf8_lossy(v)));
    let host = match (authority, parts.host.clone(), host_header) {
        (Some(h), _, _) | (None, Some(h), _) | (None, None, Some(h)) => h,
        (None, None, None) => {
            return Err(Skip::Invalid(format!(
                "no host in request.url {:?} and no Host header",
                truncate_str(url, 200)
            )))
        }
    };
    let scheme = match &parts.scheme {
        Some(s) => s.clone(),
        None => {
            notes.add(
                "har-relative-url",
                "request.url has no scheme and host; taken from headers",
            );
            header(&headers, ":scheme")
                .map(|v| String::from_utf8_lossy(v).trim().to_ascii_lowercase())
                .filter(|s| matches!(s.as_str(), "http" | "https" | "ws" | "wss"))
                .unwrap_or_else(|| "http".into())
        }
    };

    let mut path = parts.path;
    if !path.contains('?') {
        let query = build_query(array_field(
            request,
            "queryString",
            "request.queryString",
            &mut notes,
        ));
        if !query.is_empty() {
            notes.add("har-synthesized", "query rebuilt from request.queryString");
            path.push('?');
            path.push_str(&query);
        }
    }

    let cookies = array_field(request, "cookies", "request.cookies", &mut notes);
    if let Some(cookie) = missing_cookies(&headers, cookies) {
        notes.add(
            "har-synthesized",
            "Cookie header built from request.cookies",
        );
        push_header(
            &mut headers,
            "Cookie",
            cookie.into_bytes(),
            "request",
            limits,
            &mut notes,
        );
    }

    let (mut body, mut body_cut) = (Vec::new(), false);
    match request.get("postData") {
        Some(Value::Object(post)) => {
            (body, body_cut) = read_post_data(post, &mut headers, limits, &mut notes);
        }
        Some(Value::Null) | None => {}
        Some(other) => notes.wrong_type("request.postData", "an object", other),
    }
    reconcile_content_encoding(&mut headers, &body, false, "request", &mut notes);

    let method = match str_field(request, "method", "request.method", &mut notes).map(str::trim) {
        Some(m) if !m.is_empty() => truncate_str(m, 64).to_string(),
        _ => {
            notes.add("har-field-type", "request.method missing; GET assumed");
            "GET".into()
        }
    };
    let http_version = str_field(request, "httpVersion", "request.httpVersion", &mut notes)
        .map(normalise_http_version)
        .unwrap_or_default();

    let response = match entry.get("response") {
        Some(Value::Object(r)) => read_response(r, opts, &mut notes),
        Some(Value::Null) | None => None,
        Some(other) => {
            notes.wrong_type("response", "an object", other);
            None
        }
    };

    let server =
        str_field(entry, "serverIPAddress", "serverIPAddress", &mut notes).and_then(clean_address);
    let client = ["_clientAddress", "clientIPAddress", "_clientIPAddress"]
        .iter()
        .find_map(|k| entry.get(*k).and_then(Value::as_str))
        .and_then(clean_address);

    let tls = matches!(scheme.as_str(), "https" | "wss").then(|| TlsInfo {
        version: entry
            .get("_securityDetails")
            .and_then(|d| d.get("protocol"))
            .and_then(Value::as_str)
            .map(|s| truncate_str(s, 32).to_string()),
        sni: None,
        // A HAR holds the cleartext: whoever exported it saw inside the TLS.
        decrypted: true,
        decrypt_error: None,
        ..TlsInfo::default()
    });

    let sha = opts.file_sha256.as_deref().unwrap_or("");
    let mut x = Exchange::new(exchange_id(sha, index, None), SourceKind::Har, at);
    x.evidence = EvidenceRef {
        file_sha256: opts.file_sha256.clone(),
        locator: format!("entry {index}"),
        ..EvidenceRef::default()
    };
    x.client = client;
    x.server = server;
    x.host = host;
    x.scheme = scheme;
    x.method = method;
    x.path = path;
    x.http_version = http_version;
    x.request_headers = headers;
    x.request_body = body;
    x.request_body_cut = body_cut;
    x.response = response;
    x.tls = tls;

    let mut out = Vec::new();
    let messages = array_field(
        entry,
        "_webSocketMessages",
        "_webSocketMessages",
        &mut notes,
    );
    x.anomalies = std::mem::take(&mut notes.anomalies);
    let (ws, ws_notes) = websocket_exchanges(&x, messages, index, opts);
    x.anomalies.extend(ws_notes);
    out.push(x);
    out.extend(ws);
    Ok(out)
}

/// Exchanges for the `send` websocket messages of an entry, and anomalies for the
/// handshake exchange.
fn websocket_exchanges(
    base: &Exchange,
    messages: &[Value],
    index: u64,
    opts: &HarOptions,
) -> (Vec<Exchange>, Vec<Anomaly>) {
    let mut out = Vec::new();
    let mut notes = Notes::default();
    let sha = opts.file_sha256.as_deref().unwrap_or("");
    let mut sent = 0usize;
    for (m, msg) in messages.iter().enumerate() {
        let Value::Object(msg) = msg else {
            notes.wrong_type(&format!("_webSocketMessages[{m}]"), "an object", msg);
            continue;
        };
        if msg.get("type").and_then(Value::as_str) != Some("send") {
            continue;
        }
        if sent >= opts.limits.max_ws_messages {
            notes.add(
                "websocket-message-limit",
                format!(
                    "more than {} sent websocket messages; the rest ignored",
                    opts.limits.max_ws_messages
                ),
            );
            break;
        }
        sent += 1;
        let mut mnotes = Notes::default();
        let at = match msg.get("time").and_then(Value::as_f64) {
            Some(t) if t.is_finite() && t >= 1e9 => Timestamp::from_micros((t * 1e6) as i64),
            Some(t) if t.is_finite() && t >= 0.0 => {
                Timestamp::from_micros(base.at.micros().saturating_add((t * 1e6) as i64))
            }
            _ => {
                mnotes.add(
                    "har-field-type",
                    "websocket message without a usable time; handshake time used",
                );
                base.at
            }
        };
        let data = msg.get("data").and_then(Value::as_str).unwrap_or("");
        let binary = msg.get("opcode").and_then(Value::as_u64) == Some(2);
        let mut body = if binary {
            decode_base64_or_raw(data, "websocket message", &mut mnotes)
        } else {
            data.as_bytes().to_vec()
        };
        let mut x = Exchange::new(exchange_id(sha, index, Some(m as u64)), SourceKind::Har, at);
        x.evidence = EvidenceRef {
            file_sha256: opts.file_sha256.clone(),
            locator: format!("entry {index} message {m}"),
            ..EvidenceRef::default()
        };
        x.client = base.client.clone();
        x.server = base.server.clone();
        x.host = base.host.clone();
        x.scheme = base.scheme.clone();
        x.method = "WS".into();
        x.path = base.path.clone();
        x.tls = base.tls.clone();
        x.request_body_cut = cap_body(&mut body, "websocket message", &opts.limits, &mut mnotes);
        x.request_body = body;
        x.anomalies = mnotes.anomalies;
        out.push(x);
    }
    (out, notes.anomalies)
}

/// Reads a HAR `headers` array in order; entries that are not `{name, value}` are
/// noted and skipped.
fn read_headers(list: &[Value], what: &str, limits: &HarLimits, notes: &mut Notes) -> Vec<Header> {
    let mut headers = Vec::new();
    for (i, h) in list.iter().enumerate() {
        let Value::Object(h) = h else {
            notes.wrong_type(&format!("{what}.headers[{i}]"), "an object", h);
            continue;
        };
        let Some(name) = h.get("name").and_then(scalar_text) else {
            notes.add(
                "har-field-type",
                format!("{what}.headers[{i}] has no name; skipped"),
            );
            continue;
        };
        let name = name.trim();
        if name.is_empty() {
            continue;
        }
        let value = h.get("value").and_then(scalar_text).unwrap_or_default();
        let before = headers.len();
        push_header(
            &mut headers,
            name,
            value.as_bytes().to_vec(),
            what,
            limits,
            notes,
        );
        if headers.len() == before {
            break;
        }
        // A trailer field as consentry's own export marks it: searched, never acted on.
        if h.get("comment").and_then(Value::as_str) == Some(crate::report::har::TRAILER_COMMENT) {
            if let Some(field) = headers.last_mut() {
                field.trailer = true;
            }
        }
    }
    headers
}

/// Appends a header within the limits; at the count limit nothing is appended.
fn push_header(
    headers: &mut Vec<Header>,
    name: &str,
    mut value: Vec<u8>,
    what: &str,
    limits: &HarLimits,
    notes: &mut Notes,
) {
    if headers.len() >= limits.max_headers {
        notes.add(
            "header-count-limit",
            format!(
                "more than {} {what} headers; the rest dropped",
                limits.max_headers
            ),
        );
        return;
    }
    if value.len() > limits.max_header_value {
        notes.add(
            "header-size-limit",
            format!(
                "{what} header {} is {} bytes; truncated to {}",
                truncate_str(name, 100),
                value.len(),
                limits.max_header_value
            ),
        );
        value.truncate(limits.max_header_value);
    }
    if name.len() > MAX_HEADER_NAME {
        notes.add(
            "header-size-limit",
            format!(
                "{what} header name of {} bytes truncated to {MAX_HEADER_NAME}",
                name.len()
            ),
        );
    }
    headers.push(Header::new(truncate_str(name, MAX_HEADER_NAME), value));
}

/// `Cookie` header text for cookies in `request.cookies` not found in any `Cookie`
/// header, or `None` when all are there.
fn missing_cookies(headers: &[Header], cookies: &[Value]) -> Option<String> {
    let present: Vec<(String, String)> = headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("cookie"))
        .flat_map(|h| {
            String::from_utf8_lossy(&h.value)
                .split(';')
                .map(|pair| {
                    let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (n.trim().to_string(), v.trim().to_string())
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let mut missing = Vec::new();
    for c in cookies {
        let Some(name) = c.get("name").and_then(scalar_text) else {
            continue;
        };
        let value = c.get("value").and_then(scalar_text).unwrap_or_default();
        if !present
            .iter()
            .any(|(n, v)| n == name.trim() && v == value.trim())
        {
            missing.push(format!("{}={}", name.trim(), value.trim()));
        }
    }
    (!missing.is_empty()).then(|| missing.join("; "))
}

/// Characters percent-encoded in rebuilt query and form values (RFC 3986 unreserved
/// characters stay).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn build_query(params: &[Value]) -> String {
    let mut pairs = Vec::new();
    for p in params {
        let Some(name) = p.get("name").and_then(scalar_text) else {
            continue;
        };
        let value = p.get("value").and_then(scalar_text).unwrap_or_default();
        pairs.push(format!(
            "{}={}",
            utf8_percent_encode(&name, COMPONENT),
            utf8_percent_encode(&value, COMPONENT)
        ));
    }
    pairs.join("&")
}

/// The request body from `postData`, adding `Content-Type` from its MIME type, and
/// whether it was cut to the size limit.
fn read_post_data(
    post: &Map<String, Value>,
    headers: &mut Vec<Header>,
    limits: &HarLimits,
    notes: &mut Notes,
) -> (Vec<u8>, bool) {
    let mime = str_field(post, "mimeType", "request.postData.mimeType", notes)
        .unwrap_or("")
        .trim();
    let text = str_field(post, "text", "request.postData.text", notes);
    let params = array_field(post, "params", "request.postData.params", notes);
    let mut content_type = mime.to_string();
    let mut body = match text {
        Some(t) if !t.is_empty() || params.is_empty() => {
            if post.get("encoding").and_then(Value::as_str) == Some("base64") {
                decode_base64_or_raw(t, "request.postData.text", notes)
            } else {
                t.as_bytes().to_vec()
            }
        }
        _ if params.is_empty() => Vec::new(),
        _ => {
            notes.add(
                "har-synthesized",
                "request body rebuilt from postData.params",
            );
            let multipart = mime.to_ascii_lowercase().starts_with("multipart/")
                || params.iter().any(|p| p.get("fileName").is_some());
            if multipart {
                let boundary = boundary_of(mime).unwrap_or_else(|| {
                    content_type = "multipart/form-data; boundary=consentry-har-boundary".into();
                    "consentry-har-boundary".into()
                });
                build_multipart(params, &boundary)
            } else {
                if content_type.is_empty() {
                    content_type = "application/x-www-form-urlencoded".into();
                }
                build_query(params).into_bytes()
            }
        }
    };
    if !body.is_empty() && !content_type.is_empty() && header(headers, "content-type").is_none() {
        push_header(
            headers,
            "Content-Type",
            content_type.into_bytes(),
            "request",
            limits,
            notes,
        );
    }
    let cut = cap_body(&mut body, "request body", limits, notes);
    (body, cut)
}

fn boundary_of(mime: &str) -> Option<String> {
    mime.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
            .filter(|b| !b.is_empty())
    })
}

fn build_multipart(params: &[Value], boundary: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for p in params {
        let Some(name) = p.get("name").and_then(scalar_text) else {
            continue;
        };
        let value = p.get("value").and_then(scalar_text).unwrap_or_default();
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"").as_bytes(),
        );
        if let Some(f) = p.get("fileName").and_then(scalar_text) {
            body.extend_from_slice(format!("; filename=\"{f}\"").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        if let Some(ct) = p.get("contentType").and_then(Value::as_str) {
            body.extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(value.as_bytes());
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

fn read_response(r: &Map<String, Value>, opts: &HarOptions, notes: &mut Notes) -> Option<Response> {
    let status = match r.get("status") {
        Some(Value::Number(n)) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        }),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(Value::Null) | None => Some(0),
        Some(_) => None,
    };
    let status = match status.and_then(|s| u16::try_from(s).ok()) {
        Some(s) => s,
        None => {
            let got = r.get("status").map(|v| v.to_string()).unwrap_or_default();
            notes.add(
                "har-field-type",
                format!(
                    "response.status {} is not a status code; 0 used",
                    truncate_str(&got, 40)
                ),
            );
            0
        }
    };
    let mut headers = read_headers(
        array_field(r, "headers", "response.headers", notes),
        "response",
        &opts.limits,
        notes,
    );
    let mut body = Vec::new();
    if opts.keep_response_bodies {
        match r.get("content") {
            Some(Value::Object(c)) => {
                if let Some(text) = str_field(c, "text", "response.content.text", notes) {
                    body = if c.get("encoding").and_then(Value::as_str) == Some("base64") {
                        decode_base64_or_raw(text, "response.content.text", notes)
                    } else {
                        text.as_bytes().to_vec()
                    };
                    cap_body(&mut body, "response body", &opts.limits, notes);
                }
            }
            Some(Value::Null) | None => {}
            Some(other) => notes.wrong_type("response.content", "an object", other),
        }
    }
    reconcile_content_encoding(&mut headers, &body, true, "response", notes);
    // Browsers write status 0 and no headers for requests that never got a response.
    if status == 0 && headers.is_empty() && body.is_empty() {
        return None;
    }
    Some(Response {
        status,
        headers,
        body,
    })
}

/// Removes the `Content-Encoding` header that does not describe the body: HAR
/// exporters write bodies already decoded (the spec says so for responses; mitmproxy
/// and others do it for `postData` too) but keep the header, and the decode stage
/// would then fail to gunzip plain text. `always_decoded`: the body is known to be
/// decoded (response `content.text`). Otherwise the body is judged by the coding
/// applied last (the last in the list that every `Content-Encoding` line makes; the
/// one whose format the bytes as sent start with): a gzip/zstd body without its
/// magic number, a deflate body without a zlib header, or a brotli body that is
/// printable UTF-8 counts as decoded. Recorded as anomaly `har-body-decoded` with
/// the removed value; every line of the header goes.
fn reconcile_content_encoding(
    headers: &mut Vec<Header>,
    body: &[u8],
    always_decoded: bool,
    what: &str,
    notes: &mut Notes,
) {
    if body.is_empty() {
        return;
    }
    let Some(list) = header_list(headers, "content-encoding") else {
        return;
    };
    let value = String::from_utf8_lossy(&list).trim().to_ascii_lowercase();
    let Some(applied_last) = value
        .rsplit(',')
        .map(str::trim)
        .find(|t| !t.is_empty() && *t != "identity")
    else {
        return;
    };
    let decoded = always_decoded
        || match applied_last {
            "gzip" | "x-gzip" => !body.starts_with(&[0x1f, 0x8b]),
            "zstd" => !body.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]),
            "deflate" => {
                !(body.len() >= 2
                    && body[0] & 0x0f == 8
                    && u16::from_be_bytes([body[0], body[1]]).is_multiple_of(31))
            }
            "br" => std::str::from_utf8(body)
                .is_ok_and(|t| t.chars().all(|c| !c.is_control() || c.is_whitespace())),
            _ => false,
        };
    if decoded {
        notes.add(
            "har-body-decoded",
            format!(
                "{what} body is already decoded; `Content-Encoding: {}` removed",
                truncate_str(&value, 100)
            ),
        );
        headers.retain(|h| h.trailer || !h.name.eq_ignore_ascii_case("content-encoding"));
    }
}

/// Base64 (standard or URL-safe alphabet, padding optional, line breaks ignored);
/// on failure the raw text, with anomaly `har-invalid-base64`.
fn decode_base64_or_raw(text: &str, what: &str, notes: &mut Notes) -> Vec<u8> {
    const CONFIG: GeneralPurposeConfig =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    const STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, CONFIG);
    const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, CONFIG);
    let compact: Cow<str> = if text.bytes().any(|b| b.is_ascii_whitespace()) {
        Cow::Owned(text.chars().filter(|c| !c.is_ascii_whitespace()).collect())
    } else {
        Cow::Borrowed(text)
    };
    match STANDARD
        .decode(compact.as_bytes())
        .or_else(|_| URL_SAFE.decode(compact.as_bytes()))
    {
        Ok(bytes) => bytes,
        Err(e) => {
            notes.add(
                "har-invalid-base64",
                format!("{what} is marked base64 but is not ({e}); kept as text"),
            );
            text.as_bytes().to_vec()
        }
    }
}

/// Cuts `body` to the size limit, noting it; whether it was cut.
fn cap_body(body: &mut Vec<u8>, what: &str, limits: &HarLimits, notes: &mut Notes) -> bool {
    let cut = body.len() > limits.max_body;
    if cut {
        notes.add(
            "body-size-limit",
            format!(
                "{what} is {} bytes; truncated to {}",
                body.len(),
                limits.max_body
            ),
        );
        body.truncate(limits.max_body);
        body.shrink_to_fit();
    }
    cut
}

/// `HTTP/2`, `HTTP/3`, `HTTP/1.1` from what exporters write (`http/2.0`, `h2`, `h3`).
fn normalise_http_version(v: &str) -> String {
    let v = v.trim();
    let lower = v.to_ascii_lowercase();
    match lower.as_str() {
        "" | "unknown" => String::new(),
        "h2" | "h2c" | "http/2" | "http/2.0" => "HTTP/2".into(),
        "http/1.1" => "HTTP/1.1".into(),
        "http/1.0" => "HTTP/1.0".into(),
        "http/0.9" => "HTTP/0.9".into(),
        "http/3" | "http/3.0" => "HTTP/3".into(),
        l if l.starts_with("h3") => "HTTP/3".into(),
        _ => truncate_str(v, 32).to_string(),
    }
}

/// A HAR time: RFC 3339, or the near misses exporters write (see the module docs).
pub fn parse_har_time(text: &str) -> Result<Timestamp, TimeError> {
    let first = match Timestamp::parse_rfc3339(text) {
        Ok(t) => return Ok(t),
        Err(e) => e,
    };
    let t = text.trim();
    if t.len() < 19 || !t.is_ascii() {
        return Err(first);
    }
    let mut s = String::with_capacity(t.len() + 3);
    s.push_str(&t[..10]);
    s.push('T');
    let rest = &t[11..];
    // Zone: `Z`, or the last sign after the seconds.
    let time_len = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let (time_part, zone) = rest.split_at(time_len);
    s.push_str(time_part.trim_end());
    match zone.as_bytes() {
        [] => s.push('Z'),
        [b'Z' | b'z'] => s.push('Z'),
        [sign @ (b'+' | b'-'), digits @ ..]
            if digits.len() == 4 && digits.iter().all(|b| b.is_ascii_digit()) =>
        {
            s.push(char::from(*sign));
            s.push_str(&zone[1..3]);
            s.push(':');
            s.push_str(&zone[3..5]);
        }
        [sign @ (b'+' | b'-'), h1, h2] if h1.is_ascii_digit() && h2.is_ascii_digit() => {
            s.push(char::from(*sign));
            s.push_str(&zone[1..3]);
            s.push_str(":00");
        }
        _ => s.push_str(zone),
    }
    Timestamp::parse_rfc3339(&s).map_err(|_| first)
}

/// Scheme, host and path of a URL, without normalising anything the analysis might
/// want to see as sent.
struct UrlParts {
    scheme: Option<String>,
    host: Option<String>,
    path: String,
}

fn split_url(url: &str) -> UrlParts {
    let (scheme, rest) = match url.split_once(':') {
        // `host:443/…` (no scheme, a port) is an authority, not a scheme named `host`.
        Some((_, rest))
            if rest.starts_with(|c: char| c.is_ascii_digit())
                && rest
                    .split('/')
                    .next()
                    .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit())) =>
        {
            let end = url.find(['/', '?', '#']).unwrap_or(url.len());
            let path = url[end..].split('#').next().unwrap_or("");
            let path = if path.starts_with('/') {
                path.to_string()
            } else {
                format!("/{path}")
            };
            return UrlParts {
                scheme: None,
                host: host_of(&url[..end]),
                path,
            };
        }
        Some((s, rest))
            if s.starts_with(|c: char| c.is_ascii_alphabetic())
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')) =>
        {
            (Some(s.to_ascii_lowercase()), rest)
        }
        _ => (None, url),
    };
    let (host, path) = match rest.strip_prefix("//") {
        Some(after) => {
            let end = after.find(['/', '?', '#']).unwrap_or(after.len());
            (host_of(&after[..end]), &after[end..])
        }
        None => (None, rest),
    };
    let path = path.split('#').next().unwrap_or("");
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    UrlParts { scheme, host, path }
}

/// The host of an authority (`user@host:port`, `[v6]:port`), lowercase, without port
/// or brackets.
fn host_of(authority: &str) -> Option<String> {
    let a = authority.trim();
    let a = a.rsplit_once('@').map_or(a, |(_, h)| h);
    let host = if let Some(v6) = a.strip_prefix('[') {
        v6.split(']').next().unwrap_or(v6)
    } else {
        match a.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => a,
        }
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// An address from `serverIPAddress` and the like: brackets dropped, empty → none.
fn clean_address(s: &str) -> Option<String> {
    let s = s.trim().trim_start_matches('[').trim_end_matches(']');
    (!s.is_empty()).then(|| truncate_str(s, 64).to_string())
}

fn truncate_str(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SHA: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    fn opts() -> HarOptions {
        HarOptions::new("test.har", Some(SHA.into()))
    }

    /// A HAR document around `entries` (JSON texts), with pages before and after.
    fn har(entries: &[&str]) -> String {
        format!(
            r#"{{"log": {{"version": "1.2", "creator": {{"name": "TestExporter", "version": "9.1"}},
              "pages": [{{"id": "page_1", "title": "p"}}],
              "entries": [{}],
              "comment": "after"}}}}"#,
            entries.join(",\n")
        )
    }

    fn read_with(
        text: &[u8],
        opts: &HarOptions,
    ) -> (Result<HarSummary, SourceError>, Vec<Exchange>) {
        let mut out = Vec::new();
        let r = read_har(text, opts, |x| {
            out.push(x);
            Ok::<(), BoxError>(())
        });
        (r, out)
    }

    fn read_ok(text: &str) -> (HarSummary, Vec<Exchange>) {
        let (r, out) = read_with(text.as_bytes(), &opts());
        (r.unwrap(), out)
    }

    fn kinds(x: &Exchange) -> Vec<&str> {
        x.anomalies.iter().map(|a| a.kind.as_str()).collect()
    }

    const CHROME: &str = r#"{
      "_initiator": {"type": "script", "stack": {"callFrames": [{"url": "https://shop.example/app.js"}]}},
      "startedDateTime": "2026-11-28T10:15:29.112Z",
      "time": 12.5,
      "request": {
        "method": "POST",
        "url": "https://API.Shop.example:8443/v1/track?aid=38400000-8cf0-11bd-b23e-10b96e40000d#frag",
        "httpVersion": "http/2.0",
        "headers": [
          {"name": ":authority", "value": "api.shop.example:8443"},
          {"name": ":method", "value": "POST"},
          {"name": ":path", "value": "/v1/track?aid=38400000-8cf0-11bd-b23e-10b96e40000d"},
          {"name": ":scheme", "value": "https"},
          {"name": "cookie", "value": "sid=abc"},
          {"name": "content-type", "value": "application/json"}
        ],
        "queryString": [{"name": "aid", "value": "38400000-8cf0-11bd-b23e-10b96e40000d"}],
        "cookies": [{"name": "sid", "value": "abc"}, {"name": "uid", "value": "u-42"}],
        "headersSize": -1, "bodySize": 27,
        "postData": {"mimeType": "application/json", "text": "{\"email\":\"tester@example.org\"}"}
      },
      "response": {
        "status": 204, "statusText": "", "httpVersion": "http/2.0",
        "headers": [{"name": "server", "value": "test"}],
        "cookies": [], "content": {"size": 0, "mimeType": "x-unknown", "text": "secret-response"},
        "redirectURL": "", "headersSize": -1, "bodySize": 0
      },
      "serverIPAddress": "[2001:db8::1]",
      "connection": "123",
      "cache": {}, "timings": {"send": 1, "wait": 2, "receive": 3}
    }"#;

    #[test]
    fn chrome_style_entry() {
        let (summary, xs) = read_ok(&har(&[CHROME]));
        assert_eq!(summary.entries, 1);
        assert_eq!(summary.exchanges, 1);
        assert_eq!(summary.creator.as_deref(), Some("TestExporter 9.1"));
        let x = &xs[0];
        assert_eq!(x.source, SourceKind::Har);
        assert!(x.id.starts_with("x-") && x.id.len() == 18, "{}", x.id);
        assert_eq!(x.id, exchange_id(SHA, 0, None));
        assert_eq!(x.evidence.locator, "entry 0");
        assert_eq!(x.evidence.file_sha256.as_deref(), Some(SHA));
        assert_eq!(x.at.to_string(), "2026-11-28T10:15:29.112000Z");
        assert_eq!(x.host, "api.shop.example");
        assert_eq!(x.scheme, "https");
        assert_eq!(x.method, "POST");
        assert_eq!(x.path, "/v1/track?aid=38400000-8cf0-11bd-b23e-10b96e40000d");
        assert_eq!(x.http_version, "HTTP/2");
        assert_eq!(x.server.as_deref(), Some("2001:db8::1"));
        assert_eq!(x.client, None);
        assert_eq!(x.request_headers[0].name, ":authority");
        assert_eq!(x.request_headers.len(), 7);
        // `uid` was only in request.cookies.
        assert_eq!(x.request_header("Cookie"), Some(&b"sid=abc"[..]));
        assert_eq!(x.request_headers[6].name, "Cookie");
        assert_eq!(x.request_headers[6].value, b"uid=u-42");
        assert_eq!(x.request_body, br#"{"email":"tester@example.org"}"#);
        let resp = x.response.as_ref().unwrap();
        assert_eq!(resp.status, 204);
        assert_eq!(resp.headers.len(), 1);
        assert!(
            resp.body.is_empty(),
            "response bodies are not kept by default"
        );
        assert_eq!(kinds(x), ["har-synthesized"]);
        assert!(x.tls.as_ref().unwrap().decrypted);
        assert!(!x.metadata_only);
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        let (_, a) = read_ok(&har(&[CHROME, CHROME]));
        let (_, b) = read_ok(&har(&[CHROME, CHROME]));
        assert_eq!(a[0].id, b[0].id);
        assert_eq!(a[1].id, b[1].id);
        assert_ne!(a[0].id, a[1].id);
        assert_eq!(a[1].evidence.locator, "entry 1");
        let other = HarOptions::new("other.har", Some("ff".repeat(32)));
        let (_, c) = read_with(har(&[CHROME]).as_bytes(), &other);
        assert_ne!(a[0].id, c[0].id);
    }

    #[test]
    fn firefox_style_entry() {
        let e = r#"{
          "pageref": "page_1",
          "startedDateTime": "2026-11-28T18:15:29.500+08:00",
          "request": {
            "bodySize": 33, "method": "POST",
            "url": "http://collect.example.net/log",
            "httpVersion": "HTTP/1.1",
            "headers": [{"name": "Host", "value": "collect.example.net"},
                        {"name": "Content-Type", "value": "application/x-www-form-urlencoded"}],
            "cookies": [],
            "queryString": [],
            "headersSize": 300,
            "postData": {"mimeType": "application/x-www-form-urlencoded",
                         "params": [{"name": "phone", "value": "+8613800138000"}],
                         "text": "phone=%2B8613800138000&x=1"}
          },
          "response": {"status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1",
                       "headers": [], "cookies": [],
                       "content": {"mimeType": "text/plain", "size": 2, "text": "ok"},
                       "redirectURL": "", "headersSize": 100, "bodySize": 2},
          "cache": {}, "timings": {}, "time": 3, "_securityState": "insecure"
        }"#;
        let (_, xs) = read_ok(&har(&[e]));
        let x = &xs[0];
        assert_eq!(x.at.to_string(), "2026-11-28T10:15:29.500000Z");
        assert_eq!(x.host, "collect.example.net");
        assert_eq!(x.path, "/log");
        assert_eq!(x.http_version, "HTTP/1.1");
        assert_eq!(x.request_body, b"phone=%2B8613800138000&x=1");
        assert_eq!(x.request_headers.len(), 2, "Content-Type not duplicated");
        assert!(x.tls.is_none());
        assert!(x.anomalies.is_empty(), "{:?}", x.anomalies);
    }

    #[test]
    fn charles_style_sloppy_entry() {
        // Offset without colon, status as a string, no httpVersion, no headers.
        let e = r#"{
          "startedDateTime": "2026-11-28T05:15:29.000-0500",
          "request": {"method": "GET", "url": "https://cdn.example.com/a.png?size=2",
                      "queryString": [{"name": "size", "value": "2"}]},
          "response": {"status": "200", "headers": [{"name": "Content-Type", "value": "image/png"}]},
          "serverIPAddress": "192.0.2.7", "_clientAddress": "192.168.50.23"
        }"#;
        let (_, xs) = read_ok(&har(&[e]));
        let x = &xs[0];
        assert_eq!(x.at.to_string(), "2026-11-28T10:15:29.000000Z");
        assert_eq!(x.path, "/a.png?size=2", "query not duplicated");
        assert_eq!(x.http_version, "");
        assert!(x.request_headers.is_empty());
        assert_eq!(x.response.as_ref().unwrap().status, 200);
        assert_eq!(x.server.as_deref(), Some("192.0.2.7"));
        assert_eq!(x.client.as_deref(), Some("192.168.50.23"));
        assert!(x.anomalies.is_empty(), "{:?}", x.anomalies);
    }

    #[test]
    fn har_time_variants() {
        let t = |s: &str| parse_har_time(s).map(|t| t.to_string());
        assert_eq!(
            t("2019-01-01T01:00:00.000+0100").unwrap(),
            "2019-01-01T00:00:00.000000Z"
        );
        assert_eq!(
            t("2019-01-01T08:00:00+08").unwrap(),
            "2019-01-01T00:00:00.000000Z"
        );
        assert_eq!(
            t("2019-01-01T00:00:00.5").unwrap(),
            "2019-01-01T00:00:00.500000Z"
        );
        assert_eq!(
            t("2019-01-01 00:00:00Z").unwrap(),
            "2019-01-01T00:00:00.000000Z"
        );
        // Fiddler writes 7 fractional digits.
        assert_eq!(
            t("2016-06-24T20:38:55.2876373+01:00").unwrap(),
            "2016-06-24T19:38:55.287637Z"
        );
        assert_eq!(
            t("2019-01-01T00:00:00z").unwrap(),
            "2019-01-01T00:00:00.000000Z"
        );
        assert!(t("yesterday").is_err());
        assert!(t("2019-13-01T00:00:00Z").is_err());
        assert!(t("2019-01-01T00:00:00+0").is_err());
        assert!(t("2019-01-01T00:00:00é+0100").is_err());
    }

    #[test]
    fn http_versions() {
        for (input, want) in [
            ("http/2.0", "HTTP/2"),
            ("h2", "HTTP/2"),
            ("HTTP/2", "HTTP/2"),
            ("h3", "HTTP/3"),
            ("h3-29", "HTTP/3"),
            ("HTTP/3", "HTTP/3"),
            ("http/1.1", "HTTP/1.1"),
            ("", ""),
            ("unknown", ""),
            ("SPDY/3.1", "SPDY/3.1"),
        ] {
            assert_eq!(normalise_http_version(input), want, "{input}");
        }
    }

    #[test]
    fn base64_response_content_kept_on_request() {
        let e = r#"{"startedDateTime": "2026-11-28T10:00:00Z",
          "request": {"method": "GET", "url": "https://img.example.com/p.svg", "headers": []},
          "response": {"status": 200, "headers": [{"name": "Content-Type", "value": "image/svg+xml"}],
                       "content": {"mimeType": "image/svg+xml", "encoding": "base64",
                                   "text": "PHN2Zy8+\nAAE="}}}"#;
        let keep = opts().keep_response_bodies(true);
        let (r, xs) = read_with(har(&[e]).as_bytes(), &keep);
        r.unwrap();
        assert_eq!(xs[0].response.as_ref().unwrap().body, b"<svg/>\x00\x01");
        let (_, xs) = read_ok(&har(&[e]));
        let resp = xs[0].response.as_ref().unwrap();
        assert!(resp.body.is_empty());
        assert_eq!(resp.headers[0].name, "Content-Type");
    }

    #[test]
    fn post_params_only_build_a_body() {
        let form = r#"{"startedDateTime": "2026-11-28T10:00:00Z",
          "request": {"method": "POST", "url": "https://a.example/f", "headers": [],
            "postData": {"mimeType": "application/x-www-form-urlencoded",
              "params": [{"name": "email", "value": "tester@example.org"}, {"name": "n", "value": "a b&c"}]}}}"#;
        let multi = r#"{"startedDateTime": "2026-11-28T10:00:00Z",
          "request": {"method": "POST", "url": "https://a.example/u", "headers": [],
            "postData": {"mimeType": "multipart/form-data; boundary=XyZ",
              "params": [{"name": "name", "value": "Zhang San"},
                         {"name": "file", "fileName": "a.txt", "contentType": "text/plain", "value": "hi"}]}}}"#;
        let (_, xs) = read_ok(&har(&[form, multi]));
        assert_eq!(
            xs[0].request_body,
            b"email=tester%40example.org&n=a%20b%26c"
        );
        assert_eq!(
            xs[0].request_header("content-type"),
            Some(&b"application/x-www-form-urlencoded"[..])
        );
        assert_eq!(kinds(&xs[0]), ["har-synthesized"]);
        let body = String::from_utf8(xs[1].request_body.clone()).unwrap();
        assert_eq!(
            body,
            "--XyZ\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nZhang San\r\n\
             --XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\
             Content-Type: text/plain\r\n\r\nhi\r\n--XyZ--\r\n"
        );
        assert_eq!(
            xs[1].request_header("Content-Type"),
            Some(&b"multipart/form-data; boundary=XyZ"[..])
        );
    }

    #[test]
    fn empty_post_data_adds_nothing() {
        // Insomnia writes an empty postData on GET requests.
        let e = r#"{"startedDateTime": "2026-11-28T10:00:00Z",
          "request": {"method": "GET", "url": "http://a.example/", "headers": [],
            "postData": {"mimeType": "application/json", "text": "", "params": []}}}"#;
        let (_, xs) = read_ok(&har(&[e]));
        assert!(xs[0].request_headers.is_empty());
        assert!(xs[0].request_body.is_empty());
        assert!(xs[0].anomalies.is_empty());
    }

    #[test]
    fn query_rebuilt_from_query_string() {
        let e = r#"{"startedDateTime": "2026-11-28T10:00:00Z",
          "request": {"method": "GET", "url": "https://a.example/q",
            "queryString": [{"name": "idfa", "value": "AB CD"}, {"name": "k", "value": "1"}]}}"#;
        let (_, xs) = read_ok(&har(&[e]));
        assert_eq!(xs[0].path, "/q?idfa=AB%20CD&k=1");
        assert_eq!(kinds(&xs[0]), ["har-synthesized"]);
    }

    #[test]
    fn post_data_base64_and_invalid_base64() {
        let good = r#"{"startedDateTime": "2026-11-28T10:00:00Z",
          "request": {"method": "POST", "url": "https://a.example/b",
            "postData": {"mimeType": "application/octet-stream", "encoding": "base64", "text": "AAEC/w=="}}}"#;
        let bad = r#"{"startedDateTime": "2026-11-28T10:00:00Z",
          "request": {"method": "POST", "url": "https://a.example/b",
            "postData": {"mimeType": "text/plain", "encoding": "base64", "text": "not base64!"}}}"#;
        let (_, xs) = read_ok(&har(&[good, bad]));
        assert_eq!(xs[0].request_body, [0, 1, 2, 255]);
        assert!(xs[0].anomalies.is_empty());
        assert_eq!(xs[1].request_body, b"not base64!");
        assert_eq!(kinds(&xs[1]), ["har-invalid-base64"]);
        assert_eq!(
            xs[1].request_header("Content-Type"),
            Some(&b"text/plain"[..])
        );
    }

    /// Two HAR entries for the `Content-Encoding` tests: a POST of `{"a":1}` exported
    /// decoded, sent with `request_codings` (JSON header objects) and answered with
    /// `response_codings` and the text `hello`; and a POST of `gzipped` (base64, bytes
    /// as sent) with `sent_codings`.
    fn coded_entries(
        request_codings: &str,
        response_codings: &str,
        sent_codings: &str,
        gzipped: &str,
    ) -> String {
        let plain = format!(
            r#"{{"startedDateTime": "2026-11-28T10:00:00Z",
              "request": {{"method": "POST", "url": "https://a.example/",
                "headers": [{request_codings}, {{"name": "X", "value": "1"}}],
                "postData": {{"mimeType": "application/json", "text": "{{\"a\":1}}"}}}},
              "response": {{"status": 200, "headers": [{response_codings}],
                "content": {{"text": "hello"}}}}}}"#
        );
        let sent = format!(
            r#"{{"startedDateTime": "2026-11-28T10:00:00Z",
              "request": {{"method": "POST", "url": "https://a.example/",
                "headers": [{sent_codings}],
                "postData": {{"mimeType": "application/json", "encoding": "base64", "text": "{gzipped}"}}}}}}"#
        );
        har(&[plain.as_str(), sent.as_str()])
    }

    #[test]
    fn content_encoding_of_decoded_bodies_is_removed() {
        let ce = |value: &str| format!(r#"{{"name": "Content-Encoding", "value": "{value}"}}"#);
        // mitmproxy's har_dump: decoded postData, header still says gzip; a real gzip
        // body (magic 1f 8b) keeps its header. Then the codings in two header lines
        // each: one list, judged by the coding applied last (`br`, `zstd`, `gzip`),
        // every line removed or kept together.
        let cases = [
            (
                ce("gzip"),
                ce("br"),
                ce("gzip"),
                "H4sIAAAAAAAAA6tWSlSyMqwFAHJ4AmcHAAAA",
                ["`Content-Encoding: gzip`", "`Content-Encoding: br`"],
                &b"gzip"[..],
            ),
            (
                format!("{}, {}", ce("gzip"), ce("br")),
                format!("{}, {}", ce("identity"), ce("zstd")),
                format!("{}, {}", ce("deflate"), ce("gzip")),
                // `{"a":1}` deflated, then gzipped.
                "H4sIAAAAAAACA6uYszrMK2ST0RpWBg4tJk4A1ruJuA8AAAA=",
                [
                    "`Content-Encoding: gzip, br`",
                    "`Content-Encoding: identity, zstd`",
                ],
                &b"deflate, gzip"[..],
            ),
        ];
        let keep = opts().keep_response_bodies(true);
        for (request, response, sent, gzipped, removed, kept) in cases {
            let text = coded_entries(&request, &response, &sent, gzipped);
            let (r, xs) = read_with(text.as_bytes(), &keep);
            r.unwrap();
            assert_eq!(xs[0].request_header("content-encoding"), None, "{request}");
            assert_eq!(xs[0].request_header("X"), Some(&b"1"[..]));
            assert_eq!(xs[0].response.as_ref().unwrap().headers, vec![]);
            assert_eq!(kinds(&xs[0]), ["har-body-decoded", "har-body-decoded"]);
            for (anomaly, value) in xs[0].anomalies.iter().zip(removed) {
                assert!(anomaly.detail.contains(value), "{}", anomaly.detail);
            }
            assert_eq!(
                xs[1].request_header_list("content-encoding").as_deref(),
                Some(kept)
            );
            assert!(xs[1].request_body.starts_with(&[0x1f, 0x8b]));
            assert!(xs[1].anomalies.is_empty());
        }
        // Response bodies not kept: headers untouched.
        let text = coded_entries(
            &ce("gzip"),
            &ce("br"),
            &ce("gzip"),
            "H4sIAAAAAAAAA6tWSlSyMqwFAHJ4AmcHAAAA",
        );
        let (_, xs) = read_ok(&text);
        assert_eq!(xs[0].response.as_ref().unwrap().headers.len(), 1);
    }

    #[test]
    fn bom_is_stripped() {
        let mut text = b"\xEF\xBB\xBF".to_vec();
        text.extend_from_slice(har(&[CHROME]).as_bytes());
        let (r, xs) = read_with(&text, &opts());
        assert_eq!(r.unwrap().exchanges, 1);
        assert_eq!(xs.len(), 1);
        // A reader that yields one byte at a time.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let Some((&b, rest)) = self.0.split_first() else {
                    return Ok(0);
                };
                if buf.is_empty() {
                    return Ok(0);
                }
                buf[0] = b;
                self.0 = rest;
                Ok(1)
            }
        }
        let n = read_har(Trickle(&text), &opts(), |_| Ok::<(), BoxError>(())).unwrap();
        assert_eq!(n.exchanges, 1);
    }

    #[test]
    fn websocket_send_messages_become_exchanges() {
        let e = r#"{"startedDateTime": "2026-11-28T10:00:00Z",
          "request": {"method": "GET", "url": "wss://chat.example/socket?room=1",
                      "headers": [{"name": "Cookie", "value": "sid=1"}]},
          "response": {"status": 101, "headers": []},
          "_resourceType": "websocket",
          "_webSocketMessages": [
            {"type": "receive", "time": 1795860000.5, "opcode": 1, "data": "hello"},
            {"type": "send", "time": 1795860001.25, "opcode": 1, "data": "{\"imei\":\"490154203237518\"}"},
            {"type": "send", "time": 2.5, "opcode": 2, "data": "AAE="},
            {"type": "send", "opcode": 1, "data": "x"},
            7
          ]}"#;
        let (summary, xs) = read_ok(&har(&[e]));
        assert_eq!(summary.exchanges, 4);
        assert_eq!(summary.websocket_messages, 3);
        assert_eq!(xs[0].method, "GET");
        assert_eq!(kinds(&xs[0]), ["har-field-type"], "the 7");
        let ws = &xs[1];
        assert_eq!(ws.method, "WS");
        assert_eq!(ws.host, "chat.example");
        assert_eq!(ws.path, "/socket?room=1");
        assert_eq!(ws.scheme, "wss");
        assert_eq!(ws.request_body, br#"{"imei":"490154203237518"}"#);
        assert_eq!(ws.at, Timestamp::from_micros(1_795_860_001_250_000));
        assert_eq!(ws.evidence.locator, "entry 0 message 1");
        assert!(ws.request_headers.is_empty());
        assert_ne!(ws.id, xs[0].id);
        // Relative time, binary opcode.
        assert_eq!(xs[2].at, xs[0].at.add_millis(2_500));
        assert_eq!(xs[2].request_body, [0, 1]);
        assert_eq!(kinds(&xs[3]), ["har-field-type"]);
        assert_eq!(xs[3].at, xs[0].at);

        let limited = opts().limits(HarLimits {
            max_ws_messages: 1,
            ..HarLimits::default()
        });
        let (r, xs) = read_with(har(&[e]).as_bytes(), &limited);
        assert_eq!(r.unwrap().websocket_messages, 1);
        assert!(kinds(&xs[0]).contains(&"websocket-message-limit"));
    }

    #[test]
    fn non_network_urls_are_skipped_and_counted() {
        let mk = |url: &str| {
            format!(
                r#"{{"startedDateTime": "2026-11-28T10:00:00Z", "request": {{"method": "GET", "url": "{url}"}}}}"#
            )
        };
        let entries: Vec<String> = [
            "data:text/css;charset=utf-8,body%7b%7d",
            "blob:https://a.example/123",
            "about:blank",
            "chrome-extension://abc/x.js",
            "https://a.example/real",
        ]
        .iter()
        .map(|u| mk(u))
        .collect();
        let refs: Vec<&str> = entries.iter().map(String::as_str).collect();
        let (summary, xs) = read_ok(&har(&refs));
        assert_eq!(summary.entries, 5);
        assert_eq!(summary.non_network, 4);
        assert_eq!(summary.skipped, 0);
        assert_eq!(xs.len(), 1);
        assert_eq!(xs[0].evidence.locator, "entry 4");
    }

    #[test]
    fn relative_url_takes_host_from_header() {
        let e = r#"{"startedDateTime": "2026-11-28T10:00:00Z",
          "request": {"method": "GET", "url": "/img/logo.gif",
                      "headers": [{"name": "Host", "value": "Static.Example.org:80"}]}}"#;
        let (_, xs) = read_ok(&har(&[e]));
        assert_eq!(xs[0].host, "static.example.org");
        assert_eq!(xs[0].scheme, "http");
        assert_eq!(xs[0].path, "/img/logo.gif");
        assert_eq!(kinds(&xs[0]), ["har-relative-url"]);
    }

    #[test]
    fn unusable_entries_are_skipped_with_reasons() {
        let no_request = r#"{"startedDateTime": "2026-11-28T10:00:00Z"}"#;
        let no_url = r#"{"startedDateTime": "2026-11-28T10:00:00Z", "request": {"method": "GET"}}"#;
        let bad_time =
            r#"{"startedDateTime": "last tuesday", "request": {"url": "https://a.example/"}}"#;
        let no_host = r#"{"startedDateTime": "2026-11-28T10:00:00Z", "request": {"url": "/x"}}"#;
        let ok = r#"{"startedDateTime": "2026-11-28T10:00:00Z", "request": {"url": "https://a.example/"}}"#;
        let (summary, xs) = read_ok(&har(&[no_request, "2", no_url, bad_time, no_host, ok]));
        assert_eq!(summary.entries, 6);
        assert_eq!(summary.skipped, 5);
        assert_eq!(summary.exchanges, 1);
        let reasons: Vec<(u64, &str)> = summary
            .skip_reasons
            .iter()
            .map(|s| (s.index, s.reason.as_str()))
            .collect();
        assert_eq!(reasons[0], (0, "no request"));
        assert_eq!(reasons[1], (1, "entry is a number, not an object"));
        assert_eq!(reasons[2], (2, "no request.url"));
        assert!(reasons[3].1.starts_with("startedDateTime: "), "{reasons:?}");
        assert!(reasons[4].1.contains("no Host header"), "{reasons:?}");
        // Missing method: GET assumed, noted.
        assert_eq!(xs[0].method, "GET");
        assert_eq!(xs[0].evidence.locator, "entry 5");
    }

    #[test]
    fn wrong_types_inside_an_entry_are_anomalies() {
        let e = r#"{"startedDateTime": "2026-11-28T10:00:00Z",
          "request": {"method": "GET", "url": "https://a.example/", "headers": 5,
                      "cookies": {"a": 1}, "httpVersion": 11},
          "response": {"status": "OK", "headers": [{"name": "X-A", "value": 3}, "junk", {"value": "v"}]},
          "serverIPAddress": 5}"#;
        let (_, xs) = read_ok(&har(&[e]));
        let x = &xs[0];
        assert!(x.request_headers.is_empty());
        assert_eq!(x.http_version, "");
        let resp = x.response.as_ref().unwrap();
        assert_eq!(resp.status, 0);
        assert_eq!(resp.headers, vec![Header::new("X-A", "3")]);
        assert_eq!(x.server, None);
        let k = kinds(x);
        assert!(k.iter().all(|k| *k == "har-field-type"), "{k:?}");
        assert_eq!(k.len(), 7, "{:?}", x.anomalies);
        assert!(x.anomalies[0]
            .detail
            .contains("request.headers is a number"));
    }

    #[test]
    fn huge_header_value_is_truncated() {
        let big = "a".repeat(10 * 1024 * 1024);
        let e = format!(
            r#"{{"startedDateTime": "2026-11-28T10:00:00Z",
              "request": {{"method": "GET", "url": "https://a.example/",
                "headers": [{{"name": "X-Big", "value": "{big}"}}, {{"name": "X-Small", "value": "s"}}]}}}}"#
        );
        let (_, xs) = read_ok(&har(&[&e]));
        let x = &xs[0];
        assert_eq!(x.request_headers[0].value.len(), MAX_HEADER_VALUE);
        assert_eq!(x.request_headers[1].value, b"s");
        assert_eq!(kinds(x), ["header-size-limit"]);
    }

    #[test]
    fn header_count_and_body_limits() {
        let e = r#"{"startedDateTime": "2026-11-28T10:00:00Z",
          "request": {"method": "POST", "url": "https://a.example/",
            "headers": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "C", "value": "3"}],
            "postData": {"text": "0123456789"}}}"#;
        let small = opts().limits(HarLimits {
            max_headers: 2,
            max_body: 4,
            ..HarLimits::default()
        });
        let (r, xs) = read_with(har(&[e]).as_bytes(), &small);
        r.unwrap();
        assert_eq!(xs[0].request_headers.len(), 2);
        assert_eq!(xs[0].request_body, b"0123");
        assert_eq!(kinds(&xs[0]), ["header-count-limit", "body-size-limit"]);
    }

    #[test]
    fn truncated_file_delivers_complete_entries_then_errors() {
        let full = har(&[CHROME, CHROME, CHROME]);
        // Cut inside the third entry's request headers.
        let third = full.match_indices("\"request\"").nth(2).unwrap().0;
        let cut = &full[..third + 120];
        let (r, xs) = read_with(cut.as_bytes(), &opts());
        assert_eq!(xs.len(), 2);
        match r.unwrap_err() {
            SourceError::HarSyntax {
                file,
                line,
                column,
                path,
                message,
            } => {
                assert_eq!(file, "test.har");
                assert_eq!(line, cut.lines().count());
                assert!(column > 0);
                assert!(path.starts_with("log.entries[2].request"), "{path}");
                assert!(message.contains("EOF"), "{message}");
            }
            e => panic!("{e}"),
        }
    }

    #[test]
    fn syntax_error_names_line_column_and_path() {
        let text = "{\"log\": {\"entries\": [\n{\"startedDateTime\": \"2026-11-28T10:00:00Z\",\n \"request\": {\"url\": \"https://a.example/\", \"headers\": [{\"name\": \"a\" \"value\": 1}]}}\n]}}";
        let (r, xs) = read_with(text.as_bytes(), &opts());
        assert!(xs.is_empty());
        let err = r.unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("test.har:3:"), "{msg}");
        assert!(msg.contains("log.entries[0].request.headers[0]"), "{msg}");
    }

    #[test]
    fn not_json_and_not_har() {
        let err = |t: &str| read_with(t.as_bytes(), &opts()).0.unwrap_err();
        assert!(matches!(
            err("GET / HTTP/1.1"),
            SourceError::HarSyntax {
                line: 1,
                column: 1,
                ..
            }
        ));
        assert!(matches!(err(""), SourceError::HarSyntax { .. }));
        let e = err(r#"{"foo":1}"#);
        assert!(matches!(e, SourceError::NotHar { .. }), "{e}");
        assert!(e.to_string().contains("no `log` member"), "{e}");
        let e = err("[1, 2]");
        assert!(matches!(e, SourceError::NotHar { .. }), "{e}");
        let e = err(r#"{"log": [2, 1, 3]}"#);
        match &e {
            SourceError::WrongType { path, .. } => assert_eq!(path, "log"),
            _ => panic!("{e}"),
        }
        let e = err(r#"{"log": {"version": "1.1"}}"#);
        assert!(e.to_string().contains("no `entries`"), "{e}");
        let e = err(r#"{"log": {"entries": 5}}"#);
        match &e {
            SourceError::WrongType { path, message, .. } => {
                assert_eq!(path, "log.entries");
                assert!(message.contains("integer `5`"), "{message}");
            }
            _ => panic!("{e}"),
        }
        let e = err(r#"{"log": {"entries": []}} trailing"#);
        assert!(matches!(e, SourceError::HarSyntax { .. }), "{e}");
    }

    #[test]
    fn odd_log_members_are_ignored() {
        let text = r#"{"comment": 1, "log": {"creator": "Exporter 1", "pages": {"x": [1, {"y": null}]},
            "browser": 5, "entries": [], "version": null}}"#;
        let (s, _) = read_ok(text);
        assert_eq!(s.creator, None);
        assert_eq!(s.entries, 0);
    }

    #[test]
    fn empty_entries_is_fine() {
        let (s, xs) = read_ok(r#"{"log": {"entries": []}}"#);
        assert_eq!(s, HarSummary::default());
        assert!(xs.is_empty());
    }

    #[test]
    fn consumer_error_stops_reading() {
        let mut seen = 0;
        let r = read_har(har(&[CHROME, CHROME, CHROME]).as_bytes(), &opts(), |_| {
            seen += 1;
            if seen == 2 {
                Err("sink full")
            } else {
                Ok(())
            }
        });
        assert_eq!(seen, 2);
        match r.unwrap_err() {
            SourceError::Consumer { entry, error, .. } => {
                assert_eq!(entry, 1);
                assert_eq!(error.to_string(), "sink full");
            }
            e => panic!("{e}"),
        }
    }

    #[test]
    fn url_splitting() {
        let p = split_url("HTTPS://user:pw@[2001:DB8::1]:8443/a/b?x=1&y=%20#f");
        assert_eq!(p.scheme.as_deref(), Some("https"));
        assert_eq!(p.host.as_deref(), Some("2001:db8::1"));
        assert_eq!(p.path, "/a/b?x=1&y=%20");
        let p = split_url("http://a.example?q=1");
        assert_eq!(p.path, "/?q=1");
        let p = split_url("http://a.example");
        assert_eq!(p.path, "/");
        let p = split_url("tunnel.example:443");
        assert_eq!(p.scheme, None);
        assert_eq!(p.host.as_deref(), Some("tunnel.example"));
        assert_eq!(p.path, "/");
        let p = split_url("a.example:8080/x?y#z");
        assert_eq!(p.host.as_deref(), Some("a.example"));
        assert_eq!(p.path, "/x?y");
        let p = split_url("about:blank");
        assert_eq!(p.scheme.as_deref(), Some("about"));
        let p = split_url("//a.example/x");
        assert_eq!(p.scheme, None);
        assert_eq!(p.host.as_deref(), Some("a.example"));
    }

    /// Any JSON value, biased towards strings HAR fields hold.
    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "[a-z:/?#@\\[\\]=&%.0-9 +-]{0,30}".prop_map(Value::from),
            prop_oneof![
                Just("https://a.example:8443/p?q=1"),
                Just("data:,x"),
                Just("/rel"),
                Just("2026-11-28T10:00:00+0800"),
                Just("base64"),
                Just("send"),
                Just("gzip"),
                Just("multipart/form-data; boundary=b"),
            ]
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec((arb_key(), inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    fn arb_key() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("name"),
            Just("value"),
            Just("url"),
            Just("headers"),
            Just("text"),
            Just("encoding"),
            Just("params"),
            Just("fileName"),
            Just("mimeType"),
            Just("status"),
            Just("content"),
            Just("cookies"),
            Just("queryString"),
            Just("type"),
            Just("time"),
            Just("opcode"),
            Just("data"),
            Just("method"),
            Just("x"),
        ]
        .prop_map(String::from)
    }

    /// An entry with a valid time and URL and arbitrary everything else.
    fn arb_entry() -> impl Strategy<Value = Value> {
        (
            prop_oneof![
                Just("https://a.example/x"),
                Just("http://[::1]:80"),
                Just("/rel?x"),
                Just("b.example:443"),
                Just("wss://c.example")
            ],
            arb_json(),
            arb_json(),
            arb_json(),
            arb_json(),
            arb_json(),
        )
            .prop_map(|(url, headers, post, resp, ws, cookies)| {
                serde_json::json!({
                    "startedDateTime": "2026-11-28T10:00:00Z",
                    "request": {"url": url, "headers": headers, "postData": post,
                                "cookies": cookies, "queryString": [{"name": "q", "value": "1"}]},
                    "response": resp,
                    "_webSocketMessages": ws,
                    "serverIPAddress": "[::1]"
                })
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = read_with(&bytes, &opts());
        }

        #[test]
        fn damaged_har_never_panics(cut in 0usize..4000, flips in proptest::collection::vec((0usize..4000, any::<u8>()), 0..4)) {
            let mut text = har(&[CHROME, CHROME]).into_bytes();
            for (at, b) in flips {
                let at = at % text.len();
                text[at] = b;
            }
            text.truncate(cut.min(text.len()));
            let (r, xs) = read_with(&text, &opts());
            // Whatever happens, delivered exchanges are complete entries.
            prop_assert!(xs.len() <= 2);
            if r.is_ok() {
                prop_assert!(!text.is_empty());
            }
        }

        #[test]
        fn arbitrary_entry_shapes_never_panic(entry in arb_entry()) {
            let text = har(&[&entry.to_string()]);
            let keep = opts().keep_response_bodies(true);
            let (r, xs) = read_with(text.as_bytes(), &keep);
            let s = r.unwrap();
            prop_assert_eq!(s.entries, 1);
            prop_assert_eq!(s.exchanges as usize, xs.len());
            for x in &xs {
                prop_assert!(x.path.starts_with('/'));
                prop_assert!(!x.host.is_empty());
            }
        }

        #[test]
        fn har_time_never_panics(s in "\\PC{0,40}") {
            let _ = parse_har_time(&s);
        }
    }
}
