//! One-sentence summaries of findings, for people reading a table or a report.

use std::collections::BTreeSet;

use super::{DataItem, RuleId, Verdict};
use crate::consent::{describe_purposes, State};
use crate::parties::Destination;

/// `advertising_id (sha256), imei (plain)`: distinct type/encoding pairs, at most three.
fn describe_data(data: &[DataItem]) -> String {
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

fn receiver(dest: &Destination) -> String {
    match &dest.entity {
        Some(entity) => format!("{} ({entity})", dest.host),
        None => dest.host.clone(),
    }
}

fn purpose(v: &Verdict<'_>) -> &'static str {
    v.purpose.map_or("any purpose", |p| p.as_str())
}

/// The summary sentence of a consent finding.
pub fn sentence(rule: RuleId, dest: &Destination, data: &[DataItem], v: &Verdict<'_>) -> String {
    let what = describe_data(data);
    let to = receiver(dest);
    let near = if v.borderline {
        " (within the grace window of a decision)"
    } else {
        ""
    };
    let s = match rule {
        RuleId::ShareBeforeConsent => format!("{what} sent to {to} before any consent decision"),
        RuleId::CollectBeforeConsent => {
            format!("{what} collected by the app's own server {to} before any consent decision")
        }
        RuleId::ShareAfterRefusal => {
            format!("{what} sent to {to} after the user refused {}", purpose(v))
        }
        RuleId::CollectAfterRefusal => {
            format!("{what} collected by the app's own server {to} after the user refused consent")
        }
        RuleId::ShareAfterWithdrawal => format!(
            "{what} sent to {to} after the user withdrew consent for {}",
            purpose(v)
        ),
        RuleId::CollectAfterWithdrawal => {
            format!("{what} collected by the app's own server {to} after the user withdrew consent")
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
            State::NotAsked => format!("connection to tracker {to} before any consent decision"),
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
