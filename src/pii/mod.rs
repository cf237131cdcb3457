//! Personal data detection (DESIGN.md §3): finds the known values of the case's
//! devices, in any of their variants, and validated patterns of personal data, in the
//! decoded parts of one message.
//!
//! Pipeline position: `decode` splits a request into [`Part`]s; [`Detector::scan`]
//! returns the [`PiiMatch`]es that `rules` turns into findings. The [`Detector`] is
//! built once per case ([`variants`] of every device value compiled into one
//! [`matcher::Matcher`]) and shared by every thread (`Arc<Detector>`); scanning reads
//! the parts' borrowed bytes, and allocates per call (hit buffers reused across the
//! parts, the returned matches), never per byte or per matcher hit.
//!
//! Reported `encoding`: the variant's encoding (omitted when `plain`), then the part's
//! decoder layers, joined by `+`: `md5` inside a base64-decoded part is `md5+base64`;
//! a plain value there is `base64`; a plain value in a plain part is `plain`.
//!
//! Post-processing, per message: a pattern hit overlapping an exact hit of the same
//! kind in the same part is dropped; a match entirely inside another match of the same
//! device and kind in the same part is dropped (unpadded base64 inside padded, a
//! truncated coordinate inside a longer one); output is sorted by part, start, kind.

pub mod coordinates;
pub mod decoded_tail;
pub mod location;
pub mod matcher;
pub mod patterns;
pub mod stream;
pub mod trace_ids;
pub mod variants;

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

use serde::Serialize;

use crate::case::{Case, IdentifierKind};
use crate::decode::{json, Part};
use crate::exchange::Anomaly;

use location::CoordHit;
use matcher::{Matcher, PatternId};
use patterns::PatternKind;
use variants::{encoding_rank, Role};

/// Most raw matcher hits examined in one part; a part crafted to match a pattern at
/// every byte stops here (anomaly `pii-hit-limit`).
pub const MAX_HITS_PER_PART: usize = 65_536;
/// Most hits (with their labels) collected for one message before post-processing;
/// the rest of the message's known-value hits are dropped (anomaly `pii-hit-limit`).
pub const MAX_RAW_PER_SCAN: usize = 262_144;
/// Most matches returned for one message (anomaly `pii-match-limit`).
pub const MAX_MATCHES_PER_SCAN: usize = 10_000;

/// How sure a match is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    /// A known value of a case device, in one of its variants.
    Exact,
    /// A validated pattern (checksum etc.), not tied to a device.
    Pattern,
}

/// One piece of personal data found in a message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PiiMatch {
    pub kind: IdentifierKind,
    /// The case device whose value this is (known values only).
    pub device: Option<String>,
    /// `plain`, `url`, `base64`, `hex`, `md5`, `sha1`, `sha256`, `sha512`, or a chain
    /// such as `md5+base64` (applied first to last).
    pub encoding: String,
    /// `query:NAME`, `header:NAME`, `cookie:NAME`, `form:NAME`, `body:$.path`, `path`.
    pub location: String,
    /// Index of the part (in the slice given to [`Detector::scan`]) it was found in.
    pub part: usize,
    /// Byte range within that part.
    pub range: Range<usize>,
    pub confidence: Confidence,
    pub sensitive: bool,
}

/// What one pattern of the matcher stands for (one pattern may carry several labels:
/// the same bytes can be a value of two devices or two kinds).
#[derive(Debug, Clone, Copy)]
struct Label {
    device: u32,
    kind: u32,
    /// Global index of the identifier (pairs a location's lat and lon).
    ident: u32,
    encoding: &'static str,
    role: Role,
}

/// Everything needed to find personal data, built once per case and shared.
pub struct Detector {
    devices: Vec<String>,
    /// Interned kinds; labels and raw hits refer to them by index.
    kinds: Vec<IdentifierKind>,
    /// Index in `kinds` of each [`PatternKind`], in declaration order.
    pattern_kinds: [u32; 5],
    /// Index in `kinds` of `location` (for positions found by coordinate names).
    location_kind: u32,
    matcher: Matcher,
    /// Length of the longest pattern ([`Detector::longest_pattern`]).
    longest: usize,
    /// Per pattern id, its range in `labels`.
    label_spans: Vec<(u32, u32)>,
    labels: Vec<Label>,
}

impl fmt::Debug for Detector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Detector")
            .field("devices", &self.devices)
            .field("patterns", &self.matcher.len())
            .field("labels", &self.labels.len())
            .finish()
    }
}

impl Default for Detector {
    fn default() -> Self {
        Detector::new(&Case::default())
    }
}

/// One hit before post-processing.
#[derive(Debug, Clone, Copy)]
struct Raw {
    part: usize,
    start: usize,
    end: usize,
    kind: u32,
    /// `u32::MAX` for pattern hits.
    device: u32,
    encoding: &'static str,
    confidence: Confidence,
}

const NO_DEVICE: u32 = u32::MAX;

fn intern(kinds: &mut Vec<IdentifierKind>, kind: &IdentifierKind) -> u32 {
    match kinds.iter().position(|k| k == kind) {
        Some(i) => i as u32,
        None => {
            kinds.push(kind.clone());
            (kinds.len() - 1) as u32
        }
    }
}

impl Detector {
    /// Expands every identifier of every device of `case` and compiles the matcher.
    pub fn new(case: &Case) -> Self {
        let mut kinds = Vec::new();
        let pattern_kinds = [
            PatternKind::Email,
            PatternKind::Phone,
            PatternKind::ResidentId,
            PatternKind::Imei,
            PatternKind::BankCard,
        ]
        .map(|p| intern(&mut kinds, &p.kind()));
        let location_kind = intern(&mut kinds, &IdentifierKind::Location);
        let mut index: HashMap<Vec<u8>, PatternId> = HashMap::new();
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        let mut per_pattern: Vec<Vec<Label>> = Vec::new();
        let mut ident = 0u32;
        for (d, device) in case.devices.iter().enumerate() {
            for identifier in &device.identifiers {
                let kind = intern(&mut kinds, &identifier.kind);
                for v in variants::variants(&identifier.kind, &identifier.value) {
                    let label = Label {
                        device: d as u32,
                        kind,
                        ident,
                        encoding: v.encoding,
                        role: v.role,
                    };
                    let id = *index.entry(v.bytes).or_insert_with_key(|bytes| {
                        patterns.push(bytes.clone());
                        per_pattern.push(Vec::new());
                        (patterns.len() - 1) as PatternId
                    });
                    let labels = &mut per_pattern[id as usize];
                    match labels.iter_mut().find(|l| {
                        (l.device, l.kind, l.ident, l.role) == (d as u32, kind, ident, v.role)
                    }) {
                        Some(l) if encoding_rank(v.encoding) < encoding_rank(l.encoding) => {
                            l.encoding = v.encoding
                        }
                        Some(_) => {}
                        None => labels.push(label),
                    }
                }
                ident += 1;
            }
        }
        let mut labels = Vec::new();
        let mut label_spans = Vec::with_capacity(per_pattern.len());
        for l in per_pattern {
            let from = labels.len() as u32;
            labels.extend(l);
            label_spans.push((from, labels.len() as u32));
        }
        Detector {
            devices: case.devices.iter().map(|d| d.id.clone()).collect(),
            kinds,
            pattern_kinds,
            location_kind,
            longest: patterns.iter().map(|p| p.len()).max().unwrap_or(0),
            matcher: Matcher::new(&patterns),
            label_spans,
            labels,
        }
    }

    /// Number of distinct byte strings searched for.
    pub fn pattern_count(&self) -> usize {
        self.matcher.len()
    }

    /// All personal data in the parts of one message.
    pub fn scan(&self, parts: &[Part<'_>]) -> Vec<PiiMatch> {
        self.scan_with_anomalies(parts, &mut Vec::new())
    }

    /// [`Detector::scan`], recording limit hits ([`MAX_HITS_PER_PART`],
    /// [`MAX_MATCHES_PER_SCAN`]) in `anomalies`.
    pub fn scan_with_anomalies(
        &self,
        parts: &[Part<'_>],
        anomalies: &mut Vec<Anomaly>,
    ) -> Vec<PiiMatch> {
        self.scan_inner(parts, anomalies, true)
    }

    /// [`Detector::scan_with_anomalies`] for the case's known values only (no
    /// validated patterns, no positions found by coordinate names): the exact,
    /// fixed-length matches that [`stream::StreamScanner`] can find across chunks.
    pub fn scan_known(&self, parts: &[Part<'_>], anomalies: &mut Vec<Anomaly>) -> Vec<PiiMatch> {
        self.scan_inner(parts, anomalies, false)
    }

    /// Length of the longest known-value variant (0 without any): a match never
    /// spans more bytes than this.
    pub fn longest_pattern(&self) -> usize {
        self.longest
    }

    fn scan_inner(
        &self,
        parts: &[Part<'_>],
        anomalies: &mut Vec<Anomaly>,
        with_patterns: bool,
    ) -> Vec<PiiMatch> {
        let mut hits: Vec<(PatternId, usize)> = Vec::new();
        let mut exact: Vec<Raw> = Vec::new();
        let mut found: Vec<Raw> = Vec::new();
        let mut coords: Vec<CoordHit> = Vec::new();
        let mut full = false;
        for (pi, part) in parts.iter().enumerate() {
            let data: &[u8] = &part.data;
            hits.clear();
            exact.clear();
            if !self.matcher.find_into(data, &mut hits, MAX_HITS_PER_PART) {
                anomalies.push(Anomaly::new(
                    "pii-hit-limit",
                    format!(
                        "{}: more than {MAX_HITS_PER_PART} identifier hits, rest not examined",
                        part.location
                    ),
                ));
            }
            for &(id, start) in &hits {
                if found.len() + exact.len() + coords.len() >= MAX_RAW_PER_SCAN {
                    full = true;
                    break;
                }
                let end = start + self.matcher.pattern(id).len();
                let (from, to) = self.label_spans[id as usize];
                for l in &self.labels[from as usize..to as usize] {
                    match l.role {
                        Role::Value => exact.push(Raw {
                            part: pi,
                            start,
                            end,
                            kind: l.kind,
                            device: l.device,
                            encoding: l.encoding,
                            confidence: Confidence::Exact,
                        }),
                        role => {
                            if location::coordinate_boundary_ok(data, start, end, role) {
                                coords.push(CoordHit {
                                    ident: l.ident,
                                    part: pi,
                                    start,
                                    end,
                                    lat: matches!(role, Role::Lat | Role::LatInt),
                                });
                            }
                        }
                    }
                }
            }
            let covered = exact_cover(&exact);
            let room = MAX_RAW_PER_SCAN.saturating_sub(found.len() + exact.len() + coords.len());
            let mut pattern_hits = 0usize;
            let mut tracing_field = None;
            if with_patterns {
                patterns::scan(data, |pk, start, end| {
                    let kind = self.pattern_kinds[pk as usize];
                    if pattern_hits >= room {
                        full = true;
                    } else if !overlaps(&covered, kind, start, end)
                        && !in_tracing_id(part, start, &mut tracing_field)
                    {
                        pattern_hits += 1;
                        found.push(Raw {
                            part: pi,
                            start,
                            end,
                            kind,
                            device: NO_DEVICE,
                            encoding: "plain",
                            confidence: Confidence::Pattern,
                        });
                    }
                });
            }
            found.append(&mut exact);
        }
        if full {
            anomalies.push(Anomaly::new(
                "pii-hit-limit",
                format!("more than {MAX_RAW_PER_SCAN} personal-data hits in one message, rest not examined"),
            ));
        }
        for c in location::pair(&mut coords) {
            if let Some(l) = self.labels.iter().find(|l| l.ident == c.ident) {
                found.push(Raw {
                    part: c.part,
                    start: c.start,
                    end: c.end,
                    kind: l.kind,
                    device: l.device,
                    encoding: "plain",
                    confidence: Confidence::Exact,
                });
            }
        }
        // A position under coordinate names, when no known position was found.
        if with_patterns
            && !found
                .iter()
                .any(|r| r.kind == self.location_kind && r.confidence == Confidence::Exact)
        {
            if let Some(hit) = coordinates::find(parts) {
                found.push(Raw {
                    part: hit.part,
                    start: hit.range.start,
                    end: hit.range.end,
                    kind: self.location_kind,
                    device: NO_DEVICE,
                    encoding: "plain",
                    confidence: Confidence::Pattern,
                });
            }
        }
        let mut kept = drop_contained(found);
        kept.sort_unstable_by(|a, b| {
            (
                a.part,
                a.start,
                &self.kinds[a.kind as usize],
                a.end,
                a.device,
            )
                .cmp(&(
                    b.part,
                    b.start,
                    &self.kinds[b.kind as usize],
                    b.end,
                    b.device,
                ))
                .then_with(|| a.encoding.cmp(b.encoding))
        });
        if kept.len() > MAX_MATCHES_PER_SCAN {
            anomalies.push(Anomaly::new(
                "pii-match-limit",
                format!(
                    "{} personal-data matches in one message, first {MAX_MATCHES_PER_SCAN} kept",
                    kept.len()
                ),
            ));
            kept.truncate(MAX_MATCHES_PER_SCAN);
        }
        kept.iter()
            .map(|r| {
                let part = &parts[r.part];
                let kind = &self.kinds[r.kind as usize];
                PiiMatch {
                    kind: kind.clone(),
                    device: self.devices.get(r.device as usize).cloned(),
                    encoding: encoding_chain(r.encoding, &part.layers),
                    location: part.location_at(r.start..r.end),
                    part: r.part,
                    range: r.start..r.end,
                    confidence: r.confidence,
                    sensitive: kind.sensitive(),
                }
            })
            .collect()
    }
}

/// The reported encoding: the variant's own (unless `plain`), then the part's layers.
pub fn encoding_chain(variant: &str, layers: &[&str]) -> String {
    // Most hits sit in a part no encoding was undone for: the variant alone, without
    // building a list to join.
    if layers.is_empty() {
        return variant.to_string();
    }
    let mut chain: Vec<&str> = Vec::with_capacity(layers.len() + 1);
    if variant != "plain" {
        chain.push(variant);
    }
    chain.extend_from_slice(layers);
    chain.join("+")
}

/// Union of the exact hits' ranges per kind: disjoint, sorted by (kind, start).
fn exact_cover(exact: &[Raw]) -> Vec<(u32, usize, usize)> {
    let mut spans: Vec<(u32, usize, usize)> =
        exact.iter().map(|r| (r.kind, r.start, r.end)).collect();
    spans.sort_unstable();
    let mut out: Vec<(u32, usize, usize)> = Vec::with_capacity(spans.len());
    for (k, s, e) in spans {
        match out.last_mut() {
            Some(last) if last.0 == k && s <= last.2 => last.2 = last.2.max(e),
            _ => out.push((k, s, e)),
        }
    }
    out
}

/// Whether a pattern hit at `start` of `part` is inside a tracing id: the part is a
/// tracing field (its header, query, form or cookie name), or the hit is the value
/// of a JSON member named as one (`"trace_id": 4111…`). Tracing ids are random
/// numbers, no personal data; known values are matched there all the same. Asked of
/// pattern hits only (rare), so the part's own name is looked at once, on its first
/// hit, and kept in `field`.
fn in_tracing_id(part: &Part<'_>, start: usize, field: &mut Option<bool>) -> bool {
    let named = *field.get_or_insert_with(|| {
        part.place_and_name()
            .is_some_and(|(place, name)| trace_ids::names_trace_field(place, name))
    });
    named
        || part.json.is_some()
            && json::key_before(&part.data, start).is_some_and(trace_ids::is_trace_key)
}

/// Whether `start..end` overlaps a range of `kind` in `cover`.
fn overlaps(cover: &[(u32, usize, usize)], kind: u32, start: usize, end: usize) -> bool {
    // First interval of this kind ending after `start` (ends increase within a kind).
    let i = cover.partition_point(|&(k, _, e)| (k, e) <= (kind, start));
    cover.get(i).is_some_and(|&(k, s, _)| k == kind && s < end)
}

/// Drops every hit entirely inside another hit of the same part, device and kind; of
/// identical ranges the simplest encoding stays.
fn drop_contained(mut raws: Vec<Raw>) -> Vec<Raw> {
    raws.sort_unstable_by(|a, b| {
        (a.part, a.device, a.kind, a.start, std::cmp::Reverse(a.end))
            .cmp(&(b.part, b.device, b.kind, b.start, std::cmp::Reverse(b.end)))
            .then_with(|| encoding_rank(a.encoding).cmp(&encoding_rank(b.encoding)))
    });
    let mut out: Vec<Raw> = Vec::with_capacity(raws.len());
    let mut group: Option<(usize, u32, u32)> = None;
    let mut max_end = 0usize;
    for r in raws {
        let key = (r.part, r.device, r.kind);
        if group == Some(key) && r.end <= max_end {
            continue;
        }
        group = Some(key);
        max_end = r.end;
        out.push(r);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;

    use super::*;
    use crate::case::{Device, Identifier, IdentifierValue};

    fn device(id: &str, idents: &[(IdentifierKind, IdentifierValue)]) -> Device {
        Device {
            id: id.to_string(),
            identifiers: idents
                .iter()
                .map(|(kind, value)| Identifier {
                    kind: kind.clone(),
                    value: value.clone(),
                })
                .collect(),
            ..Device::default()
        }
    }

    fn text(s: &str) -> IdentifierValue {
        IdentifierValue::Text(s.to_string())
    }

    fn pixel() -> Case {
        Case {
            devices: vec![device(
                "pixel7",
                &[
                    (IdentifierKind::AndroidId, text("9774d56d682e549c")),
                    (
                        IdentifierKind::AdvertisingId,
                        text("38400000-8cf0-11bd-b23e-10b96e40000d"),
                    ),
                    (IdentifierKind::Phone, text("+8613800138000")),
                    (IdentifierKind::Email, text("tester@example.org")),
                    (
                        IdentifierKind::Location,
                        IdentifierValue::Location {
                            lat: 31.230416,
                            lon: 121.473701,
                        },
                    ),
                ],
            )],
            ..Case::default()
        }
    }

    fn part<'a>(location: &str, layers: Vec<&'static str>, data: &'a [u8]) -> Part<'a> {
        Part {
            layers,
            ..Part::new(location.to_string(), Cow::Borrowed(data))
        }
    }

    /// kind, device, encoding, location, range
    type Row = (String, Option<String>, String, String, Range<usize>);

    fn summary(ms: &[PiiMatch]) -> Vec<Row> {
        ms.iter()
            .map(|m| {
                (
                    m.kind.key(),
                    m.device.clone(),
                    m.encoding.clone(),
                    m.location.clone(),
                    m.range.clone(),
                )
            })
            .collect()
    }

    #[test]
    fn detector_is_send_sync() {
        fn check<T: Send + Sync>() {}
        check::<Detector>();
    }

    #[test]
    fn scan_reports_encodings_with_layers() {
        let det = Detector::new(&pixel());
        let md5 = "cf95dc53f383f9a836fd749f3ef439cd"; // md5("9774d56d682e549c")
        let body = format!("{{\"a\":\"{md5}\",\"aaid\":\"384000008CF011BDB23E10B96E40000D\"}}");
        let q = "9774d56d682e549c";
        let parts = [
            part("query:aid", vec![], q.as_bytes()),
            part("body", vec!["base64"], body.as_bytes()),
        ];
        let got = summary(&det.scan(&parts));
        let pixel = Some("pixel7".to_string());
        assert_eq!(
            got,
            vec![
                (
                    "android_id".into(),
                    pixel.clone(),
                    "plain".into(),
                    "query:aid".into(),
                    0..16
                ),
                (
                    "android_id".into(),
                    pixel.clone(),
                    "md5+base64".into(),
                    "body".into(),
                    6..38
                ),
                (
                    "advertising_id".into(),
                    pixel,
                    "base64".into(),
                    "body".into(),
                    48..80
                ),
            ]
        );
    }

    #[test]
    fn padded_base64_hides_unpadded_inside() {
        let det = Detector::new(&pixel());
        let b64 = STANDARD.encode("9774d56d682e549c"); // ends with "=="
        let data = format!("x={b64}");
        let got = det.scan(&[part("body", vec![], data.as_bytes())]);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].encoding, "base64");
        assert_eq!(got[0].range, 2..2 + b64.len());
    }

    #[test]
    fn location_needs_lat_and_lon_in_the_same_message() {
        let det = Detector::new(&pixel());
        let lat_only = [part("query:lat", vec![], b"31.2304")];
        assert!(det.scan(&lat_only).is_empty());
        let both = [
            part("query:lat", vec![], b"31.2304"),
            part("query:lng", vec![], b"121.47370"),
        ];
        let got = det.scan(&both);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].kind, IdentifierKind::Location);
        assert_eq!(got[0].location, "query:lat");
        assert_eq!(got[0].range, 0..7);
        assert!(got[0].sensitive);
        // A different number ending like the latitude does not count.
        let wrong = [part("body", vec![], b"a=131.2304&b=121.4737")];
        assert!(det.scan(&wrong).is_empty());
        // E7 integers in one body.
        let e7 = [part(
            "body",
            vec![],
            b"{\"la\":312304160,\"lo\":1214737010}",
        )];
        assert_eq!(det.scan(&e7).len(), 1);
    }

    #[test]
    fn pattern_hits_dropped_under_exact_hits() {
        let det = Detector::new(&pixel());
        let data = b"p=13800138000&q=13900139000&m=tester@example.org&n=other@example.com";
        let got = det.scan(&[part("form", vec![], data)]);
        let got: Vec<(String, Confidence, &[u8])> = got
            .iter()
            .map(|m| (m.kind.key(), m.confidence, &data[m.range.clone()]))
            .collect();
        assert_eq!(
            got,
            vec![
                ("phone".into(), Confidence::Exact, &b"13800138000"[..]),
                ("phone".into(), Confidence::Pattern, &b"13900139000"[..]),
                (
                    "email".into(),
                    Confidence::Exact,
                    &b"tester@example.org"[..]
                ),
                (
                    "email".into(),
                    Confidence::Pattern,
                    &b"other@example.com"[..]
                ),
            ]
        );
    }

    #[test]
    fn no_pattern_hits_in_tracing_ids_but_known_values_still_found() {
        let det = Detector::new(&pixel());
        // 4111111111111111 passes Luhn with Visa's prefix; 490154203237518 is a
        // Luhn-valid IMEI; both as they come in tracing fields, and once elsewhere.
        let json = br#"{"_dd":{"trace_id":"4111111111111111","spanId":490154203237518},"card":"4111111111111111"}"#;
        let json_part = Part {
            json: Some(crate::decode::LazyIndex::default()),
            ..part("body", vec![], json)
        };
        let parts = [
            part("header:x-datadog-trace-id", vec![], b"4111111111111111"),
            part("header:X-B3-SpanId", vec![], b"4111111111111111"),
            part("header:X-Trace-Id", vec![], b"490154203237518"),
            part("query:trace_id", vec![], b"4111111111111111"),
            // A known value in a tracing field is still reported.
            part("header:traceparent", vec![], b"00-9774d56d682e549c-01"),
            json_part,
            // Not tracing names: still searched.
            part("header:x-request-id", vec![], b"4111111111111111"),
            part("query:parent_id", vec![], b"4111111111111111"),
        ];
        let got: Vec<(String, String, Confidence)> = det
            .scan(&parts)
            .iter()
            .map(|m| (m.kind.key(), m.location.clone(), m.confidence))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "android_id".into(),
                    "header:traceparent".into(),
                    Confidence::Exact
                ),
                (
                    "bank_card".into(),
                    "body:$.card".into(),
                    Confidence::Pattern
                ),
                (
                    "bank_card".into(),
                    "header:x-request-id".into(),
                    Confidence::Pattern
                ),
                (
                    "bank_card".into(),
                    "query:parent_id".into(),
                    Confidence::Pattern
                ),
            ]
        );
    }

    #[test]
    fn scan_known_reports_known_values_only() {
        let det = Detector::new(&pixel());
        let data =
            b"p=13900139000&m=other@example.com&aid=9774d56d682e549c&lat=31.2304&lng=121.4737";
        let all = det.scan(&[part("body", vec![], data)]);
        assert!(all.iter().any(|m| m.confidence == Confidence::Pattern));
        let known = det.scan_known(&[part("body", vec![], data)], &mut Vec::new());
        let kinds: Vec<String> = known.iter().map(|m| m.kind.key()).collect();
        assert_eq!(kinds, ["android_id", "location"]);
        assert!(known.iter().all(|m| m.confidence == Confidence::Exact));
        // The longest variant of the case (a SHA-512 in hex, 128 bytes, or longer).
        assert!(det.longest_pattern() >= 128, "{}", det.longest_pattern());
        assert_eq!(Detector::default().longest_pattern(), 0);
    }

    #[test]
    fn hit_limit_is_an_anomaly() {
        let case = Case {
            devices: vec![device("d", &[(IdentifierKind::Name, text("ababab"))])],
            ..Case::default()
        };
        let det = Detector::new(&case);
        let data = b"ab".repeat(MAX_HITS_PER_PART + 100);
        let mut anomalies = Vec::new();
        let got = det.scan_with_anomalies(&[part("body", vec![], &data)], &mut anomalies);
        assert!(anomalies.iter().any(|a| a.kind == "pii-hit-limit"));
        assert!(anomalies.iter().any(|a| a.kind == "pii-match-limit"));
        assert_eq!(got.len(), MAX_MATCHES_PER_SCAN);
    }

    #[test]
    fn raw_hit_limit_per_message() {
        let devices = (0..5)
            .map(|i| device(&format!("d{i}"), &[(IdentifierKind::Name, text("ababab"))]))
            .collect();
        let det = Detector::new(&Case {
            devices,
            ..Case::default()
        });
        let data = b"ab".repeat(60_000); // under the per-part limit, 5 labels per hit
        let mut anomalies = Vec::new();
        det.scan_with_anomalies(&[part("body", vec![], &data)], &mut anomalies);
        assert_eq!(anomalies.len(), 2, "{anomalies:?}"); // raw limit, then match limit
        assert!(anomalies[0].detail.contains("in one message"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Hostile bytes: no panic, ranges inside the part, output sorted.
        #[test]
        fn scan_arbitrary_bytes(
            data in proptest::collection::vec(
                proptest::sample::select(b"0123456789@.+-Xx:aZ=&\"/13800138000".to_vec()), 0..600),
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
        ) {
            let det = Detector::new(&pixel());
            let mut data = data;
            data.extend(tail);
            data.extend_from_slice(b"+8613800138000");
            let parts = [part("a", vec![], &data), part("b", vec!["base64"], &data[data.len() / 2..])];
            let got = det.scan(&parts);
            proptest::prop_assert!(got.iter().any(|m| m.confidence == Confidence::Exact));
            for m in &got {
                let len = if m.location == "a" { data.len() } else { data.len() - data.len() / 2 };
                proptest::prop_assert!(m.range.start < m.range.end && m.range.end <= len);
            }
        }
    }

    #[test]
    fn encoding_chains() {
        assert_eq!(encoding_chain("plain", &[]), "plain");
        assert_eq!(encoding_chain("plain", &["base64"]), "base64");
        assert_eq!(encoding_chain("md5", &["base64"]), "md5+base64");
        assert_eq!(
            encoding_chain("sha256", &["base64", "url"]),
            "sha256+base64+url"
        );
        assert_eq!(encoding_chain("md5", &[]), "md5");
    }

    /// Synthetic values for `n` devices, every built-in kind plus a custom string.
    pub(crate) fn synthetic_case(n: usize) -> Case {
        let devices = (0..n)
            .map(|i| {
                let idents: Vec<(IdentifierKind, IdentifierValue)> = IdentifierKind::BUILTIN
                    .iter()
                    .map(|k| {
                        let v = match k {
                            IdentifierKind::Location => IdentifierValue::Location {
                                lat: 30.0 + i as f64 * 0.0137,
                                lon: 120.0 + i as f64 * 0.0213,
                            },
                            IdentifierKind::Phone => text(&format!("+86138{:08}", 138000 + i)),
                            IdentifierKind::Email => text(&format!("tester{i}@example.org")),
                            IdentifierKind::Mac | IdentifierKind::Bssid => {
                                text(&format!("02:00:00:44:{:02x}:{:02x}", i, k.key().len()))
                            }
                            _ => text(&format!("{}-{i:04}-5E6F-8A9B", k.key())),
                        };
                        (k.clone(), v)
                    })
                    .chain([(
                        IdentifierKind::Custom("user_name".into()),
                        text("Zhang San"),
                    )])
                    .collect();
                device(&format!("dev{i}"), &idents)
            })
            .collect();
        Case {
            devices,
            ..Case::default()
        }
    }

    #[test]
    fn ten_devices_all_kinds() {
        let det = Detector::new(&synthetic_case(10));
        let n = det.pattern_count();
        println!(
            "10 devices x {} kinds: {n} patterns",
            IdentifierKind::BUILTIN.len() + 1
        );
        assert!(n > 10_000, "{n}");
        // Shared custom value: one pattern, a label per device.
        let data = b"name=Zhang%20San";
        let got = det.scan(&[part("body", vec![], data)]);
        assert_eq!(got.len(), 10, "{got:?}");
        assert!(got.iter().all(|m| m.encoding == "url"));
    }
}
