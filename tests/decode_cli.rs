//! `consentry decode` as a user runs it: detection, JSON shape, table width, exit codes
//! and error messages. The strings are the IAB specifications' own examples (TCF v2
//! "TC String" example, GPP "gpp_sid" example, US Privacy examples) or built here.

use std::process::{Command, Output};

use serde_json::Value;

/// The TCF v2 specification's example TC string (core segment + disclosed vendors).
const TCF_SPEC_CORE: &str = "COvFyGBOvFyGBAbAAAENAPCAAOAAAAAAAAAAAEEUACCKAAA";
/// The GPP specification's example: a TC string (section 2) and US Privacy (section 6).
const GPP_SPEC: &str = "DBACNYA~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA~1YNN";

fn decode(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_consentry"))
        .arg("decode")
        .args(args)
        .output()
        .expect("running consentry")
}

fn json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    let o = decode(&all);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("JSON output")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn tc_string_json_uses_iabtcf_names() {
    let v = json(&[TCF_SPEC_CORE]);
    assert_eq!(v["type"], "tcf");
    let d = &v["data"];
    assert_eq!(d["cmpId"], 27);
    assert_eq!(d["vendorListVersion"], 15);
    assert_eq!(d["consentLanguage"], "EN");
    assert_eq!(d["purposeConsents"], serde_json::json!([1, 2, 3]));
    assert_eq!(d["vendorConsents"], serde_json::json!([2, 6, 8]));
    assert_eq!(d["vendorLegitimateInterests"], serde_json::json!([2, 6, 8]));
    // 15 822 430 593 deciseconds.
    assert_eq!(d["created"], "2020-02-20T23:57:39.300Z");
    assert_eq!(d["vendorsDisclosed"], serde_json::json!([]));
    assert_eq!(d.as_object().unwrap().len(), 26);
}

#[test]
fn gpp_json_lists_sections_with_cmpapi_names() {
    let v = json(&[GPP_SPEC]);
    assert_eq!(v["type"], "gpp");
    let d = &v["data"];
    assert_eq!(d["sectionIds"], serde_json::json!([2, 6]));
    assert_eq!(d["sections"][0]["name"], "tcfeuv2");
    assert_eq!(d["sections"][0]["fields"]["CmpId"], 31);
    assert_eq!(d["sections"][0]["fields"]["PublisherCountryCode"], "DE");
    assert_eq!(d["sections"][1]["name"], "uspv1");
    assert_eq!(d["sections"][1]["fields"]["Notice"], "Y");
    assert_eq!(d["sections"][1]["fields"]["OptOutSale"], "N");
}

#[test]
fn us_privacy_json() {
    let v = json(&["1-Y-"]);
    assert_eq!(
        v,
        serde_json::json!({"type": "usp", "data": {
            "version": 1, "notice": "-", "optOutSale": "Y", "lspaCovered": "-"
        }})
    );
}

#[test]
fn table_is_the_default_and_fits_80_columns() {
    for s in [TCF_SPEC_CORE, GPP_SPEC, "1YNN"] {
        let o = decode(&[s]);
        assert!(o.status.success(), "{}", stderr(&o));
        let out = String::from_utf8(o.stdout).unwrap();
        assert!(out.lines().count() > 3, "{out}");
        for line in out.lines() {
            assert!(line.chars().count() <= 80, "{s}: {line:?}");
        }
    }
    let out = String::from_utf8(decode(&[TCF_SPEC_CORE]).stdout).unwrap();
    assert!(
        out.contains("Store and/or access information on a device"),
        "{out}"
    );
    assert!(out
        .lines()
        .any(|l| l.starts_with("vendorConsents") && l.ends_with("2 6 8")));
}

#[test]
fn bad_strings_exit_2_naming_field_and_offset() {
    let cases = [
        // Truncated after 42 bits: lastUpdated needs 36, 18 remain.
        ("CPXxRfAPXx", "core.lastUpdated at bit 42: truncated"),
        // `*` is not base64url.
        (
            "COvF*GBOvFyGBAbAAAENAPCAAOAAAAAAAAAAAEEUACCKAAA",
            "core at char 4",
        ),
        // Version 1 TC strings start with B.
        (
            "BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "core.version at bit 0: unsupported version 1",
        ),
        ("1YXN", "optOutSale at char 2"),
        ("DBABTA~1YXN", "uspv1.optOutSale at char 2"),
        ("DBACNYA~1YNN", "header.SectionIds"),
        ("", "empty"),
    ];
    for (s, needle) in cases {
        let o = decode(&[s]);
        assert_eq!(o.status.code(), Some(2), "{s:?}");
        let err = stderr(&o);
        assert!(err.contains(needle), "{s:?}: {err}");
        assert!(o.stdout.is_empty(), "{s:?}");
    }
}

#[test]
fn vendor_list_names_vendors_in_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let gvl = dir.path().join("vendor-list.json");
    std::fs::write(
        &gvl,
        r#"{"vendors": {"6": {"id": 6, "name": "Example Exchange Inc"}}}"#,
    )
    .unwrap();
    let o = decode(&[TCF_SPEC_CORE, "--vendor-list", gvl.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    // Vendor 6 has consent and legitimate interest: named under both.
    assert_eq!(
        out.matches("      6 Example Exchange Inc").count(),
        2,
        "{out}"
    );

    let o = decode(&[TCF_SPEC_CORE, "--vendor-list", "/nonexistent/gvl.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o).trim_end(),
        "consentry: error: vendor list /nonexistent/gvl.json: cannot be read: No such file or directory (os error 2)"
    );
}
