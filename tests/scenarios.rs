//! A HAR the pipeline has never seen, built here request by request: each request
//! carries one identifier in one encoding and place, and the findings must name
//! exactly that rule, host, type, encoding and place — and nothing for the requests
//! that carry no personal data.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::Arc;

use base64::Engine;
use consentry::cli::analyze::{analyze_files, AnalysisRun};
use consentry::rules::Options;
use flate2::write::GzEncoder;
use serde_json::{json, Value};
use sha2::Digest;

const AD_ID: &str = "38400000-8cf0-11bd-b23e-10b96e40000d";
const ANDROID_ID: &str = "9774d56d682e549c";
const IMEI: &str = "490154203237518";
const OAID: &str = "a1b2c3d4-0000-4e5f-8a9b-0c1d2e3f4a5b";
const EMAIL: &str = "tester@example.org";
const SERIAL: &str = "R58M12ABCDE";

const CASE: &str = r#"
[case]
id = "scenario"
[app]
name = "Shop"
first_party = ["example-shop.com"]
[[device]]
id = "phone"
[device.identifiers]
advertising_id = "38400000-8cf0-11bd-b23e-10b96e40000d"
android_id = "9774d56d682e549c"
imei = "490154203237518"
oaid = "a1b2c3d4-0000-4e5f-8a9b-0c1d2e3f4a5b"
mac = "02:00:00:44:55:66"
phone = "+8613800138000"
email = "tester@example.org"
serial = "R58M12ABCDE"
location = { lat = 31.230416, lon = 121.473701 }
"#;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn entry(
    second: u32,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    post: Option<Value>,
) -> Value {
    let mut request = json!({
        "method": method,
        "url": url,
        "httpVersion": "HTTP/1.1",
        "headers": headers.iter().map(|(n, v)| json!({"name": n, "value": v})).collect::<Vec<_>>(),
        "queryString": [],
        "cookies": [],
        "headersSize": -1,
        "bodySize": -1,
    });
    if let Some(p) = post {
        request["postData"] = p;
    }
    json!({
        "startedDateTime": format!("2026-11-28T10:00:{second:02}.000+00:00"),
        "time": 10,
        "request": request,
        "response": {"status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1", "headers": [],
                     "cookies": [], "content": {"size": 0, "mimeType": "text/plain"},
                     "redirectURL": "", "headersSize": -1, "bodySize": 0},
        "cache": {}, "timings": {"send": 0, "wait": 0, "receive": 0}
    })
}

/// `entries` written as a HAR file named `name` and analysed with `CASE`.
fn analyze_har(name: &str, entries: Vec<Value>) -> AnalysisRun {
    let har = json!({"log": {"version": "1.2", "creator": {"name": "test", "version": "1"}, "entries": entries}});
    let dir = tempfile::tempdir().unwrap();
    let har_path = dir.path().join(name);
    std::fs::write(&har_path, serde_json::to_vec(&har).unwrap()).unwrap();
    let case = Arc::new(consentry::case::parse(CASE, "scenario.toml").unwrap());
    analyze_files(case, &[har_path], None, Options::default(), 1).unwrap()
}

fn text(mime: &str, body: &str) -> Option<Value> {
    Some(json!({"mimeType": mime, "text": body}))
}

#[test]
fn each_encoding_and_place_is_reported_exactly() {
    let imei_md5 = hex(&md5::Md5::digest(IMEI));
    let phone_sha256 = hex(&sha2::Sha256::digest("8613800138000"));
    let android_sha1_upper = hex(&sha1::Sha1::digest(ANDROID_ID)).to_uppercase();
    let email_sha512 = hex(&sha2::Sha512::digest(EMAIL));
    let nested = b64(json!({"dev": {"mac": "020000445566"}})
        .to_string()
        .as_bytes());
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(json!({"sdk": "x", "oaid": OAID}).to_string().as_bytes())
        .unwrap();
    let gzipped = gz.finish().unwrap();
    let multipart = format!(
        "--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n--XyZ\r\nContent-Disposition: form-data; name=\"imei\"\r\n\r\n{IMEI}\r\n--XyZ--\r\n"
    );

    let entries = vec![
        entry(
            1,
            "GET",
            &format!("https://ads.mintegral.net/a?gaid={AD_ID}&v=2"),
            &[],
            None,
        ),
        entry(
            2,
            "POST",
            "https://graph.facebook.com/v16.0/1/activities",
            &[],
            text(
                "application/x-www-form-urlencoded",
                &format!("event=X&ud%5Bph%5D={phone_sha256}"),
            ),
        ),
        entry(
            3,
            "POST",
            "https://ulogs.umeng.com/unify_logs",
            &[],
            text(
                "application/json",
                &json!({"h": {"mid": imei_md5, "os": "android"}}).to_string(),
            ),
        ),
        entry(
            4,
            "GET",
            "https://t.appsflyer.com/api/v6/ping",
            &[("X-Device", &b64(ANDROID_ID.as_bytes()))],
            None,
        ),
        entry(
            5,
            "GET",
            "https://api.mixpanel.com/track",
            &[("Cookie", "theme=dark; uid=tester%40example.org")],
            None,
        ),
        entry(
            6,
            "POST",
            "https://sdk.e.qq.com/report",
            &[("Content-Encoding", "gzip")],
            Some(
                json!({"mimeType": "application/json", "text": b64(&gzipped), "encoding": "base64"}),
            ),
        ),
        entry(
            7,
            "POST",
            "https://api.getui.com/upload",
            &[],
            text("multipart/form-data; boundary=XyZ", &multipart),
        ),
        entry(
            8,
            "GET",
            &format!("https://log.tbs.qq.com/q?data={}", urlencode(&nested)),
            &[],
            None,
        ),
        entry(
            9,
            "POST",
            "https://api2.amplitude.com/2/httpapi",
            &[],
            text(
                "application/json",
                &json!({"events": [{"device_id": android_sha1_upper}]}).to_string(),
            ),
        ),
        entry(
            10,
            "GET",
            &format!(
                "https://sdk.talkingdata.com/g/d?sn={}",
                hex(SERIAL.as_bytes())
            ),
            &[],
            None,
        ),
        entry(
            11,
            "POST",
            "https://api.braze.com/users/track",
            &[],
            text(
                "application/json",
                &json!({"attributes": [{"email_hash": email_sha512}]}).to_string(),
            ),
        ),
        entry(
            12,
            "POST",
            "https://api.amap.com/v3/ip",
            &[],
            text(
                "application/json",
                &json!({"pos": {"lat": 31.2304, "lng": 121.4737}}).to_string(),
            ),
        ),
        // No personal data: random ids, a timestamp, another device's UUID.
        entry(
            13,
            "POST",
            "https://app-measurement.com/a",
            &[],
            text(
                "application/json",
                &json!({"id": "5f0c3e1a9b7d4c2e8f6a1b3c5d7e9f0a",
                  "ts": 1795860000123u64, "uuid": "11111111-2222-4333-8444-555555555555"})
                .to_string(),
            ),
        ),
        entry(
            14,
            "GET",
            "https://api.example-shop.com/v1/feed?page=2",
            &[],
            None,
        ),
    ];
    let run = analyze_har("unseen.har", entries);

    let got: BTreeSet<(String, String, String, String, String)> = run
        .findings
        .iter()
        .flat_map(|f| {
            f.data.iter().map(move |d| {
                (
                    f.rule.as_str().to_string(),
                    f.destination.host.clone(),
                    d.kind.clone(),
                    d.encoding.clone(),
                    d.location.clone(),
                )
            })
        })
        .collect();
    let s = |r: &str, h: &str, k: &str, e: &str, w: &str| {
        (r.into(), h.into(), k.into(), e.into(), w.into())
    };
    let want: BTreeSet<_> = [
        s(
            "share-before-consent",
            "ads.mintegral.net",
            "advertising_id",
            "plain",
            "query:gaid",
        ),
        s(
            "share-before-consent",
            "graph.facebook.com",
            "phone",
            "sha256",
            "form:ud[ph]",
        ),
        s(
            "sensitive-without-consent",
            "graph.facebook.com",
            "phone",
            "sha256",
            "form:ud[ph]",
        ),
        s(
            "share-before-consent",
            "ulogs.umeng.com",
            "imei",
            "md5",
            "body:$.h.mid",
        ),
        s(
            "share-before-consent",
            "t.appsflyer.com",
            "android_id",
            "base64",
            "header:X-Device",
        ),
        s(
            "share-before-consent",
            "api.mixpanel.com",
            "email",
            "plain",
            "cookie:uid",
        ),
        s(
            "share-before-consent",
            "sdk.e.qq.com",
            "oaid",
            "plain",
            "body:$.oaid",
        ),
        s(
            "share-before-consent",
            "api.getui.com",
            "imei",
            "plain",
            "form:imei",
        ),
        s(
            "share-before-consent",
            "log.tbs.qq.com",
            "mac",
            "base64",
            "query:data$.dev.mac",
        ),
        s(
            "share-before-consent",
            "api2.amplitude.com",
            "android_id",
            "sha1",
            "body:$.events[0].device_id",
        ),
        s(
            "share-before-consent",
            "sdk.talkingdata.com",
            "serial",
            "hex",
            "query:sn",
        ),
        s(
            "share-before-consent",
            "api.braze.com",
            "email",
            "sha512",
            "body:$.attributes[0].email_hash",
        ),
        s(
            "share-before-consent",
            "api.amap.com",
            "location",
            "plain",
            "body:$.pos.lat",
        ),
        s(
            "sensitive-without-consent",
            "api.amap.com",
            "location",
            "plain",
            "body:$.pos.lat",
        ),
    ]
    .into_iter()
    .collect();
    let missing: Vec<_> = want.difference(&got).collect();
    let extra: Vec<_> = got.difference(&want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing: {missing:#?}\nextra: {extra:#?}"
    );
    assert_eq!(run.summary.exchanges, 14);
}

fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A first-launch dialog whose "Reject all" is recorded with Sourcepoint, then an ad
/// request with the advertising id: the CMP call is a wire refusal, and the ad
/// request ignores it.
#[test]
fn cmp_call_refusal_then_ad_request_is_signal_ignored() {
    let entries =
        vec![
        entry(
            1,
            "POST",
            "https://cdn.privacy-mgmt.com/wrapper/v2/choice/gdpr/13?env=prod&scriptType=android",
            &[("Content-Type", "application/json")],
            text("application/json", r#"{"uuid":"u-1","messageId":1,"sendPVData":true}"#),
        ),
        entry(
            3,
            "GET",
            &format!("https://ads.mintegral.net/openapi/ad/v3?gaid={AD_ID}"),
            &[],
            None,
        ),
    ];
    let run = analyze_har("cmp.har", entries);

    let ignored: Vec<_> = run
        .findings
        .iter()
        .filter(|f| f.rule.as_str() == "signal-ignored")
        .collect();
    assert_eq!(ignored.len(), 1, "{:#?}", run.findings);
    let f = ignored[0];
    assert_eq!(f.destination.host, "ads.mintegral.net");
    assert_eq!(f.data[0].kind, "advertising_id");
    assert_eq!(f.consent.state, "refused");
    assert!(
        f.summary.contains("Sourcepoint") && f.summary.contains("cmp:Sourcepoint"),
        "{}",
        f.summary
    );
    assert!(!f.summary.contains("heuristic"), "{}", f.summary);
    // The CMP call itself carries no personal data and yields no finding.
    assert!(run
        .findings
        .iter()
        .all(|f| f.destination.host != "cdn.privacy-mgmt.com"));
}

/// An app's own DNS-over-HTTPS lookups in a HAR (mitmproxy's export holds them): a
/// name carrying the advertising id is judged as sent to its own domain, as in a
/// capture and behind the proxy, besides the request to the resolver; a public
/// resolver is infrastructure, not flagged.
#[test]
fn names_asked_over_dns_over_https_in_a_har_are_judged_as_their_domains() {
    // A DNS query (id 0, one question, type A, class IN) for `name`, base64url.
    let query = |name: &str| {
        let mut m = vec![0u8, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            m.push(label.len() as u8);
            m.extend_from_slice(label.as_bytes());
        }
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(m)
    };
    let name = format!("{AD_ID}.b.metrics-sdk.example");
    let entries = vec![
        entry(
            1,
            "GET",
            &format!(
                "https://dns.sdk-resolver.example/dns-query?dns={}",
                query(&name)
            ),
            &[("Accept", "application/dns-message")],
            None,
        ),
        entry(
            2,
            "GET",
            &format!("https://dns.google/dns-query?dns={}", query(&name)),
            &[("Accept", "application/dns-message")],
            None,
        ),
        entry(
            3,
            "GET",
            &format!(
                "https://dns.google/dns-query?dns={}",
                query("example-shop.com")
            ),
            &[],
            None,
        ),
    ];
    let run = analyze_har("doh.har", entries);
    let got: Vec<(String, String, String)> = run
        .findings
        .iter()
        .map(|f| {
            (
                f.at.to_string(),
                f.destination.host.clone(),
                f.data[0].location.clone(),
            )
        })
        .collect();
    let at = |s: u32| format!("2026-11-28T10:00:{s:02}.000000Z");
    let mut want = vec![
        (at(1), name.clone(), "payload".to_string()),
        (
            at(1),
            "dns.sdk-resolver.example".to_string(),
            "query:dns".to_string(),
        ),
        (at(2), name.clone(), "payload".to_string()),
    ];
    let mut got_sorted = got.clone();
    got_sorted.sort();
    want.sort();
    assert_eq!(got_sorted, want, "{:#?}", run.findings);
    // 3 requests and the two names' exchanges.
    assert_eq!(run.summary.exchanges, 5);
}

/// Tracing SDKs send random ids on every request (Datadog's are decimal 63-bit
/// integers): some pass the bank card or IMEI checks by chance. In the fields the
/// tracing formats define they are no personal data; the same numbers elsewhere
/// still are, and a known identifier in a tracing field is still found.
#[test]
fn tracing_ids_are_not_bank_cards() {
    // A fixed sequence of 63-bit ids (SplitMix64), as Datadog's SDKs draw them.
    let mut state = 0x5eed_u64;
    let mut next_id = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 1).to_string()
    };
    let intake = "https://browser-intake-datadoghq.com/api/v2/rum";
    let mut traced = Vec::new();
    let mut untraced = Vec::new();
    for i in 0..400 {
        let (trace, parent, span) = (next_id(), next_id(), next_id());
        let body = json!({"_dd": {"trace_id": trace, "span_id": span}, "type": "resource"});
        let headers = [
            ("x-datadog-trace-id", trace.as_str()),
            ("x-datadog-parent-id", parent.as_str()),
            ("x-datadog-origin", "rum"),
        ];
        traced.push(entry(
            i % 60,
            "POST",
            intake,
            &headers,
            text("application/json", &body.to_string()),
        ));
        // The same numbers in fields that do not name a tracing id.
        let body = json!({"ref": trace, "order": span});
        untraced.push(entry(
            i % 60,
            "POST",
            intake,
            &[("x-order-ref", parent.as_str())],
            text("application/json", &body.to_string()),
        ));
    }
    // A device identifier in a tracing header is still reported.
    traced.push(entry(
        59,
        "GET",
        intake,
        &[(
            "traceparent",
            &format!("00-{ANDROID_ID}{ANDROID_ID}-{ANDROID_ID}-01"),
        )],
        None,
    ));
    let data = |run: &AnalysisRun| -> BTreeSet<(String, String, String)> {
        run.findings
            .iter()
            .flat_map(|f| f.data.iter())
            .map(|d| {
                (
                    d.kind.clone(),
                    d.location.clone(),
                    format!("{:?}", d.confidence),
                )
            })
            .collect()
    };

    let traced = analyze_har("traced.har", traced);
    assert_eq!(
        data(&traced),
        [(
            "android_id".to_string(),
            "header:traceparent".to_string(),
            "Exact".to_string()
        )]
        .into_iter()
        .collect(),
        "{:#?}",
        traced.findings
    );
    // The control: the same ids outside tracing fields do pass the checks, in each
    // kind of place, so the run above had something to drop.
    let untraced = analyze_har("untraced.har", untraced);
    let places: BTreeSet<String> = data(&untraced)
        .into_iter()
        .filter(|(_, _, confidence)| confidence == "Pattern")
        .map(|(_, place, _)| place)
        .collect();
    assert_eq!(
        places,
        ["body:$.order", "body:$.ref", "header:x-order-ref"]
            .map(String::from)
            .into_iter()
            .collect()
    );
}
