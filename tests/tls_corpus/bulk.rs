//! The benchmark capture of issue 7 ("Performance"): many keep-alive rustls
//! connections, run in memory like the corpus, written straight to a pcap file until it
//! reaches a size, with their NSS key log. The suites are mixed as app traffic mixes
//! them: of every ten connections five TLS 1.3 AES-128-GCM, two TLS 1.3 AES-256-GCM, one
//! TLS 1.3 ChaCha20-Poly1305, one TLS 1.2 ECDHE AES-128-GCM and one TLS 1.2 ECDHE
//! ChaCha20-Poly1305; every third connection speaks HTTP/2 (ALPN `h2`), the others
//! HTTP/1.1. Each connection carries [`REQUESTS_PER_CONN`] POSTs with JSON bodies of
//! 1–64 KiB and JSON responses of 1–64 KiB; one request in eight carries identifiers of
//! the case. Connections sharing a suite share configurations, so later ones resume
//! (tickets), as a phone's would. Sizes come from a fixed-seed generator; keys and
//! randoms are fresh on every run.

use std::io::{self, Write};
use std::sync::Arc;

use super::*;

/// Requests on each keep-alive connection.
pub const REQUESTS_PER_CONN: usize = 20;
/// Largest HTTP/2 DATA frame payload (the default SETTINGS_MAX_FRAME_SIZE).
const H2_MAX_FRAME: usize = 16_384;
/// Hosts the connections go to, in turn (first and third parties).
const HOSTS: [&str; 5] = [
    "api.example-shop.com",
    "graph.facebook.com",
    "app-measurement.com",
    "api.mixpanel.com",
    "t.appsflyer.com",
];

/// Configurations shared by the connections of one (suite slot, HTTP/2) key.
type Configs = Vec<((usize, bool), Arc<ClientConfig>, Arc<ServerConfig>)>;

/// What [`write_bulk`] wrote.
#[derive(Debug, Default)]
pub struct BulkSummary {
    pub bytes: u64,
    pub packets: u64,
    pub connections: u64,
    pub requests: u64,
    /// Requests carrying identifiers.
    pub with_identifiers: u64,
}

/// Small deterministic generator (xorshift64*), so sizes repeat from run to run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A body size of 1–64 KiB, smaller ones likelier (as API payloads are).
    fn body_size(&mut self) -> usize {
        let a = self.next() % (63 << 10);
        let b = self.next() % (63 << 10);
        1024 + a.min(b) as usize
    }
}

/// A JSON body of about `size` bytes: event records with hex ids, optionally the
/// case's identifiers first.
fn json_body(rng: &mut Rng, size: usize, identifiers: bool) -> Vec<u8> {
    let mut out = String::with_capacity(size + 256);
    out.push('{');
    if identifiers {
        out.push_str(&format!(
            "\"adid\":\"{ADVERTISING_ID}\",\"android_id\":\"{ANDROID_ID}\",\"email\":\"{EMAIL}\","
        ));
    }
    out.push_str("\"events\":[");
    let mut first = true;
    while out.len() < size {
        if !first {
            out.push(',');
        }
        first = false;
        let (a, b) = (rng.next(), rng.next());
        out.push_str(&format!(
            "{{\"id\":\"{a:016x}{b:016x}\",\"ts\":{},\"name\":\"screen_view\",\"value\":{}}}",
            1_795_860_000_000u64 + (a % 1_000_000),
            b % 10_000
        ));
    }
    out.push_str("]}");
    out.into_bytes()
}

fn http1_json_response(body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// DATA frames of `body` on `stream`, the last with END_STREAM.
fn h2_data(stream: u32, body: &[u8], out: &mut Vec<u8>) {
    let mut chunks = body.chunks(H2_MAX_FRAME).peekable();
    while let Some(chunk) = chunks.next() {
        let end = if chunks.peek().is_none() { 0x1 } else { 0 };
        out.extend(h2_frame(0, end, stream, chunk));
    }
}

/// An HTTP/2 POST on `stream` (odd); the connection preface and SETTINGS with the first.
fn h2_post(r: &Request, stream: u32) -> Vec<u8> {
    let mut block = vec![0x83, 0x87]; // :method POST, :scheme https
    hpack_literal(&mut block, 4, r.path.as_bytes());
    hpack_literal(&mut block, 1, r.host.as_bytes());
    hpack_literal(&mut block, 58, b"ExampleShop/4.2 (Android 14)");
    hpack_literal(&mut block, 31, b"application/json");
    let mut bytes = Vec::new();
    if stream == 1 {
        bytes.extend_from_slice(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        bytes.extend(h2_frame(4, 0, 0, &[]));
    }
    bytes.extend(h2_frame(1, 0x4, stream, &block));
    h2_data(stream, &r.body, &mut bytes);
    bytes
}

/// The server's answer on `stream`: SETTINGS and the ACK first, `:status 200`, JSON.
fn h2_json_response(stream: u32, body: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::new();
    if stream == 1 {
        bytes.extend(h2_frame(4, 0, 0, &[]));
        bytes.extend(h2_frame(4, 0x1, 0, &[]));
    }
    let mut block = vec![0x88]; // :status 200
    hpack_literal(&mut block, 31, b"application/json");
    bytes.extend(h2_frame(1, 0x4, stream, &block));
    h2_data(stream, body, &mut bytes);
    bytes
}

fn write_pcap_header(out: &mut impl Write) -> io::Result<()> {
    out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
    out.write_all(&2u16.to_le_bytes())?;
    out.write_all(&4u16.to_le_bytes())?;
    out.write_all(&[0; 8])?;
    out.write_all(&65_535u32.to_le_bytes())?;
    out.write_all(&1u32.to_le_bytes())
}

fn write_pcap_packets(packets: &[Packet], out: &mut impl Write) -> io::Result<u64> {
    let mut n = 0;
    for p in sorted(packets) {
        out.write_all(&((p.ts_micros / 1_000_000) as u32).to_le_bytes())?;
        out.write_all(&((p.ts_micros % 1_000_000) as u32).to_le_bytes())?;
        out.write_all(&(p.frame.len() as u32).to_le_bytes())?;
        out.write_all(&(p.frame.len() as u32).to_le_bytes())?;
        out.write_all(&p.frame)?;
        n += 16 + p.frame.len() as u64;
    }
    Ok(n)
}

/// Writes connections to `pcap` until it holds at least `target_bytes`; returns the NSS
/// key log of all of them and what was written.
pub fn write_bulk(target_bytes: u64, pcap: &mut impl Write) -> io::Result<(String, BulkSummary)> {
    use provider::cipher_suite as cs;
    let suites = [
        (true, cs::TLS13_AES_128_GCM_SHA256),
        (true, cs::TLS13_AES_128_GCM_SHA256),
        (true, cs::TLS13_AES_256_GCM_SHA384),
        (true, cs::TLS13_AES_128_GCM_SHA256),
        (false, cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256),
        (true, cs::TLS13_AES_128_GCM_SHA256),
        (true, cs::TLS13_AES_256_GCM_SHA384),
        (true, cs::TLS13_CHACHA20_POLY1305_SHA256),
        (true, cs::TLS13_AES_128_GCM_SHA256),
        (false, cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256),
    ];
    let certified = rcgen::generate_simple_self_signed(HOSTS.map(String::from).to_vec())
        .map_err(io::Error::other)?;
    let cert: CertificateDer<'static> = certified.cert.der().clone();
    let key_der = certified.signing_key.serialize_der();
    let keylog = Arc::new(Collect::default());
    // (suite index, h2) -> configurations, so later connections resume.
    let mut configs: Configs = Vec::new();
    let mut rng = Rng(0x5eed_2026_1128);
    let mut sum = BulkSummary::default();
    write_pcap_header(pcap)?;
    sum.bytes = 24;
    let mut conn = 0usize;
    while sum.bytes < target_bytes {
        let (tls13, suite) = suites[conn % suites.len()];
        let app = if conn % 3 == 2 { App::H2 } else { App::Http1 };
        let host = HOSTS[conn % HOSTS.len()];
        let spec = ConnSpec {
            host,
            server_ip: [203, 0, 113, 100 + (conn % HOSTS.len()) as u8],
            tls13,
            suite,
            app,
            config_key: "bulk",
            key_update: false,
            requests: Vec::new(),
        };
        let key = (conn % suites.len(), app == App::H2);
        let (client_config, server_config) = match configs.iter().find(|(k, _, _)| *k == key) {
            Some((_, c, s)) => (c.clone(), s.clone()),
            None => {
                let made = make_configs(&spec, &cert, &key_der, keylog.clone());
                configs.push((key, made.0.clone(), made.1.clone()));
                made
            }
        };
        // Connections half a second apart, each lasting under half a second.
        let start = BASE_SECS * 1_000_000 + conn as i64 * 500_000;
        let name = ServerName::try_from(host.to_string()).map_err(io::Error::other)?;
        let mut client = Connection::Client(
            rustls::ClientConnection::new(client_config, name).map_err(io::Error::other)?,
        );
        let mut server = Connection::Server(
            rustls::ServerConnection::new(server_config).map_err(io::Error::other)?,
        );
        let mut packets = Vec::new();
        let port = 20_000 + (conn % 40_000) as u16;
        let mut tcp = Tcp::new(DEVICE_IP, port, spec.server_ip, 443);
        tcp.open(start, &mut packets);
        let mut ts = start + 1_000;
        for _ in 0..16 {
            let up = pump(&mut client, &mut server);
            if !up.is_empty() {
                tcp.data(true, &up, ts, &mut packets);
                ts += 1_000;
            }
            let down = pump(&mut server, &mut client);
            if !down.is_empty() {
                tcp.data(false, &down, ts, &mut packets);
                ts += 1_000;
            }
            if !client.is_handshaking() && !server.is_handshaking() {
                break;
            }
        }
        for n in 0..REQUESTS_PER_CONN {
            let identifiers = rng.next().is_multiple_of(8);
            let (up_size, down_size) = (rng.body_size(), rng.body_size());
            let req = Request {
                method: "POST",
                host,
                path: format!("/v2/events?batch={conn}-{n}"),
                content_type: Some("application/json"),
                body: json_body(&mut rng, up_size, identifiers),
            };
            let response = json_body(&mut rng, down_size, false);
            let stream = 2 * n as u32 + 1;
            let (up, down) = match app {
                App::Http1 => (http1_request(&req), http1_json_response(&response)),
                App::H2 => (h2_post(&req, stream), h2_json_response(stream, &response)),
            };
            let at = start + 20_000 + n as i64 * 20_000;
            let bytes = send(&mut client, &mut server, &up)?;
            tcp.data(true, &bytes, at, &mut packets);
            let bytes = send(&mut server, &mut client, &down)?;
            tcp.data(false, &bytes, at + 5_000, &mut packets);
            sum.requests += 1;
            sum.with_identifiers += u64::from(identifiers);
        }
        client.send_close_notify();
        let bytes = pump(&mut client, &mut server);
        tcp.data(true, &bytes, start + 450_000, &mut packets);
        tcp.close(start + 451_000, &mut packets);
        sum.packets += packets.len() as u64;
        sum.bytes += write_pcap_packets(&packets, pcap)?;
        sum.connections += 1;
        conn += 1;
    }
    let keylog = keylog
        .0
        .lock()
        .map(|l| l.join("\n") + "\n")
        .unwrap_or_default();
    Ok((keylog, sum))
}

/// Sends `data` from `from` to `to` in pieces the receiver's plaintext buffer (rustls
/// limits it) takes, draining it after each; returns the TLS bytes.
fn send(from: &mut Connection, to: &mut Connection, data: &[u8]) -> io::Result<Vec<u8>> {
    let mut wire = Vec::new();
    for piece in data.chunks(8 << 10) {
        from.writer().write_all(piece)?;
        wire.extend(pump(from, to));
        received(to);
    }
    Ok(wire)
}
