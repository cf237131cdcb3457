//! Decoding of message bodies and fields before matching (DESIGN.md §2).
//!
//! INTERFACE STUB — to be implemented (see the decode work item). The public API below
//! is what `pii` and `rules` build against; keep it.

use std::borrow::Cow;
use std::ops::Range;

use crate::exchange::{Anomaly, Exchange};

/// Limits on work an attacker controls. Each, when hit, becomes an anomaly.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// Largest body (after transfer decoding, before content decoding) examined.
    pub max_body_bytes: usize,
    /// Largest result of decompressing one body.
    pub max_decoded_bytes: usize,
    /// Largest decompression ratio accepted (decoded / encoded).
    pub max_ratio: usize,
    /// Deepest nesting of encodings (base64 in JSON in base64 …) followed.
    pub max_depth: usize,
    /// Most parts produced for one message.
    pub max_parts: usize,
}

/// One piece of a request to search: a header, a cookie, a query or form value, a
/// body, or something decoded out of one of them.
#[derive(Debug, Clone)]
pub struct Part<'a> {
    /// Where the data sits in the message (`query:aaid`, `header:User-Agent`, `body`).
    pub location: String,
    /// Encodings wrapped around this data on the wire, innermost first, that the
    /// decoder undid (e.g. `["base64"]`). Transport encodings (gzip, chunked) and the
    /// container's own syntax (percent-encoding of query values) are not listed.
    pub layers: Vec<&'static str>,
    pub data: Cow<'a, [u8]>,
}

impl Part<'_> {
    /// The location of a hit at `range` of `data`, refined where the part knows more
    /// (the JSON path of a value: `body:$.device.adid`).
    pub fn location_at(&self, _range: Range<usize>) -> String {
        self.location.clone()
    }
}

/// Splits and decodes a request into parts, recording limit hits and decode failures.
pub fn request_parts<'a>(
    _exchange: &'a Exchange,
    _limits: &Limits,
    _anomalies: &mut Vec<Anomaly>,
) -> Vec<Part<'a>> {
    Vec::new()
}
