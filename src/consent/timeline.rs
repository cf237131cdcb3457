//! The consent timeline: per device, the ordered decisions, and the state of a purpose
//! at any instant (DESIGN.md §5).

use std::collections::HashMap;

use foldhash::fast::SeedableRandomState;
use serde::Serialize;

use super::{Decision, Purpose};
use crate::case::Case;
use crate::net::keyed_hash;
use crate::timestamp::Timestamp;

/// Where a consent event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventSource {
    /// The case file, the CLI, the dashboard or the proxy's magic URL.
    Manual,
    /// Inferred from a signal in the traffic.
    Wire,
}

/// One consent decision of one device.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ConsentEvent {
    pub device: String,
    pub at: Timestamp,
    pub decision: Decision,
    /// Empty means all purposes.
    pub purposes: Vec<Purpose>,
    /// Vendors the decision is limited to; empty means all.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub vendors: Vec<String>,
    pub source: EventSource,
    /// What proves it: a case-file note, an exchange id.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub evidence: Option<String>,
}

impl ConsentEvent {
    /// A decision written in the case file.
    pub fn manual(c: &crate::case::ManualConsent) -> Self {
        ConsentEvent {
            device: c.device.clone(),
            at: c.at,
            decision: c.decision,
            purposes: c.purposes.clone(),
            vendors: Vec::new(),
            source: EventSource::Manual,
            evidence: c.note.clone(),
        }
    }

    pub fn covers(&self, purpose: Purpose) -> bool {
        self.purposes.is_empty() || self.purposes.contains(&purpose)
    }
}

/// State of one purpose for one device at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    NotAsked,
    Granted,
    Refused,
    Withdrawn,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::NotAsked => "not-asked",
            State::Granted => "granted",
            State::Refused => "refused",
            State::Withdrawn => "withdrawn",
        }
    }

    /// The state a decision puts its purposes in.
    pub fn of(decision: Decision) -> State {
        match decision {
            Decision::Granted => State::Granted,
            Decision::Refused => State::Refused,
            Decision::Withdrawn => State::Withdrawn,
        }
    }
}

/// All consent events, per device, in time order (ties keep insertion order).
#[derive(Debug, Clone)]
pub struct Timeline {
    /// foldhash under a secret key (`net::keyed_hash`): the analysis asks for a
    /// device's events about three times an exchange, and std's SipHash cost about
    /// 200 instructions a lookup. Keyed because traffic can add events.
    by_device: HashMap<String, Vec<ConsentEvent>, SeedableRandomState>,
}

impl Default for Timeline {
    fn default() -> Timeline {
        Timeline {
            by_device: HashMap::with_hasher(keyed_hash::keyed_state()),
        }
    }
}

impl Timeline {
    /// The decisions recorded in the case file.
    pub fn from_case(case: &Case) -> Self {
        let mut t = Timeline::default();
        for c in &case.consent {
            t.add(ConsentEvent::manual(c));
        }
        t
    }

    /// Inserts an event after every event at the same or an earlier time.
    pub fn add(&mut self, event: ConsentEvent) {
        let events = self.by_device.entry(event.device.clone()).or_default();
        let pos = events.partition_point(|e| e.at <= event.at);
        events.insert(pos, event);
    }

    /// Every event of `device`, in order.
    pub fn events(&self, device: &str) -> &[ConsentEvent] {
        self.by_device.get(device).map_or(&[], Vec::as_slice)
    }

    /// The state of `purpose` at `at`: the latest event at or before `at` that covers
    /// it, or `NotAsked`.
    pub fn state(
        &self,
        device: &str,
        purpose: Purpose,
        at: Timestamp,
    ) -> (State, Option<&ConsentEvent>) {
        self.events(device)
            .iter()
            .rev()
            .filter(|e| e.at <= at)
            .find(|e| e.covers(purpose))
            .map_or((State::NotAsked, None), |e| {
                (State::of(e.decision), Some(e))
            })
    }

    /// The most recent grant (of any purpose) in force at `at`, if the device has one.
    pub fn grant_in_force(&self, device: &str, at: Timestamp) -> Option<&ConsentEvent> {
        Purpose::ALL
            .into_iter()
            .filter_map(|p| match self.state(device, p, at) {
                (State::Granted, e) => e,
                _ => None,
            })
            .max_by_key(|e| e.at)
    }

    /// Whether any decision covering `purpose` lies within `grace_ms` of `at`, either
    /// side: such a transmission races the user's tap and is reported `borderline`.
    pub fn decision_near(
        &self,
        device: &str,
        purpose: Option<Purpose>,
        at: Timestamp,
        grace_ms: i64,
    ) -> bool {
        let (lo, hi) = (at.add_millis(-grace_ms), at.add_millis(grace_ms));
        self.events(device)
            .iter()
            .any(|e| e.at >= lo && e.at <= hi && purpose.is_none_or(|p| e.covers(p)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(at_s: i64, decision: Decision, purposes: &[Purpose]) -> ConsentEvent {
        ConsentEvent {
            device: "d".into(),
            at: Timestamp(at_s * 1_000_000),
            decision,
            purposes: purposes.to_vec(),
            vendors: vec![],
            source: EventSource::Manual,
            evidence: None,
        }
    }

    fn t(s: i64) -> Timestamp {
        Timestamp(s * 1_000_000)
    }

    #[test]
    fn state_follows_latest_covering_event() {
        let mut tl = Timeline::default();
        tl.add(ev(10, Decision::Refused, &[]));
        tl.add(ev(20, Decision::Granted, &[Purpose::Analytics]));
        tl.add(ev(30, Decision::Withdrawn, &[Purpose::Analytics]));
        assert_eq!(tl.state("d", Purpose::Advertising, t(5)).0, State::NotAsked);
        assert_eq!(tl.state("d", Purpose::Advertising, t(10)).0, State::Refused);
        assert_eq!(tl.state("d", Purpose::Analytics, t(25)).0, State::Granted);
        assert_eq!(tl.state("d", Purpose::Advertising, t(25)).0, State::Refused);
        assert_eq!(tl.state("d", Purpose::Analytics, t(30)).0, State::Withdrawn);
        assert_eq!(
            tl.state("other", Purpose::Analytics, t(30)).0,
            State::NotAsked
        );
    }

    #[test]
    fn out_of_order_inserts_and_ties() {
        let mut tl = Timeline::default();
        tl.add(ev(20, Decision::Granted, &[]));
        tl.add(ev(10, Decision::Refused, &[]));
        tl.add(ev(20, Decision::Refused, &[]));
        assert_eq!(tl.state("d", Purpose::Social, t(15)).0, State::Refused);
        // Same instant: the later-recorded decision wins.
        assert_eq!(tl.state("d", Purpose::Social, t(20)).0, State::Refused);
    }

    #[test]
    fn grant_in_force_and_nearness() {
        let mut tl = Timeline::default();
        tl.add(ev(10, Decision::Granted, &[Purpose::Functional]));
        assert!(tl.grant_in_force("d", t(9)).is_none());
        assert!(tl.grant_in_force("d", t(10)).is_some());
        assert!(tl.decision_near("d", Some(Purpose::Functional), t(9), 1000));
        assert!(!tl.decision_near("d", Some(Purpose::Functional), t(8), 999));
        assert!(!tl.decision_near("d", Some(Purpose::Advertising), t(10), 1000));
        assert!(tl.decision_near("d", None, t(11), 1000));
    }
}
