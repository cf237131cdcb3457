//! Table-driven tests of the consent rules at their boundaries: just before, within
//! the grace window, just after a decision; purpose granted or not; first vs third
//! party; unknown third party.

use super::*;
use crate::consent::{ConsentEvent, Decision, EventSource};
use crate::timestamp::Timestamp;

const GRACE_MS: i64 = 1000;

fn ms(v: i64) -> Timestamp {
    Timestamp(1_800_000_000_000_000 + v * 1000)
}

fn dest(party: Party, purposes: &[Purpose]) -> Destination {
    Destination {
        host: "h.example".into(),
        site: "h.example".into(),
        party,
        entity: None,
        categories: vec![],
        purposes: purposes.to_vec(),
        known: true,
        infrastructure: false,
        platform: false,
        tenant: false,
        iab_vendor_id: None,
        hosted_by: None,
    }
}

/// A consent decision at a time in ms: (time, decision, purposes).
type Ev<'a> = (i64, Decision, &'a [Purpose]);
/// A third-party row: name, decisions, send time, receiver, expected rule and borderline.
type ThirdRow<'a> = (
    &'a str,
    &'a [Ev<'a>],
    i64,
    &'a Destination,
    Option<RuleId>,
    bool,
);
/// A first-party row: name, decisions, send time, expected rule and state.
type FirstRow<'a> = (&'a str, &'a [Ev<'a>], i64, Option<RuleId>, State);

/// `events`: (time in ms, decision, purposes); then a send at `send_ms`.
fn verdict(events: &[Ev<'_>], send_ms: i64, d: &Destination) -> (Option<RuleId>, bool, State) {
    let mut tl = Timeline::default();
    for (at, decision, purposes) in events {
        tl.add(ConsentEvent {
            device: "dev".into(),
            at: ms(*at),
            decision: *decision,
            purposes: purposes.to_vec(),
            vendors: vec![],
            source: EventSource::Manual,
            evidence: None,
        });
    }
    let v = judge(&tl, "dev", d, ms(send_ms), GRACE_MS);
    (v.rule, v.borderline, v.state)
}

use Decision::{Granted, Refused, Withdrawn};
use Purpose::{Advertising as Ad, Analytics as An, Functional as Fu};
use RuleId::*;

#[test]
fn third_party_table() {
    let ads = dest(Party::Third, &[Ad]);
    let ad_an = dest(Party::Third, &[Ad, An]);
    let all: &[Purpose] = &[];
    #[rustfmt::skip]
    let table: &[ThirdRow<'_>] = &[
        ("no decision at all",               &[],                            5_000, &ads,   Some(ShareBeforeConsent), false),
        ("well before a grant",              &[(10_000, Granted, all)],      5_000, &ads,   Some(ShareBeforeConsent), false),
        ("grant just after (within grace)",  &[(10_000, Granted, all)],      9_500, &ads,   Some(ShareBeforeConsent), true),
        ("grant exactly at the send",        &[(10_000, Granted, all)],     10_000, &ads,   None,                     true),
        ("well after a grant",               &[(10_000, Granted, all)],     20_000, &ads,   None,                     false),
        ("refusal just before (grace)",      &[(10_000, Refused, all)],     10_400, &ads,   Some(ShareAfterRefusal),  true),
        ("just before a refusal",            &[(10_000, Refused, all)],      9_999, &ads,   Some(ShareBeforeConsent), true),
        ("well after refusal",               &[(10_000, Refused, all)],     15_000, &ads,   Some(ShareAfterRefusal),  false),
        ("refusal of that purpose",          &[(10_000, Refused, &[Ad])],   15_000, &ads,   Some(ShareAfterRefusal),  false),
        ("refusal of another purpose only",  &[(10_000, Refused, &[An])],   15_000, &ads,   Some(ShareBeforeConsent), false),
        ("withdrawal after grant",           &[(1_000, Granted, all), (10_000, Withdrawn, all)], 15_000, &ads, Some(ShareAfterWithdrawal), false),
        ("grant after refusal",              &[(1_000, Refused, all), (10_000, Granted, all)],   15_000, &ads, None, false),
        ("grant of another purpose",         &[(10_000, Granted, &[An])],   15_000, &ads,   Some(BeyondScope),        false),
        ("partial grant, two purposes",      &[(10_000, Granted, &[An])],   15_000, &ad_an, Some(BeyondScope),        false),
        ("both purposes granted",            &[(10_000, Granted, &[Ad, An])], 15_000, &ad_an, None,                   false),
        ("one refused one granted",          &[(10_000, Granted, &[An]), (10_000, Refused, &[Ad])], 15_000, &ad_an, Some(ShareAfterRefusal), false),
    ];
    for (name, events, send, d, want_rule, want_borderline) in table {
        let (rule, borderline, _) = verdict(events, *send, d);
        assert_eq!(
            (rule, borderline),
            (*want_rule, *want_borderline),
            "case: {name}"
        );
    }
}

#[test]
fn first_party_table() {
    let fp = dest(Party::First, &[]);
    let all: &[Purpose] = &[];
    #[rustfmt::skip]
    let table: &[FirstRow<'_>] = &[
        ("before any decision",        &[],                          5_000, Some(CollectBeforeConsent),   State::NotAsked),
        ("after any grant",            &[(1_000, Granted, &[Fu])],   5_000, None,                         State::Granted),
        ("after refusal of all",       &[(1_000, Refused, all)],     5_000, Some(CollectAfterRefusal),    State::Refused),
        ("after partial refusal only", &[(1_000, Refused, &[Ad])],   5_000, Some(CollectAfterRefusal),    State::Refused),
        ("after withdrawal",           &[(1_000, Granted, all), (2_000, Withdrawn, all)], 5_000, Some(CollectAfterWithdrawal), State::Withdrawn),
    ];
    for (name, events, send, want_rule, want_state) in table {
        let (rule, _, state) = verdict(events, *send, &fp);
        assert_eq!((rule, state), (*want_rule, *want_state), "case: {name}");
    }
}

#[test]
fn unknown_third_party_needs_advertising_and_analytics() {
    // The classifier gives unknown third parties advertising + analytics; a grant of
    // analytics alone does not cover them.
    let unknown = Destination {
        known: false,
        ..dest(Party::Third, &[Ad, An])
    };
    let (rule, _, _) = verdict(&[(0, Granted, &[An])], 5_000, &unknown);
    assert_eq!(rule, Some(BeyondScope));
    let (rule, _, _) = verdict(&[(0, Granted, &[])], 5_000, &unknown);
    assert_eq!(rule, None);
}

#[test]
fn rule_ids_round_trip_and_match_design() {
    for r in RuleId::ALL {
        assert_eq!(RuleId::parse(r.as_str()), Some(r));
        assert_eq!(
            serde_json::to_value(r).unwrap(),
            serde_json::json!(r.as_str())
        );
    }
    assert_eq!(Severity::High.lowered(), Severity::Medium);
    assert_eq!(Severity::Low.lowered(), Severity::Low);
}

#[test]
fn frequency_and_ids_are_stable() {
    let d = DataItem {
        kind: "imei".into(),
        encoding: "plain".into(),
        location: "query:imei".into(),
        confidence: Confidence::Exact,
        sensitive: false,
        value: None,
    };
    let a = finding_id(ShareBeforeConsent, "x-1", std::slice::from_ref(&d));
    assert_eq!(
        a,
        finding_id(ShareBeforeConsent, "x-1", std::slice::from_ref(&d))
    );
    assert_ne!(
        a,
        finding_id(ShareAfterRefusal, "x-1", std::slice::from_ref(&d))
    );
    assert_ne!(
        a,
        finding_id(ShareBeforeConsent, "x-2", std::slice::from_ref(&d))
    );
    assert!(a.starts_with("f-") && a.len() == 18);
}

/// The id as it was built before (a `format!` per byte): the same string.
#[test]
fn finding_id_matches_the_per_byte_format_model() {
    fn model(rule: RuleId, exchange: &str, data: &[DataItem]) -> String {
        let digest = finding_digest(rule, exchange, data);
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("f-{hex}")
    }
    let items: Vec<DataItem> = ["imei", "adid", "email"]
        .iter()
        .enumerate()
        .map(|(i, kind)| DataItem {
            kind: (*kind).into(),
            encoding: if i % 2 == 0 { "plain" } else { "base64" }.into(),
            location: format!("query:k{i}"),
            confidence: Confidence::Exact,
            sensitive: false,
            value: None,
        })
        .collect();
    for n in 0..=items.len() {
        for (rule, x) in [(ShareBeforeConsent, "x-1"), (ShareAfterRefusal, "x-77")] {
            assert_eq!(
                finding_id(rule, x, &items[..n]),
                model(rule, x, &items[..n])
            );
        }
    }
}

// ---- The whole Analyzer over built exchanges ------------------------------------

use crate::exchange::{Exchange, Header, SourceKind};

const CASE: &str = r#"
[app]
name = "Shop"
first_party = ["example-shop.com"]
[[device]]
id = "dev"
[device.identifiers]
imei = "490154203237518"
phone = "+8613800138000"
[[consent]]
device = "dev"
at = "2027-01-15T08:00:10Z"
decision = "refused"
purposes = ["advertising"]
[[consent]]
device = "dev"
at = "2027-01-15T08:00:20Z"
decision = "granted"
[rules]
frequency_per_minute = 2
"#;

/// Seconds after the case's epoch (the first decision is at 10 s).
fn sec(s: i64) -> Timestamp {
    Timestamp::parse_rfc3339("2027-01-15T08:00:00Z")
        .unwrap()
        .add_millis(s * 1000)
}

/// A test exchange builder: `exchange("h").at(5).query("imei=…").build()`.
struct XBuilder(Exchange);

fn exchange(host: &str) -> XBuilder {
    let mut x = Exchange::new("x-test", SourceKind::Har, sec(0));
    x.host = host.to_string();
    x.device = Some("dev".into());
    XBuilder(x)
}

impl XBuilder {
    fn at(mut self, s: i64) -> Self {
        self.0.at = sec(s);
        self.0.id = format!("x-{s}");
        self
    }
    fn query(mut self, q: &str) -> Self {
        self.0.path = format!("/p?{q}");
        self
    }
    /// A full path with query, for requests whose path matters (CMP endpoints).
    fn path(mut self, p: &str) -> Self {
        self.0.path = p.to_string();
        self
    }
    fn json(mut self, body: &str) -> Self {
        self.0.method = "POST".into();
        self.0
            .request_headers
            .push(Header::new("Content-Type", "application/json"));
        self.0.request_body = body.as_bytes().to_vec();
        self
    }
    fn header(mut self, name: &str, value: &str) -> Self {
        self.0.request_headers.push(Header::new(name, value));
        self
    }
    fn metadata_only(mut self) -> Self {
        self.0.metadata_only = true;
        self
    }
    fn build(self) -> Exchange {
        self.0
    }
}

fn analyzer(case_text: &str) -> Analyzer {
    let case = crate::case::parse(case_text, "test.toml").unwrap();
    Analyzer::new(Arc::new(case), Options::default())
}

fn rules_of(a: &mut Analyzer, x: Exchange) -> Vec<(RuleId, Severity)> {
    let mut v: Vec<_> = a
        .observe(&x)
        .findings
        .iter()
        .map(|f| (f.rule, f.severity))
        .collect();
    v.sort();
    v
}

#[test]
fn tracker_contact_on_metadata_only_connections() {
    let mut a = analyzer(CASE);
    let ads = || exchange("graph.facebook.com").metadata_only();
    assert_eq!(
        rules_of(&mut a, ads().at(5).build()),
        [(TrackerContactBeforeConsent, Severity::Low)]
    );
    assert_eq!(
        rules_of(&mut a, ads().at(15).build()),
        [(TrackerContactBeforeConsent, Severity::Low)],
        "after refusal"
    );
    assert_eq!(
        rules_of(&mut a, ads().at(30).build()),
        [],
        "after a grant of all"
    );
    // Not a known tracker, infrastructure, or the app itself: nothing.
    assert_eq!(
        rules_of(
            &mut a,
            exchange("api.unknown.example")
                .metadata_only()
                .at(5)
                .build()
        ),
        []
    );
    assert_eq!(
        rules_of(
            &mut a,
            exchange("x.fastly.net").metadata_only().at(5).build()
        ),
        []
    );
    assert_eq!(
        rules_of(
            &mut a,
            exchange("api.example-shop.com")
                .metadata_only()
                .at(5)
                .build()
        ),
        []
    );
}

#[test]
fn the_payload_of_a_protocol_no_parser_reads_is_judged_as_data() {
    let mut a = analyzer(CASE);
    // What the tap makes of a push SDK's own protocol: metadata only, its client
    // bytes kept. With the IMEI in them: the data rule, not mere contact.
    let push = |host: &str, s: i64, payload: &[u8]| {
        let mut x = exchange(host).metadata_only().at(s).build();
        x.method = String::new();
        x.path = String::new();
        x.scheme = "tcp".into();
        x.request_body = payload.to_vec();
        x
    };
    let login = b"\x00\x00\x00\x2b\x01{\"cmd\":\"login\",\"imei\":\"490154203237518\"}";
    let obs = a.observe(&push("ulogs.umeng.com", 5, login));
    let rules: Vec<_> = obs.findings.iter().map(|f| f.rule).collect();
    assert_eq!(rules, [ShareBeforeConsent]);
    let wheres: Vec<_> = obs.findings[0]
        .data
        .iter()
        .map(|d| d.location.as_str())
        .collect();
    assert_eq!(wheres, ["payload"]);
    // A payload that is JSON is walked like a JSON body: the path is named.
    let json = br#"{"cmd":"login","imei":"490154203237518"}"#;
    let obs = a.observe(&push("ulogs.umeng.com", 6, json));
    let wheres: Vec<_> = obs.findings[0]
        .data
        .iter()
        .map(|d| d.location.as_str())
        .collect();
    assert_eq!(wheres, ["payload:$.imei"]);
    // Encoded forms are found as in a body (here base64), after the refusal of
    // advertising: an ad network's payload.
    let b64 = b"HELLO NDkwMTU0MjAzMjM3NTE4 BYE";
    assert_eq!(
        rules_of(&mut a, push("sdk.e.qq.com", 15, b64)),
        [(ShareAfterRefusal, Severity::High)]
    );
    // Nothing personal in them: contact with a known tracker, as before.
    assert_eq!(
        rules_of(&mut a, push("sdk.e.qq.com", 16, b"\x00\x00\x00\x04ping")),
        [(TrackerContactBeforeConsent, Severity::Low)]
    );
}

#[test]
fn a_value_cut_between_two_parts_of_a_payload_is_judged_by_the_part_it_ends_in() {
    let mut a = analyzer(CASE);
    let part = |s: i64, lead: &[u8], payload: &[u8]| {
        let mut x = exchange("ulogs.umeng.com").metadata_only().at(s).build();
        x.method = String::new();
        x.path = String::new();
        x.scheme = "tcp".into();
        x.payload_lead = lead.to_vec();
        x.request_body = payload.to_vec();
        x
    };
    // The IMEI cut after "4901542": the first part alone has nothing.
    let first = b"\x00\x00\x00\x2b\x01{\"cmd\":\"login\",\"imei\":\"4901542";
    let rest = b"03237518\"}\x00\x00\x00\x04ping";
    let obs = a.observe(&part(5, b"", first));
    assert_eq!(
        obs.findings.iter().map(|f| f.rule).collect::<Vec<_>>(),
        [TrackerContactBeforeConsent]
    );
    // The second, carrying the first's end as its lead, has it.
    let obs = a.observe(&part(6, first, rest));
    assert_eq!(
        obs.findings.iter().map(|f| f.rule).collect::<Vec<_>>(),
        [ShareBeforeConsent]
    );
    let items: Vec<_> = obs.findings[0]
        .data
        .iter()
        .map(|d| (d.kind.as_str(), d.encoding.as_str(), d.location.as_str()))
        .collect();
    assert_eq!(items, [("imei", "plain", "payload-across-parts")]);
    // A value wholly in the lead belongs to the part before: not found again.
    let whole = b"{\"imei\":\"490154203237518\"}";
    let obs = a.observe(&part(7, whole, b"\x00\x00\x00\x04ping"));
    assert_eq!(
        obs.findings.iter().map(|f| f.rule).collect::<Vec<_>>(),
        [TrackerContactBeforeConsent]
    );
}

#[test]
fn personal_data_rules_end_to_end() {
    let mut a = analyzer(CASE);
    let imei = "imei=490154203237518";
    assert_eq!(
        rules_of(
            &mut a,
            exchange("ulogs.umeng.com").at(5).query(imei).build()
        ),
        [(ShareBeforeConsent, Severity::High)]
    );
    assert_eq!(
        rules_of(&mut a, exchange("sdk.e.qq.com").at(15).query(imei).build()),
        [(ShareAfterRefusal, Severity::High)]
    );
    assert_eq!(
        rules_of(
            &mut a,
            exchange("api.example-shop.com").at(5).query(imei).build()
        ),
        [(CollectBeforeConsent, Severity::Medium)]
    );
    // Phone is sensitive: two findings.
    assert_eq!(
        rules_of(
            &mut a,
            exchange("api.unknown.example")
                .at(6)
                .json(r#"{"tel":"+8613800138000"}"#)
                .build()
        ),
        [
            (ShareBeforeConsent, Severity::High),
            (SensitiveWithoutConsent, Severity::High)
        ]
    );
    // A resident id found by pattern only: one severity step lower.
    assert_eq!(
        rules_of(
            &mut a,
            exchange("api.unknown.example")
                .at(7)
                .json(r#"{"id":"11010519491231002X"}"#)
                .build()
        ),
        [
            (ShareBeforeConsent, Severity::Medium),
            (SensitiveWithoutConsent, Severity::Medium)
        ]
    );
    // No personal data, no finding; infrastructure is not flagged by default (but a
    // tenant's own site on a platform, `x.akamaihd.net`, is an unknown third party).
    assert_eq!(
        rules_of(
            &mut a,
            exchange("ulogs.umeng.com")
                .at(8)
                .json(r#"{"ts":1795860000}"#)
                .build()
        ),
        []
    );
    assert_eq!(
        rules_of(
            &mut a,
            exchange("cdnjs.cloudflare.com").at(9).query(imei).build()
        ),
        []
    );
    assert_eq!(
        rules_of(&mut a, exchange("x.akamaihd.net").at(9).query(imei).build()),
        [(ShareBeforeConsent, Severity::High)]
    );
}

#[test]
fn infrastructure_flagged_when_the_case_says_so() {
    let mut a = analyzer(&format!("{CASE}flag_infrastructure = true\n"));
    let x = exchange("cdnjs.cloudflare.com")
        .at(5)
        .query("imei=490154203237518")
        .build();
    let found = rules_of(&mut a, x);
    assert_eq!(found.len(), 1, "{found:?}");
}

#[test]
fn the_systems_own_services_are_not_judged_as_the_apps() {
    let mut a = analyzer(CASE);
    let imei = "imei=490154203237518";
    // Google Play services' check-in with the IMEI, before any decision: the
    // platform's collection, no finding, but counted as such with its data.
    let checkin = a.observe(
        &exchange("android.clients.google.com")
            .at(5)
            .query(imei)
            .build(),
    );
    assert!(checkin.findings.is_empty(), "{:?}", checkin.findings);
    assert!(checkin.platform && checkin.matches > 0);
    // The system's push channel, connection only: no tracker-contact finding.
    let push = a.observe(&exchange("mtalk.google.com").metadata_only().at(5).build());
    assert!(push.findings.is_empty() && push.platform);
    // The consent the system signals is not the app's.
    let gpc = a.observe(
        &exchange("connectivitycheck.gstatic.com")
            .at(6)
            .header("Sec-GPC", "1")
            .build(),
    );
    assert!(gpc.consent_events.is_empty() && gpc.platform);
    assert_eq!(
        rules_of(
            &mut a,
            exchange("graph.facebook.com").at(7).query(imei).build()
        ),
        [(ShareBeforeConsent, Severity::High)],
        "no GPC in force"
    );
    // Another Google host an app's SDK calls is judged as ever.
    let ads = a.observe(
        &exchange("googleads.g.doubleclick.net")
            .at(8)
            .query(imei)
            .build(),
    );
    assert!(!ads.platform && !ads.findings.is_empty());
}

#[test]
fn the_systems_own_services_are_judged_when_the_case_says_so() {
    let mut a = analyzer(&format!("{CASE}flag_platform = true\n"));
    let found = a.observe(
        &exchange("android.clients.google.com")
            .at(5)
            .query("imei=490154203237518")
            .build(),
    );
    assert!(!found.platform);
    let rules: Vec<_> = found
        .findings
        .iter()
        .map(|f| (f.rule, f.severity))
        .collect();
    assert_eq!(rules, [(ShareBeforeConsent, Severity::High)]);
    let dest = &found.findings[0].destination;
    assert_eq!(
        dest.entity.as_deref(),
        Some("Android system services (Google Play services)")
    );
    assert_eq!(dest.categories, ["platform"]);
    // As an unknown third party: advertising and analytics.
    assert_eq!(dest.purposes, [Purpose::Advertising, Purpose::Analytics]);
}

#[test]
fn a_platform_host_the_case_lists_as_first_party_is_the_apps() {
    let case = CASE.replace(
        r#"first_party = ["example-shop.com"]"#,
        r#"first_party = ["example-shop.com", "play.googleapis.com"]"#,
    );
    let mut a = analyzer(&case);
    let found = a.observe(
        &exchange("play.googleapis.com")
            .at(5)
            .query("imei=490154203237518")
            .build(),
    );
    assert!(!found.platform);
    assert_eq!(found.findings[0].rule, CollectBeforeConsent);
}

#[test]
fn excessive_frequency_once_per_burst() {
    let mut a = analyzer(CASE);
    let mut freq = 0;
    for s in 30..36 {
        let x = exchange("api.example-shop.com")
            .at(s)
            .query("imei=490154203237518")
            .build();
        freq += rules_of(&mut a, x)
            .iter()
            .filter(|(r, _)| *r == ExcessiveFrequency)
            .count();
    }
    assert_eq!(freq, 1);
}

#[test]
fn signal_ignored_when_the_traffic_itself_says_no() {
    let mut a = analyzer(CASE);
    let imei = "imei=490154203237518";
    // A page announces GPC; no personal data in it, but the signal is recorded.
    let banner = a.observe(
        &exchange("api.example-shop.com")
            .at(1)
            .header("Sec-GPC", "1")
            .build(),
    );
    assert!(banner.findings.is_empty());
    assert_eq!(banner.consent_events.len(), 1);
    // Data to an ad network afterwards: the signal denies advertising.
    let found = a.observe(&exchange("graph.facebook.com").at(2).query(imei).build());
    let f = found
        .findings
        .iter()
        .find(|f| f.rule == SignalIgnored)
        .expect("signal-ignored");
    assert_eq!(f.consent.state, "refused");
    assert!(f.summary.contains("Sec-GPC: 1"), "{}", f.summary);
    assert_eq!(
        f.consent.event.as_ref().map(|e| e.source),
        Some(EventSource::Wire)
    );
    // The first party is not what GPC restricts; analytics-only receivers neither.
    assert_eq!(
        rules_of(
            &mut a,
            exchange("api.example-shop.com").at(3).query(imei).build()
        ),
        [(CollectBeforeConsent, Severity::Medium)]
    );
    assert_eq!(
        rules_of(
            &mut a,
            exchange("api2.amplitude.com").at(4).query(imei).build()
        ),
        [(ShareBeforeConsent, Severity::High)]
    );
}

#[test]
fn a_signal_in_the_request_itself_is_in_force_for_it() {
    let mut a = analyzer(CASE);
    // Consent Mode says analytics denied in the very request that carries the IMEI.
    let x = exchange("app-measurement.com")
        .at(2)
        .query("gcs=G100&imei=490154203237518")
        .build();
    let rules: Vec<RuleId> = a.observe(&x).findings.iter().map(|f| f.rule).collect();
    assert!(rules.contains(&SignalIgnored), "{rules:?}");
    // Granted by the signal: no signal-ignored.
    let x = exchange("app-measurement.com")
        .at(3)
        .query("gcs=G111&imei=490154203237518")
        .build();
    let rules: Vec<RuleId> = a.observe(&x).findings.iter().map(|f| f.rule).collect();
    assert!(!rules.contains(&SignalIgnored), "{rules:?}");
}

#[test]
fn tcf_banner_denies_then_ad_request_is_signal_ignored() {
    let mut a = analyzer(CASE);
    let mut tc = crate::consent::tcf::encode::sample();
    tc.purpose_consents = vec![1]; // storage only: advertising purposes denied
    let tc = crate::consent::tcf::encode::encode(&tc, false);
    let banner = a.observe(
        &exchange("cmp.example-shop.com")
            .at(1)
            .query(&format!("gdpr=1&gdpr_consent={tc}"))
            .build(),
    );
    assert!(!banner.consent_events.is_empty());
    let ad = exchange("sdk.e.qq.com")
        .at(2)
        .query("muid=490154203237518")
        .build();
    let f = a.observe(&ad);
    let ignored = f
        .findings
        .iter()
        .find(|f| f.rule == SignalIgnored)
        .expect("signal-ignored");
    assert!(ignored.summary.contains("TC string"), "{}", ignored.summary);
    assert!(
        ignored.summary.contains("query:gdpr_consent"),
        "{}",
        ignored.summary
    );
    // A malformed TC string is an anomaly, not a decision.
    let bad = a.observe(
        &exchange("cmp.example-shop.com")
            .at(3)
            .query("gdpr_consent=%%%garbage")
            .build(),
    );
    assert!(
        bad.anomalies
            .iter()
            .any(|x| x.kind == "consent-signal-malformed"),
        "{:?}",
        bad.anomalies
    );
}

#[test]
fn cmp_refusal_then_ad_request_is_signal_ignored() {
    let mut a = analyzer(CASE);
    // The dialog's "Decline" is logged with Cookiebot: a wire refusal of everything.
    let banner = a.observe(
        &exchange("consent.cookiebot.com")
            .at(1)
            .path("/logconsent.ashx?action=decline&nocache=1&cbid=c1&cbt=leveloptin")
            .build(),
    );
    assert_eq!(banner.consent_events.len(), 1, "{banner:?}");
    let e = &banner.consent_events[0];
    assert_eq!(
        (e.decision, e.source),
        (Decision::Refused, EventSource::Wire)
    );
    assert!(e.purposes.is_empty());
    let evidence = e.evidence.as_deref().unwrap_or("");
    assert!(
        evidence.contains("Cookiebot")
            && evidence.contains("x-1")
            && !evidence.contains("heuristic"),
        "{evidence}"
    );
    let f = a.observe(
        &exchange("sdk.e.qq.com")
            .at(2)
            .query("muid=490154203237518")
            .build(),
    );
    let ignored = f
        .findings
        .iter()
        .find(|f| f.rule == SignalIgnored)
        .expect("signal-ignored");
    assert!(ignored.summary.contains("Cookiebot"), "{}", ignored.summary);
    assert!(
        ignored.summary.contains("cmp:Cookiebot"),
        "{}",
        ignored.summary
    );
}

#[test]
fn heuristic_cmp_entries_say_so_and_unreadable_calls_are_reported() {
    let mut a = analyzer(CASE);
    let deny = a.observe(
        &exchange("consent-api.service.consent.usercentrics.eu")
            .at(1)
            .path("/consent/uw/3")
            .json(r#"{"action":"onDenyAllServices"}"#)
            .build(),
    );
    assert_eq!(deny.consent_events.len(), 1, "{deny:?}");
    let f = a.observe(
        &exchange("sdk.e.qq.com")
            .at(2)
            .query("muid=490154203237518")
            .build(),
    );
    let ignored = f
        .findings
        .iter()
        .find(|f| f.rule == SignalIgnored)
        .expect("signal-ignored");
    assert!(
        ignored.summary.contains("(heuristic)"),
        "{}",
        ignored.summary
    );
    // A receipt whose contents cannot be read: no decision, an anomaly saying so.
    let receipt = a.observe(
        &exchange("privacyportal-eu.onetrust.com")
            .at(3)
            .path("/request/v1/consentreceipts")
            .json(r#"{"identifier":"u","purposes":[{"Id":"p1"}]}"#)
            .build(),
    );
    assert!(receipt.consent_events.is_empty());
    assert!(
        receipt
            .anomalies
            .iter()
            .any(|x| x.kind == "cmp-decision-unread" && x.detail.contains("OneTrust")),
        "{:?}",
        receipt.anomalies
    );
}

fn tc_string(purposes: &[u8], created: Timestamp) -> String {
    let mut tc = crate::consent::tcf::encode::sample();
    tc.purpose_consents = purposes.to_vec();
    tc.created_ds = u64::try_from(created.micros() / 100_000).unwrap();
    crate::consent::tcf::encode::encode(&tc, false)
}

#[test]
fn consent_predates_decision() {
    let mut a = analyzer(CASE);
    // Created before the user's first decision (at 10 s), though sent later.
    let early = tc_string(&[1, 2, 3, 4], sec(-3600));
    let x = exchange("cmp.example-shop.com")
        .at(12)
        .query(&format!("gdpr_consent={early}"))
        .build();
    let f = a.observe(&x).findings;
    assert_eq!(
        f.iter().map(|f| f.rule).collect::<Vec<_>>(),
        [ConsentPredatesDecision],
        "{f:?}"
    );
    assert!(
        f[0].summary.contains("before the user's first decision"),
        "{}",
        f[0].summary
    );
    // Created after the refusal but granting advertising while the refusal stands.
    let after = tc_string(&[1, 2, 3, 4], sec(11));
    let x = exchange("cmp.example-shop.com")
        .at(15)
        .query(&format!("gdpr_consent={after}"))
        .build();
    let f = a.observe(&x).findings;
    assert_eq!(
        f.iter().map(|f| f.rule).collect::<Vec<_>>(),
        [ConsentPredatesDecision]
    );
    assert!(
        f[0].summary.contains("although the user refused"),
        "{}",
        f[0].summary
    );
    // Created just before the decision (device clock skew within the grace window).
    let mut b = analyzer(CASE);
    let skewed = tc_string(&[1, 2, 3, 4], sec(10).add_millis(-400));
    let x = exchange("cmp.example-shop.com")
        .at(21)
        .query(&format!("gdpr_consent={skewed}"))
        .build();
    assert!(b
        .observe(&x)
        .findings
        .iter()
        .all(|f| f.rule != ConsentPredatesDecision));
    // A signal that agrees with the user (advertising refused) is fine.
    let agrees = tc_string(&[1, 8, 9], sec(11));
    let x = exchange("cmp.example-shop.com")
        .at(16)
        .query(&format!("gdpr_consent={agrees}"))
        .build();
    assert!(a.observe(&x).findings.is_empty());
}

#[test]
fn consent_signal_missing_from_ad_requests() {
    let mut a = analyzer(CASE);
    let bid = r#"{"id":"b1","imp":[{"id":"1"}],"app":{"bundle":"com.example.shop"}}"#;
    // Before any decision: nothing to withhold.
    assert_eq!(
        rules_of(&mut a, exchange("sdk.e.qq.com").at(5).json(bid).build()),
        []
    );
    // After the refusal of advertising: the bid request should say so.
    assert_eq!(
        rules_of(&mut a, exchange("sdk.e.qq.com").at(15).json(bid).build()),
        [(ConsentSignalMissing, Severity::Medium)]
    );
    // With a signal, it is not missing.
    let with = r#"{"id":"b2","imp":[{"id":"1"}],"regs":{"ext":{"gdpr":1}},"user":{"ext":{"consent":"x"}}}"#;
    let rules: Vec<RuleId> = a
        .observe(&exchange("sdk.e.qq.com").at(16).json(with).build())
        .findings
        .iter()
        .map(|f| f.rule)
        .collect();
    assert!(!rules.contains(&ConsentSignalMissing), "{rules:?}");
    // Not an ad request: not expected to carry one.
    assert_eq!(
        rules_of(
            &mut a,
            exchange("api2.amplitude.com").at(17).json(bid).build()
        ),
        []
    );
}

#[test]
fn repeated_signals_record_one_decision() {
    let mut a = analyzer(CASE);
    for s in 1..=5 {
        a.observe(
            &exchange("api.example-shop.com")
                .at(s)
                .header("Sec-GPC", "1")
                .build(),
        );
    }
    assert_eq!(a.wire_timeline().events("dev").len(), 1);
    // A change is recorded: US Privacy without opt-out grants advertising again.
    a.observe(
        &exchange("api.example-shop.com")
            .at(6)
            .query("us_privacy=1YNN")
            .build(),
    );
    assert_eq!(a.wire_timeline().events("dev").len(), 2);
}

#[test]
fn tcf_vendor_without_consent_is_signal_ignored() {
    let mut a = analyzer(CASE);
    // All purposes consented, but only for vendors 2, 6, 8 and 755 (Google).
    let all = tc_string(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], sec(0));
    a.observe(
        &exchange("cmp.example-shop.com")
            .at(1)
            .query(&format!("gdpr_consent={all}"))
            .build(),
    );
    let imei = "imei=490154203237518";
    // Criteo (IAB vendor 91) has no consent in the TC string.
    let found = a.observe(&exchange("bidder.criteo.com").at(3).query(imei).build());
    let f = found
        .findings
        .iter()
        .find(|f| f.rule == SignalIgnored)
        .expect("vendor-level signal-ignored");
    assert!(f.summary.contains("IAB vendor 91"), "{}", f.summary);
    // Google Ads (755) has consent: no signal-ignored.
    let found = a.observe(
        &exchange("securepubads.g.doubleclick.net")
            .at(4)
            .query(imei)
            .build(),
    );
    assert!(
        found.findings.iter().all(|f| f.rule != SignalIgnored),
        "{:?}",
        found.findings
    );
}

#[test]
fn signals_that_contradict_the_user_are_conflicts() {
    let mut a = analyzer(CASE);
    // No manual decision yet: nothing to contradict.
    let o = a.observe(
        &exchange("api.example-shop.com")
            .at(5)
            .header("Sec-GPC", "1")
            .build(),
    );
    assert!(o.consent_conflicts.is_empty());
    // The user granted everything at 20 s; a GPC refusal after that disagrees.
    let o = a.observe(
        &exchange("api.example-shop.com")
            .at(25)
            .query("us_privacy=1YYN")
            .build(),
    );
    assert_eq!(o.consent_conflicts.len(), 1, "{:?}", o.consent_conflicts);
    assert!(
        o.consent_conflicts[0].contains("advertising refused"),
        "{}",
        o.consent_conflicts[0]
    );
}

#[test]
fn a_position_the_case_does_not_list_is_still_found() {
    let mut a = analyzer(CASE);
    let x = exchange("api.unknown.example")
        .at(5)
        .json(r#"{"lat":48.8566,"lng":2.3522}"#)
        .build();
    let o = a.observe(&x);
    let rules: Vec<(RuleId, Severity)> = o.findings.iter().map(|f| (f.rule, f.severity)).collect();
    assert_eq!(
        rules,
        [
            (ShareBeforeConsent, Severity::Medium),
            (SensitiveWithoutConsent, Severity::Medium)
        ]
    );
    let d = &o.findings[0].data[0];
    assert_eq!(
        (d.kind.as_str(), d.location.as_str(), d.confidence),
        ("location", "body:$.lat", Confidence::Pattern)
    );
}

#[test]
fn a_repeated_signal_is_in_force_again_after_another_changed_the_state() {
    let mut a = analyzer(CASE);
    let imei = "imei=490154203237518";
    // GPC (refuses advertising), then US Privacy without opt-out (grants it) ...
    a.observe(
        &exchange("api.example-shop.com")
            .at(1)
            .header("Sec-GPC", "1")
            .build(),
    );
    a.observe(
        &exchange("api.example-shop.com")
            .at(2)
            .query("us_privacy=1YNN")
            .build(),
    );
    // ... then GPC again, in the very request that sends data to an ad network.
    let o = a.observe(
        &exchange("sdk.e.qq.com")
            .at(3)
            .header("Sec-GPC", "1")
            .query(imei)
            .build(),
    );
    assert!(
        o.findings.iter().any(|f| f.rule == SignalIgnored),
        "{:?}",
        o.findings
    );
}

/// [`most_precise`] as it was, copying each item it keeps: the model the moving
/// version must agree with.
fn most_precise_model(all: &[DataItem]) -> Vec<DataItem> {
    let mut kept = Vec::new();
    for (i, d) in all.iter().enumerate() {
        let next_place = all[i + 1..]
            .iter()
            .take_while(|o| o.kind == d.kind && o.encoding == d.encoding)
            .find(|o| o.location != d.location);
        let refined = next_place.is_some_and(|o| {
            o.location
                .strip_prefix(d.location.as_str())
                .is_some_and(|rest| rest.starts_with(['$', '&']))
        });
        if !refined {
            kept.push(d.clone());
        }
    }
    kept
}

proptest::proptest! {
    /// Same items kept, in the same order, as the copying model, over sorted sets
    /// whose places nest (`body`, `body$.a`, `body$.a&b` …) and repeat.
    #[test]
    fn most_precise_keeps_what_the_copying_model_kept(
        raw in proptest::collection::vec(
            (
                0u8..3,
                0u8..2,
                proptest::collection::vec(0u8..5, 0..4),
                proptest::bool::ANY,
                proptest::bool::ANY,
            ),
            0..24,
        )
    ) {
        let pieces = ["body", "$.a", "&b", "$.a.c", "x"];
        let set: BTreeSet<DataItem> = raw
            .into_iter()
            .map(|(kind, enc, place, exact, sensitive)| DataItem {
                kind: ["imei", "email", "adid"][kind as usize].to_string(),
                encoding: ["plain", "md5"][enc as usize].to_string(),
                location: place.iter().map(|&p| pieces[p as usize]).collect(),
                confidence: if exact { Confidence::Exact } else { Confidence::Pattern },
                sensitive,
                value: None,
            })
            .collect();
        let all: Vec<DataItem> = set.into_iter().collect();
        proptest::prop_assert_eq!(most_precise(all.clone()), most_precise_model(&all));
    }
}

#[test]
fn the_data_probe_finds_a_case_value_in_a_dns_name() {
    let a = analyzer(CASE);
    let probe = a.data_probe();
    // The IMEI as a label, and its MD5 (hex) as one: what the analysis would report.
    let md5 = format!("{:x}", md5::Md5::digest(b"490154203237518"));
    for carrying in [
        "490154203237518.t.example.net".to_string(),
        format!("{md5}.beacon.example.net"),
    ] {
        assert!((probe.0)(carrying.as_bytes()), "{carrying}");
    }
    for plain in [
        "ulogs.umeng.com",
        "example.net",
        "",
        "49015420323751.x.example.net",
    ] {
        assert!(!(probe.0)(plain.as_bytes()), "{plain}");
    }
}

/// A text body of `len` bytes with `needle` at `at`.
fn long_body(len: usize, needle: &[u8], at: usize) -> Vec<u8> {
    let mut body: Vec<u8> = b"level=info msg=heartbeat seq=0000000\n"
        .iter()
        .copied()
        .cycle()
        .take(len)
        .collect();
    body[at..at + needle.len()].copy_from_slice(needle);
    body
}

/// Incompressible bytes, the same every run (xorshift).
struct Noise(u64);

impl Noise {
    fn new() -> Noise {
        Noise(0x2545_f491_4f6c_dd1d)
    }

    /// Appends the next `n` bytes to `out`.
    fn fill(&mut self, out: &mut Vec<u8>, n: usize) {
        for _ in 0..n {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            out.push(self.0 as u8);
        }
    }
}

#[test]
fn values_decoded_out_of_the_headers_leave_no_gap_before_the_search_past_the_cap() {
    // A header's compressed value once spent the message's decompression budget before
    // the body's coding did: the analysis then decoded the body to less than its output
    // cap, the search past the cap started at the cap, and what lay between was
    // searched by neither. Small limits keep the bodies small.
    use base64::Engine;
    use std::io::Write;
    let limits = decode::Limits {
        max_body_bytes: 64 << 10,
        max_decoded_bytes: 256 << 10,
        ..decode::Limits::default()
    };
    let gzip = |data: &[u8]| {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(data).unwrap();
        gz.finish().unwrap()
    };
    // 1 MiB of 32 KiB pieces, each 4 KiB of noise then log lines: about 8:1 in gzip,
    // so the 64 KiB examined decode past the 256 KiB cap and the rest is the tail.
    let mut plain = Vec::new();
    let mut noise = Noise::new();
    while plain.len() < 1 << 20 {
        noise.fill(&mut plain, 4096);
        plain.extend_from_slice(&long_body(28 << 10, b"", 0));
    }
    // 8 KiB before the cap, in a piece's log lines.
    let at = (256 << 10) - (8 << 10);
    plain[at..at + 21].copy_from_slice(b" imei=490154203237518");
    let mut x = exchange("graph.facebook.com").at(5).build();
    x.method = "POST".into();
    x.request_body = gzip(&plain);
    assert!(x.request_body.len() > 2 * limits.max_body_bytes);
    x.request_headers
        .push(Header::new("Content-Encoding", "gzip"));
    // 16 KiB decoded out of a header: base64 of gzip, as SDKs send a packed context.
    let packed = gzip(&long_body(16 << 10, b"", 0));
    let value = base64::engine::general_purpose::STANDARD.encode(packed);
    x.request_headers.push(Header::new("X-Context", value));
    let case = crate::case::parse(CASE, "test.toml").unwrap();
    let options = Options {
        limits,
        ..Options::default()
    };
    let obs = Analyzer::new(Arc::new(case), options).observe(&x);
    assert_eq!(obs.findings.len(), 1, "{:?}", obs.anomalies);
    assert_eq!(first_finding_places(&obs), ["body"]);
    // The body decoded to the whole cap, where the search past it starts.
    assert!(
        obs.anomalies
            .iter()
            .any(|a| a.detail.contains("decompresses past 262144 bytes")),
        "{:?}",
        obs.anomalies
    );
    // The body had the budget first; the header's value says it found none left.
    let spent = obs
        .anomalies
        .iter()
        .find(|a| a.detail.contains("budget"))
        .unwrap();
    assert_eq!(spent.kind, "decompression-limit");
    assert!(
        spent.detail.contains("header:X-Context"),
        "{}",
        spent.detail
    );
}

/// Where the first finding's data items were found.
fn first_finding_places(obs: &Observation) -> Vec<&str> {
    obs.findings[0]
        .data
        .iter()
        .map(|d| d.location.as_str())
        .collect()
}

#[test]
fn a_value_of_a_body_in_two_codings_is_found_once_around_where_the_analysis_stopped() {
    // `Content-Encoding: gzip, br` held past what the analysis examines (small limits
    // keep it small): the analysis undoes br on the 8 KiB examined, up to its cap, then
    // gzip on what that gave, within the budget left; the search past it undoes both
    // as the rest passes and starts where the analysis stopped in the gzip-decoded
    // text. A value just before, across and just after that point is found once, by
    // one or the other.
    use crate::decode::content::{self, tests::brotli, Coding, Decoded};
    use std::io::Write;
    let limits = decode::Limits {
        max_body_bytes: 8 << 10,
        max_decoded_bytes: 3 << 19,
        ..decode::Limits::default()
    };
    let case = Arc::new(crate::case::parse(CASE, "test.toml").unwrap());
    let analyzer = || {
        Analyzer::new(
            Arc::clone(&case),
            Options {
                limits: limits.clone(),
                ..Options::default()
            },
        )
    };
    // Log lines (br makes its 8 KiB of them more than 1 MiB) in gzip's stored blocks,
    // so that where the analysis stops does not depend on where the value is; then
    // noise, so that the body is longer than what the analysis examines.
    let encode = |value_at: usize| {
        let mut plain = long_body(1_700_000, b" imei=490154203237518", value_at - 6);
        Noise::new().fill(&mut plain, 48 << 10);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
        gz.write_all(&plain).unwrap();
        brotli(&gz.finish().unwrap())
    };
    // Where the analysis stops in the decoded text, as `decode` works it out: br gives
    // its 1 MiB cap (8 KiB times 100 is less than the 1 MiB any body may decode to),
    // which leaves gzip the half MiB left of the 1.5 MiB budget.
    let stop = 1 << 19;
    let analysed = |body: &[u8]| {
        let examined = &body[..limits.max_body_bytes];
        let cap0 = content::output_cap(examined.len(), limits.max_decoded_bytes, limits.max_ratio);
        let Decoded::Limited(gzipped) = content::decode(Coding::Brotli, examined, cap0) else {
            panic!("br of the examined part not limited");
        };
        let cap1 = content::output_cap(
            gzipped.len(),
            limits.max_decoded_bytes - gzipped.len(),
            limits.max_ratio,
        );
        match content::decode(Coding::Gzip, &gzipped, cap1) {
            Decoded::Limited(text) => text.len(),
            other => panic!("{other:?}"),
        }
    };
    let value_len = 15_i64;
    for offset in [-20, -15, -14, -1, 0, 1] {
        let value_at = (stop as i64 + offset) as usize;
        let body = encode(value_at);
        assert!(body.len() > 2 * limits.max_body_bytes, "{}", body.len());
        assert_eq!(analysed(&body), stop);
        let mut x = exchange("graph.facebook.com").at(5).build();
        x.method = "POST".into();
        x.request_body = body;
        x.request_headers
            .push(Header::new("Content-Encoding", "gzip, br"));
        let obs = analyzer().observe(&x);
        assert_eq!(
            obs.findings.len(),
            1,
            "offset {offset}: {:?}",
            obs.anomalies
        );
        // Wholly before where the analysis stopped: the analysis's.
        let expected = if offset + value_len <= 0 {
            "body".to_string()
        } else {
            format!("body-beyond-cap:gzip+br:{value_at}")
        };
        assert_eq!(first_finding_places(&obs), [expected], "offset {offset}");
        let limit = obs
            .anomalies
            .iter()
            .find(|a| a.kind == "body-size-limit")
            .unwrap();
        assert!(
            limit.detail.contains("it was gzip+br-decoded as it passed"),
            "{}",
            limit.detail
        );
    }
    // The same list in two header lines.
    let value_at = stop + 1000;
    let mut x = exchange("graph.facebook.com").at(5).build();
    x.method = "POST".into();
    x.request_body = encode(value_at);
    x.request_headers
        .push(Header::new("Content-Encoding", "gzip"));
    x.request_headers
        .push(Header::new("Content-Encoding", "br"));
    let obs = analyzer().observe(&x);
    assert_eq!(
        first_finding_places(&obs),
        [format!("body-beyond-cap:gzip+br:{value_at}")]
    );
}

#[test]
fn a_body_held_past_what_the_analysis_examines_is_searched_to_its_end() {
    // A HAR entry's body is held up to 64 MiB; the analysis examines 8 MiB of it,
    // and the rest is searched for the case's known values.
    let max = decode::DEFAULT_MAX_BODY_BYTES;
    let at = max + 500_000;
    let body = long_body(max + (1 << 20), b"imei=490154203237518", at);
    let mut x = exchange("graph.facebook.com").at(5).build();
    x.method = "POST".into();
    x.request_body = body.clone();
    let obs = analyzer(CASE).observe(&x);
    let wheres = first_finding_places(&obs);
    assert_eq!(wheres, [format!("body-beyond-cap:{}", at + 5)]);
    let limit = obs
        .anomalies
        .iter()
        .find(|a| a.kind == "body-size-limit")
        .unwrap();
    assert!(
        limit.detail.ends_with(&format!(
            "but its {} bytes were searched for the case's known values as they passed: 1 hit(s)",
            (1 << 20)
        )),
        "{}",
        limit.detail
    );
    // Sent gzip-encoded (stored blocks, so the encoded body is longer than 8 MiB):
    // searched decoded, at its offset in the decoded body.
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
    gz.write_all(&body).unwrap();
    x.request_body = gz.finish().unwrap();
    assert!(x.request_body.len() > max);
    x.request_headers
        .push(Header::new("Content-Encoding", "gzip"));
    let obs = analyzer(CASE).observe(&x);
    let wheres = first_finding_places(&obs);
    assert_eq!(wheres, [format!("body-beyond-cap:gzip:{}", at + 5)]);
    // A body no longer than what is examined is not searched twice.
    x.request_headers.clear();
    x.request_body = long_body(max, b"imei=490154203237518", max - 100);
    let obs = analyzer(CASE).observe(&x);
    let wheres = first_finding_places(&obs);
    assert_eq!(wheres, ["body"]);
    assert!(obs.anomalies.is_empty(), "{:?}", obs.anomalies);
}
