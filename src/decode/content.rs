//! `Content-Encoding` decoding (gzip, deflate, br, zstd), bounded against bombs.
//!
//! Every decoder is a streaming `Read` pulled in small steps (zstd: a block at a time,
//! at most 128 KiB, see [`super::zstd`]) into an output vector that never grows past
//! a cap: the smaller of `max_decoded_bytes` and `max_ratio × input` (but at least
//! [`SMALL_OUTPUT_BYTES`], so tiny bodies that compress extremely well still decode). Bodies that are already decoded although the
//! header names an encoding (HAR exports keep the header but store the decoded body)
//! are passed through untouched: for gzip and zstd when the magic number is missing,
//! for deflate and br (which have none) when the body reads as text. The pipeline
//! calls [`decode`] once per coding named in the headers, last applied first.
//!
//! Two ways a stream stops early are told apart from corruption: input that ends
//! inside the stream ([`Decoded::Cut`]: a body cut short by a cap or on the wire,
//! known exactly because the decoder asked for bytes past the end, or for zstd
//! because the frame's last block never came), and input that
//! decodes to next to nothing ([`Decoded::Starved`]: once the encoded bytes taken
//! run [`MAX_ENCODED_LEAD`] ahead of the output, which no output cap would see).

use std::cell::Cell;
use std::io::{self, Read, Write};

use super::inflate::{with_inflater, Wrapping};
use super::zstd::{self, ZstdBlocks};

/// Outputs up to this size are accepted whatever the ratio: a 200-byte gzip of 50 KiB
/// of JSON padding is ordinary, and that little memory cannot hurt.
pub const SMALL_OUTPUT_BYTES: usize = 1024 * 1024;

/// Most encoded bytes a decoding may take beyond its decoded output. Real compressed
/// data decodes to at least about its own size (stored blocks add 5 bytes in 64 KiB,
/// fixed Huffman codes at most an eighth), while a run of empty gzip members decodes
/// to nothing at a decoder set-up (2–7 µs) per 20 bytes, 3–10 MB/s of work that no
/// output cap sees: 8 MiB of them were a second of CPU. The search past the cap
/// (`pii::decoded_tail`) stops at the same lead.
pub const MAX_ENCODED_LEAD: u64 = 1 << 20;

/// Most the decoder reads at once.
const STEP: usize = 64 * 1024;
/// What the decoder reads first (then twice as much each time, up to [`STEP`]).
const FIRST_STEP: usize = 1024;

/// One content coding we can undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Gzip,
    /// `deflate`: zlib-wrapped as the RFC says, or raw deflate as some servers send.
    Deflate,
    Brotli,
    Zstd,
}

impl Coding {
    /// The coding named by a `Content-Encoding` token; `Ok(None)` for `identity`.
    pub fn parse(token: &str) -> Result<Option<Coding>, UnknownCoding> {
        let t = token.trim();
        if t.eq_ignore_ascii_case("gzip") || t.eq_ignore_ascii_case("x-gzip") {
            Ok(Some(Coding::Gzip))
        } else if t.eq_ignore_ascii_case("deflate") {
            Ok(Some(Coding::Deflate))
        } else if t.eq_ignore_ascii_case("br") {
            Ok(Some(Coding::Brotli))
        } else if t.eq_ignore_ascii_case("zstd") {
            Ok(Some(Coding::Zstd))
        } else if t.is_empty() || t.eq_ignore_ascii_case("identity") {
            Ok(None)
        } else {
            Err(UnknownCoding)
        }
    }

    /// The name used in layers and anomalies.
    pub fn name(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
            Coding::Brotli => "br",
            Coding::Zstd => "zstd",
        }
    }
}

/// The content codings a body was sent in, in the order the sender applied them (the
/// order its `Content-Encoding` lists them): one, or two such as `gzip, br` (gzipped,
/// then br-compressed). Shown as the codings joined by `+`, `gzip+br`, as a finding's
/// `body-beyond-cap:CODINGS:OFFSET` location names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Codings {
    first: Coding,
    then: Option<Coding>,
}

impl Codings {
    /// One coding.
    pub fn one(coding: Coding) -> Codings {
        Codings {
            first: coding,
            then: None,
        }
    }

    /// `first` applied, then `then`.
    pub fn two(first: Coding, then: Coding) -> Codings {
        Codings {
            first,
            then: Some(then),
        }
    }

    /// The codings to undo, outermost (the last applied) first.
    pub fn outermost_first(self) -> impl Iterator<Item = Coding> {
        self.then.into_iter().chain(std::iter::once(self.first))
    }

    /// More than one coding.
    pub fn is_chain(self) -> bool {
        self.then.is_some()
    }
}

impl std::fmt::Display for Codings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.first.name())?;
        if let Some(then) = self.then {
            write!(f, "+{}", then.name())?;
        }
        Ok(())
    }
}

/// A content coding we cannot undo (`compress`, a typo, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownCoding;

/// What decoding one coding produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// The input already looks decoded; use it as is.
    Passthrough,
    /// Fully decoded.
    Complete(Vec<u8>),
    /// The output cap was reached; the output up to it.
    Limited(Vec<u8>),
    /// The input ends inside the stream (the decoder asked for more than there is):
    /// the output of what there is.
    Cut(Vec<u8>),
    /// The encoded bytes taken ran [`MAX_ENCODED_LEAD`] ahead of the output: the
    /// output so far, and how many encoded bytes gave it.
    Starved { partial: Vec<u8>, taken: usize },
    /// The stream is corrupt; the output before the error (maybe empty) and the error.
    Failed { partial: Vec<u8>, error: String },
}

/// Whether `data` starts with a gzip member header.
pub fn is_gzip(data: &[u8]) -> bool {
    data.len() >= 3 && data[0] == 0x1f && data[1] == 0x8b && data[2] == 8
}

/// Whether `data` starts with a zlib header (deflate method, valid check bits).
pub fn is_zlib(data: &[u8]) -> bool {
    data.len() >= 2
        && data[0] & 0x0f == 8
        && data[0] >> 4 <= 7
        && (u16::from(data[0]) << 8 | u16::from(data[1])) % 31 == 0
}

/// Whether data guessed to be zlib (it passes [`is_zlib`]) certainly yields nothing
/// from [`decode`] with [`Coding::Deflate`]: both its zlib attempt and its raw deflate
/// fallback stop before the first output byte. Values that merely begin like a zlib
/// header (`"80…"`, `"x^…"`, one random base64 blob in a thousand) are common, and an
/// attempt costs the reset of a 40 KiB decoder state; these checks reject three in
/// four of them from the first bytes alone.
pub fn zlib_guess_fails(data: &[u8]) -> bool {
    // The zlib attempt: a preset dictionary (FDICT) is never at hand; after the header
    // a block of the reserved type 3, or a stored block whose length and its
    // complement disagree (or are cut off), ends the stream before any output.
    let zlib_fails = data.get(1).is_none_or(|flg| flg & 0x20 != 0)
        || data.get(2).is_none_or(|&b| match (b >> 1) & 3 {
            3 => true,
            0 => !stored_lengths_agree(data, 3),
            _ => false,
        });
    // Raw deflate over the same bytes: the header's first byte (compression method 8:
    // low bits 000) reads as a non-final stored block, with LEN and NLEN in bytes 1–4.
    zlib_fails && !stored_lengths_agree(data, 1)
}

/// Whether the stored block lengths at `at` (LEN, then NLEN, little-endian) are
/// complements, as a decoder checks before copying anything.
fn stored_lengths_agree(data: &[u8], at: usize) -> bool {
    match data.get(at..at + 4) {
        Some(&[a, b, c, d]) => u16::from_le_bytes([a, b]) == !u16::from_le_bytes([c, d]),
        _ => false,
    }
}

/// Whether `data` starts with a zstd frame magic number.
pub fn is_zstd(data: &[u8]) -> bool {
    data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
}

/// Bytes at the start of a body that [`looks_like_text`] reads, and so
/// [`passes_through`] (with the magic numbers, which are shorter).
pub const SNIFFED_BYTES: usize = 512;

/// Whether the start of `data` (its first [`SNIFFED_BYTES`]) reads as text (UTF-8
/// without control characters other than whitespace). Compressed streams essentially
/// never do, so a body that does is taken as already decoded.
pub fn looks_like_text(data: &[u8]) -> bool {
    if data.is_empty() {
        return true;
    }
    let head = &data[..data.len().min(SNIFFED_BYTES)];
    let valid = match std::str::from_utf8(head) {
        Ok(s) => s,
        // A multi-byte character cut by the window is fine.
        Err(e) if e.error_len().is_none() => {
            // Invariant: `valid_up_to` is a char boundary of `head`.
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or("")
        }
        Err(_) => return false,
    };
    !valid.is_empty()
        && valid
            .chars()
            .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'))
}

/// The output cap for `input_len` bytes of compressed input.
pub fn output_cap(input_len: usize, max_decoded: usize, max_ratio: usize) -> usize {
    input_len
        .saturating_mul(max_ratio)
        .max(SMALL_OUTPUT_BYTES)
        .min(max_decoded)
}

/// Whether a body said to be in `coding` and starting with `head` is taken as already
/// decoded ([`Decoded::Passthrough`]). Without its magic number a body cannot be gzip
/// or zstd: it was decoded already (HAR exports of binary bodies keep the header).
/// Formats without a magic number are only passed through when they read as text.
pub fn passes_through(coding: Coding, head: &[u8]) -> bool {
    let magic_ok = match coding {
        Coding::Gzip => is_gzip(head),
        Coding::Zstd => is_zstd(head),
        Coding::Deflate => is_zlib(head) || !looks_like_text(head),
        Coding::Brotli => !looks_like_text(head),
    };
    let has_magic = matches!(coding, Coding::Gzip | Coding::Zstd);
    !magic_ok && (has_magic || looks_like_text(head))
}

/// Undoes `coding` on `input`, producing at most `cap` bytes.
pub fn decode(coding: Coding, input: &[u8], cap: usize) -> Decoded {
    if passes_through(coding, input) {
        return Decoded::Passthrough;
    }
    // Read by gzip (a decoder set-up per member) and br, watched; see `Intake::watched`.
    let intake = Intake::new(true);
    let from = |data| Input {
        data,
        intake: &intake,
    };
    match coding {
        Coding::Gzip => pull(flate2::read::MultiGzDecoder::new(from(input)), cap, &intake),
        Coding::Deflate if is_zlib(input) => {
            match inflate(Wrapping::Zlib, input, cap) {
                // A raw deflate stream can start with bytes that pass the zlib check.
                Decoded::Failed { partial, .. } | Decoded::Cut(partial) if partial.is_empty() => {
                    inflate(Wrapping::Raw, input, cap)
                }
                other => other,
            }
        }
        Coding::Deflate => inflate(Wrapping::Raw, input, cap),
        Coding::Brotli => pull(
            brotli_decompressor::Decompressor::new(from(input), 4096),
            cap,
            &intake,
        ),
        Coding::Zstd => decode_zstd(input, cap),
    }
}

/// zstd, a block at a time ([`ZstdBlocks`], as the search past the cap decodes it):
/// windows up to [`zstd::MAX_WINDOW`], or up to `cap` when that is larger.
fn decode_zstd(input: &[u8], cap: usize) -> Decoded {
    let max_window = zstd::MAX_WINDOW.max(cap as u64);
    if zstd::window_size(input).is_some_and(|w| w > max_window) {
        return Decoded::Failed {
            partial: Vec::new(),
            error: "zstd window larger than the decoding limit".into(),
        };
    }
    let out = Capped {
        out: Vec::new(),
        cap,
        refused: false,
    };
    let mut d = ZstdBlocks::new(out, max_window);
    let pushed = d.push(input);
    let ended = d.ended();
    let Capped { out, refused, .. } = d.into_inner();
    match pushed {
        Err(_) if refused => Decoded::Limited(out),
        Err(e) => Decoded::Failed {
            partial: out,
            error: e.to_string(),
        },
        Ok(()) if ended => Decoded::Complete(out),
        Ok(()) => Decoded::Cut(out),
    }
}

/// Output kept up to `cap` bytes; a write past it is refused.
struct Capped {
    out: Vec<u8>,
    cap: usize,
    refused: bool,
}

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.cap - self.out.len();
        if room == 0 && !buf.is_empty() {
            self.refused = true;
            return Err(io::Error::other("output cap"));
        }
        let take = buf.get(..room).unwrap_or(buf);
        self.out.extend_from_slice(take);
        Ok(take.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Deflate (`wrapping`) of `input`, on the thread's decompressor. One stream with no
/// per-part set-up: a run of empty blocks inflates as fast as any other, so no lead
/// is watched; the inflater itself knows when the input ran out.
fn inflate(wrapping: Wrapping, input: &[u8], cap: usize) -> Decoded {
    with_inflater(wrapping, input, |r| {
        match pull(&mut *r, cap, &Intake::new(false)) {
            Decoded::Failed { partial, .. } if r.ran_out() => Decoded::Cut(partial),
            other => other,
        }
    })
}

/// What a decoder has taken of its input, shared between the input it reads and the
/// loop that pulls its output.
struct Intake {
    /// Whether reads are refused once the input taken runs [`MAX_ENCODED_LEAD`]
    /// ahead of the output. Not for one deflate stream (no per-part set-up to make a
    /// run of empty parts costly). zstd does not read through it ([`decode_zstd`]):
    /// its decoder holds back a window of output, up to 8 MiB, until the frame ends,
    /// so incompressible data would look starved.
    watched: bool,
    taken: Cell<usize>,
    /// Output pulled so far.
    produced: Cell<usize>,
    /// The decoder asked for bytes past the end of the input.
    ran_out: Cell<bool>,
    /// The input refused a read for running [`MAX_ENCODED_LEAD`] ahead of the output.
    starved: Cell<bool>,
}

impl Intake {
    fn new(watched: bool) -> Self {
        Intake {
            watched,
            taken: Cell::new(0),
            produced: Cell::new(0),
            ran_out: Cell::new(false),
            starved: Cell::new(false),
        }
    }
}

/// The encoded input as a decoder reads it, counted in its [`Intake`]. The lead is
/// checked here, not between reads of the output: a decoder's `read` goes on through
/// any number of empty gzip members until it has output or the input ends.
struct Input<'a> {
    data: &'a [u8],
    intake: &'a Intake,
}

impl Read for Input<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let intake = self.intake;
        if self.data.is_empty() {
            intake.ran_out.set(!buf.is_empty());
            return Ok(0);
        }
        let lead = intake.taken.get().saturating_sub(intake.produced.get());
        if intake.watched && lead as u64 > MAX_ENCODED_LEAD {
            intake.starved.set(true);
            return Err(io::Error::other("encoded bytes far ahead of decoded ones"));
        }
        let n = self.data.read(buf)?;
        intake.taken.set(intake.taken.get() + n);
        Ok(n)
    }
}

/// Reads `r` to its end or to `cap` bytes, whichever comes first; `intake` is what
/// `r` reads its input through.
fn pull<R: Read>(mut r: R, cap: usize, intake: &Intake) -> Decoded {
    let mut out: Vec<u8> = Vec::new();
    loop {
        let room = cap - out.len();
        if room == 0 {
            // Only a further byte tells a stream that ends exactly at the cap from a bomb.
            let mut probe = [0u8; 1];
            return match r.read(&mut probe) {
                Ok(0) => Decoded::Complete(out),
                _ => Decoded::Limited(out),
            };
        }
        let start = out.len();
        // Start small and double: most inflation attempts are on values that merely
        // begin like a zlib header and fail within a few bytes, and zeroing a whole
        // step for each of them was a visible cost.
        let want = room.min(STEP).min(start.max(FIRST_STEP));
        out.resize(start + want, 0);
        match r.read(&mut out[start..]) {
            Ok(0) => {
                out.truncate(start);
                return Decoded::Complete(out);
            }
            Ok(n) => {
                out.truncate(start + n);
                intake.produced.set(out.len());
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => out.truncate(start),
            Err(e) => {
                out.truncate(start);
                return if intake.starved.get() {
                    Decoded::Starved {
                        partial: out,
                        taken: intake.taken.get(),
                    }
                } else if intake.ran_out.get() {
                    Decoded::Cut(out)
                } else {
                    Decoded::Failed {
                        partial: out,
                        error: e.to_string(),
                    }
                };
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    pub(crate) fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    pub(crate) fn raw_deflate(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    pub(crate) fn brotli(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
            w.write_all(data).unwrap();
        }
        out
    }

    /// `data` compressed by ruzstd's encoder (about `zstd -1`: compressed blocks,
    /// a content checksum).
    pub(crate) fn zstd(data: &[u8]) -> Vec<u8> {
        ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
    }

    /// A zstd frame of raw blocks, with a 128 KiB window and no checksum.
    pub(crate) fn zstd_raw(data: &[u8]) -> Vec<u8> {
        // Frame header descriptor 0 (no size, no checksum), window 128 KiB.
        let mut out = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38];
        let chunks: Vec<&[u8]> = if data.is_empty() {
            vec![&[][..]]
        } else {
            data.chunks(128 * 1024).collect()
        };
        for (i, c) in chunks.iter().enumerate() {
            let last = u32::from(i + 1 == chunks.len());
            let h = last | ((c.len() as u32) << 3);
            out.extend_from_slice(&h.to_le_bytes()[..3]);
            out.extend_from_slice(c);
        }
        out
    }

    /// A zstd frame of `blocks` RLE blocks of 128 KiB of `byte` each.
    pub(crate) fn zstd_rle_bomb(byte: u8, blocks: usize) -> Vec<u8> {
        let mut out = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38];
        for i in 0..blocks {
            let last = u32::from(i + 1 == blocks);
            let h = last | (1 << 1) | ((128 * 1024) << 3);
            out.extend_from_slice(&h.to_le_bytes()[..3]);
            out.push(byte);
        }
        out
    }

    /// A zstd frame whose second block, 65 KB of a compressed block, holds 32 512
    /// matches of 131 074 bytes each (RLE-coded sequence tables, every extra bit
    /// set): 4.2 GB, far past the 128 KiB a block may decode to. The first block, 8
    /// raw bytes, gives the matches something to copy.
    pub(crate) fn zstd_sequence_bomb() -> Vec<u8> {
        const SEQUENCES: usize = 0x7f00;
        let mut out = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38];
        out.extend_from_slice(&(8u32 << 3).to_le_bytes()[..3]);
        out.extend_from_slice(b"AAAAAAAA");
        // No literals; the sequence count in its three-byte form (0x7f00 + 0).
        let mut block = vec![0x00, 0xff, 0x00, 0x00];
        // Literal lengths, offsets, match lengths all RLE: codes 0, 0 and 52 (65 539
        // plus 16 extra bits).
        block.extend_from_slice(&[0x54, 0, 0, 52]);
        block.resize(block.len() + 2 * SEQUENCES, 0xff);
        // The bit stream's end mark, read first.
        block.push(0x01);
        let header = 1 | (2 << 1) | ((block.len() as u32) << 3);
        out.extend_from_slice(&header.to_le_bytes()[..3]);
        out.extend_from_slice(&block);
        out
    }

    const TEXT: &[u8] =
        b"{\"device\":{\"imei\":\"490154203237518\"},\"email\":\"tester@example.org\"}";
    const CAP: usize = 32 << 20;

    #[test]
    fn each_coding_round_trips() {
        for (coding, enc) in [
            (Coding::Gzip, gzip(TEXT)),
            (Coding::Deflate, zlib(TEXT)),
            (Coding::Deflate, raw_deflate(TEXT)),
            (Coding::Brotli, brotli(TEXT)),
            (Coding::Zstd, zstd_raw(TEXT)),
        ] {
            assert_eq!(
                decode(coding, &enc, CAP),
                Decoded::Complete(TEXT.to_vec()),
                "{coding:?}"
            );
        }
    }

    #[test]
    fn concatenated_gzip_members() {
        let mut enc = gzip(b"first ");
        enc.extend(gzip(b"second"));
        assert_eq!(
            decode(Coding::Gzip, &enc, CAP),
            Decoded::Complete(b"first second".to_vec())
        );
    }

    #[test]
    fn already_decoded_text_passes_through() {
        for coding in [Coding::Gzip, Coding::Deflate, Coding::Brotli, Coding::Zstd] {
            assert_eq!(
                decode(coding, TEXT, CAP),
                Decoded::Passthrough,
                "{coding:?}"
            );
        }
        assert_eq!(
            decode(Coding::Gzip, "名字=张三&x=1".as_bytes(), CAP),
            Decoded::Passthrough
        );
        // Decoded binary (protobuf) under a gzip or zstd header.
        let proto = b"\n\x14tester@example.org\x10c\x18\x01\x88\xff";
        assert_eq!(decode(Coding::Gzip, proto, CAP), Decoded::Passthrough);
        assert_eq!(decode(Coding::Zstd, proto, CAP), Decoded::Passthrough);
    }

    #[test]
    fn corrupt_streams_fail_without_panic() {
        let mut enc = gzip(TEXT);
        let n = enc.len();
        enc[n / 2] ^= 0xff;
        enc[n / 2 + 1] ^= 0x55;
        assert!(matches!(
            decode(Coding::Gzip, &enc, CAP),
            Decoded::Failed { .. }
        ));
        // A gzip header that announces every optional field, then ends: cut, with
        // nothing decoded.
        let binary = [0x1f, 0x8b, 0x08, 0xff, 0x00, 0x01, 0x02];
        assert_eq!(decode(Coding::Gzip, &binary, CAP), Decoded::Cut(Vec::new()));
        let junk = [0x80u8, 0x81, 0xfe, 0x00, 0x13, 0x37, 0x99, 0xaa];
        let bad_zstd = [0x28, 0xb5, 0x2f, 0xfd, 0xff, 0xff, 0x13, 0x37];
        assert!(matches!(
            decode(Coding::Zstd, &bad_zstd, CAP),
            Decoded::Failed { .. }
        ));
        for coding in [Coding::Deflate, Coding::Brotli] {
            assert!(
                matches!(decode(coding, &junk, CAP), Decoded::Failed { .. }),
                "{coding:?}"
            );
        }
    }

    #[test]
    fn bombs_stop_at_the_cap() {
        // 100 MB of zeros in each format; the cap keeps memory bounded.
        // Gzip: 100 members of 1 MiB of zeros each (compressing 100 MB at once would be
        // slow in a debug build; a multi-member stream is the same bomb).
        let member = gzip(&vec![0u8; 1 << 20]);
        let gz = member.repeat(100);
        let cap = output_cap(gz.len(), 32 << 20, 100);
        assert!(cap < 32 << 20);
        match decode(Coding::Gzip, &gz, cap) {
            Decoded::Limited(out) => assert_eq!(out.len(), cap),
            other => panic!("{:?}", std::mem::discriminant(&other)),
        }
        let z = zstd_rle_bomb(0, 800);
        let cap = output_cap(z.len(), 32 << 20, 100);
        assert!(matches!(decode(Coding::Zstd, &z, cap), Decoded::Limited(o) if o.len() == cap));
    }

    #[test]
    fn a_zstd_block_decoding_past_its_maximum_is_corrupt() {
        // 65 KB that would decode to 4.2 GB in one block: ruzstd 0.7 built all of it
        // in memory before handing out a byte (a capture of a POST with a smaller one
        // cost `analyze` 6.3 GB of memory). Refused at the block's limit.
        let z = zstd_sequence_bomb();
        assert!(z.len() < 70 * 1024);
        match decode(Coding::Zstd, &z, 32 << 20) {
            Decoded::Failed { partial, error } => {
                assert!(partial.len() <= 8, "{}", partial.len());
                assert!(error.contains("TooManyBytesGenerated"), "{error}");
            }
            other => panic!("{:?}", std::mem::discriminant(&other)),
        }
    }

    /// Compressible, not trivial: about 1.2 MB of JSON-ish numbers.
    fn numbers() -> Vec<u8> {
        (0..200_000u32)
            .flat_map(|i| {
                format!("{{\"n\":{}}},", i.wrapping_mul(2_654_435_761) >> 12).into_bytes()
            })
            .collect()
    }

    #[test]
    fn a_stream_cut_short_is_told_from_a_corrupt_one() {
        let plain = numbers();
        for (coding, enc) in [
            (Coding::Gzip, gzip(&plain)),
            (Coding::Deflate, zlib(&plain)),
            (Coding::Deflate, raw_deflate(&plain)),
            (Coding::Brotli, brotli(&plain)),
            (Coding::Zstd, zstd_raw(&plain)),
        ] {
            for cut in [enc.len() / 3, enc.len() / 2, enc.len() - 1] {
                match decode(coding, &enc[..cut], CAP) {
                    // The part decoded so far is kept.
                    Decoded::Cut(partial) => {
                        assert!(!partial.is_empty(), "{coding:?} cut at {cut}");
                        assert!(plain.starts_with(&partial), "{coding:?} cut at {cut}");
                    }
                    other => panic!("{coding:?} cut at {cut}: {other:?}"),
                }
            }
        }
        // Bytes changed in the middle are corruption, not a cut, where the format
        // checks its data (gzip's CRC, zlib's Adler-32; zstd's raw blocks carry no
        // check, so their first block header is hit instead). Raw deflate and br
        // check nothing: a changed stream may end early or read on past the end.
        let name = |d: &Decoded| format!("{d:?}").chars().take(40).collect::<String>();
        for (coding, enc, at) in [
            (Coding::Gzip, gzip(&plain), None),
            (Coding::Deflate, zlib(&plain), None),
            (Coding::Zstd, zstd_raw(&plain), Some(6)),
        ] {
            let mut bad = enc.clone();
            let at = at.unwrap_or(enc.len() / 2);
            for b in &mut bad[at..at + 16] {
                *b ^= 0xa5;
            }
            let got = decode(coding, &bad, CAP);
            assert!(
                matches!(got, Decoded::Failed { .. }),
                "{coding:?}: {}",
                name(&got)
            );
        }
    }

    /// `first` gzipped, then empty 20-byte gzip members up to `len` bytes in all.
    pub(crate) fn gzip_then_empty_members(first: &[u8], len: usize) -> Vec<u8> {
        let mut enc = gzip(first);
        let empty = gzip(b"");
        while enc.len() < len {
            enc.extend_from_slice(&empty);
        }
        enc
    }

    #[test]
    fn empty_gzip_members_starve_the_decoding() {
        // 2 MiB of 20-byte empty members after a real one: stopped once the encoded
        // bytes run a mebibyte ahead, the real member's output kept.
        let enc = gzip_then_empty_members(TEXT, 2 << 20);
        match decode(Coding::Gzip, &enc, CAP) {
            Decoded::Starved { partial, taken } => {
                assert_eq!(partial, TEXT);
                let lead = MAX_ENCODED_LEAD as usize;
                assert!((lead..lead + 64 * 1024).contains(&taken), "{taken}");
            }
            other => panic!("{other:?}"),
        }
        // Fewer than a mebibyte of them, then data: decoded whole.
        let mut enc = gzip_then_empty_members(b"", 900 << 10);
        enc.extend_from_slice(&gzip(TEXT));
        assert_eq!(
            decode(Coding::Gzip, &enc, CAP),
            Decoded::Complete(TEXT.to_vec())
        );
    }

    #[test]
    fn incompressible_data_does_not_starve() {
        // Stored blocks: the encoded bytes stay a few bytes per 64 KiB ahead.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..6 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        // zstd's decoder holds back a window of output until the frame ends: one
        // declaring 4 MiB (window descriptor 0x60) hands out nothing for 4 MiB.
        let mut zstd_4m = zstd_raw(&noise);
        zstd_4m[5] = 0x60;
        for (coding, enc) in [
            (Coding::Gzip, gzip(&noise)),
            (Coding::Brotli, brotli(&noise)),
            (Coding::Zstd, zstd_raw(&noise)),
            (Coding::Zstd, zstd_4m),
        ] {
            assert!(enc.len() >= noise.len(), "{coding:?}");
            assert_eq!(
                decode(coding, &enc, CAP),
                Decoded::Complete(noise.clone()),
                "{coding:?}"
            );
        }
    }

    #[test]
    fn huge_zstd_window_is_refused() {
        // Window descriptor 0xb8: 2^33 bytes; one empty raw block.
        let frame = [0x28, 0xb5, 0x2f, 0xfd, 0x00, 0xb8, 0x01, 0x00, 0x00];
        assert_eq!(zstd::window_size(&frame), Some(1 << 33));
        assert!(matches!(
            decode(Coding::Zstd, &frame, CAP),
            Decoded::Failed { .. }
        ));
        // Single segment with a 2-byte content size: 256 + 0x0100.
        assert_eq!(
            zstd::window_size(&[0x28, 0xb5, 0x2f, 0xfd, 0x60, 0x00, 0x01]),
            Some(512)
        );
        assert_eq!(zstd::window_size(&zstd_raw(b"abc")), Some(128 * 1024));
    }

    #[test]
    fn output_exactly_at_cap_is_complete() {
        let data = vec![b'a'; 5000];
        assert_eq!(
            decode(Coding::Gzip, &gzip(&data), 5000),
            Decoded::Complete(data.clone())
        );
        assert!(matches!(
            decode(Coding::Gzip, &gzip(&data), 4999),
            Decoded::Limited(_)
        ));
    }

    #[test]
    fn caps() {
        assert_eq!(output_cap(10, 32 << 20, 100), SMALL_OUTPUT_BYTES);
        assert_eq!(output_cap(1 << 20, 32 << 20, 100), 32 << 20);
        assert_eq!(output_cap(100_000, 32 << 20, 100), 10_000_000);
    }

    #[test]
    fn parse_tokens() {
        assert_eq!(Coding::parse(" X-GZIP "), Ok(Some(Coding::Gzip)));
        assert_eq!(Coding::parse("identity"), Ok(None));
        assert_eq!(Coding::parse("compress"), Err(UnknownCoding));
    }

    proptest::proptest! {
        /// `zlib_guess_fails` only rejects what `decode` would get nothing from.
        #[test]
        fn zlib_guess_rejections_are_exact(
            cinfo in 0u8..8,
            level in 0u8..8,
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..48),
        ) {
            let cmf = cinfo << 4 | 8;
            let mut flg = level << 5;
            flg += (31 - ((u16::from(cmf) << 8 | u16::from(flg)) % 31) as u8) % 31;
            let mut data = vec![cmf, flg];
            data.extend_from_slice(&tail);
            proptest::prop_assert!(is_zlib(&data));
            if zlib_guess_fails(&data) {
                let nothing = match decode(Coding::Deflate, &data, 1 << 20) {
                    Decoded::Complete(v) | Decoded::Limited(v) => v.is_empty(),
                    Decoded::Passthrough
                    | Decoded::Cut(_)
                    | Decoded::Starved { .. }
                    | Decoded::Failed { .. } => true,
                };
                proptest::prop_assert!(nothing, "{data:02x?}");
            }
        }
    }

    #[test]
    fn real_zlib_is_never_rejected_by_the_guess_check() {
        for text in [&b""[..], b"a", b"tester@example.org", &[7u8; 5000]] {
            let z = zlib(text);
            assert!(!zlib_guess_fails(&z), "{z:02x?}");
            let stored = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::none());
            let mut stored = stored;
            std::io::Write::write_all(&mut stored, text).unwrap();
            let z = stored.finish().unwrap();
            assert!(!zlib_guess_fails(&z), "{z:02x?}");
        }
    }
}
