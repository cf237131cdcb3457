//! Sources: where exchanges come from. The only place (with `store`, `web` and the
//! CLI) that does I/O.
//!
//! A file's type is found from its content ([`detect()`]); a HAR file is then streamed
//! entry by entry into [`Exchange`](crate::exchange::Exchange)s by [`har::read_har`].
//! Errors name the file and what is wrong with it ([`SourceError`]); the CLI prints
//! them once and exits with code 2.

pub mod detect;
pub mod direct_read;
pub mod doh_names;
pub mod har;
#[cfg(feature = "live")]
pub mod live;
pub mod pcap;
pub mod ring;
pub mod tcp_export;
pub mod udp_export;

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
    /// Opening or reading the file failed. (The I/O error is in the message, so it is
    /// not also this error's `source`: `{:#}` would print it twice.)
    #[error("{file}: {error}")]
    Io { file: String, error: io::Error },
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
    /// The consumer of the exchanges returned an error; reading stopped there. (Its
    /// error is in the message, not also the `source`, as for `Io`.)
    #[error("{file}: entry {entry}: {error}")]
    Consumer {
        file: String,
        entry: u64,
        error: BoxError,
    },
}

/// An input file, opened and recognised, rewound to its start.
#[derive(Debug)]
pub struct Opened {
    pub kind: InputKind,
    /// The file is gzip-compressed (`capture.pcap.gz`, as Wireshark reads them): read
    /// it through a gzip decoder; `kind` is what the decompressed content is.
    pub gzip: bool,
    /// At its start; for a stream, just after [`stream_head`](Self::stream_head).
    pub file: File,
    /// Set when the input is a stream (a pipe such as `tcpdump -w - |`, standard
    /// input, a FIFO: anything but a regular file), which cannot be rewound: the
    /// bytes type detection read, which come before the rest of `file`. A stream is
    /// read once, so it cannot be hashed first and read again ([`spool_stream`]).
    pub stream_head: Option<Vec<u8>>,
}

impl Opened {
    /// The content from its start: the stream's head, then the rest of `file`.
    pub fn into_reader(self) -> io::Chain<io::Cursor<Vec<u8>>, File> {
        io::Cursor::new(self.stream_head.unwrap_or_default()).chain(self.file)
    }
}

/// Opens `path` and detects its type from its first bytes (decompressing them first
/// when the file is gzip-compressed), returning the file rewound to its start, or,
/// for a stream, with the bytes read kept ([`Opened::stream_head`]).
pub fn open_input(path: &Path) -> Result<Opened, SourceError> {
    let label = path.display().to_string();
    let io_err = |error| SourceError::Io {
        file: label.clone(),
        error,
    };
    let mut file = File::open(path).map_err(io_err)?;
    let regular = file.metadata().map_err(io_err)?.is_file();
    let mut head = Vec::with_capacity(DETECT_PREFIX);
    (&mut file)
        .take(DETECT_PREFIX as u64)
        .read_to_end(&mut head)
        .map_err(io_err)?;
    let gzip = head.starts_with(&[0x1f, 0x8b]);
    let mut inflated = Vec::new();
    if gzip {
        // A damaged gzip stream is reported by the reader later; detection uses
        // what inflated. A stream's head is all there is to inflate from.
        inflated.reserve(DETECT_PREFIX);
        let _ = if regular {
            file.seek(SeekFrom::Start(0)).map_err(io_err)?;
            flate2::read::MultiGzDecoder::new(&mut file)
                .take(DETECT_PREFIX as u64)
                .read_to_end(&mut inflated)
        } else {
            flate2::read::MultiGzDecoder::new(head.as_slice())
                .take(DETECT_PREFIX as u64)
                .read_to_end(&mut inflated)
        };
    }
    let content = if gzip { &inflated } else { &head };
    let kind = detect(content).ok_or_else(|| SourceError::Unrecognised {
        file: label.clone(),
        reason: if content.iter().all(u8::is_ascii_whitespace) {
            "the file is empty".into()
        } else {
            "no pcap/pcapng magic number, and not a JSON object with a `log` member or one JSON object per line".into()
        },
    })?;
    let stream_head = if regular {
        file.seek(SeekFrom::Start(0)).map_err(io_err)?;
        None
    } else {
        Some(head)
    };
    Ok(Opened {
        kind,
        gzip,
        file,
        stream_head,
    })
}

/// Copies an opened stream to an unnamed temporary file (in `TMPDIR`, mode 0600,
/// gone when closed), hashing it on the way: for the readers that need an input's
/// SHA-256 before they parse it (a HAR's exchange ids derive from it). Returns the
/// input opened on the copy, and the SHA-256. A regular file is returned as it is,
/// with no hash.
pub fn spool_stream(opened: Opened, label: &str) -> Result<(Opened, Option<String>), SourceError> {
    if opened.stream_head.is_none() {
        return Ok((opened, None));
    }
    let copy = tempfile::tempfile().map_err(|e| SourceError::Io {
        file: label.to_string(),
        error: io::Error::new(
            e.kind(),
            format!("no temporary file to copy the stream to: {e}"),
        ),
    })?;
    let (opened, sha256) = spool_stream_to(opened, label, copy)?;
    Ok((opened, Some(sha256)))
}

/// Copies all of `opened` (a stream's head, then the rest) into `copy`, an empty file
/// open for reading and writing, hashing it on the way: the input opened on the copy
/// (at its start), and the SHA-256.
pub fn spool_stream_to(
    opened: Opened,
    label: &str,
    mut copy: File,
) -> Result<(Opened, String), SourceError> {
    let io_err = |error| SourceError::Io {
        file: label.to_string(),
        error,
    };
    let (kind, gzip) = (opened.kind, opened.gzip);
    let sha256 = copy_hashed(&mut opened.into_reader(), &mut copy).map_err(|e| match e {
        CopyFailed::Read(error) => io_err(error),
        CopyFailed::Write(e) => SourceError::Io {
            file: label.to_string(),
            error: io::Error::new(e.kind(), format!("copying the stream: {e}")),
        },
    })?;
    copy.seek(SeekFrom::Start(0)).map_err(io_err)?;
    let opened = Opened {
        kind,
        gzip,
        file: copy,
        stream_head: None,
    };
    Ok((opened, sha256))
}

/// Why [`copy_hashed`] stopped.
enum CopyFailed {
    Read(io::Error),
    Write(io::Error),
}

/// Copies all of `input` to `output`: the SHA-256 (lowercase hex) of what was copied.
fn copy_hashed(input: &mut impl Read, output: &mut impl io::Write) -> Result<String, CopyFailed> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyFailed::Read(e)),
        };
        let bytes = buf.get(..n).unwrap_or_default();
        hasher.update(bytes);
        output.write_all(bytes).map_err(CopyFailed::Write)?;
    }
    Ok(hex(&hasher.finalize()))
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
    let file = File::open(path).map_err(|error| SourceError::Io {
        file: path.display().to_string(),
        error,
    })?;
    let opts = HarOptions::new(path.display().to_string(), Some(sha))
        .keep_response_bodies(keep_response_bodies);
    read_har(file, &opts, each)
}

/// SHA-256 (lowercase hex) of a file, read in a streaming fashion. Evidence ids of
/// file sources derive from it.
pub fn file_sha256(path: &Path) -> Result<String, SourceError> {
    let io_err = |error| SourceError::Io {
        file: path.display().to_string(),
        error,
    };
    let mut file = File::open(path).map_err(io_err)?;
    match copy_hashed(&mut file, &mut io::sink()) {
        Ok(sha256) => Ok(sha256),
        Err(CopyFailed::Read(e) | CopyFailed::Write(e)) => Err(io_err(e)),
    }
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
            stream_head,
        } = open_input(f.path()).unwrap();
        assert_eq!(stream_head, None);
        assert_eq!((kind, gzip), (InputKind::Har, false));
        let mut all = Vec::new();
        file.read_to_end(&mut all).unwrap();
        assert!(all.starts_with(b"\xEF\xBB\xBF{"));
    }

    /// A FIFO at a new path in `dir` that a thread fills with `content` once opened.
    #[cfg(unix)]
    fn fifo_with(
        dir: &Path,
        content: Vec<u8>,
    ) -> (std::path::PathBuf, std::thread::JoinHandle<()>) {
        let path = dir.join(format!("fifo-{}", content.len()));
        let name = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        let writer = {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut w = std::fs::OpenOptions::new().write(true).open(path).unwrap();
                // The reader may stop early (a failed detection): EPIPE is fine.
                let _ = w.write_all(&content);
            })
        };
        (path, writer)
    }

    /// A pcap of `frames` empty Ethernet frames, big enough to span many reads.
    fn pcap_of(frames: u32) -> Vec<u8> {
        let mut pcap = Vec::new();
        pcap.extend_from_slice(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0]);
        pcap.extend_from_slice(&[0; 8]);
        pcap.extend_from_slice(&[0xff, 0xff, 0, 0, 1, 0, 0, 0]);
        for i in 0..frames {
            pcap.extend_from_slice(&i.to_le_bytes());
            pcap.extend_from_slice(&[0; 4]);
            pcap.extend_from_slice(&[60, 0, 0, 0, 60, 0, 0, 0]);
            pcap.extend_from_slice(&[(i % 251) as u8; 60]);
        }
        pcap
    }

    #[cfg(unix)]
    #[test]
    fn a_stream_is_detected_without_rewinding_and_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let pcap = pcap_of(2000);
        let (fifo, writer) = fifo_with(dir.path(), pcap.clone());
        let opened = open_input(&fifo).unwrap();
        assert_eq!((opened.kind, opened.gzip), (InputKind::Pcap, false));
        assert_eq!(
            opened.stream_head.as_ref().map(Vec::len),
            Some(DETECT_PREFIX)
        );
        let mut all = Vec::new();
        opened.into_reader().read_to_end(&mut all).unwrap();
        writer.join().unwrap();
        assert_eq!(all, pcap);

        // gzip'd: detected from what the head inflates to.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&pcap).unwrap();
        let gzipped = gz.finish().unwrap();
        let (fifo, writer) = fifo_with(dir.path(), gzipped.clone());
        let opened = open_input(&fifo).unwrap();
        assert_eq!((opened.kind, opened.gzip), (InputKind::Pcap, true));
        // Spooled for a reader that hashes first: the same bytes, their SHA-256.
        let (copy, sha256) = spool_stream(opened, "fifo").unwrap();
        writer.join().unwrap();
        assert_eq!(
            sha256.as_deref(),
            Some(hex(&Sha256::digest(&gzipped)).as_str())
        );
        assert_eq!(copy.stream_head, None);
        let mut all = Vec::new();
        copy.into_reader().read_to_end(&mut all).unwrap();
        assert_eq!(all, gzipped);

        // Not an input: named as such, whatever the writer had left.
        let (fifo, writer) = fifo_with(dir.path(), b"hello world".repeat(1000));
        let err = open_input(&fifo).unwrap_err();
        writer.join().unwrap();
        assert!(matches!(err, SourceError::Unrecognised { .. }), "{err}");
    }

    #[test]
    fn a_regular_file_is_not_spooled() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&pcap_of(3)).unwrap();
        let (opened, sha256) = spool_stream(open_input(f.path()).unwrap(), "f").unwrap();
        assert_eq!((opened.stream_head, sha256), (None, None));
    }

    #[test]
    fn an_io_error_is_said_once() {
        let missing = Path::new("/nonexistent/consentry/x.pcap");
        let err = anyhow::Error::from(open_input(missing).unwrap_err());
        assert_eq!(
            format!("{err:#}"),
            "/nonexistent/consentry/x.pcap: No such file or directory (os error 2)"
        );
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
