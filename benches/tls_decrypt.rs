//! TLS record decryption throughput per cipher suite (MB/s of TLS records in), through
//! the public `TlsDecryptor::push`.
//!
//! Corpus, made in memory: one connection per suite with plaintext hellos, then 64
//! client records of 16 KiB application data each (1 MiB of plaintext), sealed here
//! with ring (AEADs, HMAC) and RustCrypto `aes` + `cbc`. TLS 1.3 connections log only
//! the client application secret (so the first record is application data); TLS 1.2
//! ones a master secret, with a ChangeCipherSpec before the data. Every iteration
//! feeds the whole connection to a fresh decryptor, in 1 448-byte pushes as TCP
//! segments would come. Run: `cargo bench --bench tls_decrypt`.
//!
//! Group `tls_ech`: `captures/tls/ech.pcap` (two TLS 1.3 connections with Encrypted
//! Client Hello, three requests) read whole with `source::pcap::read_capture`, with
//! its key log as is (the inner hellos opened with `ECH_SECRET`), without the ECH
//! lines (the secrets found by trial among the capture's own two entries), and both
//! behind 4 094 unrelated TLS 1.3 entries: with the ECH lines that only adds reading
//! the longer key log; without, each connection tries about 4 095 entries, the worst
//! case under `MAX_ECH_TRIALS`. Time per capture; per connection is half.
//!
//! Group `tls_hello`: one ClientHello parsed, its JA3 and JA4 computed, and one
//! server Certificate message parsed (see `bench_hello`).

use aes::cipher::{block_padding::NoPadding, BlockEncryptMut, KeyIvInit};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hmac;

use std::sync::Arc;

use consentry::net::keylog::KeyLog;
use consentry::net::tls_decrypt::{DecryptStatus, TlsDecryptor, TlsOutput, MAX_ECH_TRIALS};
use consentry::source::pcap::{read_capture, CaptureOptions};

const RECORDS: usize = 64;
const RECORD_PLAIN: usize = 16 << 10;
const SEGMENT: usize = 1448;

fn record(t: u8, frag: &[u8]) -> Vec<u8> {
    [&[t, 3, 3][..], &(frag.len() as u16).to_be_bytes(), frag].concat()
}

fn handshake_record(t: u8, body: &[u8]) -> Vec<u8> {
    record(
        22,
        &[&[t][..], &(body.len() as u32).to_be_bytes()[1..], body].concat(),
    )
}

fn hellos(suite: u16, tls13: bool) -> (Vec<u8>, Vec<u8>) {
    let mut ch = vec![3, 3];
    ch.extend([0x42; 32]);
    ch.extend([0, 0, 2]);
    ch.extend(suite.to_be_bytes());
    ch.extend([1, 0]);
    let versions: &[u8] = if tls13 {
        &[0, 7, 0, 43, 0, 3, 2, 3, 4]
    } else {
        &[0, 0]
    };
    ch.extend(versions);
    let mut sh = vec![3, 3];
    sh.extend([0x24; 32]);
    sh.push(0);
    sh.extend(suite.to_be_bytes());
    sh.push(0);
    let versions: &[u8] = if tls13 {
        &[0, 6, 0, 43, 0, 2, 3, 4]
    } else {
        &[0, 0]
    };
    sh.extend(versions);
    (handshake_record(1, &ch), handshake_record(2, &sh))
}

fn hkdf_label(alg: hmac::Algorithm, secret: &[u8], label: &[u8], len: usize) -> Vec<u8> {
    let mut info = (len as u16).to_be_bytes().to_vec();
    info.push(6 + label.len() as u8);
    info.extend(b"tls13 ");
    info.extend(label);
    info.push(0);
    info.push(1);
    let key = hmac::Key::new(alg, secret);
    hmac::sign(&key, &info).as_ref()[..len].to_vec()
}

fn prf(alg: hmac::Algorithm, secret: &[u8], label_seed: &[u8], len: usize) -> Vec<u8> {
    let key = hmac::Key::new(alg, secret);
    let (mut out, mut a) = (Vec::new(), hmac::sign(&key, label_seed).as_ref().to_vec());
    while out.len() < len {
        out.extend(hmac::sign(&key, &[&a[..], label_seed].concat()).as_ref());
        a = hmac::sign(&key, &a).as_ref().to_vec();
    }
    out.truncate(len);
    out
}

/// (client stream, key log) for one suite.
fn connection(suite: u16) -> (Vec<u8>, Vec<u8>, String) {
    let tls13 = (0x1301..=0x1303).contains(&suite);
    let (ch, sh) = hellos(suite, tls13);
    let plain = vec![0x5a; RECORD_PLAIN];
    let random = "42".repeat(32);
    let mut client = ch;
    if tls13 {
        let (alg, hash, key_len) = match suite {
            0x1301 => (&aead::AES_128_GCM, hmac::HMAC_SHA256, 16),
            0x1302 => (&aead::AES_256_GCM, hmac::HMAC_SHA384, 32),
            _ => (&aead::CHACHA20_POLY1305, hmac::HMAC_SHA256, 32),
        };
        let secret = vec![7u8; hash.digest_algorithm().output_len()];
        let key = LessSafeKey::new(
            UnboundKey::new(alg, &hkdf_label(hash, &secret, b"key", key_len)).unwrap(),
        );
        let iv = hkdf_label(hash, &secret, b"iv", 12);
        for seq in 0..RECORDS as u64 {
            let mut p = plain.clone();
            p.push(23);
            let len = (p.len() + 16) as u16;
            let header = [23, 3, 3, (len >> 8) as u8, len as u8];
            let mut nonce: [u8; 12] = iv.clone().try_into().unwrap();
            for (b, s) in nonce[4..].iter_mut().zip(seq.to_be_bytes()) {
                *b ^= s;
            }
            key.seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(header),
                &mut p,
            )
            .unwrap();
            client.extend(header);
            client.extend(p);
        }
        let log = format!("CLIENT_TRAFFIC_SECRET_0 {random} {}\n", hex(&secret));
        return (client, sh, log);
    }
    let master = [0x61u8; 48];
    let (prf_alg, mac): (hmac::Algorithm, Option<(hmac::Algorithm, usize)>) = match suite {
        0xc030 => (hmac::HMAC_SHA384, None),
        0xc013 => (
            hmac::HMAC_SHA256,
            Some((hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, 20)),
        ),
        0xc027 => (hmac::HMAC_SHA256, Some((hmac::HMAC_SHA256, 32))),
        0xc028 => (hmac::HMAC_SHA384, Some((hmac::HMAC_SHA384, 48))),
        _ => (hmac::HMAC_SHA256, None),
    };
    let (key_len, iv_len) = match suite {
        0xc02f => (16, 4),
        0xc030 => (32, 4),
        0xcca8 => (32, 12),
        0xc013 | 0xc027 => (16, 0),
        _ => (32, 0),
    };
    let mac_len = mac.map_or(0, |m| m.1);
    let seed = [&b"key expansion"[..], &[0x24; 32], &[0x42; 32]].concat();
    let block = prf(prf_alg, &master, &seed, 2 * (mac_len + key_len + iv_len));
    let mac_key = &block[..mac_len];
    let key = &block[2 * mac_len..2 * mac_len + key_len];
    let iv = &block[2 * (mac_len + key_len)..2 * (mac_len + key_len) + iv_len];
    client.extend(record(20, &[1]));
    for seq in 0..RECORDS as u64 {
        let aad = |len: usize| {
            [
                &seq.to_be_bytes()[..],
                &[23, 3, 3],
                &(len as u16).to_be_bytes(),
            ]
            .concat()
        };
        let frag = match mac {
            None => {
                let alg = match suite {
                    0xc02f => &aead::AES_128_GCM,
                    0xc030 => &aead::AES_256_GCM,
                    _ => &aead::CHACHA20_POLY1305,
                };
                let k = LessSafeKey::new(UnboundKey::new(alg, key).unwrap());
                let mut nonce = [0u8; 12];
                let mut prefix = Vec::new();
                if iv_len == 4 {
                    nonce[..4].copy_from_slice(iv);
                    nonce[4..].copy_from_slice(&seq.to_be_bytes());
                    prefix = seq.to_be_bytes().to_vec();
                } else {
                    nonce.copy_from_slice(iv);
                    for (b, s) in nonce[4..].iter_mut().zip(seq.to_be_bytes()) {
                        *b ^= s;
                    }
                }
                let mut p = plain.clone();
                k.seal_in_place_append_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad(p.len())),
                    &mut p,
                )
                .unwrap();
                [prefix, p].concat()
            }
            Some((alg, _)) => {
                let mut p = plain.clone();
                p.extend(
                    hmac::sign(
                        &hmac::Key::new(alg, mac_key),
                        &[aad(plain.len()), plain.clone()].concat(),
                    )
                    .as_ref(),
                );
                let pad = 15 - p.len() % 16;
                p.resize(p.len() + pad + 1, pad as u8);
                let n = p.len();
                let civ = [seq as u8; 16];
                if key_len == 16 {
                    cbc::Encryptor::<aes::Aes128>::new_from_slices(key, &civ)
                        .unwrap()
                        .encrypt_padded_mut::<NoPadding>(&mut p, n)
                        .unwrap();
                } else {
                    cbc::Encryptor::<aes::Aes256>::new_from_slices(key, &civ)
                        .unwrap()
                        .encrypt_padded_mut::<NoPadding>(&mut p, n)
                        .unwrap();
                }
                [civ.to_vec(), p].concat()
            }
        };
        client.extend(record(23, &frag));
    }
    (
        client,
        sh,
        format!("CLIENT_RANDOM {random} {}\n", hex(&master)),
    )
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn decrypt_all(client: &[u8], server: &[u8], keys: &mut KeyLog) -> usize {
    let ch_len = 5 + usize::from(u16::from_be_bytes([client[3], client[4]]));
    let mut tls = TlsDecryptor::new();
    let mut out = Vec::new();
    tls.push(true, &client[..ch_len], keys, &mut out);
    tls.push(false, server, keys, &mut out);
    let mut plain = 0;
    for seg in client[ch_len..].chunks(SEGMENT) {
        out.clear();
        tls.push(true, seg, keys, &mut out);
        for o in &out {
            if let TlsOutput::Plaintext { data, .. } = o {
                plain += data.len();
            }
        }
    }
    assert_eq!(tls.status(), DecryptStatus::Decrypted);
    plain
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("tls_decrypt");
    for (suite, name) in [
        (0x1301u16, "TLS13_AES_128_GCM_SHA256"),
        (0x1302, "TLS13_AES_256_GCM_SHA384"),
        (0x1303, "TLS13_CHACHA20_POLY1305_SHA256"),
        (0xc02f, "TLS12_ECDHE_RSA_AES_128_GCM_SHA256"),
        (0xc030, "TLS12_ECDHE_RSA_AES_256_GCM_SHA384"),
        (0xcca8, "TLS12_ECDHE_RSA_CHACHA20_POLY1305"),
        (0xc013, "TLS12_ECDHE_RSA_AES_128_CBC_SHA"),
        (0xc027, "TLS12_ECDHE_RSA_AES_128_CBC_SHA256"),
        (0xc028, "TLS12_ECDHE_RSA_AES_256_CBC_SHA384"),
    ] {
        let (client, server, log) = connection(suite);
        let mut keys = KeyLog::new();
        keys.add(log.as_bytes());
        assert_eq!(
            decrypt_all(&client, &server, &mut keys),
            RECORDS * RECORD_PLAIN,
            "{name}"
        );
        group.throughput(Throughput::Bytes(client.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| decrypt_all(&client, &server, &mut keys))
        });
    }
    group.finish();
}

/// Requests read from `ech.pcap` with `keylog`.
fn read_ech(capture: &[u8], keylog: &Arc<[u8]>) -> usize {
    let opts = CaptureOptions {
        keylogs: vec![keylog.clone()],
        ..CaptureOptions::new("ech.pcap", Default::default())
    };
    let mut requests = 0;
    let (_, error) = read_capture(capture, &opts, &mut |_| {}, &mut |x| {
        requests += usize::from(!x.metadata_only)
    })
    .unwrap();
    assert!(error.is_none());
    requests
}

fn bench_ech(c: &mut Criterion) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/captures/tls/");
    let capture = std::fs::read(format!("{dir}ech.pcap")).unwrap();
    let full = std::fs::read(format!("{dir}ech.keylog")).unwrap();
    let without: Vec<u8> = full
        .split_inclusive(|&b| b == b'\n')
        .filter(|l| !l.starts_with(b"ECH_"))
        .flatten()
        .copied()
        .collect();
    let mut decoys = String::new();
    for i in 0..MAX_ECH_TRIALS - 2 {
        decoys.push_str(&format!(
            "SERVER_HANDSHAKE_TRAFFIC_SECRET {:064x} {}\n",
            i + 1,
            "5a".repeat(32)
        ));
    }
    let decoys = decoys.into_bytes();
    let mut group = c.benchmark_group("tls_ech");
    for (name, keylog) in [
        ("ech_secret", full.clone()),
        ("trial", without.clone()),
        (
            "ech_secret_behind_4094_entries",
            [decoys.clone(), full].concat(),
        ),
        ("trial_behind_4094_entries", [decoys, without].concat()),
    ] {
        let keylog: Arc<[u8]> = Arc::from(keylog);
        assert_eq!(read_ech(&capture, &keylog), 3, "{name}");
        group.bench_function(name, |b| b.iter(|| read_ech(&capture, &keylog)));
    }
    group.finish();
}

/// The body of the first ClientHello in a capture file's bytes, found by its record
/// and handshake headers (TLS over TCP; the record holds the whole message).
fn first_client_hello_body(capture: &[u8]) -> &[u8] {
    let at = capture
        .windows(6)
        .position(|w| w[0] == 0x16 && w[1] == 3 && w[2] <= 3 && w[5] == 1)
        .expect("a ClientHello record");
    let len = u32::from_be_bytes([0, capture[at + 6], capture[at + 7], capture[at + 8]]) as usize;
    &capture[at + 9..at + 9 + len]
}

/// Group `tls_hello`: parsing one ClientHello body with `tls::parse_client_hello`,
/// which also computes its JA3 and JA4 (`net::tls_fingerprint`): rustls's hello of
/// `captures/tls/tls.pcap` and OpenSSL's of `captures/tls/openssl.pcap`. Time per
/// hello, once per TLS connection in captures and the proxy.
fn bench_hello(c: &mut Criterion) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/captures/tls/");
    let mut group = c.benchmark_group("tls_hello");
    for file in ["tls.pcap", "openssl.pcap"] {
        let capture = std::fs::read(format!("{dir}{file}")).unwrap();
        let body = first_client_hello_body(&capture);
        let hello = consentry::net::tls::parse_client_hello(body).expect(file);
        assert_eq!(hello.fingerprints.ja3().len(), 32);
        group.bench_function(file, |b| {
            b.iter(|| consentry::net::tls::parse_client_hello(std::hint::black_box(body)))
        });
    }
    // The server's TLS 1.2 Certificate message (one RSA certificate, OpenSSL's test
    // server): parsed once per connection that shows one.
    let capture = std::fs::read(format!("{dir}openssl.pcap")).unwrap();
    let body = first_certificate_body(&capture);
    let parse = consentry::net::tls_certificate::parse_certificate;
    assert!(parse(body, false).expect("parses").is_some());
    group.bench_function("certificate openssl.pcap", |b| {
        b.iter(|| parse(std::hint::black_box(body), false))
    });
    group.finish();
}

/// The body of the first TLS 1.2 Certificate message in `capture`'s bytes: type 11,
/// a length, and a list length three less.
fn first_certificate_body(capture: &[u8]) -> &[u8] {
    let u24 = |b: &[u8]| u32::from_be_bytes([0, b[0], b[1], b[2]]) as usize;
    let at = capture
        .windows(7)
        .position(|w| w[0] == 11 && u24(&w[1..4]) > 100 && u24(&w[1..4]) == u24(&w[4..7]) + 3)
        .expect("a Certificate message");
    &capture[at + 4..at + 4 + u24(&capture[at + 1..at + 4])]
}

criterion_group!(benches, bench, bench_ech, bench_hello);
criterion_main!(benches);
