//! What the proxy answers itself at `http://consentry.invalid/` (reachable only
//! through the proxy: `.invalid` never resolves): the CA certificate and how to
//! install it, and `/consent`, which marks a consent decision on the proxy's clock.

use std::net::SocketAddr;

use hyper::{header, Request, Response, StatusCode};

use super::body::{self, Body};

use super::Shared;
use crate::consent::timeline::{ConsentEvent, EventSource};
use crate::consent::{describe_purposes, Decision, Purpose};
use crate::timestamp::Timestamp;

/// Query parameters read from a consent query, at most (the rest is ignored).
const MAX_PARAMS: usize = 16;

/// The answer to a request for the magic host from `client` (device `device`).
pub fn serve<B>(
    shared: &Shared,
    client: SocketAddr,
    device: &str,
    req: &Request<B>,
) -> Response<Body> {
    let path = req.uri().path();
    let query = req.uri().query().unwrap_or("");
    match path {
        "/" | "/index.html" => respond(StatusCode::OK, "text/html; charset=utf-8", index(shared)),
        "/consentry-ca.pem" => respond(
            StatusCode::OK,
            "application/x-pem-file",
            shared.ca_pem.clone(),
        ),
        "/consentry-ca.crt" | "/consentry-ca.cer" => {
            let mut r = Response::new(body::full(shared.ca_der.clone()));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/x-x509-ca-cert"),
            );
            r
        }
        "/consent" => {
            match consent_from_query(
                shared,
                query,
                Some(device),
                format!("proxy magic URL from {client}"),
            ) {
                Ok(e) => {
                    let text = describe(&e);
                    shared.mark_consent(e);
                    respond(StatusCode::OK, "text/plain; charset=utf-8", text)
                }
                Err(msg) => respond(
                    StatusCode::BAD_REQUEST,
                    "text/plain; charset=utf-8",
                    format!("consentry: {msg}\n"),
                ),
            }
        }
        _ => respond(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "consentry: nothing here; see http://consentry.invalid/\n".into(),
        ),
    }
}

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut r = Response::new(body::full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    r
}

/// `recorded: pixel7 refused advertising, analytics at 2026-…Z` (one line).
pub fn describe(e: &ConsentEvent) -> String {
    format!(
        "recorded: {} {} {} at {}\n",
        e.device,
        e.decision.as_str(),
        describe_purposes(&e.purposes),
        e.at
    )
}

/// A manual consent event, now, from `device=D&decision=…&purposes=a,b`. `device`
/// defaults to `default_device` (the requesting client's, for the magic URL).
pub fn consent_from_query(
    shared: &Shared,
    query: &str,
    default_device: Option<&str>,
    evidence: String,
) -> Result<ConsentEvent, String> {
    let mut device = None;
    let mut decision = None;
    let mut purposes = Vec::new();
    for (k, v) in query
        .split('&')
        .filter(|p| !p.is_empty())
        .take(MAX_PARAMS)
        .map(|p| p.split_once('=').unwrap_or((p, "")))
    {
        let v = percent_encoding::percent_decode_str(&v.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned();
        match k {
            "device" => device = Some(v),
            "decision" => {
                decision = Some(match v.as_str() {
                    "granted" | "grant" | "agree" => Decision::Granted,
                    "refused" | "refuse" | "disagree" => Decision::Refused,
                    "withdrawn" | "withdraw" => Decision::Withdrawn,
                    other => {
                        return Err(format!(
                            "decision {other:?} is not granted, refused or withdrawn"
                        ))
                    }
                })
            }
            "purposes" => {
                for p in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    if p == "all" {
                        continue;
                    }
                    let parsed = Purpose::parse(p).ok_or_else(|| {
                        format!(
                            "purpose {p:?} is not one of {}",
                            describe_purposes(&Purpose::ALL)
                        )
                    })?;
                    if !purposes.contains(&parsed) {
                        purposes.push(parsed);
                    }
                }
            }
            _ => {}
        }
    }
    let decision = decision.ok_or("missing decision=granted|refused|withdrawn")?;
    let device = match device.filter(|d| !d.is_empty()) {
        Some(d) => d,
        None => default_device
            .filter(|d| *d != "unknown")
            .ok_or("missing device=ID (the client is no known device)")?
            .to_string(),
    };
    if !shared.knows_device(&device) {
        return Err(format!("{device:?} is not a device of the case"));
    }
    Ok(ConsentEvent {
        device,
        at: Timestamp::now(),
        decision,
        purposes,
        vendors: Vec::new(),
        source: EventSource::Manual,
        evidence: Some(evidence),
    })
}

fn index(shared: &Shared) -> String {
    use sha2::Digest;
    let fp: Vec<String> = sha2::Sha256::digest(&shared.ca_der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    let c = &shared.counters;
    let n = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    format!(
        r#"<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>consentry proxy</title>
<style>body{{font-family:sans-serif;max-width:44em;margin:1em auto;padding:0 1em;line-height:1.4}}code{{background:#eee;padding:0 .2em}}</style>
</head><body>
<h1>consentry proxy</h1>
<p>This device's traffic goes through a consentry interception proxy for a consent test.
To see HTTPS traffic, install and trust the consentry CA certificate:</p>
<p><a href="/consentry-ca.crt">consentry-ca.crt</a> (DER, Android, iOS, Windows, macOS) ·
<a href="/consentry-ca.pem">consentry-ca.pem</a> (PEM, Firefox, Linux)</p>
<p>SHA-256 fingerprint: <code>{fp}</code></p>
<h2>Android</h2>
<ul>
<li><b>User store</b> (Android 11+): download the .crt, then Settings → Security → Encryption &amp; credentials →
Install a certificate → CA certificate. Apps targeting API 24+ trust user CAs only if their
<code>network_security_config</code> says so (<code>&lt;certificates src="user"/&gt;</code> in
<code>&lt;trust-anchors&gt;</code>); debug builds can add it.</li>
<li><b>System store</b> (rooted device or emulator with a writable system image): copy the PEM to
<code>/system/etc/security/cacerts/&lt;subject_hash_old&gt;.0</code>
(<code>openssl x509 -inform PEM -subject_hash_old -in consentry-ca.pem</code>), mode 644; on Android 14+
the store lives in the APEX <code>/apex/com.android.conscrypt/cacerts</code> and needs a mount overlay (e.g. a Magisk module).</li>
</ul>
<h2>iOS / iPadOS</h2>
<p>Open this page in Safari, download the .crt, install the profile (Settings → General → VPN &amp; Device
Management), then enable full trust: Settings → General → About → Certificate Trust Settings.</p>
<h2>Desktop browsers</h2>
<p>Firefox: Settings → Privacy &amp; Security → Certificates → View Certificates → Authorities → Import
(.pem, trust for websites). Chrome/Edge: use the operating system's store (Windows: certmgr, Trusted Root
Certification Authorities; macOS: Keychain Access, System, Always Trust; Linux: <code>certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n consentry -i consentry-ca.pem</code>).</p>
<h2>Marking consent</h2>
<p>When the app shows its consent dialog, mark the decision on the proxy's clock:
<code>http://consentry.invalid/consent?decision=refused&amp;purposes=advertising,analytics</code>
(add <code>device=ID</code> if this client is not identified).</p>
<p>Apps using QUIC (HTTP/3) cannot be intercepted: block UDP port 443 on the test network so they fall back to TCP.</p>
<p>So far: {x} exchanges, {u} upstream errors, {p} pinned hosts, {ce} consent events.</p>
</body></html>
"#,
        fp = fp.join(":"),
        x = n(&c.exchanges),
        u = n(&c.upstream_errors),
        p = n(&c.pinned_hosts),
        ce = n(&c.consent_events),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> (tempfile::TempDir, std::sync::Arc<Shared>) {
        let case = crate::case::parse(
            "[case]\nid = \"t\"\n[[device]]\nid = \"pixel7\"\n[device.identifiers]\nemail = \"tester@example.org\"\n",
            "case.toml",
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca = super::super::ca::Ca::load_or_create(dir.path()).unwrap();
        let (tx, _rx) = super::super::events();
        let s = Shared::new(
            &case,
            super::super::Settings::default(),
            &ca,
            tx,
            "t".into(),
        );
        (dir, s)
    }

    #[test]
    fn consent_queries_parse_and_name_what_is_wrong() {
        let (_d, s) = shared();
        let e = consent_from_query(
            &s,
            "device=pixel7&decision=refused&purposes=advertising%2Canalytics,advertising",
            None,
            "x".into(),
        )
        .unwrap();
        assert_eq!(e.device, "pixel7");
        assert_eq!(e.decision, Decision::Refused);
        assert_eq!(e.purposes, [Purpose::Advertising, Purpose::Analytics]);
        assert_eq!(e.source, EventSource::Manual);
        // The requesting client's device is the default; "all" means every purpose.
        let e = consent_from_query(
            &s,
            "decision=granted&purposes=all",
            Some("pixel7"),
            "x".into(),
        )
        .unwrap();
        assert!(e.purposes.is_empty());
        let err = |q: &str, d: Option<&str>| consent_from_query(&s, q, d, "x".into()).unwrap_err();
        assert!(err("device=pixel7", None).contains("missing decision"));
        assert!(err("device=pixel7&decision=maybe", None).contains("\"maybe\""));
        assert!(err("device=pixel7&decision=granted&purposes=spying", None).contains("\"spying\""));
        assert!(err("device=ipad&decision=granted", None).contains("not a device"));
        assert!(err("decision=granted", Some("unknown")).contains("missing device"));
    }
}
