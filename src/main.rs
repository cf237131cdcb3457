//! The `consentry` command: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc: the analysis allocates and frees many small buffers per exchange, which
/// glibc malloc serves markedly slower (see Cargo.toml).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = consentry::cli::Cli::parse();
    match consentry::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("consentry: error: {e:#}");
            ExitCode::from(consentry::cli::EXIT_USAGE)
        }
    }
}
