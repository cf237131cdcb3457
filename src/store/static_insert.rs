//! The store's multi-row `INSERT`s, prepared once and bound without copies.
//!
//! Why: rusqlite binds every text and blob `SQLITE_TRANSIENT`, so SQLite mallocs a
//! copy of each (record bodies of a few KiB included) and frees it when the statement
//! is reset; for a proxy exchange that was ~11 000 instructions of binding and
//! unbinding on the analysis thread, with glibc's allocator (SQLite's) behind it.
//! Here cells are bound `SQLITE_STATIC`: SQLite reads them where they are, while
//! [`Statements::execute`] holds the borrow of the cells, and drops every binding
//! before it returns.

use std::ffi::{c_char, c_int, CStr};
use std::ptr::NonNull;

use rusqlite::{ffi, Connection};

/// One cell to bind. Text and blobs are borrowed for the statement's step only.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Cell<'a> {
    Null,
    Integer(i64),
    Text(&'a [u8]),
    Blob(&'a [u8]),
}

/// What names a statement: its table's insert prefix and its number of rows.
pub(super) type Key = (&'static str, usize);

/// Prepared statements by [`Key`], finalized on drop. Owned by the `Store` beside
/// its `Connection` and declared before it, so they are finalized before the
/// connection closes (an unfinalized statement keeps `sqlite3_close` from closing).
pub(super) struct Statements {
    prepared: Vec<(Key, NonNull<ffi::sqlite3_stmt>)>,
}

// SAFETY: a statement is used only through `&mut Statements`, together with the
// connection it was prepared on (both owned by one `Store`, which rusqlite's
// `Connection: Send` lets move between threads); SQLite allows a connection and its
// statements to be used from any thread, one thread at a time.
unsafe impl Send for Statements {}

impl Statements {
    pub(super) fn new() -> Statements {
        Statements {
            prepared: Vec::new(),
        }
    }

    /// Runs the statement `key` (prepared from `sql()` on first use on `conn`, which
    /// must be the connection every earlier call used) with `cells` bound to its
    /// parameters in order, to the end. Fewer cells than parameters leave the rest
    /// `NULL`.
    pub(super) fn execute<'a>(
        &mut self,
        conn: &Connection,
        key: Key,
        sql: impl FnOnce() -> String,
        cells: impl IntoIterator<Item = Cell<'a>>,
    ) -> rusqlite::Result<()> {
        // SAFETY: the handle is only passed to SQLite calls below, while `conn`
        // (borrowed) keeps it open.
        let db = unsafe { conn.handle() };
        let stmt = self.prepare(db, key, sql)?;
        let bound = bind_all(db, stmt, cells);
        let stepped = match bound {
            // SAFETY: `stmt` is a live statement of `db`; every pointer bound to it
            // borrows from `cells`, alive for this whole call.
            Ok(()) => match unsafe { ffi::sqlite3_step(stmt.as_ptr()) } {
                ffi::SQLITE_DONE | ffi::SQLITE_ROW => Ok(()),
                rc => Err(error(db, rc)),
            },
            Err(e) => Err(e),
        };
        // SAFETY: as above. After these two calls SQLite holds no pointer to the
        // cells (bindings are NULL again), so nothing outlives the borrow.
        unsafe {
            ffi::sqlite3_reset(stmt.as_ptr());
            ffi::sqlite3_clear_bindings(stmt.as_ptr());
        }
        stepped
    }

    fn prepare(
        &mut self,
        db: *mut ffi::sqlite3,
        key: Key,
        sql: impl FnOnce() -> String,
    ) -> rusqlite::Result<NonNull<ffi::sqlite3_stmt>> {
        if let Some((_, s)) = self.prepared.iter().find(|(k, _)| *k == key) {
            return Ok(*s);
        }
        let sql = sql();
        let len = c_int::try_from(sql.len()).map_err(|_| rusqlite::Error::InvalidQuery)?;
        let mut stmt = std::ptr::null_mut();
        // SAFETY: `sql` is `len` valid bytes (no terminator needed with a length);
        // `stmt` is an out pointer we own.
        let rc = unsafe {
            ffi::sqlite3_prepare_v2(
                db,
                sql.as_ptr().cast::<c_char>(),
                len,
                &mut stmt,
                std::ptr::null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(error(db, rc));
        }
        let stmt = NonNull::new(stmt).ok_or(rusqlite::Error::InvalidQuery)?;
        self.prepared.push((key, stmt));
        Ok(stmt)
    }
}

impl Drop for Statements {
    fn drop(&mut self) {
        for (_, s) in self.prepared.drain(..) {
            // SAFETY: each was prepared by `prepare` and is finalized once, here,
            // while the connection is still open (see the type's doc).
            unsafe {
                ffi::sqlite3_finalize(s.as_ptr());
            }
        }
    }
}

/// Binds `cells` to parameters 1, 2, …; more cells than parameters is an error.
fn bind_all<'a>(
    db: *mut ffi::sqlite3,
    stmt: NonNull<ffi::sqlite3_stmt>,
    cells: impl IntoIterator<Item = Cell<'a>>,
) -> rusqlite::Result<()> {
    let s = stmt.as_ptr();
    for (i, cell) in cells.into_iter().enumerate() {
        let i = c_int::try_from(i + 1).map_err(|_| rusqlite::Error::InvalidQuery)?;
        // SAFETY: `s` is a live statement; text and blob pointers are valid for
        // their lengths and stay so until `execute` clears the bindings
        // (`SQLITE_STATIC`: SQLite keeps the pointer, copies nothing).
        let rc = unsafe {
            match cell {
                Cell::Null => ffi::sqlite3_bind_null(s, i),
                Cell::Integer(v) => ffi::sqlite3_bind_int64(s, i, v),
                Cell::Text(t) => ffi::sqlite3_bind_text64(
                    s,
                    i,
                    non_null(t),
                    t.len() as ffi::sqlite3_uint64,
                    ffi::SQLITE_STATIC(),
                    ffi::SQLITE_UTF8 as std::ffi::c_uchar,
                ),
                // As rusqlite binds an empty blob: a zero-length blob, not NULL.
                Cell::Blob([]) => ffi::sqlite3_bind_zeroblob(s, i, 0),
                Cell::Blob(b) => ffi::sqlite3_bind_blob64(
                    s,
                    i,
                    b.as_ptr().cast(),
                    b.len() as ffi::sqlite3_uint64,
                    ffi::SQLITE_STATIC(),
                ),
            }
        };
        if rc != ffi::SQLITE_OK {
            return Err(error(db, rc));
        }
    }
    Ok(())
}

/// A pointer SQLite reads `t.len()` bytes from: an empty text points at a static
/// empty string (a null pointer would bind `NULL`).
fn non_null(t: &[u8]) -> *const c_char {
    if t.is_empty() {
        c"".as_ptr()
    } else {
        t.as_ptr().cast()
    }
}

/// The error of `rc` as rusqlite reports it (code and the connection's message).
fn error(db: *mut ffi::sqlite3, rc: c_int) -> rusqlite::Error {
    // SAFETY: `db` is open; `sqlite3_errmsg` returns a NUL-terminated string owned by
    // SQLite, copied here before any other call on the connection.
    let msg = unsafe {
        let p = ffi::sqlite3_errmsg(db);
        (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned())
    };
    rusqlite::Error::SqliteFailure(ffi::Error::new(rc), msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t(a, b, c, d); CREATE UNIQUE INDEX t_a ON t(a)")
            .unwrap();
        c
    }

    fn rows(c: &Connection) -> Vec<(rusqlite::types::Value, rusqlite::types::Value)> {
        let mut s = c
            .prepare("SELECT typeof(b) || ':' || typeof(c), d FROM t ORDER BY rowid")
            .unwrap();
        s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn binds_as_rusqlite_does() {
        let ours = table();
        let theirs = table();
        let mut st = Statements::new();
        let cells = [
            (1, Cell::Text(b"text"), Cell::Blob(b"\x00\xffblob")),
            (2, Cell::Text(b""), Cell::Blob(b"")),
            (3, Cell::Null, Cell::Integer(-7)),
        ];
        for (a, b, c) in cells {
            // The buffer is dropped right after: SQLite must not keep reading it.
            let d = format!("row {a}").into_bytes();
            st.execute(
                &ours,
                ("t", 1),
                || "INSERT INTO t(a, b, c, d) VALUES (?, ?, ?, ?)".into(),
                [Cell::Integer(a), b, c, Cell::Blob(&d)],
            )
            .unwrap();
            let value = |cell: Cell<'_>| match cell {
                Cell::Null => rusqlite::types::Value::Null,
                Cell::Integer(i) => rusqlite::types::Value::Integer(i),
                Cell::Text(t) => {
                    rusqlite::types::Value::Text(String::from_utf8(t.to_vec()).unwrap())
                }
                Cell::Blob(b) => rusqlite::types::Value::Blob(b.to_vec()),
            };
            theirs
                .execute(
                    "INSERT INTO t(a, b, c, d) VALUES (?, ?, ?, ?)",
                    rusqlite::params![a, value(b), value(c), d],
                )
                .unwrap();
        }
        assert_eq!(rows(&ours), rows(&theirs));
        let dump = |c: &Connection| -> Vec<Vec<rusqlite::types::Value>> {
            let mut s = c
                .prepare("SELECT a, b, c, d FROM t ORDER BY rowid")
                .unwrap();
            s.query_map([], |r| Ok((0..4).map(|i| r.get(i).unwrap()).collect()))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        assert_eq!(dump(&ours), dump(&theirs));
        // One statement, prepared once.
        assert_eq!(st.prepared.len(), 1);
    }

    #[test]
    fn missing_cells_are_null_and_errors_are_sqlites() {
        let ab = || "INSERT INTO t(a, b) VALUES (?, ?)".to_string();
        let c = table();
        let mut st = Statements::new();
        st.execute(&c, ("t", 2), ab, [Cell::Integer(1)]).unwrap();
        let b: Option<i64> = c.query_row("SELECT b FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(b, None);
        let dup = st
            .execute(&c, ("t", 2), ab, [Cell::Integer(1)])
            .unwrap_err();
        assert_eq!(
            dup.sqlite_error_code(),
            Some(rusqlite::ErrorCode::ConstraintViolation)
        );
        // Too many cells.
        assert!(st
            .execute(&c, ("t", 2), ab, [Cell::Integer(2), Cell::Null, Cell::Null])
            .is_err());
        // A statement that does not prepare.
        assert!(st
            .execute(
                &c,
                ("nowhere", 1),
                || "INSERT INTO nowhere VALUES (?)".into(),
                []
            )
            .is_err());
        // The statement still works after the errors.
        st.execute(&c, ("t", 2), ab, [Cell::Integer(3)]).unwrap();
        let n: i64 = c
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2);
    }
}
