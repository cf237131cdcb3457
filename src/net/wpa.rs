//! WPA2-Personal decryption of 802.11 captures: a lab network's passphrase (or its
//! PSK) and the 4-way handshakes in the capture give each station's pairwise key,
//! which opens its CCMP-protected unicast frames, as Wireshark's `wpa-pwd` keys do.
//!
//! - [`parse_keys`] reads Wireshark's 802.11 keys file (`80211_keys`), and
//!   [`WlanKeys`] derives each key's PMK once (PBKDF2-HMAC-SHA1, 4096 rounds); a
//!   passphrase given without an SSID is derived, per capture, with the SSID each
//!   access point names ([`Wpa::learn_ssid`]).
//! - [`Wpa`] follows EAPOL-Key messages (IEEE 802.11-2020 §12.7.6) per access point
//!   and station: the ANonce of message 1 or 3 and the SNonce of message 2 give the
//!   PTK (§12.7.1.3); the key whose PTK makes message 2's MIC right is the network's,
//!   so a wrong passphrase is noticed, not used. A later handshake (rekeying)
//!   replaces the key, the previous one kept for frames still in flight.
//! - The group key (GTK) comes from message 3, or from a group key handshake, whose
//!   key data is unwrapped (AES key wrap, RFC 3394) with the station's KEK once the
//!   frame's MIC proves it the access point's; group-addressed frames are opened with
//!   it by key id.
//! - [`Wpa::decrypt`] opens CCMP-128 (§12.5.3): nonce and additional data from the
//!   header, the 8-byte MIC checked.
//!
//! Not decrypted (the frames stay `wlan-protected`): TKIP and WEP, the SHA-256 and
//! SAE key management of 802.11w and WPA3 (key descriptor version 3, whose PMK a
//! passphrase alone does not give), GCMP, and stations (or, for group-addressed
//! frames, access points) whose handshake the capture does not hold.

use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;

use aes::cipher::BlockDecrypt;
use aes::Aes128;
use ccm::aead::generic_array::GenericArray;
use ccm::aead::{AeadInPlace, KeyInit};
use ccm::consts::{U13, U8};
use ccm::Ccm;
use ring::{hmac, pbkdf2};

use crate::net::wlan::DataHeader;

/// Ethertype of EAPOL (802.1X), which carries the 4-way handshake.
pub const ETHERTYPE_EAPOL: u16 = 0x888e;
/// Access point and station pairs followed at once; beyond, the oldest is forgotten.
pub const MAX_STATIONS: usize = 4096;

const PBKDF2_ROUNDS: u32 = 4096;
/// EAPOL packet type of a key frame.
const EAPOL_KEY: u8 = 3;
/// Key descriptor types: RSN (WPA2) and the WPA of before 802.11i.
const DESCRIPTOR_RSN: u8 = 2;
const DESCRIPTOR_WPA: u8 = 254;
/// Key information bits.
const KEY_VERSION_MASK: u16 = 0x0007;
const KEY_VERSION_HMAC_SHA1_AES: u16 = 2;
const KEY_PAIRWISE: u16 = 0x0008;
const KEY_ACK: u16 = 0x0080;
const KEY_MIC: u16 = 0x0100;
const KEY_ENCRYPTED_DATA: u16 = 0x1000;
/// Offset of the key data length; the key data follows.
const KEY_DATA_LEN_AT: usize = 97;
/// The GTK key data encapsulation: vendor element, OUI 00-0F-AC, data type 1.
const KDE_GTK: [u8; 4] = [0x00, 0x0f, 0xac, 0x01];
const ELEMENT_VENDOR: u8 = 0xdd;
/// Offsets in an EAPOL-Key frame, from the start of the 802.1X header.
const NONCE_AT: usize = 17;
const MIC_AT: usize = 81;
const KEY_FRAME_MIN: usize = 99;
/// The largest EAPOL-Key frame kept while its handshake is incomplete.
const MAX_KEY_FRAME: usize = 2048;

type Mac = [u8; 6];
type CcmpCipher = Ccm<Aes128, U8, U13>;

/// One decryption key, as a Wireshark 802.11 keys file gives it.
#[derive(Clone, PartialEq, Eq)]
pub enum WlanKey {
    /// `wpa-pwd`: a passphrase and the network's SSID; without one, the SSID each
    /// access point names in the capture (beacons, probe responses, associations).
    Passphrase {
        passphrase: String,
        ssid: Option<Vec<u8>>,
    },
    /// `wpa-psk`: the 256-bit pre-shared key (the PMK) itself.
    Psk([u8; 32]),
}

impl fmt::Debug for WlanKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secret itself.
        match self {
            WlanKey::Passphrase {
                ssid: Some(ssid), ..
            } => write!(f, "wpa-pwd for SSID {:?}", String::from_utf8_lossy(ssid)),
            WlanKey::Passphrase { ssid: None, .. } => {
                f.write_str("wpa-pwd for the SSIDs the capture names")
            }
            WlanKey::Psk(_) => f.write_str("wpa-psk"),
        }
    }
}

/// A line of a keys file that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {what}")]
pub struct KeysError {
    pub line: usize,
    pub what: String,
}

/// Reads Wireshark's 802.11 keys file: one key a line, `"wpa-pwd","PASSPHRASE:SSID"`
/// (the SSID optional) or `"wpa-psk","64 HEX DIGITS"` (the quotes optional), `%3a`
/// and `%25` standing for `:` and `%` in a passphrase or SSID; `#` starts a comment.
/// WEP keys and other types are refused by name.
pub fn parse_keys(text: &str) -> Result<Vec<WlanKey>, KeysError> {
    let mut keys = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let error = |what: String| KeysError { line: i + 1, what };
        let (kind, value) = line
            .split_once(',')
            .ok_or_else(|| error("expected \"TYPE\",\"KEY\"".into()))?;
        let unquote = |s: &str| {
            let s = s.trim();
            s.strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .unwrap_or(s)
                .to_string()
        };
        let (kind, value) = (unquote(kind), unquote(value));
        keys.push(match kind.as_str() {
            "wpa-pwd" => {
                let (passphrase, ssid) = match value.split_once(':') {
                    Some((passphrase, ssid)) => (passphrase, Some(ssid)),
                    None => (value.as_str(), None),
                };
                let passphrase = percent_decode(passphrase).map_err(&error)?;
                let passphrase = String::from_utf8(passphrase)
                    .map_err(|_| error("the passphrase is not UTF-8".into()))?;
                if !(8..=63).contains(&passphrase.len()) {
                    return Err(error(format!(
                        "a WPA passphrase has 8 to 63 characters, this one {}",
                        passphrase.len()
                    )));
                }
                let ssid = ssid.map(percent_decode).transpose().map_err(&error)?;
                if let Some(ssid) = ssid.as_ref().filter(|s| !(1..=32).contains(&s.len())) {
                    return Err(error(format!(
                        "an SSID has 1 to 32 bytes, this one {}",
                        ssid.len()
                    )));
                }
                WlanKey::Passphrase { passphrase, ssid }
            }
            "wpa-psk" => {
                let psk = hex32(&value)
                    .ok_or_else(|| error("a wpa-psk key is 64 hexadecimal digits".into()))?;
                WlanKey::Psk(psk)
            }
            other => {
                return Err(error(format!(
                    "key type {other:?} is not supported (wpa-pwd and wpa-psk are)"
                )))
            }
        });
    }
    Ok(keys)
}

fn percent_decode(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b != b'%' {
            out.push(b);
            continue;
        }
        let hex: Vec<u8> = bytes.by_ref().take(2).collect();
        let digit = |h: Option<&u8>| h.and_then(|h| char::from(*h).to_digit(16));
        match (digit(hex.first()), digit(hex.get(1))) {
            (Some(hi), Some(lo)) => out.push((hi * 16 + lo) as u8),
            _ => return Err(format!("bad escape in {s:?}: % needs two hex digits")),
        }
    }
    Ok(out)
}

fn hex32(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// PMK of a passphrase and SSID (IEEE 802.11-2020 annex J, PBKDF2-HMAC-SHA1).
pub fn passphrase_pmk(passphrase: &str, ssid: &[u8]) -> [u8; 32] {
    let mut pmk = [0u8; 32];
    let rounds = NonZeroU32::new(PBKDF2_ROUNDS).unwrap_or(NonZeroU32::MIN);
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA1,
        rounds,
        ssid,
        passphrase.as_bytes(),
        &mut pmk,
    );
    pmk
}

/// The PMKs of the keys given, derived once for every capture read with them, and
/// the passphrases given without an SSID.
#[derive(Clone, Default)]
pub struct WlanKeys {
    pmks: Vec<[u8; 32]>,
    any_ssid: Vec<String>,
}

impl fmt::Debug for WlanKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "WlanKeys({} keys)",
            self.pmks.len() + self.any_ssid.len()
        )
    }
}

impl WlanKeys {
    pub fn new(keys: &[WlanKey]) -> Self {
        let mut out = WlanKeys::default();
        for key in keys {
            match key {
                WlanKey::Passphrase {
                    passphrase,
                    ssid: Some(ssid),
                } => out.pmks.push(passphrase_pmk(passphrase, ssid)),
                WlanKey::Passphrase {
                    passphrase,
                    ssid: None,
                } => out.any_ssid.push(passphrase.clone()),
                WlanKey::Psk(psk) => out.pmks.push(*psk),
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.pmks.is_empty() && self.any_ssid.is_empty()
    }
}

/// PMKs derived from passphrases given without an SSID, at most, per capture: each
/// costs a PBKDF2 of 4 096 rounds, and a capture chooses the SSIDs.
pub const MAX_DERIVED_PMKS: usize = 64;

/// What a [`Wpa`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WpaStats {
    /// 4-way handshakes that gave a pairwise key.
    pub handshakes: u64,
    /// Handshakes whose MIC no key's PTK made right: a wrong passphrase or SSID.
    pub wrong_key: u64,
    /// Handshakes of a kind not followed (TKIP, 802.11w/WPA3 key descriptors).
    pub unsupported: u64,
    /// Frames decrypted.
    pub decrypted: u64,
}

/// Why a protected frame was not decrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotDecrypted {
    /// WEP or TKIP (no extended IV), or a key id other than the pairwise key's.
    NotCcmp,
    /// Sent to a group address by an access point whose group key was not seen.
    GroupAddressed,
    /// No 4-way handshake of this station with a key that fits was seen before it.
    NoKey,
    /// The station's key does not open it (a frame of another association).
    IntegrityCheckFailed,
    /// Too short for a CCMP header and MIC.
    Truncated,
}

impl fmt::Display for NotDecrypted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NotDecrypted::NotCcmp => "802.11 protected frame that is not CCMP (WEP or TKIP)",
            NotDecrypted::GroupAddressed => {
                "802.11 protected group-addressed frame of an access point whose group key was not seen (message 3 of a handshake with a given key)"
            }
            NotDecrypted::NoKey => {
                "802.11 protected frame of a station whose 4-way handshake with a given key is not in the capture"
            }
            NotDecrypted::IntegrityCheckFailed => {
                "802.11 protected frame that the station's key does not open (CCMP MIC)"
            }
            NotDecrypted::Truncated => "802.11 protected frame too short for CCMP",
        })
    }
}

/// A handshake in progress, and the keys it gave, of one access point and station.
#[derive(Default)]
struct Station {
    /// When it was first seen, in EAPOL frames followed: the oldest goes first.
    since: u64,
    anonce: Option<[u8; 32]>,
    /// Message 2: the SNonce and the whole EAPOL-Key frame, for its MIC.
    message_2: Option<([u8; 32], Vec<u8>)>,
    /// The key confirmation and key encryption keys of the last PTK (for the MIC and
    /// key data of the access point's later messages).
    kck_kek: Option<([u8; 16], [u8; 16])>,
    tk: Option<[u8; 16]>,
    previous_tk: Option<[u8; 16]>,
}

/// Decryption state of one capture: the keys, and per access point and station
/// (authenticator and supplicant address) the handshake and pairwise key.
pub struct Wpa {
    keys: Arc<WlanKeys>,
    stations: BTreeMap<(Mac, Mac), Station>,
    /// Group keys by access point and key id (at most [`MAX_STATIONS`]; beyond, the
    /// lowest access point address goes).
    groups: BTreeMap<(Mac, u8), [u8; 16]>,
    /// The SSID each access point names (as many; the same rule).
    ssids: BTreeMap<Mac, Vec<u8>>,
    /// PMKs of the SSID-less passphrases (by their index) with SSIDs seen.
    derived: BTreeMap<(usize, Vec<u8>), [u8; 32]>,
    /// EAPOL-Key frames followed so far.
    followed: u64,
    stats: WpaStats,
}

impl Wpa {
    pub fn new(keys: Arc<WlanKeys>) -> Self {
        Wpa {
            keys,
            stations: BTreeMap::new(),
            groups: BTreeMap::new(),
            ssids: BTreeMap::new(),
            derived: BTreeMap::new(),
            followed: 0,
            stats: WpaStats::default(),
        }
    }

    pub fn stats(&self) -> &WpaStats {
        &self.stats
    }

    fn station(&mut self, pair: (Mac, Mac)) -> &mut Station {
        self.followed += 1;
        if self.stations.len() >= MAX_STATIONS && !self.stations.contains_key(&pair) {
            let oldest = self.stations.iter().min_by_key(|(_, s)| s.since);
            if let Some(&oldest) = oldest.map(|(pair, _)| pair) {
                self.stations.remove(&oldest);
            }
        }
        let since = self.followed;
        self.stations.entry(pair).or_insert_with(|| Station {
            since,
            ..Station::default()
        })
    }

    /// Remembers the SSID access point `bssid` names, for passphrases given without.
    pub fn learn_ssid(&mut self, bssid: Mac, ssid: &[u8]) {
        if self.keys.any_ssid.is_empty() || self.ssids.get(&bssid).map(Vec::as_slice) == Some(ssid)
        {
            return;
        }
        if self.ssids.len() >= MAX_STATIONS && !self.ssids.contains_key(&bssid) {
            self.ssids.pop_first();
        }
        self.ssids.insert(bssid, ssid.to_vec());
    }

    /// The PMKs to try for a handshake with access point `aa`: the keys', and those of
    /// the SSID-less passphrases with the SSID `aa` named.
    fn pmks_for(&mut self, aa: Mac) -> Vec<[u8; 32]> {
        let mut pmks = self.keys.pmks.clone();
        let Some(ssid) = self.ssids.get(&aa) else {
            return pmks;
        };
        for (i, passphrase) in self.keys.any_ssid.iter().enumerate() {
            let key = (i, ssid.clone());
            if let Some(pmk) = self.derived.get(&key) {
                pmks.push(*pmk);
            } else if self.derived.len() < MAX_DERIVED_PMKS {
                let pmk = passphrase_pmk(passphrase, ssid);
                self.derived.insert(key, pmk);
                pmks.push(pmk);
            }
        }
        pmks
    }

    /// Follows an EAPOL frame (the body after LLC/SNAP) from `src` to `dst`.
    pub fn eapol(&mut self, src: Mac, dst: Mac, frame: &[u8]) {
        let (Some(&packet_type), Some(len)) = (frame.get(1), frame.get(2..4)) else {
            return;
        };
        let len = 4 + usize::from(u16::from_be_bytes([len[0], len[1]]));
        let Some(key) = frame.get(..len) else { return };
        if packet_type != EAPOL_KEY
            || key.len() < KEY_FRAME_MIN
            || !matches!(key[4], DESCRIPTOR_RSN | DESCRIPTOR_WPA)
        {
            return;
        }
        let info = u16::from_be_bytes([key[5], key[6]]);
        let from_authenticator = info & KEY_ACK != 0;
        let pair = if from_authenticator {
            (src, dst)
        } else {
            (dst, src)
        };
        if info & KEY_PAIRWISE != 0 {
            self.pairwise_message(pair, info, key);
        }
        // Message 3, or message 1 of a group key handshake.
        let group_key_data = KEY_MIC | KEY_ENCRYPTED_DATA | KEY_ACK;
        if info & group_key_data == group_key_data
            && info & KEY_VERSION_MASK == KEY_VERSION_HMAC_SHA1_AES
        {
            self.group_key(pair, key);
        }
    }

    /// A message of the 4-way handshake.
    fn pairwise_message(&mut self, pair: (Mac, Mac), info: u16, key: &[u8]) {
        let mut nonce = [0u8; 32];
        nonce.copy_from_slice(&key[NONCE_AT..NONCE_AT + 32]);
        match (info & KEY_ACK != 0, info & KEY_MIC != 0) {
            // Messages 1 and 3 carry the ANonce.
            (true, _) => self.station(pair).anonce = Some(nonce),
            // Message 2 (message 4 has a zero nonce).
            (false, true) if nonce != [0; 32] => {
                if info & KEY_VERSION_MASK != KEY_VERSION_HMAC_SHA1_AES {
                    self.stats.unsupported += 1;
                    return;
                }
                if key.len() > MAX_KEY_FRAME {
                    return;
                }
                self.station(pair).message_2 = Some((nonce, key.to_vec()));
            }
            _ => return,
        }
        self.try_pairwise_key(pair);
    }

    /// Derives the pairwise key once the ANonce and message 2 are both known.
    fn try_pairwise_key(&mut self, (aa, spa): (Mac, Mac)) {
        let ready = self.stations.get(&(aa, spa));
        if !ready.is_some_and(|s| s.anonce.is_some() && s.message_2.is_some()) {
            return;
        }
        let pmks = self.pmks_for(aa);
        let Some(station) = self.stations.get_mut(&(aa, spa)) else {
            return;
        };
        let Some(anonce) = station.anonce else { return };
        let Some((snonce, message_2)) = station.message_2.take() else {
            return;
        };
        let mut zeroed = message_2.clone();
        zeroed[MIC_AT..MIC_AT + 16].fill(0);
        let mic = &message_2[MIC_AT..MIC_AT + 16];
        let found = pmks.iter().find_map(|pmk| {
            let ptk = ptk(pmk, aa, spa, &anonce, &snonce);
            let kck = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &ptk[..16]);
            let tag = hmac::sign(&kck, &zeroed);
            (tag.as_ref().get(..16) == Some(mic)).then_some(ptk)
        });
        match found {
            Some(ptk) => {
                let part =
                    |at: usize| -> [u8; 16] { ptk[at..at + 16].try_into().unwrap_or_default() };
                let tk = part(32);
                if station.tk != Some(tk) {
                    station.previous_tk = station.tk.replace(tk);
                }
                station.kck_kek = Some((part(0), part(16)));
                self.stats.handshakes += 1;
            }
            None => self.stats.wrong_key += 1,
        }
    }

    /// Takes the GTK out of the key data of an access point's message whose MIC the
    /// station's KCK makes right.
    fn group_key(&mut self, (aa, spa): (Mac, Mac), key: &[u8]) {
        let Some((kck, kek)) = self.stations.get(&(aa, spa)).and_then(|s| s.kck_kek) else {
            return;
        };
        let mut zeroed = key.to_vec();
        zeroed[MIC_AT..MIC_AT + 16].fill(0);
        let tag = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &kck),
            &zeroed,
        );
        if tag.as_ref().get(..16) != key.get(MIC_AT..MIC_AT + 16) {
            return;
        }
        let len = usize::from(u16::from_be_bytes([
            key[KEY_DATA_LEN_AT],
            key[KEY_DATA_LEN_AT + 1],
        ]));
        let Some(plain) = key
            .get(KEY_FRAME_MIN..KEY_FRAME_MIN + len)
            .and_then(|data| aes_key_unwrap(&kek, data))
        else {
            return;
        };
        if let Some((id, gtk)) = gtk_kde(&plain) {
            if self.groups.len() >= MAX_STATIONS && !self.groups.contains_key(&(aa, id)) {
                self.groups.pop_first();
            }
            self.groups.insert((aa, id), gtk);
        }
    }

    /// Decrypts the protected data frame `frame` (header included, no FCS) whose
    /// CCMP header starts at `body_at`: the plaintext body (LLC/SNAP and on).
    pub fn decrypt(&mut self, frame: &[u8], body_at: usize) -> Result<Vec<u8>, NotDecrypted> {
        let (Some(&fc0), Some(&flags), Some(header)) =
            (frame.first(), frame.get(1), frame.get(..24))
        else {
            return Err(NotDecrypted::Truncated);
        };
        let layout = DataHeader::of(fc0, flags);
        let body = frame.get(body_at..).ok_or(NotDecrypted::Truncated)?;
        if body.len() < 16 || frame.len() < layout.len {
            return Err(NotDecrypted::Truncated);
        }
        // Extended IV: CCMP (or TKIP, told apart by the key's cipher; only CCMP here).
        if body[3] & 0x20 == 0 {
            return Err(NotDecrypted::NotCcmp);
        }
        let mac_at = |at: usize| -> Mac { header[at..at + 6].try_into().unwrap_or([0; 6]) };
        let (a1, a2) = (mac_at(4), mac_at(10));
        let keys = if a1[0] & 1 != 0 {
            // Sent by the access point (A2) with its group key of the frame's key id.
            let gtk = self.groups.get(&(a2, body[3] >> 6));
            (Some(*gtk.ok_or(NotDecrypted::GroupAddressed)?), None)
        } else {
            [(a1, a2), (a2, a1)]
                .iter()
                .filter_map(|pair| self.stations.get(pair))
                .find(|s| s.tk.is_some())
                .map(|s| (s.tk, s.previous_tk))
                .ok_or(NotDecrypted::NoKey)?
        };

        let qos = layout.qos_at.and_then(|at| frame.get(at)).copied();
        let mut nonce = [0u8; 13];
        nonce[0] = qos.unwrap_or(0) & 0x0f;
        nonce[1..7].copy_from_slice(&a2);
        for (i, at) in [7, 6, 5, 4, 1, 0].into_iter().enumerate() {
            nonce[7 + i] = body[at];
        }
        let mut aad = Vec::with_capacity(30);
        // Subtype bits of a data frame, Retry, PwrMgt and MoreData masked, Protected
        // set, Order masked in QoS data frames (§12.5.3.3.3).
        aad.push(fc0 & 0x8f);
        let order = if qos.is_some() { 0x80 } else { 0 };
        aad.push((flags & !(0x08 | 0x10 | 0x20 | order)) | 0x40);
        aad.extend_from_slice(&header[4..22]);
        aad.extend_from_slice(&[header[22] & 0x0f, 0]);
        if layout.four_addresses {
            aad.extend_from_slice(frame.get(24..30).ok_or(NotDecrypted::Truncated)?);
        }
        if let Some(q) = qos {
            aad.extend_from_slice(&[q & 0x0f, 0]);
        }
        let (ciphertext, mic) = body[8..].split_at(body.len() - 16);
        for tk in [keys.0, keys.1].into_iter().flatten() {
            let Ok(cipher) = CcmpCipher::new_from_slice(&tk) else {
                continue;
            };
            let mut plain = ciphertext.to_vec();
            let opened = cipher.decrypt_in_place_detached(
                GenericArray::from_slice(&nonce),
                &aad,
                &mut plain,
                GenericArray::from_slice(mic),
            );
            if opened.is_ok() {
                self.stats.decrypted += 1;
                return Ok(plain);
            }
        }
        Err(NotDecrypted::IntegrityCheckFailed)
    }
}

/// The GTK KDE of a message's decrypted key data (IEEE 802.11-2020 §12.7.2): its
/// key id and a 16-byte (CCMP-128) GTK.
fn gtk_kde(data: &[u8]) -> Option<(u8, [u8; 16])> {
    let mut rest = data;
    while let (Some(&id), Some(&len)) = (rest.first(), rest.get(1)) {
        let body = rest.get(2..2 + usize::from(len))?;
        if id == ELEMENT_VENDOR && body.starts_with(&KDE_GTK) {
            let gtk = body.get(6..)?.try_into().ok()?;
            return Some((body.get(4)? & 0x03, gtk));
        }
        rest = &rest[2 + usize::from(len)..];
    }
    None
}

/// AES key unwrap (RFC 3394 §2.2.2) of `wrapped` under `kek`; `None` when the
/// integrity check value does not come out.
fn aes_key_unwrap(kek: &[u8; 16], wrapped: &[u8]) -> Option<Vec<u8>> {
    if wrapped.len() < 24 || !wrapped.len().is_multiple_of(8) {
        return None;
    }
    let cipher = Aes128::new_from_slice(kek).ok()?;
    let n = wrapped.len() / 8 - 1;
    let mut a: [u8; 8] = wrapped[..8].try_into().ok()?;
    let mut r: Vec<[u8; 8]> = wrapped[8..]
        .chunks_exact(8)
        .filter_map(|c| c.try_into().ok())
        .collect();
    for j in (0..6u64).rev() {
        for i in (1..=n).rev() {
            let t = (n as u64) * j + i as u64;
            let mut block = [0u8; 16];
            for (b, (x, y)) in block.iter_mut().zip(a.iter().zip(t.to_be_bytes())) {
                *b = x ^ y;
            }
            block[8..].copy_from_slice(&r[i - 1]);
            let block_ref = GenericArray::from_mut_slice(&mut block);
            cipher.decrypt_block(block_ref);
            a.copy_from_slice(&block[..8]);
            r[i - 1].copy_from_slice(&block[8..]);
        }
    }
    (a == [0xa6; 8]).then(|| r.concat())
}

/// PRF-384 of a PMK for CCMP (IEEE 802.11-2020 §12.7.1.2-3): KCK, KEK and TK.
fn ptk(pmk: &[u8; 32], aa: Mac, spa: Mac, anonce: &[u8; 32], snonce: &[u8; 32]) -> [u8; 48] {
    let mut data = Vec::with_capacity(76);
    data.extend_from_slice(&aa.min(spa));
    data.extend_from_slice(&aa.max(spa));
    data.extend_from_slice(anonce.min(snonce));
    data.extend_from_slice(anonce.max(snonce));
    let mut out = [0u8; 48];
    prf(pmk, b"Pairwise key expansion", &data, &mut out);
    out
}

/// The 802.11 PRF (§12.7.1.2): HMAC-SHA1(K, A || 0 || B || i), i = 0, 1, …
fn prf(key: &[u8], label: &[u8], data: &[u8], out: &mut [u8]) {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
    for (i, chunk) in out.chunks_mut(20).enumerate() {
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(label);
        ctx.update(&[0]);
        ctx.update(data);
        ctx.update(&[i as u8]);
        let tag = ctx.sign();
        chunk.copy_from_slice(&tag.as_ref()[..chunk.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn passphrase_to_pmk_as_ieee_802_11_annex_j() {
        // The passphrase-to-PSK test vectors of IEEE 802.11's annex J.
        assert_eq!(
            passphrase_pmk("password", b"IEEE").to_vec(),
            hex("f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e")
        );
        assert_eq!(
            passphrase_pmk("ThisIsAPassword", b"ThisIsASSID").to_vec(),
            hex("0dc0d6eb90555ed6419756b9a15ec3e3209b63df707dd508d14581f8982721af")
        );
    }

    #[test]
    fn prf_as_ieee_802_11_annex_j() {
        // The first HMAC-SHA1 PRF test vector of IEEE 802.11's annex J.
        let mut out = [0u8; 64];
        prf(&[0x0b; 20], b"prefix", b"Hi There", &mut out);
        assert_eq!(
            out.to_vec(),
            hex(
                "bcd4c650b30b9684951829e0d75f9d54b862175ed9f00606e17d8da35402ffee\
                 75df78c3d31e0f889f012120c0862beb67753e7439ae242edb8373698356cf5a"
            )
        );
    }

    const AP: Mac = [2, 0, 0, 0, 0x5a, 1];
    const STA: Mac = [2, 0, 0, 0xaa, 0xcc, 7];
    const ANONCE: [u8; 32] = [0xa1; 32];
    const SNONCE: [u8; 32] = [0x5b; 32];

    /// An EAPOL-Key frame with key information `info` and `nonce`, its MIC made with
    /// the KCK of `pmk` when the MIC bit is set.
    fn key_frame(info: u16, nonce: &[u8; 32], pmk: &[u8; 32]) -> Vec<u8> {
        let mut f = vec![2, EAPOL_KEY, 0, 95, DESCRIPTOR_RSN];
        f.extend_from_slice(&info.to_be_bytes());
        f.extend_from_slice(&[0, 16]);
        f.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
        f.extend_from_slice(nonce);
        f.resize(KEY_FRAME_MIN, 0);
        if info & KEY_MIC != 0 {
            let ptk = ptk(pmk, AP, STA, &ANONCE, &SNONCE);
            let kck = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &ptk[..16]);
            let tag = hmac::sign(&kck, &f);
            f[MIC_AT..MIC_AT + 16].copy_from_slice(&tag.as_ref()[..16]);
        }
        f
    }

    const M1: u16 = KEY_PAIRWISE | KEY_ACK | KEY_VERSION_HMAC_SHA1_AES;
    const M2: u16 = KEY_PAIRWISE | KEY_MIC | KEY_VERSION_HMAC_SHA1_AES;

    fn wpa_with(keys: &[WlanKey]) -> Wpa {
        Wpa::new(Arc::new(WlanKeys::new(keys)))
    }

    fn lab_key() -> WlanKey {
        WlanKey::Passphrase {
            passphrase: "correct horse battery staple".into(),
            ssid: Some(b"lab".to_vec()),
        }
    }

    fn handshake(wpa: &mut Wpa, pmk: &[u8; 32], m2_first: bool) {
        let m1 = key_frame(M1, &ANONCE, pmk);
        let m2 = key_frame(M2, &SNONCE, pmk);
        if m2_first {
            wpa.eapol(STA, AP, &m2);
            wpa.eapol(AP, STA, &m1);
        } else {
            wpa.eapol(AP, STA, &m1);
            wpa.eapol(STA, AP, &m2);
        }
        // Message 4: no nonce, nothing to learn.
        wpa.eapol(STA, AP, &key_frame(M2 | 0x0200, &[0; 32], pmk));
    }

    /// A QoS data frame from the station to the AP (TID 5) holding `plain`,
    /// protected with `tk` and packet number `pn`, the CCMP way written out by hand.
    fn protected_frame(tk: &[u8; 16], pn: u64, plain: &[u8]) -> Vec<u8> {
        let mut header = vec![0x88, 0x41 | 0x08, 0x2c, 0];
        header.extend_from_slice(&AP);
        header.extend_from_slice(&STA);
        header.extend_from_slice(&[2, 0, 0, 0, 0x5a, 0xfe]);
        header.extend_from_slice(&[0x15, 0x02, 0x05, 0x00]); // seq 33 frag 5; QoS TID 5
        let pn = pn.to_be_bytes(); // PN5 = pn[2] … PN0 = pn[7]
        let ccmp = [pn[7], pn[6], 0, 0x20, pn[5], pn[4], pn[3], pn[2]];
        let mut nonce = vec![5];
        nonce.extend_from_slice(&STA);
        nonce.extend_from_slice(&pn[2..]);
        // FC: subtype bits and Retry masked, Protected kept; SC: fragment only; QC: TID.
        let mut aad = vec![0x88, 0x41];
        aad.extend_from_slice(&header[4..22]);
        aad.extend_from_slice(&[0x05, 0x00, 0x05, 0x00]);
        let cipher = CcmpCipher::new_from_slice(tk).unwrap();
        let mut body = plain.to_vec();
        let mic = cipher
            .encrypt_in_place_detached(GenericArray::from_slice(&nonce), &aad, &mut body)
            .unwrap();
        [&header[..], &ccmp, &body, mic.as_slice()].concat()
    }

    fn tk_of(pmk: &[u8; 32]) -> [u8; 16] {
        ptk(pmk, AP, STA, &ANONCE, &SNONCE)[32..48]
            .try_into()
            .unwrap()
    }

    #[test]
    fn a_handshake_gives_the_key_that_opens_the_stations_frames() {
        let pmk = WlanKeys::new(&[lab_key()]).pmks[0];
        for m2_first in [false, true] {
            let other = WlanKey::Psk([7; 32]);
            let mut wpa = wpa_with(&[other, lab_key()]);
            handshake(&mut wpa, &pmk, m2_first);
            assert_eq!(wpa.stats().handshakes, 1);
            let plain = b"\xaa\xaa\x03\x00\x00\x00\x08\x00 an IPv4 packet".to_vec();
            let frame = protected_frame(&tk_of(&pmk), 0x0102_0304_0506, &plain);
            assert_eq!(wpa.decrypt(&frame, 26), Ok(plain.clone()));
            assert_eq!(wpa.stats().decrypted, 1);

            let mut bent = frame.clone();
            bent[30] ^= 1;
            assert_eq!(
                wpa.decrypt(&bent, 26),
                Err(NotDecrypted::IntegrityCheckFailed)
            );
            let mut group = frame.clone();
            group[4] = 0xff;
            assert_eq!(wpa.decrypt(&group, 26), Err(NotDecrypted::GroupAddressed));
            let mut wep = frame.clone();
            wep[26 + 3] = 0;
            assert_eq!(wpa.decrypt(&wep, 26), Err(NotDecrypted::NotCcmp));
            assert_eq!(wpa.decrypt(&frame[..40], 26), Err(NotDecrypted::Truncated));
        }
    }

    #[test]
    fn a_wrong_passphrase_a_missing_handshake_and_a_rekeying() {
        let pmk = WlanKeys::new(&[lab_key()]).pmks[0];
        let frame = protected_frame(&tk_of(&pmk), 1, b"x");
        // Keys, but none the network's: the handshake is counted as matching none.
        let mut wrong = wpa_with(&[WlanKey::Psk([7; 32])]);
        assert_eq!(wrong.decrypt(&frame, 26), Err(NotDecrypted::NoKey));
        handshake(&mut wrong, &pmk, false);
        assert_eq!((wrong.stats().handshakes, wrong.stats().wrong_key), (0, 1));
        assert_eq!(wrong.decrypt(&frame, 26), Err(NotDecrypted::NoKey));

        // TKIP's key descriptor: not followed.
        let mut tkip = wpa_with(&[lab_key()]);
        tkip.eapol(AP, STA, &key_frame(M1, &ANONCE, &pmk));
        tkip.eapol(STA, AP, &key_frame((M2 & !7) | 1, &SNONCE, &pmk));
        assert_eq!((tkip.stats().handshakes, tkip.stats().unsupported), (0, 1));

        // A second handshake with another PMK: the new key, the old one kept too.
        let second = WlanKey::Psk([9; 32]);
        let mut wpa = wpa_with(&[lab_key(), second]);
        handshake(&mut wpa, &pmk, false);
        handshake(&mut wpa, &[9; 32], false);
        assert_eq!(wpa.stats().handshakes, 2);
        let new = protected_frame(&tk_of(&[9; 32]), 2, b"y");
        assert_eq!(wpa.decrypt(&new, 26), Ok(b"y".to_vec()));
        assert_eq!(wpa.decrypt(&frame, 26), Ok(b"x".to_vec()));
    }

    #[test]
    fn aes_key_unwrap_as_rfc_3394() {
        // RFC 3394 §4.1: 128 bits of key data with a 128-bit KEK.
        let kek: [u8; 16] = hex("000102030405060708090a0b0c0d0e0f").try_into().unwrap();
        let wrapped = hex("1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5");
        assert_eq!(
            aes_key_unwrap(&kek, &wrapped),
            Some(hex("00112233445566778899aabbccddeeff"))
        );
        let mut bent = wrapped.clone();
        bent[9] ^= 1;
        assert_eq!(aes_key_unwrap(&kek, &bent), None);
        assert_eq!(aes_key_unwrap(&kek, &wrapped[..16]), None);
        assert_eq!(aes_key_unwrap(&kek, &wrapped[..23]), None);
    }

    #[test]
    fn the_gtk_kde_among_other_elements() {
        let rsn = [0x30, 2, 1, 0];
        let gtk = [0xdd, 22, 0x00, 0x0f, 0xac, 1, 2, 0];
        let data = [&rsn[..], &gtk, &[0x77; 16], &[0xdd, 0]].concat();
        assert_eq!(gtk_kde(&data), Some((2, [0x77; 16])));
        // A GTK of another length (TKIP, GCMP-256), a KDE cut short, none at all.
        let long = [&[0xdd, 38, 0x00, 0x0f, 0xac, 1, 1, 0][..], &[0x77; 32]].concat();
        assert_eq!(gtk_kde(&long), None);
        assert_eq!(gtk_kde(&data[..20]), None);
        assert_eq!(gtk_kde(&rsn), None);
    }

    /// An access point's key message with key information `info` carrying the GTK
    /// KDE of `gtk` and `key_id`, wrapped and MIC'd with the keys of `pmk`'s PTK.
    fn gtk_message(pmk: &[u8; 32], info: u16, key_id: u8, gtk: &[u8; 16]) -> Vec<u8> {
        let ptk = ptk(pmk, AP, STA, &ANONCE, &SNONCE);
        let (kck, kek) = (&ptk[..16], &ptk[16..32]);
        let mut plain = [&[0xdd, 22, 0x00, 0x0f, 0xac, 1, key_id, 0][..], gtk].concat();
        plain.extend_from_slice(&[0xdd, 0, 0, 0, 0, 0, 0, 0]);
        let wrapped = wrap(kek.try_into().unwrap(), &plain);
        let mut m = key_frame(info & !KEY_MIC, &ANONCE, pmk);
        m[KEY_DATA_LEN_AT..KEY_DATA_LEN_AT + 2]
            .copy_from_slice(&(wrapped.len() as u16).to_be_bytes());
        m.extend_from_slice(&wrapped);
        let body_len = (m.len() - 4) as u16;
        m[2..4].copy_from_slice(&body_len.to_be_bytes());
        m[5..7].copy_from_slice(&info.to_be_bytes());
        let tag = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, kck),
            &m,
        );
        m[MIC_AT..MIC_AT + 16].copy_from_slice(&tag.as_ref()[..16]);
        m
    }

    /// A broadcast from the AP protected with `gtk` under `key_id`.
    fn group_frame(gtk: &[u8; 16], key_id: u8) -> Vec<u8> {
        let mut group = protected_frame(gtk, 9, b"arp");
        group[1] = 0x42; // From DS, protected
        group[4..10].copy_from_slice(&[0xff; 6]);
        group[10..16].copy_from_slice(&AP);
        group[16..22].copy_from_slice(&STA);
        group[26 + 3] |= key_id << 6;
        reseal(gtk, &group, 9)
    }

    #[test]
    fn message_3_gives_the_group_key_of_group_addressed_frames() {
        let pmk = WlanKeys::new(&[lab_key()]).pmks[0];
        let (gtk, next_gtk) = ([0x47; 16], [0x48; 16]);
        let encrypted = KEY_ACK | KEY_MIC | KEY_ENCRYPTED_DATA | 0x0200 | 2;
        let m3 = gtk_message(&pmk, encrypted | KEY_PAIRWISE | 0x0040, 1, &gtk);
        let group = group_frame(&gtk, 1);

        let mut wpa = wpa_with(&[lab_key()]);
        handshake(&mut wpa, &pmk, false);
        assert_eq!(wpa.decrypt(&group, 26), Err(NotDecrypted::GroupAddressed));
        // A message 3 whose MIC is wrong gives nothing.
        let mut forged = m3.clone();
        forged[MIC_AT] ^= 1;
        wpa.eapol(AP, STA, &forged);
        assert_eq!(wpa.decrypt(&group, 26), Err(NotDecrypted::GroupAddressed));
        wpa.eapol(AP, STA, &m3);
        assert_eq!(wpa.decrypt(&group, 26), Ok(b"arp".to_vec()));

        // A group key handshake (message 1, no pairwise bit) installs key id 2; id 1
        // still opens what it protected.
        wpa.eapol(AP, STA, &gtk_message(&pmk, encrypted, 2, &next_gtk));
        assert_eq!(
            wpa.decrypt(&group_frame(&next_gtk, 2), 26),
            Ok(b"arp".to_vec())
        );
        assert_eq!(wpa.decrypt(&group, 26), Ok(b"arp".to_vec()));
        assert_eq!(wpa.stats().decrypted, 3);
    }

    /// AES key wrap (RFC 3394 §2.2.1), for building messages 3.
    fn wrap(kek: &[u8; 16], plain: &[u8]) -> Vec<u8> {
        use aes::cipher::BlockEncrypt;
        let cipher = Aes128::new_from_slice(kek).unwrap();
        let n = plain.len() / 8;
        let mut a = [0xa6u8; 8];
        let mut r: Vec<[u8; 8]> = plain.chunks(8).map(|c| c.try_into().unwrap()).collect();
        for j in 0..6u64 {
            for i in 1..=n {
                let mut block = [0u8; 16];
                block[..8].copy_from_slice(&a);
                block[8..].copy_from_slice(&r[i - 1]);
                cipher.encrypt_block(GenericArray::from_mut_slice(&mut block));
                let t = (n as u64) * j + i as u64;
                for (x, y) in a.iter_mut().zip(block[..8].iter().zip(t.to_be_bytes())) {
                    *x = y.0 ^ y.1;
                }
                r[i - 1].copy_from_slice(&block[8..]);
            }
        }
        [&a[..], &r.concat()].concat()
    }

    /// `frame` with its addresses changed, protected again under `key` and `pn`
    /// (the AAD and nonce written out as in [`protected_frame`]).
    fn reseal(key: &[u8; 16], frame: &[u8], pn: u64) -> Vec<u8> {
        let header = &frame[..26];
        let ccmp = &frame[26..34];
        let pn = pn.to_be_bytes();
        let mut nonce = vec![header[24] & 0x0f];
        nonce.extend_from_slice(&header[10..16]);
        nonce.extend_from_slice(&pn[2..]);
        let mut aad = vec![header[0] & 0x8f, (header[1] & !0x38 & !0x80) | 0x40];
        aad.extend_from_slice(&header[4..22]);
        aad.extend_from_slice(&[header[22] & 0x0f, 0, header[24] & 0x0f, 0]);
        let cipher = CcmpCipher::new_from_slice(key).unwrap();
        let mut body = b"arp".to_vec();
        let mic = cipher
            .encrypt_in_place_detached(GenericArray::from_slice(&nonce), &aad, &mut body)
            .unwrap();
        [header, ccmp, &body, mic.as_slice()].concat()
    }

    #[test]
    fn a_passphrase_without_ssid_takes_the_one_the_access_point_names() {
        let pmk = WlanKeys::new(&[lab_key()]).pmks[0];
        let any = WlanKey::Passphrase {
            passphrase: "correct horse battery staple".into(),
            ssid: None,
        };
        // No SSID seen for the AP: nothing to derive, the handshake matches no key.
        let mut wpa = wpa_with(std::slice::from_ref(&any));
        handshake(&mut wpa, &pmk, false);
        assert_eq!((wpa.stats().handshakes, wpa.stats().wrong_key), (0, 1));
        // Another network's name, then the AP's own.
        let mut wpa = wpa_with(&[any]);
        wpa.learn_ssid([2, 0, 0, 0, 0, 9], b"lab");
        wpa.learn_ssid(AP, b"other");
        wpa.learn_ssid(AP, b"lab");
        handshake(&mut wpa, &pmk, false);
        assert_eq!(wpa.stats().handshakes, 1);
        let frame = protected_frame(&tk_of(&pmk), 1, b"x");
        assert_eq!(wpa.decrypt(&frame, 26), Ok(b"x".to_vec()));
        assert_eq!(wpa.derived.len(), 1, "derived once, for the AP's SSID");
    }

    #[test]
    fn beyond_the_bound_the_oldest_station_is_forgotten() {
        let pmk = WlanKeys::new(&[lab_key()]).pmks[0];
        let mut wpa = wpa_with(&[lab_key()]);
        handshake(&mut wpa, &pmk, false);
        let m1 = key_frame(M1, &ANONCE, &pmk);
        for i in 0..MAX_STATIONS as u32 {
            let [a, b, c, d] = i.to_be_bytes();
            wpa.eapol(AP, [6, 0, a, b, c, d], &m1);
        }
        assert_eq!(wpa.stations.len(), MAX_STATIONS);
        assert!(!wpa.stations.contains_key(&(AP, STA)), "the first went");
        assert!(wpa.stations.contains_key(&(AP, [6, 0, 0, 0, 0, 1])));
    }

    #[test]
    fn eapol_frames_cut_short_or_of_other_kinds_are_ignored() {
        let pmk = WlanKeys::new(&[lab_key()]).pmks[0];
        let mut wpa = wpa_with(&[lab_key()]);
        let m1 = key_frame(M1, &ANONCE, &pmk);
        for cut in [0, 3, 50, 98] {
            wpa.eapol(AP, STA, &m1[..cut]);
        }
        let mut start = m1.clone();
        start[1] = 1; // EAPOL-Start
        wpa.eapol(AP, STA, &start);
        let mut group = m1.clone();
        group[6] &= !(KEY_PAIRWISE as u8); // a group key handshake
        wpa.eapol(AP, STA, &group);
        assert!(wpa.stations.is_empty());
        assert_eq!(*wpa.stats(), WpaStats::default());
    }

    #[test]
    fn keys_files_as_wireshark_writes_them() {
        let text = "# lab\n\"wpa-pwd\",\"correct horse%3abattery:lab%25net\"\n\n\
                    wpa-psk,f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e\n";
        let keys = parse_keys(text).unwrap();
        assert_eq!(
            keys[0],
            WlanKey::Passphrase {
                passphrase: "correct horse:battery".into(),
                ssid: Some(b"lab%net".to_vec())
            }
        );
        assert_eq!(keys[1], WlanKey::Psk(passphrase_pmk("password", b"IEEE")));
        assert_eq!(format!("{:?}", keys[0]), "wpa-pwd for SSID \"lab%net\"");
        // Without an SSID: the one the capture names.
        let any = parse_keys("\"wpa-pwd\",\"correct horse battery staple\"").unwrap();
        assert_eq!(
            any,
            [WlanKey::Passphrase {
                passphrase: "correct horse battery staple".into(),
                ssid: None
            }]
        );
        assert_eq!(
            format!("{:?}", any[0]),
            "wpa-pwd for the SSIDs the capture names"
        );
        for (bad, want) in [
            (
                "\"wpa-pwd\",\"long enough:\"",
                "line 1: an SSID has 1 to 32 bytes, this one 0",
            ),
            ("\"wpa-pwd\",\"short:lab\"", "8 to 63 characters"),
            (
                "\"wep\",\"0102030405\"",
                "key type \"wep\" is not supported",
            ),
            ("\"wpa-psk\",\"abcd\"", "64 hexadecimal digits"),
            ("\"wpa-pwd\",\"long enough%zz:x\"", "% needs two hex digits"),
            ("justoneword", "expected \"TYPE\",\"KEY\""),
        ] {
            let e = parse_keys(bad).unwrap_err().to_string();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }
}
