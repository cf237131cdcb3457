//! Key derivation: the TLS 1.3 HKDF-Expand-Label (RFC 8446 §7.1) and the TLS ≤ 1.2 PRF
//! (RFC 5246 §5, RFC 2246 §5), on ring's HMAC; HMAC-MD5 (TLS 1.0/1.1 PRF half) with
//! the `hmac` and `md-5` crates because ring has no MD5.

// The crate, not ring's module of the same name below.
use ::hmac::digest::KeyInit;
use ::hmac::{Hmac, Mac as _};
use md5::Md5;
use ring::hmac;

/// The hash of a TLS 1.3 suite or a TLS 1.2 PRF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hash {
    Sha256,
    Sha384,
    /// Only for HPKE's HKDF-SHA512 (ECH); no TLS suite uses it.
    Sha512,
}

impl Hash {
    fn hmac(self) -> hmac::Algorithm {
        match self {
            Hash::Sha256 => hmac::HMAC_SHA256,
            Hash::Sha384 => hmac::HMAC_SHA384,
            Hash::Sha512 => hmac::HMAC_SHA512,
        }
    }

    /// Output length in bytes.
    pub(crate) fn len(self) -> usize {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
        }
    }
}

/// HKDF-Extract (RFC 5869 §2.2): HMAC keyed with the salt (an empty salt is as good
/// as hash-length zeros, HMAC pads either to the same key).
pub(crate) fn hkdf_extract(hash: Hash, salt: &[u8], ikm: &[&[u8]]) -> Vec<u8> {
    let key = hmac::Key::new(hash.hmac(), salt);
    let mut ctx = hmac::Context::with_key(&key);
    for part in ikm {
        ctx.update(part);
    }
    ctx.sign().as_ref().to_vec()
}

/// HKDF-Expand (RFC 5869 §2.3); `len` is at most 255 hash lengths (callers ask for
/// keys, IVs and secrets: at most 64 bytes).
pub(crate) fn hkdf_expand(hash: Hash, prk: &[u8], info: &[u8], len: usize) -> Vec<u8> {
    let key = hmac::Key::new(hash.hmac(), prk);
    let mut out = Vec::with_capacity(len + hash.len());
    let mut t: Vec<u8> = Vec::new();
    let mut counter = 1u8;
    while out.len() < len {
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(&t);
        ctx.update(info);
        ctx.update(&[counter]);
        t = ctx.sign().as_ref().to_vec();
        out.extend_from_slice(&t);
        counter = counter.wrapping_add(1);
    }
    out.truncate(len);
    out
}

/// HKDF-Expand-Label(secret, label, context, len) with the "tls13 " prefix.
pub(crate) fn expand_label(
    hash: Hash,
    secret: &[u8],
    label: &[u8],
    context: &[u8],
    len: usize,
) -> Vec<u8> {
    // Labels and contexts are ours (constants and hashes): both fit their u8 lengths.
    let mut info = Vec::with_capacity(4 + 6 + label.len() + context.len());
    info.extend_from_slice(&(len as u16).to_be_bytes());
    info.push((6 + label.len()) as u8);
    info.extend_from_slice(b"tls13 ");
    info.extend_from_slice(label);
    info.push(context.len() as u8);
    info.extend_from_slice(context);
    hkdf_expand(hash, secret, &info, len)
}

/// The PRF of a TLS ≤ 1.2 connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prf {
    /// TLS 1.0 and 1.1: P_MD5 ⊕ P_SHA1 over the two halves of the secret.
    Md5Sha1,
    /// TLS 1.2: P_SHA256, or P_SHA384 for the suites that name SHA-384.
    Tls12(Hash),
}

/// P_hash (RFC 5246 §5) with `mac(parts)` as the keyed HMAC.
fn p_hash(mac: &dyn Fn(&[&[u8]]) -> Vec<u8>, seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut a = mac(&[seed]);
    while out.len() < len {
        out.extend_from_slice(&mac(&[&a, seed]));
        a = mac(&[&a]);
    }
    out.truncate(len);
    out
}

fn ring_mac(alg: hmac::Algorithm, secret: &[u8]) -> impl Fn(&[&[u8]]) -> Vec<u8> {
    let key = hmac::Key::new(alg, secret);
    move |parts: &[&[u8]]| {
        let mut ctx = hmac::Context::with_key(&key);
        for p in parts {
            ctx.update(p);
        }
        ctx.sign().as_ref().to_vec()
    }
}

/// HMAC-MD5 (RFC 2104), for the TLS 1.0/1.1 PRF only.
fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC takes keys of any length.
    let Ok(mut mac) = <Hmac<Md5> as KeyInit>::new_from_slice(key) else {
        return Vec::new();
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().to_vec()
}

/// PRF(secret, label, seed) of `len` bytes.
pub(crate) fn prf(prf: Prf, secret: &[u8], label: &[u8], seed: &[u8], len: usize) -> Vec<u8> {
    let label_seed = [label, seed].concat();
    match prf {
        Prf::Tls12(hash) => p_hash(&ring_mac(hash.hmac(), secret), &label_seed, len),
        Prf::Md5Sha1 => {
            // RFC 2246 §5: S1 and S2 are the halves, sharing a byte when the length is odd.
            let half = secret.len().div_ceil(2);
            let (s1, s2) = (&secret[..half], &secret[secret.len() - half..]);
            let md5 = p_hash(&|parts: &[&[u8]]| hmac_md5(s1, parts), &label_seed, len);
            let sha1 = p_hash(
                &ring_mac(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, s2),
                &label_seed,
                len,
            );
            md5.iter().zip(&sha1).map(|(a, b)| a ^ b).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The TLS 1.2 PRF (SHA-256) vector published on the IETF TLS list
    /// (msg03416) and used by most implementations' tests.
    #[test]
    fn tls12_prf_sha256_vector() {
        let out = prf(
            Prf::Tls12(Hash::Sha256),
            &unhex("9bbe436ba940f017b17652849a71db35"),
            b"test label",
            &unhex("a0ba9f936cda311827a6f796ffd5198c"),
            100,
        );
        assert_eq!(
            out,
            unhex(
                "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a
                 6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab
                 4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff701
                 87347b66"
            )
        );
    }

    /// TLS 1.0 PRF of "secret"/"label"/"seed" (the textbook example, also produced by
    /// OpenSSL's `TLS1-PRF` with MD5-SHA1).
    #[test]
    fn tls10_prf_vector() {
        let out = prf(Prf::Md5Sha1, b"secret", b"label", b"seed", 20);
        assert_eq!(out, unhex("b5baf4722b91851a8816d22ebd8c1d8cc2e94d55"));
    }

    /// RFC 8448 §3: the server handshake traffic key and IV from its secret.
    #[test]
    fn rfc8448_traffic_key() {
        let secret = unhex("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38");
        assert_eq!(
            expand_label(Hash::Sha256, &secret, b"key", b"", 16),
            unhex("3fce516009c21727d0f2e4e86ee403bc")
        );
        assert_eq!(
            expand_label(Hash::Sha256, &secret, b"iv", b"", 12),
            unhex("5d313eb2671276ee13000b30")
        );
    }
}
