//! The data ciphers of 802.11 (IEEE 802.11-2020 §12.5) as keys: which cipher a
//! suite selector names, and the temporal keys that open frames.

use std::fmt;

/// A pairwise or group data cipher suite of OUI 00-0F-AC (Table 9-149).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cipher {
    Tkip,
    /// CCMP-128: WPA2's and WPA3-Personal's.
    Ccmp128,
    /// GCMP-128: Wi-Fi 6 and 7 access points may offer it (60 GHz DMG's default).
    Gcmp128,
    /// GCMP-256: WPA3-Enterprise 192-bit, Wi-Fi 7.
    Gcmp256,
    /// CCMP-256.
    Ccmp256,
}

impl Cipher {
    /// The cipher of suite type `suite` (00-0F-AC:`suite`); `None` for WEP, BIP and
    /// the reserved ones.
    pub fn of_suite(suite: u8) -> Option<Self> {
        Some(match suite {
            2 => Cipher::Tkip,
            4 => Cipher::Ccmp128,
            8 => Cipher::Gcmp128,
            9 => Cipher::Gcmp256,
            10 => Cipher::Ccmp256,
            _ => return None,
        })
    }

    /// The length of its temporal key, Michael keys included for TKIP.
    pub fn key_len(self) -> usize {
        match self {
            Cipher::Ccmp128 | Cipher::Gcmp128 => 16,
            Cipher::Tkip | Cipher::Gcmp256 | Cipher::Ccmp256 => 32,
        }
    }
}

/// A temporal key: what opens a station's unicast frames (from its PTK) or an access
/// point's group-addressed ones (its GTK), with the cipher it is for.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum TemporalKey {
    /// CCMP-128's AES key.
    Ccmp([u8; 16]),
    /// TKIP's key, then the Michael keys of MSDUs from the authenticator (the access
    /// point) and to it, as the PTK and the GTK hold them (§12.7.1.3, §12.7.1.4).
    Tkip([u8; 32]),
    /// CCMP-256's AES key.
    Ccmp256([u8; 32]),
    /// GCMP-128's AES key.
    Gcmp([u8; 16]),
    /// GCMP-256's AES key.
    Gcmp256([u8; 32]),
    /// A TKIP key given without its Michael keys (16 bytes, as Wireshark shows a
    /// TKIP TK): its frames' ICV is checked, their Michael MIC cannot be.
    TkipIcvOnly([u8; 16]),
}

impl TemporalKey {
    /// The key of `cipher` in `bytes`, `None` when the length is not that cipher's.
    pub fn new(cipher: Cipher, bytes: &[u8]) -> Option<Self> {
        Some(match cipher {
            Cipher::Ccmp128 => TemporalKey::Ccmp(bytes.try_into().ok()?),
            Cipher::Gcmp128 => TemporalKey::Gcmp(bytes.try_into().ok()?),
            Cipher::Tkip => TemporalKey::Tkip(bytes.try_into().ok()?),
            Cipher::Ccmp256 => TemporalKey::Ccmp256(bytes.try_into().ok()?),
            Cipher::Gcmp256 => TemporalKey::Gcmp256(bytes.try_into().ok()?),
        })
    }

    /// A group key whose cipher only its length tells (a WPA1 network, or a station
    /// whose RSN element was not seen): CCMP-128's 16 bytes or TKIP's 32, the two
    /// ciphers of WPA/WPA2 networks.
    pub fn by_length(bytes: &[u8]) -> Option<Self> {
        match bytes.len() {
            16 => TemporalKey::new(Cipher::Ccmp128, bytes),
            32 => TemporalKey::new(Cipher::Tkip, bytes),
            _ => None,
        }
    }

    /// A group key of the `group` cipher a station's RSN element named: of that
    /// cipher when its length is that cipher's, else (no cipher named, or a key of
    /// another length than the one named) [by its length](Self::by_length).
    pub fn of_group(group: Option<Cipher>, bytes: &[u8]) -> Option<Self> {
        group
            .and_then(|cipher| TemporalKey::new(cipher, bytes))
            .or_else(|| TemporalKey::by_length(bytes))
    }

    pub fn cipher(&self) -> Cipher {
        match self {
            TemporalKey::Ccmp(_) => Cipher::Ccmp128,
            TemporalKey::Tkip(_) | TemporalKey::TkipIcvOnly(_) => Cipher::Tkip,
            TemporalKey::Ccmp256(_) => Cipher::Ccmp256,
            TemporalKey::Gcmp(_) => Cipher::Gcmp128,
            TemporalKey::Gcmp256(_) => Cipher::Gcmp256,
        }
    }
}

impl fmt::Debug for TemporalKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key itself.
        f.write_str(match self {
            TemporalKey::Ccmp(_) => "CCMP-128 key",
            TemporalKey::Tkip(_) => "TKIP key",
            TemporalKey::Ccmp256(_) => "CCMP-256 key",
            TemporalKey::Gcmp(_) => "GCMP-128 key",
            TemporalKey::Gcmp256(_) => "GCMP-256 key",
            TemporalKey::TkipIcvOnly(_) => "TKIP key without Michael keys",
        })
    }
}

/// A temporal key given as such (a `tk` line, a debug log's `WPA: TK`): bytes whose
/// cipher nothing says, so it is tried as each cipher of its length.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum GivenTk {
    /// CCMP-128, GCMP-128, or TKIP's key without its Michael keys.
    Bits128([u8; 16]),
    /// TKIP (the key and its two Michael keys), CCMP-256 or GCMP-256.
    Bits256([u8; 32]),
}

impl GivenTk {
    pub fn of_bytes(bytes: &[u8]) -> Option<Self> {
        match bytes.len() {
            16 => bytes.try_into().ok().map(GivenTk::Bits128),
            32 => bytes.try_into().ok().map(GivenTk::Bits256),
            _ => None,
        }
    }

    /// The key as each cipher of its length, the more common first among those a
    /// frame's header does not tell apart (each wrong one costs a whole decryption
    /// of the frame): CCMP-128 before GCMP-128, GCMP-256 (WPA3-Enterprise 192-bit,
    /// Wi-Fi 7) before CCMP-256. TKIP frames are told by their header.
    pub fn keys(&self) -> Vec<TemporalKey> {
        match *self {
            GivenTk::Bits128(k) => vec![
                TemporalKey::Ccmp(k),
                TemporalKey::Gcmp(k),
                TemporalKey::TkipIcvOnly(k),
            ],
            GivenTk::Bits256(k) => vec![
                TemporalKey::Tkip(k),
                TemporalKey::Gcmp256(k),
                TemporalKey::Ccmp256(k),
            ],
        }
    }
}

impl fmt::Debug for GivenTk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GivenTk::Bits128(_) => "128-bit temporal key",
            GivenTk::Bits256(_) => "256-bit temporal key",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suites_and_key_lengths() {
        for (suite, cipher, len) in [
            (2, Cipher::Tkip, 32),
            (4, Cipher::Ccmp128, 16),
            (8, Cipher::Gcmp128, 16),
            (9, Cipher::Gcmp256, 32),
            (10, Cipher::Ccmp256, 32),
        ] {
            assert_eq!(Cipher::of_suite(suite), Some(cipher));
            assert_eq!(cipher.key_len(), len);
            let key = TemporalKey::new(cipher, &vec![7; len]).unwrap();
            assert_eq!(key.cipher(), cipher);
            assert_eq!(TemporalKey::new(cipher, &vec![7; len + 1]), None);
        }
        // WEP-40, WEP-104, BIP-CMAC-128: no data cipher read here.
        for suite in [0, 1, 5, 6, 7, 11, 12, 13, 255] {
            assert_eq!(Cipher::of_suite(suite), None, "{suite}");
        }
    }

    #[test]
    fn given_keys_are_tried_as_each_cipher_of_their_length() {
        let short = GivenTk::of_bytes(&[1; 16]).unwrap();
        let ciphers: Vec<Cipher> = short.keys().iter().map(TemporalKey::cipher).collect();
        assert_eq!(ciphers, [Cipher::Ccmp128, Cipher::Gcmp128, Cipher::Tkip]);
        let long = GivenTk::of_bytes(&[1; 32]).unwrap();
        let ciphers: Vec<Cipher> = long.keys().iter().map(TemporalKey::cipher).collect();
        assert_eq!(ciphers, [Cipher::Tkip, Cipher::Gcmp256, Cipher::Ccmp256]);
        assert_eq!(GivenTk::of_bytes(&[1; 24]), None);
        assert_eq!(format!("{long:?}"), "256-bit temporal key");
        assert_eq!(
            TemporalKey::by_length(&[3; 32]),
            Some(TemporalKey::Tkip([3; 32]))
        );
        assert_eq!(
            TemporalKey::by_length(&[3; 16]),
            Some(TemporalKey::Ccmp([3; 16]))
        );
    }
}
