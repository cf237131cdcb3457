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
        tenant: false,
    }
}

/// `events`: (time in ms, decision, purposes); then a send at `send_ms`.
fn verdict(
    events: &[(i64, Decision, &[Purpose])],
    send_ms: i64,
    d: &Destination,
) -> (Option<RuleId>, bool, State) {
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
    let table: &[(&str, &[(i64, Decision, &[Purpose])], i64, &Destination, Option<RuleId>, bool)] = &[
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
    let table: &[(&str, &[(i64, Decision, &[Purpose])], i64, Option<RuleId>, State)] = &[
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
