//! Calls to consent-management platforms that record a user's decision (Cookiebot's
//! `logconsent.ashx`, Sourcepoint's `choice` calls, …), from the endpoint table in
//! `signatures/consent.toml`. Pure: [`CmpTable::read`] looks at one request (host,
//! method, path and the parts `decode` produced) and says what decision it records.
//! [`super::signals::extract_cmp`] turns a match into a [`super::signals::WireSignal`]
//! of kind `Cmp`, which [`super::wire::interpret`] turns into decisions like any
//! other signal.
//!
//! Policies:
//! - A field naming purposes overrides a field or fixed `decision` covering all
//!   purposes; among fields of the same reach, the later one wins.
//! - A call that matches but yields no decision records a decision whose contents we
//!   cannot read: it is reported (anomaly `cmp-decision-unread`), not guessed.
//! - Entries marked `confidence = "heuristic"`, or a heuristic field that changes a
//!   decision, make the interpretation heuristic, and findings based on it say so.
//! - Host and path patterns are matched with a linear-space wildcard matcher; paths
//!   longer than [`MAX_PATH_LEN`] are not matched.

use std::sync::OnceLock;

use serde::Deserialize;

use super::{Decision, Purpose};
use crate::decode::{json, Part};

/// The shipped endpoint table.
pub const EMBEDDED: &str = include_str!("../../signatures/consent.toml");

/// Longest URL path (without query) compared with the patterns.
pub const MAX_PATH_LEN: usize = 2048;

/// Longest field value compared with the table's values.
const MAX_VALUE_LEN: usize = 256;

/// How sure the table is of an entry or field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    Verified,
    Heuristic,
}

/// HTTP method an endpoint is called with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Post,
    Any,
}

/// A field a decision is read from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Read {
    /// `query:NAME`, `form:NAME`, `cookie:NAME`, `json:KEY`, `json:$.path`, `segment:N`.
    pub field: String,
    #[serde(default)]
    pub granted: Vec<String>,
    #[serde(default)]
    pub refused: Vec<String>,
    #[serde(default)]
    pub withdrawn: Vec<String>,
    /// Purposes the field decides; empty = all.
    #[serde(default)]
    pub purposes: Vec<Purpose>,
    pub confidence: Option<Confidence>,
}

/// One CMP endpoint of `signatures/consent.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    pub cmp: String,
    pub hosts: Vec<String>,
    pub path: String,
    pub method: Method,
    pub confidence: Confidence,
    /// Where the format was read (repository path or URL).
    pub source: String,
    /// The decision the call itself means, if any.
    pub decision: Option<Decision>,
    #[serde(default)]
    pub purposes: Vec<Purpose>,
    /// `FIELD=VALUE` conditions that must all hold.
    #[serde(default)]
    pub require: Vec<String>,
    #[serde(default)]
    pub read: Vec<Read>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    endpoint: Vec<Endpoint>,
}

/// What one CMP call says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmpReading {
    pub cmp: String,
    /// (decision, purposes) pairs; empty purposes mean all. Empty: a decision was
    /// recorded whose contents are unknown.
    pub decisions: Vec<(Decision, Vec<Purpose>)>,
    /// `action=decline, clm=false`: the values the decisions were read from.
    pub evidence: String,
    pub heuristic: bool,
}

/// The endpoint table.
#[derive(Debug, Clone)]
pub struct CmpTable {
    endpoints: Vec<Endpoint>,
}

impl CmpTable {
    /// Parses a table in the format of `signatures/consent.toml`.
    pub fn parse(text: &str) -> Result<CmpTable, toml::de::Error> {
        let file: File = toml::from_str(text)?;
        Ok(CmpTable {
            endpoints: file.endpoint,
        })
    }

    /// The shipped table, parsed once per process.
    pub fn embedded() -> &'static CmpTable {
        static TABLE: OnceLock<CmpTable> = OnceLock::new();
        TABLE.get_or_init(|| {
            // Invariant: the embedded file parses; `tests::embedded_table_is_clean`
            // parses and checks it on every test run.
            CmpTable::parse(EMBEDDED).expect("signatures/consent.toml parses")
        })
    }

    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// Problems in the table, one line each (empty when it is clean).
    pub fn check(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (i, e) in self.endpoints.iter().enumerate() {
            let at = format!("consent.toml endpoint {} ({})", i + 1, e.cmp);
            if e.cmp.trim().is_empty() {
                out.push(format!("{at}: empty cmp"));
            }
            if e.source.trim().is_empty() {
                out.push(format!("{at}: no source"));
            }
            if e.hosts.is_empty() {
                out.push(format!("{at}: no hosts"));
            }
            for h in &e.hosts {
                let ok = !h.is_empty()
                    && h.contains('.')
                    && h.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.*".contains(&b)
                    });
                if !ok {
                    out.push(format!("{at}: bad host pattern {h:?}"));
                }
            }
            if !e.path.starts_with('/') || e.path.contains('?') {
                out.push(format!(
                    "{at}: path {:?} must start with / and hold no query",
                    e.path
                ));
            }
            for r in &e.require {
                match r.split_once('=') {
                    Some((f, v)) if field_ok(f) && !v.is_empty() => {}
                    _ => out.push(format!("{at}: bad require {r:?} (FIELD=VALUE)")),
                }
            }
            if e.decision.is_none() && !e.purposes.is_empty() {
                out.push(format!("{at}: purposes without decision"));
            }
            for r in &e.read {
                if !field_ok(&r.field) {
                    out.push(format!("{at}: bad field {:?}", r.field));
                }
                if r.granted.is_empty() && r.refused.is_empty() && r.withdrawn.is_empty() {
                    out.push(format!("{at}: field {} maps no value", r.field));
                }
                let mut all: Vec<String> = r
                    .granted
                    .iter()
                    .chain(&r.refused)
                    .chain(&r.withdrawn)
                    .map(|v| v.to_ascii_lowercase())
                    .collect();
                let n = all.len();
                all.sort();
                all.dedup();
                if all.len() != n {
                    out.push(format!(
                        "{at}: field {} maps a value to two decisions",
                        r.field
                    ));
                }
            }
        }
        out
    }

    /// What the request records, if it is a call to a known CMP endpoint.
    pub fn read(
        &self,
        host: &str,
        method: &str,
        path_and_query: &str,
        parts: &[Part<'_>],
    ) -> Option<CmpReading> {
        let path = path_and_query
            .split_once('?')
            .map_or(path_and_query, |(p, _)| p);
        if path.len() > MAX_PATH_LEN {
            return None;
        }
        let host = host.trim_end_matches('.');
        let e = self.endpoints.iter().find(|e| {
            method_matches(e.method, method)
                && e.hosts
                    .iter()
                    .any(|h| wildcard(h.as_bytes(), host.as_bytes(), true))
                && wildcard(e.path.as_bytes(), path.as_bytes(), false)
                && e.require.iter().all(|r| {
                    r.split_once('=').is_some_and(|(f, want)| {
                        field_value(f, path, parts).is_some_and(|v| v.eq_ignore_ascii_case(want))
                    })
                })
        })?;
        Some(reading(e, path, parts))
    }
}

fn reading(e: &Endpoint, path: &str, parts: &[Part<'_>]) -> CmpReading {
    // Per purpose: (decision, specific?) — a field naming purposes beats a blanket one.
    let mut state: [Option<(Decision, bool)>; Purpose::ALL.len()] = [None; Purpose::ALL.len()];
    let mut heuristic = e.confidence == Confidence::Heuristic;
    let mut evidence = Vec::new();
    // Returns whether the field changed any purpose's decision.
    let mut apply = |decision: Decision, purposes: &[Purpose]| {
        let specific = !purposes.is_empty();
        let mut changed = false;
        for (i, p) in Purpose::ALL.iter().enumerate() {
            if specific && !purposes.contains(p) {
                continue;
            }
            if specific || !state[i].is_some_and(|(_, s)| s) {
                changed |= state[i].map(|(d, _)| d) != Some(decision);
                state[i] = Some((decision, specific));
            }
        }
        changed
    };
    if let Some(d) = e.decision {
        apply(d, &e.purposes);
        evidence.push(format!("call means {}", d.as_str()));
    }
    for r in &e.read {
        let Some(value) = field_value(&r.field, path, parts) else {
            continue;
        };
        let is = |list: &[String]| list.iter().any(|v| v.eq_ignore_ascii_case(&value));
        let decision = if is(&r.granted) {
            Decision::Granted
        } else if is(&r.refused) {
            Decision::Refused
        } else if is(&r.withdrawn) {
            Decision::Withdrawn
        } else {
            continue;
        };
        let changed = apply(decision, &r.purposes);
        let name = r.field.split_once(':').map_or(r.field.as_str(), |(_, n)| n);
        evidence.push(format!("{name}={value}"));
        // A heuristic field that only agrees with what is already read adds no doubt.
        if changed && r.confidence.unwrap_or(e.confidence) == Confidence::Heuristic {
            heuristic = true;
        }
    }
    // Group purposes by decision, in a fixed order; all five alike = "all".
    let mut decisions = Vec::new();
    for d in [Decision::Granted, Decision::Refused, Decision::Withdrawn] {
        let ps: Vec<Purpose> = Purpose::ALL
            .iter()
            .zip(&state)
            .filter(|(_, s)| s.is_some_and(|(x, _)| x == d))
            .map(|(p, _)| *p)
            .collect();
        if ps.len() == Purpose::ALL.len() {
            decisions.push((d, Vec::new()));
        } else if !ps.is_empty() {
            decisions.push((d, ps));
        }
    }
    CmpReading {
        cmp: e.cmp.clone(),
        decisions,
        evidence: evidence.join(", "),
        heuristic,
    }
}

fn field_ok(field: &str) -> bool {
    match field.split_once(':') {
        Some(("query" | "form" | "cookie" | "json", name)) => !name.is_empty(),
        Some(("segment", n)) => n.parse::<usize>().is_ok(),
        _ => false,
    }
}

fn method_matches(want: Method, got: &str) -> bool {
    match want {
        Method::Any => true,
        Method::Get => got.eq_ignore_ascii_case("GET"),
        Method::Post => got.eq_ignore_ascii_case("POST"),
    }
}

/// The value of a table field in this request: the first occurrence, trimmed, at
/// most [`MAX_VALUE_LEN`] bytes (longer values match nothing).
fn field_value(field: &str, path: &str, parts: &[Part<'_>]) -> Option<String> {
    let (place, name) = field.split_once(':')?;
    let text = |b: &[u8]| {
        (b.len() <= MAX_VALUE_LEN).then(|| String::from_utf8_lossy(b).trim().to_string())
    };
    match place {
        "segment" => {
            let n: usize = name.parse().ok()?;
            let seg = path.trim_start_matches('/').split('/').nth(n)?;
            text(seg.as_bytes())
        }
        "query" | "form" | "cookie" => parts
            .iter()
            .filter(|p| p.layers.is_empty())
            .find(|p| {
                p.place_and_name()
                    .is_some_and(|(pl, n)| pl == place && n.eq_ignore_ascii_case(name))
            })
            .and_then(|p| text(&p.data)),
        "json" => parts
            .iter()
            .filter(|p| p.layers.is_empty() && p.location == "body")
            .find_map(|p| {
                let index = p.json_index()?;
                let v = index.values().find(|v| {
                    if name.starts_with('$') {
                        // Paths cost an allocation: only for values under the last key.
                        let last = name.rsplit('.').next().unwrap_or(name);
                        json::key_before(&p.data, v.range.start)
                            .is_some_and(|k| k == last.as_bytes())
                            && index.path(&p.data, v.id) == name
                    } else {
                        json::key_before(&p.data, v.range.start)
                            .is_some_and(|k| k == name.as_bytes())
                    }
                })?;
                text(p.data.get(v.range.clone())?)
            }),
        _ => None,
    }
}

/// Whether `text` matches `pattern`, where `*` matches any run of bytes (in hosts:
/// compared ASCII case-insensitively). Greedy with one backtrack point: linear space,
/// O(pattern × text) time at worst, and both are short and bounded.
fn wildcard(pattern: &[u8], text: &[u8], fold_case: bool) -> bool {
    let eq = |a: u8, b: u8| {
        if fold_case {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if eq(c, text[t]) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{request_parts, Limits};
    use crate::exchange::{Exchange, Header, SourceKind};
    use crate::timestamp::Timestamp;
    use Purpose::*;

    /// Reads a synthetic request with the embedded table.
    fn call(
        method: &str,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Option<CmpReading> {
        let mut x = Exchange::new("x-1", SourceKind::Har, Timestamp(0));
        x.method = method.into();
        x.host = host.into();
        x.path = path.into();
        x.request_headers = headers.iter().map(|(n, v)| Header::new(*n, *v)).collect();
        x.request_body = body.as_bytes().to_vec();
        let parts = request_parts(&x, &Limits::default(), &mut Vec::new());
        CmpTable::embedded().read(&x.host, &x.method, &x.path, &parts)
    }

    const JSON: (&str, &str) = ("Content-Type", "application/json");

    #[test]
    fn embedded_table_is_clean() {
        let t = CmpTable::parse(EMBEDDED).unwrap();
        assert_eq!(t.check(), Vec::<String>::new());
        assert!(t.endpoints().len() >= 7);
        assert!(t.endpoints().iter().all(|e| !e.source.is_empty()));
    }

    #[test]
    fn check_names_bad_entries() {
        let t = CmpTable::parse(
            r#"
[[endpoint]]
cmp = "X"
hosts = ["Bad Host"]
path = "nopath?q"
method = "GET"
confidence = "verified"
source = ""
[[endpoint.read]]
field = "header:x"
granted = ["1"]
refused = ["1"]
"#,
        )
        .unwrap();
        let p = t.check().join("\n");
        for want in [
            "no source",
            "bad host",
            "path",
            "bad field",
            "two decisions",
        ] {
            assert!(p.contains(want), "{want} missing from {p}");
        }
        assert!(CmpTable::parse("[[endpoint]]\ncmp = \"X\"\nbogus = 1").is_err());
    }

    #[test]
    fn cookiebot_accept_and_decline() {
        let decline = call(
            "GET",
            "consent.cookiebot.com",
            "/logconsent.ashx?action=decline&nocache=1&cbid=abc&cbt=leveloptin&method=strict&hasdata=true",
            &[],
            "",
        )
        .unwrap();
        assert_eq!(decline.cmp, "Cookiebot");
        assert_eq!(decline.decisions, vec![(Decision::Refused, vec![])]);
        assert!(!decline.heuristic);
        // Accept with marketing off: the category flags are heuristic and win over
        // the blanket action for their purposes.
        let partial = call(
            "GET",
            "consent.cookiebot.com",
            "/logconsent.ashx?action=accept&clp=true&cls=true&clm=false&cbid=abc",
            &[],
            "",
        )
        .unwrap();
        assert_eq!(
            partial.decisions,
            vec![
                (
                    Decision::Granted,
                    vec![Analytics, Personalization, Social, Functional]
                ),
                (Decision::Refused, vec![Advertising])
            ]
        );
        assert!(partial.heuristic);
        assert!(
            partial.evidence.contains("clm=false"),
            "{}",
            partial.evidence
        );
        // Wrong method, host or path: not a consent call.
        assert!(call(
            "POST",
            "consent.cookiebot.com",
            "/logconsent.ashx?action=decline",
            &[],
            ""
        )
        .is_none());
        assert!(call(
            "GET",
            "consent.cookiebot.com.evil.example",
            "/logconsent.ashx?action=decline",
            &[],
            ""
        )
        .is_none());
        assert!(call(
            "GET",
            "consent.cookiebot.com",
            "/uc.js?action=decline",
            &[],
            ""
        )
        .is_none());
    }

    #[test]
    fn sourcepoint_choices() {
        let all = call(
            "GET",
            "cdn.privacy-mgmt.com",
            "/wrapper/v2/choice/consent-all?env=prod&accountId=22&propertyId=17801",
            &[],
            "",
        )
        .unwrap();
        assert_eq!(all.decisions, vec![(Decision::Granted, vec![])]);
        let none = call(
            "GET",
            "cdn.privacy-mgmt.com",
            "/wrapper/v2/choice/reject-all?env=prod",
            &[],
            "",
        )
        .unwrap();
        assert_eq!(none.decisions, vec![(Decision::Refused, vec![])]);
        let gdpr = call(
            "POST",
            "cdn.privacy-mgmt.com",
            "/wrapper/v2/choice/gdpr/13?env=prod",
            &[JSON],
            r#"{"uuid":"u1"}"#,
        )
        .unwrap();
        assert_eq!(gdpr.decisions, vec![(Decision::Refused, vec![])]);
        let ccpa = call(
            "POST",
            "cdn.privacy-mgmt.com",
            "/wrapper/v2/choice/ccpa/11?env=prod",
            &[JSON],
            "{}",
        )
        .unwrap();
        assert_eq!(ccpa.decisions, vec![(Decision::Granted, vec![Advertising])]);
        // Save-and-exit (1): a decision whose contents are in a body we do not read.
        let saved = call(
            "POST",
            "cdn.privacy-mgmt.com",
            "/wrapper/v2/choice/gdpr/1",
            &[JSON],
            "{}",
        )
        .unwrap();
        assert!(saved.decisions.is_empty());
    }

    #[test]
    fn usercentrics_action_is_heuristic() {
        let deny = call(
            "POST",
            "consent-api.service.consent.usercentrics.eu",
            "/consent/uw/3",
            &[JSON],
            r#"{"consent":{"action":"onDenyAllServices","type":"EXPLICIT"},"settingsId":"s1"}"#,
        )
        .unwrap();
        assert_eq!(deny.cmp, "Usercentrics");
        assert_eq!(deny.decisions, vec![(Decision::Refused, vec![])]);
        assert!(deny.heuristic);
        let app = call(
            "POST",
            "consent-api.service.consent.eu1.usercentrics.eu",
            "/consent/ua/3",
            &[JSON],
            r#"{"action":"onAcceptAllServices"}"#,
        )
        .unwrap();
        assert_eq!(app.decisions, vec![(Decision::Granted, vec![])]);
    }

    #[test]
    fn didomi_needs_a_consent_event() {
        let given = call(
            "POST",
            "api.privacy-center.org",
            "/v1/events",
            &[JSON],
            r#"{"type":"consent.given","parameters":{}}"#,
        )
        .unwrap();
        assert_eq!(given.cmp, "Didomi");
        assert!(given.decisions.is_empty(), "contents unknown");
        assert!(call(
            "POST",
            "api.privacy-center.org",
            "/v1/events",
            &[JSON],
            r#"{"type":"pageview"}"#
        )
        .is_none());
    }

    #[test]
    fn onetrust_receipt_is_recorded_without_contents() {
        let r = call(
            "POST",
            "privacyportal-eu.onetrust.com",
            "/request/v1/consentreceipts",
            &[JSON],
            r#"{"identifier":"x","requestInformation":"e30","purposes":[{"Id":"ef4448f9"}]}"#,
        )
        .unwrap();
        assert_eq!(r.cmp, "OneTrust");
        assert!(r.decisions.is_empty());
        assert!(call(
            "POST",
            "privacyportal.onetrust.com",
            "/request/v1/consentreceipts",
            &[JSON],
            "{}"
        )
        .is_some());
    }

    #[test]
    fn wildcards() {
        assert!(wildcard(
            b"privacyportal*.onetrust.com",
            b"PrivacyPortal-DE.onetrust.com",
            true
        ));
        assert!(!wildcard(
            b"privacyportal*.onetrust.com",
            b"privacyportal.onetrust.com.x",
            true
        ));
        assert!(wildcard(b"/consent/*/3", b"/consent/uw/3", false));
        assert!(!wildcard(b"/consent/*/3", b"/consent/uw/4", false));
        assert!(wildcard(b"*", b"", false));
        assert!(!wildcard(b"a", b"", false));
        assert!(wildcard(b"a*b*c", b"aXbYbZc", false));
        // A long adversarial text stays cheap.
        let long = vec![b'a'; MAX_PATH_LEN];
        assert!(!wildcard(b"*a*a*a*b", &long, false));
    }

    proptest::proptest! {
        #[test]
        fn wildcard_agrees_with_a_naive_model(p in "[ab*]{0,6}", t in "[ab]{0,10}") {
            fn naive(p: &[u8], t: &[u8]) -> bool {
                match p.split_first() {
                    None => t.is_empty(),
                    Some((b'*', rest)) => (0..=t.len()).any(|i| naive(rest, &t[i..])),
                    Some((c, rest)) => t.first() == Some(c) && naive(rest, &t[1..]),
                }
            }
            proptest::prop_assert_eq!(wildcard(p.as_bytes(), t.as_bytes(), false), naive(p.as_bytes(), t.as_bytes()));
        }
    }
}
