//! Running `consentry` with bytes on its standard input, and reading what a run stored.
//! Included by path (`#[path = "common/piped.rs"] mod piped;`) by the tests of input
//! from pipes.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Runs `cmd` with `input` on its standard input, written from a thread: the child
/// may fill its standard output before it has read everything.
pub fn run_with_stdin(cmd: &mut Command, input: Vec<u8>) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running consentry");
    let mut stdin = child.stdin.take().expect("a piped stdin");
    // The child may stop reading early (a refused input): a broken pipe is fine.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("waiting for consentry");
    writer.join().expect("the writer thread");
    out
}

/// The bodies of the `annotation` records in the store of case directory `root`.
pub fn stored_annotations(root: &Path) -> Vec<String> {
    let db = rusqlite::Connection::open(root.join(".consentry/store.db")).expect("the store");
    let mut stmt = db
        .prepare("SELECT CAST(body AS TEXT) FROM records WHERE kind = 'annotation' ORDER BY seq")
        .expect("the query");
    let rows = stmt
        .query_map([], |r| r.get(0))
        .expect("the annotations")
        .map(|r| r.expect("an annotation"))
        .collect();
    rows
}

/// Each finding line of `jsonl` without what names its run (`id`, `exchange`), so
/// two runs over the same packets compare equal.
pub fn findings_without_run_ids(jsonl: &str) -> std::collections::BTreeSet<String> {
    jsonl
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            let object = v.as_object_mut().unwrap();
            object.remove("id");
            object.remove("exchange");
            v.to_string()
        })
        .collect()
}
