//! `consentry proxy` under hostile and unlucky conditions (issue 4, "Reliability"):
//! clients that go away mid body, upstreams that reset the connection, slow clients,
//! malformed requests, and 10 000 sequential connections. Each scenario runs the real
//! proxy binary against local servers on 127.0.0.1 only, then checks that the proxy
//! still serves and what it recorded: every exchange exactly once (count and unique
//! ids in `proxy-exchanges.jsonl`), with an anomaly when it did not complete.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::proxy_harness::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Bytes a misbehaving upstream announces for a body it never finishes.
const ANNOUNCED: usize = 100_000;

/// An upstream on 127.0.0.1 that reads a request head and then, by path:
/// `/reset-head` resets the connection (TCP RST) before any response;
/// `/reset-body` sends a head announcing [`ANNOUNCED`] bytes and 1 000 of them, then
/// resets; `/silent` never answers (the connection stays open a minute); anything
/// else gets a small complete response.
fn rude_upstream(rt: &tokio::runtime::Runtime) -> SocketAddr {
    let l = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = l.local_addr().unwrap();
    rt.spawn(async move {
        loop {
            let Ok((mut tcp, _)) = l.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if tcp.read(&mut b).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(b[0]);
                }
                let line = String::from_utf8_lossy(&head).into_owned();
                let path = line.split(' ').nth(1).unwrap_or("/").to_string();
                match path.as_str() {
                    "/reset-head" => {}
                    "/silent" => {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        return;
                    }
                    "/reset-body" => {
                        let h = format!("HTTP/1.1 200 OK\r\nContent-Length: {ANNOUNCED}\r\n\r\n");
                        tcp.write_all(h.as_bytes()).await.unwrap();
                        tcp.write_all(&[b'x'; 1000]).await.unwrap();
                        tcp.flush().await.unwrap();
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    _ => {
                        let _ = tcp
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
                            .await;
                        return;
                    }
                }
                // Linger 0: close() sends RST instead of FIN.
                tcp.set_zero_linger().unwrap();
                drop(tcp);
            });
        }
    });
    addr
}

/// Writes `request` to the proxy, then reads what comes back until the proxy closes
/// the connection (or 15 s pass: then `None`).
async fn raw(proxy: SocketAddr, request: &[u8]) -> Option<Vec<u8>> {
    let mut tcp = TcpStream::connect(proxy).await.unwrap();
    // The proxy may answer (and close) before it has read everything: that is fine.
    let _ = tcp.write_all(request).await;
    let mut all = Vec::new();
    match tokio::time::timeout(Duration::from_secs(15), tcp.read_to_end(&mut all)).await {
        Ok(_) => Some(all),
        Err(_) => None,
    }
}

fn status_of(response: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(response.get(..12)?).ok()?;
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// A complete plain request through the proxy still works (the proxy keeps serving).
fn still_serves(rt: &tokio::runtime::Runtime, p: &mut Proxy, up: &Upstreams, tag: &str) {
    assert!(p.is_running(), "the proxy exited");
    let req = format!(
        "GET http://{}/{tag} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        up.http, up.http
    );
    let got = rt.block_on(raw(p.addr, req.as_bytes())).expect("answered");
    assert!(
        got.ends_with(format!("hello /{tag}\n").as_bytes()),
        "{}",
        String::from_utf8_lossy(&got)
    );
}

/// The exchanges recorded for `path`, once `n` of them are there (and a moment later,
/// to see a duplicate if one were coming).
fn recorded(p: &Proxy, path: &str, n: usize) -> Vec<serde_json::Value> {
    p.wait_exchanges(path, |xs| {
        xs.iter().filter(|x| x["path"] == path).count() >= n
    });
    std::thread::sleep(Duration::from_millis(300));
    p.jsonl("proxy-exchanges.jsonl")
        .into_iter()
        .filter(|x| x["path"] == path)
        .collect()
}

fn anomaly_kinds(x: &serde_json::Value) -> Vec<String> {
    x["anomalies"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|a| a["kind"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Every exchange id in the output is unique.
fn assert_unique_ids(p: &Proxy) -> usize {
    let xs = p.jsonl("proxy-exchanges.jsonl");
    let mut ids: Vec<&str> = xs.iter().map(|x| x["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n, "duplicate exchange ids");
    n
}

#[test]
fn client_going_away_mid_request_body_and_mid_response_body() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let up = upstreams(&rt, dir.path());
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let mut p = Proxy::start_for(dir.path(), &case, &up);

    // Mid request body: 1 000 of 100 000 announced bytes, then the client closes.
    let path = format!("/echo?adid={AD_ID}");
    rt.block_on(async {
        let mut tcp = TcpStream::connect(p.addr).await.unwrap();
        let head = format!(
            "POST http://{}{path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {ANNOUNCED}\r\n\r\n",
            up.http, up.http
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        tcp.write_all(&[b'a'; 1000]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    });
    let xs = recorded(&p, &path, 1);
    assert_eq!(xs.len(), 1, "recorded exactly once: {xs:#?}");
    assert_eq!(xs[0]["digests"]["request_bytes"], 1000, "{:#}", xs[0]);
    assert!(
        anomaly_kinds(&xs[0]).contains(&"body-error".to_string()),
        "{:#}",
        xs[0]
    );
    // The identifier in the query is analysed although the body never completed.
    assert_eq!(p.findings_for(&path)[0]["rule"], "share-before-consent");
    still_serves(&rt, &mut p, &up, "after-request-cut");

    // Mid response body: 256 MiB announced, the client reads 64 kB and closes.
    rt.block_on(async {
        let mut tcp = TcpStream::connect(p.addr).await.unwrap();
        let req = format!(
            "GET http://{}/huge HTTP/1.1\r\nHost: {}\r\n\r\n",
            up.http, up.http
        );
        tcp.write_all(req.as_bytes()).await.unwrap();
        let mut got = 0;
        let mut buf = vec![0u8; 16 * 1024];
        while got < 64 * 1024 {
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(n > 0);
            got += n;
        }
    });
    let xs = recorded(&p, "/huge", 1);
    assert_eq!(xs.len(), 1, "recorded exactly once: {xs:#?}");
    assert_eq!(
        anomaly_kinds(&xs[0]),
        ["response-incomplete"],
        "{:#}",
        xs[0]
    );
    assert!(xs[0]["digests"]["response_bytes"].as_u64().unwrap() < HUGE_RESPONSE as u64);

    // The same over HTTPS: CONNECT, TLS with our CA, a partial upload, gone.
    let exported = p.ca_der();
    let tls_path = format!("/echo?tls=1&adid={AD_ID}");
    rt.block_on(async {
        let mut tls = connect_tls(p.addr, up.https, &exported).await.unwrap();
        let head = format!(
            "POST {tls_path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {ANNOUNCED}\r\n\r\n",
            up.https
        );
        tls.write_all(head.as_bytes()).await.unwrap();
        tls.write_all(&[b'a'; 500]).await.unwrap();
        tls.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    });
    let xs = recorded(&p, &tls_path, 1);
    assert_eq!(xs.len(), 1, "{xs:#?}");
    assert!(
        anomaly_kinds(&xs[0]).contains(&"body-error".to_string()),
        "{:#}",
        xs[0]
    );

    // HTTP/2 inside the tunnel: curl gives up on a response that never ends (its
    // stream is reset, the connection closed); the exchange is recorded once.
    let out = std::process::Command::new("curl")
        .args(["-sS", "--http2", "--max-time", "2", "--noproxy", ""])
        .args([
            "--proxy",
            &p.url(),
            "--cacert",
            p.ca_pem().to_str().unwrap(),
        ])
        .arg(format!("https://{}/stall", up.https))
        .output()
        .expect("curl must be installed");
    assert_eq!(out.status.code(), Some(28), "curl timed out");
    assert_eq!(out.stdout, b"first chunk\n");
    let xs = recorded(&p, "/stall", 1);
    assert_eq!(xs.len(), 1, "{xs:#?}");
    assert_eq!(xs[0]["http_version"], "HTTP/2");
    assert_eq!(
        anomaly_kinds(&xs[0]),
        ["response-incomplete"],
        "{:#}",
        xs[0]
    );
    still_serves(&rt, &mut p, &up, "after-response-cut");
    p.wait_exchanges("all", |xs| xs.len() == 6);
    assert_eq!(assert_unique_ids(&p), 6);
    let (status, err) = p.stop();
    assert!(status.success());
    // A client that went away is not reported as a failing server.
    assert!(
        err.iter().all(|l| !l.contains("upstream 127.0.0.1 failed")),
        "{err:#?}"
    );
}

#[test]
fn upstream_resets_give_502_or_a_cut_body_and_one_exchange_with_an_anomaly() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let up = upstreams(&rt, dir.path());
    let rude = rude_upstream(&rt);
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let mut p = Proxy::start(dir.path(), &case, &[]);

    // Reset before the response head: the client gets a 502 with a readable body.
    let req = format!(
        "GET http://{rude}/reset-head HTTP/1.1\r\nHost: {rude}\r\nConnection: close\r\n\r\n"
    );
    let got = rt.block_on(raw(p.addr, req.as_bytes())).expect("answered");
    assert_eq!(
        status_of(&got),
        Some(502),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert!(String::from_utf8_lossy(&got).contains("could not reach 127.0.0.1"));
    let xs = recorded(&p, "/reset-head", 1);
    assert_eq!(xs.len(), 1, "recorded exactly once: {xs:#?}");
    assert!(xs[0].get("response").is_none(), "{:#}", xs[0]);
    assert_eq!(anomaly_kinds(&xs[0]), ["upstream-error"], "{:#}", xs[0]);

    // Reset in the middle of the body: the client gets the head and a cut body (the
    // connection ends short of Content-Length), never a complete-looking response.
    let req = format!("GET http://{rude}/reset-body HTTP/1.1\r\nHost: {rude}\r\n\r\n");
    let got = rt.block_on(raw(p.addr, req.as_bytes())).expect("closed");
    assert_eq!(
        status_of(&got),
        Some(200),
        "{}",
        String::from_utf8_lossy(&got)
    );
    let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
    assert!(
        text.contains(&format!("content-length: {ANNOUNCED}")),
        "{text}"
    );
    assert_eq!(body_of(&got).len(), 1000);
    let xs = recorded(&p, "/reset-body", 1);
    assert_eq!(xs.len(), 1, "recorded exactly once: {xs:#?}");
    assert_eq!(xs[0]["response"]["status"], 200);
    assert_eq!(anomaly_kinds(&xs[0]), ["body-error"], "{:#}", xs[0]);
    assert_eq!(xs[0]["digests"]["response_bytes"], 1000);

    // The same host still answers a normal request, and so does everything else.
    let req =
        format!("GET http://{rude}/fine HTTP/1.1\r\nHost: {rude}\r\nConnection: close\r\n\r\n");
    let got = rt.block_on(raw(p.addr, req.as_bytes())).expect("answered");
    assert!(
        got.ends_with(b"\r\n\r\nok\n"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    still_serves(&rt, &mut p, &up, "after-resets");
    p.wait_exchanges("all four", |xs| xs.len() >= 4);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(assert_unique_ids(&p), 4);
    let (status, _) = p.stop();
    assert!(status.success());
}

/// Reads from `io` until what came ends with `end` (panics after 15 s without a byte,
/// rather than hang).
async fn read_through(io: &mut (impl tokio::io::AsyncRead + Unpin), end: &[u8]) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(end) {
        let n = tokio::time::timeout(Duration::from_secs(15), io.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("nothing more for 15 s: {}", String::from_utf8_lossy(&got)))
            .unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    got
}

/// Sends a `POST` of `path` announcing `body`, reads the answer the upstream gives
/// before taking any of it, then sends `body`, and then a `GET` of `next` on the
/// same connection (HTTP to `target`, or with `tls` as the exported CA, HTTPS
/// through a `CONNECT` tunnel). Both responses.
async fn post_after_the_answer(
    proxy: SocketAddr,
    target: SocketAddr,
    (path, next): (&str, &str),
    body: &[u8],
    tls: Option<&[u8]>,
) -> (Vec<u8>, Vec<u8>) {
    let base = match tls {
        None => format!("http://{target}"),
        Some(_) => String::new(),
    };
    let post = format!(
        "POST {base}{path} HTTP/1.1\r\nHost: {target}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    let get = format!("GET {base}{next} HTTP/1.1\r\nHost: {target}\r\n\r\n");
    async fn run(
        io: &mut (impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin),
        post: String,
        body: &[u8],
        get: String,
        next: &str,
    ) -> (Vec<u8>, Vec<u8>) {
        io.write_all(post.as_bytes()).await.unwrap();
        io.flush().await.unwrap();
        let first = read_through(io, b"\r\n\r\nok\n").await;
        io.write_all(body).await.unwrap();
        io.write_all(get.as_bytes()).await.unwrap();
        io.flush().await.unwrap();
        let second = read_through(io, format!("hello {next}\n").as_bytes()).await;
        (first, second)
    }
    match tls {
        None => {
            let mut tcp = TcpStream::connect(proxy).await.unwrap();
            run(&mut tcp, post, body, get, next).await
        }
        Some(ca) => {
            let mut io = connect_tls(proxy, target, ca).await.unwrap();
            run(&mut io, post, body, get, next).await
        }
    }
}

#[test]
fn a_request_body_the_server_answers_before_reading_is_still_analysed() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let up = upstreams(&rt, dir.path());
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let mut p = Proxy::start_for(dir.path(), &case, &up);
    let exported = p.ca_der();

    // The upstream answers `/answers-early…` without reading the body; the client
    // sends its body only once it has that answer, then its next request on the same
    // connection. Plain HTTP, then an intercepted TLS tunnel.
    let body = format!(r#"{{"event":"open","adid":"{AD_ID}"}}"#);
    for (target, path, tls) in [
        (up.http, "/answers-early", None),
        (up.https, "/answers-early-tls", Some(&exported[..])),
    ] {
        let next = format!("/after{path}");
        let (first, second) = rt.block_on(post_after_the_answer(
            p.addr,
            target,
            (path, &next),
            body.as_bytes(),
            tls,
        ));
        assert_eq!(
            status_of(&first),
            Some(200),
            "{}",
            String::from_utf8_lossy(&first)
        );
        assert_eq!(
            status_of(&second),
            Some(200),
            "{}",
            String::from_utf8_lossy(&second)
        );

        let xs = recorded(&p, path, 1);
        assert_eq!(xs.len(), 1, "recorded exactly once: {xs:#?}");
        let x = &xs[0];
        assert_eq!(x["digests"]["request_bytes"], body.len(), "{x:#}");
        assert_eq!(
            x["digests"]["request_sha256"],
            hex(ring::digest::digest(&ring::digest::SHA256, body.as_bytes()).as_ref()),
            "{x:#}"
        );
        assert_eq!(anomaly_kinds(x), ["request-body-not-forwarded"], "{x:#}");
        let detail = x["anomalies"][0]["detail"].as_str().unwrap();
        let read = format!(
            "0 of its bytes were passed on; the proxy read the next {} from the client \
             for the analysis only, to its end",
            body.len()
        );
        assert!(detail.ends_with(&read), "{detail}");
        // The identifier travelled in the body only: the finding comes from it.
        let found = p.findings_for(path);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0]["rule"], "share-before-consent");
        assert_eq!(
            found[0]["data"][0]["where"], "body:$.adid",
            "{:#}",
            found[0]
        );
        assert_eq!(recorded(&p, &next, 1).len(), 1);
    }

    // HTTP/2 on both sides: the upstream's early answer resets the stream towards
    // the proxy; the client sends its body on its stream after the answer.
    let h2_path = "/answers-early-h2";
    let (status, answer, send, conn) = rt.block_on(async {
        use http_body_util::BodyExt;
        let (mut send, conn) = h2_through_tunnel(p.addr, up.https, &exported).await;
        let (tx, rx) = hudsucker::futures::channel::mpsc::unbounded::<
            Result<http_body::Frame<bytes::Bytes>, std::convert::Infallible>,
        >();
        let req = hyper::Request::post(format!("https://{}{h2_path}", up.https))
            .header("content-type", "application/json")
            .body(http_body_util::StreamBody::new(rx))
            .unwrap();
        let within = Duration::from_secs(15);
        let res = tokio::time::timeout(within, send.send_request(req))
            .await
            .expect("an answer within 15 s")
            .unwrap();
        let status = res.status();
        let answer = tokio::time::timeout(within, res.into_body().collect())
            .await
            .expect("the answer's body within 15 s")
            .unwrap()
            .to_bytes();
        tx.unbounded_send(Ok(http_body::Frame::data(body.clone().into())))
            .unwrap();
        drop(tx); // the end of the stream
        (status, answer, send, conn)
    });
    // The connection's task goes on sending the body on the runtime's threads; the
    // exchange is written once the proxy has read it to its end.
    let exchanges = recorded(&p, h2_path, 1);
    drop(send);
    conn.abort();
    assert_eq!(status, 200);
    assert_eq!(&answer[..], b"ok\n");
    assert_eq!(exchanges.len(), 1, "{exchanges:#?}");
    let x = &exchanges[0];
    assert_eq!(x["http_version"], "HTTP/2", "{x:#}");
    assert_eq!(x["digests"]["request_bytes"], body.len(), "{x:#}");
    assert_eq!(anomaly_kinds(x), ["request-body-not-forwarded"], "{x:#}");
    let detail = x["anomalies"][0]["detail"].as_str().unwrap();
    assert!(detail.ends_with("to its end"), "{detail}");
    assert_eq!(p.findings_for(h2_path).len(), 1);

    // A body far past the analysis cap: read up to the cap, the rest left unread
    // (the client's connection is then closed, as it was before).
    const LONG: usize = 1 << 20;
    let mut long = format!(r#"{{"adid":"{AD_ID}","pad":""#).into_bytes();
    long.resize(LONG - 2, b'x');
    long.extend_from_slice(br#""}"#);
    rt.block_on(async {
        let mut tcp = TcpStream::connect(p.addr).await.unwrap();
        let post = format!(
            "POST http://{0}/answers-early-long HTTP/1.1\r\nHost: {0}\r\nContent-Length: {LONG}\r\n\r\n",
            up.http
        );
        tcp.write_all(post.as_bytes()).await.unwrap();
        read_through(&mut tcp, b"\r\n\r\nok\n").await;
        // The proxy stops reading: writing the rest may fail.
        let _ = tcp.write_all(&long).await;
    });
    let xs = recorded(&p, "/answers-early-long", 1);
    assert_eq!(xs.len(), 1, "{xs:#?}");
    let x = &xs[0];
    let read = x["digests"]["request_bytes"].as_u64().unwrap();
    assert!(read >= CAP as u64 && read < LONG as u64, "{x:#}");
    assert!(
        anomaly_kinds(x).contains(&"request-body-not-forwarded".to_string()),
        "{x:#}"
    );
    assert!(
        x["anomalies"][0]["detail"]
            .as_str()
            .unwrap()
            .ends_with(&format!(
                "up to --body-cap ({CAP} bytes); the rest was not read"
            )),
        "{x:#}"
    );
    assert_eq!(p.findings_for("/answers-early-long").len(), 1);

    still_serves(&rt, &mut p, &up, "after-early-answers");
    let (status, _) = p.stop();
    assert!(status.success());
}

#[test]
fn slow_clients_are_disconnected_after_the_header_timeout() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let up = upstreams(&rt, dir.path());
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let mut p = Proxy::start(dir.path(), &case, &["--header-timeout", "1"]);
    let exported = p.ca_der();
    rt.block_on(async {
        // Half a request head, then nothing: closed after about a second.
        let started = Instant::now();
        let half = format!("GET http://{}/slow HTTP/1.1\r\nHost: ", up.http);
        let got = raw_keep_open(p.addr, half.as_bytes()).await;
        assert!(got.is_some(), "the proxy never closed the slow connection");
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(5),
            "{took:?}"
        );

        // An idle keep-alive connection after a complete exchange: closed too.
        let req = format!(
            "GET http://{}/first HTTP/1.1\r\nHost: {}\r\n\r\n",
            up.http, up.http
        );
        let got = raw_keep_open(p.addr, req.as_bytes())
            .await
            .expect("closed when idle");
        assert!(
            got.ends_with(b"hello /first\n"),
            "{}",
            String::from_utf8_lossy(&got)
        );

        // Inside an intercepted tunnel: half a head over TLS, closed as well.
        let mut tls = connect_tls(p.addr, up.https, &exported).await.unwrap();
        tls.write_all(b"GET /slow-tls HTTP/1.1\r\nHost: x")
            .await
            .unwrap();
        let mut sink = Vec::new();
        let started = Instant::now();
        let r = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut sink)).await;
        assert!(r.is_ok(), "the tunnel's slow request was never closed");
        assert!(started.elapsed() < Duration::from_secs(5));
    });
    // The control API: a client that connects and says nothing is closed after 5 s.
    let started = Instant::now();
    let silent = rt.block_on(async {
        let mut tcp = TcpStream::connect(p.control.unwrap()).await.unwrap();
        let mut sink = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut sink)).await
    });
    assert!(silent.is_ok(), "the control API kept a silent client");
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(p.status()["connections"], 0, "and still answers");
    // A slow client is not an exchange: nothing was recorded for it.
    still_serves(&rt, &mut p, &up, "after-slow");
    let xs = p.jsonl("proxy-exchanges.jsonl");
    assert!(xs
        .iter()
        .all(|x| x["path"] != "/slow" && x["path"] != "/slow-tls"));
    let (status, _) = p.stop();
    assert!(status.success());
}

/// Writes `bytes`, keeps the connection open, and returns what the proxy sent once it
/// closes the connection (`None` if it has not after 10 s).
async fn raw_keep_open(proxy: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    let mut tcp = TcpStream::connect(proxy).await.unwrap();
    tcp.write_all(bytes).await.unwrap();
    let mut all = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut all))
        .await
        .ok()
        .map(|_| all)
}

#[test]
fn malformed_requests_get_4xx_or_a_close_and_the_proxy_keeps_serving() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let up = upstreams(&rt, dir.path());
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let mut p = Proxy::start_for(dir.path(), &case, &up);
    let h = up.http;
    let huge_header = format!(
        "GET http://{h}/huge HTTP/1.1\r\nHost: {h}\r\nX-Big: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let many_headers = format!(
        "GET http://{h}/many HTTP/1.1\r\nHost: {h}\r\n{}\r\n",
        (0..500)
            .map(|i| format!("X-H{i}: v\r\n"))
            .collect::<String>()
    );
    let cases: Vec<(&str, Vec<u8>, &[u16])> = vec![
        ("garbage", b"\x00\xff\x13garbage\r\n\r\n".to_vec(), &[400]),
        ("bad request line", b"GET\r\n\r\n".to_vec(), &[400]),
        ("bad version", format!("GET http://{h}/ HTTP/9.9\r\n\r\n").into_bytes(), &[400, 505]),
        ("bad header", format!("GET http://{h}/ HTTP/1.1\r\nHo st: x\r\n\r\n").into_bytes(), &[400]),
        ("huge header", huge_header.into_bytes(), &[431]),
        ("500 headers", many_headers.into_bytes(), &[431]),
        ("bad CONNECT target", b"CONNECT / HTTP/1.1\r\n\r\n".to_vec(), &[400]),
        (
            "two content lengths",
            format!("POST http://{h}/echo HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab").into_bytes(),
            &[400],
        ),
        (
            "invalid chunked body",
            format!("POST http://{h}/echo HTTP/1.1\r\nHost: {h}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n").into_bytes(),
            &[400],
        ),
    ];
    for (what, bytes, allowed) in &cases {
        let (got, closed) = rt.block_on(answer_or_close(p.addr, bytes));
        assert!(
            closed || !got.is_empty(),
            "{what}: the proxy neither answered nor closed"
        );
        eprintln!("{what}: {:?}, closed: {closed}", status_of(&got));
        // An answer is a 4xx/5xx from the list; no answer at all (a close) is fine too.
        if !got.is_empty() {
            let status = status_of(&got);
            assert!(
                status.is_some_and(|s| allowed.contains(&s)),
                "{what}: {}",
                String::from_utf8_lossy(&got[..got.len().min(300)])
            );
        }
        still_serves(
            &rt,
            &mut p,
            &up,
            &format!("after-{}", what.replace(' ', "-")),
        );
    }
    // Inside an intercepted tunnel: garbage and an authority-form request line.
    let exported = p.ca_der();
    for (what, inner) in [
        ("tls garbage", &b"\x00\xffgarbage\r\n\r\n"[..]),
        (
            "tls CONNECT inside",
            b"CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n",
        ),
        ("tls asterisk", b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"),
    ] {
        rt.block_on(async {
            let mut tls = connect_tls(p.addr, up.https, &exported).await.unwrap();
            tls.write_all(inner).await.unwrap();
            let mut got = Vec::new();
            let mut buf = vec![0u8; 16 * 1024];
            let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
            let closed = loop {
                match tokio::time::timeout_at(deadline, tls.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => break true,
                    Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
                    Err(_) => break false,
                }
            };
            eprintln!(
                "{what}: {:?}, closed: {closed}",
                String::from_utf8_lossy(&got)
            );
            assert!(
                closed || !got.is_empty(),
                "{what}: never answered or closed"
            );
        });
        still_serves(
            &rt,
            &mut p,
            &up,
            &format!("after-{}", what.replace(' ', "-")),
        );
    }
    // The broken chunked body is the client's fault, recorded as such.
    let xs = p.jsonl("proxy-exchanges.jsonl");
    let chunked: Vec<_> = xs
        .iter()
        .filter(|x| x["method"] == "POST" && x["path"] == "/echo")
        .collect();
    assert_eq!(chunked.len(), 1, "{xs:#?}");
    assert_eq!(
        anomaly_kinds(chunked[0]),
        ["body-error"],
        "{:#}",
        chunked[0]
    );
    assert!(
        chunked[0]["anomalies"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("chunk"),
        "{:#}",
        chunked[0]
    );
    let (status, err) = p.stop();
    assert!(status.success());
    // No panic at all (hudsucker 0.25 had one here, on a CONNECT inside a tunnel).
    assert!(
        err.iter().all(|l| !l.contains("panicked")),
        "a malformed request made the proxy panic: {err:#?}"
    );
}

#[test]
fn connect_inside_a_tunnel_gets_a_405_and_the_tunnel_goes_on() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let up = upstreams(&rt, dir.path());
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let mut p = Proxy::start_for(dir.path(), &case, &up);
    let exported = p.ca_der();
    let got = rt.block_on(async {
        let mut tls = connect_tls(p.addr, up.https, &exported).await.unwrap();
        // A nested CONNECT, then an ordinary request on the same TLS connection.
        let req = format!(
            "CONNECT {h} HTTP/1.1\r\nHost: {h}\r\n\r\nGET /after-nested HTTP/1.1\r\nHost: {h}\r\nConnection: close\r\n\r\n",
            h = up.https
        );
        tls.write_all(req.as_bytes()).await.unwrap();
        let mut all = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut all))
            .await
            .expect("answered and closed")
            .ok();
        String::from_utf8_lossy(&all).into_owned()
    });
    assert!(got.starts_with("HTTP/1.1 405"), "{got}");
    assert!(got.contains("CONNECT inside a CONNECT tunnel"), "{got}");
    assert!(got.ends_with("hello /after-nested\n"), "{got}");
    still_serves(&rt, &mut p, &up, "after-nested-connect");
    // The nested CONNECT began no exchange; the request after it is recorded once.
    let xs = recorded(&p, "/after-nested", 1);
    assert_eq!(xs.len(), 1, "{xs:#?}");
    assert!(p
        .jsonl("proxy-exchanges.jsonl")
        .iter()
        .all(|x| x["method"] != "CONNECT"));
    let (status, err) = p.stop();
    assert!(status.success());
    assert!(err.iter().all(|l| !l.contains("panicked")), "{err:#?}");
}

/// Reads until the proxy closes the connection; how long that took (panics when it
/// is still open after 10 s).
async fn closed_after(io: impl tokio::io::AsyncRead + Unpin, what: &str) -> Duration {
    closed_since(io, what, Instant::now()).await
}

/// How long after `started` the proxy closed `io`: for a wait whose deadline began
/// before the client's last step (a TLS handshake under load can take a good part
/// of the timeout).
async fn closed_since(
    mut io: impl tokio::io::AsyncRead + Unpin,
    what: &str,
    started: Instant,
) -> Duration {
    let mut sink = Vec::new();
    match tokio::time::timeout(Duration::from_secs(10), io.read_to_end(&mut sink)).await {
        Ok(_) => started.elapsed(),
        Err(_) => panic!("{what}: the proxy kept the connection open"),
    }
}

/// A connection cut by a 1 s timeout: after it, and well before 10 s.
fn assert_cut_at_the_timeout(took: Duration, what: &str) {
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(5),
        "{what}: closed after {took:?}"
    );
}

#[test]
fn silent_clients_are_cut_at_every_stage_before_their_first_request() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let up = upstreams(&rt, dir.path());
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let mut p = Proxy::start_for_with(dir.path(), &case, &up, &["--header-timeout", "1"]);
    let exported = p.ca_der();
    rt.block_on(async {
        // Connects and says nothing.
        let tcp = TcpStream::connect(p.addr).await.unwrap();
        assert_cut_at_the_timeout(closed_after(tcp, "silent").await, "silent");

        // Half of the HTTP/2 preface (h2c with prior knowledge), then nothing.
        let mut tcp = TcpStream::connect(p.addr).await.unwrap();
        tcp.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
        assert_cut_at_the_timeout(closed_after(tcp, "half preface").await, "half preface");

        // CONNECT, then no ClientHello.
        let (tcp, head) = tunnel(p.addr, up.https).await;
        assert!(head.starts_with(b"HTTP/1.1 200"));
        assert_cut_at_the_timeout(closed_after(tcp, "CONNECT").await, "CONNECT, then silence");

        // CONNECT, then the first bytes of a ClientHello (a record of 512 bytes).
        let (mut tcp, _) = tunnel(p.addr, up.https).await;
        tcp.write_all(&[
            0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
        ])
        .await
        .unwrap();
        assert_cut_at_the_timeout(closed_after(tcp, "half hello").await, "half ClientHello");

        // A complete handshake with ALPN h2, then no HTTP/2 preface. One deadline
        // covers everything after the `200`, the handshake included: time it from there.
        let (tcp, _) = tunnel(p.addr, up.https).await;
        let tunnel_open = Instant::now();
        let tls = tls_h2(tcp, up.https, &exported).await;
        assert_cut_at_the_timeout(
            closed_since(tls, "h2", tunnel_open).await,
            "h2 without preface",
        );
    });
    // None of them began an exchange, none is remembered, and the proxy serves.
    still_serves(&rt, &mut p, &up, "after-silent-clients");
    std::thread::sleep(Duration::from_millis(300));
    let xs = p.jsonl("proxy-exchanges.jsonl");
    assert_eq!(xs.len(), 1, "{xs:#?}");
    let s = p.status();
    assert_eq!(s["connections"], 0, "{s}");
    assert_eq!(s["in_flight"], 0, "{s}");
    let (status, err) = p.stop();
    assert!(status.success());
    assert!(err.iter().all(|l| !l.contains("panicked")), "{err:#?}");
}

#[test]
fn stalled_bodies_and_silent_upstreams_are_cut_after_the_body_timeout() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let up = upstreams(&rt, dir.path());
    let rude = rude_upstream(&rt);
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let mut p = Proxy::start_for_with(dir.path(), &case, &up, &["--body-timeout", "1"]);
    let exported = p.ca_der();
    let h = up.http;

    // Half a request body, then silence (connection kept open): a 408, then a close.
    let path = format!("/echo?stalled&adid={AD_ID}");
    let (got, took) = rt.block_on(async {
        let mut tcp = TcpStream::connect(p.addr).await.unwrap();
        let head = format!(
            "POST http://{h}{path} HTTP/1.1\r\nHost: {h}\r\nContent-Length: {ANNOUNCED}\r\n\r\n"
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        tcp.write_all(&[b'a'; 1000]).await.unwrap();
        let started = Instant::now();
        let mut all = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut all))
            .await
            .expect("closed")
            .unwrap();
        (all, started.elapsed())
    });
    assert_eq!(
        status_of(&got),
        Some(408),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert_cut_at_the_timeout(took, "stalled request body");
    let xs = recorded(&p, &path, 1);
    assert_eq!(xs.len(), 1, "recorded exactly once: {xs:#?}");
    assert_eq!(anomaly_kinds(&xs[0]), ["body-error"], "{:#}", xs[0]);
    assert!(
        xs[0]["anomalies"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("--body-timeout"),
        "{:#}",
        xs[0]
    );
    assert_eq!(xs[0]["digests"]["request_bytes"], 1000);
    // Its identifier is analysed all the same.
    assert_eq!(p.findings_for(&path)[0]["rule"], "share-before-consent");

    // The same inside an intercepted tunnel (HTTP/1.1 over TLS).
    let tls_path = "/echo?stalled-tls";
    let (got, took) = rt.block_on(async {
        let mut tls = connect_tls(p.addr, up.https, &exported).await.unwrap();
        let head = format!(
            "POST {tls_path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {ANNOUNCED}\r\n\r\n",
            up.https
        );
        tls.write_all(head.as_bytes()).await.unwrap();
        tls.write_all(&[b'a'; 500]).await.unwrap();
        tls.flush().await.unwrap();
        let started = Instant::now();
        let mut all = Vec::new();
        let r = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut all)).await;
        assert!(r.is_ok(), "closed");
        (all, started.elapsed())
    });
    assert_eq!(
        status_of(&got),
        Some(408),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert_cut_at_the_timeout(took, "stalled request body in a tunnel");
    let xs = recorded(&p, tls_path, 1);
    assert_eq!(xs.len(), 1, "{xs:#?}");
    assert_eq!(anomaly_kinds(&xs[0]), ["body-error"], "{:#}", xs[0]);

    // An upstream that stops mid-response: the client gets what came and a close.
    let (got, took) = rt.block_on(async {
        let mut tcp = TcpStream::connect(p.addr).await.unwrap();
        let req = format!("GET http://{h}/stall HTTP/1.1\r\nHost: {h}\r\n\r\n");
        tcp.write_all(req.as_bytes()).await.unwrap();
        let started = Instant::now();
        let mut all = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut all))
            .await
            .expect("closed")
            .ok();
        (all, started.elapsed())
    });
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("first chunk"), "{text}");
    // Chunked and cut: never the last chunk, so the client knows it is incomplete.
    assert!(!text.ends_with("0\r\n\r\n"), "{text}");
    assert_cut_at_the_timeout(took, "stalled response body");
    let xs = recorded(&p, "/stall", 1);
    assert_eq!(xs.len(), 1, "{xs:#?}");
    assert_eq!(anomaly_kinds(&xs[0]), ["body-error"], "{:#}", xs[0]);
    assert!(
        xs[0]["anomalies"][0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("response body: no data"),
        "{:#}",
        xs[0]
    );

    // An upstream that reads the request and never answers: 504 after the timeout.
    let req =
        format!("GET http://{rude}/silent HTTP/1.1\r\nHost: {rude}\r\nConnection: close\r\n\r\n");
    let started = Instant::now();
    let got = rt.block_on(raw(p.addr, req.as_bytes())).expect("answered");
    assert_eq!(
        status_of(&got),
        Some(504),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert!(String::from_utf8_lossy(&got).contains("no response within 1 s"));
    assert_cut_at_the_timeout(started.elapsed(), "silent upstream");
    let xs = recorded(&p, "/silent", 1);
    assert_eq!(xs.len(), 1, "{xs:#?}");
    assert_eq!(anomaly_kinds(&xs[0]), ["upstream-error"], "{:#}", xs[0]);

    still_serves(&rt, &mut p, &up, "after-stalls");
    p.wait_exchanges("all five", |xs| xs.len() >= 5);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(assert_unique_ids(&p), 5);
    let s = p.status();
    assert_eq!(s["in_flight"], 0, "{s}");
    let (status, _) = p.stop();
    assert!(status.success());
}

/// Writes `request` and reads for up to 3 s: what came back, and whether the proxy
/// closed the connection (a 400 on a keep-alive connection leaves it open).
async fn answer_or_close(proxy: SocketAddr, request: &[u8]) -> (Vec<u8>, bool) {
    let mut tcp = TcpStream::connect(proxy).await.unwrap();
    let _ = tcp.write_all(request).await;
    let mut all = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (all, true),
            Ok(Ok(n)) => all.extend_from_slice(&buf[..n]),
            Err(_) => return (all, false),
        }
    }
}

/// `n` sequential plain HTTP exchanges, each on a new connection.
fn plain_run(rt: &tokio::runtime::Runtime, p: &Proxy, up: &Upstreams, tag: &str, n: usize) {
    rt.block_on(async {
        for i in 0..n {
            // Every tenth request carries the identifier, so the analysis works too.
            let q = if i % 10 == 0 {
                format!("?adid={AD_ID}")
            } else {
                String::new()
            };
            let req = format!(
                "GET http://{}/{tag}/{i}{q} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                up.http, up.http
            );
            let mut tcp = TcpStream::connect(p.addr).await.unwrap();
            tcp.write_all(req.as_bytes()).await.unwrap();
            let mut all = Vec::new();
            tcp.read_to_end(&mut all).await.unwrap();
            assert!(
                all.ends_with(format!("hello /{tag}/{i}{q}\n").as_bytes()),
                "{i}"
            );
        }
    });
}

/// `n` sequential intercepted HTTPS exchanges, each on a new CONNECT.
fn https_run(
    rt: &tokio::runtime::Runtime,
    p: &Proxy,
    up: &Upstreams,
    root: &[u8],
    tag: &str,
    n: usize,
) {
    rt.block_on(async {
        for i in 0..n {
            let mut tls = connect_tls(p.addr, up.https, root).await.unwrap();
            let req = format!(
                "GET /{tag}/{i} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                up.https
            );
            tls.write_all(req.as_bytes()).await.unwrap();
            let mut all = Vec::new();
            let _ = tls.read_to_end(&mut all).await;
            assert!(
                all.ends_with(format!("hello /{tag}/{i}\n").as_bytes()),
                "{i}"
            );
        }
    });
}

/// Growth of the proxy's RSS over the long run that is accepted as "back to the
/// baseline": allocator caches and the analysis' bounded tables, not a leak (a leak
/// of even a few hundred bytes per connection shows in the connection table check).
const RSS_TOLERANCE_KB: u64 = 20 * 1024;

#[test]
fn ten_thousand_sequential_connections_are_each_recorded_once_and_memory_returns() {
    const PLAIN: usize = 10_000;
    const HTTPS: usize = 1_000;
    const WARM: usize = 500;
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let up = upstreams(&rt, dir.path());
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let mut p = Proxy::start_for(dir.path(), &case, &up);
    let root = p.ca_der();
    let started = Instant::now();
    plain_run(&rt, &p, &up, "warm", WARM);
    https_run(&rt, &p, &up, &root, "warmtls", WARM / 5);
    p.wait_exchanges("the warm-up", |xs| xs.len() == WARM + WARM / 5);
    let baseline = p.rss_kb();

    plain_run(&rt, &p, &up, "plain", PLAIN);
    https_run(&rt, &p, &up, &root, "tls", HTTPS);
    let total = WARM + WARM / 5 + PLAIN + HTTPS;
    p.wait_exchanges("every exchange", |xs| xs.len() >= total);
    std::thread::sleep(Duration::from_millis(500));
    let after = p.rss_kb();
    eprintln!(
        "{total} sequential connections in {:.1} s; RSS after warm-up {baseline} kB, after the run {after} kB",
        started.elapsed().as_secs_f64()
    );
    assert!(p.is_running());
    // Exactly once: the count, unique ids, and every path present once.
    assert_eq!(assert_unique_ids(&p), total);
    let xs = p.jsonl("proxy-exchanges.jsonl");
    let mut paths: Vec<&str> = xs.iter().map(|x| x["path"].as_str().unwrap()).collect();
    paths.sort_unstable();
    paths.dedup();
    assert_eq!(paths.len(), total, "a path recorded twice");
    assert!(
        xs.iter().all(|x| x.get("anomalies").is_none()),
        "completed exchanges carry no anomaly"
    );
    // One consent finding per request with the identifier (the repetition adds
    // `excessive-frequency` ones on top).
    let findings = p.jsonl("proxy-findings.jsonl");
    let consent = findings
        .iter()
        .filter(|f| f["rule"] == "share-before-consent")
        .count();
    assert_eq!(consent, (WARM + PLAIN) / 10);
    // Per-connection state is forgotten when the connection ends.
    let s = p.status();
    assert_eq!(s["connections"], 0, "{s}");
    assert_eq!(s["pending_handshakes"], 0, "{s}");
    assert_eq!(s["in_flight"], 0, "{s}");
    assert!(
        after <= baseline + RSS_TOLERANCE_KB,
        "RSS grew from {baseline} kB to {after} kB"
    );
    let (status, _) = p.stop();
    assert!(status.success());
}

/// Reads from `io` until what came ends with `end` (panics after 10 s).
async fn read_until(io: &mut (impl tokio::io::AsyncRead + Unpin), end: &[u8]) {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !all.ends_with(end) {
        let n = tokio::time::timeout_at(deadline, io.read(&mut buf))
            .await
            .expect("answered")
            .unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&all));
        all.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn a_stop_closes_idle_connections_and_pass_through_tunnels_at_once() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let up = upstreams(&rt, dir.path());
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let p = Proxy::start_for_with(
        dir.path(),
        &case,
        &up,
        &["--ignore-host", r"^127\.0\.0\.1$"],
    );
    let (mut tls, mut idle) = rt.block_on(async {
        // A pass-through tunnel (the upstream's own certificate), used and left open.
        let (tcp, head) = tunnel(p.addr, up.https).await;
        assert!(head.starts_with(b"HTTP/1.1 200"));
        let mut tls = tls_to_ip(tcp, up.https, &up.ca_der).await.unwrap();
        tls.write_all(b"GET /through HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        read_until(&mut tls, b"hello /through\n").await;
        // A keep-alive connection after one exchange, idle.
        let mut idle = TcpStream::connect(p.addr).await.unwrap();
        let req = format!(
            "GET http://{}/kept HTTP/1.1\r\nHost: {}\r\n\r\n",
            up.http, up.http
        );
        idle.write_all(req.as_bytes()).await.unwrap();
        read_until(&mut idle, b"hello /kept\n").await;
        (tls, idle)
    });
    let started = Instant::now();
    let (status, err) = p.stop();
    assert!(status.success());
    // Not the 5 s drain: nothing was waiting to be recorded.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}: {err:#?}",
        started.elapsed()
    );
    assert!(err.iter().all(|l| !l.contains("still open")), "{err:#?}");
    rt.block_on(async {
        assert!(closed_after(&mut tls, "tunnel").await < Duration::from_secs(5));
        assert!(closed_after(&mut idle, "idle").await < Duration::from_secs(5));
    });
}

#[test]
fn a_websocket_upgrade_the_server_refuses_gets_a_502_and_is_recorded_once() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let up = upstreams(&rt, dir.path());
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let mut p = Proxy::start_for(dir.path(), &case, &up);
    // The plain HTTP upstream answers the upgrade with an ordinary 200.
    let req = format!(
        "GET http://{h}/socket HTTP/1.1\r\nHost: {h}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        h = up.http
    );
    let got = rt.block_on(answer_or_close(p.addr, req.as_bytes())).0;
    let text = String::from_utf8_lossy(&got);
    assert_eq!(status_of(&got), Some(502), "{text}");
    assert!(text.contains("could not reach 127.0.0.1"), "{text}");
    let xs = recorded(&p, "/socket", 1);
    assert_eq!(xs.len(), 1, "{xs:#?}");
    assert_eq!(anomaly_kinds(&xs[0]), ["upstream-error"], "{:#}", xs[0]);
    still_serves(&rt, &mut p, &up, "after-refused-upgrade");
    let (status, _) = p.stop();
    assert!(status.success());
}

/// TLS on `tcp` (a tunnel to `target`) offering only ALPN `h2`, trusting only `root`
/// (DER); the proxy must choose `h2`.
async fn tls_h2(
    tcp: TcpStream,
    target: SocketAddr,
    root: &[u8],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.to_vec().into()).unwrap();
    let mut cfg = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let name = rustls::pki_types::ServerName::IpAddress(target.ip().into());
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
        .connect(name, tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    tls
}

/// An HTTP/2 client connection (ALPN `h2`) through a `CONNECT` tunnel to `target`,
/// trusting only `root`; the connection's task ends when the proxy closes it.
async fn h2_through_tunnel<B>(
    proxy: SocketAddr,
    target: SocketAddr,
    root: &[u8],
) -> (
    hyper::client::conn::http2::SendRequest<B>,
    tokio::task::JoinHandle<()>,
)
where
    B: http_body::Body<Data = bytes::Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (tcp, head) = tunnel(proxy, target).await;
    assert!(head.starts_with(b"HTTP/1.1 200"));
    let tls = tls_h2(tcp, target, root).await;
    let (send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .unwrap();
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    (send, task)
}

fn h2_get(target: SocketAddr, path: &str) -> hyper::Request<http_body_util::Empty<bytes::Bytes>> {
    hyper::Request::get(format!("https://{target}{path}"))
        .body(http_body_util::Empty::new())
        .unwrap()
}

/// A gRPC-shaped call through the proxy (HTTP/2 both ways, `te: trailers`, a
/// length-prefixed request message): the response's trailers, where gRPC puts the
/// call's status, reach the client unchanged (without them a gRPC client fails the
/// call), and the request is analysed like any other.
#[test]
fn http2_trailers_reach_the_client_as_grpc_needs_them() {
    use http_body_util::BodyExt;
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let up = upstreams(&rt, dir.path());
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let p = Proxy::start_for(dir.path(), &case, &up);
    let exported = p.ca_der();
    let (status, data, trailers) = rt.block_on(async {
        let (mut send, _conn) = h2_through_tunnel(p.addr, up.https, &exported).await;
        // A protobuf message with the advertising id as field 1, gRPC-framed.
        let mut message = vec![0x0a, AD_ID.len() as u8];
        message.extend_from_slice(AD_ID.as_bytes());
        let mut framed = vec![0, 0, 0, 0, message.len() as u8];
        framed.extend_from_slice(&message);
        let req = hyper::Request::post(format!("https://{}/grpc-like", up.https))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(http_body_util::Full::new(bytes::Bytes::from(framed)))
            .unwrap();
        let res = send.send_request(req).await.unwrap();
        let status = res.status();
        let collected = res.into_body().collect().await.unwrap();
        let trailers = collected.trailers().cloned();
        (status, collected.to_bytes(), trailers)
    });
    assert_eq!(status, 200);
    assert_eq!(&data[..], b"\0\0\0\0\x02\x08\x01");
    let trailers = trailers.expect("the response's trailers");
    assert_eq!(trailers.get("grpc-status").unwrap(), "0");
    assert_eq!(trailers.get("grpc-message").unwrap(), "ok");
    p.wait_exchanges("the call", |xs| {
        xs.iter().any(|x| x["path"] == "/grpc-like")
    });
    std::thread::sleep(Duration::from_millis(300));
    let f = p.jsonl("proxy-findings.jsonl");
    assert!(
        f.iter().any(|f| f["data"][0]["type"] == "advertising_id"),
        "{f:#?}"
    );
    // The response's trailer fields are evidence, and listed with its header fields.
    let xs = p.jsonl("proxy-exchanges.jsonl");
    let call = xs.iter().find(|x| x["path"] == "/grpc-like").unwrap();
    assert_eq!(
        call["evidence"]["response_trailer"]["text"], "grpc-status: 0\r\ngrpc-message: ok\r\n",
        "{call:#}"
    );
    assert!(call["evidence"].get("request_trailer").is_none());
    let fields = call["response"]["headers"].as_array().unwrap();
    let status_field = fields.iter().find(|h| h["name"] == "grpc-status").unwrap();
    assert_eq!(status_field["trailer"], true, "{call:#}");
    assert!(fields
        .iter()
        .filter(|h| h["name"] != "grpc-status" && h["name"] != "grpc-message")
        .all(|h| h.get("trailer").is_none()));
    let (status, _) = p.stop();
    assert!(status.success());
}

/// Trailer fields after a request body (RFC 9112 §7.1.2, RFC 9113 §8.1): an SDK may
/// send there what it knows only once the body is sent. The proxy passes them on
/// (over HTTP/1.1 as hyper does: the fields `Trailer:` announced), the analysis
/// searches them with the header fields, as the capture parsers do, and the evidence
/// keeps them; over HTTP/1.1 (chunked, to the proxy in the clear) and HTTP/2
/// (intercepted).
#[test]
fn request_trailer_fields_are_searched_and_kept_as_evidence() {
    use http_body_util::BodyExt;
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let up = upstreams(&rt, dir.path());
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let p = Proxy::start_for(dir.path(), &case, &up);
    let exported = p.ca_der();
    let (h1, h2) = ("/echo-trailers?via=h1", "/echo-trailers?via=h2");
    let h1_answer = rt.block_on(async {
        let mut c = TcpStream::connect(p.addr).await.unwrap();
        let request = format!(
            "POST http://{0}{h1} HTTP/1.1\r\nHost: {0}\r\nTransfer-Encoding: chunked\r\n\
             Trailer: X-Device-Id\r\nConnection: close\r\n\r\n\
             5\r\nhello\r\n0\r\nX-Device-Id: {AD_ID}\r\nX-Unannounced: 1\r\n\r\n",
            up.http
        );
        c.write_all(request.as_bytes()).await.unwrap();
        let mut all = Vec::new();
        c.read_to_end(&mut all).await.unwrap();
        all
    });
    let h1_answer = String::from_utf8_lossy(&h1_answer).into_owned();
    assert!(h1_answer.starts_with("HTTP/1.1 200"), "{h1_answer}");
    assert!(
        h1_answer.ends_with(&format!("trailers:\nx-device-id: {AD_ID}\n")),
        "{h1_answer}"
    );
    let (h2_status, h2_answer) = rt.block_on(async {
        let (mut send, _conn) = h2_through_tunnel(p.addr, up.https, &exported).await;
        let mut trailers = hyper::HeaderMap::new();
        trailers.insert("x-device-id", AD_ID.parse().unwrap());
        let frames = hudsucker::futures::stream::iter([
            Ok::<_, std::convert::Infallible>(http_body::Frame::data(bytes::Bytes::from_static(
                b"hello",
            ))),
            Ok(http_body::Frame::trailers(trailers)),
        ]);
        let req = hyper::Request::post(format!("https://{}{h2}", up.https))
            .body(http_body_util::StreamBody::new(frames))
            .unwrap();
        let res = send.send_request(req).await.unwrap();
        let status = res.status();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, body)
    });
    assert_eq!(h2_status, 200);
    assert_eq!(
        &h2_answer[..],
        format!("trailers:\nx-device-id: {AD_ID}\n").as_bytes()
    );
    for path in [h1, h2] {
        p.wait_exchanges(path, |xs| xs.iter().any(|x| x["path"] == path));
    }
    std::thread::sleep(Duration::from_millis(300));
    let xs = p.jsonl("proxy-exchanges.jsonl");
    for (path, fields) in [
        (h1, format!("x-device-id: {AD_ID}\r\nx-unannounced: 1\r\n")),
        (h2, format!("x-device-id: {AD_ID}\r\n")),
    ] {
        let found = p.findings_for(path);
        assert_eq!(found.len(), 1, "{path}: {found:#?}");
        assert_eq!(found[0]["data"][0]["type"], "advertising_id");
        assert_eq!(
            found[0]["data"][0]["where"], "trailer:x-device-id",
            "{path}"
        );
        let x = xs.iter().find(|x| x["path"] == path).unwrap();
        assert_eq!(x["evidence"]["request_trailer"]["text"], fields, "{x:#}");
    }
    let (status, _) = p.stop();
    assert!(status.success());
}

#[test]
fn idle_http2_connections_are_closed_after_the_header_timeout_and_busy_ones_are_not() {
    use http_body_util::BodyExt;
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let up = upstreams(&rt, dir.path());
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let mut p = Proxy::start_for_with(
        dir.path(),
        &case,
        &up,
        &["--header-timeout", "1", "--body-timeout", "3"],
    );
    let exported = p.ca_der();
    rt.block_on(async {
        // Two requests, one after the other, then nothing: closed a timeout after the
        // last response, not after the first.
        let (mut send, conn) = h2_through_tunnel(p.addr, up.https, &exported).await;
        for path in ["/h2-idle-1", "/h2-idle-2"] {
            let res = send.send_request(h2_get(up.https, path)).await.unwrap();
            assert_eq!(res.status(), 200);
            let body = res.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&body[..], format!("hello {path}\n").as_bytes());
            tokio::time::sleep(Duration::from_millis(600)).await;
        }
        let idle_from = Instant::now() - Duration::from_millis(600);
        tokio::time::timeout(Duration::from_secs(10), conn)
            .await
            .expect("the proxy kept an idle HTTP/2 connection open")
            .unwrap();
        assert_cut_at_the_timeout(idle_from.elapsed(), "idle HTTP/2");

        // A response still coming (its upstream stalls after one chunk) keeps the
        // connection open past the header timeout, until the body timeout cuts it.
        let (mut send, conn) = h2_through_tunnel(p.addr, up.https, &exported).await;
        let res = send.send_request(h2_get(up.https, "/stall")).await.unwrap();
        let mut body = res.into_body();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&first[..], b"first chunk\n");
        let opened = Instant::now();
        // Twice the header timeout later, the connection still takes new streams (a
        // GOAWAY would refuse them).
        tokio::time::sleep(Duration::from_millis(2000)).await;
        assert!(
            !conn.is_finished(),
            "an HTTP/2 connection with a stream open was closed"
        );
        let res = send.send_request(h2_get(up.https, "/h2-busy")).await;
        let res = res.expect("a busy HTTP/2 connection refused a new stream");
        let busy = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&busy[..], b"hello /h2-busy\n");
        // The stalled body is cut at 3 s; the connection is idle from then on.
        while let Some(Ok(_)) = body.frame().await {}
        tokio::time::timeout(Duration::from_secs(10), conn)
            .await
            .expect("the proxy kept the HTTP/2 connection open after its stream ended")
            .unwrap();
        let took = opened.elapsed();
        assert!(
            took >= Duration::from_millis(2800) && took < Duration::from_secs(8),
            "closed after {took:?}"
        );
    });
    still_serves(&rt, &mut p, &up, "after-idle-h2");
    let s = p.status();
    assert_eq!(s["connections"], 0, "{s}");
    let (status, err) = p.stop();
    assert!(status.success());
    assert!(err.iter().all(|l| !l.contains("panicked")), "{err:#?}");
}

/// The kernel timer of the proxy's side of the connection from `client` (local
/// address of a client socket) to the proxy at `proxy`: the `tr` column of
/// `/proc/net/tcp` (0 none, 1 retransmit, 2 keepalive, ...).
fn server_side_timer(proxy: SocketAddr, client: SocketAddr) -> Option<u32> {
    let hex = |a: SocketAddr| match a {
        SocketAddr::V4(v4) => format!(
            "{:08X}:{:04X}",
            u32::from_le_bytes(v4.ip().octets()),
            v4.port()
        ),
        SocketAddr::V6(_) => unreachable!("the test proxy listens on IPv4"),
    };
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let (local, remote) = (hex(proxy), hex(client));
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        (cols.get(1) == Some(&local.as_str()) && cols.get(2) == Some(&remote.as_str()))
            .then(|| cols.get(5)?.split(':').next()?.parse().ok())
            .flatten()
    })
}

#[test]
fn client_connections_have_tcp_keepalive_so_vanished_clients_are_found() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let up = upstreams(&rt, dir.path());
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let p = Proxy::start_for(dir.path(), &case, &up);
    rt.block_on(async {
        // A pass-through-to-be tunnel, which no deadline bounds once established.
        let (tcp, head) = tunnel(p.addr, up.http).await;
        assert!(head.starts_with(b"HTTP/1.1 200"));
        let client = tcp.local_addr().unwrap();
        assert_eq!(
            server_side_timer(p.addr, client),
            Some(2),
            "no keepalive timer on the proxy's side of {client}"
        );
        drop(tcp);
    });
    let (status, err) = p.stop();
    assert!(status.success());
    assert!(err.iter().all(|l| !l.contains("panicked")), "{err:#?}");
}
