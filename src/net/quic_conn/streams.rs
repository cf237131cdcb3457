//! Stream data put back in order, per stream and direction: the first bytes received
//! for an offset win, final sizes are kept consistent, ended streams are remembered
//! within bounds, and held bytes are bounded by [`QuicConnLimits`].

use std::collections::{BTreeMap, BTreeSet};

use super::{Anomalies, QuicConnLimits, QuicEvent};
use crate::net::message_budget::{self, BudgetShare};

/// Stream offsets and final sizes stay below 2^62 (RFC 9000 §4.5).
const MAX_STREAM_END: u64 = 1 << 62;

/// One direction of one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct StreamKey {
    pub(super) id: u64,
    pub(super) from_client: bool,
}

impl StreamKey {
    /// Whether this side may send on the stream: both sides on a bidirectional one,
    /// only the initiator on a unidirectional one (RFC 9000 §2.1).
    fn may_send(&self) -> bool {
        let unidirectional = self.id & 0x02 != 0;
        let client_initiated = self.id & 0x01 == 0;
        !unidirectional || client_initiated == self.from_client
    }

    /// Index of the (direction, stream type) pair: 8 of them.
    fn class(&self) -> usize {
        usize::from(self.from_client) << 2 | (self.id & 0x03) as usize
    }
}

/// In-order bytes a stream hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Chunk {
    offset: u64,
    data: Vec<u8>,
    fin: bool,
}

/// Why stream data was refused (the frame is dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamError {
    /// Offset plus length at or beyond 2^62.
    TooFar,
    /// A FIN whose final size differs from the one known.
    FinalSizeChanged { known: u64, got: u64 },
    /// Data beyond the known final size.
    BeyondFinalSize { final_size: u64, end: u64 },
    /// A FIN below bytes already received.
    FinalSizeBelowReceived { got: u64, received: u64 },
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            StreamError::TooFar => f.write_str("stream data beyond 2^62 bytes"),
            StreamError::FinalSizeChanged { known, got } => {
                write!(f, "final size {got} after final size {known}")
            }
            StreamError::BeyondFinalSize { final_size, end } => {
                write!(f, "data up to {end} beyond final size {final_size}")
            }
            StreamError::FinalSizeBelowReceived { got, received } => {
                write!(f, "final size {got} below {received} bytes received")
            }
        }
    }
}

/// One direction of one stream put back in order: bytes are handed out as soon as
/// they follow what was handed out; bytes after a hole wait in `held`.
#[derive(Debug, Default)]
pub(super) struct StreamIn {
    /// Offset of the next byte to hand out: all before it were handed out or given
    /// up as a gap.
    next: u64,
    /// Bytes received beyond `next`, in pieces by offset: disjoint, all starting
    /// after `next` (pieces may touch: see [`put`](Self::put)).
    held: BTreeMap<u64, Vec<u8>>,
    held_bytes: usize,
    final_size: Option<u64>,
    fin_delivered: bool,
    /// When the first hole opened (the connection's frame clock), to choose which
    /// stream gives up a hole first.
    hole_since: Option<u64>,
}

impl StreamIn {
    /// Takes `data` at `offset` (the end of the stream when `fin`); returns the bytes
    /// that are now in order. Bytes already held or handed out are kept.
    fn insert(
        &mut self,
        offset: u64,
        data: &[u8],
        fin: bool,
        now: u64,
    ) -> Result<Option<Chunk>, StreamError> {
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|&e| e < MAX_STREAM_END)
            .ok_or(StreamError::TooFar)?;
        match self.final_size {
            Some(known) if fin && end != known => {
                return Err(StreamError::FinalSizeChanged { known, got: end })
            }
            Some(final_size) if end > final_size => {
                return Err(StreamError::BeyondFinalSize { final_size, end })
            }
            None if fin && end < self.received_end() => {
                return Err(StreamError::FinalSizeBelowReceived {
                    got: end,
                    received: self.received_end(),
                })
            }
            _ => {}
        }
        if fin {
            self.final_size = Some(end);
        }
        if end > self.next {
            // Below `next` the bytes were handed out already: a retransmission.
            let skip = self.next.saturating_sub(offset);
            // skip < data.len() because end > next.
            self.hold(offset + skip, &data[skip as usize..]);
        }
        let chunk = self.drain();
        self.hole_since = if self.held.is_empty() {
            None
        } else {
            self.hole_since.or(Some(now))
        };
        Ok(chunk)
    }

    /// The end of the bytes received so far.
    fn received_end(&self) -> u64 {
        self.held
            .iter()
            .next_back()
            .map_or(self.next, |(&s, d)| s + d.len() as u64)
    }

    /// Keeps the parts of `data` (at `start >= next`) that are not held yet.
    fn hold(&mut self, start: u64, data: &[u8]) {
        let end = start + data.len() as u64;
        let mut pos = start;
        if let Some((&s, d)) = self.held.range(..start).next_back() {
            pos = pos.max(s + d.len() as u64);
        }
        let mut holes = Vec::new();
        for (&s, d) in self.held.range(start..end) {
            if s > pos {
                holes.push(pos..s);
            }
            pos = pos.max(s + d.len() as u64);
        }
        if pos < end {
            holes.push(pos..end);
        }
        for hole in holes {
            // Holes lie within [start, end): their offsets fit `data`.
            let piece = &data[(hole.start - start) as usize..(hole.end - start) as usize];
            self.put(hole.start, piece);
        }
    }

    /// Adds bytes at `start` where nothing is held: appended to the piece that ends
    /// there, if any. Never prepended to the piece after: that would copy it each
    /// time, and bytes arriving backwards would cost quadratic time.
    fn put(&mut self, start: u64, bytes: &[u8]) {
        let before = self
            .held
            .range_mut(..start)
            .next_back()
            .filter(|(&s, d)| s + d.len() as u64 == start);
        match before {
            Some((_, piece)) => piece.extend_from_slice(bytes),
            None => {
                self.held.insert(start, bytes.to_vec());
            }
        }
        self.held_bytes += bytes.len();
    }

    /// Hands out the held bytes at `next`, and the end of the stream once reached.
    fn drain(&mut self) -> Option<Chunk> {
        let offset = self.next;
        let mut data = Vec::new();
        while let Some(piece) = self.held.remove(&self.next) {
            self.held_bytes -= piece.len();
            self.next += piece.len() as u64;
            if data.is_empty() {
                data = piece;
            } else {
                data.extend_from_slice(&piece);
            }
        }
        let fin = !self.fin_delivered && self.final_size == Some(self.next);
        if data.is_empty() && !fin {
            return None;
        }
        self.fin_delivered |= fin;
        Some(Chunk { offset, data, fin })
    }

    /// Gives up the first hole: its range (offset, length) and the bytes after it.
    fn skip_hole(&mut self, now: u64) -> Option<(u64, u64, Option<Chunk>)> {
        let first = *self.held.keys().next()?;
        let gap = (self.next, first - self.next);
        self.next = first;
        let chunk = self.drain();
        self.hole_since = (!self.held.is_empty()).then_some(now);
        Some((gap.0, gap.1, chunk))
    }

    fn is_finished(&self) -> bool {
        self.fin_delivered
    }
}

/// Stream directions that ended: frames for them are retransmissions. Stream IDs of
/// each type are opened in order, so per (direction, type) every ID below a
/// watermark is ended, plus a bounded set of IDs above it.
#[derive(Debug)]
struct ClosedStreams {
    /// Per [`StreamKey::class`]: the lowest ID of that type not known to be ended.
    below: [u64; 8],
    above: BTreeSet<StreamKey>,
}

impl Default for ClosedStreams {
    fn default() -> Self {
        // The lowest ID of each type is its type bits.
        ClosedStreams {
            below: [0, 1, 2, 3, 0, 1, 2, 3],
            above: BTreeSet::new(),
        }
    }
}

impl ClosedStreams {
    fn contains(&self, key: StreamKey) -> bool {
        key.id < self.below[key.class()] || self.above.contains(&key)
    }

    /// Marks `key` ended; beyond `max_above` IDs above the watermarks, the lowest one
    /// raises its watermark (streams below it not seen yet would be dropped: the price
    /// of bounded memory, paid by the oldest).
    fn insert(&mut self, key: StreamKey, max_above: usize) {
        if self.contains(key) {
            return;
        }
        self.above.insert(key);
        self.advance(key.class());
        while self.above.len() > max_above {
            let Some(lowest) = self.above.pop_first() else {
                break;
            };
            let class = lowest.class();
            self.below[class] = self.below[class].max(lowest.id.saturating_add(4));
            self.advance(class);
        }
    }

    /// Moves a watermark over the ended IDs just above it.
    fn advance(&mut self, class: usize) {
        let from_client = class & 0x04 != 0;
        loop {
            let key = StreamKey {
                id: self.below[class],
                from_client,
            };
            if !self.above.remove(&key) {
                break;
            }
            self.below[class] = key.id.saturating_add(4);
        }
        // IDs the watermark passed are no longer needed in the set.
        let below = self.below[class];
        self.above.retain(|k| k.class() != class || k.id >= below);
    }
}

/// Every stream of a connection, both directions, put back in order.
#[derive(Debug, Default)]
pub(super) struct Streams {
    limits: QuicConnLimits,
    pub(super) active: BTreeMap<StreamKey, StreamIn>,
    closed: ClosedStreams,
    held_bytes: usize,
    held_ranges: usize,
    /// STREAM frames taken: the age of a hole.
    clock: u64,
    /// `held_bytes`, in the flow table's budget of message bytes.
    table: BudgetShare,
}

impl Streams {
    /// No stream yet; `limits` bound what the streams hold.
    pub(super) fn new(limits: QuicConnLimits) -> Self {
        Streams {
            limits,
            ..Streams::default()
        }
    }

    /// Holds out-of-order bytes within `share`'s budget too.
    pub(super) fn keep_within(&mut self, share: BudgetShare) {
        self.table = share;
        self.table.sync(self.held_bytes);
    }

    pub(super) fn data(
        &mut self,
        key: StreamKey,
        offset: u64,
        data: &[u8],
        fin: bool,
        out: &mut Vec<QuicEvent>,
        anomalies: &mut Anomalies,
    ) {
        if !key.may_send() {
            anomalies.note("quic-stream-direction", || {
                format!("data on unidirectional stream {} from its receiver", key.id)
            });
            return;
        }
        let is_new = !self.active.contains_key(&key);
        if is_new {
            if self.closed.contains(key) {
                return;
            }
            if self.active.len() >= self.limits.max_streams {
                anomalies.note("quic-stream-limit", || {
                    format!(
                        "stream {} ignored: {} stream directions tracked already",
                        key.id, self.limits.max_streams
                    )
                });
                return;
            }
        }
        self.clock += 1;
        let now = self.clock;
        let stream = self.active.entry(key).or_default();
        let before = (stream.held_bytes, stream.held.len());
        let result = stream.insert(offset, data, fin, now);
        if result.is_err() && is_new {
            // A refused frame changed nothing: it must not take a stream slot.
            self.active.remove(&key);
        }
        self.account(before, key);
        match result {
            Ok(Some(chunk)) => out.push(stream_event(key, chunk)),
            Ok(None) => {}
            Err(e) => anomalies.note("quic-stream-final-size", || {
                format!("stream {}: {e}; frame dropped", key.id)
            }),
        }
        self.retire_if_done(key);
        self.enforce_limits(out, anomalies);
    }

    pub(super) fn reset(
        &mut self,
        key: StreamKey,
        error_code: u64,
        out: &mut Vec<QuicEvent>,
        anomalies: &mut Anomalies,
    ) {
        if !key.may_send() {
            anomalies.note("quic-stream-direction", || {
                format!(
                    "RESET_STREAM of unidirectional stream {} from its receiver",
                    key.id
                )
            });
            return;
        }
        match self.active.remove(&key) {
            Some(stream) => self.release(&stream),
            // Already ended (a retransmitted reset, or one after the FIN).
            None if self.closed.contains(key) => return,
            None => {}
        }
        self.closed.insert(key, self.max_closed());
        out.push(QuicEvent::Reset {
            id: key.id,
            from_client: key.from_client,
            error_code,
        });
    }

    /// Updates the connection's totals after `key`'s stream changed from `before`
    /// (held bytes, held ranges).
    fn account(&mut self, before: (usize, usize), key: StreamKey) {
        if let Some(s) = self.active.get(&key) {
            self.held_bytes = self.held_bytes - before.0 + s.held_bytes;
            self.held_ranges = self.held_ranges - before.1 + s.held.len();
        }
    }

    fn release(&mut self, stream: &StreamIn) {
        self.held_bytes -= stream.held_bytes;
        self.held_ranges -= stream.held.len();
    }

    /// Ended stream directions remembered above the watermarks.
    fn max_closed(&self) -> usize {
        self.limits.max_streams.saturating_mul(4).max(64)
    }

    /// A stream direction whose end was handed out is no longer tracked.
    fn retire_if_done(&mut self, key: StreamKey) {
        if self.active.get(&key).is_some_and(StreamIn::is_finished) {
            if let Some(s) = self.active.remove(&key) {
                self.release(&s);
            }
            self.closed.insert(key, self.max_closed());
        }
    }

    /// While over a limit (the connection's, or the table's budget of message bytes),
    /// the stream with the oldest hole gives it up.
    fn enforce_limits(&mut self, out: &mut Vec<QuicEvent>, anomalies: &mut Anomalies) {
        let (max_bytes, max_ranges) = (self.limits.max_buffered, self.limits.max_held_ranges);
        loop {
            self.table.sync(self.held_bytes);
            let own = self.held_bytes > max_bytes || self.held_ranges > max_ranges;
            if !own && !self.table.over() {
                break;
            }
            let Some(key) = self.oldest_hole() else {
                break;
            };
            let (bytes, ranges) = (self.held_bytes, self.held_ranges);
            if own {
                anomalies.note("quic-stream-buffer-limit", || {
                    format!(
                        "{bytes} out-of-order bytes in {ranges} pieces held (limits \
                         {max_bytes}, {max_ranges}): a hole of stream {} given up",
                        key.id
                    )
                });
            } else {
                anomalies.note(message_budget::ANOMALY, || {
                    self.table.cut_detail(&format!(
                        "{bytes} out-of-order bytes held: a hole of stream {} given up",
                        key.id
                    ))
                });
            }
            if !self.skip_hole(key, out) {
                break;
            }
            self.retire_if_done(key);
        }
    }

    fn oldest_hole(&self) -> Option<StreamKey> {
        self.active
            .iter()
            .filter(|(_, s)| !s.held.is_empty())
            .min_by_key(|(k, s)| (s.hole_since, **k))
            .map(|(k, _)| *k)
    }

    /// Gives up `key`'s first hole; false when it has none.
    fn skip_hole(&mut self, key: StreamKey, out: &mut Vec<QuicEvent>) -> bool {
        let now = self.clock;
        let Some(stream) = self.active.get_mut(&key) else {
            return false;
        };
        let before = (stream.held_bytes, stream.held.len());
        let Some((offset, len, chunk)) = stream.skip_hole(now) else {
            return false;
        };
        self.account(before, key);
        out.push(QuicEvent::Gap {
            id: key.id,
            from_client: key.from_client,
            offset,
            len,
        });
        if let Some(chunk) = chunk {
            out.push(stream_event(key, chunk));
        }
        true
    }

    /// Hands out everything held, gaps included (the flow ended).
    pub(super) fn flush(&mut self, out: &mut Vec<QuicEvent>) {
        let keys: Vec<StreamKey> = self
            .active
            .iter()
            .filter(|(_, s)| !s.held.is_empty())
            .map(|(k, _)| *k)
            .collect();
        for key in keys {
            while self.skip_hole(key, out) {}
            self.retire_if_done(key);
        }
    }
}

fn stream_event(key: StreamKey, chunk: Chunk) -> QuicEvent {
    QuicEvent::Stream {
        id: key.id,
        from_client: key.from_client,
        offset: chunk.offset,
        data: chunk.data,
        fin: chunk.fin,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::quic_conn::keys::Suite;
    use crate::net::quic_conn::test_util::*;
    use crate::net::quic_conn::QuicConnReader;
    use proptest::prelude::*;

    /// STREAM frames out of order, duplicated and overlapping with other bytes, across
    /// packets: the first bytes received for an offset win, each byte comes out once.
    #[test]
    fn stream_data_out_of_order_duplicated_and_overlapping() {
        let Conn { mut r, client, .. } = connected(Suite::Aes128Gcm);
        let d = b"POST /collect HTTP/3 with a body of 36";
        let x = b"XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX";
        let frames = [
            stream(0, 10, &d[10..20], false),
            stream(0, 0, &d[..5], false),
            // Bytes 3..5 were handed out, 10..12 are held: only 5..10 are taken.
            stream(0, 3, &x[3..12], false),
            stream(0, 0, &d[..5], false),
            stream(0, 20, &d[20..], true),
            stream(0, 0, d, true), // after the end: a retransmission, dropped
        ];
        let mut events = Vec::new();
        for (pn, f) in frames.iter().enumerate() {
            events.push(push(
                &mut r,
                &client.short(&SERVER_CID, pn as u64, 1, false, f),
                true,
            ));
        }
        let mut expected = d[..5].to_vec();
        expected.extend(&x[5..10]);
        expected.extend(&d[10..20]);
        assert_eq!(
            events,
            vec![
                vec![],
                vec![data_event(0, true, 0, &d[..5], false)],
                vec![data_event(0, true, 5, &expected[5..], false)],
                vec![],
                vec![data_event(0, true, 20, &d[20..], true)],
                vec![],
            ]
        );
        assert!(r.take_anomalies().is_empty());
        assert!(r.streams.active.is_empty());
        // Several frames in one packet, and a stream frame without a length.
        let mut f = stream(4, 3, b"def", false);
        f.extend(stream(4, 0, b"abc", false));
        f.extend([0x0d, 4, 6]); // OFF and FIN, data to the end of the packet
        f.extend(b"ghi");
        let events = push(&mut r, &client.short(&SERVER_CID, 6, 1, false, &f), true);
        assert_eq!(
            stream_bytes(&events, 4, true),
            (b"abcdefghi".to_vec(), true)
        );
    }

    #[test]
    fn streams_tracked_at_once_are_limited() {
        let limits = QuicConnLimits {
            max_streams: 2,
            ..QuicConnLimits::default()
        };
        let Conn { mut r, client, .. } = connected_with(Suite::Aes128Gcm, limits);
        let mut pn = 0;
        let mut send = |r: &mut QuicConnReader, frames: Vec<u8>| {
            pn += 1;
            push(r, &client.short(&SERVER_CID, pn, 1, false, &frames), true)
        };
        assert_eq!(send(&mut r, stream(0, 0, b"a", false)).len(), 1);
        assert_eq!(send(&mut r, stream(4, 0, b"b", false)).len(), 1);
        assert!(send(&mut r, stream(8, 0, b"c", false)).is_empty());
        assert_eq!(kinds(&mut r), vec!["quic-stream-limit"]);
        // Stream 0 ends: its slot frees, and a retransmission of it is dropped.
        assert_eq!(
            send(&mut r, stream(0, 1, b"", true)),
            vec![data_event(0, true, 1, b"", true)]
        );
        assert!(send(&mut r, stream(0, 0, b"a", false)).is_empty());
        assert_eq!(
            send(&mut r, stream(8, 0, b"c", true)),
            vec![data_event(8, true, 0, b"c", true)]
        );
        assert!(r.take_anomalies().is_empty());
    }

    #[test]
    fn held_bytes_past_the_tables_budget_become_a_gap() {
        // 70 bytes for out-of-order data and other message content.
        let budget = crate::net::message_budget::MessageBudget::new(80);
        let a = connected_with(Suite::Aes128Gcm, QuicConnLimits::default());
        let b = connected_with(Suite::Aes128Gcm, QuicConnLimits::default());
        let (mut ra, mut rb) = (a.r.with_budget(&budget), b.r.with_budget(&budget));
        let held = push(
            &mut ra,
            &a.client
                .short(&SERVER_CID, 0, 1, false, &stream(0, 10, &[b'a'; 60], false)),
            true,
        );
        assert!(held.is_empty());
        assert_eq!(budget.held(), 60);
        // B's hole would take the table past its budget: B gives it up, A keeps its.
        let e = push(
            &mut rb,
            &b.client
                .short(&SERVER_CID, 0, 1, false, &stream(4, 5, &[b'b'; 50], false)),
            true,
        );
        assert_eq!(
            e,
            vec![
                QuicEvent::Gap {
                    id: 4,
                    from_client: true,
                    offset: 0,
                    len: 5
                },
                data_event(4, true, 5, &[b'b'; 50], false),
            ]
        );
        assert_eq!(kinds(&mut rb), vec![message_budget::ANOMALY]);
        assert!(kinds(&mut ra).is_empty());
        assert_eq!(budget.held(), 60);
        drop(ra);
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn held_bytes_over_the_limit_become_a_gap() {
        let limits = QuicConnLimits {
            max_buffered: 100,
            max_held_ranges: 3,
            ..QuicConnLimits::default()
        };
        let Conn { mut r, client, .. } = connected_with(Suite::Aes128Gcm, limits);
        let e1 = push(
            &mut r,
            &client.short(&SERVER_CID, 0, 1, false, &stream(0, 10, &[b'a'; 60], false)),
            true,
        );
        assert!(e1.is_empty());
        let e2 = push(
            &mut r,
            &client.short(&SERVER_CID, 1, 1, false, &stream(4, 5, &[b'b'; 50], false)),
            true,
        );
        // Stream 0's hole is the older one: it is given up.
        assert_eq!(
            e2,
            vec![
                QuicEvent::Gap {
                    id: 0,
                    from_client: true,
                    offset: 0,
                    len: 10
                },
                data_event(0, true, 10, &[b'a'; 60], false),
            ]
        );
        assert_eq!(kinds(&mut r), vec!["quic-stream-buffer-limit"]);
        // The missing bytes, late: already skipped.
        let e3 = push(
            &mut r,
            &client.short(&SERVER_CID, 2, 1, false, &stream(0, 0, &[b'z'; 12], false)),
            true,
        );
        assert!(e3.is_empty());
        // Too many ranges: stream 8 in four 1-byte pieces (plus stream 4's range).
        let mut f = Vec::new();
        for off in [2, 4, 6] {
            f.extend(stream(8, off, b"x", false));
        }
        let e4 = push(&mut r, &client.short(&SERVER_CID, 3, 1, false, &f), true);
        assert_eq!(
            e4,
            vec![
                QuicEvent::Gap {
                    id: 4,
                    from_client: true,
                    offset: 0,
                    len: 5
                },
                data_event(4, true, 5, &[b'b'; 50], false),
            ]
        );
        assert_eq!(r.streams.held_ranges, 3);
        // Flushing at the end of the flow hands out the rest.
        let mut out = Vec::new();
        r.flush(&mut out);
        assert_eq!(out.len(), 6);
        assert_eq!(r.streams.held_bytes, 0);
        assert_eq!(r.streams.held_ranges, 0);
    }

    #[test]
    fn unidirectional_streams_carry_data_one_way() {
        let Conn {
            mut r,
            client,
            server,
        } = connected(Suite::Aes128Gcm);
        // Stream 2: client-initiated unidirectional; 3: server-initiated.
        let e = push(
            &mut r,
            &client.short(&SERVER_CID, 0, 1, false, &stream(2, 0, b"\x00", false)),
            true,
        );
        assert_eq!(e.len(), 1);
        let mut f = stream(2, 0, b"no", false);
        f.extend([0x04, 0x02, 0x00, 0x00]);
        f.extend(stream(3, 0, b"\x00", false));
        let e = push(&mut r, &server.short(&CLIENT_CID, 0, 1, false, &f), false);
        assert_eq!(e, vec![data_event(3, false, 0, b"\x00", false)]);
        assert_eq!(
            kinds(&mut r),
            vec!["quic-stream-direction", "quic-stream-direction"]
        );
    }

    #[test]
    fn final_sizes_are_kept_consistent() {
        let mut st = StreamIn::default();
        assert_eq!(st.insert(5, b"fghij", true, 0), Ok(None));
        assert_eq!(
            st.insert(8, b"xyzw", false, 1),
            Err(StreamError::BeyondFinalSize {
                final_size: 10,
                end: 12
            })
        );
        assert_eq!(
            st.insert(0, b"ab", true, 2),
            Err(StreamError::FinalSizeChanged { known: 10, got: 2 })
        );
        let chunk = st.insert(0, b"abcde", false, 3).unwrap().unwrap();
        assert_eq!((chunk.data, chunk.fin), (b"abcdefghij".to_vec(), true));
        let mut st = StreamIn::default();
        st.insert(4, b"ef", false, 0).unwrap();
        assert_eq!(
            st.insert(0, b"ab", true, 1),
            Err(StreamError::FinalSizeBelowReceived {
                got: 2,
                received: 6
            })
        );
        // An empty FIN at the delivered end: the end alone.
        let mut st = StreamIn::default();
        assert!(st.insert(0, b"abc", false, 0).unwrap().is_some());
        let end = st.insert(3, b"", true, 1).unwrap().unwrap();
        assert_eq!((end.offset, end.data.len(), end.fin), (3, 0, true));
        assert_eq!(st.insert(3, b"", true, 2), Ok(None));
    }

    #[test]
    fn closed_streams_are_remembered_within_bounds() {
        let key = |id| StreamKey {
            id,
            from_client: true,
        };
        let mut c = ClosedStreams::default();
        for id in [0, 8, 4] {
            c.insert(key(id), 2);
        }
        assert_eq!(c.below[key(0).class()], 12);
        assert!(c.above.is_empty());
        assert!(c.contains(key(4)) && !c.contains(key(12)));
        // Other types and directions have their own watermarks.
        assert!(!c.contains(key(1)));
        assert!(!c.contains(StreamKey {
            id: 0,
            from_client: false
        }));
        for id in [20, 28, 36] {
            c.insert(key(id), 2);
        }
        // Over the bound, the lowest entry (20) raised the watermark past 16.
        assert_eq!(c.below[key(0).class()], 24);
        assert!(c.contains(key(16)) && c.contains(key(28)) && !c.contains(key(32)));
        assert_eq!(c.above.len(), 2);
    }

    #[test]
    fn stream_in_hands_out_held_bytes_behind_a_skipped_hole() {
        let mut st = StreamIn::default();
        st.insert(4, b"ef", false, 0).unwrap();
        st.insert(8, b"ij", false, 1).unwrap();
        st.insert(6, b"gh", false, 2).unwrap();
        assert_eq!(st.held.len(), 2, "appended to the piece before, not after");
        assert_eq!(st.hole_since, Some(0));
        let (offset, len, chunk) = st.skip_hole(3).unwrap();
        assert_eq!((offset, len), (0, 4));
        assert_eq!(chunk.unwrap().data, b"efghij");
        assert!(st.skip_hole(4).is_none());
        assert_eq!((st.next, st.held_bytes, st.hole_since), (10, 0, None));
    }

    /// Runs the bytes of one stream, cut at `cuts`, through a connection in the frame
    /// order `order` picks, `per_packet` frames per packet.
    fn reassembled(data: &[u8], cuts: &[usize], order: u64, per_packet: usize) -> (Vec<u8>, bool) {
        let Conn { mut r, client, .. } = connected(Suite::Aes128Gcm);
        let mut points: Vec<usize> = cuts.iter().copied().filter(|&p| p < data.len()).collect();
        points.sort_unstable();
        points.dedup();
        let mut frames = Vec::new();
        let mut start = 0;
        for p in points.into_iter().chain([data.len()]) {
            frames.push(stream(0, start as u64, &data[start..p], p == data.len()));
            start = p;
        }
        // A deterministic shuffle from `order`.
        let mut seed = order;
        for i in (1..frames.len()).rev() {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            frames.swap(i, (seed >> 33) as usize % (i + 1));
        }
        let mut events = Vec::new();
        for (pn, group) in frames.chunks(per_packet.max(1)).enumerate() {
            let p = client.short(&SERVER_CID, pn as u64, 2, false, &group.concat());
            events.extend(push(&mut r, &p, true));
        }
        assert!(r.take_anomalies().is_empty());
        stream_bytes(&events, 0, true)
    }

    proptest! {
        /// A stream direction against a byte map: first write wins, the contiguous
        /// prefix is handed out once and in order, the rest is held exactly.
        #[test]
        fn stream_in_matches_a_byte_map(
            frags in proptest::collection::vec((0u64..300, 0usize..60, any::<u8>()), 0..40)
        ) {
            let mut st = StreamIn::default();
            let mut oracle: Vec<Option<u8>> = vec![None; 400];
            let mut handed_out = Vec::new();
            for (i, (off, len, fill)) in frags.into_iter().enumerate() {
                let data: Vec<u8> = (0..len).map(|j| fill.wrapping_add(j as u8)).collect();
                let chunk = st.insert(off, &data, false, i as u64).unwrap();
                for (j, &b) in data.iter().enumerate() {
                    oracle[off as usize + j].get_or_insert(b);
                }
                if let Some(c) = chunk {
                    prop_assert_eq!(c.offset, handed_out.len() as u64);
                    prop_assert!(!c.data.is_empty());
                    handed_out.extend(c.data);
                }
            }
            let expected: Vec<u8> = oracle.iter().map_while(|b| *b).collect();
            prop_assert_eq!(&handed_out, &expected);
            prop_assert_eq!(st.next, expected.len() as u64);
            let mut last_end = st.next;
            let mut total = 0;
            for (&s, d) in &st.held {
                prop_assert!(s > st.next && s >= last_end, "held pieces are disjoint, after a hole");
                prop_assert!(!d.is_empty());
                for (j, &b) in d.iter().enumerate() {
                    prop_assert_eq!(Some(b), oracle[s as usize + j]);
                }
                last_end = s + d.len() as u64;
                total += d.len();
            }
            prop_assert_eq!(total, st.held_bytes);
            // Every received byte beyond the prefix is held.
            let received = oracle.iter().skip(expected.len()).filter(|b| b.is_some()).count();
            prop_assert_eq!(received, total);
            prop_assert_eq!(st.hole_since.is_some(), !st.held.is_empty());
        }

        /// Arbitrary frame bytes in packets that authenticate never panic, and the
        /// stream totals stay consistent with what is held.
        #[test]
        fn arbitrary_frames_do_not_panic(
            payloads in proptest::collection::vec(
                proptest::collection::vec(any::<u8>(), 0..120),
                1..6,
            )
        ) {
            let limits = QuicConnLimits {
                max_buffered: 64,
                max_held_ranges: 4,
                max_streams: 3,
                ..QuicConnLimits::default()
            };
            let Conn { mut r, client, .. } = connected_with(Suite::Aes128Gcm, limits);
            for (pn, frames) in payloads.iter().enumerate() {
                let _ = push(&mut r, &client.short(&SERVER_CID, pn as u64, 2, false, frames), true);
            }
            prop_assert_eq!(r.packets_decrypted(), payloads.len() as u64);
            let held: usize = r.streams.active.values().map(|s| s.held_bytes).sum();
            let pieces: usize = r.streams.active.values().map(|s| s.held.len()).sum();
            prop_assert_eq!((held, pieces), (r.streams.held_bytes, r.streams.held_ranges));
            prop_assert!(held <= 64 && pieces <= 4 && r.streams.active.len() <= 3);
        }

        /// Any cutting of a stream into frames, in any order, packed any way into
        /// packets, gives the same bytes.
        #[test]
        fn any_framing_gives_the_same_stream(
            cuts in proptest::collection::vec(1usize..600, 0..12),
            order in any::<u64>(),
            per_packet in 1usize..4,
        ) {
            let data: Vec<u8> = (0..600u32).map(|i| (i * 7 % 251) as u8).collect();
            prop_assert_eq!(reassembled(&data, &cuts, order, per_packet), (data, true));
        }
    }
}
