//! A tunnel (`CONNECT` or SOCKS5) in a protocol the proxy does not read: neither TLS
//! nor HTTP, such as a push or analytics SDK's own long connection. It is passed
//! through untouched while the client's first bytes are kept as the pcap tap keeps
//! them for the same connection ([`Unparsed`]: 64 KiB per tunnel, 64 MiB for all
//! tunnels at once, the rest counted). When the tunnel ends it becomes one
//! metadata-only exchange (scheme `tcp`, as the tap names it) whose `request_body`
//! the analysis searches as the connection's `payload`: an identifier a phone sends
//! that way through the proxy gives the finding the tap gives for it in a capture.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::http::uri::Authority;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::handler::norm_host;
use super::Shared;
use crate::exchange::{Exchange, SourceKind};
use crate::net::flow::{DEFAULT_MAX_UNPARSED_BYTES, DEFAULT_MAX_UNPARSED_TOTAL};
use crate::net::unparsed::Unparsed;
use crate::timestamp::Timestamp;

/// The client side of such a tunnel: what is read from it is also kept.
pub(crate) struct KeptReads<I> {
    inner: I,
    kept: Unparsed,
}

impl<I> KeptReads<I> {
    pub(crate) fn new(inner: I, shared: &Shared) -> Self {
        KeptReads {
            inner,
            kept: Unparsed::new(shared.unparsed_held.clone()),
        }
    }

    /// What was kept (and counted) of the client's bytes.
    pub(crate) fn into_kept(self) -> Unparsed {
        self.kept
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for KeptReads<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let new = buf.filled().get(before..).unwrap_or_default();
            this.kept
                .push(new, DEFAULT_MAX_UNPARSED_BYTES, DEFAULT_MAX_UNPARSED_TOTAL);
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for KeptReads<I> {
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

/// Records the ended tunnel of `client` to `authority`, whose client bytes began at
/// `at`, as one metadata-only exchange.
pub(crate) fn record(
    shared: &Shared,
    client: SocketAddr,
    authority: &Authority,
    at: Timestamp,
    mut kept: Unparsed,
) {
    let (n, id) = shared.next_id();
    let mut x = Exchange::blank(id, SourceKind::Proxy, at);
    x.evidence.locator = super::locator(&shared.session, n);
    if shared.settings.addresses_and_version {
        x.client = Some(crate::net::text::socket_string(client));
        x.server = Some(authority.as_str().to_owned());
    }
    // The CONNECT's device was noted for this client (credentials, address).
    x.device = Some(shared.device_of(client, None));
    x.host = norm_host(authority.host());
    x.scheme = "tcp".into();
    x.metadata_only = true;
    x.anomalies.extend(kept.not_kept());
    x.request_body = kept.take();
    shared
        .counters
        .exchanges
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    shared.emit_exchange(x);
}
