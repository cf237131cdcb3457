//! DNS lookups over HTTP APIs that carry no DNS messages: the JSON API of public
//! resolvers (Google's `/resolve?name=`, Cloudflare's and others' `application/dns-json`)
//! and the HTTPDNS services mobile SDKs resolve through to get past the network's
//! resolver (Alibaba Cloud's `/{account}/d?host=` and `/resolve?host=a,b`, Tencent
//! DNSPod's and JD Cloud's `/d?dn=`, Baidu Cloud's `/v3/resolve?dn=`). Their answers
//! name later connections to the addresses they gave, as a DNS answer over UDP does
//! ([`DnsMap`]); their names, like a DNS-over-HTTPS query's, reach the name servers
//! of their domains.
//!
//! The names are read from the request's query, or from the form it posts
//! ([`names_query`]). A request is only taken for a lookup when its answer reads as
//! one, whole: a JSON object of one of the shapes below, or DNSPod's text of
//! addresses. `?name=` and `?host=` are common parameters of ordinary APIs; an
//! ordinary answer does not parse as a list of addresses for that name, so it is
//! never mistaken for one.
//!
//! - JSON API: `{"Status": 0, "Question": [{"name": …}], "Answer": [{"name", "type",
//!   "TTL", "data"}]}`; A (1), AAAA (28) and CNAME (5) records are read, others
//!   skipped. The question is the `Question`'s first name, else the request's `name`.
//! - HTTPDNS JSON: `{"host", "ips", "ipsv6", "ttl"}`, or a batch of such objects
//!   under `dns` or `results`; Alibaba Cloud's newer form, `{"code": "success",
//!   "data": {"answers": [{"dn", "v4": {"ips", "ttl"}, "v6": {"ips", "ttl"}}]}}`
//!   (with `mode` other than 0 its `data` is encrypted: no lookup).
//! - Baidu Cloud's HTTPDNS JSON (`/v3/resolve?dn=`): `{"msg": "ok", "data": {NAME:
//!   {"ip": […], "ipv6": […], "ttl": …}}}`, one member per name asked.
//! - A JSON API's short form (`/resolve?name=…&short=1`): a JSON array of addresses.
//! - DNSPod text, for a request with `dn`: one line per name, each `[name:]addresses
//!   [,ttl]`, addresses separated by `;` (`0` for a failed half). An unprefixed line
//!   answers the request's only name.
//!
//! Hostile input: answers over [`MAX_ANSWER_BYTES`] (after content decoding) are not
//! read, at most [`MAX_NAMES`] names and [`MAX_ADDRESSES`] addresses each are taken,
//! and every name must be a DNS name (letters, digits, `-` and `_` in labels of at most
//! 63 bytes, 253 bytes in all); one value that is none of what its place expects makes
//! the whole answer no lookup.
//!
//! [`DnsMap`]: crate::net::dns::DnsMap

use std::borrow::Cow;
use std::net::IpAddr;

use serde_json::Value;

use crate::decode::content::{self, Coding, Decoded};
use crate::exchange::{header, header_list, Header};
use crate::net::dns::{DnsMessage, Question, Record, RecordData};

/// Longest answer read (after content decoding): a lookup's answer is a few hundred
/// bytes, a batch of [`MAX_NAMES`] a few KiB.
pub const MAX_ANSWER_BYTES: usize = 64 << 10;
/// Most names one request asks for, or one answer answers, that are taken.
pub const MAX_NAMES: usize = 16;
/// Most addresses taken for one name.
pub const MAX_ADDRESSES: usize = 32;
/// Most records of a JSON API answer read.
const MAX_RECORDS: usize = 64;

/// The JSON API's record types we read.
const TYPE_A: u64 = 1;
const TYPE_CNAME: u64 = 5;
const TYPE_AAAA: u64 = 28;

/// A lookup over an HTTP API: the names the request asked for, and one DNS response
/// per name answered, as [`DnsMap::insert_answers`](crate::net::dns::DnsMap::insert_answers)
/// reads them (no TTL given: 0, the answer stale at once but still used).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpLookup {
    /// The names the request's query asked for, lower-cased, without the final dot.
    pub asked: Vec<String>,
    pub answers: Vec<DnsMessage>,
}

/// Longest form body read for a lookup's names (a lookup posts a few names and an
/// account id; a longer form is some other request's).
const MAX_FORM_BYTES: usize = 4 << 10;

/// Whether `target`'s query has a parameter an HTTP DNS API takes the name in
/// (`name`, `host` or `dn`): the only requests whose answer [`lookup`] reads, so a
/// parser can keep just those answers' bodies. A request that posts its names in a
/// form is known once its body is: [`names_query`].
pub fn may_ask_names(target: &str) -> bool {
    target
        .split_once('?')
        .is_some_and(|(_, q)| has_name_param(q))
}

/// The query a request names its lookup in: its target's, or else the form it
/// sends (`application/x-www-form-urlencoded`, at most 4 KiB: Tencent's HTTPDNS, for
/// one, takes `POST /d` with `dn=` in the body). `None` when neither has a parameter
/// an HTTP DNS API takes a name in.
pub fn names_query<'a>(target: &'a str, headers: &[Header], body: &'a [u8]) -> Option<&'a str> {
    match target.split_once('?') {
        Some((_, query)) if has_name_param(query) => Some(query),
        _ => form_names_query(headers, body),
    }
}

/// The form a request with `headers` posts in `body`, when it has a parameter an HTTP
/// DNS API takes a name in (the half of [`names_query`] a parser that saw the target
/// already needs).
pub fn form_names_query<'a>(headers: &[Header], body: &'a [u8]) -> Option<&'a str> {
    // The body first: most requests have none, and the fields are a scan.
    if body.is_empty() || body.len() > MAX_FORM_BYTES {
        return None;
    }
    let form = header(headers, "content-type").is_some_and(|v| {
        let essence = v.split(|&b| b == b';').next().unwrap_or_default();
        essence
            .trim_ascii()
            .eq_ignore_ascii_case(b"application/x-www-form-urlencoded")
    });
    if !form {
        return None;
    }
    let query = std::str::from_utf8(body).ok()?.trim_ascii_end();
    has_name_param(query).then_some(query)
}

/// [`lookup`] of a request with its header fields and body (as sent): its names
/// read from the query [`names_query`] finds, its target's or its form's.
pub fn lookup_request(
    target: &str,
    request_headers: &[Header],
    request_body: &[u8],
    status: u16,
    headers: &[Header],
    body: &[u8],
) -> Option<HttpLookup> {
    // The answer's cheap tests first: this runs on every exchange of a proxy or a
    // HAR file, and finding the request's query may scan its fields.
    if status != 200 || body.is_empty() {
        return None;
    }
    let query = names_query(target, request_headers, request_body)?;
    lookup_query(query, status, headers, body)
}

/// The lookup `target`'s request and its answer (`status`, `headers`, `body`, as
/// sent: content codings are undone here) make; `None` unless the request names a
/// lookup and the answer reads as one (see the module doc).
pub fn lookup(target: &str, status: u16, headers: &[Header], body: &[u8]) -> Option<HttpLookup> {
    let (_, query) = target.split_once('?')?;
    lookup_query(query, status, headers, body)
}

/// [`lookup`] with the names read from `query` (`a=b&c=d`).
fn lookup_query(query: &str, status: u16, headers: &[Header], body: &[u8]) -> Option<HttpLookup> {
    if status != 200 || body.is_empty() {
        return None;
    }
    let params = QueryNames::of(query)?;
    let body = match header_list(headers, "content-encoding") {
        None => Cow::Borrowed(body),
        Some(list) => undo_codings(&list, body)?,
    };
    if body.len() > MAX_ANSWER_BYTES {
        return None;
    }
    let body = &*body;
    let answers = match body.trim_ascii_start().first() {
        Some(b'{') => json_answers(body, &params)?,
        Some(b'[') => vec![short_json_api_answer(body, &params)?],
        Some(_) if !params.dn.is_empty() => text_answers(body, &params.dn)?,
        _ => return None,
    };
    Some(HttpLookup {
        asked: params.asked(),
        answers,
    })
}

/// Codings an answer may name (`gzip`, `gzip, br`). A lookup's answer is a few hundred
/// bytes; the bound keeps a long list from decoding the same bytes over and over (a
/// gzip quine decodes to itself), each time up to [`MAX_ANSWER_BYTES`].
const MAX_ANSWER_CODINGS: usize = 2;

/// `body` with the content codings of `list` (every `Content-Encoding` line's, joined)
/// undone, the last applied first, each within [`MAX_ANSWER_BYTES`]; `None` when a
/// coding is unknown, a stream is cut or corrupt, the answer is larger, or there are
/// more than [`MAX_ANSWER_CODINGS`]. A coding whose bytes are not in it ends the
/// decoding there, as the analysis's does.
fn undo_codings<'b>(list: &[u8], body: &'b [u8]) -> Option<Cow<'b, [u8]>> {
    let list = std::str::from_utf8(list).ok()?;
    let mut codings = Vec::new();
    for token in list.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if let Some(coding) = Coding::parse(token).ok()? {
            codings.push(coding);
        }
    }
    if codings.len() > MAX_ANSWER_CODINGS {
        return None;
    }
    let mut body = Cow::Borrowed(body);
    for coding in codings.into_iter().rev() {
        match content::decode(coding, &body, MAX_ANSWER_BYTES + 1) {
            Decoded::Passthrough => break,
            Decoded::Complete(out) => body = Cow::Owned(out),
            Decoded::Limited(_)
            | Decoded::Cut(_)
            | Decoded::Starved { .. }
            | Decoded::Failed { .. } => return None,
        }
    }
    Some(body)
}

/// The names a request's query asks for, by the parameter that carried them.
#[derive(Debug, Default)]
struct QueryNames {
    /// `name` (the JSON API): one name.
    name: Option<String>,
    /// `host` (HTTPDNS JSON): names separated by commas.
    host: Vec<String>,
    /// `dn` (DNSPod text): names separated by commas.
    dn: Vec<String>,
}

impl QueryNames {
    /// `None` when no parameter names a DNS name.
    fn of(query: &str) -> Option<QueryNames> {
        let mut names = QueryNames::default();
        for pair in query.split('&') {
            let Some((key, value)) = name_param(pair) else {
                continue;
            };
            let Ok(value) = percent_encoding::percent_decode_str(value).decode_utf8() else {
                continue;
            };
            let list = value
                .split(',')
                .take(MAX_NAMES)
                .map(dns_name)
                .collect::<Option<Vec<_>>>();
            match (key, list) {
                ("name", Some(mut l)) if l.len() == 1 => names.name = l.pop(),
                ("host", Some(l)) => names.host = l,
                ("dn", Some(l)) => names.dn = l,
                _ => {}
            }
        }
        let any = names.name.is_some() || !names.host.is_empty() || !names.dn.is_empty();
        any.then_some(names)
    }

    /// Whether `name` (as [`dns_name`] gives it) is one of the names asked for.
    fn asks(&self, name: &str) -> bool {
        self.name.as_deref() == Some(name) || self.host.iter().chain(&self.dn).any(|n| n == name)
    }

    fn asked(self) -> Vec<String> {
        let mut all: Vec<String> = Vec::new();
        for n in self.name.into_iter().chain(self.host).chain(self.dn) {
            if all.len() < MAX_NAMES && !all.contains(&n) {
                all.push(n);
            }
        }
        all
    }
}

/// Whether the query `query` has a parameter a DNS API takes a name in.
fn has_name_param(query: &str) -> bool {
    query.split('&').any(|p| name_param(p).is_some())
}

/// `pair`'s key and value when the key is one a DNS API takes a name in.
fn name_param(pair: &str) -> Option<(&str, &str)> {
    let (key, value) = pair.split_once('=')?;
    matches!(key, "name" | "host" | "dn").then_some((key, value))
}

/// `raw` as a DNS name (lower-cased, the final dot dropped), `None` when it is none.
fn dns_name(raw: &str) -> Option<String> {
    let name = raw.trim();
    let name = name.strip_suffix('.').unwrap_or(name);
    crate::net::dns::is_host_name_text(name).then(|| name.to_ascii_lowercase())
}

/// A DNS response answering `name` with `records`.
fn response(name: String, qtype: u16, answers: Vec<Record>) -> DnsMessage {
    DnsMessage {
        id: 0,
        response: true,
        opcode: 0,
        truncated: false,
        rcode: 0,
        questions: vec![Question {
            name,
            qtype,
            qclass: 1,
        }],
        answers,
        skipped_answers: 0,
    }
}

/// `ttl` seconds as a record's TTL: absent or `null` 0, a larger number than a TTL
/// holds the largest; `None` when it is no non-negative integer.
fn ttl_of(v: Option<&Value>) -> Option<u32> {
    match v {
        None | Some(Value::Null) => Some(0),
        Some(v) => Some(u32::try_from(v.as_u64()?).unwrap_or(u32::MAX)),
    }
}

fn json_answers(body: &[u8], params: &QueryNames) -> Option<Vec<DnsMessage>> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let object = value.as_object()?;
    if object.contains_key("Answer") || object.contains_key("Status") {
        return json_api_answer(object, params).map(|m| vec![m]);
    }
    if let Some(data) = object.get("data") {
        return if data.get("answers").is_some() {
            answers_by_dn(object, data)
        } else {
            answers_keyed_by_name(object, data, params)
        };
    }
    let batch = object.get("dns").or_else(|| object.get("results"));
    match batch {
        Some(list) => {
            let list = list.as_array()?;
            if list.is_empty() || list.len() > MAX_NAMES * 2 {
                return None;
            }
            list.iter().map(httpdns_answer).collect()
        }
        None => Some(vec![httpdns_answer(&value)?]),
    }
}

/// A JSON API answer (Google's format, which Cloudflare and other resolvers follow).
fn json_api_answer(
    object: &serde_json::Map<String, Value>,
    params: &QueryNames,
) -> Option<DnsMessage> {
    if object.get("Status").and_then(Value::as_u64) != Some(0) {
        return None;
    }
    let question = match object.get("Question") {
        Some(q) => q
            .as_array()?
            .first()?
            .get("name")?
            .as_str()
            .and_then(dns_name)?,
        None => params.name.clone()?,
    };
    let records = match object.get("Answer") {
        None => &[][..],
        Some(list) => list.as_array()?,
    };
    if records.len() > MAX_RECORDS {
        return None;
    }
    let mut answers = Vec::new();
    for r in records {
        let owner = dns_name(r.get("name")?.as_str()?)?;
        let ttl = ttl_of(r.get("TTL"))?;
        let data = r.get("data")?.as_str()?;
        let data = match r.get("type")?.as_u64()? {
            TYPE_A => match data.trim().parse().ok()? {
                IpAddr::V4(a) => RecordData::A(a),
                IpAddr::V6(_) => return None,
            },
            TYPE_AAAA => match data.trim().parse().ok()? {
                IpAddr::V6(a) => RecordData::Aaaa(a),
                IpAddr::V4(_) => return None,
            },
            TYPE_CNAME => RecordData::Cname(dns_name(data)?),
            _ => continue,
        };
        answers.push(Record {
            name: owner,
            ttl,
            data,
        });
    }
    Some(response(question, 1, answers))
}

/// One HTTPDNS JSON answer: `host` with its `ips` and `ipsv6`.
fn httpdns_answer(v: &Value) -> Option<DnsMessage> {
    let object = v.as_object()?;
    let host = dns_name(object.get("host")?.as_str()?)?;
    let ttl = ttl_of(object.get("ttl"))?;
    let mut answers = Vec::new();
    let mut any_list = false;
    for key in ["ips", "ipsv6"] {
        let Some(list) = object.get(key) else {
            continue;
        };
        any_list = true;
        push_addresses(&mut answers, &host, ttl, list)?;
    }
    any_list.then(|| response(host, 1, answers))
}

/// `name`'s records for the JSON array of address strings `list` (at most
/// [`MAX_ADDRESSES`]); `None` when it is anything else.
fn push_addresses(out: &mut Vec<Record>, name: &str, ttl: u32, list: &Value) -> Option<()> {
    let list = list.as_array()?;
    if list.len() > MAX_ADDRESSES {
        return None;
    }
    for a in list {
        out.push(Record {
            name: name.to_string(),
            ttl,
            data: address_record(a.as_str()?.trim().parse().ok()?),
        });
    }
    Some(())
}

/// Alibaba Cloud's newer answer: `data.answers`, each a `dn` with `v4` and `v6`
/// address lists. Only a plain one (`mode` 0 or absent) of a successful lookup.
fn answers_by_dn(object: &serde_json::Map<String, Value>, data: &Value) -> Option<Vec<DnsMessage>> {
    let plain = object.get("mode").is_none_or(|m| m.as_u64() == Some(0));
    let success = object
        .get("code")
        .is_none_or(|c| c.as_str() == Some("success"));
    if !plain || !success {
        return None;
    }
    let list = data.get("answers")?.as_array()?;
    if list.is_empty() || list.len() > MAX_NAMES * 2 {
        return None;
    }
    let mut out = Vec::new();
    for a in list {
        let name = dns_name(a.get("dn")?.as_str()?)?;
        let mut answers = Vec::new();
        for family in ["v4", "v6"] {
            let Some(f) = a.get(family) else {
                continue;
            };
            let ttl = ttl_of(f.get("ttl"))?;
            // No addresses (`no_ip_code`): none for this family.
            if let Some(ips) = f.get("ips") {
                push_addresses(&mut answers, &name, ttl, ips)?;
            }
        }
        out.push(response(name, 1, answers));
    }
    Some(out)
}

/// Baidu Cloud's answer: `data` an object keyed by the names asked, each with its `ip`
/// and `ipv6` address lists and `ttl`. Only a successful lookup's (`msg` `ok` or
/// absent), and only when every key is a name of two labels or more the request
/// asked for and every value of that shape.
fn answers_keyed_by_name(
    object: &serde_json::Map<String, Value>,
    data: &Value,
    params: &QueryNames,
) -> Option<Vec<DnsMessage>> {
    if object.get("msg").is_some_and(|m| m.as_str() != Some("ok")) {
        return None;
    }
    let by_name = data.as_object()?;
    if by_name.is_empty() || by_name.len() > MAX_NAMES * 2 {
        return None;
    }
    let mut out = Vec::new();
    for (name, answer) in by_name {
        // A name of one label is more likely an ordinary API's key (`?name=alice`).
        let name = dns_name(name).filter(|n| n.contains('.') && params.asks(n))?;
        let answer = answer.as_object()?;
        let ttl = ttl_of(answer.get("ttl"))?;
        let mut records = Vec::new();
        let mut any_list = false;
        for key in ["ip", "ipv6"] {
            if let Some(list) = answer.get(key) {
                any_list = true;
                push_addresses(&mut records, &name, ttl, list)?;
            }
        }
        if !any_list {
            return None;
        }
        out.push(response(name, 1, records));
    }
    Some(out)
}

/// A JSON API's short answer (`short=1`, as Alibaba's public resolver gives it): a
/// JSON array of the request's `name`'s addresses, at least one; other record types
/// are not in it.
fn short_json_api_answer(body: &[u8], params: &QueryNames) -> Option<DnsMessage> {
    let name = params.name.clone()?;
    let list: Value = serde_json::from_slice(body).ok()?;
    if list.as_array()?.is_empty() {
        return None;
    }
    let mut records = Vec::new();
    push_addresses(&mut records, &name, 0, &list)?;
    Some(response(name, 1, records))
}

fn address_record(a: IpAddr) -> RecordData {
    match a {
        IpAddr::V4(a) => RecordData::A(a),
        IpAddr::V6(a) => RecordData::Aaaa(a),
    }
}

/// DNSPod's text answer to the names `dn` asked for.
fn text_answers(body: &[u8], dn: &[String]) -> Option<Vec<DnsMessage>> {
    let text = std::str::from_utf8(body).ok()?;
    let mut answers = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if answers.len() >= MAX_NAMES {
            break;
        }
        // `name.:addresses`. IPv6 addresses have colons too, but before their first
        // one no dot (`fd00::1`, `0;2001:db8::1`) or no name (`192.0.2.1;fd00::1`).
        let prefixed = line
            .split_once(':')
            .and_then(|(n, rest)| Some((dns_name(n).filter(|_| n.contains('.'))?, rest)));
        let (name, rest) = match prefixed {
            Some(p) => p,
            None if dn.len() == 1 => (dn.first()?.clone(), line),
            None => return None,
        };
        let (addresses, ttl) = match rest.rsplit_once(',') {
            Some((a, t)) => (a, t.trim().parse::<u32>().ok()?),
            None => (rest, 0),
        };
        let mut records = Vec::new();
        for token in addresses.split(';').map(str::trim) {
            if token == "0" || token.is_empty() {
                continue;
            }
            if records.len() >= MAX_ADDRESSES {
                return None;
            }
            records.push(Record {
                name: name.clone(),
                ttl,
                data: address_record(token.parse().ok()?),
            });
        }
        answers.push(response(name, 1, records));
    }
    (!answers.is_empty()).then_some(answers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::dns::DnsMap;
    use crate::timestamp::Timestamp;
    use proptest::prelude::*;

    fn addresses(l: &HttpLookup) -> Vec<(String, String)> {
        l.answers
            .iter()
            .flat_map(|m| &m.answers)
            .filter_map(|r| match &r.data {
                RecordData::A(a) => Some((r.name.clone(), a.to_string())),
                RecordData::Aaaa(a) => Some((r.name.clone(), a.to_string())),
                _ => None,
            })
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, a)| (n.to_string(), a.to_string()))
            .collect()
    }

    #[test]
    fn a_json_api_answer_with_a_cname_chain_names_the_address_by_the_question() {
        let body = br#"{"Status":0,"TC":false,"Question":[{"name":"Push.Example.net.","type":1}],
            "Answer":[{"name":"push.example.net.","type":5,"TTL":300,"data":"edge.cdn.example."},
                      {"name":"edge.cdn.example.","type":1,"TTL":60,"data":"198.51.100.7"},
                      {"name":"edge.cdn.example.","type":46,"TTL":60,"data":"a 13 2 60 x"}]}"#;
        let l = lookup("/resolve?name=push.example.net&type=A", 200, &[], body).unwrap();
        assert_eq!(l.asked, ["push.example.net"]);
        assert_eq!(
            addresses(&l),
            pairs(&[("edge.cdn.example", "198.51.100.7")])
        );
        let mut map = DnsMap::new();
        for m in &l.answers {
            map.insert_answers(m, Timestamp(1_000_000));
        }
        let addr = "198.51.100.7".parse().unwrap();
        assert_eq!(
            map.lookup(addr, Timestamp(2_000_000)),
            Some("push.example.net")
        );
    }

    #[test]
    fn a_gzipped_json_api_answer_is_read() {
        use std::io::Write;
        let body = br#"{"Status":0,"Answer":[{"name":"a.example","type":28,"TTL":5,"data":"2001:db8::5"}]}"#;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(body).unwrap();
        let gz = gz.finish().unwrap();
        let headers = [Header::new("content-encoding", "gzip")];
        let l = lookup("/dns-query?name=a.example", 200, &headers, &gz).unwrap();
        assert_eq!(addresses(&l), pairs(&[("a.example", "2001:db8::5")]));
        // A coding we cannot undo: no lookup.
        let odd = [Header::new("content-encoding", "compress")];
        assert_eq!(lookup("/dns-query?name=a.example", 200, &odd, &gz), None);
    }

    #[test]
    fn an_answer_in_two_codings_over_two_header_lines_is_read() {
        use std::io::Write;
        let body =
            br#"{"Status":0,"Answer":[{"name":"b.example","type":1,"TTL":5,"data":"192.0.2.44"}]}"#;
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        zlib.write_all(body).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&zlib.finish().unwrap()).unwrap();
        let sent = gz.finish().unwrap();
        let target = "/dns-query?name=b.example";
        // `deflate` applied first, then `gzip`: in one line or in two.
        let lines = [
            Header::new("content-encoding", "deflate"),
            Header::new("Content-Encoding", "gzip"),
        ];
        let l = lookup(target, 200, &lines, &sent).unwrap();
        assert_eq!(addresses(&l), pairs(&[("b.example", "192.0.2.44")]));
        let one_line = [Header::new("content-encoding", "deflate, gzip")];
        assert_eq!(lookup(target, 200, &one_line, &sent), Some(l));
        // Named in the wrong order, the gzip stream is not undone: no lookup.
        let swapped = [Header::new("content-encoding", "gzip, deflate")];
        assert_eq!(lookup(target, 200, &swapped, &sent), None);
        // A third coding is more than an answer is sent in, even one that would undo.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&sent).unwrap();
        let thrice = gz.finish().unwrap();
        let three = [Header::new(
            "content-encoding",
            "identity, deflate, gzip, gzip",
        )];
        assert_eq!(lookup(target, 200, &three, &thrice), None);
    }

    #[test]
    fn httpdns_json_answers_single_and_batch() {
        let single = br#"{"host":"api.tracker.example","ips":["203.0.113.9","203.0.113.10"],
            "ipsv6":["2001:db8::9"],"ttl":60,"origin_ttl":60,"client_ip":"192.0.2.1"}"#;
        let l = lookup(
            "/100000/d?host=api.tracker.example&query=4,6",
            200,
            &[],
            single,
        )
        .unwrap();
        assert_eq!(l.asked, ["api.tracker.example"]);
        assert_eq!(
            addresses(&l),
            pairs(&[
                ("api.tracker.example", "203.0.113.9"),
                ("api.tracker.example", "203.0.113.10"),
                ("api.tracker.example", "2001:db8::9"),
            ])
        );
        assert_eq!(l.answers[0].answers[0].ttl, 60);
        for key in ["dns", "results"] {
            let batch = format!(
                r#"{{"{key}":[{{"host":"a.example","ips":["192.0.2.10"],"type":1,"ttl":46}},
                    {{"host":"b.example","ips":["2001:db8::b"],"type":28,"ttl":46}}]}}"#
            );
            let l = lookup(
                "/1/resolve?host=a.example,b.example",
                200,
                &[],
                batch.as_bytes(),
            )
            .unwrap();
            assert_eq!(l.asked, ["a.example", "b.example"]);
            assert_eq!(
                addresses(&l),
                pairs(&[("a.example", "192.0.2.10"), ("b.example", "2001:db8::b")])
            );
        }
    }

    #[test]
    fn alibaba_clouds_newer_answers_by_dn() {
        let body = br#"{"code":"success","mode":0,"data":{"cip":"192.0.2.1","answers":[
            {"dn":"a.example","v4":{"ips":["192.0.2.20","192.0.2.21"],"ttl":60},
             "v6":{"ips":["2001:db8::20"],"ttl":30}},
            {"dn":"b.example","v4":{"ttl":60,"no_ip_code":"RRNotExist"}}]}}"#;
        let l = lookup("/100000/resolve?dn=a.example,b.example", 200, &[], body).unwrap();
        assert_eq!(l.asked, ["a.example", "b.example"]);
        assert_eq!(
            addresses(&l),
            pairs(&[
                ("a.example", "192.0.2.20"),
                ("a.example", "192.0.2.21"),
                ("a.example", "2001:db8::20"),
            ])
        );
        assert_eq!(l.answers.len(), 2);
        assert_eq!(l.answers[0].answers[2].ttl, 30);
        // Encrypted (`mode` 1), or a failure: no lookup.
        let sealed = br#"{"code":"success","mode":1,"data":"q83vEjRWeJA="}"#;
        assert_eq!(lookup("/1/resolve?dn=a.example", 200, &[], sealed), None);
        let failed = br#"{"code":"InvalidAccount","data":{"answers":[]}}"#;
        assert_eq!(lookup("/1/resolve?dn=a.example", 200, &[], failed), None);
        // An ordinary API's `data` is no lookup either.
        let ordinary = br#"{"code":"success","data":{"items":[1,2]}}"#;
        assert_eq!(lookup("/search?name=a.example", 200, &[], ordinary), None);
    }

    #[test]
    fn baidu_clouds_answers_keyed_by_name() {
        let body = br#"{"msg":"ok","data":{
            "a.example":{"ip":["192.0.2.30","192.0.2.31"],"ipv6":["2001:db8::30"],"ttl":300},
            "b.example":{"ip":[],"ttl":300}},"clientip":"192.0.2.1","timestamp":1700000000}"#;
        let target = "/v3/resolve?account_id=100000&dn=a.example,b.example&t=1700000300&sign=0f";
        let l = lookup(target, 200, &[], body).unwrap();
        assert_eq!(l.asked, ["a.example", "b.example"]);
        assert_eq!(
            addresses(&l),
            pairs(&[
                ("a.example", "192.0.2.30"),
                ("a.example", "192.0.2.31"),
                ("a.example", "2001:db8::30"),
            ])
        );
        assert_eq!(l.answers.len(), 2);
        assert_eq!(l.answers[0].answers[0].ttl, 300);
        // A failure, a name not asked for, an entry without addresses: no lookup.
        let failed = br#"{"msg":"AccountNotExists","data":{}}"#;
        assert_eq!(lookup(target, 200, &[], failed), None);
        let other = br#"{"msg":"ok","data":{"c.example":{"ip":["192.0.2.30"]}}}"#;
        assert_eq!(lookup(target, 200, &[], other), None);
        let no_list = br#"{"msg":"ok","data":{"a.example":{"ttl":300}}}"#;
        assert_eq!(lookup(target, 200, &[], no_list), None);
        // An ordinary API's `data` keyed by the parameter's value is no lookup either.
        let ordinary = br#"{"data":{"alice":{"ip":["192.0.2.1"],"last_seen":3}}}"#;
        assert_eq!(lookup("/users?name=alice", 200, &[], ordinary), None);
    }

    #[test]
    fn a_json_api_short_answer_is_its_names_addresses() {
        let l = lookup(
            "/resolve?name=a.example&type=1&short=1",
            200,
            &[],
            br#"["192.0.2.40","192.0.2.41"]"#,
        )
        .unwrap();
        assert_eq!(l.asked, ["a.example"]);
        assert_eq!(
            addresses(&l),
            pairs(&[("a.example", "192.0.2.40"), ("a.example", "192.0.2.41")])
        );
        // Nothing, other values, or no `name` asked: no lookup.
        for (target, body) in [
            ("/resolve?name=a.example&short=1", &b"[]"[..]),
            ("/resolve?name=a.example&short=1", br#"["alice","bob"]"#),
            ("/resolve?name=a.example&short=1", br#"[1,2]"#),
            ("/resolve?host=a.example&short=1", br#"["192.0.2.40"]"#),
        ] {
            assert_eq!(lookup(target, 200, &[], body), None, "{body:?}");
        }
    }

    #[test]
    fn dnspod_text_answers_single_with_ttl_and_batch() {
        let l = lookup(
            "/d?dn=www.example.com.&ttl=1",
            200,
            &[],
            b"192.0.2.1;192.0.2.2,120",
        )
        .unwrap();
        assert_eq!(l.asked, ["www.example.com"]);
        assert_eq!(
            addresses(&l),
            pairs(&[
                ("www.example.com", "192.0.2.1"),
                ("www.example.com", "192.0.2.2")
            ])
        );
        assert_eq!(l.answers[0].answers[0].ttl, 120);
        // IPv4 and IPv6 halves, `0` for a failed half.
        let l = lookup("/d?dn=v6.example&type=addrs", 200, &[], b"0;2001:db8::1").unwrap();
        assert_eq!(addresses(&l), pairs(&[("v6.example", "2001:db8::1")]));
        let batch = b"a.example.:192.0.2.1;192.0.2.3,60\nb.example.:198.51.100.1,60\n";
        let l = lookup("/d?dn=a.example,b.example&ttl=1", 200, &[], batch).unwrap();
        assert_eq!(
            addresses(&l),
            pairs(&[
                ("a.example", "192.0.2.1"),
                ("a.example", "192.0.2.3"),
                ("b.example", "198.51.100.1"),
            ])
        );
        // IPv6 addresses whose first group has letters, after an IPv4 one or alone.
        let l = lookup("/d?dn=v6.example", 200, &[], b"192.0.2.1;fd00::1").unwrap();
        assert_eq!(
            addresses(&l),
            pairs(&[("v6.example", "192.0.2.1"), ("v6.example", "fd00::1")])
        );
        let l = lookup(
            "/d?dn=a.example,b.example",
            200,
            &[],
            b"b.example.:fd00::b,5",
        )
        .unwrap();
        assert_eq!(addresses(&l), pairs(&[("b.example", "fd00::b")]));
        // An unprefixed line answers only a single name.
        assert_eq!(
            lookup("/d?dn=a.example,b.example", 200, &[], b"192.0.2.1"),
            None
        );
    }

    #[test]
    fn ordinary_api_answers_are_no_lookup() {
        // Common parameter names, answers that are no lookup.
        let cases: [(&str, &[u8]); 7] = [
            ("/api/user?name=alice", br#"{"name":"alice","age":3}"#),
            ("/api/user?name=alice", br#"{"Status":"ok"}"#),
            (
                "/login?host=example.com",
                br#"{"host":"example.com","ok":true}"#,
            ),
            (
                "/login?host=example.com",
                br#"{"host":"example.com","ips":"none"}"#,
            ),
            ("/d?dn=example.com", b"<html>not found</html>"),
            ("/d?dn=example.com", b"ok"),
            ("/q?dn=not%20a%20name", b"192.0.2.1"),
        ];
        for (target, body) in cases {
            assert_eq!(lookup(target, 200, &[], body), None, "{target}");
        }
        // Not a lookup without a name parameter, nor with an error status.
        let answer =
            br#"{"Status":0,"Answer":[{"name":"a.example","type":1,"TTL":5,"data":"192.0.2.1"}]}"#;
        assert_eq!(lookup("/resolve", 200, &[], answer), None);
        assert_eq!(lookup("/resolve?name=a.example", 404, &[], answer), None);
        // A JSON API error (NXDOMAIN) maps nothing.
        assert_eq!(
            lookup("/resolve?name=a.example", 200, &[], br#"{"Status":3}"#),
            None
        );
    }

    #[test]
    fn names_are_checked_and_bounded() {
        assert_eq!(dns_name("Example.COM."), Some("example.com".into()));
        assert_eq!(
            dns_name("_dns.resolver.arpa"),
            Some("_dns.resolver.arpa".into())
        );
        for bad in ["", ".", "a..b", "a b", "a/b", "ä.example", &"a".repeat(64)] {
            assert_eq!(dns_name(bad), None, "{bad:?}");
        }
        let long = ["a"; 127].join(".");
        assert_eq!(long.len(), 253);
        assert!(dns_name(&long).is_some());
        assert!(dns_name(&format!("{long}a")).is_none());
        // Too many addresses for one name: no lookup rather than a part of one.
        let many: Vec<String> = (0..=MAX_ADDRESSES)
            .map(|i| format!("192.0.2.{i}"))
            .collect();
        assert_eq!(
            lookup("/d?dn=a.example", 200, &[], many.join(";").as_bytes()),
            None
        );
        // Too long an answer.
        let mut big = br#"{"Status":0,"Answer":[]}"#.to_vec();
        big.resize(MAX_ANSWER_BYTES + 1, b' ');
        assert_eq!(lookup("/resolve?name=a.example", 200, &[], &big), None);
    }

    #[test]
    fn a_lookup_posted_as_a_form_is_read_from_its_body() {
        let form = [Header::new(
            "Content-Type",
            "application/x-www-form-urlencoded; charset=UTF-8",
        )];
        let body = b"dn=a.example&id=100000\r\n";
        assert_eq!(
            names_query("/d", &form, body),
            Some("dn=a.example&id=100000")
        );
        let l = lookup_request("/d", &form, body, 200, &[], b"192.0.2.50;192.0.2.51,60").unwrap();
        assert_eq!(l.asked, ["a.example"]);
        assert_eq!(
            addresses(&l),
            pairs(&[("a.example", "192.0.2.50"), ("a.example", "192.0.2.51")])
        );
        // The target's query comes first; a form of another type, a form without a
        // name parameter, or one too long names nothing.
        assert_eq!(
            names_query("/d?dn=b.example", &form, body),
            Some("dn=b.example")
        );
        let json = [Header::new("Content-Type", "application/json")];
        assert_eq!(names_query("/d", &json, body), None);
        assert_eq!(names_query("/d", &form, b"user=alice"), None);
        let long = format!("dn=a.example&pad={}", "x".repeat(MAX_FORM_BYTES));
        assert_eq!(names_query("/d", &form, long.as_bytes()), None);
        assert_eq!(
            lookup_request("/d", &[], body, 200, &[], b"192.0.2.50"),
            None
        );
    }

    #[test]
    fn may_ask_names_looks_at_the_query_only() {
        assert!(may_ask_names("/d?dn=a.example"));
        assert!(may_ask_names("/1/d?query=4&host=a.example"));
        assert!(may_ask_names("/resolve?type=A&name=a.example"));
        assert!(!may_ask_names("/name=a.example"));
        assert!(!may_ask_names("/search?q=host"));
        assert!(!may_ask_names("/search?hostname=a.example"));
    }

    proptest! {
        #[test]
        fn any_answer_is_read_without_panic(
            target in "/[a-z/]{0,8}\\?(name|host|dn)=[a-z0-9.,%]{0,40}(&[a-z]{1,4}=[0-9]{0,3})?",
            body in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            if let Some(l) = lookup(&target, 200, &[], &body) {
                prop_assert!(l.asked.len() <= MAX_NAMES);
                for m in &l.answers {
                    prop_assert!(m.answers.len() <= MAX_RECORDS.max(MAX_ADDRESSES * 2));
                }
            }
        }

        #[test]
        fn dnspod_text_of_any_addresses_maps_each(
            v4 in proptest::collection::vec(any::<std::net::Ipv4Addr>(), 1..8),
            ttl in any::<u32>(),
        ) {
            let text: Vec<String> = v4.iter().map(|a| a.to_string()).collect();
            let body = format!("{},{ttl}", text.join(";"));
            let l = lookup("/d?dn=n.example&ttl=1", 200, &[], body.as_bytes()).unwrap();
            let got: Vec<String> = addresses(&l).into_iter().map(|(_, a)| a).collect();
            prop_assert_eq!(got, text);
        }
    }
}
