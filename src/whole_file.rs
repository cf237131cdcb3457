//! Reading a whole file that is kept in memory (a case file, a key log, a tracker list,
//! a key), never more than a limit set for its kind.
//!
//! A file is hostile input like the traffic. Its size on disk is checked first, so a
//! large regular file is refused without reading it, but that size says nothing for a
//! pipe or a device (`--case /dev/zero`), so the read itself stops one byte past the
//! limit as well.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// Why a whole file could not be had. Callers name the file and its kind.
#[derive(Debug, thiserror::Error)]
pub enum WholeFileError {
    /// (The I/O error is in the message, not also the `source`: `{:#}` says it once.)
    #[error("cannot be read: {0}")]
    Io(io::Error),
    #[error("larger than {limit} bytes, the limit for this kind of file")]
    TooLarge { limit: u64 },
    #[error("not UTF-8 text: invalid at byte {offset} (line {line}, column {column})")]
    NotText {
        offset: usize,
        /// 1-based, as editors count: lines by `\n`, columns by characters.
        line: usize,
        column: usize,
    },
}

impl From<io::Error> for WholeFileError {
    fn from(e: io::Error) -> Self {
        WholeFileError::Io(e)
    }
}

/// The bytes of `path`, if it holds at most `limit` of them.
pub fn read(path: &Path, limit: u64) -> Result<Vec<u8>, WholeFileError> {
    let file = File::open(path)?;
    let on_disk = file.metadata()?;
    if on_disk.is_file() && on_disk.len() > limit {
        return Err(WholeFileError::TooLarge { limit });
    }
    read_from(
        file,
        if on_disk.is_file() { on_disk.len() } else { 0 },
        limit,
    )
}

/// [`read`], as UTF-8 text.
pub fn read_text(path: &Path, limit: u64) -> Result<String, WholeFileError> {
    String::from_utf8(read(path, limit)?).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let valid = e.as_bytes().get(..offset).unwrap_or_default();
        let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
        WholeFileError::NotText {
            offset,
            line: valid.iter().filter(|&&b| b == b'\n').count() + 1,
            // The bytes before `offset` are UTF-8: count their characters.
            column: String::from_utf8_lossy(valid.get(line_start..).unwrap_or_default())
                .chars()
                .count()
                + 1,
        }
    })
}

/// At most `limit` bytes of `input`; `expected` (what the file's size says, or 0) only
/// sizes the buffer.
fn read_from(input: impl Read, expected: u64, limit: u64) -> Result<Vec<u8>, WholeFileError> {
    let mut bytes = Vec::with_capacity(usize::try_from(expected.min(limit)).unwrap_or(0));
    input
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(WholeFileError::TooLarge { limit });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    #[test]
    fn reads_a_file_up_to_its_limit() {
        let f = file_with(b"0123456789");
        assert_eq!(read(f.path(), 10).unwrap(), b"0123456789");
        assert_eq!(read_text(f.path(), 100).unwrap(), "0123456789");
        assert_eq!(read(&file_with(b"").into_temp_path(), 0).unwrap(), b"");
    }

    #[test]
    fn refuses_a_file_one_byte_over() {
        let f = file_with(b"0123456789");
        let e = read(f.path(), 9).unwrap_err();
        assert!(matches!(e, WholeFileError::TooLarge { limit: 9 }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "larger than 9 bytes, the limit for this kind of file"
        );
    }

    #[test]
    fn a_stream_without_a_size_is_cut_at_the_limit() {
        // What a pipe or /dev/zero looks like: no size, no end.
        let endless = io::repeat(0);
        let e = read_from(endless, 0, 1 << 20).unwrap_err();
        assert!(matches!(e, WholeFileError::TooLarge { .. }), "{e:?}");
        assert_eq!(read_from(&b"abc"[..], 0, 3).unwrap(), b"abc");
    }

    #[cfg(unix)]
    #[test]
    fn a_device_is_cut_at_the_limit() {
        let e = read(Path::new("/dev/zero"), 4096).unwrap_err();
        assert!(
            matches!(e, WholeFileError::TooLarge { limit: 4096 }),
            "{e:?}"
        );
    }

    #[test]
    fn text_that_is_not_utf8_names_the_byte() {
        let f = file_with(b"id = \"a\"\nname = \"\xc3\xa9\xff\"\n");
        let e = read_text(f.path(), 100).unwrap_err();
        assert!(
            matches!(
                e,
                WholeFileError::NotText {
                    offset: 19,
                    line: 2,
                    column: 10
                }
            ),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "not UTF-8 text: invalid at byte 19 (line 2, column 10)"
        );
    }

    #[test]
    fn a_missing_file_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = read(&dir.path().join("absent"), 10).unwrap_err();
        assert!(matches!(e, WholeFileError::Io(_)), "{e:?}");
        // Said once, also where the error chain is printed.
        let chain = format!("{:#}", anyhow::Error::from(e));
        assert_eq!(
            chain,
            "cannot be read: No such file or directory (os error 2)"
        );
    }
}
