//! What the proxy core ([`super::serve`]) asks about every request, tunnel and
//! WebSocket message: authentication, device attribution, the magic host,
//! interception decisions, and the recording of each exchange (see the module
//! documentation of `proxy`). The core owns the connections; this module owns the
//! decisions and the records, and does no I/O of its own.
//!
//! A [`Recording`] collects one exchange: its request and response heads as evidence
//! ([`super::head`]), a copy of the request body up to `--body-cap` for the analysis,
//! the case's known values streamed over the request body past the cap, decoded first
//! when it has a `Content-Encoding` ([`decoded_tail::body_tail`]: hits become
//! `Exchange::beyond_cap`), and the size and SHA-256 of
//! both whole bodies. Everything it keeps is bounded: the head by
//! [`crate::exchange::MAX_HEAD_BYTES`], the body copy by the cap, the stream by one
//! window and [`crate::pii::stream::MAX_KEPT_HITS`] hits (and a decoder's state and
//! output buffer for an encoded body, whose decoded bytes are bounded too).
//!
//! A request body the upstream stops taking before its end (the server answered
//! early, or failed) is still evidence of what the app sent: [`read_unforwarded`]
//! reads the rest from the client, up to the cap, for the analysis only.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{header, Method, Request, Response, StatusCode, Uri};

use super::body::{self, Body, BoxError, Stall};
use super::{head, lock, page, Event, Shared, MAGIC_HOST};
use crate::exchange::{Anomaly, BodyDigests, Exchange, Header, RawHead, SourceKind, TlsInfo};
use crate::net::tail_search::{TailScan, TailStart};
use crate::net::tls::{HelloPoll, HelloReader};
use crate::net::tls_fingerprint::{Fingerprints, Transport};
use crate::pii::decoded_tail;
use crate::timestamp::Timestamp;

/// One client connection, from its first request until the connection and any
/// tunnel or WebSocket it became are gone (the core holds one `Arc` per task serving
/// it): then its entry in the connection table goes too (a proxy serving millions of
/// connections keeps state for the open ones only).
pub(crate) struct ConnScope {
    shared: Arc<Shared>,
    addr: SocketAddr,
    /// The connection reached the handler (has an entry in the table).
    entered: AtomicBool,
    /// A `CONNECT` or TLS handshake noted its host in the connection's entry since
    /// the last request: only then has a request something to clear there, so the
    /// others leave the shared table (a lock both runtime threads take, and a SipHash
    /// of the address) alone (issue 4, keep-alive requests per second).
    handshake_noted: AtomicBool,
    /// The client's latest TLS ClientHello to the proxy: each TLS request carries
    /// what it showed.
    client_hello: Mutex<Option<HelloNoted>>,
}

/// What a connection's ClientHello showed: its fingerprints (JA3, JA4) and the
/// server name it gave, if any (clients leave it out for an address).
#[derive(Debug, Clone)]
struct HelloNoted {
    fingerprints: Fingerprints,
    sni: Option<String>,
}

impl ConnScope {
    /// The scope of a connection from `addr`, not in the table until its first request.
    pub(crate) fn new(shared: Arc<Shared>, addr: SocketAddr) -> Arc<ConnScope> {
        Arc::new(ConnScope {
            shared,
            addr,
            entered: AtomicBool::new(false),
            handshake_noted: AtomicBool::new(false),
            client_hello: Mutex::new(None),
        })
    }

    /// Notes the ClientHello the client just sent (the bytes of its first TLS
    /// records).
    pub(crate) fn note_client_hello(&self, records: &[u8]) {
        if let HelloPoll::Done(hello) = HelloReader::new().client_hello(records) {
            *lock(&self.client_hello) = Some(HelloNoted {
                fingerprints: hello.fingerprints,
                sni: hello.sni,
            });
        }
    }

    /// The fingerprints and server name of the connection's ClientHello.
    fn client_hello(&self) -> (Option<Fingerprints>, Option<String>) {
        match &*lock(&self.client_hello) {
            Some(h) => (Some(h.fingerprints), h.sni.clone()),
            None => (None, None),
        }
    }

    /// The client's address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn enter(&self) {
        if !self.entered.swap(true, Ordering::Relaxed) {
            self.shared.attach(self.addr);
        }
    }

    /// A request on this connection: the handshake noted before it is over, and
    /// `device` (named by the request's proxy user) is the connection's from now on.
    fn request_seen(&self, device: Option<&str>) {
        let handshake_over = self.handshake_noted.swap(false, Ordering::Relaxed);
        if handshake_over || device.is_some() {
            self.shared.with_conn(self.addr, |c| {
                c.handshake = None;
                if let Some(d) = device {
                    c.device = Some(d.to_owned());
                }
            });
        }
    }
}

impl Drop for ConnScope {
    fn drop(&mut self) {
        if *self.entered.get_mut() {
            self.shared.detach(self.addr);
        }
    }
}

/// Host as used for certificates, pinning and matching: lower case, no brackets.
pub(crate) fn norm_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// User and password of a `Proxy-Authorization: Basic …` header.
fn basic_credentials(value: &[u8]) -> Option<(String, String)> {
    use base64::Engine;
    let text = std::str::from_utf8(value).ok()?.trim();
    let (scheme, b64) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (u, p) = raw.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// Equality that takes the same time wherever the strings differ (passwords).
fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An error with its sources, `outer: inner: …` (hyper's own messages are terse).
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    chain
}

/// A plain-text answer of the proxy itself.
pub(crate) fn text_response(status: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(body::full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn headers_of(map: &header::HeaderMap) -> Vec<Header> {
    // Sized up front (`len` counts every value): no growth while filling.
    let mut headers = Vec::with_capacity(map.len());
    headers.extend(
        map.iter()
            .map(|(n, v)| Header::new(n.as_str(), v.as_bytes())),
    );
    headers
}

/// The fields of a trailer section, marked as such (searched, never acted on).
fn trailer_fields_of(map: &header::HeaderMap) -> impl Iterator<Item = Header> + '_ {
    map.iter()
        .map(|(n, v)| Header::trailer(n.as_str(), v.as_bytes()))
}

/// What the handler decided about a request.
pub(crate) enum Decision {
    /// Answer the client with this (the proxy's own page, a refusal …).
    Respond(Response<Body>),
    /// Forward the request (or open the tunnel it asks for); the recording, when
    /// there is one, gets the response or the failure.
    Forward(Request<Body>, Option<Arc<Recording>>),
}

/// The request's side of the handler, one per request.
struct Handler<'a> {
    shared: &'a Arc<Shared>,
    addr: SocketAddr,
}

impl Handler<'_> {
    /// Checks the client's credentials. `Ok(user)` lets the request through (with the
    /// user name it gave, if any); `Err` is the 407 to send.
    fn authenticate<B>(&self, req: &Request<B>) -> Result<Option<String>, Box<Response<Body>>> {
        let creds = req
            .headers()
            .get(header::PROXY_AUTHORIZATION)
            .and_then(|v| basic_credentials(v.as_bytes()));
        let shared = &self.shared;
        let known_address = shared.settings.allow_case_addresses
            && shared.devices.resolve(self.addr.ip(), None).is_some();
        let Some((user, pass)) = &shared.settings.proxy_auth else {
            // No password configured: loopback (a user name only attributes), or
            // only the case's device addresses are let in.
            if !shared.settings.allow_case_addresses || known_address {
                return Ok(creds.map(|(u, _)| u));
            }
            return Err(Box::new(self.denied()));
        };
        if creds.is_none() && known_address {
            return Ok(None);
        }
        let valid = creds.as_ref().is_some_and(|(u, p)| {
            (u == user || shared.users.contains_key(u)) && same_secret(p, pass)
        });
        let remembered = shared.with_conn(self.addr, |c| {
            if valid {
                c.authenticated = true;
            }
            c.authenticated
        });
        if valid || (creds.is_none() && remembered) {
            return Ok(creds.map(|(u, _)| u));
        }
        Err(Box::new(self.denied()))
    }

    /// The 407 answer, counted.
    fn denied(&self) -> Response<Body> {
        self.shared
            .counters
            .auth_failures
            .fetch_add(1, Ordering::Relaxed);
        let mut r = text_response(
            StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            "consentry: proxy authentication required (Proxy-Authorization: Basic, see --proxy-auth)\n"
                .into(),
        );
        r.headers_mut().insert(
            header::PROXY_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"consentry\""),
        );
        r
    }
}

/// `Basic base64(user:password)`: for credentials a client gave outside HTTP
/// (SOCKS5), so that they are checked, and name the device, as an HTTP client's are;
/// and for those the proxy sends to an upstream proxy.
pub(crate) fn basic_authorization(user: &[u8], password: &[u8]) -> Option<header::HeaderValue> {
    use base64::Engine;
    let plain = [user, b":", password].concat();
    let encoded = base64::engine::general_purpose::STANDARD.encode(plain);
    header::HeaderValue::try_from(format!("Basic {encoded}")).ok()
}

/// Whether the client of `scope` gets in with `authorization` (or none), as a
/// `CONNECT` carrying it would: for SOCKS5, which settles the credentials before the
/// client names its target.
pub(crate) fn admits(scope: &ConnScope, authorization: Option<&header::HeaderValue>) -> bool {
    let mut req = Request::new(());
    if let Some(a) = authorization {
        req.headers_mut()
            .insert(header::PROXY_AUTHORIZATION, a.clone());
    }
    let this = Handler {
        shared: &scope.shared,
        addr: scope.addr,
    };
    this.authenticate(&req).is_ok()
}

/// Whether the client of `scope` gets in without credentials (transparent mode's
/// redirected clients cannot present any), as [`admits`] decides but without
/// counting a refusal as an authentication failure.
pub(crate) fn admits_without_credentials(scope: &ConnScope) -> bool {
    let settings = &scope.shared.settings;
    let known_address = settings.allow_case_addresses
        && scope
            .shared
            .devices
            .resolve(scope.addr.ip(), None)
            .is_some();
    known_address || (settings.proxy_auth.is_none() && !settings.allow_case_addresses)
}

/// Decides about a `CONNECT` from the connection of `scope`: `Ok` opens the tunnel
/// (the client is remembered for the tunnel's inner requests, which carry no
/// credentials), `Err` is the answer to send instead. Any body type: the core parses
/// most `CONNECT` heads itself, without hyper (issue 4, new connections per second).
pub(crate) fn connect<B>(scope: &ConnScope, req: &Request<B>) -> Result<(), Box<Response<Body>>> {
    scope.enter();
    let this = Handler {
        shared: &scope.shared,
        addr: scope.addr,
    };
    let user = this.authenticate(req)?;
    let shared = this.shared;
    let addr = this.addr;
    let device = shared.device_of(addr, user.as_deref());
    let host = req.uri().host().map(norm_host).unwrap_or_default();
    if shared.is_self(&host, req.uri().port_u16()) {
        return Err(Box::new(loop_detected()));
    }
    scope.handshake_noted.store(true, Ordering::Relaxed);
    shared.with_conn(addr, |c| {
        c.device = Some(device);
        c.handshake = Some(host);
    });
    Ok(())
}

/// The answer to a request addressed to the proxy itself (forwarding it would loop).
fn loop_detected() -> Response<Body> {
    text_response(
        StatusCode::LOOP_DETECTED,
        "consentry proxy: this request is addressed to the proxy itself; see http://consentry.invalid/\n".into(),
    )
}

/// The host an exchange is named by: `host`, except in a tunnel to an address (a
/// SOCKS5 client that resolved the name itself, an app with its own DNS over
/// HTTPS), where the request's `Host` names the server, as the pcap tap names it
/// (the request still goes to the address).
fn named_in_tunnel(in_tunnel: bool, host: String, headers: &header::HeaderMap) -> String {
    if !in_tunnel || host.parse::<std::net::IpAddr>().is_err() {
        return host;
    }
    // A DNS name: addresses (bracketed or not) stay unnamed.
    host_field(headers)
        .filter(|h| {
            crate::net::socks::is_host_name(h.as_bytes()) && h.parse::<std::net::IpAddr>().is_err()
        })
        .unwrap_or(host)
}

/// The host of the `Host` field, without its port, normalised ([`norm_host`]).
fn host_field(headers: &header::HeaderMap) -> Option<String> {
    let h = headers.get(header::HOST)?.to_str().ok()?;
    Some(norm_host(h.rsplit_once(':').map_or(h, |(name, _)| name)))
}

/// Decides about a request from the connection of `scope` (`in_tunnel`: inside its
/// `CONNECT` tunnel, where request targets are in origin form), and starts its
/// recording. A body that makes no progress for `body_timeout` is cut.
pub(crate) async fn request(
    scope: &ConnScope,
    in_tunnel: bool,
    mut req: Request<Incoming>,
    body_timeout: Option<Duration>,
) -> Decision {
    use Decision::Respond;
    if req.method() == Method::CONNECT {
        return match connect(scope, &req) {
            Ok(()) => {
                // Hop-by-hop proxy headers: the credentials are ours.
                req.headers_mut().remove(header::PROXY_AUTHORIZATION);
                req.headers_mut().remove(&super::PROXY_CONNECTION);
                Decision::Forward(req.map(|b| b.map_err(BoxError::from).boxed()), None)
            }
            Err(r) => Respond(*r),
        };
    }
    scope.enter();
    let this = Handler {
        shared: &scope.shared,
        addr: scope.addr,
    };
    // A request becomes an event: wait here (not in the hand-off, which would
    // park a runtime thread) while the consumer lags far behind.
    this.shared.room().await;
    let user = match this.authenticate(&req) {
        Ok(u) => u,
        Err(r) => return Respond(*r),
    };
    // Evidence before anything is changed (hop-by-hop headers go next).
    let raw_head = RawHead::from_vec(head::request_head(&req, in_tunnel));
    // Hop-by-hop proxy headers: the credentials are ours, never the server's.
    req.headers_mut().remove(header::PROXY_AUTHORIZATION);
    req.headers_mut().remove(&super::PROXY_CONNECTION);
    let shared = this.shared.clone();
    let addr = this.addr;
    let device = shared.device_of(addr, user.as_deref());
    // Normalised straight from the borrowed text: one allocation, not two.
    let host = match req.uri().host() {
        Some(h) => norm_host(h),
        None => host_field(req.headers()).unwrap_or_default(),
    };
    let port = req.uri().port_u16().or(match req.uri().scheme_str() {
        Some("https") => Some(443),
        Some(_) => Some(80),
        None => None,
    });
    if req.uri().authority().is_none() {
        // Origin-form: someone opened the proxy's address as a web server.
        return Respond(page::serve(&shared, addr, &device, &req));
    }
    if shared.is_self(&host, port) {
        return Respond(loop_detected());
    }
    scope.request_seen(user.is_some().then_some(device.as_str()));
    if host == MAGIC_HOST {
        return Respond(page::serve(&shared, addr, &device, &req));
    }
    let (n, id) = shared.next_id();
    // Scheme, method and path are all set below.
    let mut x = Exchange::blank(id, SourceKind::Proxy, Timestamp::now());
    x.evidence.locator = super::locator(&shared.session, n);
    x.evidence.request_head = Some(raw_head);
    x.client = Some(crate::net::text::socket_string(addr));
    // The authority's text as it is (`to_string` would go through `Display`); in a
    // tunnel to an address, that address (where the request goes). The response
    // replaces it with the address the pool connected to.
    x.server = match req.extensions().get::<super::pool::ConnectTo>() {
        Some(to) => Some(to.0.as_str().to_owned()),
        None => req.uri().authority().map(|a| a.as_str().to_owned()),
    };
    x.http_version = head::version_text(req.version()).to_string();
    x.device = Some(device);
    x.scheme = req.uri().scheme_str().unwrap_or("http").to_string();
    x.method = req.method().as_str().to_string();
    x.path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    x.request_headers = headers_of(req.headers());
    let host = named_in_tunnel(in_tunnel, host, req.headers());
    if x.scheme == "https" {
        // The server name the client's ClientHello gave (none for an address), as a
        // capture would show it: evidence of what the app asked for.
        let (hello, sni) = scope.client_hello();
        x.tls = Some(TlsInfo {
            version: None,
            sni,
            decrypted: true,
            decrypt_error: None,
            ja3: hello.map(|f| f.ja3()),
            ja4: hello.map(|f| f.ja4(Transport::Tcp)),
            ..TlsInfo::default()
        });
    }
    x.host = host;
    let rec = Recording::start(shared, x);
    // After the exchange recorded them: the evidence keeps what the client sent.
    super::strip_hop_by_hop(req.headers_mut());
    let (parts, body) = req.into_parts();
    let body = Tap::new(body, rec.clone(), Side::Request, body_timeout);
    Decision::Forward(Request::from_parts(parts, body.boxed()), Some(rec))
}

/// The upstream's response to a recorded request, passed to the client as it streams
/// (a body that makes no progress for `body_timeout` is cut).
pub(crate) fn response(
    rec: Arc<Recording>,
    res: Response<Incoming>,
    body_timeout: Option<Duration>,
) -> Response<Body> {
    {
        let mut d = lock(&rec.draft);
        let dns_answer = may_answer_dns(&d.x, res.headers());
        // A DNS answer's fields are read for its type and coding.
        let headers = if rec.shared.settings.response_headers || dns_answer {
            headers_of(res.headers())
        } else {
            Vec::new()
        };
        d.keep_response_body = dns_answer;
        if let Some(server) = res.extensions().get::<super::pool::UpstreamServer>() {
            if let (Some(tls), Some(c)) = (&mut d.x.tls, &server.0.certificate) {
                tls.server_certificate = Some(c.clone());
            }
            // The address the request went to, as the tap gives a connection's.
            if let Some(a) = server.0.address {
                d.x.server = Some(crate::net::text::socket_string(a));
            }
        }
        d.x.response = Some(crate::exchange::Response {
            status: res.status().as_u16(),
            headers,
            body: Vec::new(),
        });
        d.x.evidence.response_head = Some(RawHead::from_vec(head::response_head(&res)));
        d.responded = true;
    }
    let (parts, body) = res.into_parts();
    Response::from_parts(
        parts,
        Tap::new(body, rec, Side::Response, body_timeout).boxed(),
    )
}

/// Most of a DNS answer's body kept: one byte past what `net::http_dns` reads, so
/// that a longer one is seen to be too long (a DoH message is at most 64 KiB).
const DNS_ANSWER_CAP: usize = crate::net::http_dns::MAX_ANSWER_BYTES + 1;

/// Whether the response with `headers` to the request of `x` (its body as far as
/// it came) may be a DNS answer whose addresses name later connections
/// (`Shared::learn_http_answer`): a DoH answer, or the answer to a request that may
/// ask an HTTP DNS API, in its query or in the form it posted.
fn may_answer_dns(x: &Exchange, headers: &header::HeaderMap) -> bool {
    crate::net::http_dns::names_query(&x.path, &x.request_headers, &x.request_body).is_some()
        || headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| crate::net::dns::is_dns_message_type(v.as_bytes()))
}

/// The request of `rec` went to the server at `address` (a WebSocket upgrade, whose
/// response is not recorded through [`response`]).
pub(crate) fn went_to(rec: &Recording, address: SocketAddr) {
    lock(&rec.draft).x.server = Some(crate::net::text::socket_string(address));
}

/// Why no response came from upstream.
pub(crate) enum UpstreamFailure<'a> {
    /// The client (connect, TLS, or the exchange) failed.
    Error(&'a (dyn std::error::Error + 'static)),
    /// No response head within this time without progress (`--body-timeout`).
    Timeout(Duration),
}

/// The answer to a request the upstream did not answer (502, or 504 on a timeout),
/// or whose own body broke (400, or 408 when it stalled).
pub(crate) fn upstream_failed(
    shared: &Shared,
    rec: Option<Arc<Recording>>,
    failure: UpstreamFailure<'_>,
) -> Response<Body> {
    let (chain, status) = match failure {
        UpstreamFailure::Error(e) => (error_chain(e), StatusCode::BAD_GATEWAY),
        UpstreamFailure::Timeout(d) => (
            format!("no response within {} s (--body-timeout)", d.as_secs_f64()),
            StatusCode::GATEWAY_TIMEOUT,
        ),
    };
    let body_failed = rec.as_ref().map(|r| {
        let d = lock(&r.draft);
        (d.request_body_failed, d.request_body_stalled)
    });
    if let Some((true, stalled)) = body_failed {
        if stalled {
            return text_response(
                StatusCode::REQUEST_TIMEOUT,
                "consentry proxy: the request body stopped arriving (--body-timeout)\n".into(),
            );
        }
        // The client's own body broke (malformed chunking, or the client went
        // away mid-upload): not the server's failure, and the exchange already
        // carries the `body-error` anomaly.
        return text_response(
            StatusCode::BAD_REQUEST,
            "consentry proxy: the request body could not be read (malformed, or cut short)\n"
                .into(),
        );
    }
    shared
        .counters
        .upstream_errors
        .fetch_add(1, Ordering::Relaxed);
    let verb = if status == StatusCode::GATEWAY_TIMEOUT {
        "got no answer from"
    } else {
        "could not reach"
    };
    let host = match &rec {
        Some(rec) => {
            let mut d = lock(&rec.draft);
            d.x.anomalies
                .push(Anomaly::new("upstream-error", chain.clone()));
            d.x.host.clone()
        }
        None => "?".into(),
    };
    drop(rec);
    shared.emit(Event::Notice(format!("upstream {host} failed: {chain}")));
    text_response(status, format!("consentry proxy: {verb} {host}: {chain}\n"))
}

/// True when the tunnel to `host` (normalised) is to be intercepted: not ignored,
/// not pinned (the magic host always is).
pub(crate) fn intercept_connect(shared: &Shared, host: &str) -> bool {
    host == MAGIC_HOST || !(shared.ignored(host) || shared.is_pinned(host))
}

/// True when the TLS handshake the client of `scope` starts (with `sni`, if it named
/// one) is to be intercepted; then its outcome is watched for pinning.
pub(crate) fn intercept_tls(scope: &ConnScope, sni: Option<&str>) -> bool {
    let (shared, addr) = (&*scope.shared, scope.addr);
    let sni = sni.map(norm_host);
    if sni.is_some() {
        scope.handshake_noted.store(true, Ordering::Relaxed);
    }
    // The certificate is minted for the SNI, else for the CONNECT host.
    let host = shared.with_conn(addr, |c| {
        if let Some(s) = &sni {
            c.handshake = Some(s.clone());
        }
        c.handshake.clone()
    });
    let Some(host) = host else {
        return true;
    };
    if host != MAGIC_HOST && (shared.ignored(&host) || shared.is_pinned(&host)) {
        return false;
    }
    shared.handshake_started(&host, addr, scope.client_hello());
    true
}

/// A text or binary message from the WebSocket client of `scope` to `dst` (a `ws://`
/// or `wss://` URI; its server reached at `server`) becomes an exchange (method `WS`,
/// the message as its request body, capped like bodies, the rest streamed like
/// theirs); the caller passes it on unchanged. Messages from the server are only forwarded: they are what the server
/// sends the app, not the device's data leaving it, which is what the rules judge (as
/// with response bodies).
pub(crate) async fn ws_message(
    shared: &Arc<Shared>,
    (scope, server): (&ConnScope, &str),
    dst: &Uri,
    payload: &[u8],
) {
    let src = scope.addr();
    shared.room().await;
    let shared = shared.clone();
    let (n, id) = shared.next_id();
    // Scheme, method and path are all set below.
    let mut x = Exchange::blank(id, SourceKind::Proxy, Timestamp::now());
    x.evidence.locator = super::locator(&shared.session, n);
    x.client = Some(crate::net::text::socket_string(src));
    x.server = Some(server.to_owned());
    x.http_version = "WebSocket".into();
    x.device = Some(shared.device_of(src, None));
    x.host = dst.host().map(norm_host).unwrap_or_default();
    x.scheme = dst.scheme_str().unwrap_or("ws").to_string();
    x.method = "WS".into();
    x.path = dst
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    if x.scheme == "wss" {
        let (hello, sni) = scope.client_hello();
        x.tls = Some(TlsInfo {
            version: None,
            sni,
            decrypted: true,
            decrypt_error: None,
            ja3: hello.map(|f| f.ja3()),
            ja4: hello.map(|f| f.ja4(Transport::Tcp)),
            ..TlsInfo::default()
        });
    }
    let rec = Recording::start(shared, x);
    rec.data(Side::Request, payload);
    // Dropped here: emitted at once, one exchange per message.
}

/// Which body of an exchange a [`Tap`] copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Request,
    Response,
}

/// An exchange being recorded. Emitted once, when dropped: after the core, the
/// request body and the response body have all let go of it.
pub(crate) struct Recording {
    shared: Arc<Shared>,
    /// When the recording started: the base of `progress_nanos`.
    started: tokio::time::Instant,
    /// The two things the waiting core reads (see `serve::forward`), kept out of the
    /// mutex: the request-body tap, on another worker, need not meet it there.
    /// True once the whole request body has been read from the client.
    request_ended: AtomicBool,
    /// When the request last made progress, in nanoseconds after `started`.
    progress_nanos: AtomicU64,
    draft: Mutex<Draft>,
}

struct Draft {
    x: Exchange,
    request_bytes: u64,
    response_bytes: u64,
    /// Digests of the whole bodies, as evidence (`Exchange::digests`).
    request_sha256: ring::digest::Context,
    /// The request body past the cap, searched as it passes (once there is any):
    /// decoded first when it has a `Content-Encoding` (`pii::decoded_tail`).
    beyond: Option<Box<dyn TailScan>>,
    response_sha256: ring::digest::Context,
    responded: bool,
    /// The response may be a DNS answer (DoH, or an HTTP DNS API's): its body is
    /// kept, up to [`DNS_ANSWER_CAP`], for the addresses it gives.
    keep_response_body: bool,
    response_ended: bool,
    body_error: Option<String>,
    /// The client's request body failed (then an upstream error is its consequence).
    request_body_failed: bool,
    /// … because it stalled (`--body-timeout`).
    request_body_stalled: bool,
}

impl Recording {
    fn start(shared: Arc<Shared>, x: Exchange) -> Arc<Recording> {
        shared.counters.in_flight.fetch_add(1, Ordering::Relaxed);
        Arc::new(Recording {
            shared,
            started: tokio::time::Instant::now(),
            request_ended: AtomicBool::new(false),
            progress_nanos: AtomicU64::new(0),
            draft: Mutex::new(Draft {
                x,
                request_bytes: 0,
                response_bytes: 0,
                request_sha256: ring::digest::Context::new(&ring::digest::SHA256),
                response_sha256: ring::digest::Context::new(&ring::digest::SHA256),
                beyond: None,
                responded: false,
                keep_response_body: false,
                response_ended: false,
                body_error: None,
                request_body_failed: false,
                request_body_stalled: false,
            }),
        })
    }

    fn data(&self, side: Side, chunk: &[u8]) {
        let cap = self.shared.settings.body_cap;
        let mut d = lock(&self.draft);
        match side {
            Side::Request => {
                self.mark_progress();
                d.request_bytes = d.request_bytes.saturating_add(chunk.len() as u64);
                d.request_sha256.update(chunk);
                let room = cap.saturating_sub(d.x.request_body.len());
                let take = room.min(chunk.len());
                // `take <= chunk.len()` (a `min` above): the fallback never happens.
                let (kept, rest) = chunk.split_at_checked(take).unwrap_or((chunk, &[]));
                d.x.request_body.extend_from_slice(kept);
                if !rest.is_empty() {
                    let settings = &self.shared.settings;
                    if let Some(det) = &settings.detector {
                        let d = &mut *d;
                        let x = &d.x;
                        d.beyond
                            .get_or_insert_with(|| {
                                let content_encoding = x.request_header_list("content-encoding");
                                decoded_tail::body_tail(
                                    det.clone(),
                                    &settings.analysis_limits,
                                    TailStart {
                                        before: &x.request_body,
                                        at: x.request_body.len() as u64,
                                        content_encoding: content_encoding.as_deref(),
                                    },
                                )
                            })
                            .feed(rest);
                    }
                }
            }
            Side::Response => {
                d.response_bytes = d.response_bytes.saturating_add(chunk.len() as u64);
                d.response_sha256.update(chunk);
                if d.keep_response_body {
                    if let Some(r) = d.x.response.as_mut() {
                        let room = DNS_ANSWER_CAP.saturating_sub(r.body.len());
                        r.body.extend_from_slice(chunk.get(..room).unwrap_or(chunk));
                    }
                }
            }
        }
    }

    /// Trailer fields after a body (HTTP/1.1 chunked, HTTP/2): appended to the
    /// message's header fields, as a capture's parsers do, so that the analysis
    /// searches them (a request's) and the record keeps them (a response's, where its
    /// fields are kept); the evidence keeps them as received
    /// (`evidence.request_trailer`, `evidence.response_trailer`). hyper bounds them
    /// (16 KiB of trailer fields in HTTP/1.1, a 16 KiB header list in HTTP/2).
    fn trailers(&self, side: Side, fields: &header::HeaderMap) {
        let section = Some(RawHead::from_vec(head::trailer_section(fields)));
        let mut d = lock(&self.draft);
        match side {
            Side::Request => {
                d.x.request_headers.extend(trailer_fields_of(fields));
                d.x.evidence.request_trailer = section;
            }
            Side::Response => {
                if self.shared.settings.response_headers {
                    if let Some(r) = d.x.response.as_mut() {
                        r.headers.extend(trailer_fields_of(fields));
                    }
                }
                d.x.evidence.response_trailer = section;
            }
        }
    }

    /// When the request last made progress: the client's body is part of the wait for
    /// the response, so a long upload does not count as upstream silence.
    pub(crate) fn last_progress(&self) -> tokio::time::Instant {
        self.started + Duration::from_nanos(self.progress_nanos.load(Ordering::Relaxed))
    }

    /// The request made progress now (called by `data`, under the draft's lock: the
    /// stores come in order).
    fn mark_progress(&self) {
        let since = tokio::time::Instant::now().saturating_duration_since(self.started);
        let nanos = u64::try_from(since.as_nanos()).unwrap_or(u64::MAX);
        self.progress_nanos.store(nanos, Ordering::Relaxed);
    }

    /// True once the whole request body has been read from the client.
    pub(crate) fn request_ended(&self) -> bool {
        self.request_ended.load(Ordering::Relaxed)
    }

    fn end(&self, side: Side) {
        match side {
            Side::Request => self.request_ended.store(true, Ordering::Relaxed),
            Side::Response => lock(&self.draft).response_ended = true,
        }
    }

    /// Bytes of the request body read from the client so far.
    fn request_bytes(&self) -> u64 {
        lock(&self.draft).request_bytes
    }

    /// The upstream stopped taking the request body after `forwarded` bytes; the
    /// proxy then read `read` more from the client, and stopped as `end` says.
    fn not_forwarded(&self, forwarded: u64, read: u64, end: UnforwardedEnd) {
        let rest = match end {
            UnforwardedEnd::Complete => "to its end".to_string(),
            UnforwardedEnd::Cap(cap) => {
                format!("up to --body-cap ({cap} bytes); the rest was not read")
            }
            UnforwardedEnd::Silent(idle) => format!(
                "then nothing came for {} s; the rest, if any, was not read",
                idle.as_secs_f64()
            ),
            UnforwardedEnd::Failed(e) => format!("then the body failed: {e}"),
        };
        lock(&self.draft).x.anomalies.push(Anomaly::new(
            "request-body-not-forwarded",
            format!(
                "the upstream stopped taking the request body (it answered or failed \
                 first): {forwarded} of its bytes were passed on; the proxy read the next \
                 {read} from the client for the analysis only, {rest}"
            ),
        ));
    }

    fn fail(&self, side: Side, err: String, stalled: bool) {
        let mut d = lock(&self.draft);
        let what = match side {
            Side::Request => {
                d.request_body_failed = true;
                d.request_body_stalled = stalled;
                "request"
            }
            Side::Response => "response",
        };
        d.body_error.get_or_insert(format!("{what} body: {err}"));
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        let d = match self.draft.get_mut() {
            Ok(d) => d,
            Err(e) => e.into_inner(),
        };
        // A placeholder never read again: `blank` allocates nothing.
        let mut x = std::mem::replace(
            &mut d.x,
            Exchange::blank(String::new(), SourceKind::Proxy, Timestamp::default()),
        );
        x.request_body_cut = d.request_bytes > x.request_body.len() as u64;
        if x.request_body_cut {
            let streamed = match d.beyond.take() {
                Some(scanner) => {
                    let o = scanner.finish();
                    let searched = match (o.decoded_from, &o.undecoded) {
                        (None, None) => format!(
                            "; the rest searched for the case's known values as it passed: {} hit(s)",
                            o.total_hits
                        ),
                        (None, Some(coding)) => format!(
                            "; the rest (Content-Encoding {coding:?}, not decoded past the \
                             cap) searched as sent for the case's known values as it \
                             passed: {} hit(s)",
                            o.total_hits
                        ),
                        (Some(coding), _) => format!(
                            "; the rest {coding}-decoded as it passed and its {} decoded bytes \
                             searched for the case's known values: {} hit(s)",
                            o.bytes, o.total_hits
                        ),
                    };
                    x.beyond_cap = o.hits;
                    x.anomalies.extend(o.anomalies);
                    searched
                }
                None => String::new(),
            };
            x.anomalies.push(Anomaly::new(
                "body-truncated",
                format!(
                    "request body of {} bytes: the first {} analysed (--body-cap){streamed}",
                    d.request_bytes,
                    x.request_body.len()
                ),
            ));
        }
        if let Some(e) = d.body_error.take() {
            x.anomalies.push(Anomaly::new("body-error", e));
        } else if d.responded && !d.response_ended {
            x.anomalies.push(Anomaly::new(
                "response-incomplete",
                format!(
                    "the response body stopped after {} bytes (client or server went away)",
                    d.response_bytes
                ),
            ));
        }
        x.digests = Some(BodyDigests {
            request_bytes: d.request_bytes,
            request_sha256: body_sha256(&d.request_sha256, d.request_bytes),
            response_bytes: d.responded.then_some(d.response_bytes),
            response_sha256: d
                .responded
                .then(|| body_sha256(&d.response_sha256, d.response_bytes)),
        });
        let c = &self.shared.counters;
        c.in_flight.fetch_sub(1, Ordering::Relaxed);
        c.exchanges.fetch_add(1, Ordering::Relaxed);
        self.shared.emit_exchange(x);
    }
}

/// SHA-256 of the empty string, lowercase hex: the digest of most request bodies
/// (every `GET`), written without hashing anything.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The hex digest of a body of `bytes` bytes that `digest` was fed.
fn body_sha256(digest: &ring::digest::Context, bytes: u64) -> String {
    if bytes == 0 {
        return EMPTY_SHA256.to_string();
    }
    crate::store::record::hex(digest.clone().finish().as_ref())
}

/// A body passed through frame by frame while its data is copied (request: up to
/// the cap) into the exchange's recording; cut when it stalls (see [`body::Stall`]).
/// A request body dropped before its end, error or stall is read on by
/// [`read_unforwarded`].
struct Tap {
    /// Taken by `drop` only.
    inner: Option<Incoming>,
    rec: Arc<Recording>,
    side: Side,
    stall: Option<Stall>,
    /// The body ended, failed or stalled: nothing more to read from it.
    settled: bool,
}

impl Tap {
    fn new(inner: Incoming, rec: Arc<Recording>, side: Side, timeout: Option<Duration>) -> Self {
        let settled = inner.is_end_stream();
        if settled {
            // An empty body may never be polled.
            rec.end(side);
        }
        Tap {
            inner: Some(inner),
            rec,
            side,
            stall: timeout.map(Stall::new),
            settled,
        }
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        if self.side != Side::Request || self.settled {
            return;
        }
        let Some(inner) = self.inner.take() else {
            return;
        };
        // Outside a runtime (never, in the proxy) the rest stays unread.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(read_unforwarded(inner, self.rec.clone()));
        }
    }
}

/// Longest silence [`read_unforwarded`] waits through (or `--body-timeout`, if
/// shorter): nobody but the evidence waits for these bytes, and a client that asked
/// for `100 Continue` and got a final answer instead may never send them.
const UNFORWARDED_IDLE: Duration = Duration::from_secs(5);

/// How [`read_unforwarded`] stopped.
enum UnforwardedEnd {
    Complete,
    /// The analysed part (`--body-cap` bytes) was complete.
    Cap(usize),
    Silent(Duration),
    Failed(String),
}

/// Reads the rest of a request body the upstream stopped taking (it answered before
/// reading it all, or failed) into its recording, up to the analysis cap, so that
/// what the app sent is analysed and digested although the server never saw it. The
/// recording (and so the exchange) ends when this does. The client's connection
/// stays usable when the body is read to its end.
async fn read_unforwarded(mut body: Incoming, rec: Arc<Recording>) {
    let settings = &rec.shared.settings;
    let cap = settings.body_cap;
    let idle = settings
        .body_timeout
        .map_or(UNFORWARDED_IDLE, |t| t.min(UNFORWARDED_IDLE));
    let forwarded = rec.request_bytes();
    let mut read = 0u64;
    let end = loop {
        if forwarded.saturating_add(read) >= cap as u64 {
            break UnforwardedEnd::Cap(cap);
        }
        match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => break UnforwardedEnd::Silent(idle),
            Ok(None) => break UnforwardedEnd::Complete,
            Ok(Some(Err(e))) => break UnforwardedEnd::Failed(error_chain(&e)),
            Ok(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    rec.data(Side::Request, data);
                    read = read.saturating_add(data.len() as u64);
                } else if let Some(fields) = frame.trailers_ref() {
                    rec.trailers(Side::Request, fields);
                }
                if body.is_end_stream() {
                    break UnforwardedEnd::Complete;
                }
            }
        }
    };
    if matches!(end, UnforwardedEnd::Complete) {
        rec.end(Side::Request);
    }
    rec.not_forwarded(forwarded, read, end);
}

impl HttpBody for Tap {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(&mut *inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.rec.data(this.side, data);
                } else if let Some(fields) = frame.trailers_ref() {
                    this.rec.trailers(this.side, fields);
                }
                // A body of known length is not polled again after its last frame.
                if inner.is_end_stream() {
                    this.settled = true;
                    this.rec.end(this.side);
                }
                if let Some(s) = &mut this.stall {
                    s.progress();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.settled = true;
                this.rec.fail(this.side, error_chain(&e), false);
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => {
                this.settled = true;
                this.rec.end(this.side);
                Poll::Ready(None)
            }
            Poll::Pending => match this.stall.as_mut().map(|s| s.pending(cx)) {
                Some(Err(stalled)) => {
                    this.settled = true;
                    this.rec.fail(this.side, stalled.to_string(), true);
                    // Not polled again: the reader sees the error and gives up.
                    this.stall = None;
                    Poll::Ready(Some(Err(stalled.into())))
                }
                _ => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Incoming::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Incoming::size_hint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_parse_and_reject() {
        // "pixel7:s3cret"
        assert_eq!(
            basic_credentials(b"Basic cGl4ZWw3OnMzY3JldA=="),
            Some(("pixel7".into(), "s3cret".into()))
        );
        assert_eq!(
            basic_credentials(b"basic  cGl4ZWw3OnMzY3JldA== "),
            Some(("pixel7".into(), "s3cret".into()))
        );
        assert_eq!(basic_credentials(b"Bearer abc"), None);
        assert_eq!(basic_credentials(b"Basic !!!"), None);
        assert_eq!(basic_credentials(b"Basic bm9jb2xvbg=="), None); // "nocolon"
        assert_eq!(basic_credentials(&[0xff, 0xfe]), None);
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
        assert!(!same_secret("", "a"));
    }

    /// The run's shared state over a one-device case, with a fresh CA.
    fn shared() -> (Arc<Shared>, tempfile::TempDir) {
        let case = crate::case::parse(
            "[case]\nid = \"t\"\n[app]\nname = \"a\"\n[[device]]\nid = \"pixel7\"\n",
            "t.toml",
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca = super::super::ca::Ca::load_or_create(&dir.path().join("ca")).unwrap();
        // The receiver is dropped: emitted events are discarded (see `Shared::emit`).
        let (tx, _) = super::super::events();
        let s = Shared::new(
            &case,
            super::super::Settings::default(),
            &ca,
            tx,
            "t".into(),
        );
        (s, dir)
    }

    #[test]
    fn a_request_clears_the_handshake_host_its_connection_noted() {
        let (shared, _dir) = shared();
        let a: SocketAddr = "127.0.0.1:40001".parse().unwrap();
        let handshake = |s: &Shared| s.with_conn(a, |c| c.handshake.clone());
        let conn = ConnScope::new(shared.clone(), a);
        conn.enter();
        // A TLS handshake names its host; the first request inside clears it.
        assert!(intercept_tls(&conn, Some("Api.Example")));
        assert_eq!(handshake(&shared).as_deref(), Some("api.example"));
        conn.request_seen(None);
        assert_eq!(handshake(&shared), None);
        // A handshake without SNI on a connection that noted none: nothing to clear,
        // and the table is not visited (a host put there behind the scope's back stays).
        assert!(intercept_tls(&conn, None));
        shared.with_conn(a, |c| c.handshake = Some("unnoted".into()));
        conn.request_seen(None);
        assert_eq!(handshake(&shared).as_deref(), Some("unnoted"));
        // A proxy user's device is remembered, and clears the host on the way.
        conn.request_seen(Some("pixel7"));
        assert_eq!(handshake(&shared), None);
        assert_eq!(shared.device_of(a, None), "pixel7");
    }

    #[test]
    fn a_connections_state_lives_as_long_as_its_scope() {
        let (shared, _dir) = shared();
        let a: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        // As the core does: one scope per accepted connection, a clone for the tunnel
        // (or WebSocket) it becomes.
        let conn = ConnScope::new(shared.clone(), a);
        assert_eq!(
            shared.tracked_connections(),
            0,
            "not before its first request"
        );
        conn.enter();
        let tunnel = conn.clone();
        tunnel.enter();
        shared.with_conn(a, |c| c.device = Some("pixel7".into()));
        assert_eq!(shared.tracked_connections(), 1);
        drop(conn);
        assert_eq!(
            shared.device_of(a, None),
            "pixel7",
            "the tunnel is still open"
        );
        drop(tunnel);
        assert_eq!(shared.tracked_connections(), 0);
        assert_eq!(shared.device_of(a, None), "unknown");

        // A new connection from the same address and port while the old one is still
        // around: the old one ending does not forget the new one.
        let old = ConnScope::new(shared.clone(), a);
        old.enter();
        let new = ConnScope::new(shared.clone(), a);
        new.enter();
        drop(old);
        assert_eq!(shared.tracked_connections(), 1);
        drop(new);
        assert_eq!(shared.tracked_connections(), 0);
        // A connection that never sent a request leaves nothing behind.
        drop(ConnScope::new(shared.clone(), a));
        assert_eq!(shared.tracked_connections(), 0);
    }

    #[test]
    fn a_dns_answer_over_http_is_kept_and_names_the_addresses_it_gave() {
        let none = header::HeaderMap::new();
        let request = |path: &str| {
            let mut x = Exchange::blank("x".to_string(), SourceKind::Proxy, Timestamp::now());
            x.path = path.into();
            x
        };
        assert!(may_answer_dns(&request("/d?dn=push.example&ttl=1"), &none));
        assert!(!may_answer_dns(&request("/api/v1/config"), &none));
        // A lookup posted as a form (Tencent's HTTPDNS takes `POST /d`).
        let mut posted = request("/d");
        posted.method = "POST".into();
        posted.request_headers = vec![Header::new(
            "Content-Type",
            "application/x-www-form-urlencoded",
        )];
        posted.request_body = b"dn=push.example&ttl=1".to_vec();
        assert!(may_answer_dns(&posted, &none));
        posted.request_body = b"user=alice".to_vec();
        assert!(!may_answer_dns(&posted, &none));
        let mut doh = header::HeaderMap::new();
        doh.insert(
            header::CONTENT_TYPE,
            "application/dns-message".parse().unwrap(),
        );
        assert!(may_answer_dns(&request("/dns-query"), &doh));

        // Without the case store's response fields (`response_headers` off), as
        // `response` leaves a DNS answer: its body kept up to the cap.
        let (shared, _dir) = shared();
        let mut x = Exchange::blank("x".to_string(), SourceKind::Proxy, Timestamp::now());
        x.path = "/d?dn=push.example&ttl=1".into();
        let rec = Recording::start(shared.clone(), x);
        {
            let mut d = lock(&rec.draft);
            d.x.response = Some(crate::exchange::Response {
                status: 200,
                headers: Vec::new(),
                body: Vec::new(),
            });
            d.keep_response_body = true;
        }
        rec.data(Side::Response, b"192.0.2.44;");
        rec.data(Side::Response, b"192.0.2.45,60");
        let x = lock(&rec.draft).x.clone();
        shared.emit_exchange(x);
        let now = Timestamp::now();
        assert_eq!(shared.connection_name("192.0.2.45", now), "push.example");
        // A longer body is cut one byte past what is read: no lookup.
        rec.data(Side::Response, &vec![b' '; DNS_ANSWER_CAP]);
        let body = lock(&rec.draft).x.response.as_ref().unwrap().body.len();
        assert_eq!(body, DNS_ANSWER_CAP);
        drop(rec);
        // Without the mark (any other response) nothing is kept.
        let rec = Recording::start(
            shared,
            Exchange::blank("y".to_string(), SourceKind::Proxy, now),
        );
        lock(&rec.draft).x.response = Some(crate::exchange::Response {
            status: 200,
            headers: Vec::new(),
            body: Vec::new(),
        });
        rec.data(Side::Response, b"192.0.2.46");
        assert!(lock(&rec.draft)
            .x
            .response
            .as_ref()
            .unwrap()
            .body
            .is_empty());
    }

    #[test]
    fn a_bodys_digest_is_its_sha256_empty_or_not() {
        for body in [&b""[..], b"a", b"{\"adid\":\"x\"}"] {
            let mut c = ring::digest::Context::new(&ring::digest::SHA256);
            c.update(body);
            let hashed = crate::store::record::hex(
                ring::digest::digest(&ring::digest::SHA256, body).as_ref(),
            );
            assert_eq!(body_sha256(&c, body.len() as u64), hashed);
        }
    }

    #[test]
    fn only_the_request_body_moves_progress_and_ends_the_request() {
        let (shared, _dir) = shared();
        let x = Exchange::blank("x".to_string(), SourceKind::Proxy, Timestamp::default());
        let rec = Recording::start(shared, x);
        let t0 = rec.last_progress();
        assert!(!rec.request_ended());
        std::thread::sleep(Duration::from_millis(20));
        rec.data(Side::Response, b"r");
        assert_eq!(
            rec.last_progress(),
            t0,
            "the response is not the request's progress"
        );
        let before = tokio::time::Instant::now();
        rec.data(Side::Request, b"q");
        let p = rec.last_progress();
        assert!(p >= before && p <= tokio::time::Instant::now());
        assert!(p >= t0 + Duration::from_millis(20));
        rec.end(Side::Response);
        assert!(!rec.request_ended());
        rec.end(Side::Request);
        assert!(rec.request_ended());
        assert_eq!(rec.last_progress(), p, "the end is not progress");
    }

    #[test]
    fn a_body_read_past_the_upstream_says_how_much_went_where_and_why_it_stopped() {
        let (shared, _dir) = shared();
        let x = Exchange::blank("x".to_string(), SourceKind::Proxy, Timestamp::default());
        let rec = Recording::start(shared, x);
        rec.not_forwarded(10, 0, UnforwardedEnd::Silent(Duration::from_secs(5)));
        rec.not_forwarded(0, 7, UnforwardedEnd::Failed("connection reset".into()));
        let d = lock(&rec.draft);
        let details: Vec<&str> = d.x.anomalies.iter().map(|a| a.detail.as_str()).collect();
        assert!(d
            .x
            .anomalies
            .iter()
            .all(|a| a.kind == "request-body-not-forwarded"));
        assert!(
            details[0].ends_with(
                "10 of its bytes were passed on; the proxy read the next 0 from the client \
                 for the analysis only, then nothing came for 5 s; the rest, if any, was not read"
            ),
            "{details:?}"
        );
        assert!(
            details[1].ends_with("read the next 7 from the client for the analysis only, then the body failed: connection reset"),
            "{details:?}"
        );
    }

    #[test]
    fn hosts_are_normalised() {
        assert_eq!(norm_host("[::1]"), "::1");
        assert_eq!(norm_host("Example.COM."), "example.com");
    }

    #[test]
    fn a_tunnel_to_an_address_is_named_by_the_requests_host() {
        let with_host = |v: &str| {
            let mut h = header::HeaderMap::new();
            h.insert(header::HOST, header::HeaderValue::from_str(v).unwrap());
            h
        };
        let ip = || "203.0.113.7".to_string();
        let named =
            |in_tunnel, host: String, h: &str| named_in_tunnel(in_tunnel, host, &with_host(h));
        assert_eq!(
            named(true, ip(), "App-Measurement.com:443"),
            "app-measurement.com"
        );
        assert_eq!(named(true, ip(), "tracker.example"), "tracker.example");
        // Not in a tunnel, or a tunnel to a name: the host the request goes to.
        assert_eq!(named(false, ip(), "tracker.example"), "203.0.113.7");
        assert_eq!(
            named(true, "cdn.example".into(), "tracker.example"),
            "cdn.example"
        );
        // A Host that names no host: the address.
        for h in [
            "198.51.100.1:80",
            "[2001:db8::1]:443",
            "[2001:db8::1]",
            "a b",
            "",
        ] {
            assert_eq!(named(true, ip(), h), "203.0.113.7", "{h:?}");
        }
        assert_eq!(
            named_in_tunnel(true, ip(), &header::HeaderMap::new()),
            "203.0.113.7"
        );
    }
}
