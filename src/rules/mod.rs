//! Rules: turn what one exchange carries, who receives it and the consent state into
//! findings (DESIGN.md §6). [`Analyzer::observe`] is the whole analysis of one
//! exchange: decode → detect personal data → classify the receiver → judge. It does
//! no I/O and is deterministic.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::case::Case;
use crate::consent::cmp::CmpTable;
use crate::consent::signals::{self, WireSignal};
use crate::consent::{wire, ConsentEvent, EventSource, Purpose, State, Timeline};
use crate::decode::{self, Part};
use crate::exchange::{Anomaly, BeyondCapHit, Exchange, SourceKind};
use crate::net::tail_search::{self, TailSearch, TailStart};
use crate::net::tap::DataProbe;
use crate::parties::{Classifier, Destination, Party};
use crate::pii::stream::{self, CutHit, ACROSS_PARTS_LOCATION};
use crate::pii::{Confidence, Detector, PiiMatch};
use crate::timestamp::Timestamp;

mod catalogue;
mod finding;
pub mod finding_json;
mod frequency;
mod judge;
mod summary;
mod wire_rules;

use wire_rules::VendorConsents;
pub use wire_rules::MAX_WIRE_EVENTS_PER_DEVICE;

pub use catalogue::{Catalogue, Citation};
pub use finding::{ConsentInfo, DataItem, EventRef, Finding};
pub use frequency::{FrequencyTracker, MAX_FREQUENCY_KEYS};
pub use judge::{judge, Verdict};

/// The rules of DESIGN.md §6 (ids are a public interface).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleId {
    ShareBeforeConsent,
    CollectBeforeConsent,
    ShareAfterRefusal,
    CollectAfterRefusal,
    ShareAfterWithdrawal,
    /// Extension: the first-party counterpart of `share-after-withdrawal`.
    CollectAfterWithdrawal,
    BeyondScope,
    SensitiveWithoutConsent,
    SignalIgnored,
    TrackerContactBeforeConsent,
    ExcessiveFrequency,
    /// A consent signal claims consent the user never gave (issue 6).
    ConsentPredatesDecision,
    /// An ad request that should carry a consent signal carries none after refusal.
    ConsentSignalMissing,
}

impl RuleId {
    pub const ALL: [RuleId; 13] = [
        RuleId::ShareBeforeConsent,
        RuleId::CollectBeforeConsent,
        RuleId::ShareAfterRefusal,
        RuleId::CollectAfterRefusal,
        RuleId::ShareAfterWithdrawal,
        RuleId::CollectAfterWithdrawal,
        RuleId::BeyondScope,
        RuleId::SensitiveWithoutConsent,
        RuleId::SignalIgnored,
        RuleId::TrackerContactBeforeConsent,
        RuleId::ExcessiveFrequency,
        RuleId::ConsentPredatesDecision,
        RuleId::ConsentSignalMissing,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RuleId::ShareBeforeConsent => "share-before-consent",
            RuleId::CollectBeforeConsent => "collect-before-consent",
            RuleId::ShareAfterRefusal => "share-after-refusal",
            RuleId::CollectAfterRefusal => "collect-after-refusal",
            RuleId::ShareAfterWithdrawal => "share-after-withdrawal",
            RuleId::CollectAfterWithdrawal => "collect-after-withdrawal",
            RuleId::BeyondScope => "beyond-scope",
            RuleId::SensitiveWithoutConsent => "sensitive-without-consent",
            RuleId::SignalIgnored => "signal-ignored",
            RuleId::TrackerContactBeforeConsent => "tracker-contact-before-consent",
            RuleId::ExcessiveFrequency => "excessive-frequency",
            RuleId::ConsentPredatesDecision => "consent-predates-decision",
            RuleId::ConsentSignalMissing => "consent-signal-missing",
        }
    }

    pub fn parse(text: &str) -> Option<RuleId> {
        RuleId::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }

    /// One step less severe (a pattern-only match is weaker evidence).
    pub fn lowered(self) -> Severity {
        match self {
            Severity::High => Severity::Medium,
            _ => Severity::Low,
        }
    }
}

/// Options of an analysis run (how to run, not what to monitor).
#[derive(Debug, Clone)]
pub struct Options {
    /// Put the matched values into findings (`--reveal`).
    pub reveal: bool,
    pub limits: decode::Limits,
    /// Read consent signals in the traffic (on by default; off only to measure them).
    pub wire_signals: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            reveal: false,
            limits: decode::Limits::default(),
            wire_signals: true,
        }
    }
}

/// What observing one exchange produced.
#[derive(Debug, Default)]
pub struct Observation {
    pub findings: Vec<Finding>,
    /// Personal data found, whether or not a rule fired.
    pub matches: usize,
    /// Problems met while decoding the exchange.
    pub anomalies: Vec<Anomaly>,
    /// Consent decisions the exchange itself announced (wire signals).
    pub consent_events: Vec<ConsentEvent>,
    /// Signals that disagree with the user's own decision in force (the user's
    /// decision is the one the consent rules use), one line each.
    pub consent_conflicts: Vec<String>,
    /// The exchange went to the operating system's own services and was not judged
    /// (`rules.flag_platform` off): no findings, no consent signals read from it.
    pub platform: bool,
}

/// What the stateless half of the analysis found in one exchange: where it goes,
/// the consent signals it carries, the personal data in it.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Shared with the classifier's memo: cloned only into findings.
    dest: Arc<Destination>,
    signals: Vec<WireSignal>,
    /// An ad-tech request that by its protocol should carry a consent signal and
    /// carries none (judged against the consent state later).
    expects_signal: bool,
    matches: usize,
    items: Vec<DataItem>,
    anomalies: Vec<Anomaly>,
}

/// The stateless half of an [`Analyzer`]: decoding, signal extraction, matching and
/// classification. Cheap to clone (shared parts); any number may run in parallel.
#[derive(Clone)]
pub struct Preparer {
    case: Arc<Case>,
    detector: Arc<Detector>,
    classifier: Arc<Classifier>,
    options: Options,
}

impl Preparer {
    pub fn prepare(&self, x: &Exchange) -> Prepared {
        prepare(
            &self.case,
            &self.detector,
            &self.classifier,
            &self.options,
            x,
        )
    }
}

fn prepare(
    case: &Case,
    detector: &Arc<Detector>,
    classifier: &Classifier,
    options: &Options,
    x: &Exchange,
) -> Prepared {
    let mut dest = classifier.classify(&x.host);
    if (dest.infrastructure && case.rules.flag_infrastructure)
        || (dest.platform && case.rules.flag_platform && dest.party == Party::Third)
    {
        // Flagging infrastructure or the platform's services means judging them
        // like an unknown third party (the platform vendor's own app under test
        // keeps its services first party).
        Arc::make_mut(&mut dest).purposes = classifier.unknown_purposes().to_vec();
    }
    let mut prepared = Prepared {
        dest,
        signals: Vec::new(),
        expects_signal: false,
        matches: 0,
        items: Vec::new(),
        anomalies: Vec::new(),
    };
    // A metadata-only exchange is searched only for the client bytes of a protocol no
    // parser reads (`payload`) and a TLS or QUIC server name (`sni`); consent signals
    // are read from requests alone.
    if x.metadata_only && x.request_body.is_empty() && decode::searched_server_name(x).is_none() {
        return prepared;
    }
    let parts = decode::request_parts(x, &options.limits, &mut prepared.anomalies);
    let past_examined = search_past_examined(detector, &options.limits, x, &mut prepared.anomalies);
    if options.wire_signals && !x.metadata_only {
        prepared.signals = signals::extract(&parts);
        // A CMP call records a decision: first, so the request's own signals follow it.
        if let Some(call) =
            signals::extract_cmp(CmpTable::embedded(), &x.host, &x.method, &x.path, &parts)
        {
            prepared.signals.insert(0, call);
            prepared.signals.truncate(signals::MAX_SIGNALS_PER_REQUEST);
        }
        let dest = &prepared.dest;
        prepared.expects_signal = prepared.signals.is_empty()
            && dest.party == Party::Third
            && dest.categories.iter().any(|c| c == "advertising")
            && signals::expects_signal(&dest.host, &parts);
    }
    let matches = detector.scan(&parts);
    // A value cut between this part of a connection's payload and the one before.
    let across = if x.metadata_only && !x.payload_lead.is_empty() {
        stream::across_cut(
            detector,
            &x.payload_lead,
            &x.request_body,
            &mut prepared.anomalies,
        )
    } else {
        Vec::new()
    };
    prepared.matches = matches.len() + x.beyond_cap.len() + past_examined.len() + across.len();
    if prepared.matches > 0 {
        let reveal = options.reveal;
        let found_apart = x
            .beyond_cap
            .iter()
            .chain(&past_examined)
            .map(|h| beyond_cap_item(h, reveal))
            .chain(across.iter().map(|h| across_cut_item(h, reveal)))
            .collect();
        prepared.items = data_items(matches, &parts, found_apart, reveal);
    }
    prepared
}

/// Pieces the request body past what the analysis examines is searched in.
const PAST_EXAMINED_PIECE: usize = 1 << 20;

/// The request body's bytes past what the analysis examines, when the exchange holds
/// more (a HAR entry's body is held up to 64 MiB; the parsers and the proxy keep no
/// more than the analysis examines and search their own tails): searched for the
/// case's known values as a parser searches a tail, decoded first when the body is
/// content-encoded. Its hits, located `body-beyond-cap:…`; the `body-size-limit`
/// anomaly says what was searched.
fn search_past_examined(
    detector: &Arc<Detector>,
    limits: &decode::Limits,
    x: &Exchange,
    anomalies: &mut Vec<Anomaly>,
) -> Vec<BeyondCapHit> {
    let max = limits.max_body_bytes;
    if x.metadata_only || x.request_body.len() <= max {
        return Vec::new();
    }
    let (examined, rest) = x.request_body.split_at(max);
    let content_encoding = tail_search::content_encoding(&x.request_headers);
    let start = TailStart {
        before: examined,
        at: max as u64,
        content_encoding: content_encoding.as_deref(),
    };
    let mut tail = crate::pii::decoded_tail::body_tail(Arc::clone(detector), limits, start);
    for piece in rest.chunks(PAST_EXAMINED_PIECE) {
        tail.feed(piece);
    }
    tail_search::finish(tail, anomalies)
}

/// The analysis of one case: shared, immutable parts built once, plus the state that
/// spans exchanges (consent timeline, frequency counters).
pub struct Analyzer {
    case: Arc<Case>,
    detector: Arc<Detector>,
    classifier: Arc<Classifier>,
    catalogue: Arc<Catalogue>,
    timeline: Timeline,
    /// Decisions announced in the traffic itself, kept apart from the user's own
    /// (manual) ones: `signal-ignored` compares transmissions against these.
    wire: Timeline,
    /// Per device, the vendor consents of the latest TC string seen.
    tc_vendors: HashMap<String, VendorConsents>,
    /// Per device, the signals of its last signalling request and its wire-event
    /// count after them, to skip repeats.
    last_signals: HashMap<String, (Vec<WireSignal>, usize)>,
    frequency: FrequencyTracker,
    options: Options,
}

impl Analyzer {
    /// Builds detector, classifier and timeline for `case`.
    pub fn new(case: Arc<Case>, options: Options) -> Self {
        let detector = Arc::new(Detector::new(&case));
        let classifier = Arc::new(Classifier::new(&case.app));
        Self::with_parts(case, detector, classifier, options)
    }

    /// Builds an analyzer sharing already-built detector and classifier.
    pub fn with_parts(
        case: Arc<Case>,
        detector: Arc<Detector>,
        classifier: Arc<Classifier>,
        options: Options,
    ) -> Self {
        Analyzer {
            timeline: Timeline::from_case(&case),
            wire: Timeline::default(),
            tc_vendors: HashMap::new(),
            last_signals: HashMap::new(),
            frequency: FrequencyTracker::new(case.rules.frequency_per_minute),
            catalogue: Catalogue::embedded(),
            case,
            detector,
            classifier,
            options,
        }
    }

    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    /// Bytes of the part before that a part of a connection's payload must carry
    /// for a value cut between the two to be found (its `payload_lead`: the longest
    /// known-value variant and a byte of context; `FlowLimits::unparsed_overlap`).
    pub fn payload_overlap(&self) -> usize {
        self.detector.longest_pattern().saturating_add(1)
    }

    /// Whether bytes a client sent (a DNS name, an mDNS announcement) carry personal
    /// data, by the search a metadata-only exchange's payload gets: for the tap, which
    /// makes only such DNS messages exchanges
    /// ([`Tap::set_dns_probe`](crate::net::tap::Tap::set_dns_probe)).
    pub fn data_probe(&self) -> DataProbe {
        let detector = Arc::clone(&self.detector);
        let limits = self.options.limits.clone();
        DataProbe(Arc::new(move |bytes: &[u8]| {
            let mut x = Exchange::blank(String::new(), SourceKind::Pcap, Timestamp::from_micros(0));
            x.metadata_only = true;
            x.request_body = bytes.to_vec();
            let parts = decode::request_parts(&x, &limits, &mut Vec::new());
            !detector.scan(&parts).is_empty()
        }))
    }

    /// Searches a capture's request bodies past the parsers' cap for the case's known
    /// values, as the proxy searches past `--body-cap` (`FlowLimits::tail_search`).
    pub fn tail_search(&self) -> TailSearch {
        crate::pii::stream::tail_search(Arc::clone(&self.detector), self.options.limits.clone())
    }

    /// Adds a decision marked while the analysis runs (a live source's magic URL or
    /// control API): it applies to exchanges judged from now on.
    pub fn add_consent(&mut self, event: ConsentEvent) {
        self.timeline.add(event);
    }

    /// The decisions announced by wire signals so far.
    pub fn wire_timeline(&self) -> &Timeline {
        &self.wire
    }

    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// The stateless half of this analyzer, to prepare exchanges on other threads.
    pub fn preparer(&self) -> Preparer {
        Preparer {
            case: self.case.clone(),
            detector: self.detector.clone(),
            classifier: self.classifier.clone(),
            options: self.options.clone(),
        }
    }

    /// Analyses one exchange: [`Preparer::prepare`], then [`Analyzer::judge`].
    pub fn observe(&mut self, x: &Exchange) -> Observation {
        let prepared = prepare(
            &self.case,
            &self.detector,
            &self.classifier,
            &self.options,
            x,
        );
        self.judge(x, prepared)
    }

    /// The stateful half: consent timeline, wire signals and frequency, for an
    /// exchange prepared by this analyzer's [`Preparer`]. Exchanges must be judged in
    /// the order they happened on the wire (that is what makes results deterministic).
    pub fn judge(&mut self, x: &Exchange, prepared: Prepared) -> Observation {
        let Prepared {
            dest,
            signals: found_signals,
            expects_signal,
            matches,
            items,
            anomalies,
        } = prepared;
        let mut obs = Observation {
            anomalies,
            matches,
            ..Observation::default()
        };
        if dest.platform && !self.case.rules.flag_platform {
            // The operating system's own traffic: what it sends is the platform
            // vendor's collection, and the consent it signals is not the app's.
            obs.platform = true;
            return obs;
        }
        // Borrowed: only a finding keeps a copy.
        let device = x.device.as_deref().unwrap_or("unknown");
        // Contact alone is judged where nothing was found in what could be read; a
        // payload with personal data is judged as a request's data would be.
        if x.metadata_only && items.is_empty() {
            self.judge_metadata_only(x, device, &dest, &mut obs);
            return obs;
        }
        // A signal carried by this very request is in force for it: record it first.
        if !found_signals.is_empty() {
            self.record_signals(x, device, &dest, &found_signals, &mut obs);
        } else if expects_signal {
            self.check_signal_missing(x, device, &dest, &mut obs);
        }
        if items.is_empty() || (dest.infrastructure && !self.case.rules.flag_infrastructure) {
            return obs;
        }
        let grace = self.case.rules.grace_ms;
        let verdict = judge(&self.timeline, device, &dest, x.at, grace);

        // The verdict's finding gets `items` itself once nothing below reads them
        // (a copy of every item, strings and all, was the thread's largest clone).
        let takes_items = verdict.rule.map(|rule| {
            let f = self.finding_without_data(rule, x, device, &dest, &items, &verdict);
            obs.findings.push(f);
            obs.findings.len() - 1
        });
        if dest.party == Party::Third {
            let by_signal = judge(&self.wire, device, &dest, x.at, grace);
            if matches!(by_signal.state, State::Refused | State::Withdrawn) {
                let mut f = self.finding(
                    RuleId::SignalIgnored,
                    x,
                    device,
                    &dest,
                    items.clone(),
                    &by_signal,
                );
                f.summary = summary::signal_ignored(&dest, &items, &by_signal);
                obs.findings.push(f);
            } else if let Some(f) = self.vendor_not_consented(x, device, &dest, &items) {
                obs.findings.push(f);
            }
        }
        if !verdict.granted() {
            let sensitive: Vec<DataItem> = items.iter().filter(|d| d.sensitive).cloned().collect();
            if !sensitive.is_empty() {
                let f = self.finding(
                    RuleId::SensitiveWithoutConsent,
                    x,
                    device,
                    &dest,
                    sensitive,
                    &verdict,
                );
                obs.findings.push(f);
            }
        }
        // Frequency counts each identifier type once per exchange, known values only.
        let kinds: BTreeSet<&str> = items
            .iter()
            .filter(|d| d.confidence == Confidence::Exact)
            .map(|d| d.kind.as_str())
            .collect();
        for kind in kinds {
            if let Some(count) = self.frequency.record(device, kind, &dest.site, x.at) {
                let of_kind: Vec<DataItem> =
                    items.iter().filter(|d| d.kind == kind).cloned().collect();
                let mut f = self.finding(
                    RuleId::ExcessiveFrequency,
                    x,
                    device,
                    &dest,
                    of_kind,
                    &verdict,
                );
                f.summary =
                    summary::frequency(kind, &dest, count, self.case.rules.frequency_per_minute);
                obs.findings.push(f);
            }
        }
        if let Some(f) = takes_items.and_then(|i| obs.findings.get_mut(i)) {
            f.data = items;
        }
        obs
    }

    fn judge_metadata_only(
        &self,
        x: &Exchange,
        device: &str,
        dest: &Arc<Destination>,
        obs: &mut Observation,
    ) {
        if dest.party != Party::Third || !dest.known || dest.infrastructure {
            return;
        }
        let verdict = judge(&self.timeline, device, dest, x.at, self.case.rules.grace_ms);
        // Contact alone is reported only before any decision or against a refusal;
        // a purpose never asked while others were granted is not proof of anything.
        let denied = matches!(
            verdict.state,
            State::NotAsked | State::Refused | State::Withdrawn
        ) && verdict.rule != Some(RuleId::BeyondScope);
        if !verdict.granted() && denied {
            let f = self.finding(
                RuleId::TrackerContactBeforeConsent,
                x,
                device,
                dest,
                Vec::new(),
                &verdict,
            );
            obs.findings.push(f);
        }
    }

    fn finding(
        &self,
        rule: RuleId,
        x: &Exchange,
        device: &str,
        dest: &Arc<Destination>,
        data: Vec<DataItem>,
        verdict: &Verdict<'_>,
    ) -> Finding {
        let mut f = self.finding_without_data(rule, x, device, dest, &data, verdict);
        f.data = data;
        f
    }

    /// The finding about `data`, complete but for its `data` field (left empty):
    /// its id, severity and summary are `data`'s.
    fn finding_without_data(
        &self,
        rule: RuleId,
        x: &Exchange,
        device: &str,
        dest: &Arc<Destination>,
        data: &[DataItem],
        verdict: &Verdict<'_>,
    ) -> Finding {
        let mut severity = self.catalogue.severity(rule);
        if !data.is_empty() && data.iter().all(|d| d.confidence == Confidence::Pattern) {
            severity = severity.lowered();
        }
        let consent = ConsentInfo {
            purpose: Cow::Borrowed(verdict.purpose.map_or("any", Purpose::as_str)),
            state: Cow::Borrowed(verdict.state.as_str()),
            event: verdict.event.map(EventRef::from),
        };
        let summary = summary::sentence(rule, dest, data, verdict);
        Finding {
            id: finding_id(rule, &x.id, data),
            rule,
            severity,
            borderline: verdict.borderline,
            at: x.at,
            device: device.to_string(),
            app: x.app.clone(),
            exchange: x.id.clone(),
            destination: Arc::clone(dest),
            data: Vec::new(),
            consent,
            citations: self.catalogue.citations(rule),
            summary,
        }
    }
}

/// The data items of a finding: one per distinct (type, encoding, where, confidence).
/// `found_apart`: items of hits found outside the parts (past the analysed part of
/// the body, `body-beyond-cap:OFFSET`; across a cut, `payload-across-parts`).
fn data_items(
    matches: Vec<PiiMatch>,
    parts: &[Part<'_>],
    found_apart: Vec<DataItem>,
    reveal: bool,
) -> Vec<DataItem> {
    // Sorted and deduplicated as a set would be (equal items are identical, so the
    // unstable sort loses nothing), without a tree node per item; the matches are
    // owned, so their encoding and place move instead of being copied.
    let mut items = found_apart;
    items.reserve(matches.len());
    for m in matches {
        let value = revealed_value(&m, parts, reveal);
        items.push(DataItem {
            kind: m.kind.key(),
            encoding: m.encoding,
            location: m.location,
            confidence: m.confidence,
            sensitive: m.sensitive,
            value,
        });
    }
    items.sort_unstable();
    items.dedup();
    most_precise(items)
}

/// The data item of a hit past the analysed part of a body.
fn beyond_cap_item(h: &BeyondCapHit, reveal: bool) -> DataItem {
    DataItem {
        kind: h.kind.clone(),
        encoding: h.encoding.clone(),
        location: h.location(),
        confidence: Confidence::Exact,
        sensitive: h.sensitive,
        value: reveal.then(|| String::from_utf8_lossy(&h.value).into_owned()),
    }
}

/// The data item of a value found across the cut before a part of a payload.
fn across_cut_item(h: &CutHit, reveal: bool) -> DataItem {
    DataItem {
        kind: h.kind.key(),
        encoding: h.encoding.clone(),
        location: ACROSS_PARTS_LOCATION.to_string(),
        confidence: Confidence::Exact,
        sensitive: h.sensitive,
        value: reveal.then(|| String::from_utf8_lossy(&h.value).into_owned()),
    }
}

/// The matched text of `m` when values are revealed (empty when its range is not in
/// its part).
fn revealed_value(m: &PiiMatch, parts: &[Part<'_>], reveal: bool) -> Option<String> {
    reveal.then(|| {
        parts
            .get(m.part)
            .and_then(|p| p.data.get(m.range.clone()))
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    })
}

/// The decoder offers some data twice: as raw JSON text at `body:$.payload` and
/// decoded at `body:$.payload$.imei`. Keep the most precise place only. `all` is
/// sorted by (type, encoding, place), so the places extending a place follow it
/// directly: comparing with the next different place is enough (linear, as a
/// request may carry thousands of matches). The items kept are moved, not copied:
/// which to drop is decided first.
fn most_precise(mut all: Vec<DataItem>) -> Vec<DataItem> {
    // One item (the usual request) has no other place to be refined by.
    if all.len() < 2 {
        return all;
    }
    let refined: Vec<bool> = all
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let next_place = all[i + 1..]
                .iter()
                .take_while(|o| o.kind == d.kind && o.encoding == d.encoding)
                .find(|o| o.location != d.location);
            // Inner places continue with `$` (JSON inside) or `&` (a form inside); `$`
            // sorts before any key character, so an inner place would come first.
            next_place.is_some_and(|o| {
                o.location
                    .strip_prefix(d.location.as_str())
                    .is_some_and(|rest| rest.starts_with(['$', '&']))
            })
        })
        .collect();
    // `retain` visits the items once each, in order.
    let mut drop = refined.into_iter();
    all.retain(|_| !drop.next().unwrap_or(false));
    all
}

/// `f-` and 16 hex digits of [`finding_digest`]: stable across runs.
impl Finding {
    /// Computes `id` again from rule, exchange and data: for a finding whose exchange
    /// id was provisional when it was made (see `cli::final_ids`).
    pub fn refresh_id(&mut self) {
        self.id = finding_id(self.rule, &self.exchange, &self.data);
    }
}

fn finding_id(rule: RuleId, exchange: &str, data: &[DataItem]) -> String {
    let digest = finding_digest(rule, exchange, data);
    // One allocation: the prefix and the first 8 bytes' hex go into the same string
    // (a `format!` per byte cost ten allocations per finding).
    let mut id = String::with_capacity(18);
    id.push_str("f-");
    crate::source::push_hex(&mut id, digest.get(..8).unwrap_or(&digest));
    id
}

/// SHA-256 over rule, exchange and data items, each field separated.
fn finding_digest(rule: RuleId, exchange: &str, data: &[DataItem]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(rule.as_str());
    h.update([0]);
    h.update(exchange);
    for d in data {
        h.update([0]);
        h.update(&d.kind);
        h.update([1]);
        h.update(&d.encoding);
        h.update([1]);
        h.update(&d.location);
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod data_item_tests {
    use super::*;
    use crate::case::IdentifierKind;

    fn m(kind: IdentifierKind, encoding: &str, location: &str) -> PiiMatch {
        PiiMatch {
            kind,
            device: None,
            encoding: encoding.into(),
            location: location.into(),
            part: 0,
            range: 0..1,
            confidence: Confidence::Exact,
            sensitive: false,
        }
    }

    #[test]
    fn the_most_precise_place_wins_per_type_and_encoding() {
        use IdentifierKind::{Imei, Oaid};
        let items = data_items(
            vec![
                m(Imei, "plain", "body:$.payload"),
                m(Imei, "plain", "body:$.payload$.imei"),
                m(Imei, "plain", "body:$.payload$.imei"),
                m(Imei, "md5", "body:$.payload"),
                m(Oaid, "plain", "body:$.p"),
                m(Oaid, "plain", "body:$.pq"),
            ],
            &[],
            Vec::new(),
            false,
        );
        let got: Vec<(String, String, String)> = items
            .into_iter()
            .map(|d| (d.kind, d.encoding, d.location))
            .collect();
        let s = |k: &str, e: &str, l: &str| (k.to_string(), e.to_string(), l.to_string());
        assert_eq!(
            got,
            [
                s("imei", "md5", "body:$.payload"),
                s("imei", "plain", "body:$.payload$.imei"),
                s("oaid", "plain", "body:$.p"),
                s("oaid", "plain", "body:$.pq"),
            ]
        );
    }

    /// [`data_items`] as it was: a tree set of copies, then [`most_precise`]. The
    /// model the sorting, moving version must agree with.
    fn data_items_model(
        matches: &[PiiMatch],
        parts: &[Part<'_>],
        beyond_cap: &[BeyondCapHit],
        reveal: bool,
    ) -> Vec<DataItem> {
        let mut items: BTreeSet<DataItem> = beyond_cap
            .iter()
            .map(|h| beyond_cap_item(h, reveal))
            .collect();
        for m in matches {
            let value = revealed_value(m, parts, reveal);
            items.insert(DataItem {
                kind: m.kind.key(),
                encoding: m.encoding.clone(),
                location: m.location.clone(),
                confidence: m.confidence,
                sensitive: m.sensitive,
                value,
            });
        }
        most_precise(items.into_iter().collect())
    }

    proptest::proptest! {
        /// Same items, same order, as the set-of-copies model: over repeated and
        /// nested places, both confidences, values revealed or not, ranges in and
        /// out of their part, and hits beyond the cap.
        #[test]
        fn data_items_agree_with_the_set_model(
            raw in proptest::collection::vec(
                (0u8..3, 0u8..2, proptest::collection::vec(0u8..4, 0..3),
                 proptest::bool::ANY, proptest::bool::ANY, 0usize..3, 0usize..6, 0usize..6),
                0..12,
            ),
            beyond in proptest::collection::vec((0u8..2, 0u64..3, proptest::bool::ANY), 0..3),
            reveal in proptest::bool::ANY,
        ) {
            use crate::case::IdentifierKind::{Email, Imei, Oaid};
            let kinds = [Imei, Email, Oaid];
            let pieces = ["body", "$.a", "&b", "x"];
            let parts = vec![Part::new("body".to_string(), &b"a1b2c3"[..]), Part::new("x".to_string(), &b"\xff\xfeab"[..])];
            let matches: Vec<PiiMatch> = raw
                .into_iter()
                .map(|(kind, enc, place, exact, sensitive, part, from, len)| PiiMatch {
                    kind: kinds[kind as usize].clone(),
                    device: None,
                    encoding: ["plain", "md5"][enc as usize].to_string(),
                    location: place.iter().map(|&p| pieces[p as usize]).collect(),
                    part,
                    range: from..from + len,
                    confidence: if exact { Confidence::Exact } else { Confidence::Pattern },
                    sensitive,
                })
                .collect();
            let beyond_cap: Vec<BeyondCapHit> = beyond
                .into_iter()
                .map(|(kind, offset, sensitive)| BeyondCapHit {
                    kind: ["imei", "email"][kind as usize].to_string(),
                    device: None,
                    encoding: "plain".to_string(),
                    offset,
                    decoded_from: None,
                    sensitive,
                    value: b"v".to_vec(),
                })
                .collect();
            let want = data_items_model(&matches, &parts, &beyond_cap, reveal);
            let apart = beyond_cap.iter().map(|h| beyond_cap_item(h, reveal)).collect();
            proptest::prop_assert_eq!(data_items(matches, &parts, apart, reveal), want);
        }
    }
}
