//! The subcommands, and the one place where an error becomes a message and
//! an exit code (ripgrep's `main`): 0 success, 1 a runtime failure, 2 a
//! wrong command line (as clap), 64 (EX_USAGE) a bad config.
//!
//! - [`daemon`]: `imdsd run`: the daemon's main loop, reloads, shutdown.
//! - [`client`]: the commands that talk to a running daemon.

mod client;
mod daemon;

use std::path::Path;
use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::config::{self, ConfigError, LoadedConfig};
use crate::control::client::ClientError;
use crate::environment::Environment;

/// Exit code for a config that is missing or invalid.
const EXIT_CONFIG: u8 = 64;
/// Exit code for a wrong command line, as clap uses.
const EXIT_USAGE: u8 = 2;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RunError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No config file, and nothing to serve without one either.
    #[error("{not_found}\nno zero-config start either: {reason}")]
    NoConfig {
        not_found: ConfigError,
        reason: String,
    },
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Control(#[from] ClientError),
    #[error(transparent)]
    Daemon(#[from] daemon::DaemonError),
}

impl RunError {
    fn exit_code(&self) -> u8 {
        match self {
            RunError::Config(_) | RunError::NoConfig { .. } => EXIT_CONFIG,
            RunError::Usage(_) => EXIT_USAGE,
            RunError::Control(_) | RunError::Daemon(_) => 1,
        }
    }
}

/// Runs one command; the process's exit code.
pub fn main(cli: Cli) -> ExitCode {
    let env = Environment::capture();
    let result = match cli.command {
        Command::Check { config } => check(config.as_deref(), &env),
        Command::Run { config } => daemon::run(config.as_deref(), env),
        Command::Status { json, socket } => client::status(socket, json, &env),
        Command::Mfa { role, code, socket } => client::mfa(socket, &role, code, &env),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&e);
            ExitCode::from(e.exit_code())
        }
    }
}

/// Config problems are already `path:line:column: error: ...` lines;
/// everything else is prefixed with the program's name.
fn report(e: &RunError) {
    match e {
        RunError::Config(ConfigError::Invalid { .. }) => eprintln!("{e}"),
        _ => eprintln!("imdsd: {e}"),
    }
}

fn check(path: Option<&Path>, env: &Environment) -> Result<(), RunError> {
    let loaded = load(path, env)?;
    for w in &loaded.warnings {
        eprintln!("{w}");
    }
    println!("{}: ok", loaded.path.display());
    Ok(())
}

fn load(path: Option<&Path>, env: &Environment) -> Result<LoadedConfig, ConfigError> {
    let path = config::load::resolve_path(path, env)?;
    config::load::load(&path, env)
}
