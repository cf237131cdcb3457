//! The connection to the real servers: TLS verified against the webpki roots plus
//! `--upstream-ca` certificates, or not at all with
//! `--danger-accept-invalid-upstream-certs` (labs only); straight to the server, or
//! through an upstream HTTP proxy (`--upstream-proxy`, [`UpstreamProxy`]).
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
use hyper::http::uri::Scheme;
use hyper::Uri;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
    pub connector: HttpsConnector<Dialer>,
    /// For `wss://` servers.
    pub ws_tls: ClientConfig,
    /// For tunnels passed through and WebSockets ([`Upstream::connect`]).
    pub proxy: Option<Arc<UpstreamProxy>>,
}

impl Upstream {
    pub fn new(opts: &UpstreamOptions, provider: Arc<CryptoProvider>) -> anyhow::Result<Upstream> {
        let proxy = opts.proxy.clone().map(Arc::new);
        Ok(Upstream {
            connector: connector(opts, proxy.clone(), provider.clone())?,
            ws_tls: client_config(opts, provider)?,
            proxy,
        })
    }

    /// A TCP connection to `host:port` (`host` without brackets), through the
    /// upstream proxy if there is one.
    pub async fn connect(&self, host: &str, port: u16) -> io::Result<TcpStream> {
        match &self.proxy {
            Some(proxy) => proxy.connect(host, port).await,
            None => {
                let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host, port)))
                    .await
                    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
                tcp.set_nodelay(true)?;
                Ok(tcp)
            }
        }
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
) -> anyhow::Result<HttpsConnector<Dialer>> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    let tls = client_config(opts, provider)?;
    Ok(HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(Dialer { http, proxy }))
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The TCP half of the pool's connector: to the server itself, or through the
/// upstream proxy (a `CONNECT` tunnel for `https`; for `http`, a connection to the
/// proxy, which the pool then sends absolute-form requests to).
#[derive(Clone)]
pub struct Dialer {
    http: HttpConnector,
    proxy: Option<Arc<UpstreamProxy>>,
}

impl Service<Uri> for Dialer {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let Some(proxy) = self.proxy.clone() else {
            let direct = self.http.call(dst);
            return Box::pin(async move { Ok(direct.await?) });
        };
        if dst.scheme() == Some(&Scheme::HTTPS) {
            return Box::pin(async move {
                let host = dst.host().unwrap_or_default();
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let tcp = proxy.connect(host, dst.port_u16().unwrap_or(443)).await?;
                Ok(TokioIo::new(tcp))
            });
        }
        let to_proxy = self.http.call(proxy.uri.clone());
        Box::pin(async move {
            to_proxy.await.map_err(|e| {
                let e: BoxError = e.into();
                let chain = super::handler::error_chain(&*e);
                format!("upstream proxy {}: {chain}", proxy.name).into()
            })
        })
    }
}

/// An HTTP proxy that every upstream connection goes through (`--upstream-proxy`,
/// mitmproxy's upstream mode), for labs whose only way out is a corporate proxy.
/// TLS (intercepted or passed through) and WebSockets go through a `CONNECT` tunnel,
/// so the server's certificate is checked end to end as without it. Plain HTTP
/// requests go to it in absolute form, as browsers send them: proxies commonly
/// allow `CONNECT` to port 443 only.
#[derive(Clone)]
pub struct UpstreamProxy {
    /// As `connect` takes it: an IPv6 address without brackets.
    host: String,
    port: u16,
    /// `host:port` as given, for messages (never the credentials).
    name: String,
    /// `http://host:port/`, for the connector.
    uri: Uri,
    /// `Basic …`, from the URL's user information.
    authorization: Option<HeaderValue>,
}

/// The longest answer head to a `CONNECT` read: a proxy's is a few hundred bytes.
const MAX_ANSWER_HEAD: usize = 16 * 1024;

impl fmt::Debug for UpstreamProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamProxy")
            .field("name", &self.name)
            .field("credentials", &self.authorization.is_some())
            .finish()
    }
}

impl UpstreamProxy {
    /// `http://[USER:PASS@]HOST:PORT` (user and password percent-encoded). Errors
    /// never repeat the text, which may hold a password.
    pub fn parse(url: &str) -> Result<UpstreamProxy, String> {
        const FORM: &str = "http://[USER:PASS@]HOST:PORT";
        let uri: Uri = url
            .parse()
            .map_err(|_| format!("not a URL of the form {FORM}"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(format!(
                    "TLS to the proxy itself (https://) is not supported: give {FORM}"
                ))
            }
            _ => return Err(format!("not a URL of the form {FORM}")),
        }
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
        let authorization = match authority.as_str().rsplit_once('@') {
            None => None,
            Some((user_info, _)) => Some(basic_authorization(user_info)?),
        };
        let uri = format!("http://{name}/")
            .parse()
            .map_err(|_| format!("not a URL of the form {FORM}"))?;
        Ok(UpstreamProxy {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            name,
            uri,
            authorization,
        })
    }

    /// `host:port`, without credentials.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True when credentials are sent.
    pub fn has_credentials(&self) -> bool {
        self.authorization.is_some()
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
        if let Some(a) = &self.authorization {
            headers.insert(header::PROXY_AUTHORIZATION, a.clone());
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
        match self.authorization {
            Some(_) => "the credentials of --upstream-proxy were refused",
            None => "it asks for credentials: give --upstream-proxy http://USER:PASS@HOST:PORT",
        }
    }

    /// A TCP connection to `host:port` (`host` without brackets) through the
    /// proxy: its `CONNECT` answered `2xx`, the answer's head read and not a byte
    /// more (what follows is the server's, e.g. a banner of a server that speaks
    /// first). Within [`CONNECT_TIMEOUT`].
    pub async fn connect(&self, host: &str, port: u16) -> io::Result<TcpStream> {
        let target = match host.contains(':') {
            true => format!("[{host}]:{port}"),
            false => format!("{host}:{port}"),
        };
        let opened = async {
            let mut tcp = TcpStream::connect((self.host.as_str(), self.port)).await?;
            tcp.set_nodelay(true)?;
            let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
            if let Some(a) = self.authorization.as_ref().and_then(|a| a.to_str().ok()) {
                request.push_str("Proxy-Authorization: ");
                request.push_str(a);
                request.push_str("\r\n");
            }
            request.push_str("\r\n");
            tcp.write_all(request.as_bytes()).await?;
            let head = read_answer_head(&mut tcp).await?;
            Ok::<_, io::Error>((tcp, head))
        };
        let in_time = tokio::time::timeout(CONNECT_TIMEOUT, opened).await;
        let (tcp, head) = in_time
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
            Ok(status) if status.is_success() => Ok(tcp),
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
}

/// `Basic base64(user:password)` from a URL's percent-encoded `user:password`.
fn basic_authorization(user_info: &str) -> Result<HeaderValue, String> {
    use base64::Engine;
    let (user, password) = user_info
        .split_once(':')
        .ok_or("credentials must be USER:PASS")?;
    if user.is_empty() {
        return Err("credentials must be USER:PASS with a user name".into());
    }
    let mut plain: Vec<u8> = percent_encoding::percent_decode_str(user).collect();
    plain.push(b':');
    plain.extend(percent_encoding::percent_decode_str(password));
    let encoded = base64::engine::general_purpose::STANDARD.encode(&plain);
    let mut value = HeaderValue::try_from(format!("Basic {encoded}"))
        .map_err(|_| "credentials cannot be sent".to_string())?;
    value.set_sensitive(true);
    Ok(value)
}

/// Reads the proxy's answer head exactly: bytes are peeked first and only those up
/// to the blank line taken.
async fn read_answer_head(tcp: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    loop {
        let n = tcp.peek(&mut buf).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "it closed the connection before answering CONNECT",
            ));
        }
        let end = head_end(&head, &buf[..n]);
        let take = end.unwrap_or(n);
        tcp.read_exact(&mut buf[..take]).await?;
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
        assert_eq!(p.uri.to_string(), "http://proxy.corp.example:3128/");
        use base64::Engine;
        let expected = base64::engine::general_purpose::STANDARD.encode("alice:p@ss:word");
        let auth = p.authorization.as_ref().unwrap();
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

        for (url, why) in [
            ("https://proxy:3128", "(https://) is not supported"),
            ("http://proxy", "no port"),
            ("http://proxy:3128/path", "path or query"),
            ("socks5://proxy:1080", "not a URL of the form"),
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
