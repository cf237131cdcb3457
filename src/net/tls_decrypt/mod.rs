//! TLS decryption with logged secrets (issue 7): TLS records of one connection in, the
//! plaintext of its application data out.
//!
//! The flow table keeps one [`TlsDecryptor`] per TLS connection and feeds it each
//! direction's in-order TCP bytes ([`TlsDecryptor::push`]) with the case's [`KeyLog`];
//! what comes out is the application data of each direction, which the flow table
//! hands to the HTTP/1 or HTTP/2 parser as if the connection were cleartext. Sans-I/O:
//! no files, sockets or clocks.
//!
//! How it reads a connection:
//! - **Records** (RFC 8446 §5.1) are reassembled per direction across pushes, one
//!   record at a time (at most [`MAX_RECORD`] bytes of fragment, the TLS 1.2 limit
//!   with expansion); handshake messages across records ([`MAX_HANDSHAKE`] bytes for
//!   the messages we read; certificates and other messages we do not need are skipped
//!   without being buffered).
//! - **Keys** are set up when the ServerHello is read: TLS 1.3 traffic keys from the
//!   logged traffic secrets (HKDF-Expand-Label "key"/"iv"); TLS ≤ 1.2 key blocks from
//!   the master secret (`CLIENT_RANDOM` line, an `RSA` pre-master line once the
//!   ClientKeyExchange is read, or a session/ticket the [`KeyLog`] learnt earlier).
//!   Records that arrive before the ServerHello is known (0-RTT data, or bytes the TCP
//!   layer delivered early) are held, at most [`MAX_HELD`] bytes per direction, and
//!   read once it is; their plaintext says where they were captured (fed through
//!   [`TlsDecryptor::push_at`]), as Wireshark shows 0-RTT data in its own frame.
//! - **Encrypted Client Hello** (RFC 9849): TLS 1.3 secrets are logged under the
//!   inner ClientHello's random, which the wire does not show. With the key log's
//!   `ECH_SECRET` and `ECH_CONFIG` for the outer random the inner hello is opened
//!   ([`ech`]) and its random finds them; without, the key log's TLS 1.3 entries are
//!   tried on the server's first encrypted record, at most [`MAX_ECH_TRIALS`] (the
//!   client's records wait meanwhile, within [`MAX_HELD`]). See [`EchOutcome`].
//! - **TLS 1.3 key changes**: each side switches from handshake to application keys
//!   after its Finished; KeyUpdate moves to the next secret ("traffic upd"); the
//!   client's 0-RTT data is tried with the early key first, then the handshake key
//!   (the early key is dropped at EndOfEarlyData or when the handshake key first
//!   authenticates, so a server that refused early data costs one trial). A
//!   HelloRetryRequest waits for the second ServerHello; ChangeCipherSpec
//!   compatibility records are ignored.
//! - **TLS ≤ 1.2**: records after each side's ChangeCipherSpec are encrypted; its
//!   Finished is the first one and serves as the key check. Renegotiation switches to
//!   the new keys at the next ChangeCipherSpec.
//!
//! Policies: only application data (content type 23) is output; alerts and
//! post-handshake messages are consumed. A record that fails authentication is an
//! anomaly `tls-decrypt-failed` and ends decryption of that direction (it would fail
//! again for every later record: sequence numbers are lost). A record header that
//! cannot be TLS ends the direction with `tls-record-malformed`. The status is
//! [`DecryptStatus::Decrypted`] as soon as one record decrypted and stays so; failures
//! before that set the [`NotDecrypted`] reason (the first one wins).

mod cipher;
mod ech;
mod kdf;

#[cfg(test)]
pub(crate) use ech::test_seal;

use crate::exchange::{Anomaly, ServerCertificate};
use crate::net::keylog::{KeyLog, Secrets};
use crate::net::message_budget::{self, BudgetShare, MessageBudget};
use crate::net::tls::{
    parse_client_hello, parse_encrypted_extensions_alpn, parse_server_hello, version_name,
    ClientHello, Ech, ServerHello,
};
use crate::net::tls_certificate;
use crate::timestamp::Timestamp;
use cipher::{OpenError, RecordCipher, Stage, Suite};

/// Largest record fragment read: 2^14 plus the 2048 bytes of expansion TLS 1.2 allows
/// (TLS 1.3 allows 256).
pub const MAX_RECORD: usize = (1 << 14) + 2048;
/// Largest handshake message kept (hellos, tickets, Finished…); larger ones of those
/// kinds are skipped with an anomaly.
pub const MAX_HANDSHAKE: usize = 1 << 16;
/// Bytes of records held per direction until the ServerHello says how to read them.
pub const MAX_HELD: usize = 128 << 10;
/// A record's fragment is reserved at once up to this many times the bytes already
/// here (a header alone reserves nothing).
const FRAG_RESERVE_FACTOR: usize = 16;
/// Records that may fail authentication, silently, before the first one opens, when
/// some TLS 1.3 secret is known to be missing: 0-RTT data offered without a logged
/// early secret, or only the application secret logged (the records before it cannot
/// open). Beyond it a failure is reported as usual.
const MAX_SKIPPED: u32 = 256;
/// Key log entries tried at most on one connection that offered ECH and whose
/// secrets are not logged under a random it shows (see [`EchOutcome::KeysMatched`]).
pub const MAX_ECH_TRIALS: usize = 4096;

const CHANGE_CIPHER_SPEC: u8 = 20;
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;
const HEARTBEAT: u8 = 24;

const HS_CLIENT_HELLO: u8 = 1;
const HS_SERVER_HELLO: u8 = 2;
const HS_NEW_SESSION_TICKET: u8 = 4;
const HS_END_OF_EARLY_DATA: u8 = 5;
const HS_ENCRYPTED_EXTENSIONS: u8 = 8;
const HS_CLIENT_KEY_EXCHANGE: u8 = 16;
const HS_FINISHED: u8 = 20;
const HS_KEY_UPDATE: u8 = 24;

/// Handshake messages we read; the others are skipped unbuffered. Certificates only
/// when `certificates` (the server's, over TLS 1.3: TLS 1.2's are read in clear by
/// the flow table).
fn kept(msg_type: u8, certificates: bool) -> bool {
    let certificate = matches!(
        msg_type,
        tls_certificate::CERTIFICATE | tls_certificate::COMPRESSED_CERTIFICATE
    );
    certificate && certificates
        || matches!(
            msg_type,
            HS_CLIENT_HELLO
                | HS_SERVER_HELLO
                | HS_NEW_SESSION_TICKET
                | HS_END_OF_EARLY_DATA
                | HS_ENCRYPTED_EXTENSIONS
                | HS_CLIENT_KEY_EXCHANGE
                | HS_FINISHED
                | HS_KEY_UPDATE
        )
}

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
    /// A QUIC connection: only its Initial packets (the ClientHello) are read.
    QuicPayload,
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
            NotDecrypted::UnsupportedVersion(v) => {
                write!(
                    f,
                    "unsupported TLS version 0x{v:04x} ({})",
                    version_name(*v)
                )
            }
            NotDecrypted::LostSync => f.write_str("bytes missing from the capture"),
            NotDecrypted::QuicPayload => {
                f.write_str("QUIC: only the Initial packets are read, not the payload")
            }
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
    /// Nothing decrypted, and why (the first reason found).
    NotDecrypted(NotDecrypted),
}

/// What became of an Encrypted Client Hello offer (RFC 9849).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EchOutcome {
    /// The outer ClientHello carries an ECH payload that was not read: no
    /// `ECH_SECRET` logged for it, or it is GREASE (indistinguishable by design).
    Offered,
    /// The ClientHelloInner was opened with the logged `ECH_SECRET`: its server name
    /// is the one the client meant.
    InnerRead,
    /// No `ECH_SECRET`, and no secrets under the outer random: the connection's TLS
    /// 1.3 secrets were found by trial, the key log entry whose server handshake
    /// secret opens the server's first encrypted record (the inner ClientHello's
    /// random, which the capture never shows). ECH was accepted, the inner hello
    /// stays unread.
    KeysMatched,
    /// The secrets are logged under the outer ClientHello's random: the server
    /// completed the handshake with the outer hello, so the offer was GREASE (a
    /// client's placeholder when it has no config) or the server rejected it. The
    /// outer server name is the one the connection went to.
    OuterUsed,
}

impl EchOutcome {
    /// Its name in exchanges' `tls.ech`.
    pub fn as_str(self) -> &'static str {
        match self {
            EchOutcome::Offered => "offered",
            EchOutcome::InnerRead => "inner-read",
            EchOutcome::KeysMatched => "keys-matched",
            EchOutcome::OuterUsed => "outer-used",
        }
    }
}

/// The ClientHelloInner sealed in the ECH offer of `outer` (whose handshake body is
/// `body`), opened with the `ECH_SECRET` and `ECH_CONFIG` logged under its random;
/// `seq` is 0 for a connection's first ClientHello, 1 for the second after a
/// HelloRetryRequest. `None` when `outer` offers no ECH or those lines are not
/// logged; an error (the anomaly `tls-ech-failed`'s detail) when they do not open it.
pub fn open_ech_inner(
    outer: &ClientHello,
    body: &[u8],
    keys: &KeyLog,
    seq: u64,
) -> Option<Result<ClientHello, String>> {
    let Some(Ech::Outer(offer)) = &outer.ech else {
        return None;
    };
    let logged = keys.secrets(&outer.random)?;
    let (secret, config) = (logged.ech_secret.as_deref()?, logged.ech_config.as_deref()?);
    Some(
        ech::open_inner(body, offer, secret, config, seq)
            .and_then(|encoded| parse_client_hello(&encoded))
            .map_err(|e| format!("ClientHelloInner not read: {e}")),
    )
}

/// What a feed of [`TlsDecryptor::push`] produced, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsOutput {
    /// Decrypted application data of one direction. `captured`: the time and frame of
    /// the segment that completed its record, when that record was held until its keys
    /// were known (given to [`TlsDecryptor::push_at`]); `None`, the bytes just pushed.
    Plaintext {
        from_client: bool,
        data: Vec<u8>,
        captured: Option<Captured>,
    },
    /// Something odd that did not stop processing (bad record, failed authentication…).
    Anomaly(Anomaly),
}

/// Where bytes were captured: the time and frame of their segment.
pub type Captured = (Timestamp, u64);

/// Reassembles one direction's handshake messages from record payloads.
#[derive(Debug, Default)]
struct HsReader {
    head: [u8; 4],
    head_len: usize,
    /// Body bytes of the current message still to come.
    remaining: usize,
    /// The current message is kept (else its bytes are skipped).
    keep: bool,
    /// Certificate messages are kept too.
    certificates: bool,
    body: Vec<u8>,
}

impl HsReader {
    /// Feeds handshake bytes; complete kept messages go to `msgs` as (type, body).
    fn push(&mut self, mut data: &[u8], msgs: &mut Vec<(u8, Vec<u8>)>, out: &mut Vec<TlsOutput>) {
        loop {
            if self.head_len < 4 {
                if data.is_empty() {
                    return;
                }
                let take = (4 - self.head_len).min(data.len());
                self.head[self.head_len..self.head_len + take].copy_from_slice(&data[..take]);
                self.head_len += take;
                data = &data[take..];
                if self.head_len < 4 {
                    return;
                }
                let [t, a, b, c] = self.head;
                let len = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
                self.remaining = len;
                let wanted = kept(t, self.certificates);
                self.keep = wanted && len <= MAX_HANDSHAKE;
                if wanted && !self.keep {
                    anomaly(
                        out,
                        "tls-handshake-malformed",
                        format!("handshake message type {t} of {len} bytes skipped (limit {MAX_HANDSHAKE})"),
                    );
                }
                self.body.clear();
            }
            let take = self.remaining.min(data.len());
            if self.keep {
                self.body.extend_from_slice(&data[..take]);
            }
            self.remaining -= take;
            data = &data[take..];
            if self.remaining > 0 {
                return;
            }
            if self.keep {
                msgs.push((self.head[0], std::mem::take(&mut self.body)));
            }
            self.head_len = 0;
        }
    }
}

impl Dir {
    /// Drops the records held (the direction stops or its keys failed).
    fn forget_held(&mut self) {
        self.held = Vec::new();
        self.held_bytes = 0;
    }
}

/// The reading state of one direction.
#[derive(Debug, Default)]
struct Dir {
    /// Header of the record being reassembled, and how much of it is there.
    head: [u8; 5],
    head_len: usize,
    /// Fragment bytes of that record so far.
    frag: Vec<u8>,
    hs: HsReader,
    /// Keys to try on the next encrypted record, in order; the first that
    /// authenticates becomes current and those before it are dropped (TLS 1.3 early
    /// → handshake; a single key otherwise).
    keys: Vec<RecordCipher>,
    /// Keys switched to at the next ChangeCipherSpec (TLS ≤ 1.2) or at this side's
    /// Finished (TLS 1.3 application keys). Boxed: a cipher's key schedule would be
    /// most of a direction's size, and most connections of a large capture never get
    /// keys.
    next: Option<Box<RecordCipher>>,
    /// TLS ≤ 1.2: a ChangeCipherSpec was read; later records are encrypted.
    encrypted: bool,
    /// Records held until the ServerHello is read, each with where it was captured.
    held: Vec<([u8; 5], Vec<u8>, Option<Captured>)>,
    held_bytes: usize,
    /// Authentication failures still tolerated before the first success.
    skip_failures: u32,
    /// Nothing more is read from this direction.
    stopped: bool,
    /// A complete record was read from this direction.
    started: bool,
}

/// The decryption state of one TLS connection; feed each direction's in-order bytes.
#[derive(Debug, Default)]
pub struct TlsDecryptor {
    client_hello: Option<ClientHello>,
    /// The ClientHelloInner, when an ECH offer was opened with the key log.
    inner_hello: Option<ClientHello>,
    ech: Option<EchOutcome>,
    /// ClientHellos with an ECH payload so far: the HPKE sequence number of the next.
    ech_seq: u64,
    /// TLS 1.3, ECH offered, no secrets under a random the capture shows: the suite,
    /// until the server's first encrypted record picks the key log entry.
    ech_trial: Option<Suite>,
    server_hello: Option<ServerHello>,
    status: Option<DecryptStatus>,
    /// Client, server.
    dirs: [Dir; 2],
    /// The final ServerHello (not a HelloRetryRequest) was read: records are read as
    /// its version says.
    decided: bool,
    version: u16,
    suite: Option<Suite>,
    /// Some ClientHello of the connection offered 0-RTT data.
    early_offered: bool,
    /// TLS ≤ 1.2: encrypt-then-MAC and extended master secret negotiated.
    encrypt_then_mac: bool,
    extended_master_secret: bool,
    /// TLS ≤ 1.2 master secret, once known (tickets issued later are remembered).
    master: Option<Vec<u8>>,
    /// TLS ≤ 1.2 RSA key exchange without a logged master secret: the
    /// ClientKeyExchange may find an `RSA` line.
    awaiting_rsa: bool,
    alpn: Option<String>,
    /// The server's certificate from the decrypted TLS 1.3 handshake (TLS ≤ 1.2 sends
    /// it in clear: the flow table reads that one without keys).
    server_certificate: Option<ServerCertificate>,
    records: u64,
    /// The records `dirs` hold until the keys are known, in the flow table's budget
    /// of message bytes.
    held_share: BudgetShare,
    /// Where the bytes being pushed were captured ([`Self::push_at`]).
    pushed: Option<Captured>,
    /// While held records are read: where the one being read was captured.
    replaying: Option<Captured>,
}

const CLIENT: usize = 0;
const SERVER: usize = 1;
const TLS13: u16 = 0x0304;

fn index(from_client: bool) -> usize {
    if from_client {
        CLIENT
    } else {
        SERVER
    }
}

fn anomaly(out: &mut Vec<TlsOutput>, kind: &str, detail: impl Into<String>) {
    out.push(TlsOutput::Anomaly(Anomaly::new(kind, detail)));
}

/// Appends plaintext captured where `captured` says, joining it to the previous output
/// of the same direction captured there.
fn emit(out: &mut Vec<TlsOutput>, from_client: bool, data: &[u8], captured: Option<Captured>) {
    if data.is_empty() {
        return;
    }
    if let Some(TlsOutput::Plaintext {
        from_client: f,
        data: d,
        captured: c,
    }) = out.last_mut()
    {
        if *f == from_client && *c == captured {
            d.extend_from_slice(data);
            return;
        }
    }
    out.push(TlsOutput::Plaintext {
        from_client,
        data: data.to_vec(),
        captured,
    });
}

impl TlsDecryptor {
    /// A connection at its start (the first bytes pushed are its first bytes).
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps the records held until the keys are known within `budget` too, shared
    /// with other connections (see [`message_budget`]).
    pub fn with_budget(mut self, budget: &MessageBudget) -> Self {
        self.held_share = BudgetShare::of(budget);
        self
    }

    /// Sets the budget share to the records both directions hold now.
    fn sync_held(&mut self) {
        let now = self.dirs.iter().map(|d| d.held_bytes).sum();
        self.held_share.sync(now);
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
        self.push_captured(from_client, bytes, None, keys, out);
    }

    /// [`Self::push`] of bytes captured `at`: the plaintext of a record held until its
    /// keys were known says so (`TlsOutput::Plaintext::captured`).
    pub fn push_at(
        &mut self,
        from_client: bool,
        bytes: &[u8],
        at: Captured,
        keys: &mut KeyLog,
        out: &mut Vec<TlsOutput>,
    ) {
        self.push_captured(from_client, bytes, Some(at), keys, out);
    }

    fn push_captured(
        &mut self,
        from_client: bool,
        bytes: &[u8],
        captured: Option<Captured>,
        keys: &mut KeyLog,
        out: &mut Vec<TlsOutput>,
    ) {
        self.pushed = captured;
        self.read(from_client, bytes, keys, out);
        // Records dropped on the way (a failure, a stop) give their share back.
        self.sync_held();
    }

    fn read(
        &mut self,
        from_client: bool,
        mut bytes: &[u8],
        keys: &mut KeyLog,
        out: &mut Vec<TlsOutput>,
    ) {
        let d = index(from_client);
        loop {
            let dir = &mut self.dirs[d];
            if dir.stopped {
                return;
            }
            if dir.head_len < 5 {
                if bytes.is_empty() {
                    return;
                }
                let take = (5 - dir.head_len).min(bytes.len());
                dir.head[dir.head_len..dir.head_len + take].copy_from_slice(&bytes[..take]);
                dir.head_len += take;
                bytes = &bytes[take..];
                if dir.head_len == 5 {
                    let [t, major, minor, a, b] = dir.head;
                    let len = usize::from(u16::from_be_bytes([a, b]));
                    let valid = (CHANGE_CIPHER_SPEC..=HEARTBEAT).contains(&t)
                        && major == 3
                        && minor <= 4
                        && len <= MAX_RECORD;
                    if !valid {
                        if dir.started {
                            anomaly(
                                out,
                                "tls-record-malformed",
                                format!("record type {t} version {major}.{minor} length {len}"),
                            );
                            dir.stopped = true;
                            self.set_failed(NotDecrypted::LostSync);
                        } else {
                            // Not the start of a TLS stream: the capture began mid-connection
                            // (or an SSLv2 hello, which we do not read).
                            self.fail(NotDecrypted::MissingHandshake);
                        }
                        return;
                    }
                    // The whole record at once when its bytes are here; a header
                    // alone (a flood of them claiming 16 KiB each) reserves nothing.
                    let here = bytes.len().saturating_mul(FRAG_RESERVE_FACTOR);
                    dir.frag = Vec::with_capacity(len.min(here));
                }
                continue;
            }
            let len = usize::from(u16::from_be_bytes([dir.head[3], dir.head[4]]));
            if dir.frag.len() < len {
                if bytes.is_empty() {
                    return;
                }
                let take = (len - dir.frag.len()).min(bytes.len());
                dir.frag.extend_from_slice(&bytes[..take]);
                bytes = &bytes[take..];
                continue;
            }
            let header = dir.head;
            let frag = std::mem::take(&mut dir.frag);
            dir.head_len = 0;
            dir.started = true;
            self.record(d, header, frag, keys, out);
        }
    }

    /// Bytes of one direction were lost (a TCP gap): decryption of it stops (record
    /// boundaries and sequence numbers are lost). The status becomes `LostSync`, or
    /// `MissingHandshake` before the ServerHello, unless something already decrypted.
    pub fn gap(&mut self, from_client: bool) {
        let dir = &mut self.dirs[index(from_client)];
        if dir.stopped {
            return;
        }
        dir.stopped = true;
        dir.frag = Vec::new();
        dir.forget_held();
        dir.keys.clear();
        self.set_failed(if self.decided {
            NotDecrypted::LostSync
        } else {
            NotDecrypted::MissingHandshake
        });
        self.sync_held();
    }

    /// Where decryption stands; see the module doc for which reason wins.
    pub fn status(&self) -> DecryptStatus {
        self.status.clone().unwrap_or(DecryptStatus::Pending)
    }

    /// The (latest) ClientHello read.
    pub fn client_hello(&self) -> Option<&ClientHello> {
        self.client_hello.as_ref()
    }

    /// The ClientHelloInner of an ECH offer opened with the key log's `ECH_SECRET`.
    pub fn inner_client_hello(&self) -> Option<&ClientHello> {
        self.inner_hello.as_ref()
    }

    /// What became of the connection's ECH offer, if it made one.
    pub fn ech(&self) -> Option<EchOutcome> {
        self.ech
    }

    /// The (latest) ServerHello read; a HelloRetryRequest until the real one comes.
    pub fn server_hello(&self) -> Option<&ServerHello> {
        self.server_hello.as_ref()
    }

    /// The server's certificate read from the decrypted TLS 1.3 handshake, taken once.
    pub fn take_server_certificate(&mut self) -> Option<ServerCertificate> {
        self.server_certificate.take()
    }

    /// The negotiated application protocol: from the ServerHello (TLS ≤ 1.2) or the
    /// decrypted EncryptedExtensions (TLS 1.3).
    pub fn alpn(&self) -> Option<&str> {
        self.alpn
            .as_deref()
            .or_else(|| self.server_hello.as_ref()?.alpn.as_deref())
    }

    /// Records decrypted so far (both directions, handshake records included).
    pub fn records_decrypted(&self) -> u64 {
        self.records
    }

    /// Records a reason the connection is not decrypted, unless one was already.
    fn set_failed(&mut self, why: NotDecrypted) {
        if matches!(self.status, None | Some(DecryptStatus::Pending)) {
            self.status = Some(DecryptStatus::NotDecrypted(why));
        }
    }

    /// Nothing of this connection can be decrypted: record why and stop reading.
    fn fail(&mut self, why: NotDecrypted) {
        self.set_failed(why);
        for dir in &mut self.dirs {
            dir.stopped = true;
            dir.forget_held();
            dir.frag = Vec::new();
            dir.keys.clear();
            dir.next = None;
        }
    }

    fn record(
        &mut self,
        d: usize,
        header: [u8; 5],
        frag: Vec<u8>,
        keys: &mut KeyLog,
        out: &mut Vec<TlsOutput>,
    ) {
        let ctype = header[0];
        if !self.decided {
            let hello_seen = if d == CLIENT {
                self.client_hello.is_some()
            } else {
                self.server_hello.is_some()
            };
            let dir = &mut self.dirs[d];
            if dir.held.is_empty() && ctype == HANDSHAKE {
                self.handshake_bytes(d, &frag, keys, out);
                return;
            }
            if dir.held.is_empty() && ctype == ALERT {
                return;
            }
            let after_retry = self
                .server_hello
                .as_ref()
                .is_some_and(|sh| sh.retry_request);
            if ctype == CHANGE_CIPHER_SPEC && after_retry {
                // Only TLS 1.3 retries: a compatibility record, not a key change.
                return;
            }
            if !hello_seen {
                // A direction that does not begin with its hello: mid-connection capture.
                self.fail(NotDecrypted::MissingHandshake);
                return;
            }
            self.hold(d, header, frag, out);
            return;
        }
        if self.version == TLS13 {
            let awaiting_trial = ctype == APPLICATION_DATA && self.ech_trial.is_some();
            if awaiting_trial {
                if d == CLIENT {
                    // Before the server's first encrypted record says whose keys these
                    // are; bounded as records held before the ServerHello are.
                    self.hold(d, header, frag, out);
                    return;
                }
                self.match_by_trial(&header, &frag, keys, out);
            }
            match ctype {
                APPLICATION_DATA => {
                    if let Some((inner, buf, range)) = self.decrypt(d, &header, frag, out) {
                        let data = buf.get(range).unwrap_or_default();
                        match inner {
                            APPLICATION_DATA => emit(out, d == CLIENT, data, self.replaying),
                            HANDSHAKE => self.handshake_bytes(d, data, keys, out),
                            ALERT => {}
                            t => anomaly(
                                out,
                                "tls-record-malformed",
                                format!("inner content type {t}"),
                            ),
                        }
                    }
                }
                // A second ClientHello after a HelloRetryRequest, or the ServerHello.
                HANDSHAKE => self.handshake_bytes(d, &frag, keys, out),
                // Compatibility ChangeCipherSpec (RFC 8446 §5), plaintext alerts.
                _ => {}
            }
            if awaiting_trial {
                self.replay_held(CLIENT, keys, out);
            }
            return;
        }
        let encrypted = self.dirs[d].encrypted;
        let (ctype, buf, range) = if encrypted {
            match self.decrypt(d, &header, frag, out) {
                Some(opened) => opened,
                None => return,
            }
        } else {
            let len = frag.len();
            (ctype, frag, 0..len)
        };
        let data = buf.get(range).unwrap_or_default();
        match ctype {
            CHANGE_CIPHER_SPEC => {
                let dir = &mut self.dirs[d];
                dir.encrypted = true;
                dir.keys = dir.next.take().map(|k| *k).into_iter().collect();
            }
            HANDSHAKE => self.handshake_bytes(d, data, keys, out),
            APPLICATION_DATA if encrypted => emit(out, d == CLIENT, data, self.replaying),
            _ => {}
        }
    }

    /// Keeps a record of direction `d` until its keys are known, at most [`MAX_HELD`]
    /// bytes; past that the direction stops.
    fn hold(&mut self, d: usize, header: [u8; 5], frag: Vec<u8>, out: &mut Vec<TlsOutput>) {
        let dir = &mut self.dirs[d];
        let over = if dir.held_bytes + frag.len() > MAX_HELD {
            Some((
                "tls-limit",
                format!("more than {MAX_HELD} bytes of records before the keys were known"),
            ))
        } else if !self.held_share.has_room(frag.len()) {
            let detail = self
                .held_share
                .cut_detail("records before the keys were known not kept, so not decrypted");
            Some((message_budget::ANOMALY, detail))
        } else {
            None
        };
        if let Some((kind, detail)) = over {
            anomaly(out, kind, detail);
            dir.stopped = true;
            dir.forget_held();
            self.set_failed(NotDecrypted::MissingHandshake);
            self.sync_held();
            return;
        }
        dir.held_bytes += frag.len();
        // A held record read again and held once more (a client record of an ECH
        // trial, replayed at the ServerHello) keeps where it was first captured.
        let captured = self.replaying.or(self.pushed);
        dir.held.push((header, frag, captured));
        self.sync_held();
    }

    /// Reads the records direction `d` held, now that its keys are known.
    fn replay_held(&mut self, d: usize, keys: &mut KeyLog, out: &mut Vec<TlsOutput>) {
        let held = std::mem::take(&mut self.dirs[d].held);
        self.dirs[d].held_bytes = 0;
        self.sync_held();
        for (header, frag, captured) in held {
            if self.dirs[d].stopped {
                break;
            }
            self.replaying = captured;
            self.record(d, header, frag, keys, out);
        }
        self.replaying = None;
    }

    /// Opens the ClientHelloInner of an outer ClientHello (`body`) whose random has
    /// `ECH_SECRET` and `ECH_CONFIG` lines; see [`EchOutcome`].
    fn open_ech(&mut self, ch: &ClientHello, body: &[u8], keys: &KeyLog, out: &mut Vec<TlsOutput>) {
        if !ch.offers_ech() {
            return;
        }
        let seq = self.ech_seq;
        self.ech_seq += 1;
        if self.ech.is_none() {
            self.ech = Some(EchOutcome::Offered);
        }
        match open_ech_inner(ch, body, keys, seq) {
            Some(Ok(inner)) => {
                self.early_offered |= inner.early_data;
                self.inner_hello = Some(inner);
                self.ech = Some(EchOutcome::InnerRead);
            }
            Some(Err(e)) => anomaly(out, "tls-ech-failed", e),
            None => {}
        }
    }

    /// TLS 1.3 with ECH offered and no secrets under the randoms seen: tries the key
    /// log's entries in order on the server's first encrypted record (`header`,
    /// `frag`) and sets up the keys of the first that opens it. None opening (or
    /// [`MAX_ECH_TRIALS`] tried) leaves the connection without a key.
    fn match_by_trial(
        &mut self,
        header: &[u8; 5],
        frag: &[u8],
        keys: &KeyLog,
        out: &mut Vec<TlsOutput>,
    ) {
        let Some(suite) = self.ech_trial.take() else {
            return;
        };
        let mut found = None;
        // A failed open garbles its buffer: each trial opens a fresh copy.
        let mut scratch = Vec::with_capacity(frag.len());
        for (tried, (random, secrets)) in keys.tls13_candidates().enumerate() {
            if tried == MAX_ECH_TRIALS {
                anomaly(
                    out,
                    "tls-limit",
                    format!("ECH offered, keys not logged under its random: the first {MAX_ECH_TRIALS} key log entries tried, none opened the server's records"),
                );
                break;
            }
            let opens = secrets
                .server_handshake_traffic
                .as_deref()
                .and_then(|s| RecordCipher::tls13(suite, s, Stage::Handshake))
                .is_some_and(|mut c| {
                    scratch.clear();
                    scratch.extend_from_slice(frag);
                    c.open(header, &mut scratch).is_ok()
                });
            if opens {
                found = Some(*random);
                break;
            }
        }
        match found.and_then(|r| keys.secrets(&r)) {
            Some(secrets) if self.install13(suite, secrets) => {
                self.ech = Some(EchOutcome::KeysMatched);
            }
            _ => self.fail(NotDecrypted::NoKey),
        }
    }

    /// Opens an encrypted record with the direction's keys; see [`Dir::keys`].
    fn decrypt(
        &mut self,
        d: usize,
        header: &[u8; 5],
        mut frag: Vec<u8>,
        out: &mut Vec<TlsOutput>,
    ) -> Option<(u8, Vec<u8>, std::ops::Range<usize>)> {
        let dir = &mut self.dirs[d];
        let n = dir.keys.len();
        if n == 0 {
            // No keys for this direction: the status says why.
            return None;
        }
        let mut error = OpenError::Auth;
        for i in 0..n {
            // A failed open garbles its buffer: every trial but the last gets a copy.
            let mut buf = if i + 1 == n {
                std::mem::take(&mut frag)
            } else {
                frag.clone()
            };
            match dir.keys[i].open(header, &mut buf) {
                Ok((t, range)) => {
                    dir.keys.drain(..i);
                    dir.skip_failures = 0;
                    self.records += 1;
                    self.status = Some(DecryptStatus::Decrypted);
                    return Some((t, buf, range));
                }
                Err(e) => error = e,
            }
        }
        if dir.skip_failures > 0 {
            dir.skip_failures -= 1;
            return None;
        }
        dir.stopped = true;
        dir.keys.clear();
        dir.forget_held();
        let side = if d == CLIENT { "client" } else { "server" };
        match error {
            OpenError::Auth => {
                anomaly(
                    out,
                    "tls-decrypt-failed",
                    format!("{side} record failed authentication with the logged keys; {side} data not decrypted from here"),
                );
                self.set_failed(NotDecrypted::AuthenticationFailed);
            }
            OpenError::Malformed(why) => {
                anomaly(out, "tls-record-malformed", format!("{side} record: {why}"));
                self.set_failed(NotDecrypted::AuthenticationFailed);
            }
        }
        None
    }

    fn handshake_bytes(
        &mut self,
        d: usize,
        data: &[u8],
        keys: &mut KeyLog,
        out: &mut Vec<TlsOutput>,
    ) {
        let mut msgs = Vec::new();
        self.dirs[d].hs.push(data, &mut msgs, out);
        for (t, body) in msgs {
            if self.dirs[d].stopped {
                return;
            }
            self.message(d, t, &body, keys, out);
        }
    }

    /// One complete handshake message of a direction.
    fn message(
        &mut self,
        d: usize,
        t: u8,
        body: &[u8],
        keys: &mut KeyLog,
        out: &mut Vec<TlsOutput>,
    ) {
        let tls13 = self.decided && self.version == TLS13;
        if d == CLIENT && self.client_hello.is_none() && t != HS_CLIENT_HELLO
            || d == SERVER && self.server_hello.is_none() && t != HS_SERVER_HELLO
        {
            self.fail(NotDecrypted::MissingHandshake);
            return;
        }
        match (d, t) {
            (CLIENT, HS_CLIENT_HELLO) => match parse_client_hello(body) {
                Ok(ch) => {
                    self.early_offered |= ch.early_data;
                    self.open_ech(&ch, body, keys, out);
                    self.client_hello = Some(ch);
                }
                Err(e) => {
                    anomaly(out, "tls-handshake-malformed", e);
                    if !self.decided {
                        self.fail(NotDecrypted::MissingHandshake);
                    }
                }
            },
            (SERVER, HS_SERVER_HELLO) => match parse_server_hello(body) {
                Ok(sh) => self.on_server_hello(sh, keys, out),
                Err(e) => {
                    anomaly(out, "tls-handshake-malformed", e);
                    if !self.decided {
                        self.fail(NotDecrypted::MissingHandshake);
                    }
                }
            },
            (SERVER, HS_ENCRYPTED_EXTENSIONS) if tls13 => {
                match parse_encrypted_extensions_alpn(body) {
                    Ok(alpn) => self.alpn = alpn,
                    Err(e) => anomaly(out, "tls-handshake-malformed", e),
                }
            }
            (SERVER, HS_NEW_SESSION_TICKET) if !tls13 => {
                // RFC 5077 §3.3: lifetime hint (4 bytes), then the ticket (2-byte length).
                let ticket = body
                    .get(4..6)
                    .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
                    .and_then(|n| body.get(6..6 + n));
                if let (Some(ticket), Some(master)) = (ticket, &self.master) {
                    keys.remember_ticket(ticket, master);
                }
            }
            (SERVER, tls_certificate::CERTIFICATE) if tls13 => self.certificate(body, out),
            (SERVER, tls_certificate::COMPRESSED_CERTIFICATE) if tls13 => {
                match tls_certificate::decompress_certificate(body) {
                    Ok(message) => self.certificate(&message, out),
                    Err(e) => anomaly(out, "tls-handshake-malformed", e),
                }
            }
            (_, HS_FINISHED) if tls13 => {
                let dir = &mut self.dirs[d];
                match dir.next.take() {
                    Some(app) => dir.keys = vec![*app],
                    None => {
                        dir.keys.clear();
                        dir.stopped = true;
                        let side = if d == CLIENT { "client" } else { "server" };
                        anomaly(
                            out,
                            "tls-no-key",
                            format!("{side} application traffic secret not logged"),
                        );
                    }
                }
            }
            (CLIENT, HS_END_OF_EARLY_DATA) if tls13 => {
                self.dirs[d].keys.retain(|k| k.stage != Stage::Early);
            }
            (_, HS_KEY_UPDATE) if tls13 => {
                let dir = &mut self.dirs[d];
                match dir.keys.first().and_then(RecordCipher::updated) {
                    Some(next) => dir.keys = vec![next],
                    None => {
                        dir.keys.clear();
                        dir.stopped = true;
                        anomaly(
                            out,
                            "tls-handshake-malformed",
                            "KeyUpdate before application keys",
                        );
                    }
                }
            }
            (CLIENT, HS_CLIENT_KEY_EXCHANGE) if self.awaiting_rsa => {
                self.rsa_key_exchange(body, keys, out)
            }
            _ => {}
        }
    }

    /// A TLS 1.3 Certificate message body of the server: its leaf certificate kept.
    fn certificate(&mut self, body: &[u8], out: &mut Vec<TlsOutput>) {
        match tls_certificate::parse_certificate(body, true) {
            Ok(cert) => self.server_certificate = cert,
            Err(e) => anomaly(out, "tls-handshake-malformed", format!("Certificate: {e}")),
        }
    }

    fn on_server_hello(&mut self, sh: ServerHello, keys: &mut KeyLog, out: &mut Vec<TlsOutput>) {
        if self.decided && self.version == TLS13 {
            anomaly(
                out,
                "tls-handshake-malformed",
                "second ServerHello in TLS 1.3",
            );
            return;
        }
        if sh.retry_request {
            // RFC 8446 §4.1.4: the client answers with a second ClientHello, then the
            // real ServerHello comes.
            self.server_hello = Some(sh);
            return;
        }
        let Some(ch) = self.client_hello.clone() else {
            self.server_hello = Some(sh);
            self.fail(NotDecrypted::MissingHandshake);
            return;
        };
        let renegotiation = self.decided;
        self.decided = true;
        self.version = sh.version;
        self.dirs[SERVER].hs.certificates = sh.version == TLS13;
        let version = sh.version;
        let suite = cipher::suite(sh.cipher_suite).filter(|s| s.tls13 == (version == TLS13));
        self.server_hello = Some(sh.clone());
        if !(0x0301..=TLS13).contains(&version) {
            self.fail(NotDecrypted::UnsupportedVersion(version));
            return;
        }
        let Some(suite) = suite else {
            self.fail(NotDecrypted::UnsupportedSuite(sh.cipher_suite));
            return;
        };
        self.suite = Some(suite);
        if version == TLS13 {
            self.setup13(suite, &ch, keys);
        } else {
            self.setup12(suite, &ch, &sh, keys, renegotiation);
        }
        if !renegotiation {
            for d in [CLIENT, SERVER] {
                self.replay_held(d, keys, out);
            }
        }
    }

    /// TLS 1.3 keys from the secrets logged under the inner ClientHello's random (an
    /// ECH offer read with the key log) or else the ClientHello's own; with neither and
    /// an ECH offer, the server's first encrypted record will try the key log.
    fn setup13(&mut self, suite: Suite, ch: &ClientHello, keys: &KeyLog) {
        let inner = self.inner_hello.as_ref().map(|h| h.random);
        for (random, outer) in [(inner, false), (Some(ch.random), true)] {
            let Some(secrets) = random.and_then(|r| keys.secrets(&r)) else {
                continue;
            };
            if self.install13(suite, secrets) {
                if outer && ch.offers_ech() {
                    self.ech = Some(EchOutcome::OuterUsed);
                }
                return;
            }
        }
        if ch.offers_ech() {
            self.ech_trial = Some(suite);
        } else {
            self.fail(NotDecrypted::NoKey);
        }
    }

    /// Sets up both directions' TLS 1.3 keys from `sec`; false when it holds none
    /// that fit the suite.
    fn install13(&mut self, suite: Suite, sec: &Secrets) -> bool {
        let mk = |secret: &Option<Vec<u8>>, stage| {
            secret
                .as_deref()
                .and_then(|s| RecordCipher::tls13(suite, s, stage))
        };
        let early = if self.early_offered {
            mk(&sec.client_early_traffic, Stage::Early)
        } else {
            None
        };
        let sides = [
            (
                early,
                mk(&sec.client_handshake_traffic, Stage::Handshake),
                mk(&sec.client_traffic_0, Stage::Application),
            ),
            (
                None,
                mk(&sec.server_handshake_traffic, Stage::Handshake),
                mk(&sec.server_traffic_0, Stage::Application),
            ),
        ];
        if sides
            .iter()
            .all(|(e, h, a)| e.is_none() && h.is_none() && a.is_none())
        {
            return false;
        }
        let early_missing = self.early_offered && sides[CLIENT].0.is_none();
        for (d, (early, hs, app)) in sides.into_iter().enumerate() {
            let dir = &mut self.dirs[d];
            if d == CLIENT && early_missing {
                // The 0-RTT records cannot open; skip them until the handshake key does.
                dir.skip_failures = MAX_SKIPPED;
            }
            dir.keys = early.into_iter().collect();
            match hs {
                Some(hs) => {
                    dir.keys.push(hs);
                    dir.next = app.map(Box::new);
                }
                None => {
                    // Only the application secret: the handshake records cannot open;
                    // skip them until the first application record does.
                    dir.keys.extend(app);
                    dir.skip_failures = MAX_SKIPPED;
                }
            }
        }
        true
    }

    fn setup12(
        &mut self,
        suite: Suite,
        ch: &ClientHello,
        sh: &ServerHello,
        keys: &mut KeyLog,
        renegotiation: bool,
    ) {
        self.encrypt_then_mac = ch.encrypt_then_mac && sh.encrypt_then_mac;
        self.extended_master_secret = ch.extended_master_secret && sh.extended_master_secret;
        // An echoed session id means an abbreviated handshake (by id, or by ticket:
        // RFC 5077 §3.4 has the server echo the id the client sent with its ticket).
        let abbreviated = !sh.session_id.is_empty() && sh.session_id == ch.session_id;
        let logged = keys
            .secrets(&ch.random)
            .and_then(|s| s.master_secret.clone());
        let learnt = || {
            let ticket = ch.session_ticket.as_deref();
            let by_ticket = ticket.and_then(|t| keys.ticket_master(t));
            let by_id = abbreviated
                .then(|| keys.session_master(&sh.session_id))
                .flatten();
            by_ticket.or(by_id).map(<[u8]>::to_vec)
        };
        let master = logged.or_else(learnt);
        match master {
            Some(master) => self.install12(suite, &master, keys, renegotiation),
            None if suite.rsa_kx && !abbreviated => self.awaiting_rsa = true,
            None if renegotiation => {
                // The first handshake's keys stay until the next ChangeCipherSpec,
                // which then has nothing to switch to.
                for dir in &mut self.dirs {
                    dir.next = None;
                }
            }
            None => self.fail(NotDecrypted::NoKey),
        }
    }

    /// Derives both directions' TLS ≤ 1.2 keys from the master secret.
    fn install12(&mut self, suite: Suite, master: &[u8], keys: &mut KeyLog, renegotiation: bool) {
        let (Some(ch), Some(sh)) = (&self.client_hello, &self.server_hello) else {
            return;
        };
        let Some((c, s)) = RecordCipher::tls12_pair(
            suite,
            self.version,
            master,
            &ch.random,
            &sh.random,
            self.encrypt_then_mac,
        ) else {
            self.fail(NotDecrypted::NoKey);
            return;
        };
        if !sh.session_id.is_empty() {
            keys.remember_session(&sh.session_id, master);
        }
        for (dir, k) in self.dirs.iter_mut().zip([c, s]) {
            if dir.encrypted && dir.keys.is_empty() && !renegotiation {
                // Its ChangeCipherSpec came before the keys were known.
                dir.keys = vec![k];
            } else {
                dir.next = Some(Box::new(k));
            }
        }
        self.master = Some(master.to_vec());
    }

    /// TLS ≤ 1.2 RSA key exchange: the pre-master secret from an `RSA` key log line,
    /// found by the first 8 bytes of the encrypted pre-master secret.
    fn rsa_key_exchange(&mut self, body: &[u8], keys: &mut KeyLog, out: &mut Vec<TlsOutput>) {
        self.awaiting_rsa = false;
        // TLS 1.0+ prefixes the encrypted secret with its length; some old stacks do not.
        let encrypted = match body {
            [a, b, rest @ ..] if usize::from(u16::from_be_bytes([*a, *b])) == rest.len() => rest,
            _ => body,
        };
        let premaster = encrypted
            .get(..8)
            .and_then(|p| <[u8; 8]>::try_from(p).ok())
            .and_then(|p| keys.rsa_premaster(&p))
            .map(<[u8]>::to_vec);
        let (Some(pms), Some(ch), Some(sh), Some(suite)) = (
            premaster,
            &self.client_hello,
            &self.server_hello,
            self.suite,
        ) else {
            self.fail(NotDecrypted::NoKey);
            return;
        };
        if self.extended_master_secret {
            // The session hash needs the whole handshake transcript, which we do not keep.
            anomaly(
                out,
                "tls-no-key",
                "RSA key log line with extended master secret is not supported",
            );
            self.fail(NotDecrypted::NoKey);
            return;
        }
        let prf = if self.version >= 0x0303 {
            kdf::Prf::Tls12(suite.hash)
        } else {
            kdf::Prf::Md5Sha1
        };
        let seed = [&ch.random[..], &sh.random[..]].concat();
        let master = kdf::prf(prf, &pms, b"master secret", &seed, 48);
        self.install12(suite, &master, keys, false);
    }
}

#[cfg(test)]
mod tests;
