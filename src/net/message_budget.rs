//! The flow table's budget of message bytes in progress: what parsers keep of
//! messages not yet handed out (bodies, HTTP/2 and HTTP/3 header fields, WebSocket
//! messages, requests waiting for their responses, TLS records waiting for their
//! keys), by all connections of the table together.
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
//! Counted are bytes kept (vector lengths), not capacities: parsers grow bodies by
//! doubling and reserve ahead only in proportion to bytes received, so what is
//! allocated stays within a small factor of what is counted.
//!
//! The flow table runs on one thread, so the order of grants, and with it which
//! messages are cut, is the capture's order whatever the number of analysis threads.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Anomaly kind of a message that kept no more because the table's budget was spent.
pub const ANOMALY: &str = "message-memory-limit";

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

    /// The most all shares may hold.
    pub fn limit(&self) -> usize {
        self.limit
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

    /// Asks to keep `want` more bytes: grants what the budget has room for, at once
    /// counted as held.
    pub fn grant(&mut self, want: usize) -> usize {
        let Some(budget) = &self.budget else {
            return want;
        };
        let room = budget.limit.saturating_sub(budget.held());
        let granted = want.min(room);
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

    /// Bytes the budget has room for now (`usize::MAX` without a budget).
    pub fn room(&self) -> usize {
        self.budget
            .as_ref()
            .map_or(usize::MAX, |b| b.limit.saturating_sub(b.held()))
    }

    /// Whether `want` more bytes would fit now (nothing is counted).
    pub fn has_room(&self, want: usize) -> bool {
        self.budget
            .as_ref()
            .is_none_or(|b| b.held().saturating_add(want) <= b.limit)
    }

    /// Whether [`sync`](Self::sync)ing to `now` would keep the budget's total within
    /// its limit.
    pub fn fits(&self, now: usize) -> bool {
        self.budget
            .as_ref()
            .is_none_or(|b| b.held().saturating_sub(self.counted).saturating_add(now) <= b.limit)
    }

    /// The parser holds `now` bytes: the share is set to that.
    pub fn sync(&mut self, now: usize) {
        let Some(budget) = &self.budget else {
            return;
        };
        if now >= self.counted {
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
        let budget = MessageBudget::new(100);
        let mut a = BudgetShare::of(&budget);
        let mut b = BudgetShare::of(&budget);
        assert_eq!(a.grant(60), 60);
        assert_eq!(b.grant(60), 40, "only the room left");
        assert_eq!(b.grant(1), 0);
        assert_eq!(budget.held(), 100);
        assert!(!a.has_room(1));
        assert!(a.fits(60) && !a.fits(61), "a's own 60 count as room for a");
        // A's message was handed out: it holds 10 now.
        a.sync(10);
        assert_eq!(budget.held(), 50);
        assert!(b.has_room(50) && !b.has_room(51));
        assert_eq!(b.room(), 50);
        let c = b.sibling();
        assert_eq!(c.room(), 50, "a sibling shares the budget");
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
        assert!(s.has_room(usize::MAX));
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
        a.sync(0);
        assert_eq!(budget.held(), 0);
    }
}
