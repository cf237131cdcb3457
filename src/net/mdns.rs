//! Multicast DNS (RFC 6762) that a device's operating system sends of its own
//! services, told apart from what an app announces or asks for.
//!
//! A phone's or computer's system advertises its own services on the local network
//! with the device's name as their instance name (`Alice's iPhone._companion-link._tcp`),
//! its Wi-Fi address (`_apple-mobdev2._tcp`, Wi-Fi sync) or its serial number
//! (`adb-<serial>-…._adb-tls-connect._tcp`, Android's wireless debugging, which test
//! labs use), and asks for printers, file servers and paired devices by name. These
//! are the system's disclosures to the local network, which no consent decision in an
//! app governs: like DHCP, they are not the app's to be judged for. An app's own
//! service (a file-sharing SDK's `_sharesdk._tcp` with an identifier in its TXT
//! record), though the system's responder sends it too, is the app's.
//!
//! [`is_system_name`] says whether a name belongs to the system: under a service type
//! of [`SYSTEM_SERVICES`], or under no service at all (the device's host name,
//! `Alices-iPhone.local`, and reverse-mapping names). The flow table leaves such
//! names out of the queries it hands out to be searched (each name is searched on
//! its own), and [`is_system_message`] keeps back an announcement only when every
//! name it is about is the system's: one name of any other service makes the whole
//! announcement the app's, searched as before.

use super::dns;

/// DNS-SD service types (RFC 6763 §7: the `_service` label before `_tcp` or `_udp`)
/// that operating systems announce or browse for themselves, lower-case. Sources:
/// IANA's service name registry, Apple's Bonjour and Continuity services, Android's
/// adbd and Nearby Share (whose type is the hash of its service id).
pub const SYSTEM_SERVICES: &[&str] = &[
    // DNS-SD itself: service type enumeration and browsing domains (RFC 6763 §9, §11).
    "_dns-sd",
    // Apple: Continuity and Handoff, Wi-Fi sync, pairing, AirPlay and AirDrop,
    // HomeKit hubs, Bonjour sleep proxy, device info and remote control.
    "_companion-link",
    "_rdlink",
    "_apple-mobdev",
    "_apple-mobdev2",
    "_apple-pairable",
    "_remotepairing",
    "_remotepairing-manual-pairing",
    "_remoted",
    "_airplay",
    "_raop",
    "_airdrop",
    "_airport",
    "_homekit",
    "_sleep-proxy",
    "_device-info",
    "_touch-able",
    "_mediaremotetv",
    "_eppc",
    // File sharing and remote login of the system (macOS, Linux's Avahi, Windows).
    "_afpovertcp",
    "_smb",
    "_adisk",
    "_odisk",
    "_nfs",
    "_ssh",
    "_sftp-ssh",
    "_rfb",
    "_workstation",
    // Printing, scanning and picture transfer, browsed by the system's print service.
    "_ipp",
    "_ipps",
    "_printer",
    "_pdl-datastream",
    "_uscan",
    "_uscans",
    "_scanner",
    "_ippusb",
    "_ptp",
    // Android: wireless debugging (adbd) and Nearby Share / Quick Share.
    "_adb",
    "_adb-tls-connect",
    "_adb-tls-pairing",
    "_fc9f5ed42c8a",
];

/// Underscore labels outside DNS-SD that systems put under their host names: macOS's
/// local Kerberos realm (`_kerberos.<host>.local`, a TXT record).
const SYSTEM_HOST_LABELS: &[&str] = &["_kerberos"];

/// Whether the mDNS message `msg` is only about the operating system's own services
/// and host names (see the module doc). The root, which owns EDNS's OPT record, names
/// nothing. A message that does not parse, or names nothing, is not.
pub fn is_system_message(msg: &[u8]) -> bool {
    let Ok(names) = dns::subject_names(msg) else {
        return false;
    };
    let mut names = names.iter().filter(|n| !n.is_empty()).peekable();
    names.peek().is_some() && names.all(|n| is_system_name(n))
}

/// A name (as [`dns`] writes it: lower-case, dots inside labels escaped) under a
/// system service type, or a local host or reverse-mapping name under none.
pub fn is_system_name(name: &str) -> bool {
    match service_type(name) {
        Some(service) => SYSTEM_SERVICES.contains(&service),
        // A host name: no underscore label but the system's own.
        None if name
            .split('.')
            .any(|l| l.starts_with('_') && !SYSTEM_HOST_LABELS.contains(&l)) =>
        {
            false
        }
        None => {
            let under = |zone: &str| name == zone || name.ends_with(&format!(".{zone}"));
            under("local") || under("in-addr.arpa") || under("ip6.arpa")
        }
    }
}

/// The `_service` label of a DNS-SD name: the last label followed by `_tcp` or `_udp`
/// (a subtype's `_sub` and an instance's label come before it).
fn service_type(name: &str) -> Option<&str> {
    let labels: Vec<&str> = name.split('.').collect();
    labels
        .windows(2)
        .rev()
        .find(|w| w[0].starts_with('_') && matches!(w[1], "_tcp" | "_udp"))
        .map(|w| w[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An mDNS response (id 0, authoritative) of `records`: (owner, type, rdata).
    fn response(records: &[(&str, u16, Vec<u8>)]) -> Vec<u8> {
        let mut m = vec![0, 0, 0x84, 0, 0, 0];
        m.extend_from_slice(&(records.len() as u16).to_be_bytes());
        m.extend_from_slice(&[0, 0, 0, 0]);
        for (owner, rtype, rdata) in records {
            m.extend_from_slice(&wire(owner));
            m.extend_from_slice(&rtype.to_be_bytes());
            m.extend_from_slice(&[0x80, 1, 0, 0, 0x11, 0x94]);
            m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            m.extend_from_slice(rdata);
        }
        m
    }

    /// An mDNS query (id 0) for `names`, PTR each.
    fn query(names: &[&str]) -> Vec<u8> {
        let mut m = vec![0, 0, 0, 0];
        m.extend_from_slice(&(names.len() as u16).to_be_bytes());
        m.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        for name in names {
            m.extend_from_slice(&wire(name));
            m.extend_from_slice(&[0, 12, 0, 1]);
        }
        m
    }

    fn wire(name: &str) -> Vec<u8> {
        let mut w = Vec::new();
        for label in name.split('.') {
            w.push(label.len() as u8);
            w.extend_from_slice(label.as_bytes());
        }
        w.push(0);
        w
    }

    fn txt(strings: &[&str]) -> Vec<u8> {
        strings
            .iter()
            .flat_map(|s| [&[s.len() as u8][..], s.as_bytes()].concat())
            .collect()
    }

    #[test]
    fn the_systems_own_services_and_host_names_are_the_systems() {
        // Android's wireless debugging, its instance named by the serial number.
        let adb = "adb-R58M123ABC-vWgJpq._adb-tls-connect._tcp.local";
        let announcement = response(&[
            ("_adb-tls-connect._tcp.local", 12, wire(adb)),
            (adb, 16, txt(&["v=ADB_SECURE_SERVICE_VERSION"])),
            ("Android-7.local", 1, vec![192, 168, 70, 5]),
            ("_kerberos.Android-7.local", 16, txt(&["LKDC:SHA1.0A1B"])),
            ("5.70.168.192.in-addr.arpa", 12, wire("Android-7.local")),
        ]);
        // With EDNS's OPT record, owned by the root, at the end.
        let mut announcement = announcement;
        announcement[7] += 1;
        announcement.extend_from_slice(&[0, 0, 41, 5, 0xa0, 0, 0, 0x11, 0x94, 0, 0]);
        assert!(is_system_message(&announcement));
        // An iPhone's Wi-Fi sync: a subtype, its instance the Wi-Fi address.
        assert!(is_system_message(&query(&[
            "8fb207de._sub._apple-mobdev2._tcp.local",
            "_companion-link._tcp.local",
            "_services._dns-sd._udp.local",
        ])));
        // Service types are compared whatever their case on the wire.
        assert!(is_system_message(&query(&["_FC9F5ED42C8A._tcp.local"])));
    }

    #[test]
    fn one_name_of_an_apps_service_makes_the_message_the_apps() {
        let instance = "Pixel-7._sharesdk._tcp.local";
        let app = response(&[
            ("_sharesdk._tcp.local", 12, wire(instance)),
            (instance, 16, txt(&["aid=9774d56d682e549c"])),
        ]);
        assert!(!is_system_message(&app));
        // Mixed with the system's own: still the app's.
        let mixed = query(&["_companion-link._tcp.local", "_sharesdk._tcp.local"]);
        assert!(!is_system_message(&mixed));
        // A PTR's target counts: a system type pointing at an app's instance name is
        // no system announcement.
        let pointed = response(&[("_airplay._tcp.local", 12, wire(instance))]);
        assert!(!is_system_message(&pointed));
        // A name outside the local zones, no name at all, and junk are not the
        // system's either.
        assert!(!is_system_message(&query(&["tracker.example.com"])));
        assert!(!is_system_message(&query(&["plain._tcp.local"])));
        assert!(!is_system_message(&query(&[])));
        assert!(!is_system_message(b"\x00\x00\x84"));
    }

    #[test]
    fn the_service_type_is_the_label_before_tcp_or_udp() {
        assert_eq!(service_type("a._sub._ipp._tcp.local"), Some("_ipp"));
        assert_eq!(service_type("x\\046y._smb._tcp.local"), Some("_smb"));
        assert_eq!(
            service_type("_sleep-proxy._udp.local"),
            Some("_sleep-proxy")
        );
        assert_eq!(service_type("host.local"), None);
        assert_eq!(service_type("_tcp.local"), None);
        assert_eq!(service_type("plain._tcp.local"), None);
    }
}
