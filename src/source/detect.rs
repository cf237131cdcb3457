//! Input type detection from content, never from the file name (DESIGN.md §9).
//!
//! The CLI reads the first [`DETECT_PREFIX`] bytes of a file and asks [`detect`] what it
//! is; the answer picks the reader (pcap, pcapng, HAR or JSON lines). Pure: no I/O.

/// How many bytes of a file [`detect`] needs to see at most.
pub const DETECT_PREFIX: usize = 8 * 1024;

/// The kinds of input file consentry reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// HTTP Archive 1.2 (JSON with a top-level `log` object).
    Har,
    /// Classic libpcap file (any byte order, micro- or nanosecond resolution).
    Pcap,
    /// pcapng (starts with a section header block).
    Pcapng,
    /// JSON lines: one JSON object per line.
    Jsonl,
}

impl InputKind {
    /// Short lowercase name for messages (`har`, `pcap`, …).
    pub fn name(self) -> &'static str {
        match self {
            InputKind::Har => "har",
            InputKind::Pcap => "pcap",
            InputKind::Pcapng => "pcapng",
            InputKind::Jsonl => "jsonl",
        }
    }
}

const PCAP_MAGICS: [[u8; 4]; 4] = [
    [0xa1, 0xb2, 0xc3, 0xd4], // microseconds, big-endian
    [0xd4, 0xc3, 0xb2, 0xa1], // microseconds, little-endian
    [0xa1, 0xb2, 0x3c, 0x4d], // nanoseconds, big-endian
    [0x4d, 0x3c, 0xb2, 0xa1], // nanoseconds, little-endian
];
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// What `prefix` (the first bytes of a file, ideally [`DETECT_PREFIX`] of them) holds.
///
/// - pcap / pcapng by their magic numbers;
/// - HAR: a JSON object (after an optional UTF-8 BOM and whitespace) whose first key
///   is `"log"`, or which has a top-level `"log": {` within the prefix;
/// - JSON lines: a first line that is a complete JSON object and not a HAR (or, when
///   the first line is longer than the prefix, valid JSON as far as it goes).
pub fn detect(prefix: &[u8]) -> Option<InputKind> {
    let prefix = &prefix[..prefix.len().min(DETECT_PREFIX)];
    if let Some(magic) = prefix.get(..4) {
        if PCAP_MAGICS.iter().any(|m| m == magic) {
            return Some(InputKind::Pcap);
        }
        if magic == PCAPNG_MAGIC {
            return Some(InputKind::Pcapng);
        }
    }
    let text = prefix.strip_prefix(UTF8_BOM).unwrap_or(prefix);
    let start = text.iter().position(|b| !b.is_ascii_whitespace())?;
    let text = &text[start..];
    if text.first() != Some(&b'{') {
        return None;
    }
    let keys = TopLevelKeys::scan(text);
    if keys.first_key_is_log {
        return Some(InputKind::Har);
    }
    let newline = text.iter().position(|&b| b == b'\n');
    let first_line = &text[..newline.unwrap_or(text.len())];
    match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(first_line) {
        Ok(_) => return Some(InputKind::Jsonl),
        // A first line longer than the prefix: valid JSON as far as we can see.
        Err(e) if e.is_eof() && newline.is_none() && prefix.len() == DETECT_PREFIX => {
            if !keys.has_log_object {
                return Some(InputKind::Jsonl);
            }
        }
        Err(_) => {}
    }
    if keys.has_log_object {
        return Some(InputKind::Har);
    }
    None
}

/// What a bounded scan of the top-level object's keys found.
#[derive(Default)]
struct TopLevelKeys {
    first_key_is_log: bool,
    has_log_object: bool,
}

impl TopLevelKeys {
    /// A tiny JSON tokenizer: tracks nesting and strings, and looks at each key of the
    /// outermost object and the first byte of its value. Stops at the end of `text`.
    fn scan(text: &[u8]) -> TopLevelKeys {
        let mut found = TopLevelKeys::default();
        let mut depth = 0usize;
        let mut expect_key = false; // at depth 1, after `{` or `,`
        let mut key_count = 0usize;
        let mut i = 0;
        while i < text.len() {
            let b = text[i];
            match b {
                b'"' => {
                    let Some(end) = string_end(text, i + 1) else {
                        return found;
                    };
                    if depth == 1 && expect_key {
                        let key = &text[i + 1..end];
                        key_count += 1;
                        // The value starts after optional whitespace, `:`, whitespace.
                        let rest = &text[end + 1..];
                        let mut j = 0;
                        while j < rest.len() && rest[j].is_ascii_whitespace() {
                            j += 1;
                        }
                        if rest.get(j) == Some(&b':') {
                            j += 1;
                            while j < rest.len() && rest[j].is_ascii_whitespace() {
                                j += 1;
                            }
                            if key == b"log" {
                                if key_count == 1 {
                                    found.first_key_is_log = true;
                                }
                                if rest.get(j) == Some(&b'{') {
                                    found.has_log_object = true;
                                }
                            }
                        }
                        expect_key = false;
                    }
                    i = end + 1;
                    continue;
                }
                b'{' | b'[' => {
                    depth += 1;
                    expect_key = depth == 1 && b == b'{';
                }
                b'}' | b']' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return found;
                    }
                }
                b',' if depth == 1 => expect_key = true,
                _ => {}
            }
            i += 1;
        }
        found
    }
}

/// Index of the closing quote of a JSON string whose content starts at `from`.
fn string_end(text: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i < text.len() {
        match text[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pcap_and_pcapng_magics() {
        for m in PCAP_MAGICS {
            let mut v = m.to_vec();
            v.extend_from_slice(&[0, 2, 0, 4]);
            assert_eq!(detect(&v), Some(InputKind::Pcap));
        }
        assert_eq!(
            detect(&[0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0]),
            Some(InputKind::Pcapng)
        );
    }

    #[test]
    fn har_variants() {
        assert_eq!(
            detect(br#"{"log":{"version":"1.2"}}"#),
            Some(InputKind::Har)
        );
        assert_eq!(
            detect(b"\xEF\xBB\xBF\r\n  {\n\t\"log\" :\n {\n\"version\""),
            Some(InputKind::Har)
        );
        // Truncated prefix of a pretty-printed HAR.
        assert_eq!(detect(b"{\n  \"log\": {\n    \"ver"), Some(InputKind::Har));
        // `log` not first, but a top-level object member.
        assert_eq!(
            detect(b"{\n \"comment\": \"x\",\n \"log\": {\n \"entries\": ["),
            Some(InputKind::Har)
        );
        // A HAR written on one line is still a HAR, not JSON lines.
        assert_eq!(detect(br#"{"log":{"entries":[]}}"#), Some(InputKind::Har));
    }

    #[test]
    fn jsonl_and_unknown() {
        assert_eq!(
            detect(b"{\"a\":1,\"log\":2}\n{\"a\":2}\n"),
            Some(InputKind::Jsonl)
        );
        assert_eq!(detect(b"{\"foo\":1}"), Some(InputKind::Jsonl));
        // A nested `log` key does not make a HAR.
        assert_eq!(detect(b"{\n \"x\": {\"log\": {}},\n \"y\": ["), None);
        assert_eq!(detect(b""), None);
        assert_eq!(detect(b"   \n"), None);
        assert_eq!(detect(b"[1,2,3]"), None);
        assert_eq!(detect(b"GET / HTTP/1.1\r\n"), None);
        assert_eq!(detect(b"{\n  \"foo\": 1\n}"), None);
        // A JSON line longer than the prefix.
        let mut long = br#"{"body": ""#.to_vec();
        long.resize(DETECT_PREFIX + 100, b'x');
        assert_eq!(detect(&long[..DETECT_PREFIX]), Some(InputKind::Jsonl));
        long[50] = b'"';
        assert_eq!(
            detect(&long[..DETECT_PREFIX]),
            None,
            "not JSON after byte 50"
        );
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = detect(&bytes);
        }

        #[test]
        fn never_panics_on_jsonish(s in "[{}\\[\\]\",:\\\\ a-z\n]{0,200}") {
            let _ = detect(s.as_bytes());
        }
    }
}
