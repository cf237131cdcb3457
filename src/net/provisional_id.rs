//! Provisional exchange ids, so that `analyze` reads a capture file once.
//!
//! A capture's exchange ids derive from the file's SHA-256 ([`super::tap`]), which is
//! only known once the whole file has been read. While the single pass runs, the tap
//! names each exchange `x-` + a per-run random nonce + the input's number, the
//! connection's first frame and the discriminator, each as fixed-width lowercase hex:
//! the id carries its own parts, so no table of ids is kept. At the end every text
//! of the run goes through [`ProvisionalIds::rewrite`], which puts the final id in
//! place of each provisional one.
//!
//! Traffic-derived strings (signal values, hosts, paths) share those texts, and
//! traffic can imitate any format; it cannot know the nonce, drawn from the system's
//! random source when the run starts. So only the nonce marks a provisional id.

use std::sync::Arc;

use memchr::memmem;

/// Bytes of the nonce (128 bits: traffic written before the run cannot guess it).
pub const NONCE_BYTES: usize = 16;
/// Hex digits after the nonce: input number, first frame, discriminator (u64 each).
const PARTS_HEX: usize = 3 * 16;

/// The provisional ids of one run: makes the per-input namers and rewrites texts.
pub struct ProvisionalIds {
    /// `x-` and the nonce's hex.
    prefix: Arc<str>,
    finder: memmem::Finder<'static>,
}

/// What a provisional id names: enough to compute the final id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdParts {
    pub input: u64,
    pub first_frame: u64,
    pub discriminator: u64,
}

/// Names the exchanges of one input provisionally (held by its tap).
#[derive(Debug, Clone)]
pub struct InputIds {
    /// `x-`, the nonce and the input number: what its ids start with.
    head: [u8; HEAD_LEN],
}

impl ProvisionalIds {
    /// A run with `nonce`: drawn by the caller from the system's random source
    /// (`cli::final_ids::fresh_ids`), a constant in tests.
    pub fn with_nonce(nonce: [u8; NONCE_BYTES]) -> Self {
        let mut prefix = String::with_capacity(2 + 2 * NONCE_BYTES);
        prefix.push_str("x-");
        crate::source::push_hex(&mut prefix, &nonce);
        let prefix: Arc<str> = prefix.into();
        let finder = memmem::Finder::new(prefix.as_bytes()).into_owned();
        ProvisionalIds { prefix, finder }
    }

    /// The namer of input number `input` (its position on the command line).
    pub fn input(&self, input: u64) -> InputIds {
        let mut head = [0u8; HEAD_LEN];
        let (prefix, digits) = head.split_at_mut(HEAD_LEN - 16);
        prefix.copy_from_slice(self.prefix.as_bytes());
        digits.copy_from_slice(&hex16(input));
        InputIds { head }
    }

    /// Whether `text` holds this run's nonce (a provisional id, or a piece of one).
    pub fn marks(&self, text: &str) -> bool {
        self.finder.find(text.as_bytes()).is_some()
    }

    /// The parts of `id` when it is exactly one of this run's provisional ids.
    pub fn parts(&self, id: &str) -> Option<IdParts> {
        let digits = id.strip_prefix(&*self.prefix)?;
        if digits.len() != PARTS_HEX {
            return None;
        }
        parse_parts(digits.as_bytes())
    }

    /// Replaces every provisional id of this run in `text` with `final_id(parts)`;
    /// returns how many it replaced. Text that only looks like one (another nonce, a
    /// nonce cut short, missing or non-hex digits) is left as it is.
    pub fn rewrite(&self, text: &mut String, final_id: &mut dyn FnMut(IdParts) -> String) -> usize {
        let bytes = text.as_bytes();
        let prefix = self.prefix.as_bytes();
        let mut out = String::new();
        let mut copied = 0;
        let mut replaced = 0;
        // The texts are short (a summary, an evidence note): a scan for `x` beats a
        // substring searcher's set-up (callgrind, bench30).
        let mut from = 0;
        while let Some(found) = bytes
            .get(from..)
            .and_then(|rest| memchr::memchr(b'x', rest))
        {
            let at = from + found;
            from = at + 1;
            if !bytes.get(at..).is_some_and(|rest| rest.starts_with(prefix)) {
                continue;
            }
            let digits_at = at + prefix.len();
            let Some(parts) = bytes
                .get(digits_at..digits_at + PARTS_HEX)
                .and_then(parse_parts)
            else {
                continue;
            };
            if replaced == 0 {
                out.reserve(text.len());
            }
            // `at` and `digits_at + PARTS_HEX` border ASCII bytes we matched: both are
            // char boundaries, so the slices below cannot fail.
            out.push_str(text.get(copied..at).unwrap_or_default());
            out.push_str(&final_id(parts));
            copied = digits_at + PARTS_HEX;
            from = copied;
            replaced += 1;
        }
        if replaced > 0 {
            out.push_str(text.get(copied..).unwrap_or_default());
            *text = out;
        }
        replaced
    }
}

impl InputIds {
    /// The provisional id of the exchange at `first_frame`, `discriminator`.
    pub fn id(&self, first_frame: u64, discriminator: u64) -> String {
        // Made in a stack buffer and checked as UTF-8 once: a `push_hex` per part
        // was ~350 instructions an exchange (callgrind, bench30).
        let mut buf = [0u8; ID_LEN];
        let (head, digits) = buf.split_at_mut(HEAD_LEN);
        head.copy_from_slice(&self.head);
        let (first, disc) = digits.split_at_mut(16);
        first.copy_from_slice(&hex16(first_frame));
        disc.copy_from_slice(&hex16(discriminator));
        // Hex digits and the prefix's ASCII: never fails.
        std::str::from_utf8(&buf).unwrap_or_default().to_string()
    }
}

/// Length of a provisional id, and of its part common to one input.
const ID_LEN: usize = 2 + 2 * NONCE_BYTES + PARTS_HEX;
const HEAD_LEN: usize = ID_LEN - 32;

/// `v` as 16 lowercase hex digits, most significant first: the nibbles are spread
/// into the bytes of a word and turned into ASCII all at once.
fn hex16(v: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (half, x) in out.chunks_exact_mut(8).zip([v >> 32, v & 0xffff_ffff]) {
        // Nibble i of `x` into byte i of `s`.
        let mut s = ((x & 0xffff_0000) << 16) | (x & 0xffff);
        s = ((s & 0x0000_ff00_0000_ff00) << 8) | (s & 0x0000_00ff_0000_00ff);
        s = ((s & 0x00f0_00f0_00f0_00f0) << 4) | (s & 0x000f_000f_000f_000f);
        // 1 in each byte whose nibble is above 9: those become letters.
        let letters = ((s + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
        let ascii = s + 0x3030_3030_3030_3030 + letters * u64::from(b'a' - b'0' - 10);
        half.copy_from_slice(&ascii.to_be_bytes());
    }
    out
}

/// Value of each lowercase hex digit; `INVALID` for every other byte.
const INVALID: u8 = 0xff;
static HEX_VALUE: [u8; 256] = {
    let mut t = [INVALID; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// Three u64 as 16 lowercase hex digits each; `None` for anything else.
fn parse_parts(digits: &[u8]) -> Option<IdParts> {
    if digits.len() != PARTS_HEX {
        return None;
    }
    let mut values = [0u64; 3];
    let mut invalid = 0u8;
    for (value, chunk) in values.iter_mut().zip(digits.chunks_exact(16)) {
        for &d in chunk {
            let nibble = HEX_VALUE[usize::from(d)];
            invalid |= nibble & 0xf0;
            *value = (*value << 4) | u64::from(nibble & 0x0f);
        }
    }
    if invalid != 0 {
        return None;
    }
    let [input, first_frame, discriminator] = values;
    Some(IdParts {
        input,
        first_frame,
        discriminator,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy;

    const NONCE: [u8; 16] = [0xa5; 16];

    fn ids() -> ProvisionalIds {
        ProvisionalIds::with_nonce(NONCE)
    }

    /// The final id the tests give: the parts, readable.
    fn named(p: IdParts) -> String {
        format!("X[{}.{}.{}]", p.input, p.first_frame, p.discriminator)
    }

    fn rewritten(ids: &ProvisionalIds, text: &str) -> (String, usize) {
        let mut s = text.to_string();
        let n = ids.rewrite(&mut s, &mut named);
        (s, n)
    }

    #[test]
    fn an_id_round_trips_its_parts() {
        let ids = ids();
        for (input, first, disc) in [(0, 0, 0), (3, 17, u64::MAX), (u64::MAX, 1 << 40, 7)] {
            let id = ids.input(input).id(first, disc);
            assert!(ids.marks(&id));
            let want = IdParts {
                input,
                first_frame: first,
                discriminator: disc,
            };
            assert_eq!(ids.parts(&id), Some(want));
            assert_eq!(rewritten(&ids, &id), (named(want), 1));
        }
    }

    #[test]
    fn ids_at_the_start_the_end_and_twice_are_rewritten() {
        let ids = ids();
        let a = ids.input(0).id(5, 1);
        let b = ids.input(1).id(9, u64::MAX);
        let text = format!("{a} then TC string at query:x of {b}");
        assert_eq!(
            rewritten(&ids, &text),
            (
                format!("X[0.5.1] then TC string at query:x of X[1.9.{}]", u64::MAX),
                2
            )
        );
        // Back to back, and the same id twice.
        assert_eq!(
            rewritten(&ids, &format!("{a}{a}{b}")),
            (format!("X[0.5.1]X[0.5.1]X[1.9.{}]", u64::MAX), 3)
        );
    }

    #[test]
    fn non_ascii_around_an_id_is_kept() {
        let ids = ids();
        let a = ids.input(2).id(1, 2);
        let text = format!("é€{a}𝄞ü");
        assert_eq!(rewritten(&ids, &text), ("é€X[2.1.2]𝄞ü".to_string(), 1));
    }

    #[test]
    fn look_alikes_are_left_alone() {
        let ids = ids();
        let real = ids.input(0).id(5, 1);
        let other_run = ProvisionalIds::with_nonce([0xa4; 16]).input(0).id(5, 1);
        let digits = &real[2 + 32..];
        let cases = [
            // Right format, another nonce (what traffic could write).
            other_run.clone(),
            // The nonce cut short, then digits.
            format!("{}{digits}", &real[..real.len() - PARTS_HEX - 1]),
            // The nonce, then too few digits (at the end of the text).
            real[..real.len() - 1].to_string(),
            // The nonce, then upper-case or non-hex digits.
            format!(
                "{}{}",
                &real[..34],
                digits.to_ascii_uppercase().replace('0', "A")
            ),
            format!("{}{}g", &real[..34], &digits[..PARTS_HEX - 1]),
            // The nonce, then digits split by a multi-byte char.
            format!("{}{}é{}", &real[..34], &digits[..10], &digits[10..]),
            // Traffic's own "x-…" texts.
            "x-0123456789abcdef".to_string(),
            "x-".to_string(),
            String::new(),
        ];
        for text in cases {
            assert_eq!(rewritten(&ids, &text), (text.clone(), 0), "{text:?}");
            assert_eq!(ids.parts(&text), None, "{text:?}");
        }
        // A look-alike next to a real id: only the real one changes.
        let text = format!("{other_run} {real}");
        assert_eq!(rewritten(&ids, &text), (format!("{other_run} X[0.5.1]"), 1));
        // Digits after a real id stay text (the parts have a fixed width).
        assert_eq!(
            rewritten(&ids, &format!("{real}0123")),
            ("X[0.5.1]0123".to_string(), 1)
        );
    }

    #[test]
    fn parts_needs_the_whole_id() {
        let ids = ids();
        let real = ids.input(1).id(2, 3);
        assert!(ids.parts(&format!(" {real}")).is_none());
        assert!(ids.parts(&format!("{real}0")).is_none());
    }

    proptest::proptest! {
        /// The word-at-a-time hex against `format!`'s, and the id against its layout.
        #[test]
        fn ids_are_their_parts_in_hex(input: u64, first: u64, disc: u64) {
            proptest::prop_assert_eq!(hex16(first).to_vec(), format!("{first:016x}").into_bytes());
            let want = format!("x-{}{input:016x}{first:016x}{disc:016x}", "a5".repeat(16));
            proptest::prop_assert_eq!(ids().input(input).id(first, disc), want);
        }

        /// Against a naive model: split at every occurrence of the prefix, take the
        /// next 48 bytes if they are lowercase hex.
        #[test]
        fn rewrite_matches_a_naive_model(
            pieces in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::string::string_regex("[a-f0-9x\\- é]{0,12}").unwrap(),
                    (0u64..4, 0u64..1000, proptest::prelude::any::<u64>())
                        .prop_map(|(i, f, d)| ProvisionalIds::with_nonce(NONCE).input(i).id(f, d)),
                    (0usize..82).prop_map(|cut| {
                        let id = ProvisionalIds::with_nonce(NONCE).input(1).id(2, 3);
                        id[..cut].to_string()
                    }),
                ],
                0..8,
            )
        ) {
            let ids = ids();
            let text: String = pieces.concat();
            let mut model = String::new();
            let mut n = 0;
            let mut rest = text.as_str();
            let prefix = format!("x-{}", "a5".repeat(16));
            while let Some(i) = rest.find(&prefix) {
                let after = &rest[i + prefix.len()..];
                let digits = after.get(..PARTS_HEX).filter(|d| {
                    d.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                });
                match digits {
                    Some(d) => {
                        let v = |k: usize| u64::from_str_radix(&d[16 * k..16 * k + 16], 16).unwrap();
                        model.push_str(&rest[..i]);
                        model.push_str(&named(IdParts { input: v(0), first_frame: v(1), discriminator: v(2) }));
                        n += 1;
                        rest = &after[PARTS_HEX..];
                    }
                    None => {
                        model.push_str(&rest[..i + 1]);
                        rest = &rest[i + 1..];
                    }
                }
            }
            model.push_str(rest);
            proptest::prop_assert_eq!(rewritten(&ids, &text), (model, n));
        }
    }
}
