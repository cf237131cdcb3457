//! Reassembly of 802.11 fragments: the MSDU that a transmitter cut into several
//! MPDUs (IEEE 802.11-2020, fragmentation and defragmentation), put together again
//! from their bodies, decrypted first when protected, as a receiver does.
//!
//! Policy, that of a receiver (and stricter than Wireshark's, which accepts any
//! order and does not look at keys):
//! - fragments are taken in order, from fragment 0: the transmitter sends the next
//!   only once the last is acknowledged, so a fragment that is not the next one
//!   means the capture missed one, and the MSDU is dropped;
//! - a fragment repeated (a retransmission whose acknowledgement was lost) is
//!   ignored;
//! - protected fragments must come under one key with consecutive packet numbers
//!   (802.11's rule for CCMP and GCMP, here for TKIP too): else the MSDU is dropped,
//!   as a receiver drops fragments mixed from several keys or injected between
//!   others (the "FragAttacks" of 2021);
//! - an MSDU whose first fragment is older than [`MAX_AGE_US`] (capture time), or
//!   one beyond [`MAX_PENDING`] unfinished at once (the oldest goes), is dropped;
//!   one that would grow beyond [`MAX_MSDU`] bytes too.
//!
//! Pure state, no I/O: [`WlanDefragmenter::push`] takes one fragment's body and
//! returns the whole MSDU when it is complete.

use std::collections::HashMap;
use std::fmt;

use crate::net::wlan::{FragmentOf, MsduKey};
use crate::net::wpa::TemporalKey;
use crate::timestamp::Timestamp;

/// Unfinished MSDUs held at once; beyond, the oldest is dropped.
pub const MAX_PENDING: usize = 256;
/// The longest MSDU reassembled, bytes: an MSDU is at most 2 304 bytes, and TKIP's
/// Michael MIC adds 8; this leaves room for drivers that exceed it.
pub const MAX_MSDU: usize = 8192;
/// How long after its first fragment an MSDU may be completed, µs of capture time:
/// 802.11's receive lifetime is 512 TU (0.52 s) by default.
pub const MAX_AGE_US: i64 = 1_000_000;

/// What opened a protected fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seal {
    /// The temporal key; `None` for WEP, whose fragments are not checked.
    pub key: Option<TemporalKey>,
    /// The packet number (CCMP, GCMP) or TKIP sequence counter of the fragment.
    pub pn: u64,
}

/// An MSDU put together from its fragments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msdu {
    pub data: Vec<u8>,
    /// What opened its fragments, when protected.
    pub seal: Option<Seal>,
    /// Capture time and frame number of its first fragment.
    pub first_ts: Timestamp,
    pub first_frame: u64,
}

/// Why a fragment ended its MSDU unfinished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dropped {
    /// Not the fragment that was due: the capture missed one (or the first).
    Missing {
        msdu: MsduKey,
        expected: u8,
        got: u8,
    },
    /// Protected under another key than the MSDU's first fragment, or in the clear
    /// after protected ones (or the other way round).
    KeyChanged { msdu: MsduKey, number: u8 },
    /// Its packet number does not follow the previous fragment's.
    NotConsecutive {
        msdu: MsduKey,
        number: u8,
        expected: u64,
        got: u64,
    },
    /// The MSDU would be longer than [`MAX_MSDU`].
    TooLong { msdu: MsduKey },
}

/// An 802.11 MSDU as people read it: transmitter, sequence number, TID.
struct ShowMsdu<'a>(&'a MsduKey);

impl fmt::Display for ShowMsdu<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0.transmitter;
        write!(
            f,
            "MSDU {} of {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            self.0.sequence, t[0], t[1], t[2], t[3], t[4], t[5]
        )?;
        if self.0.tid < 16 {
            write!(f, " (TID {})", self.0.tid)?;
        }
        Ok(())
    }
}

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dropped::Missing {
                msdu,
                expected,
                got,
            } => write!(
                f,
                "802.11 fragment {got} of {} where fragment {expected} was due: a fragment is not in the capture, the MSDU is dropped",
                ShowMsdu(msdu)
            ),
            Dropped::KeyChanged { msdu, number } => write!(
                f,
                "802.11 fragment {number} of {} is not under the key of its first fragment: the MSDU is dropped",
                ShowMsdu(msdu)
            ),
            Dropped::NotConsecutive {
                msdu,
                number,
                expected,
                got,
            } => write!(
                f,
                "802.11 fragment {number} of {} has packet number {got} where {expected} was due (injected?): the MSDU is dropped",
                ShowMsdu(msdu)
            ),
            Dropped::TooLong { msdu } => write!(
                f,
                "802.11 fragments of {} longer than {MAX_MSDU} bytes: the MSDU is dropped",
                ShowMsdu(msdu)
            ),
        }
    }
}

/// What [`WlanDefragmenter::push`] made of a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    /// Kept; the MSDU is not complete yet.
    Pending,
    /// It completed its MSDU.
    Complete(Msdu),
    /// A repetition of the fragment taken last: ignored.
    Repeated,
    /// It did not fit its MSDU, which is dropped; the fragments after it, up to the
    /// MSDU's last, are dropped quietly.
    Dropped(Dropped),
    /// A later fragment of an MSDU already dropped.
    Discarded,
}

/// Counters of a [`WlanDefragmenter`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WlanDefragStats {
    /// Fragments pushed.
    pub fragments: u64,
    /// MSDUs completed …
    pub reassembled: u64,
    /// … from this many fragments.
    pub fragments_used: u64,
    /// Repetitions ignored.
    pub repeated: u64,
}

impl WlanDefragStats {
    /// Fragments that went into no MSDU (dropped, or of MSDUs still unfinished), but
    /// repetitions.
    pub fn dropped(&self) -> u64 {
        self.fragments - self.fragments_used - self.repeated
    }
}

/// An MSDU being put together.
struct Pending {
    data: Vec<u8>,
    /// The next fragment number due.
    next: u8,
    seal: Option<Seal>,
    first_ts: Timestamp,
    first_frame: u64,
    /// Dropped: later fragments are discarded until its last.
    dropped: bool,
    /// Order of arrival, for dropping the oldest.
    serial: u64,
}

/// Reassembles 802.11 fragments (see the module documentation).
#[derive(Default)]
pub struct WlanDefragmenter {
    pending: HashMap<MsduKey, Pending>,
    serial: u64,
    stats: WlanDefragStats,
}

impl WlanDefragmenter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn stats(&self) -> &WlanDefragStats {
        &self.stats
    }

    /// Takes the body `body` (decrypted, when `seal` says what opened it) of the
    /// fragment `of`, captured at `ts` as frame `frame`.
    pub fn push(
        &mut self,
        ts: Timestamp,
        frame: u64,
        of: FragmentOf,
        body: &[u8],
        seal: Option<Seal>,
    ) -> Pushed {
        self.stats.fragments += 1;
        let key = of.msdu;
        if let Some(p) = self.pending.get(&key) {
            if ts.0.saturating_sub(p.first_ts.0) > MAX_AGE_US {
                self.pending.remove(&key);
            }
        }
        let Some(p) = self.pending.get_mut(&key) else {
            if of.number != 0 {
                // The capture missed the first: the rest of this MSDU goes quietly.
                if of.more {
                    self.insert_dropped(ts, frame, of, seal);
                }
                return Pushed::Dropped(Dropped::Missing {
                    msdu: key,
                    expected: 0,
                    got: of.number,
                });
            }
            return self.start(ts, frame, of, body, seal);
        };
        if of.number.checked_add(1) == Some(p.next) && repeats(p.seal, seal) {
            self.stats.repeated += 1;
            return Pushed::Repeated;
        }
        if of.number == 0 {
            // A new MSDU of the same sequence number: the old one ends unfinished.
            self.pending.remove(&key);
            return self.start(ts, frame, of, body, seal);
        }
        if p.dropped {
            if !of.more {
                self.pending.remove(&key);
            }
            return Pushed::Discarded;
        }
        let why = if of.number != p.next {
            Some(Dropped::Missing {
                msdu: key,
                expected: p.next,
                got: of.number,
            })
        } else {
            follows(p.seal, seal, key, of.number)
        };
        let why = why.or_else(|| {
            (p.data.len() + body.len() > MAX_MSDU).then_some(Dropped::TooLong { msdu: key })
        });
        if let Some(why) = why {
            p.dropped = true;
            p.data = Vec::new();
            if !of.more {
                self.pending.remove(&key);
            }
            return Pushed::Dropped(why);
        }
        p.data.extend_from_slice(body);
        p.next = of.number + 1;
        p.seal = seal;
        if of.more {
            return Pushed::Pending;
        }
        let Some(p) = self.pending.remove(&key) else {
            return Pushed::Pending;
        };
        self.stats.reassembled += 1;
        self.stats.fragments_used += u64::from(p.next);
        Pushed::Complete(Msdu {
            data: p.data,
            seal: p.seal,
            first_ts: p.first_ts,
            first_frame: p.first_frame,
        })
    }

    /// Starts an MSDU with its fragment 0.
    fn start(
        &mut self,
        ts: Timestamp,
        frame: u64,
        of: FragmentOf,
        body: &[u8],
        seal: Option<Seal>,
    ) -> Pushed {
        if !of.more {
            // Fragment 0 without More Fragments is a whole MSDU, not a fragment:
            // whoever calls with one made a mistake; nothing to put together.
            return Pushed::Discarded;
        }
        if body.len() > MAX_MSDU {
            self.insert_dropped(ts, frame, of, seal);
            return Pushed::Dropped(Dropped::TooLong { msdu: of.msdu });
        }
        if self.pending.len() >= MAX_PENDING {
            self.drop_oldest();
        }
        self.serial += 1;
        self.pending.insert(
            of.msdu,
            Pending {
                data: body.to_vec(),
                next: 1,
                seal,
                first_ts: ts,
                first_frame: frame,
                dropped: false,
                serial: self.serial,
            },
        );
        Pushed::Pending
    }

    /// Marks the MSDU of fragment `of` dropped, so that its later fragments are
    /// discarded without an anomaly each.
    fn insert_dropped(&mut self, ts: Timestamp, frame: u64, of: FragmentOf, seal: Option<Seal>) {
        if self.pending.len() >= MAX_PENDING {
            self.drop_oldest();
        }
        self.serial += 1;
        self.pending.insert(
            of.msdu,
            Pending {
                data: Vec::new(),
                next: of.number.saturating_add(1),
                seal,
                first_ts: ts,
                first_frame: frame,
                dropped: true,
                serial: self.serial,
            },
        );
    }

    fn drop_oldest(&mut self) {
        if let Some(oldest) = self
            .pending
            .iter()
            .min_by_key(|(_, p)| p.serial)
            .map(|(k, _)| *k)
        {
            self.pending.remove(&oldest);
        }
    }
}

/// Whether a fragment sealed `now` can be a retransmission of the one taken last,
/// sealed `last`: the same packet number under the same key (a retransmission is the
/// same MPDU), or both in the clear.
fn repeats(last: Option<Seal>, now: Option<Seal>) -> bool {
    match (last, now) {
        (None, None) => true,
        (Some(a), Some(b)) => a.key == b.key && a.pn == b.pn,
        _ => false,
    }
}

/// Why the fragment `number` of `msdu`, sealed `now`, cannot follow the one sealed
/// `last`: the same key and the next packet number (WEP fragments, which have none,
/// are not checked).
fn follows(last: Option<Seal>, now: Option<Seal>, msdu: MsduKey, number: u8) -> Option<Dropped> {
    match (last, now) {
        (None, None) => None,
        (Some(a), Some(b)) if a.key == b.key => {
            let expected = a.pn.wrapping_add(1);
            (a.key.is_some() && b.pn != expected).then_some(Dropped::NotConsecutive {
                msdu,
                number,
                expected,
                got: b.pn,
            })
        }
        _ => Some(Dropped::KeyChanged { msdu, number }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STA: [u8; 6] = [2, 0, 0, 0, 0xaa, 1];
    const AP: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];

    fn of(sequence: u16, number: u8, more: bool) -> FragmentOf {
        FragmentOf {
            msdu: MsduKey {
                transmitter: STA,
                receiver: AP,
                tid: 0,
                sequence,
            },
            number,
            more,
        }
    }

    fn sealed(pn: u64) -> Option<Seal> {
        Some(Seal {
            key: Some(TemporalKey::Ccmp([7; 16])),
            pn,
        })
    }

    fn at(ms: i64) -> Timestamp {
        Timestamp(1_000_000_000 + ms * 1000)
    }

    fn complete(p: Pushed) -> Msdu {
        match p {
            Pushed::Complete(m) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fragments_in_order_make_the_msdu() {
        let mut d = WlanDefragmenter::new();
        assert_eq!(
            d.push(at(0), 10, of(5, 0, true), b"abc", None),
            Pushed::Pending
        );
        assert_eq!(
            d.push(at(1), 12, of(5, 1, true), b"def", None),
            Pushed::Pending
        );
        let m = complete(d.push(at(2), 14, of(5, 2, false), b"g", None));
        assert_eq!(
            (m.data.as_slice(), m.first_ts, m.first_frame),
            (&b"abcdefg"[..], at(0), 10)
        );
        assert_eq!(
            *d.stats(),
            WlanDefragStats {
                fragments: 3,
                reassembled: 1,
                fragments_used: 3,
                repeated: 0
            }
        );
        assert_eq!(d.stats().dropped(), 0);
        assert!(d.pending.is_empty());
    }

    #[test]
    fn a_repeated_fragment_is_ignored() {
        let mut d = WlanDefragmenter::new();
        d.push(at(0), 1, of(5, 0, true), b"ab", sealed(9));
        assert_eq!(
            d.push(at(1), 2, of(5, 0, true), b"ab", sealed(9)),
            Pushed::Repeated
        );
        d.push(at(2), 3, of(5, 1, true), b"cd", sealed(10));
        assert_eq!(
            d.push(at(3), 4, of(5, 1, true), b"cd", sealed(10)),
            Pushed::Repeated
        );
        let m = complete(d.push(at(4), 5, of(5, 2, false), b"e", sealed(11)));
        assert_eq!(m.data, b"abcde");
        assert_eq!(m.seal, sealed(11));
        assert_eq!((d.stats().repeated, d.stats().dropped()), (2, 0));
    }

    #[test]
    fn a_missing_fragment_drops_the_msdu() {
        let mut d = WlanDefragmenter::new();
        d.push(at(0), 1, of(5, 0, true), b"ab", None);
        let e = d.push(at(1), 3, of(5, 2, true), b"ef", None);
        assert_eq!(
            e,
            Pushed::Dropped(Dropped::Missing {
                msdu: of(5, 0, true).msdu,
                expected: 1,
                got: 2
            })
        );
        let Pushed::Dropped(why) = e else {
            unreachable!()
        };
        assert_eq!(
            why.to_string(),
            "802.11 fragment 2 of MSDU 5 of 02:00:00:00:aa:01 (TID 0) where fragment 1 was due: a fragment is not in the capture, the MSDU is dropped"
        );
        // The rest of that MSDU is discarded quietly, and then it is forgotten.
        assert_eq!(
            d.push(at(2), 4, of(5, 3, false), b"g", None),
            Pushed::Discarded
        );
        assert!(d.pending.is_empty());
        // Fragments whose first the capture missed: one anomaly, the rest quietly.
        assert!(matches!(
            d.push(at(3), 5, of(6, 1, true), b"x", None),
            Pushed::Dropped(Dropped::Missing {
                expected: 0,
                got: 1,
                ..
            })
        ));
        assert_eq!(
            d.push(at(3), 6, of(6, 2, false), b"y", None),
            Pushed::Discarded
        );
        assert!(d.pending.is_empty());
        assert_eq!(d.stats().dropped(), 5);
        assert_eq!(d.stats().reassembled, 0);
    }

    #[test]
    fn protected_fragments_need_one_key_and_consecutive_numbers() {
        let mut d = WlanDefragmenter::new();
        d.push(at(0), 1, of(5, 0, true), b"ab", sealed(9));
        // Packet number 11 after 9: something was injected between.
        assert!(matches!(
            d.push(at(1), 2, of(5, 1, false), b"cd", sealed(11)),
            Pushed::Dropped(Dropped::NotConsecutive {
                expected: 10,
                got: 11,
                ..
            })
        ));
        // Another key.
        d.push(at(2), 3, of(6, 0, true), b"ab", sealed(20));
        let other = Some(Seal {
            key: Some(TemporalKey::Ccmp([8; 16])),
            pn: 21,
        });
        assert!(matches!(
            d.push(at(3), 4, of(6, 1, false), b"cd", other),
            Pushed::Dropped(Dropped::KeyChanged { .. })
        ));
        // A fragment in the clear after a protected one.
        d.push(at(4), 5, of(7, 0, true), b"ab", sealed(30));
        assert!(matches!(
            d.push(at(5), 6, of(7, 1, false), b"cd", None),
            Pushed::Dropped(Dropped::KeyChanged { .. })
        ));
        // WEP fragments (no temporal key) carry IVs, not packet numbers: not checked.
        let wep = |iv| Some(Seal { key: None, pn: iv });
        d.push(at(6), 7, of(8, 0, true), b"ab", wep(100));
        let m = complete(d.push(at(7), 8, of(8, 1, false), b"cd", wep(3)));
        assert_eq!(m.data, b"abcd");
        assert!(d.pending.is_empty());
    }

    #[test]
    fn a_new_first_fragment_replaces_an_unfinished_msdu() {
        let mut d = WlanDefragmenter::new();
        d.push(at(0), 1, of(5, 0, true), b"old", None);
        d.push(at(1), 2, of(5, 1, true), b"old", None);
        d.push(at(2), 3, of(5, 0, true), b"new", sealed(1));
        let m = complete(d.push(at(3), 4, of(5, 1, false), b"!", sealed(2)));
        assert_eq!((m.data.as_slice(), m.first_frame), (&b"new!"[..], 3));
        assert_eq!(d.stats().dropped(), 2);
    }

    #[test]
    fn old_and_surplus_msdus_are_dropped() {
        let mut d = WlanDefragmenter::new();
        d.push(at(0), 1, of(5, 0, true), b"ab", None);
        // More than a second later: the sequence number's MSDU is not that one.
        assert!(matches!(
            d.push(at(1_001), 2, of(5, 1, false), b"cd", None),
            Pushed::Dropped(Dropped::Missing { expected: 0, .. })
        ));
        for sequence in 0..MAX_PENDING as u16 + 10 {
            d.push(at(2_000), 3, of(sequence, 0, true), b"x", None);
        }
        assert_eq!(d.pending.len(), MAX_PENDING);
        // The first ten went first.
        assert!(!d.pending.contains_key(&of(9, 0, true).msdu));
        assert!(d.pending.contains_key(&of(10, 0, true).msdu));
    }

    #[test]
    fn msdus_are_bounded() {
        let mut d = WlanDefragmenter::new();
        let big = vec![0; MAX_MSDU / 2 + 1];
        d.push(at(0), 1, of(5, 0, true), &big, None);
        assert_eq!(
            d.push(at(1), 2, of(5, 1, false), &big, None),
            Pushed::Dropped(Dropped::TooLong {
                msdu: of(5, 0, true).msdu
            })
        );
        assert!(d.pending.is_empty());
        assert!(matches!(
            d.push(at(2), 3, of(6, 0, true), &vec![0; MAX_MSDU + 1], None),
            Pushed::Dropped(Dropped::TooLong { .. })
        ));
        // Its other fragments go quietly.
        assert_eq!(
            d.push(at(3), 4, of(6, 1, false), b"x", None),
            Pushed::Discarded
        );
        assert!(d.pending.is_empty());
    }
}
