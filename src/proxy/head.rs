//! The request and response heads of a proxy exchange, rebuilt as evidence
//! ([`crate::exchange::RawHead`], `evidence.request_head` / `evidence.response_head`).
//!
//! hyper hands the proxy core parsed messages, not the bytes read from the socket,
//! so the heads are rebuilt from them. How faithful that is:
//! - **Request line (HTTP/1.x)**: method and version as received; the target in the
//!   form the client used on that connection: absolute form (`http://host/p?q`) for a
//!   request to the proxy itself, origin form (`/p?q`) inside a `CONNECT` tunnel (the
//!   form clients send there; the core has already made it absolute). The target is
//!   hyper's `Uri` printed back: byte-identical for every target a client normally
//!   sends, except that an absolute target without a path (`http://host`) shows `/`.
//! - **HTTP/2**: no request line; the pseudo-header fields `:method`, `:scheme`,
//!   `:authority`, `:path` (response: `:status`) come first, in that order (RFC 9113
//!   §8.3.1's), which need not be the order the client sent them in.
//! - **Header fields**: every field with its value bytes unchanged, in received
//!   order, except that repeated fields of one name are listed together at the place
//!   of the first (hyper's `HeaderMap` keeps them so). Names are lower case: hyper
//!   records HTTP/1 name case (the server runs with `preserve_header_case`) in a type
//!   it does not export (`HeaderCaseMap` is `pub(crate)`), so the case cannot be read;
//!   it is still what the server receives. HTTP/2 names are lower case on the wire.
//!   Line folding and whitespace around values are not kept (hyper drops them).
//! - **`Proxy-Authorization`**: the credentials are replaced by `[redacted]` (the
//!   scheme word stays): they are the proxy's own password, never evidence.
//! - **Status line (HTTP/1.x)**: version and code as received; the reason phrase as
//!   received when hyper kept it (it does when it differs from the standard one,
//!   `hyper::ext::ReasonPhrase`), else the standard one.
//! - Lines end in CRLF; an HTTP/1 head ends with the empty line, an HTTP/2 one does
//!   not. Values that are not UTF-8 make the whole head base64 in the evidence.
//! - **Trailer fields** (`evidence.request_trailer` / `evidence.response_trailer`),
//!   sent after a body (HTTP/1.1 chunked, HTTP/2): their field lines as a head's, and
//!   no empty line whatever the version.

use hyper::{header, HeaderMap, Method, Request, Response, Version};

/// Replacement for the credentials of a `Proxy-Authorization` field.
pub const REDACTED: &str = "[redacted]";

/// The version as HTTP writes it (`HTTP/1.1`; the exchange's `http_version`).
pub(crate) fn version_text(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

/// HTTP/2 and HTTP/3 carry the request line in pseudo-header fields.
fn uses_pseudo_headers(v: Version) -> bool {
    v == Version::HTTP_2 || v == Version::HTTP_3
}

fn field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

fn fields(out: &mut Vec<u8>, headers: &HeaderMap) {
    for (name, value) in headers {
        if name == header::PROXY_AUTHORIZATION {
            let scheme = value.as_bytes().split(|&b| b == b' ').next().unwrap_or(b"");
            let mut v = scheme.to_vec();
            v.push(b' ');
            v.extend_from_slice(REDACTED.as_bytes());
            field(out, name.as_str(), &v);
        } else {
            field(out, name.as_str(), value.as_bytes());
        }
    }
}

/// The head of `req` as the proxy received it. `origin_form`: the request came
/// inside a `CONNECT` tunnel, where HTTP/1 clients send the target as `/path?query`.
pub fn request_head<B>(req: &Request<B>, origin_form: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    let uri = req.uri();
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    if uses_pseudo_headers(req.version()) {
        field(&mut out, ":method", req.method().as_str().as_bytes());
        if req.method() != Method::CONNECT {
            if let Some(s) = uri.scheme_str() {
                field(&mut out, ":scheme", s.as_bytes());
            }
        }
        if let Some(a) = uri.authority() {
            field(&mut out, ":authority", a.as_str().as_bytes());
        }
        if req.method() != Method::CONNECT {
            field(&mut out, ":path", path.as_bytes());
        }
        fields(&mut out, req.headers());
        return out;
    }
    out.extend_from_slice(req.method().as_str().as_bytes());
    out.push(b' ');
    if req.method() == Method::CONNECT {
        // Authority form.
        let target = uri.authority().map_or("", |a| a.as_str());
        out.extend_from_slice(target.as_bytes());
    } else if origin_form || uri.authority().is_none() {
        out.extend_from_slice(path.as_bytes());
    } else {
        out.extend_from_slice(uri.to_string().as_bytes());
    }
    out.push(b' ');
    out.extend_from_slice(version_text(req.version()).as_bytes());
    out.extend_from_slice(b"\r\n");
    fields(&mut out, req.headers());
    out.extend_from_slice(b"\r\n");
    out
}

/// The trailer fields after a body as the proxy received them (see the module doc).
pub fn trailer_section(trailers: &HeaderMap) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    fields(&mut out, trailers);
    out
}

/// The head of `res` as the proxy received it from the server.
pub fn response_head<B>(res: &Response<B>) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    let status = res.status();
    if uses_pseudo_headers(res.version()) {
        field(&mut out, ":status", status.as_str().as_bytes());
        fields(&mut out, res.headers());
        return out;
    }
    out.extend_from_slice(version_text(res.version()).as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.as_str().as_bytes());
    let reason: &[u8] = match res.extensions().get::<hyper::ext::ReasonPhrase>() {
        Some(r) => r.as_bytes(),
        None => status.canonical_reason().unwrap_or("").as_bytes(),
    };
    out.push(b' ');
    out.extend_from_slice(reason);
    out.extend_from_slice(b"\r\n");
    fields(&mut out, res.headers());
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(b: Vec<u8>) -> String {
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn http1_absolute_and_origin_form() {
        let req = Request::builder()
            .method("POST")
            .uri("http://api.example.com:8080/v1/t?adid=1&x=%20")
            .header("Host", "api.example.com:8080")
            .header("X-Trace", "a")
            .header("Cookie", "a=1")
            .header("x-trace", "b")
            .header("Proxy-Authorization", "Basic cGl4ZWw3OnMzY3JldA==")
            .body(())
            .unwrap();
        assert_eq!(
            text(request_head(&req, false)),
            "POST http://api.example.com:8080/v1/t?adid=1&x=%20 HTTP/1.1\r\n\
             host: api.example.com:8080\r\n\
             x-trace: a\r\n\
             x-trace: b\r\n\
             cookie: a=1\r\n\
             proxy-authorization: Basic [redacted]\r\n\
             \r\n"
        );
        let mut inner = Request::builder()
            .method("GET")
            .uri("https://api.example.com/")
            .version(Version::HTTP_10)
            .body(())
            .unwrap();
        inner.headers_mut().insert(
            "x-bin",
            header::HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
        );
        let head = request_head(&inner, true);
        assert_eq!(head, b"GET / HTTP/1.0\r\nx-bin: \xff\xfe\r\n\r\n");
    }

    #[test]
    fn http2_pseudo_headers_first() {
        let req = Request::builder()
            .method("GET")
            .uri("https://example.com/a?b=c")
            .version(Version::HTTP_2)
            .header("user-agent", "curl/8")
            .body(())
            .unwrap();
        assert_eq!(
            text(request_head(&req, true)),
            ":method: GET\r\n:scheme: https\r\n:authority: example.com\r\n:path: /a?b=c\r\n\
             user-agent: curl/8\r\n"
        );
        let res = Response::builder()
            .status(204)
            .version(Version::HTTP_2)
            .header("server", "x")
            .body(())
            .unwrap();
        assert_eq!(text(response_head(&res)), ":status: 204\r\nserver: x\r\n");
    }

    #[test]
    fn status_line_reason() {
        let res = Response::builder()
            .status(404)
            .header("content-length", "0")
            .body(())
            .unwrap();
        assert_eq!(
            text(response_head(&res)),
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
        );
        let mut odd = Response::builder().status(299).body(()).unwrap();
        odd.extensions_mut()
            .insert(hyper::ext::ReasonPhrase::from_static(b"Fine Anyway"));
        assert_eq!(
            text(response_head(&odd)),
            "HTTP/1.1 299 Fine Anyway\r\n\r\n"
        );
        let unknown = Response::builder().status(599).body(()).unwrap();
        assert_eq!(text(response_head(&unknown)), "HTTP/1.1 599 \r\n\r\n");
    }
}
