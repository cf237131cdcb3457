//! TDLS (tunneled direct-link setup, IEEE 802.11-2020 §11.20, §12.7.8): two stations
//! of one access point that talk directly, each frame protected with a key of their
//! own, the TPK. They agree on it in setup frames they send each other through the
//! access point (inside their protected data frames, ethertype 0x890d), and it comes
//! from the two nonces and addresses of those frames alone: no secret beyond what
//! opened them. Pure parsing and derivation.

use ring::digest;

use super::cipher::Cipher;
use super::eapol::{kdf_sha256, Ptk};
use super::rsn::{fte_with_zero_mic, whole_element, Fte, Rsn, ELEMENT_RSN};
use super::Mac;

/// Ethertype of the 802.11 encapsulation TDLS frames travel in.
pub const ETHERTYPE_TDLS: u16 = 0x890d;
/// The encapsulation's payload type of TDLS, and the TDLS action category.
const PAYLOAD_TDLS: u8 = 2;
const CATEGORY_TDLS: u8 = 12;
/// TDLS Setup Confirm, the third frame of the setup: its FTE holds both nonces and the
/// MIC of the agreed TPK.
const ACTION_SETUP_CONFIRM: u8 = 2;
/// Its transaction sequence number in the MIC.
const SEQUENCE_SETUP_CONFIRM: u8 = 3;
const ELEMENT_TIMEOUT_INTERVAL: u8 = 56;
const ELEMENT_LINK_IDENTIFIER: u8 = 101;

/// A direct link's key, from a successful TDLS Setup Confirm.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct DirectLink {
    pub bssid: Mac,
    pub initiator: Mac,
    pub responder: Mac,
    /// KCK and TK; no KEK.
    pub tpk: Ptk,
}

/// The direct link a TDLS frame (the encapsulation's payload, from its payload type
/// on) sets up: a Setup Confirm of status 0 whose FTE MIC the TPK of its nonces and
/// Link Identifier makes right. `None` for any other frame and for frames cut short.
pub(super) fn setup_confirm(payload: &[u8]) -> Option<DirectLink> {
    let [PAYLOAD_TDLS, CATEGORY_TDLS, ACTION_SETUP_CONFIRM, s0, s1, _dialog, data @ ..] = payload
    else {
        return None;
    };
    if [*s0, *s1] != [0, 0] {
        return None;
    }
    let link = whole_element(data, ELEMENT_LINK_IDENTIFIER)?;
    let mac_at = |at: usize| -> Option<Mac> { link.get(at..at + 6)?.try_into().ok() };
    let (bssid, initiator, responder) = (mac_at(2)?, mac_at(8)?, mac_at(14)?);
    let fte = Fte::find(data)?;
    let pairwise = Rsn::find(data)
        .and_then(|rsn| rsn.pairwise)
        .unwrap_or(Cipher::Ccmp128);
    let tpk = tpk(
        &fte.snonce(),
        &fte.anonce(),
        (initiator, responder),
        bssid,
        pairwise,
    )?;
    // The MIC covers MAC_I, MAC_R, the sequence number and these.
    let covered = [
        link,
        whole_element(data, ELEMENT_RSN)?,
        whole_element(data, ELEMENT_TIMEOUT_INTERVAL)?,
        fte_with_zero_mic(data)?,
    ];
    let covered: Vec<&[u8]> = covered.iter().map(Vec::as_slice).collect();
    let mic = super::ft::fte_mic(
        tpk.kck(),
        (responder, initiator),
        SEQUENCE_SETUP_CONFIRM,
        &covered,
    );
    (mic == fte.mic()).then_some(DirectLink {
        bssid,
        initiator,
        responder,
        tpk,
    })
}

/// The TPK (§12.7.8, the TPK handshake): TPK-Key-Input = SHA-256(min(SNonce,
/// ANonce) || max(SNonce, ANonce)); TPK = KDF-SHA256(TPK-Key-Input, "TDLS PMK",
/// min(MAC_I, MAC_R) || max(MAC_I, MAC_R) || BSSID), a 128-bit KCK and the
/// `pairwise` cipher's TK.
fn tpk(
    snonce: &[u8; 32],
    anonce: &[u8; 32],
    (initiator, responder): (Mac, Mac),
    bssid: Mac,
    pairwise: Cipher,
) -> Option<Ptk> {
    let mut input = digest::Context::new(&digest::SHA256);
    input.update(snonce.min(anonce));
    input.update(snonce.max(anonce));
    let input = input.finish();
    let context = [
        &initiator.min(responder)[..],
        &initiator.max(responder),
        &bssid,
    ]
    .concat();
    let mut out = [0u8; 48];
    let out = out.get_mut(..16 + pairwise.key_len())?;
    kdf_sha256(input.as_ref(), b"TDLS PMK", &context, out);
    Ptk::of_bytes(out, 16, 0, pairwise)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::net::wpa::rsn::tests::{fte, rsn_element_of};

    pub const INITIATOR: Mac = [2, 0, 0, 0xaa, 0xcc, 7];
    pub const RESPONDER: Mac = [2, 0, 0, 0xbb, 0xdd, 8];
    pub const BSSID: Mac = [2, 0, 0, 0, 0x5a, 1];
    const SNONCE: [u8; 32] = [0x5b; 32];
    const ANONCE: [u8; 32] = [0xa1; 32];

    /// A Setup Confirm of the initiator whose FTE MIC is made with `kck`.
    pub fn confirm(kck: &[u8], status: u8) -> Vec<u8> {
        let link = [
            &[ELEMENT_LINK_IDENTIFIER, 18][..],
            &BSSID,
            &INITIATOR,
            &RESPONDER,
        ]
        .concat();
        let rsne = rsn_element_of(4, 4, &[7]);
        let timeout = [ELEMENT_TIMEOUT_INTERVAL, 5, 2, 0x10, 0x0e, 0, 0];
        let zeroed = fte([0; 16], ANONCE, SNONCE, &[]);
        let covered: [&[u8]; 4] = [&link, &rsne, &timeout, &zeroed];
        let mic = super::super::ft::fte_mic(kck, (RESPONDER, INITIATOR), 3, &covered);
        let fte = fte(mic.try_into().unwrap(), ANONCE, SNONCE, &[]);
        let head = [
            PAYLOAD_TDLS,
            CATEGORY_TDLS,
            ACTION_SETUP_CONFIRM,
            status,
            0,
            1,
        ];
        [&head[..], &rsne, &fte, &timeout, &[0xdd, 2, 0, 0x50], &link].concat()
    }

    /// The TPK of the frames [`confirm`] makes.
    pub fn their_tpk() -> Ptk {
        tpk(
            &SNONCE,
            &ANONCE,
            (INITIATOR, RESPONDER),
            BSSID,
            Cipher::Ccmp128,
        )
        .unwrap()
    }

    #[test]
    fn the_tpk_as_802_11_spells_it() {
        let tpk = their_tpk();
        // The smaller nonce first: SNonce (0x5b…) before ANonce (0xa1…).
        let input = digest::digest(&digest::SHA256, &[SNONCE, ANONCE].concat());
        let mut out = [0u8; 32];
        let context = [&INITIATOR[..], &RESPONDER, &BSSID].concat();
        kdf_sha256(input.as_ref(), b"TDLS PMK", &context, &mut out);
        assert_eq!(tpk.kck(), &out[..16]);
        assert_eq!(
            tpk.tk,
            crate::net::wpa::TemporalKey::Ccmp(out[16..].try_into().unwrap())
        );
        assert!(tpk.kek().is_empty());
        // Either side's view: the nonces' and the addresses' order does not matter.
        let swapped = super::tpk(
            &ANONCE,
            &SNONCE,
            (RESPONDER, INITIATOR),
            BSSID,
            Cipher::Ccmp128,
        );
        assert_eq!(swapped.unwrap().tk, tpk.tk);
    }

    #[test]
    fn a_setup_confirm_gives_its_link_when_its_mic_is_right() {
        let tpk = their_tpk();
        let link = setup_confirm(&confirm(tpk.kck(), 0)).unwrap();
        assert_eq!(
            (link.bssid, link.initiator, link.responder),
            (BSSID, INITIATOR, RESPONDER)
        );
        assert_eq!(link.tpk.tk, tpk.tk);
        // Another KCK's MIC, a failed setup, another action, frames cut short.
        assert!(setup_confirm(&confirm(&[7; 16], 0)).is_none());
        assert!(setup_confirm(&confirm(tpk.kck(), 37)).is_none());
        let mut request = confirm(tpk.kck(), 0);
        request[2] = 0;
        assert!(setup_confirm(&request).is_none());
        let whole = confirm(tpk.kck(), 0);
        for cut in 0..whole.len() {
            assert!(setup_confirm(&whole[..cut]).is_none(), "{cut}");
        }
    }
}
