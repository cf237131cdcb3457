//! The disk side of the evidence ring, on a thread of its own: ring files written,
//! hashed, started on their way to disk, synced, closed and, the oldest, deleted.
//! The capture loop only gathers pcapng blocks into batches. Hashing and writing
//! them in the loop took a third of its time (0.6–0.7 of 2.0 CPU s for the 522 MB
//! benchmark capture, `benches/HISTORY.md`), and a file's closing sync held it up;
//! on a core of its own that work no longer limits the link rate the tap keeps up with.
//!
//! Jobs are done in the order given, so files close, are deleted and open in the
//! order the ring decided, and the ring's events come back in that order. The queue
//! is bounded ([`QUEUED_JOBS`] of at most a batch each): a writer behind a slow disk
//! holds the capture loop up, whose kernel buffer then takes the burst or counts the
//! drops, rather than memory growing. A failure comes back to be returned by the
//! ring's next call; the file it happened in is never reported closed.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

use super::{RingEvent, RingFile};

/// Bytes a batch gathers before it goes to the writer: one `write` system call each.
pub(super) const BATCH_BYTES: usize = 256 << 10;

/// Capacity of a written batch past which it is freed rather than filled again.
const MAX_SPARE_BATCH: usize = 2 * BATCH_BYTES;

/// Jobs queued for the writer: with a batch each, 2 MiB of packets in flight at
/// most. Longer stalls of the disk (a file's closing sync waits for its last few
/// MiB, [`WRITEBACK_EVERY`]) hold the capture loop up and wait in the kernel's
/// capture buffer (32 MiB by default), so a deeper queue would only widen the
/// window in which packets are analysed before a failure to write them is known.
pub(super) const QUEUED_JOBS: usize = 8;

/// Bytes written to a ring file between two starts of its writeback to disk. A file
/// is synced when it is closed (its recorded hash must not outlive its bytes), and
/// with a whole file's worth of dirty pages that sync took a quarter second per
/// 100 MiB file here (`benches/live_compare.sh`; `benches/HISTORY.md`). Started
/// every few MiB, the writeback runs along, and the close's sync waits for the last
/// few MiB only.
pub(super) const WRITEBACK_EVERY: u64 = 4 << 20;

/// What the writer is asked to do.
pub(super) enum Job {
    /// Write the following bytes into `file`, created (and locked) by the ring.
    Open { path: PathBuf, file: File },
    /// Bytes for the file being written.
    Bytes(Vec<u8>),
    /// Close the file being written. `RingFile` is what the ring knows of it; the
    /// writer fills in its size and hash and reports it [`RingEvent::Closed`].
    Close(RingFile),
    /// Delete the oldest closed files until fewer than `max_files` remain.
    Trim { max_files: usize },
    /// Answer once every job before is done.
    Barrier(SyncSender<()>),
}

/// What the writer reports, in the order it happened.
pub(super) enum Reply {
    Event(RingEvent),
    Failed(io::Error),
}

/// The ring's handle on its writer thread; dropping it lets the thread finish the
/// jobs queued and waits for it (the file being written is left as written, not
/// closed, as a crash would leave it).
pub(super) struct Writer {
    jobs: Option<SyncSender<Job>>,
    replies: Receiver<Reply>,
    /// Batches written, emptied, for the ring to fill again.
    spare: Receiver<Vec<u8>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    pub(super) fn start() -> io::Result<Writer> {
        let (jobs, queued) = mpsc::sync_channel(QUEUED_JOBS);
        let (reply, replies) = mpsc::channel();
        let (give_back, spare) = mpsc::channel();
        let mut disk = Disk {
            current: None,
            closed: VecDeque::new(),
            reply,
            give_back,
        };
        let thread = std::thread::Builder::new()
            .name("consentry-ring".into())
            .spawn(move || {
                for job in queued {
                    disk.run(job);
                }
            })?;
        Ok(Writer {
            jobs: Some(jobs),
            replies,
            spare,
            thread: Some(thread),
        })
    }

    /// Queues `job`, waiting while the queue is full.
    pub(super) fn send(&self, job: Job) -> io::Result<()> {
        self.jobs
            .as_ref()
            .and_then(|jobs| jobs.send(job).ok())
            .ok_or_else(|| io::Error::other("the evidence ring's writer thread has stopped"))
    }

    /// An empty batch: one the writer is done with, or a new one.
    pub(super) fn empty_batch(&self) -> Vec<u8> {
        self.spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BATCH_BYTES))
    }

    /// What the writer has reported since the last call.
    pub(super) fn replies(&self) -> impl Iterator<Item = Reply> + '_ {
        self.replies.try_iter()
    }

    /// Waits until every job queued so far is done.
    pub(super) fn wait(&self) -> io::Result<()> {
        let (done, wait) = mpsc::sync_channel(1);
        self.send(Job::Barrier(done))?;
        wait.recv()
            .map_err(|_| io::Error::other("the evidence ring's writer thread has stopped"))
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The file being written, with its running hash.
struct OpenFile {
    path: PathBuf,
    file: File,
    written: u64,
    /// Bytes whose writeback to disk has been started ([`WRITEBACK_EVERY`]).
    writeback_started: u64,
    hash: Sha256,
    /// A write failed: what is on disk is unknown, so the file is never reported closed.
    failed: bool,
}

/// The writer thread's state.
struct Disk {
    current: Option<OpenFile>,
    /// Closed files still on disk, oldest first.
    closed: VecDeque<RingFile>,
    reply: Sender<Reply>,
    give_back: Sender<Vec<u8>>,
}

impl Disk {
    fn run(&mut self, job: Job) {
        match job {
            Job::Open { path, file } => {
                self.current = Some(OpenFile {
                    path,
                    file,
                    written: 0,
                    writeback_started: 0,
                    hash: Sha256::new(),
                    failed: false,
                })
            }
            Job::Bytes(mut batch) => {
                if let Some(f) = &mut self.current {
                    if let Err(e) = f.append(&batch) {
                        self.failed(e);
                    }
                }
                // One that grew for a large block (a stream's key log may take 16 MiB)
                // is freed: the ten or so batches in circulation stay small. The ring
                // may be gone already (dropped): the batch is just freed then too.
                if batch.capacity() <= MAX_SPARE_BATCH {
                    batch.clear();
                    let _ = self.give_back.send(batch);
                }
            }
            Job::Close(known) => {
                if let Some(f) = self.current.take() {
                    match f.close(known) {
                        Ok(closed) => {
                            self.event(RingEvent::Closed(closed.clone()));
                            self.closed.push_back(closed);
                        }
                        Err(e) => self.failed(e),
                    }
                }
            }
            Job::Trim { max_files } => {
                while self.closed.len() >= max_files.max(1) {
                    let Some(old) = self.closed.pop_front() else {
                        break;
                    };
                    // Only a file the ring deleted itself is reported removed: one gone
                    // already was removed by someone else, which `verify` must report.
                    self.event(match fs::remove_file(&old.path) {
                        Ok(()) => RingEvent::Removed(old),
                        Err(e) => RingEvent::NotRemoved(old, e),
                    });
                }
            }
            Job::Barrier(done) => {
                let _ = done.send(());
            }
        }
    }

    fn event(&self, event: RingEvent) {
        let _ = self.reply.send(Reply::Event(event));
    }

    fn failed(&self, error: io::Error) {
        let _ = self.reply.send(Reply::Failed(error));
    }
}

impl OpenFile {
    /// Writes `bytes` and hashes them once written.
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.failed {
            return Ok(());
        }
        if let Err(e) = self.file.write_all(bytes) {
            self.failed = true;
            return Err(io::Error::new(
                e.kind(),
                format!("writing {}: {e}", self.path.display()),
            ));
        }
        self.hash.update(bytes);
        self.written += bytes.len() as u64;
        if self.written - self.writeback_started >= WRITEBACK_EVERY {
            start_writeback(&self.file, self.writeback_started, self.written);
            self.writeback_started = self.written;
        }
        Ok(())
    }

    /// Syncs (a recorded hash must not outlive the bytes after a power cut) and
    /// closes the file, completing what the ring knew of it.
    fn close(self, known: RingFile) -> io::Result<RingFile> {
        if self.failed {
            return Err(io::Error::other(format!(
                "{}: an earlier write failed",
                self.path.display()
            )));
        }
        self.file.sync_all().map_err(|e| {
            io::Error::new(e.kind(), format!("syncing {}: {e}", self.path.display()))
        })?;
        Ok(RingFile {
            sha256: crate::source::hex(&self.hash.finalize()),
            size: self.written,
            path: self.path,
            ..known
        })
    }
}

/// Asks the kernel to start writing the bytes `from..to` of `file` to disk, without
/// waiting for them. Only a head start for the sync at the file's close, which
/// reports any failure; Linux only (elsewhere the close's sync does it all).
fn start_writeback(file: &File, from: u64, to: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::io::AsRawFd;
        let (Ok(offset), Ok(len)) = (i64::try_from(from), i64::try_from(to - from)) else {
            return;
        };
        // SAFETY: `sync_file_range` only reads the descriptor number, which `file`
        // owns and keeps open for the duration of the call, and three integers.
        let _ = unsafe {
            libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
        };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, from, to);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(path: &std::path::Path) -> RingFile {
        RingFile {
            path: path.to_path_buf(),
            size: 0,
            sha256: String::new(),
            packets: 1,
            first_packet: 1,
            first: None,
            last: None,
        }
    }

    /// Has `w` write `chunks` into `file` (at `path`), then close it.
    fn write_file(w: &Writer, path: &std::path::Path, file: File, chunks: &[&[u8]]) {
        w.send(Job::Open {
            path: path.to_path_buf(),
            file,
        })
        .unwrap();
        for chunk in chunks {
            w.send(Job::Bytes(chunk.to_vec())).unwrap();
        }
        w.send(Job::Close(known(path))).unwrap();
    }

    fn settled_replies(w: &Writer) -> Vec<Reply> {
        w.wait().unwrap();
        w.replies().collect()
    }

    #[test]
    fn a_file_is_closed_with_the_size_and_hash_of_the_bytes_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.pcapng");
        let w = Writer::start().unwrap();
        let file = File::create(&path).unwrap();
        write_file(&w, &path, file, &[b"first ", b"second"]);
        let replies = settled_replies(&w);
        let [Reply::Event(RingEvent::Closed(f))] = &replies[..] else {
            panic!("one file closed");
        };
        assert_eq!(fs::read(&path).unwrap(), b"first second");
        assert_eq!(f.size, 12);
        assert_eq!(f.sha256, crate::source::file_sha256(&path).unwrap());
        assert_eq!(
            (f.packets, f.first_packet),
            (1, 1),
            "the ring's counts kept"
        );
        // The batches come back emptied, to be filled again …
        let spare = w.empty_batch();
        assert!(spare.is_empty() && spare.capacity() >= 6);
        // … but not one that grew large.
        let path = dir.path().join("b.pcapng");
        let file = File::create(&path).unwrap();
        write_file(&w, &path, file, &[&vec![1; MAX_SPARE_BATCH + 1]]);
        settled_replies(&w);
        let spares: Vec<usize> = w.spare.try_iter().map(|b| b.capacity()).collect();
        assert!(spares.iter().all(|&c| c <= MAX_SPARE_BATCH), "{spares:?}");
    }

    #[test]
    fn a_failed_write_is_reported_once_and_its_file_never_closed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("read-only.pcapng");
        fs::write(&path, b"").unwrap();
        let w = Writer::start().unwrap();
        // Opened for reading only: every write fails.
        let file = File::open(&path).unwrap();
        write_file(&w, &path, file, &[b"lost", b"also lost"]);
        let replies = settled_replies(&w);
        let failures: Vec<String> = replies
            .iter()
            .map(|r| match r {
                Reply::Failed(e) => e.to_string(),
                Reply::Event(e) => panic!("no event expected: {e:?}"),
            })
            .collect();
        assert_eq!(failures.len(), 2, "{failures:?}");
        assert!(failures[0].starts_with("writing ") && failures[0].contains("read-only.pcapng"));
        assert!(
            failures[1].ends_with("an earlier write failed"),
            "{failures:?}"
        );
        // The next file is written as usual.
        let next = dir.path().join("next.pcapng");
        let file = File::create(&next).unwrap();
        write_file(&w, &next, file, &[b"kept"]);
        assert!(
            matches!(&settled_replies(&w)[..], [Reply::Event(RingEvent::Closed(f))] if f.size == 4)
        );
    }

    #[test]
    fn a_dropped_writer_finishes_the_jobs_queued_before_it_returns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.pcapng");
        let w = Writer::start().unwrap();
        let file = File::create(&path).unwrap();
        w.send(Job::Open {
            path: path.clone(),
            file,
        })
        .unwrap();
        for _ in 0..QUEUED_JOBS * 2 {
            w.send(Job::Bytes(vec![7; 1000])).unwrap();
        }
        drop(w);
        assert_eq!(
            fs::metadata(&path).unwrap().len(),
            2000 * QUEUED_JOBS as u64
        );
    }
}
