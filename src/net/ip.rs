//! Network layer: IPv4 and IPv6 headers, and fragment reassembly.
//!
//! Third stage of the pcap tap, after [`link`](super::link). [`parse_ipv4`] and
//! [`parse_ipv6`] turn an IP packet into its addresses, upper-layer protocol and
//! payload (borrowed); a fragment is handed to a [`Defragmenter`], which gives the
//! whole payload back once every piece is there.
//!
//! Lax where real captures are wrong, strict where memory is at stake:
//! - Checksums are never checked: checksum offload makes them wrong in captures
//!   taken on the sending host.
//! - IPv4 total length 0 (TCP segmentation offload) or an IPv6 payload length of 0
//!   (TSO or a jumbogram) means "up to the end of the frame"; a length beyond the
//!   frame (snapshot length) keeps the bytes present and sets `truncated`; a shorter
//!   length cuts Ethernet padding and trailers off.
//! - IPv6 extension headers (hop-by-hop, routing, destination options, mobility, HIP,
//!   shim6, fragment, AH) are walked, at most [`MAX_EXT_HEADERS`]; ESP is opaque: its
//!   protocol (50) is the upper layer. Atomic fragments (offset 0, no more
//!   fragments) are not reassembled.
//!
//! # Reassembly policy
//! Datagrams are keyed by (source, destination, protocol, identification); IPv4 and
//! IPv6 share one [`Defragmenter`]. Bytes a fragment brings that are already filled
//! are ignored: **the first fragment to cover a byte wins** (the BSD/Linux choice
//! Suricata calls "first"), and a later "last fragment" claiming another total length
//! is ignored. Limits ([`IpLimits`], all named and documented): a datagram larger than
//! 65 535 bytes, or with more than [`MAX_PIECES`] disjoint pieces, is dropped; at most
//! [`MAX_REASSEMBLIES`] datagrams and [`MAX_BUFFERED`] bytes are held at once, beyond
//! which the **oldest** is dropped; a datagram not completed within
//! [`REASSEMBLY_TIMEOUT_US`] of capture time since its first fragment is dropped.
//! Time is the capture's: the largest timestamp seen, checked on every fragment.
//! Every drop is counted in [`DefragStats`].

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{Ipv4HeaderSlice, Ipv6HeaderSlice};

use crate::timestamp::Timestamp;

/// Largest reassembled payload (an IP datagram's length field is 16 bits).
pub const MAX_DATAGRAM: usize = 65_535;
/// Default most datagrams under reassembly at once.
pub const MAX_REASSEMBLIES: usize = 4096;
/// Default most bytes held by unfinished datagrams.
pub const MAX_BUFFERED: usize = 16 << 20;
/// Default time (µs of capture time) a datagram may take to complete: 30 s.
pub const REASSEMBLY_TIMEOUT_US: i64 = 30_000_000;
/// Most disjoint pieces one datagram may be in before it is dropped.
pub const MAX_PIECES: usize = 128;
/// Most IPv6 extension headers walked before a packet is declared malformed.
pub const MAX_EXT_HEADERS: usize = 16;

/// The limits of a [`Defragmenter`]; [`Default`] gives the constants above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpLimits {
    /// Largest reassembled payload in bytes.
    pub max_datagram: usize,
    /// Most datagrams under reassembly.
    pub max_reassemblies: usize,
    /// Most bytes buffered for unfinished datagrams.
    pub max_buffered: usize,
    /// Capture time in µs after its first fragment at which a datagram is dropped.
    pub timeout_us: i64,
}

impl Default for IpLimits {
    fn default() -> Self {
        IpLimits {
            max_datagram: MAX_DATAGRAM,
            max_reassemblies: MAX_REASSEMBLIES,
            max_buffered: MAX_BUFFERED,
            timeout_us: REASSEMBLY_TIMEOUT_US,
        }
    }
}

/// Where a fragment belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentInfo {
    /// Identification (16 bits for IPv4, 32 for IPv6).
    pub id: u32,
    /// Byte offset of this piece in the datagram's payload.
    pub offset: usize,
    /// Whether more fragments follow.
    pub more: bool,
}

/// An IP packet's header facts and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpPacket<'a> {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Upper-layer protocol (for a fragment: of the datagram).
    pub protocol: u8,
    /// The payload after all headers (for a fragment: this piece).
    pub payload: &'a [u8],
    /// Set for a fragment to reassemble.
    pub fragment: Option<FragmentInfo>,
    /// The frame holds fewer bytes than the header claims.
    pub truncated: bool,
}

/// An IP packet that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpError {
    /// The packet ends inside a header.
    #[error("{0}")]
    Truncated(String),
    /// A header contradicts itself.
    #[error("{0}")]
    Malformed(String),
}

fn truncated(what: &str, needed: usize, len: usize) -> IpError {
    IpError::Truncated(format!("{what} needs {needed} bytes, {len} present"))
}

/// Parses an IPv4 packet (see the module documentation for the length policy).
// Inlined into both of the packet decoder's paths (frame, tunnel), as it was into
// its one caller before tunnels: out of line, its result goes through memory
// (callgrind: about 8 instructions per frame more).
#[inline(always)]
pub fn parse_ipv4(data: &[u8]) -> Result<IpPacket<'_>, IpError> {
    let h = Ipv4HeaderSlice::from_slice(data).map_err(|e| match e {
        etherparse::err::ipv4::HeaderSliceError::Len(l) => {
            truncated("IPv4 header", l.required_len, l.len)
        }
        etherparse::err::ipv4::HeaderSliceError::Content(c) => IpError::Malformed(c.to_string()),
    })?;
    let hlen = h.slice().len();
    let total = usize::from(h.total_len());
    let (end, truncated) = if total == 0 {
        (data.len(), false)
    } else if total < hlen {
        return Err(IpError::Malformed(format!(
            "IPv4 total length {total} is shorter than its header ({hlen})"
        )));
    } else if total > data.len() {
        (data.len(), true)
    } else {
        (total, false)
    };
    let payload = data.get(hlen..end).unwrap_or(&[]);
    let offset = usize::from(h.fragments_offset().value()) * 8;
    let more = h.more_fragments();
    let fragment = (offset != 0 || more).then_some(FragmentInfo {
        id: u32::from(h.identification()),
        offset,
        more,
    });
    Ok(IpPacket {
        src: IpAddr::V4(Ipv4Addr::from(h.source())),
        dst: IpAddr::V4(Ipv4Addr::from(h.destination())),
        protocol: h.protocol().0,
        payload,
        fragment,
        truncated,
    })
}

/// Result of walking IPv6 extension headers.
struct ExtWalk<'a> {
    protocol: u8,
    payload: &'a [u8],
    fragment: Option<FragmentInfo>,
}

/// Walks extension headers from `next` over `data` up to the upper layer or a
/// (non-atomic) fragment header.
fn walk_ipv6_exts(mut next: u8, mut data: &[u8]) -> Result<ExtWalk<'_>, IpError> {
    for _ in 0..MAX_EXT_HEADERS {
        match next {
            // Hop-by-hop, routing, destination options, mobility, HIP, shim6.
            0 | 43 | 60 | 135 | 139 | 140 => {
                let len = data
                    .get(1)
                    .map(|&l| (usize::from(l) + 1) * 8)
                    .ok_or_else(|| truncated("IPv6 extension header", 8, data.len()))?;
                let (&n, rest) = (data.first(), data.get(len..))
                    .0
                    .zip(data.get(len..))
                    .ok_or_else(|| truncated("IPv6 extension header", len, data.len()))?;
                next = n;
                data = rest;
            }
            // Fragment: next, reserved, offset (13 bits) + flags, identification.
            44 => {
                let h: [u8; 8] = data
                    .get(..8)
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| truncated("IPv6 fragment header", 8, data.len()))?;
                let off_flags = u16::from_be_bytes([h[2], h[3]]);
                let offset = usize::from(off_flags >> 3) * 8;
                let more = off_flags & 1 == 1;
                next = h[0];
                data = &data[8..];
                if offset != 0 || more {
                    return Ok(ExtWalk {
                        protocol: next,
                        payload: data,
                        fragment: Some(FragmentInfo {
                            id: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
                            offset,
                            more,
                        }),
                    });
                }
            }
            // Authentication header: length in 4-byte units, minus 2.
            51 => {
                let len = data
                    .get(1)
                    .map(|&l| (usize::from(l) + 2) * 4)
                    .ok_or_else(|| truncated("IPv6 authentication header", 8, data.len()))?;
                let (Some(&n), Some(rest)) = (data.first(), data.get(len..)) else {
                    return Err(truncated("IPv6 authentication header", len, data.len()));
                };
                next = n;
                data = rest;
            }
            // Everything else (TCP, UDP, ESP, no next header …) is the upper layer.
            _ => {
                return Ok(ExtWalk {
                    protocol: next,
                    payload: data,
                    fragment: None,
                })
            }
        }
    }
    Err(IpError::Malformed(format!(
        "more than {MAX_EXT_HEADERS} IPv6 extension headers"
    )))
}

/// Parses an IPv6 packet and its extension headers.
#[inline(always)]
pub fn parse_ipv6(data: &[u8]) -> Result<IpPacket<'_>, IpError> {
    let h = Ipv6HeaderSlice::from_slice(data).map_err(|e| match e {
        etherparse::err::ipv6::HeaderSliceError::Len(l) => {
            truncated("IPv6 header", l.required_len, l.len)
        }
        etherparse::err::ipv6::HeaderSliceError::Content(c) => IpError::Malformed(c.to_string()),
    })?;
    let body = data.get(40..).unwrap_or(&[]);
    let plen = usize::from(h.payload_length());
    // 0: a jumbogram (hop-by-hop jumbo option) or TSO: up to the end of the frame.
    let (body, truncated) = if plen == 0 {
        (body, false)
    } else if plen > body.len() {
        (body, true)
    } else {
        (&body[..plen], false)
    };
    let walk = walk_ipv6_exts(h.next_header().0, body)?;
    Ok(IpPacket {
        src: IpAddr::V6(Ipv6Addr::from(h.source())),
        dst: IpAddr::V6(Ipv6Addr::from(h.destination())),
        protocol: walk.protocol,
        payload: walk.payload,
        fragment: walk.fragment,
        truncated,
    })
}

/// After reassembling an IPv6 datagram, the extension headers that were inside the
/// fragmentable part: returns the upper-layer protocol and the offset of its data.
pub fn ipv6_upper_layer(next: u8, payload: &[u8]) -> Result<(u8, usize), IpError> {
    let walk = walk_ipv6_exts(next, payload)?;
    if walk.fragment.is_some() {
        return Err(IpError::Malformed(
            "IPv6 fragment header inside a fragment".into(),
        ));
    }
    Ok((walk.protocol, payload.len() - walk.payload.len()))
}

/// Counters of a [`Defragmenter`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DefragStats {
    /// Fragments received.
    pub fragments: u64,
    /// Datagrams completed.
    pub reassembled: u64,
    /// Datagrams dropped by timeout.
    pub timed_out: u64,
    /// Datagrams dropped (oldest first) to stay within the count or byte limits.
    pub evicted: u64,
    /// Datagrams dropped as invalid (too large, too many pieces).
    pub invalid: u64,
    /// Fragments that brought bytes already filled (ignored: first wins).
    pub overlaps: u64,
}

impl DefragStats {
    /// All datagrams dropped unfinished, whatever the reason.
    pub fn dropped(&self) -> u64 {
        self.timed_out + self.evicted + self.invalid
    }
}

/// Identifies one datagram under reassembly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragKey {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Upper-layer protocol (IPv6: the fragment header's next header).
    pub protocol: u8,
    /// Identification.
    pub id: u32,
}

struct Pending {
    serial: u64,
    first_ts: i64,
    first_frame: u64,
    data: Vec<u8>,
    /// Filled byte ranges, sorted, disjoint, not adjacent.
    filled: Vec<(usize, usize)>,
    total: Option<usize>,
}

/// A datagram put back together from its fragments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reassembled {
    pub data: Vec<u8>,
    /// Capture time and frame of the fragment that arrived first.
    pub first_ts: Timestamp,
    pub first_frame: u64,
}

/// Reassembles IPv4 and IPv6 fragments (see the module documentation for policy and
/// limits).
pub struct Defragmenter {
    limits: IpLimits,
    pending: HashMap<FragKey, Pending>,
    /// Datagrams in order of their first fragment; entries whose serial no longer
    /// matches are stale (completed or dropped) and skipped.
    order: VecDeque<(FragKey, u64)>,
    serial: u64,
    buffered: usize,
    now: i64,
    stats: DefragStats,
}

impl Defragmenter {
    /// An empty defragmenter.
    pub fn new(limits: IpLimits) -> Self {
        Defragmenter {
            limits,
            pending: HashMap::new(),
            order: VecDeque::new(),
            serial: 0,
            buffered: 0,
            now: i64::MIN,
            stats: DefragStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> &DefragStats {
        &self.stats
    }

    /// Datagrams currently under reassembly.
    pub fn in_progress(&self) -> usize {
        self.pending.len()
    }

    /// Bytes currently buffered.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    fn remove(&mut self, key: &FragKey) -> Option<Pending> {
        let p = self.pending.remove(key)?;
        self.buffered -= p.data.len();
        Some(p)
    }

    /// Drops datagrams that timed out, then the oldest while over the limits
    /// (`extra` more bytes and one more datagram are about to be needed).
    fn evict(&mut self, extra: usize, one_more: bool) {
        while let Some(&(key, serial)) = self.order.front() {
            let live = self.pending.get(&key).map(|p| (p.serial, p.first_ts));
            match live {
                Some((s, first)) if s == serial => {
                    let expired = self.now.saturating_sub(first) > self.limits.timeout_us;
                    let over_count =
                        self.pending.len() + usize::from(one_more) > self.limits.max_reassemblies;
                    let over_bytes = self.buffered + extra > self.limits.max_buffered;
                    if !(expired || over_count || over_bytes) {
                        break;
                    }
                    self.remove(&key);
                    if expired {
                        self.stats.timed_out += 1;
                    } else {
                        self.stats.evicted += 1;
                    }
                    self.order.pop_front();
                }
                _ => {
                    self.order.pop_front();
                }
            }
        }
        // Completed datagrams leave stale entries behind a long-lived front entry.
        if self.order.len() > 2 * self.pending.len() + 64 {
            let pending = &self.pending;
            self.order
                .retain(|(k, s)| pending.get(k).is_some_and(|p| p.serial == *s));
        }
    }

    /// Adds a fragment; returns the datagram's payload when this fragment completes it.
    pub fn push(
        &mut self,
        ts: Timestamp,
        key: FragKey,
        frag: FragmentInfo,
        data: &[u8],
    ) -> Option<Vec<u8>> {
        self.push_frame(ts, 0, key, frag, data).map(|r| r.data)
    }

    /// [`push`](Self::push) for fragment carried by capture frame `frame`; the
    /// datagram it completes comes with the time and frame of its first fragment (the
    /// time its first byte was on the wire).
    pub fn push_frame(
        &mut self,
        ts: Timestamp,
        frame: u64,
        key: FragKey,
        frag: FragmentInfo,
        data: &[u8],
    ) -> Option<Reassembled> {
        self.stats.fragments += 1;
        self.now = self.now.max(ts.0);
        let start = frag.offset;
        let end = start.saturating_add(data.len());
        if end > self.limits.max_datagram {
            // The whole datagram is dropped with it (ping of death).
            self.remove(&key);
            self.stats.invalid += 1;
            return None;
        }
        let grow = self
            .pending
            .get(&key)
            .map_or(end, |p| end.saturating_sub(p.data.len()));
        self.evict(grow, !self.pending.contains_key(&key));
        if grow > self.limits.max_buffered {
            self.stats.invalid += 1;
            return None;
        }
        if !self.pending.contains_key(&key) {
            self.serial += 1;
            self.order.push_back((key, self.serial));
            self.pending.insert(
                key,
                Pending {
                    serial: self.serial,
                    first_ts: ts.0,
                    first_frame: frame,
                    data: Vec::new(),
                    filled: Vec::new(),
                    total: None,
                },
            );
        }
        let p = self.pending.get_mut(&key)?;
        if !frag.more && p.total.is_none() {
            p.total = Some(end);
        }
        // Bytes past a known end are ignored (the first "last fragment" wins).
        let end = p.total.map_or(end, |t| end.min(t));
        let data = data.get(..end.saturating_sub(start)).unwrap_or(&[]);
        if start >= end && !(start == 0 && end == 0) {
            self.stats.overlaps += 1;
            return None;
        }
        if p.data.len() < end {
            self.buffered += end - p.data.len();
            p.data.resize(end, 0);
        }
        // Copy into the holes of [start, end) only: first wins. Indexing is in bounds:
        // `data` holds end - start bytes, `p.data` at least `end`, and every copied
        // range lies within [start, end).
        let mut overlapped = false;
        let mut cursor = start;
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(p.filled.len() + 1);
        let mut new_range = (start, end);
        for &(s, e) in &p.filled {
            if e < start || s > end {
                merged.push((s, e));
                continue;
            }
            // Overlapping or adjacent: fill the hole before it, then merge.
            if s > cursor {
                p.data[cursor..s].copy_from_slice(&data[cursor - start..s - start]);
            }
            if s < end && e > start {
                overlapped = true;
            }
            cursor = cursor.max(e);
            new_range = (new_range.0.min(s), new_range.1.max(e));
        }
        if cursor < end {
            p.data[cursor..end].copy_from_slice(&data[cursor - start..]);
        }
        merged.push(new_range);
        merged.sort_unstable();
        p.filled = merged;
        if overlapped {
            self.stats.overlaps += 1;
        }
        let too_many = p.filled.len() > MAX_PIECES;
        let complete = p
            .total
            .is_some_and(|t| p.filled.first().is_some_and(|&(s, e)| s == 0 && e >= t));
        if too_many {
            self.remove(&key);
            self.stats.invalid += 1;
            return None;
        }
        if complete {
            let total = p.total.unwrap_or(0);
            let mut done = self.remove(&key)?;
            done.data.truncate(total);
            self.stats.reassembled += 1;
            return Some(Reassembled {
                data: done.data,
                first_ts: Timestamp(done.first_ts),
                first_frame: done.first_frame,
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u32) -> FragKey {
        FragKey {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            protocol: 17,
            id,
        }
    }

    fn frag(offset: usize, more: bool) -> FragmentInfo {
        FragmentInfo {
            id: 1,
            offset,
            more,
        }
    }

    fn payload(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn in_order_and_out_of_order() {
        let data = payload(3000);
        let orders: [[usize; 3]; 4] = [[0, 1, 2], [2, 1, 0], [1, 2, 0], [2, 0, 1]];
        for order in orders {
            let mut d = Defragmenter::new(IpLimits::default());
            let mut out = None;
            for (n, &i) in order.iter().enumerate() {
                let piece = &data[i * 1000..(i + 1) * 1000];
                let r = d.push(Timestamp(0), key(1), frag(i * 1000, i != 2), piece);
                if n < 2 {
                    assert!(r.is_none(), "{order:?}");
                } else {
                    out = r;
                }
            }
            assert_eq!(out.as_deref(), Some(&data[..]), "{order:?}");
            assert_eq!(d.in_progress(), 0);
            assert_eq!(d.buffered(), 0);
            assert_eq!(d.stats().reassembled, 1);
        }
    }

    #[test]
    fn overlaps_first_wins() {
        let mut d = Defragmenter::new(IpLimits::default());
        assert!(d
            .push(Timestamp(0), key(1), frag(0, true), &[b'A'; 16])
            .is_none());
        // Overlaps bytes 8..16 with Bs and brings 16..24.
        assert!(d
            .push(Timestamp(0), key(1), frag(8, true), &[b'B'; 16])
            .is_none());
        // The last piece overlaps 16..24 with Cs and ends at 32.
        let out = d
            .push(Timestamp(0), key(1), frag(16, false), &[b'C'; 16])
            .unwrap();
        let mut want = vec![b'A'; 16];
        want.extend([b'B'; 8]);
        want.extend([b'C'; 8]);
        assert_eq!(out, want);
        assert_eq!(d.stats().overlaps, 2);
        // A later "last fragment" with another total is ignored; holes are still filled.
        let mut d = Defragmenter::new(IpLimits::default());
        assert!(d
            .push(Timestamp(0), key(2), frag(8, false), &[2; 8])
            .is_none());
        assert!(d
            .push(Timestamp(0), key(2), frag(8, false), &[3; 16])
            .is_none());
        let out = d
            .push(Timestamp(0), key(2), frag(0, true), &[1; 8])
            .unwrap();
        assert_eq!(out, [[1u8; 8], [2; 8]].concat());
    }

    #[test]
    fn separate_keys_do_not_mix() {
        let mut d = Defragmenter::new(IpLimits::default());
        assert!(d
            .push(Timestamp(0), key(1), frag(0, true), &[1; 8])
            .is_none());
        assert!(d
            .push(Timestamp(0), key(2), frag(8, false), &[2; 8])
            .is_none());
        assert_eq!(d.in_progress(), 2);
        assert!(d
            .push(Timestamp(0), key(1), frag(16, false), &[1; 8])
            .is_none());
        let out = d
            .push(Timestamp(0), key(2), frag(0, true), &[3; 8])
            .unwrap();
        assert_eq!(out, [[3u8; 8], [2; 8]].concat());
    }

    #[test]
    fn timeout_drops_by_capture_time() {
        let mut d = Defragmenter::new(IpLimits::default());
        assert!(d
            .push(Timestamp(0), key(1), frag(0, true), &[1; 8])
            .is_none());
        // Another datagram 31 s later evicts the first.
        assert!(d
            .push(Timestamp(31_000_000), key(2), frag(0, true), &[1; 8])
            .is_none());
        assert_eq!(d.stats().timed_out, 1);
        assert!(d
            .push(Timestamp(31_000_000), key(1), frag(8, false), &[1; 8])
            .is_none());
        assert_eq!(d.stats().reassembled, 0);
        assert_eq!(d.in_progress(), 2);
    }

    #[test]
    fn count_and_byte_limits_drop_the_oldest() {
        let limits = IpLimits {
            max_reassemblies: 3,
            max_buffered: 100,
            ..IpLimits::default()
        };
        let mut d = Defragmenter::new(limits);
        for id in 0..5 {
            assert!(d
                .push(Timestamp(0), key(id), frag(0, true), &[0; 8])
                .is_none());
        }
        assert_eq!(d.in_progress(), 3);
        assert_eq!(d.stats().evicted, 2);
        // The oldest (0 and 1) are gone, the newest complete.
        assert!(d
            .push(Timestamp(0), key(0), frag(8, false), &[0; 8])
            .is_none());
        assert!(d
            .push(Timestamp(0), key(4), frag(8, false), &[0; 8])
            .is_some());
        // 90 more bytes exceed the 100-byte budget: older datagrams go first.
        let before = d.stats().evicted;
        assert!(d
            .push(Timestamp(0), key(9), frag(0, true), &[0; 90])
            .is_none());
        assert!(d.stats().evicted > before);
        assert!(d.buffered() <= 100);
    }

    #[test]
    fn oversized_and_shredded_datagrams_are_dropped() {
        let mut d = Defragmenter::new(IpLimits::default());
        assert!(d
            .push(Timestamp(0), key(1), frag(65_528, false), &[0; 16])
            .is_none());
        assert_eq!(d.stats().invalid, 1);
        assert_eq!(d.in_progress(), 0);
        for i in 0..=MAX_PIECES {
            assert!(d
                .push(Timestamp(0), key(2), frag(i * 16, true), &[0; 8])
                .is_none());
        }
        assert_eq!(d.stats().invalid, 2);
        assert_eq!(d.in_progress(), 0);
    }

    #[test]
    fn stale_order_entries_stay_bounded() {
        let mut d = Defragmenter::new(IpLimits::default());
        assert!(d
            .push(Timestamp(0), key(0), frag(0, true), &[0; 8])
            .is_none());
        for id in 1..10_000 {
            assert!(d
                .push(Timestamp(0), key(id), frag(0, true), &[0; 8])
                .is_none());
            assert!(d
                .push(Timestamp(0), key(id), frag(8, false), &[0; 8])
                .is_some());
        }
        assert!(d.order.len() < 200, "{}", d.order.len());
    }

    fn ipv4(total_len: u16, flags_off: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![
            0x45, 0, 0, 0, 0x12, 0x34, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        v[2..4].copy_from_slice(&total_len.to_be_bytes());
        v[6..8].copy_from_slice(&flags_off.to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn ipv4_lengths() {
        let p = ipv4(24, 0, &[1, 2, 3, 4, 0, 0]); // 2 bytes of Ethernet padding
        let ip = parse_ipv4(&p).unwrap();
        assert_eq!(
            (ip.payload, ip.truncated, ip.fragment),
            (&[1, 2, 3, 4][..], false, None)
        );
        assert_eq!(ip.protocol, 6);
        let p = ipv4(0, 0, &[1, 2]);
        let ip = parse_ipv4(&p).unwrap(); // TSO
        assert_eq!(ip.payload, &[1, 2]);
        let p = ipv4(100, 0, &[1, 2]);
        let ip = parse_ipv4(&p).unwrap(); // snaplen
        assert_eq!((ip.payload, ip.truncated), (&[1, 2][..], true));
        assert!(matches!(
            parse_ipv4(&ipv4(10, 0, &[])),
            Err(IpError::Malformed(_))
        ));
        assert!(matches!(parse_ipv4(&p[..10]), Err(IpError::Truncated(_))));
        // Bad checksum (zero) is fine; fragments are recognised.
        let p = ipv4(28, 0x2000 | 3, &[0; 8]);
        let ip = parse_ipv4(&p).unwrap();
        assert_eq!(
            ip.fragment,
            Some(FragmentInfo {
                id: 0x1234,
                offset: 24,
                more: true
            })
        );
        let p = ipv4(28, 0x4000, &[0; 8]); // DF only
        let ip = parse_ipv4(&p).unwrap();
        assert_eq!(ip.fragment, None);
    }

    fn ipv6(next: u8, plen: u16, rest: &[u8]) -> Vec<u8> {
        let mut v = vec![0x60, 0, 0, 0];
        v.extend_from_slice(&plen.to_be_bytes());
        v.push(next);
        v.push(64);
        v.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        v.extend_from_slice(&[0; 11]);
        v.push(1);
        v.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        v.extend_from_slice(&[0; 11]);
        v.push(2);
        v.extend_from_slice(rest);
        v
    }

    #[test]
    fn ipv6_extension_headers() {
        // Hop-by-hop (8) → routing (16) → destination options (8) → AH (12) → UDP.
        let mut rest = vec![43, 0, 1, 4, 0, 0, 0, 0];
        rest.extend([60, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        rest.extend([51, 0, 1, 4, 0, 0, 0, 0]);
        rest.extend([17, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1]);
        rest.extend([0xaa; 8]);
        let p = ipv6(0, rest.len() as u16, &rest);
        let ip = parse_ipv6(&p).unwrap();
        assert_eq!((ip.protocol, ip.payload), (17, &[0xaa; 8][..]));
        // ESP is opaque.
        let p = ipv6(50, 8, &[9; 8]);
        let ip = parse_ipv6(&p).unwrap();
        assert_eq!((ip.protocol, ip.payload.len()), (50, 8));
        // A header running past the packet.
        let p = ipv6(60, 8, &[6, 4, 0, 0, 0, 0, 0, 0]);
        assert!(matches!(parse_ipv6(&p), Err(IpError::Truncated(_))));
        // An endless chain of destination options.
        let chain: Vec<u8> = (0..20).flat_map(|_| [60, 0, 0, 0, 0, 0, 0, 0]).collect();
        assert!(matches!(
            parse_ipv6(&ipv6(60, 160, &chain)),
            Err(IpError::Malformed(_))
        ));
    }

    #[test]
    fn ipv6_lengths_and_fragments() {
        let p = ipv6(6, 4, &[1, 2, 3, 4, 0, 0]);
        let ip = parse_ipv6(&p).unwrap();
        assert_eq!(ip.payload, &[1, 2, 3, 4]);
        let p = ipv6(6, 0, &[1, 2, 3]);
        let ip = parse_ipv6(&p).unwrap(); // jumbo / TSO
        assert_eq!(ip.payload, &[1, 2, 3]);
        let p = ipv6(6, 99, &[1, 2, 3]);
        let ip = parse_ipv6(&p).unwrap();
        assert!(ip.truncated);
        // Atomic fragment: no reassembly.
        let p = ipv6(44, 10, &[6, 0, 0, 0, 0, 0, 0, 7, 5, 5]);
        let ip = parse_ipv6(&p).unwrap();
        assert_eq!(
            (ip.protocol, ip.fragment, ip.payload),
            (6, None, &[5, 5][..])
        );
        // A real fragment: offset 2 (16 bytes), more.
        let p = ipv6(44, 10, &[17, 0, 0, 0x11, 0, 0, 0, 7, 5, 5]);
        let ip = parse_ipv6(&p).unwrap();
        assert_eq!(
            ip.fragment,
            Some(FragmentInfo {
                id: 7,
                offset: 16,
                more: true
            })
        );
        assert_eq!(ip.protocol, 17);
        assert!(parse_ipv6(&[0x60; 39]).is_err());
        assert!(matches!(
            parse_ipv6(&ipv4(40, 0, &[0; 20])),
            Err(IpError::Malformed(_))
        ));
        assert_eq!(
            ipv6_upper_layer(60, &[17, 0, 0, 0, 0, 0, 0, 0, 1]).unwrap(),
            (17, 8)
        );
    }
}
