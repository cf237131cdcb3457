//! Finding consent signals in a request: the places where apps, SDKs and ad requests
//! carry what the user allowed (IAB TCF, US Privacy, GPP, Global Privacy Control,
//! Google Consent Mode, CMP cookies, calls to CMP endpoints). Pure: works on the parts `decode` produced, so
//! nothing is decoded twice. Interpreting a signal is the job of its decoder.

use std::fmt;
use std::sync::LazyLock;

use memchr::memmem::Finder;

use super::cmp::{CmpReading, CmpTable};
use crate::decode::first_bytes::FirstBytes;
use crate::decode::{json, Part};

/// Most signals taken from one request; the rest are ignored (a hostile request may
/// repeat a parameter endlessly).
pub const MAX_SIGNALS_PER_REQUEST: usize = 32;
/// Longest signal value kept (a TC string with many vendors is a few KiB).
pub const MAX_SIGNAL_LEN: usize = 64 * 1024;

/// What a signal is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SignalKind {
    /// IAB TCF v2 TC string (`gdpr_consent`, `euconsent-v2`, OpenRTB `user.ext.consent`).
    TcString,
    /// Whether GDPR applies (`gdpr=1`, OpenRTB `regs.ext.gdpr`).
    GdprApplies,
    /// IAB US Privacy string (`us_privacy=1YNN`).
    UsPrivacy,
    /// IAB GPP string (`gpp`, `__gpp`, OpenRTB `regs.gpp`).
    Gpp,
    /// GPP section ids in force (`gpp_sid=7,8`).
    GppSectionIds,
    /// Global Privacy Control (`Sec-GPC: 1`).
    Gpc,
    /// Google Consent Mode state (`gcs=G1xy`).
    ConsentModeGcs,
    /// Google Consent Mode defaults and updates (`gcd=…`).
    ConsentModeGcd,
    /// Google non-personalised ads flag (`npa=1`).
    NonPersonalizedAds,
    /// OneTrust consent cookie (`OptanonConsent`, `groups=C0001:1,C0004:0`).
    OneTrust,
    /// Cookiebot consent cookie (`CookieConsent`).
    Cookiebot,
    /// A call to a consent-management endpoint of `signatures/consent.toml`
    /// (the reading is in [`WireSignal::cmp`]).
    Cmp,
}

/// One signal as found, not yet interpreted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireSignal {
    pub kind: SignalKind,
    pub value: String,
    /// Where it was: `query:gdpr_consent`, `cookie:euconsent-v2`, `body:$.user.ext.consent`,
    /// `cmp:Cookiebot` for a CMP call.
    pub location: String,
    /// For [`SignalKind::Cmp`]: what the call records.
    pub cmp: Option<Box<CmpReading>>,
}

/// A call to a known consent-management endpoint in this request, as a signal
/// (`value` names the endpoint and the values read, `location` is `cmp:NAME`).
pub fn extract_cmp(
    table: &CmpTable,
    host: &str,
    method: &str,
    path_and_query: &str,
    parts: &[Part<'_>],
) -> Option<WireSignal> {
    let reading = table.read(host, method, path_and_query, parts)?;
    let path = path_and_query
        .split_once('?')
        .map_or(path_and_query, |(p, _)| p);
    let mut value = format!("{method} {host}{path}");
    if !reading.evidence.is_empty() {
        value = format!("{value} ({})", reading.evidence);
    }
    Some(WireSignal {
        kind: SignalKind::Cmp,
        value,
        location: format!("cmp:{}", reading.cmp),
        cmp: Some(Box::new(reading)),
    })
}

/// Signals by the name of the query/form field or cookie that carries them
/// (compared ASCII case-insensitively).
const BY_NAME: &[(&str, SignalKind)] = &[
    ("gdpr_consent", SignalKind::TcString),
    ("euconsent-v2", SignalKind::TcString),
    ("euconsent", SignalKind::TcString),
    ("gdpr", SignalKind::GdprApplies),
    ("us_privacy", SignalKind::UsPrivacy),
    ("usprivacy", SignalKind::UsPrivacy),
    ("gpp", SignalKind::Gpp),
    ("__gpp", SignalKind::Gpp),
    ("gpp_sid", SignalKind::GppSectionIds),
    ("__gpp_sid", SignalKind::GppSectionIds),
    ("gcs", SignalKind::ConsentModeGcs),
    ("gcd", SignalKind::ConsentModeGcd),
    ("npa", SignalKind::NonPersonalizedAds),
    ("optanonconsent", SignalKind::OneTrust),
    ("cookieconsent", SignalKind::Cookiebot),
];

/// The first bytes of [`BY_NAME`]'s names, in either case: most fields (`adid`,
/// `event`, `sid`) are ruled out by one look-up instead of fifteen comparisons.
const BY_NAME_FIRST: FirstBytes = {
    let mut table = FirstBytes::NONE;
    let mut i = 0;
    while i < BY_NAME.len() {
        table = table.with(BY_NAME[i].0);
        i += 1;
    }
    table
};

/// Whether `name` may be one of [`BY_NAME`] (ASCII case-insensitively).
fn may_name_signal(name: &str) -> bool {
    BY_NAME_FIRST.may_start(name)
}

/// Signals in JSON bodies by path (OpenRTB 2.5 extensions and 2.6 fields).
const BY_JSON_PATH: &[(&str, SignalKind)] = &[
    ("$.user.ext.consent", SignalKind::TcString),
    ("$.user.consent", SignalKind::TcString),
    ("$.regs.ext.gdpr", SignalKind::GdprApplies),
    ("$.regs.gdpr", SignalKind::GdprApplies),
    ("$.regs.ext.us_privacy", SignalKind::UsPrivacy),
    ("$.regs.us_privacy", SignalKind::UsPrivacy),
    ("$.regs.gpp", SignalKind::Gpp),
];

/// Ad servers whose request protocol carries the IAB consent parameters
/// (`gdpr`, `gdpr_consent`, `us_privacy`, `gpp`): a request to them without any is
/// a request that withholds the user's decision. Matched as host suffixes.
pub const SIGNAL_CARRYING_AD_HOSTS: &[&str] = &[
    "doubleclick.net",
    "googlesyndication.com",
    "googleadservices.com",
    "adnxs.com",
    "rubiconproject.com",
    "pubmatic.com",
    "openx.net",
    "casalemedia.com",
    "criteo.com",
    "amazon-adsystem.com",
    "smartadserver.com",
    "adform.net",
    "3lift.com",
    "yieldmo.com",
    "sharethrough.com",
];

/// Whether a request to `host` with these parts should carry a consent signal by
/// its protocol: an OpenRTB bid request (a JSON body with `imp`), or a request to a
/// TCF-aware ad server.
pub fn expects_signal(host: &str, parts: &[Part<'_>]) -> bool {
    let by_host = SIGNAL_CARRYING_AD_HOSTS
        .iter()
        .any(|d| host == *d || host.strip_suffix(d).is_some_and(|p| p.ends_with('.')));
    by_host
        || parts.iter().any(|p| {
            p.location == "body"
                && p.json.is_some()
                && memchr::memmem::find(&p.data, b"\"imp\"").is_some()
        })
}

/// Every consent signal in the parts of one request, in part order.
pub fn extract(parts: &[Part<'_>]) -> Vec<WireSignal> {
    let mut out = Vec::new();
    for part in parts {
        if out.len() >= MAX_SIGNALS_PER_REQUEST {
            break;
        }
        if !part.layers.is_empty() {
            continue; // signals travel as themselves, not inside other encodings
        }
        if let Some((place, name)) = part.place_and_name() {
            match place {
                "query" | "form" | "cookie" if may_name_signal(name) => {
                    if let Some(&(_, kind)) =
                        BY_NAME.iter().find(|(n, _)| n.eq_ignore_ascii_case(name))
                    {
                        push(&mut out, kind, &part.data, &part.location);
                    }
                }
                "header" if name.eq_ignore_ascii_case("sec-gpc") => {
                    push(&mut out, SignalKind::Gpc, &part.data, &part.location);
                }
                _ => {}
            }
        }
        // OpenRTB requests: JSON bodies, or JSON inside a field. Paths cost an
        // allocation each, so only texts naming a signal key are walked.
        // The index is built only for texts that name a signal key.
        // The decoder's walk noted whether the text has such a key; texts it did not
        // walk are searched.
        let named = part.json.as_ref().map(|j| {
            j.names_signal_key()
                .unwrap_or_else(|| names_signal_key(&part.data))
        });
        let index = if named == Some(true) {
            part.json_index()
        } else {
            None
        };
        if let Some(index) = index {
            for v in index.values() {
                if out.len() >= MAX_SIGNALS_PER_REQUEST {
                    break;
                }
                // Only values under a signal key are worth building a path for.
                if !json::key_before(&part.data, v.range.start).is_some_and(is_signal_key) {
                    continue;
                }
                let path = index.path(&part.data, v.id);
                if let Some(&(_, kind)) = BY_JSON_PATH.iter().find(|(p, _)| *p == path) {
                    if let Some(value) = part.data.get(v.range.clone()) {
                        push(&mut out, kind, value, &part.location_at(v.range.clone()));
                    }
                }
            }
        }
    }
    out
}

/// The last key of each of [`BY_JSON_PATH`] (raw key text, as between the quotes).
pub fn is_signal_key(key: &[u8]) -> bool {
    matches!(key, b"consent" | b"gdpr" | b"us_privacy" | b"gpp")
}

/// Whether `json` contains a key that one of [`BY_JSON_PATH`] ends in. Four
/// SIMD substring searches with finders built once: measured faster here than one
/// multi-pattern pass, whose prefilter trips on every `"` of a JSON text.
fn names_signal_key(json: &[u8]) -> bool {
    static KEYS: LazyLock<[Finder<'static>; 4]> = LazyLock::new(|| {
        [
            Finder::new(b"\"consent\""),
            Finder::new(b"\"gdpr\""),
            Finder::new(b"\"us_privacy\""),
            Finder::new(b"\"gpp\""),
        ]
    });
    KEYS.iter().any(|k| k.find(json).is_some())
}

fn push(out: &mut Vec<WireSignal>, kind: SignalKind, value: &[u8], location: &dyn fmt::Display) {
    if out.len() >= MAX_SIGNALS_PER_REQUEST || value.len() > MAX_SIGNAL_LEN {
        return;
    }
    let value = String::from_utf8_lossy(value).trim().to_string();
    if value.is_empty() {
        return;
    }
    out.push(WireSignal {
        kind,
        value,
        location: location.to_string(),
        cmp: None,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{request_parts, Limits};
    use crate::exchange::{Exchange, Header, SourceKind};
    use crate::timestamp::Timestamp;

    fn signals(
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Vec<(SignalKind, String, String)> {
        let mut x = Exchange::new("x-1", SourceKind::Har, Timestamp(0));
        x.host = "ads.example".into();
        x.path = path.into();
        x.request_headers = headers.iter().map(|(n, v)| Header::new(*n, *v)).collect();
        x.request_body = body.as_bytes().to_vec();
        let parts = request_parts(&x, &Limits::default(), &mut Vec::new());
        extract(&parts)
            .into_iter()
            .map(|s| (s.kind, s.value, s.location))
            .collect()
    }

    /// The first-byte screen never rules out a name [`BY_NAME`] would match (every
    /// name in lower, upper and mixed case passes) and does rule out others.
    #[test]
    fn first_byte_screen_keeps_every_signal_name() {
        for (n, _) in BY_NAME {
            for v in [n.to_string(), n.to_ascii_uppercase(), {
                let mut m = n.to_string();
                m[..1].make_ascii_uppercase();
                m
            }] {
                assert!(may_name_signal(&v), "{v}");
            }
        }
        for name in ["adid", "sid", "", "\u{e9}t\u{e9}", "1gdpr"] {
            assert!(!may_name_signal(name), "{name}");
        }
    }

    /// Signals travel in the head: a trailer `Sec-GPC` or `Cookie` (RFC 9110
    /// §6.5.2: not to be merged into the head) signals nothing.
    #[test]
    fn trailer_fields_carry_no_signal() {
        let mut x = Exchange::new("x-1", SourceKind::Har, Timestamp(0));
        x.host = "ads.example".into();
        x.path = "/ad".into();
        x.request_headers = vec![
            Header::trailer("Sec-GPC", "1"),
            Header::trailer(
                "Cookie",
                "euconsent-v2=CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA",
            ),
        ];
        let parts = request_parts(&x, &Limits::default(), &mut Vec::new());
        assert!(extract(&parts).is_empty());
        for h in &mut x.request_headers {
            h.trailer = false;
        }
        let parts = request_parts(&x, &Limits::default(), &mut Vec::new());
        let kinds: Vec<SignalKind> = extract(&parts).iter().map(|s| s.kind).collect();
        assert_eq!(kinds, [SignalKind::Gpc, SignalKind::TcString]);
    }

    #[test]
    fn finds_query_cookie_and_header_signals() {
        let got = signals(
            "/ad?gdpr=1&gdpr_consent=CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA&us_privacy=1YNN&gcs=G100",
            &[("Cookie", "euconsent-v2=CAAA; OptanonConsent=groups=C0001%3A1%2CC0004%3A0"), ("Sec-GPC", "1")],
            "",
        );
        let kinds: Vec<_> = got.iter().map(|g| g.0).collect();
        for k in [
            SignalKind::GdprApplies,
            SignalKind::TcString,
            SignalKind::UsPrivacy,
            SignalKind::ConsentModeGcs,
            SignalKind::OneTrust,
            SignalKind::Gpc,
        ] {
            assert!(kinds.contains(&k), "{k:?} missing from {got:?}");
        }
        assert!(got.contains(&(
            SignalKind::UsPrivacy,
            "1YNN".into(),
            "query:us_privacy".into()
        )));
        assert!(got.contains(&(
            SignalKind::OneTrust,
            "groups=C0001:1,C0004:0".into(),
            "cookie:OptanonConsent".into()
        )));
        assert!(got.contains(&(
            SignalKind::TcString,
            "CAAA".into(),
            "cookie:euconsent-v2".into()
        )));
    }

    #[test]
    fn finds_openrtb_fields() {
        let body = r#"{"id":"r1","user":{"ext":{"consent":"CPXxRfAPXxRfA"}},"regs":{"ext":{"gdpr":1,"us_privacy":"1---"},"gpp":"DBABMA~CPXxRfAPXxRfA"}}"#;
        let got = signals(
            "/openrtb2/auction",
            &[("Content-Type", "application/json")],
            body,
        );
        assert!(
            got.contains(&(
                SignalKind::TcString,
                "CPXxRfAPXxRfA".into(),
                "body:$.user.ext.consent".into()
            )),
            "{got:?}"
        );
        assert!(got.contains(&(
            SignalKind::GdprApplies,
            "1".into(),
            "body:$.regs.ext.gdpr".into()
        )));
        assert!(got.contains(&(
            SignalKind::UsPrivacy,
            "1---".into(),
            "body:$.regs.ext.us_privacy".into()
        )));
        assert!(got.contains(&(
            SignalKind::Gpp,
            "DBABMA~CPXxRfAPXxRfA".into(),
            "body:$.regs.gpp".into()
        )));
    }

    #[test]
    fn ignores_lookalikes_and_is_bounded() {
        assert!(signals("/p?gdpr_consent_version=2&consent=1", &[], "").is_empty());
        let many: String = (0..500).map(|i| format!("gpp=DBA{i}&")).collect();
        assert_eq!(
            signals(&format!("/p?{many}"), &[], "").len(),
            MAX_SIGNALS_PER_REQUEST
        );
    }
}
