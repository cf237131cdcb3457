//! TLS hellos from the first bytes of a connection: the metadata a tap can read when it
//! cannot decrypt.
//!
//! The flow table feeds the in-order client bytes of a connection sniffed as TLS to a
//! [`HelloReader`] until it answers; the ClientHello's SNI becomes the exchange's host
//! (the `tracker-contact-before-consent` rule needs nothing more), its ALPN and offered
//! versions go with it. Feeding the server bytes to a [`ServerFlightReader`] yields the
//! ServerHello, whose `supported_versions` extension tells the negotiated version, and
//! up to TLS 1.2 the server's certificate after it (`tls_certificate`).
//!
//! Records (RFC 8446 §5.1) are reassembled across TCP segments and a handshake message
//! across records (post-quantum key shares make a ClientHello larger than one
//! record). Everything is bounded: at most [`MAX_HELLO_STREAM`] bytes of stream are read
//! before the reader gives up. Parsing is by hand over borrowed slices; unknown
//! extensions, cipher suites and GREASE values (RFC 8701) are kept as raw numbers or
//! skipped, never rejected.

use super::tls_certificate;
use super::tls_fingerprint::{Fingerprints, HelloFields};
use crate::exchange::ServerCertificate;

/// Most stream bytes read looking for a hello (records headers included).
pub const MAX_HELLO_STREAM: usize = 64 << 10;
/// Largest record fragment allowed (2^14 plus the expansion RFC 8446 allows).
const MAX_RECORD: usize = (1 << 14) + 2048;
/// Content type of handshake records.
const HANDSHAKE: u8 = 22;
/// Content type of alert records, and the level of a warning (RFC 5246 §7.2).
const ALERT: u8 = 21;
const ALERT_WARNING: u8 = 1;
const CLIENT_HELLO: u8 = 1;
const SERVER_HELLO: u8 = 2;
pub(crate) const EXT_SNI: u16 = 0;
pub(crate) const EXT_ALPN: u16 = 16;
pub(crate) const EXT_SUPPORTED_VERSIONS: u16 = 43;
const EXT_ENCRYPT_THEN_MAC: u16 = 22;
const EXT_EXTENDED_MASTER_SECRET: u16 = 23;
const EXT_SESSION_TICKET: u16 = 35;
const EXT_EARLY_DATA: u16 = 42;
/// `encrypted_client_hello` (RFC 9849 §5).
pub const EXT_ECH: u16 = 0xfe0d;
/// Most ALPN protocols kept from one hello.
const MAX_ALPN: usize = 16;

/// A parsed ClientHello (RFC 8446 §4.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHello {
    pub legacy_version: u16,
    /// The `supported_versions` extension, GREASE values included, in offered order.
    pub supported_versions: Vec<u16>,
    pub random: [u8; 32],
    pub session_id: Vec<u8>,
    /// Offered cipher suites, GREASE values included.
    pub cipher_suites: Vec<u16>,
    /// The first `host_name` of the server_name extension, lower-cased; bytes outside
    /// printable ASCII written `\DDD`.
    pub sni: Option<String>,
    /// ALPN protocol names offered (at most 16), bytes outside printable ASCII as `\DDD`.
    pub alpn: Vec<String>,
    /// Extension 22 (RFC 7366) offered.
    pub encrypt_then_mac: bool,
    /// Extension 23 (RFC 7627) offered.
    pub extended_master_secret: bool,
    /// Extension 42: the client sends 0-RTT data (TLS 1.3).
    pub early_data: bool,
    /// Extension 35 (RFC 5077) with a ticket: a TLS ≤ 1.2 resumption attempt.
    pub session_ticket: Option<Vec<u8>>,
    /// The `encrypted_client_hello` extension (RFC 9849): in an outer ClientHello the
    /// sealed inner one (or GREASE, which looks the same), in an inner one a marker.
    pub ech: Option<Ech>,
    /// Its JA3 and JA4 fingerprints: which TLS stack sent it.
    pub fingerprints: Fingerprints,
}

/// The `encrypted_client_hello` extension of a ClientHello (RFC 9849 §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ech {
    /// `outer`: the ClientHelloInner sealed with HPKE. The SNI beside it is the
    /// server's public name, not the server the client means (unless it is GREASE,
    /// RFC 9849 §6.2, which no observer can tell from a real offer).
    Outer(EchOuter),
    /// `inner`: this is a ClientHelloInner.
    Inner,
}

/// What an outer `encrypted_client_hello` extension carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EchOuter {
    /// HPKE KDF and AEAD ids (RFC 9180 §7.2, §7.3).
    pub kdf: u16,
    pub aead: u16,
    pub config_id: u8,
    /// The HPKE encapsulated key (empty in a second ClientHello after a retry).
    pub enc: Vec<u8>,
    /// Offset of the sealed payload in the ClientHello body, and its length: the
    /// ClientHelloOuterAAD is the body with those bytes zeroed (RFC 9849 §5.2).
    pub payload_at: usize,
    pub payload_len: usize,
}

impl ClientHello {
    /// The highest version offered: from `supported_versions` (GREASE and unknown
    /// values aside; drafts rank just below TLS 1.3), else the legacy version field.
    pub fn offered_version(&self) -> u16 {
        self.supported_versions
            .iter()
            .copied()
            .filter(|&v| version_rank(v) > 0)
            .max_by_key(|&v| version_rank(v))
            .unwrap_or(self.legacy_version)
    }

    /// The hello is an outer one offering Encrypted Client Hello (or GREASE that looks
    /// like it): its server name may be a public name only.
    pub fn offers_ech(&self) -> bool {
        matches!(self.ech, Some(Ech::Outer(_)))
    }
}

/// A parsed ServerHello (RFC 8446 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerHello {
    pub legacy_version: u16,
    /// The negotiated version: the `supported_versions` extension, else the legacy field.
    pub version: u16,
    pub random: [u8; 32],
    pub session_id: Vec<u8>,
    pub cipher_suite: u16,
    /// ALPN chosen (TLS ≤ 1.2 only: TLS 1.3 sends it encrypted).
    pub alpn: Option<String>,
    /// A HelloRetryRequest (RFC 8446 §4.1.3 special random): the real ServerHello follows.
    pub retry_request: bool,
    /// Extension 22 (RFC 7366) accepted.
    pub encrypt_then_mac: bool,
    /// Extension 23 (RFC 7627) accepted.
    pub extended_master_secret: bool,
}

/// Answer of a [`HelloReader`] feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelloPoll<T> {
    /// The hello is not complete yet.
    NeedMore,
    Done(T),
    /// The stream does not start with a TLS handshake record.
    NotTls,
    /// TLS records, but a broken or over-long hello (the reason).
    Malformed(String),
}

/// Handshake messages in clear from one direction's stream bytes: records reassembled
/// across TCP segments, messages across records, everything bounded by `limit` bytes
/// of stream. The core of [`HelloReader`] and [`ServerFlightReader`].
#[derive(Debug)]
struct HandshakeStream {
    /// Bytes of a record not complete yet.
    record: Vec<u8>,
    /// Handshake bytes from complete records, not yet taken as a message.
    handshake: Vec<u8>,
    /// Stream bytes consumed so far.
    seen: usize,
    records: usize,
    limit: usize,
}

/// What [`HandshakeStream::next`] found.
enum Next {
    NeedMore,
    /// A whole message: its type and body length; the body is `handshake[4..4 + len]`
    /// until [`HandshakeStream::consume`].
    Message(u8, usize),
    /// The first record is no TLS handshake record.
    NotTls,
    /// A well-formed record of another content type (ChangeCipherSpec, a fatal
    /// alert, application data) where a handshake message was due.
    OtherRecord(u8),
    Malformed(String),
}

impl HandshakeStream {
    fn new(limit: usize) -> Self {
        HandshakeStream {
            record: Vec::new(),
            handshake: Vec::new(),
            seen: 0,
            records: 0,
            limit,
        }
    }

    /// The next message, reading from `data` (advanced past what was taken) only as
    /// far as needed. `check` judges a message's type and length once its header is
    /// in, `what` names the message looked for in errors.
    fn next(
        &mut self,
        data: &mut &[u8],
        what: &str,
        check: impl Fn(u8, usize) -> Result<(), String>,
    ) -> Next {
        loop {
            if let [kind, a, b, c, ..] = self.handshake[..] {
                let len = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
                if let Err(why) = check(kind, len) {
                    return Next::Malformed(why);
                }
                if self.handshake.len() >= 4 + len {
                    return Next::Message(kind, len);
                }
            }
            // Complete the record header, then the fragment, copying only what is needed.
            let need = if self.record.len() < 5 {
                5 - self.record.len()
            } else {
                let len = usize::from(u16::from_be_bytes([self.record[3], self.record[4]]));
                5 + len - self.record.len()
            };
            if need > 0 {
                if data.is_empty() {
                    return Next::NeedMore;
                }
                let take = need.min(data.len());
                if self.seen + take > self.limit {
                    return Next::Malformed(format!("no {what} within {} bytes", self.limit));
                }
                self.record.extend_from_slice(&data[..take]);
                self.seen += take;
                *data = &data[take..];
                if self.record.len() == 5 {
                    if let Some(stop) = self.check_header(what) {
                        return stop;
                    }
                }
                continue;
            }
            if self.record[0] == ALERT {
                // A warning before the hello (Apache's `unrecognized_name` when the
                // server name matches none of its sites) is passed over; a fatal
                // alert ends the reading.
                if self.record.get(5) != Some(&ALERT_WARNING) {
                    return Next::OtherRecord(ALERT);
                }
                self.record.clear();
                continue;
            }
            self.records += 1;
            self.handshake.extend_from_slice(&self.record[5..]);
            self.record.clear();
        }
    }

    /// Body of the message [`Next::Message`] announced.
    fn body(&self, len: usize) -> &[u8] {
        self.handshake.get(4..4 + len).unwrap_or_default()
    }

    /// Drops the message [`Next::Message`] announced.
    fn consume(&mut self, len: usize) {
        self.handshake.drain(..(4 + len).min(self.handshake.len()));
    }

    /// Checks a complete record header: `NotTls` on the first record, `OtherRecord`
    /// for a sound record of another type later, `Malformed` for anything else.
    fn check_header(&self, what: &str) -> Option<Next> {
        let r = &self.record;
        let len = usize::from(u16::from_be_bytes([r[3], r[4]]));
        let sound = r[1] == 3 && r[2] <= 4 && len <= MAX_RECORD && len > 0;
        let alert_first = r[0] == ALERT && len == 2 && self.handshake.is_empty();
        if sound && (r[0] == HANDSHAKE || alert_first) {
            None
        } else if self.records == 0 {
            Some(Next::NotTls)
        } else if sound && matches!(r[0], 20 | 21 | 23) && self.handshake.is_empty() {
            Some(Next::OtherRecord(r[0]))
        } else {
            Some(Next::Malformed(format!(
                "record type {} version {}.{} length {len} inside the {what}",
                r[0], r[1], r[2]
            )))
        }
    }
}

/// Reassembles one direction's first handshake message from stream bytes; see the
/// module doc. Feed until the answer is not `NeedMore`; later feeds answer
/// `Malformed("finished")`.
#[derive(Debug)]
pub struct HelloReader {
    stream: HandshakeStream,
    finished: bool,
}

impl Default for HelloReader {
    fn default() -> Self {
        HelloReader {
            stream: HandshakeStream::new(MAX_HELLO_STREAM),
            finished: false,
        }
    }
}

impl HelloReader {
    /// A reader at the start of a direction's stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds client bytes; answers with the ClientHello once complete.
    pub fn client_hello(&mut self, data: &[u8]) -> HelloPoll<ClientHello> {
        self.feed(data, CLIENT_HELLO, parse_client_hello)
    }

    /// Feeds server bytes; answers with the ServerHello once complete.
    pub fn server_hello(&mut self, data: &[u8]) -> HelloPoll<ServerHello> {
        self.feed(data, SERVER_HELLO, parse_server_hello)
    }

    fn feed<T>(
        &mut self,
        mut data: &[u8],
        want: u8,
        parse: fn(&[u8]) -> Result<T, String>,
    ) -> HelloPoll<T> {
        if self.finished {
            return HelloPoll::Malformed("finished".into());
        }
        let answer = match self.stream.next(&mut data, "hello", |kind, len| {
            hello_header(kind, len, want)
        }) {
            Next::NeedMore => return HelloPoll::NeedMore,
            Next::Message(_, len) => match parse(self.stream.body(len)) {
                Ok(hello) => HelloPoll::Done(hello),
                Err(e) => HelloPoll::Malformed(e),
            },
            Next::NotTls => HelloPoll::NotTls,
            Next::OtherRecord(t) => {
                HelloPoll::Malformed(format!("record type {t} before the hello was complete"))
            }
            Next::Malformed(why) => HelloPoll::Malformed(why),
        };
        self.finished = true;
        self.stream = HandshakeStream::new(0);
        answer
    }
}

/// A hello's header: the type wanted and a length within [`MAX_HELLO_STREAM`].
fn hello_header(kind: u8, len: usize, want: u8) -> Result<(), String> {
    if kind != want {
        Err(format!(
            "handshake message type {kind} where a hello was expected"
        ))
    } else if len > MAX_HELLO_STREAM {
        Err(format!("hello of {len} bytes"))
    } else {
        Ok(())
    }
}

/// Reads a server's first flight in clear: its ServerHello (after a HelloRetryRequest,
/// the real one) and, when the version is TLS 1.2 or lower, the Certificate that
/// follows it (RFC 5246 §7.3). TLS 1.3 encrypts everything after the ServerHello, and
/// an abbreviated handshake (resumption) or an anonymous or PSK suite sends no
/// certificate: the reader then stops at the ServerHello or at the message after it.
#[derive(Debug)]
pub struct ServerFlightReader {
    stream: HandshakeStream,
    /// The real ServerHello was read (not only a HelloRetryRequest).
    hello_read: bool,
    hello: Option<ServerHello>,
    certificate: Option<ServerCertificate>,
    finished: bool,
}

impl Default for ServerFlightReader {
    fn default() -> Self {
        ServerFlightReader {
            // The hello and the certificate within what a hello alone may take, so
            // that a connection holds no more than before the certificate was read
            // (a real chain is a few KiB).
            stream: HandshakeStream::new(MAX_HELLO_STREAM),
            hello_read: false,
            hello: None,
            certificate: None,
            finished: false,
        }
    }
}

/// Answer of a [`ServerFlightReader`] feed; the hello and the certificate are taken
/// with [`ServerFlightReader::take_hello`] and [`ServerFlightReader::take_certificate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlightPoll {
    NeedMore,
    /// Nothing more to read in clear.
    Done,
    /// The stream does not start with a TLS handshake record.
    NotTls,
    /// A broken hello (the reason).
    Malformed(String),
    /// A sound hello, then a broken certificate or record (the reason).
    CertificateMalformed(String),
}

impl ServerFlightReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds server bytes.
    pub fn push(&mut self, mut data: &[u8]) -> FlightPoll {
        if self.finished {
            return FlightPoll::Done;
        }
        let answer = loop {
            let after_hello = self.hello_read;
            let next = self.stream.next(
                &mut data,
                if after_hello { "certificate" } else { "hello" },
                |kind, len| {
                    if after_hello {
                        // Whatever follows the hello ends the reading; only a certificate
                        // is read whole, within its bound.
                        if kind == tls_certificate::CERTIFICATE
                            && len > tls_certificate::MAX_MESSAGE
                        {
                            return Err(format!("certificate message of {len} bytes"));
                        }
                        Ok(())
                    } else {
                        hello_header(kind, len, SERVER_HELLO)
                    }
                },
            );
            match next {
                Next::NeedMore => return FlightPoll::NeedMore,
                Next::NotTls => break FlightPoll::NotTls,
                Next::Malformed(why) if after_hello => break FlightPoll::CertificateMalformed(why),
                Next::Malformed(why) => break FlightPoll::Malformed(why),
                // A ChangeCipherSpec after the hello: an abbreviated handshake.
                Next::OtherRecord(_) if after_hello => break FlightPoll::Done,
                Next::OtherRecord(t) => {
                    break FlightPoll::Malformed(format!(
                        "record type {t} before the hello was complete"
                    ))
                }
                Next::Message(kind, len) if after_hello => {
                    if kind != tls_certificate::CERTIFICATE {
                        break FlightPoll::Done;
                    }
                    match tls_certificate::parse_certificate(self.stream.body(len), false) {
                        Ok(cert) => {
                            self.certificate = cert;
                            break FlightPoll::Done;
                        }
                        Err(why) => break FlightPoll::CertificateMalformed(why),
                    }
                }
                Next::Message(_, len) => {
                    let hello = match parse_server_hello(self.stream.body(len)) {
                        Ok(hello) => hello,
                        Err(e) => break FlightPoll::Malformed(e),
                    };
                    self.stream.consume(len);
                    self.hello_read = !hello.retry_request;
                    // TLS 1.3 and its drafts encrypt the rest of the flight.
                    let encrypted_after =
                        self.hello_read && version_rank(hello.version) >= version_rank(0x7f00);
                    self.hello = Some(hello);
                    if encrypted_after {
                        break FlightPoll::Done;
                    }
                }
            }
        };
        self.finished = true;
        self.stream = HandshakeStream::new(0);
        answer
    }

    /// The ServerHello, once read (never a HelloRetryRequest: the real one follows it).
    pub fn take_hello(&mut self) -> Option<ServerHello> {
        self.hello.take_if(|h| !h.retry_request)
    }

    /// The server's certificate, once read.
    pub fn take_certificate(&mut self) -> Option<ServerCertificate> {
        self.certificate.take()
    }
}

/// Whether `v` is a GREASE value (RFC 8701: 0x0a0a, 0x1a1a, … 0xfafa).
pub fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && (v >> 8) == (v & 0xff)
}

/// Order of TLS versions for picking the highest offered; 0 for GREASE and unknowns.
fn version_rank(v: u16) -> u16 {
    match v {
        0x0300..=0x0303 => v - 0x0300 + 1,
        0x7f00..=0x7fff | 0xfb00..=0xfbff => 5,
        0x0304 => 6,
        _ => 0,
    }
}

/// The usual name of a protocol version number.
pub fn version_name(v: u16) -> &'static str {
    match v {
        0x0002 => "SSL 2.0",
        0x0300 => "SSL 3.0",
        0x0301 => "TLS 1.0",
        0x0302 => "TLS 1.1",
        0x0303 => "TLS 1.2",
        0x0304 => "TLS 1.3",
        // IETF drafts, and Facebook's Fizz experiments (0xfb1a seen in app traffic).
        0x7f00..=0x7fff | 0xfb00..=0xfbff => "TLS 1.3 draft",
        0xfeff => "DTLS 1.0",
        0xfefd => "DTLS 1.2",
        0xfefc => "DTLS 1.3",
        v if is_grease(v) => "GREASE",
        _ => "unknown",
    }
}

/// Big-endian cursor over a borrowed slice; every read is checked.
struct Cur<'a> {
    b: &'a [u8],
    what: &'static str,
}

impl<'a> Cur<'a> {
    fn new(b: &'a [u8], what: &'static str) -> Self {
        Cur { b, what }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.b.len() < n {
            return Err(format!("{} truncated", self.what));
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// A vector with a 1- or 2-byte length prefix.
    fn vec8(&mut self) -> Result<&'a [u8], String> {
        let n = usize::from(self.u8()?);
        self.take(n)
    }

    fn vec16(&mut self) -> Result<&'a [u8], String> {
        let n = usize::from(self.u16()?);
        self.take(n)
    }

    fn is_empty(&self) -> bool {
        self.b.is_empty()
    }
}

fn u16s(b: &[u8], what: &str) -> Result<Vec<u16>, String> {
    if !b.len().is_multiple_of(2) {
        return Err(format!("{what}: odd length"));
    }
    Ok(b.chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect())
}

/// Bytes as text: printable ASCII as is (lower-cased when `lower`), others `\DDD`.
/// A server name as the ClientHello's is written (lower-cased, bytes outside
/// printable ASCII as `\DDD`): for other handshakes' names (gQUIC's CHLO).
pub(crate) fn server_name_text(b: &[u8]) -> String {
    text(b, true)
}

fn text(b: &[u8], lower: bool) -> String {
    let mut s = String::with_capacity(b.len());
    for &c in b {
        match c {
            b'\\' => s.push_str("\\092"),
            0x21..=0x7e => s.push(char::from(if lower { c.to_ascii_lowercase() } else { c })),
            _ => s.push_str(&format!("\\{c:03}")),
        }
    }
    s
}

/// The common start of both hellos: version, random, session id.
fn hello_start(c: &mut Cur<'_>) -> Result<(u16, [u8; 32], Vec<u8>), String> {
    let version = c.u16()?;
    let mut random = [0u8; 32];
    random.copy_from_slice(c.take(32)?);
    let session_id = c.vec8()?;
    if session_id.len() > 32 {
        return Err(format!("session id of {} bytes", session_id.len()));
    }
    Ok((version, random, session_id.to_vec()))
}

/// Iterates over `(type, data)` of an extensions block.
fn extensions<'a>(c: &mut Cur<'a>) -> Result<Vec<(u16, &'a [u8])>, String> {
    if c.is_empty() {
        return Ok(Vec::new());
    }
    let mut e = Cur::new(c.vec16()?, "extensions");
    let mut out = Vec::new();
    while !e.is_empty() {
        let t = e.u16()?;
        let d = e.vec16()?;
        out.push((t, d));
    }
    Ok(out)
}

fn alpn_list(d: &[u8]) -> Result<Vec<String>, String> {
    let mut l = Cur::new(d, "ALPN");
    let mut list = Cur::new(l.vec16()?, "ALPN");
    let mut out = Vec::new();
    while !list.is_empty() {
        let p = list.vec8()?;
        if out.len() < MAX_ALPN {
            out.push(text(p, false));
        }
    }
    Ok(out)
}

/// Parses a ClientHello handshake body (after the 4-byte handshake header).
pub fn parse_client_hello(body: &[u8]) -> Result<ClientHello, String> {
    let mut c = Cur::new(body, "ClientHello");
    let (legacy_version, random, session_id) = hello_start(&mut c)?;
    let cipher_suites = u16s(c.vec16()?, "cipher suites")?;
    let _compression = c.vec8()?;
    let extensions = extensions(&mut c)?;
    let fingerprints = Fingerprints::of(&HelloFields {
        legacy_version,
        cipher_suites: &cipher_suites,
        extensions: &extensions,
    });
    let mut hello = ClientHello {
        legacy_version,
        supported_versions: Vec::new(),
        random,
        session_id,
        cipher_suites,
        sni: None,
        alpn: Vec::new(),
        encrypt_then_mac: false,
        extended_master_secret: false,
        early_data: false,
        session_ticket: None,
        ech: None,
        fingerprints,
    };
    for (t, d) in extensions {
        match t {
            EXT_SNI if hello.sni.is_none() => {
                let mut e = Cur::new(d, "server_name");
                let mut list = Cur::new(e.vec16()?, "server_name");
                while !list.is_empty() {
                    let kind = list.u8()?;
                    let name = list.vec16()?;
                    if kind == 0 && hello.sni.is_none() && !name.is_empty() {
                        hello.sni = Some(text(name, true));
                    }
                }
            }
            EXT_ALPN => hello.alpn = alpn_list(d)?,
            EXT_ENCRYPT_THEN_MAC => hello.encrypt_then_mac = true,
            EXT_EXTENDED_MASTER_SECRET => hello.extended_master_secret = true,
            EXT_EARLY_DATA => hello.early_data = true,
            EXT_SESSION_TICKET if !d.is_empty() => hello.session_ticket = Some(d.to_vec()),
            EXT_SUPPORTED_VERSIONS => {
                let mut e = Cur::new(d, "supported_versions");
                hello.supported_versions = u16s(e.vec8()?, "supported_versions")?;
            }
            EXT_ECH if hello.ech.is_none() => hello.ech = Some(ech_extension(body, d)?),
            _ => {}
        }
    }
    Ok(hello)
}

/// The `encrypted_client_hello` extension `d`, a slice of the ClientHello `body`.
fn ech_extension(body: &[u8], d: &[u8]) -> Result<Ech, String> {
    let mut e = Cur::new(d, "encrypted_client_hello");
    match e.u8()? {
        0 => {
            let kdf = e.u16()?;
            let aead = e.u16()?;
            let config_id = e.u8()?;
            let enc = e.vec16()?.to_vec();
            let payload = e.vec16()?;
            if payload.is_empty() || !e.is_empty() {
                return Err("encrypted_client_hello: bad payload".into());
            }
            // `payload` is a slice of `body`: its offset is the distance between them.
            let payload_at = (payload.as_ptr() as usize)
                .checked_sub(body.as_ptr() as usize)
                .filter(|at| at + payload.len() <= body.len())
                .ok_or("encrypted_client_hello outside its ClientHello")?;
            Ok(Ech::Outer(EchOuter {
                kdf,
                aead,
                config_id,
                enc,
                payload_at,
                payload_len: payload.len(),
            }))
        }
        1 if e.is_empty() => Ok(Ech::Inner),
        t => Err(format!("encrypted_client_hello of type {t}")),
    }
}

/// `ech_outer_extensions` (RFC 9849 §5.1): in a ClientHelloInner, extensions to copy
/// from the outer ClientHello.
const EXT_ECH_OUTER_EXTENSIONS: u16 = 0xfd00;

/// The ClientHelloInner body an EncodedClientHelloInner stands for (RFC 9849 §5.1),
/// given the body of the outer ClientHello that carried it: the outer session id
/// goes back in, each extension type an `ech_outer_extensions` names is copied from
/// the outer hello (in order, each found after the one before), the padding (zeros)
/// goes. Parse the result with [`parse_client_hello`].
pub fn decode_inner_client_hello(encoded: &[u8], outer_body: &[u8]) -> Result<Vec<u8>, String> {
    let mut o = Cur::new(outer_body, "ClientHelloOuter");
    let (_, _, outer_session_id) = hello_start(&mut o)?;
    o.vec16()?;
    o.vec8()?;
    let outer_exts = extensions(&mut o)?;

    let mut c = Cur::new(encoded, "EncodedClientHelloInner");
    let version = c.take(2)?;
    let random = c.take(32)?;
    if !c.vec8()?.is_empty() {
        return Err("EncodedClientHelloInner with a session id".into());
    }
    let suites = c.vec16()?;
    let compression = c.vec8()?;
    let inner_exts = extensions(&mut c)?;
    if c.b.iter().any(|&b| b != 0) {
        return Err("EncodedClientHelloInner padding not zeros".into());
    }

    let mut exts = Vec::new();
    let mut next_outer = 0;
    for (t, d) in inner_exts {
        if t != EXT_ECH_OUTER_EXTENSIONS {
            put_extension(&mut exts, t, d);
            continue;
        }
        let mut l = Cur::new(d, "ech_outer_extensions");
        for wanted in u16s(l.vec8()?, "ech_outer_extensions")? {
            if wanted == EXT_ECH {
                return Err("ech_outer_extensions names encrypted_client_hello".into());
            }
            let Some(found) = outer_exts[next_outer..]
                .iter()
                .position(|(t, _)| *t == wanted)
            else {
                return Err(format!(
                    "ech_outer_extensions: 0x{wanted:04x} not in the outer hello"
                ));
            };
            let (_, d) = outer_exts[next_outer + found];
            put_extension(&mut exts, wanted, d);
            next_outer += found + 1;
        }
    }
    let exts_len = u16::try_from(exts.len()).map_err(|_| "ClientHelloInner too long")?;

    let mut body = Vec::with_capacity(encoded.len() + outer_body.len());
    body.extend_from_slice(version);
    body.extend_from_slice(random);
    // At most 32 bytes: `hello_start` checked it.
    body.push(outer_session_id.len() as u8);
    body.extend_from_slice(&outer_session_id);
    body.extend_from_slice(&(suites.len() as u16).to_be_bytes());
    body.extend_from_slice(suites);
    body.push(compression.len() as u8);
    body.extend_from_slice(compression);
    body.extend_from_slice(&exts_len.to_be_bytes());
    body.extend_from_slice(&exts);
    Ok(body)
}

/// Appends one extension (type, 2-byte length, data); `d` came from a 2-byte length.
fn put_extension(out: &mut Vec<u8>, t: u16, d: &[u8]) {
    out.extend_from_slice(&t.to_be_bytes());
    out.extend_from_slice(&(d.len() as u16).to_be_bytes());
    out.extend_from_slice(d);
}

/// SHA-256 of "HelloRetryRequest": the random of a HelloRetryRequest.
const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// Whether `version` is a TLS 1.3 draft before 22, whose ServerHello has neither
/// session id nor compression method (and says its version in the version field).
fn early_tls13_draft(version: u16) -> bool {
    matches!(version, 0x7f00..=0x7f15)
}

/// Parses a ServerHello handshake body (after the 4-byte handshake header), also in
/// the layout of TLS 1.3 drafts before 22 (version, random, cipher suite, extensions).
pub fn parse_server_hello(body: &[u8]) -> Result<ServerHello, String> {
    let mut c = Cur::new(body, "ServerHello");
    let (legacy_version, random, session_id) = match body.get(..2) {
        Some(&[hi, lo]) if early_tls13_draft(u16::from_be_bytes([hi, lo])) => {
            let version = c.u16()?;
            let mut random = [0u8; 32];
            random.copy_from_slice(c.take(32)?);
            (version, random, Vec::new())
        }
        _ => hello_start(&mut c)?,
    };
    let cipher_suite = c.u16()?;
    if !early_tls13_draft(legacy_version) {
        let _compression = c.u8()?;
    }
    let mut hello = ServerHello {
        legacy_version,
        version: legacy_version,
        random,
        session_id,
        cipher_suite,
        alpn: None,
        retry_request: random == HRR_RANDOM,
        encrypt_then_mac: false,
        extended_master_secret: false,
    };
    for (t, d) in extensions(&mut c)? {
        match t {
            EXT_SUPPORTED_VERSIONS => hello.version = Cur::new(d, "supported_versions").u16()?,
            EXT_ALPN => hello.alpn = alpn_list(d)?.into_iter().next(),
            EXT_ENCRYPT_THEN_MAC => hello.encrypt_then_mac = true,
            EXT_EXTENDED_MASTER_SECRET => hello.extended_master_secret = true,
            _ => {}
        }
    }
    Ok(hello)
}

/// The ALPN protocol chosen in a TLS 1.3 EncryptedExtensions body (after the 4-byte
/// handshake header), if it names one.
pub fn parse_encrypted_extensions_alpn(body: &[u8]) -> Result<Option<String>, String> {
    let mut c = Cur::new(body, "EncryptedExtensions");
    for (t, d) in extensions(&mut c)? {
        if t == EXT_ALPN {
            return Ok(alpn_list(d)?.into_iter().next());
        }
    }
    Ok(None)
}

/// ClientHello bodies for tests of this module and of ECH's.
#[cfg(test)]
pub(crate) mod test_hellos {
    /// A server's first flight as records of at most `record_max` bytes: a TLS 1.2
    /// ServerHello, then `after` (handshake messages as type and body).
    pub(crate) fn flight12(after: &[(u8, Vec<u8>)], record_max: usize) -> Vec<u8> {
        let mut hello = vec![3, 3];
        hello.extend_from_slice(&[1; 32]);
        hello.extend_from_slice(&[0, 0xc0, 0x2f, 0, 0, 0]);
        let mut hs = handshake_message(super::SERVER_HELLO, &hello);
        for (t, body) in after {
            hs.extend(handshake_message(*t, body));
        }
        let mut stream = Vec::new();
        for part in hs.chunks(record_max) {
            stream.extend_from_slice(&[22, 3, 3]);
            stream.extend_from_slice(&(part.len() as u16).to_be_bytes());
            stream.extend_from_slice(part);
        }
        stream
    }

    pub(crate) fn handshake_message(t: u8, body: &[u8]) -> Vec<u8> {
        let n = body.len();
        [&[t, (n >> 16) as u8, (n >> 8) as u8, n as u8][..], body].concat()
    }

    /// A ClientHello body: legacy version TLS 1.2, a random of `random` bytes,
    /// `session_id`, two suites, null compression, then `exts` in order.
    pub(crate) fn hello_body(random: u8, session_id: &[u8], exts: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut b = vec![3, 3];
        b.extend_from_slice(&[random; 32]);
        b.push(session_id.len() as u8);
        b.extend_from_slice(session_id);
        b.extend_from_slice(&[0, 4, 0x13, 0x01, 0x13, 0x03, 1, 0]);
        let mut e = Vec::new();
        for (t, d) in exts {
            e.extend_from_slice(&t.to_be_bytes());
            e.extend_from_slice(&(d.len() as u16).to_be_bytes());
            e.extend_from_slice(d);
        }
        b.extend_from_slice(&(e.len() as u16).to_be_bytes());
        b.extend_from_slice(&e);
        b
    }

    /// A `server_name` extension's data naming `name`.
    pub(crate) fn sni(name: &str) -> Vec<u8> {
        let n = name.len() as u16;
        let mut d = (n + 3).to_be_bytes().to_vec();
        d.push(0);
        d.extend_from_slice(&n.to_be_bytes());
        d.extend_from_slice(name.as_bytes());
        d
    }

    /// An outer `encrypted_client_hello` extension's data (HKDF-SHA256, AES-128-GCM).
    pub(crate) fn ech_outer(config_id: u8, enc: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut d = vec![0, 0, 1, 0, 1, config_id];
        d.extend_from_slice(&(enc.len() as u16).to_be_bytes());
        d.extend_from_slice(enc);
        d.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        d.extend_from_slice(payload);
        d
    }
}

#[cfg(test)]
mod tests {
    use super::test_hellos::{ech_outer, flight12, handshake_message, hello_body, sni};
    use super::*;
    use proptest::prelude::*;

    /// A ClientHello from Python 3 `ssl` (OpenSSL 3.0.19): `SSLContext(PROTOCOL_TLS_CLIENT)`,
    /// `set_alpn_protocols(["h2", "http/1.1"])`, `wrap_bio(MemoryBIO(), MemoryBIO(),
    /// server_hostname="tracker.example.com")`, first `do_handshake()` output.
    const PYTHON_HELLO: &str = "1603010200010001fc0303fd7a5c7d6151f2209b5fd6f25d7b2f76c181966933b3d4c5a43971094b0a251120350db9471dcab85962aa781d6e9c18abd7b29f3a7edd3b1ae028bd75d50adc7f0024130213031301c02cc030c02bc02fcca9cca8c024c028c023c027009f009e006b006700ff0100018f000000180016000013747261636b65722e6578616d706c652e636f6d000b000403000102000a00160014001d0017001e0019001801000101010201030104002300000010000e000c02683208687474702f312e310016000000170000000d002a0028040305030603080708080809080a080b080408050806040105010601030303010302040205020602002b00050403040303002d00020101003300260024001d00202b99b30c5285ba1d3378ec86a8faa0939e072b6bf127694b6654bb9eb8310843001500c80000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000";

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn feed_pieces(stream: &[u8], cuts: &[usize]) -> HelloPoll<ClientHello> {
        let mut r = HelloReader::new();
        let mut prev = 0;
        for &c in cuts.iter().chain(std::iter::once(&stream.len())) {
            match r.client_hello(&stream[prev..c]) {
                HelloPoll::NeedMore => prev = c,
                other => return other,
            }
        }
        HelloPoll::NeedMore
    }

    #[test]
    fn python_client_hello() {
        let stream = unhex(PYTHON_HELLO);
        let HelloPoll::Done(h) = feed_pieces(&stream, &[]) else {
            panic!("not done");
        };
        assert_eq!(h.sni.as_deref(), Some("tracker.example.com"));
        assert_eq!(h.alpn, ["h2", "http/1.1"]);
        assert_eq!(h.legacy_version, 0x0303);
        assert_eq!(h.supported_versions, [0x0304, 0x0303]);
        assert_eq!(version_name(h.offered_version()), "TLS 1.3");
        assert_eq!(&h.random[..], &stream[11..43]);
        assert_eq!(h.session_id.len(), 32);
        assert_eq!(&h.cipher_suites[..3], [0x1302, 0x1303, 0x1301]);
        assert_eq!(h.cipher_suites.len(), 18);
        // OpenSSL offers encrypt-then-MAC, extended master secret and an empty ticket.
        assert!(h.encrypt_then_mac && h.extended_master_secret);
        assert!(!h.early_data && h.session_ticket.is_none());
        // STYLE.md #14: every split point gives the same answer.
        for cut in 0..=stream.len() {
            assert_eq!(
                feed_pieces(&stream, &[cut]),
                HelloPoll::Done(h.clone()),
                "cut at {cut}"
            );
        }
        let bytes: Vec<usize> = (0..stream.len()).collect();
        assert_eq!(feed_pieces(&stream, &bytes), HelloPoll::Done(h));
    }

    /// A Chrome-like hello: GREASE cipher, extension and versions, an X25519MLKEM768
    /// key share (1 216 bytes) that pushes the hello past one record, which we cut in two.
    fn pq_hello_stream() -> Vec<u8> {
        let ext =
            |t: u16, d: &[u8]| [&t.to_be_bytes()[..], &(d.len() as u16).to_be_bytes(), d].concat();
        let v16 = |d: &[u8]| [&(d.len() as u16).to_be_bytes()[..], d].concat();
        let sni = v16(&[&[0u8][..], &v16(b"Ads.Tracker.Example")].concat());
        let alpn = v16(&[&[2u8][..], b"h2", &[8], b"http/1.1"].concat());
        let versions = [&[6u8][..], &[0x7a, 0x7a, 0x03, 0x04, 0x03, 0x03]].concat();
        let share = [
            &[0x11u8, 0xec][..],
            &v16(&[0x42; 1216]),
            &[0x00, 0x1d],
            &v16(&[7; 32]),
        ]
        .concat();
        let exts = [
            ext(0x0a0a, b""),
            ext(0, &sni),
            ext(16, &alpn),
            ext(43, &versions),
            ext(51, &v16(&share)),
            ext(0x1a1a, b"\0"),
        ]
        .concat();
        let suites: Vec<u8> = [0x3a3au16, 0x1301, 0x1302, 0xc02b]
            .iter()
            .flat_map(|s| s.to_be_bytes())
            .collect();
        let body = [
            &[3u8, 3][..],
            &[9; 32],
            &[0],
            &v16(&suites),
            &[1, 0],
            &v16(&exts),
        ]
        .concat();
        let len = body.len() as u32;
        let hs = [&[1u8][..], &len.to_be_bytes()[1..], &body].concat();
        let (a, b) = hs.split_at(1000);
        let rec = |f: &[u8]| [&[22u8, 3, 1][..], &(f.len() as u16).to_be_bytes(), f].concat();
        [rec(a), rec(b)].concat()
    }

    #[test]
    fn grease_and_pq_key_share_over_two_records() {
        let stream = pq_hello_stream();
        let HelloPoll::Done(h) = feed_pieces(&stream, &[]) else {
            panic!("not done");
        };
        assert_eq!(h.sni.as_deref(), Some("ads.tracker.example"));
        assert_eq!(h.alpn, ["h2", "http/1.1"]);
        assert_eq!(h.cipher_suites, [0x3a3a, 0x1301, 0x1302, 0xc02b]);
        assert_eq!(h.supported_versions, [0x7a7a, 0x0304, 0x0303]);
        assert_eq!(h.offered_version(), 0x0304);
        assert_eq!(version_name(0x7a7a), "GREASE");
        // Facebook's Fizz draft version ranks below TLS 1.3, above 1.2.
        let fb = ClientHello {
            supported_versions: vec![0xfb1a, 0x0303],
            ..h.clone()
        };
        assert_eq!(
            (fb.offered_version(), version_name(0xfb1a)),
            (0xfb1a, "TLS 1.3 draft")
        );
        let fb = ClientHello {
            supported_versions: vec![0x0304, 0xfb1a],
            ..h.clone()
        };
        assert_eq!(fb.offered_version(), 0x0304);
        for cut in (0..=stream.len()).step_by(7).chain([1004, 1005, 1006]) {
            assert_eq!(
                feed_pieces(&stream, &[cut]),
                HelloPoll::Done(h.clone()),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn not_tls_and_malformed() {
        assert_eq!(feed_pieces(b"GET / HTTP/1.1\r\n", &[]), HelloPoll::NotTls);
        assert_eq!(feed_pieces(b"\x16\x03\x01", &[]), HelloPoll::NeedMore);
        assert_eq!(feed_pieces(b"\x16\x03\x01\x00\x00", &[]), HelloPoll::NotTls);
        // A ServerHello where a ClientHello should be.
        assert!(matches!(
            feed_pieces(b"\x16\x03\x03\x00\x04\x02\x00\x00\x00", &[]),
            HelloPoll::Malformed(_)
        ));
        // Second record is an alert.
        let stream = pq_hello_stream();
        let mut bad = stream[..1005].to_vec();
        bad.extend_from_slice(b"\x15\x03\x03\x00\x02\x02\x28");
        assert!(matches!(feed_pieces(&bad, &[]), HelloPoll::Malformed(_)));
        // A hello announcing 16 MiB.
        assert!(matches!(
            feed_pieces(b"\x16\x03\x01\x00\x04\x01\xff\xff\xff", &[]),
            HelloPoll::Malformed(_)
        ));
        // Endless small records never exceed the bound.
        let mut endless = b"\x16\x03\x01\x00\x04\x01\x00\xff\xff".to_vec();
        for _ in 0..20_000 {
            endless.extend_from_slice(b"\x16\x03\x01\x00\x01\x00");
        }
        assert!(matches!(
            feed_pieces(&endless, &[]),
            HelloPoll::Malformed(_)
        ));
        // Lengths inside the hello that overrun it.
        let mut s = unhex(PYTHON_HELLO);
        s[9 + 2 + 32] = 0xff; // session id length
        assert!(matches!(feed_pieces(&s, &[]), HelloPoll::Malformed(_)));
    }

    /// TLS 1.3 drafts before 22 wrote a ServerHello without session id and
    /// compression method, their draft version in the version field (Wireshark's
    /// `tls13-20-chacha20poly1305.pcap` has one); draft 22 and later the final layout.
    #[test]
    fn server_hello_of_an_early_tls13_draft() {
        let mut body = vec![0x7f, 0x14];
        body.extend_from_slice(&[7; 32]);
        body.extend_from_slice(&[0x13, 0x03, 0, 8, 0, 51, 0, 4, 0, 0x1d, 0, 0]);
        let h = parse_server_hello(&body).unwrap();
        assert_eq!(
            (
                h.legacy_version,
                h.version,
                h.cipher_suite,
                h.session_id.len()
            ),
            (0x7f14, 0x7f14, 0x1303, 0)
        );
        assert_eq!(h.random, [7; 32]);
        assert_eq!(version_name(h.version), "TLS 1.3 draft");
        // Cut anywhere but before the (optional) extensions, it is an error.
        for cut in (0..body.len() - 1).filter(|&cut| cut != 36) {
            assert!(parse_server_hello(&body[..cut]).is_err(), "cut at {cut}");
        }
        // Draft 22 (0x7f16) in the final layout, its version in supported_versions.
        let exts = [0u8, 43, 0, 2, 0x7f, 0x16];
        let mut body = vec![3, 3];
        body.extend_from_slice(&[5; 32]);
        body.extend_from_slice(&[0, 0x13, 0x01, 0, 0, exts.len() as u8]);
        body.extend_from_slice(&exts);
        let h = parse_server_hello(&body).unwrap();
        assert_eq!((h.version, h.cipher_suite), (0x7f16, 0x1301));
    }

    #[test]
    fn server_hello_tls13_and_hrr() {
        let exts = [&[0u8, 43, 0, 2, 3, 4][..], &[0, 51, 0, 4, 0, 0x1d, 0, 0]].concat();
        let mut body = vec![3, 3];
        body.extend_from_slice(&[5; 32]);
        body.extend_from_slice(&[0, 0x13, 0x01, 0]);
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend_from_slice(&exts);
        let hs = [&[2u8, 0, 0, body.len() as u8][..], &body].concat();
        let stream = [
            &[22u8, 3, 3, 0, hs.len() as u8][..],
            &hs,
            b"\x14\x03\x03\x00\x01\x01",
        ]
        .concat();
        let mut r = HelloReader::new();
        let HelloPoll::Done(h) = r.server_hello(&stream) else {
            panic!("not done");
        };
        assert_eq!(
            (h.version, h.cipher_suite, h.retry_request),
            (0x0304, 0x1301, false)
        );
        assert_eq!(version_name(h.version), "TLS 1.3");
        body[2..34].copy_from_slice(&HRR_RANDOM);
        assert!(parse_server_hello(&body).unwrap().retry_request);
        // TLS 1.2 with ALPN.
        let mut b12 = vec![3, 3];
        b12.extend_from_slice(&[1; 32]);
        b12.extend_from_slice(&[0, 0xc0, 0x2f, 0, 0, 9, 0, 16, 0, 5, 0, 3, 2, b'h', b'2']);
        let h = parse_server_hello(&b12).unwrap();
        assert_eq!((h.version, h.alpn.as_deref()), (0x0303, Some("h2")));
    }

    /// Feeds `stream` cut at `cut`: the answer, the hello, the certificate.
    fn read_flight(
        stream: &[u8],
        cut: usize,
    ) -> (FlightPoll, Option<ServerHello>, Option<ServerCertificate>) {
        let mut r = ServerFlightReader::new();
        let (mut hello, mut cert) = (None, None);
        let mut poll = FlightPoll::NeedMore;
        for piece in [&stream[..cut], &stream[cut..]] {
            poll = r.push(piece);
            hello = hello.or(r.take_hello());
            cert = cert.or(r.take_certificate());
            if poll != FlightPoll::NeedMore {
                break;
            }
        }
        (poll, hello, cert)
    }

    #[test]
    fn a_tls12_flight_gives_its_hello_then_its_certificate_at_any_cut() {
        use crate::net::tls_certificate::tests::{certificate, message12};
        let leaf = certificate(&["ads.example.com"]);
        let stream = flight12(
            &[(11, message12(&[&leaf])), (12, vec![0; 300]), (14, vec![])],
            700,
        );
        let (poll, hello, cert) = read_flight(&stream, stream.len());
        assert_eq!(poll, FlightPoll::Done);
        assert_eq!(hello.map(|h| h.cipher_suite), Some(0xc02f));
        let cert = cert.expect("certificate");
        assert_eq!(cert.host.as_deref(), Some("ads.example.com"));
        for cut in 0..=stream.len() {
            let (p, h, c) = read_flight(&stream, cut);
            assert_eq!(
                (p, h.is_some(), c.as_ref()),
                (FlightPoll::Done, true, Some(&cert)),
                "cut at {cut}"
            );
        }
        // The hello is there before the certificate is complete (records of 60 bytes:
        // the hello's 42 end in the first).
        let stream = flight12(&[(11, message12(&[&leaf]))], 60);
        let mut r = ServerFlightReader::new();
        assert_eq!(r.push(&stream[..200]), FlightPoll::NeedMore);
        assert!(r.take_hello().is_some());
        assert!(r.take_certificate().is_none());
    }

    #[test]
    fn a_warning_alert_before_the_hello_is_passed_over_a_fatal_one_is_not() {
        use crate::net::tls_certificate::tests::{certificate, message12};
        let leaf = certificate(&["www.example.org"]);
        let flight = flight12(&[(11, message12(&[&leaf]))], 500);
        // unrecognized_name (112) at warning level, as Apache sends it.
        let warned = [&[21u8, 3, 3, 0, 2, 1, 112][..], &flight].concat();
        for cut in 0..=warned.len() {
            let (poll, hello, cert) = read_flight(&warned, cut);
            assert_eq!(
                (poll, hello.is_some(), cert.is_some()),
                (FlightPoll::Done, true, true),
                "cut at {cut}"
            );
        }
        let fatal = [&[21u8, 3, 3, 0, 2, 2, 40][..], &flight].concat();
        let (poll, hello, _) = read_flight(&fatal, 0);
        assert!(
            matches!(poll, FlightPoll::Malformed(_)) && hello.is_none(),
            "{poll:?}"
        );
        // The client side the same.
        let stream = unhex(PYTHON_HELLO);
        let warned = [&[21u8, 3, 1, 0, 2, 1, 0][..], &stream].concat();
        assert!(matches!(feed_pieces(&warned, &[3]), HelloPoll::Done(_)));
    }

    #[test]
    fn no_certificate_after_a_tls13_hello_a_resumption_or_an_anonymous_suite() {
        // TLS 1.3: the certificate is encrypted; nothing after the hello is read.
        let mut b13 = vec![3, 3];
        b13.extend_from_slice(&[1; 32]);
        b13.extend_from_slice(&[0, 0x13, 0x01, 0, 0, 6, 0, 43, 0, 2, 3, 4]);
        let hs = handshake_message(SERVER_HELLO, &b13);
        let stream = [
            &[22u8, 3, 3, 0, hs.len() as u8][..],
            &hs,
            b"\x17\x03\x03\x00\x01\x00",
        ]
        .concat();
        let (poll, hello, cert) = read_flight(&stream, stream.len());
        assert_eq!(
            (poll, hello.map(|h| h.version), cert),
            (FlightPoll::Done, Some(0x0304), None)
        );
        // TLS 1.2 resumption: a ChangeCipherSpec follows the hello.
        let resumed = [flight12(&[], 100), b"\x14\x03\x03\x00\x01\x01".to_vec()].concat();
        assert_eq!(read_flight(&resumed, resumed.len()).0, FlightPoll::Done);
        // An anonymous suite: ServerKeyExchange right after the hello.
        let anon = flight12(&[(12, vec![0; 40]), (14, vec![])], 100);
        let (poll, _, cert) = read_flight(&anon, anon.len());
        assert_eq!((poll, cert), (FlightPoll::Done, None));
    }

    #[test]
    fn a_broken_or_oversized_certificate_is_malformed_after_a_sound_hello() {
        let broken = flight12(&[(11, vec![0, 0, 4, 0, 0, 1, 0x30])], 100);
        let (poll, hello, cert) = read_flight(&broken, 0);
        assert!(hello.is_some() && cert.is_none());
        assert!(
            matches!(&poll, FlightPoll::CertificateMalformed(why) if why.contains("not an X.509 certificate")),
            "{poll:?}"
        );
        let huge = flight12(
            &[(11, vec![0; crate::net::tls_certificate::MAX_MESSAGE + 1])],
            16384,
        );
        assert_eq!(
            read_flight(&huge, 0).0,
            FlightPoll::CertificateMalformed(format!(
                "certificate message of {} bytes",
                crate::net::tls_certificate::MAX_MESSAGE + 1
            ))
        );
        assert_eq!(
            read_flight(b"GET / HTTP/1.1\r\n\r\n", 0).0,
            FlightPoll::NotTls
        );
        // A ClientHello where the ServerHello was due.
        let wrong = [&[22u8, 3, 3, 0, 4][..], &[1, 0, 0, 0]].concat();
        assert!(matches!(read_flight(&wrong, 0).0, FlightPoll::Malformed(_)));
    }

    proptest! {
        #[test]
        fn never_panics(data in prop::collection::vec(any::<u8>(), 0..400), cut in any::<prop::sample::Index>()) {
            let at = cut.index(data.len() + 1);
            let _ = feed_pieces(&data, &[at]);
            let _ = parse_client_hello(&data);
            let _ = parse_server_hello(&data);
            let _ = read_flight(&data, at);
        }

        #[test]
        fn mutated_hello(flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
            let mut s = unhex(PYTHON_HELLO);
            for (i, b) in flips {
                let at = i.index(s.len());
                s[at] = b;
            }
            let whole = feed_pieces(&s, &[]);
            prop_assert_eq!(feed_pieces(&s, &[s.len() / 3]), whole);
        }
    }

    #[test]
    fn an_outer_ech_extension_is_read_with_where_its_payload_lies() {
        let body = hello_body(
            1,
            &[7; 32],
            &[
                (EXT_SNI, sni("public.example")),
                (EXT_ECH, ech_outer(0x2a, &[9; 32], &[0xee; 40])),
            ],
        );
        let h = parse_client_hello(&body).unwrap();
        assert_eq!(h.sni.as_deref(), Some("public.example"));
        let Some(Ech::Outer(o)) = h.ech else {
            panic!("{:?}", h.ech)
        };
        assert_eq!((o.kdf, o.aead, o.config_id), (1, 1, 0x2a));
        assert_eq!(o.enc, [9; 32]);
        assert_eq!(
            &body[o.payload_at..o.payload_at + o.payload_len],
            &[0xee; 40]
        );
        assert_eq!(
            o.payload_at + o.payload_len,
            body.len(),
            "the last extension"
        );

        let inner = hello_body(1, &[], &[(EXT_ECH, vec![1])]);
        assert_eq!(parse_client_hello(&inner).unwrap().ech, Some(Ech::Inner));
        for bad in [vec![2], vec![1, 0], ech_outer(1, &[], &[]), vec![0, 0, 1]] {
            let body = hello_body(1, &[], &[(EXT_ECH, bad.clone())]);
            assert!(parse_client_hello(&body).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_encoded_inner_hello_takes_the_outer_session_id_and_extensions() {
        let groups = (10, vec![0, 2, 0, 0x1d]);
        let sigs = (13, vec![0, 2, 4, 3]);
        let key_share = (51, vec![0xaa; 6]);
        let outer = hello_body(
            1,
            &[7; 32],
            &[
                (EXT_SNI, sni("public.example")),
                groups.clone(),
                sigs.clone(),
                key_share.clone(),
                (EXT_ECH, ech_outer(0x2a, &[9; 32], &[0xee; 40])),
            ],
        );
        let encoded = |names: &[u16], padding: &[u8]| {
            let list: Vec<u8> = names.iter().flat_map(|t| t.to_be_bytes()).collect();
            let mut outer_exts = vec![list.len() as u8];
            outer_exts.extend_from_slice(&list);
            let mut b = hello_body(
                2,
                &[],
                &[
                    (EXT_SNI, sni("tracker.example")),
                    (EXT_ECH_OUTER_EXTENSIONS, outer_exts),
                    (EXT_ECH, vec![1]),
                ],
            );
            b.extend_from_slice(padding);
            b
        };
        let decoded = decode_inner_client_hello(&encoded(&[10, 51], &[0; 13]), &outer).unwrap();
        assert_eq!(
            decoded,
            hello_body(
                2,
                &[7; 32],
                &[
                    (EXT_SNI, sni("tracker.example")),
                    groups,
                    key_share,
                    (EXT_ECH, vec![1]),
                ],
            )
        );
        let h = parse_client_hello(&decoded).unwrap();
        assert_eq!(h.sni.as_deref(), Some("tracker.example"));
        assert_eq!((h.random, h.ech), ([2; 32], Some(Ech::Inner)));

        for (names, padding, why) in [
            (&[10u16, 51][..], &[0u8, 1][..], "padding"),
            (&[0xfe0d], &[], "encrypted_client_hello"),
            (&[16], &[], "0x0010 not in the outer hello"),
            (&[51, 10], &[], "0x000a not in the outer hello"),
        ] {
            let err = decode_inner_client_hello(&encoded(names, padding), &outer).unwrap_err();
            assert!(err.contains(why), "{names:?}: {err}");
        }
        let mut with_session = hello_body(2, &[1, 2], &[]);
        with_session.push(0);
        assert!(decode_inner_client_hello(&with_session, &outer).is_err());
    }
}
