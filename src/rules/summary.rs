//! One-sentence summaries of findings, for people reading a table or a report.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::{DataItem, RuleId, Verdict};
use crate::consent::{describe_purposes, State};
use crate::parties::Destination;

/// `advertising_id (sha256), imei (plain)`: distinct type/encoding pairs, at most three.
fn describe_data(data: &[DataItem]) -> String {
    let mut s = String::new();
    push_data(&mut s, data);
    s
}

/// `host (entity)`, or the host alone.
fn receiver(dest: &Destination) -> String {
    let mut s = String::new();
    push_receiver(&mut s, dest);
    s
}

fn purpose(v: &Verdict<'_>) -> &'static str {
    v.purpose.map_or("any purpose", |p| p.as_str())
}

/// [`describe_data`] appended to `out` (no string per pair, no join).
fn push_data(out: &mut String, data: &[DataItem]) {
    let pairs: BTreeSet<(&str, &str)> = data
        .iter()
        .map(|d| (d.kind.as_str(), d.encoding.as_str()))
        .collect();
    for (i, (k, e)) in pairs.iter().take(3).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(k);
        out.push_str(" (");
        out.push_str(e);
        out.push(')');
    }
    if pairs.len() > 3 {
        // Infallible: writing to a String.
        let _ = write!(out, ", {} more", pairs.len() - 3);
    }
}

/// [`receiver`] appended to `out`.
fn push_receiver(out: &mut String, dest: &Destination) {
    out.push_str(&dest.host);
    if let Some(entity) = &dest.entity {
        out.push_str(" (");
        out.push_str(entity);
        out.push(')');
    }
}

/// The summary sentence of a consent finding, written into one string (once per
/// finding: the `format!`s of its pieces were about seven allocations).
pub fn sentence(rule: RuleId, dest: &Destination, data: &[DataItem], v: &Verdict<'_>) -> String {
    let mut s = String::with_capacity(160);
    // `{what} sent to {to}` and `{what} collected by the app's own server {to}`.
    let sent = |s: &mut String| {
        push_data(s, data);
        s.push_str(" sent to ");
        push_receiver(s, dest);
    };
    let collected = |s: &mut String| {
        push_data(s, data);
        s.push_str(" collected by the app's own server ");
        push_receiver(s, dest);
    };
    match rule {
        RuleId::ShareBeforeConsent => {
            sent(&mut s);
            s.push_str(" before any consent decision");
        }
        RuleId::CollectBeforeConsent => {
            collected(&mut s);
            s.push_str(" before any consent decision");
        }
        RuleId::ShareAfterRefusal => {
            sent(&mut s);
            s.push_str(" after the user refused ");
            s.push_str(purpose(v));
        }
        RuleId::CollectAfterRefusal => {
            collected(&mut s);
            s.push_str(" after the user refused consent");
        }
        RuleId::ShareAfterWithdrawal => {
            sent(&mut s);
            s.push_str(" after the user withdrew consent for ");
            s.push_str(purpose(v));
        }
        RuleId::CollectAfterWithdrawal => {
            collected(&mut s);
            s.push_str(" after the user withdrew consent");
        }
        RuleId::BeyondScope => {
            sent(&mut s);
            s.push_str(" for ");
            s.push_str(purpose(v));
            s.push_str(", beyond the consent given (only ");
            if let Some(e) = v.event {
                s.push_str(&describe_purposes(&e.purposes));
            }
            s.push(')');
        }
        RuleId::SensitiveWithoutConsent => {
            s.push_str("sensitive ");
            sent(&mut s);
            s.push_str(match v.state {
                State::NotAsked => " without any consent",
                State::Refused => " after the user refused consent",
                State::Withdrawn => " after the user withdrew consent",
                State::Granted => " without consent for this purpose",
            });
        }
        RuleId::TrackerContactBeforeConsent => {
            s.push_str("connection to tracker ");
            push_receiver(&mut s, dest);
            match v.state {
                State::NotAsked => s.push_str(" before any consent decision"),
                _ => {
                    s.push_str(" after the user refused ");
                    s.push_str(purpose(v));
                }
            }
        }
        RuleId::SignalIgnored
        | RuleId::ExcessiveFrequency
        | RuleId::ConsentPredatesDecision
        | RuleId::ConsentSignalMissing => sent(&mut s),
    }
    if v.borderline {
        s.push_str(" (within the grace window of a decision)");
    }
    s
}

/// The summary of an `excessive-frequency` finding.
pub fn frequency(kind: &str, dest: &Destination, count: usize, limit: u32) -> String {
    format!(
        "{kind} sent to {} more than {limit} times within a minute ({count} sends)",
        receiver(dest)
    )
}

/// The summary of a `signal-ignored` finding: what went where, against which signal.
pub fn signal_ignored(dest: &Destination, data: &[DataItem], v: &Verdict<'_>) -> String {
    let signal = v
        .event
        .and_then(|e| e.evidence.as_deref())
        .unwrap_or("a consent signal");
    format!(
        "{} sent to {} although {signal} denies {}",
        describe_data(data),
        receiver(dest),
        purpose(v)
    )
}

/// The summary of a `consent-signal-missing` finding.
pub fn signal_missing(dest: &Destination, v: &Verdict<'_>) -> String {
    let when = v.event.map(|e| format!(" at {}", e.at)).unwrap_or_default();
    format!(
        "ad request to {} carries no consent signal although the user refused advertising{when}",
        receiver(dest)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::{ConsentEvent, Decision, EventSource, Purpose};
    use crate::parties::Party;
    use crate::pii::Confidence;
    use crate::timestamp::Timestamp;

    /// `describe_data` as it was: a string per pair, joined.
    fn describe_data_model(data: &[DataItem]) -> String {
        let pairs: BTreeSet<(&str, &str)> = data
            .iter()
            .map(|d| (d.kind.as_str(), d.encoding.as_str()))
            .collect();
        let mut parts: Vec<String> = pairs
            .iter()
            .take(3)
            .map(|(k, e)| format!("{k} ({e})"))
            .collect();
        if pairs.len() > 3 {
            parts.push(format!("{} more", pairs.len() - 3));
        }
        parts.join(", ")
    }

    /// `receiver` as it was.
    fn receiver_model(dest: &Destination) -> String {
        match &dest.entity {
            Some(entity) => format!("{} ({entity})", dest.host),
            None => dest.host.clone(),
        }
    }

    /// `sentence` as it was, `format!` by `format!`: the model the one-string
    /// version must agree with.
    fn sentence_model(
        rule: RuleId,
        dest: &Destination,
        data: &[DataItem],
        v: &Verdict<'_>,
    ) -> String {
        let what = describe_data_model(data);
        let to = receiver_model(dest);
        let near = if v.borderline {
            " (within the grace window of a decision)"
        } else {
            ""
        };
        let s = match rule {
            RuleId::ShareBeforeConsent => {
                format!("{what} sent to {to} before any consent decision")
            }
            RuleId::CollectBeforeConsent => {
                format!("{what} collected by the app's own server {to} before any consent decision")
            }
            RuleId::ShareAfterRefusal => {
                format!("{what} sent to {to} after the user refused {}", purpose(v))
            }
            RuleId::CollectAfterRefusal => {
                format!(
                    "{what} collected by the app's own server {to} after the user refused consent"
                )
            }
            RuleId::ShareAfterWithdrawal => format!(
                "{what} sent to {to} after the user withdrew consent for {}",
                purpose(v)
            ),
            RuleId::CollectAfterWithdrawal => {
                format!(
                    "{what} collected by the app's own server {to} after the user withdrew consent"
                )
            }
            RuleId::BeyondScope => {
                let granted = v
                    .event
                    .map(|e| describe_purposes(&e.purposes))
                    .unwrap_or_default();
                format!(
                    "{what} sent to {to} for {}, beyond the consent given (only {granted})",
                    purpose(v)
                )
            }
            RuleId::SensitiveWithoutConsent => {
                let state = match v.state {
                    State::NotAsked => "without any consent",
                    State::Refused => "after the user refused consent",
                    State::Withdrawn => "after the user withdrew consent",
                    State::Granted => "without consent for this purpose",
                };
                format!("sensitive {what} sent to {to} {state}")
            }
            RuleId::TrackerContactBeforeConsent => match v.state {
                State::NotAsked => {
                    format!("connection to tracker {to} before any consent decision")
                }
                _ => format!(
                    "connection to tracker {to} after the user refused {}",
                    purpose(v)
                ),
            },
            RuleId::SignalIgnored
            | RuleId::ExcessiveFrequency
            | RuleId::ConsentPredatesDecision
            | RuleId::ConsentSignalMissing => format!("{what} sent to {to}"),
        };
        format!("{s}{near}")
    }

    fn item(kind: &str, encoding: &str) -> DataItem {
        DataItem {
            kind: kind.into(),
            encoding: encoding.into(),
            location: "query:x".into(),
            confidence: Confidence::Exact,
            sensitive: false,
            value: None,
        }
    }

    /// Every rule, state, purpose, event, borderline flag, receiver with and without
    /// an entity, and 0 to 6 data items (repeated pairs, more than three pairs).
    #[test]
    fn sentence_is_the_format_model() {
        let event = ConsentEvent {
            device: "d".into(),
            at: Timestamp::from_micros(0),
            decision: Decision::Granted,
            purposes: vec![Purpose::Analytics, Purpose::Functional],
            vendors: Vec::new(),
            source: EventSource::Manual,
            evidence: None,
        };
        let all = [
            item("imei", "plain"),
            item("imei", "plain"),
            item("advertising_id", "md5"),
            item("email", "base64"),
            item("email", "plain"),
            item("phone", "sha256"),
        ];
        let mut checked = 0;
        for entity in [None, Some("Ad Co".to_string())] {
            let dest = Destination {
                host: "t.example".into(),
                site: "t.example".into(),
                party: Party::Third,
                entity,
                categories: Vec::new(),
                purposes: Vec::new(),
                known: false,
                infrastructure: false,
                platform: false,
                tenant: false,
                iab_vendor_id: None,
                hosted_by: None,
            };
            for rule in RuleId::ALL {
                for state in [
                    State::NotAsked,
                    State::Granted,
                    State::Refused,
                    State::Withdrawn,
                ] {
                    for purpose in [None, Some(Purpose::Advertising)] {
                        for ev in [None, Some(&event)] {
                            for borderline in [false, true] {
                                let v = Verdict {
                                    rule: Some(rule),
                                    purpose,
                                    state,
                                    event: ev,
                                    borderline,
                                };
                                for n in 0..=all.len() {
                                    let data = &all[..n];
                                    assert_eq!(
                                        sentence(rule, &dest, data, &v),
                                        sentence_model(rule, &dest, data, &v)
                                    );
                                    assert_eq!(describe_data(data), describe_data_model(data));
                                    assert_eq!(receiver(&dest), receiver_model(&dest));
                                    checked += 1;
                                }
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(checked, 2 * RuleId::ALL.len() * 4 * 2 * 2 * 2 * 7);
    }
}
