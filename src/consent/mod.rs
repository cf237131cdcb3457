//! Consent: what each device decided, when, for which purposes (DESIGN.md §5).

use serde::{Deserialize, Serialize};

/// A user's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Granted,
    Refused,
    Withdrawn,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Granted => "granted",
            Decision::Refused => "refused",
            Decision::Withdrawn => "withdrawn",
        }
    }
}

/// A processing purpose consent can be given for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    Advertising,
    Analytics,
    Personalization,
    Social,
    Functional,
}

impl Purpose {
    pub const ALL: [Purpose; 5] = [
        Purpose::Advertising,
        Purpose::Analytics,
        Purpose::Personalization,
        Purpose::Social,
        Purpose::Functional,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Advertising => "advertising",
            Purpose::Analytics => "analytics",
            Purpose::Personalization => "personalization",
            Purpose::Social => "social",
            Purpose::Functional => "functional",
        }
    }

    pub fn parse(text: &str) -> Option<Purpose> {
        Purpose::ALL.into_iter().find(|p| p.as_str() == text)
    }
}

/// `advertising, analytics`, or `all purposes` for the empty list (which means all).
pub fn describe_purposes(purposes: &[Purpose]) -> String {
    if purposes.is_empty() {
        return "all purposes".to_string();
    }
    purposes
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

mod bits;
pub mod cmp;
pub mod gpp;
pub mod signals;
pub mod tcf;
pub mod timeline;
pub mod usp;
pub mod wire;

pub use bits::{DecodeError, DecodeErrorKind, MAX_CONSENT_STRING_LEN};
pub use timeline::{ConsentEvent, EventSource, State, Timeline};
