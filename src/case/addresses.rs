//! Which device a packet belongs to, from the case's `addresses` (DESIGN.md §10):
//! single IPv4/IPv6 addresses, CIDR ranges (a whole guest VLAN) and MAC addresses.
//!
//! Precedence, most specific first: an exact IP address, then the longest CIDR prefix
//! that contains the address, then the MAC address. The MAC comes last because on a
//! routed gateway every packet carries the router's MAC, while a device's IP address
//! is what the case author wrote for it; on a flat Wi-Fi segment (an access point's
//! capture) the MAC is the stable identity when addresses change over DHCP.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;
use rustc_hash::FxBuildHasher;

use super::{parse_mac, Case};

/// Maps client addresses to device ids. Built once per run from the case.
#[derive(Debug, Clone, Default)]
pub struct DeviceResolver {
    /// FxHash: the case file alone fills these maps (traffic only looks up), and
    /// the proxy asks once a request, where std's SipHash cost about 180 instructions.
    exact: HashMap<IpAddr, usize, FxBuildHasher>,
    /// Ranges sorted by prefix length, longest first, so the first hit is the best.
    ranges: Vec<(IpNet, usize)>,
    macs: HashMap<[u8; 6], usize, FxBuildHasher>,
    ids: Vec<String>,
}

impl DeviceResolver {
    /// Indexes every device address of `case`. Addresses the parser let through but
    /// that do not parse here (none, by construction) are ignored.
    pub fn new(case: &Case) -> Self {
        let mut resolver = DeviceResolver::default();
        for (index, device) in case.devices.iter().enumerate() {
            resolver.ids.push(device.id.clone());
            for text in &device.addresses {
                if let Ok(ip) = text.parse::<IpAddr>() {
                    resolver.exact.entry(ip).or_insert(index);
                } else if let Ok(net) = text.parse::<IpNet>() {
                    resolver.ranges.push((net.trunc(), index));
                } else if let Some(mac) = parse_mac(text) {
                    resolver.macs.entry(mac).or_insert(index);
                }
            }
        }
        // Stable sort: for equal prefixes the device listed first in the case wins.
        resolver
            .ranges
            .sort_by_key(|(net, _)| std::cmp::Reverse(net.prefix_len()));
        resolver
    }

    /// True when the case gives no addresses at all (then nothing can be attributed).
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.ranges.is_empty() && self.macs.is_empty()
    }

    /// The device whose address is `ip` (or whose range holds it), else whose MAC is `mac`.
    pub fn resolve(&self, ip: IpAddr, mac: Option<[u8; 6]>) -> Option<&str> {
        let ip = canonical(ip);
        let index = self
            .exact
            .get(&ip)
            .copied()
            .or_else(|| {
                self.ranges
                    .iter()
                    .find(|(net, _)| net.contains(&ip))
                    .map(|(_, i)| *i)
            })
            .or_else(|| mac.and_then(|m| self.macs.get(&m).copied()))?;
        self.ids.get(index).map(String::as_str)
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`, seen on dual-stack sockets) are the
/// IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::Device;

    fn case(devices: &[(&str, &[&str])]) -> Case {
        Case {
            devices: devices
                .iter()
                .map(|(id, addrs)| Device {
                    id: id.to_string(),
                    addresses: addrs.iter().map(|a| a.to_string()).collect(),
                    ..Device::default()
                })
                .collect(),
            ..Case::default()
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn exact_addresses_both_families() {
        let r = DeviceResolver::new(&case(&[("a", &["192.168.50.23", "fd00::23"])]));
        assert_eq!(r.resolve(ip("192.168.50.23"), None), Some("a"));
        assert_eq!(r.resolve(ip("fd00::23"), None), Some("a"));
        assert_eq!(r.resolve(ip("::ffff:192.168.50.23"), None), Some("a"));
        assert_eq!(r.resolve(ip("192.168.50.24"), None), None);
    }

    #[test]
    fn exact_beats_range_and_longest_prefix_wins() {
        let r = DeviceResolver::new(&case(&[
            ("vlan", &["10.0.0.0/16"]),
            ("lab", &["10.0.7.0/24"]),
            ("phone", &["10.0.7.9"]),
        ]));
        assert_eq!(r.resolve(ip("10.0.7.9"), None), Some("phone"));
        assert_eq!(r.resolve(ip("10.0.7.10"), None), Some("lab"));
        assert_eq!(r.resolve(ip("10.0.8.1"), None), Some("vlan"));
        assert_eq!(r.resolve(ip("10.1.0.1"), None), None);
    }

    #[test]
    fn range_with_host_bits_is_the_network() {
        let r = DeviceResolver::new(&case(&[("a", &["10.0.0.77/24", "fd00:1::5/64"])]));
        assert_eq!(r.resolve(ip("10.0.0.1"), None), Some("a"));
        assert_eq!(r.resolve(ip("fd00:1::abcd"), None), Some("a"));
        assert_eq!(r.resolve(ip("fd00:2::1"), None), None);
    }

    #[test]
    fn mac_only_when_no_address_matches() {
        let r = DeviceResolver::new(&case(&[
            ("by-mac", &["02:00:00:44:55:66"]),
            ("by-ip", &["192.168.1.5"]),
        ]));
        let mac = [0x02, 0, 0, 0x44, 0x55, 0x66];
        assert_eq!(r.resolve(ip("192.168.1.99"), Some(mac)), Some("by-mac"));
        assert_eq!(r.resolve(ip("192.168.1.5"), Some(mac)), Some("by-ip"));
        assert_eq!(r.resolve(ip("192.168.1.99"), Some([0; 6])), None);
        assert!(!r.is_empty());
        assert!(DeviceResolver::new(&case(&[("x", &[])])).is_empty());
    }
}
