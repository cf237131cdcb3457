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
use super::{rule_order, InputInfo};
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
    pub citations: Vec<Citation>,
    pub evidence: Vec<InputInfo>,
    pub chain_head: Option<String>,
    /// The findings themselves, in output order (DESIGN.md §6 objects).
    pub findings: Vec<Finding>,
}

/// Counts at the top of the report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub exchanges: u64,
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
            citations: citations(&findings, catalogue),
            evidence: input.evidence.clone(),
            chain_head: input.chain_head.clone(),
            findings,
        }
    }
}

fn summarise(input: &ReportInput, findings: &[Finding]) -> Summary {
    let mut s = Summary {
        exchanges: input.exchanges,
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
