//! 802.11 (Wi-Fi) frames → the network layer, for captures taken in monitor mode.
//!
//! Link types 105 (802.11 frames) and 127 (the same behind a radiotap header, what
//! `tcpdump -I`, `airodump-ng` and Wireshark record on Linux). [`decode`] reads data
//! frames: the MAC header (four-address frames, QoS control, HT control), then the
//! LLC/SNAP header whose ethertype [`link`] follows. The source and
//! destination MACs are the station's and its peer's, whichever addresses of the
//! header hold them, so a device known by its MAC is found as on Ethernet. Of the
//! radiotap header only its flags are read: whether a frame check sequence ends the
//! frame (it is cut off) and whether the driver padded the 802.11 header to 4 bytes.
//! A-MSDU aggregates come out as [`NetProto::WlanAggregate`], whose subframes
//! [`msdus`] reads.
//!
//! Protected data frames (WEP, WPA) come out whole as [`NetProto::WlanProtected`],
//! for [`wpa`](super::wpa) to decrypt when it has the keys; [`body_of`] reads
//! what it gives back. Fragments of an MSDU come out whole too, as
//! [`NetProto::WlanFragment`] or, protected, as [`NetProto::WlanProtected`]:
//! [`fragment_of`] says where each stands, and
//! [`wlan_defrag`](super::wlan_defrag) puts their (decrypted) bodies together.
//! Management, control and null-data frames carry no network layer
//! ([`NetProto::Other`], as ARP on Ethernet).

use crate::net::link::{self, LinkError, LinkFrame, NetProto};

/// LINKTYPE of 802.11 frames without a radio header.
pub const LINKTYPE_IEEE802_11: u32 = 105;
/// LINKTYPE of 802.11 frames behind a radiotap header.
pub const LINKTYPE_RADIOTAP: u32 = 127;

const TYPE_MANAGEMENT: u8 = 0;
const TYPE_DATA: u8 = 2;
/// Management subtypes read for WPA.
const SUBTYPE_ASSOCIATION_REQUEST: u8 = 0;
pub const SUBTYPE_REASSOCIATION_REQUEST: u8 = 2;
pub const SUBTYPE_REASSOCIATION_RESPONSE: u8 = 3;
const SUBTYPE_PROBE_RESPONSE: u8 = 5;
const SUBTYPE_BEACON: u8 = 8;
/// The management subtypes read, and the length of their fixed fields before the
/// elements (IEEE 802.11-2020 9.3.3): those that name the network (all but the
/// reassociation response) and the two of a fast BSS transition's reassociation.
const MANAGEMENT_FRAMES: [(u8, usize); 5] = [
    (SUBTYPE_ASSOCIATION_REQUEST, 4),    // capability, listen interval
    (SUBTYPE_REASSOCIATION_REQUEST, 10), // … and the current AP's address
    (SUBTYPE_REASSOCIATION_RESPONSE, 6), // capability, status, association id
    (SUBTYPE_PROBE_RESPONSE, 12),        // timestamp, beacon interval, capability
    (SUBTYPE_BEACON, 12),                // the same
];
const ELEMENT_SSID: u8 = 0;
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
/// Radiotap presence bits of the fields before and of the flags.
const RADIOTAP_TSFT: u32 = 1 << 0;
const RADIOTAP_FLAGS: u32 = 1 << 1;
const RADIOTAP_EXT: u32 = 1 << 31;
/// Radiotap flags: the frame ends with its FCS; padding after the 802.11 header.
const RADIOTAP_FLAG_FCS: u8 = 0x10;
const RADIOTAP_FLAG_DATA_PAD: u8 = 0x20;
/// The RFC 1042 LLC/SNAP header's first six bytes: as an A-MSDU's first destination
/// address, the mark of a frame whose A-MSDU bit was set by someone else (an
/// injected or flipped bit, the "FragAttacks" A-MSDU spoof) rather than an aggregate.
const RFC1042_START: [u8; 6] = [0xaa, 0xaa, 0x03, 0, 0, 0];

fn short(layer: &'static str, needed: usize, len: usize) -> LinkError {
    LinkError::Truncated { layer, needed, len }
}

fn mac(b: &[u8], at: usize) -> Option<[u8; 6]> {
    b.get(at..at + 6)?.try_into().ok()
}

/// What a radiotap header says of the frame behind it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Radio {
    /// The frame ends with its 4-byte frame check sequence.
    fcs: bool,
    /// The driver padded the 802.11 header to a multiple of 4 bytes.
    data_pad: bool,
}

/// The flags field of a radiotap header (`hdr`, whole), if present: after the
/// presence words and the TSFT field, aligned to 8, when that is present.
fn radiotap_flags(hdr: &[u8]) -> Option<u8> {
    let word = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(hdr.get(at..at + 4)?.try_into().ok()?))
    };
    let present = word(4)?;
    let mut at = 8;
    let mut last = present;
    while last & RADIOTAP_EXT != 0 {
        last = word(at)?;
        at += 4;
    }
    if present & RADIOTAP_FLAGS == 0 {
        return None;
    }
    if present & RADIOTAP_TSFT != 0 {
        at = at.next_multiple_of(8) + 8;
    }
    hdr.get(at).copied()
}

/// Strips a radiotap header: version (0), padding, its length (little-endian), the
/// presence words and the fields they announce.
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
    let (Some(hdr), Some(frame)) = (data.get(..len), data.get(len..)) else {
        return Err(short("radiotap", len, data.len()));
    };
    let flags = radiotap_flags(hdr).unwrap_or(0);
    let radio = Radio {
        fcs: flags & RADIOTAP_FLAG_FCS != 0,
        data_pad: flags & RADIOTAP_FLAG_DATA_PAD != 0,
    };
    let frame = match frame.len().checked_sub(4) {
        Some(end) if radio.fcs => &frame[..end],
        _ => frame,
    };
    decode_frame(frame, radio)
}

/// Decodes an 802.11 frame (see the module documentation); no FCS is assumed at its
/// end, as Wireshark assumes for link type 105.
pub fn decode(data: &[u8]) -> Result<LinkFrame<'_>, LinkError> {
    decode_frame(data, Radio::default())
}

/// Where the fields of a data frame's MAC header are (IEEE 802.11-2020 9.3.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DataHeader {
    /// To DS and From DS both set: a fourth address at byte 24.
    pub four_addresses: bool,
    /// Offset of the QoS control field, in QoS data frames.
    pub qos_at: Option<usize>,
    /// Length of the header (without a driver's padding).
    pub len: usize,
}

impl DataHeader {
    /// The layout the frame control bytes `fc0` and `flags` give.
    pub(crate) fn of(fc0: u8, flags: u8) -> Self {
        let four_addresses = flags & (FLAG_TO_DS | FLAG_FROM_DS) == FLAG_TO_DS | FLAG_FROM_DS;
        let qos_at = 24 + if four_addresses { 6 } else { 0 };
        let qos = (fc0 >> 4) & SUBTYPE_QOS != 0;
        let ht_control = if flags & FLAG_ORDER != 0 { 4 } else { 0 };
        DataHeader {
            four_addresses,
            qos_at: qos.then_some(qos_at),
            len: qos_at + if qos { 2 + ht_control } else { 0 },
        }
    }

    /// Whether the frame body is an A-MSDU (QoS control bit 7).
    fn a_msdu(&self, frame: &[u8]) -> bool {
        self.qos_at
            .and_then(|at| frame.get(at))
            .is_some_and(|q| q & QOS_A_MSDU != 0)
    }
}

/// A data frame's destination and source addresses among its addresses 1 to 3 and
/// 4 (when present), by the distribution-system bits of `flags` (IEEE 802.11-2020
/// table 9-30).
pub(crate) fn destination_and_source(
    flags: u8,
    [a1, a2, a3]: [[u8; 6]; 3],
    a4: Option<[u8; 6]>,
) -> ([u8; 6], [u8; 6]) {
    match flags & (FLAG_TO_DS | FLAG_FROM_DS) {
        0 => (a1, a2),
        FLAG_TO_DS => (a3, a2),
        FLAG_FROM_DS => (a1, a3),
        _ => (a3, a4.unwrap_or(a2)),
    }
}

/// Whether a data frame's flags say it comes from the distribution system: sent by
/// an access point.
pub(crate) fn from_access_point(flags: u8) -> bool {
    flags & (FLAG_TO_DS | FLAG_FROM_DS) == FLAG_FROM_DS
}

fn decode_frame(data: &[u8], radio: Radio) -> Result<LinkFrame<'_>, LinkError> {
    let (Some(&fc0), Some(&flags)) = (data.first(), data.get(1)) else {
        return Err(short("802.11", 2, data.len()));
    };
    let (version, kind, subtype) = (fc0 & 3, (fc0 >> 2) & 3, fc0 >> 4);
    if version != 0 {
        return Err(LinkError::NotDecoded(format!(
            "802.11 frame of protocol version {version}"
        )));
    }
    if kind == TYPE_MANAGEMENT && MANAGEMENT_FRAMES.iter().any(|(s, _)| *s == subtype) {
        return Ok(LinkFrame {
            src_mac: None,
            dst_mac: None,
            vlan: None,
            proto: NetProto::WlanManagement,
            payload: data,
        });
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
    let header = DataHeader::of(fc0, flags);
    let mut len = header.len;
    let (Some(a1), Some(a2), Some(a3), Some(seq)) =
        (mac(data, 4), mac(data, 10), mac(data, 16), data.get(22..24))
    else {
        return Err(short("802.11", len, data.len()));
    };
    if radio.data_pad {
        len = len.next_multiple_of(4);
    }
    let body = data
        .get(len..)
        .ok_or_else(|| short("802.11", len, data.len()))?;
    let (dst, src) = destination_and_source(flags, [a1, a2, a3], mac(data, 24));
    // The whole frame when decryption or reassembly needs its header; `len` is at
    // most 40.
    let (proto, payload, vlan) = if flags & FLAG_PROTECTED != 0 {
        (NetProto::WlanProtected(len as u16), data, None)
    } else if is_fragment(flags, seq[0]) {
        (NetProto::WlanFragment(len as u16), data, None)
    } else {
        frame_body(&header, data, body)?
    };
    Ok(LinkFrame {
        src_mac: Some(src),
        dst_mac: Some(dst),
        vlan,
        proto,
        payload,
    })
}

/// What the body of a data frame carries: an A-MSDU's subframes or, after LLC/SNAP,
/// the protocol of its ethertype.
fn frame_body<'a>(
    header: &DataHeader,
    frame: &[u8],
    body: &'a [u8],
) -> Result<(NetProto, &'a [u8], Option<u16>), LinkError> {
    if !header.a_msdu(frame) {
        return llc_snap(body);
    }
    if body.starts_with(&RFC1042_START) {
        return Err(LinkError::NotDecoded(
            "A-MSDU whose first subframe starts with an LLC/SNAP header".into(),
        ));
    }
    Ok((NetProto::WlanAggregate, body, None))
}

/// What `body` carries, the body of the data frame `frame` (as
/// [`NetProto::WlanProtected`] or [`NetProto::WlanFragment`] gave it) once decrypted
/// or reassembled, as for a plain frame.
pub fn body_of<'a>(
    frame: &[u8],
    body: &'a [u8],
) -> Result<(NetProto, &'a [u8], Option<u16>), LinkError> {
    let (Some(&fc0), Some(&flags)) = (frame.first(), frame.get(1)) else {
        return Err(short("802.11", 2, frame.len()));
    };
    frame_body(&DataHeader::of(fc0, flags), frame, body)
}

/// Whether a data frame of these flags and first sequence control byte is a fragment
/// of a longer MSDU: More Fragments set, or a fragment number other than 0.
fn is_fragment(flags: u8, sequence_control0: u8) -> bool {
    flags & FLAG_MORE_FRAGMENTS != 0 || sequence_control0 & 0x0f != 0
}

/// The MSDU a fragment belongs to: what a receiver tells MSDUs apart by (the
/// transmitter, the sequence number and, in QoS data frames, the TID), and the
/// receiver, since a monitor capture holds every receiver's frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MsduKey {
    pub transmitter: [u8; 6],
    pub receiver: [u8; 6],
    /// The QoS TID; 16 in data frames without QoS control.
    pub tid: u8,
    /// The 12-bit sequence number.
    pub sequence: u16,
}

/// Where a fragment stands in its MSDU (IEEE 802.11-2020 9.2.4.4: the Sequence
/// Control field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentOf {
    pub msdu: MsduKey,
    /// Its fragment number, 0 to 15.
    pub number: u8,
    /// More Fragments: it is not the last.
    pub more: bool,
}

/// Where the data frame `frame` stands among its MSDU's fragments; `None` when it is
/// no fragment (the whole MSDU in one frame) or too short for its header.
pub fn fragment_of(frame: &[u8]) -> Option<FragmentOf> {
    let (&fc0, &flags, sequence_control) = (frame.first()?, frame.get(1)?, frame.get(22..24)?);
    if !is_fragment(flags, sequence_control[0]) {
        return None;
    }
    let header = DataHeader::of(fc0, flags);
    let tid = match header.qos_at {
        Some(at) => frame.get(at)? & 0x0f,
        None => 16,
    };
    let sequence_control = u16::from_le_bytes([sequence_control[0], sequence_control[1]]);
    Some(FragmentOf {
        msdu: MsduKey {
            transmitter: mac(frame, 10)?,
            receiver: mac(frame, 4)?,
            tid,
            sequence: sequence_control >> 4,
        },
        number: (sequence_control & 0x0f) as u8,
        more: flags & FLAG_MORE_FRAGMENTS != 0,
    })
}

/// A management frame of [`NetProto::WlanManagement`]: its addresses and elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManagementFrame<'a> {
    pub subtype: u8,
    /// Receiver, transmitter, and the BSSID (address 3).
    pub a1: [u8; 6],
    pub a2: [u8; 6],
    pub bssid: [u8; 6],
    /// The elements after the fixed fields.
    pub elements: &'a [u8],
}

impl<'a> ManagementFrame<'a> {
    /// The SSID a frame that names its network names; `None` for other subtypes and
    /// for a hidden network (an empty or zeroed SSID).
    pub fn ssid(&self) -> Option<&'a [u8]> {
        if self.subtype == SUBTYPE_REASSOCIATION_RESPONSE {
            return None;
        }
        let (_, ssid) = elements(self.elements).find(|(id, _)| *id == ELEMENT_SSID)?;
        ssid.iter().any(|&b| b != 0).then_some(ssid)
    }
}

/// Reads a management frame of [`NetProto::WlanManagement`]; `None` for other
/// subtypes and frames cut short. (An HT Control field, which the Order bit announces,
/// follows the header.)
pub fn management(frame: &[u8]) -> Option<ManagementFrame<'_>> {
    let subtype = frame.first()? >> 4;
    let (_, fixed) = MANAGEMENT_FRAMES.iter().find(|(s, _)| *s == subtype)?;
    let header = if frame.get(1)? & FLAG_ORDER != 0 {
        28
    } else {
        24
    };
    Some(ManagementFrame {
        subtype,
        a1: mac(frame, 4)?,
        a2: mac(frame, 10)?,
        bssid: mac(frame, 16)?,
        elements: frame.get(header + fixed..)?,
    })
}

/// The elements of a management frame body or of EAPOL-Key data (IEEE 802.11-2020
/// 9.4.2.1, 12.7.2): id and body, up to the first that does not fit (the padding
/// of wrapped key data ends them too).
pub(crate) fn elements(mut data: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    std::iter::from_fn(move || {
        let (&id, &len) = (data.first()?, data.get(1)?);
        let body = data.get(2..2 + usize::from(len))?;
        data = &data[2 + usize::from(len)..];
        Some((id, body))
    })
}

/// LLC/SNAP with an ethertype: OUI 00-00-00 (RFC 1042) or 00-00-F8 (bridge tunnel).
fn llc_snap(body: &[u8]) -> Result<(NetProto, &[u8], Option<u16>), LinkError> {
    match (body.get(..8), body.get(8..)) {
        (Some([0xaa, 0xaa, 0x03, 0, 0, 0 | 0xf8, hi, lo]), Some(rest)) => {
            link::follow_ethertype(u16::from_be_bytes([*hi, *lo]), rest)
        }
        (Some(_), _) => Ok((NetProto::Other(0), body, None)),
        (None, _) => Err(short("LLC/SNAP", 8, body.len())),
    }
}

/// The subframes of an A-MSDU's body (IEEE 802.11-2020 9.3.2.2.2): each a
/// destination and a source address, a length (big-endian), that many bytes of
/// LLC/SNAP and payload, then padding to a multiple of 4 bytes before the next. A
/// subframe that does not fit ends the iteration with its error.
pub fn msdus(body: &[u8]) -> Msdus<'_> {
    Msdus { rest: body }
}

/// Iterator of [`msdus`].
#[derive(Debug, Clone)]
pub struct Msdus<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Msdus<'a> {
    type Item = Result<LinkFrame<'a>, LinkError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = std::mem::take(&mut self.rest);
        if rest.is_empty() {
            return None;
        }
        let (Some(dst), Some(src), Some(len)) = (mac(rest, 0), mac(rest, 6), rest.get(12..14))
        else {
            return Some(Err(short("A-MSDU subframe", 14, rest.len())));
        };
        let end = 14 + usize::from(u16::from_be_bytes([len[0], len[1]]));
        let Some(msdu) = rest.get(14..end) else {
            return Some(Err(short("A-MSDU subframe", end, rest.len())));
        };
        // The last subframe has no padding (some drivers add it all the same).
        self.rest = rest.get(end.next_multiple_of(4)..).unwrap_or(&[]);
        Some(llc_snap(msdu).map(|(proto, payload, vlan)| LinkFrame {
            src_mac: Some(src),
            dst_mac: Some(dst),
            vlan,
            proto,
            payload,
        }))
    }
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

    /// An A-MSDU subframe: destination, source, length, LLC/SNAP and `payload`.
    fn subframe(dst: [u8; 6], src: [u8; 6], payload: &[u8]) -> Vec<u8> {
        let msdu = [&SNAP_IP4[..], payload].concat();
        [&dst[..], &src, &(msdu.len() as u16).to_be_bytes(), &msdu].concat()
    }

    #[test]
    fn a_msdus_subframes_come_with_their_own_addresses() {
        let first = subframe(ROUTER, STA, &IP4);
        assert_eq!(first.len() % 4, 2, "padding needed after it");
        let second = subframe(AP, STA, &[0x45, 0, 0, 21, 9]);
        let aggregate = [&first[..], &[0, 0], &second].concat();
        let data = frame(8, FLAG_TO_DS, [AP, STA, ROUTER], &[0x80, 0], &aggregate);
        let f = decode(&data).unwrap();
        assert_eq!(
            (f.proto, f.payload, f.src_mac),
            (NetProto::WlanAggregate, &aggregate[..], Some(STA))
        );
        let got: Vec<_> = msdus(f.payload)
            .map(|m| m.map(|m| (m.dst_mac, m.src_mac, m.proto, m.payload)))
            .collect();
        assert_eq!(
            got,
            [
                Ok((Some(ROUTER), Some(STA), NetProto::Ipv4, &IP4[..])),
                Ok((
                    Some(AP),
                    Some(STA),
                    NetProto::Ipv4,
                    &[0x45, 0, 0, 21, 9][..]
                )),
            ]
        );
        // Padding after the last subframe too: nothing more.
        assert_eq!(msdus(&[&first[..], &[0, 0]].concat()).count(), 1);
        // A length beyond the frame, a header cut short: an error, then the end.
        let mut long = first.clone();
        long[13] += 1;
        let got: Vec<_> = msdus(&long).collect();
        assert_eq!(got.len(), 1);
        assert!(got[0].as_ref().unwrap_err().is_truncated());
        let cut = [&first[..], &[0, 0], &second[..10]].concat();
        let got: Vec<_> = msdus(&cut).collect();
        assert_eq!(got.len(), 2);
        assert!(got[0].is_ok() && got[1].as_ref().unwrap_err().is_truncated());
        // A subframe that is no LLC/SNAP: no network layer, like any other frame body.
        let odd = [&ROUTER[..], &STA, &[0, 9], &[1, 2, 3, 4, 5, 6, 7, 8, 9]].concat();
        assert_eq!(
            msdus(&odd).next().unwrap().unwrap().proto,
            NetProto::Other(0)
        );
    }

    /// A radiotap header with these presence words and field bytes.
    fn radiotap_header(present: &[u32], fields: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 0, 0];
        for word in present {
            v.extend_from_slice(&word.to_le_bytes());
        }
        v.extend_from_slice(fields);
        let len = v.len() as u16;
        v[2..4].copy_from_slice(&len.to_le_bytes());
        v
    }

    /// The BSSID and SSID a management frame names.
    fn network_name(frame: &[u8]) -> Option<([u8; 6], &[u8])> {
        let frame = management(frame)?;
        Some((frame.bssid, frame.ssid()?))
    }

    #[test]
    fn beacons_probe_responses_and_associations_name_the_network() {
        let ssid = [&[0u8, 3][..], b"lab"].concat();
        let rates = [1, 2, 0x82, 0x84];
        // A management frame of `subtype` from the AP (A3 = BSSID) with `fixed` bytes.
        let named = |subtype: u8, fixed: usize, elements: &[u8]| {
            let mut v = vec![subtype << 4, 0, 0, 0];
            v.extend_from_slice(&[STA, AP, AP].concat());
            v.extend_from_slice(&[0x10, 0]);
            v.extend(std::iter::repeat_n(7, fixed));
            v.extend_from_slice(elements);
            v
        };
        for (subtype, fixed) in [(8, 12), (5, 12), (0, 4), (2, 10)] {
            let frame = named(subtype, fixed, &[&rates[..], &ssid].concat());
            let f = decode(&frame).unwrap();
            assert_eq!((f.proto, f.payload), (NetProto::WlanManagement, &frame[..]));
            assert_eq!(network_name(&frame), Some((AP, &b"lab"[..])), "{subtype}");
        }
        // Hidden networks, no SSID element, an element cut short; other management.
        for elements in [&[0, 0][..], &[0, 3, 0, 0, 0], &rates, &[0, 5, b'l']] {
            assert_eq!(network_name(&named(8, 12, elements)), None);
        }
        let probe_request = named(4, 0, &ssid);
        assert_eq!(decode(&probe_request).unwrap().proto, NetProto::Other(0));
        assert_eq!(network_name(&probe_request), None);
    }

    #[test]
    fn reassociations_are_read_for_their_elements() {
        let mde = [54, 3, 0x34, 0x12, 1];
        // A reassociation response (status, AID) of the AP to the station: its
        // elements after the 6 bytes of fixed fields; it names no network.
        let mut response = vec![3 << 4, 0, 0, 0];
        response.extend_from_slice(&[STA, AP, AP].concat());
        response.extend_from_slice(&[0x10, 0, 1, 0, 0, 0, 1, 0xc0]);
        response.extend_from_slice(&mde);
        assert_eq!(decode(&response).unwrap().proto, NetProto::WlanManagement);
        let read = management(&response).unwrap();
        assert_eq!(
            (read.subtype, read.a1, read.a2, read.bssid),
            (3, STA, AP, AP)
        );
        assert_eq!(read.elements, &mde[..]);
        assert_eq!(read.ssid(), None);
        // With the Order bit, an HT Control field follows the header.
        let mut ordered = response.clone();
        ordered[1] |= FLAG_ORDER;
        ordered.splice(24..24, [0xaa; 4]);
        assert_eq!(management(&ordered).unwrap().elements, &mde[..]);
        // Cut inside the fixed fields: nothing.
        assert_eq!(management(&response[..28]), None);
    }

    #[test]
    fn radiotap_flags_say_fcs_and_padding() {
        let data = frame(0, FLAG_TO_DS, [AP, STA, ROUTER], &[], &body());
        let fcs = [0xde, 0xad, 0xbe, 0xef];
        // Flags only; after TSFT (8-byte aligned); after an extended presence word.
        for (present, before) in [
            (vec![RADIOTAP_FLAGS], vec![]),
            (vec![RADIOTAP_TSFT | RADIOTAP_FLAGS], vec![7; 8]),
            (
                vec![RADIOTAP_TSFT | RADIOTAP_FLAGS | RADIOTAP_EXT, 0],
                vec![0; 4 + 8],
            ),
        ] {
            let hdr = radiotap_header(&present, &[&before[..], &[RADIOTAP_FLAG_FCS]].concat());
            assert_eq!(radiotap_flags(&hdr), Some(RADIOTAP_FLAG_FCS));
            let with_fcs = [&hdr[..], &data, &fcs].concat();
            assert_eq!(radiotap(&with_fcs).unwrap().payload, &IP4[..]);
        }
        // The FCS is cut off before an A-MSDU's subframes are read.
        let aggregate = subframe(ROUTER, STA, &IP4);
        let hdr = radiotap_header(&[RADIOTAP_FLAGS], &[RADIOTAP_FLAG_FCS]);
        let amsdu = frame(8, FLAG_TO_DS, [AP, STA, ROUTER], &[0x80, 0], &aggregate);
        let captured = [&hdr[..], &amsdu, &fcs].concat();
        let f = radiotap(&captured).unwrap();
        assert_eq!(msdus(f.payload).count(), 1);
        assert!(msdus(f.payload).all(|m| m.is_ok()));
        // Padding after a QoS header (26 bytes) to 28.
        let hdr = radiotap_header(&[RADIOTAP_FLAGS], &[RADIOTAP_FLAG_DATA_PAD]);
        let qos = frame(8, FLAG_TO_DS, [AP, STA, ROUTER], &[5, 0, 0, 0], &body());
        assert_eq!(
            radiotap(&[&hdr[..], &qos].concat()).unwrap().payload,
            &IP4[..]
        );
        // No flags field, or presence words past the header: nothing assumed.
        assert_eq!(radiotap_flags(&radiotap_header(&[0x04], &[0x10])), None);
        assert_eq!(radiotap_flags(&radiotap_header(&[RADIOTAP_EXT], &[])), None);
    }

    #[test]
    fn radiotap_is_skipped_whole() {
        // Flags (FCS at the end), rate, and a field the flags do not need.
        let mut v = vec![0, 0, 12, 0, 0x06, 0, 0, 0, 0x10, 0x02, 0x6c, 0x09];
        v.extend(frame(0, FLAG_TO_DS, [AP, STA, ROUTER], &[], &body()));
        v.extend_from_slice(&[1, 2, 3, 4]);
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
        // Authentication (management), ACK (control), null data.
        for fc in [[0xb0, 0], [0xd4, 0], [0x48, 0x01]] {
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
        // Protected: the whole frame, for decryption, with where its body starts.
        let f = decode(&protected).unwrap();
        assert_eq!(
            (f.proto, f.payload, f.src_mac),
            (NetProto::WlanProtected(24), &protected[..], Some(STA))
        );
        let fragment = frame(
            0,
            FLAG_TO_DS | FLAG_MORE_FRAGMENTS,
            [AP, STA, ROUTER],
            &[],
            &body(),
        );
        // A fragment: the whole frame, for reassembly, with where its body starts.
        let f = decode(&fragment).unwrap();
        assert_eq!(
            (f.proto, f.payload, f.src_mac),
            (NetProto::WlanFragment(24), &fragment[..], Some(STA))
        );
        // The A-MSDU bit on a frame whose body is plain LLC/SNAP: no aggregate.
        let spoofed = frame(8, FLAG_TO_DS, [AP, STA, ROUTER], &[0x80, 0], &body());
        let e = decode(&spoofed).unwrap_err();
        assert!(matches!(e, LinkError::NotDecoded(_)), "{e}");
        // Cut short: in the header, in the LLC/SNAP header.
        let whole = frame(8, FLAG_TO_DS, [AP, STA, ROUTER], &[0, 0], &body());
        for cut in [1, 20, 25, 30] {
            assert!(
                decode(&whole[..cut]).unwrap_err().is_truncated(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn where_fragments_stand() {
        let mut first = frame(
            8,
            FLAG_TO_DS | FLAG_MORE_FRAGMENTS,
            [AP, STA, ROUTER],
            &[5, 0],
            &body(),
        );
        // Sequence number 0x123, fragment 0.
        first[22..24].copy_from_slice(&(0x123u16 << 4).to_le_bytes());
        let msdu = MsduKey {
            transmitter: STA,
            receiver: AP,
            tid: 5,
            sequence: 0x123,
        };
        let of = fragment_of(&first).unwrap();
        assert_eq!((of.msdu, of.number, of.more), (msdu, 0, true));
        // The last fragment: no More Fragments, fragment number 2.
        let mut last = first.clone();
        last[1] = FLAG_TO_DS;
        last[22..24].copy_from_slice(&((0x123u16 << 4) | 2).to_le_bytes());
        let of = fragment_of(&last).unwrap();
        assert_eq!((of.msdu, of.number, of.more), (msdu, 2, false));
        // Without QoS control the TID is 16; a whole MSDU is no fragment.
        let plain = frame(
            0,
            FLAG_TO_DS | FLAG_MORE_FRAGMENTS,
            [AP, STA, ROUTER],
            &[],
            &body(),
        );
        assert_eq!(fragment_of(&plain).unwrap().msdu.tid, 16);
        let whole = frame(8, FLAG_TO_DS, [AP, STA, ROUTER], &[5, 0], &body());
        assert_eq!(fragment_of(&whole), None);
        assert_eq!(fragment_of(&first[..23]), None);
    }
}
