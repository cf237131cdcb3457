//! `consentry decode STRING [--format json|table]`: decode a TC string, GPP string or
//! US Privacy string and print every field, like the IAB's own decoders.
//!
//! The kind is detected from the text: `1` followed by three of `Y`/`N`/`-` is US
//! Privacy; a `~`, or a first character `D` (GPP header type 3 in the top six bits),
//! is GPP; anything else is tried as a TC string. JSON is `{"type": …, "data": …}`
//! with the reference libraries' field names (see [`crate::consent::tcf`],
//! [`crate::consent::gpp`]).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use serde_json::{json, Value};

use crate::consent::gpp::{GppString, SectionData};
use crate::consent::tcf::TcString;
use crate::consent::usp::UsPrivacy;

/// Output format of `decode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Table,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The consent string: a TC string, a GPP string or a US Privacy string.
    pub string: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// An IAB Global Vendor List (`vendor-list.json`) to name vendors in the table.
    #[arg(long, env = "CONSENTRY_VENDOR_LIST")]
    pub vendor_list: Option<PathBuf>,
}

/// Largest vendor list file we read (the GVL is about 1 MB today).
const MAX_VENDOR_LIST_BYTES: u64 = 32 * 1024 * 1024;

/// Vendor id → name, from an IAB Global Vendor List.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VendorNames(BTreeMap<u64, String>);

impl VendorNames {
    /// Reads the `vendors` object of a GVL JSON document (`{"vendors": {"2": {"name": …}}}`).
    pub fn from_gvl_json(text: &str) -> anyhow::Result<VendorNames> {
        let v: Value = serde_json::from_str(text).context("vendor list is not JSON")?;
        let vendors = v
            .get("vendors")
            .and_then(Value::as_object)
            .context("vendor list has no \"vendors\" object")?;
        let names = vendors
            .iter()
            .filter_map(|(id, e)| {
                let name = e.get("name")?.as_str()?;
                Some((id.parse::<u64>().ok()?, name.to_string()))
            })
            .collect();
        Ok(VendorNames(names))
    }

    /// Reads a GVL file.
    pub fn load(path: &Path) -> anyhow::Result<VendorNames> {
        let text = crate::whole_file::read_text(path, MAX_VENDOR_LIST_BYTES)
            .with_context(|| format!("vendor list {}", path.display()))?;
        VendorNames::from_gvl_json(&text).with_context(|| format!("in {}", path.display()))
    }

    /// The name of vendor `id`, if listed.
    pub fn get(&self, id: u64) -> Option<&str> {
        self.0.get(&id).map(String::as_str)
    }
}

/// Which kind of consent string a text looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Tcf,
    Gpp,
    Usp,
}

/// Guesses the kind of consent string from its shape.
pub fn detect(text: &str) -> Kind {
    let t = text.trim();
    let b = t.as_bytes();
    let is_flag = |c: u8| matches!(c, b'Y' | b'N' | b'-' | b'y' | b'n');
    if b.len() == 4 && b[0] == b'1' && b[1..].iter().all(|&c| is_flag(c)) {
        Kind::Usp
    } else if t.contains('~') || t.starts_with('D') {
        Kind::Gpp
    } else if b.first() == Some(&b'1') && b.len() <= 4 {
        // Short strings starting with the US Privacy version: report its errors.
        Kind::Usp
    } else {
        Kind::Tcf
    }
}

/// A decoded consent string of any supported kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    Tcf(Box<TcString>),
    Gpp(GppString),
    Usp(UsPrivacy),
}

impl Decoded {
    /// Detects the kind of `text` and decodes it.
    pub fn parse(text: &str) -> anyhow::Result<Decoded> {
        Ok(match detect(text) {
            Kind::Usp => {
                Decoded::Usp(UsPrivacy::parse(text).context("not a valid US Privacy string")?)
            }
            Kind::Gpp => {
                let g = GppString::parse(text).context("not a valid GPP string")?;
                // Bad sections are shown as error entries beside the good ones; a
                // string with no good section at all is an error.
                let errors: Vec<String> = g.section_errors().map(ToString::to_string).collect();
                if !g.sections.is_empty() && errors.len() == g.sections.len() {
                    anyhow::bail!("not a valid GPP string: {}", errors.join("; "));
                }
                Decoded::Gpp(g)
            }
            Kind::Tcf => Decoded::Tcf(Box::new(
                TcString::parse(text).context("not a valid TC string")?,
            )),
        })
    }

    /// `{"type": "tcf"|"gpp"|"usp", "data": …}`.
    pub fn to_json(&self) -> Value {
        match self {
            Decoded::Tcf(tc) => json!({"type": "tcf", "data": tc.to_json()}),
            Decoded::Gpp(g) => json!({"type": "gpp", "data": g.to_json()}),
            Decoded::Usp(u) => json!({"type": "usp", "data": u}),
        }
    }

    /// One line per field in wire order, long id lists wrapped, purposes named, and
    /// vendors named when a vendor list is given.
    pub fn table(&self, vendors: Option<&VendorNames>) -> String {
        let mut out = String::new();
        match self {
            Decoded::Tcf(tc) => {
                out.push_str("TC string (IAB TCF v2)\n");
                for (k, v) in tc.fields() {
                    row(&mut out, k, &v, 0);
                    names(&mut out, k, &v, 0);
                    vendor_names(&mut out, k, &v, 0, vendors);
                }
            }
            Decoded::Gpp(g) => {
                out.push_str("GPP string (IAB Global Privacy Platform)\n");
                row(&mut out, "version", &json!(g.version), 0);
                row(&mut out, "sectionIds", &json!(g.section_ids), 0);
                for s in &g.sections {
                    let name = s.name.unwrap_or("unknown");
                    out.push_str(&format!("section {} ({name})\n", s.id));
                    if let SectionData::Raw(raw) = &s.data {
                        row(&mut out, "raw (not decoded)", &json!(raw), 2);
                    }
                    if let SectionData::Error { raw, error } = &s.data {
                        row(&mut out, "raw (malformed)", &json!(raw), 2);
                        row(&mut out, "error", &json!(error.to_string()), 2);
                    }
                    if let SectionData::Us(_) = &s.data {
                        out.push_str(US_LEGEND);
                    }
                    for (k, v) in s.fields() {
                        row(&mut out, k, &v, 2);
                        names(&mut out, k, &v, 2);
                        vendor_names(&mut out, k, &v, 2, vendors);
                    }
                }
            }
            Decoded::Usp(u) => {
                out.push_str("US Privacy string (IAB CCPA)\n");
                row(&mut out, "version", &json!(u.version), 0);
                row(&mut out, "notice", &json!(u.notice), 0);
                row(&mut out, "optOutSale", &json!(u.opt_out_sale), 0);
                row(&mut out, "lspaCovered", &json!(u.lspa_covered), 0);
            }
        }
        out
    }
}

/// Decodes `text` to `{"type": …, "data": …}`.
pub fn decode(text: &str) -> anyhow::Result<Value> {
    Decoded::parse(text).map(|d| d.to_json())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let d = Decoded::parse(&args.string)?;
    let vendors = args
        .vendor_list
        .as_deref()
        .map(VendorNames::load)
        .transpose()?;
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&d.to_json())?),
        Format::Table => write!(out, "{}", d.table(vendors.as_ref())),
    }
    .context("writing to stdout")?;
    Ok(ExitCode::SUCCESS)
}

/// Width the table is wrapped to.
const WIDTH: usize = 80;
/// Column where values start.
const KEY_WIDTH: usize = 38;

/// What the 2-bit values of the US sections mean.
const US_LEGEND: &str = "  (0 not applicable; opt-outs 1 opted out, 2 did not; notices 1 given,\n   2 not given; consents 1 no consent, 2 consent; Mspa* 1 yes, 2 no)\n";

/// TCF v2.2 purpose names (Global Vendor List v3), for the table.
const PURPOSES: [&str; 11] = [
    "Store and/or access information on a device",
    "Use limited data to select advertising",
    "Create profiles for personalised advertising",
    "Use profiles to select personalised advertising",
    "Create profiles to personalise content",
    "Use profiles to select personalised content",
    "Measure advertising performance",
    "Measure content performance",
    "Understand audiences through statistics or combinations of data",
    "Develop and improve services",
    "Use limited data to select content",
];

/// TCF special feature names, for the table.
const SPECIAL_FEATURES: [&str; 2] = [
    "Use precise geolocation data",
    "Actively scan device characteristics for identification",
];

/// Under a purpose or special-feature field, one line per set number with its name.
fn names(out: &mut String, key: &str, v: &Value, indent: usize) {
    let table: &[&str] = match key {
        "purposeConsents"
        | "purposeLegitimateInterests"
        | "publisherConsents"
        | "publisherLegitimateInterests"
        | "PurposeConsents"
        | "PurposeLegitimateInterests"
        | "PublisherConsents"
        | "PublisherLegitimateInterests" => &PURPOSES,
        "specialFeatureOptins" | "SpecialFeatureOptins" => &SPECIAL_FEATURES,
        _ => return,
    };
    for n in set_numbers(v) {
        let name = n
            .checked_sub(1)
            .and_then(|i| table.get(i))
            .copied()
            .unwrap_or("(not defined in TCF v2.2)");
        let line = format!("{}  {n:>3} {name}", " ".repeat(indent));
        out.extend(line.chars().take(WIDTH));
        out.push('\n');
    }
}

/// Under a vendor id field, one line per id the vendor list names.
fn vendor_names(
    out: &mut String,
    key: &str,
    v: &Value,
    indent: usize,
    vendors: Option<&VendorNames>,
) {
    let Some(vendors) = vendors else { return };
    let is_vendor_field = matches!(
        key,
        "vendorConsents"
            | "vendorLegitimateInterests"
            | "vendorsDisclosed"
            | "vendorsAllowed"
            | "VendorConsents"
            | "VendorLegitimateInterests"
            | "VendorsDisclosed"
            | "VendorsAllowed"
    );
    if !is_vendor_field {
        return;
    }
    for id in set_numbers(v) {
        if let Some(name) = vendors.get(id as u64) {
            let line = format!("{}  {id:>5} {name}", " ".repeat(indent));
            out.extend(line.chars().take(WIDTH));
            out.push('\n');
        }
    }
}

/// 1-based numbers of a field: an array of numbers, or cmpapi's boolean array.
fn set_numbers(v: &Value) -> Vec<usize> {
    let Some(a) = v.as_array() else {
        return Vec::new();
    };
    if a.iter().all(Value::is_boolean) {
        a.iter()
            .enumerate()
            .filter(|(_, b)| b.as_bool() == Some(true))
            .map(|(i, _)| i + 1)
            .collect()
    } else {
        a.iter()
            .filter_map(Value::as_u64)
            .filter_map(|n| usize::try_from(n).ok())
            .collect()
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) if a.iter().all(Value::is_boolean) => {
            // cmpapi's boolean arrays: show the 1-based numbers that are true.
            let on: Vec<String> = a
                .iter()
                .enumerate()
                .filter(|(_, b)| b.as_bool() == Some(true))
                .map(|(i, _)| (i + 1).to_string())
                .collect();
            if on.is_empty() {
                "(none)".into()
            } else {
                on.join(" ")
            }
        }
        Value::Array(a) if a.is_empty() => "(none)".into(),
        Value::Array(a) => a.iter().map(scalar).collect::<Vec<_>>().join(" "),
        Value::Object(m) => restriction(m).unwrap_or_else(|| v.to_string()),
        other => other.to_string(),
    }
}

/// A publisher restriction (`@iabtcf/core` or cmpapi names) in words, so it wraps.
fn restriction(m: &serde_json::Map<String, Value>) -> Option<String> {
    let purpose = m.get("purposeId").or_else(|| m.get("key"))?;
    let kind = m.get("restrictionType").or_else(|| m.get("type"))?;
    let ids = m.get("vendorIds").or_else(|| m.get("ids"))?;
    let kind = match kind.as_u64() {
        Some(0) => "not allowed",
        Some(1) => "requires consent",
        Some(2) => "requires legitimate interest",
        _ => "undefined restriction",
    };
    Some(format!(
        "purpose {purpose} {kind} for vendors {}",
        scalar(ids)
    ))
}

fn row(out: &mut String, key: &str, v: &Value, indent: usize) {
    // Publisher restrictions are objects: one line each.
    if let Some(a) = v.as_array().filter(|a| a.iter().any(Value::is_object)) {
        for (i, item) in a.iter().enumerate() {
            row(
                out,
                &format!("{key}[{i}]"),
                &Value::String(scalar(item)),
                indent,
            );
        }
        return;
    }
    let text = scalar(v);
    let pad = " ".repeat(indent);
    let key_col = KEY_WIDTH.max(indent + key.len() + 1);
    let mut line = format!("{pad}{key}");
    line.push_str(&" ".repeat(key_col - line.chars().count()));
    let room = WIDTH.saturating_sub(key_col).max(10);
    let mut first = true;
    let mut cur = String::new();
    for word in text.split(' ') {
        if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > room {
            flush(out, &mut line, &mut cur, key_col, &mut first);
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    flush(out, &mut line, &mut cur, key_col, &mut first);
}

fn flush(out: &mut String, line: &mut String, cur: &mut String, key_col: usize, first: &mut bool) {
    if *first {
        out.push_str(line);
        *first = false;
    } else {
        out.push_str(&" ".repeat(key_col));
    }
    out.push_str(cur);
    out.push('\n');
    cur.clear();
    line.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_kind() {
        assert_eq!(detect("1YNN"), Kind::Usp);
        assert_eq!(detect("1---"), Kind::Usp);
        assert_eq!(detect("1Y"), Kind::Usp);
        assert_eq!(detect("DBABTA~1NYY"), Kind::Gpp);
        assert_eq!(detect("DBABMA"), Kind::Gpp);
        assert_eq!(detect("CPXxRfAPXxRfAAfKABENB"), Kind::Tcf);
    }

    #[test]
    fn usp_json_and_table() {
        let d = Decoded::parse("1NYN").unwrap();
        let v = d.to_json();
        assert_eq!(v["type"], "usp");
        assert_eq!(v["data"]["optOutSale"], "Y");
        let t = d.table(None);
        assert!(t.contains("optOutSale"), "{t}");
        assert!(t.lines().all(|l| l.chars().count() <= WIDTH));
    }

    #[test]
    fn long_lists_wrap_within_80_columns() {
        let ids: Vec<u32> = (1..400).collect();
        let mut t = String::new();
        row(&mut t, "vendorConsents", &json!(ids), 0);
        assert!(t.lines().count() > 5);
        assert!(t.lines().all(|l| l.chars().count() <= WIDTH), "{t}");
        assert!(t.contains(" 399\n"));
        let expected = format!("{:<KEY_WIDTH$}1 2 3", "vendorConsents");
        assert!(t.starts_with(&expected), "{t}");
    }

    #[test]
    fn restrictions_read_as_words_and_wrap() {
        let ids: Vec<u32> = (1..300).collect();
        let mut t = String::new();
        row(
            &mut t,
            "publisherRestrictions",
            &json!([{"purposeId": 3, "restrictionType": 1, "vendorIds": ids}]),
            0,
        );
        assert!(t.starts_with("publisherRestrictions[0]"), "{t}");
        assert!(
            t.contains("purpose 3 requires consent for vendors 1 2\n"),
            "{t}"
        );
        assert!(t.lines().all(|l| l.chars().count() <= WIDTH), "{t}");
    }

    #[test]
    fn vendors_are_named_from_a_vendor_list() {
        let gvl = r#"{"vendorListVersion": 1, "vendors": {
            "2": {"id": 2, "name": "Example Ads Ltd"},
            "8": {"id": 8, "name": "Sample Metrics GmbH"},
            "x": {"name": "ignored"}
        }}"#;
        let names = VendorNames::from_gvl_json(gvl).unwrap();
        assert_eq!(names.get(8), Some("Sample Metrics GmbH"));
        let d = Decoded::parse("COvFyGBOvFyGBAbAAAENAPCAAOAAAAAAAAAAAEEUACCKAAA").unwrap();
        let t = d.table(Some(&names));
        assert!(t.contains("      2 Example Ads Ltd\n"), "{t}");
        assert!(t.contains("      8 Sample Metrics GmbH\n"), "{t}");
        assert!(!d.table(None).contains("Example Ads"));
        assert!(VendorNames::from_gvl_json("{}").is_err());
        assert!(VendorNames::from_gvl_json("not json").is_err());
    }

    #[test]
    fn purposes_are_named_under_their_numbers() {
        let mut t = String::new();
        names(&mut t, "purposeConsents", &json!([1, 12]), 0);
        assert!(
            t.contains("  1 Store and/or access information on a device"),
            "{t}"
        );
        assert!(t.contains(" 12 (not defined in TCF v2.2)"), "{t}");
        let mut t = String::new();
        names(&mut t, "SpecialFeatureOptins", &json!([false, true]), 2);
        assert!(t.contains("  2 Actively scan device"), "{t}");
        assert!(t.lines().all(|l| l.chars().count() <= WIDTH), "{t}");
    }

    #[test]
    fn errors_name_field_and_offset() {
        let e = decode("DBABTA~1YXN").unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("uspv1.optOutSale at char 2"), "{msg}");
        // One bad section among good ones is an error entry, not a failure.
        let j = decode("DBACNYA~!!~1YNN").unwrap();
        assert!(j["data"]["sections"][0]["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("tcfeuv2")));
        assert_eq!(j["data"]["sections"][1]["fields"]["OptOutSale"], json!("N"));
        let t = Decoded::parse("DBACNYA~!!~1YNN").unwrap().table(None);
        assert!(t.contains("error"), "{t}");
    }
}
