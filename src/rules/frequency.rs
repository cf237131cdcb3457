//! `excessive-frequency`: the same identifier to the same receiver more than N times
//! within a sliding minute. Bounded: at most N+1 times per key and
//! [`MAX_FREQUENCY_KEYS`] keys.

use std::collections::{HashMap, VecDeque};

use crate::timestamp::Timestamp;

/// Most (device, identifier type, site) keys tracked; new keys beyond it are ignored
/// and counted, so hostile traffic with endless host names cannot grow memory.
pub const MAX_FREQUENCY_KEYS: usize = 100_000;

const WINDOW_US: i64 = 60_000_000;

#[derive(Debug, Default)]
struct Window {
    times: VecDeque<Timestamp>,
    /// Already reported for the burst in progress.
    reported: bool,
}

/// Sliding-window counters keyed by (device, identifier type, receiver site).
#[derive(Debug)]
pub struct FrequencyTracker {
    limit: usize,
    windows: HashMap<(String, String, String), Window>,
    /// Keys not tracked because of [`MAX_FREQUENCY_KEYS`].
    pub keys_dropped: u64,
}

impl FrequencyTracker {
    pub fn new(per_minute: u32) -> Self {
        FrequencyTracker {
            limit: per_minute as usize,
            windows: HashMap::new(),
            keys_dropped: 0,
        }
    }

    /// Records one send at `at`; returns the count in the last minute when this send
    /// first takes the key over the limit (once per burst).
    pub fn record(&mut self, device: &str, kind: &str, site: &str, at: Timestamp) -> Option<usize> {
        let key = (device.to_string(), kind.to_string(), site.to_string());
        if !self.windows.contains_key(&key) && self.windows.len() >= MAX_FREQUENCY_KEYS {
            self.keys_dropped += 1;
            return None;
        }
        let w = self.windows.entry(key).or_default();
        while w.times.front().is_some_and(|t| t.0 <= at.0 - WINDOW_US) {
            w.times.pop_front();
        }
        w.times.push_back(at);
        if w.times.len() > self.limit + 1 {
            w.times.pop_front();
        }
        if w.times.len() > self.limit {
            if !w.reported {
                w.reported = true;
                return Some(w.times.len());
            }
        } else {
            w.reported = false;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_once_per_burst() {
        let mut f = FrequencyTracker::new(3);
        let s = |i: i64| Timestamp(i * 1_000_000);
        assert_eq!(f.record("d", "imei", "x.com", s(0)), None);
        assert_eq!(f.record("d", "imei", "x.com", s(1)), None);
        assert_eq!(f.record("d", "imei", "x.com", s(2)), None);
        assert_eq!(f.record("d", "imei", "x.com", s(3)), Some(4));
        assert_eq!(f.record("d", "imei", "x.com", s(4)), None, "same burst");
        assert_eq!(f.record("d", "imei", "y.com", s(4)), None, "other receiver");
        // A quiet minute ends the burst; a new burst reports again.
        for i in 0..3 {
            assert_eq!(f.record("d", "imei", "x.com", s(100 + i)), None);
        }
        assert_eq!(f.record("d", "imei", "x.com", s(103)), Some(4));
    }

    #[test]
    fn exactly_at_limit_within_a_minute_does_not_fire() {
        let mut f = FrequencyTracker::new(2);
        let s = |i: i64| Timestamp(i * 1_000_000);
        assert_eq!(f.record("d", "k", "x", s(0)), None);
        assert_eq!(f.record("d", "k", "x", s(30)), None);
        assert_eq!(
            f.record("d", "k", "x", s(60)),
            None,
            "first send left the window"
        );
    }
}
