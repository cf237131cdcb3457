//! The evidence ring of a live tap: every captured packet is written unchanged to
//! pcapng files in the case directory, a new file every `max_file_bytes`, the oldest
//! deleted beyond `max_files`, so a tap can run for weeks in bounded disk space and
//! the packets behind each finding can still be handed over.
//!
//! Files are named `tap-<start time>-<NNNNN>.pcapng`, created mode 0600 (evidence is
//! personal data), and each starts with its own section and interface block, so any
//! file of the ring opens alone in Wireshark.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::timestamp::Timestamp;

/// Sizes of the ring.
#[derive(Debug, Clone, Copy)]
pub struct RingLimits {
    /// A file is closed and the next one started past this size (default 100 MiB).
    pub max_file_bytes: u64,
    /// Files kept; the oldest is deleted when a new one would exceed it (default 10).
    pub max_files: usize,
}

impl Default for RingLimits {
    fn default() -> Self {
        RingLimits {
            max_file_bytes: 100 << 20,
            max_files: 10,
        }
    }
}

/// A size-capped ring of pcapng files.
pub struct EvidenceRing {
    dir: PathBuf,
    stem: String,
    limits: RingLimits,
    link_type: u16,
    snaplen: u32,
    current: Option<(BufWriter<File>, u64)>,
    next_index: u64,
    files: VecDeque<PathBuf>,
    packets: u64,
}

impl EvidenceRing {
    /// A ring in `dir` (created if missing) for packets of one link type.
    pub fn create(
        dir: &Path,
        started: Timestamp,
        link_type: u16,
        snaplen: u32,
        limits: RingLimits,
    ) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let stamp: String = started
            .to_string()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(15)
            .collect();
        Ok(EvidenceRing {
            dir: dir.to_path_buf(),
            stem: format!("tap-{stamp}"),
            limits: RingLimits {
                max_files: limits.max_files.max(1),
                ..limits
            },
            link_type,
            snaplen,
            current: None,
            next_index: 1,
            files: VecDeque::new(),
            packets: 0,
        })
    }

    /// The files of the ring that still exist, oldest first.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(PathBuf::as_path)
    }

    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Appends one packet as captured (`data` may be shorter than `original_len`).
    pub fn write(&mut self, ts: Timestamp, data: &[u8], original_len: u32) -> io::Result<()> {
        let block = enhanced_packet_block(ts, data, original_len);
        let full = match &self.current {
            Some((_, written)) => *written + block.len() as u64 > self.limits.max_file_bytes,
            None => true,
        };
        if full {
            self.rotate()?;
        }
        if let Some((file, written)) = &mut self.current {
            file.write_all(&block)?;
            *written += block.len() as u64;
            self.packets += 1;
        }
        Ok(())
    }

    /// Writes buffered packets to disk (also done on rotation and drop).
    pub fn flush(&mut self) -> io::Result<()> {
        match &mut self.current {
            Some((file, _)) => file.flush(),
            None => Ok(()),
        }
    }

    fn rotate(&mut self) -> io::Result<()> {
        if let Some((mut file, _)) = self.current.take() {
            file.flush()?;
        }
        while self.files.len() >= self.limits.max_files {
            if let Some(old) = self.files.pop_front() {
                // Already gone (removed by hand) is fine: the ring only bounds space.
                let _ = fs::remove_file(old);
            }
        }
        let path = self
            .dir
            .join(format!("{}-{:05}.pcapng", self.stem, self.next_index));
        self.next_index += 1;
        let file = open_private(&path)?;
        let mut file = BufWriter::new(file);
        let mut head = section_header_block();
        head.extend(interface_description_block(self.link_type, self.snaplen));
        file.write_all(&head)?;
        self.files.push_back(path);
        self.current = Some((file, head.len() as u64));
        Ok(())
    }
}

impl Drop for EvidenceRing {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// Creates `path` for writing with mode 0600 where the platform has modes.
fn open_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// A pcapng block: type, total length, body padded to 32 bits, total length again.
fn block(block_type: u32, body: &[u8]) -> Vec<u8> {
    let padded = body.len().div_ceil(4) * 4;
    let total = (12 + padded) as u32;
    let mut out = Vec::with_capacity(total as usize);
    out.extend_from_slice(&block_type.to_le_bytes());
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(body);
    out.resize(8 + padded, 0);
    out.extend_from_slice(&total.to_le_bytes());
    out
}

fn section_header_block() -> Vec<u8> {
    let mut body = Vec::with_capacity(16);
    body.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
    body.extend_from_slice(&1u16.to_le_bytes()); // major
    body.extend_from_slice(&0u16.to_le_bytes()); // minor
    body.extend_from_slice(&(-1i64).to_le_bytes()); // section length unknown
    block(0x0A0D_0D0A, &body)
}

/// An interface block with the default microsecond resolution.
fn interface_description_block(link_type: u16, snaplen: u32) -> Vec<u8> {
    let mut body = Vec::with_capacity(8);
    body.extend_from_slice(&link_type.to_le_bytes());
    body.extend_from_slice(&0u16.to_le_bytes());
    body.extend_from_slice(&snaplen.to_le_bytes());
    block(1, &body)
}

fn enhanced_packet_block(ts: Timestamp, data: &[u8], original_len: u32) -> Vec<u8> {
    let micros = ts.micros().max(0) as u64;
    let mut body = Vec::with_capacity(20 + data.len() + 3);
    body.extend_from_slice(&0u32.to_le_bytes()); // interface 0
    body.extend_from_slice(&((micros >> 32) as u32).to_le_bytes());
    body.extend_from_slice(&(micros as u32).to_le_bytes());
    let captured = u32::try_from(data.len()).unwrap_or(u32::MAX);
    body.extend_from_slice(&captured.to_le_bytes());
    body.extend_from_slice(&original_len.max(captured).to_le_bytes());
    body.extend_from_slice(data);
    block(6, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::capture::{CaptureEvent, CaptureReader, LinkType};

    #[test]
    fn ring_files_read_back_and_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let limits = RingLimits {
            max_file_bytes: 300,
            max_files: 2,
        };
        let t0 = Timestamp::from_micros(1_764_000_000_123_456);
        let mut ring = EvidenceRing::create(dir.path(), t0, 1, 65535, limits).unwrap();
        for i in 0..10u8 {
            let t = Timestamp::from_micros(t0.micros() + i64::from(i));
            ring.write(t, &[i; 61], 100).unwrap();
        }
        ring.flush().unwrap();
        let files: Vec<PathBuf> = ring.files().map(Path::to_path_buf).collect();
        assert_eq!(files.len(), 2, "only the newest two files are kept");
        assert_eq!(ring.packets(), 10);
        let mut seen = Vec::new();
        for f in &files {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = fs::metadata(f).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600);
            }
            let mut reader = CaptureReader::new(File::open(f).unwrap()).unwrap();
            while let Some(event) = reader.next_event().unwrap() {
                if let CaptureEvent::Frame(frame) = event {
                    assert_eq!(frame.link, LinkType::Ethernet);
                    assert_eq!(frame.original_len, 100);
                    assert_eq!(frame.data.len(), 61);
                    assert_eq!(frame.ts.micros() - t0.micros(), i64::from(frame.data[0]));
                    seen.push(frame.data[0]);
                }
            }
        }
        // The last packets survive in order; the oldest were rotated away.
        assert!(!seen.is_empty() && seen.len() < 10);
        assert_eq!(*seen.last().unwrap(), 9);
        assert!(seen.windows(2).all(|w| w[1] == w[0] + 1));
    }
}
