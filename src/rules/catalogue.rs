//! The rule catalogue: severity and legal citations of each rule, and the citation
//! texts, read from `signatures/citations.toml` (compiled in).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use serde::Deserialize;

use super::{RuleId, Severity};

const CITATIONS_TOML: &str = include_str!("../../signatures/citations.toml");

/// One legal provision a finding can cite.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Citation {
    pub id: String,
    pub title: String,
    pub reference: String,
    pub text: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleEntry {
    severity: Severity,
    /// Shared by every finding of the rule (a count, not a copy of each id).
    citations: Arc<[String]>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    citation: Vec<Citation>,
    rule: BTreeMap<String, RuleEntry>,
}

/// Severity and citations per rule, and the citation table.
#[derive(Debug, Clone)]
pub struct Catalogue {
    pub citations: Vec<Citation>,
    rules: BTreeMap<RuleId, RuleEntry>,
}

impl Catalogue {
    /// The catalogue shipped in the binary, parsed once per process.
    pub fn embedded() -> Arc<Catalogue> {
        static EMBEDDED: OnceLock<Arc<Catalogue>> = OnceLock::new();
        EMBEDDED
            .get_or_init(|| {
                // The embedded file is checked by `embedded_catalogue_is_complete`; a
                // broken one is a build defect, not an input error.
                Arc::new(Self::parse(CITATIONS_TOML).expect("signatures/citations.toml is valid"))
            })
            .clone()
    }

    /// Parses a catalogue and checks it: every rule present, every citation known.
    pub fn parse(text: &str) -> Result<Catalogue, String> {
        let raw: Raw = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut rules = BTreeMap::new();
        for (name, entry) in raw.rule {
            let rule = RuleId::parse(&name).ok_or_else(|| format!("unknown rule {name:?}"))?;
            for c in entry.citations.iter() {
                if !raw.citation.iter().any(|k| &k.id == c) {
                    return Err(format!("rule {name} cites unknown {c:?}"));
                }
            }
            rules.insert(rule, entry);
        }
        if let Some(missing) = RuleId::ALL.iter().find(|r| !rules.contains_key(r)) {
            return Err(format!("rule {} has no entry", missing.as_str()));
        }
        Ok(Catalogue {
            citations: raw.citation,
            rules,
        })
    }

    pub fn severity(&self, rule: RuleId) -> Severity {
        self.rules.get(&rule).map_or(Severity::High, |e| e.severity)
    }

    /// The ids of the provisions `rule` cites, shared.
    pub fn citations(&self, rule: RuleId) -> Arc<[String]> {
        self.rules
            .get(&rule)
            .map_or_else(|| Arc::from([]), |e| Arc::clone(&e.citations))
    }

    pub fn citation(&self, id: &str) -> Option<&Citation> {
        self.citations.iter().find(|c| c.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_catalogue_is_complete() {
        let c = Catalogue::embedded();
        assert_eq!(c.severity(RuleId::ShareBeforeConsent), Severity::High);
        assert_eq!(c.severity(RuleId::CollectBeforeConsent), Severity::Medium);
        assert_eq!(
            c.severity(RuleId::TrackerContactBeforeConsent),
            Severity::Low
        );
        assert!(c
            .citations(RuleId::ShareBeforeConsent)
            .contains(&"CN-2019-V.1".to_string()));
        assert!(c.citation("PIPL-23").is_some());
    }

    #[test]
    fn rejects_unknown_citation_and_missing_rule() {
        let bad = CITATIONS_TOML.replace("\"PIPL-23\"]", "\"PIPL-999\"]");
        assert!(Catalogue::parse(&bad).unwrap_err().contains("PIPL-999"));
        let cut = CITATIONS_TOML.replace("[rule.excessive-frequency]", "[rule.x-unused]");
        assert!(Catalogue::parse(&cut).is_err());
    }
}
