//! zstd (RFC 8878) decoded one block at a time, for a whole body ([`content::decode`])
//! and for one arriving in pieces ([`super::stream::PushDecoder`]) alike, so that both
//! hand out the same bytes from the same input.
//!
//! A [`ZstdBlocks`] gathers the frame header, then each block (and the checksum after
//! the last), whole, before giving it to ruzstd's `FrameDecoder`: a block decodes to
//! at most 128 KiB (ruzstd ≥ 0.9 refuses more), so the memory is the frame's window
//! plus one block and one block's encoded bytes, whatever the pieces. What the window
//! no longer needs goes to the writer after every block, at most [`WRITE_PIECE`] at a
//! time; the last window's worth (the frame's window, at most what [`ZstdBlocks::new`]
//! allows) only once the frame ends. One
//! frame is decoded; bytes after it are ignored, as `content::decode` always did.
//!
//! [`content::decode`]: super::content::decode

use std::io::{self, Write};

use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};

use super::content::is_zstd;

/// Largest window accepted whatever else allows (`zstd -19` uses 8 MiB; RFC 9659 lets
/// a recipient of `Content-Encoding: zstd` refuse more). The decoder reserves the
/// whole window up front, so a 10-byte frame declaring a 100 MiB window would
/// otherwise cost 100 MiB.
pub const MAX_WINDOW: u64 = 8 << 20;

/// Most bytes handed to the writer in one call.
pub const WRITE_PIECE: usize = 32 * 1024;

/// Largest block content on the wire (RFC 8878 §3.1.1.2.3: `Block_Maximum_Size`).
const MAX_BLOCK: usize = 128 * 1024;

/// The window size a zstd frame header declares (RFC 8878 §3.1.1.1): from its
/// window descriptor, or its content size when the frame is a single segment.
pub fn window_size(data: &[u8]) -> Option<u64> {
    let fhd = *data.get(4)?;
    let single_segment = fhd & 0x20 != 0;
    if !single_segment {
        let wd = *data.get(5)?;
        let log = 10 + u32::from(wd >> 3);
        let base = 1u64 << log;
        return Some(base + (base / 8) * u64::from(wd & 7));
    }
    let dict_len = [0usize, 1, 2, 4][usize::from(fhd & 3)];
    let at = 5 + dict_len;
    let fcs = match fhd >> 6 {
        0 => u64::from(*data.get(at)?),
        1 => u64::from(u16::from_le_bytes(data.get(at..at + 2)?.try_into().ok()?)) + 256,
        2 => u64::from(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?)),
        _ => u64::from_le_bytes(data.get(at..at + 8)?.try_into().ok()?),
    };
    Some(fcs)
}

/// One zstd frame's decoder, fed any pieces, writing to `W`.
pub struct ZstdBlocks<W: Write> {
    frame: Box<FrameDecoder>,
    out: W,
    /// The start of the next unit (frame header, block, checksum) while it is
    /// incomplete: at most one block and its header and checksum.
    partial: Vec<u8>,
    /// What the frame header said, once it was read.
    header: Option<Header>,
    ended: bool,
}

#[derive(Clone, Copy)]
struct Header {
    window: u64,
    checksum: bool,
}

/// How long the unit starting at some bytes is.
enum UnitLen {
    /// Exactly this long.
    Is(usize),
    /// Not known before this many bytes are at hand.
    KnownFrom(usize),
}

impl<W: Write> ZstdBlocks<W> {
    /// The decoder of a frame declaring a window of at most `max_window` bytes (a
    /// larger one is an error at its header), writing to `out`.
    pub fn new(out: W, max_window: u64) -> Self {
        let mut frame = Box::new(FrameDecoder::new());
        frame.set_max_window_size(max_window);
        ZstdBlocks {
            frame,
            out,
            partial: Vec::new(),
            header: None,
            ended: false,
        }
    }

    /// Decodes every unit `input` completes, keeping an incomplete one's bytes for
    /// the next call. An error is a corrupt frame's or the writer's; after one the
    /// decoder must not be pushed to again. Bytes after the frame are ignored.
    pub fn push(&mut self, mut input: &[u8]) -> io::Result<()> {
        while !self.ended && !input.is_empty() {
            if self.partial.is_empty() {
                if let UnitLen::Is(n) = self.unit_len(input)? {
                    if let Some((unit, rest)) = input.split_at_checked(n) {
                        self.unit(unit)?;
                        input = rest;
                        continue;
                    }
                }
                // Shorter than a unit, which is at most a block: kept for later.
                self.partial.extend_from_slice(input);
                return Ok(());
            }
            let want = match self.unit_len(&self.partial)? {
                UnitLen::Is(n) | UnitLen::KnownFrom(n) => n,
            };
            let take = want.saturating_sub(self.partial.len()).min(input.len());
            let (taken, rest) = input.split_at(take);
            self.partial.extend_from_slice(taken);
            input = rest;
            if let UnitLen::Is(n) = self.unit_len(&self.partial)? {
                if self.partial.len() >= n {
                    let unit = std::mem::take(&mut self.partial);
                    let decoded = self.unit(&unit);
                    // The allocation is kept for the next incomplete unit.
                    self.partial = unit;
                    self.partial.clear();
                    decoded?;
                }
            }
        }
        Ok(())
    }

    /// Called once the body has ended: `Err` when the frame did not (the last window
    /// of output, which the decoder holds until then, is lost with it).
    pub fn finish(&mut self) -> io::Result<()> {
        if self.ended {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "frame cut short",
            ))
        }
    }

    /// Whether the frame has ended (everything decoded has reached the writer).
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Decoded bytes the decoder may hold back from the writer until the frame ends
    /// (its window), at most.
    pub fn held_back_at_most(&self) -> u64 {
        match self.header {
            Some(h) if !self.ended => h.window,
            _ => 0,
        }
    }

    pub fn get_ref(&self) -> &W {
        &self.out
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    /// The length of the unit that starts with `bytes`.
    fn unit_len(&self, bytes: &[u8]) -> io::Result<UnitLen> {
        let Some(header) = self.header else {
            if bytes.get(4).is_some_and(|fhd| fhd & 0x08 != 0) {
                return Err(corrupt("reserved frame header bit set"));
            }
            return Ok(frame_header_len(bytes).map_or(UnitLen::KnownFrom(5), UnitLen::Is));
        };
        let Some(h) = bytes.get(..3) else {
            return Ok(UnitLen::KnownFrom(3));
        };
        let h = u32::from(h[0]) | u32::from(h[1]) << 8 | u32::from(h[2]) << 16;
        let last = h & 1 != 0;
        let size = (h >> 3) as usize;
        let on_wire = match (h >> 1) & 3 {
            // RLE: one byte, repeated `size` times.
            1 => 1,
            3 => return Err(corrupt("reserved block type")),
            _ => size,
        };
        if size > MAX_BLOCK {
            return Err(corrupt("block larger than 128 KiB"));
        }
        let checksum = if last && header.checksum { 4 } else { 0 };
        Ok(UnitLen::Is(3 + on_wire + checksum))
    }

    /// Decodes one whole unit.
    fn unit(&mut self, unit: &[u8]) -> io::Result<()> {
        if self.header.is_none() {
            if !is_zstd(unit) {
                return Err(corrupt("no frame magic number"));
            }
            self.frame.init(unit).map_err(decoder_error)?;
            self.header = Some(Header {
                window: window_size(unit).unwrap_or(MAX_WINDOW),
                checksum: unit.get(4).is_some_and(|fhd| fhd & 4 != 0),
            });
            return Ok(());
        }
        self.frame
            .decode_blocks(unit, BlockDecodingStrategy::UptoBlocks(1))
            .map_err(decoder_error)?;
        let finished = self.frame.is_finished();
        self.frame.collect_to_writer(Pieces(&mut self.out))?;
        if finished {
            self.ended = true;
            let sent = self.frame.get_checksum_from_data();
            if sent.is_some() && sent != self.frame.get_calculated_checksum() {
                return Err(corrupt("content checksum mismatch"));
            }
        }
        Ok(())
    }
}

/// As flate2's writing decoders: all of `buf` is taken (bytes after the frame are
/// ignored) until the frame has ended, then nothing.
impl<W: Write> Write for ZstdBlocks<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.ended {
            return Ok(0);
        }
        self.push(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// The length of the frame header starting `bytes` (RFC 8878 §3.1.1.1), once its
/// descriptor byte is at hand.
fn frame_header_len(bytes: &[u8]) -> Option<usize> {
    let fhd = *bytes.get(4)?;
    let single_segment = fhd & 0x20 != 0;
    let window_descriptor = usize::from(!single_segment);
    let dict_id = [0, 1, 2, 4][usize::from(fhd & 3)];
    let content_size = match fhd >> 6 {
        0 => usize::from(single_segment),
        1 => 2,
        2 => 4,
        _ => 8,
    };
    Some(5 + window_descriptor + dict_id + content_size)
}

// The callers name the coding in their messages.
fn corrupt(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

fn decoder_error(e: ruzstd::decoding::errors::FrameDecoderError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// The writer, handed at most [`WRITE_PIECE`] bytes a call.
struct Pieces<'a, W>(&'a mut W);

impl<W: Write> Write for Pieces<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf.get(..WRITE_PIECE).unwrap_or(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::content::tests::{zstd, zstd_raw, zstd_rle_bomb, zstd_sequence_bomb};

    /// Keeps what it is given, refusing past `limit` bytes.
    #[derive(Default)]
    struct Collect {
        got: Vec<u8>,
        largest: usize,
        limit: Option<usize>,
    }

    impl Write for Collect {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.limit.is_some_and(|l| self.got.len() + buf.len() > l) {
                return Err(io::Error::other("limit"));
            }
            self.largest = self.largest.max(buf.len());
            self.got.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn numbers(n: u32) -> Vec<u8> {
        (0..n)
            .flat_map(|i| format!("{{\"n\":{}}},", i.wrapping_mul(2_654_435_761) >> 7).into_bytes())
            .collect()
    }

    fn decoder() -> ZstdBlocks<Collect> {
        ZstdBlocks::new(Collect::default(), MAX_WINDOW)
    }

    #[test]
    fn decodes_the_same_whatever_the_pieces() {
        let plain = numbers(40_000);
        for body in [zstd(&plain), zstd_raw(&plain)] {
            for piece in [1, 2, 7, 1000, 65_536, body.len()] {
                let mut d = decoder();
                let mut largest_partial = 0;
                for p in body.chunks(piece) {
                    assert!(!d.ended());
                    d.push(p).unwrap();
                    largest_partial = largest_partial.max(d.partial.capacity());
                }
                assert!(d.ended(), "pieces of {piece}");
                d.finish().unwrap();
                assert_eq!(d.held_back_at_most(), 0);
                let out = d.into_inner();
                assert!(out.got == plain, "pieces of {piece}");
                assert!(out.largest <= WRITE_PIECE);
                // An incomplete unit is at most a block, its header and a checksum.
                assert!(largest_partial <= 2 * (MAX_BLOCK + 7), "{largest_partial}");
            }
        }
    }

    #[test]
    fn output_waits_for_the_window_to_pass_and_comes_whole_at_the_end() {
        // 128 KiB window: what decodes past it reaches the writer block by block.
        let plain = numbers(60_000);
        let body = zstd_raw(&plain);
        let mut d = decoder();
        d.push(&body[..body.len() / 2]).unwrap();
        let out = d.get_mut().got.len();
        assert!(out > 0 && out <= body.len() / 2 - (128 << 10), "{out}");
        assert_eq!(d.held_back_at_most(), 128 << 10);
        // Cut short: an error, and the window held back is not handed out.
        assert!(d.finish().is_err());
        assert_eq!(d.get_mut().got.len(), out);
        d.push(&body[body.len() / 2..]).unwrap();
        d.finish().unwrap();
        assert!(d.into_inner().got == plain);
    }

    #[test]
    fn bytes_after_the_frame_are_ignored() {
        let mut body = zstd(b"the body");
        body.extend_from_slice(&zstd(b"a second frame"));
        body.extend_from_slice(b"junk");
        let mut d = decoder();
        d.push(&body).unwrap();
        assert!(d.ended());
        assert_eq!(d.write(b"more").unwrap(), 0);
        assert_eq!(d.into_inner().got, b"the body");
    }

    #[test]
    fn corrupt_frames_fail() {
        let plain = numbers(5_000);
        let good = zstd(&plain);
        let mut bad_checksum = good.clone();
        let last = bad_checksum.len() - 1;
        bad_checksum[last] ^= 1;
        let mut reserved_block = zstd_raw(&plain);
        reserved_block[6] |= 0b110;
        let mut big_block = zstd_raw(b"abc");
        // A raw block claiming 128 KiB and one byte.
        big_block[6..9].copy_from_slice(&(((128u32 << 10) + 1) << 3 | 1).to_le_bytes()[..3]);
        let mut skippable = good.clone();
        skippable[0] = 0x50;
        for (what, body) in [
            ("checksum", &bad_checksum),
            ("reserved block type", &reserved_block),
            ("block size", &big_block),
            ("magic", &skippable),
        ] {
            let mut d = decoder();
            let err = d.push(body).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{what}: {err}");
        }
        // The writer's refusal stops it too.
        let mut d = ZstdBlocks::new(
            Collect {
                limit: Some(1 << 20),
                ..Collect::default()
            },
            MAX_WINDOW,
        );
        assert_eq!(
            d.push(&zstd_rle_bomb(0, 64)).unwrap_err().to_string(),
            "limit"
        );
        assert!(d.get_mut().got.len() > (1 << 20) - WRITE_PIECE);
    }

    #[test]
    fn a_block_decoding_past_its_maximum_is_refused_whatever_the_pieces() {
        // 65 KB that would be 4.2 GB.
        let bomb = zstd_sequence_bomb();
        for piece in [1000, bomb.len()] {
            let mut d = decoder();
            let refused = bomb.chunks(piece).map(|p| d.push(p)).find(|r| r.is_err());
            let err = refused.expect("refused").unwrap_err();
            assert!(err.to_string().contains("TooManyBytesGenerated"), "{err}");
            assert!(d.get_mut().got.len() <= 8);
        }
    }

    #[test]
    fn windows_over_the_limit_are_refused_at_the_header() {
        // Window descriptor 0x70: 2^24 bytes.
        let frame = [0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x70, 0x01, 0x00, 0x00];
        assert_eq!(window_size(&frame), Some(16 << 20));
        let mut d = decoder();
        assert!(d.push(&frame).is_err());
        let mut d = ZstdBlocks::new(Collect::default(), 16 << 20);
        d.push(&frame).unwrap();
        assert!(d.ended());
    }

    #[test]
    fn frame_header_lengths() {
        // (descriptor, header length): window descriptor, dictionary id, content size.
        for (fhd, len) in [
            (0x00, 6),
            (0x20, 6),
            (0x01, 7),
            (0x03, 10),
            (0x40, 8),
            (0x60, 7),
            (0x80, 10),
            (0xc0, 14),
            (0xe3, 17),
        ] {
            let head = [0x28, 0xb5, 0x2f, 0xfd, fhd];
            assert_eq!(frame_header_len(&head), Some(len), "{fhd:#x}");
        }
        assert_eq!(frame_header_len(&[0x28, 0xb5, 0x2f, 0xfd]), None);
    }
}
