//! Personal data detection (DESIGN.md §3).
//!
//! INTERFACE STUB — to be implemented (see the pii work item).

pub mod matcher;
pub mod patterns;
pub mod variants;

use std::ops::Range;

use serde::Serialize;

use crate::case::{Case, IdentifierKind};
use crate::decode::Part;

/// How sure a match is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    /// A known value of a case device, in one of its variants.
    Exact,
    /// A validated pattern (checksum etc.), not tied to a device.
    Pattern,
}

/// One piece of personal data found in a message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PiiMatch {
    pub kind: IdentifierKind,
    /// The case device whose value this is (known values only).
    pub device: Option<String>,
    /// `plain`, `url`, `base64`, `hex`, `md5`, `sha1`, `sha256`, `sha512`, or a chain
    /// such as `md5+base64` (applied first to last).
    pub encoding: String,
    /// `query:NAME`, `header:NAME`, `cookie:NAME`, `form:NAME`, `body:$.path`, `path`.
    pub location: String,
    /// Byte range within the part it was found in.
    pub range: Range<usize>,
    pub confidence: Confidence,
    pub sensitive: bool,
}

/// Everything needed to find personal data, built once per case and shared.
#[derive(Debug, Default)]
pub struct Detector {}

impl Detector {
    pub fn new(_case: &Case) -> Self {
        Detector {}
    }

    /// All personal data in the parts of one message.
    pub fn scan(&self, _parts: &[Part<'_>]) -> Vec<PiiMatch> {
        Vec::new()
    }
}
