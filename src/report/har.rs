//! Exchanges → HAR 1.2 (the export bundle's `exchanges.har`): what Chrome DevTools
//! (Network panel → Import HAR) and Firefox open, and what `source::har` reads back.
//!
//! One entry per HTTP exchange, in the order given: `startedDateTime` with
//! microseconds, the request (method, URL, headers — trailer fields among them with
//! the `comment` `"trailer"` —, query string, body as
//! `postData` — base64 with `"encoding": "base64"` when it is not UTF-8), the
//! response's status and headers when one was seen (its body is not kept by the
//! sources, so `content.size` is 0 and `content.text` absent), `timings` of 0 (a
//! capture has no per-phase timings for them), `serverIPAddress`, and the client
//! address in `_clientAddress` so a case attributes the entry to its device again.
//! Metadata-only exchanges (TLS without keys, QUIC) carry no HTTP request: they are
//! left out (they stay in `exchanges.jsonl`), and `_consentryExchange` names each
//! entry's exchange id.

use std::io::{self, Write};

use base64::Engine;
use serde_json::{json, Map, Value};

use crate::exchange::{Exchange, Header};

/// Whether an exchange becomes a HAR entry (it has an HTTP request).
pub fn has_entry(x: &Exchange) -> bool {
    !x.metadata_only && !x.method.is_empty()
}

/// The `comment` of a header that came in the trailer section: HAR 1.2 lists no
/// trailers, and `source::har` reads a field so marked back as a trailer field.
pub const TRAILER_COMMENT: &str = "trailer";

fn headers(h: &[Header]) -> Value {
    Value::Array(
        h.iter()
            .map(|h| {
                let mut field = json!({"name": h.name, "value": String::from_utf8_lossy(&h.value)});
                if h.trailer {
                    field["comment"] = TRAILER_COMMENT.into();
                }
                field
            })
            .collect(),
    )
}

fn query_string(path: &str) -> Value {
    let Some((_, q)) = path.split_once('?') else {
        return json!([]);
    };
    let q = q.split('#').next().unwrap_or("");
    Value::Array(
        q.split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (n, v) = p.split_once('=').unwrap_or((p, ""));
                json!({"name": n, "value": v})
            })
            .collect(),
    )
}

fn http_version(v: &str) -> &str {
    if v.is_empty() {
        "HTTP/1.1"
    } else {
        v
    }
}

/// The HAR entry of one exchange.
pub fn entry(x: &Exchange) -> Value {
    let mut request = Map::new();
    request.insert("method".into(), json!(x.method));
    request.insert("url".into(), json!(x.url()));
    request.insert("httpVersion".into(), json!(http_version(&x.http_version)));
    request.insert("cookies".into(), json!([]));
    request.insert("headers".into(), headers(&x.request_headers));
    request.insert("queryString".into(), query_string(&x.path));
    if !x.request_body.is_empty() {
        let mime = x
            .request_header("content-type")
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default();
        let post = match std::str::from_utf8(&x.request_body) {
            Ok(text) => json!({"mimeType": mime, "text": text}),
            Err(_) => json!({
                "mimeType": mime,
                "encoding": "base64",
                "text": base64::engine::general_purpose::STANDARD.encode(&x.request_body),
            }),
        };
        request.insert("postData".into(), post);
    }
    request.insert("headersSize".into(), json!(-1));
    request.insert("bodySize".into(), json!(x.request_body.len()));
    let response = match &x.response {
        Some(r) => {
            let mime = crate::exchange::header(&r.headers, "content-type")
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default();
            json!({
                "status": r.status,
                "statusText": "",
                "httpVersion": http_version(&x.http_version),
                "cookies": [],
                "headers": headers(&r.headers),
                "content": {"size": 0, "mimeType": mime},
                "redirectURL": "",
                "headersSize": -1,
                "bodySize": -1,
            })
        }
        // No response seen: status 0, as browsers record an aborted request.
        None => json!({
            "status": 0,
            "statusText": "",
            "httpVersion": "",
            "cookies": [],
            "headers": [],
            "content": {"size": 0, "mimeType": ""},
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": -1,
        }),
    };
    let mut e = Map::new();
    e.insert("startedDateTime".into(), json!(x.at.to_string()));
    e.insert("time".into(), json!(0));
    e.insert("request".into(), Value::Object(request));
    e.insert("response".into(), response);
    e.insert("cache".into(), json!({}));
    e.insert(
        "timings".into(),
        json!({"blocked": -1, "dns": -1, "connect": -1, "send": 0, "wait": 0, "receive": 0, "ssl": -1}),
    );
    if let Some(server) = &x.server {
        e.insert("serverIPAddress".into(), json!(server));
    }
    if let Some(client) = &x.client {
        e.insert("_clientAddress".into(), json!(client));
    }
    e.insert("_consentryExchange".into(), json!(x.id));
    Value::Object(e)
}

/// Writes a HAR 1.2 document entry by entry, so a large case is never held whole:
/// [`begin`](Self::begin), [`push`](Self::push) per exchange, [`finish`](Self::finish).
pub struct HarWriter<W: Write> {
    out: W,
    entries: u64,
}

impl<W: Write> HarWriter<W> {
    /// Writes the document's head.
    pub fn begin(mut out: W) -> io::Result<Self> {
        write!(
            out,
            r#"{{"log":{{"version":"1.2","creator":{{"name":"consentry","version":"{}"}},"pages":[],"entries":["#,
            env!("CARGO_PKG_VERSION")
        )?;
        Ok(HarWriter { out, entries: 0 })
    }

    /// Adds the exchange's entry if it has an HTTP request ([`has_entry`]).
    pub fn push(&mut self, x: &Exchange) -> io::Result<()> {
        if !has_entry(x) {
            return Ok(());
        }
        if self.entries > 0 {
            self.out.write_all(b",")?;
        }
        self.entries += 1;
        serde_json::to_writer(&mut self.out, &entry(x))?;
        Ok(())
    }

    /// Closes the document; the writer and the number of entries written.
    pub fn finish(mut self) -> io::Result<(W, u64)> {
        self.out.write_all(b"]}}\n")?;
        Ok((self.out, self.entries))
    }
}

/// Writes a HAR 1.2 document of the exchanges that have an HTTP request.
pub fn write_har<'a>(
    exchanges: impl IntoIterator<Item = &'a Exchange>,
    out: &mut dyn Write,
) -> io::Result<u64> {
    let mut w = HarWriter::begin(out)?;
    for x in exchanges {
        w.push(x)?;
    }
    Ok(w.finish()?.1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::{Response, SourceKind};
    use crate::source::{read_har, HarOptions};
    use crate::timestamp::Timestamp;

    fn exchange() -> Exchange {
        let mut x = Exchange::new(
            "x-1",
            SourceKind::Pcap,
            Timestamp::parse_rfc3339("2026-11-28T10:15:29.112345Z").unwrap(),
        );
        x.host = "t.example".into();
        x.scheme = "https".into();
        x.method = "POST".into();
        x.path = "/c?a=1&b=x%20y".into();
        x.http_version = "HTTP/1.1".into();
        x.client = Some("192.168.50.23".into());
        x.server = Some("192.0.2.7".into());
        x.request_headers = vec![
            Header::new("Host", "t.example"),
            Header::new("Content-Type", "application/octet-stream"),
            Header::trailer("X-Checksum", "abc"),
        ];
        x.request_body = vec![0, 1, 2, 0xff];
        x.response = Some(Response {
            status: 204,
            headers: vec![Header::new("Server", "x")],
            body: Vec::new(),
        });
        x
    }

    #[test]
    fn entries_read_back_with_our_har_reader() {
        let x = exchange();
        let mut meta = Exchange::new("x-2", SourceKind::Pcap, x.at);
        meta.metadata_only = true;
        meta.method = String::new();
        let mut buf = Vec::new();
        write_har([&x, &meta], &mut buf).unwrap();
        let v: Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(v["log"]["version"], "1.2");
        assert_eq!(v["log"]["entries"].as_array().unwrap().len(), 1);
        let e = &v["log"]["entries"][0];
        assert_eq!(e["startedDateTime"], "2026-11-28T10:15:29.112345Z");
        assert_eq!(e["request"]["postData"]["encoding"], "base64");
        assert_eq!(e["request"]["queryString"][1]["value"], "x%20y");
        assert_eq!(e["response"]["status"], 204);
        assert_eq!(e["request"]["headers"][2]["comment"], "trailer");
        assert!(e["request"]["headers"][1].get("comment").is_none());
        let mut back = Vec::new();
        read_har(&buf[..], &HarOptions::new("t.har", None), |x| {
            back.push(x);
            Ok::<(), std::convert::Infallible>(())
        })
        .unwrap();
        assert_eq!(back.len(), 1);
        let b = &back[0];
        assert_eq!(
            (b.at, b.method.as_str(), b.host.as_str(), b.path.as_str()),
            (x.at, "POST", "t.example", "/c?a=1&b=x%20y")
        );
        assert_eq!(b.request_body, x.request_body);
        assert_eq!(
            b.request_headers, x.request_headers,
            "trailer fields read back"
        );
        assert_eq!(b.client.as_deref(), Some("192.168.50.23"));
        assert_eq!(b.response.as_ref().map(|r| r.status), Some(204));
    }
}
