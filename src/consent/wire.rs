//! What a consent signal found in traffic says, as consent decisions (DESIGN.md §5
//! `wire` events). Each interpreter is small and pure; the string decoders (TCF, GPP,
//! US Privacy) live in their own modules.

use super::signals::{SignalKind, WireSignal};
use super::{Decision, Purpose};

/// The decisions one signal expresses.
#[derive(Debug, Clone, PartialEq)]
pub struct Interpretation {
    /// (decision, purposes) pairs; empty purposes mean all.
    pub decisions: Vec<(Decision, Vec<Purpose>)>,
    /// One line for findings and reports: `Sec-GPC: 1 (opt-out of sale/sharing)`.
    pub summary: String,
    /// Inferred by a documented heuristic rather than a specified meaning.
    pub heuristic: bool,
}

/// Interprets a signal; `None` when it expresses no decision (e.g. `gdpr=1`, which
/// only says the regulation applies) or cannot be read.
pub fn interpret(signal: &WireSignal) -> Option<Interpretation> {
    match signal.kind {
        SignalKind::Gpc => gpc(&signal.value),
        SignalKind::ConsentModeGcs => gcs(&signal.value),
        _ => None,
    }
}

/// Global Privacy Control: `1` is an opt-out of sale and sharing (CCPA/CPRA § 7025),
/// i.e. a refusal of advertising use by third parties.
fn gpc(value: &str) -> Option<Interpretation> {
    (value.trim() == "1").then(|| Interpretation {
        decisions: vec![(Decision::Refused, vec![Purpose::Advertising])],
        summary: "Sec-GPC: 1 (Global Privacy Control: do not sell or share)".into(),
        heuristic: false,
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
    })
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
        }
    }

    #[test]
    fn gpc() {
        let i = interpret(&sig(SignalKind::Gpc, "1")).unwrap();
        assert_eq!(
            i.decisions,
            vec![(Decision::Refused, vec![Purpose::Advertising])]
        );
        assert!(interpret(&sig(SignalKind::Gpc, "0")).is_none());
    }

    #[test]
    fn consent_mode() {
        let i = interpret(&sig(SignalKind::ConsentModeGcs, "G101")).unwrap();
        assert_eq!(
            i.decisions,
            vec![
                (Decision::Refused, vec![Purpose::Advertising]),
                (Decision::Granted, vec![Purpose::Analytics])
            ]
        );
        assert!(i.heuristic);
        assert_eq!(
            interpret(&sig(SignalKind::ConsentModeGcs, "G1-0"))
                .unwrap()
                .decisions
                .len(),
            1
        );
        for bad in ["G1", "G2100", "G1x0", "G1--", ""] {
            assert!(
                interpret(&sig(SignalKind::ConsentModeGcs, bad)).is_none(),
                "{bad}"
            );
        }
    }
}
