//! A finding's JSON written without serde, byte for byte what `serde_json` writes for
//! [`Finding`] (the tests hold the two together).
//!
//! Why: the proxy's analysis thread encodes every finding once, for the terminal and
//! the case store; through serde that was ~12 000 instructions for a 720-byte finding
//! (a table lookup per string byte, a `Serializer` call per field). Strings go through
//! [`crate::store::json_string`] (runs copied whole), times through the stack-formatted
//! [`crate::timestamp::Timestamp::rfc3339`].

use super::finding::{ConsentInfo, DataItem, EventRef, Finding};
use crate::consent::EventSource;
use crate::parties::{Destination, Party};
use crate::pii::Confidence;
use crate::store::json_string::{push as string, push_strings as strings, push_timestamp};

/// The findings of one exchange as JSON, in one buffer reused from exchange to
/// exchange (the consumer prints and stores the same bytes).
#[derive(Debug, Default)]
pub struct Encoded {
    bytes: Vec<u8>,
    /// Where each finding's JSON ends in `bytes`.
    ends: Vec<usize>,
}

impl Encoded {
    /// Encodes `findings`, replacing what was held.
    pub fn encode(&mut self, findings: &[Finding]) {
        self.bytes.clear();
        self.ends.clear();
        for f in findings {
            write(&mut self.bytes, f);
            self.ends.push(self.bytes.len());
        }
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The JSON of finding `i`.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)?;
        let start = match i.checked_sub(1) {
            Some(before) => *self.ends.get(before)?,
            None => 0,
        };
        self.bytes.get(start..end)
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }
}

/// Appends `f` as `serde_json::to_writer` would.
pub fn write(out: &mut Vec<u8>, f: &Finding) {
    out.extend_from_slice(b"{\"id\":");
    string(out, &f.id);
    out.extend_from_slice(b",\"rule\":\"");
    out.extend_from_slice(f.rule.as_str().as_bytes());
    out.extend_from_slice(b"\",\"severity\":\"");
    out.extend_from_slice(f.severity.as_str().as_bytes());
    out.extend_from_slice(b"\",\"borderline\":");
    boolean(out, f.borderline);
    out.extend_from_slice(b",\"at\":");
    push_timestamp(out, f.at);
    out.extend_from_slice(b",\"device\":");
    string(out, &f.device);
    if let Some(a) = &f.app {
        out.extend_from_slice(b",\"app\":");
        a.write_json(out);
    }
    out.extend_from_slice(b",\"exchange\":");
    string(out, &f.exchange);
    out.extend_from_slice(b",\"destination\":");
    destination(out, &f.destination);
    out.extend_from_slice(b",\"data\":[");
    for (i, d) in f.data.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        data_item(out, d);
    }
    out.extend_from_slice(b"],\"consent\":");
    consent(out, &f.consent);
    out.extend_from_slice(b",\"citations\":");
    strings(out, &f.citations);
    out.extend_from_slice(b",\"summary\":");
    string(out, &f.summary);
    out.push(b'}');
}

fn boolean(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

/// The fields `Destination` serializes (the others are `#[serde(skip)]`).
fn destination(out: &mut Vec<u8>, d: &Destination) {
    out.extend_from_slice(b"{\"host\":");
    string(out, &d.host);
    out.extend_from_slice(b",\"site\":");
    string(out, &d.site);
    out.extend_from_slice(b",\"party\":\"");
    out.extend_from_slice(match d.party {
        Party::First => b"first".as_slice(),
        Party::Third => b"third".as_slice(),
    });
    out.push(b'"');
    if let Some(entity) = &d.entity {
        out.extend_from_slice(b",\"entity\":");
        string(out, entity);
    }
    if let Some(platform) = &d.hosted_by {
        out.extend_from_slice(b",\"hosted_by\":");
        string(out, platform);
    }
    out.extend_from_slice(b",\"categories\":");
    strings(out, &d.categories);
    out.push(b'}');
}

fn data_item(out: &mut Vec<u8>, d: &DataItem) {
    out.extend_from_slice(b"{\"type\":");
    string(out, &d.kind);
    out.extend_from_slice(b",\"encoding\":");
    string(out, &d.encoding);
    out.extend_from_slice(b",\"where\":");
    string(out, &d.location);
    out.extend_from_slice(b",\"confidence\":\"");
    out.extend_from_slice(match d.confidence {
        Confidence::Exact => b"exact".as_slice(),
        Confidence::Pattern => b"pattern".as_slice(),
    });
    out.extend_from_slice(b"\",\"sensitive\":");
    boolean(out, d.sensitive);
    if let Some(v) = &d.value {
        out.extend_from_slice(b",\"value\":");
        string(out, v);
    }
    out.push(b'}');
}

fn consent(out: &mut Vec<u8>, c: &ConsentInfo) {
    out.extend_from_slice(b"{\"purpose\":");
    string(out, &c.purpose);
    out.extend_from_slice(b",\"state\":");
    string(out, &c.state);
    out.extend_from_slice(b",\"event\":");
    match &c.event {
        Some(e) => event(out, e),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
}

fn event(out: &mut Vec<u8>, e: &EventRef) {
    out.extend_from_slice(b"{\"at\":");
    push_timestamp(out, e.at);
    out.extend_from_slice(b",\"decision\":\"");
    out.extend_from_slice(e.decision.as_str().as_bytes());
    out.extend_from_slice(b"\",\"purposes\":[");
    for (i, p) in e.purposes.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(p.as_str().as_bytes());
        out.push(b'"');
    }
    out.extend_from_slice(b"],\"source\":\"");
    out.extend_from_slice(match e.source {
        EventSource::Manual => b"manual".as_slice(),
        EventSource::Wire => b"wire".as_slice(),
    });
    out.push(b'"');
    if let Some(note) = &e.note {
        out.extend_from_slice(b",\"note\":");
        string(out, note);
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::{Decision, Purpose};
    use crate::rules::{RuleId, Severity};
    use crate::timestamp::Timestamp;
    use proptest::prelude::*;

    /// Strings with what JSON escapes (quotes, backslashes, control bytes, DEL) and
    /// non-ASCII among plain text.
    fn text() -> impl Strategy<Value = String> {
        proptest::string::string_regex("([a-z0-9 ._:/-]|\"|\\\\|[\\x00-\\x1f]|\\x7f|é|😀){0,24}")
            .expect("a valid regex")
    }

    /// Any instant, outside the stack formatter's years too (its `Display` fallback).
    fn time() -> impl Strategy<Value = Timestamp> {
        prop_oneof![
            (0i64..4_102_444_800_000_000).prop_map(Timestamp),
            any::<i64>().prop_map(Timestamp),
        ]
    }

    fn data_item() -> impl Strategy<Value = DataItem> {
        (
            text(),
            text(),
            text(),
            any::<bool>(),
            any::<bool>(),
            proptest::option::of(text()),
        )
            .prop_map(
                |(kind, encoding, location, exact, sensitive, value)| DataItem {
                    kind,
                    encoding,
                    location,
                    confidence: if exact {
                        Confidence::Exact
                    } else {
                        Confidence::Pattern
                    },
                    sensitive,
                    value,
                },
            )
    }

    fn event() -> impl Strategy<Value = EventRef> {
        (
            time(),
            0usize..3,
            proptest::collection::vec(0usize..Purpose::ALL.len(), 0..6),
            any::<bool>(),
            proptest::option::of(text()),
        )
            .prop_map(|(at, d, purposes, manual, note)| EventRef {
                at,
                decision: [Decision::Granted, Decision::Refused, Decision::Withdrawn][d],
                purposes: purposes.into_iter().map(|i| Purpose::ALL[i]).collect(),
                source: if manual {
                    EventSource::Manual
                } else {
                    EventSource::Wire
                },
                note,
            })
    }

    fn destination() -> impl Strategy<Value = Destination> {
        (
            text(),
            text(),
            any::<bool>(),
            proptest::option::of(text()),
            proptest::option::of(text()),
            proptest::collection::vec(text(), 0..4),
            any::<bool>(),
        )
            .prop_map(
                |(host, site, first, entity, hosted_by, categories, known)| Destination {
                    host,
                    site,
                    party: if first { Party::First } else { Party::Third },
                    entity,
                    hosted_by,
                    categories,
                    // Not serialized: set so that skipping them is what is tested.
                    purposes: vec![Purpose::Analytics],
                    known,
                    infrastructure: known,
                    platform: !known,
                    tenant: !known,
                    iab_vendor_id: known.then_some(755),
                },
            )
    }

    prop_compose! {
        fn finding()(
            (id, device, exchange, summary) in (text(), text(), text(), text()),
            rule in 0usize..RuleId::ALL.len(),
            severity in 0usize..3,
            borderline in any::<bool>(),
            at in time(),
            destination in destination(),
            data in proptest::collection::vec(data_item(), 0..4),
            (purpose, state, event) in (text(), text(), proptest::option::of(event())),
            citations in proptest::collection::vec(text(), 0..7),
            app in proptest::option::of((
                any::<i32>(),
                proptest::option::of(text()),
                proptest::option::of(text()),
                proptest::option::of(any::<bool>()),
            )),
        ) -> Finding {
            Finding {
                id,
                rule: RuleId::ALL[rule],
                severity: [Severity::Low, Severity::Medium, Severity::High][severity],
                borderline,
                at,
                device,
                app: app.map(|(uid, package, name, under_test)| crate::exchange::AppRef {
                    uid,
                    package,
                    name,
                    under_test,
                }),
                exchange,
                destination: std::sync::Arc::new(destination),
                data,
                consent: ConsentInfo {
                    purpose: purpose.into(),
                    state: state.into(),
                    event,
                },
                citations: citations.into(),
                summary,
            }
        }
    }

    proptest! {
        #[test]
        fn writes_what_serde_json_writes(f in finding()) {
            let mut ours = b"prefix".to_vec();
            write(&mut ours, &f);
            let theirs = serde_json::to_vec(&f).expect("a finding serializes");
            prop_assert_eq!(String::from_utf8_lossy(&ours[6..]), String::from_utf8_lossy(&theirs));
            prop_assert_eq!(&ours[..6], b"prefix");
        }
    }

    proptest! {
        #[test]
        fn encoded_holds_each_finding_apart(list in proptest::collection::vec(finding(), 0..4)) {
            let mut e = Encoded::default();
            // Reused: what an earlier exchange left must not show.
            e.encode(&list[..list.len() / 2]);
            e.encode(&list);
            prop_assert_eq!(e.len(), list.len());
            prop_assert_eq!(e.is_empty(), list.is_empty());
            let theirs: Vec<Vec<u8>> = list.iter().map(|f| serde_json::to_vec(f).unwrap()).collect();
            let ours: Vec<Vec<u8>> = e.iter().map(<[u8]>::to_vec).collect();
            prop_assert_eq!(ours, theirs);
            prop_assert_eq!(e.get(list.len()), None);
        }
    }

    #[test]
    fn every_rule_and_severity_name_is_serdes() {
        for rule in RuleId::ALL {
            assert_eq!(
                serde_json::to_string(&rule).unwrap(),
                format!("\"{}\"", rule.as_str())
            );
        }
        for s in [Severity::Low, Severity::Medium, Severity::High] {
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
    }
}
