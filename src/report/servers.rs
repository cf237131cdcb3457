//! The servers that received flagged transmissions, per destination host: the
//! addresses they were reached at and the certificates they presented over TLS. A
//! finding names a host; this says which machine answered for it and what it proved
//! itself to be, as Zeek's `conn.log` and `x509.log` would beside the finding.
//! Pure bookkeeping, bounded: a capture may present any number of addresses and
//! certificates for one name.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::exchange::ServerCertificate;

/// Addresses kept per host; more are counted, not listed.
pub const MAX_ADDRESSES: usize = 16;
/// Certificates kept per host (by SHA-256); more are counted, not listed.
pub const MAX_CERTIFICATES: usize = 8;

/// What was seen of the servers of one host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServersSeen {
    /// Exchanges with findings to this host.
    pub exchanges: u64,
    /// The server addresses (`203.0.113.5:443`; through an upstream proxy, the name
    /// the proxy was asked for), sorted, at most [`MAX_ADDRESSES`].
    pub addresses: BTreeSet<String>,
    /// Exchanges whose address was not listed because the list was full.
    #[serde(skip_serializing_if = "is_zero")]
    pub addresses_not_listed: u64,
    /// The certificates presented, by SHA-256, at most [`MAX_CERTIFICATES`].
    pub certificates: BTreeMap<String, ServerCertificate>,
    /// Exchanges whose certificate was not listed because the list was full.
    #[serde(skip_serializing_if = "is_zero")]
    pub certificates_not_listed: u64,
    /// Exchanges that travelled with a certificate (the others: plain HTTP, TLS whose
    /// certificate the capture did not show, resumed sessions).
    pub with_certificate: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl ServersSeen {
    /// Notes one exchange to this host.
    pub fn note(&mut self, server: Option<&str>, certificate: Option<&ServerCertificate>) {
        self.exchanges += 1;
        if let Some(address) = server {
            if !self.addresses.contains(address) {
                if self.addresses.len() < MAX_ADDRESSES {
                    self.addresses.insert(address.to_string());
                } else {
                    self.addresses_not_listed += 1;
                }
            }
        }
        if let Some(c) = certificate {
            self.with_certificate += 1;
            if !self.certificates.contains_key(&c.sha256) {
                if self.certificates.len() < MAX_CERTIFICATES {
                    self.certificates.insert(c.sha256.clone(), c.clone());
                } else {
                    self.certificates_not_listed += 1;
                }
            }
        }
    }
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
            t.addresses.iter().map(String::as_str).collect::<Vec<_>>(),
            ["192.0.2.1:443", "192.0.2.2:443"]
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
    fn past_the_caps_addresses_and_certificates_are_counted_not_kept() {
        let mut seen = ServersSeen::default();
        for i in 0..MAX_ADDRESSES + 3 {
            let c = cert(&format!("{i:02}"));
            seen.note(Some(&format!("192.0.2.{i}:443")), Some(&c));
        }
        // Already listed ones still go in.
        seen.note(Some("192.0.2.0:443"), Some(&cert("00")));
        assert_eq!(seen.addresses.len(), MAX_ADDRESSES);
        assert_eq!(seen.addresses_not_listed, 3);
        assert_eq!(seen.certificates.len(), MAX_CERTIFICATES);
        assert_eq!(
            seen.certificates_not_listed,
            (MAX_ADDRESSES + 3 - MAX_CERTIFICATES) as u64
        );
        assert_eq!(seen.with_certificate, MAX_ADDRESSES as u64 + 4);
        assert_eq!(seen.exchanges, MAX_ADDRESSES as u64 + 4);
    }
}
