//! Sources: where exchanges come from. The only place (with `store`, `web` and the
//! CLI) that does I/O.
//!
//! A file's type is found from its content ([`detect()`]); a HAR file is then streamed
//! entry by entry into [`Exchange`](crate::exchange::Exchange)s by [`har::read_har`].
//! Errors name the file and what is wrong with it ([`SourceError`]); the CLI prints
//! them once and exits with code 2.

pub mod detect;
pub mod direct_read;
pub mod har;
#[cfg(feature = "live")]
pub mod live;
pub mod pcap;
pub mod ring;

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use sha2::{Digest, Sha256};

pub use detect::{detect, InputKind, DETECT_PREFIX};
pub use har::{read_har, HarLimits, HarOptions, HarSummary, SkippedEntry};

/// An error a consumer of exchanges returned to stop reading.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why an input file could not be read. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Opening or reading the file failed.
    #[error("{file}: {source}")]
    Io {
        file: String,
        #[source]
        source: io::Error,
    },
    /// The content is none of the supported input types.
    #[error("{file}: not a recognised input (expected pcap, pcapng, HAR or JSON lines): {reason}")]
    Unrecognised { file: String, reason: String },
    /// The HAR file is not well-formed JSON (truncated, garbage, …).
    #[error("{file}:{line}:{column}: HAR syntax error at {path}: {message}")]
    HarSyntax {
        file: String,
        line: usize,
        column: usize,
        /// JSON path of the innermost value being read, e.g. `log.entries[12].request`.
        path: String,
        message: String,
    },
    /// Valid JSON, but not an HTTP Archive (no `log` object, no `entries`).
    #[error("{file}: not a HAR file: {reason}")]
    NotHar { file: String, reason: String },
    /// A structural HAR member has the wrong JSON type (`log` an array, `entries` a
    /// number). Wrong types inside an entry are anomalies, not errors.
    #[error("{file}:{line}:{column}: wrong type at {path}: {message}")]
    WrongType {
        file: String,
        line: usize,
        column: usize,
        path: String,
        message: String,
    },
    /// A pcap/pcapng file that is damaged (the message names the byte offset).
    #[error("{file}: {message}")]
    Capture { file: String, message: String },
    /// The consumer of the exchanges returned an error; reading stopped there.
    #[error("{file}: entry {entry}: {source}")]
    Consumer {
        file: String,
        entry: u64,
        #[source]
        source: BoxError,
    },
}

/// An input file, opened and recognised, rewound to its start.
#[derive(Debug)]
pub struct Opened {
    pub kind: InputKind,
    /// The file is gzip-compressed (`capture.pcap.gz`, as Wireshark reads them): read
    /// it through a gzip decoder; `kind` is what the decompressed content is.
    pub gzip: bool,
    pub file: File,
}

/// Opens `path` and detects its type from its first bytes (decompressing them first
/// when the file is gzip-compressed), returning the file rewound to its start.
pub fn open_input(path: &Path) -> Result<Opened, SourceError> {
    let label = path.display().to_string();
    let io_err = |source| SourceError::Io {
        file: label.clone(),
        source,
    };
    let mut file = File::open(path).map_err(io_err)?;
    let mut prefix = Vec::with_capacity(DETECT_PREFIX);
    (&mut file)
        .take(DETECT_PREFIX as u64)
        .read_to_end(&mut prefix)
        .map_err(io_err)?;
    let gzip = prefix.starts_with(&[0x1f, 0x8b]);
    if gzip {
        file.seek(SeekFrom::Start(0)).map_err(io_err)?;
        let mut inflated = Vec::with_capacity(DETECT_PREFIX);
        // A damaged gzip stream is reported by the reader later; detection uses
        // what inflated.
        let _ = flate2::read::MultiGzDecoder::new(&mut file)
            .take(DETECT_PREFIX as u64)
            .read_to_end(&mut inflated);
        prefix = inflated;
    }
    let kind = detect(&prefix).ok_or_else(|| SourceError::Unrecognised {
        file: label.clone(),
        reason: if prefix.iter().all(u8::is_ascii_whitespace) {
            "the file is empty".into()
        } else {
            "no pcap/pcapng magic number, and not a JSON object with a `log` member or one JSON object per line".into()
        },
    })?;
    file.seek(SeekFrom::Start(0)).map_err(io_err)?;
    Ok(Opened { kind, gzip, file })
}

/// Reads the HAR file at `path`: hashes it (for evidence ids), then streams its
/// exchanges to `each`. The file's type is not checked; see [`open_input`].
pub fn read_har_file<E, F>(
    path: &Path,
    keep_response_bodies: bool,
    each: F,
) -> Result<HarSummary, SourceError>
where
    E: Into<BoxError>,
    F: FnMut(crate::exchange::Exchange) -> Result<(), E>,
{
    let sha = file_sha256(path)?;
    let file = File::open(path).map_err(|source| SourceError::Io {
        file: path.display().to_string(),
        source,
    })?;
    let opts = HarOptions::new(path.display().to_string(), Some(sha))
        .keep_response_bodies(keep_response_bodies);
    read_har(file, &opts, each)
}

/// SHA-256 (lowercase hex) of a file, read in a streaming fashion. Evidence ids of
/// file sources derive from it.
pub fn file_sha256(path: &Path) -> Result<String, SourceError> {
    let io_err = |source| SourceError::Io {
        file: path.display().to_string(),
        source,
    };
    let mut file = File::open(path).map_err(io_err)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(e)),
        };
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    push_hex(&mut s, bytes);
    s
}

/// Appends the lowercase hex of `bytes` to `out`: a digest's digits are made in a
/// stack buffer and appended at once (a `String::push` per digit, with its capacity
/// and UTF-8 checks, was ~20 instructions per byte; the proxy hexes ~150 bytes of
/// digests per exchange).
pub(crate) fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 64];
    for chunk in bytes.chunks(buf.len() / 2) {
        let mut len = 0;
        for (&b, pair) in chunk.iter().zip(buf.chunks_exact_mut(2)) {
            if let [hi, lo] = pair {
                *hi = DIGITS[usize::from(b >> 4)];
                *lo = DIGITS[usize::from(b & 0x0f)];
            }
            len += 2;
        }
        // Hex digits only: always ASCII, so the fallback never happens.
        out.push_str(std::str::from_utf8(buf.get(..len).unwrap_or_default()).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    proptest::proptest! {
        /// As `format!("{:02x}")` per byte, appended after what `out` held, for
        /// lengths around the stack buffer's (32 bytes a round).
        #[test]
        fn push_hex_is_lowercase_hex(
            before in "[a-z]{0,3}",
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..100),
        ) {
            let mut out = before.clone();
            push_hex(&mut out, &bytes);
            let naive: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            proptest::prop_assert_eq!(out, format!("{before}{naive}"));
        }
    }

    #[test]
    fn open_input_detects_and_rewinds() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"\xEF\xBB\xBF{\"log\":{\"entries\":[]}}")
            .unwrap();
        let Opened {
            kind,
            gzip,
            mut file,
        } = open_input(f.path()).unwrap();
        assert_eq!((kind, gzip), (InputKind::Har, false));
        let mut all = Vec::new();
        file.read_to_end(&mut all).unwrap();
        assert!(all.starts_with(b"\xEF\xBB\xBF{"));
    }

    #[test]
    fn gzip_compressed_inputs_are_detected_by_their_content() {
        let mut pcap = Vec::new();
        pcap.extend_from_slice(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0]);
        pcap.extend_from_slice(&[0; 8]);
        pcap.extend_from_slice(&[0xff, 0xff, 0, 0, 1, 0, 0, 0]);
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&pcap).unwrap();
        f.write_all(&gz.finish().unwrap()).unwrap();
        let opened = open_input(f.path()).unwrap();
        assert_eq!((opened.kind, opened.gzip), (InputKind::Pcap, true));
        let mut all = Vec::new();
        flate2::read::MultiGzDecoder::new(opened.file)
            .read_to_end(&mut all)
            .unwrap();
        assert_eq!(all, pcap);
    }

    #[test]
    fn open_input_names_the_file() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"hello world").unwrap();
        let err = open_input(f.path()).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, SourceError::Unrecognised { .. }), "{msg}");
        assert!(msg.contains(&f.path().display().to_string()), "{msg}");

        let empty = tempfile::NamedTempFile::new().unwrap();
        let msg = open_input(empty.path()).unwrap_err().to_string();
        assert!(msg.contains("empty"), "{msg}");

        let missing = Path::new("/nonexistent/consentry/x.har");
        let err = open_input(missing).unwrap_err();
        assert!(matches!(err, SourceError::Io { .. }));
        assert!(err.to_string().contains("/nonexistent/consentry/x.har"));
    }

    #[test]
    fn read_har_file_hashes_and_reads() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(
            br#"{"log": {"entries": [{"startedDateTime": "2026-11-28T10:00:00Z",
            "request": {"method": "GET", "url": "https://a.example/"}}]}}"#,
        )
        .unwrap();
        let sha = file_sha256(f.path()).unwrap();
        let mut got = Vec::new();
        let s = read_har_file(f.path(), false, |x| {
            got.push(x);
            Ok::<(), BoxError>(())
        })
        .unwrap();
        assert_eq!(s.exchanges, 1);
        assert_eq!(got[0].evidence.file_sha256.as_deref(), Some(sha.as_str()));
        let err = read_har_file(Path::new("/nonexistent/y.har"), false, |_| {
            Ok::<(), BoxError>(())
        });
        assert!(err.unwrap_err().to_string().contains("/nonexistent/y.har"));
    }

    #[test]
    fn sha256_of_file() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"abc").unwrap();
        assert_eq!(
            file_sha256(f.path()).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
