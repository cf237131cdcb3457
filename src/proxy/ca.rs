//! The proxy's certificate authority: a CA created once per user (or per `--ca-dir`)
//! and the leaf certificates minted from it for every intercepted host.
//!
//! Files: `consentry-ca.pem` (certificate) and `consentry-ca-key.pem` (PKCS#8 key),
//! both created mode 0600 in the CA directory. The CA is ECDSA P-256, valid 10 years.
//!
//! Leaves: one ECDSA P-256 key per proxy run (not the CA key: a leaked leaf key must
//! not sign certificates) shared by all leaves, so minting is one signature. A leaf
//! names its host as a DNS SAN, or as an IP SAN when the host is an address (a
//! CONNECT to a bare IP sends no SNI; strict clients reject a DNS SAN holding an IP).
//! Leaves are cached per host ([`LEAF_CACHE`] entries, the cache is emptied when full:
//! re-minting is cheap, a growing map is not). The proxy core asks for a `ServerConfig`
//! per handshake; each gets its own config (a clone of one template, cheaper than a
//! builder) around the cached key so the handshake's outcome can be observed (see
//! [`HandshakeWatch`]).
//!
//! Resumption: the configs share one session store ([`SESSION_CACHE`] slots, O(1)
//! per operation, see [`SessionStore`]), so a client's next connection resumes its TLS
//! session instead of a full handshake (no signature, no certificate chain; measured
//! in issue 4's new-connection benchmark). Each handshake issues two TLS 1.3 tickets,
//! so clients that open connections in parallel keep some in stock. A client that
//! resumes our session accepted our certificate before, so a resumption counts as a
//! completed handshake for the pinning detection.
//!
//! TLS parameters: the provider is the proxy's ([`crate::proxy::tls_provider`]), and
//! its cipher suite order is applied over the client's (SHA-256 suites first: cheaper
//! key schedule).

use std::collections::HashMap;
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, PKCS_ECDSA_P256_SHA256,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ResolvesServerCert, StoresServerSessions};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

/// File name of the CA certificate in the CA directory.
pub const CA_CERT_FILE: &str = "consentry-ca.pem";
/// File name of the CA private key in the CA directory.
pub const CA_KEY_FILE: &str = "consentry-ca-key.pem";
/// The largest CA certificate or key file read (ours are under 1 KiB).
const MAX_CA_FILE_BYTES: u64 = 1 << 20;
/// Leaf certificates kept per run before the cache is emptied.
pub const LEAF_CACHE: usize = 10_000;
/// TLS sessions (TLS 1.3 tickets, TLS 1.2 session ids) kept for client resumption: a
/// session stays until this many more were stored. About 250 bytes each.
pub const SESSION_CACHE: usize = 8_192;
/// Leaf validity. Short: leaves are re-minted every run anyway; some clients reject
/// leaves valid longer than 398 days.
const LEAF_DAYS: i64 = 300;
/// Leaves start an hour in the past, for test devices whose clock runs behind.
const LEAF_BACKDATE_SECS: i64 = 3600;

/// The CA directory when `--ca-dir` is not given: `$XDG_DATA_HOME/consentry`, else
/// `~/.local/share/consentry`.
pub fn default_dir() -> anyhow::Result<PathBuf> {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("consentry"));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .context("neither XDG_DATA_HOME nor HOME is set: give --ca-dir")?;
    Ok(PathBuf::from(home).join(".local/share/consentry"))
}

/// A loaded (or just created) CA.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert_der: CertificateDer<'static>,
    cert_pem: String,
    /// Where it was loaded from.
    pub dir: PathBuf,
    /// True when this call created it.
    pub created: bool,
}

impl Ca {
    /// Loads the CA in `dir`, creating it (and `dir`, mode 0700) on first use.
    pub fn load_or_create(dir: &Path) -> anyhow::Result<Ca> {
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        if cert_path.exists() || key_path.exists() {
            return Self::load(dir);
        }
        create_dir_private(dir)?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).context("generating CA key")?;
        let cert = ca_params()
            .self_signed(&key)
            .context("signing the CA certificate")?;
        crate::store::write_new(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
        crate::store::write_new(&cert_path, cert.pem().as_bytes(), 0o600)?;
        let mut ca = Self::load(dir)?;
        ca.created = true;
        Ok(ca)
    }

    /// Loads the CA in `dir`; both files must be there.
    pub fn load(dir: &Path) -> anyhow::Result<Ca> {
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        let cert_pem = crate::whole_file::read_text(&cert_path, MAX_CA_FILE_BYTES)
            .with_context(|| format!("CA certificate {}", cert_path.display()))?;
        let key_pem = crate::whole_file::read_text(&key_path, MAX_CA_FILE_BYTES)
            .with_context(|| format!("CA key {}", key_path.display()))?;
        let key = KeyPair::from_pem(&key_pem)
            .with_context(|| format!("CA key {} is not a PEM private key", key_path.display()))?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key).with_context(|| {
            format!(
                "CA certificate {} does not parse or does not match {}",
                cert_path.display(),
                key_path.display()
            )
        })?;
        let cert_der = pem_certificate(&cert_pem)
            .with_context(|| format!("no certificate in {}", cert_path.display()))?;
        Ok(Ca {
            issuer,
            cert_der,
            cert_pem,
            dir: dir.to_path_buf(),
            created: false,
        })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// SHA-256 of the DER certificate, colon-separated upper-case hex (as browsers show it).
    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        sha2::Sha256::digest(self.cert_der.as_ref())
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }
}

fn create_dir_private(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating CA directory {}", dir.display()))
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "consentry interception CA");
    dn.push(DnType::OrganizationName, "consentry (test lab)");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(3650);
    params
}

/// The first certificate of a PEM text, DER.
fn pem_certificate(pem: &str) -> Option<CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .and_then(Result::ok)
}

/// Mints leaf certificates for hosts and hands the core a `ServerConfig` per handshake.
pub struct Minter {
    issuer: Issuer<'static, KeyPair>,
    leaf_key: KeyPair,
    signing_key: Arc<dyn rustls::sign::SigningKey>,
    ca_der: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
    cache: Mutex<HashMap<String, Arc<CertifiedKey>>>,
    watch: Arc<dyn Fn(HandshakeOutcome) + Send + Sync>,
    /// What every handshake's config is cloned from (protocols, ALPN, tickets).
    template: ServerConfig,
    /// Sessions of every intercepted handshake, for resumption.
    sessions: Arc<dyn StoresServerSessions>,
}

/// How an intercepted TLS handshake with a client ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeOutcome {
    /// The host the leaf was minted for.
    pub host: String,
    /// False when the client went away before finishing the handshake: it did not
    /// accept our certificate (certificate pinning, or the CA is not installed).
    pub completed: bool,
}

impl Minter {
    /// A minter issuing from `ca`; `watch` hears how every handshake ended.
    pub fn new(
        ca: &Ca,
        provider: Arc<CryptoProvider>,
        watch: Arc<dyn Fn(HandshakeOutcome) + Send + Sync>,
    ) -> anyhow::Result<Minter> {
        let leaf_key =
            KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).context("generating the leaf key")?;
        let der = PrivateKeyDer::from(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let signing_key = provider
            .key_provider
            .load_private_key(der)
            .context("loading the leaf key into rustls")?;
        // Issuer is not Clone; re-reading it from the CA's own PEM is exact.
        let ca_key =
            KeyPair::from_pem(&ca.issuer.key().serialize_pem()).context("copying the CA key")?;
        let issuer =
            Issuer::from_ca_cert_pem(&ca.cert_pem, ca_key).context("copying the CA certificate")?;
        let mut template = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(NoCert));
        // Offer h2 first: the client's ALPN list decides what is spoken.
        template.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        // Issuing the first ticket is the signal that the handshake completed. Two
        // (rustls' and OpenSSL's default), not one: a client that opens connections in
        // parallel uses up a ticket per connection, so a spare one keeps its stock up.
        // Not more: a rustls client keeps 8 per server, bursts of new connections run
        // past any stock of 8, and each ticket costs about 7 µs (README, issue 4: 8 per
        // handshake cut full handshakes at 50 connections by about a quarter and cost
        // more CPU than the signatures they saved).
        template.send_tls13_tickets = 2;
        // Our suite order (the provider's: SHA-256 suites first, see
        // `proxy::tls_provider`) over the client's: rustls clients list AES-256-GCM
        // first, whose SHA-384 key schedule costs the proxy more than the rest.
        template.ignore_client_order = true;
        Ok(Minter {
            issuer,
            leaf_key,
            signing_key,
            ca_der: ca.cert_der.clone(),
            provider,
            cache: Mutex::new(HashMap::new()),
            watch,
            template,
            sessions: Arc::new(SessionStore::new(SESSION_CACHE)),
        })
    }

    /// The leaf for `host` (name or address, no port), minted on first use.
    pub fn leaf(&self, host: &str) -> anyhow::Result<Arc<CertifiedKey>> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = host.to_ascii_lowercase();
        if let Some(k) = lock(&self.cache).get(&host) {
            return Ok(k.clone());
        }
        let der = self.mint(&host)?;
        let key = Arc::new(CertifiedKey::new(
            vec![der, self.ca_der.clone()],
            self.signing_key.clone(),
        ));
        let mut cache = lock(&self.cache);
        if cache.len() >= LEAF_CACHE {
            cache.clear();
        }
        cache.insert(host, key.clone());
        Ok(key)
    }

    fn mint(&self, host: &str) -> anyhow::Result<CertificateDer<'static>> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, host);
        params.distinguished_name = dn;
        params.subject_alt_names = vec![match host.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(
                host.try_into()
                    .with_context(|| format!("{host:?} is not a DNS name"))?,
            ),
        }];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::seconds(LEAF_BACKDATE_SECS);
        params.not_after = now + time::Duration::days(LEAF_DAYS);
        params.serial_number = Some(random_serial().into());
        let cert = params
            .signed_by(&self.leaf_key, &self.issuer)
            .with_context(|| format!("minting a certificate for {host}"))?;
        Ok(cert.der().clone())
    }

    /// A server config presenting the leaf for `host`, or `None` if it cannot be minted.
    pub fn server_config(&self, host: &str) -> Option<Arc<ServerConfig>> {
        let host = crate::proxy::handler::norm_host(host);
        let host = host.as_str();
        let key = self.leaf(host).ok()?;
        let mut cfg = self.template.clone();
        cfg.cert_resolver = Arc::new(Fixed(key));
        cfg.session_storage = Arc::new(HandshakeWatch {
            host: host.to_string(),
            completed: std::sync::atomic::AtomicBool::new(false),
            watch: self.watch.clone(),
            sessions: self.sessions.clone(),
        });
        Some(Arc::new(cfg))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the cache lock leaves a map that is still valid.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The TLS sessions of every intercepted handshake, for resumption: a session stays
/// until `cap` more have been put after it (or until it is taken, or put again), in a
/// ring of `cap` slots that each put writes in turn, evicting what the slot held
/// (rustls' `ServerSessionMemoryCache` finds the entry a resumption takes by a linear
/// scan of its eviction queue: 2.6 % of the CPU of new connections in issue 4's
/// profile). Keys are held inline ([`SessionKey`]), so a put or an eviction touches
/// the slot and the map's bucket, not heap copies of the key (the queue of keys this
/// replaced cost 1.2–2.2 % of the CPU per new connection in cache misses, issue 4).
/// A slot emptied by a take stays empty until the ring comes round to it: with two
/// tickets per handshake and one taken per resumption, some two thirds of the slots
/// hold a session.
#[derive(Debug)]
struct SessionStore {
    cap: usize,
    inner: Mutex<Sessions>,
}

/// The longest key stored: rustls' session ids and TLS 1.3 ticket ids are 32 random
/// bytes. A longer key (only a client's lookup can have one) is never found.
const SESSION_KEY: usize = 32;

/// A session key held inline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SessionKey {
    len: u8,
    bytes: [u8; SESSION_KEY],
}

impl SessionKey {
    fn new(key: &[u8]) -> Option<SessionKey> {
        let mut bytes = [0u8; SESSION_KEY];
        bytes.get_mut(..key.len())?.copy_from_slice(key);
        Some(SessionKey {
            len: u8::try_from(key.len()).ok()?,
            bytes,
        })
    }
}

impl std::hash::Hash for SessionKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Padding zeros are part of the key; `len` tells "a" from "a\0".
        state.write_u8(self.len);
        state.write(&self.bytes);
    }
}

#[derive(Debug, Default)]
struct Sessions {
    /// Key → its slot in `ring`. Unkeyed FxHash is safe here: every stored key is
    /// one rustls drew at random, so the table fills evenly whatever clients send,
    /// and a client's chosen key costs one lookup in that table.
    map: rustc_hash::FxHashMap<SessionKey, u32>,
    /// The sessions of the last `cap` puts, in put order from `next` on; a slot whose
    /// session was taken (or put again) holds `None`.
    ring: Vec<(SessionKey, Option<Vec<u8>>)>,
    /// The slot the next put writes (grown into until the ring holds `cap`).
    next: usize,
}

impl SessionStore {
    fn new(cap: usize) -> SessionStore {
        SessionStore {
            // Slot numbers are u32.
            cap: cap.clamp(1, u32::MAX as usize),
            inner: Mutex::new(Sessions::default()),
        }
    }
}

impl StoresServerSessions for SessionStore {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        let Some(key) = SessionKey::new(&key) else {
            return false;
        };
        let mut guard = lock(&self.inner);
        let s = &mut *guard;
        if let Some(old) = s.map.remove(&key) {
            if let Some(slot) = s.ring.get_mut(old as usize) {
                slot.1 = None;
            }
        }
        let at = s.next;
        s.next = (at + 1) % self.cap;
        match s.ring.get_mut(at) {
            Some(slot) => {
                if slot.1.is_some() {
                    s.map.remove(&slot.0);
                }
                // The evicted value is dropped after the lock (below).
                let evicted = std::mem::replace(slot, (key, Some(value)));
                s.map.insert(key, at as u32);
                drop(guard);
                drop(evicted);
                return true;
            }
            None => s.ring.push((key, Some(value))),
        }
        s.map.insert(key, at as u32);
        true
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let key = SessionKey::new(key)?;
        let s = lock(&self.inner);
        let at = *s.map.get(&key)?;
        s.ring.get(at as usize)?.1.clone()
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        let key = SessionKey::new(key)?;
        let mut s = lock(&self.inner);
        let at = s.map.remove(&key)?;
        s.ring.get_mut(at as usize)?.1.take()
    }

    fn can_cache(&self) -> bool {
        true
    }
}

fn random_serial() -> u64 {
    let mut b = [0u8; 8];
    // A serial from the system RNG; on failure a time-based one is still unique enough
    // for leaves of one run.
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).is_err() {
        return crate::timestamp::Timestamp::now().micros().unsigned_abs();
    }
    u64::from_be_bytes(b) >> 1
}

#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

/// No certificate: the template's resolver (always replaced) and the last fallback's.
#[derive(Debug)]
struct NoCert;

impl ResolvesServerCert for NoCert {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        None
    }
}

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// Observes one handshake through the session store of its own `ServerConfig`:
/// rustls stores a session (to issue a TLS 1.3 ticket, or a TLS 1.2 session id) only
/// after the client's Finished message verified, that is once the client accepted
/// our certificate; and it looks one up only for a client resuming a session it got
/// from us, so one that accepted our certificate before. Either completes the
/// handshake; the config is dropped with the connection, and dropped with neither
/// means the client gave up during the handshake. Sessions themselves go to the
/// minter's shared cache.
struct HandshakeWatch {
    host: String,
    completed: std::sync::atomic::AtomicBool,
    watch: Arc<dyn Fn(HandshakeOutcome) + Send + Sync>,
    sessions: Arc<dyn StoresServerSessions>,
}

impl HandshakeWatch {
    fn complete(&self) {
        // Reported at once (not when the connection closes), so the wait for the
        // outcome of a handshake stays short; Drop then stays silent.
        if !self
            .completed
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            (self.watch)(HandshakeOutcome {
                host: self.host.clone(),
                completed: true,
            });
        }
    }
}

impl std::fmt::Debug for HandshakeWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandshakeWatch")
            .field("host", &self.host)
            .finish()
    }
}

impl StoresServerSessions for HandshakeWatch {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        self.complete();
        // Stored or not, rustls goes on (a full cache evicts its oldest entry).
        self.sessions.put(key, value);
        true
    }
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let v = self.sessions.get(key);
        if v.is_some() {
            self.complete();
        }
        v
    }
    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        let v = self.sessions.take(key);
        if v.is_some() {
            self.complete();
        }
        v
    }
    fn can_cache(&self) -> bool {
        true
    }
}

impl Drop for HandshakeWatch {
    fn drop(&mut self) {
        if !self.completed.load(std::sync::atomic::Ordering::Relaxed) {
            (self.watch)(HandshakeOutcome {
                host: std::mem::take(&mut self.host),
                completed: false,
            });
        }
    }
}

impl Minter {
    /// The config for an intercepted handshake with `host` (the SNI, else the CONNECT
    /// host): [`Minter::server_config`], or one the client will reject when `host`
    /// cannot be named in a certificate.
    pub fn config_for(&self, host: &str) -> Arc<ServerConfig> {
        match self.server_config(host) {
            Some(c) => c,
            None => {
                // A host rcgen cannot name (not a DNS name): serve the CA's own name;
                // the client rejects it, which is what such a host deserves.
                self.server_config("invalid.consentry")
                    .unwrap_or_else(|| fallback_config(&self.provider))
            }
        }
    }
}

/// A config with no certificate at all: handshakes fail. Only reached when minting
/// for a fixed valid name failed, which it does not.
fn fallback_config(provider: &Arc<CryptoProvider>) -> Arc<ServerConfig> {
    match ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
    {
        Ok(b) => Arc::new(b.with_no_client_auth().with_cert_resolver(Arc::new(NoCert))),
        Err(_) => Arc::new(
            ServerConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(&[&rustls::version::TLS13])
                // The ring provider supports TLS 1.3: the fallback of the fallback.
                .unwrap_or_else(|_| unreachable_config())
                .with_no_client_auth()
                .with_cert_resolver(Arc::new(NoCert)),
        ),
    }
}

fn unreachable_config() -> rustls::ConfigBuilder<ServerConfig, rustls::WantsVerifier> {
    ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("ring supports TLS 1.3") // invariant: ring's provider has TLS 1.3 suites
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The proxy's own provider: the configs under test are the ones it serves.
    fn provider() -> Arc<CryptoProvider> {
        crate::proxy::tls_provider()
    }

    #[test]
    fn created_once_with_private_files_then_loaded() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("ca");
        let a = Ca::load_or_create(&d).unwrap();
        assert!(a.created);
        for f in [CA_CERT_FILE, CA_KEY_FILE] {
            let mode = fs::metadata(d.join(f)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{f}");
        }
        let b = Ca::load_or_create(&d).unwrap();
        assert!(!b.created);
        assert_eq!(a.cert_der(), b.cert_der());
        assert!(a.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(a.fingerprint().len(), 32 * 3 - 1);
    }

    #[test]
    fn leaf_names_host_as_dns_or_ip_and_is_cached() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::load_or_create(dir.path()).unwrap();
        let m = Minter::new(&ca, provider(), Arc::new(|_| {})).unwrap();
        let a = m.leaf("Example.COM").unwrap();
        let b = m.leaf("example.com").unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.cert.len(), 2, "leaf and CA");
        // The SAN bytes appear in the DER: the name as text, the address as 4 octets.
        let der = a.cert[0].as_ref();
        assert!(der.windows(11).any(|w| w == b"example.com"));
        let ip = m.leaf("127.0.0.1").unwrap();
        let der = ip.cert[0].as_ref();
        // GeneralName iPAddress: context tag [7] primitive (0x87), length 4.
        assert!(der.windows(6).any(|w| w == [0x87, 4, 127, 0, 0, 1]));
        let v6 = m.leaf("[::1]").unwrap();
        assert!(v6.cert[0].as_ref().windows(2).any(|w| w == [0x87, 16]));
    }

    /// Moves TLS bytes between an in-memory client and server until both are idle.
    fn pump(c: &mut rustls::ClientConnection, s: &mut rustls::ServerConnection) {
        for _ in 0..20 {
            let mut moved = false;
            while c.wants_write() {
                let mut buf = Vec::new();
                c.write_tls(&mut buf).unwrap();
                s.read_tls(&mut &buf[..]).unwrap();
                s.process_new_packets().unwrap();
                moved = true;
            }
            while s.wants_write() {
                let mut buf = Vec::new();
                s.write_tls(&mut buf).unwrap();
                c.read_tls(&mut &buf[..]).unwrap();
                c.process_new_packets().unwrap();
                moved = true;
            }
            if !moved {
                return;
            }
        }
        panic!("handshake did not settle");
    }

    /// A rustls client on the proxy's provider that trusts only `ca`.
    fn client_trusting(ca: &Ca) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.cert_der.clone()).unwrap();
        Arc::new(
            rustls::ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }

    #[test]
    fn later_connections_resume_and_every_handshake_counts_as_completed() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::load_or_create(dir.path()).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let m = Minter::new(
            &ca,
            provider(),
            Arc::new(move |o| log.lock().unwrap().push(o)),
        )
        .unwrap();
        let client = client_trusting(&ca);
        let mut kinds = Vec::new();
        for _ in 0..3 {
            let mut c =
                rustls::ClientConnection::new(client.clone(), "example.com".try_into().unwrap())
                    .unwrap();
            let mut s =
                rustls::ServerConnection::new(m.server_config("example.com").unwrap()).unwrap();
            pump(&mut c, &mut s);
            assert!(!c.is_handshaking() && !s.is_handshaking());
            kinds.push(s.handshake_kind());
        }
        use rustls::HandshakeKind::{Full, Resumed};
        assert_eq!(kinds, [Some(Full), Some(Resumed), Some(Resumed)]);
        let completed = HandshakeOutcome {
            host: "example.com".into(),
            completed: true,
        };
        assert_eq!(*seen.lock().unwrap(), vec![completed; 3]);

        // A new client (no ticket) that goes away after our certificate is still
        // reported as such.
        let fresh = Arc::new((*client).clone());
        let mut c =
            rustls::ClientConnection::new(fresh, "other.example".try_into().unwrap()).unwrap();
        let cfg = m.server_config("other.example").unwrap();
        let mut s = rustls::ServerConnection::new(cfg).unwrap();
        let mut buf = Vec::new();
        c.write_tls(&mut buf).unwrap();
        s.read_tls(&mut &buf[..]).unwrap();
        s.process_new_packets().unwrap();
        drop(s);
        assert_eq!(
            seen.lock().unwrap().last(),
            Some(&HandshakeOutcome {
                host: "other.example".into(),
                completed: false,
            })
        );
    }

    #[test]
    fn session_store_evicts_oldest_and_takes_once() {
        let s = SessionStore::new(2);
        assert!(s.put(b"a".to_vec(), b"1".to_vec()));
        s.put(b"b".to_vec(), b"2".to_vec());
        assert_eq!(s.get(b"a"), Some(b"1".to_vec()), "get leaves it there");
        s.put(b"c".to_vec(), b"3".to_vec());
        assert_eq!(s.get(b"a"), None, "the oldest went");
        assert_eq!(s.take(b"b"), Some(b"2".to_vec()));
        assert_eq!(s.take(b"b"), None, "a session resumes once");
        // "a" put again is the newest: "c" goes first.
        s.put(b"a".to_vec(), b"4".to_vec());
        s.put(b"d".to_vec(), b"5".to_vec());
        assert_eq!(s.get(b"c"), None);
        assert_eq!(s.get(b"a"), Some(b"4".to_vec()));
    }

    #[test]
    fn session_store_stays_bounded_under_churn() {
        let s = SessionStore::new(4);
        for i in 0u32..10_000 {
            let k = i.to_be_bytes().to_vec();
            s.put(k.clone(), vec![1]);
            if i % 3 == 0 {
                s.take(&k);
            }
            let inner = lock(&s.inner);
            assert!(inner.ring.len() <= 4 && inner.map.len() <= 4);
        }
    }

    #[test]
    fn session_store_keys_are_whole_and_bounded() {
        let s = SessionStore::new(8);
        let long = vec![7u8; SESSION_KEY + 1];
        assert!(!s.put(long.clone(), vec![1]), "longer than rustls' ids");
        assert_eq!(s.get(&long), None);
        let full = vec![7u8; SESSION_KEY];
        assert!(s.put(full.clone(), vec![2]));
        assert!(s.put(b"a".to_vec(), vec![3]));
        assert_eq!(s.get(b"a\0"), None, "the padding is not part of the key");
        assert_eq!(s.get(b""), None);
        assert_eq!(s.take(&full), Some(vec![2]));
        assert_eq!(s.get(&long), None);
    }

    proptest::proptest! {
        /// The store against a naive model: every put in order, each either still
        /// there or taken; only the last `cap` puts are kept, and a key put again
        /// replaces its older session.
        #[test]
        fn session_store_matches_naive_model(
            ops in proptest::collection::vec((0u8..3, 0u8..12), 0..300),
            cap in 1usize..6,
        ) {
            let s = SessionStore::new(cap);
            let mut puts: Vec<(u8, u16, bool)> = Vec::new();
            // The put of `k` still there, if any: among the last `cap`, not taken.
            let live = |puts: &[(u8, u16, bool)], k: u8| {
                let from = puts.len().saturating_sub(cap);
                (from..puts.len()).find(|&j| puts[j].2 && puts[j].0 == k)
            };
            for (i, (op, k)) in ops.into_iter().enumerate() {
                // Keys of 1 and 32 bytes (rustls' length) alike.
                let key = if k % 2 == 0 { vec![k] } else { vec![k; SESSION_KEY] };
                match op {
                    0 => {
                        let v = i as u16;
                        proptest::prop_assert!(s.put(key, v.to_be_bytes().to_vec()));
                        for e in puts.iter_mut().filter(|(m, _, _)| *m == k) {
                            e.2 = false;
                        }
                        puts.push((k, v, true));
                    }
                    1 => {
                        let want = live(&puts, k).map(|j| puts[j].1.to_be_bytes().to_vec());
                        proptest::prop_assert_eq!(s.get(&key), want);
                    }
                    _ => {
                        let want = live(&puts, k).map(|j| {
                            puts[j].2 = false;
                            puts[j].1.to_be_bytes().to_vec()
                        });
                        proptest::prop_assert_eq!(s.take(&key), want);
                    }
                }
            }
        }
    }

    /// A client that opens connections in parallel resumes after its first ones, as
    /// long as its ticket store holds enough: rustls keeps 8 per server, so 8 parallel
    /// handshakes finishing together leave 8 tickets for the next 8 (more at once fall
    /// back to full handshakes, see README "Intercepting proxy").
    #[test]
    fn parallel_clients_keep_resuming() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::load_or_create(dir.path()).unwrap();
        let m = Minter::new(&ca, provider(), Arc::new(|_| {})).unwrap();
        let client = client_trusting(&ca);
        const PARALLEL: usize = 8;
        let mut slots: Vec<Option<(rustls::ClientConnection, rustls::ServerConnection)>> =
            (0..PARALLEL).map(|_| None).collect();
        let (mut full, mut resumed) = (0, 0);
        for _ in 0..200 {
            for slot in slots.iter_mut() {
                let (c, s) = slot.get_or_insert_with(|| {
                    (
                        rustls::ClientConnection::new(
                            client.clone(),
                            "example.com".try_into().unwrap(),
                        )
                        .unwrap(),
                        rustls::ServerConnection::new(m.server_config("example.com").unwrap())
                            .unwrap(),
                    )
                });
                // One flight each way per round: the connections interleave.
                let mut buf = Vec::new();
                while c.wants_write() {
                    c.write_tls(&mut buf).unwrap();
                }
                if !buf.is_empty() {
                    s.read_tls(&mut &buf[..]).unwrap();
                    s.process_new_packets().unwrap();
                }
                let mut buf = Vec::new();
                while s.wants_write() {
                    s.write_tls(&mut buf).unwrap();
                }
                if !buf.is_empty() {
                    c.read_tls(&mut &buf[..]).unwrap();
                    c.process_new_packets().unwrap();
                }
                if !c.is_handshaking() && !s.is_handshaking() && !s.wants_write() {
                    match s.handshake_kind() {
                        Some(rustls::HandshakeKind::Resumed) => resumed += 1,
                        _ => full += 1,
                    }
                    *slot = None;
                }
            }
        }
        assert!(full + resumed > 200, "{full} + {resumed}");
        assert_eq!(
            full, PARALLEL,
            "only the first round is full ({resumed} resumed)"
        );
    }

    #[test]
    fn load_rejects_mismatched_or_garbage_files() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(CA_CERT_FILE), "not pem").unwrap();
        fs::write(dir.path().join(CA_KEY_FILE), "not pem").unwrap();
        assert!(Ca::load_or_create(dir.path()).is_err());
    }
}
