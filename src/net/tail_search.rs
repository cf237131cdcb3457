//! The search of a request body's bytes past the analysis cap, as a parser meets them.
//!
//! A parser keeps the first `max_body_bytes` of a request body for the full analysis
//! and only frames the rest. With a [`TailSearch`] (the analysis's matcher of the
//! case's known values, [`Analyzer::tail_search`](crate::rules::Analyzer::tail_search))
//! it hands that rest, piece by piece, to a [`TailScan`] instead of dropping it, so a
//! capture finds an identifier deep in a large upload as the proxy does past
//! `--body-cap`. The search lives in `pii::stream`; this module is only the interface,
//! so that the sans-I/O parsers stay free of the analysis.
//!
//! Memory: one scan per request body past the cap, holding one window (at most
//! `pii::stream::STEP` bytes and the overlap) and at most `pii::stream::MAX_KEPT_HITS`
//! hits. Such a body has its first `max_body_bytes` kept in the flow table's message
//! budget, so the budget bounds how many scans run at once.

use std::borrow::Cow;
use std::sync::Arc;

use crate::decode::content::Codings;
use crate::exchange::{Anomaly, BeyondCapHit, Header};

/// What a [`TailScan`] found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TailFound {
    /// The hits kept, in body order (offsets into the body on the wire).
    pub hits: Vec<BeyondCapHit>,
    /// Every hit found, kept or not.
    pub total_hits: u64,
    /// Bytes searched (lost bytes not counted).
    pub bytes: u64,
    /// Limits the search hit (`pii-hit-limit`, …).
    pub anomalies: Vec<Anomaly>,
    /// The content codings the bytes were decoded from before the search (`bytes`
    /// then counts decoded bytes, and the hits' offsets are into the decoded body).
    pub decoded_from: Option<Codings>,
    /// The body's `Content-Encoding` (cut to [`MAX_UNDECODED_CHARS`]) when its bytes
    /// were searched as sent all the same: more than two codings, a coding or window
    /// not decoded past the cap, bytes lost before the cap. Compressed bytes hold no
    /// value to find, and the anomaly says so.
    pub undecoded: Option<String>,
}

/// Characters of a `Content-Encoding` value an anomaly quotes.
pub const MAX_UNDECODED_CHARS: usize = 64;

impl TailFound {
    /// What was searched, for the anomaly that says the body was not all kept: "its
    /// N bytes were searched … as they passed: H hit(s)".
    pub fn searched(&self) -> String {
        match (self.decoded_from, &self.undecoded) {
            (None, None) => format!(
                "its {} bytes were searched for the case's known values as they passed: {} hit(s)",
                self.bytes, self.total_hits
            ),
            (None, Some(coding)) => format!(
                "its {} bytes, sent with Content-Encoding {coding:?} and not decoded past \
                 the cap, were searched as sent for the case's known values as they \
                 passed: {} hit(s)",
                self.bytes, self.total_hits
            ),
            (Some(coding), _) => format!(
                "it was {coding}-decoded as it passed and {} decoded bytes were searched for \
                 the case's known values: {} hit(s)",
                self.bytes, self.total_hits
            ),
        }
    }
}

/// One body's search under way.
pub trait TailScan: Send {
    /// The next bytes of the body.
    fn feed(&mut self, chunk: &[u8]);
    /// `len` bytes of the body were lost: no value is found across them, and the
    /// offsets after them stay true.
    fn gap(&mut self, len: u64);
    /// The body ended.
    fn finish(self: Box<Self>) -> TailFound;
}

impl std::fmt::Debug for dyn TailScan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TailScan")
    }
}

/// Starts a body's [`TailScan`] ([`TailStart`] says where).
#[derive(Clone)]
pub struct TailSearch(pub Arc<StartFn>);

/// What a [`TailSearch`] runs.
pub type StartFn = dyn Fn(TailStart<'_>) -> Box<dyn TailScan> + Send + Sync;

/// Where a body's search past the cap starts.
#[derive(Debug, Clone, Copy)]
pub struct TailStart<'a> {
    /// The kept bytes just before the first byte the scan will be fed (empty when
    /// bytes were lost there); all of them from the body's first byte when
    /// `before.len() == at`.
    pub before: &'a [u8],
    /// The body offset of the first byte the scan will be fed.
    pub at: u64,
    /// The request's `Content-Encoding` value, if it has one: a body kept whole from
    /// its first byte can have its tail decoded as it passes (`pii::decoded_tail`).
    pub content_encoding: Option<&'a [u8]>,
}

/// The request's `Content-Encoding` among `headers`, its lines joined as the analysis
/// joins them (the head's, never a trailer field), for [`TailStart::content_encoding`].
pub fn content_encoding(headers: &[Header]) -> Option<Cow<'_, [u8]>> {
    crate::exchange::header_list(headers, "content-encoding")
}

impl TailSearch {
    /// A search of one body, from its byte at offset `at`, `before` the kept bytes
    /// just before it, the body not content-encoded.
    pub fn start(&self, before: &[u8], at: u64) -> Box<dyn TailScan> {
        self.start_at(TailStart {
            before,
            at,
            content_encoding: None,
        })
    }

    /// A search of one body, started as `start` says.
    pub fn start_at(&self, start: TailStart<'_>) -> Box<dyn TailScan> {
        (self.0)(start)
    }
}

impl std::fmt::Debug for TailSearch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TailSearch")
    }
}

/// Ends a request body's search: its hits, for the request's `beyond_cap`; its
/// anomalies added to the request's, whose `body-size-limit` says what was searched.
pub fn finish(tail: Box<dyn TailScan>, anomalies: &mut Vec<Anomaly>) -> Vec<BeyondCapHit> {
    finish_noting(tail, anomalies, "body-size-limit")
}

/// [`finish`], what was searched said by the anomaly of kind `limit`.
pub fn finish_noting(
    tail: Box<dyn TailScan>,
    anomalies: &mut Vec<Anomaly>,
    limit: &str,
) -> Vec<BeyondCapHit> {
    let found = tail.finish();
    if let Some(limit) = anomalies.iter_mut().find(|a| a.kind == limit) {
        limit
            .detail
            .push_str(&format!(", but {}", found.searched()));
    }
    anomalies.extend(found.anomalies);
    found.hits
}

/// A [`TailSearch`] for the parsers' tests that records what it is given.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::net::http1::HttpRequest;

    /// Its one hit's `kind` is the lead-in it started with, its `offset` the body
    /// offset it started at, its `value` the bytes fed, each gap written `<gap N>`,
    /// its `encoding` the request's `Content-Encoding` (`-` for none); it notes a
    /// `pii-hit-limit` anomaly.
    struct Recorder {
        lead: Vec<u8>,
        at: u64,
        content_encoding: String,
        seen: Vec<u8>,
    }

    impl TailScan for Recorder {
        fn feed(&mut self, chunk: &[u8]) {
            self.seen.extend_from_slice(chunk);
        }

        fn gap(&mut self, len: u64) {
            self.seen
                .extend_from_slice(format!("<gap {len}>").as_bytes());
        }

        fn finish(self: Box<Self>) -> TailFound {
            TailFound {
                bytes: self.seen.len() as u64,
                hits: vec![BeyondCapHit {
                    kind: String::from_utf8_lossy(&self.lead).into_owned(),
                    device: None,
                    encoding: self.content_encoding,
                    offset: self.at,
                    decoded_from: None,
                    sensitive: false,
                    value: self.seen,
                }],
                total_hits: 1,
                anomalies: vec![Anomaly::new("pii-hit-limit", "recorded")],
                decoded_from: None,
                undecoded: None,
            }
        }
    }

    /// A recording search; `starts` counts the bodies it was started for.
    pub(crate) fn recording(starts: &Arc<AtomicUsize>) -> TailSearch {
        let starts = starts.clone();
        TailSearch(Arc::new(move |start: TailStart<'_>| {
            starts.fetch_add(1, Ordering::Relaxed);
            Box::new(Recorder {
                lead: start.before.to_vec(),
                at: start.at,
                content_encoding: start
                    .content_encoding
                    .map_or("-".into(), |v| String::from_utf8_lossy(v).into_owned()),
                seen: Vec::new(),
            }) as Box<dyn TailScan>
        }))
    }

    /// The request's one recorded hit: (lead-in, start offset, bytes fed).
    pub(crate) fn recorded(r: &HttpRequest) -> (String, u64, String) {
        assert_eq!(r.beyond_cap.len(), 1, "{:?}", r.beyond_cap);
        let h = &r.beyond_cap[0];
        (
            h.kind.clone(),
            h.offset,
            String::from_utf8_lossy(&h.value).into_owned(),
        )
    }
}
