//! Pattern detectors for personal data not tied to a device value (DESIGN.md §3,
//! confidence `pattern`): e-mail addresses, phone numbers (CN mobile, E.164), CN
//! resident ids (GB 11643 check digit, plausible birth date), IMEI (Luhn) and bank
//! cards (Luhn, known issuer prefixes).
//!
//! One pass finds maximal runs of 8 or more digits (testing one aligned 4-byte block
//! per 4 bytes, see [`long_digit_runs`]), and `memchr` finds `@` for e-mail addresses; no regular expressions. A
//! candidate must not touch a letter or digit on either side (a digit run inside a hex
//! id or a longer number is not a phone number). Digit runs are classified by length:
//! - `+` and 8–15 digits: phone (E.164); nothing else is tried on that run.
//! - 11 digits `1[3-9]…`: phone (CN mobile).
//! - 15 digits, Luhn-valid, not all zeros: IMEI (the 15-digit MEID-with-check form is
//!   the same shape), except Amex prefixes 34/37 which are reported as bank cards.
//! - 17 digits + `X`/`x`, or 18 digits: resident id when the ISO 7064 MOD 11-2 check
//!   character is right, the region's first digit is 1–8 and the birth date
//!   (1900–2099) exists.
//! - 13–19 digits, Luhn-valid, with a known issuer prefix: bank card. Prefixes:
//!   UnionPay `62` (16–19), Visa `4` (13, 16, 19), Mastercard `51`–`55` and
//!   `2221`–`2720` (16), Amex `34`/`37` (15), JCB `3528`–`3589` (16–19), Discover
//!   `6011`/`644`–`649`/`65` (16–19).

use memchr::memchr_iter;

use crate::checksum::{luhn_valid, resident_id_valid};

use crate::case::IdentifierKind;

/// What a pattern found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PatternKind {
    Email,
    Phone,
    ResidentId,
    Imei,
    BankCard,
}

impl PatternKind {
    /// The identifier kind reported for it.
    pub fn kind(self) -> IdentifierKind {
        match self {
            PatternKind::Email => IdentifierKind::Email,
            PatternKind::Phone => IdentifierKind::Phone,
            PatternKind::ResidentId => IdentifierKind::ResidentId,
            PatternKind::Imei => IdentifierKind::Imei,
            PatternKind::BankCard => IdentifierKind::BankCard,
        }
    }
}

/// Longest local part of an e-mail address (RFC 5321).
const MAX_EMAIL_LOCAL: usize = 64;
/// Longest domain of an e-mail address (RFC 5321).
const MAX_EMAIL_DOMAIN: usize = 255;

/// Calls `f(kind, start, end)` for every pattern hit in `data`, in order of position
/// within each detector.
pub fn scan(data: &[u8], mut f: impl FnMut(PatternKind, usize, usize)) {
    long_digit_runs(data, |s, e| classify_digits(data, s, e, &mut f));
    for at in memchr_iter(b'@', data) {
        if let Some((s, e)) = email_at(data, at) {
            f(PatternKind::Email, s, e);
        }
    }
}

/// Shortest digit run any detector looks at (E.164: `+` and 8 digits).
const MIN_RUN: usize = 8;

/// High bit set in each byte of the 8 at `p` that is not an ASCII digit.
#[inline(always)]
fn non_digits8(data: &[u8], p: usize) -> u64 {
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut b = [0u8; 8];
    b.copy_from_slice(&data[p..p + 8]);
    // x ^ '0' maps digits to 0..=9; adding 0x76 to the low 7 bits (no carry between
    // bytes) sets the high bit exactly for values 10..=127; OR-ing x covers 128..=255.
    let x = u64::from_le_bytes(b) ^ 0x3030_3030_3030_3030;
    (((x & LOW7) + 0x7676_7676_7676_7676) | x) & HIGH
}

/// Calls `f(start, end)` for each maximal run of at least [`MIN_RUN`] ASCII digits.
///
/// Where 80 bytes remain, 64 positions at a time: one bit per byte says "digit"
/// (five SSE2 compares), and three shift-and steps turn that into one bit per
/// position where [`MIN_RUN`] digits begin ([`digit_windows64`]). Text without a long
/// run — JSON full of short numbers and hex ids — costs those few operations per 64
/// bytes and no per-run work (short digit groups were a tenth of a request's pattern
/// scan when each was expanded). The first such window of a block is the start of its
/// run: the window before it was tested too (in this block or the previous one) and
/// failed, so the byte before is no digit. The run is expanded to its end and the
/// search goes on after it.
///
/// The last bytes, and all of them off x86_64: a run of 8 or more digits always
/// contains a whole 4-byte block starting at `p + 4k`, so only those blocks are tested
/// (four per SSE2 compare, two per 8-byte word operation near the end); a block of four
/// digits is expanded to its run. Text with short digit groups (hex ids, timestamps
/// of other lengths) costs one test per 4 bytes.
fn long_digit_runs(data: &[u8], mut f: impl FnMut(usize, usize)) {
    let mut p = 0;
    #[cfg(target_arch = "x86_64")]
    while p + 80 <= data.len() {
        let windows = digit_windows64(data, p);
        if windows == 0 {
            p += 64;
            continue;
        }
        let s = p + windows.trailing_zeros() as usize;
        debug_assert!(s == 0 || !data[s - 1].is_ascii_digit());
        // Invariant: s + MIN_RUN <= p + 63 + 8 < data.len() (loop condition).
        let e = data[s + MIN_RUN..]
            .iter()
            .position(|b| !b.is_ascii_digit())
            .map_or(data.len(), |i| s + MIN_RUN + i);
        f(s, e);
        // `data[e]` is no digit: the next run starts after it.
        p = e;
    }
    while p + 4 <= data.len() {
        // Four blocks per SSE2 compare where 16 bytes remain: the first all-digit
        // block at or after `p`, the same one the 8-byte steps below would reach.
        #[cfg(target_arch = "x86_64")]
        if p + 16 <= data.len() {
            let full = digit_blocks16(data, p);
            if full == 0 {
                p += 16;
                continue;
            }
            let block = p + full.trailing_zeros() as usize;
            p = expand_run(data, block, &mut f);
            continue;
        }
        // Test two blocks per load where 8 bytes remain, else the last block alone.
        let nd = if p + 8 <= data.len() {
            non_digits8(data, p)
        } else {
            let mut b = [b'x'; 8];
            b[..4].copy_from_slice(&data[p..p + 4]);
            non_digits8(&b, 0)
        };
        let block = if nd & 0x8080_8080 == 0 {
            p
        } else if nd >> 32 == 0 {
            p + 4
        } else {
            p += 8;
            continue;
        };
        p = expand_run(data, block, &mut f);
    }
}

// `digit_windows64` finds windows of exactly 8 digits with three doubling steps.
const _: () = assert!(MIN_RUN == 8);

/// Bit `k` set when `data[p + k..p + k + 8]` is all ASCII digits, for `k` in 0..64
/// (needs `p + 80 <= data.len()`: the windows of the last positions reach into the
/// next 16 bytes).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn digit_windows64(data: &[u8], p: usize) -> u64 {
    let d = u128::from(digits16(data, p))
        | u128::from(digits16(data, p + 16)) << 16
        | u128::from(digits16(data, p + 32)) << 32
        | u128::from(digits16(data, p + 48)) << 48
        | u128::from(digits16(data, p + 64)) << 64;
    // Runs of 2, 4, then 8 digits starting at each bit.
    let d2 = d & d >> 1;
    let d4 = d2 & d2 >> 2;
    (d4 & d4 >> 4) as u64
}

/// Bit `k` set when `data[p + k]` is an ASCII digit, for `k` in 0..16 (needs
/// `p + 16 <= data.len()`).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn digits16(data: &[u8], p: usize) -> u16 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_set1_epi8,
        _mm_sub_epi8,
    };
    let lane = &data[p..p + 16];
    // SAFETY: SSE2 is part of the x86_64 baseline; the load reads the 16 bytes of
    // `lane` (bounds checked by the slice above; unaligned loads are allowed).
    unsafe {
        let v = _mm_loadu_si128(lane.as_ptr().cast());
        // b - '0' (wrapping) is at most 9 exactly for ASCII digits: min(x, 9) == x.
        let x = _mm_sub_epi8(v, _mm_set1_epi8(b'0' as i8));
        let le9 = _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(9)), x);
        _mm_movemask_epi8(le9) as u16
    }
}

/// Expands the all-digit block `data[block..block + 4]` to its maximal run, reports
/// it when long enough, and returns the next block offset to test: the first
/// multiple of 4 strictly after the non-digit that ends the run.
#[inline(always)]
fn expand_run(data: &[u8], block: usize, f: &mut impl FnMut(usize, usize)) -> usize {
    let s = data[..block]
        .iter()
        .rposition(|b| !b.is_ascii_digit())
        .map_or(0, |i| i + 1);
    let e = data[block + 4..]
        .iter()
        .position(|b| !b.is_ascii_digit())
        .map_or(data.len(), |i| block + 4 + i);
    if e - s >= MIN_RUN {
        f(s, e);
    }
    (e + 4) & !3
}

/// The all-digit 4-byte blocks among the four at `p`, `p + 4`, `p + 8`, `p + 12`:
/// bit `4k` set when `data[p + 4k..p + 4k + 4]` is all ASCII digits (needs
/// `p + 16 <= data.len()`).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn digit_blocks16(data: &[u8], p: usize) -> u32 {
    let digits = u32::from(digits16(data, p));
    digits & digits >> 1 & digits >> 2 & digits >> 3 & 0x1111
}

fn alnum_at(data: &[u8], i: usize) -> bool {
    data.get(i).is_some_and(u8::is_ascii_alphanumeric)
}

fn classify_digits(data: &[u8], s: usize, e: usize, f: &mut impl FnMut(PatternKind, usize, usize)) {
    let run = &data[s..e];
    let n = run.len();
    if !(MIN_RUN..=19).contains(&n) {
        return;
    }
    let left_ok = s == 0 || !data[s - 1].is_ascii_alphanumeric();
    if s > 0 && data[s - 1] == b'+' {
        let before_ok = s < 2 || !data[s - 2].is_ascii_alphanumeric();
        if before_ok && !alnum_at(data, e) && (8..=15).contains(&n) {
            f(PatternKind::Phone, s - 1, e);
        }
        return;
    }
    if !left_ok {
        return;
    }
    if n == 17 && matches!(data.get(e), Some(b'X' | b'x')) && !alnum_at(data, e + 1) {
        if resident_id_valid(&data[s..e + 1]) {
            f(PatternKind::ResidentId, s, e + 1);
        }
        return;
    }
    if alnum_at(data, e) {
        return;
    }
    match n {
        11 if run[0] == b'1' && (b'3'..=b'9').contains(&run[1]) => f(PatternKind::Phone, s, e),
        15 if luhn_valid(run) && run.iter().any(|&b| b != b'0') => {
            if run.starts_with(b"34") || run.starts_with(b"37") {
                f(PatternKind::BankCard, s, e);
            } else {
                f(PatternKind::Imei, s, e);
            }
        }
        18 if resident_id_valid(run) => f(PatternKind::ResidentId, s, e),
        13..=19 if luhn_valid(run) && known_iin(run) => f(PatternKind::BankCard, s, e),
        _ => {}
    }
}

fn prefix_num(run: &[u8], k: usize) -> u32 {
    run.iter()
        .take(k)
        .fold(0, |acc, &b| acc * 10 + u32::from(b.wrapping_sub(b'0')))
}

fn known_iin(run: &[u8]) -> bool {
    let n = run.len();
    let p2 = prefix_num(run, 2);
    let p3 = prefix_num(run, 3);
    let p4 = prefix_num(run, 4);
    (p2 == 62 && (16..=19).contains(&n))
        || (run[0] == b'4' && matches!(n, 13 | 16 | 19))
        || ((51..=55).contains(&p2) && n == 16)
        || ((2221..=2720).contains(&p4) && n == 16)
        || ((p2 == 34 || p2 == 37) && n == 15)
        || ((3528..=3589).contains(&p4) && (16..=19).contains(&n))
        || ((p4 == 6011 || (644..=649).contains(&p3) || p2 == 65) && (16..=19).contains(&n))
}

fn email_local(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn email_domain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')
}

/// The e-mail address around the `@` at `at`, if there is a plausible one.
fn email_at(data: &[u8], at: usize) -> Option<(usize, usize)> {
    let mut s = at;
    while s > 0 && at - s <= MAX_EMAIL_LOCAL && email_local(data[s - 1]) {
        s -= 1;
    }
    if at - s > MAX_EMAIL_LOCAL {
        return None;
    }
    while s < at && !data[s].is_ascii_alphanumeric() {
        s += 1; // a local part starts with a letter or digit here
    }
    if s == at {
        return None;
    }
    let mut e = at + 1;
    while e < data.len() && e - at <= MAX_EMAIL_DOMAIN && email_domain(data[e]) {
        e += 1;
    }
    if e - at > MAX_EMAIL_DOMAIN {
        return None;
    }
    while e > at + 1 && matches!(data[e - 1], b'.' | b'-') {
        e -= 1;
    }
    let domain = &data[at + 1..e];
    let dot = domain.iter().rposition(|&b| b == b'.')?;
    let tld = &domain[dot + 1..];
    if dot == 0 || tld.len() < 2 || !tld.iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    if domain.windows(2).any(|w| w == b"..") || is_file_extension(tld) {
        return None;
    }
    Some((s, e))
}

/// File-name endings that look like top-level domains after an `@`: image assets
/// are named `icon@2x.png`, and no e-mail domain ends in these.
fn is_file_extension(tld: &[u8]) -> bool {
    const EXTENSIONS: [&[u8]; 14] = [
        b"png", b"jpg", b"jpeg", b"gif", b"webp", b"svg", b"ico", b"bmp", b"js", b"css", b"json",
        b"html", b"mp4", b"pdf",
    ];
    EXTENSIONS.iter().any(|x| tld.eq_ignore_ascii_case(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(data: &str) -> Vec<(PatternKind, String)> {
        let mut out = Vec::new();
        scan(data.as_bytes(), |k, s, e| {
            out.push((k, data[s..e].to_string()))
        });
        out
    }

    fn one(data: &str, kind: PatternKind, text: &str) {
        assert_eq!(hits(data), vec![(kind, text.to_string())], "in {data:?}");
    }

    fn none(data: &str) {
        assert_eq!(hits(data), vec![], "in {data:?}");
    }

    #[test]
    fn cn_mobile() {
        one("tel=13800138000&x=1", PatternKind::Phone, "13800138000");
        none("tel=12800138000"); // 12x is not a mobile prefix
        none("id=138001380001"); // 12 digits
        none("h=a13800138000"); // inside an alnum run
        none("h=13800138000f");
    }

    #[test]
    fn e164() {
        one(
            "{\"p\":\"+8613800138000\"}",
            PatternKind::Phone,
            "+8613800138000",
        );
        one("to=+14155550100", PatternKind::Phone, "+14155550100");
        none("x=+1234567"); // 7 digits
        none("x=+1234567890123456"); // 16 digits
    }

    #[test]
    fn resident_id() {
        // Synthetic ids with correct check characters (computed by the rule above).
        one(
            "id=11010519491231002X;",
            PatternKind::ResidentId,
            "11010519491231002X",
        );
        one(
            "id=440524198001010013",
            PatternKind::ResidentId,
            "440524198001010013",
        );
        none("id=440524188001010014"); // born 1880
        none("id=11010519491231002Y");
        none("id=110105194912310021"); // wrong check digit
        none("id=11010519491331002X"); // month 13
        assert!(!resident_id_valid(b"910105194912310029")); // region 9
    }

    #[test]
    fn imei() {
        one("imei=490154203237518", PatternKind::Imei, "490154203237518");
        none("imei=490154203237517"); // Luhn fails
        none("imei=000000000000000");
    }

    #[test]
    fn bank_cards() {
        one(
            "card=6222021234567890128 ",
            PatternKind::BankCard,
            "6222021234567890128",
        );
        one(
            "card=4111111111111111",
            PatternKind::BankCard,
            "4111111111111111",
        );
        one(
            "card=5500000000000004",
            PatternKind::BankCard,
            "5500000000000004",
        );
        one(
            "card=378282246310005",
            PatternKind::BankCard,
            "378282246310005",
        );
        none("card=4111111111111112"); // Luhn fails
        none("card=9111111111111110"); // Luhn ok, unknown prefix
        none("ts=1732790000000");
    }

    #[test]
    fn asset_names_are_not_emails() {
        assert!(hits("/img/welcome@2x.png?v=1 icon@3x.JPG").is_empty());
        assert_eq!(hits("mail me@example.org").len(), 1);
    }

    #[test]
    fn emails() {
        one(
            "a=tester@example.org&b=1",
            PatternKind::Email,
            "tester@example.org",
        );
        one(
            "\"Zhang.San+x@mail.example.co.uk.\"",
            PatternKind::Email,
            "Zhang.San+x@mail.example.co.uk",
        );
        none("user@localhost");
        none("@example.org");
        none("a@b.c1");
    }

    #[test]
    fn long_runs_at_edges() {
        let data = b"12345678a1234567+123456789012345678901234567890";
        let mut runs = Vec::new();
        long_digit_runs(data, |s, e| runs.push((s, e)));
        assert_eq!(runs, vec![(0, 8), (17, data.len())]);
    }

    proptest::proptest! {
        #[test]
        fn long_runs_same_as_naive(data in proptest::collection::vec(
            proptest::sample::select(b"0123456789a+/:\x00\xff\xb0".to_vec()), 0..400)) {
            long_runs_check(&data)?;
        }

        /// Mostly digits and long inputs: runs across the 64-byte blocks of the
        /// vector loop, at its last block and in the tail after it.
        #[test]
        fn long_runs_same_as_naive_digit_heavy(data in proptest::collection::vec(
            proptest::sample::select(b"01234567890123456789a+".to_vec()),
            0..400)) {
            long_runs_check(&data)?;
        }
    }

    /// [`long_digit_runs`] against a byte-by-byte scan.
    fn long_runs_check(data: &[u8]) -> Result<(), proptest::test_runner::TestCaseError> {
        let mut want = Vec::new();
        let mut i = 0;
        while i < data.len() {
            if data[i].is_ascii_digit() {
                let s = i;
                while i < data.len() && data[i].is_ascii_digit() {
                    i += 1;
                }
                if i - s >= MIN_RUN {
                    want.push((s, i));
                }
            } else {
                i += 1;
            }
        }
        let mut got = Vec::new();
        long_digit_runs(data, |s, e| got.push((s, e)));
        proptest::prop_assert_eq!(got, want);
        Ok(())
    }
}
