//! What a capture said about its Android apps (PCAPdroid's marks), for the lines
//! the capture commands print on standard error.

use crate::source::pcap::CaptureSummary;

/// Lines about a capture's apps: notes, and warnings about marks that could not be read.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AppLines {
    pub notes: Vec<String>,
    pub warnings: Vec<String>,
}

/// Apps named in a note; the rest are counted.
const APPS_NAMED: usize = 5;

/// The lines for capture `label`; none when it named no app. `all_apps`: whether the
/// traffic of other apps is judged (`--all-apps`).
pub fn describe(label: &str, s: &CaptureSummary, all_apps: bool) -> AppLines {
    let mut lines = AppLines::default();
    let p = &s.pcapdroid;
    if p.bad_trailers > 0 {
        lines.warnings.push(format!(
            "{label}: {} frames carry a PCAPdroid trailer whose CRC-32 does not match: their app is not taken from it",
            p.bad_trailers
        ));
    }
    if let Some(e) = &s.pcapdroid_block_error {
        lines.warnings.push(format!(
            "{label}: {} PCAPdroid blocks could not be read, the first: {e}",
            p.bad_blocks
        ));
    }
    if p.apps_over_limit > 0 {
        lines.warnings.push(format!(
            "{label}: more than {} apps named: {} mappings or trailers of further apps not kept",
            crate::net::pcapdroid::MAX_APPS,
            p.apps_over_limit
        ));
    }
    if s.apps.is_empty() {
        return lines;
    }
    let exchanges: u64 = s.apps.iter().map(|a| a.exchanges).sum();
    let named: Vec<String> = s
        .apps
        .iter()
        .take(APPS_NAMED)
        .map(|a| format!("{} {}", a.app.display_name(), a.exchanges))
        .collect();
    let mut text = format!(
        "{label}: PCAPdroid names the app of {exchanges} exchanges: {}",
        named.join(", ")
    );
    if s.apps.len() > APPS_NAMED {
        text.push_str(&format!(" and {} more apps", s.apps.len() - APPS_NAMED));
    }
    if s.tap.apps_other > 0 {
        text.push_str(&format!(
            " (and {} exchanges of apps beyond the first {} UIDs, not counted per app)",
            s.tap.apps_other,
            crate::net::pcapdroid::MAX_APPS
        ));
    }
    let others = s.tap.other_app_exchanges;
    if others > 0 {
        text.push_str(&if all_apps {
            format!("; {others} of them of other apps than the case's, judged all the same (--all-apps)")
        } else {
            format!("; {others} of them of other apps than the case's, listed but not judged (--all-apps judges them)")
        });
    }
    lines.notes.push(text);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::AppRef;
    use crate::net::pcapdroid::AppTraffic;

    fn app(uid: i32, package: Option<&str>, under_test: Option<bool>, n: u64) -> AppTraffic {
        AppTraffic {
            app: AppRef {
                uid,
                package: package.map(str::to_string),
                name: None,
                under_test,
            },
            exchanges: n,
        }
    }

    #[test]
    fn nothing_without_marks() {
        assert_eq!(
            describe("a.pcap", &CaptureSummary::default(), false),
            AppLines::default()
        );
    }

    #[test]
    fn apps_and_the_others() {
        let mut s = CaptureSummary {
            apps: vec![
                app(10123, Some("com.example.shop"), Some(true), 4),
                app(10045, Some("com.google.android.gms"), Some(false), 2),
                app(-1, None, None, 1),
            ],
            ..CaptureSummary::default()
        };
        s.tap.other_app_exchanges = 2;
        let lines = describe("p.pcapng", &s, false);
        assert_eq!(
            lines.notes,
            ["p.pcapng: PCAPdroid names the app of 7 exchanges: com.example.shop 4, com.google.android.gms 2, uid -1 1; 2 of them of other apps than the case's, listed but not judged (--all-apps judges them)"]
        );
        assert!(lines.warnings.is_empty());
        let lines = describe("p.pcapng", &s, true);
        assert!(lines.notes[0].ends_with("judged all the same (--all-apps)"));
        s.tap.apps_other = 5;
        let lines = describe("p.pcapng", &s, false);
        assert!(lines.notes[0].contains(
            "uid -1 1 (and 5 exchanges of apps beyond the first 4096 UIDs, not counted per app); 2 of them"
        ));
    }

    #[test]
    fn bad_marks_are_warnings() {
        let mut s = CaptureSummary::default();
        s.pcapdroid.bad_trailers = 1;
        s.pcapdroid.bad_blocks = 2;
        s.pcapdroid_block_error = Some("PCAPdroid block version 7 is not known".into());
        let lines = describe("p.pcap", &s, false);
        assert_eq!(lines.warnings.len(), 2);
        assert!(lines.warnings[0].contains("1 frames carry a PCAPdroid trailer"));
        assert!(lines.warnings[1].contains(
            "2 PCAPdroid blocks could not be read, the first: PCAPdroid block version 7"
        ));
    }
}
