//! The case report's content, computed once from a [`ReportInput`] and rendered as
//! HTML, Markdown or JSON (the JSON form is this struct serialised), so the three
//! formats cannot disagree.
//!
//! Policies:
//! - Order is deterministic: devices in case order (then any others by name), events
//!   and marks by time, groups by receiver then data type, citations in catalogue
//!   order.
//! - Findings are grouped by receiving company (the tracker database's entity, else
//!   the host) and data type; a finding with several data types counts in each of its
//!   groups, one without data (a metadata-only contact) under `connection`.
//! - Example request lines are masked ([`mask_request_line`]) unless the exchange's
//!   findings carry revealed values (`--reveal`); at most [`MAX_EXAMPLES`] per group,
//!   each cut to [`MAX_LINE_CHARS`].

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::input::{CaseInfo, ReportInput};
use super::{list_counts, rule_order, InputInfo, TrafficSummary};
use crate::consent::{describe_purposes, Decision};
use crate::parties::Party;
use crate::rules::{Catalogue, Citation, Finding, RuleId, Severity};
use crate::timestamp::Timestamp;

/// Example request lines listed per group.
pub const MAX_EXAMPLES: usize = 3;
/// Characters of a request line shown before it is cut with `…`.
pub const MAX_LINE_CHARS: usize = 240;
/// The data type of findings without personal data (metadata-only contacts).
pub const NO_DATA_TYPE: &str = "connection";
/// What masked values are replaced with.
pub const MASK: &str = "•••";

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub case: CaseInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generated_at: Option<Timestamp>,
    pub summary: Summary,
    pub timelines: Vec<DeviceTimeline>,
    pub groups: Vec<Group>,
    /// The servers that received the findings' transmissions, per host.
    pub servers: Vec<ServerView>,
    pub citations: Vec<Citation>,
    pub evidence: Vec<InputInfo>,
    /// What the packet captures held (absent without captures); see [`Report::visibility`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic: Option<TrafficSummary>,
    pub chain_head: Option<String>,
    /// The findings themselves, in output order (DESIGN.md §6 objects).
    pub findings: Vec<Finding>,
}

/// Counts at the top of the report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub exchanges: u64,
    /// Exchanges of the case's devices with the operating systems' own services,
    /// not judged as the app's.
    #[serde(skip_serializing_if = "is_zero")]
    pub platform_exchanges: u64,
    /// Their hosts, the busiest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platform_hosts: Vec<(String, u64)>,
    pub findings: u64,
    pub third_party_findings: u64,
    /// Findings made while the device had made no consent decision at all.
    pub before_any_decision: u64,
    pub by_severity: BTreeMap<String, u64>,
    /// Rules with their counts, in catalogue order.
    pub by_rule: Vec<RuleCount>,
    pub receivers: u64,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
}

/// How often one rule fired.
#[derive(Debug, Clone, Serialize)]
pub struct RuleCount {
    pub rule: String,
    pub severity: Severity,
    pub count: u64,
}

/// One device's consent decisions and flagged transmissions.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceTimeline {
    pub device: String,
    pub events: Vec<EventView>,
    pub marks: Vec<Mark>,
    /// The time range the picture spans (covers events and marks).
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
}

/// A consent decision as the report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct EventView {
    pub at: Timestamp,
    pub decision: Decision,
    /// `all purposes` or the purposes, comma separated.
    pub purposes: String,
    /// `manual` or `wire`.
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One flagged transmission (one finding) on a device's timeline.
#[derive(Debug, Clone, Serialize)]
pub struct Mark {
    pub at: Timestamp,
    pub rule: String,
    pub severity: Severity,
    pub party: Party,
    pub host: String,
    pub finding: String,
    pub summary: String,
}

/// Findings to one receiver of one data type.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    /// The company (entity) or, when unknown, the host.
    pub receiver: String,
    pub party: Party,
    /// The platform serving an unknown receiver's site (`Amazon CloudFront`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosted_by: Option<String>,
    pub hosts: Vec<String>,
    pub data_type: String,
    pub count: u64,
    pub first: Timestamp,
    pub last: Timestamp,
    pub encodings: Vec<String>,
    pub rules: Vec<String>,
    pub severity: Severity,
    pub examples: Vec<String>,
}

/// The servers of one destination host of the findings.
#[derive(Debug, Clone, Serialize)]
pub struct ServerView {
    pub host: String,
    /// As in [`Group::receiver`].
    pub receiver: String,
    pub party: Party,
    /// Exchanges with findings to this host.
    pub exchanges: u64,
    /// The addresses they went to, sorted.
    pub addresses: Vec<String>,
    #[serde(skip_serializing_if = "is_zero")]
    pub addresses_not_listed: u64,
    /// How many of the exchanges travelled with a server certificate.
    pub with_certificate: u64,
    pub certificates: Vec<CertificateView>,
    #[serde(skip_serializing_if = "is_zero")]
    pub certificates_not_listed: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl ServerView {
    /// What the address list leaves out, as plain text.
    pub fn addresses_note(&self) -> Option<String> {
        (self.addresses_not_listed > 0)
            .then(|| format!("{} more exchanges elsewhere", self.addresses_not_listed))
    }

    /// What the certificate list leaves out, as plain text: exchanges under other
    /// certificates, and those that travelled without one.
    pub fn certificate_notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if self.certificates_not_listed > 0 {
            notes.push(format!(
                "{} more exchanges with other certificates",
                self.certificates_not_listed
            ));
        }
        if self.with_certificate < self.exchanges {
            notes.push(format!(
                "{} of {} exchanges without one (plain HTTP, a resumed TLS session, or \
                 encrypted without keys)",
                self.exchanges - self.with_certificate,
                self.exchanges
            ));
        }
        notes
    }
}

/// A certificate a server presented for the host.
#[derive(Debug, Clone, Serialize)]
pub struct CertificateView {
    #[serde(flatten)]
    pub certificate: crate::exchange::ServerCertificate,
    /// Whether its subject alternative names cover the host
    /// ([`crate::net::tls_certificate::names_host`]).
    pub names_host: bool,
}

impl Report {
    /// Computes the report of `input`; citation texts come from `catalogue`.
    pub fn build(input: &ReportInput, catalogue: &Catalogue) -> Report {
        let mut findings = input.findings.clone();
        super::sort_findings(&mut findings);
        Report {
            case: input.case.clone(),
            generated_at: input.generated_at,
            summary: summarise(input, &findings),
            timelines: timelines(input, &findings),
            groups: groups(input, &findings),
            servers: servers(input, &findings),
            citations: citations(&findings, catalogue),
            evidence: input.evidence.clone(),
            traffic: input.traffic.clone(),
            chain_head: input.chain_head.clone(),
            findings,
        }
    }

    /// Whether any input said where a finding's transmission went (an address or a
    /// certificate): only then does the report list the receiving servers.
    pub fn servers_known(&self) -> bool {
        self.servers
            .iter()
            .any(|s| !s.addresses.is_empty() || !s.certificates.is_empty())
    }

    /// The heading of [`Report::visibility`]'s sentences: about captures when there
    /// were any, else about the inputs (the proxy's, a HAR file's).
    pub fn visibility_heading(&self) -> &'static str {
        if self.traffic.is_some() {
            "What the captures could show:"
        } else {
            "What the inputs could show:"
        }
    }

    /// What the captures could and could not show, as sentences for the evidence
    /// section (plain text: the renderers escape it), and what was not judged of any
    /// input (the operating systems' own traffic). A reader of the findings must
    /// know that traffic which was not decrypted was judged by its connection only.
    pub fn visibility(&self) -> Vec<String> {
        let mut lines = match &self.traffic {
            Some(t) => Self::capture_visibility(t),
            None => Vec::new(),
        };
        let s = &self.summary;
        if s.platform_exchanges > 0 {
            let mut line = format!(
                "{} exchanges went to the operating systems' own services (device \
                 check-in, connectivity checks, the system's push channel, updates): the \
                 platform vendor's collection, not the app's, so they were not judged \
                 (rules.flag_platform = true in the case file judges them)",
                s.platform_exchanges
            );
            if !s.platform_hosts.is_empty() {
                line.push_str(": ");
                line.push_str(&super::list_hosts(&s.platform_hosts, s.platform_exchanges));
            }
            line.push('.');
            lines.push(line);
        }
        lines
    }

    /// [`Report::visibility`]'s sentences about the packet captures.
    fn capture_visibility(t: &TrafficSummary) -> Vec<String> {
        let mut lines = vec![format!(
            "The captures held {} packets ({} bytes): {} TCP connections, {} UDP flows, \
             {} DNS messages.",
            t.packets, t.bytes, t.tcp_connections, t.udp_flows, t.dns_messages
        )];
        if t.mdns_system > 0 {
            lines.push(format!(
                "{} multicast DNS messages were the operating systems' own service \
                 announcements and queries (a device's name, address or serial number \
                 to the local network, as the system's network services send them): \
                 not judged as the app's, not searched.",
                t.mdns_system
            ));
        }
        if !t.tunnelled.is_empty() {
            lines.push(format!(
                "Packets were taken out of tunnels and analysed as the devices sent them \
                 ({}).",
                list_counts(&t.tunnelled)
            ));
        }
        let tls = t.tls_connections();
        let not_decrypted = t.tls_not_decrypted_total();
        if not_decrypted > 0 {
            lines.push(format!(
                "{tls} TLS connections: {} decrypted, {not_decrypted} not ({}). Those not \
                 decrypted were judged by their connection only (time, device, server name); \
                 personal data they may carry is not in these findings.",
                t.tls_decrypted,
                list_counts(&t.tls_not_decrypted)
            ));
            if t.tls_keys_late > 0 {
                lines.push(format!(
                    "The keys of {} of them were in the capture, in a secrets block written \
                     after their handshakes; analysed with --secrets-first, which reads a \
                     capture's secrets before its packets, they are decrypted.",
                    t.tls_keys_late
                ));
            }
        } else if tls > 0 {
            lines.push(format!("{tls} TLS connections, all decrypted."));
        }
        if t.wlan_handshakes > 0 {
            lines.push(format!(
                "{} protected Wi-Fi frames were decrypted with the network's key, from {} \
                 WPA handshakes; protected frames that could not be are counted as \
                 wlan-protected below and were not analysed.",
                t.wlan_decrypted, t.wlan_handshakes
            ));
        } else if t.wlan_decrypted > 0 {
            lines.push(format!(
                "{} protected Wi-Fi frames were decrypted with the keys given (WEP, or \
                 temporal keys); protected frames that could not be are counted as \
                 wlan-protected below and were not analysed.",
                t.wlan_decrypted
            ));
        }
        if t.wlan_handshakes_unmatched > 0 {
            lines.push(format!(
                "{} WPA handshakes matched no key given (a wrong passphrase or SSID, or a \
                 WPA3 SAE association whose PMK was not given) or were of a kind not \
                 followed; their stations' frames were not decrypted.",
                t.wlan_handshakes_unmatched
            ));
        }
        if t.wlan_michael_failures > 0 {
            lines.push(format!(
                "{} TKIP-protected Wi-Fi frames decrypted with a station's key failed their \
                 Michael integrity check: forged or damaged on the air, they were dropped by \
                 their receiver and are not analysed (counted as wlan-protected below).",
                t.wlan_michael_failures
            ));
        }
        if t.wlan_fragments_dropped > 0 {
            lines.push(format!(
                "{} Wi-Fi fragments went into no packet: a fragment of their MSDU was \
                 missing from the capture, out of sequence (injected) or under another \
                 key, so what they carried is not analysed ({} MSDUs were put together \
                 from their fragments).",
                t.wlan_fragments_dropped, t.wlan_reassembled
            ));
        }
        if !t.packet_errors.is_empty() {
            let n: u64 = t.packet_errors.values().sum();
            lines.push(format!(
                "{n} frames could not be decoded ({}).",
                list_counts(&t.packet_errors)
            ));
        }
        if t.unknown_client_exchanges > 0 {
            lines.push(format!(
                "{} exchanges came from clients that are no device of the case; they are \
                 listed in the run's summary, not judged.",
                t.unknown_client_exchanges
            ));
            for (address, said) in &t.unknown_client_dhcp {
                lines.push(format!("DHCP named the client {address}: {said}."));
            }
        }
        if !t.apps.is_empty() {
            let apps: Vec<String> = t
                .apps
                .iter()
                .map(|a| {
                    format!(
                        "{} (UID {}, {} exchanges)",
                        a.app.display_name(),
                        a.app.uid,
                        a.exchanges
                    )
                })
                .collect();
            let mut line = format!(
                "The captures name the Android app of each connection (PCAPdroid): {}.",
                apps.join(", ")
            );
            if t.other_app_exchanges > 0 {
                line.push_str(&if t.other_apps_judged {
                    format!(
                        " {} exchanges of apps other than the case's were judged all the \
                         same (--all-apps): each finding names its app.",
                        t.other_app_exchanges
                    )
                } else {
                    format!(
                        " {} exchanges of apps other than the case's are not the app's \
                         traffic and were not judged.",
                        t.other_app_exchanges
                    )
                });
            }
            lines.push(line);
        }
        lines
    }
}

fn summarise(input: &ReportInput, findings: &[Finding]) -> Summary {
    let mut s = Summary {
        exchanges: input.exchanges,
        platform_exchanges: input.platform_exchanges,
        platform_hosts: input.platform_hosts.clone(),
        findings: findings.len() as u64,
        ..Summary::default()
    };
    let mut rules: BTreeMap<(usize, &str), (Severity, u64)> = BTreeMap::new();
    let mut receivers = BTreeSet::new();
    for f in findings {
        if f.destination.party == Party::Third {
            s.third_party_findings += 1;
        }
        if f.consent.event.is_none() && f.consent.state == "not-asked" {
            s.before_any_decision += 1;
        }
        *s.by_severity
            .entry(f.severity.as_str().to_string())
            .or_default() += 1;
        let r = rules
            .entry((rule_order(f.rule.as_str()), f.rule.as_str()))
            .or_insert((f.severity, 0));
        r.0 = r.0.max(f.severity);
        r.1 += 1;
        receivers.insert(receiver(f));
        s.first = Some(s.first.map_or(f.at, |t| t.min(f.at)));
        s.last = Some(s.last.map_or(f.at, |t| t.max(f.at)));
    }
    s.by_rule = rules
        .into_iter()
        .map(|((_, rule), (severity, count))| RuleCount {
            rule: rule.to_string(),
            severity,
            count,
        })
        .collect();
    s.receivers = receivers.len() as u64;
    s
}

/// The receiving company of a finding, else its host.
pub fn receiver(f: &Finding) -> String {
    f.destination
        .entity
        .clone()
        .unwrap_or_else(|| f.destination.host.clone())
}

fn timelines(input: &ReportInput, findings: &[Finding]) -> Vec<DeviceTimeline> {
    let mut devices: Vec<String> = input.case.devices.clone();
    let extra: BTreeSet<&str> = input
        .consent
        .iter()
        .map(|e| e.device.as_str())
        .chain(findings.iter().map(|f| f.device.as_str()))
        .filter(|d| !input.case.devices.iter().any(|c| c == d))
        .collect();
    devices.extend(extra.into_iter().map(str::to_string));
    devices
        .into_iter()
        .map(|device| {
            let mut evs: Vec<_> = input
                .consent
                .iter()
                .filter(|e| e.device == device)
                .collect();
            // Stable sort: simultaneous events keep their recorded order.
            evs.sort_by_key(|e| e.at);
            let events: Vec<EventView> = evs
                .into_iter()
                .map(|e| EventView {
                    at: e.at,
                    decision: e.decision,
                    purposes: describe_purposes(&e.purposes),
                    source: match e.source {
                        crate::consent::EventSource::Manual => "manual".into(),
                        crate::consent::EventSource::Wire => "wire".into(),
                    },
                    note: e.evidence.clone(),
                })
                .collect();
            let marks: Vec<Mark> = findings
                .iter()
                .filter(|f| f.device == device)
                .map(|f| Mark {
                    at: f.at,
                    rule: f.rule.as_str().to_string(),
                    severity: f.severity,
                    party: f.destination.party,
                    host: f.destination.host.clone(),
                    finding: f.id.clone(),
                    summary: f.summary.clone(),
                })
                .collect();
            let times = events
                .iter()
                .map(|e| e.at)
                .chain(marks.iter().map(|m| m.at));
            let start = times.clone().min();
            let end = times.max();
            DeviceTimeline {
                device,
                events,
                marks,
                start,
                end,
            }
        })
        .collect()
}

fn groups(input: &ReportInput, findings: &[Finding]) -> Vec<Group> {
    // Exchanges whose findings carry revealed values may be shown unmasked.
    let revealed: BTreeSet<&str> = findings
        .iter()
        .filter(|f| f.data.iter().any(|d| d.value.is_some()))
        .map(|f| f.exchange.as_str())
        .collect();
    let mut map: BTreeMap<(String, String), Group> = BTreeMap::new();
    for f in findings {
        let mut types: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for d in &f.data {
            types
                .entry(d.kind.as_str())
                .or_default()
                .insert(d.encoding.as_str());
        }
        if types.is_empty() {
            types.insert(NO_DATA_TYPE, BTreeSet::new());
        }
        let who = receiver(f);
        for (kind, encodings) in types {
            let g = map
                .entry((who.clone(), kind.to_string()))
                .or_insert_with(|| Group {
                    receiver: who.clone(),
                    party: f.destination.party,
                    hosted_by: f
                        .destination
                        .hosted_by
                        .clone()
                        .filter(|_| f.destination.entity.is_none()),
                    hosts: Vec::new(),
                    data_type: kind.to_string(),
                    count: 0,
                    first: f.at,
                    last: f.at,
                    encodings: Vec::new(),
                    rules: Vec::new(),
                    severity: f.severity,
                    examples: Vec::new(),
                });
            g.count += 1;
            g.first = g.first.min(f.at);
            g.last = g.last.max(f.at);
            g.severity = g.severity.max(f.severity);
            if f.destination.party == Party::Third {
                g.party = Party::Third;
            }
            insert_sorted(&mut g.hosts, &f.destination.host);
            for e in encodings {
                insert_sorted(&mut g.encodings, e);
            }
            if !g.rules.iter().any(|r| r == f.rule.as_str()) {
                g.rules.push(f.rule.as_str().to_string());
                g.rules.sort_by_key(|r| rule_order(r));
            }
            if g.examples.len() < MAX_EXAMPLES {
                if let Some(line) = input.request_lines.get(&f.exchange) {
                    let shown = if revealed.contains(f.exchange.as_str()) {
                        line.clone()
                    } else {
                        mask_request_line(line)
                    };
                    let shown = cut(&shown, MAX_LINE_CHARS);
                    if !g.examples.contains(&shown) {
                        g.examples.push(shown);
                    }
                }
            }
        }
    }
    map.into_values().collect()
}

/// The servers of each host the findings name, third parties first, then by
/// receiver and host.
fn servers(input: &ReportInput, findings: &[Finding]) -> Vec<ServerView> {
    let mut views: BTreeMap<(bool, String, String), ServerView> = BTreeMap::new();
    let mut done: BTreeSet<&str> = BTreeSet::new();
    for f in findings {
        let host = &f.destination.host;
        let Some(seen) = input.servers.get(host) else {
            continue;
        };
        if !done.insert(host) {
            continue;
        }
        let who = receiver(f);
        let key = (
            f.destination.party == Party::First,
            who.clone(),
            host.clone(),
        );
        let certificates = seen
            .certificates
            .values()
            .map(|(c, _)| CertificateView {
                certificate: c.clone(),
                names_host: crate::net::tls_certificate::names_host(c, host),
            })
            .collect();
        views.insert(
            key,
            ServerView {
                host: host.clone(),
                receiver: who,
                party: f.destination.party,
                exchanges: seen.exchanges,
                addresses: seen.addresses.keys().cloned().collect(),
                addresses_not_listed: seen.addresses_not_listed,
                with_certificate: seen.with_certificate,
                certificates,
                certificates_not_listed: seen.certificates_not_listed,
            },
        );
    }
    views.into_values().collect()
}

fn insert_sorted(v: &mut Vec<String>, s: &str) {
    if let Err(pos) = v.binary_search_by(|x| x.as_str().cmp(s)) {
        v.insert(pos, s.to_string());
    }
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Hides the values a request line may carry: every query (and fragment) value, and
/// path segments that look like identifiers (8 or more characters with at least 4
/// digits, or containing `@`). Keys and the rest of the path stay, so the reader sees
/// where the data went without seeing the data.
pub fn mask_request_line(line: &str) -> String {
    let (head, query) = match line.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (line, None),
    };
    // The path starts after `scheme://host`; the method and URL are left as they are.
    let path_start = head
        .find("://")
        .and_then(|i| head[i + 3..].find('/').map(|j| i + 3 + j))
        .unwrap_or(head.len());
    let (prefix, path) = head.split_at(path_start);
    let mut out = String::with_capacity(line.len());
    out.push_str(prefix);
    let masked_path: Vec<String> = path
        .split('/')
        .map(|seg| {
            let digits = seg.chars().filter(char::is_ascii_digit).count();
            if (seg.chars().count() >= 8 && digits >= 4) || seg.contains('@') {
                MASK.to_string()
            } else {
                seg.to_string()
            }
        })
        .collect();
    out.push_str(&masked_path.join("/"));
    if let Some(q) = query {
        out.push('?');
        let parts: Vec<String> = q
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) => format!("{k}={MASK}"),
                None if kv.is_empty() => String::new(),
                None => MASK.to_string(),
            })
            .collect();
        out.push_str(&parts.join("&"));
    }
    out
}

fn citations(findings: &[Finding], catalogue: &Catalogue) -> Vec<Citation> {
    let used: BTreeSet<&str> = findings
        .iter()
        .flat_map(|f| f.citations.iter().map(String::as_str))
        .collect();
    let mut out: Vec<Citation> = catalogue
        .citations
        .iter()
        .filter(|c| used.contains(c.id.as_str()))
        .cloned()
        .collect();
    // A citation the catalogue does not know (an older store) is still listed.
    for id in used {
        if !out.iter().any(|c| c.id == id) {
            out.push(Citation {
                id: id.to_string(),
                title: String::new(),
                reference: String::new(),
                text: String::new(),
            });
        }
    }
    out
}

/// Rules in catalogue order, as the legend lists them.
pub fn rule_ids() -> impl Iterator<Item = RuleId> {
    RuleId::ALL.into_iter()
}

/// Builders of report inputs for the renderers' tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::consent::{ConsentEvent, EventSource, Purpose};
    use crate::parties::Destination;
    use crate::pii::Confidence;
    use crate::rules::{ConsentInfo, DataItem};

    /// `2026-11-28T10:15:00Z` plus `s` seconds.
    pub fn at(s: i64) -> Timestamp {
        Timestamp::from_micros(1_795_860_900_000_000 + s * 1_000_000)
    }

    pub fn finding(
        n: u32,
        s: i64,
        rule: RuleId,
        host: &str,
        entity: Option<&str>,
        party: Party,
        types: &[&str],
    ) -> Finding {
        Finding {
            id: format!("f-{n:04}"),
            rule,
            severity: Catalogue::embedded().severity(rule),
            borderline: false,
            at: at(s),
            device: "pixel7".into(),
            app: None,
            exchange: format!("x-{n:04}"),
            destination: std::sync::Arc::new(Destination {
                host: host.into(),
                site: host.into(),
                party,
                entity: entity.map(str::to_string),
                categories: vec!["advertising".into()],
                purposes: vec![],
                known: true,
                infrastructure: false,
                platform: false,
                tenant: false,
                iab_vendor_id: None,
                hosted_by: None,
            }),
            data: types
                .iter()
                .map(|t| DataItem {
                    kind: t.to_string(),
                    encoding: "plain".into(),
                    location: "query:id".into(),
                    confidence: Confidence::Exact,
                    sensitive: false,
                    value: None,
                })
                .collect(),
            consent: ConsentInfo {
                purpose: "advertising".into(),
                state: "not-asked".into(),
                event: None,
            },
            citations: Catalogue::embedded().citations(rule),
            summary: format!("{} sent to {host}", types.join(", ")),
        }
    }

    pub fn event(s: i64, decision: Decision, source: EventSource) -> ConsentEvent {
        ConsentEvent {
            device: "pixel7".into(),
            at: at(s),
            decision,
            purposes: vec![Purpose::Advertising],
            vendors: vec![],
            source,
            evidence: Some("tapped Disagree".into()),
        }
    }

    /// What the findings' servers of [`input`] showed: Meta's two exchanges to two
    /// addresses under its own certificate, the tracker's one without a certificate,
    /// the first party's unknown.
    pub fn servers() -> crate::report::servers::ServersByHost {
        let facebook = crate::exchange::ServerCertificate {
            subject: "CN=*.facebook.com, O=Meta Platforms, Inc.".into(),
            issuer: "CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1".into(),
            names: vec!["*.facebook.com".into(), "facebook.com".into()],
            not_before: Some(at(-86_400)),
            not_after: Some(at(86_400)),
            serial: "0c4f".into(),
            sha256: "fb".repeat(32),
            chain: 3,
            host: None,
        };
        let mut servers = crate::report::servers::ServersByHost::new();
        crate::report::servers::note(
            &mut servers,
            ["graph.facebook.com"],
            Some("157.240.1.35:443"),
            Some(&facebook),
        );
        crate::report::servers::note(
            &mut servers,
            ["graph.facebook.com"],
            Some("[2a03:2880::1]:443"),
            Some(&facebook),
        );
        crate::report::servers::note(
            &mut servers,
            ["t.tracker.example"],
            Some("203.0.113.9:80"),
            None,
        );
        servers
    }

    /// Two decisions, three third-party and one first-party finding on `pixel7`.
    pub fn input() -> ReportInput {
        let mut request_lines = BTreeMap::new();
        for n in 1..=4 {
            request_lines.insert(
                format!("x-{n:04}"),
                format!("POST https://h{n}.example/v1/u/12345678ab?idfa=38400000-8cf0&os=android"),
            );
        }
        ReportInput {
            case: CaseInfo {
                id: "c-1".into(),
                title: "Test case".into(),
                app: "Example Shop".into(),
                package: "com.example.shop".into(),
                devices: vec!["pixel7".into()],
                file: None,
            },
            consent: vec![
                event(30, Decision::Refused, EventSource::Manual),
                event(10, Decision::Granted, EventSource::Wire),
            ],
            findings: vec![
                finding(
                    1,
                    5,
                    RuleId::ShareBeforeConsent,
                    "graph.facebook.com",
                    Some("Meta Platforms, Inc."),
                    Party::Third,
                    &["advertising_id", "android_id"],
                ),
                finding(
                    2,
                    40,
                    RuleId::ShareAfterRefusal,
                    "graph.facebook.com",
                    Some("Meta Platforms, Inc."),
                    Party::Third,
                    &["advertising_id"],
                ),
                finding(
                    3,
                    41,
                    RuleId::ShareAfterRefusal,
                    "t.tracker.example",
                    None,
                    Party::Third,
                    &[],
                ),
                finding(
                    4,
                    2,
                    RuleId::CollectBeforeConsent,
                    "api.example-shop.com",
                    None,
                    Party::First,
                    &["imei"],
                ),
            ],
            request_lines,
            servers: servers(),
            evidence: vec![InputInfo {
                path: "captures/demo.har".into(),
                kind: "har".into(),
                sha256: "ab".repeat(32),
                exchanges: 29,
                read_with: Vec::new(),
            }],
            exchanges: 29,
            platform_exchanges: 0,
            platform_hosts: Vec::new(),
            traffic: None,
            chain_head: None,
            generated_at: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    fn build(input: &ReportInput) -> Report {
        Report::build(input, &Catalogue::embedded())
    }

    #[test]
    fn groups_by_receiver_entity_else_host_and_data_type() {
        let r = build(&input());
        let keys: Vec<(&str, &str, u64)> = r
            .groups
            .iter()
            .map(|g| (g.receiver.as_str(), g.data_type.as_str(), g.count))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("Meta Platforms, Inc.", "advertising_id", 2),
                ("Meta Platforms, Inc.", "android_id", 1),
                ("api.example-shop.com", "imei", 1),
                ("t.tracker.example", NO_DATA_TYPE, 1),
            ]
        );
        let meta = &r.groups[0];
        assert_eq!((meta.first, meta.last), (at(5), at(40)));
        assert_eq!(meta.rules, ["share-before-consent", "share-after-refusal"]);
        assert_eq!(meta.severity, Severity::High);
        assert_eq!(meta.encodings, ["plain"]);
        assert_eq!(meta.examples.len(), 2);
        assert_eq!(r.groups[2].party, Party::First);
    }

    #[test]
    fn servers_are_listed_per_host_with_what_their_certificates_name() {
        let r = build(&input());
        let hosts: Vec<(&str, &str, u64)> = r
            .servers
            .iter()
            .map(|s| (s.host.as_str(), s.receiver.as_str(), s.exchanges))
            .collect();
        assert_eq!(
            hosts,
            [
                ("graph.facebook.com", "Meta Platforms, Inc.", 2),
                ("t.tracker.example", "t.tracker.example", 1),
            ],
            "third parties first; a host nothing was seen of is left out"
        );
        let meta = &r.servers[0];
        assert_eq!(meta.addresses, ["157.240.1.35:443", "[2a03:2880::1]:443"]);
        assert_eq!(meta.with_certificate, 2);
        assert_eq!(meta.certificates.len(), 1);
        assert!(meta.certificates[0].names_host, "*.facebook.com names it");
        assert!(r.servers[1].certificates.is_empty());
        assert!(r.servers_known());
        let mut none = input();
        none.servers.clear();
        let r = build(&none);
        assert!(r.servers.is_empty() && !r.servers_known());
        // A certificate for another name is said not to name the host.
        let mut other = input();
        let seen = other.servers.get_mut("t.tracker.example").unwrap();
        let mut c = testing::servers()["graph.facebook.com"].certificates["fb".repeat(32).as_str()]
            .0
            .clone();
        c.sha256 = "cc".repeat(32);
        seen.note(Some("203.0.113.9:443"), Some(&c));
        let r = build(&other);
        assert!(!r.servers[1].certificates[0].names_host);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["servers"][1]["certificates"][0]["names_host"], false);
        assert_eq!(
            json["servers"][1]["certificates"][0]["subject"],
            c.subject.as_str()
        );
    }

    #[test]
    fn examples_are_masked_unless_values_were_revealed() {
        let r = build(&input());
        let ex = &r.groups[0].examples[0];
        assert_eq!(ex, "POST https://h1.example/v1/u/•••?idfa=•••&os=•••");
        assert!(!ex.contains("38400000"));
        let mut revealed = input();
        revealed.findings[0].data[0].value = Some("38400000-8cf0".into());
        let r = build(&revealed);
        assert!(r.groups[0].examples[0].contains("idfa=38400000-8cf0"));
    }

    #[test]
    fn mask_keeps_keys_and_plain_path() {
        assert_eq!(
            mask_request_line("GET https://a.b/x/y"),
            "GET https://a.b/x/y"
        );
        assert_eq!(
            mask_request_line("GET https://a.b/u/me@x.org/p?a=1&&b"),
            "GET https://a.b/u/•••/p?a=•••&&•••"
        );
        assert_eq!(
            mask_request_line("(connection only) a.b"),
            "(connection only) a.b"
        );
    }

    #[test]
    fn summary_and_timelines() {
        let r = build(&input());
        assert_eq!(r.summary.findings, 4);
        assert_eq!(r.summary.third_party_findings, 3);
        assert_eq!(r.summary.before_any_decision, 4);
        assert_eq!(r.summary.receivers, 3);
        assert_eq!(r.summary.by_rule[0].rule, "share-before-consent");
        assert_eq!(r.timelines.len(), 1);
        let t = &r.timelines[0];
        // Events sorted by time whatever the input order.
        assert_eq!(t.events[0].at, at(10));
        assert_eq!(t.events[0].source, "wire");
        assert_eq!(t.marks.len(), 4);
        assert_eq!((t.start, t.end), (Some(at(2)), Some(at(41))));
        // Only the citations used, in catalogue order.
        assert!(r.citations.iter().any(|c| c.id == "PIPL-23"));
        assert!(r.citations.len() < Catalogue::embedded().citations.len());
    }

    #[test]
    fn visibility_counts_the_systems_own_exchanges_with_or_without_captures() {
        let mut i = input();
        i.platform_exchanges = 5;
        i.platform_hosts = vec![("mtalk.google.com".into(), 3)];
        let report = build(&i);
        assert_eq!(report.summary.platform_exchanges, 5);
        let lines = report.visibility();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(report.visibility_heading(), "What the inputs could show:");
        assert!(
            lines[0].starts_with("5 exchanges went to the operating systems' own services")
                && lines[0].ends_with(
                    "(rules.flag_platform = true in the case file judges them): \
                     mtalk.google.com 3, 2 more."
                ),
            "{lines:?}"
        );
        // After what the captures held.
        i.traffic = Some(TrafficSummary {
            packets: 3,
            ..TrafficSummary::default()
        });
        let lines = build(&i).visibility();
        assert!(
            lines[0].starts_with("The captures held 3 packets"),
            "{lines:?}"
        );
        assert_eq!(
            build(&i).visibility_heading(),
            "What the captures could show:"
        );
        assert!(
            lines[lines.len() - 1].starts_with("5 exchanges went"),
            "{lines:?}"
        );
        // None: no line, and nothing in the JSON summary.
        let json = serde_json::to_string(&build(&input()).summary).unwrap();
        assert!(!json.contains("platform_exchanges"), "{json}");
    }

    #[test]
    fn visibility_says_what_was_not_decrypted() {
        assert!(
            build(&input()).visibility().is_empty(),
            "no captures, no lines"
        );
        let mut i = input();
        let mut t = TrafficSummary {
            packets: 120,
            bytes: 64_000,
            tcp_connections: 9,
            udp_flows: 2,
            dns_messages: 4,
            tls_decrypted: 3,
            ..TrafficSummary::default()
        };
        i.traffic = Some(t.clone());
        let lines = build(&i).visibility();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with("The captures held 120 packets (64000 bytes): 9 TCP"));
        assert_eq!(lines[1], "3 TLS connections, all decrypted.");

        // The systems' own mDNS: said right after the counts.
        let mut mdns = t.clone();
        mdns.mdns_system = 6;
        i.traffic = Some(mdns);
        let lines = build(&i).visibility();
        assert!(
            lines[1].starts_with("6 multicast DNS messages were the operating systems' own")
                && lines[1].ends_with("not judged as the app's, not searched."),
            "{lines:?}"
        );

        t.tls_not_decrypted.insert("no-key".into(), 4);
        t.tls_not_decrypted.insert("lost-sync".into(), 1);
        t.packet_errors.insert("packet-truncated".into(), 2);
        t.unknown_client_exchanges = 7;
        i.traffic = Some(t.clone());
        let lines = build(&i).visibility();
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert!(
            lines[1].starts_with("8 TLS connections: 3 decrypted, 5 not (lost-sync 1, no-key 4)."),
            "{}",
            lines[1]
        );
        assert_eq!(
            lines[2],
            "2 frames could not be decoded (packet-truncated 2)."
        );
        assert!(lines[3].starts_with("7 exchanges came from clients"));
        // What DHCP said of an unknown client follows.
        let mut named = t.clone();
        named.unknown_client_dhcp.insert(
            "192.168.60.77".into(),
            "host name \"news-laptop\", MAC 02:00:5e:10:00:77".into(),
        );
        i.traffic = Some(named);
        let lines = build(&i).visibility();
        assert_eq!(
            lines[4],
            "DHCP named the client 192.168.60.77: host name \"news-laptop\", MAC \
             02:00:5e:10:00:77."
        );

        // Keys later in the capture than their connections: said, with the remedy.
        let mut late = t.clone();
        late.tls_keys_late = 3;
        i.traffic = Some(late);
        let lines = build(&i).visibility();
        assert_eq!(
            lines[2],
            "The keys of 3 of them were in the capture, in a secrets block written after \
             their handshakes; analysed with --secrets-first, which reads a capture's \
             secrets before its packets, they are decrypted."
        );

        t.tunnelled.insert("vxlan".into(), 30);
        t.tunnelled.insert("gre".into(), 4);
        i.traffic = Some(t.clone());
        let lines = build(&i).visibility();
        assert_eq!(
            lines[1],
            "Packets were taken out of tunnels and analysed as the devices sent them \
             (gre 4, vxlan 30)."
        );

        t.wlan_handshakes = 2;
        t.wlan_handshakes_unmatched = 1;
        t.wlan_decrypted = 40;
        t.wlan_michael_failures = 1;
        i.traffic = Some(t.clone());
        let lines = build(&i).visibility();
        assert!(
            lines[3].starts_with("40 protected Wi-Fi frames were decrypted with the network's key, from 2 WPA handshakes;"),
            "{lines:?}"
        );
        assert!(lines[4].starts_with("1 WPA handshakes matched no key given"));
        assert!(
            lines[5].starts_with("1 TKIP-protected Wi-Fi frames decrypted with a station's key failed their Michael integrity check"),
            "{lines:?}"
        );

        t.wlan_reassembled = 5;
        t.wlan_fragments_dropped = 3;
        i.traffic = Some(t.clone());
        let lines = build(&i).visibility();
        assert!(
            lines[6].starts_with("3 Wi-Fi fragments went into no packet")
                && lines[6].ends_with("(5 MSDUs were put together from their fragments)."),
            "{lines:?}"
        );
        t.apps = vec![
            crate::net::pcapdroid::AppTraffic {
                app: crate::exchange::AppRef {
                    uid: 10123,
                    package: Some("com.example.shop".into()),
                    name: Some("Example Shop".into()),
                    under_test: Some(true),
                },
                exchanges: 4,
            },
            crate::net::pcapdroid::AppTraffic {
                app: crate::exchange::AppRef {
                    uid: 10210,
                    package: None,
                    name: Some("Weather Now".into()),
                    under_test: Some(false),
                },
                exchanges: 2,
            },
        ];
        t.other_app_exchanges = 2;
        i.traffic = Some(t.clone());
        let lines = build(&i).visibility();
        assert_eq!(
            lines.last().unwrap(),
            "The captures name the Android app of each connection (PCAPdroid): \
             com.example.shop (UID 10123, 4 exchanges), \"Weather Now\" (UID 10210, 2 \
             exchanges). 2 exchanges of apps other than the case's are not the app's traffic \
             and were not judged."
        );
        t.other_apps_judged = true;
        i.traffic = Some(t);
        let lines = build(&i).visibility();
        assert!(lines
            .last()
            .unwrap()
            .ends_with("judged all the same (--all-apps): each finding names its app."));
    }

    #[test]
    fn devices_with_findings_but_not_in_the_case_get_a_timeline() {
        let mut i = input();
        i.findings[0].device = "stranger".into();
        let r = build(&i);
        let names: Vec<&str> = r.timelines.iter().map(|t| t.device.as_str()).collect();
        assert_eq!(names, ["pixel7", "stranger"]);
    }
}
