//! 802.11 decryption throughput (MB/s of frames in): CCMP-, GCMP-256- and
//! TKIP-protected QoS data frames through the public `PacketDecoder` (radiotap,
//! 802.11, CCMP, GCMP or TKIP, LLC/SNAP, IPv4, TCP), against the same frames
//! unprotected; and the 1 448-byte segments sent in 256-byte fragments (six
//! MPDUs each, open or CCMP, each fragment decrypted, then put together).
//!
//! Corpus, made in memory: 1 000 frames of a station to its access point, each an
//! IPv4/TCP segment of 1 448 bytes of payload (bulk data) or of none (ACKs), sealed
//! here with RustCrypto `ccm`, ring's AES-GCM, or `net::wpa::tkip::seal`, under a
//! temporal key the decoder is given as a `tk` key (the cost per frame is that of a
//! key from a handshake: one CCM or GCM open, or one TKIP key mixing, RC4, CRC-32
//! and Michael; a 32-byte `tk` is tried as GCMP-256's before CCMP-256's). The
//! end-to-end comparison with tshark on a whole capture wrapped by
//! `benches/wrap_wpa2.py` is in README.md. Run: `cargo bench --bench wpa`.

use std::sync::Arc;

use ccm::aead::generic_array::GenericArray;
use ccm::aead::{AeadInPlace, KeyInit};
use ccm::consts::{U13, U8};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use consentry::net::capture::LinkType;
use consentry::net::packet::PacketDecoder;
use consentry::net::wpa::{tkip, GivenTk, WlanKey, WlanKeys};
use consentry::timestamp::Timestamp;
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};

type Ccmp = ccm::Ccm<aes::Aes128, U8, U13>;

const FRAMES: usize = 1000;
const TK: [u8; 16] = [0x3c; 16];
const TKIP_KEY: [u8; 32] = [0x3d; 32];
const GCMP_256_KEY: [u8; 32] = [0x3e; 32];
const AP: [u8; 6] = [2, 0, 0, 0, 0x5a, 1];
const STA: [u8; 6] = [2, 0, 0, 0xaa, 0xcc, 7];
const ROUTER: [u8; 6] = [2, 0, 0, 0, 0x5a, 0xfe];
/// Radiotap: version 0, length 8, nothing present.
const RADIOTAP: [u8; 8] = [0, 0, 8, 0, 0, 0, 0, 0];
const SNAP_IPV4: [u8; 8] = [0xaa, 0xaa, 3, 0, 0, 0, 8, 0];

/// An IPv4/TCP segment of `payload` bytes (checksums are not checked on the way).
fn segment(seq: u32, payload: usize) -> Vec<u8> {
    let total = (40 + payload) as u16;
    let mut p = vec![0x45, 0];
    p.extend(total.to_be_bytes());
    p.extend([0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 2, 203, 0, 113, 9]);
    p.extend([0xc3, 0x50, 0, 80]);
    p.extend(seq.to_be_bytes());
    p.extend([0, 0, 0, 1, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0]);
    p.extend((0..payload).map(|i| b'a' + (i % 26) as u8));
    p
}

#[derive(Clone, Copy, PartialEq)]
enum Protection {
    Open,
    Ccmp,
    Gcmp256,
    Tkip,
}

/// A QoS data frame (To DS) of the station holding `packet`, protected with packet
/// number (TSC) `pn` as `protection` says.
fn frame(pn: u64, packet: &[u8], protection: Protection) -> Vec<u8> {
    let msdu = [&SNAP_IPV4[..], packet].concat();
    mpdu(pn, pn as u16, (0, false), msdu, protection)
}

/// The `packet`'s MSDU in fragments of `FRAGMENT` bytes, sequence number `sequence`,
/// packet numbers from `pn` on (open or CCMP).
fn fragments(pn: u64, sequence: u16, packet: &[u8], protection: Protection) -> Vec<Vec<u8>> {
    const FRAGMENT: usize = 256;
    let msdu = [&SNAP_IPV4[..], packet].concat();
    let count = msdu.len().div_ceil(FRAGMENT);
    msdu.chunks(FRAGMENT)
        .enumerate()
        .map(|(i, part)| {
            let number = (i as u8, i + 1 < count);
            mpdu(pn + i as u64, sequence, number, part.to_vec(), protection)
        })
        .collect()
}

/// A QoS data frame (To DS) of the station holding `body`, sequence number
/// `sequence`, fragment `number` (with More Fragments when `more`), protected with
/// packet number (TSC) `pn` as `protection` says.
fn mpdu(
    pn: u64,
    sequence: u16,
    (number, more): (u8, bool),
    mut body: Vec<u8>,
    protection: Protection,
) -> Vec<u8> {
    let more = if more { 0x04 } else { 0 };
    let flags = if protection == Protection::Open {
        0x01 | more
    } else {
        0x41 | more
    };
    let mut header = vec![0x88, flags, 0x2c, 0];
    header.extend(AP);
    header.extend(STA);
    header.extend(ROUTER);
    header.extend(((sequence & 0xfff) << 4 | u16::from(number)).to_le_bytes());
    header.extend([0, 0]); // QoS control: TID 0
    let mut out = [&RADIOTAP[..], &header].concat();
    if protection == Protection::Tkip {
        let msdu = (ROUTER, STA, 0);
        out.extend(tkip::seal(&TKIP_KEY, 0, pn, STA, msdu, false, &body));
        return out;
    }
    if protection != Protection::Open {
        let pn = pn.to_be_bytes(); // PN5 = pn[2] … PN0 = pn[7]
        out.extend([pn[7], pn[6], 0, 0x20, pn[5], pn[4], pn[3], pn[2]]);
        let mut aad = vec![0x88, 0x41 | more];
        aad.extend(&header[4..22]);
        aad.extend([number, 0, 0, 0]);
        if protection == Protection::Ccmp {
            let nonce = [&[0][..], &STA, &pn[2..]].concat();
            let cipher = Ccmp::new_from_slice(&TK).expect("a 16-byte key");
            let mic = cipher
                .encrypt_in_place_detached(GenericArray::from_slice(&nonce), &aad, &mut body)
                .expect("CCM seals");
            body.extend(mic);
        } else {
            // GCMP: the nonce is A2 and the PN, the MIC GCM's 16-byte tag.
            let nonce: [u8; 12] = [&STA[..], &pn[2..]].concat().try_into().expect("12");
            let key = UnboundKey::new(&aead::AES_256_GCM, &GCMP_256_KEY).expect("a key");
            LessSafeKey::new(key)
                .seal_in_place_append_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(&aad),
                    &mut body,
                )
                .expect("GCM seals");
        }
    }
    out.extend(body);
    out
}

fn corpus(payload: usize, protection: Protection) -> Vec<Vec<u8>> {
    (0..FRAMES)
        .map(|i| frame(i as u64 + 1, &segment(i as u32 * 1448, payload), protection))
        .collect()
}

/// Decodes `frames` with a fresh decoder given `keys`: the packets out, `FRAMES`.
fn decode_all(frames: &[Vec<u8>], keys: &Arc<WlanKeys>) -> usize {
    let mut decoder = PacketDecoder::new(Default::default());
    decoder.set_wlan_keys(keys.clone());
    let mut packets = 0;
    for f in frames {
        let ts = Timestamp::from_micros(0);
        let _ = decoder.decode(ts, LinkType::from_number(127), f, &mut |_| packets += 1);
    }
    assert_eq!(packets, FRAMES);
    packets
}

fn bench(c: &mut Criterion) {
    // Each cipher's frames with their key alone: the first cipher it is tried as
    // is the frames'.
    let keys_of = |protection| {
        let key = match protection {
            Protection::Ccmp | Protection::Open => GivenTk::Bits128(TK),
            Protection::Gcmp256 => GivenTk::Bits256(GCMP_256_KEY),
            Protection::Tkip => GivenTk::Bits256(TKIP_KEY),
        };
        Arc::new(WlanKeys::new(&[WlanKey::Tk(key)]))
    };
    let mut group = c.benchmark_group("wpa");
    for (name, payload) in [("1448", 1448), ("ack", 0)] {
        for (cipher, protection) in [
            ("open", Protection::Open),
            ("ccmp", Protection::Ccmp),
            ("gcmp256", Protection::Gcmp256),
            ("tkip", Protection::Tkip),
        ] {
            let frames = corpus(payload, protection);
            let keys = keys_of(protection);
            let bytes: usize = frames.iter().map(Vec::len).sum();
            group.throughput(Throughput::Bytes(bytes as u64));
            let id = format!("{cipher}/{name}");
            group.bench_function(id, |b| b.iter(|| decode_all(&frames, &keys)));
        }
    }
    for protection in [Protection::Open, Protection::Ccmp] {
        let frames: Vec<Vec<u8>> = (0..FRAMES)
            .flat_map(|i| {
                let packet = segment(i as u32 * 1448, 1448);
                fragments(i as u64 * 6 + 1, i as u16, &packet, protection)
            })
            .collect();
        assert_eq!(frames.len(), FRAMES * 6);
        let keys = keys_of(protection);
        let bytes: usize = frames.iter().map(Vec::len).sum();
        group.throughput(Throughput::Bytes(bytes as u64));
        let cipher = if protection == Protection::Open {
            "open"
        } else {
            "ccmp"
        };
        let id = format!("{cipher}/1448-in-fragments");
        group.bench_function(id, |b| b.iter(|| decode_all(&frames, &keys)));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
