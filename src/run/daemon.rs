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
use crate::control;
use crate::control::socket::{Bound, ControlError, ControlState};
use crate::control::status::ReloadError;
use crate::environment::Environment;
use crate::logging::List;
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
    /// Another daemon answers on the control socket.
    #[error("control socket {} is taken by another imdsd", .0.display())]
    ControlInUse(PathBuf),
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
    let listens: Vec<_> = loaded.config.listeners.iter().map(|l| l.listen).collect();
    let configured = loaded.config.control_socket.is_some();
    let result = runtime.block_on(run_daemon(loaded, origin, env.clone()));
    // Nothing left is worth waiting for (a blocking peer lookup, say):
    // "stopped" is the last word, and the process exits with it.
    runtime.shutdown_timeout(Duration::from_millis(100));
    match result {
        Err(DaemonError::Start(StartError::Bind { addr, source }))
            if source.kind() == std::io::ErrorKind::AddrInUse =>
        {
            let holder = holder_of(addr, &env);
            Err(RunError::AddrInUse { addr, holder })
        }
        Err(DaemonError::ControlInUse(path)) => {
            Err(control_in_use(path, &listens, configured, &env))
        }
        other => Ok(other?),
    }
}

/// How a second daemon gets a control socket of its own; or, when the
/// other daemon also serves one of its addresses, that it should be
/// stopped first (a second socket would not help).
fn control_in_use(
    path: PathBuf,
    listens: &[std::net::SocketAddr],
    configured: bool,
    env: &Environment,
) -> RunError {
    let status = control::client::status(&path).ok();
    let served = status.iter().flat_map(|s| &s.listeners);
    if let Some(addr) = listens
        .iter()
        .find(|a| served.clone().any(|l| l.address == a.to_string()))
    {
        let holder = holder_of(*addr, env);
        return RunError::AddrInUse {
            addr: *addr,
            holder,
        };
    }
    let holder = status
        .map(|s| format!(" (pid {}, config {})", s.pid, s.config))
        .unwrap_or_default();
    let own = path.with_file_name("second.sock").display().to_string();
    // The config's `control_socket` wins over the variable.
    let how = if configured {
        format!("with `control_socket = \"{own}\"` under [daemon] in its config")
    } else {
        format!(
            "with `IMDSD_CONTROL_SOCKET={own} imdsd run` or `control_socket = \"{own}\"` \
             under [daemon] in its config"
        )
    };
    RunError::ControlInUse { path, holder, how }
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
    let (mut daemon, socket) = start(opts, &loaded, &env, &state_dir).await?;
    let _config_watch = match (loaded.config.watch_config, &origin) {
        (true, ConfigOrigin::File(path)) => {
            watch::watch(config::watch_targets::targets(path), reload_tx)
                .inspect_err(|e| tracing::warn!("{e}; changes will need SIGHUP"))
                .ok()
        }
        _ => None,
    };
    let _profiles_watch = watch_profiles(&daemon, &env);
    let control = start_control(&daemon, socket, &loaded, &clock, stop.clone());
    first_fetches(&mut daemon, &stop).await;
    systemd::spawn_watchdog(stop.clone());
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            Some(()) = reloads.recv() => {
                let outcome = reload(&mut daemon, &origin, &env).await;
                note_reload(&control.reload_error, outcome, clock.now());
                systemd::ready(&ready_status(&daemon));
            }
            Some(event) = daemon.next_event() => daemon.handle(event).await,
        }
    }
    systemd::stopping();
    daemon.stop().await;
    control.closed().await;
    tracing::info!("stopped");
    Ok(())
}

/// Waits for the first fetches, then tells systemd the daemon is ready. A
/// stop signal meanwhile is honoured at once, and an `imdsd exec` of an
/// on-demand role is served.
async fn first_fetches(daemon: &mut Daemon, stop: &CancellationToken) {
    let settled = daemon.settled(FIRST_FETCH_LIMIT);
    tokio::pin!(settled);
    loop {
        tokio::select! {
            all = &mut settled => {
                if !all {
                    tracing::warn!("some roles are still fetching their first credentials");
                }
                systemd::ready(&ready_status(daemon));
                return;
            }
            Some(event) = daemon.next_event() => daemon.handle(event).await,
            _ = stop.cancelled() => return,
        }
    }
}

/// Binds the control socket, then starts the daemon; a daemon that did not
/// start leaves no socket file.
async fn start(
    opts: Options,
    loaded: &LoadedConfig,
    env: &Environment,
    state_dir: &Path,
) -> Result<(Daemon, Option<Bound>), DaemonError> {
    let socket = bind_control(loaded, env, state_dir).await?;
    match Daemon::start(opts).await {
        Ok(daemon) => Ok((daemon, socket)),
        Err(e) => {
            if let Some(socket) = socket {
                socket.discard();
            }
            Err(e.into())
        }
    }
}

/// The control socket as the main loop sees it.
struct Control {
    /// Where the main loop keeps the last reload error for `imdsd status`.
    reload_error: Arc<ArcSwapOption<ReloadError>>,
    /// The socket's task (none if the socket could not be set up): it
    /// ends after the stop, once the socket file is removed.
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Binds the control socket before anything else starts. Taken by
/// another daemon: this one stops before it says anything that would
/// send `imdsd refresh` or `mfa` to the other. Any other problem: serving
/// credentials matters more than `imdsd status`.
async fn bind_control(
    loaded: &LoadedConfig,
    env: &Environment,
    state_dir: &Path,
) -> Result<Option<Bound>, DaemonError> {
    let uid = state::current_uid();
    let configured = loaded.config.control_socket.as_deref();
    let path = control::daemon_socket(configured, env, uid, state_dir);
    match Bound::at(path, uid).await {
        Ok(bound) => Ok(Some(bound)),
        Err(ControlError::InUse { path }) => Err(DaemonError::ControlInUse(path)),
        Err(e) => {
            tracing::warn!(
                "{e}; `imdsd status`, `mfa` and `refresh` will not reach this daemon"
            );
            Ok(None)
        }
    }
}

impl Control {
    /// Waits for the socket's task, which removes the file as it ends.
    async fn closed(self) {
        if let Some(task) = self.task {
            let _ = task.await;
        }
    }
}

fn start_control(
    daemon: &Daemon,
    socket: Option<Bound>,
    loaded: &LoadedConfig,
    clock: &SharedClock,
    stop: CancellationToken,
) -> Control {
    let reload_error = Arc::new(ArcSwapOption::empty());
    let task = socket.map(|socket| {
        let state = ControlState {
            view: daemon.view(),
            clock: clock.clone(),
            config_path: loaded.path.display().to_string(),
            uid: state::current_uid(),
            reload_error: reload_error.clone(),
            activator: daemon.activator(),
        };
        socket.serve(state, stop)
    });
    Control { reload_error, task }
}

/// Watches the AWS profile files; when they change, the roles that read
/// them and are failing retry at once (`aws sso login` fixes an expired
/// SSO session in seconds, not after a backoff), and the profiles served
/// on demand are read again (a new profile is servable at once).
fn watch_profiles(daemon: &Daemon, env: &Environment) -> Option<FileWatch> {
    let roles = daemon.roles();
    let activator = daemon.activator();
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
            activator.profiles_changed();
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
