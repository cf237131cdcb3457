//! The client's bytes of a TCP connection in a cleartext protocol no parser reads (a
//! push or analytics SDK's own protocol), kept for the analysis to search as the
//! connection's `payload`. Bounded per connection and per flow table: the table's
//! count is shared by its connections, each adding what it keeps and giving it back
//! when it hands the bytes out or is dropped.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::exchange::Anomaly;

/// The client's bytes of a connection in a protocol no parser reads, from its first
/// byte: at most [`FlowLimits::max_unparsed_bytes`](super::flow::FlowLimits::max_unparsed_bytes), none while the table's
/// connections together hold [`FlowLimits::max_unparsed_total`](super::flow::FlowLimits::max_unparsed_total), and none after a gap
/// (what follows a hole is not the stream the search would read as one).
pub struct Unparsed {
    kept: Vec<u8>,
    /// Bytes kept by all connections of the table: this one's share of it is
    /// `kept.len()`, given back when they are handed out or dropped.
    held: Arc<AtomicUsize>,
    /// Client bytes seen but not kept.
    not_kept: u64,
    /// Why the last bytes not kept were not.
    why: NotKept,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum NotKept {
    Nothing,
    Limit,
    TableFull,
    /// A gap in the client's bytes: nothing more is kept.
    Gap,
}

impl Unparsed {
    pub fn new(held: Arc<AtomicUsize>) -> Self {
        Unparsed {
            kept: Vec::new(),
            held,
            not_kept: 0,
            why: NotKept::Nothing,
        }
    }

    /// The next client bytes: kept while there is room for this connection and for
    /// the table.
    pub fn push(&mut self, bytes: &[u8], limit: usize, table_limit: usize) {
        let mut take = 0;
        if self.why != NotKept::Gap {
            let room = limit.saturating_sub(self.kept.len());
            let want = bytes.len().min(room);
            let held = self.held.load(Ordering::Relaxed);
            take = want.min(table_limit.saturating_sub(held));
            if take < bytes.len() {
                self.why = if take < want {
                    NotKept::TableFull
                } else {
                    NotKept::Limit
                };
            }
        }
        self.held.fetch_add(take, Ordering::Relaxed);
        self.kept.extend_from_slice(&bytes[..take]);
        self.not_kept = self.not_kept.saturating_add((bytes.len() - take) as u64);
    }

    /// Lost client bytes: nothing after them is kept.
    pub fn gap(&mut self, len: u64) {
        self.why = NotKept::Gap;
        self.not_kept = self.not_kept.saturating_add(len);
    }

    /// The kept bytes, handed out (their count leaves the table's).
    pub fn take(&mut self) -> Vec<u8> {
        self.held.fetch_sub(self.kept.len(), Ordering::Relaxed);
        std::mem::take(&mut self.kept)
    }

    /// Why bytes were not kept, when some were not.
    pub fn not_kept(&self) -> Option<Anomaly> {
        let why = match self.why {
            NotKept::Nothing => return None,
            NotKept::Limit => "past the limit",
            NotKept::TableFull => "the table's connections held as many as allowed",
            NotKept::Gap => "from a gap in them on",
        };
        Some(Anomaly::new(
            "payload-not-searched",
            format!(
                "{} of the client's bytes in an unknown protocol not searched ({why}); the first {} were",
                self.not_kept,
                self.kept.len()
            ),
        ))
    }
}

impl Drop for Unparsed {
    fn drop(&mut self) {
        self.held.fetch_sub(self.kept.len(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_up_to_its_limit_and_the_tables() {
        let held = Arc::new(AtomicUsize::new(0));
        let mut a = Unparsed::new(Arc::clone(&held));
        a.push(b"abcdef", 4, 100);
        assert_eq!(a.kept, b"abcd");
        assert!(a
            .not_kept()
            .is_some_and(|x| x.detail.contains("past the limit")));
        let mut b = Unparsed::new(Arc::clone(&held));
        b.push(b"0123456789", 100, 10);
        assert_eq!(b.kept, b"012345", "the table had room for 6 more");
        assert!(b.not_kept().is_some_and(|x| x.detail.contains("table")));
        assert_eq!(held.load(Ordering::Relaxed), 10);
        assert_eq!(a.take(), b"abcd");
        assert_eq!(held.load(Ordering::Relaxed), 6);
        drop(b);
        assert_eq!(
            held.load(Ordering::Relaxed),
            0,
            "a dropped connection gives back"
        );
    }

    #[test]
    fn nothing_after_a_gap() {
        let held = Arc::new(AtomicUsize::new(0));
        let mut u = Unparsed::new(held);
        u.push(b"ab", 100, 100);
        u.gap(5);
        u.push(b"cd", 100, 100);
        assert_eq!(u.kept, b"ab");
        let anomaly = u.not_kept().expect("an anomaly");
        assert_eq!(anomaly.kind, "payload-not-searched");
        assert!(
            anomaly.detail.starts_with("7 of the client's bytes"),
            "{}",
            anomaly.detail
        );
        assert_eq!(
            Unparsed::new(Arc::new(AtomicUsize::new(0))).not_kept(),
            None
        );
    }
}
