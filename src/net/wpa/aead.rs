//! The AES ciphers of 802.11 data frames: CCMP-128 and CCMP-256 (IEEE 802.11-2020
//! §12.5.3, AES-CCM with an 8- or 16-byte MIC) and GCMP-128 and GCMP-256 (§12.5.5,
//! AES-GCM with a 16-byte MIC). All four share the 8-byte header that carries the
//! packet number and the additional data built from the MAC header; the nonce is
//! CCM's 13 bytes (priority, A2, PN) or GCM's 12 (A2, PN).

use aes::{Aes128, Aes256};
use ccm::aead::generic_array::GenericArray;
use ccm::aead::{AeadInPlace, KeyInit};
use ccm::consts::{U13, U16, U8};
use ccm::Ccm;
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};

use super::{Mpdu, TemporalKey};

pub(super) type Ccmp128 = Ccm<Aes128, U8, U13>;
type Ccmp256 = Ccm<Aes256, U16, U13>;

/// The header that starts a protected frame's body.
pub(super) const HEADER_LEN: usize = 8;
/// CCMP-128's MIC; CCMP-256's and GCMP's are 16 bytes.
pub(super) const CCMP_128_MIC_LEN: usize = 8;
const LONG_MIC_LEN: usize = 16;

/// A CCMP or GCMP MPDU, with the nonce parts and additional data its header gives,
/// for any key.
pub(super) struct Frame<'a> {
    priority: u8,
    a2: [u8; 6],
    /// The packet number, PN5 first.
    pn: [u8; 6],
    aad: Vec<u8>,
    /// Ciphertext and MIC.
    encrypted: &'a [u8],
}

impl<'a> Frame<'a> {
    /// `None` when the body is too short for the header and the shortest MIC.
    pub fn new(mpdu: &Mpdu<'a>) -> Option<Self> {
        let body = mpdu.body;
        let encrypted = body.get(HEADER_LEN..)?;
        if encrypted.len() < CCMP_128_MIC_LEN {
            return None;
        }
        let mut pn = [0u8; 6];
        for (i, at) in [7, 6, 5, 4, 1, 0].into_iter().enumerate() {
            pn[i] = body[at];
        }
        let mut aad = Vec::with_capacity(30);
        // Subtype bits of a data frame, Retry, PwrMgt and MoreData masked, Protected
        // set, Order masked in QoS data frames (§12.5.3.3.3; GCMP's is the same,
        // §12.5.5.3.3).
        aad.push(mpdu.fc0 & 0x8f);
        let order = if mpdu.qos.is_some() { 0x80 } else { 0 };
        aad.push((mpdu.flags & !(0x08 | 0x10 | 0x20 | order)) | 0x40);
        for address in [mpdu.a1, mpdu.a2, mpdu.a3] {
            aad.extend_from_slice(&address);
        }
        aad.extend_from_slice(&[mpdu.sequence_control[0] & 0x0f, 0]);
        if let Some(a4) = mpdu.a4 {
            aad.extend_from_slice(&a4);
        }
        if let Some(q) = mpdu.qos {
            aad.extend_from_slice(&[q & 0x0f, 0]);
        }
        Some(Frame {
            priority: mpdu.qos.unwrap_or(0) & 0x0f,
            a2: mpdu.a2,
            pn,
            aad,
            encrypted,
        })
    }

    /// The plaintext body (LLC/SNAP and on) when `key`, of a CCMP or GCMP cipher,
    /// makes the MIC right; `None` otherwise, and for TKIP keys.
    pub fn open(&self, key: &TemporalKey) -> Option<Vec<u8>> {
        match key {
            TemporalKey::Ccmp(tk) => {
                self.open_ccm(Ccmp128::new_from_slice(tk).ok()?, CCMP_128_MIC_LEN)
            }
            TemporalKey::Ccmp256(tk) => {
                self.open_ccm(Ccmp256::new_from_slice(tk).ok()?, LONG_MIC_LEN)
            }
            TemporalKey::Gcmp(tk) => self.open_gcm(&aead::AES_128_GCM, tk),
            TemporalKey::Gcmp256(tk) => self.open_gcm(&aead::AES_256_GCM, tk),
            TemporalKey::Tkip(_) | TemporalKey::TkipIcvOnly(_) => None,
        }
    }

    /// CCM's nonce: priority, A2, PN (§12.5.3.3.4).
    fn ccm_nonce(&self) -> [u8; 13] {
        let mut nonce = [0u8; 13];
        nonce[0] = self.priority;
        nonce[1..7].copy_from_slice(&self.a2);
        nonce[7..].copy_from_slice(&self.pn);
        nonce
    }

    fn open_ccm(&self, cipher: impl AeadInPlace, mic_len: usize) -> Option<Vec<u8>> {
        let split = self.encrypted.len().checked_sub(mic_len)?;
        let (ciphertext, mic) = self.encrypted.split_at(split);
        let mut plain = ciphertext.to_vec();
        cipher
            .decrypt_in_place_detached(
                GenericArray::from_slice(&self.ccm_nonce()),
                &self.aad,
                &mut plain,
                GenericArray::from_slice(mic),
            )
            .ok()?;
        Some(plain)
    }

    /// GCMP: the nonce is A2 then the PN (§12.5.5.3.4), the MIC GCM's 16-byte tag.
    fn open_gcm(&self, algorithm: &'static aead::Algorithm, tk: &[u8]) -> Option<Vec<u8>> {
        if self.encrypted.len() < LONG_MIC_LEN {
            return None;
        }
        let key = LessSafeKey::new(UnboundKey::new(algorithm, tk).ok()?);
        let mut nonce = [0u8; 12];
        nonce[..6].copy_from_slice(&self.a2);
        nonce[6..].copy_from_slice(&self.pn);
        let mut in_out = self.encrypted.to_vec();
        let plain_len = key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&self.aad),
                &mut in_out,
            )
            .ok()?
            .len();
        in_out.truncate(plain_len);
        Some(in_out)
    }
}

/// Seals `plain` as the body of `mpdu` (whose `body` holds the 8-byte header that
/// gives the PN, then anything) under `key`: the header, ciphertext and MIC. For tests
/// and benchmarks, the inverse of [`Frame::open`].
#[cfg(test)]
pub(super) fn seal(mpdu: &Mpdu<'_>, key: &TemporalKey, plain: &[u8]) -> Vec<u8> {
    let header = &mpdu.body[..HEADER_LEN];
    let room = [header, &[0; CCMP_128_MIC_LEN]].concat();
    let frame = Frame::new(&Mpdu {
        body: &room,
        ..*mpdu
    })
    .expect("a header and room for a MIC");
    let mut body = plain.to_vec();
    match key {
        TemporalKey::Ccmp(tk) => {
            let nonce = frame.ccm_nonce();
            let mic = Ccmp128::new_from_slice(tk)
                .unwrap()
                .encrypt_in_place_detached(GenericArray::from_slice(&nonce), &frame.aad, &mut body)
                .unwrap();
            body.extend_from_slice(&mic);
        }
        TemporalKey::Ccmp256(tk) => {
            let nonce = frame.ccm_nonce();
            let mic = Ccmp256::new_from_slice(tk)
                .unwrap()
                .encrypt_in_place_detached(GenericArray::from_slice(&nonce), &frame.aad, &mut body)
                .unwrap();
            body.extend_from_slice(&mic);
        }
        TemporalKey::Gcmp(tk) => gcm_seal(&aead::AES_128_GCM, tk, &frame, &mut body),
        TemporalKey::Gcmp256(tk) => gcm_seal(&aead::AES_256_GCM, tk, &frame, &mut body),
        TemporalKey::Tkip(_) | TemporalKey::TkipIcvOnly(_) => panic!("not an AES cipher"),
    }
    [header, &body].concat()
}

#[cfg(test)]
fn gcm_seal(algorithm: &'static aead::Algorithm, tk: &[u8], frame: &Frame<'_>, body: &mut Vec<u8>) {
    let key = LessSafeKey::new(UnboundKey::new(algorithm, tk).unwrap());
    let mut nonce = [0u8; 12];
    nonce[..6].copy_from_slice(&frame.a2);
    nonce[6..].copy_from_slice(&frame.pn);
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(&frame.aad),
        body,
    )
    .unwrap();
}
