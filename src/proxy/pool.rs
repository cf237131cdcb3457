//! [`Pool`]: the proxy's upstream HTTP client, hyper's connection halves
//! (`client::conn::http1`/`http2` senders) kept per scheme and authority.
//!
//! It replaces hyper-util's `legacy::Client` (issue 4, keep-alive CPU per request):
//! that client SipHashed its pool key twice per request, built checkout futures
//! and channels, and added its connection info to every response. What it did that
//! the proxy relies on is kept: HTTP/2 when the server picks it by ALPN (one shared
//! connection per server), header case and title case towards HTTP/1 servers,
//! `Host` set from the target, origin-form targets on HTTP/1, idle connections
//! shared by every client connection (so new clients keep reusing upstream TLS
//! sessions) and closed after [`IDLE_TIMEOUT`], a request that a pooled connection
//! dropped before sending it retried once on a fresh one, and errors that read the
//! same ("client error (Connect): …", as in the stored `upstream-error` anomaly).

use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use foldhash::fast::SeedableRandomState;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper::header::{self, HeaderValue};
use hyper::http::uri::{Authority, Parts, Scheme};
use hyper::{Request, Response, Uri};
use hyper_rustls::MaybeHttpsStream;
use hyper_util::client::legacy::connect::Connection;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;

use super::body::Body;
use super::upstream::{Connector, PoolStream, UpstreamProxy};
use crate::exchange::ServerCertificate;
use crate::net::{keyed_hash, tls_certificate};

/// Idle upstream connections are closed after this (hyper-util's default, kept).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// The request extension saying where a request's connection goes when that is not
/// the host its target names: the address of the tunnel it came through (a SOCKS5
/// client that resolved the name itself, a connection redirected to the proxy),
/// while the target names the server as the client did (its `Host`, `:authority`),
/// which is also the TLS server name towards it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectTo(pub Authority);

/// Where a connection goes: the pool's key. Equal and hashed as `http`'s own
/// types are (the authority without regard to case), only cheaper: the authority's
/// bytes are compared whole first and hashed eight at a time, where `Authority`
/// compares and hashes them one by one (twice a request: checkout and park).
#[derive(Clone)]
struct Key {
    scheme: Scheme,
    authority: Authority,
    /// The address connections go to, when not `authority`'s host ([`ConnectTo`]).
    address: Option<Authority>,
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.scheme == other.scheme
            && (self.authority.as_str() == other.authority.as_str()
                || self.authority == other.authority)
            // Byte for byte, as hashed (addresses are the tunnel's text).
            && self.address.as_ref().map(Authority::as_str)
                == other.address.as_ref().map(Authority::as_str)
    }
}

impl Eq for Key {}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.scheme.hash(state);
        let bytes = self.authority.as_str().as_bytes();
        state.write_usize(bytes.len());
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            state.write_u64(ascii_lowercase_word(u64::from_le_bytes(word)));
        }
        if let Some(address) = &self.address {
            address.as_str().hash(state);
        }
    }
}

/// The eight bytes of `word` with `A`–`Z` lowered, all at once: a byte's top bit
/// marks it upper case when it is at least `A`, at most `Z`, and ASCII.
fn ascii_lowercase_word(word: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const TOP: u64 = 0x8080_8080_8080_8080;
    let low = word & LOW7;
    let at_least_a = low + 0x3f3f_3f3f_3f3f_3f3f; // 0x80 - b'A'
    let above_z = low + 0x2525_2525_2525_2525; // 0x80 - b'Z' - 1
    let upper = at_least_a & !above_z & !word & TOP;
    word | (upper >> 2)
}

/// An HTTP/1 connection in the pool: idle, or still reading the response it was
/// put back after (it is not ready until that ends).
struct Parked {
    tx: http1::SendRequest<Body>,
    since: Instant,
    server: Seen,
}

#[derive(Default)]
struct Entry {
    http1: Vec<Parked>,
    /// The server's HTTP/2 connection, shared by all requests to it.
    http2: Option<(http2::SendRequest<Body>, Seen)>,
}

/// What a connection's server is; it goes with each response of the connection as
/// an extension.
type Seen = UpstreamServer;

/// The response extension saying which server answered: the address the proxy
/// connected to (`None` through an upstream proxy, which chose it) and the
/// certificate it presented over TLS.
#[derive(Debug, Clone)]
pub struct UpstreamServer(pub Arc<ServerFacts>);

/// See [`UpstreamServer`].
#[derive(Debug)]
pub struct ServerFacts {
    pub address: Option<SocketAddr>,
    pub certificate: Option<Arc<ServerCertificate>>,
}

/// A connection taken for one request.
enum Sender {
    Http1(http1::SendRequest<Body>, Seen),
    Http2(http2::SendRequest<Body>, Seen),
}

/// The upstream client of one proxy run.
pub struct Pool {
    connector: Connector,
    /// The upstream proxy, which plain HTTP requests are sent to in absolute form
    /// (the connector tunnels the rest through it).
    proxy: Option<Arc<UpstreamProxy>>,
    http1: http1::Builder,
    http2: http2::Builder<TokioExecutor>,
    /// foldhash under a secret key (`net::keyed_hash`): the client names the
    /// servers, so it must not be able to choose colliding keys.
    entries: Mutex<HashMap<Key, Entry, SeedableRandomState>>,
    /// Set once the task closing idle connections runs.
    reaper: std::sync::Once,
}

/// Why a request got no response: reads as hyper-util's client error did.
#[derive(Debug)]
pub struct Error {
    kind: Kind,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// hyper-util's names, as its `Display` printed them.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Connect,
    SendRequest,
    Canceled,
    UserAbsoluteUriRequired,
}

impl Error {
    fn new(kind: Kind, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
        Error {
            kind,
            source: Some(source.into()),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "client error ({:?})", self.kind)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|e| &**e as _)
    }
}

impl Pool {
    /// Each connection's server address and TLS certificate go in its responses'
    /// extensions ([`UpstreamServer`]).
    pub fn new(connector: Connector, proxy: Option<Arc<UpstreamProxy>>) -> Arc<Pool> {
        let mut http1 = http1::Builder::new();
        http1.title_case_headers(true).preserve_header_case(true);
        Arc::new(Pool {
            connector,
            proxy,
            http1,
            http2: http2::Builder::new(TokioExecutor::new()),
            entries: Mutex::new(HashMap::with_hasher(keyed_hash::keyed_state())),
            reaper: std::sync::Once::new(),
        })
    }

    /// Sends `req` (an absolute-form target, without `Host`) to its server over a
    /// pooled connection or a new one. `client_host` is the `Host` the client sent:
    /// HTTP/1 servers get that value itself when it is what the target gives.
    pub async fn request(
        self: &Arc<Self>,
        req: Request<Body>,
        client_host: Option<HeaderValue>,
    ) -> Result<Response<Incoming>, Error> {
        let key = match (req.uri().scheme(), req.uri().authority()) {
            (Some(scheme), Some(authority)) => Key {
                scheme: scheme.clone(),
                authority: authority.clone(),
                address: req
                    .extensions()
                    .get::<ConnectTo>()
                    .map(|c| c.0.clone())
                    .filter(|a| a != authority),
            },
            _ => {
                return Err(Error {
                    kind: Kind::UserAbsoluteUriRequired,
                    source: None,
                })
            }
        };
        let (sender, reused) = match self.checkout(&key) {
            Some(s) => (s, true),
            // Boxed: the connect path's future (TCP, TLS, handshakes) is large and
            // rare; every request's future holds this one.
            None => (Box::pin(self.connect(&key)).await?, false),
        };
        match self.send(&key, sender, req, client_host).await {
            Ok(res) => self.not_refused(&key, res),
            // Not sent at all: a pooled connection the server had closed. Once more,
            // on a fresh connection (as hyper-util's `retry_canceled_requests`).
            Err((_, Some(mut back))) if reused => {
                restore_target(&key, back.uri_mut());
                let sender = Box::pin(self.connect(&key)).await?;
                // The request comes back with the `Host` the first send set.
                let res = self.send(&key, sender, back, None).await;
                self.not_refused(&key, res.map_err(|(e, _)| e)?)
            }
            Err((error, _)) => Err(error),
        }
    }

    /// The proxy a request to `key` is sent to as it is (plain HTTP when there is an
    /// upstream HTTP proxy; a SOCKS5 one tunnels it).
    fn forwarded_via(&self, key: &Key) -> Option<&UpstreamProxy> {
        self.proxy
            .as_deref()
            .filter(|p| key.scheme == Scheme::HTTP && p.takes_requests())
    }

    /// `res`, unless the upstream proxy answered it for itself (its `407`): that is
    /// a failure to reach the server, not the server's answer.
    fn not_refused(&self, key: &Key, res: Response<Incoming>) -> Result<Response<Incoming>, Error> {
        match self
            .forwarded_via(key)
            .and_then(|p| p.refusal(res.status()))
        {
            Some(refusal) => Err(Error::new(Kind::Connect, refusal)),
            None => Ok(res),
        }
    }

    /// A pooled connection to `key` ready for a request, if there is one. Closed and
    /// expired ones are dropped on the way; busy HTTP/1 ones stay.
    fn checkout(&self, key: &Key) -> Option<Sender> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get_mut(key)?;
        if let Some((tx, server)) = &entry.http2 {
            if !tx.is_closed() {
                return Some(Sender::Http2(tx.clone(), server.clone()));
            }
            entry.http2 = None;
        }
        let now = Instant::now();
        let mut i = entry.http1.len();
        while i > 0 {
            i -= 1;
            let p = &entry.http1[i];
            if p.tx.is_closed() || now.saturating_duration_since(p.since) > IDLE_TIMEOUT {
                entry.http1.swap_remove(i);
            } else if p.tx.is_ready() {
                // The most recently parked ready one (LIFO, as hyper-util's pool).
                let p = entry.http1.swap_remove(i);
                return Some(Sender::Http1(p.tx, p.server));
            }
        }
        None
    }

    /// Sends on `sender`; an HTTP/1 connection goes back to the pool with the
    /// response head. On failure, the request if it was never sent.
    async fn send(
        &self,
        key: &Key,
        sender: Sender,
        mut req: Request<Body>,
        client_host: Option<HeaderValue>,
    ) -> Result<Response<Incoming>, (Error, Option<Request<Body>>)> {
        let (sent, server) = match sender {
            Sender::Http1(mut tx, server) => {
                if !req.headers().contains_key(header::HOST) {
                    if let Some(host) = host_header(req.uri(), client_host) {
                        req.headers_mut().insert(header::HOST, host);
                    }
                }
                match self.forwarded_via(key) {
                    Some(proxy) => proxy.authorize(req.headers_mut()),
                    None => origin_form(req.uri_mut()),
                }
                let sent = tx.try_send_request(req).await;
                if sent.is_ok() && !tx.is_closed() {
                    self.park(key, tx, server.clone());
                }
                (sent, server)
            }
            Sender::Http2(mut tx, server) => (tx.try_send_request(req).await, server),
        };
        sent.map(|mut res| {
            res.extensions_mut().insert(server);
            res
        })
        .map_err(|mut e| match e.take_message() {
            Some(req) => (Error::new(Kind::Canceled, e.into_error()), Some(req)),
            None => (Error::new(Kind::SendRequest, e.into_error()), None),
        })
    }

    /// Puts an HTTP/1 connection back: ready for the next request once its
    /// response has been read.
    fn park(&self, key: &Key, tx: http1::SendRequest<Body>, server: Seen) {
        let parked = Parked {
            tx,
            since: Instant::now(),
            server,
        };
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get_mut(key) {
            Some(entry) => entry.http1.push(parked),
            None => {
                entries.insert(
                    key.clone(),
                    Entry {
                        http1: vec![parked],
                        http2: None,
                    },
                );
            }
        }
    }

    /// A new connection to `key` (TCP, TLS with ALPN, the HTTP handshake), its
    /// connection task spawned. An HTTP/2 one is shared from now on.
    async fn connect(self: &Arc<Self>, key: &Key) -> Result<Sender, Error> {
        self.reaper.call_once(|| spawn_reaper(Arc::downgrade(self)));
        let mut parts = Parts::default();
        parts.scheme = Some(key.scheme.clone());
        parts.authority = Some(key.authority.clone());
        parts.path_and_query = Some(hyper::http::uri::PathAndQuery::from_static("/"));
        let dst = Uri::from_parts(parts).map_err(|e| Error::new(Kind::Connect, e))?;
        let io = match &key.address {
            None => self.connector.connect(dst).await,
            Some(address) => self.connector.connect_to(&dst, address).await,
        }
        .map_err(|e| Error::new(Kind::Connect, e))?;
        let server = UpstreamServer(Arc::new(ServerFacts {
            address: self.proxy.is_none().then(|| peer_address(&io)).flatten(),
            certificate: leaf_certificate(&io),
        }));
        if io.connected().is_negotiated_h2() {
            let (mut tx, conn) = self
                .http2
                .handshake(io)
                .await
                .map_err(|e| Error::new(Kind::SendRequest, e))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            tx.ready()
                .await
                .map_err(|e| Error::new(Kind::SendRequest, e))?;
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            entries.entry(key.clone()).or_default().http2 = Some((tx.clone(), server.clone()));
            return Ok(Sender::Http2(tx, server));
        }
        let (mut tx, conn) = self
            .http1
            .handshake(io)
            .await
            .map_err(|e| Error::new(Kind::SendRequest, e))?;
        // The connection's own error says more than the sender's "channel closed".
        let (err_tx, err_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                let _ = err_tx.send(e);
            }
        });
        match tx.ready().await {
            Ok(()) => Ok(Sender::Http1(tx, server)),
            Err(e) if e.is_closed() => match err_rx.await {
                Ok(conn_err) => Err(Error::new(Kind::SendRequest, conn_err)),
                Err(_) => Err(Error::new(Kind::SendRequest, e)),
            },
            Err(e) => Err(Error::new(Kind::SendRequest, e)),
        }
    }

    /// Drops closed connections and those idle past [`IDLE_TIMEOUT`].
    fn prune(&self) {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|_, entry| {
            entry.http1.retain(|p| {
                !p.tx.is_closed() && now.saturating_duration_since(p.since) <= IDLE_TIMEOUT
            });
            if entry.http2.as_ref().is_some_and(|(tx, _)| tx.is_closed()) {
                entry.http2 = None;
            }
            !entry.http1.is_empty() || entry.http2.is_some()
        });
    }
}

/// The certificate the server of a new TLS connection presented; none over plain
/// TCP, and none that does not parse (the handshake verified it all the same).
fn leaf_certificate<T>(io: &MaybeHttpsStream<T>) -> Option<Arc<ServerCertificate>> {
    let MaybeHttpsStream::Https(tls) = io else {
        return None;
    };
    let chain = tls.inner().get_ref().1.peer_certificates()?;
    let leaf = chain.first()?;
    let chain = u32::try_from(chain.len()).unwrap_or(u32::MAX);
    tls_certificate::leaf_certificate(leaf, chain)
        .ok()
        .map(Arc::new)
}

/// The address a new connection's socket is connected to.
fn peer_address(io: &PoolStream) -> Option<SocketAddr> {
    let stream = match io {
        MaybeHttpsStream::Http(tcp) => tcp.inner(),
        MaybeHttpsStream::Https(tls) => tls.inner().get_ref().0.inner().inner(),
    };
    stream.peer_addr()
}

/// Closes idle connections every [`IDLE_TIMEOUT`] while the pool lives.
fn spawn_reaper(pool: Weak<Pool>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(IDLE_TIMEOUT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            match pool.upgrade() {
                Some(pool) => pool.prune(),
                None => return,
            }
        }
    });
}

/// `Host` for an HTTP/1 request to `uri`: the host, and the port unless it is the
/// scheme's default (as hyper-util wrote it). `client`'s value is taken as it is when
/// its bytes are those (most clients write it so): no copy and no validation.
fn host_header(uri: &Uri, client: Option<HeaderValue>) -> Option<HeaderValue> {
    let authority = uri.authority()?;
    let secure = matches!(uri.scheme_str(), Some("https" | "wss"));
    let default_port = match authority.port_u16() {
        None => true,
        Some(port) => matches!((port, secure), (443, true) | (80, false)),
    };
    // Without user info the authority is the host and the port as written.
    if !authority.as_str().contains('@') {
        let text = match default_port {
            true => authority.host(),
            false => authority.as_str(),
        };
        if let Some(same) = client.filter(|v| v.as_bytes() == text.as_bytes()) {
            return Some(same);
        }
        return HeaderValue::from_str(text).ok();
    }
    match (default_port, authority.port()) {
        (false, Some(port)) => HeaderValue::from_str(&format!("{}:{port}", authority.host())).ok(),
        _ => HeaderValue::from_str(authority.host()).ok(),
    }
}

/// An HTTP/1 target: path and query only.
fn origin_form(uri: &mut Uri) {
    *uri = match uri.path_and_query() {
        Some(path) if path.as_str() != "/" => {
            let mut parts = Parts::default();
            parts.path_and_query = Some(path.clone());
            Uri::from_parts(parts).unwrap_or_default()
        }
        _ => Uri::default(),
    };
}

/// The absolute target again, for a retry after [`origin_form`].
fn restore_target(key: &Key, uri: &mut Uri) {
    if uri.scheme().is_some() {
        return;
    }
    let mut parts = Parts::default();
    parts.scheme = Some(key.scheme.clone());
    parts.authority = Some(key.authority.clone());
    parts.path_and_query = uri.path_and_query().cloned();
    if let Ok(u) = Uri::from_parts(parts) {
        *uri = u;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(uri: &str) -> Option<String> {
        host_header(&uri.parse().unwrap(), None).map(|v| v.to_str().unwrap().to_string())
    }

    #[test]
    fn host_header_leaves_out_default_ports_only() {
        assert_eq!(host("https://a.example/x").as_deref(), Some("a.example"));
        assert_eq!(
            host("https://a.example:443/x").as_deref(),
            Some("a.example")
        );
        assert_eq!(host("http://a.example:80/x").as_deref(), Some("a.example"));
        assert_eq!(
            host("https://a.example:80/x").as_deref(),
            Some("a.example:80")
        );
        assert_eq!(
            host("http://a.example:443/x").as_deref(),
            Some("a.example:443")
        );
        assert_eq!(
            host("http://127.0.0.1:8080/").as_deref(),
            Some("127.0.0.1:8080")
        );
        assert_eq!(host("http://u@[::1]:81/").as_deref(), Some("[::1]:81"));
    }

    /// The client's `Host` goes upstream only when its bytes are what the target
    /// gives; any other spelling is replaced as before.
    #[test]
    fn host_header_takes_the_clients_value_only_when_it_is_the_same() {
        let uri: Uri = "https://a.example:8443/x".parse().unwrap();
        let host = |client: &'static str| {
            host_header(&uri, Some(HeaderValue::from_static(client)))
                .map(|v| v.to_str().unwrap().to_string())
        };
        assert_eq!(host("a.example:8443").as_deref(), Some("a.example:8443"));
        assert_eq!(host("A.example:8443").as_deref(), Some("a.example:8443"));
        assert_eq!(host("a.example").as_deref(), Some("a.example:8443"));
        assert_eq!(host("other.example").as_deref(), Some("a.example:8443"));
    }

    /// Keys are equal and hash alike exactly when `http`'s own scheme and authority
    /// are equal (case-insensitive), at every length around the 8-byte words.
    #[test]
    fn keys_agree_with_https_own_equality() {
        use std::hash::BuildHasher;
        let state = keyed_hash::keyed_state();
        let authorities = [
            "a",
            "A",
            "b",
            "ab.cd",
            "AB.cd",
            "example.com",
            "EXAMPLE.com",
            "example.co",
            "127.0.0.1:8443",
            "127.0.0.1:8444",
            "a.example:8443",
            "A.EXAMPLE:8443",
            "u@host.example:81",
            "U@HOST.example:81",
            "abcdefgh",
            "ABCDEFGH",
            "abcdefg",
            "abcdefghi",
            "ABCDEFGHI",
        ];
        let key = |scheme: &Scheme, a: &str| Key {
            scheme: scheme.clone(),
            authority: Authority::try_from(a).unwrap(),
            address: None,
        };
        // Connections to another address are others, to the same one the same.
        let to = |k: Key, a: &'static str| Key {
            address: Some(Authority::from_static(a)),
            ..k
        };
        let k = key(&Scheme::HTTPS, "host.example");
        assert!(to(k.clone(), "192.0.2.1:443") != k);
        assert!(to(k.clone(), "192.0.2.1:443") != to(k.clone(), "192.0.2.2:443"));
        let (a, b) = (to(k.clone(), "192.0.2.1:443"), to(k, "192.0.2.1:443"));
        assert!(a == b);
        assert_eq!(state.hash_one(&a), state.hash_one(&b));
        for s1 in [Scheme::HTTP, Scheme::HTTPS] {
            for s2 in [Scheme::HTTP, Scheme::HTTPS] {
                for a1 in authorities {
                    for a2 in authorities {
                        let (k1, k2) = (key(&s1, a1), key(&s2, a2));
                        let same = s1 == s2 && k1.authority == k2.authority;
                        assert_eq!(k1 == k2, same, "{s1}://{a1} vs {s2}://{a2}");
                        if same {
                            assert_eq!(state.hash_one(&k1), state.hash_one(&k2), "{a1} {a2}");
                        }
                    }
                }
            }
        }
    }

    /// The word-wise lowering is `to_ascii_lowercase` of each byte, for every byte
    /// value in every position.
    #[test]
    fn words_are_lowered_as_bytes_are() {
        for b in 0..=255u8 {
            for pos in 0..8 {
                let mut bytes = *b"aZ@[`{\x7f\x80";
                bytes[pos] = b;
                let expected = bytes.map(|c| c.to_ascii_lowercase());
                let got = ascii_lowercase_word(u64::from_le_bytes(bytes)).to_le_bytes();
                assert_eq!(got, expected, "byte {b:#x} at {pos}");
            }
        }
    }

    #[test]
    fn targets_go_to_origin_form_and_back() {
        let key = Key {
            scheme: Scheme::HTTPS,
            authority: Authority::from_static("a.example:8443"),
            address: None,
        };
        let mut uri: Uri = "https://a.example:8443/p?q=1".parse().unwrap();
        origin_form(&mut uri);
        assert_eq!(uri.to_string(), "/p?q=1");
        restore_target(&key, &mut uri);
        assert_eq!(uri.to_string(), "https://a.example:8443/p?q=1");
        let mut root: Uri = "https://a.example:8443".parse().unwrap();
        origin_form(&mut root);
        assert_eq!(root.to_string(), "/");
    }

    /// A plain HTTP/1 server on 127.0.0.1 answering every request on a connection
    /// with `ok`, closing each connection after `per_conn` answers. Counts accepts.
    async fn server(per_conn: usize) -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepts.clone();
        tokio::spawn(async move {
            loop {
                let (mut tcp, _) = listener.accept().await.unwrap();
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    for _ in 0..per_conn {
                        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                            let mut chunk = [0u8; 1024];
                            match tcp.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        buf.clear();
                        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                        if tcp.write_all(ok).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (port, accepts)
    }

    async fn get(pool: &Arc<Pool>, port: u16) -> Result<String, String> {
        use http_body_util::BodyExt;
        let req = Request::get(format!("http://127.0.0.1:{port}/x"))
            .body(crate::proxy::body::empty())
            .unwrap();
        let res = pool.request(req, None).await.map_err(|e| e.to_string())?;
        let body = res.into_body().collect().await.map_err(|e| e.to_string())?;
        Ok(String::from_utf8_lossy(&body.to_bytes()).into_owned())
    }

    fn pool() -> Arc<Pool> {
        let opts = crate::proxy::upstream::UpstreamOptions::default();
        let connector =
            crate::proxy::upstream::connector(&opts, None, crate::proxy::tls_provider()).unwrap();
        Pool::new(connector, None)
    }

    #[tokio::test]
    async fn a_connection_is_reused_and_a_closed_one_replaced() {
        let (port, accepts) = server(usize::MAX).await;
        let pool = pool();
        for _ in 0..3 {
            assert_eq!(get(&pool, port).await.as_deref(), Ok("ok"));
        }
        assert_eq!(accepts.load(std::sync::atomic::Ordering::SeqCst), 1);

        // The server closes after each answer: every request still gets one.
        let (port, accepts) = server(1).await;
        for _ in 0..3 {
            assert_eq!(get(&pool, port).await.as_deref(), Ok("ok"));
        }
        assert_eq!(accepts.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_refused_connection_reads_as_a_connect_error() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let err = get(&pool(), port).await.unwrap_err();
        assert_eq!(err, "client error (Connect)");
    }

    #[test]
    fn errors_read_as_hyper_utils() {
        let e = Error::new(
            Kind::Connect,
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused"),
        );
        assert_eq!(e.to_string(), "client error (Connect)");
        assert_eq!(
            std::error::Error::source(&e)
                .map(|s| s.to_string())
                .as_deref(),
            Some("refused")
        );
    }
}
