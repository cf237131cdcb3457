//! The human table: findings grouped by receiving host, with counts, fitting an
//! 80-column terminal.

use std::collections::BTreeMap;
use std::io::{self, Write};

use super::host_mask::HostMask;
use super::{list_counts, rule_order, RunSummary, TrafficSummary};
use crate::parties::Party;
use crate::rules::Finding;

const WIDTH: usize = 80;
/// Data items listed under a finding before `+N more`.
const MAX_DATA_LINES: usize = 3;
const DATA_INDENT: &str = "                 ";

/// Cuts `s` to `max` characters, marking the cut with `…`.
pub fn fit(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `10:15:29.112` from an RFC 3339 UTC time.
fn clock(at: &str) -> &str {
    at.get(11..23).unwrap_or(at)
}

/// Writes the table of `summary` and `findings`, host names as `hosts` shows them.
pub fn write_table(
    summary: &RunSummary,
    findings: &[Finding],
    hosts: &mut HostMask,
    out: &mut dyn Write,
) -> io::Result<()> {
    let case = if summary.case.is_empty() {
        "(no case id)"
    } else {
        &summary.case
    };
    writeln!(out, "{}", fit(&format!("case {case}"), WIDTH))?;
    writeln!(
        out,
        "{} exchanges ({} with personal data, {} metadata only), {} anomalies",
        summary.exchanges,
        summary.exchanges_with_personal_data,
        summary.metadata_only,
        summary.anomalies
    )?;
    if summary.platform_exchanges > 0 {
        let line = format!(
            "{} exchanges with the systems' own services, {} with personal data: not judged",
            summary.platform_exchanges, summary.platform_with_personal_data
        );
        writeln!(out, "{}", fit(&line, WIDTH))?;
        if !summary.platform_hosts.is_empty() {
            let shown: Vec<(String, u64)> = summary
                .platform_hosts
                .iter()
                .map(|(host, n)| (hosts.show(host).into_owned(), *n))
                .collect();
            let hosts = super::list_hosts(&shown, summary.platform_exchanges);
            writeln!(out, "{}", fit(&format!("  {hosts}"), WIDTH))?;
        }
    }
    if let Some(t) = &summary.traffic {
        writeln!(
            out,
            "{} packets, {} bytes, {} TCP connections, {} UDP flows, {} DNS messages",
            t.packets, t.bytes, t.tcp_connections, t.udp_flows, t.dns_messages
        )?;
        if t.mdns_system > 0 {
            let line = format!(
                "{} mDNS messages of the systems' own services: not judged as the app's",
                t.mdns_system
            );
            writeln!(out, "{}", fit(&line, WIDTH))?;
        }
        if !t.tunnelled.is_empty() {
            // Busiest first: what the 80 columns cut off is the least of it.
            let mut kinds: Vec<(&String, &u64)> = t.tunnelled.iter().collect();
            kinds.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
            let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
            let line = format!("tunnels: {}", kinds.join(", "));
            writeln!(out, "{}", fit(&line, WIDTH))?;
        }
        if t.tls_connections() > 0 {
            let mut line = format!(
                "{} TLS connections: {} decrypted",
                t.tls_connections(),
                t.tls_decrypted
            );
            if !t.tls_not_decrypted.is_empty() {
                line.push_str(&format!(
                    ", {} not ({})",
                    t.tls_not_decrypted_total(),
                    list_counts(&t.tls_not_decrypted)
                ));
            }
            writeln!(out, "{}", fit(&line, WIDTH))?;
            if t.tls_keys_late > 0 {
                let line = format!(
                    "{} TLS connections have their keys later in the capture: --secrets-first",
                    t.tls_keys_late
                );
                writeln!(out, "{}", fit(&line, WIDTH))?;
            }
        }
        if t.wlan_handshakes + t.wlan_handshakes_unmatched + t.wlan_decrypted > 0 {
            let mut line = format!(
                "WPA: {} handshakes, {} frames decrypted",
                t.wlan_handshakes, t.wlan_decrypted
            );
            if t.wlan_handshakes_unmatched > 0 {
                line.push_str(&format!(
                    "; {} handshakes matched no key",
                    t.wlan_handshakes_unmatched
                ));
            }
            if t.wlan_michael_failures > 0 {
                line.push_str(&format!(
                    "; {} TKIP frames failed their Michael MIC",
                    t.wlan_michael_failures
                ));
            }
            writeln!(out, "{}", fit(&line, WIDTH))?;
        }
        if t.wlan_reassembled + t.wlan_fragments_dropped > 0 {
            let line = format!(
                "802.11 fragments: {} MSDUs put together, {} fragments dropped",
                t.wlan_reassembled, t.wlan_fragments_dropped
            );
            writeln!(out, "{}", fit(&line, WIDTH))?;
        }
        if !t.packet_errors.is_empty() {
            let kinds = list_counts(&t.packet_errors);
            writeln!(
                out,
                "{}",
                fit(&format!("undecodable frames: {kinds}"), WIDTH)
            )?;
        }
        if t.unknown_client_exchanges > 0 {
            let clients: Vec<String> = t
                .unknown_clients
                .iter()
                .take(5)
                .map(|(a, n)| format!("{a} ({n})"))
                .collect();
            writeln!(
                out,
                "{}",
                fit(
                    &format!(
                        "{} exchanges of clients that are no case device, not analysed: {}",
                        t.unknown_client_exchanges,
                        clients.join(", ")
                    ),
                    WIDTH
                )
            )?;
            // What the network's DHCP said of them: which machines they are. Whole,
            // not cut: its texts are bounded (`net::dhcp`), and a MAC address cut
            // short names nothing.
            for (address, _) in t.unknown_clients.iter().take(5) {
                if let Some(said) = t.unknown_client_dhcp.get(address) {
                    writeln!(out, "  {address}: {said}")?;
                }
            }
        }
        if !t.apps.is_empty() {
            for line in apps_lines(t) {
                writeln!(out, "{}", fit(&line, WIDTH))?;
            }
        }
    }
    let sev = |s: &str| summary.findings_by_severity.get(s).copied().unwrap_or(0);
    writeln!(
        out,
        "{} findings: {} high, {} medium, {} low   (times UTC)",
        summary.findings,
        sev("high"),
        sev("medium"),
        sev("low")
    )?;

    // Group by host, hosts ordered by their first finding.
    let mut groups: Vec<(&str, Vec<&Finding>)> = Vec::new();
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for f in findings {
        let host = f.destination.host.as_str();
        let i = *index.entry(host).or_insert_with(|| {
            groups.push((host, Vec::new()));
            groups.len() - 1
        });
        groups[i].1.push(f);
    }
    for (host, list) in &groups {
        let d = &list[0].destination;
        let party = match d.party {
            Party::First => "first party".to_string(),
            Party::Third => d
                .entity
                .clone()
                .unwrap_or_else(|| "unknown third party".into()),
        };
        let count = format!(
            "{} finding{}",
            list.len(),
            if list.len() == 1 { "" } else { "s" }
        );
        let host = hosts.show(host);
        let head = fit(&format!("{host} · {party}"), WIDTH - count.len() - 2);
        writeln!(out)?;
        writeln!(out, "{head:<w$}  {count}", w = WIDTH - count.len() - 2)?;
        // Whose platform serves an unknown receiver's site: the lead to its operator.
        if let (None, Some(platform)) = (&d.entity, &d.hosted_by) {
            writeln!(
                out,
                "  {}",
                fit(&format!("hosted on {platform}"), WIDTH - 2)
            )?;
        }
        if !d.categories.is_empty() {
            writeln!(out, "  {}", fit(&d.categories.join(", "), WIDTH - 2))?;
        }
        for f in list {
            let flag = if f.borderline { "~" } else { " " };
            let at = f.at.to_string();
            writeln!(
                out,
                "  {} {:<6}{}{}",
                clock(&at),
                f.severity.as_str(),
                flag,
                f.rule.as_str()
            )?;
            // The data, one item per line under the rule, at most three.
            for x in f.data.iter().take(MAX_DATA_LINES) {
                let item = format!("{} ({}) {}", x.kind, x.encoding, x.location);
                writeln!(
                    out,
                    "{DATA_INDENT}{}",
                    fit(&item, WIDTH - DATA_INDENT.len())
                )?;
            }
            if f.data.len() > MAX_DATA_LINES {
                writeln!(out, "{DATA_INDENT}+{} more", f.data.len() - MAX_DATA_LINES)?;
            }
        }
    }
    if !summary.findings_by_rule.is_empty() {
        writeln!(out)?;
        writeln!(out, "by rule:")?;
        let mut rules: Vec<_> = summary.findings_by_rule.iter().collect();
        rules.sort_by_key(|(r, _)| rule_order(r));
        for (rule, n) in rules {
            writeln!(out, "  {rule:<32}{n:>6}")?;
        }
    }
    if summary.consent_conflicts > 0 {
        writeln!(out)?;
        writeln!(
            out,
            "{} consent signal(s) in the traffic disagree with the user's recorded",
            summary.consent_conflicts
        )?;
        writeln!(out, "decisions (the user's decisions were used), e.g.:")?;
        for c in summary.consent_conflict_examples.iter().take(3) {
            writeln!(out, "  {}", fit(c, WIDTH - 2))?;
        }
    }
    if findings.iter().any(|f| f.borderline) {
        writeln!(
            out,
            "~ borderline: a consent decision lies within the grace window"
        )?;
    }
    Ok(())
}

/// The apps the captures named (PCAPdroid), busiest first, and what became of the
/// traffic of apps other than the case's.
fn apps_lines(t: &TrafficSummary) -> Vec<String> {
    let apps: Vec<String> = t
        .apps
        .iter()
        .map(|a| format!("{} {}", a.app.display_name(), a.exchanges))
        .collect();
    let mut lines = vec![format!("apps (PCAPdroid): {}", apps.join(", "))];
    if t.other_app_exchanges > 0 {
        lines.push(format!(
            "{} exchanges of other apps, {}",
            t.other_app_exchanges,
            if t.other_apps_judged {
                "analysed (--all-apps)"
            } else {
                "not analysed (see --all-apps)"
            }
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names as they are: the case's search finds nothing in them.
    fn whole() -> HostMask {
        let nothing = crate::net::tap::DataProbe(std::sync::Arc::new(|_: &[u8]| false));
        HostMask::new(nothing, false)
    }

    #[test]
    fn fit_cuts_with_ellipsis() {
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abc", 4), "abc");
    }

    #[test]
    fn an_unknown_receiver_on_a_platform_names_the_platform() {
        use crate::report::model::testing::finding;
        use crate::rules::RuleId;
        let mut f = finding(
            1,
            5,
            RuleId::ShareBeforeConsent,
            "d111111abcdef8.cloudfront.net",
            None,
            Party::Third,
            &["imei"],
        );
        let mut plain = f.clone();
        std::sync::Arc::make_mut(&mut f.destination).hosted_by = Some("Amazon CloudFront".into());
        std::sync::Arc::make_mut(&mut plain.destination).host = "203.0.113.9".into();
        let mut out = Vec::new();
        write_table(&RunSummary::default(), &[f, plain], &mut whole(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("\nd111111abcdef8.cloudfront.net · unknown third party "),
            "{text}"
        );
        assert!(
            text.contains(" 1 finding\n  hosted on Amazon CloudFront\n"),
            "{text}"
        );
        assert_eq!(text.matches("hosted on").count(), 1, "{text}");
        assert!(
            text.contains("\n203.0.113.9 · unknown third party "),
            "{text}"
        );
    }

    #[test]
    fn the_systems_own_mdns_is_counted_under_the_traffic_line_when_there_is_any() {
        let table = |mdns_system: u64| {
            let summary = RunSummary {
                traffic: Some(crate::report::TrafficSummary {
                    dns_messages: 9,
                    mdns_system,
                    ..Default::default()
                }),
                ..RunSummary::default()
            };
            let mut out = Vec::new();
            write_table(&summary, &[], &mut whole(), &mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        assert!(!table(0).contains("mDNS"));
        assert!(
            table(4).contains(
                " 9 DNS messages\n4 mDNS messages of the systems' own services: not judged as the app's\n"
            ),
            "{}",
            table(4)
        );
    }

    #[test]
    fn exchanges_with_the_systems_own_services_are_counted_when_there_are_any() {
        let table = |platform_exchanges: u64| {
            let summary = RunSummary {
                exchanges: 7,
                platform_exchanges,
                platform_with_personal_data: platform_exchanges / 2,
                platform_hosts: if platform_exchanges > 0 {
                    vec![("android.clients.google.com".into(), 2)]
                } else {
                    Vec::new()
                },
                ..RunSummary::default()
            };
            let mut out = Vec::new();
            write_table(&summary, &[], &mut whole(), &mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        assert!(!table(0).contains("systems' own services"), "{}", table(0));
        assert!(
            table(3).contains(
                " 0 anomalies\n3 exchanges with the systems' own services, 1 with personal data: not judged\n  android.clients.google.com 2, 1 more\n"
            ),
            "{}",
            table(3)
        );
    }

    #[test]
    fn clock_extracts_time() {
        assert_eq!(clock("2026-11-28T10:15:29.112345Z"), "10:15:29.112");
    }
}
