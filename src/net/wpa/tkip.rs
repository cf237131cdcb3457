//! TKIP (IEEE 802.11-2020 §12.5.2), the cipher of WPA1 stations and the group cipher
//! of WPA/WPA2 mixed-mode networks: the key mixing function that gives each frame its
//! RC4 key, the ICV, and the Michael MIC over the MSDU. Pure functions over bytes.

use flate2::Crc;
use rc4::consts::U16;
use rc4::{KeyInit, Rc4, StreamCipher};

use super::{Mac, TemporalKey};

/// The TKIP IV and extended IV that start a protected frame's body, and the Michael
/// MIC and ICV that end its ciphertext.
pub(super) const IV_LEN: usize = 8;
pub(super) const TRAILER_LEN: usize = MIC_LEN + ICV_LEN;
const MIC_LEN: usize = 8;
pub(super) const ICV_LEN: usize = 4;

/// Why a key does not open a TKIP frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Failure {
    /// The ICV does not come out: a frame of another key.
    Icv,
    /// The ICV does but the Michael MIC does not: the key's frame, forged or damaged.
    Michael,
}

/// What a protected frame's first bytes (with the extended IV bit) say of its cipher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Header {
    /// A TKIP IV for sure.
    Tkip,
    /// A CCMP or GCMP header for sure.
    Aes,
    /// Either: TKIP's with TSC0 zero, or a CCMP or GCMP header whose PN1 happens to
    /// look like a WEP seed (one frame in about 256).
    Either,
}

impl Header {
    /// TKIP's IV is TSC1, its WEP seed `(TSC1 | 0x20) & 0x7f`, TSC0; the CCMP and
    /// GCMP header is PN0, PN1, a reserved zero (§12.5.2.2, §12.5.3.2, §12.5.5.2).
    /// So a second byte that is not TKIP's seed is AES's, and a third that is not
    /// zero TKIP's; the two patterns meet in frames of both.
    pub fn of(body: &[u8]) -> Self {
        match body {
            [tsc1, seed, ..] if *seed != (tsc1 | 0x20) & 0x7f => Header::Aes,
            [_, _, 0, ..] => Header::Either,
            _ => Header::Tkip,
        }
    }
}

/// A TKIP MPDU, with what its MAC header gives to open it with any key.
pub(super) struct Frame<'a> {
    /// The transmitter address, an input of the key mixing.
    ta: Mac,
    /// The TKIP sequence counter: its high 32 and low 16 bits.
    iv32: u32,
    iv16: u16,
    /// What the Michael MIC covers before the MSDU: DA, SA, priority, three zeros.
    michael_header: [u8; 16],
    /// Sent by the access point: its Michael key is the first of the two.
    from_ap: bool,
    /// The RC4 ciphertext of the MSDU, its Michael MIC and the ICV.
    ciphertext: &'a [u8],
}

impl<'a> Frame<'a> {
    /// `body` is the frame body from the IV on, at least [`IV_LEN`] bytes; `da`, `sa`
    /// and `priority` (the QoS TID, 0 without QoS) go into the Michael MIC.
    pub fn new(body: &'a [u8], ta: Mac, da: Mac, sa: Mac, priority: u8, from_ap: bool) -> Self {
        let byte = |at: usize| body.get(at).copied().unwrap_or(0);
        let iv32 = u32::from_le_bytes([byte(4), byte(5), byte(6), byte(7)]);
        let iv16 = u16::from_be_bytes([byte(0), byte(2)]);
        let mut michael_header = [0u8; 16];
        michael_header[..6].copy_from_slice(&da);
        michael_header[6..12].copy_from_slice(&sa);
        michael_header[12] = priority;
        Frame {
            ta,
            iv32,
            iv16,
            michael_header,
            from_ap,
            ciphertext: body.get(IV_LEN..).unwrap_or_default(),
        }
    }

    /// The MSDU (LLC/SNAP and on) under `key`: TK, then the Michael keys of MSDUs from
    /// the access point and to it, as the PTK and a TKIP GTK hold them (§12.7.1.3).
    pub fn open(&self, key: &[u8; 32]) -> Result<Vec<u8>, Failure> {
        self.open_with(&tk_of(key), Some(&self.michael_key(key)))
    }

    /// The MSDU under a TKIP temporal key, whole or without its Michael keys; keys of
    /// other ciphers open nothing (their ICV never comes out).
    pub(super) fn open_key(&self, key: &TemporalKey) -> Result<Vec<u8>, Failure> {
        match key {
            TemporalKey::Tkip(key) => self.open(key),
            TemporalKey::TkipIcvOnly(tk) => self.open_icv_only(tk),
            _ => Err(Failure::Icv),
        }
    }

    /// The MSDU under a TK given without its Michael keys (as Wireshark shows a
    /// TKIP TK, 16 bytes): the ICV checked, the Michael MIC not, as tshark does.
    pub fn open_icv_only(&self, tk: &[u8; 16]) -> Result<Vec<u8>, Failure> {
        self.open_with(tk, None)
    }

    fn open_with(&self, tk: &[u8; 16], michael_key: Option<&[u8; 8]>) -> Result<Vec<u8>, Failure> {
        if self.ciphertext.len() < MIC_LEN + ICV_LEN {
            return Err(Failure::Icv);
        }
        let plain = self.open_icv(tk)?;
        self.michael_checked(plain, michael_key)
    }

    /// What a fragment of an MSDU carries under a TKIP temporal key (its part of the
    /// MSDU and of the Michael MIC), the ICV checked: the Michael MIC covers the
    /// whole MSDU, so [`Frame::michael_of_msdu`] checks it once the fragments are put
    /// together.
    pub(super) fn open_fragment(&self, key: &TemporalKey) -> Result<Vec<u8>, Failure> {
        match key {
            TemporalKey::Tkip(key) => self.open_icv(&tk_of(key)),
            TemporalKey::TkipIcvOnly(tk) => self.open_icv(tk),
            _ => Err(Failure::Icv),
        }
    }

    /// The MSDU reassembled from fragments of this frame's MSDU (`msdu_and_mic`: their
    /// bodies, the Michael MIC at the end) under `key`, its Michael MIC checked
    /// (not for a TK given without its Michael keys) and taken off.
    pub(super) fn michael_of_msdu(
        &self,
        key: &TemporalKey,
        msdu_and_mic: Vec<u8>,
    ) -> Result<Vec<u8>, Failure> {
        match key {
            TemporalKey::Tkip(key) => {
                self.michael_checked(msdu_and_mic, Some(&self.michael_key(key)))
            }
            TemporalKey::TkipIcvOnly(_) => self.michael_checked(msdu_and_mic, None),
            _ => Err(Failure::Michael),
        }
    }

    /// The Michael key of this frame's direction in a whole TKIP key: TK, then the
    /// Michael keys of MSDUs from the access point and to it (§12.7.1.3).
    fn michael_key(&self, key: &[u8; 32]) -> [u8; 8] {
        let at = if self.from_ap { 16 } else { 24 };
        let mut michael_key = [0; 8];
        michael_key.copy_from_slice(&key[at..at + 8]);
        michael_key
    }

    /// The ciphertext under `tk`, its ICV checked and taken off.
    fn open_icv(&self, tk: &[u8; 16]) -> Result<Vec<u8>, Failure> {
        let Some(covered_len) = self.ciphertext.len().checked_sub(ICV_LEN) else {
            return Err(Failure::Icv);
        };
        let ttak = phase1(tk, &self.ta, self.iv32);
        let seed = phase2(tk, &ttak, self.iv16);
        let mut plain = self.ciphertext.to_vec();
        Rc4::<U16>::new(&seed.into()).apply_keystream(&mut plain);

        let (covered, icv) = plain.split_at(covered_len);
        let mut crc = Crc::new();
        crc.update(covered);
        if crc.sum().to_le_bytes() != icv {
            return Err(Failure::Icv);
        }
        plain.truncate(covered_len);
        Ok(plain)
    }

    /// `plain`, an MSDU and its Michael MIC, without the MIC once `michael_key`
    /// (when given) makes it.
    fn michael_checked(
        &self,
        mut plain: Vec<u8>,
        michael_key: Option<&[u8; 8]>,
    ) -> Result<Vec<u8>, Failure> {
        let Some(msdu_len) = plain.len().checked_sub(MIC_LEN) else {
            return Err(Failure::Michael);
        };
        let (msdu, mic) = plain.split_at(msdu_len);
        if michael_key.is_some_and(|key| michael(key, &self.michael_header, msdu) != mic) {
            return Err(Failure::Michael);
        }
        plain.truncate(msdu_len);
        Ok(plain)
    }
}

/// The TK of a whole TKIP key.
fn tk_of(key: &[u8; 32]) -> [u8; 16] {
    let mut tk = [0; 16];
    tk.copy_from_slice(&key[..16]);
    tk
}

/// The TKIP S-box (§12.5.2.5.2): for each byte, `2·s || 3·s` of the AES S-box's `s`
/// in GF(2⁸), the table the standard writes out.
const SBOX: [u16; 256] = tkip_sbox();

const fn xtime(b: u8) -> u8 {
    (b << 1) ^ if b & 0x80 != 0 { 0x1b } else { 0 }
}

const fn gf_mul(mut a: u8, mut b: u8) -> u8 {
    let mut product = 0;
    while b != 0 {
        if b & 1 != 0 {
            product ^= a;
        }
        a = xtime(a);
        b >>= 1;
    }
    product
}

/// The AES S-box entry of `x` (FIPS 197 §5.1.1): its inverse in GF(2⁸) (x²⁵⁴, 0 for
/// 0), then the affine transformation.
const fn aes_sbox(x: u8) -> u8 {
    let mut inverse = 1u8;
    let mut i = 0;
    while i < 254 {
        inverse = gf_mul(inverse, x);
        i += 1;
    }
    let b = if x == 0 { 0 } else { inverse };
    b ^ b.rotate_left(1) ^ b.rotate_left(2) ^ b.rotate_left(3) ^ b.rotate_left(4) ^ 0x63
}

const fn tkip_sbox() -> [u16; 256] {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let s = aes_sbox(i as u8);
        let twice = xtime(s);
        table[i] = ((twice as u16) << 8) | (twice ^ s) as u16;
        i += 1;
    }
    table
}

/// The S-box on a 16-bit word: the low byte's entry, and the high byte's swapped.
fn s(word: u16) -> u16 {
    let [hi, lo] = word.to_be_bytes();
    SBOX[usize::from(lo)] ^ SBOX[usize::from(hi)].swap_bytes()
}

/// The 16-bit word of bytes `at + 1` (high) and `at` (low).
fn word(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

/// Phase 1 of the key mixing (§12.5.2.5.3): the TKIP-mixed transmit address and key
/// (TTAK) of a TK, transmitter and IV32.
fn phase1(tk: &[u8; 16], ta: &Mac, iv32: u32) -> [u16; 5] {
    let mut p = [
        iv32 as u16,
        (iv32 >> 16) as u16,
        word(ta, 0),
        word(ta, 2),
        word(ta, 4),
    ];
    for i in 0..8u16 {
        let j = 2 * usize::from(i & 1);
        p[0] = p[0].wrapping_add(s(p[4] ^ word(tk, j)));
        p[1] = p[1].wrapping_add(s(p[0] ^ word(tk, 4 + j)));
        p[2] = p[2].wrapping_add(s(p[1] ^ word(tk, 8 + j)));
        p[3] = p[3].wrapping_add(s(p[2] ^ word(tk, 12 + j)));
        p[4] = p[4].wrapping_add(s(p[3] ^ word(tk, j))).wrapping_add(i);
    }
    p
}

/// Phase 2 of the key mixing (§12.5.2.5.4): the frame's 128-bit RC4 key (WEP seed)
/// from the TTAK and IV16.
fn phase2(tk: &[u8; 16], ttak: &[u16; 5], iv16: u16) -> [u8; 16] {
    let mut ppk = [
        ttak[0],
        ttak[1],
        ttak[2],
        ttak[3],
        ttak[4],
        ttak[4].wrapping_add(iv16),
    ];
    for i in 0..6 {
        let previous = ppk[(i + 5) % 6];
        ppk[i] = ppk[i].wrapping_add(s(previous ^ word(tk, 2 * i)));
    }
    ppk[0] = ppk[0].wrapping_add((ppk[5] ^ word(tk, 12)).rotate_right(1));
    ppk[1] = ppk[1].wrapping_add((ppk[0] ^ word(tk, 14)).rotate_right(1));
    for i in 2..6 {
        ppk[i] = ppk[i].wrapping_add(ppk[i - 1].rotate_right(1));
    }
    let [iv_hi, iv_lo] = iv16.to_be_bytes();
    let mut seed = [0u8; 16];
    seed[0] = iv_hi;
    seed[1] = (iv_hi | 0x20) & 0x7f;
    seed[2] = iv_lo;
    seed[3] = ((ppk[5] ^ word(tk, 0)) >> 1) as u8;
    for (i, p) in ppk.iter().enumerate() {
        seed[4 + 2 * i..6 + 2 * i].copy_from_slice(&p.to_le_bytes());
    }
    seed
}

/// Michael (§12.5.2.3): the 8-byte MIC of `header` then `data` under `key`.
pub(super) fn michael(key: &[u8; 8], header: &[u8; 16], data: &[u8]) -> [u8; 8] {
    let mut michael = Michael::new(key);
    michael.words(header);
    michael.finish(data)
}

/// Michael's state: the two 32-bit halves.
struct Michael {
    l: u32,
    r: u32,
}

impl Michael {
    fn new(key: &[u8; 8]) -> Self {
        Michael {
            l: u32::from_le_bytes([key[0], key[1], key[2], key[3]]),
            r: u32::from_le_bytes([key[4], key[5], key[6], key[7]]),
        }
    }

    /// Takes in the whole 32-bit (little-endian) words of `bytes`.
    fn words(&mut self, bytes: &[u8]) {
        for word in bytes.chunks_exact(4) {
            self.l ^= u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
            self.block();
        }
    }

    /// The block function b.
    fn block(&mut self) {
        let (mut l, mut r) = (self.l, self.r);
        r ^= l.rotate_left(17);
        l = l.wrapping_add(r);
        r ^= ((l & 0xff00_ff00) >> 8) | ((l & 0x00ff_00ff) << 8);
        l = l.wrapping_add(r);
        r ^= l.rotate_left(3);
        l = l.wrapping_add(r);
        r ^= l.rotate_right(2);
        l = l.wrapping_add(r);
        (self.l, self.r) = (l, r);
    }

    /// Takes in the rest of the message, padded with 0x5a and four to seven zeros to
    /// whole words, and gives the MIC: L then R.
    fn finish(mut self, rest: &[u8]) -> [u8; 8] {
        let whole = rest.len() / 4 * 4;
        self.words(&rest[..whole]);
        let tail = &rest[whole..];
        let mut padding = [0u8; 8];
        padding[..tail.len()].copy_from_slice(tail);
        padding[tail.len()] = 0x5a;
        self.words(&padding);
        let mut mic = [0u8; 8];
        mic[..4].copy_from_slice(&self.l.to_le_bytes());
        mic[4..].copy_from_slice(&self.r.to_le_bytes());
        mic
    }
}

/// TKIP encryption of an MSDU, for tests and benchmarks (consentry only decrypts):
/// the frame body, IV first, of the MSDU sent under `key` (TK then the Michael keys)
/// and key id with sequence counter `tsc` (48 bits) by `ta`, its Michael MIC over
/// `da`, `sa` and `priority` with the Michael key of MSDUs from the access point or
/// to it.
pub fn seal(
    key: &[u8; 32],
    key_id: u8,
    tsc: u64,
    ta: Mac,
    michael_over: (Mac, Mac, u8),
    from_ap: bool,
    msdu: &[u8],
) -> Vec<u8> {
    let mut bodies = seal_fragments(
        key,
        key_id,
        tsc,
        ta,
        michael_over,
        from_ap,
        msdu,
        usize::MAX,
    );
    bodies.pop().unwrap_or_default()
}

/// [`seal`] of an MSDU sent in fragments: the Michael MIC appended to the whole MSDU,
/// which is then cut into parts of `part_len` bytes (the last shorter), each sealed
/// with its ICV under the next sequence counter from `tsc` on (§12.5.2.3).
#[allow(clippy::too_many_arguments)]
pub fn seal_fragments(
    key: &[u8; 32],
    key_id: u8,
    tsc: u64,
    ta: Mac,
    (da, sa, priority): (Mac, Mac, u8),
    from_ap: bool,
    msdu: &[u8],
    part_len: usize,
) -> Vec<Vec<u8>> {
    let michael_frame = Frame::new(&[], ta, da, sa, priority, from_ap);
    let mic = michael(
        &michael_frame.michael_key(key),
        &michael_frame.michael_header,
        msdu,
    );
    let msdu_and_mic = [msdu, &mic].concat();
    let tk = tk_of(key);
    msdu_and_mic
        .chunks(part_len.max(1))
        .zip(tsc..)
        .map(|(part, tsc)| {
            let tsc = tsc.to_le_bytes();
            let (tsc1, tsc0) = (tsc[1], tsc[0]);
            let iv = [
                tsc1,
                (tsc1 | 0x20) & 0x7f,
                tsc0,
                key_id << 6 | 0x20,
                tsc[2],
                tsc[3],
                tsc[4],
                tsc[5],
            ];
            let frame = Frame::new(&iv, ta, da, sa, priority, from_ap);
            let mut plain = part.to_vec();
            let mut crc = Crc::new();
            crc.update(&plain);
            plain.extend_from_slice(&crc.sum().to_le_bytes());
            let seed = phase2(&tk, &phase1(&tk, &ta, frame.iv32), frame.iv16);
            Rc4::<U16>::new(&seed.into()).apply_keystream(&mut plain);
            [&iv[..], &plain].concat()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::eapol::tests::hex;
    use super::*;

    #[test]
    fn the_s_box_is_the_standards() {
        // The first entries of the table in §12.5.2.5.2, and FIPS 197's example.
        assert_eq!(
            &SBOX[..6],
            &[0xc6a5, 0xf884, 0xee99, 0xf68d, 0xff0d, 0xd6bd]
        );
        assert_eq!(aes_sbox(0x53), 0xed);
        assert_eq!((aes_sbox(0), aes_sbox(0xff)), (0x63, 0x16));
    }

    #[test]
    fn key_mixing_as_ieee_802_11i_test_vectors() {
        // Std 802.11i-2004's per-packet key test vectors 1, 2, 3, 5 and 7: TK, TA,
        // IV32, IV16, TTAK (phase 1), RC4 key (phase 2).
        let vectors = [
            (
                "000102030405060708090a0b0c0d0e0f",
                "102233445566",
                0x0000_0000,
                0x0000,
                [0x3dd2, 0x016e, 0x76f4, 0x8697, 0xb2e8],
                "00200033ea8d2f60ca6d1374234a660b",
            ),
            (
                "000102030405060708090a0b0c0d0e0f",
                "102233445566",
                0x0000_0000,
                0x0001,
                [0x3dd2, 0x016e, 0x76f4, 0x8697, 0xb2e8],
                "00200190ffdc314389a9d9d074fd20aa",
            ),
            (
                "63893b250840b8ae0bd0fa7e61d2783e",
                "64f2eaeddc25",
                0x20dc_fd43,
                0xffff,
                [0x7c67, 0x49d7, 0x9724, 0xb5e9, 0xb4f1],
                "ff7fff93810fc6e58f5dd326251544ce",
            ),
            (
                "983a16ef4facb351aa9ecc271d7309e2",
                "509c4b1727d9",
                0xf0a4_10fc,
                0x058c,
                [0xf2df, 0xebb1, 0x88d3, 0x5923, 0xa07c],
                "05258cf4d85152f4d9af1a64f1d07021",
            ),
            (
                "c8adc16a8b4dda3b4dd5b65438359b05",
                "945e244e4d6e",
                0x8b15_73b7,
                0x30f8,
                [0xeff1, 0x3f38, 0xa364, 0x60a9, 0x76f3],
                "3030f8650da073ea614ea8f474ee0319",
            ),
        ];
        for (tk, ta, iv32, iv16, ttak, rc4_key) in vectors {
            let tk: [u8; 16] = hex(tk).try_into().unwrap();
            let ta: Mac = hex(ta).try_into().unwrap();
            assert_eq!(phase1(&tk, &ta, iv32), ttak);
            assert_eq!(phase2(&tk, &ttak, iv16).to_vec(), hex(rc4_key));
        }
    }

    #[test]
    fn michael_as_its_test_vectors() {
        // The Michael test vectors (IEEE 802.11's annex, from Ferguson's
        // specification): each key is the MIC of the line before. The first 16
        // bytes of each message go through `header`, so messages are split there.
        let vectors = [
            ("0000000000000000", "", "82925c1ca1d130b8"),
            ("82925c1ca1d130b8", "M", "434721ca40639b3f"),
            ("434721ca40639b3f", "Mi", "e8f9becae97e5d29"),
            ("e8f9becae97e5d29", "Mic", "90038fc6cf13c1db"),
            ("90038fc6cf13c1db", "Mich", "d55e100510128986"),
            ("d55e100510128986", "Michael", "0a942b124ecaa546"),
        ];
        for (key, message, mic) in vectors {
            let key: [u8; 8] = hex(key).try_into().unwrap();
            let got = Michael::new(&key).finish(message.as_bytes());
            assert_eq!(got.to_vec(), hex(mic), "{message}");
        }
        // With the MSDU's header first, as frames are checked.
        let (key, header) = ([0x5a; 8], [7u8; 16]);
        for len in 0..9 {
            let data = &b"consentry"[..len];
            let whole = Michael::new(&key).finish(&[&header[..], data].concat());
            assert_eq!(michael(&key, &header, data), whole, "{len}");
        }
    }

    #[test]
    fn a_sealed_msdu_opens_with_its_key_only() {
        let key: [u8; 32] = std::array::from_fn(|i| i as u8);
        let (ta, da, sa) = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 3]);
        let msdu = b"\xaa\xaa\x03\x00\x00\x00\x08\x00 an IPv4 packet";
        for (from_ap, tsc) in [(false, 1), (true, 0x0001_2345_6789_abcd)] {
            let body = seal(&key, 0, tsc, ta, (da, sa, 6), from_ap, msdu);
            assert_ne!(Header::of(&body), Header::Aes);
            let frame = |body| Frame::new(body, ta, da, sa, 6, from_ap);
            assert_eq!(frame(&body).open(&key), Ok(msdu.to_vec()));
            // Another TK: the ICV does not come out.
            let mut other = key;
            other[0] ^= 1;
            assert_eq!(frame(&body).open(&other), Err(Failure::Icv));
            // The right TK, the other direction's Michael key (or another priority):
            // the ICV does, the MIC not.
            let reversed = Frame::new(&body, ta, da, sa, 6, !from_ap);
            assert_eq!(reversed.open(&key), Err(Failure::Michael));
            let priority = Frame::new(&body, ta, da, sa, 0, from_ap);
            assert_eq!(priority.open(&key), Err(Failure::Michael));
            // Cut: too short for the MIC and ICV, or cut inside the MSDU.
            assert_eq!(frame(&body[..IV_LEN + 11]).open(&key), Err(Failure::Icv));
            assert_eq!(frame(&body[..body.len() - 1]).open(&key), Err(Failure::Icv));
        }
    }

    #[test]
    fn headers_tell_tkip_from_ccmp_and_gcmp_where_they_can() {
        // TKIP: the seed of TSC1 0x47 is 0x67; TSC0 0x12, or zero.
        assert_eq!(Header::of(&[0x47, 0x67, 0x12, 0x20]), Header::Tkip);
        assert_eq!(Header::of(&[0x47, 0x67, 0x00, 0x20]), Header::Either);
        // CCMP or GCMP: PN1 not the seed of PN0; or PN0 0x47 and PN1 0x67, which is.
        assert_eq!(Header::of(&[0x01, 0x00, 0x00, 0x20]), Header::Aes);
        assert_eq!(Header::of(&[0x47, 0x68, 0x00, 0x20]), Header::Aes);
        // Every TKIP IV is read as TKIP's or either's.
        for tsc1 in 0..=255u8 {
            for tsc0 in [0u8, 1, 0xff] {
                let iv = [tsc1, (tsc1 | 0x20) & 0x7f, tsc0, 0x20];
                assert_ne!(Header::of(&iv), Header::Aes, "{iv:?}");
            }
        }
        assert_eq!(Header::of(&[0x01]), Header::Tkip);
    }
}
