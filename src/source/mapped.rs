//! Reading an input file through a read-only memory map, for the commands that hash a
//! capture and then parse it (`analyze`, `exchanges`).
//!
//! Both passes over a file — SHA-256 first (evidence ids derive from it, so it is
//! known before parsing starts), then the capture reader — used to copy every byte
//! out of the page cache with `read(2)`: two kernel copies of the whole file, a tenth
//! of `analyze`'s CPU on a large capture together with the page-cache lookups. Through
//! a map the hash reads the cached pages in place, and the parser's buffer is filled
//! by a plain `memcpy`.
//!
//! # Policies
//! - Only regular, non-empty files are mapped; pipes, devices and anything that cannot
//!   be mapped are read as before ([`MappedFile::open`] hands the file back).
//! - The file is mapped in windows of [`WINDOW_BYTES`], each unmapped when the next is
//!   mapped: resident memory stays bounded whatever the file's size (mapped pages of a
//!   file count towards the process's RSS).
//! - The length is fixed when the file is opened: bytes appended later are not read
//!   (the hash and the parse see the same bytes).
//! - A file that shrinks underneath would make a mapped read fault (`SIGBUS`). Before
//!   every [`CHECK_BYTES`] taken from the map, the file's current length is checked;
//!   once it is shorter than when mapped, everything from there on (and the hash, from
//!   the start) is read with `read(2)` instead, which sees the file as it now is. A
//!   truncation in the instant between a check and the reads it covers is not caught.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use memmap2::{Mmap, MmapOptions};
use sha2::{Digest, Sha256};

/// Bytes mapped at a time (the resident part of a mapped file).
pub const WINDOW_BYTES: u64 = 16 << 20;
/// Bytes taken from the map between two checks that the file did not shrink.
pub const CHECK_BYTES: u64 = 1 << 20;

/// A regular file read through a read-only map; see the module doc.
pub struct MappedFile {
    file: File,
    /// The file's length when it was opened: what is read.
    len: u64,
    /// The current window and its offset in the file.
    window: Mmap,
    window_start: u64,
    /// The next byte to read.
    pos: u64,
    /// Bytes before this offset may be read from the map (the length was checked).
    checked_to: u64,
    /// The file shrank: the rest is read from `file`.
    shrunk: bool,
    /// `file` is positioned at `pos` for reading the rest.
    seeked: bool,
}

impl MappedFile {
    /// Maps `file` (positioned anywhere: reading starts at its first byte); hands it
    /// back when it is no regular file, is empty, or cannot be mapped.
    pub fn open(file: File) -> Result<MappedFile, File> {
        let len = match file.metadata() {
            Ok(m) if m.is_file() && m.len() > 0 => m.len(),
            _ => return Err(file),
        };
        let window = match map(&file, 0, len) {
            Ok(w) => w,
            Err(_) => return Err(file),
        };
        Ok(MappedFile {
            file,
            len,
            window,
            window_start: 0,
            pos: 0,
            checked_to: 0,
            shrunk: false,
            seeked: false,
        })
    }

    /// The file's length when it was opened.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file was empty (never: such files are not mapped).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the file shrank while it was read (and was read with `read(2)` from
    /// then on).
    pub fn shrunk(&self) -> bool {
        self.shrunk
    }

    /// SHA-256 (lowercase hex) of the whole file; afterwards reading starts again at
    /// its first byte. A file that shrank is hashed again by reading it, as it now is.
    pub fn sha256(&mut self) -> io::Result<String> {
        self.rewind();
        let mut hasher = Sha256::new();
        loop {
            let n = match self.mapped()? {
                Some(piece) => {
                    hasher.update(piece);
                    piece.len()
                }
                None => break,
            };
            self.pos += n as u64;
        }
        if self.shrunk {
            self.file.seek(SeekFrom::Start(0))?;
            hasher = Sha256::new();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match self.file.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                hasher.update(&buf[..n]);
            }
        }
        self.rewind();
        Ok(super::hex(&hasher.finalize()))
    }

    /// Back to the first byte (read from the file itself if it shrank).
    fn rewind(&mut self) {
        self.pos = 0;
        self.checked_to = 0;
        self.seeked = false;
    }

    /// The bytes at `pos` that may be read from the map now (at most up to the next
    /// length check and the end of the window); `None` at the end, or when the file
    /// shrank.
    fn mapped(&mut self) -> io::Result<Option<&[u8]>> {
        if self.shrunk || self.pos >= self.len {
            return Ok(None);
        }
        if self.pos >= self.checked_to {
            if self.file.metadata()?.len() < self.len {
                self.shrunk = true;
                return Ok(None);
            }
            self.checked_to = (self.pos + CHECK_BYTES).min(self.len);
        }
        let window_end = self.window_start + self.window.len() as u64;
        if self.pos < self.window_start || self.pos >= window_end {
            // Aligned windows: the next one starts where this one ends.
            let start = self.pos - self.pos % WINDOW_BYTES;
            self.window = map(&self.file, start, self.len)?;
            self.window_start = start;
        }
        let window_end = self.window_start + self.window.len() as u64;
        // Both offsets lie in the window: window_start <= pos < checked_to, and
        // checked_to and window_end are both > pos.
        let from = (self.pos - self.window_start) as usize;
        let to = (self.checked_to.min(window_end) - self.window_start) as usize;
        Ok(self.window.get(from..to))
    }
}

impl Read for MappedFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(piece) = self.mapped()? {
            let n = piece.len().min(buf.len());
            buf[..n].copy_from_slice(&piece[..n]);
            self.pos += n as u64;
            return Ok(n);
        }
        if !self.shrunk {
            return Ok(0);
        }
        if !self.seeked {
            self.file.seek(SeekFrom::Start(self.pos))?;
            self.seeked = true;
        }
        let n = self.file.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Maps the window of `file` (of length `len`) that starts at `start`, a multiple
/// of [`WINDOW_BYTES`] below `len`.
fn map(file: &File, start: u64, len: u64) -> io::Result<Mmap> {
    let size = WINDOW_BYTES.min(len - start);
    let size = usize::try_from(size).map_err(io::Error::other)?;
    // SAFETY: a read-only map of a file this process only reads. Another process may
    // still change the file: changed bytes are read as `read(2)` would read them, and
    // a shrinking file is checked for before each piece is read (module doc).
    let map = unsafe {
        MmapOptions::new()
            .offset(start)
            .len(size)
            .populate()
            .map(file)?
    };
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(data: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(data).unwrap();
        f.flush().unwrap();
        f
    }

    fn reference_sha(data: &[u8]) -> String {
        super::super::hex(&Sha256::digest(data))
    }

    /// Reads everything in pieces of `chunk` bytes.
    fn read_all(m: &mut MappedFile, chunk: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; chunk];
        loop {
            let n = m.read(&mut buf).unwrap();
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn hash_then_read_across_windows() {
        // Three windows, the last one partial, and check boundaries inside each.
        let data: Vec<u8> = (0..(2 * WINDOW_BYTES + 12_345))
            .map(|i| (i * 7 + i / 4093) as u8)
            .collect();
        let f = file_with(&data);
        let mut m = MappedFile::open(File::open(f.path()).unwrap())
            .ok()
            .unwrap();
        assert_eq!(m.len(), data.len() as u64);
        assert_eq!(m.sha256().unwrap(), reference_sha(&data));
        assert!(read_all(&mut m, 1_000_003) == data);
        assert!(!m.shrunk());
        // Hashing again rewinds.
        assert_eq!(m.sha256().unwrap(), reference_sha(&data));
        assert!(read_all(&mut m, 65_536) == data);
    }

    #[test]
    fn empty_files_and_pipes_are_not_mapped() {
        let f = file_with(b"");
        assert!(MappedFile::open(File::open(f.path()).unwrap()).is_err());
        #[cfg(unix)]
        {
            let dev_null = File::open("/dev/null").unwrap();
            assert!(MappedFile::open(dev_null).is_err());
        }
    }

    #[test]
    fn a_file_that_shrinks_is_read_instead() {
        let data: Vec<u8> = (0..(3 * CHECK_BYTES)).map(|i| (i % 251) as u8).collect();
        let f = file_with(&data);
        let mut m = MappedFile::open(File::open(f.path()).unwrap())
            .ok()
            .unwrap();
        let mut head = vec![0u8; CHECK_BYTES as usize];
        let mut got = 0;
        while got < head.len() {
            got += m.read(&mut head[got..]).unwrap();
        }
        assert!(head == data[..CHECK_BYTES as usize]);
        // Cut the file to a length inside the next check's range: reading the mapped
        // page past the end would fault; the reader notices and reads the file.
        let cut = CHECK_BYTES + 1000;
        File::options()
            .write(true)
            .open(f.path())
            .unwrap()
            .set_len(cut)
            .unwrap();
        let rest = read_all(&mut m, 4096);
        assert!(m.shrunk());
        assert!(rest == data[CHECK_BYTES as usize..cut as usize]);
        // The hash is of the file as it now is.
        assert_eq!(m.sha256().unwrap(), reference_sha(&data[..cut as usize]));
        assert!(read_all(&mut m, 4096) == data[..cut as usize]);
    }
}
