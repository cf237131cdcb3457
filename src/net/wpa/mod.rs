//! WPA2- and WPA3-Personal decryption of 802.11 captures: a lab network's passphrase
//! (or PMK) and the 4-way handshakes in the capture give each station's pairwise key,
//! which opens its CCMP-protected unicast frames, as Wireshark's 802.11 keys do.
//!
//! - [`keys`] reads Wireshark's 802.11 keys file (`80211_keys`), or the PMKs and TKs
//!   of a hostapd or wpa_supplicant debug log (`debug_log`), and [`WlanKeys`]
//!   derives each key's PMK once (PBKDF2-HMAC-SHA1, 4096 rounds); a passphrase given
//!   without an SSID is derived, per capture, with the SSID each access point names
//!   ([`Wpa::learn_ssid`]).
//! - [`Wpa`] follows EAPOL-Key messages (IEEE 802.11-2020 §12.7.6) per access point
//!   and station: the ANonce of message 1 or 3 and the SNonce of message 2 give the
//!   PTK, by PRF-SHA1 for PSK (WPA2) or KDF-SHA256 for PSK-SHA256 (802.11w) and SAE
//!   (WPA3) ([`eapol`]); the key whose PTK makes message 2's MIC right is the
//!   network's, so a wrong passphrase is noticed, not used. A later handshake
//!   (rekeying) replaces the key, the previous one kept for frames still in flight.
//! - The group key (GTK) comes from message 3, or from a group key handshake, whose
//!   key data is unwrapped (AES key wrap, RFC 3394) with the station's KEK once the
//!   frame's MIC proves it the access point's; group-addressed frames are opened with
//!   it by key id.
//! - Temporal keys given as such (`tk`) open the frames no handshake does.
//! - [`Wpa::decrypt`] opens CCMP-128 (§12.5.3): nonce and additional data from the
//!   header, the 8-byte MIC checked.
//!
//! Not decrypted (the frames stay `wlan-protected`): TKIP and WEP, GCMP and
//! CCMP-256, fast BSS transition, OWE and the SHA-384 AKMs, and stations (or, for
//! group-addressed frames, access points) whose handshake the capture does not hold.
//! An SAE handshake needs its PMK (`wpa-psk`): the passphrase alone does not give it.

mod debug_log;
mod eapol;
pub mod keys;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use aes::Aes128;
use ccm::aead::generic_array::GenericArray;
use ccm::aead::{AeadInPlace, KeyInit};
use ccm::consts::{U13, U8};
use ccm::Ccm;

use crate::net::wlan::DataHeader;
use eapol::{KeyFrame, KeyHierarchy, Ptk, KEY_ACK, KEY_ENCRYPTED_DATA, KEY_MIC, KEY_PAIRWISE};
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
type CcmpCipher = Ccm<Aes128, U8, U13>;

/// PMKs derived from passphrases given without an SSID, at most, per capture: each
/// costs a PBKDF2 of 4 096 rounds, and a capture chooses the SSIDs.
pub const MAX_DERIVED_PMKS: usize = 64;

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
    /// Handshakes of a kind not followed (TKIP, fast BSS transition, OWE, SHA-384).
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
        // Message 3, or message 1 of a group key handshake.
        let group_key_data = KEY_MIC | KEY_ENCRYPTED_DATA | KEY_ACK;
        if key.info & group_key_data == group_key_data {
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
        let Some(plain) = eapol::aes_key_unwrap(&ptk.kek, key.key_data()) else {
            return;
        };
        if let Some((id, gtk)) = eapol::gtk_kde(&plain) {
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
        // The keys a handshake gave, and why there are none.
        let (own, missing) = if a1[0] & 1 != 0 {
            // Sent by the access point (A2) with its group key of the frame's key id.
            let gtk = self.groups.get(&(a2, body[3] >> 6)).copied();
            ([gtk, None], NotDecrypted::GroupAddressed)
        } else {
            let station = [(a1, a2), (a2, a1)]
                .iter()
                .filter_map(|pair| self.stations.get(pair))
                .find(|s| s.ptk.is_some());
            let tks = station.map_or([None, None], |s| {
                [s.ptk.map(|(_, ptk)| ptk.tk), s.previous_tk]
            });
            (tks, NotDecrypted::NoKey)
        };
        let handshake_keys = own.iter().flatten().count();
        if handshake_keys == 0 && self.keys.tks.is_empty() {
            return Err(missing);
        }

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
        for tk in own.iter().flatten().chain(&self.keys.tks) {
            let Ok(cipher) = CcmpCipher::new_from_slice(tk) else {
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
        Err(if handshake_keys == 0 {
            missing
        } else {
            NotDecrypted::IntegrityCheckFailed
        })
    }
}

#[cfg(test)]
mod tests {
    use super::eapol::tests::rsn_element;
    use super::eapol::{DESCRIPTOR_RSN, EAPOL_KEY, KEY_DATA_AT, KEY_DATA_LEN_AT, MIC_AT};
    use super::*;

    const AP: Mac = [2, 0, 0, 0, 0x5a, 1];
    const STA: Mac = [2, 0, 0, 0xaa, 0xcc, 7];
    const ANONCE: [u8; 32] = [0xa1; 32];
    const SNONCE: [u8; 32] = [0x5b; 32];

    /// Key descriptor versions: WPA2 (HMAC-SHA1), PSK-SHA256 (CMAC), SAE (the AKM's).
    const WPA2: u16 = 2;
    const SHA256: u16 = 3;
    const SAE: u16 = 0;

    fn hierarchy(version: u16) -> KeyHierarchy {
        if version == WPA2 {
            KeyHierarchy::Sha1
        } else {
            KeyHierarchy::Sha256
        }
    }

    fn ptk_of(pmk: &[u8; 32], version: u16) -> Ptk {
        hierarchy(version).ptk(pmk, AP, STA, &ANONCE, &SNONCE)
    }

    fn tk_of(pmk: &[u8; 32]) -> [u8; 16] {
        ptk_of(pmk, WPA2).tk
    }

    /// An EAPOL-Key frame with key information `info`, `nonce` and `key_data`, its
    /// MIC made with the KCK of `pmk` (by the hierarchy of the descriptor version in
    /// `info`) when the MIC bit is set.
    fn key_frame(info: u16, nonce: &[u8; 32], pmk: &[u8; 32], key_data: &[u8]) -> Vec<u8> {
        let mut f = vec![2, EAPOL_KEY, 0, 0, DESCRIPTOR_RSN];
        f.extend_from_slice(&info.to_be_bytes());
        f.extend_from_slice(&[0, 16]);
        f.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
        f.extend_from_slice(nonce);
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
            WPA2 => 2,
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
        let cipher = CcmpCipher::new_from_slice(tk).unwrap();
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
            assert_eq!(wpa.decrypt(&wep, 26), Err(NotDecrypted::NotCcmp));
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
            let tk = ptk_of(&pmk, version).tk;
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

        // TKIP's key descriptor and FT-PSK: not followed.
        let mut tkip = wpa_with(&[lab_key()]);
        tkip.eapol(AP, STA, &key_frame(M1 | 1, &ANONCE, &pmk, &[]));
        tkip.eapol(
            STA,
            AP,
            &key_frame(M2 | 1, &SNONCE, &pmk, &rsn_element(&[2])),
        );
        tkip.eapol(
            STA,
            AP,
            &key_frame(M2 | 3, &SNONCE, &pmk, &rsn_element(&[4])),
        );
        assert_eq!((tkip.stats().handshakes, tkip.stats().unsupported), (0, 2));

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
        let mut wpa = wpa_with(&[WlanKey::Tk([1; 16]), WlanKey::Tk(tk)]);
        assert_eq!(wpa.decrypt(&frame, 26), Ok(b"x".to_vec()));
        // None fits: the frame's reason stays that no handshake was seen.
        let other = protected_frame(&[0x3d; 16], 1, b"x");
        assert_eq!(wpa.decrypt(&other, 26), Err(NotDecrypted::NoKey));
        // After a handshake whose key does not open it, the given TKs still may.
        let mut wpa = wpa_with(&[lab_key(), WlanKey::Tk(tk)]);
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
        let cipher = CcmpCipher::new_from_slice(key).unwrap();
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
}
