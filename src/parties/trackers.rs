//! The tracker database: which company a host belongs to, what kind of service it is
//! and which consent purposes that kind needs (DESIGN.md §4).
//!
//! The data lives in `signatures/trackers/*.toml` (format in that folder's
//! `README.md`): `[[category]]` tables (name → purposes, infrastructure flag) and
//! `[[entity]]` tables (name, owner, country, domains, categories, …). The shipped
//! files are compiled into the binary ([`TrackerDb::embedded`]); users can load
//! their own folder ([`TrackerDb::load_dir`]) or combine both
//! ([`TrackerDb::from_sources`] with [`EMBEDDED_SOURCES`]).
//!
//! Lookup matches domain suffixes on the normalised host, longest match first:
//! `abc.cloudfront.net` finds the entry `cloudfront.net`, `bugly.qq.com` wins over
//! `qq.com`. Loading is lenient about meaning (a duplicate domain keeps its first
//! entity, an unknown category contributes the default purposes) and strict about
//! syntax (unknown keys, wrong types); [`TrackerDb::check`] reports every semantic
//! problem with the file, line and key, for `consentry signatures check`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustc_hash::FxHashMap;
use serde::Deserialize;
use toml::Spanned;

use crate::consent::Purpose;

/// Largest database file `load_dir` reads; larger files are an error, not truncated.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// The shipped database files, compiled in: (file name, contents).
pub const EMBEDDED_SOURCES: &[(&str, &str)] = &[
    (
        "categories.toml",
        include_str!("../../signatures/trackers/categories.toml"),
    ),
    (
        "google.toml",
        include_str!("../../signatures/trackers/google.toml"),
    ),
    (
        "advertising.toml",
        include_str!("../../signatures/trackers/advertising.toml"),
    ),
    (
        "analytics.toml",
        include_str!("../../signatures/trackers/analytics.toml"),
    ),
    (
        "social.toml",
        include_str!("../../signatures/trackers/social.toml"),
    ),
    (
        "services.toml",
        include_str!("../../signatures/trackers/services.toml"),
    ),
    (
        "consent-management.toml",
        include_str!("../../signatures/trackers/consent-management.toml"),
    ),
    (
        "infrastructure.toml",
        include_str!("../../signatures/trackers/infrastructure.toml"),
    ),
    (
        "china.toml",
        include_str!("../../signatures/trackers/china.toml"),
    ),
    (
        "platform.toml",
        include_str!("../../signatures/trackers/platform.toml"),
    ),
];

/// A kind of service and the consent purposes it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Category {
    pub name: String,
    pub purposes: Vec<Purpose>,
    /// CDN, hosting, cloud infrastructure: processing on the operator's behalf.
    pub infrastructure: bool,
    /// The operating system's own services (device check-in, connectivity checks,
    /// the system's push channel …): a device talks to them whatever app runs.
    pub platform: bool,
    pub description: String,
}

/// A company (or one service of a company) that receives data.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    pub name: String,
    /// The company that owns the service; `None` when it is `name` itself.
    pub owner: Option<String>,
    /// ISO 3166-1 alpha-2 country of the company's seat.
    pub country: Option<String>,
    /// Domains matched as suffixes of the host.
    pub domains: Vec<String>,
    /// Category names, sorted and deduplicated.
    pub categories: Vec<String>,
    /// SDK names, for people reading reports.
    pub sdks: Vec<String>,
    pub iab_vendor_id: Option<u32>,
    resolved: Resolved,
    loc: EntityLoc,
}

impl Entity {
    /// The owning company: `owner`, or `name` when none is given.
    pub fn company(&self) -> &str {
        self.owner.as_deref().unwrap_or(&self.name)
    }

    /// Purposes the categories need, sorted; see [`Entity::needs_default_purposes`].
    pub fn purposes(&self) -> &[Purpose] {
        &self.resolved.purposes
    }

    /// Whether a category is unknown or has no purposes (and is not infrastructure):
    /// the caller then adds the purposes it assumes for unknown third parties, so a
    /// data mistake never hides a tracker.
    pub fn needs_default_purposes(&self) -> bool {
        self.resolved.needs_default
    }

    /// Whether every category is an infrastructure kind.
    pub fn infrastructure(&self) -> bool {
        self.resolved.infrastructure
    }

    /// Whether every category is a platform kind: the operating system's own
    /// service, not the app's receiver.
    pub fn platform(&self) -> bool {
        self.resolved.platform
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Resolved {
    purposes: Vec<Purpose>,
    needs_default: bool,
    infrastructure: bool,
    platform: bool,
}

/// Where an entity and its values were written, for [`TrackerDb::check`].
#[derive(Debug, Clone, Default, PartialEq)]
struct EntityLoc {
    file: Arc<str>,
    /// Index of the `[[entity]]` table within its file.
    index: usize,
    name_line: usize,
    country_line: usize,
    domain_lines: Vec<usize>,
    /// Category names as written (before sorting), with their lines.
    categories: Vec<(String, usize)>,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct CategoryLoc {
    file: Arc<str>,
    index: usize,
    name_line: usize,
    /// Purpose names as written, with their lines (unknown ones are dropped from
    /// `Category::purposes` but reported by `check`).
    purposes: Vec<(String, usize)>,
}

/// Where a match came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Match<'a> {
    pub entity: &'a Entity,
    /// The database domain that matched (a suffix of the host).
    pub domain: &'a str,
}

/// The loaded database with its lookup index.
#[derive(Debug, Clone, Default)]
pub struct TrackerDb {
    categories: Vec<Category>,
    category_locs: Vec<CategoryLoc>,
    entities: Vec<Entity>,
    /// Domain → entity index; the first entity listing a domain keeps it.
    index: FxHashMap<Box<str>, u32>,
}

/// A file could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{file}:{line}: {message}")]
    Syntax {
        file: String,
        line: usize,
        message: String,
    },
    /// (Here and below the cause is in the message, not also the `source`, so that
    /// `{:#}` says it once.)
    #[error("reading {}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// A list file that is too large, not text, or not readable.
    #[error("{}: {error}", path.display())]
    File {
        path: PathBuf,
        error: crate::whole_file::WholeFileError,
    },
}

/// What is wrong with a database entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProblemKind {
    DuplicateDomain,
    UnknownCategory,
    EmptyDomains,
    MalformedDomain,
    DuplicateEntityName,
    NoCategories,
    BadCountry,
    DuplicateCategory,
    UnknownPurpose,
    CategoryWithoutPurpose,
    /// Two entities claim the same IAB TCF vendor id.
    DuplicateVendorId,
}

/// One problem found by [`TrackerDb::check`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    pub file: String,
    pub line: usize,
    /// TOML path of the offending key, e.g. `entity[3].domains[1]`.
    pub key: String,
    pub kind: ProblemKind,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.file, self.line, self.key, self.message
        )
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    category: Vec<RawCategory>,
    #[serde(default)]
    entity: Vec<RawEntity>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCategory {
    name: Spanned<String>,
    #[serde(default)]
    purposes: Vec<Spanned<String>>,
    #[serde(default)]
    infrastructure: bool,
    #[serde(default)]
    platform: bool,
    #[serde(default)]
    description: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntity {
    name: Spanned<String>,
    owner: Option<String>,
    country: Option<Spanned<String>>,
    #[serde(default)]
    domains: Vec<Spanned<String>>,
    #[serde(default)]
    categories: Vec<Spanned<String>>,
    #[serde(default)]
    sdks: Vec<String>,
    iab_vendor_id: Option<u32>,
}

/// The `*.toml` files of a folder as (path, contents), sorted by path.
fn read_dir_files(dir: &Path) -> Result<Vec<(String, String)>, LoadError> {
    let io = |error| LoadError::Io {
        path: dir.to_path_buf(),
        error,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        let text = crate::whole_file::read_text(&path, MAX_FILE_BYTES).map_err(|error| {
            LoadError::File {
                path: path.clone(),
                error,
            }
        })?;
        files.push((path.display().to_string(), text));
    }
    Ok(files)
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    memchr::memchr_iter(b'\n', &text.as_bytes()[..end]).count() + 1
}

/// [`line_of`] for the many spans of one file: its newlines found once, each line a
/// binary search. Counting from the start for every span of the embedded database
/// (thousands of domains) cost about 30 M instructions at every start (callgrind).
struct Lines {
    newlines: Vec<usize>,
    len: usize,
}

impl Lines {
    fn new(text: &str) -> Lines {
        Lines {
            newlines: memchr::memchr_iter(b'\n', text.as_bytes()).collect(),
            len: text.len(),
        }
    }

    /// 1-based line of a byte offset: one more than the newlines before it.
    fn of(&self, offset: usize) -> usize {
        let end = offset.min(self.len);
        self.newlines.partition_point(|&p| p < end) + 1
    }
}

impl TrackerDb {
    /// The shipped database, parsed once per process and shared.
    pub fn embedded() -> Arc<TrackerDb> {
        static DB: OnceLock<Arc<TrackerDb>> = OnceLock::new();
        DB.get_or_init(|| {
            // Invariant: the embedded files parse; `tests::embedded_database_is_clean`
            // loads and checks them on every test run.
            let db = TrackerDb::from_sources(EMBEDDED_SOURCES.iter().copied())
                .expect("embedded tracker database parses");
            Arc::new(db)
        })
        .clone()
    }

    /// Loads every `*.toml` file of a folder, in file-name order. When the folder
    /// defines no `[[category]]`, the embedded categories are used.
    pub fn load_dir(dir: &Path) -> Result<TrackerDb, LoadError> {
        let files = read_dir_files(dir)?;
        let mut db = TrackerDb::from_sources(files.iter().map(|(n, t)| (n.as_str(), t.as_str())))?;
        if db.categories.is_empty() {
            let cats = EMBEDDED_SOURCES
                .iter()
                .filter(|(n, _)| *n == "categories.toml");
            let base = TrackerDb::from_sources(cats.copied())?;
            db.categories = base.categories;
            db.category_locs = base.category_locs;
            db.resolve();
        }
        Ok(db)
    }

    /// The user's folder on top of the embedded database: the folder's files come
    /// first, so where both list a domain the user's entity wins (and `check`
    /// reports the embedded entry as the duplicate).
    pub fn load_dir_over_embedded(dir: &Path) -> Result<TrackerDb, LoadError> {
        let files = read_dir_files(dir)?;
        let user = files.iter().map(|(n, t)| (n.as_str(), t.as_str()));
        TrackerDb::from_sources(user.chain(EMBEDDED_SOURCES.iter().copied()))
    }

    /// Parses database files given as (file name, contents), in order.
    pub fn from_sources<'a>(
        sources: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<TrackerDb, LoadError> {
        let mut db = TrackerDb::default();
        for (name, text) in sources {
            db.add_file(name, text)?;
        }
        db.resolve();
        Ok(db)
    }

    fn add_file(&mut self, name: &str, text: &str) -> Result<(), LoadError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| line_of(text, s.start));
            let snippet = text.lines().nth(line - 1).unwrap_or("").trim();
            let mut message = e.message().to_string();
            if !snippet.is_empty() {
                message.push_str(&format!(" (in `{snippet}`)"));
            }
            LoadError::Syntax {
                file: name.to_string(),
                line,
                message,
            }
        })?;
        let file: Arc<str> = Arc::from(name);
        let lines = Lines::new(text);
        let line = |span: std::ops::Range<usize>| lines.of(span.start);
        for (index, c) in raw.category.into_iter().enumerate() {
            let purposes: Vec<(String, usize)> = c
                .purposes
                .iter()
                .map(|p| (p.get_ref().clone(), line(p.span())))
                .collect();
            self.category_locs.push(CategoryLoc {
                file: file.clone(),
                index,
                name_line: line(c.name.span()),
                purposes: purposes.clone(),
            });
            let mut known: Vec<Purpose> = purposes
                .iter()
                .filter_map(|(p, _)| Purpose::parse(p))
                .collect();
            known.sort();
            known.dedup();
            self.categories.push(Category {
                name: c.name.into_inner(),
                purposes: known,
                infrastructure: c.infrastructure,
                platform: c.platform,
                description: c.description,
            });
        }
        for (index, e) in raw.entity.into_iter().enumerate() {
            let loc = EntityLoc {
                file: file.clone(),
                index,
                name_line: line(e.name.span()),
                country_line: e.country.as_ref().map_or(0, |c| line(c.span())),
                domain_lines: e.domains.iter().map(|d| line(d.span())).collect(),
                categories: e
                    .categories
                    .iter()
                    .map(|c| (c.get_ref().clone(), line(c.span())))
                    .collect(),
            };
            let mut categories: Vec<String> =
                e.categories.into_iter().map(Spanned::into_inner).collect();
            categories.sort();
            categories.dedup();
            self.entities.push(Entity {
                name: e.name.into_inner(),
                owner: e.owner,
                country: e.country.map(Spanned::into_inner),
                domains: e.domains.into_iter().map(Spanned::into_inner).collect(),
                categories,
                sdks: e.sdks,
                iab_vendor_id: e.iab_vendor_id,
                resolved: Resolved::default(),
                loc,
            });
        }
        Ok(())
    }

    /// Resolves category purposes and builds the domain index.
    fn resolve(&mut self) {
        let by_name: HashMap<&str, &Category> = self
            .categories
            .iter()
            .rev()
            .map(|c| (c.name.as_str(), c))
            .collect();
        for entity in &mut self.entities {
            let mut resolved = Resolved {
                infrastructure: !entity.categories.is_empty(),
                platform: !entity.categories.is_empty(),
                needs_default: entity.categories.is_empty(),
                purposes: Vec::new(),
            };
            for name in &entity.categories {
                match by_name.get(name.as_str()) {
                    Some(cat) => {
                        resolved.purposes.extend_from_slice(&cat.purposes);
                        resolved.infrastructure &= cat.infrastructure;
                        resolved.platform &= cat.platform;
                        if cat.purposes.is_empty() && !cat.infrastructure && !cat.platform {
                            resolved.needs_default = true;
                        }
                    }
                    None => {
                        resolved.infrastructure = false;
                        resolved.platform = false;
                        resolved.needs_default = true;
                    }
                }
            }
            resolved.purposes.sort();
            resolved.purposes.dedup();
            entity.resolved = resolved;
        }
        self.index.clear();
        for (i, entity) in self.entities.iter().enumerate() {
            // Entities beyond u32::MAX cannot be indexed; no real list comes close.
            let Ok(i) = u32::try_from(i) else { break };
            for domain in &entity.domains {
                self.index.entry(domain.as_str().into()).or_insert(i);
            }
        }
    }

    /// All entities, in file order.
    pub fn entities(&self) -> &[Entity] {
        &self.entities
    }

    /// All categories, in file order.
    pub fn categories(&self) -> &[Category] {
        &self.categories
    }

    /// The category called `name`.
    pub fn category(&self, name: &str) -> Option<&Category> {
        self.categories.iter().find(|c| c.name == name)
    }

    /// The entity of a normalised host: the longest database domain that equals the
    /// host or is a parent of it. No allocation.
    pub fn lookup(&self, host: &str) -> Option<Match<'_>> {
        let mut rest = host;
        loop {
            if let Some((domain, &i)) = self.index.get_key_value(rest) {
                let entity = self.entities.get(i as usize)?;
                return Some(Match { entity, domain });
            }
            let dot = rest.find('.')?;
            rest = &rest[dot + 1..];
        }
    }

    /// Every semantic problem of the database, sorted by file and line.
    pub fn check(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        self.check_categories(&mut problems);
        self.check_entities(&mut problems);
        problems.sort();
        problems
    }

    fn check_categories(&self, out: &mut Vec<Problem>) {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (cat, loc) in self.categories.iter().zip(&self.category_locs) {
            let key = format!("category[{}]", loc.index);
            let problem = |line, key: String, kind, message: String| Problem {
                file: loc.file.to_string(),
                line,
                key,
                kind,
                message,
            };
            if seen.insert(&cat.name, loc.name_line).is_some() {
                out.push(problem(
                    loc.name_line,
                    format!("{key}.name"),
                    ProblemKind::DuplicateCategory,
                    format!("category {:?} is defined twice", cat.name),
                ));
            }
            for (j, (purpose, line)) in loc.purposes.iter().enumerate() {
                if Purpose::parse(purpose).is_none() {
                    out.push(problem(
                        *line,
                        format!("{key}.purposes[{j}]"),
                        ProblemKind::UnknownPurpose,
                        format!(
                            "unknown purpose {purpose:?} (known: advertising, analytics, \
                             personalization, social, functional)"
                        ),
                    ));
                }
            }
            if cat.purposes.is_empty() && !cat.infrastructure && !cat.platform {
                out.push(problem(
                    loc.name_line,
                    format!("{key}.purposes"),
                    ProblemKind::CategoryWithoutPurpose,
                    format!(
                        "category {:?} has no purpose and is neither infrastructure nor platform",
                        cat.name
                    ),
                ));
            }
        }
    }

    fn check_entities(&self, out: &mut Vec<Problem>) {
        let mut names: HashMap<&str, &EntityLoc> = HashMap::new();
        let mut vendor_ids: HashMap<u32, &str> = HashMap::new();
        // domain → (entity index, position in its list) of the first occurrence.
        let mut domains: HashMap<&str, (usize, usize)> = HashMap::new();
        for (ei, entity) in self.entities.iter().enumerate() {
            let loc = &entity.loc;
            let key = format!("entity[{}]", loc.index);
            let problem = |line: usize, key: String, kind, message: String| Problem {
                file: loc.file.to_string(),
                line,
                key,
                kind,
                message,
            };
            if let Some(first) = names.insert(&entity.name, loc) {
                out.push(problem(
                    loc.name_line,
                    format!("{key}.name"),
                    ProblemKind::DuplicateEntityName,
                    format!(
                        "entity {:?} is already defined at {}:{}",
                        entity.name, first.file, first.name_line
                    ),
                ));
                names.insert(&entity.name, first);
            }
            if let Some(id) = entity.iab_vendor_id {
                if let Some(first) = vendor_ids.insert(id, &entity.name) {
                    out.push(problem(
                        loc.name_line,
                        format!("{key}.iab_vendor_id"),
                        ProblemKind::DuplicateVendorId,
                        format!("IAB vendor id {id} is already that of {first:?}"),
                    ));
                    vendor_ids.insert(id, first);
                }
            }
            if let Some(country) = &entity.country {
                let ok = country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase());
                if !ok {
                    out.push(problem(
                        loc.country_line,
                        format!("{key}.country"),
                        ProblemKind::BadCountry,
                        format!("country {country:?} is not an ISO 3166-1 alpha-2 code"),
                    ));
                }
            }
            if entity.domains.is_empty() {
                out.push(problem(
                    loc.name_line,
                    format!("{key}.domains"),
                    ProblemKind::EmptyDomains,
                    format!("entity {:?} lists no domains", entity.name),
                ));
            }
            if entity.categories.is_empty() {
                out.push(problem(
                    loc.name_line,
                    format!("{key}.categories"),
                    ProblemKind::NoCategories,
                    format!("entity {:?} lists no categories", entity.name),
                ));
            }
            for (ci, (name, line)) in loc.categories.iter().enumerate() {
                if self.category(name).is_none() {
                    out.push(problem(
                        *line,
                        format!("{key}.categories[{ci}]"),
                        ProblemKind::UnknownCategory,
                        format!("unknown category {name:?} in entity {:?}", entity.name),
                    ));
                }
            }
            for (di, domain) in entity.domains.iter().enumerate() {
                let line = loc.domain_lines.get(di).copied().unwrap_or(loc.name_line);
                let dkey = format!("{key}.domains[{di}]");
                if let Some(why) = malformed_domain(domain) {
                    out.push(problem(
                        line,
                        dkey.clone(),
                        ProblemKind::MalformedDomain,
                        format!("domain {domain:?} {why}"),
                    ));
                }
                match domains.get(domain.as_str()) {
                    Some(&(first_entity, _)) if first_entity == ei => out.push(problem(
                        line,
                        dkey,
                        ProblemKind::DuplicateDomain,
                        format!("domain {domain:?} is listed twice in {:?}", entity.name),
                    )),
                    Some(&(first_entity, first_pos)) => {
                        let other = &self.entities[first_entity];
                        let other_line = other
                            .loc
                            .domain_lines
                            .get(first_pos)
                            .copied()
                            .unwrap_or(other.loc.name_line);
                        out.push(problem(
                            line,
                            dkey,
                            ProblemKind::DuplicateDomain,
                            format!(
                                "domain {domain:?} already belongs to {:?} ({}:{})",
                                other.name, other.loc.file, other_line
                            ),
                        ));
                    }
                    None => {
                        domains.insert(domain, (ei, di));
                    }
                }
            }
        }
    }

    /// Entity counts per country (entities without a country under `""`).
    pub fn count_by_country(&self) -> BTreeMap<&str, usize> {
        let mut counts = BTreeMap::new();
        for e in &self.entities {
            *counts
                .entry(e.country.as_deref().unwrap_or(""))
                .or_insert(0) += 1;
        }
        counts
    }
}

/// Why a database domain is malformed, or `None` when it is a plain lower-case
/// ASCII name of at least two labels.
fn malformed_domain(domain: &str) -> Option<&'static str> {
    if domain.is_empty() {
        return Some("is empty");
    }
    if domain.contains("://") {
        return Some("has a scheme (write the host only)");
    }
    if domain.contains('/') {
        return Some("has a path (write the host only)");
    }
    if domain.contains(':') {
        return Some("has a port (write the host only)");
    }
    if domain.chars().any(char::is_whitespace) {
        return Some("contains white space");
    }
    if domain.contains('*') {
        return Some("has a wildcard (every domain already matches its subdomains)");
    }
    if !domain.is_ascii() {
        return Some("is not ASCII (write IDNs in punycode, xn--…)");
    }
    if domain.bytes().any(|b| b.is_ascii_uppercase()) {
        return Some("is not lower case");
    }
    if domain.bytes().any(|b| {
        !(b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.' || b == b'_')
    }) {
        return Some("has characters not allowed in host names");
    }
    if domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
        return Some("has an empty label");
    }
    if !domain.contains('.') {
        return Some("is a single label (it would match a whole top-level domain)");
    }
    if domain.split('.').any(|l| l.len() > 63) {
        return Some("has a label longer than 63 characters");
    }
    None
}

#[cfg(test)]
mod line_tests {
    use super::*;
    use proptest::prelude::*;

    /// The byte-by-byte count [`line_of`] was before it used `memchr`.
    fn naive_line(text: &str, offset: usize) -> usize {
        let end = offset.min(text.len());
        text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    proptest! {
        #[test]
        fn lines_agree_with_counting(text in "[a\\n=\"é]{0,200}", offsets in prop::collection::vec(0usize..260, 1..20)) {
            let lines = Lines::new(&text);
            for o in offsets {
                prop_assert_eq!(lines.of(o), naive_line(&text, o));
                prop_assert_eq!(line_of(&text, o), naive_line(&text, o));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(text: &str) -> TrackerDb {
        let cats = EMBEDDED_SOURCES[0];
        TrackerDb::from_sources([cats, ("test.toml", text)]).expect("test database parses")
    }

    fn kinds(db: &TrackerDb) -> Vec<(ProblemKind, usize)> {
        db.check()
            .into_iter()
            .filter(|p| p.file == "test.toml")
            .map(|p| (p.kind, p.line))
            .collect()
    }

    #[test]
    fn embedded_database_is_clean() {
        let db = TrackerDb::embedded();
        let problems = db.check();
        for p in &problems {
            eprintln!("{p}");
        }
        assert!(problems.is_empty(), "{} problems", problems.len());
        let total = db.entities().len();
        let chinese = db.count_by_country().get("CN").copied().unwrap_or(0);
        println!("tracker database: {total} entities, {chinese} Chinese (country = \"CN\")");
        assert!(total >= 150, "only {total} entities");
        assert!(chinese >= 30, "only {chinese} Chinese entities");
    }

    #[test]
    fn every_embedded_file_is_listed() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("signatures/trackers");
        let from_dir = TrackerDb::load_dir(&dir).expect("signatures/trackers loads");
        assert_eq!(
            from_dir.entities().len(),
            TrackerDb::embedded().entities().len()
        );
        assert!(from_dir.check().is_empty());
    }

    #[test]
    fn longest_suffix_wins() {
        let db = db(r#"
[[entity]]
name = "Big"
domains = ["big.example"]
categories = ["infrastructure"]

[[entity]]
name = "Big Ads"
owner = "Big"
domains = ["ads.big.example"]
categories = ["advertising"]
"#);
        let m = db.lookup("x.ads.big.example").expect("match");
        assert_eq!(
            (m.entity.name.as_str(), m.domain),
            ("Big Ads", "ads.big.example")
        );
        assert_eq!(m.entity.company(), "Big");
        assert_eq!(
            db.lookup("ads.big.example").map(|m| m.domain),
            Some("ads.big.example")
        );
        assert_eq!(
            db.lookup("cdn.big.example").map(|m| m.domain),
            Some("big.example")
        );
        assert_eq!(
            db.lookup("big.example").map(|m| m.domain),
            Some("big.example")
        );
        assert!(db.lookup("notbig.example").is_none());
        assert!(db.lookup("example").is_none());
        assert!(db.lookup("").is_none());
        assert!(db.lookup(".").is_none());
    }

    #[test]
    fn purposes_and_infrastructure_resolve() {
        let db = db(r#"
[[entity]]
name = "Attr"
domains = ["attr.example"]
categories = ["attribution", "crash-reporting"]

[[entity]]
name = "Cdn"
domains = ["cdn.example"]
categories = ["cdn", "hosting"]

[[entity]]
name = "Mixed"
domains = ["mixed.example"]
categories = ["cdn", "analytics"]

[[entity]]
name = "Typo"
domains = ["typo.example"]
categories = ["advertsing"]
"#);
        let get = |n: &str| db.entities().iter().find(|e| e.name == n).expect(n);
        let attr = get("Attr");
        assert_eq!(attr.purposes(), [Purpose::Advertising, Purpose::Analytics]);
        assert!(!attr.infrastructure() && !attr.needs_default_purposes());
        let cdn = get("Cdn");
        assert!(cdn.purposes().is_empty() && cdn.infrastructure());
        let mixed = get("Mixed");
        assert_eq!(mixed.purposes(), [Purpose::Analytics]);
        assert!(!mixed.infrastructure());
        let typo = get("Typo");
        assert!(typo.needs_default_purposes() && !typo.infrastructure());
        assert!(!typo.platform() && !cdn.platform() && !attr.platform());
    }

    #[test]
    fn platform_resolves_only_when_every_category_is_one() {
        let db = db(r#"
[[entity]]
name = "System"
domains = ["system.example"]
categories = ["platform"]

[[entity]]
name = "System and ads"
domains = ["both.example"]
categories = ["platform", "advertising"]
"#);
        let get = |n: &str| db.entities().iter().find(|e| e.name == n).expect(n);
        let system = get("System");
        assert!(system.platform() && !system.infrastructure());
        // No purposes of its own, and none assumed: it is never judged as the app's
        // receiver unless the case asks (then as an unknown third party).
        assert!(system.purposes().is_empty() && !system.needs_default_purposes());
        let both = get("System and ads");
        assert!(!both.platform());
        assert_eq!(both.purposes(), [Purpose::Advertising]);
        assert!(db.check().is_empty());
    }

    #[test]
    fn check_finds_each_problem_with_its_line() {
        let db = db(r#"[[entity]]
name = "One"
domains = ["one.example", "one.example"]
categories = ["advertising"]

[[entity]]
name = "Two"
domains = [
  "one.example",
  "HTTPS://two.example/path",
  "Two.example",
  "two.example:443",
  "two .example",
  "localhost",
]
categories = ["advertising", "made-up"]

[[entity]]
name = "One"
country = "usa"
domains = []
categories = []

[[entity]]
name = "Three"
iab_vendor_id = 7
domains = ["three.example"]
categories = ["advertising"]

[[entity]]
name = "Four"
iab_vendor_id = 7
domains = ["four.example"]
categories = ["advertising"]
"#);
        let got = kinds(&db);
        let want = [
            (ProblemKind::DuplicateDomain, 3),
            (ProblemKind::DuplicateDomain, 9),
            (ProblemKind::MalformedDomain, 10),
            (ProblemKind::MalformedDomain, 11),
            (ProblemKind::MalformedDomain, 12),
            (ProblemKind::MalformedDomain, 13),
            (ProblemKind::MalformedDomain, 14),
            (ProblemKind::UnknownCategory, 16),
            (ProblemKind::DuplicateEntityName, 19),
            (ProblemKind::BadCountry, 20),
            (ProblemKind::EmptyDomains, 19),
            (ProblemKind::NoCategories, 19),
            (ProblemKind::DuplicateVendorId, 31),
        ];
        for w in want {
            assert!(got.contains(&w), "missing {w:?} in {got:?}");
        }
        assert_eq!(got.len(), want.len(), "{got:?}");
        let text: Vec<String> = db.check().iter().map(ToString::to_string).collect();
        assert!(
            text.iter()
                .any(|t| t.starts_with("test.toml:9: entity[1].domains[0]: ")
                    && t.contains("already belongs to \"One\" (test.toml:3)")),
            "{text:?}"
        );
    }

    #[test]
    fn check_finds_category_problems() {
        let db = TrackerDb::from_sources([(
            "test.toml",
            r#"
[[category]]
name = "ads"
purposes = ["advertising", "marketing"]

[[category]]
name = "ads"
purposes = ["advertising"]

[[category]]
name = "nothing"
"#,
        )])
        .expect("parses");
        let got = kinds(&db);
        assert!(got.contains(&(ProblemKind::UnknownPurpose, 4)), "{got:?}");
        assert!(
            got.contains(&(ProblemKind::DuplicateCategory, 7)),
            "{got:?}"
        );
        assert!(
            got.contains(&(ProblemKind::CategoryWithoutPurpose, 11)),
            "{got:?}"
        );
    }

    #[test]
    fn syntax_errors_name_file_line_and_key() {
        let bad = [
            (
                "[[entity]]\nname = \"A\"\ndomain = [\"a.example\"]\n",
                3,
                "domain",
            ),
            ("[[entity]]\nname = \"A\"\ndomains = [3]\n", 3, "domains"),
            (
                "[[entity]]\nname = \"A\"\ndomains = [\"a.example\"\n",
                3,
                "",
            ),
            ("[[entity]]\ndomains = [\"a.example\"]\n", 1, ""),
        ];
        for (text, line, key) in bad {
            let err = TrackerDb::from_sources([("bad.toml", text)]).expect_err(text);
            let LoadError::Syntax {
                file,
                line: got,
                message,
            } = &err
            else {
                panic!("{err}")
            };
            assert_eq!(file, "bad.toml");
            assert!(*got == line || *got == line + 1, "{err} (want line {line})");
            assert!(message.contains(key), "{err} should name {key}");
        }
    }

    #[test]
    fn load_dir_uses_embedded_categories_and_rejects_bad_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("mine.toml"),
            "[[entity]]\nname = \"Mine\"\ndomains = [\"mine.example\"]\ncategories = [\"analytics\"]\n",
        )
        .expect("write");
        std::fs::write(dir.path().join("notes.txt"), "not toml").expect("write");
        let db = TrackerDb::load_dir(dir.path()).expect("loads");
        assert_eq!(db.entities().len(), 1);
        assert!(db.check().is_empty(), "{:?}", db.check());
        assert_eq!(
            db.lookup("a.mine.example")
                .map(|m| m.entity.purposes().to_vec()),
            Some(vec![Purpose::Analytics])
        );

        let over = TrackerDb::load_dir_over_embedded(dir.path()).expect("loads");
        assert_eq!(
            over.entities().len(),
            TrackerDb::embedded().entities().len() + 1
        );
        assert!(over.check().is_empty());
        // The user's entry overrides an embedded domain; check names the duplicate.
        std::fs::write(
            dir.path().join("override.toml"),
            "[[entity]]\nname = \"My Sentry\"\ndomains = [\"sentry.io\"]\ncategories = [\"hosting\"]\n",
        )
        .expect("write");
        let over = TrackerDb::load_dir_over_embedded(dir.path()).expect("loads");
        assert_eq!(
            over.lookup("o1.ingest.sentry.io")
                .map(|m| m.entity.name.as_str()),
            Some("My Sentry")
        );
        let problems = over.check();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].kind, ProblemKind::DuplicateDomain);
        assert_eq!(problems[0].file, "analytics.toml");
        std::fs::remove_file(dir.path().join("override.toml")).expect("remove");

        std::fs::write(dir.path().join("zbad.toml"), "[[entity]]\nname = 1\n").expect("write");
        let err = TrackerDb::load_dir(dir.path()).expect_err("bad file");
        assert!(err.to_string().contains("zbad.toml:2:"), "{err}");
        assert!(TrackerDb::load_dir(&dir.path().join("missing")).is_err());
    }

    /// The naive model: scan every domain, keep the longest that the host is within;
    /// on equal domains the first entity wins.
    fn naive_lookup<'a>(db: &'a TrackerDb, host: &str) -> Option<(&'a str, &'a str)> {
        let mut best: Option<(&str, &str)> = None;
        for e in db.entities() {
            for d in &e.domains {
                let within = host == d
                    || (host.len() > d.len()
                        && host.ends_with(d.as_str())
                        && host.as_bytes()[host.len() - d.len() - 1] == b'.');
                if within && best.is_none_or(|(b, _)| d.len() > b.len()) {
                    best = Some((d, &e.name));
                }
            }
        }
        best
    }

    proptest::proptest! {
        #[test]
        fn lookup_matches_naive_model(
            pick in 0usize..10_000,
            prefix in proptest::collection::vec("[a-z0-9-]{0,6}", 0..4),
            cut in 0usize..40,
        ) {
            let db = TrackerDb::embedded();
            let all: Vec<&str> = db.entities().iter().flat_map(|e| e.domains.iter().map(String::as_str)).collect();
            let base = all[pick % all.len()];
            let mut host = prefix.join(".");
            if !host.is_empty() {
                host.push('.');
            }
            host.push_str(base);
            // Also probe truncated hosts (partial labels, lone suffixes).
            let host = &host[cut.min(host.len())..];
            let got = db.lookup(host).map(|m| (m.domain, m.entity.name.as_str()));
            proptest::prop_assert_eq!(got, naive_lookup(&db, host), "host {:?}", host);
        }
    }
}
