//! What a case report is made from: plain data, so that a one-shot analysis
//! (`consentry analyze --report`) and the case store can both feed the renderers.
//!
//! Everything in here may come from traffic (hosts, paths, notes) and is treated as
//! hostile text by the renderers: they escape it, never interpret it.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{InputInfo, TrafficSummary};
use crate::case::Case;
use crate::consent::ConsentEvent;
use crate::rules::Finding;
use crate::timestamp::Timestamp;

/// Who and what the case is about.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CaseInfo {
    pub id: String,
    pub title: String,
    /// The app's display name.
    pub app: String,
    /// The app's package or bundle id.
    pub package: String,
    /// Device ids of the case, in case-file order.
    pub devices: Vec<String>,
    /// Which case file these came from (`None` where the caller does not say).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<CaseFileInfo>,
}

/// The case file a report is framed by (title, app, devices, the operating systems'
/// hosts). From a case store: the case directory's own when a run read it, else the
/// evidence copy of the one the runs stored last; for `analyze --report`, the file
/// as given.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CaseFileInfo {
    /// SHA-256 of its bytes (hex).
    pub sha256: String,
    /// Where it was read: in a case store, relative to the case directory
    /// (`consentry.toml` or an evidence copy); else the path as given.
    pub path: String,
    /// Why it is not the case directory's own case file, or that the runs read other
    /// versions too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl CaseInfo {
    /// The report's view of a case file.
    pub fn from_case(case: &Case) -> Self {
        CaseInfo {
            id: case.meta.id.clone(),
            title: case.meta.title.clone(),
            app: case.app.name.clone(),
            package: case.app.package.clone(),
            devices: case.devices.iter().map(|d| d.id.clone()).collect(),
            file: None,
        }
    }
}

/// Everything a report shows, as plain data.
#[derive(Debug, Clone, Default)]
pub struct ReportInput {
    pub case: CaseInfo,
    /// Consent events of every device, manual and wire (any order: the report sorts).
    pub consent: Vec<ConsentEvent>,
    pub findings: Vec<Finding>,
    /// Request line (`METHOD scheme://host/path?query`) of the exchanges that have
    /// findings, by exchange id, as captured. The renderers mask query values and
    /// identifier-like path segments unless the exchange's findings carry revealed
    /// values.
    pub request_lines: BTreeMap<String, String>,
    /// The servers that answered for each destination host of the findings: their
    /// addresses and certificates (see [`super::servers`]).
    pub servers: super::servers::ServersByHost,
    /// The evidence files: path, kind, SHA-256, exchange count.
    pub evidence: Vec<InputInfo>,
    /// Exchanges analysed in all.
    pub exchanges: u64,
    /// Those of a case device that went to the operating systems' own services and
    /// were not judged as the app's (`rules.flag_platform` off) …
    pub platform_exchanges: u64,
    /// … and their hosts, the busiest first (see [`super::RunSummary`]).
    pub platform_hosts: Vec<(String, u64)>,
    /// What the packet captures held, all inputs together (`None` without captures,
    /// or from a store whose ingests predate this record).
    pub traffic: Option<TrafficSummary>,
    /// Head of the case store's hash chain (hex); `None` for a one-shot analysis.
    pub chain_head: Option<String>,
    /// When the report was made; `None` leaves it out, keeping output reproducible.
    pub generated_at: Option<Timestamp>,
}
