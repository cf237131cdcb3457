//! The baseline of issue 4's proxy benchmark: a bare hudsucker MITM proxy that
//! forwards everything untouched (hudsucker's `NoopHandler`), with the same
//! hudsucker/rustls setup as `consentry proxy` (its crypto provider,
//! `proxy::tls_provider`) and nothing of consentry's
//! analysis, so "≥ 75 % of a no-op hudsucker" is measured on the same machine in the
//! same run (`benches/proxy_compare.sh`).
//!
//! - Its CA (ECDSA P-256) is generated at start and written to `--ca-out` (PEM), so
//!   a client can trust it; nothing is read from or kept on disk otherwise.
//! - Leaves are minted as hudsucker's own `RcgenAuthority` does (signed with the CA
//!   key, DNS SAN) and one `ServerConfig` is cached per authority, as there: a client
//!   may resume its TLS session.
//! - Upstream: consentry's connector (`proxy::upstream::connector`: webpki
//!   roots plus `--upstream-ca`, TCP_NODELAY), and its listener (`proxy::listen`,
//!   TCP_NODELAY on client connections): the ones `consentry proxy` uses.
//! - The global allocator is mimalloc, as in the `consentry` binary (`src/main.rs`).
//!
//! ```text
//! cargo run --release --example hudsucker_noop -- --listen 127.0.0.1:9100 \
//!     --upstream-ca upstream.pem --ca-out /tmp/noop-ca.pem
//! ```
//! Prints `listening on ADDR` on standard output once it accepts connections; stops
//! on SIGINT/SIGTERM.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use consentry::proxy::upstream::{self, UpstreamOptions};
use hudsucker::certificate_authority::CertificateAuthority;
use hudsucker::hyper::http::uri::Authority;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, PKCS_ECDSA_P256_SHA256,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;

/// The allocator of `consentry` too: a like-for-like baseline.
#[global_allocator]
static ALLOC: consentry::allocator::Mimalloc = consentry::allocator::Mimalloc;

/// Server configs kept before the cache is emptied (hudsucker's example uses 1 000).
const CACHE: usize = 1_000;

/// hudsucker's `RcgenAuthority` (leaves signed by rcgen on ring), without the `moka` cache (the
/// `rcgen-ca` feature is off in our build).
struct NoopCa {
    issuer: Issuer<'static, KeyPair>,
    key_der: PrivateKeyDer<'static>,
    provider: Arc<CryptoProvider>,
    cache: Mutex<HashMap<Authority, Arc<ServerConfig>>>,
}

impl NoopCa {
    /// A new CA and its certificate, PEM.
    fn generate(provider: Arc<CryptoProvider>) -> anyhow::Result<(NoopCa, String)> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "hudsucker no-op benchmark CA");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key)?;
        let pem = cert.pem();
        let key_der = PrivateKeyDer::from(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let issuer = Issuer::new(params, key);
        Ok((
            NoopCa {
                issuer,
                key_der,
                provider,
                cache: Mutex::new(HashMap::new()),
            },
            pem,
        ))
    }

    fn config(&self, authority: &Authority) -> anyhow::Result<Arc<ServerConfig>> {
        let mut params = CertificateParams::default();
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::seconds(60);
        params.not_after = now + time::Duration::days(365);
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, authority.host());
        params.distinguished_name = dn;
        params
            .subject_alt_names
            .push(SanType::DnsName(authority.host().try_into()?));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let leaf: CertificateDer<'static> =
            params.signed_by(self.issuer.key(), &self.issuer)?.into();
        let mut cfg = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![leaf], self.key_der.clone_key())?;
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        // As `consentry proxy` (ca::Minter): our suite order over the client's.
        cfg.ignore_client_order = true;
        Ok(Arc::new(cfg))
    }
}

impl CertificateAuthority for NoopCa {
    async fn gen_server_config(&self, authority: &Authority) -> Arc<ServerConfig> {
        let cache = |m: &Mutex<HashMap<Authority, Arc<ServerConfig>>>| {
            // A panic elsewhere cannot leave the map invalid.
            m.lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(authority)
                .cloned()
        };
        if let Some(c) = cache(&self.cache) {
            return c;
        }
        // A benchmark tool: a host that cannot be minted for ends the run loudly.
        let cfg = self.config(authority).expect("minting a leaf certificate");
        let mut m = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= CACHE {
            m.clear();
        }
        m.insert(authority.clone(), cfg.clone());
        cfg
    }
}

/// hudsucker's `NoopHandler`, except that an upstream failure is printed (once per
/// failure, off the hot path) so a broken benchmark setup shows why.
#[derive(Clone)]
struct Noop;

impl hudsucker::HttpHandler for Noop {
    async fn handle_error(
        &mut self,
        _ctx: &hudsucker::HttpContext,
        err: hudsucker::hyper_util::client::legacy::Error,
    ) -> hudsucker::hyper::Response<hudsucker::Body> {
        let mut chain = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            chain.push_str(": ");
            chain.push_str(&s.to_string());
            source = s.source();
        }
        eprintln!("upstream error: {chain}");
        let mut r = hudsucker::hyper::Response::new(hudsucker::Body::empty());
        *r.status_mut() = hudsucker::hyper::StatusCode::BAD_GATEWAY;
        r
    }
}

struct Args {
    listen: SocketAddr,
    upstream_ca: Vec<PathBuf>,
    ca_out: Option<PathBuf>,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        listen: "127.0.0.1:9100".parse()?,
        upstream_ca: Vec::new(),
        ca_out: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => a.listen = value()?.parse().context("--listen ADDR:PORT")?,
            "--upstream-ca" => a.upstream_ca.push(value()?.into()),
            "--ca-out" => a.ca_out = Some(value()?.into()),
            _ => anyhow::bail!(
                "usage: hudsucker_noop [--listen ADDR] [--upstream-ca PEM]... [--ca-out PEM]"
            ),
        }
    }
    Ok(a)
}

fn main() -> anyhow::Result<()> {
    let args = args()?;
    // Our proxy's provider (aws-lc-rs, its groups and suite order): the baseline
    // differs from `consentry proxy` by the handler only.
    let provider = consentry::proxy::tls_provider();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (ca, pem) = NoopCa::generate(provider.clone())?;
    if let Some(p) = &args.ca_out {
        std::fs::write(p, &pem).with_context(|| format!("writing {}", p.display()))?;
    }
    let opts = UpstreamOptions {
        extra_ca: args.upstream_ca.clone(),
        danger_accept_invalid_certs: false,
        proxy: None,
    };
    let connector = upstream::connector(&opts, None, provider)?.https();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        // The listener `consentry proxy` uses (TCP_NODELAY inherited by clients).
        let listener = consentry::proxy::listen(args.listen)
            .with_context(|| format!("listening on {}", args.listen))?;
        println!("listening on {}", listener.local_addr()?);
        let proxy = hudsucker::Proxy::builder()
            .with_listener(listener)
            .with_ca(ca)
            .with_http_connector(connector)
            .with_http_handler(Noop)
            .with_graceful_shutdown(async {
                use tokio::signal::unix::{signal, SignalKind};
                if let Ok(mut t) = signal(SignalKind::terminate()) {
                    tokio::select! {
                        _ = t.recv() => {}
                        _ = tokio::signal::ctrl_c() => {}
                    }
                }
            })
            .build()?;
        proxy.start().await?;
        anyhow::Ok(())
    })
}
