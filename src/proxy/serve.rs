//! The proxy's connection core: accepts client connections, speaks HTTP/1.1 and
//! HTTP/2 to them, opens `CONNECT` tunnels (intercepted with our CA, or passed through
//! untouched), forwards requests to the real servers and WebSockets both ways, and
//! asks [`super::handler`] what to do with each request and what to record. It owns
//! every connection and every task it spawns, so it can put a deadline on every wait
//! and drain all of them on shutdown.
//!
//! Pipeline position: the network edge of the `proxy` source. What it hands on are
//! the handler's recordings (one [`crate::exchange::Exchange`] per request, per
//! WebSocket message), queued to the consumer as [`super::Event`]s.
//!
//! Per client connection:
//! 1. The first bytes decide the protocol: SOCKS5 (a first byte 5: its handshake is
//!    answered by [`socks_connect`], and a `CONNECT` there becomes a tunnel as in
//!    step 2; SOCKS4 is refused), the HTTP/2 preface (h2c with prior knowledge) or
//!    else HTTP/1.1. They must come within `header_timeout`.
//! 2. A `CONNECT` is answered `200` and the connection becomes a tunnel (an HTTP/1.1
//!    `CONNECT` whose whole head came first is parsed and answered by the core
//!    itself, without hyper: [`own_connect`]; anything else goes to hyper). A tunnel to
//!    an ignored or pinned host is passed through at once (bytes untouched, whatever
//!    the protocol; a server that speaks first works) and not recorded. Otherwise
//!    its first bytes are sniffed as the pcap tap sniffs a connection
//!    ([`sniff_client`]): a TLS ClientHello is intercepted (read by us, the
//!    handshake completed with a leaf for its SNI, else the `CONNECT` host; a
//!    ClientHello the handler says to leave alone is replayed to the server and the
//!    tunnel passed through, not recorded), HTTP/1 (any method) and HTTP/2 with
//!    prior knowledge are plain HTTP served in the tunnel, anything else is passed
//!    through with the sniffed bytes replayed and recorded as it goes
//!    ([`unparsed_tunnel`]). A client still silent after [`SERVER_FIRST_AFTER`] may
//!    be waiting for its server: the server is connected, and if it speaks first the
//!    tunnel is passed through and recorded the same way.
//! 3. Inside an intercepted TLS tunnel the protocol is the one ALPN chose: `h2` →
//!    HTTP/2 (its preface must arrive in time), anything else → HTTP/1.1; no
//!    sniffing. HTTP/1 request targets there are origin form; they are completed with
//!    the tunnel's scheme and `CONNECT` authority. A `CONNECT` inside a tunnel gets a
//!    `405` with a readable body (nested tunnels are not supported).
//!
//! Deadlines (hostile or broken clients must not hold a task or a socket forever):
//! - `header_timeout` (`--header-timeout`): from accepting a connection (or from the
//!   `200` to a `CONNECT`) to the protocol being known: the first bytes, a TLS
//!   ClientHello and the whole handshake, the HTTP/2 preface. HTTP/1 connections
//!   then use hyper's own header read timer, which also runs while an idle
//!   keep-alive connection waits for its next request; an HTTP/2 connection with
//!   no stream open for it is closed with a GOAWAY (the client opens a new one when
//!   it needs one, as after nginx's `keepalive_timeout`).
//! - `body_timeout` (`--body-timeout`): a request or response body that makes no
//!   progress for it is cut ([`super::body::Stall`]; the exchange gets a `body-error`
//!   anomaly, a stalled request body a `408`), and a response head that does not come
//!   within it after the request's last progress gives a `504`.
//! - upstream TCP connects: [`super::upstream::CONNECT_TIMEOUT`].
//!
//! Not bounded by time, on purpose: established pass-through tunnels and WebSockets
//! (long-lived connections of real apps), and HTTP/2 connections while a stream is
//! open. A client that vanishes without closing (a phone leaving the Wi-Fi) is found
//! by TCP keepalive probes ([`super::listen`]).
//!
//! Shutdown: [`run`] stops accepting when its `stop` future completes, asks every
//! HTTP connection (tunnelled ones included) to finish its requests under way and
//! close, closes pass-through tunnels and WebSockets at once (nothing in them waits to
//! be recorded; a tunnel in a protocol not read records its last burst), and
//! returns once every connection and tunnel it started has ended (the CLI bounds
//! that wait).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::http::uri::{Authority, Scheme};
use hyper::{Method, Request, Response, StatusCode, Uri, Version};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::body::{self, Body, Rewind};
use super::coalesce::{Coalesce, LastResponse, ShutdownWrite};
use super::handler::{self, text_response, ConnScope, Decision, UpstreamFailure};
use super::head;
use super::pool::ConnectTo;
use super::{ca, pool, unparsed_tunnel, upstream, Shared};
use crate::net::sniff::{sniff_client, sniff_server, AppProtocol, Sniff, H2_PREFACE};
use crate::net::socks;

/// Bytes of a TLS ClientHello read, at most, before the connection is dropped (a
/// real one is under 2 kB; rustls bounds a handshake message at 64 KiB).
pub const MAX_CLIENT_HELLO: usize = 80 * 1024;
/// Pause after a failed `accept` (out of file descriptors, …) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// Extra time a response head may take while the request body is still being sent:
/// a client that stalls mid-body is the body timer's (`408`), not the server's (`504`).
const HEAD_GRACE: Duration = Duration::from_secs(1);
/// Period of [`timer_anchor`]: well below the shortest per-request deadline
/// (`header_timeout`, `body_timeout`: seconds to minutes).
const TIMER_ANCHOR: Duration = Duration::from_secs(1);

/// Bytes read at once from a new connection or tunnel to decide its protocol: a whole
/// CONNECT request or TLS ClientHello fits, so it costs one read, not a short one for
/// the decision and another for the rest (issue 4: new connections per second).
const READ_AHEAD: usize = 4096;
/// A tunnel's client silent for this long after its `200` may be waiting for its
/// server to speak first (SMTP, FTP, MySQL …): the server is then connected to see
/// (clients of other protocols speak at once).
const SERVER_FIRST_AFTER: Duration = Duration::from_secs(1);

/// Everything the connections of one proxy run share.
pub struct Core {
    shared: Arc<Shared>,
    minter: ca::Minter,
    /// The upstream HTTP client: our connector, header case kept towards HTTP/1
    /// servers.
    client: Arc<pool::Pool>,
    ws_tls: tokio_tungstenite::Connector,
    /// Opens tunnels passed through and WebSockets' connections.
    upstream: upstream::Upstream,
    http1: hyper::server::conn::http1::Builder,
    http2: hyper::server::conn::http2::Builder<TokioExecutor>,
    /// Connections, tunnels and WebSockets under way.
    open: AtomicUsize,
    /// Woken when `open` falls to 0.
    idle: tokio::sync::Notify,
    /// True once the run is stopping.
    stop: tokio::sync::watch::Sender<bool>,
}

impl Core {
    /// The core of a run: `minter` for intercepted handshakes, `upstream` to reach
    /// the servers. Timeouts come from `shared.settings`.
    pub fn new(shared: Arc<Shared>, minter: ca::Minter, upstream: upstream::Upstream) -> Arc<Core> {
        let client = pool::Pool::new(upstream.connector.clone(), upstream.proxy.clone());
        let mut http1 = hyper::server::conn::http1::Builder::new();
        http1
            // Header names go to the client as the server wrote them.
            .preserve_header_case(true)
            .timer(TokioTimer::new())
            .header_read_timeout(shared.settings.header_timeout);
        let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        http2.timer(TokioTimer::new());
        Arc::new(Core {
            shared,
            minter,
            client,
            ws_tls: tokio_tungstenite::Connector::Rustls(Arc::new(upstream.ws_tls.clone())),
            upstream,
            http1,
            http2,
            open: AtomicUsize::new(0),
            idle: tokio::sync::Notify::new(),
            stop: tokio::sync::watch::channel(false).0,
        })
    }

    /// Connections, tunnels and WebSockets under way.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    fn track(self: &Arc<Self>) -> Tracked {
        self.open.fetch_add(1, Ordering::Relaxed);
        Tracked(self.clone())
    }

    /// True once the run is stopping.
    fn is_stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Completes once the run is stopping.
    fn stopping(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.stop.subscribe();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    }

    fn deadline(&self) -> Option<Instant> {
        self.shared
            .settings
            .header_timeout
            .map(|t| Instant::now() + t)
    }

    /// `fut`, unless `deadline` passes or the run stops first ([`until_stopped`]).
    async fn within<T>(
        &self,
        deadline: Option<Instant>,
        fut: impl Future<Output = T>,
    ) -> Option<T> {
        until_stopped(&self.stop, deadline, fut).await
    }
}

/// `fut`, unless `deadline` passes or `stop` turns true first.
///
/// `fut` is polled first, and `stop` is subscribed to only when `fut` is not ready
/// at once: many steps are (bytes already read ahead, a short write to an empty
/// socket buffer), and then neither the timer nor the stop signal (a receiver of the
/// run's watch channel, shared by every connection on both workers) is touched
/// (issue 4, new intercepted connections per second). A step ready at once is taken
/// even after the stop: the next one that waits sees it.
async fn until_stopped<T>(
    stop: &tokio::sync::watch::Sender<bool>,
    deadline: Option<Instant>,
    fut: impl Future<Output = T>,
) -> Option<T> {
    let timed = async {
        match deadline {
            Some(d) => tokio::time::timeout_at(d, fut).await.ok(),
            None => Some(fut.await),
        }
    };
    let stopped = async {
        let _ = stop.subscribe().wait_for(|s| *s).await;
    };
    tokio::select! {
        biased;
        r = timed => r,
        _ = stopped => None,
    }
}

/// A task of the core: counted in [`Core::open`] while it lives.
struct Tracked(Arc<Core>);

impl std::ops::Deref for Tracked {
    type Target = Arc<Core>;
    fn deref(&self) -> &Arc<Core> {
        &self.0
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// Serves `listener` until `stop` completes, then lets every connection finish (HTTP
/// ones are asked to close after their current requests) and returns when none is
/// left.
pub async fn run(core: Arc<Core>, listener: TcpListener, stop: impl Future<Output = ()>) {
    tokio::pin!(stop);
    let mut anchor = timer_anchor();
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((tcp, addr)) => {
                    let t = core.track();
                    // Boxed: the connection's future is ~15 KB (TLS, hyper and tunnel
                    // state inline), and tokio moves a task's future by value several
                    // times while spawning and completing it (about nine copies per
                    // connection); boxed, the task holds a pointer. Built in its box
                    // (written into fresh uninitialised memory) rather than on the
                    // stack and then copied: `Box::pin(fut)` copied all 15 KB, mostly
                    // unused bytes, into cold memory (15 k instructions, 1.2 % of the
                    // CPU of a new intercepted connection; issue 4). `Box::write`
                    // says the same without `unsafe` but needs Rust 1.87 (MSRV 1.86).
                    let mut task = Box::new_uninit();
                    task.write(connection(t, tcp, addr));
                    // SAFETY: `write` just initialised the box's whole contents.
                    let task = unsafe { task.assume_init() };
                    tokio::spawn(Box::into_pin(task));
                }
                Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
            },
            // Only re-armed: see `timer_anchor`.
            _ = anchor.tick() => {}
            _ = &mut stop => break,
        }
    }
    drop(listener);
    core.stop.send_replace(true);
    loop {
        let idle = core.idle.notified();
        tokio::pin!(idle);
        // Registered before the check: a last connection ending in between wakes it.
        idle.as_mut().enable();
        if core.open.load(Ordering::Acquire) == 0 {
            return;
        }
        idle.await;
    }
}

/// A timer that, ticked by the accept loop, keeps a deadline within [`TIMER_ANCHOR`]
/// in tokio's timer wheel while the proxy accepts connections. Every keep-alive
/// request registers timers (hyper's header read timer, the response head's
/// deadline) that live for microseconds to milliseconds; when a worker parked with no
/// timer left, tokio wakes it for each such registration (a timer due before the
/// parked worker's wake-up: an `eventfd` write, and a wake-up that finds nothing to
/// do), about one per request (issue 4, keep-alive HTTPS: up to 1.0 `write` per
/// request against 0.03 for the no-op hudsucker). With a timer due sooner always
/// registered, a per-request deadline seconds away wakes nobody.
fn timer_anchor() -> tokio::time::Interval {
    let mut t = tokio::time::interval(TIMER_ANCHOR);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    t
}

/// What a request handler knows about the connection it serves.
struct Ctx {
    scope: Arc<ConnScope>,
    /// Scheme and `CONNECT` authority of the tunnel this connection is inside.
    tunnel: Option<(Scheme, Authority)>,
    /// A client connection's HTTP/1 `CONNECT` answered `200`: the tunnel its task runs
    /// once hyper hands the connection over (no task spawned per tunnel). `None` in
    /// tunnels and on HTTP/2, where a `CONNECT` is one stream among others.
    then: Option<std::sync::Mutex<Option<(hyper::upgrade::OnUpgrade, Authority)>>>,
    /// On HTTP/2: the streams open on the connection, for its idle timer.
    streams: Option<Arc<OpenStreams>>,
    /// On HTTP/1 in an intercepted TLS tunnel: told when a response is the
    /// connection's last, so it leaves with the `close_notify` ([`Coalesce`]).
    last: Option<Arc<LastResponse>>,
}

impl Ctx {
    fn take_tunnel(&self) -> Option<(hyper::upgrade::OnUpgrade, Authority)> {
        let slot = self.then.as_ref()?;
        // A panic while holding it leaves an Option: still valid.
        slot.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// One accepted client connection.
async fn connection(t: Tracked, tcp: TcpStream, addr: SocketAddr) {
    if t.shared.settings.transparent {
        if let Some(to) = redirected_to(&tcp) {
            return redirected(t, tcp, addr, to).await;
        }
    }
    let scope = ConnScope::new(t.shared.clone(), addr);
    let deadline = t.deadline();
    let mut io = Rewind::reading_ahead(tcp, READ_AHEAD);
    let decided =
        |p: &[u8]| !p.is_empty() && (p.len() >= H2_PREFACE.len() || !H2_PREFACE.starts_with(p));
    if !matches!(t.within(deadline, io.fill(decided)).await, Some(Ok(true))) {
        return;
    }
    match io.prefix().first() {
        Some(&socks::VERSION) => {
            if let Some(authority) = socks_connect(&t, &mut io, &scope, deadline).await {
                tunnel(t, io, authority, scope).await;
            }
            return;
        }
        Some(&socks::SOCKS4_VERSION) => {
            write_socks(&t, &mut io, deadline, &socks::SOCKS4_REFUSAL).await;
            return;
        }
        _ => {}
    }
    let h2 = io.prefix().starts_with(H2_PREFACE);
    if !h2 {
        match own_connect(&t, &mut io, &scope, deadline).await {
            Connect::Tunnel(authority) => return tunnel(t, io, authority, scope).await,
            Connect::Hyper => {}
            Connect::Gone => return,
        }
    }
    let ctx = Arc::new(Ctx {
        scope: scope.clone(),
        tunnel: None,
        then: (!h2).then(Default::default),
        streams: h2.then(Default::default),
        last: None,
    });
    serve_http(&t, io, h2, ctx.clone()).await;
    if let Some((upgrade, authority)) = ctx.take_tunnel() {
        // Fails when the client went away before the 200 was out.
        if let Ok(up) = upgrade.await {
            let io = Rewind::reading_ahead(TokioIo::new(up), READ_AHEAD);
            tunnel(t, io, authority, scope).await;
        }
    }
}

/// Where a connection redirected to the proxy was going (`SO_ORIGINAL_DST`, set by
/// netfilter's NAT for iptables `REDIRECT` and nftables `redirect`); `None` for a
/// connection made to the proxy's own address, or when the system knows no other
/// destination.
fn redirected_to(tcp: &TcpStream) -> Option<SocketAddr> {
    let socket = socket2::SockRef::from(tcp);
    // An IPv4 connection on a dual-stack socket (`--listen [::]:8080`) has an
    // IPv4-mapped address, and its NAT entry is IPv4's.
    let local = match tcp.local_addr().ok()? {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => SocketAddr::V6(v6),
        },
        v4 => v4,
    };
    let original = match local {
        SocketAddr::V4(_) => socket.original_dst_v4(),
        SocketAddr::V6(_) => socket.original_dst_v6(),
    };
    let original = original.ok()?.as_socket()?;
    (original != local).then_some(original)
}

/// A connection redirected to the proxy on its way to `to` (transparent mode): the
/// tunnel a `CONNECT` to that address would open, for the clients the proxy admits
/// without credentials (loopback when it listens there; the case's device
/// addresses with `--allow-case-addresses`). Other clients cannot authenticate, so
/// their connections are passed on untouched and not recorded, as a gateway routes
/// them.
async fn redirected(t: Tracked, tcp: TcpStream, addr: SocketAddr, to: SocketAddr) {
    let scope = ConnScope::new(t.shared.clone(), addr);
    let Ok(authority) = crate::net::text::socket_string(to).parse::<Authority>() else {
        return;
    };
    let io = Rewind::reading_ahead(tcp, READ_AHEAD);
    if !handler::admits_without_credentials(&scope) {
        // Said once: a tester whose phone is missing from the case sees why nothing
        // is recorded.
        if t.shared.counters.passed_on.fetch_add(1, Ordering::Relaxed) == 0 {
            t.shared.emit(super::Event::Notice(format!(
                "connections redirected from {} are passed on unrecorded: not a case device's address (see GET /status, passed_on, for how many)",
                addr.ip()
            )));
        }
        return pass_through(&t, io, &authority, &[]).await;
    }
    let open = Request::builder()
        .method(Method::CONNECT)
        .uri(authority.clone())
        .body(());
    // Refused only when the destination is the proxy itself: closed, not looped.
    if let Ok(Ok(())) = open.map(|req| handler::connect(&scope, &req)) {
        tunnel(t, io, authority, scope).await;
    }
}

/// What [`own_connect`] did with a connection's first request.
enum Connect {
    /// A `CONNECT` answered `200`: its tunnel starts.
    Tunnel(Authority),
    /// Left to hyper: not a `CONNECT` head the core parses itself, or one refused
    /// (answered, the connection goes on).
    Hyper,
    /// The client went away or did not read the answer in time.
    Gone,
}

/// Answers the connection's first request itself when it is an HTTP/1.1 `CONNECT`
/// whose whole head came with the first read ([`parse_connect`]), the common case of
/// a proxy client: no hyper connection is set up for a request that only opens a
/// tunnel, and the tunnel goes on with the same socket and read-ahead buffer (issue 4,
/// new intercepted connections per second). The handler decides as for any
/// `CONNECT` ([`handler::connect`]); a refusal (`407`, …) is answered here and hyper
/// serves the rest of the connection (a client sends its credentials on it).
async fn own_connect(
    t: &Tracked,
    io: &mut Rewind<TcpStream>,
    scope: &ConnScope,
    deadline: Option<Instant>,
) -> Connect {
    let Some((req, head_len)) = parse_connect(io.prefix()) else {
        return Connect::Hyper;
    };
    io.consume(head_len);
    let (answer, then) = match handler::connect(scope, &req) {
        Ok(()) => match req.into_parts().0.uri.into_parts().authority {
            // parse_connect only returns a target with an authority.
            Some(authority) => (CONNECTED.to_vec(), Connect::Tunnel(authority)),
            None => return Connect::Gone,
        },
        Err(res) => match encode_response(*res).await {
            Some(bytes) => (bytes, Connect::Hyper),
            None => return Connect::Gone,
        },
    };
    match t.within(deadline, io.get_mut().write_all(&answer)).await {
        Some(Ok(())) => then,
        _ => Connect::Gone,
    }
}

/// A SOCKS5 client's handshake ([`socks`]), answered by the core: the target of its
/// `CONNECT` once the handler lets it through as it would an HTTP `CONNECT` (the same
/// credentials, given as SOCKS5's user name and password, the same device), else
/// `None` (refused with SOCKS5's answer, malformed, or the client went away).
async fn socks_connect(
    t: &Tracked,
    io: &mut Rewind<TcpStream>,
    scope: &ConnScope,
    deadline: Option<Instant>,
) -> Option<Authority> {
    let methods = read_socks(t, io, deadline, socks::greeting).await?;
    // Asked only without credentials offered: a refusal counts as a failed login.
    let open = !methods.contains(&socks::USER_PASSWORD) && handler::admits(scope, None);
    let method = socks::choose_method(&methods, open);
    write_socks(t, io, deadline, &socks::method_reply(method)).await?;
    let authorization = match method {
        socks::USER_PASSWORD => {
            let (user, password) = read_socks(t, io, deadline, socks::credentials).await?;
            let authorization = handler::basic_authorization(&user, &password);
            let accepted =
                authorization.is_some() && handler::admits(scope, authorization.as_ref());
            write_socks(t, io, deadline, &socks::credentials_reply(accepted)).await?;
            if !accepted {
                return None;
            }
            authorization
        }
        socks::NO_AUTHENTICATION => None,
        _ => return None,
    };
    let target = match read_socks(t, io, deadline, socks::request).await? {
        socks::Request::Connect(target) => target,
        socks::Request::Refused(code) => {
            write_socks(t, io, deadline, &socks::reply(code)).await;
            return None;
        }
    };
    let Ok(authority) = target.parse::<Authority>() else {
        write_socks(
            t,
            io,
            deadline,
            &socks::reply(socks::ADDRESS_TYPE_NOT_SUPPORTED),
        )
        .await;
        return None;
    };
    let mut req = Request::new(());
    *req.method_mut() = Method::CONNECT;
    *req.uri_mut() = Uri::from(authority.clone());
    if let Some(a) = authorization {
        req.headers_mut().insert(header::PROXY_AUTHORIZATION, a);
    }
    let code = match handler::connect(scope, &req) {
        Ok(()) => socks::SUCCEEDED,
        Err(_) => socks::NOT_ALLOWED,
    };
    write_socks(t, io, deadline, &socks::reply(code)).await?;
    (code == socks::SUCCEEDED).then_some(authority)
}

/// The next SOCKS5 message from the client, within the handshake's deadline.
async fn read_socks<T>(
    t: &Tracked,
    io: &mut Rewind<TcpStream>,
    deadline: Option<Instant>,
    parse: fn(&[u8]) -> socks::Parsed<T>,
) -> Option<T> {
    let complete = |p: &[u8]| !matches!(parse(p), socks::Parsed::Incomplete);
    if !matches!(t.within(deadline, io.fill(complete)).await, Some(Ok(true))) {
        return None;
    }
    match parse(io.prefix()) {
        socks::Parsed::Done(message, len) => {
            io.consume(len);
            Some(message)
        }
        socks::Parsed::Incomplete | socks::Parsed::Invalid(_) => None,
    }
}

async fn write_socks(
    t: &Tracked,
    io: &mut Rewind<TcpStream>,
    deadline: Option<Instant>,
    answer: &[u8],
) -> Option<()> {
    t.within(deadline, io.get_mut().write_all(answer))
        .await?
        .ok()
}

/// The answer to a `CONNECT` the core opens itself.
const CONNECTED: &[u8] = b"HTTP/1.1 200 OK\r\n\r\n";
/// Headers of a `CONNECT` request [`parse_connect`] reads, at most; hyper takes one
/// with more.
const MAX_CONNECT_HEADERS: usize = 32;

/// The `CONNECT` request at the start of `p` and the length of its head, when `p`
/// starts with a whole HTTP/1.1 `CONNECT` head to a `host:port` target, without a
/// body. Anything else (a partial head, HTTP/1.0, a body, a malformed head, too many
/// headers) is `None`: hyper serves it, and answers it as it always did.
fn parse_connect(p: &[u8]) -> Option<(Request<()>, usize)> {
    if !p.starts_with(b"CONNECT ") {
        return None;
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_CONNECT_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(len) = parsed.parse(p).ok()? else {
        return None;
    };
    if parsed.version != Some(1) {
        return None;
    }
    let uri: Uri = parsed.path?.parse().ok()?;
    if uri.scheme().is_some() || uri.authority().is_none() || !uri.path().is_empty() {
        return None;
    }
    let mut req = Request::new(());
    *req.method_mut() = Method::CONNECT;
    *req.uri_mut() = uri;
    let map = req.headers_mut();
    for h in parsed.headers.iter() {
        let name = header::HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        if (name == header::CONTENT_LENGTH && h.value != b"0") || name == header::TRANSFER_ENCODING
        {
            return None;
        }
        map.append(name, HeaderValue::from_bytes(h.value).ok()?);
    }
    Some((req, len))
}

/// `res` as HTTP/1.1 bytes, its body whole (the proxy's own short answers), the head
/// written as evidence heads are ([`head::response_head`]).
async fn encode_response(res: Response<Body>) -> Option<Vec<u8>> {
    let (mut parts, body) = res.into_parts();
    let body = body.collect().await.ok()?.to_bytes();
    parts.version = Version::HTTP_11;
    // Last, so that it follows the handler's own fields.
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    let mut out = head::response_head(&Response::from_parts(parts, ()));
    out.extend_from_slice(&body);
    Some(out)
}

/// Serves HTTP on `io` (HTTP/2 when `h2`, else HTTP/1.1 with upgrades) until the
/// connection ends; on stop, after the requests under way. An HTTP/2 connection with
/// no stream open for `header_timeout` is closed the same way (GOAWAY).
async fn serve_http<I>(t: &Tracked, io: I, h2: bool, ctx: Arc<Ctx>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let core = t.0.clone();
    let streams = ctx.streams.clone();
    let last = ctx.last.clone();
    let svc = hyper::service::service_fn(move |req| {
        let core = core.clone();
        let ctx = ctx.clone();
        async move {
            // Counted open from the request until its response body is done.
            let open = ctx.streams.as_ref().map(|s| s.open());
            if let Some(l) = &ctx.last {
                // hyper keeps such a connection for an upgrade: it may never shut it
                // down (a pipelined request after a refused CONNECT lost its answer).
                if req.method() == Method::CONNECT || req.headers().contains_key(header::UPGRADE) {
                    l.never();
                }
            }
            let last = ctx.last.as_ref().filter(|_| asks_to_close(&req)).cloned();
            let res = proxy(&core, &ctx, req).await;
            // hyper writes it next, then shuts the connection down.
            if let Some(last) = last {
                last.set_last();
            }
            Ok::<_, Infallible>(match open {
                Some(open) => res.map(|body| StreamBody { body, _open: open }.boxed()),
                None => res,
            })
        }
    });
    let io = TokioIo::new(io);
    let stopping = t.stopping();
    // A failed connection (client gone, malformed, timed out) concerns that client
    // only: hyper has answered what can be answered. The two arms are alike on
    // purpose: hyper's connections share no trait for `graceful_shutdown`, and a
    // generic async helper taking it as a closure defeats the `Send` inference of
    // the spawned connection future (higher-ranked lifetime errors).
    if h2 {
        let idle = idle_timer(streams, t.shared.settings.header_timeout);
        let close = async move {
            tokio::select! {
                _ = stopping => {}
                _ = idle => {}
            }
        };
        let conn = t.http2.serve_connection(io, svc);
        tokio::pin!(conn);
        tokio::select! {
            _ = conn.as_mut() => {}
            _ = close => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
        }
    } else {
        let conn = t.http1.serve_connection(io, svc).with_upgrades();
        tokio::pin!(conn);
        // Each poll is reported to the `Coalesce` under TLS: a last response it
        // holds for the close_notify is released when a poll ends without it.
        let polled = std::future::poll_fn(|cx| {
            if let Some(l) = &last {
                l.poll_started();
            }
            let r = conn.as_mut().poll(cx);
            if let (Some(l), true) = (&last, r.is_pending()) {
                l.poll_pending(cx);
            }
            r
        });
        tokio::select! {
            _ = polled => {}
            _ = stopping => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
        }
    }
}

/// The streams open on one HTTP/2 connection: requests until their response body is
/// done (or dropped, when the client resets the stream), `CONNECT` tunnels until they
/// end. While none is, the connection's idle timer runs.
#[derive(Default)]
struct OpenStreams(tokio::sync::watch::Sender<usize>);

impl OpenStreams {
    fn open(self: &Arc<Self>) -> StreamOpen {
        self.0.send_modify(|n| *n += 1);
        StreamOpen(self.clone())
    }

    /// Completes once no stream has been open for `timeout`.
    async fn idle_for(&self, timeout: Duration) {
        let mut rx = self.0.subscribe();
        loop {
            // Errors only once the sender, `self`, is gone: cannot happen here.
            if rx.wait_for(|&n| n == 0).await.is_err() {
                return;
            }
            // Any stream opening or ending restarts the wait.
            if tokio::time::timeout(timeout, rx.changed()).await.is_err() {
                return;
            }
        }
    }
}

/// One stream counted in [`OpenStreams`] while it lives.
struct StreamOpen(Arc<OpenStreams>);

impl Drop for StreamOpen {
    fn drop(&mut self) {
        self.0 .0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Completes when the HTTP/2 connection of `streams` has been idle for `timeout`;
/// never without either (HTTP/1, or no `--header-timeout`).
async fn idle_timer(streams: Option<Arc<OpenStreams>>, timeout: Option<Duration>) {
    match (streams, timeout) {
        (Some(streams), Some(timeout)) => streams.idle_for(timeout).await,
        _ => std::future::pending().await,
    }
}

/// An HTTP/2 response body, holding its stream open until hyper drops it (done,
/// reset, or the connection gone).
struct StreamBody {
    body: Body,
    _open: StreamOpen,
}

impl http_body::Body for StreamBody {
    type Data = bytes::Bytes;
    type Error = body::BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// One request: asks the handler, then forwards it, opens its tunnel or its WebSocket.
async fn proxy(core: &Arc<Core>, ctx: &Ctx, req: Request<Incoming>) -> Response<Body> {
    let req = match &ctx.tunnel {
        Some(_) if req.method() == Method::CONNECT => {
            return text_response(
                StatusCode::METHOD_NOT_ALLOWED,
                "consentry proxy: CONNECT inside a CONNECT tunnel is not supported\n".into(),
            );
        }
        Some((scheme, authority))
            if matches!(req.version(), Version::HTTP_10 | Version::HTTP_11) =>
        {
            match in_tunnel(req, scheme, authority) {
                Ok(r) => r,
                Err(r) => return *r,
            }
        }
        // HTTP/2 names its server in `:authority`; in a tunnel to an address the
        // request still goes there.
        Some((_, authority)) if is_address(authority) => {
            let mut req = req;
            req.extensions_mut().insert(ConnectTo(authority.clone()));
            req
        }
        _ => req,
    };
    let body_timeout = core.shared.settings.body_timeout;
    match handler::request(&ctx.scope, ctx.tunnel.is_some(), req, body_timeout).await {
        Decision::Respond(r) => r,
        Decision::Forward(req, _) if req.method() == Method::CONNECT => connect(core, ctx, req),
        // Boxed: its future is about 10 KB, and unboxed it would size every request's
        // future (hyper moves that into its dispatcher per request; issue 4).
        Decision::Forward(req, rec) if is_websocket(&req) => {
            Box::pin(websocket(core, ctx, req, rec)).await
        }
        Decision::Forward(req, rec) => forward(core, req, rec).await,
    }
}

/// True when hyper closes the connection after answering `req` (HTTP/1.1 with a
/// `close` token in `Connection`, HTTP/1.0 without `keep-alive`), and it is not an
/// upgrade (whose connection goes on under the new protocol).
fn asks_to_close<B>(req: &Request<B>) -> bool {
    let has = |token: &[u8]| {
        req.headers().get_all(header::CONNECTION).iter().any(|v| {
            v.as_bytes()
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
        })
    };
    if has(b"upgrade") {
        return false;
    }
    match req.version() {
        Version::HTTP_11 => has(b"close"),
        Version::HTTP_10 => !has(b"keep-alive"),
        _ => false,
    }
}

/// An HTTP/1 request inside a tunnel with the tunnel's scheme and authority (its
/// target is origin form; an absolute one is overridden: the tunnel decides where it
/// goes).
fn in_tunnel<B>(
    req: Request<B>,
    scheme: &Scheme,
    authority: &Authority,
) -> Result<Request<B>, Box<Response<Body>>> {
    let (mut parts, body) = req.into_parts();
    let mut uri = std::mem::take(&mut parts.uri).into_parts();
    uri.scheme = Some(scheme.clone());
    // In a tunnel to an address, the target is the server's name as the client's
    // `Host` gives it (also the TLS server name upstream, and the `Host` sent on),
    // and the connection goes to the address.
    let named = is_address(authority)
        .then(|| host_name_authority(&parts.headers))
        .flatten();
    if named.is_some() {
        parts.extensions.insert(ConnectTo(authority.clone()));
    }
    uri.authority = Some(named.unwrap_or_else(|| authority.clone()));
    if uri.path_and_query.is_none() {
        uri.path_and_query = Some(hyper::http::uri::PathAndQuery::from_static("/"));
    }
    match Uri::from_parts(uri) {
        Ok(u) => {
            parts.uri = u;
            Ok(Request::from_parts(parts, body))
        }
        Err(_) => Err(Box::new(text_response(
            StatusCode::BAD_REQUEST,
            "consentry proxy: this request target cannot be sent through the tunnel\n".into(),
        ))),
    }
}

/// Whether a tunnel's `authority` is an address (a SOCKS5 client that resolved the
/// name itself), not a host name.
fn is_address(authority: &Authority) -> bool {
    let host = authority.host();
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
        .is_ok()
}

/// The `Host` field as an authority when its host is a DNS name.
fn host_name_authority(headers: &header::HeaderMap) -> Option<Authority> {
    let text = headers.get(header::HOST)?.to_str().ok()?;
    let authority: Authority = text.parse().ok()?;
    let host = authority.host();
    let name = crate::net::socks::is_host_name(host.as_bytes())
        && host.parse::<std::net::IpAddr>().is_err();
    name.then_some(authority)
}

/// Forwards a request upstream and passes the response back (recorded by `rec`).
async fn forward(
    core: &Arc<Core>,
    req: Request<Body>,
    rec: Option<Arc<handler::Recording>>,
) -> Response<Body> {
    let body_timeout = core.shared.settings.body_timeout;
    let (req, client_host) = normalize(req);
    let fut = core.client.request(req, client_host);
    let res = match (body_timeout, &rec) {
        (Some(t), Some(rec)) => {
            tokio::pin!(fut);
            loop {
                let grace = if rec.request_ended() {
                    Duration::ZERO
                } else {
                    HEAD_GRACE
                };
                let deadline = rec.last_progress() + t + grace;
                match tokio::time::timeout_at(deadline, &mut fut).await {
                    Ok(r) => break r,
                    // The request body moved meanwhile: wait on from its progress.
                    Err(_) if rec.last_progress() + t + grace > Instant::now() => continue,
                    Err(_) => {
                        return handler::upstream_failed(
                            &core.shared,
                            Some(rec.clone()),
                            UpstreamFailure::Timeout(t),
                        )
                    }
                }
            }
        }
        _ => fut.await,
    };
    match (res, rec) {
        (Ok(res), Some(rec)) => handler::response(rec, res, body_timeout),
        (Ok(res), None) => res.map(|b| b.map_err(body::BoxError::from).boxed()),
        (Err(e), rec) => handler::upstream_failed(&core.shared, rec, UpstreamFailure::Error(&e)),
    }
}

/// A request as it goes upstream: HTTP/1.1 (the client picks HTTP/2 by ALPN with
/// the server), `Host` from the target (the pool sets it), cookies in one field (as
/// HTTP/1 requires; HTTP/2 clients split them). Also the client's `Host`, which the
/// pool reuses when it is the same text.
fn normalize(mut req: Request<Body>) -> (Request<Body>, Option<HeaderValue>) {
    let host = req.headers_mut().remove(header::HOST);
    if let header::Entry::Occupied(mut cookies) = req.headers_mut().entry(header::COOKIE) {
        if cookies.iter().nth(1).is_some() {
            let mut joined = Vec::new();
            for (i, v) in cookies.iter().enumerate() {
                if i > 0 {
                    joined.extend_from_slice(b"; ");
                }
                joined.extend_from_slice(v.as_bytes());
            }
            if let Ok(v) = HeaderValue::from_bytes(&joined) {
                cookies.insert(v);
            }
        }
    }
    *req.version_mut() = Version::HTTP_11;
    (req, host)
}

/// Answers a `CONNECT` with `200` and runs its tunnel once hyper hands the
/// connection over.
fn connect(core: &Arc<Core>, ctx: &Ctx, mut req: Request<Body>) -> Response<Body> {
    let Some(authority) = req.uri().authority().cloned() else {
        return text_response(
            StatusCode::BAD_REQUEST,
            "consentry proxy: CONNECT needs a host:port target\n".into(),
        );
    };
    let upgrade = hyper::upgrade::on(&mut req);
    if let Some(slot) = &ctx.then {
        // The connection's own task runs it (see `connection`).
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some((upgrade, authority));
        return Response::new(body::empty());
    }
    let t = core.track();
    let scope = ctx.scope.clone();
    // An HTTP/2 connection with a tunnel in one of its streams is not idle.
    let open = ctx.streams.as_ref().map(|s| s.open());
    tokio::spawn(async move {
        let _open = open;
        // Fails when the client goes away before the 200 is out.
        if let Ok(up) = upgrade.await {
            let io = Rewind::reading_ahead(TokioIo::new(up), READ_AHEAD);
            tunnel(t, io, authority, scope).await;
        }
    });
    Response::new(body::empty())
}

/// A `CONNECT` tunnel to `authority` (see the module documentation).
/// `io` reads ahead ([`Rewind::reading_ahead`]) what comes first.
async fn tunnel<I>(t: Tracked, mut io: Rewind<I>, authority: Authority, scope: Arc<ConnScope>)
where
    I: AsyncRead + AsyncWrite + ShutdownWrite + Send + 'static,
{
    let host = handler::norm_host(authority.host());
    if !handler::intercept_connect(&t.shared, &host) {
        pass_through(&t, io, &authority, &[]).await;
        return;
    }
    let deadline = t.deadline();
    let quiet = Instant::now() + SERVER_FIRST_AFTER;
    let first_wait = deadline.map_or(quiet, |d| d.min(quiet));
    match t.within(Some(first_wait), io.fill(sniffed)).await {
        Some(Ok(true)) => {}
        Some(_) => return,
        None if t.is_stopping() || deadline.is_some_and(|d| Instant::now() >= d) => return,
        // Silent so far: a client that waits for its server to speak first, or a slow one.
        None => match first_to_speak(&t, &mut io, &authority, deadline).await {
            FirstToSpeak::Client => {}
            FirstToSpeak::Server(server, greeting) => {
                let greeted = Some((server, greeting));
                return pass_through_recorded(&t, io, authority, &scope, greeted).await;
            }
            FirstToSpeak::Neither => return,
        },
    }
    match sniff_client(io.prefix()) {
        Sniff::Known(AppProtocol::Tls) => {
            intercept_tls(&t, io, authority, scope, deadline).await;
        }
        Sniff::Known(protocol @ (AppProtocol::Http1 | AppProtocol::Http2PriorKnowledge)) => {
            let h2 = protocol == AppProtocol::Http2PriorKnowledge;
            let ctx = Ctx {
                scope,
                tunnel: Some((Scheme::HTTP, authority)),
                then: None,
                streams: h2.then(Default::default),
                last: None,
            };
            serve_http(&t, io, h2, Arc::new(ctx)).await;
        }
        _ => pass_through_recorded(&t, io, authority, &scope, None).await,
    }
}

/// True once a tunnel's first bytes say what it carries, as the pcap tap tells a
/// connection's protocol ([`sniff_client`]).
fn sniffed(prefix: &[u8]) -> bool {
    sniff_client(prefix) != Sniff::NeedMore
}

/// Who spoke first in a tunnel whose client said nothing for [`SERVER_FIRST_AFTER`].
enum FirstToSpeak {
    /// The client after all: its bytes are read ahead, to be sniffed as usual.
    Client,
    /// The server (SMTP, FTP, a database …): the connection to it and what it said.
    Server(upstream::UpstreamStream, Vec<u8>),
    /// Neither before the deadline, the server is out of reach or closed, or the run
    /// stops.
    Neither,
}

/// Opens the connection to a silent tunnel's server and waits, until `deadline`,
/// for whichever side speaks first.
async fn first_to_speak<I>(
    t: &Tracked,
    io: &mut Rewind<I>,
    authority: &Authority,
    deadline: Option<Instant>,
) -> FirstToSpeak
where
    I: AsyncRead + Unpin,
{
    let Some(Some(mut server)) = t.within(deadline, open_upstream(t, authority)).await else {
        return FirstToSpeak::Neither;
    };
    enum Spoke {
        /// The client's first bytes, `false` when it closed instead.
        Client(bool),
        /// Bytes of the server's read (0: it closed, or failed).
        Server(usize),
    }
    let mut greeting = vec![0u8; READ_AHEAD];
    let raced = t
        .within(deadline, async {
            tokio::select! {
                client = io.fill(sniffed) => Spoke::Client(matches!(client, Ok(true))),
                server = server.read(&mut greeting) => Spoke::Server(server.unwrap_or(0)),
            }
        })
        .await;
    match raced {
        Some(Spoke::Client(true)) => FirstToSpeak::Client,
        Some(Spoke::Server(n)) if n > 0 => {
            greeting.truncate(n);
            FirstToSpeak::Server(server, greeting)
        }
        _ => FirstToSpeak::Neither,
    }
}

/// The intercepted TLS side of a tunnel whose first bytes are a TLS record.
async fn intercept_tls<I>(
    t: &Tracked,
    mut io: Rewind<I>,
    authority: Authority,
    scope: Arc<ConnScope>,
    deadline: Option<Instant>,
) where
    I: AsyncRead + ShutdownWrite + Send + 'static,
{
    // The ClientHello, read by us so a tunnel left alone can replay it.
    let mut acceptor = rustls::server::Acceptor::default();
    let mut seen: Vec<u8> = Vec::with_capacity(2048);
    let accepted = loop {
        let before = seen.len();
        match t.within(deadline, io.read_buf(&mut seen)).await {
            Some(Ok(n)) if n > 0 => {}
            _ => return,
        }
        if seen.len() > MAX_CLIENT_HELLO {
            return;
        }
        let mut fresh = seen.get(before..).unwrap_or_default();
        while !fresh.is_empty() {
            match acceptor.read_tls(&mut fresh) {
                Ok(n) if n > 0 => {}
                _ => return,
            }
        }
        match acceptor.accept() {
            Ok(Some(a)) => break a,
            Ok(None) => continue,
            Err((_, mut alert)) => {
                let mut out = Vec::new();
                let _ = alert.write(&mut out);
                let _ = io.write_all(&out).await;
                return;
            }
        }
    };
    let sni = accepted.client_hello().server_name().map(str::to_string);
    scope.note_client_hello(&seen);
    if !handler::intercept_tls(&scope, sni.as_deref()) {
        pass_through(t, io, &authority, &seen).await;
        return;
    }
    drop(seen);
    let config = t
        .minter
        .config_for(sni.as_deref().unwrap_or(authority.host()));
    let coalesce = Coalesce::new(io);
    let last = coalesce.last_response();
    let handshake = tokio_rustls::StartHandshake::from_parts(accepted, coalesce)
        .into_stream(config)
        .into_fallible();
    let mut tls = match t.within(deadline, handshake).await {
        Some(Ok(tls)) => tls,
        Some(Err((_, mut io))) => {
            // The alert rustls wrote about the failure, if it was held back.
            let _ = t.within(deadline, io.write_held()).await;
            return;
        }
        None => return,
    };
    tls.get_mut().0.handshake_done();
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let mut io = Rewind::new(tls);
    if h2 {
        // hyper would wait for the preface without a timer.
        let preface = |p: &[u8]| p.len() >= H2_PREFACE.len() || !H2_PREFACE.starts_with(p);
        if !matches!(t.within(deadline, io.fill(preface)).await, Some(Ok(true))) {
            return;
        }
    }
    let ctx = Ctx {
        scope,
        tunnel: Some((Scheme::HTTPS, authority)),
        then: None,
        streams: h2.then(Default::default),
        last: (!h2).then_some(last),
    };
    serve_http(t, io, h2, Arc::new(ctx)).await;
}

/// Connects to `authority` (`host:port`, `default_port` when it has none), through
/// the upstream proxy if there is one.
async fn connect_upstream(
    core: &Core,
    authority: &Authority,
    default_port: u16,
) -> std::io::Result<super::upstream::UpstreamStream> {
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = authority.port_u16().unwrap_or(default_port);
    core.upstream.connect(host, port).await
}

/// The connection to a tunnel's server, or `None` (said as a notice) when it
/// cannot be reached.
async fn open_upstream(t: &Tracked, authority: &Authority) -> Option<upstream::UpstreamStream> {
    match connect_upstream(t, authority, 443).await {
        Ok(server) => Some(server),
        Err(e) => {
            t.shared.emit(super::Event::Notice(format!(
                "tunnel to {authority} failed: cannot connect: {e}"
            )));
            None
        }
    }
}

/// Passes a tunnel through to `authority` untouched: `replay` (bytes we read from the
/// client) first, then both ways until either side closes.
async fn pass_through<I>(t: &Tracked, io: I, authority: &Authority, replay: &[u8])
where
    I: AsyncRead + AsyncWrite + Unpin + Send,
{
    if let Some(server) = open_upstream(t, authority).await {
        relay(t, io, server, replay).await;
    }
}

/// `replay` to the server, then bytes both ways until either side closes or the run
/// stops.
async fn relay<I>(t: &Tracked, mut io: I, mut server: upstream::UpstreamStream, replay: &[u8])
where
    I: AsyncRead + AsyncWrite + Unpin + Send,
{
    if server.write_all(replay).await.is_err() {
        return;
    }
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut io, &mut server) => {}
        () = t.stopping() => {}
    }
}

/// A tunnel in a protocol the proxy does not read, passed through and recorded as it
/// goes ([`unparsed_tunnel`]). `greeted`: the server already connected, and what it
/// said first.
async fn pass_through_recorded<I>(
    t: &Tracked,
    io: Rewind<I>,
    authority: Authority,
    scope: &ConnScope,
    greeted: Option<(upstream::UpstreamStream, Vec<u8>)>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send,
{
    let (server, greeting) = match greeted {
        Some(greeted) => greeted,
        None => match open_upstream(t, &authority).await {
            Some(server) => (server, Vec::new()),
            None => return,
        },
    };
    // SSH is encrypted: recorded as a contact, its bytes not searched (as the tap).
    let ssh = sniff_client(io.prefix()) == Sniff::Known(AppProtocol::Ssh)
        || sniff_server(&greeting) == Sniff::Known(AppProtocol::Ssh);
    let (client, stop) = (scope.addr(), t.stopping());
    let target = (&authority, t.upstream.server_address(&server));
    unparsed_tunnel::relay(&t.shared, client, target, io, server, &greeting, !ssh, stop).await;
}

/// True for an HTTP/1.1 WebSocket upgrade request.
fn is_websocket<B>(req: &Request<B>) -> bool {
    super::asks_websocket_upgrade(req.headers())
}

/// A WebSocket upgrade: the server's WebSocket is opened first (a failure is the
/// client's `502`), then the client gets its `101` and messages flow both ways.
async fn websocket(
    core: &Arc<Core>,
    ctx: &Ctx,
    mut req: Request<Body>,
    rec: Option<Arc<handler::Recording>>,
) -> Response<Body> {
    let bad = |why: &str| {
        text_response(
            StatusCode::BAD_REQUEST,
            format!("consentry proxy: not a valid WebSocket upgrade: {why}\n"),
        )
    };
    let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY).cloned() else {
        return bad("no Sec-WebSocket-Key");
    };
    if req
        .headers()
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return bad("Sec-WebSocket-Version is not 13");
    }
    let (tls, scheme) = match req.uri().scheme_str() {
        Some("https") => (true, "wss"),
        _ => (false, "ws"),
    };
    let Some(authority) = req.uri().authority().cloned() else {
        return bad("no host");
    };
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let Ok(dst) = Uri::builder()
        .scheme(scheme)
        .authority(authority.clone())
        .path_and_query(path)
        .build()
    else {
        return bad("target");
    };
    // In a tunnel to an address, the server is reached there (see `ConnectTo`).
    let dial = req
        .extensions()
        .get::<ConnectTo>()
        .map_or_else(|| authority.clone(), |c| c.0.clone());
    let upgrade = hyper::upgrade::on(&mut req);
    let (mut parts, _body) = req.into_parts();
    parts.uri = dst.clone();
    // The proxy reads and writes both WebSockets itself, with no extension (its `101`
    // to the client names none). Passed on, the client's offer (browsers and OkHttp
    // offer permessage-deflate) would let the server compress what it sends, frames
    // our side cannot read: the app's WebSocket would close at the first one.
    parts.headers.remove(header::SEC_WEBSOCKET_EXTENSIONS);
    // The handshake with the server is the proxy's own, and `Connection` and what it
    // names are hop-by-hop (RFC 9110 §7.6.1): it asks for the upgrade in one line of
    // each field. tungstenite writes the first value of each field it requires
    // (`HeaderMap::remove`), so a client's `Connection: keep-alive` then `Connection:
    // Upgrade` reached the server as `keep-alive` alone, which refused the upgrade.
    super::remove_hop_by_hop(&mut parts.headers);
    parts
        .headers
        .insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    parts
        .headers
        .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    let upstream_req = Request::from_parts(parts, ());
    let opened = async {
        let tcp = connect_upstream(core, &dial, if tls { 443 } else { 80 })
            .await
            .map_err(tokio_tungstenite::tungstenite::Error::Io)?;
        let address = core.upstream.server_address(&tcp);
        let (ws, res) = tokio_tungstenite::client_async_tls_with_config(
            upstream_req,
            tcp,
            None,
            Some(core.ws_tls.clone()),
        )
        .await?;
        Ok::<_, tokio_tungstenite::tungstenite::Error>((ws, res, address))
    };
    let (server_ws, server_res, address) = match opened.await {
        Ok(x) => x,
        Err(e) => return handler::upstream_failed(&core.shared, rec, UpstreamFailure::Error(&e)),
    };
    // The address the messages go to, as the tap gives a connection's (else the
    // server as the request named it).
    if let (Some(rec), Some(a)) = (&rec, address) {
        handler::went_to(rec, a);
    }
    let server_text =
        address.map_or_else(|| dial.as_str().to_owned(), crate::net::text::socket_string);
    // The upgrade request is an exchange of its own, without a response (as the
    // messages are).
    drop(rec);
    let mut res = Response::new(body::empty());
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = res.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    if let Some(p) = server_res.headers().get(header::SEC_WEBSOCKET_PROTOCOL) {
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, p.clone());
    }
    let t = core.track();
    let scope = ctx.scope.clone();
    tokio::spawn(async move {
        let Ok(up) = upgrade.await else {
            return;
        };
        let client_ws =
            WebSocketStream::from_raw_socket(TokioIo::new(up), Role::Server, None).await;
        let (mut to_client, mut from_client) = client_ws.split();
        let (mut to_server, mut from_server) = server_ws.split();
        let shared = t.shared.clone();
        let upward = async {
            while let Some(Ok(m)) = from_client.next().await {
                let payload: Option<&[u8]> = match &m {
                    Message::Text(s) => Some(s.as_bytes()),
                    Message::Binary(b) => Some(b),
                    _ => None,
                };
                if let Some(p) = payload {
                    handler::ws_message(&shared, (&scope, &server_text), &dst, p).await;
                }
                if to_server.send(m).await.is_err() {
                    break;
                }
            }
            let _ = to_server.close().await;
        };
        let downward = async {
            while let Some(Ok(m)) = from_server.next().await {
                if to_client.send(m).await.is_err() {
                    break;
                }
            }
            let _ = to_client.close().await;
        };
        tokio::select! {
            _ = async { tokio::join!(upward, downward) } => {}
            () = t.stopping() => {}
        }
        drop(scope);
    });
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_end_at_their_deadline_or_the_stop_unless_ready_at_once() {
        let rt = crate::proxy::test_runtime();
        rt.block_on(async {
            let stop = tokio::sync::watch::channel(false).0;
            let soon = || Some(Instant::now() + Duration::from_millis(20));
            let never = std::future::pending::<u8>;
            assert_eq!(until_stopped(&stop, soon(), async { 1 }).await, Some(1));
            assert_eq!(until_stopped(&stop, None, async { 2 }).await, Some(2));
            assert_eq!(until_stopped(&stop, soon(), never()).await, None);
            // The stop ends a step that waits…
            let waiting = until_stopped(&stop, None, never());
            let stopping = async {
                tokio::task::yield_now().await;
                stop.send_replace(true);
            };
            assert_eq!(tokio::join!(waiting, stopping).0, None);
            // …and any later one that would wait, but not one that is ready at once.
            assert_eq!(until_stopped(&stop, soon(), never()).await, None);
            for _ in 0..32 {
                assert_eq!(until_stopped(&stop, soon(), async { 3 }).await, Some(3));
            }
        });
    }

    #[test]
    fn connect_heads_are_parsed_here_only_when_hyper_would_do_the_same() {
        let head = b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\
            Proxy-Authorization: Basic dTpw\r\n\r\n\x16\x03\x01";
        let (req, len) = parse_connect(head).unwrap();
        assert_eq!(
            len,
            head.len() - 3,
            "the ClientHello after it is not the head's"
        );
        assert_eq!(req.method(), Method::CONNECT);
        assert_eq!(req.uri().authority().unwrap().as_str(), "example.com:443");
        assert_eq!(req.headers()["proxy-authorization"], "Basic dTpw");
        assert_eq!(req.headers()["host"], "example.com:443");
        let (req, _) = parse_connect(b"CONNECT [::1]:8443 HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(req.uri().port_u16(), Some(8443));
        assert!(parse_connect(b"CONNECT h:1 HTTP/1.1\r\nContent-Length: 0\r\n\r\n").is_some());
        // Left to hyper.
        for other in [
            &b"CONNECT example.com:443 HTTP/1.1\r\nHost: x\r\n"[..],
            b"CONNECT example.com:443 HTTP/1.0\r\n\r\n",
            b"CONNECT / HTTP/1.1\r\n\r\n",
            b"CONNECT http://example.com/ HTTP/1.1\r\n\r\n",
            b"CONNECT h:1 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
            b"CONNECT h:1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"CONNECT h:1 HTTP/1.1\r\nBad Name: x\r\n\r\n",
            b"connect h:1 HTTP/1.1\r\n\r\n",
            b"GET http://h/ HTTP/1.1\r\n\r\n",
        ] {
            assert!(
                parse_connect(other).is_none(),
                "{}",
                String::from_utf8_lossy(other)
            );
        }
        let many: String = (0..=MAX_CONNECT_HEADERS)
            .map(|i| format!("x-{i}: v\r\n"))
            .collect();
        let many = format!("CONNECT h:1 HTTP/1.1\r\n{many}\r\n");
        assert!(parse_connect(many.as_bytes()).is_none());
    }

    #[test]
    fn a_connect_head_cut_anywhere_is_left_to_hyper_until_it_is_whole() {
        let head = b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n";
        for cut in 0..head.len() {
            assert!(parse_connect(&head[..cut]).is_none(), "cut at {cut}");
        }
        assert_eq!(parse_connect(head).map(|(_, n)| n), Some(head.len()));
        // Arbitrary bytes after a CONNECT never panic.
        let mut x = 0x9e37_79b9_u32;
        for len in 0..300 {
            let mut p = b"CONNECT ".to_vec();
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let alphabet = b" :\r\nCONECT/1.HTPx";
                p.push(alphabet[x as usize % alphabet.len()]);
            }
            let _ = parse_connect(&p);
        }
    }

    #[test]
    fn refusals_are_encoded_whole_with_their_headers() {
        let mut res = text_response(StatusCode::PROXY_AUTHENTICATION_REQUIRED, "no\n".into());
        res.headers_mut().insert(
            header::PROXY_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"consentry\""),
        );
        let bytes = crate::proxy::test_runtime()
            .block_on(encode_response(res))
            .unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 407 Proxy Authentication Required\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nproxy-authenticate: Basic realm=\"consentry\"\r\n"));
        assert!(
            text.ends_with("\r\ncontent-length: 3\r\n\r\nno\n"),
            "{text}"
        );
    }

    /// In a tunnel to an address, an HTTP/1 request is sent to the name its `Host`
    /// gives and connects to the address; elsewhere its target is the tunnel's.
    #[test]
    fn requests_in_a_tunnel_to_an_address_are_named_by_their_host() {
        let target = |tunnel: &str, host: Option<&str>| {
            let mut b = Request::builder().uri("/p?q=1");
            if let Some(h) = host {
                b = b.header(header::HOST, h);
            }
            let tunnel: Authority = tunnel.parse().unwrap();
            let req = in_tunnel(b.body(()).unwrap(), &Scheme::HTTPS, &tunnel).unwrap();
            (
                req.uri().to_string(),
                req.extensions().get::<ConnectTo>().map(|c| c.0.to_string()),
            )
        };
        let to = |a: &str| Some(a.to_string());
        assert_eq!(
            target("203.0.113.7:443", Some("Shop.example.com")),
            (
                "https://Shop.example.com/p?q=1".into(),
                to("203.0.113.7:443")
            )
        );
        assert_eq!(
            target("[2001:db8::7]:8443", Some("cdn.example:8443")),
            (
                "https://cdn.example:8443/p?q=1".into(),
                to("[2001:db8::7]:8443")
            )
        );
        // A Host that is an address or no host name, none, or a tunnel to a name.
        for (tunnel, host) in [
            ("203.0.113.7:443", Some("198.51.100.1")),
            ("203.0.113.7:443", Some("[2001:db8::1]:443")),
            ("203.0.113.7:443", Some("a b")),
            ("203.0.113.7:443", None),
            ("tracker.example:443", Some("other.example")),
        ] {
            assert_eq!(
                target(tunnel, host),
                (format!("https://{tunnel}/p?q=1"), None),
                "{tunnel} {host:?}"
            );
        }
    }

    #[test]
    fn requests_that_close_their_connection_are_told_apart() {
        let req = |version: Version, conn: Option<&str>| {
            let mut b = Request::builder().version(version);
            if let Some(c) = conn {
                b = b.header("connection", c);
            }
            b.body(()).unwrap()
        };
        assert!(asks_to_close(&req(Version::HTTP_11, Some("close"))));
        assert!(asks_to_close(&req(Version::HTTP_11, Some("TE, Close"))));
        assert!(!asks_to_close(&req(Version::HTTP_11, None)));
        assert!(!asks_to_close(&req(Version::HTTP_11, Some("keep-alive"))));
        assert!(!asks_to_close(&req(Version::HTTP_11, Some("closed"))));
        assert!(asks_to_close(&req(Version::HTTP_10, None)));
        assert!(!asks_to_close(&req(Version::HTTP_10, Some("Keep-Alive"))));
        assert!(!asks_to_close(&req(
            Version::HTTP_11,
            Some("close, upgrade")
        )));
        assert!(!asks_to_close(&req(Version::HTTP_2, Some("close"))));
    }

    #[test]
    fn websocket_upgrades_are_recognised_by_their_tokens() {
        let req = |conn: &str, up: &str| {
            Request::builder()
                .header("connection", conn)
                .header("upgrade", up)
                .body(())
                .unwrap()
        };
        assert!(is_websocket(&req("Upgrade", "websocket")));
        assert!(is_websocket(&req("keep-alive, upgrade", "WebSocket")));
        assert!(!is_websocket(&req("keep-alive", "websocket")));
        assert!(!is_websocket(&req("upgrade", "h2c")));
        assert!(!is_websocket(&Request::new(())));
    }

    #[test]
    fn upstream_requests_are_http11_without_host_and_with_one_cookie_field() {
        let req = Request::builder()
            .version(Version::HTTP_2)
            .uri("https://example.com/p")
            .header("host", "example.com")
            .header("cookie", "a=1")
            .header("cookie", "b=2")
            .header("x-other", "kept")
            .body(body::empty())
            .unwrap();
        let (req, host) = normalize(req);
        assert_eq!(
            host.as_ref().map(|h| h.as_bytes()),
            Some(&b"example.com"[..])
        );
        assert_eq!(req.version(), Version::HTTP_11);
        assert!(req.headers().get("host").is_none());
        let cookies: Vec<_> = req.headers().get_all("cookie").iter().collect();
        assert_eq!(cookies, ["a=1; b=2"]);
        assert_eq!(req.headers()["x-other"], "kept");
    }

    fn tunnel_uri(target: &str, scheme: Scheme) -> Uri {
        let req = Request::builder().uri(target).body(()).unwrap();
        let authority = Authority::from_static("127.0.0.1:8443");
        match in_tunnel(req, &scheme, &authority) {
            Ok(r) => r.uri().clone(),
            Err(r) => panic!("refused: {}", r.status()),
        }
    }

    #[test]
    fn tunnel_targets_take_the_tunnels_scheme_and_authority() {
        assert_eq!(
            tunnel_uri("/a?b=1", Scheme::HTTPS),
            "https://127.0.0.1:8443/a?b=1"
        );
        assert_eq!(
            tunnel_uri("http://elsewhere.example/x", Scheme::HTTP),
            "http://127.0.0.1:8443/x"
        );
        // The authority-form target of a CONNECT has no path (hudsucker panicked
        // here); the core refuses CONNECT before, and this never panics either.
        assert_eq!(
            tunnel_uri("127.0.0.1:1", Scheme::HTTPS),
            "https://127.0.0.1:8443/"
        );
    }

    /// The size of the future returned by `F`, an async fn of a connection's core,
    /// context and request.
    fn future_size<'a, Req, F>(_: impl FnOnce(&'a Arc<Core>, &'a Ctx, Req) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    #[test]
    fn a_requests_future_stays_small() {
        // hyper moves each request's future into its dispatcher: with the WebSocket
        // path inline it was 11 272 bytes, boxed 1 552.
        let size = future_size::<Request<Incoming>, _>(proxy);
        assert!(size < 4096, "proxy's future is {size} bytes");
    }
}
