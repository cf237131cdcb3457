//! Writes the TLS test corpus (`captures/tls/`, see `tests/tls_corpus/mod.rs`): real
//! rustls connections in every suite and version, run in memory, as pcap and pcapng
//! with their NSS key log, a pcapng with the key log inside (Decryption Secrets Block)
//! and the plaintext twin capture, plus the case file of their synthetic identifiers.
//!
//! `cargo run --example gen_tls_capture [DIR]` (default `captures/tls`). Each run
//! gives new randoms and keys; regenerate the golden findings afterwards with
//! `CONSENTRY_BLESS=1 cargo test --test pcap_tls`.
//!
//! `cargo run --example gen_tls_capture -- --size 600M --out DIR` writes instead the
//! benchmark capture of issue 7 (`tests/tls_corpus/bulk.rs`): `DIR/bulk.pcap` of at
//! least that size (suffix K, M or G: powers of 1000), `DIR/bulk.keylog` and
//! `DIR/consentry.toml`. Put it in /tmp; never commit it.

#[path = "../tests/tls_corpus/mod.rs"]
mod tls_corpus;

use std::path::PathBuf;

const CASE: &str = r#"# Case file of the TLS corpus (examples/gen_tls_capture.rs writes it).
# All identifier values are synthetic.

[case]
id = "tls-corpus-2026-11-28"
title = "Example Shop 4.2: SDK traffic over TLS 1.2 and 1.3 in every suite, with its key log"
timezone = "UTC"

[app]
name = "Example Shop"
package = "com.example.shop"
first_party = ["example-shop.com"]

[[device]]
id = "pixel7"
addresses = ["192.168.50.23"]
[device.identifiers]
advertising_id = "38400000-8cf0-11bd-b23e-10b96e40000d"
android_id = "9774d56d682e549c"
imei = "490154203237518"
oaid = "a1b2c3d4-0000-4e5f-8a9b-0c1d2e3f4a5b"
phone = "+8613800138000"
email = "tester@example.org"

[[consent]]
device = "pixel7"
at = "2026-11-28T10:00:05.500Z"
decision = "refused"
note = "tapped Disagree on the privacy dialog (all purposes)"

[rules]
grace_ms = 1000
frequency_per_minute = 30
"#;

/// `600M` → 600 000 000.
fn parse_size(s: &str) -> Option<u64> {
    let (digits, unit) = match s.as_bytes().last()? {
        b'K' | b'k' => (&s[..s.len() - 1], 1_000),
        b'M' | b'm' => (&s[..s.len() - 1], 1_000_000),
        b'G' | b'g' => (&s[..s.len() - 1], 1_000_000_000),
        _ => (s, 1),
    };
    digits.parse::<u64>().ok()?.checked_mul(unit)
}

fn bulk(size: &str, dir: PathBuf) -> std::io::Result<()> {
    let size = parse_size(size).ok_or_else(|| std::io::Error::other("bad --size"))?;
    std::fs::create_dir_all(&dir)?;
    let file = std::fs::File::create(dir.join("bulk.pcap"))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let (keylog, sum) = tls_corpus::bulk::write_bulk(size, &mut out)?;
    std::io::Write::flush(&mut out)?;
    std::fs::write(dir.join("bulk.keylog"), keylog)?;
    std::fs::write(dir.join("consentry.toml"), CASE)?;
    println!(
        "{}: {} bytes, {} packets, {} connections, {} requests ({} with identifiers)",
        dir.join("bulk.pcap").display(),
        sum.bytes,
        sum.packets,
        sum.connections,
        sum.requests,
        sum.with_identifiers
    );
    Ok(())
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--size") {
        let size = args.get(i + 1).cloned().unwrap_or_default();
        let out = args
            .iter()
            .position(|a| a == "--out")
            .and_then(|j| args.get(j + 1))
            .cloned()
            .unwrap_or_else(|| "/tmp/consentry-bulk".into());
        return bulk(&size, PathBuf::from(out));
    }
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "captures/tls".into()),
    );
    std::fs::create_dir_all(&dir)?;
    let corpus = tls_corpus::generate();
    let keylog = corpus.keylog.as_bytes();
    std::fs::write(dir.join("tls.keylog"), keylog)?;
    std::fs::write(dir.join("tls.pcap"), tls_corpus::write_pcap(&corpus.tls))?;
    std::fs::write(
        dir.join("tls.pcapng"),
        tls_corpus::write_pcapng(&corpus.tls, None),
    )?;
    std::fs::write(
        dir.join("tls-dsb.pcapng"),
        tls_corpus::write_pcapng(&corpus.tls, Some(keylog)),
    )?;
    std::fs::write(
        dir.join("plain.pcap"),
        tls_corpus::write_pcap(&corpus.plain),
    )?;
    std::fs::write(dir.join("consentry.toml"), CASE)?;
    for line in &corpus.negotiated {
        println!("{line}");
    }
    println!(
        "{}: {} TLS packets, {} plaintext packets, {} key log lines",
        dir.display(),
        corpus.tls.len(),
        corpus.plain.len(),
        corpus.keylog.lines().count()
    );
    Ok(())
}
