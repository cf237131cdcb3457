//! The `Exchange`: one HTTP request (with its response, if seen) or one metadata-only
//! connection. Every source produces it; the analysis consumes nothing else.

use serde::Serialize;

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
}

/// One header as seen on the wire. Values are bytes: traffic is not always UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Header {
    pub name: String,
    #[serde(serialize_with = "serialize_lossy")]
    pub value: Vec<u8>,
}

impl Header {
    pub fn new(name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        Header {
            name: name.into(),
            value: value.into(),
        }
    }
}

fn serialize_lossy<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(v))
}

/// The first value of header `name` (ASCII case-insensitive).
pub fn header<'a>(headers: &'a [Header], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_slice())
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
}

/// Something odd about an exchange that did not stop processing: a limit hit, a body
/// that failed to decode, a malformed field. Zeek's `weird.log`, per exchange.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
    #[serde(skip)]
    pub request_body: Vec<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<Response>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsInfo>,
    /// Nothing above the transport was readable: only host and sizes are known.
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
            id: id.into(),
            source,
            evidence: EvidenceRef::default(),
            at,
            client: None,
            server: None,
            device: None,
            host: String::new(),
            scheme: "http".into(),
            method: "GET".into(),
            path: "/".into(),
            http_version: String::new(),
            request_headers: Vec::new(),
            request_body: Vec::new(),
            response: None,
            tls: None,
            metadata_only: false,
            anomalies: Vec::new(),
            digests: None,
        }
    }

    /// The first request header called `name`.
    pub fn request_header(&self, name: &str) -> Option<&[u8]> {
        header(&self.request_headers, name)
    }

    /// `scheme://host/path`, for display.
    pub fn url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.host, self.path)
    }
}
