//! The keys in a hostapd or wpa_supplicant debug log (`-d -K`, or `-dd -K`), so that
//! a lab's access point log can be given as it is: every PMK the daemon derived a
//! PTK from (`WPA: PMK - hexdump(len=32): …`, 48 bytes for the SHA-384 AKMs), the
//! PMK of every SAE exchange (`SAE: PMK - …`), and every temporal key (`WPA: TK -
//! hexdump(len=16): …`, 32 bytes for TKIP, CCMP-256 and GCMP-256).
//! Without `-K` the daemons write `[REMOVED]` instead of the bytes, which is told
//! apart so the user can be told to add it. Pure: one line in, one answer out.

use super::GivenTk;

/// What a line of a debug log gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum LogLine {
    Pmk([u8; 32]),
    /// A PMK of the SHA-384 AKMs.
    Pmk384([u8; 48]),
    Tk(GivenTk),
    /// A key the daemon did not print (run without `-K`).
    Removed,
    /// A key of a length not used here (WEP keys, SHA-512 PMKs): its title and
    /// length.
    OtherLength(&'static str, usize),
    /// Any other line.
    Nothing,
}

/// The key titles read, and how `wpa_hexdump_key` starts their lines.
const TITLES: [(&str, &str); 3] = [
    ("WPA: PMK", "WPA: PMK - hexdump(len="),
    ("SAE: PMK", "SAE: PMK - hexdump(len="),
    ("WPA: TK", "WPA: TK - hexdump(len="),
];

/// Reads one line of a debug log: `[TIMESTAMP: ]TITLE - hexdump(len=N): xx xx …`.
pub(super) fn read_line(line: &str) -> LogLine {
    let Some((title, at, rest)) = TITLES.iter().find_map(|(title, start)| {
        let at = line.find(start)?;
        Some((*title, at, &line[at + start.len()..]))
    }) else {
        return LogLine::Nothing;
    };
    // The title starts the line or follows a timestamp's ": ".
    if at != 0 && !line[..at].ends_with(": ") {
        return LogLine::Nothing;
    }
    let Some((len, bytes)) = rest.split_once("):") else {
        return LogLine::Nothing;
    };
    let Ok(len) = len.parse::<usize>() else {
        return LogLine::Nothing;
    };
    let bytes = bytes.trim();
    if bytes == "[REMOVED]" {
        return LogLine::Removed;
    }
    let parsed: Option<Vec<u8>> = bytes
        .split(' ')
        .map(|b| {
            (b.len() == 2)
                .then(|| u8::from_str_radix(b, 16).ok())
                .flatten()
        })
        .collect();
    let Some(parsed) = parsed.filter(|p| p.len() == len) else {
        return LogLine::Nothing;
    };
    let other = LogLine::OtherLength(title, len);
    match title {
        "WPA: TK" => GivenTk::of_bytes(&parsed).map_or(other, LogLine::Tk),
        _ => match parsed.len() {
            32 => parsed.try_into().map_or(other, LogLine::Pmk),
            48 => parsed.try_into().map_or(other, LogLine::Pmk384),
            _ => other,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hexdump(title: &str, bytes: &[u8]) -> String {
        let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!("{title} - hexdump(len={}): {}", bytes.len(), hex.join(" "))
    }

    #[test]
    fn keys_as_hostapd_and_wpa_supplicant_print_them() {
        let pmk = [0x81; 32];
        assert_eq!(read_line(&hexdump("SAE: PMK", &pmk)), LogLine::Pmk(pmk));
        let stamped = format!("1764579600.123456: {}", hexdump("WPA: PMK", &pmk));
        assert_eq!(read_line(&stamped), LogLine::Pmk(pmk));
        assert_eq!(
            read_line(&hexdump("WPA: TK", &[0x45; 16])),
            LogLine::Tk(GivenTk::Bits128([0x45; 16]))
        );
        assert_eq!(
            read_line("1764579600.123456: WPA: TK - hexdump(len=16): [REMOVED]"),
            LogLine::Removed
        );
        // A 32-byte TK (TKIP's with its Michael keys, CCMP-256's, GCMP-256's); a
        // SHA-384 AKM's PMK (48); a WEP-104 key (13), a SHA-512 PMK (64).
        assert_eq!(
            read_line(&hexdump("WPA: TK", &[1; 32])),
            LogLine::Tk(GivenTk::Bits256([1; 32]))
        );
        assert_eq!(
            read_line(&hexdump("WPA: PMK", &[1; 48])),
            LogLine::Pmk384([1; 48])
        );
        assert_eq!(
            read_line(&hexdump("WPA: TK", &[1; 13])),
            LogLine::OtherLength("WPA: TK", 13)
        );
        assert_eq!(
            read_line(&hexdump("WPA: PMK", &[1; 64])),
            LogLine::OtherLength("WPA: PMK", 64)
        );
    }

    #[test]
    fn other_lines_and_broken_dumps_give_nothing() {
        for line in [
            "",
            "wlan0: STA 02:00:00:00:01:00 WPA: pairwise key handshake completed (RSN)",
            "WPA: KCK - hexdump(len=16): 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f",
            "WPA: PMKID - hexdump(len=16): 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f",
            "WPA: TK - hexdump(len=16): 00 01 02",
            "WPA: TK - hexdump(len=3): 00 01 zz",
            "WPA: TK - hexdump(len=x): 00",
            "WPA: TK - hexdump(len=2 00 01",
            "xWPA: TK - hexdump(len=1): 00",
            "WPA: TK - hexdump(len=1): 000",
        ] {
            assert_eq!(read_line(line), LogLine::Nothing, "{line}");
        }
        // Every cut of a key line, and one with a multi-byte character before it.
        let line = format!("é: {}", hexdump("SAE: PMK", &[0x81; 32]));
        assert_eq!(read_line(&line), LogLine::Pmk([0x81; 32]));
        for (cut, _) in line.char_indices() {
            let short = &line[..cut];
            assert!(
                matches!(
                    read_line(short),
                    LogLine::Nothing | LogLine::OtherLength(..)
                ),
                "{short}"
            );
        }
    }
}
