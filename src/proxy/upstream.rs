//! The connection to the real servers: TLS verified against the webpki roots plus
//! `--upstream-ca` certificates, or not at all with
//! `--danger-accept-invalid-upstream-certs` (labs only); straight to the server, or
//! through an upstream proxy (`--upstream-proxy`, [`UpstreamProxy`]): an HTTP proxy
//! spoken to in the clear or over TLS, or a SOCKS5 proxy.
//! TCP_NODELAY is set on every upstream socket: without it a request written in two
//! segments waits for the delayed ACK (~40 ms per new connection, measured in
//! issue 4).

use std::fmt;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::Context;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::http::uri::{Authority, Scheme};
use hyper::Uri;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder, MaybeHttpsStream};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tower_service::Service;

/// Time allowed to open a TCP connection to a server before the client gets a 502.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How upstream servers are reached and trusted.
#[derive(Debug, Clone, Default)]
pub struct UpstreamOptions {
    /// Extra trusted CA certificates (PEM files), for internal or test servers.
    pub extra_ca: Vec<PathBuf>,
    /// Accept any upstream certificate (`--danger-accept-invalid-upstream-certs`).
    pub danger_accept_invalid_certs: bool,
    /// The HTTP proxy every upstream connection goes through (`--upstream-proxy`).
    pub proxy: Option<UpstreamProxy>,
}

/// Everything a proxy run needs to reach the servers.
pub struct Upstream {
    /// For HTTP(S) requests (the pool's connections).
    pub connector: Connector,
    /// For `wss://` servers.
    pub ws_tls: ClientConfig,
    /// For tunnels passed through and WebSockets ([`Upstream::connect`]).
    pub proxy: Option<Arc<UpstreamProxy>>,
}

impl Upstream {
    pub fn new(opts: &UpstreamOptions, provider: Arc<CryptoProvider>) -> anyhow::Result<Upstream> {
        let proxy = match opts.proxy.clone() {
            // The proxy's certificate is trusted as a server's would be.
            Some(p) if p.protocol == ProxyProtocol::Https => {
                Some(p.with_tls(Arc::new(client_config(opts, provider.clone())?)))
            }
            p => p,
        };
        let proxy = proxy.map(Arc::new);
        Ok(Upstream {
            connector: connector(opts, proxy.clone(), provider.clone())?,
            ws_tls: client_config(opts, provider)?,
            proxy,
        })
    }

    /// The server's own address of a connection [`Upstream::connect`] opened: `None`
    /// through an upstream proxy (which chose it).
    pub fn server_address(&self, stream: &UpstreamStream) -> Option<std::net::SocketAddr> {
        self.proxy.is_none().then(|| stream.peer_addr()).flatten()
    }

    /// A connection to `host:port` (`host` without brackets): TCP, or a tunnel
    /// through the upstream proxy if there is one.
    pub async fn connect(&self, host: &str, port: u16) -> io::Result<UpstreamStream> {
        match &self.proxy {
            Some(proxy) => proxy.connect(host, port).await,
            None => {
                let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host, port)))
                    .await
                    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
                tcp.set_nodelay(true)?;
                Ok(UpstreamStream::Tcp(tcp))
            }
        }
    }
}

/// A connection towards a server: TCP, to the server or to an `http://` or
/// `socks5://` upstream proxy, or TLS to an `https://` upstream proxy (what goes
/// through it, a `CONNECT` tunnel or plain HTTP, is inside that TLS).
#[derive(Debug)]
pub enum UpstreamStream {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl UpstreamStream {
    fn tcp(&self) -> &TcpStream {
        match self {
            UpstreamStream::Tcp(tcp) => tcp,
            UpstreamStream::Tls(tls) => tls.get_ref().0,
        }
    }

    /// The address its socket is connected to: the server's, or the upstream
    /// proxy's when there is one.
    pub fn peer_addr(&self) -> Option<std::net::SocketAddr> {
        self.tcp().peer_addr().ok()
    }
}

impl AsyncRead for UpstreamStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            UpstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for UpstreamStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamStream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            UpstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamStream::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            UpstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            UpstreamStream::Tcp(s) => s.is_write_vectored(),
            UpstreamStream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Tcp(s) => Pin::new(s).poll_flush(cx),
            UpstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            UpstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

impl hyper_util::client::legacy::connect::Connection for UpstreamStream {
    fn connected(&self) -> hyper_util::client::legacy::connect::Connected {
        self.tcp().connected()
    }
}

/// The TLS client configuration for upstream connections.
pub fn client_config(
    opts: &UpstreamOptions,
    provider: Arc<CryptoProvider>,
) -> anyhow::Result<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let cfg = if opts.danger_accept_invalid_certs {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for path in &opts.extra_ca {
            for cert in read_pem_certs(path)? {
                roots.add(cert).with_context(|| {
                    format!(
                        "{}: a certificate is not a usable trust anchor",
                        path.display()
                    )
                })?;
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    // No ALPN here: the connector offers h2 and http/1.1 itself.
    Ok(cfg)
}

/// The connector of the core's upstream client, for every upstream request.
pub fn connector(
    opts: &UpstreamOptions,
    proxy: Option<Arc<UpstreamProxy>>,
    provider: Arc<CryptoProvider>,
) -> anyhow::Result<Connector> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    let dialer = Dialer { http, proxy };
    let mut tls = client_config(opts, provider)?;
    let https = HttpsConnectorBuilder::new()
        .with_tls_config(tls.clone())
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(dialer.clone());
    // What the builder offers: h2 first, as `enable_http2` after `enable_http1` sets.
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Connector {
        https,
        dialer,
        tls: Arc::new(tls),
    })
}

/// A connection the pool opens: TLS to the server for `https`, over [`Dialer`].
pub type PoolStream = MaybeHttpsStream<TokioIo<UpstreamStream>>;

/// The pool's connector: to the host its URI names (hyper-rustls over [`Dialer`]),
/// or to another address with the URI's host as the TLS server name
/// ([`Connector::connect_to`]).
#[derive(Clone)]
pub struct Connector {
    https: HttpsConnector<Dialer>,
    dialer: Dialer,
    /// The same TLS configuration as `https`'s, for [`Connector::connect_to`].
    tls: Arc<ClientConfig>,
}

impl Connector {
    /// The hyper-rustls connector inside, for a client of its own (the no-op
    /// hudsucker baseline of the benchmarks connects as the proxy does).
    pub fn https(&self) -> HttpsConnector<Dialer> {
        self.https.clone()
    }

    /// A connection to the host `dst` names.
    pub async fn connect(&self, dst: Uri) -> Result<PoolStream, BoxError> {
        self.https.clone().call(dst).await
    }

    /// A connection to `address` (a tunnel's: the address the client connected to)
    /// for requests to `dst`, whose host is the server's name: TLS for `https` with
    /// that name as server name (SNI) and certificate check, as the client itself did
    /// with the address it resolved.
    pub async fn connect_to(&self, dst: &Uri, address: &Authority) -> Result<PoolStream, BoxError> {
        let https = dst.scheme() == Some(&Scheme::HTTPS);
        let mut parts = hyper::http::uri::Parts::default();
        parts.scheme = dst.scheme().cloned();
        parts.authority = Some(address.clone());
        parts.path_and_query = Some(hyper::http::uri::PathAndQuery::from_static("/"));
        let to = Uri::from_parts(parts)?;
        let tcp = self.dialer.clone().call(to).await?;
        if !https {
            return Ok(MaybeHttpsStream::Http(tcp));
        }
        let host = dst.host().unwrap_or_default();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| format!("{host} is no TLS server name"))?;
        let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(name, TokioIo::new(tcp))
            .await?;
        Ok(MaybeHttpsStream::Https(TokioIo::new(tls)))
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The connecting half of the pool's connector, below its TLS to the server: TCP to
/// the server itself, or through the upstream proxy (a tunnel for `https`, and for
/// `http` through a SOCKS5 proxy; for `http` through an HTTP proxy, a connection to
/// the proxy, which the pool then sends absolute-form requests to).
#[derive(Clone)]
pub struct Dialer {
    http: HttpConnector,
    proxy: Option<Arc<UpstreamProxy>>,
}

impl Service<Uri> for Dialer {
    type Response = TokioIo<UpstreamStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let Some(proxy) = self.proxy.clone() else {
            let direct = self.http.call(dst);
            return Box::pin(async move {
                Ok(TokioIo::new(UpstreamStream::Tcp(
                    direct.await?.into_inner(),
                )))
            });
        };
        if dst.scheme() == Some(&Scheme::HTTPS) || !proxy.takes_requests() {
            return Box::pin(async move {
                let host = dst.host().unwrap_or_default();
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let default_port = if dst.scheme() == Some(&Scheme::HTTPS) {
                    443
                } else {
                    80
                };
                let tunnel = proxy
                    .connect(host, dst.port_u16().unwrap_or(default_port))
                    .await?;
                Ok(TokioIo::new(tunnel))
            });
        }
        Box::pin(async move {
            let opened = tokio::time::timeout(CONNECT_TIMEOUT, proxy.open()).await;
            let stream = opened
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))
                .and_then(|r| r)
                .map_err(|e| format!("upstream proxy {}: {e}", proxy.name))?;
            Ok(TokioIo::new(stream))
        })
    }
}

/// A proxy that every upstream connection goes through (`--upstream-proxy`,
/// mitmproxy's upstream mode), for labs whose only way out is a corporate proxy or
/// an `ssh -D` tunnel: an HTTP proxy spoken to in the clear (`http://`) or over TLS
/// (`https://`, its certificate checked as a server's), or a SOCKS5 proxy
/// (`socks5://`).
/// TLS (intercepted or passed through) and WebSockets go through a `CONNECT` tunnel,
/// so the server's certificate is checked end to end as without it. Plain HTTP
/// requests go to an HTTP proxy in absolute form, as browsers send them (proxies
/// commonly allow `CONNECT` to port 443 only), and through a tunnel of a SOCKS5 one.
#[derive(Clone)]
pub struct UpstreamProxy {
    /// As `connect` takes it: an IPv6 address without brackets.
    host: String,
    port: u16,
    /// `host:port` as given, for messages (never the credentials).
    name: String,
    protocol: ProxyProtocol,
    /// For `https://`: the TLS configuration ([`UpstreamProxy::with_tls`]).
    tls: Option<Arc<ClientConfig>>,
    /// From the URL's user information.
    credentials: Option<Credentials>,
}

/// How the proxy is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyProtocol {
    Http,
    Https,
    Socks5,
}

/// A user name and password for the upstream proxy (never shown).
#[derive(Clone)]
struct Credentials {
    user: Vec<u8>,
    password: Vec<u8>,
    /// `Basic base64(user:password)`, marked sensitive.
    basic: HeaderValue,
}

/// The longest answer head to a `CONNECT` read: a proxy's is a few hundred bytes.
const MAX_ANSWER_HEAD: usize = 16 * 1024;

impl fmt::Debug for UpstreamProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamProxy")
            .field("name", &self.name)
            .field("protocol", &self.protocol)
            .field("credentials", &self.credentials.is_some())
            .finish()
    }
}

impl UpstreamProxy {
    /// `http://[USER:PASS@]HOST:PORT`, `https://…` or `socks5://…` (user and
    /// password percent-encoded). Errors never repeat the text, which may hold a
    /// password. An `https://` proxy needs [`UpstreamProxy::with_tls`] before it is
    /// used.
    pub fn parse(url: &str) -> Result<UpstreamProxy, String> {
        const FORM: &str = "http://[USER:PASS@]HOST:PORT (or https://, socks5://)";
        let uri: Uri = url
            .parse()
            .map_err(|_| format!("not a URL of the form {FORM}"))?;
        let protocol = match uri.scheme_str() {
            Some("http") => ProxyProtocol::Http,
            Some("https") => ProxyProtocol::Https,
            // Host names are always sent to the proxy to resolve (see `client_connect`).
            Some("socks5" | "socks5h") => ProxyProtocol::Socks5,
            _ => return Err(format!("not a URL of the form {FORM}")),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("no host: give {FORM}"))?;
        if uri.path_and_query().is_some_and(|p| p.as_str() != "/") {
            return Err(format!("a path or query is not allowed: give {FORM}"));
        }
        let port = authority
            .port_u16()
            .ok_or_else(|| format!("no port: give {FORM}"))?;
        let host = authority.host();
        if host.is_empty() {
            return Err(format!("no host: give {FORM}"));
        }
        let name = format!("{host}:{port}");
        let credentials = match authority.as_str().rsplit_once('@') {
            None => None,
            Some((user_info, _)) => Some(credentials(user_info)?),
        };
        if protocol == ProxyProtocol::Socks5 {
            if let Some(c) = &credentials {
                if c.user.len() > 255 || c.password.len() > 255 {
                    return Err("SOCKS5 credentials are at most 255 bytes each".into());
                }
            }
        }
        Ok(UpstreamProxy {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            name,
            protocol,
            tls: None,
            credentials,
        })
    }

    /// The TLS configuration an `https://` proxy is spoken to with.
    pub fn with_tls(self, config: Arc<ClientConfig>) -> UpstreamProxy {
        UpstreamProxy {
            tls: Some(config),
            ..self
        }
    }

    pub fn protocol(&self) -> ProxyProtocol {
        self.protocol
    }

    /// True when plain HTTP requests go to the proxy itself, in absolute form (an
    /// HTTP proxy); false when they go through a tunnel (SOCKS5).
    pub fn takes_requests(&self) -> bool {
        self.protocol != ProxyProtocol::Socks5
    }

    /// `host:port`, without credentials.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True when credentials are sent.
    pub fn has_credentials(&self) -> bool {
        self.credentials.is_some()
    }

    /// True when the proxy is `local` itself (a loop): the same port on a loopback
    /// address, `localhost`, or `local`'s own address.
    pub fn is_at(&self, local: std::net::SocketAddr) -> bool {
        if self.port != local.port() {
            return false;
        }
        match self.host.parse::<std::net::IpAddr>() {
            Ok(ip) => {
                ip == local.ip()
                    || (ip.is_loopback()
                        && (local.ip().is_loopback() || local.ip().is_unspecified()))
            }
            Err(_) => self.host.eq_ignore_ascii_case("localhost"),
        }
    }

    /// Adds the proxy's credentials to a request sent to it.
    pub fn authorize(&self, headers: &mut HeaderMap) {
        if let Some(c) = &self.credentials {
            headers.insert(header::PROXY_AUTHORIZATION, c.basic.clone());
        }
    }

    /// The error for an answer of `status` to a request sent to the proxy, if it
    /// is one the client must not take for the server's: `407` (the credentials).
    pub fn refusal(&self, status: hyper::StatusCode) -> Option<io::Error> {
        (status == hyper::StatusCode::PROXY_AUTHENTICATION_REQUIRED).then(|| {
            io::Error::other(format!(
                "upstream proxy {} answered the request with {status}: {}",
                self.name,
                self.credentials_advice()
            ))
        })
    }

    /// What a `407` means here.
    fn credentials_advice(&self) -> &'static str {
        match self.credentials {
            Some(_) => "the credentials of --upstream-proxy were refused",
            None => "it asks for credentials: give --upstream-proxy http://USER:PASS@HOST:PORT",
        }
    }

    /// A connection to the proxy: TCP, then TLS for an `https://` proxy (errors
    /// without the proxy's name, which callers add).
    async fn open(&self) -> io::Result<UpstreamStream> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port)).await?;
        tcp.set_nodelay(true)?;
        if self.protocol != ProxyProtocol::Https {
            return Ok(UpstreamStream::Tcp(tcp));
        }
        let config = self
            .tls
            .clone()
            .ok_or_else(|| io::Error::other("no TLS configuration for an https:// proxy"))?;
        let name = ServerName::try_from(self.host.clone()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "its host is no TLS server name",
            )
        })?;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "TLS to it failed: {e} (its certificate is checked as a server's: \
                         give its CA with --upstream-ca)"
                    ),
                )
            })?;
        Ok(UpstreamStream::Tls(Box::new(tls)))
    }

    /// A tunnel to `host:port` (`host` without brackets) through the proxy: its
    /// `CONNECT` answered `2xx`, the answer's head read and not a byte more (what
    /// follows is the server's, e.g. a banner of a server that speaks first).
    /// Within [`CONNECT_TIMEOUT`].
    pub async fn connect(&self, host: &str, port: u16) -> io::Result<UpstreamStream> {
        let target = match host.contains(':') {
            true => format!("[{host}]:{port}"),
            false => format!("{host}:{port}"),
        };
        if self.protocol == ProxyProtocol::Socks5 {
            let opened = tokio::time::timeout(CONNECT_TIMEOUT, self.socks_connect(host, port));
            return opened
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no answer in time"))
                .and_then(|r| r)
                .map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!(
                            "upstream proxy {} (SOCKS5), CONNECT {target}: {e}",
                            self.name
                        ),
                    )
                });
        }
        let opened = async {
            let mut stream = self.open().await?;
            let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
            if let Some(a) = self
                .credentials
                .as_ref()
                .and_then(|c| c.basic.to_str().ok())
            {
                request.push_str("Proxy-Authorization: ");
                request.push_str(a);
                request.push_str("\r\n");
            }
            request.push_str("\r\n");
            stream.write_all(request.as_bytes()).await?;
            stream.flush().await?;
            let head = read_answer_head(&mut stream).await?;
            Ok::<_, io::Error>((stream, head))
        };
        let in_time = tokio::time::timeout(CONNECT_TIMEOUT, opened).await;
        let (stream, head) = in_time
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "upstream proxy {}: no answer to CONNECT {target} in time",
                        self.name
                    ),
                )
            })?
            .map_err(|e| io::Error::new(e.kind(), format!("upstream proxy {}: {e}", self.name)))?;
        match connect_status(&head) {
            Ok(status) if status.is_success() => Ok(stream),
            Ok(status) if status == hyper::StatusCode::PROXY_AUTHENTICATION_REQUIRED => {
                Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "upstream proxy {} answered CONNECT {target} with {status}: {}",
                        self.name,
                        self.credentials_advice()
                    ),
                ))
            }
            Ok(status) => Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!(
                    "upstream proxy {} answered CONNECT {target} with {status}",
                    self.name
                ),
            )),
            Err(why) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "upstream proxy {}: its answer to CONNECT {target} {why}",
                    self.name
                ),
            )),
        }
    }

    /// A tunnel through a SOCKS5 proxy (RFC 1928; RFC 1929 with credentials): its
    /// answers read exactly, so the server's first bytes stay in the stream. Errors
    /// without the proxy's name, which [`UpstreamProxy::connect`] adds.
    async fn socks_connect(&self, host: &str, port: u16) -> io::Result<UpstreamStream> {
        use crate::net::socks;
        let mut stream = self.open().await?;
        stream
            .write_all(&socks::client_greeting(self.credentials.is_some()))
            .await?;
        let mut choice = [0u8; 2];
        stream.read_exact(&mut choice).await?;
        match choice {
            [socks::VERSION, socks::NO_AUTHENTICATION] => {}
            [socks::VERSION, socks::USER_PASSWORD] => {
                let Some(c) = &self.credentials else {
                    return Err(io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        "it asks for credentials: give --upstream-proxy socks5://USER:PASS@HOST:PORT",
                    ));
                };
                let request = socks::client_credentials(&c.user, &c.password)
                    .ok_or_else(|| io::Error::other("the credentials cannot be sent"))?;
                stream.write_all(&request).await?;
                let mut status = [0u8; 2];
                stream.read_exact(&mut status).await?;
                if status[1] != 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        "the credentials of --upstream-proxy were refused",
                    ));
                }
            }
            [socks::VERSION, socks::NO_ACCEPTABLE_METHOD] => {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    match self.credentials {
                        Some(_) => {
                            "it accepts neither no authentication nor a user name and password"
                        }
                        None => {
                            "it asks for credentials: give --upstream-proxy socks5://USER:PASS@HOST:PORT"
                        }
                    },
                ));
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "its answer is not SOCKS5",
                ))
            }
        }
        let request = socks::client_connect(host, port)
            .ok_or_else(|| io::Error::other("the host name is over 255 bytes"))?;
        stream.write_all(&request).await?;
        let mut head = [0u8; 5];
        stream.read_exact(&mut head).await.map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "it closed the connection instead of answering (OpenSSH's -D does so when it cannot reach the server)",
            ),
            _ => e,
        })?;
        let len = socks::server_reply_len(&head).map_err(|why| {
            io::Error::new(io::ErrorKind::InvalidData, format!("its reply {why}"))
        })?;
        let mut rest = vec![0u8; len - head.len()];
        stream.read_exact(&mut rest).await?;
        match head[1] {
            socks::SUCCEEDED => Ok(stream),
            code => Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("refused: {} ({code})", socks::reply_text(code)),
            )),
        }
    }
}

/// The user name and password of a URL's percent-encoded `user:password`.
fn credentials(user_info: &str) -> Result<Credentials, String> {
    let (user, password) = user_info
        .split_once(':')
        .ok_or("credentials must be USER:PASS")?;
    if user.is_empty() {
        return Err("credentials must be USER:PASS with a user name".into());
    }
    let user: Vec<u8> = percent_encoding::percent_decode_str(user).collect();
    let password: Vec<u8> = percent_encoding::percent_decode_str(password).collect();
    let mut basic = super::handler::basic_authorization(&user, &password)
        .ok_or("credentials cannot be sent")?;
    basic.set_sensitive(true);
    Ok(Credentials {
        user,
        password,
        basic,
    })
}

/// Reads the proxy's answer head exactly, so the server's first bytes stay in the
/// stream: over TCP the bytes are peeked first and only those up to the blank line
/// taken; over TLS (no peeking) a byte at a time, from the TLS layer's buffer.
async fn read_answer_head(stream: &mut UpstreamStream) -> io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    loop {
        let n = match stream {
            UpstreamStream::Tcp(tcp) => tcp.peek(&mut buf).await?,
            UpstreamStream::Tls(tls) => tls.read(&mut buf[..1]).await?,
        };
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "it closed the connection before answering CONNECT",
            ));
        }
        let end = head_end(&head, &buf[..n]);
        let take = end.unwrap_or(n);
        if let UpstreamStream::Tcp(tcp) = stream {
            tcp.read_exact(&mut buf[..take]).await?;
        }
        head.extend_from_slice(&buf[..take]);
        if end.is_some() {
            return Ok(head);
        }
        if head.len() > MAX_ANSWER_HEAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("its answer to CONNECT has a head over {MAX_ANSWER_HEAD} bytes"),
            ));
        }
    }
}

/// How many bytes of `more` complete a head whose first bytes `head` are (it has no
/// blank line yet): up to and including the `\r\n\r\n`, if `more` holds its end.
fn head_end(head: &[u8], more: &[u8]) -> Option<usize> {
    let carried = head.len().min(3);
    let mut window = head[head.len() - carried..].to_vec();
    window.extend_from_slice(&more[..more.len().min(MAX_ANSWER_HEAD + 4)]);
    memchr::memmem::find(&window, b"\r\n\r\n").map(|at| at + 4 - carried)
}

/// The status of an answer head to `CONNECT`, or what is wrong with it.
fn connect_status(head: &[u8]) -> Result<hyper::StatusCode, &'static str> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut answer = httparse::Response::new(&mut headers);
    match answer.parse(head) {
        Ok(httparse::Status::Complete(_)) => answer
            .code
            .and_then(|c| hyper::StatusCode::from_u16(c).ok())
            .ok_or("has no valid status"),
        Ok(httparse::Status::Partial) => Err("is incomplete"),
        Err(_) => Err("is not an HTTP answer"),
    }
}

/// The largest `--upstream-ca` file read: a whole system bundle is about 200 KiB.
const MAX_PEM_FILE_BYTES: u64 = 16 << 20;

/// Every certificate in a PEM file; none is an error.
pub fn read_pem_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    use rustls::pki_types::pem::PemObject;
    let pem = crate::whole_file::read(path, MAX_PEM_FILE_BYTES)
        .with_context(|| format!("certificate file {}", path.display()))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .map(|c| c.map(CertificateDer::into_owned))
        .collect::<Result<_, _>>()
        .with_context(|| format!("{} is not a PEM certificate file", path.display()))?;
    if certs.is_empty() {
        anyhow::bail!("{} holds no PEM certificate", path.display());
    }
    Ok(certs)
}

/// Accepts every server certificate but still checks the handshake signatures (so
/// the connection is at least bound to the certificate presented).
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    #[test]
    fn extra_ca_is_read_and_bad_files_named() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = p.self_signed(&key).unwrap();
        let good = dir.path().join("ca.pem");
        std::fs::write(&good, cert.pem()).unwrap();
        let opts = UpstreamOptions {
            extra_ca: vec![good],
            ..Default::default()
        };
        assert!(client_config(&opts, ring()).is_ok());
        let bad = dir.path().join("bad.pem");
        std::fs::write(&bad, "hello").unwrap();
        let opts = UpstreamOptions {
            extra_ca: vec![bad],
            ..Default::default()
        };
        let err = format!("{:#}", client_config(&opts, ring()).unwrap_err());
        assert!(err.contains("bad.pem"), "{err}");
    }

    #[test]
    fn upstream_proxy_urls_are_parsed_and_credentials_kept_out_of_messages() {
        let p = UpstreamProxy::parse("http://alice:p%40ss%3Aword@proxy.corp.example:3128").unwrap();
        assert_eq!(p.name(), "proxy.corp.example:3128");
        assert_eq!((p.host.as_str(), p.port), ("proxy.corp.example", 3128));
        assert_eq!(p.protocol(), ProxyProtocol::Http);
        use base64::Engine;
        let expected = base64::engine::general_purpose::STANDARD.encode("alice:p@ss:word");
        let auth = &p.credentials.as_ref().unwrap().basic;
        assert_eq!(auth.as_bytes(), format!("Basic {expected}").as_bytes());
        assert!(auth.is_sensitive());
        let debug = format!("{p:?}");
        assert!(
            !debug.contains("alice") && !debug.contains(&expected),
            "{debug}"
        );

        let v6 = UpstreamProxy::parse("http://[::1]:8888/").unwrap();
        assert_eq!((v6.host.as_str(), v6.name()), ("::1", "[::1]:8888"));
        assert!(!v6.has_credentials());
        let tls = UpstreamProxy::parse("https://u:secret@proxy.corp.example:8443").unwrap();
        assert!(tls.protocol() == ProxyProtocol::Https && tls.has_credentials());
        let socks = UpstreamProxy::parse("socks5://u:secret@127.0.0.1:1080").unwrap();
        assert_eq!(socks.protocol(), ProxyProtocol::Socks5);
        assert!(!socks.takes_requests() && p.takes_requests());
        assert_eq!(
            UpstreamProxy::parse("socks5h://127.0.0.1:1080")
                .unwrap()
                .protocol(),
            ProxyProtocol::Socks5
        );
        assert_eq!(tls.name(), "proxy.corp.example:8443");
        assert!(!format!("{tls:?}").contains("secret"));

        for (url, why) in [
            ("https://proxy", "no port"),
            ("ftp://proxy:21", "not a URL of the form"),
            ("http://proxy", "no port"),
            ("http://proxy:3128/path", "path or query"),
            ("socks4://proxy:1080", "not a URL of the form"),
            ("proxy:3128", "not a URL of the form"),
            ("http://secret-user@proxy:3128", "USER:PASS"),
            ("http://:secret@proxy:3128", "user name"),
            ("http://us er:secret@proxy:3128", "not a URL of the form"),
        ] {
            let err = UpstreamProxy::parse(url).unwrap_err();
            assert!(err.contains(why), "{url}: {err}");
            assert!(!err.contains("secret"), "{url}: {err}");
        }
    }

    #[test]
    fn a_loop_to_the_proxy_itself_is_recognised() {
        let at = |url: &str, local: &str| {
            UpstreamProxy::parse(url)
                .unwrap()
                .is_at(local.parse().unwrap())
        };
        assert!(at("http://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(at("http://localhost:8080", "127.0.0.1:8080"));
        assert!(at("http://127.0.0.2:8080", "0.0.0.0:8080"));
        assert!(at("http://[::1]:8080", "[::]:8080"));
        assert!(at("http://192.0.2.7:8080", "192.0.2.7:8080"));
        assert!(!at("http://127.0.0.1:3128", "127.0.0.1:8080"));
        assert!(!at("http://192.0.2.7:8080", "0.0.0.0:8080"));
        assert!(!at("http://proxy.example:8080", "0.0.0.0:8080"));
    }

    #[test]
    fn the_answer_head_ends_at_its_blank_line_wherever_reads_cut_it() {
        let answer = b"HTTP/1.1 200 Connection established\r\nVia: x\r\n\r\nSERVER";
        let head_len = answer.len() - b"SERVER".len();
        // Every way of cutting it into what was read and what is peeked next.
        for cut in 0..head_len {
            let (head, more) = answer.split_at(cut);
            assert_eq!(head_end(head, more), Some(head_len - cut), "cut at {cut}");
        }
        assert_eq!(head_end(b"", b"HTTP/1.1 200 OK\r\n"), None);
        assert_eq!(head_end(b"HTTP/1.1 200 OK\r\n\r", b"x"), None);
    }

    #[test]
    fn connect_answers_are_read_for_their_status() {
        let status = |h: &[u8]| connect_status(h).map(|s| s.as_u16());
        assert_eq!(
            status(b"HTTP/1.1 200 Connection established\r\n\r\n"),
            Ok(200)
        );
        assert_eq!(status(b"HTTP/1.0 200\r\nProxy-Agent: x\r\n\r\n"), Ok(200));
        assert_eq!(
            status(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n"),
            Ok(407)
        );
        assert!(status(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(status(b"HTTP/1.1 200 OK\r\n").is_err());
    }

    /// A one-connection proxy on 127.0.0.1 that records the request head it gets and
    /// answers `answer` in one write.
    async fn fake_proxy(answer: &'static [u8]) -> (u16, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            while !got.ends_with(b"\r\n\r\n") {
                let mut b = [0u8; 256];
                let n = tcp.read(&mut b).await.unwrap();
                assert!(n > 0);
                got.extend_from_slice(&b[..n]);
            }
            tcp.write_all(answer).await.unwrap();
            String::from_utf8(got).unwrap()
        });
        (port, task)
    }

    #[tokio::test]
    async fn connect_goes_through_the_proxy_and_leaves_the_servers_bytes() {
        let (port, seen) =
            fake_proxy(b"HTTP/1.1 200 Connection established\r\n\r\n220 banner\r\n").await;
        let proxy = UpstreamProxy::parse(&format!("http://u:pw@127.0.0.1:{port}")).unwrap();
        let mut tcp = proxy.connect("::1", 25).await.unwrap();
        let mut banner = Vec::new();
        tcp.read_to_end(&mut banner).await.unwrap();
        assert_eq!(banner, b"220 banner\r\n");
        let request = seen.await.unwrap();
        assert!(
            request.starts_with("CONNECT [::1]:25 HTTP/1.1\r\nHost: [::1]:25\r\n"),
            "{request}"
        );
        assert!(
            request.contains("Proxy-Authorization: Basic dTpwdw==\r\n"),
            "{request}"
        );
    }

    /// A one-connection `https://` proxy on 127.0.0.1 (a certificate for that
    /// address) that records the request head it gets inside TLS and answers
    /// `answer`; and a client configuration that trusts it.
    async fn fake_tls_proxy(
        answer: &'static [u8],
    ) -> (u16, Arc<ClientConfig>, tokio::task::JoinHandle<String>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let server = rustls::ServerConfig::builder_with_provider(ring())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("proxy.pem");
        std::fs::write(&ca, cert.pem()).unwrap();
        let opts = UpstreamOptions {
            extra_ca: vec![ca],
            ..Default::default()
        };
        let client = Arc::new(client_config(&opts, ring()).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let task = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                return String::new();
            };
            let mut got = Vec::new();
            while !got.ends_with(b"\r\n\r\n") {
                let mut b = [0u8; 256];
                let n = tls.read(&mut b).await.unwrap();
                assert!(n > 0);
                got.extend_from_slice(&b[..n]);
            }
            tls.write_all(answer).await.unwrap();
            tls.shutdown().await.unwrap();
            String::from_utf8(got).unwrap()
        });
        (port, client, task)
    }

    /// An `https://` proxy: `CONNECT` inside TLS to it, its certificate checked as a
    /// server's, the server's bytes after the answer left in the tunnel.
    #[tokio::test]
    async fn an_https_proxy_is_spoken_to_over_tls() {
        let answer = b"HTTP/1.1 200 Connection established\r\n\r\n220 banner\r\n";
        let (port, trusted, seen) = fake_tls_proxy(answer).await;
        let proxy = UpstreamProxy::parse(&format!("https://u:pw@127.0.0.1:{port}"))
            .unwrap()
            .with_tls(trusted);
        let mut tunnel = proxy.connect("a.example", 443).await.unwrap();
        assert!(matches!(tunnel, UpstreamStream::Tls(_)));
        let mut banner = Vec::new();
        tunnel.read_to_end(&mut banner).await.unwrap();
        assert_eq!(banner, b"220 banner\r\n");
        let request = seen.await.unwrap();
        assert!(
            request.starts_with("CONNECT a.example:443 HTTP/1.1\r\n")
                && request.contains("Proxy-Authorization: Basic dTpwdw==\r\n"),
            "{request}"
        );

        // A certificate not trusted: the handshake fails, saying what to do.
        let (port, _, _) = fake_tls_proxy(answer).await;
        let untrusted = Arc::new(client_config(&UpstreamOptions::default(), ring()).unwrap());
        let proxy = UpstreamProxy::parse(&format!("https://127.0.0.1:{port}"))
            .unwrap()
            .with_tls(untrusted);
        let err = proxy
            .connect("a.example", 443)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!(
                "upstream proxy 127.0.0.1:{port}: TLS to it failed: "
            )) && err.contains("--upstream-ca"),
            "{err}"
        );
    }

    /// A one-connection SOCKS5 proxy on 127.0.0.1 that asks for credentials, records
    /// what it reads and answers `reply` to the request, then a banner.
    async fn fake_socks(reply: u8) -> (u16, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            let mut greeting = [0u8; 4];
            tcp.read_exact(&mut greeting).await.unwrap();
            seen.extend_from_slice(&greeting);
            tcp.write_all(&[5, 2]).await.unwrap();
            let mut creds = [0u8; 6]; // 1, 1, "u", 2, "pw"
            tcp.read_exact(&mut creds).await.unwrap();
            seen.extend_from_slice(&creds);
            tcp.write_all(&[1, 0]).await.unwrap();
            let mut request = [0u8; 4 + 1 + 9 + 2]; // a name of 9 bytes
            tcp.read_exact(&mut request).await.unwrap();
            seen.extend_from_slice(&request);
            // A reply with a bound name, which must be read whole.
            tcp.write_all(&[5, reply, 0, 3, 4, b'p', b'r', b'o', b'x', 0x04, 0x38])
                .await
                .unwrap();
            tcp.write_all(b"220 banner\r\n").await.unwrap();
            seen
        });
        (port, task)
    }

    /// A SOCKS5 upstream proxy: greeting, credentials, `CONNECT` by name; the reply
    /// read exactly, so the server's banner stays in the tunnel. A refusal says why.
    #[tokio::test]
    async fn a_socks5_proxy_tunnels_by_name() {
        let (port, seen) = fake_socks(0).await;
        let proxy = UpstreamProxy::parse(&format!("socks5://u:pw@127.0.0.1:{port}")).unwrap();
        let mut tunnel = proxy.connect("a.example", 443).await.unwrap();
        let mut banner = Vec::new();
        tunnel.read_to_end(&mut banner).await.unwrap();
        assert_eq!(banner, b"220 banner\r\n");
        assert_eq!(
            seen.await.unwrap(),
            [
                &[5, 2, 0, 2][..],
                &[1, 1, b'u', 2, b'p', b'w'],
                &[5, 1, 0, 3, 9],
                b"a.example",
                &[1, 187]
            ]
            .concat()
        );

        let (port, _) = fake_socks(5).await;
        let proxy = UpstreamProxy::parse(&format!("socks5://u:pw@127.0.0.1:{port}")).unwrap();
        let err = proxy
            .connect("a.example", 443)
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "upstream proxy 127.0.0.1:{port} (SOCKS5), CONNECT a.example:443: refused: connection refused (5)"
            )
        );
    }

    /// The error of a `CONNECT` to `host:port` through a fake proxy answering `answer`,
    /// and the proxy's port.
    async fn refused(answer: &'static [u8], host: &str, port: u16) -> (String, u16) {
        let (proxy_port, _) = fake_proxy(answer).await;
        let proxy = UpstreamProxy::parse(&format!("http://127.0.0.1:{proxy_port}")).unwrap();
        let err = proxy.connect(host, port).await.unwrap_err();
        (err.to_string(), proxy_port)
    }

    #[tokio::test]
    async fn a_refused_connect_says_why() {
        let (err, _) = refused(
            b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n",
            "a.example",
            443,
        )
        .await;
        assert!(
            err.contains("answered CONNECT a.example:443 with 407")
                && err.contains("give --upstream-proxy http://USER:PASS@"),
            "{err}"
        );
        let (err, port) = refused(b"HTTP/1.1 403 Forbidden\r\n\r\n", "a.example", 25).await;
        assert_eq!(
            err,
            format!(
                "upstream proxy 127.0.0.1:{port} answered CONNECT a.example:25 with 403 Forbidden"
            )
        );
        let (err, _) = refused(b"", "a.example", 443).await;
        assert!(
            err.contains("closed the connection before answering"),
            "{err}"
        );
    }
}
