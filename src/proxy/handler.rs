//! hudsucker's request/response hooks: authentication, device attribution, the magic
//! host, interception decisions, and the recording of each exchange (see the module
//! documentation of `proxy`).
//!
//! A [`Recording`] collects one exchange: its request and response heads as evidence
//! ([`super::head`]), a copy of the request body up to `--body-cap` for the analysis,
//! the case's known values streamed over the request body past the cap
//! ([`StreamScanner`]: hits become `Exchange::beyond_cap`), and the size and SHA-256 of
//! both whole bodies. Everything it keeps is bounded: the head by
//! [`crate::exchange::MAX_HEAD_BYTES`], the body copy by the cap, the stream by one
//! window and [`crate::pii::stream::MAX_KEPT_HITS`] hits.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use hudsucker::hyper::{header, Method, Request, Response, StatusCode};
use hudsucker::tokio_tungstenite::tungstenite::Message;
use hudsucker::{
    Body, HttpContext, HttpHandler, RequestOrResponse, WebSocketContext, WebSocketHandler,
};

use super::{head, lock, page, Event, Shared, MAGIC_HOST};
use crate::exchange::{Anomaly, BodyDigests, Exchange, Header, RawHead, SourceKind, TlsInfo};
use crate::pii::stream::StreamScanner;
use crate::timestamp::Timestamp;

/// The proxy's [`HttpHandler`]. hudsucker clones it for every request, so the clone
/// carries that request's recording from `handle_request` to `handle_response`.
///
/// Give hudsucker a handler from [`Handler::new`], never a clone of one: hudsucker
/// clones the handler it was given once per accepted connection, and that clone
/// once per request of the connection (the `CONNECT` one lives as long as its
/// tunnel, and the tunnel's requests are clones of it). So a clone of a new handler
/// opens a `ConnScope` that its own clones share, and the connection's state is
/// forgotten when the last of them is dropped.
pub struct Handler {
    shared: Arc<Shared>,
    rec: Option<Arc<Recording>>,
    /// The client connection this handler serves (`None` on the handler given to
    /// hudsucker).
    scope: Option<Arc<ConnScope>>,
}

impl Handler {
    /// A handler over the run's shared state.
    pub fn new(shared: Arc<Shared>) -> Self {
        Handler {
            shared,
            rec: None,
            scope: None,
        }
    }
}

impl Clone for Handler {
    fn clone(&self) -> Self {
        let scope = match &self.scope {
            Some(s) => s.clone(),
            None => Arc::new(ConnScope {
                shared: self.shared.clone(),
                addr: OnceLock::new(),
            }),
        };
        Handler {
            shared: self.shared.clone(),
            rec: self.rec.clone(),
            scope: Some(scope),
        }
    }
}

/// One client connection, from its first request until the connection and any
/// tunnel it became are gone: then its entry in the connection table goes too (a
/// proxy serving millions of connections keeps state for the open ones only).
struct ConnScope {
    shared: Arc<Shared>,
    addr: OnceLock<SocketAddr>,
}

impl ConnScope {
    fn enter(&self, addr: SocketAddr) {
        if self.addr.set(addr).is_ok() {
            self.shared.attach(addr);
        }
    }
}

impl Drop for ConnScope {
    fn drop(&mut self) {
        if let Some(a) = self.addr.get() {
            self.shared.detach(*a);
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
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    chain
}

fn text_response(status: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn headers_of(map: &header::HeaderMap) -> Vec<Header> {
    map.iter()
        .map(|(n, v)| Header::new(n.as_str(), v.as_bytes()))
        .collect()
}

impl Handler {
    /// Checks the client's credentials. `Ok(user)` lets the request through (with the
    /// user name it gave, if any); `Err` is the 407 to send.
    fn authenticate(
        &self,
        ctx: &HttpContext,
        req: &Request<Body>,
    ) -> Result<Option<String>, Box<Response<Body>>> {
        let creds = req
            .headers()
            .get(header::PROXY_AUTHORIZATION)
            .and_then(|v| basic_credentials(v.as_bytes()));
        let shared = &self.shared;
        let known_address = shared.settings.allow_case_addresses
            && shared.devices.resolve(ctx.client_addr.ip(), None).is_some();
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
        let remembered = shared.with_conn(ctx.client_addr, |c| {
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

impl HttpHandler for Handler {
    async fn handle_request(
        &mut self,
        ctx: &HttpContext,
        mut req: Request<Body>,
    ) -> RequestOrResponse {
        if let Some(scope) = &self.scope {
            scope.enter(ctx.client_addr);
        }
        if req.method() != Method::CONNECT {
            // A request becomes an event: wait here (not in the hand-off, which would
            // park a runtime thread) while the consumer lags far behind.
            self.shared.room().await;
        }
        let user = match self.authenticate(ctx, &req) {
            Ok(u) => u,
            Err(r) => return (*r).into(),
        };
        // Evidence before anything is changed (hop-by-hop headers go next).
        let is_connect = req.method() == Method::CONNECT;
        let in_tunnel = !is_connect && self.shared.with_conn(ctx.client_addr, |c| c.tunnel);
        let raw_head = (!is_connect).then(|| head::request_head(&req, in_tunnel));
        // Hop-by-hop proxy headers: the credentials are ours, never the server's.
        req.headers_mut().remove(header::PROXY_AUTHORIZATION);
        req.headers_mut().remove("proxy-connection");
        let shared = self.shared.clone();
        let addr = ctx.client_addr;
        let device = shared.device_of(addr, user.as_deref());
        let host = req
            .uri()
            .host()
            .map(str::to_string)
            .or_else(|| {
                req.headers()
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(|h| h.rsplit_once(':').map_or(h, |(a, _)| a).to_string())
            })
            .map(|h| norm_host(&h))
            .unwrap_or_default();
        let port = req.uri().port_u16().or(match req.uri().scheme_str() {
            Some("https") => Some(443),
            Some(_) => Some(80),
            None => None,
        });
        if req.uri().authority().is_none() && req.method() != Method::CONNECT {
            // Origin-form: someone opened the proxy's address as a web server.
            return page::serve(&shared, addr, &device, &req).into();
        }
        if shared.is_self(&host, port) {
            return text_response(
                StatusCode::LOOP_DETECTED,
                "consentry proxy: this request is addressed to the proxy itself; see http://consentry.invalid/\n".into(),
            )
            .into();
        }
        if req.method() == Method::CONNECT {
            // Inner requests of the tunnel carry no credentials: remember who this is.
            shared.with_conn(addr, |c| {
                c.device = Some(device.clone());
                c.handshake = Some(host.clone());
                c.tunnel = true;
            });
            return req.into();
        }
        shared.with_conn(addr, |c| {
            c.handshake = None;
            if user.is_some() {
                c.device = Some(device.clone());
            }
        });
        if host == MAGIC_HOST {
            return page::serve(&shared, addr, &device, &req).into();
        }
        let (n, id) = shared.next_id();
        let mut x = Exchange::new(id, SourceKind::Proxy, Timestamp::now());
        x.evidence.locator = format!("proxy {} record {n}", shared.session);
        x.evidence.request_head = raw_head.as_deref().map(RawHead::new);
        x.client = Some(addr.to_string());
        x.server = req.uri().authority().map(|a| a.to_string());
        x.device = Some(device);
        x.scheme = req.uri().scheme_str().unwrap_or("http").to_string();
        x.method = req.method().as_str().to_string();
        x.path = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        x.http_version = head::version_text(req.version()).to_string();
        x.request_headers = headers_of(req.headers());
        if x.scheme == "https" {
            x.tls = Some(TlsInfo {
                version: None,
                sni: Some(host.clone()),
                decrypted: true,
                decrypt_error: None,
            });
        }
        x.host = host;
        let rec = Recording::start(shared, x);
        self.rec = Some(rec.clone());
        // After the exchange recorded them: the evidence keeps what the client sent.
        super::strip_hop_by_hop(req.headers_mut());
        let (parts, body) = req.into_parts();
        let body = Tap::new(body, rec, Side::Request);
        Request::from_parts(parts, Body::from(BoxBody::new(body))).into()
    }

    async fn handle_response(&mut self, _ctx: &HttpContext, res: Response<Body>) -> Response<Body> {
        let Some(rec) = self.rec.take() else {
            return res;
        };
        {
            let mut d = lock(&rec.draft);
            d.x.response = Some(crate::exchange::Response {
                status: res.status().as_u16(),
                headers: headers_of(res.headers()),
                body: Vec::new(),
            });
            d.x.evidence.response_head = Some(RawHead::new(&head::response_head(&res)));
            d.responded = true;
        }
        let (parts, body) = res.into_parts();
        Response::from_parts(
            parts,
            Body::from(BoxBody::new(Tap::new(body, rec, Side::Response))),
        )
    }

    async fn handle_error(
        &mut self,
        _ctx: &HttpContext,
        err: hudsucker::hyper_util::client::legacy::Error,
    ) -> Response<Body> {
        let shared = &self.shared;
        let chain = error_chain(&err);
        let rec = self.rec.take();
        if rec
            .as_ref()
            .is_some_and(|r| lock(&r.draft).request_body_failed)
        {
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
        text_response(
            StatusCode::BAD_GATEWAY,
            format!("consentry proxy: could not reach {host}: {chain}\n"),
        )
    }

    async fn should_intercept_connect(&mut self, _ctx: &HttpContext, req: &Request<Body>) -> bool {
        let host = req.uri().host().map(norm_host).unwrap_or_default();
        host == MAGIC_HOST || !(self.shared.ignored(&host) || self.shared.is_pinned(&host))
    }

    async fn should_intercept_tls(
        &mut self,
        ctx: &HttpContext,
        hello: rustls::server::ClientHello<'_>,
    ) -> bool {
        let shared = &self.shared;
        let sni = hello.server_name().map(norm_host);
        // The certificate is minted for the SNI, else for the CONNECT host.
        let host = shared.with_conn(ctx.client_addr, |c| {
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
        shared.handshake_started(&host, ctx.client_addr);
        true
    }
}

impl WebSocketHandler for Handler {
    /// Each text or binary message from the client becomes an exchange (method `WS`,
    /// the message as its request body, capped like bodies, the rest streamed like
    /// theirs); messages are passed on unchanged. Messages from the server are only
    /// forwarded: they are what the server sends the app, not the device's data
    /// leaving it, which is what the rules judge (as with response bodies).
    async fn handle_message(&mut self, ctx: &WebSocketContext, msg: Message) -> Option<Message> {
        if let WebSocketContext::ClientToServer { src, dst, .. } = ctx {
            let payload: Option<&[u8]> = match &msg {
                Message::Text(t) => Some(t.as_bytes()),
                Message::Binary(b) => Some(b.as_ref()),
                _ => None,
            };
            if let Some(payload) = payload {
                self.shared.room().await;
                self.record_ws(*src, dst, payload);
            }
        }
        Some(msg)
    }
}

impl Handler {
    fn record_ws(&self, src: std::net::SocketAddr, dst: &hudsucker::hyper::Uri, payload: &[u8]) {
        let shared = self.shared.clone();
        let (n, id) = shared.next_id();
        let mut x = Exchange::new(id, SourceKind::Proxy, Timestamp::now());
        x.evidence.locator = format!("proxy {} record {n}", shared.session);
        x.client = Some(src.to_string());
        x.server = dst.authority().map(|a| a.to_string());
        x.device = Some(shared.device_of(src, None));
        x.host = dst.host().map(norm_host).unwrap_or_default();
        x.scheme = dst.scheme_str().unwrap_or("ws").to_string();
        x.method = "WS".into();
        x.path = dst
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        x.http_version = "WebSocket".into();
        if x.scheme == "wss" {
            x.tls = Some(TlsInfo {
                version: None,
                sni: Some(x.host.clone()),
                decrypted: true,
                decrypt_error: None,
            });
        }
        let rec = Recording::start(shared, x);
        rec.data(Side::Request, payload);
        // Dropped here: emitted at once, one exchange per message.
    }
}

/// Which body of an exchange a [`Tap`] copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Request,
    Response,
}

/// An exchange being recorded. Emitted once, when dropped: after the handler, the
/// request body and the response body have all let go of it.
struct Recording {
    shared: Arc<Shared>,
    draft: Mutex<Draft>,
}

struct Draft {
    x: Exchange,
    request_bytes: u64,
    response_bytes: u64,
    /// Digests of the whole bodies, as evidence (`Exchange::digests`).
    request_sha256: ring::digest::Context,
    /// The request body past the cap, searched as it passes (once there is any).
    beyond: Option<StreamScanner>,
    response_sha256: ring::digest::Context,
    responded: bool,
    response_ended: bool,
    body_error: Option<String>,
    /// The client's request body failed (then an upstream error is its consequence).
    request_body_failed: bool,
}

impl Recording {
    fn start(shared: Arc<Shared>, x: Exchange) -> Arc<Recording> {
        shared.counters.in_flight.fetch_add(1, Ordering::Relaxed);
        Arc::new(Recording {
            shared,
            draft: Mutex::new(Draft {
                x,
                request_bytes: 0,
                response_bytes: 0,
                request_sha256: ring::digest::Context::new(&ring::digest::SHA256),
                response_sha256: ring::digest::Context::new(&ring::digest::SHA256),
                beyond: None,
                responded: false,
                response_ended: false,
                body_error: None,
                request_body_failed: false,
            }),
        })
    }

    fn data(&self, side: Side, chunk: &[u8]) {
        let cap = self.shared.settings.body_cap;
        let mut d = lock(&self.draft);
        match side {
            Side::Request => {
                d.request_bytes = d.request_bytes.saturating_add(chunk.len() as u64);
                d.request_sha256.update(chunk);
                let room = cap.saturating_sub(d.x.request_body.len());
                let take = room.min(chunk.len());
                // `take <= chunk.len()` (a `min` above): the fallback never happens.
                let (kept, rest) = chunk.split_at_checked(take).unwrap_or((chunk, &[]));
                d.x.request_body.extend_from_slice(kept);
                if !rest.is_empty() {
                    if let Some(det) = &self.shared.settings.detector {
                        let d = &mut *d;
                        d.beyond
                            .get_or_insert_with(|| {
                                StreamScanner::new(det.clone(), &d.x.request_body)
                            })
                            .feed(rest);
                    }
                }
            }
            Side::Response => {
                d.response_bytes = d.response_bytes.saturating_add(chunk.len() as u64);
                d.response_sha256.update(chunk);
            }
        }
    }

    fn end(&self, side: Side) {
        if side == Side::Response {
            lock(&self.draft).response_ended = true;
        }
    }

    fn fail(&self, side: Side, err: String) {
        let mut d = lock(&self.draft);
        let what = match side {
            Side::Request => {
                d.request_body_failed = true;
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
        let mut x = std::mem::replace(
            &mut d.x,
            Exchange::new(String::new(), SourceKind::Proxy, Timestamp::default()),
        );
        if d.request_bytes > x.request_body.len() as u64 {
            let streamed = match d.beyond.take() {
                Some(scanner) => {
                    let o = scanner.finish();
                    x.beyond_cap = o.hits;
                    x.anomalies.extend(o.anomalies);
                    format!(
                        "; the rest searched for the case's known values as it passed: {} hit(s)",
                        o.total_hits
                    )
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
        let hex =
            |c: &ring::digest::Context| crate::store::record::hex(c.clone().finish().as_ref());
        x.digests = Some(BodyDigests {
            request_bytes: d.request_bytes,
            request_sha256: hex(&d.request_sha256),
            response_bytes: d.responded.then_some(d.response_bytes),
            response_sha256: d.responded.then(|| hex(&d.response_sha256)),
        });
        let c = &self.shared.counters;
        c.in_flight.fetch_sub(1, Ordering::Relaxed);
        c.exchanges.fetch_add(1, Ordering::Relaxed);
        self.shared.emit_exchange(x);
    }
}

/// A body passed through frame by frame while its data is copied (request: up to
/// the cap) into the exchange's recording.
struct Tap {
    inner: Body,
    rec: Arc<Recording>,
    side: Side,
}

impl Tap {
    fn new(inner: Body, rec: Arc<Recording>, side: Side) -> Self {
        if inner.is_end_stream() {
            // An empty body may never be polled.
            rec.end(side);
        }
        Tap { inner, rec, side }
    }
}

impl HttpBody for Tap {
    type Data = Bytes;
    type Error = hudsucker::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hudsucker::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.rec.data(this.side, data);
                }
                // A body of known length is not polled again after its last frame.
                if this.inner.is_end_stream() {
                    this.rec.end(this.side);
                }
            }
            Poll::Ready(Some(Err(e))) => this.rec.fail(this.side, error_chain(e)),
            Poll::Ready(None) => this.rec.end(this.side),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
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
    fn a_connections_state_lives_as_long_as_its_handlers() {
        let (shared, _dir) = shared();
        let a: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        // As hudsucker does: the handler it was given, one clone per connection, one
        // clone of that per request (the CONNECT one lives on as the tunnel).
        let given = Handler::new(shared.clone());
        let conn = given.clone();
        let connect = conn.clone();
        let inner = connect.clone();
        for h in [&connect, &inner] {
            h.scope.as_ref().unwrap().enter(a);
        }
        shared.with_conn(a, |c| c.device = Some("pixel7".into()));
        assert_eq!(shared.tracked_connections(), 1);
        drop(conn);
        drop(connect);
        assert_eq!(
            shared.device_of(a, None),
            "pixel7",
            "the tunnel is still open"
        );
        drop(inner);
        assert_eq!(shared.tracked_connections(), 0);
        assert_eq!(shared.device_of(a, None), "unknown");

        // A new connection from the same address and port while the old one's last
        // handler is still around: the old one ending does not forget the new one.
        let old = given.clone().clone();
        old.scope.as_ref().unwrap().enter(a);
        let new = given.clone().clone();
        new.scope.as_ref().unwrap().enter(a);
        drop(old);
        assert_eq!(shared.tracked_connections(), 1);
        drop(new);
        assert_eq!(shared.tracked_connections(), 0);
        // The handler given to hudsucker serves no connection itself.
        assert!(given.scope.is_none());
    }

    #[test]
    fn hosts_are_normalised() {
        assert_eq!(norm_host("[::1]"), "::1");
        assert_eq!(norm_host("Example.COM."), "example.com");
    }
}
