//! The case report as ONE self-contained HTML file: inline CSS and SVG, no script, no
//! network access, laid out to print to PDF (print CSS, no page breaks inside
//! figures and table rows).
//!
//! Every string that can come from traffic or a case file (hosts, paths, notes,
//! summaries, device ids) goes through [`esc`]; nothing is emitted raw. Output is a
//! pure function of the [`Report`]: the same report gives the same bytes.
//!
//! The timeline picture of a device: a UTC time axis; each consent decision a
//! vertical line (`class="consent-marker"`) labelled with the decision and purposes;
//! each flagged transmission a mark (`class="mark third"` or `class="mark first"`) in
//! the lane of its rule, coloured by rule; the stretch before the device's first
//! decision shaded, so data sent before the user said anything stands out.

// Markup templates end in `\n` like the multi-line ones beside them; `writeln!` for
// some and `write!` for others would only make them harder to read.
#![allow(clippy::write_with_newline)]

use std::fmt::Write as _;
use std::io::{self, Write};

use super::model::{DeviceTimeline, Report};
use crate::consent::Decision;
use crate::parties::Party;
use crate::rules::Severity;
use crate::timestamp::Timestamp;

/// Width of the SVG coordinate system (it scales to the page).
const W: f64 = 1000.0;
/// Left margin holding the lane labels.
const LABEL_W: f64 = 215.0;
const RIGHT: f64 = 24.0;
const LANE_H: f64 = 24.0;
const LABEL_ROW_H: f64 = 16.0;
/// Rows of consent labels before labels may overlap.
const MAX_LABEL_ROWS: usize = 4;
/// Approximate width of one label character at the label font size.
const CHAR_W: f64 = 6.7;
/// Most ticks on a time axis.
const MAX_TICKS: i64 = 8;

/// Escapes text for HTML element content and quoted attribute values (and SVG).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters other than tab/newline have no place in a report.
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The colour of a rule: reds and magentas for high-severity rules, ambers for
/// medium, blues and greys for low; consistent across the report.
pub fn rule_colour(rule: &str, severity: Severity) -> &'static str {
    match rule {
        "share-before-consent" => "#c62828",
        "share-after-refusal" => "#8e0038",
        "share-after-withdrawal" => "#ad1457",
        "collect-after-refusal" => "#d84315",
        "collect-after-withdrawal" => "#bf360c",
        "beyond-scope" => "#e53935",
        "sensitive-without-consent" => "#6a1b9a",
        "signal-ignored" => "#d81b60",
        "consent-predates-decision" => "#9c27b0",
        "collect-before-consent" => "#ef8f00",
        "consent-signal-missing" => "#c79100",
        "tracker-contact-before-consent" => "#1e88e5",
        "excessive-frequency" => "#607d8b",
        _ => match severity {
            Severity::High => "#b71c1c",
            Severity::Medium => "#f9a825",
            Severity::Low => "#78909c",
        },
    }
}

fn decision_style(d: Decision) -> (&'static str, &'static str) {
    match d {
        Decision::Granted => ("#2e7d32", ""),
        Decision::Refused => ("#263238", " stroke-dasharray=\"6 3\""),
        Decision::Withdrawn => ("#5d4037", " stroke-dasharray=\"2 3\""),
    }
}

const CSS: &str = r#"
:root{--ink:#1f2933;--muted:#5f6b7a;--line:#d9dee5;--bg:#f6f8fa;--accent:#1a3a5f}
*{box-sizing:border-box}
body{margin:0;font:14px/1.5 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans","Noto Sans CJK SC","PingFang SC","Microsoft YaHei","WenQuanYi Micro Hei",sans-serif;color:var(--ink);background:#fff}
main{max-width:1180px;margin:0 auto;padding:32px 40px 48px}
header.top{border-bottom:3px solid var(--accent);padding-bottom:14px;margin-bottom:22px}
.kicker{font-size:12px;letter-spacing:.12em;text-transform:uppercase;color:var(--muted);margin:0}
h1{font-size:26px;margin:4px 0 8px;color:var(--accent);line-height:1.25}
h2{font-size:19px;margin:34px 0 10px;padding-bottom:4px;border-bottom:1px solid var(--line);color:var(--accent)}
h3{font-size:15px;margin:22px 0 6px}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:0;font-size:13px}
dl.meta dt{color:var(--muted)}dl.meta dd{margin:0}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:8px 0 14px}
.card{border:1px solid var(--line);border-radius:6px;padding:10px 14px;min-width:140px;background:var(--bg)}
.card .n{font-size:24px;font-weight:650;line-height:1.1}.card .l{font-size:12px;color:var(--muted)}
.card.alert{border-color:#e6b3b3;background:#fdf1f1}.card.alert .n{color:#b71c1c}
table{border-collapse:collapse;width:100%;font-size:12.5px;margin:6px 0 12px}
th,td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}
th{background:var(--bg);font-weight:600;color:#334155;white-space:nowrap}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
table.rules{max-width:640px}
tr.receiver td{background:#eef2f7;border-top:2px solid #c9d2de;font-size:13px}
td.t,table.citations td:first-child{white-space:nowrap}
code,.mono{font-family:"SFMono-Regular",Menlo,Consolas,"DejaVu Sans Mono",monospace;font-size:11.5px}
td.ex{width:34%}
td.ex code{display:block;white-space:pre-wrap;word-break:break-all;color:#334155}
.hash{word-break:break-all}
.sw{display:inline-block;width:11px;height:11px;border-radius:2px;vertical-align:-1px;margin-right:5px}
.sw.hollow{background:#fff!important;border:2px solid}
.sev{display:inline-block;font-size:11px;font-weight:600;border-radius:3px;padding:0 6px;color:#fff}
.sev.high{background:#b71c1c}.sev.medium{background:#e08e0b}.sev.low{background:#607d8b}
.tag{display:inline-block;white-space:nowrap;font-size:11px;border:1px solid var(--line);border-radius:3px;padding:0 5px;margin:1px 2px 1px 0;background:#fff}
figure{margin:8px 0 6px;border:1px solid var(--line);border-radius:6px;padding:10px 10px 4px}
figure svg{width:100%;height:auto;display:block}
figcaption{font-size:12px;color:var(--muted);margin-top:4px}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;font-size:12px;margin:6px 2px}
.legend .line{display:inline-block;width:18px;height:0;border-top:2px solid;vertical-align:4px;margin-right:5px}
.muted{color:var(--muted)}.small{font-size:12px}
footer{margin-top:40px;font-size:11.5px;color:var(--muted);border-top:1px solid var(--line);padding-top:8px}
@page{size:A4;margin:14mm 12mm}
@media print{
 body{font-size:9.5pt}main{max-width:none;padding:0}
 .card{min-width:0;flex:1;padding:6px 10px}.card .n{font-size:18px}
 figure{padding:4px}.legend{font-size:8pt}
 *{-webkit-print-color-adjust:exact;print-color-adjust:exact}
 h2,h3{break-after:avoid}figure,tr,.card{break-inside:avoid}
 thead{display:table-header-group}
 a{color:inherit;text-decoration:none}
}
"#;

/// Writes the report as HTML.
pub fn write_html(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    out.write_all(render(report).as_bytes())
}

/// The report as an HTML document.
pub fn render(r: &Report) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let title = if r.case.title.is_empty() {
        &r.case.id
    } else {
        &r.case.title
    };
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Consent report — {}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n",
        esc(title)
    );
    header(&mut h, r, title);
    summary(&mut h, r);
    h.push_str("<section id=\"timelines\">\n<h2>Timeline per device</h2>\n");
    h.push_str(
        "<p class=\"small muted\">Each vertical line is a consent decision; each mark is a \
         transmission that broke a rule, in the lane of that rule. Filled marks went to a \
         third party, hollow marks to the app's own servers. The shaded stretch is the \
         time before the device's first decision.</p>\n",
    );
    for t in &r.timelines {
        timeline(&mut h, t);
    }
    h.push_str("</section>\n");
    groups(&mut h, r);
    servers(&mut h, r);
    citations(&mut h, r);
    evidence(&mut h, r);
    h.push_str(
        "<footer>Generated by consentry. Times are UTC. Identifier values in request lines \
         are masked (•••) unless the analysis was run with <code>--reveal</code>. Citation \
         texts are short paraphrases; the referenced provisions are authoritative.</footer>\n",
    );
    h.push_str("</main>\n</body>\n</html>\n");
    h
}

fn header(h: &mut String, r: &Report, title: &str) {
    let _ = write!(
        h,
        "<header class=\"top\">\n<p class=\"kicker\">Consent violation report</p>\n<h1>{}</h1>\n\
         <dl class=\"meta\">\n<dt>Case</dt><dd class=\"mono\">{}</dd>\n",
        esc(title),
        esc(&r.case.id)
    );
    if !r.case.app.is_empty() || !r.case.package.is_empty() {
        let _ = write!(
            h,
            "<dt>App</dt><dd>{} <span class=\"muted mono\">{}</span></dd>\n",
            esc(&r.case.app),
            esc(&r.case.package)
        );
    }
    let _ = write!(
        h,
        "<dt>Devices</dt><dd>{}</dd>\n",
        if r.case.devices.is_empty() {
            "—".to_string()
        } else {
            r.case
                .devices
                .iter()
                .map(|d| format!("<span class=\"mono\">{}</span>", esc(d)))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    if let Some(file) = &r.case.file {
        let _ = write!(
            h,
            "<dt>Case file</dt><dd><code>{}</code> <span class=\"muted mono\">SHA-256 {}</span>",
            esc(&file.path),
            esc(&file.sha256)
        );
        if let Some(note) = &file.note {
            let _ = write!(h, "<br><span class=\"small\">{}</span>", esc(note));
        }
        h.push_str("</dd>\n");
    }
    if let (Some(a), Some(b)) = (r.summary.first, r.summary.last) {
        let _ = write!(h, "<dt>Findings from</dt><dd>{a} to {b}</dd>\n");
    }
    if let Some(g) = r.generated_at {
        let _ = write!(h, "<dt>Generated</dt><dd>{g}</dd>\n");
    }
    let _ = write!(
        h,
        "<dt>Chain head</dt><dd class=\"mono hash\">{}</dd>\n</dl>\n</header>\n",
        match &r.chain_head {
            Some(c) => esc(c),
            None => "none (one-shot analysis, not from a case store)".to_string(),
        }
    );
}

fn summary(h: &mut String, r: &Report) {
    let s = &r.summary;
    h.push_str("<section id=\"summary\">\n<h2>Summary</h2>\n<div class=\"cards\">\n");
    let card = |h: &mut String, n: u64, label: &str, alert: bool| {
        let _ = write!(
            h,
            "<div class=\"card{}\"><div class=\"n\">{n}</div><div class=\"l\">{label}</div></div>\n",
            if alert && n > 0 { " alert" } else { "" }
        );
    };
    card(h, s.exchanges, "exchanges analysed", false);
    card(h, s.findings, "findings", s.findings > 0);
    card(h, s.third_party_findings, "to third parties", true);
    card(
        h,
        s.before_any_decision,
        "before any consent decision",
        true,
    );
    card(h, s.receivers, "receivers", false);
    h.push_str("</div>\n");
    if s.by_rule.is_empty() {
        h.push_str("<p>No rule was broken in the traffic analysed.</p>\n");
    } else {
        h.push_str(
            "<table class=\"rules\">\n<thead><tr><th>Rule</th><th>Severity</th>\
             <th class=\"num\">Findings</th></tr></thead>\n<tbody>\n",
        );
        for rc in &s.by_rule {
            let _ = write!(
                h,
                "<tr><td><span class=\"sw\" style=\"background:{}\"></span><code>{}</code></td>\
                 <td>{}</td><td class=\"num\">{}</td></tr>\n",
                rule_colour(&rc.rule, rc.severity),
                esc(&rc.rule),
                sev(rc.severity),
                rc.count
            );
        }
        h.push_str("</tbody>\n</table>\n");
    }
    h.push_str("</section>\n");
}

fn sev(s: Severity) -> String {
    format!("<span class=\"sev {0}\">{0}</span>", s.as_str())
}

/// A nice tick step (µs) giving at most [`MAX_TICKS`] ticks over `span` µs.
fn tick_step(span: i64) -> i64 {
    const STEPS: [i64; 30] = [
        1_000,
        2_000,
        5_000,
        10_000,
        20_000,
        50_000,
        100_000,
        200_000,
        500_000,
        1_000_000,
        2_000_000,
        5_000_000,
        10_000_000,
        15_000_000,
        30_000_000,
        60_000_000,
        120_000_000,
        300_000_000,
        600_000_000,
        900_000_000,
        1_800_000_000,
        3_600_000_000,
        7_200_000_000,
        10_800_000_000,
        21_600_000_000,
        43_200_000_000,
        86_400_000_000,
        172_800_000_000,
        604_800_000_000,
        2_592_000_000_000,
    ];
    STEPS
        .iter()
        .copied()
        .find(|s| span / s <= MAX_TICKS)
        .unwrap_or(span / MAX_TICKS + 1)
}

/// The label of a tick: time of day, with milliseconds for sub-second steps and the
/// date for steps of a day or more.
fn tick_label(t: Timestamp, step: i64) -> String {
    let s = t.to_string();
    if step >= 86_400_000_000 {
        s.get(0..10).unwrap_or(&s).to_string()
    } else if step < 1_000_000 {
        s.get(11..23).unwrap_or(&s).to_string()
    } else {
        s.get(11..19).unwrap_or(&s).to_string()
    }
}

fn timeline(h: &mut String, t: &DeviceTimeline) {
    let _ = write!(
        h,
        "<h3>Device <span class=\"mono\">{}</span></h3>\n",
        esc(&t.device)
    );
    let (Some(start), Some(end)) = (t.start, t.end) else {
        h.push_str("<p class=\"muted\">No consent decision and no finding for this device.</p>\n");
        return;
    };
    // Lanes: third-party rules first, then first-party, each in catalogue order.
    let mut lanes: Vec<(Party, String, Severity)> = Vec::new();
    for m in &t.marks {
        if !lanes.iter().any(|(p, r, _)| *p == m.party && *r == m.rule) {
            lanes.push((m.party, m.rule.clone(), m.severity));
        }
    }
    lanes.sort_by_key(|(p, r, _)| (*p == Party::First, super::rule_order(r)));

    // Time scale, padded so marks at the ends stay visible.
    // Saturating: a hostile capture may hold any 64-bit time.
    let raw = end.micros().saturating_sub(start.micros()).max(1_000_000);
    let pad = raw / 25;
    let t0 = start.micros().saturating_sub(pad);
    let t1 = t0.saturating_add(raw).saturating_add(2 * pad);
    let span = t1.saturating_sub(t0).max(1) as f64;
    let plot_w = W - LABEL_W - RIGHT;
    let x = |ts: Timestamp| LABEL_W + (ts.micros().saturating_sub(t0)) as f64 / span * plot_w;

    // Consent labels, staggered into rows so they do not overlap.
    let mut row_ends: Vec<f64> = Vec::new();
    let mut labels: Vec<(f64, usize, String, bool)> = Vec::new();
    for e in &t.events {
        let text = format!(
            "{}{} · {}",
            e.decision.as_str(),
            if e.source == "wire" { " (wire)" } else { "" },
            e.purposes
        );
        let x0 = x(e.at);
        let w = text.chars().count() as f64 * CHAR_W + 8.0;
        // Near the right edge a label extends to the left of its line.
        let end_anchor = x0 + w > W;
        let (from, to) = if end_anchor {
            (x0 - w, x0)
        } else {
            (x0, x0 + w)
        };
        let row = row_ends
            .iter()
            .position(|&end| end < from)
            .unwrap_or(row_ends.len().min(MAX_LABEL_ROWS - 1));
        if row == row_ends.len() {
            row_ends.push(to);
        } else if let Some(r) = row_ends.get_mut(row) {
            *r = r.max(to);
        }
        labels.push((x0, row, text, end_anchor));
    }
    let label_h = row_ends.len().max(1) as f64 * LABEL_ROW_H + 8.0;
    let lanes_n = lanes.len().max(1);
    let plot_top = label_h;
    let plot_bottom = plot_top + lanes_n as f64 * LANE_H;
    let height = plot_bottom + 40.0;

    let _ = write!(
        h,
        "<figure>\n<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"timeline\" \
         data-device=\"{}\" viewBox=\"0 0 {W} {height:.0}\" role=\"img\" \
         aria-label=\"Consent timeline of device {}\" \
         font-family=\"-apple-system,Segoe UI,Roboto,Helvetica Neue,Arial,sans-serif\" font-size=\"12\">\n",
        esc(&t.device),
        esc(&t.device)
    );
    // Lane backgrounds and labels.
    for (i, (party, rule, severity)) in lanes.iter().enumerate() {
        let y = plot_top + i as f64 * LANE_H;
        let _ = write!(
            h,
            "<rect x=\"{LABEL_W}\" y=\"{y:.1}\" width=\"{plot_w:.1}\" height=\"{LANE_H}\" fill=\"{}\"/>\n\
             <rect x=\"6\" y=\"{:.1}\" width=\"10\" height=\"10\" rx=\"2\" fill=\"{}\" stroke=\"{}\" stroke-width=\"2\"/>\n\
             <text x=\"22\" y=\"{:.1}\" fill=\"#1f2933\">{}{}</text>\n",
            if i % 2 == 0 { "#f7f9fb" } else { "#ffffff" },
            y + 7.0,
            if *party == Party::Third { rule_colour(rule, *severity) } else { "#ffffff" },
            rule_colour(rule, *severity),
            y + 16.0,
            esc(rule),
            if *party == Party::First { " · 1st party" } else { "" }
        );
    }
    if lanes.is_empty() {
        let _ = write!(
            h,
            "<text x=\"22\" y=\"{:.1}\" fill=\"#5f6b7a\">no flagged transmission</text>\n",
            plot_top + 16.0
        );
    }
    if t.events.is_empty() {
        let _ = write!(
            h,
            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#b71c1c\" font-weight=\"600\">no consent decision recorded for this device</text>\n",
            LABEL_W + 4.0,
            LABEL_ROW_H
        );
    }
    // Before the first decision of the device: shaded.
    let first_decision = t.events.first().map(|e| x(e.at)).unwrap_or(W - RIGHT);
    if first_decision > LABEL_W {
        let _ = write!(
            h,
            "<rect class=\"before-consent\" x=\"{LABEL_W}\" y=\"{plot_top:.1}\" width=\"{:.1}\" \
             height=\"{:.1}\" fill=\"#c62828\" fill-opacity=\"0.07\"/>\n",
            first_decision - LABEL_W,
            plot_bottom - plot_top
        );
    }
    // Axis and ticks.
    let step = tick_step(t1.saturating_sub(t0));
    let mut tick = t0.div_euclid(step).saturating_add(1).saturating_mul(step);
    let _ = write!(
        h,
        "<line x1=\"{LABEL_W}\" y1=\"{plot_bottom:.1}\" x2=\"{:.1}\" y2=\"{plot_bottom:.1}\" stroke=\"#5f6b7a\"/>\n",
        W - RIGHT
    );
    while tick < t1 {
        let tx = x(Timestamp::from_micros(tick));
        let _ = write!(
            h,
            "<line x1=\"{tx:.1}\" y1=\"{plot_top:.1}\" x2=\"{tx:.1}\" y2=\"{:.1}\" stroke=\"#d9dee5\" stroke-width=\"0.6\"/>\n\
             <line x1=\"{tx:.1}\" y1=\"{plot_bottom:.1}\" x2=\"{tx:.1}\" y2=\"{:.1}\" stroke=\"#5f6b7a\"/>\n\
             <text x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#5f6b7a\">{}</text>\n",
            plot_bottom,
            plot_bottom + 5.0,
            plot_bottom + 18.0,
            tick_label(Timestamp::from_micros(tick), step)
        );
        tick = tick.saturating_add(step);
    }
    let date = Timestamp::from_micros(t0).to_string();
    let _ = write!(
        h,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#5f6b7a\">UTC, {}</text>\n",
        W - RIGHT,
        plot_bottom + 34.0,
        esc(date.get(0..10).unwrap_or(&date))
    );
    // Marks.
    for m in &t.marks {
        let lane = lanes
            .iter()
            .position(|(p, r, _)| *p == m.party && *r == m.rule)
            .unwrap_or(0);
        let y = plot_top + lane as f64 * LANE_H + 4.0;
        let colour = rule_colour(&m.rule, m.severity);
        let (class, fill) = match m.party {
            Party::Third => ("mark third", colour),
            Party::First => ("mark first", "#ffffff"),
        };
        let _ = write!(
            h,
            "<rect class=\"{class}\" x=\"{:.1}\" y=\"{y:.1}\" width=\"4\" height=\"{:.0}\" rx=\"1\" \
             fill=\"{fill}\" stroke=\"{colour}\" stroke-width=\"1.2\"><title>{} · {} · {}</title></rect>\n",
            x(m.at) - 2.0,
            LANE_H - 8.0,
            m.at,
            esc(&m.rule),
            esc(&m.summary)
        );
    }
    // Consent decisions: vertical lines over everything, labelled at the top.
    for (e, (lx, row, text, end_anchor)) in t.events.iter().zip(&labels) {
        let (colour, dash) = decision_style(e.decision);
        let width = if e.source == "wire" { 1.4 } else { 2.2 };
        let ly = 4.0 + (*row as f64 + 1.0) * LABEL_ROW_H - 4.0;
        let _ = write!(
            h,
            "<line class=\"consent-marker\" data-decision=\"{}\" x1=\"{lx:.1}\" y1=\"{:.1}\" \
             x2=\"{lx:.1}\" y2=\"{plot_bottom:.1}\" stroke=\"{colour}\" stroke-width=\"{width}\"{dash}>\
             <title>{} {} · {} · {}</title></line>\n\
             <text x=\"{:.1}\" y=\"{ly:.1}\"{} fill=\"{colour}\" font-weight=\"600\">{}</text>\n",
            e.decision.as_str(),
            ly + 3.0,
            e.at,
            e.decision.as_str(),
            esc(&e.purposes),
            esc(e.note.as_deref().unwrap_or(&e.source)),
            if *end_anchor { lx - 3.0 } else { lx + 3.0 },
            if *end_anchor { " text-anchor=\"end\"" } else { "" },
            esc(text)
        );
    }
    h.push_str("</svg>\n");
    // Legend (HTML, so it wraps and prints well).
    h.push_str("<div class=\"legend\">\n");
    for (party, rule, severity) in &lanes {
        let c = rule_colour(rule, *severity);
        let _ = write!(
            h,
            "<span><span class=\"sw{}\" style=\"background:{c};border-color:{c}\"></span>{} \
             <span class=\"muted\">({}{})</span></span>\n",
            if *party == Party::First {
                " hollow"
            } else {
                ""
            },
            esc(rule),
            severity.as_str(),
            if *party == Party::First {
                ", first party"
            } else {
                ", third party"
            }
        );
    }
    for d in [Decision::Granted, Decision::Refused, Decision::Withdrawn] {
        if t.events.iter().any(|e| e.decision == d) {
            let (c, dash) = decision_style(d);
            let style = if dash.is_empty() { "solid" } else { "dashed" };
            let _ = write!(
                h,
                "<span><span class=\"line\" style=\"border-top:2px {style} {c}\"></span>{} \
                 <span class=\"muted\">(consent decision)</span></span>\n",
                d.as_str()
            );
        }
    }
    h.push_str(
        "<span><span class=\"sw\" style=\"background:#c62828;opacity:.18\"></span>before the first decision</span>\n</div>\n",
    );
    let _ = write!(
        h,
        "<figcaption>{} consent decision{}, {} flagged transmission{} ({} to third parties).</figcaption>\n</figure>\n",
        t.events.len(),
        if t.events.len() == 1 { "" } else { "s" },
        t.marks.len(),
        if t.marks.len() == 1 { "" } else { "s" },
        t.marks.iter().filter(|m| m.party == Party::Third).count()
    );
    // The decisions as a table, with their notes.
    if !t.events.is_empty() {
        h.push_str(
            "<table class=\"events\">\n<thead><tr><th>Time (UTC)</th><th>Decision</th>\
             <th>Purposes</th><th>Source</th><th>Note / evidence</th></tr></thead>\n<tbody>\n",
        );
        for e in &t.events {
            let _ = write!(
                h,
                "<tr><td class=\"mono t\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                e.at,
                e.decision.as_str(),
                esc(&e.purposes),
                esc(&e.source),
                esc(e.note.as_deref().unwrap_or(""))
            );
        }
        h.push_str("</tbody>\n</table>\n");
    }
}

/// `2026-11-28 10:15:29.112` from a timestamp: compact, still unambiguous UTC.
fn short_time(t: Timestamp) -> String {
    let s = t.to_string();
    match (s.get(0..10), s.get(11..23)) {
        (Some(d), Some(c)) => format!("{d} {c}"),
        _ => s,
    }
}

fn groups(h: &mut String, r: &Report) {
    h.push_str("<section id=\"findings\">\n<h2>Findings by receiver and data type</h2>\n");
    if r.groups.is_empty() {
        h.push_str("<p>No findings.</p>\n</section>\n");
        return;
    }
    h.push_str(
        "<table class=\"groups\">\n<thead><tr><th>Data</th>\
         <th class=\"num\">Count</th><th>First / last (UTC)</th><th>Encodings</th>\
         <th>Rules</th><th>Example requests</th></tr></thead>\n<tbody>\n",
    );
    let mut current: Option<&str> = None;
    for (i, g) in r.groups.iter().enumerate() {
        if current != Some(g.receiver.as_str()) {
            current = Some(g.receiver.as_str());
            // Hosts of every group of this receiver.
            let mut hosts: Vec<&str> = r.groups[i..]
                .iter()
                .take_while(|x| x.receiver == g.receiver)
                .flat_map(|x| x.hosts.iter().map(String::as_str))
                .collect();
            hosts.sort_unstable();
            hosts.dedup();
            let _ = write!(
                h,
                "<tr class=\"receiver\"><td colspan=\"6\"><strong>{}</strong> \
                 <span class=\"muted small\">{} party{}</span> · {}</td></tr>\n",
                esc(&g.receiver),
                match g.party {
                    Party::First => "first",
                    Party::Third => "third",
                },
                g.hosted_by
                    .as_deref()
                    .map(|p| format!(", hosted on {}", esc(p)))
                    .unwrap_or_default(),
                hosts
                    .iter()
                    .map(|x| format!("<code>{}</code>", esc(x)))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let times = if g.first == g.last {
            short_time(g.first)
        } else {
            format!("{}<br>{}", short_time(g.first), short_time(g.last))
        };
        let _ = write!(
            h,
            "<tr class=\"group\"><td><code>{}</code></td><td class=\"num\">{}</td>\
             <td class=\"mono t\">{times}</td><td>{}</td><td>{}</td><td class=\"ex\">{}</td></tr>\n",
            esc(&g.data_type),
            g.count,
            g.encodings
                .iter()
                .map(|e| format!("<span class=\"tag\">{}</span>", esc(e)))
                .collect::<String>(),
            g.rules
                .iter()
                .map(|rule| format!(
                    "<span class=\"tag\"><span class=\"sw\" style=\"background:{}\"></span>{}</span>",
                    rule_colour(rule, g.severity),
                    esc(rule)
                ))
                .collect::<String>(),
            g.examples
                .iter()
                .map(|e| format!("<code>{}</code>", esc(e)))
                .collect::<String>()
        );
    }
    h.push_str("</tbody>\n</table>\n</section>\n");
}

/// The receiving servers, when the inputs said anything about them.
fn servers(h: &mut String, r: &Report) {
    if !r.servers_known() {
        return;
    }
    h.push_str(
        "<section id=\"servers\">\n<h2>Receiving servers</h2>\n<p class=\"small muted\">\
         Where the flagged transmissions went: the server addresses they were sent to and \
         the certificates those servers presented over TLS. A certificate that names the \
         host shows that the server answering was, by its CA's word, that host's.</p>\n\
         <table class=\"servers\">\n<thead><tr><th>Host</th><th class=\"num\">Exchanges</th>\
         <th>Addresses</th><th>Certificates presented</th></tr></thead>\n<tbody>\n",
    );
    for s in &r.servers {
        let mut addresses: Vec<String> = s
            .addresses
            .iter()
            .map(|a| format!("<code>{}</code>", esc(a)))
            .collect();
        if let Some(note) = s.addresses_note() {
            addresses.push(format!("<span class=\"muted\">{}</span>", esc(&note)));
        }
        let mut certificates: Vec<String> = s
            .certificates
            .iter()
            .map(|v| {
                let c = &v.certificate;
                let valid = match (c.not_before, c.not_after) {
                    (Some(a), Some(b)) => {
                        format!(" · valid {} to {}", short_date(a), short_date(b))
                    }
                    _ => String::new(),
                };
                format!(
                    "<div class=\"cert\">{} <span class=\"muted\">issued by</span> {}{valid} · {} \
                     <br><span class=\"mono hash small\">SHA-256 {}</span></div>",
                    esc(&c.subject),
                    esc(&c.issuer),
                    if v.names_host {
                        "names the host"
                    } else {
                        "<strong>does not name the host</strong>"
                    },
                    esc(&c.sha256)
                )
            })
            .collect();
        for note in s.certificate_notes() {
            certificates.push(format!("<div class=\"muted small\">{}</div>", esc(&note)));
        }
        let _ = write!(
            h,
            "<tr><td><code>{}</code><br><span class=\"muted small\">{} · {} party</span></td>\
             <td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>\n",
            esc(&s.host),
            esc(&s.receiver),
            match s.party {
                Party::First => "first",
                Party::Third => "third",
            },
            s.exchanges,
            if addresses.is_empty() {
                "—".to_string()
            } else {
                addresses.join("<br>")
            },
            if certificates.is_empty() {
                "—".to_string()
            } else {
                certificates.join("")
            }
        );
    }
    h.push_str("</tbody>\n</table>\n</section>\n");
}

/// The date of `t` (`2026-11-28`).
fn short_date(t: Timestamp) -> String {
    let s = t.to_string();
    s.get(0..10).map(str::to_string).unwrap_or(s)
}

fn citations(h: &mut String, r: &Report) {
    h.push_str("<section id=\"citations\">\n<h2>Legal provisions cited</h2>\n");
    if r.citations.is_empty() {
        h.push_str("<p>None.</p>\n</section>\n");
        return;
    }
    h.push_str(
        "<table class=\"citations\">\n<thead><tr><th>Id</th><th>Provision</th><th>Reference</th>\
         <th>Summary</th></tr></thead>\n<tbody>\n",
    );
    for c in &r.citations {
        let _ = write!(
            h,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            esc(&c.id),
            esc(&c.title),
            esc(&c.reference),
            esc(&c.text)
        );
    }
    h.push_str("</tbody>\n</table>\n</section>\n");
}

fn evidence(h: &mut String, r: &Report) {
    h.push_str("<section id=\"evidence\">\n<h2>Evidence</h2>\n");
    if r.evidence.is_empty() {
        h.push_str("<p>No evidence files listed.</p>\n");
    } else {
        let read_with = r.evidence.iter().any(|e| !e.read_with.is_empty());
        h.push_str(
            "<table class=\"evidence\">\n<thead><tr><th>File</th><th>Kind</th><th>SHA-256</th>\
             <th class=\"num\">Exchanges</th>",
        );
        if read_with {
            h.push_str("<th>Analysed with</th>");
        }
        h.push_str("</tr></thead>\n<tbody>\n");
        for e in &r.evidence {
            let _ = write!(
                h,
                "<tr><td><code>{}</code></td><td>{}</td><td class=\"mono hash\">{}</td><td class=\"num\">{}</td>",
                esc(&e.path),
                esc(&e.kind),
                esc(&e.sha256),
                e.exchanges
            );
            if read_with {
                let _ = write!(
                    h,
                    "<td class=\"small\">{}</td>",
                    esc(&e.read_with.join("; "))
                );
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</tbody>\n</table>\n");
    }
    let visibility = r.visibility();
    if !visibility.is_empty() {
        let _ = writeln!(
            h,
            "<p class=\"small\">{}</p>\n<ul class=\"small\">",
            r.visibility_heading()
        );
        for line in &visibility {
            let _ = writeln!(h, "<li>{}</li>", esc(line));
        }
        h.push_str("</ul>\n");
    }
    let _ = write!(
        h,
        "<p class=\"small\">Chain head: {}</p>\n</section>\n",
        match &r.chain_head {
            Some(c) => format!("<span class=\"mono hash\">{}</span>", esc(c)),
            None => "none — a one-shot analysis has no case store; the file hashes above \
                     identify the evidence."
                .to_string(),
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::EventSource;
    use crate::report::model::testing::*;
    use crate::report::ReportInput;
    use crate::rules::Catalogue;

    fn html(input: &ReportInput) -> String {
        render(&Report::build(input, &Catalogue::embedded()))
    }

    #[test]
    fn an_unknown_receiver_on_a_platform_names_the_platform() {
        let mut i = input();
        let d = std::sync::Arc::make_mut(&mut i.findings[2].destination);
        d.host = "d111111abcdef8.cloudfront.net".into();
        d.entity = None;
        d.hosted_by = Some("Amazon CloudFront".into());
        let h = html(&i);
        assert!(
            h.contains(concat!(
                "<strong>d111111abcdef8.cloudfront.net</strong> ",
                "<span class=\"muted small\">third party, hosted on Amazon CloudFront</span>"
            )),
            "{h}"
        );
        let md = crate::report::md::render(&Report::build(&i, &Catalogue::embedded()));
        assert!(
            md.contains("| third, hosted on Amazon CloudFront |"),
            "{md}"
        );
    }

    #[test]
    fn receiving_servers_show_addresses_and_certificates_when_known() {
        let h = html(&input());
        assert!(h.contains("<h2>Receiving servers</h2>"));
        assert!(h.contains("<code>157.240.1.35:443</code><br><code>[2a03:2880::1]:443</code>"));
        assert!(h.contains("CN=*.facebook.com, O=Meta Platforms, Inc. <span class=\"muted\">issued by</span> CN=DigiCert"));
        assert!(
            h.contains("valid 2026-11-27 to 2026-11-29 · names the host"),
            "{h}"
        );
        assert!(h.contains(&format!("SHA-256 {}", "fb".repeat(32))));
        assert!(h.contains("1 of 1 exchanges without one"), "the tracker's");
        let mut i = input();
        i.servers.clear();
        assert!(
            !html(&i).contains("Receiving servers"),
            "nothing known, no section"
        );
        // What a server presented is traffic: escaped.
        let mut i = input();
        let mut c = crate::report::model::testing::servers()["graph.facebook.com"].certificates
            ["fb".repeat(32).as_str()]
        .0
        .clone();
        c.subject = "CN=<script>x</script>".into();
        c.sha256 = "<b>".into();
        crate::report::servers::note(&mut i.servers, ["t.tracker.example"], Some("<i>"), Some(&c));
        let h = html(&i);
        assert!(!h.contains("<script") && !h.contains("<b>") && !h.contains("<i>"));
        assert!(h.contains("CN=&lt;script&gt;x&lt;/script&gt;"));
        assert!(h.contains("<strong>does not name the host</strong>"));
    }

    #[test]
    fn hostile_text_from_traffic_is_escaped() {
        let mut i = input();
        std::sync::Arc::make_mut(&mut i.findings[2].destination).host =
            "<script>alert(1)</script>".into();
        i.findings[2].summary = "x\" onload=\"alert(2)".into();
        i.consent[0].evidence = Some("<img src=x onerror=alert(3)>".into());
        i.request_lines
            .insert("x-0003".into(), "GET http://<script>/a'b\"c".into());
        i.case.title = "A & B <i>".into();
        let h = html(&i);
        assert!(!h.contains("<script"), "raw script tag in output");
        assert!(!h.contains("<img"));
        assert!(!h.contains("<i>"));
        assert!(!h.contains("\" onload=\""));
        assert!(h.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(h.contains("A &amp; B &lt;i&gt;"));
        assert!(h.contains("&lt;img src=x onerror=alert(3)&gt;"));
    }

    proptest::proptest! {
        /// Whatever the traffic holds, it adds no markup: the output has exactly as
        /// many `<` and `"` as with harmless text in the same places.
        #[test]
        fn traffic_text_adds_no_markup(host in ".{0,40}", note in ".{0,40}", path in ".{0,60}") {
            let with = |host: &str, note: &str, path: &str| {
                let mut i = input();
                std::sync::Arc::make_mut(&mut i.findings[2].destination).host = host.to_string();
                i.findings[2].summary = note.to_string();
                i.consent[0].evidence = Some(note.to_string());
                i.request_lines.insert("x-0003".into(), format!("GET http://h{path}"));
                html(&i)
            };
            let hostile = with(&host, &note, &path);
            let benign = with("h", "n", "/p");
            for c in ['<', '>', '"'] {
                proptest::prop_assert_eq!(
                    hostile.matches(c).count(),
                    benign.matches(c).count()
                );
            }
        }
    }

    #[test]
    fn evidence_says_what_a_stored_capture_was_analysed_with() {
        let mut i = input();
        assert!(
            !html(&i).contains("Analysed with"),
            "no column without options"
        );
        i.evidence[0].read_with = vec!["--device <pixel7>".into(), "--all-apps".into()];
        let h = html(&i);
        assert!(h.contains("<th>Analysed with</th>"));
        assert!(
            h.contains("<td class=\"small\">--device &lt;pixel7&gt;; --all-apps</td></tr>"),
            "{h}"
        );
    }

    #[test]
    fn esc_covers_attribute_quotes_and_controls() {
        assert_eq!(esc("a'\"<>&\u{1b}"), "a&#39;&quot;&lt;&gt;&amp;\u{FFFD}");
    }

    #[test]
    fn one_marker_per_consent_event_and_one_mark_per_finding() {
        let mut i = input();
        i.consent.push(event(
            35,
            crate::consent::Decision::Withdrawn,
            EventSource::Manual,
        ));
        let h = html(&i);
        assert_eq!(h.matches("<svg").count(), 1);
        assert_eq!(h.matches("class=\"consent-marker\"").count(), 3);
        assert_eq!(h.matches("class=\"mark third\"").count(), 3);
        assert_eq!(h.matches("class=\"mark first\"").count(), 1);
        assert_eq!(h.matches("data-decision=\"withdrawn\"").count(), 1);
        // The stretch before the first decision is shaded.
        assert_eq!(h.matches("class=\"before-consent\"").count(), 1);
        // Rule colours: the legend names every rule on the timeline.
        assert!(h.contains(rule_colour("share-after-refusal", Severity::High)));
    }

    #[test]
    fn a_device_without_events_or_findings_gets_no_picture() {
        let mut i = input();
        i.case.devices.push("redmi".into());
        let h = html(&i);
        assert_eq!(h.matches("<svg").count(), 1);
        assert!(h.contains("No consent decision and no finding for this device."));
    }

    #[test]
    fn output_is_deterministic_and_needs_no_network() {
        let a = html(&input());
        // Input order of findings and events does not matter.
        let mut shuffled = input();
        shuffled.findings.reverse();
        let b = html(&shuffled);
        assert_eq!(a, b);
        assert!(!a.contains("<script"));
        // Nothing is loaded: no source, link or reference attribute at all.
        assert!(!a.contains("src=") && !a.contains("href=") && !a.contains("url("));
        assert!(!a.contains("<link"));
        assert!(!a.contains("@import"));
    }

    #[test]
    fn ticks_and_labels_are_utc() {
        let h = html(&input());
        assert!(h.contains(">10:15:00<") || h.contains(">10:15:10<"), "{h}");
        assert!(h.contains("UTC, "));
        assert_eq!(tick_step(40_000_000), 5_000_000);
        assert_eq!(tick_step(0), 1_000);
    }

    #[test]
    fn one_timestamp_only_does_not_divide_by_zero() {
        let mut i = input();
        i.findings.truncate(1);
        i.consent.clear();
        let h = html(&i);
        assert_eq!(h.matches("class=\"mark third\"").count(), 1);
        assert!(!h.contains("NaN") && !h.contains("\"inf") && !h.contains("\"-inf"));
    }

    #[test]
    fn extreme_times_neither_overflow_nor_flood_the_axis() {
        let mut i = input();
        i.findings[0].at = Timestamp::from_micros(i64::MIN);
        i.findings[1].at = Timestamp::from_micros(i64::MAX);
        let h = html(&i);
        let svg = &h[h.find("<svg").unwrap()..h.find("</svg>").unwrap()];
        assert!(svg.matches("text-anchor=\"middle\"").count() <= MAX_TICKS as usize + 1);
        assert_eq!(svg.matches("class=\"mark third\"").count(), 3);
    }

    #[test]
    fn chain_head_is_shown_when_given() {
        let mut i = input();
        i.chain_head = Some("c0ffee".repeat(10));
        assert!(html(&i).contains(&"c0ffee".repeat(10)));
        assert!(html(&input()).contains("one-shot analysis"));
    }
}
