//! The keys a user gives for 802.11 decryption, in Wireshark's 802.11 keys file
//! format (`80211_keys`) or as a hostapd or wpa_supplicant debug log holds them,
//! and the PMKs derived from them once per run.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::num::NonZeroU32;

use ring::pbkdf2;

use super::debug_log::{self, LogLine};
use super::wep;
use super::{GivenTk, TemporalKey};

const PBKDF2_ROUNDS: u32 = 4096;
/// Temporal keys kept at most: each is tried on every frame no handshake opens.
pub const MAX_TEMPORAL_KEYS: usize = 64;
/// `wpa-pwd`, `wpa-psk` and `msk` lines of a keys file, at most: each is tried on
/// every handshake of a capture (and a passphrase costs a PBKDF2 of 4 096 rounds), so
/// a keys file that holds millions would stall every capture read with it.
pub const MAX_PMK_KEYS: usize = 256;

/// One decryption key, as a Wireshark 802.11 keys file gives it (a debug log gives
/// `Psk` and `Tk` keys).
#[derive(Clone, PartialEq, Eq)]
pub enum WlanKey {
    /// `wpa-pwd`: a passphrase and the network's SSID; without one, the SSID each
    /// access point names in the capture (beacons, probe responses, associations).
    Passphrase {
        passphrase: String,
        ssid: Option<Vec<u8>>,
    },
    /// `wpa-psk`: the 256-bit PMK itself: a WPA2 network's pre-shared key, or the PMK
    /// of an SAE (WPA3) or OWE association, which the passphrase alone does not give.
    Psk([u8; 32]),
    /// `wpa-psk` of 384 bits: the PMK of a SHA-384 AKM (PSK-SHA384, OWE with group
    /// 20).
    Psk384([u8; 48]),
    /// `msk`: the master session key of an 802.1X (WPA2/WPA3-Enterprise)
    /// authentication, whose first 256 bits are the PMK (its first 384 for the
    /// SHA-384 AKMs, its second 256 the XXKey of fast BSS transition).
    Msk(Vec<u8>),
    /// `tk`: a temporal key, for frames whose handshake is not captured: 16 bytes
    /// (CCMP-128, GCMP-128) or 32 (TKIP's key and its two Michael keys, CCMP-256,
    /// GCMP-256).
    Tk(GivenTk),
    /// `wep`: a WEP key of 5, 13 or 16 bytes.
    Wep(Vec<u8>),
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
            WlanKey::Psk384(_) => f.write_str("wpa-psk (384 bits)"),
            WlanKey::Msk(_) => f.write_str("msk"),
            WlanKey::Tk(_) => f.write_str("tk"),
            WlanKey::Wep(_) => f.write_str("wep"),
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
    /// For a debug log, what it held and could not give (keys printed as `[REMOVED]`,
    /// of lengths not used, beyond the limits), by the first line of each kind.
    pub skipped: Vec<KeysError>,
}

/// The two formats of keys read: Wireshark's 802.11 keys file, or the debug log of
/// hostapd or wpa_supplicant (see [`super::debug_log`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeysFormat {
    Wireshark,
    DebugLog,
}

/// Distinct PMKs kept from a debug log: every message 2 of a capture is tried with
/// each (a PTK and a MIC, some µs), and a capture chooses how many it holds.
pub const MAX_LOG_PMKS: usize = 256;

/// Reads keys a line at a time, so that a long debug log is never held whole. The
/// format is told by the first line that is not blank or a comment: `TYPE,…` is
/// Wireshark's, anything else a debug log. (No `Debug`: it holds the keys.)
#[derive(Default)]
pub struct KeysReader {
    format: Option<KeysFormat>,
    file: KeysFile,
    /// Keys of the debug log so far, to keep each once.
    seen_pmks: HashSet<Vec<u8>>,
    seen_tks: HashSet<GivenTk>,
    /// Lines of a keys file given so far of temporal keys (`tk`, `wep`) and of PMKs
    /// (`wpa-pwd`, `wpa-psk`, `msk`).
    temporal_lines: usize,
    pmk_lines: usize,
    /// What a debug log held and could not give: the first line of each kind, and
    /// how many.
    log_skipped: BTreeMap<LogSkip, (usize, u64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum LogSkip {
    Removed,
    OtherLength(&'static str, usize),
    TooManyPmks,
    TooManyTks,
}

impl KeysReader {
    /// The format, once a line told it.
    pub fn format(&self) -> Option<KeysFormat> {
        self.format
    }

    /// Reads line `number` (from 1); an error names it.
    pub fn line(&mut self, number: usize, line: &str) -> Result<(), KeysError> {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return Ok(());
        }
        let format = *self.format.get_or_insert_with(|| format_of(line));
        match format {
            KeysFormat::Wireshark => self.wireshark_line(number, line),
            KeysFormat::DebugLog => {
                self.log_line(number, line);
                Ok(())
            }
        }
    }

    /// Reads line `number` as bytes: a keys file must be UTF-8, a debug log may print
    /// SSIDs as they are (read with U+FFFD in their place).
    pub fn line_bytes(&mut self, number: usize, bytes: &[u8]) -> Result<(), KeysError> {
        if let Ok(text) = std::str::from_utf8(bytes) {
            return self.line(number, text);
        }
        let text = String::from_utf8_lossy(bytes);
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            return Ok(());
        }
        if self.format.unwrap_or_else(|| format_of(trimmed)) == KeysFormat::Wireshark {
            return Err(KeysError {
                line: number,
                what: "not UTF-8".into(),
            });
        }
        self.line(number, &text)
    }

    /// What the lines gave.
    pub fn finish(mut self) -> KeysFile {
        for (kind, (line, count)) in std::mem::take(&mut self.log_skipped) {
            let what = match kind {
                LogSkip::Removed => format!(
                    "{count} keys printed as [REMOVED]: run hostapd or wpa_supplicant with -K \
                     to have them printed"
                ),
                LogSkip::OtherLength(title, len) => format!(
                    "{count} keys \"{title}\" of {len} bytes skipped (PMKs of 32 or 48 bytes \
                     and TKs of 16 or 32 are used)"
                ),
                LogSkip::TooManyPmks => {
                    format!("{count} PMKs beyond the first {MAX_LOG_PMKS} skipped")
                }
                LogSkip::TooManyTks => {
                    format!("{count} TKs beyond the first {MAX_TEMPORAL_KEYS} skipped")
                }
            };
            self.file.skipped.push(KeysError { line, what });
        }
        self.file.skipped.sort_by_key(|skipped| skipped.line);
        self.file
    }

    fn wireshark_line(&mut self, number: usize, line: &str) -> Result<(), KeysError> {
        let error = |what: String| KeysError { line: number, what };
        let (kind, value) = line
            .split_once(',')
            .ok_or_else(|| error("expected \"TYPE\",\"KEY\"".into()))?;
        let (kind, value) = (unquote(kind), unquote(value));
        let key = match kind {
            "wpa-pwd" => passphrase(value).map_err(&error)?,
            "wpa-psk" => match hex(value) {
                Some(psk) if psk.len() == 32 => WlanKey::Psk(psk.try_into().unwrap_or([0; 32])),
                Some(psk) if psk.len() == 48 => WlanKey::Psk384(psk.try_into().unwrap_or([0; 48])),
                _ => {
                    return Err(error(
                        "a wpa-psk key is 64 hexadecimal digits (96 for the SHA-384 AKMs)".into(),
                    ))
                }
            },
            "msk" => match hex(value) {
                Some(msk) if (64..=128).contains(&msk.len()) => WlanKey::Msk(msk),
                _ => return Err(error("an msk key is 128 to 256 hexadecimal digits".into())),
            },
            "tk" => match hex(value).as_deref().and_then(GivenTk::of_bytes) {
                Some(tk) => WlanKey::Tk(tk),
                None => {
                    return Err(error(
                        "a tk key is 32 hexadecimal digits (CCMP-128, GCMP-128) or 64 (TKIP, \
                         CCMP-256, GCMP-256)"
                            .into(),
                    ))
                }
            },
            // Wireshark writes WEP keys with or without colons between the bytes.
            "wep" => match hex(&value.replace(':', "")) {
                Some(key) if wep::KEY_LENGTHS.contains(&key.len()) => WlanKey::Wep(key),
                _ => {
                    return Err(error(
                        "a wep key is 10, 26 or 32 hexadecimal digits (WEP-40, -104, -128)".into(),
                    ))
                }
            },
            other => {
                return Err(error(format!(
                    "key type {other:?} is not supported (wpa-pwd, wpa-psk, msk, tk and wep are)"
                )))
            }
        };
        let (count, max, kinds) = match key {
            WlanKey::Tk(_) | WlanKey::Wep(_) => {
                (&mut self.temporal_lines, MAX_TEMPORAL_KEYS, "tk and wep")
            }
            _ => (
                &mut self.pmk_lines,
                MAX_PMK_KEYS,
                "wpa-pwd, wpa-psk and msk",
            ),
        };
        if *count == max {
            return Err(error(format!("more than {max} {kinds} keys")));
        }
        *count += 1;
        self.file.keys.push(key);
        Ok(())
    }

    fn log_line(&mut self, number: usize, line: &str) {
        let skip = match debug_log::read_line(line) {
            LogLine::Nothing => return,
            LogLine::Pmk(pmk) if self.seen_pmks.contains(&pmk[..]) => return,
            LogLine::Pmk384(pmk) if self.seen_pmks.contains(&pmk[..]) => return,
            LogLine::Tk(tk) if self.seen_tks.contains(&tk) => return,
            LogLine::Pmk(pmk) if self.seen_pmks.len() < MAX_LOG_PMKS => {
                self.seen_pmks.insert(pmk.to_vec());
                self.file.keys.push(WlanKey::Psk(pmk));
                return;
            }
            LogLine::Pmk384(pmk) if self.seen_pmks.len() < MAX_LOG_PMKS => {
                self.seen_pmks.insert(pmk.to_vec());
                self.file.keys.push(WlanKey::Psk384(pmk));
                return;
            }
            LogLine::Tk(tk) if self.seen_tks.len() < MAX_TEMPORAL_KEYS => {
                self.seen_tks.insert(tk);
                self.file.keys.push(WlanKey::Tk(tk));
                return;
            }
            LogLine::Pmk(_) | LogLine::Pmk384(_) => LogSkip::TooManyPmks,
            LogLine::Tk(_) => LogSkip::TooManyTks,
            LogLine::Removed => LogSkip::Removed,
            LogLine::OtherLength(title, len) => LogSkip::OtherLength(title, len),
        };
        self.log_skipped.entry(skip).or_insert((number, 0)).1 += 1;
    }
}

/// Wireshark's format when the line starts with a key type and a comma.
fn format_of(line: &str) -> KeysFormat {
    let kind = line.split_once(',').map(|(kind, _)| unquote(kind));
    let is_type =
        |k: &str| !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if kind.is_some_and(is_type) {
        KeysFormat::Wireshark
    } else {
        KeysFormat::DebugLog
    }
}

fn unquote(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

/// Reads keys from `text`: Wireshark's 802.11 keys file, one key a line,
/// `"TYPE","KEY"` (the quotes optional), `#` starting a comment:
/// - `"wpa-pwd","PASSPHRASE:SSID"` (the SSID optional), `%3a` and `%25` standing
///   for `:` and `%` in either;
/// - `"wpa-psk","64 HEX DIGITS"`, the PMK (96 digits for the SHA-384 AKMs);
/// - `"msk","HEX"`, an 802.1X master session key of 64 to 128 bytes;
/// - `"tk","HEX"`, a temporal key: 32 hex digits for CCMP-128 and GCMP-128, 64 for
///   TKIP, CCMP-256 and GCMP-256;
/// - `"wep","HEX"`, a WEP key of 10, 26 or 32 hex digits, colons allowed between bytes.
///
/// Other types are errors.
///
/// Or a hostapd or wpa_supplicant debug log, whose PMKs and TKs are taken.
pub fn parse_keys(text: &str) -> Result<KeysFile, KeysError> {
    let mut reader = KeysReader::default();
    for (i, line) in text.lines().enumerate() {
        reader.line(i + 1, line)?;
    }
    Ok(reader.finish())
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
    /// 256-bit PMKs (of passphrases with an SSID, `wpa-psk` keys, MSKs), which are
    /// also the XXKeys of FT-PSK and FT-SAE …
    pub(super) pmks: Vec<[u8; 32]>,
    /// … 384-bit ones (`wpa-psk`, MSKs) …
    pub(super) pmks_384: Vec<[u8; 48]>,
    /// … and the XXKeys of FT-802.1X (the second 256 bits of MSKs).
    pub(super) ft_xxkeys: Vec<[u8; 32]>,
    pub(super) any_ssid: Vec<String>,
    /// The SSIDs passphrases were given with, for fast BSS transition when the
    /// capture does not name its network's.
    pub(super) ssids: Vec<Vec<u8>>,
    /// The `tk` keys as each cipher of their length.
    pub(super) tks: Vec<TemporalKey>,
    pub(super) weps: Vec<Vec<u8>>,
    /// Keys given, as the user counts them.
    given: usize,
}

impl fmt::Debug for WlanKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WlanKeys({} keys)", self.given)
    }
}

impl WlanKeys {
    /// The keys' PMKs, passphrases and TKs, each once (several files, or a debug log
    /// and a keys file, may give the same).
    pub fn new(keys: &[WlanKey]) -> Self {
        fn once<T: PartialEq>(list: &mut Vec<T>, item: T) {
            if !list.contains(&item) {
                list.push(item);
            }
        }
        let mut out = WlanKeys::default();
        let mut given = Vec::new();
        for key in keys {
            if given.contains(&key) {
                continue;
            }
            given.push(key);
            match key {
                WlanKey::Passphrase {
                    passphrase,
                    ssid: Some(ssid),
                } => {
                    once(&mut out.pmks, passphrase_pmk(passphrase, ssid));
                    once(&mut out.ssids, ssid.clone());
                }
                WlanKey::Passphrase {
                    passphrase,
                    ssid: None,
                } => once(&mut out.any_ssid, passphrase.clone()),
                WlanKey::Psk(psk) => once(&mut out.pmks, *psk),
                WlanKey::Psk384(psk) => once(&mut out.pmks_384, *psk),
                WlanKey::Msk(msk) => {
                    if let Some(pmk) = msk.get(..32).and_then(|pmk| pmk.try_into().ok()) {
                        once(&mut out.pmks, pmk);
                    }
                    if let Some(pmk) = msk.get(..48).and_then(|pmk| pmk.try_into().ok()) {
                        once(&mut out.pmks_384, pmk);
                    }
                    if let Some(xxkey) = msk.get(32..64).and_then(|k| k.try_into().ok()) {
                        once(&mut out.ft_xxkeys, xxkey);
                    }
                }
                WlanKey::Tk(tk) => {
                    for key in tk.keys() {
                        once(&mut out.tks, key);
                    }
                }
                WlanKey::Wep(key) => once(&mut out.weps, key.clone()),
            }
        }
        out.given = given.len();
        out
    }

    pub fn is_empty(&self) -> bool {
        self.pmks.is_empty()
            && self.pmks_384.is_empty()
            && self.any_ssid.is_empty()
            && self.tks.is_empty()
            && self.weps.is_empty()
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
            (
                "wpa-pwd,long enough:lab\njustoneword",
                "line 2: expected \"TYPE\",\"KEY\"",
            ),
        ] {
            let e = parse_keys(bad).unwrap_err().to_string();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    /// A debug log line of `title` dumping `bytes`, as hostapd -t -d -K writes it.
    fn dump(title: &str, bytes: &[u8]) -> String {
        let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "1764579600.123456: {title} - hexdump(len={}): {}",
            bytes.len(),
            hex.join(" ")
        )
    }

    #[test]
    fn a_hostapd_debug_log_gives_its_pmks_and_tks_once() {
        let log = [
            "Configuration file: /etc/hostapd/lab.conf".to_string(),
            "1764579600.000001: wlan0: STA 02:00:00:cc:e3:19 IEEE 802.11: authenticated".into(),
            dump("SAE: KCK", &[9; 32]),
            dump("SAE: PMK", &[0x81; 32]),
            dump("WPA: PMK", &[0x81; 32]),
            dump("WPA: PTK", &[7; 48]),
            dump("WPA: TK", &[0x45; 16]),
            dump("WPA: PMK", &[0xdf; 32]),
            "1764579601.000000: WPA: TK - hexdump(len=16): [REMOVED]".into(),
            dump("WPA: TK", &[1; 32]),
            dump("WPA: TK", &[0x45; 16]),
            dump("WPA: TK", &[2; 13]),
        ]
        .join("\n");
        let file = parse_keys(&log).unwrap();
        assert_eq!(
            file.keys,
            [
                WlanKey::Psk([0x81; 32]),
                WlanKey::Tk(GivenTk::Bits128([0x45; 16])),
                WlanKey::Psk([0xdf; 32]),
                WlanKey::Tk(GivenTk::Bits256([1; 32])),
            ]
        );
        assert_eq!(
            file.skipped,
            [
                KeysError {
                    line: 9,
                    what: "1 keys printed as [REMOVED]: run hostapd or wpa_supplicant with -K \
                           to have them printed"
                        .into()
                },
                KeysError {
                    line: 12,
                    what: "1 keys \"WPA: TK\" of 13 bytes skipped (PMKs of 32 or 48 bytes and \
                           TKs of 16 or 32 are used)"
                        .into()
                }
            ]
        );
        // A log run without -K: no key, and why.
        let hidden = "WPA: PMK - hexdump(len=32): [REMOVED]\nWPA: TK - hexdump(len=16): [REMOVED]";
        let file = parse_keys(hidden).unwrap();
        assert!(file.keys.is_empty());
        assert_eq!(file.skipped.len(), 1);
        assert!(file.skipped[0]
            .to_string()
            .starts_with("line 1: 2 keys printed as [REMOVED]"));
    }

    #[test]
    fn the_format_is_told_by_the_first_line_that_says() {
        let mut reader = KeysReader::default();
        for line in ["", "# keys", "  "] {
            reader.line(1, line).unwrap();
        }
        assert_eq!(reader.format(), None);
        reader.line(4, "\"wpa-pks\",\"ab\"").unwrap_err();
        assert_eq!(
            reader.format(),
            Some(KeysFormat::Wireshark),
            "a typo is still one"
        );
        for log_start in [
            "Configuration file: /etc/hostapd.conf",
            "1764579600.123456: random: Trying to read entropy from /dev/random",
            "wlan0: interface state UNINITIALIZED->ENABLED",
        ] {
            let mut reader = KeysReader::default();
            reader.line(1, log_start).unwrap();
            assert_eq!(reader.format(), Some(KeysFormat::DebugLog), "{log_start}");
            // A keys line later in a log is no key.
            reader.line(2, "\"wpa-psk\",\"00\"").unwrap();
            assert!(reader.finish().keys.is_empty());
        }
    }

    #[test]
    fn bytes_that_are_not_utf_8_end_a_keys_file_not_a_log() {
        let mut keys = KeysReader::default();
        let e = keys
            .line_bytes(1, b"\"wpa-pwd\",\"pass\xffword:lab\"")
            .unwrap_err();
        assert_eq!(e.to_string(), "line 1: not UTF-8");
        let mut keys = KeysReader::default();
        keys.line_bytes(1, b"wpa-psk,00").unwrap_err();
        keys.line_bytes(2, b"# \xff comment").unwrap();
        assert!(keys.line_bytes(3, b"wpa-pwd,\xff").is_err());
        let mut log = KeysReader::default();
        log.line_bytes(1, b"wlan0: SSID \xff\xfe lab").unwrap();
        log.line_bytes(2, dump("SAE: PMK", &[0x81; 32]).as_bytes())
            .unwrap();
        assert_eq!(log.finish().keys, [WlanKey::Psk([0x81; 32])]);
    }

    #[test]
    fn a_debug_log_keeps_at_most_so_many_keys() {
        let mut reader = KeysReader::default();
        reader.line(1, "hostapd v2.10").unwrap();
        for i in 0..MAX_TEMPORAL_KEYS as u32 + 3 {
            let mut tk = [0u8; 16];
            tk[..4].copy_from_slice(&i.to_be_bytes());
            reader.line(2 + i as usize, &dump("WPA: TK", &tk)).unwrap();
        }
        let file = reader.finish();
        assert_eq!(file.keys.len(), MAX_TEMPORAL_KEYS);
        assert_eq!(file.skipped.len(), 1);
        assert_eq!(
            file.skipped[0].to_string(),
            format!(
                "line {}: 3 TKs beyond the first {MAX_TEMPORAL_KEYS} skipped",
                MAX_TEMPORAL_KEYS + 2
            )
        );
    }

    proptest::proptest! {
        /// Any text, a keys file or a log around key lines: an answer, never a panic,
        /// and no key a line does not spell out.
        #[test]
        fn any_text_reads_without_panic(
            lines in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::string::string_regex("[ -~é\\t]{0,80}").unwrap(),
                    proptest::string::string_regex(
                        "(\"?(wpa-pwd|wpa-psk|msk|tk|wep)\"?,)?\"?[0-9a-f:%é ]{0,70}\"?"
                    ).unwrap(),
                    proptest::string::string_regex(
                        "([0-9.]{0,12}: )?(WPA: PMK|SAE: PMK|WPA: TK) - hexdump\\(len=[0-9]{1,3}\\):( [0-9a-f]{1,3}){0,40}( \\[REMOVED\\])?"
                    ).unwrap(),
                ],
                0..12,
            )
        ) {
            let text = lines.join("\n");
            if let Ok(file) = parse_keys(&text) {
                proptest::prop_assert!(file.keys.len() <= lines.len());
            }
        }
    }

    #[test]
    fn the_same_key_given_twice_is_kept_once() {
        let keys = WlanKeys::new(&[
            WlanKey::Psk([1; 32]),
            WlanKey::Tk(GivenTk::Bits128([2; 16])),
            WlanKey::Psk([1; 32]),
            WlanKey::Tk(GivenTk::Bits128([2; 16])),
        ]);
        // The TK as CCMP-128's, GCMP-128's and TKIP's without Michael keys.
        assert_eq!((keys.pmks.len(), keys.tks.len()), (1, 3));
        assert_eq!(format!("{keys:?}"), "WlanKeys(2 keys)");
    }

    #[test]
    fn at_most_256_pmk_keys_per_file() {
        let line = |i: usize| format!("\"wpa-psk\",\"{:064x}\"\n", i);
        let most: String = (0..MAX_PMK_KEYS).map(line).collect();
        assert_eq!(parse_keys(&most).unwrap().keys.len(), MAX_PMK_KEYS);
        let more = most + &line(MAX_PMK_KEYS);
        let e = parse_keys(&more).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "line {}: more than 256 wpa-pwd, wpa-psk and msk keys",
                MAX_PMK_KEYS + 1
            )
        );
        // Temporal keys count apart.
        let mixed = (0..MAX_PMK_KEYS).map(line).collect::<String>() + "\"wep\",\"0102030405\"\n";
        assert_eq!(parse_keys(&mixed).unwrap().keys.len(), MAX_PMK_KEYS + 1);
    }

    #[test]
    fn wireshark_test_suites_384_bit_pmks() {
        // Wireshark's own test keys file holds a PMK of 96 hex digits (Suite B).
        let pmk = "fc738f5b63ba93ebf0a45d42c5a0b1b5064649fa98f59bc062c2944de3780fe2\
                   76088c95daaf672deb6780051aa13563";
        let file = parse_keys(&format!("\"wpa-psk\",\"{pmk}\"")).unwrap();
        let want: [u8; 48] = unhex(pmk).try_into().unwrap();
        assert_eq!(file.keys, [WlanKey::Psk384(want)]);
        assert_eq!(format!("{:?}", file.keys[0]), "wpa-psk (384 bits)");
        assert_eq!(WlanKeys::new(&file.keys).pmks_384, [want]);
        let e = parse_keys(&format!("\"wpa-psk\",\"{pmk}00\"")).unwrap_err();
        assert!(e.to_string().contains("96 for the SHA-384 AKMs"), "{e}");
    }

    #[test]
    fn enterprise_temporal_and_wep_keys() {
        let msk = "ab".repeat(64);
        let tk = "0102030405060708090a0b0c0d0e0f10";
        let text = format!(
            "\"wep\",\"0102030405\"\n\"msk\",\"{msk}\"\n\"tk\",\"{tk}\"\n\"tk\",\"{tk}{tk}\"\n\
             \"wep\",\"a1:b2:c3:d4:e5:f6:07:18:29:3a:4b:5c:6d\"\n"
        );
        let file = parse_keys(&text).unwrap();
        let tkip = [unhex(tk), unhex(tk)].concat().try_into().unwrap();
        assert_eq!(
            file.keys,
            [
                WlanKey::Wep(vec![1, 2, 3, 4, 5]),
                WlanKey::Msk(vec![0xab; 64]),
                WlanKey::Tk(GivenTk::Bits128(unhex(tk).try_into().unwrap())),
                WlanKey::Tk(GivenTk::Bits256(tkip)),
                WlanKey::Wep(unhex("a1b2c3d4e5f60718293a4b5c6d")),
            ]
        );
        assert!(file.skipped.is_empty());
        // The MSK's first 256 bits are the PMK (its first 384 that of the SHA-384
        // AKMs, its second 256 the XXKey of FT-802.1X); TKs are tried as each cipher
        // of their length (3 + 3).
        let keys = WlanKeys::new(&file.keys);
        assert_eq!(keys.pmks, [[0xab; 32]]);
        assert_eq!(keys.pmks_384, [[0xab; 48]]);
        assert_eq!(keys.ft_xxkeys, [[0xab; 32]]);
        assert_eq!((keys.tks.len(), keys.weps.len()), (6, 2));
        assert_eq!(format!("{keys:?}"), "WlanKeys(5 keys)");
        // At most 64 temporal and WEP keys together.
        let many = format!("\"tk\",\"{tk}\"\n\"wep\",\"0102030405\"\n").repeat(MAX_TEMPORAL_KEYS);
        let e = parse_keys(&many).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "line {}: more than 64 tk and wep keys",
                MAX_TEMPORAL_KEYS + 1
            )
        );
        // WEP keys of other lengths, or not hex.
        for bad in ["\"wep\",\"010203\"", "\"wep\",\"01:02:03:04:0g\""] {
            let e = parse_keys(bad).unwrap_err().to_string();
            assert!(
                e.contains("a wep key is 10, 26 or 32 hexadecimal digits"),
                "{e}"
            );
        }
    }
}
