//! WEP (IEEE 802.11-2020 §12.3.2), the pre-WPA cipher that old lab gear and IoT
//! devices may still run: RC4 keyed by the frame's 24-bit IV and the shared key, and
//! a CRC-32 ICV. Pure functions over bytes.

use flate2::Crc;
use rc4::consts::{U16, U19, U8};
use rc4::{KeyInit, Rc4, StreamCipher};

/// The IV and key id octet that start a WEP frame's body, and the ICV that ends it.
const HEADER_LEN: usize = 4;
const ICV_LEN: usize = 4;

/// Key lengths WEP has: WEP-40, WEP-104 and the vendors' WEP-128.
pub(super) const KEY_LENGTHS: [usize; 3] = [5, 13, 16];

/// The MSDU of the WEP frame body `body` (IV first) under `key`, when the ICV comes
/// out; `None` otherwise, for a body too short, or for a key of another length.
pub(super) fn open(body: &[u8], key: &[u8]) -> Option<Vec<u8>> {
    let encrypted = body.get(HEADER_LEN..)?;
    let msdu_len = encrypted.len().checked_sub(ICV_LEN)?;
    let mut plain = encrypted.to_vec();
    rc4(&body[..3], key, &mut plain)?;
    let (msdu, icv) = plain.split_at(msdu_len);
    let mut crc = Crc::new();
    crc.update(msdu);
    if crc.sum().to_le_bytes() != icv {
        return None;
    }
    plain.truncate(msdu_len);
    Some(plain)
}

/// RC4 keyed by `iv` || `key` over `data`; `None` for a key of no WEP length.
fn rc4(iv: &[u8], key: &[u8], data: &mut [u8]) -> Option<()> {
    let mut seed = [0u8; 19];
    let seed = seed.get_mut(..iv.len() + key.len())?;
    seed[..iv.len()].copy_from_slice(iv);
    seed[iv.len()..].copy_from_slice(key);
    match seed.len() {
        8 => Rc4::<U8>::new_from_slice(seed).ok()?.apply_keystream(data),
        16 => Rc4::<U16>::new_from_slice(seed).ok()?.apply_keystream(data),
        19 => Rc4::<U19>::new_from_slice(seed).ok()?.apply_keystream(data),
        _ => return None,
    }
    Some(())
}

/// WEP encapsulation as the standard defines it, for the tests: the frame body.
#[cfg(test)]
pub(super) fn seal(iv: [u8; 3], key_id: u8, key: &[u8], msdu: &[u8]) -> Vec<u8> {
    let mut crc = Crc::new();
    crc.update(msdu);
    let mut plain = [msdu, &crc.sum().to_le_bytes()].concat();
    rc4(&iv, key, &mut plain).unwrap();
    [&iv[..], &[key_id << 6], &plain].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_opens_with_its_key_only() {
        let msdu = b"\xaa\xaa\x03\x00\x00\x00\x08\x00 an IPv4 packet";
        for len in KEY_LENGTHS {
            let key: Vec<u8> = (1..=len as u8).collect();
            let body = seal([0x12, 0x34, 0x56], 0, &key, msdu);
            assert_eq!(open(&body, &key).as_deref(), Some(&msdu[..]), "{len}");
            let mut other = key.clone();
            other[0] ^= 1;
            assert_eq!(open(&body, &other), None);
            assert_eq!(open(&body[..body.len() - 1], &key), None);
            assert_eq!(open(&body[..7], &key), None);
            assert_eq!(open(&body, &key[..4]), None, "a key of no WEP length");
        }
    }

    #[test]
    fn rc4_keyed_by_iv_and_key_as_the_standard_reads() {
        // RFC 6229's 64-bit key 0x0102030405060708, keystream at offset 0: here as
        // IV 01 02 03 and a WEP-40 key 04 05 06 07 08. An empty MSDU's ICV is CRC-32
        // of nothing, 0, so the sealed body ends with the keystream's first 4 bytes.
        let body = seal([1, 2, 3], 0, &[4, 5, 6, 7, 8], b"");
        assert_eq!(&body[4..], &[0x97, 0xab, 0x8a, 0x1b]);
    }
}
