//! Output of findings: a table for people, JSON and JSON lines for machines
//! (DESIGN.md §6), and the case report (one self-contained HTML file, Markdown or
//! JSON) built from a [`ReportInput`]. Every format is deterministic: findings are
//! sorted by time, then id, and times are UTC.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use crate::net::pcapdroid::AppTraffic;
use crate::rules::{Finding, RuleId, Severity};

pub mod har;
pub mod host_mask;
pub mod html;
pub mod input;
pub mod md;
pub mod model;
pub mod servers;
mod table;

pub use input::{CaseFileInfo, CaseInfo, ReportInput};
pub use model::Report;
pub use table::{fit, write_table};

/// Forms of the case report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ReportFormat {
    /// One self-contained HTML file (inline CSS and SVG).
    #[default]
    Html,
    /// The same content as Markdown.
    Md,
    /// The same content as data.
    Json,
}

/// Renders the case report of `input` in `format`, with citation texts from the
/// embedded catalogue.
pub fn write_report(
    input: &ReportInput,
    format: ReportFormat,
    out: &mut dyn Write,
) -> io::Result<()> {
    let report = Report::build(input, &crate::rules::Catalogue::embedded());
    match format {
        ReportFormat::Html => html::write_html(&report, out),
        ReportFormat::Md => md::write_md(&report, out),
        ReportFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &report)?;
            out.write_all(b"\n")
        }
    }
}

/// Conflicts between signals and manual decisions listed in a summary.
pub const MAX_CONFLICTS_LISTED: usize = 20;

/// Output formats of commands that print results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Jsonl,
}

/// One input file of a run.
#[derive(Debug, Clone, Serialize)]
pub struct InputInfo {
    pub path: String,
    pub kind: String,
    pub sha256: String,
    pub exchanges: u64,
    /// What a stored capture was analysed with (`IngestOptions::describe`: the case
    /// file, `--device`, key logs …); empty for other files and one-shot runs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub read_with: Vec<String>,
}

/// What the packet captures of a run held (absent when there were none).
///
/// Also stored with each completed capture ingest (so a case report can say what the
/// captures could and could not show): every field defaults when absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrafficSummary {
    pub packets: u64,
    pub bytes: u64,
    pub tcp_connections: u64,
    pub udp_flows: u64,
    pub dns_messages: u64,
    /// mDNS messages about the operating systems' own services and host names only
    /// (the devices' names, addresses or serial numbers to the local network): not
    /// judged as an app's.
    #[serde(skip_serializing_if = "is_zero")]
    pub mdns_system: u64,
    /// Frames that could not be decoded, by kind (`packet-truncated`, …).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub packet_errors: BTreeMap<String, u64>,
    /// Packets taken out of tunnels, by tunnel (`vxlan`, `gre`, …; a packet inside
    /// two tunnels counts for each).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tunnelled: BTreeMap<String, u64>,
    /// Exchanges whose client is no device of the case …
    pub unknown_client_exchanges: u64,
    /// … and the busiest of those clients, with their exchange counts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unknown_clients: Vec<(String, u64)>,
    /// What the captures' DHCP said of those clients, by address
    /// (`host name "Pixel-7", MAC 3c:5a:b4:01:02:03, vendor class "android-dhcp-14"`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub unknown_client_dhcp: BTreeMap<String, String>,
    /// pcapng Decryption Secrets Blocks seen.
    #[serde(skip_serializing_if = "is_zero")]
    pub secrets_blocks: u64,
    /// TLS connections whose application data was decrypted …
    #[serde(skip_serializing_if = "is_zero")]
    pub tls_decrypted: u64,
    /// … and those that were not, by reason (`no-key`, `unsupported-suite`,
    /// `missing-handshake`, `authentication-failed`, `unsupported-version`, `lost-sync`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tls_not_decrypted: BTreeMap<String, u64>,
    /// Those not decrypted for want of a key whose key came later in the capture (in
    /// a secrets block after their handshakes): `--secrets-first` decrypts them.
    #[serde(skip_serializing_if = "is_zero", default)]
    pub tls_keys_late: u64,
    /// WPA 4-way handshakes that gave a station's key (`--wlan-keys`) …
    #[serde(skip_serializing_if = "is_zero")]
    pub wlan_handshakes: u64,
    /// … those that matched no key given, or of a kind not followed …
    #[serde(skip_serializing_if = "is_zero")]
    pub wlan_handshakes_unmatched: u64,
    /// … and the protected 802.11 frames decrypted.
    #[serde(skip_serializing_if = "is_zero")]
    pub wlan_decrypted: u64,
    /// TKIP frames that a key decrypted but whose Michael MIC was wrong: forged or
    /// damaged, dropped by any receiver, not analysed.
    #[serde(skip_serializing_if = "is_zero")]
    pub wlan_michael_failures: u64,
    /// MSDUs put together from 802.11 fragments …
    #[serde(skip_serializing_if = "is_zero")]
    pub wlan_reassembled: u64,
    /// … and fragments that went into none (one of their MSDU's missing or injected,
    /// or the capture ended first); repetitions not counted.
    #[serde(skip_serializing_if = "is_zero")]
    pub wlan_fragments_dropped: u64,
    /// Exchanges per Android app where the captures name apps (PCAPdroid), busiest
    /// first, at most [`MAX_APPS_SHOWN`] …
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub apps: Vec<AppTraffic>,
    /// … those of apps other than the case's …
    #[serde(skip_serializing_if = "is_zero")]
    pub other_app_exchanges: u64,
    /// … and whether they were judged all the same (`--all-apps`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub other_apps_judged: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Unknown clients listed in a run's summary.
pub const MAX_UNKNOWN_CLIENTS_SHOWN: usize = 20;
/// Apps listed in a run's summary.
pub const MAX_APPS_SHOWN: usize = 20;

impl TrafficSummary {
    /// Adds another capture's counts to these.
    pub fn merge(&mut self, other: TrafficSummary) {
        self.packets += other.packets;
        self.bytes += other.bytes;
        self.tcp_connections += other.tcp_connections;
        self.udp_flows += other.udp_flows;
        self.dns_messages += other.dns_messages;
        self.mdns_system += other.mdns_system;
        for (k, n) in other.packet_errors {
            *self.packet_errors.entry(k).or_default() += n;
        }
        for (k, n) in other.tunnelled {
            *self.tunnelled.entry(k).or_default() += n;
        }
        self.unknown_client_exchanges += other.unknown_client_exchanges;
        let mut clients: BTreeMap<String, u64> = self.unknown_clients.drain(..).collect();
        for (addr, n) in other.unknown_clients {
            *clients.entry(addr).or_default() += n;
        }
        self.unknown_clients = clients.into_iter().collect();
        self.unknown_clients
            .sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        self.unknown_clients.truncate(MAX_UNKNOWN_CLIENTS_SHOWN);
        // Captures merge in capture order: the later one's DHCP is the newer.
        self.unknown_client_dhcp.extend(other.unknown_client_dhcp);
        let shown = &self.unknown_clients;
        self.unknown_client_dhcp
            .retain(|addr, _| shown.iter().any(|(a, _)| a == addr));
        self.secrets_blocks += other.secrets_blocks;
        self.tls_decrypted += other.tls_decrypted;
        for (k, n) in other.tls_not_decrypted {
            *self.tls_not_decrypted.entry(k).or_default() += n;
        }
        self.tls_keys_late += other.tls_keys_late;
        self.wlan_handshakes += other.wlan_handshakes;
        self.wlan_handshakes_unmatched += other.wlan_handshakes_unmatched;
        self.wlan_decrypted += other.wlan_decrypted;
        self.wlan_michael_failures += other.wlan_michael_failures;
        self.wlan_reassembled += other.wlan_reassembled;
        self.wlan_fragments_dropped += other.wlan_fragments_dropped;
        // The same UID may be another app in another capture: merged only when
        // everything the captures said about it agrees.
        for app in other.apps {
            let same = self.apps.iter_mut().find(|a| a.app == app.app);
            match same {
                Some(a) => a.exchanges += app.exchanges,
                None => self.apps.push(app),
            }
        }
        self.apps.sort_by(|a, b| {
            b.exchanges
                .cmp(&a.exchanges)
                .then(a.app.uid.cmp(&b.app.uid))
        });
        self.apps.truncate(MAX_APPS_SHOWN);
        self.other_app_exchanges += other.other_app_exchanges;
        self.other_apps_judged |= other.other_apps_judged;
    }

    /// TLS connections seen (decrypted or not).
    pub fn tls_connections(&self) -> u64 {
        self.tls_decrypted + self.tls_not_decrypted_total()
    }

    /// TLS connections that were not decrypted, whatever the reason.
    pub fn tls_not_decrypted_total(&self) -> u64 {
        self.tls_not_decrypted.values().sum()
    }
}

/// Hosts of the exchanges with the operating systems' own services a summary names,
/// busiest first.
pub const MAX_PLATFORM_HOSTS_LISTED: usize = 16;

/// Exchanges counted, and per host for at most [`HostCounts::MAX_HOSTS`] hosts
/// (traffic can name any number of hosts under a listed domain): the rest are in
/// the total only ([`list_hosts`] says how many more there were).
#[derive(Debug, Clone, Default)]
pub struct HostCounts {
    by_host: BTreeMap<String, u64>,
    total: u64,
}

impl HostCounts {
    pub const MAX_HOSTS: usize = 1024;

    pub fn add(&mut self, host: &str) {
        self.total += 1;
        if let Some(n) = self.by_host.get_mut(host) {
            *n += 1;
        } else if self.by_host.len() < Self::MAX_HOSTS {
            self.by_host.insert(host.to_string(), 1);
        }
    }

    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &HostCounts) {
        self.total += other.total;
        for (host, n) in &other.by_host {
            let room = self.by_host.len() < Self::MAX_HOSTS;
            match self.by_host.get_mut(host) {
                Some(m) => *m += n,
                None if room => {
                    self.by_host.insert(host.clone(), *n);
                }
                None => {}
            }
        }
    }

    /// Exchanges counted, named or not.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The `max` busiest hosts with their counts (ties by name).
    pub fn busiest(&self, max: usize) -> Vec<(String, u64)> {
        let mut hosts: Vec<(String, u64)> =
            self.by_host.iter().map(|(h, n)| (h.clone(), *n)).collect();
        hosts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        hosts.truncate(max);
        hosts
    }
}

/// `host count` pairs, comma-separated, and how many exchanges of `total` they leave
/// out (`android.clients.google.com 2, mtalk.google.com 1, 3 more`).
pub fn list_hosts(hosts: &[(String, u64)], total: u64) -> String {
    let mut items: Vec<String> = hosts.iter().map(|(h, n)| format!("{h} {n}")).collect();
    let listed: u64 = hosts.iter().map(|(_, n)| n).sum();
    if total > listed {
        items.push(format!("{} more", total - listed));
    }
    items.join(", ")
}

/// `name count` pairs of a count map, comma-separated (`no-key 3, lost-sync 1`).
pub fn list_counts(counts: &BTreeMap<String, u64>) -> String {
    let items: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
    items.join(", ")
}

/// Counts describing a run, printed with the findings.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunSummary {
    pub case: String,
    pub inputs: Vec<InputInfo>,
    /// Inputs that could not be read, or not to the end (the findings before the
    /// defect are kept).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub input_errors: Vec<String>,
    /// Packet-level counts of the pcap/pcapng inputs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic: Option<TrafficSummary>,
    pub exchanges: u64,
    pub exchanges_with_personal_data: u64,
    /// Exchanges with the operating systems' own services (device check-in,
    /// connectivity checks, the system's push channel …) that were not judged as the
    /// app's (`rules.flag_platform` off) …
    #[serde(skip_serializing_if = "is_zero")]
    pub platform_exchanges: u64,
    /// … and those of them with personal data …
    #[serde(skip_serializing_if = "is_zero")]
    pub platform_with_personal_data: u64,
    /// … and their hosts with their counts, the [`MAX_PLATFORM_HOSTS_LISTED`]
    /// busiest.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platform_hosts: Vec<(String, u64)>,
    pub metadata_only: u64,
    pub anomalies: u64,
    /// Anomaly counts by kind.
    pub anomaly_kinds: BTreeMap<String, u64>,
    /// Consent signals in the traffic that disagree with the user's recorded
    /// decisions (which win): how many, and the first [`MAX_CONFLICTS_LISTED`].
    pub consent_conflicts: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub consent_conflict_examples: Vec<String>,
    pub findings: u64,
    pub findings_by_rule: BTreeMap<String, u64>,
    pub findings_by_severity: BTreeMap<String, u64>,
}

impl RunSummary {
    /// Counts conflicts, keeping the first few as examples.
    pub fn add_conflicts(&mut self, conflicts: Vec<String>) {
        self.consent_conflicts += conflicts.len() as u64;
        let room = MAX_CONFLICTS_LISTED.saturating_sub(self.consent_conflict_examples.len());
        self.consent_conflict_examples
            .extend(conflicts.into_iter().take(room));
    }

    /// Fills the finding counts from `findings`.
    pub fn count_findings(&mut self, findings: &[Finding]) {
        self.findings = findings.len() as u64;
        self.findings_by_rule.clear();
        self.findings_by_severity.clear();
        for f in findings {
            *self
                .findings_by_rule
                .entry(f.rule.as_str().to_string())
                .or_default() += 1;
            *self
                .findings_by_severity
                .entry(f.severity.as_str().to_string())
                .or_default() += 1;
        }
    }
}

/// Sorts findings into their output order: time, exchange, rule (catalogue order),
/// then id.
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        (a.at, &a.exchange, rule_order(a.rule.as_str()), &a.id).cmp(&(
            b.at,
            &b.exchange,
            rule_order(b.rule.as_str()),
            &b.id,
        ))
    });
}

/// One finding per line, exactly the DESIGN.md §6 object.
pub fn write_jsonl(findings: &[Finding], out: &mut dyn Write) -> io::Result<()> {
    for f in findings {
        serde_json::to_writer(&mut *out, f)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// One JSON document: `{"summary": …, "findings": […]}`.
pub fn write_json(
    summary: &RunSummary,
    findings: &[Finding],
    out: &mut dyn Write,
) -> io::Result<()> {
    #[derive(Serialize)]
    struct Doc<'a> {
        summary: &'a RunSummary,
        findings: &'a [Finding],
    }
    serde_json::to_writer_pretty(&mut *out, &Doc { summary, findings })?;
    out.write_all(b"\n")
}

/// Whether any finding is at or above `threshold` (for `--fail-on`).
pub fn any_at_or_above(findings: &[Finding], threshold: Severity) -> bool {
    findings.iter().any(|f| f.severity >= threshold)
}

/// Rules in catalogue order, for stable listings.
pub fn rule_order(rule: &str) -> usize {
    RuleId::ALL
        .iter()
        .position(|r| r.as_str() == rule)
        .unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_summaries_keep_what_dhcp_said_of_the_clients_they_list() {
        let mut a = TrafficSummary {
            unknown_client_exchanges: 1,
            unknown_clients: vec![("10.0.0.1".into(), 1)],
            unknown_client_dhcp: [("10.0.0.1".to_string(), "MAC 02:00:00:00:00:01".to_string())]
                .into_iter()
                .collect(),
            ..TrafficSummary::default()
        };
        // The other capture lists 21 busier clients, one of them described: the
        // first capture's client drops out of the list, and so does its description.
        let mut b = TrafficSummary::default();
        for i in 0..=MAX_UNKNOWN_CLIENTS_SHOWN {
            b.unknown_clients.push((format!("10.0.1.{i}"), 5));
        }
        b.unknown_client_dhcp
            .insert("10.0.1.3".into(), "MAC 02:00:00:00:01:03".into());
        a.merge(b);
        assert_eq!(a.unknown_clients.len(), MAX_UNKNOWN_CLIENTS_SHOWN);
        assert_eq!(
            a.unknown_client_dhcp.keys().collect::<Vec<_>>(),
            ["10.0.1.3"]
        );
        // A later capture's word on the same client is the newer.
        let mut c = TrafficSummary {
            unknown_clients: vec![("10.0.1.3".into(), 9)],
            ..TrafficSummary::default()
        };
        c.unknown_client_dhcp
            .insert("10.0.1.3".into(), "MAC 02:00:00:00:02:03".into());
        a.merge(c);
        assert_eq!(a.unknown_client_dhcp["10.0.1.3"], "MAC 02:00:00:00:02:03");
    }

    #[test]
    fn host_counts_name_the_busiest_and_stay_bounded() {
        let mut a = HostCounts::default();
        for host in [
            "b.example",
            "a.example",
            "b.example",
            "c.example",
            "c.example",
        ] {
            a.add(host);
        }
        let pairs = |v: &[(&str, u64)]| -> Vec<(String, u64)> {
            v.iter().map(|(h, n)| (h.to_string(), *n)).collect()
        };
        // Busiest first, ties by name; cut to `max`.
        assert_eq!(a.busiest(2), pairs(&[("b.example", 2), ("c.example", 2)]));
        assert_eq!(
            list_hosts(&a.busiest(2), 5),
            "b.example 2, c.example 2, 1 more"
        );
        assert_eq!(
            list_hosts(&a.busiest(16), 5),
            "b.example 2, c.example 2, a.example 1"
        );
        let mut b = HostCounts::default();
        b.add("a.example");
        b.add("d.example");
        a.merge(&b);
        assert_eq!(
            a.busiest(16),
            pairs(&[
                ("a.example", 2),
                ("b.example", 2),
                ("c.example", 2),
                ("d.example", 1)
            ])
        );
        // Any number of names under a listed domain: at most MAX_HOSTS are kept.
        let mut many = HostCounts::default();
        for i in 0..HostCounts::MAX_HOSTS + 10 {
            many.add(&format!("{i}-courier.push.apple.com"));
        }
        many.add("0-courier.push.apple.com");
        assert_eq!(many.by_host.len(), HostCounts::MAX_HOSTS);
        assert_eq!(many.busiest(1), pairs(&[("0-courier.push.apple.com", 2)]));
        assert_eq!(many.total(), HostCounts::MAX_HOSTS as u64 + 11);
        let mut merged = HostCounts::default();
        merged.merge(&many);
        merged.merge(&b);
        assert_eq!(merged.by_host.len(), HostCounts::MAX_HOSTS);
    }
}
