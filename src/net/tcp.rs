//! TCP stream reassembly: one direction of one connection, back in sequence order.
//!
//! The flow table (`net::flow`) owns two [`Reassembler`]s per connection, feeds each
//! the segments of its direction ([`Reassembler::segment`], after
//! [`Reassembler::syn`] when the handshake was seen) and hands what comes out — a
//! sequence of [`Delivery::Data`] and [`Delivery::Gap`] — to the application-layer
//! parser. The flow table also owns what spans connections: lookup, idle timeouts,
//! RST (it calls [`Reassembler::flush`]) and the global memory budget (it reads
//! [`Reassembler::buffered_bytes`] and calls [`Reassembler::shrink_to`]).
//!
//! # Positions
//! Sequence numbers are 32 bits and wrap; internally every byte has a 64-bit
//! absolute offset from the stream start (offset 0 is `ISN + 1` after a SYN, or, on
//! mid-stream pickup, the sequence number of the first segment with payload or FIN). A segment's place is found by the
//! wrapping difference between its sequence number and that of the next expected
//! byte, read as a signed 32-bit number `rel`:
//! - `rel < 0`: the segment starts before the next expected byte. Its bytes before
//!   that point are *old*: already delivered or skipped, counted as retransmitted (or
//!   as before the start, on mid-stream pickup) and otherwise ignored; the rest is new.
//!   So, after a mid-stream pickup, a later segment that is earlier in sequence than
//!   the first one seen is **not** delivered: there is no going back before the start.
//! - `0 <= rel <= max_window`: in the window. In order, it is delivered straight from
//!   the caller's buffer (zero-copy, the hot path); ahead of a hole, it is buffered.
//! - `rel > max_window`: a *sequence jump* (capture loss of more than the window,
//!   or a bogus segment). The segment is held as a jump candidate (one at most,
//!   nothing allocated for the distance). When another far segment starts within
//!   `max_window` of the candidate (before or after it), the jump is confirmed:
//!   everything buffered is delivered with its holes as gaps, the distance to the
//!   earlier of the two becomes one [`Delivery::Gap`], and the stream goes on from
//!   there. A candidate is replaced by a far segment not near it, and an unconfirmed
//!   one is dropped at flush (both counted in `jump_candidates_dropped`): one stray
//!   segment cannot derail a stream.
//!
//! A segment 2 GiB or more ahead is indistinguishable from one behind; it is old.
//!
//! # Overlap policy: first arrival wins
//! A byte offset takes the value of the first segment that carried it and was
//! accepted (delivered or buffered); later segments never overwrite it, whatever
//! their start or length. This is what Wireshark does with retransmitted data (the
//! first copy is kept), and it agrees with Suricata's default `bsd` policy except in
//! one case: under `bsd` a new segment that *starts before* a buffered one
//! overwrites the overlap. Receivers differ here, which is what overlap evasion
//! exploits; we do not guess the receiver's OS but count the disagreement.
//! Overlapping bytes are counted (`overlap_bytes`); where they differ from still
//! buffered data, `overlap_mismatches` counts the segment once (a sign of evasion or
//! corruption). Bytes already delivered are not kept, so a retransmission of them is
//! counted (`retransmitted_bytes`) but not compared.
//!
//! # FIN
//! The first FIN fixes the end of the stream (its sequence number plus its payload);
//! bytes beyond it are dropped (`after_fin_bytes`), a later FIN at another place is
//! ignored (`fin_conflicts`). [`Reassembler::is_finished`] is true once every byte up
//! to the FIN was delivered or skipped. RST is the owner's business: it calls
//! [`Reassembler::flush`].
//!
//! # Limits
//! Out-of-order data held per direction is bounded by [`TcpLimits`]. When a segment
//! would make it exceed `max_buffered_bytes` or `max_segments`, the *oldest* hole
//! (the one at the next expected byte) is given up: a [`Delivery::Gap`] for it, then
//! the buffered data behind it up to the next hole, until the buffer is within its
//! limits again (`dropped_at_limit` counts the holes given up). The stream goes on and
//! memory stays bounded; the consumer resyncs after a gap.

use std::collections::BTreeMap;

use crate::timestamp::Timestamp;

/// Default [`TcpLimits::max_buffered_bytes`]: 1 MiB of out-of-order data per direction.
pub const DEFAULT_MAX_BUFFERED_BYTES: usize = 1 << 20;
/// Default [`TcpLimits::max_segments`]: out-of-order pieces held per direction.
pub const DEFAULT_MAX_SEGMENTS: usize = 4096;
/// Default [`TcpLimits::max_window`]: 64 MiB, well above the receive windows seen in
/// practice (a few MiB) yet far below the 2 GiB where sequence numbers become
/// ambiguous.
pub const DEFAULT_MAX_WINDOW: u32 = 64 << 20;

/// Bounds on what one direction of one connection may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpLimits {
    /// Out-of-order bytes held (including a jump candidate); default 1 MiB.
    pub max_buffered_bytes: usize,
    /// Out-of-order pieces held; default 4096.
    pub max_segments: usize,
    /// How far beyond the next expected byte a segment may start before it counts as
    /// a sequence jump; default 64 MiB.
    pub max_window: u32,
}

impl Default for TcpLimits {
    fn default() -> Self {
        TcpLimits {
            max_buffered_bytes: DEFAULT_MAX_BUFFERED_BYTES,
            max_segments: DEFAULT_MAX_SEGMENTS,
            max_window: DEFAULT_MAX_WINDOW,
        }
    }
}

/// Where a segment came from: capture time and frame number (evidence reference).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SegmentMeta {
    /// Capture timestamp of the frame.
    pub ts: Timestamp,
    /// Frame number in the capture.
    pub frame: u64,
}

/// What the reassembler hands on, in stream order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery<'a> {
    /// In-order bytes; `meta` is the segment that carried the first of them.
    Data { bytes: &'a [u8], meta: SegmentMeta },
    /// `len` bytes that will never come (lost before capture, dropped at a limit, or
    /// skipped at flush); the consumer must resync. `meta` is the segment that came
    /// after the hole (or the FIN's, for a hole before the FIN).
    Gap { len: u64, meta: SegmentMeta },
}

/// Counters of one direction; the owner turns increases into anomalies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TcpStreamStats {
    /// Calls to [`Reassembler::segment`].
    pub segments: u64,
    /// Bytes handed on as [`Delivery::Data`].
    pub delivered_bytes: u64,
    /// Bytes of segments that were already delivered or skipped.
    pub retransmitted_bytes: u64,
    /// Bytes before the start of a stream picked up mid-stream (never delivered).
    pub before_start_bytes: u64,
    /// Bytes beyond the FIN (dropped).
    pub after_fin_bytes: u64,
    /// Segments that arrived ahead of a hole and were buffered.
    pub out_of_order_segments: u64,
    /// Bytes of new segments that overlapped buffered data (first arrival kept).
    pub overlap_bytes: u64,
    /// Segments whose overlapping bytes differed from the buffered ones.
    pub overlap_mismatches: u64,
    /// [`Delivery::Gap`]s handed on.
    pub gaps: u64,
    /// Bytes covered by those gaps.
    pub gap_bytes: u64,
    /// Holes given up because `max_buffered_bytes` or `max_segments` was reached.
    pub dropped_at_limit: u64,
    /// Holes given up by [`Reassembler::shrink_to`] (global memory pressure).
    pub dropped_for_budget: u64,
    /// Confirmed sequence jumps (see the module doc).
    pub jumps: u64,
    /// Jump candidates never confirmed (replaced, dropped at a limit or at flush).
    pub jump_candidates_dropped: u64,
    /// FINs at another place than the first one (ignored).
    pub fin_conflicts: u64,
}

/// Out-of-order bytes held until the hole before them fills.
#[derive(Debug)]
struct Piece {
    data: Vec<u8>,
    meta: SegmentMeta,
}

/// A segment beyond the window, waiting for a successor to confirm the jump.
#[derive(Debug)]
struct Candidate {
    seq: u32,
    data: Vec<u8>,
    fin: bool,
    meta: SegmentMeta,
}

/// Reassembles one direction of one TCP connection (see the module doc).
#[derive(Debug)]
pub struct Reassembler {
    limits: TcpLimits,
    /// Sequence number of absolute offset 0; `None` until a SYN or the first payload.
    base: Option<u32>,
    /// Absolute offset of the next byte to deliver.
    next: u64,
    /// Buffered pieces by absolute offset: none overlap, all start after `next`.
    pieces: BTreeMap<u64, Piece>,
    /// Bytes in `pieces` plus the candidate's.
    buffered: usize,
    /// Absolute end offset of the stream (FIN) and the FIN segment's meta.
    fin: Option<(u64, SegmentMeta)>,
    candidate: Option<Candidate>,
    /// Scratch list of holes an incoming segment fills (kept to avoid reallocating).
    holes: Vec<(u64, u64)>,
    stats: TcpStreamStats,
}

/// `data[from - base .. to - base]`, empty if out of range (which the callers'
/// arithmetic rules out; checked in debug builds and by the fuzzer).
fn sub(data: &[u8], base: u64, from: u64, to: u64) -> &[u8] {
    let range = usize::try_from(from - base)
        .ok()
        .zip(usize::try_from(to - base).ok());
    let got = range.and_then(|(a, b)| data.get(a..b));
    debug_assert!(got.is_some(), "range {from}..{to} outside piece at {base}");
    got.unwrap_or(&[])
}

/// Length of a byte slice as a stream distance (lossless: usize is at most 64 bits).
fn len64(data: &[u8]) -> u64 {
    data.len() as u64
}

impl Reassembler {
    /// An empty stream; its start is fixed by [`syn`](Self::syn) or the first payload.
    pub fn new(limits: TcpLimits) -> Self {
        Reassembler {
            limits,
            base: None,
            next: 0,
            pieces: BTreeMap::new(),
            buffered: 0,
            fin: None,
            candidate: None,
            holes: Vec::new(),
            stats: TcpStreamStats::default(),
        }
    }

    /// A SYN (or SYN-ACK) for this direction: the stream starts at `seq + 1`.
    ///
    /// Ignored once the start is known (a retransmitted SYN, or a SYN after a
    /// mid-stream pickup). Data carried by the SYN itself (TCP Fast Open) is passed
    /// by the owner as a segment at `seq + 1`.
    pub fn syn(&mut self, seq: u32) {
        if self.base.is_none() {
            self.base = Some(seq.wrapping_add(1));
        }
    }

    /// Whether a SYN carrying `seq` opens this very stream (a retransmitted or
    /// reordered copy of its SYN), rather than a new connection on the same ports.
    pub fn opened_by(&self, seq: u32) -> bool {
        self.base == Some(seq.wrapping_add(1))
    }

    /// One segment's payload (may be empty) and FIN flag. Delivers every byte that
    /// became contiguous.
    pub fn segment(
        &mut self,
        seq: u32,
        payload: &[u8],
        fin: bool,
        meta: SegmentMeta,
        out: &mut dyn FnMut(Delivery<'_>),
    ) {
        self.stats.segments += 1;
        self.segment_inner(seq, payload, fin, meta, out);
    }

    fn segment_inner(
        &mut self,
        seq: u32,
        payload: &[u8],
        fin: bool,
        meta: SegmentMeta,
        out: &mut dyn FnMut(Delivery<'_>),
    ) {
        if payload.is_empty() && !fin {
            return; // a pure ACK: nothing for the stream
        }
        let base = *self.base.get_or_insert(seq);
        // Truncating `next` to 32 bits is sequence arithmetic: it wraps like seq does.
        let rel = seq.wrapping_sub(base.wrapping_add(self.next as u32)) as i32;
        if rel == 0 && self.pieces.is_empty() && self.fin.is_none() && self.candidate.is_none() {
            // The hot path: in order, nothing held, so no copy at all.
            if !payload.is_empty() {
                self.deliver_data(payload, meta, out);
            }
            if fin {
                self.record_fin(self.next, meta);
            }
            return;
        }
        if i64::from(rel) > i64::from(self.limits.max_window) {
            self.beyond_window(seq, payload, fin, meta, out);
        } else {
            self.in_window(rel, payload, fin, meta, out);
        }
    }

    /// End of the connection (FIN already seen, RST, idle timeout, end of capture):
    /// delivers what is buffered, with [`Delivery::Gap`]s for the holes (and for a
    /// hole before a known FIN). An unconfirmed jump candidate is dropped.
    pub fn flush(&mut self, out: &mut dyn FnMut(Delivery<'_>)) {
        self.deliver_all_buffered(out);
        if let Some(c) = self.candidate.take() {
            self.buffered -= c.data.len();
            self.stats.jump_candidates_dropped += 1;
        }
        if let Some((end, meta)) = self.fin {
            if end > self.next {
                self.deliver_gap(end - self.next, meta, out);
            }
        }
    }

    /// Out-of-order bytes held now (for the global memory budget).
    pub fn buffered_bytes(&self) -> usize {
        self.buffered
    }

    /// Out-of-order pieces held now (at most `max_segments` between calls).
    pub fn buffered_segments(&self) -> usize {
        self.pieces.len()
    }

    /// Gives up the oldest holes until at most `target` bytes are held (global memory
    /// pressure): each hole becomes a [`Delivery::Gap`], followed by the buffered data
    /// behind it, delivered now. A jump candidate goes last.
    pub fn shrink_to(&mut self, target: usize, out: &mut dyn FnMut(Delivery<'_>)) {
        while self.buffered > target {
            if self.give_up_oldest_hole(out) {
                self.stats.dropped_for_budget += 1;
            } else if self.drop_candidate() {
                continue;
            } else {
                break;
            }
        }
    }

    /// FIN received and every byte up to it delivered (or skipped as a gap).
    pub fn is_finished(&self) -> bool {
        self.fin.is_some_and(|(end, _)| self.next >= end)
    }

    /// Counters of this direction.
    pub fn stats(&self) -> &TcpStreamStats {
        &self.stats
    }

    /// Absolute offset of the next byte to deliver (= bytes delivered plus gaps).
    pub fn next_offset(&self) -> u64 {
        self.next
    }

    /// A segment with `-2^31 <= rel <= max_window`.
    fn in_window(
        &mut self,
        rel: i32,
        payload: &[u8],
        fin: bool,
        meta: SegmentMeta,
        out: &mut dyn FnMut(Delivery<'_>),
    ) {
        // i128: an offset near u64::MAX plus a negative rel and a length cannot overflow.
        let next = i128::from(self.next);
        let start = next + i128::from(rel);
        let mut end = start + i128::from(len64(payload));
        if fin {
            self.record_fin_at(end, meta);
        }
        if let Some((fin_end, _)) = self.fin {
            let fin_end = i128::from(fin_end);
            if end > fin_end {
                self.stats.after_fin_bytes += to_u64(end - start.max(fin_end));
                end = fin_end;
            }
        }
        let mut s = start;
        if s < next {
            let old_end = end.min(next);
            if old_end > s {
                let before = (old_end.min(0) - s).max(0);
                self.stats.before_start_bytes += to_u64(before);
                self.stats.retransmitted_bytes += to_u64(old_end - s - before);
            }
            s = next;
        }
        if s >= end {
            return;
        }
        // Now next <= s < end, all within u64; `fresh` is the new part of the payload.
        let skip = usize::try_from(s - start).unwrap_or(usize::MAX);
        let take = usize::try_from(end - s).unwrap_or(0);
        let fresh = payload.get(skip..skip.saturating_add(take)).unwrap_or(&[]);
        debug_assert_eq!(fresh.len(), take);
        let (s, e) = (to_u64(s), to_u64(s) + len64(fresh));
        if s == self.next {
            let upto = self.pieces.first_key_value().map_or(e, |(&k, _)| k.min(e));
            self.deliver_data(sub(fresh, s, s, upto), meta, out);
            if upto < e {
                self.insert(upto, sub(fresh, s, upto, e), meta);
            }
        } else {
            self.stats.out_of_order_segments += 1;
            self.insert(s, fresh, meta);
        }
        self.drain(out);
        self.enforce_limits(out);
    }

    /// A segment more than `max_window` ahead: hold it, or confirm a held one.
    fn beyond_window(
        &mut self,
        seq: u32,
        payload: &[u8],
        fin: bool,
        meta: SegmentMeta,
        out: &mut dyn FnMut(Delivery<'_>),
    ) {
        if self.fin.is_some() {
            // The end is known and this is far beyond it.
            self.stats.after_fin_bytes += len64(payload);
            return;
        }
        if payload.is_empty() {
            return; // a bare FIN far away confirms nothing
        }
        // A second far segment within the window of the candidate (before or after
        // it: segments around a loss may be reordered) confirms the jump.
        let window = self.limits.max_window;
        let confirmed = self
            .candidate
            .as_ref()
            .is_some_and(|c| (seq.wrapping_sub(c.seq) as i32).unsigned_abs() <= window);
        if confirmed {
            if let Some(c) = self.candidate.take() {
                self.buffered -= c.data.len();
                self.deliver_all_buffered(out);
                let cand_first = seq.wrapping_sub(c.seq) as i32 >= 0;
                let (first_seq, first_meta) = if cand_first {
                    (c.seq, c.meta)
                } else {
                    (seq, meta)
                };
                let base = self.base.unwrap_or(first_seq);
                let dist = first_seq.wrapping_sub(base.wrapping_add(self.next as u32)) as i32;
                if dist > 0 {
                    self.deliver_gap(u64::from(dist.unsigned_abs()), first_meta, out);
                }
                self.stats.jumps += 1;
                // The earlier one is now at `next` and the other within the window of
                // it: neither is a jump again, so the recursion stops here.
                if cand_first {
                    self.segment_inner(c.seq, &c.data, c.fin, c.meta, out);
                    self.segment_inner(seq, payload, fin, meta, out);
                } else {
                    self.segment_inner(seq, payload, fin, meta, out);
                    self.segment_inner(c.seq, &c.data, c.fin, c.meta, out);
                }
            }
            return;
        }
        self.drop_candidate();
        self.buffered += payload.len();
        self.candidate = Some(Candidate {
            seq,
            data: payload.to_vec(),
            fin,
            meta,
        });
        self.enforce_limits(out);
    }

    /// Records the FIN at absolute end offset `end` (first FIN wins).
    fn record_fin_at(&mut self, end: i128, meta: SegmentMeta) {
        if end < i128::from(self.next) {
            // A FIN before bytes already delivered contradicts them.
            self.stats.fin_conflicts += 1;
            return;
        }
        self.record_fin(to_u64(end), meta);
    }

    fn record_fin(&mut self, end: u64, meta: SegmentMeta) {
        match self.fin {
            Some((known, _)) => {
                if known != end {
                    self.stats.fin_conflicts += 1;
                }
            }
            None => {
                self.fin = Some((end, meta));
                // Drop what was buffered beyond the end.
                let beyond = self.pieces.split_off(&end);
                for p in beyond.values() {
                    self.buffered -= p.data.len();
                    self.stats.after_fin_bytes += len64(&p.data);
                }
                if let Some((&k, p)) = self.pieces.iter_mut().next_back() {
                    let keep = end - k;
                    if len64(&p.data) > keep {
                        let cut = p.data.len() - keep as usize; // keep < data.len()
                        self.stats.after_fin_bytes += cut as u64;
                        self.buffered -= cut;
                        p.data.truncate(keep as usize);
                    }
                }
                if let Some(c) = self.candidate.take() {
                    self.buffered -= c.data.len();
                    self.stats.after_fin_bytes += len64(&c.data);
                    self.stats.jump_candidates_dropped += 1;
                }
            }
        }
    }

    /// Buffers `data` at absolute offset `s > next`; where it overlaps buffered
    /// pieces, the buffered bytes win and only the holes it fills are stored.
    fn insert(&mut self, s: u64, data: &[u8], meta: SegmentMeta) {
        let e = s + len64(data);
        let mut holes = std::mem::take(&mut self.holes);
        holes.clear();
        let mut pos = s;
        let mut overlap = 0u64;
        let mut mismatch = false;
        if let Some((&k, p)) = self.pieces.range(..s).next_back() {
            let ke = k + len64(&p.data);
            if ke > s {
                let ov_end = ke.min(e);
                overlap += ov_end - s;
                mismatch |= sub(&p.data, k, s, ov_end) != sub(data, s, s, ov_end);
                pos = ov_end;
            }
        }
        if pos < e {
            for (&k, p) in self.pieces.range(pos..e) {
                if k > pos {
                    holes.push((pos, k));
                }
                let ke = k + len64(&p.data);
                let ov_end = ke.min(e);
                overlap += ov_end - k;
                mismatch |= sub(&p.data, k, k, ov_end) != sub(data, s, k, ov_end);
                pos = ke;
            }
            if pos < e {
                holes.push((pos, e));
            }
        }
        self.stats.overlap_bytes += overlap;
        self.stats.overlap_mismatches += u64::from(mismatch);
        for &(a, b) in &holes {
            let bytes = sub(data, s, a, b);
            self.buffered += bytes.len();
            self.pieces.insert(
                a,
                Piece {
                    data: bytes.to_vec(),
                    meta,
                },
            );
        }
        self.holes = holes;
    }

    /// Delivers the buffered pieces that start at `next`, one after the other.
    fn drain(&mut self, out: &mut dyn FnMut(Delivery<'_>)) {
        // `<=` rather than `==`: a piece starting before `next` would break the
        // invariant, but must still be consumed so that no loop can spin on it.
        while self
            .pieces
            .first_key_value()
            .is_some_and(|(&k, _)| k <= self.next)
        {
            if let Some((k, p)) = self.pieces.pop_first() {
                debug_assert_eq!(k, self.next, "buffered piece behind the stream");
                self.buffered -= p.data.len();
                let end = k + len64(&p.data);
                if end > self.next {
                    let fresh = sub(&p.data, k, self.next, end);
                    self.deliver_data(fresh, p.meta, out);
                }
            }
        }
    }

    /// Skips the hole at `next` (a gap) and drains what follows; false if nothing
    /// is buffered.
    fn give_up_oldest_hole(&mut self, out: &mut dyn FnMut(Delivery<'_>)) -> bool {
        let Some((&k, p)) = self.pieces.first_key_value() else {
            return false;
        };
        let meta = p.meta;
        if k > self.next {
            self.deliver_gap(k - self.next, meta, out);
        }
        self.drain(out);
        true
    }

    /// Delivers every buffered piece, holes between them as gaps.
    fn deliver_all_buffered(&mut self, out: &mut dyn FnMut(Delivery<'_>)) {
        while self.give_up_oldest_hole(out) {}
    }

    /// Drops an unconfirmed jump candidate; false if there was none.
    fn drop_candidate(&mut self) -> bool {
        match self.candidate.take() {
            Some(c) => {
                self.buffered -= c.data.len();
                self.stats.jump_candidates_dropped += 1;
                true
            }
            None => false,
        }
    }

    /// Gives up the oldest holes while the per-direction limits are exceeded.
    fn enforce_limits(&mut self, out: &mut dyn FnMut(Delivery<'_>)) {
        while self.buffered > self.limits.max_buffered_bytes
            || self.pieces.len() > self.limits.max_segments
        {
            if self.give_up_oldest_hole(out) {
                self.stats.dropped_at_limit += 1;
            } else if !self.drop_candidate() {
                break;
            }
        }
    }

    fn deliver_data(&mut self, bytes: &[u8], meta: SegmentMeta, out: &mut dyn FnMut(Delivery<'_>)) {
        if bytes.is_empty() {
            return;
        }
        self.next += len64(bytes);
        self.stats.delivered_bytes += len64(bytes);
        out(Delivery::Data { bytes, meta });
    }

    fn deliver_gap(&mut self, len: u64, meta: SegmentMeta, out: &mut dyn FnMut(Delivery<'_>)) {
        self.next += len;
        self.stats.gaps += 1;
        self.stats.gap_bytes += len;
        out(Delivery::Gap { len, meta });
    }
}

/// A non-negative stream offset or length computed in i128 (clamped at 0).
fn to_u64(v: i128) -> u64 {
    u64::try_from(v.max(0)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// One delivery, owned, for comparing.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Got {
        Data(Vec<u8>, u64),
        Gap(u64, u64),
    }

    fn meta(frame: u64) -> SegmentMeta {
        SegmentMeta {
            ts: Timestamp::from_micros(frame as i64),
            frame,
        }
    }

    /// A reassembler with the deliveries it made, merged where adjacent data came
    /// from the same frame.
    struct T {
        r: Reassembler,
        got: Vec<Got>,
        frame: u64,
    }

    impl T {
        fn new(limits: TcpLimits) -> Self {
            T {
                r: Reassembler::new(limits),
                got: Vec::new(),
                frame: 0,
            }
        }

        fn seg(&mut self, seq: u32, data: &[u8], fin: bool) -> &mut Self {
            self.frame += 1;
            let got = &mut self.got;
            self.r
                .segment(seq, data, fin, meta(self.frame), &mut |d| push(got, d));
            self
        }

        fn flush(&mut self) -> &mut Self {
            let got = &mut self.got;
            self.r.flush(&mut |d| push(got, d));
            self
        }

        fn take(&mut self) -> Vec<Got> {
            std::mem::take(&mut self.got)
        }

        /// Data as text, gaps as `<n>`.
        fn text(&mut self) -> String {
            let mut s = String::new();
            for g in self.take() {
                match g {
                    Got::Data(b, _) => s.push_str(&String::from_utf8_lossy(&b)),
                    Got::Gap(n, _) => s.push_str(&format!("<{n}>")),
                }
            }
            s
        }
    }

    fn push(got: &mut Vec<Got>, d: Delivery<'_>) {
        match d {
            Delivery::Data { bytes, meta } => {
                assert!(!bytes.is_empty(), "empty data delivery");
                got.push(Got::Data(bytes.to_vec(), meta.frame))
            }
            Delivery::Gap { len, meta } => {
                assert!(len > 0, "empty gap");
                got.push(Got::Gap(len, meta.frame))
            }
        }
    }

    fn t() -> T {
        T::new(TcpLimits::default())
    }

    #[test]
    fn in_order_is_delivered_straight_from_the_payload() {
        let mut r = Reassembler::new(TcpLimits::default());
        r.syn(99);
        let payload = b"hello".to_vec();
        let mut ptr = None;
        r.segment(100, &payload, false, meta(1), &mut |d| {
            if let Delivery::Data { bytes, .. } = d {
                ptr = Some(bytes.as_ptr());
            }
        });
        assert_eq!(ptr, Some(payload.as_ptr()), "hot path must not copy");
        assert_eq!(r.buffered_bytes(), 0);
        assert_eq!(r.stats().delivered_bytes, 5);
    }

    #[test]
    fn out_of_order_is_buffered_then_delivered_with_its_own_meta() {
        let mut t = t();
        t.r.syn(0);
        t.seg(6, b"world", false);
        assert!(t.take().is_empty());
        assert_eq!(t.r.buffered_bytes(), 5);
        t.seg(1, b"hello", false);
        assert_eq!(
            t.take(),
            vec![
                Got::Data(b"hello".to_vec(), 2),
                Got::Data(b"world".to_vec(), 1)
            ]
        );
        assert_eq!(t.r.buffered_bytes(), 0);
        assert_eq!(t.r.stats().out_of_order_segments, 1);
    }

    #[test]
    fn retransmission_of_delivered_data_is_counted_and_ignored() {
        let mut t = t();
        t.r.syn(0);
        t.seg(1, b"abcdef", false);
        t.seg(1, b"abcdef", false);
        t.seg(4, b"XYZghi", false); // 3 old bytes (different, not compared), 3 new
        assert_eq!(t.text(), "abcdefghi");
        assert_eq!(t.r.stats().retransmitted_bytes, 9);
        assert_eq!(t.r.stats().overlap_mismatches, 0);
    }

    #[test]
    fn overlapping_buffered_data_first_arrival_wins() {
        let mut t = t();
        t.r.syn(0);
        t.seg(4, b"DEF", false); // buffered at 3..6
        t.seg(3, b"cxxxg", false); // 2..7: 3..6 overlaps, differs; 2 and 6 are new
        assert_eq!(t.r.stats().overlap_bytes, 3);
        assert_eq!(t.r.stats().overlap_mismatches, 1);
        t.seg(1, b"ab", false);
        assert_eq!(t.text(), "abcDEFg");
        // A covering segment with the same bytes is an overlap without mismatch.
        let mut t = self::t();
        t.r.syn(0);
        t.seg(3, b"c", false);
        t.seg(5, b"e", false);
        t.seg(2, b"bcdef", false);
        assert_eq!(t.r.stats().overlap_mismatches, 0);
        assert_eq!(t.r.stats().overlap_bytes, 2);
        t.seg(1, b"a", false);
        assert_eq!(t.text(), "abcdef");
    }

    #[test]
    fn a_segment_starting_at_next_fills_only_up_to_buffered_data() {
        let mut t = t();
        t.r.syn(0);
        t.seg(4, b"DE", false);
        t.seg(1, b"abcxxf", false);
        assert_eq!(t.text(), "abcDEf");
        assert_eq!(t.r.stats().overlap_mismatches, 1);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut t = t();
        t.r.syn(u32::MAX - 2); // stream starts at MAX-1
        t.seg(1, b"efgh", false); // offset 3 (after wrap), out of order
        t.seg(u32::MAX - 1, b"abc", false); // MAX-1, MAX, 0
        t.seg(5, b"", true);
        assert_eq!(t.text(), "abcefgh");
        assert!(t.r.is_finished());
        assert_eq!(t.r.next_offset(), 7);
    }

    #[test]
    fn mid_stream_pickup_starts_at_the_first_payload_and_never_goes_back() {
        let mut t = t();
        t.seg(5000, b"", false); // a pure ACK does not fix the start
        t.seg(1000, b"world", false);
        t.seg(995, b"hello", false); // earlier than the start: not delivered
        t.seg(993, b"xxhello", false);
        t.seg(1005, b"!", false);
        assert_eq!(t.text(), "world!");
        assert_eq!(t.r.stats().before_start_bytes, 12);
        assert_eq!(t.r.stats().retransmitted_bytes, 0);
    }

    #[test]
    fn data_after_fin_is_dropped_and_finish_waits_for_holes() {
        let mut t = t();
        t.r.syn(0);
        t.seg(4, b"def", true); // FIN at end offset 6
        assert!(!t.r.is_finished());
        t.seg(7, b"zzz", false);
        t.seg(1, b"abc", false);
        assert_eq!(t.text(), "abcdef");
        assert!(t.r.is_finished());
        t.seg(4, b"defgh", false);
        assert!(t.take().is_empty());
        assert_eq!(t.r.stats().after_fin_bytes, 5);
        // A second FIN elsewhere is ignored.
        t.seg(9, b"", true);
        assert_eq!(t.r.stats().fin_conflicts, 1);
        assert!(t.r.is_finished());
    }

    #[test]
    fn fin_trims_data_already_buffered_beyond_it() {
        let mut t = t();
        t.r.syn(0);
        t.seg(3, b"cdefgh", false); // 2..8
        t.seg(10, b"jk", false); // 9..11
        t.seg(4, b"", true); // FIN at offset 3
        assert_eq!(t.r.buffered_bytes(), 1);
        assert_eq!(t.r.stats().after_fin_bytes, 7);
        t.seg(1, b"ab", false);
        assert_eq!(t.text(), "abc");
        assert!(t.r.is_finished());
    }

    #[test]
    fn flush_delivers_buffered_data_with_gaps_and_a_gap_before_the_fin() {
        let mut t = t();
        t.r.syn(0);
        t.seg(3, b"cd", false); // frame 1
        t.seg(8, b"hi", false); // frame 2
        t.seg(13, b"", true); // frame 3: FIN at 12
        assert!(t.take().is_empty());
        t.flush();
        assert_eq!(
            t.take(),
            vec![
                Got::Gap(2, 1),
                Got::Data(b"cd".to_vec(), 1),
                Got::Gap(3, 2),
                Got::Data(b"hi".to_vec(), 2),
                Got::Gap(3, 3),
            ]
        );
        assert!(t.r.is_finished());
        assert_eq!(t.r.buffered_bytes(), 0);
        assert_eq!(t.r.stats().gaps, 3);
        assert_eq!(t.r.stats().gap_bytes, 8);
    }

    #[test]
    fn byte_limit_gives_up_the_oldest_hole() {
        let mut t = T::new(TcpLimits {
            max_buffered_bytes: 4,
            ..TcpLimits::default()
        });
        t.r.syn(0);
        t.seg(3, b"cd", false); // 2..4
        t.seg(7, b"gh", false); // 6..8: 4 bytes held, at the limit
        assert!(t.take().is_empty());
        t.seg(10, b"j", false); // 9: 5 > 4: give up hole 0..2, deliver cd
        assert_eq!(t.text(), "<2>cd");
        assert_eq!(t.r.buffered_bytes(), 3);
        assert_eq!(t.r.stats().dropped_at_limit, 1);
        t.seg(5, b"ef", false);
        assert_eq!(t.text(), "efgh");
        t.seg(1, b"ab", false); // the given-up hole is old now
        assert!(t.take().is_empty());
        assert_eq!(t.r.stats().retransmitted_bytes, 2);
    }

    #[test]
    fn segment_limit_gives_up_the_oldest_hole() {
        let mut t = T::new(TcpLimits {
            max_segments: 2,
            ..TcpLimits::default()
        });
        t.r.syn(0);
        t.seg(3, b"c", false);
        t.seg(5, b"e", false);
        t.seg(7, b"g", false);
        assert_eq!(t.text(), "<2>c");
        assert_eq!(t.r.buffered_segments(), 2);
        assert_eq!(t.r.stats().dropped_at_limit, 1);
    }

    #[test]
    fn shrink_to_frees_the_oldest_first() {
        let mut t = t();
        t.r.syn(0);
        t.seg(3, b"cc", false);
        t.seg(7, b"gg", false);
        t.seg(11, b"kk", false);
        let got = &mut t.got;
        t.r.shrink_to(2, &mut |d| push(got, d));
        assert_eq!(t.text(), "<2>cc<2>gg");
        assert_eq!(t.r.buffered_bytes(), 2);
        assert_eq!(t.r.stats().dropped_for_budget, 2);
        let got = &mut t.got;
        t.r.shrink_to(0, &mut |d| push(got, d));
        assert_eq!(t.text(), "<2>kk");
        assert_eq!(t.r.buffered_bytes(), 0);
    }

    #[test]
    fn a_confirmed_jump_becomes_one_gap_without_allocating_the_distance() {
        let mut t = T::new(TcpLimits {
            max_window: 1000,
            ..TcpLimits::default()
        });
        t.r.syn(0);
        t.seg(1, b"ab", false);
        t.seg(10, b"jj", false); // buffered in window
        let far = 1 + 2_000_000_000u32; // offset 2e9: beyond the window
        t.seg(far, b"xy", false);
        assert_eq!(t.text(), "ab");
        assert_eq!(t.r.buffered_bytes(), 4);
        t.seg(far + 2, b"z", false); // continues it: the jump is real
        assert_eq!(t.text(), "<7>jj<1999999989>xyz");
        assert_eq!(t.r.stats().jumps, 1);
        assert_eq!(t.r.next_offset(), 2_000_000_003);
        t.seg(far + 3, b"!", false);
        assert_eq!(t.text(), "!");
    }

    #[test]
    fn a_jump_is_confirmed_by_a_reordered_neighbour() {
        let mut t = T::new(TcpLimits {
            max_window: 1000,
            ..TcpLimits::default()
        });
        t.r.syn(0);
        t.seg(1, b"ab", false);
        t.seg(100_005, b"fg", false); // offset 100004: far
        t.seg(100_001, b"bc", false); // offset 100000, before it and near: confirmed
        assert_eq!(t.text(), "ab<99998>bc");
        t.seg(100_003, b"de", false);
        assert_eq!(t.text(), "defg");
        assert_eq!(t.r.stats().jumps, 1);
        assert_eq!(t.r.buffered_bytes(), 0);
    }

    #[test]
    fn a_stray_far_segment_does_not_derail_the_stream() {
        let mut t = T::new(TcpLimits {
            max_window: 1000,
            ..TcpLimits::default()
        });
        t.r.syn(0);
        t.seg(1, b"ab", false);
        t.seg(50_000, b"junk", false);
        t.seg(90_000, b"junk", false); // not a continuation: replaces the candidate
        t.seg(3, b"cd", true);
        t.flush();
        assert_eq!(t.text(), "abcd");
        assert_eq!(t.r.stats().jumps, 0);
        assert_eq!(t.r.stats().jump_candidates_dropped, 2);
        assert_eq!(t.r.buffered_bytes(), 0);
        assert!(t.r.is_finished());
    }

    #[test]
    fn fin_only_pickup_and_empty_segments() {
        let mut t = t();
        t.seg(77, b"", true);
        assert!(t.r.is_finished());
        assert!(t.take().is_empty());
        let mut t = self::t();
        t.r.syn(10);
        t.r.syn(500); // ignored: the start is known
        t.seg(11, b"", false);
        t.seg(11, b"a", false);
        assert_eq!(t.text(), "a");
    }

    // ---- model checks (STYLE.md #18) ----

    /// One segment of a scenario: stream offsets `start..end`, bytes possibly
    /// altered (xor), FIN flag.
    #[derive(Debug, Clone)]
    struct Seg {
        start: usize,
        end: usize,
        xor: u8,
        fin: bool,
    }

    fn isn() -> impl Strategy<Value = u32> {
        prop_oneof![any::<u32>(), (0u32..5000).prop_map(|d| u32::MAX - d)]
    }

    /// A stream, its ISN, and segments in feed order: consecutive cuts covering the
    /// stream (some left out when `holes`), plus retransmissions and overlaps (some
    /// with different bytes when `alter`), shuffled.
    fn scenario(alter: bool, holes: bool) -> impl Strategy<Value = (Vec<u8>, u32, Vec<Seg>)> {
        (
            proptest::collection::vec(any::<u8>(), 0..4096),
            isn(),
            proptest::collection::vec(1usize..700, 0..40),
            proptest::collection::vec((any::<u16>(), 0usize..800, any::<u8>()), 0..30),
            proptest::collection::vec(any::<bool>(), 40),
        )
            .prop_flat_map(move |(data, isn, cuts, extra, keep)| {
                let n = data.len();
                let mut segs = Vec::new();
                let mut pos = 0usize;
                for (i, c) in cuts.iter().chain(std::iter::once(&usize::MAX)).enumerate() {
                    let end = pos.saturating_add(*c).min(n);
                    let kept = !holes || keep.get(i).copied().unwrap_or(true);
                    if kept && (end > pos || end == n) {
                        segs.push(Seg {
                            start: pos,
                            end,
                            xor: 0,
                            fin: end == n,
                        });
                    }
                    pos = end;
                    if pos == n {
                        break;
                    }
                }
                for (at, len, x) in extra {
                    let start = usize::from(at) % (n + 1);
                    let end = (start + len).min(n);
                    let xor = if alter && x % 3 == 0 { x | 1 } else { 0 };
                    segs.push(Seg {
                        start,
                        end,
                        xor,
                        fin: end == n && x % 2 == 0,
                    });
                }
                (Just(data), Just(isn), Just(segs).prop_shuffle())
            })
    }

    fn bytes_of(data: &[u8], s: &Seg) -> Vec<u8> {
        data[s.start..s.end].iter().map(|b| b ^ s.xor).collect()
    }

    /// Runs the scenario; the stream as `Some(byte)` / `None` (gap) per offset.
    fn run(
        data: &[u8],
        isn: u32,
        segs: &[Seg],
        limits: TcpLimits,
    ) -> (Vec<Option<u8>>, Reassembler) {
        let mut r = Reassembler::new(limits);
        r.syn(isn);
        let mut stream: Vec<Option<u8>> = Vec::new();
        let mut sink = |d: Delivery<'_>| match d {
            Delivery::Data { bytes, .. } => stream.extend(bytes.iter().map(|&b| Some(b))),
            Delivery::Gap { len, .. } => {
                assert!(len <= 4096, "gap of {len} in a 4 KiB stream");
                stream.extend(std::iter::repeat_n(None, len as usize));
            }
        };
        for (i, s) in segs.iter().enumerate() {
            let seq = isn.wrapping_add(1).wrapping_add(s.start as u32);
            let m = meta(i as u64);
            r.segment(seq, &bytes_of(data, s), s.fin, m, &mut sink);
            assert!(r.buffered_bytes() <= limits.max_buffered_bytes);
            assert!(r.buffered_segments() <= limits.max_segments);
        }
        r.flush(&mut sink);
        assert_eq!(r.buffered_bytes(), 0);
        (stream, r)
    }

    /// The naive byte map: every offset takes the first byte any segment put there.
    fn model(data: &[u8], segs: &[Seg]) -> Vec<Option<u8>> {
        let mut map = vec![None; data.len()];
        let mut end = 0;
        let mut fin = false;
        for s in segs {
            for (i, b) in (s.start..s.end).zip(bytes_of(data, s)) {
                map[i].get_or_insert(b);
            }
            if s.end > s.start {
                end = end.max(s.end);
            }
            fin |= s.fin;
        }
        if fin {
            end = data.len();
        }
        map.truncate(end);
        map
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn reassembly_restores_the_stream((data, isn, segs) in scenario(false, false)) {
            let (got, r) = run(&data, isn, &segs, TcpLimits::default());
            let want: Vec<Option<u8>> = data.iter().map(|&b| Some(b)).collect();
            prop_assert_eq!(got, want);
            prop_assert!(r.is_finished());
            prop_assert_eq!(r.stats().gaps, 0);
            prop_assert_eq!(r.stats().overlap_mismatches, 0);
        }

        #[test]
        fn reassembly_matches_the_first_wins_byte_map(
            (data, isn, segs) in scenario(true, true)
        ) {
            let (got, r) = run(&data, isn, &segs, TcpLimits::default());
            prop_assert_eq!(r.stats().dropped_at_limit, 0);
            prop_assert_eq!(got, model(&data, &segs));
        }

        #[test]
        fn tiny_limits_bound_memory_and_account_for_every_byte(
            (data, isn, segs) in scenario(false, true),
            max_bytes in 0usize..200,
            max_segs in 1usize..8,
        ) {
            let limits = TcpLimits { max_buffered_bytes: max_bytes, max_segments: max_segs, max_window: 1 << 20 };
            let (got, r) = run(&data, isn, &segs, limits);
            // Every delivered byte is the stream's byte at its offset.
            for (i, b) in got.iter().enumerate() {
                if let Some(b) = b {
                    prop_assert_eq!(*b, data[i]);
                }
            }
            let want_len = model(&data, &segs).len();
            if segs.iter().any(|s| s.fin) {
                prop_assert_eq!(got.len(), data.len());
                prop_assert!(r.is_finished());
            } else {
                prop_assert_eq!(got.len(), want_len);
            }
            prop_assert_eq!(
                r.stats().delivered_bytes + r.stats().gap_bytes,
                got.len() as u64
            );
        }
    }
}
