//! `consentry signatures check [DIR]`: validate the tracker database, the citation
//! table and the CMP endpoint table (`signatures/consent.toml`): the embedded ones, or
//! a directory of tracker files and a CMP table file of your own.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use crate::consent::cmp::CmpTable;
use crate::parties::TrackerDb;
use crate::rules::Catalogue;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A directory of tracker TOML files to check instead of the embedded database.
    pub dir: Option<PathBuf>,
    /// A CMP endpoint table to check instead of the embedded `signatures/consent.toml`.
    #[arg(long, value_name = "FILE")]
    pub cmp: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let db = match &args.dir {
        Some(dir) => Arc::new(TrackerDb::load_dir(dir)?),
        None => TrackerDb::embedded(),
    };
    let catalogue = Catalogue::embedded();
    let cmp = match &args.cmp {
        Some(path) => {
            let text = crate::whole_file::read_text(path, crate::parties::trackers::MAX_FILE_BYTES)
                .with_context(|| format!("CMP table {}", path.display()))?;
            CmpTable::parse(&text).with_context(|| format!("parsing {}", path.display()))?
        }
        None => CmpTable::embedded().clone(),
    };
    let mut problems: Vec<String> = db.check().iter().map(ToString::to_string).collect();
    problems.extend(cmp.check());
    for p in &problems {
        println!("{p}");
    }
    let chinese = db.count_by_country().get("CN").copied().unwrap_or(0);
    println!(
        "{} entities ({chinese} Chinese, {} with an IAB vendor id), {} domains, {} citations, {} CMP endpoints: {}",
        db.entities().len(),
        db.entities().iter().filter(|e| e.iab_vendor_id.is_some()).count(),
        db.entities().iter().map(|e| e.domains.len()).sum::<usize>(),
        catalogue.citations.len(),
        cmp.endpoints().len(),
        if problems.is_empty() {
            "OK".to_string()
        } else {
            format!("{} problems", problems.len())
        }
    );
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_USAGE)
    })
}
