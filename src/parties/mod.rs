//! Who receives the data: first or third party, which company, which purposes
//! (DESIGN.md §4).
//!
//! The analysis calls [`Classifier::classify`] with an exchange's host and puts the
//! [`Destination`] into its findings; the rules read `party`, `purposes` and
//! `infrastructure` to pick the consent rule, and `platform` to leave the operating
//! system's own services unjudged.
//!
//! Two views of a host, each where it is right:
//! - **site** ([`domain::site`]): the registrable domain by the full Public Suffix
//!   List, private suffixes included. `alice.github.io` and `bob.github.io` are
//!   different sites, `my-app.firebaseapp.com` is that app's site, not Google's.
//!   The site is reported, and it decides the first party together with the case.
//! - **tracker match** ([`trackers::TrackerDb::lookup`]): the longest database domain
//!   that is a suffix of the host itself. An entry `cloudfront.net` (Amazon, CDN)
//!   covers `abc.cloudfront.net` even though that host is its own site; an entry
//!   `app-measurement.com` covers `xyz.app-measurement.com`.
//!
//! **First party**: the host is, or is a subdomain of, a domain in the case's
//! `app.first_party`; or the database assigns the host to the same company (the
//! entity's `owner`, else its name) as one of those domains. That second rule only
//! adopts a company whose database domain is the first-party domain itself or its
//! site (see [`Classifier::with_db`]), so a case listing `my-app.firebaseapp.com`
//! does not make all of Google first party.
//!
//! A host that is a customer site on a known platform (`abc.cloudfront.net`,
//! `evil.github.io`) has `tenant = true`. Whoever runs it is unknown, so as a third
//! party it is classified as an unknown third party (no entity, the default
//! purposes), not exempted as the platform's infrastructure: a tracker hosted on
//! CloudFront is still flagged. Its `hosted_by` names the platform (the reader's
//! lead to whoever runs it).
//!
//! For the first party the reported `entity` is the database's entity when it knows
//! the host's own company, else the app's name; `purposes` is empty (any purpose
//! covers the operator). A known third party needs the union of its categories'
//! purposes (none for infrastructure). An unknown third party, and an entity with
//! an unknown category, needs the case's `app.unknown_third_party_purposes`, or
//! advertising + analytics when that is empty (DESIGN.md §6). IP addresses are
//! never looked up in the database and are first party only when listed exactly.

pub mod domain;
mod memo;
pub mod trackers;

use std::sync::Arc;

use serde::Serialize;

use crate::case::App;
use crate::consent::Purpose;

pub use domain::{normalize_host, Host};
pub use trackers::{Entity, LoadError, Problem, ProblemKind, TrackerDb};

/// Purposes assumed for an unknown third party when the case names none.
pub const DEFAULT_UNKNOWN_PURPOSES: [Purpose; 2] = [Purpose::Advertising, Purpose::Analytics];

/// Whether the receiver is the app's operator or someone else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Party {
    First,
    Third,
}

/// The receiver of an exchange, as a finding reports it.
/// Read back (from a case store), the fields findings do not print are empty.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Destination {
    /// Normalised host (lower case, no port or trailing dot, punycode).
    pub host: String,
    /// Registrable domain (eTLD+1) of `host`, or the host itself for an address.
    pub site: String,
    pub party: Party,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub entity: Option<String>,
    /// The platform that serves a tenant's site (`Amazon CloudFront` for
    /// `abc.cloudfront.net`): who hosts it, not who runs it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub hosted_by: Option<String>,
    pub categories: Vec<String>,
    /// Purposes this receiver needs consent for; empty for the first party.
    #[serde(skip)]
    pub purposes: Vec<Purpose>,
    /// Whether the tracker database knows this receiver.
    #[serde(skip)]
    pub known: bool,
    /// Infrastructure (CDN, hosting): not flagged unless the case says so.
    #[serde(skip)]
    pub infrastructure: bool,
    /// The operating system's own service (device check-in, connectivity check, the
    /// system's push channel): not the app's receiver, not judged unless the case
    /// says so. Never for a host the case lists as first party itself.
    #[serde(skip)]
    pub platform: bool,
    /// The host is a customer's own site on a platform the database knows (a private
    /// public suffix such as `abc.cloudfront.net`), run by a tenant the database does
    /// not know.
    #[serde(skip)]
    pub tenant: bool,
    /// The receiver's IAB TCF Global Vendor List id, when the database knows it.
    #[serde(skip)]
    pub iab_vendor_id: Option<u32>,
}

/// Classifies hosts for one case.
#[derive(Debug, Default)]
pub struct Classifier {
    db: Arc<TrackerDb>,
    /// The case's first-party domains, normalised.
    first_party: Vec<String>,
    /// Companies the database attributes a first-party domain to.
    first_party_companies: Vec<String>,
    app_name: String,
    unknown_purposes: Vec<Purpose>,
    /// Names this classifier's results in the per-thread [`memo`] (0: not memoised).
    memo_id: u64,
}

impl Classifier {
    /// A classifier for `app` over the embedded tracker database.
    pub fn new(app: &App) -> Self {
        Self::with_db(app, TrackerDb::embedded())
    }

    /// A classifier for `app` over an explicit database (the user's own lists).
    ///
    /// A first-party domain pulls its database company into the first party only when
    /// the database domain it matched is the domain itself, or is its site and not an
    /// infrastructure entry: `example-shop.com` listed under "Example Corp" makes
    /// `exshop-cdn.net` of the same company first party, while
    /// `my-app.firebaseapp.com` (matched by `firebaseapp.com`, a different site) and
    /// `shop.example.github.io` do not adopt the hosting platform's company.
    pub fn with_db(app: &App, db: Arc<TrackerDb>) -> Self {
        let first_party: Vec<String> = app
            .first_party
            .iter()
            .map(|d| normalize_host(d).name)
            .filter(|d| !d.is_empty())
            .collect();
        let mut companies: Vec<String> = Vec::new();
        for d in &first_party {
            let Some(m) = db.lookup(d) else { continue };
            let own_site = domain::site(&normalize_host(d)) == m.domain;
            if m.domain == d || (own_site && !m.entity.infrastructure()) {
                companies.push(m.entity.company().to_string());
            }
        }
        companies.sort();
        companies.dedup();
        let mut unknown_purposes = if app.unknown_third_party_purposes.is_empty() {
            DEFAULT_UNKNOWN_PURPOSES.to_vec()
        } else {
            app.unknown_third_party_purposes.clone()
        };
        unknown_purposes.sort();
        unknown_purposes.dedup();
        Classifier {
            db,
            first_party,
            first_party_companies: companies,
            app_name: app.name.clone(),
            unknown_purposes,
            memo_id: memo::next_id(),
        }
    }

    /// The database this classifier uses.
    pub fn db(&self) -> &TrackerDb {
        &self.db
    }

    /// Purposes assumed for a third party the database does not know.
    pub fn unknown_purposes(&self) -> &[Purpose] {
        &self.unknown_purposes
    }

    /// Classifies one host (any spelling: port, brackets, case, trailing dot). Shared:
    /// the same host's answer is remembered per thread (see [`memo`]).
    pub fn classify(&self, host: &str) -> Arc<Destination> {
        memo::memoised(self.memo_id, host, || self.classify_anew(host))
    }

    /// [`Classifier::classify`] without the memo.
    fn classify_anew(&self, host: &str) -> Destination {
        let host = normalize_host(host);
        let site = domain::site(&host).to_string();
        let found = if host.ip.is_some() {
            None
        } else {
            self.db.lookup(&host.name)
        };
        // An address is first party only when listed itself ("0.0.1" is no parent).
        let by_domain = self.first_party.iter().any(|d| match host.ip {
            Some(_) => host.name == *d,
            None => domain::is_within(&host.name, d),
        });
        let by_company = found.is_some_and(|m| {
            self.first_party_companies
                .iter()
                .any(|c| c == m.entity.company())
        });
        let party = if by_domain || by_company {
            Party::First
        } else {
            Party::Third
        };
        // An infrastructure match coarser than the site: a platform customer's site
        // (not the platform's own host, a public suffix itself: `s3.amazonaws.com`).
        let tenant = !domain::is_public_suffix(&host)
            && found.is_some_and(|m| m.domain.len() < site.len() && m.entity.infrastructure());
        // Only an unknown receiver's: the first party's site names its operator.
        let hosted_by = found
            .filter(|_| tenant && party == Party::Third)
            .map(|m| m.entity.name.clone());
        let (entity, categories, infrastructure) = match found {
            Some(m) => (
                Some(m.entity.name.clone()),
                m.entity.categories.clone(),
                m.entity.infrastructure(),
            ),
            None => (None, Vec::new(), false),
        };
        let purposes = match (party, found) {
            (Party::First, _) => Vec::new(),
            (Party::Third, None) => self.unknown_purposes.clone(),
            (Party::Third, Some(m)) => {
                let mut p = m.entity.purposes().to_vec();
                if m.entity.needs_default_purposes() {
                    p.extend_from_slice(&self.unknown_purposes);
                    p.sort();
                    p.dedup();
                }
                p
            }
        };
        // The operator is the first party's entity unless the database names the
        // host's own company (not merely the platform hosting the operator's site).
        let entity = match (party, entity) {
            (Party::First, None) if !self.app_name.is_empty() => Some(self.app_name.clone()),
            (Party::First, Some(_)) if tenant && !self.app_name.is_empty() => {
                Some(self.app_name.clone())
            }
            (_, e) => e,
        };
        if party == Party::Third && tenant {
            // A customer's site on a hosting platform (`abc.cloudfront.net`): whoever
            // runs it is unknown, so it is judged as an unknown third party rather
            // than exempted as the platform's infrastructure.
            return Destination {
                host: host.name,
                site,
                party,
                entity: None,
                hosted_by,
                categories: Vec::new(),
                purposes: self.unknown_purposes.clone(),
                known: false,
                infrastructure: false,
                platform: false,
                tenant,
                iab_vendor_id: None,
            };
        }
        Destination {
            host: host.name,
            site,
            party,
            entity,
            hosted_by,
            categories,
            purposes,
            known: found.is_some(),
            infrastructure,
            platform: !by_domain && found.is_some_and(|m| m.entity.platform()),
            tenant,
            iab_vendor_id: found.and_then(|m| m.entity.iab_vendor_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Purpose::{Advertising as Ad, Analytics as An, Functional as Fu, Social as So};

    fn app(first_party: &[&str]) -> App {
        App {
            name: "Example Shop".into(),
            package: "com.example.shop".into(),
            first_party: first_party.iter().map(|s| s.to_string()).collect(),
            unknown_third_party_purposes: Vec::new(),
        }
    }

    fn shop() -> Classifier {
        Classifier::new(&app(&["example-shop.com", "shop.example.github.io"]))
    }

    /// (host, site, party, entity, purposes, infrastructure)
    type Row = (
        &'static str,
        &'static str,
        Party,
        Option<&'static str>,
        &'static [Purpose],
        bool,
    );

    #[test]
    fn classification_table() {
        use Party::{First, Third};
        #[rustfmt::skip]
        let rows: &[Row] = &[
            // First party by the case, any spelling.
            ("api.example-shop.com", "example-shop.com", First, Some("Example Shop"), &[], false),
            ("EXAMPLE-SHOP.COM.:443", "example-shop.com", First, Some("Example Shop"), &[], false),
            ("shop.example.github.io", "example.github.io", First, Some("Example Shop"), &[], true),
            // Another customer of the same platform is a third party (GitHub Pages hosting).
            ("evil.github.io", "evil.github.io", Third, None, &[Ad, An], false),
            ("example-shop.com.evil.net", "evil.net", Third, None, &[Ad, An], false),
            // Western SDKs.
            ("graph.facebook.com", "facebook.com", Third, Some("Meta Platforms, Inc."), &[Ad, An, So], false),
            ("googleads.g.doubleclick.net", "doubleclick.net", Third, Some("Google Ads"), &[Ad], false),
            // A wildcard name from a server certificate (`tap::server_name`).
            ("*.g.doubleclick.net", "doubleclick.net", Third, Some("Google Ads"), &[Ad], false),
            ("app-measurement.com", "app-measurement.com", Third, Some("Google Analytics for Firebase"), &[An], false),
            ("xyz.app-measurement.com", "app-measurement.com", Third, Some("Google Analytics for Firebase"), &[An], false),
            ("firebase-settings.crashlytics.com", "crashlytics.com", Third, Some("Firebase Crashlytics"), &[An], false),
            ("crashlyticsreports-pa.googleapis.com", "crashlyticsreports-pa.googleapis.com", Third, Some("Firebase Crashlytics"), &[An], false),
            ("t.appsflyer.com", "appsflyer.com", Third, Some("AppsFlyer"), &[Ad, An], false),
            ("app.adjust.com", "adjust.com", Third, Some("Adjust"), &[Ad, An], false),
            ("o123.ingest.sentry.io", "sentry.io", Third, Some("Sentry"), &[An], false),
            ("api2.amplitude.com", "amplitude.com", Third, Some("Amplitude"), &[An], false),
            ("consent.cookiebot.com", "cookiebot.com", Third, Some("Cookiebot (Usercentrics)"), &[Fu], false),
            // Infrastructure: private-suffix hosts are their own site, but the
            // database still knows the platform.
            ("d111111abcdef8.cloudfront.net", "d111111abcdef8.cloudfront.net", Third, None, &[Ad, An], false),
            ("bucket.s3.amazonaws.com", "bucket.s3.amazonaws.com", Third, None, &[Ad, An], false),
            // The platform's own host, a public suffix itself, is the platform.
            ("s3.amazonaws.com", "s3.amazonaws.com", Third, Some("Amazon Web Services"), &[], true),
            ("cloudfront.net", "cloudfront.net", Third, Some("Amazon CloudFront"), &[], true),
            ("cdnjs.cloudflare.com", "cloudflare.com", Third, Some("Cloudflare"), &[], true),
            // Public DNS resolvers act for the device; the names asked of them are
            // judged as the names' own domains' (`tap`).
            ("dns.google", "dns.google", Third, Some("Google Public DNS"), &[], true),
            ("one.one.one.one", "one.one", Third, Some("Cloudflare"), &[], true),
            ("doh.pub", "doh.pub", Third, Some("DNSPod Public DNS"), &[], true),
            // The operating system's own services: neither purposes nor infrastructure
            // (`Destination::platform`, not judged).
            ("android.clients.google.com", "google.com", Third, Some("Android system services (Google Play services)"), &[], false),
            // Generic Google API host (googleapis.com is a private suffix, so every
            // host is its own site): not attributed to a tracker product, no tenant.
            ("translation.googleapis.com", "translation.googleapis.com", Third, Some("Google Cloud APIs"), &[Fu], false),
            ("maps.googleapis.com", "maps.googleapis.com", Third, Some("Google Maps Platform"), &[Fu], false),
            // Chinese SDKs.
            ("ulogs.umeng.com", "umeng.com", Third, Some("Umeng"), &[An], false),
            ("alogus.umengcloud.com", "umengcloud.com", Third, Some("Umeng"), &[An], false),
            ("msg.umengcloud.com", "umengcloud.com", Third, Some("Umeng Push"), &[Ad, Fu], false),
            ("log.umsns.com", "umsns.com", Third, Some("Umeng Share"), &[So], false),
            ("c-hzgt2.getui.com", "getui.com", Third, Some("Getui"), &[Fu], false),
            ("otheve.beacon.qq.com", "qq.com", Third, Some("Tencent Beacon"), &[An], false),
            ("open.weixin.qq.com", "qq.com", Third, Some("WeChat Open Platform"), &[So, Fu], false),
            ("www.qq.com", "qq.com", Third, Some("Tencent"), &[So, Fu], false),
            ("log.snssdk.com", "snssdk.com", Third, Some("ByteDance"), &[Ad, An, So], false),
            ("gator.volces.com", "volces.com", Third, Some("Volcano Engine"), &[An], false),
            ("open.e.kuaishou.com", "kuaishou.com", Third, Some("Kuaishou Ads"), &[Ad], false),
            ("log.mmstat.com", "mmstat.com", Third, Some("Alibaba User Tracking (UT)"), &[An], false),
            ("mobilegw.alipay.com", "alipay.com", Third, Some("Alipay"), &[Fu], false),
            ("fp.fraudmetrix.cn", "fraudmetrix.cn", Third, Some("Tongdun"), &[An], false),
            ("api.xmpush.xiaomi.com", "xiaomi.com", Third, Some("Xiaomi Push"), &[Fu], false),
            ("metrics1.data.hicloud.com", "hicloud.com", Third, Some("Huawei Analytics"), &[An], false),
            ("api.weibo.com", "weibo.com", Third, Some("Sina Weibo"), &[Ad, So], false),
            ("oss-cn-hangzhou.aliyuncs.com", "aliyuncs.com", Third, Some("Alibaba Cloud"), &[], true),
            ("dypnsapi.aliyuncs.com", "aliyuncs.com", Third, Some("Alibaba Cloud Phone Number Verification"), &[Fu], false),
            ("api.jpush.cn", "jpush.cn", Third, Some("JPush (Jiguang)"), &[Fu], false),
            ("sdk.open.phone.igexin.com", "igexin.com", Third, Some("Getui"), &[Fu], false),
            ("android.bugly.qq.com", "qq.com", Third, Some("Tencent Bugly"), &[An], false),
            ("mi.gdt.qq.com", "qq.com", Third, Some("Tencent Ads (GDT)"), &[Ad], false),
            ("hmma.baidu.com", "baidu.com", Third, Some("Baidu Mobile Statistics"), &[An], false),
            ("api.talkingdata.com", "talkingdata.com", Third, Some("TalkingData"), &[Ad, An], false),
            ("api-access.pangolin-sdk-toutiao.com", "pangolin-sdk-toutiao.com", Third, Some("Pangle (ByteDance)"), &[Ad], false),
            ("fp-it.fengkongcloud.com", "fengkongcloud.com", Third, Some("Shumei"), &[An], false),
            ("api.sensorsdata.cn", "sensorsdata.cn", Third, Some("Sensors Data"), &[An], false),
            ("restapi.amap.com", "amap.com", Third, Some("Amap (AutoNavi)"), &[Fu], false),
            // Unknown third party, addresses, single labels.
            ("api.unknown-vendor.example", "unknown-vendor.example", Third, None, &[Ad, An], false),
            ("203.0.113.7:443", "203.0.113.7", Third, None, &[Ad, An], false),
            ("[2001:db8::7]:443", "2001:db8::7", Third, None, &[Ad, An], false),
            ("localhost", "localhost", Third, None, &[Ad, An], false),
            ("api.shop.co.uk", "shop.co.uk", Third, None, &[Ad, An], false),
            ("www.例子.中国", "xn--fsqu00a.xn--fiqs8s", Third, None, &[Ad, An], false),
        ];
        let c = shop();
        for &(host, site, party, entity, purposes, infra) in rows {
            let d = c.classify(host);
            assert_eq!(d.site, site, "site of {host}");
            assert_eq!(d.party, party, "party of {host}");
            assert_eq!(d.entity.as_deref(), entity, "entity of {host}");
            assert_eq!(d.purposes, purposes, "purposes of {host}");
            assert_eq!(d.infrastructure, infra, "infrastructure of {host}");
            // A customer's site on a platform, not the platform's own host.
            let platform_itself = ["s3.amazonaws.com", "cloudfront.net"].contains(&host);
            let platform = ["github.io", "cloudfront.net", "amazonaws.com"]
                .iter()
                .any(|p| host.contains(p))
                && !platform_itself;
            assert_eq!(d.tenant, platform, "tenant {host}");
            // A third party's site on a platform names it; no other host does.
            let hosted_by = match host {
                _ if !platform || party == First => None,
                h if h.contains("cloudfront.net") => Some("Amazon CloudFront"),
                h if h.contains("github.io") => Some("GitHub Pages"),
                h if h.contains("amazonaws.com") => Some("Amazon Web Services"),
                _ => Some("?"),
            };
            assert_eq!(d.hosted_by.as_deref(), hosted_by, "hosted_by {host}");
            let own = party == First && entity == Some("Example Shop") && !platform;
            assert_eq!(
                d.known,
                entity.is_some() && !own && !(platform && party == Third),
                "known {host}"
            );
            let mut sorted = d.categories.clone();
            sorted.sort();
            assert_eq!(sorted, d.categories, "categories of {host} sorted");
        }
    }

    #[test]
    fn destination_json_matches_design() {
        let d = shop().classify("graph.facebook.com:443");
        let json = serde_json::to_value(&d).expect("serialises");
        assert_eq!(json["host"], "graph.facebook.com");
        assert_eq!(json["site"], "facebook.com");
        assert_eq!(json["party"], "third");
        assert_eq!(json["entity"], "Meta Platforms, Inc.");
        assert!(json["categories"]
            .as_array()
            .is_some_and(|c| c.iter().any(|v| v == "advertising")));
        assert!(json.get("purposes").is_none());
        let unknown =
            serde_json::to_value(shop().classify("x.unknown.example")).expect("serialises");
        assert!(unknown.get("entity").is_none());
    }

    #[test]
    fn unknown_third_party_uses_case_purposes() {
        let mut a = app(&[]);
        a.unknown_third_party_purposes = vec![Purpose::Social, Purpose::Analytics];
        let d = Classifier::new(&a).classify("tracker.unknown.example");
        assert_eq!(d.purposes, [An, So]);
        assert!(!d.known);
        // A known tracker keeps its own purposes.
        assert_eq!(
            Classifier::new(&a)
                .classify("www.google-analytics.com")
                .purposes,
            [An]
        );
    }

    const DB: &str = r#"
[[entity]]
name = "Example Corp"
domains = ["example-shop.com", "exshop-cdn.net"]
categories = ["hosting"]

[[entity]]
name = "Example Corp Analytics"
owner = "Example Corp"
domains = ["metrics.example-corp.net"]
categories = ["analytics"]

[[entity]]
name = "Hostco"
domains = ["hostco.example"]
categories = ["hosting"]

[[entity]]
name = "Adco"
domains = ["adco.example"]
categories = ["advertising", "made-up"]
"#;

    fn custom(first_party: &[&str]) -> Classifier {
        let cats = trackers::EMBEDDED_SOURCES[0];
        let db = TrackerDb::from_sources([cats, ("t.toml", DB)]).expect("parses");
        Classifier::with_db(&app(first_party), Arc::new(db))
    }

    /// Two classifiers that tell the same hosts apart differently, used in turn on one
    /// thread, with repeated hosts and more distinct ones than the memo holds: every
    /// answer is the one computed anew.
    #[test]
    fn memoised_answers_are_those_computed_anew() {
        let a = custom(&["example-shop.com"]);
        let b = custom(&["myapp.hostco.example"]);
        let mut hosts: Vec<String> = [
            "static.exshop-cdn.net",
            "myapp.hostco.example",
            "API.MyApp.hostco.example.:443",
            "graph.facebook.com",
            "10.0.0.1",
            "[fd00::1]:80",
            "",
        ]
        .iter()
        .map(|h| h.to_string())
        .collect();
        hosts.extend((0..memo::MAX_HOSTS + 10).map(|i| format!("h{}.adco.example", i % 700)));
        hosts.extend(hosts.clone());
        let mut differ = 0;
        for host in &hosts {
            for c in [&a, &b, &a, &b] {
                assert_eq!(*c.classify(host), c.classify_anew(host), "{host}");
            }
            differ += usize::from(a.classify_anew(host) != b.classify_anew(host));
        }
        // The two classifiers' answers do differ, so a memo shared between them would
        // show.
        assert!(differ > 0);
    }

    #[test]
    fn first_party_by_database_company() {
        let c = custom(&["example-shop.com"]);
        for host in [
            "static.exshop-cdn.net",
            "metrics.example-corp.net",
            "www.example-shop.com",
        ] {
            let d = c.classify(host);
            assert_eq!(d.party, Party::First, "{host}");
            assert!(d.purposes.is_empty(), "{host}");
        }
        assert_eq!(
            c.classify("static.exshop-cdn.net").entity.as_deref(),
            Some("Example Corp")
        );
        assert_eq!(c.classify("cdn.hostco.example").party, Party::Third);
    }

    #[test]
    fn platform_customers_do_not_adopt_the_platform() {
        // The app lives on a hosting platform: only its own site is first party.
        let c = custom(&["myapp.hostco.example"]);
        assert_eq!(c.classify("myapp.hostco.example").party, Party::First);
        assert_eq!(c.classify("api.myapp.hostco.example").party, Party::First);
        let other = c.classify("other.hostco.example");
        assert_eq!(other.party, Party::Third);
        assert!(other.infrastructure && other.purposes.is_empty());
        let real = Classifier::new(&app(&["my-app.firebaseapp.com"]));
        assert_eq!(real.classify("my-app.firebaseapp.com").party, Party::First);
        assert_eq!(
            real.classify("googleads.g.doubleclick.net").party,
            Party::Third
        );
        assert_eq!(
            real.classify("other-app.firebaseapp.com").party,
            Party::Third
        );
    }

    #[test]
    fn unknown_category_falls_back_to_default_purposes() {
        let d = custom(&[]).classify("x.adco.example");
        assert!(d.known);
        assert_eq!(d.purposes, [Ad, An]);
        assert!(!d.infrastructure);
    }

    #[test]
    fn addresses_are_first_party_only_when_listed() {
        let c = Classifier::new(&app(&["192.0.2.10", "[2001:db8::10]", "0.2.10"]));
        assert_eq!(c.classify("192.0.2.10:8443").party, Party::First);
        assert_eq!(c.classify("[2001:DB8:0::10]").party, Party::First);
        assert_eq!(c.classify("192.0.2.11").party, Party::Third);
        assert_eq!(c.classify("198.0.2.10").party, Party::Third);
    }

    #[test]
    fn hostile_hosts_do_not_panic() {
        let c = shop();
        for host in [
            "",
            ".",
            "..",
            "[",
            "[::1",
            ":::",
            "@@",
            &"a.".repeat(5000),
            &"ü".repeat(5000),
        ] {
            let d = c.classify(host);
            assert_eq!(d.party, Party::Third);
        }
    }
}
