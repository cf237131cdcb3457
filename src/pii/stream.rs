//! The case's known values searched in a body too large to keep, chunk by chunk.
//!
//! Pipeline position: a live source (the proxy) keeps the first `--body-cap` bytes of
//! a request body for the full analysis (`decode` → [`Detector::scan`]) and feeds the
//! rest, as it streams past, to a [`StreamScanner`]; a capture's HTTP parsers do the
//! same past their `max_body_bytes` through [`tail_search`] (`net::tail_search`),
//! telling it of bytes lost on the way ([`StreamScanner::gap`]). Its hits become
//! [`BeyondCapHit`]s on the exchange, which `rules` turns into data items located
//! `body-beyond-cap:OFFSET` ("request body beyond the analysis cap at offset N").
//! Memory is bounded whatever the body size: one window of at most
//! [`STEP`] + overlap bytes, and at most [`MAX_KEPT_HITS`] hits.
//!
//! # Windows and overlap
//! Each chunk (cut into pieces of at most [`STEP`] bytes) is searched together with
//! the last `overlap` bytes before it, `overlap = longest variant + 1`. A window
//! covering body bytes `[a, b)` reports the hits that end in `[b', b)`, where `b'` is
//! the end of the window before. Such a hit starts at or after `b' − longest`, so it
//! lies inside the window with one byte of context before it (the detector's boundary
//! checks look at the bytes around a hit). A hit ending exactly at `b` waits for the
//! next window, which shows the byte after it; at the end of the body it is reported
//! as is. The first window is seeded with the end of the analysed prefix, and only hits
//! ending past the cap are reported: a value straddling the cap is found here, a value
//! wholly inside the prefix is the full analysis's. Each hit is therefore reported
//! exactly once, at its real offset, wherever the chunks are cut (tested below by
//! feeding every split).
//!
//! # What is searched, and what is not
//! - The body bytes as the source received them (after transfer decoding), or, for a
//!   body sent with a `Content-Encoding`, the bytes `super::decoded_tail` decodes
//!   from them: a base64-wrapped tail is not decoded, so only the variants themselves
//!   are found there (plain, case, URL-encoded, base64, hex, digests, JSON-escaped).
//! - Known values only ([`Detector::scan_known`]), and not positions: validated
//!   patterns (e-mail, phone, IMEI, …) have no fixed length, so no overlap guarantees
//!   them across chunks, and a position is two hits (latitude, longitude) any distance
//!   apart, which windows would find or miss depending on where the chunks are cut.
//! - Kept: the first hit of each (type, device, encoding), at most [`MAX_KEPT_HITS`];
//!   every hit is counted ([`TailFound::total_hits`]).
//!
//! # Across a cut between two messages
//! [`across_cut`] applies the same rule to one cut: a connection's bytes in a protocol
//! no parser reads go to the analysis in parts (`net::unparsed`), each searched whole,
//! and a value cut between two parts is found by the part it ends in, from the last
//! bytes of the part before (its `payload_lead`).

use std::collections::HashSet;
use std::sync::Arc;

use super::{Confidence, Detector};
use crate::case::IdentifierKind;
use crate::decode::Part;
use crate::exchange::{Anomaly, BeyondCapHit};
use crate::net::tail_search::{TailFound, TailScan, TailSearch, TailStart};

/// Most body bytes searched in one window, besides the overlap.
pub const STEP: usize = 64 << 10;
/// Most hits kept for one body (the first of each type, device and encoding).
pub const MAX_KEPT_HITS: usize = 64;
/// Hits ending exactly at a window's end, held for the next window, at most.
const MAX_PENDING: usize = 1024;
/// Most distinct anomalies one body's stream records.
const MAX_STREAM_ANOMALIES: usize = 8;
/// Location given to the windows while they are searched.
const WINDOW_LOCATION: &str = "body-beyond-cap";

/// The `where` of a value found across the cut between two parts of a connection's
/// payload ([`across_cut`]): "begun in the part before, ended in this one".
pub const ACROSS_PARTS_LOCATION: &str = "payload-across-parts";

/// A known value found across a cut ([`across_cut`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CutHit {
    pub kind: IdentifierKind,
    pub device: Option<String>,
    pub encoding: String,
    pub sensitive: bool,
    /// The matched bytes (for `--reveal` only).
    pub value: Vec<u8>,
}

/// The case's known values that begin in `lead` (the bytes before a cut) and end in
/// `after` (those after it), which neither side's own search can find: each exactly
/// once, with a byte of context on each side for the detector's boundary checks.
/// Only the last longest-variant-plus-one bytes of `lead` and as many of `after` are
/// looked at. Values only, not positions (see the module docs).
pub fn across_cut(
    detector: &Detector,
    lead: &[u8],
    after: &[u8],
    anomalies: &mut Vec<Anomaly>,
) -> Vec<CutHit> {
    let overlap = detector.longest_pattern().saturating_add(1);
    if lead.is_empty() || after.is_empty() || overlap < 2 {
        return Vec::new();
    }
    let lead = &lead[lead.len().saturating_sub(overlap)..];
    let mut window = Vec::with_capacity(lead.len() + overlap);
    window.extend_from_slice(lead);
    window.extend_from_slice(&after[..after.len().min(overlap)]);
    let part = Part::new(ACROSS_PARTS_LOCATION, &window[..]);
    let cut = lead.len();
    detector
        .scan_known(std::slice::from_ref(&part), anomalies)
        .into_iter()
        .filter(|m| {
            m.confidence == Confidence::Exact
                && m.kind != IdentifierKind::Location
                && m.range.start < cut
                && m.range.end > cut
        })
        .map(|m| CutHit {
            value: window.get(m.range.clone()).unwrap_or_default().to_vec(),
            kind: m.kind,
            device: m.device,
            encoding: m.encoding,
            sensitive: m.sensitive,
        })
        .collect()
}

/// Searches a body's bytes beyond the analysis cap for the case's known values.
pub struct StreamScanner {
    detector: Arc<Detector>,
    overlap: usize,
    /// The window being built: the overlap kept from before, then new bytes.
    window: Vec<u8>,
    /// Body offset of `window[0]`.
    window_start: u64,
    /// Hits ending before this offset were reported by an earlier window (or belong
    /// to the analysed prefix).
    reported_until: u64,
    /// Hits ending exactly at the last window's end (reported at [`finish`] unless a
    /// later window re-finds them).
    ///
    /// [`finish`]: StreamScanner::finish
    pending: Vec<BeyondCapHit>,
    kept: Vec<BeyondCapHit>,
    seen: HashSet<(String, Option<String>, String)>,
    total_hits: u64,
    bytes: u64,
    anomalies: Vec<Anomaly>,
}

impl StreamScanner {
    /// A scanner for the bytes after the analysed prefix of a body. `prefix` is that
    /// prefix (only its last `overlap` bytes are copied): its length is the cap, the
    /// body offset of the first byte fed.
    pub fn new(detector: Arc<Detector>, prefix: &[u8]) -> StreamScanner {
        StreamScanner::at(detector, prefix, prefix.len() as u64)
    }

    /// A scanner whose first byte fed is at body offset `at`, `prefix` the bytes just
    /// before it (only its last `overlap` bytes are copied; empty when the bytes
    /// before were lost): for a capture, whose kept bytes may have skipped a gap.
    pub fn at(detector: Arc<Detector>, prefix: &[u8], at: u64) -> StreamScanner {
        let overlap = detector.longest_pattern().saturating_add(1);
        let tail_from = prefix.len().saturating_sub(overlap);
        let tail = prefix.get(tail_from..).unwrap_or_default();
        let mut window = Vec::with_capacity(overlap.saturating_add(STEP));
        window.extend_from_slice(tail);
        StreamScanner {
            detector,
            overlap,
            window,
            window_start: at.saturating_sub(tail.len() as u64),
            reported_until: at.saturating_add(1),
            pending: Vec::new(),
            kept: Vec::new(),
            seen: HashSet::new(),
            total_hits: 0,
            bytes: 0,
            anomalies: Vec::new(),
        }
    }

    /// Bytes of context carried from one window to the next.
    pub fn overlap(&self) -> usize {
        self.overlap
    }

    /// Searches the next bytes of the body.
    pub fn feed(&mut self, chunk: &[u8]) {
        self.bytes = self.bytes.saturating_add(chunk.len() as u64);
        for piece in chunk.chunks(STEP) {
            self.window.extend_from_slice(piece);
            self.search_window();
            // Keep the overlap for the next window.
            let drop = self.window.len().saturating_sub(self.overlap);
            self.window.drain(..drop);
            self.window_start = self.window_start.saturating_add(drop as u64);
        }
    }

    /// `len` bytes of the body were lost: hits waiting for the byte after them are
    /// reported as at the body's end, and the next window starts after the gap with
    /// nothing before it, so no value is made up of bytes from both sides.
    pub fn gap(&mut self, len: u64) {
        for h in std::mem::take(&mut self.pending) {
            self.report(h);
        }
        let end = self.window_start.saturating_add(self.window.len() as u64);
        self.window.clear();
        self.window_start = end.saturating_add(len);
        // Any hit from here on ends past the new start.
        self.reported_until = self.window_start;
    }

    /// Ends the body: hits waiting for a byte after them are reported. The anomalies
    /// are the limits hit while searching (`pii-hit-limit`, `pii-match-limit`, …),
    /// each kind once.
    pub fn finish(mut self) -> TailFound {
        for h in std::mem::take(&mut self.pending) {
            self.report(h);
        }
        self.kept.sort_by_key(|h| h.offset);
        TailFound {
            hits: self.kept,
            total_hits: self.total_hits,
            bytes: self.bytes,
            anomalies: self.anomalies,
            decoded_from: None,
            undecoded: None,
        }
    }

    fn search_window(&mut self) {
        let end = self.window_start.saturating_add(self.window.len() as u64);
        // The previous window's hits at its very end are found again here, with the
        // byte after them.
        self.pending.clear();
        let part = Part::new(WINDOW_LOCATION, &self.window[..]);
        let mut anomalies = Vec::new();
        let matches = self
            .detector
            .scan_known(std::slice::from_ref(&part), &mut anomalies);
        for a in anomalies {
            let known = self.anomalies.iter().any(|b| b.kind == a.kind);
            if !known && self.anomalies.len() < MAX_STREAM_ANOMALIES {
                self.anomalies.push(Anomaly::new(
                    a.kind,
                    format!("request body beyond the analysis cap: {}", a.detail),
                ));
            }
        }
        let mut fresh = Vec::new();
        for m in matches {
            // A position is a pair of hits that may fall in different windows, and is
            // reported at its latitude only: no overlap rule can place it exactly once.
            if m.confidence != Confidence::Exact || m.kind == IdentifierKind::Location {
                continue;
            }
            let hit_end = self.window_start.saturating_add(m.range.end as u64);
            if hit_end < self.reported_until {
                continue;
            }
            let hit = BeyondCapHit {
                kind: m.kind.key(),
                device: m.device,
                encoding: m.encoding,
                offset: self.window_start.saturating_add(m.range.start as u64),
                decoded_from: None,
                sensitive: m.sensitive,
                value: self.window.get(m.range).unwrap_or_default().to_vec(),
            };
            if hit_end == end {
                if self.pending.len() < MAX_PENDING {
                    self.pending.push(hit);
                }
            } else {
                fresh.push(hit);
            }
        }
        for h in fresh {
            self.report(h);
        }
        self.reported_until = end;
    }

    fn report(&mut self, h: BeyondCapHit) {
        self.total_hits = self.total_hits.saturating_add(1);
        if self.kept.len() >= MAX_KEPT_HITS {
            return;
        }
        let key = (h.kind.clone(), h.device.clone(), h.encoding.clone());
        if self.seen.insert(key) {
            self.kept.push(h);
        }
    }
}

/// The search a capture's parsers run past the cap ([`TailSearch`]).
impl TailScan for StreamScanner {
    fn feed(&mut self, chunk: &[u8]) {
        StreamScanner::feed(self, chunk);
    }

    fn gap(&mut self, len: u64) {
        StreamScanner::gap(self, len);
    }

    fn finish(self: Box<Self>) -> TailFound {
        StreamScanner::finish(*self)
    }
}

/// Starts the search of each request body a capture's parsers carry past their cap:
/// a [`StreamScanner`] over its bytes, or over its decoded bytes when it has a
/// `Content-Encoding` ([`super::decoded_tail::body_tail`]).
pub fn tail_search(detector: Arc<Detector>, limits: crate::decode::Limits) -> TailSearch {
    TailSearch(Arc::new(move |start: TailStart<'_>| {
        super::decoded_tail::body_tail(Arc::clone(&detector), &limits, start)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::{Case, Device, Identifier, IdentifierValue};

    const AD_ID: &str = "38400000-8cf0-11bd-b23e-10b96e40000d";
    const ANDROID_ID: &str = "9774d56d682e549c";

    fn detector() -> Arc<Detector> {
        let ident = |kind, v: &str| Identifier {
            kind,
            value: IdentifierValue::Text(v.to_string()),
        };
        let case = Case {
            devices: vec![Device {
                id: "pixel7".into(),
                identifiers: vec![
                    ident(IdentifierKind::AdvertisingId, AD_ID),
                    ident(IdentifierKind::AndroidId, ANDROID_ID),
                ],
                ..Device::default()
            }],
            ..Case::default()
        };
        Arc::new(Detector::new(&case))
    }

    /// Runs a body through a scanner: `cap` bytes as the prefix, the rest fed in
    /// pieces cut at `cuts` (offsets into the body, ascending).
    fn run(det: &Arc<Detector>, body: &[u8], cap: usize, cuts: &[usize]) -> TailFound {
        let mut s = StreamScanner::new(det.clone(), &body[..cap]);
        let mut from = cap;
        for &c in cuts.iter().filter(|&&c| c > cap).chain([&body.len()]) {
            s.feed(&body[from..c]);
            from = c;
        }
        s.finish()
    }

    fn summary(o: &TailFound) -> Vec<(String, String, u64)> {
        o.hits
            .iter()
            .map(|h| (h.kind.clone(), h.encoding.clone(), h.offset))
            .collect()
    }

    fn filler(n: usize) -> Vec<u8> {
        (0..n).map(|i| b'a' + (i % 7) as u8).collect()
    }

    #[test]
    fn a_hit_split_across_two_chunks_is_found_once_at_its_offset() {
        let det = detector();
        let mut body = filler(1000);
        body.extend_from_slice(AD_ID.as_bytes());
        body.extend(filler(500));
        // Cut in the middle of the identifier, and next to its ends.
        for cut in [1000 + 10, 1000, 1001, 1000 + 35, 1000 + 36] {
            let o = run(&det, &body, 100, &[cut]);
            assert_eq!(
                summary(&o),
                [("advertising_id".into(), "plain".into(), 1000)],
                "cut {cut}"
            );
            assert_eq!(o.total_hits, 1);
            assert_eq!(o.hits[0].value, AD_ID.as_bytes());
            assert_eq!(o.bytes, body.len() as u64 - 100);
        }
    }

    #[test]
    fn a_hit_at_the_cap_boundary_belongs_to_the_stream_only_when_it_ends_past_the_cap() {
        let det = detector();
        let mut body = filler(300);
        body.extend_from_slice(AD_ID.as_bytes()); // 300..336
        body.extend(filler(300));
        // Straddling the cap: found here, at its offset before the cap.
        for cap in [301, 320, 335] {
            let o = run(&det, &body, cap, &[]);
            assert_eq!(
                summary(&o),
                [("advertising_id".into(), "plain".into(), 300)],
                "cap {cap}"
            );
        }
        // Ending at or before the cap: the analysed prefix has it.
        for cap in [336, 337, 400] {
            let o = run(&det, &body, cap, &[]);
            assert!(o.hits.is_empty(), "cap {cap}: {o:?}");
        }
        // Starting exactly at the cap.
        let o = run(&det, &body, 300, &[]);
        assert_eq!(o.hits.len(), 1);
        assert_eq!(o.hits[0].offset, 300);
    }

    #[test]
    fn a_scanner_started_past_a_gap_keeps_true_offsets_and_joins_nothing_across_gaps() {
        let det = detector();
        let ad = AD_ID.as_bytes();
        // Started at offset 5000 with a lead-in that ends in half the value: the
        // other half completes it, at its offset before the start.
        let mut s = StreamScanner::at(det.clone(), &[&filler(50)[..], &ad[..10]].concat(), 5000);
        s.feed(&ad[10..]);
        // Half a value, lost bytes, the other half: nothing.
        s.feed(&[&filler(40)[..], &ad[..12]].concat());
        s.gap(20);
        s.feed(&ad[12..]);
        // A value right before a gap (no byte after it ever comes), and one after it.
        let md5 = "cf95dc53f383f9a836fd749f3ef439cd"; // md5(ANDROID_ID)
        s.feed(&[&filler(30)[..], ANDROID_ID.as_bytes()].concat());
        s.gap(7);
        s.feed(&[&filler(3)[..], md5.as_bytes(), &filler(3)[..]].concat());
        let o = s.finish();
        let before_gap = 5000 + 26 + 40 + 12 + 20 + 24 + 30;
        assert_eq!(
            summary(&o),
            [
                ("advertising_id".into(), "plain".into(), 4990),
                ("android_id".into(), "plain".into(), before_gap),
                ("android_id".into(), "md5".into(), before_gap + 16 + 7 + 3),
            ]
        );
        assert_eq!(o.total_hits, 3);
        assert_eq!(
            o.bytes,
            (26 + 52 + 24 + 46 + 38) as u64,
            "lost bytes not counted"
        );
    }

    #[test]
    fn two_hits_in_two_chunks_and_repeats_are_counted_once_kept() {
        let det = detector();
        let mut body = filler(200);
        body.extend_from_slice(AD_ID.as_bytes()); // 200
        body.extend(filler(100));
        body.extend_from_slice(ANDROID_ID.as_bytes()); // 336
        body.extend(filler(100));
        body.extend_from_slice(AD_ID.as_bytes()); // 452: a repeat
        let want = vec![
            ("advertising_id".to_string(), "plain".to_string(), 200),
            ("android_id".to_string(), "plain".to_string(), 336),
        ];
        for cuts in [&[][..], &[210], &[340, 460], &[336, 352]] {
            let o = run(&det, &body, 50, cuts);
            assert_eq!(summary(&o), want, "cuts {cuts:?}");
            assert_eq!(o.total_hits, 3, "cuts {cuts:?}");
        }
    }

    #[test]
    fn every_split_gives_the_same_hits() {
        let det = detector();
        let md5 = "cf95dc53f383f9a836fd749f3ef439cd"; // md5(ANDROID_ID)
        let mut body = filler(40);
        body.extend_from_slice(format!("{{\"a\":\"{AD_ID}\",\"m\":\"{md5}\"}}").as_bytes());
        body.extend(filler(20));
        let whole = run(&det, &body, 30, &[]);
        assert_eq!(whole.hits.len(), 2, "{whole:?}");
        for cut in 30..body.len() {
            assert_eq!(run(&det, &body, 30, &[cut]), whole, "cut {cut}");
        }
        // Byte by byte.
        let cuts: Vec<usize> = (31..body.len()).collect();
        assert_eq!(run(&det, &body, 30, &cuts), whole);
    }

    /// (kind, encoding) of each known-value hit, sorted.
    fn known(det: &Detector, data: &[u8]) -> Vec<(String, String)> {
        let part = Part::new("payload", data);
        let mut v: Vec<_> = det
            .scan_known(std::slice::from_ref(&part), &mut Vec::new())
            .into_iter()
            .filter(|m| m.confidence == Confidence::Exact)
            .map(|m| (m.kind.key(), m.encoding))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn across_every_cut_each_value_is_found_once() {
        let det = detector();
        let md5 = "cf95dc53f383f9a836fd749f3ef439cd"; // md5(ANDROID_ID)
        let mut body = filler(40);
        body.extend_from_slice(format!("{{\"a\":\"{AD_ID}\",\"m\":\"{md5}\"}}").as_bytes());
        body.extend_from_slice(format!(" {ANDROID_ID};").as_bytes());
        body.extend(filler(20));
        let whole = known(&det, &body);
        assert_eq!(whole.len(), 3, "{whole:?}");
        for cut in 0..=body.len() {
            let (before, after) = body.split_at(cut);
            let mut got = known(&det, before);
            got.extend(known(&det, after));
            let across = across_cut(&det, before, after, &mut Vec::new());
            got.extend(across.iter().map(|h| (h.kind.key(), h.encoding.clone())));
            got.sort();
            assert_eq!(got, whole, "cut {cut}");
            for h in &across {
                assert!(
                    body.windows(h.value.len()).any(|w| w == &h.value[..]),
                    "cut {cut}: the value is the body's bytes"
                );
            }
        }
        // A longer lead (here with a value of its own, the part before's) changes
        // nothing: only its last longest-plus-one bytes are looked at.
        let cut = 40 + 6 + 10;
        let mut lead = filler(300);
        lead.extend_from_slice(format!(" {AD_ID} ").as_bytes());
        lead.extend(filler(det.longest_pattern() + 1));
        lead.extend_from_slice(&body[..cut]);
        let got = across_cut(&det, &lead, &body[cut..], &mut Vec::new());
        assert_eq!(
            got,
            across_cut(&det, &body[..cut], &body[cut..], &mut Vec::new())
        );
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].value, AD_ID.as_bytes());
    }

    #[test]
    fn long_bodies_keep_memory_bounded_and_offsets_exact() {
        let det = detector();
        let mut s = StreamScanner::new(det.clone(), &filler(10));
        let chunk = filler(STEP + 123);
        for _ in 0..20 {
            s.feed(&chunk);
            assert!(s.window.capacity() <= s.overlap + STEP + 64, "window grew");
        }
        s.feed(ANDROID_ID.as_bytes());
        let o = s.finish();
        assert_eq!(o.hits.len(), 1);
        assert_eq!(o.hits[0].offset, 10 + 20 * (STEP as u64 + 123));
        assert_eq!(o.hits[0].encoding, "plain");
    }

    #[test]
    fn many_distinct_hits_stop_at_the_keep_limit() {
        // One device per value, so every hit is a distinct (type, device, encoding).
        let devices: Vec<Device> = (0..MAX_KEPT_HITS + 10)
            .map(|i| Device {
                id: format!("d{i}"),
                identifiers: vec![Identifier {
                    kind: IdentifierKind::Serial,
                    value: IdentifierValue::Text(format!("SERIAL-{i:04}-XYZ")),
                }],
                ..Device::default()
            })
            .collect();
        let det = Arc::new(Detector::new(&Case {
            devices,
            ..Case::default()
        }));
        let body: Vec<u8> = (0..MAX_KEPT_HITS + 10)
            .flat_map(|i| format!(" SERIAL-{i:04}-XYZ").into_bytes())
            .collect();
        let o = run(&det, &body, 0, &[100, 500]);
        assert_eq!(o.hits.len(), MAX_KEPT_HITS);
        assert_eq!(o.total_hits, (MAX_KEPT_HITS + 10) as u64);
    }
}
