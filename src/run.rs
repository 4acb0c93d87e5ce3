//! The subcommands, with context at the edge and one exit code each:
//! 0 success, 64 (EX_USAGE) bad config, 1 runtime failure.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::app::{Daemon, Options};
use crate::cli::{Cli, Command};
use crate::clock::{SharedClock, SystemClock};
use crate::config::{self, ConfigError};
use crate::environment::Environment;
use crate::{shutdown, state};

pub const EXIT_CONFIG: u8 = 64;

pub fn main(cli: Cli) -> ExitCode {
    let env = Environment::capture();
    match cli.command {
        Command::Check { config } => check(config.as_deref(), &env),
        Command::Run { config } => run(config.as_deref(), env),
    }
}

fn check(path: Option<&Path>, env: &Environment) -> ExitCode {
    match load(path, env) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("{w}");
            }
            println!("{}: ok", loaded.path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

fn load(
    path: Option<&Path>,
    env: &Environment,
) -> Result<config::LoadedConfig, ConfigError> {
    let path = config::load::resolve_path(path, env)?;
    config::load::load(&path, env)
}

fn run(path: Option<&Path>, env: Environment) -> ExitCode {
    let loaded = match load(path, &env) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(
            std::thread::available_parallelism().map_or(2, |n| n.get().min(4)),
        )
        .enable_all()
        .build();
    let result = runtime
        .context("cannot start the async runtime")
        .and_then(|rt| rt.block_on(serve(loaded, env)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("imdsd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(loaded: config::LoadedConfig, env: Environment) -> anyhow::Result<()> {
    let clock: SharedClock = std::sync::Arc::new(SystemClock);
    let state_dir = state::state_dir(&env, state::current_uid())?;
    let stop = CancellationToken::new();
    shutdown::install(stop.clone()).context("cannot install signal handlers")?;
    tracing::info!(config = %loaded.path.display(), state = %state_dir.display(), "starting");
    let daemon =
        Daemon::start(Options::new(loaded.config, env, clock, state_dir)).await?;
    stop.cancelled().await;
    daemon.stop().await;
    tracing::info!("stopped");
    Ok(())
}
