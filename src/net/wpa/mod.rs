//! WPA2- and WPA3-Personal and -Enterprise decryption of 802.11 captures, and WPA1's
//! and WEP's: a lab network's passphrase (or PMK, or 802.1X MSK) and the handshakes
//! in the capture give each station's pairwise key, which opens its protected
//! unicast frames, as Wireshark's 802.11 keys do.
//!
//! - [`keys`] reads Wireshark's 802.11 keys file (`80211_keys`), or the PMKs and TKs
//!   of a hostapd or wpa_supplicant debug log (`debug_log`), and [`WlanKeys`]
//!   derives each key's PMK once (PBKDF2-HMAC-SHA1, 4096 rounds); a passphrase given
//!   without an SSID is derived, per capture, with the SSID each access point names
//!   ([`Wpa::learn_ssid`]).
//! - [`Wpa`] follows EAPOL-Key messages (IEEE 802.11-2020 §12.7.6) per access point
//!   and station: the ANonce of message 1 or 3 and the SNonce of message 2 give the
//!   PTK by the hierarchy of the station's AKM ([`eapol`]: PRF-SHA1 for PSK and
//!   802.1X, KDF-SHA256 for PSK-SHA256, SAE, Suite B and OWE, KDF-SHA384 for the
//!   SHA-384 AKMs, and for fast BSS transition a PMK-R0 and PMK-R1 first, [`ft`]);
//!   the key whose PTK makes message 2's MIC right is the network's, so a wrong
//!   passphrase is noticed, not used. A later handshake (rekeying) replaces the key,
//!   the previous one kept for frames still in flight. A station that roams within
//!   a mobility domain (802.11r) gets its new access point's PTK from the PMK-R0 of
//!   its first association and the nonces of its reassociation, whose MIC proves it.
//! - The group key (GTK) comes from message 3, or from a group key handshake, whose
//!   key data is unwrapped (AES key wrap, RFC 3394; RC4 for TKIP's key descriptor)
//!   with the station's KEK once the frame's MIC proves it the access point's, or
//!   from an FT reassociation response; group-addressed frames are opened with it by
//!   key id. Its cipher is the group cipher of the station's RSN element (by its
//!   length when there is none: a WPA/WPA2 mixed-mode network's GTK is TKIP's).
//! - Two stations that set up a direct link (TDLS) get its key, the TPK, from the
//!   nonces of their setup frames, which travel inside their protected frames
//!   ([`tdls`]).
//! - Temporal keys given as such (`tk`) open the frames no handshake does, tried as
//!   each cipher of their length.
//! - [`Wpa::decrypt`] opens CCMP-128, CCMP-256, GCMP-128 and GCMP-256 ([`aead`],
//!   §12.5.3 and §12.5.5: the MIC checked) and TKIP ([`tkip`], §12.5.2: the ICV and
//!   the Michael MIC checked), told apart by the cipher header and the key's cipher,
//!   and WEP frames (no extended IV) with the WEP keys given ([`wep`]).
//!
//! Not decrypted (the frames stay `wlan-protected`): WEP without its key, fast BSS
//! transition with SHA-384, SAE-EXT-KEY, FILS, and stations (or, for
//! group-addressed frames, access points) whose handshake the capture does not hold.
//! An SAE or OWE handshake needs its PMK (`wpa-psk`): the passphrase alone does not
//! give it.

mod aead;
mod cipher;
mod debug_log;
mod eapol;
mod ft;
pub mod keys;
mod rsn;
mod tdls;
pub mod tkip;
mod wep;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::net::wlan::{self, DataHeader, ManagementFrame};
pub use cipher::{Cipher, GivenTk, TemporalKey};
use eapol::{KeyFrame, KeyHierarchy, Ptk, KEY_ACK, KEY_MIC, KEY_PAIRWISE};
pub use keys::{
    parse_keys, passphrase_pmk, KeysError, KeysFile, KeysFormat, KeysReader, WlanKey, WlanKeys,
};
use rsn::{Fte, Rsn};
pub use tdls::ETHERTYPE_TDLS;

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

/// What a [`Wpa`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WpaStats {
    /// 4-way handshakes, and fast BSS transitions, that gave a pairwise key.
    pub handshakes: u64,
    /// Handshakes (or transitions) whose MIC no key's PTK made right: a wrong
    /// passphrase or SSID, or an SAE handshake whose PMK was not given.
    pub wrong_key: u64,
    /// Of those, SAE (WPA3) handshakes …
    pub wrong_key_sae: u64,
    /// … and OWE (Enhanced Open) ones: both need their PMK given.
    pub wrong_key_owe: u64,
    /// Handshakes of a kind not followed (fast transition with SHA-384,
    /// SAE-EXT-KEY, FILS, …).
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
                "802.11 protected frame that the station's key does not open (CCMP or GCMP MIC, TKIP or WEP ICV)"
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
    mic: Vec<u8>,
    hierarchy: KeyHierarchy,
    /// The station's AKM suite type, when of OUI 00-0F-AC.
    akm: Option<u8>,
    /// The ciphers the station's RSN element names (CCMP-128 when it names none).
    pairwise: Cipher,
    group: Option<Cipher>,
    /// For a first association in a mobility domain: what its PMK-R0 and PMK-R1
    /// are bound to.
    ft: Option<FtInitial>,
}

/// The key holders of a fast BSS transition's first association, from message 2's
/// Mobility Domain and Fast BSS Transition elements.
struct FtInitial {
    akm: u8,
    mdid: [u8; 2],
    r0kh_id: Vec<u8>,
    r1kh_id: Mac,
}

/// A station's PMK-R0, from its first association in a mobility domain: the PTK of
/// each later transition comes from it.
struct FtR0 {
    pmk_r0: [u8; 32],
    holder: ft::R0Holder,
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
    /// The group cipher the station's RSN element named.
    group_cipher: Option<Cipher>,
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
    /// PMK-R0s of stations by address (as many; the same rule).
    ft_r0: BTreeMap<Mac, FtR0>,
    /// EAPOL-Key frames followed so far.
    followed: u64,
    stats: WpaStats,
}

/// A protected data frame: what the ciphers need of its MAC header, and its body.
#[derive(Clone, Copy)]
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
    /// From the cipher header (CCMP or GCMP header, TKIP IV) on.
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

/// Inserts into a map bounded by [`MAX_STATIONS`], the lowest key going first.
fn insert_bounded<K: Ord, V>(map: &mut BTreeMap<K, V>, key: K, value: V) {
    if map.len() >= MAX_STATIONS && !map.contains_key(&key) {
        map.pop_first();
    }
    map.insert(key, value);
}

impl Wpa {
    pub fn new(keys: Arc<WlanKeys>) -> Self {
        Wpa {
            keys,
            stations: BTreeMap::new(),
            groups: BTreeMap::new(),
            ssids: BTreeMap::new(),
            derived: BTreeMap::new(),
            ft_r0: BTreeMap::new(),
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

    /// Remembers the SSID access point `bssid` names: for passphrases given without
    /// one, and for fast BSS transition, whose PMK-R0 is bound to it.
    pub fn learn_ssid(&mut self, bssid: Mac, ssid: &[u8]) {
        if self.ssids.get(&bssid).map(Vec::as_slice) != Some(ssid) {
            insert_bounded(&mut self.ssids, bssid, ssid.to_vec());
        }
    }

    /// Reads a management frame of an access point or a station: the SSID it names,
    /// and the keys of a fast BSS transition's reassociation.
    pub fn management(&mut self, frame: &ManagementFrame<'_>) {
        if let Some(ssid) = frame.ssid() {
            self.learn_ssid(frame.bssid, ssid);
        }
        match frame.subtype {
            wlan::SUBTYPE_REASSOCIATION_REQUEST => self.ft_reassociation_request(frame),
            wlan::SUBTYPE_REASSOCIATION_RESPONSE => self.ft_reassociation_response(frame),
            _ => {}
        }
    }

    /// The PMKs to try for a handshake with access point `aa` of a hierarchy whose
    /// PMKs are `len` bytes: the keys', and (32-byte ones) those of the SSID-less
    /// passphrases with the SSID `aa` named.
    fn pmks_for(&mut self, aa: Mac, len: usize) -> Vec<Vec<u8>> {
        if len == 48 {
            return self.keys.pmks_384.iter().map(|pmk| pmk.to_vec()).collect();
        }
        let mut pmks: Vec<Vec<u8>> = self.keys.pmks.iter().map(|pmk| pmk.to_vec()).collect();
        let Some(ssid) = self.ssids.get(&aa) else {
            return pmks;
        };
        for (i, passphrase) in self.keys.any_ssid.iter().enumerate() {
            let key = (i, ssid.clone());
            if let Some(pmk) = self.derived.get(&key) {
                pmks.push(pmk.to_vec());
            } else if self.derived.len() < MAX_DERIVED_PMKS {
                let pmk = passphrase_pmk(passphrase, ssid);
                self.derived.insert(key, pmk);
                pmks.push(pmk.to_vec());
            }
        }
        pmks
    }

    /// The SSIDs a PMK-R0 of access point `aa`'s network may be bound to: the one it
    /// names, else those of the passphrases given.
    fn ssids_for(&self, aa: Mac) -> Vec<Vec<u8>> {
        match self.ssids.get(&aa) {
            Some(ssid) => vec![ssid.clone()],
            None => self.keys.ssids.clone(),
        }
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
                let rsn = eapol::rsn(key);
                let akm = rsn.and_then(|rsn| rsn.akm);
                let Some(hierarchy) = KeyHierarchy::of(key.version(), akm, key.mic_len()) else {
                    self.stats.unsupported += 1;
                    return;
                };
                // A fast BSS transition's first association: its PTK needs the key
                // holders its message 2 names.
                let ft = match akm.filter(|akm| eapol::AKMS_FAST_TRANSITION.contains(akm)) {
                    Some(akm) => {
                        let Some(initial) = ft_initial(akm, key.key_data()) else {
                            self.stats.unsupported += 1;
                            return;
                        };
                        Some(initial)
                    }
                    None => None,
                };
                if key.bytes().len() > MAX_KEY_FRAME {
                    return;
                }
                self.station(pair).message_2 = Some(Message2 {
                    snonce: nonce,
                    zeroed: key.with_zero_mic(),
                    mic: key.mic().to_vec(),
                    hierarchy,
                    akm,
                    pairwise: rsn.and_then(|rsn| rsn.pairwise).unwrap_or(Cipher::Ccmp128),
                    group: rsn.and_then(|rsn| rsn.group),
                    ft,
                });
            }
            _ => return,
        }
        self.try_pairwise_key(pair);
    }

    /// Derives the pairwise key once the ANonce and message 2 are both known.
    fn try_pairwise_key(&mut self, (aa, spa): (Mac, Mac)) {
        let ready = self.stations.get(&(aa, spa));
        let Some(message_2) = ready
            .filter(|s| s.anonce.is_some())
            .and_then(|s| s.message_2.as_ref())
        else {
            return;
        };
        let (hierarchy, pmk_len) = (message_2.hierarchy, message_2.hierarchy.pmk_len());
        let xxkeys = match message_2.ft.as_ref().map(|ft| ft.akm) {
            // FT-802.1X: the second 256 bits of the MSK.
            Some(eapol::AKM_FT_8021X) => self.keys.ft_xxkeys.iter().map(|k| k.to_vec()).collect(),
            _ => self.pmks_for(aa, pmk_len),
        };
        let ssids = self.ssids_for(aa);
        let Some(station) = self.stations.get_mut(&(aa, spa)) else {
            return;
        };
        let (Some(anonce), Some(message_2)) = (station.anonce, station.message_2.take()) else {
            return;
        };
        let mic_is_right = |ptk: &Ptk| hierarchy.mic(ptk.kck(), &message_2.zeroed) == message_2.mic;
        let found = xxkeys.iter().find_map(|key| match &message_2.ft {
            None => {
                let (anonce, snonce) = (&anonce, &message_2.snonce);
                let ptk = hierarchy.ptk(key, (aa, spa), anonce, snonce, message_2.pairwise)?;
                mic_is_right(&ptk).then_some((ptk, None))
            }
            Some(initial) => ssids.iter().find_map(|ssid| {
                let holder = ft::R0Holder {
                    ssid: ssid.clone(),
                    mdid: initial.mdid,
                    r0kh_id: initial.r0kh_id.clone(),
                };
                let pmk_r0 = ft::pmk_r0(key, &holder, spa)?;
                let pmk_r1 = ft::pmk_r1(&pmk_r0, initial.r1kh_id, spa);
                let snonce = &message_2.snonce;
                let ptk = ft::ptk(&pmk_r1, snonce, &anonce, (aa, spa), message_2.pairwise)?;
                mic_is_right(&ptk).then_some((ptk, Some(FtR0 { pmk_r0, holder })))
            }),
        });
        let Some((ptk, r0)) = found else {
            self.stats.wrong_key += 1;
            let akm = message_2.akm;
            self.stats.wrong_key_sae +=
                u64::from(matches!(akm, Some(eapol::AKM_SAE | eapol::AKM_FT_SAE)));
            self.stats.wrong_key_owe += u64::from(akm == Some(eapol::AKM_OWE));
            return;
        };
        station.group_cipher = message_2.group;
        Self::new_ptk(station, hierarchy, ptk);
        self.stats.handshakes += 1;
        if let Some(r0) = r0 {
            insert_bounded(&mut self.ft_r0, spa, r0);
        }
    }

    /// Makes `ptk` the station's key, the one before kept for frames in flight.
    fn new_ptk(station: &mut Station, hierarchy: KeyHierarchy, ptk: Ptk) {
        let last = station.ptk.replace((hierarchy, ptk));
        if let Some((_, last)) = last.filter(|(_, last)| last.tk != ptk.tk) {
            station.previous_tk = Some(last.tk);
        }
    }

    /// A station's reassociation request in a fast BSS transition: the PTK for its
    /// new access point, from its PMK-R0, the target's R1KH-ID and the nonces of
    /// the request's FTE, whose MIC (made with that PTK's KCK) proves it.
    fn ft_reassociation_request(&mut self, frame: &ManagementFrame<'_>) {
        let (aa, spa) = (frame.a1, frame.a2);
        let Some(rsn) = Rsn::find(frame.elements) else {
            return;
        };
        if !rsn
            .akm
            .is_some_and(|akm| eapol::AKMS_FAST_TRANSITION.contains(&akm))
        {
            return;
        }
        let (Some(fte), Some(r0)) = (Fte::find(frame.elements), self.ft_r0.get(&spa)) else {
            return;
        };
        let (Some(r1kh_id), Some(r0kh_id)) = (fte.r1kh_id(), fte.r0kh_id()) else {
            return;
        };
        if r0kh_id != r0.holder.r0kh_id.as_slice()
            || rsn::mobility_domain(frame.elements) != Some(r0.holder.mdid)
        {
            // A PMK-R0 of another key holder: not the one followed.
            return;
        }
        let pmk_r1 = ft::pmk_r1(&r0.pmk_r0, r1kh_id, spa);
        let pairwise = rsn.pairwise.unwrap_or(Cipher::Ccmp128);
        let Some(ptk) = ft::ptk(&pmk_r1, &fte.snonce(), &fte.anonce(), (aa, spa), pairwise) else {
            return;
        };
        let Some(covered) = rsn::fte_mic_input(frame.elements) else {
            return;
        };
        let covered: Vec<&[u8]> = covered.iter().map(Vec::as_slice).collect();
        if ft::fte_mic(
            ptk.kck(),
            (aa, spa),
            ft::SEQUENCE_REASSOCIATION_REQUEST,
            &covered,
        ) != fte.mic()
        {
            self.stats.wrong_key += 1;
            return;
        }
        let station = self.station((aa, spa));
        // A retransmitted request gives the same key again.
        if station.ptk.is_some_and(|(_, known)| known.tk == ptk.tk) {
            return;
        }
        station.group_cipher = rsn.group;
        station.anonce = None;
        station.message_2 = None;
        Self::new_ptk(station, KeyHierarchy::Sha256, ptk);
        self.stats.handshakes += 1;
    }

    /// An access point's reassociation response in a fast BSS transition: its GTK,
    /// wrapped in the FTE under the KEK of the station's new PTK.
    fn ft_reassociation_response(&mut self, frame: &ManagementFrame<'_>) {
        let (aa, spa) = (frame.a2, frame.a1);
        let Some((id, len, wrapped)) = Fte::find(frame.elements).and_then(|fte| fte.gtk()) else {
            return;
        };
        let Some(station) = self.stations.get(&(aa, spa)) else {
            return;
        };
        let Some((_, ptk)) = station.ptk else {
            return;
        };
        let Some(plain) = eapol::aes_key_unwrap(ptk.kek(), wrapped) else {
            return;
        };
        let Some(bytes) = plain.get(..len) else {
            return;
        };
        if let Some(gtk) = TemporalKey::of_group(station.group_cipher, bytes) {
            insert_bounded(&mut self.groups, (aa, id), gtk);
        }
    }

    /// Follows a TDLS frame (the body after LLC/SNAP of a data frame of ethertype
    /// [`ETHERTYPE_TDLS`], which stations send each other through their access
    /// point, so that a capture holds each twice): a Setup Confirm whose MIC proves
    /// it gives the two stations' direct link its key, counted as a handshake.
    pub fn tdls(&mut self, payload: &[u8]) {
        let Some(link) = tdls::setup_confirm(payload) else {
            return;
        };
        let station = self.station((link.initiator, link.responder));
        // The access point relays the frame: each is seen twice in the air.
        if station.ptk.is_some_and(|(_, ptk)| ptk.tk == link.tpk.tk) {
            return;
        }
        Self::new_ptk(station, KeyHierarchy::Sha256, link.tpk);
        self.stats.handshakes += 1;
    }

    /// Takes the GTK out of the key data of an access point's message whose MIC the
    /// station's KCK makes right.
    fn group_key(&mut self, (aa, spa): (Mac, Mac), key: &KeyFrame<'_>) {
        let Some(station) = self.stations.get(&(aa, spa)) else {
            return;
        };
        let Some((hierarchy, ptk)) = station.ptk else {
            return;
        };
        if !hierarchy.mic_is_right(ptk.kck(), key) {
            return;
        }
        if let Some((id, gtk)) = hierarchy.group_key(ptk.kek(), key, station.group_cipher) {
            insert_bounded(&mut self.groups, (aa, id), gtk);
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
        self.open(frame, body_at, false).map(|(body, _)| body)
    }

    /// Decrypts a fragment of an MSDU (as [`decrypt`](Self::decrypt) a whole frame):
    /// its part of the MSDU, and what opened it. A TKIP fragment's Michael MIC is
    /// not checked here, but by [`tkip_msdu`](Self::tkip_msdu) once the MSDU is
    /// put together.
    pub fn decrypt_fragment(
        &mut self,
        frame: &[u8],
        body_at: usize,
    ) -> Result<Opened, NotDecrypted> {
        let (body, key) = self.open(frame, body_at, true)?;
        // `open` read the cipher header: its 8 bytes (4 of WEP's) are there.
        let header = frame.get(body_at..).unwrap_or_default();
        let pn = match key {
            Some(key) => packet_number(header, key.cipher() == Cipher::Tkip),
            None => header
                .iter()
                .take(3)
                .fold(0, |iv, &b| iv << 8 | u64::from(b)),
        };
        Ok(Opened { body, key, pn })
    }

    /// The MSDU put together from the TKIP fragments `msdu_and_mic` that `key`
    /// opened, the last of them `frame` (whose cipher header starts at `body_at`):
    /// without its Michael MIC, once the MIC is checked.
    pub fn tkip_msdu(
        &mut self,
        frame: &[u8],
        body_at: usize,
        key: &TemporalKey,
        msdu_and_mic: Vec<u8>,
    ) -> Result<Vec<u8>, NotDecrypted> {
        let mpdu = Mpdu::parse(frame, body_at)?;
        tkip_frame(&mpdu)
            .michael_of_msdu(key, msdu_and_mic)
            .map_err(|_| {
                self.stats.michael_failures += 1;
                NotDecrypted::MichaelFailure
            })
    }

    /// The body of a protected frame or fragment, and the key that opened it (`None`
    /// for WEP).
    fn open(
        &mut self,
        frame: &[u8],
        body_at: usize,
        fragment: bool,
    ) -> Result<(Vec<u8>, Option<TemporalKey>), NotDecrypted> {
        let mpdu = Mpdu::parse(frame, body_at)?;
        // The extended IV bit: CCMP, GCMP and TKIP have it, WEP not.
        if mpdu.body[3] & 0x20 == 0 {
            return self.open_wep(&mpdu);
        }
        // The header tells TKIP from CCMP and GCMP, but for one frame in about 256
        // that either could be: those are tried with keys of both.
        let header = tkip::Header::of(mpdu.body);
        let of_cipher = |key: &&TemporalKey| match header {
            tkip::Header::Tkip => key.cipher() == Cipher::Tkip,
            tkip::Header::Aes => key.cipher() != Cipher::Tkip,
            tkip::Header::Either => true,
        };
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
        let opened = open_with(&mpdu, keys, fragment);
        match opened {
            Ok((body, key)) => {
                self.stats.decrypted += 1;
                Ok((body, Some(key)))
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
    fn open_wep(
        &mut self,
        mpdu: &Mpdu<'_>,
    ) -> Result<(Vec<u8>, Option<TemporalKey>), NotDecrypted> {
        if self.keys.weps.is_empty() {
            return Err(NotDecrypted::Wep);
        }
        let body = self
            .keys
            .weps
            .iter()
            .find_map(|key| wep::open(mpdu.body, key))
            .ok_or(NotDecrypted::IntegrityCheckFailed)?;
        self.stats.decrypted += 1;
        self.stats.wep_decrypted += 1;
        Ok((body, None))
    }
}

/// A decrypted MPDU: its body and what opened it, which the fragments of one MSDU
/// must share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The plaintext body (LLC/SNAP and on, or a fragment's part of the MSDU).
    pub body: Vec<u8>,
    /// The temporal key that opened it; `None` for WEP.
    pub key: Option<TemporalKey>,
    /// Its packet number (CCMP, GCMP), TKIP sequence counter, or WEP IV.
    pub pn: u64,
}

/// The packet number of a CCMP or GCMP header (PN0, PN1, reserved, key id, PN2 to
/// PN5) or the sequence counter of a TKIP IV (TSC1, WEP seed, TSC0, key id, TSC2 to
/// TSC5); `body` holds at least the 8 bytes.
fn packet_number(body: &[u8], tkip: bool) -> u64 {
    let byte = |at: usize| u64::from(body.get(at).copied().unwrap_or(0));
    let (low, second) = if tkip {
        (byte(2), byte(0))
    } else {
        (byte(0), byte(1))
    };
    (4..8).rev().fold(0, |pn, at| pn << 8 | byte(at)) << 16 | second << 8 | low
}

/// What message 2's key data says of a first association in a mobility domain;
/// `None` when its Mobility Domain element or its FTE's key holders are missing.
fn ft_initial(akm: u8, key_data: &[u8]) -> Option<FtInitial> {
    let fte = Fte::find(key_data)?;
    Some(FtInitial {
        akm,
        mdid: rsn::mobility_domain(key_data)?,
        r0kh_id: fte.r0kh_id()?.to_vec(),
        r1kh_id: fte.r1kh_id()?,
    })
}

/// Opens a protected frame with the first of `keys` that makes its MIC right (CCMP,
/// GCMP) or its ICV and Michael MIC (TKIP; the ICV only for a `fragment`, whose
/// Michael MIC is its MSDU's); a TKIP key whose ICV comes out but whose Michael MIC
/// does not is a [`NotDecrypted::MichaelFailure`]. The body, and the key.
fn open_with<'k>(
    mpdu: &Mpdu<'_>,
    keys: impl Iterator<Item = &'k TemporalKey>,
    fragment: bool,
) -> Result<(Vec<u8>, TemporalKey), NotDecrypted> {
    let mut aes_frame = None;
    let mut tkip_mpdu = None;
    // What a TKIP MPDU holds after its IV: the ICV, and the Michael MIC unless it is
    // a fragment (the MIC may be in an earlier fragment, or cut across two).
    let tkip_trailer = if fragment {
        tkip::ICV_LEN
    } else {
        tkip::TRAILER_LEN
    };
    let mut failure = NotDecrypted::IntegrityCheckFailed;
    let mut tried = 0;
    for key in keys {
        let opened = if key.cipher() == Cipher::Tkip {
            let long_enough = mpdu.body.len() >= tkip::IV_LEN + tkip_trailer;
            let Some(frame) =
                tkip_mpdu.get_or_insert_with(|| long_enough.then(|| tkip_frame(mpdu)))
            else {
                continue;
            };
            tried += 1;
            let opened = if fragment {
                frame.open_fragment(key)
            } else {
                frame.open_key(key)
            };
            match opened {
                Ok(plain) => Some(plain),
                Err(tkip::Failure::Michael) => {
                    failure = NotDecrypted::MichaelFailure;
                    None
                }
                Err(tkip::Failure::Icv) => None,
            }
        } else {
            let Some(frame) = aes_frame.get_or_insert_with(|| aead::Frame::new(mpdu)) else {
                continue;
            };
            tried += 1;
            frame.open(key)
        };
        if let Some(plain) = opened {
            return Ok((plain, *key));
        }
    }
    if tried == 0 {
        return Err(NotDecrypted::Truncated);
    }
    Err(failure)
}

/// The TKIP frame `mpdu` is (its header's parts that open it with any key).
fn tkip_frame<'a>(mpdu: &Mpdu<'a>) -> tkip::Frame<'a> {
    let addresses = [mpdu.a1, mpdu.a2, mpdu.a3];
    let (da, sa) = wlan::destination_and_source(mpdu.flags, addresses, mpdu.a4);
    let priority = mpdu.qos.unwrap_or(0) & 0x0f;
    let from_ap = wlan::from_access_point(mpdu.flags);
    tkip::Frame::new(mpdu.body, mpdu.a2, da, sa, priority, from_ap)
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
        hierarchy(version)
            .ptk(pmk, (AP, STA), &ANONCE, &SNONCE, Cipher::Ccmp128)
            .unwrap()
    }

    fn tk_of(pmk: &[u8; 32]) -> [u8; 16] {
        ccmp_key(ptk_of(pmk, WPA2).tk)
    }

    fn ccmp_key(key: TemporalKey) -> [u8; 16] {
        match key {
            TemporalKey::Ccmp(tk) => tk,
            other => panic!("{other:?}"),
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
            let mic = hierarchy(version).mic(ptk_of(pmk, version).kck(), &f);
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
        let cipher = aead::Ccmp128::new_from_slice(tk).unwrap();
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
        let given = |tk| WlanKey::Tk(GivenTk::Bits128(tk));
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
        key_frame(info, &ANONCE, pmk, &wrap(ptk.kek(), &plain))
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
        let cipher = aead::Ccmp128::new_from_slice(key).unwrap();
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
            other => panic!("{other:?}"),
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

    /// The TKIP fragments of `msdu` from the station (QoS TID 6, sequence number 1),
    /// `part_len` bytes of the MSDU and its Michael MIC each, sequence counters from 7.
    fn tkip_fragments(key: &[u8; 32], msdu: &[u8], part_len: usize) -> Vec<Vec<u8>> {
        const ROUTER: Mac = [2, 0, 0, 0, 0x5a, 0xfe];
        let bodies = tkip::seal_fragments(key, 0, 7, STA, (ROUTER, STA, 6), false, msdu, part_len);
        let count = bodies.len();
        bodies
            .into_iter()
            .enumerate()
            .map(|(i, body)| {
                let more = if i + 1 < count { 0x04 } else { 0 };
                let mut header = vec![0x88, 0x41 | more, 0x2c, 0];
                for address in [AP, STA, ROUTER] {
                    header.extend_from_slice(&address);
                }
                header.extend_from_slice(&[0x10 | i as u8, 0x00, 0x06, 0x00]);
                [header, body].concat()
            })
            .collect()
    }

    #[test]
    fn tkip_fragments_open_alone_and_their_michael_mic_over_the_msdu() {
        let key = [0x3e; 32];
        let msdu = b"\xaa\xaa\x03\x00\x00\x00\x08\x00 twenty".to_vec();
        assert_eq!(msdu.len(), 15);
        // MSDU and MIC, 23 bytes, in parts of 9: the MIC is cut across the last two.
        let fragments = tkip_fragments(&[0x3e; 32], &msdu, 9);
        assert_eq!(fragments.len(), 3);
        let mut wpa = wpa_with(&[WlanKey::Tk(GivenTk::Bits256(key))]);
        let mut msdu_and_mic = Vec::new();
        for (i, f) in fragments.iter().enumerate() {
            let opened = wpa.decrypt_fragment(f, 26).unwrap();
            assert_eq!(opened.key, Some(TemporalKey::Tkip(key)));
            assert_eq!(opened.pn, 7 + i as u64);
            msdu_and_mic.extend(opened.body);
        }
        assert_eq!(msdu_and_mic.len(), 23);
        let last = &fragments[2];
        let key = TemporalKey::Tkip(key);
        assert_eq!(
            wpa.tkip_msdu(last, 26, &key, msdu_and_mic.clone()),
            Ok(msdu.clone())
        );
        // A byte changed: the Michael MIC of the whole MSDU no longer comes out.
        let mut forged = msdu_and_mic.clone();
        forged[3] ^= 1;
        assert_eq!(
            wpa.tkip_msdu(last, 26, &key, forged),
            Err(NotDecrypted::MichaelFailure)
        );
        assert_eq!(
            (wpa.stats().decrypted, wpa.stats().michael_failures),
            (3, 1)
        );
        // A TK without its Michael keys: the MIC is taken off unchecked.
        let icv_only = TemporalKey::TkipIcvOnly([0x3e; 16]);
        assert_eq!(wpa.tkip_msdu(last, 26, &icv_only, msdu_and_mic), Ok(msdu));
        // As a whole frame, a fragment's ICV comes out but what it holds is no MSDU
        // with its Michael MIC.
        assert_eq!(
            wpa.decrypt(&fragments[0], 26),
            Err(NotDecrypted::MichaelFailure)
        );
    }

    #[test]
    fn a_ccmp_fragment_opens_with_its_packet_number_and_key() {
        let pmk = lab_pmk();
        let mut wpa = wpa_with(&[lab_key()]);
        handshake(&mut wpa, &pmk, false);
        // `protected_frame` writes fragment number 5.
        let frame = protected_frame(&tk_of(&pmk), 0x0102_0304_0506, b"part");
        let opened = wpa.decrypt_fragment(&frame, 26).unwrap();
        assert_eq!(
            opened,
            Opened {
                body: b"part".to_vec(),
                key: Some(TemporalKey::Ccmp(tk_of(&pmk))),
                pn: 0x0102_0304_0506,
            }
        );
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
            &key_frame(info, &ANONCE, &pmk, &wrap(ptk.kek(), &plain)),
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
    fn tkip_tks_with_and_without_their_michael_keys() {
        let key = [0x3e; 32];
        let frame = tkip_frame(&key, 0, None, b"x");
        let short = GivenTk::Bits128(key[..16].try_into().unwrap());
        let mut wpa = wpa_with(&[WlanKey::Tk(short), WlanKey::Tk(GivenTk::Bits256(key))]);
        assert_eq!(wpa.decrypt(&frame, 26), Ok(b"x".to_vec()));
        let ccmp_frame = protected_frame(&key[..16].try_into().unwrap(), 1, b"y");
        assert_eq!(wpa.decrypt(&ccmp_frame, 26), Ok(b"y".to_vec()));
        // The 16-byte TK alone (as Wireshark shows a TKIP TK) opens the frame by its
        // ICV, and so a frame whose Michael MIC another key made, which the whole key
        // tells apart.
        let mut other_michael = key;
        other_michael[16..].fill(0x11);
        let forged = tkip_frame(&other_michael, 0, None, b"x");
        let mut whole = wpa_with(&[WlanKey::Tk(GivenTk::Bits256(key))]);
        assert_eq!(
            whole.decrypt(&forged, 26),
            Err(NotDecrypted::MichaelFailure)
        );
        let mut icv_only = wpa_with(&[WlanKey::Tk(short)]);
        assert_eq!(icv_only.decrypt(&frame, 26), Ok(b"x".to_vec()));
        assert_eq!(icv_only.decrypt(&forged, 26), Ok(b"x".to_vec()));
        let mut other = wpa_with(&[WlanKey::Tk(GivenTk::Bits128([0x3f; 16]))]);
        assert_eq!(other.decrypt(&frame, 26), Err(NotDecrypted::NoKey));
    }

    /// Key data RC4-encrypted as version 1 messages carry it: under the EAPOL-Key IV
    /// ([`KEY_IV`]) and the KEK of `pmk`'s TKIP PTK, the first 256 bytes of key stream
    /// skipped.
    fn rc4_key_data(pmk: &[u8; 32], plain: &[u8]) -> Vec<u8> {
        use rc4::{consts::U32, KeyInit, Rc4, StreamCipher};
        let kek = ptk_of(pmk, TKIP).kek().to_vec();
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
        // As a fragment (`protected_frame` writes fragment number 5): no temporal key,
        // the IV for a packet number.
        assert_eq!(
            wpa.decrypt_fragment(&frame, 26),
            Ok(Opened {
                body: msdu.to_vec(),
                key: None,
                pn: 0x090807,
            })
        );
    }

    /// A QoS data frame of TID 5 with `flags` (Protected added) and addresses
    /// a1–a3, holding `plain` under `key` (any AES cipher), key id `key_id` and
    /// packet number `pn`, sealed by [`aead::seal`].
    fn aes_frame(
        key: &TemporalKey,
        flags: u8,
        [a1, a2, a3]: [Mac; 3],
        key_id: u8,
        pn: u64,
        plain: &[u8],
    ) -> Vec<u8> {
        let mut header = vec![0x88, flags | 0x40, 0x2c, 0];
        for address in [a1, a2, a3] {
            header.extend_from_slice(&address);
        }
        header.extend_from_slice(&[0x15, 0x02, 0x05, 0x00]);
        let pn = pn.to_be_bytes();
        let cipher_header = [
            pn[7],
            pn[6],
            0,
            0x20 | (key_id << 6),
            pn[5],
            pn[4],
            pn[3],
            pn[2],
        ];
        let template = [&header[..], &cipher_header, &[0; 8]].concat();
        let mpdu = Mpdu::parse(&template, 26).unwrap();
        [&header[..], &aead::seal(&mpdu, key, plain)].concat()
    }

    /// A frame of the station to `ap`, and a group-addressed one of `ap`.
    fn to_ap(ap: Mac, key: &TemporalKey, plain: &[u8]) -> Vec<u8> {
        aes_frame(key, 0x09, [ap, STA, [2, 0, 0, 0, 0x5a, 0xfe]], 0, 3, plain)
    }

    fn from_ap_to_all(ap: Mac, key: &TemporalKey, key_id: u8, plain: &[u8]) -> Vec<u8> {
        aes_frame(key, 0x02, [[0xff; 6], ap, STA], key_id, 9, plain)
    }

    /// An EAPOL-Key frame of the RSN descriptor with a MIC field of `mic_len` bytes,
    /// its MIC made by `mic`'s hierarchy and KCK when given.
    fn key_message(
        info: u16,
        nonce: &[u8; 32],
        key_data: &[u8],
        mic: Option<(KeyHierarchy, &[u8])>,
        mic_len: usize,
    ) -> Vec<u8> {
        let mut f = vec![2, EAPOL_KEY, 0, 0, DESCRIPTOR_RSN];
        f.extend_from_slice(&info.to_be_bytes());
        f.extend_from_slice(&16u16.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
        f.extend_from_slice(nonce);
        f.extend_from_slice(&KEY_IV);
        f.resize(MIC_AT + mic_len, 0);
        f.extend_from_slice(&(key_data.len() as u16).to_be_bytes());
        f.extend_from_slice(key_data);
        let len = (f.len() - 4) as u16;
        f[2..4].copy_from_slice(&len.to_be_bytes());
        if let Some((hierarchy, kck)) = mic {
            let mic = hierarchy.mic(kck, &f);
            f[MIC_AT..MIC_AT + mic_len].copy_from_slice(&mic);
        }
        f
    }

    /// Messages 1 and 2 of a handshake of key descriptor `version` whose message 2
    /// carries `key_data` and the MIC of `hierarchy` under `kck`.
    fn first_messages(
        wpa: &mut Wpa,
        version: u16,
        (hierarchy, kck): (KeyHierarchy, &[u8]),
        key_data: &[u8],
    ) {
        let mic_len = if hierarchy == KeyHierarchy::Sha384 {
            24
        } else {
            16
        };
        wpa.eapol(
            AP,
            STA,
            &key_message(M1 | version, &ANONCE, &[], None, mic_len),
        );
        let mic = Some((hierarchy, kck));
        wpa.eapol(
            STA,
            AP,
            &key_message(M2 | version, &SNONCE, key_data, mic, mic_len),
        );
    }

    /// Message 3 wrapping `gtk` (key id 1) in a GTK KDE under `ptk`'s KEK.
    fn message_3(version: u16, hierarchy: KeyHierarchy, ptk: &Ptk, gtk: &[u8]) -> Vec<u8> {
        let mut plain = [
            &[0xdd, 6 + gtk.len() as u8, 0x00, 0x0f, 0xac, 1, 1, 0][..],
            gtk,
        ]
        .concat();
        while plain.len() % 8 != 0 || plain.len() < 16 {
            plain.push(if plain.len() % 8 == 0 { 0xdd } else { 0 });
        }
        let info = M1 | KEY_MIC | KEY_ENCRYPTED_DATA | 0x0240 | version;
        let mic_len = if hierarchy == KeyHierarchy::Sha384 {
            24
        } else {
            16
        };
        let wrapped = wrap(ptk.kek(), &plain);
        key_message(
            info,
            &ANONCE,
            &wrapped,
            Some((hierarchy, ptk.kck())),
            mic_len,
        )
    }

    /// AES key wrap (RFC 3394 §2.2.1) under a 128- or 256-bit KEK, for building
    /// messages 3.
    fn wrap(kek: &[u8], plain: &[u8]) -> Vec<u8> {
        use aes::cipher::BlockEncrypt;
        let encrypt = |block: &mut [u8; 16]| match kek.len() {
            16 => Aes128::new_from_slice(kek)
                .unwrap()
                .encrypt_block(GenericArray::from_mut_slice(block)),
            _ => aes::Aes256::new_from_slice(kek)
                .unwrap()
                .encrypt_block(GenericArray::from_mut_slice(block)),
        };
        let n = plain.len() / 8;
        let mut a = [0xa6u8; 8];
        let mut r: Vec<[u8; 8]> = plain.chunks(8).map(|c| c.try_into().unwrap()).collect();
        for j in 0..6u64 {
            for i in 1..=n {
                let mut block = [0u8; 16];
                block[..8].copy_from_slice(&a);
                block[8..].copy_from_slice(&r[i - 1]);
                encrypt(&mut block);
                let t = (n as u64) * j + i as u64;
                for (x, y) in a.iter_mut().zip(block[..8].iter().zip(t.to_be_bytes())) {
                    *x = y.0 ^ y.1;
                }
                r[i - 1].copy_from_slice(&block[8..]);
            }
        }
        [&a[..], &r.concat()].concat()
    }

    #[test]
    fn the_shared_aead_sealer_is_the_hand_written_ccmp() {
        let tk = [0x3d; 16];
        let by_hand = protected_frame(&tk, 0x0102_0304_0506, b"payload");
        let a3 = [2, 0, 0, 0, 0x5a, 0xfe];
        let key = TemporalKey::Ccmp(tk);
        let sealed = aes_frame(&key, 0x09, [AP, STA, a3], 0, 0x0102_0304_0506, b"payload");
        assert_eq!(sealed, by_hand);
    }

    #[test]
    fn gcmp_and_ccmp_256_stations_and_their_group_key() {
        let pmk = lab_pmk();
        let plain = b"\xaa\xaa\x03\x00\x00\x00\x08\x00 an IPv4 packet".to_vec();
        for (suite, cipher) in [
            (8, Cipher::Gcmp128),
            (9, Cipher::Gcmp256),
            (10, Cipher::Ccmp256),
        ] {
            let mut wpa = wpa_with(&[lab_key()]);
            let sha1 = KeyHierarchy::Sha1;
            let ptk = sha1.ptk(&pmk, (AP, STA), &ANONCE, &SNONCE, cipher).unwrap();
            assert_eq!(ptk.tk.cipher(), cipher);
            // The network's group cipher is GCMP-256 whatever the station's pairwise.
            let rsn = rsn::tests::rsn_element_of(9, suite, &[2]);
            first_messages(&mut wpa, WPA2, (sha1, ptk.kck()), &rsn);
            assert_eq!(wpa.stats().handshakes, 1, "{cipher:?}");
            let own = to_ap(AP, &ptk.tk, &plain);
            assert_eq!(wpa.decrypt(&own, 26), Ok(plain.clone()), "{cipher:?}");
            let mut bent = own.clone();
            bent[40] ^= 1;
            assert_eq!(
                wpa.decrypt(&bent, 26),
                Err(NotDecrypted::IntegrityCheckFailed)
            );
            // The same key bytes as another cipher of their length open nothing.
            let other = match ptk.tk {
                TemporalKey::Gcmp(k) => TemporalKey::Ccmp(k),
                TemporalKey::Gcmp256(k) => TemporalKey::Ccmp256(k),
                TemporalKey::Ccmp256(k) => TemporalKey::Gcmp256(k),
                other => panic!("{other:?}"),
            };
            assert_eq!(
                wpa.decrypt(&to_ap(AP, &other, &plain), 26),
                Err(NotDecrypted::IntegrityCheckFailed),
                "{cipher:?}"
            );

            let gtk = [0x47; 32];
            let group = from_ap_to_all(AP, &TemporalKey::Gcmp256(gtk), 1, b"arp");
            assert_eq!(wpa.decrypt(&group, 26), Err(NotDecrypted::GroupAddressed));
            wpa.eapol(AP, STA, &message_3(WPA2, sha1, &ptk, &gtk));
            assert_eq!(wpa.decrypt(&group, 26), Ok(b"arp".to_vec()), "{cipher:?}");
        }
    }

    #[test]
    fn given_temporal_keys_open_gcmp_and_ccmp_256_frames() {
        let long = [0x6c; 32];
        let short = [0x6d; 16];
        let mut wpa = wpa_with(&[
            WlanKey::Tk(GivenTk::Bits256(long)),
            WlanKey::Tk(GivenTk::Bits128(short)),
        ]);
        for key in [
            TemporalKey::Gcmp256(long),
            TemporalKey::Ccmp256(long),
            TemporalKey::Gcmp(short),
            TemporalKey::Ccmp(short),
        ] {
            assert_eq!(
                wpa.decrypt(&to_ap(AP, &key, b"x"), 26),
                Ok(b"x".to_vec()),
                "{key:?}"
            );
        }
        let stranger = to_ap(AP, &TemporalKey::Gcmp([1; 16]), b"x");
        assert_eq!(wpa.decrypt(&stranger, 26), Err(NotDecrypted::NoKey));
    }

    #[test]
    fn sha384_and_owe_handshakes_take_pmks_of_their_length() {
        let pmk_384 = [0x38; 48];
        let sha384 = KeyHierarchy::Sha384;
        let ptk = sha384
            .ptk(&pmk_384, (AP, STA), &ANONCE, &SNONCE, Cipher::Gcmp256)
            .unwrap();
        let rsn = rsn::tests::rsn_element_of(9, 9, &[12]);
        // A 384-bit PMK given as such, or as the first 384 bits of an MSK.
        let msk = [&pmk_384[..], &[0x11; 16]].concat();
        for key in [WlanKey::Psk384(pmk_384), WlanKey::Msk(msk)] {
            let mut wpa = wpa_with(&[WlanKey::Psk([0x38; 32]), key]);
            first_messages(&mut wpa, SAE, (sha384, ptk.kck()), &rsn);
            assert_eq!(wpa.stats().handshakes, 1);
            assert_eq!(
                wpa.decrypt(&to_ap(AP, &ptk.tk, b"x"), 26),
                Ok(b"x".to_vec())
            );
            let gtk = [0x49; 32];
            wpa.eapol(AP, STA, &message_3(SAE, sha384, &ptk, &gtk));
            let group = from_ap_to_all(AP, &TemporalKey::Gcmp256(gtk), 1, b"arp");
            assert_eq!(wpa.decrypt(&group, 26), Ok(b"arp".to_vec()));
        }
        // Only a 256-bit key: the handshake matches none.
        let mut wpa = wpa_with(&[WlanKey::Psk([0x38; 32])]);
        first_messages(&mut wpa, SAE, (sha384, ptk.kck()), &rsn);
        assert_eq!((wpa.stats().handshakes, wpa.stats().wrong_key), (0, 1));

        // OWE with group 19: its PMK as a wpa-psk key, HMAC-SHA256 MICs.
        let pmk = [0x0e; 32];
        let hmac = KeyHierarchy::Sha256Hmac;
        let ptk = hmac
            .ptk(&pmk, (AP, STA), &ANONCE, &SNONCE, Cipher::Ccmp128)
            .unwrap();
        let mut wpa = wpa_with(&[WlanKey::Psk(pmk)]);
        first_messages(&mut wpa, SAE, (hmac, ptk.kck()), &rsn_element(&[18]));
        assert_eq!(wpa.stats().handshakes, 1);
        assert_eq!(
            wpa.decrypt(&to_ap(AP, &ptk.tk, b"x"), 26),
            Ok(b"x".to_vec())
        );
    }

    const AP2: Mac = [2, 0, 0, 0, 0x5a, 2];
    const MDE: [u8; 5] = [rsn::ELEMENT_MOBILITY_DOMAIN, 3, 0x34, 0x12, 1];
    const R0KH_ID: &[u8] = b"ap1.lab.example";

    /// FTE subelements: R1KH-ID `r1kh`, the R0KH-ID, and a GTK subelement if given.
    fn ft_subelements(r1kh: Mac, gtk: Option<(u8, &[u8])>) -> Vec<u8> {
        let mut subs = [&[1, 6][..], &r1kh].concat();
        if let Some((id, wrapped)) = gtk {
            subs.extend_from_slice(&[2, 11 + wrapped.len() as u8, id, 0, 16]);
            subs.extend_from_slice(&[0; 8]);
            subs.extend_from_slice(wrapped);
        }
        subs.extend_from_slice(&[3, R0KH_ID.len() as u8]);
        subs.extend_from_slice(R0KH_ID);
        subs
    }

    fn ft_holder() -> ft::R0Holder {
        ft::R0Holder {
            ssid: b"lab".to_vec(),
            mdid: [0x34, 0x12],
            r0kh_id: R0KH_ID.to_vec(),
        }
    }

    /// A reassociation request to `AP2` whose FTE MIC is made with `kck`.
    fn reassociation_request(kck: &[u8], anonce: [u8; 32], snonce: [u8; 32]) -> Vec<u8> {
        let rsne = rsn::tests::rsn_element_of(4, 4, &[4]);
        let subs = ft_subelements(AP2, None);
        let zeroed = rsn::tests::fte([0; 16], anonce, snonce, &subs);
        let mic = ft::fte_mic(kck, (AP2, STA), 5, &[&rsne, &MDE, &zeroed]);
        let fte = rsn::tests::fte(mic.try_into().unwrap(), anonce, snonce, &subs);
        [&rsne[..], &MDE, &fte].concat()
    }

    fn management<'a>(subtype: u8, a1: Mac, a2: Mac, elements: &'a [u8]) -> ManagementFrame<'a> {
        ManagementFrame {
            subtype,
            a1,
            a2,
            bssid: AP2,
            elements,
        }
    }

    #[test]
    fn fast_transition_first_association_then_a_roam() {
        let pmk = lab_pmk();
        let r0 = ft::pmk_r0(&pmk, &ft_holder(), STA).unwrap();
        let ptk = ft::ptk(
            &ft::pmk_r1(&r0, AP, STA),
            &SNONCE,
            &ANONCE,
            (AP, STA),
            Cipher::Ccmp128,
        )
        .unwrap();
        let key_data = [
            &rsn::tests::rsn_element_of(4, 4, &[4])[..],
            &MDE,
            &rsn::tests::fte([0; 16], [0; 32], [0; 32], &ft_subelements(AP, None)),
        ]
        .concat();
        let mut wpa = wpa_with(&[lab_key()]);
        // The PMK-R0 is bound to the SSID: the one the access point names, else the
        // passphrase's.
        wpa.learn_ssid(AP, b"other");
        let cmac = (KeyHierarchy::Sha256, ptk.kck());
        first_messages(&mut wpa, SHA256, cmac, &key_data);
        assert_eq!((wpa.stats().handshakes, wpa.stats().wrong_key), (0, 1));
        let mut wpa = wpa_with(&[lab_key()]);
        wpa.learn_ssid(AP, b"lab");
        first_messages(&mut wpa, SHA256, cmac, &key_data);
        assert_eq!(wpa.stats().handshakes, 1);
        assert_eq!(
            wpa.decrypt(&to_ap(AP, &ptk.tk, b"x"), 26),
            Ok(b"x".to_vec())
        );

        // The roam: no EAPOL, the reassociation's FTE gives the nonces.
        let (anonce, snonce) = ([0xa2; 32], [0x6b; 32]);
        let pmk_r1 = ft::pmk_r1(&r0, AP2, STA);
        let ptk2 = ft::ptk(&pmk_r1, &snonce, &anonce, (AP2, STA), Cipher::Ccmp128).unwrap();
        let frame = to_ap(AP2, &ptk2.tk, b"y");
        assert_eq!(wpa.decrypt(&frame, 26), Err(NotDecrypted::NoKey));
        // A request whose MIC another key made proves nothing.
        let forged = reassociation_request(&[9; 16], anonce, snonce);
        wpa.management(&management(2, AP2, STA, &forged));
        assert_eq!(wpa.stats().wrong_key, 1);
        assert_eq!(wpa.decrypt(&frame, 26), Err(NotDecrypted::NoKey));
        let request = reassociation_request(ptk2.kck(), anonce, snonce);
        wpa.management(&management(2, AP2, STA, &request));
        assert_eq!(wpa.stats().handshakes, 2);
        assert_eq!(wpa.decrypt(&frame, 26), Ok(b"y".to_vec()));

        // The response's FTE wraps AP2's group key under the new KEK.
        let gtk = [0x4a; 16];
        let group = from_ap_to_all(AP2, &TemporalKey::Ccmp(gtk), 2, b"arp");
        assert_eq!(wpa.decrypt(&group, 26), Err(NotDecrypted::GroupAddressed));
        let wrapped = wrap(ptk2.kek(), &gtk);
        let subs = ft_subelements(AP2, Some((2, &wrapped)));
        let fte = rsn::tests::fte([0; 16], anonce, snonce, &subs);
        let response = [&rsn::tests::rsn_element_of(4, 4, &[4])[..], &MDE, &fte].concat();
        wpa.management(&management(3, STA, AP2, &response));
        assert_eq!(wpa.decrypt(&group, 26), Ok(b"arp".to_vec()));
    }

    #[test]
    fn ft_over_802_1x_takes_the_second_half_of_the_msk() {
        let msk: Vec<u8> = (0..64).collect();
        let r0 = ft::pmk_r0(&msk[32..], &ft_holder(), STA).unwrap();
        let pmk_r1 = ft::pmk_r1(&r0, AP, STA);
        let ptk = ft::ptk(&pmk_r1, &SNONCE, &ANONCE, (AP, STA), Cipher::Ccmp128).unwrap();
        let key_data = [
            &rsn::tests::rsn_element_of(4, 4, &[3])[..],
            &MDE,
            &rsn::tests::fte([0; 16], [0; 32], [0; 32], &ft_subelements(AP, None)),
        ]
        .concat();
        let mut wpa = wpa_with(&[WlanKey::Msk(msk)]);
        wpa.learn_ssid(AP, b"lab");
        first_messages(
            &mut wpa,
            SHA256,
            (KeyHierarchy::Sha256, ptk.kck()),
            &key_data,
        );
        assert_eq!(wpa.stats().handshakes, 1);
        assert_eq!(
            wpa.decrypt(&to_ap(AP, &ptk.tk, b"x"), 26),
            Ok(b"x".to_vec())
        );
        // Without its mobility domain element the handshake cannot be followed.
        let mut wpa = wpa_with(&[lab_key()]);
        let bare = rsn::tests::rsn_element_of(4, 4, &[3]);
        first_messages(&mut wpa, SHA256, (KeyHierarchy::Sha256, ptk.kck()), &bare);
        assert_eq!(wpa.stats().unsupported, 1);
    }

    #[test]
    fn ccmp_frames_whose_packet_number_looks_like_a_tkip_iv_open() {
        // PN0 0x47 and PN1 0x67: PN1 is the WEP seed TKIP would put after a TSC1 of
        // 0x47 (one CCMP frame in about 256 of a real capture looks so).
        let pmk = lab_pmk();
        let mut wpa = wpa_with(&[lab_key()]);
        handshake(&mut wpa, &pmk, false);
        let frame = protected_frame(&tk_of(&pmk), 0x6747, b"lookalike");
        assert_eq!(tkip::Header::of(&frame[26..]), tkip::Header::Either);
        assert_eq!(wpa.decrypt(&frame, 26), Ok(b"lookalike".to_vec()));
        // And a TKIP frame whose TSC0 is zero, which looks like a CCMP header.
        let key = [0x3e; 32];
        let tkip = {
            let mut f = tkip_frame(&key, 0, None, b"x");
            let body = tkip::seal(&key, 0, 0x4700, STA, (ROUTER_OF_TKIP, STA, 6), false, b"x");
            f.truncate(26);
            f.extend(body);
            f
        };
        assert_eq!(tkip::Header::of(&tkip[26..]), tkip::Header::Either);
        let mut wpa = wpa_with(&[WlanKey::Tk(GivenTk::Bits256(key)), lab_key()]);
        handshake(&mut wpa, &pmk, false);
        assert_eq!(wpa.decrypt(&tkip, 26), Ok(b"x".to_vec()));
    }

    /// The router of [`tkip_frame`]'s frames to the access point (their DA).
    const ROUTER_OF_TKIP: Mac = [2, 0, 0, 0, 0x5a, 0xfe];

    #[test]
    fn a_tdls_setup_confirm_keys_the_direct_link() {
        let tpk = tdls::tests::their_tpk();
        let confirm = tdls::tests::confirm(tpk.kck(), 0);
        let (i, r) = (tdls::tests::INITIATOR, tdls::tests::RESPONDER);
        let direct = aes_frame(&tpk.tk, 0x00, [r, i, tdls::tests::BSSID], 0, 1, b"ping");
        let mut wpa = wpa_with(&[lab_key()]);
        assert_eq!(wpa.decrypt(&direct, 26), Err(NotDecrypted::NoKey));
        wpa.tdls(&confirm);
        // Relayed by the access point: the same frame again counts once.
        wpa.tdls(&confirm);
        assert_eq!(wpa.stats().handshakes, 1);
        assert_eq!(wpa.decrypt(&direct, 26), Ok(b"ping".to_vec()));
        let back = aes_frame(&tpk.tk, 0x00, [i, r, tdls::tests::BSSID], 0, 1, b"pong");
        assert_eq!(wpa.decrypt(&back, 26), Ok(b"pong".to_vec()));
    }
}
