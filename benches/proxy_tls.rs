//! What a new intercepted HTTPS connection costs the proxy in cryptography, per
//! rustls crypto provider (ring 0.17, aws-lc-rs): the server's half of a key
//! exchange (`start_and_complete` on the client's share: one key generation and one
//! agreement), an ECDSA P-256 signature (our leaves' key), and whole in-memory TLS 1.3
//! handshakes against [`Minter`]'s configs, timing only the server's calls (full:
//! certificate and signature; resumed: the ticket of a previous connection).
//!
//! Issue 4 measures new connections per second; this decides the provider of the
//! proxy's TLS (see Cargo.toml, rustls). Run: `cargo bench --bench proxy_tls`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, ClientConnection, ServerConnection, SignatureScheme};

use consentry::proxy::ca::{Ca, Minter};

fn providers() -> [(&'static str, CryptoProvider); 2] {
    [
        ("ring", rustls::crypto::ring::default_provider()),
        ("aws-lc-rs", rustls::crypto::aws_lc_rs::default_provider()),
    ]
}

/// Moves TLS bytes between client and server until both are idle; returns the time
/// spent in the server's calls.
fn pump(c: &mut ClientConnection, s: &mut ServerConnection) -> Duration {
    let mut server = Duration::ZERO;
    let mut buf = Vec::with_capacity(4096);
    loop {
        let mut moved = false;
        while c.wants_write() {
            buf.clear();
            c.write_tls(&mut buf).unwrap();
            let t = Instant::now();
            s.read_tls(&mut &buf[..]).unwrap();
            s.process_new_packets().unwrap();
            server += t.elapsed();
            moved = true;
        }
        while s.wants_write() {
            buf.clear();
            let t = Instant::now();
            s.write_tls(&mut buf).unwrap();
            server += t.elapsed();
            c.read_tls(&mut &buf[..]).unwrap();
            c.process_new_packets().unwrap();
            moved = true;
        }
        if !moved {
            return server;
        }
    }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::load_or_create(dir.path()).unwrap();
    for (name, provider) in providers() {
        let provider = Arc::new(provider);
        for kx in provider.kx_groups.iter() {
            let share = kx.start().unwrap().pub_key().to_vec();
            c.bench_function(&format!("kx/{name}/{:?}", kx.name()), |b| {
                b.iter(|| kx.start_and_complete(&share).unwrap())
            });
        }

        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let signing = provider.key_provider.load_private_key(der).unwrap();
        let signer = signing
            .choose_scheme(&[SignatureScheme::ECDSA_NISTP256_SHA256])
            .unwrap();
        c.bench_function(&format!("sign/{name}/p256"), |b| {
            b.iter(|| signer.sign(&[0x42; 130]).unwrap())
        });

        let minter = Minter::new(&ca, provider.clone(), Arc::new(|_| {})).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.cert_der().to_vec().into()).unwrap();
        // The client always uses ring: only the server's time is counted.
        let client =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
        let host = || rustls::pki_types::ServerName::try_from("bench.example").unwrap();
        let handshake = |client: &Arc<ClientConfig>| {
            let mut cc = ClientConnection::new(client.clone(), host()).unwrap();
            let mut sc =
                ServerConnection::new(minter.server_config("bench.example").unwrap()).unwrap();
            let t = pump(&mut cc, &mut sc);
            assert!(!sc.is_handshaking());
            (t, sc.handshake_kind())
        };
        let mut no_resumption = client.clone();
        no_resumption.resumption = rustls::client::Resumption::disabled();
        let no_resumption = Arc::new(no_resumption);
        c.bench_function(&format!("handshake/{name}/full"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (t, kind) = handshake(&no_resumption);
                    assert_eq!(kind, Some(rustls::HandshakeKind::Full));
                    total += t;
                }
                total
            })
        });
        let shared = Arc::new(client.clone());
        c.bench_function(&format!("handshake/{name}/resumed"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (t, kind) = handshake(&shared);
                    if kind == Some(rustls::HandshakeKind::Resumed) {
                        total += t;
                    } else {
                        // The first connection gets the ticket; count a resumed one.
                        let (t, kind) = handshake(&shared);
                        assert_eq!(kind, Some(rustls::HandshakeKind::Resumed));
                        total += t;
                    }
                }
                total
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
