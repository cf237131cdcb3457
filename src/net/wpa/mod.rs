//! WPA2- and WPA3-Personal decryption of 802.11 captures, and WPA1's: a lab
//! network's passphrase (or PMK) and the 4-way handshakes in the capture give each
//! station's pairwise key, which opens its CCMP- or TKIP-protected unicast frames, as
//! Wireshark's 802.11 keys do.
//!
//! - [`keys`] reads Wireshark's 802.11 keys file (`80211_keys`), or the PMKs and TKs
//!   of a hostapd or wpa_supplicant debug log (`debug_log`), and [`WlanKeys`]
//!   derives each key's PMK once (PBKDF2-HMAC-SHA1, 4096 rounds); a passphrase given
//!   without an SSID is derived, per capture, with the SSID each access point names
//!   ([`Wpa::learn_ssid`]).
//! - [`Wpa`] follows EAPOL-Key messages (IEEE 802.11-2020 §12.7.6) per access point
//!   and station: the ANonce of message 1 or 3 and the SNonce of message 2 give the
//!   PTK, by PRF-SHA1 for PSK (WPA2, and WPA1 with TKIP) or KDF-SHA256 for PSK-SHA256
//!   (802.11w) and SAE (WPA3) ([`eapol`]); the key whose PTK makes message 2's MIC
//!   right is the network's, so a wrong passphrase is noticed, not used. A later
//!   handshake (rekeying) replaces the key, the previous one kept for frames still in
//!   flight.
//! - The group key (GTK) comes from message 3, or from a group key handshake, whose
//!   key data is unwrapped (AES key wrap, RFC 3394; RC4 for TKIP's key descriptor)
//!   with the station's KEK once the frame's MIC proves it the access point's;
//!   group-addressed frames are opened with it by key id. A WPA/WPA2 mixed-mode
//!   network's GTK is TKIP's whatever the station's pairwise cipher.
//! - Temporal keys given as such (`tk`) open the frames no handshake does.
//! - [`Wpa::decrypt`] opens CCMP-128 ([`ccmp`], §12.5.3: the 8-byte MIC checked) and
//!   TKIP ([`tkip`], §12.5.2: the ICV and the Michael MIC checked), told apart by the
//!   cipher header, and WEP frames (no extended IV) with the WEP keys given ([`wep`]).
//!
//! Not decrypted (the frames stay `wlan-protected`): WEP without its key, GCMP and
//! CCMP-256, fast BSS transition, OWE and the SHA-384 AKMs, and stations (or, for
//! group-addressed frames, access points) whose handshake the capture does not hold. An SAE handshake
//! needs its PMK (`wpa-psk`): the passphrase alone does not give it.

mod ccmp;
mod debug_log;
mod eapol;
pub mod keys;
pub mod tkip;
mod wep;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::net::wlan::{self, DataHeader};
use eapol::{KeyFrame, KeyHierarchy, Ptk, KEY_ACK, KEY_MIC, KEY_PAIRWISE};
pub use keys::{
    parse_keys, passphrase_pmk, KeysError, KeysFile, KeysFormat, KeysReader, WlanKey, WlanKeys,
};

/// Ethertype of EAPOL (802.1X), which carries the 4-way handshake.
pub const ETHERTYPE_EAPOL: u16 = 0x888e;
/// Access point and station pairs followed at once; beyond, the oldest is forgotten.
pub const MAX_STATIONS: usize = 4096;
/// The largest EAPOL-Key frame kept while its handshake is incomplete.
const MAX_KEY_FRAME: usize = 2048;

type Mac = [u8; 6];

/// PMKs derived from passphrases given without an SSID, at most, per capture: each
/// costs a PBKDF2 of 4 096 rounds, and a capture chooses the SSIDs.
pub const MAX_DERIVED_PMKS: usize = 64;

/// A temporal key: what opens a station's unicast frames (from its PTK) or an access
/// point's group-addressed ones (its GTK).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum TemporalKey {
    /// CCMP-128's AES key.
    Ccmp([u8; 16]),
    /// TKIP's key, then the Michael keys of MSDUs from the authenticator (the access
    /// point) and to it, as the PTK and the GTK hold them (§12.7.1.3, §12.7.1.4).
    Tkip([u8; 32]),
}

impl TemporalKey {
    /// A key by its length: CCMP-128's 16 bytes, TKIP's 32. (CCMP-256 and GCMP-256
    /// keys, also 32 bytes, are not told apart: taken for TKIP's, they open no frame,
    /// their frames not being TKIP's.)
    pub fn of_bytes(bytes: &[u8]) -> Option<Self> {
        match bytes.len() {
            16 => bytes.try_into().ok().map(TemporalKey::Ccmp),
            32 => bytes.try_into().ok().map(TemporalKey::Tkip),
            _ => None,
        }
    }
}

impl fmt::Debug for TemporalKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key itself.
        f.write_str(match self {
            TemporalKey::Ccmp(_) => "CCMP-128 key",
            TemporalKey::Tkip(_) => "TKIP key",
        })
    }
}

/// What a [`Wpa`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WpaStats {
    /// 4-way handshakes that gave a pairwise key.
    pub handshakes: u64,
    /// Handshakes whose MIC no key's PTK made right: a wrong passphrase or SSID, or
    /// an SAE handshake whose PMK was not given.
    pub wrong_key: u64,
    /// Of those, SAE (WPA3) handshakes.
    pub wrong_key_sae: u64,
    /// Handshakes of a kind not followed (fast BSS transition, OWE, SHA-384).
    pub unsupported: u64,
    /// Frames decrypted …
    pub decrypted: u64,
    /// … of which WEP frames.
    pub wep_decrypted: u64,
    /// TKIP frames whose key was found (their ICV came out) but whose Michael MIC
    /// was wrong: forged or damaged, not read.
    pub michael_failures: u64,
}

/// Why a protected frame was not decrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotDecrypted {
    /// No extended IV: WEP, and no WEP key was given.
    Wep,
    /// Sent to a group address by an access point whose group key was not seen.
    GroupAddressed,
    /// No 4-way handshake of this station with a key that fits was seen before it.
    NoKey,
    /// The station's key does not open it (a frame of another association).
    IntegrityCheckFailed,
    /// A TKIP frame whose key was found but whose Michael MIC is wrong.
    MichaelFailure,
    /// Too short for its cipher's header and MIC.
    Truncated,
}

impl fmt::Display for NotDecrypted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NotDecrypted::Wep => {
                "802.11 protected frame that is WEP (no extended IV), and no WEP key was given"
            }
            NotDecrypted::GroupAddressed => {
                "802.11 protected group-addressed frame of an access point whose group key was not seen (message 3 of a handshake with a given key)"
            }
            NotDecrypted::NoKey => {
                "802.11 protected frame of a station whose 4-way handshake with a given key is not in the capture"
            }
            NotDecrypted::IntegrityCheckFailed => {
                "802.11 protected frame that the station's key does not open (CCMP MIC, TKIP or WEP ICV)"
            }
            NotDecrypted::MichaelFailure => {
                "802.11 TKIP frame whose Michael MIC is wrong under the key that decrypts it (forged or damaged)"
            }
            NotDecrypted::Truncated => "802.11 protected frame too short for its cipher",
        })
    }
}

/// Message 2 of a 4-way handshake, kept until the ANonce is known too.
struct Message2 {
    snonce: [u8; 32],
    /// The frame with its MIC zeroed, and the MIC: each PMK's KCK is tried on it.
    zeroed: Vec<u8>,
    mic: [u8; 16],
    hierarchy: KeyHierarchy,
    sae: bool,
}

/// A handshake in progress, and the keys it gave, of one access point and station.
#[derive(Default)]
struct Station {
    /// When it was first seen, in EAPOL frames followed: the oldest goes first.
    since: u64,
    anonce: Option<[u8; 32]>,
    message_2: Option<Message2>,
    /// The last PTK, with the hierarchy of its MICs (for the access point's later
    /// messages), and the TK before it.
    ptk: Option<(KeyHierarchy, Ptk)>,
    previous_tk: Option<TemporalKey>,
}

/// Decryption state of one capture: the keys, and per access point and station
/// (authenticator and supplicant address) the handshake and pairwise key.
pub struct Wpa {
    keys: Arc<WlanKeys>,
    stations: BTreeMap<(Mac, Mac), Station>,
    /// Group keys by access point and key id (at most [`MAX_STATIONS`]; beyond, the
    /// lowest access point address goes).
    groups: BTreeMap<(Mac, u8), TemporalKey>,
    /// The SSID each access point names (as many; the same rule).
    ssids: BTreeMap<Mac, Vec<u8>>,
    /// PMKs of the SSID-less passphrases (by their index) with SSIDs seen.
    derived: BTreeMap<(usize, Vec<u8>), [u8; 32]>,
    /// EAPOL-Key frames followed so far.
    followed: u64,
    stats: WpaStats,
}

/// A protected data frame: what the ciphers need of its MAC header, and its body.
pub(super) struct Mpdu<'a> {
    fc0: u8,
    flags: u8,
    a1: Mac,
    a2: Mac,
    a3: Mac,
    /// In four-address frames.
    a4: Option<Mac>,
    sequence_control: [u8; 2],
    /// The first byte of the QoS control field, in QoS data frames.
    qos: Option<u8>,
    /// From the cipher header (CCMP header or TKIP IV) on.
    body: &'a [u8],
}

impl<'a> Mpdu<'a> {
    fn parse(frame: &'a [u8], body_at: usize) -> Result<Self, NotDecrypted> {
        let (Some(&fc0), Some(&flags), Some(header)) =
            (frame.first(), frame.get(1), frame.get(..24))
        else {
            return Err(NotDecrypted::Truncated);
        };
        let layout = DataHeader::of(fc0, flags);
        let body = frame.get(body_at..).ok_or(NotDecrypted::Truncated)?;
        if frame.len() < layout.len || body.len() < 4 {
            return Err(NotDecrypted::Truncated);
        }
        let mac_at = |at: usize| -> Mac { header[at..at + 6].try_into().unwrap_or([0; 6]) };
        let a4 = layout
            .four_addresses
            .then(|| frame.get(24..30).and_then(|a4| a4.try_into().ok()))
            .flatten();
        Ok(Mpdu {
            fc0,
            flags,
            a1: mac_at(4),
            a2: mac_at(10),
            a3: mac_at(16),
            a4,
            sequence_control: [header[22], header[23]],
            qos: layout.qos_at.and_then(|at| frame.get(at)).copied(),
            body,
        })
    }

    /// The key id of the cipher header.
    fn key_id(&self) -> u8 {
        self.body[3] >> 6
    }
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
        let Some(key) = KeyFrame::parse(frame) else {
            return;
        };
        let pair = if key.info & KEY_ACK != 0 {
            (src, dst)
        } else {
            (dst, src)
        };
        if key.info & KEY_PAIRWISE != 0 {
            self.pairwise_message(pair, &key);
        }
        if key.carries_group_key() {
            self.group_key(pair, &key);
        }
    }

    /// A message of the 4-way handshake.
    fn pairwise_message(&mut self, pair: (Mac, Mac), key: &KeyFrame<'_>) {
        let nonce = key.nonce();
        match (key.info & KEY_ACK != 0, key.info & KEY_MIC != 0) {
            // Messages 1 and 3 carry the ANonce.
            (true, _) => self.station(pair).anonce = Some(nonce),
            // Message 2 (message 4 has a zero nonce).
            (false, true) if nonce != [0; 32] => {
                let akm = eapol::akm(key);
                let Some(hierarchy) = KeyHierarchy::of(key.version(), akm) else {
                    self.stats.unsupported += 1;
                    return;
                };
                if key.bytes().len() > MAX_KEY_FRAME {
                    return;
                }
                self.station(pair).message_2 = Some(Message2 {
                    snonce: nonce,
                    zeroed: key.with_zero_mic(),
                    mic: key.mic(),
                    hierarchy,
                    sae: akm == Some(eapol::AKM_SAE),
                });
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
        let (Some(anonce), Some(message_2)) = (station.anonce, station.message_2.take()) else {
            return;
        };
        let hierarchy = message_2.hierarchy;
        let found = pmks.iter().find_map(|pmk| {
            let ptk = hierarchy.ptk(pmk, aa, spa, &anonce, &message_2.snonce);
            (hierarchy.mic(&ptk.kck, &message_2.zeroed) == message_2.mic).then_some(ptk)
        });
        let Some(ptk) = found else {
            self.stats.wrong_key += 1;
            self.stats.wrong_key_sae += u64::from(message_2.sae);
            return;
        };
        let last = station.ptk.replace((hierarchy, ptk));
        if let Some((_, last)) = last.filter(|(_, last)| last.tk != ptk.tk) {
            station.previous_tk = Some(last.tk);
        }
        self.stats.handshakes += 1;
    }

    /// Takes the GTK out of the key data of an access point's message whose MIC the
    /// station's KCK makes right.
    fn group_key(&mut self, (aa, spa): (Mac, Mac), key: &KeyFrame<'_>) {
        let Some((hierarchy, ptk)) = self.stations.get(&(aa, spa)).and_then(|s| s.ptk) else {
            return;
        };
        if !hierarchy.mic_is_right(&ptk.kck, key) {
            return;
        }
        if let Some((id, gtk)) = hierarchy.group_key(&ptk.kek, key) {
            if self.groups.len() >= MAX_STATIONS && !self.groups.contains_key(&(aa, id)) {
                self.groups.pop_first();
            }
            self.groups.insert((aa, id), gtk);
        }
    }

    /// The keys the capture's handshakes gave for `mpdu` (the station's last two
    /// pairwise keys, or the access point's group key of its key id), and why there
    /// are none.
    fn handshake_keys(&self, mpdu: &Mpdu<'_>) -> ([Option<TemporalKey>; 2], NotDecrypted) {
        if mpdu.a1[0] & 1 != 0 {
            // Sent by the access point (A2) with its group key of the frame's key id.
            let gtk = self.groups.get(&(mpdu.a2, mpdu.key_id())).copied();
            return ([gtk, None], NotDecrypted::GroupAddressed);
        }
        let station = [(mpdu.a1, mpdu.a2), (mpdu.a2, mpdu.a1)]
            .iter()
            .filter_map(|pair| self.stations.get(pair))
            .find(|s| s.ptk.is_some());
        let tks = station.map_or([None, None], |s| {
            [s.ptk.map(|(_, ptk)| ptk.tk), s.previous_tk]
        });
        (tks, NotDecrypted::NoKey)
    }

    /// Decrypts the protected data frame `frame` (header included, no FCS) whose
    /// cipher header starts at `body_at`: the plaintext body (LLC/SNAP and on).
    pub fn decrypt(&mut self, frame: &[u8], body_at: usize) -> Result<Vec<u8>, NotDecrypted> {
        let mpdu = Mpdu::parse(frame, body_at)?;
        // The extended IV bit: CCMP and TKIP have it, WEP not.
        if mpdu.body[3] & 0x20 == 0 {
            return self.open_wep(&mpdu);
        }
        let is_tkip = tkip::is_tkip(mpdu.body);
        let of_cipher = |key: &&TemporalKey| matches!(key, TemporalKey::Tkip(_)) == is_tkip;
        let (own, missing) = self.handshake_keys(&mpdu);
        let own_keys = own.iter().flatten().filter(of_cipher).count();
        let mut keys = own
            .iter()
            .flatten()
            .chain(&self.keys.tks)
            .filter(of_cipher)
            .peekable();
        if keys.peek().is_none() {
            return Err(missing);
        }
        let opened = if is_tkip {
            open_tkip(&mpdu, keys)
        } else {
            open_ccmp(&mpdu, keys)
        };
        match opened {
            Ok(plain) => {
                self.stats.decrypted += 1;
                Ok(plain)
            }
            Err(NotDecrypted::MichaelFailure) => {
                self.stats.michael_failures += 1;
                Err(NotDecrypted::MichaelFailure)
            }
            // Only given keys were tried: the reason is still that none of the
            // capture's handshakes gave one.
            Err(NotDecrypted::IntegrityCheckFailed) if own_keys == 0 => Err(missing),
            Err(e) => Err(e),
        }
    }

    /// Opens a WEP frame with the first WEP key given whose ICV comes out.
    fn open_wep(&mut self, mpdu: &Mpdu<'_>) -> Result<Vec<u8>, NotDecrypted> {
        if self.keys.weps.is_empty() {
            return Err(NotDecrypted::Wep);
        }
        let plain = self
            .keys
            .weps
            .iter()
            .find_map(|key| wep::open(mpdu.body, key))
            .ok_or(NotDecrypted::IntegrityCheckFailed)?;
        self.stats.decrypted += 1;
        self.stats.wep_decrypted += 1;
        Ok(plain)
    }
}

/// Opens a CCMP frame with the first of `keys` that makes its MIC right.
fn open_ccmp<'k>(
    mpdu: &Mpdu<'_>,
    mut keys: impl Iterator<Item = &'k TemporalKey>,
) -> Result<Vec<u8>, NotDecrypted> {
    let frame = ccmp::Frame::new(mpdu).ok_or(NotDecrypted::Truncated)?;
    keys.find_map(|key| match key {
        TemporalKey::Ccmp(tk) => frame.open(tk),
        TemporalKey::Tkip(_) => None,
    })
    .ok_or(NotDecrypted::IntegrityCheckFailed)
}

/// Opens a TKIP frame with the first of `keys` whose ICV and Michael MIC come out.
fn open_tkip<'k>(
    mpdu: &Mpdu<'_>,
    keys: impl Iterator<Item = &'k TemporalKey>,
) -> Result<Vec<u8>, NotDecrypted> {
    if mpdu.body.len() < tkip::IV_LEN + tkip::TRAILER_LEN {
        return Err(NotDecrypted::Truncated);
    }
    let addresses = [mpdu.a1, mpdu.a2, mpdu.a3];
    let (da, sa) = wlan::destination_and_source(mpdu.flags, addresses, mpdu.a4);
    let priority = mpdu.qos.unwrap_or(0) & 0x0f;
    let from_ap = wlan::from_access_point(mpdu.flags);
    let frame = tkip::Frame::new(mpdu.body, mpdu.a2, da, sa, priority, from_ap);
    let mut failure = NotDecrypted::IntegrityCheckFailed;
    for key in keys {
        let TemporalKey::Tkip(key) = key else {
            continue;
        };
        match frame.open(key) {
            Ok(plain) => return Ok(plain),
            Err(tkip::Failure::Michael) => failure = NotDecrypted::MichaelFailure,
            Err(tkip::Failure::Icv) => {}
        }
    }
    Err(failure)
}

#[cfg(test)]
mod tests {
    use super::eapol::tests::rsn_element;
    use super::eapol::{
        DESCRIPTOR_RSN, EAPOL_KEY, KEY_DATA_AT, KEY_DATA_LEN_AT, KEY_ENCRYPTED_DATA, MIC_AT,
    };
    use super::*;
    use aes::Aes128;
    use ccm::aead::generic_array::GenericArray;
    use ccm::aead::{AeadInPlace, KeyInit};

    const AP: Mac = [2, 0, 0, 0, 0x5a, 1];
    const STA: Mac = [2, 0, 0, 0xaa, 0xcc, 7];
    const ANONCE: [u8; 32] = [0xa1; 32];
    const SNONCE: [u8; 32] = [0x5b; 32];

    /// Key descriptor versions: TKIP (HMAC-MD5), WPA2 (HMAC-SHA1), PSK-SHA256 (CMAC),
    /// SAE (the AKM's).
    const TKIP: u16 = 1;
    const WPA2: u16 = 2;
    const SHA256: u16 = 3;
    const SAE: u16 = 0;

    fn hierarchy(version: u16) -> KeyHierarchy {
        match version {
            TKIP => KeyHierarchy::Tkip,
            WPA2 => KeyHierarchy::Sha1,
            _ => KeyHierarchy::Sha256,
        }
    }

    fn ptk_of(pmk: &[u8; 32], version: u16) -> Ptk {
        hierarchy(version).ptk(pmk, AP, STA, &ANONCE, &SNONCE)
    }

    fn tk_of(pmk: &[u8; 32]) -> [u8; 16] {
        ccmp_key(ptk_of(pmk, WPA2).tk)
    }

    fn ccmp_key(key: TemporalKey) -> [u8; 16] {
        match key {
            TemporalKey::Ccmp(tk) => tk,
            TemporalKey::Tkip(_) => panic!("a TKIP key"),
        }
    }

    /// An EAPOL-Key frame with key information `info`, `nonce` and `key_data`, its
    /// MIC made with the KCK of `pmk` (by the hierarchy of the descriptor version in
    /// `info`) when the MIC bit is set.
    fn key_frame(info: u16, nonce: &[u8; 32], pmk: &[u8; 32], key_data: &[u8]) -> Vec<u8> {
        eapol_key(DESCRIPTOR_RSN, info, 16, nonce, pmk, key_data)
    }

    /// An EAPOL-Key frame of descriptor type `descriptor` and key length `key_len`,
    /// with the Key IV of [`KEY_IV`].
    fn eapol_key(
        descriptor: u8,
        info: u16,
        key_len: u16,
        nonce: &[u8; 32],
        pmk: &[u8; 32],
        key_data: &[u8],
    ) -> Vec<u8> {
        let mut f = vec![2, EAPOL_KEY, 0, 0, descriptor];
        f.extend_from_slice(&info.to_be_bytes());
        f.extend_from_slice(&key_len.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
        f.extend_from_slice(nonce);
        f.extend_from_slice(&KEY_IV);
        f.resize(KEY_DATA_LEN_AT, 0);
        f.extend_from_slice(&(key_data.len() as u16).to_be_bytes());
        f.extend_from_slice(key_data);
        let len = (f.len() - 4) as u16;
        f[2..4].copy_from_slice(&len.to_be_bytes());
        if info & KEY_MIC != 0 {
            let version = info & 7;
            let mic = hierarchy(version).mic(&ptk_of(pmk, version).kck, &f);
            f[MIC_AT..MIC_AT + 16].copy_from_slice(&mic);
        }
        f
    }

    const M1: u16 = KEY_PAIRWISE | KEY_ACK;
    const M2: u16 = KEY_PAIRWISE | KEY_MIC;

    fn wpa_with(keys: &[WlanKey]) -> Wpa {
        Wpa::new(Arc::new(WlanKeys::new(keys)))
    }

    fn lab_key() -> WlanKey {
        WlanKey::Passphrase {
            passphrase: "correct horse battery staple".into(),
            ssid: Some(b"lab".to_vec()),
        }
    }

    fn lab_pmk() -> [u8; 32] {
        passphrase_pmk("correct horse battery staple", b"lab")
    }

    /// A 4-way handshake of key descriptor `version`: message 2 carries the RSN
    /// element of the AKM that goes with it.
    fn handshake_of(wpa: &mut Wpa, pmk: &[u8; 32], version: u16, m2_first: bool) {
        let akm = match version {
            TKIP | WPA2 => 2,
            SHA256 => 6,
            _ => 8,
        };
        let m1 = key_frame(M1 | version, &ANONCE, pmk, &[]);
        let m2 = key_frame(M2 | version, &SNONCE, pmk, &rsn_element(&[akm]));
        if m2_first {
            wpa.eapol(STA, AP, &m2);
            wpa.eapol(AP, STA, &m1);
        } else {
            wpa.eapol(AP, STA, &m1);
            wpa.eapol(STA, AP, &m2);
        }
        // Message 4: no nonce, nothing to learn.
        wpa.eapol(
            STA,
            AP,
            &key_frame(M2 | version | 0x0200, &[0; 32], pmk, &[]),
        );
    }

    fn handshake(wpa: &mut Wpa, pmk: &[u8; 32], m2_first: bool) {
        handshake_of(wpa, pmk, WPA2, m2_first)
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
        let cipher = ccmp::Cipher::new_from_slice(tk).unwrap();
        let mut body = plain.to_vec();
        let mic = cipher
            .encrypt_in_place_detached(GenericArray::from_slice(&nonce), &aad, &mut body)
            .unwrap();
        [&header[..], &ccmp, &body, mic.as_slice()].concat()
    }

    #[test]
    fn a_handshake_gives_the_key_that_opens_the_stations_frames() {
        let pmk = lab_pmk();
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
            assert_eq!(wpa.decrypt(&wep, 26), Err(NotDecrypted::Wep));
            assert_eq!(wpa.decrypt(&frame[..40], 26), Err(NotDecrypted::Truncated));
        }
    }

    #[test]
    fn psk_sha256_and_sae_handshakes_derive_with_sha256_and_cmac() {
        let pmk = lab_pmk();
        let sae_pmk = [0x5a; 32];
        for (version, pmk) in [(SHA256, pmk), (SAE, sae_pmk)] {
            let mut wpa = wpa_with(&[lab_key(), WlanKey::Psk(sae_pmk)]);
            handshake_of(&mut wpa, &pmk, version, false);
            assert_eq!(wpa.stats().handshakes, 1, "version {version}");
            let tk = ccmp_key(ptk_of(&pmk, version).tk);
            assert_ne!(tk, tk_of(&pmk), "not the SHA-1 hierarchy's");
            let frame = protected_frame(&tk, 1, b"x");
            assert_eq!(wpa.decrypt(&frame, 26), Ok(b"x".to_vec()));
        }
        // An SAE handshake with only the passphrase: counted apart, as its PMK is
        // missing rather than wrong.
        let mut wpa = wpa_with(&[lab_key()]);
        handshake_of(&mut wpa, &sae_pmk, SAE, false);
        let stats = wpa.stats();
        assert_eq!(
            (stats.handshakes, stats.wrong_key, stats.wrong_key_sae),
            (0, 1, 1)
        );
        // A version 3 message 2 whose MIC is HMAC-SHA1's does not pass.
        let mut wpa = wpa_with(&[lab_key()]);
        let m2 = key_frame(M2 | WPA2, &SNONCE, &pmk, &rsn_element(&[6]));
        let mut m2 = m2.clone();
        m2[6] = (m2[6] & !7) | SHA256 as u8;
        wpa.eapol(AP, STA, &key_frame(M1 | SHA256, &ANONCE, &pmk, &[]));
        wpa.eapol(STA, AP, &m2);
        assert_eq!((wpa.stats().handshakes, wpa.stats().wrong_key), (0, 1));
    }

    #[test]
    fn a_wrong_passphrase_a_missing_handshake_and_a_rekeying() {
        let pmk = lab_pmk();
        let frame = protected_frame(&tk_of(&pmk), 1, b"x");
        // Keys, but none the network's: the handshake is counted as matching none.
        let mut wrong = wpa_with(&[WlanKey::Psk([7; 32])]);
        assert_eq!(wrong.decrypt(&frame, 26), Err(NotDecrypted::NoKey));
        handshake(&mut wrong, &pmk, false);
        let stats = wrong.stats();
        assert_eq!(
            (stats.handshakes, stats.wrong_key, stats.wrong_key_sae),
            (0, 1, 0)
        );
        assert_eq!(wrong.decrypt(&frame, 26), Err(NotDecrypted::NoKey));

        // FT-PSK: not followed.
        let mut ft = wpa_with(&[lab_key()]);
        ft.eapol(AP, STA, &key_frame(M1 | SHA256, &ANONCE, &pmk, &[]));
        ft.eapol(
            STA,
            AP,
            &key_frame(M2 | SHA256, &SNONCE, &pmk, &rsn_element(&[4])),
        );
        assert_eq!((ft.stats().handshakes, ft.stats().unsupported), (0, 1));

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
    fn temporal_keys_open_frames_without_a_handshake() {
        let tk = [0x3c; 16];
        let frame = protected_frame(&tk, 1, b"x");
        let given = |tk| WlanKey::Tk(TemporalKey::Ccmp(tk));
        let mut wpa = wpa_with(&[given([1; 16]), given(tk)]);
        assert_eq!(wpa.decrypt(&frame, 26), Ok(b"x".to_vec()));
        // None fits: the frame's reason stays that no handshake was seen.
        let other = protected_frame(&[0x3d; 16], 1, b"x");
        assert_eq!(wpa.decrypt(&other, 26), Err(NotDecrypted::NoKey));
        // After a handshake whose key does not open it, the given TKs still may.
        let mut wpa = wpa_with(&[lab_key(), given(tk)]);
        handshake(&mut wpa, &lab_pmk(), false);
        assert_eq!(wpa.decrypt(&frame, 26), Ok(b"x".to_vec()));
        assert_eq!(
            wpa.decrypt(&other, 26),
            Err(NotDecrypted::IntegrityCheckFailed)
        );
        assert_eq!(wpa.stats().decrypted, 1);
    }

    /// An access point's key message with key information `info` carrying the GTK
    /// KDE of `gtk` and `key_id`, wrapped and MIC'd with the keys of `pmk`'s PTK.
    fn gtk_message(pmk: &[u8; 32], info: u16, key_id: u8, gtk: &[u8; 16]) -> Vec<u8> {
        let ptk = ptk_of(pmk, info & 7);
        let mut plain = [&[0xdd, 22, 0x00, 0x0f, 0xac, 1, key_id, 0][..], gtk].concat();
        plain.extend_from_slice(&[0xdd, 0, 0, 0, 0, 0, 0, 0]);
        key_frame(info, &ANONCE, pmk, &wrap(&ptk.kek, &plain))
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
        for (version, pmk) in [(WPA2, lab_pmk()), (SAE, [0x5a; 32])] {
            let (gtk, next_gtk) = ([0x47; 16], [0x48; 16]);
            let encrypted = KEY_ACK | KEY_MIC | KEY_ENCRYPTED_DATA | 0x0200 | version;
            let m3 = gtk_message(&pmk, encrypted | KEY_PAIRWISE | 0x0040, 1, &gtk);
            let group = group_frame(&gtk, 1);

            let mut wpa = wpa_with(&[lab_key(), WlanKey::Psk([0x5a; 32])]);
            handshake_of(&mut wpa, &pmk, version, false);
            assert_eq!(wpa.decrypt(&group, 26), Err(NotDecrypted::GroupAddressed));
            // A message 3 whose MIC is wrong gives nothing.
            let mut forged = m3.clone();
            forged[MIC_AT] ^= 1;
            wpa.eapol(AP, STA, &forged);
            assert_eq!(wpa.decrypt(&group, 26), Err(NotDecrypted::GroupAddressed));
            wpa.eapol(AP, STA, &m3);
            assert_eq!(wpa.decrypt(&group, 26), Ok(b"arp".to_vec()));

            // A group key handshake (message 1, no pairwise bit) installs key id 2;
            // id 1 still opens what it protected.
            wpa.eapol(AP, STA, &gtk_message(&pmk, encrypted, 2, &next_gtk));
            assert_eq!(
                wpa.decrypt(&group_frame(&next_gtk, 2), 26),
                Ok(b"arp".to_vec())
            );
            assert_eq!(wpa.decrypt(&group, 26), Ok(b"arp".to_vec()));
            assert_eq!(wpa.stats().decrypted, 3);
        }
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
        let cipher = ccmp::Cipher::new_from_slice(key).unwrap();
        let mut body = b"arp".to_vec();
        let mic = cipher
            .encrypt_in_place_detached(GenericArray::from_slice(&nonce), &aad, &mut body)
            .unwrap();
        [header, ccmp, &body, mic.as_slice()].concat()
    }

    #[test]
    fn a_passphrase_without_ssid_takes_the_one_the_access_point_names() {
        let pmk = lab_pmk();
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
        let pmk = lab_pmk();
        let mut wpa = wpa_with(&[lab_key()]);
        handshake(&mut wpa, &pmk, false);
        let m1 = key_frame(M1 | WPA2, &ANONCE, &pmk, &[]);
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
        let pmk = lab_pmk();
        let mut wpa = wpa_with(&[lab_key()]);
        let m1 = key_frame(M1 | WPA2, &ANONCE, &pmk, &[]);
        for cut in [0, 3, 50, KEY_DATA_AT - 1] {
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
        // Key data longer than the frame: cut to it, and a message 2 too long to keep.
        let mut long = key_frame(M2 | WPA2, &SNONCE, &pmk, &[0xdd; 8]);
        long[KEY_DATA_LEN_AT] = 0xff;
        wpa.eapol(STA, AP, &long);
        let huge = key_frame(M2 | WPA2, &SNONCE, &pmk, &[0xdd; MAX_KEY_FRAME]);
        wpa.eapol(STA, AP, &huge);
        let kept = wpa.stations.values().filter_map(|s| s.message_2.as_ref());
        assert_eq!(
            kept.map(|m| m.zeroed.len()).collect::<Vec<_>>(),
            [long.len()]
        );
    }

    const KEY_IV: [u8; 16] = [0x1f; 16];
    /// WPA1's key descriptor type.
    const WPA1: u8 = eapol::DESCRIPTOR_WPA;
    /// The WPA element of a WPA1 station's message 2: TKIP, PSK.
    const WPA_ELEMENT: [u8; 24] = [
        0xdd, 22, 0x00, 0x50, 0xf2, 1, 1, 0, 0x00, 0x50, 0xf2, 2, 1, 0, 0x00, 0x50, 0xf2, 2, 1, 0,
        0x00, 0x50, 0xf2, 2,
    ];

    fn tkip_key(pmk: &[u8; 32]) -> [u8; 32] {
        match ptk_of(pmk, TKIP).tk {
            TemporalKey::Tkip(key) => key,
            TemporalKey::Ccmp(_) => panic!("a CCMP key"),
        }
    }

    /// A WPA1 4-way handshake's messages 1 and 2 (TKIP, HMAC-MD5 MICs).
    fn wpa1_handshake(wpa: &mut Wpa, pmk: &[u8; 32]) {
        wpa.eapol(AP, STA, &eapol_key(WPA1, M1 | TKIP, 32, &ANONCE, pmk, &[]));
        let m2 = eapol_key(WPA1, M2 | TKIP, 32, &SNONCE, pmk, &WPA_ELEMENT);
        wpa.eapol(STA, AP, &m2);
    }

    /// A QoS data frame (TID 6) holding `msdu`, TKIP-protected with `key` under
    /// `key_id`: from the station to the AP, or from the AP to `to` (a station or a
    /// group address).
    fn tkip_frame(key: &[u8; 32], key_id: u8, from_ap: Option<Mac>, msdu: &[u8]) -> Vec<u8> {
        const ROUTER: Mac = [2, 0, 0, 0, 0x5a, 0xfe];
        let (flags, a1, a2, a3, da, sa) = match from_ap {
            None => (0x41, AP, STA, ROUTER, ROUTER, STA),
            Some(to) => (0x42, to, AP, ROUTER, to, ROUTER),
        };
        let mut header = vec![0x88, flags, 0x2c, 0];
        for address in [a1, a2, a3] {
            header.extend_from_slice(&address);
        }
        header.extend_from_slice(&[0x10, 0x00, 0x06, 0x00]);
        let body = tkip::seal(key, key_id, 7, a2, (da, sa, 6), from_ap.is_some(), msdu);
        [header, body].concat()
    }

    #[test]
    fn a_wpa1_handshake_gives_the_tkip_key_of_the_stations_frames() {
        let pmk = lab_pmk();
        let key = tkip_key(&pmk);
        let msdu = b"\xaa\xaa\x03\x00\x00\x00\x08\x00 an IPv4 packet".to_vec();
        let up = tkip_frame(&key, 0, None, &msdu);
        let down = tkip_frame(&key, 0, Some(STA), &msdu);
        let mut wpa = wpa_with(&[WlanKey::Psk([7; 32]), lab_key()]);
        assert_eq!(wpa.decrypt(&up, 26), Err(NotDecrypted::NoKey));
        wpa1_handshake(&mut wpa, &pmk);
        assert_eq!(wpa.stats().handshakes, 1);
        assert_eq!(wpa.decrypt(&up, 26), Ok(msdu.clone()));
        assert_eq!(wpa.decrypt(&down, 26), Ok(msdu.clone()));

        // Another key's frame: its ICV does not come out.
        let mut stranger = key;
        stranger[3] ^= 1;
        let other = tkip_frame(&stranger, 0, None, &msdu);
        assert_eq!(
            wpa.decrypt(&other, 26),
            Err(NotDecrypted::IntegrityCheckFailed)
        );
        // The station's key with the other direction's Michael key: the ICV is right,
        // the MIC not: a forgery, counted.
        let mut swapped = key;
        swapped[16..].rotate_left(8);
        let forged = tkip_frame(&swapped, 0, None, &msdu);
        assert_eq!(wpa.decrypt(&forged, 26), Err(NotDecrypted::MichaelFailure));
        // Cut inside the MIC and ICV.
        assert_eq!(
            wpa.decrypt(&up[..26 + 8 + 11], 26),
            Err(NotDecrypted::Truncated)
        );
        let stats = wpa.stats();
        assert_eq!((stats.decrypted, stats.michael_failures), (2, 1));
        // A CCMP frame of the station is no TKIP frame: its own key is not tried.
        let ccmp = protected_frame(&key[..16].try_into().unwrap(), 1, b"x");
        assert_eq!(wpa.decrypt(&ccmp, 26), Err(NotDecrypted::NoKey));
    }

    #[test]
    fn the_wpa1_group_key_message_gives_the_tkip_group_key() {
        let pmk = lab_pmk();
        let gtk = [0x6b; 32];
        let group = tkip_frame(
            &gtk,
            1,
            Some([0xff; 6]),
            b"\xaa\xaa\x03\x00\x00\x00\x08\x06arp",
        );
        let mut wpa = wpa_with(&[lab_key()]);
        wpa1_handshake(&mut wpa, &pmk);
        assert_eq!(wpa.decrypt(&group, 26), Err(NotDecrypted::GroupAddressed));

        // Group message 1: key index 1, the GTK RC4-encrypted with Key IV || KEK.
        let encrypted = rc4_key_data(&pmk, &gtk);
        let info = KEY_ACK | KEY_MIC | 0x0200 | 0x0010 | TKIP;
        let g1 = eapol_key(WPA1, info, 32, &[0; 32], &pmk, &encrypted);
        let mut forged = g1.clone();
        forged[MIC_AT] ^= 1;
        wpa.eapol(AP, STA, &forged);
        assert_eq!(wpa.decrypt(&group, 26), Err(NotDecrypted::GroupAddressed));
        wpa.eapol(AP, STA, &g1);
        assert_eq!(
            wpa.decrypt(&group, 26).unwrap(),
            b"\xaa\xaa\x03\x00\x00\x00\x08\x06arp"
        );
        // Message 3 of WPA1 (pairwise, the AP's WPA element in plain key data) sends
        // no group key.
        let m3 = eapol_key(
            WPA1,
            M1 | KEY_MIC | 0x40 | TKIP,
            32,
            &ANONCE,
            &pmk,
            &WPA_ELEMENT,
        );
        assert!(!KeyFrame::parse(&m3).unwrap().carries_group_key());
    }

    #[test]
    fn a_mixed_mode_message_3_gives_a_ccmp_station_the_tkip_group_key() {
        let pmk = lab_pmk();
        let gtk = [0x6c; 32];
        let mut wpa = wpa_with(&[lab_key()]);
        handshake(&mut wpa, &pmk, false);
        let ptk = ptk_of(&pmk, WPA2);
        let mut plain = [&[0xdd, 38, 0x00, 0x0f, 0xac, 1, 1, 0][..], &gtk].concat();
        plain.extend_from_slice(&[0xdd, 0, 0, 0, 0, 0, 0, 0]);
        let info = M1 | KEY_MIC | KEY_ENCRYPTED_DATA | 0x0240 | WPA2;
        wpa.eapol(
            AP,
            STA,
            &key_frame(info, &ANONCE, &pmk, &wrap(&ptk.kek, &plain)),
        );
        let group = tkip_frame(
            &gtk,
            1,
            Some([0xff; 6]),
            b"\xaa\xaa\x03\x00\x00\x00\x08\x06arp",
        );
        assert!(wpa.decrypt(&group, 26).is_ok());
        // The station's own frames stay CCMP.
        let frame = protected_frame(&tk_of(&pmk), 1, b"x");
        assert_eq!(wpa.decrypt(&frame, 26), Ok(b"x".to_vec()));
    }

    #[test]
    fn a_tkip_tk_opens_tkip_frames_only() {
        let key = [0x3e; 32];
        let frame = tkip_frame(&key, 0, None, b"x");
        let ccmp = TemporalKey::Ccmp(key[..16].try_into().unwrap());
        let mut wpa = wpa_with(&[WlanKey::Tk(ccmp), WlanKey::Tk(TemporalKey::Tkip(key))]);
        assert_eq!(wpa.decrypt(&frame, 26), Ok(b"x".to_vec()));
        let ccmp_frame = protected_frame(&key[..16].try_into().unwrap(), 1, b"y");
        assert_eq!(wpa.decrypt(&ccmp_frame, 26), Ok(b"y".to_vec()));
        let mut wpa = wpa_with(&[WlanKey::Tk(ccmp)]);
        assert_eq!(wpa.decrypt(&frame, 26), Err(NotDecrypted::NoKey));
    }

    /// Key data RC4-encrypted as version 1 messages carry it: under the EAPOL-Key IV
    /// ([`KEY_IV`]) and the KEK of `pmk`'s TKIP PTK, the first 256 bytes of key stream
    /// skipped.
    fn rc4_key_data(pmk: &[u8; 32], plain: &[u8]) -> Vec<u8> {
        use rc4::{consts::U32, KeyInit, Rc4, StreamCipher};
        let kek = ptk_of(pmk, TKIP).kek;
        let rc4_key: [u8; 32] = [&KEY_IV[..], &kek].concat().try_into().unwrap();
        let mut rc4 = Rc4::<U32>::new(&rc4_key.into());
        rc4.apply_keystream(&mut [0; 256]);
        let mut encrypted = plain.to_vec();
        rc4.apply_keystream(&mut encrypted);
        encrypted
    }

    #[test]
    fn a_wpa2_tkip_message_3_gives_its_gtk_kde_under_rc4() {
        // WPA2 with a TKIP pairwise cipher: the RSN descriptor, version 1, and message
        // 3's key data (the AP's RSN element and the GTK KDE, not padded) under RC4.
        let pmk = lab_pmk();
        let gtk = [0x6d; 32];
        let mut wpa = wpa_with(&[lab_key()]);
        handshake_of(&mut wpa, &pmk, TKIP, false);
        assert_eq!(wpa.stats().handshakes, 1);
        let plain = [
            &rsn_element(&[2])[..],
            &[0xdd, 38, 0x00, 0x0f, 0xac, 1, 2, 0],
            &gtk,
        ]
        .concat();
        let info = M1 | KEY_MIC | KEY_ENCRYPTED_DATA | 0x0240 | TKIP;
        let m3 = key_frame(info, &ANONCE, &pmk, &rc4_key_data(&pmk, &plain));
        wpa.eapol(AP, STA, &m3);
        let arp = b"\xaa\xaa\x03\x00\x00\x00\x08\x06arp";
        let group = tkip_frame(&gtk, 2, Some([0xff; 6]), arp);
        assert_eq!(wpa.decrypt(&group, 26).unwrap(), arp);
        // The station's own frames: TKIP with its PTK.
        let own = tkip_frame(&tkip_key(&pmk), 0, None, b"x");
        assert_eq!(wpa.decrypt(&own, 26), Ok(b"x".to_vec()));
    }

    #[test]
    fn wep_keys_open_wep_frames() {
        let key = [0x5c; 13];
        let msdu = b"\xaa\xaa\x03\x00\x00\x00\x08\x00 an IPv4 packet";
        let mut frame = protected_frame(&[0; 16], 1, b"")[..26].to_vec();
        frame.extend(wep::seal([9, 8, 7], 0, &key, msdu));
        // No WEP key given: the frame says so.
        let mut wpa = wpa_with(&[lab_key()]);
        assert_eq!(wpa.decrypt(&frame, 26), Err(NotDecrypted::Wep));
        // Another key: its ICV does not come out; the network's opens it.
        let mut wpa = wpa_with(&[WlanKey::Wep(vec![1; 13])]);
        assert_eq!(
            wpa.decrypt(&frame, 26),
            Err(NotDecrypted::IntegrityCheckFailed)
        );
        let mut wpa = wpa_with(&[WlanKey::Wep(vec![1; 5]), WlanKey::Wep(key.to_vec())]);
        assert_eq!(wpa.decrypt(&frame, 26), Ok(msdu.to_vec()));
        let stats = wpa.stats();
        assert_eq!((stats.decrypted, stats.wep_decrypted), (1, 1));
    }
}
