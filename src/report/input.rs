//! What a case report is made from: plain data, so that a one-shot analysis
//! (`consentry analyze --report`) and the case store can both feed the renderers.
//!
//! Everything in here may come from traffic (hosts, paths, notes) and is treated as
//! hostile text by the renderers: they escape it, never interpret it.

use std::collections::BTreeMap;

use serde::Serialize;

use super::host_mask::HostMask;
use super::{InputInfo, TrafficSummary};
use crate::case::Case;
use crate::consent::ConsentEvent;
use crate::rules::Finding;
use crate::timestamp::Timestamp;

/// Who and what the case is about.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CaseInfo {
    pub id: String,
    pub title: String,
    /// The app's display name.
    pub app: String,
    /// The app's package or bundle id.
    pub package: String,
    /// Device ids of the case, in case-file order.
    pub devices: Vec<String>,
    /// Which case file these came from (`None` where the caller does not say).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<CaseFileInfo>,
}

/// The case file a report is framed by (title, app, devices, the operating systems'
/// hosts). From a case store: the case directory's own when a run read it, else the
/// evidence copy of the one the runs stored last; for `analyze --report`, the file
/// as given.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CaseFileInfo {
    /// SHA-256 of its bytes (hex).
    pub sha256: String,
    /// Where it was read: in a case store, relative to the case directory
    /// (`consentry.toml` or an evidence copy); else the path as given.
    pub path: String,
    /// Why it is not the case directory's own case file, or that the runs read other
    /// versions too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl CaseInfo {
    /// The report's view of a case file.
    pub fn from_case(case: &Case) -> Self {
        CaseInfo {
            id: case.meta.id.clone(),
            title: case.meta.title.clone(),
            app: case.app.name.clone(),
            package: case.app.package.clone(),
            devices: case.devices.iter().map(|d| d.id.clone()).collect(),
            file: None,
        }
    }
}

/// Everything a report shows, as plain data.
#[derive(Debug, Clone, Default)]
pub struct ReportInput {
    pub case: CaseInfo,
    /// Consent events of every device, manual and wire (any order: the report sorts).
    pub consent: Vec<ConsentEvent>,
    pub findings: Vec<Finding>,
    /// Request line (`METHOD scheme://host/path?query`) of the exchanges that have
    /// findings, by exchange id, as captured. The renderers mask query values and
    /// identifier-like path segments unless the exchange's findings carry revealed
    /// values.
    pub request_lines: BTreeMap<String, String>,
    /// The servers that answered for each destination host of the findings: their
    /// addresses and certificates (see [`super::servers`]).
    pub servers: super::servers::ServersByHost,
    /// The evidence files: path, kind, SHA-256, exchange count.
    pub evidence: Vec<InputInfo>,
    /// Exchanges analysed in all.
    pub exchanges: u64,
    /// Those of a case device that went to the operating systems' own services and
    /// were not judged as the app's (`rules.flag_platform` off) …
    pub platform_exchanges: u64,
    /// … and their hosts, the busiest first (see [`super::RunSummary`]).
    pub platform_hosts: Vec<(String, u64)>,
    /// What the packet captures held, all inputs together (`None` without captures,
    /// or from a store whose ingests predate this record).
    pub traffic: Option<TrafficSummary>,
    /// Head of the case store's hash chain (hex); `None` for a one-shot analysis.
    pub chain_head: Option<String>,
    /// When the report was made; `None` leaves it out, keeping output reproducible.
    pub generated_at: Option<Timestamp>,
}

impl ReportInput {
    /// Shows every host name the report names as `hosts` shows it (see
    /// [`HostMask`]): the findings' hosts and the summaries naming them, the request
    /// lines' hosts, the servers' hosts and the systems' hosts. Two names shown alike
    /// become one receiver. A report whose findings carry values (`--reveal`) keeps
    /// them whole, as it keeps its request lines whole.
    pub fn mask_hosts(&mut self, hosts: &mut HostMask) {
        let revealed = self
            .findings
            .iter()
            .any(|f| f.data.iter().any(|d| d.value.is_some()));
        if revealed {
            return;
        }
        for f in &mut self.findings {
            let host = f.destination.host.clone();
            let shown = hosts.show(&host);
            if *shown == *host {
                continue;
            }
            let shown = shown.into_owned();
            f.summary = f.summary.replace(&host, &shown);
            if let Some(line) = self.request_lines.get_mut(&f.exchange) {
                *line = replace_ignoring_ascii_case(line, &host, &shown);
            }
            std::sync::Arc::make_mut(&mut f.destination).host = shown;
        }
        for (host, seen) in std::mem::take(&mut self.servers) {
            let shown = hosts.show(&host).into_owned();
            match self.servers.get_mut(&shown) {
                Some(kept) => kept.absorb(seen),
                None => {
                    self.servers.insert(shown, seen);
                }
            }
        }
        let mut platform: Vec<(String, u64)> = Vec::with_capacity(self.platform_hosts.len());
        for (host, n) in std::mem::take(&mut self.platform_hosts) {
            let shown = hosts.show(&host).into_owned();
            match platform.iter_mut().find(|(h, _)| *h == shown) {
                Some((_, total)) => *total += n,
                None => platform.push((shown, n)),
            }
        }
        // Still the busiest first.
        platform.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        self.platform_hosts = platform;
    }
}

/// `text` with every occurrence of `from` (ASCII case ignored: a request line keeps
/// the host as the request wrote it) replaced by `to`.
fn replace_ignoring_ascii_case(text: &str, from: &str, to: &str) -> String {
    if from.is_empty() {
        return text.to_string();
    }
    let (lower, from) = (text.to_ascii_lowercase(), from.to_ascii_lowercase());
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    // ASCII lower-casing keeps every byte offset: the matches in `lower` are at
    // character boundaries of `text` too.
    for (at, _) in lower.match_indices(&from) {
        out.push_str(&text[copied..at]);
        out.push_str(to);
        copied = at + from.len();
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::tap::DataProbe;
    use crate::parties::Party;
    use crate::report::model::testing::finding;
    use crate::report::servers::ServersSeen;
    use crate::rules::RuleId;

    /// The case's search, standing in: data is any run of 15 digits.
    fn imei_probe() -> HostMask {
        let imei = |b: &[u8]| b.windows(15).any(|w| w.iter().all(u8::is_ascii_digit));
        HostMask::new(DataProbe(std::sync::Arc::new(imei)), false)
    }

    fn seen(address: &str) -> ServersSeen {
        let mut s = ServersSeen::default();
        s.note(Some(address), None);
        s
    }

    #[test]
    fn every_name_the_report_shows_is_masked_where_it_carries_data() {
        let (a, b) = (
            "490154203237518.b.sdk.example",
            "356938035643809.b.sdk.example",
        );
        let mut f = finding(
            1,
            5,
            RuleId::ShareBeforeConsent,
            a,
            None,
            Party::Third,
            &["imei"],
        );
        f.summary = format!("imei (md5) sent to {a} before any consent decision");
        let g = finding(
            2,
            6,
            RuleId::ShareBeforeConsent,
            b,
            None,
            Party::Third,
            &["imei"],
        );
        let plain = finding(
            3,
            7,
            RuleId::ShareBeforeConsent,
            "t.example",
            None,
            Party::Third,
            &["imei"],
        );
        let mut input = ReportInput {
            findings: vec![f, g, plain],
            ..ReportInput::default()
        };
        // The request line keeps the host as the request wrote it.
        let upper = "356938035643809.B.SDK.EXAMPLE";
        input.request_lines.insert(
            "x-0001".into(),
            "(connection only) 490154203237518.b.sdk.example".into(),
        );
        input
            .request_lines
            .insert("x-0002".into(), format!("GET http://{upper}/p?q=1"));
        input
            .request_lines
            .insert("x-0003".into(), "GET http://t.example/".into());
        input.servers.insert(a.into(), seen("192.0.2.1"));
        input.servers.insert(b.into(), seen("192.0.2.2"));
        input.servers.insert("t.example".into(), seen("192.0.2.3"));
        input.platform_hosts = vec![(a.into(), 3), ("os.example".into(), 2), (b.into(), 2)];
        let mut masked = input.clone();
        masked.mask_hosts(&mut imei_probe());

        let hosts: Vec<&str> = masked
            .findings
            .iter()
            .map(|f| f.destination.host.as_str())
            .collect();
        assert_eq!(
            hosts,
            ["•••.b.sdk.example", "•••.b.sdk.example", "t.example"]
        );
        assert_eq!(
            masked.findings[0].summary,
            "imei (md5) sent to •••.b.sdk.example before any consent decision"
        );
        let lines: Vec<&str> = masked.request_lines.values().map(String::as_str).collect();
        assert_eq!(
            lines,
            [
                "(connection only) •••.b.sdk.example",
                "GET http://•••.b.sdk.example/p?q=1",
                "GET http://t.example/"
            ]
        );
        // Two names shown alike: one host, whose servers are both.
        let servers: Vec<(&str, u64)> = masked
            .servers
            .iter()
            .map(|(h, s)| (h.as_str(), s.exchanges))
            .collect();
        assert_eq!(servers, [("t.example", 1), ("•••.b.sdk.example", 2)]);
        assert_eq!(
            masked.platform_hosts,
            [
                ("•••.b.sdk.example".to_string(), 5),
                ("os.example".to_string(), 2)
            ]
        );

        // Findings that carry their values: the report is revealed, names whole.
        let mut revealed = input.clone();
        revealed.findings[2].data[0].value = Some("490154203237518".into());
        revealed.mask_hosts(&mut imei_probe());
        assert_eq!(revealed.findings, {
            let mut want = input.findings.clone();
            want[2].data[0].value = Some("490154203237518".into());
            want
        });
        assert_eq!(revealed.request_lines, input.request_lines);
        assert_eq!(revealed.servers, input.servers);
    }
}
