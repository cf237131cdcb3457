//! `consentry signatures check [DIR]`: validate the tracker database and the citation
//! table, the embedded ones or a directory of your own.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use crate::parties::TrackerDb;
use crate::rules::Catalogue;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A directory of tracker TOML files to check instead of the embedded database.
    pub dir: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let db = match &args.dir {
        Some(dir) => Arc::new(TrackerDb::load_dir(dir)?),
        None => TrackerDb::embedded(),
    };
    let catalogue = Catalogue::embedded();
    let problems = db.check();
    for p in &problems {
        println!("{p}");
    }
    let chinese = db.count_by_country().get("CN").copied().unwrap_or(0);
    println!(
        "{} entities ({chinese} Chinese), {} domains, {} citations: {}",
        db.entities().len(),
        db.entities().iter().map(|e| e.domains.len()).sum::<usize>(),
        catalogue.citations.len(),
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
