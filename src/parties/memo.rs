//! A per-thread memo of [`Classifier::classify`](super::Classifier::classify): an app
//! talks to a few dozen hosts, and every exchange classified its host anew
//! (normalisation, public-suffix and tracker lookups, purpose lists: about 2 000
//! instructions and several allocations). A remembered [`Destination`] is shared
//! (an `Arc`: a count, not the five or so allocations of a deep clone); the result is
//! the same, since `classify` depends only on the classifier and the host.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use foldhash::fast::SeedableRandomState;

use super::Destination;
use crate::net::keyed_hash;

/// Most hosts remembered per thread; when full the memo starts over. Hosts are
/// chosen by whoever sends the traffic: the bound keeps the memory fixed.
pub(super) const MAX_HOSTS: usize = 1024;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh id for a classifier (0 means "never memoised").
pub(super) fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// Results by host as given. Keyed foldhash (`net::keyed_hash`): the keys come
/// from the traffic, and std's SipHash cost about 200 instructions a lookup.
type ByHost = HashMap<String, Arc<Destination>, SeedableRandomState>;

thread_local! {
    /// The id of the classifier the memo holds results of, and its results.
    static MEMO: RefCell<(u64, ByHost)> =
        RefCell::new((0, HashMap::with_hasher(keyed_hash::keyed_state())));
}

/// `classify()`'s result for `host` under the classifier `id`, from the memo when it
/// is there.
pub(super) fn memoised(
    id: u64,
    host: &str,
    classify: impl FnOnce() -> Destination,
) -> Arc<Destination> {
    if id == 0 {
        return Arc::new(classify());
    }
    let hit = MEMO
        .try_with(|memo| {
            let memo = memo.try_borrow().ok()?;
            if memo.0 == id {
                memo.1.get(host).cloned()
            } else {
                None
            }
        })
        .ok()
        .flatten();
    if let Some(d) = hit {
        return d;
    }
    let d = Arc::new(classify());
    // Fails only while the thread is torn down: nothing is remembered then.
    let _ = MEMO.try_with(|memo| {
        if let Ok(mut memo) = memo.try_borrow_mut() {
            if memo.0 != id || memo.1.len() >= MAX_HOSTS {
                memo.0 = id;
                memo.1.clear();
            }
            memo.1.insert(host.to_string(), d.clone());
        }
    });
    d
}
