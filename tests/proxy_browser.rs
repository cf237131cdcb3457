//! A real browser through `consentry proxy` (issue 4, "Tests with real clients"):
//! headless Chromium with `--proxy-server` loads a shop page over HTTPS from a local
//! upstream server, trusting the proxy's CA by its key
//! (`--ignore-certificate-errors-spki-list`, no system or NSS store touched); the
//! page's script sends a tracker beacon carrying the device's advertising id, and the
//! finding appears in the proxy's output, attributed to the device.
//!
//! A second page opens a WebSocket, as Chromium does it: offering permessage-deflate,
//! to a server that takes the extension whenever offered and then compresses.
//!
//! Only 127.0.0.1 is contacted: the page is `https://127.0.0.1:PORT/shop.html`, the
//! tracker `https://localhost:PORT/collect` (a second host name that the proxy, not
//! only the browser, can resolve without touching /etc/hosts). Without Chromium the test
//! fails and says so, unless `CONSENTRY_SKIP_BROWSER=1` asks to skip it.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::browser::{chromium, spki_sha256_base64, HEADLESS};
use common::proxy_harness::*;

/// Headless `browser` loads `page` through the proxy `p`, trusting its CA by key, with
/// a profile in `dir`; returns the DOM once the page has loaded, and what the browser
/// printed on standard error.
fn load_through(browser: &Path, p: &Proxy, dir: &Path, page: &str) -> (String, String) {
    let spki = spki_sha256_base64(&p.ca_der());
    let out = Command::new(browser)
        .args(HEADLESS)
        .args([
            // Through the proxy also for loopback hosts (Chromium bypasses them by default).
            "--proxy-bypass-list=<-loopback>",
            // Wait for the page's network activity before printing the DOM.
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("--proxy-server=http://{}", p.addr))
        .arg(format!("--ignore-certificate-errors-spki-list={spki}"))
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(page)
        .output()
        .expect("starting chromium");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "chromium failed: {stderr}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

#[test]
fn chromium_through_the_proxy_sends_a_beacon_and_the_finding_appears() {
    let Some(browser) = chromium() else {
        return;
    };
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let up = upstreams(&rt, dir.path());
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let p = Proxy::start_for(dir.path(), &case, &up);
    let page = format!("https://127.0.0.1:{}/shop.html", up.https.port());
    let (dom, stderr) = load_through(&browser, &p, dir.path(), &page);
    // The page came through the proxy, intercepted (our certificate was accepted),
    // and its script ran to the end.
    assert!(dom.contains("Example Shop"), "{dom}");
    assert!(dom.contains("beacon-sent"), "{dom}\n{stderr}");

    // The beacon is an exchange to the tracker host, with the finding for its body.
    p.wait_exchanges("the beacon", |xs| {
        xs.iter()
            .any(|x| x["host"] == "localhost" && x["path"] == "/collect?app=shop")
    });
    std::thread::sleep(Duration::from_millis(300));
    let xs = p.jsonl("proxy-exchanges.jsonl");
    let page_x = xs
        .iter()
        .find(|x| x["path"] == "/shop.html")
        .unwrap_or_else(|| panic!("the page load is recorded: {xs:#?}"));
    assert_eq!(page_x["tls"]["decrypted"], true);
    assert_eq!(page_x["device"], "pixel7");
    let beacons: Vec<_> = xs
        .iter()
        .filter(|x| x["path"] == "/collect?app=shop" && x["method"] == "POST")
        .collect();
    assert_eq!(beacons.len(), 1, "recorded once: {beacons:#?}");
    let findings = p.findings_of(beacons[0]);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let f = &findings[0];
    assert_eq!(f["rule"], "share-before-consent");
    assert_eq!(f["device"], "pixel7");
    assert_eq!(f["destination"]["host"], "localhost");
    assert_eq!(f["destination"]["party"], "third");
    assert_eq!(f["data"][0]["type"], "advertising_id");
    assert_eq!(f["data"][0]["where"], "body:$.gaid");
    // Printed live too, without the identifier's value.
    let printed = p.wait_stdout("the finding's line", |out| {
        out.iter().any(|l| l.contains("share-before-consent"))
    });
    assert!(printed.iter().all(|l| !l.contains(AD_ID)));
    let (status, _) = p.stop();
    assert!(status.success());
}

/// Chromium's WebSocket through the proxy to a server that compresses whenever the
/// client's offer lets it: the page gets the server's message, and the advertising
/// id it sends back is a finding. (Before the proxy stopped passing the offer on, the
/// server compressed, the proxy could not read its frame and the page saw its
/// WebSocket close.)
#[test]
fn chromium_websocket_through_the_proxy_keeps_working_and_its_message_is_analysed() {
    let Some(browser) = chromium() else {
        return;
    };
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let up = upstreams(&rt, dir.path());
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let ws_port = listener.local_addr().unwrap().port();
    let tls = up.tls.clone();
    rt.spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let tls = tls.clone();
            tokio::spawn(async move {
                if let Ok(s) = tls.accept(tcp).await {
                    ws_deflating_server(s, "hello from the server").await;
                }
            });
        }
    });
    let case = case_file(dir.path(), r#"addresses = ["127.0.0.1"]"#);
    let p = Proxy::start_for(dir.path(), &case, &up);
    let page = format!("https://127.0.0.1:{}/ws.html?ws={ws_port}", up.https.port());
    let (dom, stderr) = load_through(&browser, &p, dir.path(), &page);
    assert!(
        dom.contains("ws-got hello from the server"),
        "{dom}\n{stderr}"
    );
    p.wait_exchanges("the page's WebSocket message", |xs| {
        xs.iter().any(|x| x["method"] == "WS")
    });
    std::thread::sleep(Duration::from_millis(300));
    let xs = p.jsonl("proxy-exchanges.jsonl");
    let ws: Vec<_> = xs.iter().filter(|x| x["method"] == "WS").collect();
    assert_eq!(ws.len(), 1, "{ws:#?}");
    assert_eq!(ws[0]["scheme"], "wss");
    assert_eq!(ws[0]["host"], "localhost");
    let findings = p.findings_of(ws[0]);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0]["data"][0]["type"], "advertising_id");
    assert_eq!(findings[0]["data"][0]["where"], "body:$.gaid");
    let (status, _) = p.stop();
    assert!(status.success());
}
