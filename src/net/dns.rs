//! DNS messages (RFC 1035) from UDP payloads and TCP streams, and the time-aware
//! address → name map their answers build.
//!
//! Most app traffic is TLS; when a ClientHello carries no SNI (or the connection is
//! QUIC or plain TCP) the name the app asked the resolver for is the best host we
//! have. The flow table feeds every DNS payload to [`parse`] (over TCP, and the
//! plaintext of DNS over TLS, through a [`DnsTcpFramer`]), hands responses to
//! [`DnsMap::insert_answers`], and asks [`DnsMap::lookup`] for the server address of
//! each metadata-only connection. The tap adds the answers of decrypted DNS over
//! HTTPS ([`doh_answer`]).
//!
//! Hostile input: compression pointers must point strictly backwards (no loops, no
//! forward references), at most [`MAX_POINTER_JUMPS`] of them per name; labels over 63
//! bytes, names over 255 wire bytes and section counts larger than the message are
//! errors, never allocations. Only the question and answer sections are read; answer
//! records other than A, AAAA, CNAME, SVCB and HTTPS are skipped by their length, as
//! is an SVCB or HTTPS record whose data cannot be read.
//!
//! SVCB and HTTPS records (RFC 9460) add to the map: their `ipv4hint`/`ipv6hint`
//! addresses like A and AAAA answers, and their `ech` parameter's configs (config id
//! and public name) name what a connection that offers Encrypted Client Hello with
//! that config, whose ClientHello shows only the public name, was meant for
//! ([`DnsMap::ech_name`]).
//!
//! Names are lower-cased ASCII without the trailing dot; bytes outside printable
//! ASCII, dots inside labels and backslashes are written `\DDD` (RFC 4343 style), so
//! a name never contains something a report would misread.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use crate::exchange::{header, header_list, Header};
use crate::net::message_budget::{BudgetShare, MessageBudget};
use crate::timestamp::Timestamp;

/// Most compression pointers followed within one name.
pub const MAX_POINTER_JUMPS: usize = 32;
/// Longest name on the wire (RFC 1035 §2.3.4).
pub const MAX_NAME_WIRE: usize = 255;
/// Most questions or answers kept from one message; the rest are not read.
pub const MAX_RECORDS: usize = 256;

/// Record type A.
pub const TYPE_A: u16 = 1;
/// Record type CNAME.
pub const TYPE_CNAME: u16 = 5;
/// Record type AAAA.
pub const TYPE_AAAA: u16 = 28;
/// Record type SVCB (RFC 9460).
pub const TYPE_SVCB: u16 = 64;
/// Record type HTTPS (RFC 9460).
pub const TYPE_HTTPS: u16 = 65;
/// Most addresses kept from one SVCB record's hints, and ECH configs from its `ech`.
const MAX_SVCB_ITEMS: usize = 16;
/// The ECHConfig version read from an `ech` parameter (RFC 9849 §4).
const ECH_CONFIG_VERSION: u16 = 0xfe0d;

/// Why a message could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error("DNS message truncated at byte {at}")]
    Truncated { at: usize },
    #[error("DNS label of reserved type at byte {at}")]
    BadLabel { at: usize },
    #[error("DNS name longer than 255 bytes at byte {at}")]
    NameTooLong { at: usize },
    #[error("DNS compression pointer at byte {at} does not point backwards")]
    BadPointer { at: usize },
    #[error("DNS name at byte {at} follows too many compression pointers")]
    TooManyPointers { at: usize },
    #[error("DNS record data of {len} bytes does not fit its type {rtype}")]
    BadRdata { rtype: u16, len: usize },
}

/// One question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
}

/// The data of an answer record we read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(String),
    /// An SVCB or HTTPS record.
    Svcb(Box<Svcb>),
}

/// What an SVCB or HTTPS record (RFC 9460 §2.2) tells the tap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Svcb {
    /// 0 is AliasMode (no parameters), else ServiceMode.
    pub priority: u16,
    /// The TargetName; empty for "." (the owner itself).
    pub target: String,
    /// The `ipv4hint` and `ipv6hint` addresses (at most 16 each).
    pub hints: Vec<IpAddr>,
    /// The configs of the `ech` parameter (at most 16).
    pub ech: Vec<EchFront>,
}

/// One ECHConfig of an `ech` parameter: what a ClientHello sealed to it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EchFront {
    pub config_id: u8,
    /// The public name, lower-cased, bytes outside printable ASCII as `\DDD`.
    pub public_name: String,
}

/// One A, AAAA, CNAME, SVCB or HTTPS answer record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Owner name.
    pub name: String,
    /// Time to live, seconds.
    pub ttl: u32,
    pub data: RecordData,
}

/// The parts of a DNS message the tap uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsMessage {
    pub id: u16,
    /// QR bit: a response.
    pub response: bool,
    pub opcode: u8,
    /// TC bit: truncated (the full answer comes over TCP).
    pub truncated: bool,
    /// Response code (0 = no error, 3 = NXDOMAIN).
    pub rcode: u8,
    pub questions: Vec<Question>,
    /// A, AAAA, CNAME, SVCB and HTTPS answers in message order; other types are
    /// skipped.
    pub answers: Vec<Record>,
    /// Answer records skipped (other types, or beyond [`MAX_RECORDS`]).
    pub skipped_answers: u16,
}

/// Parses one DNS message (a UDP payload, or one message out of [`DnsTcpFramer`]).
pub fn parse(msg: &[u8]) -> Result<DnsMessage, DnsError> {
    let mut r = Reader { msg, pos: 0 };
    let id = r.u16()?;
    let flags = r.u16()?;
    let qd = r.u16()?;
    let an = r.u16()?;
    let _ns = r.u16()?;
    let _ar = r.u16()?;
    // Each question takes at least 5 bytes and each record 11: the capacity is bounded
    // by the message, whatever the counts claim.
    let mut questions = Vec::with_capacity(usize::from(qd).min(msg.len() / 5).min(MAX_RECORDS));
    for _ in 0..qd {
        let name = r.name()?;
        let qtype = r.u16()?;
        let qclass = r.u16()?;
        if questions.len() < MAX_RECORDS {
            questions.push(Question {
                name,
                qtype,
                qclass,
            });
        }
    }
    let mut answers = Vec::with_capacity(usize::from(an).min(msg.len() / 11).min(MAX_RECORDS));
    let mut skipped_answers = 0u16;
    for _ in 0..an {
        let name = r.name()?;
        let rtype = r.u16()?;
        let _class = r.u16()?;
        let ttl = r.u32()?;
        let len = usize::from(r.u16()?);
        let start = r.pos;
        let rdata = r.take(len)?;
        if answers.len() >= MAX_RECORDS {
            skipped_answers = skipped_answers.saturating_add(1);
            continue;
        }
        let data = match rtype {
            TYPE_A => RecordData::A(Ipv4Addr::from(
                <[u8; 4]>::try_from(rdata).map_err(|_| DnsError::BadRdata { rtype, len })?,
            )),
            TYPE_AAAA => RecordData::Aaaa(Ipv6Addr::from(
                <[u8; 16]>::try_from(rdata).map_err(|_| DnsError::BadRdata { rtype, len })?,
            )),
            TYPE_CNAME => {
                let mut sub = Reader { msg, pos: start };
                let target = sub.name()?;
                if sub.pos > start + len {
                    return Err(DnsError::BadRdata { rtype, len });
                }
                RecordData::Cname(target)
            }
            TYPE_SVCB | TYPE_HTTPS => match svcb(msg, start, len) {
                Some(record) => RecordData::Svcb(Box::new(record)),
                None => {
                    skipped_answers = skipped_answers.saturating_add(1);
                    continue;
                }
            },
            _ => {
                skipped_answers = skipped_answers.saturating_add(1);
                continue;
            }
        };
        answers.push(Record { name, ttl, data });
    }
    Ok(DnsMessage {
        id,
        response: flags & 0x8000 != 0,
        opcode: ((flags >> 11) & 0xf) as u8,
        truncated: flags & 0x0200 != 0,
        rcode: (flags & 0xf) as u8,
        questions,
        answers,
        skipped_answers,
    })
}

/// Record type PTR.
pub const TYPE_PTR: u16 = 12;

/// The names a message is about: each question's, each record's owner in all three
/// sections, and each PTR record's target (in DNS-SD, the service instance a type
/// points to: RFC 6763 §4.1). At most [`MAX_RECORDS`] questions and three times as
/// many records are read; the rest of a longer message is left unread.
pub fn subject_names(msg: &[u8]) -> Result<Vec<String>, DnsError> {
    let mut r = Reader { msg, pos: 4 };
    let mut counts = [0u16; 4];
    for c in &mut counts {
        *c = r.u16()?;
    }
    let mut names = Vec::new();
    for _ in 0..usize::from(counts[0]).min(MAX_RECORDS) {
        names.push(r.name()?);
        r.take(4)?;
    }
    if usize::from(counts[0]) > MAX_RECORDS {
        return Ok(names);
    }
    let records = counts[1..].iter().map(|&c| usize::from(c)).sum::<usize>();
    for _ in 0..records.min(3 * MAX_RECORDS) {
        names.push(r.name()?);
        let rtype = r.u16()?;
        r.take(6)?;
        let len = usize::from(r.u16()?);
        let start = r.pos;
        r.take(len)?;
        if rtype == TYPE_PTR {
            let mut target = Reader { msg, pos: start };
            names.push(target.name()?);
            if target.pos > start + len {
                return Err(DnsError::BadRdata { rtype, len });
            }
        }
    }
    Ok(names)
}

/// The SVCB or HTTPS record data at `start..start + len` of `msg`; `None` when it
/// cannot be read (it is then skipped, the rest of the message still counts).
fn svcb(msg: &[u8], start: usize, len: usize) -> Option<Svcb> {
    let end = start + len;
    let mut r = Reader { msg, pos: start };
    let priority = r.u16().ok()?;
    let target = r.name().ok()?;
    let mut record = Svcb {
        priority,
        target,
        hints: Vec::new(),
        ech: Vec::new(),
    };
    let mut last_key = None;
    while r.pos < end {
        let key = r.u16().ok()?;
        // Keys come in strictly increasing order, each once (RFC 9460 §2.2).
        if last_key.is_some_and(|k| k >= key) {
            return None;
        }
        last_key = Some(key);
        let n = usize::from(r.u16().ok()?);
        if r.pos + n > end {
            return None;
        }
        let value = r.take(n).ok()?;
        match key {
            4 if n % 4 == 0 => record.hints.extend(
                value
                    .chunks_exact(4)
                    .take(MAX_SVCB_ITEMS)
                    .filter_map(|a| <[u8; 4]>::try_from(a).ok())
                    .map(|a| IpAddr::V4(Ipv4Addr::from(a))),
            ),
            6 if n % 16 == 0 => record.hints.extend(
                value
                    .chunks_exact(16)
                    .take(MAX_SVCB_ITEMS)
                    .filter_map(|a| <[u8; 16]>::try_from(a).ok())
                    .map(|a| IpAddr::V6(Ipv6Addr::from(a))),
            ),
            5 => record.ech = ech_fronts(value)?,
            4 | 6 => return None,
            _ => {}
        }
    }
    (r.pos == end).then_some(record)
}

/// The configs of an ECHConfigList (RFC 9849 §4): id and public name of each of
/// version 0xfe0d, others skipped by their length.
fn ech_fronts(list: &[u8]) -> Option<Vec<EchFront>> {
    let be16 = |b: &[u8], at: usize| Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]));
    let total = usize::from(be16(list, 0)?);
    let mut rest = list.get(2..)?;
    if rest.len() != total {
        return None;
    }
    let mut out = Vec::new();
    while !rest.is_empty() {
        let version = be16(rest, 0)?;
        let n = usize::from(be16(rest, 2)?);
        let contents = rest.get(4..4 + n)?;
        rest = &rest[4 + n..];
        if version != ECH_CONFIG_VERSION || out.len() >= MAX_SVCB_ITEMS {
            continue;
        }
        // config_id, kem_id, public_key<0..2^16-1>, cipher_suites<4..2^16-4>,
        // maximum_name_length, public_name<1..255>, extensions.
        let config_id = *contents.first()?;
        let key_len = usize::from(be16(contents, 3)?);
        let suites_at = 5 + key_len;
        let suites_len = usize::from(be16(contents, suites_at)?);
        let name_at = suites_at + 2 + suites_len + 1;
        let name_len = usize::from(*contents.get(name_at)?);
        let name = contents.get(name_at + 1..name_at + 1 + name_len)?;
        let mut public_name = String::with_capacity(name.len());
        for &b in name {
            match b {
                0x21..=0x7e if b != b'\\' => public_name.push(char::from(b.to_ascii_lowercase())),
                _ => public_name.push_str(&format!("\\{b:03}")),
            }
        }
        out.push(EchFront {
            config_id,
            public_name,
        });
    }
    Some(out)
}

struct Reader<'a> {
    msg: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DnsError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.msg.len());
        let end = end.ok_or(DnsError::Truncated { at: self.pos })?;
        let s = &self.msg[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u16(&mut self) -> Result<u16, DnsError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, DnsError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads a possibly compressed name; `pos` ends after its in-place part.
    fn name(&mut self) -> Result<String, DnsError> {
        let mut out = String::new();
        let mut wire = 0usize;
        let mut at = self.pos;
        let mut jumps = 0;
        // Pointers must go strictly below the start of the name part they continue.
        let mut floor = self.pos;
        let mut resume = None;
        loop {
            let len = *self.msg.get(at).ok_or(DnsError::Truncated { at })?;
            match len & 0xc0 {
                0x00 if len == 0 => {
                    at += 1;
                    break;
                }
                0x00 => {
                    let n = usize::from(len);
                    wire += n + 1;
                    if wire + 1 > MAX_NAME_WIRE {
                        return Err(DnsError::NameTooLong { at });
                    }
                    let label = self
                        .msg
                        .get(at + 1..at + 1 + n)
                        .ok_or(DnsError::Truncated { at })?;
                    if !out.is_empty() {
                        out.push('.');
                    }
                    push_label(&mut out, label);
                    at += 1 + n;
                }
                0xc0 => {
                    let lo = *self.msg.get(at + 1).ok_or(DnsError::Truncated { at })?;
                    let target = usize::from(u16::from_be_bytes([len & 0x3f, lo]));
                    if target >= floor {
                        return Err(DnsError::BadPointer { at });
                    }
                    jumps += 1;
                    if jumps > MAX_POINTER_JUMPS {
                        return Err(DnsError::TooManyPointers { at });
                    }
                    resume.get_or_insert(at + 2);
                    floor = target;
                    at = target;
                }
                _ => return Err(DnsError::BadLabel { at }),
            }
        }
        self.pos = resume.unwrap_or(at);
        Ok(out)
    }
}

fn push_label(out: &mut String, label: &[u8]) {
    for &b in label {
        match b {
            b'.' | b'\\' => out.push_str(&format!("\\{b:03}")),
            0x21..=0x7e => out.push(char::from(b.to_ascii_lowercase())),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
}

/// Whether `name` (without a final dot) is written as hosts' DNS names are: labels
/// of 1 to 63 letters, digits, `-` and `_`, at most 253 bytes in all.
pub fn is_host_name_text(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The DNS answer a decrypted DNS-over-HTTPS response carries (RFC 8484): status
/// 200, `Content-Type: application/dns-message`, no content coding, the whole body
/// one DNS response. Its answers name later connections as an answer over UDP does.
pub fn doh_answer(status: u16, headers: &[Header], body: &[u8]) -> Option<DnsMessage> {
    // Every `Content-Encoding` line counts: `identity` in one and `gzip` in the next
    // is a gzipped body.
    let coded = header_list(headers, "content-encoding").is_some_and(|list| {
        list.split(|&b| b == b',')
            .map(<[u8]>::trim_ascii)
            .any(|c| !c.is_empty() && !c.eq_ignore_ascii_case(b"identity"))
    });
    let typed = header(headers, "content-type").is_some_and(is_dns_message_type);
    if status != 200 || coded || !typed {
        return None;
    }
    parse(body).ok().filter(|m| m.response)
}

/// The names a DNS-over-HTTPS query asks for (RFC 8484 §4.1: a `POST` of a DNS
/// query typed `application/dns-message`, or a `GET` whose `dns` parameter is one);
/// `None` when the request is no such query.
pub fn doh_query(
    method: &str,
    target: &str,
    headers: &[Header],
    body: &[u8],
) -> Option<Vec<String>> {
    if method.eq_ignore_ascii_case("POST") {
        if !header(headers, "content-type").is_some_and(is_dns_message_type) {
            return None;
        }
        let message = parse(body).ok().filter(|m| !m.response)?;
        return Some(message.questions.into_iter().map(|q| q.name).collect());
    }
    if !method.eq_ignore_ascii_case("GET") {
        return None;
    }
    let (_, query) = target.split_once('?')?;
    query
        .split('&')
        .filter_map(|pair| pair.strip_prefix("dns="))
        .find_map(|value| doh_get_query(value.as_bytes()))
}

/// Whether a `Content-Type` value is DoH's `application/dns-message` (parameters and
/// case aside): the HTTP parsers keep such a response's body and type even when they
/// keep no other response's.
pub fn is_dns_message_type(value: &[u8]) -> bool {
    let media_type = value.split(|&b| b == b';').next().unwrap_or(value);
    media_type.trim_ascii().eq_ignore_ascii_case(DOH_MEDIA_TYPE)
}

/// The names a DNS-over-HTTPS `GET` asks for: its `dns` parameter is a query in
/// base64url without padding (RFC 8484 §4.1), the names one per line. `None` when the
/// value is not such a query.
pub fn doh_query_names(value: &[u8]) -> Option<String> {
    Some(doh_get_query(value)?.join("\n"))
}

/// [`doh_query_names`], one name each.
fn doh_get_query(value: &[u8]) -> Option<Vec<String>> {
    use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
    use base64::engine::DecodePaddingMode;
    use base64::Engine;
    const LENIENT: GeneralPurposeConfig =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, LENIENT);
    // A query of one name of 255 bytes is under 300 bytes; a few names fit in 4 KiB.
    if value.len() > 4096 {
        return None;
    }
    let message = parse(&URL_SAFE.decode(value).ok()?).ok()?;
    if message.response || message.questions.is_empty() {
        return None;
    }
    Some(message.questions.into_iter().map(|q| q.name).collect())
}

/// RFC 8484 §6's media type.
const DOH_MEDIA_TYPE: &[u8] = b"application/dns-message";

/// Largest message a 2-byte length prefix can announce.
const MAX_TCP_MESSAGE: usize = u16::MAX as usize;

/// DNS over TCP (RFC 7766): splits a stream into messages at their 2-byte length
/// prefixes. Holds at most one incomplete message (≤ 64 KiB), counted by capacity in
/// the flow table's message budget when it has one ([`DnsTcpFramer::with_budget`]): a
/// message the budget has no room for is passed over by its length (the framing
/// stays in step). Nothing is held between messages: each leaves in the buffer that
/// gathered it.
#[derive(Debug, Default)]
pub struct DnsTcpFramer {
    /// The length prefix and the message so far.
    buf: Vec<u8>,
    /// Bytes still to pass over of a message the budget had no room for.
    skip: usize,
    /// Messages passed over for want of budget.
    skipped: u64,
    /// A gap broke the framing; nothing more is read.
    lost: bool,
    budget: BudgetShare,
}

impl DnsTcpFramer {
    /// A framer at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same, holding its incomplete message in a share of `budget`.
    pub fn with_budget(mut self, budget: &MessageBudget) -> Self {
        self.budget = BudgetShare::of(budget);
        self
    }

    /// Feeds in-order stream bytes; complete messages are appended to `out`. Empty
    /// messages (length 0) are skipped.
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<Vec<u8>>) {
        if self.lost {
            return;
        }
        while !data.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(data.len());
                self.skip -= n;
                data = &data[n..];
                continue;
            }
            if self.buf.len() < 2 {
                let take = (2 - self.buf.len()).min(data.len());
                self.buf.extend_from_slice(&data[..take]);
                data = &data[take..];
                if self.buf.len() < 2 {
                    break;
                }
                let want = self.wanted();
                // A message this input does not complete is held: only if the
                // budget has room for all of it.
                if want > data.len() && !self.room_for(want) {
                    self.buf.clear();
                    self.skip = want;
                    self.skipped += 1;
                    continue;
                }
                self.buf.reserve_exact(want);
            }
            let want = self.wanted();
            debug_assert!(want <= MAX_TCP_MESSAGE);
            let have = self.buf.len() - 2;
            let take = (want - have).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() - 2 == want {
                // The buffer goes out with its message: nothing is held between
                // messages.
                let mut message = std::mem::take(&mut self.buf);
                if want > 0 {
                    message.drain(..2);
                    out.push(message);
                }
            }
        }
        self.budget.sync(self.buf.capacity());
    }

    /// Length the prefix in the buffer announces.
    fn wanted(&self) -> usize {
        usize::from(u16::from_be_bytes([self.buf[0], self.buf[1]]))
    }

    /// Whether the budget has room to hold a message of `len` bytes, its prefix and
    /// what the buffer already holds.
    fn room_for(&self, len: usize) -> bool {
        let needed = (len + 2).saturating_sub(self.buf.capacity());
        self.budget.has_room(needed)
    }

    /// Bytes were lost: the length prefixes can no longer be found.
    pub fn gap(&mut self) {
        self.lost = true;
        self.buf = Vec::new();
        self.budget.sync(0);
    }

    /// Whether a gap stopped the framer.
    pub fn is_lost(&self) -> bool {
        self.lost
    }

    /// Whether part of a message (or of its length prefix) is held.
    pub fn in_progress(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Messages passed over because the budget had no room to hold them.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }
}

/// Default [`DnsMapLimits::max_entries`].
pub const DEFAULT_MAX_ENTRIES: usize = 65_536;
/// Default [`DnsMapLimits::max_names_per_addr`]: CDN addresses serve many names.
pub const DEFAULT_MAX_NAMES_PER_ADDR: usize = 8;
/// Default [`DnsMapLimits::grace_micros`]: one hour past the TTL.
pub const DEFAULT_GRACE_MICROS: i64 = 3_600 * 1_000_000;
/// Most names of a CNAME chain remembered (question name first).
const MAX_CHAIN: usize = 8;
/// Most (public name, name) pairs remembered per ECH config id (256 ids).
pub const MAX_ECH_NAMES: usize = 256;

/// Bounds of a [`DnsMap`].
#[derive(Debug, Clone)]
pub struct DnsMapLimits {
    /// Most (address, name) entries; beyond it the least recently answered goes.
    pub max_entries: usize,
    /// Most names remembered per address; beyond it its least recently answered goes.
    pub max_names_per_addr: usize,
    /// How long past its TTL an answer still counts as fresh.
    pub grace_micros: i64,
}

impl Default for DnsMapLimits {
    fn default() -> Self {
        DnsMapLimits {
            max_entries: DEFAULT_MAX_ENTRIES,
            max_names_per_addr: DEFAULT_MAX_NAMES_PER_ADDR,
            grace_micros: DEFAULT_GRACE_MICROS,
        }
    }
}

/// What the map knows about one address under one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsEntry {
    /// The question name: what the app asked for.
    pub name: Arc<str>,
    /// The CNAME chain from the question name to the owner of the address record
    /// (just the question name when there was no CNAME).
    pub chain: Arc<[Arc<str>]>,
    /// First answer for this address and name.
    pub first_seen: Timestamp,
    /// Latest answer for this address and name.
    pub last_seen: Timestamp,
    /// End of the latest answer's TTL.
    pub expires: Timestamp,
    /// Eviction key: (last_seen, insertion sequence).
    key: (Timestamp, u64),
}

/// An ECH config (its id is the key it is kept under) answered for a name.
#[derive(Debug, Clone)]
struct EchAnswer {
    public_name: Arc<str>,
    /// The name the SVCB/HTTPS record answered for (its question name).
    name: Arc<str>,
    first_seen: Timestamp,
}

/// Time-aware address → name map built from DNS answers.
///
/// [`lookup`](Self::lookup)`(addr, at)` considers the entries of `addr` first
/// answered at or before `at`. Among them, fresh ones (TTL + grace not yet over at
/// `at`) rank above stale ones; within a rank the most recently answered wins (its
/// latest answer at or before `at`, else its first). Stale entries are still used:
/// apps keep connections and caches far longer than TTLs say. Bounded by
/// [`DnsMapLimits`]; lookups are a hash probe plus a scan of at most
/// `max_names_per_addr` entries, inserts O(log n).
#[derive(Debug, Default)]
pub struct DnsMap {
    limits: DnsMapLimits,
    by_addr: HashMap<IpAddr, Vec<DnsEntry>>,
    /// ECH configs from SVCB/HTTPS answers, by config id; at most [`MAX_ECH_NAMES`]
    /// per id, the first answered going first.
    ech: HashMap<u8, Vec<EchAnswer>>,
    /// All entries by eviction key, oldest first.
    order: BTreeMap<(Timestamp, u64), IpAddr>,
    seq: u64,
}

impl DnsMap {
    /// An empty map with default limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty map with the given limits.
    pub fn with_limits(limits: DnsMapLimits) -> Self {
        DnsMap {
            limits,
            ..Self::default()
        }
    }

    /// Number of (address, name) entries.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Records the addresses of a response seen at `ts`. Queries, error responses and
    /// answers without addresses change nothing. Each address maps to the question
    /// name, following CNAMEs back from the record's owner; an address record whose
    /// owner is not reached from the question maps to its own owner.
    pub fn insert_answers(&mut self, msg: &DnsMessage, ts: Timestamp) {
        if !msg.response || msg.rcode != 0 {
            return;
        }
        let question = msg.questions.first().map(|q| q.name.as_str());
        let mut chains: HashMap<&str, Arc<[Arc<str>]>> = HashMap::new();
        for rec in &msg.answers {
            let addrs: &[IpAddr] = match &rec.data {
                RecordData::A(a) => &[IpAddr::V4(*a)],
                RecordData::Aaaa(a) => &[IpAddr::V6(*a)],
                RecordData::Svcb(svcb) => &svcb.hints,
                RecordData::Cname(_) => continue,
            };
            let chain = chains
                .entry(rec.name.as_str())
                .or_insert_with(|| chain_to(msg, &rec.name, question))
                .clone();
            let ttl = i64::from(rec.ttl).saturating_mul(1_000_000);
            for &addr in addrs {
                self.insert(addr, chain.clone(), ts, ts.0.saturating_add(ttl));
            }
            if let (RecordData::Svcb(svcb), Some(name)) = (&rec.data, chain.first()) {
                for front in &svcb.ech {
                    self.insert_ech(front, name, ts);
                }
            }
        }
    }

    fn insert_ech(&mut self, front: &EchFront, name: &Arc<str>, ts: Timestamp) {
        if name.is_empty() {
            return;
        }
        let list = self.ech.entry(front.config_id).or_default();
        if let Some(e) = list
            .iter_mut()
            .find(|e| *e.public_name == *front.public_name && e.name == *name)
        {
            e.first_seen = e.first_seen.min(ts);
            return;
        }
        if list.len() >= MAX_ECH_NAMES {
            list.remove(0);
        }
        list.push(EchAnswer {
            public_name: Arc::from(front.public_name.as_str()),
            name: name.clone(),
            first_seen: ts,
        });
    }

    /// The name a TLS connection to `addr` that offered Encrypted Client Hello with
    /// config `config_id` under `public_name` (its ClientHello's server name) was meant
    /// for, as seen at `at`: among the names whose SVCB/HTTPS answer gave that config,
    /// those `addr` was answered for, ranked as [`lookup`](Self::lookup) ranks them.
    /// `None` when no answer gave that config for a name of `addr` (a GREASE offer,
    /// or the record came by DNS over HTTPS).
    pub fn ech_name(
        &self,
        addr: IpAddr,
        public_name: &str,
        config_id: u8,
        at: Timestamp,
    ) -> Option<&str> {
        let fronted = self.ech.get(&config_id)?;
        let meant = |name: &Arc<str>| {
            fronted
                .iter()
                .any(|e| *e.public_name == *public_name && e.name == *name && e.first_seen <= at)
        };
        self.best_entry(addr, at, |e| meant(&e.name))
            .map(|e| &*e.name)
    }

    fn insert(&mut self, addr: IpAddr, chain: Arc<[Arc<str>]>, ts: Timestamp, expires: i64) {
        // The root name (an answer owned by ".") names no host: a connection to
        // that address is better described by the address itself.
        let Some(name) = chain.first().filter(|n| !n.is_empty()).cloned() else {
            return;
        };
        self.seq += 1;
        let key = (ts, self.seq);
        let expires = Timestamp::from_micros(expires);
        let entries = self.by_addr.entry(addr).or_default();
        if let Some(e) = entries.iter_mut().find(|e| e.name == name) {
            self.order.remove(&e.key);
            if ts >= e.last_seen {
                e.last_seen = ts;
                e.expires = expires;
                e.chain = chain;
            }
            e.first_seen = e.first_seen.min(ts);
            e.key = key;
            self.order.insert(key, addr);
            return;
        }
        if entries.len() >= self.limits.max_names_per_addr.max(1) {
            if let Some(i) = (0..entries.len()).min_by_key(|&i| entries[i].key) {
                let old = entries.swap_remove(i);
                self.order.remove(&old.key);
            }
        }
        entries.push(DnsEntry {
            name,
            chain,
            first_seen: ts,
            last_seen: ts,
            expires,
            key,
        });
        self.order.insert(key, addr);
        while self.order.len() > self.limits.max_entries.max(1) {
            let Some((old_key, old_addr)) = self.order.pop_first() else {
                break;
            };
            if let Some(list) = self.by_addr.get_mut(&old_addr) {
                list.retain(|e| e.key != old_key);
                if list.is_empty() {
                    self.by_addr.remove(&old_addr);
                }
            }
        }
    }

    /// The name `addr` was answered for, as seen at `at`; see the type doc.
    pub fn lookup(&self, addr: IpAddr, at: Timestamp) -> Option<&str> {
        self.lookup_entry(addr, at).map(|e| &*e.name)
    }

    /// The whole entry behind [`lookup`](Self::lookup), with its CNAME chain.
    pub fn lookup_entry(&self, addr: IpAddr, at: Timestamp) -> Option<&DnsEntry> {
        self.best_entry(addr, at, |_| true)
    }

    /// The best-ranked entry of `addr` at `at` (see the type doc) among those `keep`
    /// accepts.
    fn best_entry(
        &self,
        addr: IpAddr,
        at: Timestamp,
        keep: impl Fn(&DnsEntry) -> bool,
    ) -> Option<&DnsEntry> {
        let grace = self.limits.grace_micros;
        self.by_addr
            .get(&addr)?
            .iter()
            .filter(|e| e.first_seen <= at && keep(e))
            .max_by_key(|e| {
                let seen = if e.last_seen <= at {
                    e.last_seen
                } else {
                    e.first_seen
                };
                let fresh = e.expires.0.saturating_add(grace) >= at.0;
                (fresh, seen, e.key.1)
            })
    }
}

/// The CNAME chain from the question name down to `owner`, question first. When
/// `owner` is not reached from the question, the chain starts at `owner`'s furthest
/// alias.
fn chain_to(msg: &DnsMessage, owner: &str, question: Option<&str>) -> Arc<[Arc<str>]> {
    let mut chain: Vec<&str> = vec![owner];
    let mut cur = owner;
    // Walk back: which record aliases `cur`? Bounded, so a CNAME loop ends.
    while chain.len() < MAX_CHAIN && Some(cur) != question {
        let prev = msg.answers.iter().find_map(|r| match &r.data {
            RecordData::Cname(t) if t == cur && !chain.contains(&r.name.as_str()) => {
                Some(r.name.as_str())
            }
            _ => None,
        });
        match prev {
            Some(p) => {
                chain.push(p);
                cur = p;
            }
            None => break,
        }
    }
    chain.reverse();
    chain.into_iter().map(Arc::from).collect()
}

/// A standard query (RD set) with `id` for `names`, each type A, class IN: test
/// input for the modules that read queries.
#[cfg(test)]
pub(crate) fn test_query(id: u16, names: &[&str]) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[1, 0]);
    m.extend_from_slice(&(names.len() as u16).to_be_bytes());
    m.extend_from_slice(&[0; 6]);
    for name in names {
        for label in name.split('.') {
            m.push(label.len() as u8);
            m.extend_from_slice(label.as_bytes());
        }
        m.extend_from_slice(&[0, 0, TYPE_A as u8, 0, 1]);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Builds a DNS message: header, questions, answers (name, type, ttl, rdata).
    struct Msg {
        bytes: Vec<u8>,
    }

    fn name(n: &str) -> Vec<u8> {
        let mut v = Vec::new();
        for l in n.split('.').filter(|l| !l.is_empty()) {
            v.push(l.len() as u8);
            v.extend_from_slice(l.as_bytes());
        }
        v.push(0);
        v
    }

    impl Msg {
        fn new(id: u16, flags: u16, qd: u16, an: u16) -> Self {
            let mut bytes = Vec::new();
            for v in [id, flags, qd, an, 0, 0] {
                bytes.extend_from_slice(&v.to_be_bytes());
            }
            Msg { bytes }
        }
        fn question(mut self, n: &str, t: u16) -> Self {
            self.bytes.extend(name(n));
            self.bytes.extend_from_slice(&t.to_be_bytes());
            self.bytes.extend_from_slice(&1u16.to_be_bytes());
            self
        }
        fn answer_raw(mut self, owner: &[u8], t: u16, ttl: u32, rdata: &[u8]) -> Self {
            self.bytes.extend_from_slice(owner);
            self.bytes.extend_from_slice(&t.to_be_bytes());
            self.bytes.extend_from_slice(&1u16.to_be_bytes());
            self.bytes.extend_from_slice(&ttl.to_be_bytes());
            self.bytes
                .extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            self.bytes.extend_from_slice(rdata);
            self
        }
    }

    /// www.example.com CNAME www.example.com.cdn.net (pointer), A ×2 and AAAA.
    fn cdn_response() -> Vec<u8> {
        let m = Msg::new(0x1234, 0x8180, 1, 5).question("WWW.Example.com", TYPE_A);
        // Question name sits at offset 12; the CNAME target reuses it by pointer.
        // The target's tail `example.com` points into the question (offset 16).
        let cname_rdata = [
            &[3, b'w', b'w', b'w', 3][..],
            b"cdn",
            &[3],
            b"net",
            &[0xc0, 16],
        ]
        .concat();
        let m = m.answer_raw(&[0xc0, 12], TYPE_CNAME, 300, &cname_rdata);
        // The CNAME target starts at offset 12 + 21 (question) + 12 (record header).
        let t = 12 + 21 + 12;
        m.answer_raw(&[0xc0, t as u8], TYPE_A, 60, &[93, 184, 216, 34])
            .answer_raw(&[0xc0, t as u8], TYPE_A, 60, &[93, 184, 216, 35])
            .answer_raw(
                &[0xc0, t as u8],
                TYPE_AAAA,
                60,
                &[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            )
            .answer_raw(&[0xc0, 12], 16, 60, b"\x03txt")
            .bytes
    }

    #[test]
    fn parses_cdn_response() {
        let m = parse(&cdn_response()).unwrap();
        assert_eq!(
            (m.id, m.response, m.rcode, m.truncated),
            (0x1234, true, 0, false)
        );
        assert_eq!(
            m.questions,
            [Question {
                name: "www.example.com".into(),
                qtype: 1,
                qclass: 1
            }]
        );
        assert_eq!(m.answers.len(), 4);
        assert_eq!(
            m.answers[0].data,
            RecordData::Cname("www.cdn.net.example.com".into())
        );
        assert_eq!(m.answers[1].name, "www.cdn.net.example.com");
        assert_eq!(m.answers[1].ttl, 60);
        assert_eq!(
            m.answers[2].data,
            RecordData::A(Ipv4Addr::new(93, 184, 216, 35))
        );
        assert!(matches!(m.answers[3].data, RecordData::Aaaa(_)));
        assert_eq!(m.skipped_answers, 1);
    }

    #[test]
    fn subject_names_are_questions_owners_and_ptr_targets_of_every_section() {
        // The CDN response: its question, every answer's owner (the CNAME's target
        // is no subject), the TXT record skipped by parse included.
        let names = subject_names(&cdn_response()).unwrap();
        let target = "www.cdn.net.example.com";
        assert_eq!(
            names,
            [
                "www.example.com",
                "www.example.com",
                target,
                target,
                target,
                "www.example.com"
            ]
        );
        // A DNS-SD PTR whose target points back into its owner, in the additional
        // section (the header's last count).
        let mut m = Msg::new(0, 0x8400, 0, 0).bytes;
        m[11] = 1;
        let m = Msg { bytes: m }
            .answer_raw(
                &name("_ipp._tcp.local"),
                TYPE_PTR,
                120,
                &[2, b'p', b'1', 0xc0, 12],
            )
            .bytes;
        assert_eq!(
            subject_names(&m).unwrap(),
            ["_ipp._tcp.local", "p1._ipp._tcp.local"]
        );
        // A PTR target running past its record's data, and a cut message: errors.
        let mut bad = m.clone();
        let len_at = bad.len() - 6;
        bad[len_at] = 2;
        assert_eq!(
            subject_names(&bad),
            Err(DnsError::BadRdata {
                rtype: TYPE_PTR,
                len: 2
            })
        );
        assert!(subject_names(&m[..m.len() - 1]).is_err());
        assert!(subject_names(&m[..3]).is_err());
    }

    #[test]
    fn hostile_names() {
        let base = Msg::new(1, 0x0100, 1, 0).bytes;
        // Pointer to itself.
        let mut m = base.clone();
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        assert_eq!(parse(&m), Err(DnsError::BadPointer { at: 12 }));
        // Forward pointer.
        let mut m = base.clone();
        m.extend_from_slice(&[0xc0, 20, 0, 1, 0, 1, 0, 0, 1, b'a', 0]);
        assert_eq!(parse(&m), Err(DnsError::BadPointer { at: 12 }));
        // Two names pointing at each other: the second points back to the first,
        // which points forward: rejected.
        let mut m = Msg::new(1, 0x0100, 2, 0).bytes;
        m.extend_from_slice(&[1, b'a', 0xc0, 18, 0, 1, 0, 1, 0xc0, 12, 0, 1, 0, 1]);
        assert!(matches!(parse(&m), Err(DnsError::BadPointer { .. })));
        // Label types 01 and 10 are reserved.
        let mut m = base.clone();
        m.extend_from_slice(&[0x40, 0, 1, 0, 1]);
        assert_eq!(parse(&m), Err(DnsError::BadLabel { at: 12 }));
        // A name over 255 bytes.
        let mut m = base.clone();
        for _ in 0..5 {
            m.push(63);
            m.extend_from_slice(&[b'a'; 63]);
        }
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        assert!(matches!(parse(&m), Err(DnsError::NameTooLong { .. })));
        // Counts larger than the message.
        let m = Msg::new(1, 0x8180, 65535, 65535).bytes;
        assert_eq!(parse(&m), Err(DnsError::Truncated { at: 12 }));
        // A with 5 bytes of data.
        let m = Msg::new(1, 0x8180, 0, 1)
            .answer_raw(&[0], TYPE_A, 1, &[1, 2, 3, 4, 5])
            .bytes;
        assert_eq!(parse(&m), Err(DnsError::BadRdata { rtype: 1, len: 5 }));
    }

    #[test]
    fn odd_bytes_in_names_are_escaped() {
        let mut m = Msg::new(1, 0x0100, 1, 0).bytes;
        m.extend_from_slice(&[3, b'a', b'.', 0xff, 2, b'\\', b' ', 0, 0, 1, 0, 1]);
        assert_eq!(
            parse(&m).unwrap().questions[0].name,
            "a\\046\\255.\\092\\032"
        );
    }

    #[test]
    fn tcp_framer_any_split() {
        let a = cdn_response();
        let b = Msg::new(7, 0x0100, 1, 0).question("x.org", 1).bytes;
        let mut stream = Vec::new();
        for m in [&a[..], &[][..], &b[..]] {
            stream.extend_from_slice(&(m.len() as u16).to_be_bytes());
            stream.extend_from_slice(m);
        }
        for cut in 0..=stream.len() {
            let mut f = DnsTcpFramer::new();
            let mut out = Vec::new();
            f.push(&stream[..cut], &mut out);
            f.push(&stream[cut..], &mut out);
            assert_eq!(out, vec![a.clone(), b.clone()], "cut at {cut}");
        }
        let mut f = DnsTcpFramer::new();
        let mut out = Vec::new();
        f.push(&stream[..5], &mut out);
        f.gap();
        f.push(&stream[5..], &mut out);
        assert!(out.is_empty() && f.is_lost());
    }

    #[test]
    fn doh_answers_by_status_media_type_and_coding() {
        let answer = cdn_response();
        let h = |pairs: &[(&str, &str)]| -> Vec<Header> {
            pairs
                .iter()
                .map(|(n, v)| Header::new(*n, v.as_bytes()))
                .collect()
        };
        let dns = h(&[("content-type", "application/dns-message")]);
        assert!(doh_answer(200, &dns, &answer).is_some_and(|m| m.response));
        // Parameters and case do not matter; identity is no coding.
        let spelled = h(&[
            ("Content-Type", "Application/DNS-Message; charset=binary"),
            ("Content-Encoding", "identity"),
        ]);
        assert!(doh_answer(200, &spelled, &answer).is_some());
        // Not an answer: another status, media type or a coding; a query; junk.
        assert!(doh_answer(404, &dns, &answer).is_none());
        let json = h(&[("content-type", "application/dns-json")]);
        assert!(doh_answer(200, &json, &answer).is_none());
        let gzip = h(&[
            ("content-type", "application/dns-message"),
            ("content-encoding", "gzip"),
        ]);
        assert!(doh_answer(200, &gzip, &answer).is_none());
        let second_line = h(&[
            ("content-type", "application/dns-message"),
            ("content-encoding", "identity"),
            ("Content-Encoding", "gzip"),
        ]);
        assert!(doh_answer(200, &second_line, &answer).is_none());
        let listed_identities = h(&[
            ("content-type", "application/dns-message"),
            ("content-encoding", "identity, ,identity"),
        ]);
        assert!(doh_answer(200, &listed_identities, &answer).is_some());
        let query = Msg::new(7, 0x0100, 1, 0).question("x.org", 1).bytes;
        assert!(doh_answer(200, &dns, &query).is_none());
        assert!(doh_answer(200, &dns, b"\x12").is_none());
        assert!(doh_answer(200, &[], &answer).is_none());
    }

    #[test]
    fn doh_queries_are_posted_dns_queries_or_a_gets_dns_parameter() {
        use base64::Engine;
        let b64 = |m: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(m);
        let query = Msg::new(7, 0x0100, 1, 0)
            .question("app-measurement.com", 1)
            .bytes;
        let typed = vec![Header::new("content-type", &b"application/dns-message"[..])];
        let names = Some(vec!["app-measurement.com".to_string()]);
        assert_eq!(doh_query("POST", "/dns-query", &typed, &query), names);
        assert_eq!(
            doh_query("POST", "/dns-query", &[], &query),
            None,
            "untyped"
        );
        assert_eq!(
            doh_query("POST", "/dns-query", &typed, b"\x12"),
            None,
            "not DNS"
        );
        let answer = cdn_response();
        assert_eq!(
            doh_query("POST", "/dns-query", &typed, &answer),
            None,
            "an answer"
        );
        let get = format!("/dns-query?ct=x&dns={}", b64(&query));
        assert_eq!(doh_query("GET", &get, &[], &[]), names);
        assert_eq!(doh_query("GET", "/dns-query?dns=!!", &[], &[]), None);
        assert_eq!(doh_query("GET", "/dns-query?xdns=AAAB", &[], &[]), None);
        assert_eq!(doh_query("GET", "/dns-query", &[], &[]), None);
        assert_eq!(doh_query("PUT", &get, &typed, &query), None);
        // Every name of a query with several (rare, but the format allows it).
        let two = Msg::new(0, 0x0100, 2, 0)
            .question("a.example", 1)
            .question("b.example", 28)
            .bytes;
        assert_eq!(
            doh_query("POST", "/dns-query", &typed, &two),
            Some(vec!["a.example".to_string(), "b.example".to_string()])
        );
    }

    #[test]
    fn doh_get_queries_by_their_dns_parameter() {
        use base64::Engine;
        let b64 = |m: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(m);
        let query = Msg::new(0, 0x0100, 1, 0)
            .question("0eaed834.b.example.net", 1)
            .bytes;
        assert_eq!(
            doh_query_names(b64(&query).as_bytes()).as_deref(),
            Some("0eaed834.b.example.net")
        );
        // Padded too; not a response, junk, or more than a query can be.
        let padded = base64::engine::general_purpose::URL_SAFE.encode(&query);
        assert!(doh_query_names(padded.as_bytes()).is_some());
        assert_eq!(doh_query_names(b64(&cdn_response()).as_bytes()), None);
        assert_eq!(doh_query_names(b"not base64!"), None);
        assert_eq!(doh_query_names(b64(b"\x01\x02\x03").as_bytes()), None);
        assert_eq!(doh_query_names(&vec![b'A'; 5000]), None);
    }

    /// `messages` each behind its 2-byte length prefix.
    fn tcp_stream(messages: &[&[u8]]) -> Vec<u8> {
        let mut stream = Vec::new();
        for m in messages {
            stream.extend_from_slice(&(m.len() as u16).to_be_bytes());
            stream.extend_from_slice(m);
        }
        stream
    }

    #[test]
    fn tcp_framer_passes_over_what_the_budget_cannot_hold() {
        let big = vec![7u8; 5000];
        let small = Msg::new(7, 0x0100, 1, 0).question("x.org", 1).bytes;
        let stream = tcp_stream(&[&big, &small]);
        // Room for the small message, not the big one: the big one, arriving in
        // pieces, is passed over by its length and the small one still found.
        let budget = MessageBudget::new(2048);
        let mut f = DnsTcpFramer::new().with_budget(&budget);
        let mut out = Vec::new();
        for piece in stream.chunks(700) {
            f.push(piece, &mut out);
            assert!(budget.held() <= 2048, "{}", budget.held());
        }
        assert_eq!(out, vec![small.clone()]);
        assert_eq!(f.skipped(), 1);
        // With room, both; the big message's buffer is given back once handed out.
        let budget = MessageBudget::new(1 << 20);
        let mut f = DnsTcpFramer::new().with_budget(&budget);
        let mut out = Vec::new();
        f.push(&stream[..3000], &mut out);
        assert!(budget.held() >= 5002, "{}", budget.held());
        f.push(&stream[3000..], &mut out);
        assert_eq!(out, vec![big, small]);
        assert_eq!((f.skipped(), budget.held()), (0, 0));
        drop(f);
        assert_eq!(budget.held(), 0);
    }

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_micros(s * 1_000_000)
    }

    #[test]
    fn map_follows_cname_to_question() {
        let mut map = DnsMap::new();
        let m = parse(&cdn_response()).unwrap();
        map.insert_answers(&m, ts(100));
        let a: IpAddr = "93.184.216.34".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(map.lookup(a, ts(100)), Some("www.example.com"));
        assert_eq!(map.lookup(v6, ts(200)), Some("www.example.com"));
        assert_eq!(map.lookup(a, ts(99)), None, "not before the answer");
        let e = map.lookup_entry(a, ts(101)).unwrap();
        let chain: Vec<&str> = e.chain.iter().map(|s| &**s).collect();
        assert_eq!(chain, ["www.example.com", "www.cdn.net.example.com"]);
        // Queries and errors change nothing.
        let q = parse(&Msg::new(2, 0x0100, 1, 0).question("x.org", 1).bytes).unwrap();
        map.insert_answers(&q, ts(1));
        assert_eq!(map.len(), 3);
    }

    fn answer(q: &str, ip: [u8; 4], ttl: u32) -> DnsMessage {
        parse(
            &Msg::new(1, 0x8180, 1, 1)
                .question(q, 1)
                .answer_raw(&[0xc0, 12], TYPE_A, ttl, &ip)
                .bytes,
        )
        .unwrap()
    }

    #[test]
    fn root_name_answers_name_nothing() {
        // Found by the `tls_tap` fuzz target: an exchange's host came out empty.
        let mut map = DnsMap::new();
        let root = parse(
            &Msg::new(1, 0x8180, 0, 1)
                .answer_raw(&[0], TYPE_A, 60, &[10, 0, 0, 9])
                .bytes,
        )
        .unwrap();
        assert_eq!(root.answers[0].name, "");
        map.insert_answers(&root, ts(1));
        assert_eq!(map.lookup("10.0.0.9".parse().unwrap(), ts(2)), None);
        assert!(map.is_empty());
    }

    #[test]
    fn map_is_time_aware_and_prefers_fresh() {
        let mut map = DnsMap::new();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        map.insert_answers(&answer("a.com", [10, 0, 0, 1], 86_400), ts(0));
        map.insert_answers(&answer("b.com", [10, 0, 0, 1], 10), ts(100));
        assert_eq!(map.lookup(ip, ts(50)), Some("a.com"));
        assert_eq!(map.lookup(ip, ts(150)), Some("b.com"));
        // b.com's TTL + 1 h grace is over at 3 711 s; a.com is still fresh.
        assert_eq!(map.lookup(ip, ts(3_711)), Some("a.com"));
        // A fresh answer for b.com again wins.
        map.insert_answers(&answer("b.com", [10, 0, 0, 1], 10), ts(5_000));
        assert_eq!(map.lookup(ip, ts(5_001)), Some("b.com"));
        // Both stale: the most recently answered.
        assert_eq!(map.lookup(ip, ts(10_000_000)), Some("b.com"));
    }

    /// An ECHConfig: `id`, DHKEM(X25519) with a 32-byte key, one suite, `public`.
    fn ech_config(id: u8, public: &str) -> Vec<u8> {
        let mut c = vec![id, 0, 0x20, 0, 32];
        c.extend_from_slice(&[0x42; 32]);
        c.extend_from_slice(&[0, 4, 0, 1, 0, 1, 0, public.len() as u8]);
        c.extend_from_slice(public.as_bytes());
        c.extend_from_slice(&[0, 0]);
        let mut out = vec![0xfe, 0x0d];
        out.extend_from_slice(&(c.len() as u16).to_be_bytes());
        out.extend(c);
        out
    }

    /// HTTPS record data: priority 1, target ".", an ipv4hint and an `ech` list of
    /// `configs` (with an unknown ECHConfig version first, which is skipped).
    fn https_rdata(hint: [u8; 4], configs: &[Vec<u8>]) -> Vec<u8> {
        let mut list = vec![0xfe, 0x0c, 0, 1, 0xff];
        for c in configs {
            list.extend_from_slice(c);
        }
        let mut ech = (list.len() as u16).to_be_bytes().to_vec();
        ech.extend(list);
        let mut r = vec![0, 1, 0];
        for (key, value) in [(1u16, b"\x02h2".to_vec()), (4, hint.to_vec()), (5, ech)] {
            r.extend_from_slice(&key.to_be_bytes());
            r.extend_from_slice(&(value.len() as u16).to_be_bytes());
            r.extend(value);
        }
        r
    }

    fn https_answer(owner: &str, hint: [u8; 4], configs: &[Vec<u8>]) -> DnsMessage {
        let m = Msg::new(7, 0x8180, 1, 1)
            .question(owner, TYPE_HTTPS)
            .answer_raw(&[0xc0, 12], TYPE_HTTPS, 300, &https_rdata(hint, configs));
        parse(&m.bytes).unwrap()
    }

    #[test]
    fn https_records_give_hints_and_ech_configs() {
        let msg = https_answer(
            "Tracker.Example",
            [198, 51, 100, 80],
            &[
                ech_config(0x2a, "ECH.cdn.example"),
                ech_config(7, "other.example"),
            ],
        );
        let RecordData::Svcb(svcb) = &msg.answers[0].data else {
            panic!("{:?}", msg.answers)
        };
        assert_eq!((svcb.priority, svcb.target.as_str()), (1, ""));
        assert_eq!(svcb.hints, ["198.51.100.80".parse::<IpAddr>().unwrap()]);
        let fronts: Vec<(u8, &str)> = svcb
            .ech
            .iter()
            .map(|f| (f.config_id, f.public_name.as_str()))
            .collect();
        assert_eq!(fronts, [(0x2a, "ech.cdn.example"), (7, "other.example")]);

        // Record data that cannot be read is skipped; the message's other answers count.
        let good = https_rdata([1, 2, 3, 4], &[ech_config(1, "p.example")]);
        for bad in [
            good[..good.len() - 3].to_vec(),
            // An ipv6hint whose length is no multiple of 16.
            [&good[..], &[0, 6, 0, 3, 1, 2, 3]].concat(),
            [&good[..], &[0, 9, 0, 5]].concat(),
            // Keys out of order (RFC 9460 §2.2): the ipv4hint again after ech.
            [&good[..], &[0, 4, 0, 4, 9, 9, 9, 9]].concat(),
        ] {
            let m = Msg::new(7, 0x8180, 1, 2)
                .question("t.example", TYPE_HTTPS)
                .answer_raw(&[0xc0, 12], TYPE_HTTPS, 300, &bad)
                .answer_raw(&[0xc0, 12], TYPE_A, 300, &[10, 0, 0, 1]);
            let msg = parse(&m.bytes).unwrap();
            assert_eq!(msg.skipped_answers, 1, "{bad:?}");
            assert_eq!(msg.answers.len(), 1);
        }
    }

    #[test]
    fn ech_names_need_the_config_the_public_name_and_the_address() {
        let mut map = DnsMap::new();
        let ip: IpAddr = "198.51.100.80".parse().unwrap();
        let front = |id| ech_config(id, "ech.cdn.example");
        map.insert_answers(
            &https_answer("tracker.example", [198, 51, 100, 80], &[front(0x2a)]),
            ts(10),
        );
        // Same address and config id, another public name: not what a ClientHello
        // showing ech.cdn.example was meant for, though answered last.
        map.insert_answers(
            &https_answer(
                "decoy.example",
                [198, 51, 100, 80],
                &[ech_config(0x2a, "other.example")],
            ),
            ts(20),
        );
        map.insert_answers(
            &https_answer("far.example", [203, 0, 113, 9], &[front(0x2b)]),
            ts(20),
        );
        assert_eq!(
            map.lookup(ip, ts(30)),
            Some("decoy.example"),
            "hints map addresses"
        );
        assert_eq!(
            map.ech_name(ip, "ech.cdn.example", 0x2a, ts(30)),
            Some("tracker.example")
        );
        assert_eq!(
            map.ech_name(ip, "ech.cdn.example", 0x2a, ts(5)),
            None,
            "not answered yet"
        );
        assert_eq!(
            map.ech_name(ip, "other.example", 0x2a, ts(30)),
            Some("decoy.example")
        );
        // A config id no answer gave (a GREASE offer), or a name of another address.
        assert_eq!(map.ech_name(ip, "ech.cdn.example", 0x99, ts(30)), None);
        assert_eq!(map.ech_name(ip, "ech.cdn.example", 0x2b, ts(30)), None);

        // Bounded per config id: the first answered goes first.
        for i in 0..MAX_ECH_NAMES {
            let owner = format!("n{i}.example");
            map.insert_answers(&https_answer(&owner, [10, 0, 0, 1], &[front(0x2a)]), ts(40));
        }
        assert_eq!(map.ech.get(&0x2a).map(Vec::len), Some(MAX_ECH_NAMES));
        assert_eq!(map.ech_name(ip, "ech.cdn.example", 0x2a, ts(50)), None);
    }

    #[test]
    fn map_is_bounded() {
        let mut map = DnsMap::with_limits(DnsMapLimits {
            max_entries: 10,
            max_names_per_addr: 2,
            ..DnsMapLimits::default()
        });
        for i in 0..100u8 {
            map.insert_answers(
                &answer(&format!("h{i}.com"), [10, 0, 0, i], 60),
                ts(i64::from(i)),
            );
        }
        assert_eq!(map.len(), 10);
        assert_eq!(
            map.lookup("10.0.0.99".parse().unwrap(), ts(1000)),
            Some("h99.com")
        );
        assert_eq!(map.lookup("10.0.0.1".parse().unwrap(), ts(1000)), None);
        for i in 0..5u8 {
            map.insert_answers(
                &answer(&format!("n{i}.com"), [10, 0, 0, 99], 60),
                ts(200 + i64::from(i)),
            );
        }
        assert_eq!(
            map.by_addr[&"10.0.0.99".parse::<IpAddr>().unwrap()].len(),
            2
        );
        assert_eq!(
            map.lookup("10.0.0.99".parse().unwrap(), ts(1000)),
            Some("n4.com")
        );
        assert!(map.len() <= 10);
    }

    proptest! {
        #[test]
        fn parse_never_panics(data in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse(&data);
        }

        /// Mutated real messages still parse or fail cleanly, and the map accepts them.
        #[test]
        fn mutated_messages(flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
            let mut m = cdn_response();
            for (i, b) in flips {
                let at = i.index(m.len());
                m[at] = b;
            }
            if let Ok(msg) = parse(&m) {
                let mut map = DnsMap::new();
                map.insert_answers(&msg, ts(1));
            }
        }
    }
}
