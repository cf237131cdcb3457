//! Encrypted Client Hello (RFC 9849): the ClientHelloInner sealed in an outer
//! ClientHello, opened with what a key log's `ECH_SECRET` and `ECH_CONFIG` lines give
//! (draft-ietf-tls-keylogfile §2.3). Pure: bytes in, bytes out.
//!
//! - **HPKE** (RFC 9180 §5.1), base mode, receiver side from the KEM's shared secret
//!   on (the key log gives it, so no private key and no KEM arithmetic is needed; the
//!   KEM's id still enters the key schedule): info is `"tls ech" 00 ECHConfig`, the
//!   key and base nonce come from HKDF with the suite's KDF (SHA-256, -384 or -512),
//!   the AEAD is AES-128-GCM, AES-256-GCM or ChaCha20-Poly1305.
//! - **Open** (RFC 9849 §7.1): the AAD is the outer ClientHello with its payload
//!   zeroed; the nonce is the base nonce XOR the sequence number: 0 for the first
//!   ClientHello, 1 for the second one after a HelloRetryRequest (same context).
//! - The plaintext, an EncodedClientHelloInner, becomes the ClientHelloInner with
//!   [`decode_inner_client_hello`].

use ring::aead;

use super::kdf::{hkdf_expand, hkdf_extract, Hash};
use crate::net::tls::{decode_inner_client_hello, EchOuter};

/// The ECHConfig version this reads (RFC 9849 §4).
const ECH_CONFIG_VERSION: u16 = 0xfe0d;

/// The fields of an ECHConfig the receiver needs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EchConfig<'a> {
    config_id: u8,
    kem_id: u16,
    /// The whole ECHConfig (version, length, contents): HPKE's info ends with it.
    bytes: &'a [u8],
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Reads the start of an ECHConfig (a key log's `ECH_CONFIG`).
fn parse_config(config: &[u8]) -> Result<EchConfig<'_>, String> {
    let version = be16(config, 0).ok_or("ECH_CONFIG truncated")?;
    if version != ECH_CONFIG_VERSION {
        return Err(format!("ECH_CONFIG version 0x{version:04x}"));
    }
    let len = usize::from(be16(config, 2).ok_or("ECH_CONFIG truncated")?);
    let bytes = config.get(..4 + len).ok_or("ECH_CONFIG truncated")?;
    let config_id = *bytes.get(4).ok_or("ECH_CONFIG truncated")?;
    let kem_id = be16(bytes, 5).ok_or("ECH_CONFIG truncated")?;
    Ok(EchConfig {
        config_id,
        kem_id,
        bytes,
    })
}

/// HPKE's KDF by id (RFC 9180 §7.2).
fn kdf(id: u16) -> Option<Hash> {
    match id {
        1 => Some(Hash::Sha256),
        2 => Some(Hash::Sha384),
        3 => Some(Hash::Sha512),
        _ => None,
    }
}

/// HPKE's AEAD by id (RFC 9180 §7.3); the export-only id 0xffff seals nothing.
fn aead_algorithm(id: u16) -> Option<&'static aead::Algorithm> {
    match id {
        1 => Some(&aead::AES_128_GCM),
        2 => Some(&aead::AES_256_GCM),
        3 => Some(&aead::CHACHA20_POLY1305),
        _ => None,
    }
}

/// The HPKE context's key and base nonce (RFC 9180 §5.1, base mode, no PSK).
struct KeySchedule {
    suite_id: [u8; 10],
    hash: Hash,
}

impl KeySchedule {
    fn labeled_extract(&self, salt: &[u8], label: &[u8], ikm: &[u8]) -> Vec<u8> {
        hkdf_extract(self.hash, salt, &[b"HPKE-v1", &self.suite_id, label, ikm])
    }

    fn labeled_expand(&self, prk: &[u8], label: &[u8], info: &[u8], len: usize) -> Vec<u8> {
        // `len` is a key or nonce length: it fits the two bytes.
        let mut labeled = Vec::with_capacity(2 + 7 + 10 + label.len() + info.len());
        labeled.extend_from_slice(&(len as u16).to_be_bytes());
        labeled.extend_from_slice(b"HPKE-v1");
        labeled.extend_from_slice(&self.suite_id);
        labeled.extend_from_slice(label);
        labeled.extend_from_slice(info);
        hkdf_expand(self.hash, prk, &labeled, len)
    }

    /// (key, base nonce) for `shared_secret` and `info`.
    fn derive(&self, shared_secret: &[u8], info: &[u8], key_len: usize) -> (Vec<u8>, Vec<u8>) {
        let psk_id_hash = self.labeled_extract(b"", b"psk_id_hash", b"");
        let info_hash = self.labeled_extract(b"", b"info_hash", info);
        let mut context = vec![0u8]; // mode_base
        context.extend_from_slice(&psk_id_hash);
        context.extend_from_slice(&info_hash);
        let secret = self.labeled_extract(shared_secret, b"secret", b"");
        let key = self.labeled_expand(&secret, b"key", &context, key_len);
        let nonce = self.labeled_expand(&secret, b"base_nonce", &context, aead::NONCE_LEN);
        (key, nonce)
    }
}

/// The ClientHelloInner body sealed in the outer ClientHello `outer_body` (its
/// handshake body, without the 4-byte header) whose `encrypted_client_hello` is `ech`,
/// opened with the logged `shared_secret` and `config`; `seq` is 0 for the first
/// ClientHello of the connection and 1 for the second (after a HelloRetryRequest).
pub(super) fn open_inner(
    outer_body: &[u8],
    ech: &EchOuter,
    shared_secret: &[u8],
    config: &[u8],
    seq: u64,
) -> Result<Vec<u8>, String> {
    let config = parse_config(config)?;
    if config.config_id != ech.config_id {
        return Err(format!(
            "ECH_CONFIG has config id {}, the ClientHello {}",
            config.config_id, ech.config_id
        ));
    }
    let hash = kdf(ech.kdf).ok_or_else(|| format!("HPKE KDF {} not supported", ech.kdf))?;
    let algorithm =
        aead_algorithm(ech.aead).ok_or_else(|| format!("HPKE AEAD {} not supported", ech.aead))?;
    let mut suite_id = *b"HPKE\0\0\0\0\0\0";
    suite_id[4..6].copy_from_slice(&config.kem_id.to_be_bytes());
    suite_id[6..8].copy_from_slice(&ech.kdf.to_be_bytes());
    suite_id[8..10].copy_from_slice(&ech.aead.to_be_bytes());
    let schedule = KeySchedule { suite_id, hash };

    let mut info = b"tls ech\0".to_vec();
    info.extend_from_slice(config.bytes);
    let (key, base_nonce) = schedule.derive(shared_secret, &info, algorithm.key_len());
    let mut nonce = [0u8; aead::NONCE_LEN];
    nonce.copy_from_slice(&base_nonce);
    for (n, s) in nonce[aead::NONCE_LEN - 8..]
        .iter_mut()
        .zip(seq.to_be_bytes())
    {
        *n ^= s;
    }

    let end = ech.payload_at + ech.payload_len;
    let (Some(payload), Some(zeroed)) =
        (outer_body.get(ech.payload_at..end), outer_body.get(end..))
    else {
        return Err("ECH payload outside its ClientHello".into());
    };
    let mut aad = Vec::with_capacity(outer_body.len());
    aad.extend_from_slice(&outer_body[..ech.payload_at]);
    aad.resize(end, 0);
    aad.extend_from_slice(zeroed);

    let key = aead::UnboundKey::new(algorithm, &key)
        .map(aead::LessSafeKey::new)
        .map_err(|_| "HPKE key of the wrong length")?;
    let mut sealed = payload.to_vec();
    let encoded = key
        .open_in_place(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(&aad),
            &mut sealed,
        )
        .map_err(|_| "the ECH payload did not open with the logged ECH_SECRET".to_string())?;
    decode_inner_client_hello(encoded, outer_body)
}

/// ECH offers sealed as a client seals them, for tests here and in the flow table.
#[cfg(test)]
pub(crate) mod test_seal {
    use super::*;

    /// Bytes written as hex digits, spaces allowed.
    pub(crate) fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// An ECHConfig: id 0x2a, DHKEM(X25519), one suite (HKDF-SHA256, AES-128-GCM).
    pub(crate) fn config() -> Vec<u8> {
        let mut c = hex("fe0d 0000 2a 0020 0020");
        c.extend_from_slice(&[0x42; 32]);
        c.extend_from_slice(&hex("0004 0001 0001 00 0e"));
        c.extend_from_slice(b"public.example");
        c.extend_from_slice(&[0, 0]);
        let len = (c.len() - 4) as u16;
        c[2..4].copy_from_slice(&len.to_be_bytes());
        c
    }

    /// An outer ClientHello whose ECH payload seals `encoded` for `config()` with
    /// `shared_secret` at sequence number `seq`, as a client does (RFC 9849 §6.1).
    pub(crate) fn sealed(encoded: &[u8], shared_secret: &[u8], seq: u64) -> (Vec<u8>, EchOuter) {
        use crate::net::tls::test_hellos::{ech_outer, hello_body, sni};
        let placeholder = vec![0; encoded.len() + 16];
        let mut body = hello_body(
            1,
            &[7; 32],
            &[
                (0, sni("public.example")),
                (0xfe0d, ech_outer(0x2a, &[9; 32], &placeholder)),
            ],
        );
        let Some(crate::net::tls::Ech::Outer(offer)) =
            crate::net::tls::parse_client_hello(&body).unwrap().ech
        else {
            panic!("no ECH")
        };
        let schedule = KeySchedule {
            suite_id: *b"HPKE\x00\x20\x00\x01\x00\x01",
            hash: Hash::Sha256,
        };
        let mut info = b"tls ech\0".to_vec();
        info.extend_from_slice(&config());
        let (key, base) = schedule.derive(shared_secret, &info, 16);
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&base);
        nonce[11] ^= seq as u8;
        let key = aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_128_GCM, &key).unwrap());
        let mut payload = encoded.to_vec();
        // The AAD is the body with the payload still zero.
        let aad = body.clone();
        key.seal_in_place_append_tag(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(&aad),
            &mut payload,
        )
        .unwrap();
        body[offer.payload_at..offer.payload_at + offer.payload_len].copy_from_slice(&payload);
        (body, offer)
    }
}

#[cfg(test)]
mod tests {
    use super::test_seal::{config, hex, sealed};
    use super::*;

    /// RFC 9180 appendix A.1.1 (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM,
    /// base mode): the key schedule from the shared secret gives the published key and
    /// base nonce.
    #[test]
    fn key_schedule_matches_rfc_9180_a_1_1() {
        let schedule = KeySchedule {
            suite_id: *b"HPKE\x00\x20\x00\x01\x00\x01",
            hash: Hash::Sha256,
        };
        let shared_secret = hex("fe0e18c9f024ce43799ae393c7e8fe8fce9d218875e8227b0187c04e7d2ea1fc");
        let info = hex("4f6465206f6e2061204772656369616e2055726e");
        let (key, nonce) = schedule.derive(&shared_secret, &info, 16);
        assert_eq!(key, hex("4531685d41d65f03dc48f6b8302c05b0"));
        assert_eq!(nonce, hex("56d890e5accaaf011cff4b7d"));
    }

    /// RFC 9180 appendix A.2.1 (ChaCha20-Poly1305): same check with a 32-byte key.
    #[test]
    fn key_schedule_matches_rfc_9180_a_2_1() {
        let schedule = KeySchedule {
            suite_id: *b"HPKE\x00\x20\x00\x01\x00\x03",
            hash: Hash::Sha256,
        };
        let shared_secret = hex("0bbe78490412b4bbea4812666f7916932b828bba79942424abb65244930d69a7");
        let info = hex("4f6465206f6e2061204772656369616e2055726e");
        let (key, nonce) = schedule.derive(&shared_secret, &info, 32);
        assert_eq!(
            key,
            hex("ad2744de8e17f4ebba575b3f5f5a8fa1f69c2a07f6e7500bc60ca6e3e3ec1c91")
        );
        assert_eq!(nonce, hex("5c4d98150661b848853b547f"));
    }

    #[test]
    fn a_sealed_inner_hello_opens_with_its_secret_config_and_sequence_number() {
        use crate::net::tls::test_hellos::{hello_body, sni};
        let mut encoded = hello_body(2, &[], &[(0, sni("tracker.example")), (0xfe0d, vec![1])]);
        encoded.extend_from_slice(&[0; 7]);
        let secret = [5u8; 32];
        for seq in [0, 1] {
            let (outer, offer) = sealed(&encoded, &secret, seq);
            let inner = open_inner(&outer, &offer, &secret, &config(), seq).unwrap();
            let h = crate::net::tls::parse_client_hello(&inner).unwrap();
            assert_eq!(h.sni.as_deref(), Some("tracker.example"));
            assert_eq!((h.random, h.session_id), ([2; 32], vec![7; 32]));

            // Another sequence number, secret, config or outer hello: nothing opens.
            let err = open_inner(&outer, &offer, &secret, &config(), seq + 1).unwrap_err();
            assert!(err.contains("did not open"), "{err}");
            assert!(open_inner(&outer, &offer, &[6; 32], &config(), seq).is_err());
            let mut other = config();
            other[4] = 0x2b;
            let err = open_inner(&outer, &offer, &secret, &other, seq).unwrap_err();
            assert!(err.contains("config id"), "{err}");
            let mut tampered = outer.clone();
            tampered[60] ^= 1;
            assert!(open_inner(&tampered, &offer, &secret, &config(), seq).is_err());
        }
    }

    #[test]
    fn configs_that_cannot_be_read_are_errors() {
        assert!(parse_config(&[]).is_err());
        assert!(parse_config(&hex("fe0c 0003 2a0020")).is_err(), "version");
        assert!(parse_config(&hex("fe0d 0009 2a0020")).is_err(), "truncated");
        let bytes = hex("fe0d 0003 2a0020 ff");
        let c = parse_config(&bytes).unwrap();
        assert_eq!((c.config_id, c.kem_id, c.bytes.len()), (0x2a, 0x20, 7));
    }
}
