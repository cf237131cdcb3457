//! The files one tap reads in a row: a capture split into several files (the live
//! tap's evidence ring, `tcpdump -C`, dumpcap's ring buffer, `editcap -c`) is read
//! as one capture, so a connection open at the end of one file continues in the
//! next. The tap numbers frames on across its files; an exchange maps its frames
//! back to the file and the frame number within it (the number Wireshark shows), and
//! takes its id and evidence file from the file of its first frame, so that an
//! exchange within one file is named as if that file had been read alone.

use sha2::Sha256;

use super::provisional_id::InputIds;
use super::tap::{exchange_id_from, frames, id_seed};

/// How a tap names the exchanges of one input.
pub(crate) enum Ids {
    /// The id hash with the file's part already absorbed ([`id_seed`]): cloned per
    /// exchange, it saves one of the two SHA-256 blocks each id would cost.
    Final(Sha256),
    Provisional(InputIds),
}

/// One file of the row.
struct Input {
    /// Frames of the files before it: its frame `n` is the tap's frame `offset + n`.
    offset: u64,
    file_sha256: Option<String>,
    ids: Ids,
    /// The file's name as the user gave it, for locators that span files.
    name: String,
    /// Exchanges whose first frame is in it.
    exchanges: u64,
}

/// Where an exchange's frames are.
pub(crate) struct Located {
    pub id: String,
    pub file_sha256: Option<String>,
    /// `frames 3-9` within the file of the first frame, or
    /// `a.pcapng frame 990 to b.pcapng frame 12` across files.
    pub locator: String,
}

/// The files of a tap, in the order read (one for a tap reading one input).
pub(crate) struct TapInputs {
    /// Never empty; the last is the file being read.
    inputs: Vec<Input>,
    /// Highest frame number within the file being read.
    last_frame: u64,
}

impl TapInputs {
    pub fn new(file_sha256: Option<String>) -> Self {
        TapInputs {
            inputs: vec![Input::new(0, file_sha256, String::new())],
            last_frame: 0,
        }
    }

    /// The current file's name, as locators that span files give it.
    pub fn set_name(&mut self, name: &str) {
        self.current().name = name.to_string();
    }

    pub fn use_provisional_ids(&mut self, ids: InputIds) {
        self.current().ids = Ids::Provisional(ids);
    }

    /// The next file starts: its frames are numbered after the current file's last.
    pub fn start_next(&mut self, file_sha256: Option<String>, name: &str) {
        let offset = self.current().offset.saturating_add(self.last_frame);
        self.inputs
            .push(Input::new(offset, file_sha256, name.to_string()));
        self.last_frame = 0;
    }

    /// The tap's number of the current file's frame `number`.
    pub fn frame_number(&mut self, number: u64) -> u64 {
        self.last_frame = self.last_frame.max(number);
        self.current().offset.saturating_add(number)
    }

    /// Names an exchange of frames `first`..=`last` (the tap's numbers) of the
    /// connection whose first frame is `conn_first`, `discriminator` its place in the
    /// connection, and counts it for the file of its first frame. The id derives from
    /// the connection's first file and frame, the evidence from the exchange's.
    pub fn locate(
        &mut self,
        conn_first: u64,
        (first, last): (u64, u64),
        discriminator: u64,
    ) -> Located {
        let c = self.input_of(conn_first);
        let conn_first = conn_first - self.inputs[c].offset;
        let id = match &self.inputs[c].ids {
            Ids::Final(seed) => exchange_id_from(seed, conn_first, discriminator),
            Ids::Provisional(ids) => ids.id(conn_first, discriminator),
        };
        let last = last.max(first);
        let (a, b) = (self.input_of(first), self.input_of(last));
        let (first, last) = (first - self.inputs[a].offset, last - self.inputs[b].offset);
        self.inputs[a].exchanges += 1;
        let locator = if a == b {
            frames(first, last)
        } else {
            let (a, b) = (&self.inputs[a].name, &self.inputs[b].name);
            format!("{a} frame {first} to {b} frame {last}")
        };
        Located {
            id,
            file_sha256: self.inputs[a].file_sha256.clone(),
            locator,
        }
    }

    /// Exchanges per file, by the file of their first frame, in reading order.
    pub fn exchanges(&self) -> Vec<u64> {
        self.inputs.iter().map(|i| i.exchanges).collect()
    }

    fn current(&mut self) -> &mut Input {
        let last = self.inputs.len() - 1;
        &mut self.inputs[last]
    }

    /// Index of the file holding the tap's frame `n` (the first file for frame 0,
    /// which no reader delivers).
    fn input_of(&self, n: u64) -> usize {
        self.inputs
            .partition_point(|i| i.offset < n)
            .saturating_sub(1)
    }
}

impl Input {
    fn new(offset: u64, file_sha256: Option<String>, name: String) -> Self {
        Input {
            offset,
            ids: Ids::Final(id_seed(file_sha256.as_deref())),
            file_sha256,
            name,
            exchanges: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(c: char) -> Option<String> {
        Some(c.to_string().repeat(64))
    }

    #[test]
    fn one_file_is_numbered_as_read_alone() {
        let mut inputs = TapInputs::new(sha('a'));
        assert_eq!(inputs.frame_number(1), 1);
        assert_eq!(inputs.frame_number(9), 9);
        let x = inputs.locate(2, (3, 9), 1);
        assert_eq!(x.locator, "frames 3-9");
        assert_eq!(x.file_sha256, sha('a'));
        let alone = exchange_id_from(&id_seed(sha('a').as_deref()), 2, 1);
        assert_eq!(x.id, alone);
        assert_eq!(inputs.exchanges(), vec![1]);
    }

    #[test]
    fn later_files_number_on_and_map_back() {
        let mut inputs = TapInputs::new(sha('a'));
        inputs.set_name("one.pcapng");
        for n in 1..=10 {
            inputs.frame_number(n);
        }
        inputs.start_next(sha('b'), "two.pcapng");
        assert_eq!(inputs.frame_number(1), 11);
        assert_eq!(inputs.frame_number(5), 15);
        inputs.start_next(sha('c'), "three.pcapng");
        assert_eq!(inputs.frame_number(1), 16);

        // Within the second file: named as if it had been read alone.
        let x = inputs.locate(12, (12, 15), 7);
        assert_eq!(x.locator, "frames 2-5");
        assert_eq!(x.file_sha256, sha('b'));
        assert_eq!(x.id, exchange_id_from(&id_seed(sha('b').as_deref()), 2, 7));

        // Across files: the first file's id and evidence, both files named.
        let x = inputs.locate(9, (9, 16), 2);
        assert_eq!(x.locator, "one.pcapng frame 9 to three.pcapng frame 1");
        assert_eq!(x.file_sha256, sha('a'));
        assert_eq!(x.id, exchange_id_from(&id_seed(sha('a').as_deref()), 9, 2));

        // A later request of a connection begun in the first file: evidence in the
        // second, id from the connection's start.
        let x = inputs.locate(8, (13, 14), 3);
        assert_eq!(x.locator, "frames 3-4");
        assert_eq!(x.file_sha256, sha('b'));
        assert_eq!(x.id, exchange_id_from(&id_seed(sha('a').as_deref()), 8, 3));

        // A last frame before the first (a metadata exchange of one frame).
        assert_eq!(inputs.locate(10, (10, 3), 0).locator, "frame 10");
        assert_eq!(inputs.exchanges(), vec![2, 2, 0]);
    }

    #[test]
    fn a_file_without_frames_takes_no_numbers() {
        let mut inputs = TapInputs::new(None);
        inputs.frame_number(4);
        inputs.start_next(None, "empty");
        inputs.start_next(None, "next");
        assert_eq!(inputs.frame_number(1), 5);
        assert_eq!(inputs.locate(5, (5, 5), 0).locator, "frame 1");
        assert_eq!(inputs.exchanges(), vec![0, 0, 1]);
    }
}
