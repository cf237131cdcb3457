//! Cipher suites and record protection: what a suite number means, the keys a secret
//! gives, and opening one protected record (RFC 8446 §5.2–5.3 for TLS 1.3; RFC 5246
//! §6.2.3 with RFC 7905 and RFC 7366 for TLS ≤ 1.2).
//!
//! AEADs and HMAC come from ring (hardware AES-GCM); AES-CBC and AES-CCM from
//! RustCrypto `aes` + `cbc` / `ccm`, which ring lacks. Decryption is in place in the record's own buffer. A
//! failed open leaves the buffer unspecified, so callers that try several keys on one
//! record give each trial a copy.

use std::ops::Range;

use aes::{Aes128, Aes128Dec, Aes256, Aes256Dec};
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockDecryptMut, InnerIvInit, KeyInit};
use ccm::aead::generic_array::GenericArray;
use ccm::aead::AeadInPlace;
use ccm::consts::{U12, U16, U8};
use ccm::Ccm;
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hmac;

use super::kdf::{self, Hash, Prf};

/// The bulk cipher of a suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bulk {
    /// AES-GCM with a key of this many bytes.
    AesGcm(usize),
    ChaCha20Poly1305,
    /// AES-CCM with a key of `key` bytes and a tag of `tag` bytes (16, or 8 for `_CCM_8`).
    AesCcm {
        key: usize,
        tag: usize,
    },
    /// AES-CBC with a key of this many bytes (TLS ≤ 1.2, with an HMAC).
    AesCbc(usize),
    /// Camellia-CBC with a key of this many bytes (RFC 5932).
    CamelliaCbc(usize),
    /// No encryption, only the HMAC (the `*_NULL_*` suites).
    Null,
}

/// The record MAC of a TLS ≤ 1.2 non-AEAD suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mac {
    /// AEAD suites: the AEAD tag authenticates.
    Aead,
    Sha1,
    Sha256,
    Sha384,
}

impl Mac {
    fn len(self) -> usize {
        match self {
            Mac::Aead => 0,
            Mac::Sha1 => 20,
            Mac::Sha256 => 32,
            Mac::Sha384 => 48,
        }
    }

    fn algorithm(self) -> Option<hmac::Algorithm> {
        match self {
            Mac::Aead => None,
            Mac::Sha1 => Some(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY),
            Mac::Sha256 => Some(hmac::HMAC_SHA256),
            Mac::Sha384 => Some(hmac::HMAC_SHA384),
        }
    }
}

/// What a cipher suite number means for decryption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Suite {
    pub id: u16,
    pub bulk: Bulk,
    pub mac: Mac,
    /// TLS 1.3: the HKDF hash; TLS 1.2: the PRF hash.
    pub hash: Hash,
    /// A TLS 1.3 suite.
    pub tls13: bool,
    /// RSA key exchange: the pre-master secret may come from an `RSA` key log line.
    pub rsa_kx: bool,
}

/// The suites we decrypt; `None` for the others (CCM, ARIA, Camellia, 3DES, RC4…).
pub(crate) fn suite(id: u16) -> Option<Suite> {
    use Bulk::*;
    let s = |bulk, mac, hash, rsa_kx| {
        Some(Suite {
            id,
            bulk,
            mac,
            hash,
            tls13: false,
            rsa_kx,
        })
    };
    let (h256, h384) = (Hash::Sha256, Hash::Sha384);
    match id {
        0x1301..=0x1305 => Some(Suite {
            id,
            bulk: match id {
                0x1301 => AesGcm(16),
                0x1302 => AesGcm(32),
                0x1303 => ChaCha20Poly1305,
                0x1304 => AesCcm { key: 16, tag: 16 },
                _ => AesCcm { key: 16, tag: 8 },
            },
            mac: Mac::Aead,
            hash: if id == 0x1302 { h384 } else { h256 },
            tls13: true,
            rsa_kx: false,
        }),
        // AES-128-GCM-SHA256: RSA, then DHE/DH/PSK variants, then ECDHE/ECDH.
        0x009c => s(AesGcm(16), Mac::Aead, h256, true),
        0x009e | 0x00a0 | 0x00a2 | 0x00a4 | 0x00a6 | 0x00a8 | 0x00aa | 0x00ac | 0xc02b | 0xc02d
        | 0xc02f | 0xc031 | 0xd001 => s(AesGcm(16), Mac::Aead, h256, false),
        // AES-256-GCM-SHA384.
        0x009d => s(AesGcm(32), Mac::Aead, h384, true),
        0x009f | 0x00a1 | 0x00a3 | 0x00a5 | 0x00a7 | 0x00a9 | 0x00ab | 0x00ad | 0xc02c | 0xc02e
        | 0xc030 | 0xc032 | 0xd002 => s(AesGcm(32), Mac::Aead, h384, false),
        // AES-CCM (RFC 6655, RFC 7251): 16-byte tags, then the _CCM_8 ones.
        0xc09c | 0xc09d => s(ccm_bulk(id), Mac::Aead, h256, true),
        0xc0a0 | 0xc0a1 => s(ccm_bulk(id), Mac::Aead, h256, true),
        0xc09e | 0xc09f | 0xc0a2..=0xc0af => s(ccm_bulk(id), Mac::Aead, h256, false),
        // ChaCha20-Poly1305 (RFC 7905).
        0xcca8..=0xccae => s(ChaCha20Poly1305, Mac::Aead, h256, false),
        // AES-CBC with HMAC-SHA1 (PRF SHA-256 in TLS 1.2).
        0x002f | 0x0035 => s(AesCbc(key_of(id, 0x002f)), Mac::Sha1, h256, true),
        0x0030..=0x0034
        | 0x0036..=0x003a
        | 0x008c
        | 0x008d
        | 0x0090
        | 0x0091
        | 0x0094
        | 0x0095
        | 0xc004
        | 0xc005
        | 0xc009
        | 0xc00a
        | 0xc00e
        | 0xc00f
        | 0xc013
        | 0xc014
        | 0xc018
        | 0xc019
        | 0xc01d..=0xc022
        | 0xc035
        | 0xc036 => s(AesCbc(cbc_sha1_key(id)), Mac::Sha1, h256, false),
        // AES-CBC with HMAC-SHA256.
        0x003c | 0x003d => s(AesCbc(key_of(id, 0x003c)), Mac::Sha256, h256, true),
        0x003e
        | 0x003f
        | 0x0040
        | 0x0067..=0x006d
        | 0x00ae
        | 0x00b2
        | 0x00b6
        | 0xc023
        | 0xc025
        | 0xc027
        | 0xc029
        | 0xc037 => s(AesCbc(cbc_sha256_key(id)), Mac::Sha256, h256, false),
        // AES-CBC with HMAC-SHA384 (PRF SHA-384).
        0x00af | 0x00b3 | 0x00b7 | 0xc024 | 0xc026 | 0xc028 | 0xc02a | 0xc038 => {
            s(AesCbc(32), Mac::Sha384, h384, false)
        }
        // Camellia-CBC (RFC 5932): SHA-1, SHA-256 and SHA-384 MACs.
        0x0041 => s(CamelliaCbc(16), Mac::Sha1, h256, true),
        0x0084 => s(CamelliaCbc(32), Mac::Sha1, h256, true),
        0x0042..=0x0046 => s(CamelliaCbc(16), Mac::Sha1, h256, false),
        0x0085..=0x0089 => s(CamelliaCbc(32), Mac::Sha1, h256, false),
        0x00ba => s(CamelliaCbc(16), Mac::Sha256, h256, true),
        0x00c0 => s(CamelliaCbc(32), Mac::Sha256, h256, true),
        0x00bb..=0x00bf => s(CamelliaCbc(16), Mac::Sha256, h256, false),
        0x00c1..=0x00c5 => s(CamelliaCbc(32), Mac::Sha256, h256, false),
        0xc072 | 0xc074 | 0xc076 | 0xc078 => s(CamelliaCbc(16), Mac::Sha256, h256, false),
        0xc073 | 0xc075 | 0xc077 | 0xc079 => s(CamelliaCbc(32), Mac::Sha384, h384, false),
        // NULL encryption, MAC only.
        0x0002 => s(Null, Mac::Sha1, h256, true),
        0x003b => s(Null, Mac::Sha256, h256, true),
        0x002c..=0x002e | 0xc001 | 0xc006 | 0xc00b | 0xc010 | 0xc015 | 0xc039 => {
            s(Null, Mac::Sha1, h256, false)
        }
        0x00b0 | 0x00b4 | 0x00b8 | 0xc03a => s(Null, Mac::Sha256, h256, false),
        0x00b1 | 0x00b5 | 0x00b9 | 0xc03b => s(Null, Mac::Sha384, h384, false),
        _ => None,
    }
}

/// The CCM suites come in AES-128/AES-256 pairs (even/odd numbers); 0xc0a0–0xc0a3,
/// 0xc0a8–0xc0ab and 0xc0ae–0xc0af have 8-byte tags.
fn ccm_bulk(id: u16) -> Bulk {
    let key = if id.is_multiple_of(2) { 16 } else { 32 };
    let tag = match id {
        0xc0a0..=0xc0a3 | 0xc0a8..=0xc0ab | 0xc0ae | 0xc0af => 8,
        _ => 16,
    };
    Bulk::AesCcm { key, tag }
}

/// 16 for the first suite of an AES-128/AES-256 pair, else 32.
fn key_of(id: u16, aes128: u16) -> usize {
    if id == aes128 {
        16
    } else {
        32
    }
}

/// Key length of the AES-CBC-SHA suites (IANA registry: the AES-256 ones).
fn cbc_sha1_key(id: u16) -> usize {
    match id {
        0x0036..=0x003a
        | 0x008d
        | 0x0091
        | 0x0095
        | 0xc005
        | 0xc00a
        | 0xc00f
        | 0xc014
        | 0xc019
        | 0xc020..=0xc022
        | 0xc036 => 32,
        _ => 16,
    }
}

/// Key length of the AES-CBC-SHA256 suites.
fn cbc_sha256_key(id: u16) -> usize {
    match id {
        0x003d | 0x0068 | 0x0069 | 0x006a | 0x006b | 0x006d => 32,
        _ => 16,
    }
}

/// Where a record's key sits in the TLS 1.3 schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    Early,
    Handshake,
    Application,
    /// TLS ≤ 1.2 keys.
    Legacy,
}

/// Why a record did not open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// Authentication failed (wrong key, corrupted record).
    Auth,
    /// The record cannot be a ciphertext of this cipher (too short, misaligned…).
    Malformed(&'static str),
}

// One per direction, never moved on the hot path: boxing would only add an indirection.
#[allow(clippy::large_enum_variant)]
enum Protection {
    /// TLS 1.3 AEAD: nonce = iv ⊕ seq, AAD = record header, inner content type.
    Tls13 {
        key: AeadKey,
        iv: [u8; 12],
        secret: Vec<u8>,
        suite: Suite,
    },
    /// TLS 1.2 AES-GCM and AES-CCM: 4-byte implicit salt, 8-byte explicit nonce in
    /// the record.
    Explicit12 { key: AeadKey, salt: [u8; 4] },
    /// TLS 1.2 ChaCha20-Poly1305 (RFC 7905): nonce = iv ⊕ seq.
    ChaCha12 { key: AeadKey, iv: [u8; 12] },
    /// AES-CBC or NULL with an HMAC.
    Cbc {
        aes: Option<CbcKey>,
        mac: hmac::Key,
        mac_len: usize,
        /// TLS 1.0: the IV is the last ciphertext block of the previous record.
        chained_iv: Option<[u8; 16]>,
        encrypt_then_mac: bool,
    },
}

#[derive(Clone)]
#[allow(clippy::large_enum_variant)]
enum CbcKey {
    Aes128(Aes128Dec),
    Aes256(Aes256Dec),
    Camellia128(camellia::Camellia128),
    Camellia256(camellia::Camellia256),
}

/// The keys of one direction and its record sequence number.
pub(crate) struct RecordCipher {
    protection: Protection,
    seq: u64,
    pub stage: Stage,
}

impl std::fmt::Debug for RecordCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print keys.
        write!(f, "RecordCipher({:?}, seq {})", self.stage, self.seq)
    }
}

/// An AEAD key: ring's (GCM, ChaCha20-Poly1305) or RustCrypto's CCM.
#[allow(clippy::large_enum_variant)]
enum AeadKey {
    Ring(LessSafeKey),
    Ccm128(Ccm<Aes128, U16, U12>),
    Ccm128Short(Ccm<Aes128, U8, U12>),
    Ccm256(Ccm<Aes256, U16, U12>),
    Ccm256Short(Ccm<Aes256, U8, U12>),
}

impl AeadKey {
    fn tag_len(&self) -> usize {
        match self {
            AeadKey::Ccm128Short(_) | AeadKey::Ccm256Short(_) => 8,
            _ => 16,
        }
    }

    /// Opens `buf` (ciphertext ‖ tag) in place; the plaintext is `buf[..len - tag]`.
    fn open(&self, nonce: [u8; 12], aad: &[u8], buf: &mut [u8]) -> Result<(), OpenError> {
        let Some(split) = buf.len().checked_sub(self.tag_len()) else {
            return Err(OpenError::Malformed("record shorter than its tag"));
        };
        let (data, tag) = buf.split_at_mut(split);
        let n = GenericArray::from_slice(&nonce);
        let ok = match self {
            AeadKey::Ring(key) => {
                return key
                    .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), buf)
                    .map(|_| ())
                    .map_err(|_| OpenError::Auth)
            }
            AeadKey::Ccm128(k) => {
                k.decrypt_in_place_detached(n, aad, data, GenericArray::from_slice(tag))
            }
            AeadKey::Ccm128Short(k) => {
                k.decrypt_in_place_detached(n, aad, data, GenericArray::from_slice(tag))
            }
            AeadKey::Ccm256(k) => {
                k.decrypt_in_place_detached(n, aad, data, GenericArray::from_slice(tag))
            }
            AeadKey::Ccm256Short(k) => {
                k.decrypt_in_place_detached(n, aad, data, GenericArray::from_slice(tag))
            }
        };
        ok.map_err(|_| OpenError::Auth)
    }
}

fn aead_key(bulk: Bulk, key: &[u8]) -> Option<AeadKey> {
    let ring_alg = match bulk {
        Bulk::AesGcm(16) => &aead::AES_128_GCM,
        Bulk::AesGcm(32) => &aead::AES_256_GCM,
        Bulk::ChaCha20Poly1305 => &aead::CHACHA20_POLY1305,
        Bulk::AesCcm { key: 16, tag: 16 } => {
            return KeyInit::new_from_slice(key).ok().map(AeadKey::Ccm128)
        }
        Bulk::AesCcm { key: 16, tag: 8 } => {
            return KeyInit::new_from_slice(key).ok().map(AeadKey::Ccm128Short)
        }
        Bulk::AesCcm { key: 32, tag: 16 } => {
            return KeyInit::new_from_slice(key).ok().map(AeadKey::Ccm256)
        }
        Bulk::AesCcm { key: 32, tag: 8 } => {
            return KeyInit::new_from_slice(key).ok().map(AeadKey::Ccm256Short)
        }
        _ => return None,
    };
    UnboundKey::new(ring_alg, key)
        .ok()
        .map(|k| AeadKey::Ring(LessSafeKey::new(k)))
}

fn seq_nonce(iv: &[u8; 12], seq: u64) -> [u8; 12] {
    let mut n = *iv;
    for (b, s) in n[4..].iter_mut().zip(seq.to_be_bytes()) {
        *b ^= s;
    }
    n
}

impl RecordCipher {
    /// TLS 1.3 keys from a traffic secret (RFC 8446 §7.3); `None` when the secret
    /// does not fit the suite.
    pub(crate) fn tls13(suite: Suite, secret: &[u8], stage: Stage) -> Option<Self> {
        if secret.len() != suite.hash.len() {
            return None;
        }
        let key_len = match suite.bulk {
            Bulk::AesGcm(n) | Bulk::AesCcm { key: n, .. } => n,
            Bulk::ChaCha20Poly1305 => 32,
            _ => return None,
        };
        let key = kdf::expand_label(suite.hash, secret, b"key", b"", key_len);
        let iv = kdf::expand_label(suite.hash, secret, b"iv", b"", 12);
        Some(RecordCipher {
            protection: Protection::Tls13 {
                key: aead_key(suite.bulk, &key)?,
                iv: iv.try_into().ok()?,
                secret: secret.to_vec(),
                suite,
            },
            seq: 0,
            stage,
        })
    }

    /// The keys after a KeyUpdate: the next secret is "traffic upd" of this one.
    pub(crate) fn updated(&self) -> Option<Self> {
        match &self.protection {
            Protection::Tls13 { secret, suite, .. } => {
                let next =
                    kdf::expand_label(suite.hash, secret, b"traffic upd", b"", suite.hash.len());
                RecordCipher::tls13(*suite, &next, self.stage)
            }
            _ => None,
        }
    }

    /// Client and server keys of a TLS ≤ 1.2 connection from its master secret
    /// (RFC 5246 §6.3 key block).
    pub(crate) fn tls12_pair(
        suite: Suite,
        version: u16,
        master: &[u8],
        client_random: &[u8; 32],
        server_random: &[u8; 32],
        encrypt_then_mac: bool,
    ) -> Option<(Self, Self)> {
        let prf = if version >= 0x0303 {
            Prf::Tls12(suite.hash)
        } else {
            Prf::Md5Sha1
        };
        let mac_len = suite.mac.len();
        let (key_len, iv_len) = match suite.bulk {
            Bulk::AesGcm(n) | Bulk::AesCcm { key: n, .. } => (n, 4),
            Bulk::ChaCha20Poly1305 => (32, 12),
            Bulk::AesCbc(n) | Bulk::CamelliaCbc(n) if version <= 0x0301 => (n, 16),
            Bulk::AesCbc(n) | Bulk::CamelliaCbc(n) => (n, 0),
            Bulk::Null => (0, 0),
        };
        let seed = [&server_random[..], &client_random[..]].concat();
        let block = kdf::prf(
            prf,
            master,
            b"key expansion",
            &seed,
            2 * (mac_len + key_len + iv_len),
        );
        // The PRF returns exactly the length asked for, so the pieces below fit.
        let mut rest = &block[..];
        let mut take = |n: usize| {
            let (piece, tail) = rest.split_at(n.min(rest.len()));
            rest = tail;
            piece
        };
        let (c_mac, s_mac) = (take(mac_len), take(mac_len));
        let (c_key, s_key) = (take(key_len), take(key_len));
        let (c_iv, s_iv) = (take(iv_len), take(iv_len));
        let one = |mac: &[u8], key: &[u8], iv: &[u8]| -> Option<RecordCipher> {
            let protection = match suite.bulk {
                Bulk::AesGcm(_) | Bulk::AesCcm { .. } => Protection::Explicit12 {
                    key: aead_key(suite.bulk, key)?,
                    salt: iv.try_into().ok()?,
                },
                Bulk::ChaCha20Poly1305 => Protection::ChaCha12 {
                    key: aead_key(suite.bulk, key)?,
                    iv: iv.try_into().ok()?,
                },
                Bulk::AesCbc(_) | Bulk::CamelliaCbc(_) | Bulk::Null => Protection::Cbc {
                    aes: match suite.bulk {
                        Bulk::AesCbc(16) => {
                            Some(CbcKey::Aes128(Aes128Dec::new_from_slice(key).ok()?))
                        }
                        Bulk::AesCbc(32) => {
                            Some(CbcKey::Aes256(Aes256Dec::new_from_slice(key).ok()?))
                        }
                        Bulk::CamelliaCbc(16) => Some(CbcKey::Camellia128(
                            camellia::Camellia128::new_from_slice(key).ok()?,
                        )),
                        Bulk::CamelliaCbc(32) => Some(CbcKey::Camellia256(
                            camellia::Camellia256::new_from_slice(key).ok()?,
                        )),
                        Bulk::Null => None,
                        _ => return None,
                    },
                    mac: hmac::Key::new(suite.mac.algorithm()?, mac),
                    mac_len,
                    chained_iv: if iv.is_empty() {
                        None
                    } else {
                        Some(iv.try_into().ok()?)
                    },
                    encrypt_then_mac: encrypt_then_mac && suite.bulk != Bulk::Null,
                },
            };
            Some(RecordCipher {
                protection,
                seq: 0,
                stage: Stage::Legacy,
            })
        };
        Some((one(c_mac, c_key, c_iv)?, one(s_mac, s_key, s_iv)?))
    }

    /// Opens one record in place: `header` is its 5-byte header, `buf` its fragment.
    /// Returns the content type and where the plaintext is in `buf`. The sequence
    /// number advances only on success.
    pub(crate) fn open(
        &mut self,
        header: &[u8; 5],
        buf: &mut [u8],
    ) -> Result<(u8, Range<usize>), OpenError> {
        let seq = self.seq;
        let outer_type = header[0];
        // TLS ≤ 1.2 additional data: seq ‖ type ‖ version ‖ plaintext length.
        let aad12 = |len: usize| {
            let mut a = [0u8; 13];
            a[..8].copy_from_slice(&seq.to_be_bytes());
            a[8] = outer_type;
            a[9..11].copy_from_slice(&header[1..3]);
            a[11..13].copy_from_slice(&(len as u16).to_be_bytes());
            a
        };
        let result = match &mut self.protection {
            Protection::Tls13 { key, iv, .. } => {
                key.open(seq_nonce(iv, seq), header, buf)?;
                let plain = &buf[..buf.len() - key.tag_len()];
                // RFC 8446 §5.4: the content type is the last non-zero byte.
                let Some(end) = plain.iter().rposition(|&b| b != 0) else {
                    return Err(OpenError::Malformed("inner plaintext is all padding"));
                };
                Ok((plain[end], 0..end))
            }
            Protection::Explicit12 { key, salt } => {
                if buf.len() < 8 + key.tag_len() {
                    return Err(OpenError::Malformed("record shorter than nonce and tag"));
                }
                let mut nonce = [0u8; 12];
                nonce[..4].copy_from_slice(salt);
                nonce[4..].copy_from_slice(&buf[..8]);
                let len = buf.len() - 8 - key.tag_len();
                key.open(nonce, &aad12(len), &mut buf[8..])?;
                Ok((outer_type, 8..8 + len))
            }
            Protection::ChaCha12 { key, iv } => {
                let Some(len) = buf.len().checked_sub(key.tag_len()) else {
                    return Err(OpenError::Malformed("record shorter than its tag"));
                };
                key.open(seq_nonce(iv, seq), &aad12(len), buf)?;
                Ok((outer_type, 0..len))
            }
            Protection::Cbc {
                aes,
                mac,
                mac_len,
                chained_iv,
                encrypt_then_mac,
            } => {
                let mac_len = *mac_len;
                let check = |range: Range<usize>, buf: &[u8], tag: &[u8]| {
                    let mut ctx = hmac::Context::with_key(mac);
                    ctx.update(&aad12(range.len()));
                    ctx.update(&buf[range]);
                    ctx.sign().as_ref() == tag
                };
                let Some(aes) = aes else {
                    // NULL cipher: plaintext ‖ MAC.
                    let Some(len) = buf.len().checked_sub(mac_len) else {
                        return Err(OpenError::Malformed("record shorter than its MAC"));
                    };
                    if !check(0..len, buf, &buf[len..]) {
                        return Err(OpenError::Auth);
                    }
                    self.seq += 1;
                    return Ok((outer_type, 0..len));
                };
                let explicit = if chained_iv.is_some() { 0 } else { 16 };
                let mut end = buf.len();
                if *encrypt_then_mac {
                    // RFC 7366: MAC over IV ‖ ciphertext, checked before decrypting.
                    let Some(e) = end.checked_sub(mac_len) else {
                        return Err(OpenError::Malformed("record shorter than its MAC"));
                    };
                    end = e;
                    if !check(0..end, buf, &buf[end..]) {
                        return Err(OpenError::Auth);
                    }
                }
                if end < explicit + 16 || !(end - explicit).is_multiple_of(16) {
                    return Err(OpenError::Malformed("CBC ciphertext not whole blocks"));
                }
                let iv: [u8; 16] = match chained_iv {
                    Some(iv) => *iv,
                    // Length checked above: at least 16 bytes of explicit IV.
                    None => buf[..16]
                        .try_into()
                        .map_err(|_| OpenError::Malformed("IV"))?,
                };
                let mut last_block = [0u8; 16];
                last_block.copy_from_slice(&buf[end - 16..end]);
                let body = &mut buf[explicit..end];
                let ok = match aes {
                    CbcKey::Aes128(k) => {
                        cbc::Decryptor::<Aes128Dec>::inner_iv_init(k.clone(), &iv.into())
                            .decrypt_padded_mut::<NoPadding>(body)
                            .is_ok()
                    }
                    CbcKey::Aes256(k) => {
                        cbc::Decryptor::<Aes256Dec>::inner_iv_init(k.clone(), &iv.into())
                            .decrypt_padded_mut::<NoPadding>(body)
                            .is_ok()
                    }
                    CbcKey::Camellia128(k) => {
                        cbc::Decryptor::<camellia::Camellia128>::inner_iv_init(
                            k.clone(),
                            &iv.into(),
                        )
                        .decrypt_padded_mut::<NoPadding>(body)
                        .is_ok()
                    }
                    CbcKey::Camellia256(k) => {
                        cbc::Decryptor::<camellia::Camellia256>::inner_iv_init(
                            k.clone(),
                            &iv.into(),
                        )
                        .decrypt_padded_mut::<NoPadding>(body)
                        .is_ok()
                    }
                };
                if !ok {
                    return Err(OpenError::Malformed("CBC ciphertext not whole blocks"));
                }
                // Padding: the last byte gives its length, every padding byte repeats it.
                let pad = usize::from(buf[end - 1]);
                let overhead = pad + 1 + if *encrypt_then_mac { 0 } else { mac_len };
                if overhead > end - explicit
                    || buf[end - 1 - pad..end]
                        .iter()
                        .any(|&b| usize::from(b) != pad)
                {
                    return Err(OpenError::Auth);
                }
                let plain_end = end - overhead;
                if !*encrypt_then_mac
                    && !check(
                        explicit..plain_end,
                        buf,
                        &buf[plain_end..plain_end + mac_len],
                    )
                {
                    return Err(OpenError::Auth);
                }
                if let Some(iv) = chained_iv {
                    *iv = last_block;
                }
                Ok((outer_type, explicit..plain_end))
            }
        };
        if result.is_ok() {
            self.seq += 1;
        }
        result
    }
}
