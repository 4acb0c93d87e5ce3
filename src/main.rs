//! The `imdsd` binary: parse arguments, set up logging, run, exit.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = imdsd::Cli::parse();
    imdsd::init_logging();
    imdsd::main(cli)
}
