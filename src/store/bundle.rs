//! The case bundle (issue 5 item 6): `consentry export` writes a case directory into
//! one zip file a third party can check with `consentry verify case.zip`, without the
//! original store.
//!
//! Members (deflate):
//! ```text
//! MANIFEST.json     format, case id, chain head, counts, and path/size/SHA-256 of
//!                   every other member
//! records.jsonl     every log record: {"seq","kind","at","body","prev_hash","hash"},
//!                   `body` the canonical bytes as a JSON string, hashes in hex; a
//!                   pruned exchange has an empty body and `pruned_by` (its checkpoint)
//! findings.jsonl    the `data` of every finding record, log order (as `findings
//!                   --format jsonl` prints them)
//! exchanges.jsonl   the `data` of every exchange record, log order
//! exchanges.har     HAR 1.2 of the HTTP exchanges, re-read from the evidence files
//!                   (headers and bodies; see `report::har`)
//! report.html       the case report (`consentry report`)
//! consentry.toml    the case file
//! seal.pub          the case's public key, when the log was sealed
//! evidence/…        the ingested captures, byte for byte, and the files consentry
//!                   wrote itself that the log still expects (the tap's ring files)
//! ```
//!
//! # What `verify` checks, and why it is enough
//! The manifest is not signed: anyone could rewrite a member and its hash. So the
//! bundle is tied to the hash chain instead. `verify_bundle` checks every member's
//! size and SHA-256 against the manifest (and that no member is missing or extra),
//! recomputes the chain from `records.jsonl` alone (each record's hash, the
//! sequence, every seal's signature, pruned records against their checkpoint as
//! `verify` does on a store) and compares its head with the manifest's, and
//! checks that `findings.jsonl` and `exchanges.jsonl` are exactly the data of the
//! finding and exchange records, that every evidence file has the SHA-256 its
//! ingest or evidence record gives, and, with `seal.pub`, that the last seal is by
//! that key. A reader who knows the chain head (from the report, a seal, or the investigator)
//! thus knows that the findings and evidence are the ones logged. `report.html` and
//! `exchanges.har` are derived views: their hashes are checked, their content is not
//! re-derived.
//!
//! # Hostile bundles
//! Zip reading is bounded: at most [`MAX_MEMBERS`] members; names must be relative
//! paths without `..`, backslashes, drive letters or NUL (nothing is ever extracted,
//! but a bundle that would extract outside its directory is refused); a member is
//! read only up to the size the manifest gives (so a zip bomb stops there), at most
//! [`MAX_MEMBER_BYTES`] each and [`MAX_TOTAL_BYTES`] together; the manifest at most
//! [`MAX_MANIFEST_BYTES`]; a line of `records.jsonl` at most [`MAX_RECORD_LINE`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::record::{self, hex, Head, IngestBody, Kind, Phase, RawEnvelope, Record};
use super::CaseDir;

/// Members a bundle may hold.
pub const MAX_MEMBERS: usize = 100_000;
/// Largest member (an evidence capture).
pub const MAX_MEMBER_BYTES: u64 = 64 << 30;
/// All members together.
pub const MAX_TOTAL_BYTES: u64 = 256 << 30;
/// Largest `MANIFEST.json`.
pub const MAX_MANIFEST_BYTES: u64 = 64 << 20;
/// Longest line of `records.jsonl`.
pub const MAX_RECORD_LINE: usize = 64 << 20;
/// The manifest's `format`.
pub const FORMAT: &str = "consentry-bundle/1";

const MANIFEST: &str = "MANIFEST.json";
const RECORDS: &str = "records.jsonl";
const FINDINGS: &str = "findings.jsonl";
const EXCHANGES: &str = "exchanges.jsonl";
const HAR: &str = "exchanges.har";
const REPORT: &str = "report.html";
const CASE: &str = "consentry.toml";
const SEAL_PUB: &str = "seal.pub";

/// One member as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// The chain head the bundle's records end in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestHead {
    pub seq: i64,
    pub hash: String,
    pub records: u64,
}

/// `MANIFEST.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub case: String,
    pub chain_head: ManifestHead,
    /// Records by kind, HAR entries, evidence files.
    pub counts: BTreeMap<String, u64>,
    /// The last seal: the `seq` it covers and its public key (hex).
    pub sealed: Option<(i64, String)>,
    pub files: Vec<ManifestFile>,
}

/// A record as `records.jsonl` holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RecordLine {
    seq: i64,
    kind: String,
    at: String,
    /// The canonical bytes (UTF-8 JSON) as a string.
    body: String,
    prev_hash: String,
    hash: String,
    /// The checkpoint that pruned this record (its body is then empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pruned_by: Option<i64>,
}

/// A writer that hashes and counts what goes through it.
struct Hashing<W: Write> {
    inner: W,
    hash: Sha256,
    size: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

type Zip = zip::ZipWriter<File>;

/// Writes members into the zip and remembers their hashes.
struct BundleWriter {
    zip: Zip,
    files: Vec<ManifestFile>,
}

impl BundleWriter {
    /// Writes one member with `fill` (which gets a hashing writer).
    fn member(
        &mut self,
        path: &str,
        fill: impl FnOnce(&mut dyn Write) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(true)
            .unix_permissions(0o600);
        self.zip
            .start_file(path, options)
            .with_context(|| format!("adding {path} to the bundle"))?;
        let mut w = Hashing {
            inner: &mut self.zip,
            hash: Sha256::new(),
            size: 0,
        };
        fill(&mut w).with_context(|| format!("writing {path} into the bundle"))?;
        self.files.push(ManifestFile {
            path: path.to_string(),
            size: w.size,
            sha256: hex(&w.hash.finalize()),
        });
        Ok(())
    }
}

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    pub manifest: Manifest,
}

/// Writes the bundle of the case directory `dir` to `out` (through a temporary file
/// renamed at the end, so a failed export leaves no half bundle under that name).
pub fn export(dir: &CaseDir, out: &Path) -> anyhow::Result<Exported> {
    let tmp = out.with_extension("zip.part");
    let result = export_to(dir, out, &tmp);
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn export_to(dir: &CaseDir, out: &Path, tmp: &Path) -> anyhow::Result<Exported> {
    let case = crate::case::load(&dir.case_file())?;
    let store = dir.open_store()?;
    // Every pass below reads records up to this head only, so a writer appending
    // meanwhile does not make the members disagree.
    let head = store.head()?;
    let file = File::create(tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut b = BundleWriter {
        zip: zip::ZipWriter::new(file),
        files: Vec::new(),
    };
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut ingests: Vec<IngestBody> = Vec::new();
    let mut written = record::WrittenFiles::default();
    let mut device_of_file: BTreeMap<String, String> = BTreeMap::new();
    let mut chain = Head::EMPTY;
    let pruned = store.pruned_records()?;
    let mut walk = record::ChainWalk::new();
    b.member(RECORDS, |w| {
        store.for_each_record(head.seq, |r: Record| -> anyhow::Result<()> {
            let pruned_by = pruned.get(&r.seq).copied();
            chain = walk.check(&r, pruned_by).map_err(|e| {
                anyhow::anyhow!("the store does not verify ({e}); run `consentry verify`")
            })?;
            *counts.entry(r.kind.clone()).or_default() += 1;
            if pruned_by.is_none() {
                let env: RawEnvelope<'_> = serde_json::from_slice(&r.body)?;
                match env.kind {
                    Kind::Ingest => ingests.push(serde_json::from_str(env.data.get())?),
                    Kind::Evidence => written
                        .add(r.seq, serde_json::from_str(env.data.get())?)
                        .map_err(|e| anyhow::anyhow!("record {}: {e}", r.seq))?,
                    Kind::Exchange => {
                        let x: record::ExchangeBody = serde_json::from_str(env.data.get())?;
                        if let (Some(file), Some(device)) = (x.file_sha256, x.device) {
                            device_of_file.entry(file).or_insert(device);
                        }
                    }
                    _ => {}
                }
            }
            let line = RecordLine {
                seq: r.seq,
                kind: r.kind,
                at: r.at,
                body: String::from_utf8(r.body).context("a record body is not UTF-8")?,
                prev_hash: hex(&r.prev_hash),
                hash: hex(&r.hash),
                pruned_by,
            };
            serde_json::to_writer(&mut *w, &line)?;
            w.write_all(b"\n")?;
            Ok(())
        })
    })?;
    for (path, kind) in [(FINDINGS, Kind::Finding), (EXCHANGES, Kind::Exchange)] {
        b.member(path, |w| {
            store.for_each_record(head.seq, |r: Record| -> anyhow::Result<()> {
                // A pruned exchange (empty body) is in records.jsonl only.
                if r.kind == kind.as_str() && !r.body.is_empty() {
                    let env: RawEnvelope<'_> = serde_json::from_slice(&r.body)?;
                    w.write_all(env.data.get().as_bytes())?;
                    w.write_all(b"\n")?;
                }
                Ok(())
            })
        })?;
    }
    // The evidence files, once each (a file ingested again has two records).
    let mut evidence: Vec<&IngestBody> = Vec::new();
    let mut seen = BTreeSet::new();
    for ing in &ingests {
        if ing.phase == Phase::Started && seen.insert(ing.evidence.clone()) {
            evidence.push(ing);
        }
    }
    // Capture files read as one capture at ingest (a capture split into several
    // files), by the file each continues.
    let continues: HashMap<&str, &str> = ingests
        .iter()
        .filter(|i| i.phase == Phase::Complete)
        .filter_map(|i| Some((i.sha256.as_str(), i.continues.as_deref()?)))
        .collect();
    let mut har_entries = 0;
    b.member(HAR, |w| {
        let mut har = crate::report::har::HarWriter::begin(w)?;
        let inputs: Vec<&IngestBody> = evidence
            .iter()
            .copied()
            .filter(|ing| ing.is_capture())
            .collect();
        for capture in
            inputs.chunk_by(|a, b| continues.get(b.sha256.as_str()) == Some(&a.sha256.as_str()))
        {
            let ing = capture[0];
            // Read as it was ingested: with its key logs, 802.11 keys and options.
            let (device, reading) = match &ing.options {
                Some(options) => (
                    options.device.clone(),
                    crate::cli::ingest::stored_reading(dir, options, &ingests)
                        .with_context(|| format!("re-reading {}", ing.evidence))?,
                ),
                // A store from before options were kept: the device its exchanges name.
                None => (
                    device_of_file.get(&ing.sha256).cloned(),
                    crate::cli::input::CaptureReading::default(),
                ),
            };
            let mut attribution = crate::cli::input::Attribution::new(&case, device)?;
            attribution.reading = reading;
            // Exported, not searched: a part needs no bytes of the one before.
            attribution.unparsed_overlap = 0;
            let mut failed = None;
            let mut push = |x: crate::exchange::Exchange| {
                if failed.is_none() {
                    failed = har.push(&x).err();
                }
            };
            let mut files = crate::cli::input::InputFiles::new(&attribution);
            for ing in capture {
                let copy = dir.root.join(&ing.evidence);
                files.read_known(&copy, &ing.sha256, &String::new, &mut push);
            }
            let outcomes = files.finish(&mut push);
            if let Some(e) = failed {
                return Err(e.into());
            }
            for (ing, outcome) in capture.iter().zip(outcomes) {
                if let Some(e) = outcome.error {
                    anyhow::bail!("re-reading {}: {e}", ing.evidence);
                }
            }
        }
        har_entries = har.finish()?.1;
        Ok(())
    })?;
    b.member(REPORT, |w| {
        let input = crate::cli::report::report_input(dir)?;
        crate::report::write_report(&input, crate::report::ReportFormat::Html, w)?;
        Ok(())
    })?;
    b.member(CASE, |w| {
        let mut f = File::open(dir.case_file())?;
        io::copy(&mut f, w)?;
        Ok(())
    })?;
    let pub_key = crate::cli::seal::public_key_path(dir);
    if chain.last_seal.is_some() && pub_key.is_file() {
        b.member(SEAL_PUB, |w| {
            io::copy(&mut File::open(&pub_key)?, w)?;
            Ok(())
        })?;
    }
    for ing in &evidence {
        let rel = safe_name(&ing.evidence)
            .with_context(|| format!("evidence path {:?} in the log", ing.evidence))?;
        b.member(&rel, |w| {
            let path = dir.root.join(&ing.evidence);
            let mut f = File::open(&path).with_context(|| format!("reading {}", path.display()))?;
            io::copy(&mut f, w)?;
            Ok(())
        })?;
    }
    // Files consentry wrote itself (the tap's ring) that the log still expects.
    let written = written.expected();
    for (_, w) in &written {
        b.member(&w.path, |out| {
            let path = dir.root.join(&w.path);
            let mut f = File::open(&path).with_context(|| format!("reading {}", path.display()))?;
            io::copy(&mut f, out)?;
            Ok(())
        })?;
    }
    // Counts; the seal's covered record and key.
    counts.insert("har_entries".into(), har_entries);
    counts.insert(
        "evidence_files".into(),
        (evidence.len() + written.len()) as u64,
    );
    let manifest = Manifest {
        format: FORMAT.into(),
        case: case.meta.id.clone(),
        chain_head: ManifestHead {
            seq: chain.seq,
            hash: hex(&chain.hash),
            records: chain.records,
        },
        counts,
        sealed: chain.last_seal.map(|(seq, key)| (seq, hex(&key))),
        files: b.files.clone(),
    };
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o600);
    b.zip.start_file(MANIFEST, options)?;
    serde_json::to_writer_pretty(&mut b.zip, &manifest)?;
    b.zip.write_all(b"\n")?;
    let file = b.zip.finish().context("finishing the bundle")?;
    file.sync_all()?;
    std::fs::rename(tmp, out)
        .with_context(|| format!("moving {} to {}", tmp.display(), out.display()))?;
    Ok(Exported { manifest })
}

/// `name` if it is a safe relative member path: no absolute path, `..`, empty or
/// `.` component, backslash, drive letter or NUL.
pub fn safe_name(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && !name.starts_with('/')
        && !name.contains('\\')
        && !name.contains('\0')
        && !name.contains(':')
        && name
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..");
    ok.then(|| name.to_string())
}

/// A bundle that verified.
#[derive(Debug, Clone)]
pub struct BundleVerified {
    pub manifest: Manifest,
    /// Members checked (the manifest aside).
    pub members: usize,
}

/// Why a bundle does not verify: the member at fault and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{member}: {reason}")]
pub struct BundleError {
    pub member: String,
    pub reason: String,
}

fn fail(member: &str, reason: impl Into<String>) -> BundleError {
    BundleError {
        member: member.to_string(),
        reason: reason.into(),
    }
}

/// Whether `path` starts like a zip file.
pub fn is_zip(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == *b"PK\x03\x04"
}

/// Verifies the bundle at `path`; see the module doc.
pub fn verify_bundle(path: &Path) -> Result<BundleVerified, BundleError> {
    let whole = path.display().to_string();
    let mut file = File::open(path).map_err(|e| fail(&whole, format!("cannot be read: {e}")))?;
    // The zip reader allocates per central directory entry before we could count
    // them: check the count the end-of-directory record states first.
    match declared_members(&mut file) {
        Ok(n) if n <= MAX_MEMBERS as u64 => {}
        Ok(n) => return Err(fail(&whole, format!("{n} members (limit {MAX_MEMBERS})"))),
        Err(e) => return Err(fail(&whole, format!("not a readable zip file: {e}"))),
    }
    let mut zip = zip::ZipArchive::new(BufReader::new(file))
        .map_err(|e| fail(&whole, format!("not a readable zip file: {e}")))?;
    if zip.len() > MAX_MEMBERS {
        return Err(fail(
            &whole,
            format!("{} members (limit {MAX_MEMBERS})", zip.len()),
        ));
    }
    let mut names = BTreeSet::new();
    for i in 0..zip.len() {
        let m = zip
            .by_index_raw(i)
            .map_err(|e| fail(&whole, format!("member {i}: {e}")))?;
        let name = m.name().to_string();
        if safe_name(&name).is_none() {
            return Err(fail(
                &name,
                "unsafe member name (absolute, `..` or odd characters)",
            ));
        }
        if m.is_dir() {
            continue;
        }
        if !names.insert(name.clone()) {
            return Err(fail(&name, "appears twice"));
        }
    }
    let manifest_bytes = read_member(&mut zip, MANIFEST, MAX_MANIFEST_BYTES)?;
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| fail(MANIFEST, format!("does not parse: {e}")))?;
    if manifest.format != FORMAT {
        return Err(fail(
            MANIFEST,
            format!("format {:?}, not {FORMAT}", manifest.format),
        ));
    }
    // Every member listed, every listed member present, sizes within the limits.
    let listed: BTreeMap<&str, &ManifestFile> = manifest
        .files
        .iter()
        .map(|f| (f.path.as_str(), f))
        .collect();
    if listed.len() != manifest.files.len() {
        return Err(fail(MANIFEST, "lists a member twice"));
    }
    for name in &names {
        if name != MANIFEST && !listed.contains_key(name.as_str()) {
            return Err(fail(name, "is not in the manifest"));
        }
    }
    let mut total = 0u64;
    for f in &manifest.files {
        if !names.contains(&f.path) {
            return Err(fail(&f.path, "listed in the manifest but missing"));
        }
        if f.size > MAX_MEMBER_BYTES {
            return Err(fail(
                &f.path,
                format!("{} bytes (limit {MAX_MEMBER_BYTES})", f.size),
            ));
        }
        total = total.saturating_add(f.size);
    }
    if total > MAX_TOTAL_BYTES {
        return Err(fail(
            MANIFEST,
            format!("{total} bytes in all (limit {MAX_TOTAL_BYTES})"),
        ));
    }
    // Sizes and hashes, read no further than the manifest says.
    for f in &manifest.files {
        let mut m = zip
            .by_name(&f.path)
            .map_err(|e| fail(&f.path, e.to_string()))?;
        let mut hash = Sha256::new();
        let mut limited = (&mut m).take(f.size.saturating_add(1));
        let n = io::copy(&mut limited, &mut HashSink(&mut hash))
            .map_err(|e| fail(&f.path, format!("does not decompress: {e}")))?;
        if n != f.size {
            return Err(fail(
                &f.path,
                format!(
                    "{} bytes, the manifest says {}",
                    if n > f.size {
                        format!("more than {n}")
                    } else {
                        n.to_string()
                    },
                    f.size
                ),
            ));
        }
        let got = hex(&hash.finalize());
        if got != f.sha256 {
            return Err(fail(
                &f.path,
                format!("SHA-256 is {got}, the manifest says {}", f.sha256),
            ));
        }
    }
    // The chain from the records alone, and what the other members must equal.
    let expect = check_records(&mut zip, &manifest)?;
    for (member, digest) in [(FINDINGS, &expect.findings), (EXCHANGES, &expect.exchanges)] {
        let got = listed.get(member).map(|f| f.sha256.as_str());
        if got != Some(digest.as_str()) {
            return Err(fail(
                member,
                "differs from the data of the records in records.jsonl",
            ));
        }
    }
    for ing in &expect.evidence {
        match listed.get(ing.evidence.as_str()) {
            None => return Err(fail(&ing.evidence, "named by an ingest record but missing")),
            Some(f) if f.sha256 != ing.sha256 => {
                return Err(fail(
                    &ing.evidence,
                    format!(
                        "SHA-256 is {}, the ingest record says {}",
                        f.sha256, ing.sha256
                    ),
                ))
            }
            Some(_) => {}
        }
    }
    for w in &expect.written {
        match listed.get(w.path.as_str()) {
            None => return Err(fail(&w.path, "named by an evidence record but missing")),
            Some(f) if f.sha256 != w.sha256 || f.size != w.size => {
                return Err(fail(
                    &w.path,
                    format!(
                        "SHA-256 {} ({} bytes), the evidence record says {} ({} bytes)",
                        f.sha256, f.size, w.sha256, w.size
                    ),
                ))
            }
            Some(_) => {}
        }
    }
    if listed.contains_key(SEAL_PUB) {
        let text = read_member(&mut zip, SEAL_PUB, 4096)?;
        let key = String::from_utf8_lossy(&text).trim().to_ascii_lowercase();
        match &manifest.sealed {
            Some((_, k)) if *k == key => {}
            _ => {
                return Err(fail(
                    SEAL_PUB,
                    "is not the key of the last seal in the records",
                ))
            }
        }
    }
    Ok(BundleVerified {
        members: manifest.files.len(),
        manifest,
    })
}

/// The number of members the end of central directory record (or its zip64
/// version) states.
fn declared_members(file: &mut File) -> io::Result<u64> {
    use std::io::{Seek, SeekFrom};
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let len = file.seek(SeekFrom::End(0))?;
    // The record is 22 bytes plus a comment of at most 65 535.
    let tail_len = len.min(22 + 65_535);
    file.seek(SeekFrom::Start(len - tail_len))?;
    let mut tail = vec![0u8; tail_len as usize];
    file.read_exact(&mut tail)?;
    let at = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&i| tail[i..i + 4] == *b"PK\x05\x06")
        .ok_or_else(|| bad("no end of central directory record"))?;
    let count = u64::from(u16::from_le_bytes([tail[at + 10], tail[at + 11]]));
    if count != 0xffff {
        return Ok(count);
    }
    // Zip64: the locator (20 bytes) just before gives the zip64 record's offset.
    let loc = at
        .checked_sub(20)
        .filter(|&l| tail[l..l + 4] == *b"PK\x06\x07")
        .ok_or_else(|| bad("no zip64 end of central directory locator"))?;
    let mut off = [0u8; 8];
    off.copy_from_slice(&tail[loc + 8..loc + 16]);
    let offset = u64::from_le_bytes(off);
    let mut rec = [0u8; 40];
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(&mut rec)?;
    if rec[..4] != *b"PK\x06\x06" {
        return Err(bad("no zip64 end of central directory record"));
    }
    let mut n = [0u8; 8];
    n.copy_from_slice(&rec[32..40]);
    Ok(u64::from_le_bytes(n))
}

struct HashSink<'a>(&'a mut Sha256);

impl Write for HashSink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A whole member, at most `limit` bytes.
fn read_member<R: Read + io::Seek>(
    zip: &mut zip::ZipArchive<R>,
    name: &str,
    limit: u64,
) -> Result<Vec<u8>, BundleError> {
    let m = zip
        .by_name(name)
        .map_err(|_| fail(name, "missing from the bundle"))?;
    let mut buf = Vec::new();
    m.take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| fail(name, format!("does not decompress: {e}")))?;
    if buf.len() as u64 > limit {
        return Err(fail(name, format!("larger than {limit} bytes")));
    }
    Ok(buf)
}

/// What the records say the other members must be.
struct Expected {
    /// SHA-256 of the findings' and exchanges' data lines.
    findings: String,
    exchanges: String,
    /// Evidence files with their logged hashes (paths checked safe).
    evidence: Vec<IngestBody>,
    /// Files consentry wrote itself that the log still expects (paths checked safe).
    written: Vec<record::EvidenceFileBody>,
}

fn check_records<R: Read + io::Seek>(
    zip: &mut zip::ZipArchive<R>,
    manifest: &Manifest,
) -> Result<Expected, BundleError> {
    let m = zip
        .by_name(RECORDS)
        .map_err(|_| fail(RECORDS, "missing from the bundle"))?;
    let mut lines = BufReader::new(m);
    let mut walk = record::ChainWalk::new();
    let (mut findings, mut exchanges) = (Sha256::new(), Sha256::new());
    let mut evidence = Vec::new();
    let mut written = record::WrittenFiles::default();
    let mut side_files = record::SideFilesCheck::default();
    let mut seen = BTreeSet::new();
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let n = (&mut lines)
            .take(MAX_RECORD_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| fail(RECORDS, format!("does not decompress: {e}")))?;
        if n == 0 {
            break;
        }
        number += 1;
        if line.len() > MAX_RECORD_LINE {
            return Err(fail(
                RECORDS,
                format!("line {number} longer than {MAX_RECORD_LINE} bytes"),
            ));
        }
        let at_line = |reason: String| fail(RECORDS, format!("line {number}: {reason}"));
        let l: RecordLine =
            serde_json::from_slice(&line).map_err(|e| at_line(format!("not a record: {e}")))?;
        let r = Record {
            seq: l.seq,
            kind: l.kind,
            at: l.at,
            body: l.body.into_bytes(),
            prev_hash: record::unhex(&l.prev_hash)
                .ok_or_else(|| at_line("prev_hash is not hex".into()))?,
            hash: record::unhex(&l.hash).ok_or_else(|| at_line("hash is not hex".into()))?,
        };
        walk.check(&r, l.pruned_by)
            .map_err(|e| at_line(e.to_string()))?;
        if l.pruned_by.is_some() {
            continue;
        }
        // The walk parsed this envelope already; it cannot fail here.
        let env: RawEnvelope<'_> =
            serde_json::from_slice(&r.body).map_err(|e| at_line(e.to_string()))?;
        match env.kind {
            Kind::Finding => {
                findings.update(env.data.get().as_bytes());
                findings.update(b"\n");
            }
            Kind::Exchange => {
                exchanges.update(env.data.get().as_bytes());
                exchanges.update(b"\n");
            }
            Kind::Ingest => {
                let ing: IngestBody = serde_json::from_str(env.data.get())
                    .map_err(|e| at_line(format!("ingest record: {e}")))?;
                side_files
                    .add(r.seq, &ing)
                    .map_err(|e| at_line(e.to_string()))?;
                if ing.phase == Phase::Started && seen.insert(ing.evidence.clone()) {
                    if safe_name(&ing.evidence).is_none() {
                        return Err(at_line(format!("unsafe evidence path {:?}", ing.evidence)));
                    }
                    evidence.push(ing);
                }
            }
            Kind::Evidence => {
                let body = serde_json::from_str(env.data.get())
                    .map_err(|e| at_line(format!("evidence record: {e}")))?;
                written.add(r.seq, body).map_err(at_line)?;
            }
            _ => {}
        }
    }
    let head = walk.finish().map_err(|e| fail(RECORDS, e.to_string()))?;
    let want = &manifest.chain_head;
    if head.seq != want.seq || hex(&head.hash) != want.hash || head.records != want.records {
        return Err(fail(
            RECORDS,
            format!(
                "the records end in record {} with hash {}, the manifest's chain head is record {} with hash {}",
                head.seq,
                hex(&head.hash),
                want.seq,
                want.hash
            ),
        ));
    }
    let sealed = head.last_seal.map(|(seq, key)| (seq, hex(&key)));
    if sealed != manifest.sealed {
        return Err(fail(
            MANIFEST,
            "its seal differs from the last seal in the records",
        ));
    }
    Ok(Expected {
        findings: hex(&findings.finalize()),
        exchanges: hex(&exchanges.finalize()),
        evidence,
        written: written
            .expected()
            .into_iter()
            .map(|(_, w)| w.clone())
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_declared_member_count_is_refused_before_reading() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("x.zip");
        // A zip64 end record claiming 2^40 members (a plain one holds at most 65 535,
        // under the limit).
        let mut z64 = b"PK\x03\x04".to_vec();
        let rec_at = z64.len() as u64;
        z64.extend(b"PK\x06\x06");
        z64.extend([0; 28]);
        z64.extend((1u64 << 40).to_le_bytes());
        z64.extend([0; 16]);
        z64.extend(b"PK\x06\x07\0\0\0\0");
        z64.extend(rec_at.to_le_bytes());
        z64.extend([1, 0, 0, 0]);
        z64.extend(b"PK\x05\x06\0\0\0\0\xff\xff\xff\xff");
        z64.extend([0; 10]);
        std::fs::write(&path, &z64).unwrap();
        let e = verify_bundle(&path).unwrap_err();
        assert!(e.reason.contains("1099511627776 members"), "{e}");
    }

    #[test]
    fn member_names() {
        for ok in ["evidence/ab-x.pcap", "MANIFEST.json", "a/b/c"] {
            assert!(safe_name(ok).is_some(), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a\\b",
            "c:x",
            "a//b",
            "./a",
            "a\0",
        ] {
            assert!(safe_name(bad).is_none(), "{bad:?}");
        }
    }
}
