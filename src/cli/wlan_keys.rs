//! `--wlan-keys FILE`: WEP, WPA, WPA2 and WPA3 keys to decrypt 802.11 captures with, in
//! Wireshark's 802.11 keys file format or as a hostapd or wpa_supplicant debug log
//! holds them (see [`crate::net::wpa`]), for the commands that read captures
//! (`analyze`, `exchanges`, `ingest`, `tap`).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use super::input::Hashed;
use crate::net::wpa::{self, KeysFormat, KeysReader, WlanKeys, WpaStats};

/// Larger is neither a keys file nor a debug log worth reading for its keys.
const MAX_KEYS_FILE_BYTES: u64 = 1 << 30;
/// Longer lines hold no key (debug logs dump whole frames on a line): skipped.
const MAX_LINE_BYTES: usize = 64 << 10;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct WlanKeyArgs {
    /// Keys to decrypt WPA/WPA2/WPA3-Personal (CCMP, TKIP) and WEP 802.11 frames
    /// with: a file in Wireshark's 802.11 keys format, a line each like
    /// `"wpa-pwd","PASSPHRASE:SSID"` (without `:SSID`, the one the capture names),
    /// `"wpa-psk","HEX"` (the PMK; for SAE, the association's), `"msk","HEX"`,
    /// `"tk","HEX"` or `"wep","HEX"`; or the debug log of the lab's hostapd (or a
    /// wpa_supplicant) run with `-d -K`, whose PMKs and TKs are taken; several
    /// allowed. The capture must hold each station's 4-way handshake, unless its TK
    /// is given (WEP has none).
    #[arg(long = "wlan-keys", value_name = "FILE")]
    pub wlan_keys: Vec<PathBuf>,
}

/// One `--wlan-keys` file, read: its keys, and the SHA-256 of the bytes they were
/// read from (`ingest` stores the file as evidence under that hash).
#[derive(Debug)]
pub struct WlanKeysFile {
    pub path: PathBuf,
    /// Lowercase hex.
    pub sha256: String,
    keys: Vec<wpa::WlanKey>,
}

impl WlanKeyArgs {
    /// Reads every file and derives the keys' PMKs; an error names the file and line.
    pub fn load(&self) -> anyhow::Result<Arc<WlanKeys>> {
        Ok(keys_of(&self.read_files()?))
    }

    /// Reads every file; an error names the file and line.
    pub fn read_files(&self) -> anyhow::Result<Vec<WlanKeysFile>> {
        self.wlan_keys
            .iter()
            .map(|path| read_one(path, MAX_KEYS_FILE_BYTES))
            .collect()
    }
}

/// The keys of all `files`, their PMKs derived.
pub fn keys_of(files: &[WlanKeysFile]) -> Arc<WlanKeys> {
    let keys: Vec<wpa::WlanKey> = files.iter().flat_map(|f| f.keys.iter().cloned()).collect();
    Arc::new(WlanKeys::new(&keys))
}

/// One keys file of at most `limit` bytes.
fn read_one(path: &Path, limit: u64) -> anyhow::Result<WlanKeysFile> {
    let what = || format!("802.11 keys file {}", path.display());
    let file = File::open(path).with_context(what)?;
    let size = file.metadata().with_context(what)?.len();
    if size > limit {
        anyhow::bail!("{}: {size} bytes is no keys file", what());
    }
    // The size on disk says nothing for a pipe: the read stops past the limit too.
    let mut input = BufReader::new(Hashed::new(file.take(limit.saturating_add(1)), true));
    let too_large = |input: &BufReader<Hashed<std::io::Take<File>>>| {
        // Past the limit (the reader reads ahead): the line may be cut, so say that.
        input.get_ref().get_ref().limit() == 0
    };
    let mut reader = KeysReader::default();
    let mut line = Vec::new();
    for number in 1.. {
        line.clear();
        let limited = &mut (&mut input).take(MAX_LINE_BYTES as u64 + 1);
        let read = limited.read_until(b'\n', &mut line).with_context(what)?;
        if too_large(&input) {
            anyhow::bail!("{}: larger than {limit} bytes", what());
        }
        if read == 0 {
            break;
        }
        let wireshark = reader.format() == Some(KeysFormat::Wireshark);
        if line.len() > MAX_LINE_BYTES && line.last() != Some(&b'\n') {
            if wireshark {
                anyhow::bail!(
                    "{}: line {number}: longer than {MAX_LINE_BYTES} bytes",
                    what()
                );
            }
            skip_rest_of_line(&mut input).with_context(what)?;
            continue;
        }
        reader.line_bytes(number, &line).with_context(what)?;
    }
    let file = reader.finish();
    for skipped in &file.skipped {
        eprintln!("consentry: {}: {skipped}", what());
    }
    if file.keys.is_empty() {
        anyhow::bail!("{}: no key in it", what());
    }
    let sha256 = input.into_inner().finish().with_context(what)?;
    Ok(WlanKeysFile {
        path: path.to_path_buf(),
        sha256,
        keys: file.keys,
    })
}

/// Consumes input up to and with the next newline.
fn skip_rest_of_line(input: &mut impl BufRead) -> std::io::Result<()> {
    loop {
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            return Ok(());
        }
        match chunk.iter().position(|&b| b == b'\n') {
            Some(at) => {
                input.consume(at + 1);
                return Ok(());
            }
            None => {
                let len = chunk.len();
                input.consume(len);
            }
        }
    }
}

/// What decrypting a capture's 802.11 frames did, for its notes; `None` when there
/// was nothing to decrypt.
pub fn describe(label: &str, stats: &WpaStats) -> Option<String> {
    if *stats == WpaStats::default() {
        return None;
    }
    let mut text = format!(
        "{label}: WPA: {} handshakes with a given key, {} frames decrypted",
        stats.handshakes, stats.decrypted
    );
    if stats.wep_decrypted > 0 {
        text.push_str(&format!(" ({} of them WEP)", stats.wep_decrypted));
    }
    let own_pmk = stats.wrong_key_sae + stats.wrong_key_owe;
    let wrong_wpa2 = stats.wrong_key - own_pmk.min(stats.wrong_key);
    if wrong_wpa2 > 0 {
        text.push_str(&format!(
            "; {wrong_wpa2} handshakes matched no key (wrong passphrase or SSID?)"
        ));
    }
    if stats.wrong_key_sae > 0 {
        text.push_str(&format!(
            "; {} SAE (WPA3) handshakes matched no key (an SAE association needs its PMK as a wpa-psk key)",
            stats.wrong_key_sae
        ));
    }
    if stats.wrong_key_owe > 0 {
        text.push_str(&format!(
            "; {} OWE (Enhanced Open) handshakes matched no key (an OWE association needs its PMK as a wpa-psk key)",
            stats.wrong_key_owe
        ));
    }
    if stats.unsupported > 0 {
        text.push_str(&format!(
            "; {} handshakes not followed (SHA-384 fast transition, SAE-EXT-KEY, FILS or another key management)",
            stats.unsupported
        ));
    }
    if stats.michael_failures > 0 {
        text.push_str(&format!(
            "; {} TKIP frames failed their Michael MIC (forged or damaged)",
            stats.michael_failures
        ));
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_keys_file_without_a_size_is_cut_at_the_limit() {
        // A pipe has no size on disk to check first: the read itself stops.
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("keys");
        let name = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || {
                use std::io::Write;
                let mut w = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
                let line = "\"wpa-pwd\",\"password:lab\"\n";
                // Stops when the reader closes its end (EPIPE).
                for _ in 0..1000 {
                    if w.write_all(line.as_bytes()).is_err() {
                        break;
                    }
                }
            })
        };
        let e = read_one(&fifo, 1000).unwrap_err();
        assert!(
            format!("{e:#}").ends_with("larger than 1000 bytes"),
            "{e:#}"
        );
        writer.join().unwrap();
        // A regular file within the limit reads.
        let file = dir.path().join("80211_keys");
        std::fs::write(&file, "\"wpa-pwd\",\"password:lab\"\n").unwrap();
        assert_eq!(read_one(&file, 1000).unwrap().keys.len(), 1);
        assert!(read_one(&file, 10).is_err());
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("80211_keys");
        std::fs::write(&path, "# lab\n\"wpa-pwd\",\"short:lab\"\n").unwrap();
        let args = WlanKeyArgs {
            wlan_keys: vec![path.clone()],
        };
        let e = format!("{:#}", args.load().unwrap_err());
        assert!(e.contains(&path.display().to_string()), "{e}");
        assert!(e.contains("line 2: a WPA passphrase has 8 to 63"), "{e}");
        std::fs::write(&path, "# nothing\n").unwrap();
        assert!(format!("{:#}", args.load().unwrap_err()).contains("no key in it"));
        std::fs::write(&path, "\"wpa-pwd\",\"password:IEEE\"\n").unwrap();
        assert!(!args.load().unwrap().is_empty());
    }

    #[test]
    fn a_file_is_hashed_as_its_keys_are_read() {
        use sha2::{Digest, Sha256};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hostapd.log");
        // A debug log with a line longer than read (skipped, and still hashed).
        let mut text = format!("1764579600.1: {}\n", "x".repeat(MAX_LINE_BYTES + 10));
        text.push_str("WPA: PMK - hexdump(len=32): ");
        text.push_str(&["81"; 32].join(" "));
        text.push('\n');
        std::fs::write(&path, &text).unwrap();
        let files = WlanKeyArgs {
            wlan_keys: vec![path.clone()],
        }
        .read_files()
        .unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].path, path);
        assert_eq!(
            files[0].sha256,
            crate::source::hex(&Sha256::digest(text.as_bytes()))
        );
        assert!(!keys_of(&files).is_empty());
    }

    #[test]
    fn notes_say_what_was_decrypted_and_what_went_wrong() {
        assert_eq!(describe("x.pcap", &WpaStats::default()), None);
        let stats = WpaStats {
            handshakes: 1,
            wrong_key: 2,
            wrong_key_sae: 0,
            wrong_key_owe: 0,
            unsupported: 0,
            decrypted: 40,
            wep_decrypted: 0,
            michael_failures: 0,
        };
        assert_eq!(
            describe("x.pcap", &stats).unwrap(),
            "x.pcap: WPA: 1 handshakes with a given key, 40 frames decrypted; \
             2 handshakes matched no key (wrong passphrase or SSID?)"
        );
        let sae = WpaStats {
            wrong_key_sae: 1,
            wrong_key_owe: 1,
            unsupported: 1,
            michael_failures: 3,
            wep_decrypted: 5,
            ..stats
        };
        assert_eq!(
            describe("x.pcap", &sae).unwrap(),
            "x.pcap: WPA: 1 handshakes with a given key, 40 frames decrypted (5 of them WEP); \
             1 SAE (WPA3) handshakes matched no key (an SAE association needs its PMK as a wpa-psk key); \
             1 OWE (Enhanced Open) handshakes matched no key (an OWE association needs its PMK as a wpa-psk key); \
             1 handshakes not followed (SHA-384 fast transition, SAE-EXT-KEY, FILS or another key management); \
             3 TKIP frames failed their Michael MIC (forged or damaged)"
        );
    }
}
