//! Local validation of the HAR reader against third-party HAR collections that are
//! NOT part of this repository (licences): set `CONSENTRY_HAR_CORPUS` to one or more
//! directories (`:`-separated) and run `cargo test --test har_corpus -- --ignored
//! --nocapture`. Every `*.har` file found (recursively) is detected and read; the
//! outcome of each is printed. Files whose name says they are broken (`brokenfile`,
//! `not-json`, `not-valid`, or a non-HAR test wrapper `har_extractor`) must fail with a
//! clean error, all others must read without error. With `CONSENTRY_HAR_DUMP=DIR`,
//! the exchanges of each file are written to `DIR/<file name>.jsonl` for comparison
//! with other tools' imports.

use std::path::{Path, PathBuf};

use consentry::source::{file_sha256, open_input, read_har, HarOptions, InputKind};

fn har_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            har_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "har") {
            out.push(p);
        }
    }
}

#[test]
#[ignore = "needs CONSENTRY_HAR_CORPUS pointing at local third-party HAR files"]
fn third_party_har_files() {
    let Ok(dirs) = std::env::var("CONSENTRY_HAR_CORPUS") else {
        panic!("set CONSENTRY_HAR_CORPUS");
    };
    let mut files = Vec::new();
    for d in dirs.split(':') {
        har_files(Path::new(d), &mut files);
    }
    files.sort();
    assert!(!files.is_empty(), "no .har files under {dirs}");
    let mut failures = Vec::new();
    for path in &files {
        let name = path.to_string_lossy().to_lowercase();
        let broken = ["brokenfile", "not-json", "not-valid", "har_extractor"]
            .iter()
            .any(|w| name.contains(w));
        let outcome = open_input(path).and_then(|consentry::source::Opened { kind, file, .. }| {
            if kind != InputKind::Har {
                return Ok(format!("detected as {}", kind.name()));
            }
            let opts = HarOptions::new(path.display().to_string(), Some(file_sha256(path)?));
            let mut anomalies = std::collections::BTreeMap::<String, usize>::new();
            let mut dump = std::env::var_os("CONSENTRY_HAR_DUMP").map(|d| {
                let name = path.file_name().unwrap_or_default().to_string_lossy().to_string();
                std::fs::File::create(Path::new(&d).join(format!("{name}.jsonl"))).unwrap()
            });
            let s = read_har(file, &opts, |x| {
                for a in &x.anomalies {
                    *anomalies.entry(a.kind.clone()).or_default() += 1;
                }
                if let Some(out) = dump.as_mut() {
                    use std::io::Write;
                    let headers: Vec<(&str, String)> = x
                        .request_headers
                        .iter()
                        .map(|h| (&*h.name, String::from_utf8_lossy(&h.value).to_string()))
                        .collect();
                    let line = serde_json::json!({
                        "exchange": &x,
                        "request_headers": headers,
                        "request_body": String::from_utf8_lossy(&x.request_body),
                    });
                    writeln!(out, "{line}")?;
                }
                Ok::<(), std::io::Error>(())
            })?;
            Ok(format!(
                "ok: {} entries, {} exchanges ({} ws), {} non-network, {} skipped {:?}, anomalies {:?}, creator {:?}",
                s.entries,
                s.exchanges,
                s.websocket_messages,
                s.non_network,
                s.skipped,
                s.skip_reasons,
                anomalies,
                s.creator
            ))
        });
        match (&outcome, broken) {
            (Ok(msg), false) => println!("OK     {msg}\n       {}", path.display()),
            (Err(e), true) => println!("ERROR  (expected) {e}"),
            (Ok(msg), true) => {
                println!("UNEXPECTED OK {} {msg}", path.display());
                failures.push(path.clone());
            }
            (Err(e), false) => {
                println!("UNEXPECTED ERROR {e}");
                failures.push(path.clone());
            }
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}
