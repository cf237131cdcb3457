//! The search past the analysis cap of a request body sent with a `Content-Encoding`
//! (an SDK's gzipped batch upload, a contact list sent as br): its tail decoded as it
//! passes, so that an identifier there is found as it would be in the kept part.
//!
//! [`body_tail`] starts every search past the cap, for the proxy and a capture's
//! parsers alike. A body whose `Content-Encoding` names one coding `decode::stream`
//! can decode (gzip, deflate, br, zstd), kept whole from its first byte, gets a
//! [`DecodedTail`]; any other (not encoded, taken as already decoded, br with a window
//! over 4 MiB, zstd with one over 4 MiB, several codings, or bytes lost inside the
//! kept part) the [`StreamScanner`] over its raw bytes it always had, whose result
//! names the coding when the body was sent encoded all the same
//! ([`TailFound::undecoded`]).
//!
//! # Where the decoded search starts
//! The decoder has to see the stream from its first byte, so it is started once the
//! body passes the cap and first given the kept part, whose output the analysis
//! decodes and searches itself ([`crate::decode`], up to its output cap): that
//! output only seeds the search's overlap. The search covers the decoded bytes from
//! where the analysis stopped, the smaller of what the kept part decodes to and the
//! analysis's output cap, so a value straddling that point is found here and one
//! wholly before it is the analysis's. Offsets are into the decoded body; the hits
//! say so (`body-beyond-cap:gzip:OFFSET`).
//!
//! # Limits
//! Decoding costs CPU per decoded byte, and a small body can decode to gigabytes: a
//! body's decoding stops at [`MAX_DECODED_PAST_CAP`] decoded bytes past the
//! analysis's output cap, or at `max_ratio` times its encoded bytes so far (but at
//! least `content::SMALL_OUTPUT_BYTES`), whichever comes first, with a
//! `decompression-limit` anomaly, as does a stream whose encoded bytes run 1 MiB ahead
//! of its decoded ones (empty gzip members cost decoder set-ups, not output). A
//! corrupt stream stops with a
//! `content-decoding-error`, and bytes a capture lost with a `body-tail-gap`: the
//! decoder cannot go on after either. What follows is not searched (compressed bytes
//! hold no identifier to find). Memory: the decoder's state (about 40 KB for
//! deflate; for br up to its window, so a br stream declaring a window over 4 MiB is
//! searched raw, see `decode::stream::MAX_BROTLI_WINDOW_BITS`; for zstd its window,
//! up to 4 MiB likewise, and one block), its 32 KiB output buffer and the scanner's
//! window.
//!
//! zstd's decoder hands out the last window's worth of a frame only when the frame
//! ends: the lead allowed it grows by that window, and a zstd body cut short or
//! corrupt loses that last window's search (its `content-decoding-error` says so).

use std::io::{self, Write};
use std::sync::Arc;

use super::stream::StreamScanner;
use super::Detector;
use crate::decode::content::{self, Coding, MAX_ENCODED_LEAD};
use crate::decode::stream::PushDecoder;
use crate::decode::Limits;
use crate::exchange::Anomaly;
use crate::net::tail_search::{TailFound, TailScan, TailStart, MAX_UNDECODED_CHARS};

/// Most decoded bytes searched past the analysis's output cap in one body: the
/// bound on the work one body's tail can cause, whatever its ratio.
pub const MAX_DECODED_PAST_CAP: u64 = 256 << 20;

/// Encoded bytes given to the decoder at a time, so that the lead is checked often.
const PUSH_STEP: usize = 64 << 10;

/// The search of a request body past the cap, started as `start` says (see the
/// module documentation).
pub fn body_tail(
    detector: Arc<Detector>,
    limits: &Limits,
    start: TailStart<'_>,
) -> Box<dyn TailScan> {
    let whole = start.before.len() as u64 == start.at;
    if let Some(coding) = start
        .content_encoding
        .filter(|_| whole)
        .and_then(one_coding)
    {
        let tail = DecodedTail::new(
            Arc::clone(&detector),
            limits,
            coding,
            start.before,
            MAX_DECODED_PAST_CAP,
        );
        if let Some(tail) = tail {
            return Box::new(tail);
        }
        if content::passes_through(coding, start.before) {
            // Sent as it is despite its header (the analysis reads it so too).
            return Box::new(StreamScanner::at(detector, start.before, start.at));
        }
    }
    let scan = StreamScanner::at(detector, start.before, start.at);
    match start.content_encoding.and_then(names_a_coding) {
        Some(coding) => Box::new(SentEncoded { scan, coding }),
        None => Box::new(scan),
    }
}

/// A `Content-Encoding` value that names a coding besides `identity`, as an anomaly
/// quotes it (cut to [`MAX_UNDECODED_CHARS`]).
fn names_a_coding(value: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(value);
    let named = text
        .split(',')
        .any(|t| !matches!(Coding::parse(t), Ok(None)));
    named.then(|| text.trim().chars().take(MAX_UNDECODED_CHARS).collect())
}

/// The raw search of a body whose coding is not decoded past the cap: its result
/// says so ([`TailFound::undecoded`]).
struct SentEncoded {
    scan: StreamScanner,
    coding: String,
}

impl TailScan for SentEncoded {
    fn feed(&mut self, chunk: &[u8]) {
        self.scan.feed(chunk);
    }

    fn gap(&mut self, len: u64) {
        self.scan.gap(len);
    }

    fn finish(self: Box<Self>) -> TailFound {
        TailFound {
            undecoded: Some(self.coding),
            ..self.scan.finish()
        }
    }
}

/// The one coding a `Content-Encoding` value names (`identity` aside), if it names
/// exactly one that [`content::Coding`] knows.
fn one_coding(value: &[u8]) -> Option<Coding> {
    let text = std::str::from_utf8(value).ok()?;
    let mut codings = text
        .split(',')
        .map(Coding::parse)
        .filter(|c| !matches!(c, Ok(None)));
    match (codings.next(), codings.next()) {
        (Some(Ok(Some(coding))), None) => Some(coding),
        _ => None,
    }
}

/// A body's tail, decoded and searched as it passes.
pub struct DecodedTail {
    decoder: PushDecoder<Searched>,
    coding: Coding,
    max_ratio: u64,
    /// Decoded bytes produced in all, at most (the analysis's output cap plus
    /// [`MAX_DECODED_PAST_CAP`]).
    ceiling: u64,
    /// Encoded bytes given to the decoder, the kept part included.
    encoded: u64,
    /// Decoding stopped (a limit, a corrupt stream, lost bytes): the rest is counted
    /// only.
    stopped: bool,
    /// … because the encoded bytes ran [`MAX_ENCODED_LEAD`] ahead of the decoded ones.
    starved: bool,
    anomalies: Vec<Anomaly>,
}

impl DecodedTail {
    /// The search of a body in `coding` whose kept part (from its first byte) is
    /// `kept`, decoding at most `past_cap` bytes past the analysis's output cap;
    /// `None` when such a body is taken as already decoded, has no decoder here, or
    /// fails to decode within `kept` (then its tail is searched raw).
    fn new(
        detector: Arc<Detector>,
        limits: &Limits,
        coding: Coding,
        kept: &[u8],
        past_cap: u64,
    ) -> Option<DecodedTail> {
        // The analysis examines the kept part's first `max_body_bytes` only (the
        // proxy's `--body-cap` may be larger), and decodes that up to its output cap.
        let examined = kept.len().min(limits.max_body_bytes);
        let analysed = content::output_cap(examined, limits.max_decoded_bytes, limits.max_ratio);
        let searched = Searched {
            overlap: detector.longest_pattern().saturating_add(1),
            detector,
            produced: 0,
            start: analysed as u64,
            allowed: 0,
            lead: Vec::new(),
            scan: None,
            refused: false,
            closed: false,
        };
        let decoder = PushDecoder::new(coding, kept, searched)?;
        let mut tail = DecodedTail {
            decoder,
            coding,
            max_ratio: limits.max_ratio as u64,
            ceiling: (analysed as u64).saturating_add(past_cap),
            encoded: 0,
            stopped: false,
            starved: false,
            anomalies: Vec::new(),
        };
        let (analysed_part, unexamined) = kept.split_at(examined);
        if tail.push(analysed_part).is_err() && !tail.decoder.output_mut().refused {
            return None;
        }
        let out = tail.decoder.output_mut();
        // The analysis decoded up to here (or up to its cap, if that came first).
        out.start = out.start.min(out.produced);
        if !tail.stopped && !unexamined.is_empty() {
            // Kept, but not examined: searched here like the tail.
            let _ = tail.push(unexamined);
        }
        if tail.stopped {
            tail.note_stop();
        }
        Some(tail)
    }

    /// Decodes `encoded`; `Err` when decoding stopped on it.
    fn push(&mut self, encoded: &[u8]) -> io::Result<()> {
        for step in encoded.chunks(PUSH_STEP) {
            self.encoded = self.encoded.saturating_add(step.len() as u64);
            let by_ratio = self
                .encoded
                .saturating_mul(self.max_ratio)
                .max(content::SMALL_OUTPUT_BYTES as u64);
            // Decoded but held back (zstd's window) counts as decoded.
            let held_back = self.decoder.held_back_at_most();
            let out = self.decoder.output_mut();
            out.allowed = by_ratio.min(self.ceiling);
            let lead_allowed = MAX_ENCODED_LEAD.saturating_add(held_back);
            if self.encoded > out.produced.saturating_add(lead_allowed) {
                self.starved = true;
            }
            let pushed = if self.starved {
                Err(io::Error::other("encoded bytes far ahead of decoded ones"))
            } else {
                self.decoder.push(step)
            };
            if pushed.is_err() {
                self.stopped = true;
                return pushed;
            }
        }
        Ok(())
    }

    /// Says why decoding stopped, once.
    fn note_stop(&mut self) {
        let held_back = self.decoder.held_back_at_most();
        let out = self.decoder.output_mut();
        let (refused, produced) = (out.refused, out.produced);
        let coding = self.coding.name();
        let anomaly = if refused {
            Anomaly::new(
                "decompression-limit",
                format!(
                    "request body beyond the analysis cap: {coding} decoding stopped at {produced} \
                     decoded bytes ({} times the {} encoded bytes so far, {} at most); the rest \
                     was not searched",
                    self.max_ratio, self.encoded, self.ceiling
                ),
            )
        } else if self.starved {
            Anomaly::new(
                "decompression-limit",
                format!(
                    "request body beyond the analysis cap: {coding} decoding stopped after {} \
                     encoded bytes gave only {produced} decoded ones (empty gzip members, empty zstd \
                     blocks or the like); the rest was not searched",
                    self.encoded
                ),
            )
        } else {
            Anomaly::new(
                "content-decoding-error",
                format!(
                    "request body beyond the analysis cap: {coding} stream corrupt or cut \
                     short after {produced} decoded bytes; what came before was searched{}",
                    if held_back > 0 {
                        format!(" (up to {held_back} more, held for the frame's end, were not)")
                    } else {
                        String::new()
                    }
                ),
            )
        };
        self.anomalies.push(anomaly);
    }
}

impl TailScan for DecodedTail {
    fn feed(&mut self, chunk: &[u8]) {
        if self.stopped {
            self.encoded = self.encoded.saturating_add(chunk.len() as u64);
            return;
        }
        if self.push(chunk).is_err() {
            self.note_stop();
        }
    }

    fn gap(&mut self, len: u64) {
        self.encoded = self.encoded.saturating_add(len);
        if self.stopped {
            return;
        }
        self.stopped = true;
        let produced = self.decoder.output_mut().produced;
        self.anomalies.push(Anomaly::new(
            "body-tail-gap",
            format!(
                "request body beyond the analysis cap: {len} bytes of its {} stream were lost \
                 in the capture, so it cannot be decoded past them; {produced} decoded bytes \
                 before them were searched",
                self.coding.name()
            ),
        ));
    }

    fn finish(mut self: Box<Self>) -> TailFound {
        if !self.stopped && self.decoder.finish().is_err() {
            // The body ended before its stream did, or the stream's trailer is wrong.
            self.stopped = true;
            self.note_stop();
        }
        let out = self.decoder.output_mut();
        // Whatever the decoder still writes while it is dropped is not searched.
        out.closed = true;
        let scan = out.scan.take();
        let mut found = scan.map(StreamScanner::finish).unwrap_or_default();
        let coding = self.coding.name();
        for hit in &mut found.hits {
            hit.decoded_from = Some(coding);
        }
        found.decoded_from = Some(coding);
        found.anomalies.append(&mut self.anomalies);
        found
    }
}

/// Where the decoder's output goes: bytes the analysis searched seed the overlap,
/// the rest goes to the scanner, up to the limit.
struct Searched {
    detector: Arc<Detector>,
    overlap: usize,
    /// Decoded bytes so far.
    produced: u64,
    /// The decoded offset the search starts at.
    start: u64,
    /// Decoded bytes accepted in all, at most; then writes are refused.
    allowed: u64,
    /// The last `overlap` decoded bytes before `start`, until the scan starts.
    lead: Vec<u8>,
    scan: Option<StreamScanner>,
    /// A write was refused (the limit).
    refused: bool,
    /// Writes are taken and dropped (the search has ended).
    closed: bool,
}

impl Write for Searched {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        let room = self.allowed.saturating_sub(self.produced);
        if room == 0 && !buf.is_empty() {
            self.refused = true;
            return Err(io::Error::other("decoded-bytes limit"));
        }
        let take = usize::try_from(room).map_or(buf.len(), |r| r.min(buf.len()));
        let buf = buf.get(..take).unwrap_or_default();
        let before_start = usize::try_from(self.start.saturating_sub(self.produced))
            .map_or(buf.len(), |n| n.min(buf.len()));
        let (seed, searched) = buf.split_at(before_start);
        if !seed.is_empty() {
            // Only the last `overlap` bytes before the start are ever needed.
            let keep_old = self.overlap.saturating_sub(seed.len()).min(self.lead.len());
            self.lead.drain(..self.lead.len() - keep_old);
            self.lead
                .extend_from_slice(&seed[seed.len().saturating_sub(self.overlap)..]);
        }
        self.produced = self.produced.saturating_add(seed.len() as u64);
        if !searched.is_empty() {
            let (detector, lead, at) = (&self.detector, &self.lead, self.produced);
            self.scan
                .get_or_insert_with(|| StreamScanner::at(Arc::clone(detector), lead, at))
                .feed(searched);
            self.lead = Vec::new();
            self.produced = self.produced.saturating_add(searched.len() as u64);
        }
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::{Case, Device, Identifier, IdentifierKind, IdentifierValue};
    use crate::decode::content::tests::{brotli, gzip, raw_deflate, zlib, zstd, zstd_raw};

    const AD_ID: &str = "38400000-8cf0-11bd-b23e-10b96e40000d";

    fn detector() -> Arc<Detector> {
        let case = Case {
            devices: vec![Device {
                id: "pixel7".into(),
                identifiers: vec![Identifier {
                    kind: IdentifierKind::AdvertisingId,
                    value: IdentifierValue::Text(AD_ID.into()),
                }],
                ..Device::default()
            }],
            ..Case::default()
        };
        Arc::new(Detector::new(&case))
    }

    /// `n` bytes of varied JSON-ish filler that holds no identifier.
    fn filler(n: usize, seed: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 64);
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        while out.len() < n {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            out.extend_from_slice(format!("{{\"k\":\"{:x}\"}},", x >> 20).as_bytes());
        }
        out.truncate(n);
        out
    }

    fn limits() -> Limits {
        Limits {
            max_decoded_bytes: 64 << 10,
            ..Limits::default()
        }
    }

    /// The body cut at `cap` encoded bytes and the rest fed in `piece`-byte pieces, as
    /// a parser does: what the search past the cap finds.
    fn search(body: &[u8], encoding: &str, cap: usize, piece: usize, limits: &Limits) -> TailFound {
        let (kept, rest) = body.split_at(cap);
        let mut tail = body_tail(
            detector(),
            limits,
            TailStart {
                before: kept,
                at: cap as u64,
                content_encoding: Some(encoding.as_bytes()),
            },
        );
        for p in rest.chunks(piece.max(1)) {
            tail.feed(p);
        }
        tail.finish()
    }

    /// How many decoded bytes the analysis searches of a body kept up to `kept`.
    fn analysed(coding: Coding, kept: &[u8], limits: &Limits) -> usize {
        let out = match content::decode(coding, kept, usize::MAX) {
            content::Decoded::Cut(partial) => partial.len(),
            content::Decoded::Complete(v) => v.len(),
            other => panic!("{other:?}"),
        };
        out.min(content::output_cap(
            kept.len(),
            limits.max_decoded_bytes,
            limits.max_ratio,
        ))
    }

    #[test]
    fn an_identifier_deep_in_a_compressed_tail_is_found_at_its_decoded_offset() {
        // 300 KB of filler, the id, more filler: decoded, the id sits far past what
        // the analysis decodes from the kept part.
        let mut plain = filler(300_000, 1);
        let at = plain.len() as u64;
        plain.extend_from_slice(AD_ID.as_bytes());
        plain.extend_from_slice(&filler(50_000, 2));
        for (name, coding, body) in [
            ("gzip", Coding::Gzip, gzip(&plain)),
            ("x-gzip", Coding::Gzip, gzip(&plain)),
            ("deflate", Coding::Deflate, zlib(&plain)),
            ("deflate", Coding::Deflate, raw_deflate(&plain)),
            ("br", Coding::Brotli, brotli(&plain)),
            ("zstd", Coding::Zstd, zstd(&plain)),
            ("zstd", Coding::Zstd, zstd_raw(&plain)),
        ] {
            // A kept part that decodes to less than the analysis's 64 KiB (the test's
            // limit), and one that decodes to more (for zstd, whose decoder holds
            // back its 128 KiB window, 200 000).
            for kept in [4096, 60_000, 200_000]
                .into_iter()
                .filter(|&k| k < body.len())
            {
                let start = analysed(coding, &body[..kept], &limits());
                for piece in [1, 1000, 1 << 20] {
                    let found = search(&body, name, kept, piece, &limits());
                    let what = format!("{name}, {kept} kept, pieces of {piece}");
                    assert_eq!(found.hits.len(), 1, "{what}: {found:?}");
                    let hit = &found.hits[0];
                    assert_eq!(hit.offset, at, "{what}");
                    assert_eq!(hit.kind, "advertising_id");
                    let coding = coding.name();
                    assert_eq!(hit.location(), format!("body-beyond-cap:{coding}:{at}"));
                    assert_eq!(found.decoded_from, Some(coding));
                    assert!(found.anomalies.is_empty(), "{what}: {:?}", found.anomalies);
                    // Everything the analysis did not search was searched here.
                    assert_eq!(found.bytes, (plain.len() - start) as u64, "{what}");
                }
            }
        }
    }

    #[test]
    fn a_value_across_the_point_where_the_analysis_stopped_is_found_once() {
        let lim = limits();
        let cap = 64 << 10;
        let kept = 40_000;
        for id_at in [cap - 10, cap - AD_ID.len() + 1, cap - 1, cap, cap + 1] {
            let mut plain = filler(id_at, 3);
            plain.extend_from_slice(AD_ID.as_bytes());
            plain.extend_from_slice(&filler(100_000, 4));
            let body = gzip(&plain);
            assert_eq!(analysed(Coding::Gzip, &body[..kept], &lim), cap);
            let found = search(&body, "gzip", kept, 700, &lim);
            assert_eq!(found.hits.len(), 1, "id at {id_at}");
            assert_eq!(found.hits[0].offset, id_at as u64);
        }
        // Wholly before it: the analysis's, not found here.
        let mut plain = filler(cap - AD_ID.len(), 5);
        plain.extend_from_slice(AD_ID.as_bytes());
        plain.extend_from_slice(&filler(100_000, 6));
        assert!(search(&gzip(&plain), "gzip", kept, 700, &lim)
            .hits
            .is_empty());
    }

    #[test]
    fn a_kept_part_longer_than_the_analysis_examines_is_searched_past_that() {
        // The analysis examines 1 000 encoded bytes of the 8 000 kept (a proxy's
        // `--body-cap` over `max_body_bytes`): the search starts where those decode
        // to, not where the 8 000 do.
        let lim = Limits {
            max_body_bytes: 1000,
            ..limits()
        };
        let probe = gzip(&filler(100_000, 14));
        let examined_out = analysed(Coding::Gzip, &probe[..1000], &lim);
        let kept_out = analysed(Coding::Gzip, &probe[..8000], &Limits::default());
        assert!(examined_out + 1000 < kept_out, "{examined_out} {kept_out}");
        let id_at = examined_out + 500;
        let mut plain = filler(100_000, 14);
        plain.splice(id_at..id_at + AD_ID.len(), AD_ID.bytes());
        let body = gzip(&plain);
        let found = search(&body, "gzip", 8000, 4096, &lim);
        assert_eq!(found.hits.len(), 1, "{found:?}");
        assert_eq!(found.hits[0].offset, id_at as u64);
    }

    #[test]
    fn bodies_not_decoded_here_are_searched_raw_as_before() {
        let lim = limits();
        let mut plain = filler(10_000, 9);
        plain.extend_from_slice(AD_ID.as_bytes());
        // Not actually compressed (taken as decoded by the analysis too), zstd with a
        // window over 4 MiB, several codings, an unknown coding, and no coding.
        let mut zstd = zstd_raw(&plain);
        zstd[5] = 0x70;
        // The result says which were sent encoded all the same (`undecoded`).
        for (body, encoding, undecoded) in [
            (&plain[..], "gzip", None),
            (&zstd[..], "zstd", Some("zstd")),
            (&plain[..], "gzip, br", Some("gzip, br")),
            (&plain[..], "compress", Some("compress")),
            (&plain[..], "identity", None),
        ] {
            let found = search(body, encoding, 1000, 512, &lim);
            assert_eq!(found.decoded_from, None, "{encoding}");
            assert_eq!(found.undecoded.as_deref(), undecoded, "{encoding}");
            assert_eq!(found.hits.len(), 1, "{encoding}");
            // zstd's frame and block headers come before the text.
            let id_at = 10_000 + body.len() - plain.len();
            assert_eq!(found.hits[0].location(), format!("body-beyond-cap:{id_at}"));
        }
        // Kept bytes that are not the whole body from its first byte (a capture lost
        // some): raw.
        let body = gzip(&plain);
        let mut tail = body_tail(
            detector(),
            &lim,
            TailStart {
                before: &body[500..1000],
                at: 1000,
                content_encoding: Some(b"gzip"),
            },
        );
        tail.feed(&body[1000..]);
        let found = tail.finish();
        assert_eq!(found.decoded_from, None);
        assert_eq!(found.undecoded.as_deref(), Some("gzip"));
        assert!(found.searched().contains(
            "sent with Content-Encoding \"gzip\" and not decoded past the cap, were searched as sent"
        ));
    }

    #[test]
    fn decoding_stops_at_the_ratio_and_the_ceiling_and_says_so() {
        // A bomb: 8 MiB of one byte and then the id, gzipped to about 8 KB: past 1 MiB
        // (the least the ratio allows) decoding stops.
        let mut plain = vec![b'0'; 8 << 20];
        plain.extend_from_slice(AD_ID.as_bytes());
        let body = gzip(&plain);
        assert!(body.len() * 100 < 1 << 20, "{}", body.len());
        let found = search(&body, "gzip", 1024, 4096, &limits());
        assert!(found.hits.is_empty());
        let a = &found.anomalies;
        assert_eq!(a.len(), 1, "{a:?}");
        assert_eq!(a[0].kind, "decompression-limit");
        assert!(a[0].detail.contains("100 times"), "{}", a[0].detail);
        assert_eq!(found.bytes, (1 << 20) - (64 << 10));

        // Without a ratio limit the ceiling stops it: here 1 MiB past the analysis.
        let lim = Limits {
            max_ratio: usize::MAX,
            ..limits()
        };
        let mut tail =
            DecodedTail::new(detector(), &lim, Coding::Gzip, &body[..1024], 1 << 20).unwrap();
        tail.feed(&body[1024..]);
        let found = Box::new(tail).finish();
        assert!(found.hits.is_empty());
        assert_eq!(found.bytes, 1 << 20);
        assert_eq!(found.anomalies[0].kind, "decompression-limit");
    }

    #[test]
    fn a_stream_that_decodes_to_nothing_is_given_up_after_a_mebibyte() {
        // Empty gzip members: 20 bytes each, no output, a decoder set-up each.
        let member = gzip(b"");
        let members: Vec<u8> = member.iter().copied().cycle().take(3 << 20).collect();
        let mut body = gzip(&filler(2000, 15));
        body.extend_from_slice(&members);
        let found = search(&body, "gzip", 1024, 4096, &limits());
        assert_eq!(found.decoded_from, Some("gzip"));
        assert_eq!(found.anomalies.len(), 1, "{found:?}");
        assert_eq!(found.anomalies[0].kind, "decompression-limit");
        assert!(
            found.anomalies[0].detail.contains("gave only"),
            "{:?}",
            found.anomalies
        );
        // Kept and in the same state: the raw search, which costs nothing per member.
        let mut kept_members = member.repeat(80_000);
        kept_members.extend_from_slice(AD_ID.as_bytes());
        let found = search(&kept_members, "gzip", 1_600_000, 4096, &limits());
        assert_eq!(found.decoded_from, None);
        assert_eq!(found.hits.len(), 1);
    }

    #[test]
    fn a_corrupt_stream_or_lost_bytes_stop_decoding_and_what_came_before_counts() {
        let lim = limits();
        let mut plain = filler(200_000, 10);
        let at = plain.len() as u64;
        plain.extend_from_slice(AD_ID.as_bytes());
        plain.extend_from_slice(&filler(200_000, 11));
        let body = gzip(&plain);
        // The id's bytes arrive, then the stream fails: a wrong checksum, a body cut
        // short.
        let mut bad_crc = body.clone();
        let crc = bad_crc.len() - 8;
        bad_crc[crc] ^= 1;
        let cut = body[..body.len() - 1000].to_vec();
        for bad in [bad_crc, cut] {
            let found = search(&bad, "gzip", 1024, 4096, &lim);
            assert_eq!(found.hits.len(), 1, "{found:?}");
            assert_eq!(found.hits[0].offset, at);
            assert_eq!(found.anomalies.len(), 1, "{found:?}");
            assert_eq!(found.anomalies[0].kind, "content-decoding-error");
        }

        // A gap before the id: decoding stops there.
        let (kept, rest) = body.split_at(1024);
        let mut tail = body_tail(
            detector(),
            &lim,
            TailStart {
                before: kept,
                at: 1024,
                content_encoding: Some(b"gzip"),
            },
        );
        tail.feed(&rest[..1000]);
        tail.gap(500);
        tail.feed(&rest[1500..]);
        let found = tail.finish();
        assert!(found.hits.is_empty());
        assert_eq!(found.anomalies.len(), 1);
        assert_eq!(found.anomalies[0].kind, "body-tail-gap");
        assert!(found.anomalies[0]
            .detail
            .contains("500 bytes of its gzip stream"));
    }

    #[test]
    fn zstd_holds_back_its_window_for_the_lead_and_for_a_frame_cut_short() {
        let lim = limits();
        // Incompressible to the decoder (raw blocks) past a 4 MiB window: nothing
        // reaches the search for 4 MiB, which is not a starved decoder.
        let mut plain = filler(6 << 20, 16);
        let at = 5 << 20;
        plain.splice(at..at + AD_ID.len(), AD_ID.bytes());
        let mut body = zstd_raw(&plain);
        body[5] = 0x60;
        let found = search(&body, "zstd", 1024, 64 << 10, &lim);
        assert!(found.anomalies.is_empty(), "{:?}", found.anomalies);
        assert_eq!(found.hits.len(), 1);
        assert_eq!(found.hits[0].offset, at as u64);

        // Empty raw blocks (3 bytes each, no output): given up once they run a
        // mebibyte past the window.
        let mut empty = zstd_raw(&filler(2000, 17));
        let last = 6 + 3 + 2000;
        empty.truncate(last);
        empty[6] &= !1; // the filler's block is no longer the last
        empty.extend(std::iter::repeat_n([0u8; 3], 1 << 20).flatten());
        let found = search(&empty, "zstd", 1024, 4096, &lim);
        assert_eq!(found.anomalies.len(), 1, "{found:?}");
        assert_eq!(found.anomalies[0].kind, "decompression-limit");
        assert!(found.anomalies[0].detail.contains("gave only"));

        // Cut short: what the window held is lost, and the anomaly says so.
        let plain = filler(400_000, 18);
        let body = zstd_raw(&plain);
        let found = search(&body[..body.len() - 1000], "zstd", 1024, 4096, &lim);
        assert_eq!(found.anomalies.len(), 1, "{found:?}");
        let a = &found.anomalies[0];
        assert_eq!(a.kind, "content-decoding-error");
        assert!(
            a.detail
                .contains("up to 131072 more, held for the frame's end"),
            "{a:?}"
        );
        // A wrong checksum is found only at the end, after everything is searched.
        let mut plain = filler(400_000, 19);
        plain.extend_from_slice(AD_ID.as_bytes());
        let mut body = zstd(&plain);
        let last = body.len() - 1;
        body[last] ^= 1;
        let found = search(&body, "zstd", 1024, 4096, &lim);
        assert_eq!(found.hits.len(), 1);
        assert_eq!(found.anomalies[0].kind, "content-decoding-error");
        assert!(!found.anomalies[0].detail.contains("held"));
    }

    #[test]
    fn a_corrupt_kept_part_falls_back_to_the_raw_search() {
        let mut body = gzip(&filler(50_000, 12));
        body[20..40].fill(0xff);
        body.extend_from_slice(AD_ID.as_bytes());
        let found = search(&body, "gzip", 1000, 4096, &limits());
        assert_eq!(found.decoded_from, None);
        assert_eq!(found.hits.len(), 1);
    }

    #[test]
    fn one_coding_reads_the_header_as_the_analysis_does() {
        assert_eq!(one_coding(b"gzip"), Some(Coding::Gzip));
        assert_eq!(one_coding(b" X-GZIP "), Some(Coding::Gzip));
        assert_eq!(one_coding(b"identity, br"), Some(Coding::Brotli));
        assert_eq!(one_coding(b"gzip, br"), None);
        assert_eq!(one_coding(b"identity"), None);
        assert_eq!(one_coding(b"lzma"), None);
        assert_eq!(one_coding(b"\xffgzip"), None);
    }
}
