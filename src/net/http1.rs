//! HTTP/1.x over one reassembled TCP connection, both directions, sans I/O.
//!
//! The flow table hands [`Http1Conn`] the in-order bytes of each direction (and the
//! gaps the TCP layer could not fill); it answers with [`Http1Event`]s: each request as
//! soon as it is complete, each final response with the index of the request it
//! answers, connection-level anomalies, and the point where the connection stops being
//! HTTP (CONNECT tunnel, `101 Switching Protocols`). The flow table pairs requests and
//! responses into [`Exchange`](crate::exchange::Exchange)s.
//!
//! Heads are parsed by `httparse`; body framing is ours (RFC 9112 §6):
//! `Transfer-Encoding: chunked` (de-chunked with
//! [`ChunkedDecoder`]; trailer fields appended to the message's header fields, as
//! `http2` does, where its header fields are kept),
//! `Content-Length`, body until close for responses without either, no body for
//! responses to HEAD, 1xx, 204 and 304. Interim 1xx responses (`100 Continue`) are
//! skipped: they do not answer a request. `Content-Encoding` is left as is
//! (`crate::decode` undoes it).
//!
//! Policies:
//! - **Limits** ([`Http1Limits`]): a head larger than `max_head_bytes` or with more than
//!   `max_headers` fields abandons the message (anomaly, then resync); bodies are stored
//!   up to `max_body_bytes`, the rest is framed but not kept (`truncated`, anomaly
//!   `body-size-limit`); with a [`TailSearch`] ([`Http1Conn::with_tail_search`]) a
//!   request body's rest is searched as it passes instead (`HttpRequest::beyond_cap`);
//!   at most `max_pending_requests` request methods wait for their
//!   response (beyond that a response is framed as if its request were a GET). With a
//!   flow table's budget ([`Http1Conn::with_budget`]) a body also keeps no more once
//!   the table's messages in progress hold it all (`message-memory-limit`). Memory is
//!   reserved ahead for an announced length only in proportion to what arrived.
//! - **Pairing**: the n-th final response answers request n (`request_index`), counted
//!   from the first request seen. A final response that comes before any request it
//!   could answer (the connection picked up between a request and its response, a
//!   request lost in a gap or in undecryptable TLS early data, a server sending more
//!   responses than it was asked for) is a [`Http1Event::StrayResponse`] and takes no
//!   index, so the pairing of the later messages holds. A request lost in a gap while
//!   later ones were seen is not counted, so indices may then drift: a gap in the
//!   client direction makes pairing a guess.
//! - **Gaps**: inside a `Content-Length` body a gap that ends before the body does only
//!   marks the message truncated (framing is known, nothing is lost after it); inside a
//!   body that runs until close likewise. Anywhere else the current message is completed
//!   as truncated and the direction resyncs: it scans for the next request line
//!   (`METHOD SP target SP HTTP/1.x`) or status line (`HTTP/1.x NNN`).
//! - **Garbage** (not HTTP/1.x, HTTP/0.9, a malformed head, broken chunking): an
//!   anomaly, then that direction stops, unless it is resyncing after a gap, in which
//!   case it scans on.
//! - **Tunnels**: after a CONNECT request or a request with `Upgrade`, the client's
//!   further bytes are held (up to `max_head_bytes`) until the response decides: a 2xx
//!   to CONNECT or a 101 makes both directions opaque ([`Http1Event::Opaque`], once per
//!   direction; the bytes already received after the switch point are handed over by
//!   [`Http1Conn::take_opaque_bytes`], with the segments that carried them by
//!   [`Http1Conn::take_opaque_segments`]); any other answer resumes parsing, each held
//!   segment read with its own time and frame (`net::held`).
//!
//! Hot path: while a direction has nothing buffered, input is parsed in place; only an
//! incomplete head (or the held bytes of a tunnel request) is copied, once.

use std::collections::VecDeque;
use std::mem::MaybeUninit;

use crate::decode::chunked::{ChunkedDecoder, Malformed, Status};
use crate::exchange::{header, Anomaly, BeyondCapHit, Header};
use crate::net::held::{held_pieces, HeldSegment, HeldSegments};
use crate::net::message_budget::{self, BudgetShare, MessageBudget};
use crate::net::tail_search::{self, TailScan, TailSearch, TailStart};
use crate::net::{dns, http_dns};
use crate::timestamp::Timestamp;

/// Default [`Http1Limits::max_head_bytes`]: 64 KiB (browsers send < 16 KiB).
pub const DEFAULT_MAX_HEAD_BYTES: usize = 64 << 10;
/// Default [`Http1Limits::max_headers`]: 256 header fields.
pub const DEFAULT_MAX_HEADERS: usize = 256;
/// Default [`Http1Limits::max_pending_requests`]: 64 requests awaiting a response.
pub const DEFAULT_MAX_PENDING_REQUESTS: usize = 64;
/// Longest method token accepted before the head is called garbage.
const MAX_METHOD_LEN: usize = 32;
/// Largest piece fed to the chunk decoder at once: bounds its scratch output.
const CHUNK_FEED: usize = 16 << 10;
/// Most bytes handed over after a protocol switch; the caller should take them at once.
const MAX_OPAQUE_BYTES: usize = 64 << 10;

/// Methods recognised when resyncing after a gap (IANA HTTP method registry and a few
/// common extensions). Heads themselves may carry any token.
pub(crate) const METHODS: &[&str] = &[
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "CONNECT",
    "OPTIONS",
    "TRACE",
    "PATCH",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
    "REPORT",
    "SEARCH",
    "MKCALENDAR",
    "ACL",
    "BIND",
    "UNBIND",
    "REBIND",
    "CHECKOUT",
    "CHECKIN",
    "MERGE",
    "MKACTIVITY",
    "MKWORKSPACE",
    "VERSION-CONTROL",
    "UPDATE",
    "LABEL",
    "BASELINE-CONTROL",
    "ORDERPATCH",
    "PURGE",
    "LINK",
    "UNLINK",
    "M-SEARCH",
    "NOTIFY",
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "QUERY",
];

/// Limits on what one connection may make us hold; each, when hit, is an anomaly.
#[derive(Debug, Clone)]
pub struct Http1Limits {
    /// Largest request/status line plus header fields.
    pub max_head_bytes: usize,
    /// Most header fields in one head.
    pub max_headers: usize,
    /// Largest de-chunked body kept per message.
    pub max_body_bytes: usize,
    /// Most requests remembered while awaiting their responses (pipelining).
    pub max_pending_requests: usize,
    /// Keep response bodies (default). When `false` they are still framed (length,
    /// chunks, `truncated`, the same anomalies) but not stored: `body` stays empty,
    /// for consumers that never read it (the pcap tap analyses requests only), except
    /// the answers its DNS map reads: DNS-over-HTTPS answers and those to requests
    /// that may ask an HTTP DNS API ([`http_dns::may_ask_names`]).
    pub keep_response_bodies: bool,
    /// Keep response header fields and reason phrases (default). When `false` only the
    /// fields the framing reads (`Content-Length`, `Transfer-Encoding`) are kept and
    /// the reason is empty, for consumers that read only the status (`analyze`):
    /// converting each field cost two allocations. An answer the DNS map reads keeps
    /// all of them (its `Content-Encoding`).
    pub keep_response_headers: bool,
}

impl Default for Http1Limits {
    fn default() -> Self {
        Http1Limits {
            max_head_bytes: DEFAULT_MAX_HEAD_BYTES,
            max_headers: DEFAULT_MAX_HEADERS,
            max_body_bytes: crate::decode::DEFAULT_MAX_BODY_BYTES,
            max_pending_requests: DEFAULT_MAX_PENDING_REQUESTS,
            keep_response_bodies: true,
            keep_response_headers: true,
        }
    }
}

/// Where a message sits in the capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMeta {
    /// Time of the message's first byte.
    pub ts: Timestamp,
    /// Frame that carried its first byte.
    pub first_frame: u64,
    /// Frame that carried its last byte (or the last one seen, when truncated).
    pub last_frame: u64,
}

/// One request as seen on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: String,
    pub target: String,
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub version: String,
    pub headers: Vec<Header>,
    /// De-chunked body, at most `max_body_bytes`.
    pub body: Vec<u8>,
    /// Body length on the wire (de-chunked), including what was not kept or was lost.
    pub body_len: u64,
    /// The body is incomplete: size limit, gap or connection end.
    pub truncated: bool,
    pub meta: MessageMeta,
    pub anomalies: Vec<Anomaly>,
    /// The case's known values found in the body past `max_body_bytes`, when the
    /// parser had a [`TailSearch`].
    pub beyond_cap: Vec<BeyondCapHit>,
}

/// One final response as seen on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub reason: String,
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub version: String,
    pub headers: Vec<Header>,
    /// De-chunked body, at most `max_body_bytes`.
    pub body: Vec<u8>,
    /// Body length on the wire (de-chunked), including what was not kept or was lost.
    pub body_len: u64,
    /// The body is incomplete: size limit, gap or connection end.
    pub truncated: bool,
    pub meta: MessageMeta,
    pub anomalies: Vec<Anomaly>,
}

/// What the parser found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Http1Event {
    /// A complete (or truncated) request.
    Request(HttpRequest),
    /// A final response.
    Response {
        /// 0-based index of the request this answers on this connection.
        request_index: u64,
        response: HttpResponse,
    },
    /// A final response that came before the request it would answer: that request
    /// preceded the capture, was lost in a gap or in undecryptable early data, or
    /// was never sent (a server out of step). It answers no request, so the
    /// responses after it still answer the requests after it.
    StrayResponse(HttpResponse),
    /// This direction stopped being HTTP (tunnel or upgrade); later bytes are the
    /// caller's (see [`Http1Conn::take_opaque_bytes`]).
    Opaque { from_client: bool },
    /// The client's first message does not start like HTTP/1.x (nor is it HTTP/0.9
    /// with headers the parser could read): its bytes from that message on are the
    /// caller's, like an `Opaque` direction's, to read as another protocol.
    NotHttp,
    /// Something odd about the connection, not tied to an emitted message.
    Anomaly(Anomaly),
}

/// How a body is delimited.
#[derive(Debug)]
enum Framing {
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
}

#[derive(Debug)]
enum Start {
    Request {
        method: String,
        target: String,
    },
    Response {
        status: u16,
        reason: String,
        request_index: u64,
        /// No request had begun for `request_index` when the head was read.
        stray: bool,
    },
}

/// A message whose head is parsed and whose body is being read.
#[derive(Debug)]
struct Partial {
    start: Start,
    version: String,
    headers: Vec<Header>,
    body: Vec<u8>,
    /// Bytes of `body` that would be stored had it been kept (response bodies with
    /// `keep_response_bodies` off); 0 when it is kept.
    unkept: usize,
    body_len: u64,
    truncated: bool,
    /// The table's budget of message bytes ran out: nothing more of this body is kept.
    cut_by_budget: bool,
    /// The body is stored: a request's, any response's with `keep_response_bodies`,
    /// else a DNS-over-HTTPS answer's or an HTTP DNS API's (the tap reads it for the
    /// address map) ...
    keep_body: bool,
    /// ... up to this many bytes: a possible DNS answer longer than any is read
    /// ([`DNS_ANSWER_KEEP`]) is given up, its bytes counted as `unkept`.
    keep_at_most: usize,
    /// A request body's search past `max_body_bytes`, once it got there.
    tail: Option<Box<dyn TailScan>>,
    /// Where in `body` the bytes kept since the last gap begin: the lead-in of a tail
    /// search (no value is made of bytes from both sides of a gap).
    since_gap: usize,
    meta: MessageMeta,
    anomalies: Vec<Anomaly>,
}

#[derive(Debug)]
enum Phase {
    /// Between messages or inside a head. `scanned`: bytes of the pending head already
    /// searched (never searched twice); `line_ok`: the first line was checked; `start`:
    /// time and frame of the head's first byte.
    Head {
        scanned: usize,
        line_ok: bool,
        start: Option<(Timestamp, u64)>,
    },
    Body {
        msg: Box<Partial>,
        framing: Framing,
    },
    /// Client bytes after a CONNECT/Upgrade request, held until the response decides
    /// (where they were captured: the direction's `held`).
    Hold,
    /// Looking for the next message start after a gap or garbage; `scanned` as in Head.
    Resync {
        scanned: usize,
    },
    Opaque,
    Stopped,
}

#[derive(Debug)]
struct Dir {
    /// Unconsumed bytes: an incomplete head, held tunnel bytes or a resync window.
    buf: Vec<u8>,
    phase: Phase,
    /// Since a gap: garbage makes the direction scan on instead of stopping.
    resyncing: bool,
    /// Bytes received after a protocol switch, for the caller.
    opaque: Vec<u8>,
    /// The segments `opaque` came in when those bytes were held for the answer (sent
    /// before it), the first at offset 0.
    opaque_segments: Vec<HeldSegment>,
    /// In a hold, the segments of the bytes held in `buf`.
    held: HeldSegments,
    last_frame: u64,
}

impl Dir {
    fn new() -> Self {
        Dir {
            buf: Vec::new(),
            phase: head_phase(),
            resyncing: false,
            opaque: Vec::new(),
            opaque_segments: Vec::new(),
            held: HeldSegments::default(),
            last_frame: 0,
        }
    }
}

fn head_phase() -> Phase {
    Phase::Head {
        scanned: 0,
        line_ok: false,
        start: None,
    }
}

/// What the response to a pending request depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MethodKind {
    Head,
    Connect,
    Upgrade,
    Other,
}

/// Most of a response body kept only because it may be a DNS answer (DoH, an HTTP
/// DNS API's): one byte past what `net::http_dns` reads (a DoH message is at most
/// 64 KiB too).
const DNS_ANSWER_KEEP: usize = http_dns::MAX_ANSWER_BYTES + 1;

/// A request awaiting its response.
#[derive(Debug, Clone, Copy)]
struct PendingRequest {
    index: u64,
    kind: MethodKind,
    /// Its query, or the form it posted (known once its body is), names a DNS name
    /// the way HTTP DNS APIs take one ([`http_dns::names_query`]): its response's
    /// body and header fields are kept whatever the limits say, for the tap's
    /// address map, as a DoH answer's are.
    asks_names: bool,
}

/// One HTTP/1.x connection, both directions; see the module doc.
#[derive(Debug)]
pub struct Http1Conn {
    limits: Http1Limits,
    client: Dir,
    server: Dir,
    /// Requests whose response has not been seen, oldest first.
    pending: VecDeque<PendingRequest>,
    next_request: u64,
    next_response: u64,
    /// Index of the CONNECT/Upgrade request whose answer the client side waits for.
    hold_for: Option<u64>,
    pending_overflow_reported: bool,
    /// Body bytes of the messages being read, in the flow table's budget.
    held: BudgetShare,
    /// Searches request bodies past `max_body_bytes` (none: that rest is dropped).
    tail_search: Option<TailSearch>,
}

/// Result of one step of a direction's state machine.
enum Step {
    /// Consumed this many bytes; call again.
    Go(usize),
    /// Consumed this many bytes; the rest needs more input.
    Wait(usize),
}

impl Http1Conn {
    /// A connection at its start, both directions expecting a head.
    pub fn new(limits: Http1Limits) -> Self {
        Http1Conn {
            limits,
            client: Dir::new(),
            server: Dir::new(),
            pending: VecDeque::new(),
            next_request: 0,
            next_response: 0,
            hold_for: None,
            pending_overflow_reported: false,
            held: BudgetShare::default(),
            tail_search: None,
        }
    }

    /// Keeps the bodies of messages being read within `budget` too, shared with other
    /// connections (see [`message_budget`]).
    pub fn with_budget(mut self, budget: &MessageBudget) -> Self {
        self.held = BudgetShare::of(budget);
        self
    }

    /// Searches each request body's bytes past `max_body_bytes` with `search` as
    /// they pass, instead of only counting them.
    pub fn with_tail_search(mut self, search: Option<TailSearch>) -> Self {
        self.tail_search = search;
        self
    }

    /// In-order bytes from the client, carried by `frame` captured at `ts`.
    pub fn client_data(
        &mut self,
        data: &[u8],
        ts: Timestamp,
        frame: u64,
        out: &mut Vec<Http1Event>,
    ) {
        self.data(true, data, ts, frame, out);
    }

    /// In-order bytes from the server, carried by `frame` captured at `ts`.
    pub fn server_data(
        &mut self,
        data: &[u8],
        ts: Timestamp,
        frame: u64,
        out: &mut Vec<Http1Event>,
    ) {
        self.data(false, data, ts, frame, out);
    }

    /// `len` bytes from the client were lost.
    pub fn client_gap(&mut self, len: u64, out: &mut Vec<Http1Event>) {
        self.gap(true, len, out);
        self.sync_held();
    }

    /// `len` bytes from the server were lost.
    pub fn server_gap(&mut self, len: u64, out: &mut Vec<Http1Event>) {
        self.gap(false, len, out);
        self.sync_held();
    }

    /// Connection closed (FIN/RST/timeout/end of capture): a body-until-close response
    /// completes; half-read messages are emitted truncated with an anomaly.
    pub fn close(&mut self, out: &mut Vec<Http1Event>) {
        for client in [true, false] {
            let dir = self.dir(client);
            let phase = std::mem::replace(&mut dir.phase, Phase::Stopped);
            let had_bytes = !dir.buf.is_empty();
            dir.buf = Vec::new();
            match phase {
                Phase::Body {
                    mut msg,
                    framing: Framing::UntilClose,
                } => self.finish(client, &mut msg, out),
                Phase::Body { mut msg, .. } => {
                    mark_truncated(
                        &mut msg,
                        "http-truncated",
                        "connection ended inside the body",
                    );
                    self.finish(client, &mut msg, out);
                }
                Phase::Hold if had_bytes => {
                    out.push(Http1Event::Anomaly(Anomaly::new(
                        "http-truncated",
                        "connection ended with client bytes held after a CONNECT/Upgrade request",
                    )));
                }
                Phase::Head { start: Some(_), .. } if had_bytes => {
                    out.push(Http1Event::Anomaly(Anomaly::new(
                        "http-truncated",
                        format!("connection ended inside a {} head", side(client)),
                    )));
                }
                _ => {}
            }
            let dir = self.dir(client);
            dir.phase = Phase::Stopped;
            dir.buf = Vec::new();
            dir.held = HeldSegments::default();
        }
        self.held.sync(0);
    }

    /// Takes the bytes of one direction received after it became opaque (at most
    /// 64 KiB; later data is the caller's to route elsewhere).
    pub fn take_opaque_bytes(&mut self, from_client: bool) -> Vec<u8> {
        std::mem::take(&mut self.dir(from_client).opaque)
    }

    /// The segments that carried the bytes [`Self::take_opaque_bytes`] hands out (see
    /// [`held_pieces`]), when they were sent before the switch and held for its
    /// answer (a WebSocket message written with the upgrade request): those bytes
    /// were captured then, not when the answer came. Empty when nothing was held.
    pub fn take_opaque_segments(&mut self, from_client: bool) -> Vec<HeldSegment> {
        std::mem::take(&mut self.dir(from_client).opaque_segments)
    }

    /// Whether both directions stopped being parsed (opaque, garbage or closed).
    pub fn is_done(&self) -> bool {
        let done = |d: &Dir| matches!(d.phase, Phase::Opaque | Phase::Stopped);
        done(&self.client) && done(&self.server)
    }

    fn dir(&mut self, client: bool) -> &mut Dir {
        if client {
            &mut self.client
        } else {
            &mut self.server
        }
    }

    fn data(
        &mut self,
        client: bool,
        data: &[u8],
        ts: Timestamp,
        frame: u64,
        out: &mut Vec<Http1Event>,
    ) {
        if data.is_empty() {
            // Nothing arrived: in particular no frame to record as a message's last.
            return;
        }
        let dir = self.dir(client);
        dir.last_frame = frame;
        match dir.phase {
            Phase::Stopped => return,
            Phase::Opaque => {
                push_opaque(&mut dir.opaque, data);
                return;
            }
            _ => {}
        }
        if dir.buf.is_empty() {
            // In place: no copy unless something is left over.
            let used = self.run(client, data, ts, frame, out);
            let rest = data.get(used..).unwrap_or_default();
            if !rest.is_empty() {
                self.keep(client, rest.to_vec(), 0, out);
            }
        } else {
            let dir = self.dir(client);
            if matches!(dir.phase, Phase::Hold) {
                // More bytes after those held (which noted their first segment).
                dir.held.note(dir.buf.len(), ts, frame);
            }
            let mut buf = std::mem::take(&mut self.dir(client).buf);
            let kept_before = buf.capacity();
            buf.extend_from_slice(data);
            let used = self.run(client, &buf, ts, frame, out);
            buf.drain(..used.min(buf.len()));
            self.keep(client, buf, kept_before, out);
        }
        self.sync_held();
    }

    /// Sets the budget share to the bytes the two directions hold now: bodies, and
    /// what waits in their buffers (a head in progress, client bytes held after a
    /// `CONNECT`, a resync window). Messages handed out since the last input gave
    /// theirs back. A buffer counts by its capacity: it grows by doubling as
    /// segments come, and unlike a body nothing bounds the number of buffers held
    /// but the budget (twice the memory, under a flood of heads, otherwise).
    fn sync_held(&mut self) {
        let held = |d: &Dir| {
            d.buf.capacity()
                + match &d.phase {
                    Phase::Body {
                        msg,
                        framing: Framing::Chunked(dec),
                    } => msg.body.len() + dec.trailer_held(),
                    Phase::Body { msg, .. } => msg.body.len(),
                    _ => 0,
                }
        };
        let now = held(&self.client) + held(&self.server);
        self.held.sync(now);
    }

    /// Stores what `run` left unconsumed (in a buffer that held `kept_before` bytes
    /// of capacity before this input), within limits: the head limit per connection,
    /// and the table's budget of message bytes, in which a head counts as header
    /// fields do. A head or held bytes the budget has no room for are given up
    /// (anomaly [`message_budget::ANOMALY`]), as a head over the limit is; a resync
    /// window drops its bytes, as it drops old ones.
    fn keep(
        &mut self,
        client: bool,
        mut rest: Vec<u8>,
        kept_before: usize,
        out: &mut Vec<Http1Event>,
    ) {
        let limit = self.limits.max_head_bytes;
        // A buffer drained by the messages read from it gives its room back: a
        // connection does not keep, for its lifetime, the largest head it once waited on.
        if rest.is_empty() {
            rest = Vec::new();
        } else if rest.capacity() / 2 > rest.len() {
            rest.shrink_to_fit();
        }
        let growth = rest.capacity().saturating_sub(kept_before);
        let room = growth == 0 || self.held.has_room_for_headers(growth);
        let detail = |what: &str| self.held.cut_detail(what);
        let dir = if client {
            &mut self.client
        } else {
            &mut self.server
        };
        match dir.phase {
            Phase::Opaque | Phase::Stopped => return,
            Phase::Hold if rest.len() > limit => {
                dir.phase = Phase::Stopped;
                dir.buf = Vec::new();
                dir.held = HeldSegments::default();
                out.push(Http1Event::Anomaly(Anomaly::new(
                    "http-hold-limit",
                    format!("more than {limit} client bytes before the answer to a CONNECT/Upgrade request"),
                )));
                return;
            }
            Phase::Hold if !room => {
                dir.phase = Phase::Stopped;
                dir.buf = Vec::new();
                dir.held = HeldSegments::default();
                let what = "client bytes after a CONNECT/Upgrade request not kept";
                out.push(Http1Event::Anomaly(Anomaly::new(
                    message_budget::ANOMALY,
                    detail(what),
                )));
                return;
            }
            Phase::Head { .. } if !room => {
                dir.buf = Vec::new();
                dir.resyncing = true;
                dir.phase = Phase::Resync { scanned: 0 };
                let what = format!("{} head abandoned", side(client));
                out.push(Http1Event::Anomaly(Anomaly::new(
                    message_budget::ANOMALY,
                    detail(&what),
                )));
                return;
            }
            Phase::Resync { .. } if !room => {
                dir.buf = Vec::new();
                dir.phase = Phase::Resync { scanned: 0 };
                return;
            }
            _ => {}
        }
        // `run` never leaves bytes in the buffer of the direction it ran.
        dir.buf = rest;
    }

    /// Runs the state machine of one direction over `input`; returns bytes consumed.
    fn run(
        &mut self,
        client: bool,
        input: &[u8],
        ts: Timestamp,
        frame: u64,
        out: &mut Vec<Http1Event>,
    ) -> usize {
        let mut pos = 0;
        loop {
            let rest = input.get(pos..).unwrap_or_default();
            let phase = std::mem::replace(&mut self.dir(client).phase, Phase::Stopped);
            let step = match phase {
                Phase::Head {
                    scanned,
                    line_ok,
                    start,
                } => self.head(client, rest, scanned, line_ok, start, ts, frame, out),
                Phase::Body { msg, framing } => self.body(client, rest, msg, framing, frame, out),
                Phase::Resync { scanned } => self.resync(client, rest, scanned),
                Phase::Hold => {
                    let dir = self.dir(client);
                    if !rest.is_empty() && dir.held.is_empty() {
                        // The hold's first bytes: the start of what it holds.
                        dir.held.note(0, ts, frame);
                    }
                    dir.phase = Phase::Hold;
                    Step::Wait(0)
                }
                Phase::Opaque => {
                    let dir = self.dir(client);
                    dir.phase = Phase::Opaque;
                    push_opaque(&mut dir.opaque, rest);
                    Step::Wait(rest.len())
                }
                Phase::Stopped => Step::Wait(rest.len()),
            };
            match step {
                Step::Go(n) => pos += n,
                Step::Wait(n) => return pos + n,
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn head(
        &mut self,
        client: bool,
        rest: &[u8],
        mut scanned: usize,
        mut line_ok: bool,
        mut start: Option<(Timestamp, u64)>,
        ts: Timestamp,
        frame: u64,
        out: &mut Vec<Http1Event>,
    ) -> Step {
        if start.is_none() {
            // Blank lines between messages are tolerated (RFC 9112 §2.2).
            let blank = rest
                .iter()
                .take_while(|b| matches!(b, b'\r' | b'\n'))
                .count();
            if blank == rest.len() {
                self.dir(client).phase = head_phase();
                return Step::Wait(blank);
            }
            if blank > 0 {
                self.dir(client).phase = head_phase();
                return Step::Go(blank);
            }
            start = Some((ts, frame));
        }
        let limit = self.limits.max_head_bytes;
        let window = &rest[..rest.len().min(limit.saturating_add(4))];
        if !line_ok {
            match memchr::memchr(b'\n', window.get(scanned..).unwrap_or_default()) {
                Some(i) => {
                    let end = scanned + i;
                    if let Err(a) = check_first_line(client, &window[..end]) {
                        return self.first_line_garbage(client, a, out);
                    }
                    line_ok = true;
                    scanned = end;
                }
                None => {
                    if let Err(a) = check_prefix(client, window) {
                        return self.first_line_garbage(client, a, out);
                    }
                    scanned = window.len();
                }
            }
        }
        let mut end = None;
        if line_ok {
            // The head ends at LF (CR) LF; `scanned` is where the next LF is looked for.
            let mut j = scanned;
            while let Some(i) = memchr::memchr(b'\n', window.get(j..).unwrap_or_default()) {
                let k = j + i;
                match (window.get(k + 1), window.get(k + 2)) {
                    (Some(b'\n'), _) => {
                        end = Some(k + 2);
                        break;
                    }
                    (Some(b'\r'), Some(b'\n')) => {
                        end = Some(k + 3);
                        break;
                    }
                    (None, _) | (Some(b'\r'), None) => break,
                    _ => j = k + 1,
                }
            }
            scanned = match end {
                Some(_) => scanned,
                // An LF in the last two bytes may still start the end: look again.
                None => window.len().saturating_sub(2).max(scanned),
            };
        }
        match end {
            Some(e) if e <= limit => {
                let (t, f) = start.unwrap_or((ts, frame));
                let meta = MessageMeta {
                    ts: t,
                    first_frame: f,
                    last_frame: frame,
                };
                self.parsed_head(client, &rest[..e], meta, out)
                    .map_or_else(|| Step::Wait(0), |()| Step::Go(e))
            }
            _ if rest.len() > limit => {
                out.push(Http1Event::Anomaly(Anomaly::new(
                    "http-head-too-large",
                    format!("{} head larger than {limit} bytes abandoned", side(client)),
                )));
                let dir = self.dir(client);
                dir.resyncing = true;
                dir.phase = Phase::Resync { scanned: 0 };
                Step::Go(limit)
            }
            _ => {
                self.dir(client).phase = Phase::Head {
                    scanned,
                    line_ok,
                    start,
                };
                Step::Wait(0)
            }
        }
    }

    /// A first line that is not HTTP/1.x. When it is the client's first message, its
    /// bytes (from that line on) go to the caller ([`Http1Event::NotHttp`]): the
    /// connection was taken for HTTP on its first bytes, and may still carry personal
    /// data in another form. Otherwise as [`Http1Conn::garbage`].
    fn first_line_garbage(&mut self, client: bool, a: Anomaly, out: &mut Vec<Http1Event>) -> Step {
        let first_message = client && self.next_request == 0 && !self.client.resyncing;
        if !first_message {
            return self.garbage(client, a, out);
        }
        out.push(Http1Event::Anomaly(a));
        out.push(Http1Event::NotHttp);
        // The `Opaque` phase keeps the bytes from here on (bounded) for the caller.
        self.client.phase = Phase::Opaque;
        Step::Go(0)
    }

    /// Garbage where a head should start: stop, or scan on after a gap.
    fn garbage(&mut self, client: bool, a: Anomaly, out: &mut Vec<Http1Event>) -> Step {
        out.push(Http1Event::Anomaly(a));
        let dir = self.dir(client);
        if dir.resyncing {
            // Skip one byte so the same false start is not found again.
            dir.phase = Phase::Resync { scanned: 0 };
            Step::Go(1)
        } else {
            dir.phase = Phase::Stopped;
            dir.buf = Vec::new();
            Step::Wait(0)
        }
    }

    /// Parses a complete head and sets the next phase. `None` when the phase was set to
    /// one that consumes nothing more from this input (garbage, stop).
    fn parsed_head(
        &mut self,
        client: bool,
        head: &[u8],
        meta: MessageMeta,
        out: &mut Vec<Http1Event>,
    ) -> Option<()> {
        let n = self.limits.max_headers.max(1);
        // Uninitialised slots: httparse writes each header it returns before handing
        // the filled prefix back, so the 8 KiB of the array need not be zeroed first
        // (they were, once per message head).
        let mut small =
            [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; DEFAULT_MAX_HEADERS];
        let mut big;
        let fields: &mut [MaybeUninit<httparse::Header<'_>>] = if n <= small.len() {
            &mut small[..n]
        } else {
            big = Vec::with_capacity(n);
            big.resize_with(n, MaybeUninit::uninit);
            &mut big
        };
        let cfg = head_parser_config();
        // A response that may be an HTTP DNS API's answer: its fields and body are
        // kept for the tap's address map.
        let lookup_answer = !client
            && self
                .pending_request(self.next_response)
                .is_some_and(|p| p.asks_names);
        let parsed = if client {
            let mut req = httparse::Request::new(&mut []);
            match cfg.parse_request_with_uninit_headers(&mut req, head, fields) {
                Ok(httparse::Status::Complete(_)) => {}
                Ok(httparse::Status::Partial) => {
                    return self.bad_head(client, httparse::Error::Token, out)
                }
                Err(e) => return self.bad_head(client, e, out),
            }
            let headers = convert(req.headers);
            (
                Start::Request {
                    method: req.method.unwrap_or_default().to_string(),
                    target: req.path.unwrap_or_default().to_string(),
                },
                req.version.unwrap_or(1),
                headers,
            )
        } else {
            let mut resp = httparse::Response::new(&mut []);
            match cfg.parse_response_with_uninit_headers(&mut resp, head, fields) {
                Ok(httparse::Status::Complete(_)) => {}
                Ok(httparse::Status::Partial) => {
                    return self.bad_head(client, httparse::Error::Token, out)
                }
                Err(e) => return self.bad_head(client, e, out),
            }
            let keep = self.limits.keep_response_headers;
            let headers = if keep || lookup_answer {
                convert(resp.headers)
            } else {
                convert_framing(resp.headers)
            };
            (
                Start::Response {
                    status: resp.code.unwrap_or_default(),
                    reason: match resp.reason {
                        Some(r) if keep => r.to_string(),
                        _ => String::new(),
                    },
                    request_index: self.next_response,
                    stray: self.next_response >= self.next_request,
                },
                resp.version.unwrap_or(1),
                headers,
            )
        };
        let (start, version, headers) = parsed;
        let kept_anyway = client || self.limits.keep_response_bodies;
        // Else only a possible DNS answer's, for the tap's address map.
        let keep_body = kept_anyway
            || lookup_answer
            || header(&headers, "content-type").is_some_and(dns::is_dns_message_type);
        let mut msg = Box::new(Partial {
            start,
            // Not `format!`: its machinery, once per message, for one of two strings.
            version: match version {
                0 => "HTTP/1.0".to_string(),
                1 => "HTTP/1.1".to_string(),
                v => format!("HTTP/1.{v}"),
            },
            keep_body,
            keep_at_most: if kept_anyway {
                usize::MAX
            } else {
                DNS_ANSWER_KEEP
            },
            headers,
            body: Vec::new(),
            unkept: 0,
            body_len: 0,
            truncated: false,
            cut_by_budget: false,
            tail: None,
            since_gap: 0,
            meta,
            anomalies: Vec::new(),
        });
        if client {
            self.request_head(&msg, out);
        }
        let framing = match self.framing(&mut msg) {
            Ok(f) => f,
            Err(a) => {
                // The head is still worth reporting; the framing after it is lost.
                msg.anomalies.push(a);
                msg.truncated = true;
                self.finish(client, &mut msg, out);
                let dir = self.dir(client);
                if !matches!(dir.phase, Phase::Opaque | Phase::Stopped) {
                    dir.resyncing = true;
                    dir.phase = Phase::Resync { scanned: 0 };
                }
                return Some(());
            }
        };
        match framing {
            None => self.finish(client, &mut msg, out),
            Some(framing) => self.dir(client).phase = Phase::Body { msg, framing },
        }
        Some(())
    }

    fn bad_head(
        &mut self,
        client: bool,
        e: httparse::Error,
        out: &mut Vec<Http1Event>,
    ) -> Option<()> {
        let kind = if e == httparse::Error::TooManyHeaders {
            "http-too-many-headers"
        } else {
            "http-malformed-head"
        };
        let a = Anomaly::new(kind, format!("{} head: {e}", side(client)));
        match self.garbage(client, a, out) {
            // Resyncing: the whole head is skipped (`Some`), scanning resumes after it.
            Step::Go(_) => Some(()),
            Step::Wait(_) => None,
        }
    }

    /// Remembers a request's method kind for framing its response.
    fn request_head(&mut self, msg: &Partial, out: &mut Vec<Http1Event>) {
        let Start::Request { method, target } = &msg.start else {
            return;
        };
        let index = self.next_request;
        self.next_request += 1;
        let kind = if method.eq_ignore_ascii_case("HEAD") {
            MethodKind::Head
        } else if method.eq_ignore_ascii_case("CONNECT") {
            MethodKind::Connect
        } else if asks_upgrade(&msg.headers) {
            MethodKind::Upgrade
        } else {
            MethodKind::Other
        };
        if self.pending.len() >= self.limits.max_pending_requests {
            // Reported once per connection; the response is framed as if to a GET.
            if !self.pending_overflow_reported {
                self.pending_overflow_reported = true;
                out.push(Http1Event::Anomaly(Anomaly::new(
                    "http-pending-limit",
                    format!(
                        "more than {} requests awaiting responses",
                        self.limits.max_pending_requests
                    ),
                )));
            }
            return;
        }
        self.pending.push_back(PendingRequest {
            index,
            kind,
            asks_names: http_dns::may_ask_names(target),
        });
    }

    /// Body framing of a parsed head: `None` when it has no body.
    fn framing(&mut self, msg: &mut Partial) -> Result<Option<Framing>, Anomaly> {
        let (chunked, te) = transfer_encoding(&msg.headers);
        let length = content_length(&msg.headers)?;
        match &msg.start {
            Start::Request { .. } => {
                if te {
                    if !chunked {
                        return Err(Anomaly::new(
                            "http-malformed-head",
                            "request Transfer-Encoding does not end in chunked",
                        ));
                    }
                    if length.is_some() {
                        msg.anomalies.push(Anomaly::new(
                            "http-length-conflict",
                            "request has both Transfer-Encoding and Content-Length; chunked wins",
                        ));
                    }
                    let trailer = self.limits.max_head_bytes;
                    return Ok(Some(Framing::Chunked(
                        ChunkedDecoder::new().keeping_trailer(trailer),
                    )));
                }
                Ok(match length {
                    Some(0) | None => None,
                    Some(n) => Some(Framing::Length(n)),
                })
            }
            Start::Response {
                status,
                request_index,
                ..
            } => {
                let kind = self.kind_of(*request_index);
                if (100..200).contains(status)
                    || *status == 204
                    || *status == 304
                    || kind == MethodKind::Head
                {
                    return Ok(None);
                }
                if kind == MethodKind::Connect && (200..300).contains(status) {
                    return Ok(None);
                }
                if te {
                    if length.is_some() {
                        msg.anomalies.push(Anomaly::new(
                            "http-length-conflict",
                            "response has both Transfer-Encoding and Content-Length; Transfer-Encoding wins",
                        ));
                    }
                    return Ok(Some(if chunked {
                        // Trailer fields are kept where the head's fields are.
                        let trailer = if self.limits.keep_response_headers {
                            self.limits.max_head_bytes
                        } else {
                            0
                        };
                        Framing::Chunked(ChunkedDecoder::new().keeping_trailer(trailer))
                    } else {
                        Framing::UntilClose
                    }));
                }
                Ok(Some(match length {
                    Some(0) => return Ok(None),
                    Some(n) => Framing::Length(n),
                    None => Framing::UntilClose,
                }))
            }
        }
    }

    fn kind_of(&self, index: u64) -> MethodKind {
        self.pending_request(index)
            .map_or(MethodKind::Other, |p| p.kind)
    }

    fn pending_request(&self, index: u64) -> Option<&PendingRequest> {
        self.pending.iter().find(|p| p.index == index)
    }

    fn body(
        &mut self,
        client: bool,
        rest: &[u8],
        mut msg: Box<Partial>,
        framing: Framing,
        frame: u64,
        out: &mut Vec<Http1Event>,
    ) -> Step {
        let max = self.limits.max_body_bytes;
        let keep = msg.keep_body;
        if !rest.is_empty() {
            msg.meta.last_frame = frame;
        }
        match framing {
            Framing::Length(left) => {
                let take = usize::try_from(left).unwrap_or(usize::MAX).min(rest.len());
                if msg.body.is_empty() && keep {
                    // Room for the announced body at once instead of growing segment
                    // by segment; capped, since the length is only the sender's claim,
                    // and in proportion to the bytes already here, so that announcing
                    // large bodies and sending none cannot make us allocate.
                    let announced = usize::try_from(left).unwrap_or(usize::MAX);
                    let ahead = announced
                        .min(max)
                        .min(msg.keep_at_most)
                        .min(BODY_RESERVE_CAP)
                        .min(take.saturating_mul(BODY_RESERVE_FACTOR));
                    if self.held.has_room(ahead) {
                        msg.body.reserve(ahead);
                    }
                }
                let search = self.tail_search.as_ref();
                push_body(&mut msg, &rest[..take], max, keep, &mut self.held, search);
                let left = left - take as u64;
                if left == 0 {
                    self.finish(client, &mut msg, out);
                    Step::Go(take)
                } else {
                    self.dir(client).phase = Phase::Body {
                        msg,
                        framing: Framing::Length(left),
                    };
                    Step::Wait(take)
                }
            }
            Framing::UntilClose => {
                let search = self.tail_search.as_ref();
                push_body(&mut msg, rest, max, keep, &mut self.held, search);
                self.dir(client).phase = Phase::Body {
                    msg,
                    framing: Framing::UntilClose,
                };
                Step::Wait(rest.len())
            }
            Framing::Chunked(mut dec) => {
                let mut used = 0;
                let mut scratch = Vec::new();
                while used < rest.len() {
                    let piece = &rest[used..rest.len().min(used + CHUNK_FEED)];
                    scratch.clear();
                    let trailer_before = dec.trailer_held();
                    let st = dec.feed(piece, &mut scratch);
                    let search = self.tail_search.as_ref();
                    push_body(&mut msg, &scratch, max, keep, &mut self.held, search);
                    let trailer_growth = dec.trailer_held().saturating_sub(trailer_before);
                    if trailer_growth > 0 && !self.held.has_room_for_headers(trailer_growth) {
                        dec.give_up_trailer();
                        msg.anomalies.push(Anomaly::new(
                            message_budget::ANOMALY,
                            self.held.cut_detail("trailer fields not kept"),
                        ));
                    }
                    match st {
                        Ok(Status::NeedMore) => used += piece.len(),
                        Ok(Status::Done { consumed }) => {
                            append_trailer(&self.limits, &mut msg, &dec);
                            self.finish(client, &mut msg, out);
                            return Step::Go(used + consumed);
                        }
                        Err(Malformed { consumed }) => {
                            mark_truncated(
                                &mut msg,
                                "http-chunked-malformed",
                                "broken chunked framing",
                            );
                            self.finish(client, &mut msg, out);
                            // The framing is lost: look for the next message.
                            let dir = self.dir(client);
                            dir.resyncing = true;
                            dir.phase = Phase::Resync { scanned: 0 };
                            return Step::Go(used + consumed);
                        }
                    }
                }
                self.dir(client).phase = Phase::Body {
                    msg,
                    framing: Framing::Chunked(dec),
                };
                Step::Wait(rest.len())
            }
        }
    }

    /// Scans for the next message start; see the module doc.
    fn resync(&mut self, client: bool, rest: &[u8], scanned: usize) -> Step {
        let keep = self.limits.max_head_bytes.max(64);
        let finder = memchr::memmem::Finder::new(b"HTTP/1.");
        let mut from = scanned.min(rest.len());
        while let Some(i) = finder.find(&rest[from..]) {
            let p = from + i;
            let found = if client {
                request_start(rest, p, keep)
            } else {
                status_start(rest, p)
            };
            match found {
                Found::At(s) => {
                    self.dir(client).phase = head_phase();
                    return Step::Go(s);
                }
                Found::NeedMore => {
                    return self.resync_wait(client, rest, p, keep);
                }
                Found::No => from = p + 1,
            }
        }
        // "HTTP/1." may be cut at the end: rescan its possible start.
        self.resync_wait(client, rest, rest.len().saturating_sub(6), keep)
    }

    /// Stays in resync having searched up to `scanned`; drops old bytes in batches.
    fn resync_wait(&mut self, client: bool, rest: &[u8], scanned: usize, keep: usize) -> Step {
        let drop = if rest.len() > 2 * keep {
            rest.len() - keep
        } else {
            0
        };
        let drop = drop.min(scanned);
        self.dir(client).phase = Phase::Resync {
            scanned: scanned - drop,
        };
        Step::Wait(drop)
    }

    /// Emits a complete message and moves its direction on.
    fn finish(&mut self, client: bool, msg: &mut Partial, out: &mut Vec<Http1Event>) {
        let dir = self.dir(client);
        dir.resyncing = false;
        dir.phase = head_phase();
        let partial = std::mem::replace(
            msg,
            Partial {
                start: Start::Request {
                    method: String::new(),
                    target: String::new(),
                },
                version: String::new(),
                headers: Vec::new(),
                body: Vec::new(),
                unkept: 0,
                body_len: 0,
                truncated: false,
                cut_by_budget: false,
                keep_body: false,
                keep_at_most: 0,
                tail: None,
                since_gap: 0,
                meta: msg.meta.clone(),
                anomalies: Vec::new(),
            },
        );
        // Its body leaves: a message after it on the same input sees the room.
        self.sync_held();
        match partial.start {
            Start::Request { method, target } => {
                let index = self.next_request.saturating_sub(1);
                // A lookup posted as a form is known once its body is: its answer is
                // kept as one asked in the target's query.
                if let Some(p) = self.pending.iter_mut().rev().find(|p| p.index == index) {
                    p.asks_names = p.asks_names
                        || http_dns::form_names_query(&partial.headers, &partial.body).is_some();
                }
                let is_hold =
                    method.eq_ignore_ascii_case("CONNECT") || asks_upgrade(&partial.headers);
                let mut anomalies = partial.anomalies;
                let beyond_cap = partial
                    .tail
                    .map(|tail| tail_search::finish(tail, &mut anomalies))
                    .unwrap_or_default();
                out.push(Http1Event::Request(HttpRequest {
                    method,
                    target,
                    version: partial.version,
                    headers: partial.headers,
                    body: partial.body,
                    body_len: partial.body_len,
                    truncated: partial.truncated,
                    meta: partial.meta,
                    anomalies,
                    beyond_cap,
                }));
                if is_hold
                    && self.next_response <= index
                    && !matches!(self.client.phase, Phase::Stopped | Phase::Opaque)
                {
                    self.hold_for = Some(index);
                    self.client.phase = Phase::Hold;
                }
            }
            Start::Response {
                status,
                reason,
                request_index,
                stray,
            } => {
                if (100..200).contains(&status) && status != 101 {
                    // Interim response (100 Continue, 103 Early Hints): the real one follows.
                    return;
                }
                let kind = self.kind_of(request_index);
                let response = HttpResponse {
                    status,
                    reason,
                    version: partial.version,
                    headers: partial.headers,
                    body: partial.body,
                    body_len: partial.body_len,
                    truncated: partial.truncated,
                    meta: partial.meta,
                    anomalies: partial.anomalies,
                };
                if stray {
                    // Takes no index: the next response still answers the next request.
                    out.push(Http1Event::StrayResponse(response));
                    if status == 101 {
                        self.go_opaque(out);
                    }
                    return;
                }
                self.next_response = request_index + 1;
                while self
                    .pending
                    .front()
                    .is_some_and(|p| p.index <= request_index)
                {
                    self.pending.pop_front();
                }
                let switch =
                    status == 101 || (kind == MethodKind::Connect && (200..300).contains(&status));
                out.push(Http1Event::Response {
                    request_index,
                    response,
                });
                if switch {
                    self.go_opaque(out);
                } else if self.hold_for.is_some_and(|i| i <= request_index) {
                    self.hold_for = None;
                    self.release_hold(out);
                }
            }
        }
    }

    /// Both directions become opaque; bytes already held are handed over.
    fn go_opaque(&mut self, out: &mut Vec<Http1Event>) {
        for client in [false, true] {
            let dir = self.dir(client);
            if matches!(dir.phase, Phase::Stopped | Phase::Opaque) {
                continue;
            }
            let held = std::mem::take(&mut dir.buf);
            // Empty unless this direction held bytes for the answer.
            let segments = dir.held.take();
            if !held.is_empty() && dir.opaque.is_empty() {
                dir.opaque_segments = segments;
            }
            push_opaque(&mut dir.opaque, &held);
            dir.phase = Phase::Opaque;
            out.push(Http1Event::Opaque {
                from_client: client,
            });
        }
        self.hold_for = None;
    }

    /// The answer to a CONNECT/Upgrade request kept the connection HTTP: parse the held
    /// client bytes.
    fn release_hold(&mut self, out: &mut Vec<Http1Event>) {
        if !matches!(self.client.phase, Phase::Hold) {
            return;
        }
        self.client.phase = head_phase();
        let held = std::mem::take(&mut self.client.buf);
        let mut segments = self.client.held.take();
        if held.is_empty() {
            return;
        }
        if segments.is_empty() {
            // Held bytes note their first segment; read them whole rather than lose
            // them should that ever not be so.
            segments.push(HeldSegment {
                offset: 0,
                ts: Timestamp::default(),
                frame: self.client.last_frame,
            });
        }
        let last = self.client.last_frame;
        // Each segment as it came: a request in the held bytes is dated and located
        // where it was captured.
        for (piece, seg) in held_pieces(&held, &segments) {
            self.data(true, piece, seg.ts, seg.frame, out);
        }
        self.client.last_frame = last;
    }

    fn gap(&mut self, client: bool, len: u64, out: &mut Vec<Http1Event>) {
        if len == 0 {
            return;
        }
        let dir = self.dir(client);
        let phase = std::mem::replace(&mut dir.phase, Phase::Stopped);
        let had_bytes = !dir.buf.is_empty();
        dir.buf = Vec::new();
        dir.held = HeldSegments::default();
        let resync = Phase::Resync { scanned: 0 };
        let next = match phase {
            Phase::Stopped => Phase::Stopped,
            Phase::Opaque => Phase::Opaque,
            Phase::Body {
                mut msg,
                framing: Framing::Length(left),
            } if len < left => {
                mark_truncated(&mut msg, "http-gap", "bytes lost inside the body");
                msg.body_gap(len);
                Phase::Body {
                    msg,
                    framing: Framing::Length(left - len),
                }
            }
            Phase::Body {
                mut msg,
                framing: Framing::UntilClose,
            } => {
                mark_truncated(&mut msg, "http-gap", "bytes lost inside the body");
                msg.body_gap(len);
                Phase::Body {
                    msg,
                    framing: Framing::UntilClose,
                }
            }
            Phase::Body { mut msg, framing } => {
                if let Framing::Length(left) = framing {
                    msg.body_len = msg.body_len.saturating_add(left);
                }
                mark_truncated(&mut msg, "http-gap", "bytes lost at the end of the body");
                self.finish(client, &mut msg, out);
                if matches!(self.dir(client).phase, Phase::Opaque) {
                    return;
                }
                resync
            }
            Phase::Head { start, .. } => {
                if start.is_some() || had_bytes {
                    out.push(Http1Event::Anomaly(Anomaly::new(
                        "http-gap",
                        format!("bytes lost inside a {} head; message dropped", side(client)),
                    )));
                }
                resync
            }
            Phase::Hold => {
                out.push(Http1Event::Anomaly(Anomaly::new(
                    "http-gap",
                    "client bytes lost after a CONNECT/Upgrade request",
                )));
                Phase::Hold
            }
            Phase::Resync { .. } => resync,
        };
        let dir = self.dir(client);
        if matches!(next, Phase::Resync { .. }) {
            dir.resyncing = true;
        }
        dir.phase = next;
        self.sync_held();
    }
}

fn side(client: bool) -> &'static str {
    if client {
        "request"
    } else {
        "response"
    }
}

fn push_opaque(store: &mut Vec<u8>, data: &[u8]) {
    let room = MAX_OPAQUE_BYTES.saturating_sub(store.len());
    store.extend_from_slice(&data[..data.len().min(room)]);
}

/// Most body bytes reserved up front from a `Content-Length` (more grows as it comes).
const BODY_RESERVE_CAP: usize = 1 << 20;
/// Body bytes reserved up front at most per body byte received so far.
const BODY_RESERVE_FACTOR: usize = 16;

/// httparse's settings for heads and trailer sections: lenient where real clients and
/// servers are sloppy, and passing over a line that is no field rather than giving
/// up the message.
fn head_parser_config() -> httparse::ParserConfig {
    let mut cfg = httparse::ParserConfig::default();
    cfg.allow_spaces_after_header_name_in_responses(true)
        .allow_obsolete_multiline_headers_in_responses(true)
        .allow_multiple_spaces_in_response_status_delimiters(true)
        .ignore_invalid_headers_in_responses(true)
        .ignore_invalid_headers_in_requests(true);
    cfg
}

/// Appends the trailer fields `dec` kept to `msg`'s header fields, as the analysis
/// and the record read them (RFC 9112 §7.1.2 lets a sender put fields there that it
/// knows only once the body is sent), within `max_headers` fields in all. They are
/// read by the head's rules ([`head_parser_config`]: a line that is no field is passed
/// over), but a line httparse refuses outright, or a field past `max_headers`, costs
/// only itself; a section over `max_head_bytes` gives its complete lines.
fn append_trailer(limits: &Http1Limits, msg: &mut Partial, dec: &ChunkedDecoder) {
    let request = matches!(msg.start, Start::Request { .. });
    let who = if request { "request" } else { "response" };
    let mut section = dec.trailer_section();
    if dec.trailer_cut() {
        msg.anomalies.push(Anomaly::new(
            "http-trailer-too-large",
            format!(
                "{who} trailer section larger than {} bytes: the fields past that not kept",
                limits.max_head_bytes
            ),
        ));
        // Its complete field lines.
        let end = memchr::memrchr(b'\n', section).map_or(0, |i| i + 1);
        section = &section[..end];
    }
    if section.is_empty() {
        return;
    }
    let room = limits.max_headers.saturating_sub(msg.headers.len());
    let whole = match trailer_fields(request, section, room) {
        Ok(fields) => {
            msg.headers.extend(fields);
            return;
        }
        Err(e) => e,
    };
    // One line httparse refuses (a NUL in a value), or one field too many, fails the
    // whole section, where it would make a head garbage; here the body is read, so
    // each line is read alone, as far as there is room.
    let (mut over, mut bad) = (0usize, 0usize);
    for line in section.split_inclusive(|&b| b == b'\n') {
        let room = limits.max_headers.saturating_sub(msg.headers.len()).min(1);
        match trailer_fields(request, line, room) {
            Ok(fields) => msg.headers.extend(fields),
            Err(httparse::Error::TooManyHeaders) => over += 1,
            Err(_) => bad += 1,
        }
    }
    if over > 0 {
        msg.anomalies.push(Anomaly::new(
            "http-too-many-headers",
            format!(
                "{who} trailer: {over} field(s) past {} header fields in all not kept",
                limits.max_headers
            ),
        ));
    }
    if bad > 0 {
        msg.anomalies.push(Anomaly::new(
            "http-malformed-trailer",
            format!("{who} trailer section: {whole}; {bad} line(s) of it not read"),
        ));
    }
}

/// The header fields of `section` (field lines, each with its line end), at most
/// `room` of them, read by the head's rules; each marked as a trailer field.
fn trailer_fields(
    request: bool,
    section: &[u8],
    room: usize,
) -> Result<Vec<Header>, httparse::Error> {
    // httparse reads fields after a start line only: a made-up one lets the section
    // be read exactly as a head's fields are.
    let start: &[u8] = if request {
        b"GET / HTTP/1.1\r\n"
    } else {
        b"HTTP/1.1 200 OK\r\n"
    };
    let mut text = Vec::with_capacity(start.len() + section.len() + 2);
    text.extend_from_slice(start);
    text.extend_from_slice(section);
    text.extend_from_slice(b"\r\n");
    let mut slots = vec![httparse::EMPTY_HEADER; room];
    let cfg = head_parser_config();
    let mut fields = if request {
        let mut req = httparse::Request::new(&mut slots);
        cfg.parse_request(&mut req, &text)
            .map(|_| convert(req.headers))
    } else {
        let mut resp = httparse::Response::new(&mut slots);
        cfg.parse_response(&mut resp, &text)
            .map(|_| convert(resp.headers))
    }?;
    for field in &mut fields {
        field.trailer = true;
    }
    Ok(fields)
}

/// Appends `data` to the body (stored only when `keep`), up to `max` bytes kept and
/// within the table's budget (`held`); a request's bytes past `max` go to its tail
/// search, if there is one.
fn push_body(
    msg: &mut Partial,
    data: &[u8],
    max: usize,
    keep: bool,
    held: &mut BudgetShare,
    search: Option<&TailSearch>,
) {
    let offset = msg.body_len;
    msg.body_len = msg.body_len.saturating_add(data.len() as u64);
    if msg.cut_by_budget {
        return;
    }
    let mut keep = keep;
    if keep && msg.body.len().saturating_add(data.len()) > msg.keep_at_most {
        // Longer than any DNS answer read: the bytes so far are given up (the
        // budget gets them back at the next sync) and counted as never kept.
        msg.unkept = msg.unkept.saturating_add(msg.body.len());
        msg.body = Vec::new();
        msg.keep_body = false;
        keep = false;
    }
    // Counted the same whether or not the bytes are kept, so the limit, `truncated`
    // and the anomaly come out the same.
    let room = max.saturating_sub(msg.body.len() + msg.unkept);
    let want = data.len().min(room);
    if keep {
        let granted = held.grant(want);
        msg.body.extend_from_slice(&data[..granted]);
        if granted < want {
            msg.cut_by_budget = true;
            mark_truncated(
                msg,
                message_budget::ANOMALY,
                &held.cut_detail("body not kept past this point"),
            );
            return;
        }
    } else {
        msg.unkept += want;
    }
    if data.len() > room && !msg.anomalies.iter().any(|a| a.kind == "body-size-limit") {
        msg.truncated = true;
        msg.anomalies.push(Anomaly::new(
            "body-size-limit",
            format!("body larger than {max} bytes; the rest was not kept"),
        ));
    }
    let rest = data.get(want..).unwrap_or_default();
    let searched = keep && !rest.is_empty() && matches!(msg.start, Start::Request { .. });
    if let Some(search) = search.filter(|_| searched) {
        let tail = msg.tail.get_or_insert_with(|| {
            let content_encoding = tail_search::content_encoding(&msg.headers);
            search.start_at(TailStart {
                before: msg.body.get(msg.since_gap..).unwrap_or_default(),
                at: offset.saturating_add(want as u64),
                content_encoding: content_encoding.as_deref(),
            })
        });
        tail.feed(rest);
    }
}

impl Partial {
    /// `len` bytes of the body were lost.
    fn body_gap(&mut self, len: u64) {
        self.body_len = self.body_len.saturating_add(len);
        match self.tail.as_mut() {
            Some(tail) => tail.gap(len),
            None => self.since_gap = self.body.len(),
        }
    }
}

fn mark_truncated(msg: &mut Partial, kind: &str, detail: &str) {
    msg.truncated = true;
    if !msg.anomalies.iter().any(|a| a.kind == kind) {
        msg.anomalies.push(Anomaly::new(kind, detail));
    }
}

fn convert(fields: &[httparse::Header<'_>]) -> Vec<Header> {
    // Sized up front: `collect` through a filter starts small and grows (a
    // reallocation and copy at 4, 8, 16 fields).
    let mut headers = Vec::with_capacity(fields.len());
    headers.extend(
        fields
            .iter()
            .filter(|h| !h.name.is_empty())
            .map(|h| Header::new(h.name, h.value)),
    );
    headers
}

/// The fields of a head that [`Http1Conn::framing`] reads ([`transfer_encoding`],
/// [`content_length`]), in their order: framing from these is framing from all.
fn convert_framing(fields: &[httparse::Header<'_>]) -> Vec<Header> {
    fields
        .iter()
        .filter(|h| is_framing_field(h.name) || is_dns_message_field(h))
        .map(|h| Header::new(h.name, h.value))
        .collect()
}

/// A DNS-over-HTTPS answer's `Content-Type`, kept for the tap's address map.
fn is_dns_message_field(h: &httparse::Header<'_>) -> bool {
    h.name.eq_ignore_ascii_case("content-type") && dns::is_dns_message_type(h.value)
}

fn is_framing_field(name: &str) -> bool {
    name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("transfer-encoding")
}

/// (`chunked` is the last transfer coding, any `Transfer-Encoding` present).
fn transfer_encoding(headers: &[Header]) -> (bool, bool) {
    let mut last = None;
    let mut any = false;
    for h in headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("transfer-encoding"))
    {
        for coding in h.value.split(|&b| b == b',') {
            let c = coding.trim_ascii();
            if !c.is_empty() {
                any = true;
                last = Some(c);
            }
        }
    }
    (
        last.is_some_and(|c| c.eq_ignore_ascii_case(b"chunked")),
        any,
    )
}

/// The message's Content-Length: repeated identical values are one (RFC 9110 §8.6);
/// differing or non-numeric ones are an error.
fn content_length(headers: &[Header]) -> Result<Option<u64>, Anomaly> {
    let mut found: Option<u64> = None;
    for h in headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("content-length"))
    {
        for v in h.value.split(|&b| b == b',') {
            let v = v.trim_ascii();
            let n = parse_decimal(v).ok_or_else(|| {
                Anomaly::new(
                    "http-bad-length",
                    format!(
                        "Content-Length {:?} is not a number",
                        String::from_utf8_lossy(v)
                    ),
                )
            })?;
            if found.is_some_and(|f| f != n) {
                return Err(Anomaly::new(
                    "http-bad-length",
                    "conflicting Content-Length values",
                ));
            }
            found = Some(n);
        }
    }
    Ok(found)
}

fn parse_decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    v.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// Whether a comma-separated header value lists `token` (any case, spaces around
/// items ignored): `Connection: keep-alive, Upgrade`, `Upgrade: h2c`.
fn contains_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// Whether any line of the list-based field `name` in the head names `token`: RFC
/// 9110 §5.3 makes several lines one list (`Connection: keep-alive` then
/// `Connection: Upgrade`), and the proxy, on hyper, reads every line.
pub(crate) fn lists_token(headers: &[Header], name: &str, token: &[u8]) -> bool {
    headers
        .iter()
        .filter(|h| !h.trailer && h.name.eq_ignore_ascii_case(name))
        .any(|h| contains_token(&h.value, token))
}

/// A request that asks to switch protocols: an `Upgrade` field and `upgrade` among
/// its `Connection` options.
fn asks_upgrade(headers: &[Header]) -> bool {
    header(headers, "upgrade").is_some() && lists_token(headers, "connection", b"upgrade")
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Early rejection of a head that cannot become HTTP/1.x, before its first line ends.
fn check_prefix(client: bool, prefix: &[u8]) -> Result<(), Anomaly> {
    let bad = || {
        Err(Anomaly::new(
            "http-not-http",
            format!("{} does not start like HTTP/1.x", side(client)),
        ))
    };
    if client {
        let token = prefix.iter().take_while(|&&b| is_tchar(b)).count();
        if token > MAX_METHOD_LEN || (token < prefix.len() && (token == 0 || prefix[token] != b' '))
        {
            return bad();
        }
    } else {
        let n = prefix.len().min(7);
        if prefix[..n] != b"HTTP/1."[..n] {
            return bad();
        }
    }
    Ok(())
}

/// A complete first line (without its LF): `METHOD SP target SP HTTP/1.d` or
/// `HTTP/1.d SP NNN …`.
fn check_first_line(client: bool, line: &[u8]) -> Result<(), Anomaly> {
    check_prefix(client, line)?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let ok = if client {
        let mut parts = line.split(|&b| b == b' ').filter(|p| !p.is_empty());
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(_), Some(t), None, _) if !t.starts_with(b"HTTP/") => {
                return Err(Anomaly::new(
                    "http-0.9",
                    "request line without a version (HTTP/0.9)",
                ));
            }
            (Some(_), Some(_), Some(v), None) => is_version(v),
            _ => false,
        }
    } else {
        line.len() >= 12
            && is_version(&line[..8])
            && line[8] == b' '
            && line[9..12].iter().all(u8::is_ascii_digit)
    };
    if ok {
        Ok(())
    } else {
        Err(Anomaly::new(
            "http-not-http",
            format!(
                "{} line is not HTTP/1.x: {:?}",
                side(client),
                String::from_utf8_lossy(&line[..line.len().min(64)])
            ),
        ))
    }
}

fn is_version(v: &[u8]) -> bool {
    v.len() == 8 && v.starts_with(b"HTTP/1.") && v[7].is_ascii_digit()
}

enum Found {
    At(usize),
    NeedMore,
    No,
}

/// A request line whose version starts at `p` (`…METHOD SP target SP HTTP/1.d EOL`).
fn request_start(buf: &[u8], p: usize, keep: usize) -> Found {
    match (buf.get(p + 7), buf.get(p + 8)) {
        (None, _) | (Some(_), None) => return Found::NeedMore,
        (Some(d), Some(e)) if d.is_ascii_digit() && matches!(e, b'\r' | b'\n') => {}
        _ => return Found::No,
    }
    if p < 2 || buf[p - 1] != b' ' {
        return Found::No;
    }
    // The target: back to the previous space, not crossing a line end.
    let lo = p.saturating_sub(keep);
    let before = &buf[lo..p - 1];
    let Some(sp) = memchr::memrchr3(b' ', b'\n', b'\r', before).map(|i| lo + i) else {
        return Found::No;
    };
    if buf[sp] != b' ' || sp + 1 >= p - 1 {
        return Found::No;
    }
    let run = buf[..sp]
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_uppercase() || **b == b'-')
        .count();
    let word = &buf[sp - run..sp];
    METHODS
        .iter()
        .filter(|m| word.ends_with(m.as_bytes()))
        .map(|m| m.len())
        .max()
        .map_or(Found::No, |n| Found::At(sp - n))
}

/// A status line starting at `p` (`HTTP/1.d SP NNN (SP|EOL)`).
fn status_start(buf: &[u8], p: usize) -> Found {
    let Some(tail) = buf.get(p..p + 13) else {
        // Not enough bytes yet to decide; check what there is.
        let have = buf.get(p..).unwrap_or_default();
        let pat = |i: usize, b: u8| match i {
            7 | 9..=11 => b.is_ascii_digit(),
            8 => b == b' ',
            _ => true,
        };
        return if have.iter().enumerate().all(|(i, &b)| pat(i, b)) {
            Found::NeedMore
        } else {
            Found::No
        };
    };
    if tail[7].is_ascii_digit()
        && tail[8] == b' '
        && tail[9..12].iter().all(u8::is_ascii_digit)
        && matches!(tail[12], b' ' | b'\r' | b'\n')
    {
        Found::At(p)
    } else {
        Found::No
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::held::MAX_HELD_SEGMENTS;
    use proptest::prelude::*;

    const TS: Timestamp = Timestamp::from_micros(1_000);

    fn limits() -> Http1Limits {
        Http1Limits::default()
    }

    /// Feeds the client stream then the server stream, each cut at `cuts` (sorted
    /// offsets), then closes.
    fn run_split(
        lim: Http1Limits,
        client: &[u8],
        ccuts: &[usize],
        server: &[u8],
        scuts: &[usize],
    ) -> Vec<Http1Event> {
        let mut conn = Http1Conn::new(lim);
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

    fn run(client: &[u8], server: &[u8]) -> Vec<Http1Event> {
        run_split(limits(), client, &[], server, &[])
    }

    fn requests(ev: &[Http1Event]) -> Vec<&HttpRequest> {
        ev.iter()
            .filter_map(|e| match e {
                Http1Event::Request(r) => Some(r),
                _ => None,
            })
            .collect()
    }

    fn responses(ev: &[Http1Event]) -> Vec<(u64, &HttpResponse)> {
        ev.iter()
            .filter_map(|e| match e {
                Http1Event::Response {
                    request_index,
                    response,
                } => Some((*request_index, response)),
                _ => None,
            })
            .collect()
    }

    fn anomaly_kinds(ev: &[Http1Event]) -> Vec<String> {
        let mut kinds = Vec::new();
        for e in ev {
            match e {
                Http1Event::Anomaly(a) => kinds.push(a.kind.clone()),
                Http1Event::Request(r) => kinds.extend(r.anomalies.iter().map(|a| a.kind.clone())),
                Http1Event::Response { response, .. } | Http1Event::StrayResponse(response) => {
                    kinds.extend(response.anomalies.iter().map(|a| a.kind.clone()))
                }
                Http1Event::Opaque { .. } | Http1Event::NotHttp => {}
            }
        }
        kinds
    }

    /// Feeds `(from_client, bytes)` steps in order, as a capture interleaves them.
    fn run_steps(steps: &[(bool, &[u8])]) -> Vec<Http1Event> {
        let mut conn = Http1Conn::new(limits());
        let mut out = Vec::new();
        for (i, &(client, data)) in steps.iter().enumerate() {
            let frame = i as u64 + 1;
            if client {
                conn.client_data(data, TS, frame, &mut out);
            } else {
                conn.server_data(data, TS, frame, &mut out);
            }
        }
        conn.close(&mut out);
        out
    }

    fn strays(ev: &[Http1Event]) -> Vec<u16> {
        ev.iter()
            .filter_map(|e| match e {
                Http1Event::StrayResponse(r) => Some(r.status),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_response_before_any_request_takes_no_index() {
        // Picked up between a request and its response (keep-alive): the first
        // response answers a request before the capture; the next pair must hold.
        let ev = run_steps(&[
            (false, b"HTTP/1.1 304 Not Modified\r\n\r\n"),
            (true, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"),
            (false, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
            (true, b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n"),
            (
                false,
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
            ),
        ]);
        assert_eq!(strays(&ev), [304]);
        let got: Vec<(u64, u16)> = responses(&ev).iter().map(|(i, r)| (*i, r.status)).collect();
        assert_eq!(got, [(0, 200), (1, 404)]);
    }

    #[test]
    fn extra_responses_of_a_server_out_of_step_answer_nothing() {
        // Three responses to one request (Zeek's desync test): the two extra ones
        // are stray, and the next request gets the response sent after it.
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        let three = [&ok[..], ok, ok].concat();
        let ev = run_steps(&[
            (true, b"GET /1 HTTP/1.1\r\n\r\n"),
            (false, &three),
            (true, b"GET /2 HTTP/1.1\r\n\r\n"),
            (false, b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"),
        ]);
        assert_eq!(strays(&ev), [200, 200]);
        let got: Vec<(u64, u16)> = responses(&ev).iter().map(|(i, r)| (*i, r.status)).collect();
        assert_eq!(got, [(0, 200), (1, 201)]);
    }

    #[test]
    fn a_response_to_a_request_still_being_sent_is_not_stray() {
        // The server answers (413) before the upload ends: its request had begun.
        let ev = run_steps(&[
            (true, b"POST /up HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"),
            (
                false,
                b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n",
            ),
            (true, b"defghij"),
        ]);
        assert!(strays(&ev).is_empty());
        let got: Vec<(u64, u16)> = responses(&ev).iter().map(|(i, r)| (*i, r.status)).collect();
        assert_eq!(got, [(0, 413)]);
        assert_eq!(requests(&ev)[0].body, b"abcdefghij");
    }

    /// A conversation touching every framing: pipelining, HEAD, chunked with trailers,
    /// 100-continue, 204, 304, Content-Length, keep-alive, body until close.
    const CLIENT: &[u8] = b"GET /a?id=1 HTTP/1.1\r\nHost: example.com\r\n\r\n\
HEAD /b HTTP/1.1\r\nHost: example.com\r\n\r\n\
POST /c HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n\
PUT /d HTTP/1.1\r\nHost: example.com\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\ndata\
\r\nDELETE /e HTTP/1.0\r\n\r\n\
GET /f HTTP/1.1\r\n\r\n\
GET /g HTTP/1.1\n\n";
    const SERVER: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok\
HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n\
HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n0\r\n\r\n\
HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n\
HTTP/1.1 204 No Content\r\n\r\n\
HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n\
HTTP/1.0 200 OK\r\n\r\nuntil close";

    #[test]
    fn conversation() {
        let ev = run(CLIENT, SERVER);
        let reqs = requests(&ev);
        let names: Vec<(&str, &str)> = reqs
            .iter()
            .map(|r| (r.method.as_str(), r.target.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("GET", "/a?id=1"),
                ("HEAD", "/b"),
                ("POST", "/c"),
                ("PUT", "/d"),
                ("DELETE", "/e"),
                ("GET", "/f"),
                ("GET", "/g")
            ]
        );
        assert_eq!(reqs[2].body, b"helloabc");
        assert_eq!(reqs[2].body_len, 8);
        assert_eq!(reqs[2].headers.last(), Some(&Header::trailer("T", "1")));
        assert_eq!(reqs[3].body, b"data");
        assert_eq!(reqs[4].version, "HTTP/1.0");
        assert_eq!(reqs[0].headers, vec![Header::new("Host", "example.com")]);
        let resps = responses(&ev);
        let got: Vec<(u64, u16, &[u8])> = resps
            .iter()
            .map(|(i, r)| (*i, r.status, r.body.as_slice()))
            .collect();
        assert_eq!(
            got,
            [
                (0, 200, &b"ok"[..]),
                (1, 200, b""),
                (2, 201, b"wiki"),
                (3, 200, b""),
                (4, 204, b""),
                (5, 304, b""),
                (6, 200, b"until close"),
            ]
        );
        assert!(resps.iter().all(|(_, r)| !r.truncated));
        assert_eq!(anomaly_kinds(&ev), Vec::<String>::new());
    }

    /// STYLE.md #14: every split point, and byte by byte, gives the same events.
    #[test]
    fn split_at_every_offset() {
        let whole = run(CLIENT, SERVER);
        for at in 0..=CLIENT.len() {
            assert_eq!(
                run_split(limits(), CLIENT, &[at], SERVER, &[]),
                whole,
                "client cut at {at}"
            );
        }
        for at in 0..=SERVER.len() {
            assert_eq!(
                run_split(limits(), CLIENT, &[], SERVER, &[at]),
                whole,
                "server cut at {at}"
            );
        }
        let c: Vec<usize> = (0..CLIENT.len()).collect();
        let s: Vec<usize> = (0..SERVER.len()).collect();
        assert_eq!(
            run_split(limits(), CLIENT, &c, SERVER, &s),
            whole,
            "byte by byte"
        );
    }

    #[test]
    fn request_emitted_before_response_and_meta() {
        let mut conn = Http1Conn::new(limits());
        let mut out = Vec::new();
        conn.client_data(
            b"POST /x HTTP/1.1\r\nContent-",
            Timestamp::from_micros(5),
            10,
            &mut out,
        );
        conn.client_data(
            b"Length: 3\r\n\r\nab",
            Timestamp::from_micros(6),
            11,
            &mut out,
        );
        assert!(out.is_empty());
        conn.client_data(b"c", Timestamp::from_micros(7), 12, &mut out);
        let reqs = requests(&out);
        assert_eq!(reqs.len(), 1);
        assert_eq!(
            reqs[0].meta,
            MessageMeta {
                ts: Timestamp::from_micros(5),
                first_frame: 10,
                last_frame: 12
            }
        );
    }

    use crate::net::tail_search::testing::{recorded, recording};

    fn letters(n: usize) -> Vec<u8> {
        (0..n).map(|i| b'a' + (i % 26) as u8).collect()
    }

    #[test]
    fn a_request_body_past_the_cap_is_fed_to_the_tail_search_wherever_it_is_cut() {
        let lim = Http1Limits {
            max_body_bytes: 10,
            ..limits()
        };
        let body = letters(100);
        let mut client = b"POST /up HTTP/1.1\r\nContent-Length: 100\r\n\r\n".to_vec();
        let head = client.len();
        client.extend_from_slice(&body);
        // A chunked one after it: offsets are those of the de-chunked body.
        client.extend_from_slice(
            b"POST /more HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Encoding: deflate\r\n\r\n",
        );
        client.extend_from_slice(b"8\r\n01234567\r\n6\r\n89ABCD\r\n3\r\nEFG\r\n0\r\n\r\n");
        // A response as long: never searched.
        let server = b"HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n012345678901234567890123456789\
HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        for at in head..client.len() {
            let starts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let mut conn = Http1Conn::new(lim.clone()).with_tail_search(Some(recording(&starts)));
            let mut out = Vec::new();
            conn.client_data(&client[..at], TS, 1, &mut out);
            conn.client_data(&client[at..], TS, 2, &mut out);
            conn.server_data(server, TS, 3, &mut out);
            conn.close(&mut out);
            let reqs = requests(&out);
            assert_eq!(reqs.len(), 2, "cut at {at}");
            assert_eq!(reqs[0].body, body[..10], "cut at {at}");
            assert_eq!(
                recorded(reqs[0]),
                (
                    "abcdefghij".into(),
                    10,
                    String::from_utf8_lossy(&body[10..]).into_owned()
                ),
                "cut at {at}"
            );
            assert_eq!(
                recorded(reqs[1]),
                ("0123456789".into(), 10, "ABCDEFG".into()),
                "cut at {at}"
            );
            // The search is told each body's coding (and can decode its tail).
            assert_eq!(reqs[0].beyond_cap[0].encoding, "-");
            assert_eq!(reqs[1].beyond_cap[0].encoding, "deflate");
            let limit = reqs[0]
                .anomalies
                .iter()
                .find(|a| a.kind == "body-size-limit");
            assert!(
                limit.is_some_and(|a| a.detail.ends_with(
                    "not kept, but its 90 bytes were searched for the case's known values as they passed: 1 hit(s)"
                )),
                "{:?}",
                reqs[0].anomalies
            );
            assert!(reqs[0].anomalies.iter().any(|a| a.kind == "pii-hit-limit"));
            assert_eq!(
                starts.load(std::sync::atomic::Ordering::Relaxed),
                2,
                "responses too"
            );
        }
    }

    #[test]
    fn bytes_lost_in_a_body_past_the_cap_are_a_gap_for_the_tail_search() {
        let lim = Http1Limits {
            max_body_bytes: 10,
            ..limits()
        };
        let body = letters(40);
        let run = |steps: &[Result<std::ops::Range<usize>, u64>]| {
            let starts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let mut conn = Http1Conn::new(lim.clone()).with_tail_search(Some(recording(&starts)));
            let mut out = Vec::new();
            conn.client_data(
                b"POST / HTTP/1.1\r\nContent-Length: 40\r\n\r\n",
                TS,
                1,
                &mut out,
            );
            for step in steps {
                match step {
                    Ok(r) => conn.client_data(&body[r.clone()], TS, 2, &mut out),
                    Err(len) => conn.client_gap(*len, &mut out),
                }
            }
            conn.close(&mut out);
            let reqs = requests(&out);
            assert_eq!(reqs.len(), 1);
            (reqs[0].body.clone(), recorded(reqs[0]))
        };
        // Lost inside the kept part: the kept bytes after the gap lead into the rest,
        // those before it do not.
        let (kept, rec) = run(&[Ok(0..5), Err(3), Ok(8..40)]);
        assert_eq!(kept, [&body[..5], &body[8..13]].concat());
        assert_eq!(
            rec,
            ("ijklm".into(), 13, "nopqrstuvwxyzabcdefghijklmn".into())
        );
        let (_, rec) = run(&[Ok(0..5), Err(3), Ok(8..12), Ok(12..40)]);
        assert_eq!(
            rec,
            ("ijklm".into(), 13, "nopqrstuvwxyzabcdefghijklmn".into())
        );
        // Lost right after the kept part: nothing leads in; offsets stay true.
        let (kept, rec) = run(&[Ok(0..10), Err(3), Ok(13..40)]);
        assert_eq!(kept, body[..10]);
        assert_eq!(
            rec,
            (String::new(), 13, "nopqrstuvwxyzabcdefghijklmn".into())
        );
        // Lost past the cap: a gap for the search.
        let (_, rec) = run(&[Ok(0..20), Err(5), Ok(25..40)]);
        assert_eq!(
            rec,
            (
                "abcdefghij".into(),
                10,
                "klmnopqrst<gap 5>zabcdefghijklmn".into()
            )
        );
    }

    #[test]
    fn body_limit_truncates_but_keeps_framing() {
        let lim = Http1Limits {
            max_body_bytes: 10,
            ..limits()
        };
        let mut client = b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n".to_vec();
        client.extend_from_slice(&[b'x'; 100]);
        client.extend_from_slice(b"GET /next HTTP/1.1\r\n\r\n");
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n0123456789abcdef0123456789abcdef\r\n0\r\n\r\n";
        let ev = run_split(lim, &client, &[50], chunked, &[60]);
        let reqs = requests(&ev);
        assert_eq!(reqs.len(), 2);
        assert_eq!(reqs[0].body.len(), 10);
        assert_eq!(reqs[0].body_len, 100);
        assert!(reqs[0].truncated);
        assert_eq!(reqs[1].target, "/next");
        let resps = responses(&ev);
        assert_eq!(resps[0].1.body, b"0123456789");
        assert_eq!(resps[0].1.body_len, 32);
        assert_eq!(anomaly_kinds(&ev), ["body-size-limit", "body-size-limit"]);
    }

    proptest! {
        /// Not keeping response bodies changes nothing but the bodies: the same
        /// events, lengths, `truncated` flags and anomalies (body cap hit or not,
        /// any framing, any split of the streams).
        #[test]
        fn unkept_response_bodies_change_only_the_bodies(
            framing in 0usize..3,
            len in 0usize..40,
            cap in prop::sample::select(vec![5usize, 16, 64]),
            scut in 0usize..120,
            gap in any::<bool>(),
        ) {
            let body: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let mut server = match framing {
                0 => format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n").into_bytes(),
                1 => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
                _ => b"HTTP/1.1 200 OK\r\n\r\n".to_vec(),
            };
            if framing == 1 {
                server.extend_from_slice(format!("{len:x}\r\n").as_bytes());
                server.extend_from_slice(&body);
                server.extend_from_slice(b"\r\n0\r\n\r\n");
            } else {
                server.extend_from_slice(&body);
            }
            let client = b"GET / HTTP/1.1\r\n\r\n";
            let feed = |keep: bool| {
                let lim = Http1Limits { max_body_bytes: cap, keep_response_bodies: keep, ..limits() };
                let mut conn = Http1Conn::new(lim);
                let mut out = Vec::new();
                conn.client_data(client, TS, 1, &mut out);
                let cut = scut.min(server.len());
                conn.server_data(&server[..cut], TS, 2, &mut out);
                if gap {
                    conn.server_gap(3, &mut out);
                }
                conn.server_data(&server[cut..], TS, 4, &mut out);
                conn.close(&mut out);
                out
            };
            let kept = feed(true);
            let mut unkept = feed(false);
            for e in &mut unkept {
                if let Http1Event::Response { response, .. } = e {
                    prop_assert!(response.body.is_empty());
                }
            }
            let mut want = kept;
            for e in &mut want {
                if let Http1Event::Response { response, .. } = e {
                    response.body.clear();
                }
            }
            prop_assert_eq!(unkept, want);
        }
    }

    #[test]
    fn connect_tunnel_goes_opaque_with_held_bytes() {
        let mut conn = Http1Conn::new(limits());
        let mut out = Vec::new();
        conn.client_data(
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03\x01",
            TS,
            1,
            &mut out,
        );
        let t2 = Timestamp::from_micros(2_000);
        conn.client_data(b"\x00\x05", t2, 2, &mut out);
        assert_eq!(requests(&out).len(), 1);
        conn.server_data(
            b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03",
            TS,
            3,
            &mut out,
        );
        assert!(out.contains(&Http1Event::Opaque { from_client: true }));
        assert!(out.contains(&Http1Event::Opaque { from_client: false }));
        assert_eq!(responses(&out)[0].1.status, 200);
        // The held bytes came in frames 1 and 2: each part is given back with its own.
        assert_eq!(
            conn.take_opaque_segments(true),
            [
                HeldSegment {
                    offset: 0,
                    ts: TS,
                    frame: 1
                },
                HeldSegment {
                    offset: 3,
                    ts: t2,
                    frame: 2
                },
            ]
        );
        assert_eq!(conn.take_opaque_segments(false), [], "nothing was held");
        conn.client_data(b"more", TS, 4, &mut out);
        assert_eq!(conn.take_opaque_bytes(true), b"\x16\x03\x01\x00\x05more");
        assert_eq!(conn.take_opaque_bytes(false), b"\x16\x03\x03");
        assert!(conn.is_done());
    }

    #[test]
    fn a_request_held_over_two_segments_keeps_both_frames_when_the_hold_is_released() {
        // The client writes a request in two segments after its CONNECT (frames 1, 2),
        // before the proxy's 407 (frame 3): released, the request is read from its
        // first byte's frame and time to its last byte's frame.
        let mut conn = Http1Conn::new(limits());
        let mut out = Vec::new();
        conn.client_data(
            b"CONNECT a.example:80 HTTP/1.1\r\nHost: a.example:80\r\n\r\nGET /x HTTP/1.1\r\n",
            TS,
            1,
            &mut out,
        );
        let t2 = Timestamp::from_micros(2_000);
        conn.client_data(b"Host: a.example\r\n\r\n", t2, 2, &mut out);
        let t3 = Timestamp::from_micros(3_000);
        conn.server_data(
            b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n",
            t3,
            3,
            &mut out,
        );
        let get = requests(&out)
            .into_iter()
            .find(|r| r.target == "/x")
            .expect("the held request");
        assert_eq!(
            get.meta,
            MessageMeta {
                ts: TS,
                first_frame: 1,
                last_frame: 2
            }
        );
    }

    #[test]
    fn a_hold_tells_apart_a_bounded_number_of_segments() {
        let mut conn = Http1Conn::new(limits());
        let mut out = Vec::new();
        conn.client_data(
            b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n",
            TS,
            1,
            &mut out,
        );
        // Bytes of one frame handed in apiece are one segment.
        for _ in 0..3 {
            conn.client_data(b"x", TS, 2, &mut out);
        }
        for frame in 3..3 + 2 * MAX_HELD_SEGMENTS as u64 {
            conn.client_data(b"x", TS, frame, &mut out);
        }
        conn.server_data(b"HTTP/1.1 200 OK\r\n\r\n", TS, 1000, &mut out);
        let segments = conn.take_opaque_segments(true);
        assert_eq!(segments.len(), MAX_HELD_SEGMENTS);
        assert_eq!(segments[0].frame, 2, "the first held byte's segment");
        assert_eq!(segments[1].offset, 3, "frame 2's three bytes");
        assert_eq!(
            segments.last().map(|s| (s.offset, s.frame)),
            Some((MAX_HELD_SEGMENTS + 1, MAX_HELD_SEGMENTS as u64 + 1))
        );
        assert_eq!(
            conn.take_opaque_bytes(true).len(),
            3 + 2 * MAX_HELD_SEGMENTS
        );
    }

    #[test]
    fn websocket_upgrade_and_declined_upgrade() {
        let req = b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello";
        let ev = run(
            req,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x02hi",
        );
        assert_eq!(responses(&ev)[0].1.status, 101);
        assert_eq!(
            ev.iter()
                .filter(|e| matches!(e, Http1Event::Opaque { .. }))
                .count(),
            2
        );
        assert_eq!(anomaly_kinds(&ev), Vec::<String>::new());
        // `Connection` in two lines is one list: the same upgrade.
        let split = b"GET /ws HTTP/1.1\r\nConnection: keep-alive\r\nUpgrade: websocket\r\n\
connection: Upgrade\r\n\r\n\x81\x05hello";
        let ev = run(
            split,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x02hi",
        );
        assert_eq!(
            ev.iter()
                .filter(|e| matches!(e, Http1Event::Opaque { .. }))
                .count(),
            2
        );
        assert_eq!(anomaly_kinds(&ev), Vec::<String>::new());
        // Declined: the bytes after the request are parsed again as HTTP.
        let req = b"GET /h2c HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\nGET /next HTTP/1.1\r\n\r\n";
        let ev = run(req, b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb");
        let reqs = requests(&ev);
        assert_eq!(reqs.len(), 2);
        assert_eq!(reqs[1].target, "/next");
        assert_eq!(responses(&ev).len(), 2);
        assert!(!ev.iter().any(|e| matches!(e, Http1Event::Opaque { .. })));
    }

    #[test]
    fn garbage_and_http09_stop_the_direction() {
        let ev = run(b"\x16\x03\x01\x02\x00\x01\x00", b"");
        assert_eq!(anomaly_kinds(&ev), ["http-not-http"]);
        let ev = run(b"GET /index.html\r\n", b"<html>");
        assert_eq!(anomaly_kinds(&ev), ["http-0.9", "http-not-http"]);
        let ev = run(b"OPTIONS HTTP/1.1\r\n\r\n", b"");
        assert_eq!(anomaly_kinds(&ev), ["http-not-http"]);
        assert!(requests(&ev).is_empty());
        // Later valid-looking data is ignored once stopped.
        let ev = run(b"BLAH\x00 / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n", b"");
        assert!(requests(&ev).is_empty());
    }

    #[test]
    fn a_first_request_that_is_not_http_hands_its_bytes_over() {
        // Taken for HTTP by its first bytes; the caller gets them from that line on,
        // and every later client byte (bounded), to read as another protocol.
        let mut conn = Http1Conn::new(limits());
        let mut out = Vec::new();
        conn.client_data(b"GET / HTTP/1.\r\nX-Imei: 4901", TS, 1, &mut out);
        conn.client_data(b"54203237518\r\n\r\n", TS, 2, &mut out);
        assert!(out.contains(&Http1Event::NotHttp), "{out:?}");
        assert_eq!(anomaly_kinds(&out), ["http-not-http"]);
        assert_eq!(
            conn.take_opaque_bytes(true),
            b"GET / HTTP/1.\r\nX-Imei: 490154203237518\r\n\r\n"
        );
        // Not after a first request that was HTTP: that direction just stops.
        let ev = run(b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.\r\n\r\n", b"");
        assert!(!ev.contains(&Http1Event::NotHttp));
        assert_eq!(requests(&ev).len(), 1);
    }

    #[test]
    fn head_limits() {
        let lim = Http1Limits {
            max_head_bytes: 100,
            max_headers: 4,
            ..limits()
        };
        let mut client = b"GET / HTTP/1.1\r\nX: ".to_vec();
        client.extend_from_slice(&[b'a'; 200]);
        client.extend_from_slice(b"\r\n\r\nGET /ok HTTP/1.1\r\n\r\n");
        client.extend_from_slice(
            b"GET /many HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n",
        );
        let ev = run_split(lim.clone(), &client, &[], b"", &[]);
        let whole_kinds = anomaly_kinds(&ev);
        assert_eq!(
            whole_kinds,
            ["http-head-too-large", "http-too-many-headers"]
        );
        let reqs = requests(&ev);
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].target, "/ok");
        let bytes: Vec<usize> = (0..client.len()).collect();
        assert_eq!(run_split(lim, &client, &bytes, b"", &[]), ev);
    }

    #[test]
    fn gap_inside_length_body_keeps_framing() {
        let mut conn = Http1Conn::new(limits());
        let mut out = Vec::new();
        conn.client_data(
            b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc",
            TS,
            1,
            &mut out,
        );
        conn.client_gap(4, &mut out);
        conn.client_data(b"hijGET /2 HTTP/1.1\r\n\r\n", TS, 2, &mut out);
        let reqs = requests(&out);
        assert_eq!(reqs.len(), 2);
        assert_eq!(reqs[0].body, b"abchij");
        assert_eq!(reqs[0].body_len, 10);
        assert!(reqs[0].truncated);
        assert_eq!(reqs[1].target, "/2");
        assert_eq!(anomaly_kinds(&out), ["http-gap"]);
    }

    #[test]
    fn gap_in_chunked_body_resyncs_on_request_line() {
        let mut conn = Http1Conn::new(limits());
        let mut out = Vec::new();
        conn.client_data(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n100\r\n{\"a\":",
            TS,
            1,
            &mut out,
        );
        conn.client_gap(100, &mut out);
        conn.client_data(
            b"1}\r\n0\r\n\r\nXPOST /next?x=1 HTTP/1.1\r\nContent-Length: 2\r\n\r\nok",
            TS,
            2,
            &mut out,
        );
        let reqs = requests(&out);
        assert_eq!(reqs.len(), 2);
        assert!(reqs[0].truncated);
        assert_eq!(reqs[0].body, b"{\"a\":");
        assert_eq!(
            (reqs[1].method.as_str(), reqs[1].target.as_str()),
            ("POST", "/next?x=1")
        );
        assert_eq!(reqs[1].body, b"ok");
    }

    #[test]
    fn server_gap_resyncs_on_status_line() {
        let client = b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n";
        let mut conn = Http1Conn::new(limits());
        let mut out = Vec::new();
        conn.client_data(client, TS, 1, &mut out);
        conn.server_data(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
            TS,
            2,
            &mut out,
        );
        conn.server_gap(50, &mut out);
        conn.server_data(
            b"xx\r\n0\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 1\r\n\r\nz",
            TS,
            3,
            &mut out,
        );
        let resps = responses(&out);
        assert_eq!(resps.len(), 2);
        assert!(resps[0].1.truncated);
        assert_eq!(
            (resps[1].0, resps[1].1.status, resps[1].1.body.as_slice()),
            (1, 404, &b"z"[..])
        );
    }

    #[test]
    fn close_truncates_half_messages() {
        let ev = run(
            b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc",
            b"HTTP/1.1 200 OK\r\nContent-Le",
        );
        let reqs = requests(&ev);
        assert!(reqs[0].truncated);
        assert_eq!(reqs[0].body, b"abc");
        assert_eq!(anomaly_kinds(&ev), ["http-truncated", "http-truncated"]);
    }

    #[test]
    fn bad_content_length_reports_head_then_resyncs() {
        let ev = run(b"POST /x HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhelloGET /y HTTP/1.1\r\n\r\n", b"");
        let reqs = requests(&ev);
        assert_eq!(reqs.len(), 2);
        assert!(reqs[0].truncated);
        assert_eq!(reqs[1].target, "/y");
        assert_eq!(anomaly_kinds(&ev), ["http-bad-length"]);
    }

    #[test]
    fn pending_limit_is_bounded() {
        let lim = Http1Limits {
            max_pending_requests: 2,
            ..limits()
        };
        let client = b"HEAD /1 HTTP/1.1\r\n\r\n".repeat(4);
        let server = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n".repeat(2);
        let ev = run_split(lim, &client, &[], &server, &[]);
        assert_eq!(requests(&ev).len(), 4);
        assert_eq!(responses(&ev).len(), 2);
        assert_eq!(anomaly_kinds(&ev), ["http-pending-limit"]);
    }

    fn fragment() -> impl Strategy<Value = Vec<u8>> {
        prop::sample::select(vec![
            &b"GET / HTTP/1.1\r\n"[..],
            b"HTTP/1.1 200 OK\r\n",
            b"HTTP/1.1 100 Continue\r\n",
            b"Content-Length: 3\r\n",
            b"Transfer-Encoding: chunked\r\n",
            b"Connection: upgrade\r\nUpgrade: x\r\n",
            b"\r\n",
            b"\n",
            b"3\r\nabc\r\n",
            b"0\r\n\r\n",
            b"0\r\nX-T: 1\r\n",
            b"bad trailer\r\n",
            b"abc",
            b"CONNECT a:1 HTTP/1.1\r\n",
            b"HEAD /h HTTP/1.0\r\n",
            b"\x00\xff",
        ])
        .prop_map(<[u8]>::to_vec)
    }

    fn stream() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(fragment(), 0..12).prop_map(|v| v.concat())
    }

    /// `events` as they are with `keep_response_headers` off: response fields other
    /// than the framing ones dropped, reasons empty.
    fn without_response_headers(mut events: Vec<Http1Event>) -> Vec<Http1Event> {
        for e in &mut events {
            if let Http1Event::Response { response, .. } | Http1Event::StrayResponse(response) = e {
                response.headers.retain(|h| is_framing_field(&h.name));
                response.reason = String::new();
            }
        }
        events
    }

    /// Messages of a start line, header fields that decide or disturb the framing
    /// (and some that do not), and a body-ish tail; now and then a fragment of
    /// [`stream`]'s garbage.
    fn messages(starts: &'static [&'static [u8]]) -> impl Strategy<Value = Vec<u8>> {
        let field = prop::sample::select(vec![
            &b"Content-Length: 3\r\n"[..],
            b"Content-Length: 0\r\n",
            b"content-LENGTH: 3, 3\r\n",
            b"Content-Length: x\r\n",
            b"Transfer-Encoding: chunked\r\n",
            b"transfer-encoding: gzip\r\n",
            b"Transfer-Encoding: gzip, chunked\r\n",
            b"Server: nginx\r\n",
            b"Connection: upgrade\r\nUpgrade: x\r\n",
            b"X: a\r\n  folded\r\n",
        ]);
        let tail = prop::sample::select(vec![
            &b""[..],
            b"abc",
            b"3\r\nabc\r\n0\r\n\r\n",
            b"3\r\nab",
            b"3\r\nabc\r\n0\r\nX-Id: 490154203237518\r\nX-T: 2\n\r\n",
        ]);
        let message = (
            prop::sample::select(starts),
            prop::collection::vec(field, 0..4),
            tail,
        )
            .prop_map(|(start, fields, tail)| [start, &fields.concat(), b"\r\n", tail].concat());
        prop::collection::vec(prop_oneof![4 => message, 1 => fragment()], 0..5)
            .prop_map(|v| v.concat())
    }

    const REQUEST_LINES: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\n",
        b"POST /p HTTP/1.1\r\n",
        b"HEAD /h HTTP/1.0\r\n",
        b"CONNECT a:1 HTTP/1.1\r\n",
    ];
    const STATUS_LINES: &[&[u8]] = &[
        b"HTTP/1.1 200 OK\r\n",
        b"HTTP/1.1 100 Continue\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\n",
        b"HTTP/1.1 204 No Content\r\n",
        b"HTTP/1.0 304\r\n",
        b"HTTP/1.1 404 Not Found\r\n",
    ];

    #[test]
    fn response_headers_off_keeps_framing_fields_only() {
        let server = b"HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 2\r\nX: y\r\n\r\nhi";
        let lim = Http1Limits {
            keep_response_headers: false,
            ..limits()
        };
        let ev = run_split(lim, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", &[], server, &[]);
        let r = responses(&ev)[0].1;
        assert_eq!(r.headers, vec![Header::new("Content-Length", "2")]);
        assert_eq!(
            (r.status, r.reason.as_str(), &r.body[..]),
            (200, "", &b"hi"[..])
        );
        // Requests keep every field.
        assert_eq!(requests(&ev)[0].headers, vec![Header::new("Host", "a")]);
    }

    proptest! {
        /// Without response header fields the events are the same, framing, anomalies
        /// and pairing included, as those of the full parse with the fields dropped.
        #[test]
        fn response_headers_off_changes_nothing_else(
            c in messages(REQUEST_LINES),
            s in messages(STATUS_LINES),
        ) {
            let lim = Http1Limits { keep_response_headers: false, ..limits() };
            prop_assert_eq!(
                run_split(lim, &c, &[], &s, &[]),
                without_response_headers(run(&c, &s))
            );
        }

        /// Any split of either direction gives the events of the unsplit input, even
        /// on malformed conversations.
        #[test]
        fn split_invariance(c in stream(), s in stream(), ci in any::<prop::sample::Index>(), si in any::<prop::sample::Index>()) {
            let whole = run(&c, &s);
            let cc = ci.index(c.len() + 1);
            let sc = si.index(s.len() + 1);
            prop_assert_eq!(run_split(limits(), &c, &[cc], &s, &[sc]), whole);
        }
    }

    #[test]
    fn trailer_fields_join_the_header_fields_in_pieces_of_any_size() {
        let client = b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTrailer: X-Device\r\n\r\n\
5\r\nhello\r\n0\r\nX-Device: 490154203237518\r\nX-Sum:  abc \r\n\r\n\
GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
        let server = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\ngrpc-status: 0\r\n\r\n\
HTTP/1.1 204 No Content\r\n\r\n";
        let whole = run(client, server);
        for cut in 1..client.len() {
            let s = cut.min(server.len());
            assert_eq!(
                run_split(limits(), client, &[cut], server, &[s]),
                whole,
                "{cut}"
            );
        }
        let reqs = requests(&whole);
        assert_eq!(reqs.len(), 2);
        let names: Vec<(&str, &[u8], bool)> = reqs[0]
            .headers
            .iter()
            .map(|h| (&*h.name, h.value.as_slice(), h.trailer))
            .collect();
        assert_eq!(
            names[2..],
            [
                ("Trailer", &b"X-Device"[..], false),
                ("X-Device", b"490154203237518", true),
                ("X-Sum", b"abc", true)
            ]
        );
        assert_eq!(reqs[0].body, b"hello");
        let resps = responses(&whole);
        assert_eq!(
            resps[0].1.headers.last(),
            Some(&Header::trailer("grpc-status", "0"))
        );
        assert_eq!(anomaly_kinds(&whole), Vec::<String>::new());
        // Response fields not kept: nor are its trailer fields.
        let lim = Http1Limits {
            keep_response_headers: false,
            ..limits()
        };
        let ev = run_split(lim, client, &[], server, &[]);
        assert!(responses(&ev)[0]
            .1
            .headers
            .iter()
            .all(|h| h.name != "grpc-status"));
        assert_eq!(requests(&ev)[0].headers.len(), 5);
    }

    #[test]
    fn trailer_sections_over_the_limits_keep_what_fits() {
        let head = b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n";
        let field = |i: usize| format!("X-F{i}: {}\r\n", "v".repeat(40));
        // Over max_head_bytes: the complete lines before the limit, and an anomaly.
        let lim = Http1Limits {
            max_head_bytes: 200,
            ..limits()
        };
        let mut client = head.to_vec();
        (0..10).for_each(|i| client.extend_from_slice(field(i).as_bytes()));
        client.extend_from_slice(b"\r\n");
        let ev = run_split(lim, &client, &[], b"", &[]);
        let req = requests(&ev)[0];
        let trailer: Vec<&str> = req.headers[2..].iter().map(|h| &*h.name).collect();
        assert_eq!(trailer, ["X-F0", "X-F1", "X-F2", "X-F3"]);
        assert_eq!(anomaly_kinds(&ev), ["http-trailer-too-large"]);
        assert!(!req.truncated);
        // More fields than max_headers in all: the first ones kept.
        let lim = Http1Limits {
            max_headers: 5,
            ..limits()
        };
        let ev = run_split(lim, &client, &[], b"", &[]);
        let req = requests(&ev)[0];
        let trailer: Vec<&str> = req.headers[2..].iter().map(|h| &*h.name).collect();
        assert_eq!(trailer, ["X-F0", "X-F1", "X-F2"]);
        assert_eq!(anomaly_kinds(&ev), ["http-too-many-headers"]);
        assert!(
            req.anomalies[0].detail.contains(": 7 field(s) past 5"),
            "{:?}",
            req.anomalies
        );
        // Lines that are no field are passed over, as in a head; the message still
        // ends where the section does.
        let mut client = head.to_vec();
        client.extend_from_slice(
            b"X-Ok: 1\r\nno colon here\r\nbad name: 2\r\nX-Id: 490154203237518\r\n\r\n\
              GET /n HTTP/1.1\r\n\r\n",
        );
        let ev = run(&client, b"");
        assert_eq!(requests(&ev).len(), 2);
        let trailer: Vec<&str> = requests(&ev)[0].headers[2..]
            .iter()
            .map(|h| &*h.name)
            .collect();
        assert_eq!(trailer, ["X-Ok", "X-Id"]);
        assert_eq!(anomaly_kinds(&ev), Vec::<String>::new());
        // A line httparse refuses outright (a NUL in a value) costs only that line.
        let mut client = head.to_vec();
        client.extend_from_slice(b"X-Ok: 1\r\nX-Nul: a\x00b\r\nX-Id: 490154203237518\r\n\r\n");
        let ev = run(&client, b"");
        let req = requests(&ev)[0];
        let trailer: Vec<&str> = req.headers[2..].iter().map(|h| &*h.name).collect();
        assert_eq!(trailer, ["X-Ok", "X-Id"]);
        assert_eq!(anomaly_kinds(&ev), ["http-malformed-trailer"]);
        assert!(
            req.anomalies[0]
                .detail
                .ends_with("1 line(s) of it not read"),
            "{:?}",
            req.anomalies
        );
        // The table's budget: trailer bytes count as header fields do, and a section
        // the budget has no room for is given up.
        let budget = MessageBudget::new(4);
        let mut conn = Http1Conn::new(limits()).with_budget(&budget);
        let mut out = Vec::new();
        conn.client_data(head, TS, 1, &mut out);
        conn.client_data(field(0).as_bytes(), TS, 2, &mut out);
        assert_eq!(budget.held(), 0);
        conn.client_data(b"\r\n", TS, 3, &mut out);
        let req = requests(&out)[0];
        assert_eq!(req.headers.len(), 2);
        let kinds: Vec<&str> = req.anomalies.iter().map(|a| a.kind.as_str()).collect();
        assert_eq!(kinds, [message_budget::ANOMALY]);
        let budget = MessageBudget::new(1 << 20);
        let mut conn = Http1Conn::new(limits()).with_budget(&budget);
        conn.client_data(head, TS, 1, &mut out);
        conn.client_data(field(0).as_bytes(), TS, 2, &mut out);
        assert!(budget.held() >= field(0).len(), "{}", budget.held());
        conn.client_data(b"\r\n", TS, 3, &mut out);
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn bodies_of_connections_share_the_tables_budget() {
        // 100 bytes for bodies (the last 14 are for HTTP/2 and HTTP/3 header fields).
        let budget = MessageBudget::new(114);
        let mut a = Http1Conn::new(limits()).with_budget(&budget);
        let mut b = Http1Conn::new(limits()).with_budget(&budget);
        let head = b"POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 200\r\n\r\n";
        let mut out = Vec::new();
        a.client_data(head, TS, 1, &mut out);
        a.client_data(&[b'a'; 70], TS, 2, &mut out);
        b.client_data(head, TS, 3, &mut out);
        b.client_data(&[b'b'; 70], TS, 4, &mut out);
        assert_eq!(budget.held(), 100, "a keeps 70, b the 30 left");
        // The budget frees up, but b's body keeps nothing after its cut: a hole.
        a.close(&mut out);
        assert_eq!(budget.held(), 30);
        b.client_data(&[b'c'; 60], TS, 5, &mut out);
        b.client_data(&[b'd'; 70], TS, 6, &mut out);
        assert_eq!(budget.held(), 0, "b's request was handed out");
        let reqs = requests(&out);
        assert_eq!(reqs.len(), 2);
        let (cut_a, cut_b) = (reqs[0], reqs[1]);
        assert_eq!(cut_a.body, vec![b'a'; 70]);
        assert!(cut_a.truncated);
        assert_eq!(cut_b.body, vec![b'b'; 30]);
        assert_eq!(cut_b.body_len, 200);
        assert!(cut_b.truncated);
        let kinds: Vec<&str> = cut_b.anomalies.iter().map(|a| a.kind.as_str()).collect();
        assert_eq!(kinds, [message_budget::ANOMALY]);
        assert!(cut_b.anomalies[0].detail.contains("budget of 114 bytes"));
        // A response body not kept costs nothing.
        let lim = Http1Limits {
            keep_response_bodies: false,
            ..limits()
        };
        let mut c = Http1Conn::new(lim).with_budget(&budget);
        c.client_data(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", TS, 7, &mut out);
        c.server_data(
            b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n",
            TS,
            8,
            &mut out,
        );
        c.server_data(&[b'r'; 400], TS, 9, &mut out);
        assert_eq!(budget.held(), 0);
        drop(c);
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn a_dns_over_https_answer_keeps_its_body_and_type_when_others_do_not() {
        // As the tap and `analyze` read responses: no bodies, framing fields only.
        let lim = Http1Limits {
            keep_response_bodies: false,
            keep_response_headers: false,
            ..limits()
        };
        let mut c = Http1Conn::new(lim);
        let mut out = Vec::new();
        c.client_data(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n", TS, 1, &mut out);
        c.client_data(
            b"GET /dns-query?dns=AAAB HTTP/1.1\r\nHost: h\r\n\r\n",
            TS,
            2,
            &mut out,
        );
        c.server_data(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nabc",
            TS,
            3,
            &mut out,
        );
        c.server_data(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/dns-message\r\n\
              Server: x\r\nContent-Length: 4\r\n\r\nwxyz",
            TS,
            4,
            &mut out,
        );
        let got: Vec<(&[u8], Vec<&str>)> = responses(&out)
            .iter()
            .map(|(_, r)| {
                let names = r.headers.iter().map(|h| &*h.name).collect();
                (r.body.as_slice(), names)
            })
            .collect();
        assert_eq!(
            got,
            [
                (&b""[..], vec!["Content-Length"]),
                (&b"wxyz"[..], vec!["Content-Type", "Content-Length"]),
            ]
        );
    }

    #[test]
    fn the_answer_to_a_lookup_posted_as_a_form_is_kept() {
        let lim = Http1Limits {
            keep_response_bodies: false,
            keep_response_headers: false,
            ..limits()
        };
        let mut c = Http1Conn::new(lim);
        let mut out = Vec::new();
        // Known only once the body came: the head alone asks nothing. An ordinary form
        // after it keeps nothing.
        c.client_data(
            b"POST /d HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\n\
              Content-Length: 21\r\n\r\n",
            TS,
            1,
            &mut out,
        );
        c.client_data(b"dn=push.example&ttl=1", TS, 2, &mut out);
        c.client_data(
            b"POST /login HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\n\
              Content-Length: 10\r\n\r\nuser=alice",
            TS,
            3,
            &mut out,
        );
        for body in [&b"192.0.2.9,60"[..], b"ok"] {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
            c.server_data(&[head.as_bytes(), body].concat(), TS, 4, &mut out);
        }
        let got: Vec<&[u8]> = responses(&out)
            .iter()
            .map(|(_, r)| r.body.as_slice())
            .collect();
        assert_eq!(got, [&b"192.0.2.9,60"[..], b""]);
    }

    #[test]
    fn the_answer_to_a_request_that_may_ask_an_http_dns_api_is_kept_up_to_the_longest_read() {
        let lim = Http1Limits {
            keep_response_bodies: false,
            keep_response_headers: false,
            ..limits()
        };
        let mut c = Http1Conn::new(lim.clone());
        let mut out = Vec::new();
        // Pipelined: a plain request, a lookup, a plain request; answered in order.
        c.client_data(
            b"GET /a?q=1 HTTP/1.1\r\nHost: h\r\n\r\n\
              GET /d?dn=push.example&ttl=1 HTTP/1.1\r\nHost: h\r\n\r\n\
              GET /b HTTP/1.1\r\nHost: h\r\n\r\n",
            TS,
            1,
            &mut out,
        );
        for body in [&b"abc"[..], b"192.0.2.9,60", b"xyz"] {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Encoding: identity\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            c.server_data(&[head.as_bytes(), body].concat(), TS, 2, &mut out);
        }
        let got: Vec<(&[u8], usize)> = responses(&out)
            .iter()
            .map(|(_, r)| (r.body.as_slice(), r.headers.len()))
            .collect();
        // The lookup's answer with all its fields (its coding), the others framing only.
        assert_eq!(
            got,
            [(&b""[..], 1), (&b"192.0.2.9,60"[..], 2), (&b""[..], 1)]
        );

        // An answer longer than any DNS answer read is given up as it grows, in
        // pieces or whole (chunked, until close), with no anomaly: the framing and
        // the length come out as for a body never kept.
        for framing in ["Content-Length: 70000", "Transfer-Encoding: chunked"] {
            let mut c = Http1Conn::new(lim.clone());
            let mut out = Vec::new();
            c.client_data(b"GET /1/d?host=a.example HTTP/1.1\r\n\r\n", TS, 1, &mut out);
            let head = format!("HTTP/1.1 200 OK\r\n{framing}\r\n\r\n");
            c.server_data(head.as_bytes(), TS, 2, &mut out);
            let chunked = framing.starts_with("Transfer");
            let piece = [b'x'; 10_000];
            for _ in 0..7 {
                if chunked {
                    let size = format!("{:x}\r\n", piece.len());
                    let chunk = [size.as_bytes(), &piece, b"\r\n"].concat();
                    c.server_data(&chunk, TS, 3, &mut out);
                } else {
                    c.server_data(&piece, TS, 3, &mut out);
                }
            }
            if chunked {
                c.server_data(b"0\r\n\r\n", TS, 4, &mut out);
            }
            let rs = responses(&out);
            assert_eq!(rs.len(), 1, "{framing}");
            let r = &rs[0].1;
            assert!(r.body.is_empty(), "{framing}");
            let anomalies = r.anomalies.len();
            assert_eq!((r.body_len, r.truncated, anomalies), (70_000, false, 0));
        }
    }

    #[test]
    fn heads_in_progress_count_in_the_tables_budget() {
        // 175 bytes for bodies, the whole 200 for header fields, heads among them.
        let budget = MessageBudget::new(200);
        let mut a = Http1Conn::new(limits()).with_budget(&budget);
        let mut b = Http1Conn::new(limits()).with_budget(&budget);
        let mut out = Vec::new();
        let start = b"GET /feed HTTP/1.1\r\nHost: h\r\nX-Filler: ";
        a.client_data(start, TS, 1, &mut out);
        a.client_data(&[b'a'; 30], TS, 2, &mut out);
        // A head waiting for its end counts by its buffer's capacity.
        let held_a = a.client.buf.capacity();
        assert!(held_a >= start.len() + 30);
        assert_eq!(budget.held(), held_a, "a's head waits for its end");
        // b's head outgrows what is left: given up, its bytes no longer held.
        b.client_data(start, TS, 3, &mut out);
        assert_eq!(budget.held(), held_a + start.len());
        b.client_data(&[b'b'; 100], TS, 4, &mut out);
        assert_eq!(budget.held(), held_a);
        let kinds: Vec<&str> = out
            .iter()
            .filter_map(|e| match e {
                Http1Event::Anomaly(a) => Some(a.kind.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(kinds, [message_budget::ANOMALY]);
        // b finds its next request once the budget has room; a's head completes.
        a.client_data(b"\r\n\r\n", TS, 5, &mut out);
        assert_eq!(budget.held(), 0);
        b.client_data(
            b"\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n",
            TS,
            6,
            &mut out,
        );
        let paths: Vec<&str> = requests(&out).iter().map(|r| r.target.as_str()).collect();
        assert_eq!(paths, ["/feed", "/next"]);
        // A gap gives a head's bytes back at once.
        a.client_data(start, TS, 7, &mut out);
        assert_eq!(budget.held(), start.len());
        a.client_gap(10, &mut out);
        assert_eq!(budget.held(), 0);
        drop((a, b));
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn a_finished_body_gives_its_room_to_the_next_in_the_same_input() {
        // 50 bytes for bodies: each of two pipelined 40-byte bodies fits alone.
        let budget = MessageBudget::new(57);
        let mut conn = Http1Conn::new(limits()).with_budget(&budget);
        let one = [
            &b"POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 40\r\n\r\n"[..],
            &[b'x'; 40],
        ]
        .concat();
        let mut out = Vec::new();
        conn.client_data(&[one.clone(), one].concat(), TS, 1, &mut out);
        let reqs = requests(&out);
        assert_eq!(reqs.len(), 2);
        assert!(reqs.iter().all(|r| r.body.len() == 40 && !r.truncated));
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn an_announced_body_reserves_in_proportion_to_what_came() {
        let mut conn = Http1Conn::new(limits());
        let mut out = Vec::new();
        conn.client_data(
            b"POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000\r\n\r\n0123456789",
            TS,
            1,
            &mut out,
        );
        let Phase::Body { msg, .. } = &conn.client.phase else {
            panic!("reading the body");
        };
        assert_eq!(msg.body, b"0123456789");
        assert!(
            msg.body.capacity() <= 10 * BODY_RESERVE_FACTOR,
            "{} bytes reserved for 10 received",
            msg.body.capacity()
        );
        // A body that came whole is reserved whole, at once.
        let mut conn = Http1Conn::new(limits());
        let mut whole = b"POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 3000\r\n\r\n".to_vec();
        whole.extend_from_slice(&[b'x'; 1000]);
        conn.client_data(&whole, TS, 1, &mut out);
        let Phase::Body { msg, .. } = &conn.client.phase else {
            panic!("reading the body");
        };
        assert!(msg.body.capacity() >= 3000);
    }
}
