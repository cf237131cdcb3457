//! Reading `consentry.toml`: TOML → raw serde structs (with spans) → validated [`Case`].
//!
//! Two passes keep the error messages precise: serde with `deny_unknown_fields`
//! catches syntax and unknown keys (toml reports their position), then validation
//! checks each value's shape and points at its line through `Spanned`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::identifiers::validate_identifier;
use super::{
    App, Case, CaseMeta, Device, Identifier, IdentifierKind, IdentifierValue, ManualConsent,
    RuleSettings,
};
use crate::consent::{Decision, Purpose};
use crate::timestamp::Timestamp;
use crate::whole_file::{self, WholeFileError};

/// The largest case file read: ample for thousands of devices and their identifiers,
/// and a bound for a file that is no case file (`--case /dev/zero`).
pub const MAX_CASE_FILE_BYTES: u64 = 16 << 20;

/// A case file problem, with where it is.
#[derive(Debug, thiserror::Error)]
#[error(
    "{file}{at}: {key}{sep}{message}",
    at = if *line == 0 { String::new() } else { format!(":{line}:{column}") },
    sep = if key.is_empty() { "" } else { ": " }
)]
pub struct CaseError {
    pub file: String,
    /// 1-based; 0 when the problem is the file's, not a place in it.
    pub line: usize,
    pub column: usize,
    /// Dotted key path (`device[0].identifiers.imei`), empty when unknown.
    pub key: String,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    case: Option<RawMeta>,
    app: Option<RawApp>,
    #[serde(default)]
    device: Vec<RawDevice>,
    #[serde(default)]
    consent: Vec<RawConsent>,
    rules: Option<RawRules>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMeta {
    id: Option<String>,
    title: Option<String>,
    timezone: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApp {
    name: Option<String>,
    package: Option<String>,
    #[serde(default)]
    first_party: Vec<Spanned<String>>,
    #[serde(default)]
    unknown_third_party_purposes: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevice {
    id: Spanned<String>,
    #[serde(default)]
    addresses: Vec<Spanned<String>>,
    proxy_user: Option<String>,
    #[serde(default)]
    identifiers: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConsent {
    device: Spanned<String>,
    at: Spanned<toml::Value>,
    decision: Spanned<String>,
    #[serde(default)]
    purposes: Vec<Spanned<String>>,
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    grace_ms: Option<Spanned<i64>>,
    frequency_per_minute: Option<Spanned<i64>>,
    flag_infrastructure: Option<bool>,
    flag_platform: Option<bool>,
}

/// Reads and validates a case file from disk.
pub fn load(path: &Path) -> Result<Case, CaseError> {
    load_text(path).map(|(case, _)| case)
}

/// Reads and validates a case file from disk, with the SHA-256 of the bytes parsed
/// (what a case store records of the case file a run judged by).
pub fn load_hashed(path: &Path) -> Result<(Case, [u8; 32]), CaseError> {
    use sha2::{Digest, Sha256};
    let (case, text) = load_text(path)?;
    Ok((case, Sha256::digest(text.as_bytes()).into()))
}

/// Reads and validates a case file from disk, with the text parsed (what `init
/// --from` copies, so the copy is the file that was checked).
pub fn load_text(path: &Path) -> Result<(Case, String), CaseError> {
    let file = path.display().to_string();
    let text = whole_file::read_text(path, MAX_CASE_FILE_BYTES).map_err(|e| {
        let (line, column) = match e {
            WholeFileError::NotText { line, column, .. } => (line, column),
            _ => (0, 0),
        };
        CaseError {
            file: file.clone(),
            line,
            column,
            key: String::new(),
            message: format!("case file {e}"),
        }
    })?;
    let case = parse(&text, &file)?;
    Ok((case, text))
}

/// Parses and validates case-file text; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<Case, CaseError> {
    let at = |span: std::ops::Range<usize>, key: String, message: String| {
        let (line, column) = line_col(text, span.start);
        CaseError {
            file: file.to_string(),
            line,
            column,
            key,
            message,
        }
    };
    let raw: RawCase = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        at(span, String::new(), e.message().trim().to_string())
    })?;

    let meta = raw.case.map_or_else(CaseMeta::default, |m| CaseMeta {
        id: m.id.unwrap_or_default(),
        title: m.title.unwrap_or_default(),
        timezone: m.timezone,
    });

    let mut app = App::default();
    if let Some(raw_app) = raw.app {
        app.name = raw_app.name.unwrap_or_default();
        app.package = raw_app.package.unwrap_or_default();
        for (i, d) in raw_app.first_party.iter().enumerate() {
            let domain = d
                .get_ref()
                .trim()
                .trim_end_matches('.')
                .to_ascii_lowercase();
            if !is_domain(&domain) {
                return Err(at(
                    d.span(),
                    format!("app.first_party[{i}]"),
                    format!(
                        "{:?} is not a domain name (write e.g. \"example.com\")",
                        d.get_ref()
                    ),
                ));
            }
            app.first_party.push(domain);
        }
        for (i, p) in raw_app.unknown_third_party_purposes.iter().enumerate() {
            let purpose = parse_purpose(p.get_ref()).ok_or_else(|| {
                at(
                    p.span(),
                    format!("app.unknown_third_party_purposes[{i}]"),
                    unknown_purpose(p.get_ref()),
                )
            })?;
            app.unknown_third_party_purposes.push(purpose);
        }
    }

    let mut devices: Vec<Device> = Vec::new();
    for (i, rd) in raw.device.into_iter().enumerate() {
        let id = rd.id.get_ref().trim().to_string();
        if id.is_empty() || id == "unknown" {
            return Err(at(
                rd.id.span(),
                format!("device[{i}].id"),
                "a device needs a non-empty id other than \"unknown\"".into(),
            ));
        }
        if devices.iter().any(|d| d.id == id) {
            return Err(at(
                rd.id.span(),
                format!("device[{i}].id"),
                format!("device id {id:?} is used twice"),
            ));
        }
        let mut addresses = Vec::new();
        for (j, a) in rd.addresses.iter().enumerate() {
            let text = a.get_ref().trim();
            if !is_address(text) {
                return Err(at(
                    a.span(),
                    format!("device[{i}].addresses[{j}]"),
                    format!("{text:?} is not an IP address, CIDR range or MAC address"),
                ));
            }
            addresses.push(text.to_ascii_lowercase());
        }
        let mut identifiers = Vec::new();
        let mut entries: Vec<_> = rd.identifiers.into_iter().collect();
        entries.sort_by_key(|(k, _)| k.span().start);
        for (key, value) in entries {
            let key_path = format!("device[{i}].identifiers.{}", key.get_ref());
            if key.get_ref() == "custom" {
                let table = value.get_ref().as_table().ok_or_else(|| {
                    at(
                        value.span(),
                        key_path.clone(),
                        "custom identifiers are a table: custom = { name = \"value\" }".into(),
                    )
                })?;
                for (name, v) in table {
                    let Some(text) = v.as_str() else {
                        return Err(at(
                            value.span(),
                            format!("{key_path}.{name}"),
                            "a custom identifier is a string".into(),
                        ));
                    };
                    if text.trim().is_empty() || !is_custom_name(name) {
                        return Err(at(
                            value.span(),
                            format!("{key_path}.{name}"),
                            "a custom identifier needs a name of letters, digits, '_' or '-' and a non-empty value".into(),
                        ));
                    }
                    identifiers.push(Identifier {
                        kind: IdentifierKind::Custom(name.clone()),
                        value: IdentifierValue::Text(text.to_string()),
                    });
                }
                continue;
            }
            let kind = IdentifierKind::from_key(key.get_ref()).ok_or_else(|| {
                at(
                    key.span(),
                    key_path.clone(),
                    format!(
                        "unknown identifier type; expected one of {}, custom",
                        IdentifierKind::BUILTIN.map(|k| k.key()).join(", ")
                    ),
                )
            })?;
            let value = validate_identifier(&kind, value.get_ref())
                .map_err(|message| at(value.span(), key_path.clone(), message))?;
            identifiers.push(Identifier { kind, value });
        }
        devices.push(Device {
            id,
            addresses,
            proxy_user: rd.proxy_user,
            identifiers,
        });
    }

    let mut consent = Vec::new();
    for (i, rc) in raw.consent.into_iter().enumerate() {
        let device = rc.device.get_ref().trim().to_string();
        if !devices.iter().any(|d| d.id == device) {
            return Err(at(
                rc.device.span(),
                format!("consent[{i}].device"),
                format!("no [[device]] has id {device:?}"),
            ));
        }
        let at_time = match rc.at.get_ref() {
            toml::Value::String(s) => Timestamp::parse_rfc3339(s).map_err(|e| e.to_string()),
            toml::Value::Datetime(d) if d.offset.is_some() && d.time.is_some() => {
                Timestamp::parse_rfc3339(&d.to_string()).map_err(|e| e.to_string())
            }
            _ => Err(
                "a time with date, time and UTC offset, e.g. \"2026-11-28T10:15:30.250Z\"".into(),
            ),
        }
        .map_err(|m| at(rc.at.span(), format!("consent[{i}].at"), m))?;
        let decision = match rc.decision.get_ref().as_str() {
            "granted" => Decision::Granted,
            "refused" => Decision::Refused,
            "withdrawn" => Decision::Withdrawn,
            other => {
                return Err(at(
                    rc.decision.span(),
                    format!("consent[{i}].decision"),
                    format!("{other:?} is not a decision; expected granted, refused or withdrawn"),
                ))
            }
        };
        let mut purposes = Vec::new();
        for (j, p) in rc.purposes.iter().enumerate() {
            let purpose = parse_purpose(p.get_ref()).ok_or_else(|| {
                at(
                    p.span(),
                    format!("consent[{i}].purposes[{j}]"),
                    unknown_purpose(p.get_ref()),
                )
            })?;
            if !purposes.contains(&purpose) {
                purposes.push(purpose);
            }
        }
        purposes.sort();
        consent.push(ManualConsent {
            device,
            at: at_time,
            decision,
            purposes,
            note: rc.note,
        });
    }

    let mut rules = RuleSettings::default();
    if let Some(r) = raw.rules {
        if let Some(g) = r.grace_ms {
            if !(0..=3_600_000).contains(g.get_ref()) {
                return Err(at(
                    g.span(),
                    "rules.grace_ms".into(),
                    "must be 0 to 3600000 ms".into(),
                ));
            }
            rules.grace_ms = *g.get_ref();
        }
        if let Some(f) = r.frequency_per_minute {
            let n = u32::try_from(*f.get_ref())
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    at(
                        f.span(),
                        "rules.frequency_per_minute".into(),
                        "must be a whole number ≥ 1".into(),
                    )
                })?;
            rules.frequency_per_minute = n;
        }
        if let Some(b) = r.flag_infrastructure {
            rules.flag_infrastructure = b;
        }
        if let Some(b) = r.flag_platform {
            rules.flag_platform = b;
        }
    }

    Ok(Case {
        meta,
        app,
        devices,
        consent,
        rules,
    })
}

fn parse_purpose(text: &str) -> Option<Purpose> {
    Purpose::parse(text.trim())
}

fn unknown_purpose(text: &str) -> String {
    format!(
        "{text:?} is not a purpose; expected one of {}",
        Purpose::ALL.map(|p| p.as_str()).join(", ")
    )
}

/// 1-based line and column of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

fn is_domain(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 253
        && d.contains('.')
        && d.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn is_custom_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn is_address(text: &str) -> bool {
    if text.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    if let Some((ip, bits)) = text.split_once('/') {
        return match (ip.parse::<std::net::IpAddr>(), bits.parse::<u8>()) {
            (Ok(std::net::IpAddr::V4(_)), Ok(b)) => b <= 32,
            (Ok(std::net::IpAddr::V6(_)), Ok(b)) => b <= 128,
            _ => false,
        };
    }
    super::identifiers::parse_mac(text).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[case]
id = "2026-11-28-com.example.shop"
title = "Example Shop"
timezone = "Asia/Shanghai"

[app]
name = "Example Shop"
package = "com.example.shop"
first_party = ["example-shop.com", "ExShop-CDN.net"]

[[device]]
id = "pixel7"
addresses = ["192.168.50.23", "fd00::23", "10.0.0.0/24"]
proxy_user = "pixel7"
[device.identifiers]
advertising_id = "38400000-8cf0-11bd-b23e-10b96e40000d"
android_id = "9774d56d682e549c"
imei = "490154203237518"
mac = "02:00:00:44:55:66"
phone = "+8613800138000"
email = "tester@example.org"
location = { lat = 31.230416, lon = 121.473701 }
custom = { user_name = "Zhang San" }

[[consent]]
device = "pixel7"
at = "2026-11-28T10:15:30.250Z"
decision = "refused"
purposes = ["advertising", "analytics"]
note = "tapped Disagree"

[[consent]]
device = "pixel7"
at = 2026-11-28T18:16:00+08:00
decision = "granted"

[rules]
grace_ms = 500
frequency_per_minute = 10
"#;

    fn err(text: &str) -> CaseError {
        parse(text, "c.toml").expect_err("should fail")
    }

    #[test]
    fn a_case_file_is_read_as_parsed_and_within_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.toml");
        std::fs::write(&good, GOOD).unwrap();
        let (case, text) = load_text(&good).unwrap();
        assert_eq!(text, GOOD);
        assert_eq!(case.meta.id, "2026-11-28-com.example.shop");

        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, b"[case]\nid = \"\xff\"\n").unwrap();
        let e = load(&bad).unwrap_err();
        assert_eq!((e.line, e.column), (2, 7));
        assert!(
            e.to_string()
                .starts_with(&format!("{}:2:7: case file not UTF-8", bad.display())),
            "{e}"
        );

        let big = dir.path().join("big.toml");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(MAX_CASE_FILE_BYTES + 1).unwrap();
        let e = load(&big).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("{}: case file larger than {MAX_CASE_FILE_BYTES} bytes, the limit for this kind of file", big.display())
        );
        #[cfg(unix)]
        assert!(load(Path::new("/dev/zero"))
            .unwrap_err()
            .message
            .contains("larger than"));
    }

    #[test]
    fn reads_the_design_example() {
        let case = parse(GOOD, "c.toml").unwrap();
        assert_eq!(case.meta.id, "2026-11-28-com.example.shop");
        assert_eq!(case.app.first_party, ["example-shop.com", "exshop-cdn.net"]);
        let d = &case.devices[0];
        assert_eq!(d.identifiers.len(), 8);
        assert_eq!(d.identifiers[0].kind, IdentifierKind::AdvertisingId);
        assert_eq!(
            d.identifiers[7].kind,
            IdentifierKind::Custom("user_name".into())
        );
        assert_eq!(
            d.identifiers[6].value,
            IdentifierValue::Location {
                lat: 31.230416,
                lon: 121.473701
            }
        );
        assert_eq!(case.consent.len(), 2);
        assert_eq!(
            case.consent[0].purposes,
            [Purpose::Advertising, Purpose::Analytics]
        );
        assert_eq!(
            case.consent[1].at.to_string(),
            "2026-11-28T10:16:00.000000Z"
        );
        assert!(case.consent[1].purposes.is_empty());
        assert_eq!(case.rules.grace_ms, 500);
        assert_eq!(case.rules.frequency_per_minute, 10);
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let e = err("[case]\nid = \"x\"\ncolour = \"red\"\n");
        assert_eq!(e.line, 3, "{e}");
        assert!(e.message.contains("colour"), "{e}");
    }

    #[test]
    fn bad_imei_names_line_and_key() {
        let text = "[[device]]\nid = \"a\"\n[device.identifiers]\nimei = \"490154203237517\"\n";
        let e = err(text);
        assert_eq!(
            (e.line, e.key.as_str()),
            (4, "device[0].identifiers.imei"),
            "{e}"
        );
        assert!(e.message.contains("Luhn"), "{e}");
        assert!(e.to_string().starts_with("c.toml:4:"), "{e}");
    }

    #[test]
    fn short_mac_is_rejected() {
        let e = err("[[device]]\nid = \"a\"\n[device.identifiers]\nmac = \"02:00:00:44:55\"\n");
        assert_eq!(e.key, "device[0].identifiers.mac");
    }

    #[test]
    fn bad_time_decision_purpose_and_device() {
        let base = "[[device]]\nid = \"a\"\n";
        let e = err(&format!(
            "{base}[[consent]]\ndevice = \"a\"\nat = \"yesterday\"\ndecision = \"granted\"\n"
        ));
        assert_eq!((e.key.as_str(), e.line), ("consent[0].at", 5), "{e}");
        let e = err(&format!("{base}[[consent]]\ndevice = \"a\"\nat = \"2026-01-01T00:00:00Z\"\ndecision = \"maybe\"\n"));
        assert_eq!(e.key, "consent[0].decision");
        let e = err(&format!("{base}[[consent]]\ndevice = \"a\"\nat = \"2026-01-01T00:00:00Z\"\ndecision = \"granted\"\npurposes = [\"ads\"]\n"));
        assert_eq!(e.key, "consent[0].purposes[0]");
        let e = err(&format!("{base}[[consent]]\ndevice = \"b\"\nat = \"2026-01-01T00:00:00Z\"\ndecision = \"granted\"\n"));
        assert_eq!(e.key, "consent[0].device");
        let e = err(&format!(
            "{base}[[consent]]\ndevice = \"a\"\nat = 2026-01-01T00:00:00\ndecision = \"granted\"\n"
        ));
        assert_eq!(
            e.key, "consent[0].at",
            "a local time without offset is ambiguous"
        );
    }

    #[test]
    fn unknown_identifier_type_and_duplicate_device() {
        let e = err("[[device]]\nid = \"a\"\n[device.identifiers]\nshoe_size = \"42\"\n");
        assert!(e.message.contains("unknown identifier type"), "{e}");
        assert_eq!(e.line, 4);
        let e = err("[[device]]\nid = \"a\"\n[[device]]\nid = \"a\"\n");
        assert_eq!((e.key.as_str(), e.line), ("device[1].id", 4));
    }

    #[test]
    fn syntax_error_has_position() {
        let e = err("[case\nid = 1\n");
        assert_eq!(e.line, 1, "{e}");
    }

    #[test]
    fn bad_addresses_and_domains() {
        let e = err("[[device]]\nid = \"a\"\naddresses = [\"999.1.1.1\"]\n");
        assert_eq!(e.key, "device[0].addresses[0]");
        let e = err("[app]\nfirst_party = [\"https://x.com/\"]\n");
        assert_eq!(e.key, "app.first_party[0]");
    }
}
