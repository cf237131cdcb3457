//! Reading a file that is read once, start to end, with direct I/O (Linux
//! `O_DIRECT`): the device writes into our buffer and the kernel copies nothing.
//!
//! A buffered `read` copies every byte from the page cache into the caller's
//! buffer. For a capture of several gigabytes that is read once, the copy is pure
//! cost: a quarter to a half of the CPU time of `analyze -j 1` on the 522 MB bench
//! file on our VM (system time 0.6–3.0 s against 2.0–2.3 s of user time; perf:
//! `_copy_to_iter` up to 40 % of the samples), and the pages it leaves behind push
//! the rest of the machine's cache out. Direct reads need the buffer's address, the
//! file offset and the length aligned to the device's block size, so this reader
//! reads aligned chunks into a buffer of its own and hands them out from there.
//!
//! Direct I/O is an optimisation, never a requirement. It is used only for regular
//! files on the local disk file systems listed in [`DIRECT_IO_FILE_SYSTEMS`]: on a
//! network file system a direct read is a synchronous round trip without the
//! kernel's read-ahead. It is not used for a file that is (nearly) all in the page
//! cache already ([`mostly_cached`]): copying it from memory is cheaper than
//! fetching it from the device again, chunk by chunk without read-ahead (the 522 MB
//! bench file, cached: 2.1–2.7 s of wall time buffered against 2.8–3.4 s direct,
//! CPU time no higher). Elsewhere, when the file system refuses the flag, or when a
//! read fails with `EINVAL`, the reader reads through the page cache at the same
//! position. After a short read (the end of the file,
//! or a file still being written) it reads buffered from then on, so an offset
//! that is no longer aligned never reaches a direct read.

use std::fs::File;
use std::io::{self, Read};

/// Alignment of the buffer's address, of each read's length and of the file
/// offset: 4 KiB covers the logical block size of every common device.
const ALIGN: usize = 4096;

/// Bytes asked of the device per read: system time on the 522 MB bench file was
/// 0.23–0.33 s with 256 KiB reads, 0.06–0.09 s with 1 MiB and 0.04–0.07 s with
/// 4 MiB (three runs each, against 0.60–0.79 s buffered).
const CHUNK: usize = 4 << 20;

/// The least a caller's read must ask for, at an aligned address, to have the device
/// write into the caller's buffer rather than this reader's.
pub const DIRECT_READ_LEN: usize = CHUNK;

/// Bytes of the first read into this reader's own buffer: a caller that then reads
/// into aligned buffers of its own (the capture reader) never needs a whole chunk
/// here (4 MiB less memory).
const FIRST_CHUNK: usize = 64 << 10;

/// File systems whose direct reads are used (`statfs` magic numbers, from Linux's
/// `magic.h`): ext2/3/4, XFS, Btrfs, F2FS, and overlayfs (containers), which hands
/// direct I/O to the file system under it or refuses the flag.
const DIRECT_IO_FILE_SYSTEMS: [(u32, &str); 5] = [
    (0xEF53, "ext2/3/4"),
    (0x5846_5342, "XFS"),
    (0x9123_683E, "Btrfs"),
    (0xF2F5_2010, "F2FS"),
    (0x794C_7630, "overlayfs"),
];

/// Pages of a file [`mostly_cached`] asks about, spread evenly over it.
const RESIDENCY_SAMPLES: usize = 256;

/// A [`Read`] over a file positioned at an aligned offset (normally its start).
pub struct DirectReader {
    file: File,
    /// Allocated by the first read that needs it: `chunk + ALIGN` bytes, the
    /// aligned window starting at `window`.
    buf: Vec<u8>,
    window: usize,
    /// Bytes of the next read into `buf`: [`FIRST_CHUNK`], then [`CHUNK`].
    chunk: usize,
    /// Unread bytes are `buf[window + start .. window + end]`.
    start: usize,
    end: usize,
    direct: bool,
}

impl DirectReader {
    /// Wraps `file`, switching it to direct I/O when `want_direct` is set and the
    /// platform and file system allow it.
    pub fn new(file: File, want_direct: bool) -> Self {
        let direct = want_direct && enable_direct(&file);
        DirectReader {
            file,
            buf: Vec::new(),
            window: 0,
            chunk: FIRST_CHUNK,
            start: 0,
            end: 0,
            direct,
        }
    }

    /// Whether reads still go to the device directly (for tests and diagnostics).
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    /// Reads the next chunk into the window: the bytes read, 0 at the end (or when
    /// no aligned window could be had: direct reads then stop).
    fn fill(&mut self) -> io::Result<usize> {
        let chunk = self.chunk;
        self.start = 0;
        self.end = 0;
        if self.buf.len() < chunk + ALIGN {
            self.buf = vec![0u8; chunk + ALIGN];
            self.window = self.buf.as_ptr().align_offset(ALIGN);
            if self.window >= ALIGN {
                // `align_offset` may decline; buffered reads need no window.
                self.stop_direct();
                return Ok(0);
            }
        }
        let asked = direct_len(chunk, remaining(&self.file));
        let window = self
            .buf
            .get_mut(self.window..self.window + asked)
            .ok_or_else(|| io::Error::other("direct read window out of range"))?;
        let n = self.file.read(window)?;
        self.end = n;
        self.chunk = CHUNK;
        if n < asked {
            // The end of the file, or a file still growing: what follows is at an
            // unaligned offset.
            self.stop_direct();
        }
        Ok(n)
    }

    fn stop_direct(&mut self) {
        self.direct = false;
        disable_direct(&self.file);
    }

    /// Reads the next whole blocks straight into `out` when it can take them: an
    /// aligned destination of at least a chunk. `None` when it cannot, or when the
    /// file system refused the read (direct reads then stop).
    fn read_into(&mut self, out: &mut [u8]) -> Option<io::Result<usize>> {
        let whole = out.len() & !(ALIGN - 1);
        if whole < CHUNK || out.as_ptr().align_offset(ALIGN) != 0 {
            return None;
        }
        let asked = direct_len(whole, remaining(&self.file));
        match self.file.read(out.get_mut(..asked)?) {
            Ok(n) => {
                if n < asked {
                    // As in `fill`: the end of the file, or a file still growing.
                    self.stop_direct();
                }
                Some(Ok(n))
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                self.stop_direct();
                None
            }
            Err(e) => Some(Err(e)),
        }
    }
}

impl Read for DirectReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.start == self.end && self.direct {
            // The caller's buffer, when it suits the device, saves copying every
            // byte from ours (the capture reader aligns its refills for this).
            if let Some(read) = self.read_into(out) {
                return read;
            }
        }
        if self.start == self.end && self.direct {
            match self.fill() {
                Ok(_) => {}
                // The file system took the flag but refuses the read: the position
                // has not moved, read it buffered.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => self.stop_direct(),
                Err(e) => return Err(e),
            }
        }
        if self.start < self.end {
            let unread = self
                .buf
                .get(self.window + self.start..self.window + self.end)
                .unwrap_or_default();
            let n = unread.len().min(out.len());
            out[..n].copy_from_slice(&unread[..n]);
            self.start += n;
            return Ok(n);
        }
        self.file.read(out)
    }
}

/// Bytes a direct read asks for when the caller has room for `room` (aligned) and
/// the file has `remaining` bytes after the position (`None`: unknown): no more
/// than the file's rest rounded up to a block. A direct read past the end of the
/// file has the kernel zero the caller's buffer there (ext4, XFS: `iov_iter_zero`
/// for the hole), 4 MiB for each small file of a capture cut into many.
fn direct_len(room: usize, remaining: Option<u64>) -> usize {
    let Some(remaining) = remaining.and_then(|r| usize::try_from(r).ok()) else {
        return room;
    };
    // At least a block: at the end (nothing remaining) the read returns 0, short,
    // and direct reads stop as after any short read.
    let blocks = remaining.div_ceil(ALIGN).max(1);
    blocks.saturating_mul(ALIGN).min(room)
}

/// Bytes of `file` after its position, as its size is now.
fn remaining(file: &File) -> Option<u64> {
    use std::io::Seek;
    let len = file.metadata().ok()?.len();
    let mut file = file;
    let at = file.stream_position().ok()?;
    Some(len.saturating_sub(at))
}

/// Sets `O_DIRECT` on `file` if it is a regular file at an aligned offset and its
/// file system accepts the flag.
#[cfg(target_os = "linux")]
fn enable_direct(file: &File) -> bool {
    use std::io::Seek;
    use std::os::fd::AsRawFd;
    let regular = file.metadata().map(|m| m.is_file()).unwrap_or(false);
    let aligned = (&*file)
        .stream_position()
        .map(|p| p % ALIGN as u64 == 0)
        .unwrap_or(false);
    if !regular || !aligned || !on_direct_io_file_system(file) || mostly_cached(file) {
        return false;
    }
    let fd = file.as_raw_fd();
    // SAFETY: `fd` is open for the lifetime of `file`; F_GETFL and F_SETFL read and
    // set its status flags and touch no memory of ours.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags | libc::O_DIRECT) == 0
    }
}

/// Whether `file` lies on one of [`DIRECT_IO_FILE_SYSTEMS`].
#[cfg(target_os = "linux")]
fn on_direct_io_file_system(file: &File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: `statfs` is a plain C struct for which all zero bytes are a valid
    // value; `fstatfs` writes only into it, and `fd` is open for `file`'s lifetime.
    let magic = unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        if libc::fstatfs(file.as_raw_fd(), &mut st) != 0 {
            return false;
        }
        // `f_type`'s width differs between architectures; the magic numbers are
        // 32-bit.
        st.f_type as u32
    };
    is_direct_io_file_system(magic)
}

/// Whether (nearly) all of `file` is in the page cache: the share of
/// [`RESIDENCY_SAMPLES`] pages spread over it that `mincore` reports resident. The
/// file is mapped for the question only; no page of it is read.
#[cfg(target_os = "linux")]
fn mostly_cached(file: &File) -> bool {
    use std::os::fd::AsRawFd;
    let Some(len) = file
        .metadata()
        .ok()
        .and_then(|m| usize::try_from(m.len()).ok())
        .filter(|&len| len > 0)
    else {
        return false;
    };
    // SAFETY: sysconf reads a constant of the system.
    let page = match usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }) {
        Ok(p) if p > 0 => p,
        _ => return false,
    };
    // SAFETY: a read-only shared mapping of `file`, whose descriptor is open for
    // the call. Nothing dereferences it: `mincore` asks the kernel about pages of
    // it (each address page-aligned and inside the mapping, since `i < samples <=
    // pages`), writing one byte into `resident`; it is unmapped before returning.
    unsafe {
        let map = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        );
        if map == libc::MAP_FAILED {
            return false;
        }
        let pages = len.div_ceil(page);
        let samples = pages.min(RESIDENCY_SAMPLES);
        let mut cached = 0;
        for i in 0..samples {
            let at = map.cast::<u8>().add(i * pages / samples * page);
            let mut resident = 0u8;
            if libc::mincore(at.cast(), page, &mut resident) == 0 && resident & 1 == 1 {
                cached += 1;
            }
        }
        libc::munmap(map, len);
        mostly(cached, samples)
    }
}

/// `cached` of `sampled` pages are enough to read through the cache: all but one
/// in eight (a file read or written lately, perhaps with a few pages evicted).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn mostly(cached: usize, sampled: usize) -> bool {
    sampled > 0 && cached.saturating_mul(8) >= sampled.saturating_mul(7)
}

#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn is_direct_io_file_system(magic: u32) -> bool {
    DIRECT_IO_FILE_SYSTEMS.iter().any(|&(m, _)| m == magic)
}

#[cfg(not(target_os = "linux"))]
fn enable_direct(_file: &File) -> bool {
    false
}

#[cfg(target_os = "linux")]
fn disable_direct(file: &File) {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: as in `enable_direct`.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_DIRECT);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn disable_direct(_file: &File) {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};

    /// A file in the build directory, not in the page cache: `/tmp` may be a tmpfs,
    /// which refuses direct I/O, and these tests want the direct path where the
    /// platform has one (a cached file is read through the cache). The build
    /// directory is the test binary's, which `CARGO_TARGET_DIR` may put anywhere.
    fn scratch_file(bytes: &[u8]) -> tempfile::NamedTempFile {
        let exe = std::env::current_exe().unwrap();
        let dir = exe.parent().unwrap();
        let mut f = tempfile::NamedTempFile::new_in(dir).unwrap();
        f.write_all(bytes).unwrap();
        evict(f.as_file());
        f
    }

    /// Drops `file`'s pages from the page cache (written out first, so they can go).
    fn evict(file: &File) {
        file.sync_all().unwrap();
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: advice on an open descriptor; no memory of ours is touched.
            let r =
                unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
            assert_eq!(r, 0);
        }
    }

    fn pattern(len: usize) -> Vec<u8> {
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// Reads to the end in pieces of the given sizes, in turn.
    fn read_in_pieces(reader: &mut impl Read, pieces: &[usize]) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = vec![0u8; pieces.iter().copied().max().unwrap_or(1)];
        for &piece in pieces.iter().cycle() {
            match reader.read(&mut buf[..piece]).unwrap() {
                0 => break,
                n => got.extend_from_slice(&buf[..n]),
            }
        }
        got
    }

    #[test]
    fn direct_reads_ask_for_no_more_than_the_rest_of_the_file_in_blocks() {
        assert_eq!(direct_len(CHUNK, None), CHUNK);
        assert_eq!(direct_len(CHUNK, Some(u64::MAX)), CHUNK);
        assert_eq!(direct_len(CHUNK, Some(CHUNK as u64 + 1)), CHUNK);
        assert_eq!(direct_len(CHUNK, Some(100_000)), 25 * ALIGN);
        assert_eq!(direct_len(CHUNK, Some(ALIGN as u64)), ALIGN);
        assert_eq!(direct_len(CHUNK, Some(1)), ALIGN);
        assert_eq!(direct_len(CHUNK, Some(0)), ALIGN);
        assert_eq!(direct_len(FIRST_CHUNK, Some(70_000)), FIRST_CHUNK);
    }

    #[test]
    fn reads_every_byte_whatever_the_pieces_asked() {
        // Chunks, a partial last chunk, and sizes that straddle the chunk edge.
        for len in [0, 1, ALIGN - 1, CHUNK, CHUNK + 1, 2 * CHUNK + ALIGN + 123] {
            let bytes = pattern(len);
            let f = scratch_file(&bytes);
            for pieces in [&[1 << 18][..], &[7, 4096, 100_000], &[CHUNK + 5]] {
                let mut reader = DirectReader::new(File::open(f.path()).unwrap(), true);
                let got = read_in_pieces(&mut reader, pieces);
                assert!(got == bytes, "{len} bytes read in {pieces:?}");
                assert!(!reader.is_direct(), "the end of the file ends direct reads");
            }
        }
    }

    #[test]
    fn aligned_destinations_of_a_chunk_get_every_byte_in_order() {
        use crate::net::capture_buffer::CaptureBuffer;
        for len in [CHUNK - 1, 3 * CHUNK + 123, 4 * CHUNK] {
            let bytes = pattern(len);
            let f = scratch_file(&bytes);
            let mut reader = DirectReader::new(File::open(f.path()).unwrap(), true);
            // A first small read fills this reader's own buffer; the capture buffer's
            // aligned refills then take whole chunks.
            let mut head = [0u8; 24];
            reader.read_exact(&mut head).unwrap();
            let mut buf = CaptureBuffer::new(reader, DIRECT_READ_LEN + 70_000, &head);
            let mut got = Vec::new();
            loop {
                buf.refill().unwrap();
                if buf.exhausted() {
                    break;
                }
                // Leave an unaligned rest behind, as a partial frame would be.
                let n = buf.data().len().saturating_sub(1_001);
                got.extend_from_slice(&buf.data()[..n]);
                buf.consume(n);
            }
            got.extend_from_slice(buf.data());
            assert!(got == bytes, "{len} bytes");
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_regular_file_is_read_directly_where_its_file_system_allows() {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::OpenOptionsExt;
        let f = scratch_file(&pattern(3 * CHUNK));
        let reader = DirectReader::new(File::open(f.path()).unwrap(), true);
        // Whether the file system takes direct I/O, asked another way.
        let supported = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECT)
            .open(f.path())
            .is_ok()
            && on_direct_io_file_system(reader.file());
        assert_eq!(reader.is_direct(), supported);
        // SAFETY: F_GETFL on an open descriptor reads its flags only.
        let flags = unsafe { libc::fcntl(reader.file().as_raw_fd(), libc::F_GETFL) };
        assert_eq!(flags & libc::O_DIRECT != 0, supported);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_file_already_in_the_page_cache_is_read_through_it() {
        let bytes = pattern(2 * CHUNK + 5);
        let f = scratch_file(&bytes);
        assert!(!mostly_cached(f.as_file()), "evicted");
        let mut all = Vec::new();
        File::open(f.path()).unwrap().read_to_end(&mut all).unwrap();
        assert!(mostly_cached(f.as_file()), "read once, now cached");
        let mut reader = DirectReader::new(File::open(f.path()).unwrap(), true);
        assert!(!reader.is_direct());
        assert!(read_in_pieces(&mut reader, &[65_536]) == bytes);
        assert!(
            !mostly_cached(&File::open("/dev/null").unwrap()),
            "nothing to map"
        );
    }

    #[test]
    fn seven_eighths_of_the_pages_cached_count_as_cached() {
        assert!(mostly(224, 256));
        assert!(!mostly(223, 256));
        assert!(mostly(1, 1));
        assert!(!mostly(0, 1));
        assert!(!mostly(0, 0));
    }

    #[test]
    fn not_asked_or_not_aligned_reads_through_the_cache() {
        let bytes = pattern(CHUNK + 999);
        let f = scratch_file(&bytes);
        let mut reader = DirectReader::new(File::open(f.path()).unwrap(), false);
        assert!(!reader.is_direct());
        assert!(read_in_pieces(&mut reader, &[65_536]) == bytes);

        let mut file = File::open(f.path()).unwrap();
        file.seek(SeekFrom::Start(100)).unwrap();
        let mut reader = DirectReader::new(file, true);
        assert!(
            !reader.is_direct(),
            "an unaligned start is never read directly"
        );
        assert!(read_in_pieces(&mut reader, &[65_536]) == bytes[100..]);
    }

    #[test]
    fn a_file_that_grows_after_its_end_was_read_is_read_on() {
        let first = pattern(CHUNK + 10);
        let mut f = scratch_file(&first);
        let mut reader = DirectReader::new(File::open(f.path()).unwrap(), true);
        assert!(read_in_pieces(&mut reader, &[300_000]) == first);
        f.write_all(b"appended while read").unwrap();
        f.flush().unwrap();
        assert_eq!(read_in_pieces(&mut reader, &[5]), b"appended while read");
    }

    #[test]
    fn network_and_memory_file_systems_are_not_read_directly() {
        assert!(is_direct_io_file_system(0xEF53));
        assert!(is_direct_io_file_system(0x5846_5342));
        // NFS, SMB2, FUSE, tmpfs.
        for magic in [0x6969, 0xFE53_4D42, 0x6573_5546, 0x0102_1994] {
            assert!(!is_direct_io_file_system(magic), "{magic:#x}");
        }
    }

    #[test]
    fn what_is_not_a_regular_file_is_read_as_it_comes() {
        let mut reader = DirectReader::new(File::open("/dev/null").unwrap(), true);
        assert!(!reader.is_direct());
        assert_eq!(read_in_pieces(&mut reader, &[10]), b"");
    }
}
