//! The elements that say how a station's keys are made (IEEE 802.11-2020 §9.4.2):
//! the RSN element (ciphers and AKM), and for fast BSS transition the Mobility
//! Domain element and the Fast BSS Transition element. Pure parsers over element
//! bodies; `None` for anything cut short.

use super::cipher::Cipher;
use super::Mac;
use crate::net::wlan::elements;

pub(super) const ELEMENT_RSN: u8 = 0x30;
pub(super) const ELEMENT_MOBILITY_DOMAIN: u8 = 54;
pub(super) const ELEMENT_FAST_TRANSITION: u8 = 55;
/// The RSN Extension element, which an FTE's MIC covers when present (§13.8.4).
pub(super) const ELEMENT_RSN_EXTENSION: u8 = 244;
const OUI_IEEE: [u8; 3] = [0x00, 0x0f, 0xac];

/// What a station's RSN element (in its association request and message 2) says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Rsn {
    /// The group data cipher; `None` for suites not read here.
    pub group: Option<Cipher>,
    /// The first pairwise cipher (a station names exactly one).
    pub pairwise: Option<Cipher>,
    /// The first AKM suite type, when of OUI 00-0F-AC.
    pub akm: Option<u8>,
}

impl Rsn {
    /// The RSN element among `data`'s elements (a message's key data, a management
    /// frame's body).
    pub fn find(data: &[u8]) -> Option<Self> {
        Rsn::parse(elements(data).find(|(id, _)| *id == ELEMENT_RSN)?.1)
    }

    /// Reads an RSN element's body: version (2), group data cipher suite (4),
    /// pairwise suite count and list, AKM suite count and list, … .
    pub fn parse(rsn: &[u8]) -> Option<Self> {
        let suite = |at: usize| -> Option<u8> {
            let s = rsn.get(at..at + 4)?;
            (s[..3] == OUI_IEEE).then_some(s[3])
        };
        let group = suite(2).and_then(Cipher::of_suite);
        let pairwise_count = usize::from(u16::from_le_bytes([*rsn.get(6)?, *rsn.get(7)?]));
        let pairwise = if pairwise_count > 0 {
            suite(8).and_then(Cipher::of_suite)
        } else {
            None
        };
        let akms_at = 8 + 4 * pairwise_count;
        let count = u16::from_le_bytes([*rsn.get(akms_at)?, *rsn.get(akms_at + 1)?]);
        // An element cut before the end of its first AKM says nothing.
        rsn.get(akms_at + 2..akms_at + 6)?;
        let akm = if count > 0 { suite(akms_at + 2) } else { None };
        Some(Rsn {
            group,
            pairwise,
            akm,
        })
    }
}

/// The Mobility Domain element's MDID.
pub(super) fn mobility_domain(data: &[u8]) -> Option<[u8; 2]> {
    let (_, body) = elements(data).find(|(id, _)| *id == ELEMENT_MOBILITY_DOMAIN)?;
    body.get(..2)?.try_into().ok()
}

/// Subelements of the Fast BSS Transition element.
const SUB_R1KH_ID: u8 = 1;
const SUB_GTK: u8 = 2;
const SUB_R0KH_ID: u8 = 3;
/// MIC Control (2), MIC (16 for the SHA-256 AKMs), ANonce (32), SNonce (32).
const FTE_MIC_AT: usize = 2;
pub(super) const FTE_MIC_LEN: usize = 16;
const FTE_ANONCE_AT: usize = FTE_MIC_AT + FTE_MIC_LEN;
const FTE_SNONCE_AT: usize = FTE_ANONCE_AT + 32;
const FTE_SUBELEMENTS_AT: usize = FTE_SNONCE_AT + 32;

/// A Fast BSS Transition element (§9.4.2.47) of the SHA-256 AKMs (a 16-octet MIC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Fte<'a> {
    body: &'a [u8],
}

impl<'a> Fte<'a> {
    /// The FTE among `data`'s elements.
    pub fn find(data: &'a [u8]) -> Option<Self> {
        let (_, body) = elements(data).find(|(id, _)| *id == ELEMENT_FAST_TRANSITION)?;
        (body.len() >= FTE_SUBELEMENTS_AT).then_some(Fte { body })
    }

    pub fn mic(&self) -> &'a [u8] {
        &self.body[FTE_MIC_AT..FTE_MIC_AT + FTE_MIC_LEN]
    }

    pub fn anonce(&self) -> [u8; 32] {
        self.nonce(FTE_ANONCE_AT)
    }

    pub fn snonce(&self) -> [u8; 32] {
        self.nonce(FTE_SNONCE_AT)
    }

    fn nonce(&self, at: usize) -> [u8; 32] {
        self.body[at..at + 32].try_into().unwrap_or([0; 32])
    }

    fn subelement(&self, wanted: u8) -> Option<&'a [u8]> {
        let subelements = &self.body[FTE_SUBELEMENTS_AT..];
        elements(subelements)
            .find(|(id, _)| *id == wanted)
            .map(|(_, b)| b)
    }

    pub fn r1kh_id(&self) -> Option<Mac> {
        self.subelement(SUB_R1KH_ID)?.try_into().ok()
    }

    /// 1 to 48 octets.
    pub fn r0kh_id(&self) -> Option<&'a [u8]> {
        self.subelement(SUB_R0KH_ID)
            .filter(|id| (1..=48).contains(&id.len()))
    }

    /// The GTK subelement (§9.4.2.47): the key id, and the key length and wrapped key.
    pub fn gtk(&self) -> Option<(u8, usize, &'a [u8])> {
        let sub = self.subelement(SUB_GTK)?;
        // Key Info (2; key id in bits 0-1), Key Length (1), RSC (8), Wrapped Key.
        let (id, len) = (sub.first()? & 0x03, usize::from(*sub.get(2)?));
        Some((id, len, sub.get(11..)?))
    }
}

/// The first element `wanted` among `data`'s, whole (id, length, body) as the frame
/// holds it: what MICs over elements cover.
pub(super) fn whole_element(data: &[u8], wanted: u8) -> Option<Vec<u8>> {
    let (id, body) = elements(data).find(|(id, _)| *id == wanted)?;
    Some([&[id, body.len() as u8][..], body].concat())
}

/// The FTE among `data`'s elements, whole, its MIC field zero (as its MIC covers it).
pub(super) fn fte_with_zero_mic(data: &[u8]) -> Option<Vec<u8>> {
    let mut fte = whole_element(data, ELEMENT_FAST_TRANSITION)?;
    fte.get_mut(2 + FTE_MIC_AT..2 + FTE_MIC_AT + FTE_MIC_LEN)?
        .fill(0);
    Some(fte)
}

/// The elements a reassociation's FTE MIC covers, whole (§13.8.4): the RSNE, the
/// MDE, the FTE with its MIC field zero, and the RSNXE when there is one. `None` when
/// one of the first three is missing.
pub(super) fn fte_mic_input(data: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut covered = vec![
        whole_element(data, ELEMENT_RSN)?,
        whole_element(data, ELEMENT_MOBILITY_DOMAIN)?,
        fte_with_zero_mic(data)?,
    ];
    covered.extend(whole_element(data, ELEMENT_RSN_EXTENSION));
    Some(covered)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// An RSN element: `group` and `pairwise` cipher suites, the AKMs given.
    pub fn rsn_element_of(group: u8, pairwise: u8, akms: &[u8]) -> Vec<u8> {
        let mut body = vec![
            1, 0, 0x00, 0x0f, 0xac, group, 1, 0, 0x00, 0x0f, 0xac, pairwise,
        ];
        body.extend_from_slice(&(akms.len() as u16).to_le_bytes());
        for akm in akms {
            body.extend_from_slice(&[0x00, 0x0f, 0xac, *akm]);
        }
        body.extend_from_slice(&[0xc0, 0]); // MFPR | MFPC
        [&[ELEMENT_RSN, body.len() as u8][..], &body].concat()
    }

    #[test]
    fn rsn_ciphers_and_akm() {
        let rsn = rsn_element_of(9, 10, &[6, 2]);
        assert_eq!(
            Rsn::find(&rsn),
            Some(Rsn {
                group: Some(Cipher::Gcmp256),
                pairwise: Some(Cipher::Ccmp256),
                akm: Some(6)
            })
        );
        // BIP as a group cipher (not a data cipher), an AKM of another OUI.
        let mut odd = rsn_element_of(6, 4, &[8]);
        odd[16] = 0x50;
        assert_eq!(
            Rsn::find(&odd),
            Some(Rsn {
                group: None,
                pairwise: Some(Cipher::Ccmp128),
                akm: None
            })
        );
        // Cut anywhere before the end of its first AKM: nothing.
        for cut in 0..20 {
            let mut short = rsn[..cut.min(rsn.len())].to_vec();
            if let Some(len) = short.get_mut(1) {
                *len = (cut - 2) as u8;
            }
            assert_eq!(Rsn::find(&short), None, "{cut}");
        }
    }

    /// An FTE with `mic`, the nonces and the subelements given.
    pub fn fte(mic: [u8; 16], anonce: [u8; 32], snonce: [u8; 32], subelements: &[u8]) -> Vec<u8> {
        let body = [&[0, 3][..], &mic, &anonce, &snonce, subelements].concat();
        [&[ELEMENT_FAST_TRANSITION, body.len() as u8][..], &body].concat()
    }

    #[test]
    fn fast_transition_elements() {
        let subs = [
            &[SUB_R1KH_ID, 6, 2, 0, 0, 0, 0xf7, 2][..],
            &[SUB_GTK, 13, 1, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0xaa, 0xbb],
            &[SUB_R0KH_ID, 3, b'a', b'p', b'1'],
        ]
        .concat();
        let data = [
            &[ELEMENT_MOBILITY_DOMAIN, 3, 0x34, 0x12, 1][..],
            &fte([1; 16], [2; 32], [3; 32], &subs),
        ]
        .concat();
        assert_eq!(mobility_domain(&data), Some([0x34, 0x12]));
        let found = Fte::find(&data).unwrap();
        assert_eq!(found.mic(), &[1; 16]);
        assert_eq!((found.anonce(), found.snonce()), ([2; 32], [3; 32]));
        assert_eq!(found.r1kh_id(), Some([2, 0, 0, 0, 0xf7, 2]));
        assert_eq!(found.r0kh_id(), Some(&b"ap1"[..]));
        assert_eq!(found.gtk(), Some((1, 16, &[0xaa, 0xbb][..])));
        // Too short for its nonces; no subelements.
        assert_eq!(Fte::find(&[ELEMENT_FAST_TRANSITION, 2, 0, 0]), None);
        let bare = fte([0; 16], [0; 32], [0; 32], &[]);
        let bare = Fte::find(&bare).unwrap();
        assert_eq!(
            (bare.r1kh_id(), bare.r0kh_id(), bare.gtk()),
            (None, None, None)
        );
        assert_eq!(mobility_domain(&[ELEMENT_MOBILITY_DOMAIN, 1, 0]), None);
    }
}
