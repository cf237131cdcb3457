//! CCMP-128 (IEEE 802.11-2020 §12.5.3), the cipher of WPA2 and WPA3: AES-CCM with an
//! 8-byte MIC, whose nonce and additional data come from the frame's MAC header.

use aes::Aes128;
use ccm::aead::generic_array::GenericArray;
use ccm::aead::{AeadInPlace, KeyInit};
use ccm::consts::{U13, U8};
use ccm::Ccm;

use super::Mpdu;

pub(super) type Cipher = Ccm<Aes128, U8, U13>;

/// The CCMP header that starts a protected frame's body, and the MIC that ends it.
pub(super) const HEADER_LEN: usize = 8;
pub(super) const MIC_LEN: usize = 8;

/// A CCMP MPDU, with the nonce and additional data its header gives, for any key.
pub(super) struct Frame<'a> {
    nonce: [u8; 13],
    aad: Vec<u8>,
    ciphertext: &'a [u8],
    mic: &'a [u8],
}

impl<'a> Frame<'a> {
    /// `None` when the body is too short for the CCMP header and MIC.
    pub fn new(mpdu: &Mpdu<'a>) -> Option<Self> {
        let body = mpdu.body;
        let encrypted = body.get(HEADER_LEN..)?;
        let (ciphertext, mic) = encrypted.split_at(encrypted.len().checked_sub(MIC_LEN)?);
        let mut nonce = [0u8; 13];
        nonce[0] = mpdu.qos.unwrap_or(0) & 0x0f;
        nonce[1..7].copy_from_slice(&mpdu.a2);
        // The packet number, PN5 first.
        for (i, at) in [7, 6, 5, 4, 1, 0].into_iter().enumerate() {
            nonce[7 + i] = body[at];
        }
        let mut aad = Vec::with_capacity(30);
        // Subtype bits of a data frame, Retry, PwrMgt and MoreData masked, Protected
        // set, Order masked in QoS data frames (§12.5.3.3.3).
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
            nonce,
            aad,
            ciphertext,
            mic,
        })
    }

    /// The plaintext body (LLC/SNAP and on) when `tk` makes the MIC right.
    pub fn open(&self, tk: &[u8; 16]) -> Option<Vec<u8>> {
        let cipher = Cipher::new_from_slice(tk).ok()?;
        let mut plain = self.ciphertext.to_vec();
        cipher
            .decrypt_in_place_detached(
                GenericArray::from_slice(&self.nonce),
                &self.aad,
                &mut plain,
                GenericArray::from_slice(self.mic),
            )
            .ok()?;
        Some(plain)
    }
}
