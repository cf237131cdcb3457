//! EAPOL-Key frames of the 4-way and group key handshakes (IEEE 802.11-2020 §12.7.2)
//! and the key hierarchies that turn a PMK into a PTK and check a frame's MIC
//! (§12.7.1): pure functions over bytes, no state.

use aes::cipher::BlockDecrypt;
use aes::Aes128;
use ccm::aead::generic_array::GenericArray;
use ccm::aead::KeyInit;
use cmac::{Cmac, Mac as _};
// The crate, not ring's module of the same name below.
use ::hmac::Hmac;
use md5::Md5;
use rc4::consts::U32;
use rc4::{Rc4, StreamCipher};
use ring::hmac;

use super::{Mac, TemporalKey};
// Key data is elements and KDEs, laid out as elements (§12.7.2).
use crate::net::wlan::elements;

/// EAPOL packet type of a key frame.
pub(super) const EAPOL_KEY: u8 = 3;
/// Key descriptor types: RSN (WPA2, WPA3) and the WPA of before 802.11i (WPA1).
pub(super) const DESCRIPTOR_RSN: u8 = 2;
pub(super) const DESCRIPTOR_WPA: u8 = 254;
/// Key information bits.
const KEY_VERSION_MASK: u16 = 0x0007;
pub(super) const KEY_PAIRWISE: u16 = 0x0008;
/// The key id of a WPA1 group key message.
const KEY_INDEX_MASK: u16 = 0x0030;
pub(super) const KEY_ACK: u16 = 0x0080;
pub(super) const KEY_MIC: u16 = 0x0100;
pub(super) const KEY_ENCRYPTED_DATA: u16 = 0x1000;
/// Key descriptor versions (Table 12-11): the AKM says (SAE, OWE, …); HMAC-MD5 MIC
/// and RC4-encrypted key data (a TKIP pairwise cipher); HMAC-SHA1-128 MIC and AES
/// key wrap (AKMs 1 and 2); AES-128-CMAC MIC and AES key wrap (AKMs 3 to 6).
const VERSION_AKM_DEFINED: u16 = 0;
const VERSION_HMAC_MD5_RC4: u16 = 1;
const VERSION_HMAC_SHA1_AES: u16 = 2;
const VERSION_AES_CMAC: u16 = 3;
/// AKM suite types (Table 9-151) with OUI 00-0F-AC: SAE, and those of fast BSS
/// transition, whose keys come from a PMK-R0/R1 hierarchy not followed here.
pub(super) const AKM_SAE: u8 = 8;
const AKMS_FAST_TRANSITION: [u8; 6] = [3, 4, 9, 13, 19, 25];
/// Offsets in an EAPOL-Key frame from the start of the 802.1X header, for the
/// 16-byte MIC of the AKMs followed here (SHA-384 ones have 24 bytes).
const INFO_AT: usize = 5;
const KEY_LENGTH_AT: usize = 7;
const NONCE_AT: usize = 17;
const KEY_IV_AT: usize = 49;
pub(super) const MIC_AT: usize = 81;
pub(super) const KEY_DATA_LEN_AT: usize = 97;
pub(super) const KEY_DATA_AT: usize = 99;
/// The GTK key data encapsulation: vendor element, OUI 00-0F-AC, data type 1.
const KDE_GTK: [u8; 4] = [0x00, 0x0f, 0xac, 0x01];
const ELEMENT_VENDOR: u8 = 0xdd;
const ELEMENT_RSN: u8 = 0x30;
const OUI_IEEE: [u8; 3] = [0x00, 0x0f, 0xac];

/// An EAPOL-Key frame of the RSN or WPA descriptor, from its 802.1X header to the
/// end of its key data.
#[derive(Clone, Copy)]
pub(super) struct KeyFrame<'a> {
    bytes: &'a [u8],
    pub info: u16,
}

impl<'a> KeyFrame<'a> {
    /// The key frame an EAPOL frame holds, `None` for other EAPOL packets and frames
    /// cut short.
    pub fn parse(eapol: &'a [u8]) -> Option<Self> {
        let (&packet_type, len) = (eapol.get(1)?, eapol.get(2..4)?);
        let len = 4 + usize::from(u16::from_be_bytes([len[0], len[1]]));
        let bytes = eapol.get(..len)?;
        if packet_type != EAPOL_KEY
            || bytes.len() < KEY_DATA_AT
            || !matches!(bytes[4], DESCRIPTOR_RSN | DESCRIPTOR_WPA)
        {
            return None;
        }
        let info = u16::from_be_bytes([bytes[INFO_AT], bytes[INFO_AT + 1]]);
        Some(KeyFrame { bytes, info })
    }

    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    pub fn version(&self) -> u16 {
        self.info & KEY_VERSION_MASK
    }

    pub fn descriptor(&self) -> u8 {
        self.bytes[4]
    }

    /// Whether the access point sends a GTK in the key data: RSN's message 3 and
    /// group key message 1 say so with the encrypted key data bit; WPA1, which has no
    /// such bit and no GTK in message 3, in its group key message 1.
    pub fn carries_group_key(&self) -> bool {
        let sent = KEY_MIC | KEY_ACK;
        if self.info & sent != sent {
            return false;
        }
        match self.descriptor() {
            DESCRIPTOR_WPA => self.info & KEY_PAIRWISE == 0 && !self.key_data().is_empty(),
            _ => self.info & KEY_ENCRYPTED_DATA != 0,
        }
    }

    /// The key length field: of the pairwise cipher's key, or in a WPA1 group key
    /// message of the GTK.
    fn key_length(&self) -> usize {
        usize::from(u16::from_be_bytes([
            self.bytes[KEY_LENGTH_AT],
            self.bytes[KEY_LENGTH_AT + 1],
        ]))
    }

    /// The EAPOL-Key IV, which keys the RC4 of version 1's key data.
    fn key_iv(&self) -> &'a [u8] {
        &self.bytes[KEY_IV_AT..KEY_IV_AT + 16]
    }

    pub fn nonce(&self) -> [u8; 32] {
        let mut nonce = [0u8; 32];
        nonce.copy_from_slice(&self.bytes[NONCE_AT..NONCE_AT + 32]);
        nonce
    }

    /// The MIC field.
    pub fn mic(&self) -> [u8; 16] {
        let mut mic = [0u8; 16];
        mic.copy_from_slice(&self.bytes[MIC_AT..MIC_AT + 16]);
        mic
    }

    /// The frame with its MIC field zeroed, over which the MIC is made.
    pub fn with_zero_mic(&self) -> Vec<u8> {
        let mut zeroed = self.bytes.to_vec();
        zeroed[MIC_AT..MIC_AT + 16].fill(0);
        zeroed
    }

    /// The key data, as long as the frame holds it.
    pub fn key_data(&self) -> &'a [u8] {
        let len =
            u16::from_be_bytes([self.bytes[KEY_DATA_LEN_AT], self.bytes[KEY_DATA_LEN_AT + 1]]);
        let end = (KEY_DATA_AT + usize::from(len)).min(self.bytes.len());
        &self.bytes[KEY_DATA_AT..end]
    }
}

/// How a handshake's PTK is derived and its MICs made (§12.7.1.3, §12.7.2): chosen
/// by the key descriptor version of message 2 and the AKM of the station's RSN
/// element it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeyHierarchy {
    /// A TKIP pairwise cipher (version 1: WPA1, or WPA2 with TKIP): PRF-SHA1 to a
    /// 512-bit PTK, HMAC-MD5 MICs, RC4-encrypted key data.
    Tkip,
    /// PSK and 802.1X (AKMs 2 and 1, version 2): PRF-SHA1, HMAC-SHA1-128 MICs.
    Sha1,
    /// PSK-SHA256 and 802.1X-SHA256 of 802.11w (AKMs 6 and 5, version 3) and SAE of
    /// WPA3-Personal (AKM 8, version 0): KDF-SHA256, AES-128-CMAC MICs.
    Sha256,
}

impl KeyHierarchy {
    /// The hierarchy of a message 2 of key descriptor `version` whose station names
    /// `akm` ([`akm`]), `None` for those not followed: fast BSS transition, and the
    /// AKM-defined ones other than SAE (OWE, Suite B, SHA-384).
    pub fn of(version: u16, akm: Option<u8>) -> Option<Self> {
        if akm.is_some_and(|akm| AKMS_FAST_TRANSITION.contains(&akm)) {
            return None;
        }
        match (version, akm) {
            (VERSION_HMAC_MD5_RC4, _) => Some(KeyHierarchy::Tkip),
            (VERSION_HMAC_SHA1_AES, _) => Some(KeyHierarchy::Sha1),
            (VERSION_AES_CMAC, _) | (VERSION_AKM_DEFINED, Some(AKM_SAE)) => {
                Some(KeyHierarchy::Sha256)
            }
            _ => None,
        }
    }

    /// The PTK of a PMK (§12.7.1.3): KCK, KEK and, for CCMP-128, a 16-byte TK; for
    /// TKIP a 32-byte one, its Michael keys with it.
    pub fn ptk(
        self,
        pmk: &[u8; 32],
        aa: Mac,
        spa: Mac,
        anonce: &[u8; 32],
        snonce: &[u8; 32],
    ) -> Ptk {
        let mut data = Vec::with_capacity(76);
        data.extend_from_slice(&aa.min(spa));
        data.extend_from_slice(&aa.max(spa));
        data.extend_from_slice(anonce.min(snonce));
        data.extend_from_slice(anonce.max(snonce));
        let mut out = [0u8; 64];
        let label = b"Pairwise key expansion";
        match self {
            KeyHierarchy::Tkip => prf_sha1(pmk, label, &data, &mut out),
            KeyHierarchy::Sha1 => prf_sha1(pmk, label, &data, &mut out[..48]),
            KeyHierarchy::Sha256 => kdf_sha256(pmk, label, &data, &mut out[..48]),
        }
        let part = |at: usize| -> [u8; 16] { out[at..at + 16].try_into().unwrap_or_default() };
        let tk = match self {
            KeyHierarchy::Tkip => TemporalKey::Tkip(out[32..].try_into().unwrap_or([0; 32])),
            _ => TemporalKey::Ccmp(part(32)),
        };
        Ptk {
            kck: part(0),
            kek: part(16),
            tk,
        }
    }

    /// Whether `frame`'s MIC is the one `kck` makes over it.
    pub fn mic_is_right(self, kck: &[u8; 16], frame: &KeyFrame<'_>) -> bool {
        self.mic(kck, &frame.with_zero_mic()) == frame.mic()
    }

    /// The MIC of an EAPOL-Key frame whose MIC field is zero (§12.7.2).
    pub fn mic(self, kck: &[u8; 16], zeroed: &[u8]) -> [u8; 16] {
        match self {
            KeyHierarchy::Tkip => {
                // HMAC takes keys of any length.
                let Ok(mut hmac) = <Hmac<Md5> as KeyInit>::new_from_slice(kck) else {
                    return [0; 16];
                };
                hmac.update(zeroed);
                hmac.finalize().into_bytes().into()
            }
            KeyHierarchy::Sha1 => {
                let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, kck);
                let tag = hmac::sign(&key, zeroed);
                tag.as_ref()[..16].try_into().unwrap_or_default()
            }
            KeyHierarchy::Sha256 => {
                let mut cmac = <Cmac<Aes128> as KeyInit>::new(GenericArray::from_slice(kck));
                cmac.update(zeroed);
                cmac.finalize().into_bytes().into()
            }
        }
    }

    /// The key id and GTK an access point's message sends ([`KeyFrame::carries_group_key`])
    /// in its key data, decrypted with `kek`: a GTK KDE in RSN's, the bare GTK (of the
    /// key length field's size) in WPA1's group key message.
    pub fn group_key(self, kek: &[u8; 16], key: &KeyFrame<'_>) -> Option<(u8, TemporalKey)> {
        let plain = match self {
            KeyHierarchy::Tkip => rc4_key_data(kek, key.key_iv(), key.key_data())?,
            _ => aes_key_unwrap(kek, key.key_data())?,
        };
        if key.descriptor() == DESCRIPTOR_WPA {
            let id = ((key.info & KEY_INDEX_MASK) >> 4) as u8;
            return Some((id, TemporalKey::of_bytes(plain.get(..key.key_length())?)?));
        }
        gtk_kde(&plain)
    }
}

/// The pairwise transient key of an association.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Ptk {
    /// Key confirmation key: the MICs of EAPOL-Key frames.
    pub kck: [u8; 16],
    /// Key encryption key: their key data.
    pub kek: [u8; 16],
    /// Temporal key: the station's unicast frames.
    pub tk: TemporalKey,
}

/// The AKM suite type a message 2 names: that of the station's RSN element in its
/// key data.
pub(super) fn akm(message_2: &KeyFrame<'_>) -> Option<u8> {
    rsn_akm(message_2.key_data())
}

/// The first AKM suite type of the first RSN element in `data` (a message 2's key
/// data holds the station's), when of OUI 00-0F-AC.
fn rsn_akm(data: &[u8]) -> Option<u8> {
    let rsn = elements(data).find(|(id, _)| *id == ELEMENT_RSN)?.1;
    // Version (2), group data cipher suite (4), pairwise suite count and list.
    let pairwise = usize::from(u16::from_le_bytes([*rsn.get(6)?, *rsn.get(7)?]));
    let akms_at = 8 + 4 * pairwise;
    let count = u16::from_le_bytes([*rsn.get(akms_at)?, *rsn.get(akms_at + 1)?]);
    let akm = rsn.get(akms_at + 2..akms_at + 6)?;
    (count > 0 && akm[..3] == OUI_IEEE).then_some(akm[3])
}

/// The GTK KDE of a message's decrypted key data (§12.7.2): its key id and GTK.
pub(super) fn gtk_kde(data: &[u8]) -> Option<(u8, TemporalKey)> {
    let (_, body) =
        elements(data).find(|(id, body)| *id == ELEMENT_VENDOR && body.starts_with(&KDE_GTK))?;
    Some((body.get(4)? & 0x03, TemporalKey::of_bytes(body.get(6..)?)?))
}

/// RC4 of key data under the EAPOL-Key IV and the KEK, the first 256 bytes of key
/// stream skipped (§12.7.2, key descriptor version 1).
fn rc4_key_data(kek: &[u8; 16], key_iv: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    let key: [u8; 32] = [key_iv, &kek[..]].concat().try_into().ok()?;
    let mut rc4 = <Rc4<U32> as KeyInit>::new(&key.into());
    rc4.apply_keystream(&mut [0u8; 256]);
    let mut plain = data.to_vec();
    rc4.apply_keystream(&mut plain);
    Some(plain)
}

/// AES key unwrap (RFC 3394 §2.2.2) of `wrapped` under `kek`; `None` when the
/// integrity check value does not come out.
pub(super) fn aes_key_unwrap(kek: &[u8; 16], wrapped: &[u8]) -> Option<Vec<u8>> {
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
            cipher.decrypt_block(GenericArray::from_mut_slice(&mut block));
            a.copy_from_slice(&block[..8]);
            r[i - 1].copy_from_slice(&block[8..]);
        }
    }
    (a == [0xa6; 8]).then(|| r.concat())
}

/// The 802.11 PRF (§12.7.1.2): HMAC-SHA1(K, A || 0 || B || i), i = 0, 1, …
fn prf_sha1(key: &[u8], label: &[u8], data: &[u8], out: &mut [u8]) {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
    for (i, chunk) in out.chunks_mut(20).enumerate() {
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(label);
        ctx.update(&[0]);
        ctx.update(data);
        ctx.update(&[i as u8]);
        chunk.copy_from_slice(&ctx.sign().as_ref()[..chunk.len()]);
    }
}

/// The 802.11 KDF with SHA-256 (§12.7.1.7.2): HMAC-SHA256(K, i || label || context ||
/// length), i = 1, 2, … and the length in bits, both 16-bit little-endian.
fn kdf_sha256(key: &[u8], label: &[u8], context: &[u8], out: &mut [u8]) {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let bits = (out.len() * 8) as u16;
    for (i, chunk) in out.chunks_mut(32).enumerate() {
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(&(i as u16 + 1).to_le_bytes());
        ctx.update(label);
        ctx.update(context);
        ctx.update(&bits.to_le_bytes());
        chunk.copy_from_slice(&ctx.sign().as_ref()[..chunk.len()]);
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn prf_as_ieee_802_11_annex_j() {
        // The first HMAC-SHA1 PRF test vector of IEEE 802.11's annex J.
        let mut out = [0u8; 64];
        prf_sha1(&[0x0b; 20], b"prefix", b"Hi There", &mut out);
        assert_eq!(
            out.to_vec(),
            hex(
                "bcd4c650b30b9684951829e0d75f9d54b862175ed9f00606e17d8da35402ffee\
                 75df78c3d31e0f889f012120c0862beb67753e7439ae242edb8373698356cf5a"
            )
        );
    }

    #[test]
    fn ptk_as_ieee_802_11_annex_j() {
        // The pairwise key derivation sample of IEEE 802.11's annex J (PRF-SHA1).
        let pmk: [u8; 32] = hex("0dc0d6eb90555ed6419756b9a15ec3e3209b63df707dd508d14581f8982721af")
            .try_into()
            .unwrap();
        let anonce = hex("e0e1e2e3e4e5e6e7e8e9f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405");
        let snonce = hex("c0c1c2c3c4c5c6c7c8c9d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5");
        let ptk = KeyHierarchy::Sha1.ptk(
            &pmk,
            [0xa0, 0xa1, 0xa1, 0xa3, 0xa4, 0xa5],
            [0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5],
            &anonce.try_into().unwrap(),
            &snonce.try_into().unwrap(),
        );
        assert_eq!(ptk.kck.to_vec(), hex("379f9852d0199236b94e407ce4c00ec8"));
        assert_eq!(ptk.kek.to_vec(), hex("47c9edc01c2c6e5b4910caddfb3e51a7"));
        let tk = hex("b2360c79e9710fdd58bea93deaf06599").try_into().unwrap();
        assert_eq!(ptk.tk, TemporalKey::Ccmp(tk));
    }

    #[test]
    fn kdf_sha256_as_iwds_test_vector() {
        // iwd's unit/test-kdf-sha256.c: 256 bits of "KDF test" over "data", key "abc".
        let mut out = [0u8; 32];
        kdf_sha256(b"abc", b"KDF test", b"data", &mut out);
        assert_eq!(
            out.to_vec(),
            hex("9efd6eb02758cb7370a86f8a305375d41f8f21c2e47447f584f7d2291143d4d4")
        );
    }

    #[test]
    fn kdf_sha256_as_its_definition_spells_it() {
        // One block and a half: each block HMAC-SHA256(K, i || label || context ||
        // 384), written out with ring's HMAC directly.
        let key = [0x42u8; 32];
        let mut out = [0u8; 48];
        kdf_sha256(&key, b"Pairwise key expansion", b"context", &mut out);
        let hmac_key = hmac::Key::new(hmac::HMAC_SHA256, &key);
        for (i, at) in [(1u8, 0usize), (2, 32)] {
            let block = [
                &[i, 0][..],
                b"Pairwise key expansion",
                b"context",
                &[0x80, 0x01],
            ]
            .concat();
            let tag = hmac::sign(&hmac_key, &block);
            let n = 32.min(48 - at);
            assert_eq!(&out[at..at + n], &tag.as_ref()[..n]);
        }
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
    fn tkip_mics_are_hmac_md5() {
        // RFC 2202's first HMAC-MD5 test case: a 16-byte key, "Hi There".
        let mic = KeyHierarchy::Tkip.mic(&[0x0b; 16], b"Hi There");
        assert_eq!(mic.to_vec(), hex("9294727a3638bb1c13f48ef8158bfc9d"));
    }

    #[test]
    fn the_gtk_kde_among_other_elements() {
        let rsn = [0x30, 2, 1, 0];
        let gtk = [0xdd, 22, 0x00, 0x0f, 0xac, 1, 2, 0];
        let data = [&rsn[..], &gtk, &[0x77; 16], &[0xdd, 0]].concat();
        assert_eq!(gtk_kde(&data), Some((2, TemporalKey::Ccmp([0x77; 16]))));
        // TKIP's 32 bytes; a GTK of another length, a KDE cut short, none at all.
        let long = [&[0xdd, 38, 0x00, 0x0f, 0xac, 1, 1, 0][..], &[0x77; 32]].concat();
        assert_eq!(gtk_kde(&long), Some((1, TemporalKey::Tkip([0x77; 32]))));
        let odd = [&[0xdd, 30, 0x00, 0x0f, 0xac, 1, 1, 0][..], &[0x77; 24]].concat();
        assert_eq!(gtk_kde(&odd), None);
        assert_eq!(gtk_kde(&data[..20]), None);
        assert_eq!(gtk_kde(&rsn), None);
    }

    /// An RSN element: CCMP group and pairwise ciphers, the AKMs given.
    pub fn rsn_element(akms: &[u8]) -> Vec<u8> {
        let mut body = vec![1, 0, 0x00, 0x0f, 0xac, 4, 1, 0, 0x00, 0x0f, 0xac, 4];
        body.extend_from_slice(&(akms.len() as u16).to_le_bytes());
        for akm in akms {
            body.extend_from_slice(&[0x00, 0x0f, 0xac, *akm]);
        }
        body.extend_from_slice(&[0xc0, 0]); // MFPR | MFPC
        [&[ELEMENT_RSN, body.len() as u8][..], &body].concat()
    }

    /// A message 2 of key descriptor `version` whose key data is `key_data`.
    fn message_2(version: u16, key_data: &[u8]) -> Vec<u8> {
        let mut f = vec![1, EAPOL_KEY, 0, 0, DESCRIPTOR_RSN];
        f.extend_from_slice(&(KEY_PAIRWISE | KEY_MIC | version).to_be_bytes());
        f.resize(KEY_DATA_LEN_AT, 0);
        f.extend_from_slice(&(key_data.len() as u16).to_be_bytes());
        f.extend_from_slice(key_data);
        let len = (f.len() - 4) as u16;
        f[2..4].copy_from_slice(&len.to_be_bytes());
        f
    }

    #[test]
    fn the_key_hierarchy_by_descriptor_version_and_akm() {
        let of = |version, akms: &[u8]| {
            let frame = message_2(version, &rsn_element(akms));
            let frame = KeyFrame::parse(&frame).unwrap();
            KeyHierarchy::of(frame.version(), akm(&frame))
        };
        use KeyHierarchy::*;
        assert_eq!(of(2, &[2]), Some(Sha1), "PSK");
        assert_eq!(of(2, &[1]), Some(Sha1), "802.1X");
        assert_eq!(of(3, &[6]), Some(Sha256), "PSK-SHA256");
        assert_eq!(of(3, &[5]), Some(Sha256), "802.1X-SHA256");
        assert_eq!(of(0, &[8]), Some(Sha256), "SAE");
        assert_eq!(of(1, &[2]), Some(Tkip), "TKIP pairwise");
        assert_eq!(of(3, &[4]), None, "FT-PSK");
        assert_eq!(of(0, &[9]), None, "FT-SAE");
        assert_eq!(of(0, &[18]), None, "OWE");
        assert_eq!(of(0, &[24]), None, "SAE-EXT-KEY");
        // Version 0 says nothing without the station's RSN element; version 1 needs
        // none (WPA1's message 2 holds a WPA element instead).
        let bare = message_2(0, &[]);
        let bare = KeyFrame::parse(&bare).unwrap();
        assert_eq!(KeyHierarchy::of(bare.version(), akm(&bare)), None);
        let wpa1 = message_2(1, &[0xdd, 4, 0x00, 0x50, 0xf2, 1]);
        let wpa1 = KeyFrame::parse(&wpa1).unwrap();
        assert_eq!(KeyHierarchy::of(wpa1.version(), akm(&wpa1)), Some(Tkip));
    }

    #[test]
    fn rsn_elements_cut_short_or_odd_give_no_akm() {
        let rsn = rsn_element(&[8]);
        assert_eq!(rsn_akm(&rsn), Some(8));
        // The element's length cut: its first AKM ends at body byte 18.
        for cut in 0..rsn.len() {
            let mut short = rsn[..cut].to_vec();
            if let Some(len) = short.get_mut(1) {
                *len = (cut - 2) as u8;
            }
            assert_eq!(rsn_akm(&short).is_some(), cut >= 20, "{cut}");
        }
        let mut vendor = rsn.clone();
        vendor[16] = 0x50; // an AKM of another OUI
        assert_eq!(rsn_akm(&vendor), None);
        let after = [&[0xdd, 2, 1, 2][..], &rsn].concat();
        assert_eq!(rsn_akm(&after), Some(8), "after a vendor element");
    }

    #[test]
    fn cmac_mics_as_rfc_4493() {
        // RFC 4493 example 2: the CMAC of the SHA-256 hierarchy's MICs.
        let key = hex("2b7e151628aed2a6abf7158809cf4f3c");
        let mut cmac = <Cmac<Aes128> as KeyInit>::new(GenericArray::from_slice(&key));
        cmac.update(&hex("6bc1bee22e409f96e93d7e117393172a"));
        assert_eq!(
            cmac.finalize().into_bytes().to_vec(),
            hex("070a16b46b4d4144f79bdd9dd04a287c")
        );
    }
}
