//! Which consent rule a transmission breaks, given the timeline, the receiver and the
//! time (DESIGN.md §6, "How the state picks the rule"). Pure.

use crate::consent::{ConsentEvent, Purpose, State, Timeline};
use crate::parties::{Destination, Party};
use crate::timestamp::Timestamp;

use super::RuleId;

/// The consent verdict on one transmission.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict<'t> {
    /// `None` when consent covers the transmission.
    pub rule: Option<RuleId>,
    /// The purpose judged (`None` = any purpose, the first party).
    pub purpose: Option<Purpose>,
    pub state: State,
    pub event: Option<&'t ConsentEvent>,
    /// A decision about the purpose lies within the grace window.
    pub borderline: bool,
}

impl Verdict<'_> {
    /// Whether consent covers the purpose (no consent finding).
    pub fn granted(&self) -> bool {
        self.rule.is_none()
    }
}

/// Judges personal data sent by `device` to `dest` at `at`.
///
/// First party: any grant in force covers it; otherwise the latest decision decides
/// (a refusal ⇒ `collect-after-refusal`, none ⇒ `collect-before-consent`).
/// Third party: every purpose the receiver needs must be granted; the worst purpose
/// decides, refused before withdrawn before never asked.
pub fn judge<'t>(
    timeline: &'t Timeline,
    device: &str,
    dest: &Destination,
    at: Timestamp,
    grace_ms: i64,
) -> Verdict<'t> {
    match dest.party {
        Party::First => judge_first_party(timeline, device, at, grace_ms),
        Party::Third => judge_third_party(timeline, device, &dest.purposes, at, grace_ms),
    }
}

fn judge_first_party<'t>(
    timeline: &'t Timeline,
    device: &str,
    at: Timestamp,
    grace_ms: i64,
) -> Verdict<'t> {
    let near = timeline.decision_near(device, None, at, grace_ms);
    if let Some(grant) = timeline.grant_in_force(device, at) {
        return Verdict {
            rule: None,
            purpose: None,
            state: State::Granted,
            event: Some(grant),
            borderline: near,
        };
    }
    // No grant: the latest decision of any kind, if there is one, sets the state.
    let latest = timeline.events(device).iter().rev().find(|e| e.at <= at);
    let (rule, state) = match latest.map(|e| e.decision) {
        None => (RuleId::CollectBeforeConsent, State::NotAsked),
        Some(crate::consent::Decision::Withdrawn) => {
            (RuleId::CollectAfterWithdrawal, State::Withdrawn)
        }
        Some(_) => (RuleId::CollectAfterRefusal, State::Refused),
    };
    Verdict {
        rule: Some(rule),
        purpose: None,
        state,
        event: latest,
        borderline: near,
    }
}

fn judge_third_party<'t>(
    timeline: &'t Timeline,
    device: &str,
    purposes: &[Purpose],
    at: Timestamp,
    grace_ms: i64,
) -> Verdict<'t> {
    // Rank of each state for picking the worst purpose: refused, withdrawn, not asked.
    let rank = |s: State| match s {
        State::Refused => 0,
        State::Withdrawn => 1,
        State::NotAsked => 2,
        State::Granted => 3,
    };
    let worst = purposes
        .iter()
        .map(|&p| {
            let (state, event) = timeline.state(device, p, at);
            (p, state, event)
        })
        .min_by_key(|(_, s, _)| rank(*s));
    let Some((purpose, state, event)) = worst else {
        // A receiver that needs no purpose (should not happen for third parties).
        return Verdict {
            rule: None,
            purpose: None,
            state: State::Granted,
            event: None,
            borderline: false,
        };
    };
    let borderline = timeline.decision_near(device, Some(purpose), at, grace_ms);
    let (rule, event) = match state {
        State::Granted => (None, event),
        State::Refused => (Some(RuleId::ShareAfterRefusal), event),
        State::Withdrawn => (Some(RuleId::ShareAfterWithdrawal), event),
        State::NotAsked => match timeline.grant_in_force(device, at) {
            Some(other_grant) => (Some(RuleId::BeyondScope), Some(other_grant)),
            None => (Some(RuleId::ShareBeforeConsent), None),
        },
    };
    Verdict {
        rule,
        purpose: Some(purpose),
        state,
        event,
        borderline,
    }
}
