//! The `consentry` command: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc rather than glibc malloc (see Cargo.toml): the analysis allocates and
/// frees many small buffers per exchange, and threads that free each other's memory
/// (the proxy hands every exchange to its analysis thread) do not wait on arena locks.
#[global_allocator]
static ALLOC: consentry::allocator::Mimalloc = consentry::allocator::Mimalloc;

fn main() -> ExitCode {
    let cli = consentry::cli::Cli::parse();
    if cli.command.is_capture_batch() {
        // Before any thread starts (the setter is not thread safe).
        ALLOC.keep_freed_memory();
    } else if cli.command.is_server() {
        ALLOC.purge_freed_memory_after(consentry::cli::Command::SERVER_PURGE_DELAY);
    }
    match consentry::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("consentry: error: {e:#}");
            ExitCode::from(consentry::cli::EXIT_USAGE)
        }
    }
}
