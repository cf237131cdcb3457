//! The `Exchange`: one HTTP request (with its response, if seen) or one metadata-only
//! connection. Every source produces it; the analysis consumes nothing else.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::decode::content::Codings;
use crate::timestamp::Timestamp;

/// Which kind of source produced an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Proxy,
    Pcap,
    Har,
    Jsonl,
}

/// Where the raw bytes behind an exchange can be found again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EvidenceRef {
    /// SHA-256 (lowercase hex) of the input file, when the source is a file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_sha256: Option<String>,
    /// Source-specific position: `entry 12` (HAR), `frames 10-14` (pcap), `record 7`.
    pub locator: String,
    /// The request head as the source received it (the proxy; see [`RawHead`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_head: Option<RawHead>,
    /// The response head as the source received it from the server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_head: Option<RawHead>,
    /// The trailer fields after the request body, when there were any (the proxy): the
    /// analysis searches them with the head's fields.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_trailer: Option<RawHead>,
    /// The trailer fields after the response body, when there were any (the proxy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_trailer: Option<RawHead>,
}

/// Most bytes of one head kept as evidence ([`RawHead`]); hyper already refuses
/// heads much larger than this (HTTP/1: 400 KiB buffer, 100 fields; HTTP/2: 16 KiB
/// header list), so the cap only matters for the largest it lets through.
pub const MAX_HEAD_BYTES: usize = 64 << 10;

/// A message head (request or status line and header fields) kept as evidence, with
/// the SHA-256 of all its bytes. How faithful the bytes are depends on the source:
/// the proxy's are rebuilt from hyper's parsed message (see `proxy::head`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RawHead {
    /// The head, when it is UTF-8 (almost always): lines end in CRLF and the blank
    /// line that ends an HTTP/1 head is included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The head in standard base64, when it is not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base64: Option<String>,
    /// SHA-256 (lowercase hex) of the whole head, also when only a prefix is kept.
    pub sha256: String,
    /// Length of the whole head in bytes.
    pub bytes: u64,
    /// Only the first [`MAX_HEAD_BYTES`] are kept.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

impl RawHead {
    /// The evidence form of `head`: its digest and length, and at most
    /// [`MAX_HEAD_BYTES`] of it, as text when UTF-8 (a cut inside a UTF-8 sequence
    /// is moved back to the sequence's start), else as base64.
    pub fn new(head: &[u8]) -> RawHead {
        use base64::Engine;
        use sha2::Digest;
        let sha256 = crate::source::hex(&sha2::Sha256::digest(head));
        let truncated = head.len() > MAX_HEAD_BYTES;
        let mut kept = head.get(..MAX_HEAD_BYTES).unwrap_or(head);
        let text = match std::str::from_utf8(kept) {
            Ok(t) => Some(t.to_string()),
            // Cut inside a character: keep the valid prefix (at most 3 bytes shorter).
            Err(e) if truncated && e.error_len().is_none() => {
                kept = kept.get(..e.valid_up_to()).unwrap_or_default();
                std::str::from_utf8(kept).ok().map(str::to_string)
            }
            Err(_) => None,
        };
        let base64 = match text {
            Some(_) => None,
            None => Some(base64::engine::general_purpose::STANDARD.encode(kept)),
        };
        RawHead {
            text,
            base64,
            sha256,
            bytes: head.len() as u64,
            truncated,
        }
    }

    /// The evidence form of a binary message (a DNS query): as [`RawHead::new`], but
    /// always base64, even when its bytes happen to be UTF-8 (control characters
    /// in a `text` would only mislead).
    pub fn binary(message: &[u8]) -> RawHead {
        use base64::Engine;
        let mut head = RawHead::new(message);
        if let Some(text) = head.text.take() {
            head.base64 = Some(base64::engine::general_purpose::STANDARD.encode(text));
        }
        head
    }

    /// [`RawHead::new`] of a head the caller no longer needs: a UTF-8 head within
    /// [`MAX_HEAD_BYTES`] (the proxy's, always) becomes the text without a copy.
    pub fn from_vec(head: Vec<u8>) -> RawHead {
        use sha2::Digest;
        if head.len() > MAX_HEAD_BYTES {
            return RawHead::new(&head);
        }
        match String::from_utf8(head) {
            Ok(text) => RawHead {
                sha256: crate::source::hex(&sha2::Sha256::digest(text.as_bytes())),
                bytes: text.len() as u64,
                text: Some(text),
                base64: None,
                truncated: false,
            },
            // Not UTF-8 (rare): kept as base64, as `new` does.
            Err(e) => RawHead::new(e.as_bytes()),
        }
    }

    /// The kept bytes (the whole head unless [`RawHead::truncated`]).
    pub fn kept(&self) -> Vec<u8> {
        use base64::Engine;
        match (&self.text, &self.base64) {
            (Some(t), _) => t.as_bytes().to_vec(),
            (None, Some(b)) => base64::engine::general_purpose::STANDARD
                .decode(b)
                .unwrap_or_default(),
            (None, None) => Vec::new(),
        }
    }
}

/// Personal data a source found in a request body beyond the bytes it kept for the
/// analysis (the proxy streams the case's matcher past `--body-cap`, a capture's HTTP
/// parsers past their `max_body_bytes`, see `pii::stream`). The rules turn each into
/// a finding's data item located
/// `body-beyond-cap:OFFSET`. Never serialised: `value` is the identifier itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BeyondCapHit {
    /// Identifier type key (`advertising_id`, `custom.user_name`, …).
    pub kind: String,
    /// The case device whose value it is.
    pub device: Option<String>,
    /// Variant encoding (`plain`, `md5`, `base64`, …).
    pub encoding: String,
    /// Byte offset of the hit in the request body (after transfer decoding, before
    /// content decoding: the bytes hyper hands over, or a parser de-chunks; bytes a
    /// capture lost are counted), or in the decoded body when `decoded_from` names a
    /// content coding.
    pub offset: u64,
    /// The content codings the body's tail was decoded from before it was searched
    /// (`gzip`, `br`, `gzip+br`, …), if it was.
    pub decoded_from: Option<Codings>,
    pub sensitive: bool,
    /// The matched bytes (for `--reveal` only).
    pub value: Vec<u8>,
}

impl BeyondCapHit {
    /// The `where` of the finding's data item.
    pub fn location(&self) -> String {
        match self.decoded_from {
            None => format!("{BEYOND_CAP_LOCATION}:{}", self.offset),
            Some(coding) => format!("{BEYOND_CAP_LOCATION}:{coding}:{}", self.offset),
        }
    }
}

/// Location prefix of personal data found past the analysis cap ([`BeyondCapHit`]):
/// `body-beyond-cap:N` reads "request body beyond the analysis cap at offset N",
/// `body-beyond-cap:gzip:N` "… at offset N of the gzip-decoded body",
/// `body-beyond-cap:gzip+br:N` "… of the body with its `Content-Encoding: gzip, br`
/// undone".
pub const BEYOND_CAP_LOCATION: &str = "body-beyond-cap";

/// One header as seen on the wire. Values are bytes: traffic is not always UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Header {
    /// The name as received; a common one spelt in lower case is a shared static
    /// ([`Header::new`]).
    pub name: Cow<'static, str>,
    #[serde(serialize_with = "serialize_lossy")]
    pub value: Vec<u8>,
    /// The field came in the trailer section after the body (HTTP/1.1 chunked,
    /// HTTP/2, HTTP/3), not in the head: searched like the head's fields, but never
    /// acted on ([`header`]), as RFC 9110 §6.5.2 asks of a recipient.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub trailer: bool,
}

impl Header {
    /// A header named `name`. The common names spelt in lower case (hyper's and
    /// HTTP/2's spelling) are not copied: the proxy records every request's headers,
    /// an allocation less for each.
    pub fn new(name: impl AsRef<str> + Into<String>, value: impl Into<Vec<u8>>) -> Self {
        let name = match common_name(name.as_ref()) {
            Some(known) => Cow::Borrowed(known),
            None => Cow::Owned(name.into()),
        };
        Header {
            name,
            value: value.into(),
            trailer: false,
        }
    }

    /// [`Header::new`] of a field of a trailer section.
    pub fn trailer(name: impl AsRef<str> + Into<String>, value: impl Into<Vec<u8>>) -> Self {
        Header {
            trailer: true,
            ..Header::new(name, value)
        }
    }
}

/// Header names most requests and responses carry, spelt in lower case (as HTTP/2
/// and hyper's `HeaderMap` give them): `common_name` has a static copy of each.
macro_rules! common_names {
    ($($name:literal,)*) => {
        /// The static copy of `name` when it is one of the common names (other
        /// spellings, `Host` say, are not: they are copied).
        fn common_name(name: &str) -> Option<&'static str> {
            // Most names of HTTP/1 captures start in upper case: out at once.
            if !name.as_bytes().first().is_some_and(u8::is_ascii_lowercase) {
                return None;
            }
            match name {
                $($name => Some($name),)*
                _ => None,
            }
        }

        #[cfg(test)]
        const COMMON_NAMES: &[&str] = &[$($name,)*];
    };
}

common_names! {
    "host",
    "user-agent",
    "accept",
    "accept-encoding",
    "accept-language",
    "connection",
    "content-type",
    "content-length",
    "cookie",
    "referer",
    "origin",
    "authorization",
    "cache-control",
    "pragma",
    "if-none-match",
    "if-modified-since",
    "x-requested-with",
    "upgrade-insecure-requests",
    "sec-fetch-dest",
    "sec-fetch-mode",
    "sec-fetch-site",
    "sec-fetch-user",
    "sec-ch-ua",
    "sec-ch-ua-mobile",
    "sec-ch-ua-platform",
    "priority",
    "dnt",
    "te",
    "range",
    "server",
    "date",
    "etag",
    "last-modified",
    "accept-ranges",
    "content-encoding",
    "transfer-encoding",
    "set-cookie",
    "vary",
    "expires",
    "location",
    "keep-alive",
    "age",
    "access-control-allow-origin",
    "strict-transport-security",
}

fn serialize_lossy<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(v))
}

/// The first value of header `name` (ASCII case-insensitive) in the head: a trailer
/// field of that name is not one (a trailer `Content-Encoding` or `Host` must not
/// change how the message is read or where it went).
pub fn header<'a>(headers: &'a [Header], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|h| !h.trailer && h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_slice())
}

/// Every value of header `name` in the head (not a trailer field), as one list: the
/// lines of a list-based field such as `Content-Encoding` joined by `", "`, as RFC 9110
/// §5.3 lets a recipient combine them (`Content-Encoding: gzip` and then
/// `Content-Encoding: br` mean `gzip, br`). Borrowed when there is one line.
pub fn header_list<'a>(headers: &'a [Header], name: &str) -> Option<Cow<'a, [u8]>> {
    let mut lines = headers
        .iter()
        .filter(|h| !h.trailer && h.name.eq_ignore_ascii_case(name));
    let first = lines.next()?;
    let mut joined: Option<Vec<u8>> = None;
    for line in lines {
        let list = joined.get_or_insert_with(|| first.value.clone());
        list.extend_from_slice(b", ");
        list.extend_from_slice(&line.value);
    }
    Some(joined.map_or(Cow::Borrowed(first.value.as_slice()), Cow::Owned))
}

/// The response to an exchange's request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<Header>,
    /// Kept only when configured; empty otherwise.
    #[serde(skip)]
    pub body: Vec<u8>,
}

/// TLS facts about the connection an exchange travelled on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TlsInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    pub decrypted: bool,
    /// Why the connection was not decrypted (`no key for this client random`, …), when
    /// it was not and the reason is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decrypt_error: Option<String>,
    /// Encrypted Client Hello (RFC 9849), when the ClientHello offered it: `offered`
    /// (not read: no `ECH_SECRET` logged, or GREASE), `inner-read` (the inner
    /// ClientHello opened with the key log: `sni` is its name), `keys-matched` (the
    /// secrets found by trial under the inner hello's random, which stays unread),
    /// `outer-used` (the secrets are under the outer hello's random: the server used
    /// it, the offer was GREASE or rejected, and `sni` is the real server name),
    /// `named-by-dns` (not decrypted; the exchange's host is the name whose DNS
    /// HTTPS answer gave the ECH config the ClientHello used).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ech: Option<String>,
    /// The outer ClientHello's server name (the ECH public name) when it differs from
    /// `sni`, the inner one's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outer_sni: Option<String>,
    /// JA3 of the ClientHello on the wire (the outer one with ECH): 32 hex digits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja3: Option<String>,
    /// JA4 of that ClientHello (`t13d1516h2_8daaf6152771_e5627efa2ab1`; `q…` over QUIC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja4: Option<String>,
    /// The certificate the server presented (read in clear up to TLS 1.2, with the key
    /// log over TLS 1.3); shared by every exchange of the connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_certificate: Option<std::sync::Arc<ServerCertificate>>,
}

/// The server's own (leaf) certificate of a TLS connection, as Zeek's `x509.log` and
/// Suricata's `tls.log` give it; see `net::tls_certificate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerCertificate {
    /// Subject distinguished name, RFC 4514 style (`CN=ads.example.com, O=…`).
    pub subject: String,
    pub issuer: String,
    /// Subject alternative names: DNS names and addresses, in order, at most 32.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<crate::timestamp::Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<crate::timestamp::Timestamp>,
    /// Serial number, hex, without DER's leading zero.
    pub serial: String,
    /// SHA-256 of the certificate's DER bytes, hex (what `openssl x509 -fingerprint
    /// -sha256` prints, in lower case without colons).
    pub sha256: String,
    /// Certificates the server sent, this one the first.
    pub chain: u32,
    /// The name that can stand for the server's host: the first DNS name, else the
    /// common name, lower-cased, when it is a host name (`*.` wildcard allowed).
    #[serde(skip)]
    pub host: Option<String>,
}

/// Something odd about an exchange that did not stop processing: a limit hit, a body
/// that failed to decode, a malformed field. Zeek's `weird.log`, per exchange.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anomaly {
    /// Stable machine-readable kind, e.g. `body-size-limit`, `gzip-error`.
    pub kind: String,
    /// Human-readable detail.
    pub detail: String,
}

impl Anomaly {
    pub fn new(kind: impl Into<String>, detail: impl Into<String>) -> Self {
        Anomaly {
            kind: kind.into(),
            detail: detail.into(),
        }
    }
}

/// Sizes and SHA-256 digests of an exchange's whole bodies as they crossed the wire
/// (before any decoding), for sources that see them in full (the proxy): the
/// evidence that a body was what it was, even where the analysis saw only a prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct BodyDigests {
    pub request_bytes: u64,
    /// Lowercase hex.
    pub request_sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_sha256: Option<String>,
}

/// The Android app an exchange belongs to, where the capture names it (PCAPdroid's
/// marks, see [`crate::net::pcapdroid`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct AppRef {
    pub uid: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// The app's label (in a PCAPdroid pcap file cut to 19 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Whether it is the case's app: `false` for another app, absent when the case
    /// names no app or the capture says too little (a UID alone, an unnamed app).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub under_test: Option<bool>,
}

impl AppRef {
    /// Appends the JSON serde writes for it (the finding and exchange-record writers
    /// that do without serde use this).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        use crate::store::json_string::push as string;
        out.extend_from_slice(b"{\"uid\":");
        out.extend_from_slice(self.uid.to_string().as_bytes());
        if let Some(package) = &self.package {
            out.extend_from_slice(b",\"package\":");
            string(out, package);
        }
        if let Some(name) = &self.name {
            out.extend_from_slice(b",\"name\":");
            string(out, name);
        }
        if let Some(under_test) = self.under_test {
            out.extend_from_slice(b",\"under_test\":");
            out.extend_from_slice(if under_test { b"true" } else { b"false" });
        }
        out.push(b'}');
    }

    /// How a summary names it: package, else label, else the UID.
    pub fn display_name(&self) -> String {
        match (&self.package, &self.name) {
            (Some(p), _) => p.clone(),
            (None, Some(n)) => format!("\"{n}\""),
            (None, None) => format!("uid {}", self.uid),
        }
    }
}

/// One HTTP request/response pair, or one connection of which only metadata is known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exchange {
    /// Stable id, `x-` followed by hex, derived from the source and its position.
    pub id: String,
    pub source: SourceKind,
    pub evidence: EvidenceRef,
    /// Time of the request's first byte.
    pub at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Device id from the case, once attributed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The Android app that made it, where a capture says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<AppRef>,
    /// Host name without port (`:authority`/Host, else SNI, else DNS, else address).
    pub host: String,
    pub scheme: String,
    pub method: String,
    /// Path and query exactly as requested (`/a/b?x=1`).
    pub path: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub http_version: String,
    #[serde(skip)]
    pub request_headers: Vec<Header>,
    /// The request body; of a metadata-only exchange, a part of the client's bytes
    /// when its connection spoke a cleartext protocol no parser reads (searched as its
    /// `payload`), else empty.
    #[serde(skip)]
    pub request_body: Vec<u8>,
    /// Of such a part that continues the part before it without a gap: the last
    /// bytes before it, where a value ending in `request_body` may begin (the
    /// analysis reports such a value at `payload-across-parts`; see
    /// `net::unparsed`). Empty otherwise.
    #[serde(skip)]
    pub payload_lead: Vec<u8>,
    /// Personal data found past the part of the request body kept in `request_body`.
    #[serde(skip)]
    pub beyond_cap: Vec<BeyondCapHit>,
    /// `request_body` holds less than the whole request body (a size cap, bytes lost
    /// on the wire, a message cut off): a compressed body then ends inside its
    /// stream, which is no fault of the sender's.
    #[serde(skip)]
    pub request_body_cut: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<Response>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsInfo>,
    /// No request could be read above the transport: only host and sizes are known,
    /// and for a cleartext protocol no parser reads, the client's bytes
    /// (`request_body`).
    pub metadata_only: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub anomalies: Vec<Anomaly>,
    /// Whole-body sizes and digests, where the source saw the bodies in full.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digests: Option<BodyDigests>,
}

impl Exchange {
    /// An empty exchange with the fields every source must set.
    pub fn new(id: impl Into<String>, source: SourceKind, at: Timestamp) -> Self {
        Exchange {
            scheme: "http".into(),
            method: "GET".into(),
            path: "/".into(),
            ..Exchange::blank(id, source, at)
        }
    }

    /// [`Exchange::new`] with `scheme`, `method` and `path` empty, for a source that
    /// sets all three (the pcap tap: three allocations and frees per exchange saved).
    pub fn blank(id: impl Into<String>, source: SourceKind, at: Timestamp) -> Self {
        Exchange {
            id: id.into(),
            source,
            evidence: EvidenceRef::default(),
            at,
            client: None,
            server: None,
            device: None,
            app: None,
            host: String::new(),
            scheme: String::new(),
            method: String::new(),
            path: String::new(),
            http_version: String::new(),
            request_headers: Vec::new(),
            request_body: Vec::new(),
            payload_lead: Vec::new(),
            beyond_cap: Vec::new(),
            request_body_cut: false,
            response: None,
            tls: None,
            metadata_only: false,
            anomalies: Vec::new(),
            digests: None,
        }
    }

    /// Whether the capture names this exchange's app and it is not the case's.
    pub fn of_another_app(&self) -> bool {
        self.app
            .as_ref()
            .is_some_and(|a| a.under_test == Some(false))
    }

    /// The first request header called `name`.
    pub fn request_header(&self, name: &str) -> Option<&[u8]> {
        header(&self.request_headers, name)
    }

    /// Every value of request header `name`, as one list ([`header_list`]).
    pub fn request_header_list(&self, name: &str) -> Option<Cow<'_, [u8]>> {
        header_list(&self.request_headers, name)
    }

    /// `scheme://host/path`, for display.
    pub fn url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.host, self.path)
    }

    /// Bytes of bodies the exchange holds: the request body (with the lead of a
    /// payload no parser reads) and the response body. What the queues between a
    /// source and its analysis count, bounded as well as their number of exchanges.
    pub fn body_bytes(&self) -> usize {
        self.request_body.len()
            + self.payload_lead.len()
            + self.response.as_ref().map_or(0, |r| r.body.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::content::Coding;

    #[test]
    fn a_binary_message_is_base64_even_when_its_bytes_are_utf8() {
        use base64::Engine;
        // A DNS query's bytes: all below 0x80, so valid UTF-8.
        let query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\x00\x00\x01\x00\x01";
        let head = RawHead::binary(query);
        assert_eq!(head.text, None);
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(head.base64.as_deref().unwrap())
            .unwrap();
        assert_eq!(decoded, query);
        assert_eq!((head.sha256, head.bytes), (RawHead::new(query).sha256, 19));
        // Not UTF-8: as `new` gives it.
        assert_eq!(RawHead::binary(b"\xff\x00"), RawHead::new(b"\xff\x00"));
    }

    use sha2::Digest;

    fn sha(b: &[u8]) -> String {
        crate::source::hex(&sha2::Sha256::digest(b))
    }

    /// Common names are shared statics and only in lower case; anything else is a
    /// copy, equal either way.
    #[test]
    fn a_list_field_in_several_lines_is_one_list() {
        let mut fields = vec![
            Header::new("Content-Encoding", "gzip"),
            Header::new("content-type", "application/json"),
        ];
        assert!(matches!(
            header_list(&fields, "content-encoding"),
            Some(Cow::Borrowed(b"gzip"))
        ));
        fields.push(Header::new("content-encoding", "br"));
        let mut trailer = Header::new("Content-Encoding", "zstd");
        trailer.trailer = true;
        fields.push(trailer);
        assert_eq!(
            header_list(&fields, "Content-Encoding").as_deref(),
            Some(&b"gzip, br"[..])
        );
        assert_eq!(header_list(&fields, "transfer-encoding"), None);
    }

    #[test]
    fn header_names_common_are_static() {
        for &n in COMMON_NAMES {
            assert_eq!(n, n.to_ascii_lowercase());
            let h = Header::new(n, b"v".as_slice());
            assert!(matches!(h.name, Cow::Borrowed(s) if s == n), "{n}");
            assert_eq!(h, Header::new(n.to_string(), b"v".to_vec()));
        }
        for n in ["Host", "x-custom", "", "hosts", ":path", "user-agent "] {
            let h = Header::new(n, b"v".as_slice());
            assert!(matches!(h.name, Cow::Owned(ref s) if s == n), "{n}");
        }
    }

    /// A trailer field is never the value of a header: a trailer `Host` or
    /// `Content-Encoding` changes neither where a request went nor how it is read.
    #[test]
    fn header_reads_the_head_only() {
        let fields = [
            Header::trailer("Host", "tracker.example"),
            Header::new("host", "app.example"),
            Header::trailer("Content-Encoding", "gzip"),
        ];
        assert_eq!(header(&fields, "HOST"), Some(&b"app.example"[..]));
        assert_eq!(header(&fields, "content-encoding"), None);
        let json = serde_json::to_string(&fields[..2]).unwrap();
        assert_eq!(
            json,
            r#"[{"name":"Host","value":"tracker.example","trailer":true},{"name":"host","value":"app.example"}]"#
        );
    }

    #[test]
    fn raw_head_text_base64_and_cap() {
        let h = RawHead::new(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n");
        assert_eq!(h.text.as_deref(), Some("GET / HTTP/1.1\r\nhost: a\r\n\r\n"));
        assert_eq!(
            (h.base64.is_none(), h.bytes, h.truncated),
            (true, 27, false)
        );
        assert_eq!(h.sha256, sha(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n"));

        let bin = b"GET / HTTP/1.1\r\nx: \xff\r\n\r\n";
        let h = RawHead::new(bin);
        assert!(h.text.is_none());
        assert_eq!(h.kept(), bin);

        // Over the cap: a prefix is kept, the digest and length cover the whole head;
        // a cut inside a character moves back to its start.
        let mut big = vec![b'a'; MAX_HEAD_BYTES - 1];
        big.extend_from_slice("é and more".as_bytes());
        let h = RawHead::new(&big);
        assert!(h.truncated);
        assert_eq!(h.bytes, big.len() as u64);
        assert_eq!(h.sha256, sha(&big));
        assert_eq!(h.kept(), vec![b'a'; MAX_HEAD_BYTES - 1]);
        assert!(h.text.is_some());
    }

    /// `from_vec` is `new` without the copy: same fields for text, binary, empty,
    /// at and over the cap (with a character cut at the cap).
    #[test]
    fn raw_head_from_vec_is_new() {
        let mut at_cap = vec![b'a'; MAX_HEAD_BYTES - 1];
        at_cap.push(b'\n');
        let mut over = vec![b'a'; MAX_HEAD_BYTES - 1];
        over.extend_from_slice("é and more".as_bytes());
        let heads: Vec<Vec<u8>> = vec![
            b"GET / HTTP/1.1\r\nhost: a\r\n\r\n".to_vec(),
            b"GET / HTTP/1.1\r\nx: \xff\r\n\r\n".to_vec(),
            Vec::new(),
            at_cap,
            over,
            vec![0xc3; MAX_HEAD_BYTES + 3],
        ];
        for h in heads {
            assert_eq!(RawHead::from_vec(h.clone()), RawHead::new(&h));
        }
    }

    proptest::proptest! {
        #[test]
        fn raw_head_from_vec_is_new_on_any_bytes(
            h in proptest::collection::vec(proptest::num::u8::ANY, 0..300)
        ) {
            proptest::prop_assert_eq!(RawHead::from_vec(h.clone()), RawHead::new(&h));
        }
    }

    #[test]
    fn heads_serialise_under_evidence_only_when_present() {
        let mut x = Exchange::new("x-1", SourceKind::Proxy, Timestamp::from_micros(0));
        x.evidence.locator = "record 1".into();
        let plain = serde_json::to_value(&x).unwrap();
        assert_eq!(
            plain["evidence"],
            serde_json::json!({"locator": "record 1"})
        );
        x.evidence.request_head = Some(RawHead::new(b"GET / HTTP/1.1\r\n\r\n"));
        x.beyond_cap.push(BeyondCapHit {
            kind: "imei".into(),
            device: None,
            encoding: "plain".into(),
            offset: 7,
            decoded_from: None,
            sensitive: false,
            value: b"490154203237518".to_vec(),
        });
        let v = serde_json::to_value(&x).unwrap();
        assert_eq!(
            v["evidence"]["request_head"]["text"],
            "GET / HTTP/1.1\r\n\r\n"
        );
        assert_eq!(v["evidence"]["request_head"]["bytes"], 18);
        assert!(v["evidence"].get("response_head").is_none());
        // The value found beyond the cap never reaches the exchange record.
        assert!(!v.to_string().contains("490154203237518"));
        assert_eq!(x.beyond_cap[0].location(), "body-beyond-cap:7");
        x.beyond_cap[0].decoded_from = Some(Codings::one(Coding::Gzip));
        assert_eq!(x.beyond_cap[0].location(), "body-beyond-cap:gzip:7");
        x.beyond_cap[0].decoded_from = Some(Codings::two(Coding::Gzip, Coding::Brotli));
        assert_eq!(x.beyond_cap[0].location(), "body-beyond-cap:gzip+br:7");
    }
}
