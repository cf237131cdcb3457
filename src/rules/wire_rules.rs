//! The rules that compare traffic with the consent signals the traffic itself
//! carries (issue 6): recording wire decisions, `signal-ignored` at vendor level,
//! `consent-predates-decision` and `consent-signal-missing`. Purpose-level
//! `signal-ignored` is judged in [`Analyzer::observe`] like the other consent rules.

use super::*;
use crate::consent::signals::SignalKind;
use crate::consent::Decision;
use crate::timestamp::Timestamp;

/// Most wire consent-state changes kept per device: signals come from the traffic,
/// so their number is the attacker's to choose.
pub const MAX_WIRE_EVENTS_PER_DEVICE: usize = 10_000;

/// The vendor consents of a TC string, with where it was seen.
#[derive(Debug, Clone)]
pub(super) struct VendorConsents {
    pub(super) at: Timestamp,
    /// Sorted IAB vendor ids with consent.
    pub(super) consents: Vec<u16>,
    pub(super) evidence: String,
}

impl Analyzer {
    /// `signal-ignored` at vendor level: the TC string in force gives the receiver's
    /// IAB vendor id no consent, whatever it says about purposes.
    pub(super) fn vendor_not_consented(
        &self,
        x: &Exchange,
        device: &str,
        dest: &Arc<Destination>,
        items: &[DataItem],
    ) -> Option<Finding> {
        let vendor = dest.iab_vendor_id?;
        let tc = self.tc_vendors.get(device).filter(|tc| tc.at <= x.at)?;
        let id = u16::try_from(vendor).ok()?;
        if tc.consents.binary_search(&id).is_ok() {
            return None;
        }
        let name = dest
            .entity
            .clone()
            .unwrap_or_else(|| format!("vendor {vendor}"));
        let event = ConsentEvent {
            device: device.to_string(),
            at: tc.at,
            decision: Decision::Refused,
            purposes: Vec::new(),
            vendors: vec![name],
            source: EventSource::Wire,
            evidence: Some(format!(
                "{} (no consent for IAB vendor {vendor})",
                tc.evidence
            )),
        };
        let grace = self.case.rules.grace_ms;
        let verdict = Verdict {
            rule: Some(RuleId::SignalIgnored),
            purpose: dest.purposes.first().copied(),
            state: State::Refused,
            event: Some(&event),
            borderline: (x.at.micros() - tc.at.micros()).abs() <= grace.saturating_mul(1000),
        };
        let mut f = self.finding(
            RuleId::SignalIgnored,
            x,
            device,
            dest,
            items.to_vec(),
            &verdict,
        );
        f.summary = summary::signal_ignored(dest, items, &verdict);
        Some(f)
    }

    /// `consent-signal-missing`: an ad request whose protocol carries consent (OpenRTB,
    /// TCF-aware ad servers) goes out without any signal after the user refused
    /// advertising, so the ad ecosystem is never told.
    pub(super) fn check_signal_missing(
        &self,
        x: &Exchange,
        device: &str,
        dest: &Arc<Destination>,
        obs: &mut Observation,
    ) {
        let advertising = dest.categories.iter().any(|c| c == "advertising");
        if dest.party != Party::Third || !advertising {
            return;
        }
        let grace = self.case.rules.grace_ms;
        let (state, event) = self.timeline.state(device, Purpose::Advertising, x.at);
        if matches!(state, State::Refused | State::Withdrawn) {
            let verdict = Verdict {
                rule: Some(RuleId::ConsentSignalMissing),
                purpose: Some(Purpose::Advertising),
                state,
                event,
                borderline: self.timeline.decision_near(
                    device,
                    Some(Purpose::Advertising),
                    x.at,
                    grace,
                ),
            };
            let mut f = self.finding(
                RuleId::ConsentSignalMissing,
                x,
                device,
                dest,
                Vec::new(),
                &verdict,
            );
            f.summary = summary::signal_missing(dest, &verdict);
            obs.findings.push(f);
        }
    }

    /// `consent-predates-decision`: a signal granting consent that the user's own
    /// decisions contradict — created before the first decision, or positive after a
    /// refusal that is still in force.
    pub(super) fn check_predates(
        &self,
        x: &Exchange,
        device: &str,
        dest: &Arc<Destination>,
        meaning: &wire::Interpretation,
        signal: &WireSignal,
        obs: &mut Observation,
    ) {
        let grants: Vec<Purpose> = meaning
            .decisions
            .iter()
            .filter(|(d, _)| *d == Decision::Granted)
            .flat_map(|(_, p)| {
                if p.is_empty() {
                    Purpose::ALL.to_vec()
                } else {
                    p.clone()
                }
            })
            .collect();
        let Some(&first_purpose) = grants.first() else {
            return;
        };
        let grace = self.case.rules.grace_ms;
        let manual = self.timeline.events(device);
        let claim = format!("{} at {}", meaning.summary, signal.location);
        // The CMP's clock is the device's, not the capture's: a creation time within
        // the grace window of the first decision is not evidence of anything.
        let (purpose, state, event, why) = match (meaning.created, manual.first()) {
            (Some(created), Some(first)) if created.add_millis(grace) < first.at => {
                let (state, _) = self.timeline.state(device, first_purpose, x.at);
                (first_purpose, state, Some(first), format!("{claim} says consent was given at {created}, before the user's first decision at {}", first.at))
            }
            _ => {
                let refused =
                    grants
                        .iter()
                        .find_map(|&p| match self.timeline.state(device, p, x.at) {
                            (State::Refused, Some(e)) => Some((p, e)),
                            _ => None,
                        });
                let Some((p, e)) = refused else {
                    return;
                };
                (
                    p,
                    State::Refused,
                    Some(e),
                    format!(
                        "{claim} claims consent to {} although the user refused it at {}",
                        p.as_str(),
                        e.at
                    ),
                )
            }
        };
        let verdict = Verdict {
            rule: Some(RuleId::ConsentPredatesDecision),
            purpose: Some(purpose),
            state,
            event,
            borderline: event.is_some_and(|e| {
                (e.at.micros() - x.at.micros()).abs() <= grace.saturating_mul(1000)
            }),
        };
        let mut f = self.finding(
            RuleId::ConsentPredatesDecision,
            x,
            device,
            dest,
            Vec::new(),
            &verdict,
        );
        f.summary = why;
        obs.findings.push(f);
    }

    /// Records the signals of one request. SDKs repeat the same signals in every
    /// request: when a request carries exactly the signals of the device's previous
    /// signalling request and nothing changed the wire state since, it says nothing
    /// new (and any finding about it was made the first time).
    pub(super) fn record_signals(
        &mut self,
        x: &Exchange,
        device: &str,
        dest: &Arc<Destination>,
        signals: &[WireSignal],
        obs: &mut Observation,
    ) {
        let events_now = self.wire.events(device).len();
        if self
            .last_signals
            .get(device)
            .is_some_and(|(last, events)| last.as_slice() == signals && *events == events_now)
        {
            return;
        }
        for signal in signals {
            self.record_signal(x, device, dest, signal, obs);
        }
        let events = self.wire.events(device).len();
        self.last_signals
            .insert(device.to_string(), (signals.to_vec(), events));
    }

    /// Turns one wire signal into `wire` consent events of `device`.
    fn record_signal(
        &mut self,
        x: &Exchange,
        device: &str,
        dest: &Arc<Destination>,
        signal: &WireSignal,
        obs: &mut Observation,
    ) {
        let meaning = match wire::interpret(signal) {
            Ok(Some(meaning)) => meaning,
            Ok(None) => return,
            Err(reason) => {
                let detail = format!("{} at {}: {reason}", signal.value, signal.location);
                obs.anomalies
                    .push(Anomaly::new("consent-signal-malformed", detail));
                return;
            }
        };
        // A CMP call we cannot read is a decision we know of but cannot place.
        let kind = if signal.kind == SignalKind::Cmp {
            "cmp-decision-unread"
        } else {
            "consent-signal-malformed"
        };
        for problem in &meaning.problems {
            let detail = format!(
                "{} at {} of {}: {problem}",
                signal.value, signal.location, x.id
            );
            obs.anomalies.push(Anomaly::new(kind, detail));
        }
        self.check_predates(x, device, dest, &meaning, signal, obs);
        if let Some(consents) = &meaning.vendor_consents {
            self.tc_vendors.insert(
                device.to_string(),
                VendorConsents {
                    at: x.at,
                    consents: consents.clone(),
                    evidence: format!("{} at {} of {}", meaning.summary, signal.location, x.id),
                },
            );
        }
        let heuristic = if meaning.heuristic {
            " (heuristic)"
        } else {
            ""
        };
        for (decision, purposes) in meaning.decisions {
            // Apps repeat the same signal in every request: only a change of state
            // is a new decision (the first signal stays the evidence).
            let covered: Vec<Purpose> = if purposes.is_empty() {
                Purpose::ALL.to_vec()
            } else {
                purposes.clone()
            };
            // Manual decisions win; a signal saying otherwise is reported.
            for &p in &covered {
                if let (manual, Some(e)) = self.timeline.state(device, p, x.at) {
                    if manual != State::of(decision) {
                        obs.consent_conflicts.push(format!(
                            "{} {}: {} at {} of {} says {} {}, the user's decision of {} says {}",
                            x.at,
                            device,
                            meaning.summary,
                            signal.location,
                            x.id,
                            p.as_str(),
                            State::of(decision).as_str(),
                            e.at,
                            manual.as_str()
                        ));
                    }
                }
            }
            let unchanged = covered.iter().all(|&p| {
                let (state, event) = self.wire.state(device, p, x.at);
                state == State::of(decision) && event.is_some_and(|e| e.purposes == purposes)
            });
            if unchanged {
                continue;
            }
            if self.wire.events(device).len() >= MAX_WIRE_EVENTS_PER_DEVICE {
                obs.anomalies.push(Anomaly::new(
                    "wire-event-limit",
                    format!("more than {MAX_WIRE_EVENTS_PER_DEVICE} consent-state changes from signals for {device}; this one is not recorded"),
                ));
                continue;
            }
            let event = ConsentEvent {
                device: device.to_string(),
                at: x.at,
                decision,
                purposes,
                vendors: Vec::new(),
                source: EventSource::Wire,
                evidence: Some(format!(
                    "{}{heuristic} at {} of {}",
                    meaning.summary, signal.location, x.id
                )),
            };
            self.wire.add(event.clone());
            obs.consent_events.push(event);
        }
    }
}
