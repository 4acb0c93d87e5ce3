//! The composition root: config → role slots → refreshers → listeners, and
//! reloads that change them without a gap.
//!
//! [`Daemon::start`] binds every listener first (so a bind failure names its
//! address before anything else happens), then starts one refresher per
//! role and one server per listener. [`Daemon::reload`] applies a new
//! config (see [`plan`]): it binds new listeners and fetches changed roles
//! *before* switching anything, so requests keep being answered throughout.
//! [`Daemon::stop`] drains in order: listeners stop accepting and finish
//! in-flight requests, then the refreshers stop.

mod bind;
mod listener;
mod on_demand;
mod plan;
mod reload;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use bind::Bound;
pub(crate) use bind::Inherited;
use listener::ListenerRuntime;
use on_demand::OnDemand;

use crate::admin::Admin;
use crate::audit::Audit;
use crate::clock::SharedClock;
use crate::config::{Config, Protocol, RoleConfig};
use crate::container::token_files::TokenFileError;
use crate::container::tokens::TokenMinter;
use crate::endpoint;
use crate::environment::Environment;
use crate::imds::render;
use crate::imds::token::TokenKey;
use crate::metrics::Metrics;
use crate::refresh::activation::Activator;
use crate::refresh::directory::RoleDirectory;
use crate::refresh::fetch::{FetchContext, Fetcher};
use crate::refresh::refresher::{DEFAULT_CLOCK_CHECK, Parking, Refresher};
use crate::refresh::slot::RoleSlot;
use crate::secret::Secret;
use crate::server::guard::HostAllowList;
use crate::server::{self, Limits};
use crate::state::{self, StateError};
use crate::sts::{self, StsClient};
use crate::view::{ListenerView, View};

/// Everything the daemon needs to start.
pub struct Options {
    pub config: Config,
    pub env: Environment,
    pub clock: SharedClock,
    pub state_dir: PathBuf,
    pub limits: Limits,
    /// How long a credentials request waits for an in-flight refresh.
    pub wait_limit: Duration,
    /// Longest a refresher sleeps before re-reading the wall clock.
    pub clock_check: Duration,
    /// A fixed jitter draw in `[0, 1)` for every refresh and backoff
    /// (tests); `None` draws a random one each time.
    pub jitter: Option<f64>,
    /// Sockets passed by systemd socket activation.
    pub(crate) inherited: Inherited,
}

impl Options {
    pub fn new(
        config: Config,
        env: Environment,
        clock: SharedClock,
        state_dir: PathBuf,
    ) -> Self {
        let limits = Limits::from(config.limits);
        Options {
            config,
            env,
            clock,
            state_dir,
            limits,
            wait_limit: endpoint::DEFAULT_WAIT,
            clock_check: DEFAULT_CLOCK_CHECK,
            jitter: None,
            inherited: Inherited::default(),
        }
    }
}

/// Why the daemon could not start or a reload was refused.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Sts(#[from] sts::SetupError),
    #[error(transparent)]
    TokenFile(#[from] TokenFileError),
    #[error("a file task failed: {0}")]
    Task(String),
}

/// The parts that stay the same across reloads.
struct Shared {
    /// What every fetch uses: the STS client, the role directory, the
    /// environment, the clock, HTTP clients, our own addresses.
    fetch: Arc<FetchContext>,
    key: Arc<TokenKey>,
    /// Derives the container tokens.
    tokens: TokenMinter,
    /// Where credential vends are recorded.
    audit: Audit,
    instance_id: String,
    metrics: Arc<Metrics>,
    limits: Limits,
    wait_limit: Duration,
    clock_check: Duration,
    jitter: Option<f64>,
    /// Where on-demand roles are asked for (the main loop receives).
    activator: Activator,
}

impl Shared {
    fn new(
        opts: Options,
        key_bytes: &[u8],
        sts: StsClient,
        activator: Activator,
    ) -> Shared {
        let web = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(opts.config.sts.timeout)
            .build()
            .unwrap_or_default();
        Shared {
            fetch: Arc::new(FetchContext {
                sts: ArcSwap::from_pointee(sts),
                env: opts.env,
                clock: opts.clock,
                roles: RoleDirectory::default(),
                http: local_http(),
                web,
                own_addrs: Arc::new(ArcSwap::from_pointee(Vec::new())),
            }),
            key: Arc::new(TokenKey::new(key_bytes)),
            tokens: TokenMinter::new(key_bytes),
            audit: Audit::start(opts.config.audit.clone()),
            instance_id: render::instance_id(key_bytes),
            metrics: Arc::new(Metrics::default()),
            limits: opts.limits,
            wait_limit: opts.wait_limit,
            clock_check: opts.clock_check,
            jitter: opts.jitter,
            activator,
        }
    }

    fn clock(&self) -> &SharedClock {
        &self.fetch.clock
    }
}

struct RoleRuntime {
    config: RoleConfig,
    slot: Arc<RoleSlot>,
    stop: CancellationToken,
    /// The role's container token, derived once when the role starts.
    token: Secret,
    /// Started on demand: its refresher parks when it is idle.
    on_demand: bool,
}

struct AdminRuntime {
    configured: SocketAddr,
    addr: SocketAddr,
    stop: CancellationToken,
}

/// A running daemon.
pub struct Daemon {
    shared: Shared,
    /// The config being served: the file's, plus the active on-demand
    /// roles (`config::catalogue::effective`).
    config: Config,
    /// The file's config, the profiles servable on demand, which run.
    on_demand: OnDemand,
    roles: BTreeMap<String, RoleRuntime>,
    listeners: Vec<ListenerRuntime>,
    admin: Option<AdminRuntime>,
    inherited: Inherited,
    view: Arc<ArcSwap<View>>,
    servers: JoinSet<()>,
    refreshers: JoinSet<()>,
}

/// What a reload did, for the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    pub roles_started: Vec<String>,
    pub roles_stopped: Vec<String>,
    pub listeners_opened: Vec<SocketAddr>,
    pub listeners_closed: Vec<SocketAddr>,
    pub listeners_switched: Vec<SocketAddr>,
}

impl Daemon {
    /// Binds every listener, then starts one refresher per role and one
    /// server per listener.
    pub async fn start(mut opts: Options) -> Result<Daemon, StartError> {
        let mut inherited = std::mem::take(&mut opts.inherited);
        let (activator, events) = Activator::channel();
        let mut on_demand =
            OnDemand::new(opts.config.clone(), &opts.env, &opts.state_dir, events);
        // Bound first: when its default address is taken, the daemon
        // starts without it (and `effective` leaves it out).
        let mut own = on_demand.bind_own_listener(&mut inherited);
        let config = on_demand.effective();
        let own_at = on_demand.own_listener_index(&config);
        let mut bound = Vec::new();
        for (i, l) in config.listeners.iter().enumerate() {
            bound.push(match own.take_if(|_| Some(i) == own_at) {
                Some(pre) => pre,
                None => bind::bind(l.listen, &mut inherited)?,
            });
        }
        let admin = match config.admin {
            Some(addr) => Some((addr, bind::bind(addr, &mut inherited)?)),
            None => None,
        };
        let key_bytes = state::load_or_create_key(&opts.state_dir)?;
        let sts = StsClient::new(&config.sts, &opts.env, opts.clock.clone())?;
        let mut daemon = Daemon {
            shared: Shared::new(opts, &key_bytes, sts, activator),
            config,
            on_demand,
            roles: BTreeMap::new(),
            listeners: Vec::new(),
            admin: None,
            inherited,
            view: Arc::new(ArcSwap::from_pointee(View::default())),
            servers: JoinSet::new(),
            refreshers: JoinSet::new(),
        };
        let roles: Vec<RoleConfig> = daemon.config.roles.values().cloned().collect();
        let started = daemon.start_roles(roles.iter());
        daemon.roles.extend(started);
        let config = daemon.config.clone();
        let writes = daemon.tokens_to_write(&config, None);
        listener::commit_tokens(listener::prepare_tokens(writes).await?).await?;
        let listeners = config.listeners;
        for (bound, cfg) in bound.into_iter().zip(&listeners) {
            let runtime = daemon.start_listener(bound, cfg);
            daemon.listeners.push(runtime);
        }
        if let Some((configured, bound)) = admin {
            daemon.admin = Some(daemon.start_admin(configured, bound));
        }
        for addr in daemon.inherited.unclaimed() {
            tracing::warn!(%addr, "systemd passed a socket that no listener in the config uses");
        }
        daemon.publish_view();
        Ok(daemon)
    }

    /// The bound address of each IMDS listener, in config order.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.iter().map(|l| l.addr).collect()
    }

    pub fn role(&self, name: &str) -> Option<&Arc<RoleSlot>> {
        self.roles.get(name).map(|r| &r.slot)
    }

    /// The config it was given (without the on-demand roles it added).
    pub fn config(&self) -> &Config {
        self.on_demand.base()
    }

    /// Roles by name, updated as soon as a reload starts a role.
    pub(crate) fn roles(&self) -> RoleDirectory {
        self.shared.fetch.roles.clone()
    }

    /// A handle on what is being served, updated on every reload.
    pub(crate) fn view(&self) -> Arc<ArcSwap<View>> {
        self.view.clone()
    }

    /// Reopens the audit log (after logrotate moved it): every reload and
    /// SIGHUP, changed config or not.
    pub(crate) fn reopen_audit(&self) {
        self.shared.audit.retarget(self.config.audit.clone());
    }

    /// Resolves once every running role's first fetch has an outcome, or
    /// after `limit`; false if some role is still waiting. Holds no borrow
    /// of the daemon, so the main loop can serve requests meanwhile.
    pub(crate) fn settled(
        &self,
        limit: Duration,
    ) -> impl std::future::Future<Output = bool> + Send + 'static {
        let slots: Vec<Arc<RoleSlot>> =
            self.roles.values().map(|r| r.slot.clone()).collect();
        settled_by(slots, tokio::time::Instant::now() + limit)
    }

    /// Where on-demand roles are asked for.
    pub(crate) fn activator(&self) -> Activator {
        self.shared.activator.clone()
    }

    /// Stops accepting, lets in-flight requests finish (within the grace
    /// period), then stops the refreshers.
    pub async fn stop(mut self) {
        for l in &self.listeners {
            l.stop.cancel();
        }
        if let Some(admin) = &self.admin {
            admin.stop.cancel();
        }
        while self.servers.join_next().await.is_some() {}
        for r in self.roles.values() {
            r.stop.cancel();
        }
        while self.refreshers.join_next().await.is_some() {}
    }

    /// Starts refreshers for `roles`. Every new slot is in the role
    /// directory before any refresher runs, so a chained role finds its
    /// source on its first fetch.
    fn start_roles<'a>(
        &mut self,
        roles: impl Iterator<Item = &'a RoleConfig>,
    ) -> BTreeMap<String, RoleRuntime> {
        let mut started = BTreeMap::new();
        let mut writers = Vec::new();
        for role in roles {
            let (slot, writer) = RoleSlot::for_role(role);
            writers.push(writer);
            let stop = CancellationToken::new();
            started.insert(
                role.name.clone(),
                RoleRuntime {
                    config: role.clone(),
                    slot,
                    stop,
                    token: self.shared.tokens.token_for(role),
                    on_demand: self.on_demand.is_on_demand(&role.name),
                },
            );
        }
        let slots = started.values().map(|r: &RoleRuntime| r.slot.clone());
        self.shared.fetch.roles.insert(slots);
        for writer in writers {
            let runtime = &started[writer.slot().name()];
            let fetcher = Fetcher {
                role: runtime.config.clone(),
                mfa: Default::default(),
                ctx: self.shared.fetch.clone(),
            };
            let refresher = Refresher {
                writer,
                fetcher,
                clock: self.shared.clock().clone(),
                shutdown: runtime.stop.clone(),
                clock_check: self.shared.clock_check,
                jitter: self.shared.jitter,
                metrics: self.shared.metrics.clone(),
                parking: self.parking(&runtime.config.name),
            };
            self.refreshers.spawn(refresher.run());
        }
        started
    }

    /// How an on-demand role parks; `None` for every other role.
    fn parking(&self, role: &str) -> Option<Parking> {
        self.on_demand.is_on_demand(role).then(|| Parking {
            idle_after: self.on_demand.base().profiles.idle_after,
            activator: self.shared.activator.clone(),
        })
    }

    fn start_admin(&mut self, configured: SocketAddr, bound: Bound) -> AdminRuntime {
        let Bound { listener, addr } = bound;
        let admin = Admin::new(
            HostAllowList::for_listener(addr),
            self.view.clone(),
            self.shared.metrics.clone(),
            self.shared.clock().clone(),
        );
        let stop = CancellationToken::new();
        tracing::info!(
            "health and metrics on http://{addr} (/healthz, /readyz, /metrics)"
        );
        let handler = Arc::new(ArcSwap::from_pointee(admin));
        self.servers.spawn(server::run(
            listener,
            handler,
            self.shared.limits,
            stop.clone(),
        ));
        AdminRuntime {
            configured,
            addr,
            stop,
        }
    }

    fn publish_view(&self) {
        let mut own: Vec<SocketAddr> = self.listeners.iter().map(|l| l.addr).collect();
        own.extend(self.admin.as_ref().map(|a| a.addr));
        self.shared.fetch.own_addrs.store(Arc::new(own));
        let view = View {
            on_demand: self.on_demand.names(),
            profile_regions: self.on_demand.regions(),
            region: self.config.sts.region.clone(),
            roles: self.shared.fetch.roles.clone(),
            listeners: self
                .listeners
                .iter()
                .map(|l| ListenerView {
                    addr: l.addr,
                    protocol: l.config.protocol.name(),
                    roles: l
                        .config
                        .roles()
                        .iter()
                        .filter_map(|name| self.roles.get(name).map(|r| r.slot.clone()))
                        .collect(),
                    allow_v1: matches!(
                        l.config.protocol,
                        Protocol::Imds { allow_v1: true, .. }
                    ),
                    token_files: match &l.config.protocol {
                        Protocol::Container(c) => Some(c.tokens.clone()),
                        Protocol::Imds { .. } => None,
                    },
                    stats: l.stats.clone(),
                })
                .collect(),
        };
        self.view.store(Arc::new(view));
    }
}

/// Waits until every slot's first fetch has an outcome, or `deadline`.
async fn settled_by(slots: Vec<Arc<RoleSlot>>, deadline: tokio::time::Instant) -> bool {
    let mut all = true;
    for slot in slots {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        all &= slot.settled(left).await;
    }
    all
}

/// For the metadata and container endpoints: never through a proxy, and
/// quick to give up, like the SDKs.
fn local_http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_default()
}
