//! The SQLite file behind the case log: schema and migrations, batched appends,
//! indexed queries and verification. The chain logic itself is in [`super::record`].
//!
//! Policies:
//! - WAL mode and a busy timeout, so one writer (an ingest, later a proxy) and
//!   readers in other processes work at the same time.
//! - `records` is append-only: triggers refuse `UPDATE` and `DELETE`, with one
//!   exception: `prune` empties the body of old exchange records without findings,
//!   after listing them in `pruned` under a `checkpoint` record that fixes their
//!   hashes (see [`Store::prune`]).
//! - Side tables (`ingests`, `exchanges`, `findings`, `consents`) are indexes over
//!   records, written in the same transaction as the record they point to (`seq`);
//!   `verify` checks them against the hashed bodies.
//! - Appended rows are held in memory and inserted [`ROWS_PER_FLUSH`] records at a
//!   time with multi-row `INSERT`s (a few statements per hundred records rather than
//!   two per record: statement overhead was most of the store's CPU per proxy
//!   exchange), and before anything reads the database through this `Store` or
//!   commits. They are part of the open transaction either way: a crash loses them
//!   as it loses the transaction. If such an insert fails, the whole open
//!   transaction is rolled back and the error returned (then, once more, by the
//!   next append or [`Store::commit`]): the log never holds a record without its
//!   index row.
//! - The rows of `exchanges` and `findings` wait for the commit (or a read, or
//!   [`SIDE_ROWS_HELD`] of them) and go in ordered by `at`: their four `(…, at)`
//!   indexes then take each key at their end. A proxy's exchanges finish out of
//!   the order they started in (72 % of them earlier than one appended before, in
//!   issue 4's benchmark), and every such key cost a binary search inside the last
//!   index page (and SQLite's full rebalancing moved more cells when it split one).
//! - Appends are grouped into transactions of [`BATCH`] records; a crash (even
//!   SIGKILL) loses at most the open transaction. `synchronous = NORMAL` (WAL): a
//!   committed batch survives any process crash; a power cut may roll back the last
//!   batches but never corrupts the file (FULL would fsync every commit, ~10 % of
//!   ingest throughput in `benches/store.rs`).

use std::fs::{self, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use std::cell::{Cell, RefCell};

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::record::{self, chain_hash, ChainError, Head, Kind, Phase, Record};
use super::static_insert;
use crate::timestamp::{Rfc3339Memo, Timestamp};

/// Records per transaction during bulk appends.
pub const BATCH: usize = 1000;
/// Records held in memory before they are inserted (see the module doc).
pub const ROWS_PER_FLUSH: usize = 128;
/// Rows of a side table ordered by `at` (see the module doc) held before they are
/// inserted, at most: bounds the memory of a long transaction.
pub const SIDE_ROWS_HELD: usize = 4096;
/// Environment variable overriding [`BATCH`] (tests use small batches to make
/// crashes between commits likely).
pub const BATCH_ENV: &str = "CONSENTRY_STORE_BATCH";
/// How long a writer waits for another process's lock before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Page size of a store's database file when this `Store` creates it (SQLite's
/// default is 4096; a store keeps the size it was created with). A proxy's appends
/// cost the kernel per page more than per byte: each page goes to the WAL (two
/// writes: frame header, page), back out of it and into the database file at the
/// checkpoint (a read and a write), and a 4120-byte frame straddles two page-cache
/// pages. With 32 KiB pages a proxy exchange takes 0.4 of those system calls instead
/// of 2.8, and records of 1–2 KiB waste less of a page (the records table 14 % of its
/// pages unused with 4 KiB, 0.5 % with 32 KiB, in issue 4's benchmark).
pub const NEW_PAGE_SIZE: i64 = 32 * 1024;
/// WAL size, bytes, at which a commit copies the WAL into the database file (a
/// checkpoint): 16 MiB rather than SQLite's 4 MiB, fewer copies of hot index pages
/// during a bulk ingest. Given to SQLite in pages of the store's own size.
pub const CHECKPOINT_BYTES: i64 = 16 << 20;

/// Schema migrations; migration `i` brings the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    // v1
    "CREATE TABLE records(
        seq INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        at TEXT NOT NULL,
        body BLOB NOT NULL,      -- canonical JSON bytes (store::record)
        prev_hash BLOB NOT NULL,
        hash BLOB NOT NULL
     );
     CREATE TRIGGER records_no_update BEFORE UPDATE ON records
        BEGIN SELECT RAISE(ABORT, 'records are append-only'); END;
     CREATE TRIGGER records_no_delete BEFORE DELETE ON records
        BEGIN SELECT RAISE(ABORT, 'records are append-only'); END;
     CREATE TABLE ingests(
        seq INTEGER PRIMARY KEY REFERENCES records(seq),
        sha256 TEXT NOT NULL,
        phase TEXT NOT NULL
     );
     CREATE INDEX ingests_sha256 ON ingests(sha256);
     CREATE TABLE exchanges(
        seq INTEGER PRIMARY KEY REFERENCES records(seq),
        ingest INTEGER NOT NULL, -- seq of the file's `started` ingest record
        id TEXT NOT NULL,
        at INTEGER NOT NULL,     -- µs since the epoch
        device TEXT,
        host TEXT NOT NULL
     );
     CREATE UNIQUE INDEX exchanges_key ON exchanges(ingest, id);
     CREATE INDEX exchanges_at ON exchanges(at);
     CREATE INDEX exchanges_device ON exchanges(device, at);
     CREATE INDEX exchanges_host ON exchanges(host, at);
     CREATE TABLE findings(
        seq INTEGER PRIMARY KEY REFERENCES records(seq),
        ingest INTEGER NOT NULL,
        id TEXT NOT NULL,
        at INTEGER NOT NULL,
        device TEXT NOT NULL,
        rule TEXT NOT NULL,
        host TEXT NOT NULL
     );
     CREATE UNIQUE INDEX findings_key ON findings(ingest, id);
     CREATE INDEX findings_at ON findings(at);
     CREATE INDEX findings_device ON findings(device, at);
     CREATE INDEX findings_rule ON findings(rule, at);
     CREATE INDEX findings_host ON findings(host, at);
     CREATE TABLE consents(
        seq INTEGER PRIMARY KEY REFERENCES records(seq),
        key TEXT NOT NULL UNIQUE, -- what makes the event unique (see Side::Consent)
        at INTEGER NOT NULL,
        device TEXT NOT NULL
     );",
    // v2: pruning (`consentry prune`). A pruned record keeps its row, hashes and
    // kind; only its body is emptied, and only for exchange records listed in
    // `pruned` (written first, in the same transaction, with the checkpoint record).
    "CREATE TABLE pruned(
        seq INTEGER PRIMARY KEY REFERENCES records(seq),
        checkpoint INTEGER NOT NULL REFERENCES records(seq)
     );
     DROP TRIGGER records_no_update;
     CREATE TRIGGER records_no_update BEFORE UPDATE ON records
        WHEN NOT (NEW.seq = OLD.seq AND NEW.kind = OLD.kind AND NEW.at = OLD.at
                  AND NEW.prev_hash = OLD.prev_hash AND NEW.hash = OLD.hash
                  AND length(NEW.body) = 0 AND OLD.kind = 'exchange'
                  AND EXISTS (SELECT 1 FROM pruned WHERE pruned.seq = OLD.seq))
        BEGIN SELECT RAISE(ABORT, 'records are append-only (only prune empties an exchange body)'); END;",
    // v3: the key indexes hold rows of ingested files only. Their one reader is an
    // ingest's resume (`Store::stored_ids`, always for a file's ingest); live rows
    // (`ingest = -1`, proxy and tap) carry hash-derived ids, so each one was an
    // insert at a random place of an ever larger B-tree: on a store of 300 000
    // live exchanges, most of the store's CPU per proxy exchange
    // (`benches/store.rs`, `live_proxy_exchange_grown`).
    "DROP INDEX exchanges_key;
     CREATE UNIQUE INDEX exchanges_key ON exchanges(ingest, id) WHERE ingest >= 0;
     DROP INDEX findings_key;
     CREATE UNIQUE INDEX findings_key ON findings(ingest, id) WHERE ingest >= 0;",
];

/// Errors of the store. (Each puts its cause in its message and does not expose it
/// as the `source` as well: printed with `{:#}` it would be said twice.)
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path}: {error}")]
    Sqlite {
        path: String,
        error: rusqlite::Error,
    },
    #[error("{path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("store {path} has schema version {found}, newer than this consentry knows ({known})")]
    TooNew {
        path: String,
        found: i64,
        known: i64,
    },
    #[error("encoding a record: {0}")]
    Encode(serde_json::Error),
    #[error("store {path}: an earlier write failed; the records appended since the last commit were rolled back")]
    RolledBack { path: String },
}

/// What a record adds to the side tables.
pub enum Side<'a> {
    None,
    Ingest {
        sha256: &'a str,
        phase: Phase,
    },
    /// `ingest`: `seq` of the file's `started` ingest record.
    Exchange {
        ingest: i64,
        id: &'a str,
        at: Timestamp,
        device: Option<&'a str>,
        host: &'a str,
    },
    Finding {
        ingest: i64,
        id: &'a str,
        at: Timestamp,
        device: &'a str,
        rule: &'a str,
        host: &'a str,
    },
    /// `key` identifies the event: the hex SHA-256 of its data for case-file events,
    /// prefixed by the ingest's SHA-256 for events read from traffic.
    Consent {
        key: &'a str,
        at: Timestamp,
        device: &'a str,
    },
}

/// An open case store.
pub struct Store {
    /// The appends' prepared inserts. Declared before `conn`: fields drop in order,
    /// and the statements must be finalized while the connection is open.
    inserts: RefCell<static_insert::Statements>,
    conn: Connection,
    path: PathBuf,
    /// Head of the chain inside the open transaction.
    head: Option<Head>,
    /// `seq` and record count at our last commit: while the last `seq` is still that
    /// one, no writer has appended since (every change to the log, pruning included,
    /// appends a record), so the next transaction need not count the records again
    /// (`COUNT(*)` reads the whole table: a long proxy run commits every 100 ms).
    committed: Option<(i64, u64)>,
    pending: usize,
    batch: usize,
    /// Appended rows not inserted yet (see the module doc).
    unwritten: RefCell<Unwritten>,
    /// An insert of unwritten rows failed and the transaction was rolled back; the
    /// next [`Store::begin`] or [`Store::commit`] forgets the head it had and
    /// returns [`StoreError::RolledBack`] (once).
    rolled_back: Cell<bool>,
    /// Formats the records' `at` (the clock at the append).
    at_memo: Rfc3339Memo,
}

/// One table's rows waiting to be inserted, as a flat list of cells. The inserts are
/// `INSERT OR ROLLBACK`: a multi-row statement that could fail half-way with a
/// constraint (`ABORT`, the default) makes SQLite keep a statement journal of every
/// page it touches, spilled to a temporary file past 64 KiB; a failure rolls the
/// whole transaction back anyway (the module doc). See also `foreign_keys` in
/// [`Store::open`].
struct Rows {
    /// `INSERT INTO t(a, b, …) VALUES `.
    insert: &'static str,
    columns: usize,
    cells: Vec<Param>,
    /// The bytes of the text and blob cells, one after the other: one buffer, kept
    /// between flushes, instead of a heap copy per cell (about a dozen per proxy
    /// exchange, record bodies included).
    bytes: Vec<u8>,
    /// The integer column (`at`) the rows are inserted in the order of, ties in the
    /// order appended; `None`: as appended.
    order_by: Option<usize>,
    /// Row numbers in insertion order (kept between flushes).
    order: Vec<usize>,
}

/// One cell of an unwritten row. Unlike rusqlite's `Value`, constant names and the
/// 32-byte hashes are kept as they are, and text and blobs in the table's byte
/// buffer ([`Rows::bytes`]).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Param {
    Null,
    Integer(i64),
    /// A constant: a record kind, an ingest phase.
    Name(&'static str),
    /// UTF-8 text at this place of [`Rows::bytes`].
    Text(Span),
    /// A blob at this place of [`Rows::bytes`].
    Blob(Span),
    Hash([u8; 32]),
}

/// A place in [`Rows::bytes`].
#[derive(Debug, Clone, Copy, PartialEq)]
struct Span {
    start: usize,
    end: usize,
}

impl Rows {
    const fn new(insert: &'static str, columns: usize) -> Rows {
        Rows {
            insert,
            columns,
            cells: Vec::new(),
            bytes: Vec::new(),
            order_by: None,
            order: Vec::new(),
        }
    }

    /// [`Rows::new`] inserting its rows in the order of integer column `column`.
    const fn ordered_by(insert: &'static str, columns: usize, column: usize) -> Rows {
        let mut rows = Rows::new(insert, columns);
        rows.order_by = Some(column);
        rows
    }

    /// A text cell holding `t`.
    fn text(&mut self, t: &str) -> Param {
        Param::Text(self.push_bytes(t.as_bytes()))
    }

    fn push_bytes(&mut self, b: &[u8]) -> Span {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(b);
        Span {
            start,
            end: self.bytes.len(),
        }
    }

    /// What `p` binds as. Text of a span is whole `str`s appended by [`Rows::text`]
    /// (a span out of the buffer cannot happen; it would bind as empty).
    fn value<'a>(&'a self, p: &'a Param) -> static_insert::Cell<'a> {
        use static_insert::Cell;
        let at = |s: &Span| self.bytes.get(s.start..s.end).unwrap_or_default();
        match p {
            Param::Null => Cell::Null,
            Param::Integer(i) => Cell::Integer(*i),
            Param::Name(t) => Cell::Text(t.as_bytes()),
            Param::Text(s) => Cell::Text(at(s)),
            Param::Blob(s) => Cell::Blob(at(s)),
            Param::Hash(h) => Cell::Blob(h),
        }
    }

    fn clear(&mut self) {
        self.cells.clear();
        self.bytes.clear();
        self.order.clear();
    }

    fn len(&self) -> usize {
        self.cells.len() / self.columns
    }

    /// Inserts every row, as appended or in the order of [`Rows::order_by`]: in
    /// statements of a power of two rows each, so
    /// that at most eight statements per table are ever prepared (and cached). The
    /// cells are gone afterwards, written or not; their buffer is kept for the next.
    fn write(
        &mut self,
        conn: &Connection,
        inserts: &mut static_insert::Statements,
    ) -> rusqlite::Result<()> {
        self.sort();
        let written = self.insert_all(conn, inserts);
        self.clear();
        written
    }

    /// Puts the row numbers in [`Rows::order`] in the order of [`Rows::order_by`]
    /// (stable: equal keys stay in the order appended); leaves it empty for rows
    /// inserted as appended.
    fn sort(&mut self) {
        self.order.clear();
        let Some(column) = self.order_by else { return };
        let columns = self.columns;
        let key = |cells: &[Param], row: usize| match cells.get(row * columns + column) {
            Some(Param::Integer(i)) => *i,
            _ => i64::MIN,
        };
        let rows = self.len();
        if (1..rows).all(|r| key(&self.cells, r - 1) <= key(&self.cells, r)) {
            return;
        }
        self.order.extend(0..rows);
        let cells = &self.cells;
        self.order.sort_by_key(|&r| key(cells, r));
    }

    fn insert_all(
        &self,
        conn: &Connection,
        inserts: &mut static_insert::Statements,
    ) -> rusqlite::Result<()> {
        let columns = self.columns;
        // Row `k` of the insertion order: `order` holds every row once when it is
        // there.
        let row = |k: usize| {
            let r = self.order.get(k).copied().unwrap_or(k);
            self.cells
                .get(r * columns..(r + 1) * columns)
                .unwrap_or_default()
        };
        let mut left = self.len();
        let mut done = 0;
        while left > 0 {
            let n = 1usize << left.ilog2().min(ROWS_PER_FLUSH.ilog2());
            let row_cells = (done..done + n)
                .flat_map(|k| row(k).iter())
                .map(|p| self.value(p));
            inserts.execute(conn, (self.insert, n), || self.sql(n), row_cells)?;
            done += n;
            left -= n;
        }
        Ok(())
    }

    /// The statement inserting `n` rows.
    fn sql(&self, n: usize) -> String {
        let mut q = String::with_capacity(self.insert.len() + n * (4 * self.columns + 3));
        q.push_str(self.insert);
        for r in 0..n {
            q.push_str(if r == 0 { "(" } else { ",(" });
            for c in 0..self.columns {
                q.push_str(if c == 0 { "?" } else { ",?" });
            }
            q.push(')');
        }
        q
    }
}

/// The rows of every table appended since the last insert.
struct Unwritten {
    records: Rows,
    ingests: Rows,
    exchanges: Rows,
    findings: Rows,
    consents: Rows,
}

impl Default for Unwritten {
    fn default() -> Self {
        Unwritten {
            records: Rows::new(
                "INSERT OR ROLLBACK INTO records(seq, kind, at, body, prev_hash, hash) VALUES ",
                6,
            ),
            ingests: Rows::new(
                "INSERT OR ROLLBACK INTO ingests(seq, sha256, phase) VALUES ",
                3,
            ),
            exchanges: Rows::ordered_by(
                "INSERT OR ROLLBACK INTO exchanges(seq, ingest, id, at, device, host) VALUES ",
                6,
                3,
            ),
            findings: Rows::ordered_by(
                "INSERT OR ROLLBACK INTO findings(seq, ingest, id, at, device, rule, host) VALUES ",
                7,
                3,
            ),
            consents: Rows::new(
                "INSERT OR ROLLBACK INTO consents(seq, key, at, device) VALUES ",
                4,
            ),
        }
    }
}

impl Unwritten {
    fn is_empty(&self) -> bool {
        self.records.cells.is_empty()
            && self.exchanges.cells.is_empty()
            && self.findings.cells.is_empty()
    }

    /// Records first: every side row points to one. The tables ordered by `at`
    /// only when `all` or when they hold [`SIDE_ROWS_HELD`] rows (module doc).
    fn write(
        &mut self,
        conn: &Connection,
        inserts: &mut static_insert::Statements,
        all: bool,
    ) -> rusqlite::Result<()> {
        self.records.write(conn, inserts)?;
        self.ingests.write(conn, inserts)?;
        for t in [&mut self.exchanges, &mut self.findings] {
            if all || t.len() >= SIDE_ROWS_HELD {
                t.write(conn, inserts)?;
            }
        }
        self.consents.write(conn, inserts)
    }

    fn clear(&mut self) {
        for t in [
            &mut self.records,
            &mut self.ingests,
            &mut self.exchanges,
            &mut self.findings,
            &mut self.consents,
        ] {
            t.clear();
        }
    }
}

/// [`CHECKPOINT_BYTES`] in pages of `page_size` bytes (at least one page).
fn checkpoint_pages(page_size: i64) -> i64 {
    (CHECKPOINT_BYTES / page_size.max(1)).max(1)
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Encode(e)
    }
}

fn sql(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |error| StoreError::Sqlite {
        path: path.display().to_string(),
        error,
    }
}

impl Store {
    /// Creates (mode 0600) or opens the store at `path`, applying migrations.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() && !parent.exists() {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(parent)
                    .map_err(|error| StoreError::Io {
                        path: parent.display().to_string(),
                        error,
                    })?;
            }
        }
        // Create the file ourselves so it is 0600 from the first byte; SQLite gives
        // its -wal and -shm files the database file's mode.
        let io = |error| StoreError::Io {
            path: path.display().to_string(),
            error,
        };
        let empty = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .and_then(|f| f.metadata())
            .map_err(io)?
            .len()
            == 0;
        let conn = Connection::open(path).map_err(sql(path))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sql(path))?;
        // Before the first page is written (turning WAL on writes it); an existing
        // store keeps its page size.
        if empty {
            conn.pragma_update(None, "page_size", NEW_PAGE_SIZE)
                .map_err(sql(path))?;
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql(path))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql(path))?;
        // 64 MiB of page cache (SQLite's default is 2 MiB): appends touch the ends of
        // the records table and of five index B-trees at once.
        conn.pragma_update(None, "cache_size", -65536)
            .map_err(sql(path))?;
        // The side tables' `REFERENCES records(seq)` are documentation, not checks:
        // rusqlite's bundled SQLite turns foreign keys on by default, which made
        // every side row a lookup in `records` and every multi-row insert keep a
        // statement journal in a temporary file (together a sixth of the store's CPU
        // per proxy exchange in `benches/store.rs`). What they would guard is
        // guaranteed here (a record is inserted before, and in the same transaction
        // as, its side row: `Unwritten::write`) and checked by `verify` (a side row of
        // no record of its kind is named).
        conn.pragma_update(None, "foreign_keys", false)
            .map_err(sql(path))?;
        // Space SQLite frees inside a page it writes anyway is zeroed: what a B-tree
        // moves (a root page that splits keeps its old cells in its free space; with
        // 32 KiB pages, most bodies of a small store), and the bodies `prune` empties.
        // A record's body is then in the file once: the bytes `verify` checks, not a
        // stale copy beside them. FAST: never a write of its own (no freed page is
        // rewritten just to zero it).
        conn.pragma_update(None, "secure_delete", "FAST")
            .map_err(sql(path))?;
        let page_size: i64 = conn
            .pragma_query_value(None, "page_size", |r| r.get(0))
            .map_err(sql(path))?;
        conn.pragma_update(None, "wal_autocheckpoint", checkpoint_pages(page_size))
            .map_err(sql(path))?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
            head: None,
            committed: None,
            pending: 0,
            batch: std::env::var(BATCH_ENV)
                .ok()
                .and_then(|v| v.parse().ok())
                .filter(|&n: &usize| n > 0)
                .unwrap_or(BATCH),
            unwritten: RefCell::new(Unwritten::default()),
            inserts: RefCell::new(static_insert::Statements::new()),
            rolled_back: Cell::new(false),
            at_memo: Rfc3339Memo::default(),
        };
        // Eight multi-row inserts per table (see `Rows::write`) and the queries.
        store.conn.set_prepared_statement_cache_capacity(64);
        store.migrate()?;
        Ok(store)
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        sql(&self.path)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let path = self.path.clone();
        let e = sql(&path);
        self.conn
            .execute_batch("BEGIN IMMEDIATE; CREATE TABLE IF NOT EXISTS schema_version(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL);")
            .map_err(&e)?;
        let result = (|| {
            let current: i64 = self
                .conn
                .query_row(
                    "SELECT COALESCE(MAX(version), 0) FROM schema_version",
                    [],
                    |r| r.get(0),
                )
                .map_err(&e)?;
            let known = MIGRATIONS.len() as i64;
            if current > known {
                return Err(StoreError::TooNew {
                    path: path.display().to_string(),
                    found: current,
                    known,
                });
            }
            for (i, m) in MIGRATIONS.iter().enumerate().skip(current as usize) {
                self.conn.execute_batch(m).map_err(&e)?;
                self.conn
                    .execute(
                        "INSERT INTO schema_version(version, applied_at) VALUES (?1, ?2)",
                        params![i as i64 + 1, Timestamp::now().to_string()],
                    )
                    .map_err(&e)?;
            }
            Ok(())
        })();
        match result {
            Ok(()) => self.conn.execute_batch("COMMIT").map_err(&e),
            Err(err) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(err)
            }
        }
    }

    /// The schema version of the open store.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.flush()?;
        self.conn
            .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
            .map_err(self.err())
    }

    /// The last record's `seq` and hash (the genesis for an empty log).
    pub fn head(&self) -> Result<Head, StoreError> {
        self.head_counted(None)
    }

    /// [`Store::head`], taking the record count from `known` when the last `seq` is
    /// still `known.0`.
    fn head_counted(&self, known: Option<(i64, u64)>) -> Result<Head, StoreError> {
        self.flush()?;
        let last = self
            .conn
            .query_row(
                "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)),
            )
            .optional()
            .map_err(self.err())?;
        let row = match last {
            None => None,
            Some((seq, hash)) => {
                // Records are never deleted (a trigger refuses) and each takes the
                // next `seq`, so the count is the span of `seq`: two index lookups,
                // where `COUNT(*)` read the whole table (and filled the page cache)
                // each time a store was opened. A gap can only be tampering, which
                // `verify` reports as a broken chain.
                let n = match known {
                    Some((k, n)) if k == seq => n,
                    _ => {
                        let first: i64 = self
                            .conn
                            .query_row("SELECT MIN(seq) FROM records", [], |r| r.get(0))
                            .map_err(self.err())?;
                        (seq - first + 1).max(0) as u64
                    }
                };
                Some((seq, hash, n))
            }
        };
        Ok(match row {
            None => Head::EMPTY,
            Some((seq, hash, n)) => {
                let mut h = [0u8; 32];
                // A hash of another length is caught by verify; here it only seeds
                // the next prev_hash, which verify then reports.
                if hash.len() == 32 {
                    h.copy_from_slice(&hash);
                }
                Head {
                    records: n,
                    seq,
                    hash: h,
                    // Counted by verify, not here.
                    seals: 0,
                    last_seal: None,
                }
            }
        })
    }

    /// Appends one record (opening a transaction if none is open; committing every
    /// [`BATCH`] records). Returns its `seq`. Call [`Store::commit`] at the end.
    pub fn append<T: Serialize>(
        &mut self,
        kind: Kind,
        data: &T,
        side: Side<'_>,
    ) -> Result<i64, StoreError> {
        self.append_with(kind, |out| serde_json::to_writer(out, data), side)
    }

    /// [`Store::append`] for data that writes its own JSON: `write_data` appends to
    /// the buffer it is given exactly what `serde_json` would write for the data
    /// (see [`record::canonical_with`]).
    pub fn append_with(
        &mut self,
        kind: Kind,
        write_data: impl FnOnce(&mut Vec<u8>) -> serde_json::Result<()>,
        side: Side<'_>,
    ) -> Result<i64, StoreError> {
        let head = self.begin()?;
        let now = Timestamp::now();
        // Formatted on the stack (years 0000-9999, i.e. any clock we run under).
        let text = self.at_memo.text(now);
        let owned;
        let at = match &text {
            Some(t) => t.as_str(),
            None => {
                owned = now.to_string();
                owned.as_str()
            }
        };
        let seq = head.seq + 1;
        let u = self.unwritten.get_mut();
        // The canonical bytes go straight into the records' byte buffer.
        let records = &mut u.records;
        let start = records.bytes.len();
        if let Err(e) = record::write_canonical(&mut records.bytes, kind, at, write_data) {
            records.bytes.truncate(start);
            return Err(e.into());
        }
        let body = Span {
            start,
            end: records.bytes.len(),
        };
        let hash = chain_hash(&head.hash, records.bytes.get(start..).unwrap_or_default());
        let at_cell = records.text(at);
        records.cells.extend([
            Param::Integer(seq),
            Param::Name(kind.as_str()),
            at_cell,
            Param::Blob(body),
            Param::Hash(head.hash),
            Param::Hash(hash),
        ]);
        match side {
            Side::None => {}
            Side::Ingest { sha256, phase } => {
                let t = &mut u.ingests;
                let sha256 = t.text(sha256);
                t.cells.extend([
                    Param::Integer(seq),
                    sha256,
                    Param::Name(match phase {
                        Phase::Started => "started",
                        Phase::Complete => "complete",
                    }),
                ]);
            }
            Side::Exchange {
                ingest,
                id,
                at,
                device,
                host,
            } => {
                let t = &mut u.exchanges;
                let (id, device, host) = (
                    t.text(id),
                    device.map_or(Param::Null, |d| t.text(d)),
                    t.text(host),
                );
                t.cells.extend([
                    Param::Integer(seq),
                    Param::Integer(ingest),
                    id,
                    Param::Integer(at.micros()),
                    device,
                    host,
                ]);
            }
            Side::Finding {
                ingest,
                id,
                at,
                device,
                rule,
                host,
            } => {
                let t = &mut u.findings;
                let (id, device, rule, host) =
                    (t.text(id), t.text(device), t.text(rule), t.text(host));
                t.cells.extend([
                    Param::Integer(seq),
                    Param::Integer(ingest),
                    id,
                    Param::Integer(at.micros()),
                    device,
                    rule,
                    host,
                ]);
            }
            Side::Consent { key, at, device } => {
                let t = &mut u.consents;
                let (key, device) = (t.text(key), t.text(device));
                t.cells.extend([
                    Param::Integer(seq),
                    key,
                    Param::Integer(at.micros()),
                    device,
                ]);
            }
        }
        if u.records.len() >= ROWS_PER_FLUSH {
            if let Err(e) = self.flush_some(false) {
                self.forget_transaction();
                return Err(e);
            }
        }
        self.head = Some(Head {
            records: head.records + 1,
            seq,
            hash,
            seals: head.seals,
            last_seal: head.last_seal,
        });
        self.pending += 1;
        if self.pending >= self.batch {
            self.commit()?;
        }
        Ok(seq)
    }

    /// Commits every `records` appends from now on (a writer that commits on a
    /// schedule of its own needs no smaller batches), unless [`BATCH_ENV`] chose the
    /// batch.
    pub fn set_batch(&mut self, records: usize) {
        if std::env::var_os(BATCH_ENV).is_none() {
            self.batch = records.max(1);
        }
    }

    /// Sets the page cache of this connection to `kib` KiB.
    pub fn set_cache_kib(&self, kib: i64) -> Result<(), StoreError> {
        self.conn
            .pragma_update(None, "cache_size", -kib)
            .map_err(self.err())
    }

    /// Opens a write transaction unless one is open; the head appends will follow.
    /// `BEGIN IMMEDIATE` takes the write lock now, so the head read is still the
    /// head when we append (another writer waits for our commit).
    pub fn begin(&mut self) -> Result<Head, StoreError> {
        if self.rolled_back.get() {
            self.forget_transaction();
            return Err(StoreError::RolledBack {
                path: self.path.display().to_string(),
            });
        }
        if let Some(h) = self.head {
            return Ok(h);
        }
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(self.err())?;
        let h = self.head_counted(self.committed)?;
        self.head = Some(h);
        Ok(h)
    }

    /// Appends a seal of the current head signed with `key`, and commits.
    pub fn seal(&mut self, key: &ed25519_dalek::SigningKey) -> Result<(Head, i64), StoreError> {
        let head = self.begin()?;
        let body = record::seal(&head, key);
        let seq = self.append(Kind::Seal, &body, Side::None)?;
        self.commit()?;
        Ok((head, seq))
    }

    /// Commits the open transaction, if any.
    pub fn commit(&mut self) -> Result<(), StoreError> {
        if self.rolled_back.get() {
            self.forget_transaction();
            return Err(StoreError::RolledBack {
                path: self.path.display().to_string(),
            });
        }
        if let Err(e) = self.flush() {
            self.forget_transaction();
            return Err(e);
        }
        if let Some(h) = self.head.take() {
            self.pending = 0;
            self.committed = None;
            self.conn.execute_batch("COMMIT").map_err(self.err())?;
            self.committed = Some((h.seq, h.records));
        }
        Ok(())
    }

    /// Inserts the rows appended but not inserted yet (see the module doc). On
    /// failure the open transaction is rolled back.
    fn flush(&self) -> Result<(), StoreError> {
        self.flush_some(true)
    }

    /// [`Store::flush`]; with `all` false, rows of the tables ordered by `at` may
    /// wait (see [`Unwritten::write`]).
    fn flush_some(&self, all: bool) -> Result<(), StoreError> {
        // Never borrowed elsewhere while this runs: `append` takes it through
        // `get_mut`, and nothing called from here reaches back into the store.
        let mut u = self.unwritten.borrow_mut();
        if u.is_empty() {
            return Ok(());
        }
        let written = u.write(&self.conn, &mut self.inserts.borrow_mut(), all);
        if written.is_err() {
            u.clear();
        }
        written.map_err(|source| {
            let _ = self.conn.execute_batch("ROLLBACK");
            self.rolled_back.set(true);
            sql(&self.path)(source)
        })
    }

    /// After a rollback: no transaction is open, nothing is waiting.
    fn forget_transaction(&mut self) {
        self.rolled_back.set(false);
        self.head = None;
        self.pending = 0;
        self.unwritten.get_mut().clear();
    }

    /// The phase an ingest of `sha256` reached (`Complete` if any ingest of it
    /// completed, `Started` if one began, `None` if never ingested) and the `seq` of
    /// its `started` record.
    pub fn ingest_phase(&self, sha256: &str) -> Result<Option<(Phase, i64)>, StoreError> {
        self.flush()?;
        let rows: Vec<(String, i64)> = self
            .conn
            .prepare("SELECT phase, seq FROM ingests WHERE sha256 = ?1 ORDER BY seq")
            .and_then(|mut s| {
                s.query_map([sha256], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(self.err())?;
        let Some((_, started)) = rows.first() else {
            return Ok(None);
        };
        let phase = if rows.iter().any(|(p, _)| p == "complete") {
            Phase::Complete
        } else {
            Phase::Started
        };
        Ok(Some((phase, *started)))
    }

    /// `seq` of the first `complete` ingest record of the file with this SHA-256.
    pub fn complete_ingest(&self, sha256: &str) -> Result<Option<i64>, StoreError> {
        self.flush()?;
        self.conn
            .query_row(
                "SELECT seq FROM ingests WHERE sha256 = ?1 AND phase = 'complete' ORDER BY seq LIMIT 1",
                [sha256],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err())
    }

    /// Ids already stored for one ingest, from `exchanges` or `findings`.
    pub fn stored_ids(
        &self,
        table: StoredTable,
        ingest: i64,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        self.flush()?;
        // `ingest >= 0` as the key indexes' own condition (schema v3), so SQLite uses
        // them; live rows (`ingest = -1`) are in no index and asked for by nobody.
        let q = match table {
            StoredTable::Exchanges => "SELECT id FROM exchanges WHERE ingest = ?1 AND ingest >= 0",
            StoredTable::Findings => "SELECT id FROM findings WHERE ingest = ?1 AND ingest >= 0",
        };
        self.conn
            .prepare(q)
            .and_then(|mut s| {
                s.query_map([ingest], |r| r.get(0))?
                    .collect::<Result<_, _>>()
            })
            .map_err(self.err())
    }

    /// Whether a consent event with this key is stored.
    pub fn has_consent(&self, key: &str) -> Result<bool, StoreError> {
        self.flush()?;
        self.conn
            .query_row("SELECT 1 FROM consents WHERE key = ?1", [key], |_| Ok(()))
            .optional()
            .map(|o| o.is_some())
            .map_err(self.err())
    }

    /// The `data` of record `seq`, `None` when there is no such record or its body
    /// was pruned.
    pub fn record_data(&self, seq: i64) -> Result<Option<String>, StoreError> {
        self.flush()?;
        let body: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT body FROM records WHERE seq = ?1 AND length(body) > 0",
                [seq],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err())?;
        match body {
            Some(body) => {
                let env: record::RawEnvelope<'_> = serde_json::from_slice(&body)?;
                Ok(Some(env.data.get().to_string()))
            }
            None => Ok(None),
        }
    }

    /// The `data` of every record of `kind`, in log order (for the report: consent
    /// events and ingests, which have no query of their own).
    pub fn bodies(&self, kind: Kind) -> Result<Vec<String>, StoreError> {
        self.flush()?;
        let mut stmt = self
            .conn
            .prepare("SELECT body FROM records WHERE kind = ?1 AND length(body) > 0 ORDER BY seq")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([kind.as_str()], |r| r.get::<_, Vec<u8>>(0))
            .map_err(self.err())?;
        let mut out = Vec::new();
        for row in rows {
            let body = row.map_err(self.err())?;
            let env: record::RawEnvelope<'_> = serde_json::from_slice(&body)?;
            out.push(env.data.get().to_string());
        }
        Ok(out)
    }

    /// Stored bodies (`data` bytes of the envelope) of findings or exchanges
    /// matching `q`, in time order (then `seq`).
    pub fn query(&self, table: StoredTable, q: &Query) -> Result<Vec<String>, StoreError> {
        self.flush()?;
        let (t, with_rule) = match table {
            StoredTable::Exchanges => ("exchanges", false),
            StoredTable::Findings => ("findings", true),
        };
        let mut sql_text =
            format!("SELECT r.body FROM {t} x JOIN records r ON r.seq = x.seq WHERE 1=1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(s) = q.since {
            sql_text.push_str(" AND x.at >= ?");
            args.push(s.micros().into());
        }
        if let Some(u) = q.until {
            sql_text.push_str(" AND x.at < ?");
            args.push(u.micros().into());
        }
        if let Some(d) = &q.device {
            sql_text.push_str(" AND x.device = ?");
            args.push(d.clone().into());
        }
        if let (Some(r), true) = (&q.rule, with_rule) {
            sql_text.push_str(" AND x.rule = ?");
            args.push(r.clone().into());
        }
        if let Some(h) = &q.host {
            // SQLite's GLOB: `*`, `?`, `[...]`, case-sensitive (hosts are lower case).
            sql_text.push_str(" AND x.host GLOB ?");
            args.push(h.clone().into());
        }
        sql_text.push_str(" ORDER BY x.at, x.seq");
        let mut stmt = self.conn.prepare(&sql_text).map_err(self.err())?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, Vec<u8>>(0))
            .map_err(self.err())?;
        let mut out = Vec::new();
        for row in rows {
            let body = row.map_err(self.err())?;
            let env: record::RawEnvelope<'_> = serde_json::from_slice(&body)?;
            out.push(env.data.get().to_string());
        }
        Ok(out)
    }

    /// Prunes exchange records older than `before` that no finding refers to (and whose
    /// ingest completed): appends a `checkpoint` record naming them by a digest of
    /// their `seq` and hash, lists them in `pruned`, empties their bodies and drops
    /// their index rows, all in one transaction. With `dry_run` nothing is written.
    pub fn prune(&mut self, before: Timestamp, dry_run: bool) -> Result<Pruned, StoreError> {
        self.commit()?;
        self.begin()?;
        let result = self.prune_in_transaction(before, dry_run);
        match result {
            Ok(p) if !dry_run => {
                self.commit()?;
                Ok(p)
            }
            other => {
                self.head = None;
                self.pending = 0;
                let _ = self.conn.execute_batch("ROLLBACK");
                other
            }
        }
    }

    fn prune_in_transaction(
        &mut self,
        before: Timestamp,
        dry_run: bool,
    ) -> Result<Pruned, StoreError> {
        let e = sql(&self.path);
        // Exchanges a finding refers to, by (ingest, exchange id); the finding's
        // exchange id is only in its body.
        self.conn
            .execute_batch(
                "CREATE TEMP TABLE IF NOT EXISTS prune_keep(ingest INTEGER, id TEXT);
                 DELETE FROM prune_keep;
                 INSERT INTO prune_keep
                    SELECT f.ingest, json_extract(CAST(r.body AS TEXT), '$.data.exchange')
                    FROM findings f JOIN records r ON r.seq = f.seq;
                 CREATE INDEX IF NOT EXISTS prune_keep_key ON prune_keep(ingest, id);",
            )
            .map_err(&e)?;
        let older: i64 = self
            .conn
            .query_row(
                "SELECT COUNT(*) FROM exchanges WHERE at < ?1",
                [before.micros()],
                |r| r.get(0),
            )
            .map_err(&e)?;
        let victims: Vec<(i64, Vec<u8>)> = self
            .conn
            .prepare(
                "SELECT x.seq, r.hash FROM exchanges x JOIN records r ON r.seq = x.seq
                 WHERE x.at < ?1
                   AND NOT EXISTS (SELECT 1 FROM prune_keep k WHERE k.ingest = x.ingest AND k.id = x.id)
                   AND EXISTS (SELECT 1 FROM ingests s JOIN ingests c
                                 ON c.sha256 = s.sha256 AND c.phase = 'complete'
                               WHERE s.seq = x.ingest)
                 ORDER BY x.seq",
            )
            .and_then(|mut st| {
                st.query_map([before.micros()], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()
            })
            .map_err(&e)?;
        let mut digest = record::PrunedDigest::default();
        for (seq, hash) in &victims {
            digest.add(*seq, hash);
        }
        let mut outcome = Pruned {
            older: older as u64,
            pruned: digest.count,
            checkpoint: None,
        };
        if dry_run || victims.is_empty() {
            return Ok(outcome);
        }
        let body = record::CheckpointBody {
            before,
            pruned: digest.count,
            first_seq: digest.first_seq,
            last_seq: digest.last_seq,
            digest: digest.finish(),
        };
        drop(e);
        // Appended without committing: the whole prune is one transaction.
        let batch = std::mem::replace(&mut self.batch, usize::MAX);
        let appended = self.append(Kind::Checkpoint, &body, Side::None);
        self.batch = batch;
        let checkpoint = appended?;
        // The marks below update records: every record must be in the table.
        self.flush()?;
        let e = sql(&self.path);
        let mut mark = self
            .conn
            .prepare("INSERT INTO pruned(seq, checkpoint) VALUES (?1, ?2)")
            .map_err(&e)?;
        let mut empty = self
            .conn
            .prepare("UPDATE records SET body = x'' WHERE seq = ?1")
            .map_err(&e)?;
        let mut unindex = self
            .conn
            .prepare("DELETE FROM exchanges WHERE seq = ?1")
            .map_err(&e)?;
        for (seq, _) in &victims {
            mark.execute(params![seq, checkpoint]).map_err(&e)?;
            empty.execute([seq]).map_err(&e)?;
            unindex.execute([seq]).map_err(&e)?;
        }
        outcome.checkpoint = Some(checkpoint);
        Ok(outcome)
    }

    /// Pruned records: `seq` → the checkpoint that pruned them.
    pub fn pruned_records(&self) -> Result<std::collections::HashMap<i64, i64>, StoreError> {
        self.flush()?;
        self.conn
            .prepare("SELECT seq, checkpoint FROM pruned")
            .and_then(|mut st| {
                st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()
            })
            .map_err(self.err())
    }

    /// Rewrites the database file to give the space of pruned bodies back to the file
    /// system (SQLite's `VACUUM`; needs no other writer at the time).
    pub fn vacuum(&mut self) -> Result<(), StoreError> {
        self.commit()?;
        self.conn.execute_batch("VACUUM").map_err(self.err())
    }

    /// Verifies the store: the hash chain, SQLite's own structure, the side tables
    /// against the hashed bodies, and every evidence file under `case_dir`.
    pub fn verify(&self, case_dir: &Path) -> Result<Verified, VerifyError> {
        self.flush().map_err(VerifyError::Store)?;
        // One read transaction: every check sees the same snapshot while a writer in
        // another process goes on appending (WAL).
        self.conn
            .execute_batch("BEGIN")
            .map_err(|s| VerifyError::Store(sql(&self.path)(s)))?;
        let result = self.verify_snapshot(case_dir);
        let _ = self.conn.execute_batch("COMMIT");
        result
    }

    fn verify_snapshot(&self, case_dir: &Path) -> Result<Verified, VerifyError> {
        let e = |source: rusqlite::Error| VerifyError::Store(sql(&self.path)(source));
        let mut stmt = self
            .conn
            .prepare("SELECT seq, kind, at, body, prev_hash, hash FROM records ORDER BY seq")
            .map_err(e)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Record {
                    seq: r.get(0)?,
                    kind: r.get(1)?,
                    at: r.get(2)?,
                    body: r.get(3)?,
                    prev_hash: r.get(4)?,
                    hash: r.get(5)?,
                })
            })
            .map_err(e)?;
        let pruned = self.pruned_records().map_err(VerifyError::Store)?;
        let mut walk = record::ChainWalk::new();
        let mut evidence: Vec<(i64, record::IngestBody)> = Vec::new();
        let mut expected_side = SideCheck::default();
        for row in rows {
            let r = row.map_err(e)?;
            let pruned_by = pruned.get(&r.seq).copied();
            walk.check(&r, pruned_by)?;
            if pruned_by.is_none() {
                expected_side.add(&r, &mut evidence)?;
            }
        }
        let head = walk.finish()?;
        let integrity: String = self
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(e)?;
        if integrity != "ok" {
            return Err(VerifyError::Integrity(integrity));
        }
        expected_side.compare(&self.conn).map_err(|err| match err {
            SideError::Sql(s) => e(s),
            SideError::Mismatch(m) => VerifyError::Index(m),
        })?;
        check_side_files(&evidence)?;
        let mut files = 0;
        for (seq, ing) in &evidence {
            if ing.phase != Phase::Started {
                continue;
            }
            check_evidence_file(case_dir, *seq, Kind::Ingest, &ing.evidence, &ing.sha256)?;
            files += 1;
        }
        // Files consentry wrote itself (the tap's ring), unless it recorded removing them.
        for (seq, written) in expected_side.written.expected() {
            check_evidence_file(
                case_dir,
                seq,
                Kind::Evidence,
                &written.path,
                &written.sha256,
            )?;
            files += 1;
        }
        Ok(Verified { head, files })
    }

    /// Hands every record with `seq <= max_seq` to `each`, in `seq` order, as stored
    /// (for the export bundle; the caller checks the chain).
    pub fn for_each_record<E: From<StoreError>>(
        &self,
        max_seq: i64,
        mut each: impl FnMut(Record) -> Result<(), E>,
    ) -> Result<(), E> {
        self.flush()?;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT seq, kind, at, body, prev_hash, hash FROM records WHERE seq <= ?1 ORDER BY seq",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([max_seq], |r| {
                Ok(Record {
                    seq: r.get(0)?,
                    kind: r.get(1)?,
                    at: r.get(2)?,
                    body: r.get(3)?,
                    prev_hash: r.get(4)?,
                    hash: r.get(5)?,
                })
            })
            .map_err(self.err())?;
        for row in rows {
            each(row.map_err(self.err())?)?;
        }
        Ok(())
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// [`record::SideFilesCheck`] over the ingest records, in order.
fn check_side_files(ingests: &[(i64, record::IngestBody)]) -> Result<(), VerifyError> {
    let mut check = record::SideFilesCheck::default();
    for (seq, ing) in ingests {
        check.add(*seq, ing)?;
    }
    Ok(())
}

/// Re-hashes the evidence file `rel` (relative to `case_dir`) that record `seq` of
/// `kind` gives SHA-256 `sha256`.
fn check_evidence_file(
    case_dir: &Path,
    seq: i64,
    kind: Kind,
    rel: &str,
    sha256: &str,
) -> Result<(), VerifyError> {
    let path = case_dir.join(rel);
    let fail = |reason: String| VerifyError::Evidence {
        seq,
        record: kind.as_str(),
        path: path.display().to_string(),
        reason,
    };
    let got =
        crate::source::file_sha256(&path).map_err(|err| fail(format!("cannot be read: {err}")))?;
    if got != sha256 {
        return Err(fail(format!(
            "SHA-256 is {got}, the {} record says {sha256}",
            kind.as_str()
        )));
    }
    Ok(())
}

/// What [`Store::prune`] did (or, dry, would do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    /// Exchanges older than the cut-off.
    pub older: u64,
    /// Of those, pruned (the rest have findings or belong to an unfinished ingest).
    pub pruned: u64,
    /// `seq` of the checkpoint record written.
    pub checkpoint: Option<i64>,
}

/// Which side table.
#[derive(Debug, Clone, Copy)]
pub enum StoredTable {
    Exchanges,
    Findings,
}

/// Filters of `findings` and `exchanges` queries; all optional.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// From this time on (inclusive).
    pub since: Option<Timestamp>,
    /// Before this time (exclusive).
    pub until: Option<Timestamp>,
    pub device: Option<String>,
    /// Findings only.
    pub rule: Option<String>,
    /// A glob over the receiving host (`*.example.com`).
    pub host: Option<String>,
}

/// A store that verified.
#[derive(Debug, Clone, Copy)]
pub struct Verified {
    pub head: Head,
    /// Evidence files whose hash matched.
    pub files: usize,
}

/// Why a store does not verify.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error("evidence file {path} ({record} record {seq}): {reason}")]
    Evidence {
        seq: i64,
        /// The kind of the record that names the file: `ingest`, `evidence`.
        record: &'static str,
        path: String,
        reason: String,
    },
    #[error(transparent)]
    SideFileMissing(#[from] record::SideFileMissing),
    #[error("SQLite integrity check: {0}")]
    Integrity(String),
    #[error("index: {0}")]
    Index(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<serde_json::Error> for VerifyError {
    fn from(e: serde_json::Error) -> Self {
        VerifyError::Store(StoreError::Encode(e))
    }
}

/// The side-table rows the hashed records imply, to compare with the stored ones.
#[derive(Default)]
struct SideCheck {
    /// (seq, row as text) per table.
    ingests: Vec<(i64, String)>,
    /// SHA-256 of each ingested file → `seq` of its first `started` record.
    started: std::collections::HashMap<String, i64>,
    exchanges: Vec<(i64, String)>,
    findings: Vec<(i64, String)>,
    /// Evidence files consentry wrote itself (no index table; checked on disk).
    written: record::WrittenFiles,
}

enum SideError {
    Sql(rusqlite::Error),
    Mismatch(String),
}

#[derive(Deserialize)]
struct FindingKeys {
    id: String,
    at: Timestamp,
    device: String,
    rule: String,
    destination: DestKeys,
}
#[derive(Deserialize)]
struct DestKeys {
    host: String,
}

impl SideCheck {
    fn add(
        &mut self,
        r: &Record,
        evidence: &mut Vec<(i64, record::IngestBody)>,
    ) -> Result<(), ChainError> {
        let fail = |reason: String| ChainError { seq: r.seq, reason };
        // check_record already parsed the envelope; parse errors here are defects of
        // the data (valid JSON, wrong shape).
        let env: record::RawEnvelope<'_> =
            serde_json::from_slice(&r.body).map_err(|x| fail(x.to_string()))?;
        let data = env.data.get();
        match env.kind {
            Kind::Ingest => {
                let b: record::IngestBody =
                    serde_json::from_str(data).map_err(|x| fail(format!("ingest body: {x}")))?;
                let phase = match b.phase {
                    Phase::Started => "started",
                    Phase::Complete => "complete",
                };
                self.ingests.push((r.seq, format!("{}|{phase}", b.sha256)));
                if b.phase == Phase::Started {
                    self.started.entry(b.sha256.clone()).or_insert(r.seq);
                }
                evidence.push((r.seq, b));
            }
            Kind::Exchange => {
                let b: record::ExchangeBody =
                    serde_json::from_str(data).map_err(|x| fail(format!("exchange body: {x}")))?;
                // -1 (no ingest of its file): no stored row can match.
                let ingest = b
                    .file_sha256
                    .as_ref()
                    .and_then(|h| self.started.get(h))
                    .copied()
                    .unwrap_or(-1);
                self.exchanges.push((
                    r.seq,
                    format!(
                        "{}|{}|{}|{}|{}",
                        ingest,
                        b.id,
                        b.at.micros(),
                        b.device.unwrap_or_default(),
                        b.host
                    ),
                ));
            }
            Kind::Finding => {
                let b: FindingKeys =
                    serde_json::from_str(data).map_err(|x| fail(format!("finding body: {x}")))?;
                // The ingest a finding belongs to is not in its body (the Finding
                // JSON is the public shape); it is checked through its exchange.
                self.findings.push((
                    r.seq,
                    format!(
                        "{}|{}|{}|{}|{}",
                        b.id,
                        b.at.micros(),
                        b.device,
                        b.rule,
                        b.destination.host
                    ),
                ));
            }
            Kind::Evidence => {
                let b: record::EvidenceFileBody =
                    serde_json::from_str(data).map_err(|x| fail(format!("evidence body: {x}")))?;
                self.written.add(r.seq, b).map_err(fail)?;
            }
            _ => {}
        }
        Ok(())
    }

    fn compare(&self, conn: &Connection) -> Result<(), SideError> {
        type Table<'a> = (&'a str, &'a str, &'a [(i64, String)]);
        let tables: [Table<'_>; 3] = [
            (
                "ingests",
                "SELECT seq, sha256 || '|' || phase FROM ingests ORDER BY seq",
                &self.ingests,
            ),
            (
                "exchanges",
                "SELECT seq, ingest || '|' || id || '|' || at || '|' || COALESCE(device, '') || '|' || host FROM exchanges ORDER BY seq",
                &self.exchanges,
            ),
            (
                "findings",
                "SELECT seq, id || '|' || at || '|' || device || '|' || rule || '|' || host FROM findings ORDER BY seq",
                &self.findings,
            ),
        ];
        for (name, q, expected) in tables {
            let mut stmt = conn.prepare(q).map_err(SideError::Sql)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
                .map_err(SideError::Sql)?;
            let mut want = expected.iter();
            for row in rows {
                let (seq, text) = row.map_err(SideError::Sql)?;
                match want.next() {
                    Some((s, t)) if *s == seq && *t == text => {}
                    Some((s, _)) if *s < seq => {
                        return Err(SideError::Mismatch(format!(
                            "{name} has no row for record {s}"
                        )))
                    }
                    None => {
                        return Err(SideError::Mismatch(format!(
                            "{name} has a row for record {seq}, which is no record of its kind"
                        )))
                    }
                    _ => {
                        return Err(SideError::Mismatch(format!(
                            "{name} row for record {seq} does not match the record's body"
                        )))
                    }
                }
            }
            if let Some((s, _)) = want.next() {
                return Err(SideError::Mismatch(format!(
                    "{name} has no row for record {s}"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::record::AnnotationBody;
    use std::os::unix::fs::PermissionsExt;

    /// Each cell kind is stored as the `rusqlite::types::Value` it replaced (the
    /// owned copy the rows were built of before): same type, same bytes; text and
    /// blobs from the table's byte buffer, among other cells' bytes.
    #[test]
    fn params_bind_as_the_values_they_replaced() {
        use rusqlite::types::Value;
        let conn = Connection::open_in_memory().unwrap();
        let hash: [u8; 32] = std::array::from_fn(|i| i as u8);
        let mut rows = Rows::new("", 1);
        let before = rows.text("é");
        let text = rows.text("2026-11-30T05:00:00.000001Z");
        let empty = rows.text("");
        let blob = Param::Blob(rows.push_bytes(b"{\"a\":1}"));
        let after = rows.text("x");
        let pairs = [
            (Param::Null, Value::Null),
            (Param::Integer(-7), Value::Integer(-7)),
            (Param::Name("exchange"), Value::Text("exchange".into())),
            (before, Value::Text("é".into())),
            (text, Value::Text("2026-11-30T05:00:00.000001Z".into())),
            (empty, Value::Text(String::new())),
            (blob, Value::Blob(b"{\"a\":1}".to_vec())),
            (after, Value::Text("x".into())),
            (Param::Hash(hash), Value::Blob(hash.to_vec())),
        ];
        conn.execute_batch("CREATE TABLE ours(v); CREATE TABLE theirs(v)")
            .unwrap();
        let mut inserts = static_insert::Statements::new();
        let row = |conn: &Connection, table: &str| -> (Value, String) {
            conn.query_row(
                &format!("SELECT v, typeof(v) FROM {table} ORDER BY rowid DESC LIMIT 1"),
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
        };
        for (param, value) in pairs {
            inserts
                .execute(
                    &conn,
                    ("ours", 1),
                    || "INSERT INTO ours(v) VALUES (?)".into(),
                    [rows.value(&param)],
                )
                .unwrap();
            conn.execute("INSERT INTO theirs(v) VALUES (?1)", [&value])
                .unwrap();
            assert_eq!(row(&conn, "ours"), row(&conn, "theirs"), "{param:?}");
        }
    }

    fn note(s: &mut Store, text: &str) -> i64 {
        s.append(
            Kind::Annotation,
            &AnnotationBody { text: text.into() },
            Side::None,
        )
        .unwrap()
    }

    #[test]
    fn creates_private_store_and_migrates_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/store.db");
        let mut s = Store::open(&path).unwrap();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dmode, 0o700);
        note(&mut s, "a");
        s.commit().unwrap();
        drop(s);
        let s = Store::open(&path).unwrap();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
        assert_eq!(s.head().unwrap().seq, 1);
    }

    #[test]
    fn a_v2_store_migrates_and_its_key_indexes_serve_ingest_resume_only() {
        use crate::exchange::{Exchange, SourceKind};
        use crate::store::record::ExchangeBody;
        let dir = tempfile::tempdir().unwrap();
        // A store as consentry wrote it before v3: rows of a file's ingest and live ones.
        let (mut s, _) = store_with_exchanges(dir.path());
        for i in 0..3 {
            let mut x = Exchange::new(
                format!("live-{i}"),
                SourceKind::Proxy,
                Timestamp::from_micros(30 + i),
            );
            x.host = "tracker.example".into();
            let b = ExchangeBody::of(&x);
            let side = Side::Exchange {
                ingest: -1,
                id: &b.id,
                at: b.at,
                device: None,
                host: &b.host,
            };
            s.append(Kind::Exchange, &b, side).unwrap();
        }
        s.commit().unwrap();
        s.conn
            .execute_batch(
                "DROP INDEX exchanges_key; CREATE UNIQUE INDEX exchanges_key ON exchanges(ingest, id);
                 DROP INDEX findings_key; CREATE UNIQUE INDEX findings_key ON findings(ingest, id);
                 DELETE FROM schema_version WHERE version > 2;",
            )
            .unwrap();
        assert_eq!(s.schema_version().unwrap(), 2);
        drop(s);
        let s = Store::open(&dir.path().join("store.db")).unwrap();
        assert_eq!(s.schema_version().unwrap(), 3);
        s.verify(dir.path()).unwrap();
        let ingest = 1;
        let ids = s.stored_ids(StoredTable::Exchanges, ingest).unwrap();
        assert_eq!(ids.len(), 4);
        assert!(ids.contains("x-1") && !ids.contains("live-0"));
        assert_eq!(
            s.stored_ids(StoredTable::Findings, ingest).unwrap().len(),
            1
        );
        // Resume reads the index, which holds the file's rows and no live one.
        for (table, q) in [
            (
                "exchanges",
                "SELECT id FROM exchanges WHERE ingest = ?1 AND ingest >= 0",
            ),
            (
                "findings",
                "SELECT id FROM findings WHERE ingest = ?1 AND ingest >= 0",
            ),
        ] {
            let plan: String = s
                .conn
                .query_row(&format!("EXPLAIN QUERY PLAN {q}"), [ingest], |r| r.get(3))
                .unwrap();
            assert!(plan.contains(&format!("{table}_key")), "{plan}");
        }
        let indexed: i64 = s
            .conn
            .query_row(
                "SELECT COUNT(*) FROM exchanges INDEXED BY exchanges_key WHERE ingest >= 0",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(indexed, 4);
        // Still unique per file: a second row of one file's exchange id is refused.
        assert!(s
            .conn
            .execute(
                "INSERT INTO exchanges(seq, ingest, id, at, device, host) VALUES (999, 1, 'x-1', 0, NULL, 'h')",
                [],
            )
            .is_err());
    }

    #[test]
    fn cache_size_is_set_per_connection() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("store.db")).unwrap();
        let size = |s: &Store| -> i64 {
            s.conn
                .query_row("PRAGMA cache_size", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(size(&s), -65536);
        s.set_cache_kib(4096).unwrap();
        assert_eq!(size(&s), -4096);
    }

    fn pragma(s: &Store, name: &str) -> i64 {
        s.conn.pragma_query_value(None, name, |r| r.get(0)).unwrap()
    }

    #[test]
    fn a_new_store_gets_large_pages_and_an_old_one_keeps_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("new.db");
        let mut s = Store::open(&new).unwrap();
        assert_eq!(pragma(&s, "page_size"), NEW_PAGE_SIZE);
        assert_eq!(
            pragma(&s, "wal_autocheckpoint") * NEW_PAGE_SIZE,
            CHECKPOINT_BYTES
        );
        note(&mut s, "new");
        s.commit().unwrap();
        drop(s);
        assert_eq!(
            pragma(&Store::open(&new).unwrap(), "page_size"),
            NEW_PAGE_SIZE
        );

        // A store created before, with SQLite's default pages (its first page written).
        let old = dir.path().join("old.db");
        {
            let conn = Connection::open(&old).unwrap();
            conn.pragma_update(None, "page_size", 4096).unwrap();
            conn.pragma_update(None, "journal_mode", "WAL").unwrap();
            conn.execute_batch("CREATE TABLE written_before(x)")
                .unwrap();
        }
        let mut s = Store::open(&old).unwrap();
        assert_eq!(pragma(&s, "page_size"), 4096);
        assert_eq!(pragma(&s, "wal_autocheckpoint"), 4096);
        for i in 0..(BATCH + 5) {
            note(&mut s, &i.to_string());
        }
        s.commit().unwrap();
        drop(s);
        let s = Store::open(&old).unwrap();
        assert_eq!(pragma(&s, "page_size"), 4096);
        assert_eq!(s.verify(dir.path()).unwrap().head.records, BATCH as u64 + 5);
        assert_eq!(pragma(&s, "secure_delete"), 2, "FAST");
        assert_eq!(checkpoint_pages(0), CHECKPOINT_BYTES);
        assert_eq!(checkpoint_pages(1 << 40), 1);
    }

    /// Enough records to split the records table's root page a few times: every
    /// body is in the file once (no stale copy in a page's free space).
    #[test]
    fn every_record_body_is_in_the_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let mut s = Store::open(&path).unwrap();
        for i in 0..400 {
            note(&mut s, &format!("{i:04} {}", "x".repeat(300)));
        }
        s.commit().unwrap();
        let bodies: Vec<Vec<u8>> = s
            .conn
            .prepare("SELECT body FROM records ORDER BY seq")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        drop(s);
        let file = fs::read(&path).unwrap();
        assert!(
            !dir.path().join("store.db-wal").exists() || {
                fs::metadata(dir.path().join("store.db-wal")).unwrap().len() == 0
            }
        );
        assert_eq!(bodies.len(), 400);
        for b in &bodies {
            let n = file.windows(b.len()).filter(|w| w == b).count();
            assert_eq!(n, 1, "{}", String::from_utf8_lossy(b));
        }
    }

    #[test]
    fn appends_chain_across_batches_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let mut s = Store::open(&path).unwrap();
        for i in 0..(BATCH + 5) {
            note(&mut s, &i.to_string());
        }
        s.commit().unwrap();
        drop(s);
        let mut s = Store::open(&path).unwrap();
        note(&mut s, "after");
        s.commit().unwrap();
        let v = s.verify(dir.path()).unwrap();
        assert_eq!(v.head.records, BATCH as u64 + 6);
        assert_eq!(v.head, s.head().unwrap());
    }

    #[test]
    fn rows_held_in_memory_are_read_back_inserted_in_order_and_rolled_back_whole() {
        use crate::exchange::{Exchange, SourceKind};
        use crate::store::record::ExchangeBody;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let mut s = Store::open(&path).unwrap();
        // Odd counts of each kind, across several flushes: every power-of-two
        // statement size is used.
        let n = 3 * ROWS_PER_FLUSH + 7;
        let mut exchanges = 0;
        for i in 0..n {
            let at = Timestamp::from_micros(i as i64);
            match i % 3 {
                0 => {
                    note(&mut s, &i.to_string());
                }
                1 => {
                    let mut x = Exchange::new(format!("x-{i}"), SourceKind::Proxy, at);
                    x.host = "h.example".into();
                    x.device = (i % 2 == 0).then(|| "d".to_string());
                    let b = ExchangeBody::of(&x);
                    let side = Side::Exchange {
                        ingest: -1,
                        id: &b.id,
                        at,
                        device: b.device.as_deref(),
                        host: &b.host,
                    };
                    s.append(Kind::Exchange, &b, side).unwrap();
                    exchanges += 1;
                }
                _ => {
                    let key = format!("k{i}");
                    let side = Side::Consent {
                        key: &key,
                        at,
                        device: "d",
                    };
                    s.append(
                        Kind::Annotation,
                        &AnnotationBody { text: key.clone() },
                        side,
                    )
                    .unwrap();
                    // Read back at once, inside the open transaction.
                    assert!(s.has_consent(&key).unwrap(), "{key}");
                }
            }
        }
        assert_eq!(s.head().unwrap().seq, n as i64);
        s.commit().unwrap();
        let v = s.verify(dir.path()).unwrap();
        assert_eq!(v.head.records, n as u64);
        let ids = stored_exchange_ids(&s);
        assert_eq!(ids.len(), exchanges);
        assert_eq!(ids[0], r#""x-1""#);

        // A failing insert (a consent key stored already) rolls the whole open
        // transaction back, and commit says so once.
        let before = s.head().unwrap();
        note(&mut s, "lost");
        let side = Side::Consent {
            key: "k2",
            at: Timestamp::from_micros(0),
            device: "d",
        };
        s.append(
            Kind::Annotation,
            &AnnotationBody { text: "dup".into() },
            side,
        )
        .unwrap();
        assert!(s.has_consent("k2").is_err());
        assert!(matches!(s.commit(), Err(StoreError::RolledBack { .. })));
        assert_eq!(s.head().unwrap(), before);
        // Said once: the next transaction goes on.
        s.commit().unwrap();
        note(&mut s, "after");
        s.commit().unwrap();
        let v = s.verify(dir.path()).unwrap();
        assert_eq!(v.head.records, n as u64 + 1);
    }

    #[test]
    fn side_rows_out_of_time_order_go_in_by_time_and_read_back_as_appended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let mut s = Store::open(&path).unwrap();
        s.set_batch(usize::MAX);
        // Times out of order (as a proxy's exchanges finish), some equal; more rows
        // than are held back, so both the held and the early inserts happen.
        let n = SIDE_ROWS_HELD + ROWS_PER_FLUSH + 3;
        let at = |i: usize| Timestamp::from_micros(((i * 7919) % 613) as i64);
        let mut appended = Vec::new();
        for i in 0..n {
            let id = format!("x-{i}");
            let seq = s
                .append(
                    Kind::Annotation,
                    &AnnotationBody { text: id.clone() },
                    Side::Exchange {
                        ingest: -1,
                        id: &id,
                        at: at(i),
                        device: Some("d"),
                        host: "h.example",
                    },
                )
                .unwrap();
            let fid = format!("f-{i}");
            let fseq = s
                .append(
                    Kind::Annotation,
                    &AnnotationBody { text: fid.clone() },
                    Side::Finding {
                        ingest: -1,
                        id: &fid,
                        at: at(i),
                        device: "d",
                        rule: "r",
                        host: "h.example",
                    },
                )
                .unwrap();
            appended.push((seq, id, fseq, fid, at(i).micros()));
        }
        // The held rows went in once there were enough of them, before the commit.
        let inserted = |s: &Store, t: &str| -> i64 {
            s.conn
                .query_row(&format!("SELECT COUNT(*) FROM {t}"), [], |r| r.get(0))
                .unwrap()
        };
        assert!(inserted(&s, "exchanges") >= SIDE_ROWS_HELD as i64);
        assert!(inserted(&s, "findings") >= SIDE_ROWS_HELD as i64);
        // A read inside the transaction sees every row.
        let q = Query::default();
        assert_eq!(s.query(StoredTable::Exchanges, &q).unwrap().len(), n);
        s.commit().unwrap();
        let rows = |t: &str| -> Vec<(i64, String, i64)> {
            s.conn
                .prepare(&format!("SELECT seq, id, at FROM {t} ORDER BY seq"))
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let exchanges: Vec<_> = appended.iter().map(|a| (a.0, a.1.clone(), a.4)).collect();
        let findings: Vec<_> = appended.iter().map(|a| (a.2, a.3.clone(), a.4)).collect();
        assert_eq!(rows("exchanges"), exchanges);
        assert_eq!(rows("findings"), findings);
    }

    #[test]
    fn rows_sort_by_their_column_stably_and_only_when_out_of_order() {
        let mut t = Rows::ordered_by("", 2, 1);
        for (row, at) in [(0, 5), (1, 3), (2, 5), (3, -1), (4, 3)] {
            t.cells.extend([Param::Integer(row), Param::Integer(at)]);
        }
        t.sort();
        assert_eq!(t.order, [3, 1, 4, 0, 2]);
        let mut sorted = Rows::ordered_by("", 2, 1);
        for (row, at) in [(0, 1), (1, 1), (2, 4)] {
            sorted
                .cells
                .extend([Param::Integer(row), Param::Integer(at)]);
        }
        sorted.sort();
        assert!(sorted.order.is_empty(), "inserted as appended");
        let mut plain = Rows::new("", 2);
        plain.cells.extend([
            Param::Integer(1),
            Param::Integer(1),
            Param::Integer(0),
            Param::Integer(0),
        ]);
        plain.sort();
        assert!(plain.order.is_empty());
    }

    #[test]
    fn a_set_batch_commits_every_that_many_appends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut s = Store::open(&path).unwrap();
        s.set_batch(3);
        // Read as another process would, without `Store::open`'s write lock.
        let seen = || {
            let reader = Connection::open(&path).unwrap();
            reader
                .query_row("SELECT COUNT(*) FROM records", [], |r| r.get::<_, i64>(0))
                .unwrap()
        };
        note(&mut s, "a");
        note(&mut s, "b");
        assert_eq!(seen(), 0);
        note(&mut s, "c");
        assert_eq!(seen(), 3);
        note(&mut s, "d");
        assert_eq!(seen(), 3);
        s.commit().unwrap();
        assert_eq!(seen(), 4);
    }

    #[test]
    fn record_count_follows_other_writers() {
        // The count is remembered between our transactions; another writer's
        // appends in between must still be counted.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let mut a = Store::open(&path).unwrap();
        note(&mut a, "a1");
        a.commit().unwrap();
        let mut b = Store::open(&path).unwrap();
        note(&mut b, "b1");
        note(&mut b, "b2");
        b.commit().unwrap();
        note(&mut a, "a2");
        a.commit().unwrap();
        assert_eq!(a.committed, Some((4, 4)));
        note(&mut a, "a3");
        a.commit().unwrap();
        let v = a.verify(dir.path()).unwrap();
        assert_eq!(v.head.records, 5);
        assert_eq!(v.head, a.head().unwrap());
    }

    #[test]
    fn records_cannot_be_updated_or_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("store.db")).unwrap();
        note(&mut s, "a");
        s.commit().unwrap();
        assert!(s.conn.execute("UPDATE records SET kind = 'x'", []).is_err());
        assert!(s.conn.execute("DELETE FROM records", []).is_err());
    }

    #[test]
    fn verify_names_an_altered_body_and_index_row() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("store.db")).unwrap();
        for i in 0..3 {
            note(&mut s, &i.to_string());
        }
        s.commit().unwrap();
        // Tampering needs the trigger gone, as an attacker with the file would do.
        s.conn
            .execute_batch("DROP TRIGGER records_no_update; UPDATE records SET body = CAST(replace(body, '\"1\"', '\"7\"') AS BLOB) WHERE seq = 2")
            .unwrap();
        match s.verify(dir.path()) {
            Err(VerifyError::Chain(c)) => assert_eq!(c.seq, 2),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn verify_names_an_index_row_that_disagrees_with_its_record() {
        use crate::exchange::{Exchange, SourceKind};
        use crate::store::record::{ExchangeBody, IngestBody};
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("store.db")).unwrap();
        note(&mut s, "first");
        let mut x = Exchange::new("x-01", SourceKind::Har, Timestamp::from_micros(5));
        x.host = "tracker.example".into();
        // SHA-256 of the empty evidence file written below.
        let sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        x.evidence.file_sha256 = Some(sha.into());
        let started = IngestBody {
            phase: Phase::Started,
            name: "a.har".into(),
            size: 0,
            sha256: sha.into(),
            kind: "har".into(),
            evidence: "evidence/a.har".into(),
            exchanges: None,
            findings: None,
            traffic: None,
            options: None,
            continues: None,
        };
        std::fs::create_dir(dir.path().join("evidence")).unwrap();
        std::fs::write(dir.path().join("evidence/a.har"), b"").unwrap();
        let ingest = s
            .append(
                Kind::Ingest,
                &started,
                Side::Ingest {
                    sha256: sha,
                    phase: Phase::Started,
                },
            )
            .unwrap();
        let b = ExchangeBody::of(&x);
        let side = Side::Exchange {
            ingest,
            id: &b.id,
            at: b.at,
            device: None,
            host: &b.host,
        };
        let seq = s.append(Kind::Exchange, &b, side).unwrap();
        s.commit().unwrap();
        s.verify(dir.path()).unwrap();
        s.conn
            .execute("UPDATE exchanges SET host = 'innocent.example'", [])
            .unwrap();
        match s.verify(dir.path()) {
            Err(VerifyError::Index(m)) => {
                assert!(m.contains(&format!("record {seq}")), "{m}")
            }
            other => panic!("{other:?}"),
        }
        // A removed index row is named too.
        s.conn.execute("DELETE FROM exchanges", []).unwrap();
        match s.verify(dir.path()) {
            Err(VerifyError::Index(m)) => {
                assert!(m.contains(&format!("has no row for record {seq}")), "{m}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_store_error_says_its_cause_once() {
        // A directory where the database file should be: SQLite cannot open it.
        let dir = tempfile::tempdir().unwrap();
        let Err(e) = Store::open(dir.path()) else {
            panic!("a directory opened as a store");
        };
        let e = anyhow::Error::from(e);
        let chain = format!("{e:#}");
        let cause = chain.rsplit(": ").next().unwrap();
        assert_eq!(chain.matches(cause).count(), 1, "{chain}");
    }

    #[test]
    fn verify_wants_each_file_a_capture_was_analysed_with_stored_before_it() {
        use crate::store::record::{IngestBody, IngestOptions, KIND_CASE, KIND_KEYLOG};
        let ingest = |phase, name: &str, kind: &str, sha: &str| IngestBody {
            phase,
            name: name.into(),
            size: 1,
            sha256: sha.repeat(64),
            kind: kind.into(),
            evidence: format!("evidence/{name}"),
            exchanges: None,
            findings: None,
            traffic: None,
            options: None,
            continues: None,
        };
        let options = IngestOptions {
            case_sha256: "c".repeat(64),
            device: None,
            all_apps: false,
            secrets_first: false,
            keylogs: vec!["d".repeat(64)],
            wlan_keys: Vec::new(),
            tunnel_ports: Vec::new(),
        };
        let mut capture = ingest(Phase::Started, "a.pcap", "pcap", "a");
        capture.options = Some(options);
        let mut complete = capture.clone();
        complete.phase = Phase::Complete;
        let case = ingest(Phase::Started, "consentry.toml", KIND_CASE, "c");
        let keylog = ingest(Phase::Started, "keys.log", KIND_KEYLOG, "d");
        let log = |list: &[&IngestBody]| -> Vec<(i64, IngestBody)> {
            (1..).zip(list.iter().map(|b| (*b).clone())).collect()
        };
        check_side_files(&log(&[&case, &keylog, &capture, &complete])).unwrap();
        // Without options (older stores) nothing is asked.
        check_side_files(&log(&[&ingest(Phase::Started, "b.pcap", "pcap", "b")])).unwrap();

        let e = check_side_files(&log(&[&case, &capture])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "ingest record 2 (a.pcap): analysed with key log dddddddddddddddd, which no ingest record before it stores"
        );
        // Stored after the capture, or as another kind, does not count.
        let e = check_side_files(&log(&[&keylog, &capture, &case])).unwrap_err();
        assert!(
            e.to_string().contains("with case file cccccccccccccccc"),
            "{e}"
        );
        let mut case_as_keylog = case.clone();
        case_as_keylog.kind = KIND_KEYLOG.into();
        assert!(check_side_files(&log(&[&case_as_keylog, &keylog, &capture])).is_err());
    }

    /// A store with one completed ingest of four exchanges (at 5, 10, 15, 20 µs) and
    /// a finding on the second; returns the exchanges' `seq`s.
    fn store_with_exchanges(dir: &Path) -> (Store, Vec<i64>) {
        use crate::exchange::{Exchange, SourceKind};
        use crate::store::record::{ExchangeBody, IngestBody};
        let mut s = Store::open(&dir.join("store.db")).unwrap();
        let sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        std::fs::create_dir(dir.join("evidence")).unwrap();
        std::fs::write(dir.join("evidence/a.har"), b"").unwrap();
        let mut ingest_body = IngestBody {
            phase: Phase::Started,
            name: "a.har".into(),
            size: 0,
            sha256: sha.into(),
            kind: "har".into(),
            evidence: "evidence/a.har".into(),
            exchanges: None,
            findings: None,
            traffic: None,
            options: None,
            continues: None,
        };
        let ingest = s
            .append(
                Kind::Ingest,
                &ingest_body,
                Side::Ingest {
                    sha256: sha,
                    phase: Phase::Started,
                },
            )
            .unwrap();
        let mut seqs = Vec::new();
        for i in 1..=4 {
            let mut x = Exchange::new(
                format!("x-{i}"),
                SourceKind::Har,
                Timestamp::from_micros(5 * i),
            );
            x.host = "tracker.example".into();
            x.evidence.file_sha256 = Some(sha.into());
            let b = ExchangeBody::of(&x);
            let side = Side::Exchange {
                ingest,
                id: &b.id,
                at: b.at,
                device: None,
                host: &b.host,
            };
            seqs.push(s.append(Kind::Exchange, &b, side).unwrap());
        }
        let at = Timestamp::from_micros(10);
        let finding = serde_json::json!({
            "id": "f-1", "at": at, "device": "phone", "rule": "share-before-consent",
            "destination": {"host": "tracker.example"}, "exchange": "x-2",
        });
        let side = Side::Finding {
            ingest,
            id: "f-1",
            at,
            device: "phone",
            rule: "share-before-consent",
            host: "tracker.example",
        };
        s.append(Kind::Finding, &finding, side).unwrap();
        ingest_body.phase = Phase::Complete;
        let side = Side::Ingest {
            sha256: sha,
            phase: Phase::Complete,
        };
        s.append(Kind::Ingest, &ingest_body, side).unwrap();
        s.commit().unwrap();
        (s, seqs)
    }

    fn stored_exchange_ids(s: &Store) -> Vec<String> {
        s.query(StoredTable::Exchanges, &Query::default())
            .unwrap()
            .iter()
            .map(|b| serde_json::from_str::<serde_json::Value>(b).unwrap()["id"].to_string())
            .collect()
    }

    #[test]
    fn prune_keeps_exchanges_with_findings_and_the_chain_verifiable() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, seqs) = store_with_exchanges(dir.path());
        let before = Timestamp::from_micros(16);
        let head = s.head().unwrap();
        let dry = s.prune(before, true).unwrap();
        assert_eq!(
            dry,
            Pruned {
                older: 3,
                pruned: 2,
                checkpoint: None
            }
        );
        assert_eq!(s.head().unwrap(), head, "a dry run writes nothing");

        let p = s.prune(before, false).unwrap();
        assert_eq!((p.older, p.pruned), (3, 2));
        let checkpoint = p.checkpoint.expect("a checkpoint record");
        assert_eq!(checkpoint, head.seq + 1);
        let v = s.verify(dir.path()).unwrap();
        assert_eq!(v.head.seq, checkpoint);
        assert_eq!(stored_exchange_ids(&s), [r#""x-2""#, r#""x-4""#]);
        // x-1 and x-3 keep their rows and hashes, without bodies.
        let empty: i64 = s
            .conn
            .query_row(
                "SELECT COUNT(*) FROM records WHERE length(body) = 0",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(empty, 2);
        assert_eq!(s.bodies(Kind::Exchange).unwrap().len(), 2);
        // One record's data: a pruned one has none, nor has a record never written.
        let x2 = s.record_data(seqs[1]).unwrap().unwrap();
        assert!(x2.starts_with(r#"{"id":"x-2","#), "{x2}");
        assert_eq!(s.record_data(seqs[0]).unwrap(), None);
        assert_eq!(s.record_data(head.seq + 100).unwrap(), None);
        // Nothing left to prune: no second checkpoint.
        let again = s.prune(before, false).unwrap();
        assert_eq!((again.older, again.pruned, again.checkpoint), (1, 0, None));
        s.vacuum().unwrap();
        s.verify(dir.path()).unwrap();
        // Only pruning may empty a body: other records stay append-only.
        for q in [
            format!("UPDATE records SET body = x'' WHERE seq = {}", seqs[3]),
            format!(
                "UPDATE records SET hash = zeroblob(32) WHERE seq = {}",
                seqs[0]
            ),
            format!("DELETE FROM records WHERE seq = {}", seqs[0]),
        ] {
            let e = s.conn.execute(&q, []).unwrap_err();
            assert!(e.to_string().contains("append-only"), "{q}: {e}");
        }
    }

    #[test]
    fn verify_catches_tampering_with_pruned_records() {
        type Tamper = fn(&Connection, &[i64]);
        let cases: [(&str, Tamper); 3] = [
            ("altered hash of a pruned record", |c, seqs| {
                c.execute_batch("DROP TRIGGER records_no_update").unwrap();
                c.execute(
                    "UPDATE records SET hash = zeroblob(32) WHERE seq = ?1",
                    [seqs[2]],
                )
                .unwrap();
            }),
            ("pruned mark removed", |c, seqs| {
                c.execute("DELETE FROM pruned WHERE seq = ?1", [seqs[0]])
                    .unwrap();
            }),
            ("a kept record emptied and marked", |c, seqs| {
                c.execute_batch("DROP TRIGGER records_no_update").unwrap();
                c.execute(
                    "INSERT INTO pruned(seq, checkpoint) SELECT ?1, checkpoint FROM pruned LIMIT 1",
                    [seqs[3]],
                )
                .unwrap();
                c.execute("UPDATE records SET body = x'' WHERE seq = ?1", [seqs[3]])
                    .unwrap();
                c.execute("DELETE FROM exchanges WHERE seq = ?1", [seqs[3]])
                    .unwrap();
            }),
        ];
        for (what, tamper) in cases {
            let dir = tempfile::tempdir().unwrap();
            let (mut s, seqs) = store_with_exchanges(dir.path());
            s.prune(Timestamp::from_micros(16), false).unwrap();
            s.verify(dir.path()).unwrap();
            tamper(&s.conn, &seqs);
            match s.verify(dir.path()) {
                Err(VerifyError::Chain(e)) => eprintln!("{what}: {e}"),
                other => panic!("{what}: {other:?}"),
            }
        }
    }
}
