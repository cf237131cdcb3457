//! SQLite's memory allocator: the process's own global allocator (mimalloc in the
//! `consentry` binary) instead of SQLite's default, glibc `malloc` behind a global
//! mutex that keeps memory statistics.
//!
//! Why: the proxy's analysis thread appends every exchange to the store, and in
//! issue 4's keep-alive profile SQLite's allocations (glibc `malloc`, `free`, their
//! arena bookkeeping and the statistics mutex around each call) were about a twentieth
//! of that thread's CPU. With the global allocator they cost what the rest of the
//! crate's allocations cost, and nothing is locked per call.
//!
//! Policy: installed once per process, by [`install`], before the first connection
//! (`Store::open` calls it). SQLite accepts a new allocator only before it is
//! initialised; if something opened a connection earlier, the call fails and SQLite
//! keeps its default allocator, which is only slower. Memory statistics
//! (`SQLITE_CONFIG_MEMSTATUS`) are turned off: nothing here reads them
//! (`sqlite3_memory_used` then reports 0) and they are what takes the mutex.
//!
//! Each block carries its size in a header of [`HEADER`] bytes (Rust's allocator
//! needs the layout on free; SQLite asks for a block's size with `xSize`), and is
//! aligned to 16 bytes (SQLite needs 8).

use std::alloc::{self, Layout};
use std::ffi::{c_int, c_void};
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use rusqlite::ffi;

/// Bytes before each block that hold its requested size (a `usize`); 16 keeps the
/// block itself 16-aligned.
const HEADER: usize = 16;
/// Alignment of every block (and of its header).
const ALIGN: usize = 16;

/// The layout of a block of `size` bytes with its header; `None` when too large.
fn layout(size: usize) -> Option<Layout> {
    Layout::from_size_align(size.checked_add(HEADER)?, ALIGN).ok()
}

/// Writes the header at `base` and returns the block after it.
///
/// # Safety
/// `base` is the start of an allocation of `layout(size)`.
unsafe fn finish(base: *mut u8, size: usize) -> *mut c_void {
    // SAFETY: the allocation is at least HEADER (16) bytes long and 16-aligned, so a
    // usize fits at its start, aligned; the block starts HEADER bytes in, inside it
    // (or one past its end for a zero-sized block, which SQLite never uses).
    unsafe {
        base.cast::<usize>().write(size);
        base.add(HEADER).cast()
    }
}

/// The start of the allocation of the block `p` and the block's size.
///
/// # Safety
/// `p` was returned by [`x_malloc`] or [`x_realloc`] and not freed.
unsafe fn header(p: *mut c_void) -> (*mut u8, usize) {
    // SAFETY: such a block starts HEADER bytes into its allocation, whose first
    // bytes hold the size (`finish`).
    unsafe {
        let base = p.cast::<u8>().sub(HEADER);
        (base, base.cast::<usize>().read())
    }
}

unsafe extern "C" fn x_malloc(n: c_int) -> *mut c_void {
    let Ok(size) = usize::try_from(n) else {
        return ptr::null_mut();
    };
    let Some(l) = layout(size) else {
        return ptr::null_mut();
    };
    // SAFETY: `l` is at least HEADER bytes, never zero-sized.
    let base = unsafe { alloc::alloc(l) };
    if base.is_null() {
        return ptr::null_mut();
    }
    // SAFETY: `base` is an allocation of `layout(size)`.
    unsafe { finish(base, size) }
}

unsafe extern "C" fn x_free(p: *mut c_void) {
    if p.is_null() {
        return;
    }
    // SAFETY: SQLite frees only blocks this allocator returned, once.
    let (base, size) = unsafe { header(p) };
    // The layout was valid when the block was allocated with it.
    if let Some(l) = layout(size) {
        // SAFETY: `base` was allocated with `l`.
        unsafe { alloc::dealloc(base, l) };
    }
}

unsafe extern "C" fn x_realloc(p: *mut c_void, n: c_int) -> *mut c_void {
    // SQLite's own `sqlite3Realloc` turns a null block into a malloc and a size of
    // 0 into a free before it calls this; handled here anyway.
    if p.is_null() {
        // SAFETY: as `x_malloc`.
        return unsafe { x_malloc(n) };
    }
    let Ok(size) = usize::try_from(n) else {
        return ptr::null_mut();
    };
    let Some(new) = layout(size) else {
        return ptr::null_mut();
    };
    // SAFETY: SQLite reallocates only live blocks of this allocator.
    let (base, old_size) = unsafe { header(p) };
    let Some(old) = layout(old_size) else {
        return ptr::null_mut();
    };
    // SAFETY: `base` was allocated with `old`; the new size is non-zero and its
    // layout valid (checked above), with the same alignment.
    let moved = unsafe { alloc::realloc(base, old, new.size()) };
    if moved.is_null() {
        // The old block is untouched, as SQLite expects of a failed realloc.
        return ptr::null_mut();
    }
    // SAFETY: `moved` is an allocation of `layout(size)`.
    unsafe { finish(moved, size) }
}

unsafe extern "C" fn x_size(p: *mut c_void) -> c_int {
    if p.is_null() {
        return 0;
    }
    // SAFETY: SQLite asks only about live blocks of this allocator.
    let (_, size) = unsafe { header(p) };
    // Every size came from a c_int.
    c_int::try_from(size).unwrap_or(c_int::MAX)
}

unsafe extern "C" fn x_roundup(n: c_int) -> c_int {
    // Multiples of 8, as SQLite's default allocator rounds.
    n.checked_add(7).map_or(n, |m| m & !7)
}

unsafe extern "C" fn x_init(_: *mut c_void) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_shutdown(_: *mut c_void) {}

/// Makes SQLite allocate with the global allocator and drop its memory statistics,
/// once per process; without effect (SQLite keeps its own) when SQLite is already
/// initialised. Returns whether the allocator is in place.
pub fn install() -> bool {
    static ONCE: Once = Once::new();
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    ONCE.call_once(|| {
        let methods = ffi::sqlite3_mem_methods {
            xMalloc: Some(x_malloc),
            xFree: Some(x_free),
            xRealloc: Some(x_realloc),
            xSize: Some(x_size),
            xRoundup: Some(x_roundup),
            xInit: Some(x_init),
            xShutdown: Some(x_shutdown),
            pAppData: ptr::null_mut(),
        };
        // SAFETY: sqlite3_config is called before any other SQLite call of this
        // process or fails with SQLITE_MISUSE and changes nothing; SQLite copies the
        // methods struct before returning; the functions follow the contract of
        // `sqlite3_mem_methods` (blocks 8-aligned, xSize the size asked for,
        // xRealloc leaves the block alone on failure).
        let ok = unsafe {
            ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as c_int);
            ffi::sqlite3_config(
                ffi::SQLITE_CONFIG_MALLOC,
                &methods as *const ffi::sqlite3_mem_methods,
            ) == ffi::SQLITE_OK
        };
        INSTALLED.store(ok, Ordering::Relaxed);
    });
    // `call_once` returning orders the store above before this load.
    INSTALLED.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_keep_their_size_alignment_and_contents() {
        // SAFETY: the allocator's functions used as SQLite uses them.
        unsafe {
            let p = x_malloc(13);
            assert!(!p.is_null());
            assert_eq!(p as usize % 8, 0);
            assert_eq!(x_size(p), 13);
            ptr::copy_nonoverlapping(b"consent store".as_ptr(), p.cast::<u8>(), 13);
            let q = x_realloc(p, 4000);
            assert!(!q.is_null());
            assert_eq!(x_size(q), 4000);
            let kept = std::slice::from_raw_parts(q.cast::<u8>(), 13);
            assert_eq!(kept, b"consent store");
            let r = x_realloc(q, 5);
            assert_eq!(x_size(r), 5);
            assert_eq!(std::slice::from_raw_parts(r.cast::<u8>(), 5), b"conse");
            x_free(r);
            x_free(ptr::null_mut());
            assert!(x_malloc(-1).is_null());
            assert_eq!(x_size(ptr::null_mut()), 0);
            assert_eq!(x_roundup(1), 8);
            assert_eq!(x_roundup(16), 16);
            assert_eq!(x_roundup(c_int::MAX), c_int::MAX);
        }
    }

    #[test]
    fn a_store_works_whichever_allocator_sqlite_got() {
        // In a test binary other tests may have initialised SQLite first: then
        // `install` reports false and SQLite keeps its own allocator.
        let installed = install();
        assert_eq!(install(), installed);
        let dir = tempfile::tempdir().unwrap();
        let mut s = super::super::Store::open(&dir.path().join("store.db")).unwrap();
        for i in 0..300 {
            s.append(
                super::super::record::Kind::Annotation,
                &super::super::record::AnnotationBody {
                    text: format!("note {i} {}", "x".repeat(i * 7)),
                },
                super::super::db::Side::None,
            )
            .unwrap();
        }
        s.commit().unwrap();
        assert_eq!(s.head().unwrap().seq, 300);
        let bodies = s.bodies(super::super::record::Kind::Annotation).unwrap();
        assert_eq!(bodies.len(), 300);
        assert!(bodies[299].contains(&format!("note 299 {}", "x".repeat(299 * 7))));
    }
}
