//! UTC timestamps with microsecond precision, the one clock every record uses.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Microseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

/// A time string that is not RFC 3339.
#[derive(Debug, thiserror::Error)]
#[error("not an RFC 3339 time: {text:?} ({reason})")]
pub struct TimeError {
    pub text: String,
    pub reason: String,
}

impl Timestamp {
    pub const fn from_micros(us: i64) -> Self {
        Timestamp(us)
    }

    pub const fn micros(self) -> i64 {
        self.0
    }

    /// Parses RFC 3339 with any UTC offset (`Z`, `+08:00`, …) and any fraction.
    pub fn parse_rfc3339(text: &str) -> Result<Self, TimeError> {
        let dt = OffsetDateTime::parse(text.trim(), &Rfc3339).map_err(|e| TimeError {
            text: text.to_string(),
            reason: e.to_string(),
        })?;
        let us = dt.unix_timestamp_nanos() / 1_000;
        i64::try_from(us).map(Timestamp).map_err(|_| TimeError {
            text: text.to_string(),
            reason: "out of range".into(),
        })
    }

    /// The current time of the system clock (for live sources only; analysis takes
    /// its times from the traffic).
    pub fn now() -> Self {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(i64::try_from(since.as_micros()).unwrap_or(i64::MAX))
    }

    /// Milliseconds added (negative to go back), saturating.
    pub fn add_millis(self, ms: i64) -> Self {
        Timestamp(self.0.saturating_add(ms.saturating_mul(1_000)))
    }
}

/// Seconds since the epoch of 0000-01-01T00:00:00Z and of 10000-01-01T00:00:00Z: the
/// years [`Timestamp::rfc3339`] formats itself (four digits, no sign).
const FAST_SECS: std::ops::Range<i64> = -62_167_219_200..253_402_300_800;

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`, formatted on the stack.
#[derive(Clone, Copy)]
pub struct Rfc3339Text([u8; 27]);

impl Rfc3339Text {
    pub fn as_str(&self) -> &str {
        // Every byte written by `Timestamp::rfc3339` is an ASCII digit or one of
        // `-T:.Z`, so the buffer is always UTF-8; the fallback never fires.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

/// Year, month (1–12) and day (1–31) of the proleptic Gregorian calendar for a day
/// count since 1970-01-01 (Howard Hinnant's `civil_from_days`). Exact for any `i64`
/// day count that does not overflow; callers pass years 0–9999 only.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `"00"` to `"99"`: the two digits of each value below 100.
static PAIRS: [[u8; 2]; 100] = {
    let mut t = [[0u8; 2]; 100];
    let mut i = 0;
    while i < 100 {
        t[i] = [b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
        i += 1;
    }
    t
};

/// Writes `v` as exactly `out.len()` decimal digits (the low ones, zero-padded), two
/// at a time (a division per digit was most of [`Timestamp::rfc3339`], called a few
/// times per stored record).
fn digits(out: &mut [u8], mut v: u64) {
    let mut rest = out;
    while let [head @ .., hi, lo] = rest {
        // `v % 100 < 100`: the fallback never happens.
        let [h, l] = PAIRS.get((v % 100) as usize).copied().unwrap_or([b'0'; 2]);
        (*hi, *lo) = (h, l);
        v /= 100;
        rest = head;
    }
    if let [only] = rest {
        *only = b'0' + (v % 10) as u8;
    }
}

impl Timestamp {
    /// The RFC 3339 form [`Display`](fmt::Display) prints, without allocating, for
    /// the years 0000–9999 (`None` outside them). Every record, finding and stored
    /// time is printed through here: the hot path of the store (issue 4's profile put
    /// the `time`-crate formatting at 1–2 % of the proxy's CPU).
    pub fn rfc3339(self) -> Option<Rfc3339Text> {
        let secs = self.0.div_euclid(1_000_000);
        if !FAST_SECS.contains(&secs) {
            return None;
        }
        let micros = self.0.rem_euclid(1_000_000) as u64;
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400) as u64;
        let (year, month, day) = civil_from_days(days);
        let mut b = *b"0000-00-00T00:00:00.000000Z";
        // `FAST_SECS` keeps the year in 0..=9999.
        digits(&mut b[0..4], year as u64);
        digits(&mut b[5..7], u64::from(month));
        digits(&mut b[8..10], u64::from(day));
        digits(&mut b[11..13], sod / 3_600);
        digits(&mut b[14..16], sod / 60 % 60);
        digits(&mut b[17..19], sod % 60);
        digits(&mut b[20..26], micros);
        Some(Rfc3339Text(b))
    }
}

/// [`Timestamp::rfc3339`] for times that mostly fall in the second of the time before
/// them (a live store dates every record by the clock, thousands a second): the date
/// and time of day are formatted once per second, only the fractional digits per call.
#[derive(Default)]
pub struct Rfc3339Memo {
    /// The last second formatted (seconds since the epoch) and its text.
    last: Option<(i64, Rfc3339Text)>,
}

impl Rfc3339Memo {
    /// The text [`Timestamp::rfc3339`] gives for `t`.
    pub fn text(&mut self, t: Timestamp) -> Option<Rfc3339Text> {
        let secs = t.0.div_euclid(1_000_000);
        match &mut self.last {
            Some((s, text)) if *s == secs => {
                // The six digits after `SS.`; the rest is the same second's.
                if let Some(fraction) = text.0.get_mut(20..26) {
                    digits(fraction, t.0.rem_euclid(1_000_000) as u64);
                }
                Some(*text)
            }
            _ => {
                let text = t.rfc3339()?;
                self.last = Some((secs, text));
                Some(text)
            }
        }
    }
}

impl fmt::Display for Timestamp {
    /// `2026-11-28T10:15:29.112345Z`: always UTC, always six fractional digits, so that
    /// output is byte-for-byte stable and sorts as text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rfc3339() {
            Some(text) => f.write_str(text.as_str()),
            None => display_via_time(*self, f),
        }
    }
}

/// The general formatter (any year the `time` crate knows; `@…us` beyond), for the
/// rare times outside [`FAST_SECS`]; also the model the fast one is tested against.
fn display_via_time(t: Timestamp, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let secs = t.0.div_euclid(1_000_000);
    let micros = t.0.rem_euclid(1_000_000);
    match OffsetDateTime::from_unix_timestamp(secs) {
        Ok(dt) => write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
            dt.year(),
            u8::from(dt.month()),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second(),
            micros
        ),
        Err(_) => write!(f, "@{}us", t.0),
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.rfc3339() {
            Some(text) => s.serialize_str(text.as_str()),
            None => s.collect_str(self),
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Timestamp::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_offsets_and_formats_utc() {
        let t = Timestamp::parse_rfc3339("2026-11-28T18:15:29.112345+08:00").unwrap();
        assert_eq!(t.to_string(), "2026-11-28T10:15:29.112345Z");
        let t = Timestamp::parse_rfc3339("2026-11-28T10:15:30.25Z").unwrap();
        assert_eq!(t.to_string(), "2026-11-28T10:15:30.250000Z");
    }

    #[test]
    fn rejects_garbage() {
        assert!(Timestamp::parse_rfc3339("yesterday").is_err());
        assert!(Timestamp::parse_rfc3339("2026-13-01T00:00:00Z").is_err());
    }

    #[test]
    fn formats_before_epoch() {
        assert_eq!(Timestamp(-1).to_string(), "1969-12-31T23:59:59.999999Z");
    }

    /// `Display` through the `time` crate only: the formatter before the fast one.
    struct ViaTime(Timestamp);
    impl fmt::Display for ViaTime {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            display_via_time(self.0, f)
        }
    }

    #[test]
    fn fast_formatter_edges_match_the_time_crate() {
        let edges = [
            0,
            -1,
            FAST_SECS.start * 1_000_000,
            FAST_SECS.start * 1_000_000 - 1,
            FAST_SECS.end * 1_000_000 - 1,
            FAST_SECS.end * 1_000_000,
            // 2000-02-29, 2100-03-01 (not a leap year), 1600-02-29.
            951_782_400_000_000,
            4_107_542_400_000_000,
            -11_670_912_000_000_000,
            i64::MIN,
            i64::MAX,
        ];
        for us in edges {
            let t = Timestamp(us);
            assert_eq!(t.to_string(), ViaTime(t).to_string(), "{us}");
        }
        assert!(Timestamp(FAST_SECS.end * 1_000_000).rfc3339().is_none());
        assert_eq!(
            Timestamp(FAST_SECS.end * 1_000_000 - 1).to_string(),
            "9999-12-31T23:59:59.999999Z"
        );
        assert_eq!(
            Timestamp(FAST_SECS.start * 1_000_000).to_string(),
            "0000-01-01T00:00:00.000000Z"
        );
        assert_eq!(
            serde_json::to_string(&Timestamp(i64::MAX)).unwrap(),
            format!("\"@{}us\"", i64::MAX)
        );
    }

    #[test]
    fn digits_are_the_low_decimal_digits_zero_padded() {
        for (len, v) in [
            (1, 7),
            (1, 42),
            (2, 5),
            (3, 123),
            (4, 2026),
            (4, 12_345),
            (6, 999_999),
            (6, 0),
        ] {
            let mut out = vec![b'x'; len];
            digits(&mut out, v);
            let naive = format!("{v:0len$}");
            assert_eq!(
                String::from_utf8(out).unwrap(),
                naive[naive.len() - len..],
                "{len} {v}"
            );
        }
    }

    proptest::proptest! {
        /// Runs of times close together (most in one second, some across a second's
        /// or a day's end, a few far away or outside the fast range).
        #[test]
        fn the_memo_formats_as_rfc3339_does(
            start in (FAST_SECS.start * 1_000_000 - 3_000_000)..(FAST_SECS.end * 1_000_000 + 3_000_000),
            steps in proptest::collection::vec(
                proptest::prop_oneof![
                    8 => 0i64..2_000,
                    2 => -1_500_000i64..1_500_000,
                    1 => proptest::prelude::any::<i64>(),
                ],
                1..40,
            ),
        ) {
            let mut memo = Rfc3339Memo::default();
            let mut t = start;
            for step in steps {
                t = t.saturating_add(step);
                let ours = memo.text(Timestamp(t)).map(|x| x.as_str().to_string());
                let model = Timestamp(t).rfc3339().map(|x| x.as_str().to_string());
                proptest::prop_assert_eq!(ours, model, "{}", t);
            }
        }

        #[test]
        fn fast_formatter_matches_the_time_crate(us in proptest::prelude::any::<i64>()) {
            let t = Timestamp(us);
            proptest::prop_assert_eq!(t.to_string(), ViaTime(t).to_string());
            proptest::prop_assert_eq!(
                serde_json::to_string(&t).unwrap(),
                serde_json::to_string(&ViaTime(t).to_string()).unwrap()
            );
        }

        #[test]
        fn fast_formatter_matches_in_its_range(
            us in (FAST_SECS.start * 1_000_000)..(FAST_SECS.end * 1_000_000)
        ) {
            let t = Timestamp(us);
            proptest::prop_assert_eq!(t.to_string(), ViaTime(t).to_string());
            // And parses back to itself.
            proptest::prop_assert_eq!(Timestamp::parse_rfc3339(&t.to_string()).unwrap(), t);
        }
    }
}
