//! The `imdsd` binary: parse arguments, set up logging, run, exit.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = imdsd::cli::Cli::parse();
    imdsd::logging::init();
    imdsd::run::main(cli)
}
