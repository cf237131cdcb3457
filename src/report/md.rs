//! The case report as Markdown: the same sections as the HTML form, with each
//! device's timeline as a chronological table (decisions and flagged transmissions
//! interleaved) instead of a picture.
//!
//! Text from traffic is escaped with [`md_esc`] so it cannot open links, images,
//! HTML or break a table; output is a pure function of the [`Report`].

use std::fmt::Write as _;
use std::io::{self, Write};

use super::model::{DeviceTimeline, Report};
use crate::parties::Party;

/// Escapes Markdown (CommonMark/GFM) syntax and HTML in text, and keeps it on one
/// line (table cells).
pub fn md_esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '(' | ')' | '#' | '|' | '!' | '~' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Writes the report as Markdown.
pub fn write_md(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    out.write_all(render(report).as_bytes())
}

/// The report as a Markdown document.
pub fn render(r: &Report) -> String {
    let mut m = String::with_capacity(32 * 1024);
    let title = if r.case.title.is_empty() {
        &r.case.id
    } else {
        &r.case.title
    };
    let _ = writeln!(m, "# Consent violation report: {}\n", md_esc(title));
    let _ = writeln!(m, "- Case: {}", md_esc(&r.case.id));
    if !r.case.app.is_empty() || !r.case.package.is_empty() {
        let _ = writeln!(
            m,
            "- App: {} ({})",
            md_esc(&r.case.app),
            md_esc(&r.case.package)
        );
    }
    let devices: Vec<String> = r.case.devices.iter().map(|d| md_esc(d)).collect();
    let _ = writeln!(m, "- Devices: {}", devices.join(", "));
    if let Some(file) = &r.case.file {
        let _ = write!(
            m,
            "- Case file: {} (SHA-256 {})",
            md_esc(&file.path),
            md_esc(&file.sha256)
        );
        match &file.note {
            Some(note) => {
                let _ = writeln!(m, ": {}", md_esc(note));
            }
            None => m.push('\n'),
        }
    }
    if let (Some(a), Some(b)) = (r.summary.first, r.summary.last) {
        let _ = writeln!(m, "- Findings from {a} to {b}");
    }
    if let Some(g) = r.generated_at {
        let _ = writeln!(m, "- Generated: {g}");
    }
    let _ = writeln!(
        m,
        "- Chain head: {}\n",
        match &r.chain_head {
            Some(c) => md_esc(c),
            None => "none (one-shot analysis, not from a case store)".into(),
        }
    );

    let s = &r.summary;
    m.push_str("## Summary\n\n");
    let _ = writeln!(
        m,
        "{} exchanges analysed; {} findings, {} to third parties, {} before any consent \
         decision; {} receivers.\n",
        s.exchanges, s.findings, s.third_party_findings, s.before_any_decision, s.receivers
    );
    if !s.by_rule.is_empty() {
        m.push_str("| Rule | Severity | Findings |\n|---|---|---:|\n");
        for rc in &s.by_rule {
            let _ = writeln!(
                m,
                "| {} | {} | {} |",
                md_esc(&rc.rule),
                rc.severity.as_str(),
                rc.count
            );
        }
        m.push('\n');
    }

    m.push_str("## Timeline per device\n\n");
    for t in &r.timelines {
        timeline(&mut m, t);
    }

    m.push_str("## Findings by receiver and data type\n\n");
    if r.groups.is_empty() {
        m.push_str("No findings.\n\n");
    } else {
        m.push_str(
            "| Receiver | Party | Hosts | Data | Count | First (UTC) | Last (UTC) | Encodings | Rules | Example requests |\n\
             |---|---|---|---|---:|---|---|---|---|---|\n",
        );
        for g in &r.groups {
            let join = |v: &[String]| v.iter().map(|x| md_esc(x)).collect::<Vec<_>>().join(", ");
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                md_esc(&g.receiver),
                match &g.hosted_by {
                    Some(p) => format!("{}, hosted on {}", party(g.party), md_esc(p)),
                    None => party(g.party).to_string(),
                },
                join(&g.hosts),
                md_esc(&g.data_type),
                g.count,
                g.first,
                g.last,
                join(&g.encodings),
                join(&g.rules),
                g.examples
                    .iter()
                    .map(|e| md_esc(e))
                    .collect::<Vec<_>>()
                    .join("<br>")
            );
        }
        m.push('\n');
    }

    if r.servers_known() {
        servers(&mut m, r);
    }

    m.push_str("## Legal provisions cited\n\n");
    if r.citations.is_empty() {
        m.push_str("None.\n\n");
    } else {
        m.push_str("| Id | Provision | Reference | Summary |\n|---|---|---|---|\n");
        for c in &r.citations {
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} |",
                md_esc(&c.id),
                md_esc(&c.title),
                md_esc(&c.reference),
                md_esc(&c.text)
            );
        }
        m.push('\n');
    }

    m.push_str("## Evidence\n\n");
    if r.evidence.is_empty() {
        m.push_str("No evidence files listed.\n\n");
    } else {
        let read_with = r.evidence.iter().any(|e| !e.read_with.is_empty());
        if read_with {
            m.push_str(
                "| File | Kind | SHA-256 | Exchanges | Analysed with |\n|---|---|---|---:|---|\n",
            );
        } else {
            m.push_str("| File | Kind | SHA-256 | Exchanges |\n|---|---|---|---:|\n");
        }
        for e in &r.evidence {
            let _ = write!(
                m,
                "| {} | {} | {} | {} |",
                md_esc(&e.path),
                md_esc(&e.kind),
                md_esc(&e.sha256),
                e.exchanges
            );
            if read_with {
                let _ = write!(m, " {} |", md_esc(&e.read_with.join("; ")));
            }
            m.push('\n');
        }
        m.push('\n');
    }
    let visibility = r.visibility();
    if !visibility.is_empty() {
        m.push_str(r.visibility_heading());
        m.push_str("\n\n");
        for line in &visibility {
            let _ = writeln!(m, "- {}", md_esc(line));
        }
        m.push('\n');
    }
    let _ = writeln!(
        m,
        "Chain head: {}",
        match &r.chain_head {
            Some(c) => md_esc(c),
            None => "none (one-shot analysis; the file hashes identify the evidence)".into(),
        }
    );
    m
}

fn party(p: Party) -> &'static str {
    match p {
        Party::First => "first",
        Party::Third => "third",
    }
}

fn timeline(m: &mut String, t: &DeviceTimeline) {
    let _ = writeln!(m, "### Device {}\n", md_esc(&t.device));
    if t.events.is_empty() && t.marks.is_empty() {
        m.push_str("No consent decision and no finding for this device.\n\n");
        return;
    }
    let third = t.marks.iter().filter(|x| x.party == Party::Third).count();
    let _ = writeln!(
        m,
        "{} consent decisions, {} flagged transmissions ({} to third parties).\n",
        t.events.len(),
        t.marks.len(),
        third
    );
    m.push_str("| Time (UTC) | What | Detail |\n|---|---|---|\n");
    // Decisions before transmissions at the same instant, as the rules apply them.
    let mut ei = t.events.iter().peekable();
    let mut mi = t.marks.iter().peekable();
    loop {
        let take_event = match (ei.peek(), mi.peek()) {
            (Some(e), Some(x)) => e.at <= x.at,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        if take_event {
            if let Some(e) = ei.next() {
                let _ = writeln!(
                    m,
                    "| {} | **consent {}** ({}) | {}{} |",
                    e.at,
                    e.decision.as_str(),
                    md_esc(&e.source),
                    md_esc(&e.purposes),
                    e.note
                        .as_deref()
                        .map(|n| format!(" — {}", md_esc(n)))
                        .unwrap_or_default()
                );
            }
        } else if let Some(x) = mi.next() {
            let _ = writeln!(
                m,
                "| {} | {} ({} party, {}) | {} |",
                x.at,
                md_esc(&x.rule),
                party(x.party),
                x.severity.as_str(),
                md_esc(&x.summary)
            );
        }
    }
    m.push('\n');
}

/// The receiving servers: addresses and the certificates presented.
fn servers(m: &mut String, r: &Report) {
    m.push_str(
        "## Receiving servers\n\n\
         Where the flagged transmissions went: the server addresses and the certificates \
         those servers presented over TLS.\n\n\
         | Host | Receiver | Exchanges | Addresses | Certificates presented |\n\
         |---|---|---:|---|---|\n",
    );
    for s in &r.servers {
        let mut addresses: Vec<String> = s.addresses.iter().map(|a| md_esc(a)).collect();
        addresses.extend(s.addresses_note().map(|n| md_esc(&n)));
        let mut certificates: Vec<String> = s
            .certificates
            .iter()
            .map(|v| {
                let c = &v.certificate;
                format!(
                    "{} issued by {}{}, {}, SHA-256 {}",
                    md_esc(&c.subject),
                    md_esc(&c.issuer),
                    match (c.not_before, c.not_after) {
                        (Some(a), Some(b)) => format!(", valid {a} to {b}"),
                        _ => String::new(),
                    },
                    if v.names_host {
                        "names the host"
                    } else {
                        "**does not name the host**"
                    },
                    md_esc(&c.sha256)
                )
            })
            .collect();
        certificates.extend(s.certificate_notes().iter().map(|n| md_esc(n)));
        let cell = |v: Vec<String>| {
            if v.is_empty() {
                "—".to_string()
            } else {
                v.join("<br>")
            }
        };
        let _ = writeln!(
            m,
            "| {} | {} ({} party) | {} | {} | {} |",
            md_esc(&s.host),
            md_esc(&s.receiver),
            party(s.party),
            s.exchanges,
            cell(addresses),
            cell(certificates)
        );
    }
    m.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::testing::*;
    use crate::rules::Catalogue;

    fn md(input: &crate::report::ReportInput) -> String {
        render(&Report::build(input, &Catalogue::embedded()))
    }

    #[test]
    fn same_sections_and_rows_as_html() {
        let m = md(&input());
        for section in [
            "## Summary",
            "## Timeline per device",
            "### Device pixel7",
            "## Findings by receiver and data type",
            "## Legal provisions cited",
            "## Evidence",
        ] {
            assert!(m.contains(section), "{section} missing");
        }
        assert_eq!(m.matches("**consent ").count(), 2);
        assert_eq!(m.matches(" party, ").count(), 4);
        assert!(m.contains("| Meta Platforms, Inc. | third |"));
        assert!(m.contains("PIPL-23"));
        assert!(!m.contains("38400000"), "identifier values are masked");
    }

    #[test]
    fn receiving_servers_are_a_table_when_known() {
        let m = md(&input());
        assert!(m.contains("## Receiving servers"));
        assert!(m.contains(&format!(
            "| graph.facebook.com | Meta Platforms, Inc. (third party) | 2 | 157.240.1.35:443<br>\\[2a03:2880::1\\]:443 | CN=\\*.facebook.com, O=Meta Platforms, Inc. issued by CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1, valid 2026-11-27T10:15:00.000000Z to 2026-11-29T10:15:00.000000Z, names the host, SHA-256 {} |",
            "fb".repeat(32)
        )), "{m}");
        let mut i = input();
        i.servers.clear();
        assert!(!md(&i).contains("Receiving servers"));
    }

    #[test]
    fn evidence_says_what_a_stored_capture_was_analysed_with() {
        let mut i = input();
        let header = "| File | Kind | SHA-256 | Exchanges |\n";
        assert!(md(&i).contains(header), "no column without options");
        i.evidence[0].read_with = vec!["case file 0123456789abcdef".into(), "--all-apps".into()];
        let m = md(&i);
        assert!(m.contains("| File | Kind | SHA-256 | Exchanges | Analysed with |\n"));
        assert!(
            m.contains("| 29 | case file 0123456789abcdef; --all-apps |\n"),
            "{m}"
        );
    }

    #[test]
    fn hostile_text_cannot_break_tables_or_inject_html() {
        let mut i = input();
        std::sync::Arc::make_mut(&mut i.findings[2].destination).host =
            "<script>|[x](javascript:1)\n# h".into();
        let m = md(&i);
        assert!(!m.contains("<script>"));
        assert!(m.contains("&lt;script&gt;\\|\\[x\\]\\(javascript:1\\) \\# h"));
    }

    #[test]
    fn deterministic() {
        let mut shuffled = input();
        shuffled.findings.reverse();
        shuffled.consent.reverse();
        // Simultaneous events keep their order, so only reorder distinct times.
        assert_eq!(md(&input()), md(&shuffled));
    }
}
