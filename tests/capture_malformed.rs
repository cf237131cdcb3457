//! Malformed captures, built here, through the reader and the packet decoder: each
//! must end in frames and/or a clear error, never a panic, a hang or a large buffer.

use std::io::Read;

use consentry::net::capture::{
    CaptureError, CaptureEvent, CaptureLimits, CaptureReader, MAX_BLOCK_LEN,
};
use consentry::net::packet::{PacketDecoder, PacketLimits};

/// Reads everything (decoding every frame); returns frames seen and the final error.
fn run(bytes: &[u8]) -> (usize, Option<CaptureError>) {
    // A small initial buffer exercises growth (and debug builds zero 256 KiB slowly).
    let limits = CaptureLimits {
        initial_buffer: 256,
        ..CaptureLimits::default()
    };
    run_with(bytes, limits)
}

fn run_with(bytes: impl Read, limits: CaptureLimits) -> (usize, Option<CaptureError>) {
    let mut r = match CaptureReader::with_limits(bytes, limits) {
        Ok(r) => r,
        Err(e) => return (0, Some(e)),
    };
    let mut decoder = PacketDecoder::new(PacketLimits::default());
    let mut frames = 0;
    // More events than bytes would mean a loop that consumes nothing.
    for _ in 0..1_000_000 {
        match r.next_event() {
            Ok(Some(CaptureEvent::Frame(f))) => {
                frames += 1;
                let _ = decoder.decode(f.ts, f.link, f.data, &mut |_| {});
            }
            Ok(Some(CaptureEvent::Secrets { .. } | CaptureEvent::Custom { .. })) => {}
            Ok(None) => return (frames, None),
            Err(e) => {
                assert!(
                    r.buffer_capacity() <= limits.max_block_len + 32,
                    "buffer grew to {}",
                    r.buffer_capacity()
                );
                return (frames, Some(e));
            }
        }
        assert!(r.buffer_capacity() <= limits.max_block_len.max(limits.initial_buffer) + 32);
    }
    panic!("no end after a million events");
}

fn pcap_header(snaplen: u32, link: u32) -> Vec<u8> {
    let mut v = 0xa1b2_c3d4u32.to_le_bytes().to_vec();
    v.extend_from_slice(&[2, 0, 4, 0]);
    v.extend_from_slice(&[0; 8]);
    v.extend_from_slice(&snaplen.to_le_bytes());
    v.extend_from_slice(&link.to_le_bytes());
    v
}

fn record(caplen: u32, origlen: u32, data: &[u8]) -> Vec<u8> {
    let mut v = vec![0; 8];
    v.extend_from_slice(&caplen.to_le_bytes());
    v.extend_from_slice(&origlen.to_le_bytes());
    v.extend_from_slice(data);
    v
}

/// An Ethernet/IPv4/TCP frame with a small payload.
fn tcp_frame() -> Vec<u8> {
    let mut v = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    v.extend_from_slice(&[
        0x45, 0, 0, 44, 0, 1, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ]);
    v.extend_from_slice(&[
        0, 80, 0x1f, 0x90, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0,
    ]);
    v.extend_from_slice(b"data");
    v
}

fn shb(extra_len: u32) -> Vec<u8> {
    let mut v = vec![0x0a, 0x0d, 0x0d, 0x0a];
    v.extend_from_slice(&(28 + extra_len).to_le_bytes());
    v.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    v.extend_from_slice(&[1, 0, 0, 0]);
    v.extend_from_slice(&[0xff; 8]);
    v.extend_from_slice(&vec![0; extra_len as usize]);
    v.extend_from_slice(&(28 + extra_len).to_le_bytes());
    v
}

fn block(btype: u32, len_field: u32, body: &[u8], trailer: u32) -> Vec<u8> {
    let mut v = btype.to_le_bytes().to_vec();
    v.extend_from_slice(&len_field.to_le_bytes());
    v.extend_from_slice(body);
    v.extend_from_slice(&trailer.to_le_bytes());
    v
}

fn idb(link: u16, snaplen: u32) -> Vec<u8> {
    let mut body = link.to_le_bytes().to_vec();
    body.extend_from_slice(&[0, 0]);
    body.extend_from_slice(&snaplen.to_le_bytes());
    block(1, 20, &body, 20)
}

fn epb(iface: u32, caplen: u32, data: &[u8]) -> Vec<u8> {
    let mut body = iface.to_le_bytes().to_vec();
    body.extend_from_slice(&[0; 8]);
    body.extend_from_slice(&caplen.to_le_bytes());
    body.extend_from_slice(&caplen.to_le_bytes());
    body.extend_from_slice(data);
    while !body.len().is_multiple_of(4) {
        body.push(0);
    }
    let len = 12 + body.len() as u32;
    block(6, len, &body, len)
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn truncated_file_headers() {
    let h = pcap_header(65535, 1);
    for cut in 1..h.len() {
        let (n, e) = run(&h[..cut]);
        assert_eq!(n, 0);
        assert!(
            matches!(e, Some(CaptureError::Truncated { offset: 0, .. })),
            "cut {cut}: {e:?}"
        );
    }
    let s = shb(0);
    for cut in 1..s.len() {
        let (_, e) = run(&s[..cut]);
        assert!(
            matches!(e, Some(CaptureError::Truncated { offset: 0, .. })),
            "cut {cut}: {e:?}"
        );
    }
    // A file header alone is an empty, valid capture.
    assert!(matches!(run(&h), (0, None)));
    assert!(matches!(run(&s), (0, None)));
}

#[test]
fn snaplen_zero_and_huge_captured_lengths() {
    let mut f = pcap_header(0, 1);
    f.extend(record(tcp_frame().len() as u32, 1500, &tcp_frame()));
    assert!(matches!(run(&f), (1, None)));

    // captured_len of 4 GB: an error naming the record's offset, without allocating.
    let at = f.len() as u64;
    f.extend(record(u32::MAX, u32::MAX, b"tiny"));
    let (n, e) = run(&f);
    assert_eq!(n, 1);
    let e = e.unwrap();
    assert!(
        matches!(e, CaptureError::Malformed { offset, .. } if offset == at),
        "{e}"
    );
    assert!(e.to_string().contains(&at.to_string()), "{e}");

    // Just above the limit is malformed too; just below is a (truncated) block.
    let mut f = pcap_header(0, 1);
    f.extend(record(MAX_BLOCK_LEN as u32 + 1, 0, b""));
    assert!(matches!(
        run(&f),
        (0, Some(CaptureError::Malformed { offset: 24, .. }))
    ));
    let mut f = pcap_header(0, 1);
    f.extend(record(MAX_BLOCK_LEN as u32, 0, b"only this"));
    assert!(matches!(
        run(&f),
        (0, Some(CaptureError::Truncated { offset: 24, .. }))
    ));

    // pcapng: an EPB whose block claims 4 GB, and one whose caplen exceeds its block.
    let mut f = shb(0);
    f.extend(idb(1, 0));
    f.extend(block(6, 0xffff_fffc, &[0; 32], 0));
    assert!(matches!(
        run(&f),
        (0, Some(CaptureError::Malformed { offset: 48, .. }))
    ));
    let mut f = shb(0);
    f.extend(idb(1, 0));
    let mut e = epb(0, 4, b"abcd");
    e[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
    f.extend(e);
    assert!(matches!(
        run(&f),
        (0, Some(CaptureError::Malformed { offset: 48, .. }))
    ));
}

#[test]
fn bogus_block_lengths() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("zero length", block(6, 0, &[], 0)),
        ("length 4", block(6, 4, &[], 4)),
        ("unaligned", block(6, 13, &[0; 4], 13)),
        ("trailer differs", block(6, 16, &[0; 4], 20)),
        ("idb too short", block(1, 12, &[], 12)),
        (
            "shb inside too short",
            block(0x0a0d_0d0a, 12, &[0x4d, 0x3c, 0x2b, 0x1a][..0], 12),
        ),
    ];
    for (name, b) in cases {
        let mut f = shb(0);
        f.extend(idb(1, 0));
        f.extend(epb(0, 4, b"good"));
        f.extend(b);
        f.extend(epb(0, 4, b"lost"));
        let (n, e) = run(&f);
        assert_eq!(n, 1, "{name}");
        assert!(
            matches!(
                e,
                Some(CaptureError::Malformed { .. } | CaptureError::Truncated { .. })
            ),
            "{name}: {e:?}"
        );
    }
    // A section header with a huge length.
    let mut f = shb(0);
    f[4..8].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
    assert!(matches!(
        run(&f),
        (0, Some(CaptureError::Malformed { offset: 0, .. }))
    ));
}

#[test]
fn packets_on_undefined_interfaces_are_skipped() {
    let mut f = shb(0);
    f.extend(epb(0, 4, b"none"));
    f.extend(idb(1, 0));
    f.extend(epb(7, 4, b"nope"));
    f.extend(epb(0, 4, b"good"));
    let mut r = CaptureReader::new(&f[..]).unwrap();
    let Some(CaptureEvent::Frame(fr)) = r.next_event().unwrap() else {
        panic!()
    };
    assert_eq!((fr.number, fr.data), (1, &b"good"[..]));
    assert!(r.next_event().unwrap().is_none());
    assert_eq!(r.stats().undefined_interface, 2);
}

#[test]
fn random_bytes_after_valid_headers() {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    for i in 0..300 {
        let len = (rng.next() % 600) as usize;
        let noise = rng.bytes(len);
        for head in [
            pcap_header((rng.next() % 70_000) as u32, (rng.next() % 300) as u32),
            {
                let mut v = shb(0);
                v.extend(idb((rng.next() % 300) as u16, 0));
                v
            },
        ] {
            let mut f = head;
            f.extend_from_slice(&noise);
            let (_, e) = run(&f);
            if let Some(e) = e {
                assert!(!e.to_string().is_empty(), "case {i}");
            }
        }
        // And pure noise.
        let _ = run(&noise);
    }
}

#[test]
fn bit_flips_of_a_valid_capture() {
    let mut f = shb(0);
    f.extend(idb(1, 0));
    f.extend(epb(0, tcp_frame().len() as u32, &tcp_frame()));
    f.extend(idb(101, 0));
    f.extend(epb(1, 40, &tcp_frame()[14..]));
    let mut p = pcap_header(65535, 1);
    p.extend(record(tcp_frame().len() as u32, 60, &tcp_frame()));
    p.extend(record(tcp_frame().len() as u32, 60, &tcp_frame()));
    for base in [f, p] {
        for i in 0..base.len() {
            for bit in [0x01, 0x80, 0xff] {
                let mut m = base.clone();
                m[i] ^= bit;
                let _ = run(&m);
            }
        }
    }
}

#[test]
fn memory_stays_bounded_with_small_limits() {
    // A 1 MiB record under a 64 KiB block limit is refused before it is buffered.
    let limits = CaptureLimits {
        max_block_len: 64 << 10,
        initial_buffer: 1024,
        ..CaptureLimits::default()
    };
    let mut f = pcap_header(0, 1);
    f.extend(record(1 << 20, 1 << 20, &vec![0; 1 << 20]));
    let (n, e) = run_with(&f[..], limits);
    assert_eq!(n, 0);
    assert!(
        matches!(e, Some(CaptureError::Malformed { offset: 24, .. })),
        "{e:?}"
    );
    // Many maximal records in a row reuse the same buffer.
    let mut f = pcap_header(0, 1);
    for _ in 0..20 {
        f.extend(record(60 << 10, 60 << 10, &vec![1; 60 << 10]));
    }
    let (n, e) = run_with(&f[..], limits);
    assert_eq!((n, e.is_none()), (20, true));
}
