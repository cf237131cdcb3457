//! The keys a user gives for 802.11 decryption, in Wireshark's 802.11 keys file
//! format (`80211_keys`), and the PMKs derived from them once per run.

use std::fmt;
use std::num::NonZeroU32;

use ring::pbkdf2;

const PBKDF2_ROUNDS: u32 = 4096;
/// Temporal keys kept at most: each is tried on every frame no handshake opens.
pub const MAX_TEMPORAL_KEYS: usize = 64;

/// One decryption key, as a Wireshark 802.11 keys file gives it.
#[derive(Clone, PartialEq, Eq)]
pub enum WlanKey {
    /// `wpa-pwd`: a passphrase and the network's SSID; without one, the SSID each
    /// access point names in the capture (beacons, probe responses, associations).
    Passphrase {
        passphrase: String,
        ssid: Option<Vec<u8>>,
    },
    /// `wpa-psk`: the 256-bit PMK itself: a WPA2 network's pre-shared key, or the PMK
    /// of an SAE (WPA3) association, which the passphrase alone does not give.
    Psk([u8; 32]),
    /// `msk`: the master session key of an 802.1X (WPA2-Enterprise) authentication,
    /// whose first 256 bits are the PMK.
    Msk(Vec<u8>),
    /// `tk`: a CCMP-128 temporal key, for frames whose handshake is not captured.
    Tk([u8; 16]),
}

impl fmt::Debug for WlanKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secret itself.
        match self {
            WlanKey::Passphrase {
                ssid: Some(ssid), ..
            } => write!(f, "wpa-pwd for SSID {:?}", String::from_utf8_lossy(ssid)),
            WlanKey::Passphrase { ssid: None, .. } => {
                f.write_str("wpa-pwd for the SSIDs the capture names")
            }
            WlanKey::Psk(_) => f.write_str("wpa-psk"),
            WlanKey::Msk(_) => f.write_str("msk"),
            WlanKey::Tk(_) => f.write_str("tk"),
        }
    }
}

/// A line of a keys file that cannot be read, or that is skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {what}")]
pub struct KeysError {
    pub line: usize,
    pub what: String,
}

/// What a keys file gives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeysFile {
    pub keys: Vec<WlanKey>,
    /// Lines of keys Wireshark knows and consentry does not use (WEP, 256-bit
    /// temporal keys), with why: a user's own `80211_keys` stays usable as it is.
    pub skipped: Vec<KeysError>,
}

/// Reads Wireshark's 802.11 keys file: one key a line, `"TYPE","KEY"` (the quotes
/// optional), `#` starting a comment:
/// - `"wpa-pwd","PASSPHRASE:SSID"` (the SSID optional), `%3a` and `%25` standing
///   for `:` and `%` in either;
/// - `"wpa-psk","64 HEX DIGITS"`, the PMK;
/// - `"msk","HEX"`, an 802.1X master session key of 64 to 128 bytes;
/// - `"tk","32 HEX DIGITS"`, a CCMP-128 temporal key;
/// - `"wep","HEX"` and 256-bit temporal keys are skipped; other types are errors.
pub fn parse_keys(text: &str) -> Result<KeysFile, KeysError> {
    let mut file = KeysFile::default();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let error = |what: String| KeysError { line: i + 1, what };
        let (kind, value) = line
            .split_once(',')
            .ok_or_else(|| error("expected \"TYPE\",\"KEY\"".into()))?;
        let unquote = |s: &str| {
            let s = s.trim();
            s.strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .unwrap_or(s)
                .to_string()
        };
        let (kind, value) = (unquote(kind), unquote(value));
        let key = match kind.as_str() {
            "wpa-pwd" => passphrase(&value).map_err(&error)?,
            "wpa-psk" => {
                let psk = hex(&value)
                    .and_then(|psk| psk.try_into().ok())
                    .ok_or_else(|| error("a wpa-psk key is 64 hexadecimal digits".into()))?;
                WlanKey::Psk(psk)
            }
            "msk" => match hex(&value) {
                Some(msk) if (64..=128).contains(&msk.len()) => WlanKey::Msk(msk),
                _ => return Err(error("an msk key is 128 to 256 hexadecimal digits".into())),
            },
            "tk" => match hex(&value).map(|tk| (tk.len(), tk.try_into())) {
                Some((_, Ok(tk))) => WlanKey::Tk(tk),
                Some((32, _)) => {
                    let what = "256-bit temporal keys (CCMP-256, GCMP-256) are not supported";
                    file.skipped.push(error(format!("{what}, skipped")));
                    continue;
                }
                _ => return Err(error("a tk key is 32 hexadecimal digits (CCMP-128)".into())),
            },
            "wep" => {
                file.skipped
                    .push(error("WEP keys are not supported, skipped".into()));
                continue;
            }
            other => {
                return Err(error(format!(
                    "key type {other:?} is not supported (wpa-pwd, wpa-psk, msk and tk are)"
                )))
            }
        };
        let temporal =
            |keys: &[WlanKey]| keys.iter().filter(|k| matches!(k, WlanKey::Tk(_))).count();
        if matches!(key, WlanKey::Tk(_)) && temporal(&file.keys) == MAX_TEMPORAL_KEYS {
            return Err(error(format!("more than {MAX_TEMPORAL_KEYS} tk keys")));
        }
        file.keys.push(key);
    }
    Ok(file)
}

/// A `wpa-pwd` value: the passphrase, and the SSID after the first `:`.
fn passphrase(value: &str) -> Result<WlanKey, String> {
    let (passphrase, ssid) = match value.split_once(':') {
        Some((passphrase, ssid)) => (passphrase, Some(ssid)),
        None => (value, None),
    };
    let passphrase = String::from_utf8(percent_decode(passphrase)?)
        .map_err(|_| "the passphrase is not UTF-8".to_string())?;
    if !(8..=63).contains(&passphrase.len()) {
        return Err(format!(
            "a WPA passphrase has 8 to 63 characters, this one {}",
            passphrase.len()
        ));
    }
    let ssid = ssid.map(percent_decode).transpose()?;
    if let Some(ssid) = ssid.as_ref().filter(|s| !(1..=32).contains(&s.len())) {
        return Err(format!(
            "an SSID has 1 to 32 bytes, this one {}",
            ssid.len()
        ));
    }
    Ok(WlanKey::Passphrase { passphrase, ssid })
}

fn percent_decode(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b != b'%' {
            out.push(b);
            continue;
        }
        let hex: Vec<u8> = bytes.by_ref().take(2).collect();
        let digit = |h: Option<&u8>| h.and_then(|h| char::from(*h).to_digit(16));
        match (digit(hex.first()), digit(hex.get(1))) {
            (Some(hi), Some(lo)) => out.push((hi * 16 + lo) as u8),
            _ => return Err(format!("bad escape in {s:?}: % needs two hex digits")),
        }
    }
    Ok(out)
}

/// The bytes of an even number of hexadecimal digits.
fn hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// PMK of a passphrase and SSID (IEEE 802.11-2020 annex J, PBKDF2-HMAC-SHA1).
pub fn passphrase_pmk(passphrase: &str, ssid: &[u8]) -> [u8; 32] {
    let mut pmk = [0u8; 32];
    let rounds = NonZeroU32::new(PBKDF2_ROUNDS).unwrap_or(NonZeroU32::MIN);
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA1,
        rounds,
        ssid,
        passphrase.as_bytes(),
        &mut pmk,
    );
    pmk
}

/// The PMKs of the keys given, derived once for every capture read with them, the
/// passphrases given without an SSID, and the temporal keys.
#[derive(Clone, Default)]
pub struct WlanKeys {
    pub(super) pmks: Vec<[u8; 32]>,
    pub(super) any_ssid: Vec<String>,
    pub(super) tks: Vec<[u8; 16]>,
}

impl fmt::Debug for WlanKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = self.pmks.len() + self.any_ssid.len() + self.tks.len();
        write!(f, "WlanKeys({keys} keys)")
    }
}

impl WlanKeys {
    pub fn new(keys: &[WlanKey]) -> Self {
        let mut out = WlanKeys::default();
        for key in keys {
            match key {
                WlanKey::Passphrase {
                    passphrase,
                    ssid: Some(ssid),
                } => out.pmks.push(passphrase_pmk(passphrase, ssid)),
                WlanKey::Passphrase {
                    passphrase,
                    ssid: None,
                } => out.any_ssid.push(passphrase.clone()),
                WlanKey::Psk(psk) => out.pmks.push(*psk),
                WlanKey::Msk(msk) => {
                    if let Some(pmk) = msk.get(..32).and_then(|pmk| pmk.try_into().ok()) {
                        out.pmks.push(pmk);
                    }
                }
                WlanKey::Tk(tk) => out.tks.push(*tk),
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.pmks.is_empty() && self.any_ssid.is_empty() && self.tks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::wpa::eapol::tests::hex as unhex;

    #[test]
    fn passphrase_to_pmk_as_ieee_802_11_annex_j() {
        // The passphrase-to-PSK test vectors of IEEE 802.11's annex J.
        assert_eq!(
            passphrase_pmk("password", b"IEEE").to_vec(),
            unhex("f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e")
        );
        assert_eq!(
            passphrase_pmk("ThisIsAPassword", b"ThisIsASSID").to_vec(),
            unhex("0dc0d6eb90555ed6419756b9a15ec3e3209b63df707dd508d14581f8982721af")
        );
    }

    #[test]
    fn keys_files_as_wireshark_writes_them() {
        let text = "# lab\n\"wpa-pwd\",\"correct horse%3abattery:lab%25net\"\n\n\
                    wpa-psk,f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e\n";
        let keys = parse_keys(text).unwrap().keys;
        assert_eq!(
            keys[0],
            WlanKey::Passphrase {
                passphrase: "correct horse:battery".into(),
                ssid: Some(b"lab%net".to_vec())
            }
        );
        assert_eq!(keys[1], WlanKey::Psk(passphrase_pmk("password", b"IEEE")));
        assert_eq!(format!("{:?}", keys[0]), "wpa-pwd for SSID \"lab%net\"");
        // Without an SSID: the one the capture names.
        let any = parse_keys("\"wpa-pwd\",\"correct horse battery staple\"").unwrap();
        assert_eq!(
            any.keys,
            [WlanKey::Passphrase {
                passphrase: "correct horse battery staple".into(),
                ssid: None
            }]
        );
        assert_eq!(
            format!("{:?}", any.keys[0]),
            "wpa-pwd for the SSIDs the capture names"
        );
        for (bad, want) in [
            (
                "\"wpa-pwd\",\"long enough:\"",
                "line 1: an SSID has 1 to 32 bytes, this one 0",
            ),
            ("\"wpa-pwd\",\"short:lab\"", "8 to 63 characters"),
            ("\"wpa-psk\",\"abcd\"", "64 hexadecimal digits"),
            ("\"msk\",\"abcd\"", "128 to 256 hexadecimal digits"),
            ("\"tk\",\"0102\"", "32 hexadecimal digits"),
            (
                "\"tk\",\"zz02030405060708090a0b0c0d0e0f10\"",
                "32 hexadecimal digits",
            ),
            ("\"wpa-pwd\",\"long enough%zz:x\"", "% needs two hex digits"),
            (
                "\"wpa-pks\",\"ab\"",
                "key type \"wpa-pks\" is not supported",
            ),
            ("justoneword", "expected \"TYPE\",\"KEY\""),
        ] {
            let e = parse_keys(bad).unwrap_err().to_string();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn enterprise_and_temporal_keys_and_the_ones_skipped() {
        let msk = "ab".repeat(64);
        let tk = "0102030405060708090a0b0c0d0e0f10";
        let text = format!(
            "\"wep\",\"0102030405\"\n\"msk\",\"{msk}\"\n\"tk\",\"{tk}\"\n\"tk\",\"{tk}{tk}\"\n"
        );
        let file = parse_keys(&text).unwrap();
        assert_eq!(
            file.keys,
            [
                WlanKey::Msk(vec![0xab; 64]),
                WlanKey::Tk(unhex(tk).try_into().unwrap())
            ]
        );
        assert_eq!(
            file.skipped,
            [
                KeysError {
                    line: 1,
                    what: "WEP keys are not supported, skipped".into()
                },
                KeysError {
                    line: 4,
                    what: "256-bit temporal keys (CCMP-256, GCMP-256) are not supported, skipped"
                        .into()
                }
            ]
        );
        // The MSK's first 256 bits are the PMK; TKs are kept as they are.
        let keys = WlanKeys::new(&file.keys);
        assert_eq!(keys.pmks, [[0xab; 32]]);
        assert_eq!(keys.tks.len(), 1);
        assert_eq!(format!("{keys:?}"), "WlanKeys(2 keys)");
        let many = format!("\"tk\",\"{tk}\"\n").repeat(MAX_TEMPORAL_KEYS + 1);
        let e = parse_keys(&many).unwrap_err().to_string();
        assert_eq!(
            e,
            format!("line {}: more than 64 tk keys", MAX_TEMPORAL_KEYS + 1)
        );
    }
}
