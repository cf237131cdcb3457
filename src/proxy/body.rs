//! The body type the proxy core passes around, the stall timer its bodies run on, and
//! [`Rewind`], which gives back bytes the core read to decide what a connection
//! speaks.
//!
//! - [`Body`]: one boxed body type for everything the proxy answers or forwards (a
//!   tapped request or response body, a page of the magic host, an error text).
//! - [`Stall`]: the `--body-timeout` policy. A body that makes no progress for the
//!   timeout (since its last frame, or since it was first polled) while someone
//!   waits for it fails with [`Stalled`]. The clock starts at the first `Pending` after progress, so the time
//!   the *reader* takes (a slow client reading a response, back-pressure) never
//!   counts against the sender: only waiting for data that does not come does.
//! - [`Rewind`]: a stream with a prefix already read from it, replayed before the
//!   rest. The prefix lives inline (at most [`MAX_PREFIX`] bytes): no allocation per
//!   connection.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Errors of the proxy's bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of every request and response the proxy core handles.
pub type Body = http_body_util::combinators::BoxBody<Bytes, BoxError>;

/// A body of `bytes`.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|e| match e {}).boxed()
}

/// An empty body.
pub fn empty() -> Body {
    Empty::new().map_err(|e| match e {}).boxed()
}

/// A body waited for longer than the stall timeout without a byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stalled(pub Duration);

impl std::fmt::Display for Stalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "no data for {} s (--body-timeout); the body was cut",
            self.0.as_secs_f64()
        )
    }
}

impl std::error::Error for Stalled {}

/// The stall timer of one body (see the module documentation).
pub struct Stall {
    timeout: Duration,
    /// Allocated at the first wait only: a body that is always ready costs nothing.
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The timer runs (a `Pending` since the last progress).
    armed: bool,
}

impl Stall {
    /// A timer cutting a body after `timeout` without progress.
    pub fn new(timeout: Duration) -> Stall {
        Stall {
            timeout,
            sleep: None,
            armed: false,
        }
    }

    /// The body delivered something (or ended): the next wait starts a new clock.
    pub fn progress(&mut self) {
        self.armed = false;
    }

    /// The body has nothing now: `Err` once it has had nothing for the timeout.
    /// Registers the waker for that moment.
    pub fn pending(&mut self, cx: &mut Context<'_>) -> Result<(), Stalled> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let sleep = match &mut self.sleep {
            Some(s) => {
                if !self.armed {
                    s.as_mut().reset(deadline);
                }
                s
            }
            None => self
                .sleep
                .insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        self.armed = true;
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Err(Stalled(self.timeout)),
            Poll::Pending => Ok(()),
        }
    }
}

impl std::fmt::Debug for Stall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stall")
            .field("timeout", &self.timeout)
            .field("armed", &self.armed)
            .finish()
    }
}

/// Bytes kept in front of a [`Rewind`] stream, at most: the HTTP/2 preface (24) is
/// the longest thing the core reads to decide a protocol.
pub const MAX_PREFIX: usize = 24;

/// A stream with bytes already read from it (up to [`MAX_PREFIX`], or the limit given
/// to [`Rewind::reading_ahead`]), replayed first.
#[derive(Debug)]
pub struct Rewind<I> {
    /// Read and not yet replayed from `pos`; allocated by the first fill, freed once
    /// replayed (a long-lived tunnel keeps nothing).
    prefix: Vec<u8>,
    pos: usize,
    /// Most bytes [`Rewind::fill`] reads.
    limit: usize,
    inner: I,
}

impl<I> Rewind<I> {
    /// `inner`, with nothing read from it yet.
    pub fn new(inner: I) -> Rewind<I> {
        Rewind::reading_ahead(inner, MAX_PREFIX)
    }

    /// `inner`, whose [`Rewind::fill`] reads up to `limit` bytes: whatever came with
    /// the first bytes is read in the same call (a whole CONNECT request, a whole TLS
    /// ClientHello), not by a second one.
    pub fn reading_ahead(inner: I, limit: usize) -> Rewind<I> {
        Rewind {
            prefix: Vec::new(),
            pos: 0,
            limit,
            inner,
        }
    }

    /// The bytes read so far and not yet replayed.
    pub fn prefix(&self) -> &[u8] {
        self.prefix.get(self.pos..).unwrap_or_default()
    }

    /// Drops the first `n` bytes of the prefix (a request head the core answered
    /// itself): they are not replayed. The allocation stays for the next
    /// [`Rewind::fill`].
    pub fn consume(&mut self, n: usize) {
        let end = self.pos.saturating_add(n).min(self.prefix.len());
        self.prefix.drain(self.pos..end);
    }

    /// The inner stream (bytes already read are in [`Rewind::prefix`]).
    pub fn get_mut(&mut self) -> &mut I {
        &mut self.inner
    }
}

impl<I: AsyncRead + Unpin> Rewind<I> {
    /// Reads from the inner stream until `enough` says the prefix decides the matter,
    /// the prefix is full, or the stream ends (`Ok(false)`: nothing more will come).
    /// Must be called before anything is replayed.
    pub async fn fill(&mut self, enough: impl Fn(&[u8]) -> bool) -> io::Result<bool> {
        use tokio::io::AsyncReadExt;
        while self.prefix.len() < self.limit {
            if enough(&self.prefix) {
                return Ok(true);
            }
            let room = self.limit.saturating_sub(self.prefix.len());
            self.prefix.reserve_exact(room);
            let n = self
                .inner
                .read_buf(&mut bytes::BufMut::limit(&mut self.prefix, room))
                .await?;
            if n == 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Rewind<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.pos < this.prefix.len() {
            let rest = this.prefix.get(this.pos..).unwrap_or_default();
            let n = rest.len().min(buf.remaining());
            buf.put_slice(rest.get(..n).unwrap_or_default());
            this.pos += n;
            if this.pos >= this.prefix.len() {
                this.prefix = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Rewind<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn rewind_replays_the_prefix_then_the_rest_whatever_the_split() {
        let rt = crate::proxy::test_runtime();
        let data = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nand then the frames";
        for split in 1..data.len() {
            rt.block_on(async {
                let (mut a, b) = tokio::io::duplex(64);
                let (first, second) = data.split_at(split);
                a.write_all(first).await.unwrap();
                let mut r = Rewind::new(b);
                let writer = async {
                    tokio::task::yield_now().await;
                    a.write_all(second).await.unwrap();
                    drop(a);
                };
                let reader = async {
                    assert!(r.fill(|p| p.len() >= 4).await.unwrap());
                    assert!(r.prefix().len() >= 4);
                    let mut all = Vec::new();
                    r.read_to_end(&mut all).await.unwrap();
                    all
                };
                let (_, all) = tokio::join!(writer, reader);
                assert_eq!(all, data, "split at {split}");
            });
        }
    }

    #[test]
    fn fill_reports_an_early_end_and_stops_at_the_limit() {
        let rt = crate::proxy::test_runtime();
        rt.block_on(async {
            let (mut a, b) = tokio::io::duplex(64);
            a.write_all(b"GE").await.unwrap();
            drop(a);
            let mut r = Rewind::new(b);
            assert!(!r.fill(|p| p.len() >= 4).await.unwrap());
            assert_eq!(r.prefix(), b"GE");

            let (mut a, b) = tokio::io::duplex(64);
            a.write_all(&[b'x'; 40]).await.unwrap();
            let mut r = Rewind::new(b);
            assert!(r.fill(|_| false).await.unwrap());
            assert_eq!(r.prefix().len(), MAX_PREFIX);
        });
    }

    #[test]
    fn reading_ahead_takes_what_came_in_one_read_up_to_its_limit() {
        let rt = crate::proxy::test_runtime();
        rt.block_on(async {
            let msg = b"CONNECT h.example:443 HTTP/1.1\r\n\r\n";
            for (limit, want) in [(8, &msg[..8]), (4096, &msg[..])] {
                let (mut a, b) = tokio::io::duplex(256);
                a.write_all(msg).await.unwrap();
                drop(a);
                let mut r = Rewind::reading_ahead(b, limit);
                // Decided by the first byte, yet everything that came (up to the limit)
                // is read with it.
                assert!(r.fill(|p| !p.is_empty()).await.unwrap());
                assert_eq!(r.prefix(), want);
                let mut all = Vec::new();
                r.read_to_end(&mut all).await.unwrap();
                assert_eq!(all, msg);
                // Replayed: nothing kept.
                assert!(r.prefix().is_empty() && r.prefix.capacity() == 0);
            }
        });
    }

    #[test]
    fn consumed_bytes_are_not_replayed_and_fill_goes_on_after_the_rest() {
        let rt = crate::proxy::test_runtime();
        rt.block_on(async {
            let (mut a, b) = tokio::io::duplex(256);
            a.write_all(b"CONNECT h:1 HTTP/1.1\r\n\r\n\x16\x03")
                .await
                .unwrap();
            let mut r = Rewind::reading_ahead(b, 4096);
            assert!(r.fill(|p| !p.is_empty()).await.unwrap());
            r.consume(24);
            assert_eq!(r.prefix(), b"\x16\x03");
            let capacity = r.prefix.capacity();
            a.write_all(b"\x01rest").await.unwrap();
            drop(a);
            assert!(r.fill(|p| p.len() >= 3).await.unwrap());
            assert_eq!(r.prefix(), b"\x16\x03\x01rest");
            // The same buffer, not a new one.
            assert_eq!(r.prefix.capacity(), capacity);
            // More than is left: all of it goes.
            r.consume(100);
            let mut all = Vec::new();
            r.read_to_end(&mut all).await.unwrap();
            assert!(all.is_empty());
        });
    }

    /// Time unit of the stall tests (real time: tokio's paused clock needs a feature
    /// the crate does not build with); the stall timeout is 5 units.
    const UNIT: Duration = Duration::from_millis(40);

    /// A body that yields `chunks` with `gaps` of silence before each.
    struct Slow {
        steps: Vec<(Duration, &'static [u8])>,
        sleep: Option<Pin<Box<tokio::time::Sleep>>>,
        stall: Stall,
    }

    impl http_body::Body for Slow {
        type Data = Bytes;
        type Error = Stalled;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Bytes>, Stalled>>> {
            let this = &mut *self;
            let Some((gap, chunk)) = this.steps.first().copied() else {
                return Poll::Ready(None);
            };
            let sleep = this
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(gap)));
            if sleep.as_mut().poll(cx).is_pending() {
                return match this.stall.pending(cx) {
                    Ok(()) => Poll::Pending,
                    Err(e) => Poll::Ready(Some(Err(e))),
                };
            }
            this.sleep = None;
            this.steps.remove(0);
            this.stall.progress();
            Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from_static(chunk)))))
        }
    }

    fn slow(steps: Vec<(u32, &'static [u8])>) -> Slow {
        Slow {
            steps: steps.into_iter().map(|(s, c)| (UNIT * s, c)).collect(),
            sleep: None,
            stall: Stall::new(UNIT * 5),
        }
    }

    #[test]
    fn a_body_is_cut_after_the_timeout_without_progress_only() {
        let rt = crate::proxy::test_runtime();
        rt.block_on(async {
            // Gaps under the timeout, however many: the body completes.
            let b = slow(vec![(4, b"a"), (4, b"b"), (4, b"c")]);
            let got = b.collect().await.unwrap().to_bytes();
            assert_eq!(&got[..], b"abc");
            // One gap over it: cut with Stalled after the timeout.
            let started = tokio::time::Instant::now();
            let b = slow(vec![(1, b"a"), (20, b"b")]);
            let err = b.collect().await.unwrap_err();
            assert_eq!(err, Stalled(UNIT * 5));
            let took = started.elapsed();
            assert!(took >= UNIT * 6 && took < UNIT * 20, "{took:?}");
        });
    }

    #[test]
    fn time_the_reader_takes_does_not_count() {
        let rt = crate::proxy::test_runtime();
        rt.block_on(async {
            let mut b = slow(vec![(0, b"a"), (3, b"b")]);
            let first = b.frame().await.unwrap().unwrap();
            assert_eq!(first.into_data().unwrap(), "a");
            // The reader comes back after 10 units (longer than the timeout): the
            // sender has 5 from now, and needs 3.
            tokio::time::sleep(UNIT * 10).await;
            let second = b.frame().await.unwrap().unwrap();
            assert_eq!(second.into_data().unwrap(), "b");
        });
    }
}
