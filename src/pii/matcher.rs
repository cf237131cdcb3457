//! Multi-pattern substring matcher: every occurrence (pattern id, start) of every
//! pattern in a haystack, overlaps included — exactly the set a naive substring search
//! finds. Built once per case over all variants of all device values (DESIGN.md §3).
//!
//! # Design: a sampled q-gram index, sharded by pattern length
//!
//! A shard holds patterns of length ≥ `m` (`m` is its shortest member's length,
//! at least the layout's bound: a shard of long patterns samples more sparsely); it
//! uses grams of `q` bytes and the stride `s = m − q + 1`. It looks only at haystack positions `p = 0, s, 2s, …`. Any
//! occurrence `[start, start + len)` with `len ≥ m` contains exactly one sample `p` with
//! `start ≤ p < start + s`, and the gram `hay[p..p+q]` lies inside the occurrence
//! (`p + q ≤ start + s − 1 + q = start + m ≤ start + len`). So each pattern is indexed
//! by its grams at offsets `0..s` only; at sample `p` the gram is looked up (a
//! one-word blocked Bloom filter indexed by a multiplicative hash — two bits per
//! gram, one when the filter is sparse or the grams narrow — rejects almost every
//! sample; on a pass, an
//! exact map gram → `(pattern, offset)` list) and every candidate is verified by a
//! slice comparison at `p − offset`. Each occurrence is reported exactly
//! once (its sample and offset are unique). No tail case exists: a sample with
//! `p + q > len` cannot lie inside an occurrence, by the inequality above.
//!
//! Patterns shorter than the smallest shard go to an `aho_corasick` fallback, built
//! only when such patterns exist (identifier variants shorter than 6 bytes are rare:
//! short custom strings, small coordinates).
//!
//! # Why not `aho-corasick` alone
//! `cargo bench --bench matcher -- --warm-up-time 1 --measurement-time 3` on the
//! earlier 2-core AMD EPYC (Zen 1) development VM, shared with other builds (wall clock,
//! ±10%), corpus of 2.1 MB of JSON/form bodies, all overlapping occurrences:
//!
//! | matcher                       | 1 000 patterns | 30 000 patterns |
//! |-------------------------------|----------------|-----------------|
//! | this (sampled q-grams)        | 1 140–1 209 MiB/s | 660–719 MiB/s |
//! | `aho_corasick` DFA            | 180–210 MiB/s  | 22–25 MiB/s (468 MB of tables) |
//! | `aho_corasick` default (NFA)  | 96 MiB/s       | 34 MiB/s        |
//! | `aho_corasick` DFA leftmost-first, no overlaps (not the same job) | 207 MiB/s | 25 MiB/s |
//!
//! (Before sparse shards got a one-bit filter: 1 033–1 094 / 669–671 MiB/s.) The
//! automaton is slow on this corpus because its hex ids and base64 blobs share
//! prefixes with the digest variants: it rarely falls back to its start state, so its
//! prefilter never gets to skip.
//!
//! The hot loop reads the haystack and the filter with two `unsafe` unchecked loads
//! (bounds proven by the loop condition and the filter's size); the bounds checks cost
//! a quarter of the throughput (669 → 870 MB per CPU-second at 1 000 patterns).
//!
//! Shards of 3- and 4-byte grams (the short shard: a case's coordinate and national
//! phone variants, which samples the haystack every three or four bytes and took 60 % of
//! the probes) have a narrow filter instead: one bit per gram from a 32-bit hash, in
//! 32-bit words. About as many instructions as the wide filter's probe, but one
//! variable shift instead of two (each several micro-ops on x86): user CPU on the
//! 522 MB bench capture 2.28 → 2.14 s (six rounds). Its "bits" are now bytes (a
//! probe is a byte load and a test, no shift by the bit's place; 32 KiB for a case's
//! few hundred grams): the matcher's instructions on the 32 MB capture 116 → 97 M,
//! its `perf` samples on the 522 MB one −9 %. Probing eight samples at a time
//! with AVX2 (a 32-byte load, a gather of the filter words) cut the matcher's
//! instructions from 144 M to 93 M on the 32 MB capture, but not the CPU time beyond
//! this (2.18 against 2.18 s, twelve pairs): not kept.
//!
//! Build for 30 000 patterns: 77–81 ms. At 30 000 patterns the shards run, alone, at
//! 1.27 GiB/s (6..12 bytes, 425 patterns), 2.95 GiB/s (12..32, 9 535), 5.4 GiB/s
//! (32+, 20 040): the digest variants, most of the patterns, are nearly free (one
//! probe per 25 bytes), while an automaton pays per byte and its tables outgrow the
//! cache as patterns are added. The layout experiments are listed at [`SHARDS`].
//!
//! Worst case: a haystack made of a character frequent in the patterns (1 MiB of
//! `0`) makes many probes pass the filter and verify near-misses: ~30 MB/s, still
//! linear (each sample verifies at most the patterns sharing its gram).

use std::ops::ControlFlow;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use rustc_hash::FxHashMap;

/// Whether the CPU has BMI1 and BMI2 (for [`Matcher::for_each`]'s build for them).
fn has_bmi2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("bmi1") && std::arch::is_x86_feature_detected!("bmi2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Index of a pattern in the slice given to [`Matcher::new`].
pub type PatternId = u32;

/// Shard layout: `(min_len, q)`; a shard takes the patterns of length in
/// `[min_len, next shard's min_len)`, the last row takes everything longer.
/// Patterns shorter than the smallest `min_len` go to the Aho-Corasick fallback.
///
/// Strides: 3 for 6..12 bytes (q 4), 7 for 12..32 (q 6), 25 for 32+ (q 8: digests);
/// the 32+ row joins the 12..32 one when its patterns are few ([`merge_few_longest`]).
/// 6-byte grams in the middle row, which the digests join: their grams then take
/// far less of the hex grams' room, so fewer samples of hex text pass the filter and
/// go to verification (cache misses natively; `12:5` → `12:6`, merge rule as is):
/// on the 32 MB capture instructions outside sha2 753.9 → 755.1 M but
/// `Shard::verify` 2.43 → 1.99 M; on the 522 MB one `perf` samples of the matcher
/// and `memcmp` 745/661/732/683/712 → 649/651/715/633/621, of the run −2 % (five
/// pairs); `sampled_qgram` 3.24 / 2.83 / 2.23 / 1.62 → 3.03 / 2.69 / 2.56 / 1.93
/// GiB/s at 1 000 / 4 000 / 10 000 / 30 000 patterns (the last two now merged).
/// Since the narrow filter's bits are bytes, 4-byte grams for the 6..12 row: digit
/// 3-grams of the case's coordinates and phone numbers were in every timestamp, and
/// their verification (hash table, candidates, `memcmp`: cache misses) cost more than
/// a third more probes. On the 32 MB capture, `6:3` → `6:4`: instructions outside
/// sha2 766.1 → 753.9 M, `Shard::verify` 11.9 → 2.4 M; on the 522 MB one, `perf`
/// samples of the matcher and `memcmp` −15 % and of the run −4 % (six pairs); the
/// `sampled_qgram` bench 3.31 / 2.75 / 1.34 → 3.24 / 2.77 / 1.61 GiB/s at 1 000 /
/// 4 000 / 30 000 patterns. Before that (bit filters; MB per CPU-second, machine
/// shared and noisy, ±10%; 1 000 / 30 000 patterns), all with the two-bit filter
/// and unrolled loop:
/// `6:3,12:5,32:8` 1 199 / 784 (then chosen) · `6:4,12:5,32:8` 1 042 / 804 ·
/// `7:4,12:5,32:8` 1 077 / 471 (6-byte patterns in the fallback) · `6:4,12:8,32:8` 870 / 722 · `6:4,12:6,32:8` 1 025 / 748 ·
/// `6:4,12:4,32:8` 1 059 / 804 (4-byte grams of hex text pass the filter too often) ·
/// `6:4,12:5,20:6,32:8` 859 / 611 (a fourth pass costs more than its larger stride
/// saves) · `12:6,32:8` with everything under 12 bytes in the Aho-Corasick fallback
/// 340 / 316 (its overlapping search gets no prefilter).
/// Earlier steps, layout `6:4,12:8,32:8`: one-bit filter, one sample per branch
/// 583 / 402; two-bit filter 669 / 557; unchecked loads in the hot loop 870 / 722.
pub const SHARDS: [(usize, usize); 3] = [(6, 4), (12, 6), (32, 8)];

/// The longest row's share of the hex `q`-grams (log2 of its inverse) up to which its
/// patterns join the row before it: see [`merge_few_longest`].
const MERGE_HEX_SHARE_LOG2: usize = 5;

/// Moves the longest row's patterns into the row before it when, indexed there
/// (`stride` grams each), they would make up at most 1/32 of the `16^q` hex `q`-grams
/// of that row: one pass over the haystack instead of two (the long row's sample every 25
/// bytes comes free with the middle row's denser ones). Digests are hex and base64, as
/// is much of app traffic, so the bound keeps their grams from passing the filter
/// for most hex text. `cargo bench --bench matcher` (`sampled_qgram`, GiB/s, rows
/// apart → this rule, both in one run on the shared VM), with 5-byte grams in the
/// middle row: 1 000 patterns 1.59 → 1.80, 4 000 1.38 → 1.57 (merged), 10 000
/// 1.20 / 1.19 and 30 000 0.83 / 0.83 (not merged). Merged always, those two lost a
/// quarter and more (1.36 → 0.90, 0.93 → 0.71 in an earlier run): there the long
/// patterns' grams are 6–18 % of the hex 5-grams. With 6-byte grams (16 times the
/// room) the rule merges them too: see [`SHARDS`].
fn merge_few_longest(layout: &[(usize, usize)], classes: &mut [Vec<(PatternId, &[u8])>]) {
    let [.., before, longest] = classes else {
        return;
    };
    if before.is_empty() || longest.is_empty() {
        return;
    }
    let Some(&(min, q)) = layout.len().checked_sub(2).and_then(|r| layout.get(r)) else {
        return;
    };
    let shortest = before.iter().map(|(_, p)| p.len()).min().unwrap_or(min);
    let stride = shortest.max(min) - q + 1;
    if longest.len().saturating_mul(stride) <= 1 << (4 * q - MERGE_HEX_SHARE_LOG2) {
        before.append(longest);
    }
}

/// Golden-ratio multiplier (Knuth's multiplicative hashing).
const HASH_MUL: u64 = 0x9E37_79B9_7F4A_7C15;

/// Bits of fast-reject filter per indexed gram: with two bits set per gram in one word
/// the false-positive rate is about 1.5% (observed on the bench corpus: 1.3% in the
/// middle shard at 1 000 patterns, 2.8% in the long shard at 30 000 where the table
/// is capped).
const BITS_PER_GRAM: usize = 16;
/// Fast-reject filter bounds (log2 of bits): 2^15 bits = 4 KiB, 2^22 bits = 512 KiB
/// per shard (the L2 size of the benchmark machine's core; 2^24 measured no better).
/// The floor matters for a shard of few grams (a case's short coordinate and phone
/// variants: at most 128 distinct 3-grams in 1 KiB), which samples the haystack the
/// most densely: at 2^13 bits up to one sample in 64 passed falsely.
const MIN_TABLE_LOG2: u32 = 15;
const MAX_TABLE_LOG2: u32 = 22;

/// One length class of patterns with its sampled gram index.
#[derive(Debug, Clone)]
struct Shard {
    /// Gram size in bytes, 3..=8.
    q: usize,
    /// Distance between samples: `min_len − q + 1`, `min_len` the shortest member's
    /// length.
    stride: usize,
    /// Fast reject of the samples whose gram no pattern has at a sampled offset.
    filter: Filter,
    /// Exact gram → range in `entries`.
    table: FxHashMap<u64, (u32, u32)>,
    /// `(pattern, offset of the gram in the pattern)`, grouped by gram.
    entries: Vec<(PatternId, u32)>,
}

/// A shard's fast-reject filter.
#[derive(Debug, Clone)]
enum Filter {
    /// Grams of 5 to 8 bytes: a blocked Bloom filter, one or two bits per gram in one
    /// `u64` word (see [`filter_slot`]).
    Wide {
        /// Two filter bits per gram (else one: a sparse filter).
        two_bits: bool,
        /// Filter words − 1 (a power of two minus one).
        word_mask: usize,
        /// `word_mask + 1` words, indexed by `(hash(gram) >> WORD_SHIFT) & word_mask`.
        bits: Vec<u64>,
    },
    /// Grams of 3 or 4 bytes (the short shard, which samples the haystack the most
    /// densely): one bit per gram, at the top bits of a 32-bit multiplicative hash
    /// ([`narrow_bit`]), each bit a byte: a probe with one variable shift (the
    /// hash's) and a byte load, where [`Filter::Wide`]'s takes three shifts.
    Narrow {
        /// `32 − log2(bits in the filter)`: the hash's top bits are the bit's index.
        shift: u32,
        /// `2^(32 − shift)` bits, one byte each (1: set).
        bits: Vec<u8>,
    },
}

/// All patterns, compiled once; `Send + Sync`, shared by reference.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// All pattern bytes concatenated (verification reads stay close together).
    bytes: Vec<u8>,
    /// `(start in bytes, len)` per pattern id.
    spans: Vec<(u32, u32)>,
    shards: Vec<Shard>,
    /// Automaton over the patterns too short for any shard, with their ids.
    fallback: Option<(AhoCorasick, Vec<PatternId>)>,
    /// The CPU has BMI1 and BMI2: [`Matcher::for_each`] runs its build for them.
    bmi2: bool,
}

/// The `q`-byte gram at `p` as a little-endian integer (`q` ≤ 8), or `None` when it
/// does not fit.
#[inline(always)]
fn load_gram(hay: &[u8], p: usize, q: usize) -> Option<u64> {
    let src = hay.get(p..p.checked_add(q)?)?;
    let mut b = [0u8; 8];
    b[..q].copy_from_slice(src);
    Some(u64::from_le_bytes(b))
}

/// The filter word (top bits, masked to the table's size) and the two-bit mask
/// within it (from middle bits) of a gram: a blocked Bloom filter with two bits per gram in one `u64`, so a probe is a
/// single memory access.
#[inline(always)]
fn filter_slot<const TWO: bool>(gram: u64, word_mask: usize) -> (usize, u64) {
    let h = gram.wrapping_mul(HASH_MUL);
    let word = (h >> WORD_SHIFT) as usize & word_mask;
    let mut mask = 1u64 << ((h >> 20) & 63);
    if TWO {
        mask |= 1u64 << ((h >> 26) & 63);
    }
    (word, mask)
}

/// Whether `gram` passes the filter `bits` (`word_mask + 1` words): the probe of
/// [`filter_slot`], as a bit test of the loaded word rather than a mask compare.
#[inline(always)]
fn passes<const TWO: bool>(bits: &[u64], gram: u64, word_mask: usize) -> bool {
    let h = gram.wrapping_mul(HASH_MUL);
    let w = (h >> WORD_SHIFT) as usize & word_mask;
    debug_assert!(w < bits.len());
    // SAFETY: `w <= word_mask` and `bits.len() == word_mask + 1` (see `Shard::build`).
    let word = unsafe { *bits.get_unchecked(w) };
    let mut t = word >> ((h >> 20) & 63);
    if TWO {
        t &= word >> ((h >> 26) & 63);
    }
    t & 1 != 0
}

/// Multiplier of the narrow filter's 32-bit hash (Knuth's, as [`HASH_MUL`]).
const HASH_MUL32: u32 = 0x9E37_79B1;

/// The narrow filter's bit for a gram of at most four bytes: the top `32 − shift`
/// bits of its multiplicative hash.
#[inline(always)]
fn narrow_bit(gram: u32, shift: u32) -> usize {
    (gram.wrapping_mul(HASH_MUL32) >> shift) as usize
}

/// Whether `gram` passes the narrow filter `bits` (`2^(32 − shift)` one-byte bits).
#[inline(always)]
fn narrow_passes(bits: &[u8], gram: u32, shift: u32) -> bool {
    let b = narrow_bit(gram, shift);
    debug_assert!(b < bits.len());
    // SAFETY: `b < 2^(32 − shift) == bits.len()` (see `Filter::narrow`).
    unsafe { *bits.get_unchecked(b) != 0 }
}

/// Filter bits per distinct gram of a narrow filter (one bit each: false positives
/// about one sample in 64 at most, and the filter of a case's short shard, a few
/// hundred grams, is 2^15 bits, 32 KiB of one-byte bits).
const NARROW_BITS_PER_GRAM: usize = 64;

/// Largest narrow filter (log2 of bits): 2^19 one-byte bits are the 512 KiB of the
/// largest wide filter, for 8 192 distinct grams at 64 bits each.
const MAX_NARROW_LOG2: u32 = 19;

/// The word index is taken from the hash's top bits (a multiplicative hash's best),
/// at a fixed shift so the probe needs no variable shift: the table has at most
/// `2^(MAX_TABLE_LOG2 - 6)` = 2^(64 - WORD_SHIFT) words.
const WORD_SHIFT: u32 = 64 - (MAX_TABLE_LOG2 - 6);

/// Filter bits per distinct gram from which one bit per gram suffices (false-positive
/// rate ≤ 1/64, and the probe is cheaper).
const ONE_BIT_FROM: usize = 64;

impl Filter {
    /// An empty wide filter for `distinct` grams.
    fn wide(distinct: usize) -> Filter {
        let want = (distinct * BITS_PER_GRAM).next_power_of_two();
        let log2 = want.trailing_zeros().clamp(MIN_TABLE_LOG2, MAX_TABLE_LOG2);
        Filter::Wide {
            two_bits: (1usize << log2) / distinct < ONE_BIT_FROM,
            word_mask: (1usize << (log2 - 6)) - 1,
            bits: vec![0u64; (1usize << log2) / 64],
        }
    }

    /// An empty narrow filter for `distinct` grams.
    fn narrow(distinct: usize) -> Filter {
        let want = (distinct * NARROW_BITS_PER_GRAM).next_power_of_two();
        let log2 = want.trailing_zeros().clamp(MIN_TABLE_LOG2, MAX_NARROW_LOG2);
        Filter::Narrow {
            shift: 32 - log2,
            bits: vec![0u8; 1usize << log2],
        }
    }

    fn insert(&mut self, gram: u64) {
        match self {
            Filter::Wide {
                two_bits,
                word_mask,
                bits,
            } => {
                let (w, mask) = if *two_bits {
                    filter_slot::<true>(gram, *word_mask)
                } else {
                    filter_slot::<false>(gram, *word_mask)
                };
                bits[w] |= mask;
            }
            Filter::Narrow { shift, bits } => {
                // Narrow grams have at most four bytes: the cast loses nothing.
                let b = narrow_bit(gram as u32, *shift);
                bits[b] = 1;
            }
        }
    }
}

impl Shard {
    fn build(q: usize, min_len: usize, members: &[(PatternId, &[u8])]) -> Shard {
        let stride = min_len - q + 1;
        let mut grams: Vec<(u64, PatternId, u32)> = Vec::with_capacity(members.len() * stride);
        for &(id, pat) in members {
            for off in 0..stride {
                // Invariant: pat.len() >= min_len = stride - 1 + q, so off + q <= len.
                if let Some(g) = load_gram(pat, off, q) {
                    grams.push((g, id, off as u32));
                }
            }
        }
        grams.sort_unstable();
        let distinct = grams.windows(2).filter(|w| w[0].0 != w[1].0).count() + 1;
        let mut filter = if q <= 4 {
            Filter::narrow(distinct)
        } else {
            Filter::wide(distinct)
        };
        let mut table = FxHashMap::default();
        table.reserve(distinct);
        let mut entries = Vec::with_capacity(grams.len());
        let mut i = 0;
        while i < grams.len() {
            let g = grams[i].0;
            let from = entries.len() as u32;
            while i < grams.len() && grams[i].0 == g {
                entries.push((grams[i].1, grams[i].2));
                i += 1;
            }
            table.insert(g, (from, entries.len() as u32));
            filter.insert(g);
        }
        Shard {
            q,
            stride,
            filter,
            table,
            entries,
        }
    }

    #[inline(always)]
    fn scan<F>(&self, m: &Matcher, hay: &[u8], f: &mut F) -> ControlFlow<()>
    where
        F: FnMut(PatternId, usize) -> ControlFlow<()>,
    {
        match &self.filter {
            Filter::Wide {
                two_bits: true,
                word_mask,
                bits,
            } => self.scan_k::<true, F>(m, hay, f, bits, *word_mask),
            Filter::Wide {
                two_bits: false,
                word_mask,
                bits,
            } => self.scan_k::<false, F>(m, hay, f, bits, *word_mask),
            Filter::Narrow { shift, bits } => {
                if self.q == 3 {
                    self.scan_narrow::<3, F>(m, hay, f, bits, *shift)
                } else {
                    self.scan_narrow::<4, F>(m, hay, f, bits, *shift)
                }
            }
        }
    }

    #[inline(always)]
    fn scan_k<const TWO: bool, F>(
        &self,
        m: &Matcher,
        hay: &[u8],
        f: &mut F,
        bits: &[u64],
        word_mask: usize,
    ) -> ControlFlow<()>
    where
        F: FnMut(PatternId, usize) -> ControlFlow<()>,
    {
        // Grams of 3 and 4 bytes have a narrow filter.
        match self.q {
            5 => self.scan_q::<5, TWO, F>(m, hay, f, bits, word_mask),
            6 => self.scan_q::<6, TWO, F>(m, hay, f, bits, word_mask),
            7 => self.scan_q::<7, TWO, F>(m, hay, f, bits, word_mask),
            _ => self.scan_q::<8, TWO, F>(m, hay, f, bits, word_mask),
        }
    }

    /// The scan of a shard with a narrow filter: 4-byte loads, so that the main loop
    /// runs up to 4 bytes before the end.
    #[inline(always)]
    fn scan_narrow<const Q: usize, F>(
        &self,
        m: &Matcher,
        hay: &[u8],
        f: &mut F,
        bits: &[u8],
        shift: u32,
    ) -> ControlFlow<()>
    where
        F: FnMut(PatternId, usize) -> ControlFlow<()>,
    {
        // Q <= 4 bytes: the gram fits in 32 bits.
        self.scan_rounds::<4, Q, F>(m, hay, f, |g| narrow_passes(bits, g as u32, shift))
    }

    #[inline(always)]
    fn scan_q<const Q: usize, const TWO: bool, F>(
        &self,
        m: &Matcher,
        hay: &[u8],
        f: &mut F,
        bits: &[u64],
        word_mask: usize,
    ) -> ControlFlow<()>
    where
        F: FnMut(PatternId, usize) -> ControlFlow<()>,
    {
        self.scan_rounds::<8, Q, F>(m, hay, f, |g| passes::<TWO>(bits, g, word_mask))
    }

    /// Every sample of `hay` (each `stride` bytes) whose `Q`-byte gram passes the
    /// filter (`pass`) is verified. The main loop reads `LOAD` bytes per sample (4 or 8,
    /// at least `Q`) and masks them to the gram; the tail loads what is left.
    #[inline(always)]
    fn scan_rounds<const LOAD: usize, const Q: usize, F>(
        &self,
        m: &Matcher,
        hay: &[u8],
        f: &mut F,
        pass: impl Fn(u64) -> bool,
    ) -> ControlFlow<()>
    where
        F: FnMut(PatternId, usize) -> ControlFlow<()>,
    {
        let keep: u64 = if Q == 8 { !0 } else { (1u64 << (8 * Q)) - 1 };
        #[inline(always)]
        fn load<const LOAD: usize>(hay: &[u8], p: usize) -> u64 {
            debug_assert!(p + LOAD <= hay.len());
            let at = hay.as_ptr();
            // SAFETY: every caller checked `p + LOAD <= hay.len()` (loop condition
            // below), and `LOAD` is the width read.
            unsafe {
                if LOAD == 4 {
                    u64::from(std::ptr::read_unaligned(at.add(p).cast::<u32>()).to_le())
                } else {
                    std::ptr::read_unaligned(at.add(p).cast::<u64>()).to_le()
                }
            }
        }
        let s = self.stride;
        let mut p = 0usize;
        // Four independent samples per round and one branch: the filter rejects almost
        // every sample, so the loads and multiplies of a round overlap. The grams are
        // loaded again on a pass (rare) rather than kept in registers.
        while p + 3 * s + LOAD <= hay.len() {
            let any = pass(load::<LOAD>(hay, p) & keep)
                | pass(load::<LOAD>(hay, p + s) & keep)
                | pass(load::<LOAD>(hay, p + 2 * s) & keep)
                | pass(load::<LOAD>(hay, p + 3 * s) & keep);
            if any {
                for k in 0..4 {
                    let at = p + k * s;
                    let g = load::<LOAD>(hay, at) & keep;
                    if pass(g) {
                        self.verify(m, g, at, hay, f)?;
                    }
                }
            }
            p += 4 * s;
        }
        while let Some(g) = load_gram(hay, p, Q) {
            if pass(g) {
                self.verify(m, g, p, hay, f)?;
            }
            p += s;
        }
        ControlFlow::Continue(())
    }

    #[inline(never)]
    fn verify<F>(&self, m: &Matcher, g: u64, p: usize, hay: &[u8], f: &mut F) -> ControlFlow<()>
    where
        F: FnMut(PatternId, usize) -> ControlFlow<()>,
    {
        let Some(&(from, to)) = self.table.get(&g) else {
            return ControlFlow::Continue(());
        };
        for &(id, off) in &self.entries[from as usize..to as usize] {
            let Some(start) = p.checked_sub(off as usize) else {
                continue;
            };
            let pat = m.pattern(id);
            if hay.get(start..start + pat.len()) == Some(pat) {
                f(id, start)?;
            }
        }
        ControlFlow::Continue(())
    }
}

impl Matcher {
    /// Compiles `patterns`; ids are their indexes. Empty patterns never match.
    pub fn new<P: AsRef<[u8]>>(patterns: &[P]) -> Matcher {
        Matcher::with_shards(patterns, &SHARDS)
    }

    /// [`Matcher::new`] with another shard layout: `(min_len, q)` rows sorted by
    /// `min_len`, `3 <= q <= 8`, `q <= min_len` (rows breaking this are skipped, their
    /// patterns going to the next shorter row or the fallback). For benchmarks.
    pub fn with_shards<P: AsRef<[u8]>>(patterns: &[P], layout: &[(usize, usize)]) -> Matcher {
        let layout: Vec<(usize, usize)> = layout
            .iter()
            .copied()
            .filter(|&(min, q)| (3..=8).contains(&q) && q <= min)
            .collect();
        let mut bytes = Vec::new();
        let mut spans = Vec::with_capacity(patterns.len());
        for p in patterns {
            let p = p.as_ref();
            spans.push((bytes.len() as u32, p.len() as u32));
            bytes.extend_from_slice(p);
        }
        let mut classes: Vec<Vec<(PatternId, &[u8])>> = vec![Vec::new(); layout.len()];
        let mut short: Vec<(PatternId, &[u8])> = Vec::new();
        for (id, p) in patterns.iter().enumerate() {
            let p = p.as_ref();
            if p.is_empty() {
                continue;
            }
            match layout.iter().rposition(|&(min, _)| p.len() >= min) {
                Some(c) => classes[c].push((id as PatternId, p)),
                None => short.push((id as PatternId, p)),
            }
        }
        merge_few_longest(&layout, &mut classes);
        let shards = layout
            .iter()
            .zip(&classes)
            .filter(|(_, members)| !members.is_empty())
            .map(|(&(min, q), members)| {
                // The stride follows the shortest member, not the layout's bound:
                // sampling stays complete (module doc) and sparser when it can.
                let shortest = members.iter().map(|(_, p)| p.len()).min().unwrap_or(min);
                Shard::build(q, shortest.max(min), members)
            })
            .collect();
        let fallback = if short.is_empty() {
            None
        } else {
            let ac = AhoCorasickBuilder::new()
                .match_kind(MatchKind::Standard)
                .kind(Some(AhoCorasickKind::DFA))
                .build(short.iter().map(|(_, p)| p))
                .or_else(|_| {
                    AhoCorasickBuilder::new()
                        .match_kind(MatchKind::Standard)
                        .build(short.iter().map(|(_, p)| p))
                });
            // Building fails only beyond aho-corasick's size limits (millions of
            // patterns); short patterns are then not matched rather than panicking.
            ac.ok()
                .map(|ac| (ac, short.iter().map(|(id, _)| *id).collect()))
        };
        Matcher {
            bytes,
            spans,
            shards,
            fallback,
            bmi2: has_bmi2(),
        }
    }

    /// Number of patterns (including empty ones).
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are no patterns.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The bytes of pattern `id`.
    #[inline]
    pub fn pattern(&self, id: PatternId) -> &[u8] {
        let (start, len) = self.spans[id as usize];
        &self.bytes[start as usize..(start + len) as usize]
    }

    /// Calls `f(pattern, start)` for every occurrence in `hay`, in no particular order,
    /// until `f` breaks. Allocates nothing.
    pub fn for_each<F>(&self, hay: &[u8], mut f: F) -> ControlFlow<()>
    where
        F: FnMut(PatternId, usize) -> ControlFlow<()>,
    {
        #[cfg(target_arch = "x86_64")]
        if self.bmi2 {
            // SAFETY: `bmi2` is set only when the CPU has BMI1 and BMI2 (`with_shards`).
            return unsafe { self.for_each_bmi2(hay, &mut f) };
        }
        self.for_each_in(hay, &mut f)
    }

    /// [`Matcher::for_each`] compiled with BMI1/BMI2: the filter probes' variable
    /// shifts become `shrx`/`shlx` (one micro-op, any register) instead of `shr`/`shl`
    /// by `cl` (two or three, and every shift count moved through `ecx` first).
    ///
    /// # Safety
    /// The CPU must have BMI1 and BMI2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "bmi1,bmi2")]
    unsafe fn for_each_bmi2<F>(&self, hay: &[u8], f: &mut F) -> ControlFlow<()>
    where
        F: FnMut(PatternId, usize) -> ControlFlow<()>,
    {
        self.for_each_in(hay, f)
    }

    /// The body of [`Matcher::for_each`], inlined into each of its builds.
    #[inline(always)]
    fn for_each_in<F>(&self, hay: &[u8], f: &mut F) -> ControlFlow<()>
    where
        F: FnMut(PatternId, usize) -> ControlFlow<()>,
    {
        for shard in &self.shards {
            shard.scan(self, hay, f)?;
        }
        if let Some((ac, ids)) = &self.fallback {
            for m in ac.find_overlapping_iter(hay) {
                f(ids[m.pattern().as_usize()], m.start())?;
            }
        }
        ControlFlow::Continue(())
    }

    /// Appends every occurrence in `hay` to `out` (reused by the caller), at most
    /// `limit` of them; returns false when the limit cut the search short.
    pub fn find_into(&self, hay: &[u8], out: &mut Vec<(PatternId, usize)>, limit: usize) -> bool {
        let mut n = 0usize;
        self.for_each(hay, |id, start| {
            if n >= limit {
                return ControlFlow::Break(());
            }
            n += 1;
            out.push((id, start));
            ControlFlow::Continue(())
        })
        .is_continue()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive(patterns: &[Vec<u8>], hay: &[u8]) -> Vec<(PatternId, usize)> {
        let mut out = Vec::new();
        for (id, p) in patterns.iter().enumerate() {
            if p.is_empty() || p.len() > hay.len() {
                continue;
            }
            for start in 0..=hay.len() - p.len() {
                if &hay[start..start + p.len()] == p.as_slice() {
                    out.push((id as PatternId, start));
                }
            }
        }
        out.sort_unstable();
        out
    }

    /// A repeatable pseudo-random source: `next(n)` is in `0..n`.
    fn xorshift(mut x: u64) -> impl FnMut(u64) -> u64 {
        move |n| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        }
    }

    fn found(m: &Matcher, hay: &[u8]) -> Vec<(PatternId, usize)> {
        let mut out = Vec::new();
        assert!(m.find_into(hay, &mut out, usize::MAX));
        out.sort_unstable();
        out
    }

    #[test]
    fn narrow_filter_for_every_stride() {
        // Digits and dots as in coordinate and phone variants; a hay of digit runs.
        let mut next = xorshift(0x9E37_79B9_7F4A_7C15);
        let digit = |v: u64| if v == 10 { b'.' } else { b'0' + v as u8 };
        for shortest in 3..=14 {
            let pats: Vec<Vec<u8>> = (0..200)
                .map(|_| {
                    let len = shortest + next(6) as usize;
                    (0..len).map(|_| digit(next(11))).collect()
                })
                .collect();
            let mut hay: Vec<u8> = (0..5_000).map(|_| digit(next(11))).collect();
            for i in 0..50 {
                let p = &pats[(i * 7) % pats.len()];
                let at = next(hay.len() as u64) as usize;
                hay.splice(at..at, p.iter().copied());
            }
            for layout in [&[(3, 3)][..], &[(4, 4)], &[(3, 3), (9, 4)]] {
                let m = Matcher::with_shards(&pats, layout);
                assert!(m
                    .shards
                    .iter()
                    .all(|s| matches!(s.filter, Filter::Narrow { .. })));
                assert_eq!(found(&m, &hay), naive(&pats, &hay));
                // Every cut of the end, so that the four-sample loop stops at each place.
                for cut in 1..40 {
                    let hay = &hay[..hay.len() - cut];
                    assert_eq!(found(&m, hay), naive(&pats, hay));
                }
            }
        }
    }

    #[test]
    fn finds_overlaps_and_edges_in_every_shard() {
        let pats: Vec<Vec<u8>> = vec![
            b"ab".to_vec(),                                   // fallback
            b"abcabc".to_vec(),                               // q=4 shard
            b"abcabcabcabc".to_vec(),                         // q=8 shard, min 12
            b"abcabcabcabcabcabcabcabcabcabcabcabc".to_vec(), // long shard
        ];
        let hay = b"abcabcabcabcabcabcabcabcabcabcabcabcab";
        let m = Matcher::new(&pats);
        let got = found(&m, hay);
        assert_eq!(got, naive(&pats, hay));
        assert_eq!(got.iter().filter(|(id, _)| *id == 1).count(), 11);
    }

    #[test]
    fn many_patterns_dense_filter() {
        // Enough grams for the two-bit filter, on a 4-letter alphabet.
        let mut next = xorshift(0x2545_F491_4F6C_DD1D);
        let pats: Vec<Vec<u8>> = (0..3000)
            .map(|_| {
                let len = 1 + next(60) as usize;
                (0..len).map(|_| b'a' + next(4) as u8).collect()
            })
            .collect();
        let mut hay: Vec<u8> = (0..20_000).map(|_| b'a' + next(4) as u8).collect();
        for i in 0..200 {
            let p = &pats[(i * 13) % pats.len()];
            let at = next(hay.len() as u64) as usize;
            hay.splice(at..at, p.iter().copied());
        }
        let m = Matcher::new(&pats);
        assert!(m
            .shards
            .iter()
            .any(|s| matches!(s.filter, Filter::Wide { two_bits: true, .. })));
        assert_eq!(found(&m, &hay), naive(&pats, &hay));
    }

    #[test]
    fn stride_follows_the_shortest_member() {
        // Layout bound 12, shortest member 20: stride 20 - 5 + 1 = 16, not 8.
        let pats = vec![b"0123456789abcdefghij".to_vec(), b"x".repeat(25)];
        let m = Matcher::with_shards(&pats, &[(12, 5)]);
        assert_eq!(m.shards[0].stride, 16);
        let hay = [&b"--"[..], &pats[0], &pats[1], b"0123456789abcdefghij"].concat();
        assert_eq!(found(&m, &hay), naive(&pats, &hay));
        assert_eq!(found(&m, &hay).len(), 3);
    }

    #[test]
    fn few_long_patterns_join_the_middle_row_many_keep_their_own() {
        // Hex patterns as digests are: 13-byte ones (middle row, stride 9) and 40-byte
        // ones (longest row). 9 × 3 640 grams are at most 1/32 of the 16^5 hex 5-grams;
        // 9 × 3 641 are more.
        let mut next = xorshift(0x5851_F42D_4C95_7F2D);
        let mut hex = |len: usize| -> Vec<u8> {
            (0..len)
                .map(|_| b"0123456789abcdef"[next(16) as usize])
                .collect()
        };
        for (long, shards) in [(3_640, 1), (3_641, 2)] {
            let mut pats: Vec<Vec<u8>> = (0..20).map(|_| hex(13)).collect();
            for _ in 0..long {
                pats.push(hex(40));
            }
            let m = Matcher::with_shards(&pats, &[(12, 5), (32, 8)]);
            assert_eq!(m.shards.len(), shards, "{long} long patterns");
            let mut hay = hex(30_000);
            for i in 0..60 {
                let p = &pats[(i * 61) % pats.len()];
                let at = (i * 487) % hay.len();
                hay.splice(at..at, p.iter().copied());
            }
            assert_eq!(found(&m, &hay), naive(&pats, &hay));
        }
    }

    #[test]
    fn duplicate_and_empty_patterns() {
        let pats = vec![b"hello world".to_vec(), b"hello world".to_vec(), Vec::new()];
        let m = Matcher::new(&pats);
        assert_eq!(
            found(&m, b"xhello worldhello world"),
            naive(&pats, b"xhello worldhello world")
        );
        assert_eq!(found(&m, b"xhello worldhello world").len(), 4);
    }

    #[test]
    fn limit_stops_the_search() {
        let pats = vec![b"aaaaaa".to_vec()];
        let m = Matcher::new(&pats);
        let mut out = Vec::new();
        assert!(!m.find_into(&[b'a'; 100], &mut out, 10));
        assert_eq!(out.len(), 10);
    }

    fn pattern_set() -> impl Strategy<Value = Vec<Vec<u8>>> {
        // Alphabets of 2–3 letters make overlaps and near-misses frequent.
        (2u8..4).prop_flat_map(|k| {
            prop::collection::vec(
                prop_oneof![
                    prop::collection::vec(0..k, 1..8),
                    prop::collection::vec(0..k, 8..40),
                    prop::collection::vec(0..k, 1..150),
                ],
                1..24,
            )
            .prop_map(|ps| {
                ps.into_iter()
                    .map(|p| p.into_iter().map(|b| b'a' + b).collect())
                    .collect()
            })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        #[test]
        fn same_as_naive_search(
            pats in pattern_set(),
            filler in prop::collection::vec(0u8..3, 0..400),
            plants in prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>()), 0..6),
            at_edges in any::<(bool, bool)>(),
        ) {
            let mut hay: Vec<u8> = filler.into_iter().map(|b| b'a' + b).collect();
            for (which, at) in plants {
                let p = &pats[which.index(pats.len())];
                let pos = at.index(hay.len() + 1);
                hay.splice(pos..pos, p.iter().copied());
            }
            if at_edges.0 {
                let p = pats[0].clone();
                hay.splice(0..0, p);
            }
            if at_edges.1 {
                hay.extend_from_slice(&pats[pats.len() - 1]);
            }
            let want = naive(&pats, &hay);
            let m = Matcher::new(&pats);
            prop_assert_eq!(found(&m, &hay), want.clone());
            // The plain build too (`for_each` runs the BMI2 one where the CPU has it).
            let mut plain = Vec::new();
            let _ = m.for_each_in(&hay, &mut |id, start| {
                plain.push((id, start));
                ControlFlow::Continue(())
            });
            plain.sort_unstable();
            prop_assert_eq!(plain, want.clone());
            // Other gram sizes and strides, as the benchmarks use them.
            let m = Matcher::with_shards(&pats, &[(3, 3), (5, 4), (9, 6), (11, 7), (20, 8)]);
            prop_assert_eq!(found(&m, &hay), want);
        }
    }
}
