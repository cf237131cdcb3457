//! `Transfer-Encoding: chunked` de-framing (RFC 9112 §7.1) as a streaming state machine.
//!
//! The decoder is fed bytes in pieces of any size and appends chunk data to an output
//! vector; it keeps no input buffer, so chunk extensions of any length cost no memory,
//! and the trailer section (the header fields after the last chunk) is kept only when
//! asked, up to a limit ([`ChunkedDecoder::keeping_trailer`]). Bare LF line ends are
//! accepted alongside CRLF, as real clients and servers do. Used by `decode` to undo
//! chunking on bodies that a source (pcap) hands over still framed, and by the HTTP/1
//! parser, which keeps the trailer section for the message's header fields.

/// How far a feed got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// All input consumed; the last chunk has not been seen yet.
    NeedMore,
    /// The message ended (last chunk and trailers seen) after `consumed` bytes of the
    /// input given to this feed; the rest does not belong to the body.
    Done { consumed: usize },
}

/// The framing is broken at byte `consumed` of the input given to this feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed {
    pub consumed: usize,
}

/// A chunk size line longer than this many hex digits would overflow `u64`.
const MAX_SIZE_DIGITS: u8 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a size line; no digit seen yet.
    SizeStart,
    /// Reading hex digits of the size.
    Size {
        digits: u8,
    },
    /// Skipping a chunk extension (or whitespace) up to the line end.
    Ext,
    /// Seen CR at the end of a size line.
    SizeCr,
    /// Copying chunk data.
    Data,
    /// Expecting the CR or LF that ends chunk data.
    DataEnd,
    /// Seen CR after chunk data.
    DataCr,
    /// At the start of a trailer line (after the last chunk).
    TrailerStart,
    /// Inside a trailer field line.
    Trailer,
    /// Seen CR inside a trailer field line.
    TrailerCr,
    /// Seen CR at the start of a trailer line: the end of the message.
    EndCr,
    Done,
    Failed,
}

/// Streaming de-chunker; see the module doc.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    /// Size being parsed, then data bytes left in the current chunk.
    remaining: u64,
    /// A chunk size line was completed: the input really is chunked.
    sized: bool,
    /// The trailer section's field lines (line ends included) as far as kept.
    trailer: Vec<u8>,
    /// Most trailer bytes kept (0: none).
    trailer_limit: usize,
    /// Trailer bytes past the limit were passed over.
    trailer_cut: bool,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    /// A decoder at the start of a chunked body.
    pub fn new() -> Self {
        ChunkedDecoder {
            state: State::SizeStart,
            remaining: 0,
            sized: false,
            trailer: Vec::new(),
            trailer_limit: 0,
            trailer_cut: false,
        }
    }

    /// The same decoder, keeping up to `limit` bytes of the trailer section
    /// ([`ChunkedDecoder::trailer_section`]).
    pub fn keeping_trailer(mut self, limit: usize) -> Self {
        self.trailer_limit = limit;
        self
    }

    /// The trailer section's field lines kept so far, each with its line end; whole
    /// once the feed said `Done`, unless [`ChunkedDecoder::trailer_cut`].
    pub fn trailer_section(&self) -> &[u8] {
        &self.trailer
    }

    /// Whether trailer bytes past the limit were passed over (never when none are
    /// kept, nor after [`ChunkedDecoder::give_up_trailer`]: its caller knows why).
    pub fn trailer_cut(&self) -> bool {
        self.trailer_cut
    }

    /// Memory the kept trailer bytes hold.
    pub fn trailer_held(&self) -> usize {
        self.trailer.capacity()
    }

    /// Drops the trailer bytes kept and keeps no more (the caller's memory budget has
    /// no room for them).
    pub fn give_up_trailer(&mut self) {
        self.trailer = Vec::new();
        self.trailer_limit = 0;
        self.trailer_cut = false;
    }

    /// A byte of a trailer field line.
    fn keep_trailer_byte(&mut self, b: u8) {
        if self.trailer.len() < self.trailer_limit {
            self.trailer.push(b);
        } else if self.trailer_limit > 0 {
            self.trailer_cut = true;
        }
    }

    /// Whether at least one chunk size line was parsed: the input really is chunked.
    pub fn saw_chunk(&self) -> bool {
        self.sized
    }

    /// Consumes `input`, appending de-framed data to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<Status, Malformed> {
        let mut i = 0;
        while i < input.len() {
            if self.state == State::Data {
                let take = usize::try_from(self.remaining)
                    .unwrap_or(usize::MAX)
                    .min(input.len() - i);
                out.extend_from_slice(&input[i..i + take]);
                i += take;
                self.remaining -= take as u64;
                if self.remaining == 0 {
                    self.state = State::DataEnd;
                }
                continue;
            }
            let b = input[i];
            self.state = match self.step(b) {
                Some(s) => s,
                None => {
                    self.state = State::Failed;
                    return Err(Malformed { consumed: i });
                }
            };
            i += 1;
            if self.state == State::Done {
                return Ok(Status::Done { consumed: i });
            }
        }
        match self.state {
            State::Done => Ok(Status::Done { consumed: 0 }),
            State::Failed => Err(Malformed { consumed: 0 }),
            _ => Ok(Status::NeedMore),
        }
    }

    /// The state after byte `b` (outside chunk data), or `None` when malformed.
    fn step(&mut self, b: u8) -> Option<State> {
        Some(match self.state {
            State::SizeStart | State::Size { .. } => {
                let digits = match self.state {
                    State::Size { digits } => digits,
                    _ => 0,
                };
                if let Some(v) = hex_value(b) {
                    if digits >= MAX_SIZE_DIGITS {
                        return None;
                    }
                    self.remaining = (self.remaining << 4) | u64::from(v);
                    State::Size { digits: digits + 1 }
                } else if digits == 0 {
                    return None;
                } else {
                    match b {
                        b';' | b' ' | b'\t' => State::Ext,
                        b'\r' => State::SizeCr,
                        b'\n' => self.end_size_line(),
                        _ => return None,
                    }
                }
            }
            State::Ext => match b {
                b'\r' => State::SizeCr,
                b'\n' => self.end_size_line(),
                _ => State::Ext,
            },
            State::SizeCr => match b {
                b'\n' => self.end_size_line(),
                _ => return None,
            },
            State::DataEnd => match b {
                b'\r' => State::DataCr,
                b'\n' => self.next_chunk(),
                _ => return None,
            },
            State::DataCr => match b {
                b'\n' => self.next_chunk(),
                _ => return None,
            },
            State::TrailerStart => match b {
                b'\r' => State::EndCr,
                b'\n' => State::Done,
                _ => {
                    self.keep_trailer_byte(b);
                    State::Trailer
                }
            },
            State::Trailer => {
                self.keep_trailer_byte(b);
                match b {
                    b'\r' => State::TrailerCr,
                    b'\n' => State::TrailerStart,
                    _ => State::Trailer,
                }
            }
            State::TrailerCr => match b {
                b'\n' => {
                    self.keep_trailer_byte(b);
                    State::TrailerStart
                }
                _ => return None,
            },
            State::EndCr => match b {
                b'\n' => State::Done,
                _ => return None,
            },
            State::Data | State::Done | State::Failed => return None,
        })
    }

    fn end_size_line(&mut self) -> State {
        self.sized = true;
        if self.remaining == 0 {
            State::TrailerStart
        } else {
            State::Data
        }
    }

    fn next_chunk(&mut self) -> State {
        self.remaining = 0;
        State::SizeStart
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Result of de-chunking a whole body at once.
#[derive(Debug, PartialEq, Eq)]
pub enum Dechunked {
    /// The body does not start with a chunk size line: it is not chunked (already
    /// de-framed by the source).
    NotChunked,
    /// Complete framing; the data.
    Complete(Vec<u8>),
    /// The body ended before the last chunk; the data seen.
    Truncated(Vec<u8>),
    /// Framing broke at byte `at` of the body; the data before it.
    Malformed { data: Vec<u8>, at: usize },
}

/// De-chunks a complete body.
pub fn dechunk(body: &[u8]) -> Dechunked {
    let mut dec = ChunkedDecoder::new();
    let mut out = Vec::with_capacity(body.len());
    match dec.feed(body, &mut out) {
        Ok(Status::Done { .. }) => Dechunked::Complete(out),
        Ok(Status::NeedMore) if dec.saw_chunk() => Dechunked::Truncated(out),
        Ok(Status::NeedMore) => Dechunked::NotChunked,
        Err(Malformed { consumed }) if dec.saw_chunk() => Dechunked::Malformed {
            data: out,
            at: consumed,
        },
        Err(_) => Dechunked::NotChunked,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn feed_all(pieces: &[&[u8]]) -> (Vec<u8>, Result<Status, Malformed>) {
        let mut dec = ChunkedDecoder::new();
        let mut out = Vec::new();
        let mut last = Ok(Status::NeedMore);
        for p in pieces {
            last = dec.feed(p, &mut out);
            if !matches!(last, Ok(Status::NeedMore)) {
                break;
            }
        }
        (out, last)
    }

    #[test]
    fn simple_chunks() {
        let body = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        assert_eq!(dechunk(body), Dechunked::Complete(b"hello world".to_vec()));
    }

    #[test]
    fn extensions_trailers_and_bare_lf() {
        let body = b"5;name=\"x;y\"\r\nhello\r\nA ; ext\nabcdefghij\n0;last\r\nX-Trailer: 1\r\nOther: 2\n\r\nGET /next";
        let mut dec = ChunkedDecoder::new();
        let mut out = Vec::new();
        let st = dec.feed(body, &mut out).unwrap();
        assert_eq!(out, b"helloabcdefghij");
        let consumed = match st {
            Status::Done { consumed } => consumed,
            other => panic!("{other:?}"),
        };
        assert_eq!(&body[consumed..], b"GET /next");
        // Not asked to keep it: the trailer section costs nothing.
        assert_eq!((dec.trailer_section(), dec.trailer_held()), (&b""[..], 0));
        assert!(!dec.trailer_cut());
    }

    #[test]
    fn the_trailer_section_is_kept_when_asked_in_pieces_of_any_size() {
        let body = b"5\r\nhello\r\n0\r\nX-Device: 490154203237518\r\nOther: 2\n\r\nGET /next";
        let fields = b"X-Device: 490154203237518\r\nOther: 2\n";
        for piece in [1, 2, 3, 7, body.len()] {
            let mut dec = ChunkedDecoder::new().keeping_trailer(64);
            let mut out = Vec::new();
            let mut done = None;
            for (n, p) in body.chunks(piece).enumerate() {
                if let Status::Done { consumed } = dec.feed(p, &mut out).unwrap() {
                    done = Some(n * piece + consumed);
                    break;
                }
            }
            assert_eq!(done, Some(body.len() - b"GET /next".len()), "{piece}");
            assert_eq!(dec.trailer_section(), fields, "{piece}");
            assert!(!dec.trailer_cut());
        }
        // No trailer fields: nothing kept, nothing cut.
        let mut dec = ChunkedDecoder::new().keeping_trailer(64);
        dec.feed(b"0\r\n\r\n", &mut Vec::new()).unwrap();
        assert_eq!(
            (dec.trailer_section(), dec.trailer_cut()),
            (&b""[..], false)
        );
        // Past the limit: the first bytes kept, the section marked cut.
        let mut dec = ChunkedDecoder::new().keeping_trailer(10);
        let st = dec.feed(body, &mut Vec::new()).unwrap();
        assert!(matches!(st, Status::Done { .. }));
        assert_eq!(dec.trailer_section(), &fields[..10]);
        assert!(dec.trailer_cut());
        // Given up halfway: nothing held, nothing more kept.
        let mut dec = ChunkedDecoder::new().keeping_trailer(64);
        dec.feed(b"0\r\nX-A: 1\r\n", &mut Vec::new()).unwrap();
        assert_eq!(dec.trailer_section(), b"X-A: 1\r\n");
        dec.give_up_trailer();
        dec.feed(b"X-B: 2\r\n\r\n", &mut Vec::new()).unwrap();
        assert_eq!((dec.trailer_section(), dec.trailer_held()), (&b""[..], 0));
        assert!(!dec.trailer_cut());
    }

    #[test]
    fn uppercase_hex_and_leading_zeros() {
        let body = b"000A\r\n0123456789\r\n0000\r\n\r\n";
        assert_eq!(dechunk(body), Dechunked::Complete(b"0123456789".to_vec()));
    }

    #[test]
    fn not_chunked_and_malformed() {
        assert_eq!(dechunk(b"{\"a\":1}"), Dechunked::NotChunked);
        assert_eq!(dechunk(b""), Dechunked::NotChunked);
        // Size says 3 but data runs on without CRLF.
        assert_eq!(
            dechunk(b"3\r\nabcdef\r\n0\r\n\r\n"),
            Dechunked::Malformed {
                data: b"abc".to_vec(),
                at: 6
            }
        );
        // Missing terminating chunk.
        assert_eq!(
            dechunk(b"3\r\nabc\r\n"),
            Dechunked::Truncated(b"abc".to_vec())
        );
        // Size overflow.
        assert!(matches!(
            dechunk(b"1\r\na\r\n11111111111111111\r\n"),
            Dechunked::Malformed { .. }
        ));
        // A CR not followed by LF.
        assert!(matches!(dechunk(b"1\r\na\rx"), Dechunked::Malformed { .. }));
    }

    #[test]
    fn huge_declared_size_costs_nothing() {
        assert_eq!(
            dechunk(b"ffffffffffffffff\r\nabc"),
            Dechunked::Truncated(b"abc".to_vec())
        );
    }

    fn chunked_body() -> impl Strategy<Value = Vec<u8>> {
        (
            prop::collection::vec(prop::collection::vec(any::<u8>(), 1..40), 0..6),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(chunks, lf_only, trailer)| {
                let nl: &[u8] = if lf_only { b"\n" } else { b"\r\n" };
                let mut b = Vec::new();
                for c in &chunks {
                    b.extend_from_slice(format!("{:x};e=1", c.len()).as_bytes());
                    b.extend_from_slice(nl);
                    b.extend_from_slice(c);
                    b.extend_from_slice(nl);
                }
                b.extend_from_slice(b"0");
                b.extend_from_slice(nl);
                if trailer {
                    b.extend_from_slice(b"T: v");
                    b.extend_from_slice(nl);
                }
                b.extend_from_slice(nl);
                b
            })
    }

    proptest! {
        /// STYLE.md #14: any split of the input gives the same output and outcome.
        #[test]
        fn split_invariance(body in chunked_body(), cuts in prop::collection::vec(any::<prop::sample::Index>(), 1..4)) {
            let (whole, whole_st) = feed_all(&[&body]);
            prop_assert!(matches!(whole_st, Ok(Status::Done { .. })), "whole: {:?}", whole_st);
            let mut offs: Vec<usize> = cuts.iter().map(|c| c.index(body.len() + 1)).collect();
            offs.sort_unstable();
            let mut pieces: Vec<&[u8]> = Vec::new();
            let mut prev = 0;
            for o in offs {
                pieces.push(&body[prev..o]);
                prev = o;
            }
            pieces.push(&body[prev..]);
            let (split, split_st) = feed_all(&pieces);
            prop_assert_eq!(whole, split);
            prop_assert!(matches!(split_st, Ok(Status::Done { .. })), "split: {:?}", split_st);
        }

        /// Every single split point, on arbitrary (mostly malformed) input.
        #[test]
        fn split_invariance_arbitrary(body in prop::collection::vec(prop::sample::select(b"0123456789abcdefXx;\r\n ".to_vec()), 0..60), cut in any::<prop::sample::Index>()) {
            let (whole, whole_st) = feed_all(&[&body]);
            let at = cut.index(body.len() + 1);
            let (split, split_st) = feed_all(&[&body[..at], &body[at..]]);
            prop_assert_eq!(whole, split);
            prop_assert_eq!(whole_st.is_ok(), split_st.is_ok());
        }
    }
}
