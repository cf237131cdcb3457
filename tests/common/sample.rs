//! The sample captures of `captures/NAME/` whose scripts write an `expected.json`
//! (tunnels, wifi): their paths, case files and expectations.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// `captures/NAME`.
pub fn dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("captures")
        .join(name)
}

/// The case file next to the capture.
pub fn case(name: &str) -> consentry::case::Case {
    consentry::case::load(&dir(name).join("consentry.toml")).unwrap()
}

/// What the capture's script says a correct reading finds.
pub fn expected(name: &str) -> Value {
    let text = std::fs::read_to_string(dir(name).join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The frame numbers of an evidence locator (`frame 11`, `frames 4-6`).
pub fn frames(locator: &str) -> std::ops::RangeInclusive<u64> {
    let numbers = locator.rsplit(' ').next().unwrap();
    let (first, last) = numbers.split_once('-').unwrap_or((numbers, numbers));
    first.parse().unwrap()..=last.parse().unwrap()
}
