//! Fast BSS transition (802.11r, IEEE 802.11-2020 §12.7.1.7, §13) with the SHA-256
//! AKMs: FT-PSK (4), FT-802.1X (3) and FT-SAE (9). Pure key derivations.
//!
//! A station's first association in a mobility domain derives from the XXKey (the
//! PSK or SAE PMK, or the second 256 bits of the 802.1X MSK) a PMK-R0 bound to the
//! SSID, the mobility domain and the R0 key holder, and from it a PMK-R1 for each
//! access point (R1 key holder) it then uses: the 4-way handshake of that first
//! association, and each later transition (FT authentication and reassociation, no
//! EAPOL at all), make the PTK from a PMK-R1 and the two nonces.

use aes::Aes128;
use ccm::aead::KeyInit;
use cmac::{Cmac, Mac as _};

use super::cipher::Cipher;
use super::eapol::{kdf_sha256, KeyHierarchy, Ptk};
use super::Mac;

/// The transaction sequence number a reassociation request's FTE MIC covers (a
/// response's is 6).
pub(super) const SEQUENCE_REASSOCIATION_REQUEST: u8 = 5;

/// What a PMK-R0 is bound to besides its XXKey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct R0Holder {
    pub ssid: Vec<u8>,
    pub mdid: [u8; 2],
    /// 1 to 48 octets.
    pub r0kh_id: Vec<u8>,
}

/// PMK-R0 (§12.7.1.7.3): the first 256 bits of KDF-SHA256-384(XXKey, "FT-R0",
/// SSIDlength || SSID || MDID || R0KHlength || R0KH-ID || S0KH-ID), the station's
/// address being the S0KH-ID. (The last 128 bits salt the PMK-R0's name, which is
/// not needed to find keys.)
pub(super) fn pmk_r0(xxkey: &[u8], holder: &R0Holder, spa: Mac) -> Option<[u8; 32]> {
    let (ssid_len, r0kh_len) = (u8::try_from(holder.ssid.len()).ok()?, holder.r0kh_id.len());
    let mut context = Vec::with_capacity(1 + 32 + 2 + 1 + 48 + 6);
    context.push(ssid_len);
    context.extend_from_slice(&holder.ssid);
    context.extend_from_slice(&holder.mdid);
    context.push(u8::try_from(r0kh_len).ok()?);
    context.extend_from_slice(&holder.r0kh_id);
    context.extend_from_slice(&spa);
    let mut out = [0u8; 48];
    kdf_sha256(xxkey, b"FT-R0", &context, &mut out);
    out[..32].try_into().ok()
}

/// PMK-R1 (§12.7.1.7.4): KDF-SHA256-256(PMK-R0, "FT-R1", R1KH-ID || S1KH-ID).
pub(super) fn pmk_r1(pmk_r0: &[u8; 32], r1kh_id: Mac, spa: Mac) -> [u8; 32] {
    let mut out = [0u8; 32];
    kdf_sha256(pmk_r0, b"FT-R1", &[r1kh_id, spa].concat(), &mut out);
    out
}

/// The PTK (§12.7.1.7.5): KDF-SHA256(PMK-R1, "FT-PTK", SNonce || ANonce || BSSID ||
/// STA-ADDR) to a KCK, a KEK and the `pairwise` cipher's TK.
pub(super) fn ptk(
    pmk_r1: &[u8; 32],
    snonce: &[u8; 32],
    anonce: &[u8; 32],
    (bssid, spa): (Mac, Mac),
    pairwise: Cipher,
) -> Option<Ptk> {
    let context = [&snonce[..], anonce, &bssid, &spa].concat();
    KeyHierarchy::Sha256.expand(pmk_r1, b"FT-PTK", &context, pairwise)
}

/// The MIC of a reassociation's Fast BSS Transition element (§13.8.4, §13.8.5):
/// AES-128-CMAC(KCK, SPA || AA || transaction sequence number || the elements it
/// covers, whole, the FTE's MIC field zero).
pub(super) fn fte_mic(
    kck: &[u8],
    (aa, spa): (Mac, Mac),
    sequence: u8,
    covered: &[&[u8]],
) -> Vec<u8> {
    let Ok(mut cmac) = <Cmac<Aes128> as KeyInit>::new_from_slice(kck) else {
        return Vec::new();
    };
    cmac.update(&spa);
    cmac.update(&aa);
    cmac.update(&[sequence]);
    for element in covered {
        cmac.update(element);
    }
    cmac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::wpa::eapol::tests::hex;
    use ring::hmac;

    const SPA: Mac = [2, 0, 0, 0xaa, 0xcc, 7];
    const BSSID: Mac = [2, 0, 0, 0, 0x5a, 1];

    fn holder() -> R0Holder {
        R0Holder {
            ssid: b"lab".to_vec(),
            mdid: [0x34, 0x12],
            r0kh_id: b"ap1.lab.example".to_vec(),
        }
    }

    /// The KDF written out for one or two blocks with ring's HMAC directly.
    fn kdf_by_hand(key: &[u8], label: &[u8], context: &[u8], bits: u16, blocks: u8) -> Vec<u8> {
        let key = hmac::Key::new(hmac::HMAC_SHA256, key);
        (1..=blocks)
            .flat_map(|i| {
                let input = [&[i, 0][..], label, context, &bits.to_le_bytes()].concat();
                hmac::sign(&key, &input).as_ref().to_vec()
            })
            .collect()
    }

    #[test]
    fn the_key_hierarchy_as_802_11_spells_it() {
        let xxkey = [0x5e; 32];
        let h = holder();
        let r0 = pmk_r0(&xxkey, &h, SPA).unwrap();
        let context = [
            &[3][..],
            b"lab",
            &[0x34, 0x12],
            &[15],
            b"ap1.lab.example",
            &SPA,
        ]
        .concat();
        assert_eq!(
            r0.to_vec(),
            kdf_by_hand(&xxkey, b"FT-R0", &context, 384, 2)[..32]
        );

        let r1 = pmk_r1(&r0, BSSID, SPA);
        let want = kdf_by_hand(&r0, b"FT-R1", &[BSSID, SPA].concat(), 256, 1);
        assert_eq!(r1.to_vec(), want);

        let (snonce, anonce) = ([0x5b; 32], [0xa1; 32]);
        let ptk = ptk(&r1, &snonce, &anonce, (BSSID, SPA), Cipher::Ccmp128).unwrap();
        let context = [&snonce[..], &anonce, &BSSID, &SPA].concat();
        let want = kdf_by_hand(&r1, b"FT-PTK", &context, 384, 2);
        assert_eq!(ptk.kck(), &want[..16]);
        assert_eq!(ptk.kek(), &want[16..32]);
        assert_eq!(
            ptk.tk,
            crate::net::wpa::TemporalKey::Ccmp(want[32..48].try_into().unwrap())
        );
        // The nonces' order matters here, unlike in the usual PTK.
        let swapped = super::ptk(&r1, &anonce, &snonce, (BSSID, SPA), Cipher::Ccmp128).unwrap();
        assert_ne!(swapped.tk, ptk.tk);
    }

    #[test]
    fn r0_holders_out_of_range_give_no_key() {
        let mut long = holder();
        long.ssid = vec![b'x'; 256];
        assert_eq!(pmk_r0(&[1; 32], &long, SPA), None);
    }

    #[test]
    fn fte_mics_are_cmac_over_addresses_sequence_and_elements() {
        // RFC 4493 example 2's key and message, split over the MIC's inputs: the
        // 16-byte message is SPA || AA || sequence || three bytes of elements.
        let kck = hex("2b7e151628aed2a6abf7158809cf4f3c");
        let message = hex("6bc1bee22e409f96e93d7e117393172a");
        let spa: Mac = message[..6].try_into().unwrap();
        let aa: Mac = message[6..12].try_into().unwrap();
        let mic = fte_mic(
            &kck,
            (aa, spa),
            message[12],
            &[&message[13..14], &message[14..]],
        );
        assert_eq!(mic, hex("070a16b46b4d4144f79bdd9dd04a287c"));
    }
}
