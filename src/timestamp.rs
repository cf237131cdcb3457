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

impl fmt::Display for Timestamp {
    /// `2026-11-28T10:15:29.112345Z`: always UTC, always six fractional digits, so that
    /// output is byte-for-byte stable and sorts as text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.div_euclid(1_000_000);
        let micros = self.0.rem_euclid(1_000_000);
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
            Err(_) => write!(f, "@{}us", self.0),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
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
}
