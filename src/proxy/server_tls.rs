//! The TLS server side of an intercepted tunnel: a `rustls::ServerConnection` over the
//! client's stream, as tokio-rustls' server stream but with fewer writes per
//! connection (issue 4: new intercepted HTTPS connections per second, where every
//! write to the client is a syscall and a segment the client must wake up for).
//!
//! Pipeline position: between [`super::serve`]'s ClientHello reader and hyper, which
//! serves HTTP on the decrypted stream.
//!
//! Write policy: TLS 1.3 session tickets, which rustls queues when the client's
//! Finished arrives, are not written on their own: they wait in the connection's
//! buffer and leave with the first bytes the server writes (the response, or HTTP/2's
//! SETTINGS), in one `writev`. A client never waits for tickets before it sends its
//! request, so nothing waits on them. Whatever else the handshake queues (TLS 1.2's
//! last flight, which the client does wait for) is written at once. Application
//! writes are encrypted and written at once, as tokio-rustls does; `poll_flush` and
//! `poll_shutdown` write whatever is queued (shutdown sends `close_notify` first).
//!
//! Bounds: rustls bounds what it buffers (received plaintext, queued TLS), and reads
//! are only asked of the socket when no plaintext is waiting.

use std::io::{self, BufRead, Read, Write};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use std::sync::Arc;

use rustls::server::Accepted;
use rustls::{ServerConfig, ServerConnection};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

/// An established TLS connection with a client (see the module documentation).
#[derive(Debug)]
pub struct ServerTls<I> {
    io: I,
    conn: ServerConnection,
    /// `close_notify` queued (by `poll_shutdown`).
    closing: bool,
}

/// Completes the handshake the ClientHello in `accepted` began, with `config`. An
/// error is the client's (it went away, sent garbage, or rejected our certificate);
/// the alert rustls has for it is sent first, best effort.
pub async fn accept<I>(
    accepted: Accepted,
    config: Arc<ServerConfig>,
    mut io: I,
) -> io::Result<ServerTls<I>>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let conn = match accepted.into_connection(config) {
        Ok(c) => c,
        Err((e, mut alert)) => {
            let mut out = Vec::new();
            let _ = alert.write(&mut out);
            let _ = io.write_all(&out).await;
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
    };
    let mut tls = ServerTls {
        io,
        conn,
        closing: false,
    };
    std::future::poll_fn(|cx| tls.poll_handshake(cx)).await?;
    Ok(tls)
}

impl<I> ServerTls<I> {
    /// The rustls connection (negotiated ALPN protocol, SNI, …).
    pub fn conn(&self) -> &ServerConnection {
        &self.conn
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin> ServerTls<I> {
    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.conn.is_handshaking() {
            while self.conn.wants_write() {
                ready!(self.poll_write_tls(cx))?;
            }
            ready!(self.poll_read_tls(cx))?;
        }
        // TLS 1.3 leaves only tickets queued: they go with the first write. Anything
        // else (TLS 1.2's ChangeCipherSpec and Finished) the client is waiting for.
        if self.conn.protocol_version() != Some(rustls::ProtocolVersion::TLSv1_3) {
            while self.conn.wants_write() {
                ready!(self.poll_write_tls(cx))?;
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Writes queued TLS bytes once (every queued record in one `writev`).
    fn poll_write_tls(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut w = SyncIo {
            io: &mut self.io,
            cx,
        };
        match self.conn.write_tls(&mut w) {
            Ok(0) => Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
            Ok(n) => Poll::Ready(Ok(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// Reads TLS bytes once and processes them; `Ok(0)` at the end of the stream.
    fn poll_read_tls(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut r = SyncIo {
            io: &mut self.io,
            cx,
        };
        let n = match self.conn.read_tls(&mut r) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
            Err(e) => return Poll::Ready(Err(e)),
        };
        if n == 0 && self.conn.is_handshaking() {
            return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
        }
        if let Err(e) = self.conn.process_new_packets() {
            // The alert rustls queued for it, best effort.
            let _ = self.poll_write_tls(cx);
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e)));
        }
        Poll::Ready(Ok(n))
    }

    /// Writes everything queued.
    fn poll_write_all_tls(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.conn.wants_write() {
            ready!(self.poll_write_tls(cx))?;
        }
        Poll::Ready(Ok(()))
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin> AsyncRead for ServerTls<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            match this.conn.reader().into_first_chunk() {
                Ok(chunk) => {
                    // Empty: the client sent close_notify.
                    let n = chunk.len().min(buf.remaining());
                    buf.put_slice(chunk.get(..n).unwrap_or_default());
                    this.conn.reader().consume(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // UnexpectedEof: the stream ended without close_notify.
                Err(e) => return Poll::Ready(Err(e)),
            }
            // No plaintext waiting and the stream still open: read more. At the end
            // of the stream the reader above answers (Ok(0) or UnexpectedEof).
            ready!(this.poll_read_tls(cx))?;
        }
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin> AsyncWrite for ServerTls<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        // rustls takes what its send buffer has room for; queued bytes (tickets, earlier
        // records) leave with it in one write.
        let n = this.conn.writer().write(buf)?;
        let flushed = this.poll_write_all_tls(cx)?;
        match (n, flushed) {
            (0, Poll::Pending) => Poll::Pending,
            // Nothing taken with an empty queue: the connection is closed for writing.
            (0, Poll::Ready(())) => Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
            (n, _) => Poll::Ready(Ok(n)),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_all_tls(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.closing {
            this.conn.send_close_notify();
            this.closing = true;
        }
        ready!(this.poll_write_all_tls(cx))?;
        match ready!(Pin::new(&mut this.io).poll_shutdown(cx)) {
            // The client may have closed first.
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Poll::Ready(Ok(())),
            r => Poll::Ready(r),
        }
    }
}

/// The async stream as the blocking `Read`/`Write` rustls asks for: `Pending` is
/// `WouldBlock` (the waker is registered by the poll that returned it).
struct SyncIo<'a, 'b, I> {
    io: &'a mut I,
    cx: &'a mut Context<'b>,
}

impl<I: AsyncRead + Unpin> Read for SyncIo<'_, '_, I> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut rb = ReadBuf::new(buf);
        match Pin::new(&mut *self.io).poll_read(self.cx, &mut rb) {
            Poll::Ready(Ok(())) => Ok(rb.filled().len()),
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl<I: AsyncWrite + Unpin> Write for SyncIo<'_, '_, I> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match Pin::new(&mut *self.io).poll_write(self.cx, buf) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match Pin::new(&mut *self.io).poll_write_vectored(self.cx, bufs) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match Pin::new(&mut *self.io).poll_flush(self.cx) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::ca::{Ca, Minter};
    use std::sync::Mutex;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, DuplexStream};

    /// A stream that records the size of every write made to it.
    struct Counting {
        inner: DuplexStream,
        writes: Arc<Mutex<Vec<usize>>>,
    }

    impl AsyncRead for Counting {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for Counting {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let r = Pin::new(&mut self.inner).poll_write(cx, buf);
            if let Poll::Ready(Ok(n)) = r {
                self.writes.lock().unwrap().push(n);
            }
            r
        }
        /// One call, one write (as `writev` on a socket), whatever the slices.
        fn poll_write_vectored(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[io::IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let all: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            self.poll_write(cx, &all)
        }
        fn is_write_vectored(&self) -> bool {
            true
        }
        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }
        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn client(
        ca: &Ca,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(ca.cert_der().to_vec()))
            .unwrap();
        Arc::new(
            rustls::ClientConfig::builder_with_provider(crate::proxy::tls_provider())
                .with_protocol_versions(versions)
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }
    use rustls::pki_types::CertificateDer;

    /// The server side as the core runs it: ClientHello read with an `Acceptor`, then
    /// [`accept`]; answers one `ping` with `pong` and closes.
    async fn serve_one(m: &Minter, io: Counting) -> io::Result<()> {
        let mut io = io;
        let mut acceptor = rustls::server::Acceptor::default();
        let accepted = loop {
            let mut buf = [0u8; 512];
            let n = io.read(&mut buf).await?;
            acceptor.read_tls(&mut &buf[..n])?;
            if let Some(a) = acceptor.accept().map_err(|(e, _)| io::Error::other(e))? {
                break a;
            }
        };
        let mut tls = accept(accepted, m.config_for("example.com"), io).await?;
        let mut req = [0u8; 4];
        tls.read_exact(&mut req).await?;
        assert_eq!(&req, b"ping");
        tls.write_all(b"pong").await?;
        tls.flush().await?;
        tls.shutdown().await?;
        Ok(())
    }

    /// One connection through a duplex of `cap` bytes; returns the server's writes and
    /// how the client's handshake went.
    fn connection(
        m: &Minter,
        client: &Arc<rustls::ClientConfig>,
        cap: usize,
    ) -> (Vec<usize>, Option<rustls::HandshakeKind>) {
        rt().block_on(async {
            let (a, b) = tokio::io::duplex(cap);
            let writes = Arc::new(Mutex::new(Vec::new()));
            let server = serve_one(
                m,
                Counting {
                    inner: b,
                    writes: writes.clone(),
                },
            );
            let connector = tokio_rustls::TlsConnector::from(client.clone());
            let client = async {
                let mut c = connector
                    .connect("example.com".try_into().unwrap(), a)
                    .await
                    .unwrap();
                c.write_all(b"ping").await.unwrap();
                c.flush().await.unwrap();
                let mut all = Vec::new();
                c.read_to_end(&mut all).await.unwrap();
                assert_eq!(all, b"pong");
                c.get_ref().1.handshake_kind()
            };
            let both = async { tokio::join!(server, client) };
            let (s, kind) = tokio::time::timeout(Duration::from_secs(10), both)
                .await
                .expect("connection stalled");
            s.unwrap();
            let w = writes.lock().unwrap().clone();
            (w, kind)
        })
    }

    fn minter() -> (tempfile::TempDir, Ca, Minter) {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::load_or_create(dir.path()).unwrap();
        let m = Minter::new(&ca, crate::proxy::tls_provider(), Arc::new(|_| {})).unwrap();
        (dir, ca, m)
    }

    #[test]
    fn tls13_tickets_leave_with_the_first_response_and_still_resume() {
        let (_dir, ca, m) = minter();
        let c = client(&ca, &[&rustls::version::TLS13]);
        let (writes, kind) = connection(&m, &c, 64 * 1024);
        // Server flight; response with the tickets; close_notify. tokio-rustls wrote
        // the tickets on their own (four writes).
        assert_eq!(writes.len(), 3, "{writes:?}");
        assert_eq!(kind, Some(rustls::HandshakeKind::Full));
        // The tickets arrived: the next connections resume with them.
        for _ in 0..2 {
            let (writes, kind) = connection(&m, &c, 64 * 1024);
            assert_eq!(kind, Some(rustls::HandshakeKind::Resumed));
            assert_eq!(writes.len(), 3, "{writes:?}");
        }
    }

    #[test]
    fn tls12_handshakes_complete_and_resume() {
        let (_dir, ca, m) = minter();
        let c = client(&ca, &[&rustls::version::TLS12]);
        let (_, kind) = connection(&m, &c, 64 * 1024);
        assert_eq!(kind, Some(rustls::HandshakeKind::Full));
        let (_, kind) = connection(&m, &c, 64 * 1024);
        assert_eq!(kind, Some(rustls::HandshakeKind::Resumed));
    }

    /// Records split across many short reads and writes (Pending on both sides). Not
    /// below 16 bytes: tokio-rustls' client stalls on a 2-byte duplex against its own
    /// server as well.
    #[test]
    fn small_buffers_split_every_record_and_nothing_stalls() {
        let (_dir, ca, m) = minter();
        for versions in [&[&rustls::version::TLS13][..], &[&rustls::version::TLS12]] {
            let c = client(&ca, versions);
            for cap in [16, 100, 1000] {
                let (writes, _) = connection(&m, &c, cap);
                assert!(writes.iter().all(|&n| n <= cap));
            }
        }
    }

    #[test]
    fn the_end_of_the_stream_is_clean_only_with_close_notify() {
        let (_dir, ca, m) = minter();
        let c = client(&ca, &[&rustls::version::TLS13]);
        rt().block_on(async {
            for notify in [true, false] {
                let (a, b) = tokio::io::duplex(64 * 1024);
                let mut b = Counting {
                    inner: b,
                    writes: Default::default(),
                };
                let server = async {
                    let mut acceptor = rustls::server::Acceptor::default();
                    let accepted = loop {
                        let mut buf = [0u8; 512];
                        let n = b.read(&mut buf).await.unwrap();
                        acceptor.read_tls(&mut &buf[..n]).unwrap();
                        if let Some(a) = acceptor.accept().map_err(|(e, _)| e).unwrap() {
                            break a;
                        }
                    };
                    let mut tls = accept(accepted, m.config_for("example.com"), b)
                        .await
                        .unwrap();
                    let mut all = Vec::new();
                    tls.read_to_end(&mut all).await.map(|_| all)
                };
                let connector = tokio_rustls::TlsConnector::from(c.clone());
                let client = async {
                    let mut t = connector
                        .connect("example.com".try_into().unwrap(), a)
                        .await
                        .unwrap();
                    t.write_all(b"bye").await.unwrap();
                    if notify {
                        t.shutdown().await.unwrap();
                    } else {
                        t.flush().await.unwrap();
                        let (mut tcp, _) = t.into_inner();
                        tcp.shutdown().await.unwrap();
                    }
                };
                let (read, ()) = tokio::join!(server, client);
                match (notify, read) {
                    (true, Ok(all)) => assert_eq!(all, b"bye"),
                    (false, Err(e)) => assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof),
                    (n, r) => panic!("close_notify {n}: {r:?}"),
                }
            }
        });
    }
}
