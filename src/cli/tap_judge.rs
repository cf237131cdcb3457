//! The live tap's judging thread. The capture loop (packets to exchanges, the
//! evidence ring) hands each exchange it completes, and each event of its ring, to
//! this thread in order; here exchanges are attributed and analysed, their findings
//! printed and, with a case directory, everything appended to the case store. On a
//! thread of its own this work (half of the loop's time into a case directory on the
//! benchmark capture) runs beside the capture, which then keeps up with a faster link
//! where a core is free.
//!
//! The queue between the two is bounded, in exchanges ([`QUEUED`]) and in their
//! bodies' bytes ([`QUEUED_BODY_BYTES`]): a judge behind holds the loop up, and the
//! kernel's capture buffer takes the burst or counts the drops, rather than memory
//! growing. Commits to the store are grouped ([`COMMIT_AFTER`], [`COMMIT_EVERY`]),
//! as the proxy's are.

use std::io::{self, Write};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::anomaly_tally::AnomalyTally;
use super::input::Attribution;
use super::live_store::LiveStore;
use super::tap::LiveFormat;
use crate::exchange::Exchange;
use crate::report::host_mask::HostMask;
use crate::rules::Analyzer;
use crate::source::ring::RingEvent;

/// What the capture loop hands over, in the order it happened. Not boxed: the
/// queue has only [`QUEUED`] slots of about 1 KiB, and a box would be one more
/// allocation per exchange, freed on the other thread.
#[allow(clippy::large_enum_variant)]
pub enum Handed {
    Exchange(Exchange),
    Ring(RingEvent),
}

/// Exchanges (and ring events) queued for the judge at most.
pub const QUEUED: usize = 32;

/// Bytes of bodies queued for the judge at most, besides one exchange's however
/// large. An exchange holds each body up to the analysis cap (8 MiB), so a count
/// alone would let 32 of them hold 512 MiB; app requests take a few KiB.
pub const QUEUED_BODY_BYTES: usize = 16 << 20;

/// The body bytes queued for the judge, shared by the two ends.
#[derive(Default)]
pub struct Backlog {
    state: Mutex<BacklogState>,
    room: Condvar,
}

#[derive(Default)]
struct BacklogState {
    bytes: usize,
    /// The capture loop waits for room: only then is a wake-up (a system call) sent.
    waiting: bool,
    /// The judge is gone.
    closed: bool,
}

impl Backlog {
    /// Counts `bytes` in, first waiting while other bodies are queued and these
    /// would pass [`QUEUED_BODY_BYTES`] (not once the judge is gone).
    pub fn enter(&self, bytes: usize) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while state.bytes > 0 && state.bytes + bytes > QUEUED_BODY_BYTES && !state.closed {
            state.waiting = true;
            state = self
                .room
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.waiting = false;
        state.bytes += bytes;
    }

    fn leave(&self, bytes: usize) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.bytes = state.bytes.saturating_sub(bytes);
        if state.waiting {
            self.room.notify_one();
        }
    }

    fn close(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.closed = true;
        self.room.notify_all();
    }
}

/// Closes the backlog when the judge ends, a panic included, so that the capture
/// loop never waits for room that will not come.
struct Closing<'a>(&'a Backlog);

impl Drop for Closing<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Appends committed together at most (the store itself commits every 1 000
/// records too). A commit per exchange took 13 of the 15 CPU seconds of a tap into a
/// case directory on the 522 MB benchmark capture (a transaction, a chain-head query
/// and a WAL write each), 200 Mbit/s.
const COMMIT_EVERY: usize = 4096;
/// Longest an append waits for its commit: what another process reading the store
/// (`consentry findings`) lags behind, and what a crash can lose of the store.
const COMMIT_AFTER: Duration = Duration::from_millis(100);

/// The case store of a run (if any).
pub struct Recording {
    pub store: Option<LiveStore>,
    /// The ring's directory relative to the case directory, when inside it.
    pub ring_in_case: Option<String>,
    /// The first failed write: the run goes on (the evidence ring and the printed
    /// findings matter more), and exits with it.
    pub error: Option<anyhow::Error>,
    /// Appends not committed yet, and when the first of them was made.
    uncommitted: usize,
    uncommitted_since: Option<Instant>,
}

impl Recording {
    pub fn new(store: Option<LiveStore>, ring_in_case: Option<String>) -> Recording {
        Recording {
            store,
            ring_in_case,
            error: None,
            uncommitted: 0,
            uncommitted_since: None,
        }
    }

    /// Appends with `append` and commits when [`COMMIT_EVERY`] appends or
    /// [`COMMIT_AFTER`] have passed since the last commit; an error is printed and kept.
    fn record(&mut self, append: impl FnOnce(&mut LiveStore) -> anyhow::Result<bool>) {
        let Some(s) = self.store.as_mut() else {
            return;
        };
        match append(s) {
            Ok(false) => {}
            Ok(true) => {
                self.uncommitted += 1;
                self.uncommitted_since.get_or_insert_with(Instant::now);
                self.commit_when_due();
            }
            Err(e) => self.failed(e),
        }
    }

    /// How long the oldest append not committed may still wait.
    fn commit_due_in(&self) -> Option<Duration> {
        self.uncommitted_since
            .map(|t| COMMIT_AFTER.saturating_sub(t.elapsed()))
    }

    /// Commits the appends made since the last commit if there are enough of them,
    /// or the oldest has waited long enough.
    fn commit_when_due(&mut self) {
        if self.uncommitted >= COMMIT_EVERY || self.commit_due_in() == Some(Duration::ZERO) {
            self.commit();
        }
    }

    /// Commits every append made so far.
    pub fn commit(&mut self) {
        let Some(s) = self.store.as_mut() else {
            return;
        };
        self.uncommitted = 0;
        self.uncommitted_since = None;
        if let Err(e) = s.commit() {
            self.failed(e);
        }
    }

    fn failed(&mut self, e: anyhow::Error) {
        eprintln!("consentry: error: writing to the case store: {e:#}");
        self.error.get_or_insert(e);
    }
}

/// The judge's state: what it needs, and what it counted for the run's summary.
pub struct Judge<'a> {
    pub backlog: &'a Backlog,
    pub attribution: &'a Attribution,
    pub analyzer: &'a mut Analyzer,
    /// Host names as the lines show them: masked where they carry data.
    pub hosts: HostMask,
    pub recording: Recording,
    pub format: LiveFormat,
    pub reveal: bool,
    pub findings: u64,
    pub anomalies: AnomalyTally,
    /// Exchanges of clients that are no device of the case …
    pub unanalysed: u64,
    /// … and of other apps than the case's.
    pub other_apps: u64,
}

impl Judge<'_> {
    /// Judges what comes until the capture loop is gone, then commits the rest.
    pub fn run(mut self, handed: Receiver<Handed>) -> Self {
        let backlog = self.backlog;
        let _closing = Closing(backlog);
        loop {
            let wait = self
                .recording
                .commit_due_in()
                .unwrap_or(Duration::from_secs(3600));
            match handed.recv_timeout(wait) {
                Ok(Handed::Exchange(x)) => {
                    let bytes = x.body_bytes();
                    self.exchange(x);
                    backlog.leave(bytes);
                }
                Ok(Handed::Ring(event)) => self.ring_event(event),
                Err(RecvTimeoutError::Timeout) => self.recording.commit_when_due(),
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        // Whatever ended the capture, what was appended is kept.
        self.recording.commit();
        self
    }

    fn exchange(&mut self, x: Exchange) {
        if !self.attribution.judges(&x) {
            match x.of_another_app() {
                true => self.other_apps += 1,
                false => self.unanalysed += 1,
            }
            return;
        }
        let obs = self.analyzer.observe(&x);
        for line in self
            .anomalies
            .add_exchange(&x, &obs.anomalies, &mut self.hosts, self.reveal)
        {
            eprintln!("{line}");
        }
        self.recording.record(|s| {
            s.exchange(&x, &obs.findings, &obs.consent_events)?;
            Ok(true)
        });
        let stdout = io::stdout();
        for f in obs.findings {
            self.findings += 1;
            let mut out = stdout.lock();
            // A closed stdout (`| head`) must not stop the evidence capture.
            let _ = match self.format {
                LiveFormat::Jsonl => serde_json::to_string(&f)
                    .map_err(io::Error::other)
                    .and_then(|l| writeln!(out, "{l}")),
                LiveFormat::Line => {
                    let host = self.hosts.show(&f.destination.host);
                    writeln!(out, "{}", super::finding_line(&f, &host))
                }
            };
            let _ = out.flush();
        }
    }

    fn ring_event(&mut self, event: RingEvent) {
        if let RingEvent::NotRemoved(f, e) = &event {
            eprintln!(
                "consentry: warning: the ring could not delete {}: {e}; it stays recorded as evidence",
                f.path.display()
            );
        }
        if let Some(rel) = self.recording.ring_in_case.clone() {
            self.recording.record(|s| s.ring_event(&rel, &event));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::SourceKind;
    use crate::store::CaseDir;
    use crate::timestamp::Timestamp;

    /// Whether `enter(bytes)` on another thread returns within a quarter second.
    fn enters(backlog: &std::sync::Arc<Backlog>, bytes: usize) -> std::sync::mpsc::Receiver<()> {
        let (done, entered) = std::sync::mpsc::channel();
        let backlog = backlog.clone();
        std::thread::spawn(move || {
            backlog.enter(bytes);
            let _ = done.send(());
        });
        entered
    }

    #[test]
    fn the_backlog_holds_the_loop_while_queued_bodies_would_pass_the_budget() {
        let quarter = Duration::from_millis(250);
        let backlog = std::sync::Arc::new(Backlog::default());
        // One exchange however large when nothing is queued.
        backlog.enter(QUEUED_BODY_BYTES * 2);
        // Then nothing more until it is judged.
        let second = enters(&backlog, 1);
        assert!(second.recv_timeout(quarter).is_err(), "over the budget");
        backlog.leave(QUEUED_BODY_BYTES * 2);
        second
            .recv_timeout(Duration::from_secs(5))
            .expect("room again");
        backlog.leave(1);
        // Small bodies fill the budget up to its end.
        backlog.enter(QUEUED_BODY_BYTES - 2);
        let third = enters(&backlog, 2);
        third
            .recv_timeout(Duration::from_secs(5))
            .expect("within the budget");
        // A judge gone (closed) never leaves a waiter waiting.
        let fourth = enters(&backlog, 1);
        assert!(fourth.recv_timeout(quarter).is_err());
        backlog.close();
        fourth.recv_timeout(Duration::from_secs(5)).expect("closed");
    }

    #[test]
    fn an_append_is_committed_once_it_has_waited_its_time() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = CaseDir::init(&tmp.path().join("case"), None).unwrap();
        let mut store = LiveStore::open(dir.clone(), "tap").unwrap();
        store.begin(None, "S", "on lo").unwrap();
        store.commit().unwrap();
        // What another process reading the store sees (committed rows only).
        let reader = rusqlite::Connection::open_with_flags(
            dir.store_path(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let stored = || -> i64 {
            reader
                .query_row("SELECT count(*) FROM exchanges", [], |row| row.get(0))
                .unwrap()
        };
        let mut r = Recording::new(Some(store), None);
        let mut x = Exchange::new("x-1", SourceKind::Pcap, Timestamp::from_micros(5_000_000));
        x.host = "example.org".into();
        r.record(|s| {
            s.exchange(&x, &[], &[])?;
            Ok(true)
        });
        assert_eq!(stored(), 0, "not committed at once");
        let due = r.commit_due_in().unwrap();
        assert!(due > Duration::ZERO && due <= COMMIT_AFTER, "{due:?}");
        r.commit_when_due();
        assert_eq!(stored(), 0, "not yet due");
        std::thread::sleep(due);
        assert_eq!(r.commit_due_in(), Some(Duration::ZERO));
        r.commit_when_due();
        assert_eq!(stored(), 1);
        assert_eq!(r.commit_due_in(), None, "nothing waits");
        // An append that appended nothing starts no wait.
        r.record(|_| Ok(false));
        assert_eq!(r.commit_due_in(), None);
        assert!(r.error.is_none());
    }
}
