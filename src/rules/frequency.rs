//! `excessive-frequency`: the same identifier to the same receiver more than N times
//! within a sliding minute. Bounded: at most N+1 times per key and
//! [`MAX_FREQUENCY_KEYS`] keys.

use std::collections::{HashMap, VecDeque};

use foldhash::fast::SeedableRandomState;

use crate::net::keyed_hash;
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

impl Window {
    /// Counts a send at `at`; returns the count in the last minute when this send
    /// first takes it over `limit` (once per burst).
    fn send(&mut self, at: Timestamp, limit: usize) -> Option<usize> {
        while self.times.front().is_some_and(|t| t.0 <= at.0 - WINDOW_US) {
            self.times.pop_front();
        }
        self.times.push_back(at);
        if self.times.len() > limit + 1 {
            self.times.pop_front();
        }
        if self.times.len() > limit {
            if !self.reported {
                self.reported = true;
                return Some(self.times.len());
            }
        } else {
            self.reported = false;
        }
        None
    }
}

/// Sliding-window counters keyed by (device, identifier type, receiver site).
#[derive(Debug)]
pub struct FrequencyTracker {
    limit: usize,
    /// Keyed by [`key_into`]'s encoding of (device, identifier type, site): one byte
    /// string, so a lookup borrows the reused `key` buffer instead of building three
    /// `String`s per call.
    /// foldhash under a secret key (`net::keyed_hash`): traffic names the sites, and
    /// std's SipHash cost several hundred instructions per lookup.
    windows: HashMap<Vec<u8>, Window, SeedableRandomState>,
    key: Vec<u8>,
    /// Keys not tracked because of [`MAX_FREQUENCY_KEYS`].
    pub keys_dropped: u64,
}

impl FrequencyTracker {
    pub fn new(per_minute: u32) -> Self {
        FrequencyTracker {
            limit: per_minute as usize,
            windows: HashMap::with_hasher(keyed_hash::keyed_state()),
            key: Vec::new(),
            keys_dropped: 0,
        }
    }

    /// Records one send at `at`; returns the count in the last minute when this send
    /// first takes the key over the limit (once per burst).
    pub fn record(&mut self, device: &str, kind: &str, site: &str, at: Timestamp) -> Option<usize> {
        key_into(&mut self.key, device, kind, site);
        // A known key (the usual case) costs one lookup.
        if let Some(window) = self.windows.get_mut(self.key.as_slice()) {
            return window.send(at, self.limit);
        }
        if self.windows.len() >= MAX_FREQUENCY_KEYS {
            self.keys_dropped += 1;
            return None;
        }
        self.windows
            .entry(self.key.clone())
            .or_default()
            .send(at, self.limit)
    }
}

/// Writes the key of (device, kind, site) into `out`: the first two length-prefixed,
/// so no two triples share a key whatever bytes traffic puts in a name.
fn key_into(out: &mut Vec<u8>, device: &str, kind: &str, site: &str) {
    out.clear();
    for part in [device, kind] {
        out.extend_from_slice(&(part.len() as u64).to_le_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out.extend_from_slice(site.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The tracker as it was: keyed by the owned triple (the window itself is shared:
    /// what changed is the keying).
    struct Model {
        limit: usize,
        max_keys: usize,
        windows: HashMap<(String, String, String), Window>,
        keys_dropped: u64,
    }

    impl Model {
        fn record(&mut self, device: &str, kind: &str, site: &str, at: Timestamp) -> Option<usize> {
            let key = (device.to_string(), kind.to_string(), site.to_string());
            if !self.windows.contains_key(&key) && self.windows.len() >= self.max_keys {
                self.keys_dropped += 1;
                return None;
            }
            self.windows.entry(key).or_default().send(at, self.limit)
        }
    }

    proptest! {
        /// Same answers and same dropped-key count as the triple-keyed model, on names
        /// that share prefixes and contain separators (`a`+`bc` against `ab`+`c`).
        #[test]
        fn matches_the_triple_keyed_model(
            sends in proptest::collection::vec(
                ("[ab\\x00]{0,2}", "[ab\\x00]{0,2}", "[ab\\x00]{0,2}", 0i64..200),
                0..200,
            ),
            limit in 1usize..4,
        ) {
            let mut f = FrequencyTracker::new(limit as u32);
            let mut m = Model { limit, max_keys: MAX_FREQUENCY_KEYS, windows: HashMap::new(), keys_dropped: 0 };
            let mut at = 0i64;
            for (d, k, s, step) in &sends {
                at += step * 1_000_000;
                prop_assert_eq!(f.record(d, k, s, Timestamp(at)), m.record(d, k, s, Timestamp(at)));
            }
            prop_assert_eq!(f.windows.len(), m.windows.len());
            prop_assert_eq!(f.keys_dropped, m.keys_dropped);
        }
    }

    #[test]
    fn keys_of_different_triples_differ() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        key_into(&mut a, "a", "bc", "d");
        key_into(&mut b, "ab", "c", "d");
        assert_ne!(a, b);
        key_into(&mut b, "a", "b", "cd");
        assert_ne!(a, b);
    }

    #[test]
    fn keys_beyond_the_bound_are_dropped_and_counted() {
        let mut f = FrequencyTracker::new(1);
        for i in 0..MAX_FREQUENCY_KEYS {
            f.record("d", "k", &i.to_string(), Timestamp(0));
        }
        assert_eq!(f.keys_dropped, 0);
        assert_eq!(f.record("d", "k", "new.example", Timestamp(0)), None);
        assert_eq!(f.keys_dropped, 1);
        // A tracked key still counts.
        assert_eq!(f.record("d", "k", "0", Timestamp(1)), Some(2));
    }

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
