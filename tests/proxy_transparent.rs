//! `consentry proxy --mode transparent` in network namespaces the tests create
//! (`unshare(CLONE_NEWNET)` on the test's thread, so the servers, the proxy, curl and
//! iptables all run inside it): the connections of one user (`nobody`, uid 65534) to
//! 127.0.0.2 are redirected to the proxy by iptables `REDIRECT`, as a Linux gateway
//! redirects a test phone's, and must be intercepted as tunnels to their original
//! destination. Needs root and iptables (`.ci/run` installs it): without them the
//! test fails and says so, unless `CONSENTRY_SKIP_LIVE=1` asks to skip it (the
//! live tap's policy).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use common::proxy_harness::*;

/// The user whose connections the rule redirects.
const REDIRECTED_UID: &str = "65534";

/// Moves this thread (and every process and thread it starts from now on) into a new
/// network namespace with its loopback up; `false` when that is not allowed here.
fn enter_new_network_namespace() -> bool {
    // SAFETY: unshare takes no pointers; CLONE_NEWNET affects only the calling thread.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return false;
    }
    run("ip", &["link", "set", "lo", "up"])
}

/// Enters a new network namespace where `tables` (iptables or ip6tables) works:
/// `true`; else fails the test saying why, or returns `false` (skip) when
/// `CONSENTRY_SKIP_LIVE` is set.
fn in_a_namespace_of_its_own(tables: &str) -> bool {
    if enter_new_network_namespace() && run(tables, &["-t", "nat", "-L", "-n"]) {
        return true;
    }
    let why = format!("needs root (a network namespace of its own) and {tables}");
    if std::env::var_os("CONSENTRY_SKIP_LIVE").is_some() {
        eprintln!("skipped: {why}");
        return false;
    }
    panic!("{why} (set CONSENTRY_SKIP_LIVE=1 to skip)");
}

/// The name of the tests' servers: `.test` names resolve nowhere, so only the
/// address the client chose can reach them.
const SERVER_NAME: &str = "shop.consentry.test";

/// A temporary directory the redirected user can read (certificates go there).
fn readable_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// The proxy's CA certificate where the redirected user can read it.
fn readable_ca(p: &Proxy, dir: &std::path::Path) -> String {
    let ca = dir.join("proxy-ca.pem");
    std::fs::copy(p.ca_pem(), &ca).unwrap();
    std::fs::set_permissions(&ca, std::fs::Permissions::from_mode(0o644)).unwrap();
    ca.to_str().unwrap().to_string()
}

fn run(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// curl as the redirected user.
fn curl_redirected(args: &[&str]) -> String {
    let user = [
        "setpriv",
        "--reuid",
        REDIRECTED_UID,
        "--regid",
        REDIRECTED_UID,
    ];
    String::from_utf8(curl_under(&[&user[..], &["--clear-groups"]].concat(), args)).unwrap()
}

/// Redirects the redirected user's TCP connections to `to` (port `dport`, else any)
/// to the proxy's `port`, with `tables` (iptables or ip6tables).
fn redirect(tables: &str, to: &str, dport: Option<&str>, port: &str) {
    let mut rule = vec!["-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-d", to];
    if let Some(d) = dport {
        rule.extend(["--dport", d]);
    }
    rule.extend(["-m", "owner", "--uid-owner", REDIRECTED_UID]);
    rule.extend(["-j", "REDIRECT", "--to-ports", port]);
    assert!(run(tables, &rule), "{tables} {rule:?}");
}

/// Redirected HTTPS (HTTP/1.1 and HTTP/2 from the client) and plain HTTP reach their
/// server through the proxy, under the name the client used; the exchanges are
/// named by it, carry the original destination as their server and give their
/// findings; a connection made to the proxy's own port is still an explicit proxy
/// client's.
#[test]
fn redirected_connections_are_intercepted_as_tunnels_to_their_destination() {
    if !in_a_namespace_of_its_own("iptables") {
        return;
    }
    let rt = rt();
    let dir = readable_tempdir();
    let up = upstreams(&rt, dir.path());
    let name = SERVER_NAME;
    let server = named_only_server(&rt, dir.path(), "127.0.0.2", name);
    let named_ca = dir.path().join(format!("{name}.pem"));
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let p = Proxy::start_for_with(
        dir.path(),
        &case,
        &up,
        &[
            "--mode",
            "transparent",
            "--upstream-ca",
            named_ca.to_str().unwrap(),
        ],
    );
    let port = p.addr.port().to_string();
    redirect("iptables", "127.0.0.2", None, &port);
    // And plain HTTP to the other upstream server (the proxy's own connection to it,
    // as root, is not redirected).
    let http_port = up.http.port().to_string();
    redirect("iptables", "127.0.0.1", Some(&http_port), &port);
    let ca = readable_ca(&p, dir.path());
    let ca = ca.as_str();
    let resolve = format!("{name}:{}:127.0.0.2", server.port());
    for (version, path) in [
        ("--http1.1", "/redirected-h1"),
        ("--http2", "/redirected-h2"),
    ] {
        let url = format!("https://{name}:{}{path}?adid={AD_ID}", server.port());
        assert_eq!(
            curl_redirected(&[version, "--resolve", &resolve, "--cacert", ca, &url]),
            format!("host={name}:{} path={path}?adid={AD_ID}\n", server.port()),
        );
    }
    let plain = format!("http://{}/redirected-plain?adid={AD_ID}", up.http);
    let host = format!("Host: {name}");
    assert_eq!(
        curl_redirected(&["-H", &host, &plain]),
        format!("hello /redirected-plain?adid={AD_ID}\n")
    );
    // Without the redirection (root's own connection) the server answers the same:
    // the proxy was in the way only for the redirected user.
    let direct = curl(&[
        "--resolve",
        &resolve,
        "--cacert",
        named_ca.to_str().unwrap(),
        &format!("https://{name}:{}/direct", server.port()),
    ]);
    assert_eq!(
        String::from_utf8(direct).unwrap(),
        format!("host={name}:{} path=/direct\n", server.port())
    );
    p.wait_exchanges("redirected", |xs| {
        xs.iter().filter(|x| x["host"] == name).count() == 3
    });
    for x in p.jsonl("proxy-exchanges.jsonl") {
        let to = match x["scheme"].as_str() {
            Some("https") => server,
            _ => up.http,
        };
        assert_eq!(x["host"], name, "{x:#?}");
        assert_eq!(x["server"], to.to_string(), "{x:#?}");
        assert_eq!(x["device"], "pixel7", "{x:#?}");
        assert_eq!(x["response"]["status"], 200, "{x:#?}");
    }
    let f = p.findings_for(&format!("/redirected-h1?adid={AD_ID}"));
    assert_eq!(f[0]["rule"], "share-before-consent", "{f:#?}");
    // A client that connects to the proxy itself is an explicit proxy client.
    let http = format!("http://{}/explicit?adid={AD_ID}", up.http);
    assert_eq!(
        String::from_utf8(curl(&["--proxy", &format!("http://{}", p.addr), &http])).unwrap(),
        format!("hello /explicit?adid={AD_ID}\n")
    );
    let (status, _) = p.stop();
    assert!(status.success());

    // A proxy that lets in only the case's devices by address, and a client that is
    // none: its redirected connection reaches the server untouched (the server's own
    // certificate, not one of ours) and is not recorded.
    let others = tempfile::tempdir().unwrap();
    let case = case_file(others.path(), r#"addresses = ["192.0.2.7"]"#);
    let extra = ["--mode", "transparent", "--allow-case-addresses"];
    let p = Proxy::start_for_with(others.path(), &case, &up, &extra);
    assert!(run("iptables", &["-t", "nat", "-F", "OUTPUT"]));
    let port = p.addr.port().to_string();
    redirect("iptables", "127.0.0.2", None, &port);
    let url = format!("https://{name}:{}/not-a-device", server.port());
    assert_eq!(
        curl_redirected(&[
            "--resolve",
            &resolve,
            "--cacert",
            named_ca.to_str().unwrap(),
            &url
        ]),
        format!("host={name}:{} path=/not-a-device\n", server.port()),
    );
    // Said once on the console, so a tester sees why nothing is recorded.
    let said = "connections redirected from 127.0.0.1 are passed on unrecorded";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !p.stderr.lock().unwrap().iter().any(|l| l.contains(said)) {
        assert!(
            std::time::Instant::now() < deadline,
            "no notice: {:?}",
            p.stderr
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(p.jsonl("proxy-exchanges.jsonl").is_empty());
    let (status, _) = p.stop();
    assert!(status.success());
}

/// IPv6, and one dual-stack listener for both families (`--listen [::]:0`): a
/// connection redirected with ip6tables is read by the option's IPv6 form, an IPv4
/// one arriving IPv4-mapped by its IPv4 form.
#[test]
fn redirected_ipv6_and_ipv4_connections_share_a_dual_stack_listener() {
    if !in_a_namespace_of_its_own("ip6tables") {
        return;
    }
    let rt = rt();
    let dir = readable_tempdir();
    let up = upstreams(&rt, dir.path());
    let name = SERVER_NAME;
    let v6 = named_only_server(&rt, dir.path(), "::1", name);
    let v6_ca = dir.path().join("v6.pem");
    std::fs::rename(dir.path().join(format!("{name}.pem")), &v6_ca).unwrap();
    let v4 = named_only_server(&rt, dir.path(), "127.0.0.2", name);
    let v4_ca = dir.path().join(format!("{name}.pem"));
    let case = case_file(dir.path(), r#"addresses = ["::1", "127.0.0.1"]"#);
    let extra = [
        "--mode",
        "transparent",
        "--listen",
        "[::]:0",
        "--allow-case-addresses",
        "--upstream-ca",
        v6_ca.to_str().unwrap(),
        "--upstream-ca",
        v4_ca.to_str().unwrap(),
    ];
    let p = Proxy::start_for_with(dir.path(), &case, &up, &extra);
    assert!(p.addr.is_ipv6(), "{}", p.addr);
    let port = p.addr.port().to_string();
    for (tables, server) in [("ip6tables", v6), ("iptables", v4)] {
        let (to, server_port) = (server.ip().to_string(), server.port().to_string());
        redirect(tables, &to, Some(&server_port), &port);
    }
    let ca = readable_ca(&p, dir.path());
    for (server, path) in [(v6, "/redirected-v6"), (v4, "/redirected-v4")] {
        let at = match server.ip() {
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        let resolve = format!("{name}:{}:{at}", server.port());
        let url = format!("https://{name}:{}{path}?adid={AD_ID}", server.port());
        assert_eq!(
            curl_redirected(&["--resolve", &resolve, "--cacert", &ca, &url]),
            format!("host={name}:{} path={path}?adid={AD_ID}\n", server.port()),
        );
        let f = p.findings_for(&format!("{path}?adid={AD_ID}"));
        assert_eq!(f[0]["device"], "pixel7", "{f:#?}");
        let xs = p.jsonl("proxy-exchanges.jsonl");
        let x = xs
            .iter()
            .find(|x| x["path"] == format!("{path}?adid={AD_ID}"))
            .unwrap();
        assert_eq!(x["host"], name);
        assert_eq!(x["server"], server.to_string());
    }
    let (status, _) = p.stop();
    assert!(status.success());
}

/// Off loopback, redirected clients could only get in by address: the mode asks for
/// `--allow-case-addresses` rather than refusing every client at run time.
#[test]
fn off_loopback_the_mode_needs_case_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let case = case_file(dir.path(), r#"addresses = ["192.0.2.7"]"#);
    let out = Command::new(env!("CARGO_BIN_EXE_consentry"))
        .args(["proxy", "--mode", "transparent", "--listen", "0.0.0.0:0"])
        .args(["--control", "off", "--proxy-auth", "lab:s3cret", "--case"])
        .arg(&case)
        .arg("--ca-dir")
        .arg(dir.path().join("ca"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "--mode transparent on 0.0.0.0:0, not a loopback address: give --allow-case-addresses"
        ),
        "{stderr}"
    );
}

/// `--dns-listen` on a gateway: a phone's DNS queries to the resolver it was given
/// are redirected (iptables `REDIRECT` of UDP port 53) to the relay, which answers a
/// case device's through its upstream (the answer comes back from the address the
/// phone asked), refuses any other client's (not an open resolver), and names the
/// phone's redirected connection to the answered address, in a protocol the proxy
/// does not read, by the name the phone asked for.
#[test]
fn redirected_dns_queries_are_answered_for_case_devices_and_name_their_connections() {
    if !in_a_namespace_of_its_own("iptables") {
        return;
    }
    let rt = rt();
    let dir = readable_tempdir();
    // The phone, another client, and the resolver they were set up to use.
    for a in ["192.0.2.7", "192.0.2.8", "192.0.2.53"] {
        assert!(run("ip", &["addr", "add", &format!("{a}/32"), "dev", "lo"]));
    }
    let resolver = fake_resolver(std::net::Ipv4Addr::new(127, 0, 0, 2)).to_string();
    // The phone, and (by the redirected user's connections) loopback.
    let case = case_file(dir.path(), r#"addresses = ["192.0.2.7", "127.0.0.1"]"#);
    let extra = [
        "--mode",
        "transparent",
        "--allow-case-addresses",
        "--dns-listen",
        "0.0.0.0:0",
        "--dns-upstream",
        &resolver,
    ];
    let p = Proxy::start(dir.path(), &case, &extra);
    let relay_port = p.dns.expect("the DNS relay's address").port().to_string();
    let udp = [
        "-t",
        "nat",
        "-A",
        "OUTPUT",
        "-p",
        "udp",
        "-d",
        "192.0.2.53",
        "--dport",
        "53",
    ];
    let rule = [&udp[..], &["-j", "REDIRECT", "--to-ports", &relay_port]].concat();
    assert!(run("iptables", &rule), "{rule:?}");
    let asked: std::net::SocketAddr = "192.0.2.53:53".parse().unwrap();
    let name = "push.metrics-sdk.example";
    let (reply, from) = dns_ask("192.0.2.7:0", asked, &dns_query(0x0101, name));
    assert_eq!(from, asked, "answered from where the phone asked");
    assert_eq!((&reply[..2], reply[3] & 0x0f), (&[1u8, 1][..], 0));
    assert_eq!(&reply[reply.len() - 4..], &[127, 0, 0, 2]);
    let (reply, _) = dns_ask("192.0.2.8:0", asked, &dns_query(0x0202, name));
    assert_eq!(
        (&reply[..2], reply[3] & 0x0f),
        (&[2u8, 2][..], 5),
        "REFUSED"
    );
    // Over TCP the other client's connection is closed at once.
    let relay = std::net::SocketAddr::from(([127, 0, 0, 1], p.dns.unwrap().port()));
    let closed = rt.block_on(async {
        use tokio::io::AsyncReadExt;
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("192.0.2.8:0".parse().unwrap()).unwrap();
        let mut stream = socket.connect(relay).await.unwrap();
        let mut buf = [0u8; 16];
        tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buf)).await
    });
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "{closed:?}");

    // The phone's connection to that address, redirected to the proxy.
    let server = rt.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut line = Vec::new();
            let mut byte = [0u8; 1];
            while !line.ends_with(b"\r\n") && s.read(&mut byte).await.unwrap() == 1 {
                line.push(byte[0]);
            }
            s.write_all(b"ok\r\n").await.unwrap();
        });
        addr
    });
    redirect("iptables", "127.0.0.2", None, &p.addr.port().to_string());
    // curl's gopher sends the selector and a line end: a protocol of its own.
    let url = format!("gopher://{server}/_adid={AD_ID}");
    assert_eq!(curl_redirected(&[&url]), "ok\r\n");
    p.wait_exchanges("the tunnel", |xs| xs.iter().any(|x| x["scheme"] == "tcp"));
    let xs = p.jsonl("proxy-exchanges.jsonl");
    assert_eq!(xs.len(), 1, "{xs:#?}");
    assert_eq!(
        (&xs[0]["host"], &xs[0]["server"]),
        (&name.into(), &server.to_string().into())
    );
    let status = p.status();
    assert_eq!(
        (&status["dns_queries"], &status["dns_refused"]),
        (&1.into(), &2.into()),
        "{status:#?}"
    );
    let said = "DNS queries from 192.0.2.8 are refused";
    let (status, stderr) = p.stop();
    assert!(status.success());
    assert!(stderr.iter().any(|l| l.contains(said)), "{stderr:#?}");
}

/// The DNS relay's settings are checked before anything starts: off loopback it
/// needs `--allow-case-addresses` (no credentials in DNS), `--dns-upstream` needs
/// `--dns-listen`, and an upstream that is the relay itself would loop.
#[test]
fn the_dns_relay_refuses_settings_that_would_open_or_loop_it() {
    let dir = tempfile::tempdir().unwrap();
    let case = case_file(dir.path(), r#"addresses = ["192.0.2.7"]"#);
    let refused = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_consentry"))
            .args(["proxy", "--listen", "127.0.0.1:0", "--control", "off"])
            .args(extra)
            .arg("--case")
            .arg(&case)
            .arg("--ca-dir")
            .arg(dir.path().join("ca"))
            .output()
            .unwrap();
        assert!(!out.status.success(), "{extra:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let open = refused(&[
        "--dns-listen",
        "0.0.0.0:5353",
        "--dns-upstream",
        "192.0.2.53",
    ]);
    assert!(
        open.contains(
            "--dns-listen 0.0.0.0:5353 is not a loopback address: give --allow-case-addresses"
        ),
        "{open}"
    );
    let alone = refused(&["--dns-upstream", "192.0.2.53"]);
    assert!(
        alone.contains("--dns-upstream needs --dns-listen"),
        "{alone}"
    );
    let looped = refused(&[
        "--dns-listen",
        "127.0.0.1:5353",
        "--dns-upstream",
        "127.0.0.1:5353",
    ]);
    assert!(looped.contains("is this relay itself"), "{looped}");
    let keep = refused(&["--dns-keep-ech"]);
    assert!(keep.contains("--dns-listen"), "{keep}");
    let bad = refused(&[
        "--dns-listen",
        "127.0.0.1:0",
        "--dns-upstream",
        "resolver.example",
    ]);
    assert!(bad.contains("is not an address or ADDR:PORT"), "{bad}");
}
