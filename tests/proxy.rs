//! `consentry proxy` driven by real clients (curl over HTTP/1.1 and HTTP/2, and a
//! Rust client doing CONNECT + TLS itself) against local upstream servers on
//! 127.0.0.1: an HTTPS one with a self-signed certificate (trusted through
//! `--upstream-ca`) and a plain HTTP one. Only 127.0.0.1 is ever contacted.
//! Identifiers are the synthetic ones of DESIGN.md's example case.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::proxy_harness::*;
use sha2::Digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[test]
fn https_through_curl_is_byte_identical_and_findings_appear() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let up = upstreams(&rt, dir.path());
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let p = Proxy::start_for(dir.path(), &case, &up);
    let up_ca = up.ca_pem.to_str().unwrap().to_string();
    let ours = p.ca_pem().to_str().unwrap().to_string();
    let proxy = p.url();
    let base = format!("https://{}", up.https);

    // Small response, HTTP/1.1 and HTTP/2 to the proxy, headers included (-i).
    let url = format!("{base}/track?adid={AD_ID}");
    let direct = curl(&["-i", "--http1.1", "--cacert", &up_ca, &url]);
    let via_h1 = curl(&[
        "-i",
        "--http1.1",
        "--proxy",
        &proxy,
        "--cacert",
        &ours,
        &url,
    ]);
    // Headers compared without `date`, and without the proxy's answer to CONNECT.
    let strip_date = |b: &[u8]| {
        let text = String::from_utf8_lossy(b).into_owned();
        let text = match text.split_once("\r\n\r\n") {
            Some((_, rest)) if rest.starts_with("HTTP/") => rest.to_string(),
            _ => text,
        };
        text.lines()
            .filter(|l| !l.to_ascii_lowercase().starts_with("date:"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip_date(&via_h1), strip_date(&direct));
    let url2 = format!("{base}/track2?adid={AD_ID}");
    let via_h2 = curl(&[
        "--http2",
        "--proxy",
        &proxy,
        "--cacert",
        &ours,
        "-w",
        "\n%{http_version}",
        &url2,
    ]);
    let direct2 = curl(&[
        "--http2",
        "--cacert",
        &up_ca,
        "-w",
        "\n%{http_version}",
        &url2,
    ]);
    assert_eq!(via_h2, direct2);
    assert!(
        via_h2.ends_with(b"\n2"),
        "{}",
        String::from_utf8_lossy(&via_h2)
    );

    // A 3 MB response passes unchanged.
    let big = curl(&["--proxy", &proxy, "--cacert", &ours, &format!("{base}/big")]);
    assert_eq!(big.len(), BIG_RESPONSE);
    assert!(big == big_body());

    // A 200 kB upload (over the analysis cap) passes unchanged; the identifier in the
    // query is still found and the exchange is marked truncated.
    let upload = dir.path().join("upload.bin");
    std::fs::write(&upload, vec![b'a'; 200_000]).unwrap();
    let echo = format!("{base}/echo?adid={AD_ID}");
    let data = format!("@{}", upload.display());
    let via = curl(&[
        "--proxy",
        &proxy,
        "--cacert",
        &ours,
        "--data-binary",
        &data,
        &echo,
    ]);
    let direct = curl(&["--cacert", &up_ca, "--data-binary", &data, &echo]);
    assert_eq!(via, direct);
    assert!(String::from_utf8_lossy(&via).starts_with("len=200000 "));

    for path in [
        format!("/track?adid={AD_ID}"),
        format!("/track2?adid={AD_ID}"),
        format!("/echo?adid={AD_ID}"),
    ] {
        let f = p.findings_for(&path);
        assert_eq!(f.len(), 1, "{path}: {f:#?}");
        assert_eq!(f[0]["rule"], "share-before-consent");
        assert_eq!(f[0]["device"], "pixel7");
        assert_eq!(f[0]["data"][0]["type"], "advertising_id");
        assert_eq!(f[0]["data"][0]["where"], "query:adid");
    }
    let xs = p.jsonl("proxy-exchanges.jsonl");
    let upload_x = xs.iter().find(|x| x["method"] == "POST").unwrap();
    let kinds: Vec<&str> = upload_x["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["body-truncated"], "{upload_x:#}");
    // The evidence digest covers the whole upload, not the analysed prefix.
    assert_eq!(upload_x["digests"]["request_bytes"], 200_000);
    assert_eq!(
        upload_x["digests"]["request_sha256"],
        hex(&sha2::Sha256::digest(vec![b'a'; 200_000]))
    );
    let big_x = xs.iter().find(|x| x["path"] == "/big").unwrap();
    // Exchanges written as JSON lines carry the response's header list (the store,
    // which keeps the raw head instead, runs without it).
    assert!(
        big_x["response"]["headers"]
            .as_array()
            .is_some_and(|h| !h.is_empty()),
        "{big_x:#}"
    );
    assert_eq!(big_x["digests"]["response_bytes"], BIG_RESPONSE);
    assert_eq!(
        big_x["digests"]["response_sha256"],
        hex(&sha2::Sha256::digest(big_body()))
    );
    let h2 = xs
        .iter()
        .find(|x| x["path"] == format!("/track2?adid={AD_ID}"))
        .unwrap();
    assert_eq!(h2["http_version"], "HTTP/2");
    assert_eq!(h2["tls"]["decrypted"], true);
    // Each TLS request carries its connection's ClientHello fingerprints: curl's,
    // with `h2` first in its ALPN list under `--http2`, `http/1.1` alone under
    // `--http1.1`; the same curl offers the same cipher suites both times.
    let h1 = xs
        .iter()
        .find(|x| x["path"] == format!("/track?adid={AD_ID}"))
        .unwrap();
    let ja4 = |x: &serde_json::Value| x["tls"]["ja4"].as_str().unwrap_or_default().to_string();
    let (ja4_h1, ja4_h2) = (ja4(h1), ja4(h2));
    assert_eq!(ja4_h1.len(), 36, "{h1:#}");
    // `i`: the upstream is an address, which a hello does not name (RFC 6066 §3);
    // nor does the exchange then (its `sni` is the hello's, not the host).
    assert!(
        ja4_h1.starts_with("t13i") && ja4_h2.starts_with("t13i"),
        "{ja4_h1} {ja4_h2}"
    );
    assert!(
        h1["tls"].get("sni").is_none() && h2["tls"].get("sni").is_none(),
        "{h1:#}"
    );
    assert_eq!((&ja4_h1[8..10], &ja4_h2[8..10]), ("h1", "h2"));
    assert_eq!(ja4_h1[10..24], ja4_h2[10..24], "the cipher suites' hash");
    for x in [h1, h2] {
        let ja3 = x["tls"]["ja3"].as_str().unwrap_or_default();
        assert!(
            ja3.len() == 32 && ja3.bytes().all(|b| b.is_ascii_hexdigit()),
            "{x:#}"
        );
        // And the certificate the upstream presented to the proxy (not the one the
        // proxy minted for curl).
        let cert = &x["tls"]["server_certificate"];
        assert_eq!(
            cert["sha256"],
            hex(&sha2::Sha256::digest(&up.ca_der)),
            "{x:#}"
        );
        assert_eq!(cert["names"], serde_json::json!(["localhost", "127.0.0.1"]));
        assert_eq!(cert["chain"], 1);
        // The address the request went to.
        assert_eq!(x["server"], up.https.to_string(), "{x:#}");
    }
    // Completed exchanges carry no anomaly.
    let small = xs.iter().find(|x| x["path"] == "/big").unwrap();
    assert!(small.get("anomalies").is_none(), "{small:#}");

    // The finding lines were printed live, without the identifier's value.
    let out = p.wait_stdout("three finding lines", |out| {
        out.iter()
            .filter(|l| l.contains("share-before-consent"))
            .count()
            >= 3
    });
    assert!(out.iter().all(|l| !l.contains(AD_ID)));
    // The control API counts the anomalies the analysis thread has met.
    assert_eq!(p.status()["anomalies"], 1);
    let (status, err) = p.stop();
    assert!(status.success(), "{err:#?}");
    assert!(
        err.iter()
            .any(|l| l.contains("exchanges,") && l.contains("findings")),
        "{err:#?}"
    );
    // The upload's truncation was said once, as it happened, and counted at the end
    // (no detail without --reveal).
    let said: Vec<&String> = err.iter().filter(|l| l.contains(" anomaly ")).collect();
    assert_eq!(said.len(), 1, "{err:#?}");
    assert!(
        said[0].starts_with("consentry: anomaly body-truncated (source) in exchange x-")
            && said[0].ends_with("; later ones of this kind are counted"),
        "{err:#?}"
    );
    assert!(
        err.iter()
            .any(|l| l.contains("consent events marked; anomalies: 1 (body-truncated 1)")),
        "{err:#?}"
    );
    drop(rt);
}

#[test]
fn consent_marking_changes_the_verdict_of_later_requests() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let up = upstreams(&rt, dir.path());
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let p = Proxy::start(dir.path(), &case, &[]);
    let proxy = p.url();
    let get = |path: &str| {
        curl(&["--proxy", &proxy, &format!("http://{}{path}", up.http)]);
    };
    get(&format!("/a?adid={AD_ID}"));
    assert_eq!(
        p.findings_for(&format!("/a?adid={AD_ID}"))[0]["rule"],
        "share-before-consent"
    );

    // Granted through the magic URL: the next request is no violation.
    let said = curl(&[
        "--proxy",
        &proxy,
        "http://consentry.invalid/consent?decision=granted&purposes=advertising,analytics",
    ]);
    assert!(String::from_utf8_lossy(&said).starts_with("recorded: pixel7 granted"));
    get(&format!("/b?adid={AD_ID}"));
    assert_eq!(
        p.findings_for(&format!("/b?adid={AD_ID}")),
        Vec::<serde_json::Value>::new()
    );

    // Refused through `consentry consent` and the control API.
    let out = Command::new(bin())
        .args(["consent", "pixel7", "refused", "--control"])
        .arg(p.control.unwrap().to_string())
        .arg("--ca-dir")
        .arg(dir.path().join("ca"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("pixel7 refused all purposes"));
    std::thread::sleep(Duration::from_millis(1_100)); // past the grace window
    get(&format!("/c?adid={AD_ID}"));
    let f = p.findings_for(&format!("/c?adid={AD_ID}"));
    assert_eq!(f[0]["rule"], "share-after-refusal", "{f:#?}");
    assert_eq!(f[0]["borderline"], false);
    assert_eq!(p.jsonl("proxy-consent.jsonl").len(), 2);

    // A wrong token is refused.
    let bad = Command::new(bin())
        .args([
            "consent",
            "pixel7",
            "granted",
            "--token",
            "nope",
            "--control",
        ])
        .arg(p.control.unwrap().to_string())
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    // The page with the certificate is served by the proxy itself.
    let page = curl(&["--proxy", &proxy, "http://consentry.invalid/"]);
    assert!(String::from_utf8_lossy(&page).contains("network_security_config"));
    let der = curl(&[
        "--proxy",
        &proxy,
        "http://consentry.invalid/consentry-ca.crt",
    ]);
    let exported = p.ca_der();
    assert_eq!(der, exported);
    let (status, _) = p.stop();
    assert!(status.success());
}

#[test]
fn upstream_failure_gives_502_with_a_readable_body() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let up = upstreams(&rt, dir.path());
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let p = Proxy::start(dir.path(), &case, &[]);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let proxy = p.url();
    let ours = p.ca_pem().to_str().unwrap().to_string();
    for url in [format!("http://{closed}/x"), format!("https://{closed}/x")] {
        let out = curl(&[
            "--proxy",
            &proxy,
            "--cacert",
            &ours,
            "-w",
            "\n%{http_code}",
            &url,
        ]);
        let text = String::from_utf8_lossy(&out);
        assert!(text.ends_with("\n502"), "{text}");
        assert!(text.contains("could not reach 127.0.0.1"), "{text}");
    }
    // A request addressed to the proxy itself is answered, never forwarded (a loop).
    let own = format!("http://{}/loop", p.addr);
    let out = curl(&[
        "--proxy",
        &proxy,
        "-w",
        "%{http_code}",
        "-o",
        "/dev/null",
        &own,
    ]);
    assert_eq!(out, b"508");
    // Without --upstream-ca the self-signed upstream is not trusted: 502 too.
    let out = curl(&[
        "--proxy",
        &proxy,
        "--cacert",
        &ours,
        "-w",
        "\n%{http_code}",
        &format!("https://{}/x", up.https),
    ]);
    assert!(String::from_utf8_lossy(&out).ends_with("\n502"));
    let (status, err) = p.stop();
    assert!(status.success());
    assert!(
        err.iter().any(|l| l.contains("upstream 127.0.0.1 failed")),
        "{err:#?}"
    );
}

#[test]
fn rust_client_and_pinned_client() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let up = upstreams(&rt, dir.path());
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let p = Proxy::start_for(dir.path(), &case, &up);
    let exported = p.ca_der();
    let path = format!("/rust?adid={AD_ID}");
    // Through the proxy, trusting its CA: the leaf names the bare IP (IP SAN).
    let via = rt
        .block_on(rust_client(p.addr, up.https, &exported, &path))
        .unwrap();
    assert_eq!(body_of(&via), format!("hello {path}\n").as_bytes());
    assert_eq!(p.findings_for(&path)[0]["rule"], "share-before-consent");

    // A pinned client trusts only the real server's certificate: it aborts the
    // handshake, the proxy records one metadata-only exchange, then tunnels the host.
    let pinned = rt.block_on(rust_client(p.addr, up.https, &up.ca_der, "/pinned"));
    assert!(pinned.is_err(), "our certificate must be rejected");
    p.wait_exchanges("the pinned host's exchange", |xs| {
        xs.iter().any(|x| x["metadata_only"] == true)
    });
    let meta: Vec<_> = p
        .jsonl("proxy-exchanges.jsonl")
        .into_iter()
        .filter(|x| x["metadata_only"] == true)
        .collect();
    assert_eq!(meta.len(), 1);
    assert_eq!(meta[0]["host"], "127.0.0.1");
    assert_eq!(meta[0]["anomalies"][0]["kind"], "tls-rejected-by-client");
    // The same rustls client both times: the pinned hello's JA4 is that of the
    // request the proxy read. rustls shuffles its extensions (as Chrome does), so
    // their JA3s need not agree.
    let read = p
        .jsonl("proxy-exchanges.jsonl")
        .into_iter()
        .find(|x| x["path"] == path.as_str())
        .unwrap();
    assert!(
        read["tls"]["ja4"]
            .as_str()
            .is_some_and(|j| j.starts_with("t13i")),
        "{read:#}"
    );
    assert_eq!(meta[0]["tls"]["ja4"], read["tls"]["ja4"]);
    assert_eq!(meta[0]["tls"]["ja3"].as_str().map(str::len), Some(32));
    // To an address: neither hello named a server, nor does either exchange.
    assert!(meta[0]["tls"].get("sni").is_none(), "{:#}", meta[0]);
    assert!(read["tls"].get("sni").is_none(), "{read:#}");
    let tunnelled = rt
        .block_on(rust_client(p.addr, up.https, &up.ca_der, "/pinned2"))
        .expect("the second connection is tunnelled to the real server");
    assert_eq!(body_of(&tunnelled), b"hello /pinned2\n");
    let (status, err) = p.stop();
    assert!(status.success());
    assert!(
        err.iter().any(|l| l.contains("rejected our certificate")),
        "{err:#?}"
    );
}

#[test]
fn authentication_is_required_off_loopback_and_names_the_device() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let up = upstreams(&rt, dir.path());
    let case = case_file(dir.path(), r#"proxy_user = "pixel7""#);
    // Off loopback without --proxy-auth: refused before listening.
    let out = Command::new(bin())
        .args([
            "proxy",
            "--listen",
            "0.0.0.0:0",
            "--control",
            "off",
            "--case",
        ])
        .arg(&case)
        .arg("--ca-dir")
        .arg(dir.path().join("ca"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--proxy-auth"));

    let p = Proxy::start(dir.path(), &case, &["--proxy-auth", "lab:s3cret"]);
    let proxy = p.url();
    let url = format!("http://{}/auth?adid={AD_ID}", up.http);
    let denied = curl(&[
        "--proxy",
        &proxy,
        "-w",
        "%{http_code}",
        "-o",
        "/dev/null",
        &url,
    ]);
    assert_eq!(denied, b"407");
    let wrong = curl(&[
        "--proxy",
        &proxy,
        "--proxy-user",
        "pixel7:nope",
        "-w",
        "%{http_code}",
        "-o",
        "/dev/null",
        &url,
    ]);
    assert_eq!(wrong, b"407");
    // The device's proxy_user with the shared password: served, attributed, and the
    // credentials are not forwarded upstream (the echo shows the request URI only).
    let ok = curl(&["--proxy", &proxy, "--proxy-user", "pixel7:s3cret", &url]);
    assert!(String::from_utf8_lossy(&ok).starts_with("hello"));
    let f = p.findings_for(&format!("/auth?adid={AD_ID}"));
    assert_eq!(f[0]["device"], "pixel7");
    let xs = p.jsonl("proxy-exchanges.jsonl");
    assert_eq!(xs.len(), 1, "refused requests are not exchanges: {xs:#?}");
    // A CONNECT without credentials is refused whole (head and body), and the same
    // connection then gets its tunnel with them, as a client retrying after a 407.
    rt.block_on(async {
        let mut c = TcpStream::connect(p.addr).await.unwrap();
        let connect =
            |auth: &str| format!("CONNECT {0} HTTP/1.1\r\nHost: {0}\r\n{auth}\r\n", up.https);
        c.write_all(connect("").as_bytes()).await.unwrap();
        let refused = read_response(&mut c).await;
        assert!(refused.starts_with("HTTP/1.1 407 "), "{refused}");
        assert!(refused.contains("proxy-authenticate: Basic"), "{refused}");
        let with_credentials = "Proxy-Authorization: Basic cGl4ZWw3OnMzY3JldA==\r\n";
        c.write_all(connect(with_credentials).as_bytes())
            .await
            .unwrap();
        let opened = read_response(&mut c).await;
        assert!(opened.starts_with("HTTP/1.1 200 "), "{opened}");
    });
    let (status, _) = p.stop();
    assert!(status.success());

    // --allow-case-addresses: a device address gets in without credentials, any
    // other address is refused.
    for (addresses, expect) in [
        (r#"["127.0.0.1"]"#, &b"200"[..]),
        (r#"["10.9.9.9"]"#, b"407"),
    ] {
        let case = case_file(dir.path(), &format!("addresses = {addresses}"));
        let p = Proxy::start(dir.path(), &case, &["--allow-case-addresses"]);
        let got = curl(&[
            "--proxy",
            &p.url(),
            "-w",
            "%{http_code}",
            "-o",
            "/dev/null",
            &url,
        ]);
        assert_eq!(got, expect, "{addresses}");
        p.stop();
    }
}

#[test]
fn case_directory_store_and_ignored_hosts() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let up = upstreams(&rt, dir.path());
    let template = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let case_dir = dir.path().join("case");
    let init = Command::new(bin())
        .arg("init")
        .arg(&case_dir)
        .arg("--from-case")
        .arg(&template)
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let p = Proxy::start_for_with(
        dir.path(),
        &case_dir.join("consentry.toml"),
        &up,
        &["--ignore-host", r"^127\.0\.0\.1$"],
    );
    // Ignored: tunnelled to the real server (its own certificate verifies), not recorded.
    let tunnelled = rt
        .block_on(rust_client(p.addr, up.https, &up.ca_der, "/ignored"))
        .expect("an ignored host is tunnelled");
    assert_eq!(body_of(&tunnelled), b"hello /ignored\n");
    // Plain HTTP is still recorded, into the store.
    curl(&[
        "--proxy",
        &p.url(),
        &format!("http://{}/stored?adid={AD_ID}", up.http),
    ]);
    // An upload over the analysis cap: its record says so, as the JSON lines would.
    let upload = dir.path().join("upload.bin");
    std::fs::write(&upload, vec![b'a'; 200_000]).unwrap();
    curl(&[
        "--proxy",
        &p.url(),
        "--data-binary",
        &format!("@{}", upload.display()),
        &format!("http://{}/echo?upload=stored", up.http),
    ]);
    // And HTTPS to a name the ignore list does not match (the upstream's certificate
    // names `localhost`).
    let tls_url = format!(
        "https://localhost:{}/stored-tls?adid={AD_ID}",
        up.https.port()
    );
    let ours = p.ca_pem().to_str().unwrap().to_string();
    let body = curl(&[
        "--http1.1",
        "--proxy",
        &p.url(),
        "--cacert",
        &ours,
        &tls_url,
    ]);
    assert!(
        body.starts_with(b"hello /stored-tls"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while p
        .stdout
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("share-before-consent"))
        .count()
        < 2
    {
        assert!(Instant::now() < deadline, "no finding printed");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, _) = p.stop();
    assert!(status.success());
    let run = |args: &[&str]| {
        let o = Command::new(bin())
            .arg("-C")
            .arg(&case_dir)
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let exchanges = run(&["exchanges"]);
    assert!(exchanges.contains("/stored?adid="), "{exchanges}");
    // The stored exchange records carry the heads as evidence (hash-chained).
    let stored = run(&["exchanges", "--format", "jsonl"]);
    let row: serde_json::Value = stored
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|x| x["path"].as_str().is_some_and(|p| p.starts_with("/stored")))
        .unwrap();
    let head = row["request_head"]["text"].as_str().unwrap();
    assert!(
        head.starts_with(&format!("GET http://{}/stored?adid=", up.http)),
        "{row:#}"
    );
    assert!(row["response_head"]["text"]
        .as_str()
        .unwrap()
        .starts_with("HTTP/1.1 200 OK\r\n"));
    // And the connection's facts: who sent it and where it went.
    assert!(
        row["client"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{row:#}"
    );
    assert_eq!(row["server"], up.http.to_string(), "{row:#}");
    assert!(
        row.get("server_certificate").is_none(),
        "plain HTTP: {row:#}"
    );
    assert!(row.get("anomalies").is_none(), "{row:#}");
    let upload_row: serde_json::Value = stored
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|x| x["path"] == "/echo?upload=stored")
        .unwrap();
    assert_eq!(
        upload_row["anomalies"][0]["kind"], "body-truncated",
        "{upload_row:#}"
    );
    assert_eq!(upload_row["digests"]["request_bytes"], 200_000);
    let tls_row: serde_json::Value = stored
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|x| {
            x["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("/stored-tls"))
        })
        .unwrap();
    assert_eq!(tls_row["host"], "localhost", "{tls_row:#}");
    assert_eq!(tls_row["server"], up.https.to_string(), "{tls_row:#}");
    assert_eq!(tls_row["sni"], "localhost");
    // curl named the server this time: `d`, a domain in the hello.
    assert!(
        tls_row["ja4"].as_str().unwrap().starts_with("t13d"),
        "{tls_row:#}"
    );
    assert_eq!(tls_row["ja3"].as_str().unwrap().len(), 32);
    let cert = &tls_row["server_certificate"];
    assert_eq!(cert["sha256"], hex(&sha2::Sha256::digest(&up.ca_der)));
    assert_eq!(cert["names"], serde_json::json!(["localhost", "127.0.0.1"]));
    // The case report lists the receiving servers with that certificate.
    let report: serde_json::Value =
        serde_json::from_str(&run(&["report", "--format", "json"])).unwrap();
    let servers = report["servers"].as_array().unwrap();
    let tls_server = servers.iter().find(|s| s["host"] == "localhost").unwrap();
    assert_eq!(
        tls_server["addresses"],
        serde_json::json!([up.https.to_string()])
    );
    assert_eq!(tls_server["certificates"][0]["sha256"], cert["sha256"]);
    assert_eq!(tls_server["certificates"][0]["names_host"], true);
    let http_server = servers.iter().find(|s| s["host"] == "127.0.0.1").unwrap();
    assert_eq!(
        http_server["addresses"],
        serde_json::json!([up.http.to_string()])
    );
    assert_eq!(http_server["with_certificate"], 0);
    assert!(!exchanges.contains("/ignored"), "{exchanges}");
    assert!(run(&["findings"]).contains("share-before-consent"));
    assert!(run(&["verify"]).starts_with("OK"));
}

#[test]
fn client_going_away_mid_body_is_recorded_once_and_the_proxy_keeps_serving() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let up = upstreams(&rt, dir.path());
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let p = Proxy::start(dir.path(), &case, &[]);
    // Reads the head and the first chunk of a response that never ends, then closes
    // the connection.
    rt.block_on(async {
        let mut tcp = TcpStream::connect(p.addr).await.unwrap();
        let req = format!(
            "GET http://{}/stall HTTP/1.1\r\nHost: {}\r\n\r\n",
            up.http, up.http
        );
        tcp.write_all(req.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let n = tcp.read(&mut buf).await.unwrap();
        assert!(n > 0);
    });
    p.wait_exchanges("the abandoned exchange", |xs| {
        xs.iter().any(|x| x["path"] == "/stall")
    });
    // Malformed requests and 200 sequential connections do not stop it.
    rt.block_on(async {
        let mut tcp = TcpStream::connect(p.addr).await.unwrap();
        tcp.write_all(b"\x16\x03\x01garbage\r\n\r\n").await.unwrap();
        let mut sink = Vec::new();
        let _ = tcp.read_to_end(&mut sink).await;
    });
    for i in 0..200 {
        rt.block_on(async {
            let mut tcp = TcpStream::connect(p.addr).await.unwrap();
            let req = format!(
                "GET http://{}/n{i} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                up.http, up.http
            );
            tcp.write_all(req.as_bytes()).await.unwrap();
            let mut all = Vec::new();
            tcp.read_to_end(&mut all).await.unwrap();
            assert!(all.ends_with(format!("hello /n{i}\n").as_bytes()));
        });
    }
    p.wait_exchanges("all 201 exchanges", |xs| xs.len() == 201);
    let xs = p.jsonl("proxy-exchanges.jsonl");
    let big: Vec<_> = xs.iter().filter(|x| x["path"] == "/stall").collect();
    assert_eq!(big.len(), 1, "recorded exactly once");
    assert_eq!(
        big[0]["anomalies"][0]["kind"], "response-incomplete",
        "{:#}",
        big[0]
    );
    let mut ids: Vec<_> = xs
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 201, "exchange ids are unique");
    let (status, _) = p.stop();
    assert!(status.success());
}

/// CONNECT through the proxy, then (for wss, trusting `root`) a WebSocket to `target`:
/// sends `text`, returns the echo.
async fn ws_client(
    proxy: SocketAddr,
    target: SocketAddr,
    tls_root: Option<&[u8]>,
    text: &str,
) -> String {
    use hudsucker::futures::{SinkExt, StreamExt};
    use hudsucker::tokio_tungstenite::tungstenite::Message;
    let (tcp, _) = tunnel(proxy, target).await;
    let echo = match tls_root {
        None => {
            let url = format!("ws://{target}/socket?app=1");
            let (mut ws, _) = hudsucker::tokio_tungstenite::client_async(url, tcp)
                .await
                .unwrap();
            ws.send(Message::text(text)).await.unwrap();
            ws.next().await.unwrap().unwrap()
        }
        Some(root) => {
            let tls = tls_to_ip(tcp, target, root).await.unwrap();
            let url = format!("wss://{target}/socket?app=1");
            let (mut ws, _) = hudsucker::tokio_tungstenite::client_async(url, tls)
                .await
                .unwrap();
            ws.send(Message::text(text)).await.unwrap();
            ws.next().await.unwrap().unwrap()
        }
    };
    echo.into_text().unwrap().to_string()
}

#[test]
fn websocket_messages_pass_and_are_analysed() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let up = upstreams(&rt, dir.path());
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let p = Proxy::start_for(dir.path(), &case, &up);
    let exported = p.ca_der();
    let ws_text = format!("{{\"event\":\"open\",\"gaid\":\"{AD_ID}\"}}");
    let echo = rt.block_on(ws_client(p.addr, up.ws, None, &ws_text));
    assert_eq!(echo, ws_text);
    let wss_text = format!("{{\"event\":\"tls\",\"gaid\":\"{AD_ID}\"}}");
    let echo = rt.block_on(ws_client(p.addr, up.wss, Some(&exported), &wss_text));
    assert_eq!(echo, wss_text, "wss through the proxy (hudsucker #133)");
    p.wait_exchanges("two WebSocket messages", |xs| {
        xs.iter().filter(|x| x["method"] == "WS").count() == 2
    });
    let xs = p.jsonl("proxy-exchanges.jsonl");
    let ws: Vec<_> = xs.iter().filter(|x| x["method"] == "WS").collect();
    let schemes: Vec<&str> = ws.iter().map(|x| x["scheme"].as_str().unwrap()).collect();
    assert!(
        schemes.contains(&"ws") && schemes.contains(&"wss"),
        "{ws:#?}"
    );
    for x in &ws {
        // Each message's server is the address its WebSocket went to, and so is
        // that of the upgrade request.
        let to = if x["scheme"] == "ws" { up.ws } else { up.wss };
        assert_eq!(x["server"], to.to_string(), "{x:#}");
        let upgrade = xs
            .iter()
            .find(|u| {
                u["method"] == "GET"
                    && u["scheme"] == x["scheme"].as_str().unwrap().replace("ws", "http")
            })
            .unwrap_or_else(|| panic!("the upgrade of {x:#}"));
        assert_eq!(upgrade["server"], to.to_string(), "{upgrade:#}");
        if x["scheme"] == "wss" {
            // The messages carry their connection's ClientHello as the upgrade does:
            // the test's rustls client, to an address, so without a server name.
            let ja4 = x["tls"]["ja4"].as_str().unwrap_or_default();
            assert!(ja4.starts_with("t13i"), "{x:#}");
            assert_eq!(x["tls"]["ja4"], upgrade["tls"]["ja4"]);
            assert_eq!(x["tls"]["ja3"], upgrade["tls"]["ja3"]);
            assert!(x["tls"].get("sni").is_none(), "{x:#}");
            assert!(upgrade["tls"].get("sni").is_none(), "{upgrade:#}");
        }
        let f = p.findings_of(x);
        assert_eq!(f.len(), 1, "{x:#}");
        assert_eq!(f[0]["data"][0]["type"], "advertising_id");
    }
    let (status, _) = p.stop();
    assert!(status.success());
}

/// A WebSocket upgrade whose `Connection` options come in two lines, and the client's
/// first message written with the head, before the `101` (as in the capture
/// `gateway/wsupgrade.pcap`, which the tap reads the same way): the proxy takes it for
/// an upgrade, asks the server for one in its own handshake (the test's server, on
/// tungstenite, reads the first `Connection` line: passed on as the client wrote it,
/// the server refused and the client got a 502), passes the message on and analyses
/// it.
#[test]
fn a_websocket_upgrade_over_two_connection_lines_with_a_message_before_the_101() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let up = upstreams(&rt, dir.path());
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let p = Proxy::start_for(dir.path(), &case, &up);
    let text = format!("{{\"event\":\"hello\",\"gaid\":\"{AD_ID}\"}}");
    let echo = rt.block_on(async {
        let (mut tcp, _) = tunnel(p.addr, up.ws).await;
        let mut out = format!(
            "GET /socket HTTP/1.1\r\nHost: {}\r\nConnection: keep-alive\r\n\
             Upgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            up.ws
        )
        .into_bytes();
        // One masked text frame (payload under 126 bytes).
        let mask = [0x3c, 0x91, 0x0e, 0xa5];
        out.extend([0x81, 0x80 | text.len() as u8]);
        out.extend(mask);
        out.extend(text.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        tcp.write_all(&out).await.unwrap();
        // The 101's head, then the echoed frame (unmasked, from the server).
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
            if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                let frame = &got[end + 4..];
                if frame.len() >= 2 && frame.len() >= 2 + usize::from(frame[1] & 0x7f) {
                    assert!(got.starts_with(b"HTTP/1.1 101"), "{got:?}");
                    return String::from_utf8_lossy(&frame[2..]).into_owned();
                }
            }
        }
        panic!("no echo: {:?}", String::from_utf8_lossy(&got));
    });
    assert_eq!(echo, text);
    assert_the_advertising_id_is_found(&p, "the WebSocket message", |x| x["method"] == "WS");
    let (status, _) = p.stop();
    assert!(status.success());
}

/// Waits for the exchange `which` picks (`what` names it) and checks its one finding:
/// the advertising id.
fn assert_the_advertising_id_is_found(
    p: &Proxy,
    what: &str,
    which: impl Fn(&serde_json::Value) -> bool,
) {
    p.wait_exchanges(what, |xs| xs.iter().any(&which));
    let xs = p.jsonl("proxy-exchanges.jsonl");
    let x = xs.iter().find(|x| which(x)).unwrap();
    let f = p.findings_of(x);
    assert_eq!(f.len(), 1, "{x:#}");
    assert_eq!(f[0]["data"][0]["type"], "advertising_id");
}

/// Writes `opening` (what opens a tunnel to `target`) and then a JSON `POST` to
/// `path` with the advertising id, closing the connection after it, as one write
/// before any answer; what `proxy` sent back, read to the close.
fn write_into_a_tunnel_before_any_answer(
    rt: &tokio::runtime::Runtime,
    proxy: SocketAddr,
    opening: &[u8],
    target: SocketAddr,
    path: &str,
) -> Vec<u8> {
    let body = format!("{{\"event\":\"launch\",\"gaid\":\"{AD_ID}\"}}");
    let post = format!(
        "POST {path} HTTP/1.1\r\nHost: {target}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    rt.block_on(async {
        let mut tcp = TcpStream::connect(proxy).await.unwrap();
        tcp.write_all(&[opening, post.as_bytes()].concat())
            .await
            .unwrap();
        let mut got = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut got))
            .await
            .unwrap()
            .unwrap();
        got
    })
}

/// A request written into a `CONNECT` tunnel in the same write as the `CONNECT`,
/// before the proxy's `200` (as in the capture `gateway/connectearly.pcap`, which the
/// tap reads the same way): the proxy reads it as the tunnel's first request, passes
/// it on and analyses it.
#[test]
fn a_request_written_into_a_connect_tunnel_before_its_200_is_analysed() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let up = upstreams(&rt, dir.path());
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let p = Proxy::start_for(dir.path(), &case, &up);
    let target = up.http;
    let connect = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
    let got =
        write_into_a_tunnel_before_any_answer(&rt, p.addr, connect.as_bytes(), target, "/early");
    let got = String::from_utf8_lossy(&got);
    // The proxy's 200, then the server's answer to the POST through the tunnel.
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert_eq!(got.matches("HTTP/1.1 200").count(), 2, "{got}");
    assert_the_advertising_id_is_found(&p, "the POST in the tunnel", |x| x["path"] == "/early");
    let (status, _) = p.stop();
    assert!(status.success());
}

/// A SOCKS5 client that writes its greeting, its request and the tunnel's first
/// request at once, before any answer (as the tap's flow test
/// `bytes_sent_into_a_socks_tunnel_before_its_reply_keep_their_frames` reads it from a
/// capture): the proxy answers each handshake message, then reads the request as the
/// tunnel's first, passes it on and analyses it.
#[test]
fn a_socks5_client_writing_into_its_tunnel_before_the_reply_is_served() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let up = upstreams(&rt, dir.path());
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let p = Proxy::start_for(dir.path(), &case, &up);
    let target = up.http;
    // Greeting (no authentication), then CONNECT to 127.0.0.1 and the target's port.
    let mut opening = vec![5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1];
    opening.extend(target.port().to_be_bytes());
    let got = write_into_a_tunnel_before_any_answer(&rt, p.addr, &opening, target, "/socks-early");
    // No authentication, then the tunnel's grant, then the server's answer.
    assert_eq!(got[..4], [5, 0, 5, 0], "{got:?}");
    let answer = String::from_utf8_lossy(&got[12..]);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_the_advertising_id_is_found(&p, "the POST in the tunnel", |x| {
        x["path"] == "/socks-early"
    });
    let (status, _) = p.stop();
    assert!(status.success());
}

/// `curl --http2` on an `http://` URL offers an upgrade to HTTP/2 (`Upgrade: h2c`). The
/// proxy speaks no HTTP/2 over an upgraded HTTP/1.1 connection, so it does not pass
/// the offer on: the server answers in HTTP/1.1 and the client gets that answer.
/// Passed on, a server that took the offer switched protocols under the proxy and
/// the client got a 502. This server says whether it was offered an upgrade.
#[test]
fn an_h2c_upgrade_offer_is_not_passed_to_the_server() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let p = Proxy::start(dir.path(), &case, &[]);
    let server = rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut buf).await.unwrap();
                if n == 0 {
                    return;
                }
                head.extend_from_slice(&buf[..n]);
            }
            let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
            let said = if head.contains("\r\nupgrade:") || head.contains("http2-settings") {
                "offered"
            } else {
                "plain"
            };
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{said}",
                said.len()
            );
            s.write_all(answer.as_bytes()).await.unwrap();
            let _ = s.read_to_end(&mut Vec::new()).await;
        });
        addr
    });
    let answer = rt.block_on(async {
        let mut c = TcpStream::connect(p.addr).await.unwrap();
        let request = format!(
            "GET http://{server}/x?adid={AD_ID} HTTP/1.1\r\nHost: {server}\r\n\
             Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\
             HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n"
        );
        c.write_all(request.as_bytes()).await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !got.ends_with(b"offered") && !got.ends_with(b"plain") {
            let n = tokio::time::timeout(Duration::from_secs(10), c.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&got).into_owned()
    });
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nplain"), "{answer}");
    // The request is recorded and analysed.
    assert_the_advertising_id_is_found(&p, "the request", |x| {
        x["path"].as_str().is_some_and(|p| p.starts_with("/x?"))
    });
    let (status, _) = p.stop();
    assert!(status.success());
}

/// A client offering permessage-deflate (browsers and OkHttp do, by default) through
/// the proxy to a server that takes it: the proxy reads and writes both WebSockets
/// itself without the extension, so it must not pass the offer on. Had it done so, the
/// server would compress its messages and the proxy's side would fail on their RSV1
/// bit, closing the app's WebSocket.
#[test]
fn a_websocket_offering_compression_works_through_the_proxy_without_it() {
    use hudsucker::futures::{SinkExt, StreamExt};
    use hudsucker::tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use hudsucker::tokio_tungstenite::tungstenite::Message;
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let p = Proxy::start(dir.path(), &case, &[]);
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let target = listener.local_addr().unwrap();
    let server = rt.spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        ws_deflating_server(tcp, "hello from the server").await;
    });
    let (got, extensions, sent) = rt.block_on(async {
        let (tcp, _) = tunnel(p.addr, target).await;
        let mut req = format!("ws://{target}/live").into_client_request().unwrap();
        req.headers_mut().insert(
            "sec-websocket-extensions",
            "permessage-deflate; client_max_window_bits"
                .parse()
                .unwrap(),
        );
        let (mut ws, res) = hudsucker::tokio_tungstenite::client_async(req, tcp)
            .await
            .unwrap();
        let extensions = res.headers().get("sec-websocket-extensions").cloned();
        let got = tokio::time::timeout(Duration::from_secs(10), ws.next()).await;
        let sent = ws
            .send(Message::text(format!("{{\"gaid\":\"{AD_ID}\"}}")))
            .await;
        let _ = ws.close(None).await;
        (got, extensions, sent)
    });
    let got = got
        .expect("the server's message in time")
        .and_then(Result::ok)
        .and_then(|m| m.into_text().ok());
    assert_eq!(
        got.map(|s| s.to_string()),
        Some("hello from the server".to_string()),
        "the app's WebSocket keeps working"
    );
    assert!(
        extensions.is_none(),
        "no extension towards the client either"
    );
    sent.expect("the client's message sent");
    p.wait_exchanges("the upgrade and the client's message", |xs| {
        xs.iter().any(|x| x["method"] == "WS")
    });
    let f = p.jsonl("proxy-findings.jsonl");
    assert!(
        f.iter().any(|f| f["data"][0]["type"] == "advertising_id"),
        "{f:#?}"
    );
    rt.block_on(server).unwrap();
    let (status, _) = p.stop();
    assert!(status.success());
}

/// POSTs the file `upload` to `url` through `p` with curl, `args` (HTTP version,
/// headers …) first, trusting the proxy's CA: what the echo server answered.
fn post_through(p: &Proxy, args: &[&str], upload: &std::path::Path, url: &str) -> Vec<u8> {
    let (proxy, ca) = (p.url(), p.ca_pem().to_str().unwrap().to_string());
    let data = format!("@{}", upload.display());
    let mut all = args.to_vec();
    all.extend([
        "--proxy",
        &proxy,
        "--cacert",
        &ca,
        "--data-binary",
        &data,
        url,
    ]);
    curl(&all)
}

#[test]
fn heads_are_evidence_and_an_identifier_past_the_body_cap_is_found() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let up = upstreams(&rt, dir.path());
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let p = Proxy::start_for(dir.path(), &case, &up);
    let ours = p.ca_pem().to_str().unwrap().to_string();
    let proxy = p.url();
    let base = format!("https://{}", up.https);

    // A 200 kB upload whose only identifier lies past the 64 KiB cap, at 150 000.
    const AT: usize = 150_000;
    let mut body = vec![b'a'; AT];
    body.extend_from_slice(AD_ID.as_bytes());
    body.resize(200_000, b'b');
    let upload = dir.path().join("upload.bin");
    std::fs::write(&upload, &body).unwrap();
    let via = post_through(&p, &["--http1.1"], &upload, &format!("{base}/echo?beyond"));
    assert!(String::from_utf8_lossy(&via).starts_with("len=200000 "));
    let f = p.findings_for("/echo?beyond");
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0]["rule"], "share-before-consent");
    assert_eq!(
        f[0]["data"],
        serde_json::json!([{"type": "advertising_id", "encoding": "plain",
            "where": format!("body-beyond-cap:{AT}"), "confidence": "exact", "sensitive": false}])
    );

    // Heads: HTTP/1.1 inside the tunnel (origin form), HTTP/2, and plain HTTP.
    curl(&[
        "--http2",
        "--proxy",
        &proxy,
        "--cacert",
        &ours,
        &format!("{base}/h2head"),
    ]);
    curl(&[
        "--proxy",
        &proxy,
        "-H",
        "X-Custom: Yes",
        &format!("http://{}/plainhead", up.http),
    ]);
    p.wait_exchanges("the three exchanges", |xs| {
        ["/echo?beyond", "/h2head", "/plainhead"]
            .iter()
            .all(|path| xs.iter().any(|x| x["path"] == *path))
    });
    let xs = p.jsonl("proxy-exchanges.jsonl");
    let ev = |path: &str| xs.iter().find(|x| x["path"] == path).unwrap()["evidence"].clone();
    let text = |h: &serde_json::Value| {
        let t = h["text"].as_str().unwrap().to_string();
        // The digest is over the bytes kept, which are the whole head here.
        assert_eq!(h["sha256"], hex(&sha2::Sha256::digest(t.as_bytes())));
        assert_eq!(h["bytes"], t.len());
        t
    };
    let up_https = up.https.to_string();
    let beyond = ev("/echo?beyond");
    let req = text(&beyond["request_head"]);
    assert!(req.starts_with("POST /echo?beyond HTTP/1.1\r\n"), "{req}");
    assert!(req.contains(&format!("\r\nhost: {up_https}\r\n")), "{req}");
    assert!(req.contains("\r\ncontent-length: 200000\r\n"), "{req}");
    assert!(req.ends_with("\r\n\r\n"), "{req}");
    let res = text(&beyond["response_head"]);
    // The proxy talks HTTP/2 to this server when ALPN offers it: a head of either kind.
    assert!(
        res.starts_with(":status: 200\r\n") || res.starts_with("HTTP/1.1 200 OK\r\n"),
        "{res}"
    );
    assert!(res.contains("\r\nx-upstream: consentry-test\r\n"), "{res}");
    let upload_x = xs.iter().find(|x| x["path"] == "/echo?beyond").unwrap();
    let truncated = &upload_x["anomalies"][0];
    assert_eq!(truncated["kind"], "body-truncated");
    assert!(
        truncated["detail"].as_str().unwrap().contains(": 1 hit(s)"),
        "{truncated}"
    );

    let h2 = text(&ev("/h2head")["request_head"]);
    assert!(
        h2.starts_with(&format!(
            ":method: GET\r\n:scheme: https\r\n:authority: {up_https}\r\n:path: /h2head\r\n"
        )),
        "{h2}"
    );
    assert!(text(&ev("/h2head")["response_head"]).contains("x-upstream: consentry-test\r\n"));

    let plain = text(&ev("/plainhead")["request_head"]);
    assert!(
        plain.starts_with(&format!("GET http://{}/plainhead HTTP/1.1\r\n", up.http)),
        "{plain}"
    );
    assert!(plain.contains("\r\nx-custom: Yes\r\n"), "{plain}");
    let plain_res = text(&ev("/plainhead")["response_head"]);
    assert!(plain_res.starts_with("HTTP/1.1 200 OK\r\n"), "{plain_res}");
    let (status, err) = p.stop();
    assert!(status.success(), "{err:#?}");
    drop(rt);
}

#[test]
fn an_identifier_deep_in_a_compressed_upload_past_the_body_cap_is_found_decoded() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let up = upstreams(&rt, dir.path());
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let p = Proxy::start_for(dir.path(), &case, &up);

    // An SDK's batch upload, gzipped or zstd-compressed: 2 MB of events whose only
    // identifier sits at 1 500 000 of the decoded body. Compressed it is about
    // 0.9 MB, far past the tests' 64 KiB cap, and the identifier's bytes never
    // appear on the wire.
    const AT: usize = 1_500_000;
    let event = |i: u64| {
        format!(
            "{{\"e\":\"tap\",\"n\":{i},\"t\":\"{:x}\"}},",
            i.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        )
    };
    let mut plain = Vec::new();
    let mut i = 0;
    while plain.len() < AT {
        plain.extend_from_slice(event(i).as_bytes());
        i += 1;
    }
    plain.truncate(AT);
    plain.extend_from_slice(AD_ID.as_bytes());
    while plain.len() < 2_000_000 {
        plain.extend_from_slice(event(i).as_bytes());
        i += 1;
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &plain).unwrap();
    let gzip = gz.finish().unwrap();
    let zstd =
        ruzstd::encoding::compress_to_vec(&plain[..], ruzstd::encoding::CompressionLevel::Fastest);

    for (coding, body) in [("gzip", gzip), ("zstd", zstd)] {
        assert!(body.len() > 500_000, "{coding}: {}", body.len());
        assert!(!body.windows(AD_ID.len()).any(|w| w == AD_ID.as_bytes()));
        let upload = dir.path().join(format!("batch.{coding}"));
        std::fs::write(&upload, &body).unwrap();

        // HTTP/1.1 and HTTP/2 to the server, both through the interception.
        let h1 = format!("/echo?{coding}1");
        for (version, path) in [("--http1.1", &h1), ("--http2", &format!("/echo?{coding}2"))] {
            let encoding = format!("Content-Encoding: {coding}");
            let headers = [version, "-H", &encoding];
            let via = post_through(
                &p,
                &headers,
                &upload,
                &format!("https://{}{path}", up.https),
            );
            // The server got the compressed bytes as they were sent.
            assert!(
                String::from_utf8_lossy(&via).starts_with(&format!("len={} ", body.len())),
                "{coding} {version}"
            );
            let f = p.findings_for(path);
            assert_eq!(f.len(), 1, "{coding} {version}: {f:#?}");
            assert_eq!(
                f[0]["data"],
                serde_json::json!([{"type": "advertising_id", "encoding": "plain",
                    "where": format!("body-beyond-cap:{coding}:{AT}"), "confidence": "exact",
                    "sensitive": false}]),
                "{coding} {version}"
            );
        }
        let xs = p.jsonl("proxy-exchanges.jsonl");
        let upload_x = xs.iter().find(|x| x["path"] == h1.as_str()).unwrap();
        let truncated = upload_x["anomalies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["kind"] == "body-truncated")
            .unwrap();
        let detail = truncated["detail"].as_str().unwrap();
        assert!(
            detail.contains(&format!(
                "; the rest {coding}-decoded as it passed and its "
            )) && detail.ends_with(": 1 hit(s)"),
            "{detail}"
        );
    }
    let (status, err) = p.stop();
    assert!(status.success(), "{err:#?}");
    drop(rt);
}

/// An upload in two codings (`Content-Encoding: gzip, br`: gzipped, then br) cut at
/// the body cap: the kept part of the br stream is a part of the gzip stream, which
/// is undone too, so an identifier in the events it holds is found; past the cap both
/// codings are undone as the rest passes, so one deep in the tail is found too, at
/// its offset in the decoded body.
#[test]
fn an_identifier_in_an_upload_in_two_codings_is_found_before_and_past_the_cap() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let up = upstreams(&rt, dir.path());
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let p = Proxy::start_for(dir.path(), &case, &up);
    const AT: usize = 20_000;
    const DEEP: usize = 1_500_000;
    let mut plain = Vec::new();
    let mut i = 0u64;
    let mut deep_at = 0;
    while plain.len() < 2_000_000 {
        if plain.len() >= AT && plain.len() < AT + 100 {
            plain.extend_from_slice(format!("{{\"adid\":\"{AD_ID}\"}},").as_bytes());
        }
        if plain.len() >= DEEP && deep_at == 0 {
            deep_at = plain.len() + "{\"adid\":\"".len();
            plain.extend_from_slice(format!("{{\"adid\":\"{AD_ID}\"}},").as_bytes());
        }
        let t = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        plain.extend_from_slice(format!("{{\"e\":\"tap\",\"n\":{i},\"t\":\"{t:x}\"}},").as_bytes());
        i += 1;
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &plain).unwrap();
    let gzip = gz.finish().unwrap();
    let mut br = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut br, 4096, 5, 22);
        std::io::Write::write_all(&mut w, &gzip).unwrap();
    }
    assert!(br.len() > 500_000, "{}", br.len());
    let upload = dir.path().join("batch.gz.br");
    std::fs::write(&upload, &br).unwrap();
    let beyond = format!("body-beyond-cap:gzip+br:{deep_at}");
    // The upload with its codings in one header line, then in two (RFC 9110 §5.3:
    // the same list): the advertising id found in the kept part and past the cap.
    let one_line: &[&str] = &["--http1.1", "-H", "Content-Encoding: gzip, br"];
    let two_lines: &[&str] = &[
        "--http1.1",
        "-H",
        "Content-Encoding: gzip",
        "-H",
        "Content-Encoding: br",
    ];
    for (path, headers) in [
        ("/echo?twocodings", one_line),
        ("/echo?twolines", two_lines),
    ] {
        let via = post_through(&p, headers, &upload, &format!("https://{}{path}", up.https));
        assert!(String::from_utf8_lossy(&via).starts_with(&format!("len={} ", br.len())));
        let f = p.findings_for(path);
        assert_eq!(f.len(), 1, "{f:#?}");
        let wheres: Vec<&str> = f[0]["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                assert_eq!(d["type"], "advertising_id", "{f:#?}");
                d["where"].as_str().unwrap()
            })
            .collect();
        assert_eq!(wheres.len(), 2, "{path}: {f:#?}");
        assert!(wheres.contains(&beyond.as_str()), "{path}: {wheres:?}");
        assert!(
            wheres
                .iter()
                .any(|w| w.starts_with("body") && !w.starts_with("body-beyond-cap")),
            "{path}: {wheres:?}"
        );
    }
    // The exchange says its tail was decoded as it passed.
    let xs = p.jsonl("proxy-exchanges.jsonl");
    let x = xs.iter().find(|x| x["path"] == "/echo?twocodings").unwrap();
    let truncated = x["anomalies"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["kind"] == "body-truncated"))
        .unwrap_or_else(|| panic!("{x:#}"));
    let detail = truncated["detail"].as_str().unwrap();
    assert!(
        detail.contains("; the rest gzip+br-decoded as it passed and its")
            && detail.ends_with("searched for the case's known values: 1 hit(s)"),
        "{truncated:#}"
    );
    let (status, err) = p.stop();
    assert!(status.success(), "{err:#?}");
    drop(rt);
}

/// `--body-cap` above the analysis's default 8 MiB: the analysis examines all it is
/// given, so an identifier at 9 MB of a 9.5 MB upload under a 10 MB cap is found
/// (it used to examine 8 MiB and the search past the cap to start at 10 MB, so the
/// bytes between were searched by neither).
#[test]
fn a_body_cap_over_8_mib_is_analysed_whole() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let up = upstreams(&rt, dir.path());
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let p = Proxy::start_for_with(dir.path(), &case, &up, &["--body-cap", "10000000"]);
    let mut body = vec![b'a'; 9_000_000];
    body.extend_from_slice(AD_ID.as_bytes());
    body.resize(9_500_000, b'b');
    let upload = dir.path().join("big.bin");
    std::fs::write(&upload, &body).unwrap();
    let headers = ["--http1.1", "-H", "Content-Type: application/octet-stream"];
    let via = post_through(
        &p,
        &headers,
        &upload,
        &format!("https://{}/echo?big-cap", up.https),
    );
    assert!(String::from_utf8_lossy(&via).starts_with("len=9500000 "));
    let f = p.findings_for("/echo?big-cap");
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0]["data"][0]["where"], "body");
    let xs = p.jsonl("proxy-exchanges.jsonl");
    let x = xs.iter().find(|x| x["path"] == "/echo?big-cap").unwrap();
    assert!(
        x.get("anomalies")
            .is_none_or(|a| a.as_array().unwrap().is_empty()),
        "{x}"
    );
    let (status, err) = p.stop();
    assert!(status.success(), "{err:#?}");
    drop(rt);
}

/// A client that sends `Expect: 100-continue` (curl does for bodies over 1 MiB, and
/// .NET's and some Java clients for every POST) waits for the `100 Continue` before
/// its body: through the proxy it must come at once, not after the client's timeout.
#[test]
fn an_upload_expecting_100_continue_goes_on_at_once() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let up = upstreams(&rt, dir.path());
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let p = Proxy::start_for(dir.path(), &case, &up);
    let mut body = vec![b'x'; 100_000];
    body.extend_from_slice(AD_ID.as_bytes());
    let upload = dir.path().join("expect.bin");
    std::fs::write(&upload, &body).unwrap();
    for url in [
        format!("https://{}/echo?expect-tls", up.https),
        format!("http://{}/echo?expect-plain", up.http),
    ] {
        let started = Instant::now();
        let args = [
            "--http1.1",
            "--expect100-timeout",
            "20",
            "-H",
            "Expect: 100-continue",
        ];
        let via = post_through(&p, &args, &upload, &url);
        let took = started.elapsed();
        assert!(
            String::from_utf8_lossy(&via).starts_with(&format!("len={} ", body.len())),
            "{url}"
        );
        // A proxy that never answers the expectation leaves curl waiting its 20 s.
        assert!(took < Duration::from_secs(10), "{url}: {took:?}");
    }
    for path in ["/echo?expect-tls", "/echo?expect-plain"] {
        assert_eq!(p.findings_for(path).len(), 1, "{path}");
    }
    let (status, err) = p.stop();
    assert!(status.success(), "{err:#?}");
    drop(rt);
}

/// One HTTP/1.1 response read from `c`: its head, and its body when it has a
/// `content-length` (a `200` to a `CONNECT` has none).
async fn read_response(c: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let head_end = loop {
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut byte = [0u8; 1];
        let n = tokio::time::timeout(Duration::from_secs(10), c.read(&mut byte))
            .await
            .expect("a response within 10 s")
            .unwrap();
        assert_eq!(
            n,
            1,
            "connection closed after {:?}",
            String::from_utf8_lossy(&got)
        );
        got.push(byte[0]);
    };
    let head = String::from_utf8_lossy(&got[..head_end]).to_ascii_lowercase();
    let body_len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .map_or(0, |n| n.trim().parse::<usize>().unwrap());
    let mut body = vec![0u8; body_len];
    c.read_exact(&mut body).await.unwrap();
    got.extend_from_slice(&body);
    String::from_utf8_lossy(&got).into_owned()
}

/// A proxy started with `--upstream-proxy via` (and `extra`), once its startup line
/// names the upstream proxy at `at` as `how` (e.g. ` (with credentials)`).
fn start_through(
    dir: &std::path::Path,
    case: &std::path::Path,
    up: &Upstreams,
    via: &str,
    extra: &[&str],
    at: SocketAddr,
    how: &str,
) -> Proxy {
    let args = [&["--upstream-proxy", via][..], extra].concat();
    let p = Proxy::start_for_with(dir, case, up, &args);
    let expected = format!("servers reached through the upstream proxy {at}{how}");
    let stderr = p.stderr.lock().unwrap().clone();
    assert!(stderr.iter().any(|l| l.contains(&expected)), "{stderr:#?}");
    p
}

/// Through `p`: HTTPS to `https_host` byte-identical to direct, plain HTTP and a
/// WebSocket echoed as the servers answer, and their exchanges and the two
/// requests' findings recorded. The HTTPS and HTTP URLs fetched.
fn every_way_through(
    rt: &tokio::runtime::Runtime,
    p: &Proxy,
    up: &Upstreams,
    https_host: &str,
) -> (String, String) {
    let ours = p.ca_pem().to_str().unwrap().to_string();
    let up_ca = up.ca_pem.to_str().unwrap().to_string();
    let https = format!(
        "https://{https_host}:{}/track?adid={AD_ID}",
        up.https.port()
    );
    assert_eq!(
        curl(&["--proxy", &p.url(), "--cacert", &ours, &https]),
        curl(&["--cacert", &up_ca, &https])
    );
    let http = format!("http://{}/plain?adid={AD_ID}", up.http);
    assert_eq!(
        curl(&["--proxy", &p.url(), &http]),
        format!("hello /plain?adid={AD_ID}\n").into_bytes()
    );
    let text = format!("{{\"gaid\":\"{AD_ID}\"}}");
    assert_eq!(rt.block_on(ws_client(p.addr, up.ws, None, &text)), text);
    p.wait_exchanges("the HTTPS, HTTP and WebSocket exchanges", |xs| {
        ["/track", "/plain", "/socket"].iter().all(|path| {
            xs.iter()
                .any(|x| x["path"].as_str().is_some_and(|p| p.starts_with(path)))
        })
    });
    for path in ["/track", "/plain"] {
        let path = format!("{path}?adid={AD_ID}");
        assert!(
            p.findings_for(&path)
                .iter()
                .any(|f| f["rule"] == "share-before-consent"),
            "{path}"
        );
    }
    (https, http)
}

/// Through a proxy whose upstream proxy refuses it: each of `urls` gets a 502 whose
/// body says each of `says`, not the upstream proxy's own answer.
fn refused_through(p: Proxy, urls: &[&str], says: &[String]) {
    let ours = p.ca_pem().to_str().unwrap().to_string();
    for url in urls {
        let out = curl(&[
            "--proxy",
            &p.url(),
            "--cacert",
            &ours,
            "-w",
            "\n%{http_code}",
            url,
        ]);
        let text = String::from_utf8_lossy(&out);
        assert!(text.ends_with("\n502"), "{url}: {text}");
        for said in says {
            assert!(
                text.contains(said.as_str()),
                "{url}: {said:?} not in {text}"
            );
        }
    }
    let (status, _) = p.stop();
    assert!(status.success());
}

/// What an upstream proxy saw must include each of `lines`.
fn saw_all(seen: &std::sync::Mutex<Vec<String>>, lines: &[String]) {
    let seen = seen.lock().unwrap().clone();
    for line in lines {
        assert!(seen.contains(line), "{line} not in {seen:#?}");
    }
}

/// `--upstream-proxy`: every way to a server goes through the lab's HTTP proxy, with
/// its credentials: intercepted HTTPS and WebSockets by `CONNECT`, plain HTTP in
/// absolute form, an ignored host's tunnel by `CONNECT` (its own certificate still
/// reaching the client). Wrong credentials give the client a 502 that says so, not
/// the upstream proxy's 407.
#[test]
fn an_upstream_proxy_carries_every_connection() {
    use base64::Engine;
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let up = upstreams(&rt, dir.path());
    let basic = base64::engine::general_purpose::STANDARD.encode("tester:p@ss");
    let corp = forward_proxy(&rt, Some(format!("Basic {basic}")));
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let via = format!("http://tester:p%40ss@{}", corp.addr);
    let ignore = ["--ignore-host", "^localhost$"];
    let p = start_through(
        dir.path(),
        &case,
        &up,
        &via,
        &ignore,
        corp.addr,
        " (with credentials)",
    );
    assert!(!p.stderr.lock().unwrap().iter().any(|l| l.contains("p@ss")));
    let (https, http) = every_way_through(&rt, &p, &up, "127.0.0.1");
    // Ignored: passed through, the server's own certificate reaches curl.
    let up_ca = up.ca_pem.to_str().unwrap().to_string();
    let ignored = format!("https://localhost:{}/ignored", up.https.port());
    assert_eq!(
        curl(&["--proxy", &p.url(), "--cacert", &up_ca, &ignored]),
        b"hello /ignored\n"
    );
    saw_all(
        &corp.seen,
        &[
            format!("CONNECT {}", up.https),
            format!("GET {http}"),
            format!("CONNECT {}", up.ws),
            format!("CONNECT localhost:{}", up.https.port()),
        ],
    );
    let (status, _) = p.stop();
    assert!(status.success());

    // Wrong credentials: a 502 naming the cause, for HTTPS and plain HTTP alike.
    let wrong = format!("http://tester:guess@{}", corp.addr);
    refused_through(
        start_through(dir.path(), &case, &up, &wrong, &[], corp.addr, " (with credentials)"),
        &[&https, &http],
        &[
            format!("upstream proxy {}", corp.addr),
            "with 407 Proxy Authentication Required: the credentials of --upstream-proxy were refused".into(),
        ],
    );

    // Itself as its upstream proxy: refused before anything is bound or recorded.
    let o = Command::new(bin())
        .args(["proxy", "--listen", "127.0.0.1:9", "--control", "off"])
        .args(["--upstream-proxy", "http://localhost:9", "--case"])
        .arg(&case)
        .arg("--ca-dir")
        .arg(dir.path().join("ca"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--upstream-proxy localhost:9 is this proxy itself"),
        "{err}"
    );
}

/// `--upstream-proxy https://…`: the same ways through a proxy spoken to over TLS
/// (its certificate trusted through `--upstream-ca`, as a server's), the `CONNECT`s
/// and the absolute-form request inside that TLS.
#[test]
fn an_https_upstream_proxy_is_spoken_to_over_tls() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let up = upstreams(&rt, dir.path());
    let corp = forward_proxy_tls(&rt, Some("Basic dTpwdw==".into()), up.tls.clone());
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let via = format!("https://u:pw@{}", corp.addr);
    let how = " (over TLS, with credentials)";
    let p = start_through(dir.path(), &case, &up, &via, &[], corp.addr, how);
    let (_, http) = every_way_through(&rt, &p, &up, "127.0.0.1");
    saw_all(
        &corp.seen,
        &[
            format!("CONNECT {}", up.https),
            format!("GET {http}"),
            format!("CONNECT {}", up.ws),
        ],
    );
    let seen = corp.seen.lock().unwrap().clone();
    assert!(
        !seen.iter().any(|l| l.starts_with("TLS failed")),
        "{seen:#?}"
    );
    let (status, _) = p.stop();
    assert!(status.success());
}

/// `--upstream-proxy socks5://…` (a lab behind `ssh -D`): every way to a server is
/// a SOCKS5 tunnel, plain HTTP included, by host name, with the proxy's
/// credentials; wrong ones give the client a 502 saying so.
#[test]
fn a_socks5_upstream_proxy_carries_every_connection() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let up = upstreams(&rt, dir.path());
    let jump = socks_proxy(&rt, Some(("tester".into(), "p@ss".into())));
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let via = format!("socks5://tester:p%40ss@{}", jump.addr);
    let how = " (SOCKS5, with credentials)";
    let p = start_through(dir.path(), &case, &up, &via, &[], jump.addr, how);
    let (https, http) = every_way_through(&rt, &p, &up, "localhost");
    saw_all(
        &jump.seen,
        &[
            format!("CONNECT localhost:{}", up.https.port()),
            format!("CONNECT {}", up.http),
            format!("CONNECT {}", up.ws),
        ],
    );
    let (status, _) = p.stop();
    assert!(status.success());

    let wrong = format!("socks5://tester:guess@{}", jump.addr);
    refused_through(
        start_through(dir.path(), &case, &up, &wrong, &[], jump.addr, how),
        &[&https, &http],
        &[
            format!("upstream proxy {} (SOCKS5)", jump.addr),
            "the credentials of --upstream-proxy were refused".into(),
        ],
    );
}

/// A SOCKS5 client on the same port: its `CONNECT` is the tunnel an HTTP `CONNECT`
/// opens (intercepted HTTPS, plain HTTP), its user name and password are checked
/// and name the device as `Proxy-Authorization` does; other commands and SOCKS4 are
/// refused with their protocol's answer.
#[test]
fn socks5_clients_are_served_as_http_proxy_clients_are() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let up = upstreams(&rt, dir.path());
    let case = case_file(dir.path(), r#"proxy_user = "pixel7""#);
    let p = Proxy::start_for_with(dir.path(), &case, &up, &["--proxy-auth", "lab:s3cret"]);
    let ours = p.ca_pem().to_str().unwrap().to_string();
    let up_ca = up.ca_pem.to_str().unwrap().to_string();
    let socks = format!("socks5h://pixel7:s3cret@{}", p.addr);
    let https = format!("https://localhost:{}/socks?adid={AD_ID}", up.https.port());
    assert_eq!(
        curl(&["--proxy", &socks, "--cacert", &ours, &https]),
        curl(&["--cacert", &up_ca, &https])
    );
    let http = format!("http://{}/socks-plain?adid={AD_ID}", up.http);
    assert_eq!(
        curl(&["--proxy", &socks, &http]),
        format!("hello /socks-plain?adid={AD_ID}\n").into_bytes()
    );
    for path in ["/socks?", "/socks-plain?"] {
        let f = p.findings_for(&format!("{path}adid={AD_ID}"));
        assert_eq!(f[0]["device"], "pixel7", "{path}: {f:#?}");
        assert_eq!(f[0]["rule"], "share-before-consent");
    }
    // A tunnel to a name (`socks5h://`): the exchange names the server as the client
    // did, and its `server` is the address the proxy connected to.
    let xs = p.jsonl("proxy-exchanges.jsonl");
    let x = xs
        .iter()
        .find(|x| x["path"] == format!("/socks?adid={AD_ID}"))
        .unwrap();
    assert_eq!(x["host"], "localhost", "{x:#}");
    assert_eq!(x["server"], up.https.to_string(), "{x:#}");
    // `socks5://`: curl resolves the name and the tunnel goes to the address; the
    // exchange is still named by the request's Host, as the tap names it (HTTP/1.1:
    // an HTTP/2 request names its server in its own `:authority`).
    let by_address = format!("socks5://pixel7:s3cret@{}", p.addr);
    let https = format!("https://localhost:{}/socks-by-address", up.https.port());
    let resolve = format!("localhost:{}:127.0.0.1", up.https.port());
    let args = ["--http1.1", "--proxy", &by_address, "--resolve", &resolve];
    curl(&[&args[..], &["--cacert", &ours, &https]].concat());
    p.wait_exchanges("/socks-by-address", |xs| {
        xs.iter().any(|x| x["path"] == "/socks-by-address")
    });
    let xs = p.jsonl("proxy-exchanges.jsonl");
    let x = xs
        .iter()
        .find(|x| x["path"] == "/socks-by-address")
        .unwrap();
    assert_eq!(x["host"], "localhost", "{x:#?}");
    // Wrong or no credentials: refused in SOCKS5's own terms.
    let refused = |proxy: String| {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "10", "--proxy", &proxy, &http])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{proxy}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let wrong = refused(format!("socks5h://pixel7:nope@{}", p.addr));
    assert!(wrong.contains("rejected"), "{wrong}");
    let none = refused(format!("socks5h://{}", p.addr));
    assert!(
        none.contains("No authentication method was acceptable"),
        "{none}"
    );
    let v4 = refused(format!("socks4a://{}", p.addr));
    assert!(v4.contains("rejected") || v4.contains("91"), "{v4}");
    // BIND: "command not supported" (7) after the credentials were accepted.
    rt.block_on(async {
        let mut c = TcpStream::connect(p.addr).await.unwrap();
        let mut answer = [0u8; 2];
        c.write_all(&[5, 1, 2]).await.unwrap();
        c.read_exact(&mut answer).await.unwrap();
        assert_eq!(answer, [5, 2]);
        c.write_all(&[&[1, 6][..], b"pixel7", &[6], b"s3cret"].concat())
            .await
            .unwrap();
        c.read_exact(&mut answer).await.unwrap();
        assert_eq!(answer, [1, 0]);
        c.write_all(&[5, 2, 0, 1, 127, 0, 0, 1, 0, 80])
            .await
            .unwrap();
        let mut reply = [0u8; 10];
        c.read_exact(&mut reply).await.unwrap();
        assert_eq!(reply[..2], [5, 7]);
    });
    let xs = p.jsonl("proxy-exchanges.jsonl");
    assert_eq!(xs.len(), 3, "refused clients are not exchanges: {xs:#?}");
    let (status, _) = p.stop();
    assert!(status.success());
}

/// A proxy for the case's `pixel7` (SOCKS5 user `pixel7`, password `s3cret`) that
/// trusts the test upstreams and a server at 127.0.0.1 whose certificate names only
/// `name`, which resolves nowhere: clients reach it through a SOCKS5 tunnel to its
/// address (`--resolve`), under its name.
struct Behind {
    up: Upstreams,
    server: SocketAddr,
    p: Proxy,
    /// The proxy's CA certificate (PEM path), for curl's `--cacert`.
    ours: String,
    /// The proxy's SOCKS5 URL with the user's credentials.
    socks: String,
}

fn behind_socks5(rt: &tokio::runtime::Runtime, dir: &std::path::Path, name: &str) -> Behind {
    let up = upstreams(rt, dir);
    let server = named_only_server(rt, dir, "127.0.0.1", name);
    let named_ca = dir.join(format!("{name}.pem"));
    let case = case_file(dir, r#"proxy_user = "pixel7""#);
    let p = Proxy::start_for_with(
        dir,
        &case,
        &up,
        &[
            "--proxy-auth",
            "lab:s3cret",
            "--upstream-ca",
            named_ca.to_str().unwrap(),
        ],
    );
    let ours = p.ca_pem().to_str().unwrap().to_string();
    let socks = format!("socks5://pixel7:s3cret@{}", p.addr);
    Behind {
        up,
        server,
        p,
        ours,
        socks,
    }
}

/// `socks5://` (the client resolves the name and its tunnel goes to the address):
/// the requests go to that address, with the name the client used as the TLS server
/// name (the certificate checked against it) and as `Host`, over HTTP/1.1 and HTTP/2
/// from the client, to a server whose name resolves nowhere (`.test`) and whose
/// certificate names no address. The exchange names the server by name and records
/// the address it went to.
#[test]
fn a_socks5_tunnel_to_an_address_goes_there_under_the_servers_name() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let name = "shop.consentry.test";
    let Behind {
        server,
        p,
        ours,
        socks: by_address,
        ..
    } = behind_socks5(&rt, dir.path(), name);
    let resolve = format!("{name}:{}:127.0.0.1", server.port());
    for (version, path) in [
        ("--http1.1", "/by-address-h1"),
        ("--http2", "/by-address-h2"),
    ] {
        let url = format!("https://{name}:{}{path}?adid={AD_ID}", server.port());
        let args = [
            version,
            "--proxy",
            &by_address,
            "--resolve",
            &resolve,
            "--cacert",
            &ours,
            &url,
        ];
        assert_eq!(
            String::from_utf8(curl(&args)).unwrap(),
            format!("host={name}:{} path={path}?adid={AD_ID}\n", server.port()),
        );
    }
    p.wait_exchanges("by-address", |xs| {
        xs.iter().filter(|x| x["host"] == name).count() == 2
    });
    for x in p.jsonl("proxy-exchanges.jsonl") {
        assert_eq!(x["host"], name, "{x:#?}");
        assert_eq!(x["server"], server.to_string(), "{x:#?}");
        assert_eq!(x["response"]["status"], 200, "{x:#?}");
    }
    let f = p.findings_for(&format!("/by-address-h2?adid={AD_ID}"));
    assert_eq!(f[0]["device"], "pixel7", "{f:#?}");
    let (status, _) = p.stop();
    assert!(status.success());
}

/// The phone's system traffic through the proxy (Google Play services' check-in,
/// here by a SOCKS5 tunnel to an address under the service's name, as in the test
/// above) is recorded, not judged as the app's; the same identifier to an ordinary
/// host is a finding.
#[test]
fn the_systems_own_services_are_recorded_not_judged() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let name = "android.clients.google.com";
    let Behind {
        up,
        server,
        p,
        ours,
        socks,
    } = behind_socks5(&rt, dir.path(), name);
    for (host, port, path) in [
        (name, server.port(), "/checkin"),
        ("localhost", up.https.port(), "/app"),
    ] {
        let resolve = format!("{host}:{port}:127.0.0.1");
        let url = format!("https://{host}:{port}{path}?adid={AD_ID}");
        let args = [
            "--http1.1",
            "--proxy",
            &socks,
            "--resolve",
            &resolve,
            "--cacert",
            &ours,
            &url,
        ];
        assert!(!curl(&args).is_empty(), "{url}");
    }
    // The app's request came second: once its finding is written, the check-in's
    // judgement is too.
    let app = p.findings_for(&format!("/app?adid={AD_ID}"));
    assert_eq!(app[0]["rule"], "share-before-consent", "{app:#?}");
    let checkin = p.findings_for(&format!("/checkin?adid={AD_ID}"));
    assert!(checkin.is_empty(), "{checkin:#?}");
    let recorded = p.jsonl("proxy-exchanges.jsonl");
    assert!(
        recorded.iter().any(|x| x["host"] == name),
        "the check-in is recorded: {recorded:#?}"
    );
    let (status, _) = p.stop();
    assert!(status.success());
}

/// DNS over HTTPS through the proxy: a name that carries the advertising id is an
/// exchange of its own, named by the name (its domain's name servers receive it
/// whatever resolver carried it), beside the request to the SDK's resolver.
#[test]
fn names_asked_over_dns_over_https_are_judged_as_their_domains() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let resolver = "dns.resolver.example";
    let Behind {
        server,
        p,
        ours,
        socks,
        ..
    } = behind_socks5(&rt, dir.path(), resolver);
    // A DNS query (id 0, one question, type A, class IN) for the name.
    let name = format!("{AD_ID}.b.metrics-sdk.example");
    let query = dns_query(0, &name);
    let body = dir.path().join("query.bin");
    std::fs::write(&body, &query).unwrap();
    let resolve = format!("{resolver}:{}:127.0.0.1", server.port());
    let url = format!("https://{resolver}:{}/dns-query", server.port());
    let data = format!("@{}", body.display());
    let args = [
        "--http1.1",
        "--proxy",
        &socks,
        "--resolve",
        &resolve,
        "--cacert",
        &ours,
        "-H",
        "Content-Type: application/dns-message",
        "--data-binary",
        &data,
        &url,
    ];
    assert!(!curl(&args).is_empty());
    p.wait_exchanges("the name's exchange", |xs| {
        xs.iter().any(|x| x["host"] == name.as_str())
    });
    let by_name = p.findings_for("");
    let hosts: Vec<(&str, &str)> = by_name
        .iter()
        .map(|f| {
            (
                f["destination"]["host"].as_str().unwrap(),
                f["data"][0]["where"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(hosts, [(name.as_str(), "payload")], "{by_name:#?}");
    let via_resolver = p.findings_for("/dns-query");
    assert_eq!(via_resolver.len(), 1, "{via_resolver:#?}");
    assert_eq!(via_resolver[0]["destination"]["host"], resolver);
    let (status, _) = p.stop();
    assert!(status.success());
}

/// `--dns-listen`: the proxy answers its clients' DNS queries by relaying them to
/// `--dns-upstream`. A name that carries the case's data becomes an exchange of its
/// own, judged at the name (as a capture's DNS query is); a name without any is
/// relayed and not recorded; and the answers name the client's later tunnel to the
/// answered address in a protocol the proxy does not read (a push SDK's), which
/// was named by the address alone, and a pinned client's handshake to it.
#[test]
fn the_dns_relay_judges_the_names_and_its_answers_name_tunnels_to_addresses() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let resolver = fake_resolver(std::net::Ipv4Addr::LOCALHOST).to_string();
    let relay = ["--dns-listen", "127.0.0.1:0", "--dns-upstream", &resolver];
    let p = Proxy::start(dir.path(), &case, &relay);
    let dns = p.dns.expect("the DNS relay's address on the console");
    let (reply, from) = dns_ask(
        "127.0.0.1:0",
        dns,
        &dns_query(0x4242, "push.metrics-sdk.example"),
    );
    assert_eq!(from, dns);
    // The client's id, no error, the resolver's one answer.
    assert_eq!(&reply[..2], &[0x42, 0x42]);
    assert_eq!((reply[3] & 0x0f, &reply[6..8]), (0, &[0u8, 1][..]));
    assert_eq!(&reply[reply.len() - 4..], &[127, 0, 0, 1]);
    // The same over TCP (a client's retry after a truncated answer): the same port,
    // each message after its length.
    let mut tcp = std::net::TcpStream::connect(dns).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let query = dns_query(0x4343, "push.metrics-sdk.example");
    std::io::Write::write_all(&mut tcp, &[&[0, query.len() as u8][..], &query].concat()).unwrap();
    let mut len = [0u8; 2];
    std::io::Read::read_exact(&mut tcp, &mut len).unwrap();
    let mut over_tcp = vec![0u8; usize::from(u16::from_be_bytes(len))];
    std::io::Read::read_exact(&mut tcp, &mut over_tcp).unwrap();
    assert_eq!(
        (&over_tcp[..2], over_tcp[3] & 0x0f),
        (&[0x43u8, 0x43][..], 0)
    );
    assert_eq!(&over_tcp[over_tcp.len() - 4..], &[127, 0, 0, 1]);
    let name = format!("{AD_ID}.b.metrics-sdk.example");
    let (reply, _) = dns_ask("127.0.0.1:0", dns, &dns_query(7, &name));
    assert_eq!(&reply[..2], &[0, 7]);
    p.wait_exchanges("the name's exchange", |xs| {
        xs.iter().any(|x| x["host"] == name.as_str())
    });
    let xs = p.jsonl("proxy-exchanges.jsonl");
    assert_eq!(xs.len(), 1, "only the name with data: {xs:#?}");
    let x = &xs[0];
    assert_eq!(
        (&x["scheme"], &x["device"]),
        (&"dns".into(), &"pixel7".into())
    );
    assert_eq!(x["server"], resolver);
    let f = p.findings_for("");
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0]["rule"], "share-before-consent");
    assert_eq!(f[0]["destination"]["host"], name.as_str());
    assert_eq!(f[0]["data"][0]["where"], "payload");
    // The live line names the receiver without the labels that carry the value;
    // the finding written out keeps the name whole, as evidence.
    let out = p.wait_stdout("the finding's line", |out| {
        out.iter().any(|l| l.contains("share-before-consent"))
    });
    let line = out.iter().find(|l| l.contains("share-before-consent"));
    assert!(
        line.is_some_and(|l| l.contains(" •••.b.metrics-sdk.example advertising_id(plain)")),
        "{out:#?}"
    );
    assert!(!out.iter().any(|l| l.contains(AD_ID)), "{out:#?}");

    // A push SDK's long connection to the address its name was answered with, in its
    // own protocol: named by that name (the latest answered for the address).
    let server = rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut bytes = [0u8; 4];
            s.read_exact(&mut bytes).await.unwrap();
            s.write_all(b"ok\n").await.unwrap();
            let _ = s.read_to_end(&mut Vec::new()).await;
        });
        addr
    });
    rt.block_on(async {
        let (mut c, head) = tunnel(p.addr, server).await;
        assert!(head.starts_with(b"HTTP/1.1 200"), "{head:?}");
        c.write_all(format!("\0\x01\0\x10adid={AD_ID}").as_bytes())
            .await
            .unwrap();
        let mut ok = [0u8; 3];
        c.read_exact(&mut ok).await.unwrap();
        c.shutdown().await.unwrap();
    });
    let tcp = exchanges_of_scheme(&p, "tcp", 1);
    assert_eq!(tcp[0]["host"], name.as_str(), "{tcp:#?}");
    assert_eq!(tcp[0]["server"], server.to_string());
    // A pinned client's handshake to the address (no server name in it): recorded
    // under the name too.
    let up = upstreams(&rt, dir.path());
    let pinned = rt.block_on(rust_client(p.addr, up.https, &up.ca_der, "/pinned"));
    assert!(pinned.is_err(), "our certificate must be rejected");
    p.wait_exchanges("the pinned handshake", |xs| {
        xs.iter().any(|x| x["method"] == "CONNECT")
    });
    let xs = p.jsonl("proxy-exchanges.jsonl");
    let pinned: Vec<_> = xs.iter().filter(|x| x["method"] == "CONNECT").collect();
    assert_eq!(pinned[0]["host"], name.as_str(), "{pinned:#?}");
    assert_eq!(
        pinned[0]["anomalies"][0]["kind"], "tls-rejected-by-client",
        "{pinned:#?}"
    );
    let status = p.status();
    assert_eq!(
        (
            &status["dns_queries"],
            &status["dns_unanswered"],
            &status["dns_refused"]
        ),
        (&3.into(), &0.into(), &0.into()),
        "{status:#?}"
    );
    let stdout = std::sync::Arc::clone(&p.stdout);
    let (status, err) = p.stop();
    assert!(status.success());
    // The pinned handshake's exchange is named by the name answered for its address,
    // which carries the value: its anomaly's line masks it as the finding lines do.
    assert!(
        err.iter().any(
            |l| l.contains("tls-rejected-by-client (source) in exchange")
                && l.contains(" to •••.b.metrics-sdk.example;")
        ),
        "{err:#?}"
    );
    let out = stdout.lock().unwrap().clone();
    let logged = out.iter().chain(&err).find(|l| l.contains(AD_ID));
    assert!(logged.is_none(), "{logged:?}");
}

/// An SDK that resolves through an HTTP DNS API instead of the network's resolver
/// (HTTPDNS in plain HTTP, in the query and posted as a form, a resolver's JSON API
/// over HTTPS, gzipped): a name that carries the case's data is judged at the name,
/// as a DoH query's, and the answers name the SDK's later tunnel to the address by
/// the name asked, as the relay's do
/// (no `--dns-listen` here).
#[test]
fn http_dns_lookups_are_judged_and_their_answers_name_tunnels() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let up = upstreams(&rt, dir.path());
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let p = Proxy::start_for_with(dir.path(), &case, &up, &[]);
    let name = format!("{AD_ID}.b.metrics-sdk.example");
    let url = format!("http://{}/d?dn={name}&ttl=1", up.http);
    let proxy = p.url();
    assert_eq!(curl(&["--proxy", &proxy, &url]), b"127.0.0.1,60");
    p.wait_exchanges("the name's exchange", |xs| {
        xs.iter().any(|x| x["host"] == name.as_str())
    });
    let f = p.findings_for("");
    let at_name: Vec<_> = f
        .iter()
        .filter(|f| f["destination"]["host"] == name.as_str())
        .collect();
    assert_eq!(at_name.len(), 1, "{f:#?}");
    assert_eq!(at_name[0]["data"][0]["where"], "payload");
    let path = format!("/d?dn={name}&ttl=1");
    assert_eq!(p.findings_for(&path).len(), 1, "the request itself too");

    // A push SDK's connection to the answered address, in its own protocol.
    let server = rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut bytes = [0u8; 4];
                    s.read_exact(&mut bytes).await.unwrap();
                    s.write_all(b"ok\n").await.unwrap();
                    let _ = s.read_to_end(&mut Vec::new()).await;
                });
            }
        });
        addr
    });
    let push = |p: &Proxy| {
        rt.block_on(async {
            let (mut c, head) = tunnel(p.addr, server).await;
            assert!(head.starts_with(b"HTTP/1.1 200"), "{head:?}");
            c.write_all(b"\0\x01\0\x02hi").await.unwrap();
            let mut ok = [0u8; 3];
            c.read_exact(&mut ok).await.unwrap();
            c.shutdown().await.unwrap();
        })
    };
    push(&p);
    let tcp = exchanges_of_scheme(&p, "tcp", 1);
    assert_eq!(tcp[0]["host"], name.as_str(), "{tcp:#?}");

    // The JSON API's gzipped answer names it anew (the latest answer wins).
    let json_name = "gateway.push-sdk.example";
    let resolve = format!("localhost:{}:127.0.0.1", up.https.port());
    let url = format!(
        "https://localhost:{}/resolve?name={json_name}&type=A",
        up.https.port()
    );
    let ours = p.ca_pem().display().to_string();
    let answer = curl(&[
        "--proxy",
        &proxy,
        "--resolve",
        &resolve,
        "--cacert",
        &ours,
        &url,
    ]);
    assert_eq!(&answer[..2], &[0x1f, 0x8b], "passed on as sent, gzipped");
    p.wait_exchanges("the JSON lookup", |xs| {
        xs.iter().any(|x| {
            x["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("/resolve"))
        })
    });
    push(&p);
    let tcp = exchanges_of_scheme(&p, "tcp", 2);
    assert_eq!(tcp[1]["host"], json_name, "{tcp:#?}");

    // A lookup posted as a form (curl's `--data`: `application/x-www-form-urlencoded`)
    // names it anew too.
    let posted_name = "posted.push-sdk.example";
    let url = format!("http://{}/d", up.http);
    let form = format!("dn={posted_name}&id=100000");
    assert_eq!(
        curl(&["--proxy", &proxy, "--data", &form, &url]),
        b"127.0.0.1,60"
    );
    p.wait_exchanges("the posted lookup", |xs| {
        xs.iter()
            .any(|x| x["method"] == "POST" && x["path"] == "/d")
    });
    push(&p);
    let tcp = exchanges_of_scheme(&p, "tcp", 3);
    assert_eq!(tcp[2]["host"], posted_name, "{tcp:#?}");
    let (status, _) = p.stop();
    assert!(status.success());
}

/// `--allow-host`: only matching hosts are intercepted; the others are tunnelled
/// untouched (the server's own certificate reaches the client) and not recorded.
#[test]
fn only_allowed_hosts_are_intercepted() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let up = upstreams(&rt, dir.path());
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let p = Proxy::start_for_with(dir.path(), &case, &up, &["--allow-host", "^localhost$"]);
    let tunnelled = rt
        .block_on(rust_client(p.addr, up.https, &up.ca_der, "/elsewhere"))
        .expect("a host not allowed is tunnelled");
    assert_eq!(body_of(&tunnelled), b"hello /elsewhere\n");
    let ours = p.ca_pem().to_str().unwrap().to_string();
    let allowed = format!("https://localhost:{}/allowed?adid={AD_ID}", up.https.port());
    assert_eq!(
        curl(&["--proxy", &p.url(), "--cacert", &ours, &allowed]),
        format!("hello /allowed?adid={AD_ID}\n").into_bytes()
    );
    let findings = p.findings_for(&format!("/allowed?adid={AD_ID}"));
    assert_eq!(findings[0]["rule"], "share-before-consent");
    let (status, _) = p.stop();
    assert!(status.success());
    let paths: Vec<_> = recorded_paths(&dir.path().join("proxy-exchanges.jsonl"));
    assert!(!paths.iter().any(|x| x.contains("elsewhere")), "{paths:?}");
}

fn recorded_paths(jsonl: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["path"].to_string())
        .collect()
}

/// The exchanges written with `scheme`, once `n` of them are.
fn exchanges_of_scheme(p: &Proxy, scheme: &str, n: usize) -> Vec<serde_json::Value> {
    let of_scheme = |xs: &[serde_json::Value]| -> Vec<serde_json::Value> {
        xs.iter()
            .filter(|x| x["scheme"] == scheme)
            .cloned()
            .collect()
    };
    p.wait_exchanges(&format!("{n} {scheme} exchanges"), |xs| {
        of_scheme(xs).len() >= n
    });
    of_scheme(&p.jsonl("proxy-exchanges.jsonl"))
}

/// The exchanges of `scheme` a stopped proxy wrote to `dir`'s `proxy-exchanges.jsonl`.
fn written_exchanges_of_scheme(dir: &std::path::Path, scheme: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("proxy-exchanges.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|x: &serde_json::Value| x["scheme"] == scheme)
        .collect()
}

/// One message of a push SDK's own protocol: a binary header, then JSON with the
/// identifier, then `filler` bytes of heartbeats.
fn push_message(filler: usize) -> Vec<u8> {
    let json = format!(r#"{{"cmd":"register","adid":"{AD_ID}"}}"#);
    let mut m = vec![0x00, 0x01, 0x00, json.len() as u8];
    m.extend_from_slice(json.as_bytes());
    m.extend(std::iter::repeat_n(0xA5, filler));
    m
}

/// A tunnel whose client speaks neither TLS nor HTTP (a push SDK's own long
/// connection): passed through byte for byte both ways, and recorded as it goes,
/// one metadata-only `tcp` exchange per burst of client bytes (a burst ends after a
/// second of silence, at 64 KiB, or with the tunnel), its bytes searched as the tap
/// searches them: 1 MiB per tunnel, the rest counted, not searched.
#[test]
fn tunnels_in_a_protocol_the_proxy_does_not_read_are_passed_on_and_searched() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let p = Proxy::start(dir.path(), &case, &[]);
    // The identifier again across the end of the first 64 KiB (18 of its bytes on
    // each side), and once more after it.
    let cut_at = 65_536 - 18 - push_message(0).len();
    let long = [
        push_message(cut_at),
        AD_ID.as_bytes().to_vec(),
        vec![0xA5; 4_000],
        AD_ID.as_bytes().to_vec(),
    ]
    .concat();
    let short = push_message(0);
    // The protocol's server: answers each client's first message with its length
    // once it has it, and keeps it for the test; later bytes are read and dropped.
    let (server, received) = rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let expected = [long.len(), short.len()];
        let received = tokio::spawn(async move {
            let mut got = Vec::new();
            for want in expected {
                let (mut s, _) = l.accept().await.unwrap();
                let mut bytes = vec![0u8; want];
                s.read_exact(&mut bytes).await.unwrap();
                s.write_all(format!("got {want}\n").as_bytes())
                    .await
                    .unwrap();
                got.push(bytes);
                tokio::spawn(async move {
                    let mut rest = Vec::new();
                    let _ = s.read_to_end(&mut rest).await;
                });
            }
            got
        });
        (addr, received)
    });
    let open = |message: Vec<u8>| {
        rt.block_on(async {
            let (mut c, head) = tunnel(p.addr, server).await;
            assert!(head.starts_with(b"HTTP/1.1 200"), "{head:?}");
            c.write_all(&message).await.unwrap();
            let mut answer = [0u8; 16];
            let n = c.read(&mut answer).await.unwrap();
            assert_eq!(answer[..n], *format!("got {}\n", message.len()).as_bytes());
            c
        })
    };
    let findings_of = |x: &serde_json::Value| p.findings_of(x);

    // One message past 64 KiB, then the client closes: two bursts, the first out
    // as soon as it is full, each with its identifiers found: the second also the
    // one cut between them, from the first's last bytes.
    let mut c = open(long.clone());
    rt.block_on(async {
        c.shutdown().await.unwrap();
        c.read_to_end(&mut Vec::new()).await.unwrap();
    });
    let xs = exchanges_of_scheme(&p, "tcp", 2);
    let mut wheres = Vec::new();
    for x in &xs {
        assert_eq!(x["metadata_only"], true);
        assert_eq!(x["host"], "127.0.0.1");
        assert_eq!(x["server"], server.to_string());
        assert_eq!(x["device"], "pixel7");
        assert_eq!(x["method"], "");
        assert!(x["anomalies"].is_null(), "{x:#?}");
        let f = findings_of(x);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0]["rule"], "share-before-consent");
        let data = f[0]["data"].as_array().unwrap();
        assert!(
            data.iter().all(|d| d["type"] == "advertising_id"),
            "{data:#?}"
        );
        wheres.push(
            data.iter()
                .map(|d| d["where"].as_str().unwrap().to_string())
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(
        wheres,
        [vec!["payload"], vec!["payload", "payload-across-parts"]],
        "in the first burst; after the cut and across it in the second"
    );

    // A long connection: each burst is recorded while it stays open.
    let mut c = open(short.clone());
    let xs = exchanges_of_scheme(&p, "tcp", 3);
    assert_eq!(
        findings_of(&xs[2]).len(),
        1,
        "the first burst, the tunnel open"
    );
    assert!(xs[2]["anomalies"].is_null(), "{:#?}", xs[2]);
    // Heartbeats past the tunnel's 1 MiB: 64 KiB bursts up to it, the rest counted.
    let depth = 1 << 20;
    let filler = vec![0xA5u8; 1_100_000];
    rt.block_on(c.write_all(&filler)).unwrap();
    let bursts = (depth - short.len()).div_ceil(65_536);
    let xs = exchanges_of_scheme(&p, "tcp", 3 + bursts);
    assert!(
        xs[3..].iter().all(|x| x["anomalies"].is_null()),
        "{:#?}",
        &xs[3..]
    );
    rt.block_on(c.write_all(b"ping")).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let received = rt.block_on(received).unwrap();
    assert_eq!(
        received,
        [long.clone(), short.clone()],
        "passed on untouched"
    );

    // Stopped with the tunnel open: the bytes past the 1 MiB are said unsearched.
    let (status, _) = p.stop();
    assert!(status.success());
    drop(c);
    let xs = written_exchanges_of_scheme(dir.path(), "tcp");
    assert_eq!(xs.len(), 4 + bursts, "{xs:#?}");
    let detail = xs[3 + bursts]["anomalies"][0]["detail"].as_str().unwrap();
    let past = filler.len() + 4 - (depth - short.len());
    assert!(
        detail.starts_with(&format!("{past} of the client's bytes")),
        "{detail}"
    );
    assert!(
        detail.contains("past the tunnel's first 1024 KiB"),
        "{detail}"
    );
}

/// SSH through a tunnel is encrypted after its identification strings: passed on
/// untouched and recorded as one contact when it ends, however many bursts its
/// keystrokes make, its bytes not searched (the tap makes such a connection one
/// metadata exchange too).
#[test]
fn an_ssh_tunnel_is_one_contact() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let p = Proxy::start(dir.path(), &case, &[]);
    let (server, echoed) = rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let echoed = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            s.write_all(b"SSH-2.0-OpenSSH_9.2p1\r\n").await.unwrap();
            let mut all = Vec::new();
            s.read_to_end(&mut all).await.unwrap();
            all
        });
        (addr, echoed)
    });
    let sent = rt.block_on(async {
        let (mut c, head) = tunnel(p.addr, server).await;
        assert!(head.starts_with(b"HTTP/1.1 200"), "{head:?}");
        let mut id = [0u8; 23];
        c.read_exact(&mut id).await.unwrap();
        assert_eq!(&id, b"SSH-2.0-OpenSSH_9.2p1\r\n");
        let mut sent = b"SSH-2.0-OpenSSH_9.6\r\n".to_vec();
        c.write_all(&sent).await.unwrap();
        // Keystrokes more than a second apart (an identifier among them, which an
        // encrypted session would not show: not searched).
        for keys in [&b"\x5a\x5a\x5a"[..], AD_ID.as_bytes()] {
            tokio::time::sleep(Duration::from_millis(1_200)).await;
            c.write_all(keys).await.unwrap();
            sent.extend_from_slice(keys);
        }
        c.shutdown().await.unwrap();
        c.read_to_end(&mut Vec::new()).await.unwrap();
        sent
    });
    assert_eq!(rt.block_on(echoed).unwrap(), sent, "passed on untouched");
    let xs = exchanges_of_scheme(&p, "tcp", 1);
    let findings = p.findings_of(&xs[0]);
    assert!(findings.is_empty(), "{findings:#?}");
    let (status, _) = p.stop();
    assert!(status.success());
    let xs_after = written_exchanges_of_scheme(dir.path(), "tcp");
    assert_eq!(xs_after.len(), 1, "{xs_after:#?}");
    assert_eq!(xs_after[0]["id"], xs[0]["id"]);
    assert!(xs[0]["anomalies"].is_null(), "{:#?}", xs[0]);
}

/// Plain HTTP in a tunnel (a SOCKS5 client's every plain connection, curl's
/// `--proxytunnel`) is read whatever its first request's method, and HTTP/2 with
/// prior knowledge too; only TLS and HTTP are read, anything else is
/// passed on and searched as above.
#[test]
fn plain_http_in_a_tunnel_is_read_whatever_it_starts_with() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let up = upstreams(&rt, dir.path());
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let p = Proxy::start_for(dir.path(), &case, &up);
    let url = |path: &str| format!("http://{}{path}?adid={AD_ID}", up.http);
    let proxied = ["--proxytunnel", "--proxy", &p.url()];
    for (path, extra) in [
        ("/tunnel-post", &["-d", "event=open"][..]),
        ("/tunnel-h2c", &["--http2-prior-knowledge"][..]),
        ("/tunnel-options", &["-X", "OPTIONS"][..]),
    ] {
        let mut args = proxied.to_vec();
        args.extend_from_slice(extra);
        let target = url(path);
        args.push(&target);
        assert_eq!(
            curl(&args),
            format!("hello {path}?adid={AD_ID}\n").into_bytes(),
            "{path}"
        );
        let f = p.findings_for(&format!("{path}?adid={AD_ID}"));
        assert_eq!(f.len(), 1, "{path}: {f:#?}");
        assert_eq!(f[0]["rule"], "share-before-consent", "{path}");
    }
    let xs = p.jsonl("proxy-exchanges.jsonl");
    let method = |path: &str| {
        xs.iter()
            .find(|x| x["path"].as_str().is_some_and(|p| p.starts_with(path)))
            .map(|x| x["method"].clone())
    };
    assert_eq!(method("/tunnel-post"), Some("POST".into()));
    assert_eq!(method("/tunnel-options"), Some("OPTIONS".into()));
    assert!(xs.iter().all(|x| x["scheme"] == "http"), "{xs:#?}");
    let (status, _) = p.stop();
    assert!(status.success());
}

/// A protocol whose server speaks first (SMTP here): the client, silent after its
/// `200`, gets the server's greeting (the proxy connects once the client has said
/// nothing for a second), and the tunnel is passed on and recorded as above.
#[test]
fn a_server_that_speaks_first_is_reached_and_its_tunnel_recorded() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let p = Proxy::start(dir.path(), &case, &[]);
    let command = format!("MAIL FROM:<{AD_ID}@example.org>\r\n");
    let (server, received) = rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let received = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            s.write_all(b"220 mail.example.org ESMTP\r\n")
                .await
                .unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            got
        });
        (addr, received)
    });
    rt.block_on(async {
        let (mut c, head) = tunnel(p.addr, server).await;
        assert!(head.starts_with(b"HTTP/1.1 200"), "{head:?}");
        let mut greeting = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(10), c.read(&mut greeting))
            .await
            .expect("the server's greeting reaches the client")
            .unwrap();
        assert_eq!(&greeting[..n], b"220 mail.example.org ESMTP\r\n");
        c.write_all(command.as_bytes()).await.unwrap();
        c.shutdown().await.unwrap();
    });
    assert_eq!(rt.block_on(received).unwrap(), command.as_bytes());
    let xs = exchanges_of_scheme(&p, "tcp", 1);
    let findings = p.findings_of(&xs[0]);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0]["data"][0]["where"], "payload");
    let (status, _) = p.stop();
    assert!(status.success());
}
