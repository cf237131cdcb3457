//! The hasher of maps keyed by values that whoever sends the traffic chooses (the
//! flow table): foldhash, a multiply-fold hash that costs a few instructions per
//! 16 bytes where std's SipHash-1-3 costs about a hundred per key, keyed with 64
//! random bits from the OS per process and a fresh per-map seed.
//!
//! Why not foldhash's own `RandomState`: its process seed is derived from addresses
//! (ASLR), which foldhash itself does not offer as HashDoS protection. The key here
//! comes from std's `RandomState`, which the OS random source seeds. With an unknown
//! key an attacker cannot pick flow keys that share a bucket in advance; the table is
//! bounded by `max_flows` besides, so the worst case stays bounded.

use std::hash::BuildHasher;
use std::sync::OnceLock;

use foldhash::fast::SeedableRandomState;
use foldhash::SharedSeed;

/// A fresh `BuildHasher` for one map: the process key, and a per-map seed.
pub fn keyed_state() -> SeedableRandomState {
    static PROCESS_SEED: OnceLock<SharedSeed> = OnceLock::new();
    let shared = PROCESS_SEED.get_or_init(|| SharedSeed::from_u64(os_random_u64()));
    SeedableRandomState::with_seed(os_random_u64(), shared)
}

/// 64 bits from std's OS-seeded SipHash keys: each `RandomState::new()` on a thread
/// has keys fresh from the OS at first use, then incremented, so the hash of a fixed
/// value under them is unpredictable without the OS's secret.
fn os_random_u64() -> u64 {
    std::collections::hash_map::RandomState::new().hash_one(0x636f_6e73_656e_7472_u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two maps get different seeds, so the same key hashes apart (with 2^-64 odds
    /// of a false failure), and one map hashes a key the same every time.
    #[test]
    fn states_differ_per_map_and_agree_within_one() {
        let a = keyed_state();
        let b = keyed_state();
        let key = [10u8, 0, 0, 1, 0, 80];
        assert_eq!(a.hash_one(key), a.hash_one(key));
        assert_ne!(a.hash_one(key), b.hash_one(key));
    }

    /// The OS-derived words are not constant.
    #[test]
    fn os_random_words_differ() {
        assert_ne!(os_random_u64(), os_random_u64());
    }
}
