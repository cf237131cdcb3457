//! IAB Global Privacy Platform (GPP) string decoder.
//!
//! A GPP string is `header~section~section…`: the header (type 3, version, and the
//! section ids as a Fibonacci-coded range) says which section each `~`-separated part
//! is. We decode tcfeuv2 (id 2, via [`super::tcf`]), uspv1 (6, via [`super::usp`]),
//! usnat (7, versions 1 and 2) and the state sections usca (8), usva (9), usco (10),
//! usut (11), usct (12) and usfl … usmn (13–23) with their optional GPC sub-segment;
//! any other section (tcfeuv1, tcfcav1, usmd, usin, usky, usri, unknown ids) is kept
//! raw.
//!
//! Sections decode independently: a malformed header fails the whole string, but a
//! malformed section becomes [`SectionData::Error`] (its raw text and the error naming
//! the section, field and offset) and the other sections are still decoded and used.
//! Signal extraction reads [`GppString::us_opted_out`], [`GppString::gpc`] and
//! [`GppString::tcf_eu_v2`]. JSON output uses the field names of the official
//! `@iabgpp/cmpapi`.
//!
//! Why our own decoder and not the `iab_gpp` crate: it needs Rust 1.89 (we support
//! 1.80) and its errors name neither the field nor the bit offset; the US sections are
//! a small table here (`LAYOUTS`) and the TCF section shares [`super::tcf`].

use serde_json::{json, Map, Value};

use super::bits::{check_len, deciseconds_rfc3339, BitReader, DecodeError, DecodeErrorKind};
use super::tcf::{TcString, PURPOSE_BITS, SPECIAL_FEATURE_BITS};
use super::usp::UsPrivacy;

/// GPP header type, the first six bits of every GPP string.
pub const HEADER_TYPE: u8 = 3;

/// Most sections a GPP string may list; there are 27 section ids defined today.
pub const MAX_SECTIONS: usize = 64;

/// Name of a GPP section id, as `@iabgpp/cmpapi` spells it.
pub fn section_name(id: u64) -> Option<&'static str> {
    const NAMES: [&str; 28] = [
        "",
        "tcfeuv1",
        "tcfeuv2",
        "gppheader",
        "",
        "tcfcav1",
        "uspv1",
        "usnat",
        "usca",
        "usva",
        "usco",
        "usut",
        "usct",
        "usfl",
        "usmt",
        "usor",
        "ustx",
        "usde",
        "usia",
        "usne",
        "usnh",
        "usnj",
        "ustn",
        "usmn",
        "usmd",
        "usin",
        "usky",
        "usri",
    ];
    usize::try_from(id)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .filter(|n| !n.is_empty())
}

/// How one field of a US section is encoded.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A 2-bit value.
    Int,
    /// `n` 2-bit values.
    List(usize),
}

/// The bit layout of a US section's core segment for one version.
struct Layout {
    id: u64,
    version: u8,
    fields: &'static [(&'static str, Kind)],
    /// Whether a GPC sub-segment may follow the core segment.
    gpc: bool,
}

use Kind::{Int, List};

const USNAT_V1: &[(&str, Kind)] = &[
    ("SharingNotice", Int),
    ("SaleOptOutNotice", Int),
    ("SharingOptOutNotice", Int),
    ("TargetedAdvertisingOptOutNotice", Int),
    ("SensitiveDataProcessingOptOutNotice", Int),
    ("SensitiveDataLimitUseNotice", Int),
    ("SaleOptOut", Int),
    ("SharingOptOut", Int),
    ("TargetedAdvertisingOptOut", Int),
    ("SensitiveDataProcessing", List(12)),
    ("KnownChildSensitiveDataConsents", List(2)),
    ("PersonalDataConsents", Int),
    ("MspaCoveredTransaction", Int),
    ("MspaOptOutOptionMode", Int),
    ("MspaServiceProviderMode", Int),
];

const USNAT_V2: &[(&str, Kind)] = &[
    ("SharingNotice", Int),
    ("SaleOptOutNotice", Int),
    ("SharingOptOutNotice", Int),
    ("TargetedAdvertisingOptOutNotice", Int),
    ("SensitiveDataProcessingOptOutNotice", Int),
    ("SensitiveDataLimitUseNotice", Int),
    ("SaleOptOut", Int),
    ("SharingOptOut", Int),
    ("TargetedAdvertisingOptOut", Int),
    ("SensitiveDataProcessing", List(16)),
    ("KnownChildSensitiveDataConsents", List(3)),
    ("PersonalDataConsents", Int),
    ("MspaCoveredTransaction", Int),
    ("MspaOptOutOptionMode", Int),
    ("MspaServiceProviderMode", Int),
];

const USCA: &[(&str, Kind)] = &[
    ("SaleOptOutNotice", Int),
    ("SharingOptOutNotice", Int),
    ("SensitiveDataLimitUseNotice", Int),
    ("SaleOptOut", Int),
    ("SharingOptOut", Int),
    ("SensitiveDataProcessing", List(9)),
    ("KnownChildSensitiveDataConsents", List(2)),
    ("PersonalDataConsents", Int),
    ("MspaCoveredTransaction", Int),
    ("MspaOptOutOptionMode", Int),
    ("MspaServiceProviderMode", Int),
];

const USVA: &[(&str, Kind)] = &[
    ("SharingNotice", Int),
    ("SaleOptOutNotice", Int),
    ("TargetedAdvertisingOptOutNotice", Int),
    ("SaleOptOut", Int),
    ("TargetedAdvertisingOptOut", Int),
    ("SensitiveDataProcessing", List(8)),
    ("KnownChildSensitiveDataConsents", Int),
    ("MspaCoveredTransaction", Int),
    ("MspaOptOutOptionMode", Int),
    ("MspaServiceProviderMode", Int),
];

const USCO: &[(&str, Kind)] = &[
    ("SharingNotice", Int),
    ("SaleOptOutNotice", Int),
    ("TargetedAdvertisingOptOutNotice", Int),
    ("SaleOptOut", Int),
    ("TargetedAdvertisingOptOut", Int),
    ("SensitiveDataProcessing", List(7)),
    ("KnownChildSensitiveDataConsents", Int),
    ("MspaCoveredTransaction", Int),
    ("MspaOptOutOptionMode", Int),
    ("MspaServiceProviderMode", Int),
];

const USUT: &[(&str, Kind)] = &[
    ("SharingNotice", Int),
    ("SaleOptOutNotice", Int),
    ("TargetedAdvertisingOptOutNotice", Int),
    ("SensitiveDataProcessingOptOutNotice", Int),
    ("SaleOptOut", Int),
    ("TargetedAdvertisingOptOut", Int),
    ("SensitiveDataProcessing", List(8)),
    ("KnownChildSensitiveDataConsents", Int),
    ("MspaCoveredTransaction", Int),
    ("MspaOptOutOptionMode", Int),
    ("MspaServiceProviderMode", Int),
];

const USCT: &[(&str, Kind)] = &[
    ("SharingNotice", Int),
    ("SaleOptOutNotice", Int),
    ("TargetedAdvertisingOptOutNotice", Int),
    ("SaleOptOut", Int),
    ("TargetedAdvertisingOptOut", Int),
    ("SensitiveDataProcessing", List(8)),
    ("KnownChildSensitiveDataConsents", List(3)),
    ("MspaCoveredTransaction", Int),
    ("MspaOptOutOptionMode", Int),
    ("MspaServiceProviderMode", Int),
];

/// The state sections of the 2024 release (ids 13–23) share one shape: notices, two
/// opt-outs, sensitive data and child consents of varying lengths, then the MSPA fields.
macro_rules! state_layout {
    ($name:ident, $sdp:expr, $child:expr) => {
        const $name: &[(&str, Kind)] = &[
            ("ProcessingNotice", Int),
            ("SaleOptOutNotice", Int),
            ("TargetedAdvertisingOptOutNotice", Int),
            ("SaleOptOut", Int),
            ("TargetedAdvertisingOptOut", Int),
            ("SensitiveDataProcessing", List($sdp)),
            ("KnownChildSensitiveDataConsents", $child),
            ("AdditionalDataProcessingConsent", Int),
            ("MspaCoveredTransaction", Int),
            ("MspaOptOutOptionMode", Int),
            ("MspaServiceProviderMode", Int),
        ];
    };
}

state_layout!(USFL, 8, List(3));
state_layout!(USOR, 11, List(3));
state_layout!(USTX, 8, Int);
state_layout!(USDE, 9, List(5));
state_layout!(USNE, 8, Int);
state_layout!(USNH, 8, List(3));
state_layout!(USNJ, 10, List(5));
state_layout!(USTN, 8, Int);
state_layout!(USMN, 8, Int);

/// Montana names its first notice `SharingNotice`.
const USMT: &[(&str, Kind)] = &[
    ("SharingNotice", Int),
    ("SaleOptOutNotice", Int),
    ("TargetedAdvertisingOptOutNotice", Int),
    ("SaleOptOut", Int),
    ("TargetedAdvertisingOptOut", Int),
    ("SensitiveDataProcessing", List(8)),
    ("KnownChildSensitiveDataConsents", List(3)),
    ("AdditionalDataProcessingConsent", Int),
    ("MspaCoveredTransaction", Int),
    ("MspaOptOutOptionMode", Int),
    ("MspaServiceProviderMode", Int),
];

/// Iowa has a sensitive-data opt-out notice and no additional-processing consent.
const USIA: &[(&str, Kind)] = &[
    ("ProcessingNotice", Int),
    ("SaleOptOutNotice", Int),
    ("TargetedAdvertisingOptOutNotice", Int),
    ("SensitiveDataOptOutNotice", Int),
    ("SaleOptOut", Int),
    ("TargetedAdvertisingOptOut", Int),
    ("SensitiveDataProcessing", List(8)),
    ("KnownChildSensitiveDataConsents", Int),
    ("MspaCoveredTransaction", Int),
    ("MspaOptOutOptionMode", Int),
    ("MspaServiceProviderMode", Int),
];

/// The US sections we decode, per (section id, version). Ids 24–27 (usmd, usin, usky,
/// usri) use a newer layout starting with `MspaVersion` and are kept raw for now.
const LAYOUTS: &[Layout] = &[
    Layout {
        id: 7,
        version: 1,
        fields: USNAT_V1,
        gpc: true,
    },
    Layout {
        id: 7,
        version: 2,
        fields: USNAT_V2,
        gpc: true,
    },
    Layout {
        id: 8,
        version: 1,
        fields: USCA,
        gpc: true,
    },
    Layout {
        id: 9,
        version: 1,
        fields: USVA,
        gpc: false,
    },
    Layout {
        id: 10,
        version: 1,
        fields: USCO,
        gpc: true,
    },
    Layout {
        id: 11,
        version: 1,
        fields: USUT,
        gpc: false,
    },
    Layout {
        id: 12,
        version: 1,
        fields: USCT,
        gpc: true,
    },
    Layout {
        id: 13,
        version: 1,
        fields: USFL,
        gpc: false,
    },
    Layout {
        id: 14,
        version: 1,
        fields: USMT,
        gpc: true,
    },
    Layout {
        id: 15,
        version: 1,
        fields: USOR,
        gpc: true,
    },
    Layout {
        id: 16,
        version: 1,
        fields: USTX,
        gpc: true,
    },
    Layout {
        id: 17,
        version: 1,
        fields: USDE,
        gpc: true,
    },
    Layout {
        id: 18,
        version: 1,
        fields: USIA,
        gpc: true,
    },
    Layout {
        id: 19,
        version: 1,
        fields: USNE,
        gpc: true,
    },
    Layout {
        id: 20,
        version: 1,
        fields: USNH,
        gpc: true,
    },
    Layout {
        id: 21,
        version: 1,
        fields: USNJ,
        gpc: true,
    },
    Layout {
        id: 22,
        version: 1,
        fields: USTN,
        gpc: true,
    },
    Layout {
        id: 23,
        version: 1,
        fields: USMN,
        gpc: true,
    },
];

/// Highest section id with a US layout in `LAYOUTS`.
const LAST_US_ID: u64 = 23;

/// Bits in a usnat v1 core segment as CMPs pad it (60 used, base64 to 66).
const USNAT_V1_BITS: usize = 66;
/// Bits from which a "version 1" usnat core is really a v2 one (70 used, padded to 72).
const USNAT_V2_BITS: usize = 72;

/// Picks the usnat layout from the bit length as the IAB libraries do: some CMPs
/// encoded the v2 fields while still writing version 1 (iabgpp-java upgrades such
/// strings of 72+ bits to v2), and 66-bit strings are v1-sized whatever the version
/// says (iabgpp-es). Other sections go by their version.
fn layout_for(id: u64, version: u8, bits: usize) -> Option<&'static Layout> {
    let version = match (id, version) {
        (7, 1) if bits >= USNAT_V2_BITS => 2,
        (7, 2) if bits == USNAT_V1_BITS => 1,
        _ => version,
    };
    LAYOUTS.iter().find(|l| l.id == id && l.version == version)
}

/// A field value of a US section: one 2-bit value or a list of them. In the US
/// sections 0 means not applicable, 1 opted out / no consent / notice provided
/// (depending on the field), 2 did not opt out / consent / notice not provided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsValue {
    One(u8),
    List(Vec<u8>),
}

/// Value of an opt-out field meaning the user opted out.
pub const OPTED_OUT: u8 = 1;

/// A decoded usnat-like section (usnat or a state section).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsSection {
    pub version: u8,
    /// Core-segment fields in wire order, named as in `@iabgpp/cmpapi`.
    pub fields: Vec<(&'static str, UsValue)>,
    /// The GPC sub-segment's flag, when the section has one and it was sent.
    pub gpc: Option<bool>,
    /// Whether this section type can carry a GPC sub-segment.
    pub gpc_capable: bool,
}

impl UsSection {
    /// A field by its cmpapi name.
    pub fn field(&self, name: &str) -> Option<&UsValue> {
        self.fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    fn one(&self, name: &str) -> Option<u8> {
        match self.field(name) {
            Some(UsValue::One(v)) => Some(*v),
            _ => None,
        }
    }

    /// `SaleOptOut` is 1 (opted out).
    pub fn sale_opted_out(&self) -> bool {
        self.one("SaleOptOut") == Some(OPTED_OUT)
    }

    /// `SharingOptOut` is 1 (opted out).
    pub fn sharing_opted_out(&self) -> bool {
        self.one("SharingOptOut") == Some(OPTED_OUT)
    }

    /// `TargetedAdvertisingOptOut` is 1 (opted out).
    pub fn targeted_advertising_opted_out(&self) -> bool {
        self.one("TargetedAdvertisingOptOut") == Some(OPTED_OUT)
    }

    /// Opted out of sale, sharing or targeted advertising.
    pub fn opted_out(&self) -> bool {
        self.sale_opted_out() || self.sharing_opted_out() || self.targeted_advertising_opted_out()
    }

    /// The fields in wire order as cmpapi names them, with the GPC sub-segment last.
    pub fn named_fields(&self) -> Vec<(&'static str, Value)> {
        let mut out = vec![("Version", json!(self.version))];
        for (name, v) in &self.fields {
            let v = match v {
                UsValue::One(x) => json!(x),
                UsValue::List(xs) => json!(xs),
            };
            out.push((*name, v));
        }
        if self.gpc_capable {
            // cmpapi reports the sub-segment's defaults when it is absent.
            out.push(("GpcSegmentType", json!(1)));
            out.push(("Gpc", json!(self.gpc.unwrap_or(false))));
        }
        out
    }
}

/// What a section decoded to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionData {
    /// Section 2: an EU TC string.
    TcfEuV2(Box<TcString>),
    /// Section 6: a US Privacy string.
    UspV1(UsPrivacy),
    /// Sections 7–23: usnat and the state sections.
    Us(UsSection),
    /// Any other section, undecoded.
    Raw(String),
    /// A section we decode whose body is malformed: kept raw with the error, while
    /// the string's other sections are still used.
    Error { raw: String, error: DecodeError },
}

/// One section of a GPP string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub id: u64,
    /// The section's name, `None` for ids the GPP spec does not define.
    pub name: Option<&'static str>,
    pub data: SectionData,
}

/// A decoded GPP string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GppString {
    pub version: u8,
    /// Section ids as listed in the header.
    pub section_ids: Vec<u64>,
    /// Sections in header order.
    pub sections: Vec<Section>,
}

impl GppString {
    /// Parses `header~section~…`.
    pub fn parse(text: &str) -> Result<GppString, DecodeError> {
        let text = text.trim();
        check_len(text)?;
        let mut parts = text.split('~');
        // `split` yields at least one item, possibly empty (checked by the reader).
        let header = parts.next().unwrap_or("");
        let mut r = BitReader::from_base64url(header, "header", 0)?;
        let t = r.u8(6, "header.Type")?;
        if t != HEADER_TYPE {
            return Err(DecodeError::invalid(
                "header.Type",
                0,
                format!("header type {t}, a GPP string has {HEADER_TYPE}"),
            ));
        }
        let version = r.u8(6, "header.Version")?;
        if version != 1 {
            return Err(DecodeError::new(
                "header.Version",
                6,
                DecodeErrorKind::UnsupportedVersion {
                    found: u64::from(version),
                },
            ));
        }
        let bodies: Vec<&str> = parts.collect();
        let limit = bodies.len().clamp(1, MAX_SECTIONS);
        let section_ids = r
            .fibonacci_ranges(limit + 1, "SectionIds")
            .map_err(|e| e.within("header"))?;
        if section_ids.len() != bodies.len() {
            return Err(DecodeError::invalid(
                "header.SectionIds",
                12,
                format!(
                    "header lists {} sections, string has {}",
                    section_ids.len(),
                    bodies.len()
                ),
            ));
        }
        let mut sections = Vec::with_capacity(bodies.len());
        let mut base = header.len() + 1;
        for (&id, body) in section_ids.iter().zip(bodies) {
            let name = section_name(id);
            let prefix = name.map_or_else(|| format!("section{id}"), str::to_string);
            // One bad section does not spoil the others (CMPs write sections
            // independently; an SDK bug in one state section is common).
            let data = decode_section(id, body, base).unwrap_or_else(|e| SectionData::Error {
                raw: body.to_string(),
                error: e.within(&prefix),
            });
            sections.push(Section { id, name, data });
            base += body.len() + 1;
        }
        Ok(GppString {
            version,
            section_ids,
            sections,
        })
    }

    /// The sections that failed to decode, with their errors, in header order.
    pub fn section_errors(&self) -> impl Iterator<Item = &DecodeError> {
        self.sections.iter().filter_map(|s| match &s.data {
            SectionData::Error { error, .. } => Some(error),
            _ => None,
        })
    }

    /// The embedded EU TC string (section 2), if any.
    pub fn tcf_eu_v2(&self) -> Option<&TcString> {
        self.sections.iter().find_map(|s| match &s.data {
            SectionData::TcfEuV2(tc) => Some(tc.as_ref()),
            _ => None,
        })
    }

    /// The embedded US Privacy string (section 6), if any.
    pub fn us_privacy(&self) -> Option<&UsPrivacy> {
        self.sections.iter().find_map(|s| match &s.data {
            SectionData::UspV1(u) => Some(u),
            _ => None,
        })
    }

    /// The decoded usnat-like sections with their names.
    pub fn us_sections(&self) -> impl Iterator<Item = (&'static str, &UsSection)> {
        self.sections.iter().filter_map(|s| match &s.data {
            SectionData::Us(u) => Some((s.name.unwrap_or("?"), u)),
            _ => None,
        })
    }

    /// Any US section (or the uspv1 section) says the user opted out of sale,
    /// sharing or targeted advertising.
    pub fn us_opted_out(&self) -> bool {
        self.us_sections().any(|(_, u)| u.opted_out())
            || self.us_privacy().is_some_and(UsPrivacy::opted_out)
    }

    /// The GPC flag of the first US section that carries one.
    pub fn gpc(&self) -> Option<bool> {
        self.us_sections().find_map(|(_, u)| u.gpc)
    }

    /// The decoded string as `@iabgpp/cmpapi` names it.
    pub fn to_json(&self) -> Value {
        json!({
            "version": self.version,
            "sectionIds": self.section_ids,
            "sections": self.sections.iter().map(|s| {
                let fields: Map<String, Value> = s
                    .fields()
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect();
                let mut o = json!({
                    "id": s.id,
                    "name": s.name.unwrap_or("unknown"),
                    "fields": fields,
                });
                match &s.data {
                    SectionData::Raw(raw) => o["raw"] = json!(raw),
                    SectionData::Error { raw, error } => {
                        o["raw"] = json!(raw);
                        o["error"] = json!(error.to_string());
                    }
                    _ => {}
                }
                o
            }).collect::<Vec<_>>(),
        })
    }
}

impl Section {
    /// The section's fields in wire order as `@iabgpp/cmpapi` names them (none when raw).
    pub fn fields(&self) -> Vec<(&'static str, Value)> {
        match &self.data {
            SectionData::Raw(_) | SectionData::Error { .. } => Vec::new(),
            SectionData::TcfEuV2(tc) => tcf_eu_v2_fields(tc),
            SectionData::UspV1(u) => vec![
                ("Version", json!(u.version)),
                ("Notice", json!(u.notice)),
                ("OptOutSale", json!(u.opt_out_sale)),
                ("LspaCovered", json!(u.lspa_covered)),
            ],
            SectionData::Us(u) => u.named_fields(),
        }
    }
}

fn decode_section(id: u64, body: &str, base: usize) -> Result<SectionData, DecodeError> {
    match id {
        2 => TcString::parse(body).map(|tc| SectionData::TcfEuV2(Box::new(tc))),
        6 => UsPrivacy::parse(body).map(SectionData::UspV1),
        7..=LAST_US_ID => decode_us(id, body, base).map(SectionData::Us),
        _ => Ok(SectionData::Raw(body.to_string())),
    }
}

fn decode_us(id: u64, body: &str, base: usize) -> Result<UsSection, DecodeError> {
    let mut segments = body.split('.');
    // `split` yields at least one item, possibly empty (checked by the reader).
    let core = segments.next().unwrap_or("");
    let mut r = BitReader::from_base64url(core, "core", base)?;
    let bits = r.remaining();
    let version = r.u8(6, "Version")?;
    let Some(layout) = layout_for(id, version, bits) else {
        return Err(DecodeError::new(
            "Version",
            0,
            DecodeErrorKind::UnsupportedVersion {
                found: u64::from(version),
            },
        ));
    };
    let mut fields = Vec::with_capacity(layout.fields.len());
    for &(name, kind) in layout.fields {
        let v = match kind {
            Int => UsValue::One(r.u8(2, name)?),
            List(n) => UsValue::List(
                (0..n)
                    .map(|_| r.u8(2, name))
                    .collect::<Result<Vec<u8>, _>>()?,
            ),
        };
        fields.push((name, v));
    }
    let mut gpc = None;
    let mut base = base + core.len() + 1;
    if layout.gpc {
        if let Some(seg) = segments.next() {
            let mut r = BitReader::from_base64url(seg, "GpcSegment", base)?;
            let t = r.u8(2, "GpcSegmentType")?;
            if t != 1 {
                return Err(DecodeError::invalid(
                    "GpcSegmentType",
                    0,
                    format!("sub-segment type {t}, GPC is 1"),
                ));
            }
            gpc = Some(r.bool("Gpc")?);
            base += seg.len() + 1;
        }
        if segments.next().is_some() {
            return Err(DecodeError::invalid(
                "segment",
                base,
                "unexpected extra segment",
            ));
        }
    }
    // Sections without sub-segments: anything after a `.` is ignored, as cmpapi does.
    Ok(UsSection {
        version,
        fields,
        gpc,
        gpc_capable: layout.gpc,
    })
}

/// 1-based numbers as a fixed-length boolean array, cmpapi's form.
fn bool_array(numbers: &[u8], len: usize) -> Vec<bool> {
    (1..=len).map(|i| numbers.contains(&(i as u8))).collect()
}

/// The tcfeuv2 section as `@iabgpp/cmpapi` prints it (boolean arrays, PascalCase).
fn tcf_eu_v2_fields(tc: &TcString) -> Vec<(&'static str, Value)> {
    let p = tc.publisher_tc.clone().unwrap_or_default();
    let n = usize::from(p.num_custom_purposes);
    vec![
        ("Version", json!(tc.version)),
        ("Created", json!(deciseconds_rfc3339(tc.created_ds))),
        (
            "LastUpdated",
            json!(deciseconds_rfc3339(tc.last_updated_ds)),
        ),
        ("CmpId", json!(tc.cmp_id)),
        ("CmpVersion", json!(tc.cmp_version)),
        ("ConsentScreen", json!(tc.consent_screen)),
        ("ConsentLanguage", json!(tc.consent_language)),
        ("VendorListVersion", json!(tc.vendor_list_version)),
        ("PolicyVersion", json!(tc.policy_version)),
        ("IsServiceSpecific", json!(tc.is_service_specific)),
        ("UseNonStandardStacks", json!(tc.use_non_standard_stacks)),
        (
            "SpecialFeatureOptins",
            json!(bool_array(&tc.special_feature_optins, SPECIAL_FEATURE_BITS)),
        ),
        (
            "PurposeConsents",
            json!(bool_array(&tc.purpose_consents, PURPOSE_BITS)),
        ),
        (
            "PurposeLegitimateInterests",
            json!(bool_array(&tc.purpose_legitimate_interests, PURPOSE_BITS)),
        ),
        ("PurposeOneTreatment", json!(tc.purpose_one_treatment)),
        ("PublisherCountryCode", json!(tc.publisher_country_code)),
        ("VendorConsents", json!(tc.vendor_consents)),
        (
            "VendorLegitimateInterests",
            json!(tc.vendor_legitimate_interests),
        ),
        (
            "PublisherRestrictions",
            json!(tc
                .publisher_restrictions
                .iter()
                .map(|r| json!({
                    "key": r.purpose_id,
                    "type": r.restriction_type.value(),
                    "ids": r.vendor_ids,
                }))
                .collect::<Vec<_>>()),
        ),
        ("PublisherPurposesSegmentType", json!(3)),
        (
            "PublisherConsents",
            json!(bool_array(&p.consents, PURPOSE_BITS)),
        ),
        (
            "PublisherLegitimateInterests",
            json!(bool_array(&p.legitimate_interests, PURPOSE_BITS)),
        ),
        ("NumCustomPurposes", json!(p.num_custom_purposes)),
        (
            "PublisherCustomConsents",
            json!(bool_array(&p.custom_consents, n)),
        ),
        (
            "PublisherCustomLegitimateInterests",
            json!(bool_array(&p.custom_legitimate_interests, n)),
        ),
        ("VendorsAllowedSegmentType", json!(2)),
        (
            "VendorsAllowed",
            json!(tc.vendors_allowed.clone().unwrap_or_default()),
        ),
        ("VendorsDisclosedSegmentType", json!(1)),
        (
            "VendorsDisclosed",
            json!(tc.vendors_disclosed.clone().unwrap_or_default()),
        ),
    ]
}

/// Test-only encoders for GPP strings.
#[cfg(test)]
pub(crate) mod encode {
    use crate::consent::bits::writer::BitWriter;

    /// A GPP header listing `ids`.
    pub(crate) fn header(ids: &[u64]) -> String {
        let mut w = BitWriter::default();
        w.int(6, 3).int(6, 1).fibonacci_ids(ids);
        w.base64url()
    }

    /// A US section body: version then each field's values, then an optional GPC flag.
    pub(crate) fn us_section(version: u8, values: &[&[u8]], gpc: Option<bool>) -> String {
        let mut w = BitWriter::default();
        w.int(6, u64::from(version));
        for vs in values {
            for &v in *vs {
                w.int(2, u64::from(v));
            }
        }
        let mut s = w.base64url();
        if let Some(g) = gpc {
            let mut w = BitWriter::default();
            w.int(2, 1).bool(g);
            s.push('.');
            s.push_str(&w.base64url());
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::encode::{header, us_section};
    use super::*;
    use crate::consent::bits::writer::BitWriter;
    use crate::consent::tcf::encode as tcf_encode;
    use proptest::prelude::*;

    /// usnat v1 with every notice provided (1), sale and targeted-ad opt-out (1),
    /// sharing not opted out (2), no sensitive-data consent (1).
    fn usnat_v1(gpc: Option<bool>) -> String {
        us_section(
            1,
            &[
                &[1, 1, 1, 1, 1, 1],
                &[1, 2, 1],
                &[1; 12],
                &[1, 1],
                &[1],
                &[1, 2, 2],
            ],
            gpc,
        )
    }

    #[test]
    fn header_examples_from_the_spec() {
        // The GPP specification's example string (TC string + US Privacy) and its
        // single-section forms: DBABMA lists section 2, DBACNYA 2 and 6, DBABTA 6.
        let g = GppString::parse("DBABMA~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA").unwrap();
        assert_eq!(g.section_ids, vec![2]);
        assert!(g.tcf_eu_v2().is_some());
        let g =
            GppString::parse("DBACNYA~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA~1YNN").unwrap();
        assert_eq!(g.section_ids, vec![2, 6]);
        assert_eq!(g.us_privacy().unwrap().encode(), "1YNN");
        let g = GppString::parse("DBABTA~1YN-").unwrap();
        assert_eq!(g.section_ids, vec![6]);
        assert!(!g.us_opted_out());
    }

    #[test]
    fn header_round_trips() {
        // Sections we keep raw, so any body will do.
        for ids in [
            vec![1],
            vec![1, 5],
            vec![24, 25, 26, 27, 28, 29],
            vec![5, 30],
            vec![3, 4],
        ] {
            let h = header(&ids);
            let body = vec!["x"; ids.len()].join("~");
            let g =
                GppString::parse(&format!("{h}~{body}")).unwrap_or_else(|e| panic!("{ids:?}: {e}"));
            assert_eq!(g.section_ids, ids);
        }
    }

    #[test]
    fn usnat_fields_and_gpc() {
        let s = format!("{}~{}", header(&[7]), usnat_v1(Some(true)));
        let g = GppString::parse(&s).unwrap();
        let (name, u) = g.us_sections().next().unwrap();
        assert_eq!(name, "usnat");
        assert_eq!(u.field("SaleOptOut"), Some(&UsValue::One(1)));
        assert_eq!(u.field("SharingOptOut"), Some(&UsValue::One(2)));
        assert_eq!(
            u.field("SensitiveDataProcessing"),
            Some(&UsValue::List(vec![1; 12]))
        );
        assert!(u.sale_opted_out() && !u.sharing_opted_out() && u.targeted_advertising_opted_out());
        assert_eq!(g.gpc(), Some(true));
        assert!(g.us_opted_out());
        let j = g.to_json();
        let f = &j["sections"][0]["fields"];
        assert_eq!(f["MspaServiceProviderMode"], json!(2));
        assert_eq!(f["KnownChildSensitiveDataConsents"], json!([1, 1]));
        assert_eq!(f["Gpc"], json!(true));
        // Without the sub-segment the flag is unknown, printed as cmpapi's default.
        let g = GppString::parse(&format!("{}~{}", header(&[7]), usnat_v1(None))).unwrap();
        assert_eq!(g.gpc(), None);
        assert_eq!(g.to_json()["sections"][0]["fields"]["Gpc"], json!(false));
    }

    #[test]
    fn usnat_v2_has_longer_lists() {
        let body = us_section(
            2,
            &[&[0; 6], &[2, 2, 2], &[2; 16], &[0; 3], &[0], &[2, 0, 0]],
            None,
        );
        let g = GppString::parse(&format!("{}~{body}", header(&[7]))).unwrap();
        let (_, u) = g.us_sections().next().unwrap();
        assert_eq!(
            u.field("SensitiveDataProcessing"),
            Some(&UsValue::List(vec![2; 16]))
        );
        assert_eq!(
            u.field("KnownChildSensitiveDataConsents"),
            Some(&UsValue::List(vec![0; 3]))
        );
        assert!(!g.us_opted_out());
    }

    #[test]
    fn state_sections_decode() {
        // (id, name, field value lists in wire order, has GPC)
        let cases: [(u64, &str, Vec<Vec<u8>>, bool); 5] = [
            (
                8,
                "usca",
                vec![vec![1; 5], vec![2; 9], vec![2; 2], vec![2; 4]],
                true,
            ),
            (9, "usva", vec![vec![1; 5], vec![2; 8], vec![2; 4]], false),
            (10, "usco", vec![vec![1; 5], vec![2; 7], vec![2; 4]], true),
            (11, "usut", vec![vec![1; 6], vec![2; 8], vec![2; 4]], false),
            (
                12,
                "usct",
                vec![vec![1; 5], vec![2; 8], vec![2; 3], vec![2; 3]],
                true,
            ),
        ];
        for (id, name, values, has_gpc) in cases {
            let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
            let gpc = has_gpc.then_some(false);
            let s = format!("{}~{}", header(&[id]), us_section(1, &refs, gpc));
            let g = GppString::parse(&s).unwrap_or_else(|e| panic!("{name}: {e}"));
            let (n, u) = g.us_sections().next().unwrap();
            assert_eq!(n, name);
            assert!(u.sale_opted_out(), "{name}");
            assert_eq!(u.gpc, gpc);
            // A too-short body is a named truncation.
            let short = us_section(1, &refs[..1], None);
            let g = GppString::parse(&format!("{}~{short}", header(&[id]))).unwrap();
            let e = g.section_errors().next().unwrap();
            assert!(e.field.starts_with(name), "{e}");
            assert!(matches!(e.kind, DecodeErrorKind::Truncated { .. }), "{e}");
        }
    }

    #[test]
    fn usnat_length_heuristics_follow_the_iab_libraries() {
        // Version 1 but 72 bits: a v2 encoding with a stale version (iabgpp-java
        // upgrades these). Last sensitive-data entry and last child consent set.
        let mut w = BitWriter::default();
        w.int(6, 1)
            .int(18, 0)
            .int(30, 0)
            .int(2, 1)
            .int(4, 0)
            .int(2, 1);
        w.int(2, 0).int(2, 1).int(4, 0).int(2, 0);
        assert_eq!(w.bits.len(), 72);
        let g = GppString::parse(&format!("{}~{}", header(&[7]), w.base64url())).unwrap();
        let (_, u) = g.us_sections().next().unwrap();
        assert_eq!(u.version, 1);
        let mut sdp = vec![0; 16];
        sdp[15] = 1;
        assert_eq!(
            u.field("SensitiveDataProcessing"),
            Some(&UsValue::List(sdp))
        );
        assert_eq!(
            u.field("KnownChildSensitiveDataConsents"),
            Some(&UsValue::List(vec![0, 0, 1]))
        );
        assert_eq!(u.field("MspaCoveredTransaction"), Some(&UsValue::One(1)));
        // Version 2 in a 66-bit (v1-sized) string: read with the v1 layout.
        let mut w = BitWriter::default();
        w.int(6, 2)
            .int(18, 0)
            .int(24, 0)
            .int(4, 0)
            .int(2, 0)
            .int(2, 1)
            .int(4, 0);
        w.int(6, 0);
        assert_eq!(w.bits.len(), 66);
        let g = GppString::parse(&format!("{}~{}", header(&[7]), w.base64url())).unwrap();
        let (_, u) = g.us_sections().next().unwrap();
        assert_eq!(
            u.field("SensitiveDataProcessing"),
            Some(&UsValue::List(vec![0; 12]))
        );
        assert_eq!(u.field("MspaCoveredTransaction"), Some(&UsValue::One(1)));
    }

    #[test]
    fn later_state_sections_decode() {
        // (id, name, values in wire order, has GPC): two of each shape of the 2024 states.
        let cases: [(u64, &str, Vec<Vec<u8>>, bool); 4] = [
            (
                13,
                "usfl",
                vec![vec![1; 5], vec![2; 8], vec![2; 3], vec![2; 4]],
                false,
            ),
            (
                16,
                "ustx",
                vec![vec![1; 5], vec![2; 8], vec![2], vec![2; 4]],
                true,
            ),
            (
                18,
                "usia",
                vec![vec![1; 6], vec![2; 8], vec![2], vec![2; 3]],
                true,
            ),
            (
                21,
                "usnj",
                vec![vec![1; 5], vec![2; 10], vec![2; 5], vec![2; 4]],
                true,
            ),
        ];
        for (id, name, values, has_gpc) in cases {
            let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
            let gpc = has_gpc.then_some(true);
            let s = format!("{}~{}", header(&[id]), us_section(1, &refs, gpc));
            let g = GppString::parse(&s).unwrap_or_else(|e| panic!("{name}: {e}"));
            let (n, u) = g.us_sections().next().unwrap();
            assert_eq!(n, name);
            assert!(
                u.sale_opted_out() && u.targeted_advertising_opted_out(),
                "{name}"
            );
            assert_eq!(g.gpc(), gpc, "{name}");
        }
        // Sections without sub-segments ignore a trailing one, as cmpapi does.
        let refs: Vec<&[u8]> = vec![&[1; 5], &[2; 8], &[2; 3], &[2; 4]];
        let s = format!("{}~{}.", header(&[13]), us_section(1, &refs, None));
        assert!(GppString::parse(&s).is_ok());
    }

    #[test]
    fn embedded_tc_string_and_unknown_sections() {
        let tc = tcf_encode::encode(&tcf_encode::sample(), false);
        let s = format!("{}~{tc}~opaque.data", header(&[2, 99]));
        let g = GppString::parse(&s).unwrap();
        assert!(g.tcf_eu_v2().unwrap().vendor_consent(755));
        assert_eq!(g.sections[1].name, None);
        assert_eq!(g.sections[1].data, SectionData::Raw("opaque.data".into()));
        let j = g.to_json();
        let f = &j["sections"][0]["fields"];
        assert_eq!(f["PurposeConsents"][3], json!(true));
        assert_eq!(f["PurposeConsents"][4], json!(false));
        assert_eq!(f["VendorConsents"], json!([2, 6, 8, 755]));
        assert_eq!(j["sections"][1]["raw"], json!("opaque.data"));
    }

    #[test]
    fn malformed_strings_are_named_errors() {
        let good = format!("{}~{}", header(&[7]), usnat_v1(None));
        assert!(GppString::parse(&good).is_ok());
        // A bad header fails the whole string.
        let cases = [
            (String::new(), "header"),
            (format!("{}~a~b", header(&[2])), "header.SectionIds"),
            ("CBABTA~1YNN".to_string(), "header.Type"),
            ("DCABTA~1YNN".to_string(), "header.Version"),
            (format!("{}~1YNN", header(&[6, 7])), "header.SectionIds"),
        ];
        for (s, field) in cases {
            let e = GppString::parse(&s).unwrap_err();
            assert_eq!(e.field, field, "{s}: {e}");
        }
        // A bad section is an error entry for that section only.
        let cases = [
            (format!("{}~~1YNN", header(&[2, 6])), "tcfeuv2.core"),
            (format!("{good}."), "usnat.GpcSegment"),
            (
                format!("{}~{}", header(&[7]), us_section(3, &[], None)),
                "usnat.Version",
            ),
            (format!("{}~1YXN", header(&[6])), "uspv1.optOutSale"),
        ];
        for (s, field) in cases {
            let g = GppString::parse(&s).unwrap_or_else(|e| panic!("{s}: {e}"));
            let errors: Vec<_> = g.section_errors().collect();
            assert_eq!(errors.len(), 1, "{s}");
            assert_eq!(errors[0].field, field, "{s}: {}", errors[0]);
        }
    }

    #[test]
    fn one_bad_section_leaves_the_others_usable() {
        // tcfeuv2 broken, uspv1 opted out, usnat fine: the US decisions survive.
        let s = format!("{}~not*base64~1YYN~{}", header(&[2, 6, 7]), usnat_v1(None));
        let g = GppString::parse(&s).unwrap();
        assert_eq!(g.sections.len(), 3);
        assert!(matches!(
            &g.sections[0].data,
            SectionData::Error { raw, error } if raw == "not*base64" && error.field.starts_with("tcfeuv2")
        ));
        assert!(g.tcf_eu_v2().is_none());
        assert!(g.us_privacy().is_some_and(UsPrivacy::opted_out));
        assert_eq!(g.us_sections().count(), 1);
        assert!(g.us_opted_out());
        let j = g.to_json();
        assert_eq!(j["sections"][0]["raw"], json!("not*base64"));
        assert!(j["sections"][0]["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("tcfeuv2")));
        assert!(j["sections"][1]["error"].is_null());
        // Every section bad: still a GPP string, with nothing usable in it.
        let g = GppString::parse(&format!("{}~!!~1YXN", header(&[2, 6]))).unwrap();
        assert_eq!(g.section_errors().count(), 2);
        assert!(!g.us_opted_out());
    }

    #[test]
    fn huge_section_ranges_are_refused_cheaply() {
        let mut w = BitWriter::default();
        w.int(6, 3)
            .int(6, 1)
            .int(12, 1)
            .bool(true)
            .fibonacci(1)
            .fibonacci(u64::MAX / 4);
        let e = GppString::parse(&format!("{}~x", w.base64url())).unwrap_err();
        assert_eq!(e.field, "header.SectionIds");
    }

    proptest! {
        #[test]
        fn header_ids_round_trip(ids in proptest::collection::btree_set(1u64..5000, 1..12)) {
            let ids: Vec<u64> = ids.into_iter().collect();
            let body = vec!["raw"; ids.len()].join("~");
            // Ids without a decoder in this range are kept raw, whatever the body.
            prop_assume!(ids.iter().all(|&i| i > LAST_US_ID));
            let g = GppString::parse(&format!("{}~{body}", header(&ids))).unwrap();
            prop_assert_eq!(g.section_ids, ids);
        }

        #[test]
        fn random_strings_never_panic(s in "[A-Za-z0-9_~.-]{0,120}") {
            let _ = GppString::parse(&s);
        }

        #[test]
        fn random_section_bits_never_panic(
            id in 1u64..30,
            bits in proptest::collection::vec(any::<bool>(), 1..300),
            sub in proptest::option::of(proptest::collection::vec(any::<bool>(), 1..12)),
        ) {
            let mut body = BitWriter { bits }.base64url();
            if let Some(sub) = sub {
                let w = BitWriter { bits: sub };
                body.push('.');
                body.push_str(&w.base64url());
            }
            let _ = GppString::parse(&format!("{}~{body}", header(&[id])));
        }

        #[test]
        fn us_sections_round_trip(values in proptest::collection::vec(0u8..4, 31), gpc in proptest::option::of(any::<bool>())) {
            // usnat v1 has 9 single fields, 12 + 2 list entries and 4 more singles: 27 values.
            let vals = &values[..27];
            let s = format!("{}~{}", header(&[7]), us_section(1, &[vals], gpc));
            let g = GppString::parse(&s).unwrap();
            let (_, u) = g.us_sections().next().unwrap();
            let flat: Vec<u8> = u.fields.iter().flat_map(|(_, v)| match v {
                UsValue::One(x) => vec![*x],
                UsValue::List(xs) => xs.clone(),
            }).collect();
            prop_assert_eq!(flat, vals.to_vec());
            prop_assert_eq!(u.gpc, gpc);
        }
    }
}
