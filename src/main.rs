//! The `imdsd` binary: parse arguments, set up logging, run, exit.

use std::process::ExitCode;

use clap::Parser;

/// jemalloc, with a background thread that gives freed memory back to the
/// system within a second (`.cargo/config.toml`): after a burst of
/// connections closes, the daemon returns to its idle size, where glibc's
/// malloc kept most of it.
#[cfg(not(fuzzing))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = imdsd::Cli::parse();
    imdsd::init_logging();
    imdsd::main(cli)
}
