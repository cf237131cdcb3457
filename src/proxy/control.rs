//! The local control API (`--control 127.0.0.1:8081`), used by `consentry consent`
//! while a proxy runs: `POST /consent?device=D&decision=…&purposes=a,b` marks a
//! decision now; `GET /status` returns the counters as JSON. Every request needs
//! `Authorization: Bearer TOKEN`; the CLI writes the token to a 0600 file the
//! `consent` command reads, so a web page in the tester's browser cannot mark consent.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{header, Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use super::{page, Shared};

/// Time a control client has to send its whole request head (from connecting, or
/// between keep-alive requests); `consentry consent` sends it at once.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves the control API on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, token: Arc<String>) {
    loop {
        let Ok((tcp, peer)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        let token = token.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let r = answer(&shared, &token, peer, req);
                async move { Ok::<_, Infallible>(r) }
            });
            // A client that misbehaves only loses its own connection. HTTP/1 only (the
            // CLI and curl speak it): then the header timeout runs from the first byte
            // on, where protocol detection would wait for a silent client forever.
            let mut server = hyper::server::conn::http1::Builder::new();
            server
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT);
            let _ = server.serve_connection(TokioIo::new(tcp), service).await;
        });
    }
}

fn reply(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn answer<B>(
    shared: &Shared,
    token: &str,
    peer: std::net::SocketAddr,
    req: Request<B>,
) -> Response<Full<Bytes>> {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let ok = given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |a, (x, y)| a | (x ^ y))
            == 0;
    if !ok {
        return reply(
            StatusCode::UNAUTHORIZED,
            "consentry: control token missing or wrong\n".into(),
        );
    }
    match (req.method(), req.uri().path()) {
        (&Method::POST, "/consent") => {
            let q = req.uri().query().unwrap_or("");
            match page::consent_from_query(shared, q, None, format!("control API from {peer}")) {
                Ok(e) => {
                    let text = page::describe(&e);
                    shared.mark_consent(e);
                    reply(StatusCode::OK, text)
                }
                Err(m) => reply(StatusCode::BAD_REQUEST, format!("consentry: {m}\n")),
            }
        }
        (&Method::GET, "/status") => {
            let c = &shared.counters;
            let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
            let body = serde_json::json!({
                "exchanges": n(&c.exchanges),
                "in_flight": n(&c.in_flight),
                "upstream_errors": n(&c.upstream_errors),
                "auth_failures": n(&c.auth_failures),
                "pinned_hosts": n(&c.pinned_hosts),
                "consent_events": n(&c.consent_events),
                "passed_on": n(&c.passed_on),
                "dns_queries": n(&c.dns_queries),
                "dns_unanswered": n(&c.dns_unanswered),
                "dns_refused": n(&c.dns_refused),
                "dns_malformed": n(&c.dns_malformed),
                "dns_dropped": n(&c.dns_dropped),
                "dns_ech_disabled": n(&c.dns_ech_disabled),
                "anomalies": n(&c.anomalies),
                "connections": shared.tracked_connections(),
                "pending_handshakes": shared.pending_handshakes(),
            });
            reply(StatusCode::OK, format!("{body}\n"))
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            "consentry: POST /consent?device=&decision=&purposes= or GET /status\n".into(),
        ),
    }
}
