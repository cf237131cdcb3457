//! Text of the addresses and frame numbers every exchange carries, written without
//! the formatting machinery: `IpAddr::to_string` costs about 1 300 instructions per
//! IPv4 address (callgrind), twice per exchange, and `format!` of a frame range about
//! 900. The output is byte for byte what `Display` writes (tests below).

use std::net::{IpAddr, SocketAddr};

/// `ip` as `Display` writes it: dotted decimal for IPv4; IPv6 (rare on the pcap
/// path, and with `::` compression rules) through `Display` itself.
pub fn ip_string(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let mut s = String::with_capacity(15);
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    s.push('.');
                }
                push_decimal(&mut s, u64::from(octet));
            }
            s
        }
        IpAddr::V6(_) => ip.to_string(),
    }
}

/// `addr` as `Display` writes it (`10.0.0.1:443`): the proxy's client address, once
/// per request (`SocketAddr::to_string` was about 1 600 instructions); IPv6 through
/// `Display` itself.
pub fn socket_string(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(v4) => {
            let mut s = ip_string(IpAddr::V4(*v4.ip()));
            s.push(':');
            push_decimal(&mut s, u64::from(v4.port()));
            s
        }
        SocketAddr::V6(_) => addr.to_string(),
    }
}

/// Appends the decimal digits of `n` (as `{n}` writes them).
pub fn push_decimal(s: &mut String, mut n: u64) {
    // u64::MAX has 20 digits.
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        // `n % 10` < 10: the digit is ASCII.
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[at..] {
        s.push(char::from(d));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn edge_values() {
        for n in [0, 1, 9, 10, 99, 100, 255, 1_000_000, u64::MAX] {
            let mut s = String::from("x");
            push_decimal(&mut s, n);
            assert_eq!(s, format!("x{n}"));
        }
        for ip in [
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::BROADCAST,
            Ipv4Addr::new(10, 0, 100, 9),
        ] {
            assert_eq!(ip_string(IpAddr::V4(ip)), ip.to_string());
        }
        let v6 = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1));
        assert_eq!(ip_string(v6), "fd00::1");
    }

    proptest! {
        #[test]
        fn decimal_is_display(n in any::<u64>()) {
            let mut s = String::new();
            push_decimal(&mut s, n);
            prop_assert_eq!(s, n.to_string());
        }

        #[test]
        fn ipv4_is_display(bits in any::<u32>()) {
            let ip = IpAddr::V4(Ipv4Addr::from(bits));
            prop_assert_eq!(ip_string(ip), ip.to_string());
        }

        #[test]
        fn socket_addr_is_display(bits in any::<u32>(), port in any::<u16>(), v6 in any::<u128>()) {
            let a = SocketAddr::from((Ipv4Addr::from(bits), port));
            prop_assert_eq!(socket_string(a), a.to_string());
            let a = SocketAddr::from((Ipv6Addr::from(v6), port));
            prop_assert_eq!(socket_string(a), a.to_string());
        }

        #[test]
        fn ipv6_is_display(bits in any::<u128>()) {
            let ip = IpAddr::V6(Ipv6Addr::from(bits));
            prop_assert_eq!(ip_string(ip), ip.to_string());
        }
    }
}
