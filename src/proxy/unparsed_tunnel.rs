//! A tunnel (`CONNECT` or SOCKS5) in a protocol the proxy does not read: neither TLS
//! nor HTTP, such as a push or analytics SDK's own long connection. It is passed
//! through untouched while the client's bytes are kept, as the tap keeps those of such
//! a connection (`net::unparsed`: up to 1 MiB searched per connection, 64 KiB per
//! exchange, 64 MiB for all tunnels at once), and recorded as metadata-only exchanges
//! (scheme `tcp`, as the tap names such a connection) whose `request_body` the
//! analysis searches as the connection's `payload`: an identifier a phone sends that
//! way through the proxy gives the finding the tap gives for it in a capture.
//!
//! Recorded as it goes, not when the tunnel ends (such a connection may stay open
//! for hours): the client's bytes are cut into **bursts** (the tap's parts, on the
//! wall clock), a burst ending when the client has sent nothing for [`QUIET`], or
//! [`LONGEST_BURST`] after its first byte (for a client that never pauses that long),
//! or when it holds 64 KiB; each burst is one exchange at the time of its first
//! byte. The client's bytes past the tunnel's 1 MiB (or its 256th burst) are counted,
//! and said not to be searched by one last exchange when the tunnel ends; a tunnel
//! whose client sent nothing is one exchange with no payload when it ends. A burst
//! carries the last bytes of the one before as its `payload_lead`, so that a value
//! cut between two bursts is found (as the tap's parts do: `net::unparsed::Tail`).

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::http::uri::Authority;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::upstream::UpstreamStream;
use super::{lock, Shared};
use crate::exchange::{Anomaly, Exchange, SourceKind};
use crate::net::flow::{
    DEFAULT_MAX_UNPARSED_BYTES, DEFAULT_MAX_UNPARSED_DEPTH, DEFAULT_MAX_UNPARSED_PARTS,
    DEFAULT_MAX_UNPARSED_TOTAL,
};
use crate::net::unparsed::{Tail, Unparsed, LONGEST_BURST, QUIET};
use crate::timestamp::Timestamp;

/// The client's bytes of one tunnel not yet recorded, shared by the side that reads
/// them and the one that records them.
struct Bursts {
    state: Mutex<State>,
    /// Told when a burst starts or fills, so that an idle tunnel waits without a
    /// timer and a full burst is recorded at once.
    started: Notify,
    /// Bytes kept by all tunnels' bursts together ([`DEFAULT_MAX_UNPARSED_TOTAL`]).
    held: Arc<AtomicUsize>,
    /// [`QUIET`] and [`LONGEST_BURST`] (shorter in tests).
    quiet: Duration,
    longest: Duration,
}

struct State {
    burst: Unparsed,
    /// Time of the current burst's first byte, and when it is due to be recorded
    /// at the latest; `None` between bursts.
    burst_at: Option<(Timestamp, Instant)>,
    /// Client bytes given to the current burst (kept, or not for want of room).
    burst_len: usize,
    /// Bursts that filled ([`DEFAULT_MAX_UNPARSED_BYTES`]), due at once: at most the
    /// budget's worth, and counted in the table's total until recorded.
    full: VecDeque<(Timestamp, Unparsed)>,
    last_read: Instant,
    /// Bytes the tunnel may still search, over all its bursts.
    budget: usize,
    /// The last bytes of the bursts recorded, for the next one's lead.
    tail: Tail,
    /// Bursts recorded so far.
    recorded: u64,
    /// Client bytes after the budget was spent, and the time of the first of them.
    unsearched: u64,
    unsearched_at: Option<Timestamp>,
}

/// One burst, to be recorded.
struct Burst {
    at: Timestamp,
    bytes: Vec<u8>,
    /// The last bytes of the bursts before, when this one continues them.
    lead: Vec<u8>,
    anomaly: Option<Anomaly>,
}

impl Bursts {
    /// `held`: the count of bytes kept by all tunnels; `overlap`: the most bytes a
    /// burst carries from the ones before (`FlowLimits::unparsed_overlap`).
    fn new(held: Arc<AtomicUsize>, overlap: usize) -> Bursts {
        Bursts::timed(held, overlap, QUIET, LONGEST_BURST)
    }

    /// Bursts of a tunnel whose bytes are not searched (SSH, encrypted): it is
    /// recorded as one exchange without payload when it ends, a contact.
    fn unsearched(held: Arc<AtomicUsize>) -> Bursts {
        let bursts = Bursts::new(held, 0);
        lock(&bursts.state).budget = 0;
        bursts
    }

    fn timed(held: Arc<AtomicUsize>, overlap: usize, quiet: Duration, longest: Duration) -> Bursts {
        Bursts {
            state: Mutex::new(State {
                burst: Unparsed::new(held.clone()),
                burst_at: None,
                burst_len: 0,
                full: VecDeque::new(),
                last_read: Instant::now(),
                budget: DEFAULT_MAX_UNPARSED_DEPTH,
                tail: Tail::new(held.clone(), overlap),
                recorded: 0,
                unsearched: 0,
                unsearched_at: None,
            }),
            started: Notify::new(),
            held,
            quiet,
            longest,
        }
    }

    fn read(&self, bytes: &[u8]) {
        let mut s = lock(&self.state);
        let mut rest = bytes;
        while !rest.is_empty() {
            // A new burst past the most per tunnel is as past the budget.
            let bursts = s.recorded + s.full.len() as u64;
            if s.budget == 0 || (s.burst_at.is_none() && bursts >= DEFAULT_MAX_UNPARSED_PARTS) {
                s.unsearched = s.unsearched.saturating_add(rest.len() as u64);
                s.unsearched_at.get_or_insert_with(Timestamp::now);
                return;
            }
            s.last_read = Instant::now();
            if s.burst_at.is_none() {
                s.burst_at = Some((Timestamp::now(), s.last_read + self.longest));
                self.started.notify_one();
            }
            let room = (DEFAULT_MAX_UNPARSED_BYTES - s.burst_len).min(s.budget);
            let (chunk, after) = rest.split_at(rest.len().min(room));
            s.burst.push(
                chunk,
                DEFAULT_MAX_UNPARSED_BYTES,
                DEFAULT_MAX_UNPARSED_TOTAL,
            );
            s.burst_len += chunk.len();
            s.budget -= chunk.len();
            if s.burst_len >= DEFAULT_MAX_UNPARSED_BYTES {
                // Full: due at once; the next bytes start another burst.
                let burst = std::mem::replace(&mut s.burst, Unparsed::new(self.held.clone()));
                if let Some((at, _)) = s.burst_at.take() {
                    s.full.push_back((at, burst));
                }
                s.burst_len = 0;
                self.started.notify_one();
            }
            rest = after;
        }
    }

    /// When the next burst is due to be recorded: now for a full one, else once
    /// quiet for [`QUIET`], or [`LONGEST_BURST`] after its first byte; `None` between
    /// bursts.
    fn due_at(&self) -> Option<Instant> {
        let s = lock(&self.state);
        if !s.full.is_empty() {
            return Some(Instant::now());
        }
        s.burst_at
            .map(|(_, latest)| (s.last_read + self.quiet).min(latest))
    }

    /// Waits until a burst starts (at once if one started since the last call).
    async fn started(&self) {
        self.started.notified().await;
    }

    /// The current burst, once due ([`Bursts::due_at`]; at once when the tunnel has
    /// `ended`).
    fn take(&self, ended: bool) -> Option<Burst> {
        let mut s = lock(&self.state);
        let (at, mut burst) = match s.full.pop_front() {
            Some(full) => full,
            None => {
                let (at, latest) = s.burst_at?;
                if !ended && (s.last_read + self.quiet).min(latest) > Instant::now() {
                    return None;
                }
                s.burst_at = None;
                s.burst_len = 0;
                // The next burst starts with nothing counted against it.
                let burst = std::mem::replace(&mut s.burst, Unparsed::new(self.held.clone()));
                (at, burst)
            }
        };
        let anomaly = burst.not_kept();
        let contiguous = burst.all_kept();
        let bytes = burst.take();
        let lead = s
            .tail
            .next_lead(&bytes, contiguous, DEFAULT_MAX_UNPARSED_TOTAL);
        s.recorded += 1;
        Some(Burst {
            at,
            bytes,
            lead,
            anomaly,
        })
    }

    /// What is left to record of a tunnel that ended (its current burst taken first):
    /// a tunnel whose client sent nothing is still a contact with its server, and
    /// bytes past the budget are said not to be searched.
    fn end(&self, opened_at: Timestamp) -> Option<Burst> {
        let s = lock(&self.state);
        if s.recorded == 0 {
            return Some(Burst {
                at: opened_at,
                bytes: Vec::new(),
                lead: Vec::new(),
                anomaly: None,
            });
        }
        let at = s.unsearched_at?;
        Some(Burst {
            at,
            bytes: Vec::new(),
            lead: Vec::new(),
            anomaly: Some(Anomaly::new(
                "payload-not-searched",
                format!(
                    "{} of the client's bytes in an unknown protocol not searched (past the tunnel's first {} KiB or {} exchanges, searched in the exchanges before this one)",
                    s.unsearched,
                    DEFAULT_MAX_UNPARSED_DEPTH >> 10,
                    DEFAULT_MAX_UNPARSED_PARTS
                ),
            )),
        })
    }
}

/// Passes the tunnel of `client` to `authority` (at the server address given, when
/// known) through, `greeting` (what the server said first) to the client first,
/// then both ways until either side closes or `stop` completes, recording the
/// client's bursts as they end (or, when not `searched`, the tunnel as one contact
/// when it ends).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn relay<I>(
    shared: &Shared,
    client: SocketAddr,
    (authority, address): (&Authority, Option<SocketAddr>),
    io: I,
    mut server: UpstreamStream,
    greeting: &[u8],
    searched: bool,
    stop: impl Future<Output = ()>,
) where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let opened_at = Timestamp::now();
    let held = shared.unparsed_held.clone();
    let bursts = if searched {
        let overlap = shared
            .settings
            .detector
            .as_ref()
            .map_or(crate::net::flow::DEFAULT_UNPARSED_OVERLAP, |d| {
                d.longest_pattern().saturating_add(1)
            });
        Bursts::new(held, overlap)
    } else {
        Bursts::unsearched(held)
    };
    let mut io = KeptReads {
        inner: io,
        bursts: &bursts,
    };
    let record = |burst| record(shared, client, (authority, address), burst);
    if io.write_all(greeting).await.is_ok() {
        let copy = tokio::io::copy_bidirectional(&mut io, &mut server);
        tokio::pin!(copy, stop);
        loop {
            let due_at = bursts.due_at();
            tokio::select! {
                _ = &mut copy => break,
                () = &mut stop => break,
                // A burst began, or one filled: look again at what is due.
                () = bursts.started() => {}
                () = tokio::time::sleep_until(due_at.unwrap_or_else(Instant::now)), if due_at.is_some() => {
                    if let Some(burst) = bursts.take(false) {
                        record(burst);
                    }
                }
            }
        }
    }
    while let Some(burst) = bursts.take(true) {
        record(burst);
    }
    if let Some(burst) = bursts.end(opened_at) {
        record(burst);
    }
}

/// The client side of such a tunnel: what is read from it goes to its [`Bursts`].
struct KeptReads<'a, I> {
    inner: I,
    bursts: &'a Bursts,
}

impl<I: AsyncRead + Unpin> AsyncRead for KeptReads<'_, I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            this.bursts
                .read(buf.filled().get(before..).unwrap_or_default());
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for KeptReads<'_, I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Records one burst of the tunnel of `client` to `authority` (at `address`, when
/// known) as a metadata-only exchange.
fn record(
    shared: &Shared,
    client: SocketAddr,
    (authority, address): (&Authority, Option<SocketAddr>),
    burst: Burst,
) {
    let (n, id) = shared.next_id();
    let mut x = Exchange::blank(id, SourceKind::Proxy, burst.at);
    x.evidence.locator = super::locator(&shared.session, n);
    x.client = Some(crate::net::text::socket_string(client));
    x.server = Some(match address {
        Some(a) => crate::net::text::socket_string(a),
        None => authority.as_str().to_owned(),
    });
    // The CONNECT's device was noted for this client (credentials, address).
    x.device = Some(shared.device_of(client, None));
    // A tunnel to an address: the name the client asked the DNS relay for, if any.
    x.host = shared.connection_name(authority.host(), x.at);
    x.scheme = "tcp".into();
    x.metadata_only = true;
    x.anomalies.extend(burst.anomaly);
    x.request_body = burst.bytes;
    x.payload_lead = burst.lead;
    shared
        .counters
        .exchanges
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    shared.emit_exchange(x);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    /// Bursts without leads (their tails would stay counted in `held`).
    fn bursts() -> (Bursts, Arc<AtomicUsize>) {
        let held = Arc::new(AtomicUsize::new(0));
        (Bursts::new(held.clone(), 0), held)
    }

    #[test]
    fn a_burst_carries_the_end_of_the_bursts_before_as_its_lead() {
        let held = Arc::new(AtomicUsize::new(0));
        let b = Bursts::new(held.clone(), 6);
        b.read(b"login:38400000");
        let first = b.take(true).unwrap();
        assert!(first.lead.is_empty());
        assert_eq!(held.load(Ordering::Relaxed), 6, "the tail is counted");
        b.read(b"-8c");
        let second = b.take(true).unwrap();
        assert_eq!(second.lead, b"400000", "the first burst's last six bytes");
        // A short burst: the next lead reaches back into the one before.
        b.read(b"f0");
        assert_eq!(b.take(true).unwrap().lead, b"000-8c");
        // A full burst is contiguous too, and so is the rest after it.
        b.read(&vec![b'x'; DEFAULT_MAX_UNPARSED_BYTES + 2]);
        assert_eq!(b.take(false).unwrap().lead, b"0-8cf0");
        assert_eq!(b.take(true).unwrap().lead, b"xxxxxx");
        drop(b);
        assert_eq!(held.load(Ordering::Relaxed), 0, "the tail given back");
    }

    #[test]
    fn a_burst_is_taken_once_quiet_or_at_the_end() {
        let (b, held) = bursts();
        assert!(b.due_at().is_none());
        b.read(b"hello");
        assert!(b.due_at().is_some_and(|t| t > Instant::now()));
        assert!(b.take(false).is_none(), "not quiet yet");
        assert_eq!(held.load(Ordering::Relaxed), 5);
        let burst = b.take(true).unwrap();
        assert_eq!(burst.bytes, b"hello");
        assert!(burst.anomaly.is_none());
        assert_eq!(held.load(Ordering::Relaxed), 0, "handed out");
        assert!(b.due_at().is_none() && b.take(true).is_none());
        assert!(b.end(Timestamp::now()).is_none(), "nothing left to say");
    }

    #[test]
    fn a_client_that_never_pauses_is_recorded_while_it_goes_on() {
        let longest = Duration::from_millis(100);
        let b = Bursts::timed(Arc::default(), 0, QUIET, longest);
        let start = Instant::now();
        let taken = loop {
            b.read(b"tick");
            std::thread::sleep(Duration::from_millis(10));
            if let Some(burst) = b.take(false) {
                break burst;
            }
            assert!(start.elapsed() < Duration::from_secs(5), "never recorded");
        };
        assert!(start.elapsed() >= longest);
        assert!(taken.bytes.len() >= 4 * 10, "{}", taken.bytes.len());
        b.read(b"tock");
        assert!(b.take(false).is_none(), "a new burst, not yet due");
    }

    #[test]
    fn a_full_burst_is_due_at_once_and_the_rest_starts_another() {
        let (b, held) = bursts();
        b.read(&[1; 10]);
        assert!(b.take(false).is_none(), "not quiet yet");
        b.read(&vec![2; 70_000]);
        assert!(b.due_at().is_some_and(|t| t <= Instant::now()));
        let first = b.take(false).unwrap();
        assert_eq!(first.bytes.len(), DEFAULT_MAX_UNPARSED_BYTES);
        assert!(first.anomaly.is_none());
        assert!(b.take(false).is_none(), "the rest is a burst not yet due");
        let second = b.take(true).unwrap();
        assert_eq!(second.bytes.len(), 70_010 - DEFAULT_MAX_UNPARSED_BYTES);
        assert_eq!(held.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn bursts_share_the_tunnels_depth_and_the_rest_is_said_unsearched() {
        let (b, held) = bursts();
        let chunk = vec![3; 100_000];
        for _ in 0..11 {
            b.read(&chunk);
        }
        let mut searched = 0;
        while let Some(burst) = b.take(true) {
            assert!(burst.bytes.len() <= DEFAULT_MAX_UNPARSED_BYTES);
            assert!(burst.anomaly.is_none());
            searched += burst.bytes.len();
        }
        assert_eq!(searched, DEFAULT_MAX_UNPARSED_DEPTH);
        // Spent: no more bursts, only a count.
        b.read(b"ping");
        assert!(b.due_at().is_none() && b.take(true).is_none());
        let last = b.end(Timestamp::now()).unwrap();
        assert!(last.bytes.is_empty());
        let last = last.anomaly.unwrap();
        assert_eq!(last.kind, "payload-not-searched");
        let past = 11 * 100_000 + 4 - DEFAULT_MAX_UNPARSED_DEPTH;
        assert!(
            last.detail
                .starts_with(&format!("{past} of the client's bytes")),
            "{}",
            last.detail
        );
        assert_eq!(held.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_tunnel_has_at_most_its_bursts() {
        let (b, _) = bursts();
        for _ in 0..DEFAULT_MAX_UNPARSED_PARTS {
            b.read(b"ka");
            assert!(b.take(true).is_some());
        }
        b.read(b"ka");
        assert!(b.take(true).is_none(), "past the most bursts");
        let last = b.end(Timestamp::now()).unwrap().anomaly.unwrap();
        assert!(
            last.detail.starts_with("2 of the client's bytes"),
            "{}",
            last.detail
        );
        assert!(last.detail.contains("or 256 exchanges"), "{}", last.detail);
    }

    #[test]
    fn an_unsearched_tunnel_is_one_contact_when_it_ends() {
        let held = Arc::new(AtomicUsize::new(0));
        let b = Bursts::unsearched(held.clone());
        b.read(b"SSH-2.0-OpenSSH_9.6\r\n");
        b.read(&[0x5a; 36]);
        assert!(b.due_at().is_none() && b.take(true).is_none());
        assert_eq!(held.load(Ordering::Relaxed), 0, "nothing kept");
        let at = Timestamp::now();
        let contact = b.end(at).unwrap();
        assert_eq!(contact.at, at);
        assert!(contact.bytes.is_empty() && contact.anomaly.is_none());
    }

    #[test]
    fn a_tunnel_whose_client_said_nothing_is_one_contact() {
        let (b, _) = bursts();
        let at = Timestamp::now();
        let contact = b.end(at).unwrap();
        assert_eq!(contact.at, at);
        assert!(contact.bytes.is_empty() && contact.anomaly.is_none());
    }

    #[test]
    fn all_tunnels_together_keep_at_most_their_total() {
        let held = Arc::new(AtomicUsize::new(DEFAULT_MAX_UNPARSED_TOTAL - 3));
        let b = Bursts::new(held.clone(), 8);
        b.read(b"abcdef");
        let burst = b.take(true).unwrap();
        assert_eq!(burst.bytes, b"abc");
        assert!(burst.anomaly.unwrap().detail.contains("held as many"));
        assert!(burst.lead.is_empty());
        assert_eq!(
            held.load(Ordering::Relaxed),
            DEFAULT_MAX_UNPARSED_TOTAL - 3,
            "no tail kept of a burst with bytes left out"
        );
    }
}
