//! Who receives the data: first or third party, which company, which purposes
//! (DESIGN.md §4).
//!
//! INTERFACE STUB — to be implemented (see the parties work item).

use serde::Serialize;

use crate::case::App;
use crate::consent::Purpose;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Party {
    First,
    Third,
}

/// The receiver of an exchange, as a finding reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Destination {
    pub host: String,
    /// Registrable domain (eTLD+1) of `host`, or the host itself for an address.
    pub site: String,
    pub party: Party,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    pub categories: Vec<String>,
    /// Purposes this receiver needs consent for; empty for the first party.
    #[serde(skip)]
    pub purposes: Vec<Purpose>,
    /// Whether the tracker database knows this receiver.
    #[serde(skip)]
    pub known: bool,
    /// Infrastructure (CDN, hosting): not flagged unless the case says so.
    #[serde(skip)]
    pub infrastructure: bool,
}

/// Classifies hosts for one case.
#[derive(Debug, Default)]
pub struct Classifier {}

impl Classifier {
    pub fn new(_app: &App) -> Self {
        Classifier {}
    }

    pub fn classify(&self, host: &str) -> Destination {
        Destination {
            host: host.to_string(),
            site: host.to_string(),
            party: Party::Third,
            entity: None,
            categories: Vec::new(),
            purposes: Vec::new(),
            known: false,
            infrastructure: false,
        }
    }
}
