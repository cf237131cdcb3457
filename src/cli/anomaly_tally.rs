//! Anomalies counted by kind over a live run (`proxy`, `tap`): what the sources met
//! reading exchanges and what the analysis met decoding them (a body that decompresses
//! past the limit, a corrupt stream). The analysis's are kept nowhere else, so the
//! first of each kind is said at once and the run's summary counts them all, as
//! `analyze`'s does.

use std::collections::BTreeMap;
use std::fmt;

use crate::exchange::{Anomaly, Exchange};
use crate::report::host_mask::HostMask;

/// Most kinds a summary names; the rest are counted together.
const MAX_KINDS_LISTED: usize = 8;

/// Anomaly counts by kind. Kinds are the code's own names, so the map stays small
/// whatever the traffic.
#[derive(Debug, Default)]
pub struct AnomalyTally {
    total: u64,
    by_kind: BTreeMap<String, u64>,
}

impl AnomalyTally {
    /// Counts `anomalies`; returns those whose kind is counted for the first time.
    pub fn add<'a>(&mut self, anomalies: &'a [Anomaly]) -> Vec<&'a Anomaly> {
        let mut first = Vec::new();
        for a in anomalies {
            self.total += 1;
            match self.by_kind.get_mut(&a.kind) {
                Some(n) => *n += 1,
                None => {
                    self.by_kind.insert(a.kind.clone(), 1);
                    first.push(a);
                }
            }
        }
        first
    }

    /// Counts the anomalies of `x` (the source's) and `analysis`' (those its analysis
    /// met); returns the line of each first of its kind ([`first_of_kind_line`]),
    /// the host as `hosts` shows it.
    pub fn add_exchange(
        &mut self,
        x: &Exchange,
        analysis: &[Anomaly],
        hosts: &mut HostMask,
        reveal: bool,
    ) -> Vec<String> {
        let mut lines = Vec::new();
        for (list, by_analysis) in [(&x.anomalies[..], false), (analysis, true)] {
            for a in self.add(list) {
                let host = hosts.show(&x.host);
                lines.push(first_of_kind_line(&x.id, &host, a, by_analysis, reveal));
            }
        }
        lines
    }

    pub fn total(&self) -> u64 {
        self.total
    }
}

/// `0`, or `3 (decompression-limit 2, body-truncated 1)`: the commonest kinds first.
impl fmt::Display for AnomalyTally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.total)?;
        if self.by_kind.is_empty() {
            return Ok(());
        }
        let mut kinds: Vec<(&String, &u64)> = self.by_kind.iter().collect();
        kinds.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        f.write_str(" (")?;
        for (i, (kind, n)) in kinds.iter().take(MAX_KINDS_LISTED).enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{kind} {n}")?;
        }
        if kinds.len() > MAX_KINDS_LISTED {
            write!(f, ", {} more kinds", kinds.len() - MAX_KINDS_LISTED)?;
        }
        f.write_str(")")
    }
}

/// The line that says the first anomaly of a kind: the exchange and its host (as
/// [`HostMask`] shows it), and the detail only with `reveal` (a detail may quote the traffic, and logs carry no identifier
/// values unless asked to).
fn first_of_kind_line(id: &str, host: &str, a: &Anomaly, analysis: bool, reveal: bool) -> String {
    let whose = if analysis { "analysis" } else { "source" };
    let detail = if reveal {
        format!(": {}", a.detail)
    } else {
        String::new()
    };
    format!(
        "consentry: anomaly {} ({whose}) in exchange {id} to {host}{detail}; later ones of this kind are counted",
        a.kind
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::SourceKind;
    use crate::timestamp::Timestamp;

    #[test]
    fn counts_by_kind_and_says_each_kind_once() {
        let mut t = AnomalyTally::default();
        assert_eq!(t.to_string(), "0");
        let a = [
            Anomaly::new("body-truncated", "b"),
            Anomaly::new("decompression-limit", "d"),
            Anomaly::new("body-truncated", "c"),
        ];
        let first: Vec<&str> = t.add(&a).iter().map(|a| a.detail.as_str()).collect();
        assert_eq!(first, ["b", "d"]);
        assert!(t.add(&a[1..2]).is_empty());
        assert_eq!(t.total(), 4);
        assert_eq!(t.to_string(), "4 (body-truncated 2, decompression-limit 2)");
        let many: Vec<Anomaly> = (0..10).map(|i| Anomaly::new(format!("k{i}"), "")).collect();
        t.add(&many);
        assert_eq!(
            t.to_string(),
            "14 (body-truncated 2, decompression-limit 2, k0 1, k1 1, k2 1, k3 1, k4 1, k5 1, 4 more kinds)"
        );
    }

    #[test]
    fn an_exchange_says_its_own_first_then_its_analysis_and_names_its_host_as_shown() {
        let mut x = Exchange::new("x-2", SourceKind::Proxy, Timestamp(0));
        x.host = "490154203237518.t.example".into();
        x.anomalies = vec![Anomaly::new("body-truncated", "b")];
        let imei = |b: &[u8]| b.windows(15).any(|w| w.iter().all(u8::is_ascii_digit));
        let probe = crate::net::tap::DataProbe(std::sync::Arc::new(imei));
        let mut hosts = HostMask::new(probe, false);
        let analysis = [Anomaly::new("decompression-limit", "d")];
        let mut t = AnomalyTally::default();
        let lines = t.add_exchange(&x, &analysis, &mut hosts, false);
        assert_eq!(
            lines,
            [
                "consentry: anomaly body-truncated (source) in exchange x-2 to •••.t.example; later ones of this kind are counted",
                "consentry: anomaly decompression-limit (analysis) in exchange x-2 to •••.t.example; later ones of this kind are counted",
            ]
        );
        assert!(t.add_exchange(&x, &analysis, &mut hosts, false).is_empty());
        assert_eq!(t.total(), 4);
    }

    #[test]
    fn the_detail_only_with_reveal() {
        let mut x = Exchange::new("x-1", SourceKind::Proxy, Timestamp(0));
        x.host = "t.example".into();
        let a = Anomaly::new("content-decoding-error", "imei=490154203237518");
        let quiet = first_of_kind_line(&x.id, &x.host, &a, true, false);
        assert_eq!(
            quiet,
            "consentry: anomaly content-decoding-error (analysis) in exchange x-1 to t.example; later ones of this kind are counted"
        );
        assert!(first_of_kind_line(&x.id, &x.host, &a, false, true)
            .contains("(source) in exchange x-1 to t.example: imei=490154203237518;"));
    }
}
