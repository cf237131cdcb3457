//! A QUIC flow read with a key log: its datagrams through [`QuicConnReader`] (packets
//! → ordered stream bytes) and [`Http3Conn`] (stream bytes → requests), out as the
//! flow table's events.
//!
//! The flow table starts a [`QuicFlow`] when a QUIC flow's ClientHello is read and the
//! key log holds secrets for its client random ([`crate::net::flow`]); from then on
//! every datagram of the flow, both ways, comes here. Each request stream becomes one
//! [`FlowEvent::Http`] as it completes, numbered in completion order as HTTP/2
//! streams are. A connection that yields no request (nothing decrypted, no HTTP/3,
//! only a handshake) becomes the one [`FlowEvent::Metadata`] a QUIC flow without keys
//! gives, with the reason it was not read in its TLS status.
//!
//! Connection-level anomalies (from the transport and HTTP/3 alike) go with the next
//! exchange handed out, else with the metadata event.

use std::sync::Arc;

use crate::exchange::Anomaly;
use crate::net::flow::{ConnInfo, FlowEvent};
use crate::net::http3::{Http3Conn, Http3Event, Http3Limits};
use crate::net::keylog::Secrets;
use crate::net::message_budget::MessageBudget;
use crate::net::quic_conn::{QuicConnLimits, QuicConnReader, QuicEvent, QuicStatus};
use crate::net::tail_search::TailSearch;
use crate::net::tls_decrypt::{DecryptStatus, NotDecrypted};
use crate::timestamp::Timestamp;

/// Most connection-level anomalies held for the next exchange; more are dropped.
const MAX_HELD_ANOMALIES: usize = 16;

/// A QUIC connection being decrypted; see the module doc.
pub struct QuicFlow {
    reader: QuicConnReader,
    http3: Http3Conn,
    /// Buffers reused between datagrams.
    quic_events: Vec<QuicEvent>,
    h3_events: Vec<Http3Event>,
    requests_seen: u64,
    anomalies: Vec<Anomaly>,
    /// Connection-level anomalies found, kept or not (for the table's counters).
    anomalies_seen: u64,
}

impl std::fmt::Debug for QuicFlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuicFlow")
            .field("reader", &self.reader)
            .field("http3", &self.http3)
            .field("requests_seen", &self.requests_seen)
            .finish_non_exhaustive()
    }
}

impl QuicFlow {
    /// `version`, `original_dcid` and `client_scid` of the client's first Initial
    /// packet; `secrets` logged for its ClientHello's random; `budget`: the flow
    /// table's budget of message bytes.
    pub fn new(
        version: u32,
        original_dcid: &[u8],
        client_scid: &[u8],
        secrets: &Secrets,
        quic: QuicConnLimits,
        http3: Http3Limits,
        budget: &MessageBudget,
    ) -> Self {
        QuicFlow {
            reader: QuicConnReader::new(version, original_dcid, client_scid, secrets, quic)
                .with_budget(budget),
            http3: Http3Conn::new(http3).with_budget(budget),
            quic_events: Vec::new(),
            h3_events: Vec::new(),
            requests_seen: 0,
            anomalies: Vec::new(),
            anomalies_seen: 0,
        }
    }

    /// Searches request bodies past the HTTP/3 cap with `search` as they pass.
    pub fn with_tail_search(mut self, search: Option<TailSearch>) -> Self {
        self.http3 = self.http3.with_tail_search(search);
        self
    }

    /// One datagram of the flow, read at `ts` in capture frame `frame`; `info` is the
    /// flow's, its TLS status brought up to date before any exchange is handed out.
    pub fn push(
        &mut self,
        datagram: &[u8],
        from_client: bool,
        ts: Timestamp,
        frame: u64,
        info: &mut ConnInfo,
        out: &mut Vec<FlowEvent>,
    ) {
        let mut events = std::mem::take(&mut self.quic_events);
        self.reader.push(datagram, from_client, &mut events);
        let anomalies = self.reader.take_anomalies();
        self.hold(anomalies);
        self.settle(info, false);
        self.take_certificate(info);
        self.stream_events(&mut events, ts, frame, info, out);
        self.quic_events = events;
    }

    /// The flow ended: what the transport still holds, then every open request, and
    /// the metadata event when no request was read. Returns the number of
    /// connection-level anomalies found over the flow's life (those found after its
    /// last exchange went out are only counted, as for TCP connections).
    pub fn close(
        mut self,
        ts: Timestamp,
        frame: u64,
        info: &mut ConnInfo,
        out: &mut Vec<FlowEvent>,
    ) -> u64 {
        let mut events = std::mem::take(&mut self.quic_events);
        self.reader.flush(&mut events);
        let anomalies = self.reader.take_anomalies();
        self.hold(anomalies);
        self.settle(info, true);
        self.take_certificate(info);
        self.stream_events(&mut events, ts, frame, info, out);
        let mut h3 = std::mem::take(&mut self.h3_events);
        self.http3.close(&mut h3);
        self.exchanges(&mut h3, info, out);
        if self.requests_seen == 0 {
            out.push(FlowEvent::Metadata {
                conn: info.clone(),
                anomalies: std::mem::take(&mut self.anomalies),
                payload: Vec::new(),
            });
        }
        self.anomalies_seen
    }

    fn stream_events(
        &mut self,
        events: &mut Vec<QuicEvent>,
        ts: Timestamp,
        frame: u64,
        info: &ConnInfo,
        out: &mut Vec<FlowEvent>,
    ) {
        let mut h3 = std::mem::take(&mut self.h3_events);
        for event in events.drain(..) {
            self.http3.push(event, ts, frame, &mut h3);
        }
        self.exchanges(&mut h3, info, out);
        self.h3_events = h3;
    }

    fn exchanges(
        &mut self,
        events: &mut Vec<Http3Event>,
        info: &ConnInfo,
        out: &mut Vec<FlowEvent>,
    ) {
        for event in events.drain(..) {
            let (request, response) = match event {
                Http3Event::Exchange {
                    request, response, ..
                } => (request, response),
                // A client message on a WebSocket stream (RFC 9220): a request of
                // its own, as on an HTTP/1.1 WebSocket.
                Http3Event::WebSocket { request, .. } => (request, None),
                Http3Event::Anomaly(a) => {
                    self.hold(vec![a]);
                    continue;
                }
            };
            let index = self.requests_seen;
            self.requests_seen += 1;
            out.push(FlowEvent::Http {
                conn: info.clone(),
                index,
                request: Box::new(request),
                response: response.map(Box::new),
                anomalies: std::mem::take(&mut self.anomalies),
            });
        }
    }

    /// Anomalies of the flow found before decryption began, for its first exchange.
    pub fn hold_anomalies(&mut self, anomalies: Vec<Anomaly>) {
        self.hold(anomalies);
    }

    fn hold(&mut self, anomalies: Vec<Anomaly>) {
        self.anomalies_seen += anomalies.len() as u64;
        let room = MAX_HELD_ANOMALIES.saturating_sub(self.anomalies.len());
        self.anomalies.extend(anomalies.into_iter().take(room));
    }

    /// The server's certificate, once read from its Handshake packets, goes with the
    /// connection's TLS facts (and so with every exchange after it).
    fn take_certificate(&mut self, info: &mut ConnInfo) {
        if let (Some(cert), Some(tls)) = (self.reader.take_server_certificate(), info.tls.as_mut())
        {
            tls.server_certificate = Some(Arc::new(cert));
        }
    }

    /// The flow's TLS status as far as decryption has come (`closing`: for good).
    fn settle(&self, info: &mut ConnInfo, closing: bool) {
        if let Some(tls) = info.tls.as_mut() {
            tls.status = decrypt_status(self.reader.status(), closing);
        }
    }
}

/// A QUIC reader's status as the TLS status exchanges report.
fn decrypt_status(status: QuicStatus, closing: bool) -> DecryptStatus {
    match status {
        QuicStatus::Decrypting => DecryptStatus::Decrypted,
        QuicStatus::NoKey => DecryptStatus::NotDecrypted(NotDecrypted::NoKey),
        QuicStatus::UnsupportedSuite(s) => {
            DecryptStatus::NotDecrypted(NotDecrypted::UnsupportedSuite(s))
        }
        QuicStatus::AuthenticationFailed => {
            DecryptStatus::NotDecrypted(NotDecrypted::AuthenticationFailed)
        }
        QuicStatus::UnsupportedVersion(_) => DecryptStatus::NotDecrypted(NotDecrypted::QuicPayload),
        // No packet after the handshake is in the capture.
        QuicStatus::Pending if closing => DecryptStatus::NotDecrypted(NotDecrypted::LostSync),
        QuicStatus::Pending => DecryptStatus::Pending,
    }
}
