//! HTTP/2 (RFC 9113) over one in-order byte stream per direction, sans I/O.
//!
//! The flow table hands [`Http2Conn`] the bytes of each direction of a connection
//! that speaks HTTP/2 — cleartext h2c (prior knowledge or `Upgrade: h2c`) or the
//! plaintext of a decrypted TLS connection — and gets one [`Http2Event::Exchange`]
//! per stream: the request (from the client's HEADERS, or a server's PUSH_PROMISE),
//! with the response when one was seen. The request and response types are HTTP/1's
//! ([`HttpRequest`], [`HttpResponse`]), so the rest of the pipeline sees no difference:
//! `method` from `:method`, `target` from `:path` (the authority for CONNECT),
//! `version` `HTTP/2`, and `headers` every field in wire order, pseudo-headers
//! included (`:method`, `:scheme`, `:authority`, `:path`, `:status`), as Chrome's HAR
//! shows them; trailers are appended to the headers. Bodies are the DATA payloads
//! without padding; `Content-Encoding` is left to `crate::decode`, as for HTTP/1.
//!
//! Frames read: DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS (its header table size
//! bounds the peer's HPACK decoder, see [`hpack`](super::hpack)), PUSH_PROMISE, PING,
//! GOAWAY, WINDOW_UPDATE, CONTINUATION; unknown types are skipped. Flow control is
//! not checked (a passive observer sees what was sent, allowed or not).
//!
//! Policies:
//! - **When an exchange is emitted**: when both sides ended the stream
//!   (END_STREAM), when either reset it (RST_STREAM, anomaly `h2-stream-reset`), when a
//!   GOAWAY says it will not be processed (id above the last stream id), when the
//!   direction that had yet to end it stopped being read, and at [`Http2Conn::close`]
//!   (open streams in id order, unfinished messages `truncated`).
//! - **Limits** ([`Http2Limits`]): a frame longer than `max_frame_bytes` is skipped
//!   (anomaly `h2-frame-too-large`); a header block (HEADERS or PUSH_PROMISE with its
//!   CONTINUATIONs) is accumulated up to `max_header_list_bytes` and its decoded fields
//!   are kept up to as much (a CONTINUATION flood costs time, never memory); at most
//!   `max_streams_open` streams are tracked, the headers of further ones are decoded
//!   (HPACK must stay in step) and their stream ignored (`h2-too-many-streams`);
//!   bodies are kept up to `max_body_bytes` each (`body-size-limit`, as HTTP/1); header
//!   fields and bodies of all open streams together are kept up to `max_held_bytes`
//!   (beyond it: body bytes not kept, `h2-body-budget`; response headers or trailers
//!   not kept and new streams not tracked, `h2-held-limit`), and with a flow table's
//!   budget ([`Http2Conn::with_budget`]) within what the table's messages in progress
//!   leave (`message-memory-limit`); a body cut for either budget keeps nothing more;
//!   `body_len` always counts every DATA byte.
//! - **HPACK state**: a header block that cannot be decoded (HPACK error, too large,
//!   bad padding, interleaved frames) leaves that direction's dynamic table out of step
//!   with the sender's, as it would a real peer (a connection error): anomaly
//!   `h2-hpack-error` once, and every later header block of that direction is lost —
//!   its stream still becomes an exchange (empty method/target or status 0) with
//!   anomaly `h2-headers-lost`, so its DATA is still seen.
//! - **Gaps**: HTTP/2 frames cannot be found again after lost bytes; the direction
//!   stops being read (anomaly `h2-gap`). A client direction that does not start with
//!   the connection preface is not read either (`h2-bad-preface`).
//! - **h2c upgrade** ([`Http2Conn::upgraded`]): stream 1 is the HTTP/1.1 request that
//!   asked for the upgrade, half-closed; the server's stream 1 answers it. Its
//!   `HTTP2-Settings` header is applied as the client's SETTINGS.
//! - **WebSockets** (RFC 8441: an extended `CONNECT` with `:protocol` `websocket`):
//!   the client's DATA on that stream is WebSocket frames, read by a
//!   [`ClientWebSocket`] (masked, maybe deflated); each message is an
//!   [`Http2Event::WebSocket`] as it completes (method `WS`, the `CONNECT`'s `:path`
//!   and `:authority`), and the
//!   stream's exchange (its `CONNECT` and the answer) comes when it ends, without
//!   the frames as body. The server's frames are not read or kept (what it tells
//!   the app). At most [`MAX_WS_STREAMS`] at once per connection (each may hold a
//!   message of `max_body_bytes`); further ones are plain streams
//!   (`h2-websocket-limit`).

use std::collections::BTreeMap;

use crate::exchange::{Anomaly, Header};
use crate::net::hpack::{HpackDecoder, DEFAULT_MAX_TABLE};
use crate::net::http1::{HttpRequest, HttpResponse, MessageMeta};
use crate::net::message_budget::{self, BudgetShare, MessageBudget};
use crate::net::sniff::H2_PREFACE;
use crate::net::tail_search::{self, TailScan, TailSearch, TailStart};
use crate::net::websocket::{ClientWebSocket, WsLimits, WsOutput, WsUpgrade};
use crate::timestamp::Timestamp;

/// WebSocket streams (RFC 8441) read at once per connection; see the module doc.
pub const MAX_WS_STREAMS: usize = 4;

/// Default [`Http2Limits::max_frame_bytes`]: 1 MiB (Go's servers announce this much;
/// the protocol's default is 16 KiB).
pub const DEFAULT_MAX_FRAME_BYTES: usize = 1 << 20;
/// Default [`Http2Limits::max_header_list_bytes`]: 64 KiB, as HTTP/1's head limit.
pub const DEFAULT_MAX_HEADER_LIST_BYTES: usize = 64 << 10;
/// Default [`Http2Limits::max_streams_open`]: 256 (servers allow 100–250 at once).
pub const DEFAULT_MAX_STREAMS_OPEN: usize = 256;
/// Default [`Http2Limits::max_held_bytes`]: 16 MiB of headers and bodies over all open
/// streams of a connection.
pub const DEFAULT_MAX_HELD_BYTES: usize = 16 << 20;

/// Frame types (RFC 9113 §6).
pub mod frame_type {
    pub const DATA: u8 = 0;
    pub const HEADERS: u8 = 1;
    pub const PRIORITY: u8 = 2;
    pub const RST_STREAM: u8 = 3;
    pub const SETTINGS: u8 = 4;
    pub const PUSH_PROMISE: u8 = 5;
    pub const PING: u8 = 6;
    pub const GOAWAY: u8 = 7;
    pub const WINDOW_UPDATE: u8 = 8;
    pub const CONTINUATION: u8 = 9;
}

/// Frame flags (RFC 9113 §6).
pub mod flags {
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;
}

/// The `version` of the messages read.
const VERSION: &str = "HTTP/2";
/// SETTINGS_HEADER_TABLE_SIZE (RFC 9113 §6.5.2).
const SETTINGS_HEADER_TABLE_SIZE: u16 = 1;
/// Frame header length.
const FRAME_HEADER: usize = 9;
/// Bytes of a GOAWAY payload we read (last stream id, error code).
const GOAWAY_KEPT: usize = 8;
/// Reserve for a body at once at most this much (the rest grows as it comes).
const BODY_RESERVE_CAP: usize = 64 << 10;
/// Body bytes reserved ahead at most per body byte received.
const BODY_RESERVE_FACTOR: usize = 16;

/// Limits on what one connection may make us hold; each, when hit, is an anomaly.
#[derive(Debug, Clone)]
pub struct Http2Limits {
    /// Longest frame payload read; longer frames are skipped.
    pub max_frame_bytes: usize,
    /// Largest header block (compressed) and header list (decoded, RFC 7541 sizes).
    pub max_header_list_bytes: usize,
    /// Most streams tracked at once.
    pub max_streams_open: usize,
    /// Largest body kept per message (the analysis copy); `body_len` counts all.
    pub max_body_bytes: usize,
    /// Header and body bytes kept over all open streams of the connection.
    pub max_held_bytes: usize,
    /// Hard cap on each direction's HPACK dynamic table.
    pub max_dynamic_table: usize,
}

impl Default for Http2Limits {
    fn default() -> Self {
        Http2Limits {
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            max_header_list_bytes: DEFAULT_MAX_HEADER_LIST_BYTES,
            max_streams_open: DEFAULT_MAX_STREAMS_OPEN,
            max_body_bytes: crate::decode::DEFAULT_MAX_BODY_BYTES,
            max_held_bytes: DEFAULT_MAX_HELD_BYTES,
            max_dynamic_table: DEFAULT_MAX_TABLE,
        }
    }
}

/// What the parser found.
// Exchanges are the common case and are moved, not copied, to the flow table.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Http2Event {
    /// One stream: its request, with the response when seen. Emitted when the stream
    /// completes (both END_STREAMs, RST_STREAM, GOAWAY past it, or close).
    Exchange {
        stream_id: u32,
        request: HttpRequest,
        response: Option<HttpResponse>,
    },
    /// A client message on a WebSocket stream (RFC 8441), as a request of its own
    /// (method `WS`); emitted as it completes, before its stream's exchange.
    WebSocket {
        stream_id: u32,
        request: HttpRequest,
    },
    /// Something odd about the connection, not tied to an emitted exchange.
    Anomaly(Anomaly),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Client only: this many bytes of the connection preface matched.
    Preface(usize),
    /// Reading a frame header (`hdr_len` bytes of it so far).
    Header,
    Payload,
    Stopped,
}

/// The frame being read.
#[derive(Debug)]
struct Frame {
    ty: u8,
    flags: u8,
    stream: u32,
    len: usize,
    got: usize,
    /// Payload bytes kept (at most `keep`).
    buf: Vec<u8>,
    keep: usize,
    /// DATA: the payload range that is data (known once the pad length was read).
    data: Option<(usize, usize)>,
    /// Skipped: too long, or bad padding.
    skipped: bool,
}

#[derive(Debug, Clone, Copy)]
enum BlockKind {
    Headers { end_stream: bool },
    Push { promised: u32 },
}

/// A header block being accumulated.
#[derive(Debug)]
struct Block {
    stream: u32,
    kind: BlockKind,
    buf: Vec<u8>,
    /// Cannot be decoded (too large or a bad fragment).
    lost: bool,
    start: (Timestamp, u64),
}

#[derive(Debug)]
struct Dir {
    phase: Phase,
    hdr: [u8; FRAME_HEADER],
    hdr_len: usize,
    frame: Option<Frame>,
    /// Time and capture frame of the current HTTP/2 frame's first byte.
    frame_start: (Timestamp, u64),
    block: Option<Block>,
    /// Decodes the header blocks this direction sends.
    hpack: HpackDecoder,
    hpack_broken: bool,
    /// Highest stream id this side opened.
    max_opened: u32,
}

impl Dir {
    fn new(client: bool, limits: &Http2Limits) -> Self {
        Dir {
            phase: if client {
                Phase::Preface(0)
            } else {
                Phase::Header
            },
            hdr: [0; FRAME_HEADER],
            hdr_len: 0,
            frame: None,
            frame_start: (Timestamp::default(), 0),
            block: None,
            hpack: HpackDecoder::new(limits.max_dynamic_table),
            hpack_broken: false,
            max_opened: 0,
        }
    }
}

#[derive(Debug)]
struct Stream {
    request: HttpRequest,
    response: Option<HttpResponse>,
    client_done: bool,
    server_done: bool,
    /// An extended `CONNECT` for a WebSocket: its client DATA is read as frames.
    ws: Option<Box<ClientWebSocket>>,
    /// The request body's search past `max_body_bytes`, once it got there.
    tail: Option<Box<dyn TailScan>>,
}

/// Why a stream is handed out before it completed normally.
#[derive(Debug, Clone, Copy)]
enum Early {
    Reset { by_client: bool, code: u32 },
    GoAway,
    Close,
}

/// One HTTP/2 connection, both directions; see the module doc.
#[derive(Debug)]
pub struct Http2Conn {
    limits: Http2Limits,
    client: Dir,
    server: Dir,
    streams: BTreeMap<u32, Stream>,
    /// Header and body bytes kept by open streams.
    held: usize,
    /// `held`, in the flow table's budget (WebSocket streams take shares of their own).
    table: BudgetShare,
    too_many_reported: bool,
    held_limit_reported: bool,
    /// Searches request bodies past `max_body_bytes` (none: that rest is dropped).
    tail_search: Option<TailSearch>,
}

impl Http2Conn {
    /// A connection at its start: the client's first bytes are the preface.
    pub fn new(limits: Http2Limits) -> Self {
        Http2Conn {
            client: Dir::new(true, &limits),
            server: Dir::new(false, &limits),
            limits,
            streams: BTreeMap::new(),
            held: 0,
            table: BudgetShare::default(),
            too_many_reported: false,
            held_limit_reported: false,
            tail_search: None,
        }
    }

    /// Searches each request body's bytes past `max_body_bytes` with `search` as they
    /// pass, instead of only counting them.
    pub fn with_tail_search(mut self, search: Option<TailSearch>) -> Self {
        self.tail_search = search;
        self
    }

    /// Keeps what open streams hold within `budget` too, shared with other connections
    /// (see [`message_budget`]).
    pub fn with_budget(mut self, budget: &MessageBudget) -> Self {
        self.table = BudgetShare::of(budget);
        self.table.sync(self.held);
        // The dynamic tables count too, each in a share of its own.
        for dir in [&mut self.client, &mut self.server] {
            dir.hpack.set_budget(BudgetShare::of(budget));
        }
        self
    }

    /// Whether `size` more bytes may be held: (within the connection's bound, within
    /// the table's budget).
    fn may_hold(&self, size: usize) -> (bool, bool) {
        (
            self.held.saturating_add(size) <= self.limits.max_held_bytes,
            self.table.has_room_for_headers(size),
        )
    }

    fn add_held(&mut self, size: usize) {
        self.held += size;
        self.table.sync(self.held);
    }

    /// A connection upgraded from HTTP/1.1 (`Upgrade: h2c` answered by 101): `request`
    /// (complete) is stream 1, which the server answers in HTTP/2.
    pub fn upgraded(limits: Http2Limits, request: HttpRequest) -> Self {
        let mut conn = Http2Conn::new(limits);
        if let Some(settings) = crate::exchange::header(&request.headers, "http2-settings") {
            use base64::Engine;
            let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let trimmed: Vec<u8> = settings
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace() && *b != b'=')
                .collect();
            if let Ok(payload) = engine.decode(trimmed) {
                conn.settings(true, &payload);
            }
        }
        conn.client.max_opened = 1;
        conn.held = request.body.len() + header_bytes(&request.headers);
        conn.streams.insert(
            1,
            Stream {
                request,
                response: None,
                client_done: true,
                server_done: false,
                ws: None,
                tail: None,
            },
        );
        conn
    }

    /// In-order bytes from the client, carried by capture frame `frame` at `ts`.
    pub fn client_data(
        &mut self,
        bytes: &[u8],
        ts: Timestamp,
        frame: u64,
        out: &mut Vec<Http2Event>,
    ) {
        self.data(true, bytes, ts, frame, out);
    }

    /// In-order bytes from the server.
    pub fn server_data(
        &mut self,
        bytes: &[u8],
        ts: Timestamp,
        frame: u64,
        out: &mut Vec<Http2Event>,
    ) {
        self.data(false, bytes, ts, frame, out);
    }

    /// `len` client bytes were lost: the client direction is no longer read.
    pub fn client_gap(&mut self, len: u64, out: &mut Vec<Http2Event>) {
        self.gap(true, len, out);
    }

    /// `len` server bytes were lost: the server direction is no longer read.
    pub fn server_gap(&mut self, len: u64, out: &mut Vec<Http2Event>) {
        self.gap(false, len, out);
    }

    /// The connection ended: open streams are handed out in id order with what was
    /// seen of them, unfinished messages marked truncated.
    pub fn close(&mut self, out: &mut Vec<Http2Event>) {
        for client in [true, false] {
            let dir = self.dir(client);
            let mid_frame = dir.block.is_some()
                || dir.phase == Phase::Payload
                || (dir.phase == Phase::Header && dir.hdr_len > 0);
            dir.phase = Phase::Stopped;
            dir.frame = None;
            dir.block = None;
            if mid_frame {
                out.push(Http2Event::Anomaly(Anomaly::new(
                    "h2-truncated",
                    format!("connection ended inside a {} frame", side(client)),
                )));
            }
        }
        let ids: Vec<u32> = self.streams.keys().copied().collect();
        for id in ids {
            self.emit(id, Some(Early::Close), out);
        }
    }

    /// Whether neither direction is read any more.
    pub fn is_done(&self) -> bool {
        self.client.phase == Phase::Stopped && self.server.phase == Phase::Stopped
    }

    fn dir(&mut self, client: bool) -> &mut Dir {
        if client {
            &mut self.client
        } else {
            &mut self.server
        }
    }

    fn gap(&mut self, client: bool, len: u64, out: &mut Vec<Http2Event>) {
        if self.dir(client).phase == Phase::Stopped {
            return;
        }
        out.push(Http2Event::Anomaly(Anomaly::new(
            "h2-gap",
            format!(
                "{len} {} bytes lost: HTTP/2 frames cannot be found again, the direction is no longer read",
                side(client)
            ),
        )));
        self.stop(client, out);
    }

    /// Stops reading one direction; streams waiting only for it are handed out.
    fn stop(&mut self, client: bool, out: &mut Vec<Http2Event>) {
        let dir = self.dir(client);
        dir.phase = Phase::Stopped;
        dir.frame = None;
        dir.block = None;
        let ids: Vec<u32> = self.streams.keys().copied().collect();
        for id in ids {
            self.check_done(id, out);
        }
    }

    fn data(
        &mut self,
        client: bool,
        mut bytes: &[u8],
        ts: Timestamp,
        frame: u64,
        out: &mut Vec<Http2Event>,
    ) {
        while !bytes.is_empty() {
            let dir = self.dir(client);
            match dir.phase {
                Phase::Stopped => return,
                Phase::Preface(matched) => {
                    let want = H2_PREFACE.get(matched..).unwrap_or_default();
                    let n = want.len().min(bytes.len());
                    if bytes[..n] != want[..n] {
                        out.push(Http2Event::Anomaly(Anomaly::new(
                            "h2-bad-preface",
                            "client bytes do not start with the HTTP/2 connection preface",
                        )));
                        self.stop(client, out);
                        return;
                    }
                    bytes = &bytes[n..];
                    dir.phase = if matched + n == H2_PREFACE.len() {
                        Phase::Header
                    } else {
                        Phase::Preface(matched + n)
                    };
                }
                Phase::Header => {
                    if dir.hdr_len == 0 {
                        dir.frame_start = (ts, frame);
                    }
                    let n = (FRAME_HEADER - dir.hdr_len).min(bytes.len());
                    dir.hdr[dir.hdr_len..dir.hdr_len + n].copy_from_slice(&bytes[..n]);
                    dir.hdr_len += n;
                    bytes = &bytes[n..];
                    if dir.hdr_len == FRAME_HEADER {
                        dir.hdr_len = 0;
                        self.begin_frame(client, frame, out);
                    }
                }
                Phase::Payload => {
                    let Some(f) = dir.frame.as_mut() else {
                        dir.phase = Phase::Header;
                        continue;
                    };
                    let n = (f.len - f.got).min(bytes.len());
                    let chunk = &bytes[..n];
                    bytes = &bytes[n..];
                    self.payload(client, chunk, frame, out);
                }
            }
        }
    }

    /// A frame header was read.
    fn begin_frame(&mut self, client: bool, capture_frame: u64, out: &mut Vec<Http2Event>) {
        let max_frame = self.limits.max_frame_bytes;
        let max_block = self.limits.max_header_list_bytes;
        let dir = self.dir(client);
        let h = dir.hdr;
        let len = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
        let (ty, fl) = (h[3], h[4]);
        let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
        let mut skipped = false;
        if len > max_frame {
            skipped = true;
            out.push(Http2Event::Anomaly(Anomaly::new(
                "h2-frame-too-large",
                format!(
                    "{} frame of type {ty} with {len} bytes (limit {max_frame}) skipped",
                    side(client)
                ),
            )));
        }
        use frame_type::*;
        let keep = match ty {
            _ if skipped => 0,
            DATA => 0,
            HEADERS | PUSH_PROMISE | CONTINUATION if len > max_block => 0,
            HEADERS | PUSH_PROMISE | CONTINUATION | PRIORITY | RST_STREAM | SETTINGS | PING
            | WINDOW_UPDATE => len,
            GOAWAY => len.min(GOAWAY_KEPT),
            _ => 0,
        };
        dir.frame = Some(Frame {
            ty,
            flags: fl,
            stream,
            len,
            got: 0,
            buf: Vec::with_capacity(keep),
            keep,
            data: (ty == DATA && fl & flags::PADDED == 0).then_some((0, len)),
            skipped,
        });
        dir.phase = Phase::Payload;
        if len == 0 {
            self.payload(client, &[], capture_frame, out);
        }
    }

    /// Bytes of the current frame's payload (never past its end); ends the frame when
    /// its last byte came.
    fn payload(
        &mut self,
        client: bool,
        chunk: &[u8],
        capture_frame: u64,
        out: &mut Vec<Http2Event>,
    ) {
        let dir = self.dir(client);
        let Some(f) = dir.frame.as_mut() else {
            return;
        };
        let at = f.got;
        f.got += chunk.len();
        let room = f.keep.saturating_sub(f.buf.len());
        f.buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if f.ty == frame_type::DATA && !f.skipped {
            if f.data.is_none() && !chunk.is_empty() {
                // The first payload byte of a padded DATA frame is the pad length.
                let pad = usize::from(chunk[0]);
                if pad + 1 > f.len {
                    f.skipped = true;
                    let (stream, len) = (f.stream, f.len);
                    out.push(Http2Event::Anomaly(Anomaly::new(
                        "h2-bad-padding",
                        format!(
                            "DATA frame on stream {stream}: padding {pad} in a {len}-byte frame"
                        ),
                    )));
                } else {
                    f.data = Some((1, f.len - pad));
                }
            }
            if let (Some((start, end)), false) = (f.data, f.skipped) {
                let from = start.max(at);
                let to = end.min(at + chunk.len());
                if from < to {
                    let stream = f.stream;
                    let piece = &chunk[from - at..to - at];
                    self.body(client, stream, piece, capture_frame, out);
                }
            }
        }
        let dir = self.dir(client);
        let complete = dir.frame.as_ref().is_some_and(|f| f.got >= f.len);
        if complete {
            dir.phase = Phase::Header;
            if let Some(f) = dir.frame.take() {
                self.end_frame(client, f, capture_frame, out);
            }
        }
    }

    /// DATA bytes for a stream.
    fn body(
        &mut self,
        client: bool,
        stream: u32,
        piece: &[u8],
        capture_frame: u64,
        out: &mut Vec<Http2Event>,
    ) {
        let max = self.limits.max_body_bytes;
        let budget = self.limits.max_held_bytes.saturating_sub(self.held);
        let table_room = self.table.room();
        let ts = self.dir(client).frame_start.0;
        let Some(s) = self.streams.get_mut(&stream) else {
            return;
        };
        if let Some(ws) = s.ws.as_mut() {
            // WebSocket frames, not a body: the client's are read, the server's not.
            let m = if client {
                &mut s.request
            } else if let Some(r) = s.response.as_mut() {
                r.body_len = r.body_len.saturating_add(piece.len() as u64);
                r.meta.last_frame = capture_frame;
                return;
            } else {
                return;
            };
            m.body_len = m.body_len.saturating_add(piece.len() as u64);
            m.meta.last_frame = capture_frame;
            let mut found = Vec::new();
            ws.push(piece, ts, capture_frame, &mut found);
            Self::websocket_events(stream, found, out);
            return;
        }
        let (msg, tail) = if client {
            if s.client_done {
                return;
            }
            (Some(MsgMut::request(&mut s.request)), Some(&mut s.tail))
        } else {
            (s.response.as_mut().map(MsgMut::response), None)
        };
        let Some(m) = msg else {
            // DATA before the response's HEADERS: nothing to attach it to (reported
            // once per frame, by `end_frame`).
            return;
        };
        *m.last_frame = capture_frame;
        *m.body_len = m.body_len.saturating_add(piece.len() as u64);
        let cut = message_budget::cut_for_memory(m.anomalies, "h2-body-budget");
        let room = if cut {
            0
        } else {
            max.saturating_sub(m.body.len())
        };
        let take = piece.len().min(room).min(budget).min(table_room);
        if m.body.is_empty() && take > 0 {
            // Ahead of what came, in proportion to it: a flood of one-byte DATA
            // frames on many streams must not reserve much.
            m.body.reserve(
                room.min(BODY_RESERVE_CAP)
                    .min(take.saturating_mul(BODY_RESERVE_FACTOR)),
            );
        }
        m.body.extend_from_slice(&piece[..take]);
        self.held += take;
        self.table.sync(self.held);
        if take < piece.len() && !cut {
            *m.truncated = true;
            let (kind, detail) = if take == room {
                (
                    "body-size-limit",
                    format!("body larger than {max} bytes; the rest was not kept"),
                )
            } else if take == budget {
                (
                    "h2-body-budget",
                    format!(
                        "open streams hold {} body bytes; the rest of this body was not kept",
                        self.limits.max_held_bytes
                    ),
                )
            } else {
                (
                    message_budget::ANOMALY,
                    self.table.cut_detail("body not kept past this point"),
                )
            };
            if !m.anomalies.iter().any(|a| a.kind == kind) {
                m.anomalies.push(Anomaly::new(kind, detail));
            }
            // A request body full to the cap: the rest goes to the tail search.
            if let (true, Some(tail), Some(search)) = (take == room, tail, &self.tail_search) {
                let rest = &piece[take..];
                let at = m.body_len.saturating_sub(rest.len() as u64);
                tail.get_or_insert_with(|| {
                    let content_encoding = tail_search::content_encoding(m.request_headers);
                    search.start_at(TailStart {
                        before: m.body,
                        at,
                        content_encoding: content_encoding.as_deref(),
                    })
                })
                .feed(rest);
            }
        }
    }

    /// A whole frame was read.
    fn end_frame(&mut self, client: bool, f: Frame, capture_frame: u64, out: &mut Vec<Http2Event>) {
        use frame_type::*;
        let open_block = self.dir(client).block.is_some();
        if open_block && f.ty != CONTINUATION {
            // Only CONTINUATION may follow a header block without END_HEADERS.
            out.push(Http2Event::Anomaly(Anomaly::new(
                "h2-protocol",
                format!(
                    "{} frame of type {} inside a header block",
                    side(client),
                    f.ty
                ),
            )));
            if let Some(mut b) = self.dir(client).block.take() {
                b.lost = true;
                self.end_block(client, b, capture_frame, out);
            }
        }
        let unanswered = || {
            self.streams
                .get(&f.stream)
                .is_some_and(|s| s.response.is_none())
        };
        if f.ty == DATA && !client && f.len > 0 && unanswered() {
            out.push(Http2Event::Anomaly(Anomaly::new(
                "h2-data-before-headers",
                format!("server DATA on stream {} before its HEADERS", f.stream),
            )));
        }
        if f.skipped && f.ty == DATA {
            // Its bytes are not read, but its framing (and END_STREAM) is known.
            self.mark_truncated(client, f.stream);
        } else if f.skipped && !matches!(f.ty, HEADERS | PUSH_PROMISE | CONTINUATION) {
            return;
        }
        match f.ty {
            DATA if f.flags & flags::END_STREAM != 0 => {
                self.end_stream(client, f.stream, capture_frame, out);
            }
            HEADERS | PUSH_PROMISE => self.block_start(client, f, capture_frame, out),
            CONTINUATION => self.continuation(client, f, capture_frame, out),
            RST_STREAM => {
                if let Some(code) = u32_at(&f.buf, 0) {
                    if self.streams.contains_key(&f.stream) {
                        self.emit(
                            f.stream,
                            Some(Early::Reset {
                                by_client: client,
                                code,
                            }),
                            out,
                        );
                    }
                }
            }
            SETTINGS if f.flags & flags::ACK == 0 => self.settings(client, &f.buf),
            GOAWAY => self.goaway(client, &f.buf, out),
            _ => {}
        }
    }

    /// The message one side sends on `stream` lost bytes (already reported).
    fn mark_truncated(&mut self, client: bool, stream: u32) {
        if let Some(s) = self.streams.get_mut(&stream) {
            if client {
                s.request.truncated = true;
            } else if let Some(r) = &mut s.response {
                r.truncated = true;
            }
        }
    }

    /// Applies a SETTINGS payload sent by one side.
    fn settings(&mut self, client: bool, payload: &[u8]) {
        for s in payload.chunks_exact(6) {
            let id = u16::from_be_bytes([s[0], s[1]]);
            let value = u32::from_be_bytes([s[2], s[3], s[4], s[5]]);
            if id == SETTINGS_HEADER_TABLE_SIZE {
                // The sender's decoder may hold this much: it bounds the table of the
                // blocks the *other* side sends.
                self.dir(!client).hpack.announce_table_size(value);
            }
        }
    }

    fn goaway(&mut self, client: bool, payload: &[u8], out: &mut Vec<Http2Event>) {
        let (Some(last), Some(code)) = (u32_at(payload, 0), u32_at(payload, 4)) else {
            return;
        };
        let last = last & 0x7fff_ffff;
        if code != 0 {
            out.push(Http2Event::Anomaly(Anomaly::new(
                "h2-goaway",
                format!(
                    "{} sent GOAWAY with error {}",
                    side(client),
                    error_name(code)
                ),
            )));
        }
        // Streams the receiver of the GOAWAY opened past `last` will not be processed:
        // client-opened (odd) streams when the server sends it, pushed (even) ones when
        // the client does.
        let parity = if client { 0 } else { 1 };
        let ids: Vec<u32> = self
            .streams
            .range(last.saturating_add(1)..)
            .map(|(&id, _)| id)
            .filter(|id| id % 2 == parity)
            .collect();
        for id in ids {
            self.emit(id, Some(Early::GoAway), out);
        }
    }

    /// A HEADERS or PUSH_PROMISE frame: starts a header block.
    fn block_start(
        &mut self,
        client: bool,
        f: Frame,
        capture_frame: u64,
        out: &mut Vec<Http2Event>,
    ) {
        let start = self.dir(client).frame_start;
        let push = f.ty == frame_type::PUSH_PROMISE;
        // Payload: [pad length] [priority (5) | promised stream (4)] fragment [padding].
        let mut lost = f.skipped;
        let mut off = 0usize;
        let mut pad = 0usize;
        if !lost && f.flags & flags::PADDED != 0 {
            pad = f.buf.first().map_or(usize::MAX, |&p| usize::from(p));
            off = 1;
        }
        let mut promised = 0;
        if push {
            promised = u32_at(&f.buf, off).map_or(0, |p| p & 0x7fff_ffff);
            off += 4;
        } else if f.flags & flags::PRIORITY != 0 {
            off += 5;
        }
        let fragment = if lost {
            &[][..]
        } else {
            match f
                .buf
                .len()
                .checked_sub(pad)
                .and_then(|end| f.buf.get(off..end))
            {
                Some(frag) => frag,
                None => {
                    lost = true;
                    out.push(Http2Event::Anomaly(Anomaly::new(
                        "h2-bad-padding",
                        format!(
                            "{} header frame on stream {}: padding or priority longer than the frame",
                            side(client),
                            f.stream
                        ),
                    )));
                    &[][..]
                }
            }
        };
        if f.skipped {
            out.push(Http2Event::Anomaly(Anomaly::new(
                "h2-header-block-too-large",
                format!(
                    "{} header block on stream {} larger than {} bytes",
                    side(client),
                    f.stream,
                    self.limits.max_header_list_bytes
                ),
            )));
        }
        let kind = if push {
            BlockKind::Push { promised }
        } else {
            BlockKind::Headers {
                end_stream: f.flags & flags::END_STREAM != 0,
            }
        };
        let block = Block {
            stream: f.stream,
            kind,
            buf: fragment.to_vec(),
            lost,
            start,
        };
        if f.flags & flags::END_HEADERS != 0 {
            self.end_block(client, block, capture_frame, out);
        } else {
            self.dir(client).block = Some(block);
        }
    }

    fn continuation(
        &mut self,
        client: bool,
        f: Frame,
        capture_frame: u64,
        out: &mut Vec<Http2Event>,
    ) {
        let max = self.limits.max_header_list_bytes;
        let dir = self.dir(client);
        let Some(mut block) = dir.block.take() else {
            out.push(Http2Event::Anomaly(Anomaly::new(
                "h2-protocol",
                format!("{} CONTINUATION without a header block", side(client)),
            )));
            // Its fragment is lost, and with it the HPACK state.
            self.hpack_lost(client, out);
            return;
        };
        if block.stream != f.stream {
            out.push(Http2Event::Anomaly(Anomaly::new(
                "h2-protocol",
                format!(
                    "{} CONTINUATION for stream {} inside the block of stream {}",
                    side(client),
                    f.stream,
                    block.stream
                ),
            )));
            block.lost = true;
        }
        if f.skipped || block.buf.len() + f.buf.len() > max {
            if !block.lost {
                out.push(Http2Event::Anomaly(Anomaly::new(
                    "h2-header-block-too-large",
                    format!(
                        "{} header block on stream {} larger than {max} bytes",
                        side(client),
                        block.stream
                    ),
                )));
            }
            block.lost = true;
            block.buf = Vec::new();
        }
        if !block.lost {
            block.buf.extend_from_slice(&f.buf);
        }
        if f.flags & flags::END_HEADERS != 0 {
            self.end_block(client, block, capture_frame, out);
        } else {
            self.dir(client).block = Some(block);
        }
    }

    fn hpack_lost(&mut self, client: bool, out: &mut Vec<Http2Event>) {
        let dir = self.dir(client);
        if !dir.hpack_broken {
            dir.hpack_broken = true;
            out.push(Http2Event::Anomaly(Anomaly::new(
                "h2-hpack-error",
                format!(
                    "{} header compression state lost: later {} headers cannot be read",
                    side(client),
                    side(client)
                ),
            )));
        }
    }

    /// A complete header block: decode it and apply it to its stream.
    fn end_block(
        &mut self,
        client: bool,
        block: Block,
        capture_frame: u64,
        out: &mut Vec<Http2Event>,
    ) {
        let max_list = self.limits.max_header_list_bytes;
        let mut headers = Vec::new();
        let mut anomalies = Vec::new();
        if block.lost {
            self.hpack_lost(client, out);
        }
        let dir = self.dir(client);
        if dir.hpack_broken {
            anomalies.push(Anomaly::new(
                "h2-headers-lost",
                "header block not readable: the connection's header compression state was lost",
            ));
        } else {
            match dir.hpack.decode(&block.buf, max_list, &mut headers) {
                Ok(info) => {
                    if info.truncated {
                        anomalies.push(Anomaly::new(
                            "h2-header-list-limit",
                            format!("header fields past {max_list} bytes dropped"),
                        ));
                    }
                }
                Err(e) => {
                    out.push(Http2Event::Anomaly(Anomaly::new(
                        "h2-hpack-error",
                        format!(
                            "{} header block on stream {}: {e}",
                            side(client),
                            block.stream
                        ),
                    )));
                    dir.hpack_broken = true;
                    headers.clear();
                    anomalies.push(Anomaly::new(
                        "h2-headers-lost",
                        format!("header block not readable: {e}"),
                    ));
                }
            }
        }
        let meta = MessageMeta {
            ts: block.start.0,
            first_frame: block.start.1,
            last_frame: capture_frame,
        };
        match block.kind {
            BlockKind::Push { promised } => {
                if client || promised == 0 || promised % 2 == 1 {
                    out.push(Http2Event::Anomaly(Anomaly::new(
                        "h2-protocol",
                        format!("invalid PUSH_PROMISE of stream {promised}"),
                    )));
                    return;
                }
                let request = request_from(headers, anomalies, meta, VERSION);
                self.open(false, promised, request, true, out);
            }
            BlockKind::Headers { end_stream } => {
                let id = block.stream;
                if id == 0 {
                    out.push(Http2Event::Anomaly(Anomaly::new(
                        "h2-protocol",
                        format!("{} HEADERS on stream 0", side(client)),
                    )));
                    return;
                }
                if client {
                    if self.streams.contains_key(&id) {
                        let (headers, anomalies) = self.hold_headers(headers, anomalies);
                        if let Some(s) = self.streams.get_mut(&id).filter(|s| !s.client_done) {
                            s.request.headers.extend(as_trailer(headers));
                            s.request.anomalies.extend(anomalies);
                            s.request.meta.last_frame = capture_frame;
                        }
                    } else {
                        let request = request_from(headers, anomalies, meta, VERSION);
                        self.open(true, id, request, false, out);
                    }
                } else if self.streams.contains_key(&id) {
                    let status = status_of(&headers);
                    let interim = (100..200).contains(&status) && !end_stream;
                    let answered = self.streams.get(&id).is_some_and(|s| s.response.is_some());
                    if interim && !answered {
                        // Interim (100 Continue, 103 Early Hints): not the answer.
                        return;
                    }
                    let (headers, anomalies) = self.hold_headers(headers, anomalies);
                    let Some(s) = self.streams.get_mut(&id) else {
                        return;
                    };
                    match &mut s.response {
                        Some(r) => {
                            r.headers.extend(as_trailer(headers));
                            r.anomalies.extend(anomalies);
                            r.meta.last_frame = capture_frame;
                        }
                        None => {
                            let mut r = response_from(headers, anomalies, meta, VERSION);
                            r.status = status;
                            s.response = Some(r);
                        }
                    }
                }
                if end_stream {
                    self.end_stream(client, id, capture_frame, out);
                }
            }
        }
    }

    /// Header fields of an open stream, kept within the connection's budget (counted
    /// in `held`); beyond it none are kept.
    fn hold_headers(
        &mut self,
        headers: Vec<Header>,
        mut anomalies: Vec<Anomaly>,
    ) -> (Vec<Header>, Vec<Anomaly>) {
        let size = header_bytes(&headers);
        match self.may_hold(size) {
            (true, true) => {}
            (false, _) => {
                anomalies.push(Anomaly::new(
                    "h2-held-limit",
                    format!(
                        "open streams hold {} bytes of headers and bodies; these header fields were not kept",
                        self.limits.max_held_bytes
                    ),
                ));
                return (Vec::new(), anomalies);
            }
            (true, false) => {
                anomalies.push(Anomaly::new(
                    message_budget::ANOMALY,
                    self.table.cut_detail("these header fields were not kept"),
                ));
                return (Vec::new(), anomalies);
            }
        }
        self.add_held(size);
        (headers, anomalies)
    }

    /// Opens a stream, within the limits on open streams and held bytes.
    fn open(
        &mut self,
        client: bool,
        id: u32,
        request: HttpRequest,
        client_done: bool,
        out: &mut Vec<Http2Event>,
    ) {
        let dir = self.dir(client);
        if id <= dir.max_opened {
            // A closed stream (or one we never tracked) cannot be opened again.
            return;
        }
        dir.max_opened = id;
        let size = header_bytes(&request.headers) + request.body.len();
        let (conn_room, table_room) = self.may_hold(size);
        if !(conn_room && table_room) {
            if !self.held_limit_reported {
                self.held_limit_reported = true;
                let anomaly = if conn_room {
                    Anomaly::new(
                        message_budget::ANOMALY,
                        self.table.cut_detail("further streams are not tracked"),
                    )
                } else {
                    Anomaly::new(
                        "h2-held-limit",
                        format!(
                            "open streams hold {} bytes of headers and bodies; further streams are not tracked",
                            self.limits.max_held_bytes
                        ),
                    )
                };
                out.push(Http2Event::Anomaly(anomaly));
            }
            return;
        }
        if self.streams.len() >= self.limits.max_streams_open {
            if !self.too_many_reported {
                self.too_many_reported = true;
                out.push(Http2Event::Anomaly(Anomaly::new(
                    "h2-too-many-streams",
                    format!(
                        "more than {} streams open at once; further streams are not tracked",
                        self.limits.max_streams_open
                    ),
                )));
            }
            return;
        }
        self.add_held(size);
        let ws = self.websocket_of(&request, out);
        self.streams.insert(
            id,
            Stream {
                request,
                response: None,
                client_done,
                server_done: false,
                ws,
                tail: None,
            },
        );
    }

    /// A reader for the WebSocket `request` opens (RFC 8441), within
    /// [`MAX_WS_STREAMS`] at once.
    fn websocket_of(
        &mut self,
        request: &HttpRequest,
        out: &mut Vec<Http2Event>,
    ) -> Option<Box<ClientWebSocket>> {
        let upgrade = WsUpgrade::of_extended_connect(request)?;
        if self.streams.values().filter(|s| s.ws.is_some()).count() >= MAX_WS_STREAMS {
            out.push(Http2Event::Anomaly(Anomaly::new(
                "h2-websocket-limit",
                format!("more than {MAX_WS_STREAMS} WebSocket streams at once; this one is read as a plain stream"),
            )));
            return None;
        }
        let limits = WsLimits {
            max_message_bytes: self.limits.max_body_bytes,
            max_inflated_bytes: self.limits.max_body_bytes.saturating_mul(4),
        };
        Some(Box::new(
            ClientWebSocket::new(upgrade, limits, self.table.sibling())
                .with_tail_search(self.tail_search.clone()),
        ))
    }

    /// Hands out what a WebSocket stream's reader found.
    fn websocket_events(id: u32, found: Vec<WsOutput>, out: &mut Vec<Http2Event>) {
        for output in found {
            out.push(match output {
                WsOutput::Request(request) => Http2Event::WebSocket {
                    stream_id: id,
                    request,
                },
                WsOutput::Anomaly(a) => Http2Event::Anomaly(a),
            });
        }
    }

    fn end_stream(&mut self, client: bool, id: u32, capture_frame: u64, out: &mut Vec<Http2Event>) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        if client {
            s.client_done = true;
            s.request.meta.last_frame = s.request.meta.last_frame.max(capture_frame);
        } else if let Some(r) = &mut s.response {
            s.server_done = true;
            r.meta.last_frame = r.meta.last_frame.max(capture_frame);
        }
        self.check_done(id, out);
    }

    /// Hands a stream out when neither side has more to say.
    fn check_done(&mut self, id: u32, out: &mut Vec<Http2Event>) {
        let client_stopped = self.client.phase == Phase::Stopped;
        let server_stopped = self.server.phase == Phase::Stopped;
        let Some(s) = self.streams.get(&id) else {
            return;
        };
        if (s.client_done || client_stopped) && (s.server_done || server_stopped) {
            let normal = s.client_done && s.server_done;
            self.emit(id, (!normal).then_some(Early::Close), out);
        }
    }

    fn emit(&mut self, id: u32, early: Option<Early>, out: &mut Vec<Http2Event>) {
        let Some(mut s) = self.streams.remove(&id) else {
            return;
        };
        if let Some(ws) = s.ws.as_mut() {
            let mut found = Vec::new();
            ws.close(&mut found);
            Self::websocket_events(id, found, out);
        }
        if let Some(tail) = s.tail.take() {
            s.request.beyond_cap = tail_search::finish(tail, &mut s.request.anomalies);
        }
        let kept = s.request.body.len()
            + header_bytes(&s.request.headers)
            + s.response
                .as_ref()
                .map_or(0, |r| r.body.len() + header_bytes(&r.headers));
        self.held = self.held.saturating_sub(kept);
        self.table.sync(self.held);
        if let Some(Early::Reset { by_client, code }) = early {
            let a = Anomaly::new(
                "h2-stream-reset",
                format!(
                    "stream {id} reset by the {} ({})",
                    side(by_client),
                    error_name(code)
                ),
            );
            match &mut s.response {
                Some(r) => r.anomalies.push(a),
                None => s.request.anomalies.push(a),
            }
        }
        if early.is_some() {
            let why = match early {
                Some(Early::GoAway) => "GOAWAY: the stream was not processed",
                Some(Early::Reset { .. }) => "stream reset",
                _ => "connection ended",
            };
            if !s.client_done {
                truncate(&mut s.request.truncated, &mut s.request.anomalies, why);
            }
            if let Some(r) = &mut s.response {
                if !s.server_done {
                    truncate(&mut r.truncated, &mut r.anomalies, why);
                }
            }
        }
        out.push(Http2Event::Exchange {
            stream_id: id,
            request: s.request,
            response: s.response,
        });
    }
}

fn truncate(flag: &mut bool, anomalies: &mut Vec<Anomaly>, why: &str) {
    *flag = true;
    if !anomalies.iter().any(|a| a.kind == "h2-truncated") {
        anomalies.push(Anomaly::new(
            "h2-truncated",
            format!("message incomplete: {why}"),
        ));
    }
}

/// The body-related fields of a request or a response.
struct MsgMut<'a> {
    /// A request's headers (a response's: none), for its tail search's start.
    request_headers: &'a [Header],
    body: &'a mut Vec<u8>,
    body_len: &'a mut u64,
    truncated: &'a mut bool,
    anomalies: &'a mut Vec<Anomaly>,
    last_frame: &'a mut u64,
}

impl<'a> MsgMut<'a> {
    fn request(r: &'a mut HttpRequest) -> Self {
        MsgMut {
            request_headers: &r.headers,
            body: &mut r.body,
            body_len: &mut r.body_len,
            truncated: &mut r.truncated,
            anomalies: &mut r.anomalies,
            last_frame: &mut r.meta.last_frame,
        }
    }

    fn response(r: &'a mut HttpResponse) -> Self {
        MsgMut {
            request_headers: &[],
            body: &mut r.body,
            body_len: &mut r.body_len,
            truncated: &mut r.truncated,
            anomalies: &mut r.anomalies,
            last_frame: &mut r.meta.last_frame,
        }
    }
}

/// A second header block on a stream (trailers): its fields marked as trailer
/// fields, to be appended to the message's (HTTP/3's parser too).
pub(crate) fn as_trailer(headers: Vec<Header>) -> impl Iterator<Item = Header> {
    headers.into_iter().map(|h| Header { trailer: true, ..h })
}

/// What a header list costs to hold (names and values).
fn header_bytes(headers: &[Header]) -> usize {
    headers.iter().map(|h| h.name.len() + h.value.len()).sum()
}

/// The value of the first field called `name` (pseudo-headers included) in the head
/// (trailer fields are not read: see [`Header::trailer`]).
pub(crate) fn value<'h>(headers: &'h [Header], name: &str) -> Option<&'h [u8]> {
    headers
        .iter()
        .find(|h| !h.trailer && h.name == name)
        .map(|h| h.value.as_slice())
}

fn text(v: Option<&[u8]>) -> String {
    v.map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

/// A request from its header fields, as HTTP/2 and HTTP/3 (`version`) carry them:
/// `method` from `:method`, `target` from `:path`; the body is the caller's to add.
pub(crate) fn request_from(
    headers: Vec<Header>,
    anomalies: Vec<Anomaly>,
    meta: MessageMeta,
    version: &str,
) -> HttpRequest {
    let method = text(value(&headers, ":method"));
    // CONNECT carries no :path; its target is the authority, as in HTTP/1.
    let target = text(value(&headers, ":path").or_else(|| value(&headers, ":authority")));
    HttpRequest {
        method,
        target,
        version: version.to_string(),
        headers,
        body: Vec::new(),
        body_len: 0,
        truncated: false,
        meta,
        anomalies,
        beyond_cap: Vec::new(),
    }
}

fn status_of(headers: &[Header]) -> u16 {
    value(headers, ":status")
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A response from its header fields (status from `:status`, 0 when missing or
/// bad), as HTTP/2 and HTTP/3 (`version`) carry them; the body is the caller's to add.
pub(crate) fn response_from(
    headers: Vec<Header>,
    anomalies: Vec<Anomaly>,
    meta: MessageMeta,
    version: &str,
) -> HttpResponse {
    HttpResponse {
        status: status_of(&headers),
        reason: String::new(),
        version: version.to_string(),
        headers,
        body: Vec::new(),
        body_len: 0,
        truncated: false,
        meta,
        anomalies,
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn side(client: bool) -> &'static str {
    if client {
        "client"
    } else {
        "server"
    }
}

/// RFC 9113 §7 error code names.
fn error_name(code: u32) -> String {
    const NAMES: [&str; 14] = [
        "NO_ERROR",
        "PROTOCOL_ERROR",
        "INTERNAL_ERROR",
        "FLOW_CONTROL_ERROR",
        "SETTINGS_TIMEOUT",
        "STREAM_CLOSED",
        "FRAME_SIZE_ERROR",
        "REFUSED_STREAM",
        "CANCEL",
        "COMPRESSION_ERROR",
        "CONNECT_ERROR",
        "ENHANCE_YOUR_CALM",
        "INADEQUATE_SECURITY",
        "HTTP_1_1_REQUIRED",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|i| NAMES.get(i))
        .map_or_else(|| format!("error 0x{code:x}"), |n| (*n).to_string())
}

/// Frame builders for tests, benchmarks and capture generators (we never send HTTP/2).
pub mod build {
    /// One frame: 9-byte header and payload.
    pub fn frame(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut f = Vec::with_capacity(9 + payload.len());
        f.extend_from_slice(&len.to_be_bytes()[1..]);
        f.push(ty);
        f.push(flags);
        f.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// A header block of literal fields without indexing (plain strings).
    pub fn block(fields: &[(&str, &str)]) -> Vec<u8> {
        let mut b = Vec::new();
        for (n, v) in fields {
            crate::net::hpack::encode::literal(
                &mut b,
                n.as_bytes(),
                v.as_bytes(),
                crate::net::hpack::encode::Indexing::Without,
                false,
            );
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::build::{block, frame};
    use super::flags::{ACK, END_HEADERS, END_STREAM, PADDED};
    use super::frame_type::*;
    use super::*;
    use crate::net::hpack::encode::{self, Indexing};
    use proptest::prelude::*;

    const TS: Timestamp = Timestamp::from_micros(1_000);

    fn limits() -> Http2Limits {
        Http2Limits::default()
    }

    fn run_split(
        lim: Http2Limits,
        client: &[u8],
        ccuts: &[usize],
        server: &[u8],
        scuts: &[usize],
    ) -> Vec<Http2Event> {
        let mut conn = Http2Conn::new(lim);
        let mut out = Vec::new();
        for (data, cuts, is_client) in [(client, ccuts, true), (server, scuts, false)] {
            let mut prev = 0;
            for &c in cuts.iter().chain(std::iter::once(&data.len())) {
                let piece = &data[prev..c.max(prev)];
                if is_client {
                    conn.client_data(piece, TS, 1, &mut out);
                } else {
                    conn.server_data(piece, TS, 1, &mut out);
                }
                prev = c.max(prev);
            }
        }
        conn.close(&mut out);
        out
    }

    fn run(client: &[u8], server: &[u8]) -> Vec<Http2Event> {
        run_split(limits(), client, &[], server, &[])
    }

    type Ex<'a> = (u32, &'a HttpRequest, Option<&'a HttpResponse>);

    fn exchanges(ev: &[Http2Event]) -> Vec<Ex<'_>> {
        ev.iter()
            .filter_map(|e| match e {
                Http2Event::Exchange {
                    stream_id,
                    request,
                    response,
                } => Some((*stream_id, request, response.as_ref())),
                _ => None,
            })
            .collect()
    }

    fn kinds(ev: &[Http2Event]) -> Vec<String> {
        let mut k = Vec::new();
        for e in ev {
            match e {
                Http2Event::Anomaly(a) => k.push(a.kind.clone()),
                Http2Event::Exchange {
                    request, response, ..
                } => {
                    k.extend(request.anomalies.iter().map(|a| a.kind.clone()));
                    if let Some(r) = response {
                        k.extend(r.anomalies.iter().map(|a| a.kind.clone()));
                    }
                }
                Http2Event::WebSocket { request, .. } => {
                    k.extend(request.anomalies.iter().map(|a| a.kind.clone()));
                }
            }
        }
        k
    }

    fn names(h: &[Header]) -> Vec<(&str, String)> {
        h.iter()
            .map(|h| (&*h.name, String::from_utf8_lossy(&h.value).into_owned()))
            .collect()
    }

    fn settings(pairs: &[(u16, u32)]) -> Vec<u8> {
        let mut p = Vec::new();
        for (id, v) in pairs {
            p.extend_from_slice(&id.to_be_bytes());
            p.extend_from_slice(&v.to_be_bytes());
        }
        frame(SETTINGS, 0, 0, &p)
    }

    fn padded(pad: u8, body: &[u8]) -> Vec<u8> {
        let mut p = vec![pad];
        p.extend_from_slice(body);
        p.extend(std::iter::repeat_n(0, usize::from(pad)));
        p
    }

    /// A client touching every frame type: Huffman and indexed headers, padding,
    /// priority, CONTINUATION, multiplexed DATA, trailers, PING, WINDOW_UPDATE,
    /// PRIORITY, an unknown frame type.
    fn client_bytes() -> Vec<u8> {
        let mut c = H2_PREFACE.to_vec();
        c.extend(settings(&[(1, 8192), (4, 65535)]));
        c.extend(frame(WINDOW_UPDATE, 0, 0, &[0, 0x0f, 0, 1]));
        // Stream 1: GET, Huffman, :authority and user-agent indexed into the table.
        let mut b = Vec::new();
        encode::indexed(&mut b, 2);
        encode::indexed(&mut b, 7);
        encode::literal_with_name_index(&mut b, 1, b"api.example.com", Indexing::Incremental, true);
        encode::literal_with_name_index(&mut b, 4, b"/a?id=1", Indexing::Without, true);
        encode::literal(
            &mut b,
            b"user-agent",
            b"app/1.0",
            Indexing::Incremental,
            true,
        );
        c.extend(frame(HEADERS, END_STREAM | END_HEADERS, 1, &b));
        // Stream 3: POST whose block is split over HEADERS (padded, priority) and a
        // CONTINUATION; body in two DATA frames, one padded.
        let mut b = Vec::new();
        encode::indexed(&mut b, 3);
        encode::indexed(&mut b, 7);
        encode::indexed(&mut b, 63); // :authority api.example.com
        encode::literal_with_name_index(&mut b, 4, b"/upload", Indexing::Without, false);
        encode::literal(
            &mut b,
            b"content-type",
            b"application/json",
            Indexing::Never,
            false,
        );
        let (first, rest) = b.split_at(5);
        let mut p = vec![3u8, 0x80, 0, 0, 1, 15];
        p.extend_from_slice(first);
        p.extend_from_slice(&[0, 0, 0]);
        c.extend(frame(HEADERS, PADDED | flags::PRIORITY, 3, &p));
        c.extend(frame(CONTINUATION, END_HEADERS, 3, rest));
        c.extend(frame(DATA, PADDED, 3, &padded(4, b"{\"imei\":")));
        c.extend(frame(frame_type::PRIORITY, 0, 3, &[0, 0, 0, 0, 9]));
        c.extend(frame(0xfa, 0xff, 3, b"unknown"));
        c.extend(frame(PING, 0, 0, &[1; 8]));
        c.extend(frame(DATA, END_STREAM, 3, b"\"490154203237518\"}"));
        // Stream 5: everything from the table (the user-agent entry too).
        let mut b = Vec::new();
        encode::indexed(&mut b, 2);
        encode::indexed(&mut b, 7);
        encode::indexed(&mut b, 63);
        encode::indexed(&mut b, 4);
        encode::indexed(&mut b, 62);
        c.extend(frame(HEADERS, END_STREAM | END_HEADERS, 5, &b));
        // Stream 7: body and trailers; the server resets it.
        c.extend(frame(
            HEADERS,
            END_HEADERS,
            7,
            &block(&[(":method", "PUT"), (":path", "/t"), (":authority", "x")]),
        ));
        c.extend(frame(DATA, 0, 7, b"abc"));
        c.extend(frame(
            HEADERS,
            END_STREAM | END_HEADERS,
            7,
            &block(&[("x-checksum", "1")]),
        ));
        c
    }

    fn server_bytes() -> Vec<u8> {
        let mut s = settings(&[(3, 100)]);
        s.extend(frame(SETTINGS, ACK, 0, &[]));
        s.extend(frame(
            HEADERS,
            END_HEADERS,
            3,
            &block(&[(":status", "100")]),
        ));
        let mut b = Vec::new();
        encode::indexed(&mut b, 8);
        encode::literal(
            &mut b,
            b"content-type",
            b"text/plain",
            Indexing::Incremental,
            true,
        );
        s.extend(frame(HEADERS, END_HEADERS, 1, &b));
        // A push promise on stream 1 for stream 2.
        let mut p = vec![0, 0, 0, 2];
        p.extend(block(&[
            (":method", "GET"),
            (":path", "/pushed.css"),
            (":authority", "api.example.com"),
            (":scheme", "https"),
        ]));
        s.extend(frame(PUSH_PROMISE, END_HEADERS, 1, &p));
        s.extend(frame(DATA, END_STREAM, 1, b"ok"));
        s.extend(frame(
            HEADERS,
            END_HEADERS,
            2,
            &block(&[(":status", "200")]),
        ));
        s.extend(frame(DATA, END_STREAM, 2, b"body{}"));
        let mut b = Vec::new();
        encode::literal_with_name_index(&mut b, 8, b"201", Indexing::Without, true);
        encode::indexed(&mut b, 62);
        s.extend(frame(HEADERS, END_HEADERS | END_STREAM, 3, &b));
        s.extend(frame(
            HEADERS,
            END_HEADERS | END_STREAM,
            5,
            &block(&[(":status", "204")]),
        ));
        s.extend(frame(RST_STREAM, 0, 7, &8u32.to_be_bytes()));
        s.extend(frame(
            GOAWAY,
            0,
            0,
            &[0, 0, 0, 7, 0, 0, 0, 0, b'b', b'y', b'e'],
        ));
        s
    }

    /// A masked client WebSocket frame (RFC 6455 §5.2), FIN set or not.
    fn ws_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let key = [9u8, 8, 7, 6];
        let mut f = vec![u8::from(fin) << 7 | opcode, 0x80 | payload.len() as u8];
        f.extend_from_slice(&key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        f
    }

    /// An extended CONNECT for a WebSocket (RFC 8441) on stream 1.
    fn ws_connect(stream: u32) -> Vec<u8> {
        frame(
            HEADERS,
            END_HEADERS,
            stream,
            &block(&[
                (":method", "CONNECT"),
                (":protocol", "websocket"),
                (":scheme", "https"),
                (":path", "/chat?room=1"),
                (":authority", "ws.tracker.example"),
                ("sec-websocket-version", "13"),
            ]),
        )
    }

    #[test]
    fn websocket_streams_give_each_client_message_then_the_connect() {
        let mut c = H2_PREFACE.to_vec();
        c.extend(frame(SETTINGS, 0, 0, &[]));
        c.extend(ws_connect(1));
        // A message in two WebSocket frames across two DATA frames (the second frame's
        // header split between them), a ping between, then a second message.
        let mut frames = ws_frame(false, 1, b"{\"oaid\":");
        frames.extend(ws_frame(true, 9, b""));
        frames.extend(ws_frame(true, 0, b"\"a1b2\"}"));
        frames.extend(ws_frame(true, 2, &[1, 2, 3]));
        let (a, b) = frames.split_at(frames.len() / 2 + 1);
        c.extend(frame(DATA, 0, 1, a));
        c.extend(frame(DATA, 0, 1, b));
        // A message cut by the stream's end.
        c.extend(frame(DATA, END_STREAM, 1, &ws_frame(false, 1, b"cut")));
        let mut s = frame(SETTINGS, 0, 0, &[0, 8, 0, 0, 0, 1]);
        s.extend(frame(
            HEADERS,
            END_HEADERS,
            1,
            &block(&[(":status", "200")]),
        ));
        s.extend(frame(DATA, END_STREAM, 1, &[0x81, 2, b'h', b'i']));
        let ev = run(&c, &s);
        let kinds: Vec<String> = ev
            .iter()
            .map(|e| match e {
                Http2Event::WebSocket { stream_id, request } => format!(
                    "ws {stream_id} {} {} {:?} {}",
                    request.method,
                    request.target,
                    String::from_utf8_lossy(&request.body),
                    request.truncated
                ),
                Http2Event::Exchange {
                    request, response, ..
                } => format!(
                    "exchange {} {} {} {}",
                    request.method,
                    request.body.len(),
                    request.body_len,
                    response.as_ref().map_or(0, |r| r.status)
                ),
                Http2Event::Anomaly(a) => format!("anomaly {}", a.kind),
            })
            .collect();
        let wire = (frames.len() + 9) as u64;
        assert_eq!(
            kinds,
            [
                "ws 1 WS /chat?room=1 \"{\\\"oaid\\\":\\\"a1b2\\\"}\" false".to_string(),
                "ws 1 WS /chat?room=1 \"\\u{1}\\u{2}\\u{3}\" false".into(),
                "ws 1 WS /chat?room=1 \"cut\" true".into(),
                format!("exchange CONNECT 0 {wire} 200"),
            ]
        );
        let Http2Event::WebSocket { request, .. } = &ev[0] else {
            unreachable!()
        };
        assert_eq!(
            crate::exchange::header(&request.headers, "host"),
            Some(&b"ws.tracker.example"[..])
        );
    }

    #[test]
    fn websocket_streams_at_once_are_bounded() {
        let mut c = H2_PREFACE.to_vec();
        for id in (1..).step_by(2).take(MAX_WS_STREAMS + 1) {
            c.extend(ws_connect(id));
        }
        let last = 2 * MAX_WS_STREAMS as u32 + 1;
        c.extend(frame(DATA, 0, last, &ws_frame(true, 1, b"plain")));
        let mut conn = Http2Conn::new(limits());
        let mut out = Vec::new();
        conn.client_data(&c, TS, 1, &mut out);
        let anomalies: Vec<&str> = out
            .iter()
            .filter_map(|e| match e {
                Http2Event::Anomaly(a) => Some(a.kind.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(anomalies, ["h2-websocket-limit"]);
        conn.close(&mut out);
        // The stream past the bound is a plain one: its frames are its body.
        let body = out.iter().find_map(|e| match e {
            Http2Event::Exchange {
                stream_id, request, ..
            } if *stream_id == last => Some(request.body.clone()),
            _ => None,
        });
        assert_eq!(body, Some(ws_frame(true, 1, b"plain")));
    }

    #[test]
    fn conversation() {
        let ev = run(&client_bytes(), &server_bytes());
        let ex = exchanges(&ev);
        let ids: Vec<u32> = ex.iter().map(|e| e.0).collect();
        assert_eq!(ids, [1, 2, 3, 5, 7]);
        let (_, r1, s1) = ex[0];
        assert_eq!(
            (r1.method.as_str(), r1.target.as_str(), r1.version.as_str()),
            ("GET", "/a?id=1", "HTTP/2")
        );
        assert_eq!(
            names(&r1.headers),
            [
                (":method", "GET".to_string()),
                (":scheme", "https".into()),
                (":authority", "api.example.com".into()),
                (":path", "/a?id=1".into()),
                ("user-agent", "app/1.0".into())
            ]
        );
        let s1 = s1.unwrap();
        assert_eq!((s1.status, s1.body.as_slice()), (200, &b"ok"[..]));
        assert_eq!(
            names(&s1.headers)[1],
            ("content-type", "text/plain".to_string())
        );
        let (_, r2, s2) = ex[1];
        assert_eq!(
            (r2.method.as_str(), r2.target.as_str()),
            ("GET", "/pushed.css")
        );
        assert_eq!(s2.unwrap().body, b"body{}");
        let (_, r3, s3) = ex[2];
        assert_eq!(
            (r3.method.as_str(), r3.target.as_str()),
            ("POST", "/upload")
        );
        assert_eq!(r3.body, b"{\"imei\":\"490154203237518\"}");
        assert_eq!(r3.body_len, r3.body.len() as u64);
        assert_eq!(
            names(&r3.headers)[2],
            (":authority", "api.example.com".to_string())
        );
        assert_eq!(
            names(&r3.headers)[4],
            ("content-type", "application/json".to_string())
        );
        let s3 = s3.unwrap();
        assert_eq!(s3.status, 201);
        // The server's own table: its content-type entry.
        assert_eq!(
            names(&s3.headers)[1],
            ("content-type", "text/plain".to_string())
        );
        let (_, r5, s5) = ex[3];
        assert_eq!(names(&r5.headers)[4], ("user-agent", "app/1.0".to_string()));
        assert_eq!(s5.unwrap().status, 204);
        let (_, r7, s7) = ex[4];
        assert!(s7.is_none());
        assert_eq!(r7.body, b"abc");
        assert_eq!(names(&r7.headers)[3], ("x-checksum", "1".to_string()));
        // Marked as a trailer field: the head's fields are the ones acted on.
        assert_eq!(
            r7.headers.iter().map(|h| h.trailer).collect::<Vec<_>>(),
            [false, false, false, true]
        );
        assert!(!r7.truncated, "the client had ended stream 7");
        assert!([r1, r2, r3, r5].iter().all(|r| !r.truncated));
        assert_eq!(kinds(&ev), ["h2-stream-reset"]);
    }

    /// STYLE.md #14: every split point, and byte by byte, gives the same events.
    #[test]
    fn split_at_every_offset() {
        let (c, s) = (client_bytes(), server_bytes());
        let whole = run(&c, &s);
        for at in 0..=c.len() {
            assert_eq!(
                run_split(limits(), &c, &[at], &s, &[]),
                whole,
                "client cut at {at}"
            );
        }
        for at in 0..=s.len() {
            assert_eq!(
                run_split(limits(), &c, &[], &s, &[at]),
                whole,
                "server cut at {at}"
            );
        }
        let cc: Vec<usize> = (0..c.len()).collect();
        let sc: Vec<usize> = (0..s.len()).collect();
        assert_eq!(run_split(limits(), &c, &cc, &s, &sc), whole, "byte by byte");
    }

    #[test]
    fn meta_names_the_frames_of_headers_and_data() {
        let mut conn = Http2Conn::new(limits());
        let mut out = Vec::new();
        let mut c = H2_PREFACE.to_vec();
        let h = frame(
            HEADERS,
            END_HEADERS,
            1,
            &block(&[(":method", "POST"), (":path", "/")]),
        );
        c.extend_from_slice(&h[..4]);
        conn.client_data(&c, Timestamp::from_micros(5), 10, &mut out);
        conn.client_data(&h[4..], Timestamp::from_micros(6), 11, &mut out);
        conn.client_data(
            &frame(DATA, END_STREAM, 1, b"x"),
            Timestamp::from_micros(7),
            12,
            &mut out,
        );
        conn.server_data(
            &frame(
                HEADERS,
                END_HEADERS | END_STREAM,
                1,
                &block(&[(":status", "200")]),
            ),
            Timestamp::from_micros(8),
            13,
            &mut out,
        );
        let ex = exchanges(&out);
        assert_eq!(
            ex[0].1.meta,
            MessageMeta {
                ts: Timestamp::from_micros(5),
                first_frame: 10,
                last_frame: 12
            }
        );
        assert_eq!(ex[0].2.unwrap().meta.first_frame, 13);
    }

    #[test]
    fn oversized_frames_are_skipped() {
        let lim = Http2Limits {
            max_frame_bytes: 100,
            ..limits()
        };
        let mut c = H2_PREFACE.to_vec();
        c.extend(frame(
            HEADERS,
            END_HEADERS,
            1,
            &block(&[(":method", "POST"), (":path", "/")]),
        ));
        c.extend(frame(DATA, 0, 1, &[b'x'; 150]));
        c.extend(frame(DATA, END_STREAM, 1, b"tail"));
        let ev = run_split(lim, &c, &[], &[], &[]);
        let ex = exchanges(&ev);
        assert_eq!(ex[0].1.body, b"tail");
        assert!(ex[0].1.truncated);
        assert_eq!(kinds(&ev), ["h2-frame-too-large"]);
        // A skipped frame's END_STREAM still ends the stream.
        let mut c = H2_PREFACE.to_vec();
        c.extend(frame(
            HEADERS,
            END_HEADERS,
            1,
            &block(&[(":method", "POST")]),
        ));
        c.extend(frame(DATA, END_STREAM, 1, &[b'x'; 150]));
        let mut conn = Http2Conn::new(Http2Limits {
            max_frame_bytes: 100,
            ..limits()
        });
        let mut out = Vec::new();
        conn.client_data(&c, TS, 1, &mut out);
        conn.server_data(
            &frame(
                HEADERS,
                END_HEADERS | END_STREAM,
                1,
                &block(&[(":status", "413")]),
            ),
            TS,
            2,
            &mut out,
        );
        assert_eq!(exchanges(&out).len(), 1, "complete before close");
    }

    #[test]
    fn continuation_flood_is_bounded_and_breaks_hpack() {
        let lim = Http2Limits {
            max_header_list_bytes: 1000,
            ..limits()
        };
        let mut c = H2_PREFACE.to_vec();
        c.extend(frame(HEADERS, 0, 1, &block(&[(":method", "GET")])));
        for _ in 0..200 {
            c.extend(frame(CONTINUATION, 0, 1, &[0x40; 100]));
        }
        c.extend(frame(CONTINUATION, END_HEADERS | 0x1, 1, &[]));
        c.extend(frame(DATA, END_STREAM, 1, b"d"));
        c.extend(frame(
            HEADERS,
            END_HEADERS | END_STREAM,
            3,
            &block(&[(":method", "GET")]),
        ));
        let mut conn = Http2Conn::new(lim);
        let mut out = Vec::new();
        conn.client_data(&c, TS, 1, &mut out);
        // Nothing of the flood is held.
        assert!(conn.client.block.as_ref().map_or(0, |b| b.buf.capacity()) <= 1000);
        conn.close(&mut out);
        let ex = exchanges(&out);
        assert_eq!(ex.len(), 2);
        assert_eq!(ex[0].1.method, "");
        assert_eq!(ex[0].1.body, b"d");
        assert_eq!(
            kinds(&out),
            [
                "h2-header-block-too-large",
                "h2-hpack-error",
                "h2-headers-lost",
                "h2-headers-lost"
            ]
        );
    }

    #[test]
    fn too_many_streams_are_not_tracked() {
        let lim = Http2Limits {
            max_streams_open: 2,
            ..limits()
        };
        let mut c = H2_PREFACE.to_vec();
        for id in [1u32, 3, 5, 7] {
            c.extend(frame(
                HEADERS,
                END_HEADERS,
                id,
                &block(&[(":method", "GET"), (":path", "/")]),
            ));
        }
        let ev = run_split(lim, &c, &[], &[], &[]);
        let ids: Vec<u32> = exchanges(&ev).iter().map(|e| e.0).collect();
        assert_eq!(ids, [1, 3]);
        assert_eq!(kinds(&ev)[0], "h2-too-many-streams");
    }

    #[test]
    fn bad_padding_and_bad_preface() {
        let mut c = H2_PREFACE.to_vec();
        c.extend(frame(
            HEADERS,
            END_HEADERS,
            1,
            &block(&[(":method", "GET")]),
        ));
        c.extend(frame(DATA, PADDED | END_STREAM, 1, &[9, b'a']));
        let ev = run(&c, &[]);
        assert_eq!(kinds(&ev), ["h2-bad-padding"]);
        assert!(exchanges(&ev)[0].1.truncated);
        let mut c = H2_PREFACE.to_vec();
        c.extend(frame(HEADERS, END_HEADERS | PADDED, 1, &[200, 0x82]));
        c.extend(frame(
            HEADERS,
            END_HEADERS | END_STREAM,
            3,
            &block(&[(":method", "GET")]),
        ));
        let ev = run(&c, &[]);
        assert_eq!(
            kinds(&ev),
            // Stream 1 never ended; stream 3 did, its request is complete.
            [
                "h2-bad-padding",
                "h2-hpack-error",
                "h2-headers-lost",
                "h2-truncated",
                "h2-headers-lost"
            ]
        );
        let ev = run(b"GET / HTTP/1.1\r\n\r\n", &[]);
        assert_eq!(kinds(&ev), ["h2-bad-preface"]);
        assert!(exchanges(&ev).is_empty());
    }

    #[test]
    fn hpack_error_loses_later_headers_but_not_data() {
        let mut c = H2_PREFACE.to_vec();
        c.extend(frame(HEADERS, END_HEADERS, 1, &[0xbe])); // index 62: empty table
        c.extend(frame(DATA, END_STREAM, 1, b"id=490154203237518"));
        let ev = run(&c, &[]);
        let ex = exchanges(&ev);
        assert_eq!(ex[0].1.body, b"id=490154203237518");
        assert_eq!(kinds(&ev), ["h2-hpack-error", "h2-headers-lost"]);
    }

    #[test]
    fn gap_stops_the_direction_and_completes_waiting_streams() {
        let mut conn = Http2Conn::new(limits());
        let mut out = Vec::new();
        let mut c = H2_PREFACE.to_vec();
        c.extend(frame(
            HEADERS,
            END_HEADERS,
            1,
            &block(&[(":method", "POST"), (":path", "/")]),
        ));
        c.extend(frame(DATA, 0, 1, b"part"));
        conn.client_data(&c, TS, 1, &mut out);
        conn.client_gap(100, &mut out);
        conn.client_data(&frame(DATA, END_STREAM, 1, b"more"), TS, 2, &mut out);
        conn.server_data(
            &frame(
                HEADERS,
                END_HEADERS | END_STREAM,
                1,
                &block(&[(":status", "200")]),
            ),
            TS,
            3,
            &mut out,
        );
        let ex = exchanges(&out);
        assert_eq!(ex.len(), 1, "emitted without waiting for close");
        assert_eq!(ex[0].1.body, b"part");
        assert!(ex[0].1.truncated);
        assert_eq!(ex[0].2.unwrap().status, 200);
        assert_eq!(kinds(&out), ["h2-gap", "h2-truncated"]);
    }

    #[test]
    fn close_hands_out_open_streams_truncated() {
        let mut c = H2_PREFACE.to_vec();
        c.extend(frame(
            HEADERS,
            END_HEADERS | END_STREAM,
            1,
            &block(&[(":method", "GET"), (":path", "/1")]),
        ));
        c.extend(frame(
            HEADERS,
            END_HEADERS | END_STREAM,
            3,
            &block(&[(":method", "GET"), (":path", "/3")]),
        ));
        // Stream ids only grow: an old id is not opened again.
        c.extend(frame(
            HEADERS,
            END_HEADERS | END_STREAM,
            1,
            &block(&[(":method", "GET"), (":path", "/again")]),
        ));
        let mut s = frame(HEADERS, END_HEADERS, 3, &block(&[(":status", "200")]));
        s.extend(frame(DATA, 0, 3, b"partial"));
        s.extend_from_slice(&frame(DATA, 0, 3, b"cut")[..5]);
        let ev = run(&c, &s);
        let ex = exchanges(&ev);
        // Stream 1 never answered; stream 3 half answered. Ids in order at close.
        assert_eq!(ex.iter().map(|e| e.0).collect::<Vec<_>>(), [1, 3]);
        assert!(ex[0].2.is_none());
        let r3 = ex[1].2.unwrap();
        assert_eq!(r3.body, b"partial");
        assert!(r3.truncated);
        assert_eq!(kinds(&ev), ["h2-truncated", "h2-truncated"]);
        assert_eq!(ex[0].1.target, "/1");
    }

    #[test]
    fn body_limits() {
        let lim = Http2Limits {
            max_body_bytes: 10,
            max_held_bytes: 15 + 2 * ":methodPOST:path/".len(),
            ..limits()
        };
        let mut c = H2_PREFACE.to_vec();
        for id in [1u32, 3] {
            c.extend(frame(
                HEADERS,
                END_HEADERS,
                id,
                &block(&[(":method", "POST"), (":path", "/")]),
            ));
            c.extend(frame(DATA, END_STREAM, id, &[b'x'; 12]));
        }
        let ev = run_split(lim, &c, &[], &[], &[]);
        let ex = exchanges(&ev);
        assert_eq!((ex[0].1.body.len(), ex[0].1.body_len), (10, 12));
        assert_eq!((ex[1].1.body.len(), ex[1].1.body_len), (5, 12));
        assert_eq!(kinds(&ev), ["body-size-limit", "h2-body-budget"]);
    }

    #[test]
    fn a_request_body_past_the_cap_is_fed_to_the_tail_search() {
        use crate::net::tail_search::testing::{recorded, recording};
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let lim = Http2Limits {
            max_body_bytes: 10,
            ..limits()
        };
        let mut c = H2_PREFACE.to_vec();
        c.extend(frame(
            HEADERS,
            END_HEADERS,
            1,
            &block(&[
                (":method", "POST"),
                (":path", "/up"),
                ("content-encoding", "br"),
            ]),
        ));
        c.extend(frame(DATA, 0, 1, b"abcdefgh"));
        c.extend(frame(DATA, 0, 1, b"ijklmnop"));
        c.extend(frame(DATA, END_STREAM, 1, b"qrstuvwxyz"));
        // A response body as long: never searched.
        let mut s = settings(&[]);
        s.extend(frame(
            HEADERS,
            END_HEADERS,
            1,
            &block(&[(":status", "200")]),
        ));
        s.extend(frame(DATA, END_STREAM, 1, &[b'r'; 30]));
        for cut in [0, c.len() - 20, c.len() - 5] {
            let starts = Arc::new(AtomicUsize::new(0));
            let mut conn = Http2Conn::new(lim.clone()).with_tail_search(Some(recording(&starts)));
            let mut out = Vec::new();
            conn.client_data(&c[..cut], TS, 1, &mut out);
            conn.client_data(&c[cut..], TS, 2, &mut out);
            conn.server_data(&s, TS, 3, &mut out);
            conn.close(&mut out);
            let ex = exchanges(&out);
            assert_eq!(ex.len(), 1);
            let request = ex[0].1;
            assert_eq!(request.body, b"abcdefghij");
            assert_eq!(
                recorded(request),
                ("abcdefghij".into(), 10, "klmnopqrstuvwxyz".into()),
                "cut at {cut}"
            );
            // The search is told the body's coding (and can decode its tail).
            assert_eq!(request.beyond_cap[0].encoding, "br");
            let limit = request
                .anomalies
                .iter()
                .find(|a| a.kind == "body-size-limit");
            assert!(
                limit.is_some_and(|a| a.detail.ends_with(
                    "were searched for the case's known values as they passed: 1 hit(s)"
                )),
                "{:?}",
                request.anomalies
            );
            assert_eq!(
                starts.load(Ordering::Relaxed),
                1,
                "the response is not searched"
            );
        }
    }

    #[test]
    fn held_headers_are_bounded_per_connection() {
        let lim = Http2Limits {
            max_held_bytes: 1000,
            ..limits()
        };
        let big = "v".repeat(400);
        let mut c = H2_PREFACE.to_vec();
        for id in [1u32, 3, 5] {
            c.extend(frame(
                HEADERS,
                END_HEADERS,
                id,
                &block(&[(":method", "GET"), ("x-big", &big)]),
            ));
        }
        let mut conn = Http2Conn::new(lim);
        let mut out = Vec::new();
        conn.client_data(&c, TS, 1, &mut out);
        assert!(conn.held <= 1000);
        conn.server_data(
            &frame(
                HEADERS,
                END_HEADERS,
                1,
                &block(&[(":status", "200"), ("x-big", &big)]),
            ),
            TS,
            2,
            &mut out,
        );
        assert!(conn.held <= 1000);
        conn.close(&mut out);
        let ex = exchanges(&out);
        assert_eq!(ex.iter().map(|e| e.0).collect::<Vec<_>>(), [1, 3]);
        let r1 = ex[0].2.unwrap();
        assert_eq!((r1.status, r1.headers.len()), (200, 0));
        assert_eq!(conn.held, 0, "everything released");
        assert_eq!(
            kinds(&out),
            [
                "h2-held-limit",
                "h2-truncated",
                "h2-held-limit",
                "h2-truncated",
                "h2-truncated"
            ]
        );
    }

    #[test]
    fn open_streams_share_the_tables_budget() {
        // 300 bytes for bodies, the last 42 for header fields only.
        let budget = MessageBudget::new(342);
        let post = |id: u32, extra: &str| {
            frame(
                HEADERS,
                END_HEADERS,
                id,
                &block(&[(":method", "POST"), (":path", "/u"), ("x", extra)]),
            )
        };
        // Another connection holds most of the budget.
        let mut other = Http2Conn::new(limits()).with_budget(&budget);
        let mut out = Vec::new();
        let mut c = H2_PREFACE.to_vec();
        c.extend(post(1, ""));
        c.extend(frame(DATA, 0, 1, &[b'o'; 200]));
        other.client_data(&c, TS, 1, &mut out);
        let other_held = budget.held();
        assert!(other_held > 200, "body and header fields: {other_held}");
        let mut conn = Http2Conn::new(limits()).with_budget(&budget);
        let mut c = H2_PREFACE.to_vec();
        c.extend(post(1, ""));
        c.extend(frame(DATA, 0, 1, &[b'a'; 100]));
        conn.client_data(&c, TS, 2, &mut out);
        assert_eq!(
            budget.held(),
            300,
            "stream 1's body keeps what was left for bodies"
        );
        // Header fields still fit, in the headroom: stream 3 opens. Stream 5's do not.
        conn.client_data(&post(3, ""), TS, 3, &mut out);
        assert!(budget.held() > 300);
        conn.client_data(&post(5, &"v".repeat(40)), TS, 4, &mut out);
        // The budget frees up, but stream 1's body keeps nothing after its cut.
        other.close(&mut out);
        conn.client_data(&frame(DATA, END_STREAM, 1, &[b'b'; 10]), TS, 5, &mut out);
        conn.server_data(
            &frame(
                HEADERS,
                END_HEADERS | END_STREAM,
                1,
                &block(&[(":status", "204")]),
            ),
            TS,
            6,
            &mut out,
        );
        conn.close(&mut out);
        assert_eq!(budget.held(), 0, "everything given back");
        let ex = exchanges(&out);
        assert_eq!(ex.iter().map(|e| e.0).collect::<Vec<_>>(), [1, 1, 3]);
        let cut = ex[1].1;
        assert!(cut.truncated);
        assert_eq!(cut.body_len, 110);
        assert!(!cut.body.is_empty() && cut.body.iter().all(|&b| b == b'a'));
        let stream3 = ex[2].1;
        assert_eq!(stream3.target, "/u", "header fields kept in the headroom");
        let table_cuts: Vec<&Anomaly> = out
            .iter()
            .filter_map(|e| match e {
                Http2Event::Anomaly(a) => Some(a),
                Http2Event::Exchange { request, .. } => request.anomalies.first(),
                Http2Event::WebSocket { .. } => None,
            })
            .filter(|a| a.kind == message_budget::ANOMALY)
            .collect();
        assert_eq!(table_cuts.len(), 2, "{table_cuts:?}");
        // The connection's anomaly comes out when stream 5 is refused, the body's
        // with its exchange.
        assert!(table_cuts[0]
            .detail
            .starts_with("further streams are not tracked"));
        assert!(table_cuts[0].detail.contains("budget of 342 bytes"));
        assert!(table_cuts[1].detail.starts_with("body not kept"));
    }

    #[test]
    fn a_flood_of_tiny_bodies_reserves_little() {
        let mut c = H2_PREFACE.to_vec();
        for id in (1u32..200).step_by(2) {
            c.extend(frame(
                HEADERS,
                END_HEADERS,
                id,
                &block(&[(":method", "POST")]),
            ));
            c.extend(frame(DATA, 0, id, b"x"));
        }
        let mut conn = Http2Conn::new(limits());
        let mut out = Vec::new();
        conn.client_data(&c, TS, 1, &mut out);
        let reserved: usize = conn
            .streams
            .values()
            .map(|s| s.request.body.capacity())
            .sum();
        assert_eq!(conn.streams.len(), 100);
        assert!(
            reserved <= 100 * BODY_RESERVE_FACTOR,
            "{reserved} bytes reserved"
        );
    }

    #[test]
    fn data_before_response_headers_is_one_anomaly_per_frame() {
        let mut c = H2_PREFACE.to_vec();
        c.extend(frame(
            HEADERS,
            END_HEADERS,
            1,
            &block(&[(":method", "GET")]),
        ));
        let s = frame(DATA, 0, 1, b"abcdef");
        let cuts: Vec<usize> = (0..s.len()).collect();
        let ev = run_split(limits(), &c, &[], &s, &cuts);
        assert_eq!(ev, run(&c, &s));
        assert_eq!(kinds(&ev), ["h2-data-before-headers", "h2-truncated"]);
    }

    #[test]
    fn goaway_hands_out_unprocessed_streams() {
        let mut c = H2_PREFACE.to_vec();
        for id in [1u32, 3] {
            c.extend(frame(
                HEADERS,
                END_HEADERS | END_STREAM,
                id,
                &block(&[(":method", "GET"), (":path", "/")]),
            ));
        }
        let mut conn = Http2Conn::new(limits());
        let mut out = Vec::new();
        conn.client_data(&c, TS, 1, &mut out);
        conn.server_data(
            &frame(GOAWAY, 0, 0, &[0, 0, 0, 1, 0, 0, 0, 11]),
            TS,
            2,
            &mut out,
        );
        let ex = exchanges(&out);
        assert_eq!(ex.len(), 1);
        assert_eq!(ex[0].0, 3);
        assert_eq!(kinds(&out), ["h2-goaway"]);
    }

    #[test]
    fn upgraded_connection_answers_the_http1_request_on_stream_1() {
        use base64::Engine;
        let mut payload = Vec::new();
        payload.extend_from_slice(&1u16.to_be_bytes());
        payload.extend_from_slice(&16384u32.to_be_bytes());
        let settings_b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&payload);
        let request = HttpRequest {
            method: "GET".into(),
            target: "/up".into(),
            version: "HTTP/1.1".into(),
            headers: vec![
                Header::new("Host", "h2c.example"),
                Header::new("Upgrade", "h2c"),
                Header::new("HTTP2-Settings", settings_b64),
            ],
            body: Vec::new(),
            body_len: 0,
            truncated: false,
            meta: MessageMeta {
                ts: TS,
                first_frame: 1,
                last_frame: 1,
            },
            anomalies: Vec::new(),
            beyond_cap: Vec::new(),
        };
        let mut conn = Http2Conn::upgraded(limits(), request.clone());
        let mut out = Vec::new();
        // The server's first blocks may use the 16 KiB table the client announced.
        let mut s = settings(&[]);
        let mut b = Vec::new();
        encode::size_update(&mut b, 16384);
        encode::indexed(&mut b, 8);
        s.extend(frame(HEADERS, END_HEADERS, 1, &b));
        s.extend(frame(DATA, END_STREAM, 1, b"hi"));
        conn.server_data(&s, TS, 2, &mut out);
        let mut c = H2_PREFACE.to_vec();
        c.extend(settings(&[]));
        conn.client_data(&c, TS, 3, &mut out);
        conn.close(&mut out);
        let ex = exchanges(&out);
        assert_eq!(ex.len(), 1);
        assert_eq!(ex[0].1, &request);
        assert_eq!(ex[0].2.unwrap().body, b"hi");
        assert_eq!(kinds(&out), Vec::<String>::new());
    }

    fn fragment() -> impl Strategy<Value = Vec<u8>> {
        let h = |id: u32, fl: u8, f: &[(&str, &str)]| frame(HEADERS, fl, id, &block(f));
        prop::sample::select(vec![
            h(1, END_HEADERS, &[(":method", "POST"), (":path", "/")]),
            h(
                3,
                END_HEADERS | END_STREAM,
                &[(":method", "GET"), (":path", "/3")],
            ),
            h(1, END_HEADERS | END_STREAM, &[(":status", "200")]),
            h(3, 0, &[(":status", "100")]),
            frame(CONTINUATION, END_HEADERS, 3, &[0x82]),
            frame(CONTINUATION, 0, 1, &[0x84]),
            frame(DATA, 0, 1, b"abc"),
            frame(DATA, END_STREAM | PADDED, 1, &[2, b'z', 0, 0]),
            frame(DATA, PADDED, 3, &[7]),
            frame(RST_STREAM, 0, 3, &[0, 0, 0, 8]),
            frame(GOAWAY, 0, 0, &[0, 0, 0, 1, 0, 0, 0, 0]),
            frame(PUSH_PROMISE, END_HEADERS, 1, &[0, 0, 0, 2, 0x82, 0x84]),
            frame(SETTINGS, 0, 0, &[0, 1, 0, 0, 0x10, 0]),
            vec![0x20, 0x3f, 0xe1, 0x1f],
            vec![0, 0, 5, 1, 4, 0, 0, 0],
            vec![0xbe],
        ])
    }

    fn stream(preface: bool) -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(fragment(), 0..10).prop_map(move |v| {
            let mut s = if preface {
                H2_PREFACE.to_vec()
            } else {
                Vec::new()
            };
            s.extend(v.concat());
            s
        })
    }

    proptest! {
        /// Any split of either direction gives the events of the unsplit input, even
        /// on malformed conversations.
        #[test]
        fn split_invariance(c in stream(true), s in stream(false), ci in any::<prop::sample::Index>(), si in any::<prop::sample::Index>()) {
            let lim = Http2Limits { max_frame_bytes: 64, max_streams_open: 2, ..limits() };
            let whole = run_split(lim.clone(), &c, &[], &s, &[]);
            let cc = ci.index(c.len() + 1);
            let sc = si.index(s.len() + 1);
            prop_assert_eq!(run_split(lim, &c, &[cc], &s, &[sc]), whole);
        }
    }
}
