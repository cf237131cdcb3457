//! The proxy as its clients' DNS resolver (`consentry proxy --dns-listen`, as
//! mitmproxy's DNS mode): queries arrive over UDP, or TCP on the same port — from a
//! phone whose DNS server the proxy's machine is, or redirected to it by the gateway
//! (iptables `REDIRECT` of port 53) — and each is relayed to one upstream resolver
//! (over the transport it came by), its answer relayed back.
//! Two things come of it, as of a capture's DNS traffic in the tap:
//! - a name asked for that carries personal data becomes a `dns` exchange of its own,
//!   named by the name (a name reaches the name servers of its domain, whichever
//!   resolver carried it), judged like any other exchange;
//! - the answers name the connections the client then makes to those addresses
//!   ([`Shared::connection_name`]): a tunnel to an address in a protocol the proxy
//!   does not read (a push SDK's own) is named by the name the app asked for, so a
//!   tracker is still told by name.
//!
//! The answers' Encrypted Client Hello configs are switched off on the way
//! ([`super::dns_ech`]) unless `--dns-keep-ech`: the proxy needs the real server name.
//!
//! Only the clients the proxy admits without credentials are answered (loopback; the
//! case's device addresses with `--allow-case-addresses`): DNS carries none, and an
//! open resolver would serve anyone's amplification attack. Others get `REFUSED`
//! over UDP; over TCP their connections are closed at once.
//!
//! Hostile input: a message is at most [`MAX_DATAGRAM`] bytes (over TCP, its length
//! prefix says so) and is parsed by [`crate::net::dns::parse`] (bounded); at most
//! [`MAX_PENDING`] UDP queries wait for the upstream at once (more are dropped: a
//! client asks again), each for at most [`UPSTREAM_TIMEOUT`] (then `SERVFAIL`); at
//! most [`MAX_TCP_CLIENTS`] TCP clients are served, each closed after [`TCP_IDLE`]
//! of silence with no query waiting, each with at most [`TCP_QUERIES_AT_ONCE`] of
//! its pipelined queries relayed at once (answered as their answers come, in any
//! order, as RFC 7766 §6.2.1.1 lets a server; the next ones are read as those are
//! answered). Each query goes upstream from a socket of its own (a fresh source
//! port) with a fresh random id, and only a response with that id and the same
//! questions is taken as its answer, so a spoofed datagram must guess both.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;

use super::reply_socket::{Received, ReplySocket};
use super::{Event, Shared};
use crate::exchange::{Exchange, RawHead, SourceKind};
use crate::net::dns::{self, DnsMessage};
use crate::net::tap::{DataProbe, MAX_DOH_NAMES};
use crate::timestamp::Timestamp;

/// Largest UDP payload read (the IP limit; EDNS answers can be large).
pub const MAX_DATAGRAM: usize = 65_535;
/// Queries waiting for the upstream resolver at once, at most (each holds a socket
/// and a [`MAX_DATAGRAM`] buffer).
pub const MAX_PENDING: usize = 128;
/// How long a query waits for the upstream resolver before the client gets
/// `SERVFAIL` (stub resolvers retry after about as long).
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(5);
/// Length of a DNS message header.
const HEADER: usize = 12;
/// TCP clients served at once, at most; more are closed at once.
pub const MAX_TCP_CLIENTS: usize = 64;
/// How long a TCP client may stay silent, between or within its queries, with none
/// waiting for its answer, before it is closed (RFC 7766 §6.2.3 asks for seconds,
/// not minutes).
pub const TCP_IDLE: Duration = Duration::from_secs(10);
/// Queries of one TCP client relayed at once: a slow answer does not hold the
/// client's other queries back (64 clients, 256 upstream queries at most).
pub const TCP_QUERIES_AT_ONCE: usize = 4;

/// How a query came to the relay, and so how it goes upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Udp,
    Tcp,
}

/// Response codes the relay answers itself with (RFC 1035 §4.1.1).
pub const FORMERR: u8 = 1;
pub const SERVFAIL: u8 = 2;
pub const NOTIMP: u8 = 4;
pub const REFUSED: u8 = 5;

/// What the relay does with a datagram a client sent it.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A standard query: relayed upstream.
    Relay(DnsMessage),
    /// Answered by the relay itself with this response code.
    Answer(u8),
    /// Not answered: too short to carry an id, or a response (answering a response
    /// could start a loop between two resolvers).
    Drop,
}

/// Decides about `datagram` from a client the proxy admits (`admitted`) or not.
pub fn judge_query(datagram: &[u8], admitted: bool) -> Verdict {
    if datagram.len() < HEADER {
        return Verdict::Drop;
    }
    if datagram.get(2).is_some_and(|flags| flags & 0x80 != 0) {
        return Verdict::Drop;
    }
    if !admitted {
        return Verdict::Answer(REFUSED);
    }
    match dns::parse(datagram) {
        Err(_) => Verdict::Answer(FORMERR),
        Ok(m) if m.opcode != 0 => Verdict::Answer(NOTIMP),
        Ok(m) if m.questions.is_empty() => Verdict::Answer(FORMERR),
        Ok(m) => Verdict::Relay(m),
    }
}

/// `msg` with its id replaced by `id` (`msg` is at least a header long).
pub fn with_id(msg: &[u8], id: u16) -> Vec<u8> {
    let mut out = msg.to_vec();
    if let Some(head) = out.get_mut(..2) {
        head.copy_from_slice(&id.to_be_bytes());
    }
    out
}

/// The answer to `query` with response code `rcode` and nothing else: its id, opcode
/// and RD bit, and its question section when that can be delimited (else none).
/// `None` for a datagram shorter than a header.
pub fn error_reply(query: &[u8], rcode: u8) -> Option<Vec<u8>> {
    let head = query.get(..HEADER)?;
    let qdcount = u16::from_be_bytes([head[4], head[5]]);
    let questions = question_section_end(query, qdcount)
        .and_then(|end| query.get(HEADER..end))
        .unwrap_or_default();
    let mut out = Vec::with_capacity(HEADER + questions.len());
    out.extend_from_slice(&head[..2]);
    // QR, the query's opcode and RD; RA (the relay recurses).
    out.push(0x80 | (head[2] & 0x79));
    out.push(0x80 | (rcode & 0x0f));
    let qd = if questions.is_empty() { 0 } else { qdcount };
    out.extend_from_slice(&qd.to_be_bytes());
    out.extend_from_slice(&[0; 6]);
    out.extend_from_slice(questions);
    Some(out)
}

/// Where the `count` questions after the header end, or `None` when they run past
/// the message or a name is malformed. A compression pointer ends a name (two bytes).
fn question_section_end(msg: &[u8], count: u16) -> Option<usize> {
    let mut pos = HEADER;
    for _ in 0..count {
        // Type and class.
        pos = super::dns_ech::skip_name(msg, pos)? + 4;
    }
    (pos <= msg.len()).then_some(pos)
}

/// `reply`, parsed, when it answers the query sent upstream with id `id`: a response
/// with that id and the same questions (names compared as [`dns::parse`] writes
/// them, lower case, so a resolver's 0x20 case randomisation passes).
pub fn reply_to(reply: &[u8], id: u16, query: &DnsMessage) -> Option<DnsMessage> {
    let msg = dns::parse(reply).ok()?;
    (msg.response && msg.id == id && msg.questions == query.questions).then_some(msg)
}

/// The first `nameserver` of a resolv.conf text whose address can be used (a
/// link-local IPv6 address with a zone cannot be written as a socket address here).
pub fn first_nameserver(resolv_conf: &str) -> Option<IpAddr> {
    resolv_conf.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some("nameserver"))
            .then(|| words.next()?.parse().ok())
            .flatten()
    })
}

/// `text` as the upstream resolver's address: `ADDR:PORT`, or an address (port 53).
pub fn parse_upstream(text: &str) -> Option<SocketAddr> {
    text.parse::<SocketAddr>()
        .ok()
        .or_else(|| Some(SocketAddr::new(text.parse().ok()?, 53)))
}

/// The relay's settings and state.
pub struct DnsRelay {
    shared: Arc<Shared>,
    upstream: SocketAddr,
    /// Which names become exchanges of their own; `None`: none do (the answers still
    /// name connections).
    probe: Option<DataProbe>,
    /// How long a query waits for the upstream's answer ([`UPSTREAM_TIMEOUT`]).
    timeout: Duration,
    /// UDP queries waiting for the upstream ([`MAX_PENDING`] permits).
    pending: Arc<Semaphore>,
    /// Switch off the ECH configs of the answers passed on ([`super::dns_ech`]).
    disable_ech: bool,
}

impl DnsRelay {
    pub fn new(shared: Arc<Shared>, upstream: SocketAddr, probe: Option<DataProbe>) -> DnsRelay {
        DnsRelay {
            shared,
            upstream,
            probe,
            timeout: UPSTREAM_TIMEOUT,
            pending: Arc::new(Semaphore::new(MAX_PENDING)),
            disable_ech: true,
        }
    }

    /// The same relay passing the answers' ECH configs on as they are
    /// (`--dns-keep-ech`).
    pub fn keeping_ech(mut self) -> DnsRelay {
        self.disable_ech = false;
        self
    }

    /// The same relay waiting `timeout` for each upstream answer.
    pub fn with_timeout(mut self, timeout: Duration) -> DnsRelay {
        self.timeout = timeout;
        self
    }

    /// Whether `client` is answered: as the proxy admits clients without credentials
    /// (transparent mode's rule), loopback always.
    fn admits(&self, client: IpAddr) -> bool {
        let settings = &self.shared.settings;
        client.is_loopback()
            || (settings.allow_case_addresses
                && self.shared.devices.resolve(client, None).is_some())
    }

    /// One of `slots`, or `None` (counted as dropped) when all are taken.
    fn room_in(&self, slots: &Arc<Semaphore>) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let permit = slots.clone().try_acquire_owned().ok();
        if permit.is_none() {
            self.shared
                .counters
                .dns_dropped
                .fetch_add(1, Ordering::Relaxed);
        }
        permit
    }

    /// Counts a query or connection of `client` refused, and says so the first time.
    fn refused(&self, client: IpAddr) {
        if self
            .shared
            .counters
            .dns_refused
            .fetch_add(1, Ordering::Relaxed)
            == 0
        {
            self.shared.emit(Event::Notice(format!(
                "DNS queries from {client} are refused: not a case device's address (see GET /status, dns_refused, for how many)"
            )));
        }
    }

    /// Answers one datagram from `client`, sent to `asked` (when known) and
    /// received at `at`; the answer leaves from `asked`.
    async fn handle(
        self: Arc<Self>,
        socket: Arc<ReplySocket>,
        datagram: Vec<u8>,
        (client, asked): (SocketAddr, Option<IpAddr>),
        at: Timestamp,
    ) {
        let Some((reply, relayed)) = self.answer(&datagram, client, Transport::Udp).await else {
            return;
        };
        let _ = socket.send(&reply, client, asked).await;
        if let Some(query) = relayed {
            self.record(&query, &datagram, client, at).await;
        }
    }

    /// The answer to one message from `client` that came over `transport`, and the
    /// query when it was relayed (to be recorded once the answer is out); `None`
    /// when it is not answered.
    async fn answer(
        &self,
        message: &[u8],
        client: SocketAddr,
        transport: Transport,
    ) -> Option<(Vec<u8>, Option<DnsMessage>)> {
        let counters = &self.shared.counters;
        let query = match judge_query(message, self.admits(client.ip())) {
            Verdict::Relay(q) => q,
            Verdict::Answer(rcode) => {
                if rcode == REFUSED {
                    self.refused(client.ip());
                } else {
                    counters.dns_malformed.fetch_add(1, Ordering::Relaxed);
                }
                return Some((error_reply(message, rcode)?, None));
            }
            Verdict::Drop => {
                counters.dns_malformed.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        };
        counters.dns_queries.fetch_add(1, Ordering::Relaxed);
        let answered = match transport {
            Transport::Udp => self.ask_upstream(message, &query).await,
            Transport::Tcp => self.ask_upstream_over_tcp(message, &query).await,
        };
        let reply = match answered {
            Some((bytes, answer)) => {
                self.shared.learn_answers(&answer, Timestamp::now());
                let mut reply = with_id(&bytes, query.id);
                if self.disable_ech {
                    let disabled = super::dns_ech::disable_ech(&mut reply);
                    counters
                        .dns_ech_disabled
                        .fetch_add(disabled as u64, Ordering::Relaxed);
                }
                reply
            }
            None => {
                counters.dns_unanswered.fetch_add(1, Ordering::Relaxed);
                error_reply(message, SERVFAIL)?
            }
        };
        Some((reply, Some(query)))
    }

    /// Answers the queries of one TCP client until it closes or stays idle for
    /// [`TCP_IDLE`] with no answer due: at most [`TCP_QUERIES_AT_ONCE`] relayed at
    /// once, each answer written when it comes; a message that is no DNS query is
    /// dropped, the connection kept. Answers still due when the client stops
    /// sending are written before the connection is closed.
    async fn serve_connection(self: Arc<Self>, stream: TcpStream, client: SocketAddr) {
        let (mut reader, writer) = stream.into_split();
        let writer = Arc::new(tokio::sync::Mutex::new(writer));
        let mut waiting = tokio::task::JoinSet::new();
        // Bytes read and not yet framed: at most one message in part and one read
        // more, as complete ones are taken out before more is read.
        let mut read = Vec::new();
        let mut chunk = vec![0u8; 16 << 10];
        loop {
            while waiting.len() < TCP_QUERIES_AT_ONCE {
                let Some(message) = next_message(&mut read) else {
                    break;
                };
                let (relay, writer) = (self.clone(), writer.clone());
                let at = Timestamp::now();
                waiting.spawn(relay.answer_over_tcp(message, client, at, writer));
            }
            let room = waiting.len() < TCP_QUERIES_AT_ONCE;
            tokio::select! {
                Some(done) = waiting.join_next(), if !waiting.is_empty() => {
                    if !matches!(done, Ok(true)) {
                        break;
                    }
                }
                got = tokio::time::timeout(TCP_IDLE, reader.read(&mut chunk)), if room => {
                    match got {
                        Ok(Ok(n)) if n > 0 => read.extend_from_slice(chunk.get(..n).unwrap_or_default()),
                        // Closed, failed, or silent with nothing due.
                        Ok(_) => break,
                        Err(_) if waiting.is_empty() => break,
                        Err(_) => {}
                    }
                }
            }
        }
        while waiting.join_next().await.is_some() {}
    }

    /// Answers one `message` a TCP client sent at `at` through `writer`, then records
    /// it; false when the connection can take no more (the write failed).
    async fn answer_over_tcp(
        self: Arc<Self>,
        message: Vec<u8>,
        client: SocketAddr,
        at: Timestamp,
        writer: Arc<tokio::sync::Mutex<tokio::net::tcp::OwnedWriteHalf>>,
    ) -> bool {
        let Some((reply, relayed)) = self.answer(&message, client, Transport::Tcp).await else {
            return true;
        };
        let Ok(len) = u16::try_from(reply.len()) else {
            return false;
        };
        let framed = [&len.to_be_bytes()[..], &reply].concat();
        if writer.lock().await.write_all(&framed).await.is_err() {
            return false;
        }
        if let Some(query) = relayed {
            self.record(&query, &message, client, at).await;
        }
        true
    }

    /// [`DnsRelay::ask_upstream`] over TCP (RFC 7766), for a query that came over TCP:
    /// its answer may be too large for UDP.
    async fn ask_upstream_over_tcp(
        &self,
        message: &[u8],
        query: &DnsMessage,
    ) -> Option<(Vec<u8>, DnsMessage)> {
        let id = random_id()?;
        let out = with_id(message, id);
        let len = u16::try_from(out.len()).ok()?;
        let exchange = async {
            let mut stream = TcpStream::connect(self.upstream).await.ok()?;
            stream
                .write_all(&[&len.to_be_bytes()[..], &out].concat())
                .await
                .ok()?;
            loop {
                let len = stream.read_u16().await.ok()?;
                let mut bytes = vec![0u8; usize::from(len)];
                stream.read_exact(&mut bytes).await.ok()?;
                if let Some(msg) = reply_to(&bytes, id, query) {
                    return Some((bytes, msg));
                }
            }
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .ok()
            .flatten()
    }

    /// The upstream resolver's answer to `datagram` (parsed as `query`): its bytes and
    /// the parsed message; `None` when none came in time or it cannot be reached.
    async fn ask_upstream(
        &self,
        datagram: &[u8],
        query: &DnsMessage,
    ) -> Option<(Vec<u8>, DnsMessage)> {
        let local: SocketAddr = match self.upstream {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = UdpSocket::bind(local).await.ok()?;
        socket.connect(self.upstream).await.ok()?;
        let id = random_id()?;
        socket.send(&with_id(datagram, id)).await.ok()?;
        // Not zeroed: `recv_buf` fills the spare capacity (a zeroed 64 KiB per query
        // was a tenth of the relay's CPU).
        let mut buf = Vec::with_capacity(MAX_DATAGRAM);
        let answer = async {
            loop {
                buf.clear();
                // An error (ICMP port unreachable: nothing listens) ends the wait.
                socket.recv_buf(&mut buf).await.ok()?;
                if let Some(msg) = reply_to(&buf, id, query) {
                    return Some((std::mem::take(&mut buf), msg));
                }
            }
        };
        tokio::time::timeout(self.timeout, answer)
            .await
            .ok()
            .flatten()
    }

    /// The names of `query` (the message `raw`) that carry personal data, each a
    /// `dns` exchange of `client`'s device sent at `at` to the upstream resolver,
    /// with the message as the client sent it as its evidence (its request head,
    /// base64): there is no capture to point to.
    async fn record(&self, query: &DnsMessage, raw: &[u8], client: SocketAddr, at: Timestamp) {
        let Some(probe) = &self.probe else {
            return;
        };
        let flagged: Vec<&str> = query
            .questions
            .iter()
            .take(MAX_DOH_NAMES as usize)
            .map(|q| q.name.as_str())
            .filter(|name| !name.is_empty() && (probe.0)(name.as_bytes()))
            .collect();
        if flagged.is_empty() {
            return;
        }
        let shared = &self.shared;
        shared.room().await;
        let device = shared.device_of(client, None);
        for name in flagged {
            let (n, id) = shared.next_id();
            let mut x = Exchange::blank(id, SourceKind::Proxy, at);
            x.evidence.locator = super::locator(&shared.session, n);
            x.evidence.request_head = Some(RawHead::binary(raw));
            x.client = Some(crate::net::text::socket_string(client));
            x.server = Some(crate::net::text::socket_string(self.upstream));
            x.device = Some(device.clone());
            x.host = name.to_string();
            x.scheme = "dns".into();
            x.metadata_only = true;
            x.request_body = name.as_bytes().to_vec();
            shared.counters.exchanges.fetch_add(1, Ordering::Relaxed);
            shared.emit_exchange(x);
        }
    }
}

/// A random query id for the upstream (the system's generator).
fn random_id() -> Option<u16> {
    let mut b = [0u8; 2];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).ok()?;
    Some(u16::from_be_bytes(b))
}

/// Answers the queries arriving on `socket` until `stop` completes.
pub async fn serve(
    relay: Arc<DnsRelay>,
    socket: ReplySocket,
    stop: impl std::future::Future<Output = ()>,
) {
    let socket = Arc::new(socket);
    tokio::pin!(stop);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let received = tokio::select! {
            r = socket.recv(&mut buf) => r,
            () = &mut stop => return,
        };
        let Received { len, from, to } = match received {
            Ok(r) => r,
            Err(_) => {
                // Transient (a client's ICMP error, memory pressure): not a reason to
                // stop answering the others, nor to spin.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let at = Timestamp::now();
        let Some(permit) = relay.room_in(&relay.pending) else {
            continue;
        };
        let datagram = buf.get(..len).unwrap_or_default().to_vec();
        let (relay, socket) = (relay.clone(), socket.clone());
        tokio::spawn(async move {
            relay.handle(socket, datagram, (from, to), at).await;
            drop(permit);
        });
    }
}

/// The first message framed in `read` (RFC 1035 §4.2.2: after its length in two
/// bytes), taken out of it; `None` until one is whole.
fn next_message(read: &mut Vec<u8>) -> Option<Vec<u8>> {
    let len = usize::from(u16::from_be_bytes([*read.first()?, *read.get(1)?]));
    let message = read.get(2..2 + len)?.to_vec();
    read.drain(..2 + len);
    Some(message)
}

/// Answers the queries of TCP clients accepted on `listener` until `stop`
/// completes (a client retries over TCP when a UDP answer was truncated).
pub async fn serve_tcp(
    relay: Arc<DnsRelay>,
    listener: TcpListener,
    stop: impl std::future::Future<Output = ()>,
) {
    let clients = Arc::new(Semaphore::new(MAX_TCP_CLIENTS));
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = &mut stop => return,
        };
        let Ok((stream, client)) = accepted else {
            // Out of descriptors, a client gone before its accept: go on, not spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        // Refused at once, not per query: a client the relay does not answer must
        // not hold one of the connections either.
        if !relay.admits(client.ip()) {
            relay.refused(client.ip());
            continue;
        }
        let Some(permit) = relay.room_in(&clients) else {
            continue;
        };
        let relay = relay.clone();
        tokio::spawn(async move {
            relay.serve_connection(stream, client).await;
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query (id 0x1234, RD) for `names`, type A, class IN.
    fn query(names: &[&str]) -> Vec<u8> {
        dns::test_query(0x1234, names)
    }

    /// The answer to `q` (its id replaced by `id`) giving `addr` to its first name.
    fn answer(q: &[u8], id: u16, addr: [u8; 4]) -> Vec<u8> {
        let mut a = with_id(q, id);
        a[2] |= 0x80;
        a[3] = 0x80;
        a[7] = 1;
        a.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        a.extend_from_slice(&addr);
        a
    }

    #[test]
    fn admitted_queries_are_relayed_and_others_answered_or_dropped() {
        let q = query(&["app.example"]);
        match judge_query(&q, true) {
            Verdict::Relay(m) => assert_eq!(m.questions[0].name, "app.example"),
            v => panic!("{v:?}"),
        }
        assert_eq!(judge_query(&q, false), Verdict::Answer(REFUSED));
        // Too short for an id; a response (never answered, even unadmitted).
        assert_eq!(judge_query(&q[..11], true), Verdict::Drop);
        assert_eq!(
            judge_query(&answer(&q, 7, [1, 2, 3, 4]), false),
            Verdict::Drop
        );
        // Malformed, no question, not a standard query.
        assert_eq!(judge_query(&q[..20], true), Verdict::Answer(FORMERR));
        assert_eq!(judge_query(&query(&[]), true), Verdict::Answer(FORMERR));
        let mut notify = q.clone();
        notify[2] = 4 << 3;
        assert_eq!(judge_query(&notify, true), Verdict::Answer(NOTIMP));
    }

    #[test]
    fn an_error_reply_keeps_the_id_opcode_rd_and_question() {
        let q = query(&["a.example", "b.example"]);
        let r = error_reply(&q, REFUSED).unwrap();
        assert_eq!(&r[..2], &[0x12, 0x34]);
        // QR, RD, RA, REFUSED.
        assert_eq!((r[2], r[3]), (0x81, 0x85));
        assert_eq!(&r[4..6], &[0, 2]);
        assert_eq!(&r[6..12], &[0; 6]);
        assert_eq!(&r[12..], &q[12..]);
        let parsed = dns::parse(&r).unwrap();
        assert_eq!((parsed.response, parsed.rcode), (true, REFUSED));
        assert_eq!(parsed.questions.len(), 2);
        // A question section that runs past the end is left out, the rest answered.
        let cut = error_reply(&q[..20], FORMERR).unwrap();
        assert_eq!((cut.len(), &cut[4..6]), (12, &[0u8, 0][..]));
        // A compression pointer ends a name.
        let mut pointed = q[..12].to_vec();
        pointed[5] = 1;
        pointed.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        assert_eq!(
            error_reply(&pointed, SERVFAIL).unwrap()[12..],
            pointed[12..]
        );
        // A label type that does not exist, and a header cut short.
        let mut bad = q[..12].to_vec();
        bad[5] = 1;
        bad.extend_from_slice(&[0x80, 0, 0, 1, 0, 1]);
        assert_eq!(error_reply(&bad, FORMERR).unwrap().len(), 12);
        assert_eq!(error_reply(&q[..11], FORMERR), None);
    }

    #[test]
    fn only_the_answer_with_our_id_and_questions_is_taken() {
        let q = query(&["app.example"]);
        let parsed = dns::parse(&q).unwrap();
        let good = answer(&q, 0xbeef, [192, 0, 2, 1]);
        let m = reply_to(&good, 0xbeef, &parsed).unwrap();
        assert_eq!(m.answers.len(), 1);
        assert_eq!(reply_to(&good, 0xbeee, &parsed), None);
        // Not a response; another name; 0x20 case randomisation is fine.
        assert_eq!(reply_to(&with_id(&q, 0xbeef), 0xbeef, &parsed), None);
        let other = answer(&query(&["app.example.com"]), 0xbeef, [192, 0, 2, 1]);
        assert_eq!(reply_to(&other, 0xbeef, &parsed), None);
        let upper = answer(&query(&["ApP.eXample"]), 0xbeef, [192, 0, 2, 1]);
        assert!(reply_to(&upper, 0xbeef, &parsed).is_some());
        assert_eq!(reply_to(&good[..30], 0xbeef, &parsed), None);
    }

    /// The run's state over a case whose device `pixel7` is 192.0.2.7, events to the
    /// returned receiver.
    fn shared(
        allow_case_addresses: bool,
    ) -> (Arc<Shared>, super::super::EventReceiver, tempfile::TempDir) {
        let case = crate::case::parse(
            "[case]\nid = \"t\"\n[app]\nname = \"a\"\n[[device]]\nid = \"pixel7\"\naddresses = [\"192.0.2.7\"]\n",
            "t.toml",
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca = super::super::ca::Ca::load_or_create(&dir.path().join("ca")).unwrap();
        let (tx, rx) = super::super::events();
        let settings = super::super::Settings {
            allow_case_addresses,
            ..super::super::Settings::default()
        };
        (Shared::new(&case, settings, &ca, tx, "t".into()), rx, dir)
    }

    /// Flags names with a digit in them.
    fn digits() -> DataProbe {
        DataProbe(Arc::new(|b: &[u8]| b.iter().any(u8::is_ascii_digit)))
    }

    #[test]
    fn loopback_and_with_allow_case_addresses_the_case_devices_are_answered() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let upstream = "127.0.0.1:53".parse().unwrap();
        let (open, _rx, _dir) = shared(true);
        let relay = DnsRelay::new(open, upstream, None);
        assert!(relay.admits(ip("127.0.0.1")) && relay.admits(ip("::1")));
        assert!(relay.admits(ip("192.0.2.7")) && !relay.admits(ip("192.0.2.8")));
        let (closed, _rx, _dir) = shared(false);
        let relay = DnsRelay::new(closed, upstream, None);
        assert!(relay.admits(ip("127.0.0.1")) && !relay.admits(ip("192.0.2.7")));
    }

    /// A resolver on loopback that first sends a datagram with another id (a spoofer's
    /// guess), then answers every query with 192.0.2.99; `answer: false`: says nothing.
    fn fake_upstream(answer: bool) -> SocketAddr {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = socket.recv_from(&mut buf) {
                if !answer {
                    continue;
                }
                let q = &buf[..n];
                let id = u16::from_be_bytes([q[0], q[1]]);
                let _ = socket.send_to(&super::tests::answer(q, id ^ 1, [203, 0, 113, 1]), from);
                let _ = socket.send_to(&super::tests::answer(q, id, [192, 0, 2, 99]), from);
            }
        });
        addr
    }

    /// A runtime whose tasks run while the test waits on plain sockets.
    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    }

    /// Sends `query` to the relay at `relay` and returns its answer.
    fn ask(relay: SocketAddr, query: &[u8]) -> DnsMessage {
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        client.send_to(query, relay).unwrap();
        let mut buf = [0u8; 512];
        let n = client.recv(&mut buf).expect("the relay's answer");
        dns::parse(&buf[..n]).unwrap()
    }

    #[test]
    fn a_query_is_relayed_its_flagged_name_recorded_and_its_answer_names_the_address() {
        let rt = runtime();
        let (shared, rx, _dir) = shared(false);
        let upstream = fake_upstream(true);
        let relay = DnsRelay::new(shared.clone(), upstream, Some(digits()));
        let socket = rt.block_on(UdpSocket::bind("127.0.0.1:0")).unwrap();
        let socket = ReplySocket::new(socket).unwrap();
        let at = socket.local_addr().unwrap();
        rt.spawn(serve(Arc::new(relay), socket, std::future::pending()));
        let name = "0eaed834.t.sdk.example";
        let reply = ask(at, &query(&["app.example", name]));
        // The client's id, the upstream's answer (not the spoofed one).
        assert_eq!((reply.id, reply.response, reply.rcode), (0x1234, true, 0));
        assert_eq!(
            reply.answers[0].data,
            dns::RecordData::A([192, 0, 2, 99].into())
        );
        assert_eq!(shared.counters.dns_queries.load(Ordering::Relaxed), 1);
        // The flagged name only, as an exchange of its own.
        let x = match rx.recv_timeout(Duration::from_secs(10)).unwrap() {
            Event::Exchange(done) => done.x,
            e => panic!("{e:?}"),
        };
        assert_eq!(
            (x.host.as_str(), x.scheme.as_str(), x.metadata_only),
            (name, "dns", true)
        );
        assert_eq!(x.request_body, name.as_bytes());
        assert_eq!(x.server, Some(upstream.to_string()));
        assert!(x
            .client
            .as_deref()
            .is_some_and(|c| c.starts_with("127.0.0.1:")));
        assert!(x.evidence.locator.starts_with("proxy t record "));
        // The query as the client sent it, its evidence.
        let sent = query(&["app.example", name]);
        assert_eq!(x.evidence.request_head, Some(RawHead::binary(&sent)));
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
        // The answer names a connection to the address; others stay addresses.
        let now = Timestamp::now();
        assert_eq!(shared.connection_name("192.0.2.99", now), "app.example");
        assert_eq!(shared.connection_name("[192.0.2.98]", now), "192.0.2.98");
        assert_eq!(shared.connection_name("Shop.Example.", now), "shop.example");
    }

    #[test]
    fn a_silent_upstream_gets_the_client_servfail() {
        let rt = runtime();
        let (shared, _rx, _dir) = shared(false);
        let relay = DnsRelay::new(shared.clone(), fake_upstream(false), None)
            .with_timeout(Duration::from_millis(200));
        let socket = rt.block_on(UdpSocket::bind("127.0.0.1:0")).unwrap();
        let socket = ReplySocket::new(socket).unwrap();
        let at = socket.local_addr().unwrap();
        rt.spawn(serve(Arc::new(relay), socket, std::future::pending()));
        let reply = ask(at, &query(&["app.example"]));
        assert_eq!((reply.id, reply.rcode), (0x1234, SERVFAIL));
        assert_eq!(reply.questions[0].name, "app.example");
        assert_eq!(shared.counters.dns_unanswered.load(Ordering::Relaxed), 1);
    }

    /// A resolver on loopback answering every query with an HTTPS record for
    /// `shop.example` that carries one ECH config.
    fn ech_upstream() -> SocketAddr {
        use super::super::dns_ech::tests::{ech_config, https_answer};
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while let Ok((_, from)) = socket.recv_from(&mut buf) {
                let answer = https_answer("shop.example", &[ech_config(1, "cover.example")]);
                let _ = socket.send_to(
                    &with_id(&answer, u16::from_be_bytes([buf[0], buf[1]])),
                    from,
                );
            }
        });
        addr
    }

    #[test]
    fn the_answers_ech_configs_are_switched_off_unless_kept() {
        let rt = runtime();
        let mut https = query(&["shop.example"]);
        let qtype = https.len() - 4;
        https[qtype..qtype + 2].copy_from_slice(&dns::TYPE_HTTPS.to_be_bytes());
        for keep in [false, true] {
            let (shared, _rx, _dir) = shared(false);
            let mut relay = DnsRelay::new(shared.clone(), ech_upstream(), None);
            if keep {
                relay = relay.keeping_ech();
            }
            let socket = rt.block_on(UdpSocket::bind("127.0.0.1:0")).unwrap();
            let socket = ReplySocket::new(socket).unwrap();
            let at = socket.local_addr().unwrap();
            rt.spawn(serve(Arc::new(relay), socket, std::future::pending()));
            let reply = ask(at, &https);
            assert_eq!((reply.id, reply.rcode), (0x1234, 0));
            let dns::RecordData::Svcb(svcb) = &reply.answers[0].data else {
                panic!("{reply:?}");
            };
            assert_eq!(svcb.ech.len(), usize::from(keep), "keep: {keep}");
            let disabled = shared.counters.dns_ech_disabled.load(Ordering::Relaxed);
            assert_eq!(disabled, u64::from(!keep));
        }
    }

    /// A resolver on loopback over TCP answering each query, on each connection,
    /// with 192.0.2.99; a name that starts with `slow` half a second late.
    fn fake_tcp_upstream() -> SocketAddr {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().map_while(Result::ok) {
                std::thread::spawn(move || {
                    let mut len = [0u8; 2];
                    while stream.read_exact(&mut len).is_ok() {
                        let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
                        stream.read_exact(&mut q).unwrap();
                        if dns::parse(&q).unwrap().questions[0]
                            .name
                            .starts_with("slow")
                        {
                            std::thread::sleep(Duration::from_millis(500));
                        }
                        let id = u16::from_be_bytes([q[0], q[1]]);
                        let a = answer(&q, id, [192, 0, 2, 99]);
                        let framed = [&(a.len() as u16).to_be_bytes()[..], &a].concat();
                        let _ = stream.write_all(&framed);
                    }
                });
            }
        });
        addr
    }

    /// `relay` serving TCP clients on a loopback port, on `rt`: the port.
    fn serving_tcp(rt: &tokio::runtime::Runtime, relay: DnsRelay) -> SocketAddr {
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let at = listener.local_addr().unwrap();
        rt.spawn(serve_tcp(Arc::new(relay), listener, std::future::pending()));
        at
    }

    /// A TCP client of the relay at `at` (reads give up after 10 s).
    fn tcp_client(at: SocketAddr) -> std::net::TcpStream {
        let client = std::net::TcpStream::connect(at).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        client
    }

    /// One answer a TCP client reads after its length.
    fn read_framed(client: &mut std::net::TcpStream) -> DnsMessage {
        use std::io::Read;
        let mut len = [0u8; 2];
        client.read_exact(&mut len).unwrap();
        let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
        client.read_exact(&mut reply).unwrap();
        dns::parse(&reply).unwrap()
    }

    #[test]
    fn pipelined_queries_over_tcp_are_answered_as_their_answers_come() {
        use std::io::Write;
        let rt = runtime();
        let (shared, _rx, _dir) = shared(false);
        let relay = DnsRelay::new(shared.clone(), fake_tcp_upstream(), None);
        let at = serving_tcp(&rt, relay);
        let mut client = tcp_client(at);
        // A slow name first, then more than the relay takes at once, in one write.
        let names = [
            "slow.example",
            "a.example",
            "b.example",
            "c.example",
            "d.example",
        ];
        let mut out = Vec::new();
        for (id, n) in (1u16..).zip(names) {
            let q = with_id(&query(&[n]), id);
            out.extend_from_slice(&(q.len() as u16).to_be_bytes());
            out.extend(q);
        }
        client.write_all(&out).unwrap();
        // The fast ones first (the fifth read once one of the first four is
        // answered), the slow one last; then the client may go.
        let ids: Vec<u16> = (0..names.len())
            .map(|_| read_framed(&mut client).id)
            .collect();
        assert_eq!(ids.last(), Some(&1), "{ids:?}");
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [1, 2, 3, 4, 5]);
        assert_eq!(shared.counters.dns_queries.load(Ordering::Relaxed), 5);
        // A client that sends its query and closes its side still gets its answer.
        let mut client = tcp_client(at);
        let q = with_id(&query(&["slow.again.example"]), 9);
        client
            .write_all(&[&(q.len() as u16).to_be_bytes()[..], &q].concat())
            .unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(read_framed(&mut client).id, 9);
    }

    #[test]
    fn queries_over_tcp_are_answered_through_the_upstream_over_tcp() {
        use std::io::{Read, Write};
        let rt = runtime();
        let (shared, rx, _dir) = shared(false);
        let relay = DnsRelay::new(shared.clone(), fake_tcp_upstream(), Some(digits()));
        let mut client = tcp_client(serving_tcp(&rt, relay));
        // Two queries at once (pipelined), then a message that is no query.
        let name = "0eaed834.t.sdk.example";
        let mut out = Vec::new();
        for (id, n) in [(1u16, "app.example"), (2, name)] {
            let q = with_id(&query(&[n]), id);
            out.extend_from_slice(&(q.len() as u16).to_be_bytes());
            out.extend(q);
        }
        out.extend_from_slice(&[0, 5, 1, 2, 3, 4, 5]);
        client.write_all(&out).unwrap();
        let mut ids = Vec::new();
        for _ in 0..2 {
            let reply = read_framed(&mut client);
            assert_eq!(reply.rcode, 0);
            assert_eq!(
                reply.answers[0].data,
                dns::RecordData::A([192, 0, 2, 99].into())
            );
            ids.push(reply.id);
        }
        ids.sort_unstable();
        assert_eq!(ids, [1, 2]);
        // The flagged name is recorded as over UDP; the short message is dropped,
        // the connection kept.
        let x = match rx.recv_timeout(Duration::from_secs(10)).unwrap() {
            Event::Exchange(done) => done.x,
            e => panic!("{e:?}"),
        };
        assert_eq!((x.host.as_str(), x.scheme.as_str()), (name, "dns"));
        let sent = with_id(&query(&[name]), 2);
        assert_eq!(x.evidence.request_head, Some(RawHead::binary(&sent)));
        assert_eq!(shared.counters.dns_queries.load(Ordering::Relaxed), 2);
        let q = with_id(&query(&["late.example"]), 3);
        client
            .write_all(&[&(q.len() as u16).to_be_bytes()[..], &q].concat())
            .unwrap();
        let mut len = [0u8; 2];
        client.read_exact(&mut len).unwrap();
        assert_eq!(shared.counters.dns_malformed.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_malformed_query_is_answered_formerr_and_counted() {
        let rt = runtime();
        let (shared, _rx, _dir) = shared(false);
        let relay = DnsRelay::new(shared.clone(), fake_upstream(true), None);
        let socket = rt.block_on(UdpSocket::bind("127.0.0.1:0")).unwrap();
        let socket = ReplySocket::new(socket).unwrap();
        let at = socket.local_addr().unwrap();
        rt.spawn(serve(Arc::new(relay), socket, std::future::pending()));
        let reply = ask(at, &query(&["app.example"])[..20]);
        assert_eq!((reply.id, reply.rcode), (0x1234, FORMERR));
        assert_eq!(shared.counters.dns_malformed.load(Ordering::Relaxed), 1);
        assert_eq!(shared.counters.dns_queries.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn the_upstream_defaults_to_the_first_usable_nameserver() {
        let conf = "# generated\nsearch lan\nnameserver fe80::1%eth0\nnameserver 10.0.0.53\nnameserver 1.1.1.1\n";
        assert_eq!(first_nameserver(conf), Some("10.0.0.53".parse().unwrap()));
        assert_eq!(first_nameserver("options edns0\n"), None);
        assert_eq!(first_nameserver("nameserver\n"), None);
        assert_eq!(
            parse_upstream("192.0.2.53"),
            Some("192.0.2.53:53".parse().unwrap())
        );
        assert_eq!(
            parse_upstream("[::1]:5353"),
            Some("[::1]:5353".parse().unwrap())
        );
        assert_eq!(parse_upstream("::1"), Some("[::1]:53".parse().unwrap()));
        assert_eq!(parse_upstream("resolver.example"), None);
    }

    proptest::proptest! {
        /// Messages framed after their lengths come out whole and in order however
        /// the bytes arrive, the rest kept for the next read.
        #[test]
        fn framed_messages_come_out_whole_however_they_arrive(
            messages in proptest::collection::vec(
                proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40), 0..6),
            cuts in proptest::collection::vec(1usize..50, 0..20),
        ) {
            let stream: Vec<u8> = messages
                .iter()
                .flat_map(|m| [&(m.len() as u16).to_be_bytes()[..], m].concat())
                .collect();
            let (mut read, mut got, mut at) = (Vec::new(), Vec::new(), 0usize);
            for cut in cuts.iter().copied().chain(std::iter::repeat(usize::MAX)) {
                let end = stream.len().min(at.saturating_add(cut));
                read.extend_from_slice(&stream[at..end]);
                at = end;
                while let Some(m) = next_message(&mut read) {
                    got.push(m);
                }
                if at == stream.len() {
                    break;
                }
            }
            proptest::prop_assert_eq!(got, messages);
            proptest::prop_assert!(read.is_empty());
        }

        /// Whatever a client sends, the relay decides without panicking, and an
        /// answer it makes itself is a header with the query's id, and the query's
        /// question section or none.
        #[test]
        fn any_datagram_is_judged_and_answered_safely(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            flips in proptest::collection::vec((proptest::prelude::any::<proptest::sample::Index>(), proptest::prelude::any::<u8>()), 0..6),
        ) {
            let mut mutated = query(&["a.example", "0eaed834.t.sdk.example"]);
            for (i, b) in flips {
                let at = i.index(mutated.len());
                mutated[at] = b;
            }
            for datagram in [&data, &mutated] {
                let _ = judge_query(datagram, true);
                if let Some(r) = error_reply(datagram, SERVFAIL) {
                    proptest::prop_assert!(r.len() >= HEADER);
                    proptest::prop_assert_eq!(&r[..2], &datagram[..2]);
                    proptest::prop_assert!(r.len() == HEADER || datagram.starts_with(&r[..2]) && datagram[HEADER..].starts_with(&r[HEADER..]));
                }
            }
        }
    }
}
