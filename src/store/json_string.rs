//! JSON string literals written byte for byte as `serde_json` writes them, for the
//! canonical bytes of records written without serde ([`super::record::ExchangeBodyRef`]).
//!
//! Why: serde_json looks each byte up in a table, and the raw heads a proxy exchange
//! record carries are long runs that need no escape, cut by a CRLF every 20–40 bytes
//! (its escaping was 2 % of the proxy's CPU). Here the next byte to escape is found
//! eight bytes at a time (SWAR), and the runs in between are copied whole.
//!
//! The escapes are serde_json's: `\"`, `\\`, `\b`, `\t`, `\n`, `\f`, `\r`, any other
//! byte below 0x20 as `\u00xx` (lowercase hex); everything else, DEL and non-ASCII
//! included, as it is. A property test holds the two together.

/// Appends `s` as a JSON string literal (quotes included).
pub fn push(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    push_contents(out, s.as_bytes());
    out.push(b'"');
}

/// Appends `list` as a JSON array of string literals.
pub fn push_strings(out: &mut Vec<u8>, list: &[String]) {
    out.push(b'[');
    for (i, s) in list.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push(out, s);
    }
    out.push(b']');
}

/// Appends `at` as the string its `Serialize` writes: RFC 3339 formatted on the
/// stack, or its `Display` for the times that formatter does not cover.
pub fn push_timestamp(out: &mut Vec<u8>, at: crate::timestamp::Timestamp) {
    match at.rfc3339() {
        Some(text) => push(out, text.as_str()),
        None => push(out, &at.to_string()),
    }
}

/// Appends the escaped contents of `s` (no quotes). `s` must be UTF-8 for the result
/// to be JSON; only ASCII bytes are ever escaped, so a valid string stays valid.
pub fn push_contents(out: &mut Vec<u8>, s: &[u8]) {
    let mut rest = s;
    while let Some(at) = next_escape(rest) {
        let (run, tail) = rest.split_at(at);
        out.extend_from_slice(run);
        let Some((&byte, mut tail)) = tail.split_first() else {
            // `at` is the position of a byte of `rest`, so there is one.
            break;
        };
        push_escape(out, byte);
        // The bytes right after it may need escaping too (a head's CRLF): escaped
        // here, rather than by another search starting at each.
        while let [next, after @ ..] = tail {
            if !needs_escape(*next) {
                break;
            }
            push_escape(out, *next);
            tail = after;
        }
        rest = tail;
    }
    out.extend_from_slice(rest);
}

/// `0x01` in every byte of a word.
const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
/// `0x80` in every byte of a word.
const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);

/// The position of the first byte of `s` that JSON needs escaped, if any.
fn next_escape(s: &[u8]) -> Option<usize> {
    let mut chunks = s.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut chunks {
        let Ok(bytes) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let flagged = escape_bits(u64::from_le_bytes(bytes));
        if flagged != 0 {
            // Little-endian: the lowest flagged bit is in the first byte to escape.
            return Some(base + (flagged.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| needs_escape(b))
        .map(|p| base + p)
}

/// The high bit of each byte of `w` that is a control character, `"` or `\`, where
/// exact for the lowest such byte: a flag above it may be a carry's false positive,
/// never one below it (the borrow of a subtraction only starts at a flagged byte), so
/// only the lowest flag is used. Bytes of 0x80 and above are never flagged (`!w`).
fn escape_bits(w: u64) -> u64 {
    let control = w.wrapping_sub(ONES * 0x20) & !w & HIGHS;
    let q = w ^ (ONES * u64::from(b'"'));
    let quote = q.wrapping_sub(ONES) & !q & HIGHS;
    let b = w ^ (ONES * u64::from(b'\\'));
    let backslash = b.wrapping_sub(ONES) & !b & HIGHS;
    control | quote | backslash
}

fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Appends the escape of `byte`, one that [`needs_escape`].
fn push_escape(out: &mut Vec<u8>, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let short = match byte {
        b'"' => b'"',
        b'\\' => b'\\',
        0x08 => b'b',
        0x09 => b't',
        0x0a => b'n',
        0x0c => b'f',
        0x0d => b'r',
        _ => {
            let hex = |n: u8| HEX.get(usize::from(n & 0xf)).copied().unwrap_or(b'0');
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', hex(byte >> 4), hex(byte)]);
            return;
        }
    };
    out.extend_from_slice(&[b'\\', short]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ours(s: &str) -> Vec<u8> {
        let mut out = Vec::new();
        push(&mut out, s);
        out
    }

    fn agrees_with_serde_json(s: &str) {
        let theirs = serde_json::to_vec(s).expect("a str serializes");
        assert_eq!(
            String::from_utf8_lossy(&ours(s)),
            String::from_utf8_lossy(&theirs),
            "{s:?}"
        );
    }

    #[test]
    fn every_byte_value_in_every_position_of_a_word_is_escaped_as_serde_json_does() {
        for c in (0u32..0x100).filter_map(char::from_u32) {
            for before in 0..17 {
                let s: String = "a".repeat(before) + &c.to_string() + "b";
                agrees_with_serde_json(&s);
                // Two in a row, and after a byte that needs escaping.
                agrees_with_serde_json(&format!("{s}{c}{c}\r\n{c}"));
            }
        }
    }

    #[test]
    fn a_head_is_escaped_as_serde_json_does() {
        agrees_with_serde_json(
            "GET /a?b=\"c\"\\d HTTP/1.1\r\nhost: 127.0.0.1:27401\r\nx: \u{1}\u{1f}\u{7f}é€😀\t\r\n\r\n",
        );
        agrees_with_serde_json("");
    }

    proptest! {
        #[test]
        fn agrees_with_serde_json_on_any_string(s in any::<String>()) {
            agrees_with_serde_json(&s);
        }

        /// Mostly the bytes near the flagged ranges, where a SWAR borrow could mislead.
        #[test]
        fn agrees_with_serde_json_on_bytes_around_the_escapes(
            bytes in proptest::collection::vec(
                prop_oneof![0u8..0x24, 0x5au8..0x5f, 0x7eu8..0x82, 0x9fu8..0xa3, Just(b'"'), Just(b'a')],
                0..64,
            )
        ) {
            let s = String::from_utf8_lossy(&bytes);
            agrees_with_serde_json(&s);
        }
    }
}
