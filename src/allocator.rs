//! The binary's global allocator: mimalloc, entered through its plain `mi_malloc`
//! family whenever the layout allows it.
//!
//! `mimalloc::MiMalloc` calls `mi_malloc_aligned(size, align)` for every allocation.
//! For the usual alignments (1 to 8) that path adds checks before mimalloc's fast path,
//! and for blocks over 1 KiB (bodies, decoded values) it goes through the generic
//! aligned path, which fails a "naturally aligned" test and over-allocates by
//! `align - 1` bytes: about 20 instructions per allocation out of 60 (callgrind on the
//! capture bench). `mi_malloc` returns blocks aligned to at least a pointer's size,
//! so layouts aligned to 8 or less take it; larger alignments keep the aligned calls.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::{c_int, c_long, c_void};

use libmimalloc_sys as ffi;

/// Alignment every `mi_malloc` block has: mimalloc's size classes are multiples of
/// the word size and its pages start word-aligned (its own `mi_realloc_aligned`
/// hands alignments up to this to the plain `mi_realloc` for the same reason).
const PLAIN_ALIGN: usize = std::mem::size_of::<usize>();

/// mimalloc as the global allocator; see the module doc.
pub struct Mimalloc;

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_t` (`include/mimalloc.h`; the
/// `libmimalloc-sys` bindings do not name it).
const MI_OPTION_PURGE_DELAY: c_int = 15;

unsafe extern "C" {
    /// mimalloc's option setter (`options.c`); not thread safe.
    fn mi_option_set(option: c_int, value: c_long);
}

impl Mimalloc {
    /// Stops mimalloc from returning freed memory to the kernel for the rest of the
    /// process, for a short batch run whose peak memory is bounded anyway.
    ///
    /// By default mimalloc purges memory that stayed free for a second
    /// (`MADV_DONTNEED`); the next allocation there faults a fresh page in, which the
    /// kernel zeroes first, 2 MiB at a time on a transparent huge page. `analyze -j 1`
    /// on the 522 MB bench capture: 2 241 -> 448 page faults, system time 0.24 ->
    /// 0.07 s, task clock −8 %, same peak RSS (57 -> 58 MB).
    ///
    /// Call it before the process starts a thread: mimalloc's option setter is not
    /// thread safe. Long-running commands (proxy, tap) purge later instead, so that
    /// their memory returns to its baseline after a burst
    /// ([`Mimalloc::purge_freed_memory_after`]).
    pub fn keep_freed_memory(&self) {
        // SAFETY: a plain setter of mimalloc's option table, called (per the contract
        // above) while no other thread allocates; -1 is mimalloc's documented "never
        // purge" value for this option.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
    }

    /// Makes mimalloc return memory to the kernel only once it has stayed free for
    /// `delay` (rounded down to milliseconds), for a long-running server whose memory
    /// should go back to its baseline after a burst, but not in the middle of one.
    ///
    /// Under a steady load mimalloc's one-second default purges pages that empty and
    /// refill within seconds: keep-alive HTTPS through `proxy` at 50 connections took
    /// ~0.045 page faults per request (3 821 over 80 000 requests), each zeroing a
    /// fresh (often huge) page; with 10 s, 10 to 24 over 40 000. Same contract as
    /// [`Mimalloc::keep_freed_memory`]: call it before the process starts a thread.
    pub fn purge_freed_memory_after(&self, delay: std::time::Duration) {
        let ms = c_long::try_from(delay.as_millis()).unwrap_or(c_long::MAX);
        // SAFETY: as in `keep_freed_memory`; any non-negative value is a delay in ms.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, ms) }
    }
}

// SAFETY: every method forwards to mimalloc, which returns null or a block of at least
// `size` bytes aligned to `align` (the plain calls only when `align <= PLAIN_ALIGN`,
// which their blocks always meet; see `PLAIN_ALIGN`), frees any block it returned
// through `mi_free` whichever call made it, and keeps the first `min(old, new)` bytes
// on reallocation. `GlobalAlloc`'s callers guarantee non-zero sizes and pointers that
// came from this allocator.
unsafe impl GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= PLAIN_ALIGN {
            // SAFETY: see the impl.
            unsafe { ffi::mi_malloc(layout.size()).cast() }
        } else {
            // SAFETY: see the impl.
            unsafe { ffi::mi_malloc_aligned(layout.size(), layout.align()).cast() }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= PLAIN_ALIGN {
            // SAFETY: see the impl.
            unsafe { ffi::mi_zalloc(layout.size()).cast() }
        } else {
            // SAFETY: see the impl.
            unsafe { ffi::mi_zalloc_aligned(layout.size(), layout.align()).cast() }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator (the caller's guarantee).
        unsafe { ffi::mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = ptr.cast::<c_void>();
        if layout.align() <= PLAIN_ALIGN {
            // SAFETY: see the impl.
            unsafe { ffi::mi_realloc(p, new_size).cast() }
        } else {
            // SAFETY: see the impl.
            unsafe { ffi::mi_realloc_aligned(p, new_size, layout.align()).cast() }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Held by every test that calls mimalloc: `keep_freed_memory`'s setter must not
    /// run while another thread allocates through it (these tests' own harness uses
    /// the system allocator).
    static MIMALLOC: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// Allocates, fills, grows, shrinks and frees blocks of many sizes and alignments
    /// (both sides of `PLAIN_ALIGN` and of mimalloc's small, medium and large size
    /// classes), checking alignment, zeroing and that contents survive reallocation.
    #[test]
    fn blocks_are_aligned_zeroed_and_kept() {
        let _only = MIMALLOC.lock().unwrap_or_else(|e| e.into_inner());
        let a = Mimalloc;
        let sizes = [1usize, 7, 8, 24, 40, 100, 1000, 1025, 5000, 70_000, 600_000];
        for align in [1usize, 2, 4, 8, 16, 32, 64, 4096] {
            for &size in &sizes {
                let size = size.next_multiple_of(align);
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: non-zero size; every block is freed once, by this allocator.
                unsafe {
                    let p = a.alloc(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "alloc {size}/{align}");
                    for i in 0..size {
                        *p.add(i) = i as u8;
                    }
                    let bigger = size * 3 + 5;
                    let q = a.realloc(p, layout, bigger);
                    assert!(!q.is_null());
                    assert_eq!(q as usize % align, 0, "realloc {size}/{align}");
                    for i in 0..size {
                        assert_eq!(*q.add(i), i as u8, "grown {size}/{align} at {i}");
                    }
                    let grown = Layout::from_size_align(bigger, align).unwrap();
                    let smaller = size.div_ceil(2);
                    let r = a.realloc(q, grown, smaller);
                    assert!(!r.is_null());
                    assert_eq!(r as usize % align, 0, "shrink {size}/{align}");
                    for i in 0..smaller {
                        assert_eq!(*r.add(i), i as u8, "shrunk {size}/{align} at {i}");
                    }
                    a.dealloc(r, Layout::from_size_align(smaller, align).unwrap());

                    // Zeroed even where a freed, written block is reused.
                    let z = a.alloc_zeroed(layout);
                    assert!(!z.is_null());
                    assert_eq!(z as usize % align, 0, "zalloc {size}/{align}");
                    assert!((0..size).all(|i| *z.add(i) == 0), "zeroed {size}/{align}");
                    a.dealloc(z, layout);
                }
            }
        }
    }

    unsafe extern "C" {
        fn mi_option_get(option: c_int) -> c_long;
    }

    /// `MI_OPTION_PURGE_DELAY` names mimalloc's purge delay (an index that moved
    /// would silently set another option): its default is 1 000 ms in mimalloc v3,
    /// and the setters' values read back ("never" after `keep_freed_memory`).
    #[test]
    fn the_setters_set_the_purge_delay() {
        let _only = MIMALLOC.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: reads mimalloc's option table; `mi_option_get` is thread safe.
        let get = || unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) };
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(get(), 1000);
        }
        Mimalloc.purge_freed_memory_after(std::time::Duration::from_millis(10_500));
        assert_eq!(get(), 10_500);
        Mimalloc.keep_freed_memory();
        assert_eq!(get(), -1);
    }
}
