//! Host names: normalisation and the registrable domain ("site", eTLD+1).
//!
//! Every host the pipeline sees (HTTP `Host`/`:authority`, TLS SNI, DNS answers, HAR
//! URLs) goes through [`normalize_host`] before it is compared with anything, so the
//! party decision and the tracker lookup see one canonical spelling:
//! lower case, no trailing dot, no port, no IPv6 brackets, no user info, Unicode
//! labels converted to their ASCII (punycode, `xn--`) form as they appear on the wire.
//!
//! [`site`] is the registrable domain by the *full* Public Suffix List, private
//! section included (the `psl` crate does not tell the two apart when it picks the
//! suffix). So `abc.cloudfront.net`, `x.github.io` and `app.firebaseapp.com` are each
//! their own site: two customers of one hosting platform are two different parties.
//! Attribution to the platform's operator (Amazon, GitHub, Google) is the tracker
//! database's job, which matches domain suffixes on the host itself, not on the site
//! (see `trackers`). IP addresses, single-label names and hosts that are themselves a
//! public suffix are their own site.
//!
//! IDNA is applied only as far as traffic needs it: Unicode lower-casing, the IDNA
//! full stops (`。．｡`) as label separators and RFC 3492 punycode. Unicode
//! normalisation (NFC) and the IDNA mapping tables are not applied; hosts on the
//! wire are already ASCII, Unicode hosts only come from hand-written files.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Hosts longer than this (DNS allows 253) are kept lower-cased but not converted to
/// punycode, so hostile input cannot make normalisation expensive.
pub const MAX_HOST_LEN: usize = 253;
/// Longest label (DNS allows 63) that is converted to punycode; see [`MAX_HOST_LEN`].
pub const MAX_LABEL_LEN: usize = 63;

/// A normalised host name or address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Canonical text: lower case, no port, brackets or trailing dot, ASCII labels.
    pub name: String,
    /// The address, when the host is an IP literal.
    pub ip: Option<IpAddr>,
}

/// Normalises a host as found in a `Host` header, SNI, URL authority or DNS name.
pub fn normalize_host(raw: &str) -> Host {
    let mut text = raw.trim();
    // User info never belongs to the host ("user:pw@host:port").
    if let Some(at) = text.rfind('@') {
        text = &text[at + 1..];
    }
    if let Some(rest) = text.strip_prefix('[') {
        let inner = rest.split(']').next().unwrap_or(rest);
        let inner = inner.split('%').next().unwrap_or(inner); // zone id
        return match inner.parse::<Ipv6Addr>() {
            Ok(addr) => ip_host(IpAddr::V6(addr)),
            Err(_) => Host {
                name: inner.to_ascii_lowercase(),
                ip: None,
            },
        };
    }
    match text.matches(':').count() {
        0 => {}
        1 => text = text.split(':').next().unwrap_or(text),
        _ => {
            // Several colons without brackets: a bare IPv6 address (no port possible).
            let bare = text.split('%').next().unwrap_or(text);
            if let Ok(addr) = bare.parse::<Ipv6Addr>() {
                return ip_host(IpAddr::V6(addr));
            }
        }
    }
    let text = text.strip_suffix('.').unwrap_or(text);
    if let Ok(addr) = text.parse::<Ipv4Addr>() {
        return ip_host(IpAddr::V4(addr));
    }
    Host {
        name: ascii_name(text),
        ip: None,
    }
}

fn ip_host(ip: IpAddr) -> Host {
    // An IPv4-mapped IPv6 address is the IPv4 host it maps (same server).
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    Host {
        name: ip.to_string(),
        ip: Some(ip),
    }
}

/// Lower-cases a domain name and converts its non-ASCII labels to punycode.
fn ascii_name(text: &str) -> String {
    if text.is_ascii() {
        return text.to_ascii_lowercase();
    }
    let lower: String = text
        .chars()
        .map(|c| match c {
            '\u{3002}' | '\u{ff0e}' | '\u{ff61}' => '.',
            c => c,
        })
        .flat_map(char::to_lowercase)
        .collect();
    if lower.len() > MAX_HOST_LEN * 4 {
        return lower;
    }
    let mut out = String::with_capacity(lower.len() + 8);
    for (i, label) in lower.split('.').enumerate() {
        if i > 0 {
            out.push('.');
        }
        if label.is_ascii() || label.chars().count() > MAX_LABEL_LEN {
            out.push_str(label);
        } else {
            match punycode_encode(label) {
                Some(encoded) => {
                    out.push_str("xn--");
                    out.push_str(&encoded);
                }
                None => out.push_str(label),
            }
        }
    }
    out
}

/// The registrable domain (eTLD+1, full PSL including private suffixes) of a
/// normalised host; the host itself for addresses, single labels and public suffixes.
pub fn site(host: &Host) -> &str {
    if host.ip.is_some() || !host.name.contains('.') {
        return &host.name;
    }
    psl::domain(host.name.as_bytes())
        .and_then(|d| std::str::from_utf8(d.as_bytes()).ok())
        .unwrap_or(&host.name)
}

/// Whether a normalised host is itself a public suffix (private ones included):
/// `s3.amazonaws.com`, `cloudfront.net`, the platform's own host, not a customer's
/// site under it.
pub fn is_public_suffix(host: &Host) -> bool {
    host.ip.is_none() && host.name.contains('.') && psl::domain(host.name.as_bytes()).is_none()
}

/// Whether `host` is `domain` or a subdomain of it (both normalised).
pub fn is_within(host: &str, domain: &str) -> bool {
    match host.strip_suffix(domain) {
        Some("") => true,
        Some(prefix) => prefix.ends_with('.') && !domain.is_empty(),
        None => false,
    }
}

/// RFC 3492 punycode encoding of one label, without the `xn--` prefix. `None` on
/// arithmetic overflow (only for absurd inputs; the caller keeps the label as is).
pub fn punycode_encode(label: &str) -> Option<String> {
    const BASE: u32 = 36;
    const TMIN: u32 = 1;
    const TMAX: u32 = 26;
    const INITIAL_N: u32 = 128;
    const INITIAL_BIAS: u32 = 72;

    let input: Vec<u32> = label.chars().map(u32::from).collect();
    let mut out: String = label.chars().filter(char::is_ascii).collect();
    let basic = out.len() as u32;
    let mut handled = basic;
    if basic > 0 {
        out.push('-');
    }
    let mut n = INITIAL_N;
    let mut delta: u32 = 0;
    let mut bias = INITIAL_BIAS;
    while (handled as usize) < input.len() {
        let m = input.iter().copied().filter(|&c| c >= n).min()?;
        delta = delta.checked_add((m - n).checked_mul(handled + 1)?)?;
        n = m;
        for &c in &input {
            if c < n {
                delta = delta.checked_add(1)?;
            }
            if c == n {
                let mut q = delta;
                let mut k = BASE;
                loop {
                    let t = if k <= bias {
                        TMIN
                    } else if k >= bias + TMAX {
                        TMAX
                    } else {
                        k - bias
                    };
                    if q < t {
                        break;
                    }
                    out.push(punycode_digit(t + (q - t) % (BASE - t)));
                    q = (q - t) / (BASE - t);
                    k += BASE;
                }
                out.push(punycode_digit(q));
                bias = punycode_adapt(delta, handled + 1, handled == basic);
                delta = 0;
                handled += 1;
            }
        }
        delta = delta.checked_add(1)?;
        n = n.checked_add(1)?;
    }
    Some(out)
}

fn punycode_adapt(delta: u32, points: u32, first: bool) -> u32 {
    const BASE: u32 = 36;
    const TMIN: u32 = 1;
    const TMAX: u32 = 26;
    const SKEW: u32 = 38;
    const DAMP: u32 = 700;
    let mut delta = if first { delta / DAMP } else { delta / 2 };
    delta += delta / points;
    let mut k = 0;
    while delta > ((BASE - TMIN) * TMAX) / 2 {
        delta /= BASE - TMIN;
        k += BASE;
    }
    k + ((BASE - TMIN + 1) * delta) / (delta + SKEW)
}

fn punycode_digit(d: u32) -> char {
    // d < 36 by construction of the encoder.
    match d {
        0..=25 => char::from(b'a' + d as u8),
        _ => char::from(b'0' + (d - 26) as u8),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(raw: &str) -> String {
        normalize_host(raw).name
    }

    fn site_of(raw: &str) -> String {
        site(&normalize_host(raw)).to_string()
    }

    #[test]
    fn normalisation() {
        let cases = [
            ("WWW.Example.COM", "www.example.com"),
            ("www.example.com.", "www.example.com"),
            ("www.example.com:8443", "www.example.com"),
            ("WWW.EXAMPLE.COM.:443", "www.example.com"),
            ("  api.example.com  ", "api.example.com"),
            ("user:pw@api.example.com:80", "api.example.com"),
            ("[2001:DB8::1]:443", "2001:db8::1"),
            ("[2001:db8:0:0:0:0:0:1]", "2001:db8::1"),
            ("2001:db8::1", "2001:db8::1"),
            ("[fe80::1%25eth0]:80", "fe80::1"),
            ("[::ffff:192.0.2.1]", "192.0.2.1"),
            ("192.0.2.1:8080", "192.0.2.1"),
            ("192.0.2.1.", "192.0.2.1"),
            ("localhost", "localhost"),
            ("Bücher.example", "xn--bcher-kva.example"),
            ("例子。中国", "xn--fsqu00a.xn--fiqs8s"),
            ("xn--fiqs8s", "xn--fiqs8s"),
            ("", ""),
        ];
        for (raw, want) in cases {
            assert_eq!(norm(raw), want, "normalising {raw:?}");
        }
        assert!(normalize_host("[::1]").ip.is_some());
        assert!(normalize_host("10.0.0.1").ip.is_some());
        assert!(normalize_host("example.com").ip.is_none());
    }

    #[test]
    fn sites() {
        let cases = [
            ("graph.facebook.com", "facebook.com"),
            ("facebook.com", "facebook.com"),
            ("a.b.c.example.co.uk", "example.co.uk"),
            ("www.bbc.co.uk", "bbc.co.uk"),
            ("co.uk", "co.uk"),
            ("api.weibo.com.cn", "weibo.com.cn"),
            ("sdk.e.qq.com", "qq.com"),
            ("cdn.example.com.cn", "example.com.cn"),
            // Private suffixes: each customer is its own site.
            ("alice.github.io", "alice.github.io"),
            ("deep.path.bob.github.io", "bob.github.io"),
            ("github.io", "github.io"),
            (
                "d111111abcdef8.cloudfront.net",
                "d111111abcdef8.cloudfront.net",
            ),
            ("my-app.firebaseapp.com", "my-app.firebaseapp.com"),
            ("my-app.herokuapp.com", "my-app.herokuapp.com"),
            // IDN: the punycode form decides.
            ("www.例子.中国", "xn--fsqu00a.xn--fiqs8s"),
            ("shop.xn--fsqu00a.xn--fiqs8s", "xn--fsqu00a.xn--fiqs8s"),
            // 公司.cn is a public suffix in either spelling.
            ("www.例子.公司.cn", "xn--fsqu00a.xn--55qx5d.cn"),
            ("www.xn--fsqu00a.xn--55qx5d.cn", "xn--fsqu00a.xn--55qx5d.cn"),
            ("WWW.Example.COM.:443", "example.com"),
            ("192.0.2.1", "192.0.2.1"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("localhost", "localhost"),
            ("printer.lan", "printer.lan"),
        ];
        for (raw, want) in cases {
            assert_eq!(site_of(raw), want, "site of {raw:?}");
        }
    }

    #[test]
    fn within() {
        assert!(is_within("example.com", "example.com"));
        assert!(is_within("a.example.com", "example.com"));
        assert!(!is_within("badexample.com", "example.com"));
        assert!(!is_within("example.com", "a.example.com"));
        assert!(!is_within("example.com", ""));
    }

    #[test]
    fn punycode_vectors() {
        // RFC 3492 §7.1 (A) Arabic, (B) Chinese simplified, plus common IDNs.
        let cases = [
            ("ليهمابتكلموشعربي؟", "egbpdaj6bu4bxfgehfvwxn"),
            ("他们为什么不说中文", "ihqwcrb4cv8a8dqg056pqjye"),
            ("bücher", "bcher-kva"),
            ("münchen", "mnchen-3ya"),
            ("中国", "fiqs8s"),
        ];
        for (label, want) in cases {
            assert_eq!(punycode_encode(label).as_deref(), Some(want), "{label}");
        }
    }

    #[test]
    fn hostile_hosts_do_not_panic() {
        let long = "é".repeat(10_000);
        let _ = normalize_host(&long);
        let _ = normalize_host(&format!("{}.com", "a".repeat(100_000)));
        for raw in [
            "[",
            "]",
            "[]",
            ":",
            "::",
            "[::1",
            "@",
            ".",
            "..",
            "a..b",
            "\u{10ffff}.x",
        ] {
            let host = normalize_host(raw);
            let _ = site(&host);
        }
    }
}
