//! Finding the headless browser for tests: Debian's `chromium` (`apt-get install
//! chromium`; `.ci/run` installs it). One policy for every browser test, as for the
//! live-capture tests: a missing browser fails the test and says how to get one, unless
//! `CONSENTRY_SKIP_BROWSER=1` asks to skip it.

use std::path::PathBuf;

/// The browser to use: `$CONSENTRY_CHROMIUM`, else `chromium` on the PATH. `None`
/// (after printing why) when `CONSENTRY_SKIP_BROWSER=1` asks to skip browser tests;
/// panics with instructions when there is no browser and skipping was not asked for.
pub fn chromium() -> Option<PathBuf> {
    if std::env::var_os("CONSENTRY_SKIP_BROWSER").is_some_and(|v| v == "1") {
        eprintln!("skipped: CONSENTRY_SKIP_BROWSER=1");
        return None;
    }
    if let Some(p) = std::env::var_os("CONSENTRY_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("chromium"))
            .find(|p| p.is_file())
    });
    assert!(
        found.is_some(),
        "no `chromium` on the PATH: apt-get install chromium, set CONSENTRY_CHROMIUM, \
         or CONSENTRY_SKIP_BROWSER=1 to skip this test"
    );
    found
}

/// The flags every headless Chromium run of the tests takes: no sandbox (CI runs as
/// root), no GPU, no QUIC, and no background traffic of its own.
pub const HEADLESS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// The base64 SHA-256 of a certificate's SubjectPublicKeyInfo, the form Chromium's
/// `--ignore-certificate-errors-spki-list` takes. `cert` is DER.
pub fn spki_sha256_base64(cert: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version, serial,
    // signature, issuer, validity, subject, subjectPublicKeyInfo, … }, … }
    let (_, cert_body, _) = der_tlv(cert);
    let (_, mut tbs, _) = der_tlv(cert_body);
    let mut field = 0;
    loop {
        let (tag, _, rest) = der_tlv(tbs);
        let whole = &tbs[..tbs.len() - rest.len()];
        // The version is the optional context tag [0]; the SPKI is the 6th field after it.
        if tag != 0xa0 {
            field += 1;
            if field == 6 {
                return base64::engine::general_purpose::STANDARD
                    .encode(sha2::Sha256::digest(whole));
            }
        }
        tbs = rest;
    }
}

/// One DER element at the start of `b`: tag, contents, the bytes after it.
fn der_tlv(b: &[u8]) -> (u8, &[u8], &[u8]) {
    let tag = b[0];
    let (len, head) = match b[1] {
        n if n < 0x80 => (n as usize, 2),
        n => {
            let k = (n & 0x7f) as usize;
            let len = b[2..2 + k].iter().fold(0usize, |a, &x| a << 8 | x as usize);
            (len, 2 + k)
        }
    };
    (tag, &b[head..head + len], &b[head + len..])
}
