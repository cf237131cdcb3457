//! Tests of the decryptor: RFC 8448 §3 known answers, then records made here with the
//! same primitives (ring, aes + cbc) for every suite family and key-schedule event,
//! each fed in one piece and byte by byte (STYLE.md #14).

use super::cipher::{suite, Bulk, Mac};
use super::kdf::{self, Hash, Prf};
use super::*;
use aes::cipher::{block_padding::NoPadding, BlockEncryptMut, KeyIvInit};
use proptest::prelude::*;
use ring::aead::{self as raead, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hmac;

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

// ---- RFC 8448 §3, "Simple 1-RTT Handshake" (TLS_AES_128_GCM_SHA256) ----------------

const R8448_CH: &str = "01 00 00 c0 03 03 cb 34 ec b1 e7 81 63 ba 1c 38 c6 da cb 19 6a 6d ff a2
    1a 8d 99 12 ec 18 a2 ef 62 83 02 4d ec e7 00 00 06 13 01 13 03 13 02 01
    00 00 91 00 00 00 0b 00 09 00 00 06 73 65 72 76 65 72 ff 01 00 01 00 00
    0a 00 14 00 12 00 1d 00 17 00 18 00 19 01 00 01 01 01 02 01 03 01 04 00
    23 00 00 00 33 00 26 00 24 00 1d 00 20 99 38 1d e5 60 e4 bd 43 d2 3d 8e
    43 5a 7d ba fe b3 c0 6e 51 c1 3c ae 4d 54 13 69 1e 52 9a af 2c 00 2b 00
    03 02 03 04 00 0d 00 20 00 1e 04 03 05 03 06 03 02 03 08 04 08 05 08 06
    04 01 05 01 06 01 02 01 04 02 05 02 06 02 02 02 00 2d 00 02 01 01 00 1c
    00 02 40 01";
const R8448_SH_REC: &str = "16 03 03 00 5a 02 00 00 56 03 03 a6 af 06 a4 12 18 60 dc 5e 6e 60 24 9c
    d3 4c 95 93 0c 8a c5 cb 14 34 da c1 55 77 2e d3 e2 69 28 00 13 01 00 00
    2e 00 33 00 24 00 1d 00 20 c9 82 88 76 11 20 95 fe 66 76 2b db f7 c6 72
    e1 56 d6 cc 25 3b 83 3d f1 dd 69 b1 b0 4e 75 1f 0f 00 2b 00 02 03 04";
const R8448_FLIGHT_REC: &str =
    "17 03 03 02 a2 d1 ff 33 4a 56 f5 bf f6 59 4a 07 cc 87 b5 80 23 3f 50 0f
    45 e4 89 e7 f3 3a f3 5e df 78 69 fc f4 0a a4 0a a2 b8 ea 73 f8 48 a7 ca
    07 61 2e f9 f9 45 cb 96 0b 40 68 90 51 23 ea 78 b1 11 b4 29 ba 91 91 cd
    05 d2 a3 89 28 0f 52 61 34 aa dc 7f c7 8c 4b 72 9d f8 28 b5 ec f7 b1 3b
    d9 ae fb 0e 57 f2 71 58 5b 8e a9 bb 35 5c 7c 79 02 07 16 cf b9 b1 18 3e
    f3 ab 20 e3 7d 57 a6 b9 d7 47 76 09 ae e6 e1 22 a4 cf 51 42 73 25 25 0c
    7d 0e 50 92 89 44 4c 9b 3a 64 8f 1d 71 03 5d 2e d6 5b 0e 3c dd 0c ba e8
    bf 2d 0b 22 78 12 cb b3 60 98 72 55 cc 74 41 10 c4 53 ba a4 fc d6 10 92
    8d 80 98 10 e4 b7 ed 1a 8f d9 91 f0 6a a6 24 82 04 79 7e 36 a6 a7 3b 70
    a2 55 9c 09 ea d6 86 94 5b a2 46 ab 66 e5 ed d8 04 4b 4c 6d e3 fc f2 a8
    94 41 ac 66 27 2f d8 fb 33 0e f8 19 05 79 b3 68 45 96 c9 60 bd 59 6e ea
    52 0a 56 a8 d6 50 f5 63 aa d2 74 09 96 0d ca 63 d3 e6 88 61 1e a5 e2 2f
    44 15 cf 95 38 d5 1a 20 0c 27 03 42 72 96 8a 26 4e d6 54 0c 84 83 8d 89
    f7 2c 24 46 1a ad 6d 26 f5 9e ca ba 9a cb bb 31 7b 66 d9 02 f4 f2 92 a3
    6a c1 b6 39 c6 37 ce 34 31 17 b6 59 62 22 45 31 7b 49 ee da 0c 62 58 f1
    00 d7 d9 61 ff b1 38 64 7e 92 ea 33 0f ae ea 6d fa 31 c7 a8 4d c3 bd 7e
    1b 7a 6c 71 78 af 36 87 90 18 e3 f2 52 10 7f 24 3d 24 3d c7 33 9d 56 84
    c8 b0 37 8b f3 02 44 da 8c 87 c8 43 f5 e5 6e b4 c5 e8 28 0a 2b 48 05 2c
    f9 3b 16 49 9a 66 db 7c ca 71 e4 59 94 26 f7 d4 61 e6 6f 99 88 2b d8 9f
    c5 08 00 be cc a6 2d 6c 74 11 6d bd 29 72 fd a1 fa 80 f8 5d f8 81 ed be
    5a 37 66 89 36 b3 35 58 3b 59 91 86 dc 5c 69 18 a3 96 fa 48 a1 81 d6 b6
    fa 4f 9d 62 d5 13 af bb 99 2f 2b 99 2f 67 f8 af e6 7f 76 91 3f a3 88 cb
    56 30 c8 ca 01 e0 c6 5d 11 c6 6a 1e 2a c4 c8 59 77 b7 c7 a6 99 9b bf 10
    dc 35 ae 69 f5 51 56 14 63 6c 0b 9b 68 c1 9e d2 e3 1c 0b 3b 66 76 30 38
    eb ba 42 f3 b3 8e dc 03 99 f3 a9 f2 3f aa 63 97 8c 31 7f c9 fa 66 a7 3f
    60 f0 50 4d e9 3b 5b 84 5e 27 55 92 c1 23 35 ee 34 0b bc 4f dd d5 02 78
    40 16 e4 b3 be 7e f0 4d da 49 f4 b4 40 a3 0c b5 d2 af 93 98 28 fd 4a e3
    79 4e 44 f9 4d f5 a6 31 ed e4 2c 17 19 bf da bf 02 53 fe 51 75 be 89 8e
    75 0e dc 53 37 0d 2b";
const R8448_CFIN_REC: &str =
    "17 03 03 00 35 75 ec 4d c2 38 cc e6 0b 29 80 44 a7 1e 21 9c 56 cc 77 b0
    51 7f e9 b9 3c 7a 4b fc 44 d8 7f 38 f8 03 38 ac 98 fc 46 de b3 84 bd 1c
    ae ac ab 68 67 d7 26 c4 05 46";
const R8448_NST_REC: &str =
    "17 03 03 00 de 3a 6b 8f 90 41 4a 97 d6 95 9c 34 87 68 0d e5 13 4a 2b 24
    0e 6c ff ac 11 6e 95 d4 1d 6a f8 f6 b5 80 dc f3 d1 1d 63 c7 58 db 28 9a
    01 59 40 25 2f 55 71 3e 06 1d c1 3e 07 88 91 a3 8e fb cf 57 53 ad 8e f1
    70 ad 3c 73 53 d1 6d 9d a7 73 b9 ca 7f 2b 9f a1 b6 c0 d4 a3 d0 3f 75 e0
    9c 30 ba 1e 62 97 2a c4 6f 75 f7 b9 81 be 63 43 9b 29 99 ce 13 06 46 15
    13 98 91 d5 e4 c5 b4 06 f1 6e 3f c1 81 a7 7c a4 75 84 00 25 db 2f 0a 77
    f8 1b 5a b0 5b 94 c0 13 46 75 5f 69 23 2c 86 51 9d 86 cb ee ac 87 aa c3
    47 d1 43 f9 60 5d 64 f6 50 db 4d 02 3e 70 e9 52 ca 49 fe 51 37 12 1c 74
    bc 26 97 68 7e 24 87 46 d6 df 35 30 05 f3 bc e1 86 96 12 9c 81 53 55 6b
    3b 6c 67 79 b3 7b f1 59 85 68 4f";
const R8448_C_APP_REC: &str =
    "17 03 03 00 43 a2 3f 70 54 b6 2c 94 d0 af fa fe 82 28 ba 55 cb ef ac ea
    42 f9 14 aa 66 bc ab 3f 2b 98 19 a8 a5 b4 6b 39 5b d5 4a 9a 20 44 1e 2b
    62 97 4e 1f 5a 62 92 a2 97 70 14 bd 1e 3d ea e6 3a ee bb 21 69 49 15 e4";
const R8448_S_APP_REC: &str =
    "17 03 03 00 43 2e 93 7e 11 ef 4a c7 40 e5 38 ad 36 00 5f c4 a4 69 32 fc
    32 25 d0 5f 82 aa 1b 36 e3 0e fa f9 7d 90 e6 df fc 60 2d cb 50 1a 59 a8
    fc c4 9c 4b f2 e5 f0 a2 1c 00 47 c2 ab f3 32 54 0d d0 32 e1 67 c2 95 5d";
const R8448_C_ALERT_REC: &str =
    "17 03 03 00 13 c9 87 27 60 65 56 66 b7 4d 7f f1 15 3e fd 6d b6 d0 b0 e3";
const R8448_S_ALERT_REC: &str =
    "17 03 03 00 13 b5 8f d6 71 66 eb f5 99 d2 47 20 cf be 7e fa 7a 88 64 a9";
const R8448_C_HS: &str = "b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21";
const R8448_S_HS: &str = "b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38";
const R8448_C_AP: &str = "9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5";
const R8448_S_AP: &str = "a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643";

fn rfc8448_streams() -> (Vec<u8>, Vec<u8>) {
    let ch = unhex(R8448_CH);
    let client = [
        &[22u8, 3, 1, 0, ch.len() as u8][..],
        &ch,
        // Compatibility ChangeCipherSpec, ignored (RFC 8448 has none; browsers send it).
        &[20, 3, 3, 0, 1, 1],
        &unhex(R8448_CFIN_REC),
        &unhex(R8448_C_APP_REC),
        &unhex(R8448_C_ALERT_REC),
    ]
    .concat();
    let server = [
        unhex(R8448_SH_REC),
        unhex(R8448_FLIGHT_REC),
        unhex(R8448_NST_REC),
        unhex(R8448_S_APP_REC),
        unhex(R8448_S_ALERT_REC),
    ]
    .concat();
    (client, server)
}

fn rfc8448_keylog() -> KeyLog {
    let random = hex(&unhex(R8448_CH)[6..38]);
    let mut keys = KeyLog::new();
    keys.add(
        format!(
            "CLIENT_HANDSHAKE_TRAFFIC_SECRET {random} {R8448_C_HS}\n\
             SERVER_HANDSHAKE_TRAFFIC_SECRET {random} {R8448_S_HS}\n\
             CLIENT_TRAFFIC_SECRET_0 {random} {R8448_C_AP}\n\
             SERVER_TRAFFIC_SECRET_0 {random} {R8448_S_AP}\n"
        )
        .as_bytes(),
    );
    keys
}

/// The plaintext of each direction, the anomalies, and the decryptor after feeding
/// `feeds` (direction, bytes) in order, each split into `chunk`-byte pushes.
fn feed(
    feeds: &[(bool, &[u8])],
    chunk: usize,
    keys: &mut KeyLog,
) -> (Vec<u8>, Vec<u8>, Vec<Anomaly>, TlsDecryptor) {
    let mut tls = TlsDecryptor::new();
    let (mut c, mut s, mut anomalies) = (Vec::new(), Vec::new(), Vec::new());
    for &(from_client, bytes) in feeds {
        for piece in bytes.chunks(chunk.max(1)) {
            let mut out = Vec::new();
            tls.push(from_client, piece, keys, &mut out);
            for o in out {
                match o {
                    TlsOutput::Plaintext {
                        from_client: true,
                        data,
                        ..
                    } => c.extend(data),
                    TlsOutput::Plaintext {
                        from_client: false,
                        data,
                        ..
                    } => s.extend(data),
                    TlsOutput::Anomaly(a) => anomalies.push(a),
                }
            }
        }
    }
    (c, s, anomalies, tls)
}

#[test]
fn rfc8448_simple_handshake_decrypts() {
    let (client, server) = rfc8448_streams();
    let expected: Vec<u8> = (0..50).collect();
    let ch_len = 5 + unhex(R8448_CH).len();
    // In protocol order, in one piece and byte by byte; and with the client's whole
    // stream first (its encrypted records wait for the ServerHello).
    let orders: [&[(bool, &[u8])]; 2] = [
        &[
            (true, &client[..ch_len]),
            (false, &server),
            (true, &client[ch_len..]),
        ],
        &[(true, &client), (false, &server)],
    ];
    for order in orders {
        for chunk in [usize::MAX, 1, 7] {
            let mut keys = rfc8448_keylog();
            let (c, s, anomalies, tls) = feed(order, chunk, &mut keys);
            assert_eq!(anomalies, [], "chunk {chunk}");
            assert_eq!(c, expected, "client, chunk {chunk}");
            assert_eq!(s, expected, "server, chunk {chunk}");
            assert_eq!(tls.status(), DecryptStatus::Decrypted);
            // Server: flight, ticket, data, alert; client: Finished, data, alert.
            assert_eq!(tls.records_decrypted(), 7);
            assert_eq!(tls.client_hello().unwrap().sni.as_deref(), Some("server"));
            assert_eq!(tls.server_hello().unwrap().cipher_suite, 0x1301);
            // RFC 8448 §3's server certificate, read from the decrypted flight.
            let mut tls = tls;
            let cert = tls.take_server_certificate().expect("certificate");
            assert_eq!(
                (cert.subject.as_str(), cert.issuer.as_str()),
                ("CN=rsa", "CN=rsa")
            );
            assert_eq!((cert.serial.as_str(), cert.chain), ("02", 1));
            assert_eq!(
                cert.not_before
                    .and_then(|t| t.rfc3339())
                    .map(|t| t.as_str().to_string()),
                Some("2016-07-30T01:23:59.000000Z".to_string())
            );
        }
    }
}

#[test]
fn rfc8448_without_keys_or_with_wrong_keys() {
    let (client, server) = rfc8448_streams();
    let feeds: &[(bool, &[u8])] = &[(true, &client), (false, &server)];
    let (c, s, anomalies, tls) = feed(feeds, usize::MAX, &mut KeyLog::new());
    assert_eq!((c.len(), s.len(), anomalies.len()), (0, 0, 0));
    assert_eq!(
        tls.status(),
        DecryptStatus::NotDecrypted(NotDecrypted::NoKey)
    );

    // The server handshake secret of another connection: its first record fails,
    // the server side stops (one anomaly, not one per record).
    let mut keys = rfc8448_keylog();
    let random = hex(&unhex(R8448_CH)[6..38]);
    keys.add(format!("SERVER_HANDSHAKE_TRAFFIC_SECRET {random} {R8448_C_HS}").as_bytes());
    keys.add(format!("CLIENT_HANDSHAKE_TRAFFIC_SECRET {random} {R8448_S_HS}").as_bytes());
    let (c, s, anomalies, tls) = feed(feeds, 3, &mut keys);
    assert_eq!((c.len(), s.len()), (0, 0));
    assert_eq!(anomalies.len(), 2, "{anomalies:?}");
    assert!(anomalies.iter().all(|a| a.kind == "tls-decrypt-failed"));
    assert_eq!(
        tls.status(),
        DecryptStatus::NotDecrypted(NotDecrypted::AuthenticationFailed)
    );

    // One flipped ciphertext bit in the server's application record.
    let mut bad = server.clone();
    let at = bad.len() - 24 - 10;
    bad[at] ^= 1;
    let (c, s, anomalies, tls) = feed(
        &[(true, &client), (false, &bad)],
        usize::MAX,
        &mut rfc8448_keylog(),
    );
    assert_eq!(c, (0..50).collect::<Vec<u8>>());
    assert!(s.is_empty());
    assert_eq!(anomalies.len(), 1);
    // Decrypted stays: records did decrypt before the corruption.
    assert_eq!(tls.status(), DecryptStatus::Decrypted);
}

#[test]
fn mid_connection_and_gaps() {
    let (client, server) = rfc8448_streams();
    let ch_len = 5 + unhex(R8448_CH).len();
    // The capture starts after the hellos.
    let (c, s, _, tls) = feed(
        &[(true, &client[ch_len..]), (false, &server[95..])],
        usize::MAX,
        &mut rfc8448_keylog(),
    );
    assert_eq!((c.len(), s.len()), (0, 0));
    assert_eq!(
        tls.status(),
        DecryptStatus::NotDecrypted(NotDecrypted::MissingHandshake)
    );
    // Garbage that is not TLS.
    let (_, _, _, tls) = feed(&[(true, b"GET / HTTP/1.1\r\n\r\n")], 1, &mut KeyLog::new());
    assert_eq!(
        tls.status(),
        DecryptStatus::NotDecrypted(NotDecrypted::MissingHandshake)
    );
    // A gap after the keys are known but before anything decrypted.
    let mut keys = rfc8448_keylog();
    let mut tls = TlsDecryptor::new();
    let mut out = Vec::new();
    tls.push(true, &client[..ch_len], &mut keys, &mut out);
    tls.push(false, &server[..95], &mut keys, &mut out);
    tls.gap(false);
    tls.push(false, &server[95..], &mut keys, &mut out);
    assert_eq!(out, []);
    assert_eq!(
        tls.status(),
        DecryptStatus::NotDecrypted(NotDecrypted::LostSync)
    );
}

// ---- Self-made TLS 1.3 connections -------------------------------------------------

fn ext(t: u16, d: &[u8]) -> Vec<u8> {
    [&t.to_be_bytes()[..], &(d.len() as u16).to_be_bytes(), d].concat()
}

fn handshake(t: u8, body: &[u8]) -> Vec<u8> {
    [&[t][..], &(body.len() as u32).to_be_bytes()[1..], body].concat()
}

fn record(t: u8, version: u16, frag: &[u8]) -> Vec<u8> {
    [
        &[t][..],
        &version.to_be_bytes(),
        &(frag.len() as u16).to_be_bytes(),
        frag,
    ]
    .concat()
}

fn client_hello(random: [u8; 32], session_id: &[u8], suites: &[u16], exts: &[Vec<u8>]) -> Vec<u8> {
    let suites: Vec<u8> = suites.iter().flat_map(|s| s.to_be_bytes()).collect();
    let exts = exts.concat();
    let body = [
        &[3u8, 3][..],
        &random,
        &[session_id.len() as u8],
        session_id,
        &(suites.len() as u16).to_be_bytes(),
        &suites,
        &[1, 0],
        &(exts.len() as u16).to_be_bytes(),
        &exts,
    ]
    .concat();
    record(HANDSHAKE, 0x0301, &handshake(HS_CLIENT_HELLO, &body))
}

fn server_hello_msg(random: [u8; 32], session_id: &[u8], suite: u16, exts: &[Vec<u8>]) -> Vec<u8> {
    let exts = exts.concat();
    let body = [
        &[3u8, 3][..],
        &random,
        &[session_id.len() as u8],
        session_id,
        &suite.to_be_bytes(),
        &[0],
        &(exts.len() as u16).to_be_bytes(),
        &exts,
    ]
    .concat();
    handshake(HS_SERVER_HELLO, &body)
}

const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// An AEAD sealing key of a suite's bulk cipher: ring's, or RustCrypto's CCM.
#[allow(clippy::large_enum_variant)]
enum SealKey {
    Ring(LessSafeKey),
    Ccm16(Box<ccm::Ccm<aes::Aes128, ccm::consts::U16, ccm::consts::U12>>),
    Ccm8(Box<ccm::Ccm<aes::Aes256, ccm::consts::U8, ccm::consts::U12>>),
    Ccm8Short(Box<ccm::Ccm<aes::Aes128, ccm::consts::U8, ccm::consts::U12>>),
}

impl SealKey {
    fn new(bulk: Bulk, key: &[u8]) -> Self {
        use ccm::aead::KeyInit;
        let ring = |alg| SealKey::Ring(LessSafeKey::new(UnboundKey::new(alg, key).unwrap()));
        match bulk {
            Bulk::AesGcm(16) => ring(&raead::AES_128_GCM),
            Bulk::AesGcm(_) => ring(&raead::AES_256_GCM),
            Bulk::ChaCha20Poly1305 => ring(&raead::CHACHA20_POLY1305),
            Bulk::AesCcm { key: 16, tag: 16 } => {
                SealKey::Ccm16(Box::new(KeyInit::new_from_slice(key).unwrap()))
            }
            Bulk::AesCcm { key: 16, tag: 8 } => {
                SealKey::Ccm8Short(Box::new(KeyInit::new_from_slice(key).unwrap()))
            }
            Bulk::AesCcm { key: 32, tag: 8 } => {
                SealKey::Ccm8(Box::new(KeyInit::new_from_slice(key).unwrap()))
            }
            other => panic!("no sealing key for {other:?} in these tests"),
        }
    }

    fn tag_len(&self) -> usize {
        match self {
            SealKey::Ccm8(_) | SealKey::Ccm8Short(_) => 8,
            _ => 16,
        }
    }

    fn seal(&self, nonce: [u8; 12], aad: &[u8], p: &mut Vec<u8>) {
        use ccm::aead::AeadInPlace;
        let n = ccm::aead::generic_array::GenericArray::from_slice(&nonce);
        match self {
            SealKey::Ring(k) => k
                .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), p)
                .unwrap(),
            SealKey::Ccm16(k) => k.encrypt_in_place(n, aad, p).unwrap(),
            SealKey::Ccm8(k) => k.encrypt_in_place(n, aad, p).unwrap(),
            SealKey::Ccm8Short(k) => k.encrypt_in_place(n, aad, p).unwrap(),
        }
    }
}

fn key_len(bulk: Bulk) -> usize {
    match bulk {
        Bulk::AesGcm(n) | Bulk::AesCcm { key: n, .. } | Bulk::AesCbc(n) | Bulk::CamelliaCbc(n) => n,
        Bulk::ChaCha20Poly1305 => 32,
        Bulk::Null => 0,
    }
}

/// Seals TLS 1.3 records the way a peer would (RFC 8446 §5.2).
struct Seal13 {
    hash: Hash,
    bulk: Bulk,
    secret: Vec<u8>,
    key: SealKey,
    iv: [u8; 12],
    seq: u64,
}

impl Seal13 {
    fn new(suite_id: u16, secret: &[u8]) -> Self {
        let s = suite(suite_id).unwrap();
        Seal13::with(s.bulk, s.hash, secret)
    }

    fn seal(&mut self, inner: u8, data: &[u8], pad: usize) -> Vec<u8> {
        let mut p = data.to_vec();
        p.push(inner);
        p.resize(p.len() + pad, 0);
        let len = p.len() + self.key.tag_len();
        let header = [23, 3, 3, (len >> 8) as u8, len as u8];
        let mut nonce = self.iv;
        for (b, s) in nonce[4..].iter_mut().zip(self.seq.to_be_bytes()) {
            *b ^= s;
        }
        self.seq += 1;
        self.key.seal(nonce, &header, &mut p);
        [&header[..], &p].concat()
    }

    fn key_update(&mut self) {
        let next = kdf::expand_label(
            self.hash,
            &self.secret,
            b"traffic upd",
            b"",
            self.hash.len(),
        );
        *self = Seal13::with(self.bulk, self.hash, &next);
    }

    fn with(bulk: Bulk, hash: Hash, secret: &[u8]) -> Self {
        let key = kdf::expand_label(hash, secret, b"key", b"", key_len(bulk));
        let iv = kdf::expand_label(hash, secret, b"iv", b"", 12);
        Seal13 {
            hash,
            bulk,
            secret: secret.to_vec(),
            key: SealKey::new(bulk, &key),
            iv: iv.try_into().unwrap(),
            seq: 0,
        }
    }
}

struct Tls13Case {
    suite: u16,
    /// The ClientHello carries an ECH extension no config opens (as Chromium's
    /// GREASE): the handshake is the outer hello's.
    grease_ech: bool,
    early: bool,
    early_accepted: bool,
    hrr: bool,
    key_update: bool,
    log_early: bool,
}

impl Default for Tls13Case {
    /// A plain handshake in TLS_AES_128_GCM_SHA256: no ECH, early data, retry or key
    /// update.
    fn default() -> Self {
        Tls13Case {
            suite: 0x1301,
            grease_ech: false,
            early: false,
            early_accepted: false,
            hrr: false,
            key_update: false,
            log_early: false,
        }
    }
}

/// A whole TLS 1.3 connection made here: (client stream, server stream, key log,
/// expected client plaintext, expected server plaintext).
fn tls13_connection(case: &Tls13Case) -> (Vec<u8>, Vec<u8>, String, Vec<u8>, Vec<u8>) {
    let hl = suite(case.suite).unwrap().hash.len();
    let secret = |b: u8| vec![b; hl];
    let random = [0x42; 32];
    let versions = ext(43, &[2, 3, 4]);
    let mut ch_exts = vec![versions.clone()];
    if case.early {
        ch_exts.push(ext(42, b""));
    }
    if case.grease_ech {
        // Outer (type 0), HKDF-SHA256 and AES-128-GCM, config id 0x2a, a 32-byte
        // encapsulated key, a 40-byte payload.
        let offer = [
            &[0, 0, 1, 0, 1, 0x2a, 0, 32][..],
            &[9; 32],
            &[0, 40],
            &[0xee; 40],
        ]
        .concat();
        ch_exts.push(ext(crate::net::tls::EXT_ECH, &offer));
    }
    let ch = client_hello(random, &[7; 32], &[case.suite], &ch_exts);
    let (mut c_early, mut c_hs, mut c_ap) = (
        Seal13::new(case.suite, &secret(1)),
        Seal13::new(case.suite, &secret(2)),
        Seal13::new(case.suite, &secret(3)),
    );
    let (mut s_hs, mut s_ap) = (
        Seal13::new(case.suite, &secret(4)),
        Seal13::new(case.suite, &secret(5)),
    );
    let sv = ext(43, &[3, 4]);
    let mut client = ch.clone();
    let mut server = Vec::new();
    let mut want_c = Vec::new();
    let mut want_s = Vec::new();
    if case.early {
        client.extend(record(CHANGE_CIPHER_SPEC, 0x0303, &[1]));
        client.extend(c_early.seal(APPLICATION_DATA, b"GET /early?imei=490154203237518", 0));
        want_c.extend(b"GET /early?imei=490154203237518");
    }
    if case.hrr {
        server.extend(record(
            HANDSHAKE,
            0x0303,
            &server_hello_msg(HRR_RANDOM, &[7; 32], case.suite, std::slice::from_ref(&sv)),
        ));
        server.extend(record(CHANGE_CIPHER_SPEC, 0x0303, &[1]));
        // The second ClientHello: same random, no early data.
        client.extend(client_hello(
            random,
            &[7; 32],
            &[case.suite],
            std::slice::from_ref(&versions),
        ));
    }
    server.extend(record(
        HANDSHAKE,
        0x0303,
        &server_hello_msg([0x24; 32], &[7; 32], case.suite, &[sv]),
    ));
    server.extend(record(CHANGE_CIPHER_SPEC, 0x0303, &[1]));
    let alpn = ext(16, &[0, 3, 2, b'h', b'2']);
    let ee_exts = if case.early_accepted {
        [alpn, ext(42, b"")].concat()
    } else {
        alpn
    };
    let ee = handshake(
        HS_ENCRYPTED_EXTENSIONS,
        &[&(ee_exts.len() as u16).to_be_bytes()[..], &ee_exts].concat(),
    );
    // EncryptedExtensions and the Certificate in one record, Finished in another.
    server.extend(s_hs.seal(
        HANDSHAKE,
        &[ee, handshake(11, &certificate13())].concat(),
        5,
    ));
    server.extend(s_hs.seal(HANDSHAKE, &handshake(HS_FINISHED, &[9; 32]), 0));
    server.extend(s_ap.seal(HANDSHAKE, &handshake(HS_NEW_SESSION_TICKET, &[1; 40]), 0));
    if case.early && case.early_accepted {
        client.extend(c_early.seal(HANDSHAKE, &handshake(HS_END_OF_EARLY_DATA, b""), 0));
    }
    client.extend(c_hs.seal(HANDSHAKE, &handshake(HS_FINISHED, &[8; 32]), 3));
    let req = b"POST /collect HTTP/1.1\r\nContent-Length: 12\r\n\r\nandroid_id=1";
    client.extend(c_ap.seal(APPLICATION_DATA, &req[..20], 0));
    client.extend(c_ap.seal(APPLICATION_DATA, &req[20..], 100));
    want_c.extend(req);
    server.extend(s_ap.seal(APPLICATION_DATA, b"HTTP/1.1 204 No Content\r\n\r\n", 0));
    want_s.extend(b"HTTP/1.1 204 No Content\r\n\r\n");
    if case.key_update {
        client.extend(c_ap.seal(HANDSHAKE, &handshake(HS_KEY_UPDATE, &[1]), 0));
        c_ap.key_update();
        client.extend(c_ap.seal(APPLICATION_DATA, b"after update", 0));
        want_c.extend(b"after update");
        server.extend(s_ap.seal(HANDSHAKE, &handshake(HS_KEY_UPDATE, &[0]), 0));
        s_ap.key_update();
        server.extend(s_ap.seal(APPLICATION_DATA, b"server after update", 0));
        want_s.extend(b"server after update");
        // And a second update on the server.
        server.extend(s_ap.seal(HANDSHAKE, &handshake(HS_KEY_UPDATE, &[0]), 0));
        s_ap.key_update();
        server.extend(s_ap.seal(APPLICATION_DATA, b"!", 0));
        want_s.extend(b"!");
    }
    client.extend(c_ap.seal(ALERT, &[1, 0], 0));
    let r = hex(&random);
    let h = |b: u8| hex(&secret(b));
    let mut log = format!(
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET {r} {}\nSERVER_HANDSHAKE_TRAFFIC_SECRET {r} {}\n\
         CLIENT_TRAFFIC_SECRET_0 {r} {}\nSERVER_TRAFFIC_SECRET_0 {r} {}\n",
        h(2),
        h(4),
        h(3),
        h(5)
    );
    if case.log_early {
        log += &format!("CLIENT_EARLY_TRAFFIC_SECRET {r} {}\n", h(1));
    } else if case.early {
        want_c.drain(..b"GET /early?imei=490154203237518".len());
    }
    (client, server, log, want_c, want_s)
}

/// A TLS 1.3 Certificate message body: an empty request context and one self-signed
/// certificate for `tls13.example` without extensions.
fn certificate13() -> Vec<u8> {
    let mut params = rcgen::CertificateParams::new(vec!["tls13.example".to_string()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "tls13.example");
    let key = rcgen::KeyPair::generate().unwrap();
    let der = params.self_signed(&key).unwrap().der().to_vec();
    let entry = [&(der.len() as u32).to_be_bytes()[1..], &der, &[0, 0]].concat();
    [&[0u8][..], &(entry.len() as u32).to_be_bytes()[1..], &entry].concat()
}

fn check_tls13(case: Tls13Case) {
    let (client, server, log, want_c, want_s) = tls13_connection(&case);
    let ch_end = 5 + usize::from(u16::from_be_bytes([client[3], client[4]]));
    for chunk in [usize::MAX, 1, 13] {
        for client_first in [false, true] {
            let mut keys = KeyLog::new();
            keys.add(log.as_bytes());
            let order: Vec<(bool, &[u8])> = if client_first {
                vec![(true, &client), (false, &server)]
            } else {
                vec![
                    (true, &client[..ch_end]),
                    (false, &server),
                    (true, &client[ch_end..]),
                ]
            };
            let (c, s, anomalies, mut tls) = feed(&order, chunk, &mut keys);
            let what = format!(
                "suite {:#06x} chunk {chunk} client first {client_first}",
                case.suite
            );
            assert_eq!(anomalies, [], "{what}");
            let cert = tls.take_server_certificate();
            assert_eq!(
                cert.map(|c| c.subject),
                Some("CN=tls13.example".to_string()),
                "{what}"
            );
            assert_eq!(
                String::from_utf8_lossy(&c),
                String::from_utf8_lossy(&want_c),
                "{what}"
            );
            assert_eq!(s, want_s, "{what}");
            assert_eq!(tls.status(), DecryptStatus::Decrypted, "{what}");
            assert_eq!(tls.alpn(), Some("h2"), "{what}");
        }
    }
}

#[test]
fn tls13_all_suites() {
    for suite in [0x1301, 0x1302, 0x1303, 0x1304, 0x1305] {
        check_tls13(Tls13Case {
            suite,
            ..Tls13Case::default()
        });
    }
}

#[test]
fn tls13_key_update() {
    for suite in [0x1301, 0x1302, 0x1303] {
        check_tls13(Tls13Case {
            suite,
            key_update: true,
            ..Tls13Case::default()
        });
    }
}

/// 0-RTT data waits for the ServerHello; its plaintext then says where its record
/// was captured (frame 4, with the ClientHello), not the ServerHello's frame. Records
/// read as they come say nothing (the bytes just pushed).
#[test]
fn zero_rtt_plaintext_says_where_its_record_was_captured() {
    let (client, server, log, want_c, _) = tls13_connection(&Tls13Case {
        early: true,
        early_accepted: true,
        log_early: true,
        ..Tls13Case::default()
    });
    let record_end =
        |at: usize| at + 5 + usize::from(u16::from_be_bytes([client[at + 3], client[at + 4]]));
    // The ClientHello, a compatibility ChangeCipherSpec, the 0-RTT record.
    let early_end = record_end(record_end(record_end(0)));
    let mut keys = KeyLog::new();
    keys.add(log.as_bytes());
    let mut tls = TlsDecryptor::new();
    let at = |n: u64| (Timestamp::from_micros(n as i64 * 1_000), n);
    let mut out = Vec::new();
    tls.push_at(true, &client[..early_end], at(4), &mut keys, &mut out);
    assert_eq!(out, [], "held until the ServerHello");
    tls.push_at(false, &server, at(5), &mut keys, &mut out);
    tls.push_at(true, &client[early_end..], at(6), &mut keys, &mut out);
    let plain: Vec<(Vec<u8>, Option<Captured>)> = out
        .into_iter()
        .filter_map(|o| match o {
            TlsOutput::Plaintext {
                from_client: true,
                data,
                captured,
            } => Some((data, captured)),
            _ => None,
        })
        .collect();
    let early = b"GET /early?imei=490154203237518".to_vec();
    assert_eq!(plain.first(), Some(&(early, Some(at(4)))));
    assert!(plain[1..].iter().all(|(_, c)| c.is_none()), "{plain:?}");
    let all: Vec<u8> = plain.into_iter().flat_map(|(d, _)| d).collect();
    assert_eq!(all, want_c);
}

/// Client records that came before the ServerHello of a connection whose secrets are
/// found by trial (ECH offered, no key log line under its random) are held twice: until
/// the ServerHello, then until the server's first encrypted record picks the entry.
/// Their plaintext still says where they were first captured.
#[test]
fn records_held_twice_for_an_ech_trial_keep_where_they_were_captured() {
    let (client, server, log, want_c, want_s) = tls13_connection(&Tls13Case {
        grease_ech: true,
        ..Tls13Case::default()
    });
    // The secrets under a random the capture does not show: only a trial finds them.
    let log = log.replace(&hex(&[0x42; 32]), &hex(&[0x43; 32]));
    let mut keys = KeyLog::new();
    keys.add(log.as_bytes());
    let mut tls = TlsDecryptor::new();
    let at = |n: u64| (Timestamp::from_micros(n as i64 * 1_000), n);
    let mut out = Vec::new();
    tls.push_at(true, &client, at(4), &mut keys, &mut out);
    tls.push_at(false, &server, at(5), &mut keys, &mut out);
    assert_eq!(tls.ech(), Some(EchOutcome::KeysMatched), "{out:?}");
    let mut c = Vec::new();
    let mut s = Vec::new();
    for o in out {
        match o {
            TlsOutput::Plaintext {
                from_client: true,
                data,
                captured,
            } => {
                assert_eq!(captured, Some(at(4)));
                c.extend(data);
            }
            TlsOutput::Plaintext {
                from_client: false,
                data,
                captured,
            } => {
                assert_eq!(captured, None, "read as it came");
                s.extend(data);
            }
            TlsOutput::Anomaly(a) => panic!("{a:?}"),
        }
    }
    assert_eq!((c, s), (want_c, want_s));
}

#[test]
fn tls13_zero_rtt_accepted_rejected_and_unlogged() {
    // Accepted: EndOfEarlyData under the early key, then the handshake key.
    check_tls13(Tls13Case {
        early: true,
        early_accepted: true,
        log_early: true,
        ..Tls13Case::default()
    });
    // Refused by the server: the client goes straight to the handshake key.
    check_tls13(Tls13Case {
        suite: 0x1302,
        early: true,
        log_early: true,
        ..Tls13Case::default()
    });
    // Early secret not logged: the 0-RTT record is skipped, the rest decrypts.
    check_tls13(Tls13Case {
        suite: 0x1303,
        early: true,
        key_update: true,
        ..Tls13Case::default()
    });
}

#[test]
fn an_ech_offer_whose_secrets_are_under_the_outer_random_is_outer_used() {
    for grease_ech in [false, true] {
        let case = Tls13Case {
            grease_ech,
            ..Tls13Case::default()
        };
        let (client, server, log, want_c, _) = tls13_connection(&case);
        let mut keys = KeyLog::new();
        keys.add(log.as_bytes());
        let (c, _, anomalies, tls) = feed(&[(true, &client), (false, &server)], 17, &mut keys);
        assert_eq!((anomalies, c), (Vec::new(), want_c));
        assert_eq!(tls.status(), DecryptStatus::Decrypted);
        // The server finished the outer hello's handshake: GREASE, or rejected.
        let want = grease_ech.then_some(EchOutcome::OuterUsed);
        assert_eq!(tls.ech(), want, "grease {grease_ech}");
    }
}

#[test]
fn tls13_hello_retry_request() {
    check_tls13(Tls13Case {
        hrr: true,
        ..Tls13Case::default()
    });
    check_tls13(Tls13Case {
        suite: 0x1303,
        early: true,
        hrr: true,
        key_update: true,
        log_early: true,
        ..Tls13Case::default()
    });
}

// ---- Self-made TLS 1.0–1.2 connections ---------------------------------------------

/// Seals TLS ≤ 1.2 records with the client or server half of a key block.
#[allow(clippy::large_enum_variant)]
enum Seal12 {
    Aead {
        key: SealKey,
        iv: Vec<u8>,
        explicit: bool,
        seq: u64,
    },
    Cbc {
        key: Vec<u8>,
        mac: hmac::Key,
        chained: Option<[u8; 16]>,
        etm: bool,
        seq: u64,
    },
}

impl Seal12 {
    fn pair(
        suite_id: u16,
        version: u16,
        master: &[u8],
        cr: &[u8; 32],
        sr: &[u8; 32],
        etm: bool,
    ) -> (Self, Self) {
        let s = suite(suite_id).unwrap();
        let prf = if version >= 0x0303 {
            Prf::Tls12(s.hash)
        } else {
            Prf::Md5Sha1
        };
        let (mac_len, mac_alg) = match s.mac {
            Mac::Aead => (0, hmac::HMAC_SHA256),
            Mac::Sha1 => (20, hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY),
            Mac::Sha256 => (32, hmac::HMAC_SHA256),
            Mac::Sha384 => (48, hmac::HMAC_SHA384),
        };
        let (key_len, iv_len) = match s.bulk {
            Bulk::AesGcm(n) | Bulk::AesCcm { key: n, .. } => (n, 4),
            Bulk::ChaCha20Poly1305 => (32, 12),
            Bulk::AesCbc(n) | Bulk::CamelliaCbc(n) => (n, if version == 0x0301 { 16 } else { 0 }),
            Bulk::Null => unreachable!(),
        };
        let block = kdf::prf(
            prf,
            master,
            b"key expansion",
            &[&sr[..], &cr[..]].concat(),
            2 * (mac_len + key_len + iv_len),
        );
        let piece =
            |i: usize, n: usize, base: usize| block[base + i * n..base + (i + 1) * n].to_vec();
        let one = |i: usize| {
            let mac = piece(i, mac_len, 0);
            let key = piece(i, key_len, 2 * mac_len);
            let iv = piece(i, iv_len, 2 * (mac_len + key_len));
            match s.bulk {
                Bulk::AesGcm(_) | Bulk::ChaCha20Poly1305 | Bulk::AesCcm { .. } => Seal12::Aead {
                    key: SealKey::new(s.bulk, &key),
                    explicit: iv.len() == 4,
                    iv,
                    seq: 0,
                },
                _ => Seal12::Cbc {
                    key,
                    mac: hmac::Key::new(mac_alg, &mac),
                    chained: (iv.len() == 16).then(|| iv.try_into().unwrap()),
                    etm,
                    seq: 0,
                },
            }
        };
        (one(0), one(1))
    }

    fn seal(&mut self, t: u8, version: u16, data: &[u8]) -> Vec<u8> {
        match self {
            Seal12::Aead {
                key,
                iv,
                explicit,
                seq,
            } => {
                let aad = [
                    &seq.to_be_bytes()[..],
                    &[t],
                    &version.to_be_bytes(),
                    &(data.len() as u16).to_be_bytes(),
                ]
                .concat();
                let mut nonce = [0u8; 12];
                let mut prefix = Vec::new();
                if *explicit {
                    nonce[..4].copy_from_slice(iv);
                    nonce[4..].copy_from_slice(&seq.wrapping_mul(0x9e37).to_be_bytes());
                    prefix = nonce[4..].to_vec();
                } else {
                    nonce.copy_from_slice(iv);
                    for (b, s) in nonce[4..].iter_mut().zip(seq.to_be_bytes()) {
                        *b ^= s;
                    }
                }
                let mut p = data.to_vec();
                key.seal(nonce, &aad, &mut p);
                *seq += 1;
                record(t, version, &[prefix, p].concat())
            }
            Seal12::Cbc {
                key,
                mac,
                chained,
                etm,
                seq,
            } => {
                let hdr = |len: usize| {
                    [
                        &seq.to_be_bytes()[..],
                        &[t],
                        &version.to_be_bytes(),
                        &(len as u16).to_be_bytes(),
                    ]
                    .concat()
                };
                let mut plain = data.to_vec();
                if !*etm {
                    let tag = hmac::sign(mac, &[hdr(data.len()), data.to_vec()].concat());
                    plain.extend_from_slice(tag.as_ref());
                }
                // Some padding beyond the minimum, as TLS allows.
                let pad = 15 - plain.len() % 16 + 16;
                plain.resize(plain.len() + pad + 1, pad as u8);
                let iv: [u8; 16] = chained.unwrap_or([0x5a ^ (*seq as u8); 16]);
                let n = plain.len();
                match key.len() {
                    16 => cbc::Encryptor::<aes::Aes128>::new_from_slices(key, &iv)
                        .unwrap()
                        .encrypt_padded_mut::<NoPadding>(&mut plain, n)
                        .unwrap(),
                    _ => cbc::Encryptor::<aes::Aes256>::new_from_slices(key, &iv)
                        .unwrap()
                        .encrypt_padded_mut::<NoPadding>(&mut plain, n)
                        .unwrap(),
                };
                let mut frag = if chained.is_some() {
                    Vec::new()
                } else {
                    iv.to_vec()
                };
                frag.extend_from_slice(&plain);
                if let Some(c) = chained {
                    c.copy_from_slice(&plain[n - 16..]);
                }
                if *etm {
                    let tag = hmac::sign(mac, &[hdr(frag.len()), frag.clone()].concat());
                    frag.extend_from_slice(tag.as_ref());
                }
                *seq += 1;
                record(t, version, &frag)
            }
        }
    }
}

struct Tls12Conn {
    client: Vec<u8>,
    server: Vec<u8>,
    want_c: Vec<u8>,
    want_s: Vec<u8>,
}

/// A TLS ≤ 1.2 connection: full handshake (or abbreviated when `resume`), then data.
/// `ticket` puts a session ticket in the ClientHello (and a NewSessionTicket in the
/// full handshake's server flight).
fn tls12_connection(
    suite_id: u16,
    version: u16,
    etm: bool,
    random: [u8; 32],
    master: &[u8],
    resume: bool,
    ticket: Option<&[u8]>,
) -> Tls12Conn {
    let (cr, sr) = (random, [random[0] ^ 0xff; 32]);
    let mut exts = vec![ext(23, b"")];
    if etm {
        exts.push(ext(22, b""));
    }
    if let Some(t) = ticket.filter(|_| resume) {
        exts.push(ext(35, t));
    } else if ticket.is_some() {
        exts.push(ext(35, b""));
    }
    let sid = [0x33; 32];
    let ch = client_hello(cr, if resume { &sid } else { &[] }, &[suite_id], &exts);
    let mut sh_exts = vec![ext(23, b"")];
    if etm {
        sh_exts.push(ext(22, b""));
    }
    if ticket.is_some() && !resume {
        sh_exts.push(ext(35, b""));
    }
    let mut sh = server_hello_msg(sr, &sid, suite_id, &sh_exts);
    sh[4..6].copy_from_slice(&version.to_be_bytes());
    let (mut cs, mut ss) = Seal12::pair(suite_id, version, master, &cr, &sr, etm);
    let ccs = record(CHANGE_CIPHER_SPEC, version, &[1]);
    let (mut client, mut server) = (ch, Vec::new());
    let req = b"GET /track?oaid=a1b2c3d4-0000-4e5f-8a9b-0c1d2e3f4a5b HTTP/1.1\r\n\r\n";
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    if resume {
        server.extend(record(HANDSHAKE, version, &sh));
        server.extend(&ccs);
        server.extend(ss.seal(HANDSHAKE, version, &handshake(HS_FINISHED, &[1; 12])));
        client.extend(&ccs);
        client.extend(cs.seal(HANDSHAKE, version, &handshake(HS_FINISHED, &[2; 12])));
    } else {
        let flight = [
            sh,
            handshake(11, &[0; 2000]),
            handshake(12, &[0; 300]),
            handshake(14, b""),
        ]
        .concat();
        // The flight split over records at odd places.
        for part in flight.chunks(700) {
            server.extend(record(HANDSHAKE, version, part));
        }
        client.extend(record(
            HANDSHAKE,
            version,
            &handshake(
                HS_CLIENT_KEY_EXCHANGE,
                &[&[0u8, 66][..], &[0x44; 66]].concat(),
            ),
        ));
        client.extend(&ccs);
        client.extend(cs.seal(HANDSHAKE, version, &handshake(HS_FINISHED, &[2; 12])));
        if let Some(t) = ticket {
            let nst = [&[0u8, 0, 1, 0][..], &(t.len() as u16).to_be_bytes(), t].concat();
            server.extend(record(
                HANDSHAKE,
                version,
                &handshake(HS_NEW_SESSION_TICKET, &nst),
            ));
        }
        server.extend(&ccs);
        server.extend(ss.seal(HANDSHAKE, version, &handshake(HS_FINISHED, &[1; 12])));
    }
    // TLS 1.0 stacks split records 1/n-1 against BEAST: an empty-ish first record.
    client.extend(cs.seal(APPLICATION_DATA, version, &req[..1]));
    client.extend(cs.seal(APPLICATION_DATA, version, &req[1..]));
    client.extend(cs.seal(APPLICATION_DATA, version, b""));
    server.extend(ss.seal(APPLICATION_DATA, version, resp));
    server.extend(ss.seal(ALERT, version, &[1, 0]));
    Tls12Conn {
        client,
        server,
        want_c: req.to_vec(),
        want_s: resp.to_vec(),
    }
}

fn run12(
    conn: &Tls12Conn,
    keys: &mut KeyLog,
    chunk: usize,
) -> (Vec<u8>, Vec<u8>, Vec<Anomaly>, TlsDecryptor) {
    // Protocol order: ClientHello, server flight, client's reply, server's reply.
    let ch_end = 5 + usize::from(u16::from_be_bytes([conn.client[3], conn.client[4]]));
    let ccs_at = conn
        .server
        .windows(6)
        .position(|w| w[0] == 20 && w[3..6] == [0, 1, 1])
        .unwrap();
    feed(
        &[
            (true, &conn.client[..ch_end]),
            (false, &conn.server[..ccs_at]),
            (true, &conn.client[ch_end..]),
            (false, &conn.server[ccs_at..]),
        ],
        chunk,
        keys,
    )
}

fn master_line(random: &[u8; 32], master: &[u8]) -> String {
    format!("CLIENT_RANDOM {} {}\n", hex(random), hex(master))
}

#[test]
fn tls12_suites_versions_and_etm() {
    let cases: &[(u16, u16, bool)] = &[
        (0xc02f, 0x0303, false), // ECDHE-RSA-AES128-GCM-SHA256
        (0xc030, 0x0303, false), // ECDHE-RSA-AES256-GCM-SHA384
        (0x009c, 0x0303, false), // RSA-AES128-GCM-SHA256
        (0xcca8, 0x0303, false), // ECDHE-RSA-CHACHA20-POLY1305
        (0xccaa, 0x0303, false), // DHE-RSA-CHACHA20-POLY1305
        (0xc0ac, 0x0303, false), // ECDHE-ECDSA-AES128-CCM
        (0xc0a2, 0x0303, false), // DHE-RSA-AES128-CCM8
        (0xc0af, 0x0303, false), // ECDHE-ECDSA-AES256-CCM8
        (0xc013, 0x0303, false), // ECDHE-RSA-AES128-SHA
        (0xc014, 0x0303, true),  // ECDHE-RSA-AES256-SHA, encrypt-then-MAC
        (0x003c, 0x0303, false), // RSA-AES128-SHA256
        (0x003d, 0x0303, true),  // RSA-AES256-SHA256, encrypt-then-MAC
        (0xc028, 0x0303, false), // ECDHE-RSA-AES256-SHA384
        (0xc024, 0x0303, true),  // ECDHE-ECDSA-AES256-SHA384, encrypt-then-MAC
        (0xc013, 0x0302, false), // TLS 1.1, explicit IV
        (0x002f, 0x0301, false), // TLS 1.0, chained IV
        (0x0035, 0x0301, true),  // TLS 1.0, chained IV, encrypt-then-MAC
    ];
    for &(suite_id, version, etm) in cases {
        let random = [suite_id as u8 ^ version as u8; 32];
        let master = [0x61; 48];
        let conn = tls12_connection(suite_id, version, etm, random, &master, false, None);
        for chunk in [usize::MAX, 1, 11] {
            let mut keys = KeyLog::new();
            keys.add(master_line(&random, &master).as_bytes());
            let (c, s, anomalies, tls) = run12(&conn, &mut keys, chunk);
            let what =
                format!("suite {suite_id:#06x} version {version:#06x} etm {etm} chunk {chunk}");
            assert_eq!(anomalies, [], "{what}");
            assert_eq!(c, conn.want_c, "{what}");
            assert_eq!(s, conn.want_s, "{what}");
            assert_eq!(tls.status(), DecryptStatus::Decrypted, "{what}");
        }
        // The wrong master secret: both Finished records fail, nothing comes out.
        let mut keys = KeyLog::new();
        keys.add(master_line(&random, &[0x62; 48]).as_bytes());
        let (c, s, anomalies, tls) = run12(&conn, &mut keys, usize::MAX);
        assert_eq!(
            (c.len(), s.len(), anomalies.len()),
            (0, 0, 2),
            "{suite_id:#06x}"
        );
        assert_eq!(
            tls.status(),
            DecryptStatus::NotDecrypted(NotDecrypted::AuthenticationFailed)
        );
    }
}

#[test]
fn tls12_resumption_by_session_id_and_ticket_without_their_own_lines() {
    let master = [0x77; 48];
    let first = tls12_connection(
        0xc02f,
        0x0303,
        false,
        [1; 32],
        &master,
        false,
        Some(b"opaque-ticket"),
    );
    let mut keys = KeyLog::new();
    keys.add(master_line(&[1; 32], &master).as_bytes());
    let (c, _, _, _) = run12(&first, &mut keys, usize::MAX);
    assert_eq!(c, first.want_c);
    // Resumed by session id (abbreviated handshake), no CLIENT_RANDOM line for it.
    let by_id = tls12_connection(0xc02f, 0x0303, false, [2; 32], &master, true, None);
    let (c, s, anomalies, tls) = run12(&by_id, &mut keys, 5);
    assert_eq!(
        (c, s, anomalies),
        (by_id.want_c.clone(), by_id.want_s.clone(), vec![])
    );
    assert_eq!(tls.status(), DecryptStatus::Decrypted);
    // Resumed by ticket: the server echoes the client's session id.
    let mut fresh = KeyLog::new();
    fresh.remember_ticket(b"opaque-ticket", &master);
    let by_ticket = tls12_connection(
        0xc030,
        0x0303,
        false,
        [3; 32],
        &master,
        true,
        Some(b"opaque-ticket"),
    );
    let (c, _, _, tls) = run12(&by_ticket, &mut fresh, usize::MAX);
    assert_eq!(c, by_ticket.want_c);
    assert_eq!(tls.status(), DecryptStatus::Decrypted);
    // The ticket learnt from the first connection's NewSessionTicket works the same.
    let (c, _, _, _) = run12(&by_ticket, &mut keys, usize::MAX);
    assert_eq!(c, by_ticket.want_c);
    // Without any memory of the session: no key.
    let (c, _, _, tls) = run12(&by_id, &mut KeyLog::new(), usize::MAX);
    assert!(c.is_empty());
    assert_eq!(
        tls.status(),
        DecryptStatus::NotDecrypted(NotDecrypted::NoKey)
    );
}

#[test]
fn tls12_rsa_premaster_line() {
    // RSA key exchange, no extended master secret: the master secret comes from the
    // pre-master secret of the `RSA` line matching the ClientKeyExchange.
    let random = [9; 32];
    let pms = [3u8; 48];
    let sr = [random[0] ^ 0xff; 32];
    let master = kdf::prf(
        Prf::Tls12(Hash::Sha256),
        &pms,
        b"master secret",
        &[&random[..], &sr[..]].concat(),
        48,
    );
    let mut conn = tls12_connection(0x009c, 0x0303, false, random, &master, false, None);
    // Drop the extended_master_secret extension (type 23) from both hellos by renaming it.
    for stream in [&mut conn.client, &mut conn.server] {
        let at = stream.windows(4).position(|w| w == [0, 23, 0, 0]).unwrap();
        stream[at + 1] = 0x99;
    }
    let mut keys = KeyLog::new();
    keys.add(format!("RSA {} {}\n", hex(&[0x44; 8]), hex(&pms)).as_bytes());
    let (c, s, anomalies, tls) = run12(&conn, &mut keys, 3);
    assert_eq!(anomalies, []);
    assert_eq!((c, s), (conn.want_c.clone(), conn.want_s.clone()));
    assert_eq!(tls.status(), DecryptStatus::Decrypted);
}

#[test]
fn unsupported_suite_and_version() {
    let conn = tls12_connection(0xc02f, 0x0303, false, [5; 32], &[1; 48], false, None);
    let mut server = conn.server.clone();
    // The suite in the ServerHello (after type, length, version, random, session id).
    let at = 5 + 4 + 2 + 32 + 1 + 32;
    server[at..at + 2].copy_from_slice(&[0xc0, 0x50]); // ARIA-128-GCM
    let (_, _, _, tls) = feed(
        &[(true, &conn.client), (false, &server)],
        usize::MAX,
        &mut KeyLog::new(),
    );
    assert_eq!(
        tls.status(),
        DecryptStatus::NotDecrypted(NotDecrypted::UnsupportedSuite(0xc050))
    );
    let mut server = conn.server.clone();
    server[9..11].copy_from_slice(&[3, 0]);
    let (_, _, _, tls) = feed(
        &[(true, &conn.client), (false, &server)],
        usize::MAX,
        &mut KeyLog::new(),
    );
    assert_eq!(
        tls.status(),
        DecryptStatus::NotDecrypted(NotDecrypted::UnsupportedVersion(0x0300))
    );
    // A TLS 1.3 draft-20 ServerHello (no session id, no compression method): its
    // version, not a missing handshake.
    let mut body = vec![0x7f, 0x14];
    body.extend_from_slice(&[7; 32]);
    body.extend_from_slice(&[0x13, 0x03, 0, 8, 0, 51, 0, 4, 0, 0x1d, 0, 0]);
    let mut server = vec![22, 3, 3, 0, body.len() as u8 + 4, 2, 0, 0, body.len() as u8];
    server.extend_from_slice(&body);
    let (_, _, _, tls) = feed(
        &[(true, &conn.client), (false, &server)],
        usize::MAX,
        &mut KeyLog::new(),
    );
    let status = tls.status();
    assert_eq!(
        status,
        DecryptStatus::NotDecrypted(NotDecrypted::UnsupportedVersion(0x7f14))
    );
    let DecryptStatus::NotDecrypted(why) = status else {
        unreachable!()
    };
    assert_eq!(
        why.to_string(),
        "unsupported TLS version 0x7f14 (TLS 1.3 draft)"
    );
}

#[test]
fn oversized_record_is_malformed_and_stops() {
    let (client, server) = rfc8448_streams();
    let mut keys = rfc8448_keylog();
    let mut bad = server.clone();
    // The flight record claims 2^15 bytes.
    bad[95 + 3..95 + 5].copy_from_slice(&[0x80, 0]);
    let ch_len = 5 + unhex(R8448_CH).len();
    let (_, s, anomalies, tls) = feed(
        &[(true, &client[..ch_len]), (false, &bad)],
        usize::MAX,
        &mut keys,
    );
    assert!(s.is_empty());
    assert_eq!(anomalies.len(), 1);
    assert_eq!(anomalies[0].kind, "tls-record-malformed");
    assert_eq!(
        tls.status(),
        DecryptStatus::NotDecrypted(NotDecrypted::LostSync)
    );
}

#[test]
fn records_held_before_the_keys_count_in_the_tables_budget() {
    let (client, server) = rfc8448_streams();
    let ch_len = 5 + unhex(R8448_CH).len();
    for limit in [1 << 20, 50] {
        let budget = MessageBudget::new(limit);
        let mut keys = rfc8448_keylog();
        let mut tls = TlsDecryptor::new().with_budget(&budget);
        let mut out = Vec::new();
        // The client's whole stream first: what follows its ClientHello waits for
        // the ServerHello, in the budget.
        tls.push(true, &client, &mut keys, &mut out);
        // Record fragments are counted, not their 5-byte headers.
        let waiting = client.len() - ch_len;
        if limit > waiting {
            assert!(budget.held() > waiting / 2 && budget.held() < waiting);
        } else {
            assert_eq!(budget.held(), 0, "nothing held once over the budget");
        }
        tls.push(false, &server, &mut keys, &mut out);
        assert_eq!(budget.held(), 0, "replayed or dropped: given back");
        let client_plaintext = out.iter().any(|o| {
            matches!(
                o,
                TlsOutput::Plaintext {
                    from_client: true,
                    ..
                }
            )
        });
        let kinds: Vec<&str> = out
            .iter()
            .filter_map(|o| match o {
                TlsOutput::Anomaly(a) => Some(a.kind.as_str()),
                TlsOutput::Plaintext { .. } => None,
            })
            .collect();
        if limit > waiting {
            assert!(client_plaintext && kinds.is_empty(), "{kinds:?}");
        } else {
            assert!(!client_plaintext);
            assert_eq!(kinds, [message_budget::ANOMALY]);
        }
        drop(tls);
        assert_eq!(budget.held(), 0);
    }
}

#[test]
fn a_record_header_alone_reserves_nothing() {
    let mut keys = KeyLog::default();
    let mut tls = TlsDecryptor::new();
    let mut out = Vec::new();
    // A handshake record claiming 16 KiB, nothing of it sent.
    tls.push(true, &[0x16, 0x03, 0x01, 0x40, 0x00], &mut keys, &mut out);
    assert_eq!(tls.dirs[0].frag.capacity(), 0);
    // A record whose bytes come with its header is reserved whole at once.
    let mut tls = TlsDecryptor::new();
    let mut record = vec![0x16, 0x03, 0x01, 0x04, 0x00];
    record.extend([0u8; 100]);
    tls.push(true, &record, &mut keys, &mut out);
    assert_eq!(tls.dirs[0].frag.capacity(), 1024);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Arbitrary bytes and mutated real connections never panic, and the plaintext
    /// of an intact connection does not depend on where pushes are cut.
    #[test]
    fn hostile_input_never_panics(
        junk in prop::collection::vec(any::<u8>(), 0..600),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let (client, mut server) = rfc8448_streams();
        for (i, b) in flips {
            let at = i.index(server.len());
            server[at] = b;
        }
        let mut keys = rfc8448_keylog();
        let _ = feed(&[(true, &junk), (false, &junk)], 7, &mut keys);
        let _ = feed(&[(true, &client), (false, &junk)], 5, &mut keys);
        let _ = feed(&[(true, &client), (false, &server)], 3, &mut keys);
        let (client, server) = rfc8448_streams();
        let at = cut.index(server.len() + 1);
        let (c, s, _, _) = feed(&[(true, &client), (false, &server[..at]), (false, &server[at..])], usize::MAX, &mut keys);
        prop_assert_eq!(c, (0..50).collect::<Vec<u8>>());
        prop_assert_eq!(s, (0..50).collect::<Vec<u8>>());
    }
}
