//! `imdsd run`: load the config (or the zero-config start), start the
//! daemon, then loop on reloads until a stop signal, and drain in order.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::RunError;
use crate::app::{Daemon, Options, StartError};
use crate::clock::{SharedClock, SystemClock};
use crate::config::{self, ConfigError, LoadedConfig};
use crate::control::status::ReloadError;
use crate::control::{self, socket::ControlState};
use crate::environment::Environment;
use crate::logging::List;
use crate::refresh::directory::RoleDirectory;
use crate::state::{self, StateError};
use crate::watch::{self, FileWatch};
use crate::{shutdown, systemd};

/// Longest the daemon waits for first fetches before telling systemd it is
/// ready anyway (roles that are still fetching answer 503 meanwhile).
const FIRST_FETCH_LIMIT: Duration = Duration::from_secs(30);

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DaemonError {
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("cannot install signal handlers: {0}")]
    Signals(#[source] std::io::Error),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Start(#[from] StartError),
}

/// Where the running config comes from.
#[derive(Debug, Clone)]
enum ConfigOrigin {
    File(PathBuf),
    /// No config file: what the AWS CLI would use (see `config::zero`).
    Zero,
}

/// The config to run with: the file, or the zero-config start when there
/// is no file anywhere.
fn load_for_run(
    path: Option<&Path>,
    env: &Environment,
) -> Result<(LoadedConfig, ConfigOrigin), RunError> {
    match config::load::resolve_path(path, env) {
        Ok(path) => {
            let loaded = config::load::load(&path, env)?;
            Ok((loaded, ConfigOrigin::File(path)))
        }
        Err(not_found @ ConfigError::NotFound { .. }) => match zero_config(env) {
            Ok(loaded) => Ok((loaded, ConfigOrigin::Zero)),
            Err(reason) => Err(RunError::NoConfig { not_found, reason }),
        },
        Err(e) => Err(e.into()),
    }
}

fn zero_config(env: &Environment) -> Result<LoadedConfig, String> {
    let profiles = crate::profile::load(env).map_err(|e| e.to_string())?;
    let zero = config::zero::zero_config(env, &profiles)?;
    let listen = zero.config.listeners[0].listen;
    let role = &zero.config.listeners[0].roles()[0];
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

/// `imdsd run`: serves until a stop signal.
pub(super) fn run(path: Option<&Path>, env: Environment) -> Result<(), RunError> {
    let (loaded, origin) = load_for_run(path, &env)?;
    for w in loaded.warnings.iter().chain(&super::shadow_warnings(&env)) {
        tracing::warn!("{w}");
    }
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .map_err(DaemonError::Runtime)?;
    let result = runtime.block_on(run_daemon(loaded, origin, env.clone()));
    match result {
        Err(DaemonError::Start(StartError::Bind { addr, source }))
            if source.kind() == std::io::ErrorKind::AddrInUse =>
        {
            let holder = holder_of(addr, &env);
            Err(RunError::AddrInUse { addr, holder })
        }
        other => Ok(other?),
    }
}

/// Who holds `addr`, as far as we can tell: another imdsd whose control
/// socket answers (ours or root's), else an unknown program.
fn holder_of(addr: std::net::SocketAddr, env: &Environment) -> String {
    let state = state::state_dir(env, state::current_uid()).ok();
    let candidates = control::client_candidates(env, state.as_deref());
    let other = candidates.iter().filter(|p| p.exists()).find_map(|path| {
        let status = control::client::status(path).ok()?;
        let serves = status
            .listeners
            .iter()
            .any(|l| l.address == addr.to_string());
        serves.then(|| (path.clone(), status))
    });
    match other {
        Some((socket, status)) => format!(
            "another imdsd serves it (pid {}, config {}, control socket {}): stop that one \
             first, or listen elsewhere",
            status.pid,
            status.config,
            socket.display()
        ),
        None => format!(
            "another program listens there (`ss -ltnp 'sport = :{}'` shows which)",
            addr.port()
        ),
    }
}

/// Starts the daemon, tells systemd when it is ready, applies reloads, and
/// drains on a stop signal.
async fn run_daemon(
    loaded: LoadedConfig,
    origin: ConfigOrigin,
    env: Environment,
) -> Result<(), DaemonError> {
    let clock: SharedClock = Arc::new(SystemClock);
    let uid = state::current_uid();
    let state_dir = state::state_dir(&env, uid)?;
    let stop = CancellationToken::new();
    let (reload_tx, mut reloads) = mpsc::channel(1);
    shutdown::install(stop.clone(), reload_tx.clone()).map_err(DaemonError::Signals)?;
    tracing::info!(config = %loaded.path.display(), state = %state_dir.display(), "starting");

    let mut opts = Options::new(
        loaded.config.clone(),
        env.clone(),
        clock.clone(),
        state_dir.clone(),
    );
    opts.inherited = systemd::inherited_sockets();
    let mut daemon = Daemon::start(opts).await?;
    let _config_watch = match (loaded.config.watch_config, &origin) {
        (true, ConfigOrigin::File(path)) => {
            watch::watch(config::watch_targets::targets(path), reload_tx)
                .inspect_err(|e| tracing::warn!("{e}; changes will need SIGHUP"))
                .ok()
        }
        _ => None,
    };
    let _profiles_watch = watch_profiles(daemon.roles(), &env);
    let reload_error =
        start_control(&daemon, &loaded, &env, &state_dir, &clock, stop.clone()).await;
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
                let outcome = reload(&mut daemon, &origin, &env).await;
                note_reload(&reload_error, outcome, clock.now());
                systemd::ready(&ready_status(&daemon));
            }
        }
    }
    systemd::stopping();
    daemon.stop().await;
    tracing::info!("stopped");
    Ok(())
}

/// Starts the control socket; the place the main loop keeps the last
/// reload error for it.
async fn start_control(
    daemon: &Daemon,
    loaded: &LoadedConfig,
    env: &Environment,
    state_dir: &Path,
    clock: &SharedClock,
    stop: CancellationToken,
) -> Arc<ArcSwapOption<ReloadError>> {
    let reload_error = Arc::new(ArcSwapOption::empty());
    let uid = state::current_uid();
    let configured = loaded.config.control_socket.as_deref();
    let path = control::daemon_socket(configured, env, uid, state_dir);
    let state = ControlState {
        view: daemon.view(),
        clock: clock.clone(),
        config_path: loaded.path.display().to_string(),
        uid,
        reload_error: reload_error.clone(),
    };
    // Serving credentials matters more than `imdsd status`.
    if let Err(e) = control::socket::start(path, state, stop).await {
        tracing::warn!(
            "{e}; `imdsd status`, `mfa` and `refresh` will not reach this daemon"
        );
    }
    reload_error
}

/// Watches the AWS profile files; when they change, the roles that read
/// them and are failing retry at once (`aws sso login` fixes an expired
/// SSO session in seconds, not after a backoff).
fn watch_profiles(roles: RoleDirectory, env: &Environment) -> Option<FileWatch> {
    let targets = crate::profile::watch_targets(env);
    if targets.is_empty() {
        return None;
    }
    let (changed, mut changes) = mpsc::channel(1);
    let watch = watch::watch(targets, changed)
        .inspect_err(|e| {
            tracing::warn!("{e}; roles reading AWS profiles retry on their own schedule")
        })
        .ok()?;
    tracing::debug!("watching the AWS profile files for changes");
    tokio::spawn(async move {
        while changes.recv().await.is_some() {
            for slot in roles.load().values() {
                if slot.uses_profiles() && slot.load().failure.is_some() {
                    tracing::info!(
                        role = %slot.name(),
                        "AWS profile files changed: retrying now"
                    );
                    slot.force_refresh();
                }
            }
        }
    });
    Some(watch)
}

/// Keeps the last reload's error for `imdsd status` (since the first
/// failure in a row), and says so when a good reload ends it.
fn note_reload(
    slot: &ArcSwapOption<ReloadError>,
    outcome: Result<(), String>,
    now: chrono::DateTime<chrono::Utc>,
) {
    match outcome {
        Ok(()) => {
            if let Some(gone) = slot.swap(None) {
                tracing::info!(
                    "the config reloads again: the reload error since {} is gone",
                    gone.since
                );
            }
        }
        Err(message) => {
            let earlier = slot.load_full();
            let error = ReloadError::after(earlier.as_deref(), message, now);
            slot.store(Some(Arc::new(error)));
        }
    }
}

/// Re-reads the config and applies it; on any error the old one stays,
/// and the error is returned.
async fn reload(
    daemon: &mut Daemon,
    origin: &ConfigOrigin,
    env: &Environment,
) -> Result<(), String> {
    systemd::reloading();
    let loaded = match origin {
        ConfigOrigin::File(path) => {
            config::load::load(path, env).map_err(|e| e.to_string())
        }
        ConfigOrigin::Zero => zero_config(env),
    };
    let loaded = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            tracing::error!("not reloading, still serving the previous config:\n{e}");
            return Err(e);
        }
    };
    if loaded.config == *daemon.config() {
        daemon.reopen_audit();
        tracing::debug!("config unchanged");
        return Ok(());
    }
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    match daemon.reload(loaded.config).await {
        Ok(summary) => {
            tracing::info!(
                roles_started = %List(&summary.roles_started),
                roles_stopped = %List(&summary.roles_stopped),
                listeners_opened = %List(&summary.listeners_opened),
                listeners_closed = %List(&summary.listeners_closed),
                listeners_switched = %List(&summary.listeners_switched),
                "config reloaded"
            );
            Ok(())
        }
        Err(e) => {
            tracing::error!("reload failed, still serving the previous config: {e}");
            Err(e.to_string())
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
