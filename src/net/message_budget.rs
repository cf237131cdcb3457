//! The flow table's budget of message bytes in progress: what parsers keep of
//! messages not yet handed out (bodies, HTTP/1 heads waiting for their end, HTTP/2
//! and HTTP/3 header fields, HPACK and QPACK dynamic tables, WebSocket messages,
//! requests waiting for their responses, TLS records waiting for their keys, QUIC
//! stream bytes waiting for a hole to fill), by all connections of the table
//! together.
//!
//! Each parser bounds what one connection keeps, but a capture with many connections
//! each in the middle of a large upload, or each announcing one, would otherwise hold
//! their sum. The parsers of a table share one [`MessageBudget`]; each holds a
//! [`BudgetShare`] that asks for room before keeping more ([`BudgetShare::grant`]), is
//! set to what the parser really holds after each input ([`BudgetShare::sync`], so
//! messages handed out give their bytes back without bookkeeping at every exit), and
//! gives everything back when dropped. Past the budget a message keeps no more (its
//! parser marks it truncated with anomaly [`ANOMALY`]; a TLS connection is not
//! decrypted); the bytes already kept are analysed as usual.
//!
//! Header fields (HTTP/2 and HTTP/3 streams, HPACK and QPACK tables, HTTP/1 heads)
//! may use the whole budget, message content (bodies, WebSocket messages, TLS
//! records) only all but its last [`HEADER_HEADROOM`]th: under a flood of uploads,
//! the header fields of new requests, where URLs and most identifiers are, are still
//! kept.
//!
//! Counted are bytes kept (vector lengths), not capacities: parsers grow bodies by
//! doubling and reserve ahead only in proportion to bytes received, so what is
//! allocated stays within a small factor of what is counted. HTTP/1 heads are the
//! exception, counted by capacity: a flood of heads that never end would otherwise
//! hold twice the budget.
//!
//! The flow table runs on one thread, so the order of grants, and with it which
//! messages are cut, is the capture's order whatever the number of analysis threads.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::exchange::Anomaly;

/// Anomaly kind of a message that kept no more because the table's budget was spent.
pub const ANOMALY: &str = "message-memory-limit";
/// The last 1/this of the budget is for header fields only.
pub const HEADER_HEADROOM: usize = 8;

/// Whether a message's `anomalies` say it was cut for want of memory: by the table's
/// budget, or by its connection's (`connection_kind`, e.g. `h2-body-budget`). Such a
/// body keeps nothing more, even once room frees up: what came later would be spliced
/// on after a hole.
pub fn cut_for_memory(anomalies: &[Anomaly], connection_kind: &str) -> bool {
    anomalies
        .iter()
        .any(|a| a.kind == connection_kind || a.kind == ANOMALY)
}

/// Message bytes held by the connections of one flow table, and the most they may hold.
#[derive(Debug, Clone)]
pub struct MessageBudget {
    held: Arc<AtomicUsize>,
    limit: usize,
}

impl MessageBudget {
    pub fn new(limit: usize) -> Self {
        MessageBudget {
            held: Arc::new(AtomicUsize::new(0)),
            limit,
        }
    }

    /// Bytes held now by all shares.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// The most all shares may hold of message content (all but the headroom).
    fn content_limit(&self) -> usize {
        self.limit - self.limit / HEADER_HEADROOM
    }

    /// Detail of the anomaly of a message cut by this budget: `consequence` ("body
    /// not kept past this point", …) and why.
    pub fn cut_detail(&self, consequence: &str) -> String {
        format!(
            "{consequence}: messages in progress on all connections together hold the \
             capture's budget of {} bytes",
            self.limit
        )
    }
}

/// One parser's part of a [`MessageBudget`]; without one (a parser used on its own) it
/// grants everything.
#[derive(Debug, Default)]
pub struct BudgetShare {
    budget: Option<MessageBudget>,
    /// Bytes of the budget this share holds.
    counted: usize,
}

impl BudgetShare {
    /// A share of `budget`, holding nothing yet.
    pub fn of(budget: &MessageBudget) -> Self {
        BudgetShare {
            budget: Some(budget.clone()),
            counted: 0,
        }
    }

    /// Asks to keep `want` more bytes of message content: grants what the budget has
    /// room for, at once counted as held.
    pub fn grant(&mut self, want: usize) -> usize {
        let Some(budget) = &self.budget else {
            return want;
        };
        let granted = want.min(self.room());
        if granted > 0 {
            budget.held.fetch_add(granted, Ordering::Relaxed);
            self.counted += granted;
        }
        granted
    }

    /// A new share, holding nothing, of the same budget (none if this has none).
    pub fn sibling(&self) -> Self {
        BudgetShare {
            budget: self.budget.clone(),
            counted: 0,
        }
    }

    /// Bytes of message content the budget has room for now (`usize::MAX` without a
    /// budget).
    pub fn room(&self) -> usize {
        self.budget
            .as_ref()
            .map_or(usize::MAX, |b| b.content_limit().saturating_sub(b.held()))
    }

    /// Whether `want` more bytes of message content would fit now (nothing is
    /// counted).
    pub fn has_room(&self, want: usize) -> bool {
        want <= self.room()
    }

    /// Whether the budget's content limit is passed now (its holders should give
    /// something up).
    pub fn over(&self) -> bool {
        self.budget
            .as_ref()
            .is_some_and(|b| b.held() > b.content_limit())
    }

    /// Whether `want` more bytes of header fields would fit now: the whole budget,
    /// headroom included (nothing is counted).
    pub fn has_room_for_headers(&self, want: usize) -> bool {
        self.budget
            .as_ref()
            .is_none_or(|b| b.held().saturating_add(want) <= b.limit)
    }

    /// The parser holds `now` bytes: the share is set to that.
    pub fn sync(&mut self, now: usize) {
        let Some(budget) = &self.budget else {
            return;
        };
        // Most inputs change nothing held: no atomic operation then.
        if now == self.counted {
            return;
        }
        if now > self.counted {
            budget.held.fetch_add(now - self.counted, Ordering::Relaxed);
        } else {
            budget.held.fetch_sub(self.counted - now, Ordering::Relaxed);
        }
        self.counted = now;
    }

    /// Detail of the anomaly of a message this share's budget cut; see
    /// [`MessageBudget::cut_detail`].
    pub fn cut_detail(&self, consequence: &str) -> String {
        match &self.budget {
            Some(b) => b.cut_detail(consequence),
            None => consequence.to_string(),
        }
    }
}

impl Drop for BudgetShare {
    fn drop(&mut self) {
        self.sync(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_within_the_limit_and_counts_at_once() {
        // 80 bytes for content, the last 10 for header fields only.
        let budget = MessageBudget::new(80);
        let mut a = BudgetShare::of(&budget);
        let mut b = BudgetShare::of(&budget);
        assert_eq!(a.grant(40), 40);
        assert_eq!(b.grant(40), 30, "only the content room left");
        assert_eq!(b.grant(1), 0);
        assert_eq!(budget.held(), 70);
        assert!(!a.has_room(1));
        assert!(a.has_room_for_headers(10) && !a.has_room_for_headers(11));
        assert!(!a.over(), "at the content limit, not past it");
        a.sync(41);
        assert!(a.over());
        a.sync(40);
        // A's message was handed out: it holds 10 now.
        a.sync(10);
        assert_eq!(budget.held(), 40);
        assert!(b.has_room(30) && !b.has_room(31));
        assert_eq!(b.room(), 30);
        let c = b.sibling();
        assert_eq!(c.room(), 30, "a sibling shares the budget");
        drop(b);
        assert_eq!(budget.held(), 10, "a dropped share gives everything back");
        a.sync(30);
        assert_eq!(budget.held(), 30);
        drop(a);
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn a_share_without_a_budget_grants_everything() {
        let mut s = BudgetShare::default();
        assert_eq!(s.grant(usize::MAX), usize::MAX);
        assert!(s.has_room(usize::MAX) && s.has_room_for_headers(usize::MAX));
        assert_eq!(s.sibling().room(), usize::MAX);
        s.sync(5);
        assert_eq!(s.cut_detail("body not kept"), "body not kept");
    }

    #[test]
    fn sync_may_count_more_than_was_granted() {
        // A parser that kept bytes between syncs without asking (header fields it
        // must hold to stay in step) is counted for them; later grants see it.
        let budget = MessageBudget::new(100);
        let mut a = BudgetShare::of(&budget);
        a.sync(120);
        assert_eq!(budget.held(), 120);
        assert_eq!(a.grant(1), 0);
        assert!(!a.has_room_for_headers(0));
        a.sync(0);
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn cuts_for_memory_are_read_from_the_anomalies() {
        let mut anomalies = vec![Anomaly::new("http-gap", "x")];
        assert!(!cut_for_memory(&anomalies, "h2-body-budget"));
        anomalies.push(Anomaly::new("h2-body-budget", "x"));
        assert!(cut_for_memory(&anomalies, "h2-body-budget"));
        assert!(cut_for_memory(
            &[Anomaly::new(ANOMALY, "x")],
            "h3-body-budget"
        ));
    }
}
