//! The case-store writer of the live sources (`consentry proxy`, `consentry tap`) and
//! of `consentry consent` without a proxy: appends exchanges, findings and consent
//! events as they happen.
//!
//! Policy: live rows have no ingest record (`ingest = -1`, what `verify` expects of
//! rows that come from no file) and hang off one annotation record per run,
//! `consentry SOURCE run SESSION started …`. Consent keys are `SOURCE:SESSION:N`, unique
//! per run; SQLite's own locking lets several processes append to one store (a busy
//! store is waited for by [`Store`]). Nothing is visible to readers before
//! [`LiveStore::commit`]; callers commit at least once a second.
//!
//! The tap's evidence ring files are recorded as `evidence` records
//! ([`LiveStore::ring_event`]): one when a file is closed (path relative to the case
//! directory, size, SHA-256 computed while writing it, packets and their times), one
//! when the ring deletes it, so `verify` re-hashes every ring file still expected
//! and no longer expects one the ring removed on purpose.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::ingest::SideFile;
use super::keylog::KeyLogFile;
use crate::case::Case;
use crate::consent::timeline::ConsentEvent;
use crate::exchange::Exchange;
use crate::rules::Finding;
use crate::source::ring::{RingEvent, RingFile};
use crate::store::db::Side;
use crate::store::record::{
    AnnotationBody, EvidenceEvent, EvidenceFileBody, ExchangeBodyRef, IngestOptions, Kind,
};
use crate::store::{CaseDir, Store};

/// What a live run judges by: the case, the files it reads traffic with (the case
/// file, `--wlan-keys` files; [`super::ingest::side_files`]) and its options.
pub(super) struct RunCase<'a> {
    pub(super) case: &'a Case,
    pub(super) files: Vec<SideFile<'a>>,
    pub(super) options: IngestOptions,
}

/// The `ingest` of stored rows that come from no file (what `verify` expects of an
/// exchange or finding without an ingest record).
pub const LIVE_INGEST: i64 = -1;

/// Page cache of a live writer's connection, KiB (`Store::open` sets 64 MiB for
/// ingests and queries). A live source only appends: the pages it needs are the ends
/// of the records table and of the side tables' indexes, and a transaction's dirty
/// pages. The larger cache only filled with pages written once and never read again,
/// each a fresh allocation and page fault (the proxy's benchmark: peak RSS 104 -> 80
/// MB, fewer page faults on its analysis thread). 8 MiB rather than 4: a transaction
/// of the proxy's (100 ms or 4 096 events; [`LIVE_BATCH`]) dirties about 3 KB a
/// request, 3.6 MB at 12 000 requests a second, and dirty pages beyond the cache are
/// spilled to the WAL and read back (the analysis thread read 3.9 KB a request with 4
/// MiB, 2.6-3.0 with 8 or 16 MiB).
pub const LIVE_CACHE_KIB: i64 = 8192;

/// Records appended between two commits of a live writer, at most. Live writers
/// commit on their own schedule (the proxy every 100 ms or 4 096 events, the tap
/// after each append), so this only bounds a transaction; the store's own [`BATCH`]
/// of 1 000 records cut the proxy's transactions short. Each commit writes every
/// page it touched, whole: the ends of the records table and of ten side-table and
/// index B-trees, 32 KiB each, whatever the records added to them (at 500 proxy
/// exchanges a commit, the WAL took 5 KB per exchange for 2.7 KB of new rows).
///
/// [`BATCH`]: crate::store::db::BATCH
pub const LIVE_BATCH: usize = 16_384;

/// An open case store that a live source writes into.
pub struct LiveStore {
    store: Box<Store>,
    /// The case directory's root.
    pub dir: PathBuf,
    /// `proxy`, `tap`, `consent`: the prefix of this run's consent keys.
    source: &'static str,
    session: String,
    /// Consent events appended by this run (makes their keys unique).
    consents: u64,
}

impl LiveStore {
    /// The store of the case directory `case_file` lives in (the directory holding
    /// it has `.consentry/store.db`), or `None` when it lives in none.
    pub fn open_beside(case_file: &Path, source: &'static str) -> anyhow::Result<Option<Self>> {
        let parent = match case_file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !parent.join(".consentry").join("store.db").is_file() {
            return Ok(None);
        }
        Self::open(CaseDir { root: parent }, source).map(Some)
    }

    /// The store of `dir`.
    pub fn open(dir: CaseDir, source: &'static str) -> anyhow::Result<Self> {
        let mut store = dir.open_store()?;
        store.set_batch(LIVE_BATCH);
        store.set_cache_kib(LIVE_CACHE_KIB)?;
        Ok(LiveStore {
            store: Box::new(store),
            dir: dir.root,
            source,
            // The process id too: two processes may start in the same microsecond.
            session: format!(
                "{}-{}",
                crate::timestamp::Timestamp::now(),
                std::process::id()
            ),
            consents: 0,
        })
    }

    /// The case directory, for what `ingest`'s helpers store in it.
    fn case_dir(&self) -> CaseDir {
        CaseDir {
            root: self.dir.clone(),
        }
    }

    /// Stores the case file's own decisions (once, as `ingest` does), the run's files
    /// as evidence (once per content, as `ingest` does) and this run's annotation
    /// `consentry SOURCE run SESSION started WHERE[ with OPTIONS]`, the options as a
    /// case report lists them (`case file 5f66…; --device pixel7`); commits.
    pub(super) fn begin(
        &mut self,
        case: Option<RunCase>,
        session: &str,
        place: &str,
    ) -> anyhow::Result<()> {
        let mut text = format!("consentry {} run {session} started {place}", self.source);
        if let Some(run) = case {
            super::ingest::store_case_consent(&mut self.store, run.case)?;
            let dir = self.case_dir();
            for file in &run.files {
                super::ingest::ingest_side_file(&dir, &mut self.store, file)?;
            }
            text.push_str(&format!(" with {}", run.options.describe().join("; ")));
        }
        self.session = session.to_string();
        self.store
            .append(Kind::Annotation, &AnnotationBody { text }, Side::None)?;
        self.store.commit()?;
        Ok(())
    }

    /// Stores the run's key logs as they stand as it stops (the tap follows them as
    /// they grow, so only now are they whole) as evidence, as `ingest` stores key
    /// logs, and the annotation `consentry SOURCE run SESSION stopped with key log
    /// SHA256[..16][; …]`; commits. Nothing without key logs.
    #[cfg_attr(not(feature = "live"), allow(dead_code))] // only the tap follows key logs
    pub(super) fn keep_key_logs(&mut self, key_logs: &[KeyLogFile]) -> anyhow::Result<()> {
        if key_logs.is_empty() {
            return Ok(());
        }
        let dir = self.case_dir();
        let mut named = Vec::new();
        for file in key_logs.iter().map(SideFile::key_log) {
            super::ingest::ingest_side_file(&dir, &mut self.store, &file)?;
            named.push(format!("key log {}", file.short_sha256()));
        }
        let text = format!(
            "consentry {} run {} stopped with {}",
            self.source,
            self.session,
            named.join("; ")
        );
        self.store
            .append(Kind::Annotation, &AnnotationBody { text }, Side::None)?;
        self.store.commit()?;
        Ok(())
    }

    /// Appends one exchange, its findings and the consent events read from it.
    pub fn exchange(
        &mut self,
        x: &Exchange,
        findings: &[Finding],
        wire: &[ConsentEvent],
    ) -> anyhow::Result<()> {
        self.exchange_encoded(x, findings, findings, wire)
    }

    /// [`LiveStore::exchange`] with each finding's stored data given: `data[i]` must
    /// serialize as `findings[i]` does (e.g. its `serde_json::value::to_raw_value`,
    /// so a caller that prints the JSON encodes it once).
    pub fn exchange_encoded<D: serde::Serialize>(
        &mut self,
        x: &Exchange,
        findings: &[Finding],
        data: &[D],
        wire: &[ConsentEvent],
    ) -> anyhow::Result<()> {
        anyhow::ensure!(
            findings.len() == data.len(),
            "{} findings, {} encoded",
            findings.len(),
            data.len()
        );
        self.exchange_with(x, findings, wire, |i, out| match data.get(i) {
            Some(d) => serde_json::to_writer(out, d),
            None => Ok(()),
        })
    }

    /// [`LiveStore::exchange_encoded`] with the findings' JSON already written
    /// ([`crate::rules::finding_json`], the bytes `serde_json` writes for them).
    pub fn exchange_json(
        &mut self,
        x: &Exchange,
        findings: &[Finding],
        json: &crate::rules::finding_json::Encoded,
        wire: &[ConsentEvent],
    ) -> anyhow::Result<()> {
        anyhow::ensure!(
            findings.len() == json.len(),
            "{} findings, {} encoded",
            findings.len(),
            json.len()
        );
        self.exchange_with(x, findings, wire, |i, out| {
            out.extend_from_slice(json.get(i).unwrap_or_default());
            Ok(())
        })
    }

    /// Appends the exchange, then finding `i` with its data written by `data(i, out)`,
    /// then the consent events.
    fn exchange_with(
        &mut self,
        x: &Exchange,
        findings: &[Finding],
        wire: &[ConsentEvent],
        mut data: impl FnMut(usize, &mut Vec<u8>) -> serde_json::Result<()>,
    ) -> anyhow::Result<()> {
        let body = ExchangeBodyRef::of(x);
        self.store.append_with(
            Kind::Exchange,
            |out| {
                body.write_json(out);
                Ok(())
            },
            Side::Exchange {
                ingest: LIVE_INGEST,
                id: body.id,
                at: body.at,
                device: body.device,
                host: body.host,
            },
        )?;
        for (i, f) in findings.iter().enumerate() {
            self.store.append_with(
                Kind::Finding,
                |out| data(i, out),
                Side::Finding {
                    ingest: LIVE_INGEST,
                    id: &f.id,
                    at: f.at,
                    device: &f.device,
                    rule: f.rule.as_str(),
                    host: &f.destination.host,
                },
            )?;
        }
        for e in wire {
            self.consent(e)?;
        }
        Ok(())
    }

    /// Appends one consent event.
    pub fn consent(&mut self, e: &ConsentEvent) -> anyhow::Result<()> {
        self.consents += 1;
        let key = format!("{}:{}:{}", self.source, self.session, self.consents);
        self.store.append(
            Kind::Consent,
            e,
            Side::Consent {
                key: &key,
                at: e.at,
                device: &e.device,
            },
        )?;
        Ok(())
    }

    /// Records a ring file closed or removed by the ring; `rel_dir` is the ring's
    /// directory relative to the case directory ([`ring_dir_in_case`]). A file the
    /// ring could not remove is not recorded (it stays expected). Returns whether a
    /// record was appended.
    pub fn ring_event(&mut self, rel_dir: &str, event: &RingEvent) -> anyhow::Result<bool> {
        let (event, file) = match event {
            RingEvent::Closed(f) => (EvidenceEvent::Closed, f),
            RingEvent::Removed(f) => (EvidenceEvent::Removed, f),
            RingEvent::NotRemoved(..) => return Ok(false),
        };
        let body = evidence_body(rel_dir, event, file)?;
        self.store.append(Kind::Evidence, &body, Side::None)?;
        Ok(true)
    }

    /// Records the ring files in `ring_dir` (`rel_dir` in the case directory) that no
    /// `evidence` record names: files an earlier run was still writing when it died
    /// (a run records a file only as it closes it). Each gets an annotation saying so
    /// and a `closed` record as the file is now; returns their names. Commits.
    pub fn record_unrecorded_ring_files(
        &mut self,
        ring_dir: &Path,
        rel_dir: &str,
    ) -> anyhow::Result<Vec<String>> {
        let mut recorded = std::collections::BTreeSet::new();
        for body in self.store.bodies(Kind::Evidence)? {
            let b: EvidenceFileBody = serde_json::from_str(&body)
                .context("a stored evidence record does not read back")?;
            recorded.insert(b.path);
        }
        let mut found = Vec::new();
        for entry in std::fs::read_dir(ring_dir)
            .with_context(|| format!("reading the evidence ring {}", ring_dir.display()))?
        {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !crate::source::ring::is_ring_file_name(name) || !entry.file_type()?.is_file() {
                continue;
            }
            // A file another tap is writing into the same directory right now is
            // recorded by that tap as it closes it.
            if recorded.contains(&path_in_case(rel_dir, name))
                || crate::source::ring::is_being_written(&entry.path())?
            {
                continue;
            }
            let file = crate::source::ring::describe_found_file(&entry.path())
                .with_context(|| format!("reading {}", entry.path().display()))?;
            found.push((
                evidence_body(rel_dir, EvidenceEvent::Closed, &file)?,
                name.to_string(),
            ));
        }
        found.sort_by(|a, b| a.1.cmp(&b.1));
        for (body, _) in &found {
            self.store.append(
                Kind::Annotation,
                &AnnotationBody {
                    text: format!(
                        "ring file {} found unrecorded (an earlier run ended without closing it); recorded as found",
                        body.path
                    ),
                },
                Side::None,
            )?;
            self.store.append(Kind::Evidence, body, Side::None)?;
        }
        self.store.commit()?;
        Ok(found.into_iter().map(|(_, name)| name).collect())
    }

    /// Makes everything appended so far visible to readers.
    pub fn commit(&mut self) -> anyhow::Result<()> {
        self.store.commit()?;
        Ok(())
    }
}

/// The `evidence` record of ring file `file` in the ring directory `rel_dir`.
fn evidence_body(
    rel_dir: &str,
    event: EvidenceEvent,
    file: &RingFile,
) -> anyhow::Result<EvidenceFileBody> {
    let name = file
        .path
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("ring file {} has no UTF-8 name", file.path.display()))?;
    Ok(EvidenceFileBody {
        event,
        path: path_in_case(rel_dir, name),
        size: file.size,
        sha256: file.sha256.clone(),
        kind: "pcapng".into(),
        packets: file.packets,
        first: file.first,
        last: file.last,
    })
}

/// The path relative to the case directory of file `name` in the ring directory
/// `rel_dir` (itself relative, empty for the case directory).
fn path_in_case(rel_dir: &str, name: &str) -> String {
    if rel_dir.is_empty() {
        name.to_string()
    } else {
        format!("{rel_dir}/{name}")
    }
}

/// `ring_dir` relative to the case directory `case_root`, `/`-separated (empty when
/// it is the root itself); `None` when it lies outside the case directory or its
/// path is not UTF-8 (its files cannot be named in the store). Both must exist.
pub fn ring_dir_in_case(case_root: &Path, ring_dir: &Path) -> Option<String> {
    let root = std::fs::canonicalize(case_root).ok()?;
    let ring = std::fs::canonicalize(ring_dir).ok()?;
    let rel = ring.strip_prefix(&root).ok()?;
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    let rel = parts?.join("/");
    (rel.is_empty() || crate::store::bundle::safe_name(&rel).is_some()).then_some(rel)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::Decision;
    use crate::timestamp::Timestamp;

    fn event(device: &str) -> ConsentEvent {
        ConsentEvent::manual(&crate::case::ManualConsent {
            device: device.to_string(),
            at: Timestamp::from_micros(1_000_000),
            decision: Decision::Refused,
            purposes: Vec::new(),
            note: None,
        })
    }

    #[test]
    fn findings_stored_from_their_encoding_are_the_same_records() {
        use crate::exchange::SourceKind;
        use crate::rules::{Analyzer, Options};
        let case = crate::case::parse(
            "[case]\nid = \"t\"\n[[device]]\nid = \"pixel7\"\n[device.identifiers]\nemail = \"tester@example.org\"\n",
            "t.toml",
        )
        .unwrap();
        let mut x = Exchange::new("x-1", SourceKind::Proxy, Timestamp::from_micros(5_000_000));
        x.device = Some("pixel7".into());
        x.host = "graph.facebook.com".into();
        x.scheme = "https".into();
        x.method = "GET".into();
        x.path = "/tr?em=tester%40example.org".into();
        let obs = Analyzer::new(std::sync::Arc::new(case), Options::default()).observe(&x);
        assert!(!obs.findings.is_empty());
        let encoded: Vec<_> = obs
            .findings
            .iter()
            .map(|f| serde_json::value::to_raw_value(f).unwrap())
            .collect();
        let tmp = tempfile::tempdir().unwrap();
        let mut stored = Vec::new();
        for (i, name) in ["a", "b"].into_iter().enumerate() {
            let dir = CaseDir::init(&tmp.path().join(name), None).unwrap();
            let mut s = LiveStore::open(dir.clone(), "proxy").unwrap();
            if i == 0 {
                s.exchange(&x, &obs.findings, &[]).unwrap();
            } else {
                s.exchange_encoded(&x, &obs.findings, &encoded, &[])
                    .unwrap();
                assert!(s
                    .exchange_encoded(&x, &obs.findings, &encoded[..0], &[])
                    .is_err());
            }
            s.commit().unwrap();
            drop(s);
            stored.push(dir.open_store().unwrap().bodies(Kind::Finding).unwrap());
        }
        assert_eq!(stored[0].len(), obs.findings.len());
        assert_eq!(stored[0], stored[1]);
    }

    #[test]
    fn a_live_store_commits_when_its_writer_does_not_every_store_batch() {
        use crate::store::db::BATCH;
        let tmp = tempfile::tempdir().unwrap();
        let dir = CaseDir::init(&tmp.path().join("case"), None).unwrap();
        // Read as another process would, without `Store::open`'s write lock.
        let seen = || {
            let reader = rusqlite::Connection::open(dir.store_path()).unwrap();
            reader
                .query_row("SELECT COUNT(*) FROM records", [], |r| r.get::<_, i64>(0))
                .unwrap()
        };
        let before = seen();
        let mut s = LiveStore::open(dir.clone(), "proxy").unwrap();
        let appended = BATCH as i64 + 1;
        for _ in 0..appended {
            s.consent(&event("a")).unwrap();
        }
        // Only the last commit is visible: none of them yet.
        assert_eq!(seen(), before);
        s.commit().unwrap();
        assert_eq!(seen(), before + appended);
    }

    #[test]
    fn only_a_case_directory_has_a_live_store() {
        let tmp = tempfile::tempdir().unwrap();
        let loose = tmp.path().join("consentry.toml");
        std::fs::write(&loose, "").unwrap();
        assert!(LiveStore::open_beside(&loose, "tap").unwrap().is_none());
        let dir = CaseDir::init(&tmp.path().join("case"), None).unwrap();
        let found = LiveStore::open_beside(&dir.case_file(), "tap").unwrap();
        assert!(found.is_some());
    }

    #[test]
    fn a_run_keeps_its_case_file_as_evidence_once_per_content() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = CaseDir::init(&tmp.path().join("case"), None).unwrap();
        let begin = |session: &str| {
            let case_file = dir.case_file();
            let (case, sha256) = crate::case::load_hashed(&case_file).unwrap();
            let mut s = LiveStore::open(dir.clone(), "proxy").unwrap();
            let files = super::super::ingest::side_files(&case_file, &sha256, &[], &[]);
            let run = RunCase {
                case: &case,
                options: super::super::ingest::options_of(
                    &files,
                    Some("pixel7".into()),
                    &Default::default(),
                ),
                files,
            };
            s.begin(Some(run), session, "on 127.0.0.1:8080").unwrap();
            crate::source::hex(&sha256)
        };
        let first = begin("S1");
        assert_eq!(begin("S2"), first);
        let store = dir.open_store().unwrap();
        let annotations = store.bodies(Kind::Annotation).unwrap();
        assert_eq!(
            annotations[1],
            format!(
                r#"{{"text":"consentry proxy run S2 started on 127.0.0.1:8080 with case file {}; --device pixel7"}}"#,
                &first[..16]
            )
        );
        // Stored once (started, complete), checked by verify like a capture.
        let ingests = store.bodies(Kind::Ingest).unwrap();
        assert_eq!(ingests.len(), 2);
        assert!(ingests[0].contains(r#""kind":"case""#), "{}", ingests[0]);
        assert_eq!(store.verify(&dir.root).unwrap().files, 1);
        let copy = dir
            .evidence_dir()
            .join(format!("{}-consentry.toml", &first[..16]));
        assert_eq!(
            std::fs::read(copy).unwrap(),
            std::fs::read(dir.case_file()).unwrap()
        );
    }

    #[test]
    fn a_run_keeps_its_key_logs_as_they_stand_when_it_stops() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = CaseDir::init(&tmp.path().join("case"), None).unwrap();
        let path = tmp.path().join("keys.log");
        let line = format!("CLIENT_RANDOM {} {}\n", "01".repeat(32), "02".repeat(48));
        std::fs::write(&path, &line).unwrap();
        let key_logs = super::super::keylog::load(std::slice::from_ref(&path)).unwrap();
        // The file changes after it was read: what was read is stored.
        std::fs::write(&path, "changed").unwrap();
        let mut s = LiveStore::open(dir.clone(), "tap").unwrap();
        s.begin(None, "S", "on lo").unwrap();
        s.keep_key_logs(&[]).unwrap();
        assert_eq!(s.store.bodies(Kind::Annotation).unwrap().len(), 1);
        s.keep_key_logs(&key_logs).unwrap();
        let sha = crate::source::hex(&<sha2::Sha256 as sha2::Digest>::digest(line.as_bytes()));
        assert_eq!(
            s.store.bodies(Kind::Annotation).unwrap()[1],
            format!(
                r#"{{"text":"consentry tap run S stopped with key log {}"}}"#,
                &sha[..16]
            )
        );
        let copy = dir.evidence_dir().join(format!("{}-keys.log", &sha[..16]));
        assert_eq!(std::fs::read_to_string(copy).unwrap(), line);
        assert_eq!(s.store.verify(&dir.root).unwrap().files, 1);
    }

    #[test]
    fn consents_of_one_run_get_distinct_keys_and_survive_a_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = CaseDir::init(&tmp.path().join("case"), None).unwrap();
        let mut s = LiveStore::open(dir.clone(), "tap").unwrap();
        s.begin(None, "S", "on lo").unwrap();
        s.consent(&event("a")).unwrap();
        s.consent(&event("a")).unwrap();
        s.commit().unwrap();
        drop(s);
        let store = dir.open_store().unwrap();
        assert!(store.has_consent("tap:S:1").unwrap());
        assert!(store.has_consent("tap:S:2").unwrap());
        assert!(!store.has_consent("tap:S:3").unwrap());
    }

    /// A case directory whose store recorded a ring of 10 packets in files of at most
    /// 300 bytes, 2 kept: returns it, the kept files and the removed ones.
    fn recorded_ring() -> (tempfile::TempDir, CaseDir, Vec<PathBuf>, Vec<PathBuf>) {
        use crate::source::ring::{EvidenceRing, RingLimits};
        let tmp = tempfile::tempdir().unwrap();
        let dir = CaseDir::init(&tmp.path().join("case"), None).unwrap();
        let mut s = LiveStore::open(dir.clone(), "tap").unwrap();
        s.begin(None, "S", "on lo").unwrap();
        let limits = RingLimits {
            max_file_bytes: 300,
            max_files: 2,
        };
        let t0 = Timestamp::from_micros(1_764_000_000_000_000);
        let mut ring = EvidenceRing::create(&dir.evidence_dir(), t0, 65535, limits).unwrap();
        ring.interface(1).unwrap();
        let rel = ring_dir_in_case(&dir.root, &dir.evidence_dir()).unwrap();
        assert_eq!(rel, "evidence");
        let mut removed = Vec::new();
        let mut record = |s: &mut LiveStore, ring: &mut EvidenceRing| {
            for e in ring.take_events() {
                if let RingEvent::Removed(f) = &e {
                    removed.push(f.path.clone());
                }
                assert!(s.ring_event(&rel, &e).unwrap());
            }
            s.commit().unwrap();
        };
        for i in 0..10u8 {
            let t = Timestamp::from_micros(t0.micros() + i64::from(i));
            ring.write(t, 0, &[i; 61], 100, None).unwrap();
            record(&mut s, &mut ring);
        }
        ring.close().unwrap();
        record(&mut s, &mut ring);
        let kept: Vec<PathBuf> = ring.files().map(Path::to_path_buf).collect();
        (tmp, dir, kept, removed)
    }

    #[test]
    fn recorded_ring_files_verify_and_rotated_out_ones_are_not_missed() {
        let (_tmp, dir, kept, removed) = recorded_ring();
        assert_eq!(kept.len(), 2);
        assert!(!removed.is_empty() && removed.iter().all(|p| !p.exists()));
        let store = dir.open_store().unwrap();
        let v = store.verify(&dir.root).unwrap();
        assert_eq!(v.files, 2, "the two files still in the ring are re-hashed");
        let bodies: Vec<EvidenceFileBody> = store
            .bodies(Kind::Evidence)
            .unwrap()
            .iter()
            .map(|b| serde_json::from_str(b).unwrap())
            .collect();
        let closed: Vec<_> = bodies
            .iter()
            .filter(|b| b.event == EvidenceEvent::Closed)
            .collect();
        assert_eq!(closed.len(), kept.len() + removed.len());
        assert_eq!(closed.iter().map(|b| b.packets).sum::<u64>(), 10);
        for b in &closed {
            assert!(b.path.starts_with("evidence/tap-") && b.path.ends_with(".pcapng"));
            assert_eq!(b.kind, "pcapng");
            assert!(b.first <= b.last && b.first.is_some());
        }
    }

    #[test]
    fn the_case_report_lists_the_ring_files_still_expected_with_their_exchanges() {
        use crate::exchange::SourceKind;
        let (_tmp, dir, kept, _removed) = recorded_ring();
        let name = |p: &PathBuf| p.file_name().unwrap().to_str().unwrap().to_string();
        // Two exchanges in the newest file, one across the two kept files.
        let mut s = LiveStore::open(dir.clone(), "tap").unwrap();
        let locators = [
            format!("{} frames 1-2", name(&kept[1])),
            format!("{} frame 3", name(&kept[1])),
            format!("{} frame 2 to {} frame 1", name(&kept[0]), name(&kept[1])),
        ];
        for (i, locator) in locators.iter().enumerate() {
            let mut x = Exchange::new(
                format!("x-{i}"),
                SourceKind::Pcap,
                Timestamp::from_micros(1_764_000_000_000_000),
            );
            x.host = "example.org".into();
            x.evidence.locator = locator.clone();
            s.exchange(&x, &[], &[]).unwrap();
        }
        s.commit().unwrap();
        drop(s);
        let input = crate::cli::report::report_input(&dir).unwrap();
        let listed: Vec<(String, u64)> = input
            .evidence
            .iter()
            .map(|e| (e.path.clone(), e.exchanges))
            .collect();
        assert_eq!(
            listed,
            [
                (format!("evidence/{}", name(&kept[0])), 1),
                (format!("evidence/{}", name(&kept[1])), 3),
            ]
        );
        for (e, path) in input.evidence.iter().zip(&kept) {
            assert_eq!(e.kind, "pcapng");
            assert_eq!(e.sha256, crate::source::file_sha256(path).unwrap());
        }
    }

    #[test]
    fn a_ring_file_left_unrecorded_by_a_crash_is_recorded_by_the_next_run() {
        let (_tmp, dir, kept, _removed) = recorded_ring();
        // A file a killed run was writing: packets on disk, cut mid-block, no record.
        let crashed = dir.evidence_dir().join("tap-20261130T000000-00001.pcapng");
        let mut bytes = std::fs::read(&kept[1]).unwrap();
        bytes.truncate(bytes.len() - 7);
        std::fs::write(&crashed, &bytes).unwrap();
        std::fs::write(dir.evidence_dir().join("notes.txt"), b"not a ring file").unwrap();
        // A file a running ring (another tap into the same directory) is writing.
        let limits = crate::source::ring::RingLimits {
            max_file_bytes: 1 << 20,
            max_files: 2,
        };
        let t = Timestamp::from_micros(1_764_000_100_000_000);
        let mut running =
            crate::source::ring::EvidenceRing::create(&dir.evidence_dir(), t, 65535, limits)
                .unwrap();
        running.interface(1).unwrap();
        running.write(t, 0, &[1; 61], 100, None).unwrap();
        running.flush().unwrap();
        let mut s = LiveStore::open(dir.clone(), "tap").unwrap();
        let found = s
            .record_unrecorded_ring_files(&dir.evidence_dir(), "evidence")
            .unwrap();
        assert_eq!(found, ["tap-20261130T000000-00001.pcapng"]);
        // Recorded once: a second start finds nothing new.
        assert!(s
            .record_unrecorded_ring_files(&dir.evidence_dir(), "evidence")
            .unwrap()
            .is_empty());
        // Once the running ring is gone (closed here; a dead process's lock goes with
        // it too), its file is no longer skipped.
        let left = running.files().next().unwrap().to_path_buf();
        drop(running);
        assert!(!crate::source::ring::is_being_written(&left).unwrap());
        drop(s);
        let store = dir.open_store().unwrap();
        assert_eq!(store.verify(&dir.root).unwrap().files, 3);
        let last: EvidenceFileBody =
            serde_json::from_str(store.bodies(Kind::Evidence).unwrap().last().unwrap()).unwrap();
        assert_eq!(last.path, "evidence/tap-20261130T000000-00001.pcapng");
        assert_eq!(last.sha256, crate::source::file_sha256(&crashed).unwrap());
        assert_eq!(last.size, bytes.len() as u64);
        // The packets before the cut: all of the copied file's but its last.
        let whole = crate::source::ring::describe_found_file(&kept[1]).unwrap();
        assert_eq!(last.packets, whole.packets - 1);
        let notes = store.bodies(Kind::Annotation).unwrap();
        assert!(notes
            .last()
            .unwrap()
            .contains("tap-20261130T000000-00001.pcapng found unrecorded"));
        // Altered afterwards, it fails verify like any recorded file.
        std::fs::write(&crashed, b"x").unwrap();
        assert!(store.verify(&dir.root).is_err());
    }

    #[test]
    fn an_altered_or_vanished_ring_file_fails_verify_naming_it() {
        use crate::store::VerifyError;
        type Tamper = fn(&Path);
        let cases: [(&str, Tamper, &str); 3] = [
            (
                "a byte appended",
                |p| {
                    let mut bytes = std::fs::read(p).unwrap();
                    bytes.push(0);
                    std::fs::write(p, bytes).unwrap();
                },
                "SHA-256 is",
            ),
            (
                "a packet byte flipped",
                |p| {
                    let mut bytes = std::fs::read(p).unwrap();
                    let last = bytes.len() - 20;
                    bytes[last] ^= 1;
                    std::fs::write(p, bytes).unwrap();
                },
                "SHA-256 is",
            ),
            (
                "removed by hand",
                |p| std::fs::remove_file(p).unwrap(),
                "cannot be read",
            ),
        ];
        for (what, tamper, reason) in cases {
            let (_tmp, dir, kept, _) = recorded_ring();
            tamper(&kept[0]);
            let name = kept[0].file_name().unwrap().to_str().unwrap().to_string();
            match dir.open_store().unwrap().verify(&dir.root) {
                Err(e @ VerifyError::Evidence { .. }) => {
                    let m = e.to_string();
                    assert!(
                        m.contains(&name) && m.contains("(evidence record ") && m.contains(reason),
                        "{what}: {m}"
                    );
                }
                other => panic!("{what}: {other:?}"),
            }
        }
    }

    #[test]
    fn ring_directories_are_named_relative_to_the_case_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("case");
        let inside = root.join("evidence/ring");
        let outside = tmp.path().join("elsewhere");
        for d in [&inside, &outside] {
            std::fs::create_dir_all(d).unwrap();
        }
        assert_eq!(
            ring_dir_in_case(&root, &inside).as_deref(),
            Some("evidence/ring")
        );
        assert_eq!(ring_dir_in_case(&root, &root).as_deref(), Some(""));
        assert_eq!(ring_dir_in_case(&root, &outside), None);
        // The same directory through `..` is still inside.
        let roundabout = root.join("evidence/../evidence/ring");
        assert_eq!(
            ring_dir_in_case(&root, &roundabout).as_deref(),
            Some("evidence/ring")
        );
    }

    #[test]
    fn an_export_carries_the_ring_files_still_expected_and_its_verify_checks_them() {
        use crate::store::bundle;
        let (tmp, dir, kept, removed) = recorded_ring();
        let out = tmp.path().join("case.zip");
        let exported = bundle::export(&dir, &out).unwrap();
        let members: Vec<&str> = exported
            .manifest
            .files
            .iter()
            .map(|f| f.path.as_str())
            .collect();
        for p in &kept {
            let name = format!("evidence/{}", p.file_name().unwrap().to_str().unwrap());
            assert!(
                members.contains(&name.as_str()),
                "{name} not in {members:?}"
            );
        }
        for p in &removed {
            let name = p.file_name().unwrap().to_str().unwrap();
            assert!(
                !members.iter().any(|m| m.ends_with(name)),
                "{name} exported"
            );
        }
        assert_eq!(exported.manifest.counts["evidence_files"], 2);
        bundle::verify_bundle(&out).unwrap();

        // A ring file missing from the bundle (manifest consistent) is named.
        let short = tmp.path().join("short.zip");
        {
            let mut zin = zip::ZipArchive::new(std::fs::File::open(&out).unwrap()).unwrap();
            let mut zout = zip::ZipWriter::new(std::fs::File::create(&short).unwrap());
            let victim = format!(
                "evidence/{}",
                kept[0].file_name().unwrap().to_str().unwrap()
            );
            for i in 0..zin.len() {
                let mut m = zin.by_index(i).unwrap();
                let name = m.name().to_string();
                if name == victim {
                    continue;
                }
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut m, &mut bytes).unwrap();
                if name == "MANIFEST.json" {
                    let mut manifest: bundle::Manifest = serde_json::from_slice(&bytes).unwrap();
                    manifest.files.retain(|f| f.path != victim);
                    bytes = serde_json::to_vec(&manifest).unwrap();
                }
                zout.start_file(name, zip::write::SimpleFileOptions::default())
                    .unwrap();
                std::io::Write::write_all(&mut zout, &bytes).unwrap();
            }
            zout.finish().unwrap();
        }
        let e = bundle::verify_bundle(&short).unwrap_err();
        assert!(
            e.to_string()
                .contains("named by an evidence record but missing"),
            "{e}"
        );
    }
}
