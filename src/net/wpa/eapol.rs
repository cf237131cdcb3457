//! EAPOL-Key frames of the 4-way and group key handshakes (IEEE 802.11-2020 §12.7.2)
//! and the key hierarchies that turn a PMK into a PTK and check a frame's MIC
//! (§12.7.1): pure functions over bytes, no state.

use aes::cipher::BlockDecrypt;
use aes::{Aes128, Aes256};
use ccm::aead::generic_array::GenericArray;
use ccm::aead::KeyInit;
use cmac::{Cmac, Mac as _};
// The crate, not ring's module of the same name below.
use ::hmac::Hmac;
use md5::Md5;
use rc4::consts::U32;
use rc4::{Rc4, StreamCipher};
use ring::hmac;

use super::cipher::{Cipher, TemporalKey};
use super::rsn::Rsn;
use super::Mac;
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
/// AKM suite types (Table 9-151) with OUI 00-0F-AC.
pub(super) const AKM_FT_8021X: u8 = 3;
pub(super) const AKM_FT_PSK: u8 = 4;
pub(super) const AKM_SAE: u8 = 8;
pub(super) const AKM_FT_SAE: u8 = 9;
const AKM_SUITE_B: u8 = 11;
const AKM_SUITE_B_192: u8 = 12;
pub(super) const AKM_OWE: u8 = 18;
const AKM_PSK_SHA384: u8 = 20;
/// Fast BSS transition with the SHA-256 hierarchy, followed ([`super::ft`]) …
pub(super) const AKMS_FAST_TRANSITION: [u8; 3] = [AKM_FT_8021X, AKM_FT_PSK, AKM_FT_SAE];
/// … and those not followed: FT-802.1X-SHA384, FT-PSK-SHA384, FT-SAE-EXT-KEY.
const AKMS_FAST_TRANSITION_SHA384: [u8; 3] = [13, 19, 25];
/// Offsets in an EAPOL-Key frame from the start of the 802.1X header; those after the
/// MIC as they are with a 16-byte MIC (the SHA-384 AKMs' is 24 bytes, moving them).
const INFO_AT: usize = 5;
const KEY_LENGTH_AT: usize = 7;
const NONCE_AT: usize = 17;
const KEY_IV_AT: usize = 49;
pub(super) const MIC_AT: usize = 81;
#[cfg(test)]
pub(super) const KEY_DATA_LEN_AT: usize = 97;
pub(super) const KEY_DATA_AT: usize = 99;
/// MIC lengths of the AKMs followed: 16 bytes, 24 for the SHA-384 ones.
const MIC_LENGTHS: [usize; 2] = [16, 24];
/// The GTK key data encapsulation: vendor element, OUI 00-0F-AC, data type 1.
const KDE_GTK: [u8; 4] = [0x00, 0x0f, 0xac, 0x01];
const ELEMENT_VENDOR: u8 = 0xdd;

/// An EAPOL-Key frame of the RSN or WPA descriptor, from its 802.1X header to the
/// end of its key data.
#[derive(Clone, Copy)]
pub(super) struct KeyFrame<'a> {
    bytes: &'a [u8],
    pub info: u16,
    /// The MIC field's length, which the frame does not state (the AKM implies it):
    /// the one whose key data length field ends the key data where the frame ends.
    mic_len: usize,
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
        let fits = |mic_len: usize| {
            let at = MIC_AT + mic_len;
            let data_len = bytes.get(at..at + 2)?;
            let data_len = usize::from(u16::from_be_bytes([data_len[0], data_len[1]]));
            (at + 2 + data_len == bytes.len()).then_some(mic_len)
        };
        // A frame no MIC length fits exactly (padded, or its key data cut) is read
        // with the usual 16 bytes, its key data as far as it goes.
        let mic_len = MIC_LENGTHS.into_iter().find_map(fits).unwrap_or(16);
        Some(KeyFrame {
            bytes,
            info,
            mic_len,
        })
    }

    pub fn mic_len(&self) -> usize {
        self.mic_len
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
    pub fn mic(&self) -> &'a [u8] {
        &self.bytes[MIC_AT..MIC_AT + self.mic_len]
    }

    /// The frame with its MIC field zeroed, over which the MIC is made.
    pub fn with_zero_mic(&self) -> Vec<u8> {
        let mut zeroed = self.bytes.to_vec();
        zeroed[MIC_AT..MIC_AT + self.mic_len].fill(0);
        zeroed
    }

    /// The key data, as long as the frame holds it.
    pub fn key_data(&self) -> &'a [u8] {
        let len_at = MIC_AT + self.mic_len;
        let len = u16::from_be_bytes([self.bytes[len_at], self.bytes[len_at + 1]]);
        let end = (len_at + 2 + usize::from(len)).min(self.bytes.len());
        &self.bytes[len_at + 2..end]
    }
}

/// How a handshake's PTK is derived and its MICs made (§12.7.1.3, §12.7.2, Table
/// 12-11): chosen by the key descriptor version of message 2 and the AKM of the
/// station's RSN element it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeyHierarchy {
    /// A TKIP pairwise cipher (version 1: WPA1, or WPA2 with TKIP): PRF-SHA1 to a
    /// 512-bit PTK, HMAC-MD5 MICs, RC4-encrypted key data.
    Tkip,
    /// PSK and 802.1X (AKMs 2 and 1, version 2): PRF-SHA1, HMAC-SHA1-128 MICs.
    Sha1,
    /// PSK-SHA256 and 802.1X-SHA256 of 802.11w (AKMs 6 and 5, version 3), SAE of
    /// WPA3-Personal (AKM 8, version 0), and fast BSS transition over PSK, 802.1X and
    /// SAE (AKMs 4, 3 and 9; their PTK comes from a PMK-R1, [`super::ft`]):
    /// KDF-SHA256, AES-128-CMAC MICs.
    Sha256,
    /// 802.1X Suite B (AKM 11) and OWE with group 19 (AKM 18): KDF-SHA256,
    /// HMAC-SHA256-128 MICs.
    Sha256Hmac,
    /// The SHA-384 AKMs: 802.1X Suite B 192-bit (WPA3-Enterprise 192-bit, AKM 12),
    /// PSK-SHA384 (AKM 20) and OWE with group 20: a 384-bit PMK, KDF-SHA384, a
    /// 24-byte KCK, a 32-byte KEK, HMAC-SHA384-192 MICs (24 bytes).
    Sha384,
}

impl KeyHierarchy {
    /// The hierarchy of a message 2 of key descriptor `version` whose station names
    /// `akm` ([`rsn`]) and whose MIC is `mic_len` bytes, `None` for those not followed:
    /// fast BSS transition with SHA-384, and the AKM-defined ones (version 0) not
    /// listed above (SAE-EXT-KEY, FILS, OWE with group 21, …).
    pub fn of(version: u16, akm: Option<u8>, mic_len: usize) -> Option<Self> {
        if akm.is_some_and(|akm| AKMS_FAST_TRANSITION_SHA384.contains(&akm)) {
            return None;
        }
        let hierarchy = match (version, akm) {
            (VERSION_HMAC_MD5_RC4, _) => KeyHierarchy::Tkip,
            (VERSION_HMAC_SHA1_AES, _) => KeyHierarchy::Sha1,
            (VERSION_AES_CMAC, _) => KeyHierarchy::Sha256,
            (VERSION_AKM_DEFINED, Some(AKM_SAE | AKM_FT_SAE)) => KeyHierarchy::Sha256,
            (VERSION_AKM_DEFINED, Some(AKM_SUITE_B)) => KeyHierarchy::Sha256Hmac,
            (VERSION_AKM_DEFINED, Some(AKM_SUITE_B_192 | AKM_PSK_SHA384)) => KeyHierarchy::Sha384,
            // OWE's hash is its Diffie-Hellman group's, which only the MIC's length
            // shows here.
            (VERSION_AKM_DEFINED, Some(AKM_OWE)) if mic_len == 24 => KeyHierarchy::Sha384,
            (VERSION_AKM_DEFINED, Some(AKM_OWE)) => KeyHierarchy::Sha256Hmac,
            _ => return None,
        };
        (hierarchy.mic_len() == mic_len).then_some(hierarchy)
    }

    /// The length of its PMKs: 48 bytes for SHA-384, 32 otherwise.
    pub fn pmk_len(self) -> usize {
        match self {
            KeyHierarchy::Sha384 => 48,
            _ => 32,
        }
    }

    fn mic_len(self) -> usize {
        match self {
            KeyHierarchy::Sha384 => 24,
            _ => 16,
        }
    }

    /// The KCK's and KEK's lengths.
    fn kck_kek_len(self) -> (usize, usize) {
        match self {
            KeyHierarchy::Sha384 => (24, 32),
            _ => (16, 16),
        }
    }

    /// The PTK of a PMK (§12.7.1.3): KCK, KEK and the TK of the `pairwise` cipher
    /// (TKIP's for the TKIP hierarchy, whatever is named). `None` for a PMK of
    /// another hierarchy's length.
    pub fn ptk(
        self,
        pmk: &[u8],
        (aa, spa): (Mac, Mac),
        anonce: &[u8; 32],
        snonce: &[u8; 32],
        pairwise: Cipher,
    ) -> Option<Ptk> {
        if pmk.len() != self.pmk_len() {
            return None;
        }
        let mut data = Vec::with_capacity(76);
        data.extend_from_slice(&aa.min(spa));
        data.extend_from_slice(&aa.max(spa));
        data.extend_from_slice(anonce.min(snonce));
        data.extend_from_slice(anonce.max(snonce));
        let pairwise = match self {
            KeyHierarchy::Tkip => Cipher::Tkip,
            _ => pairwise,
        };
        let label = b"Pairwise key expansion";
        self.expand(pmk, label, &data, pairwise)
    }

    /// `length` bytes of KCK, KEK and TK from `key` by this hierarchy's PRF or KDF;
    /// fast BSS transition's PTK comes this way from the PMK-R1.
    pub fn expand(self, key: &[u8], label: &[u8], context: &[u8], tk: Cipher) -> Option<Ptk> {
        let (kck_len, kek_len) = self.kck_kek_len();
        let mut out = [0u8; PTK_MAX];
        let out = out.get_mut(..kck_len + kek_len + tk.key_len())?;
        match self {
            KeyHierarchy::Tkip | KeyHierarchy::Sha1 => prf_sha1(key, label, context, out),
            KeyHierarchy::Sha256 | KeyHierarchy::Sha256Hmac => {
                kdf(hmac::HMAC_SHA256, key, label, context, out)
            }
            KeyHierarchy::Sha384 => kdf(hmac::HMAC_SHA384, key, label, context, out),
        }
        Ptk::of_bytes(out, kck_len, kek_len, tk)
    }

    /// Whether `frame`'s MIC is the one `kck` makes over it.
    pub fn mic_is_right(self, kck: &[u8], frame: &KeyFrame<'_>) -> bool {
        self.mic(kck, &frame.with_zero_mic()) == frame.mic()
    }

    /// The MIC of an EAPOL-Key frame whose MIC field is zero (§12.7.2).
    pub fn mic(self, kck: &[u8], zeroed: &[u8]) -> Vec<u8> {
        let hmac_of = |algorithm: hmac::Algorithm, len: usize| {
            let tag = hmac::sign(&hmac::Key::new(algorithm, kck), zeroed);
            tag.as_ref()[..len].to_vec()
        };
        match self {
            KeyHierarchy::Tkip => {
                // HMAC takes keys of any length.
                let Ok(mut hmac) = <Hmac<Md5> as KeyInit>::new_from_slice(kck) else {
                    return Vec::new();
                };
                hmac.update(zeroed);
                hmac.finalize().into_bytes().to_vec()
            }
            KeyHierarchy::Sha1 => hmac_of(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, 16),
            KeyHierarchy::Sha256 => {
                let Ok(mut cmac) = <Cmac<Aes128> as KeyInit>::new_from_slice(kck) else {
                    return Vec::new();
                };
                cmac.update(zeroed);
                cmac.finalize().into_bytes().to_vec()
            }
            KeyHierarchy::Sha256Hmac => hmac_of(hmac::HMAC_SHA256, 16),
            KeyHierarchy::Sha384 => hmac_of(hmac::HMAC_SHA384, 24),
        }
    }

    /// The key id and GTK an access point's message sends ([`KeyFrame::carries_group_key`])
    /// in its key data, decrypted with `kek`: a GTK KDE in RSN's (a key of the `group`
    /// cipher the station's RSN element named, or by its length when it named none),
    /// the bare GTK (of the key length field's size) in WPA1's group key message.
    pub fn group_key(
        self,
        kek: &[u8],
        key: &KeyFrame<'_>,
        group: Option<Cipher>,
    ) -> Option<(u8, TemporalKey)> {
        let plain = match self {
            KeyHierarchy::Tkip => rc4_key_data(kek, key.key_iv(), key.key_data())?,
            _ => aes_key_unwrap(kek, key.key_data())?,
        };
        if key.descriptor() == DESCRIPTOR_WPA {
            let id = ((key.info & KEY_INDEX_MASK) >> 4) as u8;
            return Some((id, TemporalKey::by_length(plain.get(..key.key_length())?)?));
        }
        gtk_kde(&plain, group)
    }
}

/// The longest PTK: KCK 24, KEK 32 and a 32-byte TK.
const PTK_MAX: usize = 88;

/// The pairwise transient key of an association.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Ptk {
    /// Key confirmation key: the MICs of EAPOL-Key frames (16 or 24 bytes).
    kck: [u8; 24],
    kck_len: u8,
    /// Key encryption key: their key data (16 or 32 bytes).
    kek: [u8; 32],
    kek_len: u8,
    /// Temporal key: the station's unicast frames.
    pub tk: TemporalKey,
}

impl Ptk {
    pub(super) fn of_bytes(
        bytes: &[u8],
        kck_len: usize,
        kek_len: usize,
        tk: Cipher,
    ) -> Option<Self> {
        let (mut kck, mut kek) = ([0u8; 24], [0u8; 32]);
        kck.get_mut(..kck_len)?
            .copy_from_slice(bytes.get(..kck_len)?);
        let kek_at = kck_len..kck_len + kek_len;
        kek.get_mut(..kek_len)?.copy_from_slice(bytes.get(kek_at)?);
        Some(Ptk {
            kck,
            kck_len: kck_len as u8,
            kek,
            kek_len: kek_len as u8,
            tk: TemporalKey::new(tk, bytes.get(kck_len + kek_len..)?)?,
        })
    }

    pub fn kck(&self) -> &[u8] {
        &self.kck[..usize::from(self.kck_len)]
    }

    pub fn kek(&self) -> &[u8] {
        &self.kek[..usize::from(self.kek_len)]
    }
}

/// What the RSN element in a message 2's key data (the station's) says.
pub(super) fn rsn(message_2: &KeyFrame<'_>) -> Option<Rsn> {
    Rsn::find(message_2.key_data())
}

/// The GTK KDE of a message's decrypted key data (§12.7.2): its key id and GTK, a
/// key of the `group` cipher ([`TemporalKey::of_group`]).
pub(super) fn gtk_kde(data: &[u8], group: Option<Cipher>) -> Option<(u8, TemporalKey)> {
    let (_, body) =
        elements(data).find(|(id, body)| *id == ELEMENT_VENDOR && body.starts_with(&KDE_GTK))?;
    let (id, key) = (body.get(4)? & 0x03, body.get(6..)?);
    Some((id, TemporalKey::of_group(group, key)?))
}

/// RC4 of key data under the EAPOL-Key IV and the KEK, the first 256 bytes of key
/// stream skipped (§12.7.2, key descriptor version 1).
fn rc4_key_data(kek: &[u8], key_iv: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    let key: [u8; 32] = [key_iv, kek].concat().try_into().ok()?;
    let mut rc4 = <Rc4<U32> as KeyInit>::new(&key.into());
    rc4.apply_keystream(&mut [0u8; 256]);
    let mut plain = data.to_vec();
    rc4.apply_keystream(&mut plain);
    Some(plain)
}

/// AES key unwrap (RFC 3394 §2.2.2) of `wrapped` under `kek` (AES-128's or AES-256's
/// key); `None` when the integrity check value does not come out.
pub(super) fn aes_key_unwrap(kek: &[u8], wrapped: &[u8]) -> Option<Vec<u8>> {
    match kek.len() {
        16 => unwrap_with(&Aes128::new_from_slice(kek).ok()?, wrapped),
        32 => unwrap_with(&Aes256::new_from_slice(kek).ok()?, wrapped),
        _ => None,
    }
}

fn unwrap_with(cipher: &impl BlockDecrypt, wrapped: &[u8]) -> Option<Vec<u8>> {
    if wrapped.len() < 24 || !wrapped.len().is_multiple_of(8) {
        return None;
    }
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

/// The 802.11 KDF with SHA-256 (§12.7.1.7.2).
pub(super) fn kdf_sha256(key: &[u8], label: &[u8], context: &[u8], out: &mut [u8]) {
    kdf(hmac::HMAC_SHA256, key, label, context, out)
}

/// The 802.11 KDF (§12.7.1.7.2) with the hash of `algorithm`: HMAC(K, i || label ||
/// context || length), i = 1, 2, … and the length in bits, both 16-bit
/// little-endian; the length is the whole output's, so each block depends on it.
fn kdf(algorithm: hmac::Algorithm, key: &[u8], label: &[u8], context: &[u8], out: &mut [u8]) {
    let block = algorithm.digest_algorithm().output_len();
    let key = hmac::Key::new(algorithm, key);
    let bits = (out.len() * 8) as u16;
    for (i, chunk) in out.chunks_mut(block).enumerate() {
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
        let addresses = (
            [0xa0, 0xa1, 0xa1, 0xa3, 0xa4, 0xa5],
            [0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5],
        );
        let (anonce, snonce) = (anonce.try_into().unwrap(), snonce.try_into().unwrap());
        let ptk = KeyHierarchy::Sha1
            .ptk(&pmk, addresses, &anonce, &snonce, Cipher::Ccmp128)
            .unwrap();
        assert_eq!(ptk.kck().to_vec(), hex("379f9852d0199236b94e407ce4c00ec8"));
        assert_eq!(ptk.kek().to_vec(), hex("47c9edc01c2c6e5b4910caddfb3e51a7"));
        let tk = hex("b2360c79e9710fdd58bea93deaf06599").try_into().unwrap();
        assert_eq!(ptk.tk, TemporalKey::Ccmp(tk));
        // A 256-bit pairwise cipher takes the next 128 bits of the same PRF too (the
        // PRF's first bits do not depend on its length); a PMK of another length
        // gives nothing.
        let long = KeyHierarchy::Sha1
            .ptk(&pmk, addresses, &anonce, &snonce, Cipher::Gcmp256)
            .unwrap();
        assert_eq!(long.kck(), ptk.kck());
        let TemporalKey::Gcmp256(long_tk) = long.tk else {
            panic!("{:?}", long.tk);
        };
        assert_eq!(long_tk[..16], tk);
        let short =
            KeyHierarchy::Sha1.ptk(&pmk[..16], addresses, &anonce, &snonce, Cipher::Ccmp128);
        assert!(short.is_none());
    }

    #[test]
    fn kdf_lengths_shape_every_block_and_sha384_ptks() {
        // The KDF's length is in every block: a 512-bit PTK (CCMP-256) does not start
        // with the 384-bit one (CCMP-128), unlike the PRF's.
        let pmk = [0x42u8; 32];
        let addresses = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        let of = |hierarchy: KeyHierarchy, pmk: &[u8], cipher| {
            hierarchy
                .ptk(pmk, addresses, &[1; 32], &[2; 32], cipher)
                .unwrap()
        };
        let short = of(KeyHierarchy::Sha256, &pmk, Cipher::Ccmp128);
        let long = of(KeyHierarchy::Sha256, &pmk, Cipher::Ccmp256);
        assert_ne!(short.kck(), long.kck());
        let mut out = [0u8; 64];
        let data = [&addresses.0[..], &addresses.1, &[1; 32], &[2; 32]].concat();
        kdf_sha256(&pmk, b"Pairwise key expansion", &data, &mut out);
        assert_eq!(long.kck(), &out[..16]);
        assert_eq!(long.tk, TemporalKey::Ccmp256(out[32..].try_into().unwrap()));
        // SHA-384: a 48-byte PMK, KCK 24, KEK 32, and HMAC-SHA384-192 MICs.
        let pmk_384 = [0x43u8; 48];
        assert!(KeyHierarchy::Sha384
            .ptk(&pmk, addresses, &[1; 32], &[2; 32], Cipher::Gcmp256)
            .is_none());
        let ptk = of(KeyHierarchy::Sha384, &pmk_384, Cipher::Gcmp256);
        let mut out = [0u8; 88];
        kdf(
            hmac::HMAC_SHA384,
            &pmk_384,
            b"Pairwise key expansion",
            &data,
            &mut out,
        );
        assert_eq!((ptk.kck(), ptk.kek()), (&out[..24], &out[24..56]));
        assert_eq!(ptk.tk, TemporalKey::Gcmp256(out[56..].try_into().unwrap()));
        let mic = KeyHierarchy::Sha384.mic(ptk.kck(), b"frame");
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA384, ptk.kck()), b"frame");
        assert_eq!(mic, &tag.as_ref()[..24]);
        let mic = KeyHierarchy::Sha256Hmac.mic(&[7; 16], b"frame");
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &[7; 16]), b"frame");
        assert_eq!(mic, &tag.as_ref()[..16]);
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
        // §4.6: 256 bits of key data with a 256-bit KEK (the SHA-384 AKMs' KEK).
        let kek_256 = hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
        let wrapped_256 =
            hex("28c9f404c4b810f4cbccb35cfb87f8263f5786e2d80ed326cbc7f0e71a99f43bfb988b9b7a02dd21");
        assert_eq!(
            aes_key_unwrap(&kek_256, &wrapped_256),
            Some(hex(
                "00112233445566778899aabbccddeeff000102030405060708090a0b0c0d0e0f"
            ))
        );
        assert_eq!(aes_key_unwrap(&kek_256[..24], &wrapped_256), None);
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
        assert_eq!(mic, hex("9294727a3638bb1c13f48ef8158bfc9d"));
    }

    #[test]
    fn the_gtk_kde_among_other_elements() {
        let rsn = [0x30, 2, 1, 0];
        let gtk = [0xdd, 22, 0x00, 0x0f, 0xac, 1, 2, 0];
        let data = [&rsn[..], &gtk, &[0x77; 16], &[0xdd, 0]].concat();
        assert_eq!(
            gtk_kde(&data, None),
            Some((2, TemporalKey::Ccmp([0x77; 16])))
        );
        let gcmp = Some(Cipher::Gcmp128);
        assert_eq!(
            gtk_kde(&data, gcmp),
            Some((2, TemporalKey::Gcmp([0x77; 16])))
        );
        // 32 bytes: TKIP's unless the station named another group cipher; a GTK of
        // another length than the cipher's, a KDE cut short, none at all.
        let long = [&[0xdd, 38, 0x00, 0x0f, 0xac, 1, 1, 0][..], &[0x77; 32]].concat();
        assert_eq!(
            gtk_kde(&long, None),
            Some((1, TemporalKey::Tkip([0x77; 32])))
        );
        let gcmp_256 = Some(Cipher::Gcmp256);
        assert_eq!(
            gtk_kde(&long, gcmp_256),
            Some((1, TemporalKey::Gcmp256([0x77; 32])))
        );
        // A length not the named cipher's: told by its length.
        assert_eq!(
            gtk_kde(&long, gcmp),
            Some((1, TemporalKey::Tkip([0x77; 32])))
        );
        let odd = [&[0xdd, 30, 0x00, 0x0f, 0xac, 1, 1, 0][..], &[0x77; 24]].concat();
        assert_eq!(gtk_kde(&odd, None), None);
        assert_eq!(gtk_kde(&data[..20], None), None);
        assert_eq!(gtk_kde(&rsn, None), None);
    }

    /// An RSN element: CCMP group and pairwise ciphers, the AKMs given.
    pub fn rsn_element(akms: &[u8]) -> Vec<u8> {
        crate::net::wpa::rsn::tests::rsn_element_of(4, 4, akms)
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
        let of_mic = |version, akms: &[u8], mic_len: usize| {
            let frame = message_2_with_mic(version, &rsn_element(akms), mic_len);
            let frame = KeyFrame::parse(&frame).unwrap();
            assert_eq!(frame.mic_len(), mic_len);
            KeyHierarchy::of(frame.version(), rsn(&frame).and_then(|r| r.akm), mic_len)
        };
        let of = |version, akms: &[u8]| of_mic(version, akms, 16);
        use KeyHierarchy::*;
        assert_eq!(of(2, &[2]), Some(Sha1), "PSK");
        assert_eq!(of(2, &[1]), Some(Sha1), "802.1X");
        assert_eq!(of(3, &[6]), Some(Sha256), "PSK-SHA256");
        assert_eq!(of(3, &[5]), Some(Sha256), "802.1X-SHA256");
        assert_eq!(of(0, &[8]), Some(Sha256), "SAE");
        assert_eq!(of(1, &[2]), Some(Tkip), "TKIP pairwise");
        assert_eq!(of(3, &[4]), Some(Sha256), "FT-PSK");
        assert_eq!(of(3, &[3]), Some(Sha256), "FT-802.1X");
        assert_eq!(of(0, &[9]), Some(Sha256), "FT-SAE");
        assert_eq!(of(0, &[11]), Some(Sha256Hmac), "Suite B");
        assert_eq!(of(0, &[18]), Some(Sha256Hmac), "OWE, group 19");
        assert_eq!(of_mic(0, &[18], 24), Some(Sha384), "OWE, group 20");
        assert_eq!(of_mic(0, &[12], 24), Some(Sha384), "Suite B 192-bit");
        assert_eq!(of_mic(0, &[20], 24), Some(Sha384), "PSK-SHA384");
        // A MIC of the wrong length for the AKM; those not followed.
        assert_eq!(of(0, &[12]), None, "Suite B 192-bit, 16-byte MIC");
        assert_eq!(of_mic(3, &[6], 24), None, "PSK-SHA256, 24-byte MIC");
        assert_eq!(of_mic(0, &[19], 24), None, "FT-PSK-SHA384");
        assert_eq!(of(0, &[24]), None, "SAE-EXT-KEY");
        // Version 0 says nothing without the station's RSN element; version 1 needs
        // none (WPA1's message 2 holds a WPA element instead).
        let bare = message_2(0, &[]);
        let bare = KeyFrame::parse(&bare).unwrap();
        assert_eq!(KeyHierarchy::of(bare.version(), None, 16), None);
        let wpa1 = message_2(1, &[0xdd, 4, 0x00, 0x50, 0xf2, 1]);
        let wpa1 = KeyFrame::parse(&wpa1).unwrap();
        assert_eq!(rsn(&wpa1), None);
        assert_eq!(KeyHierarchy::of(wpa1.version(), None, 16), Some(Tkip));
    }

    /// A message 2 with a MIC field of `mic_len` bytes.
    fn message_2_with_mic(version: u16, key_data: &[u8], mic_len: usize) -> Vec<u8> {
        let mut f = vec![1, EAPOL_KEY, 0, 0, DESCRIPTOR_RSN];
        f.extend_from_slice(&(KEY_PAIRWISE | KEY_MIC | version).to_be_bytes());
        f.resize(MIC_AT + mic_len, 0);
        f[MIC_AT..].fill(0x3c);
        f.extend_from_slice(&(key_data.len() as u16).to_be_bytes());
        f.extend_from_slice(key_data);
        let len = (f.len() - 4) as u16;
        f[2..4].copy_from_slice(&len.to_be_bytes());
        f
    }

    #[test]
    fn the_mic_length_is_the_one_the_key_data_length_fits() {
        let data = rsn_element(&[12]);
        for mic_len in [16, 24] {
            let frame = message_2_with_mic(0, &data, mic_len);
            let key = KeyFrame::parse(&frame).unwrap();
            assert_eq!(key.mic_len(), mic_len);
            assert_eq!(key.mic(), &vec![0x3c; mic_len][..]);
            assert_eq!(key.key_data(), &data[..]);
            assert!(key.with_zero_mic()[MIC_AT..MIC_AT + mic_len]
                .iter()
                .all(|&b| b == 0));
        }
        // Message 4: no key data, a 24-byte MIC.
        let frame = message_2_with_mic(0, &[], 24);
        assert_eq!(KeyFrame::parse(&frame).unwrap().mic_len(), 24);
        // Nothing fits (the key data length overstated): read as 16, as far as the
        // key data goes.
        let mut over = message_2_with_mic(2, &data, 16);
        over[KEY_DATA_LEN_AT + 1] += 9;
        let key = KeyFrame::parse(&over).unwrap();
        assert_eq!((key.mic_len(), key.key_data()), (16, &data[..]));
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
