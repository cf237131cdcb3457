//! The connection to the real servers: TLS verified against the webpki roots plus
//! `--upstream-ca` certificates, or not at all with
//! `--danger-accept-invalid-upstream-certs` (labs only). TCP_NODELAY is set on every
//! upstream socket: without it a request written in two segments waits for the
//! delayed ACK (~40 ms per new connection, measured in issue 4).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Time allowed to open a TCP connection to a server before the client gets a 502.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How upstream servers are reached and trusted.
#[derive(Debug, Clone, Default)]
pub struct UpstreamOptions {
    /// Extra trusted CA certificates (PEM files), for internal or test servers.
    pub extra_ca: Vec<PathBuf>,
    /// Accept any upstream certificate (`--danger-accept-invalid-upstream-certs`).
    pub danger_accept_invalid_certs: bool,
}

/// The TLS client configuration for upstream connections.
pub fn client_config(
    opts: &UpstreamOptions,
    provider: Arc<CryptoProvider>,
) -> anyhow::Result<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let cfg = if opts.danger_accept_invalid_certs {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for path in &opts.extra_ca {
            for cert in read_pem_certs(path)? {
                roots.add(cert).with_context(|| {
                    format!(
                        "{}: a certificate is not a usable trust anchor",
                        path.display()
                    )
                })?;
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    // No ALPN here: the connector offers h2 and http/1.1 itself.
    Ok(cfg)
}

/// The connector of the core's upstream client, for every upstream request.
pub fn connector(
    opts: &UpstreamOptions,
    provider: Arc<CryptoProvider>,
) -> anyhow::Result<HttpsConnector<HttpConnector>> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    let tls = client_config(opts, provider)?;
    Ok(HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http))
}

/// The largest `--upstream-ca` file read: a whole system bundle is about 200 KiB.
const MAX_PEM_FILE_BYTES: u64 = 16 << 20;

/// Every certificate in a PEM file; none is an error.
pub fn read_pem_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    use rustls::pki_types::pem::PemObject;
    let pem = crate::whole_file::read(path, MAX_PEM_FILE_BYTES)
        .with_context(|| format!("certificate file {}", path.display()))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .map(|c| c.map(CertificateDer::into_owned))
        .collect::<Result<_, _>>()
        .with_context(|| format!("{} is not a PEM certificate file", path.display()))?;
    if certs.is_empty() {
        anyhow::bail!("{} holds no PEM certificate", path.display());
    }
    Ok(certs)
}

/// Accepts every server certificate but still checks the handshake signatures (so
/// the connection is at least bound to the certificate presented).
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    #[test]
    fn extra_ca_is_read_and_bad_files_named() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = p.self_signed(&key).unwrap();
        let good = dir.path().join("ca.pem");
        std::fs::write(&good, cert.pem()).unwrap();
        let opts = UpstreamOptions {
            extra_ca: vec![good],
            ..Default::default()
        };
        assert!(client_config(&opts, ring()).is_ok());
        let bad = dir.path().join("bad.pem");
        std::fs::write(&bad, "hello").unwrap();
        let opts = UpstreamOptions {
            extra_ca: vec![bad],
            ..Default::default()
        };
        let err = format!("{:#}", client_config(&opts, ring()).unwrap_err());
        assert!(err.contains("bad.pem"), "{err}");
    }
}
