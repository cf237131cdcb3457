//! TLS secrets in the NSS key log format (what browsers write to `SSLKEYLOGFILE`,
//! Frida scripts dump from apps, and `editcap --inject-secrets` embeds in a pcapng
//! Decryption Secrets Block).
//!
//! Each line is `LABEL <client_random hex> <secret hex>`; `#` starts a comment.
//! Recognised labels: `CLIENT_RANDOM` (TLS ≤ 1.2 master secret),
//! `CLIENT_EARLY_TRAFFIC_SECRET`, `CLIENT_HANDSHAKE_TRAFFIC_SECRET`,
//! `SERVER_HANDSHAKE_TRAFFIC_SECRET`, `CLIENT_TRAFFIC_SECRET_0`,
//! `SERVER_TRAFFIC_SECRET_0`, `EXPORTER_SECRET` (TLS 1.3), and `RSA <first 8 bytes of
//! the encrypted pre-master secret> <pre-master secret>` (TLS ≤ 1.2 RSA key exchange).
//! With Encrypted Client Hello, `ECH_SECRET` (the HPKE KEM shared secret) and
//! `ECH_CONFIG` (the ECHConfig used) name the outer ClientHello's random, and the
//! TLS 1.3 secrets the inner one's (draft-ietf-tls-keylogfile §2.3).
//! Anything else (other labels, bad hex, wrong lengths) is skipped and counted, never
//! an error: key logs are often concatenated from several tools.
//!
//! Memory is bounded: at most [`MAX_ENTRIES`] client randoms are kept; later ones are
//! counted as skipped.
//!
//! Besides what was logged, a `KeyLog` learns TLS ≤ 1.2 sessions from connections the
//! decryptor keyed (session id or ticket → master secret), so a later connection that
//! resumes one decrypts even when its own `CLIENT_RANDOM` line is missing, as in
//! Wireshark. That cache holds at most [`MAX_SESSIONS`] sessions; when full it is
//! emptied at once (a new session is likelier to be resumed than an old one).

use std::collections::{HashMap, HashSet};

use sha2::{Digest, Sha256};

/// Client randoms (and RSA entries) kept at most.
pub const MAX_ENTRIES: usize = 1 << 20;
/// Sessions (ids and tickets) remembered at most; see the module doc.
pub const MAX_SESSIONS: usize = 1 << 16;
/// Longest secret accepted (SHA-384 secrets are 48 bytes; pre-master secrets 48).
const MAX_SECRET: usize = 64;
/// Longest `ECH_CONFIG` accepted: a config with a post-quantum KEM's public key
/// (ML-KEM-1024's is 1 568 bytes), suites, a public name and extensions.
const MAX_ECH_CONFIG: usize = 4096;

/// The secrets logged for one client random.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    /// `CLIENT_RANDOM`: the TLS ≤ 1.2 master secret (48 bytes).
    pub master_secret: Option<Vec<u8>>,
    pub client_early_traffic: Option<Vec<u8>>,
    pub client_handshake_traffic: Option<Vec<u8>>,
    pub server_handshake_traffic: Option<Vec<u8>>,
    pub client_traffic_0: Option<Vec<u8>>,
    pub server_traffic_0: Option<Vec<u8>>,
    pub exporter: Option<Vec<u8>>,
    /// `ECH_SECRET` and `ECH_CONFIG`, under the outer ClientHello's random.
    pub ech_secret: Option<Vec<u8>>,
    pub ech_config: Option<Vec<u8>>,
}

impl Secrets {
    /// Takes every secret `newer` has.
    fn update(&mut self, newer: &Secrets) {
        let pairs = [
            (&mut self.master_secret, &newer.master_secret),
            (&mut self.client_early_traffic, &newer.client_early_traffic),
            (
                &mut self.client_handshake_traffic,
                &newer.client_handshake_traffic,
            ),
            (
                &mut self.server_handshake_traffic,
                &newer.server_handshake_traffic,
            ),
            (&mut self.client_traffic_0, &newer.client_traffic_0),
            (&mut self.server_traffic_0, &newer.server_traffic_0),
            (&mut self.exporter, &newer.exporter),
            (&mut self.ech_secret, &newer.ech_secret),
            (&mut self.ech_config, &newer.ech_config),
        ];
        for (ours, theirs) in pairs {
            if theirs.is_some() {
                ours.clone_from(theirs);
            }
        }
    }
}

/// Counts of lines read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyLogStats {
    /// Non-empty, non-comment lines.
    pub lines: u64,
    /// Lines whose secret was stored.
    pub used: u64,
    /// Lines skipped: unknown label, bad hex or length, or over [`MAX_ENTRIES`].
    pub skipped: u64,
}

impl KeyLogStats {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &KeyLogStats) {
        self.lines += other.lines;
        self.used += other.used;
        self.skipped += other.skipped;
    }
}

/// Secrets from any number of key logs, looked up by client random.
#[derive(Debug, Clone, Default)]
pub struct KeyLog {
    by_random: HashMap<[u8; 32], Secrets>,
    /// The keys of `by_random` in the order they were first logged: the order in
    /// which [`tls13_candidates`](Self::tls13_candidates) offers them.
    order: Vec<[u8; 32]>,
    /// RSA pre-master secrets by the first 8 bytes of their encrypted form.
    rsa: HashMap<[u8; 8], Vec<u8>>,
    /// Learnt TLS ≤ 1.2 sessions: SHA-256 of a kind byte and the session id or ticket
    /// (tickets can be large) → master secret.
    sessions: HashMap<[u8; 32], Vec<u8>>,
    stats: KeyLogStats,
}

impl KeyLog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the lines of one key log (a file's or a Decryption Secrets Block's
    /// contents); returns the counts of this call. A later line for the same client
    /// random and label replaces the earlier one.
    pub fn add(&mut self, text: &[u8]) -> KeyLogStats {
        let mut stats = KeyLogStats::default();
        for line in lines(text) {
            stats.lines += 1;
            if self.add_line(line) {
                stats.used += 1;
            } else {
                stats.skipped += 1;
            }
        }
        self.stats.add(&stats);
        stats
    }

    /// Adds `other`'s logged secrets, as if its lines had been added after these
    /// (the sessions it learnt are not taken); bounded as [`add`](Self::add) is.
    pub fn merge(&mut self, other: &KeyLog) {
        for random in &other.order {
            let Some(theirs) = other.by_random.get(random) else {
                continue;
            };
            if !self.by_random.contains_key(random) {
                if self.entries() >= MAX_ENTRIES {
                    continue;
                }
                self.order.push(*random);
            }
            self.by_random.entry(*random).or_default().update(theirs);
        }
        for (prefix, secret) in &other.rsa {
            if self.rsa.contains_key(prefix) || self.entries() < MAX_ENTRIES {
                self.rsa.insert(*prefix, secret.clone());
            }
        }
        self.stats.add(&other.stats);
    }

    fn add_line(&mut self, line: &[u8]) -> bool {
        let Some((label, id, secret)) = fields(line) else {
            return false;
        };
        let max = if label == b"ECH_CONFIG" {
            MAX_ECH_CONFIG
        } else {
            MAX_SECRET
        };
        let Some(secret) = unhex(secret).filter(|s| !s.is_empty() && s.len() <= max) else {
            return false;
        };
        if label == b"RSA" {
            let Some(prefix) = unhex(id).and_then(|p| <[u8; 8]>::try_from(p).ok()) else {
                return false;
            };
            if !self.rsa.contains_key(&prefix) && self.entries() >= MAX_ENTRIES {
                return false;
            }
            self.rsa.insert(prefix, secret);
            return true;
        }
        let Some(random) = unhex(id).and_then(|r| <[u8; 32]>::try_from(r).ok()) else {
            return false;
        };
        if label == b"CLIENT_RANDOM" && secret.len() != 48 {
            return false;
        }
        if slot(&mut Secrets::default(), label).is_none() {
            return false;
        }
        if !self.by_random.contains_key(&random) {
            if self.entries() >= MAX_ENTRIES {
                return false;
            }
            self.order.push(random);
        }
        let entry = self.by_random.entry(random).or_default();
        match slot(entry, label) {
            Some(field) => {
                *field = Some(secret);
                true
            }
            None => false,
        }
    }

    fn entries(&self) -> usize {
        self.by_random.len() + self.rsa.len()
    }

    /// The secrets logged for a connection's client random.
    pub fn secrets(&self, client_random: &[u8; 32]) -> Option<&Secrets> {
        self.by_random.get(client_random)
    }

    /// Client randoms with a logged TLS 1.3 server handshake secret, with their
    /// secrets, in the order they were first logged: what a connection whose own
    /// random has no secrets may try, one by one, when its keys were logged under a
    /// random the capture does not show (an accepted ECH offer's inner ClientHello).
    pub fn tls13_candidates(&self) -> impl Iterator<Item = (&[u8; 32], &Secrets)> {
        self.order.iter().filter_map(|random| {
            let secrets = self.by_random.get(random)?;
            secrets
                .server_handshake_traffic
                .is_some()
                .then_some((random, secrets))
        })
    }

    /// The pre-master secret of an RSA key exchange, by the first 8 bytes of the
    /// encrypted pre-master secret in the ClientKeyExchange.
    pub fn rsa_premaster(&self, encrypted_prefix: &[u8; 8]) -> Option<&[u8]> {
        self.rsa.get(encrypted_prefix).map(Vec::as_slice)
    }

    /// Remembers the master secret of a TLS ≤ 1.2 session by its session id.
    pub fn remember_session(&mut self, session_id: &[u8], master_secret: &[u8]) {
        self.remember(b'i', session_id, master_secret);
    }

    /// Remembers the master secret of a TLS ≤ 1.2 session by its ticket (RFC 5077).
    pub fn remember_ticket(&mut self, ticket: &[u8], master_secret: &[u8]) {
        self.remember(b't', ticket, master_secret);
    }

    /// The master secret of a remembered session, by session id.
    pub fn session_master(&self, session_id: &[u8]) -> Option<&[u8]> {
        self.sessions
            .get(&session_key(b'i', session_id))
            .map(Vec::as_slice)
    }

    /// The master secret of a remembered session, by ticket.
    pub fn ticket_master(&self, ticket: &[u8]) -> Option<&[u8]> {
        self.sessions
            .get(&session_key(b't', ticket))
            .map(Vec::as_slice)
    }

    fn remember(&mut self, kind: u8, id: &[u8], master_secret: &[u8]) {
        if id.is_empty() || master_secret.is_empty() || master_secret.len() > MAX_SECRET {
            return;
        }
        if self.sessions.len() >= MAX_SESSIONS {
            self.sessions.clear();
        }
        self.sessions
            .insert(session_key(kind, id), master_secret.to_vec());
    }

    /// Client randoms and RSA entries known.
    pub fn len(&self) -> usize {
        self.entries()
    }

    pub fn is_empty(&self) -> bool {
        self.entries() == 0
    }

    /// Counts over every [`add`](Self::add) so far.
    pub fn stats(&self) -> &KeyLogStats {
        &self.stats
    }
}

fn session_key(kind: u8, id: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([kind]);
    h.update(id);
    h.finalize().into()
}

/// The lines of a key log that are neither empty nor comments, trimmed.
fn lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    text.split(|&b| b == b'\n')
        .map(trim)
        .filter(|line| !line.is_empty() && line[0] != b'#')
}

/// A line's label, client random (or RSA prefix) and secret, as written.
fn fields(line: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let mut fields = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty());
    match (fields.next(), fields.next(), fields.next(), fields.next()) {
        (Some(label), Some(id), Some(secret), None) => Some((label, id, secret)),
        _ => None,
    }
}

/// The client randoms a key log's lines name (RSA lines name none).
fn client_randoms(text: &[u8]) -> impl Iterator<Item = [u8; 32]> + '_ {
    lines(text)
        .filter_map(fields)
        .filter(|(label, _, _)| *label != b"RSA")
        .filter_map(|(_, id, _)| unhex(id).and_then(|r| <[u8; 32]>::try_from(r).ok()))
}

/// Client randoms of TLS connections that closed undecrypted for want of a key, so
/// that the key logs read after them can tell how many they held the keys of: keys
/// that came too late, typically in a pcapng Decryption Secrets Block written after
/// the handshakes it is for (PCAPdroid may, rarely). A reader that meets secrets in
/// order, as `analyze` does by default (and tshark 4.0, even with `-2`), cannot use
/// them; reading a file's secrets first (`--secrets-first`) can.
///
/// Remembers at most [`MAX_WAITING`] connections; later ones are not followed, so
/// the count is then a lower bound.
#[derive(Debug, Default)]
pub struct LateKeys {
    waiting: HashSet<[u8; 32]>,
}

/// Connections [`LateKeys`] remembers at most (2 MiB of client randoms).
pub const MAX_WAITING: usize = 1 << 16;

impl LateKeys {
    /// A connection with this client random closed without a key. `keys`, the key
    /// log as it is now, may hold its key already: then it came after the handshake,
    /// and this returns true.
    pub fn closed_without_key(&mut self, client_random: [u8; 32], keys: &KeyLog) -> bool {
        if keys.secrets(&client_random).is_some() {
            return true;
        }
        if self.waiting.len() < MAX_WAITING {
            self.waiting.insert(client_random);
        }
        false
    }

    /// `text` was just added to `keys`: returns how many of the connections waiting
    /// it keyed (their keys came after them).
    pub fn keys_added(&mut self, text: &[u8], keys: &KeyLog) -> u64 {
        if self.waiting.is_empty() {
            return 0;
        }
        let mut found = 0;
        for random in client_randoms(text) {
            if keys.secrets(&random).is_some() && self.waiting.remove(&random) {
                found += 1;
            }
        }
        found
    }
}

/// The field of `s` a label fills; `None` for labels we do not use.
fn slot<'a>(s: &'a mut Secrets, label: &[u8]) -> Option<&'a mut Option<Vec<u8>>> {
    Some(match label {
        b"CLIENT_RANDOM" => &mut s.master_secret,
        b"CLIENT_EARLY_TRAFFIC_SECRET" => &mut s.client_early_traffic,
        b"CLIENT_HANDSHAKE_TRAFFIC_SECRET" => &mut s.client_handshake_traffic,
        b"SERVER_HANDSHAKE_TRAFFIC_SECRET" => &mut s.server_handshake_traffic,
        b"CLIENT_TRAFFIC_SECRET_0" => &mut s.client_traffic_0,
        b"SERVER_TRAFFIC_SECRET_0" => &mut s.server_traffic_0,
        b"EXPORTER_SECRET" => &mut s.exporter,
        b"ECH_SECRET" => &mut s.ech_secret,
        b"ECH_CONFIG" => &mut s.ech_config,
        _ => return None,
    })
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}

fn unhex(s: &[u8]) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.chunks_exact(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RANDOM: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn random() -> [u8; 32] {
        let mut r = [0u8; 32];
        for (i, b) in r.iter_mut().enumerate() {
            *b = i as u8;
        }
        r
    }

    #[test]
    fn reads_tls12_and_tls13_labels_and_skips_the_rest() {
        let master = "ab".repeat(48);
        let hs = "cd".repeat(32);
        let text = format!(
            "# comment\r\nCLIENT_RANDOM {RANDOM} {master}\r\n\n\
             CLIENT_HANDSHAKE_TRAFFIC_SECRET {RANDOM} {hs}\n\
             SERVER_TRAFFIC_SECRET_0 {} {hs}\n\
             UNKNOWN_LABEL {RANDOM} {hs}\n\
             CLIENT_RANDOM {RANDOM} zz\n\
             CLIENT_RANDOM abcd {master}\n\
             CLIENT_RANDOM {RANDOM} {hs}\n\
             garbage\n",
            RANDOM.to_uppercase()
        );
        let mut log = KeyLog::new();
        let stats = log.add(text.as_bytes());
        assert_eq!(
            stats,
            KeyLogStats {
                lines: 8,
                used: 3,
                skipped: 5
            }
        );
        let s = log.secrets(&random()).expect("secrets for the random");
        assert_eq!(s.master_secret.as_deref(), Some(&[0xab; 48][..]));
        assert_eq!(s.client_handshake_traffic.as_deref(), Some(&[0xcd; 32][..]));
        assert_eq!(s.server_traffic_0.as_deref(), Some(&[0xcd; 32][..]));
        assert_eq!(s.client_traffic_0, None);
        assert_eq!(log.len(), 1);
        assert_eq!(log.stats(), &stats);
    }

    #[test]
    fn rsa_lines_are_keyed_by_the_encrypted_prefix() {
        let pms = "03".repeat(48);
        let mut log = KeyLog::new();
        log.add(format!("RSA 0011223344556677 {pms}").as_bytes());
        assert_eq!(
            log.rsa_premaster(&[0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77]),
            Some(&[3u8; 48][..])
        );
        assert_eq!(log.rsa_premaster(&[0; 8]), None);
    }

    #[test]
    fn sessions_by_id_and_ticket_are_separate_and_bounded() {
        let mut log = KeyLog::new();
        log.remember_session(b"id-1", &[1; 48]);
        log.remember_ticket(b"id-1", &[2; 48]);
        log.remember_session(b"", &[3; 48]);
        assert_eq!(log.session_master(b"id-1"), Some(&[1u8; 48][..]));
        assert_eq!(log.ticket_master(b"id-1"), Some(&[2u8; 48][..]));
        assert_eq!(log.session_master(b""), None);
        assert_eq!(log.session_master(b"id-2"), None);
        for i in 0..MAX_SESSIONS as u32 {
            log.remember_session(&i.to_be_bytes(), &[4; 48]);
        }
        assert!(log.sessions.len() <= MAX_SESSIONS);
    }

    #[test]
    fn ech_lines_name_the_outer_random_and_candidates_keep_the_logged_order() {
        let outer = "11".repeat(32);
        let config = format!("fe0d{}", "ab".repeat(1000));
        let text = format!(
            "SERVER_HANDSHAKE_TRAFFIC_SECRET {b} {s}\n\
             ECH_SECRET {outer} {e}\n\
             ECH_CONFIG {outer} {config}\n\
             ECH_CONFIG {c} {big}\n\
             CLIENT_RANDOM {c} {m}\n\
             SERVER_HANDSHAKE_TRAFFIC_SECRET {a} {s}\n",
            a = "aa".repeat(32),
            b = "bb".repeat(32),
            c = "cc".repeat(32),
            s = "01".repeat(32),
            e = "02".repeat(32),
            m = "03".repeat(48),
            big = "ab".repeat(MAX_ECH_CONFIG + 1),
        );
        let mut log = KeyLog::new();
        let stats = log.add(text.as_bytes());
        assert_eq!((stats.used, stats.skipped), (5, 1), "the over-long config");
        let ech = log.secrets(&[0x11; 32]).unwrap();
        assert_eq!(ech.ech_secret.as_deref(), Some(&[2u8; 32][..]));
        assert_eq!(ech.ech_config.as_ref().map(Vec::len), Some(1002));
        // Only TLS 1.3 server handshake secrets are candidates, in the order logged.
        let order: Vec<[u8; 32]> = log.tls13_candidates().map(|(r, _)| *r).collect();
        assert_eq!(order, [[0xbb; 32], [0xaa; 32]]);
        // A merge keeps that order, and appends the other log's new randoms in theirs.
        let mut merged = KeyLog::new();
        merged.add(
            format!(
                "SERVER_HANDSHAKE_TRAFFIC_SECRET {} {}\n",
                "dd".repeat(32),
                "01".repeat(32)
            )
            .as_bytes(),
        );
        merged.merge(&log);
        let order: Vec<[u8; 32]> = merged.tls13_candidates().map(|(r, _)| *r).collect();
        assert_eq!(order, [[0xdd; 32], [0xbb; 32], [0xaa; 32]]);
    }

    #[test]
    fn hostile_lines_never_panic() {
        let mut log = KeyLog::new();
        for line in [
            &b"\xff\xfe CLIENT_RANDOM"[..],
            b"CLIENT_RANDOM",
            b"CLIENT_RANDOM  ",
            b"RSA 00 11",
            b"CLIENT_RANDOM a b c d",
            b"\0\0\0",
        ] {
            log.add(line);
        }
        assert!(log.is_empty());
        assert_eq!(log.stats().used, 0);
        assert_eq!(log.stats().skipped, 6);
    }

    fn random_n(n: u32) -> [u8; 32] {
        let mut r = [0u8; 32];
        r[..4].copy_from_slice(&n.to_be_bytes());
        r
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn keys_added_after_a_connection_closed_without_them_are_late() {
        let mut log = KeyLog::new();
        let mut late = LateKeys::default();
        assert!(!late.closed_without_key(random_n(1), &log));
        assert!(!late.closed_without_key(random_n(2), &log));
        // A block for another connection, then one with a bad secret for the first:
        // neither keys a waiting connection.
        let other = format!("CLIENT_RANDOM {} {}\n", hex(&random_n(9)), "ab".repeat(48));
        log.add(other.as_bytes());
        assert_eq!(late.keys_added(other.as_bytes(), &log), 0);
        let bad = format!("CLIENT_RANDOM {} {}\n", hex(&random_n(1)), "ab".repeat(7));
        log.add(bad.as_bytes());
        assert_eq!(late.keys_added(bad.as_bytes(), &log), 0);
        // The first connection's TLS 1.3 secrets (several lines, one connection) and
        // the second's master secret, in one block: two late connections, once each.
        let keys = format!(
            "# late\nCLIENT_HANDSHAKE_TRAFFIC_SECRET {r1} {s}\nCLIENT_TRAFFIC_SECRET_0 {r1} {s}\n\
             CLIENT_RANDOM {r2} {m}\nRSA 0011223344556677 {m}\n",
            r1 = hex(&random_n(1)),
            r2 = hex(&random_n(2)).to_uppercase(),
            s = "cd".repeat(32),
            m = "ef".repeat(48),
        );
        log.add(keys.as_bytes());
        assert_eq!(late.keys_added(keys.as_bytes(), &log), 2);
        assert_eq!(late.keys_added(keys.as_bytes(), &log), 0);
        // A connection closing when its key is already there came before its key.
        assert!(late.closed_without_key(random_n(9), &log));
    }

    #[test]
    fn late_keys_remember_a_bounded_number_of_connections() {
        let log = KeyLog::new();
        let mut late = LateKeys::default();
        for n in 0..=MAX_WAITING as u32 {
            late.closed_without_key(random_n(n), &log);
        }
        assert_eq!(late.waiting.len(), MAX_WAITING);
        // Nothing waits for a block when nothing closed without a key.
        let mut none = LateKeys::default();
        assert_eq!(none.keys_added(b"CLIENT_RANDOM zz zz", &log), 0);
    }
}
