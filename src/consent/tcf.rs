//! IAB TCF v2 (v2.0–v2.2) TC string decoder: the core segment and the optional
//! disclosed-vendors, allowed-vendors and publisher-TC segments.
//!
//! The TC string is what a CMP sends as `gdpr_consent`, stores as `euconsent-v2` and
//! embeds as GPP section 2; signal extraction reads [`TcString::purpose_consent`] and
//! [`TcString::vendor_consent`] from it. [`TcString::to_json`] prints the field names
//! of the IAB reference library `@iabtcf/core` so output can be diffed against it.
//!
//! Why our own decoder and not the `lib_tcstring` crate: it keeps no `version` or
//! `numCustomPurposes`, its errors name neither field nor offset, and it expands
//! ranges into vectors without a bound on overlapping ranges. Ours differs from
//! `@iabtcf/core` in two deliberate ways, both to read what apps really send: `cmpId`
//! 0 is accepted (GPP test strings and some CMPs use it) and trailing `=` padding is
//! tolerated (as the Java reference library does).

use serde::Serialize;
use serde_json::{json, Value};

use super::bits::{check_len, deciseconds_rfc3339, BitReader, DecodeError, DecodeErrorKind, IdSet};

/// Number of purposes a TC string has bits for.
pub const PURPOSE_BITS: usize = 24;
/// Most vendor ids all publisher restrictions of one string may expand to (512 KiB as
/// `u16`). Real strings restrict a few purposes for at most every registered vendor
/// (about 1 200 today), so 24 purposes × 3 types × 3 600 vendors still fit.
pub const MAX_RESTRICTION_IDS: usize = 262_144;

/// Number of special features a TC string has bits for.
pub const SPECIAL_FEATURE_BITS: usize = 12;

/// What a publisher restriction requires of the listed vendors for a purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RestrictionType {
    /// 0: purpose flatly not allowed.
    NotAllowed,
    /// 1: consent required.
    RequireConsent,
    /// 2: legitimate interest required.
    RequireLegitimateInterest,
    /// 3: undefined in the spec, kept as read.
    Undefined,
}

impl RestrictionType {
    fn from_bits(v: u8) -> RestrictionType {
        match v {
            0 => RestrictionType::NotAllowed,
            1 => RestrictionType::RequireConsent,
            2 => RestrictionType::RequireLegitimateInterest,
            _ => RestrictionType::Undefined,
        }
    }

    /// The 2-bit wire value.
    pub fn value(self) -> u8 {
        self as u8
    }
}

/// One publisher restriction: a purpose, a restriction type and the vendors it binds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublisherRestriction {
    pub purpose_id: u8,
    pub restriction_type: RestrictionType,
    /// Sorted, deduplicated vendor ids.
    pub vendor_ids: Vec<u16>,
}

/// The publisher-TC segment (segment type 3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PublisherTc {
    /// Purposes (1-based) the publisher has consent for.
    pub consents: Vec<u8>,
    /// Purposes (1-based) the publisher relies on legitimate interest for.
    pub legitimate_interests: Vec<u8>,
    pub num_custom_purposes: u8,
    /// Custom purposes (1-based) with consent.
    pub custom_consents: Vec<u8>,
    /// Custom purposes (1-based) under legitimate interest.
    pub custom_legitimate_interests: Vec<u8>,
}

/// A decoded TC string. Id sets are sorted, 1-based numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcString {
    pub version: u8,
    /// Deciseconds since the Unix epoch, as on the wire.
    pub created_ds: u64,
    /// Deciseconds since the Unix epoch, as on the wire.
    pub last_updated_ds: u64,
    pub cmp_id: u16,
    pub cmp_version: u16,
    pub consent_screen: u8,
    /// Two upper-case letters (ISO 639-1).
    pub consent_language: String,
    pub vendor_list_version: u16,
    pub policy_version: u8,
    pub is_service_specific: bool,
    /// `UseNonStandardTexts` in TCF 2.2; `@iabtcf/core` still calls it this.
    pub use_non_standard_stacks: bool,
    pub special_feature_optins: Vec<u8>,
    pub purpose_consents: Vec<u8>,
    pub purpose_legitimate_interests: Vec<u8>,
    pub purpose_one_treatment: bool,
    /// Two upper-case letters (ISO 3166-1 alpha-2), `AA` when unknown.
    pub publisher_country_code: String,
    pub vendor_consents: Vec<u16>,
    pub vendor_legitimate_interests: Vec<u16>,
    pub publisher_restrictions: Vec<PublisherRestriction>,
    /// Disclosed-vendors segment (type 1), when present.
    pub vendors_disclosed: Option<Vec<u16>>,
    /// Allowed-vendors segment (type 2), when present.
    pub vendors_allowed: Option<Vec<u16>>,
    /// Publisher-TC segment (type 3), when present.
    pub publisher_tc: Option<PublisherTc>,
}

/// 1-based numbers of the set bits.
fn set_numbers(bits: &[bool]) -> Vec<u8> {
    bits.iter()
        .enumerate()
        .filter(|(_, &b)| b)
        // Callers pass at most 64 bits, so the number fits in a u8.
        .map(|(i, _)| (i + 1) as u8)
        .collect()
}

impl TcString {
    /// Parses a TC string: `core[.segment]*`, base64url segments.
    pub fn parse(text: &str) -> Result<TcString, DecodeError> {
        let text = text.trim();
        check_len(text)?;
        let mut segments = text.split('.');
        let mut base = 0;
        // `split` yields at least one item, possibly empty (checked by the reader).
        let core_text = segments.next().unwrap_or("");
        let mut r = BitReader::from_base64url(core_text, "core", base)?;
        let mut tc = Self::parse_core(&mut r).map_err(|e| e.within("core"))?;
        base += core_text.len() + 1;
        for seg in segments {
            let mut r = BitReader::from_base64url(seg, "segment", base)?;
            let at = r.pos();
            let seg_type = r.u8(3, "segmentType").map_err(|e| e.within("segment"))?;
            match seg_type {
                1 => {
                    let ids = r
                        .vendor_section("vendorsDisclosed")
                        .map_err(|e| e.within("disclosedVendors"))?;
                    tc.vendors_disclosed = Some(ids);
                }
                2 => {
                    let ids = r
                        .vendor_section("vendorsAllowed")
                        .map_err(|e| e.within("allowedVendors"))?;
                    tc.vendors_allowed = Some(ids);
                }
                3 => {
                    let p =
                        Self::parse_publisher_tc(&mut r).map_err(|e| e.within("publisherTC"))?;
                    tc.publisher_tc = Some(p);
                }
                other => {
                    return Err(DecodeError::invalid(
                        "segment.segmentType",
                        at,
                        format!("unknown segment type {other} (segment at char {base})"),
                    ))
                }
            }
            base += seg.len() + 1;
        }
        Ok(tc)
    }

    fn parse_core(r: &mut BitReader) -> Result<TcString, DecodeError> {
        let version = r.u8(6, "version")?;
        if version != 2 {
            return Err(DecodeError::new(
                "version",
                0,
                DecodeErrorKind::UnsupportedVersion {
                    found: u64::from(version),
                },
            ));
        }
        let created_ds = r.deciseconds("created")?;
        let last_updated_ds = r.deciseconds("lastUpdated")?;
        let cmp_id = r.u16(12, "cmpId")?;
        let cmp_version = r.u16(12, "cmpVersion")?;
        let consent_screen = r.u8(6, "consentScreen")?;
        let consent_language = r.letters2("consentLanguage")?;
        let vendor_list_version = r.u16(12, "vendorListVersion")?;
        let policy_version = r.u8(6, "policyVersion")?;
        let is_service_specific = r.bool("isServiceSpecific")?;
        let use_non_standard_stacks = r.bool("useNonStandardStacks")?;
        let special_feature_optins =
            set_numbers(&r.bools(SPECIAL_FEATURE_BITS, "specialFeatureOptins")?);
        let purpose_consents = set_numbers(&r.bools(PURPOSE_BITS, "purposeConsents")?);
        let purpose_legitimate_interests =
            set_numbers(&r.bools(PURPOSE_BITS, "purposeLegitimateInterests")?);
        let purpose_one_treatment = r.bool("purposeOneTreatment")?;
        let publisher_country_code = r.letters2("publisherCountryCode")?;
        let vendor_consents = r.vendor_section("vendorConsents")?;
        let vendor_legitimate_interests = r.vendor_section("vendorLegitimateInterests")?;
        let num_restrictions = r.u16(12, "publisherRestrictions")?;
        let mut publisher_restrictions = Vec::new();
        let mut total_ids = 0usize;
        for _ in 0..num_restrictions {
            let at = r.pos();
            let purpose_id = r.u8(6, "publisherRestrictions.purposeId")?;
            let restriction_type =
                RestrictionType::from_bits(r.u8(2, "publisherRestrictions.restrictionType")?);
            let count = r.u16(12, "publisherRestrictions.numEntries")?;
            let mut set = IdSet::new();
            for _ in 0..count {
                r.tcf_range_entry(&mut set, "publisherRestrictions.vendorIds")?;
            }
            let vendor_ids = set.to_vec();
            total_ids += vendor_ids.len();
            if total_ids > MAX_RESTRICTION_IDS {
                // 33 bits can claim 65 535 vendors; thousands of such entries would
                // otherwise expand to gigabytes.
                return Err(DecodeError::invalid(
                    "publisherRestrictions",
                    at,
                    format!("more than {MAX_RESTRICTION_IDS} vendor ids in total"),
                ));
            }
            publisher_restrictions.push(PublisherRestriction {
                purpose_id,
                restriction_type,
                vendor_ids,
            });
        }
        Ok(TcString {
            version,
            created_ds,
            last_updated_ds,
            cmp_id,
            cmp_version,
            consent_screen,
            consent_language,
            vendor_list_version,
            policy_version,
            is_service_specific,
            use_non_standard_stacks,
            special_feature_optins,
            purpose_consents,
            purpose_legitimate_interests,
            purpose_one_treatment,
            publisher_country_code,
            vendor_consents,
            vendor_legitimate_interests,
            publisher_restrictions,
            vendors_disclosed: None,
            vendors_allowed: None,
            publisher_tc: None,
        })
    }

    fn parse_publisher_tc(r: &mut BitReader) -> Result<PublisherTc, DecodeError> {
        let consents = set_numbers(&r.bools(PURPOSE_BITS, "publisherConsents")?);
        let legitimate_interests =
            set_numbers(&r.bools(PURPOSE_BITS, "publisherLegitimateInterests")?);
        let n = r.u8(6, "numCustomPurposes")?;
        let custom_consents = set_numbers(&r.bools(usize::from(n), "publisherCustomConsents")?);
        let custom_legitimate_interests =
            set_numbers(&r.bools(usize::from(n), "publisherCustomLegitimateInterests")?);
        Ok(PublisherTc {
            consents,
            legitimate_interests,
            num_custom_purposes: n,
            custom_consents,
            custom_legitimate_interests,
        })
    }

    /// The user consented to purpose `n` (1-based).
    pub fn purpose_consent(&self, n: u8) -> bool {
        self.purpose_consents.binary_search(&n).is_ok()
    }

    /// Legitimate interest was established for purpose `n` (1-based).
    pub fn purpose_legitimate_interest(&self, n: u8) -> bool {
        self.purpose_legitimate_interests.binary_search(&n).is_ok()
    }

    /// The user consented to vendor `id`.
    pub fn vendor_consent(&self, id: u16) -> bool {
        self.vendor_consents.binary_search(&id).is_ok()
    }

    /// Legitimate interest was established for vendor `id`.
    pub fn vendor_legitimate_interest(&self, id: u16) -> bool {
        self.vendor_legitimate_interests.binary_search(&id).is_ok()
    }

    /// The user opted in to special feature `n` (1 = precise geolocation, 2 = device scan).
    pub fn special_feature_optin(&self, n: u8) -> bool {
        self.special_feature_optins.binary_search(&n).is_ok()
    }

    /// When the string was created, RFC 3339 with milliseconds.
    pub fn created(&self) -> String {
        deciseconds_rfc3339(self.created_ds)
    }

    /// When the string was last updated, RFC 3339 with milliseconds.
    pub fn last_updated(&self) -> String {
        deciseconds_rfc3339(self.last_updated_ds)
    }

    /// The decoded fields in wire order under `@iabtcf/core`'s names (absent segments
    /// as empty sets).
    pub fn fields(&self) -> Vec<(&'static str, Value)> {
        let p = self.publisher_tc.clone().unwrap_or_default();
        vec![
            ("version", json!(self.version)),
            ("created", json!(self.created())),
            ("lastUpdated", json!(self.last_updated())),
            ("cmpId", json!(self.cmp_id)),
            ("cmpVersion", json!(self.cmp_version)),
            ("consentScreen", json!(self.consent_screen)),
            ("consentLanguage", json!(self.consent_language)),
            ("vendorListVersion", json!(self.vendor_list_version)),
            ("policyVersion", json!(self.policy_version)),
            ("isServiceSpecific", json!(self.is_service_specific)),
            ("useNonStandardStacks", json!(self.use_non_standard_stacks)),
            ("specialFeatureOptins", json!(self.special_feature_optins)),
            ("purposeConsents", json!(self.purpose_consents)),
            (
                "purposeLegitimateInterests",
                json!(self.purpose_legitimate_interests),
            ),
            ("purposeOneTreatment", json!(self.purpose_one_treatment)),
            ("publisherCountryCode", json!(self.publisher_country_code)),
            ("vendorConsents", json!(self.vendor_consents)),
            (
                "vendorLegitimateInterests",
                json!(self.vendor_legitimate_interests),
            ),
            (
                "publisherRestrictions",
                self.publisher_restrictions
                    .iter()
                    .map(|r| {
                        json!({
                            "purposeId": r.purpose_id,
                            "restrictionType": r.restriction_type.value(),
                            "vendorIds": r.vendor_ids,
                        })
                    })
                    .collect(),
            ),
            (
                "vendorsDisclosed",
                json!(self.vendors_disclosed.clone().unwrap_or_default()),
            ),
            (
                "vendorsAllowed",
                json!(self.vendors_allowed.clone().unwrap_or_default()),
            ),
            ("publisherConsents", json!(p.consents)),
            (
                "publisherLegitimateInterests",
                json!(p.legitimate_interests),
            ),
            ("numCustomPurposes", json!(p.num_custom_purposes)),
            ("publisherCustomConsents", json!(p.custom_consents)),
            (
                "publisherCustomLegitimateInterests",
                json!(p.custom_legitimate_interests),
            ),
        ]
    }

    /// The decoded fields as a JSON object (see [`TcString::fields`]).
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.fields()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    }
}

/// Test-only encoder, the inverse of [`TcString::parse`], for round-trip tests.
#[cfg(test)]
pub(crate) mod encode {
    use super::*;
    use crate::consent::bits::writer::BitWriter;

    fn vendors(w: &mut BitWriter, ids: &[u16], ranges: bool) {
        let max = ids.iter().copied().max().unwrap_or(0);
        w.int(16, u64::from(max)).bool(ranges);
        if ranges {
            w.int(12, ids.len() as u64);
            for &id in ids {
                w.bool(false).int(16, u64::from(id));
            }
        } else {
            w.bitfield(usize::from(max), ids);
        }
    }

    fn numbers(w: &mut BitWriter, n: usize, set: &[u8]) {
        let ids: Vec<u16> = set.iter().map(|&v| u16::from(v)).collect();
        w.bitfield(n, &ids);
    }

    /// Encodes `tc`; vendor sections as ranges when `ranges`, else as bit fields.
    pub(crate) fn encode(tc: &TcString, ranges: bool) -> String {
        let mut w = BitWriter::default();
        w.int(6, u64::from(tc.version))
            .int(36, tc.created_ds)
            .int(36, tc.last_updated_ds)
            .int(12, u64::from(tc.cmp_id))
            .int(12, u64::from(tc.cmp_version))
            .int(6, u64::from(tc.consent_screen))
            .letters(&tc.consent_language)
            .int(12, u64::from(tc.vendor_list_version))
            .int(6, u64::from(tc.policy_version))
            .bool(tc.is_service_specific)
            .bool(tc.use_non_standard_stacks);
        numbers(&mut w, SPECIAL_FEATURE_BITS, &tc.special_feature_optins);
        numbers(&mut w, PURPOSE_BITS, &tc.purpose_consents);
        numbers(&mut w, PURPOSE_BITS, &tc.purpose_legitimate_interests);
        w.bool(tc.purpose_one_treatment)
            .letters(&tc.publisher_country_code);
        vendors(&mut w, &tc.vendor_consents, ranges);
        vendors(&mut w, &tc.vendor_legitimate_interests, !ranges);
        w.int(12, tc.publisher_restrictions.len() as u64);
        for r in &tc.publisher_restrictions {
            w.int(6, u64::from(r.purpose_id))
                .int(2, u64::from(r.restriction_type.value()))
                .int(12, r.vendor_ids.len() as u64);
            for &id in &r.vendor_ids {
                w.bool(false).int(16, u64::from(id));
            }
        }
        let mut out = w.base64url();
        for (t, set) in [(1u64, &tc.vendors_disclosed), (2, &tc.vendors_allowed)] {
            if let Some(ids) = set {
                let mut w = BitWriter::default();
                w.int(3, t);
                vendors(&mut w, ids, ranges);
                out.push('.');
                out.push_str(&w.base64url());
            }
        }
        if let Some(p) = &tc.publisher_tc {
            let mut w = BitWriter::default();
            w.int(3, 3);
            numbers(&mut w, PURPOSE_BITS, &p.consents);
            numbers(&mut w, PURPOSE_BITS, &p.legitimate_interests);
            w.int(6, u64::from(p.num_custom_purposes));
            numbers(
                &mut w,
                usize::from(p.num_custom_purposes),
                &p.custom_consents,
            );
            numbers(
                &mut w,
                usize::from(p.num_custom_purposes),
                &p.custom_legitimate_interests,
            );
            out.push('.');
            out.push_str(&w.base64url());
        }
        out
    }

    /// A plausible TC string: consent to purposes 1–4 for vendors 2, 6, 8 and 755.
    pub(crate) fn sample() -> TcString {
        TcString {
            version: 2,
            created_ds: 15_778_368_000, // 2020-01-01
            last_updated_ds: 17_356_896_000,
            cmp_id: 7,
            cmp_version: 1,
            consent_screen: 3,
            consent_language: "EN".into(),
            vendor_list_version: 48,
            policy_version: 4,
            is_service_specific: true,
            use_non_standard_stacks: false,
            special_feature_optins: vec![1],
            purpose_consents: vec![1, 2, 3, 4],
            purpose_legitimate_interests: vec![2, 7, 10],
            purpose_one_treatment: false,
            publisher_country_code: "DE".into(),
            vendor_consents: vec![2, 6, 8, 755],
            vendor_legitimate_interests: vec![2, 8],
            publisher_restrictions: vec![],
            vendors_disclosed: None,
            vendors_allowed: None,
            publisher_tc: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::encode::{encode, sample};
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sample_round_trips_with_bitfields_and_ranges() {
        let tc = sample();
        for ranges in [false, true] {
            let s = encode(&tc, ranges);
            assert_eq!(TcString::parse(&s).unwrap(), tc, "{s}");
        }
    }

    #[test]
    fn helpers_answer_by_number() {
        let tc = TcString::parse(&encode(&sample(), false)).unwrap();
        assert!(tc.purpose_consent(1) && tc.purpose_consent(4));
        assert!(!tc.purpose_consent(5) && !tc.purpose_consent(0));
        assert!(tc.vendor_consent(755) && !tc.vendor_consent(754));
        assert!(tc.vendor_legitimate_interest(8));
        assert!(tc.purpose_legitimate_interest(10));
        assert!(tc.special_feature_optin(1) && !tc.special_feature_optin(2));
        assert_eq!(tc.created(), "2020-01-01T00:00:00.000Z");
    }

    #[test]
    fn all_segments_round_trip() {
        let mut tc = sample();
        tc.publisher_restrictions = vec![
            PublisherRestriction {
                purpose_id: 2,
                restriction_type: RestrictionType::RequireConsent,
                vendor_ids: vec![6, 8],
            },
            PublisherRestriction {
                purpose_id: 7,
                restriction_type: RestrictionType::NotAllowed,
                vendor_ids: vec![755],
            },
        ];
        tc.vendors_disclosed = Some(vec![2, 6, 8, 12, 755]);
        tc.vendors_allowed = Some(vec![6]);
        tc.publisher_tc = Some(PublisherTc {
            consents: vec![1, 3],
            legitimate_interests: vec![2],
            num_custom_purposes: 3,
            custom_consents: vec![2],
            custom_legitimate_interests: vec![1, 3],
        });
        let parsed = TcString::parse(&encode(&tc, true)).unwrap();
        assert_eq!(parsed, tc);
        let j = parsed.to_json();
        assert_eq!(j["vendorsDisclosed"], json!([2, 6, 8, 12, 755]));
        assert_eq!(j["publisherCustomLegitimateInterests"], json!([1, 3]));
        assert_eq!(
            j["publisherRestrictions"][1],
            json!({"purposeId": 7, "restrictionType": 0, "vendorIds": [755]})
        );
    }

    #[test]
    fn json_has_every_iabtcf_field() {
        let j = TcString::parse(&encode(&sample(), false))
            .unwrap()
            .to_json();
        for key in [
            "version",
            "created",
            "lastUpdated",
            "cmpId",
            "cmpVersion",
            "consentScreen",
            "consentLanguage",
            "vendorListVersion",
            "policyVersion",
            "isServiceSpecific",
            "useNonStandardStacks",
            "specialFeatureOptins",
            "purposeConsents",
            "purposeLegitimateInterests",
            "purposeOneTreatment",
            "publisherCountryCode",
            "vendorConsents",
            "vendorLegitimateInterests",
            "publisherRestrictions",
            "vendorsDisclosed",
            "vendorsAllowed",
            "publisherConsents",
            "publisherLegitimateInterests",
            "publisherCustomConsents",
            "publisherCustomLegitimateInterests",
            "numCustomPurposes",
        ] {
            assert!(j.get(key).is_some(), "missing {key}");
        }
        assert_eq!(j["purposeConsents"], json!([1, 2, 3, 4]));
        assert_eq!(j["lastUpdated"], json!("2025-01-01T00:00:00.000Z"));
    }

    #[test]
    fn spec_example_core_fields() {
        // The core segment of the example TC string in the TCF v2 specification
        // (section "Example TC String" / the gdpr_consent macro example).
        let tc = TcString::parse("COvFyGBOvFyGBAbAAAENAPCAAOAAAAAAAAAAAEEUACCKAAA").unwrap();
        assert_eq!(tc.version, 2);
        assert_eq!(tc.cmp_id, 27);
        assert_eq!(tc.consent_language, "EN");
        assert_eq!(tc.vendor_list_version, 15);
        assert_eq!(tc.publisher_country_code, "AA");
        assert_eq!(tc.purpose_consents, vec![1, 2, 3]);
        assert_eq!(tc.vendor_consents, vec![2, 6, 8]);
        assert_eq!(tc.vendor_legitimate_interests, vec![2, 6, 8]);
        assert_eq!(tc.created_ds, tc.last_updated_ds);
    }

    #[test]
    fn wrong_version_is_named() {
        let mut tc = sample();
        tc.version = 1;
        let e = TcString::parse(&encode(&tc, false)).unwrap_err();
        assert_eq!(e.field, "core.version");
        assert_eq!(e.kind, DecodeErrorKind::UnsupportedVersion { found: 1 });
    }

    #[test]
    fn truncation_names_the_field() {
        let s = encode(&sample(), false);
        // 6+36+36 bits = 78: cutting at 13 characters (78 bits) stops before cmpId.
        let e = TcString::parse(&s[..13]).unwrap_err();
        assert_eq!(e.field, "core.cmpId");
        assert_eq!(e.offset, 78);
        assert!(
            e.to_string().starts_with("core.cmpId at bit 78: truncated"),
            "{e}"
        );
    }

    #[test]
    fn malformed_strings_are_errors() {
        let s = encode(&sample(), false);
        for bad in [
            String::new(),
            ".".into(),
            format!("{s}."),
            format!("{s}.!!!!"),
            format!("{s}.gAAA"), // segment type 4
            s.replace('A', "*"),
        ] {
            assert!(TcString::parse(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn restriction_expansion_is_capped() {
        // The sample up to its restriction count, then 4095 restrictions each claiming
        // every vendor with one 33-bit range entry.
        let core = encode(&sample(), false);
        let mut r = BitReader::from_base64url(&core, "t", 0).unwrap();
        TcString::parse_core(&mut r).unwrap();
        let head_bits = r.pos() - 12;
        let mut r = BitReader::from_base64url(&core, "t", 0).unwrap();
        let mut w = crate::consent::bits::writer::BitWriter {
            bits: r.bools(head_bits, "head").unwrap(),
        };
        w.int(12, 4095);
        for _ in 0..4095 {
            w.int(6, 1)
                .int(2, 1)
                .int(12, 1)
                .bool(true)
                .int(16, 1)
                .int(16, 65535);
        }
        let e = TcString::parse(&w.base64url()).unwrap_err();
        assert_eq!(e.field, "core.publisherRestrictions");
        assert!(e.to_string().contains("vendor ids in total"), "{e}");
    }

    #[test]
    fn overlong_strings_are_refused_before_decoding() {
        let long = "C".repeat(crate::consent::MAX_CONSENT_STRING_LEN + 1);
        let e = TcString::parse(&long).unwrap_err();
        assert!(matches!(e.kind, DecodeErrorKind::TooLong { .. }), "{e}");
    }

    #[test]
    fn padding_is_tolerated() {
        let s = encode(&sample(), false);
        let padded = format!("{s}{}", "=".repeat((4 - s.len() % 4) % 4));
        assert_eq!(TcString::parse(&padded).unwrap(), sample());
    }

    fn arb_ids(max: u16) -> impl Strategy<Value = Vec<u16>> {
        proptest::collection::btree_set(1..=max, 0..20).prop_map(|s| s.into_iter().collect())
    }

    fn arb_numbers(max: u8) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::btree_set(1..=max, 0..8).prop_map(|s| s.into_iter().collect())
    }

    prop_compose! {
        fn arb_tc()(
            created in 0u64..(1 << 36), cmp_id in 0u16..4096, screen in 0u8..64,
            lang in "[A-Z]{2}", cc in "[A-Z]{2}", flags in any::<[bool; 3]>(),
            sf in arb_numbers(12), pc in arb_numbers(24), pli in arb_numbers(24),
            vc in arb_ids(3000), vli in arb_ids(500), disclosed in proptest::option::of(arb_ids(900)),
            custom in 0u8..64,
            restrictions in proptest::collection::vec((1u8..64, 0u8..4, arb_ids(2000)), 0..4),
        ) -> TcString {
            let mut tc = sample();
            tc.created_ds = created;
            tc.cmp_id = cmp_id;
            tc.consent_screen = screen;
            tc.consent_language = lang;
            tc.publisher_country_code = cc;
            tc.is_service_specific = flags[0];
            tc.use_non_standard_stacks = flags[1];
            tc.purpose_one_treatment = flags[2];
            tc.special_feature_optins = sf;
            tc.purpose_consents = pc;
            tc.purpose_legitimate_interests = pli;
            tc.vendor_consents = vc;
            tc.vendor_legitimate_interests = vli;
            tc.vendors_disclosed = disclosed;
            tc.publisher_restrictions = restrictions
                .into_iter()
                .map(|(purpose_id, t, vendor_ids)| PublisherRestriction {
                    purpose_id,
                    restriction_type: RestrictionType::from_bits(t),
                    vendor_ids,
                })
                .collect();
            tc.publisher_tc = Some(PublisherTc {
                num_custom_purposes: custom,
                custom_consents: if custom > 0 { vec![custom] } else { vec![] },
                ..PublisherTc::default()
            });
            tc
        }
    }

    proptest! {
        #[test]
        fn encode_decode_round_trips(tc in arb_tc(), ranges in any::<bool>()) {
            prop_assert_eq!(TcString::parse(&encode(&tc, ranges)).unwrap(), tc);
        }

        #[test]
        fn random_text_never_panics(s in "[A-Za-z0-9_.=+-]{0,200}") {
            let _ = TcString::parse(&s);
        }

        #[test]
        fn random_bits_after_a_valid_header_never_panic(bits in proptest::collection::vec(any::<bool>(), 0..2000)) {
            let mut w = crate::consent::bits::writer::BitWriter::default();
            w.int(6, 2);
            w.bits.extend(bits);
            let _ = TcString::parse(&w.base64url());
        }
    }
}
