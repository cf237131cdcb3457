//! Google QUIC (gQUIC), what Chrome, Cronet and Google's SDKs spoke over UDP before
//! IETF QUIC (versions `Q024`–`Q050`, `T050`/`T051`): recognised by a client's first
//! packet, and named by the server name of the handshake message it carries (the
//! `CHLO`, or T05x's TLS ClientHello), as Wireshark's and nDPI's gQUIC dissectors
//! read it. Pure: bytes in, facts out.
//!
//! Layouts (Chromium's `quic_framer`, the "QUIC Wire Layout" and "QUIC Crypto"
//! documents):
//! - **Q024–Q043**: a public header — flags (version `0x01`, 8-byte connection id
//!   `0x08`, packet number length in `0x30`; never reset `0x02` or `0x80`), the
//!   connection id, the version tag, the packet number — then, the packet being
//!   unencrypted, a 12-byte message authentication hash, and up to Q033 a private
//!   flags byte. Then frames: the CHLO is the data of a STREAM frame on stream 1
//!   (type `1FDOOOSS`: data length present, offset and stream id lengths), whose
//!   integers are little-endian up to Q038 and big-endian from Q039.
//! - **Q046**: a long header (`0xC3`, the version, connection id lengths `0x50`, an
//!   8-byte destination id, a 4-byte packet number), the hash, then Q043's frames.
//! - **Q050, T050, T051**: an Initial packet laid out and protected as QUIC v1's,
//!   but under gQUIC's own salts ([`quic::open_salted_initial`]); its first frame a
//!   CRYPTO frame (gQUIC's type `0x08`, varint offset and length) carrying Q050's
//!   CHLO or T05x's TLS ClientHello.
//!
//! A CHLO is a tag-value map: `CHLO`, the number of entries (u16), two bytes of
//! padding, then per entry its tag and the end offset of its value (u32, cumulative),
//! then the values; all little-endian. The `SNI\0` entry is the server name.

use super::tls_fingerprint::Fingerprints;
use super::{quic, tls};

/// The Q024–Q043 public header's flags.
const FLAG_VERSION: u8 = 0x01;
const FLAG_RESET: u8 = 0x02;
const FLAG_CONNECTION_ID: u8 = 0x08;
const FLAG_UNUSED: u8 = 0x80;
/// Q046's long header byte of an Initial packet with a 4-byte packet number (its
/// bits `0x0c` not checked, as nDPI does not).
const Q046_INITIAL: u8 = 0xc3;
const Q046_INITIAL_MASK: u8 = 0xf3;
/// Q046's connection id lengths: an 8-byte destination id, no source id.
const Q046_CID_LENGTHS: u8 = 0x50;
/// Bytes of the message authentication hash of an unencrypted packet.
const HASH_LEN: usize = 12;
/// The smallest datagram taken for an encrypted (Q050, T05x) client Initial: a
/// client pads its first packet to at least this (nDPI's test too).
const MIN_INITIAL: usize = 1200;
/// The crypto handshake's stream.
const CRYPTO_STREAM: u64 = 1;
/// gQUIC's frame types in Q050/T05x Initial packets that may come before the CRYPTO
/// frame, and the CRYPTO frame's.
const FRAME_PADDING: u8 = 0x00;
const FRAME_PING: u8 = 0x07;
const FRAME_CRYPTO: u8 = 0x08;
/// The Initial salts of Q050, T050 and T051 (as Chromium, Wireshark and nDPI have
/// them).
const SALT_Q050: [u8; 20] = [
    0x50, 0x45, 0x74, 0xef, 0xd0, 0x66, 0xfe, 0x2f, 0x9d, 0x94, 0x5c, 0xfc, 0xdb, 0xd3, 0xa7, 0xf0,
    0xd3, 0xb5, 0x6b, 0x45,
];
const SALT_T050: [u8; 20] = [
    0x7f, 0xf5, 0x79, 0xe5, 0xac, 0xd0, 0x72, 0x91, 0x55, 0x80, 0x30, 0x4c, 0x43, 0xa2, 0x36, 0x7c,
    0x60, 0x48, 0x83, 0x10,
];
const SALT_T051: [u8; 20] = [
    0x7a, 0x4e, 0xde, 0xf4, 0xe7, 0xcc, 0xee, 0x5f, 0xa4, 0x50, 0x6c, 0x19, 0x12, 0x4f, 0xc8, 0xcc,
    0xda, 0x6e, 0x03, 0x3d,
];

/// What a gQUIC client's first packet tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GquicHello {
    /// The version tag: `Q043`, `Q046`, `Q050`, `T051` …
    pub version: String,
    /// The server name of the client's CHLO (or T05x's ClientHello), lower-cased,
    /// bytes outside printable ASCII as `\DDD` (as a TLS server name is written);
    /// `None` when the packet holds no readable handshake or it names no server.
    pub sni: Option<String>,
    /// T05x's TLS ClientHello's JA3 and JA4 (a `q` JA4, as FoxIO's tool gives it).
    pub fingerprints: Option<Fingerprints>,
}

impl GquicHello {
    /// Why the flow is not read further: only its client's handshake message is.
    pub fn not_read(&self) -> &'static str {
        if self.version.starts_with('T') {
            "gQUIC: only the client's Initial packet is read (its TLS is not decrypted)"
        } else {
            "gQUIC: only the client's CHLO is read (QUIC Crypto is not decrypted)"
        }
    }
}

/// The gQUIC client packet `datagram` starts with, if it is one with a version.
pub fn client_hello(datagram: &[u8]) -> Option<GquicHello> {
    let &flags = datagram.first()?;
    if flags & 0x80 == 0 {
        public_header_packet(flags, datagram)
    } else {
        long_header_packet(flags, datagram)
    }
}

/// A Q024–Q043 packet: known by its flags and version tag, and taken only when its
/// CHLO reads (a few bytes of flags and a version-like tag are too weak alone).
fn public_header_packet(flags: u8, d: &[u8]) -> Option<GquicHello> {
    let wanted = FLAG_VERSION | FLAG_CONNECTION_ID;
    if flags & wanted != wanted || flags & (FLAG_RESET | FLAG_UNUSED) != 0 {
        return None;
    }
    let tag = d.get(9..13)?;
    let (b'Q', number @ 24..=43) = (tag[0], version_number(tag)?) else {
        return None;
    };
    let packet_number_len = [1, 2, 4, 6][usize::from((flags >> 4) & 3)];
    let mut at = 13 + packet_number_len + HASH_LEN;
    if number <= 33 {
        at += 1; // private flags
    }
    let sni = chlo_in_frames(d.get(at..)?, number >= 39)?;
    Some(hello(tag, sni, None))
}

/// A Q046 packet, or a Q050/T05x Initial (opened under its version's salt; another
/// version in that layout is recognised without a name).
fn long_header_packet(flags: u8, d: &[u8]) -> Option<GquicHello> {
    let tag = d.get(1..5)?;
    let number = version_number(tag)?;
    match (tag[0], number) {
        (b'Q', 46) => {
            if flags & Q046_INITIAL_MASK != Q046_INITIAL || d.get(5) != Some(&Q046_CID_LENGTHS) {
                return None;
            }
            // Connection id lengths, the 8-byte destination id, the packet number.
            let payload = d.get(6 + 8 + 4 + HASH_LEN..)?;
            let sni = chlo_in_frames(payload, true)?;
            Some(hello(tag, sni, None))
        }
        (b'Q', 50..=99) | (b'T', 48..=99) => {
            // IETF-style Initial: fixed bit set, type Initial (0), sane ids, padded.
            let dcid = usize::from(*d.get(5)?);
            let scid = usize::from(*d.get(6 + dcid)?);
            let initial = flags & 0x70 == 0x40;
            if !(initial
                && dcid <= quic::MAX_CID_LEN
                && scid <= quic::MAX_CID_LEN
                && d.len() >= MIN_INITIAL)
            {
                return None;
            }
            let (sni, fingerprints) = salted_initial(tag, d).unwrap_or_default();
            Some(hello(tag, sni, fingerprints))
        }
        _ => None,
    }
}

/// The server name in the Initial packet of a version with a known salt (Q050's
/// CHLO, T05x's ClientHello), when the packet opens and holds one, and a ClientHello's
/// fingerprints.
fn salted_initial(tag: &[u8], d: &[u8]) -> Option<(Option<String>, Option<Fingerprints>)> {
    let salt = match tag {
        b"Q050" => &SALT_Q050,
        b"T050" => &SALT_T050,
        b"T051" => &SALT_T051,
        _ => return None,
    };
    let plain = quic::open_salted_initial(d, salt)?;
    let data = first_crypto_data(&plain)?;
    if tag[0] == b'Q' {
        Some((chlo_sni(data)?, None))
    } else {
        // A TLS handshake message: a ClientHello (type 1) whose body is all here.
        let [1, a, b, c] = *data.get(..4)? else {
            return None;
        };
        let len = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
        let body = data.get(4..)?;
        let hello = tls::parse_client_hello(body.get(..len)?).ok()?;
        Some((hello.sni, Some(hello.fingerprints)))
    }
}

/// The data of the CRYPTO frame at offset 0 that starts the plaintext `plain` (after
/// padding and pings).
fn first_crypto_data(plain: &[u8]) -> Option<&[u8]> {
    let mut c = quic::Cur::new(plain);
    loop {
        match c.u8("frame type").ok()? {
            FRAME_PADDING | FRAME_PING => {}
            FRAME_CRYPTO => break,
            _ => return None,
        }
    }
    let offset = c.varint("CRYPTO offset").ok()?;
    let len = c.varint_usize("CRYPTO length").ok()?;
    let data = c.take(len, "CRYPTO data").ok()?;
    (offset == 0).then_some(data)
}

fn hello(tag: &[u8], sni: Option<String>, fingerprints: Option<Fingerprints>) -> GquicHello {
    GquicHello {
        version: String::from_utf8_lossy(tag).into_owned(),
        sni,
        fingerprints,
    }
}

/// The two digits of a `Q0dd` / `T0dd` tag.
fn version_number(tag: &[u8]) -> Option<u8> {
    match *tag {
        [b'Q' | b'T', b'0', hi @ b'0'..=b'9', lo @ b'0'..=b'9'] => {
            Some((hi - b'0') * 10 + lo - b'0')
        }
        _ => None,
    }
}

/// The server name of the CHLO in the first STREAM frame of `frames` (after any
/// padding): `Some(None)` for a CHLO without one; `None` when the frames hold no
/// CHLO on the crypto stream.
fn chlo_in_frames(frames: &[u8], big_endian: bool) -> Option<Option<String>> {
    let start = frames.iter().position(|&b| b != 0)?;
    let mut r = Reader {
        rest: frames.get(start..)?,
        big_endian,
    };
    let kind = r.u8()?;
    // 1FDOOOSS: a stream frame whose data length is present.
    if kind & 0x80 == 0 || kind & 0x20 == 0 {
        return None;
    }
    let stream_id = r.uint(usize::from(kind & 0x03) + 1)?;
    let offset_len = match (kind >> 2) & 0x07 {
        0 => 0,
        n => usize::from(n) + 1,
    };
    r.uint(offset_len)?;
    let len = usize::try_from(r.uint(2)?).ok()?;
    if stream_id != CRYPTO_STREAM {
        return None;
    }
    chlo_sni(r.rest.get(..len)?)
}

/// The `SNI\0` value of the CHLO `m`: `Some(None)` when it has none, `None` when `m`
/// is not a well-formed CHLO.
fn chlo_sni(m: &[u8]) -> Option<Option<String>> {
    if m.get(..4)? != b"CHLO" {
        return None;
    }
    let entries = usize::from(u16::from_le_bytes([*m.get(4)?, *m.get(5)?]));
    let index = m.get(8..8 + 8 * entries)?;
    let values = m.get(8 + 8 * entries..)?;
    let mut from = 0usize;
    let mut sni = None;
    for entry in index.chunks_exact(8) {
        let end =
            usize::try_from(u32::from_le_bytes([entry[4], entry[5], entry[6], entry[7]])).ok()?;
        let value = values.get(from..end)?;
        if &entry[..4] == b"SNI\0" {
            sni = Some(tls::server_name_text(value));
        }
        from = end;
    }
    Some(sni)
}

/// Integers of gQUIC's frames: little-endian up to Q038, big-endian from Q039.
struct Reader<'a> {
    rest: &'a [u8],
    big_endian: bool,
}

impl Reader<'_> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(b)
    }

    /// An unsigned integer of `len` bytes (at most 8).
    fn uint(&mut self, len: usize) -> Option<u64> {
        let bytes = self.rest.get(..len)?;
        self.rest = &self.rest[len..];
        let fold = |v: u64, &b: &u8| v << 8 | u64::from(b);
        Some(if self.big_endian {
            bytes.iter().fold(0, fold)
        } else {
            bytes.iter().rev().fold(0, fold)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CHLO with `entries` (tag, value), in the order given.
    fn chlo(entries: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
        let mut m = b"CHLO".to_vec();
        m.extend((entries.len() as u16).to_le_bytes());
        m.extend([0, 0]);
        let mut end = 0u32;
        for (tag, value) in entries {
            end += value.len() as u32;
            m.extend(*tag);
            m.extend(end.to_le_bytes());
        }
        for (_, value) in entries {
            m.extend(*value);
        }
        m
    }

    fn full_chlo() -> Vec<u8> {
        chlo(&[
            (b"PAD\0", &[0x2d; 40]),
            (b"SNI\0", b"GoogleAds.G.DoubleClick.net"),
            (b"VER\0", b"Q043"),
            (b"UAID", b"Chrome/46.0.2490.80 Linux x86_64"),
        ])
    }

    /// A stream frame on stream 1 with a 2-byte offset of 0 carrying `data`.
    fn stream_frame(data: &[u8], big_endian: bool) -> Vec<u8> {
        let len = data.len() as u16;
        let mut f = vec![0xa4, 0x01, 0x00, 0x00];
        f.extend(if big_endian {
            len.to_be_bytes()
        } else {
            len.to_le_bytes()
        });
        f.extend(data);
        f
    }

    /// A Q024–Q043 client packet of `version` with a 1-byte packet number.
    fn public_packet(version: &[u8; 4], frames: &[u8]) -> Vec<u8> {
        let number = version_number(version).unwrap();
        let mut p = vec![0x09];
        p.extend([0x11; 8]);
        p.extend(version);
        p.push(1);
        p.extend([0x5a; HASH_LEN]);
        if number <= 33 {
            p.push(0);
        }
        p.extend(frames);
        p.resize(1350, 0);
        p
    }

    #[test]
    fn a_q043_chlo_names_its_server() {
        let p = public_packet(b"Q043", &stream_frame(&full_chlo(), true));
        assert_eq!(
            client_hello(&p),
            Some(GquicHello {
                version: "Q043".into(),
                sni: Some("googleads.g.doubleclick.net".into()),
                fingerprints: None,
            })
        );
        // The same packet with the frame's length in the other byte order: no CHLO.
        let p = public_packet(b"Q043", &stream_frame(&full_chlo(), false));
        assert_eq!(client_hello(&p), None);
    }

    #[test]
    fn older_versions_have_little_endian_frames_and_up_to_q033_a_private_flags_byte() {
        for version in [b"Q025", b"Q033", b"Q035", b"Q038"] {
            let p = public_packet(version, &stream_frame(&full_chlo(), false));
            let hello = client_hello(&p).unwrap_or_else(|| panic!("{version:?}"));
            assert_eq!(hello.sni.as_deref(), Some("googleads.g.doubleclick.net"));
        }
    }

    #[test]
    fn a_q046_long_header_packet_is_read() {
        let mut p = vec![Q046_INITIAL];
        p.extend(b"Q046");
        p.push(Q046_CID_LENGTHS);
        p.extend([0x22; 8]);
        p.extend([0, 0, 0, 1]);
        p.extend([0x5a; HASH_LEN]);
        p.extend(stream_frame(
            &chlo(&[(b"SNI\0", b"app-measurement.com")]),
            true,
        ));
        p.resize(1350, 0);
        let hello = client_hello(&p).unwrap();
        assert_eq!(
            (hello.version.as_str(), hello.sni.as_deref()),
            ("Q046", Some("app-measurement.com"))
        );
        p[0] = 0xcb;
        assert!(
            client_hello(&p).is_some(),
            "the bits 0x0c are not looked at"
        );
        p[0] = 0xd3;
        assert_eq!(client_hello(&p), None, "not an Initial");
        p[0] = Q046_INITIAL;
        p[5] = 0x55;
        assert_eq!(client_hello(&p), None, "other connection id lengths");
    }

    #[test]
    fn encrypted_initials_of_q050_and_t051_are_recognised_without_a_name() {
        for version in [b"Q050", b"T051"] {
            let mut p = vec![0xc3];
            p.extend(version);
            p.push(8);
            p.extend([0x33; 8]);
            p.push(0);
            p.resize(1350, 0x77);
            assert_eq!(
                client_hello(&p),
                Some(GquicHello {
                    version: String::from_utf8_lossy(version).into_owned(),
                    sni: None,
                    fingerprints: None,
                })
            );
            p.truncate(1000);
            assert_eq!(client_hello(&p), None, "an Initial is padded");
        }
    }

    #[test]
    fn a_chlo_without_a_server_name_still_makes_the_packet_gquic() {
        let p = public_packet(b"Q039", &stream_frame(&chlo(&[(b"VER\0", b"Q039")]), true));
        assert_eq!(client_hello(&p).map(|h| h.sni), Some(None));
    }

    #[test]
    fn padding_before_the_frame_and_bytes_outside_printable_ascii() {
        let mut frames = vec![0; 3];
        frames.extend(stream_frame(&chlo(&[(b"SNI\0", b"a\x01B.example")]), true));
        let p = public_packet(b"Q043", &frames);
        assert_eq!(
            client_hello(&p).and_then(|h| h.sni).as_deref(),
            Some("a\\001b.example")
        );
    }

    #[test]
    fn the_crypto_frame_of_a_salted_initial_is_found_after_padding_and_pings() {
        let data = full_chlo();
        let mut plain = vec![0, 0, FRAME_PING, FRAME_CRYPTO, 0x00, 0x44, 0x00];
        plain[5..7].copy_from_slice(&(0x4000 | data.len() as u16).to_be_bytes());
        plain.extend(&data);
        plain.extend([0; 100]);
        assert_eq!(first_crypto_data(&plain), Some(&data[..]));
        assert_eq!(
            chlo_sni(first_crypto_data(&plain).unwrap()),
            Some(Some("googleads.g.doubleclick.net".into()))
        );
        // Not at offset 0, after another frame, or cut short: nothing.
        let mut later = plain.clone();
        later[4] = 0x05;
        assert_eq!(first_crypto_data(&later), None);
        let mut ack_first = plain.clone();
        ack_first[2] = 0x02;
        assert_eq!(first_crypto_data(&ack_first), None);
        assert_eq!(first_crypto_data(&plain[..40]), None);
        assert_eq!(first_crypto_data(&[0; 8]), None);
    }

    #[test]
    fn an_unopened_salted_initial_is_gquic_without_a_name() {
        // Right layout, opaque payload: recognised, the authentication fails.
        let mut p = vec![0xc1];
        p.extend(b"Q050");
        p.push(8);
        p.extend([0x44; 8]);
        p.extend([0, 0, 0x44, 0xb0]);
        p.resize(1350, 0x5a);
        let hello = client_hello(&p).unwrap();
        assert_eq!((hello.version.as_str(), hello.sni), ("Q050", None));
    }

    #[test]
    fn what_is_not_a_gquic_client_hello() {
        let good = public_packet(b"Q043", &stream_frame(&full_chlo(), true));
        let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
        let mut p = good.clone();
        p[0] = 0x08;
        cases.push(("no version flag", p));
        let mut p = good.clone();
        p[0] |= FLAG_RESET;
        cases.push(("a reset", p));
        let mut p = good.clone();
        p[9..13].copy_from_slice(b"Q0a3");
        cases.push(("not a version tag", p));
        let mut p = good.clone();
        p[9..13].copy_from_slice(b"Q023");
        cases.push(("before Q024", p));
        cases.push((
            "another stream",
            public_packet(b"Q043", &{
                let mut f = stream_frame(&full_chlo(), true);
                f[1] = 3;
                f
            }),
        ));
        cases.push((
            "not a CHLO",
            public_packet(b"Q043", &stream_frame(b"SHLO\0\0\0\0", true)),
        ));
        let mut bad = full_chlo();
        bad[4] = 0xff; // more entries than the message holds
        cases.push((
            "entries past the end",
            public_packet(b"Q043", &stream_frame(&bad, true)),
        ));
        let mut bad = chlo(&[(b"PAD\0", &[0; 8]), (b"SNI\0", b"x.example")]);
        bad[20..24].copy_from_slice(&4u32.to_le_bytes()); // ends before the one before
        cases.push((
            "offsets out of order",
            public_packet(b"Q043", &stream_frame(&bad, true)),
        ));
        let mut bad = chlo(&[(b"PAD\0", &[0; 8]), (b"SNI\0", b"x.example")]);
        bad[20..24].copy_from_slice(&18u32.to_le_bytes()); // past the values
        cases.push((
            "a value past the end",
            public_packet(b"Q043", &stream_frame(&bad, true)),
        ));
        let mut p = good.clone();
        p.truncate(40);
        cases.push(("cut short", p));
        cases.push(("empty", Vec::new()));
        cases.push(("an IETF QUIC v1 Initial", {
            let mut p = vec![0xc3, 0, 0, 0, 1, 8];
            p.resize(1300, 0);
            p
        }));
        for (what, p) in cases {
            assert_eq!(client_hello(&p), None, "{what}");
        }
        // Every prefix of a good packet: no panic.
        for n in 0..good.len() {
            let _ = client_hello(&good[..n]);
        }
    }
}
