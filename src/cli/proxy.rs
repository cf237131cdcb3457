//! `consentry proxy --case FILE`: the intercepting proxy (see `crate::proxy`), with
//! the live consumer of its events: each exchange is analysed as it completes, each
//! finding printed at once (one line, as `tap` prints them, coloured by severity on
//! a terminal, or JSON lines), and exchanges, findings and consent events are written
//! as they happen: to the case store when the case file lives in a case directory,
//! else to `proxy-exchanges.jsonl`, `proxy-findings.jsonl` and `proxy-consent.jsonl`
//! beside the case file. SIGINT/SIGTERM stop accepting, drain in-flight exchanges (up
//! to [`DRAIN`]) and flush everything.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::anomaly_tally::AnomalyTally;
use super::live_store::{LiveStore, RunCase};
use super::prefetch;
use crate::case::{self, DeviceResolver};
use crate::consent::timeline::ConsentEvent;
use crate::exchange::Exchange;
use crate::parties::Classifier;
use crate::pii::Detector;
use crate::proxy::upstream::ProxyProtocol;
use crate::proxy::{self, ca, upstream, Event, Settings, Shared};
use crate::report::host_mask::HostMask;
use crate::rules::{finding_json, Analyzer, Finding, Observation, Options, Severity};

/// `eprintln!` that cannot panic: a proxy whose terminal went away (closed stderr
/// pipe) must still stop cleanly on a signal and keep recording.
macro_rules! note {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

/// How long in-flight exchanges may take to finish after a stop signal.
pub const DRAIN: Duration = Duration::from_secs(5);
/// Default of `--header-timeout` (as nginx's `client_header_timeout` and hyper's own).
pub const DEFAULT_HEADER_TIMEOUT: Duration = proxy::DEFAULT_HEADER_TIMEOUT;
/// Interval of the counters line on standard error.
const COUNTERS_EVERY: Duration = Duration::from_secs(60);
/// Name of the control token file in the CA directory.
pub const TOKEN_FILE: &str = "control-token";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LiveFormat {
    /// One line per finding, for people.
    Line,
    /// One JSON object per finding and line (the `analyze --format jsonl` shape).
    Jsonl,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The case file: devices (addresses, proxy users), identifiers, consent decisions.
    #[arg(long, value_name = "FILE", env = "CONSENTRY_CASE")]
    pub case: PathBuf,
    /// How clients reach the proxy: `regular`, an explicit HTTP and SOCKS5 proxy they
    /// are set up to use; `transparent`, connections the system redirects to it
    /// (iptables `REDIRECT`, nftables `redirect`, on this machine: a Linux gateway or
    /// access point the test phone goes through), each intercepted as a tunnel to its
    /// original destination (mitmproxy's `--mode transparent`). Connections made to
    /// the proxy's own address are still served as in `regular`.
    #[arg(long, value_enum, default_value_t = ProxyMode::Regular)]
    pub mode: ProxyMode,
    /// Address to listen on. Anything but loopback needs --proxy-auth.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:8080",
        env = "CONSENTRY_LISTEN"
    )]
    pub listen: SocketAddr,
    /// Directory of the CA (created on first run) [default: $XDG_DATA_HOME/consentry
    /// or ~/.local/share/consentry].
    #[arg(long, value_name = "DIR", env = "CONSENTRY_CA_DIR")]
    pub ca_dir: Option<PathBuf>,
    /// Control API address for `consentry consent`, or `off`.
    #[arg(long, value_name = "ADDR|off", default_value = "127.0.0.1:8081")]
    pub control: String,
    /// Token the control API requires (default: a random one written to
    /// `control-token` in the CA directory, where `consentry consent` finds it).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "CONSENTRY_CONTROL_TOKEN",
        hide_env_values = true
    )]
    pub control_token: Option<String>,
    /// Require `Proxy-Authorization: Basic` with this user and password; case devices'
    /// `proxy_user` names are accepted with the same password (and identify the device).
    #[arg(
        long,
        value_name = "USER:PASS",
        env = "CONSENTRY_PROXY_AUTH",
        hide_env_values = true
    )]
    pub proxy_auth: Option<String>,
    /// Let in clients whose address is one of the case's device `addresses` without
    /// credentials (phones whose proxy setting has no password field, as Android's);
    /// everyone else needs --proxy-auth, or is refused if none is given.
    #[arg(long)]
    pub allow_case_addresses: bool,
    /// Device of clients that no address or proxy user identifies (else `unknown`).
    #[arg(long, value_name = "ID")]
    pub device: Option<String>,
    /// Bytes of each request body the analysis sees in full; the rest is forwarded,
    /// searched for the case's known values as it passes, and the exchange marked
    /// `body-truncated`.
    #[arg(long, value_name = "BYTES", default_value_t = proxy::DEFAULT_BODY_CAP)]
    pub body_cap: usize,
    /// Tunnel hosts matching this regular expression without interception (repeatable).
    #[arg(long, value_name = "REGEX")]
    pub ignore_host: Vec<String>,
    /// Intercept only hosts matching this regular expression (repeatable); every other
    /// host is tunnelled as --ignore-host tunnels it, which still wins.
    #[arg(long, value_name = "REGEX")]
    pub allow_host: Vec<String>,
    /// Also trust these CA certificates (PEM) for upstream servers (repeatable).
    #[arg(long, value_name = "PEM")]
    pub upstream_ca: Vec<PathBuf>,
    /// Accept any upstream certificate (test labs only).
    #[arg(long)]
    pub danger_accept_invalid_upstream_certs: bool,
    /// Reach every server through this HTTP proxy, `http://[USER:PASS@]HOST:PORT`,
    /// or `https://…` to speak to it over TLS (mitmproxy's upstream mode): TLS,
    /// WebSockets and tunnels through `CONNECT`, plain HTTP requests in absolute form.
    /// Or through a SOCKS5 proxy, `socks5://[USER:PASS@]HOST:PORT` (`ssh -D`), which
    /// resolves the host names. Credentials (percent-encoded) go as
    /// `Proxy-Authorization: Basic`; set them through the environment to keep them
    /// out of the process list.
    #[arg(
        long,
        value_name = "URL",
        env = "CONSENTRY_UPSTREAM_PROXY",
        hide_env_values = true
    )]
    pub upstream_proxy: Option<String>,
    /// How findings are printed.
    #[arg(long, value_enum, default_value_t = LiveFormat::Line)]
    pub format: LiveFormat,
    /// Include the matched personal data values in the output.
    #[arg(long)]
    pub reveal: bool,
    /// Seconds a client may take to send a whole HTTP/1 request head, also while an
    /// idle keep-alive connection waits for the next one, and to get a new connection
    /// or CONNECT tunnel to its first request (first bytes, TLS handshake, HTTP/2
    /// preface); a client that takes longer is disconnected (slow or stalled clients
    /// cannot hold connections). An HTTP/2 connection with no stream open for as long
    /// is closed (GOAWAY). 0 = no limit.
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_HEADER_TIMEOUT.as_secs())]
    pub header_timeout: u64,
    /// Seconds a request or response body may go without a byte before it is cut
    /// (the exchange gets a `body-error` anomaly; a stalled upload gets a 408), and a
    /// response head may take once the request is sent (else a 504); long polls that
    /// stay silent longer need a higher value. 0 = no limit.
    #[arg(long, value_name = "SECONDS", default_value_t = proxy::DEFAULT_BODY_TIMEOUT.as_secs())]
    pub body_timeout: u64,
    /// Also answer DNS queries (UDP and TCP) on this address, relaying each to
    /// --dns-upstream: the phone's DNS server, or where the gateway redirects its
    /// port 53 (mitmproxy's DNS mode). A name that carries the case's data is judged
    /// as a capture's DNS query is, and the answers name the phone's later
    /// connections to those addresses. Only the clients admitted without credentials
    /// are answered (loopback; with --allow-case-addresses the case's devices, which
    /// anything but loopback needs), others get REFUSED.
    #[arg(long, value_name = "ADDR")]
    pub dns_listen: Option<SocketAddr>,
    /// The resolver --dns-listen relays to, `ADDR` (port 53) or `ADDR:PORT`
    /// [default: the first nameserver of /etc/resolv.conf].
    #[arg(long, value_name = "ADDR")]
    pub dns_upstream: Option<String>,
    /// Pass the ECH configs of DNS answers on as they are. By default --dns-listen
    /// switches them off, so that clients show the real server name in their
    /// ClientHello, which the proxy needs to intercept (mitmproxy's strip_ech).
    #[arg(long, requires = "dns_listen")]
    pub dns_keep_ech: bool,
}

/// Where the queries `--dns-listen` receives go: `--dns-upstream`, else the
/// system's first resolver.
fn dns_upstream(args: &Args) -> anyhow::Result<Option<SocketAddr>> {
    let Some(listen) = args.dns_listen else {
        if args.dns_upstream.is_some() {
            anyhow::bail!("--dns-upstream needs --dns-listen");
        }
        return Ok(None);
    };
    if !listen.ip().is_loopback() && !args.allow_case_addresses {
        anyhow::bail!(
            "--dns-listen {listen} is not a loopback address: give --allow-case-addresses (DNS queries carry no credentials; only the case's devices are answered)"
        );
    }
    let upstream = match &args.dns_upstream {
        Some(text) => proxy::dns_relay::parse_upstream(text)
            .with_context(|| format!("--dns-upstream {text:?} is not an address or ADDR:PORT"))?,
        None => {
            const RESOLV_CONF: &str = "/etc/resolv.conf";
            let conf = std::fs::read_to_string(RESOLV_CONF)
                .with_context(|| format!("reading {RESOLV_CONF} for --dns-upstream"))?;
            let ip = proxy::dns_relay::first_nameserver(&conf).with_context(|| {
                format!("{RESOLV_CONF} names no usable nameserver: give --dns-upstream")
            })?;
            SocketAddr::new(ip, 53)
        }
    };
    refuse_a_dns_loop(upstream, listen)?;
    Ok(Some(upstream))
}

/// A relay whose upstream is itself would send each query round.
fn refuse_a_dns_loop(upstream: SocketAddr, listen: SocketAddr) -> anyhow::Result<()> {
    let same_host = upstream.ip() == listen.ip()
        || (listen.ip().is_unspecified()
            && (upstream.ip().is_loopback() || upstream.ip().is_unspecified()));
    if upstream.port() == listen.port() && same_host {
        anyhow::bail!("--dns-upstream {upstream} is this relay itself (--dns-listen {listen}): every query would loop");
    }
    Ok(())
}

/// An upstream proxy that is this proxy itself would send every request round.
fn refuse_a_loop(
    proxy: Option<&upstream::UpstreamProxy>,
    listen: SocketAddr,
) -> anyhow::Result<()> {
    match proxy.filter(|p| p.is_at(listen)) {
        Some(p) => anyhow::bail!(
            "--upstream-proxy {} is this proxy itself: every request would loop",
            p.name()
        ),
        None => Ok(()),
    }
}

fn parse_auth(text: &str) -> anyhow::Result<(String, String)> {
    match text.split_once(':') {
        Some((u, p)) if !u.is_empty() && !p.is_empty() => Ok((u.to_string(), p.to_string())),
        _ => anyhow::bail!("--proxy-auth must be USER:PASS with both parts non-empty"),
    }
}

fn random_token() -> anyhow::Result<String> {
    let mut b = [0u8; 24];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .map_err(|_| anyhow::anyhow!("the system random source failed"))?;
    Ok(crate::store::record::hex(&b))
}

/// Writes the control token for `consentry consent` (mode 0600, replaced each run).
fn write_token(dir: &Path, token: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(TOKEN_FILE);
    let _ = std::fs::remove_file(&path);
    crate::store::write_new(&path, format!("{token}\n").as_bytes(), 0o600)?;
    Ok(path)
}

/// Where the proxy listens, whether in transparent mode, and its DNS relay.
type Place = (SocketAddr, bool, Option<DnsPlace>);

/// Where the DNS relay listens and relays to, and whether its answers keep their
/// Encrypted Client Hello configs (`--dns-keep-ech`): the answers it changed are
/// part of how the traffic came.
#[derive(Debug, Clone, Copy)]
struct DnsPlace {
    listen: SocketAddr,
    upstream: SocketAddr,
    keeps_ech: bool,
}

impl DnsPlace {
    /// What the relay did to the ECH configs in its answers.
    fn ech(&self) -> &'static str {
        if self.keeps_ech {
            "ECH configs kept"
        } else {
            "ECH configs switched off"
        }
    }
}

/// Where a run took its traffic, for its annotation record: the address, how the
/// traffic came (transparent mode: redirected to it) and where it went on.
fn run_place(
    (listen, transparent, dns): Place,
    upstream_proxy: Option<&upstream::UpstreamProxy>,
) -> String {
    let mut place = format!("on {listen}");
    if transparent {
        // How the traffic came to the proxy is part of the evidence.
        place.push_str(" in transparent mode");
    }
    if let Some(dns) = dns {
        place.push_str(&format!(
            ", DNS on {} relayed to {} ({})",
            dns.listen,
            dns.upstream,
            dns.ech()
        ));
    }
    if let Some(p) = upstream_proxy {
        let how = match p.protocol() {
            ProxyProtocol::Http => "",
            ProxyProtocol::Https => " (over TLS)",
            ProxyProtocol::Socks5 => " (SOCKS5)",
        };
        place.push_str(&format!(" through the upstream proxy {}{how}", p.name()));
    }
    place
}

/// `--mode`: how clients reach the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProxyMode {
    /// An explicit HTTP and SOCKS5 proxy.
    Regular,
    /// Connections redirected to the proxy by the system.
    Transparent,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (case, case_sha256) = case::load_hashed(&args.case)?;
    let case = Arc::new(case);
    if let Some(id) = &args.device {
        if case.device(id).is_none() {
            anyhow::bail!("--device {id:?} is not a device of the case");
        }
    }
    let proxy_auth = args.proxy_auth.as_deref().map(parse_auth).transpose()?;
    if args.allow_case_addresses && DeviceResolver::new(&case).is_empty() {
        anyhow::bail!("--allow-case-addresses: the case gives no device `addresses`");
    }
    let dns_upstream = dns_upstream(&args)?;
    let transparent = args.mode == ProxyMode::Transparent;
    if transparent && !args.listen.ip().is_loopback() && !args.allow_case_addresses {
        anyhow::bail!(
            "--mode transparent on {}, not a loopback address: give --allow-case-addresses (redirected clients cannot present --proxy-auth credentials; other clients' connections are passed on untouched)",
            args.listen
        );
    }
    if !args.listen.ip().is_loopback() && proxy_auth.is_none() && !args.allow_case_addresses {
        anyhow::bail!(
            "--listen {} is not a loopback address: give --proxy-auth USER:PASS (or --allow-case-addresses) so this is not an open proxy",
            args.listen
        );
    }
    let control: Option<SocketAddr> = match args.control.as_str() {
        "off" => None,
        a => Some(
            a.parse()
                .with_context(|| format!("--control {a:?} is not ADDR:PORT or off"))?,
        ),
    };
    let regexes = |option: &str, texts: &[String]| {
        texts
            .iter()
            .map(|r| regex::Regex::new(r).with_context(|| format!("{option} {r:?}")))
            .collect::<anyhow::Result<Vec<_>>>()
    };
    let ignore_hosts = regexes("--ignore-host", &args.ignore_host)?;
    let allow_hosts = regexes("--allow-host", &args.allow_host)?;
    let ca_dir = match &args.ca_dir {
        Some(d) => d.clone(),
        None => ca::default_dir()?,
    };
    let ca = ca::Ca::load_or_create(&ca_dir)?;
    let provider = proxy::tls_provider();
    // Two providers are compiled in (see Cargo.toml); code that asks rustls for the
    // process default must get ring. Already installed (a second run in one process)
    // is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let upstream_proxy = args
        .upstream_proxy
        .as_deref()
        .map(upstream::UpstreamProxy::parse)
        .transpose()
        .map_err(|why| anyhow::anyhow!("--upstream-proxy: {why}"))?;
    let upstream_opts = upstream::UpstreamOptions {
        extra_ca: args.upstream_ca.clone(),
        danger_accept_invalid_certs: args.danger_accept_invalid_upstream_certs,
        proxy: upstream_proxy,
    };
    let upstream = upstream::Upstream::new(&upstream_opts, provider.clone())?;
    // Checked before the run is recorded (and again once bound, for port 0).
    refuse_a_loop(upstream.proxy.as_deref(), args.listen)?;
    let token = match &args.control_token {
        Some(t) if !t.is_empty() => t.clone(),
        _ => random_token()?,
    };
    let mut output = Output::open(&args.case)?;
    let session = Timestamp::now().to_string();
    let (tx, rx) = proxy::events();
    // One detector for the analysis and for the bodies streamed past --body-cap.
    let detector = Arc::new(Detector::new(&case));
    // The analysis examines all of the --body-cap bytes it is given, also past its
    // default 8 MiB: the search past the cap starts where they end.
    let limits = crate::decode::Limits {
        max_body_bytes: args.body_cap.max(crate::decode::DEFAULT_MAX_BODY_BYTES),
        ..crate::decode::Limits::default()
    };
    let analyzer = Analyzer::with_parts(
        case.clone(),
        detector.clone(),
        Arc::new(Classifier::new(&case.app)),
        Options {
            reveal: args.reveal,
            limits: limits.clone(),
            ..Options::default()
        },
    );
    let settings = Settings {
        body_cap: args.body_cap,
        proxy_auth,
        ignore_hosts,
        allow_hosts,
        fallback_device: args.device.clone(),
        allow_case_addresses: args.allow_case_addresses,
        listen_port: None,
        detector: Some(detector),
        analysis_limits: limits,
        // Decoding and matching on the runtime's threads; the consumer judges.
        preparer: Some(proxy::PrepareHook(analyzer.preparer())),
        header_timeout: (args.header_timeout > 0).then(|| Duration::from_secs(args.header_timeout)),
        body_timeout: (args.body_timeout > 0).then(|| Duration::from_secs(args.body_timeout)),
        // Only exchanges written as JSON lines carry the response's header list; the
        // store keeps the raw heads instead.
        response_headers: !matches!(output, Output::Store(_)),
        transparent,
    };
    let files = super::ingest::side_files(&args.case, &case_sha256, &[], &[]);
    let run_case = RunCase {
        case: &case,
        options: super::ingest::options_of(&files, args.device.clone(), &Default::default()),
        files,
    };
    let dns_place = args
        .dns_listen
        .zip(dns_upstream)
        .map(|(listen, upstream)| DnsPlace {
            listen,
            upstream,
            keeps_ech: args.dns_keep_ech,
        });
    output.begin(
        run_case,
        &session,
        (args.listen, transparent, dns_place),
        upstream.proxy.as_deref(),
    )?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let listener = runtime
        .block_on(async { proxy::listen(args.listen) })
        .with_context(|| format!("listening on {}", args.listen))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    refuse_a_loop(upstream.proxy.as_deref(), bound)?;
    let settings = Settings {
        listen_port: Some(bound.port()),
        ..settings
    };
    let shared = Shared::new(&case, settings, &ca, tx, session.clone());
    let dns = match (args.dns_listen, dns_upstream) {
        (Some(listen), Some(upstream)) => {
            let socket = runtime
                .block_on(tokio::net::UdpSocket::bind(listen))
                .with_context(|| format!("DNS relay on {listen}"))?;
            let socket = proxy::reply_socket::ReplySocket::new(socket)
                .with_context(|| format!("DNS relay on {listen}"))?;
            let bound = socket
                .local_addr()
                .context("reading the DNS relay's address")?;
            refuse_a_dns_loop(upstream, bound)?;
            // TCP on the same address and port: clients retry there when a UDP
            // answer was truncated.
            let tcp = runtime
                .block_on(tokio::net::TcpListener::bind(bound))
                .with_context(|| format!("DNS relay on {bound} (TCP)"))?;
            // Names are searched as the analysis searches them, on the runtime.
            let probe = Some(analyzer.data_probe());
            let mut relay = proxy::dns_relay::DnsRelay::new(shared.clone(), upstream, probe);
            if args.dns_keep_ech {
                relay = relay.keeping_ech();
            }
            Some((Arc::new(relay), (socket, tcp), bound, upstream))
        }
        _ => None,
    };
    let control_listener = match control {
        Some(a) => {
            let l = runtime
                .block_on(tokio::net::TcpListener::bind(a))
                .with_context(|| format!("control API on {a}"))?;
            Some(l)
        }
        None => None,
    };
    if let Some(l) = &control_listener {
        let local = l.local_addr().context("reading the control address")?;
        if !local.ip().is_loopback() && args.control_token.is_none() {
            anyhow::bail!("--control {local} is not loopback: give --control-token");
        }
    }
    let token_path = write_token(&ca.dir, &token)?;

    let watch_shared = Arc::downgrade(&shared);
    let minter = ca::Minter::new(
        &ca,
        provider,
        Arc::new(move |o| {
            if let Some(s) = watch_shared.upgrade() {
                s.handshake_outcome(o);
            }
        }),
    )?;
    note!(
        "consentry: CA {} (SHA-256 {}){}",
        ca.dir.join(ca::CA_CERT_FILE).display(),
        ca.fingerprint(),
        if ca.created { ", created now" } else { "" }
    );
    note!("consentry: {}", output.describe());
    if let Some(l) = &control_listener {
        if let Ok(a) = l.local_addr() {
            note!(
                "consentry: control API on {a} (token in {})",
                token_path.display()
            );
        }
    }
    if let Some(p) = &upstream.proxy {
        let how = match (p.protocol(), p.has_credentials()) {
            (ProxyProtocol::Https, true) => " (over TLS, with credentials)",
            (ProxyProtocol::Https, false) => " (over TLS)",
            (ProxyProtocol::Socks5, true) => " (SOCKS5, with credentials)",
            (ProxyProtocol::Socks5, false) => " (SOCKS5)",
            (ProxyProtocol::Http, true) => " (with credentials)",
            (ProxyProtocol::Http, false) => "",
        };
        note!(
            "consentry: servers reached through the upstream proxy {}{how}",
            p.name()
        );
    }
    if let (Some((_, _, listen, upstream)), Some(place)) = (&dns, dns_place) {
        note!(
            "consentry: DNS listening on {listen} (UDP and TCP), relayed to {upstream}, {}",
            place.ech()
        );
    }
    if transparent {
        note!("consentry: proxy listening on {bound} for connections redirected to it (transparent mode), and for HTTP and SOCKS5 clients (Ctrl-C to stop)");
    } else {
        note!("consentry: proxy listening on {bound} for HTTP and SOCKS5 clients (Ctrl-C to stop)");
    }

    let format = args.format;
    let reveal = args.reveal;
    let anomaly_count = shared.counters.anomalies.clone();
    let consumer = std::thread::Builder::new()
        .name("consentry-analysis".into())
        .spawn(move || consume(rx, analyzer, output, format, reveal, anomaly_count))
        .context("starting the analysis thread")?;

    let core = proxy::serve::Core::new(shared.clone(), minter, upstream);
    let proxy_shared = shared.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (stop_rx_drain_tx, stop_rx_drain) = tokio::sync::watch::channel(false);
    let result: anyhow::Result<()> = runtime.block_on(async move {
        let dns_tasks = dns.map(|(relay, (socket, tcp), _, _)| {
            let pending = std::future::pending;
            let tcp = tokio::spawn(proxy::dns_relay::serve_tcp(relay.clone(), tcp, pending()));
            let udp = tokio::spawn(proxy::dns_relay::serve(relay, socket, pending()));
            [udp, tcp]
        });
        let control_task = control_listener.map(|l| {
            tokio::spawn(proxy::control::serve(
                l,
                proxy_shared.clone(),
                Arc::new(token),
            ))
        });
        // The core waits for every connection, tunnels and WebSockets included, after
        // the signal; one that never ends (a stream) must not hold the shutdown forever.
        tokio::spawn(async move {
            stop_signal().await;
            let _ = stop_tx.send(());
            let _ = stop_rx_drain_tx.send(true);
        });
        // The accept loop is a task on a runtime worker, not this thread's `block_on`:
        // a connection task it spawns then starts on the same worker, without a
        // hand-off to another thread and the wake-up (futex, eventfd) that costs per
        // connection (issue 4, new intercepted connections per second).
        let mut started = tokio::spawn(proxy::serve::run(core, listener, async move {
            let _ = stop_rx.await;
        }));
        let mut drain = stop_rx_drain;
        let drained = tokio::select! {
            r = &mut started => {
                if let Err(e) = r {
                    if e.is_panic() {
                        std::panic::resume_unwind(e.into_panic());
                    }
                }
                true
            }
            _ = async {
                let _ = drain.wait_for(|stopped| *stopped).await;
                tokio::time::sleep(DRAIN).await;
            } => {
                note!(
                    "consentry: connections still open after {} s; closing them",
                    DRAIN.as_secs()
                );
                // As when it ran here: the wait for the rest ends now.
                started.abort();
                false
            }
        };
        for t in control_task
            .into_iter()
            .chain(dns_tasks.into_iter().flatten())
        {
            t.abort();
        }
        // Exchanges whose connection ended are emitted as their last part lets go:
        // give them a moment to complete.
        let deadline = Instant::now() + if drained { DRAIN } else { Duration::ZERO };
        while proxy_shared.counters.in_flight.load(Ordering::Relaxed) > 0
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    });
    let in_flight = shared.counters.in_flight.load(Ordering::Relaxed);
    // The consumer stops when every sender is gone; connections still open hold
    // clones, so shut the runtime down (dropping them) without waiting for them.
    runtime.shutdown_timeout(Duration::from_millis(200));
    drop(shared);
    let summary = match consumer.join() {
        Ok(s) => s?,
        Err(_) => anyhow::bail!("the analysis thread failed"),
    };
    result?;
    note!(
        "consentry: {} exchanges, {} findings, {} consent events marked; anomalies: {}{}",
        summary.exchanges,
        summary.findings,
        summary.consents,
        summary.anomalies,
        if in_flight > 0 {
            format!("; {in_flight} exchanges were still open at shutdown")
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}

use crate::timestamp::Timestamp;

async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut t), Ok(mut i)) => {
            tokio::select! {
                _ = t.recv() => {}
                _ = i.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    note!("consentry: stopping: draining open exchanges");
}

/// What the consumer did.
#[derive(Debug, Default)]
struct Summary {
    exchanges: u64,
    findings: u64,
    consents: u64,
    /// The exchanges' own anomalies and those their analysis met.
    anomalies: AnomalyTally,
}

/// Events handled between two flushes (store commits), at most. Large: a commit
/// writes each touched page once (the ends of the records table and of the side
/// tables' indexes), so records per commit is what makes the store cheap per
/// exchange; [`FLUSH_AFTER`] bounds the wait.
const FLUSH_EVERY: usize = 4096;
/// Longest time a handled event waits for its store commit. Findings are printed at
/// once; only the commit is grouped: one per event cost a transaction, a chain-head
/// query and a WAL write each (an eighth of the proxy's CPU per new connection in
/// issue 4's profile).
const FLUSH_AFTER: Duration = Duration::from_millis(100);
/// Pause of the consumer after each batch of events it handled, so that under load
/// it takes them in batches (one wake-up per pause, not one per event). Adds at most
/// this much to the time a finding takes to be printed and stored; never limits the
/// rate (a batch takes whatever has queued meanwhile).
const COALESCE: Duration = Duration::from_millis(2);

/// Nice value of the analysis thread. It judges, prints and stores exchanges that
/// are already answered, so it can wait; the runtime threads (nice 0) hold clients'
/// requests. When the machine is busy, the scheduler then lets a runtime thread that
/// wakes preempt it instead of queueing behind a store commit (the p99 latency at a
/// fixed offered load, issue 4). Throughput is unchanged: the consumer still gets
/// every idle cycle, and the queue bounds how far it may fall behind.
const ANALYSIS_NICE: i32 = 10;

/// Lowers the calling thread's scheduling priority to [`ANALYSIS_NICE`]; a failure
/// only costs latency, so it is ignored.
fn yield_to_the_runtime_threads() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority only changes scheduling; under Linux (NPTL) the nice value
    // is per thread, and `who = 0` with PRIO_PROCESS names the calling thread.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, ANALYSIS_NICE);
    }
}

/// Analyses and writes every event until the proxy is gone.
fn consume(
    rx: proxy::EventReceiver,
    analyzer: Analyzer,
    output: Output,
    format: LiveFormat,
    reveal: bool,
    anomaly_count: Arc<AtomicU64>,
) -> anyhow::Result<Summary> {
    yield_to_the_runtime_threads();
    let mut c = Consumer {
        doh_probe: analyzer.data_probe(),
        hosts: HostMask::new(analyzer.data_probe(), reveal),
        analyzer,
        output,
        summary: Summary::default(),
        colour: io::stdout().is_terminal(),
        format,
        reveal,
        anomaly_count,
        stdout: BufWriter::with_capacity(STDOUT_BUFFER, io::stdout()),
        encoded: finding_json::Encoded::default(),
    };
    let mut last_counters = Instant::now();
    let mut error: Option<anyhow::Error> = None;
    // Events handled since the last flush, and when the first of them was.
    let mut unflushed = 0usize;
    let mut oldest: Option<Instant> = None;
    loop {
        let wait = match oldest {
            Some(t) => FLUSH_AFTER.saturating_sub(t.elapsed()),
            None => Duration::from_secs(1),
        };
        let mut handled = false;
        match rx.recv_timeout(wait) {
            Ok(ev) => {
                handled = true;
                // This event, then everything already queued. The next one is taken
                // before this one is handled, so that its memory is on its way
                // meanwhile (`prefetch`).
                let mut next = Some(ev);
                while let Some(ev) = next {
                    unflushed += 1;
                    next = if unflushed < FLUSH_EVERY {
                        rx.try_recv().ok()
                    } else {
                        None
                    };
                    if let Some(Event::Exchange(done)) = &next {
                        prefetch::exchange(&done.x);
                    }
                    if let Err(e) = c.handle(ev) {
                        note!("consentry: error: writing results: {e:#}");
                        error.get_or_insert(e);
                    }
                }
                // Everything queued is handled: its findings reach the terminal now,
                // in one write rather than one per line.
                c.flush_stdout();
                oldest.get_or_insert_with(Instant::now);
            }
            Err(RecvTimeoutError::Timeout) => {
                if oldest.is_none() && last_counters.elapsed() >= COUNTERS_EVERY {
                    last_counters = Instant::now();
                    note!(
                        "consentry: {} exchanges, {} findings, {} anomalies so far",
                        c.summary.exchanges,
                        c.summary.findings,
                        c.summary.anomalies.total()
                    );
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
        // One flush per FLUSH_EVERY events or, for the store (a commit is costly),
        // FLUSH_AFTER; files are flushed whenever the queue is empty (cheap, and a
        // reader of the JSON lines sees whole lines sooner).
        let after = match c.output {
            Output::Store(_) => FLUSH_AFTER,
            Output::Files { .. } => Duration::ZERO,
        };
        if unflushed >= FLUSH_EVERY || oldest.is_some_and(|t| t.elapsed() >= after) {
            if let Err(e) = c.output.flush() {
                note!("consentry: error: writing results: {e:#}");
                error.get_or_insert(e);
            }
            unflushed = 0;
            oldest = None;
        }
        if handled {
            // Let the next events gather rather than waking for each one: a wake-up
            // costs the proxy thread that sends a futex call and this one a context
            // switch, per event, once the consumer keeps up easily.
            std::thread::sleep(COALESCE);
        }
    }
    c.flush_stdout();
    c.output.flush()?;
    match error {
        Some(e) => Err(e),
        None => Ok(c.summary),
    }
}

/// Bytes of findings printed between two writes to standard output, at most.
const STDOUT_BUFFER: usize = 64 * 1024;

/// The analysis and the outputs, on the consumer thread.
struct Consumer {
    analyzer: Analyzer,
    output: Output,
    summary: Summary,
    colour: bool,
    format: LiveFormat,
    /// `--reveal`: a first anomaly's line gives its detail.
    reveal: bool,
    /// `summary.anomalies`' total, for the control API's `/status`.
    anomaly_count: Arc<AtomicU64>,
    /// Findings printed, written out whenever the queue is empty ([`consume`]).
    stdout: BufWriter<io::Stdout>,
    /// The findings of the exchange at hand as JSON (buffer reused).
    encoded: finding_json::Encoded,
    /// Which names of a DNS-over-HTTPS query become exchanges of their own.
    doh_probe: crate::net::tap::DataProbe,
    /// Host names as the lines show them: masked where they carry data.
    hosts: HostMask,
}

impl Consumer {
    fn flush_stdout(&mut self) {
        // A closed stdout (`| head`) must not stop the recording.
        let _ = self.stdout.flush();
    }

    /// Prints `x`'s findings and records it with them; counts its anomalies, and says
    /// the first of each kind.
    fn record(&mut self, x: &Exchange, obs: Observation) -> anyhow::Result<()> {
        let anomalies = &mut self.summary.anomalies;
        for line in anomalies.add_exchange(x, &obs.anomalies, &mut self.hosts, self.reveal) {
            note!("{line}");
        }
        if !x.anomalies.is_empty() || !obs.anomalies.is_empty() {
            self.anomaly_count
                .store(self.summary.anomalies.total(), Ordering::Relaxed);
        }
        // Each finding encoded once: the line printed and the record stored are the
        // same bytes.
        let encoded = &mut self.encoded;
        encoded.encode(&obs.findings);
        for (f, json) in obs.findings.iter().zip(encoded.iter()) {
            self.summary.findings += 1;
            let out = &mut self.stdout;
            let _ = match self.format {
                LiveFormat::Jsonl => out.write_all(json).and_then(|()| out.write_all(b"\n")),
                LiveFormat::Line => {
                    let host = self.hosts.show(&f.destination.host);
                    writeln!(out, "{}", painted(f, &host, self.colour))
                }
            };
        }
        self.output
            .exchange(x, &obs.findings, encoded, &obs.consent_events)
    }

    fn handle(&mut self, ev: Event) -> anyhow::Result<()> {
        match ev {
            Event::Exchange(done) => {
                let proxy::Finished { x, prepared } = *done;
                self.summary.exchanges += 1;
                let obs = match prepared {
                    Some(p) => self.analyzer.judge(&x, p),
                    None => self.analyzer.observe(&x),
                };
                self.record(&x, obs)?;
                for name in crate::source::doh_names::doh_name_exchanges(&x, &self.doh_probe) {
                    self.summary.exchanges += 1;
                    let obs = self.analyzer.observe(&name);
                    self.record(&name, obs)?;
                }
                Ok(())
            }
            Event::Consent(e) => {
                self.summary.consents += 1;
                note!("consentry: {}", crate::proxy::page::describe(&e).trim_end());
                self.analyzer.add_consent(e.clone());
                self.output.consent(&e)
            }
            Event::Notice(n) => {
                // A notice names hosts, and may quote an error naming them again.
                note!("consentry: {}", self.hosts.mask_text(&n));
                Ok(())
            }
        }
    }
}

/// The `tap` line, coloured by severity on a terminal.
fn painted(f: &Finding, host: &str, colour: bool) -> String {
    let line = super::finding_line(f, host);
    if !colour {
        return line;
    }
    let code = match f.severity {
        Severity::High => "31",
        Severity::Medium => "33",
        Severity::Low => "36",
    };
    format!("\x1b[{code}m{line}\x1b[0m")
}

/// Where results go: the case store, or JSON lines files beside the case file.
enum Output {
    Store(Box<LiveStore>),
    Files {
        dir: PathBuf,
        exchanges: BufWriter<File>,
        findings: BufWriter<File>,
        consent: BufWriter<File>,
    },
}

fn append_file(path: &Path) -> anyhow::Result<BufWriter<File>> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map(BufWriter::new)
        .with_context(|| format!("opening {}", path.display()))
}

fn jsonl<T: serde::Serialize>(w: &mut BufWriter<File>, v: &T) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *w, v)?;
    w.write_all(b"\n")?;
    Ok(())
}

impl Output {
    fn open(case_file: &Path) -> anyhow::Result<Output> {
        let parent = match case_file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if let Some(store) = LiveStore::open_beside(case_file, "proxy")? {
            return Ok(Output::Store(Box::new(store)));
        }
        Ok(Output::Files {
            exchanges: append_file(&parent.join("proxy-exchanges.jsonl"))?,
            findings: append_file(&parent.join("proxy-findings.jsonl"))?,
            consent: append_file(&parent.join("proxy-consent.jsonl"))?,
            dir: parent,
        })
    }

    fn describe(&self) -> String {
        match self {
            Output::Store(s) => format!("recording into the case store of {}", s.dir.display()),
            Output::Files { dir, .. } => format!(
                "recording into proxy-exchanges.jsonl, proxy-findings.jsonl, proxy-consent.jsonl in {}",
                dir.display()
            ),
        }
    }

    /// The run's start in the store: where it listens, and the upstream proxy its
    /// traffic went through (the servers' answers passed through it too).
    fn begin(
        &mut self,
        case: RunCase,
        session: &str,
        place: Place,
        upstream_proxy: Option<&upstream::UpstreamProxy>,
    ) -> anyhow::Result<()> {
        if let Output::Store(store) = self {
            let place = run_place(place, upstream_proxy);
            store.begin(Some(case), session, &place)?;
        }
        Ok(())
    }

    /// `encoded[i]` is `findings[i]` as JSON.
    fn exchange(
        &mut self,
        x: &Exchange,
        findings: &[Finding],
        encoded: &finding_json::Encoded,
        wire: &[ConsentEvent],
    ) -> anyhow::Result<()> {
        match self {
            Output::Store(store) => store.exchange_json(x, findings, encoded, wire)?,
            Output::Files {
                exchanges,
                findings: fw,
                consent,
                ..
            } => {
                jsonl(exchanges, x)?;
                for json in encoded.iter() {
                    fw.write_all(json)?;
                    fw.write_all(b"\n")?;
                }
                for e in wire {
                    jsonl(consent, e)?;
                }
            }
        }
        Ok(())
    }

    fn consent(&mut self, e: &ConsentEvent) -> anyhow::Result<()> {
        match self {
            Output::Store(store) => store.consent(e)?,
            Output::Files { consent, .. } => jsonl(consent, e)?,
        }
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        match self {
            Output::Store(store) => store.commit()?,
            Output::Files {
                exchanges,
                findings,
                consent,
                ..
            } => {
                // Findings before their exchanges: a reader that sees an exchange
                // sees its findings.
                findings.flush()?;
                consent.flush()?;
                exchanges.flush()?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dns_relay_that_would_ask_itself_is_refused() {
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(refuse_a_dns_loop(at("127.0.0.1:5353"), at("127.0.0.1:5353")).is_err());
        assert!(refuse_a_dns_loop(at("127.0.0.1:53"), at("0.0.0.0:53")).is_err());
        assert!(refuse_a_dns_loop(at("127.0.0.1:53"), at("127.0.0.1:5353")).is_ok());
        assert!(refuse_a_dns_loop(at("192.0.2.53:53"), at("0.0.0.0:53")).is_ok());
        assert!(refuse_a_dns_loop(at("127.0.0.53:53"), at("127.0.0.1:53")).is_ok());
    }

    #[test]
    fn the_run_record_says_how_traffic_came_and_went() {
        let listen: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(run_place((listen, false, None), None), "on 0.0.0.0:8080");
        assert_eq!(
            run_place((listen, true, None), None),
            "on 0.0.0.0:8080 in transparent mode"
        );
        let socks = upstream::UpstreamProxy::parse("socks5://127.0.0.1:1080").unwrap();
        assert_eq!(
            run_place((listen, true, None), Some(&socks)),
            "on 0.0.0.0:8080 in transparent mode through the upstream proxy 127.0.0.1:1080 (SOCKS5)"
        );
        let dns = DnsPlace {
            listen: "0.0.0.0:53".parse().unwrap(),
            upstream: "192.0.2.53:53".parse().unwrap(),
            keeps_ech: false,
        };
        assert_eq!(
            run_place((listen, true, Some(dns)), None),
            "on 0.0.0.0:8080 in transparent mode, DNS on 0.0.0.0:53 relayed to 192.0.2.53:53 (ECH configs switched off)"
        );
        let keeping = DnsPlace {
            keeps_ech: true,
            ..dns
        };
        assert_eq!(
            run_place((listen, false, Some(keeping)), None),
            "on 0.0.0.0:8080, DNS on 0.0.0.0:53 relayed to 192.0.2.53:53 (ECH configs kept)"
        );
    }
}
