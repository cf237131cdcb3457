//! The evidence ring of a live tap: every captured packet is written unchanged to
//! pcapng files in the case directory, a new file every `max_file_bytes`, the oldest
//! deleted beyond `max_files`, so a tap can run for weeks in bounded disk space and
//! the packets behind each finding can still be handed over.
//!
//! Files are named `tap-<start time>-<NNNNN>.pcapng`, created mode 0600 (evidence is
//! personal data), and each starts with its own section header, an interface block
//! per link type seen so far and the secrets and custom blocks kept so far
//! ([`EvidenceRing::keep_block`]: TLS key logs and PCAPdroid's app blocks of a stream
//! the tap reads), so any file of the ring opens alone, decrypts and names its apps
//! as the stream did, in consentry and in Wireshark. Key log lines the tap follows
//! while it captures go in where they came, before the handshakes they decrypt
//! ([`EvidenceRing::block_for_next_packets`]).

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::timestamp::Timestamp;

mod writer;

use writer::{Job, Reply, Writer, BATCH_BYTES};

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

/// A closed file of the ring: what a store record says of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingFile {
    pub path: PathBuf,
    pub size: u64,
    /// SHA-256 of the file, lowercase hex, computed from the bytes as they were
    /// written (the file is never read back).
    pub sha256: String,
    pub packets: u64,
    /// Number of its first packet among all packets of the ring (from 1): the live
    /// tap's frame number, so an exchange's frames map to files.
    pub first_packet: u64,
    /// Capture times of its first and last packet.
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
}

/// What happened to a file of the ring, for the case store ([`EvidenceRing::take_events`]).
#[derive(Debug)]
pub enum RingEvent {
    /// Complete: flushed, synced and closed; it never changes again.
    Closed(RingFile),
    /// The ring deleted it (the oldest beyond `max_files`).
    Removed(RingFile),
    /// The ring could not delete it (or it was gone already, removed by someone
    /// else): it is forgotten by the ring but not recorded as removed.
    NotRemoved(RingFile, io::Error),
}

/// What the ring knows of the file being written; its bytes are the writer's.
struct CurrentFile {
    path: PathBuf,
    /// Bytes given to the writer for it: what decides the rotation.
    written: u64,
    packets: u64,
    first_packet: u64,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
}

/// Files a [`FrameFiles`] remembers (names of about 40 bytes each): far more than a
/// ring keeps, so an exchange of a long connection still names a file rotated out.
pub const FRAME_FILES_KEPT: usize = 4096;

/// Which ring file holds which packets, by their number in the ring (the live tap's
/// frame number), so an exchange can name the file and the frames in it that a
/// reader opens in Wireshark.
#[derive(Debug, Default)]
pub struct FrameFiles {
    /// (number of the file's first packet, file name), oldest first.
    starts: VecDeque<(u64, String)>,
}

impl FrameFiles {
    /// Learns the ring's current file if it is new (call after each write).
    pub fn note(&mut self, ring: &EvidenceRing) {
        let Some(f) = &ring.current else { return };
        if self
            .starts
            .back()
            .is_some_and(|(n, _)| *n == f.first_packet)
        {
            return;
        }
        let name = f.path.file_name().map(|n| n.to_string_lossy().into_owned());
        if let Some(name) = name {
            if self.starts.len() == FRAME_FILES_KEPT {
                self.starts.pop_front();
            }
            self.starts.push_back((f.first_packet, name));
        }
    }

    /// `tap-….pcapng frames 3-9` (numbered within the file, as Wireshark does), or
    /// `tap-…-00001.pcapng frame 990 to tap-…-00002.pcapng frame 12` across files;
    /// `None` for packets of a file no longer remembered.
    pub fn locate(&self, first: u64, last: u64) -> Option<String> {
        let file_of = |n: u64| {
            let i = self.starts.partition_point(|(start, _)| *start <= n);
            let (start, name) = self.starts.get(i.checked_sub(1)?)?;
            Some((name.as_str(), n - start + 1))
        };
        let (a_file, a) = file_of(first)?;
        let (b_file, b) = file_of(last.max(first))?;
        Some(if a_file == b_file {
            format!("{a_file} {}", crate::net::tap::frames(a, b))
        } else {
            format!("{a_file} frame {a} to {b_file} frame {b}")
        })
    }
}

/// Whether `name` is that of a ring file (`tap-<start>-<NNNNN>.pcapng`).
pub fn is_ring_file_name(name: &str) -> bool {
    name.starts_with("tap-") && name.ends_with(".pcapng")
}

/// A ring file as found on disk rather than as written: its size and SHA-256 read
/// from the file, and the packets the pcapng reader gets out of it (a file cut short
/// by a crash gives those before the cut). `first_packet` is unknown (0).
pub fn describe_found_file(path: &Path) -> io::Result<RingFile> {
    let sha256 = crate::source::file_sha256(path).map_err(io::Error::other)?;
    let size = fs::metadata(path)?.len();
    let (mut packets, mut first, mut last) = (0, None, None);
    if let Ok(mut reader) = crate::net::capture::CaptureReader::new(File::open(path)?) {
        while let Ok(Some(event)) = reader.next_event() {
            if let crate::net::capture::CaptureEvent::Frame(frame) = event {
                packets += 1;
                first.get_or_insert(frame.ts);
                last = Some(frame.ts);
            }
        }
    }
    Ok(RingFile {
        path: path.to_path_buf(),
        size,
        sha256,
        packets,
        first_packet: 0,
        first,
        last,
    })
}

/// The ring files a locator written by [`FrameFiles::locate`] names (one, or the first
/// and the last across files); none for any other locator.
pub fn files_in_locator(locator: &str) -> impl Iterator<Item = &str> {
    locator.split(" to ").filter_map(|part| {
        let (name, rest) = part.split_once(' ')?;
        (name.ends_with(".pcapng") && (rest.starts_with("frame ") || rest.starts_with("frames ")))
            .then_some(name)
    })
}

/// Bytes of secrets and custom blocks a ring keeps to start each new file with:
/// a key log of tens of thousands of connections. Past it, or past half a ring
/// file (a file must have room for packets after its start), blocks still go into
/// the file being written, but later files do not repeat them.
pub const MAX_KEPT_BLOCK_BYTES: usize = 16 << 20;

/// A size-capped ring of pcapng files. The ring assembles the files' blocks and
/// decides where each goes; a thread of its own writes, hashes and syncs them
/// (`writer.rs`), so a write failure is returned by a later call than the one whose
/// bytes failed (about 2.5 MiB of packets later at most).
pub struct EvidenceRing {
    dir: PathBuf,
    stem: String,
    limits: RingLimits,
    /// Link type of each interface, by interface number.
    link_types: Vec<u16>,
    snaplen: u32,
    /// Secrets and custom blocks every new file starts with, in the order read.
    kept_blocks: Vec<Vec<u8>>,
    kept_bytes: usize,
    /// Blocks the packets up to a number need ([`EvidenceRing::block_for_next_packets`]):
    /// a file begun before that packet starts with them too.
    pending_blocks: Vec<(u64, Vec<u8>)>,
    pending_bytes: usize,
    /// Blocks not kept for later files (past [`MAX_KEPT_BLOCK_BYTES`] or half a file).
    blocks_not_kept: u64,
    current: Option<CurrentFile>,
    /// Bytes of the current file not yet given to the writer.
    batch: Vec<u8>,
    /// The end of the packet block being written ([`enhanced_packet_block`]), kept
    /// to spare an allocation per packet.
    tail: Vec<u8>,
    next_index: u64,
    /// Closed files still on disk, oldest first, as the writer deletes them.
    closed: VecDeque<PathBuf>,
    packets: u64,
    events: Vec<RingEvent>,
    /// The writer's first failure not yet returned.
    failure: Option<io::Error>,
    writer: Writer,
}

impl EvidenceRing {
    /// A ring in `dir` (created if missing), without interfaces yet
    /// ([`EvidenceRing::interface`]). `snaplen` goes into every interface block (0:
    /// no limit).
    pub fn create(
        dir: &Path,
        started: Timestamp,
        snaplen: u32,
        limits: RingLimits,
    ) -> io::Result<Self> {
        // Captured traffic is personal data: the directory is the owner's alone, as the
        // case directory's `evidence/` (the files themselves are 0600).
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let stamp: String = started
            .to_string()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(15)
            .collect();
        let writer = Writer::start()?;
        Ok(EvidenceRing {
            dir: dir.to_path_buf(),
            stem: format!("tap-{stamp}"),
            limits: RingLimits {
                max_files: limits.max_files.max(1),
                ..limits
            },
            link_types: Vec::new(),
            snaplen,
            kept_blocks: Vec::new(),
            kept_bytes: 0,
            pending_blocks: Vec::new(),
            pending_bytes: 0,
            blocks_not_kept: 0,
            current: None,
            batch: writer.empty_batch(),
            tail: Vec::new(),
            next_index: 1,
            closed: VecDeque::new(),
            packets: 0,
            events: Vec::new(),
            failure: None,
            writer,
        })
    }

    /// The files of the ring that still exist, oldest first.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.closed
            .iter()
            .map(PathBuf::as_path)
            .chain(self.current.as_ref().map(|f| f.path.as_path()))
    }

    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Files closed and removed since the last call, in the order it happened. The
    /// writer's reports are taken in as bytes are handed to it (every 256 KiB, and at
    /// [`EvidenceRing::flush`]), not at every call: looking at every packet cost 3 %
    /// of the capture loop. [`EvidenceRing::settle`] waits for all of them.
    pub fn take_events(&mut self) -> Vec<RingEvent> {
        std::mem::take(&mut self.events)
    }

    /// The number of the interface of `link_type`, added (to the file being written,
    /// and to every later one) if it is new.
    pub fn interface(&mut self, link_type: u16) -> io::Result<u32> {
        if let Some(i) = self.link_types.iter().position(|&l| l == link_type) {
            return Ok(u32::try_from(i).unwrap_or(u32::MAX));
        }
        self.link_types.push(link_type);
        if self.current.is_some() {
            self.append(&interface_description_block(link_type, self.snaplen))?;
        }
        Ok(u32::try_from(self.link_types.len() - 1).unwrap_or(u32::MAX))
    }

    /// Appends a secrets or custom block (as [`secrets_block`] and [`custom_block`]
    /// make them) to the file being written, and keeps it for the start of later
    /// files within [`MAX_KEPT_BLOCK_BYTES`] and half a file.
    pub fn keep_block(&mut self, block: Vec<u8>) -> io::Result<()> {
        let written = self.append_block(&block);
        if self.head_has_room_for(&block) {
            self.kept_bytes += block.len();
            self.kept_blocks.push(block);
        } else {
            self.blocks_not_kept += 1;
        }
        written
    }

    /// Appends a secrets block that the next `packets` packets (at least the next
    /// one) may need: key log lines a tap followed, whose handshakes wait in its delay
    /// queue. A file begun before those packets are written starts with the block
    /// too (within the room [`EvidenceRing::keep_block`] has); later files do not
    /// repeat it, as their packets cannot need it.
    pub fn block_for_next_packets(&mut self, block: Vec<u8>, packets: u64) -> io::Result<()> {
        let written = self.append_block(&block);
        let needed_until = self.packets.saturating_add(packets.max(1));
        self.forget_pending_blocks();
        if self.head_has_room_for(&block) {
            self.pending_bytes += block.len();
            self.pending_blocks.push((needed_until, block));
        } else {
            self.blocks_not_kept += 1;
        }
        written
    }

    /// Writes `block` to the file being written, starting one if there is none: a
    /// block that comes before any packet (a stream's key log first, as `editcap`
    /// puts it) is written even when it is too big to be kept for later files.
    fn append_block(&mut self, block: &[u8]) -> io::Result<()> {
        if self.current.is_none() {
            self.rotate()?;
        }
        self.append(block)
    }

    /// Whether a new file's head can take `block` besides the blocks it has: within
    /// [`MAX_KEPT_BLOCK_BYTES`] and half a file.
    fn head_has_room_for(&self, block: &[u8]) -> bool {
        let room = usize::try_from(self.limits.max_file_bytes / 2)
            .unwrap_or(usize::MAX)
            .min(MAX_KEPT_BLOCK_BYTES);
        self.kept_bytes + self.pending_bytes + block.len() <= room
    }

    /// Drops the pending blocks whose packets are all written.
    fn forget_pending_blocks(&mut self) {
        let written = self.packets;
        self.pending_blocks.retain(|(until, _)| *until > written);
        self.pending_bytes = self.pending_blocks.iter().map(|(_, b)| b.len()).sum();
    }

    /// Secrets and custom blocks not repeated at the start of later files.
    pub fn blocks_not_kept(&self) -> u64 {
        self.blocks_not_kept
    }

    /// Appends one packet as captured on `interface` (`data` may be shorter than
    /// `original_len`), with its comment if it had one.
    pub fn write(
        &mut self,
        ts: Timestamp,
        interface: u32,
        data: &[u8],
        original_len: u32,
        comment: Option<&[u8]>,
    ) -> io::Result<()> {
        if let Some(e) = self.failure.take() {
            return Err(e);
        }
        if interface as usize >= self.link_types.len() {
            return Err(io::Error::other(format!(
                "ring: packet of interface {interface}, which was never added"
            )));
        }
        let head =
            enhanced_packet_block(ts, interface, data, original_len, comment, &mut self.tail);
        let size = (head.len() + data.len() + self.tail.len()) as u64;
        let full = match &self.current {
            Some(f) => f.written + size > self.limits.max_file_bytes,
            None => true,
        };
        if full {
            self.rotate()?;
        }
        let Some(f) = &mut self.current else {
            return Ok(());
        };
        f.written += size;
        f.packets += 1;
        f.first.get_or_insert(ts);
        f.last = Some(ts);
        self.packets += 1;
        self.batch.extend_from_slice(&head);
        self.batch.extend_from_slice(data);
        self.batch.extend_from_slice(&self.tail);
        if self.batch.len() >= BATCH_BYTES {
            self.hand_over()?;
        }
        Ok(())
    }

    /// Adds `bytes` to the file being written.
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        if let Some(f) = &mut self.current {
            f.written += bytes.len() as u64;
            self.batch.extend_from_slice(bytes);
            if self.batch.len() >= BATCH_BYTES {
                self.hand_over()?;
            }
        }
        Ok(())
    }

    /// Gives the bytes gathered so far to the writer, returning a failure it reported.
    fn hand_over(&mut self) -> io::Result<()> {
        if !self.batch.is_empty() {
            let full = std::mem::replace(&mut self.batch, self.writer.empty_batch());
            self.writer.send(Job::Bytes(full))?;
        }
        self.collect_replies();
        self.failure.take().map_or(Ok(()), Err)
    }

    /// Takes in what the writer reported: events, and its first failure.
    fn collect_replies(&mut self) {
        for reply in self.writer.replies() {
            match reply {
                Reply::Event(event) => self.events.push(event),
                Reply::Failed(error) => {
                    self.failure.get_or_insert(error);
                }
            }
        }
    }

    /// Hands the packets gathered so far to the writer, which writes them at once
    /// (also done on rotation and drop); it does not wait for the disk.
    pub fn flush(&mut self) -> io::Result<()> {
        self.hand_over()
    }

    /// Waits until the writer has done all it was given: the bytes are written, the
    /// files closed and deleted so far are in [`EvidenceRing::take_events`].
    pub fn settle(&mut self) -> io::Result<()> {
        self.hand_over()?;
        self.writer.wait()?;
        self.collect_replies();
        self.failure.take().map_or(Ok(()), Err)
    }

    /// Closes the file being written (at the end of a capture) and waits for it to
    /// be synced, reporting it as a [`RingEvent::Closed`]; a later packet starts a
    /// new file.
    pub fn close(&mut self) -> io::Result<()> {
        let closing = self.close_current();
        let settled = self.settle();
        closing.and(settled)
    }

    /// Asks the writer to close the file being written, without waiting for it.
    fn close_current(&mut self) -> io::Result<()> {
        let Some(f) = self.current.take() else {
            return Ok(());
        };
        let handed = self.hand_over();
        self.writer.send(Job::Close(RingFile {
            path: f.path.clone(),
            size: f.written,
            sha256: String::new(),
            packets: f.packets,
            first_packet: f.first_packet,
            first: f.first,
            last: f.last,
        }))?;
        self.closed.push_back(f.path);
        handed
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.close_current()?;
        // The writer deletes the same files, after the close before.
        while self.closed.len() >= self.limits.max_files {
            self.closed.pop_front();
        }
        self.writer.send(Job::Trim {
            max_files: self.limits.max_files,
        })?;
        let path = self
            .dir
            .join(format!("{}-{:05}.pcapng", self.stem, self.next_index));
        self.next_index += 1;
        // Created here, not by the writer: the file exists (and is locked) once a
        // packet is written, for another run looking for files being written.
        let file = open_private(&path)?;
        self.writer.send(Job::Open {
            path: path.clone(),
            file,
        })?;
        self.current = Some(CurrentFile {
            path,
            written: 0,
            packets: 0,
            first_packet: self.packets + 1,
            first: None,
            last: None,
        });
        let mut head = section_header_block();
        for &link_type in &self.link_types {
            head.extend(interface_description_block(link_type, self.snaplen));
        }
        for kept in &self.kept_blocks {
            head.extend_from_slice(kept);
        }
        self.forget_pending_blocks();
        for (_, pending) in &self.pending_blocks {
            head.extend_from_slice(pending);
        }
        self.append(&head)
    }
}

impl Drop for EvidenceRing {
    /// The bytes gathered go to the writer, which finishes before the ring is gone;
    /// the file being written is left as written, not closed.
    fn drop(&mut self) {
        let _ = self.hand_over();
    }
}

/// Creates `path` for writing with mode 0600 where the platform has modes, locked
/// (`flock`, exclusive) for as long as it is open: another run that finds the file
/// unrecorded can tell a file still being written from one a dead run left (the
/// kernel drops the lock with the process).
fn open_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    #[cfg(unix)]
    flock(&file, libc::LOCK_EX)?;
    Ok(file)
}

/// `flock(2)` on `file` without waiting: `Ok(false)` when another open file holds a
/// conflicting lock.
#[cfg(unix)]
fn flock(file: &File, operation: libc::c_int) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: `flock` only reads the descriptor number, which `file` owns and keeps
    // open for the duration of the call; it touches no memory of ours.
    let rc = unsafe { libc::flock(file.as_raw_fd(), operation | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(err)
    }
}

/// Whether a running ring is writing `path` (it holds the file's lock).
pub fn is_being_written(path: &Path) -> io::Result<bool> {
    #[cfg(unix)]
    {
        Ok(!flock(&File::open(path)?, libc::LOCK_SH)?)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(false)
    }
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

/// A Decryption Secrets Block (pcapng's `DSB`, type 10) of `secrets_type` (e.g.
/// `0x544c534b`, a TLS key log).
pub fn secrets_block(secrets_type: u32, data: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(8 + data.len());
    body.extend_from_slice(&secrets_type.to_le_bytes());
    body.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_le_bytes());
    body.extend_from_slice(data);
    block(10, &body)
}

/// A Custom Block that may be copied (type `0x00000BAD`) of private enterprise number
/// `pen`, with its data as read.
pub fn custom_block(pen: u32, data: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(4 + data.len());
    body.extend_from_slice(&pen.to_le_bytes());
    body.extend_from_slice(data);
    block(0x0000_0BAD, &body)
}

/// Bytes of an Enhanced Packet Block before the packet's data.
const EPB_HEAD: usize = 28;

/// The Enhanced Packet Block of a packet, as the three pieces that are written in
/// turn without copying the packet: the returned head (block type and length, the
/// packet's interface, time and lengths), `data` itself, and `tail` (cleared first):
/// the padding to 32 bits, the comment option if any, and the block length again.
fn enhanced_packet_block(
    ts: Timestamp,
    interface: u32,
    data: &[u8],
    original_len: u32,
    comment: Option<&[u8]>,
    tail: &mut Vec<u8>,
) -> [u8; EPB_HEAD] {
    // Zeros up to the next 32-bit boundary of the block (the head is 28 bytes).
    let align = |tail: &mut Vec<u8>| {
        let unaligned = (data.len() + tail.len()) % 4;
        tail.resize(tail.len() + (4 - unaligned) % 4, 0);
    };
    tail.clear();
    align(tail);
    // An option (opt_comment, then opt_endofopt) starts 32-bit aligned after the data.
    if let Some(comment) = comment.filter(|c| c.len() <= usize::from(u16::MAX)) {
        tail.extend_from_slice(&1u16.to_le_bytes());
        tail.extend_from_slice(&(comment.len() as u16).to_le_bytes());
        tail.extend_from_slice(comment);
        align(tail);
        tail.extend_from_slice(&[0; 4]);
    }
    let total = u32::try_from(EPB_HEAD + data.len() + tail.len() + 4).unwrap_or(u32::MAX);
    tail.extend_from_slice(&total.to_le_bytes());
    let micros = ts.micros().max(0) as u64;
    let captured = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let mut head = [0; EPB_HEAD];
    for (at, field) in [
        6,
        total,
        interface,
        (micros >> 32) as u32,
        micros as u32,
        captured,
        original_len.max(captured),
    ]
    .into_iter()
    .enumerate()
    {
        head[at * 4..at * 4 + 4].copy_from_slice(&field.to_le_bytes());
    }
    head
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::capture::{CaptureEvent, CaptureReader, LinkType};

    /// A ring with one Ethernet interface.
    fn ring_with(dir: &Path, started: Timestamp, limits: RingLimits) -> EvidenceRing {
        let mut ring = EvidenceRing::create(dir, started, 65535, limits).unwrap();
        assert_eq!(ring.interface(1).unwrap(), 0);
        ring
    }

    /// What a ring file holds, read back: (link type, data, comment) of each frame,
    /// the secrets and the custom blocks' (PEN, data).
    type ReadBack = (
        Vec<(u32, Vec<u8>, Option<Vec<u8>>)>,
        Vec<Vec<u8>>,
        Vec<(u32, Vec<u8>)>,
    );

    fn read_back(path: &Path) -> ReadBack {
        let mut reader = CaptureReader::new(File::open(path).unwrap()).unwrap();
        let (mut frames, mut secrets, mut custom) = (Vec::new(), Vec::new(), Vec::new());
        while let Some(event) = reader.next_event().unwrap() {
            match event {
                CaptureEvent::Frame(f) => frames.push((
                    f.link.number(),
                    f.data.to_vec(),
                    f.comment.map(<[u8]>::to_vec),
                )),
                CaptureEvent::Secrets { secrets_type, data } => {
                    assert_eq!(secrets_type, 0x544c_534b);
                    secrets.push(data.to_vec());
                }
                CaptureEvent::Custom { pen, data, .. } => custom.push((pen, data.to_vec())),
            }
        }
        (frames, secrets, custom)
    }

    proptest::proptest! {
        /// Packets of any length with comments of any bytes and length (none
        /// included) read back as written, each on its interface.
        #[test]
        fn packets_and_comments_read_back_as_written(
            packets in proptest::collection::vec(
                (
                    proptest::collection::vec(proptest::num::u8::ANY, 0..70),
                    proptest::option::of(proptest::collection::vec(proptest::num::u8::ANY, 0..40)),
                    proptest::bool::ANY,
                ),
                1..12,
            ),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut ring =
                EvidenceRing::create(dir.path(), Timestamp::from_micros(0), 0, RingLimits::default())
                    .unwrap();
            let mut want = Vec::new();
            for (i, (data, comment, raw)) in packets.iter().enumerate() {
                let link = if *raw { 101 } else { 1 };
                let interface = ring.interface(link).unwrap();
                let ts = Timestamp::from_micros(i as i64);
                ring.write(ts, interface, data, data.len() as u32, comment.as_deref())
                    .unwrap();
                want.push((u32::from(link), data.clone(), comment.clone()));
            }
            ring.close().unwrap();
            let files: Vec<PathBuf> = ring.files().map(Path::to_path_buf).collect();
            proptest::prop_assert_eq!(files.len(), 1);
            proptest::prop_assert_eq!(read_back(&files[0]).0, want);
        }
    }

    /// Kept blocks never fill more than half a file: a key log larger than that
    /// stays in the file it came in, and later files still hold packets.
    #[test]
    fn kept_blocks_leave_room_for_packets() {
        let dir = tempfile::tempdir().unwrap();
        let limits = RingLimits {
            max_file_bytes: 1000,
            max_files: 10,
        };
        let mut ring = ring_with(dir.path(), Timestamp::from_micros(0), limits);
        ring.keep_block(secrets_block(0x544c_534b, &[b'k'; 300]))
            .unwrap();
        ring.keep_block(secrets_block(0x544c_534b, &[b'l'; 300]))
            .unwrap();
        assert_eq!(ring.blocks_not_kept(), 1);
        for i in 0..6u8 {
            ring.write(
                Timestamp::from_micros(i64::from(i)),
                0,
                &[i; 200],
                200,
                None,
            )
            .unwrap();
        }
        ring.close().unwrap();
        let files: Vec<PathBuf> = ring.files().map(Path::to_path_buf).collect();
        assert!(files.len() < 6, "a file per packet: {files:?}");
        for f in &files {
            let (frames, secrets, _) = read_back(f);
            assert!(!frames.is_empty(), "{f:?}");
            assert_eq!(secrets[0], vec![b'k'; 300], "{f:?}");
        }
    }

    /// A block for the next packets shares the head's room with the kept blocks:
    /// past half a file it is written where it came but not repeated, and counted.
    /// Blocks before any packet start the first file, so none is lost.
    #[test]
    fn blocks_for_the_next_packets_share_the_heads_room() {
        let dir = tempfile::tempdir().unwrap();
        let limits = RingLimits {
            max_file_bytes: 1000,
            max_files: 10,
        };
        let mut ring = ring_with(dir.path(), Timestamp::from_micros(0), limits);
        ring.block_for_next_packets(secrets_block(0x544c_534b, &[b'a'; 200]), 0)
            .unwrap();
        ring.keep_block(secrets_block(0x544c_534b, &[b'k'; 200]))
            .unwrap();
        // 216 + 216 + 216 bytes: past the 500 of half a file.
        ring.block_for_next_packets(secrets_block(0x544c_534b, &[b'b'; 200]), 5)
            .unwrap();
        assert_eq!(ring.blocks_not_kept(), 1);
        ring.write(Timestamp::from_micros(1), 0, &[1; 100], 100, None)
            .unwrap();
        ring.close().unwrap();
        let files: Vec<PathBuf> = ring.files().map(Path::to_path_buf).collect();
        assert_eq!(files.len(), 1);
        let (frames, secrets, _) = read_back(&files[0]);
        assert_eq!(frames.len(), 1);
        assert_eq!(
            secrets,
            vec![vec![b'a'; 200], vec![b'k'; 200], vec![b'b'; 200]]
        );
    }

    /// A stream's interfaces of two link types, its packet comments, secrets and
    /// custom blocks go into the ring as read, and every later file starts with all
    /// interfaces and the blocks kept, so it reads alone as the stream did.
    #[test]
    fn interfaces_comments_and_kept_blocks_reach_every_file() {
        let dir = tempfile::tempdir().unwrap();
        let limits = RingLimits {
            max_file_bytes: 500,
            max_files: 10,
        };
        let mut ring =
            EvidenceRing::create(dir.path(), Timestamp::from_micros(0), 0, limits).unwrap();
        let raw = ring.interface(101).unwrap();
        ring.keep_block(custom_block(62652, b"uid map.")).unwrap();
        ring.write(
            Timestamp::from_micros(1),
            raw,
            &[0x45; 30],
            30,
            Some(b"u-10123"),
        )
        .unwrap();
        // A second link type and secrets in the middle of the first file.
        let sll2 = ring.interface(276).unwrap();
        assert_eq!((raw, sll2, ring.interface(101).unwrap()), (0, 1, 0));
        ring.keep_block(secrets_block(0x544c_534b, b"CLIENT_RANDOM a b\n"))
            .unwrap();
        ring.write(Timestamp::from_micros(2), sll2, &[2; 40], 40, None)
            .unwrap();
        // Past 500 bytes: a second file.
        ring.write(Timestamp::from_micros(3), raw, &[3; 200], 200, Some(b"u-1"))
            .unwrap();
        ring.write(Timestamp::from_micros(4), sll2, &[4; 20], 20, None)
            .unwrap();
        assert!(ring
            .write(Timestamp::from_micros(5), 2, &[5], 1, None)
            .is_err());
        ring.close().unwrap();
        let files: Vec<PathBuf> = ring.files().map(Path::to_path_buf).collect();
        assert_eq!(files.len(), 2, "{files:?}");
        let first = read_back(&files[0]);
        assert_eq!(
            first.0,
            vec![
                (101, vec![0x45; 30], Some(b"u-10123".to_vec())),
                (276, vec![2; 40], None),
            ]
        );
        assert_eq!(first.1, vec![b"CLIENT_RANDOM a b\n".to_vec()]);
        // (A reader cannot tell a custom block's data from its padding: 8 bytes, none.)
        assert_eq!(first.2, vec![(62652, b"uid map.".to_vec())]);
        let second = read_back(&files[1]);
        assert_eq!(
            second.0,
            vec![
                (101, vec![3; 200], Some(b"u-1".to_vec())),
                (276, vec![4; 20], None),
            ]
        );
        assert_eq!((second.1, second.2), (first.1, first.2));
        assert_eq!(ring.blocks_not_kept(), 0);
    }

    #[test]
    fn ring_files_read_back_and_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let limits = RingLimits {
            max_file_bytes: 300,
            max_files: 2,
        };
        let t0 = Timestamp::from_micros(1_764_000_000_123_456);
        let mut ring = ring_with(dir.path(), t0, limits);
        for i in 0..10u8 {
            let t = Timestamp::from_micros(t0.micros() + i64::from(i));
            ring.write(t, 0, &[i; 61], 100, None).unwrap();
        }
        ring.settle().unwrap();
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

    #[test]
    fn a_directory_the_ring_creates_is_the_owners_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("case/evidence");
        let limits = RingLimits {
            max_file_bytes: 1 << 16,
            max_files: 2,
        };
        let t0 = Timestamp::from_micros(1_764_000_000_123_456);
        ring_with(&nested, t0, limits);
        for d in [dir.path().join("case"), nested] {
            let mode = fs::metadata(&d).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", d.display());
        }
    }

    fn ring_of(dir: &Path, max_file_bytes: u64, max_files: usize) -> EvidenceRing {
        let limits = RingLimits {
            max_file_bytes,
            max_files,
        };
        ring_with(dir, Timestamp::from_micros(0), limits)
    }

    #[test]
    fn closed_files_carry_the_hash_size_and_packets_of_their_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mut ring = ring_of(dir.path(), 300, 3);
        for i in 0..10u8 {
            // Packets of varying length: blocks with and without padding.
            let data = vec![i; 40 + usize::from(i)];
            ring.write(
                Timestamp::from_micros(1000 + i64::from(i)),
                0,
                &data,
                200,
                None,
            )
            .unwrap();
        }
        ring.close().unwrap();
        let events = ring.take_events();
        assert!(ring.take_events().is_empty(), "events are handed out once");
        let closed: Vec<&RingFile> = events
            .iter()
            .filter_map(|e| match e {
                RingEvent::Closed(f) => Some(f),
                _ => None,
            })
            .collect();
        let removed: Vec<&RingFile> = events
            .iter()
            .filter_map(|e| match e {
                RingEvent::Removed(f) => Some(f),
                _ => None,
            })
            .collect();
        assert!(closed.len() > 3, "the ring rotated: {closed:?}");
        assert_eq!(removed.len(), closed.len() - 3);
        // Every packet is in exactly one file, numbered on from the file before.
        assert_eq!(closed.iter().map(|f| f.packets).sum::<u64>(), 10);
        let mut next = 1;
        for f in &closed {
            assert_eq!(f.first_packet, next);
            next += f.packets;
            let first = f.first.unwrap().micros() - 1000;
            let last = f.last.unwrap().micros() - 1000;
            assert_eq!(first as u64 + 1, f.first_packet);
            assert_eq!(last - first + 1, f.packets as i64);
        }
        // The files still there hash, as read back, to what was computed while
        // writing them; the ones removed are gone and were closed before.
        let kept: Vec<&Path> = ring.files().collect();
        assert_eq!(kept.len(), 3);
        for f in &closed {
            if kept.contains(&f.path.as_path()) {
                assert_eq!(crate::source::file_sha256(&f.path).unwrap(), f.sha256);
                assert_eq!(fs::metadata(&f.path).unwrap().len(), f.size);
            } else {
                assert!(!f.path.exists());
                assert!(removed.contains(f), "{f:?} vanished unreported");
            }
        }
        for (i, e) in events.iter().enumerate() {
            if let RingEvent::Removed(f) = e {
                let closed_at = events
                    .iter()
                    .position(|c| matches!(c, RingEvent::Closed(c) if c == f))
                    .unwrap();
                assert!(closed_at < i, "removed before it was closed");
            }
        }
    }

    #[test]
    fn a_file_written_past_several_writeback_starts_reads_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut ring = ring_of(dir.path(), 64 << 20, 2);
        let packets = 3 * writer::WRITEBACK_EVERY / 60_000 + 1;
        for i in 0..packets {
            let data = vec![(i % 251) as u8; 60_000];
            ring.write(Timestamp::from_micros(i as i64), 0, &data, 60_000, None)
                .unwrap();
        }
        ring.close().unwrap();
        let events = ring.take_events();
        let [RingEvent::Closed(file)] = &events[..] else {
            panic!("one file closed: {events:?}");
        };
        assert!(file.size > 3 * writer::WRITEBACK_EVERY);
        assert_eq!(file.packets, packets);
        assert_eq!(crate::source::file_sha256(&file.path).unwrap(), file.sha256);
        assert_eq!(fs::metadata(&file.path).unwrap().len(), file.size);
        let (frames, _, _) = read_back(&file.path);
        assert_eq!(frames.len() as u64, packets);
        assert!(frames
            .iter()
            .enumerate()
            .all(|(i, (_, data, _))| data.len() == 60_000
                && data.iter().all(|&b| b == (i % 251) as u8)));
    }

    #[test]
    fn a_file_removed_by_someone_else_is_not_reported_removed_by_the_ring() {
        let dir = tempfile::tempdir().unwrap();
        let mut ring = ring_of(dir.path(), 200, 1);
        ring.write(Timestamp::from_micros(1), 0, &[1; 100], 100, None)
            .unwrap();
        let first: PathBuf = ring.files().next().unwrap().to_path_buf();
        fs::remove_file(&first).unwrap();
        // The next packet does not fit: the first file is closed, then due for removal.
        ring.write(Timestamp::from_micros(2), 0, &[2; 100], 100, None)
            .unwrap();
        ring.settle().unwrap();
        let events = ring.take_events();
        assert!(matches!(&events[0], RingEvent::Closed(f) if f.path == first));
        assert!(
            matches!(&events[1], RingEvent::NotRemoved(f, e) if f.path == first && e.kind() == io::ErrorKind::NotFound),
            "{events:?}"
        );
        assert_eq!(events.len(), 2);
    }

    #[test]
    fn an_empty_ring_closes_nothing_and_empty_packets_hash_as_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut ring = ring_of(dir.path(), 1 << 20, 2);
        ring.close().unwrap();
        assert!(ring.take_events().is_empty());
        ring.write(Timestamp::from_micros(5), 0, &[], 0, None)
            .unwrap();
        ring.close().unwrap();
        let events = ring.take_events();
        let [RingEvent::Closed(f)] = &events[..] else {
            panic!("{events:?}")
        };
        assert_eq!(f.packets, 1);
        assert_eq!(crate::source::file_sha256(&f.path).unwrap(), f.sha256);
    }

    #[test]
    fn frame_numbers_map_to_the_file_and_its_own_numbering() {
        let dir = tempfile::tempdir().unwrap();
        // 300-byte files: packets 1-3 in the first file, 4-6 in the second, …
        let mut ring = ring_of(dir.path(), 300, 2);
        let mut files = FrameFiles::default();
        assert_eq!(files.locate(1, 1), None);
        for i in 0..8u8 {
            ring.write(Timestamp::from_micros(i64::from(i)), 0, &[i; 40], 40, None)
                .unwrap();
            files.note(&ring);
        }
        ring.settle().unwrap();
        let closed: Vec<RingFile> = ring
            .take_events()
            .into_iter()
            .filter_map(|e| match e {
                RingEvent::Closed(f) => Some(f),
                _ => None,
            })
            .collect();
        let name = |i: usize| format!("tap-19700101T000000-{:05}.pcapng", i);
        assert_eq!(
            closed[0].path.file_name().unwrap().to_str(),
            Some(&*name(1))
        );
        let per_file = closed[0].packets;
        assert!(per_file >= 2 && closed[1].first_packet == per_file + 1);
        assert_eq!(files.locate(1, 2), Some(format!("{} frames 1-2", name(1))));
        assert_eq!(
            files.locate(per_file + 2, per_file + 2),
            Some(format!("{} frame 2", name(2)))
        );
        // Across a rotation; the first file is deleted by now, still named.
        assert_eq!(
            files.locate(per_file, per_file + 1),
            Some(format!(
                "{} frame {per_file} to {} frame 1",
                name(1),
                name(2)
            ))
        );
        // Frame numbers from 0 (before the ring's first packet) name nothing.
        assert_eq!(files.locate(0, 3), None);
        // The files a locator names are read back from it.
        let named = |first, last| -> Vec<String> {
            let locator = files.locate(first, last).unwrap();
            files_in_locator(&locator).map(str::to_string).collect()
        };
        assert_eq!(named(1, 2), [name(1)]);
        assert_eq!(named(per_file + 2, per_file + 2), [name(2)]);
        assert_eq!(named(per_file, per_file + 1), [name(1), name(2)]);
        for other in ["frames 1-9", "record 3", "a.pcapng", "x.har frames 1-2", ""] {
            assert_eq!(files_in_locator(other).count(), 0, "{other}");
        }
    }
}
