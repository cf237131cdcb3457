//! 802.11 (Wi-Fi) frames → the network layer, for captures taken in monitor mode.
//!
//! Link types 105 (802.11 frames) and 127 (the same behind a radiotap header, what
//! `tcpdump -I`, `airodump-ng` and Wireshark record on Linux). [`decode`] reads data
//! frames: the MAC header (four-address frames, QoS control, HT control), then the
//! LLC/SNAP header whose ethertype [`link`](super::link) follows. The source and
//! destination MACs are the station's and its peer's, whichever addresses of the
//! header hold them, so a device known by its MAC is found as on Ethernet. The
//! radiotap header is skipped whole: nothing in it is needed, and a frame check
//! sequence at the end is cut off by the IP layer's own length.
//!
//! What is not read: protected frames ([`LinkError::WlanProtected`]: WEP and WPA,
//! no keys here), A-MSDU aggregates and 802.11 fragments ([`LinkError::NotDecoded`]). Management, control and
//! null-data frames carry no network layer ([`NetProto::Other`], as ARP on Ethernet).

use crate::net::link::{self, LinkError, LinkFrame, NetProto};

/// LINKTYPE of 802.11 frames without a radio header.
pub const LINKTYPE_IEEE802_11: u32 = 105;
/// LINKTYPE of 802.11 frames behind a radiotap header.
pub const LINKTYPE_RADIOTAP: u32 = 127;

const TYPE_DATA: u8 = 2;
const FLAG_TO_DS: u8 = 0x01;
const FLAG_FROM_DS: u8 = 0x02;
const FLAG_MORE_FRAGMENTS: u8 = 0x04;
const FLAG_PROTECTED: u8 = 0x40;
const FLAG_ORDER: u8 = 0x80;
/// Subtype bits of data frames: QoS (a QoS control field follows the addresses) and
/// no data (null function frames).
const SUBTYPE_QOS: u8 = 0x08;
const SUBTYPE_NO_DATA: u8 = 0x04;
/// QoS control: the frame body is an A-MSDU.
const QOS_A_MSDU: u8 = 0x80;

fn short(layer: &'static str, needed: usize, len: usize) -> LinkError {
    LinkError::Truncated { layer, needed, len }
}

fn mac(b: &[u8], at: usize) -> Option<[u8; 6]> {
    b.get(at..at + 6)?.try_into().ok()
}

/// Strips a radiotap header: version (0), padding, its length (little-endian).
pub fn radiotap(data: &[u8]) -> Result<LinkFrame<'_>, LinkError> {
    let (Some(&version), Some(len)) = (data.first(), data.get(2..4)) else {
        return Err(short("radiotap", 8, data.len()));
    };
    let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
    if version != 0 || len < 8 {
        return Err(LinkError::NotDecoded(format!(
            "radiotap header of version {version} and length {len}"
        )));
    }
    let frame = data
        .get(len..)
        .ok_or_else(|| short("radiotap", len, data.len()))?;
    decode(frame)
}

/// Decodes an 802.11 frame (see the module documentation).
pub fn decode(data: &[u8]) -> Result<LinkFrame<'_>, LinkError> {
    let (Some(&fc0), Some(&flags)) = (data.first(), data.get(1)) else {
        return Err(short("802.11", 2, data.len()));
    };
    let (version, kind, subtype) = (fc0 & 3, (fc0 >> 2) & 3, fc0 >> 4);
    if version != 0 {
        return Err(LinkError::NotDecoded(format!(
            "802.11 frame of protocol version {version}"
        )));
    }
    if kind != TYPE_DATA || subtype & SUBTYPE_NO_DATA != 0 {
        return Ok(LinkFrame {
            src_mac: None,
            dst_mac: None,
            vlan: None,
            proto: NetProto::Other(0),
            payload: &[],
        });
    }
    let four_addresses = flags & (FLAG_TO_DS | FLAG_FROM_DS) == FLAG_TO_DS | FLAG_FROM_DS;
    let qos = subtype & SUBTYPE_QOS != 0;
    let mut len = 24 + if four_addresses { 6 } else { 0 };
    let qos_at = len;
    if qos {
        len += 2 + if flags & FLAG_ORDER != 0 { 4 } else { 0 };
    }
    let (Some(a1), Some(a2), Some(a3), Some(seq)) =
        (mac(data, 4), mac(data, 10), mac(data, 16), data.get(22..24))
    else {
        return Err(short("802.11", len, data.len()));
    };
    let body = data
        .get(len..)
        .ok_or_else(|| short("802.11", len, data.len()))?;
    // Destination and source: by the distribution-system bits (IEEE 802.11 table 9-30).
    let (dst, src) = match flags & (FLAG_TO_DS | FLAG_FROM_DS) {
        0 => (a1, a2),
        FLAG_TO_DS => (a3, a2),
        FLAG_FROM_DS => (a1, a3),
        _ => (a3, mac(data, 24).unwrap_or(a2)),
    };
    let not_decoded = |what: &str| Err(LinkError::NotDecoded(what.to_string()));
    if flags & FLAG_PROTECTED != 0 {
        return Err(LinkError::WlanProtected);
    }
    if flags & FLAG_MORE_FRAGMENTS != 0 || seq[0] & 0x0f != 0 {
        return not_decoded("802.11 fragment");
    }
    if qos && data.get(qos_at).is_some_and(|q| q & QOS_A_MSDU != 0) {
        return not_decoded("A-MSDU aggregate");
    }
    // LLC/SNAP with an ethertype: OUI 00-00-00 (RFC 1042) or 00-00-F8 (bridge tunnel).
    let (proto, payload, vlan) = match (body.get(..8), body.get(8..)) {
        (Some([0xaa, 0xaa, 0x03, 0, 0, 0 | 0xf8, hi, lo]), Some(rest)) => {
            link::follow_ethertype(u16::from_be_bytes([*hi, *lo]), rest)?
        }
        (Some(_), _) => (NetProto::Other(0), body, None),
        (None, _) => return Err(short("LLC/SNAP", 8, body.len())),
    };
    Ok(LinkFrame {
        src_mac: Some(src),
        dst_mac: Some(dst),
        vlan,
        proto,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STA: [u8; 6] = [0x02, 0, 0, 0xaa, 0xbb, 0x01];
    const AP: [u8; 6] = [0x02, 0, 0, 0, 0, 0xfe];
    const ROUTER: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
    const IP4: [u8; 4] = [0x45, 0, 0, 20];
    const SNAP_IP4: [u8; 8] = [0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00];

    /// A data frame of subtype `subtype` with flags `flags` and addresses a1–a3.
    fn frame(subtype: u8, flags: u8, a: [[u8; 6]; 3], extra: &[u8], body: &[u8]) -> Vec<u8> {
        let mut v = vec![(subtype << 4) | (TYPE_DATA << 2), flags, 0, 0];
        for addr in a {
            v.extend_from_slice(&addr);
        }
        v.extend_from_slice(&[0x10, 0x00]); // sequence 1, fragment 0
        v.extend_from_slice(extra);
        v.extend_from_slice(body);
        v
    }

    fn body() -> Vec<u8> {
        [&SNAP_IP4[..], &IP4].concat()
    }

    #[test]
    fn station_to_ap_and_back() {
        // To the distribution system: A1 the AP, A2 the station, A3 the destination.
        let up = frame(0, FLAG_TO_DS, [AP, STA, ROUTER], &[], &body());
        let f = decode(&up).unwrap();
        assert_eq!(
            (f.src_mac, f.dst_mac, f.proto, f.payload),
            (Some(STA), Some(ROUTER), NetProto::Ipv4, &IP4[..])
        );
        // From it: A1 the station, A2 the AP, A3 the source.
        let down = frame(0, FLAG_FROM_DS, [STA, AP, ROUTER], &[], &body());
        let f = decode(&down).unwrap();
        assert_eq!((f.src_mac, f.dst_mac), (Some(ROUTER), Some(STA)));
        // Ad hoc: A1 destination, A2 source.
        let adhoc = frame(0, 0, [ROUTER, STA, AP], &[], &body());
        let f = decode(&adhoc).unwrap();
        assert_eq!((f.src_mac, f.dst_mac), (Some(STA), Some(ROUTER)));
        // Four addresses (mesh, WDS): A3 destination, A4 source.
        let wds = frame(
            0,
            FLAG_TO_DS | FLAG_FROM_DS,
            [AP, AP, ROUTER],
            &STA,
            &body(),
        );
        let f = decode(&wds).unwrap();
        assert_eq!(
            (f.src_mac, f.dst_mac, f.payload),
            (Some(STA), Some(ROUTER), &IP4[..])
        );
    }

    #[test]
    fn qos_and_ht_control_fields_are_skipped() {
        let qos = frame(8, FLAG_TO_DS, [AP, STA, ROUTER], &[5, 0], &body());
        assert_eq!(decode(&qos).unwrap().payload, &IP4[..]);
        let ht = frame(
            8,
            FLAG_TO_DS | FLAG_ORDER,
            [AP, STA, ROUTER],
            &[5, 0, 1, 2, 3, 4],
            &body(),
        );
        assert_eq!(decode(&ht).unwrap().payload, &IP4[..]);
    }

    #[test]
    fn radiotap_is_skipped_whole() {
        let mut v = vec![0, 0, 12, 0, 0x02, 0, 0, 0, 0x10, 0x02, 0x6c, 0x09];
        v.extend(frame(0, FLAG_TO_DS, [AP, STA, ROUTER], &[], &body()));
        assert_eq!(radiotap(&v).unwrap().payload, &IP4[..]);
        assert!(radiotap(&v[..3]).unwrap_err().is_truncated());
        assert!(radiotap(&[0, 0, 40, 0, 0, 0, 0, 0])
            .unwrap_err()
            .is_truncated());
        let e = radiotap(&[1, 0, 8, 0, 0, 0, 0, 0]).unwrap_err();
        assert!(matches!(e, LinkError::NotDecoded(_)), "{e}");
    }

    #[test]
    fn frames_without_a_network_layer_and_frames_not_read() {
        // Beacon (management), ACK (control), null data.
        for fc in [[0x80, 0], [0xd4, 0], [0x48, 0x01]] {
            let mut v = fc.to_vec();
            v.resize(24, 0);
            assert_eq!(decode(&v).unwrap().proto, NetProto::Other(0));
        }
        // A protocol version other than 0.
        let mut v1 = frame(0, FLAG_TO_DS, [AP, STA, ROUTER], &[], &body());
        v1[0] |= 1;
        assert!(matches!(decode(&v1), Err(LinkError::NotDecoded(_))));
        // Not LLC/SNAP.
        let not_snap = frame(0, FLAG_TO_DS, [AP, STA, ROUTER], &[], &[0x42; 8]);
        assert_eq!(decode(&not_snap).unwrap().proto, NetProto::Other(0));
        let protected = frame(
            0,
            FLAG_TO_DS | FLAG_PROTECTED,
            [AP, STA, ROUTER],
            &[],
            &body(),
        );
        assert_eq!(decode(&protected).unwrap_err(), LinkError::WlanProtected);
        let fragment = frame(
            0,
            FLAG_TO_DS | FLAG_MORE_FRAGMENTS,
            [AP, STA, ROUTER],
            &[],
            &body(),
        );
        assert!(decode(&fragment)
            .unwrap_err()
            .to_string()
            .contains("fragment"));
        let amsdu = frame(8, FLAG_TO_DS, [AP, STA, ROUTER], &[0x80, 0], &body());
        assert!(decode(&amsdu).unwrap_err().to_string().contains("A-MSDU"));
        // Cut short: in the header, in the LLC/SNAP header.
        let whole = frame(8, FLAG_TO_DS, [AP, STA, ROUTER], &[0, 0], &body());
        for cut in [1, 20, 25, 30] {
            assert!(
                decode(&whole[..cut]).unwrap_err().is_truncated(),
                "cut at {cut}"
            );
        }
    }
}
