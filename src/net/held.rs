//! Client bytes held until an answer decides what they are: those a client writes
//! after a `CONNECT` or an `Upgrade` request before the answer (`net::http1`), or
//! after a SOCKS request before the server's reply (`net::socks`, through the flow).
//! They are read once the answer comes, with the time and frame of the segment each
//! part was captured in, not the answer's: a message sent before a consent decision
//! whose answer came after it was still sent before it, and a reader opening the
//! cited frame finds the message there.

use crate::timestamp::Timestamp;

/// Segments of one run of held bytes told apart at most: past these, a later
/// segment's bytes count as the last one's (the run's start stays exact). Holds are
/// rare and short; the list is small and bounded.
pub const MAX_HELD_SEGMENTS: usize = 32;

/// A segment of held bytes: where its bytes begin in what was held, and where it was
/// captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldSegment {
    pub offset: usize,
    pub ts: Timestamp,
    pub frame: u64,
}

/// The segments of one run of held bytes, in order.
#[derive(Debug, Default)]
pub struct HeldSegments(Vec<HeldSegment>);

impl HeldSegments {
    /// Bytes from `offset` of the held bytes on came in `frame`, captured at `ts`. A
    /// new frame starts a segment (more bytes of the last one's frame, however they
    /// were handed in, do not), up to [`MAX_HELD_SEGMENTS`].
    pub fn note(&mut self, offset: usize, ts: Timestamp, frame: u64) {
        let same_frame = self.0.last().is_some_and(|s| s.frame == frame);
        if !same_frame && self.0.len() < MAX_HELD_SEGMENTS {
            self.0.push(HeldSegment { offset, ts, frame });
        }
    }

    /// Whether no bytes were held yet.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The segments, given up by the run.
    pub fn take(&mut self) -> Vec<HeldSegment> {
        std::mem::take(&mut self.0)
    }

    /// The segments of the held bytes from `start` on (what is left once a
    /// handshake's own messages are read), offsets counted from there.
    pub fn from(&self, start: usize) -> Vec<HeldSegment> {
        let Some(first) = self.0.iter().rposition(|s| s.offset <= start) else {
            return Vec::new();
        };
        self.0[first..]
            .iter()
            .map(|s| HeldSegment {
                offset: s.offset.saturating_sub(start),
                ..*s
            })
            .collect()
    }
}

/// `bytes` cut at each segment's offset, each piece with its segment (empty pieces
/// and offsets past the end skipped; the first piece from the first byte whatever its
/// offset says, so that no byte is left out): held bytes given back with the time and
/// frame each part was captured at.
pub fn held_pieces<'a>(
    bytes: &'a [u8],
    segments: &'a [HeldSegment],
) -> impl Iterator<Item = (&'a [u8], HeldSegment)> + 'a {
    segments.iter().enumerate().filter_map(move |(i, seg)| {
        let start = if i == 0 { 0 } else { seg.offset };
        let end = segments
            .get(i + 1)
            .map_or(bytes.len(), |next| next.offset.min(bytes.len()));
        let piece = bytes.get(start..end)?;
        (!piece.is_empty()).then_some((piece, *seg))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(offset: usize, frame: u64) -> HeldSegment {
        HeldSegment {
            offset,
            ts: Timestamp::from_micros(frame as i64),
            frame,
        }
    }

    #[test]
    fn held_pieces_cut_bytes_at_each_segment() {
        let pieces = |bytes: &'static [u8], segs: &[HeldSegment]| -> Vec<(Vec<u8>, u64)> {
            held_pieces(bytes, segs)
                .map(|(p, s)| (p.to_vec(), s.frame))
                .collect()
        };
        assert_eq!(
            pieces(b"abcdef", &[seg(0, 4), seg(2, 5), seg(5, 7)]),
            [
                (b"ab".to_vec(), 4),
                (b"cde".to_vec(), 5),
                (b"f".to_vec(), 7)
            ]
        );
        // Cut short (more was held than handed over): the pieces past the end go.
        assert_eq!(
            pieces(b"abc", &[seg(0, 4), seg(2, 5), seg(5, 7)]),
            [(b"ab".to_vec(), 4), (b"c".to_vec(), 5)]
        );
        assert_eq!(pieces(b"abc", &[]), []);
        // A first segment that does not start at 0 still gives the bytes before it.
        assert_eq!(
            pieces(b"abcdef", &[seg(2, 4), seg(4, 5)]),
            [(b"abcd".to_vec(), 4), (b"ef".to_vec(), 5)]
        );
    }

    #[test]
    fn a_new_frame_starts_a_segment_up_to_the_bound() {
        let mut held = HeldSegments::default();
        held.note(0, Timestamp::from_micros(4), 4);
        held.note(3, Timestamp::from_micros(4), 4);
        held.note(5, Timestamp::from_micros(5), 5);
        assert_eq!(held.from(0), [seg(0, 4), seg(5, 5)]);
        for frame in 6..6 + 2 * MAX_HELD_SEGMENTS as u64 {
            held.note(frame as usize, Timestamp::from_micros(frame as i64), frame);
        }
        let all = held.take();
        assert_eq!(all.len(), MAX_HELD_SEGMENTS);
        assert_eq!(all.last(), Some(&seg(MAX_HELD_SEGMENTS + 3, 35)));
        assert!(held.take().is_empty(), "taken");
    }

    #[test]
    fn the_segments_from_a_point_start_with_the_one_holding_it() {
        let mut held = HeldSegments::default();
        for (offset, frame) in [(0, 4), (10, 5), (20, 6)] {
            held.note(offset, Timestamp::from_micros(frame as i64), frame);
        }
        assert_eq!(held.from(0), [seg(0, 4), seg(10, 5), seg(20, 6)]);
        assert_eq!(held.from(12), [seg(0, 5), seg(8, 6)]);
        assert_eq!(held.from(20), [seg(0, 6)]);
        assert_eq!(held.from(25), [seg(0, 6)]);
        assert!(HeldSegments::default().from(0).is_empty());
    }
}
