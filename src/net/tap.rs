//! The tap: frames in, [`Exchange`]s out. Owns the packet decoder, the flow table,
//! the DNS address → name map and the device resolver, and turns the flow table's
//! events into exchanges (DESIGN.md §2) with their host, device and evidence.
//!
//! Host of an exchange: the `Host` header (or the authority of an absolute request
//! target, or HTTP/2's `:authority`), else the TLS server name, else the name the device's DNS answers gave
//! the server's address at that time, else the address itself.
//! A QUIC flow's server
//! name comes from the ClientHello of its Initial packets (scheme `quic`).
//!
//! Traffic of clients that are no case device is turned into exchanges too (with no
//! device) and counted per address in [`TapStats::unknown_clients`], so a summary can
//! say what was not attributed instead of dropping it silently.
//!
//! Where the capture names the Android app of each packet (PCAPdroid's marks, see
//! [`crate::net::pcapdroid`]), an exchange names its connection's app, and whether
//! that is the case's app; exchanges are counted per app in [`TapStats::apps`].

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::case::DeviceResolver;
use crate::exchange::{
    Anomaly, AppRef, EvidenceRef, Exchange, Header, Response, SourceKind, TlsInfo,
};
use crate::net::capture::{Frame, LinkType};
use crate::net::dhcp;
use crate::net::dns::{self, DnsMap};
use crate::net::flow::{ConnInfo, DnsQueryAt, FlowEvent, FlowLimits, FlowStats, FlowTable, Proto};
use crate::net::gquic::GquicHello;
use crate::net::http1::{HttpRequest, HttpResponse};
use crate::net::http_dns;
use crate::net::keylog::{KeyLog, KeyLogStats};
use crate::net::packet::{PacketDecoder, PacketLimits, PacketStats};
use crate::net::pcapdroid::{self, AppStats, AppTable, AppTraffic, AppUnderTest, BlockError};
use crate::net::provisional_id::InputIds;
use crate::net::sniff::{self, AppProtocol};
use crate::net::tap_inputs::TapInputs;
use crate::net::text;
use crate::net::tls;
use crate::net::tls_decrypt::EchOutcome;
use crate::net::tls_fingerprint::Transport;
use crate::net::tunnel::UdpTunnelPorts;
use crate::net::unparsed::Part;
use crate::net::wpa::WlanKeys;

/// Addresses listed individually in [`TapStats::unknown_clients`]; the rest are
/// only counted in `unknown_clients_other`.
pub const MAX_UNKNOWN_CLIENTS_LISTED: usize = 1000;
/// `tls.ech` of an exchange named by the DNS answer that gave the ECH config its
/// unread ClientHello used (the inner server name never crossed the wire).
pub const ECH_NAMED_BY_DNS: &str = "named-by-dns";
/// Flows closed at a time at the end of input before their exchanges are handed on.
const FINISH_BATCH: usize = 256;

/// The first discriminator of the names of a connection's DNS-over-HTTPS queries:
/// far above its requests' indices and its DNS-over-TCP names' numbers.
const DOH_NAMES: u64 = 1 << 62;

/// Names of one DNS-over-HTTPS query made exchanges, at most (a query has one).
pub const MAX_DOH_NAMES: u64 = 256;

/// Whether bytes a client sent carry personal data: the analysis's search of a
/// case's values ([`Analyzer::data_probe`](crate::rules::Analyzer::data_probe)),
/// handed to the tap so that only the DNS queries and mDNS announcements it would
/// report become exchanges (a capture's every lookup would otherwise be one).
#[derive(Clone)]
pub struct DataProbe(pub Arc<ProbeFn>);

/// The search a [`DataProbe`] runs: whether the bytes carry personal data.
pub type ProbeFn = dyn Fn(&[u8]) -> bool + Send + Sync;

impl std::fmt::Debug for DataProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataProbe")
    }
}

/// Bounds of a tap.
#[derive(Debug, Clone, Default)]
pub struct TapLimits {
    pub packet: PacketLimits,
    pub flow: FlowLimits,
}

/// Counters of one tap.
#[derive(Debug, Clone, Default)]
pub struct TapStats {
    pub frames: u64,
    /// Captured bytes of all frames.
    pub bytes: u64,
    /// Frames that could not be decoded, by anomaly kind.
    pub packet_errors: BTreeMap<String, u64>,
    pub exchanges: u64,
    /// Exchanges per client address that is no case device.
    pub unknown_clients: BTreeMap<IpAddr, u64>,
    pub unknown_clients_other: u64,
    /// Exchanges per app UID, where the capture names apps (at most
    /// [`pcapdroid::MAX_APPS`] UIDs; the rest in `apps_other`) …
    pub apps: BTreeMap<i32, u64>,
    pub apps_other: u64,
    /// … and those of an app other than the case's.
    pub other_app_exchanges: u64,
    /// DNS-over-HTTPS queries and answers read in decrypted HTTP (the flow table
    /// counts the other DNS messages).
    pub doh_messages: u64,
    /// Lookups through HTTP DNS APIs (`net::http_dns`) read in HTTP.
    pub http_dns_lookups: u64,
    /// What DHCP said about the network's clients (to name unknown ones).
    pub dhcp: dhcp::DhcpClients,
}

/// Frames to exchanges.
pub struct Tap {
    decoder: PacketDecoder,
    flows: FlowTable,
    dns: DnsMap,
    devices: DeviceResolver,
    /// Device for traffic whose client is no case device (`--device`), if any.
    fallback_device: Option<String>,
    /// The files read (one, or a capture split into several), which name the
    /// exchanges and their evidence.
    inputs: TapInputs,
    source: SourceKind,
    stats: TapStats,
    events: Vec<FlowEvent>,
    apps: AppTable,
    app_under_test: AppUnderTest,
    /// Searches DNS query names ([`Tap::set_dns_probe`]); none: queries are not read.
    dns_probe: Option<DataProbe>,
}

impl Tap {
    /// A tap for one input. `file_sha256` names the evidence file (and seeds the
    /// exchange ids, so that the same file always gives the same ids).
    pub fn new(
        devices: DeviceResolver,
        fallback_device: Option<String>,
        file_sha256: Option<String>,
        source: SourceKind,
        limits: TapLimits,
    ) -> Self {
        let mut flow = limits.flow;
        // `http_exchange` drops response bodies (they are not analysed): not storing
        // them in the first place saves a copy and an allocation per response.
        flow.http.keep_response_bodies = false;
        Tap {
            decoder: PacketDecoder::new(limits.packet),
            flows: FlowTable::new(flow),
            dns: DnsMap::new(),
            devices,
            fallback_device,
            inputs: TapInputs::new(file_sha256),
            source,
            stats: TapStats::default(),
            events: Vec::new(),
            apps: AppTable::default(),
            app_under_test: AppUnderTest::default(),
            dns_probe: None,
        }
    }

    /// The case's app, which the apps a capture names are compared with.
    pub fn set_app_under_test(&mut self, app: AppUnderTest) {
        self.app_under_test = app;
    }

    /// Searches the names of the DNS queries clients send: a query with a name in
    /// which `probe` finds personal data becomes an exchange (see
    /// [`Tap::dns_query_exchange`]); the others stay out of the exchanges.
    pub fn set_dns_probe(&mut self, probe: DataProbe) {
        self.dns_probe = Some(probe);
        self.flows.set_dns_queries(true);
    }

    /// A pcapng custom block: PCAPdroid's are read, others skipped.
    pub fn custom_block(
        &mut self,
        pen: u32,
        data: &[u8],
        big_endian: bool,
    ) -> Result<(), BlockError> {
        if pen != pcapdroid::PEN {
            return Ok(());
        }
        self.apps.custom_block(data, big_endian)
    }

    /// Exchanges per app, busiest first (ties by UID).
    pub fn app_traffic(&self) -> Vec<AppTraffic> {
        let mut apps: Vec<AppTraffic> = self
            .stats
            .apps
            .iter()
            .map(|(&uid, &exchanges)| AppTraffic {
                app: self.app_ref(uid),
                exchanges,
            })
            .collect();
        apps.sort_by(|a, b| {
            b.exchanges
                .cmp(&a.exchanges)
                .then(a.app.uid.cmp(&b.app.uid))
        });
        apps
    }

    /// What the capture says about the app of `uid`, compared with the case's.
    fn app_ref(&self, uid: i32) -> AppRef {
        let name = self.apps.name(uid);
        AppRef {
            uid,
            package: name.and_then(|n| n.package.as_deref()).map(str::to_string),
            name: name.and_then(|n| n.label.as_deref()).map(str::to_string),
            under_test: name.and_then(|n| self.app_under_test.matches(uid, n)),
        }
    }

    /// Names exchanges with provisional ids (see [`crate::net::provisional_id`]) for
    /// a reader that learns the file's SHA-256 only at its end.
    pub fn use_provisional_ids(&mut self, ids: InputIds) {
        self.inputs.use_provisional_ids(ids);
    }

    /// Names the file being read, for evidence locators that span files.
    pub fn name_input(&mut self, name: &str) {
        self.inputs.set_name(name);
    }

    /// The next file of a capture split into several starts (see
    /// [`crate::net::tap_inputs`]): its connections continue those open now, its
    /// frames are numbered on, and its exchanges are named after it (`file_sha256`,
    /// and provisional ids when `ids` is given) unless they began in an earlier file.
    pub fn next_input(&mut self, file_sha256: Option<String>, name: &str, ids: Option<InputIds>) {
        self.inputs.start_next(file_sha256, name);
        if let Some(ids) = ids {
            self.inputs.use_provisional_ids(ids);
        }
    }

    /// Exchanges per file read, by the file of their first frame.
    pub fn input_exchanges(&self) -> Vec<u64> {
        self.inputs.exchanges()
    }

    pub fn stats(&self) -> &TapStats {
        &self.stats
    }

    /// What the capture's PCAPdroid marks gave.
    pub fn pcapdroid_stats(&self) -> &AppStats {
        &self.apps.stats
    }

    pub fn flow_stats(&self) -> &FlowStats {
        self.flows.stats()
    }

    pub fn packet_stats(&self) -> &PacketStats {
        self.decoder.stats()
    }

    /// Flows open right now.
    pub fn open_flows(&self) -> usize {
        self.flows.open_flows()
    }

    /// Adds an NSS key log's lines (a `--keylog` file, or a pcapng Decryption Secrets
    /// Block's data): TLS connections from now on are decrypted where it has their keys.
    pub fn add_keylog(&mut self, text: &[u8]) -> KeyLogStats {
        self.flows.add_keylog(text)
    }

    /// Starts over with this key log (secrets read ahead of the packets, see
    /// [`crate::source::pcap::secrets_ahead`]); key logs added later add to it.
    pub fn set_keylog(&mut self, keys: KeyLog) {
        self.flows.set_keylog(keys)
    }

    /// Adds the secrets of a key log read ahead of a later file's packets.
    pub fn add_keys(&mut self, keys: &KeyLog) {
        self.flows.add_keys(keys)
    }

    /// Reads UDP tunnels on these ports rather than IANA's (`--tunnel-port`).
    pub fn set_udp_tunnel_ports(&mut self, ports: UdpTunnelPorts) {
        self.decoder.set_udp_tunnel_ports(ports);
    }

    /// Decrypts WPA2-protected 802.11 frames with these keys (`--wlan-keys`).
    pub fn set_wlan_keys(&mut self, keys: Arc<WlanKeys>) {
        self.decoder.set_wlan_keys(keys);
    }

    /// The TLS secrets known so far.
    pub fn keylog(&self) -> &KeyLog {
        self.flows.keylog()
    }

    /// One captured frame; the exchanges it completes go to `out`.
    pub fn frame(&mut self, frame: &Frame<'_>, out: &mut dyn FnMut(Exchange)) {
        self.stats.frames += 1;
        self.stats.bytes += frame.data.len() as u64;
        let app_uid =
            self.apps
                .frame_uid(frame.data, frame.link == LinkType::Ethernet, frame.comment);
        let Tap {
            decoder,
            flows,
            devices,
            events,
            stats,
            ..
        } = self;
        let (ts, number) = (frame.ts, self.inputs.frame_number(frame.number));
        let decoded =
            decoder.decode_frame(ts, number, frame.link, frame.data, &mut |mut packet| {
                // A reassembled datagram started with its first fragment.
                let (ts, number) = packet.reassembled_from.unwrap_or((ts, number));
                packet.app_uid = app_uid;
                // DHCP between client and server ports names the network's clients.
                if let crate::net::packet::Transport::Udp {
                    src_port: 67 | 68,
                    dst_port: 67 | 68,
                    payload,
                } = packet.transport
                {
                    if let Some(m) = dhcp::parse(payload) {
                        stats.dhcp.note(&m);
                    }
                }
                flows.packet(ts, number, &packet, &*devices, events)
            });
        if let Err(e) = decoded {
            *stats.packet_errors.entry(e.kind().to_string()).or_default() += 1;
        }
        self.drain(out);
    }

    /// The capture's clock has reached `now` with no packet (a live capture gone
    /// quiet): see [`FlowTable::tick`].
    pub fn tick(&mut self, now: crate::timestamp::Timestamp, out: &mut dyn FnMut(Exchange)) {
        self.flows.tick(now, &mut self.events);
        self.drain(out);
    }

    /// End of input: every open flow is closed and its exchanges handed out, a few
    /// hundred flows at a time (a full table's events at once would take hundreds of
    /// megabytes).
    pub fn finish(&mut self, out: &mut dyn FnMut(Exchange)) {
        while self.flows.finish_some(FINISH_BATCH, &mut self.events) {
            self.drain(out);
        }
        self.drain(out);
    }

    fn drain(&mut self, out: &mut dyn FnMut(Exchange)) {
        // Most frames complete nothing: out before the loop's set-up (the exchange
        // building inlined below makes it a large frame).
        if self.events.is_empty() {
            return;
        }
        let mut events = std::mem::take(&mut self.events);
        for event in events.drain(..) {
            match event {
                FlowEvent::Dns { message, ts } => self.dns.insert_answers(&message, ts),
                FlowEvent::MdnsAnnouncement { conn, payload } => {
                    let carries = self.dns_probe.as_ref().is_some_and(|p| (p.0)(&payload));
                    if carries {
                        let x = self.mdns_exchange(&conn, payload);
                        self.emit(x, out);
                    }
                }
                FlowEvent::DnsQuery { conn, names, query } => {
                    let Some(probe) = self.dns_probe.clone() else {
                        continue;
                    };
                    for (i, name) in names.iter().enumerate() {
                        // The root (an empty name) names no receiver.
                        if !name.is_empty() && (probe.0)(name.as_bytes()) {
                            let x = self.dns_query_exchange(&conn, query, i as u64, name);
                            self.emit(x, out);
                        }
                    }
                }
                FlowEvent::Http {
                    conn,
                    index,
                    request,
                    response,
                    anomalies,
                } => {
                    // A DNS-over-HTTPS query's names are searched, and its answer
                    // (a key log opened it) names later connections, as over UDP.
                    if let Some(names) = dns::doh_query(
                        &request.method,
                        &request.target,
                        &request.headers,
                        &request.body,
                    ) {
                        self.stats.doh_messages += 1;
                        self.doh_query_exchanges(&conn, index, &request, &names, out);
                    }
                    if let Some(r) = response.as_deref() {
                        if let Some(answer) = dns::doh_answer(r.status, &r.headers, &r.body) {
                            self.dns.insert_answers(&answer, r.meta.ts);
                            self.stats.doh_messages += 1;
                        } else if let Some(lookup) = http_dns::lookup_request(
                            &request.target,
                            &request.headers,
                            &request.body,
                            r.status,
                            &r.headers,
                            &r.body,
                        ) {
                            // A lookup through an HTTP DNS API: the same, once its
                            // answer showed the request was one.
                            for answer in &lookup.answers {
                                self.dns.insert_answers(answer, r.meta.ts);
                            }
                            self.stats.http_dns_lookups += 1;
                            self.doh_query_exchanges(&conn, index, &request, &lookup.asked, out);
                        }
                    }
                    let x =
                        self.http_exchange(&conn, index, *request, response.map(|r| *r), anomalies);
                    self.emit(x, out);
                }
                // The DHCP server's side (its offers and acknowledgements) is no
                // client's transmission: its leases still name the clients
                // (`stats.dhcp`), and it makes no exchange, so the server is not
                // taken for a client that is no case device.
                FlowEvent::Metadata { conn, .. } if is_dhcp_server(&conn) => {}
                FlowEvent::Metadata {
                    conn,
                    anomalies,
                    payload,
                } => {
                    let mut x = self.metadata_exchange(&conn, anomalies);
                    // Still metadata only (no request was read); the analysis
                    // searches these bytes as the connection's `payload`.
                    x.request_body = payload;
                    self.emit(x, out);
                }
                FlowEvent::Part {
                    conn,
                    anomalies,
                    part,
                } => {
                    let x = self.part_exchange(&conn, part, anomalies);
                    self.emit(x, out);
                }
            }
        }
        self.events = events;
    }

    fn emit(&mut self, x: Exchange, out: &mut dyn FnMut(Exchange)) {
        self.stats.exchanges += 1;
        out(x);
    }

    /// The device of a connection's client, counting clients that are none.
    fn device(&mut self, conn: &ConnInfo) -> Option<String> {
        if let Some(id) = self.devices.resolve(conn.client.ip, conn.client.mac) {
            return Some(id.to_string());
        }
        let listed = self.stats.unknown_clients.len();
        if conn.client.ip.is_unspecified() {
            // A client before it has an address (DHCP's discover and request): no
            // address to list it by.
            self.stats.unknown_clients_other += 1;
            return self.fallback_device.clone();
        }
        match self.stats.unknown_clients.get_mut(&conn.client.ip) {
            Some(n) => *n += 1,
            None if listed < MAX_UNKNOWN_CLIENTS_LISTED => {
                self.stats.unknown_clients.insert(conn.client.ip, 1);
            }
            None => self.stats.unknown_clients_other += 1,
        }
        self.fallback_device.clone()
    }

    /// The app of an exchange, counted.
    fn app(&mut self, uid: i32) -> AppRef {
        let app = self.app_ref(uid);
        let listed = self.stats.apps.len();
        match self.stats.apps.get_mut(&uid) {
            Some(n) => *n += 1,
            None if listed < pcapdroid::MAX_APPS => {
                self.stats.apps.insert(uid, 1);
            }
            None => self.stats.apps_other += 1,
        }
        if app.under_test == Some(false) {
            self.stats.other_app_exchanges += 1;
        }
        app
    }

    /// An exchange of `conn`'s frames `first`..=`last`, `discriminator` its place in
    /// the connection: id, evidence, addresses, device, app and TLS.
    fn base_exchange(
        &mut self,
        conn: &ConnInfo,
        (first, last): (u64, u64),
        discriminator: u64,
        at: crate::timestamp::Timestamp,
    ) -> Exchange {
        // Both callers set scheme, method and path.
        let located = self
            .inputs
            .locate(conn.first_frame, (first, last), discriminator);
        let mut x = Exchange::blank(located.id, self.source, at);
        x.evidence = EvidenceRef {
            file_sha256: located.file_sha256,
            locator: located.locator,
            ..EvidenceRef::default()
        };
        x.client = Some(text::ip_string(conn.client.ip));
        x.server = Some(text::ip_string(conn.server.ip));
        x.device = self.device(conn);
        x.app = conn.app_uid.map(|uid| self.app(uid));
        let named_by_dns = self.ech_name(conn, at).is_some();
        x.tls = conn.tls.as_ref().map(|t| TlsInfo {
            version: t.version().map(|v| tls::version_name(v).to_string()),
            sni: t.sni().map(str::to_string),
            decrypted: t.decrypted(),
            decrypt_error: t.not_decrypted().map(ToString::to_string),
            ech: if named_by_dns {
                Some(ECH_NAMED_BY_DNS.to_string())
            } else {
                t.ech.map(|e| e.as_str().to_string())
            },
            outer_sni: t.outer_sni().map(str::to_string),
            ja3: t.client_hello.as_ref().map(|h| h.fingerprints.ja3()),
            ja4: t.client_hello.as_ref().map(|h| {
                h.fingerprints.ja4(match conn.proto {
                    Proto::Tcp => Transport::Tcp,
                    Proto::Udp => Transport::Quic,
                })
            }),
            server_certificate: t.server_certificate.clone(),
        });
        if x.tls.is_none() {
            x.tls = conn.gquic.as_deref().map(gquic_tls);
        }
        x
    }

    /// The server an unread ECH offer of `conn` was meant for, by the DNS answer
    /// that gave the device the config it used; see [`DnsMap::ech_name`]. (A
    /// decrypted connection's requests name their server themselves.)
    fn ech_name(&self, conn: &ConnInfo, at: crate::timestamp::Timestamp) -> Option<&str> {
        let t = conn.tls.as_ref()?;
        if t.ech != Some(EchOutcome::Offered) || t.decrypted() {
            return None;
        }
        let hello = t.client_hello.as_ref()?;
        let (Some(tls::Ech::Outer(offer)), Some(public_name)) = (&hello.ech, &hello.sni) else {
            return None;
        };
        self.dns
            .ech_name(conn.server.ip, public_name, offer.config_id, at)
    }

    /// The name of `conn`'s server: the name an unread ECH offer was meant for (by
    /// DNS), else the TLS server name, else the tunnel's target, else DNS, else the
    /// server certificate's name, else the address.
    fn server_name(&self, conn: &ConnInfo, at: crate::timestamp::Timestamp) -> String {
        if let Some(name) = self.ech_name(conn, at) {
            return name.to_string();
        }
        if let Some(sni) = conn.tls.as_ref().and_then(|t| t.sni()) {
            if !sni.is_empty() {
                return sni.to_ascii_lowercase();
            }
        }
        if let Some(sni) = conn.gquic.as_ref().and_then(|g| g.sni.as_deref()) {
            if !sni.is_empty() {
                return sni.to_string();
            }
        }
        if let Some(tunnel) = &conn.tunnel {
            let host = host_without_port(tunnel);
            if !host.is_empty() {
                return host;
            }
        }
        if let Some(name) = self.dns.lookup(conn.server.ip, at) {
            return name.to_string();
        }
        let certificate = conn
            .tls
            .as_ref()
            .and_then(|t| t.server_certificate.as_ref());
        if let Some(name) = certificate.and_then(|c| c.host.as_deref()) {
            return name.to_string();
        }
        text::ip_string(conn.server.ip)
    }

    fn http_exchange(
        &mut self,
        conn: &ConnInfo,
        index: u64,
        request: HttpRequest,
        response: Option<HttpResponse>,
        mut anomalies: Vec<Anomaly>,
    ) -> Exchange {
        let at = request.meta.ts;
        let last_frame = response
            .as_ref()
            .map(|r| r.meta.last_frame)
            .unwrap_or(request.meta.last_frame);
        let frames = (request.meta.first_frame, last_frame);
        let mut x = self.base_exchange(conn, frames, index, at);
        // Origin-form targets (the usual case) are the path: taken over without a copy.
        let (authority, path) = match split_target(&request.target) {
            (Some(authority), path) => (Some(authority), Some(path.to_string())),
            (None, _) => (None, None),
        };
        x.host =
            request_host(authority, &request.headers).unwrap_or_else(|| self.server_name(conn, at));
        // A WebSocket message (`WS`, see `flow`) is named as the proxy names it; HTTP
        // over UDP by UPnP's name for it.
        x.scheme = match (request.method == "WS", conn.tls.is_some()) {
            _ if conn.protocol == Some(AppProtocol::Httpu) => "httpu",
            (false, false) => "http",
            (false, true) => "https",
            (true, false) => "ws",
            (true, true) => "wss",
        }
        .to_string();
        x.method = request.method;
        x.path = path.unwrap_or(request.target);
        x.http_version = request.version;
        x.request_headers = request.headers;
        x.request_body = request.body;
        x.request_body_cut = request.truncated;
        x.beyond_cap = request.beyond_cap;
        anomalies.extend(request.anomalies);
        if let Some(r) = response {
            anomalies.extend(r.anomalies);
            x.response = Some(Response {
                status: r.status,
                headers: r.headers,
                // Response bodies are not analysed; not keeping them bounds memory.
                body: Vec::new(),
            });
        }
        x.anomalies = anomalies;
        x
    }

    fn metadata_exchange(&mut self, conn: &ConnInfo, anomalies: Vec<Anomaly>) -> Exchange {
        // One per connection: the discriminator cannot clash with a request's first frame.
        // Contact counts from the client's first bytes (the ClientHello), else the SYN.
        let at = conn.first_client_data.unwrap_or(conn.first_ts);
        let frames = (conn.first_frame, conn.last_frame);
        let mut x = self.base_exchange(conn, frames, u64::MAX, at);
        x.host = self.server_name(conn, at);
        x.scheme = match (conn.proto, &conn.tls) {
            (Proto::Tcp, Some(_)) => "tls",
            (Proto::Tcp, None) => "tcp",
            (Proto::Udp, _)
                if matches!(conn.protocol, Some(AppProtocol::Quic | AppProtocol::GQuic)) =>
            {
                "quic"
            }
            (Proto::Udp, _) if conn.protocol == Some(AppProtocol::Dhcp) => "dhcp",
            (Proto::Udp, _) => "udp",
        }
        .to_string();
        x.method = String::new();
        x.path = String::new();
        x.metadata_only = true;
        x.anomalies = anomalies;
        x
    }

    /// A DNS query whose `index`th name carries personal data: metadata only (scheme
    /// `dns`), named by that name, whose text is its payload for the analysis to
    /// search; the query's frames (a datagram's, or the segments of a query over TCP
    /// or decrypted TLS), at its time. The name is sent to the resolver and on to the
    /// name servers of its domain, which is its receiver.
    fn dns_query_exchange(
        &mut self,
        conn: &ConnInfo,
        query: DnsQueryAt,
        index: u64,
        name: &str,
    ) -> Exchange {
        let discriminator = query.first_name + index;
        let mut x = self.base_exchange(conn, query.frames, discriminator, query.ts);
        x.host = name.to_string();
        x.scheme = "dns".to_string();
        x.metadata_only = true;
        x.request_body = name.as_bytes().to_vec();
        x
    }

    /// The names of a DNS-over-HTTPS query or an HTTP DNS API lookup (the `index`th
    /// request of its connection) that carry personal data, each an exchange as the name of a query over UDP
    /// is ([`Tap::dns_query_exchange`], the request's frames and time): a name
    /// reaches the name servers of its domain whatever resolver carried it. The
    /// request to the resolver stays an exchange of its own, searched as one.
    fn doh_query_exchanges(
        &mut self,
        conn: &ConnInfo,
        index: u64,
        request: &HttpRequest,
        names: &[String],
        out: &mut dyn FnMut(Exchange),
    ) {
        let Some(probe) = self.dns_probe.clone() else {
            return;
        };
        // Apart from the discriminators of the connection's requests (their
        // indices) and of a query over TCP's names (counted from 0).
        let query = DnsQueryAt {
            ts: request.meta.ts,
            frames: (request.meta.first_frame, request.meta.last_frame),
            first_name: DOH_NAMES.wrapping_add(index.wrapping_mul(MAX_DOH_NAMES)),
        };
        for (i, name) in names.iter().enumerate().take(MAX_DOH_NAMES as usize) {
            if !name.is_empty() && (probe.0)(name.as_bytes()) {
                let x = self.dns_query_exchange(conn, query, i as u64, name);
                self.emit(x, out);
            }
        }
    }

    /// An mDNS announcement that carries personal data: metadata only (scheme
    /// `mdns`), named by where it went (the multicast group, by DNS or address), its
    /// bytes its payload; the datagram's frame, at its time. Every host of the local
    /// network receives it.
    fn mdns_exchange(&mut self, conn: &ConnInfo, payload: Vec<u8>) -> Exchange {
        let frames = (conn.first_frame, conn.first_frame);
        let mut x = self.base_exchange(conn, frames, 0, conn.first_ts);
        x.host = self.server_name(conn, conn.first_ts);
        x.scheme = "mdns".to_string();
        x.metadata_only = true;
        x.request_body = payload;
        x
    }

    /// A part of the client's bytes in a protocol no parser reads: part 0 is the
    /// connection's metadata exchange (from its first frame, at its client's first
    /// byte), each later one an exchange of its own frames at the time of its first
    /// byte.
    fn part_exchange(&mut self, conn: &ConnInfo, part: Part, anomalies: Vec<Anomaly>) -> Exchange {
        let (at, first) = if part.index == 0 {
            (conn.first_client_data.unwrap_or(part.at), conn.first_frame)
        } else {
            (part.at, part.first_frame)
        };
        // Part 0 has the discriminator of the metadata exchange it replaces; later
        // ones count down from it (an unread connection has no request to clash with).
        let discriminator = u64::MAX - part.index;
        let mut x = self.base_exchange(conn, (first, part.last_frame), discriminator, at);
        x.host = self.server_name(conn, at);
        x.scheme = match conn.proto {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
        .to_string();
        x.metadata_only = true;
        x.anomalies = anomalies;
        x.request_body = part.bytes;
        x.payload_lead = part.lead;
        x
    }
}

/// The `tls` of a Google QUIC flow's exchange: its version (`gQUIC Q043`), the
/// server name of its CHLO, and T05x's ClientHello's fingerprints; never decrypted.
fn gquic_tls(hello: &GquicHello) -> TlsInfo {
    TlsInfo {
        version: Some(format!("gQUIC {}", hello.version)),
        sni: hello.sni.clone(),
        decrypted: false,
        decrypt_error: Some(hello.not_read().to_string()),
        ech: None,
        outer_sni: None,
        ja3: hello.fingerprints.map(|f| f.ja3()),
        ja4: hello.fingerprints.map(|f| f.ja4(Transport::Quic)),
        server_certificate: None,
    }
}

/// `frames 10-14`, or `frame 10` for one.
pub fn frames(first: u64, last: u64) -> String {
    let mut s = String::with_capacity(48);
    if last > first {
        s.push_str("frames ");
        text::push_decimal(&mut s, first);
        s.push('-');
        text::push_decimal(&mut s, last);
    } else {
        s.push_str("frame ");
        text::push_decimal(&mut s, first);
    }
    s
}

/// The first and last frame of a locator [`frames`] wrote; `None` for any other text.
pub fn parse_frames(locator: &str) -> Option<(u64, u64)> {
    if let Some(range) = locator.strip_prefix("frames ") {
        let (a, b) = range.split_once('-')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    } else {
        let n = locator.strip_prefix("frame ")?.parse().ok()?;
        Some((n, n))
    }
}

/// [`exchange_id_from`] of a fresh seed (tests).
#[cfg(test)]
fn exchange_id(file_sha256: Option<&str>, first_frame: u64, discriminator: u64) -> String {
    exchange_id_from(&id_seed(file_sha256), first_frame, discriminator)
}

/// The hash state every exchange id of an input starts from.
pub(crate) fn id_seed(file_sha256: Option<&str>) -> Sha256 {
    let mut h = Sha256::new();
    h.update(file_sha256.unwrap_or("").as_bytes());
    h.update(b"pcap");
    h
}

/// A stable exchange id from the input (its [`id_seed`]), the connection's first frame
/// and the position of the exchange in it.
pub(crate) fn exchange_id_from(seed: &Sha256, first_frame: u64, discriminator: u64) -> String {
    let mut h = seed.clone();
    h.update(first_frame.to_be_bytes());
    h.update(discriminator.to_be_bytes());
    let digest = h.finalize();
    let mut id = String::with_capacity(18);
    id.push_str("x-");
    id.push_str(&crate::source::hex(&digest[..8]));
    id
}

/// Splits an absolute-form request target (`http://host:8080/p?q`, as sent to
/// proxies) into its authority and path; other targets are a path as they are.
fn split_target(target: &str) -> (Option<&str>, &str) {
    let rest = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
        .or_else(|| target.strip_prefix("HTTP://"))
        .or_else(|| target.strip_prefix("HTTPS://"));
    match rest {
        Some(rest) => match rest.find('/') {
            Some(i) => (Some(&rest[..i]), &rest[i..]),
            None => (Some(rest), "/"),
        },
        None => (None, target),
    }
}

/// Whether `conn` is a DHCP or DHCPv6 server's flow to a client (from the server
/// port: its side of the protocol).
fn is_dhcp_server(conn: &ConnInfo) -> bool {
    conn.proto == Proto::Udp
        && conn.protocol == Some(AppProtocol::Dhcp)
        && matches!(
            conn.client.port,
            sniff::DHCP_SERVER_PORT | sniff::DHCPV6_SERVER_PORT
        )
}

/// The host a request names: the authority of its absolute-form target, else its
/// `Host` field (HTTP/2: `:authority`, as a `host` field may be absent), without port,
/// lower case; `None` when absent or empty. Read in place: only the result is a new
/// string (the field was copied into one first, then normalised into another).
fn request_host(authority: Option<&str>, headers: &[Header]) -> Option<String> {
    let host = match authority {
        Some(a) => host_without_port(a),
        None => {
            let field = crate::exchange::header(headers, "host")
                .or_else(|| crate::exchange::header(headers, ":authority"))?;
            host_without_port(&String::from_utf8_lossy(field))
        }
    };
    Some(host).filter(|h| !h.is_empty())
}

/// `Host` value without its port, lower case: `[fd00::1]:8080` → `fd00::1`.
fn host_without_port(host: &str) -> String {
    let host = host.trim();
    let bare = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else if host.matches(':').count() == 1 {
        host.split(':').next().unwrap_or(host)
    } else {
        host
    };
    bare.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_hosts() {
        assert_eq!(split_target("/a?b"), (None, "/a?b"));
        assert_eq!(
            split_target("http://ex.com:8080/p?q=1"),
            (Some("ex.com:8080"), "/p?q=1")
        );
        assert_eq!(split_target("http://ex.com"), (Some("ex.com"), "/"));
        assert_eq!(host_without_port("Ex.COM:8080"), "ex.com");
        assert_eq!(host_without_port("[fd00::1]:80"), "fd00::1");
        assert_eq!(host_without_port("fd00::1"), "fd00::1");
        assert_eq!(host_without_port("ex.com."), "ex.com");
        assert_eq!(frames(3, 3), "frame 3");
        assert_eq!(frames(3, 9), "frames 3-9");
        assert_eq!(frames(9, 3), "frame 9");
        assert_eq!(frames(0, u64::MAX), format!("frames 0-{}", u64::MAX));
        for (a, b) in [(3, 3), (3, 9), (0, u64::MAX), (u64::MAX, u64::MAX)] {
            assert_eq!(parse_frames(&frames(a, b)), Some((a, b)));
        }
        for other in [
            "entry 3",
            "frames 3",
            "frame x",
            "frames 1-2-3",
            "frame -1",
            "",
        ] {
            assert_eq!(parse_frames(other), None, "{other}");
        }
    }

    /// The host as `http_exchange` found it before `request_host`: both candidates
    /// copied into strings first.
    fn request_host_model(authority: Option<&str>, headers: &[Header]) -> Option<String> {
        let authority = authority.map(str::to_string);
        let host_header = crate::exchange::header(headers, "host")
            .or_else(|| crate::exchange::header(headers, ":authority"))
            .map(|h| String::from_utf8_lossy(h).into_owned());
        authority
            .or(host_header)
            .map(|h| host_without_port(&h))
            .filter(|h| !h.is_empty())
    }

    proptest::proptest! {
        #[test]
        fn request_host_as_before(
            authority in proptest::option::of("[a-zA-Z0-9.:\\[\\] ]{0,12}"),
            fields in proptest::collection::vec(
                (
                    proptest::sample::select(vec!["Host", "host", ":authority", "X-Host"]),
                    proptest::collection::vec(
                        proptest::sample::select(b"aZ9.:[] \xff\xc3".to_vec()),
                        0..10,
                    ),
                ),
                0..4,
            ),
        ) {
            let headers: Vec<Header> =
                fields.into_iter().map(|(n, v)| Header::new(n, v)).collect();
            proptest::prop_assert_eq!(
                request_host(authority.as_deref(), &headers),
                request_host_model(authority.as_deref(), &headers)
            );
        }
    }

    #[test]
    fn ids_depend_on_file_frame_and_position() {
        let a = exchange_id(Some("aa"), 1, 1);
        assert_eq!(a, exchange_id(Some("aa"), 1, 1));
        assert_ne!(a, exchange_id(Some("ab"), 1, 1));
        assert_ne!(a, exchange_id(Some("aa"), 2, 1));
        assert_ne!(a, exchange_id(Some("aa"), 1, 2));
        assert!(a.starts_with("x-") && a.len() == 18);
        // The seeded form is the one-shot hash it replaced, byte for byte.
        let sha = "ab".repeat(32);
        let mut h = Sha256::new();
        h.update(sha.as_bytes());
        h.update(b"pcap");
        h.update(7u64.to_be_bytes());
        h.update(3u64.to_be_bytes());
        let want = format!("x-{}", crate::source::hex(&h.finalize()[..8]));
        assert_eq!(exchange_id(Some(&sha), 7, 3), want);
    }
}
