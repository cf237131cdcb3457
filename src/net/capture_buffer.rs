//! The capture reader's buffer: the file's bytes not yet parsed, refilled by reads
//! whose destination starts at a [`REFILL_ALIGN`]-aligned address.
//!
//! The alignment is for the direct-I/O reader (`source::direct_read`): given an
//! aligned destination of at least a chunk, it has the device write there instead of
//! into a buffer of its own, from which every byte of the file was copied again
//! (about 2 % of `analyze -j 1`'s time on the bench capture). To keep the unread
//! rest of a block in front of the new bytes, a refill moves that rest (normally
//! part of one frame) to end just before the next aligned address.

use std::io::{self, Read};

/// Alignment of each refill's destination: the direct-I/O reader's alignment.
pub const REFILL_ALIGN: usize = 4096;

/// A refillable window over a stream (see the module documentation).
pub struct CaptureBuffer<R> {
    reader: R,
    /// `capacity` bytes and room to align the refill destination twice over.
    buf: Vec<u8>,
    /// Unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    capacity: usize,
    exhausted: bool,
}

impl<R: Read> CaptureBuffer<R> {
    /// A buffer holding up to `capacity` unread bytes (at least `head.len()`), which
    /// starts with `head`, the bytes already read from `reader`.
    pub fn new(reader: R, capacity: usize, head: &[u8]) -> Self {
        Self::with_storage(reader, capacity, head, Vec::new())
    }

    /// [`new`](Self::new) in the memory of `storage` (what
    /// [`into_storage`](Self::into_storage) gave back): only bytes it lacks are
    /// allocated and zeroed, so the files of a capture cut into many do not each
    /// zero a buffer of several MiB.
    pub fn with_storage(reader: R, capacity: usize, head: &[u8], storage: Vec<u8>) -> Self {
        let capacity = capacity.max(head.len()).max(1);
        let mut buf = storage;
        buf.resize(capacity + 2 * REFILL_ALIGN, 0);
        buf[..head.len()].copy_from_slice(head);
        CaptureBuffer {
            reader,
            buf,
            start: 0,
            end: head.len(),
            capacity,
            exhausted: false,
        }
    }

    /// The buffer's memory, for [`with_storage`](Self::with_storage).
    pub fn into_storage(self) -> Vec<u8> {
        self.buf
    }

    /// The unread bytes.
    pub fn data(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or_default()
    }

    /// Marks the first `n` unread bytes as read.
    pub fn consume(&mut self, n: usize) {
        self.start = self.start.saturating_add(n).min(self.end);
    }

    /// How many unread bytes the buffer can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether the last read found the end of the stream.
    pub fn exhausted(&self) -> bool {
        self.exhausted
    }

    /// Makes room for `capacity` unread bytes (never shrinks).
    pub fn grow(&mut self, capacity: usize) {
        if capacity <= self.capacity {
            return;
        }
        let mut buf = vec![0u8; capacity + 2 * REFILL_ALIGN];
        let unread = self.end - self.start;
        buf[..unread].copy_from_slice(self.data());
        self.buf = buf;
        self.start = 0;
        self.end = unread;
        self.capacity = capacity;
    }

    /// Reads once more from the stream (retrying interruptions) into the room after
    /// the unread bytes, which are first moved to end at an aligned address.
    pub fn refill(&mut self) -> io::Result<()> {
        let unread = self.end - self.start;
        // `buf` holds `capacity` + 2 alignments and `unread` <= `capacity`: the
        // aligned destination has room after it.
        let skew = self
            .buf
            .get(unread..)
            .map(|rest| rest.as_ptr().align_offset(REFILL_ALIGN))
            .filter(|&skew| skew < REFILL_ALIGN)
            .unwrap_or(0);
        let at = unread + skew;
        if self.start != at - unread {
            self.buf.copy_within(self.start..self.end, at - unread);
            self.start = at - unread;
            self.end = at;
        }
        let Some(room) = self.buf.get_mut(at..) else {
            return Err(io::Error::other("capture buffer out of room"));
        };
        loop {
            match self.reader.read(room) {
                Ok(n) => {
                    self.end = at + n.min(room.len());
                    self.exhausted = n == 0;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out its bytes in reads of at most `piece`, recording where each read's
    /// destination started.
    struct Pieces {
        data: Vec<u8>,
        at: usize,
        piece: usize,
        destinations: Vec<usize>,
    }

    impl Read for Pieces {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            self.destinations.push(out.as_ptr() as usize);
            let n = out.len().min(self.piece).min(self.data.len() - self.at);
            out[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn bytes(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn every_byte_comes_out_once_in_order_and_refills_are_aligned() {
        let data = bytes(100_000);
        for (capacity, piece, step) in [(64, 7, 5), (4096, 10_000, 1000), (9000, 3, 9000)] {
            let reader = Pieces {
                data: data[3..].to_vec(),
                at: 0,
                piece,
                destinations: Vec::new(),
            };
            let mut buf = CaptureBuffer::new(reader, capacity, &data[..3]);
            let got = drain(&mut buf, step);
            assert!(
                got == data,
                "capacity {capacity}, piece {piece}, step {step}"
            );
            let reader = &buf.reader;
            assert!(reader.destinations.iter().all(|&d| d % REFILL_ALIGN == 0));
        }
    }

    /// Every byte of `buf`, taken `step` at a time.
    fn drain<R: Read>(buf: &mut CaptureBuffer<R>, step: usize) -> Vec<u8> {
        let mut got = Vec::new();
        loop {
            let want = step.min(buf.capacity());
            while buf.data().len() < want && !buf.exhausted() {
                buf.refill().unwrap();
            }
            let n = buf.data().len().min(want);
            if n == 0 {
                return got;
            }
            got.extend_from_slice(&buf.data()[..n]);
            buf.consume(n);
        }
    }

    #[test]
    fn storage_of_another_buffer_gives_only_the_new_streams_bytes() {
        let data = bytes(30_000);
        let pieces = |data: &[u8]| Pieces {
            data: data.to_vec(),
            at: 0,
            piece: 777,
            destinations: Vec::new(),
        };
        // Storage full of another stream's bytes, larger (after growing) and
        // smaller than the new buffer needs.
        let mut first = CaptureBuffer::new(pieces(&[0xff; 9000]), 1000, b"old");
        first.grow(5000);
        assert_eq!(drain(&mut first, 100).len(), 9003);
        let mut storage = first.into_storage();
        for capacity in [2000, 3000, 12_000] {
            let mut buf =
                CaptureBuffer::with_storage(pieces(&data[5..]), capacity, &data[..5], storage);
            assert!(drain(&mut buf, 333) == data, "capacity {capacity}");
            assert!(buf
                .reader
                .destinations
                .iter()
                .all(|&d| d % REFILL_ALIGN == 0));
            storage = buf.into_storage();
            storage.fill(0xee);
        }
    }

    #[test]
    fn growing_keeps_the_unread_bytes() {
        let data = bytes(50_000);
        let reader = Pieces {
            data: data.clone(),
            at: 0,
            piece: 1000,
            destinations: Vec::new(),
        };
        let mut buf = CaptureBuffer::new(reader, 100, &[]);
        buf.refill().unwrap();
        buf.consume(30);
        buf.grow(20_000);
        assert_eq!(buf.capacity(), 20_000);
        while buf.data().len() < 20_000 {
            buf.refill().unwrap();
        }
        assert!(buf.data()[..20_000] == data[30..20_030]);
    }

    #[test]
    fn read_errors_are_passed_on_and_interruptions_retried() {
        struct Failing(u32);
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                self.0 += 1;
                match self.0 {
                    1 => Err(io::ErrorKind::Interrupted.into()),
                    2 => Ok(0),
                    _ => Err(io::Error::other("device gone")),
                }
            }
        }
        let mut buf = CaptureBuffer::new(Failing(0), 64, b"abc");
        buf.refill().unwrap();
        assert!(buf.exhausted());
        assert_eq!(buf.data(), b"abc");
        assert_eq!(buf.refill().unwrap_err().to_string(), "device gone");
    }
}
