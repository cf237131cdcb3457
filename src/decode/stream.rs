//! `Content-Encoding` decoding of a body that arrives in pieces and is never held
//! whole: a request body's bytes past the analysis cap (`pii::stream`), decoded as
//! they pass so that the search there sees what the app compressed rather than the
//! compressed bytes.
//!
//! A [`PushDecoder`] pushes each piece through a streaming decoder whose output goes
//! to a writer as it is produced, a decoder buffer at a time (32 KiB for deflate,
//! [`BROTLI_BUFFER`] for brotli, [`zstd::WRITE_PIECE`] for zstd): its memory is the
//! decoder's state and that buffer, whatever the ratio (for zstd the frame's window
//! as well, and one block). The writer bounds the work: an error from it stops the
//! decoder (the caller's limit on decoded bytes).
//!
//! It decodes what [`content::decode`] decodes from the same first bytes, and takes
//! the same bodies as already decoded ([`content::passes_through`]): gzip (several
//! members), deflate (zlib-wrapped when the body starts with a zlib header that
//! decodes, else raw, as `content::decode` falls back), br up to a 4 MiB window
//! ([`MAX_BROTLI_WINDOW_BITS`]), one zstd frame up to a 4 MiB window
//! ([`MAX_ZSTD_WINDOW`]). zstd's decoder holds the last window's worth of output
//! back until the frame ends ([`PushDecoder::held_back_at_most`]).

use std::io::{self, Read, Write};

use super::content::{self, Coding};
use super::inflate::{with_inflater, Wrapping};
use super::zstd::{self, ZstdBlocks};

/// Brotli's output buffer: the most it hands the writer at once.
pub const BROTLI_BUFFER: usize = 32 * 1024;

/// Largest brotli window decoded here, as log2 of its size: 22 (4 MiB) is the
/// encoders' default; RFC 7932 allows up to 24 (16 MiB), which the decoder would
/// hold for as long as the body lasts.
pub const MAX_BROTLI_WINDOW_BITS: u8 = 22;

/// Largest zstd window decoded here: as for brotli, the decoder holds it for as long
/// as the body lasts. 4 MiB covers the `zstd` tool up to level 15 on large inputs
/// (levels 1 and 3 use 512 KiB and 2 MiB, 19 uses 8 MiB); the analysis accepts up to
/// [`zstd::MAX_WINDOW`].
pub const MAX_ZSTD_WINDOW: u64 = 4 << 20;

/// A streaming decoder of one content coding, writing what it decodes to `W`.
pub struct PushDecoder<W: Write> {
    inner: Inner<Counted<W>>,
    /// The stream ended (bytes after its end are ignored).
    ended: bool,
}

enum Inner<W: Write> {
    Gzip(flate2::write::MultiGzDecoder<W>),
    Zlib(flate2::write::ZlibDecoder<W>),
    Deflate(flate2::write::DeflateDecoder<W>),
    // Boxed: its state is several KB, the others are a pointer or two.
    Brotli(Box<brotli_decompressor::DecompressorWriter<W>>),
    Zstd(ZstdBlocks<W>),
}

/// The writer, and how many bytes it took.
struct Counted<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes = self.bytes.saturating_add(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write> PushDecoder<W> {
    /// The decoder of a body in `coding` that starts with `head` (the first bytes that
    /// will be pushed, as many as are at hand), writing to `out`; `None` when
    /// `content::decode` would take such a body as already decoded, for br declaring a
    /// window over [`MAX_BROTLI_WINDOW_BITS`] and for zstd declaring one over
    /// [`MAX_ZSTD_WINDOW`].
    pub fn new(coding: Coding, head: &[u8], out: W) -> Option<PushDecoder<W>> {
        if content::passes_through(coding, head) {
            return None;
        }
        let out = Counted {
            inner: out,
            bytes: 0,
        };
        let inner = match coding {
            Coding::Gzip => Inner::Gzip(flate2::write::MultiGzDecoder::new(out)),
            Coding::Deflate if content::is_zlib(head) && zlib_yields_output(head) => {
                Inner::Zlib(flate2::write::ZlibDecoder::new(out))
            }
            Coding::Deflate => Inner::Deflate(flate2::write::DeflateDecoder::new(out)),
            Coding::Brotli
                if brotli_window_bits(head).is_some_and(|w| w <= MAX_BROTLI_WINDOW_BITS) =>
            {
                Inner::Brotli(Box::new(brotli_decompressor::DecompressorWriter::new(
                    out,
                    BROTLI_BUFFER,
                )))
            }
            Coding::Brotli => return None,
            Coding::Zstd if zstd::window_size(head).is_none_or(|w| w <= MAX_ZSTD_WINDOW) => {
                Inner::Zstd(ZstdBlocks::new(out, MAX_ZSTD_WINDOW))
            }
            Coding::Zstd => return None,
        };
        Some(PushDecoder {
            inner,
            ended: false,
        })
    }

    /// Decodes `input`, handing the writer everything it yields (nothing is held
    /// back for later, but for zstd's window). An error is the writer's or a corrupt
    /// stream's; the decoder must not be pushed to again after one. Bytes after the
    /// end of the stream are ignored ([`PushDecoder::ended`]).
    pub fn push(&mut self, mut input: &[u8]) -> io::Result<()> {
        if let Inner::Zstd(d) = &mut self.inner {
            // Whole blocks only; it keeps an incomplete one's bytes itself.
            let pushed = d.push(input);
            self.ended = d.ended();
            return pushed;
        }
        while !input.is_empty() && !self.ended {
            let n = self.writer().write(input)?;
            if n == 0 {
                // Nothing taken: the stream is complete.
                self.ended = true;
            }
            input = input.get(n..).unwrap_or_default();
        }
        // flate2's decoders keep their last output in their buffer until the next
        // write: out with it now, so the writer has seen all there is.
        self.writer().flush()?;
        if let Inner::Brotli(d) = &mut self.inner {
            // brotli-decompressor's writer hands out one buffer of what its ring buffer
            // holds per call once the input is used up; each further (empty) write
            // hands out the next, until there is none.
            loop {
                let before = d.get_ref().bytes;
                // No input to take: what counts is the output it hands the writer.
                let _taken = d.write(&[])?;
                if d.get_ref().bytes == before {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Called once the body has ended: `Err` when its stream did not (it stopped
    /// short, or its trailer's checksum or length is wrong). Output still held goes to
    /// the writer first. The decoder must not be pushed to again.
    pub fn finish(&mut self) -> io::Result<()> {
        if self.ended {
            return Ok(());
        }
        self.ended = true;
        match &mut self.inner {
            Inner::Gzip(d) => d.try_finish(),
            Inner::Zlib(d) => d.try_finish(),
            Inner::Deflate(d) => d.try_finish(),
            Inner::Brotli(d) => d.close(),
            Inner::Zstd(d) => d.finish(),
        }
    }

    /// Whether the stream has ended.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Decoded bytes not yet handed to the writer, at most: zstd's window until its
    /// frame ends, nothing for the other codings.
    pub fn held_back_at_most(&self) -> u64 {
        match &self.inner {
            Inner::Zstd(d) => d.held_back_at_most(),
            _ => 0,
        }
    }

    /// The writer the output goes to.
    pub fn output(&self) -> &W {
        let counted = match &self.inner {
            Inner::Gzip(d) => d.get_ref(),
            Inner::Zlib(d) => d.get_ref(),
            Inner::Deflate(d) => d.get_ref(),
            Inner::Brotli(d) => d.get_ref(),
            Inner::Zstd(d) => d.get_ref(),
        };
        &counted.inner
    }

    /// The writer the output goes to.
    pub fn output_mut(&mut self) -> &mut W {
        let counted = match &mut self.inner {
            Inner::Gzip(d) => d.get_mut(),
            Inner::Zlib(d) => d.get_mut(),
            Inner::Deflate(d) => d.get_mut(),
            Inner::Brotli(d) => d.get_mut(),
            Inner::Zstd(d) => d.get_mut(),
        };
        &mut counted.inner
    }

    fn writer(&mut self) -> &mut dyn Write {
        match &mut self.inner {
            Inner::Gzip(d) => d,
            Inner::Zlib(d) => d,
            Inner::Deflate(d) => d,
            Inner::Brotli(d) => &mut **d,
            Inner::Zstd(d) => d,
        }
    }
}

/// The window size a brotli stream declares in its first bits (WBITS, RFC 7932
/// §9.1), 10 to 24; `None` for the large-window extension's mark, or no byte.
fn brotli_window_bits(head: &[u8]) -> Option<u8> {
    let b = *head.first()?;
    if b & 1 == 0 {
        return Some(16);
    }
    let n = (b >> 1) & 7;
    if n != 0 {
        return Some(17 + n);
    }
    match (b >> 4) & 7 {
        0 => Some(17),
        // Large window brotli (not RFC 7932): not decoded here.
        1 => None,
        m => Some(8 + m),
    }
}

/// Whether `head`, read as zlib, yields a first byte: `content::decode` falls back to
/// raw deflate when the zlib attempt fails before any output (a raw stream can start
/// with bytes that pass the zlib header check).
fn zlib_yields_output(head: &[u8]) -> bool {
    with_inflater(Wrapping::Zlib, head, |r| {
        matches!(r.read(&mut [0u8; 1]), Ok(1))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::content::tests::{
        brotli, gzip, raw_deflate, zlib, zstd as zstd_enc, zstd_raw, zstd_rle_bomb,
    };
    use crate::decode::content::{decode, Decoded};

    /// A writer that keeps what it is given, refusing past `limit` bytes.
    struct Collect {
        got: Vec<u8>,
        writes: usize,
        largest: usize,
        limit: usize,
    }

    impl Write for Collect {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.got.len() + buf.len() > self.limit {
                return Err(io::Error::other("limit"));
            }
            self.writes += 1;
            self.largest = self.largest.max(buf.len());
            self.got.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn collect(limit: usize) -> Collect {
        Collect {
            got: Vec::new(),
            writes: 0,
            largest: 0,
            limit,
        }
    }

    /// JSON-like text with some variety, `n` bytes or a little more.
    fn text(n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0u64;
        while out.len() < n {
            out.extend_from_slice(
                format!(
                    "{{\"event\":\"e{}\",\"seq\":{i},\"v\":{}}},",
                    i % 97,
                    i * 7919 % 10007
                )
                .as_bytes(),
            );
            i += 1;
        }
        out
    }

    fn pushed(coding: Coding, body: &[u8], piece: usize) -> (Vec<u8>, bool) {
        let mut d = PushDecoder::new(coding, &body[..body.len().min(64)], collect(usize::MAX))
            .expect("a decoder");
        for p in body.chunks(piece) {
            d.push(p).expect("decodes");
            // Everything the pieces so far yield has reached the writer.
        }
        let ended = d.ended();
        (std::mem::take(&mut d.output_mut().got), ended)
    }

    #[test]
    fn every_coding_decodes_as_content_decode_does_whatever_the_pieces() {
        let plain = text(300_000);
        let cases = [
            (Coding::Gzip, gzip(&plain)),
            (Coding::Deflate, zlib(&plain)),
            (Coding::Deflate, raw_deflate(&plain)),
            (Coding::Brotli, brotli(&plain)),
            (Coding::Zstd, zstd_enc(&plain)),
            (Coding::Zstd, zstd_raw(&plain)),
        ];
        for (coding, body) in cases {
            let want = match decode(coding, &body, usize::MAX) {
                Decoded::Complete(v) => v,
                other => panic!("{coding:?}: {other:?}"),
            };
            assert_eq!(want, plain);
            for piece in [1, 7, 1000, 65_536, body.len()] {
                let (got, ended) = pushed(coding, &body, piece);
                assert!(got == plain, "{coding:?} in pieces of {piece}");
                // flate2's and brotli's decoders know the end only from a byte after
                // it; zstd's from its frame.
                assert_eq!(ended, coding == Coding::Zstd, "{coding:?}");
            }
        }
    }

    #[test]
    fn several_gzip_members_are_one_body() {
        let mut body = gzip(b"first member, ");
        body.extend_from_slice(&gzip(b"second member"));
        let (got, _) = pushed(Coding::Gzip, &body, 5);
        assert_eq!(got, b"first member, second member");
    }

    #[test]
    fn a_cut_stream_yields_what_its_bytes_hold_at_each_push() {
        // What the analysis decodes from a kept prefix is what the decoder has handed
        // out once that prefix is pushed: the search past the cap starts there.
        let plain = text(200_000);
        for (coding, body) in [
            (Coding::Gzip, gzip(&plain)),
            (Coding::Brotli, brotli(&plain)),
            (Coding::Zstd, zstd_enc(&plain)),
        ] {
            for cut in [100, 5_000, body.len() / 2] {
                let prefix = &body[..cut];
                let analysed = match decode(coding, prefix, usize::MAX) {
                    Decoded::Cut(partial) => partial,
                    Decoded::Complete(v) => v,
                    other => panic!("{other:?}"),
                };
                let mut d = PushDecoder::new(coding, prefix, collect(usize::MAX)).unwrap();
                d.push(prefix).unwrap();
                let got = &d.output_mut().got;
                assert!(
                    *got == analysed,
                    "{coding:?} cut at {cut}: {} decoded here, {} by the analysis",
                    got.len(),
                    analysed.len()
                );
                d.push(&body[cut..]).unwrap();
                assert!(d.output_mut().got == plain);
            }
        }
    }

    #[test]
    fn output_reaches_the_writer_a_buffer_at_a_time_and_its_refusal_stops_it() {
        // A bomb: 64 MiB of zeros in about 64 KB.
        let zeros = vec![0u8; 64 << 20];
        for (coding, body) in [
            (Coding::Gzip, gzip(&zeros)),
            (Coding::Brotli, brotli(&zeros)),
            (Coding::Zstd, zstd_rle_bomb(0, 512)),
        ] {
            assert!(body.len() < 200_000, "{}", body.len());
            let mut d = PushDecoder::new(coding, &body, collect(1 << 20)).unwrap();
            let err = d.push(&body).unwrap_err();
            assert_eq!(err.to_string(), "limit", "{coding:?}");
            let out = d.output_mut();
            assert!(out.largest <= 32 * 1024, "{coding:?}: {}", out.largest);
            assert!(out.got.len() <= 1 << 20 && out.got.len() > (1 << 20) - 64 * 1024);
        }
    }

    #[test]
    fn bytes_after_the_end_are_ignored_and_corrupt_streams_fail() {
        let mut body = zlib(b"the body");
        body.extend_from_slice(b"trailing junk");
        let mut d = PushDecoder::new(Coding::Deflate, &body, collect(usize::MAX)).unwrap();
        d.push(&body).unwrap();
        assert!(d.ended());
        d.push(b"more").unwrap();
        assert_eq!(d.output_mut().got, b"the body");

        // A wrong checksum fails at the end; so do a cut stream and a broken one.
        let plain = text(10_000);
        let good = gzip(&plain);
        let mut bad_crc = good.clone();
        let at = bad_crc.len() - 8;
        bad_crc[at] ^= 1;
        for (coding, body, cut) in [
            (Coding::Gzip, bad_crc, 0),
            (Coding::Gzip, good.clone(), 100),
            (Coding::Deflate, zlib(&plain), 100),
            (Coding::Brotli, brotli(&plain), 100),
            (Coding::Zstd, zstd_enc(&plain), 100),
        ] {
            let body = &body[..body.len() - cut];
            let mut d = PushDecoder::new(coding, body, collect(usize::MAX)).unwrap();
            d.push(body).unwrap();
            assert!(d.finish().is_err(), "{coding:?} cut by {cut}");
        }
        let mut d = PushDecoder::new(Coding::Gzip, &good, collect(usize::MAX)).unwrap();
        d.push(&good).unwrap();
        d.finish().unwrap();
        assert!(d.output_mut().got == plain);
        let mut broken = good.clone();
        broken[3] = 0xe0; // reserved header flags
        let mut d = PushDecoder::new(Coding::Gzip, &broken, collect(usize::MAX)).unwrap();
        assert!(d.push(&broken).is_err());
    }

    #[test]
    fn bodies_the_analysis_takes_as_decoded_and_large_windows_get_no_decoder() {
        let w = || collect(usize::MAX);
        assert!(PushDecoder::new(Coding::Gzip, b"{\"plain\":1}", w()).is_none());
        assert!(PushDecoder::new(Coding::Brotli, b"{\"plain\":1}", w()).is_none());
        assert!(PushDecoder::new(Coding::Deflate, b"a=1&b=2", w()).is_none());
        assert!(PushDecoder::new(Coding::Zstd, b"{\"plain\":1}", w()).is_none());
        // zstd with a window over 4 MiB (descriptor 0x61: 2^22 + 2^19); 4 MiB (0x60) is
        // decoded.
        let zstd = |wd: u8| [0x28, 0xb5, 0x2f, 0xfd, 0x00, wd, 0x01, 0x00, 0x00];
        assert!(PushDecoder::new(Coding::Zstd, &zstd(0x60), w()).is_some());
        assert!(PushDecoder::new(Coding::Zstd, &zstd(0x61), w()).is_none());
        // Brotli with a window over 4 MiB (the encoders' default lgwin 22 is
        // decoded, 24 is not).
        let big_window = |lgwin: u32| {
            let mut out = Vec::new();
            {
                let mut e = brotli::CompressorWriter::new(&mut out, 4096, 5, lgwin);
                e.write_all(&text(1000)).unwrap();
            }
            out
        };
        for (lgwin, decoded) in [
            (10, true),
            (16, true),
            (18, true),
            (22, true),
            (23, false),
            (24, false),
        ] {
            let body = big_window(lgwin);
            assert_eq!(brotli_window_bits(&body), Some(lgwin as u8));
            assert_eq!(
                PushDecoder::new(Coding::Brotli, &body, w()).is_some(),
                decoded,
                "lgwin {lgwin}"
            );
        }
        // A raw deflate stream whose first bytes pass the zlib check (a stored block
        // with set padding bits: `78 01`) is read raw, as `content::decode` falls
        // back to.
        let raw = [
            0x78, 0x01, 0x00, 0xfe, 0xff, b'A', 0x01, 0x00, 0x00, 0xff, 0xff,
        ];
        assert!(content::is_zlib(&raw));
        assert_eq!(
            decode(Coding::Deflate, &raw, 100),
            Decoded::Complete(b"A".to_vec())
        );
        let mut d = PushDecoder::new(Coding::Deflate, &raw, w()).unwrap();
        assert!(matches!(d.inner, Inner::Deflate(_)));
        d.push(&raw).unwrap();
        assert_eq!(d.output_mut().got, b"A");
    }
}
