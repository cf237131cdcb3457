//! TLS decryption with logged secrets (issue 7): TLS records of one connection in, the
//! plaintext of its application data out.
//!
//! SKELETON: the public API below is the contract between the decryption core and the
//! flow table; the implementation is being written.

use crate::exchange::Anomaly;
use crate::net::keylog::KeyLog;
use crate::net::tls::{ClientHello, ServerHello};

/// Why a TLS connection's application data could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotDecrypted {
    /// No secrets logged for this connection's client random.
    NoKey,
    /// The negotiated cipher suite is not one we decrypt (its IANA number).
    UnsupportedSuite(u16),
    /// The hellos were not seen (capture started mid-connection, or a gap).
    MissingHandshake,
    /// Records did not authenticate with the logged secrets (wrong keys or corruption).
    AuthenticationFailed,
    /// The TLS version is not decrypted (e.g. SSL 3.0), by its number.
    UnsupportedVersion(u16),
    /// Bytes lost in the capture (a TCP gap) after decryption had started.
    LostSync,
}

impl std::fmt::Display for NotDecrypted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotDecrypted::NoKey => f.write_str("no key for this client random"),
            NotDecrypted::UnsupportedSuite(s) => write!(f, "unsupported cipher suite 0x{s:04x}"),
            NotDecrypted::MissingHandshake => f.write_str("handshake not in the capture"),
            NotDecrypted::AuthenticationFailed => {
                f.write_str("records failed authentication with the logged keys")
            }
            NotDecrypted::UnsupportedVersion(v) => write!(f, "unsupported TLS version 0x{v:04x}"),
            NotDecrypted::LostSync => f.write_str("bytes missing from the capture"),
        }
    }
}

/// Where a connection's decryption stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecryptStatus {
    /// Hellos or keys not seen yet.
    Pending,
    /// Application data (or at least the encrypted handshake) decrypted.
    Decrypted,
    NotDecrypted(NotDecrypted),
}

/// What a feed of [`TlsDecryptor::push`] produced, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsOutput {
    /// Decrypted application data of one direction.
    Plaintext { from_client: bool, data: Vec<u8> },
    /// Something odd that did not stop processing (bad record, failed authentication…).
    Anomaly(Anomaly),
}

/// The decryption state of one TLS connection; feed each direction's in-order bytes.
#[derive(Debug, Default)]
pub struct TlsDecryptor {
    client_hello: Option<ClientHello>,
    server_hello: Option<ServerHello>,
    status: Option<DecryptStatus>,
}

impl TlsDecryptor {
    pub fn new() -> Self {
        Self::default()
    }

    /// In-order stream bytes of one direction. `keys` is mutable so sessions learnt
    /// here (session id / ticket → master secret) can serve resumed connections later.
    pub fn push(
        &mut self,
        from_client: bool,
        bytes: &[u8],
        keys: &mut KeyLog,
        out: &mut Vec<TlsOutput>,
    ) {
        let _ = (from_client, bytes, keys, out);
    }

    /// Bytes of one direction were lost (a TCP gap): decryption of it stops.
    pub fn gap(&mut self, from_client: bool) {
        let _ = from_client;
    }

    pub fn status(&self) -> DecryptStatus {
        self.status.clone().unwrap_or(DecryptStatus::Pending)
    }

    pub fn client_hello(&self) -> Option<&ClientHello> {
        self.client_hello.as_ref()
    }

    pub fn server_hello(&self) -> Option<&ServerHello> {
        self.server_hello.as_ref()
    }
}
