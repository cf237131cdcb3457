//! PCAPdroid's app attribution: which Android app sent each packet of a capture that
//! PCAPdroid (the no-root Android capture app) wrote with its dump extensions on.
//!
//! PCAPdroid marks packets in one of two ways, by file format:
//! - **pcap**: link type Ethernet; a made-up Ethernet header, both addresses zero, in
//!   front of the raw IP packet, and after it (zero padding to a multiple of 4 between)
//!   a 32-byte trailer: magic `0x01072021`, the app's UID (both big-endian), the app's
//!   label in 20 bytes (NUL-terminated, so at most 19 bytes of it), and a CRC-32 of
//!   every byte before it, little-endian. Readers that know nothing of it see Ethernet
//!   padding after the IP packet.
//! - **pcapng**: link type raw IP; before a UID's first packet a custom block (PEN
//!   62652) maps the UID to its package name and label, and every packet carries the
//!   comment `u-<uid>`.
//!
//! These parsers are pure; [`AppTable`] keeps what a capture said about its apps.

use std::collections::HashMap;

use crate::exchange::AppRef;

/// PCAPdroid's IANA Private Enterprise Number, which its custom blocks carry.
pub const PEN: u32 = 62652;
/// Length of the trailer of a pcap frame.
pub const TRAILER_LEN: usize = 32;
const TRAILER_MAGIC: u32 = 0x0107_2021;
const ETHERNET_HEADER_LEN: usize = 14;
/// The shortest IP packet (an IPv4 header without options).
const MIN_IP_LEN: usize = 20;
const LABEL_LEN: usize = 20;
/// Custom block version and type of a UID mapping.
const BLOCK_VERSION: u16 = 1;
const BLOCK_UID_MAPPING: u8 = 1;
/// The UID PCAPdroid gives a connection whose app it could not find (named
/// "Unknown", package "unknown").
pub const UID_UNKNOWN: i32 = -1;
/// UIDs remembered per capture; Android's app UIDs are below 100 000 per user, and a
/// phone runs a few hundred apps.
pub const MAX_APPS: usize = 4096;

/// What a pcap frame's trailer says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer<'a> {
    pub uid: i32,
    /// The app's label as PCAPdroid cut it (up to the first NUL).
    pub label: &'a [u8],
    /// Whether the CRC-32 of the frame matches (a mismatch: a damaged frame, whose
    /// attribution is not to be trusted).
    pub fcs_ok: bool,
}

/// The trailer of an Ethernet frame PCAPdroid wrote, if it has one: both MAC
/// addresses zero, room for an IP header, and the magic in place.
pub fn trailer(frame: &[u8]) -> Option<Trailer<'_>> {
    if frame.len() < ETHERNET_HEADER_LEN + MIN_IP_LEN + TRAILER_LEN {
        return None;
    }
    if frame.get(..12)?.iter().any(|&b| b != 0) {
        return None;
    }
    let start = frame.len() - TRAILER_LEN;
    let t = frame.get(start..)?;
    if be_u32(t.get(0..4)?) != TRAILER_MAGIC {
        return None;
    }
    let uid = be_u32(t.get(4..8)?) as i32;
    let label = t.get(8..8 + LABEL_LEN)?;
    let label = label.split(|&b| b == 0).next().unwrap_or_default();
    let fcs = u32::from_le_bytes(t.get(28..32)?.try_into().ok()?);
    let covered = frame.get(..frame.len() - 4)?;
    Some(Trailer {
        uid,
        label,
        fcs_ok: crc32fast::hash(covered) == fcs,
    })
}

/// A PCAPdroid UID mapping block's contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UidMapping<'a> {
    pub uid: i32,
    pub package: &'a [u8],
    pub label: &'a [u8],
}

/// Why a PCAPdroid custom block was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("PCAPdroid block of {0} bytes is too short for its header")]
    Short(usize),
    #[error("PCAPdroid block version {0} is not known")]
    Version(u16),
    #[error("PCAPdroid block type {0} is not known")]
    Type(u8),
    #[error("PCAPdroid UID mapping names {needed} bytes of names in {available}")]
    Names { needed: usize, available: usize },
}

/// A PCAPdroid custom block's data (after the PEN): version (u16), type (u8), a
/// padding byte, then for a UID mapping the UID (i32), the lengths of the package
/// name and the label (u8 each) and the two names.
///
/// PCAPdroid writes in the phone's byte order whatever the section says, so, as its
/// own Wireshark dissector does, the version field (1) tells the byte order; the
/// section's (`big_endian`) only reads an unknown version for the error.
pub fn uid_mapping(data: &[u8], big_endian: bool) -> Result<UidMapping<'_>, BlockError> {
    let head = data.get(..10).ok_or(BlockError::Short(data.len()))?;
    let version = u16::from_le_bytes([head[0], head[1]]);
    // Version 1 reads as 0x0001 or 0x0100: never ambiguous.
    let big_endian = if version == BLOCK_VERSION {
        false
    } else if version.swap_bytes() == BLOCK_VERSION {
        true
    } else if big_endian {
        return Err(BlockError::Version(version.swap_bytes()));
    } else {
        return Err(BlockError::Version(version));
    };
    if head[2] != BLOCK_UID_MAPPING {
        return Err(BlockError::Type(head[2]));
    }
    let uid_bytes = [head[4], head[5], head[6], head[7]];
    let uid = if big_endian {
        i32::from_be_bytes(uid_bytes)
    } else {
        i32::from_le_bytes(uid_bytes)
    };
    let (package_len, label_len) = (usize::from(head[8]), usize::from(head[9]));
    let names = &data[10..];
    let needed = package_len + label_len;
    if names.len() < needed {
        return Err(BlockError::Names {
            needed,
            available: names.len(),
        });
    }
    Ok(UidMapping {
        uid,
        package: &names[..package_len],
        label: &names[package_len..needed],
    })
}

/// The UID of a PCAPdroid packet comment, `u-<uid>` (`u--1` for an unknown app).
pub fn comment_uid(comment: &[u8]) -> Option<i32> {
    let digits = comment.strip_prefix(b"u-")?;
    let (negative, digits) = match digits.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, digits),
    };
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits
        .iter()
        .try_fold(0i64, |n, &d| Some(n * 10 + i64::from(d - b'0')))?;
    i32::try_from(if negative { -n } else { n }).ok()
}

/// Text from a capture's name field: UTF-8 up to an incomplete character at the end
/// (PCAPdroid cuts labels by bytes), anything else invalid replaced; control
/// characters dropped, since they would reach terminals and reports.
pub fn name_text(bytes: &[u8]) -> String {
    let bytes = match std::str::from_utf8(bytes) {
        Err(e) if e.error_len().is_none() => &bytes[..e.valid_up_to()],
        _ => bytes,
    };
    String::from_utf8_lossy(bytes)
        .chars()
        .filter(|c| !c.is_control())
        .collect()
}

/// What a capture said about one app.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppName {
    pub package: Option<String>,
    pub label: Option<String>,
}

/// Counters of PCAPdroid's marks in a capture.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppStats {
    /// Frames with a trailer whose CRC-32 matched …
    pub trailers: u64,
    /// … and those whose did not (not used for attribution).
    pub bad_trailers: u64,
    /// UID mapping blocks read …
    pub mappings: u64,
    /// … and PCAPdroid blocks that could not be read, or of a type not known.
    pub bad_blocks: u64,
    /// UIDs not remembered: more than [`MAX_APPS`] apps.
    pub apps_over_limit: u64,
}

/// The apps a capture named, by UID.
#[derive(Debug, Default)]
pub struct AppTable {
    apps: HashMap<i32, AppName>,
    /// Set once the capture had a PCAPdroid block: from then on packet comments
    /// `u-<uid>` are PCAPdroid's, not a person's note.
    pcapng_marks: bool,
    pub stats: AppStats,
}

impl AppTable {
    /// A pcapng custom block of PCAPdroid's PEN.
    pub fn custom_block(&mut self, data: &[u8], big_endian: bool) -> Result<(), BlockError> {
        self.pcapng_marks = true;
        match uid_mapping(data, big_endian) {
            Ok(m) => {
                self.stats.mappings += 1;
                let name = AppName {
                    package: non_empty(m.package),
                    label: non_empty(m.label),
                };
                self.remember(m.uid, name, true);
                Ok(())
            }
            Err(e) => {
                self.stats.bad_blocks += 1;
                Err(e)
            }
        }
    }

    /// The UID a frame is marked with, by its pcapng comment or its pcap trailer
    /// (`link_is_ethernet`: the trailer only follows a made-up Ethernet header).
    #[inline]
    pub fn frame_uid(
        &mut self,
        data: &[u8],
        link_is_ethernet: bool,
        comment: Option<&[u8]>,
    ) -> Option<i32> {
        // Nearly every frame of every other capture: no comment, and real addresses.
        let zero_macs = link_is_ethernet && data.get(..12) == Some(&[0u8; 12][..]);
        if comment.is_none() && !zero_macs {
            return None;
        }
        self.marked_frame_uid(data, zero_macs, comment)
    }

    #[inline(never)]
    fn marked_frame_uid(
        &mut self,
        data: &[u8],
        zero_macs: bool,
        comment: Option<&[u8]>,
    ) -> Option<i32> {
        if let Some(c) = comment {
            if self.pcapng_marks {
                if let Some(uid) = comment_uid(c) {
                    return Some(uid);
                }
            }
        }
        if !zero_macs {
            return None;
        }
        let t = trailer(data)?;
        if !t.fcs_ok {
            self.stats.bad_trailers += 1;
            return None;
        }
        self.stats.trailers += 1;
        if !self.apps.contains_key(&t.uid) {
            let name = AppName {
                package: None,
                label: non_empty(t.label),
            };
            self.remember(t.uid, name, false);
        }
        Some(t.uid)
    }

    /// What the capture said about `uid`.
    pub fn name(&self, uid: i32) -> Option<&AppName> {
        self.apps.get(&uid)
    }

    fn remember(&mut self, uid: i32, name: AppName, replace: bool) {
        if self.apps.len() >= MAX_APPS && !self.apps.contains_key(&uid) {
            self.stats.apps_over_limit += 1;
            return;
        }
        if replace {
            self.apps.insert(uid, name);
        } else {
            self.apps.entry(uid).or_insert(name);
        }
    }
}

/// The case's app, which a capture's marks are compared with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppUnderTest {
    package: String,
    name: String,
}

impl AppUnderTest {
    /// The app a case names (`[app]` `package` and `name`; either may be empty).
    pub fn new(package: &str, name: &str) -> Self {
        AppUnderTest {
            package: package.trim().to_string(),
            name: name.trim().to_string(),
        }
    }

    /// Whether the app of `uid`, named `app`, is the app under test: by package name
    /// where the capture and the case both give one, else by label (a PCAPdroid pcap
    /// file's labels are cut to 19 bytes, so the case's name is also compared cut);
    /// `None` when either says too little to tell, and for [`UID_UNKNOWN`], which may
    /// be any app.
    pub fn matches(&self, uid: i32, app: &AppName) -> Option<bool> {
        if uid == UID_UNKNOWN {
            return None;
        }
        if let (Some(package), false) = (&app.package, self.package.is_empty()) {
            return Some(*package == self.package);
        }
        let (Some(label), false) = (&app.label, self.name.is_empty()) else {
            return None;
        };
        // A label of 16 bytes or more may be a 19-byte cut less a split character.
        let cut_like_a_trailer = label.len() + 4 >= LABEL_LEN
            && *label == name_text(&self.name.as_bytes()[..self.name.len().min(LABEL_LEN - 1)]);
        Some(*label == self.name || cut_like_a_trailer)
    }
}

/// Exchanges of one app in a run's captures.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AppTraffic {
    #[serde(flatten)]
    pub app: AppRef,
    pub exchanges: u64,
}

fn non_empty(bytes: &[u8]) -> Option<String> {
    let text = name_text(bytes);
    (!text.is_empty()).then_some(text)
}

fn be_u32(b: &[u8]) -> u32 {
    b.iter().fold(0, |n, &x| (n << 8) | u32::from(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame as PCAPdroid writes it in a pcap file.
    fn pcapdroid_frame(ip: &[u8], uid: i32, label: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(ip);
        while !(f.len()).is_multiple_of(4) {
            f.push(0);
        }
        f.extend_from_slice(&TRAILER_MAGIC.to_be_bytes());
        f.extend_from_slice(&uid.to_be_bytes());
        let mut name = [0u8; LABEL_LEN];
        let n = label.len().min(LABEL_LEN - 1);
        name[..n].copy_from_slice(&label[..n]);
        f.extend_from_slice(&name);
        let fcs = crc32fast::hash(&f);
        f.extend_from_slice(&fcs.to_le_bytes());
        f
    }

    fn ipv4(len: usize) -> Vec<u8> {
        let mut p = vec![0u8; len];
        p[0] = 0x45;
        p
    }

    #[test]
    fn trailer_of_a_pcapdroid_frame() {
        for ip_len in [20, 21, 22, 23, 40, 1500] {
            let f = pcapdroid_frame(&ipv4(ip_len), 10123, b"Example Shop");
            assert_eq!(f.len() % 4, 0);
            let t = trailer(&f).expect("trailer");
            assert_eq!(
                (t.uid, t.label, t.fcs_ok),
                (10123, &b"Example Shop"[..], true)
            );
        }
        // The label cut at 19 bytes, a negative UID.
        let f = pcapdroid_frame(&ipv4(40), -1, b"Google Play services");
        let t = trailer(&f).unwrap();
        assert_eq!((t.uid, t.label), (-1, &b"Google Play service"[..]));
    }

    #[test]
    fn trailer_needs_zero_macs_magic_and_room() {
        let good = pcapdroid_frame(&ipv4(40), 7, b"x");
        let mut mac = good.clone();
        mac[5] = 1;
        assert_eq!(trailer(&mac), None);
        let mut magic = good.clone();
        let at = magic.len() - TRAILER_LEN;
        magic[at] ^= 0xff;
        assert_eq!(trailer(&magic), None);
        assert_eq!(trailer(&good[..ETHERNET_HEADER_LEN + TRAILER_LEN]), None);
        assert_eq!(trailer(&[]), None);
        // A damaged byte anywhere before the FCS shows as a bad FCS.
        for at in [0, 13, 20, good.len() - 5] {
            let mut bad = good.clone();
            bad[at] ^= 0x40;
            if let Some(t) = trailer(&bad) {
                assert!(!t.fcs_ok, "byte {at}");
            }
        }
    }

    fn mapping_block(be: bool, uid: i32, package: &[u8], label: &[u8]) -> Vec<u8> {
        let mut d = Vec::new();
        if be {
            d.extend_from_slice(&BLOCK_VERSION.to_be_bytes());
        } else {
            d.extend_from_slice(&BLOCK_VERSION.to_le_bytes());
        }
        d.extend_from_slice(&[BLOCK_UID_MAPPING, 0]);
        d.extend_from_slice(&if be {
            uid.to_be_bytes()
        } else {
            uid.to_le_bytes()
        });
        d.extend_from_slice(&[package.len() as u8, label.len() as u8]);
        d.extend_from_slice(package);
        d.extend_from_slice(label);
        while !d.len().is_multiple_of(4) {
            d.push(0);
        }
        d
    }

    #[test]
    fn uid_mappings_in_either_byte_order() {
        for (written_be, section_be) in [(false, false), (true, true), (false, true), (true, false)]
        {
            let d = mapping_block(written_be, 10045, b"com.google.android.gms", b"Google Play");
            let m = uid_mapping(&d, section_be).unwrap();
            assert_eq!(
                (m.uid, m.package, m.label),
                (10045, &b"com.google.android.gms"[..], &b"Google Play"[..])
            );
        }
        let unknown = mapping_block(false, -1, b"", b"");
        let m = uid_mapping(&unknown, false).unwrap();
        assert_eq!((m.uid, m.package, m.label), (-1, &b""[..], &b""[..]));
    }

    #[test]
    fn bad_uid_mappings() {
        assert_eq!(uid_mapping(&[1, 0, 1], false), Err(BlockError::Short(3)));
        let mut d = mapping_block(false, 1, b"a", b"b");
        d[0] = 2;
        assert_eq!(uid_mapping(&d, false), Err(BlockError::Version(2)));
        let mut d = mapping_block(false, 1, b"a", b"b");
        d[2] = 9;
        assert_eq!(uid_mapping(&d, false), Err(BlockError::Type(9)));
        let mut d = mapping_block(false, 1, b"abc", b"");
        d[8] = 200;
        assert!(matches!(
            uid_mapping(&d, false),
            Err(BlockError::Names { needed: 200, .. })
        ));
    }

    #[test]
    fn comments() {
        assert_eq!(comment_uid(b"u-10123"), Some(10123));
        assert_eq!(comment_uid(b"u--1"), Some(-1));
        assert_eq!(comment_uid(b"u-0"), Some(0));
        assert_eq!(comment_uid(b"u-2147483647"), Some(i32::MAX));
        for bad in [
            &b"u-"[..],
            b"u--",
            b"u-12a",
            b"u-2147483648",
            b"u-99999999999",
            b"test 3",
            b"U-1",
        ] {
            assert_eq!(comment_uid(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn names_are_clean_text() {
        assert_eq!(name_text(b"Example Shop"), "Example Shop");
        // "Caf\u{e9}" cut inside its last character, as a 19-byte cut can do.
        assert_eq!(name_text(b"Caf\xc3"), "Caf");
        assert_eq!(name_text(b"a\xffb"), "a\u{fffd}b");
        assert_eq!(name_text(b"a\x1b[31mb\n"), "a[31mb");
    }

    #[test]
    fn table_from_trailers_and_blocks() {
        let mut t = AppTable::default();
        // Comments are no marks before a PCAPdroid block.
        assert_eq!(t.frame_uid(&ipv4(40), false, Some(b"u-5")), None);
        t.custom_block(
            &mapping_block(false, 5, b"com.example.shop", b"Example Shop"),
            false,
        )
        .unwrap();
        assert_eq!(t.frame_uid(&ipv4(40), false, Some(b"u-5")), Some(5));
        assert_eq!(t.frame_uid(&ipv4(40), false, Some(b"note")), None);
        let name = t.name(5).unwrap();
        assert_eq!(name.package.as_deref(), Some("com.example.shop"));
        assert_eq!(name.label.as_deref(), Some("Example Shop"));

        let f = pcapdroid_frame(&ipv4(60), 10210, b"Weather Now");
        assert_eq!(t.frame_uid(&f, false, None), None, "not Ethernet");
        assert_eq!(t.frame_uid(&f, true, None), Some(10210));
        assert_eq!(t.name(10210).unwrap().label.as_deref(), Some("Weather Now"));
        // A trailer does not replace what a mapping said.
        let f = pcapdroid_frame(&ipv4(60), 5, b"Other");
        assert_eq!(t.frame_uid(&f, true, None), Some(5));
        assert_eq!(
            t.name(5).unwrap().package.as_deref(),
            Some("com.example.shop")
        );
        let mut bad = pcapdroid_frame(&ipv4(60), 6, b"Bad");
        bad[20] ^= 1;
        assert_eq!(t.frame_uid(&bad, true, None), None);
        assert_eq!(t.name(6), None);
        assert_eq!(
            (t.stats.trailers, t.stats.bad_trailers, t.stats.mappings),
            (2, 1, 1)
        );
        assert!(t.custom_block(&[1], false).is_err());
        assert_eq!(t.stats.bad_blocks, 1);
    }

    #[test]
    fn app_under_test() {
        let shop = AppUnderTest::new("com.example.shop", "Example Shop");
        let named = |package: Option<&str>, label: Option<&str>| AppName {
            package: package.map(str::to_string),
            label: label.map(str::to_string),
        };
        assert_eq!(
            shop.matches(1, &named(Some("com.example.shop"), Some("Other"))),
            Some(true)
        );
        assert_eq!(
            shop.matches(1, &named(Some("com.google.android.gms"), None)),
            Some(false)
        );
        assert_eq!(
            shop.matches(1, &named(None, Some("Example Shop"))),
            Some(true)
        );
        assert_eq!(
            shop.matches(1, &named(None, Some("Weather Now"))),
            Some(false)
        );
        assert_eq!(shop.matches(1, &named(None, None)), None);
        // A label cut to 19 bytes by a trailer.
        let long = AppUnderTest::new("", "Example Shop Deluxe Edition");
        assert_eq!(
            long.matches(1, &named(None, Some("Example Shop Deluxe"))),
            Some(true)
        );
        assert_eq!(
            long.matches(1, &named(None, Some("Example Shop"))),
            Some(false)
        );
        let unknown = named(Some("unknown"), Some("Unknown"));
        assert_eq!(shop.matches(UID_UNKNOWN, &unknown), None);
        assert_eq!(shop.matches(9999, &unknown), Some(false));
        // A case without an app, or one the capture cannot be compared with.
        assert_eq!(
            AppUnderTest::default().matches(1, &named(Some("a"), Some("b"))),
            None
        );
        let by_name = AppUnderTest::new("", "Example Shop");
        assert_eq!(
            by_name.matches(1, &named(Some("com.example.shop"), None)),
            None
        );
        assert_eq!(
            by_name.matches(1, &named(Some("com.x"), Some("Example Shop"))),
            Some(true)
        );
    }

    #[test]
    fn table_is_bounded() {
        let mut t = AppTable::default();
        for uid in 0..(MAX_APPS as i32 + 10) {
            let f = pcapdroid_frame(&ipv4(40), uid, b"app");
            assert_eq!(t.frame_uid(&f, true, None), Some(uid));
        }
        assert_eq!(t.apps.len(), MAX_APPS);
        assert_eq!(t.stats.apps_over_limit, 10);
    }
}
