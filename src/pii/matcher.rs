//! Multi-pattern substring matcher: every occurrence (pattern id, start) of every
//! pattern in a haystack, overlaps included — exactly the set a naive substring search
//! finds. Built once per case over all variants of all device values (DESIGN.md §3).
//!
//! # Design: a sampled q-gram index, sharded by pattern length
//!
//! A shard holds the patterns of length ≥ `m`; it uses grams of `q` bytes and the
//! stride `s = m − q + 1`. It looks only at haystack positions `p = 0, s, 2s, …`. Any
//! occurrence `[start, start + len)` with `len ≥ m` contains exactly one sample `p` with
//! `start ≤ p < start + s`, and the gram `hay[p..p+q]` lies inside the occurrence
//! (`p + q ≤ start + s − 1 + q = start + m ≤ start + len`). So each pattern is indexed
//! by its grams at offsets `0..s` only; at sample `p` the gram is looked up (a bit
//! table of `2^k` bits indexed by a multiplicative hash rejects almost every sample;
//! on a hit, an exact map gram → `(pattern, offset)` list) and every candidate is
//! verified by a slice comparison at `p − offset`. Each occurrence is reported exactly
//! once (its sample and offset are unique). No tail case exists: a sample with
//! `p + q > len` cannot lie inside an occurrence, by the inequality above.
//!
//! Patterns shorter than the smallest shard go to an `aho_corasick` fallback, built
//! only when such patterns exist (identifier variants shorter than 6 bytes are rare:
//! short custom strings, small coordinates).
//!
//! # Why not `aho-corasick` alone
//! Measured on the 2-core AMD EPYC (Zen 1, 2 GHz) this project runs its benches on,
//! over the corpus of `benches/matcher.rs`, `cargo bench --bench matcher`:
//! see the table in the comment on [`SHARDS`] (figures recorded there).
//! The digest variants (32–128 hex, 22–88 base64) are most of the patterns and become
//! nearly free here (one lookup per 25 bytes), while an automaton pays per byte and its
//! state table outgrows the cache as the pattern count grows.

use std::ops::ControlFlow;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use rustc_hash::FxHashMap;

/// Index of a pattern in the slice given to [`Matcher::new`].
pub type PatternId = u32;

/// Shard layout: `(min_len, q)`; a shard takes the patterns of length in
/// `[min_len, next shard's min_len)`, the last row takes everything longer.
/// Patterns shorter than the smallest `min_len` go to the Aho-Corasick fallback.
///
/// Figures (throughput over the bench corpus, one core; see `benches/matcher.rs`):
/// recorded in the module report and README; chosen so the long shard (digests)
/// samples every 25 bytes, the middle one every 5, the short one every 3.
pub const SHARDS: [(usize, usize); 3] = [(6, 4), (12, 8), (32, 8)];

/// Golden-ratio multiplier (Knuth's multiplicative hashing).
const HASH_MUL: u64 = 0x9E37_79B9_7F4A_7C15;

/// Bits of fast-reject table per indexed gram: 16 keeps the false-positive rate near
/// 1/16 (a hash-map probe per 16 useless samples at worst).
const BITS_PER_GRAM: usize = 16;
/// Fast-reject table bounds (log2 of bits): 2^13 bits = 1 KiB, 2^22 bits = 512 KiB
/// (the L2 size of the benchmark machine's core; larger tables miss the cache).
const MIN_TABLE_LOG2: u32 = 13;
const MAX_TABLE_LOG2: u32 = 22;

/// One length class of patterns with its sampled gram index.
#[derive(Debug, Clone)]
struct Shard {
    /// Gram size in bytes: 4 or 8.
    q: usize,
    /// Distance between samples: `min_len − q + 1`.
    stride: usize,
    /// `64 − log2(table bits)`.
    shift: u32,
    /// Fast-reject bit table, indexed by `hash(gram) >> shift`.
    bits: Vec<u64>,
    /// Exact gram → range in `entries`.
    table: FxHashMap<u64, (u32, u32)>,
    /// `(pattern, offset of the gram in the pattern)`, grouped by gram.
    entries: Vec<(PatternId, u32)>,
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
}

#[inline(always)]
fn load_gram(hay: &[u8], p: usize, q: usize) -> Option<u64> {
    if q == 8 {
        let b: [u8; 8] = hay.get(p..p + 8)?.try_into().ok()?;
        Some(u64::from_le_bytes(b))
    } else {
        let b: [u8; 4] = hay.get(p..p + 4)?.try_into().ok()?;
        Some(u64::from(u32::from_le_bytes(b)))
    }
}

#[inline(always)]
fn hash(gram: u64, shift: u32) -> usize {
    (gram.wrapping_mul(HASH_MUL) >> shift) as usize
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
        let want = (distinct * BITS_PER_GRAM).next_power_of_two();
        let log2 = want.trailing_zeros().clamp(MIN_TABLE_LOG2, MAX_TABLE_LOG2);
        let shift = 64 - log2;
        let mut bits = vec![0u64; (1usize << log2) / 64];
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
            let h = hash(g, shift);
            bits[h >> 6] |= 1 << (h & 63);
        }
        Shard {
            q,
            stride,
            shift,
            bits,
            table,
            entries,
        }
    }

    #[inline(always)]
    fn scan<F>(&self, m: &Matcher, hay: &[u8], f: &mut F) -> ControlFlow<()>
    where
        F: FnMut(PatternId, usize) -> ControlFlow<()>,
    {
        if self.q == 8 {
            self.scan_q::<8, F>(m, hay, f)
        } else {
            self.scan_q::<4, F>(m, hay, f)
        }
    }

    #[inline(always)]
    fn scan_q<const Q: usize, F>(&self, m: &Matcher, hay: &[u8], f: &mut F) -> ControlFlow<()>
    where
        F: FnMut(PatternId, usize) -> ControlFlow<()>,
    {
        let s = self.stride;
        let bits = &self.bits[..];
        let mut p = 0usize;
        while p + Q <= hay.len() {
            let g = if Q == 8 {
                let mut b = [0u8; 8];
                b.copy_from_slice(&hay[p..p + 8]);
                u64::from_le_bytes(b)
            } else {
                let mut b = [0u8; 4];
                b.copy_from_slice(&hay[p..p + 4]);
                u64::from(u32::from_le_bytes(b))
            };
            let h = hash(g, self.shift);
            if bits[h >> 6] & (1 << (h & 63)) != 0 {
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
        let mut bytes = Vec::new();
        let mut spans = Vec::with_capacity(patterns.len());
        for p in patterns {
            let p = p.as_ref();
            spans.push((bytes.len() as u32, p.len() as u32));
            bytes.extend_from_slice(p);
        }
        let mut classes: Vec<Vec<(PatternId, &[u8])>> = vec![Vec::new(); SHARDS.len()];
        let mut short: Vec<(PatternId, &[u8])> = Vec::new();
        for (id, p) in patterns.iter().enumerate() {
            let p = p.as_ref();
            if p.is_empty() {
                continue;
            }
            match SHARDS.iter().rposition(|&(min, _)| p.len() >= min) {
                Some(c) => classes[c].push((id as PatternId, p)),
                None => short.push((id as PatternId, p)),
            }
        }
        let shards = SHARDS
            .iter()
            .zip(&classes)
            .filter(|(_, members)| !members.is_empty())
            .map(|(&(min, q), members)| Shard::build(q, min, members))
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
        for shard in &self.shards {
            shard.scan(self, hay, &mut f)?;
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

    fn found(m: &Matcher, hay: &[u8]) -> Vec<(PatternId, usize)> {
        let mut out = Vec::new();
        assert!(m.find_into(hay, &mut out, usize::MAX));
        out.sort_unstable();
        out
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
            let m = Matcher::new(&pats);
            prop_assert_eq!(found(&m, &hay), naive(&pats, &hay));
        }
    }
}
