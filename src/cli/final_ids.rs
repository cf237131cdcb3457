//! Final exchange ids for a single-pass `analyze`: the captures were read once,
//! hashed while parsed, and their exchanges named provisionally (see
//! [`crate::net::provisional_id`]). Once every file's SHA-256 is known, every text of
//! the run that can hold an exchange id gets the final ids, the ones a two-pass read
//! gives ([`crate::net::tap`]), and finding ids are computed again from them.

use sha2::Sha256;

use crate::consent::ConsentEvent;
use crate::net::provisional_id::{IdParts, ProvisionalIds, NONCE_BYTES};
use crate::net::tap::{exchange_id_from, id_seed};
use crate::rules::Finding;

/// Provisional ids with a fresh nonce from the system's random source: traffic
/// written before the run cannot contain it.
pub(super) fn fresh_ids() -> anyhow::Result<ProvisionalIds> {
    let mut nonce = [0u8; NONCE_BYTES];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce)
        .map_err(|_| anyhow::anyhow!("the system's random source failed"))?;
    Ok(ProvisionalIds::with_nonce(nonce))
}

/// The texts of a run that can hold exchange ids (anomaly details are only counted
/// by `analyze`, not kept).
pub(super) struct RunTexts<'a> {
    pub findings: &'a mut Vec<Finding>,
    /// Wire events' evidence.
    pub consent: &'a mut [ConsentEvent],
    pub conflict_examples: &'a mut [String],
    /// By exchange id.
    pub request_lines: &'a mut Vec<(String, String)>,
}

/// Rewrites `texts` with the final ids of `file_sha256` (by input number; `None` for
/// an input that could not be read to its end). Findings and request lines of such
/// an input have no final id and are dropped; the number of findings dropped, by
/// input, is returned. Other texts citing one of its exchanges say so instead.
pub(super) fn finalize(
    ids: &ProvisionalIds,
    file_sha256: &[Option<String>],
    texts: RunTexts<'_>,
) -> Vec<u64> {
    let seeds: Vec<Option<Sha256>> = file_sha256
        .iter()
        .map(|sha| sha.as_deref().map(|sha| id_seed(Some(sha))))
        .collect();
    let seed = |input: u64| {
        usize::try_from(input)
            .ok()
            .and_then(|i| seeds.get(i))
            .and_then(Option::as_ref)
    };
    let mut final_id = |p: IdParts| match seed(p.input) {
        Some(seed) => exchange_id_from(seed, p.first_frame, p.discriminator),
        None => format!(
            "(an exchange of unreadable input {})",
            p.input.saturating_add(1)
        ),
    };
    let unhashed = |id: &str| ids.parts(id).is_some_and(|p| seed(p.input).is_none());

    let mut dropped = vec![0u64; file_sha256.len()];
    // Every input hashed (the usual case): nothing to drop, no id to look at twice.
    let all_hashed = seeds.iter().all(Option::is_some);
    texts.findings.retain(|f| {
        if all_hashed {
            return true;
        }
        let drop = unhashed(&f.exchange);
        if drop {
            let input = ids.parts(&f.exchange).map(|p| p.input);
            if let Some(n) = input.and_then(|i| dropped.get_mut(usize::try_from(i).ok()?)) {
                *n += 1;
            }
        }
        !drop
    });
    for f in texts.findings.iter_mut() {
        if ids.rewrite(&mut f.exchange, &mut final_id) > 0 {
            f.refresh_id();
        }
        ids.rewrite(&mut f.summary, &mut final_id);
        if let Some(note) = f.consent.event.as_mut().and_then(|e| e.note.as_mut()) {
            ids.rewrite(note, &mut final_id);
        }
    }
    for e in texts.consent.iter_mut() {
        if let Some(evidence) = &mut e.evidence {
            ids.rewrite(evidence, &mut final_id);
        }
    }
    for c in texts.conflict_examples.iter_mut() {
        ids.rewrite(c, &mut final_id);
    }
    if !all_hashed {
        texts.request_lines.retain(|(id, _)| !unhashed(id));
    }
    for (id, _) in texts.request_lines.iter_mut() {
        ids.rewrite(id, &mut final_id);
    }
    dropped
}

/// Whether any text of `run` still holds `ids`' nonce (a bug: every output would
/// show an id nobody can look up). Checks the serialized run, so no field is missed.
pub(super) fn any_left(ids: &ProvisionalIds, run: &super::analyze::AnalysisRun) -> bool {
    let texts = [
        serde_json::to_string(&run.findings),
        serde_json::to_string(&run.consent),
        serde_json::to_string(&run.summary),
        serde_json::to_string(&run.request_lines),
    ];
    texts
        .iter()
        .any(|t| t.as_ref().map_or(true, |t| ids.marks(t)))
}
