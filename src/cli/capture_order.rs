//! The order in which `analyze` and `exchanges` read several capture files: by the
//! time of each file's first packet, so that the pieces of a capture given in any
//! order continue one another (see [`crate::source::pcap::CaptureChain`]).

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use crate::source::pcap;
use crate::timestamp::Timestamp;

/// `files` with its capture files in the order of their first packets: they take the
/// places capture files had, and the other inputs keep theirs, as do captures whose
/// first packet is not found without reading them (pipes). Files with the same first
/// time go by name, numbers by value ([`cmp_names`]): pieces of a few packets with
/// coarse timestamps can start at the same time, and the tools that cut captures
/// number their pieces (`tcpdump -C` names them `f`, `f1`, …, `f10`; `editcap -c` and
/// dumpcap `f_00001_…`). Reads the start of each file when there are several inputs,
/// nothing otherwise.
pub fn in_capture_order(files: &[PathBuf]) -> Vec<PathBuf> {
    if files.len() < 2 {
        return files.to_vec();
    }
    let times: Vec<Option<Timestamp>> = files.iter().map(|f| pcap::first_packet_time(f)).collect();
    ordered_by(files, &times)
}

/// [`in_capture_order`] with the first packet times known (`None`: not a capture
/// file that can be read ahead).
fn ordered_by(files: &[PathBuf], times: &[Option<Timestamp>]) -> Vec<PathBuf> {
    let slots: Vec<usize> = (0..files.len()).filter(|&i| times[i].is_some()).collect();
    let mut by_time = slots.clone();
    by_time.sort_by(|&a, &b| {
        times[a]
            .cmp(&times[b])
            .then_with(|| cmp_names(&files[a], &files[b]))
    });
    let mut ordered = files.to_vec();
    for (&slot, &file) in slots.iter().zip(&by_time) {
        ordered[slot] = files[file].clone();
    }
    ordered
}

/// Paths compared as a file manager compares names: runs of digits by their value
/// (`f2` before `f10`, `p_00009` before `p_00010`), the rest byte by byte; names
/// equal so (`f01`, `f1`) by their bytes, so that the order is total.
pub fn cmp_names(a: &Path, b: &Path) -> Ordering {
    let (a, b) = (
        a.as_os_str().as_encoded_bytes(),
        b.as_os_str().as_encoded_bytes(),
    );
    let (mut x, mut y) = (a, b);
    loop {
        match (x.first(), y.first()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let (m, rest_x) = split_digits(x);
                let (n, rest_y) = split_digits(y);
                let (m, n) = (trim_zeros(m), trim_zeros(n));
                let by_value = m.len().cmp(&n.len()).then_with(|| m.cmp(n));
                if by_value != Ordering::Equal {
                    return by_value;
                }
                (x, y) = (rest_x, rest_y);
            }
            (Some(c), Some(d)) => {
                if c != d {
                    return c.cmp(d);
                }
                (x, y) = (&x[1..], &y[1..]);
            }
        }
    }
}

/// The leading run of ASCII digits of `s`, and the rest.
fn split_digits(s: &[u8]) -> (&[u8], &[u8]) {
    let end = s
        .iter()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(s.len());
    s.split_at(end)
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let start = digits
        .iter()
        .position(|&c| c != b'0')
        .unwrap_or(digits.len());
    &digits[start..]
}

/// What to say when [`in_capture_order`] changed the order of `given`; `None` when
/// it did not.
pub fn reordered_note(given: &[PathBuf], ordered: &[PathBuf]) -> Option<String> {
    if given == ordered {
        return None;
    }
    const NAMED: usize = 6;
    let mut names: Vec<String> = ordered
        .iter()
        .take(NAMED)
        .map(|f| f.display().to_string())
        .collect();
    if ordered.len() > NAMED {
        names.push(format!("… ({} files)", ordered.len()));
    }
    Some(format!(
        "capture files read in the order of their first packets, not as given: {}",
        names.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(names: &[&str]) -> Vec<PathBuf> {
        names.iter().map(PathBuf::from).collect()
    }

    fn sorted(names: &[&str]) -> Vec<PathBuf> {
        let mut files = paths(names);
        files.sort_by(|a, b| cmp_names(a, b));
        files
    }

    #[test]
    fn numbered_names_go_by_number() {
        assert_eq!(
            sorted(&["cap10", "cap", "cap2", "cap1", "cap11"]),
            paths(&["cap", "cap1", "cap2", "cap10", "cap11"])
        );
        assert_eq!(
            sorted(&[
                "p_00010_2016.pcapng",
                "p_00009_2016.pcapng",
                "p_00100_2015.pcapng"
            ]),
            paths(&[
                "p_00009_2016.pcapng",
                "p_00010_2016.pcapng",
                "p_00100_2015.pcapng"
            ])
        );
        // Directories count too, and text compares as bytes.
        assert_eq!(
            sorted(&["b/1.pcap", "a/2.pcap", "a/10.pcap", "a/x.pcap"]),
            paths(&["a/2.pcap", "a/10.pcap", "a/x.pcap", "b/1.pcap"])
        );
    }

    #[test]
    fn names_equal_by_value_still_have_an_order() {
        let (a, b) = (Path::new("f01"), Path::new("f1"));
        assert_eq!(cmp_names(a, b), Ordering::Less);
        assert_eq!(cmp_names(b, a), Ordering::Greater);
        assert_eq!(cmp_names(a, a), Ordering::Equal);
        // Numbers longer than any integer type.
        let long = Path::new("f123456789012345678901234567890");
        let longer = Path::new("f1234567890123456789012345678901");
        assert_eq!(cmp_names(long, longer), Ordering::Less);
    }

    #[test]
    fn captures_go_by_first_packet_then_by_name_around_other_inputs() {
        let t = |s: i64| Some(Timestamp::from_micros(s * 1_000_000));
        // Given in reverse, as `ls -r` or a careless glob would; p2 and p1 start at
        // the same time (coarse timestamps), the HAR and the pipe keep their places.
        let files = paths(&[
            "p_00003",
            "x.har",
            "p_00002",
            "p_00001",
            "/dev/stdin",
            "p_00000",
        ]);
        let times = [t(9), None, t(5), t(5), None, t(1)];
        assert_eq!(
            ordered_by(&files, &times),
            paths(&[
                "p_00000",
                "x.har",
                "p_00001",
                "p_00002",
                "/dev/stdin",
                "p_00003"
            ])
        );
    }

    #[test]
    fn the_note_names_the_order_read() {
        let given = paths(&["b", "a"]);
        assert_eq!(reordered_note(&given, &given), None);
        let note = reordered_note(&given, &paths(&["a", "b"])).unwrap();
        assert_eq!(
            note,
            "capture files read in the order of their first packets, not as given: a, b"
        );
        let many: Vec<PathBuf> = (0..8).map(|i| PathBuf::from(format!("f{i}"))).collect();
        let mut reversed = many.clone();
        reversed.reverse();
        let note = reordered_note(&reversed, &many).unwrap();
        assert!(note.ends_with("f4, f5, … (8 files)"), "{note}");
    }
}
