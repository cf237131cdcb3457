//! The flow table: one state per TCP connection or UDP flow, from decoded packets to
//! application-layer events ([`FlowEvent`]).
//!
//! A TCP connection gets two [`Reassembler`]s (client → server, server → client) and,
//! once its first client bytes say what it speaks ([`sniff`]), one parser: HTTP/1
//! ([`Http1Conn`]), HTTP/2 ([`Http2Conn`]: h2c with prior knowledge, or after an
//! HTTP/1.1 `Upgrade: h2c` answered by `101`), a TLS handshake reader
//! ([`HelloReader`]) or DNS over TCP. HTTP/1 requests are held until their response
//! arrives (bounded) and then handed out as [`FlowEvent::Http`]; HTTP/2 streams come
//! out of their parser whole, each as one [`FlowEvent::Http`]; after an `Upgrade:
//! websocket` answered by `101`, each message the client sends is one more
//! [`FlowEvent::Http`] (method `WS`, read by a [`WsReader`]); a connection that
//! produced no HTTP exchange becomes exactly one [`FlowEvent::Metadata`] (TLS without
//! keys, connections that never carried data), so contact with a tracker is never
//! invisible. A cleartext connection in a protocol no parser reads hands its client's
//! bytes out instead, in [`FlowEvent::Part`]s ([`PayloadParts`]: a part ends after a
//! quiet second, five seconds after it began, at 64 KiB, at a gap or with the
//! connection; bounded per connection and per table), each for the analysis to
//! search as that exchange's `payload`, the first standing for the connection's
//! metadata event. What a `CONNECT` tunnel (or
//! an upgrade other than WebSocket's and h2c's) carries after its answer, or a SOCKS5
//! (or SOCKS4) tunnel after its handshake ([`socks::Handshake`]), counts as a connection of its
//! own: sniffed afresh, it may become that one metadata event
//! (named by its TLS server name, else the `CONNECT` target: [`ConnInfo::tunnel`]),
//! and its HTTP/1 requests are paired by a parser that counts them from there. What
//! the client wrote before the answer that opened it was held for that answer and is
//! read with the segments it came in ([`crate::net::held`]), as is what a WebSocket
//! client sent before its `101`.
//!
//! A UDP flow is reported as one [`FlowEvent::Metadata`] at its first datagram (with
//! that datagram as its `payload` when the client sent it and it is not QUIC; the
//! client's later datagrams of such a flow follow in [`FlowEvent::Part`]s), except
//! when that datagram is a QUIC client Initial ([`sniff::sniff_udp_client`]): then the
//! client's datagrams go to a [`QuicInitialReader`] and the event waits until the
//! ClientHello is read (its SNI names the flow), the reader gives up, or the flow
//! closes. When the key log holds the secrets of that ClientHello's random, the flow
//! is decrypted from then on ([`QuicFlow`]): every datagram, both ways, goes there,
//! and its HTTP/3 requests come out as [`FlowEvent::Http`] (the metadata event only
//! when none was read). With an Encrypted Client Hello, the secrets are looked for
//! under the inner hello's random when the key log's `ECH_SECRET` opens it; failing
//! both, the flow holds its datagrams in a [`QuicTrial`] until the server's first
//! Handshake packet says which key log entry is its own (or that none is).
//! A flow whose first client datagram starts with an HTTP request line
//! ([`sniff::udp_http_request`]: SSDP and other HTTP over UDP) gives no metadata event:
//! each client datagram's request is a [`FlowEvent::Http`] of its own, without a
//! response ([`httpu_requests`]).
//!
//! # Who is the client
//! The sender of a SYN without ACK, or the receiver of a SYN-ACK. A connection picked
//! up mid-stream (capture started late, SYN lost) takes as client the side whose
//! address is a case device, else the side with the higher port (ephemeral ports are
//! high, services low), else the sender of the first packet.
//!
//! # TLS decryption
//! With a key log ([`FlowTable::add_keylog`]: `--keylog` files, even empty ones, or
//! pcapng Decryption Secrets Blocks as the capture reader meets them), a connection
//! sniffed as TLS gets a [`TlsDecryptor`] *below* its application parser: every
//! in-order byte goes through it, and the plaintext it yields enters the connection as
//! cleartext bytes would (sniffed, then HTTP/1 or HTTP/2), with the time and frame of
//! the TLS record that carried it. The decryptor also reads the hellos for [`TlsSeen`]. Policies:
//! - a TLS connection whose first bytes came before any key log was given is read for
//!   its hellos only (a pcapng writer puts its secrets blocks before the packets they
//!   unlock); a connection with a decryptor looks its secrets up in the key log as it
//!   stands when it needs them;
//! - a TCP gap goes to the decryptor ([`TlsDecryptor::gap`]), never to the parser
//!   above (its length counts ciphertext); the parser simply gets no more bytes of
//!   that direction;
//! - every TLS connection ends with a status ([`TlsSeen::status`]): decrypted, or not
//!   and why ([`NotDecrypted`]); without a key log that is always "no key". The counts
//!   by reason are in [`FlowStats`].
//!
//! Without a key log nothing changes: the two hellos are read, the connection becomes
//! one metadata event as soon as both are, and its bytes are not looked at further.
//!
//! # Limits (all in [`FlowLimits`])
//! - idle timeouts by capture time (TCP 5 minutes, as Zeek's `tcp_inactivity_timeout`;
//!   UDP 1 minute): an idle flow is closed and its events handed out;
//! - a maximum number of flows: when full, the least recently active 1 % are closed
//!   (anomaly `flow-table-full` counted);
//! - a global budget of out-of-order bytes held by all reassemblers: over it, the
//!   least recently active flows give up their oldest holes (the data behind a hole is
//!   delivered, the hole becomes a gap) until the total is under the budget again;
//! - a global budget of bytes of messages in progress (bodies, HTTP/2 and HTTP/3
//!   header fields, WebSocket messages, requests awaiting responses, TLS records
//!   waiting for their keys), shared by the connections' parsers
//!   ([`message_budget`]): over it, a message keeps no
//!   more (anomaly `message-memory-limit`);
//! - a maximum number of UDP flows reading a QUIC ClientHello at once (each holds at
//!   most `quic::MAX_CRYPTO_BYTES`); beyond it a new QUIC flow is reported at once,
//!   without its server name (anomaly `quic-reader-limit`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use foldhash::fast::SeedableRandomState;

use crate::exchange::{Anomaly, ServerCertificate};
use crate::net::dns::{self, DnsMessage, DnsTcpFramer};
use crate::net::gquic::{self, GquicHello};
use crate::net::held::{held_pieces, HeldSegment, HeldSegments};
use crate::net::http1::{Http1Conn, Http1Event, Http1Limits, HttpRequest, HttpResponse};
use crate::net::http2::{Http2Conn, Http2Event, Http2Limits};
use crate::net::http3::Http3Limits;
use crate::net::keyed_hash;
use crate::net::keylog::{KeyLog, KeyLogStats, LateKeys};
use crate::net::mdns;
use crate::net::message_budget::{self, BudgetShare, MessageBudget};
use crate::net::packet::{Packet, TcpSegment, Transport};
use crate::net::quic::QuicInitialReader;
use crate::net::quic_conn::QuicConnLimits;
use crate::net::quic_flow::QuicFlow;
use crate::net::quic_trial::{self, HeldDatagram, QuicTrial, TrialStep};
use crate::net::sniff::{self, AppProtocol, Sniff};
use crate::net::socks;
use crate::net::tail_search::TailSearch;
use crate::net::tcp::{Delivery, Reassembler, SegmentMeta, TcpLimits};
use crate::net::tls::{
    ClientHello, FlightPoll, HelloPoll, HelloReader, ServerFlightReader, ServerHello,
};
use crate::net::tls_decrypt::{
    self, DecryptStatus, EchOutcome, NotDecrypted, TlsDecryptor, TlsOutput,
};
use crate::net::unparsed::{Part, PartLimits, PayloadParts};
use crate::net::websocket::{WsEvent, WsLimits, WsReader, WsUpgrade};
use crate::timestamp::Timestamp;

const MICROS_PER_SECOND: i64 = 1_000_000;
/// Default [`FlowLimits::max_unparsed_bytes`].
pub const DEFAULT_MAX_UNPARSED_BYTES: usize = 64 << 10;
/// Default [`FlowLimits::max_unparsed_depth`].
pub const DEFAULT_MAX_UNPARSED_DEPTH: usize = 1 << 20;
/// Default [`FlowLimits::max_unparsed_parts`].
pub const DEFAULT_MAX_UNPARSED_PARTS: u64 = 256;
/// Default [`FlowLimits::unparsed_overlap`].
pub const DEFAULT_UNPARSED_OVERLAP: usize = 1 << 10;
/// Default [`FlowLimits::max_unparsed_total`].
pub const DEFAULT_MAX_UNPARSED_TOTAL: usize = 64 << 20;
/// Default [`FlowLimits::max_message_total`].
pub const DEFAULT_MAX_MESSAGE_TOTAL: usize = 128 << 20;
/// Client bytes looked at to guess the protocol (longest signature: the HTTP/2
/// connection preface, 24 bytes).
const SNIFF_BYTES: usize = 64;
/// Connection-level anomalies kept per flow; more are only counted.
const MAX_FLOW_ANOMALIES: usize = 16;
/// A full flow table closes 1/this of its flows at once (see `make_room`).
const EVICT_FRACTION: usize = 100;
/// How often (capture time) idle flows are looked for.
const SWEEP_INTERVAL_MICROS: i64 = MICROS_PER_SECOND;
/// pcapng Decryption Secrets Block type of an NSS key log (`TLSK`, pcapng spec §4.7).
pub const SECRETS_TYPE_TLS_KEYLOG: u32 = 0x544c_534b;

/// Bounds of the flow table. Defaults are documented on each field.
#[derive(Debug, Clone)]
pub struct FlowLimits {
    pub tcp: TcpLimits,
    pub http: Http1Limits,
    pub http2: Http2Limits,
    pub websocket: WsLimits,
    /// Flows tracked at once (default 100 000).
    pub max_flows: usize,
    /// Out-of-order bytes held by all reassemblers together (default 128 MiB).
    pub max_buffered_total: usize,
    /// A TCP connection without packets for this long is closed (default 300 s).
    pub tcp_idle_micros: i64,
    /// A UDP flow without packets for this long is forgotten (default 60 s).
    pub udp_idle_micros: i64,
    /// HTTP requests of one connection held waiting for their responses (default 16);
    /// beyond it the oldest is handed out without its response.
    pub max_pending_requests: usize,
    /// Body bytes of the requests one connection holds waiting (default 1 MiB); beyond
    /// it the oldest are handed out without their responses, so waiting for a
    /// response never holds large uploads.
    pub max_pending_body_bytes: usize,
    /// UDP flows reading a QUIC ClientHello at once (default 1024).
    pub max_quic_readers: usize,
    /// QUIC connections decrypted with the key log at once (default 1024); beyond
    /// it a new one is reported by its server name only (anomaly
    /// `quic-session-limit`).
    pub max_quic_sessions: usize,
    /// Bounds of each decrypted QUIC connection's stream reassembly.
    pub quic: QuicConnLimits,
    /// Bounds of each decrypted QUIC connection's HTTP/3.
    pub http3: Http3Limits,
    /// Most client bytes of one part of a connection in cleartext whose protocol no
    /// parser reads (not HTTP, TLS or DNS: a push SDK's own protocol, say), each part
    /// an exchange for the analysis to search (default 64 KiB; see
    /// [`unparsed`](super::unparsed) for where parts end).
    pub max_unparsed_bytes: usize,
    /// Client bytes of such a connection (or UDP flow) searched over all its parts
    /// (default 1 MiB, Suricata's default stream reassembly depth); the rest is
    /// counted, and reported when it ends (`payload-not-searched`).
    pub max_unparsed_depth: usize,
    /// Parts of such a connection (or UDP flow), each an exchange (default 256: a
    /// push channel's heartbeat every four minutes for seventeen hours, a VPN's
    /// keepalive every 25 s for nearly two); later bytes are counted as past the
    /// depth.
    pub max_unparsed_parts: u64,
    /// Last bytes of such a TCP connection's part carried to its next part, so that
    /// a value cut between the two is found ([`Part::lead`]): the analysis sets it to
    /// its longest known-value variant plus one (default 1 KiB); counted in
    /// `max_unparsed_total`.
    pub unparsed_overlap: usize,
    /// Those client bytes kept by all connections of the table together (default
    /// 64 MiB: a thousand connections' worth at once); past it a connection keeps no
    /// more, so a flood of such connections cannot grow memory.
    pub max_unparsed_total: usize,
    /// Bytes of messages in progress kept by all connections together (default
    /// 128 MiB, counted as bytes kept; what is allocated for them stays within about
    /// twice that): bodies being read (HTTP/1, HTTP/2, HTTP/3), HTTP/1 heads waiting
    /// for their end (counted by capacity), HTTP/2 and HTTP/3 header fields of open
    /// streams, HPACK and QPACK dynamic tables, WebSocket messages, requests waiting
    /// for their responses, TLS records held until their keys are known, and
    /// out-of-order stream bytes of decrypted QUIC connections (the last eighth for
    /// header fields, tables and heads only). Past it a
    /// message keeps no more (anomaly `message-memory-limit`), and a TLS connection
    /// whose held records do not fit is not decrypted; see
    /// [`message_budget`].
    pub max_message_total: usize,
    /// Hand out each DNS query a client sends (over UDP, TCP, or TLS a key log opens)
    /// as a [`FlowEvent::DnsQuery`], and each mDNS response a host sends as a
    /// [`FlowEvent::MdnsAnnouncement`], for
    /// the tap to search (default off: only answers are read, for the address → name
    /// map).
    pub dns_queries: bool,
    /// Searches each HTTP/1, HTTP/2 and HTTP/3 request body's bytes past their parser's
    /// `max_body_bytes` as they pass, for the exchange's `beyond_cap` (the analysis's
    /// [`tail_search`](crate::rules::Analyzer::tail_search); default none: they are
    /// only counted).
    pub tail_search: Option<TailSearch>,
}

impl Default for FlowLimits {
    fn default() -> Self {
        FlowLimits {
            tcp: TcpLimits::default(),
            http: Http1Limits::default(),
            http2: Http2Limits::default(),
            websocket: WsLimits::default(),
            max_flows: 100_000,
            max_buffered_total: 128 << 20,
            tcp_idle_micros: 300 * MICROS_PER_SECOND,
            udp_idle_micros: 60 * MICROS_PER_SECOND,
            max_pending_requests: 16,
            max_pending_body_bytes: 1 << 20,
            max_quic_readers: 1024,
            max_quic_sessions: 1024,
            quic: QuicConnLimits::default(),
            http3: Http3Limits::default(),
            max_unparsed_bytes: DEFAULT_MAX_UNPARSED_BYTES,
            max_unparsed_depth: DEFAULT_MAX_UNPARSED_DEPTH,
            max_unparsed_parts: DEFAULT_MAX_UNPARSED_PARTS,
            unparsed_overlap: DEFAULT_UNPARSED_OVERLAP,
            max_unparsed_total: DEFAULT_MAX_UNPARSED_TOTAL,
            max_message_total: DEFAULT_MAX_MESSAGE_TOTAL,
            dns_queries: false,
            tail_search: None,
        }
    }
}

impl FlowLimits {
    /// The bounds of a TCP connection's [`PayloadParts`].
    fn parts(&self) -> PartLimits {
        PartLimits {
            part: self.max_unparsed_bytes,
            depth: self.max_unparsed_depth,
            parts: self.max_unparsed_parts,
            table: self.max_unparsed_total,
            overlap: self.unparsed_overlap,
        }
    }

    /// The bounds of a UDP flow's [`PayloadParts`]: datagrams are messages, which a
    /// sender does not cut a value across, so parts carry no lead.
    fn datagram_parts(&self) -> PartLimits {
        PartLimits {
            overlap: 0,
            ..self.parts()
        }
    }
}

/// One end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
    pub mac: Option<[u8; 6]>,
}

/// The sending and receiving ends of `packet`, between `ports` (source, destination).
fn packet_ends(packet: &Packet<'_>, (src_port, dst_port): (u16, u16)) -> (Endpoint, Endpoint) {
    let src = Endpoint {
        ip: packet.src,
        port: src_port,
        mac: packet.src_mac,
    };
    let dst = Endpoint {
        ip: packet.dst,
        port: dst_port,
        mac: packet.dst_mac,
    };
    (src, dst)
}

/// Transport protocol of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    Tcp,
    Udp,
}

/// What the TLS handshake said, as far as it was seen, and whether the connection's
/// application data could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSeen {
    pub client_hello: Option<ClientHello>,
    /// The ClientHelloInner of an ECH offer the key log opened.
    pub inner_hello: Option<ClientHello>,
    /// What became of an ECH offer, when the ClientHello made one.
    pub ech: Option<EchOutcome>,
    pub server_hello: Option<ServerHello>,
    /// The server's certificate: read in clear up to TLS 1.2, from the decrypted
    /// handshake over TLS 1.3.
    pub server_certificate: Option<Arc<ServerCertificate>>,
    /// `Pending` while it is not known yet; settled when the connection closes.
    pub status: DecryptStatus,
}

impl Default for TlsSeen {
    fn default() -> Self {
        TlsSeen {
            client_hello: None,
            inner_hello: None,
            ech: None,
            server_hello: None,
            server_certificate: None,
            status: DecryptStatus::Pending,
        }
    }
}

impl TlsSeen {
    /// Application data (or the encrypted handshake) was decrypted.
    pub fn decrypted(&self) -> bool {
        self.status == DecryptStatus::Decrypted
    }

    /// Why the connection was not decrypted, once that is known.
    pub fn not_decrypted(&self) -> Option<&NotDecrypted> {
        match &self.status {
            DecryptStatus::NotDecrypted(why) => Some(why),
            _ => None,
        }
    }

    /// The negotiated version when the ServerHello was seen, else the highest offered.
    pub fn version(&self) -> Option<u16> {
        if let Some(sh) = &self.server_hello {
            return Some(sh.version);
        }
        self.client_hello.as_ref().map(ClientHello::offered_version)
    }

    /// The server name the client meant: the inner ClientHello's when an ECH offer
    /// was opened, else the ClientHello's.
    pub fn sni(&self) -> Option<&str> {
        match &self.inner_hello {
            Some(inner) => inner.sni.as_deref(),
            None => self.client_hello.as_ref()?.sni.as_deref(),
        }
    }

    /// The outer ClientHello's server name (ECH's public name) when the inner one was
    /// opened and names another.
    pub fn outer_sni(&self) -> Option<&str> {
        let outer = self.client_hello.as_ref()?.sni.as_deref()?;
        (self.inner_hello.is_some() && self.sni() != Some(outer)).then_some(outer)
    }
}

/// Facts about a connection, handed out with each of its events.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub proto: Proto,
    pub client: Endpoint,
    pub server: Endpoint,
    /// Time and frame of the connection's first packet.
    pub first_ts: Timestamp,
    /// Time of the client's first payload byte (a TLS ClientHello, a request), if any.
    pub first_client_data: Option<Timestamp>,
    pub first_frame: u64,
    pub last_frame: u64,
    /// Payload bytes each way (as captured, retransmissions included).
    pub client_bytes: u64,
    pub server_bytes: u64,
    /// Boxed: most connections of a large table never get this far, and the hellos
    /// are a third of a flow's size inline.
    pub tls: Option<Box<TlsSeen>>,
    /// Protocol guessed from content, once known.
    pub protocol: Option<AppProtocol>,
    /// The Android app of the connection: the UID of its first packet that names one.
    pub app_uid: Option<i32>,
    /// The target (`host:port`) of the HTTP `CONNECT` (answered 2xx) or SOCKS5
    /// `CONNECT` (answered "succeeded") that made the connection a tunnel: what the
    /// tunnel reaches, named when no TLS server name is.
    pub tunnel: Option<String>,
    /// A Google QUIC flow's version and server name, from its client's first packet.
    pub gquic: Option<Box<GquicHello>>,
}

/// What the flow table hands to its owner.
#[derive(Debug)]
pub enum FlowEvent {
    /// One HTTP request with its response when that was seen.
    Http {
        conn: ConnInfo,
        /// Position of the request on its connection (0-based): HTTP/1 in request
        /// order; HTTP/2 streams in the order they complete (an h2c upgrade's stream 1
        /// keeps the index of the HTTP/1.1 request it answers).
        index: u64,
        request: Box<HttpRequest>,
        response: Option<Box<HttpResponse>>,
        anomalies: Vec<Anomaly>,
    },
    /// A connection or UDP flow of which nothing above the transport could be read.
    Metadata {
        conn: ConnInfo,
        anomalies: Vec<Anomaly>,
        /// Of a UDP flow in a protocol no parser reads, its first datagram when the
        /// client sent it (up to [`FlowLimits::max_unparsed_bytes`]); else empty (a
        /// TCP connection's client bytes come in [`FlowEvent::Part`]s).
        payload: Vec<u8>,
    },
    /// A part of the client's bytes of a TCP connection or UDP flow in a cleartext
    /// protocol no parser reads (see [`unparsed`](super::unparsed)): metadata only,
    /// its bytes searched. Part 0 is the connection's metadata event (a UDP flow's
    /// part 0 is its [`FlowEvent::Metadata`]).
    Part {
        conn: ConnInfo,
        anomalies: Vec<Anomaly>,
        part: Part,
    },
    /// A DNS message (UDP or TCP), for the address → name map.
    Dns { message: DnsMessage, ts: Timestamp },
    /// A DNS query a client sent ([`FlowLimits::dns_queries`]): the names it asks
    /// for, which an SDK may have made of an identifier (`<id>.t.example.net` reaches
    /// `example.net`'s name servers). Over UDP, `conn` is the datagram's (its sender
    /// the client, its frame the datagram's); over TCP (or decrypted DNS over TLS),
    /// the connection's, the query's own frames in `query`.
    DnsQuery {
        conn: ConnInfo,
        names: Vec<String>,
        query: DnsQueryAt,
    },
    /// An mDNS response a host sent from port 5353 ([`FlowLimits::dns_queries`]): its
    /// announcement of its own name and services to the local network (instance
    /// names, TXT records), which an app's service may fill with an identifier. Its
    /// bytes (up to [`FlowLimits::max_unparsed_bytes`]); `conn` as a query's.
    MdnsAnnouncement { conn: ConnInfo, payload: Vec<u8> },
}

/// A short, stable name of a reason for not decrypting (summary keys, counters).
pub fn not_decrypted_kind(why: &NotDecrypted) -> &'static str {
    match why {
        NotDecrypted::NoKey => "no-key",
        NotDecrypted::UnsupportedSuite(_) => "unsupported-suite",
        NotDecrypted::MissingHandshake => "missing-handshake",
        NotDecrypted::AuthenticationFailed => "authentication-failed",
        NotDecrypted::UnsupportedVersion(_) => "unsupported-version",
        NotDecrypted::LostSync => "lost-sync",
        NotDecrypted::QuicPayload => "quic",
    }
}

/// Where a [`FlowEvent::DnsQuery`] is in its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DnsQueryAt {
    /// Time of the segment (or datagram) that began the query.
    pub ts: Timestamp,
    /// Its first and last frame.
    pub frames: (u64, u64),
    /// Names the client asked for earlier on the connection (0 over UDP): the first
    /// name's number, so that every name of a connection has its own.
    pub first_name: u64,
}

/// Counters of the flow table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowStats {
    pub tcp_connections: u64,
    pub udp_flows: u64,
    pub timed_out: u64,
    pub evicted_table_full: u64,
    pub budget_shrinks: u64,
    pub dns_messages: u64,
    pub dns_errors: u64,
    /// mDNS messages about the operating system's own services and host names only
    /// ([`mdns::is_system_message`]): not handed out to be searched (counted only
    /// when queries are handed out, [`FlowLimits::dns_queries`]).
    pub mdns_system: u64,
    /// Connection-level anomalies by kind (also attached to the connection's events).
    pub anomalies: u64,
    /// Closed TLS connections whose data was decrypted …
    pub tls_decrypted: u64,
    /// … and those that were not, by reason ([`not_decrypted_kind`]).
    pub tls_not_decrypted: BTreeMap<String, u64>,
    /// Connections among those not decrypted for want of a key whose key came later,
    /// in a key log added after their handshake (see [`LateKeys`]).
    pub tls_keys_late: u64,
}

/// Key of a flow: its two ends in a fixed order, so both directions find it.
/// Hashed by hand (see the `Hash` impl), by a keyed hasher ([`keyed_hash`]): the keys
/// are chosen by whoever sends the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FlowKey {
    proto: Proto,
    lo: (IpAddr, u16),
    hi: (IpAddr, u16),
}

impl FlowKey {
    fn new(proto: Proto, a: (IpAddr, u16), b: (IpAddr, u16)) -> Self {
        if a <= b {
            FlowKey {
                proto,
                lo: a,
                hi: b,
            }
        } else {
            FlowKey {
                proto,
                lo: b,
                hi: a,
            }
        }
    }
}

impl std::hash::Hash for FlowKey {
    /// One `write` of an encoding instead of the nine small writes the derived impl
    /// makes (enum tags, address slices with their lengths, ports): every packet looks
    /// its flow up two or three times, and the hasher pays per call and per length
    /// (foldhash: one short path up to 16 bytes), so an IPv4 end takes 7 bytes, not
    /// the 19 of an IPv6 one (15 bytes a key instead of 39). Each end's tag says its
    /// address's length, so distinct keys encode distinctly, and equal keys encode
    /// equally, as `Hash` requires.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let mut buf = [0u8; 1 + 2 * 19];
        buf[0] = match self.proto {
            Proto::Tcp => 6,
            Proto::Udp => 17,
        };
        let mut len = 1;
        for (ip, port) in [self.lo, self.hi] {
            let end: &mut [u8] = match ip {
                IpAddr::V4(v4) => {
                    let end = &mut buf[len..len + 7];
                    end[0] = 4;
                    end[1..5].copy_from_slice(&v4.octets());
                    end
                }
                IpAddr::V6(v6) => {
                    let end = &mut buf[len..len + 19];
                    end[0] = 6;
                    end[1..17].copy_from_slice(&v6.octets());
                    end
                }
            };
            let n = end.len();
            end[n - 2..].copy_from_slice(&port.to_be_bytes());
            len += n;
        }
        state.write(&buf[..len]);
    }
}

/// The server's first bytes, held while they may still tell the protocol.
struct ServerPrefix {
    bytes: Vec<u8>,
    /// The segment the first of them came in.
    first: SegmentMeta,
}

/// The application-layer state of a TCP connection.
enum App {
    /// Waiting for enough client bytes to guess the protocol.
    Sniffing {
        prefix: Vec<u8>,
        meta: Option<SegmentMeta>,
        /// Server bytes that came before any client byte and may still start a
        /// protocol the server side tells (boxed: rare, and every flow has an `App`).
        server: Option<Box<ServerPrefix>>,
    },
    Http(Box<Http1Conn>),
    Http2(Box<Http2Conn>),
    /// Reading the two hellos (and the server's certificate after its hello); each
    /// reader is dropped once it has read what it reads.
    Tls {
        client: Option<Box<HelloReader>>,
        server: Option<Box<ServerFlightReader>>,
    },
    DnsTcp(Box<DnsStream>),
    /// A cleartext protocol no parser reads: the client's bytes are kept for the
    /// analysis to search, handed out in parts.
    Unparsed(Box<PayloadParts>),
    /// A WebSocket after its upgrade: the client's messages become exchanges.
    WebSocket(Box<WebSocket>),
    /// A SOCKS5 handshake, watched until its tunnel opens.
    Socks(Box<SocksWatch>),
    /// Nothing more to read (encrypted, a tunnel after its exchanges, lost sync).
    Opaque,
}

/// DNS over TCP (or over TLS a key log opens): the server's messages for the address
/// map, the client's handed out as queries when the table is asked to
/// ([`FlowLimits::dns_queries`]); both counted, as over UDP.
struct DnsStream {
    server: DnsTcpFramer,
    client: DnsTcpFramer,
    /// Hand the client's queries out.
    hand_out: bool,
    /// Where the client's message in progress began.
    query_start: Option<SegmentMeta>,
    /// Names the client's queries asked for so far.
    names: u64,
    /// Messages read and messages that did not parse, both ways: the table's
    /// [`FlowStats`] count them when the connection closes.
    messages: u64,
    errors: u64,
}

impl DnsStream {
    /// Parses one framed message, counting it.
    fn parse(&mut self, m: &[u8]) -> Option<DnsMessage> {
        match dns::parse(m) {
            Ok(message) => {
                self.messages += 1;
                Some(message)
            }
            Err(_) => {
                self.errors += 1;
                None
            }
        }
    }
}

/// A SOCKS5 (or SOCKS4) handshake being watched, the bytes it holds counted in the table's
/// [`FlowLimits::max_unparsed_total`] (given back when it ends), so that a flood of
/// half-open handshakes cannot hold more than that.
struct SocksWatch {
    handshake: socks::Handshake,
    held: Arc<AtomicUsize>,
    counted: usize,
    /// The segments the client's bytes came in, and how many it sent: the client may
    /// write into the tunnel before the server's reply.
    client_segments: HeldSegments,
    client_len: usize,
}

impl SocksWatch {
    fn new(held: Arc<AtomicUsize>) -> Self {
        SocksWatch {
            handshake: socks::Handshake::default(),
            held,
            counted: 0,
            client_segments: HeldSegments::default(),
            client_len: 0,
        }
    }

    /// The next bytes of one side, carried by the segment of `meta`; past the table's
    /// total, the handshake is given up and its client bytes go on as a protocol no
    /// parser reads.
    fn push(
        &mut self,
        from_client: bool,
        bytes: &[u8],
        meta: SegmentMeta,
        table_limit: usize,
    ) -> socks::Watched {
        if from_client && !bytes.is_empty() {
            self.client_segments
                .note(self.client_len, meta.ts, meta.frame);
            self.client_len = self.client_len.saturating_add(bytes.len());
        }
        if self.held.load(Ordering::Relaxed) + bytes.len() > table_limit {
            let mut client = self.handshake.take_client();
            if from_client {
                client.extend_from_slice(bytes);
            }
            return socks::Watched::NotSocks { client };
        }
        let watched = self.handshake.push(from_client, bytes);
        let now = self.handshake.held();
        if now >= self.counted {
            self.held.fetch_add(now - self.counted, Ordering::Relaxed);
        } else {
            self.held.fetch_sub(self.counted - now, Ordering::Relaxed);
        }
        self.counted = now;
        watched
    }

    /// The segments of the client's last `rest` bytes (those after its handshake, the
    /// tunnel's first), counted from their start.
    fn client_segments_of_last(&self, rest: usize) -> Vec<HeldSegment> {
        let start = self.client_len.saturating_sub(rest);
        self.client_segments.from(start)
    }
}

impl Drop for SocksWatch {
    fn drop(&mut self) {
        self.held.fetch_sub(self.counted, Ordering::Relaxed);
    }
}

/// A client's WebSocket: its frames, and the upgrade request its messages are sent
/// under (the proxy and HAR readers name them so too).
struct WebSocket {
    reader: WsReader,
    upgrade: WsUpgrade,
    events: Vec<WsEvent>,
}

/// Everything of a TCP connection except its two reassemblers, so that their
/// deliveries can be fed here while they are borrowed.
struct ConnState {
    info: ConnInfo,
    app: App,
    requests_seen: u64,
    /// `requests_seen` when the current HTTP/1 parser started (after a tunnel, the
    /// connection's second): its request indices count from there.
    http_base: u64,
    pending: VecDeque<(u64, HttpRequest)>,
    /// Final responses complete before their requests, by request index (see
    /// [`ConnState::http`]).
    early_responses: Vec<(u64, HttpResponse)>,
    /// Requests handed out before their responses came (`max_pending_requests`,
    /// `max_pending_body_bytes`), by index, oldest first, at most
    /// `max_pending_requests`: a response to one of them is no stray.
    sent_ahead: VecDeque<u64>,
    /// An HTTP exchange or the metadata exchange was handed out.
    emitted: bool,
    /// The metadata event waits for the ServerHello (or the close).
    metadata_due: bool,
    anomalies: Vec<Anomaly>,
    last_ts: Timestamp,
    /// The segment of the latest bytes delivered.
    last_meta: Option<SegmentMeta>,
    http_events: Vec<Http1Event>,
    /// TLS decryption below `app` (see the module docs): only with a key log.
    tls: Option<Box<TlsDecryptor>>,
    /// The table had a key log when the latest bytes were delivered.
    keys_loaded: bool,
    /// Client bytes that were sniffed as TLS, waiting for the new decryptor (`deliver`).
    tls_backlog: Vec<u8>,
    /// Beside the decryptor, the server's first flight read in clear for its TLS ≤ 1.2
    /// certificate, which the decryptor does not read; dropped once done.
    tls_clear: Option<Box<ServerFlightReader>>,
    /// The decryptor's output, reused between feeds.
    tls_out: Vec<TlsOutput>,
    h2_events: Vec<Http2Event>,
    /// An HTTP/1.1 request with `Upgrade: h2c` answered by `101`: its index and the
    /// 101, until the connection switches (then HTTP/2 stream 1 answers it).
    h2c_upgrade: Option<Box<(u64, HttpRequest, HttpResponse)>>,
    /// Index of the upgrade request, for the exchange of HTTP/2 stream 1.
    h2c_stream1_index: Option<u64>,
    /// A WebSocket upgrade answered by `101`, until the connection switches.
    ws_upgrade: Option<WsUpgrade>,
    /// The table's count of client bytes kept by [`App::Unparsed`] connections.
    unparsed_held: Arc<AtomicUsize>,
    /// The table's budget of message bytes, shared by this connection's parsers.
    message_budget: MessageBudget,
    /// The bodies of `pending` and `early_responses`, in that budget (the parser was
    /// granted them first, so they always fit; counted so that others see them as
    /// taken).
    pending_held: BudgetShare,
}

struct TcpFlow {
    to_server: Reassembler,
    to_client: Reassembler,
    state: ConnState,
    buffered: usize,
}

impl TcpFlow {
    /// Whether a SYN from `from` carrying `seq` is a copy of the SYN that opened the
    /// direction it would start.
    fn opened_by(&self, from: Endpoint, seq: u32) -> bool {
        let client = &self.state.info.client;
        let stream = if client.ip == from.ip && client.port == from.port {
            &self.to_server
        } else {
            &self.to_client
        };
        stream.opened_by(seq)
    }
}

struct UdpFlow {
    info: ConnInfo,
    last_ts: Timestamp,
    /// Reading a QUIC ClientHello: the flow's metadata event waits for it.
    quic: Option<Box<QuicInitialReader>>,
    /// Decrypting the QUIC connection with the key log, after its ClientHello.
    decrypt: Option<Box<QuicFlow>>,
    /// An ECH offer whose secrets are not under its randoms: waiting for the server's
    /// Handshake packet to find them in the key log (see [`quic_trial()`]).
    trial: Option<Box<QuicTrial>>,
    /// A protocol no parser reads: the bytes of the first datagram, which went out
    /// with the flow (0 when the server sent it); `None` for QUIC, and for a flow to
    /// a broadcast or multicast address (its later datagrams are not parts).
    first_datagram: Option<usize>,
    /// The client's later datagrams in parts (made at the second).
    parts: Option<Box<PayloadParts>>,
    /// An HTTPU flow ([`AppProtocol::Httpu`]): the index of its next request.
    httpu: Option<u64>,
}

impl UdpFlow {
    /// A client datagram after the first of an HTTPU flow: its requests, else (not
    /// HTTP after all) its bytes searched in parts.
    fn later_httpu_datagram(
        &mut self,
        payload: &[u8],
        at: (Timestamp, u64),
        limits: &FlowLimits,
        held: &Arc<AtomicUsize>,
        out: &mut Vec<FlowEvent>,
    ) {
        let next = self.httpu.get_or_insert(0);
        if !httpu_requests(&self.info, payload, at, &limits.http, next, out) {
            self.later_datagram(payload, at, limits, held, out);
        }
    }

    /// A client datagram after the first, of a protocol no parser reads.
    fn later_datagram(
        &mut self,
        payload: &[u8],
        at: (Timestamp, u64),
        limits: &FlowLimits,
        held: &Arc<AtomicUsize>,
        out: &mut Vec<FlowEvent>,
    ) {
        let first = self.first_datagram.unwrap_or(0);
        let parts = self.parts.get_or_insert_with(|| {
            Box::new(PayloadParts::after_first(
                Arc::clone(held),
                first,
                limits.datagram_parts(),
            ))
        });
        let mut done = Vec::new();
        parts.push(payload, at, &mut done);
        self.emit_parts(done, out);
    }

    fn hand_out_due_part(&mut self, now: Timestamp, out: &mut Vec<FlowEvent>) {
        if let Some(parts) = self.parts.as_mut() {
            let mut done = Vec::new();
            parts.hand_out_if_due(now, &mut done);
            self.emit_parts(done, out);
        }
    }

    /// The flow ended: what its parts still hold goes out.
    fn finish_parts(&mut self, out: &mut Vec<FlowEvent>) {
        if let Some(parts) = self.parts.as_mut() {
            let mut done = Vec::new();
            parts.finish(self.info.last_frame, &mut done);
            self.emit_parts(done, out);
        }
    }

    fn emit_parts(&self, parts: Vec<Part>, out: &mut Vec<FlowEvent>) {
        for mut part in parts {
            out.push(FlowEvent::Part {
                conn: self.info.clone(),
                anomalies: std::mem::take(&mut part.anomalies),
                part,
            });
        }
    }
}

enum Flow {
    Tcp(Box<TcpFlow>),
    Udp(Box<UdpFlow>),
}

impl Flow {
    fn last_ts(&self) -> Timestamp {
        match self {
            Flow::Tcp(t) => t.state.last_ts,
            Flow::Udp(u) => u.last_ts,
        }
    }

    /// A part of a protocol no parser reads is due at `now`
    /// ([`PayloadParts::due`]).
    fn part_due(&self, now: Timestamp) -> bool {
        match self {
            Flow::Tcp(t) => matches!(&t.state.app, App::Unparsed(parts) if parts.due(now)),
            Flow::Udp(u) => u.parts.as_ref().is_some_and(|p| p.due(now)),
        }
    }
}

/// Decides whether an address is a case device (used to tell the client apart when a
/// connection is picked up mid-stream).
pub trait IsDevice {
    fn is_device(&self, ip: IpAddr, mac: Option<[u8; 6]>) -> bool;
}

impl IsDevice for crate::case::DeviceResolver {
    fn is_device(&self, ip: IpAddr, mac: Option<[u8; 6]>) -> bool {
        self.resolve(ip, mac).is_some()
    }
}

/// The TLS secrets of a flow table.
#[derive(Debug, Default)]
struct TlsKeys {
    /// Mutable because decryptors learn sessions for later resumption.
    log: KeyLog,
    /// A key log was given (even an empty one, e.g. a file still being written): TLS
    /// connections get a decryptor, so each gets its own status.
    decrypt: bool,
    /// Connections closed without a key, for telling when keys come too late.
    late: LateKeys,
}

/// The flow table.
pub struct FlowTable {
    limits: FlowLimits,
    keys: TlsKeys,
    flows: HashMap<FlowKey, Flow, SeedableRandomState>,
    buffered_total: usize,
    /// Client bytes kept by the table's [`App::Unparsed`] connections together
    /// (shared with each connection, which adds and gives back its own).
    unparsed_held: Arc<AtomicUsize>,
    /// Bytes of messages in progress kept by all connections together
    /// ([`FlowLimits::max_message_total`]).
    message_budget: MessageBudget,
    next_sweep: Option<Timestamp>,
    stats: FlowStats,
    /// UDP flows with a QUIC reader.
    quic_readers: usize,
    /// UDP flows decrypting QUIC.
    quic_sessions: usize,
    /// QUIC flows whose ECH offer is being matched with the key log (`UdpFlow::trial`).
    quic_trials: usize,
    /// The flows [`finish_some`](Self::finish_some) has still to close, the next last.
    finishing: Vec<FlowKey>,
}

impl FlowTable {
    pub fn new(limits: FlowLimits) -> Self {
        FlowTable {
            message_budget: MessageBudget::new(limits.max_message_total),
            limits,
            keys: TlsKeys::default(),
            flows: HashMap::with_hasher(keyed_hash::keyed_state()),
            buffered_total: 0,
            unparsed_held: Arc::new(AtomicUsize::new(0)),
            next_sweep: None,
            stats: FlowStats::default(),
            quic_readers: 0,
            quic_sessions: 0,
            quic_trials: 0,
            finishing: Vec::new(),
        }
    }

    /// Hands out the DNS queries clients send ([`FlowLimits::dns_queries`]).
    pub fn set_dns_queries(&mut self, on: bool) {
        self.limits.dns_queries = on;
    }

    pub fn stats(&self) -> &FlowStats {
        &self.stats
    }

    /// Adds the lines of an NSS key log (a `--keylog` file, or the data of a pcapng
    /// Decryption Secrets Block of type [`SECRETS_TYPE_TLS_KEYLOG`]); TLS connections
    /// sniffed from now on are decrypted where their secrets are known.
    /// Even an empty text turns decryption on (each TLS connection then gets its own
    /// decryption status).
    pub fn add_keylog(&mut self, text: &[u8]) -> KeyLogStats {
        self.keys.decrypt = true;
        let stats = self.keys.log.add(text);
        self.stats.tls_keys_late += self.keys.late.keys_added(text, &self.keys.log);
        stats
    }

    /// Adds the secrets of `keys` (see [`add_keylog`](Self::add_keylog)).
    pub fn add_keys(&mut self, keys: &KeyLog) {
        self.keys.decrypt = true;
        self.keys.log.merge(keys);
    }

    /// Replaces the key log (see [`add_keylog`](Self::add_keylog)).
    pub fn set_keylog(&mut self, keys: KeyLog) {
        self.keys = TlsKeys {
            log: keys,
            decrypt: true,
            late: LateKeys::default(),
        };
    }

    /// The secrets known so far.
    pub fn keylog(&self) -> &KeyLog {
        &self.keys.log
    }

    /// Flows currently open.
    pub fn open_flows(&self) -> usize {
        self.flows.len()
    }

    /// One decoded packet of frame `frame` captured at `ts`.
    pub fn packet(
        &mut self,
        ts: Timestamp,
        frame: u64,
        packet: &Packet<'_>,
        devices: &dyn IsDevice,
        out: &mut Vec<FlowEvent>,
    ) {
        self.sweep_if_due(ts, out);
        match &packet.transport {
            Transport::Tcp(seg) => self.tcp(ts, frame, packet, seg, devices, out),
            Transport::Udp {
                src_port,
                dst_port,
                payload,
            } => self.udp(
                ts, frame, packet, *src_port, *dst_port, payload, devices, out,
            ),
            Transport::Other { .. } => {}
        }
    }

    /// End of input: closes every flow, oldest first, and hands out their events.
    pub fn finish(&mut self, out: &mut Vec<FlowEvent>) {
        while self.finish_some(usize::MAX, out) {}
    }

    /// The capture's clock has reached `now` without a packet (a live capture gone
    /// quiet): what is due by then happens as a packet of that time would make it
    /// happen (idle flows closed, quiet clients' parts handed out).
    pub fn tick(&mut self, now: Timestamp, out: &mut Vec<FlowEvent>) {
        self.sweep_if_due(now, out);
    }

    /// End of input, a part at a time: closes up to `max` of the flows still open,
    /// oldest first (by first packet), their events into `out`; `false` once none is
    /// left. A caller handing `out` on between calls never holds the events of a full
    /// table at once. No packet may come between the calls.
    pub fn finish_some(&mut self, max: usize, out: &mut Vec<FlowEvent>) -> bool {
        if self.finishing.is_empty() {
            let mut keys: Vec<(Timestamp, u64, FlowKey)> = self
                .flows
                .iter()
                .map(|(k, f)| (first_ts(f), first_frame(f), *k))
                .collect();
            // Deterministic order whatever the hash map's: by first packet. Popped from
            // the end, so newest first here.
            keys.sort_by_key(|(ts, frame, _)| std::cmp::Reverse((*ts, *frame)));
            self.finishing = keys.into_iter().map(|(_, _, k)| k).collect();
        }
        for _ in 0..max {
            let Some(key) = self.finishing.pop() else {
                break;
            };
            self.close(&key, out);
        }
        if self.finishing.is_empty() {
            self.finishing = Vec::new();
            return false;
        }
        true
    }

    fn sweep_if_due(&mut self, now: Timestamp, out: &mut Vec<FlowEvent>) {
        match self.next_sweep {
            Some(due) if now < due => return,
            None => {
                self.next_sweep = Some(Timestamp::from_micros(
                    now.micros().saturating_add(SWEEP_INTERVAL_MICROS),
                ));
                return;
            }
            Some(_) => {}
        }
        self.next_sweep = Some(Timestamp::from_micros(
            now.micros().saturating_add(SWEEP_INTERVAL_MICROS),
        ));
        let (tcp_idle, udp_idle) = (self.limits.tcp_idle_micros, self.limits.udp_idle_micros);
        // One pass finds the idle flows, and the clients of protocols no parser reads
        // that went quiet: their parts go out now rather than at their next bytes (a
        // live tap shows them within about a second). Only when a part goes out
        // depends on the sweep, not what it holds: a part due now would be due at the
        // client's next bytes too.
        let mut idle: Vec<(Timestamp, u64, FlowKey)> = Vec::new();
        let mut due: Vec<(Timestamp, u64, FlowKey)> = Vec::new();
        for (k, f) in &self.flows {
            let limit = match k.proto {
                Proto::Tcp => tcp_idle,
                Proto::Udp => udp_idle,
            };
            if now.micros().saturating_sub(f.last_ts().micros()) > limit {
                idle.push((first_ts(f), first_frame(f), *k));
            } else if f.part_due(now) {
                due.push((first_ts(f), first_frame(f), *k));
            }
        }
        idle.sort_by_key(|(ts, frame, _)| (*ts, *frame));
        for (_, _, key) in idle {
            self.stats.timed_out += 1;
            self.close(&key, out);
        }
        due.sort_by_key(|(ts, frame, _)| (*ts, *frame));
        for (_, _, key) in due {
            match self.flows.get_mut(&key) {
                Some(Flow::Tcp(t)) => t.state.hand_out_due_part(now, out),
                Some(Flow::Udp(u)) => u.hand_out_due_part(now, out),
                None => {}
            }
        }
    }

    /// A full table closes its least recently active flows, [`EVICT_FRACTION`] of them
    /// at once: one pass over the table per batch instead of one per new flow, so a
    /// flood of new connections (a SYN or port scan) costs linear time, not quadratic.
    fn make_room(&mut self, out: &mut Vec<FlowEvent>) {
        if self.flows.len() < self.limits.max_flows {
            return;
        }
        let mut by_age: Vec<(Timestamp, u64, FlowKey)> = self
            .flows
            .iter()
            .map(|(k, f)| (f.last_ts(), first_frame(f), *k))
            .collect();
        let batch = (self.flows.len() / EVICT_FRACTION).clamp(1, by_age.len());
        if batch < by_age.len() {
            by_age.select_nth_unstable_by_key(batch, |(ts, frame, _)| (*ts, *frame));
        }
        let mut oldest = by_age;
        oldest.truncate(batch);
        // Deterministic order of the events they produce.
        oldest.sort_by_key(|(ts, frame, _)| (*ts, *frame));
        for (_, _, key) in oldest {
            self.stats.evicted_table_full += 1;
            if let Some(Flow::Tcp(t)) = self.flows.get_mut(&key) {
                t.state.note(Anomaly::new(
                    "flow-table-full",
                    "closed early: the flow table was full and this flow was among the least recently active",
                ));
            }
            self.close(&key, out);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn udp(
        &mut self,
        ts: Timestamp,
        frame: u64,
        packet: &Packet<'_>,
        src_port: u16,
        dst_port: u16,
        payload: &[u8],
        devices: &dyn IsDevice,
        out: &mut Vec<FlowEvent>,
    ) {
        if src_port == 53 || dst_port == 53 || src_port == 5353 || dst_port == 5353 {
            self.dns_message(packet, (src_port, dst_port), payload, (ts, frame), out);
            return;
        }
        let key = FlowKey::new(Proto::Udp, (packet.src, src_port), (packet.dst, dst_port));
        if let Some(Flow::Udp(flow)) = self.flows.get_mut(&key) {
            flow.last_ts = ts;
            flow.info.last_frame = frame;
            if flow.info.app_uid.is_none() {
                flow.info.app_uid = packet.app_uid;
            }
            let from_client =
                flow.info.client.ip == packet.src && flow.info.client.port == src_port;
            if from_client {
                flow.info.client_bytes += payload.len() as u64;
            } else {
                flow.info.server_bytes += payload.len() as u64;
            }
            if let Some(session) = flow.decrypt.as_mut() {
                session.push(payload, from_client, ts, frame, &mut flow.info, out);
                return;
            }
            if let Some(trial) = flow.trial.as_mut() {
                let datagram = HeldDatagram {
                    payload: payload.to_vec(),
                    from_client,
                    ts,
                    frame,
                };
                match trial.push(datagram, &self.keys.log) {
                    TrialStep::Wait => {}
                    TrialStep::Opened(random) => {
                        self.quic_trials = self.quic_trials.saturating_sub(1);
                        let sessions = &mut self.quic_sessions;
                        let budget = &self.message_budget;
                        trial_session(
                            &self.keys,
                            &self.limits,
                            sessions,
                            budget,
                            flow,
                            random,
                            out,
                        );
                    }
                    TrialStep::GaveUp(anomaly) => {
                        self.quic_trials = self.quic_trials.saturating_sub(1);
                        trial_gave_up(flow, anomaly, out);
                    }
                }
                return;
            }
            if !from_client {
                return;
            }
            if flow.httpu.is_some() {
                let held = &self.unparsed_held;
                flow.later_httpu_datagram(payload, (ts, frame), &self.limits, held, out);
                return;
            }
            if flow.first_datagram.is_some() {
                let held = &self.unparsed_held;
                flow.later_datagram(payload, (ts, frame), &self.limits, held, out);
                return;
            }
            if let Some(reader) = flow.quic.as_mut() {
                let poll = reader.push(payload);
                if poll != HelloPoll::NeedMore {
                    self.quic_readers = self.quic_readers.saturating_sub(1);
                    let mut anomalies = quic_outcome(&mut flow.info, reader, poll);
                    flow.decrypt = quic_session(
                        &self.keys,
                        &self.limits,
                        &mut self.quic_sessions,
                        &self.message_budget,
                        &mut flow.info,
                        reader,
                        &mut anomalies,
                    );
                    if flow.decrypt.is_none() {
                        flow.trial = quic_trial(
                            &self.keys,
                            &mut self.quic_trials,
                            &mut flow.info,
                            reader,
                            (payload, ts, frame),
                            &mut anomalies,
                        );
                    }
                    flow.quic = None;
                    match flow.decrypt.as_mut() {
                        // This datagram may hold 0-RTT packets after its Initial.
                        Some(session) => {
                            session.hold_anomalies(anomalies);
                            session.push(payload, true, ts, frame, &mut flow.info, out);
                        }
                        None if flow.trial.is_some() => {}
                        None => out.push(FlowEvent::Metadata {
                            conn: flow.info.clone(),
                            anomalies,
                            payload: Vec::new(),
                        }),
                    }
                }
            }
            return;
        }
        self.make_room(out);
        let (src, dst) = packet_ends(packet, (src_port, dst_port));
        // The first sender is the client unless only the receiver is a device.
        let (client, server) =
            if !devices.is_device(src.ip, src.mac) && devices.is_device(dst.ip, dst.mac) {
                (dst, src)
            } else {
                (src, dst)
            };
        let from_client = client == src;
        let mut info = new_info(Proto::Udp, client, server, ts, frame);
        info.app_uid = packet.app_uid;
        if from_client {
            info.client_bytes = payload.len() as u64;
        } else {
            info.server_bytes = payload.len() as u64;
        }
        self.stats.udp_flows += 1;
        let mut quic = None;
        let mut decrypt = None;
        let mut trial = None;
        let mut first_datagram = None;
        let mut httpu = None;
        let mut anomalies = Vec::new();
        if from_client && sniff::sniff_udp_client(payload) == Sniff::Known(AppProtocol::Quic) {
            if self.quic_readers < self.limits.max_quic_readers {
                let mut reader = Box::new(QuicInitialReader::new());
                let poll = reader.push(payload);
                if poll == HelloPoll::NeedMore {
                    self.quic_readers += 1;
                    quic = Some(reader);
                } else {
                    anomalies = quic_outcome(&mut info, &mut reader, poll);
                    decrypt = quic_session(
                        &self.keys,
                        &self.limits,
                        &mut self.quic_sessions,
                        &self.message_budget,
                        &mut info,
                        &reader,
                        &mut anomalies,
                    );
                    if decrypt.is_none() {
                        trial = quic_trial(
                            &self.keys,
                            &mut self.quic_trials,
                            &mut info,
                            &reader,
                            (payload, ts, frame),
                            &mut anomalies,
                        );
                    }
                }
            } else {
                info.protocol = Some(AppProtocol::Quic);
                anomalies.push(Anomaly::new(
                    "quic-reader-limit",
                    "QUIC Initial not read: too many QUIC flows were being read at once",
                ));
            }
        }
        // Otherwise the flow is reported at once (its address is what there is to
        // know); the entry only stops the next datagrams from reporting it again.
        // A client's first datagram in a protocol no parser reads goes with it, for
        // the analysis to search (not QUIC's, which is encrypted); later datagrams
        // follow in parts.
        // HTTP over UDP: each client datagram a request (none when the sniffed
        // request line heads no readable request: then as any other protocol).
        if quic.is_none() && from_client && sniff::udp_http_request(payload) {
            info.protocol = Some(AppProtocol::Httpu);
            let mut next = 0;
            if httpu_requests(
                &info,
                payload,
                (ts, frame),
                &self.limits.http,
                &mut next,
                out,
            ) {
                httpu = Some(next);
            } else {
                info.protocol = None;
            }
        }
        if let Some(session) = decrypt.as_mut() {
            // The flow's events come from its decryption; its first datagram may hold
            // 0-RTT packets after the Initial.
            session.hold_anomalies(std::mem::take(&mut anomalies));
            session.push(payload, true, ts, frame, &mut info, out);
        } else if httpu.is_some() {
            // Its requests went out; a later datagram that holds none is searched in
            // parts, as after a first one no parser reads.
        } else if quic.is_none() && trial.is_none() {
            // Encrypted (gQUIC, WireGuard, DTLS, WebRTC after STUN) or the system's
            // (DHCP): nothing of it, first datagram or later ones, is searched.
            if info.protocol.is_none() && from_client {
                if let Some(hello) = gquic::client_hello(payload) {
                    info.protocol = Some(AppProtocol::GQuic);
                    info.gquic = Some(Box::new(hello));
                }
            }
            if info.protocol.is_none() {
                info.protocol = sniff::encrypted_udp(payload);
            }
            // The system setting up its network: not the app's, not searched.
            if info.protocol.is_none()
                && from_client
                && sniff::dhcp_message(payload, info.client.port, info.server.port)
            {
                info.protocol = Some(AppProtocol::Dhcp);
            }
            let payload = if from_client && info.protocol.is_none() {
                payload[..payload.len().min(self.limits.max_unparsed_bytes)].to_vec()
            } else {
                Vec::new()
            };
            // Later datagrams to a broadcast or multicast address are local
            // announcements (DHCP, SSDP, NetBIOS …), repeated every few seconds:
            // not parts of their own, so they do not flood the exchanges.
            if info.protocol.is_none() && is_unicast(&info.server) {
                first_datagram = Some(payload.len());
            }
            out.push(FlowEvent::Metadata {
                conn: info.clone(),
                anomalies,
                payload,
            });
        }
        self.flows.insert(
            key,
            Flow::Udp(Box::new(UdpFlow {
                info,
                last_ts: ts,
                quic,
                decrypt,
                trial,
                first_datagram,
                parts: None,
                httpu,
            })),
        );
    }

    /// A DNS datagram: its answers for the address map, its query (when asked for)
    /// for the names' search.
    fn dns_message(
        &mut self,
        packet: &Packet<'_>,
        ports: (u16, u16),
        payload: &[u8],
        (ts, frame): (Timestamp, u64),
        out: &mut Vec<FlowEvent>,
    ) {
        match dns::parse(payload) {
            Ok(message) => {
                self.stats.dns_messages += 1;
                if self.limits.dns_queries {
                    self.hand_out_dns(packet, ports, payload, &message, (ts, frame), out);
                }
                out.push(FlowEvent::Dns { message, ts });
            }
            Err(_) => self.stats.dns_errors += 1,
        }
    }

    /// What of a DNS datagram is searched: a query's names, or a host's mDNS
    /// announcement. On mDNS what is about the operating system's own services and
    /// host names ([`mdns`]: its name, address or serial to the local network) is not
    /// the app's to be judged for: such names of a query are left out, such an
    /// announcement is not handed out, and the message is counted.
    fn hand_out_dns(
        &mut self,
        packet: &Packet<'_>,
        ports: (u16, u16),
        payload: &[u8],
        message: &DnsMessage,
        at: (Timestamp, u64),
        out: &mut Vec<FlowEvent>,
    ) {
        let mdns = ports.0 == MDNS_PORT || ports.1 == MDNS_PORT;
        if !message.response {
            let names: Vec<String> = message
                .questions
                .iter()
                .map(|q| &q.name)
                .filter(|name| !(mdns && mdns::is_system_name(name)))
                .cloned()
                .collect();
            if names.len() < message.questions.len() {
                self.stats.mdns_system += 1;
            }
            if !names.is_empty() {
                out.push(dns_query(packet, ports, payload.len(), names, at));
            }
        } else if ports.0 == MDNS_PORT {
            if mdns::is_system_message(payload) {
                self.stats.mdns_system += 1;
                return;
            }
            let conn = sender_info(packet, ports, payload.len(), at);
            let kept = payload.len().min(self.limits.max_unparsed_bytes);
            out.push(FlowEvent::MdnsAnnouncement {
                conn,
                payload: payload[..kept].to_vec(),
            });
        }
    }

    fn tcp(
        &mut self,
        ts: Timestamp,
        frame: u64,
        packet: &Packet<'_>,
        seg: &TcpSegment<'_>,
        devices: &dyn IsDevice,
        out: &mut Vec<FlowEvent>,
    ) {
        let (src, dst) = packet_ends(packet, (seg.src_port, seg.dst_port));
        let key = FlowKey::new(Proto::Tcp, (src.ip, src.port), (dst.ip, dst.port));
        // A fresh SYN on a connection that already carried data is a new connection on
        // reused ports: the old one is over. A copy of the connection's own SYN
        // (retransmitted, or reordered behind the data) is not.
        if seg.syn && !seg.ack_flag {
            if let Some(Flow::Tcp(t)) = self.flows.get(&key) {
                let carried = t.state.info.client_bytes > 0 || t.state.info.server_bytes > 0;
                if carried && !t.opened_by(src, seg.seq) {
                    self.close(&key, out);
                }
            }
        }
        // One lookup for a packet of a known flow (nearly every packet); a new flow
        // costs a second one, after its insertion.
        let flow = match self.flows.get_mut(&key) {
            Some(Flow::Tcp(flow)) => flow,
            Some(Flow::Udp(_)) => return,
            None => {
                let Some(flow) = self.new_tcp_flow(ts, frame, src, dst, seg, devices, out) else {
                    return;
                };
                match self.flows.entry(key).or_insert(Flow::Tcp(Box::new(flow))) {
                    Flow::Tcp(flow) => flow,
                    Flow::Udp(_) => return,
                }
            }
        };
        let flow = flow.as_mut();
        let from_client =
            flow.state.info.client.ip == src.ip && flow.state.info.client.port == src.port;
        flow.state.last_ts = ts;
        flow.state.info.last_frame = frame;
        if flow.state.info.app_uid.is_none() {
            flow.state.info.app_uid = packet.app_uid;
        }
        if from_client {
            flow.state.info.client_bytes += seg.payload.len() as u64;
        } else {
            flow.state.info.server_bytes += seg.payload.len() as u64;
        }
        let meta = SegmentMeta { ts, frame };
        let limits = &self.limits;
        let TcpFlow {
            to_server,
            to_client,
            state,
            buffered,
        } = flow;
        let stream = if from_client {
            &mut *to_server
        } else {
            &mut *to_client
        };
        if seg.syn {
            stream.syn(seg.seq);
        }
        // The SYN occupies one sequence number before the data.
        let seq = if seg.syn {
            seg.seq.wrapping_add(1)
        } else {
            seg.seq
        };
        let keys = &mut self.keys;
        stream.segment(seq, seg.payload, seg.fin, meta, &mut |d| {
            state.deliver(from_client, d, limits, keys, out)
        });
        let now_buffered = to_server.buffered_bytes() + to_client.buffered_bytes();
        self.buffered_total = self
            .buffered_total
            .saturating_sub(*buffered)
            .saturating_add(now_buffered);
        *buffered = now_buffered;
        let done = seg.rst || (to_server.is_finished() && to_client.is_finished());
        if done {
            self.close(&key, out);
        } else if self.buffered_total > self.limits.max_buffered_total {
            self.relieve_pressure(out);
        }
    }

    /// A new TCP flow for a packet of a connection the table does not hold, when the
    /// packet may open one (room is made for it); `None` for packets that say nothing
    /// on their own.
    #[allow(clippy::too_many_arguments)]
    fn new_tcp_flow(
        &mut self,
        ts: Timestamp,
        frame: u64,
        src: Endpoint,
        dst: Endpoint,
        seg: &TcpSegment<'_>,
        devices: &dyn IsDevice,
        out: &mut Vec<FlowEvent>,
    ) -> Option<TcpFlow> {
        // Only a SYN or data opens a flow: the last ACK of a closed connection, a
        // late FIN or a reset of a connection we never saw say nothing.
        if seg.rst || (!seg.syn && seg.payload.is_empty()) {
            return None;
        }
        self.make_room(out);
        let (client, server) = choose_client(src, dst, seg, devices);
        let info = new_info(Proto::Tcp, client, server, ts, frame);
        self.stats.tcp_connections += 1;
        Some(TcpFlow {
            to_server: Reassembler::new(self.limits.tcp),
            to_client: Reassembler::new(self.limits.tcp),
            state: ConnState::new(
                info,
                ts,
                Arc::clone(&self.unparsed_held),
                self.message_budget.clone(),
            ),
            buffered: 0,
        })
    }

    /// Over the global budget: the least recently active flows give up their oldest
    /// holes until the total is back under it.
    fn relieve_pressure(&mut self, out: &mut Vec<FlowEvent>) {
        self.stats.budget_shrinks += 1;
        let mut holders: Vec<(Timestamp, u64, FlowKey)> = self
            .flows
            .iter()
            .filter_map(|(k, f)| match f {
                Flow::Tcp(t) if t.buffered > 0 => {
                    Some((t.state.last_ts, t.state.info.first_frame, *k))
                }
                _ => None,
            })
            .collect();
        holders.sort_by_key(|(ts, frame, _)| (*ts, *frame));
        let limits = &self.limits;
        let keys = &mut self.keys;
        for (_, _, key) in holders {
            if self.buffered_total <= limits.max_buffered_total / 2 {
                break;
            }
            let Some(Flow::Tcp(flow)) = self.flows.get_mut(&key) else {
                continue;
            };
            let TcpFlow {
                to_server,
                to_client,
                state,
                buffered,
            } = flow.as_mut();
            state.note(Anomaly::new(
                "tcp-memory-limit",
                "out-of-order data given up: the capture's total reassembly budget was exceeded",
            ));
            to_server.shrink_to(0, &mut |d| state.deliver(true, d, limits, keys, out));
            to_client.shrink_to(0, &mut |d| state.deliver(false, d, limits, keys, out));
            let now_buffered = to_server.buffered_bytes() + to_client.buffered_bytes();
            self.buffered_total = self
                .buffered_total
                .saturating_sub(*buffered)
                .saturating_add(now_buffered);
            *buffered = now_buffered;
        }
    }

    /// Closes one flow: flushes its streams, completes its parser, hands out events.
    fn close(&mut self, key: &FlowKey, out: &mut Vec<FlowEvent>) {
        let Some(flow) = self.flows.remove(key) else {
            return;
        };
        match flow {
            Flow::Udp(mut flow) => {
                if let Some(session) = flow.decrypt.take() {
                    self.quic_sessions = self.quic_sessions.saturating_sub(1);
                    let (ts, frame) = (flow.last_ts, flow.info.last_frame);
                    self.stats.anomalies += session.close(ts, frame, &mut flow.info, out);
                }
                // QUIC connections count among TLS ones when a key log was given.
                if let Some(tls) = &flow.info.tls {
                    if self.keys.decrypt && flow.info.protocol == Some(AppProtocol::Quic) {
                        count_tls_outcome(&mut self.stats, &mut self.keys, tls);
                    }
                }
                // So is one still waiting for the server to say whose keys are its own.
                if flow.trial.is_some() {
                    self.quic_trials = self.quic_trials.saturating_sub(1);
                    trial_gave_up(&mut flow, None, out);
                }
                flow.finish_parts(out);
                // A QUIC flow still waiting for its ClientHello is reported now.
                if let Some(mut reader) = flow.quic.take() {
                    self.quic_readers = self.quic_readers.saturating_sub(1);
                    let anomalies = quic_outcome(&mut flow.info, &mut reader, HelloPoll::NeedMore);
                    out.push(FlowEvent::Metadata {
                        conn: flow.info,
                        anomalies,
                        payload: Vec::new(),
                    });
                }
            }
            Flow::Tcp(mut flow) => {
                self.buffered_total = self.buffered_total.saturating_sub(flow.buffered);
                let limits = &self.limits;
                let keys = &mut self.keys;
                let TcpFlow {
                    to_server,
                    to_client,
                    state,
                    ..
                } = flow.as_mut();
                to_server.flush(&mut |d| state.deliver(true, d, limits, keys, out));
                to_client.flush(&mut |d| state.deliver(false, d, limits, keys, out));
                state.settle_tls(&keys.log);
                if let Some(tls) = &state.info.tls {
                    count_tls_outcome(&mut self.stats, keys, tls);
                }
                if let App::DnsTcp(dns) = &state.app {
                    self.stats.dns_messages += dns.messages;
                    self.stats.dns_errors += dns.errors;
                    // Messages the budget had no room for: said on the connection (a
                    // DNS-over-TLS connection's metadata exchange carries it).
                    let skipped = dns.server.skipped() + dns.client.skipped();
                    if skipped > 0 {
                        let what = format!("{skipped} DNS message(s) passed over unread");
                        let detail = state.message_budget.cut_detail(&what);
                        state.note(Anomaly::new(message_budget::ANOMALY, detail));
                    }
                }
                self.stats.anomalies += state.anomalies.len() as u64;
                state.close(limits, out);
            }
        }
    }
}

/// Whether a request asks to switch to HTTP/2 (`Upgrade: h2c`, RFC 7540 §3.2).
fn asks_h2c(request: &HttpRequest) -> bool {
    crate::net::http1::lists_token(&request.headers, "upgrade", b"h2c")
}

/// A trial of the key log for a QUIC connection whose ClientHello just read (its
/// last datagram: payload, time, frame) offers ECH and whose secrets are under none
/// of its randoms (`quic_session` set no key); the flow's anomalies so far go with
/// it. `None` when that is not the case, when the key log holds no TLS 1.3 entry to
/// try, or when [`quic_trial::MAX_TRIALS_AT_ONCE`] are under way (`trials` counts
/// them; anomaly `quic-trial-limit`).
fn quic_trial(
    keys: &TlsKeys,
    trials: &mut usize,
    info: &mut ConnInfo,
    reader: &QuicInitialReader,
    (payload, ts, frame): (&[u8], Timestamp, u64),
    anomalies: &mut Vec<Anomaly>,
) -> Option<Box<QuicTrial>> {
    let tls = info.tls.as_mut()?;
    let offered = tls
        .client_hello
        .as_ref()
        .is_some_and(ClientHello::offers_ech);
    let no_key = tls.status == DecryptStatus::NotDecrypted(NotDecrypted::NoKey);
    let candidates = keys.log.tls13_candidates().next().is_some();
    if !(keys.decrypt && offered && no_key && candidates) {
        return None;
    }
    let (version, dcid, scid) = reader.connection_ids()?;
    if *trials >= quic_trial::MAX_TRIALS_AT_ONCE {
        anomalies.push(Anomaly::new(
            "quic-trial-limit",
            format!(
                "ECH offered, keys not logged under its random: not tried, {} QUIC connections were waiting for their server's Handshake packet",
                quic_trial::MAX_TRIALS_AT_ONCE
            ),
        ));
        return None;
    }
    *trials += 1;
    tls.status = DecryptStatus::Pending;
    let anomalies = std::mem::take(anomalies);
    let first = HeldDatagram {
        payload: payload.to_vec(),
        from_client: true,
        ts,
        frame,
    };
    Some(Box::new(QuicTrial::new(
        version, dcid, scid, first, anomalies,
    )))
}

/// The trial of `flow` found its secrets under `random`: its decryption starts, and
/// reads the datagrams the trial held.
fn trial_session(
    keys: &TlsKeys,
    limits: &FlowLimits,
    sessions: &mut usize,
    budget: &MessageBudget,
    flow: &mut UdpFlow,
    random: [u8; 32],
    out: &mut Vec<FlowEvent>,
) {
    let Some(mut trial) = flow.trial.take() else {
        return;
    };
    let Some(secrets) = keys.log.secrets(&random) else {
        flow.trial = Some(trial);
        trial_gave_up(flow, None, out);
        return;
    };
    if *sessions >= limits.max_quic_sessions {
        trial.anomalies.push(Anomaly::new(
            "quic-session-limit",
            format!(
                "QUIC connection not decrypted: {} were being decrypted at once",
                limits.max_quic_sessions
            ),
        ));
        flow.trial = Some(trial);
        trial_gave_up(flow, None, out);
        return;
    }
    *sessions += 1;
    if let Some(tls) = flow.info.tls.as_mut() {
        tls.ech = Some(EchOutcome::KeysMatched);
    }
    let mut session = Box::new(
        QuicFlow::new(
            trial.version,
            &trial.original_dcid,
            &trial.client_scid,
            secrets,
            limits.quic.clone(),
            limits.http3.clone(),
            budget,
        )
        .with_tail_search(limits.tail_search.clone()),
    );
    session.hold_anomalies(std::mem::take(&mut trial.anomalies));
    for d in trial.take_held() {
        session.push(
            &d.payload,
            d.from_client,
            d.ts,
            d.frame,
            &mut flow.info,
            out,
        );
    }
    flow.decrypt = Some(session);
}

/// The trial of `flow` ends without a key: the flow is reported, with `anomaly`
/// when a limit ended it.
/// Port of multicast DNS (RFC 6762): responders send from it.
const MDNS_PORT: u16 = 5353;

/// The [`FlowEvent::DnsQuery`] of a query datagram of `len` bytes asking for `names`,
/// its sender the client. (A response repeats the query's names.)
fn dns_query(
    packet: &Packet<'_>,
    ports: (u16, u16),
    len: usize,
    names: Vec<String>,
    at: (Timestamp, u64),
) -> FlowEvent {
    let conn = sender_info(packet, ports, len, at);
    let query = DnsQueryAt {
        ts: at.0,
        frames: (at.1, at.1),
        first_name: 0,
    };
    FlowEvent::DnsQuery { conn, names, query }
}

/// The connection facts of one DNS datagram of `len` bytes, its sender the client.
fn sender_info(
    packet: &Packet<'_>,
    ports: (u16, u16),
    len: usize,
    (ts, frame): (Timestamp, u64),
) -> ConnInfo {
    let (client, server) = packet_ends(packet, ports);
    let mut conn = new_info(Proto::Udp, client, server, ts, frame);
    conn.app_uid = packet.app_uid;
    conn.client_bytes = len as u64;
    conn.protocol = Some(AppProtocol::Dns);
    conn
}

/// The requests of one HTTPU datagram, each an HTTP event numbered from `*next` and
/// without a response: SSDP's answers to a multicast search come from each device
/// that answers, on flows of their own, and a server's datagram is not the device's
/// transmission. A datagram is one message (UPnP's HTTPU): one parser per datagram, so
/// a cut or malformed one spoils no other. A head the datagram leaves without its
/// blank line (some SSDP stacks) ends with the datagram; NUL bytes after the message
/// (the C string's end, which iOS's searches carry) are not. Whether any request was
/// read.
fn httpu_requests(
    info: &ConnInfo,
    payload: &[u8],
    (ts, frame): (Timestamp, u64),
    limits: &Http1Limits,
    next: &mut u64,
    out: &mut Vec<FlowEvent>,
) -> bool {
    let end = payload.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let payload = &payload[..end];
    let mut parser = Http1Conn::new(limits.clone());
    let mut events = Vec::new();
    let mut anomalies = Vec::new();
    if ends_inside_head(payload) {
        let mut whole = Vec::with_capacity(payload.len() + 4);
        whole.extend_from_slice(payload);
        whole.extend_from_slice(if payload.ends_with(b"\n") {
            b"\r\n"
        } else {
            b"\r\n\r\n"
        });
        parser.client_data(&whole, ts, frame, &mut events);
        anomalies.push(Anomaly::new(
            "httpu-unterminated-head",
            "datagram ends inside its head (no blank line after the header fields)",
        ));
    } else {
        parser.client_data(payload, ts, frame, &mut events);
    }
    parser.close(&mut events);
    let before = *next;
    for event in events {
        match event {
            Http1Event::Request(request) => {
                out.push(FlowEvent::Http {
                    conn: info.clone(),
                    index: *next,
                    request: Box::new(request),
                    response: None,
                    anomalies: std::mem::take(&mut anomalies),
                });
                *next += 1;
            }
            Http1Event::Anomaly(a) => anomalies.push(a),
            _ => {}
        }
    }
    // Anomalies after the datagram's last request (bytes after it) go with it.
    if *next > before && !anomalies.is_empty() {
        if let Some(FlowEvent::Http {
            anomalies: last, ..
        }) = out.last_mut()
        {
            last.append(&mut anomalies);
        }
    }
    *next > before
}

/// Whether a datagram that starts a request has no blank line ending its head.
fn ends_inside_head(datagram: &[u8]) -> bool {
    memchr::memmem::find(datagram, b"\n\r\n").is_none()
        && memchr::memmem::find(datagram, b"\n\n").is_none()
}

fn trial_gave_up(flow: &mut UdpFlow, anomaly: Option<Anomaly>, out: &mut Vec<FlowEvent>) {
    let Some(trial) = flow.trial.take() else {
        return;
    };
    if let Some(tls) = flow.info.tls.as_mut() {
        tls.status = DecryptStatus::NotDecrypted(NotDecrypted::NoKey);
    }
    let mut anomalies = trial.anomalies;
    anomalies.extend(anomaly);
    out.push(FlowEvent::Metadata {
        conn: flow.info.clone(),
        anomalies,
        payload: Vec::new(),
    });
}

/// The anomaly of a server certificate that did not read.
fn certificate_anomaly(why: &str) -> Anomaly {
    Anomaly::new("tls-malformed", format!("server Certificate: {why}"))
}

/// `Offered` when a ClientHello read without keys carries an outer ECH extension.
fn ech_offered(hello: &ClientHello) -> Option<EchOutcome> {
    hello.offers_ech().then_some(EchOutcome::Offered)
}

/// Counts a closed TLS connection (or QUIC flow) by its outcome, and whether its
/// key came too late.
fn count_tls_outcome(stats: &mut FlowStats, keys: &mut TlsKeys, tls: &TlsSeen) {
    match tls.not_decrypted() {
        None => stats.tls_decrypted += 1,
        Some(why) => {
            *stats
                .tls_not_decrypted
                .entry(not_decrypted_kind(why).to_string())
                .or_default() += 1;
            if let (NotDecrypted::NoKey, Some(hello)) = (why, &tls.client_hello) {
                if keys.late.closed_without_key(hello.random, &keys.log) {
                    stats.tls_keys_late += 1;
                }
            }
        }
    }
}

/// With a key log holding the secrets of the ClientHello just read into `info`, the
/// reader of the rest of the QUIC connection; without those secrets, the flow's TLS
/// status says so (`NoKey`) and it stays a metadata-only flow.
fn quic_session(
    keys: &TlsKeys,
    limits: &FlowLimits,
    sessions: &mut usize,
    budget: &MessageBudget,
    info: &mut ConnInfo,
    reader: &QuicInitialReader,
    anomalies: &mut Vec<Anomaly>,
) -> Option<Box<QuicFlow>> {
    if !keys.decrypt {
        return None;
    }
    let tls = info.tls.as_mut()?;
    let hello = tls.client_hello.as_ref()?;
    // An ECH offer the key log opens: the secrets are under the inner hello's random.
    let body = reader.ech_hello_body().unwrap_or_default();
    match tls_decrypt::open_ech_inner(hello, body, &keys.log, 0) {
        Some(Ok(inner)) => {
            tls.inner_hello = Some(inner);
            tls.ech = Some(EchOutcome::InnerRead);
        }
        Some(Err(e)) => anomalies.push(Anomaly::new("tls-ech-failed", e)),
        None => {}
    }
    let hello = tls.client_hello.as_ref()?;
    let offers_ech = hello.offers_ech();
    let randoms = [
        (tls.inner_hello.as_ref().map(|h| h.random), false),
        (Some(hello.random), true),
    ];
    let Some((secrets, outer)) = randoms
        .into_iter()
        .filter_map(|(r, outer)| Some((keys.log.secrets(&r?)?, outer)))
        .find(|(s, _)| {
            s.client_traffic_0.is_some()
                || s.server_traffic_0.is_some()
                || s.client_early_traffic.is_some()
        })
    else {
        tls.status = DecryptStatus::NotDecrypted(NotDecrypted::NoKey);
        return None;
    };
    if outer && offers_ech {
        // The server used the outer hello: GREASE, or rejected (see `EchOutcome`).
        tls.ech = Some(EchOutcome::OuterUsed);
    }
    let (version, dcid, scid) = reader.connection_ids()?;
    if *sessions >= limits.max_quic_sessions {
        anomalies.push(Anomaly::new(
            "quic-session-limit",
            format!(
                "QUIC connection not decrypted: {} were being decrypted at once",
                limits.max_quic_sessions
            ),
        ));
        return None;
    }
    *sessions += 1;
    tls.status = DecryptStatus::Pending;
    Some(Box::new(
        QuicFlow::new(
            version,
            dcid,
            scid,
            secrets,
            limits.quic.clone(),
            limits.http3.clone(),
            budget,
        )
        .with_tail_search(limits.tail_search.clone()),
    ))
}

/// What a QUIC reader's last answer tells about its flow: protocol and ClientHello
/// into `info`, what went wrong as anomalies.
fn quic_outcome(
    info: &mut ConnInfo,
    reader: &mut QuicInitialReader,
    poll: HelloPoll<ClientHello>,
) -> Vec<Anomaly> {
    let mut anomalies = reader.take_anomalies();
    let is_quic = reader.decrypted_packets() > 0;
    if is_quic {
        info.protocol = Some(AppProtocol::Quic);
    }
    match poll {
        HelloPoll::Done(hello) => {
            info.tls = Some(Box::new(TlsSeen {
                ech: ech_offered(&hello),
                client_hello: Some(hello),
                status: DecryptStatus::NotDecrypted(NotDecrypted::QuicPayload),
                ..TlsSeen::default()
            }));
        }
        HelloPoll::Malformed(why) if is_quic => {
            anomalies.push(Anomaly::new("quic-no-client-hello", why));
        }
        HelloPoll::NeedMore if is_quic => anomalies.push(Anomaly::new(
            "quic-no-client-hello",
            "the flow ended before the ClientHello was complete",
        )),
        _ => {}
    }
    anomalies
}

/// Whether `end` is one host: not a broadcast or multicast address (by IP, or by MAC
/// where the link has one, which also tells a subnet's broadcast address).
fn is_unicast(end: &Endpoint) -> bool {
    let ip = match end.ip {
        IpAddr::V4(a) => !(a.is_broadcast() || a.is_multicast()),
        IpAddr::V6(a) => !a.is_multicast(),
    };
    // The group bit: set in every broadcast and multicast MAC address.
    ip && end.mac.is_none_or(|m| m[0] & 1 == 0)
}

fn first_ts(f: &Flow) -> Timestamp {
    match f {
        Flow::Tcp(t) => t.state.info.first_ts,
        Flow::Udp(u) => u.info.first_ts,
    }
}

fn first_frame(f: &Flow) -> u64 {
    match f {
        Flow::Tcp(t) => t.state.info.first_frame,
        Flow::Udp(u) => u.info.first_frame,
    }
}

fn new_info(
    proto: Proto,
    client: Endpoint,
    server: Endpoint,
    ts: Timestamp,
    frame: u64,
) -> ConnInfo {
    ConnInfo {
        proto,
        client,
        server,
        first_ts: ts,
        first_client_data: None,
        first_frame: frame,
        last_frame: frame,
        client_bytes: 0,
        server_bytes: 0,
        tls: None,
        protocol: None,
        app_uid: None,
        tunnel: None,
        gquic: None,
    }
}

/// Which end of a new connection is the client (see the module docs).
fn choose_client(
    src: Endpoint,
    dst: Endpoint,
    seg: &TcpSegment<'_>,
    devices: &dyn IsDevice,
) -> (Endpoint, Endpoint) {
    if seg.syn {
        return if seg.ack_flag { (dst, src) } else { (src, dst) };
    }
    match (
        devices.is_device(src.ip, src.mac),
        devices.is_device(dst.ip, dst.mac),
    ) {
        (true, false) => return (src, dst),
        (false, true) => return (dst, src),
        _ => {}
    }
    if dst.port > src.port {
        (dst, src)
    } else {
        (src, dst)
    }
}

impl ConnState {
    fn new(
        info: ConnInfo,
        ts: Timestamp,
        unparsed_held: Arc<AtomicUsize>,
        message_budget: MessageBudget,
    ) -> Self {
        ConnState {
            info,
            app: App::Sniffing {
                prefix: Vec::new(),
                meta: None,
                server: None,
            },
            requests_seen: 0,
            http_base: 0,
            pending: VecDeque::new(),
            early_responses: Vec::new(),
            sent_ahead: VecDeque::new(),
            emitted: false,
            metadata_due: false,
            anomalies: Vec::new(),
            last_ts: ts,
            last_meta: None,
            http_events: Vec::new(),
            tls: None,
            keys_loaded: false,
            tls_backlog: Vec::new(),
            tls_clear: None,
            tls_out: Vec::new(),
            h2_events: Vec::new(),
            h2c_upgrade: None,
            h2c_stream1_index: None,
            ws_upgrade: None,
            unparsed_held,
            pending_held: BudgetShare::of(&message_budget),
            message_budget,
        }
    }

    fn note(&mut self, anomaly: Anomaly) {
        if self.anomalies.len() < MAX_FLOW_ANOMALIES {
            self.anomalies.push(anomaly);
        }
    }

    /// Bytes (or a gap) of one direction, in order: through the decryptor when the
    /// connection has one, else straight to the parser.
    fn deliver(
        &mut self,
        from_client: bool,
        delivery: Delivery<'_>,
        limits: &FlowLimits,
        keys: &mut TlsKeys,
        out: &mut Vec<FlowEvent>,
    ) {
        self.keys_loaded = keys.decrypt;
        match delivery {
            Delivery::Data { bytes, meta } if self.tls.is_some() => {
                self.decrypt(from_client, bytes, meta, limits, &mut keys.log, out)
            }
            Delivery::Data { bytes, meta } => {
                self.data(from_client, bytes, meta, limits, out);
                // Sniffing just chose TLS with keys at hand: the bytes it looked at
                // are the decryptor's first.
                if self.tls.is_some() && !self.tls_backlog.is_empty() {
                    let backlog = std::mem::take(&mut self.tls_backlog);
                    self.decrypt(true, &backlog, meta, limits, &mut keys.log, out);
                }
            }
            Delivery::Gap { len, meta } => match &mut self.tls {
                Some(tls) => {
                    tls.gap(from_client);
                    if !from_client {
                        self.tls_clear = None;
                    }
                    self.note(Anomaly::new(
                        "tcp-gap",
                        format!("{len} bytes missing in a TLS stream: its decryption stops"),
                    ));
                    self.tls_progress(out);
                }
                None => self.gap(from_client, len, meta, limits, out),
            },
        }
    }

    /// Encrypted bytes of one direction: decrypted, and the plaintext handed to the
    /// parser above as cleartext, with the segment that carried it.
    fn decrypt(
        &mut self,
        from_client: bool,
        bytes: &[u8],
        meta: SegmentMeta,
        limits: &FlowLimits,
        keys: &mut KeyLog,
        out: &mut Vec<FlowEvent>,
    ) {
        if self.tls.is_none() || bytes.is_empty() {
            return;
        }
        self.last_meta = Some(meta);
        if from_client && self.info.first_client_data.is_none() {
            self.info.first_client_data = Some(meta.ts);
        }
        if !from_client {
            if let Some(reader) = &mut self.tls_clear {
                let poll = reader.push(bytes);
                if let (Some(cert), Some(seen)) = (reader.take_certificate(), &mut self.info.tls) {
                    seen.server_certificate = Some(Arc::new(cert));
                }
                match poll {
                    FlightPoll::NeedMore => {}
                    // The decryptor reports a broken hello itself.
                    FlightPoll::Done | FlightPoll::NotTls | FlightPoll::Malformed(_) => {
                        self.tls_clear = None
                    }
                    FlightPoll::CertificateMalformed(why) => {
                        self.tls_clear = None;
                        self.note(certificate_anomaly(&why));
                    }
                }
            }
        }
        let Some(tls) = self.tls.as_mut() else {
            return;
        };
        let mut outputs = std::mem::take(&mut self.tls_out);
        tls.push_at(
            from_client,
            bytes,
            (meta.ts, meta.frame),
            keys,
            &mut outputs,
        );
        // A push that leaves the connection unreadable (it then outputs no plaintext)
        // makes it its metadata event in `tls_progress`: that event carries the
        // anomalies saying why.
        if !outputs
            .iter()
            .any(|o| matches!(o, TlsOutput::Plaintext { .. }))
        {
            for output in outputs.drain(..) {
                if let TlsOutput::Anomaly(a) = output {
                    self.note(a);
                }
            }
        }
        self.tls_progress(out);
        for output in outputs.drain(..) {
            match output {
                TlsOutput::Plaintext {
                    from_client,
                    data,
                    captured,
                } => {
                    // Held until its keys were known (0-RTT data before the
                    // ServerHello): where its record was captured.
                    let at = captured.map_or(meta, |(ts, frame)| SegmentMeta { ts, frame });
                    self.data(from_client, &data, at, limits, out);
                }
                TlsOutput::Anomaly(a) => self.note(a),
            }
        }
        // The segment just read stays the one later bytes follow.
        self.last_meta = Some(meta);
        self.tls_out = outputs;
    }

    /// Copies what the decryptor learnt into the connection's facts; a connection
    /// that turns out unreadable before anything was read becomes its metadata event
    /// at once (as without keys), so a live tap reports it without waiting for the close.
    fn tls_progress(&mut self, out: &mut Vec<FlowEvent>) {
        let (Some(tls), Some(seen)) = (&mut self.tls, &mut self.info.tls) else {
            return;
        };
        if let Some(cert) = tls.take_server_certificate() {
            seen.server_certificate = Some(Arc::new(cert));
        }
        if seen.client_hello.is_none() {
            if let Some(hello) = tls.client_hello() {
                seen.client_hello = Some(hello.clone());
                self.metadata_due = true;
            }
        }
        if seen.inner_hello.is_none() {
            seen.inner_hello = tls.inner_client_hello().cloned();
        }
        seen.ech = tls.ech();
        if seen.server_hello.is_none() {
            seen.server_hello = tls.server_hello().cloned();
        }
        seen.status = tls.status();
        // Not before the certificate that may follow the ServerHello in clear.
        if seen.not_decrypted().is_some()
            && !self.emitted
            && self.tls_clear.is_none()
            && matches!(self.app, App::Sniffing { .. })
        {
            self.emit_metadata(out);
        }
    }

    /// The connection is closing: a TLS status still pending becomes final.
    fn settle_tls(&mut self, keys: &KeyLog) {
        let Some(seen) = &mut self.info.tls else {
            return;
        };
        if seen.status != DecryptStatus::Pending {
            return;
        }
        let known = seen
            .client_hello
            .as_ref()
            .is_some_and(|h| keys.secrets(&h.random).is_some());
        seen.status = DecryptStatus::NotDecrypted(
            if self.tls.is_none() || (!known && seen.server_hello.is_some()) {
                NotDecrypted::NoKey
            } else {
                NotDecrypted::MissingHandshake
            },
        );
    }

    fn data(
        &mut self,
        from_client: bool,
        bytes: &[u8],
        meta: SegmentMeta,
        limits: &FlowLimits,
        out: &mut Vec<FlowEvent>,
    ) {
        if bytes.is_empty() {
            return;
        }
        self.last_meta = Some(meta);
        if from_client && self.info.first_client_data.is_none() {
            self.info.first_client_data = Some(meta.ts);
        }
        match &mut self.app {
            App::Sniffing {
                prefix,
                meta: first,
                server,
            } => {
                if !from_client {
                    // Once the client has spoken, its bytes decide: server bytes
                    // while they are still too few to tell are dropped.
                    if prefix.is_empty() {
                        let held = server.take();
                        self.server_first(held, bytes, meta, limits, out);
                    }
                    return;
                }
                let first = *first.get_or_insert(meta);
                let take = bytes.len().min(SNIFF_BYTES.saturating_sub(prefix.len()));
                prefix.extend_from_slice(&bytes[..take]);
                let verdict = sniff::sniff_client_with_ports(
                    prefix,
                    self.info.client.port,
                    self.info.server.port,
                );
                let protocol = match verdict {
                    Sniff::Known(p) => p,
                    Sniff::NeedMore if take == bytes.len() && prefix.len() < SNIFF_BYTES => return,
                    Sniff::NeedMore | Sniff::Unknown => AppProtocol::Unknown,
                };
                let prefix = std::mem::take(prefix);
                self.start(protocol, limits);
                self.feed(true, &prefix, first, limits, out);
                if let Some(rest) = bytes.get(take..) {
                    self.feed(true, rest, meta, limits, out);
                }
            }
            _ => self.feed(from_client, bytes, meta, limits, out),
        }
    }

    /// Server bytes before any client byte: a server that speaks first, or a
    /// connection whose client side was not captured. Only a response start (an
    /// HTTP connection picked up mid-stream), SSH's identification or, under DNS's
    /// ports, a DNS-over-TCP response tells anything. Bytes that may still become
    /// one are held (at most `SNIFF_BYTES`: a response can arrive a byte at a time,
    /// or reordered); bytes that cannot are dropped, and the next ones are looked at
    /// afresh (a later response on a connection picked up mid-body).
    fn server_first(
        &mut self,
        held: Option<Box<ServerPrefix>>,
        bytes: &[u8],
        meta: SegmentMeta,
        limits: &FlowLimits,
        out: &mut Vec<FlowEvent>,
    ) {
        let (client_port, server_port) = (self.info.client.port, self.info.server.port);
        let verdict = |prefix: &[u8]| match sniff::sniff_server_with_ports(
            prefix,
            client_port,
            server_port,
        ) {
            Sniff::Known(p @ (AppProtocol::Http1 | AppProtocol::Ssh | AppProtocol::Dns)) => {
                Sniff::Known(p)
            }
            Sniff::NeedMore if prefix.len() < SNIFF_BYTES => Sniff::NeedMore,
            _ => Sniff::Unknown,
        };
        let Some(mut held) = held else {
            match verdict(bytes) {
                Sniff::Known(p) => {
                    self.start(p, limits);
                    self.feed(false, bytes, meta, limits, out);
                }
                Sniff::NeedMore => self.hold_server_prefix(Box::new(ServerPrefix {
                    bytes: bytes.to_vec(),
                    first: meta,
                })),
                Sniff::Unknown => {}
            }
            return;
        };
        let room = SNIFF_BYTES.saturating_sub(held.bytes.len());
        let take = bytes.len().min(room);
        held.bytes.extend_from_slice(&bytes[..take]);
        match verdict(&held.bytes) {
            Sniff::Known(p) => {
                self.start(p, limits);
                self.feed(false, &held.bytes, held.first, limits, out);
                if let Some(rest) = bytes.get(take..) {
                    self.feed(false, rest, meta, limits, out);
                }
            }
            Sniff::NeedMore if take == bytes.len() => self.hold_server_prefix(held),
            Sniff::NeedMore | Sniff::Unknown => self.server_first(None, bytes, meta, limits, out),
        }
    }

    fn hold_server_prefix(&mut self, prefix: Box<ServerPrefix>) {
        if let App::Sniffing { server, .. } = &mut self.app {
            *server = Some(prefix);
        }
    }

    /// Switches to the parser for `protocol`.
    fn start(&mut self, protocol: AppProtocol, limits: &FlowLimits) {
        // Under a decryptor the connection stays TLS; the parser is for its plaintext.
        if self.tls.is_none() {
            self.info.protocol = Some(protocol);
        }
        self.app = match protocol {
            AppProtocol::Http1 => {
                self.http_base = self.requests_seen;
                App::Http(Box::new(
                    Http1Conn::new(limits.http.clone())
                        .with_budget(&self.message_budget)
                        .with_tail_search(limits.tail_search.clone()),
                ))
            }
            // TLS inside decrypted TLS (a tunnel) is not opened.
            AppProtocol::Tls if self.tls.is_some() => App::Opaque,
            AppProtocol::Tls if self.keys_loaded => {
                self.info.tls = Some(Box::default());
                self.tls = Some(Box::new(
                    TlsDecryptor::new().with_budget(&self.message_budget),
                ));
                self.tls_clear = Some(Box::new(ServerFlightReader::new()));
                // The decryptor reads the hellos; its plaintext is sniffed afresh.
                App::Sniffing {
                    prefix: Vec::new(),
                    meta: None,
                    server: None,
                }
            }
            AppProtocol::Tls => {
                self.info.tls = Some(Box::new(TlsSeen {
                    status: DecryptStatus::NotDecrypted(NotDecrypted::NoKey),
                    ..TlsSeen::default()
                }));
                App::Tls {
                    client: Some(Box::new(HelloReader::new())),
                    server: Some(Box::new(ServerFlightReader::new())),
                }
            }
            AppProtocol::Dns => App::DnsTcp(Box::new(DnsStream {
                server: DnsTcpFramer::new().with_budget(&self.message_budget),
                client: DnsTcpFramer::new().with_budget(&self.message_budget),
                hand_out: limits.dns_queries,
                query_start: None,
                names: 0,
                messages: 0,
                errors: 0,
            })),
            AppProtocol::Socks5 | AppProtocol::Socks4 => {
                App::Socks(Box::new(SocksWatch::new(Arc::clone(&self.unparsed_held))))
            }
            AppProtocol::Http2PriorKnowledge => App::Http2(Box::new(
                Http2Conn::new(limits.http2.clone())
                    .with_budget(&self.message_budget)
                    .with_tail_search(limits.tail_search.clone()),
            )),
            // Searched when nothing else was read of the connection (or of the tunnel
            // it became): its parts stand for the metadata exchange.
            AppProtocol::Unknown if !self.emitted => App::Unparsed(Box::new(PayloadParts::new(
                Arc::clone(&self.unparsed_held),
                limits.parts(),
            ))),
            // QUIC is told only on UDP; on TCP it cannot be sniffed. SSH is encrypted:
            // its one metadata exchange, its bytes not searched.
            AppProtocol::Quic
            | AppProtocol::Ssh
            | AppProtocol::WireGuard
            | AppProtocol::Dtls
            | AppProtocol::GQuic
            | AppProtocol::Stun
            | AppProtocol::Httpu
            | AppProtocol::Dhcp
            | AppProtocol::Unknown => App::Opaque,
        };
    }

    /// Bytes for the chosen parser.
    fn feed(
        &mut self,
        from_client: bool,
        bytes: &[u8],
        meta: SegmentMeta,
        limits: &FlowLimits,
        out: &mut Vec<FlowEvent>,
    ) {
        match &mut self.app {
            // Only right after sniffing chose TLS with keys: for the new decryptor.
            App::Sniffing { .. } => {
                if self.tls.is_some() && from_client {
                    self.tls_backlog.extend_from_slice(bytes);
                }
            }
            App::Opaque => {}
            App::Unparsed(parts) => {
                if from_client {
                    let mut done = Vec::new();
                    parts.push(bytes, (meta.ts, meta.frame), &mut done);
                    self.emit_parts(done, out);
                }
            }
            App::WebSocket(ws) => {
                if from_client {
                    let mut events = std::mem::take(&mut ws.events);
                    ws.reader.push(bytes, meta.ts, meta.frame, &mut events);
                    self.websocket(&mut events, out);
                }
            }
            App::Socks(watch) => {
                let watched = watch.push(from_client, bytes, meta, limits.max_unparsed_total);
                let held = match &watched {
                    socks::Watched::Tunnel { client_rest, .. } => {
                        watch.client_segments_of_last(client_rest.len())
                    }
                    _ => Vec::new(),
                };
                self.socks(watched, &held, meta, limits, out);
            }
            App::Http(http) => {
                let mut events = std::mem::take(&mut self.http_events);
                if from_client {
                    http.client_data(bytes, meta.ts, meta.frame, &mut events);
                } else {
                    http.server_data(bytes, meta.ts, meta.frame, &mut events);
                }
                self.http(&mut events, limits, out);
                self.http_events = events;
            }
            App::Http2(h2) => {
                let mut events = std::mem::take(&mut self.h2_events);
                if from_client {
                    h2.client_data(bytes, meta.ts, meta.frame, &mut events);
                } else {
                    h2.server_data(bytes, meta.ts, meta.frame, &mut events);
                }
                self.http2(&mut events, out);
                self.h2_events = events;
            }
            App::Tls { client, server } => {
                if from_client {
                    let Some(reader) = client else { return };
                    match reader.client_hello(bytes) {
                        HelloPoll::NeedMore => {}
                        HelloPoll::Done(hello) => {
                            *client = None;
                            if let Some(tls) = &mut self.info.tls {
                                tls.ech = ech_offered(&hello);
                                tls.client_hello = Some(hello);
                            }
                            self.metadata_due = true;
                        }
                        HelloPoll::NotTls => self.app = App::Opaque,
                        HelloPoll::Malformed(why) => {
                            self.note(Anomaly::new("tls-malformed", format!("ClientHello: {why}")));
                            self.app = App::Opaque;
                        }
                    }
                } else {
                    let Some(reader) = server else { return };
                    let poll = reader.push(bytes);
                    if let Some(tls) = &mut self.info.tls {
                        if let Some(hello) = reader.take_hello() {
                            tls.server_hello = Some(hello);
                        }
                        if let Some(cert) = reader.take_certificate() {
                            tls.server_certificate = Some(Arc::new(cert));
                        }
                    }
                    match poll {
                        FlightPoll::NeedMore => {}
                        FlightPoll::Done => {
                            *server = None;
                            if client.is_none() {
                                // Both hellos (and the certificate) read: nothing more
                                // is readable without keys.
                                self.emit_metadata(out);
                                self.app = App::Opaque;
                            }
                        }
                        FlightPoll::NotTls | FlightPoll::Malformed(_) => *server = None,
                        FlightPoll::CertificateMalformed(why) => {
                            *server = None;
                            self.note(certificate_anomaly(&why));
                        }
                    }
                }
            }
            App::DnsTcp(dns) => {
                if bytes.is_empty() {
                    return;
                }
                let mut messages = Vec::new();
                if !from_client {
                    dns.server.push(bytes, &mut messages);
                    for m in messages {
                        if let Some(message) = dns.parse(&m) {
                            out.push(FlowEvent::Dns {
                                message,
                                ts: meta.ts,
                            });
                        }
                    }
                } else {
                    let start = *dns.query_start.get_or_insert(meta);
                    dns.client.push(bytes, &mut messages);
                    let in_progress = dns.client.in_progress();
                    for (i, m) in messages.iter().enumerate() {
                        // Later messages of this input began in its segment.
                        let began = if i == 0 { start } else { meta };
                        let Some(message) = dns.parse(m) else {
                            continue;
                        };
                        if !dns.hand_out || message.response || message.questions.is_empty() {
                            continue;
                        }
                        let names: Vec<String> =
                            message.questions.into_iter().map(|q| q.name).collect();
                        let query = DnsQueryAt {
                            ts: began.ts,
                            frames: (began.frame, meta.frame),
                            first_name: dns.names,
                        };
                        dns.names += names.len() as u64;
                        out.push(FlowEvent::DnsQuery {
                            conn: self.info.clone(),
                            names,
                            query,
                        });
                    }
                    // A message still in progress began in this segment unless one
                    // was already.
                    dns.query_start = if in_progress {
                        Some(if messages.is_empty() { start } else { meta })
                    } else {
                        None
                    };
                }
            }
        }
    }

    fn gap(
        &mut self,
        from_client: bool,
        len: u64,
        meta: SegmentMeta,
        limits: &FlowLimits,
        out: &mut Vec<FlowEvent>,
    ) {
        match &mut self.app {
            App::Http(http) => {
                let mut events = std::mem::take(&mut self.http_events);
                if from_client {
                    http.client_gap(len, &mut events);
                } else {
                    http.server_gap(len, &mut events);
                }
                self.http(&mut events, limits, out);
                self.http_events = events;
            }
            App::Http2(h2) => {
                let mut events = std::mem::take(&mut self.h2_events);
                if from_client {
                    h2.client_gap(len, &mut events);
                } else {
                    h2.server_gap(len, &mut events);
                }
                self.http2(&mut events, out);
                self.h2_events = events;
            }
            App::Opaque => {}
            // The length prefixes are lost that way; the messages read so far stay
            // counted.
            App::DnsTcp(dns) => {
                if from_client {
                    dns.client.gap();
                } else {
                    dns.server.gap();
                }
            }
            App::Unparsed(parts) => {
                if from_client {
                    let mut done = Vec::new();
                    parts.gap(len, (meta.ts, meta.frame), &mut done);
                    self.emit_parts(done, out);
                }
            }
            App::WebSocket(ws) => {
                if from_client {
                    let mut events = std::mem::take(&mut ws.events);
                    ws.reader.gap(len, &mut events);
                    self.websocket(&mut events, out);
                }
            }
            _ => {
                self.note(Anomaly::new(
                    "tcp-gap",
                    format!("{len} bytes missing before the protocol could be read"),
                ));
                self.app = App::Opaque;
            }
        }
    }

    /// Pairs the HTTP parser's events into requests with responses. A request's event
    /// comes when the request is complete, its response's when the response is: a
    /// response that is complete first (a server answering before the body is all
    /// there, as nginx's `return` does, or the request's last segment resent after
    /// the response passed the tap) waits in `early_responses` for its request.
    fn http(
        &mut self,
        events: &mut Vec<Http1Event>,
        limits: &FlowLimits,
        out: &mut Vec<FlowEvent>,
    ) {
        let mut switched = false;
        for event in events.drain(..) {
            match event {
                Http1Event::Request(request) => {
                    let index = self.requests_seen;
                    self.requests_seen += 1;
                    self.pending.push_back((index, request));
                    while self.pending.len() > limits.max_pending_requests
                        || self.pending_body_bytes() > limits.max_pending_body_bytes
                    {
                        let Some((index, oldest)) = self.pending.pop_front() else {
                            break;
                        };
                        self.emit_http(index, oldest, None, out);
                        if self.sent_ahead.len() >= limits.max_pending_requests.max(1) {
                            self.sent_ahead.pop_front();
                        }
                        self.sent_ahead.push_back(index);
                    }
                    if let Some(at) = self.early_responses.iter().position(|(i, _)| *i == index) {
                        let (_, response) = self.early_responses.remove(at);
                        self.answer(index, response, out);
                    }
                }
                Http1Event::Response {
                    request_index,
                    response,
                } => {
                    let request_index = self.http_base + request_index;
                    while let Some((index, _)) = self.pending.front() {
                        if *index >= request_index {
                            break;
                        }
                        if let Some((index, unanswered)) = self.pending.pop_front() {
                            self.emit_http(index, unanswered, None, out);
                        }
                    }
                    if request_index >= self.requests_seen {
                        self.hold_early(request_index, response, limits);
                    } else {
                        self.answer(request_index, response, out);
                    }
                }
                Http1Event::NotHttp => {
                    // Taken for HTTP on its first bytes, but its first request is not:
                    // when nothing was read of it, its client bytes are searched as a
                    // protocol no parser reads.
                    if self.emitted || self.requests_seen > self.http_base {
                        continue;
                    }
                    let App::Http(http) = &mut self.app else {
                        continue;
                    };
                    let bytes = http.take_opaque_bytes(true);
                    self.keep_unparsed(&bytes, limits, out);
                }
                Http1Event::StrayResponse(response) => {
                    self.note_response_without_request(&response);
                }
                // The switch comes as one event per direction: the first takes both
                // directions' bytes. By the second the app may be the tunnel's own
                // HTTP parser, fed with bytes held for the answer, which is no switch.
                Http1Event::Opaque { .. } if switched => {}
                Http1Event::Opaque { .. } => {
                    // A CONNECT tunnel or an upgrade: what follows is another
                    // protocol, guessed afresh from the bytes after the switch.
                    let App::Http(http) = &mut self.app else {
                        continue;
                    };
                    switched = true;
                    let after_client = http.take_opaque_bytes(true);
                    let after_server = http.take_opaque_bytes(false);
                    // Client bytes sent before the switch were held for its answer:
                    // they are dated and located where they were captured.
                    let held = http.take_opaque_segments(true);
                    self.flush_pending(out);
                    if let Some((index, request, _)) = self.h2c_upgrade.take().map(|b| *b) {
                        // `101` to `Upgrade: h2c`: HTTP/2 from here on, both ways (the
                        // server may speak first: no sniffing of client bytes).
                        self.h2c_stream1_index = Some(index);
                        self.info.protocol = Some(AppProtocol::Http2PriorKnowledge);
                        self.app = App::Http2(Box::new(
                            Http2Conn::upgraded(limits.http2.clone(), request)
                                .with_budget(&self.message_budget)
                                .with_tail_search(limits.tail_search.clone()),
                        ));
                        if let Some(meta) = self.last_meta {
                            for (piece, m) in client_pieces(&after_client, &held, meta) {
                                self.feed(true, piece, m, limits, out);
                            }
                            self.feed(false, &after_server, meta, limits, out);
                        }
                        continue;
                    }
                    if let Some(upgrade) = self.ws_upgrade.take() {
                        // A WebSocket: the client's messages are read; the server's
                        // are what it tells the app, not read (as behind the proxy).
                        self.app = App::WebSocket(Box::new(WebSocket {
                            reader: WsReader::new(limits.websocket.clone(), upgrade.deflate)
                                .with_share(BudgetShare::of(&self.message_budget))
                                .with_tail_search(limits.tail_search.clone()),
                            upgrade,
                            events: Vec::new(),
                        }));
                        if let Some(meta) = self.last_meta {
                            for (piece, m) in client_pieces(&after_client, &held, meta) {
                                self.feed(true, piece, m, limits, out);
                            }
                        }
                        continue;
                    }
                    // `last_meta` is the segment that made the parser switch: set.
                    if let Some(meta) = self.last_meta {
                        let client = client_pieces(&after_client, &held, meta);
                        self.enter_tunnel(&client, &after_server, meta, limits, out);
                    }
                }
                Http1Event::Anomaly(a) => self.note(a),
            }
        }
        let early: usize = self.early_responses.iter().map(|(_, r)| r.body.len()).sum();
        let waiting = self.pending_body_bytes() + early;
        self.pending_held.sync(waiting);
    }

    /// Acts on a watched SOCKS5 handshake: the open tunnel is read as the connection
    /// (named by its target when no TLS server name names it; its client's first
    /// bytes in the segments `held` gives), a refusal is noted, and bytes that are not
    /// SOCKS5 after all are searched as a protocol no parser reads.
    fn socks(
        &mut self,
        watched: socks::Watched,
        held: &[HeldSegment],
        meta: SegmentMeta,
        limits: &FlowLimits,
        out: &mut Vec<FlowEvent>,
    ) {
        match watched {
            socks::Watched::NeedMore => {}
            socks::Watched::Tunnel {
                target,
                client_rest,
                server_rest,
            } => {
                self.info.tunnel = Some(target);
                // The client may have written into the tunnel before the reply:
                // those bytes are where they were captured.
                let client = client_pieces(&client_rest, held, meta);
                self.enter_tunnel(&client, &server_rest, meta, limits, out);
            }
            socks::Watched::Refused {
                why,
                target,
                client,
            } => {
                let to = target.map(|t| format!(" to {t}")).unwrap_or_default();
                self.note(Anomaly::new(
                    "socks-refused",
                    format!("SOCKS5 tunnel{to} not opened: {why}"),
                ));
                self.keep_unparsed(&client, limits, out);
            }
            socks::Watched::NotSocks { client } => self.keep_unparsed(&client, limits, out),
        }
    }

    /// What a `CONNECT`, an upgrade or a SOCKS5 handshake opened is a connection of its
    /// own from here: nothing of it is handed out yet (TLS without keys, or a protocol
    /// no parser reads, becomes its metadata exchange, timed at its first byte), and
    /// its protocol is sniffed afresh from the bytes after the switch: `client`'s
    /// parts each with the meta of where they were captured (before the answer, when
    /// they were held for it), `server`'s with `meta`, the latest segment's.
    fn enter_tunnel(
        &mut self,
        client: &[(&[u8], SegmentMeta)],
        server: &[u8],
        meta: SegmentMeta,
        limits: &FlowLimits,
        out: &mut Vec<FlowEvent>,
    ) {
        self.emitted = false;
        self.metadata_due = false;
        self.info.first_client_data = None;
        self.app = App::Sniffing {
            prefix: Vec::new(),
            meta: None,
            server: None,
        };
        for &(piece, m) in client {
            self.data(true, piece, m, limits, out);
        }
        self.data(false, server, meta, limits, out);
        // The latest segment stays the one later bytes follow.
        self.last_meta = Some(meta);
    }

    /// From now on the connection is a protocol no parser reads, `client` its client's
    /// first bytes (searched as its payload), timed at the client's first byte.
    fn keep_unparsed(&mut self, client: &[u8], limits: &FlowLimits, out: &mut Vec<FlowEvent>) {
        // What the state held (a SOCKS5 handshake's count) is given back first.
        self.app = App::Opaque;
        let mut parts = Box::new(PayloadParts::new(
            Arc::clone(&self.unparsed_held),
            limits.parts(),
        ));
        let at = (
            self.info.first_client_data.unwrap_or(self.info.first_ts),
            self.info.last_frame,
        );
        let mut done = Vec::new();
        parts.push(client, at, &mut done);
        self.app = App::Unparsed(parts);
        self.emit_parts(done, out);
    }

    /// Parts of the client's bytes in a protocol no parser reads, each an event.
    fn emit_parts(&mut self, parts: Vec<Part>, out: &mut Vec<FlowEvent>) {
        for mut part in parts {
            self.emitted = true;
            let mut anomalies = std::mem::take(&mut self.anomalies);
            anomalies.append(&mut part.anomalies);
            out.push(FlowEvent::Part {
                conn: self.info.clone(),
                anomalies,
                part,
            });
        }
    }

    /// Hands out the current part of a protocol no parser reads if it is due at `now`
    /// (the table's sweep: a client gone quiet is reported without waiting for more).
    fn hand_out_due_part(&mut self, now: Timestamp, out: &mut Vec<FlowEvent>) {
        if let App::Unparsed(parts) = &mut self.app {
            let mut done = Vec::new();
            parts.hand_out_if_due(now, &mut done);
            self.emit_parts(done, out);
        }
    }

    /// Hands out each client WebSocket message as a request of its own (method `WS`,
    /// the upgrade's target and `Host`, the message as its body), as the proxy does.
    fn websocket(&mut self, events: &mut Vec<WsEvent>, out: &mut Vec<FlowEvent>) {
        for event in events.drain(..) {
            match event {
                WsEvent::Message(m) => {
                    let App::WebSocket(ws) = &self.app else {
                        continue;
                    };
                    let request = ws.upgrade.message_request(m);
                    let index = self.requests_seen;
                    self.requests_seen += 1;
                    self.emit_http(index, request, None, out);
                }
                WsEvent::Anomaly(a) => self.note(a),
            }
        }
        // The list's allocation is kept for the next bytes.
        if let App::WebSocket(ws) = &mut self.app {
            ws.events = std::mem::take(events);
        }
    }

    /// Hands out the exchanges of HTTP/2 streams as they complete.
    fn http2(&mut self, events: &mut Vec<Http2Event>, out: &mut Vec<FlowEvent>) {
        for event in events.drain(..) {
            match event {
                Http2Event::Exchange {
                    stream_id,
                    request,
                    response,
                } => {
                    let index = match self.h2c_stream1_index {
                        Some(i) if stream_id == 1 => i,
                        _ => {
                            let i = self.requests_seen;
                            self.requests_seen += 1;
                            i
                        }
                    };
                    self.emit_http(index, request, response, out);
                }
                // A client message on a WebSocket stream (RFC 8441): a request of its
                // own, as on an HTTP/1.1 WebSocket.
                Http2Event::WebSocket { request, .. } => {
                    let index = self.requests_seen;
                    self.requests_seen += 1;
                    self.emit_http(index, request, None, out);
                }
                Http2Event::Anomaly(a) => self.note(a),
            }
        }
    }

    /// Pairs `response` with the pending request `index`, the oldest one waiting.
    fn answer(&mut self, index: u64, response: HttpResponse, out: &mut Vec<FlowEvent>) {
        match self.pending.front() {
            Some((front, request)) if *front == index => {
                if (200..300).contains(&response.status)
                    && request.method.eq_ignore_ascii_case("CONNECT")
                {
                    self.info.tunnel = Some(request.target.clone());
                }
                if response.status == 101 {
                    self.ws_upgrade = WsUpgrade::of(request);
                }
                let h2c = response.status == 101 && asks_h2c(request);
                if let Some((index, request)) = self.pending.pop_front() {
                    if h2c {
                        // HTTP/2 stream 1 will answer it (see `Opaque` in `http`).
                        self.h2c_upgrade = Some(Box::new((index, request, response)));
                    } else {
                        self.emit_http(index, request, Some(response), out);
                    }
                }
            }
            // The request went out ahead of it: its exchange has no response.
            _ if self.sent_ahead.contains(&index) => self.sent_ahead.retain(|&i| i > index),
            _ => self.note_response_without_request(&response),
        }
    }

    /// Keeps a response whose request `index` is still coming (see [`Self::http`]):
    /// at most `max_pending_requests` of them, the oldest given up beyond that.
    fn hold_early(&mut self, index: u64, response: HttpResponse, limits: &FlowLimits) {
        if self.early_responses.len() >= limits.max_pending_requests.max(1) {
            let (_, oldest) = self.early_responses.remove(0);
            self.note_response_without_request(&oldest);
        }
        self.early_responses.push((index, response));
    }

    fn note_response_without_request(&mut self, response: &HttpResponse) {
        self.note(Anomaly::new(
            "http-response-without-request",
            format!(
                "response {} has no request in this capture",
                response.status
            ),
        ));
    }

    fn pending_body_bytes(&self) -> usize {
        self.pending.iter().map(|(_, r)| r.body.len()).sum()
    }

    fn emit_http(
        &mut self,
        index: u64,
        request: HttpRequest,
        response: Option<HttpResponse>,
        out: &mut Vec<FlowEvent>,
    ) {
        self.emitted = true;
        out.push(FlowEvent::Http {
            conn: self.info.clone(),
            index,
            request: Box::new(request),
            response: response.map(Box::new),
            anomalies: std::mem::take(&mut self.anomalies),
        });
    }

    fn emit_metadata(&mut self, out: &mut Vec<FlowEvent>) {
        // DNS over TCP is name resolution, reported through the address map.
        if self.emitted || self.info.protocol == Some(AppProtocol::Dns) {
            return;
        }
        self.emitted = true;
        self.metadata_due = false;
        out.push(FlowEvent::Metadata {
            conn: self.info.clone(),
            anomalies: std::mem::take(&mut self.anomalies),
            payload: Vec::new(),
        });
    }

    fn flush_pending(&mut self, out: &mut Vec<FlowEvent>) {
        // Responses whose request never completed (the capture or the parser stopped
        // within it), noted before the requests go out with the anomalies.
        for (_, response) in std::mem::take(&mut self.early_responses) {
            self.note_response_without_request(&response);
        }
        while let Some((index, request)) = self.pending.pop_front() {
            self.emit_http(index, request, None, out);
        }
        self.pending_held.sync(0);
    }

    /// The connection is over: the parser completes what it can, held requests go
    /// out, and a connection that showed nothing readable becomes one metadata event.
    fn close(&mut self, limits: &FlowLimits, out: &mut Vec<FlowEvent>) {
        if let App::Http(http) = &mut self.app {
            let mut events = std::mem::take(&mut self.http_events);
            http.close(&mut events);
            self.http(&mut events, limits, out);
        }
        if let App::Http2(h2) = &mut self.app {
            let mut events = std::mem::take(&mut self.h2_events);
            h2.close(&mut events);
            self.http2(&mut events, out);
        }
        if let App::WebSocket(ws) = &mut self.app {
            let mut events = std::mem::take(&mut ws.events);
            ws.reader.close(&mut events);
            self.websocket(&mut events, out);
        }
        if let Some((index, request, response)) = self.h2c_upgrade.take().map(|b| *b) {
            self.emit_http(index, request, Some(response), out);
        }
        self.flush_pending(out);
        if let App::Unparsed(parts) = &mut self.app {
            let mut done = Vec::new();
            parts.finish(self.info.last_frame, &mut done);
            self.emit_parts(done, out);
        }
        if !self.emitted || self.metadata_due {
            self.emit_metadata(out);
        }
    }
}

/// The client bytes handed over at a protocol switch, each part with the meta of the
/// segment that carried it: where it was captured when it was held for the switch's
/// answer (`held`, see [`held_pieces`]), else all of it with `meta`.
fn client_pieces<'a>(
    bytes: &'a [u8],
    held: &'a [HeldSegment],
    meta: SegmentMeta,
) -> Vec<(&'a [u8], SegmentMeta)> {
    if held.is_empty() {
        return vec![(bytes, meta)];
    }
    held_pieces(bytes, held)
        .map(|(piece, seg)| {
            let meta = SegmentMeta {
                ts: seg.ts,
                frame: seg.frame,
            };
            (piece, meta)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::sync::atomic::Ordering;

    #[test]
    fn flow_key_hash_agrees_with_eq() {
        use std::hash::BuildHasher;
        let state = keyed_hash::keyed_state();
        let v4 = |a: u8| IpAddr::V4(Ipv4Addr::new(10, 0, 0, a));
        let v6 = |a: u16| IpAddr::V6(std::net::Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, a));
        let ab = FlowKey::new(Proto::Tcp, (v4(1), 1000), (v4(2), 80));
        let ba = FlowKey::new(Proto::Tcp, (v4(2), 80), (v4(1), 1000));
        assert_eq!(ab, ba);
        assert_eq!(state.hash_one(ab), state.hash_one(ba));
        // Keys that differ in any one field hash apart (with this process's key).
        let others = [
            FlowKey::new(Proto::Udp, (v4(1), 1000), (v4(2), 80)),
            FlowKey::new(Proto::Tcp, (v4(1), 1001), (v4(2), 80)),
            FlowKey::new(Proto::Tcp, (v4(1), 1000), (v4(3), 80)),
            FlowKey::new(Proto::Tcp, (v6(1), 1000), (v4(2), 80)),
            FlowKey::new(Proto::Tcp, (v6(1), 1000), (v6(2), 80)),
        ];
        for k in others {
            assert_ne!(k, ab);
            assert_ne!(state.hash_one(k), state.hash_one(ab), "{k:?}");
        }
    }

    struct NoDevices;
    impl IsDevice for NoDevices {
        fn is_device(&self, _: IpAddr, _: Option<[u8; 6]>) -> bool {
            false
        }
    }

    const PHONE: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9));
    const SYN: u8 = 1;
    const ACK: u8 = 2;
    const FIN: u8 = 4;
    const RST: u8 = 8;

    /// Feeds one TCP segment (from the phone when `up`) at time `t` ms, frame `n`, to
    /// or from the server's port 80.
    #[allow(clippy::too_many_arguments)]
    fn seg(
        table: &mut FlowTable,
        out: &mut Vec<FlowEvent>,
        n: u64,
        up: bool,
        port: u16,
        seq: u32,
        flags: u8,
        payload: &[u8],
    ) {
        seg_on(table, out, n, up, (port, 80), seq, flags, payload);
    }

    /// [`seg`] between the phone's port and the server's: `ports`.
    #[allow(clippy::too_many_arguments)]
    fn seg_on(
        table: &mut FlowTable,
        out: &mut Vec<FlowEvent>,
        n: u64,
        up: bool,
        (port, server_port): (u16, u16),
        seq: u32,
        flags: u8,
        payload: &[u8],
    ) {
        let (src, dst, sport, dport) = if up {
            (PHONE, SERVER, port, server_port)
        } else {
            (SERVER, PHONE, server_port, port)
        };
        let packet = Packet {
            src_mac: None,
            dst_mac: None,
            vlan: None,
            src,
            dst,
            transport: Transport::Tcp(TcpSegment {
                src_port: sport,
                dst_port: dport,
                seq,
                ack: 0,
                syn: flags & SYN != 0,
                ack_flag: flags & ACK != 0,
                fin: flags & FIN != 0,
                rst: flags & RST != 0,
                payload,
            }),
            reassembled_from: None,
            app_uid: None,
        };
        let ts = Timestamp::from_micros(1_000_000_000 + n as i64 * 1_000);
        table.packet(ts, n, &packet, &NoDevices, out);
    }

    fn handshake(t: &mut FlowTable, out: &mut Vec<FlowEvent>, port: u16) {
        seg(t, out, 1, true, port, 100, SYN, b"");
        seg(t, out, 2, false, port, 500, SYN | ACK, b"");
        seg(t, out, 3, true, port, 101, ACK, b"");
    }

    fn kinds(out: &[FlowEvent]) -> Vec<String> {
        out.iter()
            .map(|e| match e {
                FlowEvent::Http {
                    request, response, ..
                } => format!(
                    "http {} {}",
                    request.target,
                    response.as_ref().map_or(0, |r| r.status)
                ),
                FlowEvent::Metadata { conn, .. } => format!(
                    "metadata {}",
                    conn.tls.as_ref().and_then(|t| t.sni()).unwrap_or("-")
                ),
                FlowEvent::Part { part, .. } => format!("part {}", part.index),
                FlowEvent::Dns { .. } => "dns".into(),
                FlowEvent::DnsQuery { names, .. } => format!("dns query {}", names.join(" ")),
                FlowEvent::MdnsAnnouncement { payload, .. } => {
                    format!("mdns announcement of {} bytes", payload.len())
                }
            })
            .collect()
    }

    const REQ: &[u8] = b"POST /a HTTP/1.1\r\nHost: x.example\r\nContent-Length: 8\r\n\r\n12345678";
    const RESP: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

    #[test]
    fn request_and_response_make_one_exchange_and_the_last_ack_no_flow() {
        let mut t = FlowTable::new(FlowLimits::default());
        let mut out = Vec::new();
        handshake(&mut t, &mut out, 40000);
        seg(&mut t, &mut out, 4, true, 40000, 101, ACK, REQ);
        assert!(out.is_empty(), "the request waits for its response");
        seg(&mut t, &mut out, 5, false, 40000, 501, ACK, RESP);
        assert_eq!(kinds(&out), ["http /a 200"]);
        let end = 101 + REQ.len() as u32;
        seg(&mut t, &mut out, 6, true, 40000, end, FIN | ACK, b"");
        seg(
            &mut t,
            &mut out,
            7,
            false,
            40000,
            501 + RESP.len() as u32,
            FIN | ACK,
            b"",
        );
        assert_eq!(t.open_flows(), 0, "both FINs close the connection");
        seg(&mut t, &mut out, 8, true, 40000, end + 1, ACK, b"");
        assert_eq!(t.open_flows(), 0, "the last ACK opens nothing");
        assert_eq!(kinds(&out), ["http /a 200"], "no metadata exchange besides");
        if let FlowEvent::Http { request, conn, .. } = &out[0] {
            assert_eq!((request.meta.first_frame, conn.client.port), (4, 40000));
        }
    }

    /// A server may answer before the request's body is all there (nginx's `return`
    /// does; so does a `413`), and at a tap the request's last segment may pass after
    /// the response when it was lost and resent: the response waits for its request.
    #[test]
    fn a_response_complete_before_its_request_still_answers_it() {
        let mut t = FlowTable::new(FlowLimits::default());
        let mut out = Vec::new();
        handshake(&mut t, &mut out, 40001);
        let (head, body) = REQ.split_at(REQ.len() - 8);
        seg(&mut t, &mut out, 4, true, 40001, 101, ACK, head);
        // The body's first half, then (out of order) its second; the first is lost.
        let second = 101 + head.len() as u32 + 4;
        seg(&mut t, &mut out, 5, true, 40001, second, ACK, &body[4..]);
        seg(&mut t, &mut out, 6, false, 40001, 501, ACK, RESP);
        assert!(
            out.is_empty(),
            "the response waits for its request: {:?}",
            kinds(&out)
        );
        seg(
            &mut t,
            &mut out,
            7,
            true,
            40001,
            second - 4,
            ACK,
            &body[..4],
        );
        // The next request on the connection pairs as usual.
        let next = second + 4;
        seg(
            &mut t,
            &mut out,
            8,
            true,
            40001,
            next,
            ACK,
            b"GET /b HTTP/1.1\r\nHost: x.example\r\n\r\n",
        );
        seg(
            &mut t,
            &mut out,
            9,
            false,
            40001,
            501 + RESP.len() as u32,
            ACK,
            RESP,
        );
        assert_eq!(kinds(&out), ["http /a 200", "http /b 200"]);
        for e in &out {
            if let FlowEvent::Http { anomalies, .. } = e {
                assert!(anomalies.is_empty(), "{anomalies:?}");
            }
        }
    }

    /// A response whose request never completes (the capture ends inside its body)
    /// answers the request as far as it came, which the parser hands out truncated
    /// when the connection ends.
    #[test]
    fn a_response_to_a_request_cut_short_answers_it_when_the_connection_ends() {
        let mut t = FlowTable::new(FlowLimits::default());
        let mut out = Vec::new();
        handshake(&mut t, &mut out, 40002);
        let (head, _) = REQ.split_at(REQ.len() - 8);
        seg(&mut t, &mut out, 4, true, 40002, 101, ACK, head);
        seg(&mut t, &mut out, 5, false, 40002, 501, ACK, RESP);
        assert!(out.is_empty());
        t.finish(&mut out);
        let http: Vec<_> = out
            .iter()
            .filter_map(|e| match e {
                FlowEvent::Http {
                    request,
                    response,
                    anomalies,
                    ..
                } => Some((request, response, anomalies)),
                _ => None,
            })
            .collect();
        assert_eq!(http.len(), 1, "{:?}", kinds(&out));
        let (request, response, anomalies) = &http[0];
        assert_eq!(request.target, "/a");
        assert!(request.truncated, "its body never came");
        assert_eq!(response.as_ref().map(|r| r.status), Some(200));
        assert!(
            !anomalies
                .iter()
                .any(|a| a.kind == "http-response-without-request"),
            "{anomalies:?}"
        );
    }

    fn h2_request(id: u32, path: &str) -> Vec<u8> {
        use crate::net::http2::{build, flags, frame_type};
        build::frame(
            frame_type::HEADERS,
            flags::END_HEADERS | flags::END_STREAM,
            id,
            &build::block(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":authority", "h2.example"),
                (":path", path),
            ]),
        )
    }

    fn h2_response(id: u32, status: &str) -> Vec<u8> {
        use crate::net::http2::{build, flags, frame_type};
        let mut r = build::frame(frame_type::SETTINGS, 0, 0, &[]);
        r.extend(build::frame(
            frame_type::HEADERS,
            flags::END_HEADERS | flags::END_STREAM,
            id,
            &build::block(&[(":status", status)]),
        ));
        r
    }

    #[test]
    fn h2c_prior_knowledge_streams_become_exchanges_in_completion_order() {
        let mut t = FlowTable::new(FlowLimits::default());
        let mut out = Vec::new();
        handshake(&mut t, &mut out, 40001);
        let mut c = sniff::H2_PREFACE.to_vec();
        c.extend(h2_request(1, "/one"));
        c.extend(h2_request(3, "/three"));
        seg(&mut t, &mut out, 4, true, 40001, 101, ACK, &c);
        assert!(out.is_empty());
        let mut s = h2_response(3, "204");
        s.extend(h2_response(1, "200"));
        seg(&mut t, &mut out, 5, false, 40001, 501, ACK, &s);
        assert_eq!(kinds(&out), ["http /three 204", "http /one 200"]);
        let indices: Vec<u64> = out
            .iter()
            .filter_map(|e| match e {
                FlowEvent::Http { index, conn, .. } => {
                    assert_eq!(conn.protocol, Some(AppProtocol::Http2PriorKnowledge));
                    Some(*index)
                }
                _ => None,
            })
            .collect();
        assert_eq!(indices, [0, 1]);
        t.finish(&mut out);
        assert_eq!(out.len(), 2, "no metadata exchange besides");
    }

    #[test]
    fn h2c_upgrade_is_answered_on_stream_1() {
        let mut t = FlowTable::new(FlowLimits::default());
        let mut out = Vec::new();
        handshake(&mut t, &mut out, 40002);
        let up = b"GET /first HTTP/1.1\r\nHost: h2.example\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n";
        seg(&mut t, &mut out, 4, true, 40002, 101, ACK, up);
        // The server switches and answers stream 1 at once, in the same segment.
        let mut s =
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
                .to_vec();
        s.extend(h2_response(1, "200"));
        seg(&mut t, &mut out, 5, false, 40002, 501, ACK, &s);
        assert_eq!(kinds(&out), ["http /first 200"]);
        let mut c = sniff::H2_PREFACE.to_vec();
        c.extend(h2_request(3, "/second"));
        seg(
            &mut t,
            &mut out,
            6,
            true,
            40002,
            101 + up.len() as u32,
            ACK,
            &c,
        );
        let next = 501 + s.len() as u32;
        seg(
            &mut t,
            &mut out,
            7,
            false,
            40002,
            next,
            ACK,
            &h2_response(3, "404"),
        );
        assert_eq!(kinds(&out), ["http /first 200", "http /second 404"]);
        let got: Vec<(u64, &str)> = out
            .iter()
            .filter_map(|e| match e {
                FlowEvent::Http { index, request, .. } => Some((*index, request.version.as_str())),
                _ => None,
            })
            .collect();
        assert_eq!(got, [(0, "HTTP/1.1"), (1, "HTTP/2")]);
    }

    #[test]
    fn requests_inside_a_connect_tunnel_pair_with_their_responses() {
        // Request indices of the tunnel's own HTTP/1 parser start after the CONNECTs.
        let mut t = FlowTable::new(FlowLimits::default());
        let mut out = Vec::new();
        handshake(&mut t, &mut out, 40010);
        let c: &[&[u8]] = &[
            b"CONNECT a.example:8080 HTTP/1.1\r\nHost: a.example:8080\r\n\r\n",
            b"CONNECT a.example:8080 HTTP/1.1\r\nHost: a.example:8080\r\nProxy-Authorization: Basic dTpw\r\n\r\n",
            b"GET /in HTTP/1.1\r\nHost: a.example\r\n\r\n",
        ];
        let s: &[&[u8]] = &[
            b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 200 Connection established\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
        ];
        let (mut cseq, mut sseq, mut n) = (101u32, 501u32, 4);
        for (up, down) in c.iter().zip(s) {
            seg(&mut t, &mut out, n, true, 40010, cseq, ACK, up);
            seg(&mut t, &mut out, n + 1, false, 40010, sseq, ACK, down);
            cseq += up.len() as u32;
            sseq += down.len() as u32;
            n += 2;
        }
        assert_eq!(
            kinds(&out),
            [
                "http a.example:8080 407",
                "http a.example:8080 200",
                "http /in 204"
            ]
        );
        let FlowEvent::Http { index, conn, .. } = &out[2] else {
            unreachable!()
        };
        assert_eq!(*index, 2);
        assert_eq!(conn.tunnel.as_deref(), Some("a.example:8080"));
    }

    #[test]
    fn bytes_sent_into_a_connect_tunnel_before_its_answer_keep_their_capture() {
        // The client writes into the tunnel with its CONNECT (frame 4), before the
        // proxy's `200` (frame 5): what it wrote is dated and located at frame 4.
        let mut t = FlowTable::new(FlowLimits::default());
        let mut out = Vec::new();
        handshake(&mut t, &mut out, 40011);
        let mut up = b"CONNECT a.example:80 HTTP/1.1\r\nHost: a.example:80\r\n\r\n".to_vec();
        up.extend_from_slice(b"GET /in HTTP/1.1\r\nHost: a.example\r\n\r\n");
        let ok = b"HTTP/1.1 200 Connection established\r\n\r\n";
        seg(&mut t, &mut out, 4, true, 40011, 101, ACK, &up);
        seg(&mut t, &mut out, 5, false, 40011, 501, ACK, ok);
        let answer = b"HTTP/1.1 204 No Content\r\n\r\n";
        seg(
            &mut t,
            &mut out,
            6,
            false,
            40011,
            501 + ok.len() as u32,
            ACK,
            answer,
        );
        assert_eq!(kinds(&out), ["http a.example:80 200", "http /in 204"]);
        let FlowEvent::Http { request, .. } = &out[1] else {
            unreachable!()
        };
        let frame4 = Timestamp::from_micros(1_000_000_000 + 4_000);
        assert_eq!(
            (request.meta.first_frame, request.meta.ts),
            (4, frame4),
            "where the request was captured, not the 200 (frame 5)"
        );

        // A TLS tunnel: its metadata exchange counts from the ClientHello's frame.
        let mut t = FlowTable::new(FlowLimits::default());
        let mut out = Vec::new();
        handshake(&mut t, &mut out, 40012);
        let mut up = b"CONNECT t.example:443 HTTP/1.1\r\nHost: t.example:443\r\n\r\n".to_vec();
        up.extend(client_hello_record(b"t.example"));
        seg(&mut t, &mut out, 4, true, 40012, 101, ACK, &up);
        seg(&mut t, &mut out, 5, false, 40012, 501, ACK, ok);
        t.finish(&mut out);
        assert_eq!(
            kinds(&out),
            ["http t.example:443 200", "metadata t.example"]
        );
        let FlowEvent::Metadata { conn, .. } = &out[1] else {
            unreachable!()
        };
        assert_eq!(conn.first_client_data, Some(frame4));
    }

    #[test]
    fn bytes_sent_into_a_socks_tunnel_before_its_reply_keep_their_frames() {
        // A SOCKS4a request and the first half of a request into the tunnel (frame
        // 4), the rest of it (frame 5), then the server's grant (frame 6) and the
        // answer through the tunnel (frame 7): the request runs from frame 4 to 5.
        let mut t = FlowTable::new(FlowLimits::default());
        let mut out = Vec::new();
        handshake(&mut t, &mut out, 40021);
        let socks4a = [&[4u8, 1, 0, 80, 0, 0, 0, 1, 0][..], b"a.example\0"].concat();
        let get = b"GET /in HTTP/1.1\r\nHost: a.example\r\n\r\n";
        let (a, b) = get.split_at(10);
        let seg4 = [&socks4a[..], a].concat();
        seg(&mut t, &mut out, 4, true, 40021, 101, ACK, &seg4);
        seg(
            &mut t,
            &mut out,
            5,
            true,
            40021,
            101 + seg4.len() as u32,
            ACK,
            b,
        );
        let granted = [0u8, 90, 0, 0, 0, 0, 0, 0];
        seg(&mut t, &mut out, 6, false, 40021, 501, ACK, &granted);
        let answer = b"HTTP/1.1 204 No Content\r\n\r\n";
        seg(&mut t, &mut out, 7, false, 40021, 509, ACK, answer);
        assert_eq!(kinds(&out), ["http /in 204"]);
        let FlowEvent::Http { request, conn, .. } = &out[0] else {
            unreachable!()
        };
        assert_eq!(conn.tunnel.as_deref(), Some("a.example:80"));
        let at4 = Timestamp::from_micros(1_000_000_000 + 4_000);
        assert_eq!(
            (
                request.meta.first_frame,
                request.meta.last_frame,
                request.meta.ts
            ),
            (4, 5, at4),
            "where the request was captured, not the grant (frame 6)"
        );
    }

    #[test]
    fn socks_handshakes_count_against_the_unparsed_total() {
        let limits = FlowLimits {
            max_unparsed_total: 8,
            ..FlowLimits::default()
        };
        let mut t = FlowTable::new(limits);
        let mut out = Vec::new();
        handshake(&mut t, &mut out, 40020);
        seg(&mut t, &mut out, 4, true, 40020, 101, ACK, &[5, 1, 0]);
        seg(&mut t, &mut out, 5, false, 40020, 501, ACK, &[5, 0]);
        assert_eq!(
            t.unparsed_held.load(Ordering::Relaxed),
            5,
            "held while watched"
        );
        // A request that would take the table past its total: given up, its client
        // bytes kept as a protocol no parser reads, within the total.
        let request = [&[5u8, 1, 0, 3, 9][..], b"a.example", &[0, 80]].concat();
        seg(&mut t, &mut out, 6, true, 40020, 104, ACK, &request);
        assert_eq!(t.unparsed_held.load(Ordering::Relaxed), 8);
        seg(
            &mut t,
            &mut out,
            7,
            true,
            40020,
            104 + request.len() as u32,
            FIN | ACK,
            b"",
        );
        seg(&mut t, &mut out, 8, false, 40020, 503, FIN | ACK, b"");
        let (payload, anomalies) = payload_of(&out);
        assert_eq!(payload[..], [5, 1, 0, 5, 1, 0, 3, 9]);
        assert_eq!(anomalies[0], "payload-not-searched");
        assert_eq!(t.unparsed_held.load(Ordering::Relaxed), 0, "all given back");
    }

    #[test]
    fn a_declined_h2c_upgrade_stays_http1() {
        let mut t = FlowTable::new(FlowLimits::default());
        let mut out = Vec::new();
        handshake(&mut t, &mut out, 40003);
        let up = b"GET /x HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n";
        seg(&mut t, &mut out, 4, true, 40003, 101, ACK, up);
        seg(&mut t, &mut out, 5, false, 40003, 501, ACK, RESP);
        assert_eq!(kinds(&out), ["http /x 200"]);
    }

    #[test]
    fn a_connection_without_http_is_one_metadata_exchange() {
        let mut t = FlowTable::new(FlowLimits::default());
        let mut out = Vec::new();
        handshake(&mut t, &mut out, 40001);
        seg(
            &mut t,
            &mut out,
            4,
            true,
            40001,
            101,
            ACK,
            b"\x00\x01binary protocol",
        );
        seg(&mut t, &mut out, 5, true, 40001, 118, RST, b"");
        // Its one part of client bytes is the connection's metadata exchange.
        assert_eq!(kinds(&out), ["part 0"]);
        let mut out = Vec::new();
        handshake(&mut t, &mut out, 40002);
        t.finish(&mut out);
        assert_eq!(
            kinds(&out),
            ["metadata -"],
            "a bare handshake is contact too"
        );
    }

    /// A minimal ClientHello record: TLS 1.2 record, one suite, SNI extension only.
    fn client_hello_record(name: &[u8]) -> Vec<u8> {
        let mut sni = vec![0, 0];
        let list_len = (name.len() + 3) as u16;
        sni.extend_from_slice(&(list_len + 2).to_be_bytes());
        sni.extend_from_slice(&list_len.to_be_bytes());
        sni.push(0);
        sni.extend_from_slice(&(name.len() as u16).to_be_bytes());
        sni.extend_from_slice(name);
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7; 32]);
        body.extend_from_slice(&[0, 0, 2, 0x13, 0x01, 1, 0]);
        body.extend_from_slice(&(sni.len() as u16).to_be_bytes());
        body.extend_from_slice(&sni);
        let mut hs = vec![1, 0];
        hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
        hs.extend_from_slice(&body);
        let mut record = vec![22, 3, 1];
        record.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        record.extend_from_slice(&hs);
        record
    }

    #[test]
    fn tls_client_hello_names_the_metadata_exchange() {
        let record = client_hello_record(b"ads.tracker.example");
        let mut t = FlowTable::new(FlowLimits::default());
        let mut out = Vec::new();
        handshake(&mut t, &mut out, 40003);
        // Split across two segments: the hello is reassembled first.
        let (a, b) = record.split_at(20);
        seg(&mut t, &mut out, 4, true, 40003, 101, ACK, a);
        seg(&mut t, &mut out, 5, true, 40003, 121, ACK, b);
        assert!(
            out.is_empty(),
            "emitted once the server answers or the connection ends"
        );
        t.finish(&mut out);
        assert_eq!(kinds(&out), ["metadata ads.tracker.example"]);
        let FlowEvent::Metadata { conn, .. } = &out[0] else {
            panic!("{:?}", kinds(&out));
        };
        assert_eq!(conn.protocol, Some(AppProtocol::Tls));
        assert!(conn.first_client_data.is_some());
        // Without a key log: not decrypted, for want of a key, and counted so.
        let tls = conn.tls.as_ref().expect("TLS facts");
        assert!(!tls.decrypted());
        assert_eq!(tls.not_decrypted(), Some(&NotDecrypted::NoKey));
        assert_eq!(t.stats().tls_decrypted, 0);
        assert_eq!(
            t.stats().tls_not_decrypted,
            BTreeMap::from([("no-key".to_string(), 1)])
        );
    }

    #[test]
    fn a_tls12_certificate_comes_with_the_metadata_exchange_with_or_without_keys() {
        use crate::net::tls::test_hellos::flight12;
        use crate::net::tls_certificate::tests::{certificate, message12};
        let hello = client_hello_record(b"ads.tracker.example");
        let leaf = certificate(&["ads.tracker.example"]);
        let flight = flight12(&[(11, message12(&[&leaf])), (14, vec![])], 300);
        // The ServerHello in the first segment, the certificate across both.
        let (a, b) = flight.split_at(200);
        for keyed in [false, true] {
            let mut t = if keyed {
                keyed_table()
            } else {
                FlowTable::new(FlowLimits::default())
            };
            let mut out = Vec::new();
            handshake(&mut t, &mut out, 40004);
            seg(&mut t, &mut out, 4, true, 40004, 101, ACK, &hello);
            seg(&mut t, &mut out, 5, false, 40004, 501, ACK, a);
            assert!(out.is_empty(), "keyed {keyed}: waits for the certificate");
            seg(&mut t, &mut out, 6, false, 40004, 701, ACK, b);
            assert_eq!(
                kinds(&out),
                ["metadata ads.tracker.example"],
                "keyed {keyed}"
            );
            let FlowEvent::Metadata {
                conn, anomalies, ..
            } = &out[0]
            else {
                unreachable!()
            };
            let tls = conn.tls.as_ref().expect("TLS facts");
            assert_eq!(
                tls.not_decrypted(),
                Some(&NotDecrypted::NoKey),
                "keyed {keyed}"
            );
            assert_eq!(tls.server_hello.as_ref().map(|h| h.version), Some(0x0303));
            let cert = tls.server_certificate.as_ref().expect("certificate");
            assert_eq!(cert.host.as_deref(), Some("ads.tracker.example"));
            assert!(anomalies.is_empty(), "{anomalies:?}");
        }
        // A certificate that does not parse: an anomaly, and the exchange all the same.
        let broken = flight12(&[(11, vec![0, 0, 4, 0, 0, 1, 0x30])], 300);
        let mut t = FlowTable::new(FlowLimits::default());
        let mut out = Vec::new();
        handshake(&mut t, &mut out, 40005);
        seg(&mut t, &mut out, 4, true, 40005, 101, ACK, &hello);
        seg(&mut t, &mut out, 5, false, 40005, 501, ACK, &broken);
        t.finish(&mut out);
        let [FlowEvent::Metadata {
            conn, anomalies, ..
        }] = &out[..]
        else {
            panic!("{:?}", kinds(&out));
        };
        assert!(conn
            .tls
            .as_ref()
            .is_some_and(|t| t.server_certificate.is_none()));
        assert_eq!(anomalies.len(), 1, "{anomalies:?}");
        assert_eq!(anomalies[0].kind, "tls-malformed");
        assert!(anomalies[0]
            .detail
            .starts_with("server Certificate: certificate 1 of 1: not an X.509"));
    }

    fn keyed_table() -> FlowTable {
        let mut t = FlowTable::new(FlowLimits::default());
        let line = format!("CLIENT_RANDOM {} {}\n", "ab".repeat(32), "cd".repeat(48));
        assert_eq!(t.add_keylog(line.as_bytes()).used, 1);
        assert_eq!(t.keylog().len(), 1);
        t
    }

    #[test]
    fn with_keys_a_tls_connection_gets_a_decryptor_and_a_final_status() {
        let record = client_hello_record(b"ads.tracker.example");
        let mut t = keyed_table();
        let mut out = Vec::new();
        handshake(&mut t, &mut out, 40010);
        let (a, b) = record.split_at(3);
        seg(&mut t, &mut out, 4, true, 40010, 101, ACK, a);
        seg(&mut t, &mut out, 5, true, 40010, 104, ACK, b);
        // Server bytes that are no TLS at all: whatever the decryptor makes of them,
        // nothing reaches an HTTP parser and nothing panics.
        seg(&mut t, &mut out, 6, false, 40010, 501, ACK, RESP);
        t.finish(&mut out);
        let metadata: Vec<&ConnInfo> = out
            .iter()
            .filter_map(|e| match e {
                FlowEvent::Metadata { conn, .. } => Some(conn),
                _ => None,
            })
            .collect();
        assert_eq!(metadata.len(), 1, "{:?}", kinds(&out));
        assert_eq!(out.len(), 1, "{:?}", kinds(&out));
        let conn = metadata[0];
        assert_eq!(conn.protocol, Some(AppProtocol::Tls));
        let tls = conn.tls.as_ref().expect("TLS facts");
        assert!(!tls.decrypted());
        assert!(tls.not_decrypted().is_some(), "{:?}", tls.status);
        let counted: u64 = t.stats().tls_not_decrypted.values().sum();
        assert_eq!((t.stats().tls_decrypted, counted), (0, 1));
    }

    #[test]
    fn keys_change_nothing_for_cleartext() {
        let mut t = keyed_table();
        let mut out = Vec::new();
        handshake(&mut t, &mut out, 40011);
        seg(&mut t, &mut out, 4, true, 40011, 101, ACK, REQ);
        seg(&mut t, &mut out, 5, false, 40011, 501, ACK, RESP);
        t.finish(&mut out);
        assert_eq!(kinds(&out), ["http /a 200"]);
        let FlowEvent::Http { conn, .. } = &out[0] else {
            panic!();
        };
        assert!(conn.tls.is_none());
        assert_eq!(t.stats().tls_not_decrypted.len(), 0);
    }

    #[test]
    fn reasons_have_stable_names() {
        assert_eq!(not_decrypted_kind(&NotDecrypted::NoKey), "no-key");
        assert_eq!(
            not_decrypted_kind(&NotDecrypted::UnsupportedSuite(0x0a)),
            "unsupported-suite"
        );
        assert_eq!(
            not_decrypted_kind(&NotDecrypted::AuthenticationFailed),
            "authentication-failed"
        );
        assert_eq!(not_decrypted_kind(&NotDecrypted::LostSync), "lost-sync");
    }

    #[test]
    fn held_requests_are_bounded_by_count_and_body_bytes() {
        let limits = FlowLimits {
            max_pending_body_bytes: 10,
            ..FlowLimits::default()
        };
        let mut t = FlowTable::new(limits);
        let mut out = Vec::new();
        handshake(&mut t, &mut out, 40004);
        seg(&mut t, &mut out, 4, true, 40004, 101, ACK, REQ);
        assert!(out.is_empty());
        seg(
            &mut t,
            &mut out,
            5,
            true,
            40004,
            101 + REQ.len() as u32,
            ACK,
            REQ,
        );
        assert_eq!(
            kinds(&out),
            ["http /a 0"],
            "16 body bytes held > 10: oldest goes out"
        );
        // Its response still pairs with the right (second) request.
        seg(&mut t, &mut out, 6, false, 40004, 501, ACK, RESP);
        seg(
            &mut t,
            &mut out,
            7,
            false,
            40004,
            501 + RESP.len() as u32,
            ACK,
            RESP,
        );
        assert_eq!(kinds(&out), ["http /a 0", "http /a 200"]);
        // The first response answered the request sent ahead: no stray.
        let noted: Vec<&str> = out
            .iter()
            .flat_map(|e| match e {
                FlowEvent::Http { anomalies, .. } => {
                    anomalies.iter().map(|a| a.kind.as_str()).collect()
                }
                _ => Vec::new(),
            })
            .collect();
        assert!(noted.is_empty(), "{noted:?}");
    }

    #[test]
    fn connections_share_the_budget_of_message_bytes() {
        let limits = FlowLimits {
            // 20 bytes for bodies (the last 2 are for header fields).
            max_message_total: 22,
            ..FlowLimits::default()
        };
        let mut t = FlowTable::new(limits);
        let mut out = Vec::new();
        // A's two requests wait for their responses: 16 body bytes held.
        handshake(&mut t, &mut out, 40030);
        let two = [REQ, REQ].concat();
        seg(&mut t, &mut out, 4, true, 40030, 101, ACK, &two);
        assert!(out.is_empty());
        assert_eq!(t.message_budget.held(), 16);
        // B's body gets the 4 bytes left.
        handshake(&mut t, &mut out, 40031);
        seg(&mut t, &mut out, 8, true, 40031, 101, ACK, REQ);
        assert_eq!(t.message_budget.held(), 20);
        // A's responses free A's share: C's body is kept whole.
        let answers = [RESP, RESP].concat();
        seg(&mut t, &mut out, 9, false, 40030, 501, ACK, &answers);
        assert_eq!(t.message_budget.held(), 4);
        handshake(&mut t, &mut out, 40032);
        seg(&mut t, &mut out, 13, true, 40032, 101, ACK, REQ);
        assert_eq!(t.message_budget.held(), 12);
        t.finish(&mut out);
        assert_eq!(t.message_budget.held(), 0, "all given back");
        let mut bodies: Vec<(u16, &[u8], Vec<&str>)> = out
            .iter()
            .filter_map(|e| match e {
                FlowEvent::Http { conn, request, .. } => Some((
                    conn.client.port,
                    &request.body[..],
                    request.anomalies.iter().map(|a| a.kind.as_str()).collect(),
                )),
                _ => None,
            })
            .collect();
        // The connections still open at the end come out in the table's order.
        bodies.sort_by_key(|b| b.0);
        let no_anomaly: Vec<&str> = Vec::new();
        assert_eq!(
            bodies,
            [
                (40030, &b"12345678"[..], no_anomaly.clone()),
                (40030, &b"12345678"[..], no_anomaly.clone()),
                (
                    40031,
                    &b"1234"[..],
                    vec![crate::net::message_budget::ANOMALY]
                ),
                (40032, &b"12345678"[..], no_anomaly),
            ]
        );
    }

    #[test]
    fn a_new_syn_on_busy_ports_starts_a_new_connection() {
        let mut t = FlowTable::new(FlowLimits::default());
        let mut out = Vec::new();
        handshake(&mut t, &mut out, 40005);
        seg(&mut t, &mut out, 4, true, 40005, 101, ACK, REQ);
        seg(&mut t, &mut out, 5, true, 40005, 9_000, SYN, b"");
        assert_eq!(kinds(&out), ["http /a 0"], "the old connection was closed");
        assert_eq!(t.open_flows(), 1);
        assert_eq!(t.stats().tcp_connections, 2);
    }

    #[test]
    fn a_copy_of_the_syn_behind_the_data_does_not_restart_the_connection() {
        // Wireshark's `wireshark-retrans` capture: the SYN retransmitted after the
        // request's first segment. One exchange, with its response.
        let mut t = FlowTable::new(FlowLimits::default());
        let mut out = Vec::new();
        handshake(&mut t, &mut out, 40006);
        seg(&mut t, &mut out, 4, true, 40006, 101, ACK, REQ);
        seg(&mut t, &mut out, 5, true, 40006, 100, SYN, b"");
        seg(&mut t, &mut out, 6, true, 40006, 101, ACK, REQ);
        seg(&mut t, &mut out, 7, false, 40006, 501, ACK, RESP);
        assert_eq!(kinds(&out), ["http /a 200"]);
        assert_eq!(t.stats().tcp_connections, 1);
    }

    /// The payload and anomaly kinds of the one metadata event (or payload part) in
    /// `out`.
    fn payload_of(out: &[FlowEvent]) -> (Vec<u8>, Vec<String>) {
        let metas = parts_of(out);
        assert_eq!(metas.len(), 1, "{:?}", kinds(out));
        metas
            .into_iter()
            .next()
            .map(|(_, _, payload, anomalies)| (payload, anomalies))
            .unwrap_or_default()
    }

    /// Index, time (ms after the tests' epoch), payload and anomaly kinds of each
    /// metadata event and payload part in `out`, in order (a metadata event is part 0).
    fn parts_of(out: &[FlowEvent]) -> Vec<(u64, i64, Vec<u8>, Vec<String>)> {
        let kinds = |a: &[Anomaly]| a.iter().map(|a| a.kind.clone()).collect();
        let ms = |t: Timestamp| (t.micros() - 1_000_000_000) / 1_000;
        out.iter()
            .filter_map(|e| match e {
                FlowEvent::Metadata {
                    conn,
                    payload,
                    anomalies,
                } => Some((0, ms(conn.first_ts), payload.clone(), kinds(anomalies))),
                FlowEvent::Part {
                    part, anomalies, ..
                } => Some((
                    part.index,
                    ms(part.at),
                    part.bytes.clone(),
                    kinds(anomalies),
                )),
                _ => None,
            })
            .collect()
    }

    /// The lead of each part ([`Part::lead`]).
    fn leads_of(out: &[FlowEvent]) -> Vec<Vec<u8>> {
        out.iter()
            .filter_map(|e| match e {
                FlowEvent::Part { part, .. } => Some(part.lead.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_protocol_no_parser_reads_hands_its_client_bytes_to_the_analysis() {
        let mut t = FlowTable::new(FlowLimits::default());
        let mut out = Vec::new();
        handshake(&mut t, &mut out, 40007);
        seg(
            &mut t,
            &mut out,
            4,
            true,
            40007,
            101,
            ACK,
            b"\x00\x2a{\"imei\":\"1",
        );
        seg(
            &mut t,
            &mut out,
            5,
            false,
            40007,
            501,
            ACK,
            b"server says hi",
        );
        seg(&mut t, &mut out, 6, true, 40007, 113, ACK, b"2345\"}");
        assert!(out.is_empty(), "reported when the connection ends");
        t.finish(&mut out);
        let (payload, anomalies) = payload_of(&out);
        assert_eq!(
            payload, b"\x00\x2a{\"imei\":\"12345\"}",
            "client bytes only, in order"
        );
        assert!(anomalies.is_empty(), "{anomalies:?}");
    }

    #[test]
    fn a_full_part_goes_out_and_the_next_bytes_start_another() {
        let limits = FlowLimits {
            max_unparsed_bytes: 6,
            ..FlowLimits::default()
        };
        let mut t = FlowTable::new(limits.clone());
        let mut out = Vec::new();
        handshake(&mut t, &mut out, 40008);
        seg(
            &mut t,
            &mut out,
            4,
            true,
            40008,
            101,
            ACK,
            b"\x01\x02abcdefgh",
        );
        assert_eq!(kinds(&out), ["part 0"], "out as soon as it is full");
        t.finish(&mut out);
        let parts = parts_of(&out);
        assert_eq!(parts[0].2, b"\x01\x02abcd");
        assert_eq!(parts[1].2, b"efgh");
        assert!(parts.iter().all(|p| p.3.is_empty()), "{parts:?}");
        assert_eq!(parts.len(), 2);
        // The second continues the first: a value cut between them is found.
        assert_eq!(leads_of(&out), [&b""[..], b"\x01\x02abcd"]);
    }

    #[test]
    fn bytes_after_a_gap_are_another_part_and_the_gap_is_said() {
        // Bytes after a hole are not joined to those before it, but searched.
        let mut t = FlowTable::new(FlowLimits::default());
        let mut out = Vec::new();
        handshake(&mut t, &mut out, 40009);
        seg(&mut t, &mut out, 4, true, 40009, 101, ACK, b"\x01\x02ab");
        seg(
            &mut t,
            &mut out,
            5,
            true,
            40009,
            111,
            ACK,
            b"after the hole",
        );
        t.finish(&mut out);
        let parts = parts_of(&out);
        assert_eq!(parts.len(), 2, "{parts:?}");
        assert_eq!(parts[0].2, b"\x01\x02ab");
        assert_eq!(parts[0].3, ["payload-not-searched"], "the gap after it");
        assert_eq!(parts[1].2, b"after the hole");
        assert!(parts[1].3.is_empty());
        assert!(
            leads_of(&out).iter().all(Vec::is_empty),
            "none across a gap"
        );
    }

    #[test]
    fn a_long_connection_is_reported_part_by_part_at_each_parts_time() {
        let mut t = FlowTable::new(FlowLimits::default());
        let mut out = Vec::new();
        handshake(&mut t, &mut out, 40016);
        // A login, its answer, then silence: out at the sweep after a quiet second,
        // not at the connection's end.
        seg(&mut t, &mut out, 4, true, 40016, 101, ACK, b"LOGIN imei=1");
        seg(&mut t, &mut out, 5, false, 40016, 501, ACK, b"OK");
        assert!(out.is_empty());
        seg(&mut t, &mut out, 1_100, false, 40016, 503, ACK, b"PING");
        assert_eq!(parts_of(&out), [(0, 4, b"LOGIN imei=1".to_vec(), vec![])]);
        // No packet at all: the clock of a live capture gone quiet does the same.
        let mut quiet = FlowTable::new(FlowLimits::default());
        let mut early = Vec::new();
        handshake(&mut quiet, &mut early, 40019);
        seg(
            &mut quiet,
            &mut early,
            4,
            true,
            40019,
            101,
            ACK,
            b"LOGIN imei=1",
        );
        quiet.tick(Timestamp::from_micros(1_000_500_000), &mut early);
        assert!(early.is_empty(), "quiet for half a second");
        quiet.tick(Timestamp::from_micros(1_001_100_000), &mut early);
        assert_eq!(parts_of(&early), [(0, 4, b"LOGIN imei=1".to_vec(), vec![])]);
        // A heartbeat every 400 ms: one part until five seconds after its first byte.
        let mut seq = 113;
        for i in 0..15 {
            let n = 2_000 + i * 400;
            seg(&mut t, &mut out, n, true, 40016, seq, ACK, b"HB");
            seq += 2;
        }
        // A message after a pause of more than a second: a part of its own.
        seg(
            &mut t,
            &mut out,
            9_000,
            true,
            40016,
            seq,
            ACK,
            b"MSG oaid=2",
        );
        t.finish(&mut out);
        let parts = parts_of(&out);
        let got: Vec<(u64, i64, usize)> = parts.iter().map(|p| (p.0, p.1, p.2.len())).collect();
        assert_eq!(
            got,
            [(0, 4, 12), (1, 2_000, 26), (2, 7_200, 4), (3, 9_000, 10)],
            "heartbeats from 2.0 s: 13 up to 6.8 s, then a new part at 7.2 s"
        );
        assert_eq!(parts[3].2, b"MSG oaid=2");
        assert!(parts.iter().all(|p| p.3.is_empty()));
    }

    #[test]
    fn ssh_is_one_metadata_exchange_however_long_it_lasts() {
        for server_first in [false, true] {
            let mut t = FlowTable::new(FlowLimits::default());
            let mut out = Vec::new();
            handshake(&mut t, &mut out, 40018);
            let (mut cseq, mut sseq) = (101, 501);
            let server_id = b"SSH-2.0-OpenSSH_9.2p1\r\n";
            if server_first {
                seg(&mut t, &mut out, 4, false, 40018, sseq, ACK, server_id);
                sseq += server_id.len() as u32;
            }
            seg(
                &mut t,
                &mut out,
                5,
                true,
                40018,
                cseq,
                ACK,
                b"SSH-2.0-OpenSSH_9.6\r\n",
            );
            cseq += 21;
            // Keystrokes seconds apart: no parts, nothing searched.
            for i in 0..10 {
                seg(
                    &mut t,
                    &mut out,
                    2_000 + i * 1_500,
                    true,
                    40018,
                    cseq,
                    ACK,
                    &[0x5a; 36],
                );
                cseq += 36;
            }
            seg(&mut t, &mut out, 20_000, false, 40018, sseq, ACK, b"x");
            assert!(out.is_empty(), "{:?}", kinds(&out));
            t.finish(&mut out);
            assert_eq!(kinds(&out), ["metadata -"], "server first: {server_first}");
            assert_eq!(out[0].conn_protocol(), Some(AppProtocol::Ssh));
            assert!(payload_of(&out).0.is_empty());
        }
    }

    #[test]
    fn bytes_past_the_depth_are_counted_and_said_when_the_connection_ends() {
        let limits = FlowLimits {
            max_unparsed_bytes: 4,
            max_unparsed_depth: 6,
            ..FlowLimits::default()
        };
        let mut t = FlowTable::new(limits);
        let mut out = Vec::new();
        handshake(&mut t, &mut out, 40017);
        seg(&mut t, &mut out, 4, true, 40017, 101, ACK, b"abcdefghij");
        seg(&mut t, &mut out, 5, true, 40017, 111, ACK | FIN, b"");
        seg(&mut t, &mut out, 6, false, 40017, 501, ACK | FIN, b"");
        let parts = parts_of(&out);
        let got: Vec<(&[u8], &[String])> = parts.iter().map(|p| (&p.2[..], &p.3[..])).collect();
        let none: &[String] = &[];
        assert_eq!(
            got,
            [
                (&b"abcd"[..], none),
                (&b"ef"[..], none),
                (&b""[..], &["payload-not-searched".to_string()][..])
            ]
        );
        let FlowEvent::Part { part, .. } = &out[out.len() - 1] else {
            panic!("{:?}", kinds(&out))
        };
        assert_eq!((part.first_frame, part.last_frame), (4, 6), "to the end");
    }

    #[test]
    fn the_table_bounds_the_payload_bytes_of_all_its_connections() {
        let limits = FlowLimits {
            max_unparsed_total: 10,
            ..FlowLimits::default()
        };
        let mut t = FlowTable::new(limits);
        let mut out = Vec::new();
        for port in [40012, 40013] {
            handshake(&mut t, &mut out, port);
            seg(&mut t, &mut out, 4, true, port, 101, ACK, b"\x01\x02345678");
        }
        assert_eq!(t.unparsed_held.load(Ordering::Relaxed), 10);
        // The first connection ends: its bytes are handed out and leave the count.
        seg(&mut t, &mut out, 5, true, 40012, 109, ACK | FIN, b"");
        seg(&mut t, &mut out, 6, false, 40012, 501, ACK | FIN, b"");
        let (first, anomalies) = payload_of(&out);
        assert_eq!(first, b"\x01\x02345678");
        assert!(anomalies.is_empty());
        assert_eq!(t.unparsed_held.load(Ordering::Relaxed), 2);
        out.clear();
        t.finish(&mut out);
        let (second, anomalies) = payload_of(&out);
        assert_eq!(second, b"\x01\x02", "what was left of the table's room");
        assert_eq!(anomalies, ["payload-not-searched"]);
        assert_eq!(t.unparsed_held.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_first_request_that_is_not_http_is_searched_as_a_payload() {
        // Sniffed as HTTP by its method, but the request line is broken (Zeek's
        // `methods` test has such lines): its bytes are searched all the same.
        let mut t = FlowTable::new(FlowLimits::default());
        let mut out = Vec::new();
        handshake(&mut t, &mut out, 40015);
        let broken = b"OPTIONS HTTP/1.1\r\nX-Imei: 490154203237518\r\n\r\n";
        seg(&mut t, &mut out, 4, true, 40015, 101, ACK, broken);
        seg(
            &mut t,
            &mut out,
            5,
            false,
            40015,
            501,
            ACK,
            b"HTTP/1.0 400 Bad Request\r\n\r\n",
        );
        seg(
            &mut t,
            &mut out,
            6,
            true,
            40015,
            101 + broken.len() as u32,
            ACK,
            b"more",
        );
        t.finish(&mut out);
        let (payload, _) = payload_of(&out);
        assert_eq!(payload, [&broken[..], b"more"].concat());
    }

    #[test]
    fn a_udp_flow_carries_its_clients_first_datagram_and_later_ones_in_parts() {
        let mut t = FlowTable::new(FlowLimits::default());
        let mut out = Vec::new();
        dgram(
            &mut t,
            &mut out,
            1,
            true,
            50_100,
            b"EVT imei=490154203237518",
        );
        assert_eq!(payload_of(&out).0, b"EVT imei=490154203237518", "at once");
        dgram(&mut t, &mut out, 2, true, 50_100, b"EVT later ");
        dgram(&mut t, &mut out, 3, false, 50_100, b"ACK");
        dgram(&mut t, &mut out, 4, true, 50_100, b"oaid=3");
        // Later datagrams in parts, as a TCP connection's bytes.
        dgram(&mut t, &mut out, 2_000, true, 50_100, b"EVT much later");
        // To a broadcast address: the first datagram only.
        dgram_to(&mut t, &mut out, 2_100, Ipv4Addr::BROADCAST, b"HELLO 1");
        dgram_to(&mut t, &mut out, 4_100, Ipv4Addr::BROADCAST, b"HELLO 2");
        let mut fin = Vec::new();
        t.finish(&mut fin);
        out.append(&mut fin);
        let hellos: Vec<Vec<u8>> = parts_of(&out)
            .into_iter()
            .map(|p| p.2)
            .filter(|p| p.starts_with(b"HELLO"))
            .collect();
        assert_eq!(hellos, [b"HELLO 1".to_vec()]);
        let parts: Vec<(u64, Vec<u8>)> = parts_of(&out)
            .into_iter()
            .map(|p| (p.0, p.2))
            .filter(|p| !p.1.starts_with(b"HELLO"))
            .collect();
        assert_eq!(
            parts,
            [
                (0, b"EVT imei=490154203237518".to_vec()),
                (1, b"EVT later oaid=3".to_vec()),
                (2, b"EVT much later".to_vec())
            ]
        );
        // Datagrams are messages: no part carries the one before's end.
        assert!(leads_of(&out).iter().all(Vec::is_empty));
        // QUIC is encrypted: its Initial is not a payload.
        let (a, _) = quic_initials("app-measurement.com");
        let mut out = Vec::new();
        dgram(&mut t, &mut out, 5, true, 50_102, &a);
        t.finish(&mut out);
        assert!(payload_of(&out).0.is_empty());
    }

    #[test]
    fn tls_and_http_keep_no_payload() {
        let mut t = FlowTable::new(FlowLimits::default());
        let mut out = Vec::new();
        handshake(&mut t, &mut out, 40010);
        // TLS without keys is metadata only; its bytes are not the analysis's.
        let hello = client_hello_record(b"t.example");
        seg(&mut t, &mut out, 4, true, 40010, 101, ACK, &hello);
        t.finish(&mut out);
        assert!(payload_of(&out).0.is_empty());
        let mut t = FlowTable::new(FlowLimits::default());
        let mut out = Vec::new();
        handshake(&mut t, &mut out, 40011);
        seg(&mut t, &mut out, 4, true, 40011, 101, ACK, REQ);
        t.finish(&mut out);
        assert_eq!(kinds(&out), ["http /a 0"]);
    }

    /// A client's WebSocket frame: FIN, `opcode`, masked with a fixed key.
    fn ws_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let key = [1u8, 2, 3, 4];
        assert!(payload.len() < 126);
        let mut f = vec![0x80 | opcode, 0x80 | payload.len() as u8];
        f.extend_from_slice(&key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        f
    }

    #[test]
    fn websocket_messages_of_the_client_become_requests() {
        let mut t = FlowTable::new(FlowLimits::default());
        let mut out = Vec::new();
        handshake(&mut t, &mut out, 40014);
        let upgrade = b"GET /chat?v=1 HTTP/1.1\r\nHost: ws.example\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        let switched =
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        seg(&mut t, &mut out, 4, true, 40014, 101, ACK, upgrade);
        let c = 101 + upgrade.len() as u32;
        seg(&mut t, &mut out, 5, false, 40014, 501, ACK, switched);
        let s = 501 + switched.len() as u32;
        let one = ws_frame(1, br#"{"imei":"490154203237518"}"#);
        let ping = ws_frame(9, b"");
        let two = ws_frame(2, b"\x00bin");
        let both = [one.clone(), ping, two].concat();
        // The first frame cut across two segments; the server's frame is not read.
        seg(&mut t, &mut out, 6, true, 40014, c, ACK, &both[..5]);
        seg(&mut t, &mut out, 7, true, 40014, c + 5, ACK, &both[5..]);
        seg(&mut t, &mut out, 8, false, 40014, s, ACK, b"\x81\x02hi");
        t.finish(&mut out);
        let requests: Vec<(String, String, Vec<u8>, u64, u64)> = out
            .iter()
            .filter_map(|e| match e {
                FlowEvent::Http { request, index, .. } => Some((
                    request.method.clone(),
                    request.target.clone(),
                    request.body.clone(),
                    *index,
                    request.meta.first_frame,
                )),
                _ => None,
            })
            .collect();
        assert_eq!(
            requests,
            [
                ("GET".into(), "/chat?v=1".into(), Vec::new(), 0, 4),
                (
                    "WS".into(),
                    "/chat?v=1".into(),
                    br#"{"imei":"490154203237518"}"#.to_vec(),
                    1,
                    6
                ),
                ("WS".into(), "/chat?v=1".into(), b"\x00bin".to_vec(), 2, 7),
            ]
        );
        let FlowEvent::Http { request, .. } = &out[1] else {
            panic!("{:?}", kinds(&out));
        };
        assert_eq!(request.version, "WebSocket");
        assert_eq!(
            request.headers,
            [crate::exchange::Header::new("Host", "ws.example")]
        );
    }

    #[test]
    fn a_websocket_upgrade_with_its_options_in_two_connection_lines_is_followed() {
        // `Connection: keep-alive` then `Connection: Upgrade`: one list, as the proxy
        // reads it. The client's first message comes in the segment of its upgrade,
        // before the 101: read as a message only if the request was taken for an
        // upgrade (its bytes wait for the answer rather than being parsed as HTTP).
        let mut t = FlowTable::new(FlowLimits::default());
        let mut out = Vec::new();
        handshake(&mut t, &mut out, 40015);
        let mut client = b"GET /chat HTTP/1.1\r\nHost: ws.example\r\nConnection: keep-alive\r\n\
Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n"
            .to_vec();
        client.extend(ws_frame(1, br#"{"imei":"490154203237518"}"#));
        let switched = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\n\r\n";
        seg(&mut t, &mut out, 4, true, 40015, 101, ACK, &client);
        seg(&mut t, &mut out, 5, false, 40015, 501, ACK, switched);
        t.finish(&mut out);
        // Dated and located where it was captured (frame 4), not where the 101 was.
        let ws: Vec<(&[u8], u64, u64)> = out
            .iter()
            .filter_map(|e| match e {
                FlowEvent::Http { request, .. } if request.method == "WS" => Some((
                    request.body.as_slice(),
                    request.meta.first_frame,
                    request.meta.last_frame,
                )),
                _ => None,
            })
            .collect();
        assert_eq!(ws, [(&br#"{"imei":"490154203237518"}"#[..], 4, 4)]);
    }

    #[test]
    fn websocket_messages_held_over_several_segments_keep_each_segments_frame() {
        // Before the 101 (frame 6): the head and half a message (frame 4), the rest of
        // it and a second message (frame 5). Each message runs from the frame of its
        // first byte to that of its last.
        let mut t = FlowTable::new(FlowLimits::default());
        let mut out = Vec::new();
        handshake(&mut t, &mut out, 40016);
        let head = b"GET /chat HTTP/1.1\r\nHost: ws.example\r\nConnection: Upgrade\r\n\
Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n";
        let first = ws_frame(1, br#"{"imei":"490154203237518"}"#);
        let second = ws_frame(1, br#"{"event":"ping"}"#);
        let (a, b) = first.split_at(10);
        let seg4 = [&head[..], a].concat();
        let seg5 = [b, &second[..]].concat();
        let switched = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\n\r\n";
        seg(&mut t, &mut out, 4, true, 40016, 101, ACK, &seg4);
        let next = 101 + seg4.len() as u32;
        seg(&mut t, &mut out, 5, true, 40016, next, ACK, &seg5);
        seg(&mut t, &mut out, 6, false, 40016, 501, ACK, switched);
        t.finish(&mut out);
        let ws: Vec<(u64, u64, Timestamp)> = out
            .iter()
            .filter_map(|e| match e {
                FlowEvent::Http { request, .. } if request.method == "WS" => Some((
                    request.meta.first_frame,
                    request.meta.last_frame,
                    request.meta.ts,
                )),
                _ => None,
            })
            .collect();
        let at = |n: i64| Timestamp::from_micros(1_000_000_000 + n * 1_000);
        assert_eq!(ws, [(4, 5, at(4)), (5, 5, at(5))]);
    }

    #[test]
    fn a_full_table_closes_its_least_recently_active_flows() {
        let limits = FlowLimits {
            max_flows: 4,
            ..FlowLimits::default()
        };
        let mut t = FlowTable::new(limits);
        let mut out = Vec::new();
        for (n, port) in (50_000u16..50_010).enumerate() {
            seg(&mut t, &mut out, n as u64 + 1, true, port, 1, SYN, b"");
            assert!(t.open_flows() <= 4);
        }
        assert_eq!(t.stats().evicted_table_full, 6);
        // Each closed connection is reported once, oldest first.
        let ports: Vec<u16> = out
            .iter()
            .map(|e| match e {
                FlowEvent::Metadata { conn, .. } => conn.client.port,
                _ => 0,
            })
            .collect();
        assert_eq!(ports, (50_000..50_006).collect::<Vec<_>>());
    }

    #[test]
    fn mid_stream_pickup_takes_the_high_port_as_client() {
        let mut t = FlowTable::new(FlowLimits::default());
        let mut out = Vec::new();
        // First packet seen is the server's response: no SYN anywhere.
        seg(&mut t, &mut out, 1, false, 40006, 900, ACK, RESP);
        seg(&mut t, &mut out, 2, true, 40006, 300, ACK, REQ);
        t.finish(&mut out);
        let FlowEvent::Http { conn, .. } = &out[0] else {
            panic!("{:?}", kinds(&out));
        };
        assert_eq!((conn.client.ip, conn.client.port), (PHONE, 40006));
    }

    /// Feeds one UDP datagram from `src` to `dst` (address, port) at `n` ms, frame `n`.
    fn udp_packet(
        t: &mut FlowTable,
        out: &mut Vec<FlowEvent>,
        n: u64,
        (src, src_port): (IpAddr, u16),
        (dst, dst_port): (IpAddr, u16),
        p: &[u8],
    ) {
        let packet = Packet {
            src_mac: None,
            dst_mac: None,
            vlan: None,
            src,
            dst,
            transport: Transport::Udp {
                src_port,
                dst_port,
                payload: p,
            },
            reassembled_from: None,
            app_uid: None,
        };
        let ts = Timestamp::from_micros(1_000_000_000 + n as i64 * 1_000);
        t.packet(ts, n, &packet, &NoDevices, out);
    }

    /// Feeds one UDP datagram (from the phone when `up`, port 443) at `n` ms, frame `n`.
    fn dgram(t: &mut FlowTable, out: &mut Vec<FlowEvent>, n: u64, up: bool, port: u16, p: &[u8]) {
        let (phone, server) = ((PHONE, port), (SERVER, 443));
        let (from, to) = if up { (phone, server) } else { (server, phone) };
        udp_packet(t, out, n, from, to, p);
    }

    /// A datagram from the phone (port 50 200) to `dst`, port 9999, at `n` ms.
    fn dgram_to(t: &mut FlowTable, out: &mut Vec<FlowEvent>, n: u64, dst: Ipv4Addr, p: &[u8]) {
        udp_packet(t, out, n, (PHONE, 50_200), (IpAddr::V4(dst), 9999), p);
    }

    /// Method, target, index, anomaly kinds and protocol of each HTTP event in `out`.
    fn requests_of(out: &[FlowEvent]) -> Vec<(String, String, u64, Vec<String>)> {
        out.iter()
            .filter_map(|e| match e {
                FlowEvent::Http {
                    request,
                    index,
                    anomalies,
                    conn,
                    response,
                } => {
                    assert!(response.is_none());
                    assert_eq!(conn.protocol, Some(AppProtocol::Httpu));
                    let kinds = anomalies.iter().map(|a| a.kind.clone()).collect();
                    Some((
                        request.method.clone(),
                        request.target.clone(),
                        *index,
                        kinds,
                    ))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn httpu_datagrams_are_requests_each() {
        let search = b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n\
            MAN: \"ssdp:discover\"\r\nMX: 1\r\nST: ssdp:all\r\n\r\n";
        let ssdp = Ipv4Addr::new(239, 255, 255, 250);
        let mut t = FlowTable::new(FlowLimits::default());
        let mut out = Vec::new();
        // To the multicast group: each search a request, repeated ones too.
        dgram_to(&mut t, &mut out, 1, ssdp, search);
        let mut padded = search.to_vec();
        padded.push(0);
        dgram_to(&mut t, &mut out, 3_000, ssdp, &padded);
        // A head without its blank line, and one with a body of its length.
        dgram_to(
            &mut t,
            &mut out,
            6_000,
            ssdp,
            b"NOTIFY * HTTP/1.1\r\nNT: upnp:rootdevice",
        );
        dgram_to(
            &mut t,
            &mut out,
            7_000,
            ssdp,
            b"NOTIFY /evt HTTP/1.1\r\nContent-Length: 9\r\n\r\nimei=4901",
        );
        // Unicast: a server's answer is not the device's; a datagram that is not HTTP
        // is searched as a protocol no parser reads.
        dgram(
            &mut t,
            &mut out,
            8_000,
            true,
            50_400,
            b"GET /desc.xml HTTP/1.1\r\n\r\n",
        );
        dgram(
            &mut t,
            &mut out,
            8_001,
            false,
            50_400,
            b"HTTP/1.1 200 OK\r\n\r\n",
        );
        dgram(&mut t, &mut out, 8_002, true, 50_400, b"\x00\x01 oaid=3");
        t.finish(&mut out);
        let requests = requests_of(&out);
        assert_eq!(
            requests,
            [
                ("M-SEARCH".into(), "*".into(), 0, vec![]),
                ("M-SEARCH".into(), "*".into(), 1, vec![]),
                (
                    "NOTIFY".into(),
                    "*".into(),
                    2,
                    vec!["httpu-unterminated-head".to_string()]
                ),
                ("NOTIFY".into(), "/evt".into(), 3, vec![]),
                ("GET".into(), "/desc.xml".into(), 0, vec![]),
            ]
        );
        let bodies: Vec<&[u8]> = out
            .iter()
            .filter_map(|e| match e {
                FlowEvent::Http { request, .. } => Some(&request.body[..]),
                _ => None,
            })
            .collect();
        assert_eq!(bodies[3], b"imei=4901");
        let stamps: Vec<(u64, u64)> = out
            .iter()
            .filter_map(|e| match e {
                FlowEvent::Http { request, .. } => {
                    Some((request.meta.first_frame, request.meta.last_frame))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            stamps,
            [
                (1, 1),
                (3_000, 3_000),
                (6_000, 6_000),
                (7_000, 7_000),
                (8_000, 8_000)
            ]
        );
        // No metadata event for a flow whose requests were read; the unicast flow's
        // datagram that is not HTTP is its part.
        let parts: Vec<(u64, Vec<u8>)> = parts_of(&out).into_iter().map(|p| (p.0, p.2)).collect();
        assert_eq!(parts, [(1, b"\x00\x01 oaid=3".to_vec())]);
    }

    #[test]
    fn a_request_line_heading_no_readable_request_is_not_httpu() {
        let mut limits = FlowLimits::default();
        limits.http.max_headers = 2;
        let mut t = FlowTable::new(limits);
        let mut out = Vec::new();
        // Its request line passes the sniff; its head has more fields than allowed.
        let bad = b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        dgram(&mut t, &mut out, 1, true, 50_500, bad);
        t.finish(&mut out);
        assert!(requests_of(&out).is_empty());
        let (payload, _) = payload_of(&out);
        assert_eq!(payload, bad);
    }

    /// A DNS message with one question for `name` (a query, or its response).
    fn dns_bytes(name: &str, response: bool) -> Vec<u8> {
        let flags: u16 = if response { 0x8180 } else { 0x0100 };
        let mut m = vec![0x12, 0x34];
        m.extend_from_slice(&flags.to_be_bytes());
        m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        for label in name.split('.') {
            m.push(label.len() as u8);
            m.extend_from_slice(label.as_bytes());
        }
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        m
    }

    /// A datagram from the phone's port 50 600 to the resolver's port 53 (or back).
    fn dns_dgram(t: &mut FlowTable, out: &mut Vec<FlowEvent>, n: u64, up: bool, p: &[u8]) {
        let (phone, resolver) = ((PHONE, 50_600), (SERVER, 53));
        let (from, to) = if up {
            (phone, resolver)
        } else {
            (resolver, phone)
        };
        udp_packet(t, out, n, from, to, p);
    }

    #[test]
    fn dns_queries_are_handed_out_when_asked_for() {
        let name = "9774d56d682e549c.t.example.net";
        for asked in [false, true] {
            let mut t = FlowTable::new(FlowLimits::default());
            t.set_dns_queries(asked);
            let mut out = Vec::new();
            dns_dgram(&mut t, &mut out, 1, true, &dns_bytes(name, false));
            dns_dgram(&mut t, &mut out, 2, false, &dns_bytes(name, true));
            dns_dgram(&mut t, &mut out, 3, true, b"\x12\x34 not DNS");
            t.finish(&mut out);
            let queries: Vec<(&ConnInfo, &Vec<String>)> = out
                .iter()
                .filter_map(|e| match e {
                    FlowEvent::DnsQuery { conn, names, .. } => Some((conn, names)),
                    _ => None,
                })
                .collect();
            // Both messages still go to the address map; the query's names only
            // when asked for, the response's never.
            let mut want = vec!["dns".to_string(), "dns".to_string()];
            if asked {
                want.insert(0, format!("dns query {name}"));
            }
            assert_eq!(kinds(&out), want);
            if !asked {
                assert!(queries.is_empty());
                continue;
            }
            assert_eq!(queries.len(), 1);
            let (conn, names) = queries[0];
            assert_eq!(names, &[name.to_string()]);
            assert_eq!((conn.client.ip, conn.client.port), (PHONE, 50_600));
            assert_eq!((conn.server.ip, conn.server.port), (SERVER, 53));
            assert_eq!((conn.first_frame, conn.last_frame), (1, 1));
            assert_eq!(conn.protocol, Some(AppProtocol::Dns));
        }
    }

    #[test]
    fn dns_queries_over_tcp_are_handed_out_when_asked_for() {
        let (a, b) = ("9774d56d682e549c.t.example.net", "x.example.org");
        // Two queries in one segment, then one split across two.
        let mut first = Vec::new();
        for m in [dns_bytes(a, false), dns_bytes(b, false)] {
            first.extend_from_slice(&(m.len() as u16).to_be_bytes());
            first.extend_from_slice(&m);
        }
        let third = dns_bytes(a, false);
        let mut split = (third.len() as u16).to_be_bytes().to_vec();
        split.extend_from_slice(&third);
        let (split_a, split_b) = split.split_at(10);
        let answer = dns_bytes(a, true);
        let mut down = (answer.len() as u16).to_be_bytes().to_vec();
        down.extend_from_slice(&answer);
        for asked in [false, true] {
            let mut t = FlowTable::new(FlowLimits::default());
            t.set_dns_queries(asked);
            let mut out = Vec::new();
            let ports = (41_000, 53);
            seg_on(&mut t, &mut out, 1, true, ports, 100, SYN, b"");
            seg_on(&mut t, &mut out, 2, false, ports, 500, SYN | ACK, b"");
            let mut seq = 101;
            for (n, bytes) in [(3, &first[..]), (4, split_a), (6, split_b)] {
                seg_on(&mut t, &mut out, n, true, ports, seq, ACK, bytes);
                seq += bytes.len() as u32;
            }
            seg_on(&mut t, &mut out, 7, false, ports, 501, ACK, &down);
            t.finish(&mut out);
            let queries: Vec<(Vec<String>, DnsQueryAt)> = out
                .iter()
                .filter_map(|e| match e {
                    FlowEvent::DnsQuery { names, query, .. } => Some((names.clone(), *query)),
                    _ => None,
                })
                .collect();
            // The answer still goes to the address map; no metadata event (DNS is
            // name resolution).
            let mut want = vec!["dns".to_string()];
            if asked {
                let q = |name: &str| format!("dns query {name}");
                want = vec![q(a), q(b), q(a), "dns".to_string()];
            }
            assert_eq!(kinds(&out), want);
            // Counted among the table's DNS messages, handed out or not: the three
            // queries and the answer.
            assert_eq!((t.stats().dns_messages, t.stats().dns_errors), (4, 0));
            if !asked {
                continue;
            }
            let at = |ms: i64| Timestamp::from_micros(1_000_000_000 + ms * 1_000);
            assert_eq!(
                queries.iter().map(|(_, q)| *q).collect::<Vec<_>>(),
                [
                    DnsQueryAt {
                        ts: at(3),
                        frames: (3, 3),
                        first_name: 0
                    },
                    DnsQueryAt {
                        ts: at(3),
                        frames: (3, 3),
                        first_name: 1
                    },
                    // Begun in frame 4, ended in frame 6.
                    DnsQueryAt {
                        ts: at(4),
                        frames: (4, 6),
                        first_name: 2
                    },
                ]
            );
        }
    }

    #[test]
    fn an_answer_over_tcp_seen_from_the_server_only_is_read_however_it_arrives() {
        let answer = dns_bytes("x.example.org", true);
        let mut down = (answer.len() as u16).to_be_bytes().to_vec();
        down.extend_from_slice(&answer);
        // As Wireshark's dns-ooo.pcap: the capture starts at the server's SYN-ACK,
        // and the answer's first byte arrives after the rest of it; or the answer
        // comes a few bytes at a time.
        let reordered = [(502, &down[1..]), (501, &down[..1])];
        let pieces = [(501, &down[..1]), (502, &down[1..6]), (507, &down[6..])];
        for (port, segments) in [(53, &reordered[..]), (53, &pieces), (8053, &reordered)] {
            let mut t = FlowTable::new(FlowLimits::default());
            t.set_dns_queries(true);
            let mut out = Vec::new();
            let ports = (41_002, port);
            seg_on(&mut t, &mut out, 1, false, ports, 500, SYN | ACK, b"");
            for (n, &(seq, bytes)) in (2..).zip(segments) {
                seg_on(&mut t, &mut out, n, false, ports, seq, ACK, bytes);
            }
            t.finish(&mut out);
            if port == 53 {
                // For the address map; no exchange (DNS is name resolution).
                assert_eq!(kinds(&out), ["dns"]);
                assert_eq!(t.stats().dns_messages, 1);
            } else {
                // Without the port hint such bytes are no protocol's.
                assert_eq!(kinds(&out), ["metadata -"]);
                assert_eq!(t.stats().dns_messages, 0);
            }
        }
    }

    #[test]
    fn a_gap_in_the_answers_over_tcp_leaves_the_queries_read() {
        let framed = |m: Vec<u8>| {
            let mut f = (m.len() as u16).to_be_bytes().to_vec();
            f.extend_from_slice(&m);
            f
        };
        let (a, b) = ("x.example.org", "9774d56d682e549c.t.example.net");
        let (qa, qb) = (framed(dns_bytes(a, false)), framed(dns_bytes(b, false)));
        let answer = framed(dns_bytes(a, true));
        // One out-of-order piece held at most: a second gives the hole up at once.
        let mut limits = FlowLimits::default();
        limits.tcp.max_segments = 1;
        let mut t = FlowTable::new(limits);
        t.set_dns_queries(true);
        let mut out = Vec::new();
        let ports = (41_001, 53);
        seg_on(&mut t, &mut out, 1, true, ports, 100, SYN, b"");
        seg_on(&mut t, &mut out, 2, false, ports, 500, SYN | ACK, b"");
        seg_on(&mut t, &mut out, 3, true, ports, 101, ACK, &qa);
        // The first answer's segment is lost; two arrive past the hole.
        let past = 501 + answer.len() as u32;
        seg_on(&mut t, &mut out, 4, false, ports, past, ACK, &answer);
        let later = past + answer.len() as u32;
        seg_on(&mut t, &mut out, 5, false, ports, later, ACK, &answer);
        assert_eq!(t.stats().dns_messages, 0);
        let next = 101 + qa.len() as u32;
        seg_on(&mut t, &mut out, 6, true, ports, next, ACK, &qb);
        t.finish(&mut out);
        let names: Vec<String> = kinds(&out)
            .into_iter()
            .filter(|k| k.starts_with("dns query"))
            .collect();
        assert_eq!(names, [format!("dns query {a}"), format!("dns query {b}")]);
    }

    #[test]
    fn a_dns_message_over_tcp_the_budget_cannot_hold_is_passed_over_and_said() {
        let framed = |m: &[u8]| {
            let mut f = (m.len() as u16).to_be_bytes().to_vec();
            f.extend_from_slice(m);
            f
        };
        let query = framed(&dns_bytes("x.example.org", false));
        // An answer of 3 000 bytes arriving in two segments, in a 1 KiB budget; then a
        // small one, still read.
        let mut big = dns_bytes("x.example.org", true);
        big.resize(3_000, 0);
        let big = framed(&big);
        let small = framed(&dns_bytes("x.example.org", true));
        let limits = FlowLimits {
            max_message_total: 1024,
            ..FlowLimits::default()
        };
        let mut t = FlowTable::new(limits);
        let mut out = Vec::new();
        let ports = (41_002, 53);
        seg_on(&mut t, &mut out, 1, true, ports, 100, SYN, b"");
        seg_on(&mut t, &mut out, 2, false, ports, 500, SYN | ACK, b"");
        seg_on(&mut t, &mut out, 3, true, ports, 101, ACK, &query);
        let mut seq = 501;
        for (n, bytes) in [(4, &big[..1_500]), (5, &big[1_500..]), (6, &small[..])] {
            seg_on(&mut t, &mut out, n, false, ports, seq, ACK, bytes);
            seq += bytes.len() as u32;
        }
        t.finish(&mut out);
        // The small answer (and the query) read; the big one said, not read.
        assert_eq!(kinds(&out), ["dns"]);
        assert_eq!((t.stats().dns_messages, t.stats().anomalies), (2, 1));
    }

    #[test]
    fn mdns_responses_a_host_sends_are_handed_out_when_asked_for() {
        let announcement = dns_bytes("Pixel-7._share._tcp.local", true);
        for asked in [false, true] {
            let mut t = FlowTable::new(FlowLimits::default());
            t.set_dns_queries(asked);
            let mut out = Vec::new();
            // From port 5353 to the group: an announcement.
            let group = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 251));
            udp_packet(
                &mut t,
                &mut out,
                1,
                (PHONE, 5353),
                (group, 5353),
                &announcement,
            );
            // A unicast DNS response (from port 53) is no announcement.
            dns_dgram(
                &mut t,
                &mut out,
                2,
                false,
                &dns_bytes("t.example.net", true),
            );
            t.finish(&mut out);
            let sent: Vec<(&ConnInfo, &Vec<u8>)> = out
                .iter()
                .filter_map(|e| match e {
                    FlowEvent::MdnsAnnouncement { conn, payload } => Some((conn, payload)),
                    _ => None,
                })
                .collect();
            if !asked {
                assert!(sent.is_empty());
                continue;
            }
            assert_eq!(sent.len(), 1);
            let (conn, payload) = sent[0];
            assert_eq!(payload, &announcement);
            assert_eq!((conn.client.ip, conn.server.ip), (PHONE, group));
            assert_eq!((conn.first_frame, conn.last_frame), (1, 1));
        }
    }

    #[test]
    fn mdns_of_the_systems_own_services_is_not_handed_out() {
        let group = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 251));
        let mut t = FlowTable::new(FlowLimits::default());
        t.set_dns_queries(true);
        let mut out = Vec::new();
        let mut send = |t: &mut FlowTable, n: u64, message: &[u8]| {
            udp_packet(t, &mut out, n, (PHONE, 5353), (group, 5353), message);
        };
        // Android's wireless debugging announced, its instance named by the serial;
        // then an app's own service.
        let adb = "adb-r58m123abc-vwgjpq._adb-tls-connect._tcp.local";
        send(&mut t, 1, &dns_bytes(adb, true));
        send(&mut t, 2, &dns_bytes("pixel-7._share._tcp.local", true));
        // A query for the system's own service alone, then one that also asks for
        // an app's: only the app's name is handed out.
        send(&mut t, 3, &dns_bytes(adb, false));
        let mut both = dns_bytes(adb, false);
        both[5] = 2;
        both.extend_from_slice(&dns_bytes("_spotify-connect._tcp.local", false)[12..]);
        send(&mut t, 4, &both);
        t.finish(&mut out);
        let handed: Vec<String> = kinds(&out).into_iter().filter(|k| k != "dns").collect();
        assert_eq!(
            handed,
            [
                "mdns announcement of 43 bytes",
                "dns query _spotify-connect._tcp.local"
            ]
        );
        // Every message still counted; three of them held the system's names.
        assert_eq!((t.stats().dns_messages, t.stats().mdns_system), (4, 3));
    }

    #[test]
    fn a_dhcp_client_flow_is_one_metadata_exchange_without_payload() {
        // A DHCPREQUEST whose host name option holds the Android id, broadcast
        // before the phone has an address; then a renewal to the same port.
        let mut request = vec![0u8; 240];
        request[0] = 1;
        request[236..240].copy_from_slice(&[99, 130, 83, 99]);
        request.extend_from_slice(&[12, 24]);
        request.extend_from_slice(b"android-9774d56d682e549c");
        request.push(255);
        let unspecified = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let broadcast = IpAddr::V4(Ipv4Addr::BROADCAST);
        let mut t = FlowTable::new(FlowLimits::default());
        let mut out = Vec::new();
        for n in [1, 2] {
            udp_packet(
                &mut t,
                &mut out,
                n,
                (unspecified, 68),
                (broadcast, 67),
                &request,
            );
        }
        // The same bytes from another port are a protocol no parser reads.
        udp_packet(&mut t, &mut out, 3, (PHONE, 40_068), (SERVER, 67), &request);
        t.finish(&mut out);
        assert_eq!(kinds(&out), ["metadata -", "metadata -"]);
        assert_eq!(out[0].conn_protocol(), Some(AppProtocol::Dhcp));
        assert_eq!(out[1].conn_protocol(), None);
        let payloads: Vec<usize> = out
            .iter()
            .map(|e| match e {
                FlowEvent::Metadata { payload, .. } => payload.len(),
                _ => usize::MAX,
            })
            .collect();
        assert_eq!(payloads, [0, request.len()]);
    }

    #[test]
    fn a_wireguard_flow_is_one_metadata_exchange_without_payload() {
        let mut t = FlowTable::new(FlowLimits::default());
        let mut out = Vec::new();
        let mut initiation = vec![0x5a; 148];
        initiation[..4].copy_from_slice(&[1, 0, 0, 0]);
        dgram(&mut t, &mut out, 1, true, 50_300, &initiation);
        let mut data = vec![0x5a; 96];
        data[..4].copy_from_slice(&[4, 0, 0, 0]);
        for n in [2_000, 4_000, 30_000] {
            dgram(&mut t, &mut out, n, true, 50_300, &data);
        }
        t.finish(&mut out);
        assert_eq!(kinds(&out), ["metadata -"]);
        assert_eq!(out[0].conn_protocol(), Some(AppProtocol::WireGuard));
        assert!(payload_of(&out).0.is_empty());
    }

    #[test]
    fn a_gquic_flow_is_named_by_its_chlo_and_its_later_datagrams_are_not_parts() {
        let mut t = FlowTable::new(FlowLimits::default());
        let mut out = Vec::new();
        // A Q043 CHLO: public header, hash, a stream frame on stream 1, padding.
        let name = b"googleads.g.doubleclick.net";
        let mut chlo = b"CHLO\x01\x00\x00\x00SNI\x00".to_vec();
        chlo.extend((name.len() as u32).to_le_bytes());
        chlo.extend(name);
        let mut p = vec![0x09, 1, 2, 3, 4, 5, 6, 7, 8];
        p.extend(b"Q043\x01");
        p.extend([0x5a; 12]);
        p.extend([0xa0, 0x01]);
        p.extend((chlo.len() as u16).to_be_bytes());
        p.extend(chlo);
        p.resize(1350, 0);
        dgram(&mut t, &mut out, 1, true, 50_400, &p);
        for n in [2_000, 4_000] {
            dgram(&mut t, &mut out, n, true, 50_400, &[0x0c; 700]);
        }
        t.finish(&mut out);
        assert_eq!(kinds(&out), ["metadata -"]);
        let FlowEvent::Metadata { conn, payload, .. } = &out[0] else {
            panic!("{out:?}");
        };
        assert_eq!(conn.protocol, Some(AppProtocol::GQuic));
        let hello = conn.gquic.as_deref().unwrap();
        assert_eq!(hello.version, "Q043");
        assert_eq!(hello.sni.as_deref(), Some("googleads.g.doubleclick.net"));
        assert!(
            payload.is_empty(),
            "its handshake is not a payload to search"
        );
    }

    #[test]
    fn a_webrtc_flow_that_starts_with_stun_is_one_metadata_exchange() {
        let mut t = FlowTable::new(FlowLimits::default());
        let mut out = Vec::new();
        // ICE's Binding request, then DTLS and SRTP on the same ports for 20 s.
        let mut binding = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
        binding.extend([0x5a; 12]);
        dgram(&mut t, &mut out, 1, true, 50_500, &binding);
        let mut srtp = vec![0x80, 0x6f];
        srtp.resize(160, 0x3c);
        for n in (1..=20).map(|s| s * 1_000) {
            dgram(&mut t, &mut out, n, true, 50_500, &srtp);
        }
        t.finish(&mut out);
        assert_eq!(kinds(&out), ["metadata -"]);
        assert_eq!(out[0].conn_protocol(), Some(AppProtocol::Stun));
        assert!(payload_of(&out).0.is_empty());
    }

    #[test]
    fn unicast_is_told_by_address_and_by_mac() {
        let end = |ip: &str, mac: Option<[u8; 6]>| Endpoint {
            ip: ip.parse().unwrap(),
            port: 1,
            mac,
        };
        assert!(is_unicast(&end("203.0.113.9", None)));
        assert!(is_unicast(&end("2001:db8::1", Some([2, 0, 0, 0, 0, 1]))));
        assert!(!is_unicast(&end("255.255.255.255", None)));
        assert!(!is_unicast(&end("239.255.255.250", None)));
        assert!(!is_unicast(&end("ff02::1:2", None)));
        // A subnet's broadcast address: only its MAC says so.
        assert!(!is_unicast(&end("192.168.2.255", Some([0xff; 6]))));
        assert!(!is_unicast(&end(
            "10.0.0.7",
            Some([0x01, 0, 0x5e, 0, 0, 1])
        )));
    }

    /// Two client Initial datagrams carrying a ClientHello for `sni` (split between them).
    fn quic_initials(sni: &str) -> (Vec<u8>, Vec<u8>) {
        use crate::net::quic::{tests as q, QUIC_V1};
        let hello = q::client_hello(sni, &["h3"], 1500);
        let (a, b) = hello.split_at(1000);
        let dcid = [0x11; 8];
        (
            q::protect_initial(QUIC_V1, &dcid, &[], 0, 1, &q::crypto_frame(0, a), 1162),
            q::protect_initial(QUIC_V1, &dcid, &[], 1, 1, &q::crypto_frame(1000, b), 1162),
        )
    }

    /// A QUIC client Initial whose ClientHello is an outer one (random 0x01…, server
    /// name `public.example`) sealing an inner one (random 0x02…, `tracker.example`)
    /// for `tls_decrypt::test_seal::config()` with the shared secret 0x05….
    fn quic_ech_initial() -> Vec<u8> {
        use crate::net::quic::{tests as q, QUIC_V1};
        use crate::net::tls::test_hellos::{hello_body, sni};
        let mut encoded = hello_body(2, &[], &[(0, sni("tracker.example")), (0xfe0d, vec![1])]);
        encoded.extend_from_slice(&[0; 9]);
        let (body, _) = tls_decrypt::test_seal::sealed(&encoded, &[5; 32], 0);
        let len = body.len() as u32;
        let hello = [&[1][..], &len.to_be_bytes()[1..], &body].concat();
        q::protect_initial(
            QUIC_V1,
            &[0x11; 8],
            &[],
            0,
            1,
            &q::crypto_frame(0, &hello),
            1162,
        )
    }

    /// The QUIC flow's TLS facts and anomalies after its client Initial, read with
    /// `keylog`: from its metadata event at the end.
    fn quic_ech_outcome(keylog: &str) -> (TlsSeen, Vec<Anomaly>) {
        let mut t = FlowTable::new(FlowLimits::default());
        t.add_keylog(keylog.as_bytes());
        let mut out = Vec::new();
        dgram(&mut t, &mut out, 1, true, 50_002, &quic_ech_initial());
        t.finish(&mut out);
        let [FlowEvent::Metadata {
            conn, anomalies, ..
        }] = &out[..]
        else {
            panic!("{:?}", kinds(&out))
        };
        (*conn.tls.clone().expect("TLS facts"), anomalies.clone())
    }

    #[test]
    fn a_quic_ech_offer_opened_with_the_key_log_decrypts_under_the_inner_random() {
        let hex = |b: u8, n: usize| format!("{b:02x}").repeat(n);
        let config: String = tls_decrypt::test_seal::config()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let ech_lines = format!(
            "ECH_SECRET {outer} {}\nECH_CONFIG {outer} {config}\n",
            hex(5, 32),
            outer = hex(1, 32),
        );
        let traffic = format!(
            "CLIENT_TRAFFIC_SECRET_0 {inner} {}\nSERVER_TRAFFIC_SECRET_0 {inner} {}\n",
            hex(6, 32),
            hex(7, 32),
            inner = hex(2, 32),
        );
        let (tls, anomalies) = quic_ech_outcome(&(ech_lines.clone() + &traffic));
        assert!(anomalies.is_empty(), "{anomalies:?}");
        assert_eq!(tls.ech, Some(EchOutcome::InnerRead));
        assert_eq!(
            (tls.sni(), tls.outer_sni()),
            (Some("tracker.example"), Some("public.example"))
        );
        // A session started (not "no key"): nothing came to decrypt before the end.
        assert_ne!(
            tls.not_decrypted(),
            Some(&NotDecrypted::NoKey),
            "{:?}",
            tls.status
        );

        // Without the ECH lines the inner random is not known: no key, public name.
        let (tls, _) = quic_ech_outcome(&traffic);
        assert_eq!(tls.ech, Some(EchOutcome::Offered));
        assert_eq!(tls.sni(), Some("public.example"));
        assert_eq!(tls.not_decrypted(), Some(&NotDecrypted::NoKey));

        // A wrong ECH_SECRET: an anomaly, and no key either.
        let wrong = ech_lines.replace(&hex(5, 32), &hex(8, 32));
        let (tls, anomalies) = quic_ech_outcome(&(wrong + &traffic));
        assert_eq!(tls.not_decrypted(), Some(&NotDecrypted::NoKey));
        assert_eq!(anomalies.len(), 1, "{anomalies:?}");
        assert_eq!(anomalies[0].kind, "tls-ech-failed");
    }

    /// Without `ECH_SECRET`, a QUIC ECH offer's secrets are found by trial on the
    /// server's Handshake packet, past a key log entry that does not open it; the
    /// datagrams held meanwhile are read, and its 1-RTT packets decrypt.
    #[test]
    fn a_quic_ech_offer_finds_its_secrets_by_trial_on_the_server_handshake_packet() {
        use crate::net::quic::{PacketType, QUIC_V1};
        use crate::net::quic_conn::PacketSealer;
        let hex = |b: u8, n: usize| format!("{b:02x}").repeat(n);
        let keylog = format!(
            "SERVER_HANDSHAKE_TRAFFIC_SECRET {decoy} {}\n\
             SERVER_HANDSHAKE_TRAFFIC_SECRET {inner} {}\n\
             CLIENT_TRAFFIC_SECRET_0 {inner} {}\n\
             SERVER_TRAFFIC_SECRET_0 {inner} {}\n",
            hex(9, 32),
            hex(3, 32),
            hex(6, 32),
            hex(7, 32),
            decoy = hex(0xd0, 32),
            inner = hex(2, 32),
        );
        let sealer = |tag: u8| PacketSealer::new(0x1301, QUIC_V1, &[tag; 32]).unwrap();
        let handshake = sealer(3)
            .long(QUIC_V1, PacketType::Handshake, &[], &[0x5e; 6], 0, 1, &[1])
            .unwrap();
        let one_rtt = sealer(7).short(&[], 0, 1, false, &[1]).unwrap();

        let mut t = FlowTable::new(FlowLimits::default());
        t.add_keylog(keylog.as_bytes());
        let mut out = Vec::new();
        dgram(&mut t, &mut out, 1, true, 50_003, &quic_ech_initial());
        assert!(out.is_empty(), "waits for the server: {:?}", kinds(&out));
        dgram(&mut t, &mut out, 2, false, 50_003, &[0x40; 40]);
        dgram(&mut t, &mut out, 3, false, 50_003, &handshake);
        dgram(&mut t, &mut out, 4, false, 50_003, &one_rtt);
        t.finish(&mut out);
        let [FlowEvent::Metadata {
            conn, anomalies, ..
        }] = &out[..]
        else {
            panic!("{:?}", kinds(&out))
        };
        let tls = conn.tls.as_ref().unwrap();
        assert_eq!(tls.ech, Some(EchOutcome::KeysMatched));
        assert!(tls.decrypted(), "{:?} {anomalies:?}", tls.status);
        assert_eq!(
            tls.sni(),
            Some("public.example"),
            "the inner hello stays sealed"
        );

        // No entry opens it: the flow is reported without a key when the server's
        // Handshake packet comes, not at the end.
        let mut t = FlowTable::new(FlowLimits::default());
        t.add_keylog(keylog.replace(&hex(3, 32), &hex(4, 32)).as_bytes());
        let mut out = Vec::new();
        dgram(&mut t, &mut out, 1, true, 50_004, &quic_ech_initial());
        dgram(&mut t, &mut out, 2, false, 50_004, &handshake);
        let [FlowEvent::Metadata { conn, .. }] = &out[..] else {
            panic!("{:?}", kinds(&out))
        };
        let tls = conn.tls.as_ref().unwrap();
        assert_eq!(tls.not_decrypted(), Some(&NotDecrypted::NoKey));
        assert_eq!(tls.ech, Some(EchOutcome::Offered));
    }

    #[test]
    fn quic_ech_trials_under_way_at_once_are_bounded() {
        let mut t = FlowTable::new(FlowLimits::default());
        let line = format!(
            "SERVER_HANDSHAKE_TRAFFIC_SECRET {} {}\n",
            "aa".repeat(32),
            "bb".repeat(32)
        );
        t.add_keylog(line.as_bytes());
        let initial = quic_ech_initial();
        let mut out = Vec::new();
        let max = crate::net::quic_trial::MAX_TRIALS_AT_ONCE;
        for i in 0..max {
            dgram(
                &mut t,
                &mut out,
                i as u64,
                true,
                10_000 + i as u16,
                &initial,
            );
        }
        assert!(out.is_empty(), "{} waiting", t.quic_trials);
        assert_eq!(t.quic_trials, max);
        dgram(&mut t, &mut out, 0, true, 9_999, &initial);
        let [FlowEvent::Metadata { anomalies, .. }] = &out[..] else {
            panic!("{:?}", kinds(&out))
        };
        assert_eq!(anomalies[0].kind, "quic-trial-limit");
        // Each ends when its flow does.
        t.finish(&mut out);
        assert_eq!(out.len(), max + 1);
        assert_eq!(t.quic_trials, 0);
    }

    #[test]
    fn quic_flow_is_named_by_its_client_hello() {
        let (d1, d2) = quic_initials("app-measurement.com");
        let mut t = FlowTable::new(FlowLimits::default());
        let mut out = Vec::new();
        dgram(&mut t, &mut out, 1, true, 50_000, &d1);
        assert!(out.is_empty(), "waits for the rest of the ClientHello");
        // Server datagrams do not go to the reader.
        dgram(&mut t, &mut out, 2, false, 50_000, &[0x40; 50]);
        assert!(out.is_empty());
        dgram(&mut t, &mut out, 3, true, 50_000, &d2);
        assert_eq!(kinds(&out), ["metadata app-measurement.com"]);
        let FlowEvent::Metadata {
            conn, anomalies, ..
        } = &out[0]
        else {
            unreachable!()
        };
        assert_eq!(conn.protocol, Some(AppProtocol::Quic));
        assert_eq!(conn.proto, Proto::Udp);
        assert_eq!((conn.first_frame, conn.last_frame), (1, 3));
        assert!(anomalies.is_empty(), "{anomalies:?}");
        // Later datagrams say nothing more.
        dgram(&mut t, &mut out, 4, true, 50_000, &[0x40; 50]);
        t.finish(&mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(t.quic_readers, 0);
    }

    #[test]
    fn quic_flow_without_its_whole_hello_is_reported_at_close() {
        let (d1, _) = quic_initials("x.example");
        let mut t = FlowTable::new(FlowLimits::default());
        let mut out = Vec::new();
        dgram(&mut t, &mut out, 1, true, 50_001, &d1);
        // Not QUIC at all: reported at once, as before.
        dgram(
            &mut t,
            &mut out,
            2,
            true,
            50_002,
            b"\x00\x01 some game protocol",
        );
        assert_eq!(kinds(&out), ["metadata -"]);
        assert_eq!(out[0].conn_protocol(), None);
        t.finish(&mut out);
        assert_eq!(kinds(&out), ["metadata -", "metadata -"]);
        let FlowEvent::Metadata {
            conn, anomalies, ..
        } = &out[1]
        else {
            unreachable!()
        };
        assert_eq!(conn.protocol, Some(AppProtocol::Quic));
        assert_eq!(anomalies[0].kind, "quic-no-client-hello");
        assert_eq!(t.quic_readers, 0);
    }

    #[test]
    fn quic_readers_are_bounded() {
        let (d1, _) = quic_initials("x.example");
        let limits = FlowLimits {
            max_quic_readers: 2,
            ..FlowLimits::default()
        };
        let mut t = FlowTable::new(limits);
        let mut out = Vec::new();
        for port in 50_010..50_013 {
            dgram(&mut t, &mut out, 1, true, port, &d1);
        }
        assert_eq!(t.quic_readers, 2);
        let FlowEvent::Metadata {
            conn, anomalies, ..
        } = &out[0]
        else {
            unreachable!()
        };
        assert_eq!(conn.client.port, 50_012);
        assert_eq!(anomalies[0].kind, "quic-reader-limit");
        t.finish(&mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(t.quic_readers, 0);
    }

    impl FlowEvent {
        fn conn_protocol(&self) -> Option<AppProtocol> {
            match self {
                FlowEvent::Http { conn, .. }
                | FlowEvent::Metadata { conn, .. }
                | FlowEvent::Part { conn, .. }
                | FlowEvent::DnsQuery { conn, .. }
                | FlowEvent::MdnsAnnouncement { conn, .. } => conn.protocol,
                FlowEvent::Dns { .. } => None,
            }
        }
    }
}
