//! The client's bytes of a connection in a cleartext protocol no parser reads (a
//! push or analytics SDK's own protocol), kept for the analysis to search as the
//! connection's `payload`. Bounded per part, per connection and per flow table: the
//! table's count is shared by its connections, each adding what it keeps and giving it
//! back when it hands the bytes out or is dropped.
//!
//! Such a connection may stay open for hours, so its bytes are handed out in
//! **parts** ([`PayloadParts`]), as the proxy records a tunnel's bursts: a part ends
//! when the client has sent nothing for [`QUIET`], [`LONGEST_BURST`] after its first
//! byte, when it holds a part's most bytes, at a gap or at the end. Each part is an
//! exchange at the time of its first byte, so a message sent after the user refused
//! is judged at its own time, and a live tap reports it while the connection goes on.
//!
//! A cut between two parts may fall inside an identifier. So a part that continues
//! the one before without a gap carries that part's last bytes as its [`Part::lead`],
//! and the analysis looks for the values that start in the lead and end in the part
//! (`rules`, located `payload-across-parts`): each value is reported once, by the part
//! it ends in.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::exchange::Anomaly;
use crate::timestamp::Timestamp;

/// Client silence that ends a part: a protocol's message and its client's follow-ups
/// within a round trip stay one exchange, and a finding shows within about a second
/// of the bytes that made it.
pub const QUIET: Duration = Duration::from_secs(1);
/// Longest part in time: a client that sends something every second or more often
/// (a stream, frequent heartbeats) is still reported while it goes on.
pub const LONGEST_BURST: Duration = Duration::from_secs(5);

/// The client's bytes of one part (or one proxy burst) of a connection in a protocol
/// no parser reads: at most a given limit, and none while the table's connections
/// together hold [`FlowLimits::max_unparsed_total`](super::flow::FlowLimits::max_unparsed_total).
pub struct Unparsed {
    kept: Vec<u8>,
    /// Bytes kept by all connections of the table: this one's share of it is
    /// `kept.len()`, given back when they are handed out or dropped.
    held: Arc<AtomicUsize>,
    /// Client bytes seen but not kept.
    not_kept: u64,
    /// Why the last bytes not kept were not.
    why: NotKept,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum NotKept {
    Nothing,
    Limit,
    TableFull,
}

impl Unparsed {
    pub fn new(held: Arc<AtomicUsize>) -> Self {
        Unparsed {
            kept: Vec::new(),
            held,
            not_kept: 0,
            why: NotKept::Nothing,
        }
    }

    /// The next client bytes: kept while there is room for this connection and for
    /// the table.
    pub fn push(&mut self, bytes: &[u8], limit: usize, table_limit: usize) {
        let room = limit.saturating_sub(self.kept.len());
        let want = bytes.len().min(room);
        let held = self.held.load(Ordering::Relaxed);
        let take = want.min(table_limit.saturating_sub(held));
        if take < bytes.len() {
            self.why = if take < want {
                NotKept::TableFull
            } else {
                NotKept::Limit
            };
        }
        self.held.fetch_add(take, Ordering::Relaxed);
        self.kept.extend_from_slice(&bytes[..take]);
        self.not_kept = self.not_kept.saturating_add((bytes.len() - take) as u64);
    }

    /// Whether every byte offered was kept (so the kept bytes are contiguous).
    pub fn all_kept(&self) -> bool {
        self.not_kept == 0
    }

    /// The kept bytes, handed out (their count leaves the table's).
    pub fn take(&mut self) -> Vec<u8> {
        self.held.fetch_sub(self.kept.len(), Ordering::Relaxed);
        std::mem::take(&mut self.kept)
    }

    /// Why bytes were not kept, when some were not.
    pub fn not_kept(&self) -> Option<Anomaly> {
        let why = match self.why {
            NotKept::Nothing => return None,
            NotKept::Limit => "past the limit",
            NotKept::TableFull => "the table's connections held as many as allowed",
        };
        Some(Anomaly::new(
            "payload-not-searched",
            format!(
                "{} of the client's bytes in an unknown protocol not searched ({why}); the first {} were",
                self.not_kept,
                self.kept.len()
            ),
        ))
    }
}

impl Drop for Unparsed {
    fn drop(&mut self) {
        self.held.fetch_sub(self.kept.len(), Ordering::Relaxed);
    }
}

/// The last bytes of a connection's parts handed out (at most `overlap`, counted in
/// the table's total), which the next part carries as its [`Part::lead`] when it
/// continues them. Shared by the tap's parts and the proxy's bursts.
pub struct Tail {
    kept: Unparsed,
    overlap: usize,
}

impl Tail {
    pub fn new(held: Arc<AtomicUsize>, overlap: usize) -> Self {
        Tail {
            kept: Unparsed::new(held),
            overlap,
        }
    }

    /// The lead of a part whose bytes are `bytes`: the tail kept so far when the
    /// part continues it (`contiguous`: no byte between them, or inside the part,
    /// left out), else nothing. The tail becomes the last `overlap` bytes of the lead
    /// followed by `bytes` (a value may span several short parts), or nothing when
    /// the part is not contiguous or the table (`table`) has no room for all of it.
    pub fn next_lead(&mut self, bytes: &[u8], contiguous: bool, table: usize) -> Vec<u8> {
        let lead = self.kept.take();
        if !contiguous || self.overlap == 0 {
            self.clear();
            return Vec::new();
        }
        let from_bytes = bytes.len().min(self.overlap);
        let from_lead = (self.overlap - from_bytes).min(lead.len());
        self.kept
            .push(&lead[lead.len() - from_lead..], self.overlap, table);
        self.kept
            .push(&bytes[bytes.len() - from_bytes..], self.overlap, table);
        if !self.kept.all_kept() {
            // No lead rather than a wrong one.
            self.clear();
        }
        lead
    }

    /// Forgets the tail (a gap follows, or no part will): its bytes are given back.
    pub fn clear(&mut self) {
        self.kept = Unparsed::new(Arc::clone(&self.kept.held));
    }
}

/// Bounds of [`PayloadParts`].
#[derive(Debug, Clone, Copy)]
pub struct PartLimits {
    /// Most client bytes of one part ([`FlowLimits::max_unparsed_bytes`](super::flow::FlowLimits::max_unparsed_bytes)).
    pub part: usize,
    /// Client bytes searched per connection over all its parts ([`FlowLimits::max_unparsed_depth`](super::flow::FlowLimits::max_unparsed_depth)).
    pub depth: usize,
    /// Parts per connection ([`FlowLimits::max_unparsed_parts`](super::flow::FlowLimits::max_unparsed_parts)): a client
    /// sending a few bytes now and then (a keepalive every 25 s) is not an exchange
    /// each time for ever.
    pub parts: u64,
    /// Bytes kept by all connections of the table at once ([`FlowLimits::max_unparsed_total`](super::flow::FlowLimits::max_unparsed_total)).
    pub table: usize,
    /// Most bytes of a [`Part::lead`] ([`FlowLimits::unparsed_overlap`](super::flow::FlowLimits::unparsed_overlap));
    /// 0 for datagrams, which a sender does not cut a value across.
    pub overlap: usize,
}

/// One part of a connection's client bytes, to become a metadata-only exchange.
#[derive(Debug, PartialEq, Eq)]
pub struct Part {
    /// Place among the connection's parts, from 0.
    pub index: u64,
    /// Capture time and frame of its first byte (of a part without bytes, of the
    /// first byte it reports as not searched), and the frame of its last.
    pub at: Timestamp,
    pub first_frame: u64,
    pub last_frame: u64,
    pub bytes: Vec<u8>,
    /// When `bytes` continue the part before without a gap: the last bytes before
    /// them (at most [`PartLimits::overlap`], from that part and, when it was
    /// shorter, the ones before it), where a value ending in `bytes` may begin.
    pub lead: Vec<u8>,
    /// Why client bytes were not searched: some of this part's, for want of the
    /// table's room; those lost in a gap after it (or before it, when no part came
    /// between); of a last part without bytes, those past the connection's depth.
    pub anomalies: Vec<Anomaly>,
}

/// The part being filled.
#[derive(Debug, Clone, Copy)]
struct Span {
    first: (Timestamp, u64),
    last: (Timestamp, u64),
    /// Client bytes given to this part (kept, or not for want of the table's room).
    offered: usize,
}

/// The client's bytes of one connection cut into [`Part`]s on the capture's clock
/// (see the module docs). Bytes past the connection's depth (or its most parts) are
/// counted and reported by one last part without bytes when it ends; bytes lost in a
/// gap, by the part before them (or, when there is none, the one after). Searching
/// resumes after a gap.
pub struct PayloadParts {
    limits: PartLimits,
    current: Unparsed,
    /// The last bytes of the parts handed out, for the next part's lead.
    tail: Tail,
    held: Arc<AtomicUsize>,
    span: Option<Span>,
    /// Client bytes given to parts so far (the depth used).
    offered: usize,
    /// Parts handed out.
    handed_out: u64,
    /// Client bytes lost in gaps since the last part handed out, and the time and
    /// frame of the first gap among them.
    lost: u64,
    lost_at: Option<(Timestamp, u64)>,
    /// Client bytes past the depth, and time and frame of the first of them.
    past_depth: u64,
    past_depth_from: Option<(Timestamp, u64)>,
}

impl PayloadParts {
    /// `held`: the table's count of kept bytes.
    pub fn new(held: Arc<AtomicUsize>, limits: PartLimits) -> Self {
        PayloadParts {
            limits,
            current: Unparsed::new(Arc::clone(&held)),
            tail: Tail::new(Arc::clone(&held), limits.overlap),
            held,
            span: None,
            offered: 0,
            handed_out: 0,
            lost: 0,
            lost_at: None,
            past_depth: 0,
            past_depth_from: None,
        }
    }

    /// Parts of a flow whose first `offered` bytes already went out as part 0 (a UDP
    /// flow's first datagram, reported with the flow at once).
    pub fn after_first(held: Arc<AtomicUsize>, offered: usize, limits: PartLimits) -> Self {
        PayloadParts {
            offered,
            handed_out: 1,
            ..PayloadParts::new(held, limits)
        }
    }

    /// The client's next bytes, carried by the segment (or datagram) of `at` (time,
    /// frame). The current part goes out first if it is due by then, and whenever it
    /// fills.
    pub fn push(&mut self, bytes: &[u8], at: (Timestamp, u64), out: &mut Vec<Part>) {
        if bytes.is_empty() {
            return;
        }
        self.hand_out_if_due(at.0, out);
        let limits = self.limits;
        let mut rest = bytes;
        while !rest.is_empty() {
            // A new part past the most parts is as past the depth.
            let depth_left = if self.span.is_none() && self.handed_out >= limits.parts {
                0
            } else {
                limits.depth.saturating_sub(self.offered)
            };
            if depth_left == 0 {
                self.past_depth = self.past_depth.saturating_add(rest.len() as u64);
                self.past_depth_from.get_or_insert(at);
                // No part with bytes follows.
                self.tail.clear();
                return;
            }
            let span = self.span.get_or_insert(Span {
                first: at,
                last: at,
                offered: 0,
            });
            let room = limits.part.saturating_sub(span.offered).min(depth_left);
            let (chunk, after) = rest.split_at(rest.len().min(room.max(1)));
            span.offered += chunk.len();
            span.last = at;
            let full = span.offered >= limits.part;
            self.offered += chunk.len();
            self.current.push(chunk, limits.part, limits.table);
            if full {
                self.hand_out(out);
            }
            rest = after;
        }
    }

    /// `len` client bytes lost, carried by the segment of `at`: the part before them
    /// goes out saying so (else the next part says it).
    pub fn gap(&mut self, len: u64, at: (Timestamp, u64), out: &mut Vec<Part>) {
        if len == 0 {
            return;
        }
        self.lost = self.lost.saturating_add(len);
        self.lost_at.get_or_insert(at);
        self.hand_out(out);
        // The next part does not continue this one.
        self.tail.clear();
    }

    /// Whether the current part is due at capture time `now`: the client has sent
    /// nothing for [`QUIET`], or it began [`LONGEST_BURST`] ago. (Capture time may
    /// step back; then nothing is due.)
    pub fn due(&self, now: Timestamp) -> bool {
        let Some(span) = &self.span else {
            return false;
        };
        let since =
            |t: Timestamp| u128::try_from(now.micros().saturating_sub(t.micros())).unwrap_or(0);
        since(span.last.0) >= QUIET.as_micros() || since(span.first.0) >= LONGEST_BURST.as_micros()
    }

    /// Hands the current part out if it is [`due`](Self::due) at `now`.
    pub fn hand_out_if_due(&mut self, now: Timestamp, out: &mut Vec<Part>) {
        if self.due(now) {
            self.hand_out(out);
        }
    }

    /// The connection ended at frame `end_frame`: its current part goes out, then, if
    /// client bytes went unsearched after it (past the depth, or lost in a gap at the
    /// end), one part without bytes saying so, at the time of the first of them. The
    /// last part runs to `end_frame`.
    pub fn finish(&mut self, end_frame: u64, out: &mut Vec<Part>) {
        let before = out.len();
        self.finish_parts(out);
        if out.len() > before {
            if let Some(last) = out.last_mut() {
                last.last_frame = last.last_frame.max(end_frame);
            }
        }
    }

    fn finish_parts(&mut self, out: &mut Vec<Part>) {
        self.hand_out(out);
        self.tail.clear();
        let from = match (self.lost_at, self.past_depth_from.take()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mut anomalies: Vec<Anomaly> = self.lost_anomaly().into_iter().collect();
        if self.past_depth > 0 {
            anomalies.push(Anomaly::new(
                "payload-not-searched",
                format!(
                    "{} of the client's bytes in an unknown protocol not searched (past the first {} searched, in the connection's {} exchanges before this one: the most per connection)",
                    std::mem::take(&mut self.past_depth),
                    self.offered,
                    self.handed_out
                ),
            ));
        }
        if let Some((at, frame)) = from {
            let part = Part {
                index: 0,
                at,
                first_frame: frame,
                last_frame: frame,
                bytes: Vec::new(),
                lead: Vec::new(),
                anomalies,
            };
            self.push_part(part, out);
        }
    }

    /// What was lost in gaps since the last part, said once.
    fn lost_anomaly(&mut self) -> Option<Anomaly> {
        self.lost_at = None;
        if self.lost == 0 {
            return None;
        }
        let lost = std::mem::take(&mut self.lost);
        Some(Anomaly::new(
            "payload-not-searched",
            format!("{lost} of the client's bytes in an unknown protocol lost in a gap"),
        ))
    }

    fn hand_out(&mut self, out: &mut Vec<Part>) {
        let Some(span) = self.span.take() else {
            return;
        };
        let mut current =
            std::mem::replace(&mut self.current, Unparsed::new(Arc::clone(&self.held)));
        let contiguous = current.all_kept();
        let mut anomalies: Vec<Anomaly> = current.not_kept().into_iter().collect();
        anomalies.extend(self.lost_anomaly());
        let bytes = current.take();
        let lead = self.tail.next_lead(&bytes, contiguous, self.limits.table);
        let part = Part {
            index: 0,
            at: span.first.0,
            first_frame: span.first.1,
            last_frame: span.last.1,
            bytes,
            lead,
            anomalies,
        };
        self.push_part(part, out);
    }

    /// Hands `part` out as the next (its index set here).
    fn push_part(&mut self, part: Part, out: &mut Vec<Part>) {
        out.push(Part {
            index: self.handed_out,
            ..part
        });
        self.handed_out += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_up_to_its_limit_and_the_tables() {
        let held = Arc::new(AtomicUsize::new(0));
        let mut a = Unparsed::new(Arc::clone(&held));
        a.push(b"abcdef", 4, 100);
        assert_eq!(a.kept, b"abcd");
        assert!(a
            .not_kept()
            .is_some_and(|x| x.detail.contains("past the limit")));
        let mut b = Unparsed::new(Arc::clone(&held));
        b.push(b"0123456789", 100, 10);
        assert_eq!(b.kept, b"012345", "the table had room for 6 more");
        assert!(b.not_kept().is_some_and(|x| x.detail.contains("table")));
        assert_eq!(held.load(Ordering::Relaxed), 10);
        assert_eq!(a.take(), b"abcd");
        assert_eq!(held.load(Ordering::Relaxed), 6);
        drop(b);
        assert_eq!(
            held.load(Ordering::Relaxed),
            0,
            "a dropped connection gives back"
        );
    }

    fn limits() -> PartLimits {
        PartLimits {
            part: 4,
            depth: 10,
            parts: 100,
            table: 100,
            overlap: 0,
        }
    }

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_micros(ms * 1_000)
    }

    /// (index, time in ms, first frame, last frame, bytes, anomaly kinds).
    fn rows(parts: &[Part]) -> Vec<(u64, i64, u64, u64, String, Vec<String>)> {
        parts
            .iter()
            .map(|p| {
                (
                    p.index,
                    p.at.micros() / 1_000,
                    p.first_frame,
                    p.last_frame,
                    String::from_utf8_lossy(&p.bytes).into_owned(),
                    p.anomalies.iter().map(|a| a.kind.clone()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn parts_end_when_full_quiet_long_or_at_the_end() {
        let held = Arc::new(AtomicUsize::new(0));
        let mut p = PayloadParts::new(Arc::clone(&held), limits());
        let mut out = Vec::new();
        p.push(b"abcdef", (t(0), 1), &mut out);
        assert_eq!(rows(&out), [(0, 0, 1, 1, "abcd".into(), vec![])], "full");
        assert_eq!(held.load(Ordering::Relaxed), 2, "ef is held");
        // Quiet for a second: due, and handed out before later bytes join it.
        assert!(!p.due(t(999)));
        assert!(p.due(t(1_000)));
        p.push(b"g", (t(1_500), 2), &mut out);
        assert_eq!(rows(&out[1..]), [(1, 0, 1, 1, "ef".into(), vec![])]);
        p.finish(0, &mut out);
        assert_eq!(held.load(Ordering::Relaxed), 0, "all handed out");
        let big = PartLimits {
            part: 100,
            depth: 1000,
            parts: 100,
            table: 1000,
            overlap: 0,
        };
        let mut p = PayloadParts::new(Arc::clone(&held), big);
        let mut out = Vec::new();
        p.push(b"g", (t(1_500), 2), &mut out);
        // Busy for five seconds: due even though never quiet.
        for i in 1..=10 {
            p.push(b"h", (t(1_500 + i * 500), 2 + i as u64), &mut out);
        }
        assert_eq!(out.len(), 1, "at 6.5 s the part begun at 1.5 s went out");
        assert_eq!(rows(&out), [(0, 1_500, 2, 11, "ghhhhhhhhh".into(), vec![])]);
        assert!(
            !p.due(t(6_000)),
            "capture time stepping back is not a pause"
        );
        p.finish(0, &mut out);
        assert_eq!(rows(&out[1..]), [(1, 6_500, 12, 12, "h".into(), vec![])]);
        assert_eq!(held.load(Ordering::Relaxed), 0, "all handed out");
        p.finish(0, &mut out);
        assert_eq!(out.len(), 2, "nothing more");
    }

    #[test]
    fn the_depth_bounds_what_is_searched_and_the_end_says_the_rest() {
        let mut p = PayloadParts::new(Arc::new(AtomicUsize::new(0)), limits());
        let mut out = Vec::new();
        p.push(b"0123456789", (t(0), 1), &mut out);
        p.push(b"abc", (t(10), 2), &mut out);
        p.push(b"de", (t(20), 3), &mut out);
        p.finish(0, &mut out);
        let rows = rows(&out);
        assert_eq!(
            rows.iter().map(|r| r.4.as_str()).collect::<Vec<_>>(),
            ["0123", "4567", "89", ""]
        );
        assert_eq!(
            (rows[3].1, rows[3].2, &rows[3].5[..]),
            (10, 2, &["payload-not-searched".to_string()][..]),
            "at the first byte not searched"
        );
        assert!(out[3].anomalies[0]
            .detail
            .starts_with("5 of the client's bytes"));
    }

    #[test]
    fn a_gap_is_said_by_the_part_before_it_else_by_the_next() {
        let mut p = PayloadParts::new(Arc::new(AtomicUsize::new(0)), limits());
        let mut out = Vec::new();
        p.push(b"ab", (t(0), 1), &mut out);
        p.gap(7, (t(5), 2), &mut out);
        assert_eq!(
            rows(&out),
            [(0, 0, 1, 1, "ab".into(), vec!["payload-not-searched".into()])]
        );
        assert!(out[0].anomalies[0]
            .detail
            .starts_with("7 of the client's bytes"));
        // A gap with no part before it (just handed out): the next part says it.
        p.gap(3, (t(6), 3), &mut out);
        p.push(b"cd", (t(7), 4), &mut out);
        assert_eq!(out.len(), 1, "no part before the gap, and cd is not due");
        p.finish(0, &mut out);
        assert_eq!(
            rows(&out[1..]),
            [(1, 7, 4, 4, "cd".into(), vec!["payload-not-searched".into()])]
        );
        // A gap at the very end: one last part without bytes says it.
        p.gap(2, (t(9), 5), &mut out);
        p.finish(0, &mut out);
        assert_eq!(
            rows(&out[2..]),
            [(
                2,
                9,
                5,
                5,
                String::new(),
                vec!["payload-not-searched".into()]
            )]
        );
    }

    #[test]
    fn a_full_table_keeps_nothing_more_but_parts_still_go_out() {
        let held = Arc::new(AtomicUsize::new(0));
        let small = PartLimits {
            part: 8,
            depth: 100,
            parts: 100,
            table: 5,
            overlap: 0,
        };
        let mut a = PayloadParts::new(Arc::clone(&held), small);
        let mut b = PayloadParts::new(Arc::clone(&held), small);
        let mut out = Vec::new();
        a.push(b"aaaa", (t(0), 1), &mut out);
        b.push(b"bbbb", (t(0), 2), &mut out);
        b.finish(0, &mut out);
        assert_eq!(
            rows(&out),
            [(0, 0, 2, 2, "b".into(), vec!["payload-not-searched".into()])]
        );
        a.finish(0, &mut out);
        assert_eq!(held.load(Ordering::Relaxed), 0);
        // UDP: part 0 went out with the flow; the next is part 1, its depth used.
        let mut u = PayloadParts::after_first(Arc::clone(&held), 99, small);
        u.push(b"xyz", (t(0), 3), &mut out);
        u.finish(0, &mut out);
        let last = out.len() - 2;
        assert_eq!(
            rows(&out[last..]),
            [
                (1, 0, 3, 3, "x".into(), vec![]),
                (
                    2,
                    0,
                    3,
                    3,
                    String::new(),
                    vec!["payload-not-searched".into()]
                ),
            ]
        );
    }

    #[test]
    fn a_client_that_sends_a_little_now_and_then_gets_at_most_the_parts_allowed() {
        let few = PartLimits {
            parts: 3,
            ..limits()
        };
        let mut p = PayloadParts::new(Arc::new(AtomicUsize::new(0)), few);
        let mut out = Vec::new();
        // A keepalive every two seconds: a part each, up to three.
        for i in 0..5 {
            p.push(b"ka", (t(i * 2_000), i as u64 + 1), &mut out);
        }
        p.finish(0, &mut out);
        let rows = rows(&out);
        assert_eq!(
            rows.iter().map(|r| (r.1, r.4.as_str())).collect::<Vec<_>>(),
            [(0, "ka"), (2_000, "ka"), (4_000, "ka"), (6_000, "")]
        );
        assert_eq!(rows[3].5, ["payload-not-searched"]);
        assert!(
            out[3].anomalies[0]
                .detail
                .starts_with("4 of the client's bytes"),
            "{}",
            out[3].anomalies[0].detail
        );
    }

    fn leads(parts: &[Part]) -> Vec<String> {
        parts
            .iter()
            .map(|p| String::from_utf8_lossy(&p.lead).into_owned())
            .collect()
    }

    #[test]
    fn a_part_that_continues_the_one_before_carries_its_end() {
        let held = Arc::new(AtomicUsize::new(0));
        let with_lead = PartLimits {
            part: 8,
            depth: 100,
            parts: 100,
            table: 100,
            overlap: 5,
        };
        let mut p = PayloadParts::new(Arc::clone(&held), with_lead);
        let mut out = Vec::new();
        // Full at 8 bytes; then a quiet second; then two short parts.
        p.push(b"imei=35412", (t(0), 1), &mut out);
        p.push(b"3456", (t(1_000), 2), &mut out);
        p.push(b"7", (t(2_000), 3), &mut out);
        p.push(b"89", (t(3_000), 4), &mut out);
        assert_eq!(
            leads(&out),
            ["", "i=354", "35412", "23456"],
            "parts: imei=354 (full) | 12 | 3456 | 7"
        );
        assert_eq!(
            held.load(Ordering::Relaxed),
            5 + 2,
            "a tail and the current part"
        );
        // A gap: the part after it does not continue the one before.
        p.gap(3, (t(4_000), 5), &mut out);
        p.push(b"xy", (t(4_100), 6), &mut out);
        p.finish(0, &mut out);
        let bytes: Vec<&[u8]> = out.iter().map(|p| &p.bytes[..]).collect();
        assert_eq!(
            bytes,
            [&b"imei=354"[..], b"12", b"3456", b"7", b"89", b"xy"]
        );
        assert_eq!(
            leads(&out)[4],
            "34567",
            "a lead reaches back over short parts"
        );
        assert_eq!(leads(&out)[5], "", "none after a gap");
        assert_eq!(
            held.load(Ordering::Relaxed),
            0,
            "the tail given back at the end"
        );
    }

    #[test]
    fn no_lead_where_bytes_were_left_out_or_for_datagrams() {
        let held = Arc::new(AtomicUsize::new(0));
        let tight = PartLimits {
            part: 8,
            depth: 100,
            parts: 100,
            table: 6,
            overlap: 4,
        };
        let mut p = PayloadParts::new(Arc::clone(&held), tight);
        let mut out = Vec::new();
        // 8 bytes offered, 6 kept: the part is not contiguous, nor a lead for the next.
        p.push(b"abcdefgh", (t(0), 1), &mut out);
        p.push(b"ij", (t(2_000), 2), &mut out);
        p.push(b"kl", (t(4_000), 3), &mut out);
        p.finish(0, &mut out);
        assert_eq!(leads(&out), ["", "", "ij"]);
        // UDP parts carry none (the flow table gives them no overlap).
        let mut u = PayloadParts::after_first(
            Arc::clone(&held),
            0,
            PartLimits {
                overlap: 0,
                ..tight
            },
        );
        let mut out = Vec::new();
        u.push(b"ab", (t(0), 1), &mut out);
        u.push(b"cd", (t(2_000), 2), &mut out);
        u.finish(0, &mut out);
        assert_eq!(leads(&out), ["", ""]);
        assert_eq!(held.load(Ordering::Relaxed), 0);
    }
}
