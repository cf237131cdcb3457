//! The servers that received flagged transmissions, per destination host: the
//! addresses they were reached at and the certificates they presented over TLS. A
//! finding names a host; this says which machine answered for it and what it proved
//! itself to be, as Zeek's `conn.log` and `x509.log` would beside the finding.
//! Pure bookkeeping, bounded: a capture may present any number of addresses and
//! certificates for one name.

use std::collections::BTreeMap;

use crate::exchange::ServerCertificate;

/// Addresses kept per host; more are counted, not listed.
pub const MAX_ADDRESSES: usize = 16;
/// Certificates kept per host (by SHA-256); more are counted, not listed.
pub const MAX_CERTIFICATES: usize = 8;

/// What was seen of the servers of one host. The lists keep the smallest keys (by
/// address text, by SHA-256), so what they keep and what they count as not listed
/// depend only on the exchanges, not on the order they came in (`-j` runs judge in
/// any order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServersSeen {
    /// Exchanges with findings to this host.
    pub exchanges: u64,
    /// The server addresses (a capture's `203.0.113.5`, the proxy's `203.0.113.5:443`
    /// or, through an upstream proxy, the name it was asked for) with their
    /// exchanges, at most [`MAX_ADDRESSES`].
    pub addresses: BTreeMap<String, ((), u64)>,
    /// Exchanges whose address is not listed because the list was full.
    pub addresses_not_listed: u64,
    /// The certificates presented, by SHA-256, with their exchanges, at most
    /// [`MAX_CERTIFICATES`].
    pub certificates: BTreeMap<String, (ServerCertificate, u64)>,
    /// Exchanges whose certificate is not listed because the list was full.
    pub certificates_not_listed: u64,
    /// Exchanges that travelled with a certificate (the others: plain HTTP, TLS whose
    /// certificate the capture did not show, resumed sessions).
    pub with_certificate: u64,
}

impl ServersSeen {
    /// Notes one exchange to this host.
    pub fn note(&mut self, server: Option<&str>, certificate: Option<&ServerCertificate>) {
        self.exchanges += 1;
        if let Some(address) = server {
            add_capped(
                &mut self.addresses,
                address,
                || (),
                MAX_ADDRESSES,
                &mut self.addresses_not_listed,
            );
        }
        if let Some(c) = certificate {
            self.with_certificate += 1;
            add_capped(
                &mut self.certificates,
                &c.sha256,
                || c.clone(),
                MAX_CERTIFICATES,
                &mut self.certificates_not_listed,
            );
        }
    }

    /// Adds what was seen of another host's servers, as if its exchanges had been
    /// noted here (two names the report shows alike, see
    /// [`HostMask`](super::host_mask::HostMask)).
    pub fn absorb(&mut self, other: ServersSeen) {
        self.exchanges += other.exchanges;
        self.with_certificate += other.with_certificate;
        self.addresses_not_listed += other.addresses_not_listed;
        self.certificates_not_listed += other.certificates_not_listed;
        for (address, ((), n)) in other.addresses {
            add_capped_n(
                &mut self.addresses,
                &address,
                || (),
                n,
                MAX_ADDRESSES,
                &mut self.addresses_not_listed,
            );
        }
        for (sha256, (c, n)) in other.certificates {
            add_capped_n(
                &mut self.certificates,
                &sha256,
                || c,
                n,
                MAX_CERTIFICATES,
                &mut self.certificates_not_listed,
            );
        }
    }
}

/// Counts one exchange under `key` in `map`, which keeps the `cap` smallest keys: a
/// larger key, or the largest one it displaces, goes to `not_listed` with its count.
fn add_capped<V>(
    map: &mut BTreeMap<String, (V, u64)>,
    key: &str,
    value: impl FnOnce() -> V,
    cap: usize,
    not_listed: &mut u64,
) {
    add_capped_n(map, key, value, 1, cap, not_listed);
}

/// [`add_capped`] of `n` exchanges at once.
fn add_capped_n<V>(
    map: &mut BTreeMap<String, (V, u64)>,
    key: &str,
    value: impl FnOnce() -> V,
    n: u64,
    cap: usize,
    not_listed: &mut u64,
) {
    if let Some((_, count)) = map.get_mut(key) {
        *count += n;
        return;
    }
    if map.len() >= cap {
        match map.last_key_value() {
            Some((largest, _)) if largest.as_str() > key => {
                if let Some((_, (_, count))) = map.pop_last() {
                    *not_listed += count;
                }
            }
            _ => {
                *not_listed += n;
                return;
            }
        }
    }
    map.insert(key.to_string(), (value(), n));
}

/// The servers of every destination host that findings name.
pub type ServersByHost = BTreeMap<String, ServersSeen>;

/// Notes an exchange with findings to each of `hosts` (a finding's
/// `destination.host`; an exchange's findings normally share one).
pub fn note<'a>(
    servers: &mut ServersByHost,
    hosts: impl IntoIterator<Item = &'a str>,
    server: Option<&str>,
    certificate: Option<&ServerCertificate>,
) {
    let mut done: Vec<&str> = Vec::new();
    for host in hosts {
        if done.contains(&host) {
            continue;
        }
        done.push(host);
        match servers.get_mut(host) {
            Some(seen) => seen.note(server, certificate),
            None => {
                let mut seen = ServersSeen::default();
                seen.note(server, certificate);
                servers.insert(host.to_string(), seen);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(sha: &str) -> ServerCertificate {
        ServerCertificate {
            subject: format!("CN={sha}.example"),
            issuer: "CN=CA".into(),
            names: vec![format!("{sha}.example")],
            not_before: None,
            not_after: None,
            serial: "01".into(),
            sha256: sha.into(),
            chain: 1,
            host: None,
        }
    }

    #[test]
    fn each_host_keeps_its_addresses_and_certificates_once() {
        let mut servers = ServersByHost::new();
        let a = cert("aa");
        note(
            &mut servers,
            ["t.example", "t.example"],
            Some("192.0.2.1:443"),
            Some(&a),
        );
        note(&mut servers, ["t.example"], Some("192.0.2.1:443"), Some(&a));
        note(&mut servers, ["t.example"], Some("192.0.2.2:443"), None);
        note(&mut servers, ["u.example"], None, None);
        let t = &servers["t.example"];
        assert_eq!(
            t.exchanges, 3,
            "the same host twice in one exchange counts once"
        );
        assert_eq!(
            t.addresses
                .iter()
                .map(|(a, (_, n))| (a.as_str(), *n))
                .collect::<Vec<_>>(),
            [("192.0.2.1:443", 2), ("192.0.2.2:443", 1)]
        );
        assert_eq!(t.certificates.len(), 1);
        assert_eq!(t.with_certificate, 2);
        let u = &servers["u.example"];
        assert_eq!(
            (u.exchanges, u.addresses.len(), u.with_certificate),
            (1, 0, 0)
        );
    }

    #[test]
    fn past_the_caps_the_smallest_are_kept_whatever_the_order() {
        // Addresses 10..=29 (two exchanges for .10), certificates for each.
        let exchanges: Vec<(String, ServerCertificate)> = (10..30)
            .chain([10])
            .map(|i| (format!("192.0.2.{i}:443"), cert(&format!("{i:02}"))))
            .collect();
        let seen_in = |order: &mut dyn Iterator<Item = &(String, ServerCertificate)>| {
            let mut seen = ServersSeen::default();
            for (address, c) in order {
                seen.note(Some(address), Some(c));
            }
            seen
        };
        let forward = seen_in(&mut exchanges.iter());
        let backward = seen_in(&mut exchanges.iter().rev());
        assert_eq!(forward, backward);
        assert_eq!(forward.addresses.len(), MAX_ADDRESSES);
        assert_eq!(
            forward.addresses.keys().next().map(String::as_str),
            Some("192.0.2.10:443")
        );
        assert_eq!(forward.addresses["192.0.2.10:443"].1, 2);
        // 21 exchanges, 17 of them at the 16 kept addresses.
        assert_eq!(forward.addresses_not_listed, 4);
        assert_eq!(forward.certificates.len(), MAX_CERTIFICATES);
        assert_eq!(
            forward.certificates.keys().last().map(String::as_str),
            Some("17")
        );
        assert_eq!(forward.certificates_not_listed, 21 - 9);
        assert_eq!((forward.with_certificate, forward.exchanges), (21, 21));
    }

    proptest::proptest! {
        /// What two hosts' servers absorbed into one says is what noting all their
        /// exchanges under one host says, whichever exchanges each had.
        #[test]
        fn absorbing_is_noting_under_one_host(
            exchanges in proptest::collection::vec(
                (0u8..30, proptest::option::of(0u8..20), proptest::bool::ANY),
                0..80,
            )
        ) {
            let note_all = |list: &mut dyn Iterator<Item = &(u8, Option<u8>, bool)>| {
                let mut seen = ServersSeen::default();
                for (address, c, _) in list {
                    let c = c.map(|c| cert(&format!("{c:02}")));
                    seen.note(Some(&format!("192.0.2.{address}:443")), c.as_ref());
                }
                seen
            };
            let whole = note_all(&mut exchanges.iter());
            let mut first = note_all(&mut exchanges.iter().filter(|e| e.2));
            first.absorb(note_all(&mut exchanges.iter().filter(|e| !e.2)));
            proptest::prop_assert_eq!(first, whole);
        }
    }
}
