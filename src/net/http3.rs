//! HTTP/3 (RFC 9114) over the ordered stream bytes of a decrypted QUIC connection,
//! sans I/O.
//!
//! [`QuicConnReader`](super::quic_conn::QuicConnReader) decrypts a connection's packets
//! with a key log and hands out each stream's bytes in order ([`QuicEvent`]);
//! [`Http3Conn`] reads them and gives one [`Http3Event::Exchange`] per request stream:
//! the request (the client's HEADERS and DATA), with the response when one was seen.
//! As for HTTP/2 the types are HTTP/1's ([`HttpRequest`], [`HttpResponse`]): `method`
//! from `:method`, `target` from `:path` (the authority for CONNECT), `version`
//! `HTTP/3`, `headers` every field in wire order with the pseudo-headers; trailers are
//! appended to the headers; `Content-Encoding` is left to `crate::decode`.
//!
//! Streams read (RFC 9000 §2.1 stream ids, RFC 9114 §6):
//! - client-initiated bidirectional streams are requests: the client's frames are the
//!   request, the server's the response (interim `1xx` responses are skipped);
//! - unidirectional streams by their type: each side's control stream (its SETTINGS
//!   give the other side's QPACK table capacity) and QPACK encoder stream (fed to the
//!   [`QpackDecoder`] of the headers that side sends); decoder, push and unknown
//!   (reserved, grease) streams are skipped.
//!
//! Frames: DATA and HEADERS on request streams, SETTINGS on control streams; all other
//! types are skipped by their length. Flow control and stream limits are not checked
//! (a passive observer sees what was sent, allowed or not).
//!
//! Policies:
//! - **When an exchange is emitted**: when both sides ended the stream (FIN) and its
//!   header sections are decoded, when either side reset it (anomaly
//!   `h3-stream-reset`), at CONNECTION_CLOSE, and at [`Http3Conn::close`] (open streams
//!   in id order, unfinished messages `truncated`). Exchanges come out in the order
//!   their streams complete.
//! - **Blocked header sections** (RFC 9204 §2.1.2): a section that refers to table
//!   entries the encoder stream has not yet inserted waits (with the DATA after it)
//!   until they arrive; one still blocked when the stream must be emitted is lost
//!   (anomaly `h3-headers-blocked`).
//! - **QPACK errors**: a section that cannot be decoded is lost (`h3-headers-lost`),
//!   its stream still becomes an exchange; an error on an encoder stream breaks that
//!   side's table for the rest of the connection (`h3-qpack-error`, once).
//! - **Gaps** (stream bytes the transport had to give up): frames cannot be found
//!   again, the direction of that stream stops being read (`h3-gap`, `truncated`).
//! - **Limits** ([`Http3Limits`]): HEADERS and control frames longer than
//!   `max_header_list_bytes` are skipped (`h3-frame-too-large`) and decoded fields are
//!   kept up to as much; at most `max_streams_open` request streams are tracked
//!   (`h3-too-many-streams`, further ones ignored: QPACK needs no state from them);
//!   bodies are kept up to `max_body_bytes` each (`body-size-limit`, as HTTP/1);
//!   bodies, decoded header fields (trailers included) and blocked sections of all
//!   open streams together are kept up to `max_held_bytes` (beyond it body bytes are
//!   not kept, `h3-body-budget`, and header sections are lost, `h3-held-limit` or
//!   `h3-headers-blocked`), and with a flow table's budget ([`Http3Conn::with_budget`])
//!   within what the table's messages in progress leave (`message-memory-limit`); a
//!   body cut for either budget keeps nothing more; `body_len` always counts every
//!   DATA byte; at most
//!   [`MAX_UNI_STREAMS`] unidirectional streams and [`MAX_BLOCKED_SECTIONS`] blocked
//!   sections per message are held; a message keeps one anomaly of each kind.
//! - **WebSockets** (RFC 9220: an extended `CONNECT` with `:protocol` `websocket`): the
//!   client's DATA on that stream is read as WebSocket frames, each message an
//!   [`Http3Event::WebSocket`] as it completes, then the stream's exchange without the
//!   frames as body; as HTTP/2's (see [`http2`]), at most [`http2::MAX_WS_STREAMS`] at
//!   once (`h3-websocket-limit`). A `CONNECT` whose headers are still blocked on the
//!   encoder stream when its first DATA comes is read as a plain stream.
//! - **Finished streams**: data for a stream already emitted is ignored (the last
//!   [`FINISHED_REMEMBERED`] ids are remembered); a stream is only opened by its bytes
//!   at offset 0, so data from the middle of a forgotten one does not start a request.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use crate::exchange::{Anomaly, Header};
use crate::net::http1::{HttpRequest, HttpResponse, MessageMeta};
use crate::net::http2::{
    self, value, DEFAULT_MAX_HEADER_LIST_BYTES, DEFAULT_MAX_HELD_BYTES, DEFAULT_MAX_STREAMS_OPEN,
};
use crate::net::message_budget::{self, BudgetShare, MessageBudget};
use crate::net::qpack::{QpackDecoder, QpackError, DEFAULT_MAX_TABLE};
use crate::net::quic_conn::QuicEvent;
use crate::net::tail_search::{self, TailScan, TailSearch, TailStart};
use crate::net::websocket::{ClientWebSocket, WsLimits, WsOutput, WsUpgrade};
use crate::timestamp::Timestamp;

/// The `version` of the messages read.
const VERSION: &str = "HTTP/3";
/// Unidirectional streams tracked per connection (each side opens three or four).
pub const MAX_UNI_STREAMS: usize = 16;
/// Blocked header sections held per message (headers, then trailers at most).
pub const MAX_BLOCKED_SECTIONS: usize = 4;
/// Ids of emitted streams remembered, so late data does not reopen them.
pub const FINISHED_REMEMBERED: usize = 4096;

/// Frame types (RFC 9114 §7.2).
mod frame_type {
    pub const DATA: u64 = 0x00;
    pub const HEADERS: u64 = 0x01;
    pub const SETTINGS: u64 = 0x04;
}

/// Unidirectional stream types (RFC 9114 §6.2, RFC 9204 §4.2).
mod stream_type {
    pub const CONTROL: u64 = 0x00;
    pub const QPACK_ENCODER: u64 = 0x02;
}

/// SETTINGS_QPACK_MAX_TABLE_CAPACITY (RFC 9204 §5).
const SETTINGS_QPACK_MAX_TABLE_CAPACITY: u64 = 0x01;

/// Limits on what one connection may make us hold; each, when hit, is an anomaly.
#[derive(Debug, Clone)]
pub struct Http3Limits {
    /// Largest HEADERS or control frame read, and largest decoded header list.
    pub max_header_list_bytes: usize,
    /// Most request streams tracked at once.
    pub max_streams_open: usize,
    /// Largest body kept per message (the analysis copy); `body_len` counts all.
    pub max_body_bytes: usize,
    /// Bodies, header fields and blocked sections kept over all open streams of the
    /// connection.
    pub max_held_bytes: usize,
    /// Hard cap on each side's QPACK dynamic table.
    pub max_dynamic_table: usize,
}

/// HTTP/2's defaults: the same kinds of peers send the same sizes.
impl Default for Http3Limits {
    fn default() -> Self {
        Http3Limits {
            max_header_list_bytes: DEFAULT_MAX_HEADER_LIST_BYTES,
            max_streams_open: DEFAULT_MAX_STREAMS_OPEN,
            max_body_bytes: crate::decode::DEFAULT_MAX_BODY_BYTES,
            max_held_bytes: DEFAULT_MAX_HELD_BYTES,
            max_dynamic_table: DEFAULT_MAX_TABLE,
        }
    }
}

/// What the reader found.
// Exchanges are the common case and are moved, not copied, to the flow table.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Http3Event {
    /// One request stream: its request, with the response when seen.
    Exchange {
        stream_id: u64,
        request: HttpRequest,
        response: Option<HttpResponse>,
    },
    /// A client message on a WebSocket stream (RFC 9220), as a request of its own
    /// (method `WS`); handed out as it completes, before its stream's exchange.
    WebSocket {
        stream_id: u64,
        request: HttpRequest,
    },
    /// Something odd about the connection, not tied to an emitted exchange.
    Anomaly(Anomaly),
}

/// The two sides of the connection; index into per-side arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Client = 0,
    Server = 1,
}

impl Side {
    fn of(from_client: bool) -> Side {
        if from_client {
            Side::Client
        } else {
            Side::Server
        }
    }

    fn name(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

/// Reads QUIC variable-length integers (RFC 9000 §16) from the front of `b`: the
/// value and its length, or `None` when `b` is too short.
fn varint(b: &[u8]) -> Option<(u64, usize)> {
    let first = *b.first()?;
    let len = 1usize << (first >> 6);
    let bytes = b.get(..len)?;
    let mut v = u64::from(first & 0x3f);
    for &byte in &bytes[1..] {
        v = (v << 8) | u64::from(byte);
    }
    Some((v, len))
}

/// A piece of a stream's frames, as [`FrameReader::next`] finds them.
#[derive(Debug, PartialEq, Eq)]
enum Part<'a> {
    /// Bytes of a DATA frame's payload.
    Data(&'a [u8]),
    /// A whole frame of the type the reader keeps, its payload within the limit.
    Frame { ty: u64, payload: Vec<u8> },
    /// A frame of the type the reader keeps, longer than the limit: skipped.
    TooLarge { ty: u64, len: u64 },
}

/// What happens to the payload of the frame being read.
#[derive(Debug)]
enum Payload {
    /// DATA: handed out as it comes.
    Data,
    /// The type the reader keeps, within the limit: collected.
    Kept(Vec<u8>),
    /// The kept type over the limit: skipped, then reported.
    TooLarge,
    /// Any other type: skipped silently.
    Skipped,
}

/// The frame being read.
#[derive(Debug)]
struct InFrame {
    ty: u64,
    len: u64,
    remaining: u64,
    payload: Payload,
}

/// Reads HTTP/3 frames (type, length, payload) from one direction of a stream, in
/// pieces as they come. DATA payloads are handed out as they arrive, not held; of the
/// other types only the one a stream needs (HEADERS, SETTINGS) is collected, the rest
/// (reserved and unknown types, PUSH_PROMISE, GOAWAY …) are skipped by their length.
#[derive(Debug, Default)]
struct FrameReader {
    /// The frame header's two varints so far (at most 8 bytes each).
    head: Vec<u8>,
    frame: Option<InFrame>,
}

impl FrameReader {
    /// Takes bytes from the front of `input` until one piece is found; `None` when
    /// `input` is used up first. Frames of type `kept` are collected up to
    /// `max_kept` bytes.
    fn next<'a>(&mut self, input: &mut &'a [u8], kept: u64, max_kept: usize) -> Option<Part<'a>> {
        loop {
            let Some(frame) = self.frame.as_mut() else {
                self.read_head(input, kept, max_kept)?;
                continue;
            };
            let n = usize::try_from(frame.remaining)
                .unwrap_or(usize::MAX)
                .min(input.len());
            let (chunk, rest) = input.split_at(n);
            *input = rest;
            frame.remaining -= n as u64;
            let finished = frame.remaining == 0;
            match &mut frame.payload {
                Payload::Data => {
                    if finished {
                        self.frame = None;
                    }
                    if !chunk.is_empty() {
                        return Some(Part::Data(chunk));
                    }
                }
                Payload::Kept(buf) => buf.extend_from_slice(chunk),
                Payload::TooLarge | Payload::Skipped => {}
            }
            if !finished {
                // Everything of `input` went into this frame.
                return None;
            }
            if let Some(frame) = self.frame.take() {
                match frame.payload {
                    Payload::Kept(payload) => {
                        return Some(Part::Frame {
                            ty: frame.ty,
                            payload,
                        })
                    }
                    Payload::TooLarge => {
                        return Some(Part::TooLarge {
                            ty: frame.ty,
                            len: frame.len,
                        })
                    }
                    Payload::Data | Payload::Skipped => {}
                }
            }
        }
    }

    /// Collects the frame header and starts the frame; `None` when `input` ran out
    /// first.
    fn read_head(&mut self, input: &mut &[u8], kept: u64, max_kept: usize) -> Option<()> {
        let (ty, len) = loop {
            if let Some((ty, len, _)) = frame_head(&self.head) {
                break (ty, len);
            }
            let (&byte, rest) = input.split_first()?;
            self.head.push(byte);
            *input = rest;
        };
        self.head.clear();
        let payload = match ty {
            frame_type::DATA => Payload::Data,
            t if t == kept && len <= max_kept as u64 => {
                Payload::Kept(Vec::with_capacity(len as usize))
            }
            t if t == kept => Payload::TooLarge,
            _ => Payload::Skipped,
        };
        self.frame = Some(InFrame {
            ty,
            len,
            remaining: len,
            payload,
        });
        Some(())
    }

    /// Within a frame (or its header): the stream ended in the middle of one.
    fn mid_frame(&self) -> bool {
        self.frame.is_some() || !self.head.is_empty()
    }
}

/// A complete frame header at the front of `b`: type, length, bytes used.
fn frame_head(b: &[u8]) -> Option<(u64, u64, usize)> {
    let (ty, a) = varint(b)?;
    let (len, c) = varint(b.get(a..)?)?;
    Some((ty, len, a + c))
}

/// One direction of a request stream: a request or a response.
#[derive(Debug, Default)]
struct Message {
    frames: FrameReader,
    /// Stream bytes received so far (the offset the next ones must start at).
    offset: u64,
    /// Final (request or non-interim response) header fields, then trailers.
    headers: Option<Vec<Header>>,
    /// Header sections waiting for the encoder stream, in order.
    blocked: VecDeque<Vec<u8>>,
    /// The current frame is a HEADERS frame being skipped or a section was lost.
    headers_lost: bool,
    body: Vec<u8>,
    body_len: u64,
    truncated: bool,
    /// Time and capture frame of the first byte; capture frame of the latest.
    first: Option<(Timestamp, u64)>,
    last_frame: u64,
    /// FIN, a reset or a gap: no more bytes will be read.
    ended: bool,
    anomalies: Vec<Anomaly>,
    /// Bytes this message counts against the connection's budget ([`Budget`]).
    held: usize,
    /// A client's extended `CONNECT` for a WebSocket (RFC 9220): its DATA is read as
    /// frames, the messages found wait in `ws_found` to be handed out.
    ws: Option<Box<ClientWebSocket>>,
    ws_checked: bool,
    ws_found: Vec<WsOutput>,
    /// A request body's search past `max_body_bytes`, once it got there.
    tail: Option<Box<dyn TailScan>>,
}

impl Message {
    /// Records an anomaly, once per kind: a peer repeating a bad frame must not grow
    /// the list.
    fn note(&mut self, kind: &str, detail: impl Into<String>) {
        if !self.anomalies.iter().any(|a| a.kind == kind) {
            self.anomalies.push(Anomaly::new(kind, detail.into()));
        }
    }

    fn meta(&self) -> MessageMeta {
        let (ts, first_frame) = self.first.unwrap_or((Timestamp::default(), 0));
        MessageMeta {
            ts,
            first_frame,
            last_frame: self.last_frame.max(first_frame),
        }
    }

    fn seen(&self) -> bool {
        self.first.is_some()
    }
}

/// A client-initiated bidirectional stream: one request and its response.
#[derive(Debug, Default)]
struct RequestStream {
    /// Indexed by [`Side`].
    halves: [Message; 2],
    reset: bool,
}

impl RequestStream {
    /// Both sides are done and nothing waits for the encoder streams.
    fn complete(&self) -> bool {
        self.reset || self.halves.iter().all(|m| m.ended && m.blocked.is_empty())
    }
}

/// What a unidirectional stream carries, once its type is read.
#[derive(Debug)]
enum UniKind {
    /// The stream type varint so far.
    Typing(Vec<u8>),
    Control(FrameReader),
    Encoder,
    /// Decoder, push, reserved or unknown: not read.
    Skipped,
}

#[derive(Debug)]
struct UniStream {
    offset: u64,
    kind: UniKind,
}

/// Reads HTTP/3 from the stream events of one QUIC connection; see the module doc.
pub struct Http3Conn {
    limits: Http3Limits,
    requests: BTreeMap<u64, RequestStream>,
    uni: HashMap<u64, UniStream>,
    /// Decoders of the header sections each side sends, indexed by [`Side`].
    qpack: [QpackDecoder; 2],
    /// A side's encoder stream failed: its later sections cannot be trusted.
    qpack_broken: [bool; 2],
    /// Emitted stream ids, oldest first, with a set for lookups.
    finished: VecDeque<u64>,
    finished_set: HashSet<u64>,
    /// Body bytes kept over all open streams.
    held: usize,
    /// `held`, in the flow table's budget (WebSocket streams take shares of their own).
    table: BudgetShare,
    /// Request streams read as WebSockets, open now (at most
    /// [`http2::MAX_WS_STREAMS`]).
    ws_streams: usize,
    closed: bool,
    /// Connection-level anomalies of one kind are reported once.
    reported: HashSet<&'static str>,
    /// Searches request bodies past `max_body_bytes` (none: that rest is dropped).
    tail_search: Option<TailSearch>,
}

impl std::fmt::Debug for Http3Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http3Conn")
            .field("requests_open", &self.requests.len())
            .field("uni_streams", &self.uni.len())
            .field("held", &self.held)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl Http3Conn {
    pub fn new(limits: Http3Limits) -> Self {
        let table = limits.max_dynamic_table;
        Http3Conn {
            limits,
            requests: BTreeMap::new(),
            uni: HashMap::new(),
            qpack: [QpackDecoder::new(table), QpackDecoder::new(table)],
            qpack_broken: [false; 2],
            finished: VecDeque::new(),
            finished_set: HashSet::new(),
            held: 0,
            table: BudgetShare::default(),
            ws_streams: 0,
            closed: false,
            reported: HashSet::new(),
            tail_search: None,
        }
    }

    /// Keeps what open streams hold within `budget` too, shared with other connections
    /// (see [`message_budget`]).
    pub fn with_budget(mut self, budget: &MessageBudget) -> Self {
        self.table = BudgetShare::of(budget);
        self.table.sync(self.held);
        // The dynamic tables count too, each in a share of its own.
        for qpack in &mut self.qpack {
            qpack.set_budget(BudgetShare::of(budget));
        }
        self
    }

    /// Searches each request body's bytes past `max_body_bytes` with `search` as they
    /// pass, instead of only counting them.
    pub fn with_tail_search(mut self, search: Option<TailSearch>) -> Self {
        self.tail_search = search;
        self
    }

    /// Whether the connection was closed (CONNECTION_CLOSE or [`close`](Self::close)):
    /// later events are ignored.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// One event of the transport, from the datagram read at `ts` in capture frame
    /// `frame`.
    pub fn push(&mut self, event: QuicEvent, ts: Timestamp, frame: u64, out: &mut Vec<Http3Event>) {
        if self.closed {
            return;
        }
        match event {
            QuicEvent::Stream {
                id,
                from_client,
                offset,
                data,
                fin,
            } => self.stream(
                StreamBytes {
                    id,
                    side: Side::of(from_client),
                    offset,
                    data: &data,
                    fin,
                    at: (ts, frame),
                },
                out,
            ),
            QuicEvent::Gap {
                id, from_client, ..
            } => self.gap(id, Side::of(from_client), out),
            QuicEvent::Reset {
                id,
                from_client,
                error_code,
            } => self.reset(id, Side::of(from_client), error_code, out),
            QuicEvent::Close {
                from_client,
                error_code,
                reason,
            } => {
                // H3_NO_ERROR (0x100) and the transport's NO_ERROR are a clean close.
                if error_code != 0 && error_code != 0x100 {
                    self.connection_note(
                        "h3-connection-error",
                        format!(
                            "{} closed the connection with error 0x{error_code:x}{}",
                            Side::of(from_client).name(),
                            if reason.is_empty() {
                                String::new()
                            } else {
                                format!(" ({reason})")
                            }
                        ),
                        out,
                    );
                }
                self.close(out);
            }
        }
    }

    /// The connection ended: every open request stream is emitted, in id order.
    pub fn close(&mut self, out: &mut Vec<Http3Event>) {
        self.closed = true;
        let ids: Vec<u64> = self.requests.keys().copied().collect();
        for id in ids {
            self.emit(id, out);
        }
        self.uni.clear();
    }

    fn stream(&mut self, bytes: StreamBytes<'_>, out: &mut Vec<Http3Event>) {
        let (id, side) = (bytes.id, bytes.side);
        match id & 3 {
            0 => self.request_bytes(bytes, out),
            2 | 3 => {
                // Unidirectional: bit 0 says who opened it, and only that side sends.
                let opener = if id & 1 == 0 {
                    Side::Client
                } else {
                    Side::Server
                };
                if opener == side {
                    self.uni_bytes(bytes, out);
                }
            }
            // Server-initiated bidirectional streams have no use in HTTP/3 (§6.1).
            _ => self.connection_note(
                "h3-server-bidi-stream",
                format!("bytes on server-initiated bidirectional stream {id} are not read"),
                out,
            ),
        }
    }

    fn request_bytes(&mut self, bytes: StreamBytes<'_>, out: &mut Vec<Http3Event>) {
        let StreamBytes {
            id,
            side,
            offset,
            data,
            fin,
            at,
        } = bytes;
        if self.finished_set.contains(&id) {
            return;
        }
        if !self.requests.contains_key(&id) {
            if offset != 0 {
                return;
            }
            if self.requests.len() >= self.limits.max_streams_open {
                self.connection_note(
                    "h3-too-many-streams",
                    format!(
                        "more than {} request streams open: later ones are not read",
                        self.limits.max_streams_open
                    ),
                    out,
                );
                return;
            }
            self.requests.insert(id, RequestStream::default());
        }
        let Some(stream) = self.requests.get_mut(&id) else {
            return;
        };
        let message = &mut stream.halves[side as usize];
        if message.ended {
            return;
        }
        if offset != message.offset {
            // The transport delivers in order; anything else means bytes were lost.
            message.note(
                "h3-gap",
                format!(
                    "stream {id}: {} bytes resume at offset {offset}, expected {}",
                    side.name(),
                    message.offset
                ),
            );
            message.truncated = true;
            message.ended = true;
        } else {
            message.offset += data.len() as u64;
            if message.first.is_none() && (!data.is_empty() || fin) {
                message.first = Some(at);
            }
            message.last_frame = at.1;
            let mut input = data;
            let mut cx = Decoding {
                id,
                side,
                at,
                limits: &self.limits,
                budget: Budget {
                    held: &mut self.held,
                    max: self.limits.max_held_bytes,
                    table: &mut self.table,
                },
                ws_streams: &mut self.ws_streams,
                qpack: &mut self.qpack[side as usize],
                broken: self.qpack_broken[side as usize],
                tail_search: self.tail_search.as_ref(),
            };
            while let Some(part) = message.frames.next(
                &mut input,
                frame_type::HEADERS,
                cx.limits.max_header_list_bytes,
            ) {
                message_part(message, part, &mut cx);
            }
            websocket_events(id, message.ws_found.drain(..), out);
            if fin {
                if message.frames.mid_frame() {
                    message.note(
                        "h3-truncated-frame",
                        format!("stream {id}: {} ended within a frame", side.name()),
                    );
                    message.truncated = true;
                }
                message.ended = true;
            }
        }
        if stream.complete() {
            self.emit(id, out);
        }
    }

    fn uni_bytes(&mut self, bytes: StreamBytes<'_>, out: &mut Vec<Http3Event>) {
        let StreamBytes {
            id,
            side,
            offset,
            data,
            ..
        } = bytes;
        if !self.uni.contains_key(&id) {
            if offset != 0 || self.uni.len() >= MAX_UNI_STREAMS {
                if offset == 0 {
                    self.connection_note(
                        "h3-too-many-streams",
                        format!("more than {MAX_UNI_STREAMS} unidirectional streams: later ones are not read"),
                        out,
                    );
                }
                return;
            }
            self.uni.insert(
                id,
                UniStream {
                    offset: 0,
                    kind: UniKind::Typing(Vec::new()),
                },
            );
        }
        let Some(uni) = self.uni.get_mut(&id) else {
            return;
        };
        if offset != uni.offset {
            // Control and encoder streams cannot be resynchronised.
            uni.kind = UniKind::Skipped;
            self.connection_note(
                "h3-gap",
                format!("{} unidirectional stream {id}: bytes lost", side.name()),
                out,
            );
            return;
        }
        uni.offset += data.len() as u64;
        let mut input = data;
        if let UniKind::Typing(head) = &mut uni.kind {
            while varint(head).is_none() && !input.is_empty() {
                head.push(input[0]);
                input = &input[1..];
            }
            let Some((ty, _)) = varint(head) else {
                return;
            };
            uni.kind = match ty {
                stream_type::CONTROL => UniKind::Control(FrameReader::default()),
                stream_type::QPACK_ENCODER => UniKind::Encoder,
                _ => UniKind::Skipped,
            };
        }
        match &mut uni.kind {
            UniKind::Encoder => {
                if !input.is_empty() {
                    self.encoder_bytes(side, input, out);
                }
            }
            UniKind::Control(frames) => {
                let mut settings = Vec::new();
                let mut too_large = false;
                while let Some(part) = frames.next(
                    &mut input,
                    frame_type::SETTINGS,
                    self.limits.max_header_list_bytes,
                ) {
                    match part {
                        Part::Frame {
                            ty: frame_type::SETTINGS,
                            payload,
                        } => settings.push(payload),
                        Part::TooLarge { .. } => too_large = true,
                        _ => {}
                    }
                }
                if too_large {
                    self.connection_note(
                        "h3-frame-too-large",
                        format!(
                            "{} control stream: a frame too large was skipped",
                            side.name()
                        ),
                        out,
                    );
                }
                for payload in settings {
                    self.settings(side, &payload, out);
                }
            }
            UniKind::Typing(_) | UniKind::Skipped => {}
        }
    }

    /// A SETTINGS frame from `side`: its QPACK capacity bounds the other side's table.
    fn settings(&mut self, side: Side, mut payload: &[u8], out: &mut Vec<Http3Event>) {
        while !payload.is_empty() {
            let Some((id, a)) = varint(payload) else {
                break;
            };
            let Some((value, b)) = payload.get(a..).and_then(varint) else {
                break;
            };
            payload = payload.get(a + b..).unwrap_or_default();
            if id == SETTINGS_QPACK_MAX_TABLE_CAPACITY {
                let encoder = match side {
                    Side::Client => Side::Server,
                    Side::Server => Side::Client,
                };
                self.qpack[encoder as usize].set_max_table_capacity(value);
            }
        }
        if !payload.is_empty() {
            self.connection_note(
                "h3-malformed-settings",
                format!("{} SETTINGS frame ends within a setting", side.name()),
                out,
            );
        }
    }

    /// Bytes of `side`'s QPACK encoder stream; sections they unblock are decoded.
    fn encoder_bytes(&mut self, side: Side, data: &[u8], out: &mut Vec<Http3Event>) {
        let s = side as usize;
        if self.qpack_broken[s] {
            return;
        }
        if let Err(e) = self.qpack[s].encoder_stream(data) {
            self.qpack_broken[s] = true;
            self.connection_note(
                "h3-qpack-error",
                format!("{} QPACK encoder stream: {e}", side.name()),
                out,
            );
        }
        self.unblock(side, out);
    }

    /// Decodes the sections of `side` that waited for its encoder stream, and emits
    /// the streams that were waiting only for that.
    fn unblock(&mut self, side: Side, out: &mut Vec<Http3Event>) {
        let s = side as usize;
        let mut done = Vec::new();
        let mut budget = Budget {
            held: &mut self.held,
            max: self.limits.max_held_bytes,
            table: &mut self.table,
        };
        for (&id, stream) in self.requests.iter_mut() {
            let message = &mut stream.halves[s];
            if message.blocked.is_empty() {
                continue;
            }
            while let Some(block) = message.blocked.front() {
                match decode_section(&mut self.qpack[s], block, &self.limits) {
                    Err(QpackError::Blocked { .. }) if !self.qpack_broken[s] => break,
                    result => {
                        if let Some(block) = message.blocked.pop_front() {
                            budget.give_back(message, block.len());
                        }
                        take_section(message, result, side, id, &mut budget);
                    }
                }
            }
            if stream.complete() {
                done.push(id);
            }
        }
        for id in done {
            self.emit(id, out);
        }
    }

    fn gap(&mut self, id: u64, side: Side, out: &mut Vec<Http3Event>) {
        if let Some(stream) = self.requests.get_mut(&id) {
            let message = &mut stream.halves[side as usize];
            if !message.ended {
                message.note("h3-gap", format!("stream {id}: {} bytes lost", side.name()));
                message.truncated = true;
                message.ended = true;
            }
            if stream.complete() {
                self.emit(id, out);
            }
        } else if let Some(uni) = self.uni.get_mut(&id) {
            uni.kind = UniKind::Skipped;
            self.connection_note(
                "h3-gap",
                format!("{} unidirectional stream {id}: bytes lost", side.name()),
                out,
            );
        }
    }

    fn reset(&mut self, id: u64, side: Side, error_code: u64, out: &mut Vec<Http3Event>) {
        let Some(stream) = self.requests.get_mut(&id) else {
            return;
        };
        let message = &mut stream.halves[side as usize];
        message.note(
            "h3-stream-reset",
            format!(
                "stream {id} reset by the {} (error 0x{error_code:x})",
                side.name()
            ),
        );
        if !message.ended {
            message.truncated = true;
            message.ended = true;
        }
        stream.reset = true;
        self.emit(id, out);
    }

    /// Hands out stream `id` as an exchange and forgets it.
    fn emit(&mut self, id: u64, out: &mut Vec<Http3Event>) {
        let Some(mut stream) = self.requests.remove(&id) else {
            return;
        };
        self.remember_finished(id);
        for (side, message) in [Side::Client, Side::Server]
            .into_iter()
            .zip(stream.halves.iter_mut())
        {
            self.held = self.held.saturating_sub(message.held);
            self.table.sync(self.held);
            if !message.blocked.is_empty() {
                message.note(
                    "h3-headers-blocked",
                    format!(
                        "stream {id}: {} header section(s) of the {} still waited for QPACK \
                         table entries that never came",
                        message.blocked.len(),
                        side.name()
                    ),
                );
                message.blocked.clear();
                message.headers_lost = true;
            }
            if !message.ended && message.seen() {
                message.truncated = true;
            }
        }
        if let Some(ws) = stream.halves[Side::Client as usize].ws.as_mut() {
            self.ws_streams = self.ws_streams.saturating_sub(1);
            let mut found = Vec::new();
            ws.close(&mut found);
            websocket_events(id, found, out);
        }
        let [mut request, mut response] = stream.halves;
        if !response.seen() {
            // A server that reset the stream before answering: its anomaly stays.
            request.anomalies.append(&mut response.anomalies);
        }
        let request = request_from(request);
        let response = response.seen().then(|| response_from(response));
        out.push(Http3Event::Exchange {
            stream_id: id,
            request,
            response,
        });
    }

    fn remember_finished(&mut self, id: u64) {
        if self.finished.len() >= FINISHED_REMEMBERED {
            if let Some(old) = self.finished.pop_front() {
                self.finished_set.remove(&old);
            }
        }
        self.finished.push_back(id);
        self.finished_set.insert(id);
    }

    fn connection_note(&mut self, kind: &'static str, detail: String, out: &mut Vec<Http3Event>) {
        if self.reported.insert(kind) {
            out.push(Http3Event::Anomaly(Anomaly::new(kind, detail)));
        }
    }
}

/// Stream bytes of one transport event and where they were read.
struct StreamBytes<'a> {
    id: u64,
    side: Side,
    offset: u64,
    data: &'a [u8],
    fin: bool,
    /// Time and capture frame of the datagram.
    at: (Timestamp, u64),
}

/// The connection's budget of bytes held for open streams (bodies, header fields,
/// sections waiting for the encoder stream): [`Http3Limits::max_held_bytes`], within
/// the flow table's budget of message bytes (`table`).
struct Budget<'c> {
    held: &'c mut usize,
    max: usize,
    table: &'c mut BudgetShare,
}

/// Which budget had no room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Over {
    Connection,
    Table,
}

impl Budget<'_> {
    /// Room in the connection's budget.
    fn connection_room(&self) -> usize {
        self.max.saturating_sub(*self.held)
    }

    /// Room for body bytes in both budgets.
    fn room(&self) -> usize {
        self.connection_room().min(self.table.room())
    }

    /// Counts `n` bytes for `message` when they fit; counts nothing and says which
    /// budget is full when they do not. Checked against the table's whole budget, as
    /// header fields may use its headroom; body bytes are first cut to [`Self::room`].
    fn take(&mut self, message: &mut Message, n: usize) -> Result<(), Over> {
        if n > self.connection_room() {
            return Err(Over::Connection);
        }
        if !self.table.has_room_for_headers(n) {
            return Err(Over::Table);
        }
        *self.held += n;
        message.held += n;
        self.table.sync(*self.held);
        Ok(())
    }

    fn give_back(&mut self, message: &mut Message, n: usize) {
        let n = n.min(message.held);
        *self.held = self.held.saturating_sub(n);
        message.held -= n;
        self.table.sync(*self.held);
    }
}

/// What reading one side of a request stream needs besides its message.
struct Decoding<'c> {
    id: u64,
    side: Side,
    /// Time and capture frame of the stream bytes being read.
    at: (Timestamp, u64),
    limits: &'c Http3Limits,
    budget: Budget<'c>,
    /// The connection's WebSocket streams open now.
    ws_streams: &'c mut usize,
    /// The decoder of the header sections `side` sends.
    qpack: &'c mut QpackDecoder,
    /// `side`'s encoder stream failed: sections are not waited for.
    broken: bool,
    /// The connection's search of request bodies past the cap.
    tail_search: Option<&'c TailSearch>,
}

/// Hands out what the WebSocket of stream `id` found.
fn websocket_events(id: u64, found: impl IntoIterator<Item = WsOutput>, out: &mut Vec<Http3Event>) {
    out.extend(found.into_iter().map(|f| match f {
        WsOutput::Request(request) => Http3Event::WebSocket {
            stream_id: id,
            request,
        },
        WsOutput::Anomaly(a) => Http3Event::Anomaly(a),
    }));
}

/// The WebSocket of a client message whose headers are an extended `CONNECT` for
/// one (RFC 9220), set up at its first DATA within [`http2::MAX_WS_STREAMS`] per
/// connection (past it, `h3-websocket-limit` and the frames stay a body).
fn websocket<'m>(message: &'m mut Message, cx: &mut Decoding<'_>) -> Option<&'m ClientWebSocket> {
    if !message.ws_checked {
        message.ws_checked = true;
        let upgrade = message.headers.as_ref().and_then(|headers| {
            let request = http2::request_from(headers.clone(), Vec::new(), message.meta(), VERSION);
            WsUpgrade::of_extended_connect(&request)
        });
        if let Some(upgrade) = upgrade {
            if *cx.ws_streams >= http2::MAX_WS_STREAMS {
                message.note(
                    "h3-websocket-limit",
                    format!(
                        "stream {}: more than {} WebSocket streams at once; read as a plain stream",
                        cx.id,
                        http2::MAX_WS_STREAMS
                    ),
                );
            } else {
                *cx.ws_streams += 1;
                let limits = WsLimits {
                    max_message_bytes: cx.limits.max_body_bytes,
                    max_inflated_bytes: cx.limits.max_body_bytes.saturating_mul(4),
                };
                let share = cx.budget.table.sibling();
                message.ws = Some(Box::new(
                    ClientWebSocket::new(upgrade, limits, share)
                        .with_tail_search(cx.tail_search.cloned()),
                ));
            }
        }
    }
    message.ws.as_deref()
}

/// One piece of a request stream's frames, applied to its message.
fn message_part(message: &mut Message, part: Part<'_>, cx: &mut Decoding<'_>) {
    let (id, side, limits) = (cx.id, cx.side, cx.limits);
    match part {
        Part::Data(chunk) if side == Side::Client && websocket(message, cx).is_some() => {
            message.body_len += chunk.len() as u64;
            if let Some(ws) = message.ws.as_mut() {
                ws.push(chunk, cx.at.0, cx.at.1, &mut message.ws_found);
            }
        }
        Part::Data(chunk) => {
            message.body_len += chunk.len() as u64;
            let cut = message_budget::cut_for_memory(&message.anomalies, "h3-body-budget");
            let room = if cut {
                0
            } else {
                limits.max_body_bytes.saturating_sub(message.body.len())
            };
            let keep = chunk.len().min(room).min(cx.budget.room());
            if keep < chunk.len() && !message.truncated {
                let body = format!("stream {id}: {} body", side.name());
                if keep == room {
                    message.note(
                        "body-size-limit",
                        format!("{body} beyond the body size limit not kept"),
                    );
                } else if keep == cx.budget.connection_room() {
                    message.note(
                        "h3-body-budget",
                        format!("{body} beyond the connection's budget of held bytes not kept"),
                    );
                } else {
                    let detail = cx
                        .budget
                        .table
                        .cut_detail(&format!("{body} not kept past this point"));
                    message.note(message_budget::ANOMALY, detail);
                }
            }
            if keep < chunk.len() {
                message.truncated = true;
            }
            if cx.budget.take(message, keep).is_ok() {
                message.body.extend_from_slice(&chunk[..keep]);
            }
            // A request body full to the cap: the rest goes to the tail search.
            let search = cx.tail_search.filter(|_| side == Side::Client && !cut);
            if let (Some(search), Some(rest)) = (search, chunk.get(keep..)) {
                let full = message.body.len() >= limits.max_body_bytes;
                if keep == room && full && !rest.is_empty() {
                    let at = message.body_len.saturating_sub(rest.len() as u64);
                    let (body, headers) = (&message.body, message.headers.as_deref());
                    message
                        .tail
                        .get_or_insert_with(|| {
                            let content_encoding = headers.and_then(tail_search::content_encoding);
                            search.start_at(TailStart {
                                before: body,
                                at,
                                content_encoding: content_encoding.as_deref(),
                            })
                        })
                        .feed(rest);
                }
            }
        }
        Part::Frame {
            ty: frame_type::HEADERS,
            payload,
        } => {
            if !message.blocked.is_empty() {
                // Sections are applied in order: this one waits behind the others.
                hold_blocked(message, payload, side, id, &mut cx.budget);
                return;
            }
            match decode_section(cx.qpack, &payload, limits) {
                Err(QpackError::Blocked { .. }) if !cx.broken => {
                    hold_blocked(message, payload, side, id, &mut cx.budget)
                }
                result => take_section(message, result, side, id, &mut cx.budget),
            }
        }
        Part::TooLarge {
            ty: frame_type::HEADERS,
            len,
        } => {
            message.note(
                "h3-frame-too-large",
                format!(
                    "stream {id}: {} HEADERS frame of {len} bytes over the {}-byte limit skipped",
                    side.name(),
                    limits.max_header_list_bytes
                ),
            );
            message.headers_lost = true;
        }
        // The reader keeps no other type.
        Part::Frame { .. } | Part::TooLarge { .. } => {}
    }
}

fn hold_blocked(
    message: &mut Message,
    section: Vec<u8>,
    side: Side,
    id: u64,
    budget: &mut Budget<'_>,
) {
    if message.blocked.len() >= MAX_BLOCKED_SECTIONS || budget.take(message, section.len()).is_err()
    {
        message.note(
            "h3-headers-blocked",
            format!(
                "stream {id}: a {} header section waiting for QPACK table entries could \
                 not be held (at most {MAX_BLOCKED_SECTIONS} per message, within the \
                 budgets of held bytes)",
                side.name()
            ),
        );
        message.headers_lost = true;
        return;
    }
    message.blocked.push_back(section);
}

fn decode_section(
    qpack: &mut QpackDecoder,
    section: &[u8],
    limits: &Http3Limits,
) -> Result<Vec<Header>, QpackError> {
    let mut fields = Vec::new();
    qpack.decode(section, limits.max_header_list_bytes, &mut fields)?;
    Ok(fields)
}

/// A decoded header section (or why it could not be) applied to its message:
/// interim responses are skipped, the first other section is the headers, later
/// ones are trailers.
fn take_section(
    message: &mut Message,
    result: Result<Vec<Header>, QpackError>,
    side: Side,
    id: u64,
    budget: &mut Budget<'_>,
) {
    let fields = match result {
        Ok(fields) => fields,
        Err(e) => {
            message.note(
                "h3-headers-lost",
                format!("stream {id}: a {} header section: {e}", side.name()),
            );
            message.headers_lost = true;
            return;
        }
    };
    if side == Side::Server && message.headers.is_none() && is_interim(&fields) {
        return;
    }
    let size = fields.iter().map(|f| f.name.len() + f.value.len()).sum();
    match budget.take(message, size) {
        Ok(()) => {}
        Err(Over::Connection) => {
            message.note(
                "h3-held-limit",
                format!(
                    "stream {id}: a {} header section not kept: over the connection's \
                     budget of held bytes",
                    side.name()
                ),
            );
            message.headers_lost = true;
            return;
        }
        Err(Over::Table) => {
            let detail = budget.table.cut_detail(&format!(
                "stream {id}: a {} header section not kept",
                side.name()
            ));
            message.note(message_budget::ANOMALY, detail);
            message.headers_lost = true;
            return;
        }
    }
    match message.headers.as_mut() {
        Some(headers) => headers.extend(http2::as_trailer(fields)),
        None => message.headers = Some(fields),
    }
}

/// A `1xx` response (RFC 9114 §4.1: any number may precede the final one).
fn is_interim(fields: &[Header]) -> bool {
    value(fields, ":status").is_some_and(|s| s.len() == 3 && s[0] == b'1')
}

fn request_from(mut m: Message) -> HttpRequest {
    let beyond_cap = m
        .tail
        .take()
        .map(|tail| tail_search::finish(tail, &mut m.anomalies))
        .unwrap_or_default();
    let meta = m.meta();
    let headers = m.headers.take().unwrap_or_default();
    if headers.is_empty() && !m.headers_lost && m.seen() {
        let why = if m.truncated {
            "the request stream ended or was cut before its HEADERS frame was complete"
        } else {
            "the request stream carried no HEADERS frame"
        };
        m.note("h3-headers-lost", why);
    }
    let mut request = http2::request_from(headers, m.anomalies, meta, VERSION);
    request.body = m.body;
    request.body_len = m.body_len;
    request.truncated = m.truncated;
    request.beyond_cap = beyond_cap;
    request
}

fn response_from(mut m: Message) -> HttpResponse {
    let meta = m.meta();
    let headers = m.headers.take().unwrap_or_default();
    let mut response = http2::response_from(headers, m.anomalies, meta, VERSION);
    response.body = m.body;
    response.body_len = m.body_len;
    response.truncated = m.truncated;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// QPACK prefixed integer (RFC 9204 §4.1.1) with `flags` in the bits above it.
    fn int(out: &mut Vec<u8>, flags: u8, prefix: u32, v: usize) {
        let max = (1usize << prefix) - 1;
        if v < max {
            out.push(flags | v as u8);
            return;
        }
        out.push(flags | max as u8);
        let mut rest = v - max;
        while rest >= 0x80 {
            out.push(0x80 | (rest & 0x7f) as u8);
            rest >>= 7;
        }
        out.push(rest as u8);
    }

    /// A field section of literal names and values, no table references.
    fn section(fields: &[(&str, &str)]) -> Vec<u8> {
        let mut b = vec![0, 0];
        for (name, value) in fields {
            int(&mut b, 0x20, 3, name.len());
            b.extend_from_slice(name.as_bytes());
            int(&mut b, 0, 7, value.len());
            b.extend_from_slice(value.as_bytes());
        }
        b
    }

    fn varint(v: u64) -> Vec<u8> {
        match v {
            0..=63 => vec![v as u8],
            64..=16383 => (0x4000 | v as u16).to_be_bytes().to_vec(),
            _ => (0x8000_0000 | v as u32).to_be_bytes().to_vec(),
        }
    }

    fn frame(ty: u64, payload: &[u8]) -> Vec<u8> {
        let mut f = varint(ty);
        f.extend(varint(payload.len() as u64));
        f.extend_from_slice(payload);
        f
    }

    fn request_bytes(path: &str, body: &[u8]) -> Vec<u8> {
        let mut b = frame(
            frame_type::HEADERS,
            &section(&[
                (":method", if body.is_empty() { "GET" } else { "POST" }),
                (":scheme", "https"),
                (":authority", "api.example"),
                (":path", path),
            ]),
        );
        if !body.is_empty() {
            b.extend(frame(frame_type::DATA, body));
        }
        b
    }

    fn response_bytes(status: &str, body: &[u8]) -> Vec<u8> {
        let mut b = frame(frame_type::HEADERS, &section(&[(":status", status)]));
        b.extend(frame(frame_type::DATA, body));
        b
    }

    fn bytes(id: u64, from_client: bool, offset: u64, data: &[u8], fin: bool) -> QuicEvent {
        QuicEvent::Stream {
            id,
            from_client,
            offset,
            data: data.to_vec(),
            fin,
        }
    }

    fn push_all(conn: &mut Http3Conn, events: Vec<QuicEvent>) -> Vec<Http3Event> {
        let mut out = Vec::new();
        for (i, e) in events.into_iter().enumerate() {
            conn.push(e, Timestamp::from_micros(i as i64), i as u64 + 1, &mut out);
        }
        out
    }

    /// Each stream's bytes as events of `cut`-byte pieces.
    fn pieces(id: u64, from_client: bool, data: &[u8], cut: usize) -> Vec<QuicEvent> {
        let mut events = Vec::new();
        let mut offset = 0;
        for chunk in data.chunks(cut.max(1)) {
            let fin = offset + chunk.len() == data.len();
            events.push(bytes(id, from_client, offset as u64, chunk, fin));
            offset += chunk.len();
        }
        events
    }

    fn exchanges(out: &[Http3Event]) -> Vec<(u64, &HttpRequest, Option<&HttpResponse>)> {
        out.iter()
            .filter_map(|e| match e {
                Http3Event::Exchange {
                    stream_id,
                    request,
                    response,
                } => Some((*stream_id, request, response.as_ref())),
                Http3Event::WebSocket { .. } | Http3Event::Anomaly(_) => None,
            })
            .collect()
    }

    fn kinds(anomalies: &[Anomaly]) -> Vec<&str> {
        anomalies.iter().map(|a| a.kind.as_str()).collect()
    }

    /// An extended CONNECT for a WebSocket (RFC 9220), then `frames` in one DATA frame.
    fn ws_stream_bytes(frames: &[u8]) -> Vec<u8> {
        let mut b = frame(
            frame_type::HEADERS,
            &section(&[
                (":method", "CONNECT"),
                (":protocol", "websocket"),
                (":scheme", "https"),
                (":authority", "ws.example"),
                (":path", "/ws"),
            ]),
        );
        b.extend(frame(frame_type::DATA, frames));
        b
    }

    /// A masked client WebSocket text frame.
    fn ws_text(payload: &[u8]) -> Vec<u8> {
        let key = [3u8, 1, 4, 1];
        let mut f = vec![0x81, 0x80 | payload.len() as u8];
        f.extend_from_slice(&key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        f
    }

    #[test]
    fn websocket_streams_give_messages_at_every_split_and_are_bounded() {
        let frames = [ws_text(b"{\"oaid\":\"x\"}"), ws_text(b"two")].concat();
        let stream = ws_stream_bytes(&frames);
        for cut in 1..=stream.len() {
            let mut conn = Http3Conn::new(Http3Limits::default());
            let mut events = pieces(0, true, &stream, cut);
            events.extend(pieces(0, false, &response_bytes("200", b""), 64));
            let out = push_all(&mut conn, events);
            let messages: Vec<&[u8]> = out
                .iter()
                .filter_map(|e| match e {
                    Http3Event::WebSocket {
                        stream_id: 0,
                        request,
                    } => {
                        assert_eq!(
                            (request.method.as_str(), request.target.as_str()),
                            ("WS", "/ws")
                        );
                        Some(request.body.as_slice())
                    }
                    _ => None,
                })
                .collect();
            assert_eq!(messages, [&b"{\"oaid\":\"x\"}"[..], b"two"], "cut {cut}");
            let x = exchanges(&out);
            assert_eq!(x.len(), 1, "the CONNECT too, cut {cut}");
            assert!(x[0].1.body.is_empty());
        }
        // Past MAX_WS_STREAMS open at once, a stream's frames stay its body.
        let mut conn = Http3Conn::new(Http3Limits::default());
        let open = ws_stream_bytes(&ws_text(b"m"));
        let mut events: Vec<QuicEvent> = (0..=http2::MAX_WS_STREAMS as u64)
            .map(|i| bytes(4 * i, true, 0, &open, false))
            .collect();
        let last = 4 * http2::MAX_WS_STREAMS as u64;
        events.push(bytes(last, true, open.len() as u64, &[], true));
        events.push(bytes(last, false, 0, &response_bytes("200", b""), true));
        let out = push_all(&mut conn, events);
        let ws = out
            .iter()
            .filter(|e| matches!(e, Http3Event::WebSocket { .. }))
            .count();
        assert_eq!(ws, http2::MAX_WS_STREAMS);
        let x = exchanges(&out);
        assert_eq!(x.len(), 1);
        assert_eq!(x[0].1.body, ws_text(b"m"));
        assert_eq!(kinds(&x[0].1.anomalies), ["h3-websocket-limit"]);
    }

    #[test]
    fn a_request_and_its_response_at_every_split() {
        let req = request_bytes("/v1/track?adid=1234", b"{\"imei\":\"356938035643809\"}");
        let resp = response_bytes("200", b"ok");
        for cut in 1..=req.len().max(resp.len()) {
            let mut conn = Http3Conn::new(Http3Limits::default());
            let mut events = pieces(0, true, &req, cut);
            events.extend(pieces(0, false, &resp, cut));
            let out = push_all(&mut conn, events);
            let x = exchanges(&out);
            assert_eq!(x.len(), 1, "cut {cut}");
            let (id, request, response) = x[0];
            assert_eq!(id, 0);
            assert_eq!(request.method, "POST");
            assert_eq!(request.target, "/v1/track?adid=1234");
            assert_eq!(request.version, "HTTP/3");
            assert_eq!(request.body, b"{\"imei\":\"356938035643809\"}");
            assert!(!request.truncated);
            assert_eq!(request.headers[2].name, ":authority");
            let response = response.expect("response");
            assert_eq!(response.status, 200);
            assert_eq!(response.body, b"ok");
            assert!(request.anomalies.is_empty() && response.anomalies.is_empty());
        }
    }

    #[test]
    fn streams_complete_in_their_own_order_and_carry_their_frames() {
        let mut conn = Http3Conn::new(Http3Limits::default());
        let out = push_all(
            &mut conn,
            vec![
                bytes(0, true, 0, &request_bytes("/a", b""), true),
                bytes(4, true, 0, &request_bytes("/b", b""), true),
                bytes(4, false, 0, &response_bytes("204", b""), true),
                bytes(0, false, 0, &response_bytes("200", b"x"), true),
            ],
        );
        let x = exchanges(&out);
        assert_eq!(x.len(), 2);
        assert_eq!((x[0].0, x[0].1.target.as_str()), (4, "/b"));
        assert_eq!((x[1].0, x[1].1.target.as_str()), (0, "/a"));
        // The request's time and frames are those of its first and last bytes.
        assert_eq!(x[0].1.meta.first_frame, 2);
        assert_eq!(x[0].2.map(|r| r.meta.first_frame), Some(3));
    }

    #[test]
    fn interim_responses_are_skipped_and_trailers_appended() {
        let mut resp = frame(
            frame_type::HEADERS,
            &section(&[(":status", "103"), ("link", "</s>")]),
        );
        resp.extend(response_bytes("200", b"body"));
        resp.extend(frame(frame_type::HEADERS, &section(&[("x-trailer", "t")])));
        // An unknown (grease) frame type is skipped by its length.
        resp.extend(frame(0x21, b"grease"));
        let mut conn = Http3Conn::new(Http3Limits::default());
        let out = push_all(
            &mut conn,
            vec![
                bytes(0, true, 0, &request_bytes("/", b""), true),
                bytes(0, false, 0, &resp, true),
            ],
        );
        let x = exchanges(&out);
        let response = x[0].2.expect("response");
        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"body");
        let names: Vec<(&str, bool)> = response
            .headers
            .iter()
            .map(|h| (h.name.as_ref(), h.trailer))
            .collect();
        assert_eq!(names, [(":status", false), ("x-trailer", true)]);
    }

    /// The client's control stream (SETTINGS) and encoder stream, and the server's.
    fn settings_stream(capacity: u64) -> Vec<u8> {
        let mut s = varint(stream_type::CONTROL);
        let mut payload = varint(SETTINGS_QPACK_MAX_TABLE_CAPACITY);
        payload.extend(varint(capacity));
        s.extend(frame(frame_type::SETTINGS, &payload));
        s
    }

    /// Encoder stream inserting `name: value` with a literal name (RFC 9204 §4.3.3).
    fn insert(name: &str, value: &str) -> Vec<u8> {
        let mut b = Vec::new();
        int(&mut b, 0x40, 5, name.len());
        b.extend_from_slice(name.as_bytes());
        int(&mut b, 0, 7, value.len());
        b.extend_from_slice(value.as_bytes());
        b
    }

    #[test]
    fn a_section_blocked_on_the_encoder_stream_waits_for_it() {
        // Capacity 4096: MaxEntries 128, Required Insert Count 1 encodes as 2.
        let mut blocked = vec![2, 0];
        blocked.extend(&section(&[(":method", "GET"), (":path", "/p")])[2..]);
        blocked.push(0x80); // indexed, dynamic, relative index 0: the entry inserted
        let mut req = frame(frame_type::HEADERS, &blocked);
        req.extend(frame(frame_type::DATA, b"data"));
        let mut encoder = varint(stream_type::QPACK_ENCODER);
        encoder.push(0x3f);
        encoder.push(0xe1); // Set Dynamic Table Capacity 4096 (0x20 | 31, then 4065)
        encoder.push(0x1f);
        encoder.extend(insert("x-device-id", "cafe-0001"));
        let mut conn = Http3Conn::new(Http3Limits::default());
        let mut out = push_all(
            &mut conn,
            vec![
                bytes(3, false, 0, &settings_stream(4096), false),
                bytes(0, true, 0, &req, true),
                bytes(0, false, 0, &response_bytes("200", b""), true),
            ],
        );
        assert!(exchanges(&out).is_empty(), "{out:?}");
        conn.push(
            bytes(2, true, 0, &encoder, false),
            Timestamp::from_micros(9),
            9,
            &mut out,
        );
        let x = exchanges(&out);
        assert_eq!(x.len(), 1, "{out:?}");
        let request = x[0].1;
        assert_eq!(request.target, "/p");
        assert_eq!(request.body, b"data");
        let last = request.headers.last().expect("field");
        assert_eq!(
            (last.name.as_ref(), last.value.as_slice()),
            ("x-device-id", &b"cafe-0001"[..])
        );
    }

    #[test]
    fn a_section_never_unblocked_is_lost_at_close() {
        let mut req = frame(frame_type::HEADERS, &[2, 0, 0x80]);
        req.extend(frame(frame_type::DATA, b"still read"));
        let mut conn = Http3Conn::new(Http3Limits::default());
        let mut out = push_all(
            &mut conn,
            vec![
                bytes(3, false, 0, &settings_stream(4096), false),
                bytes(0, true, 0, &req, true),
            ],
        );
        assert!(exchanges(&out).is_empty());
        conn.close(&mut out);
        let x = exchanges(&out);
        assert_eq!(x.len(), 1);
        assert_eq!(x[0].1.body, b"still read");
        assert!(kinds(&x[0].1.anomalies).contains(&"h3-headers-blocked"));
        assert!(x[0].2.is_none());
        assert!(conn.is_closed());
    }

    #[test]
    fn resets_gaps_and_close_emit_what_was_read() {
        let mut conn = Http3Conn::new(Http3Limits::default());
        let req = request_bytes("/r", b"0123456789");
        let out = push_all(
            &mut conn,
            vec![
                bytes(0, true, 0, &req[..req.len() - 4], false),
                QuicEvent::Reset {
                    id: 0,
                    from_client: true,
                    error_code: 0x10c,
                },
                bytes(4, true, 0, &req[..req.len() - 4], false),
                QuicEvent::Gap {
                    id: 4,
                    from_client: true,
                    offset: req.len() as u64 - 4,
                    len: 2,
                },
                bytes(8, true, 0, &req, false),
                QuicEvent::Close {
                    from_client: false,
                    error_code: 0x101,
                    reason: "general".into(),
                },
                bytes(12, true, 0, &req, true),
            ],
        );
        let x = exchanges(&out);
        let ids: Vec<u64> = x.iter().map(|e| e.0).collect();
        assert_eq!(ids, [0, 4, 8], "stream 12 came after the close");
        assert!(kinds(&x[0].1.anomalies).contains(&"h3-stream-reset"));
        assert!(x[0].1.truncated && x[1].1.truncated && x[2].1.truncated);
        assert_eq!(x[0].1.body, b"012345");
        // Stream 4's gap left it waiting only for the server: emitted at the close.
        assert!(kinds(&x[1].1.anomalies).contains(&"h3-gap"));
        assert!(out
            .iter()
            .any(|e| matches!(e, Http3Event::Anomaly(a) if a.kind == "h3-connection-error")));
    }

    #[test]
    fn a_reset_from_the_side_that_sent_nothing_is_kept_and_a_cut_header_named() {
        let mut conn = Http3Conn::new(Http3Limits::default());
        let req = request_bytes("/x", b"");
        let out = push_all(
            &mut conn,
            vec![
                bytes(0, true, 0, &req, true),
                QuicEvent::Reset {
                    id: 0,
                    from_client: false,
                    error_code: 0x10c,
                },
                bytes(4, true, 0, &req[..5], false),
                QuicEvent::Gap {
                    id: 4,
                    from_client: true,
                    offset: 5,
                    len: 3,
                },
                QuicEvent::Close {
                    from_client: true,
                    error_code: 0,
                    reason: String::new(),
                },
            ],
        );
        let x = exchanges(&out);
        assert_eq!(x.len(), 2);
        assert!(x[0].2.is_none());
        assert!(kinds(&x[0].1.anomalies).contains(&"h3-stream-reset"));
        let lost = x[1]
            .1
            .anomalies
            .iter()
            .find(|a| a.kind == "h3-headers-lost");
        assert!(lost.is_some_and(|a| a.detail.contains("before its HEADERS frame was complete")));
    }

    #[test]
    fn late_data_of_an_emitted_stream_does_not_reopen_it() {
        let mut conn = Http3Conn::new(Http3Limits::default());
        let req = request_bytes("/once", b"");
        let out = push_all(
            &mut conn,
            vec![
                bytes(0, true, 0, &req, true),
                bytes(0, false, 0, &response_bytes("200", b""), true),
                bytes(0, true, 0, &req, true),
                // Bytes from the middle of a stream never seen do not start one.
                bytes(4, true, 7, &req, true),
            ],
        );
        assert_eq!(exchanges(&out).len(), 1);
        let mut out = Vec::new();
        conn.close(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn a_request_body_past_the_cap_is_fed_to_the_tail_search_wherever_it_is_cut() {
        use crate::net::tail_search::testing::{recorded, recording};
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let limits = Http3Limits {
            max_body_bytes: 10,
            ..Http3Limits::default()
        };
        // Two DATA frames: the cap falls inside the first. The body is gzipped (as
        // far as the headers say): the search is told so.
        let mut request = frame(
            frame_type::HEADERS,
            &section(&[
                (":method", "POST"),
                (":scheme", "https"),
                (":authority", "api.example"),
                (":path", "/up"),
                ("content-encoding", "gzip"),
            ]),
        );
        request.extend(frame(frame_type::DATA, b"abcdefghijklmnop"));
        request.extend(frame(frame_type::DATA, b"qrstuvwxyz"));
        for cut in [1, 7, 20, request.len()] {
            let starts = Arc::new(AtomicUsize::new(0));
            let mut conn =
                Http3Conn::new(limits.clone()).with_tail_search(Some(recording(&starts)));
            let mut events = pieces(0, true, &request, cut);
            // A response body as long: never searched.
            events.extend(pieces(0, false, &response_bytes("200", &[b'r'; 30]), 64));
            let out = push_all(&mut conn, events);
            let x = exchanges(&out);
            assert_eq!(x.len(), 1, "cut {cut}");
            assert_eq!(x[0].1.body, b"abcdefghij");
            assert_eq!(
                recorded(x[0].1),
                ("abcdefghij".into(), 10, "klmnopqrstuvwxyz".into()),
                "cut {cut}"
            );
            assert_eq!(x[0].1.beyond_cap[0].encoding, "gzip");
            assert_eq!(
                starts.load(Ordering::Relaxed),
                1,
                "the response is not searched"
            );
        }
    }

    #[test]
    fn limits_record_anomalies() {
        let limits = Http3Limits {
            max_body_bytes: 4,
            max_streams_open: 1,
            max_header_list_bytes: 64,
            ..Http3Limits::default()
        };
        let mut conn = Http3Conn::new(limits);
        let big = frame(
            frame_type::HEADERS,
            &section(&[(":method", "GET"), ("x-long", &"v".repeat(80))]),
        );
        let out = push_all(
            &mut conn,
            vec![
                bytes(0, true, 0, &request_bytes("/", b"0123456789"), true),
                bytes(4, true, 0, &big, true),
                bytes(0, false, 0, &big, true),
            ],
        );
        let x = exchanges(&out);
        assert_eq!(x.len(), 1);
        let (request, response) = (x[0].1, x[0].2.expect("response"));
        assert_eq!(
            (request.body.as_slice(), request.body_len),
            (&b"0123"[..], 10)
        );
        assert!(request.truncated);
        assert!(kinds(&request.anomalies).contains(&"body-size-limit"));
        assert!(kinds(&response.anomalies).contains(&"h3-frame-too-large"));
        assert!(out
            .iter()
            .any(|e| matches!(e, Http3Event::Anomaly(a) if a.kind == "h3-too-many-streams")));
    }

    #[test]
    fn header_sections_repeated_without_end_stay_within_the_budget() {
        let limits = Http3Limits {
            max_held_bytes: 4096,
            ..Http3Limits::default()
        };
        let mut conn = Http3Conn::new(limits);
        let mut req = request_bytes("/t", b"");
        let trailer = frame(frame_type::HEADERS, &section(&[("x-t", &"v".repeat(200))]));
        let bad = frame(frame_type::HEADERS, &[0xff]);
        for _ in 0..1000 {
            req.extend(&trailer);
            req.extend(&bad);
        }
        let mut out = push_all(&mut conn, vec![bytes(0, true, 0, &req, true)]);
        conn.close(&mut out);
        let x = exchanges(&out);
        let request = x[0].1;
        let kept: usize = request
            .headers
            .iter()
            .map(|h| h.name.len() + h.value.len())
            .sum();
        assert!(kept <= 4096, "{kept}");
        assert!(
            request.headers.len() > 4,
            "trailers within the budget are kept"
        );
        // One anomaly of each kind, however often the peer repeats itself.
        assert_eq!(
            kinds(&request.anomalies),
            ["h3-headers-lost", "h3-held-limit"]
        );
        assert_eq!(conn.held, 0, "an emitted stream gives its bytes back");
    }

    #[test]
    fn open_streams_share_the_tables_budget() {
        // 600 bytes for bodies, the last 85 for header fields only.
        let budget = MessageBudget::new(685);
        let mut other = Http3Conn::new(Http3Limits::default()).with_budget(&budget);
        let mut conn = Http3Conn::new(Http3Limits::default()).with_budget(&budget);
        // The other connection's open stream holds 400 body bytes and its headers.
        let mut out = push_all(
            &mut other,
            vec![bytes(0, true, 0, &request_bytes("/o", &[b'o'; 400]), false)],
        );
        let other_held = budget.held();
        assert!(other_held > 400 && other_held < 600, "{other_held}");
        // This one's body gets what is left, then nothing, even once room frees up.
        let first = request_bytes("/u", &[b'a'; 400]);
        let more = frame(frame_type::DATA, &[b'b'; 10]);
        out.extend(push_all(&mut conn, vec![bytes(0, true, 0, &first, false)]));
        assert_eq!(budget.held(), 600);
        other.close(&mut out);
        let offset = first.len() as u64;
        out.extend(push_all(
            &mut conn,
            vec![bytes(0, true, offset, &more, true)],
        ));
        out.extend(push_all(
            &mut conn,
            vec![bytes(
                0,
                false,
                0,
                &frame(frame_type::HEADERS, &section(&[(":status", "204")])),
                true,
            )],
        ));
        assert_eq!(budget.held(), 0, "everything given back");
        let x = exchanges(&out);
        let cut = x
            .iter()
            .find(|e| e.1.target == "/u")
            .map(|e| e.1)
            .expect("the cut request");
        assert!(cut.truncated);
        assert_eq!(cut.body_len, 410);
        assert!(!cut.body.is_empty() && cut.body.iter().all(|&b| b == b'a'));
        assert_eq!(kinds(&cut.anomalies), [message_budget::ANOMALY]);
        assert!(cut.anomalies[0].detail.contains("budget of 685 bytes"));
    }

    #[test]
    fn garbage_on_every_stream_kind_is_harmless() {
        let mut valid = request_bytes("/g", b"body");
        valid.extend(settings_stream(100));
        valid.extend(insert("a", "b"));
        for id in [0u64, 1, 2, 3, 6, 7] {
            for i in 0..valid.len() {
                for flip in [0x01u8, 0x40, 0x80, 0xff] {
                    let mut data = valid.clone();
                    data[i] ^= flip;
                    let mut conn = Http3Conn::new(Http3Limits::default());
                    let mut out = push_all(
                        &mut conn,
                        vec![
                            bytes(id, true, 0, &data[..i], false),
                            bytes(id, false, 0, &data, true),
                            bytes(id, true, i as u64, &data[i..], true),
                        ],
                    );
                    conn.close(&mut out);
                }
            }
        }
    }

    #[test]
    fn frame_reader_reads_every_layout() {
        let mut b = frame(frame_type::DATA, b"");
        b.extend(frame(frame_type::SETTINGS, b""));
        b.extend(frame(frame_type::DATA, b"abc"));
        b.extend(frame(0x21, &[7; 100]));
        b.extend(frame(frame_type::SETTINGS, &[7; 100]));
        b.extend(frame(frame_type::SETTINGS, &[1, 2]));
        for cut in [1, 2, 7, b.len()] {
            let mut reader = FrameReader::default();
            let mut parts = Vec::new();
            for piece in b.chunks(cut) {
                let mut input = piece;
                while let Some(p) = reader.next(&mut input, frame_type::SETTINGS, 10) {
                    parts.push(format!("{p:?}"));
                }
                assert!(input.is_empty());
            }
            let data: String = parts
                .iter()
                .filter(|p| p.starts_with("Data"))
                .map(String::as_str)
                .collect();
            let others: Vec<&String> = parts.iter().filter(|p| !p.starts_with("Data")).collect();
            assert_eq!(
                others,
                [
                    "Frame { ty: 4, payload: [] }",
                    "TooLarge { ty: 4, len: 100 }",
                    "Frame { ty: 4, payload: [1, 2] }",
                ],
                "cut {cut}"
            );
            let want = if cut == 1 {
                "Data([97])Data([98])Data([99])"
            } else {
                "Data([97, 98, 99])"
            };
            if cut == 1 || cut == b.len() {
                assert_eq!(data, want);
            }
            assert!(!reader.mid_frame());
        }
    }
}
