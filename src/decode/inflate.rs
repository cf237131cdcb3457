//! Deflate (raw or zlib-wrapped) over an in-memory slice with one decompressor state
//! per thread, reset between streams, for [`super::content`].
//!
//! A fresh miniz_oxide state is a 43 KB structure built and zeroed on every
//! allocation (about 100 000 instructions), plus flate2's 32 KiB zeroed read buffer;
//! most inflation attempts are on JSON values that merely begin like a zlib header and
//! fail within a few bytes, so that set-up was nearly all their cost. A reset state is
//! the same as a fresh one (flate2's `Decompress::reset` is documented as equivalent
//! to replacing it, and zeroes the window, so no byte of an earlier stream can leak
//! into a later one through a corrupt back-reference).
//!
//! [`SliceInflater`] produces exactly what flate2's `read::ZlibDecoder` /
//! `read::DeflateDecoder` over the slice produce, errors included: it feeds the input
//! in the same 32 KiB windows their internal buffer would hold (where a stream stops
//! with an error, and so how much output came before it, can depend on how the input
//! was split) and follows their read loop step by step. Tests compare the two.

use std::cell::Cell;
use std::io;

use flate2::{Decompress, FlushDecompress, Status};

/// Size of the internal read buffer of flate2's `read::` decoders, whose input windows
/// are reproduced.
const WINDOW: usize = 32 * 1024;

thread_local! {
    /// The thread's idle decompressor; taken out while a stream is inflated.
    static IDLE: Cell<Option<Decompress>> = const { Cell::new(None) };
}

/// Whether a deflate stream carries the zlib header and trailer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wrapping {
    Zlib,
    Raw,
}

/// Runs `f` with a reader of the inflated `data`, on the thread's decompressor.
pub fn with_inflater<T>(
    wrapping: Wrapping,
    data: &[u8],
    f: impl FnOnce(&mut SliceInflater<'_>) -> T,
) -> T {
    let zlib = wrapping == Wrapping::Zlib;
    // Taken out of the cell, so that a nested call (there is none today) or a panic
    // in `f` costs at most a fresh state, never a shared one.
    let mut state = match IDLE.try_with(Cell::take).ok().flatten() {
        Some(mut s) => {
            s.reset(zlib);
            s
        }
        None => Decompress::new(zlib),
    };
    let out = f(&mut SliceInflater {
        state: &mut state,
        data,
        pos: 0,
        window_end: 0,
        ran_out: false,
    });
    // Fails only while the thread is being torn down; the state is then dropped.
    let _ = IDLE.try_with(|idle| idle.set(Some(state)));
    out
}

/// A `Read` of inflated data from a slice (see the module documentation).
pub struct SliceInflater<'a> {
    state: &'a mut Decompress,
    data: &'a [u8],
    /// First unread input byte.
    pos: usize,
    /// End of the current input window (`pos <= window_end <= data.len()`).
    window_end: usize,
    /// The stream wanted more input than `data` holds (the error was
    /// `UnexpectedEof`): the input was cut short, not corrupt.
    ran_out: bool,
}

impl SliceInflater<'_> {
    /// Whether reading failed because the input ended inside the stream.
    pub fn ran_out(&self) -> bool {
        self.ran_out
    }
}

impl io::Read for SliceInflater<'_> {
    fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos == self.window_end {
                self.window_end = self.pos + (self.data.len() - self.pos).min(WINDOW);
            }
            let input = self.data.get(self.pos..self.window_end).unwrap_or(&[]);
            let eof = input.is_empty();
            let (before_out, before_in) = (self.state.total_out(), self.state.total_in());
            let flush = if eof {
                FlushDecompress::Finish
            } else {
                FlushDecompress::None
            };
            let ret = self.state.decompress(input, dst, flush);
            // Both are bounded by `dst.len()` and `input.len()`.
            let read = (self.state.total_out() - before_out) as usize;
            let consumed = (self.state.total_in() - before_in) as usize;
            self.pos = (self.pos + consumed).min(self.window_end);
            match ret {
                // No output yet and more input to give: ask again (a 0 would mean EOF).
                Ok(Status::Ok | Status::BufError) if read == 0 && !eof && !dst.is_empty() => {}
                Ok(Status::Ok | Status::BufError) if read == 0 && eof && !dst.is_empty() => {
                    self.ran_out = true;
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "incomplete deflate stream",
                    ));
                }
                Ok(_) => return Ok(read),
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "corrupt deflate stream",
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::content::tests::{raw_deflate, zlib};
    use proptest::prelude::*;
    use std::io::Read;

    /// What flate2's own reader gives: every read's result, in order, reading with
    /// buffers of the given sizes (cycled) until EOF or an error.
    fn reads<R: Read>(mut r: R, sizes: &[usize]) -> Vec<Result<Vec<u8>, String>> {
        let mut out = Vec::new();
        for &size in sizes.iter().cycle().take(10_000) {
            let mut buf = vec![0u8; size];
            match r.read(&mut buf) {
                Ok(0) if size > 0 => {
                    out.push(Ok(Vec::new()));
                    return out;
                }
                Ok(n) => out.push(Ok(buf[..n].to_vec())),
                Err(e) => {
                    out.push(Err(format!("{:?}: {e}", e.kind())));
                    return out;
                }
            }
        }
        out
    }

    fn model(wrapping: Wrapping, data: &[u8], sizes: &[usize]) -> Vec<Result<Vec<u8>, String>> {
        match wrapping {
            Wrapping::Zlib => reads(flate2::read::ZlibDecoder::new(data), sizes),
            Wrapping::Raw => reads(flate2::read::DeflateDecoder::new(data), sizes),
        }
    }

    fn ours(wrapping: Wrapping, data: &[u8], sizes: &[usize]) -> Vec<Result<Vec<u8>, String>> {
        with_inflater(wrapping, data, |r| reads(r, sizes))
    }

    /// Compressible but not trivial text of about `len` bytes.
    fn text(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b"{}\":,abcdefgh0123456789"[(x % 23) as usize]
            })
            .collect()
    }

    #[test]
    fn valid_streams_across_input_windows() {
        // Stored blocks (incompressible input) make compressed streams longer than one
        // 32 KiB input window.
        for len in [0, 1, 100, 40_000, 70_000] {
            let plain = text(len as u64, len);
            let mut noisy = plain.clone();
            noisy.extend((0..len as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
            for body in [&plain, &noisy] {
                for (w, enc) in [
                    (Wrapping::Zlib, zlib(body)),
                    (Wrapping::Raw, raw_deflate(body)),
                ] {
                    for sizes in [&[1024usize][..], &[1, 7, 65_536], &[0, 3]] {
                        assert_eq!(ours(w, &enc, sizes), model(w, &enc, sizes), "{w:?} {len}");
                    }
                }
            }
        }
    }

    #[test]
    fn state_left_by_a_failed_stream_does_not_leak() {
        let good = zlib(&text(7, 5000));
        let mut bad = good.clone();
        bad.truncate(good.len() / 2);
        for data in [&bad, &good, &vec![0x78, 0x9c, 0xff, 0xff], &good] {
            assert_eq!(
                ours(Wrapping::Zlib, data, &[4096]),
                model(Wrapping::Zlib, data, &[4096])
            );
        }
    }

    proptest! {
        /// Corrupted, truncated and random streams, read with varied buffer sizes, one
        /// after another on the same thread's state: the same reads, bytes and errors.
        #[test]
        fn same_as_flate2_readers(
            seed in any::<u64>(),
            len in 0usize..50_000,
            raw in any::<bool>(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..4),
            cut in proptest::option::of(any::<prop::sample::Index>()),
            junk in proptest::collection::vec(any::<u8>(), 0..64),
            sizes in proptest::collection::vec(0usize..70_000, 1..4),
        ) {
            let plain = text(seed, len);
            let (w, mut enc) = if raw {
                (Wrapping::Raw, raw_deflate(&plain))
            } else {
                (Wrapping::Zlib, zlib(&plain))
            };
            for (at, x) in &flips {
                let i = at.index(enc.len());
                enc[i] ^= x;
            }
            if let Some(at) = cut {
                enc.truncate(at.index(enc.len() + 1));
            }
            prop_assert_eq!(ours(w, &enc, &sizes), model(w, &enc, &sizes));
            prop_assert_eq!(ours(w, &junk, &sizes), model(w, &junk, &sizes));
        }
    }
}
