//! The TLS test corpus generator (issue 7, item 7): real rustls clients and servers,
//! run in memory (no sockets), carry HTTP/1.1 and HTTP/2 requests with the synthetic
//! identifiers of `captures/tls/consentry.toml`; a `rustls::KeyLog` collects their NSS
//! key log lines; the TLS bytes of each flight are wrapped into Ethernet/IPv4/TCP
//! packets (SYN handshake, segments of at most [`MSS`] bytes, FIN) and written as pcap
//! and pcapng, with and without a Decryption Secrets Block. The *plaintext twin*
//! carries the very same HTTP bytes at the very same times over cleartext TCP, so both
//! captures must give the same findings (connection-level fields aside).
//!
//! Every suite and version rustls offers with ring: TLS 1.3 AES-128-GCM, AES-256-GCM
//! and ChaCha20-Poly1305; TLS 1.2 ECDHE-ECDSA with AES-128/256-GCM and
//! ChaCha20-Poly1305 (extended master secret, as rustls always negotiates it); a TLS
//! 1.3 connection resumed with a ticket, a TLS 1.2 connection resumed by session id, a
//! TLS 1.3 KeyUpdate between two requests, and HTTP/2 (ALPN `h2`, hand-written frames,
//! HPACK without Huffman) over TLS 1.3 and 1.2. DNS answers for every server name
//! open both captures, so metadata-only exchanges get the same host in both.
//!
//! rustls draws fresh randoms and keys on every run, so the committed files under
//! `captures/tls/` are one run of `cargo run --example gen_tls_capture`; tests read
//! those, and may call [`generate`] for fresh variants.

#![allow(dead_code)]

pub mod bulk;

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use rustls::crypto::ring as provider;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, Connection, ServerConfig, SupportedCipherSuite};

/// Largest TCP payload per segment.
pub const MSS: usize = 1400;
/// The test phone (the case's device address).
pub const DEVICE_IP: [u8; 4] = [192, 168, 50, 23];
/// The phone's DNS resolver.
pub const RESOLVER_IP: [u8; 4] = [192, 168, 50, 1];
const DEVICE_MAC: [u8; 6] = [0x02, 0, 0, 0x44, 0x55, 0x66];
const GATEWAY_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// 2026-11-28T10:00:00Z in seconds since the epoch: the first connection starts here,
/// the next ones one second apart.
pub const BASE_SECS: i64 = 1_795_860_000;

/// Synthetic identifiers, the same as in `captures/tls/consentry.toml`.
pub const ADVERTISING_ID: &str = "38400000-8cf0-11bd-b23e-10b96e40000d";
pub const ANDROID_ID: &str = "9774d56d682e549c";
pub const IMEI: &str = "490154203237518";
pub const OAID: &str = "a1b2c3d4-0000-4e5f-8a9b-0c1d2e3f4a5b";
pub const EMAIL: &str = "tester@example.org";
pub const PHONE: &str = "+8613800138000";

/// What an application protocol a connection carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum App {
    Http1,
    /// HTTP/2 (ALPN `h2` over TLS; prior knowledge in the plaintext twin).
    H2,
}

/// One request of the corpus.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: &'static str,
    pub host: &'static str,
    pub path: String,
    pub content_type: Option<&'static str>,
    pub body: Vec<u8>,
}

/// One TLS connection of the corpus.
#[derive(Debug, Clone)]
pub struct ConnSpec {
    pub host: &'static str,
    pub server_ip: [u8; 4],
    pub tls13: bool,
    pub suite: SupportedCipherSuite,
    pub app: App,
    /// Connections with the same key share client and server configuration, so the
    /// later ones resume the session of the first (ticket in TLS 1.3, id in TLS 1.2).
    pub config_key: &'static str,
    /// A KeyUpdate (rustls `refresh_traffic_keys`) before every request but the first.
    pub key_update: bool,
    pub requests: Vec<Request>,
}

/// A captured frame (Ethernet) and its time.
#[derive(Debug, Clone)]
pub struct Packet {
    pub ts_micros: i64,
    pub frame: Vec<u8>,
}

/// What a run of the generator gives.
pub struct Corpus {
    /// The NSS key log of every TLS connection.
    pub keylog: String,
    /// The TLS capture's packets.
    pub tls: Vec<Packet>,
    /// The plaintext twin's packets.
    pub plain: Vec<Packet>,
    /// Per connection: version, suite, ALPN, resumed, as rustls negotiated them.
    pub negotiated: Vec<String>,
    pub specs: Vec<ConnSpec>,
}

/// The connections of the corpus (see the module docs).
pub fn specs() -> Vec<ConnSpec> {
    use provider::cipher_suite as cs;
    let form = Some("application/x-www-form-urlencoded");
    let json = Some("application/json");
    let post = |host, path: &str, content_type, body: String| Request {
        method: "POST",
        host,
        path: path.to_string(),
        content_type,
        body: body.into_bytes(),
    };
    let get = |host, path: String| Request {
        method: "GET",
        host,
        path,
        content_type: None,
        body: Vec::new(),
    };
    let conn = |host, last: u8, tls13, suite, app, config_key, requests| ConnSpec {
        host,
        server_ip: [203, 0, 113, last],
        tls13,
        suite,
        app,
        config_key,
        key_update: false,
        requests,
    };
    vec![
        conn(
            "graph.facebook.com",
            10,
            true,
            cs::TLS13_AES_128_GCM_SHA256,
            App::Http1,
            "fb13",
            vec![post(
                "graph.facebook.com",
                "/v18.0/1234567890/activities",
                form,
                format!("event=MOBILE_APP_INSTALL&advertiser_id={ADVERTISING_ID}&advertiser_tracking_enabled=1"),
            )],
        ),
        conn(
            "ulogs.umeng.com",
            11,
            true,
            cs::TLS13_AES_256_GCM_SHA384,
            App::Http1,
            "umeng256",
            vec![post(
                "ulogs.umeng.com",
                "/unify_logs",
                json,
                format!(r#"{{"header":{{"oaid":"{OAID}","android_id":"{ANDROID_ID}","app":"com.example.shop"}}}}"#),
            )],
        ),
        conn(
            "app.adjust.com",
            12,
            true,
            cs::TLS13_CHACHA20_POLY1305_SHA256,
            App::Http1,
            "adjust",
            vec![get(
                "app.adjust.com",
                format!("/session?app_token=abc123&gps_adid={ADVERTISING_ID}&android_id={ANDROID_ID}"),
            )],
        ),
        conn(
            "api.mixpanel.com",
            13,
            false,
            cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            App::Http1,
            "mixpanel12",
            vec![post(
                "api.mixpanel.com",
                "/track",
                form,
                format!("event=app_open&distinct_id={}&ip=1", EMAIL.replace('@', "%40")),
            )],
        ),
        conn(
            "api2.amplitude.com",
            14,
            false,
            cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            App::Http1,
            "amplitude",
            vec![post(
                "api2.amplitude.com",
                "/2/httpapi",
                json,
                format!(r#"{{"api_key":"k","events":[{{"user_id":"{EMAIL}","device_id":"{ANDROID_ID}","event_type":"open"}}]}}"#),
            )],
        ),
        conn(
            "inapps.appsflyer.com",
            15,
            false,
            cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            App::Http1,
            "appsflyer",
            vec![post(
                "inapps.appsflyer.com",
                "/api/v6.3/androidevent?app_id=com.example.shop",
                json,
                format!(r#"{{"advertiserId":"{ADVERTISING_ID}","imei":"{IMEI}","eventName":"af_login"}}"#),
            )],
        ),
        // Resumed with the ticket of the first connection.
        conn(
            "graph.facebook.com",
            10,
            true,
            cs::TLS13_AES_128_GCM_SHA256,
            App::Http1,
            "fb13",
            vec![post(
                "graph.facebook.com",
                "/v18.0/1234567890/activities",
                form,
                format!("event=CUSTOM_APP_EVENTS&advertiser_id={ADVERTISING_ID}&ud[ph]={}", PHONE.replace('+', "%2B")),
            )],
        ),
        // Resumed by session id.
        conn(
            "api.mixpanel.com",
            13,
            false,
            cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            App::Http1,
            "mixpanel12",
            vec![get(
                "api.mixpanel.com",
                format!("/engage?distinct_id={}&$set=1", EMAIL.replace('@', "%40")),
            )],
        ),
        ConnSpec {
            key_update: true,
            ..conn(
                "ulogs.umeng.com",
                11,
                true,
                cs::TLS13_AES_128_GCM_SHA256,
                App::Http1,
                "umeng128",
                vec![
                    post(
                        "ulogs.umeng.com",
                        "/unify_logs",
                        json,
                        format!(r#"{{"header":{{"imei":"{IMEI}","seq":1}}}}"#),
                    ),
                    post(
                        "ulogs.umeng.com",
                        "/unify_logs",
                        json,
                        format!(r#"{{"header":{{"oaid":"{OAID}","seq":2}}}}"#),
                    ),
                ],
            )
        },
        conn(
            "app-measurement.com",
            16,
            true,
            cs::TLS13_AES_128_GCM_SHA256,
            App::H2,
            "firebase",
            vec![post(
                "app-measurement.com",
                "/a",
                form,
                format!("gmp_app_id=1:2:android:3&adid={ADVERTISING_ID}&_e=session_start"),
            )],
        ),
        conn(
            "o1.ingest.sentry.io",
            17,
            false,
            cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            App::H2,
            "sentry",
            vec![post(
                "o1.ingest.sentry.io",
                "/api/1/envelope/",
                json,
                format!(r#"{{"user":{{"email":"{EMAIL}"}},"device":{{"id":"{ANDROID_ID}"}}}}"#),
            )],
        ),
    ]
}

/// Collects the NSS key log lines rustls reports.
#[derive(Debug, Default)]
struct Collect(Mutex<Vec<String>>);

impl rustls::KeyLog for Collect {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        if let Ok(mut lines) = self.0.lock() {
            lines.push(format!("{label} {} {}", hex(client_random), hex(secret)));
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Runs every connection of [`specs`] and builds both captures.
pub fn generate() -> Corpus {
    let specs = specs();
    let hosts: Vec<String> = specs.iter().map(|s| s.host.to_string()).collect();
    let certified = rcgen::generate_simple_self_signed(hosts).expect("self-signed certificate");
    let cert: CertificateDer<'static> = certified.cert.der().clone();
    let key_der = certified.signing_key.serialize_der();
    let keylog = Arc::new(Collect::default());

    let mut configs: Vec<(&str, Arc<ClientConfig>, Arc<ServerConfig>)> = Vec::new();
    let mut tls = Vec::new();
    let mut plain = Vec::new();
    dns_answers(&specs, &mut tls);
    dns_answers(&specs, &mut plain);
    let mut negotiated = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let (client_config, server_config) =
            match configs.iter().find(|(k, _, _)| *k == spec.config_key) {
                Some((_, c, s)) => (c.clone(), s.clone()),
                None => {
                    let made = make_configs(spec, &cert, &key_der, keylog.clone());
                    configs.push((spec.config_key, made.0.clone(), made.1.clone()));
                    made
                }
            };
        let start = (BASE_SECS + 1 + i as i64) * 1_000_000;
        let port = 40_000 + i as u16;
        let (flights, summary) = run_tls(spec, client_config, server_config, start);
        negotiated.push(summary);
        let mut conv = Tcp::new(DEVICE_IP, port, spec.server_ip, 443);
        conv.open(start, &mut tls);
        for (from_client, ts, bytes) in &flights {
            conv.data(*from_client, bytes, *ts, &mut tls);
        }
        conv.close(start + 302_000, &mut tls);

        let mut conv = Tcp::new(DEVICE_IP, port, spec.server_ip, 80);
        conv.open(start, &mut plain);
        for (n, req) in spec.requests.iter().enumerate() {
            let ts = start + 100_000 * (n as i64 + 1);
            let (up, down) = match spec.app {
                App::Http1 => (http1_request(req), http1_response().to_vec()),
                App::H2 => (h2_request(req, "http"), h2_response()),
            };
            conv.data(true, &up, ts, &mut plain);
            conv.data(false, &down, ts + 1_000, &mut plain);
        }
        conv.close(start + 302_000, &mut plain);
    }
    let keylog = keylog
        .0
        .lock()
        .map(|l| l.join("\n") + "\n")
        .unwrap_or_default();
    Corpus {
        keylog,
        tls,
        plain,
        negotiated,
        specs,
    }
}

/// One connection of `spec` whose ClientHello names no server (SNI off, as some SDKs
/// and IP-address clients send it), with no DNS answer before it: only the server's
/// certificate (self-signed for `spec.host` alone) can name it. The packets and the
/// certificate's DER bytes.
pub fn without_server_name(spec: &ConnSpec) -> (Vec<Packet>, Vec<u8>) {
    let certified = rcgen::generate_simple_self_signed(vec![spec.host.to_string()])
        .expect("self-signed certificate");
    let cert: CertificateDer<'static> = certified.cert.der().clone();
    let key_der = certified.signing_key.serialize_der();
    let (client, server) = make_configs(spec, &cert, &key_der, Arc::new(Collect::default()));
    let mut client = (*client).clone();
    client.enable_sni = false;
    let start = (BASE_SECS + 1) * 1_000_000;
    let (flights, _) = run_tls(spec, Arc::new(client), server, start);
    let mut packets = Vec::new();
    let mut conv = Tcp::new(DEVICE_IP, 40_000, spec.server_ip, 443);
    conv.open(start, &mut packets);
    for (from_client, ts, bytes) in &flights {
        conv.data(*from_client, bytes, *ts, &mut packets);
    }
    conv.close(start + 302_000, &mut packets);
    (packets, cert.to_vec())
}

fn make_configs(
    spec: &ConnSpec,
    cert: &CertificateDer<'static>,
    key_der: &[u8],
    keylog: Arc<Collect>,
) -> (Arc<ClientConfig>, Arc<ServerConfig>) {
    let provider = Arc::new(CryptoProvider {
        cipher_suites: vec![spec.suite],
        ..provider::default_provider()
    });
    let versions: &[&rustls::SupportedProtocolVersion] = if spec.tls13 {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS12]
    };
    let alpn: Vec<Vec<u8>> = match spec.app {
        App::Http1 => vec![b"http/1.1".to_vec()],
        App::H2 => vec![b"h2".to_vec()],
    };
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).expect("root certificate");
    let mut client = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .expect("client versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.key_log = keylog;
    client.alpn_protocols = alpn.clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der.to_vec()));
    let mut server = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("server versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .expect("server certificate");
    server.alpn_protocols = alpn;
    (Arc::new(client), Arc::new(server))
}

/// Moves what `from` wants to send to `to`; returns the bytes (one flight).
fn pump(from: &mut Connection, to: &mut Connection) -> Vec<u8> {
    let mut buf = Vec::new();
    while from.wants_write() {
        from.write_tls(&mut buf).expect("write_tls");
    }
    let mut rd = &buf[..];
    while !rd.is_empty() {
        to.read_tls(&mut rd).expect("read_tls");
        to.process_new_packets().expect("TLS error in the corpus");
    }
    buf
}

/// Plaintext `conn` has received so far.
fn received(conn: &mut Connection) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match conn.reader().read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => break, // WouldBlock: nothing more for now
        }
    }
    got
}

type Flights = Vec<(bool, i64, Vec<u8>)>;

/// One TLS connection in memory: its flights (direction, time, bytes) and what was
/// negotiated.
fn run_tls(
    spec: &ConnSpec,
    client_config: Arc<ClientConfig>,
    server_config: Arc<ServerConfig>,
    start: i64,
) -> (Flights, String) {
    let name = ServerName::try_from(spec.host.to_string()).expect("server name");
    let mut client = Connection::Client(
        rustls::ClientConnection::new(client_config, name).expect("client connection"),
    );
    let mut server = Connection::Server(
        rustls::ServerConnection::new(server_config).expect("server connection"),
    );
    let mut flights = Vec::new();
    // The handshake: flights 1 ms apart.
    let mut ts = start + 1_000;
    for _ in 0..16 {
        let up = pump(&mut client, &mut server);
        if !up.is_empty() {
            flights.push((true, ts, up));
            ts += 1_000;
        }
        let down = pump(&mut server, &mut client);
        if !down.is_empty() {
            flights.push((false, ts, down));
            ts += 1_000;
        }
        let busy = client.is_handshaking() || server.is_handshaking();
        if !busy && !client.wants_write() && !server.wants_write() {
            break;
        }
    }
    assert!(
        !client.is_handshaking(),
        "{}: handshake did not finish",
        spec.host
    );
    for (n, req) in spec.requests.iter().enumerate() {
        let at = start + 100_000 * (n as i64 + 1);
        if spec.key_update && n > 0 {
            client.refresh_traffic_keys().expect("KeyUpdate");
        }
        let up = match spec.app {
            App::Http1 => http1_request(req),
            App::H2 => h2_request(req, "https"),
        };
        client.writer().write_all(&up).expect("client write");
        let bytes = pump(&mut client, &mut server);
        flights.push((true, at, bytes));
        assert_eq!(
            received(&mut server),
            up,
            "{}: server got the request",
            spec.host
        );
        let down = match spec.app {
            App::Http1 => http1_response().to_vec(),
            App::H2 => h2_response(),
        };
        server.writer().write_all(&down).expect("server write");
        let bytes = pump(&mut server, &mut client);
        flights.push((false, at + 1_000, bytes));
        assert_eq!(
            received(&mut client),
            down,
            "{}: client got the response",
            spec.host
        );
    }
    client.send_close_notify();
    let bytes = pump(&mut client, &mut server);
    flights.push((true, start + 300_000, bytes));
    server.send_close_notify();
    let bytes = pump(&mut server, &mut client);
    flights.push((false, start + 301_000, bytes));
    let Connection::Client(c) = &client else {
        unreachable!()
    };
    let summary = format!(
        "{} {:?} {:?} alpn={} {:?}",
        spec.host,
        c.protocol_version(),
        c.negotiated_cipher_suite().map(|s| s.suite()),
        c.alpn_protocol()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .unwrap_or_default(),
        c.handshake_kind(),
    );
    (flights, summary)
}

/// The HTTP/1.1 bytes of a request.
pub fn http1_request(r: &Request) -> Vec<u8> {
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: ExampleShop/4.2 (Android 14)\r\n",
        r.method, r.path, r.host
    );
    if let Some(ct) = r.content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    if r.method != "GET" {
        head.push_str(&format!("Content-Length: {}\r\n", r.body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&r.body);
    bytes
}

fn http1_response() -> &'static [u8] {
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
}

/// An HTTP/2 frame.
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// HPACK integer with an `n`-bit prefix (RFC 7541 §5.1) after `first`'s high bits.
fn hpack_int(out: &mut Vec<u8>, first: u8, n: u32, mut value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

/// A literal header field without indexing, name from the static table (no Huffman).
fn hpack_literal(out: &mut Vec<u8>, name_index: usize, value: &[u8]) {
    hpack_int(out, 0x00, 4, name_index);
    hpack_int(out, 0x00, 7, value.len());
    out.extend_from_slice(value);
}

/// The client side of an HTTP/2 connection with one request on stream 1.
pub fn h2_request(r: &Request, scheme: &str) -> Vec<u8> {
    let mut block = Vec::new();
    // :method (static 2 GET, 3 POST), :scheme (6 http, 7 https)
    block.push(if r.method == "GET" { 0x82 } else { 0x83 });
    block.push(if scheme == "https" { 0x87 } else { 0x86 });
    hpack_literal(&mut block, 4, r.path.as_bytes()); // :path
    hpack_literal(&mut block, 1, r.host.as_bytes()); // :authority
    hpack_literal(&mut block, 58, b"ExampleShop/4.2 (Android 14)"); // user-agent
    if let Some(ct) = r.content_type {
        hpack_literal(&mut block, 31, ct.as_bytes()); // content-type
    }
    let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    bytes.extend(h2_frame(4, 0, 0, &[])); // SETTINGS
    let end_stream = if r.body.is_empty() { 0x1 } else { 0 };
    bytes.extend(h2_frame(1, 0x4 | end_stream, 1, &block)); // HEADERS, END_HEADERS
    if !r.body.is_empty() {
        bytes.extend(h2_frame(0, 0x1, 1, &r.body)); // DATA, END_STREAM
    }
    bytes
}

/// The server side: SETTINGS, the client's SETTINGS acknowledged, `:status 200`, "ok".
pub fn h2_response() -> Vec<u8> {
    let mut bytes = h2_frame(4, 0, 0, &[]);
    bytes.extend(h2_frame(4, 0x1, 0, &[]));
    bytes.extend(h2_frame(1, 0x4, 1, &[0x88])); // :status 200
    bytes.extend(h2_frame(0, 0x1, 1, b"ok"));
    bytes
}

/// One DNS answer (A record) per server, from the resolver to the phone, just before
/// the first connection.
fn dns_answers(specs: &[ConnSpec], out: &mut Vec<Packet>) {
    let mut seen: Vec<&str> = Vec::new();
    for spec in specs {
        if seen.contains(&spec.host) {
            continue;
        }
        seen.push(spec.host);
        let id = seen.len() as u16;
        let mut msg = Vec::new();
        msg.extend_from_slice(&id.to_be_bytes());
        msg.extend_from_slice(&[0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
        for label in spec.host.split('.') {
            msg.push(label.len() as u8);
            msg.extend_from_slice(label.as_bytes());
        }
        msg.extend_from_slice(&[0, 0, 1, 0, 1]);
        msg.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x01, 0x2c, 0, 4]);
        msg.extend_from_slice(&spec.server_ip);
        let ts = BASE_SECS * 1_000_000 + id as i64 * 1_000;
        out.push(Packet {
            ts_micros: ts,
            frame: udp_frame(RESOLVER_IP, 53, DEVICE_IP, 30_000 + id, &msg),
        });
    }
}

/// One TCP conversation being written.
struct Tcp {
    client: ([u8; 4], u16),
    server: ([u8; 4], u16),
    client_seq: u32,
    server_seq: u32,
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;
const FIN: u8 = 0x01;

impl Tcp {
    fn new(client_ip: [u8; 4], client_port: u16, server_ip: [u8; 4], server_port: u16) -> Self {
        Tcp {
            client: (client_ip, client_port),
            server: (server_ip, server_port),
            client_seq: 0x1000_0000u32.wrapping_add(client_port as u32 * 7919),
            server_seq: 0x5000_0000u32.wrapping_add(client_port as u32 * 104_729),
        }
    }

    fn segment(
        &mut self,
        from_client: bool,
        flags: u8,
        payload: &[u8],
        ts: i64,
        out: &mut Vec<Packet>,
    ) {
        let (src, dst, seq, ack) = if from_client {
            (self.client, self.server, self.client_seq, self.server_seq)
        } else {
            (self.server, self.client, self.server_seq, self.client_seq)
        };
        out.push(Packet {
            ts_micros: ts,
            frame: tcp_frame(from_client, src, dst, seq, ack, flags, payload),
        });
        let used = payload.len() as u32 + u32::from(flags & (SYN | FIN) != 0);
        if from_client {
            self.client_seq = self.client_seq.wrapping_add(used);
        } else {
            self.server_seq = self.server_seq.wrapping_add(used);
        }
    }

    fn open(&mut self, ts: i64, out: &mut Vec<Packet>) {
        let ack = self.server_seq;
        // The SYN carries no ACK number.
        self.server_seq = 0;
        self.segment(true, SYN, &[], ts, out);
        self.server_seq = ack;
        self.segment(false, SYN | ACK, &[], ts + 200, out);
        self.segment(true, ACK, &[], ts + 400, out);
    }

    fn data(&mut self, from_client: bool, bytes: &[u8], ts: i64, out: &mut Vec<Packet>) {
        for (i, chunk) in bytes.chunks(MSS).enumerate() {
            self.segment(from_client, ACK | PSH, chunk, ts + i as i64, out);
        }
    }

    fn close(&mut self, ts: i64, out: &mut Vec<Packet>) {
        self.segment(true, FIN | ACK, &[], ts, out);
        self.segment(false, FIN | ACK, &[], ts + 200, out);
        self.segment(true, ACK, &[], ts + 400, out);
    }
}

fn checksum(data: &[u8], initial: u32) -> u16 {
    let mut sum = initial;
    for pair in data.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn pseudo_sum(src: [u8; 4], dst: [u8; 4], proto: u8, len: usize) -> u32 {
    let mut sum = 0u32;
    for pair in src.chunks(2).chain(dst.chunks(2)) {
        sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    sum + u32::from(proto) + len as u32
}

fn ipv4(from_device: bool, src: [u8; 4], dst: [u8; 4], proto: u8, l4: &[u8]) -> Vec<u8> {
    let (smac, dmac) = if from_device {
        (DEVICE_MAC, GATEWAY_MAC)
    } else {
        (GATEWAY_MAC, DEVICE_MAC)
    };
    let mut f = Vec::with_capacity(14 + 20 + l4.len());
    f.extend_from_slice(&dmac);
    f.extend_from_slice(&smac);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + l4.len()) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 0, 0x40, 0, 64, proto, 0, 0]);
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let c = checksum(&ip, 0);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(l4);
    f
}

fn tcp_frame(
    from_device: bool,
    src: ([u8; 4], u16),
    dst: ([u8; 4], u16),
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut tcp = Vec::with_capacity(20 + payload.len());
    tcp.extend_from_slice(&src.1.to_be_bytes());
    tcp.extend_from_slice(&dst.1.to_be_bytes());
    tcp.extend_from_slice(&seq.to_be_bytes());
    tcp.extend_from_slice(&(if flags & ACK != 0 { ack } else { 0 }).to_be_bytes());
    tcp.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    tcp.extend_from_slice(payload);
    let c = checksum(&tcp, pseudo_sum(src.0, dst.0, 6, tcp.len()));
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
    ipv4(from_device, src.0, dst.0, 6, &tcp)
}

fn udp_frame(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = (8 + payload.len()) as u16;
    let mut udp = Vec::with_capacity(len as usize);
    udp.extend_from_slice(&sport.to_be_bytes());
    udp.extend_from_slice(&dport.to_be_bytes());
    udp.extend_from_slice(&len.to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    let c = checksum(&udp, pseudo_sum(src, dst, 17, udp.len()));
    udp[6..8].copy_from_slice(&c.to_be_bytes());
    ipv4(src == DEVICE_IP, src, dst, 17, &udp)
}

/// The packets as a classic pcap file (microseconds, Ethernet).
pub fn write_pcap(packets: &[Packet]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65_535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for p in sorted(packets) {
        out.extend_from_slice(&((p.ts_micros / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((p.ts_micros % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(p.frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&(p.frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&p.frame);
    }
    out
}

/// pcapng block: type, body (padded to 4 bytes), lengths around it.
fn block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
    let padded = body.len().div_ceil(4) * 4;
    let total = (12 + padded) as u32;
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(body);
    out.resize(out.len() + padded - body.len(), 0);
    out.extend_from_slice(&total.to_le_bytes());
}

/// The packets as pcapng (one Ethernet interface, microseconds); with `secrets`, a
/// Decryption Secrets Block holding that NSS key log comes before the first packet, as
/// `editcap --inject-secrets tls,KEYLOG` writes it.
pub fn write_pcapng(packets: &[Packet], secrets: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    block(&mut out, 0x0a0d_0d0a, &shb);
    let mut idb = Vec::new();
    idb.extend_from_slice(&1u16.to_le_bytes());
    idb.extend_from_slice(&0u16.to_le_bytes());
    idb.extend_from_slice(&0u32.to_le_bytes());
    block(&mut out, 0x0000_0001, &idb);
    if let Some(secrets) = secrets {
        let mut dsb = Vec::new();
        dsb.extend_from_slice(&0x544c_534bu32.to_le_bytes());
        dsb.extend_from_slice(&(secrets.len() as u32).to_le_bytes());
        dsb.extend_from_slice(secrets);
        dsb.resize(8 + secrets.len().div_ceil(4) * 4, 0);
        block(&mut out, 0x0000_000a, &dsb);
    }
    for p in sorted(packets) {
        let mut epb = Vec::new();
        let ts = p.ts_micros as u64;
        epb.extend_from_slice(&0u32.to_le_bytes());
        epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts as u32).to_le_bytes());
        epb.extend_from_slice(&(p.frame.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(p.frame.len() as u32).to_le_bytes());
        epb.extend_from_slice(&p.frame);
        epb.resize(20 + p.frame.len().div_ceil(4) * 4, 0);
        block(&mut out, 0x0000_0006, &epb);
    }
    out
}

/// Packets in time order (stable: a connection's packets keep their order).
fn sorted(packets: &[Packet]) -> Vec<&Packet> {
    let mut list: Vec<&Packet> = packets.iter().collect();
    list.sort_by_key(|p| p.ts_micros);
    list
}
