//! [`Coalesce`]: the socket under rustls on the client side of an intercepted TLS
//! connection (`serve::intercept_tls` wraps every accepted tunnel in it). It holds
//! back the TLS 1.3 session tickets rustls writes at the end of the handshake so they
//! leave with the next bytes, and the connection's last response so that it leaves
//! with the `close_notify` after it: a write and a TCP segment fewer each per new
//! connection (issue 4, new intercepted connections per second). The policy, what
//! may be held and what never is, is on the type; [`LastResponse`] is how the
//! connection above says that a response is the last. What is held at the shutdown
//! leaves with the FIN ([`ShutdownWrite`]).

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite};

/// Bytes of TLS records [`Coalesce`] holds back, at most (two session tickets are
/// ~200 bytes; tickets, a small response and a `close_notify` some 700).
const MAX_HELD: usize = 4096;

/// The socket under a [`Coalesce`]: how the bytes it holds until the shutdown are
/// written.
pub(super) trait ShutdownWrite: AsyncWrite + Unpin {
    /// Writes `buf` as `poll_write` does, for a caller that shuts the write side down
    /// right after. A TCP socket keeps them back (`MSG_MORE`) so that the FIN leaves
    /// in the same segment: the last response, the `close_notify` and the FIN in one
    /// segment instead of two, and one ACK from the client for both (issue 4, new
    /// intercepted connections per second). Other streams just write them.
    fn poll_write_before_shutdown(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.poll_write(cx, buf)
    }
}

#[cfg(target_os = "linux")]
impl ShutdownWrite for tokio::net::TcpStream {
    fn poll_write_before_shutdown(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        loop {
            std::task::ready!(this.poll_write_ready(cx))?;
            // Held by the kernel until the FIN pushes it: the shutdown follows in the
            // same poll. Were it not to come, closing the socket sends it all the
            // same (the FIN goes with whatever is unsent).
            let sent = this.try_io(tokio::io::Interest::WRITABLE, || {
                socket2::SockRef::from(&*this)
                    .send_with_flags(buf, libc::MSG_MORE | libc::MSG_NOSIGNAL)
            });
            match sent {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                r => return Poll::Ready(r),
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
impl ShutdownWrite for tokio::net::TcpStream {}

/// A tunnel opened through hyper (HTTP/2, or a `CONNECT` the core left to hyper): its
/// bytes go through hyper's upgrade, not straight to a socket.
impl ShutdownWrite for hyper_util::rt::TokioIo<hyper::upgrade::Upgraded> {}

impl<I: ShutdownWrite> ShutdownWrite for super::body::Rewind<I> {
    fn poll_write_before_shutdown(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(self.get_mut().get_mut()).poll_write_before_shutdown(cx, buf)
    }
}

/// Where a [`Coalesce`] is in the TLS handshake it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flight {
    /// Nothing written yet.
    Fresh,
    /// The server's first flight (ServerHello …) is being written.
    Sent,
    /// The client answered it (its Finished, in TLS 1.3): the next write during the
    /// handshake may be held.
    Answered,
    /// Holding is over: everything is written as it comes.
    Passing,
}

/// The client side of an intercepted TLS connection, under rustls: it holds back the
/// TLS 1.3 session tickets rustls writes when the client's Finished arrives, and
/// sends them in one write with the next bytes (the response, or HTTP/2's SETTINGS)
/// instead of a write and a TCP segment of their own (issue 4, new intercepted
/// connections per second). No client waits for a ticket.
///
/// Policy, so that nothing a peer waits for is held: only one write is held, only
/// during the handshake ([`Coalesce::handshake_done`] ends that), only after the
/// server's first flight went out and the client answered it, and only if it is
/// nothing but whole encrypted records (`17 03 03`, at most [`MAX_HELD`] bytes).
/// TLS 1.2's second server flight (ChangeCipherSpec, Finished), which the client
/// does wait for, is not encrypted records and passes; a TLS 1.3 HelloRetryRequest
/// makes the second flight a ServerHello, which passes and ends holding. Held bytes
/// go out with the next write or before a shutdown; a flush does not send them
/// (hyper flushes while it waits for the request, which would send them alone).
/// After a failed handshake the caller sends them ([`Coalesce::write_held`]): an
/// alert about the failure may be among them.
///
/// The last response: once the connection above said that the response it writes
/// is the connection's last ([`LastResponse::set_last`]: its request asked to close,
/// so hyper shuts the connection down right after it), every write of whole
/// encrypted records after the handshake is held too (with what is held, at most
/// [`MAX_HELD`] bytes; more passes with what was held), and they leave with the
/// `close_notify` rustls writes as hyper shuts down, in the shutdown's one write. A
/// flush does not send them while the poll of the connection that wrote them goes
/// on; if that poll ends with bytes still held (a response body still streaming),
/// [`LastResponse::poll_pending`] wakes the task and its next flush (hyper flushes on
/// every poll) sends them: nothing waits longer than one more poll.
pub(super) struct Coalesce<I> {
    inner: I,
    flight: Flight,
    handshaking: bool,
    held: Vec<u8>,
    /// Bytes of `held` already written.
    sent: usize,
    /// Shared with the connection above (see [`LastResponse`]).
    last: Arc<LastResponse>,
}

/// What the HTTP/1 connection above a [`Coalesce`] tells it about its last response,
/// and when the poll that wrote it ended.
#[derive(Debug, Default)]
pub(super) struct LastResponse {
    /// The response being written is the connection's last.
    last: AtomicBool,
    /// Never hold: hyper may hand the connection to an upgrade instead of shutting
    /// it down (a `CONNECT` or `Upgrade` request was seen on it), and held bytes
    /// would go with it.
    never: AtomicBool,
    /// Bytes of it are held.
    holding: AtomicBool,
    /// The poll that held them ended: the next flush sends them.
    release: AtomicBool,
}

impl LastResponse {
    /// The response about to be written is the connection's last.
    pub(super) fn set_last(&self) {
        self.last.store(true, Ordering::Relaxed);
    }

    /// Nothing is held for the rest of the connection (see `never`).
    pub(super) fn never(&self) {
        self.never.store(true, Ordering::Relaxed);
    }

    /// Called before each poll of the connection above.
    pub(super) fn poll_started(&self) {
        self.release.store(false, Ordering::Relaxed);
    }

    /// Called after a poll of the connection above that returned `Pending`: bytes
    /// held are released to the next flush, and the task is woken for it.
    pub(super) fn poll_pending(&self, cx: &mut std::task::Context<'_>) {
        if self.holding.load(Ordering::Relaxed) {
            self.release.store(true, Ordering::Relaxed);
            cx.waker().wake_by_ref();
        }
    }
}

impl<I> Coalesce<I> {
    pub(super) fn new(inner: I) -> Coalesce<I> {
        Coalesce {
            inner,
            flight: Flight::Fresh,
            handshaking: true,
            held: Vec::new(),
            sent: 0,
            last: Arc::default(),
        }
    }

    /// The connection's [`LastResponse`], for the connection above.
    pub(super) fn last_response(&self) -> Arc<LastResponse> {
        self.last.clone()
    }

    /// True while the connection's last response is written (after the handshake).
    fn writing_last(&self) -> bool {
        !self.handshaking
            && self.last.last.load(Ordering::Relaxed)
            && !self.last.never.load(Ordering::Relaxed)
    }

    /// Nothing is held any more.
    fn emptied(&mut self) {
        self.held = Vec::new();
        self.sent = 0;
        self.last.holding.store(false, Ordering::Relaxed);
    }

    /// The handshake is over: its hold ends (what is held still waits for the next
    /// write).
    pub(super) fn handshake_done(&mut self) {
        self.handshaking = false;
        self.flight = Flight::Passing;
    }
}

/// True when `b` is one or more whole TLS records of type application data, as
/// TLS 1.3 encrypts every record after the ServerHello.
fn only_encrypted_records(mut b: &[u8]) -> bool {
    if b.is_empty() {
        return false;
    }
    while !b.is_empty() {
        let Some(&[kind, 3, 3, hi, lo]) = b.get(..5) else {
            return false;
        };
        let len = 5 + usize::from(u16::from_be_bytes([hi, lo]));
        if kind != 0x17 || b.len() < len {
            return false;
        }
        b = b.get(len..).unwrap_or_default();
    }
    true
}

impl<I: ShutdownWrite> Coalesce<I> {
    /// Writes the held bytes, if any.
    pub(super) async fn write_held(&mut self) -> std::io::Result<()> {
        std::future::poll_fn(|cx| self.poll_held(cx, false)).await
    }

    /// Writes the held bytes until none is left (`Ready(Ok)`), or the socket is full;
    /// `before_shutdown`: the caller shuts the socket down next
    /// ([`ShutdownWrite::poll_write_before_shutdown`]).
    fn poll_held(
        &mut self,
        cx: &mut std::task::Context<'_>,
        before_shutdown: bool,
    ) -> std::task::Poll<std::io::Result<()>> {
        loop {
            let held = self.held.get(self.sent..).unwrap_or_default();
            if held.is_empty() {
                break;
            }
            let inner = std::pin::Pin::new(&mut self.inner);
            let n = std::task::ready!(if before_shutdown {
                inner.poll_write_before_shutdown(cx, held)
            } else {
                inner.poll_write(cx, held)
            })?;
            if n == 0 {
                return std::task::Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.emptied();
        std::task::Poll::Ready(Ok(()))
    }

    /// Holds `bufs` if the policy allows it (see [`Coalesce`]); their length if held.
    fn hold(&mut self, bufs: &[std::io::IoSlice<'_>]) -> Option<usize> {
        if self.writing_last() {
            return self.hold_last(bufs);
        }
        if !(self.handshaking && self.flight == Flight::Answered && self.held.is_empty()) {
            return None;
        }
        self.flight = Flight::Passing;
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if total > MAX_HELD {
            return None;
        }
        let mut held = Vec::with_capacity(total);
        for b in bufs {
            held.extend_from_slice(b);
        }
        if !only_encrypted_records(&held) {
            return None;
        }
        self.held = held;
        self.sent = 0;
        Some(total)
    }

    /// Adds `bufs` of the last response to what is held, if the policy allows it.
    fn hold_last(&mut self, bufs: &[std::io::IoSlice<'_>]) -> Option<usize> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        // Not while a write of the held bytes is under way, nor past the bound.
        if self.sent > 0 || self.held.len() + total > MAX_HELD {
            return None;
        }
        let before = self.held.len();
        for b in bufs {
            self.held.extend_from_slice(b);
        }
        if !only_encrypted_records(self.held.get(before..).unwrap_or_default()) {
            self.held.truncate(before);
            return None;
        }
        self.last.holding.store(true, Ordering::Relaxed);
        Some(total)
    }

    /// Writes `bufs`, after the held bytes and in the same call when there are some.
    fn poll_write_bufs(
        &mut self,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        use std::io::IoSlice;
        use std::task::Poll;
        if self.flight == Flight::Fresh {
            self.flight = Flight::Sent;
        }
        if let Some(n) = self.hold(bufs) {
            return Poll::Ready(Ok(n));
        }
        // One write: the held records, then the caller's.
        const MAX_SLICES: usize = 16;
        loop {
            let held = self.held.get(self.sent..).unwrap_or_default();
            let inner = std::pin::Pin::new(&mut self.inner);
            if held.is_empty() {
                return inner.poll_write_vectored(cx, bufs);
            }
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let mut used = 0;
            for (slot, b) in slices
                .iter_mut()
                .zip(std::iter::once(held).chain(bufs.iter().map(|b| &**b)))
            {
                *slot = IoSlice::new(b);
                used += 1;
            }
            let held_len = held.len();
            let n = std::task::ready!(
                inner.poll_write_vectored(cx, slices.get(..used).unwrap_or_default())
            )?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            if n < held_len {
                self.sent += n;
                continue;
            }
            self.emptied();
            if n > held_len {
                return Poll::Ready(Ok(n - held_len));
            }
            // Exactly the held bytes went: the caller's go on their own next round.
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Coalesce<I> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if self.flight == Flight::Sent && buf.filled().len() > before {
            self.flight = Flight::Answered;
        }
        r
    }
}

impl<I: ShutdownWrite> AsyncWrite for Coalesce<I> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.get_mut()
            .poll_write_bufs(cx, &[std::io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.get_mut().poll_write_bufs(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if !this.held.is_empty() && this.writing_last() {
            if !this.last.release.load(Ordering::Relaxed) {
                // Held for the close_notify; released when this poll ends.
                return std::task::Poll::Ready(Ok(()));
            }
            std::task::ready!(this.poll_held(cx, false))?;
        }
        std::pin::Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_held(cx, true))?;
        std::pin::Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::proxy::ca;

    /// A socket that records every write call and replays reads given in advance.
    #[derive(Default)]
    struct Recorder {
        writes: Vec<Vec<u8>>,
        reads: std::collections::VecDeque<Vec<u8>>,
        shut: bool,
    }

    impl AsyncRead for Recorder {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            if let Some(r) = self.reads.pop_front() {
                buf.put_slice(&r);
            }
            std::task::Poll::Ready(Ok(()))
        }
    }

    impl ShutdownWrite for Recorder {}

    impl AsyncWrite for Recorder {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            self.writes.push(buf.to_vec());
            std::task::Poll::Ready(Ok(buf.len()))
        }
        fn poll_write_vectored(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
            bufs: &[std::io::IoSlice<'_>],
        ) -> std::task::Poll<std::io::Result<usize>> {
            let all: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            let n = all.len();
            self.writes.push(all);
            std::task::Poll::Ready(Ok(n))
        }
        fn is_write_vectored(&self) -> bool {
            true
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn poll_shutdown(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            self.shut = true;
            std::task::Poll::Ready(Ok(()))
        }
    }

    fn record(kind: u8, len: usize) -> Vec<u8> {
        let mut r = vec![kind, 3, 3, (len >> 8) as u8, len as u8];
        r.resize(5 + len, 0xaa);
        r
    }

    #[test]
    fn encrypted_records_are_recognised_whole() {
        let two = [record(0x17, 3), record(0x17, 0)].concat();
        assert!(only_encrypted_records(&two));
        assert!(!only_encrypted_records(&[]));
        assert!(!only_encrypted_records(&two[..two.len() - 1]), "cut record");
        assert!(!only_encrypted_records(&[two.clone(), vec![0x17]].concat()));
        assert!(!only_encrypted_records(&record(0x16, 4)), "handshake");
        assert!(!only_encrypted_records(
            &[record(0x17, 2), record(0x14, 1)].concat()
        ));
        let mut tls10 = record(0x17, 2);
        tls10[2] = 1;
        assert!(!only_encrypted_records(&tls10));
    }

    #[test]
    fn tls13_tickets_wait_for_the_next_write() {
        crate::proxy::test_runtime().block_on(async {
            let mut reads = std::collections::VecDeque::new();
            reads.push_back(b"client finished".to_vec());
            let mut c = Coalesce::new(Recorder {
                reads,
                ..Default::default()
            });
            let flight = [record(0x16, 90), record(0x14, 1), record(0x17, 60)].concat();
            c.write_all(&flight).await.unwrap();
            c.flush().await.unwrap();
            assert_eq!(c.inner.writes.len(), 1, "the first flight goes at once");
            let mut buf = [0u8; 64];
            assert!(c.read(&mut buf).await.unwrap() > 0);
            let tickets = [record(0x17, 80), record(0x17, 80)].concat();
            let vec = [
                std::io::IoSlice::new(&tickets[..85]),
                std::io::IoSlice::new(&tickets[85..]),
            ];
            assert_eq!(c.write_vectored(&vec).await.unwrap(), tickets.len());
            c.flush().await.unwrap();
            c.handshake_done();
            c.flush().await.unwrap();
            assert_eq!(c.inner.writes.len(), 1, "tickets held through flushes");
            let response = record(0x17, 300);
            c.write_all(&response).await.unwrap();
            assert_eq!(c.inner.writes.len(), 2);
            assert_eq!(c.inner.writes[1], [tickets, response.clone()].concat());
            c.write_all(&response).await.unwrap();
            assert_eq!(c.inner.writes[2], response, "then everything passes");
        });
    }

    #[test]
    fn what_a_client_waits_for_is_never_held() {
        crate::proxy::test_runtime().block_on(async {
            let answer = || {
                let mut reads = std::collections::VecDeque::new();
                reads.push_back(b"answer".to_vec());
                Coalesce::new(Recorder {
                    reads,
                    ..Default::default()
                })
            };
            let mut buf = [0u8; 16];
            // TLS 1.2: the server's ChangeCipherSpec and Finished.
            let mut c = answer();
            c.write_all(&record(0x16, 100)).await.unwrap();
            assert!(c.read(&mut buf).await.unwrap() > 0);
            c.write_all(&[record(0x14, 1), record(0x16, 40)].concat())
                .await
                .unwrap();
            assert_eq!(c.inner.writes.len(), 2);
            // A TLS 1.3 HelloRetryRequest, then the ServerHello flight, then tickets:
            // holding ended with the ServerHello.
            let mut c = answer();
            c.write_all(&record(0x16, 80)).await.unwrap();
            assert!(c.read(&mut buf).await.unwrap() > 0);
            c.write_all(&record(0x16, 90)).await.unwrap();
            c.inner.reads.push_back(b"finished".to_vec());
            assert!(c.read(&mut buf).await.unwrap() > 0);
            c.write_all(&record(0x17, 80)).await.unwrap();
            assert_eq!(c.inner.writes.len(), 3);
            // Writes before the client answered, or after the handshake, pass.
            let mut c = answer();
            c.write_all(&record(0x16, 100)).await.unwrap();
            c.write_all(&record(0x17, 100)).await.unwrap();
            assert_eq!(c.inner.writes.len(), 2);
            let mut c = answer();
            c.write_all(&record(0x16, 100)).await.unwrap();
            assert!(c.read(&mut buf).await.unwrap() > 0);
            c.handshake_done();
            c.write_all(&record(0x17, 100)).await.unwrap();
            assert_eq!(c.inner.writes.len(), 2);
            // Too much to hold.
            let mut c = answer();
            c.write_all(&record(0x16, 100)).await.unwrap();
            assert!(c.read(&mut buf).await.unwrap() > 0);
            c.write_all(&record(0x17, MAX_HELD)).await.unwrap();
            assert_eq!(c.inner.writes.len(), 2);
        });
    }

    #[test]
    fn held_bytes_go_before_a_shutdown_or_on_request() {
        crate::proxy::test_runtime().block_on(async {
            let held = || async {
                let mut reads = std::collections::VecDeque::new();
                reads.push_back(b"finished".to_vec());
                let mut c = Coalesce::new(Recorder {
                    reads,
                    ..Default::default()
                });
                c.write_all(&record(0x16, 100)).await.unwrap();
                let mut buf = [0u8; 16];
                assert!(c.read(&mut buf).await.unwrap() > 0);
                c.write_all(&record(0x17, 50)).await.unwrap();
                assert_eq!(c.inner.writes.len(), 1);
                c
            };
            let mut c = held().await;
            c.shutdown().await.unwrap();
            assert!(c.inner.shut);
            assert_eq!(c.inner.writes[1], record(0x17, 50));
            let mut c = held().await;
            c.write_held().await.unwrap();
            assert_eq!(c.inner.writes[1], record(0x17, 50));
            c.write_held().await.unwrap();
            assert_eq!(c.inner.writes.len(), 2, "once");
        });
    }

    /// A waker that counts its wake-ups.
    struct CountWakes(AtomicUsize);

    impl std::task::Wake for CountWakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn a_last_response_waits_for_the_close_notify_or_for_the_end_of_its_poll() {
        crate::proxy::test_runtime().block_on(async {
            let after_handshake = || {
                let mut c = Coalesce::new(Recorder::default());
                c.handshake_done();
                let last = c.last_response();
                (c, last)
            };
            let response = [record(0x17, 300), record(0x17, 40)].concat();
            let close_notify = record(0x17, 19);
            // Not the last response: written at once.
            let (mut c, _) = after_handshake();
            c.write_all(&response).await.unwrap();
            assert_eq!(c.inner.writes.len(), 1);
            // The last: it and the close_notify in the shutdown's one write.
            let (mut c, last) = after_handshake();
            last.set_last();
            c.write_all(&response).await.unwrap();
            c.flush().await.unwrap();
            c.write_all(&close_notify).await.unwrap();
            c.flush().await.unwrap();
            assert!(
                c.inner.writes.is_empty(),
                "held through this poll's flushes"
            );
            c.shutdown().await.unwrap();
            assert_eq!(c.inner.writes, [[response.clone(), close_notify].concat()]);
            assert!(c.inner.shut);
            // The poll ends with it held (a body still streaming): the task is woken
            // and its next flush sends it; then the next write is held again.
            let (mut c, last) = after_handshake();
            last.set_last();
            last.poll_started();
            c.write_all(&response).await.unwrap();
            c.flush().await.unwrap();
            assert!(c.inner.writes.is_empty());
            let wakes = Arc::new(CountWakes(AtomicUsize::new(0)));
            let waker = std::task::Waker::from(wakes.clone());
            last.poll_pending(&mut std::task::Context::from_waker(&waker));
            assert_eq!(wakes.0.load(Ordering::Relaxed), 1);
            c.flush().await.unwrap();
            assert_eq!(c.inner.writes, std::slice::from_ref(&response));
            last.poll_pending(&mut std::task::Context::from_waker(&waker));
            assert_eq!(
                wakes.0.load(Ordering::Relaxed),
                1,
                "nothing held: no wake-up"
            );
            last.poll_started();
            c.write_all(&response).await.unwrap();
            c.flush().await.unwrap();
            assert_eq!(c.inner.writes.len(), 1);
            // More than MAX_HELD, or anything but encrypted records (a TLS 1.2
            // alert), goes out with what is held, in one write.
            let (mut c, last) = after_handshake();
            last.set_last();
            c.write_all(&response).await.unwrap();
            let big = record(0x17, MAX_HELD);
            c.write_all(&big).await.unwrap();
            assert_eq!(c.inner.writes, [[response.clone(), big].concat()]);
            let (mut c, last) = after_handshake();
            last.set_last();
            c.write_all(&response).await.unwrap();
            let alert = record(0x15, 26);
            c.write_all(&alert).await.unwrap();
            assert_eq!(c.inner.writes, [[response.clone(), alert].concat()]);
            // Not on a connection that hyper may hand to an upgrade.
            let (mut c, last) = after_handshake();
            last.never();
            last.set_last();
            c.write_all(&response).await.unwrap();
            assert_eq!(c.inner.writes.len(), 1);
            // During the handshake the last-response hold does not apply.
            let mut c = Coalesce::new(Recorder::default());
            c.last_response().set_last();
            c.write_all(&record(0x16, 100)).await.unwrap();
            assert_eq!(c.inner.writes.len(), 1);
        });
    }

    /// Counts the write calls that reach the socket.
    struct Counting<I>(I, Arc<AtomicUsize>);

    impl<I: AsyncRead + Unpin> AsyncRead for Counting<I> {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
        }
    }

    impl<I: AsyncWrite + Unpin> ShutdownWrite for Counting<I> {}

    impl<I: AsyncWrite + Unpin> AsyncWrite for Counting<I> {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            let r = std::pin::Pin::new(&mut self.0).poll_write(cx, buf);
            if matches!(r, std::task::Poll::Ready(Ok(n)) if n > 0) {
                self.1.fetch_add(1, Ordering::Relaxed);
            }
            r
        }
        /// One call for all of `bufs`, as `writev` on a socket (a duplex stream
        /// takes one buffer per call).
        fn poll_write_vectored(
            self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            bufs: &[std::io::IoSlice<'_>],
        ) -> std::task::Poll<std::io::Result<usize>> {
            let all: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            self.poll_write(cx, &all)
        }
        fn is_write_vectored(&self) -> bool {
            true
        }
        fn poll_flush(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::pin::Pin::new(&mut self.0).poll_flush(cx)
        }
        fn poll_shutdown(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
        }
    }

    /// On a TCP socket the bytes held for the shutdown are sent with `MSG_MORE`: the
    /// client gets all of them and then the end of the stream, and as well when the
    /// socket is only dropped after them, without the shutdown.
    #[test]
    fn held_bytes_reach_a_tcp_client_with_the_fin() {
        crate::proxy::test_runtime().block_on(async {
            let response = [record(0x17, 300), record(0x17, 19)].concat();
            for shut in [true, false] {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                let client = tokio::spawn(async move {
                    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
                    let mut got = Vec::new();
                    s.read_to_end(&mut got).await.unwrap();
                    got
                });
                let (tcp, _) = listener.accept().await.unwrap();
                let mut c = Coalesce::new(crate::proxy::body::Rewind::new(tcp));
                c.handshake_done();
                c.last_response().set_last();
                c.write_all(&response).await.unwrap();
                if shut {
                    c.shutdown().await.unwrap();
                } else {
                    std::future::poll_fn(|cx| c.poll_held(cx, true))
                        .await
                        .unwrap();
                }
                let got = tokio::time::timeout(Duration::from_secs(10), async {
                    if !shut {
                        drop(c);
                    }
                    client.await.unwrap()
                })
                .await
                .unwrap_or_else(|_| panic!("shutdown={shut}: stuck"));
                assert_eq!(got, response, "shutdown={shut}");
            }
        });
    }

    /// Real rustls handshakes (TLS 1.2 and 1.3, full then resumed) through
    /// [`Coalesce`] as `intercept_tls` runs them: none waits on a held write, in
    /// TLS 1.3 the tickets go out with the first response bytes, and a last response
    /// goes out with the close_notify.
    #[test]
    fn real_handshakes_complete_and_tls13_tickets_ride_with_the_response() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca::Ca::load_or_create(dir.path()).unwrap();
        let minter = ca::Minter::new(&ca, crate::proxy::tls_provider(), Arc::new(|_| {})).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.cert_der().to_vec().into()).unwrap();
        let versions = [&rustls::version::TLS12, &rustls::version::TLS13];
        for (version, last) in versions.into_iter().flat_map(|v| [(v, false), (v, true)]) {
            let client = Arc::new(
                rustls::ClientConfig::builder_with_provider(crate::proxy::tls_provider())
                    .with_protocol_versions(&[version])
                    .unwrap()
                    .with_root_certificates(roots.clone())
                    .with_no_client_auth(),
            );
            for round in ["full", "resumed"] {
                let writes = Arc::new(AtomicUsize::new(0));
                let (client_io, server_io) = tokio::io::duplex(64 * 1024);
                let server = async {
                    let io = Coalesce::new(Counting(server_io, writes.clone()));
                    let last_response = io.last_response();
                    let start = tokio_rustls::LazyConfigAcceptor::new(
                        rustls::server::Acceptor::default(),
                        io,
                    )
                    .await
                    .unwrap();
                    let mut tls = start
                        .into_stream(minter.config_for("example.com"))
                        .into_fallible()
                        .await
                        .map_err(|(e, _)| e)
                        .unwrap();
                    tls.get_mut().0.handshake_done();
                    let mut ping = [0u8; 4];
                    tls.read_exact(&mut ping).await.unwrap();
                    if last {
                        last_response.set_last();
                    }
                    tls.write_all(b"pong").await.unwrap();
                    tls.flush().await.unwrap();
                    tls.shutdown().await.unwrap();
                    tls.get_ref().1.handshake_kind()
                };
                let client = async {
                    let connector = tokio_rustls::TlsConnector::from(client.clone());
                    let mut tls = connector
                        .connect("example.com".try_into().unwrap(), client_io)
                        .await
                        .unwrap();
                    tls.write_all(b"ping").await.unwrap();
                    let mut pong = Vec::new();
                    tls.read_to_end(&mut pong).await.unwrap();
                    pong
                };
                let both = async { tokio::join!(server, client) };
                let (kind, pong) = crate::proxy::test_runtime()
                    .block_on(async { tokio::time::timeout(Duration::from_secs(10), both).await })
                    .unwrap_or_else(|_| panic!("{version:?} {round}: stuck"));
                assert_eq!(pong, b"pong");
                let resumed = round == "resumed";
                assert_eq!(
                    kind == Some(rustls::HandshakeKind::Resumed),
                    resumed,
                    "{version:?}"
                );
                // First flight, [second flight,] pong (+ held tickets), close_notify;
                // the last response leaves with the close_notify.
                let full_tls12 = version == &rustls::version::TLS12 && !resumed;
                let want = 3 + usize::from(full_tls12) - usize::from(last);
                assert_eq!(
                    writes.load(Ordering::Relaxed),
                    want,
                    "{version:?} {round} last={last}"
                );
            }
        }
    }
}
