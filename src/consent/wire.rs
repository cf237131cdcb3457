//! What a consent signal found in traffic says, as consent decisions (DESIGN.md §5
//! `wire` events). Each interpreter is small and pure; the string decoders (TCF, GPP,
//! US Privacy) live in their own modules.
//!
//! TCF purposes map to ours as follows (TCF v2.2 numbering). A purpose of ours is
//! *granted* when storage/access (1) and all its TCF purposes are consented, and
//! *refused* when storage/access or every one of its TCF purposes is not; anything in
//! between expresses no decision.
//!
//! | ours | TCF purposes |
//! |---|---|
//! | advertising | 2 basic ads, 3 ad profile, 4 personalised ads |
//! | analytics | 8 content measurement, 9 audience research (7, ad measurement, counts for neither: it follows advertising) |
//! | personalization | 5 content profile, 6 personalised content |
//!
//! US Privacy and the GPP US sections are opt-out signals: an opt-out of sale,
//! sharing or targeted advertising refuses `advertising`, no opt-out grants it. GPC
//! refuses `advertising`. A CMP call (see [`super::cmp`]) decides what its table
//! entry reads, heuristic where the entry says so. Consent Mode and the OneTrust groups are heuristics (their
//! meanings are informally documented or configurable) and marked so.

use super::cmp::CmpReading;
use super::gpp::GppString;
use super::signals::{SignalKind, WireSignal};
use super::tcf::TcString;
use super::usp::UsPrivacy;
use super::{Decision, Purpose};
use crate::timestamp::Timestamp;

/// The decisions one signal expresses.
#[derive(Debug, Clone, PartialEq)]
pub struct Interpretation {
    /// (decision, purposes) pairs; empty purposes mean all.
    pub decisions: Vec<(Decision, Vec<Purpose>)>,
    /// One line for findings and reports: `Sec-GPC: 1 (opt-out of sale/sharing)`.
    pub summary: String,
    /// Inferred by a documented heuristic rather than a specified meaning.
    pub heuristic: bool,
    /// When the signal says the consent was given (a TC string's `created`).
    pub created: Option<Timestamp>,
    /// IAB vendor ids with consent (sorted), for signals that list vendors (TCF).
    pub vendor_consents: Option<Vec<u16>>,
    /// Parts of the signal that could not be decoded although the rest could (a
    /// GPP section), one line each; recorded as anomalies.
    pub problems: Vec<String>,
}

/// Interprets a signal: `Ok(None)` when it expresses no decision (e.g. `gdpr=1`,
/// which only says the regulation applies), `Err` with the reason when it is
/// malformed.
pub fn interpret(signal: &WireSignal) -> Result<Option<Interpretation>, String> {
    Ok(match signal.kind {
        SignalKind::Gpc => gpc(&signal.value),
        SignalKind::ConsentModeGcs => gcs(&signal.value),
        SignalKind::ConsentModeGcd => gcd(&signal.value),
        SignalKind::TcString => {
            let tc = TcString::parse(&signal.value).map_err(|e| format!("TC string: {e}"))?;
            tcf(&tc)
        }
        SignalKind::UsPrivacy => {
            let usp = UsPrivacy::parse(&signal.value).map_err(|e| format!("US Privacy: {e}"))?;
            us_privacy(&usp)
        }
        SignalKind::Gpp => {
            let gpp = GppString::parse(&signal.value).map_err(|e| format!("GPP: {e}"))?;
            let problems: Vec<String> = gpp.section_errors().map(|e| format!("GPP: {e}")).collect();
            match gpp_string(&gpp) {
                Some(mut i) => {
                    i.problems = problems;
                    Some(i)
                }
                // Nothing usable: the bad sections are the news.
                None if !problems.is_empty() => return Err(problems.join("; ")),
                None => None,
            }
        }
        SignalKind::Cmp => signal.cmp.as_deref().map(cmp_call),
        SignalKind::OneTrust => one_trust(&signal.value),
        SignalKind::Cookiebot => cookiebot(&signal.value),
        SignalKind::GdprApplies | SignalKind::GppSectionIds | SignalKind::NonPersonalizedAds => {
            None
        }
    })
}

/// A CMP call: its decisions as read by [`super::cmp`]; none read means a decision
/// was recorded whose contents are unknown, which is reported, not guessed.
fn cmp_call(reading: &CmpReading) -> Interpretation {
    let summary = format!("{} consent call recording {}", reading.cmp, {
        let d: Vec<String> = reading
            .decisions
            .iter()
            .map(|(d, p)| format!("{} {}", d.as_str(), super::describe_purposes(p)))
            .collect();
        if d.is_empty() {
            "a decision with unknown contents".to_string()
        } else {
            d.join("; ")
        }
    });
    let problems = if reading.decisions.is_empty() {
        vec![format!(
            "{}: decision recorded, contents unknown",
            reading.cmp
        )]
    } else {
        Vec::new()
    };
    Interpretation {
        decisions: reading.decisions.clone(),
        summary,
        heuristic: reading.heuristic,
        created: None,
        vendor_consents: None,
        problems,
    }
}

/// Our purposes and the TCF purposes behind each (see the module doc).
const TCF_PURPOSES: [(Purpose, &[u8]); 3] = [
    (Purpose::Advertising, &[2, 3, 4]),
    (Purpose::Analytics, &[8, 9]),
    (Purpose::Personalization, &[5, 6]),
];

fn tcf(tc: &TcString) -> Option<Interpretation> {
    let storage = tc.purpose_consent(1);
    let mut granted = Vec::new();
    let mut refused = Vec::new();
    for (ours, theirs) in TCF_PURPOSES {
        if storage && theirs.iter().all(|&n| tc.purpose_consent(n)) {
            granted.push(ours);
        } else if !storage || theirs.iter().all(|&n| !tc.purpose_consent(n)) {
            refused.push(ours);
        }
    }
    let consents: Vec<String> = tc.purpose_consents.iter().map(u8::to_string).collect();
    let created = i64::try_from(tc.created_ds)
        .ok()
        .and_then(|ds| ds.checked_mul(100_000))
        .map(Timestamp::from_micros);
    let summary = format!(
        "TC string (CMP {}, created {}) consenting to TCF purposes [{}]",
        tc.cmp_id,
        tc.created(),
        consents.join(",")
    );
    // Even without a purpose decision the vendor consents matter.
    let decided = decisions(granted, refused, summary.clone(), false);
    Some(Interpretation {
        created,
        vendor_consents: Some(tc.vendor_consents.clone()),
        ..decided.unwrap_or(Interpretation {
            decisions: Vec::new(),
            summary,
            heuristic: false,
            created: None,
            vendor_consents: None,
            problems: Vec::new(),
        })
    })
}

fn us_privacy(usp: &UsPrivacy) -> Option<Interpretation> {
    if usp.not_applicable() {
        return None;
    }
    let what = format!("US Privacy {}", usp.encode());
    opt_out(usp.opted_out(), &what, "opted out of sale")
}

/// An opt-out signal (US Privacy, GPP US sections): an opt-out refuses
/// `advertising`, no opt-out grants it.
fn opt_out(opted_out: bool, what: &str, opt_out_meaning: &str) -> Option<Interpretation> {
    let ad = vec![Purpose::Advertising];
    if opted_out {
        decisions(vec![], ad, format!("{what} ({opt_out_meaning})"), false)
    } else {
        decisions(ad, vec![], format!("{what} (no opt-out)"), false)
    }
}

fn gpp_string(gpp: &GppString) -> Option<Interpretation> {
    // The EU section speaks for itself; the US ones are opt-outs.
    if let Some(tc) = gpp.tcf_eu_v2() {
        if let Some(mut i) = tcf(tc) {
            i.summary = format!("GPP {}", i.summary);
            return Some(i);
        }
    }
    if let Some(usp) = gpp.us_privacy() {
        if let Some(mut i) = us_privacy(usp) {
            i.summary = format!("GPP {}", i.summary);
            return Some(i);
        }
    }
    let us: Vec<&str> = gpp.us_sections().map(|(name, _)| name).collect();
    if us.is_empty() {
        return None;
    }
    opt_out(
        gpp.us_opted_out() || gpp.gpc() == Some(true),
        &format!("GPP {}", us.join(",")),
        "opted out of sale, sharing or targeted advertising",
    )
}

/// OneTrust's default category ids in `groups=C0001:1,C0002:0,…`: C0002 performance,
/// C0003 functional, C0004 targeting, C0005 social media. Sites can renumber them,
/// so this is a heuristic.
fn one_trust(value: &str) -> Option<Interpretation> {
    let groups = value
        .split('&')
        .find_map(|kv| kv.trim().strip_prefix("groups="))?;
    let mut granted = Vec::new();
    let mut refused = Vec::new();
    for pair in groups.split(',') {
        let Some((group, flag)) = pair.split_once(':') else {
            continue;
        };
        let purpose = match group.trim() {
            "C0002" => Purpose::Analytics,
            "C0003" => Purpose::Functional,
            "C0004" => Purpose::Advertising,
            "C0005" => Purpose::Social,
            _ => continue,
        };
        match flag.trim() {
            "1" => granted.push(purpose),
            "0" => refused.push(purpose),
            _ => {}
        }
    }
    decisions(
        granted,
        refused,
        format!("OneTrust consent cookie groups={groups}"),
        true,
    )
}

/// Cookiebot's `CookieConsent` cookie: `{…,preferences:false,statistics:true,marketing:false,…}`.
fn cookiebot(value: &str) -> Option<Interpretation> {
    let mut granted = Vec::new();
    let mut refused = Vec::new();
    for (key, purpose) in [
        ("statistics", Purpose::Analytics),
        ("marketing", Purpose::Advertising),
        ("preferences", Purpose::Personalization),
    ] {
        let Some(at) = value.find(&format!("{key}:")) else {
            continue;
        };
        let rest = &value[at + key.len() + 1..];
        if rest.starts_with("true") {
            granted.push(purpose);
        } else if rest.starts_with("false") {
            refused.push(purpose);
        }
    }
    decisions(
        granted,
        refused,
        "Cookiebot consent cookie".to_string(),
        false,
    )
}

/// An interpretation granting and refusing the given purposes, if any.
fn decisions(
    granted: Vec<Purpose>,
    refused: Vec<Purpose>,
    summary: String,
    heuristic: bool,
) -> Option<Interpretation> {
    let mut d = Vec::new();
    if !granted.is_empty() {
        d.push((Decision::Granted, granted));
    }
    if !refused.is_empty() {
        d.push((Decision::Refused, refused));
    }
    (!d.is_empty()).then_some(Interpretation {
        decisions: d,
        summary,
        heuristic,
        created: None,
        vendor_consents: None,
        problems: Vec::new(),
    })
}

/// Global Privacy Control: `1` is an opt-out of sale and sharing (CCPA/CPRA § 7025),
/// i.e. a refusal of advertising use by third parties.
fn gpc(value: &str) -> Option<Interpretation> {
    (value.trim() == "1").then(|| Interpretation {
        decisions: vec![(Decision::Refused, vec![Purpose::Advertising])],
        summary: "Sec-GPC: 1 (Global Privacy Control: do not sell or share)".into(),
        heuristic: false,
        created: None,
        vendor_consents: None,
        problems: Vec::new(),
    })
}

/// Google Consent Mode `gcs=G1xy`: x is `ad_storage`, y `analytics_storage`, each
/// `1` granted or `0` denied (`-` not set). Google documents the parameter only
/// informally, so findings based on it are marked heuristic.
fn gcs(value: &str) -> Option<Interpretation> {
    let b = value.trim().as_bytes();
    if b.len() != 4 || &b[..2] != b"G1" {
        return None;
    }
    let mut decisions = Vec::new();
    for (flag, purpose) in [(b[2], Purpose::Advertising), (b[3], Purpose::Analytics)] {
        match flag {
            b'1' => decisions.push((Decision::Granted, vec![purpose])),
            b'0' => decisions.push((Decision::Refused, vec![purpose])),
            b'-' => {}
            _ => return None,
        }
    }
    (!decisions.is_empty()).then(|| Interpretation {
        decisions,
        summary: format!(
            "Google Consent Mode gcs={} (ad_storage {}, analytics_storage {})",
            value.trim(),
            flag_word(b[2]),
            flag_word(b[3])
        ),
        heuristic: true,
        created: None,
        vendor_consents: None,
        problems: Vec::new(),
    })
}

/// The state a Consent Mode v2 `gcd` letter ends in: `Some(true)` granted,
/// `Some(false)` denied, `None` not set. The letters combine the default and the
/// update of one signal (as decoded by the measurement community, not by Google):
/// `l` not set; `p` denied by default; `q` denied by default and update; `t` granted
/// by default; `r` denied by default, granted by update; `m` denied by update only;
/// `n` granted by update only; `u` granted by default, denied by update; `v`
/// granted by default and update.
fn gcd_letter(letter: u8) -> Option<Option<bool>> {
    Some(match letter {
        b't' | b'r' | b'n' | b'v' => Some(true),
        b'p' | b'q' | b'm' | b'u' => Some(false),
        b'l' => None,
        _ => return None,
    })
}

/// Google Consent Mode v2 `gcd=11a1b1c1d5`: letters for ad_storage,
/// analytics_storage, ad_user_data and ad_personalization, separated by digits.
/// `advertising` is refused when any of its three signals is denied and granted
/// when all are; `analytics` follows analytics_storage. Heuristic.
fn gcd(value: &str) -> Option<Interpretation> {
    let b = value.trim().as_bytes();
    if b.len() != 10 || &b[..2] != b"11" || !b[3..].iter().step_by(2).all(u8::is_ascii_digit) {
        return None;
    }
    let mut states = [None; 4];
    for (i, state) in states.iter_mut().enumerate() {
        *state = gcd_letter(b[2 + 2 * i])?;
    }
    let [ad_storage, analytics_storage, ad_user_data, ad_personalization] = states;
    let ads = [ad_storage, ad_user_data, ad_personalization];
    let mut granted = Vec::new();
    let mut refused = Vec::new();
    if ads.contains(&Some(false)) {
        refused.push(Purpose::Advertising);
    } else if ads.iter().all(|s| *s == Some(true)) {
        granted.push(Purpose::Advertising);
    }
    match analytics_storage {
        Some(true) => granted.push(Purpose::Analytics),
        Some(false) => refused.push(Purpose::Analytics),
        None => {}
    }
    decisions(
        granted,
        refused,
        format!("Google Consent Mode gcd={}", value.trim()),
        true,
    )
}

fn flag_word(flag: u8) -> &'static str {
    match flag {
        b'1' => "granted",
        b'0' => "denied",
        _ => "not set",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(kind: SignalKind, value: &str) -> WireSignal {
        WireSignal {
            kind,
            value: value.into(),
            location: "x".into(),
            cmp: None,
        }
    }

    #[test]
    fn gpc() {
        let i = interpret(&sig(SignalKind::Gpc, "1")).unwrap().unwrap();
        assert_eq!(
            i.decisions,
            vec![(Decision::Refused, vec![Purpose::Advertising])]
        );
        assert_eq!(interpret(&sig(SignalKind::Gpc, "0")), Ok(None));
    }

    #[test]
    fn consent_mode() {
        let i = interpret(&sig(SignalKind::ConsentModeGcs, "G101"))
            .unwrap()
            .unwrap();
        assert_eq!(
            i.decisions,
            vec![
                (Decision::Refused, vec![Purpose::Advertising]),
                (Decision::Granted, vec![Purpose::Analytics])
            ]
        );
        assert!(i.heuristic);
        assert_eq!(decided(SignalKind::ConsentModeGcs, "G1-0").len(), 1);
        for bad in ["G1", "G2100", "G1x0", "G1--", ""] {
            assert!(
                interpret(&sig(SignalKind::ConsentModeGcs, bad)) == Ok(None),
                "{bad}"
            );
        }
    }

    fn tc_with(purposes: &[u8]) -> String {
        let mut tc = crate::consent::tcf::encode::sample();
        tc.purpose_consents = purposes.to_vec();
        crate::consent::tcf::encode::encode(&tc, false)
    }

    fn decided(kind: SignalKind, value: &str) -> Vec<(Decision, Vec<Purpose>)> {
        interpret(&sig(kind, value))
            .unwrap()
            .map(|i| i.decisions)
            .unwrap_or_default()
    }

    #[test]
    fn tcf_purposes_map_to_ours() {
        use Purpose::*;
        // Everything consented.
        let all = decided(
            SignalKind::TcString,
            &tc_with(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
        );
        assert_eq!(
            all,
            vec![(
                Decision::Granted,
                vec![Advertising, Analytics, Personalization]
            )]
        );
        // Only storage and measurement: advertising and personalization refused, analytics granted.
        let some = decided(SignalKind::TcString, &tc_with(&[1, 8, 9]));
        assert_eq!(
            some,
            vec![
                (Decision::Granted, vec![Analytics]),
                (Decision::Refused, vec![Advertising, Personalization])
            ]
        );
        // No storage/access: everything refused.
        let none = decided(SignalKind::TcString, &tc_with(&[2, 3, 4]));
        assert_eq!(
            none,
            vec![(
                Decision::Refused,
                vec![Advertising, Analytics, Personalization]
            )]
        );
        // Partial advertising consent decides nothing for advertising.
        let partial = decided(SignalKind::TcString, &tc_with(&[1, 2]));
        assert!(
            partial.iter().all(|(_, p)| !p.contains(&Advertising)),
            "{partial:?}"
        );
    }

    #[test]
    fn consent_mode_v2_gcd() {
        use Purpose::*;
        assert_eq!(
            decided(SignalKind::ConsentModeGcd, "11t1t1t1t5"),
            vec![(Decision::Granted, vec![Advertising, Analytics])]
        );
        assert_eq!(
            decided(SignalKind::ConsentModeGcd, "11p1p1p1p5"),
            vec![(Decision::Refused, vec![Advertising, Analytics])]
        );
        // Ads denied by update, analytics granted by update.
        assert_eq!(
            decided(SignalKind::ConsentModeGcd, "11u1r1v1v5"),
            vec![
                (Decision::Granted, vec![Analytics]),
                (Decision::Refused, vec![Advertising])
            ]
        );
        assert_eq!(decided(SignalKind::ConsentModeGcd, "11l1l1l1l5"), vec![]);
        for bad in ["11x1t1t1t5", "11t1t1t1t", "12t1t1t1t5", "11ttt1t1t5", ""] {
            assert_eq!(
                interpret(&sig(SignalKind::ConsentModeGcd, bad)),
                Ok(None),
                "{bad}"
            );
        }
    }

    #[test]
    fn gpp_with_one_bad_section_still_decides() {
        // Header for sections 2 and 6 (tcfeuv2, uspv1): the TC string is garbage,
        // the US Privacy section opts out.
        let header = "DBACNYA";
        let value = format!("{header}~!!bad!!~1YYN");
        let i = interpret(&sig(SignalKind::Gpp, &value)).unwrap().unwrap();
        assert_eq!(
            i.decisions,
            vec![(Decision::Refused, vec![Purpose::Advertising])]
        );
        assert_eq!(i.problems.len(), 1);
        assert!(i.problems[0].contains("tcfeuv2"), "{:?}", i.problems);
        // Nothing usable left: an error naming the section.
        let e = interpret(&sig(SignalKind::Gpp, &format!("{header}~!!~1YXN"))).unwrap_err();
        assert!(e.contains("tcfeuv2") && e.contains("uspv1"), "{e}");
    }

    #[test]
    fn cmp_calls() {
        let reading = CmpReading {
            cmp: "Cookiebot".into(),
            decisions: vec![(Decision::Refused, vec![])],
            evidence: "action=decline".into(),
            heuristic: false,
        };
        let mut s = sig(SignalKind::Cmp, "GET consent.cookiebot.com/logconsent.ashx");
        s.cmp = Some(Box::new(reading.clone()));
        let i = interpret(&s).unwrap().unwrap();
        assert_eq!(i.decisions, vec![(Decision::Refused, vec![])]);
        assert!(
            i.summary.contains("Cookiebot") && i.summary.contains("refused all purposes"),
            "{}",
            i.summary
        );
        assert!(i.problems.is_empty() && !i.heuristic);
        // Contents unknown: no decision, one problem saying so.
        s.cmp = Some(Box::new(CmpReading {
            decisions: vec![],
            heuristic: true,
            ..reading
        }));
        let i = interpret(&s).unwrap().unwrap();
        assert!(i.decisions.is_empty());
        assert!(i.problems[0].contains("contents unknown"));
        // A Cmp signal without a reading says nothing.
        assert_eq!(interpret(&sig(SignalKind::Cmp, "x")), Ok(None));
    }

    #[test]
    fn malformed_strings_are_errors_not_decisions() {
        assert!(interpret(&sig(SignalKind::TcString, "not a tc string!")).is_err());
        assert!(interpret(&sig(SignalKind::UsPrivacy, "2ZZZ")).is_err());
        assert!(interpret(&sig(SignalKind::Gpp, "~~~")).is_err());
    }

    #[test]
    fn us_privacy_and_cmp_cookies() {
        assert_eq!(
            decided(SignalKind::UsPrivacy, "1YYN"),
            vec![(Decision::Refused, vec![Purpose::Advertising])]
        );
        assert_eq!(
            decided(SignalKind::UsPrivacy, "1YNN"),
            vec![(Decision::Granted, vec![Purpose::Advertising])]
        );
        assert_eq!(decided(SignalKind::UsPrivacy, "1---"), vec![]);
        assert_eq!(
            decided(
                SignalKind::OneTrust,
                "isGpcEnabled=0&groups=C0001:1,C0002:0,C0004:0,C0003:1"
            ),
            vec![
                (Decision::Granted, vec![Purpose::Functional]),
                (
                    Decision::Refused,
                    vec![Purpose::Analytics, Purpose::Advertising]
                )
            ]
        );
        assert_eq!(
            decided(SignalKind::Cookiebot, "{stamp:'x',necessary:true,preferences:true,statistics:false,marketing:false,method:'explicit'}"),
            vec![(Decision::Granted, vec![Purpose::Personalization]), (Decision::Refused, vec![Purpose::Analytics, Purpose::Advertising])]
        );
    }
}
