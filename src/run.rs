//! The subcommands, with context at the edge and one exit code each:
//! 0 success, 64 (EX_USAGE) bad config, 1 runtime failure.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::app::{Daemon, Options};
use crate::cli::{Cli, Command};
use crate::clock::{SharedClock, SystemClock};
use crate::config::{self, ConfigError, LoadedConfig};
use crate::control::{self, server::ControlState, status};
use crate::environment::Environment;
use crate::secret::Secret;
use crate::{shutdown, state, systemd};

pub(crate) const EXIT_CONFIG: u8 = 64;
/// EX_USAGE too: the command line was wrong.
const EXIT_USAGE: u8 = 64;

/// Longest the daemon waits for first fetches before telling systemd it is
/// ready anyway (roles that are still fetching answer 503 meanwhile).
const FIRST_FETCH_LIMIT: Duration = Duration::from_secs(30);

pub fn main(cli: Cli) -> ExitCode {
    let env = Environment::capture();
    match cli.command {
        Command::Check { config } => check(config.as_deref(), &env),
        Command::Run { config } => run(config.as_deref(), env),
        Command::Status { json, socket } => show_status(socket, json, &env),
        Command::Mfa { role, code, socket } => hand_in_mfa(socket, &role, code, &env),
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

fn load(path: Option<&Path>, env: &Environment) -> Result<LoadedConfig, ConfigError> {
    let path = config::load::resolve_path(path, env)?;
    config::load::load(&path, env)
}

fn control_socket(
    socket: Option<PathBuf>,
    env: &Environment,
) -> Result<PathBuf, control::client::ClientError> {
    socket
        .map(Ok)
        .unwrap_or_else(|| control::client::find(control::client_candidates(env)))
}

fn hand_in_mfa(
    socket: Option<PathBuf>,
    role: &str,
    code: Option<String>,
    env: &Environment,
) -> ExitCode {
    let code = match code {
        Some(code) => Secret::new(code),
        None => {
            let mut line = String::new();
            if std::io::stdin().read_line(&mut line).is_err() {
                eprintln!("imdsd: cannot read the code from stdin");
                return ExitCode::FAILURE;
            }
            Secret::new(line.trim())
        }
    };
    if !crate::creds::queries::valid_mfa_code(code.expose()) {
        eprintln!("imdsd: an MFA code is six digits");
        return ExitCode::from(EXIT_USAGE);
    }
    match control_socket(socket, env)
        .and_then(|path| control::client::mfa(&path, role, code))
    {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("imdsd: {e}");
            ExitCode::FAILURE
        }
    }
}

fn show_status(socket: Option<PathBuf>, json: bool, env: &Environment) -> ExitCode {
    let result =
        control_socket(socket, env).and_then(|path| control::client::status(&path));
    match result {
        Ok(s) if json => {
            println!("{}", serde_json::to_string_pretty(&s).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Ok(s) => {
            print!("{}", status::render_text(&s));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("imdsd: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Where the running config comes from.
#[derive(Debug, Clone)]
enum Source {
    File(PathBuf),
    /// No config file: what the AWS CLI would use (see `config::zero`).
    Zero,
}

/// The config to run with: the file, or the zero-config start when there
/// is no file anywhere.
fn load_for_run(
    path: Option<&Path>,
    env: &Environment,
) -> Result<(LoadedConfig, Source), String> {
    match config::load::resolve_path(path, env) {
        Ok(path) => config::load::load(&path, env)
            .map(|l| (l, Source::File(path)))
            .map_err(|e| e.to_string()),
        Err(not_found @ ConfigError::NotFound { .. }) => {
            let loaded = zero_config(env)
                .map_err(|e| format!("{not_found}\nno zero-config start either: {e}"))?;
            Ok((loaded, Source::Zero))
        }
        Err(e) => Err(e.to_string()),
    }
}

fn zero_config(env: &Environment) -> Result<LoadedConfig, String> {
    let profiles = crate::profile::load(env).map_err(|e| e.to_string())?;
    let zero = config::zero::zero_config(env, &profiles)?;
    let listen = zero.config.listeners[0].listen;
    let role = &zero.config.listeners[0].role;
    tracing::info!(
        "no config file: serving {} as role `{role}` on http://{listen}; point SDKs at it with \
         `export AWS_EC2_METADATA_SERVICE_ENDPOINT=http://{listen}`",
        zero.serves
    );
    Ok(LoadedConfig {
        path: PathBuf::from("(no config file)"),
        config: zero.config,
        warnings: vec![],
    })
}

fn run(path: Option<&Path>, env: Environment) -> ExitCode {
    let (loaded, source) = match load_for_run(path, &env) {
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
        .and_then(|rt| rt.block_on(serve(loaded, source, env)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("imdsd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(
    loaded: LoadedConfig,
    source: Source,
    env: Environment,
) -> anyhow::Result<()> {
    let clock: SharedClock = std::sync::Arc::new(SystemClock);
    let uid = state::current_uid();
    let state_dir = state::state_dir(&env, uid)?;
    let stop = CancellationToken::new();
    let (reload_tx, mut reloads) = mpsc::channel(1);
    shutdown::install(stop.clone(), reload_tx.clone())
        .context("cannot install signal handlers")?;
    tracing::info!(config = %loaded.path.display(), state = %state_dir.display(), "starting");

    let mut opts =
        Options::new(loaded.config.clone(), env.clone(), clock.clone(), state_dir);
    opts.inherited = systemd::inherited_sockets();
    let mut daemon = Daemon::start(opts).await?;
    let _watch = match (loaded.config.watch_config, &source) {
        (true, Source::File(path)) => config::watch::watch(path, reload_tx)
            .inspect_err(|e| tracing::warn!("{e}; changes will need SIGHUP"))
            .ok(),
        _ => None,
    };
    start_control(&daemon, &loaded, &env, uid, &clock, stop.clone()).await;
    // A stop signal during the first fetches is honoured at once.
    tokio::select! {
        settled = daemon.settled(FIRST_FETCH_LIMIT) => {
            if !settled {
                tracing::warn!("some roles are still fetching their first credentials");
            }
            systemd::ready(&ready_status(&daemon));
        }
        _ = stop.cancelled() => {}
    }
    systemd::spawn_watchdog(stop.clone());

    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            Some(()) = reloads.recv() => {
                reload(&mut daemon, &source, &env).await;
                systemd::ready(&ready_status(&daemon));
            }
        }
    }
    systemd::stopping();
    daemon.stop().await;
    tracing::info!("stopped");
    Ok(())
}

async fn start_control(
    daemon: &Daemon,
    loaded: &LoadedConfig,
    env: &Environment,
    uid: u32,
    clock: &SharedClock,
    stop: CancellationToken,
) {
    let Some(path) =
        control::daemon_socket(loaded.config.control_socket.as_deref(), env, uid)
    else {
        tracing::warn!(
            "no runtime directory (XDG_RUNTIME_DIR) for the control socket; `imdsd status` will not work"
        );
        return;
    };
    let state = ControlState {
        view: daemon.view(),
        roles: daemon.roles(),
        clock: clock.clone(),
        config_path: loaded.path.display().to_string(),
        uid,
    };
    // Serving credentials matters more than `imdsd status`.
    if let Err(e) = control::server::serve(path, state, stop).await {
        tracing::warn!("{e}; `imdsd status` will not reach this daemon");
    }
}

/// Re-reads the config and applies it; on any error the old one stays.
async fn reload(daemon: &mut Daemon, source: &Source, env: &Environment) {
    systemd::reloading();
    let loaded = match source {
        Source::File(path) => config::load::load(path, env).map_err(|e| e.to_string()),
        Source::Zero => zero_config(env),
    };
    let loaded = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            tracing::error!("not reloading, still serving the previous config:\n{e}");
            return;
        }
    };
    if loaded.config == *daemon.config() {
        tracing::debug!("config unchanged");
        return;
    }
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    match daemon.reload(loaded.config).await {
        Ok(summary) => tracing::info!(
            roles_started = ?summary.roles_started,
            roles_stopped = ?summary.roles_stopped,
            listeners_opened = ?summary.listeners_opened,
            listeners_closed = ?summary.listeners_closed,
            listeners_switched = ?summary.listeners_switched,
            "config reloaded"
        ),
        Err(e) => {
            tracing::error!("reload failed, still serving the previous config: {e}")
        }
    }
}

fn ready_status(daemon: &Daemon) -> String {
    let addrs: Vec<String> = daemon.local_addrs().iter().map(|a| a.to_string()).collect();
    format!(
        "serving {} role(s) on {}",
        daemon.config().roles.len(),
        addrs.join(", ")
    )
}
