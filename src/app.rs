//! The composition root: config → role slots → refreshers → listeners.
//!
//! [`Daemon::start`] binds every listener first (so a bind failure names its
//! address before anything else happens), then starts one refresher per
//! role and one server per listener. [`Daemon::stop`] drains in order:
//! listeners stop accepting and finish in-flight requests, then the
//! refreshers stop.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;
use crate::config::{Config, ListenerConfig};
use crate::creds::refresher::{DEFAULT_CLOCK_CHECK, Fetcher, Refresher};
use crate::creds::store::RoleSlot;
use crate::environment::Environment;
use crate::imds::endpoint::{self, Endpoint, EndpointSpec};
use crate::imds::guard::HostAllowList;
use crate::imds::server::{self, Limits};
use crate::imds::token::TokenKey;
use crate::state::{self, StateError};
use crate::sts::{self, StsClient};

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
}

impl Options {
    pub fn new(
        config: Config,
        env: Environment,
        clock: SharedClock,
        state_dir: PathBuf,
    ) -> Self {
        Options {
            config,
            env,
            clock,
            state_dir,
            limits: Limits::default(),
            wait_limit: endpoint::DEFAULT_WAIT,
            clock_check: DEFAULT_CLOCK_CHECK,
        }
    }
}

/// Why the daemon could not start.
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
}

/// A running daemon.
pub struct Daemon {
    addrs: Vec<SocketAddr>,
    roles: BTreeMap<String, Arc<RoleSlot>>,
    serving: CancellationToken,
    refreshing: CancellationToken,
    servers: JoinSet<()>,
    refreshers: JoinSet<()>,
}

impl Daemon {
    pub async fn start(opts: Options) -> Result<Daemon, StartError> {
        let mut bound = Vec::new();
        for l in &opts.config.listeners {
            bound.push((bind(l.listen)?, l.clone()));
        }
        let key_bytes = state::load_or_create_key(&opts.state_dir)?;
        let key = Arc::new(TokenKey::new(&key_bytes));
        let instance_id = instance_id(&key_bytes);
        let sts = StsClient::new(&opts.config.sts, &opts.env, opts.clock.clone())?;

        let serving = CancellationToken::new();
        let refreshing = CancellationToken::new();
        let mut refreshers = JoinSet::new();
        let mut roles = BTreeMap::new();
        for (name, role) in &opts.config.roles {
            let slot = RoleSlot::new(name.clone());
            let fetcher = Fetcher {
                role: role.clone(),
                sts: sts.clone(),
                env: opts.env.clone(),
            };
            let refresher = Refresher {
                slot: slot.clone(),
                fetcher,
                clock: opts.clock.clone(),
                shutdown: refreshing.clone(),
                clock_check: opts.clock_check,
            };
            refreshers.spawn(refresher.run());
            roles.insert(name.clone(), slot);
        }

        let mut servers = JoinSet::new();
        let mut addrs = Vec::new();
        for (listener, cfg) in bound {
            let addr = listener.local_addr().map_err(|source| StartError::Bind {
                addr: cfg.listen,
                source,
            })?;
            let role = roles[&cfg.role].clone();
            let endpoint = Endpoint::new(EndpointSpec {
                role,
                role_arn: opts.config.roles[&cfg.role].role_arn.clone(),
                allow_v1: cfg.allow_v1,
                hosts: HostAllowList::for_listener(addr),
                key: key.clone(),
                clock: opts.clock.clone(),
                region: opts.config.sts.region.clone(),
                instance_id: instance_id.clone(),
                wait_limit: opts.wait_limit,
            });
            announce(addr, &cfg);
            servers.spawn(server::serve(
                listener,
                Arc::new(endpoint),
                opts.limits,
                serving.clone(),
            ));
            addrs.push(addr);
        }
        Ok(Daemon {
            addrs,
            roles,
            serving,
            refreshing,
            servers,
            refreshers,
        })
    }

    /// The bound address of each listener, in config order.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    pub fn role(&self, name: &str) -> Option<&Arc<RoleSlot>> {
        self.roles.get(name)
    }

    /// Stops accepting, lets in-flight requests finish (within the grace
    /// period), then stops the refreshers.
    pub async fn stop(mut self) {
        self.serving.cancel();
        while self.servers.join_next().await.is_some() {}
        self.refreshing.cancel();
        while self.refreshers.join_next().await.is_some() {}
    }
}

/// Binds with `SO_REUSEADDR`, so a restart is not refused while old
/// connections sit in TIME_WAIT.
fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    let bind_err = |source| StartError::Bind { addr, source };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(bind_err)?;
    socket.set_reuseaddr(true).map_err(bind_err)?;
    socket.bind(addr).map_err(bind_err)?;
    socket.listen(1024).map_err(bind_err)
}

/// A stable, instance-id-shaped name derived from the token key (a hash,
/// so the key itself is not revealed).
fn instance_id(key: &[u8]) -> String {
    let digest = Sha256::new()
        .chain_update(b"imdsd instance-id\0")
        .chain_update(key)
        .finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("i-{}", &hex[..17])
}

fn announce(addr: SocketAddr, cfg: &ListenerConfig) {
    tracing::info!(
        role = %cfg.role,
        imdsv1 = cfg.allow_v1,
        "serving on http://{addr}; point SDKs at it with AWS_EC2_METADATA_SERVICE_ENDPOINT=http://{addr} \
         (and add {} to NO_PROXY if a proxy is set)",
        addr.ip()
    );
}
