//! The case file (`consentry.toml`): what to monitor. Parsed and validated before
//! anything runs; every error names the file, the line and the key.

use std::fmt;

use serde::Serialize;

mod addresses;
mod identifiers;
mod parse;

pub use addresses::DeviceResolver;
pub use identifiers::parse_mac;
pub use parse::{load, load_hashed, load_text, parse, CaseError, MAX_CASE_FILE_BYTES};

use crate::consent::{Decision, Purpose};
use crate::timestamp::Timestamp;

/// A parsed, validated case file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Case {
    pub meta: CaseMeta,
    pub app: App,
    pub devices: Vec<Device>,
    pub consent: Vec<ManualConsent>,
    pub rules: RuleSettings,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CaseMeta {
    pub id: String,
    pub title: String,
    pub timezone: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct App {
    pub name: String,
    pub package: String,
    /// Registrable domains (eTLD+1) of the app's operator, lower case.
    pub first_party: Vec<String>,
    /// Purposes assumed for third parties the tracker database does not know.
    pub unknown_third_party_purposes: Vec<Purpose>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Device {
    pub id: String,
    /// Client addresses that identify this device: IP addresses, CIDR ranges, MACs.
    pub addresses: Vec<String>,
    pub proxy_user: Option<String>,
    pub identifiers: Vec<Identifier>,
}

/// One real value of a test device.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Identifier {
    pub kind: IdentifierKind,
    pub value: IdentifierValue,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum IdentifierValue {
    Text(String),
    Location { lat: f64, lon: f64 },
}

/// The identifier types of DESIGN.md §10. `key()` is the public name used in case
/// files and in findings (`data[].type`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdentifierKind {
    AdvertisingId,
    Idfa,
    Idfv,
    AndroidId,
    Oaid,
    Imei,
    Meid,
    Imsi,
    Iccid,
    Serial,
    Mac,
    Bssid,
    Ssid,
    Phone,
    Email,
    Name,
    ResidentId,
    BankCard,
    Location,
    Custom(String),
}

impl IdentifierKind {
    /// Every built-in kind (not `Custom`), in declaration order.
    pub const BUILTIN: [IdentifierKind; 19] = [
        IdentifierKind::AdvertisingId,
        IdentifierKind::Idfa,
        IdentifierKind::Idfv,
        IdentifierKind::AndroidId,
        IdentifierKind::Oaid,
        IdentifierKind::Imei,
        IdentifierKind::Meid,
        IdentifierKind::Imsi,
        IdentifierKind::Iccid,
        IdentifierKind::Serial,
        IdentifierKind::Mac,
        IdentifierKind::Bssid,
        IdentifierKind::Ssid,
        IdentifierKind::Phone,
        IdentifierKind::Email,
        IdentifierKind::Name,
        IdentifierKind::ResidentId,
        IdentifierKind::BankCard,
        IdentifierKind::Location,
    ];

    /// The public name: `advertising_id`, …, `custom.<name>`.
    pub fn key(&self) -> String {
        match self {
            IdentifierKind::Custom(name) => format!("custom.{name}"),
            other => other.builtin_key().unwrap_or_default().to_string(),
        }
    }

    fn builtin_key(&self) -> Option<&'static str> {
        Some(match self {
            IdentifierKind::AdvertisingId => "advertising_id",
            IdentifierKind::Idfa => "idfa",
            IdentifierKind::Idfv => "idfv",
            IdentifierKind::AndroidId => "android_id",
            IdentifierKind::Oaid => "oaid",
            IdentifierKind::Imei => "imei",
            IdentifierKind::Meid => "meid",
            IdentifierKind::Imsi => "imsi",
            IdentifierKind::Iccid => "iccid",
            IdentifierKind::Serial => "serial",
            IdentifierKind::Mac => "mac",
            IdentifierKind::Bssid => "bssid",
            IdentifierKind::Ssid => "ssid",
            IdentifierKind::Phone => "phone",
            IdentifierKind::Email => "email",
            IdentifierKind::Name => "name",
            IdentifierKind::ResidentId => "resident_id",
            IdentifierKind::BankCard => "bank_card",
            IdentifierKind::Location => "location",
            IdentifierKind::Custom(_) => return None,
        })
    }

    /// The built-in kind called `key`.
    pub fn from_key(key: &str) -> Option<Self> {
        Self::BUILTIN
            .iter()
            .find(|k| k.builtin_key() == Some(key))
            .cloned()
    }

    /// Sensitive personal information (PIPL art. 28): precise location, phone,
    /// resident id, bank card.
    pub fn sensitive(&self) -> bool {
        matches!(
            self,
            IdentifierKind::ResidentId
                | IdentifierKind::BankCard
                | IdentifierKind::Location
                | IdentifierKind::Phone
        )
    }
}

impl fmt::Display for IdentifierKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

impl Serialize for IdentifierKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A consent decision recorded in the case file.
#[derive(Debug, Clone, Serialize)]
pub struct ManualConsent {
    pub device: String,
    pub at: Timestamp,
    pub decision: Decision,
    /// Empty means all purposes.
    pub purposes: Vec<Purpose>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleSettings {
    /// Decisions this close to a transmission make its finding `borderline`.
    pub grace_ms: i64,
    /// `excessive-frequency` fires above this many sends of one identifier to one
    /// receiver within a minute.
    pub frequency_per_minute: u32,
    /// Report personal data sent to infrastructure (CDN, hosting) receivers too.
    pub flag_infrastructure: bool,
    /// Judge the exchanges with the operating system's own services (device
    /// check-in, connectivity checks …) as the app's, as an unknown third party's.
    pub flag_platform: bool,
}

impl Default for RuleSettings {
    fn default() -> Self {
        RuleSettings {
            grace_ms: 1000,
            frequency_per_minute: 30,
            flag_infrastructure: false,
            flag_platform: false,
        }
    }
}

impl Case {
    pub fn device(&self, id: &str) -> Option<&Device> {
        self.devices.iter().find(|d| d.id == id)
    }
}
