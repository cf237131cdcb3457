//! The proxy test harness shared by `tests/proxy.rs`, `tests/proxy_reliability.rs`
//! and `tests/proxy_browser.rs`: local upstream servers on 127.0.0.1 (HTTPS with a
//! self-signed certificate trusted through `--upstream-ca`, plain HTTP, WebSocket),
//! a `consentry proxy` child process with its output collected, curl, and a Rust
//! client doing CONNECT + TLS itself. Identifiers are the synthetic ones of
//! DESIGN.md's example case.

use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hudsucker::hyper::body::Incoming;
use hudsucker::hyper::service::service_fn;
use hudsucker::hyper::{Request, Response};
use hudsucker::hyper_util::rt::{TokioExecutor, TokioIo};
use hudsucker::hyper_util::server::conn::auto;
use sha2::Digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const AD_ID: &str = "38400000-8cf0-11bd-b23e-10b96e40000d";
pub const BIG_RESPONSE: usize = 3_000_000;
/// Length `/huge` announces and streams: far more than loopback socket buffers hold
/// (tcp_rmem may grow to 32 MiB), so a client that stops reading always cuts it.
pub const HUGE_RESPONSE: usize = 256 << 20;
/// `--body-cap` of the tests: small, so a 200 kB upload exceeds it.
pub const CAP: usize = 65_536;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_consentry")
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn big_body() -> Vec<u8> {
    (0..BIG_RESPONSE).map(|i| (i % 251) as u8).collect()
}

/// A shop page whose script sends a tracker beacon with the device's advertising id
/// (a JSON body) to `localhost` on the page's own port, the way an analytics SDK in
/// a web view would; it shows `beacon-sent` once the request went out.
pub const SHOP_PAGE: &str = r#"<!DOCTYPE html>
<html><head><title>Example Shop</title></head>
<body><h1>Example Shop</h1><p id="state">loading</p>
<script>
const tracker = "https://localhost:" + location.port + "/collect?app=shop";
const payload = JSON.stringify({event: "open", gaid: "38400000-8cf0-11bd-b23e-10b96e40000d"});
const done = () => { document.getElementById("state").textContent = "beacon-sent"; };
fetch(tracker, {method: "POST", mode: "no-cors", body: payload, keepalive: true})
  .then(done, (e) => { document.getElementById("state").textContent = "beacon-failed " + e; });
</script></body></html>
"#;

/// A page whose script opens a WebSocket to `localhost` on the port its query names
/// (`/ws.html?ws=PORT`), shows the first message it gets (`ws-got …`), then sends the
/// device's advertising id, as a chat or live-update SDK in a web view would. An
/// image from `/slow` holds the page's load event 2 s, for the WebSocket to get there
/// (a headless browser dumps the DOM at that event; WebSockets do not hold it).
pub const WS_PAGE: &str = r#"<!DOCTYPE html>
<html><head><title>Example Shop live</title></head>
<body><p id="state">loading</p>
<script>
const state = (s) => { document.getElementById("state").textContent = s; };
const port = new URLSearchParams(location.search).get("ws");
const ws = new WebSocket("wss://localhost:" + port + "/live");
let got = false;
ws.onmessage = (e) => {
  got = true;
  state("ws-got " + e.data);
  ws.send(JSON.stringify({event: "live", gaid: "38400000-8cf0-11bd-b23e-10b96e40000d"}));
};
ws.onerror = () => { if (!got) state("ws-error"); };
ws.onclose = (e) => { if (!got) state("ws-closed " + e.code); };
</script><img src="/slow" alt=""></body></html>
"#;

pub type TestBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

pub async fn answer(req: Request<Incoming>) -> Result<Response<TestBody>, Infallible> {
    let uri = req.uri().clone();
    if req.headers().contains_key("proxy-authorization") {
        return Ok(Response::new(
            Full::new(Bytes::from_static(b"LEAKED credentials\n")).boxed(),
        ));
    }
    if uri.path() == "/stall" {
        // One chunk, then nothing ever again: the response never completes.
        use hudsucker::futures::StreamExt;
        let chunks = hudsucker::futures::stream::iter([Ok::<_, Infallible>(
            http_body::Frame::data(Bytes::from_static(b"first chunk\n")),
        )])
        .chain(hudsucker::futures::stream::pending());
        return Ok(Response::new(BodyExt::boxed(
            http_body_util::StreamBody::new(chunks),
        )));
    }
    if uri.path() == "/grpc-like" {
        // A gRPC call's answer: one length-prefixed message, then the status in
        // trailers, which a gRPC client needs to see the call succeed.
        use hudsucker::futures::StreamExt;
        let mut trailers = hudsucker::hyper::HeaderMap::new();
        trailers.insert("grpc-status", "0".parse().unwrap());
        trailers.insert("grpc-message", "ok".parse().unwrap());
        let frames = hudsucker::futures::stream::iter([
            http_body::Frame::data(Bytes::from_static(b"\0\0\0\0\x02\x08\x01")),
            http_body::Frame::trailers(trailers),
        ])
        .map(Ok::<_, Infallible>);
        let mut r = Response::new(BodyExt::boxed(http_body_util::StreamBody::new(frames)));
        r.headers_mut()
            .insert("content-type", "application/grpc".parse().unwrap());
        return Ok(r);
    }
    if uri.path() == "/slow" {
        // Answered after 2 s: a page that loads it holds its load event (and a
        // headless browser's `--dump-dom`) that long.
        tokio::time::sleep(Duration::from_secs(2)).await;
        return Ok(Response::new(
            Full::new(Bytes::from_static(b"ok\n")).boxed(),
        ));
    }
    if uri.path() == "/huge" {
        // Generated as it is sent: one shared 64 KiB chunk, never the whole body.
        use hudsucker::futures::StreamExt;
        let chunk = Bytes::from(vec![b'h'; 64 << 10]);
        let chunks = hudsucker::futures::stream::iter(0..HUGE_RESPONSE / chunk.len())
            .map(move |_| Ok::<_, Infallible>(http_body::Frame::data(chunk.clone())));
        let mut r = Response::new(BodyExt::boxed(http_body_util::StreamBody::new(chunks)));
        r.headers_mut()
            .insert("content-length", HUGE_RESPONSE.to_string().parse().unwrap());
        return Ok(r);
    }
    if uri.path().starts_with("/answers-early") {
        // Answered at once, the request body dropped unread (as nginx's 405 for a
        // `POST` to a static file): hyper closes an HTTP/1 connection after it,
        // and resets an HTTP/2 stream.
        return Ok(Response::new(
            Full::new(Bytes::from_static(b"ok\n")).boxed(),
        ));
    }
    if uri.path() == "/d" {
        // An HTTPDNS service (Tencent DNSPod's text): every name is 127.0.0.1.
        return Ok(Response::new(
            Full::new(Bytes::from_static(b"127.0.0.1,60")).boxed(),
        ));
    }
    if uri.path() == "/resolve" {
        // A resolver's JSON API, gzipped as for any client that accepts it: the
        // name asked for is 127.0.0.1.
        use std::io::Write;
        let name = uri
            .query()
            .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("name=")))
            .unwrap_or("");
        let json = format!(
            r#"{{"Status":0,"Question":[{{"name":"{name}.","type":1}}],"Answer":[{{"name":"{name}.","type":1,"TTL":30,"data":"127.0.0.1"}}]}}"#
        );
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(json.as_bytes()).unwrap();
        let mut r = Response::new(Full::new(Bytes::from(gz.finish().unwrap())).boxed());
        r.headers_mut()
            .insert("content-type", "application/x-javascript".parse().unwrap());
        r.headers_mut()
            .insert("content-encoding", "gzip".parse().unwrap());
        return Ok(r);
    }
    if uri.path() == "/shop.html" || uri.path() == "/ws.html" {
        let page = if uri.path() == "/ws.html" {
            WS_PAGE
        } else {
            SHOP_PAGE
        };
        let mut r = Response::new(Full::new(Bytes::from_static(page.as_bytes())).boxed());
        r.headers_mut()
            .insert("content-type", "text/html; charset=utf-8".parse().unwrap());
        return Ok(r);
    }
    let body = match uri.path() {
        "/big" => big_body(),
        "/echo-trailers" => {
            // The trailer fields that reached the server, one `name: value` line each.
            let trailers = req
                .into_body()
                .collect()
                .await
                .ok()
                .and_then(|c| c.trailers().cloned())
                .unwrap_or_default();
            let mut out = String::from("trailers:\n");
            for (name, value) in &trailers {
                out.push_str(&format!("{name}: {}\n", value.to_str().unwrap_or("?")));
            }
            out.into_bytes()
        }
        "/echo" => {
            let got = req
                .into_body()
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            format!(
                "len={} sha={}\n",
                got.len(),
                hex(&sha2::Sha256::digest(&got))
            )
            .into_bytes()
        }
        // The path only: over HTTP/2 the server sees scheme and authority too.
        _ => format!(
            "hello {}\n",
            uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
        )
        .into_bytes(),
    };
    let mut r = Response::new(Full::new(Bytes::from(body)).boxed());
    r.headers_mut()
        .insert("x-upstream", "consentry-test".parse().unwrap());
    Ok(r)
}

/// Echoes every WebSocket message back.
pub async fn ws_echo<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(s: S) {
    use hudsucker::futures::{SinkExt, StreamExt};
    let Ok(mut ws) = hudsucker::tokio_tungstenite::accept_async(s).await else {
        return;
    };
    while let Some(Ok(m)) = ws.next().await {
        if (m.is_text() || m.is_binary()) && ws.send(m).await.is_err() {
            break;
        }
    }
}

/// A WebSocket server that takes permessage-deflate whenever a client offers it and
/// then compresses what it sends (as Node's `ws` and many app backends do): answers
/// the upgrade on `tcp`, sends `text` (compressed when it agreed), then waits for the
/// client's first frame and hangs up.
pub async fn ws_deflating_server<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut tcp: S,
    text: &'static str,
) {
    use flate2::{Compress, Compression, FlushCompress};
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        tcp.read_exact(&mut b).await.unwrap();
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    // Header names in any case; the key's value as sent (base64 is case-sensitive).
    let value = |name: &str| {
        head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    let key = value("sec-websocket-key").unwrap();
    let accept =
        hudsucker::tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let deflate =
        value("sec-websocket-extensions").is_some_and(|v| v.contains("permessage-deflate"));
    let mut reply = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"
    );
    if deflate {
        reply.push_str("Sec-WebSocket-Extensions: permessage-deflate\r\n");
    }
    reply.push_str("\r\n");
    tcp.write_all(reply.as_bytes()).await.unwrap();
    let payload = if deflate {
        let mut out = Vec::with_capacity(text.len() + 64);
        Compress::new(Compression::default(), false)
            .compress_vec(text.as_bytes(), &mut out, FlushCompress::Sync)
            .unwrap();
        assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
        out.truncate(out.len() - 4);
        out
    } else {
        text.as_bytes().to_vec()
    };
    // FIN, RSV1 when compressed, a text frame; unmasked, as a server's are; a 7-bit
    // length.
    assert!(payload.len() < 126);
    let mut frame = vec![0x81 | if deflate { 0x40 } else { 0 }, payload.len() as u8];
    frame.extend_from_slice(&payload);
    tcp.write_all(&frame).await.unwrap();
    let mut some = [0u8; 64];
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut some)).await;
}

pub struct Upstreams {
    pub https: SocketAddr,
    pub http: SocketAddr,
    /// WebSocket echo servers, plain and TLS.
    pub ws: SocketAddr,
    pub wss: SocketAddr,
    pub ca_pem: PathBuf,
    pub ca_der: Vec<u8>,
    /// The servers' TLS (the certificate of `ca_pem`), for other servers of the test.
    pub tls: tokio_rustls::TlsAcceptor,
}

/// A TLS server configuration with `cert` and its `key`, offering `alpn`.
fn tls_acceptor(
    cert: &rcgen::Certificate,
    key: &rcgen::KeyPair,
    alpn: &[&[u8]],
) -> tokio_rustls::TlsAcceptor {
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsAcceptor::from(Arc::new(cfg))
}

/// A server on `ip` whose certificate names `name` only (no address), speaking
/// HTTP/1.1 only, that answers each request with the `Host` it received and its
/// path; its CA certificate is written to `dir/name.pem`.
pub fn named_only_server(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    ip: &str,
    name: &str,
) -> SocketAddr {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![name.to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
    let acceptor = tls_acceptor(&cert, &key, &[b"http/1.1"]);
    let listener = rt.block_on(tokio::net::TcpListener::bind((ip, 0))).unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let path = head.split(' ').nth(1).unwrap_or("?").to_string();
                let host = head
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("Host: ")
                            .or_else(|| l.strip_prefix("host: "))
                    })
                    .unwrap_or("none")
                    .to_string();
                let body = format!("host={host} path={path}\n");
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

/// Starts both upstream servers on `rt`; the HTTPS certificate goes to `dir`.
pub fn upstreams(rt: &tokio::runtime::Runtime, dir: &Path) -> Upstreams {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let cert = params.self_signed(&key).unwrap();
    let ca_pem = dir.join("upstream.pem");
    std::fs::write(&ca_pem, cert.pem()).unwrap();
    let acceptor = tls_acceptor(&cert, &key, &[b"h2", b"http/1.1"]);
    let (https, http) = rt.block_on(async {
        let tls_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let plain_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        (tls_l, plain_l)
    });
    let (https_addr, http_addr) = (https.local_addr().unwrap(), http.local_addr().unwrap());
    let (ws, wss) = rt.block_on(async {
        (
            TcpListener::bind("127.0.0.1:0").await.unwrap(),
            TcpListener::bind("127.0.0.1:0").await.unwrap(),
        )
    });
    let (ws_addr, wss_addr) = (ws.local_addr().unwrap(), wss.local_addr().unwrap());
    rt.spawn(async move {
        loop {
            let Ok((tcp, _)) = ws.accept().await else {
                continue;
            };
            tokio::spawn(ws_echo(tcp));
        }
    });
    let ws_acceptor = acceptor.clone();
    let tls = acceptor.clone();
    rt.spawn(async move {
        loop {
            let Ok((tcp, _)) = wss.accept().await else {
                continue;
            };
            let a = ws_acceptor.clone();
            tokio::spawn(async move {
                if let Ok(s) = a.accept(tcp).await {
                    ws_echo(s).await;
                }
            });
        }
    });
    rt.spawn(async move {
        loop {
            let Ok((tcp, _)) = https.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(s) = acceptor.accept(tcp).await {
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(s), service_fn(answer))
                        .await;
                }
            });
        }
    });
    rt.spawn(async move {
        loop {
            let Ok((tcp, _)) = http.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), service_fn(answer))
                    .await;
            });
        }
    });
    Upstreams {
        https: https_addr,
        http: http_addr,
        ws: ws_addr,
        wss: wss_addr,
        ca_pem,
        ca_der: cert.der().to_vec(),
        tls,
    }
}

pub fn case_file(dir: &Path, device_block: &str) -> PathBuf {
    let p = dir.join("case.toml");
    std::fs::write(
        &p,
        format!(
            r#"[case]
id = "proxy-test"

[app]
name = "Example Shop"
first_party = ["example-shop.com"]

[[device]]
id = "pixel7"
{device_block}
[device.identifiers]
advertising_id = "{AD_ID}"
"#
        ),
    )
    .unwrap();
    p
}

/// A running `consentry proxy` with its output collected.
pub struct Proxy {
    pub child: Child,
    pub addr: SocketAddr,
    pub control: Option<SocketAddr>,
    /// The DNS relay's address (`--dns-listen`).
    pub dns: Option<SocketAddr>,
    pub dir: PathBuf,
    pub stdout: Arc<Mutex<Vec<String>>>,
    pub stderr: Arc<Mutex<Vec<String>>>,
}

impl Drop for Proxy {
    /// A failing test must not leave its proxy running.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn collect(r: impl std::io::Read + Send + 'static, into: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            into.lock().unwrap().push(line);
        }
    });
}

impl Proxy {
    /// The proxy's CA certificate (DER), as `consentry ca export` gives it.
    pub fn ca_der(&self) -> Vec<u8> {
        let out = Command::new(bin())
            .args(["ca", "export", "--format", "der", "--ca-dir"])
            .arg(self.dir.join("ca"))
            .output()
            .unwrap();
        assert!(out.status.success());
        out.stdout
    }

    /// [`Proxy::start`] trusting the test upstreams' CA (`--upstream-ca`), no other
    /// arguments: the usual setup.
    pub fn start_for(dir: &Path, case: &Path, up: &Upstreams) -> Proxy {
        Proxy::start_for_with(dir, case, up, &[])
    }

    /// [`Proxy::start_for`] with `extra` arguments (e.g. a short timeout).
    pub fn start_for_with(dir: &Path, case: &Path, up: &Upstreams, extra: &[&str]) -> Proxy {
        let mut args = vec!["--upstream-ca", up.ca_pem.to_str().unwrap()];
        args.extend_from_slice(extra);
        Proxy::start(dir, case, &args)
    }

    /// Listens on 127.0.0.1, on a port of its choosing, unless `extra` gives
    /// `--listen`; analyses [`CAP`] bytes of a body unless it gives `--body-cap`.
    pub fn start(dir: &Path, case: &Path, extra: &[&str]) -> Proxy {
        let listen: &[&str] = if extra.contains(&"--listen") {
            &[]
        } else {
            &["--listen", "127.0.0.1:0"]
        };
        let mut child = Command::new(bin())
            .arg("proxy")
            .args(listen)
            .args(["--control", "127.0.0.1:0"])
            .arg("--case")
            .arg(case)
            .arg("--ca-dir")
            .arg(dir.join("ca"))
            .args(if extra.contains(&"--body-cap") {
                vec![]
            } else {
                vec!["--body-cap".to_string(), CAP.to_string()]
            })
            .args(extra)
            .env_remove("CONSENTRY_CASE")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        collect(child.stdout.take().unwrap(), stdout.clone());
        collect(child.stderr.take().unwrap(), stderr.clone());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let lines = stderr.lock().unwrap().clone();
            let find = |key: &str| {
                lines.iter().find_map(|l| {
                    l.split_once(key)
                        .and_then(|(_, rest)| rest.split_whitespace().next())
                        .and_then(|a| a.parse::<SocketAddr>().ok())
                })
            };
            if let Some(addr) = find("proxy listening on ") {
                return Proxy {
                    child,
                    addr,
                    control: find("control API on "),
                    dns: find("DNS listening on "),
                    dir: dir.to_path_buf(),
                    stdout,
                    stderr,
                };
            }
            if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
                panic!("proxy did not start: {lines:#?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn ca_pem(&self) -> PathBuf {
        self.dir.join("ca").join("consentry-ca.pem")
    }

    /// The complete lines of a JSON lines output file (a line the proxy is still
    /// writing is left out).
    pub fn jsonl(&self, name: &str) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        let complete = text.rsplit_once('\n').map_or("", |(done, _)| done);
        complete
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The counters of the control API's `GET /status`.
    pub fn status(&self) -> serde_json::Value {
        let token = std::fs::read_to_string(self.dir.join("ca").join("control-token")).unwrap();
        let out = curl(&[
            "-H",
            &format!("Authorization: Bearer {}", token.trim()),
            &format!("http://{}/status", self.control.unwrap()),
        ]);
        serde_json::from_slice(&out).unwrap()
    }

    /// The proxy's resident set size in kB (VmRSS of /proc/PID/status).
    pub fn rss_kb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("reading the proxy's /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }

    /// True while the proxy process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits until `pred` holds for the exchanges written so far.
    pub fn wait_exchanges(&self, what: &str, pred: impl Fn(&[serde_json::Value]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !pred(&self.jsonl("proxy-exchanges.jsonl")) {
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; exchanges: {:#?}; stderr: {:#?}",
                    self.jsonl("proxy-exchanges.jsonl"),
                    self.stderr.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `pred` holds for the lines printed so far, and returns them. A
    /// finding's line is printed after its record is written (the consumer flushes
    /// standard output once per batch of events), so a test that saw the record must
    /// still wait for the line.
    pub fn wait_stdout(&self, what: &str, pred: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = self.stdout.lock().unwrap().clone();
            if pred(&out) {
                return out;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; printed: {out:#?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The findings written so far of `exchange` (a record of `proxy-exchanges.jsonl`).
    pub fn findings_of(&self, exchange: &serde_json::Value) -> Vec<serde_json::Value> {
        self.jsonl("proxy-findings.jsonl")
            .into_iter()
            .filter(|f| f["exchange"] == exchange["id"])
            .collect()
    }

    /// Findings of the exchange whose path is `path`, once that exchange is written.
    pub fn findings_for(&self, path: &str) -> Vec<serde_json::Value> {
        self.wait_exchanges(path, |xs| xs.iter().any(|x| x["path"] == path));
        let ids: Vec<serde_json::Value> = self
            .jsonl("proxy-exchanges.jsonl")
            .into_iter()
            .filter(|x| x["path"] == path)
            .map(|x| x["id"].clone())
            .collect();
        self.jsonl("proxy-findings.jsonl")
            .into_iter()
            .filter(|f| ids.contains(&f["exchange"]))
            .collect()
    }

    /// SIGINT, then the exit status and the whole standard error.
    pub fn stop(mut self) -> (std::process::ExitStatus, Vec<String>) {
        Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("proxy did not stop on SIGINT");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        std::thread::sleep(Duration::from_millis(100));
        (status, self.stderr.lock().unwrap().clone())
    }
}

/// curl's stdout (the body) and the `-w` line, as bytes.
pub fn curl(args: &[&str]) -> Vec<u8> {
    curl_under(&[], args)
}

/// [`curl`] run by `wrapper` (e.g. `setpriv` as another user), if not empty.
pub fn curl_under(wrapper: &[&str], args: &[&str]) -> Vec<u8> {
    let mut command = match wrapper.split_first() {
        Some((program, wrapper_args)) => {
            let mut c = Command::new(program);
            c.args(wrapper_args).arg("curl");
            c
        }
        None => Command::new("curl"),
    };
    let out = command
        .args(["-sS", "--max-time", "30", "--noproxy", ""])
        .args(args)
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY")
        .output()
        .expect("curl must be installed (apt-get install -y curl)");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A TCP connection to `proxy` with a CONNECT to `target` sent and the proxy's
/// response head read (returned as received: callers judge it).
pub async fn tunnel(proxy: SocketAddr, target: SocketAddr) -> (TcpStream, Vec<u8>) {
    let mut tcp = TcpStream::connect(proxy).await.unwrap();
    tcp.write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        tcp.read_exact(&mut b).await.unwrap();
        head.push(b[0]);
    }
    (tcp, head)
}

/// TLS client on `tcp` to `target`'s IP address, trusting only `root` (DER).
pub async fn tls_to_ip(
    tcp: TcpStream,
    target: SocketAddr,
    root: &[u8],
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.to_vec().into()).unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::IpAddress(target.ip().into());
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())
}

/// CONNECT to `target` through `proxy` (which must answer 200), then TLS trusting
/// only `root`.
pub async fn connect_tls(
    proxy: SocketAddr,
    target: SocketAddr,
    root: &[u8],
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let (tcp, head) = tunnel(proxy, target).await;
    assert!(
        head.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    tls_to_ip(tcp, target, root).await
}

/// CONNECT, then TLS trusting only `root`; the response to `GET path`, or the TLS error.
pub async fn rust_client(
    proxy: SocketAddr,
    target: SocketAddr,
    root: &[u8],
    path: &str,
) -> Result<Vec<u8>, String> {
    let mut tls = connect_tls(proxy, target, root).await?;
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut all = Vec::new();
    let _ = tls.read_to_end(&mut all).await;
    Ok(all)
}

pub fn body_of(response: &[u8]) -> Vec<u8> {
    let at = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    response[at + 4..].to_vec()
}

/// A minimal forward HTTP proxy on 127.0.0.1: the corporate proxy of the
/// `--upstream-proxy` tests. It serves `CONNECT` tunnels and absolute-form requests
/// (forwarded with their `Proxy-Authorization` removed, as a real proxy does), to
/// loopback only (`localhost` is 127.0.0.1), and records each connection's first
/// request line. With `credentials` (a `Proxy-Authorization` value) it answers
/// anything else `407`.
pub struct ForwardProxy {
    pub addr: SocketAddr,
    /// `METHOD target` of each connection's first request, and `407 METHOD target`
    /// for refused ones.
    pub seen: Arc<Mutex<Vec<String>>>,
}

pub fn forward_proxy(rt: &tokio::runtime::Runtime, credentials: Option<String>) -> ForwardProxy {
    forward_proxy_over(rt, credentials, None)
}

/// A forward proxy spoken to over TLS (`https://`), with `tls`'s certificate.
pub fn forward_proxy_tls(
    rt: &tokio::runtime::Runtime,
    credentials: Option<String>,
    tls: tokio_rustls::TlsAcceptor,
) -> ForwardProxy {
    forward_proxy_over(rt, credentials, Some(tls))
}

fn forward_proxy_over(
    rt: &tokio::runtime::Runtime,
    credentials: Option<String>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> ForwardProxy {
    let credentials = Arc::new(credentials);
    loopback_server(rt, move |tcp, log| {
        let (credentials, tls) = (credentials.clone(), tls.clone());
        async move {
            match tls {
                None => forward(tcp, credentials, log).await,
                Some(tls) => match tls.accept(tcp).await {
                    Ok(client) => forward(client, credentials, log).await,
                    Err(e) => log.lock().unwrap().push(format!("TLS failed: {e}")),
                },
            }
        }
    })
}

/// A SOCKS5 proxy (RFC 1928, RFC 1929 when `credentials` are given) reaching
/// loopback only; `seen` gets `CONNECT host:port` for each tunnel, `refused user`
/// for wrong credentials.
pub fn socks_proxy(
    rt: &tokio::runtime::Runtime,
    credentials: Option<(String, String)>,
) -> ForwardProxy {
    let credentials = Arc::new(credentials);
    loopback_server(rt, move |tcp, log| {
        let credentials = credentials.clone();
        async move {
            let _ = socks_tunnel(tcp, credentials, log).await;
        }
    })
}

/// A server on 127.0.0.1 that runs `serve` on each connection, with the log its
/// [`ForwardProxy::seen`] shows.
fn loopback_server<F, Fut>(rt: &tokio::runtime::Runtime, serve: F) -> ForwardProxy
where
    F: Fn(TcpStream, Arc<Mutex<Vec<String>>>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    rt.spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(serve(tcp, log.clone()));
        }
    });
    ForwardProxy { addr, seen }
}

async fn socks_tunnel(
    mut client: TcpStream,
    credentials: Arc<Option<(String, String)>>,
    seen: Arc<Mutex<Vec<String>>>,
) -> Option<()> {
    let mut head = [0u8; 2];
    client.read_exact(&mut head).await.ok()?;
    let mut methods = vec![0u8; usize::from(head[1])];
    client.read_exact(&mut methods).await.ok()?;
    let wanted = if credentials.is_some() { 2 } else { 0 };
    if !methods.contains(&wanted) {
        client.write_all(&[5, 0xFF]).await.ok()?;
        return None;
    }
    client.write_all(&[5, wanted]).await.ok()?;
    if let Some((user, password)) = credentials.as_ref() {
        let field = |n: usize| vec![0u8; n];
        let mut v = [0u8; 2];
        client.read_exact(&mut v).await.ok()?;
        let mut u = field(usize::from(v[1]));
        client.read_exact(&mut u).await.ok()?;
        let mut plen = [0u8; 1];
        client.read_exact(&mut plen).await.ok()?;
        let mut p = field(usize::from(plen[0]));
        client.read_exact(&mut p).await.ok()?;
        if u != user.as_bytes() || p != password.as_bytes() {
            seen.lock()
                .unwrap()
                .push(format!("refused {}", String::from_utf8_lossy(&u)));
            client.write_all(&[1, 1]).await.ok()?;
            return None;
        }
        client.write_all(&[1, 0]).await.ok()?;
    }
    let mut request = [0u8; 4];
    client.read_exact(&mut request).await.ok()?;
    assert_eq!(request[1], 1, "only CONNECT");
    let host = match request[3] {
        1 => {
            let mut a = [0u8; 4];
            client.read_exact(&mut a).await.ok()?;
            std::net::Ipv4Addr::from(a).to_string()
        }
        3 => {
            let mut len = [0u8; 1];
            client.read_exact(&mut len).await.ok()?;
            let mut name = vec![0u8; usize::from(len[0])];
            client.read_exact(&mut name).await.ok()?;
            String::from_utf8(name).ok()?
        }
        other => panic!("address type {other}"),
    };
    let mut port = [0u8; 2];
    client.read_exact(&mut port).await.ok()?;
    let port = u16::from_be_bytes(port);
    seen.lock().unwrap().push(format!("CONNECT {host}:{port}"));
    let ip: std::net::IpAddr = match host.as_str() {
        "localhost" => "127.0.0.1".parse().unwrap(),
        h => h.parse().expect("an address"),
    };
    assert!(ip.is_loopback(), "the test proxy reaches loopback only");
    let Ok(mut server) = TcpStream::connect((ip, port)).await else {
        client
            .write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0])
            .await
            .ok()?;
        return None;
    };
    client
        .write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0])
        .await
        .ok()?;
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
    Some(())
}

async fn forward<C>(mut client: C, credentials: Arc<Option<String>>, seen: Arc<Mutex<Vec<String>>>)
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut buf = Vec::new();
    let head_len = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0u8; 4096];
        match client.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        assert!(buf.len() < 65_536, "request head too long");
    };
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    req.parse(&buf[..head_len]).unwrap();
    let (method, target) = (
        req.method.unwrap().to_string(),
        req.path.unwrap().to_string(),
    );
    let authorized = credentials.as_deref().is_none_or(|c| {
        req.headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case("proxy-authorization") && h.value == c.as_bytes())
    });
    if !authorized {
        seen.lock().unwrap().push(format!("407 {method} {target}"));
        let _ = client
            .write_all(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                  Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n",
            )
            .await;
        return;
    }
    seen.lock().unwrap().push(format!("{method} {target}"));
    let authority = match method.as_str() {
        "CONNECT" => target.clone(),
        _ => target
            .parse::<hudsucker::hyper::Uri>()
            .ok()
            .and_then(|u| u.authority().map(|a| a.to_string()))
            .expect("an absolute-form target"),
    };
    let (host, port) = authority.rsplit_once(':').expect("a port");
    let host = match host {
        "localhost" => "127.0.0.1",
        h => h,
    };
    let ip: std::net::IpAddr = host.parse().expect("an address");
    assert!(ip.is_loopback(), "the test proxy reaches loopback only");
    let Ok(mut server) = TcpStream::connect((ip, port.parse::<u16>().unwrap())).await else {
        let _ = client
            .write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            .await;
        return;
    };
    if method == "CONNECT" {
        if client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await
            .is_err()
        {
            return;
        }
    } else {
        // The head without the proxy's credentials, then whatever followed it.
        let mut head = Vec::new();
        for line in buf[..head_len].split_inclusive(|&b| b == b'\n') {
            if !line
                .to_ascii_lowercase()
                .starts_with(b"proxy-authorization:")
            {
                head.extend_from_slice(line);
            }
        }
        if server.write_all(&head).await.is_err() {
            return;
        }
    }
    if server.write_all(&buf[head_len..]).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}

/// A DNS query (standard, RD) with `id` for `name`, type A, class IN.
pub fn dns_query(id: u16, name: &str) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    m
}

/// Sends `query` from a socket bound to `from` (`IP:0`) to `to` and returns the
/// answer, and where it came from.
pub fn dns_ask(from: &str, to: SocketAddr, query: &[u8]) -> (Vec<u8>, SocketAddr) {
    let socket = std::net::UdpSocket::bind(from).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    socket.send_to(query, to).unwrap();
    let mut buf = vec![0u8; 4096];
    let (n, at) = socket
        .recv_from(&mut buf)
        .expect("an answer to the DNS query");
    buf.truncate(n);
    (buf, at)
}

/// The answer to `query` giving `addr` (type A, TTL 60) to its first question, or
/// `None` for a message too short to be a query.
fn fake_answer(query: &[u8], addr: std::net::Ipv4Addr) -> Option<Vec<u8>> {
    let mut answer = query.to_vec();
    if answer.len() < 12 {
        return None;
    }
    // A response, recursion available, one answer: a pointer to the question's name.
    answer[2] |= 0x80;
    answer[3] = 0x80;
    answer[6..8].copy_from_slice(&[0, 1]);
    answer.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
    answer.extend_from_slice(&addr.octets());
    Some(answer)
}

/// A resolver on 127.0.0.1 that answers each query's first question with `addr`,
/// over UDP and over TCP on the same port, for as long as the test runs.
pub fn fake_resolver(addr: std::net::Ipv4Addr) -> SocketAddr {
    use std::io::{Read, Write};
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let at = socket.local_addr().unwrap();
    let listener = std::net::TcpListener::bind(at).unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            if let Some(answer) = fake_answer(&buf[..n], addr) {
                let _ = socket.send_to(&answer, from);
            }
        }
    });
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            let mut len = [0u8; 2];
            while stream.read_exact(&mut len).is_ok() {
                let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
                if stream.read_exact(&mut query).is_err() {
                    break;
                }
                let Some(answer) = fake_answer(&query, addr) else {
                    break;
                };
                let framed = [&(answer.len() as u16).to_be_bytes()[..], &answer].concat();
                if stream.write_all(&framed).is_err() {
                    break;
                }
            }
        }
    });
    at
}
