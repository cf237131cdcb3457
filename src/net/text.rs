//! Text of the addresses and frame numbers every exchange carries, written without
//! the formatting machinery: `IpAddr::to_string` costs about 1 300 instructions per
//! IPv4 address (callgrind), twice per exchange, and `format!` of a frame range about
//! 900. The output is byte for byte what `Display` writes (tests below).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// `ip` as `Display` writes it: dotted decimal for IPv4; IPv6 (rare on the pcap
/// path, and with `::` compression rules) through `Display` itself.
pub fn ip_string(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let mut s = String::with_capacity(15);
            push_ipv4(&mut s, v4);
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
            let mut s = String::with_capacity(21);
            push_ipv4(&mut s, *v4.ip());
            s.push(':');
            push_decimal(&mut s, u64::from(v4.port()));
            s
        }
        SocketAddr::V6(_) => addr.to_string(),
    }
}

/// Appends `v4` in dotted decimal. Each octet's text (with a trailing dot) comes from
/// a table, four bytes written at a time and the cursor moved by its length: no
/// division, no per-character push.
fn push_ipv4(s: &mut String, v4: Ipv4Addr) {
    let mut buf = [0u8; 16];
    let mut at = 0;
    for octet in v4.octets() {
        let (text, len) = OCTET_DOT[usize::from(octet)];
        if let Some(dst) = buf.get_mut(at..at + 4) {
            dst.copy_from_slice(&text);
        }
        at += usize::from(len);
    }
    // The last octet's dot is not part of the address.
    let text = buf.get(..at.saturating_sub(1)).unwrap_or_default();
    s.push_str(std::str::from_utf8(text).unwrap_or_default());
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
    // ASCII digits: valid UTF-8, pushed as one piece rather than char by char.
    s.push_str(std::str::from_utf8(&digits[at..]).unwrap_or_default());
}

/// Text of every octet value followed by a dot, padded to four bytes, and its length
/// with the dot (`ip_string`).
const OCTET_DOT: [([u8; 4], u8); 256] = {
    let mut t = [([0u8; 4], 0u8); 256];
    let mut n = 0;
    while n < 256 {
        let (h, d, u) = ((n / 100) as u8, (n / 10 % 10) as u8, (n % 10) as u8);
        t[n] = if n >= 100 {
            ([b'0' + h, b'0' + d, b'0' + u, b'.'], 4)
        } else if n >= 10 {
            ([b'0' + d, b'0' + u, b'.', 0], 3)
        } else {
            ([b'0' + u, b'.', 0, 0], 2)
        };
        n += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv6Addr;

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
        for o in 0..=255u8 {
            let ip = Ipv4Addr::new(o, 255 - o, o / 2, o.wrapping_mul(7));
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
