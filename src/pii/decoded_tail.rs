//! The search past the analysis cap of a request body sent with a `Content-Encoding`
//! (an SDK's gzipped batch upload, a contact list sent as br): its tail decoded as it
//! passes, so that an identifier there is found as it would be in the kept part.
//!
//! [`body_tail`] starts every search past the cap, for the proxy and a capture's
//! parsers alike. A body whose `Content-Encoding` names one or two codings that
//! `decode::stream` can decode (gzip, deflate, br, zstd; two such as `gzip, br`,
//! gzipped then br-compressed), kept whole from its first byte, gets a
//! [`DecodedTail`], which undoes each coding in turn, outermost first; any other (not
//! encoded, taken as already decoded, br with a window over 4 MiB, zstd with one over
//! 4 MiB, more than two codings, an unknown one, or bytes lost inside the kept part)
//! the [`StreamScanner`] over its raw bytes it always had, whose result names the
//! coding when the body was sent encoded all the same ([`TailFound::undecoded`]).
//!
//! # Where the decoded search starts
//! The decoders have to see the stream from its first byte, so they are started once
//! the body passes the cap and first given the kept part, whose output the analysis
//! decodes and searches itself ([`crate::decode`], up to its output cap): that
//! output only seeds the search's overlap. The search covers the decoded bytes from
//! where the analysis stopped, so a value straddling that point is found here and one
//! wholly before it is the analysis's. For one coding that point is the smaller of
//! what the kept part decodes to and the analysis's output cap. For two it depends on
//! where the analysis stopped in the outer coding's output, which it handed to the
//! inner one, each within its own cap: [`analysed_ends`] finds it by decoding the kept
//! part as the analysis does, once per coding, before the search starts. Offsets are
//! into the decoded body; the hits say so (`body-beyond-cap:gzip:OFFSET`,
//! `body-beyond-cap:gzip+br:OFFSET`).
//!
//! An inner coding whose first bytes are not in that coding (`gzip, br` whose br
//! stream holds plain JSON) is taken as already decoded, as the analysis takes it:
//! only the outer coding is undone.
//!
//! # Limits
//! Decoding costs CPU per decoded byte, and a small body can decode to gigabytes: each
//! coding's decoding stops at [`MAX_DECODED_PAST_CAP`] decoded bytes past where the
//! analysis stopped in its output, or at `max_ratio` times the body's encoded bytes so
//! far (but at least `content::SMALL_OUTPUT_BYTES`, and at least what the analysis
//! decoded of that coding: its cap comes from the coding's own input, which the outer
//! coding may have made larger than the body), whichever comes first, with a
//! `decompression-limit` anomaly, as does a stream whose input runs 1 MiB ahead of its
//! output (empty gzip members cost decoder set-ups, not output). A corrupt stream
//! stops with a `content-decoding-error`, and bytes a capture lost with a
//! `body-tail-gap`: the decoders cannot go on after either. What follows is not
//! searched (compressed bytes hold no identifier to find). Memory, per coding: the
//! decoder's state (about 40 KB for deflate; for br up to its window, so a br stream
//! declaring a window over 4 MiB is searched raw, see
//! `decode::stream::MAX_BROTLI_WINDOW_BITS`; for zstd its window, up to 4 MiB
//! likewise, and one block) and its 32 KiB output buffer; an inner coding's first
//! [`HEAD_BYTES`] until it starts; and the scanner's window.
//!
//! zstd's decoder hands out the last window's worth of a frame only when the frame
//! ends: the lead allowed it grows by that window, and a zstd body cut short or
//! corrupt loses that last window's search (its `content-decoding-error` says so).

use std::io::{self, Write};
use std::sync::Arc;

use super::stream::StreamScanner;
use super::Detector;
use crate::decode::content::{self, Coding, Codings, MAX_ENCODED_LEAD};
use crate::decode::stream::PushDecoder;
use crate::decode::Limits;
use crate::exchange::Anomaly;
use crate::net::tail_search::{TailFound, TailScan, TailStart, MAX_UNDECODED_CHARS};

/// Most decoded bytes searched past the analysis's output cap in one body: the
/// bound on the work one body's tail can cause, whatever its ratio.
pub const MAX_DECODED_PAST_CAP: u64 = 256 << 20;

/// Encoded bytes given to the decoder at a time, so that the lead is checked often.
const PUSH_STEP: usize = 64 << 10;

/// First bytes of an inner coding's stream its decoder waits for before it starts: as
/// many as the analysis looks at to tell whether bytes are in a coding at all
/// ([`content::passes_through`]).
const HEAD_BYTES: usize = content::SNIFFED_BYTES;

/// The search of a request body past the cap, started as `start` says (see the
/// module documentation).
pub fn body_tail(
    detector: Arc<Detector>,
    limits: &Limits,
    start: TailStart<'_>,
) -> Box<dyn TailScan> {
    let whole = start.before.len() as u64 == start.at;
    if let Some(codings) = start
        .content_encoding
        .filter(|_| whole)
        .and_then(codings_to_undo)
    {
        let tail = DecodedTail::new(
            Arc::clone(&detector),
            limits,
            codings,
            start.before,
            MAX_DECODED_PAST_CAP,
        );
        match tail {
            Ok(tail) => return Box::new(tail),
            // Sent as it is despite its header (the analysis reads it so too).
            Err(Unstarted::NotEncoded) => {
                return Box::new(StreamScanner::at(detector, start.before, start.at))
            }
            Err(Unstarted::NoDecoder) => {}
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

/// The codings a `Content-Encoding` value names (`identity` aside), if it names one or
/// two that [`content::Coding`] knows and nothing else.
fn codings_to_undo(value: &[u8]) -> Option<Codings> {
    let text = std::str::from_utf8(value).ok()?;
    let mut named = text.split(',').filter_map(|t| match Coding::parse(t) {
        Ok(None) => None,
        known_or_not => Some(known_or_not.ok().flatten()),
    });
    match (named.next(), named.next(), named.next()) {
        (Some(Some(one)), None, None) => Some(Codings::one(one)),
        (Some(Some(first)), Some(Some(then)), None) => Some(Codings::two(first, then)),
        _ => None,
    }
}

/// Why a body's codings are not decoded past the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unstarted {
    /// Its bytes are not in its (outer) coding: the analysis takes them as already
    /// decoded, and so does the search.
    NotEncoded,
    /// No decoder here takes it (a window over the limit, a corrupt kept part): it is
    /// searched as sent.
    NoDecoder,
}

/// Why a coding's decoding stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// Its output reached its limit.
    Limit,
    /// Its input ran [`MAX_ENCODED_LEAD`] ahead of its output.
    Starved,
    /// A corrupt stream, or one cut short.
    Corrupt,
    /// An inner coding's first bytes are not in that coding, or no decoder takes them.
    Unstarted(Unstarted),
}

/// A body's tail, decoded and searched as it passes.
pub struct DecodedTail {
    /// The outermost coding (the last applied); the search is at the end of its chain.
    outer: Layer,
    codings: Codings,
    max_ratio: u64,
    /// Decoding stopped (a limit, a corrupt stream, lost bytes): the rest is counted
    /// only.
    stopped: bool,
    anomalies: Vec<Anomaly>,
}

impl DecodedTail {
    /// The search of a body in `codings` whose kept part (from its first byte) is
    /// `kept`, decoding at most `past_cap` bytes past where the analysis stopped in
    /// each coding's output; `Err` when such a body is taken as already decoded, or
    /// has no decoder here, or fails to decode within `kept` (then its tail is searched
    /// raw).
    fn new(
        detector: Arc<Detector>,
        limits: &Limits,
        codings: Codings,
        kept: &[u8],
        past_cap: u64,
    ) -> Result<DecodedTail, Unstarted> {
        // The analysis examines the kept part's first `max_body_bytes` only (the
        // proxy's `--body-cap` may be larger), and decodes that up to its output cap.
        let examined = kept.len().min(limits.max_body_bytes);
        let (analysed_part, unexamined) = kept.split_at(examined);
        let mut layers: Vec<Coding> = codings.outermost_first().collect();
        let (codings, ends) = if codings.is_chain() {
            let ends = analysed_ends(limits, &layers, analysed_part)?;
            // An inner coding whose bytes are not in it is not undone (nor by the
            // analysis).
            layers.truncate(ends.len());
            let codings = match layers[..] {
                [outer] => Codings::one(outer),
                _ => codings,
            };
            (codings, ends)
        } else {
            // At most this; the decoder tells how much less below.
            let cap = content::output_cap(examined, limits.max_decoded_bytes, limits.max_ratio);
            (codings, vec![cap as u64])
        };
        let searched = Searched {
            overlap: detector.longest_pattern().saturating_add(1),
            detector,
            produced: 0,
            start: ends.last().copied().unwrap_or(0),
            lead: Vec::new(),
            scan: None,
            closed: false,
        };
        let ceilings: Vec<u64> = ends.iter().map(|e| e.saturating_add(past_cap)).collect();
        let outer = Layer::chain(
            &layers,
            kept,
            &ends,
            &ceilings,
            Sink::Search(Box::new(searched)),
        )?;
        let mut tail = DecodedTail {
            outer,
            codings,
            max_ratio: limits.max_ratio as u64,
            stopped: false,
            anomalies: Vec::new(),
        };
        if tail.push(analysed_part).is_err() && tail.outer.stop_within() != Some(Stop::Limit) {
            return Err(Unstarted::NoDecoder);
        }
        let search = tail.outer.search_mut().ok_or(Unstarted::NoDecoder)?;
        // The analysis decoded up to here (or up to its cap, if that came first).
        search.start = search.start.min(search.produced);
        if !tail.stopped && !unexamined.is_empty() {
            // Kept, but not examined: searched here like the tail.
            let _ = tail.push(unexamined);
        }
        if tail.stopped {
            tail.note_stop();
        }
        Ok(tail)
    }

    /// Decodes `encoded`; `Err` when decoding stopped on it.
    fn push(&mut self, encoded: &[u8]) -> io::Result<()> {
        for step in encoded.chunks(PUSH_STEP) {
            let taken = self.outer.taken.saturating_add(step.len() as u64);
            let by_ratio = taken
                .saturating_mul(self.max_ratio)
                .max(content::SMALL_OUTPUT_BYTES as u64);
            self.outer.allow(by_ratio);
            if let Err(e) = self.outer.push(step) {
                self.stopped = true;
                return Err(e);
            }
        }
        Ok(())
    }

    /// The coding named in an anomaly: `gzip`, or `gzip (of gzip+br)`.
    fn layer_name(&self, coding: Coding) -> String {
        if self.codings.is_chain() {
            format!("{} (of {})", coding.name(), self.codings)
        } else {
            coding.name().to_string()
        }
    }

    /// Says why decoding stopped, once.
    fn note_stop(&mut self) {
        let encoded = self.outer.taken;
        let (max_ratio, layer) = (self.max_ratio, self.outer.stopped_layer());
        let (coding, stop, taken, ceiling) = (layer.coding, layer.stop, layer.taken, layer.ceiling);
        let produced = layer.produced();
        let held_back = layer.held_back();
        let by_ratio = encoded
            .saturating_mul(max_ratio)
            .max(content::SMALL_OUTPUT_BYTES as u64);
        let bound = if layer.floor > by_ratio {
            format!(
                "as many as the analysis decoded of it, more than {max_ratio} times the \
                 {encoded} encoded bytes so far"
            )
        } else {
            format!("{max_ratio} times the {encoded} encoded bytes so far, {ceiling} at most")
        };
        let coding = self.layer_name(coding);
        let anomaly = match stop {
            Some(Stop::Limit) => Anomaly::new(
                "decompression-limit",
                format!(
                    "request body beyond the analysis cap: {coding} decoding stopped at {produced} \
                     decoded bytes ({bound}); the rest was not searched"
                ),
            ),
            Some(Stop::Starved) => Anomaly::new(
                "decompression-limit",
                format!(
                    "request body beyond the analysis cap: {coding} decoding stopped after \
                     {taken} encoded bytes gave only {produced} decoded ones (empty gzip \
                     members, empty zstd blocks or the like); the rest was not searched"
                ),
            ),
            _ => Anomaly::new(
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
            ),
        };
        self.anomalies.push(anomaly);
    }
}

impl TailScan for DecodedTail {
    fn feed(&mut self, chunk: &[u8]) {
        if self.stopped {
            return;
        }
        if self.push(chunk).is_err() {
            self.note_stop();
        }
    }

    fn gap(&mut self, len: u64) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let searched = self.outer.search_mut().map_or(0, |s| s.produced);
        self.anomalies.push(Anomaly::new(
            "body-tail-gap",
            format!(
                "request body beyond the analysis cap: {len} bytes of its {} stream were lost \
                 in the capture, so it cannot be decoded past them; {searched} decoded bytes \
                 before them were searched",
                self.codings
            ),
        ));
    }

    fn finish(mut self: Box<Self>) -> TailFound {
        if !self.stopped && self.outer.finish().is_err() {
            // The body ended before a stream did, or a stream's trailer is wrong.
            self.stopped = true;
            self.note_stop();
        }
        let scan = self.outer.search_mut().and_then(|search| {
            // Whatever the decoders still write while they are dropped is not searched.
            search.closed = true;
            search.scan.take()
        });
        let mut found = scan.map(StreamScanner::finish).unwrap_or_default();
        for hit in &mut found.hits {
            hit.decoded_from = Some(self.codings);
        }
        found.decoded_from = Some(self.codings);
        found.anomalies.append(&mut self.anomalies);
        found
    }
}

/// Where the analysis's decoding of a kept part in `layers` (outermost first) stopped
/// in each coding's output, found by decoding `examined` as the analysis does
/// (`decode`'s `decoded_body`): each coding's output bounded by the analysis's cap
/// for it (from its input's length and what the codings before it used of the
/// message's decompression budget), the next coding given that much. Shorter than
/// `layers` when an inner coding's bytes are not in that coding (the analysis searches
/// them as they are). Each coding's pass decodes the kept part again through the ones
/// around it: work for bodies of two codings only.
fn analysed_ends(
    limits: &Limits,
    layers: &[Coding],
    examined: &[u8],
) -> Result<Vec<u64>, Unstarted> {
    let mut ends: Vec<u64> = Vec::with_capacity(layers.len());
    let mut input = examined.len();
    let mut budget = limits.max_decoded_bytes;
    for depth in 0..layers.len() {
        let cap = content::output_cap(input, budget, limits.max_ratio) as u64;
        let bounds: Vec<u64> = ends.iter().copied().chain([cap]).collect();
        let mut outer = Layer::chain(&layers[..=depth], examined, &bounds, &bounds, Sink::Discard)?;
        // No ratio of its own: the bounds are the analysis's caps.
        outer.allow(u64::MAX);
        // An error is a limit (the caps above) or a stream that does not decode: the
        // stops below tell which.
        let _ = examined
            .chunks(PUSH_STEP)
            .try_for_each(|step| outer.push(step));
        let innermost = outer.innermost();
        if matches!(innermost.state, State::Waiting(..)) {
            // The analysis judged the inner coding on fewer bytes than it takes to
            // tell (and searched none of its output): whatever the search judged it
            // on, its start would not follow the analysis's. Searched as sent.
            return Err(Unstarted::NoDecoder);
        }
        match (innermost.stop, outer.stop_within()) {
            (Some(Stop::Unstarted(Unstarted::NotEncoded)), _) if depth > 0 => return Ok(ends),
            (Some(Stop::Unstarted(why)), _) => return Err(why),
            (_, None | Some(Stop::Limit)) => {}
            (_, Some(_)) => return Err(Unstarted::NoDecoder),
        }
        let end = outer.innermost().produced();
        ends.push(end);
        budget = budget.saturating_sub(usize::try_from(end).unwrap_or(usize::MAX));
        input = usize::try_from(end).unwrap_or(usize::MAX);
    }
    Ok(ends)
}

/// One coding of the body, undone as its bytes arrive; its output goes to the next
/// coding inward or, from the innermost, to the search.
struct Layer {
    coding: Coding,
    state: State,
    /// Bytes taken from outside: the body's encoded bytes for the outermost coding,
    /// the decoded bytes of the coding around it for an inner one.
    taken: u64,
    /// Decoded bytes this coding may produce whatever the ratio: as many as the
    /// analysis decoded of it (its output cap may come from the coding's own input,
    /// larger than the body's encoded bytes).
    floor: u64,
    /// Decoded bytes this coding may produce in all.
    ceiling: u64,
    /// Why this coding's decoding stopped, when it stopped here (not further in).
    stop: Option<Stop>,
}

enum State {
    /// An inner coding waiting for the first bytes of its stream.
    Waiting(Vec<u8>, Bounded<Sink>),
    // Boxed, as the search is: several hundred bytes that a waiting layer has not.
    Decoding(Box<PushDecoder<Bounded<Sink>>>),
    /// It never started ([`Layer::stop`] says why): nothing more is decoded.
    Unstarted,
}

impl Layer {
    /// The chain of `layers` (outermost first) around `sink`: the outermost started on
    /// `kept`, the body's first bytes; an inner coding waiting for the first
    /// [`HEAD_BYTES`] of its stream; coding `i` allowed `floors[i]` bytes whatever the
    /// ratio, and at most `ceilings[i]`.
    fn chain(
        layers: &[Coding],
        kept: &[u8],
        floors: &[u64],
        ceilings: &[u64],
        sink: Sink,
    ) -> Result<Layer, Unstarted> {
        let floor = |i: usize| floors.get(i).copied().unwrap_or(0);
        let ceiling = |i: usize| ceilings.get(i).copied().unwrap_or(0);
        let mut sink = sink;
        for (i, &coding) in layers.iter().enumerate().skip(1).rev() {
            sink = Sink::Inner(Box::new(Layer {
                coding,
                state: State::Waiting(Vec::new(), Bounded::new(sink)),
                taken: 0,
                floor: floor(i),
                ceiling: ceiling(i),
                stop: None,
            }));
        }
        let outer = *layers.first().ok_or(Unstarted::NoDecoder)?;
        let decoder = PushDecoder::new(outer, kept, Bounded::new(sink)).ok_or_else(|| {
            if content::passes_through(outer, kept) {
                Unstarted::NotEncoded
            } else {
                Unstarted::NoDecoder
            }
        })?;
        Ok(Layer {
            coding: outer,
            state: State::Decoding(Box::new(decoder)),
            taken: 0,
            floor: floor(0),
            ceiling: ceiling(0),
            stop: None,
        })
    }

    /// Lets this coding and those inside it produce up to `by_ratio` bytes each (but
    /// their floors), within their ceilings.
    fn allow(&mut self, by_ratio: u64) {
        let (floor, ceiling) = (self.floor, self.ceiling);
        if let Some(out) = self.output_mut() {
            out.allowed = by_ratio.max(floor).min(ceiling);
            if let Sink::Inner(inner) = &mut out.out {
                inner.allow(by_ratio);
            }
        }
    }

    /// Takes the next bytes of this coding's stream; `Err` when decoding stopped, here
    /// or further in.
    fn push(&mut self, mut input: &[u8]) -> io::Result<()> {
        if let State::Waiting(head, _) = &mut self.state {
            let take = HEAD_BYTES.saturating_sub(head.len()).min(input.len());
            let (first, rest) = input.split_at(take);
            head.extend_from_slice(first);
            self.taken = self.taken.saturating_add(take as u64);
            input = rest;
            if head.len() < HEAD_BYTES {
                return Ok(());
            }
            self.start()?;
        }
        if input.is_empty() {
            return Ok(());
        }
        self.taken = self.taken.saturating_add(input.len() as u64);
        self.decode(input)
    }

    /// Starts a waiting coding's decoder on the first bytes it has.
    fn start(&mut self) -> io::Result<()> {
        let State::Waiting(head, out) = std::mem::replace(&mut self.state, State::Unstarted) else {
            return Ok(());
        };
        let not_encoded = content::passes_through(self.coding, &head);
        match PushDecoder::new(self.coding, &head, out) {
            Some(decoder) => {
                self.state = State::Decoding(Box::new(decoder));
                self.decode(&head)
            }
            None => {
                self.stop = Some(Stop::Unstarted(if not_encoded {
                    Unstarted::NotEncoded
                } else {
                    Unstarted::NoDecoder
                }));
                Err(io::Error::other("coding not started"))
            }
        }
    }

    /// Decodes bytes of this started coding's stream (already counted in `taken`).
    fn decode(&mut self, input: &[u8]) -> io::Result<()> {
        let State::Decoding(decoder) = &mut self.state else {
            return Err(io::Error::other("coding not started"));
        };
        // Decoded but held back (zstd's window) counts as decoded.
        let lead_allowed = MAX_ENCODED_LEAD.saturating_add(decoder.held_back_at_most());
        let out = decoder.output_mut();
        if self.taken > out.produced.saturating_add(lead_allowed) {
            self.stop = Some(Stop::Starved);
            return Err(io::Error::other("encoded bytes far ahead of decoded ones"));
        }
        let pushed = decoder.push(input);
        if pushed.is_err() {
            self.note_error();
        }
        pushed
    }

    /// The stream ended: each coding's decoder checks its stream did too, outermost
    /// first (an outer one's last output reaches the inner one as it finishes).
    fn finish(&mut self) -> io::Result<()> {
        if matches!(self.state, State::Waiting(..)) {
            self.start()?;
        }
        if let State::Decoding(decoder) = &mut self.state {
            if let Err(e) = decoder.finish() {
                self.note_error();
                return Err(e);
            }
        }
        match self.output_mut().map(|out| &mut out.out) {
            Some(Sink::Inner(inner)) => inner.finish(),
            _ => Ok(()),
        }
    }

    /// A decoder's error: this coding's limit or stream, unless it came from further in.
    fn note_error(&mut self) {
        let Some(out) = self.output_mut() else {
            return;
        };
        let stop = match &out.out {
            _ if out.refused => Stop::Limit,
            Sink::Inner(inner) if inner.stop_within().is_some() => return,
            _ => Stop::Corrupt,
        };
        self.stop = Some(stop);
    }

    /// Why decoding stopped, here or further in.
    fn stop_within(&self) -> Option<Stop> {
        self.stop
            .or_else(|| match self.output().map(|out| &out.out) {
                Some(Sink::Inner(inner)) => inner.stop_within(),
                _ => None,
            })
    }

    /// The coding where decoding stopped (this one when none did).
    fn stopped_layer(&self) -> &Layer {
        match self.output().map(|out| &out.out) {
            Some(Sink::Inner(inner)) if self.stop.is_none() && inner.stop_within().is_some() => {
                inner.stopped_layer()
            }
            _ => self,
        }
    }

    /// The innermost coding of the chain.
    fn innermost(&self) -> &Layer {
        match self.output().map(|out| &out.out) {
            Some(Sink::Inner(inner)) => inner.innermost(),
            _ => self,
        }
    }

    /// The search at the end of the chain, unless a coding that never started dropped
    /// it.
    fn search_mut(&mut self) -> Option<&mut Searched> {
        match &mut self.output_mut()?.out {
            Sink::Inner(inner) => inner.search_mut(),
            Sink::Search(search) => Some(search),
            Sink::Discard => None,
        }
    }

    /// Decoded bytes this coding produced.
    fn produced(&self) -> u64 {
        self.output().map_or(0, |out| out.produced)
    }

    /// Decoded bytes its decoder holds back, at most (zstd's window).
    fn held_back(&self) -> u64 {
        match &self.state {
            State::Decoding(decoder) => decoder.held_back_at_most(),
            _ => 0,
        }
    }

    fn output(&self) -> Option<&Bounded<Sink>> {
        match &self.state {
            State::Waiting(_, out) => Some(out),
            State::Decoding(decoder) => Some(decoder.output()),
            State::Unstarted => None,
        }
    }

    fn output_mut(&mut self) -> Option<&mut Bounded<Sink>> {
        match &mut self.state {
            State::Waiting(_, out) => Some(out),
            State::Decoding(decoder) => Some(decoder.output_mut()),
            State::Unstarted => None,
        }
    }
}

/// A coding's output, bounded: it refuses what would take it past `allowed`.
struct Bounded<W> {
    out: W,
    /// Bytes taken so far.
    produced: u64,
    /// Bytes accepted in all, at most; then writes are refused.
    allowed: u64,
    /// A write was refused.
    refused: bool,
}

impl<W> Bounded<W> {
    fn new(out: W) -> Bounded<W> {
        Bounded {
            out,
            produced: 0,
            allowed: 0,
            refused: false,
        }
    }
}

impl<W: Write> Write for Bounded<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.allowed.saturating_sub(self.produced);
        if room == 0 && !buf.is_empty() {
            self.refused = true;
            return Err(io::Error::other("decoded-bytes limit"));
        }
        let take = usize::try_from(room).map_or(buf.len(), |r| r.min(buf.len()));
        let n = self.out.write(buf.get(..take).unwrap_or_default())?;
        self.produced = self.produced.saturating_add(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Where a coding's output goes.
enum Sink {
    /// The next coding inward.
    Inner(Box<Layer>),
    /// The search, from the innermost coding.
    Search(Box<Searched>),
    /// Nowhere: [`analysed_ends`] only counts.
    Discard,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Inner(inner) => inner.push(buf).map(|()| buf.len()),
            Sink::Search(search) => search.write(buf),
            Sink::Discard => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Where the innermost decoder's output goes: bytes the analysis searched seed the
/// overlap, the rest goes to the scanner.
struct Searched {
    detector: Arc<Detector>,
    overlap: usize,
    /// Decoded bytes so far.
    produced: u64,
    /// The decoded offset the search starts at.
    start: u64,
    /// The last `overlap` decoded bytes before `start`, until the scan starts.
    lead: Vec<u8>,
    scan: Option<StreamScanner>,
    /// Writes are taken and dropped (the search has ended).
    closed: bool,
}

impl Write for Searched {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
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
        Ok(buf.len())
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

    /// The search past the cap of `body` cut at `cap` encoded bytes, and the rest.
    fn start<'b>(
        body: &'b [u8],
        encoding: &str,
        cap: usize,
        limits: &Limits,
    ) -> (Box<dyn TailScan>, &'b [u8]) {
        let (kept, rest) = body.split_at(cap);
        let tail = body_tail(
            detector(),
            limits,
            TailStart {
                before: kept,
                at: cap as u64,
                content_encoding: Some(encoding.as_bytes()),
            },
        );
        (tail, rest)
    }

    /// The body cut at `cap` encoded bytes and the rest fed in `piece`-byte pieces, as
    /// a parser does: what the search past the cap finds.
    fn search(body: &[u8], encoding: &str, cap: usize, piece: usize, limits: &Limits) -> TailFound {
        let (mut tail, rest) = start(body, encoding, cap, limits);
        for p in rest.chunks(piece.max(1)) {
            tail.feed(p);
        }
        tail.finish()
    }

    /// The body cut at `cap` encoded bytes, then 1 000 bytes of the rest fed, 500
    /// lost, and the rest after them fed: what the search past the cap finds.
    fn search_across_a_gap(body: &[u8], encoding: &str, cap: usize, limits: &Limits) -> TailFound {
        let (mut tail, rest) = start(body, encoding, cap, limits);
        tail.feed(&rest[..1000]);
        tail.gap(500);
        tail.feed(&rest[1500..]);
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
                    assert_eq!(
                        hit.location(),
                        format!("body-beyond-cap:{}:{at}", coding.name())
                    );
                    assert_eq!(found.decoded_from, Some(Codings::one(coding)));
                    assert!(found.anomalies.is_empty(), "{what}: {:?}", found.anomalies);
                    // Everything the analysis did not search was searched here.
                    assert_eq!(found.bytes, (plain.len() - start) as u64, "{what}");
                }
            }
        }
    }

    /// `plain` in `first`, then in `then`, as `Content-Encoding: first, then` says.
    fn encode(plain: &[u8], codings: [Coding; 2]) -> Vec<u8> {
        codings
            .iter()
            .fold(plain.to_vec(), |data, coding| match coding {
                Coding::Gzip => gzip(&data),
                Coding::Deflate => zlib(&data),
                Coding::Brotli => brotli(&data),
                Coding::Zstd => zstd(&data),
            })
    }

    /// How many decoded bytes the analysis searches of a body of two codings kept up
    /// to `kept`, worked out as `decode` does it, each coding with a whole buffer;
    /// `None` when the outer one gives it too few bytes to tell the inner one by.
    fn analysed_two(codings: [Coding; 2], kept: &[u8], limits: &Limits) -> Option<usize> {
        let [inner, outer] = codings;
        let cap0 = content::output_cap(kept.len(), limits.max_decoded_bytes, limits.max_ratio);
        let outer_out = match content::decode(outer, kept, cap0) {
            content::Decoded::Cut(v) | content::Decoded::Limited(v) => v,
            other => panic!("{other:?}"),
        };
        if outer_out.len() < HEAD_BYTES {
            return None;
        }
        let cap1 = content::output_cap(
            outer_out.len(),
            limits.max_decoded_bytes - outer_out.len(),
            limits.max_ratio,
        );
        match content::decode(inner, &outer_out, cap1) {
            content::Decoded::Cut(v)
            | content::Decoded::Limited(v)
            | content::Decoded::Complete(v) => Some(v.len()),
            other => panic!("{codings:?}, {} kept: {other:?}", kept.len()),
        }
    }

    #[test]
    fn an_identifier_deep_in_a_tail_of_two_codings_is_found_at_its_decoded_offset() {
        let mut plain = filler(300_000, 21);
        let at = plain.len() as u64;
        plain.extend_from_slice(AD_ID.as_bytes());
        plain.extend_from_slice(&filler(50_000, 22));
        let lim = limits();
        // The last: zstd outside, holding back its window, is never decoded here.
        for (header, codings, decodes) in [
            ("gzip, br", [Coding::Gzip, Coding::Brotli], true),
            ("deflate, gzip", [Coding::Deflate, Coding::Gzip], true),
            ("zstd, br", [Coding::Zstd, Coding::Brotli], true),
            ("gzip, identity, gzip", [Coding::Gzip, Coding::Gzip], true),
            ("br,zstd", [Coding::Brotli, Coding::Zstd], false),
        ] {
            let body = encode(&plain, codings);
            let name = format!("{}+{}", codings[0].name(), codings[1].name());
            for kept in [2000, 30_000].into_iter().filter(|&k| k < body.len()) {
                let start = analysed_two(codings, &body[..kept], &lim);
                assert_eq!(start.is_some(), decodes, "{header}, {kept} kept");
                for piece in [7, 1000, 1 << 20] {
                    let found = search(&body, header, kept, piece, &lim);
                    let what = format!("{header}, {kept} kept, pieces of {piece}");
                    let Some(start) = start else {
                        // zstd hands out nothing of a frame cut within its window
                        // (`decode::zstd`): nothing of br to judge it by. Searched as
                        // sent, and it says so.
                        assert_eq!(found.decoded_from, None, "{what}");
                        assert_eq!(found.undecoded.as_deref(), Some(header), "{what}");
                        continue;
                    };
                    assert!(found.anomalies.is_empty(), "{what}: {:?}", found.anomalies);
                    assert_eq!(found.hits.len(), 1, "{what}: {found:?}");
                    assert_eq!(found.hits[0].offset, at, "{what}");
                    assert_eq!(
                        found.hits[0].location(),
                        format!("body-beyond-cap:{name}:{at}")
                    );
                    assert_eq!(
                        found.decoded_from,
                        Some(Codings::two(codings[0], codings[1]))
                    );
                    // Everything the analysis did not search was searched here.
                    assert_eq!(found.bytes, (plain.len() - start) as u64, "{what}");
                    assert!(found.searched().contains(&format!("{name}-decoded")));
                }
            }
        }
    }

    #[test]
    fn an_inner_coding_may_produce_what_the_analysis_decoded_of_it_whatever_the_ratio() {
        // An 8 000-byte piece of text 300 times over: gzip sees each copy in its
        // window, br sees gzip's repeated output in its own. The 8 KiB the analysis
        // examines give gzip some 26 KB (br's ratio), which gzip makes 2.4 MB, within
        // the analysis's cap for it (100 times its 26 KB), but three times the body's
        // 100 times 8 KiB (or 1 MiB). The inner coding may produce what the analysis
        // decoded of it before the body's ratio counts, and the search goes on to an
        // identifier in the text that follows.
        let lim = Limits {
            max_body_bytes: 8 << 10,
            ..Limits::default()
        };
        let piece = filler(8000, 40);
        let mut plain = piece.repeat(300);
        plain.extend_from_slice(&filler(200_000, 41));
        let at = plain.len() as u64;
        plain.extend_from_slice(AD_ID.as_bytes());
        plain.extend_from_slice(&filler(200_000, 42));
        let codings = [Coding::Gzip, Coding::Brotli];
        let body = encode(&plain, codings);
        let start = analysed_two(codings, &body[..8 << 10], &lim).unwrap();
        assert!(start > 2 << 20, "{start}");
        let found = search(&body, "gzip, br", 8 << 10, 64 << 10, &lim);
        assert!(found.anomalies.is_empty(), "{:?}", found.anomalies);
        assert_eq!(found.hits.len(), 1, "{found:?}");
        assert_eq!(found.hits[0].offset, at);
        assert_eq!(found.bytes, (plain.len() - start) as u64);
    }

    #[test]
    fn an_inner_coding_whose_bytes_are_not_in_it_is_not_undone() {
        // Sent as `gzip, br` but only br-compressed: the analysis takes br's output as
        // already decoded, and so does the search past the cap.
        let mut plain = filler(200_000, 23);
        let at = plain.len() as u64;
        plain.extend_from_slice(AD_ID.as_bytes());
        plain.extend_from_slice(&filler(10_000, 24));
        let found = search(&brotli(&plain), "gzip, br", 3000, 4096, &limits());
        assert_eq!(found.decoded_from, Some(Codings::one(Coding::Brotli)));
        assert_eq!(found.hits.len(), 1, "{found:?}");
        assert_eq!(found.hits[0].location(), format!("body-beyond-cap:br:{at}"));
        // Sent as `br, gzip` but only gzipped: the outer coding is the body's own, and
        // its output, plain text, is not br.
        let found = search(&gzip(&plain), "br, gzip", 3000, 4096, &limits());
        assert_eq!(found.decoded_from, Some(Codings::one(Coding::Gzip)));
        assert_eq!(found.hits.len(), 1, "{found:?}");
        // Neither: the raw search, as for one coding.
        let found = search(&plain, "gzip, br", 3000, 4096, &limits());
        assert_eq!((found.decoded_from, &found.undecoded), (None, &None));
        assert_eq!(found.hits.len(), 1, "{found:?}");
    }

    #[test]
    fn an_inner_coding_stops_on_its_own_limits_and_errors_and_says_which() {
        let lim = limits();
        // A gzip bomb inside br: br's output is small, gzip's grows past 100 times the
        // body's bytes.
        let mut bomb = filler(2000, 25);
        bomb.extend(std::iter::repeat_n(b'0', 30 << 20));
        bomb.extend_from_slice(AD_ID.as_bytes());
        let body = encode(&bomb, [Coding::Gzip, Coding::Brotli]);
        assert!(body.len() * 100 < 30 << 20, "{}", body.len());
        let found = search(&body, "gzip, br", 1024, 4096, &lim);
        assert!(found.hits.is_empty());
        assert_eq!(found.anomalies.len(), 1, "{:?}", found.anomalies);
        let a = &found.anomalies[0];
        assert_eq!(a.kind, "decompression-limit");
        assert!(
            a.detail.contains("gzip (of gzip+br) decoding stopped at"),
            "{}",
            a.detail
        );
        // The ratio is the body's: at most 100 times its encoded bytes (but 1 MiB).
        assert!(found.bytes <= (body.len() as u64 * 100).max(1 << 20));

        // The inner stream corrupt (a wrong CRC in gzip's trailer) inside a sound br
        // stream: everything before was searched, and the error names gzip.
        let mut plain = filler(200_000, 26);
        let at = plain.len() as u64;
        plain.extend_from_slice(AD_ID.as_bytes());
        plain.extend_from_slice(&filler(100_000, 27));
        let mut gzipped = gzip(&plain);
        let crc = gzipped.len() - 8;
        gzipped[crc] ^= 1;
        let found = search(&brotli(&gzipped), "gzip, br", 2000, 4096, &lim);
        assert_eq!(found.hits.len(), 1, "{found:?}");
        assert_eq!(found.hits[0].offset, at);
        assert_eq!(found.anomalies.len(), 1, "{:?}", found.anomalies);
        assert_eq!(found.anomalies[0].kind, "content-decoding-error");
        assert!(
            found.anomalies[0]
                .detail
                .contains("gzip (of gzip+br) stream corrupt or cut short"),
            "{}",
            found.anomalies[0].detail
        );

        // Bytes lost: both codings stop there.
        let body = encode(&plain, [Coding::Gzip, Coding::Brotli]);
        let found = search_across_a_gap(&body, "gzip, br", 2000, &lim);
        assert!(found.hits.is_empty());
        assert_eq!(found.anomalies.len(), 1, "{:?}", found.anomalies);
        assert!(found.anomalies[0]
            .detail
            .contains("500 bytes of its gzip+br stream"));
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
        // window over 4 MiB, more than two codings, an unknown coding, and no coding.
        let mut zstd = zstd_raw(&plain);
        zstd[5] = 0x70;
        // The result says which were sent encoded all the same (`undecoded`).
        for (body, encoding, undecoded) in [
            (&plain[..], "gzip", None),
            (&zstd[..], "zstd", Some("zstd")),
            (&plain[..], "gzip, br, zstd", Some("gzip, br, zstd")),
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
        let mut tail = DecodedTail::new(
            detector(),
            &lim,
            Codings::one(Coding::Gzip),
            &body[..1024],
            1 << 20,
        )
        .unwrap();
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
        assert_eq!(found.decoded_from, Some(Codings::one(Coding::Gzip)));
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
        let found = search_across_a_gap(&body, "gzip", 1024, &lim);
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
    fn codings_to_undo_reads_the_header_as_the_analysis_does() {
        let one = |c| Some(Codings::one(c));
        assert_eq!(codings_to_undo(b"gzip"), one(Coding::Gzip));
        assert_eq!(codings_to_undo(b" X-GZIP "), one(Coding::Gzip));
        assert_eq!(codings_to_undo(b"identity, br"), one(Coding::Brotli));
        assert_eq!(
            codings_to_undo(b"gzip, br"),
            Some(Codings::two(Coding::Gzip, Coding::Brotli))
        );
        assert_eq!(
            codings_to_undo(b"deflate,identity,zstd"),
            Some(Codings::two(Coding::Deflate, Coding::Zstd))
        );
        assert_eq!(codings_to_undo(b"gzip, br, gzip"), None);
        assert_eq!(codings_to_undo(b"gzip, lzma"), None);
        assert_eq!(codings_to_undo(b"identity"), None);
        assert_eq!(codings_to_undo(b"lzma"), None);
        assert_eq!(codings_to_undo(b"\xffgzip"), None);
    }
}
