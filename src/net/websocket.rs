//! WebSocket (RFC 6455) messages of one direction of a connection, sans I/O.
//!
//! The flow table reads a client's WebSocket after an HTTP/1.1 `Upgrade: websocket`
//! answered by `101`, and the HTTP/2 and HTTP/3 readers the WebSocket an extended
//! `CONNECT` opens on one of their streams (RFC 8441, RFC 9220; [`ClientWebSocket`]),
//! so that each text or binary message the client sends becomes an exchange, as it
//! does behind the proxy and in a HAR (method `WS`, the message as its body). What
//! the server sends is not read: it is what the server tells the app, not the
//! device's data leaving it.
//!
//! - **Frames** (§5.2): FIN, RSV1–3, opcode, mask bit, a 7-, 16- or 64-bit length, the
//!   masking key. Masked payloads (a client's, §5.3) are unmasked.
//! - **Messages**: a text (1) or binary (2) frame starts one, continuation frames (0)
//!   add to it, the frame with FIN ends it. Control frames (close, ping, pong) may come
//!   between a message's frames; they are read over.
//! - **Compression** (permessage-deflate, RFC 7692): when the client offered it, a
//!   message whose first frame has RSV1 set is raw DEFLATE, inflated after appending
//!   `00 00 ff ff` (§7.2.2). The direction keeps one inflater and its window from
//!   message to message (context takeover); a sender that resets its compressor per
//!   message (`client_no_context_takeover`) decodes the same way, and a message that
//!   ends its DEFLATE stream (a final block) leaves the next one a fresh stream.
//! - **Limits** ([`WsLimits`]): a message keeps at most `max_message_bytes` (of
//!   compressed bytes, and of inflated ones), the rest is counted and the message
//!   marked truncated (anomaly `ws-message-limit`). With a [`TailSearch`]
//!   ([`WsReader::with_tail_search`]) the rest is searched for the case's known values
//!   instead of dropped: an uncompressed message's payload as it arrives, a compressed
//!   one's inflated bytes past the limit (offsets into the inflated message) up to
//!   `max_inflated_bytes`. Inflating stops at `max_inflated_bytes` a message; past it,
//!   and after an inflation error, the window is lost and later compressed messages
//!   are not inflated (anomaly `ws-inflate-error`). A frame's declared length is never
//!   allocated. With a flow table's budget ([`WsReader::with_share`]) a message keeps
//!   no more once the table's messages in progress hold it all
//!   (`message-memory-limit`).
//! - **Errors** (a reserved opcode or RSV bit, RSV1 without the extension or on a
//!   continuation, a control frame longer than 125 bytes or fragmented, a continuation
//!   without a message, a new message before the last one's FIN, a length with its top
//!   bit set): anomaly `ws-malformed`, and the direction stops being read, since its
//!   framing can no longer be trusted. A gap stops it too (`ws-gap`): frames cannot be
//!   found again after lost bytes.

use flate2::{Decompress, FlushDecompress, Status};

use crate::exchange::{Anomaly, BeyondCapHit};
use crate::net::http1::{lists_token, HttpRequest, MessageMeta};
use crate::net::message_budget::{self, BudgetShare};
use crate::net::tail_search::{self, TailScan, TailSearch};
use crate::timestamp::Timestamp;

/// Bounds of one direction's reading.
#[derive(Debug, Clone)]
pub struct WsLimits {
    /// Bytes of a message kept, before and after inflation (default 8 MiB, the limit
    /// of an HTTP body's analysis).
    pub max_message_bytes: usize,
    /// Bytes one compressed message may inflate to, the excess past
    /// `max_message_bytes` included (default 32 MiB): the window needs all of them;
    /// the full analysis gets the first `max_message_bytes`, a tail search the rest.
    pub max_inflated_bytes: usize,
}

impl Default for WsLimits {
    fn default() -> Self {
        WsLimits {
            max_message_bytes: crate::decode::DEFAULT_MAX_BODY_BYTES,
            max_inflated_bytes: 4 * crate::decode::DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// One complete (or cut) message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsMessage {
    /// Opcode 2 (binary) rather than 1 (text).
    pub binary: bool,
    /// The payload, unmasked and inflated, at most `max_message_bytes`.
    pub data: Vec<u8>,
    /// Payload bytes on the wire, all frames (before inflation).
    pub wire_len: u64,
    /// `data` is not the whole message: a limit, an inflation error or the end.
    pub truncated: bool,
    /// Time and frame of its first byte, frame of its last.
    pub meta: MessageMeta,
    pub anomalies: Vec<Anomaly>,
    /// The case's known values in the message past `max_message_bytes` (an
    /// uncompressed one's payload, a compressed one's inflated bytes), when the reader
    /// had a [`TailSearch`].
    pub beyond_cap: Vec<BeyondCapHit>,
}

/// What the reader found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsEvent {
    Message(WsMessage),
    /// The direction stopped being read (malformed framing, a gap).
    Anomaly(Anomaly),
}

/// What a `101` to an `Upgrade: websocket` request leaves for the switch.
pub struct WsUpgrade {
    /// The upgrade request's target and `Host` header, which its messages are sent
    /// under.
    pub target: String,
    pub host: Option<Vec<u8>>,
    /// The client offered permessage-deflate (RFC 7692).
    pub deflate: bool,
}

impl WsUpgrade {
    /// The upgrade `request` asked for, when it asked for a WebSocket.
    pub fn of(request: &HttpRequest) -> Option<WsUpgrade> {
        if !lists_token(&request.headers, "upgrade", b"websocket") {
            return None;
        }
        Some(WsUpgrade {
            target: request.target.clone(),
            host: crate::exchange::header(&request.headers, "host").map(<[u8]>::to_vec),
            deflate: offers_deflate(request),
        })
    }

    /// The WebSocket an HTTP/2 or HTTP/3 extended `CONNECT` opens (RFC 8441, RFC
    /// 9220: `:protocol` `websocket`), when `request` is one; its messages are sent
    /// under its `:path` and `:authority`.
    pub fn of_extended_connect(request: &HttpRequest) -> Option<WsUpgrade> {
        let protocol = crate::exchange::header(&request.headers, ":protocol")?;
        if !request.method.eq_ignore_ascii_case("CONNECT")
            || !protocol.eq_ignore_ascii_case(b"websocket")
        {
            return None;
        }
        Some(WsUpgrade {
            target: request.target.clone(),
            host: crate::exchange::header(&request.headers, ":authority").map(<[u8]>::to_vec),
            deflate: offers_deflate(request),
        })
    }

    /// A client message of this WebSocket as a request of its own: method `WS`, the
    /// upgrade's target and `Host`, the message as its body (as behind the proxy).
    pub fn message_request(&self, m: WsMessage) -> HttpRequest {
        HttpRequest {
            method: "WS".into(),
            target: self.target.clone(),
            version: "WebSocket".into(),
            headers: self
                .host
                .iter()
                .map(|h| crate::exchange::Header::new("Host", h.clone()))
                .collect(),
            body: m.data,
            body_len: m.wire_len,
            truncated: m.truncated,
            meta: m.meta,
            anomalies: m.anomalies,
            beyond_cap: m.beyond_cap,
        }
    }
}

/// What a [`ClientWebSocket`] hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsOutput {
    /// A client message as a request of its own ([`WsUpgrade::message_request`]).
    Request(HttpRequest),
    Anomaly(Anomaly),
}

/// The client side of a WebSocket carried by an HTTP/2 or HTTP/3 stream (RFC 8441,
/// RFC 9220): its frames read, each message a request under the upgrade.
pub struct ClientWebSocket {
    upgrade: WsUpgrade,
    reader: WsReader,
    events: Vec<WsEvent>,
}

impl std::fmt::Debug for ClientWebSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientWebSocket")
            .field("target", &self.upgrade.target)
            .finish_non_exhaustive()
    }
}

impl ClientWebSocket {
    /// `share`: the message being read, in the flow table's budget.
    pub fn new(upgrade: WsUpgrade, limits: WsLimits, share: BudgetShare) -> Self {
        ClientWebSocket {
            reader: WsReader::new(limits, upgrade.deflate).with_share(share),
            upgrade,
            events: Vec::new(),
        }
    }

    /// Searches each message past `max_message_bytes` with `search`
    /// ([`WsReader::with_tail_search`]).
    pub fn with_tail_search(mut self, search: Option<TailSearch>) -> Self {
        self.reader = self.reader.with_tail_search(search);
        self
    }

    /// Client bytes of the stream, carried by capture frame `frame` at `ts`.
    pub fn push(&mut self, data: &[u8], ts: Timestamp, frame: u64, out: &mut Vec<WsOutput>) {
        self.reader.push(data, ts, frame, &mut self.events);
        self.hand_out(out);
    }

    /// The stream ended: a message cut by it counts as far as it went.
    pub fn close(&mut self, out: &mut Vec<WsOutput>) {
        self.reader.close(&mut self.events);
        self.hand_out(out);
    }

    fn hand_out(&mut self, out: &mut Vec<WsOutput>) {
        for event in self.events.drain(..) {
            out.push(match event {
                WsEvent::Message(m) => WsOutput::Request(self.upgrade.message_request(m)),
                WsEvent::Anomaly(a) => WsOutput::Anomaly(a),
            });
        }
    }
}

/// The request offers permessage-deflate (RFC 7692) in `Sec-WebSocket-Extensions`.
fn offers_deflate(request: &HttpRequest) -> bool {
    request
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("sec-websocket-extensions"))
        .flat_map(|h| h.value.split(|&b| b == b','))
        .any(|ext| {
            let name = ext.split(|&b| b == b';').next().unwrap_or_default();
            name.trim_ascii()
                .eq_ignore_ascii_case(b"permessage-deflate")
        })
}

/// Longest frame header: 2 + 8 (64-bit length) + 4 (masking key).
const MAX_HEADER: usize = 14;
/// Control frames carry at most this much (§5.5).
const MAX_CONTROL_PAYLOAD: u64 = 125;
/// The tail a permessage-deflate sender strips from each message (RFC 7692 §7.2.1).
const DEFLATE_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];
/// Inflated in pieces of this size.
const INFLATE_STEP: usize = 32 << 10;

/// The frame being read.
struct Frame {
    opcode: u8,
    fin: bool,
    /// Payload bytes still to come.
    remaining: u64,
    mask: Option<[u8; 4]>,
    /// Payload bytes read so far (the masking key's position).
    read: u64,
}

/// The message being put together.
struct Partial {
    binary: bool,
    compressed: bool,
    /// Payload as received (compressed when `compressed`), at most the limit.
    data: Vec<u8>,
    wire_len: u64,
    /// Bytes past `max_message_bytes` were not kept.
    over_limit: bool,
    /// The flow table's budget of message bytes ran out: nothing more was kept.
    over_budget: bool,
    /// Its final frame never came (a gap, the connection's end).
    cut: bool,
    /// The search of the message past the limit, once it got there (an uncompressed
    /// message's as its payload arrives, a compressed one's as it is inflated).
    tail: Option<Box<dyn TailScan>>,
    meta: MessageMeta,
}

/// One direction's frames and messages.
pub struct WsReader {
    limits: WsLimits,
    /// The client offered permessage-deflate: RSV1 means a compressed message.
    deflate: bool,
    header: [u8; MAX_HEADER],
    header_len: usize,
    /// Time and frame of the header's first byte (a message starts there).
    header_at: (Timestamp, u64),
    frame: Option<Frame>,
    message: Option<Partial>,
    /// Kept across messages for the shared window; `None` until a compressed
    /// message comes, or after the window was lost.
    inflater: Option<Box<Decompress>>,
    window_lost: bool,
    stopped: bool,
    /// The message's kept bytes, in the flow table's budget.
    held: BudgetShare,
    /// Searches a message past `max_message_bytes`.
    tail_search: Option<TailSearch>,
}

impl WsReader {
    /// A reader of the bytes after the `101`; `deflate` when the upgrade request offered
    /// `permessage-deflate` in `Sec-WebSocket-Extensions`.
    pub fn new(limits: WsLimits, deflate: bool) -> Self {
        WsReader {
            limits,
            deflate,
            header: [0; MAX_HEADER],
            header_len: 0,
            header_at: (Timestamp::from_micros(0), 0),
            frame: None,
            message: None,
            inflater: None,
            window_lost: false,
            stopped: false,
            held: BudgetShare::default(),
            tail_search: None,
        }
    }

    /// Searches each message past `max_message_bytes` with `search`: an uncompressed
    /// message's payload, unmasked, as it passes; a compressed message's inflated
    /// bytes past the limit, as inflating produces them (up to `max_inflated_bytes`).
    /// The compressed bytes of a message longer than the limit are not all kept, so
    /// only the output of those kept is inflated and searched.
    pub fn with_tail_search(mut self, search: Option<TailSearch>) -> Self {
        self.tail_search = search;
        self
    }

    /// Keeps the message being read within `share`'s budget too, shared with other
    /// connections (see [`message_budget`]).
    pub fn with_share(mut self, share: BudgetShare) -> Self {
        self.held = share;
        self
    }

    /// The next in-order bytes, carried by `frame` captured at `ts`.
    pub fn push(&mut self, mut data: &[u8], ts: Timestamp, frame: u64, out: &mut Vec<WsEvent>) {
        while !data.is_empty() && !self.stopped {
            let used = match self.frame.as_mut() {
                None => self.header_bytes(data, ts, frame, out),
                Some(f) => {
                    let n = usize::try_from(f.remaining)
                        .unwrap_or(usize::MAX)
                        .min(data.len());
                    let piece = &data[..n];
                    f.remaining -= n as u64;
                    self.payload(piece, frame);
                    if self.frame.as_ref().is_some_and(|f| f.remaining == 0) {
                        self.end_frame(frame, out);
                    }
                    n
                }
            };
            data = data.get(used..).unwrap_or_default();
        }
        self.sync_held();
    }

    fn sync_held(&mut self) {
        let now = self.message.as_ref().map_or(0, |m| m.data.len());
        self.held.sync(now);
    }

    /// Lost bytes: the frames cannot be found again.
    pub fn gap(&mut self, len: u64, out: &mut Vec<WsEvent>) {
        if self.stopped {
            return;
        }
        self.stop(
            Anomaly::new(
                "ws-gap",
                format!("{len} bytes of WebSocket frames missing; the rest is not read"),
            ),
            out,
        );
    }

    /// The connection ends: a message without its last frame goes out, cut.
    pub fn close(&mut self, out: &mut Vec<WsEvent>) {
        self.flush_partial(out);
        self.stopped = true;
        self.sync_held();
    }

    fn stop(&mut self, anomaly: Anomaly, out: &mut Vec<WsEvent>) {
        self.flush_partial(out);
        out.push(WsEvent::Anomaly(anomaly));
        self.stopped = true;
        self.sync_held();
    }

    /// A message in progress goes out as it stands.
    fn flush_partial(&mut self, out: &mut Vec<WsEvent>) {
        if let Some(mut m) = self.message.take() {
            m.cut = true;
            let message = self.finish(m);
            out.push(WsEvent::Message(message));
        }
    }

    /// Takes header bytes from `data`; returns how many.
    fn header_bytes(
        &mut self,
        data: &[u8],
        ts: Timestamp,
        frame: u64,
        out: &mut Vec<WsEvent>,
    ) -> usize {
        let mut used = 0;
        if self.header_len == 0 {
            self.header_at = (ts, frame);
        }
        loop {
            let need = header_len(&self.header[..self.header_len]);
            if self.header_len >= need {
                break;
            }
            let take = (need - self.header_len).min(data.len() - used);
            if take == 0 {
                return used;
            }
            self.header[self.header_len..self.header_len + take]
                .copy_from_slice(&data[used..used + take]);
            self.header_len += take;
            used += take;
        }
        let header = self.header;
        let len = self.header_len;
        self.header_len = 0;
        match self.start_frame(&header[..len], frame) {
            Ok(()) => {
                if self.frame.as_ref().is_some_and(|f| f.remaining == 0) {
                    self.end_frame(frame, out);
                }
            }
            Err(why) => self.stop(Anomaly::new("ws-malformed", why), out),
        }
        used
    }

    /// A complete frame header: checks it and opens the frame (and its message).
    fn start_frame(&mut self, h: &[u8], frame: u64) -> Result<(), String> {
        let (b0, b1) = (h[0], h[1]);
        let fin = b0 & 0x80 != 0;
        let rsv1 = b0 & 0x40 != 0;
        let opcode = b0 & 0x0f;
        let masked = b1 & 0x80 != 0;
        let (length, rest) = match b1 & 0x7f {
            126 => (u64::from(u16::from_be_bytes([h[2], h[3]])), &h[4..]),
            127 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&h[2..10]);
                (u64::from_be_bytes(b), &h[10..])
            }
            n => (u64::from(n), &h[2..]),
        };
        if length >> 63 != 0 {
            return Err("frame length with its most significant bit set".into());
        }
        if b0 & 0x30 != 0 {
            return Err("RSV2 or RSV3 set: no extension defines them".into());
        }
        let mask = masked.then(|| [rest[0], rest[1], rest[2], rest[3]]);
        match opcode {
            0x8..=0xa => {
                if !fin || length > MAX_CONTROL_PAYLOAD || rsv1 {
                    return Err(format!(
                        "control frame (opcode {opcode}) fragmented, compressed or longer than 125 bytes"
                    ));
                }
            }
            0x1 | 0x2 => {
                if self.message.is_some() {
                    return Err("a new message before the last one's final frame".into());
                }
                if rsv1 && !self.deflate {
                    return Err("RSV1 set without permessage-deflate offered".into());
                }
                self.message = Some(Partial {
                    binary: opcode == 0x2,
                    compressed: rsv1,
                    data: Vec::new(),
                    wire_len: 0,
                    over_limit: false,
                    over_budget: false,
                    cut: false,
                    tail: None,
                    meta: MessageMeta {
                        ts: self.header_at.0,
                        first_frame: self.header_at.1,
                        last_frame: frame,
                    },
                });
            }
            0x0 => {
                if self.message.is_none() {
                    return Err("continuation frame without a message".into());
                }
                if rsv1 {
                    return Err("RSV1 set on a continuation frame".into());
                }
            }
            _ => return Err(format!("reserved opcode {opcode}")),
        }
        self.frame = Some(Frame {
            opcode,
            fin,
            remaining: length,
            mask,
            read: 0,
        });
        Ok(())
    }

    /// Payload bytes of the current frame: unmasked into the message (control frames'
    /// are dropped).
    fn payload(&mut self, piece: &[u8], frame: u64) {
        let Some(f) = self.frame.as_mut() else {
            return;
        };
        let start = f.read;
        f.read += piece.len() as u64;
        if f.opcode >= 0x8 {
            return;
        }
        let (Some(m), mask) = (self.message.as_mut(), f.mask) else {
            return;
        };
        m.wire_len += piece.len() as u64;
        m.meta.last_frame = frame;
        let room = if m.over_budget {
            0
        } else {
            self.limits.max_message_bytes.saturating_sub(m.data.len())
        };
        let want = piece.len().min(room);
        let granted = self.held.grant(want);
        let keep = &piece[..granted];
        if granted < want {
            m.over_budget = true;
        } else if keep.len() < piece.len() && !m.over_budget {
            m.over_limit = true;
        }
        let at = m.data.len();
        m.data.extend_from_slice(keep);
        if let Some(key) = mask {
            unmask(&mut m.data[at..], key, start);
        }
        let rest = piece.get(granted..).unwrap_or_default();
        let searched = m.over_limit && !m.compressed && !rest.is_empty();
        if let Some(search) = self.tail_search.as_ref().filter(|_| searched) {
            let mut plain = rest.to_vec();
            if let Some(key) = mask {
                unmask(&mut plain, key, start + granted as u64);
            }
            let offset = m.wire_len.saturating_sub(rest.len() as u64);
            let data = &m.data;
            m.tail
                .get_or_insert_with(|| search.start(data, offset))
                .feed(&plain);
        }
    }

    /// The current frame is complete: a final frame ends its message.
    fn end_frame(&mut self, frame: u64, out: &mut Vec<WsEvent>) {
        let Some(f) = self.frame.take() else {
            return;
        };
        if f.opcode >= 0x8 || !f.fin {
            return;
        }
        if let Some(mut m) = self.message.take() {
            m.meta.last_frame = frame;
            let message = self.finish(m);
            out.push(WsEvent::Message(message));
        }
    }

    /// The message as handed out: inflated when compressed.
    fn finish(&mut self, mut m: Partial) -> WsMessage {
        let mut anomalies = Vec::new();
        let mut truncated = m.cut || m.over_limit || m.over_budget;
        // Bytes a compressed message inflated to, when more than were kept, and
        // whether inflating stopped before its end.
        let mut inflated = None;
        let data = if m.compressed {
            // Compressed bytes not all kept: the window is lost after this one.
            let (data, outcome) = self.inflate(&m.data, truncated, &mut m.tail);
            truncated |= outcome.over;
            let stopped = outcome.failed.is_some();
            if let Some(why) = outcome.failed {
                anomalies.push(Anomaly::new("ws-inflate-error", why));
                truncated = true;
            }
            inflated = Some((outcome.inflated, stopped)).filter(|_| outcome.over);
            data
        } else {
            m.data
        };
        if m.over_limit || inflated.is_some() {
            let mut detail = format!("WebSocket message of {} bytes on the wire", m.wire_len);
            if m.over_limit {
                detail.push_str(&format!(
                    "; the first {} kept",
                    self.limits.max_message_bytes
                ));
            }
            if let Some((n, stopped)) = inflated {
                let at_least = if stopped { "at least " } else { "" };
                detail.push_str(&format!(
                    "; inflated to {at_least}{n} bytes, the first {} kept",
                    self.limits.max_message_bytes
                ));
            }
            anomalies.push(Anomaly::new("ws-message-limit", detail));
        }
        if m.over_budget {
            anomalies.push(Anomaly::new(
                message_budget::ANOMALY,
                self.held
                    .cut_detail("WebSocket message not kept past this point"),
            ));
        }
        if m.cut {
            anomalies.push(Anomaly::new(
                "ws-truncated",
                "WebSocket message without its final frame",
            ));
        }
        let beyond_cap = m
            .tail
            .map(|tail| tail_search::finish_noting(tail, &mut anomalies, "ws-message-limit"))
            .unwrap_or_default();
        WsMessage {
            binary: m.binary,
            data,
            wire_len: m.wire_len,
            truncated,
            meta: m.meta,
            anomalies,
            beyond_cap,
        }
    }

    /// Inflates one message's compressed bytes with the direction's window: the first
    /// `max_message_bytes` of the output, the rest run through the window and handed
    /// to the tail search, if any (started in `tail` at the first byte past the
    /// limit), else dropped. `input_cut`: the compressed bytes are not all there, so
    /// the window is lost.
    fn inflate(
        &mut self,
        input: &[u8],
        input_cut: bool,
        tail: &mut Option<Box<dyn TailScan>>,
    ) -> (Vec<u8>, Inflated) {
        let mut outcome = Inflated::default();
        let mut kept = Vec::new();
        if self.window_lost {
            outcome.failed =
                Some("compressed message not inflated: the window was lost before it".into());
            return (kept, outcome);
        }
        let inflater = self
            .inflater
            .get_or_insert_with(|| Box::new(Decompress::new(false)));
        let limit = self.limits.max_message_bytes;
        let mut scratch = Vec::new();
        let mut total = 0usize;
        let mut ended = false;
        'parts: for part in [input, &DEFLATE_TAIL[..]] {
            let mut at = 0;
            loop {
                let room = limit.saturating_sub(kept.len());
                let sink = if room > 0 {
                    &mut kept
                } else {
                    scratch.clear();
                    &mut scratch
                };
                sink.reserve(INFLATE_STEP);
                let (in_before, out_before) = (inflater.total_in(), sink.len());
                let result = inflater.decompress_vec(
                    part.get(at..).unwrap_or_default(),
                    sink,
                    FlushDecompress::Sync,
                );
                let consumed =
                    usize::try_from(inflater.total_in() - in_before).unwrap_or(usize::MAX);
                let produced = sink.len() - out_before;
                at = at.saturating_add(consumed);
                total = total.saturating_add(produced);
                // Output past the limit: this step's into the scratch, or the end of
                // what it wrote into `kept` beyond it.
                let (prefix, past) = if room == 0 {
                    (&kept[..], &scratch[..])
                } else {
                    kept.split_at(limit.min(kept.len()))
                };
                if !past.is_empty() {
                    outcome.over = true;
                    if let Some(search) = &self.tail_search {
                        let from = total.saturating_sub(past.len()) as u64;
                        tail.get_or_insert_with(|| search.start(prefix, from))
                            .feed(past);
                    }
                    kept.truncate(limit);
                }
                match result {
                    Err(e) => {
                        outcome.failed = Some(format!("permessage-deflate: {e}"));
                        break 'parts;
                    }
                    Ok(Status::StreamEnd) => {
                        ended = true;
                        break 'parts;
                    }
                    Ok(_) => {}
                }
                if total > self.limits.max_inflated_bytes {
                    outcome.failed = Some(format!(
                        "compressed message inflates past {} bytes; the first {} searched",
                        self.limits.max_inflated_bytes,
                        if tail.is_some() { total } else { kept.len() }
                    ));
                    break 'parts;
                }
                // Input used up and nothing more pending, or no progress at all.
                if produced == 0 && (at >= part.len() || consumed == 0) {
                    break;
                }
            }
        }
        if outcome.failed.is_some() || input_cut {
            // The window no longer matches the sender's.
            self.window_lost = true;
            self.inflater = None;
        } else if ended {
            // A final block (BFINAL) ends the sender's stream: its next message
            // starts a new one, with an empty window.
            self.inflater = None;
        }
        outcome.inflated = total;
        (kept, outcome)
    }
}

/// Unmasks `bytes` (RFC 6455 §5.3), the first of them at payload offset `from`.
fn unmask(bytes: &mut [u8], key: [u8; 4], from: u64) {
    for (i, b) in bytes.iter_mut().enumerate() {
        // `from + i` mod 4: the key's byte for this payload offset.
        *b ^= key[((from + i as u64) % 4) as usize];
    }
}

/// How inflating a message went.
#[derive(Debug, Default)]
struct Inflated {
    /// Output past `max_message_bytes` was not kept.
    over: bool,
    /// Bytes of output, kept or not.
    inflated: usize,
    /// Why inflating stopped early.
    failed: Option<String>,
}

/// Bytes of the frame header that starts with `h` (at least 2).
fn header_len(h: &[u8]) -> usize {
    let [_, b1, ..] = *h else {
        return 2;
    };
    let length = match b1 & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    2 + length + if b1 & 0x80 != 0 { 4 } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::message_budget::MessageBudget;
    use flate2::{Compress, Compression, FlushCompress};
    use proptest::prelude::*;

    const TS: Timestamp = Timestamp::from_micros(1_000);
    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// A frame as a client sends it (masked with `KEY`).
    fn frame(fin: bool, rsv1: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![(u8::from(fin) << 7) | (u8::from(rsv1) << 6) | opcode];
        match payload.len() {
            n if n < 126 => f.push(0x80 | n as u8),
            n if n <= 0xffff => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&KEY);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
        f
    }

    fn read_all(deflate: bool, limits: WsLimits, pieces: &[&[u8]]) -> Vec<WsEvent> {
        let mut r = WsReader::new(limits, deflate);
        let mut out = Vec::new();
        for (i, p) in pieces.iter().enumerate() {
            r.push(p, TS, i as u64 + 1, &mut out);
        }
        r.close(&mut out);
        out
    }

    fn messages(ev: &[WsEvent]) -> Vec<(bool, Vec<u8>, bool)> {
        ev.iter()
            .filter_map(|e| match e {
                WsEvent::Message(m) => Some((m.binary, m.data.clone(), m.truncated)),
                WsEvent::Anomaly(_) => None,
            })
            .collect()
    }

    fn kinds(ev: &[WsEvent]) -> Vec<String> {
        let mut k = Vec::new();
        for e in ev {
            match e {
                WsEvent::Message(m) => k.extend(m.anomalies.iter().map(|a| a.kind.clone())),
                WsEvent::Anomaly(a) => k.push(a.kind.clone()),
            }
        }
        k
    }

    /// One compressor for a whole direction, as a permessage-deflate client keeps it.
    struct Deflater(Compress);

    impl Deflater {
        fn new() -> Self {
            Deflater(Compress::new(Compression::default(), false))
        }

        /// A message's compressed bytes without the `00 00 ff ff` tail.
        fn message(&mut self, data: &[u8]) -> Vec<u8> {
            let start = self.0.total_in();
            let mut out = Vec::new();
            loop {
                out.reserve(data.len() + 1024);
                let used = (self.0.total_in() - start) as usize;
                self.0
                    .compress_vec(&data[used..], &mut out, FlushCompress::Sync)
                    .unwrap();
                let used = (self.0.total_in() - start) as usize;
                if used == data.len() && out.len() < out.capacity() {
                    break;
                }
            }
            assert!(out.ends_with(&DEFLATE_TAIL));
            out.truncate(out.len() - 4);
            out
        }
    }

    #[test]
    fn the_upgrade_names_the_target_and_the_offered_compression() {
        use crate::exchange::Header;
        let request = |headers: Vec<Header>| HttpRequest {
            method: "GET".into(),
            target: "/chat".into(),
            version: "HTTP/1.1".into(),
            headers,
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
        let up = WsUpgrade::of(&request(vec![
            Header::new("Host", "ws.example"),
            Header::new("Upgrade", "WebSocket"),
            Header::new(
                "Sec-WebSocket-Extensions",
                "x-webkit, permessage-deflate; client_max_window_bits",
            ),
        ]))
        .expect("a WebSocket upgrade");
        assert_eq!(up.target, "/chat");
        assert_eq!(up.host.as_deref(), Some(&b"ws.example"[..]));
        assert!(up.deflate);
        let plain = WsUpgrade::of(&request(vec![Header::new("Upgrade", "websocket")])).unwrap();
        assert!(!plain.deflate && plain.host.is_none());
        assert!(WsUpgrade::of(&request(vec![Header::new("Upgrade", "h2c")])).is_none());
        // `Upgrade` in two lines is one list (RFC 9110 §5.3).
        let lines = vec![
            Header::new("Upgrade", "h2c"),
            Header::new("upgrade", "websocket"),
        ];
        assert!(WsUpgrade::of(&request(lines)).is_some());
        assert!(WsUpgrade::of(&request(Vec::new())).is_none());
    }

    #[test]
    fn an_uncompressed_message_past_the_limit_is_fed_unmasked_to_the_tail_search() {
        use crate::net::tail_search::testing::recording;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let limits = WsLimits {
            max_message_bytes: 10,
            max_inflated_bytes: 1024,
        };
        // Two frames, each masked from its own start; then a compressed one, longer
        // than the limit, whose rest is not searched.
        let mut stream = frame(false, false, 0x1, b"abcdefghijklmnop");
        stream.extend(frame(true, false, 0x0, b"qrstuvwxyz"));
        let noise: Vec<u8> = (0..200u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        let compressed = Deflater::new().message(&noise);
        assert!(compressed.len() > 10, "{} bytes", compressed.len());
        stream.extend(frame(true, true, 0x2, &compressed));
        for cut in 0..=stream.len() {
            let starts = Arc::new(AtomicUsize::new(0));
            let mut r =
                WsReader::new(limits.clone(), true).with_tail_search(Some(recording(&starts)));
            let mut out = Vec::new();
            r.push(&stream[..cut], TS, 1, &mut out);
            r.push(&stream[cut..], TS, 2, &mut out);
            r.close(&mut out);
            let WsEvent::Message(m) = &out[0] else {
                panic!("{out:?}");
            };
            assert_eq!(m.data, b"abcdefghij");
            let got: Vec<(String, u64, Vec<u8>)> = m
                .beyond_cap
                .iter()
                .map(|h| (h.kind.clone(), h.offset, h.value.clone()))
                .collect();
            assert_eq!(
                got,
                [("abcdefghij".to_string(), 10, b"klmnopqrstuvwxyz".to_vec())],
                "cut at {cut}"
            );
            let limit = m.anomalies.iter().find(|a| a.kind == "ws-message-limit");
            assert!(
                limit.is_some_and(|a| a.detail.ends_with("as they passed: 1 hit(s)")),
                "{:?}",
                m.anomalies
            );
            assert_eq!(
                starts.load(Ordering::Relaxed),
                1,
                "cut at {cut}: compressed too"
            );
        }
    }

    #[test]
    fn text_and_binary_messages_are_unmasked() {
        let text = frame(true, false, 1, br#"{"imei":"490154203237518"}"#);
        let bin = frame(true, false, 2, b"\x00\x01\x02");
        let ev = read_all(false, WsLimits::default(), &[&text, &bin]);
        assert_eq!(
            messages(&ev),
            [
                (false, br#"{"imei":"490154203237518"}"#.to_vec(), false),
                (true, b"\x00\x01\x02".to_vec(), false)
            ]
        );
    }

    #[test]
    fn fragments_join_around_control_frames() {
        let a = frame(false, false, 1, b"hello ");
        let ping = frame(true, false, 9, b"p");
        let b = frame(true, false, 0, b"world");
        let close = frame(true, false, 8, b"\x03\xe8");
        let ev = read_all(false, WsLimits::default(), &[&a, &ping, &b, &close]);
        assert_eq!(messages(&ev), [(false, b"hello world".to_vec(), false)]);
        assert!(kinds(&ev).is_empty());
    }

    #[test]
    fn lengths_of_16_and_64_bits() {
        let mid = vec![b'x'; 300];
        let big = vec![b'y'; 70_000];
        let ev = read_all(
            false,
            WsLimits::default(),
            &[&frame(true, false, 2, &mid), &frame(true, false, 2, &big)],
        );
        let got = messages(&ev);
        assert_eq!(got[0].1, mid);
        assert_eq!(got[1].1, big);
    }

    #[test]
    fn compressed_messages_share_the_window() {
        let mut d = Deflater::new();
        let one = d.message(br#"{"advertising_id":"38400000-8cf0-11bd-b23e-10b96e40000d"}"#);
        // The second message repeats the first: with context takeover it is mostly
        // back-references into the first message's output.
        let two = d.message(br#"{"advertising_id":"38400000-8cf0-11bd-b23e-10b96e40000d","n":2}"#);
        let ev = read_all(
            true,
            WsLimits::default(),
            &[&frame(true, true, 1, &one), &frame(true, true, 1, &two)],
        );
        let got = messages(&ev);
        assert_eq!(
            got[1].1,
            br#"{"advertising_id":"38400000-8cf0-11bd-b23e-10b96e40000d","n":2}"#
        );
        assert!(kinds(&ev).is_empty(), "{:?}", kinds(&ev));
    }

    #[test]
    fn a_message_ending_its_deflate_stream_leaves_the_next_a_fresh_one() {
        let finished = |data: &[u8]| {
            let mut c = Compress::new(Compression::default(), false);
            let mut out = Vec::with_capacity(data.len() + 64);
            c.compress_vec(data, &mut out, FlushCompress::Finish)
                .unwrap();
            out
        };
        let ev = read_all(
            true,
            WsLimits::default(),
            &[
                &frame(true, true, 1, &finished(b"first message")),
                &frame(true, true, 1, &finished(b"second message")),
            ],
        );
        assert_eq!(
            messages(&ev),
            [
                (false, b"first message".to_vec(), false),
                (false, b"second message".to_vec(), false)
            ]
        );
        assert!(kinds(&ev).is_empty(), "{:?}", kinds(&ev));
    }

    #[test]
    fn a_message_keeps_no_more_once_the_tables_budget_is_spent() {
        // 50 bytes for message content (the last 7 are for header fields).
        let budget = MessageBudget::new(57);
        let mut r = WsReader::new(WsLimits::default(), false).with_share(BudgetShare::of(&budget));
        let mut out = Vec::new();
        r.push(&frame(false, false, 1, &[b'a'; 40]), TS, 1, &mut out);
        assert_eq!(budget.held(), 40);
        r.push(&frame(false, false, 0, &[b'b'; 40]), TS, 2, &mut out);
        assert_eq!(budget.held(), 50, "the budget is spent");
        r.push(&frame(true, false, 0, &[b'c'; 5]), TS, 3, &mut out);
        assert_eq!(budget.held(), 0, "the message went out");
        let mut expected = vec![b'a'; 40];
        expected.extend([b'b'; 10]);
        assert_eq!(messages(&out), [(false, expected, true)]);
        assert_eq!(kinds(&out), [message_budget::ANOMALY]);
        // The next message has the whole budget again.
        r.push(&frame(true, false, 2, &[b'd'; 50]), TS, 4, &mut out);
        assert_eq!(messages(&out)[1], (true, vec![b'd'; 50], false));
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn limits_cut_messages_and_inflation() {
        let limits = WsLimits {
            max_message_bytes: 4,
            max_inflated_bytes: 64,
        };
        let ev = read_all(false, limits, &[&frame(true, false, 1, b"abcdefgh")]);
        assert_eq!(messages(&ev), [(false, b"abcd".to_vec(), true)]);
        assert_eq!(kinds(&ev), ["ws-message-limit"]);
        // A small compressed message that inflates far past the bound.
        let limits = WsLimits {
            max_message_bytes: 64,
            max_inflated_bytes: 1000,
        };
        let mut d = Deflater::new();
        let bomb = d.message(&[b'z'; 10_000]);
        assert!(bomb.len() < 64);
        let ev = read_all(true, limits, &[&frame(true, true, 2, &bomb)]);
        let got = messages(&ev);
        assert_eq!(got[0].1, [b'z'; 64]);
        assert!(got[0].2, "truncated");
        assert_eq!(kinds(&ev), ["ws-inflate-error", "ws-message-limit"]);
    }

    #[test]
    fn a_compressed_message_inflating_past_the_limit_is_searched_past_it() {
        use crate::net::tail_search::testing::recording;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        // Text that compresses well but not to nothing: several inflate steps long.
        let text: Vec<u8> = (0..3 * INFLATE_STEP + 777)
            .map(|i| b"abcdefghijklmnopqrstuvwxyz0123456789"[(i * i + i / 7) % 36])
            .collect();
        let follow_up = [&text[..100], b" and more"].concat();
        // Limits from above the compressed size (so the compressed bytes are all kept)
        // to one byte short of the text, on and around the inflater's steps.
        for limit in [
            1000,
            INFLATE_STEP - 1,
            INFLATE_STEP,
            INFLATE_STEP + 1,
            2 * INFLATE_STEP + 5,
            text.len() - 1,
        ] {
            let limits = WsLimits {
                max_message_bytes: limit,
                max_inflated_bytes: 1 << 20,
            };
            let mut d = Deflater::new();
            let one = d.message(&text);
            assert!(one.len() < 1000, "{} compressed bytes", one.len());
            // With context takeover the next message refers back into this one's
            // output, so it inflates only if the window saw all of it.
            let two = d.message(&follow_up);
            let starts = Arc::new(AtomicUsize::new(0));
            let mut r =
                WsReader::new(limits.clone(), true).with_tail_search(Some(recording(&starts)));
            let mut out = Vec::new();
            r.push(&frame(true, true, 1, &one), TS, 1, &mut out);
            r.push(&frame(true, true, 1, &two), TS, 2, &mut out);
            r.close(&mut out);
            let WsEvent::Message(m) = &out[0] else {
                panic!("{out:?}");
            };
            assert_eq!(m.data, text[..limit], "limit {limit}");
            assert!(m.truncated);
            let got: Vec<(Vec<u8>, u64, Vec<u8>)> = m
                .beyond_cap
                .iter()
                .map(|h| (h.kind.clone().into_bytes(), h.offset, h.value.clone()))
                .collect();
            assert_eq!(
                got,
                [(text[..limit].to_vec(), limit as u64, text[limit..].to_vec())],
                "limit {limit}: lead-in, offset and bytes searched"
            );
            let note = m.anomalies.iter().find(|a| a.kind == "ws-message-limit");
            assert!(
                note.is_some_and(|a| a
                    .detail
                    .contains(&format!("inflated to {} bytes", text.len()))
                    && a.detail.ends_with("as they passed: 1 hit(s)")),
                "{:?}",
                m.anomalies
            );
            // The window took every byte: the next message inflates, whole.
            let WsEvent::Message(m2) = &out[1] else {
                panic!("{out:?}");
            };
            assert_eq!(
                m2.data,
                follow_up[..follow_up.len().min(limit)],
                "limit {limit}"
            );
            assert_eq!(
                starts.load(Ordering::Relaxed),
                1 + usize::from(follow_up.len() > limit),
                "limit {limit}"
            );
        }
    }

    #[test]
    fn a_compressed_message_within_the_limit_starts_no_search_and_a_bomb_is_searched_to_the_bound()
    {
        use crate::net::tail_search::testing::recording;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let starts = Arc::new(AtomicUsize::new(0));
        let limits = WsLimits {
            max_message_bytes: 64,
            max_inflated_bytes: 1000,
        };
        let mut d = Deflater::new();
        let small = d.message(&[b'y'; 64]);
        let bomb = d.message(&[b'z'; 100_000]);
        let mut r = WsReader::new(limits, true).with_tail_search(Some(recording(&starts)));
        let mut out = Vec::new();
        r.push(&frame(true, true, 1, &small), TS, 1, &mut out);
        assert_eq!(messages(&out), [(false, vec![b'y'; 64], false)]);
        assert_eq!(starts.load(Ordering::Relaxed), 0, "nothing past the limit");
        r.push(&frame(true, true, 2, &bomb), TS, 2, &mut out);
        let WsEvent::Message(m) = &out[1] else {
            panic!("{out:?}");
        };
        assert_eq!(m.data, [b'z'; 64]);
        let searched = m.beyond_cap[0].value.len();
        assert_eq!(m.beyond_cap[0].offset, 64);
        // Inflating stops at the first step past the bound: all of its output kept
        // or searched, nothing after it.
        assert!(
            searched + 64 > 1000 && searched <= 64 + INFLATE_STEP * 2,
            "{searched}"
        );
        assert!(m.beyond_cap[0].value.iter().all(|&b| b == b'z'));
        let limit = m.anomalies.iter().find(|a| a.kind == "ws-message-limit");
        assert!(
            limit.is_some_and(|a| a.detail.contains("inflated to at least")),
            "{:?}",
            m.anomalies
        );
        let error = m.anomalies.iter().find(|a| a.kind == "ws-inflate-error");
        assert!(
            error.is_some_and(|a| a
                .detail
                .ends_with(&format!("the first {} searched", searched + 64))),
            "{:?}",
            m.anomalies
        );
    }

    #[test]
    fn malformed_framing_stops_the_direction() {
        for (bad, why) in [
            (vec![0x83, 0x80, 0, 0, 0, 0], "reserved opcode"),
            (vec![0x09, 0x80, 0, 0, 0, 0], "fragmented ping"),
            (vec![0xc1, 0x80, 0, 0, 0, 0], "RSV1 without deflate"),
            (vec![0x80, 0x80, 0, 0, 0, 0], "continuation alone"),
            (vec![0xa1, 0x80, 0, 0, 0, 0], "RSV2"),
            (
                vec![0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                "top length bit",
            ),
        ] {
            let after = frame(true, false, 1, b"never read");
            let ev = read_all(false, WsLimits::default(), &[&bad, &after]);
            assert!(messages(&ev).is_empty(), "{why}");
            assert_eq!(kinds(&ev), ["ws-malformed"], "{why}");
        }
    }

    #[test]
    fn a_gap_ends_the_reading_and_hands_out_the_partial_message() {
        let mut r = WsReader::new(WsLimits::default(), false);
        let mut out = Vec::new();
        let a = frame(false, false, 1, b"first half ");
        r.push(&a, TS, 1, &mut out);
        r.gap(100, &mut out);
        r.push(&frame(true, false, 1, b"lost"), TS, 2, &mut out);
        assert_eq!(messages(&out), [(false, b"first half ".to_vec(), true)]);
        assert_eq!(kinds(&out), ["ws-truncated", "ws-gap"]);
    }

    proptest! {
        /// Any cut of the bytes gives the messages of the uncut bytes.
        #[test]
        fn split_invariance(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..5),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut wire = Vec::new();
            for (i, p) in payloads.iter().enumerate() {
                wire.extend(frame(true, false, 1 + (i % 2) as u8, p));
                wire.extend(frame(true, false, 9, b""));
            }
            let at = cut.index(wire.len() + 1);
            let whole = read_all(false, WsLimits::default(), &[&wire]);
            let split = read_all(false, WsLimits::default(), &[&wire[..at], &wire[at..]]);
            prop_assert_eq!(messages(&whole), messages(&split));
            let want: Vec<Vec<u8>> = payloads.clone();
            let got: Vec<Vec<u8>> = messages(&whole).into_iter().map(|m| m.1).collect();
            prop_assert_eq!(got, want);
        }

        /// Hostile bytes: no panic, every message within the limit.
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2000), deflate in any::<bool>()) {
            let limits = WsLimits { max_message_bytes: 64, max_inflated_bytes: 1024 };
            let ev = read_all(deflate, limits, &[&bytes]);
            for m in messages(&ev) {
                prop_assert!(m.1.len() <= 64);
            }
        }
    }
}
