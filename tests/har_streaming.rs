//! The HAR reader streams: reading a ~50 MB HAR file must not hold it in memory.
//! A counting global allocator measures the peak heap while the file is read.
//! The HAR is generated here, with synthetic data only.

use std::fs::File;
use std::io::{BufWriter, Write};

use consentry::source::{read_har, HarOptions};

#[path = "common/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::{assert_counts, peak_of, Counting};

#[global_allocator]
static ALLOC: Counting = Counting;

const ENTRIES: usize = 8_000;
const TARGET_BYTES: u64 = 50 * 1024 * 1024;
const PEAK_LIMIT: usize = 10 * 1024 * 1024;

/// Writes a Chrome-like HAR of about 50 MB: small requests with a body, and response
/// bodies of ~2.8 KB, every 1000th one 3 MB (which the reader must skip unbuffered).
fn write_har(out: &mut impl Write) -> std::io::Result<()> {
    let filler = "x".repeat(2_800);
    let big = "y".repeat(3 * 1024 * 1024);
    out.write_all(b"{\"log\": {\"version\": \"1.2\", \"creator\": {\"name\": \"gen\", \"version\": \"1\"}, \"pages\": [], \"entries\": [\n")?;
    for i in 0..ENTRIES {
        if i > 0 {
            out.write_all(b",\n")?;
        }
        let body = if i % 1000 == 999 { &big } else { &filler };
        write!(
            out,
            r#"{{"startedDateTime": "2026-11-28T10:{:02}:{:02}.{:03}Z", "time": 5,
 "request": {{"method": "POST", "url": "https://t{}.example.com/collect?seq={i}", "httpVersion": "http/2.0",
   "headers": [{{"name": ":authority", "value": "t{}.example.com"}}, {{"name": "user-agent", "value": "Synthetic/1.0"}},
               {{"name": "content-type", "value": "application/json"}}, {{"name": "cookie", "value": "sid=s{i}"}}],
   "queryString": [{{"name": "seq", "value": "{i}"}}], "cookies": [{{"name": "sid", "value": "s{i}"}}],
   "postData": {{"mimeType": "application/json", "text": "{{\"email\":\"tester@example.org\",\"seq\":{i}}}"}}}},
 "response": {{"status": 200, "httpVersion": "http/2.0", "headers": [{{"name": "content-type", "value": "text/plain"}}],
   "content": {{"size": {}, "mimeType": "text/plain", "text": "{body}"}}}},
 "serverIPAddress": "192.0.2.{}", "timings": {{"send": 1, "wait": 2, "receive": 2}}}}"#,
            (i / 60_000) % 60,
            (i / 1000) % 60,
            i % 1000,
            i % 50,
            i % 50,
            body.len(),
            i % 250,
        )?;
    }
    out.write_all(b"\n]}}\n")
}

#[test]
fn fifty_megabyte_har_streams_in_bounded_memory() {
    let mut tmp = tempfile::NamedTempFile::new().unwrap();
    {
        let mut w = BufWriter::new(tmp.as_file_mut());
        write_har(&mut w).unwrap();
        w.flush().unwrap();
    }
    let size = tmp.as_file().metadata().unwrap().len();
    let t0 = std::time::Instant::now();
    assert!(size >= TARGET_BYTES, "generated only {size} bytes");

    let file = File::open(tmp.path()).unwrap();
    let opts = HarOptions::new("big.har", Some("ab".repeat(32)));
    let mut count = 0usize;
    let mut last_path = String::new();
    let (summary, peak) = peak_of(|| {
        read_har(file, &opts, |x| {
            assert_eq!(x.request_body.len(), 37 + count.to_string().len());
            assert!(x.response.as_ref().is_some_and(|r| r.body.is_empty()));
            count += 1;
            last_path = x.path;
            Ok::<(), std::io::Error>(())
        })
        .unwrap()
    });
    assert_counts(PEAK_LIMIT);

    assert_eq!(count, ENTRIES);
    assert_eq!(summary.entries, ENTRIES as u64);
    assert_eq!(summary.exchanges, ENTRIES as u64);
    assert_eq!(summary.skipped, 0);
    assert_eq!(last_path, format!("/collect?seq={}", ENTRIES - 1));
    assert!(
        peak < PEAK_LIMIT,
        "peak heap {peak} bytes while reading a {size}-byte HAR"
    );
    eprintln!(
        "read {size} bytes, {count} exchanges, peak heap {peak} bytes, {:?}",
        t0.elapsed()
    );
}
