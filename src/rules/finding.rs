//! The `Finding`: one rule broken by one exchange, in the public JSON shape of
//! DESIGN.md §6. Field names here are a public interface.

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::consent::{ConsentEvent, Decision, Purpose};
use crate::exchange::AppRef;
use crate::parties::Destination;
use crate::pii::Confidence;
use crate::timestamp::Timestamp;

use super::{RuleId, Severity};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable: a hash of rule, exchange id and data.
    pub id: String,
    pub rule: RuleId,
    pub severity: Severity,
    pub borderline: bool,
    pub at: Timestamp,
    pub device: String,
    /// The Android app of the exchange, where the capture names it (PCAPdroid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<AppRef>,
    pub exchange: String,
    /// Shared with the classifier's memo and the exchange's other findings.
    pub destination: Arc<Destination>,
    pub data: Vec<DataItem>,
    pub consent: ConsentInfo,
    /// Shared with the catalogue's entry for the rule.
    pub citations: Arc<[String]>,
    pub summary: String,
}

/// One piece of personal data a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DataItem {
    #[serde(rename = "type")]
    pub kind: String,
    pub encoding: String,
    #[serde(rename = "where")]
    pub location: String,
    pub confidence: Confidence,
    pub sensitive: bool,
    /// The matched bytes, only with `--reveal`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub value: Option<String>,
}

/// The consent state the finding was judged against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsentInfo {
    /// The purpose the receiver needs, or `any` for the first party. Borrowed when
    /// the analysis writes it (a name from a fixed set: no allocation per finding).
    pub purpose: Cow<'static, str>,
    /// Borrowed like `purpose`.
    pub state: Cow<'static, str>,
    pub event: Option<EventRef>,
}

/// The consent decision that set the state, as cited by a finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRef {
    pub at: Timestamp,
    pub decision: Decision,
    pub purposes: Vec<Purpose>,
    pub source: crate::consent::EventSource,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub note: Option<String>,
}

impl From<&ConsentEvent> for EventRef {
    fn from(e: &ConsentEvent) -> Self {
        EventRef {
            at: e.at,
            decision: e.decision,
            purposes: e.purposes.clone(),
            source: e.source,
            note: e.evidence.clone(),
        }
    }
}
