//! `consentry proxy`: the intercepting HTTP(S) proxy source (DESIGN.md §2).
//!
//! A phone (or any client) uses it as its explicit HTTP proxy. Plain HTTP requests
//! are forwarded; `CONNECT` tunnels are intercepted with a leaf certificate minted
//! per host from the consentry CA ([`ca`]), so HTTP/1.1 and HTTP/2 inside TLS are
//! seen in clear. Every request/response pair becomes one [`Exchange`] (source
//! `proxy`), sent as an [`Event`] to the consumer (the CLI), which analyses it with
//! the same `rules::Analyzer` every other source uses and writes the results.
//!
//! - WebSocket messages from the client are exchanges too (method `WS`). Messages
//!   from the server are only forwarded: they carry what the server sends the app,
//!   not the device's data leaving it, which is what the rules judge.
//! - Bodies stream through unchanged; the analysis gets a copy of at most
//!   [`Settings::body_cap`] bytes per request body ([`DEFAULT_BODY_CAP`]); beyond it the
//!   exchange carries a `body-truncated` anomaly, and the rest of the body is searched
//!   as it streams past for the case's known values ([`crate::pii::stream`]), decoded
//!   first when the request has a `Content-Encoding` ([`crate::pii::decoded_tail`]): a
//!   hit there becomes a finding located `body-beyond-cap:OFFSET` (or
//!   `body-beyond-cap:gzip:OFFSET`, an offset into the decoded body). Response bodies are
//!   counted and digested only: they are what the app receives, not a transmission
//!   of the device's data, so they are never searched for identifiers.
//! - Evidence per exchange: the request and response heads as received (rebuilt from
//!   hyper's parsed messages, see [`head`] for exactly how faithfully) with their
//!   SHA-256, in `evidence.request_head` / `evidence.response_head`; sizes and SHA-256
//!   of both whole bodies in `digests`.
//! - An exchange is emitted exactly once, when the last of its request body, response
//!   body and handler lets go of it (complete, failed or abandoned by the client).
//! - `http://consentry.invalid/` is served by the proxy itself ([`page`]): the CA
//!   download, install steps, and `/consent?device=&decision=&purposes=` which puts a
//!   manual consent event into the live timeline (same clock as the traffic).
//! - Devices: by `Proxy-Authorization` user name (case `proxy_user`), else by client
//!   address (case `addresses`), else `--device`, else `unknown`.
//! - Pinned apps: a client that abandons the TLS handshake after seeing our
//!   certificate gets one metadata-only exchange for that host, which is then tunnelled
//!   untouched (as are `--ignore-host` matches).
//! - Connections are ours ([`serve`], on hyper, our upstream [`pool`], tokio-rustls and
//!   tungstenite): what one client connection has shown (device, authentication, the
//!   host of its handshake) is kept while it, or the tunnel it became, is open, then
//!   forgotten. Every wait for a client has a deadline: [`Settings::header_timeout`]
//!   until its protocol is known and for each request head, [`Settings::body_timeout`]
//!   for a body (or a response head) that stops making progress.
//! - Security: on a non-loopback address every client must authenticate (the CLI
//!   refuses to start otherwise); `Proxy-Authorization` is never forwarded upstream.
//! - Hand-off to the consumer ([`events`]): queueing an event never blocks, so a
//!   runtime thread is never parked while the consumer is busy (a full queue used to
//!   block the tokio worker inside `send`, stalling every connection on it: the p99
//!   tail of issue 4's benchmark). Back-pressure is applied where it costs nothing:
//!   while [`EVENT_QUEUE`] events, or exchanges with [`EVENT_QUEUE_BYTES`] of
//!   bodies, wait for the consumer, new requests wait (asynchronously) before they
//!   are read further. The queue holds at most `EVENT_QUEUE` events and about
//!   `EVENT_QUEUE_BYTES` of bodies, plus the exchanges already under way when it
//!   filled, plus pinned-host records (at most [`MAX_PINNED`]) and control-API
//!   consent events.

pub mod body;
pub mod ca;
mod coalesce;
pub mod control;
pub mod dns_ech;
pub mod dns_relay;
mod handler;
pub mod head;
pub mod page;
mod pool;
mod random;
pub mod reply_socket;
pub mod serve;
mod unparsed_tunnel;
pub mod upstream;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::case::{Case, DeviceResolver};
use crate::consent::timeline::ConsentEvent;
use crate::exchange::Exchange;
use crate::net::tls_fingerprint::{Fingerprints, Transport};
use crate::timestamp::Timestamp;

/// A client whose intercepted handshake has not ended, with its ClientHello's
/// fingerprints and server name.
type PendingHandshake = (SocketAddr, Option<Fingerprints>, Option<String>);

/// Bytes of each request body copied for the analysis (the client and server always
/// get the whole body).
pub const DEFAULT_BODY_CAP: usize = 1 << 20;
/// Open client connections remembered (authentication, device, pending handshake)
/// before the oldest half are forgotten. A connection's state goes anyway when it
/// closes (see `handler::ConnScope`): this bounds a flood of simultaneous ones.
pub const MAX_CONNECTIONS: usize = 65_536;
/// Hosts remembered as pinned (tunnelled after a rejected certificate), at most.
pub const MAX_PINNED: usize = 10_000;
/// Events waiting for the consumer beyond which new requests wait for it (see
/// [`events`]).
pub const EVENT_QUEUE: usize = 4_096;
/// Bytes of bodies in the exchanges waiting for the consumer beyond which new
/// requests wait for it too. An exchange holds each body up to the body cap (8 MiB
/// by default), so the count alone would let the queue hold tens of GiB of uploads
/// while the consumer lags.
pub const EVENT_QUEUE_BYTES: usize = 64 << 20;
/// Requests (target, header fields and body) of at least this many bytes are prepared
/// for the analysis on the runtime thread that finished them ([`Settings::preparer`]);
/// smaller ones by the consumer, in the batch it takes. Preparing runs much code over
/// the detector's tables, which a runtime thread's next request (TLS, HTTP) evicts
/// from its caches while the consumer, going from one exchange to the next, keeps
/// them warm: with the caches cold a small request took 5.1 µs instead of 0.7, one
/// with 1 KiB of JSON 17.6 instead of 6.1, 4 KiB 37 instead of 20, 8 KiB 45 instead
/// of 38 (`benches/HISTORY.md`, 6 December). From about here on the decoding and
/// matching themselves dominate, and the runtime threads share them where the one
/// consumer would queue them.
pub const PREPARE_INLINE_FROM: usize = 8 * 1024;
/// Default of [`Settings::header_timeout`] (as nginx's `client_header_timeout` and
/// hyper's own).
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Default of [`Settings::body_timeout`] (as nginx's `client_body_timeout` and
/// `proxy_read_timeout`).
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(60);
/// The host name the proxy answers itself.
pub const MAGIC_HOST: &str = "consentry.invalid";

/// What the proxy tells its consumer.
#[derive(Debug)]
pub enum Event {
    /// A finished exchange, to analyse and store.
    Exchange(Box<Finished>),
    /// A consent decision marked through the magic URL or the control API.
    Consent(ConsentEvent),
    /// Something the operator should read (upstream failure, pinned host), already
    /// free of identifier values.
    Notice(String),
}

/// A finished exchange and, when it was prepared before it was queued (see
/// [`Settings::preparer`]), the stateless half of its analysis, done on the runtime
/// thread that finished it (in parallel; the consumer then only judges it, in event
/// order).
#[derive(Debug)]
pub struct Finished {
    pub x: Exchange,
    pub prepared: Option<crate::rules::Prepared>,
}

/// The stateless half of the consumer's analysis ([`crate::rules::Preparer`]), run on
/// the proxy's threads.
#[derive(Clone)]
pub struct PrepareHook(pub crate::rules::Preparer);

impl std::fmt::Debug for PrepareHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrepareHook")
    }
}

/// What the proxy's event queue holds and who waits for room in it.
#[derive(Debug, Default)]
struct Backlog {
    /// Events sent and not yet taken by the consumer.
    queued: AtomicUsize,
    /// Bytes of bodies in the exchanges among them ([`event_bytes`]).
    queued_bytes: AtomicUsize,
    /// Requests waiting for `queued` to fall under [`EVENT_QUEUE`] (and
    /// `queued_bytes` under [`EVENT_QUEUE_BYTES`]).
    room: tokio::sync::Notify,
    /// The consumer is gone: nobody waits for room any more.
    closed: AtomicBool,
}

/// The proxy's end of the event queue: sending never blocks.
#[derive(Debug)]
pub struct EventSender {
    tx: Sender<Event>,
    backlog: Arc<Backlog>,
}

/// The consumer's end of the event queue.
#[derive(Debug)]
pub struct EventReceiver {
    rx: Receiver<Event>,
    backlog: Arc<Backlog>,
}

/// The queue from the proxy to its consumer (see the module documentation: sending
/// never blocks; [`EventSender::room`] is where requests wait for a lagging consumer).
pub fn events() -> (EventSender, EventReceiver) {
    let (tx, rx) = std::sync::mpsc::channel();
    let backlog = Arc::new(Backlog::default());
    (
        EventSender {
            tx,
            backlog: backlog.clone(),
        },
        EventReceiver { rx, backlog },
    )
}

impl EventSender {
    /// Queues `e` at once. A consumer that is gone drops it: the run is ending.
    pub fn send(&self, e: Event) {
        let bytes = event_bytes(&e);
        self.backlog.queued.fetch_add(1, Ordering::Relaxed);
        self.backlog
            .queued_bytes
            .fetch_add(bytes, Ordering::Relaxed);
        if self.tx.send(e).is_err() {
            self.backlog.queued.fetch_sub(1, Ordering::Relaxed);
            self.backlog
                .queued_bytes
                .fetch_sub(bytes, Ordering::Relaxed);
        }
    }

    /// Waits, without blocking the thread, until fewer than [`EVENT_QUEUE`] events
    /// wait for the consumer (at once when they are fewer, the usual case).
    pub async fn room(&self) {
        let b = &self.backlog;
        if b.has_room(Ordering::Relaxed) {
            return;
        }
        loop {
            let notified = b.room.notified();
            tokio::pin!(notified);
            // Registered before the check below: a wake-up in between is not lost.
            notified.as_mut().enable();
            if b.has_room(Ordering::Acquire) {
                break;
            }
            notified.await;
            if b.has_room(Ordering::Acquire) {
                break;
            }
        }
        // The consumer wakes one waiting request (see `EventReceiver::took`); the
        // others are released here, on a runtime thread, where waking them queues
        // them on this thread instead of unparking a runtime thread per request from
        // the consumer's (each unpark a system call and, the woken thread outranking
        // the consumer's nice 10, a preemption of the consumer). Those that find the
        // queue full again wait for the next wake-up.
        b.room.notify_waiters();
    }

    /// Events sent and not yet taken by the consumer.
    pub fn queued(&self) -> usize {
        self.backlog.queued.load(Ordering::Relaxed)
    }
}

impl Backlog {
    /// A request may go on: fewer than [`EVENT_QUEUE`] events queued with fewer than
    /// [`EVENT_QUEUE_BYTES`] of bodies, or nobody left to take them.
    fn has_room(&self, order: Ordering) -> bool {
        (self.queued.load(order) < EVENT_QUEUE && self.queued_bytes.load(order) < EVENT_QUEUE_BYTES)
            || self.closed.load(order)
    }
}

impl EventReceiver {
    /// The next event, waiting at most `timeout`; `Disconnected` once every sender
    /// is gone and the queue is empty.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Event, RecvTimeoutError> {
        let e = self.rx.recv_timeout(timeout)?;
        self.took(&e);
        Ok(e)
    }

    /// The next event if one is queued.
    pub fn try_recv(&self) -> Result<Event, TryRecvError> {
        let e = self.rx.try_recv()?;
        self.took(&e);
        Ok(e)
    }

    fn took(&self, e: &Event) {
        let bytes = event_bytes(e);
        let before_bytes = self.backlog.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
        let before = self.backlog.queued.fetch_sub(1, Ordering::AcqRel);
        // Only the consumer takes, one at a time: on its way down from a full queue
        // the count passes EVENT_QUEUE exactly, and the bytes fall under
        // EVENT_QUEUE_BYTES at one take, whatever senders add meanwhile. One waiter
        // is woken (or, with none waiting, the next one to wait goes at once and
        // re-checks); it releases the rest (see `EventSender::room`).
        let bytes_crossed = before_bytes >= EVENT_QUEUE_BYTES
            && before_bytes.saturating_sub(bytes) < EVENT_QUEUE_BYTES;
        if before == EVENT_QUEUE || bytes_crossed {
            self.backlog.room.notify_one();
        }
    }
}

impl Drop for EventReceiver {
    fn drop(&mut self) {
        self.backlog.closed.store(true, Ordering::Release);
        self.backlog.room.notify_waiters();
    }
}

/// How the proxy runs (what to monitor is in the case).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Bytes of each request body given to the analysis.
    pub body_cap: usize,
    /// `USER:PASS` every client must present (required off loopback). Case devices'
    /// `proxy_user` names are accepted with the same password.
    pub proxy_auth: Option<(String, String)>,
    /// Hosts tunnelled without interception (`--ignore-host`).
    pub ignore_hosts: Vec<regex::Regex>,
    /// When any, the only hosts intercepted (`--allow-host`): the others are
    /// tunnelled as ignored ones are.
    pub allow_hosts: Vec<regex::Regex>,
    /// Device of clients no address or user name identifies.
    pub fallback_device: Option<String>,
    /// Accept clients whose address is a case device's (`addresses`) without
    /// credentials (`--allow-case-addresses`: Android's Wi-Fi proxy setting cannot
    /// send any). Weaker than a password: addresses can be spoofed on the LAN.
    pub allow_case_addresses: bool,
    /// The proxy's own listening port: requests aimed at it are answered, not
    /// forwarded (forwarding them would loop).
    pub listen_port: Option<u16>,
    /// The case's detector (the analysis's own, shared), streamed over request body
    /// bytes past `body_cap` so an identifier there is still found
    /// ([`crate::pii::stream`]). `None`: those bytes are only counted and digested.
    pub detector: Option<Arc<crate::pii::Detector>>,
    /// The decoding limits of the analysis the exchanges go to: a body's tail past
    /// `body_cap` is decoded and searched from where the analysis's decoding of the
    /// kept part stops ([`crate::pii::decoded_tail`]).
    pub analysis_limits: crate::decode::Limits,
    /// The consumer's [`crate::rules::Preparer`]: a finished exchange whose request
    /// is at least [`PREPARE_INLINE_FROM`] bytes is prepared before it is queued, on
    /// the thread that finished it, so that the decoding and matching of large
    /// requests run on every runtime thread instead of the one consumer. Smaller ones,
    /// and all of them when `None`, are prepared by the consumer.
    pub preparer: Option<PrepareHook>,
    /// Time a client has to get a connection to its first request (first bytes, TLS
    /// handshake, HTTP/2 preface) and to send each HTTP/1 request head, also while
    /// an idle keep-alive connection waits for the next one. `None`: no limit.
    pub header_timeout: Option<Duration>,
    /// Time a request or response body may go without progress before it is cut,
    /// and a response head may take after the request's last progress. `None`: no
    /// limit.
    pub body_timeout: Option<Duration>,
    /// Keep each response's header fields as a list in the exchange
    /// (`Response::headers`, which exchanges written as JSON lines carry). `false`
    /// when nothing reads them: the case store keeps the response head itself
    /// (`evidence.response_head`) and the rules read no response header, so the list
    /// was a name and a value allocated per field on a runtime thread and freed on
    /// the consumer's (issue 4, keep-alive requests per second).
    pub response_headers: bool,
    /// Transparent mode (`--mode transparent`): a connection the system redirected
    /// to the proxy (iptables `REDIRECT`, nftables `redirect`) is a tunnel to its
    /// original destination, as a `CONNECT` to it would be; one made to the proxy's
    /// own address is served as an explicit proxy's.
    pub transparent: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            body_cap: DEFAULT_BODY_CAP,
            proxy_auth: None,
            ignore_hosts: Vec::new(),
            allow_hosts: Vec::new(),
            fallback_device: None,
            allow_case_addresses: false,
            listen_port: None,
            detector: None,
            analysis_limits: crate::decode::Limits::default(),
            preparer: None,
            header_timeout: Some(DEFAULT_HEADER_TIMEOUT),
            body_timeout: Some(DEFAULT_BODY_TIMEOUT),
            response_headers: true,
            transparent: false,
        }
    }
}

/// Counters shown on the page and the control API.
#[derive(Debug, Default)]
pub struct Counters {
    pub exchanges: AtomicU64,
    pub upstream_errors: AtomicU64,
    pub auth_failures: AtomicU64,
    pub pinned_hosts: AtomicU64,
    pub consent_events: AtomicU64,
    /// Transparent mode: redirected connections of clients not admitted, passed on
    /// untouched and not recorded.
    pub passed_on: AtomicU64,
    /// DNS queries relayed to the upstream resolver (`--dns-listen`).
    pub dns_queries: AtomicU64,
    /// Of those, the ones the upstream did not answer in time (the client got
    /// `SERVFAIL`).
    pub dns_unanswered: AtomicU64,
    /// DNS queries refused: not from a client the proxy admits.
    pub dns_refused: AtomicU64,
    /// DNS datagrams not relayed for what they are: malformed, a response, or not a
    /// standard query (answered `FORMERR` or `NOTIMP` when they carry an id).
    pub dns_malformed: AtomicU64,
    /// DNS queries dropped unanswered: more were waiting for the resolver than may.
    pub dns_dropped: AtomicU64,
    /// ECH configs switched off in the answers passed on ([`dns_ech`]).
    pub dns_ech_disabled: AtomicU64,
    /// Exchanges started and not yet emitted.
    pub in_flight: AtomicU64,
    /// Anomalies of the exchanges the analysis thread has handled, theirs and their
    /// analysis's: that thread's own count (it holds no [`Shared`], whose event
    /// sender must go at shutdown), shared with this.
    pub anomalies: Arc<AtomicU64>,
}

/// What one client connection (one source address and port) has shown so far.
#[derive(Debug, Clone, Default)]
struct Conn {
    device: Option<String>,
    authenticated: bool,
    /// Host of the TLS handshake under way on this connection.
    handshake: Option<String>,
    /// Order of first sight, to forget the oldest.
    seen: u64,
    /// Live handler scopes of this address (see `handler::ConnScope`): the entry is
    /// forgotten when the last one ends, so the table holds open connections only.
    scopes: u32,
}

/// State shared by every request of a proxy run.
pub struct Shared {
    pub settings: Settings,
    devices: DeviceResolver,
    /// `proxy_user` → device id.
    users: HashMap<String, String>,
    device_ids: Vec<String>,
    conns: Mutex<HashMap<SocketAddr, Conn>>,
    conn_seq: AtomicU64,
    pinned: Mutex<HashSet<String>>,
    /// Per host, clients whose intercepted handshake has not ended yet, oldest first.
    pending: Mutex<HashMap<String, VecDeque<PendingHandshake>>>,
    pending_count: AtomicU64,
    events: EventSender,
    /// Run id: exchange ids and evidence locators are unique per run.
    session: String,
    /// SHA-256 state after `proxy\0SESSION\0`, the common prefix of every exchange
    /// id's hash input (see [`Shared::next_id`]).
    id_prefix: sha2::Sha256,
    seq: AtomicU64,
    pub counters: Counters,
    /// Client bytes kept by all open tunnels in a protocol the proxy does not read
    /// ([`unparsed_tunnel`]), for their shared limit.
    unparsed_held: Arc<std::sync::atomic::AtomicUsize>,
    /// Addresses the DNS relay answered, and DNS answers over HTTP passed on (DoH,
    /// HTTP DNS APIs), with the names asked for ([`Shared::connection_name`]).
    dns_names: Mutex<crate::net::dns::DnsMap>,
    ca_pem: String,
    ca_der: Vec<u8>,
}

impl Shared {
    /// State for one run over `case`, sending events to `events`.
    pub fn new(
        case: &Case,
        settings: Settings,
        ca: &ca::Ca,
        events: EventSender,
        session: String,
    ) -> Arc<Shared> {
        let users = case
            .devices
            .iter()
            .filter_map(|d| d.proxy_user.clone().map(|u| (u, d.id.clone())))
            .collect();
        Arc::new(Shared {
            settings,
            devices: DeviceResolver::new(case),
            users,
            device_ids: case.devices.iter().map(|d| d.id.clone()).collect(),
            conns: Mutex::new(HashMap::new()),
            conn_seq: AtomicU64::new(0),
            pinned: Mutex::new(HashSet::new()),
            pending: Mutex::new(HashMap::new()),
            pending_count: AtomicU64::new(0),
            events,
            id_prefix: {
                use sha2::Digest;
                sha2::Sha256::new_with_prefix(format!("proxy\0{session}\0").as_bytes())
            },
            session,
            seq: AtomicU64::new(0),
            counters: Counters::default(),
            unparsed_held: Arc::default(),
            dns_names: Mutex::default(),
            ca_pem: ca.cert_pem().to_string(),
            ca_der: ca.cert_der().to_vec(),
        })
    }

    /// Hands an event to the consumer without waiting (see [`events`]). A consumer
    /// that is gone drops it: the run is ending.
    pub fn emit(&self, e: Event) {
        self.events.send(e);
    }

    /// Hands a finished exchange to the consumer, prepared for its analysis here
    /// when [`Settings::preparer`] says how and its request is large enough
    /// ([`PREPARE_INLINE_FROM`]).
    pub fn emit_exchange(&self, x: Exchange) {
        self.learn_http_answer(&x);
        let prepared = self
            .settings
            .preparer
            .as_ref()
            .filter(|_| request_bytes(&x) >= PREPARE_INLINE_FROM)
            .map(|p| p.0.prepare(&x));
        self.emit(Event::Exchange(Box::new(Finished { x, prepared })));
    }

    /// Waits while the consumer lags [`EVENT_QUEUE`] events behind (see [`events`]).
    pub async fn room(&self) {
        self.events.room().await;
    }

    /// Records a consent decision now, from the magic URL or the control API.
    pub fn mark_consent(&self, e: ConsentEvent) {
        self.counters.consent_events.fetch_add(1, Ordering::Relaxed);
        self.emit(Event::Consent(e));
    }

    /// Client connections whose state is remembered now (the control API's status:
    /// it returns to 0 when no client is connected).
    pub fn tracked_connections(&self) -> usize {
        lock(&self.conns).len()
    }

    /// Intercepted TLS handshakes under way.
    pub fn pending_handshakes(&self) -> usize {
        lock(&self.pending).values().map(VecDeque::len).sum()
    }

    /// Remembers the addresses of a DNS answer passed on to a client at `at`.
    pub fn learn_answers(&self, answer: &crate::net::dns::DnsMessage, at: Timestamp) {
        lock(&self.dns_names).insert_answers(answer, at);
    }

    /// Remembers the addresses of a DNS answer a client got over HTTP: a DoH answer,
    /// or an HTTP DNS API's (`net::http_dns`), whose addresses an SDK then connects
    /// to, named as the relay's answers name them. (The handler keeps such answers'
    /// bodies.)
    fn learn_http_answer(&self, x: &Exchange) {
        let Some(r) = &x.response else {
            return;
        };
        if x.metadata_only || r.body.is_empty() {
            return;
        }
        if let Some(answer) = crate::net::dns::doh_answer(r.status, &r.headers, &r.body) {
            self.learn_answers(&answer, x.at);
        } else if let Some(lookup) = crate::net::http_dns::lookup_request(
            &x.path,
            &x.request_headers,
            &x.request_body,
            r.status,
            &r.headers,
            &r.body,
        ) {
            for answer in &lookup.answers {
                self.learn_answers(answer, x.at);
            }
        }
    }

    /// The name of a connection to `host` made at `at`, as the pcap tap names a
    /// connection it cannot read: `host`, unless it is an address a DNS answer the
    /// proxy passed on gave a client for a name (the relay's, DoH, an HTTP DNS API's),
    /// then the name asked for (as of `at`).
    pub fn connection_name(&self, host: &str, at: Timestamp) -> String {
        let host = handler::norm_host(host);
        let Ok(addr) = host.parse::<std::net::IpAddr>() else {
            return host;
        };
        let names = lock(&self.dns_names);
        match names.lookup(addr, at) {
            Some(name) => name.to_string(),
            None => host,
        }
    }

    /// True when `id` is a device of the case.
    pub fn knows_device(&self, id: &str) -> bool {
        self.device_ids.iter().any(|d| d == id)
    }

    fn with_conn<T>(&self, addr: SocketAddr, f: impl FnOnce(&mut Conn) -> T) -> T {
        let mut conns = lock(&self.conns);
        if conns.len() >= MAX_CONNECTIONS && !conns.contains_key(&addr) {
            // Forget the older half: a flood of connections costs O(n) once per n/2
            // new ones, not per connection.
            let mut seen: Vec<u64> = conns.values().map(|c| c.seen).collect();
            seen.sort_unstable();
            let cut = seen.get(seen.len() / 2).copied().unwrap_or(0);
            conns.retain(|_, c| c.seen >= cut);
        }
        let seq = &self.conn_seq;
        let c = conns.entry(addr).or_insert_with(|| Conn {
            seen: seq.fetch_add(1, Ordering::Relaxed),
            ..Conn::default()
        });
        f(c)
    }

    /// A connection from `addr` starts (its first request reached the handler).
    fn attach(&self, addr: SocketAddr) {
        self.with_conn(addr, |c| c.scopes = c.scopes.saturating_add(1));
    }

    /// A connection from `addr` has ended, tunnel included: its state goes once no
    /// other connection from the same address and port is open. (An entry forgotten
    /// early by the `MAX_CONNECTIONS` bound simply is not there any more.)
    fn detach(&self, addr: SocketAddr) {
        let mut conns = lock(&self.conns);
        if let Some(c) = conns.get_mut(&addr) {
            c.scopes = c.scopes.saturating_sub(1);
            if c.scopes == 0 {
                conns.remove(&addr);
            }
        }
    }

    /// Notes that `client` starts an intercepted handshake for `host`, with the
    /// fingerprints and server name of its ClientHello.
    fn handshake_started(
        &self,
        host: &str,
        client: SocketAddr,
        (hello, sni): (Option<Fingerprints>, Option<String>),
    ) {
        let mut pending = lock(&self.pending);
        // Handshakes whose end was never reported (none, by construction) must not
        // accumulate: past the bound, forget them all.
        if self.pending_count.fetch_add(1, Ordering::Relaxed) as usize >= MAX_CONNECTIONS {
            pending.clear();
            self.pending_count.store(1, Ordering::Relaxed);
        }
        pending
            .entry(host.to_string())
            .or_default()
            .push_back((client, hello, sni));
    }

    /// True when `host:port` is (very likely) this proxy itself: a loopback or
    /// unspecified address, or `localhost`, on the listening port.
    fn is_self(&self, host: &str, port: Option<u16>) -> bool {
        let Some(listen) = self.settings.listen_port else {
            return false;
        };
        if port != Some(listen) {
            return false;
        }
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified())
    }

    fn is_pinned(&self, host: &str) -> bool {
        lock(&self.pinned).contains(host)
    }

    /// True when `host` is not to be intercepted: `--ignore-host` matches it, or
    /// `--allow-host` is given and does not. An address is matched by the name a DNS
    /// answer the proxy passed on gave it too ([`connection_name`](Self::connection_name)):
    /// a connection to an address the phone resolved `bank.example` to is ignored
    /// by `--ignore-host bank`, as it would be by its SNI.
    fn ignored(&self, host: &str) -> bool {
        let s = &self.settings;
        if s.ignore_hosts.is_empty() && s.allow_hosts.is_empty() {
            return false;
        }
        // The host as given, and as named (an address by its DNS name).
        let named = self.connection_name(host, Timestamp::now());
        let names = [host, named.as_str()];
        let matches =
            |list: &[regex::Regex]| names.iter().any(|n| list.iter().any(|r| r.is_match(n)));
        matches(&s.ignore_hosts) || (!s.allow_hosts.is_empty() && !matches(&s.allow_hosts))
    }

    /// Next exchange number and its id (`x-` + 16 hex digits of SHA-256 of run and number).
    fn next_id(&self) -> (u64, String) {
        use sha2::Digest;
        let n = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let mut h = self.id_prefix.clone();
        // `n` in decimal, without a `format!` per exchange.
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut rest = n;
        while at > 0 {
            at -= 1;
            if let Some(d) = digits.get_mut(at) {
                *d = b'0' + (rest % 10) as u8;
            }
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        h.update(digits.get(at..).unwrap_or_default());
        let h = h.finalize();
        // Written into the id itself: no hex string allocated and copied per exchange.
        let mut id = String::with_capacity(18);
        id.push_str("x-");
        crate::source::push_hex(&mut id, h.get(..8).unwrap_or_default());
        (n, id)
    }

    /// The outcome of an intercepted handshake (from [`ca::Minter`]'s watch).
    pub fn handshake_outcome(&self, o: ca::HandshakeOutcome) {
        // Which client it was: handshakes are matched to clients per host in the order
        // they started (exact for one client per host; for several clients of one
        // host at once the attribution of a failure may swap between them).
        let (client, hello, sni) = {
            let mut pending = lock(&self.pending);
            let found = pending.get_mut(&o.host).and_then(|q| q.pop_front());
            if found.is_some() {
                self.pending_count.fetch_sub(1, Ordering::Relaxed);
            }
            if pending.get(&o.host).is_some_and(|q| q.is_empty()) {
                pending.remove(&o.host);
            }
            found.map_or((None, None, None), |(client, hello, sni)| {
                (Some(client), hello, sni)
            })
        };
        if o.completed || o.host == MAGIC_HOST {
            return;
        }
        {
            let mut pinned = lock(&self.pinned);
            if pinned.len() >= MAX_PINNED || !pinned.insert(o.host.clone()) {
                return;
            }
        }
        self.counters.pinned_hosts.fetch_add(1, Ordering::Relaxed);
        let device = client.map(|a| self.device_of(a, None));
        let (n, id) = self.next_id();
        let mut x = Exchange::new(
            id,
            crate::exchange::SourceKind::Proxy,
            crate::timestamp::Timestamp::now(),
        );
        x.evidence.locator = locator(&self.session, n);
        x.client = client.map(crate::net::text::socket_string);
        x.device = device;
        // A handshake to an address without a server name: the name the client
        // asked the DNS relay for, if it did.
        x.host = self.connection_name(&o.host, x.at);
        x.scheme = "https".into();
        x.method = "CONNECT".into();
        x.path = String::new();
        x.metadata_only = true;
        x.tls = Some(crate::exchange::TlsInfo {
            version: None,
            // The name its ClientHello gave (none for an address), as for requests.
            sni,
            decrypted: false,
            decrypt_error: Some("the client refused our certificate (pinned)".into()),
            // The pinned client's TLS stack: often an SDK's own (see "Which TLS stack").
            ja3: hello.map(|f| f.ja3()),
            ja4: hello.map(|f| f.ja4(Transport::Tcp)),
            ..crate::exchange::TlsInfo::default()
        });
        x.anomalies.push(crate::exchange::Anomaly::new(
            "tls-rejected-by-client",
            "the client abandoned the TLS handshake after our certificate (pinning, or CA not installed); the host is tunnelled from now on",
        ));
        self.counters.exchanges.fetch_add(1, Ordering::Relaxed);
        self.emit_exchange(x);
        self.emit(Event::Notice(format!(
            "{}: the client rejected our certificate (pinned app, or the CA is not installed); tunnelling it untouched from now on",
            o.host
        )));
    }

    /// The device of a client: by proxy user name, else address, else what its
    /// connection said before, else `--device`, else `unknown`.
    fn device_of(&self, addr: SocketAddr, user: Option<&str>) -> String {
        if let Some(d) = user.and_then(|u| self.users.get(u)) {
            return d.clone();
        }
        if let Some(d) = self.devices.resolve(addr.ip(), None) {
            return d.to_string();
        }
        if let Some(d) = lock(&self.conns).get(&addr).and_then(|c| c.device.clone()) {
            return d;
        }
        self.settings
            .fallback_device
            .clone()
            .unwrap_or_else(|| "unknown".to_string())
    }
}

/// Pending connections the listening socket queues (as `TcpListener::bind`).
const LISTEN_BACKLOG: u32 = 1024;

/// TCP keepalive of client connections: first probe after this long without traffic.
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
/// TCP keepalive of client connections: time between unanswered probes.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// TCP keepalive of client connections: unanswered probes before the kernel closes
/// the connection (so a vanished client is gone after about 2 minutes).
pub const KEEPALIVE_PROBES: u32 = 6;

/// The proxy's listening socket. Every accepted client connection inherits its
/// options (Linux copies them on accept, so they cost no system call per
/// connection):
/// - TCP_NODELAY: without it a response written in two segments waits for the
///   client's delayed ACK, 40 ms per request on a keep-alive connection (issue 4
///   benchmark, 1 connection);
/// - TCP keepalive ([`KEEPALIVE_IDLE`], [`KEEPALIVE_INTERVAL`], [`KEEPALIVE_PROBES`]):
///   tunnels, WebSockets and HTTP/2 connections have no idle limit of their own, so
///   a phone that leaves the network without closing them would otherwise hold them
///   (and their sockets) forever.
///
/// Must be called inside the tokio runtime.
pub fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket2::SockRef::from(&socket).set_tcp_keepalive(
        &socket2::TcpKeepalive::new()
            .with_time(KEEPALIVE_IDLE)
            .with_interval(KEEPALIVE_INTERVAL)
            .with_retries(KEEPALIVE_PROBES),
    )?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// The rustls crypto provider of every TLS connection the proxy makes or accepts
/// (intercepted clients, upstream servers, WebSocket upstreams): aws-lc-rs, whose
/// X25519 (s2n-bignum, ADX/BMI2) costs about half of ring's, and X25519 is the largest
/// single cost of a new intercepted connection (issue 4; figures in Cargo.toml). The
/// rest of the crate's cryptography stays on ring.
///
/// Policies, for the least CPU per new connection and no change in what a client can
/// negotiate with ring:
/// - key exchange groups X25519, P-256, P-384 (ring's set, in its order); the hybrid
///   post-quantum X25519MLKEM768 aws-lc-rs would add is left out: browsers list it
///   first and it costs the proxy half as much again as X25519 alone, for a tunnel
///   the proxy decrypts anyway. (The client's order picks among them.)
/// - cipher suites with SHA-256 before those with SHA-384 (AES-128-GCM, then
///   ChaCha20-Poly1305, then AES-256-GCM): the handshake's key schedule runs on the
///   suite's hash, and SHA-256 has CPU instructions here, SHA-384 does not. The
///   intercepted side applies this order over the client's ([`ca::Minter`]).
/// - rustls' own random values (server randoms, ticket ids and nonces) come from a
///   per-thread buffer over aws-lc-rs' generator ([`random::Buffered`]): one
///   generator call per 4 KiB instead of seven per handshake.
/// - the TLS 1.3 key schedule (HKDF, the Finished HMACs) is ring's, the rest of each
///   suite (AEAD, transcript hash) aws-lc-rs': ring keeps a pseudorandom key as a
///   precomputed HMAC state, aws-lc-rs sets the HMAC key up again for every one of
///   the ~25 expansions of a handshake. Server side of a resumed handshake, in
///   memory, thread CPU time: 132 → 121 µs (2026-11-29, loaded 2-core machine).
pub fn tls_provider() -> Arc<rustls::crypto::CryptoProvider> {
    use rustls::crypto::aws_lc_rs::{self as aws, kx_group};
    use rustls::CipherSuite as S;
    let mut cipher_suites: Vec<rustls::SupportedCipherSuite> = aws::DEFAULT_CIPHER_SUITES
        .iter()
        .map(|s| match tls13_with_ring_hkdf(s.suite()) {
            Some(ours) if s.tls13().is_some() => rustls::SupportedCipherSuite::Tls13(ours),
            _ => *s,
        })
        .collect();
    // A stable sort: TLS 1.3 suites stay first, the provider's order stays within
    // each group.
    cipher_suites.sort_by_key(|s| {
        let sha384 = matches!(
            s.suite(),
            S::TLS13_AES_256_GCM_SHA384
                | S::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
                | S::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
        );
        (s.tls13().is_none(), sha384)
    });
    // One per process: its buffers are per thread anyway.
    static RANDOM: std::sync::OnceLock<random::Buffered> = std::sync::OnceLock::new();
    let base = aws::default_provider();
    let secure_random = RANDOM.get_or_init(|| random::Buffered::new(base.secure_random));
    Arc::new(rustls::crypto::CryptoProvider {
        cipher_suites,
        kx_groups: vec![kx_group::X25519, kx_group::SECP256R1, kx_group::SECP384R1],
        secure_random,
        ..base
    })
}

/// aws-lc-rs' TLS 1.3 suite `suite` with ring's HKDF (see [`tls_provider`]); `None`
/// for a suite either provider lacks.
fn tls13_with_ring_hkdf(suite: rustls::CipherSuite) -> Option<&'static rustls::Tls13CipherSuite> {
    use rustls::crypto::CipherSuiteCommon;
    use rustls::{SupportedCipherSuite, Tls13CipherSuite};
    // Suites are referenced as `&'static`: built once per process.
    static SUITES: std::sync::OnceLock<Vec<Tls13CipherSuite>> = std::sync::OnceLock::new();
    let suites = SUITES.get_or_init(|| {
        let tls13 = |list: &[SupportedCipherSuite]| -> Vec<&'static Tls13CipherSuite> {
            list.iter()
                .filter_map(|s| match s {
                    SupportedCipherSuite::Tls13(t) => Some(*t),
                    _ => None,
                })
                .collect()
        };
        let ring = tls13(rustls::crypto::ring::DEFAULT_CIPHER_SUITES);
        tls13(rustls::crypto::aws_lc_rs::DEFAULT_CIPHER_SUITES)
            .into_iter()
            .filter_map(|aws| {
                let ring = ring.iter().find(|r| r.common.suite == aws.common.suite)?;
                Some(Tls13CipherSuite {
                    common: CipherSuiteCommon {
                        suite: aws.common.suite,
                        hash_provider: aws.common.hash_provider,
                        confidentiality_limit: aws.common.confidentiality_limit,
                    },
                    hkdf_provider: ring.hkdf_provider,
                    aead_alg: aws.aead_alg,
                    quic: aws.quic,
                })
            })
            .collect()
    });
    suites.iter().find(|s| s.common.suite == suite)
}

/// Removes the hop-by-hop headers of a request about to be forwarded (RFC 9110
/// §7.6.1): `Connection`, the headers it names, `Keep-Alive`, `Proxy-Connection`. The
/// upstream connection is the proxy's own and pooled: a client's `Connection: close`
/// must not close it, or every request of a client that does not keep its connection
/// alive costs a new upstream TCP and TLS handshake (issue 4 benchmark: new intercepted
/// HTTPS connections/s). A WebSocket upgrade is left whole: the core recognises it by
/// these headers (and [`remove_hop_by_hop`] then clears them for the proxy's own
/// handshake). Any other upgrade offer (`Upgrade: h2c`, as `curl --http2` makes for
/// an `http://` URL) goes with the rest: the proxy speaks no other protocol over an
/// upgraded connection, and a server that took the offer would switch under it (the
/// client got a 502); without it the server answers in HTTP/1.1, as RFC 9110 §7.8
/// lets it.
pub(crate) fn strip_hop_by_hop(headers: &mut hyper::HeaderMap) {
    if asks_websocket_upgrade(headers) {
        return;
    }
    remove_hop_by_hop(headers);
}

/// `upgrade` among the `Connection` options and `websocket` among the `Upgrade`
/// protocols, in any of their lines.
pub(crate) fn asks_websocket_upgrade(headers: &hyper::HeaderMap) -> bool {
    connection_options(headers).any(|t| t.eq_ignore_ascii_case(b"upgrade"))
        && headers
            .get_all(hyper::header::UPGRADE)
            .iter()
            .flat_map(|v| v.as_bytes().split(|&b| b == b','))
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"websocket"))
}

/// [`strip_hop_by_hop`] for any request, an upgrade included: for the handshake the
/// proxy makes itself, which sets its own `Connection` and `Upgrade`. Framing headers
/// (`Content-Length`, `Transfer-Encoding`) stay even when named: hyper frames the body
/// by them.
pub(crate) fn remove_hop_by_hop(headers: &mut hyper::HeaderMap) {
    use hyper::header::{self, HeaderName};
    // Bounded by hyper's limits on header count and size.
    let named: Vec<HeaderName> = connection_options(headers)
        .filter_map(|t| HeaderName::from_bytes(t).ok())
        .collect();
    for name in named {
        if name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING {
            headers.remove(name);
        }
    }
    // `Upgrade` offers to this hop only (RFC 9110 §7.8), named in `Connection` or not.
    headers.remove(header::UPGRADE);
    headers.remove(header::CONNECTION);
    headers.remove(&KEEP_ALIVE);
    headers.remove(&PROXY_CONNECTION);
}

/// The options of every `Connection` line (one list, RFC 9110 §5.3), trimmed.
fn connection_options(headers: &hyper::HeaderMap) -> impl Iterator<Item = &[u8]> {
    headers
        .get_all(hyper::header::CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
}

/// Hop-by-hop header names without a constant in `http`, made once: removing by a
/// `&str` parses and classifies the name again on every request.
pub(crate) static PROXY_CONNECTION: hyper::header::HeaderName =
    hyper::header::HeaderName::from_static("proxy-connection");
static KEEP_ALIVE: hyper::header::HeaderName = hyper::header::HeaderName::from_static("keep-alive");

/// An exchange's evidence locator, `proxy SESSION record N`, without `format!`
/// (once per request).
pub(crate) fn locator(session: &str, n: u64) -> String {
    let mut s = String::with_capacity(session.len() + 30);
    s.push_str("proxy ");
    s.push_str(session);
    s.push_str(" record ");
    crate::net::text::push_decimal(&mut s, n);
    s
}

/// Bytes of bodies an event holds, as the queue counts them
/// ([`Exchange::body_bytes`]).
fn event_bytes(e: &Event) -> usize {
    match e {
        Event::Exchange(done) => done.x.body_bytes(),
        Event::Consent(_) | Event::Notice(_) => 0,
    }
}

/// The bytes of `x`'s request that its analysis decodes and searches: the target,
/// the header fields and the body kept (what [`PREPARE_INLINE_FROM`] is compared to).
fn request_bytes(x: &Exchange) -> usize {
    let headers: usize = x
        .request_headers
        .iter()
        .map(|h| h.name.len() + h.value.len())
        .sum();
    x.path.len() + headers + x.request_body.len()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section leaves the maps valid; a panic inside one cannot corrupt them.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A single-threaded runtime with timers and I/O, for the proxy's unit tests.
#[cfg(test)]
pub(crate) fn test_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::HeaderMap;

    #[test]
    fn locator_is_the_format() {
        for (session, n) in [("", 0), ("20261130T120000Z-ab12", 1), ("s", u64::MAX)] {
            assert_eq!(locator(session, n), format!("proxy {session} record {n}"));
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn names(h: &HeaderMap) -> Vec<&str> {
        let mut n: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        n.sort_unstable();
        n
    }

    #[test]
    fn exchange_ids_hash_run_and_number() {
        use sha2::Digest;
        let dir = tempfile::tempdir().unwrap();
        let ca = ca::Ca::load_or_create(dir.path()).unwrap();
        let case = crate::case::parse("[case]\nid = \"t\"\n", "t.toml").unwrap();
        let (tx, _rx) = events();
        let s = Shared::new(&case, Settings::default(), &ca, tx, "RUN".into());
        let expect = |n: u64| {
            let h = sha2::Sha256::digest(format!("proxy\0RUN\0{n}").as_bytes());
            format!("x-{}", crate::store::record::hex(&h[..8]))
        };
        for n in 1..=12 {
            assert_eq!(s.next_id(), (n, expect(n)));
        }
        s.seq.store(u64::MAX - 1, Ordering::Relaxed);
        assert_eq!(s.next_id(), (u64::MAX, expect(u64::MAX)));
    }

    #[test]
    fn large_requests_are_prepared_before_they_are_queued_small_ones_by_the_consumer() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca::Ca::load_or_create(dir.path()).unwrap();
        let case = crate::case::parse(
            "[case]\nid = \"t\"\n[[device]]\nid = \"p\"\n[device.identifiers]\nimei = \"490154203237518\"\n",
            "t.toml",
        )
        .unwrap();
        let analyzer = crate::rules::Analyzer::new(
            std::sync::Arc::new(case.clone()),
            crate::rules::Options::default(),
        );
        let settings = Settings {
            preparer: Some(PrepareHook(analyzer.preparer())),
            ..Settings::default()
        };
        let (tx, rx) = events();
        let s = Shared::new(&case, settings, &ca, tx, "RUN".into());
        let request = |path: String, body: usize| {
            let mut x = Exchange::blank(
                "x",
                crate::exchange::SourceKind::Proxy,
                Timestamp::default(),
            );
            x.host = "ads.example".into();
            x.method = "POST".into();
            x.path = path;
            x.request_headers = vec![crate::exchange::Header::new("user-agent", "t")];
            x.request_body = vec![b'a'; body];
            x
        };
        let prepared = |x: Exchange| {
            s.emit_exchange(x);
            match rx.try_recv() {
                Ok(Event::Exchange(done)) => done.prepared.is_some(),
                other => panic!("expected an exchange, got {other:?}"),
            }
        };
        // Target, header fields and body counted together.
        let path = "/t?imei=490154203237518".to_string();
        let fixed = path.len() + "user-agent".len() + 1;
        assert!(!prepared(request(path.clone(), 0)));
        assert!(!prepared(request(
            path.clone(),
            PREPARE_INLINE_FROM - fixed - 1
        )));
        assert!(prepared(request(path.clone(), PREPARE_INLINE_FROM - fixed)));
        assert!(prepared(request(path, 1 << 20)));
    }

    #[test]
    fn allowed_and_ignored_hosts_decide_interception_together() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca::Ca::load_or_create(dir.path()).unwrap();
        let case = crate::case::parse("[case]\nid = \"t\"\n", "t.toml").unwrap();
        let re = |r: &str| regex::Regex::new(r).unwrap();
        let shared = |ignore: Vec<regex::Regex>, allow: Vec<regex::Regex>| {
            let settings = Settings {
                ignore_hosts: ignore,
                allow_hosts: allow,
                ..Settings::default()
            };
            Shared::new(&case, settings, &ca, events().0, "RUN".into())
        };
        let everything = shared(vec![], vec![]);
        assert!(!everything.ignored("bank.example"));
        let ignoring = shared(vec![re(r"^bank\.")], vec![]);
        assert!(ignoring.ignored("bank.example") && !ignoring.ignored("ads.example"));
        let allowing = shared(
            vec![re(r"^api\.shop\.")],
            vec![re(r"shop\.example$"), re("^ads")],
        );
        assert!(!allowing.ignored("cdn.shop.example"));
        assert!(!allowing.ignored("ads.example"));
        assert!(allowing.ignored("bank.example"));
        // --ignore-host wins over --allow-host.
        assert!(allowing.ignored("api.shop.example"));

        // An address by the name a DNS answer gave it, and by itself.
        let answer = |s: &Shared, name: &str, addr: &str| {
            let msg =
                crate::net::http_dns::lookup(&format!("/d?dn={name}"), 200, &[], addr.as_bytes())
                    .unwrap();
            s.learn_answers(&msg.answers[0], Timestamp::now());
        };
        answer(&ignoring, "bank.example", "192.0.2.1");
        assert!(ignoring.ignored("192.0.2.1"));
        assert!(!ignoring.ignored("192.0.2.2"));
        let by_address = shared(vec![re(r"^192\.0\.2\.")], vec![]);
        answer(&by_address, "ads.example", "192.0.2.3");
        assert!(by_address.ignored("192.0.2.3"));
        answer(&allowing, "cdn.shop.example", "192.0.2.4");
        answer(&allowing, "api.shop.example", "192.0.2.5");
        assert!(!allowing.ignored("192.0.2.4"));
        assert!(allowing.ignored("192.0.2.5"), "ignored by its name");
        assert!(allowing.ignored("192.0.2.6"), "allowed by neither");
    }

    fn notice(n: usize) -> Event {
        Event::Notice(n.to_string())
    }

    /// A request waiting for room in the queue, as a task on `rt`.
    fn waiting_for_room(
        rt: &tokio::runtime::Runtime,
        tx: &Arc<EventSender>,
    ) -> tokio::task::JoinHandle<()> {
        let tx = tx.clone();
        rt.spawn(async move { tx.room().await })
    }

    #[test]
    fn sending_never_blocks_and_room_waits_for_the_consumer() {
        let rt = super::test_runtime();
        let (tx, rx) = events();
        // Past the limit: sending still returns at once (it used to block here).
        for n in 0..EVENT_QUEUE + 10 {
            tx.send(notice(n));
        }
        assert_eq!(tx.queued(), EVENT_QUEUE + 10);
        let tx = Arc::new(tx);
        let waiter = waiting_for_room(&rt, &tx);
        rt.block_on(async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(!waiter.is_finished(), "a full queue makes requests wait");
            // The consumer takes events in order; room comes once fewer than
            // EVENT_QUEUE wait.
            for n in 0..10 {
                match rx.try_recv() {
                    Ok(Event::Notice(t)) => assert_eq!(t, n.to_string()),
                    other => panic!("unexpected {other:?}"),
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(!waiter.is_finished(), "still EVENT_QUEUE waiting");
            assert!(rx.recv_timeout(Duration::from_millis(10)).is_ok());
            tokio::time::timeout(Duration::from_secs(5), waiter)
                .await
                .expect("room once the consumer caught up")
                .unwrap();
        });
        assert_eq!(tx.queued(), EVENT_QUEUE - 1);
    }

    #[test]
    fn bodies_past_the_byte_bound_make_requests_wait_until_they_are_taken() {
        let rt = super::test_runtime();
        let (tx, rx) = events();
        let upload = |bytes: usize| {
            let mut x = Exchange::new(
                "x-1",
                crate::exchange::SourceKind::Proxy,
                crate::timestamp::Timestamp::from_micros(0),
            );
            x.request_body = vec![7; bytes];
            Event::Exchange(Box::new(Finished { x, prepared: None }))
        };
        // Two events, far from EVENT_QUEUE, but their bodies reach the bound.
        tx.send(upload(EVENT_QUEUE_BYTES / 2));
        tx.send(upload(EVENT_QUEUE_BYTES / 2));
        let tx = Arc::new(tx);
        let waiter = waiting_for_room(&rt, &tx);
        rt.block_on(async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(!waiter.is_finished(), "bodies past the bound hold requests");
            assert!(rx.try_recv().is_ok());
            tokio::time::timeout(Duration::from_secs(5), waiter)
                .await
                .expect("room once the bodies fall under the bound")
                .unwrap();
        });
        assert!(rx.try_recv().is_ok());
        assert_eq!(tx.backlog.queued_bytes.load(Ordering::Relaxed), 0);
        // Notices and consent events hold no bodies.
        tx.send(notice(1));
        assert_eq!(tx.backlog.queued_bytes.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn one_event_taken_releases_every_request_waiting_for_room() {
        let rt = super::test_runtime();
        let (tx, rx) = events();
        for n in 0..EVENT_QUEUE {
            tx.send(notice(n));
        }
        let tx = Arc::new(tx);
        let waiters: Vec<_> = (0..20).map(|_| waiting_for_room(&rt, &tx)).collect();
        rt.block_on(async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(waiters.iter().all(|w| !w.is_finished()));
            // The consumer wakes one; it lets the others go.
            assert!(rx.try_recv().is_ok());
            for w in waiters {
                tokio::time::timeout(Duration::from_secs(5), w)
                    .await
                    .expect("every waiter released by one taken event")
                    .unwrap();
            }
        });
        // A queue that fills again holds back the next requests.
        tx.send(notice(0));
        let late = waiting_for_room(&rt, &tx);
        rt.block_on(async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(!late.is_finished(), "full again");
            assert!(rx.try_recv().is_ok());
            tokio::time::timeout(Duration::from_secs(5), late)
                .await
                .expect("released at the next crossing")
                .unwrap();
        });
    }

    #[test]
    fn a_gone_consumer_releases_waiting_requests() {
        let rt = super::test_runtime();
        let (tx, rx) = events();
        for n in 0..EVENT_QUEUE {
            tx.send(notice(n));
        }
        let tx = Arc::new(tx);
        let waiter = waiting_for_room(&rt, &tx);
        rt.block_on(async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(!waiter.is_finished());
            drop(rx);
            tokio::time::timeout(Duration::from_secs(5), waiter)
                .await
                .expect("released when the consumer is gone")
                .unwrap();
        });
        // Sending to a gone consumer drops the event and counts nothing.
        let before = tx.queued();
        tx.send(notice(0));
        assert_eq!(tx.queued(), before);
    }

    #[test]
    fn accepted_connections_inherit_nodelay() {
        let rt = super::test_runtime();
        rt.block_on(async {
            let l = listen("127.0.0.1:0".parse().unwrap()).unwrap();
            let addr = l.local_addr().unwrap();
            let client = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (accepted, _) = l.accept().await.unwrap();
            assert!(accepted.nodelay().unwrap());
            assert!(!client.nodelay().unwrap(), "a socket's default is off");
        });
    }

    #[test]
    fn tls_provider_prefers_sha256_suites_and_classic_groups() {
        use rustls::{CipherSuite as S, NamedGroup};
        let p = tls_provider();
        let suites: Vec<S> = p.cipher_suites.iter().map(|s| s.suite()).collect();
        assert_eq!(
            suites[..3],
            [
                S::TLS13_AES_128_GCM_SHA256,
                S::TLS13_CHACHA20_POLY1305_SHA256,
                S::TLS13_AES_256_GCM_SHA384,
            ]
        );
        // Nothing ring offered is lost: the same suites, reordered.
        let mut ours = suites.clone();
        let mut ring: Vec<S> = rustls::crypto::ring::default_provider()
            .cipher_suites
            .iter()
            .map(|s| s.suite())
            .collect();
        ours.sort_by_key(|s| u16::from(*s));
        ring.sort_by_key(|s| u16::from(*s));
        assert_eq!(ours, ring);
        // Every TLS 1.3 suite runs its key schedule on ring's HKDF.
        let ring_hkdf = |s: S| {
            rustls::crypto::ring::DEFAULT_CIPHER_SUITES
                .iter()
                .find_map(|r| r.tls13().filter(|t| t.common.suite == s))
                .map(|t| t.hkdf_provider as *const dyn rustls::crypto::tls13::Hkdf as *const ())
        };
        for s in p.cipher_suites.iter().filter_map(|s| s.tls13()) {
            let ours = s.hkdf_provider as *const dyn rustls::crypto::tls13::Hkdf as *const ();
            assert_eq!(
                Some(ours),
                ring_hkdf(s.common.suite),
                "{:?}",
                s.common.suite
            );
        }
        // rustls' own random values come through the per-thread buffer.
        assert!(format!("{:?}", p.secure_random).starts_with("Buffered"));
        let groups: Vec<NamedGroup> = p.kx_groups.iter().map(|g| g.name()).collect();
        assert_eq!(
            groups,
            [
                NamedGroup::X25519,
                NamedGroup::secp256r1,
                NamedGroup::secp384r1
            ]
        );
    }

    #[test]
    fn hop_by_hop_headers_are_not_forwarded() {
        let mut h = headers(&[
            ("connection", "close, X-Trace"),
            ("connection", "keep-alive"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("x-trace", "1"),
            ("content-length", "3"),
            ("user-agent", "app"),
        ]);
        strip_hop_by_hop(&mut h);
        assert_eq!(names(&h), ["content-length", "user-agent"]);
    }

    #[test]
    fn framing_headers_survive_being_named() {
        let mut h = headers(&[
            ("connection", "Transfer-Encoding, content-length"),
            ("transfer-encoding", "chunked"),
        ]);
        strip_hop_by_hop(&mut h);
        assert_eq!(names(&h), ["transfer-encoding"]);
    }

    #[test]
    fn websocket_upgrades_are_left_whole() {
        let mut h = headers(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ]);
        let before = h.clone();
        strip_hop_by_hop(&mut h);
        assert_eq!(h, before);
    }

    #[test]
    fn an_upgrade_to_another_protocol_is_not_offered_to_the_server() {
        // curl --http2 on an `http://` URL; and an `Upgrade` not named in `Connection`.
        let mut h = headers(&[
            ("connection", "Upgrade, HTTP2-Settings"),
            ("upgrade", "h2c"),
            ("http2-settings", "AAMAAABkAAQCAAAAAAIAAAAA"),
            ("user-agent", "curl"),
        ]);
        strip_hop_by_hop(&mut h);
        assert_eq!(names(&h), ["user-agent"]);
        let mut h = headers(&[("upgrade", "websocket"), ("user-agent", "app")]);
        strip_hop_by_hop(&mut h);
        assert_eq!(names(&h), ["user-agent"]);
    }

    #[test]
    fn an_upgrade_the_proxy_makes_itself_keeps_no_hop_by_hop_header() {
        let mut h = headers(&[
            ("connection", "keep-alive, X-Hop"),
            ("upgrade", "websocket"),
            ("connection", "Upgrade"),
            ("keep-alive", "timeout=5"),
            ("x-hop", "1"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ]);
        remove_hop_by_hop(&mut h);
        assert_eq!(names(&h), ["sec-websocket-key"]);
    }
}
