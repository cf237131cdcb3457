//! QUIC decryption and HTTP/3 throughput (MB/s of UDP datagram payloads in), through
//! the public `QuicConnReader::push` and `QuicFlow::push`.
//!
//! Corpus, made in memory with `PacketSealer` (deterministic; 8-byte connection IDs,
//! QUIC v1, secrets as a key log gives them, full-size datagrams of 1 252 bytes, 2-byte
//! packet numbers). Each connection opens, as the reader sees it in a capture, with
//! the server's Initial datagram (ACK + CRYPTO with the ServerHello, padded to 1 200
//! bytes): the reader decrypts it for the cipher suite and the server's connection ID
//! length, so every 1-RTT packet is opened once, with the known suite and DCID
//! length. (Without it the reader finds both by trial on the first packet only —
//! at most 21 lengths × 2 suites — and then reads the rest the same way.)
//! - `quic_1rtt/<suite>`: 1 000 full-size client 1-RTT datagrams, each one STREAM
//!   frame of one request body (1.2 MB of JSON-like bytes) on stream 0, in order, the
//!   last with FIN. Measures header protection, AEAD, frame parsing and stream
//!   reassembly (in order: each frame's bytes go straight out as an event).
//! - `http3/*`: one AES-128-GCM connection with 1 000 requests on successive client
//!   streams (0, 4, 8, …): each request's HEADERS (QPACK, Huffman; the browser-like
//!   fields of `benches/http2.rs` as dynamic-table references after their insertion on
//!   the client's encoder stream) plus a 2 KiB JSON body in one DATA frame, each
//!   response's HEADERS (static-table references and literals) plus a 6 KiB body. Both
//!   control streams (SETTINGS) and encoder streams come first. Each request's
//!   datagrams, then its response's, are packed full with STREAM frames (and an ACK of
//!   the peer's packets in front), as the `http2` bench feeds one request then its
//!   response. `quic_only` is `QuicConnReader` alone over these datagrams,
//!   `quic_flow` the whole path of the flow table: `QuicFlow` (reader, `Http3Conn`
//!   with QPACK, one `FlowEvent::Http` per request).
//!
//! Every iteration feeds the whole connection to a fresh reader or flow. Run:
//! `cargo bench --bench quic`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use consentry::net::flow::{ConnInfo, Endpoint, FlowEvent, Proto};
use consentry::net::http3::Http3Limits;
use consentry::net::keylog::{KeyLog, Secrets};
use consentry::net::message_budget::MessageBudget;
use consentry::net::qpack::{encode as qpack, Index, STATIC_TABLE};
use consentry::net::quic::{PacketType, QUIC_V1};
use consentry::net::quic_conn::{PacketSealer, QuicConnLimits, QuicConnReader, QuicEvent};
use consentry::net::quic_flow::QuicFlow;
use consentry::timestamp::Timestamp;

/// UDP payload of a full-size datagram: a common size before path MTU discovery
/// (stacks send 1 200–1 350; QUIC requires at least 1 200).
const DATAGRAM: usize = 1_252;
/// Datagrams of the request body in `quic_1rtt`.
const PACKETS: usize = 1_000;
/// Requests in `http3`.
const STREAMS: u64 = 1_000;
const PN_LEN: usize = 2;
const TAG_LEN: usize = 16;
const ODCID: [u8; 8] = [0x0d; 8];
const CLIENT_CID: [u8; 8] = [0xc1; 8];
const SERVER_CID: [u8; 8] = [0x5e; 8];
const CLIENT_RANDOM: [u8; 32] = [0x42; 32];

fn varint(out: &mut Vec<u8>, v: u64) {
    match v {
        0..=63 => out.push(v as u8),
        64..=16_383 => out.extend((0x4000 | v as u16).to_be_bytes()),
        16_384..=0x3fff_ffff => out.extend((0x8000_0000 | v as u32).to_be_bytes()),
        _ => out.extend((0xc000_0000_0000_0000 | v).to_be_bytes()),
    }
}

fn varint_len(v: u64) -> usize {
    match v {
        0..=63 => 1,
        64..=16_383 => 2,
        16_384..=0x3fff_ffff => 4,
        _ => 8,
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The secrets a key log gives for the connection (32 bytes; 48 for AES-256-GCM).
fn secrets(suite: u16) -> Secrets {
    let len = if suite == 0x1302 { 48 } else { 32 };
    let random = hex(&CLIENT_RANDOM);
    let log = format!(
        "CLIENT_TRAFFIC_SECRET_0 {random} {}\nSERVER_TRAFFIC_SECRET_0 {random} {}\n",
        hex(&vec![0x11; len]),
        hex(&vec![0x22; len]),
    );
    let mut keys = KeyLog::new();
    keys.add(log.as_bytes());
    keys.secrets(&CLIENT_RANDOM)
        .expect("both secrets logged")
        .clone()
}

/// The server's first datagram: its Initial with an ACK and the ServerHello choosing
/// `suite`, padded to 1 200 bytes.
fn server_initial(suite: u16) -> Vec<u8> {
    let mut body = vec![0x03, 0x03];
    body.extend([0x7a; 32]);
    body.push(0); // legacy session id
    body.extend(suite.to_be_bytes());
    body.push(0);
    let ext = [0x00, 0x2b, 0x00, 0x02, 0x03, 0x04]; // supported_versions: TLS 1.3
    body.extend((ext.len() as u16).to_be_bytes());
    body.extend(ext);
    let mut hello = vec![2]; // ServerHello
    hello.extend(&(body.len() as u32).to_be_bytes()[1..]);
    hello.extend(body);
    let mut frames = vec![0x02, 0x00, 0x00, 0x00, 0x00]; // ACK of the client's Initial
    frames.push(0x06); // CRYPTO at offset 0
    varint(&mut frames, 0);
    varint(&mut frames, hello.len() as u64);
    frames.extend(hello);
    // First byte, version, both connection IDs, empty token, 2-byte length.
    let overhead = 1 + 4 + (1 + CLIENT_CID.len()) + (1 + SERVER_CID.len()) + 1 + 2;
    let overhead = overhead + PN_LEN + TAG_LEN;
    frames.resize(1_200 - overhead, 0); // PADDING
    let sealer = PacketSealer::server_initial(QUIC_V1, &ODCID).expect("QUIC v1");
    let packet = sealer
        .long(
            QUIC_V1,
            PacketType::Initial,
            &CLIENT_CID,
            &SERVER_CID,
            0,
            PN_LEN,
            &frames,
        )
        .expect("valid Initial");
    assert_eq!(packet.len(), 1_200);
    packet
}

/// One direction's 1-RTT packets.
struct Sender {
    sealer: PacketSealer,
    dcid: &'static [u8],
    next_pn: u64,
}

impl Sender {
    fn new(suite: u16, secret: &[u8], dcid: &'static [u8]) -> Self {
        Sender {
            sealer: PacketSealer::new(suite, QUIC_V1, secret).expect("known suite"),
            dcid,
            next_pn: 0,
        }
    }

    /// Room for frames in a full-size datagram.
    fn room(&self) -> usize {
        DATAGRAM - 1 - self.dcid.len() - PN_LEN - TAG_LEN
    }

    fn packet(&mut self, frames: &[u8]) -> Vec<u8> {
        let p = self
            .sealer
            .short(self.dcid, self.next_pn, PN_LEN, false, frames)
            .expect("valid packet");
        self.next_pn += 1;
        p
    }

    /// `writes` (stream id, offset, bytes, fin) as STREAM frames packed into full-size
    /// datagrams (the last one of the flight shorter), each opening with `ack`.
    fn flight(&mut self, ack: &[u8], writes: &[(u64, u64, &[u8], bool)]) -> Vec<Vec<u8>> {
        let mut datagrams = Vec::new();
        let mut frames = ack.to_vec();
        for &(id, mut offset, mut data, fin) in writes {
            loop {
                // Type, id, offset and a 2-byte length (every piece is under 16 KiB).
                let head = 1 + varint_len(id) + varint_len(offset) + 2;
                let room = self.room().saturating_sub(frames.len() + head);
                if room == 0 || (room < data.len() && room < 16) {
                    datagrams.push(self.packet(&frames));
                    frames = ack.to_vec();
                    continue;
                }
                let n = room.min(data.len());
                let last = n == data.len();
                frames.push(0x0e | u8::from(last && fin)); // STREAM with OFF and LEN
                varint(&mut frames, id);
                varint(&mut frames, offset);
                frames.extend((0x4000 | n as u16).to_be_bytes());
                frames.extend_from_slice(&data[..n]);
                offset += n as u64;
                data = &data[n..];
                if last {
                    break;
                }
            }
        }
        if frames.len() > ack.len() {
            datagrams.push(self.packet(&frames));
        }
        datagrams
    }

    /// An ACK frame of every packet up to this sender's last one, for the peer.
    fn ack(&self) -> Vec<u8> {
        let Some(largest) = self.next_pn.checked_sub(1) else {
            return Vec::new();
        };
        let mut f = vec![0x02];
        varint(&mut f, largest);
        varint(&mut f, 25); // ACK delay
        varint(&mut f, 0); // no more ranges
        varint(&mut f, largest); // first range: 0..=largest
        f
    }
}

/// `quic_1rtt`: the server's Initial, then the client's request body on stream 0.
fn request_body_connection(suite: u16, s: &Secrets) -> (Vec<(Vec<u8>, bool)>, usize) {
    let mut client = Sender::new(
        suite,
        s.client_traffic_0.as_deref().expect("logged"),
        &SERVER_CID,
    );
    let mut datagrams = vec![(server_initial(suite), false)];
    let body: Vec<u8> = b"{\"event\":\"page_view\",\"ts\":1764324000123,\"ids\":[4,8,15]},"
        .iter()
        .copied()
        .cycle()
        .take(1_300 * PACKETS)
        .collect();
    let mut offset = 0;
    for i in 0..PACKETS {
        // The frame (type, id 0, offset, 2-byte length) fills the datagram.
        let room = client.room() - (1 + 1 + varint_len(offset as u64) + 2);
        let data = &body[offset..offset + room];
        let fin = i == PACKETS - 1;
        let p = client.flight(&[], &[(0, offset as u64, data, fin)]);
        assert_eq!((p.len(), p[0].len()), (1, DATAGRAM));
        datagrams.extend(p.into_iter().map(|d| (d, true)));
        offset += room;
    }
    (datagrams, offset)
}

/// The index of `name: value` in the QPACK static table.
fn static_index(name: &str, value: &str) -> u64 {
    STATIC_TABLE
        .iter()
        .position(|&(n, v)| (n, v) == (name, value))
        .expect("in the static table") as u64
}

fn frame(ty: u64, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    varint(&mut f, ty);
    varint(&mut f, payload.len() as u64);
    f.extend_from_slice(payload);
    f
}

/// A control stream (type 0x00) with SETTINGS: QPACK table capacity 4 096 and 16
/// blocked streams.
fn control_stream() -> Vec<u8> {
    let mut settings = Vec::new();
    for (id, value) in [(0x01, 4_096), (0x07, 16)] {
        varint(&mut settings, id);
        varint(&mut settings, value);
    }
    [vec![0x00], frame(0x04, &settings)].concat()
}

/// The browser-like fields every request sends, inserted once on the encoder stream.
const REQUEST_FIELDS: [(&str, &str); 6] = [
    (":authority", "api.example-shop.com"),
    ("user-agent", "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36"),
    ("accept", "application/json, text/plain, */*"),
    ("accept-language", "en-US,en;q=0.9,zh-CN;q=0.8"),
    ("cookie", "session=0123456789abcdef0123456789abcdef; prefs=dark%2Clarge; _ga=GA1.2.1234567890.1764324000; consent=eyJhZHMiOmZhbHNlfQ; region=eu-west; build=4.2.0-release; ab=variant-b-0042; ts=1764324000123; trace=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    ("content-type", "application/json"),
];

/// The client's encoder stream (type 0x02): table capacity, then `REQUEST_FIELDS`.
fn client_encoder_stream() -> Vec<u8> {
    let mut s = vec![0x02];
    qpack::set_capacity(&mut s, 4_096);
    for (name, value) in REQUEST_FIELDS {
        let name_index = STATIC_TABLE
            .iter()
            .position(|&(n, _)| n == name)
            .expect("a static name") as u64;
        qpack::insert_with_static_name(&mut s, name_index, value.as_bytes(), true);
    }
    s
}

/// Request `i`: HEADERS (the inserted fields by reference, method, scheme and path)
/// and DATA.
fn request(i: u64, body: &[u8]) -> Vec<u8> {
    let inserted = REQUEST_FIELDS.len() as u64;
    let mut block = Vec::new();
    qpack::prefix(&mut block, inserted, inserted, 4_096 / 32);
    qpack::indexed(&mut block, Index::Static(static_index(":method", "POST")));
    qpack::indexed(&mut block, Index::Static(static_index(":scheme", "https")));
    for relative in (0..inserted).rev() {
        qpack::indexed(&mut block, Index::Relative(relative));
    }
    let path = format!("/v1/events?seq={i}&session=abc{}", i % 7);
    qpack::literal_with_name_ref(
        &mut block,
        Index::Static(static_index(":path", "/")),
        path.as_bytes(),
        false,
        true,
    );
    [frame(0x01, &block), frame(0x00, body)].concat()
}

fn response(body: &[u8]) -> Vec<u8> {
    let mut block = Vec::new();
    qpack::prefix(&mut block, 0, 0, 4_096 / 32);
    qpack::indexed(&mut block, Index::Static(static_index(":status", "200")));
    qpack::indexed(
        &mut block,
        Index::Static(static_index("content-type", "application/json")),
    );
    qpack::indexed(
        &mut block,
        Index::Static(static_index("cache-control", "no-cache")),
    );
    let length = body.len().to_string();
    qpack::literal_with_name_ref(
        &mut block,
        Index::Static(static_index("content-length", "0")),
        length.as_bytes(),
        false,
        true,
    );
    qpack::literal(&mut block, b"server", b"envoy", false, true);
    qpack::literal_with_name_ref(
        &mut block,
        Index::Static(static_index("date", "")),
        b"Thu, 04 Dec 2026 10:00:00 GMT",
        false,
        true,
    );
    [frame(0x01, &block), frame(0x00, body)].concat()
}

/// `http3`: the server's Initial, both sides' control and encoder streams, then each
/// request and its response.
fn http3_connection(s: &Secrets) -> Vec<(Vec<u8>, bool)> {
    let suite = 0x1301;
    let mut client = Sender::new(
        suite,
        s.client_traffic_0.as_deref().expect("logged"),
        &SERVER_CID,
    );
    let mut server = Sender::new(
        suite,
        s.server_traffic_0.as_deref().expect("logged"),
        &CLIENT_CID,
    );
    let mut datagrams = vec![(server_initial(suite), false)];
    let mut push = |flight: Vec<Vec<u8>>, from_client: bool| {
        datagrams.extend(flight.into_iter().map(|d| (d, from_client)));
    };
    // Server streams 3 (control) and 7 (encoder, unused), client streams 2 and 6.
    let control = control_stream();
    let f = server.flight(&[], &[(3, 0, &control, false), (7, 0, &[0x02], false)]);
    push(f, false);
    let encoder = client_encoder_stream();
    let f = client.flight(
        &server.ack(),
        &[(2, 0, &control, false), (6, 0, &encoder, false)],
    );
    push(f, true);
    let body: Vec<u8> = (0..2_048)
        .map(|i| b"{\"k\":\"v\",\"n\":123}"[i % 17])
        .collect();
    let resp: Vec<u8> = (0..6_144)
        .map(|i| b"{\"items\":[1,2,3],\"more\":false}"[i % 30])
        .collect();
    let response = response(&resp);
    for i in 0..STREAMS {
        let id = 4 * i;
        let f = client.flight(&server.ack(), &[(id, 0, &request(i, &body), true)]);
        push(f, true);
        let f = server.flight(&client.ack(), &[(id, 0, &response, true)]);
        push(f, false);
    }
    datagrams
}

fn total_len(datagrams: &[(Vec<u8>, bool)]) -> u64 {
    datagrams.iter().map(|(d, _)| d.len() as u64).sum()
}

/// Feeds the connection to a fresh reader: stream bytes out, and packets opened.
fn read_quic(datagrams: &[(Vec<u8>, bool)], s: &Secrets) -> (usize, u64) {
    let mut r = QuicConnReader::new(QUIC_V1, &ODCID, &CLIENT_CID, s, QuicConnLimits::default());
    let mut events = Vec::new();
    let mut bytes = 0;
    for (d, from_client) in datagrams {
        r.push(d, *from_client, &mut events);
        for e in events.drain(..) {
            if let QuicEvent::Stream { data, .. } = e {
                bytes += data.len();
            }
        }
    }
    r.flush(&mut events);
    assert!(events.is_empty() && r.take_anomalies().is_empty());
    (bytes, r.packets_decrypted())
}

/// Feeds the connection to a fresh `QuicFlow`: requests out, and their body bytes.
fn read_flow(datagrams: &[(Vec<u8>, bool)], s: &Secrets) -> (u64, usize) {
    let endpoint = |last: u8, port| Endpoint {
        ip: [192, 0, 2, last].into(),
        port,
        mac: None,
    };
    let mut info = ConnInfo {
        proto: Proto::Udp,
        client: endpoint(1, 50_000),
        server: endpoint(2, 443),
        first_ts: Timestamp::from_micros(0),
        first_client_data: None,
        first_frame: 1,
        last_frame: 1,
        client_bytes: 0,
        server_bytes: 0,
        tls: Some(Box::default()),
        protocol: None,
        app_uid: None,
        tunnel: None,
        gquic: None,
    };
    let mut flow = QuicFlow::new(
        QUIC_V1,
        &ODCID,
        &CLIENT_CID,
        s,
        QuicConnLimits::default(),
        Http3Limits::default(),
        &MessageBudget::new(usize::MAX),
    );
    let mut out = Vec::new();
    let (mut requests, mut body) = (0, 0);
    let mut count = |out: &mut Vec<FlowEvent>| {
        for e in out.drain(..) {
            if let FlowEvent::Http {
                request, response, ..
            } = e
            {
                requests += 1;
                body += request.body.len() + response.map_or(0, |r| r.body.len());
            }
        }
    };
    for (i, (d, from_client)) in datagrams.iter().enumerate() {
        let frame = i as u64 + 1;
        let ts = Timestamp::from_micros(frame as i64 * 100);
        flow.push(d, *from_client, ts, frame, &mut info, &mut out);
        count(&mut out);
    }
    let n = datagrams.len() as u64;
    flow.close(
        Timestamp::from_micros(n as i64 * 100),
        n,
        &mut info,
        &mut out,
    );
    count(&mut out);
    (requests, body)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("quic_1rtt");
    for (suite, name) in [
        (0x1301u16, "AES_128_GCM"),
        (0x1302, "AES_256_GCM"),
        (0x1303, "CHACHA20_POLY1305"),
    ] {
        let s = secrets(suite);
        let (datagrams, body) = request_body_connection(suite, &s);
        assert_eq!(read_quic(&datagrams, &s), (body, PACKETS as u64), "{name}");
        group.throughput(Throughput::Bytes(total_len(&datagrams)));
        group.bench_function(name, |b| b.iter(|| read_quic(&datagrams, &s)));
    }
    group.finish();

    let s = secrets(0x1301);
    let datagrams = http3_connection(&s);
    let (client, server): (Vec<_>, Vec<_>) = datagrams.iter().partition(|(_, c)| *c);
    eprintln!(
        "http3 corpus: {} datagrams ({} client, {} server), {} bytes",
        datagrams.len(),
        client.len(),
        server.len(),
        total_len(&datagrams)
    );
    let (_, packets) = read_quic(&datagrams, &s);
    assert_eq!(
        packets,
        datagrams.len() as u64 - 1,
        "every 1-RTT packet opens"
    );
    assert_eq!(
        read_flow(&datagrams, &s),
        (STREAMS, STREAMS as usize * (2_048 + 6_144)),
        "every stream is one exchange with both bodies"
    );
    let mut group = c.benchmark_group("http3");
    group.throughput(Throughput::Bytes(total_len(&datagrams)));
    group.sample_size(20);
    group.bench_function("quic_only_1000_streams", |b| {
        b.iter(|| read_quic(&datagrams, &s))
    });
    group.bench_function("quic_flow_1000_streams", |b| {
        b.iter(|| read_flow(&datagrams, &s))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
