//! Listeners at run time: the endpoint each one serves (IMDS or container),
//! built from its config and the running roles, and swapped on reload; the
//! container token files written for them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use http::Request;
use tokio_util::sync::CancellationToken;

use super::bind::Bound;
use super::{Daemon, StartError};
use crate::config::catalogue::profile_role;
use crate::config::{Config, ContainerConfig, ListenerConfig, Protocol, TokenFiles};
use crate::container::endpoint::{Container, Parked, ServedRole};
use crate::container::token_files::{self, PreparedToken};
use crate::container::tokens::{ROTATION_GRACE, RoleToken};
use crate::endpoint::{self, EndpointSpec};
use crate::imds::endpoint::{Imds, ImdsSpec, RENAME_GRACE};
use crate::metrics::RequestStats;
use crate::secret::Secret;
use crate::server::guard::HostAllowList;
use crate::server::{self, Client, HttpResponse};

/// What a listener answers with: the scaffold around the protocol its
/// config names. An enum because a reload may give a kept address the
/// other protocol; every call goes to the variant's own
/// [`server::Handler`].
#[derive(Debug)]
pub(crate) enum Endpoint {
    Imds(Box<endpoint::Endpoint<Imds>>),
    Container(endpoint::Endpoint<Container>),
}

impl server::Handler for Endpoint {
    fn allowed_uids(&self) -> Option<&[u32]> {
        match self {
            Endpoint::Imds(e) => e.allowed_uids(),
            Endpoint::Container(e) => e.allowed_uids(),
        }
    }

    fn throttled(&self) -> HttpResponse {
        match self {
            Endpoint::Imds(e) => e.throttled(),
            Endpoint::Container(e) => e.throttled(),
        }
    }

    async fn handle(&self, req: Request<()>, client: &Client) -> HttpResponse {
        match self {
            Endpoint::Imds(e) => e.handle(req, client).await,
            Endpoint::Container(e) => e.handle(req, client).await,
        }
    }
}

/// A running listener.
pub(super) struct ListenerRuntime {
    pub(super) config: ListenerConfig,
    pub(super) addr: SocketAddr,
    pub(super) endpoint: Arc<ArcSwap<Endpoint>>,
    pub(super) stats: Arc<RequestStats>,
    pub(super) stop: CancellationToken,
}

/// Token files to write for a config: each `(directory, role)` once.
pub(super) type TokenWrites = BTreeMap<PathBuf, (TokenFiles, String)>;

impl Daemon {
    /// The endpoint `cfg` describes, bound at `addr`. `previous` is the
    /// endpoint it replaces on a reload, whose role names and tokens stay
    /// answerable for a grace period.
    pub(super) fn endpoint(
        &self,
        cfg: &ListenerConfig,
        addr: SocketAddr,
        stats: Arc<RequestStats>,
        previous: Option<&Endpoint>,
    ) -> Endpoint {
        let spec = EndpointSpec {
            allow_uids: cfg.allow_uids.clone(),
            clock: self.shared.clock().clone(),
            wait_limit: self.shared.wait_limit,
            stats,
            listener: addr,
            audit: self.shared.audit.clone(),
        };
        match &cfg.protocol {
            Protocol::Imds { role, allow_v1 } => {
                let old = match previous {
                    Some(Endpoint::Imds(old)) => Some(old.protocol()),
                    _ => None,
                };
                let imds = self.imds(role, *allow_v1, addr, old);
                Endpoint::Imds(Box::new(endpoint::Endpoint::new(spec, imds)))
            }
            Protocol::Container(c) => {
                let old = match previous {
                    Some(Endpoint::Container(old)) => Some(old.protocol()),
                    _ => None,
                };
                let container = self.container(c, addr, old);
                Endpoint::Container(endpoint::Endpoint::new(spec, container))
            }
        }
    }

    /// An IMDS listener serving `role`; when it replaces one that served
    /// another role, that role stays answerable under its name for
    /// [`RENAME_GRACE`].
    fn imds(
        &self,
        role: &str,
        allow_v1: bool,
        addr: SocketAddr,
        previous: Option<&Imds>,
    ) -> Imds {
        let now = self.shared.clock().now();
        let previous = previous
            .filter(|old| old.role().name() != role)
            .map(|old| (old.role().clone(), now + RENAME_GRACE));
        let role = &self.roles[role];
        Imds::new(ImdsSpec {
            role: role.slot.clone(),
            role_arn: role.config.role_arn().unwrap_or_default().to_string(),
            allow_v1,
            hosts: HostAllowList::for_listener(addr),
            key: self.shared.key.clone(),
            started: now,
            // The STS client is replaced before listeners are rebuilt, so
            // during a reload this is already the new region.
            region: self.shared.fetch.sts.load().config().region.clone(),
            instance_id: self.shared.instance_id.clone(),
            previous,
        })
    }

    fn container(
        &self,
        c: &ContainerConfig,
        addr: SocketAddr,
        previous: Option<&Container>,
    ) -> Container {
        let until = self.shared.clock().now() + ROTATION_GRACE;
        let roles = c
            .roles
            .iter()
            .map(|name| (name.clone(), self.served_role(name, previous, until)))
            .collect();
        let container = Container::new(roles, HostAllowList::for_listener(addr));
        if c.parked.is_empty() {
            return container;
        }
        let tokens = c
            .parked
            .iter()
            .map(|name| (name.clone(), RoleToken::new(self.token_of(name))))
            .collect();
        container.with_parked(Parked {
            tokens,
            activator: self.shared.activator.clone(),
        })
    }

    /// A role on a container listener, with its token; a token that
    /// replaces the one `previous` had stays answerable until `until`.
    fn served_role(
        &self,
        name: &str,
        previous: Option<&Container>,
        until: DateTime<Utc>,
    ) -> ServedRole {
        let runtime = &self.roles[name];
        let current = runtime.token.clone();
        let token = match previous.and_then(|p| p.roles().get(name)) {
            Some(old) => RoleToken::replacing(current, &old.token, until),
            None => RoleToken::new(current),
        };
        ServedRole {
            slot: runtime.slot.clone(),
            token,
        }
    }

    /// Role `name`'s container token: a running role's, or a parked
    /// on-demand role's (derived the same way, from its definition).
    fn token_of(&self, name: &str) -> Secret {
        match self.roles.get(name) {
            Some(runtime) => runtime.token.clone(),
            None => self.shared.tokens.token_for(&profile_role(name)),
        }
    }

    /// Binds nothing, starts serving `cfg` on `bound`.
    pub(super) fn start_listener(
        &mut self,
        bound: Bound,
        cfg: &ListenerConfig,
    ) -> ListenerRuntime {
        let Bound { listener, addr } = bound;
        let stats = Arc::new(self.shared.metrics.listener_stats(addr.to_string()));
        let endpoint = self.endpoint(cfg, addr, stats.clone(), None);
        let endpoint = Arc::new(ArcSwap::from_pointee(endpoint));
        let stop = CancellationToken::new();
        announce(addr, cfg);
        self.servers.spawn(server::run(
            listener,
            endpoint.clone(),
            self.shared.limits,
            stop.clone(),
        ));
        ListenerRuntime {
            config: cfg.clone(),
            addr,
            endpoint,
            stats,
            stop,
        }
    }

    /// The token files `config` needs written: every one at start; on a
    /// reload from `old`, those of roles that restarted (a new definition
    /// is a new token), whose settings changed, or that went missing.
    pub(super) fn tokens_to_write(
        &self,
        config: &Config,
        old: Option<(&Config, &BTreeSet<String>)>,
    ) -> Vec<TokenWrite> {
        let before = old.map(|(old, _)| token_writes(old)).unwrap_or_default();
        token_writes(config)
            .into_iter()
            .filter(|(path, (files, role))| {
                let unchanged = old.is_some_and(|(_, started)| {
                    !started.contains(role)
                        && before.get(path) == Some(&(files.clone(), role.clone()))
                });
                !unchanged || !path.exists()
            })
            .map(|(_, (files, role))| TokenWrite {
                token: self.token_of(&role),
                files,
                role,
            })
            .collect()
    }
}

/// One token file to write.
pub(super) struct TokenWrite {
    files: TokenFiles,
    role: String,
    token: Secret,
}

/// Writes token files to temporary files (what can fail), off the runtime
/// threads; they become visible with [`commit_tokens`].
pub(super) async fn prepare_tokens(
    writes: Vec<TokenWrite>,
) -> Result<Vec<PreparedToken>, StartError> {
    if writes.is_empty() {
        return Ok(vec![]);
    }
    blocking(move || {
        writes
            .iter()
            .map(|w| {
                token_files::prepare(&w.files, &w.role, &w.token)
                    .map_err(StartError::from)
            })
            .collect()
    })
    .await
}

/// Moves prepared token files into place, off the runtime threads.
pub(super) async fn commit_tokens(
    prepared: Vec<PreparedToken>,
) -> Result<(), StartError> {
    if prepared.is_empty() {
        return Ok(());
    }
    blocking(move || {
        for token in prepared {
            token.commit()?;
        }
        Ok(())
    })
    .await
}

/// Runs file work on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StartError> + Send + 'static,
) -> Result<T, StartError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(StartError::Task(e.to_string())))
}

/// Every `(token file, role)` a config's container listeners need, once.
pub(super) fn token_writes(config: &Config) -> TokenWrites {
    let mut writes = TokenWrites::new();
    for l in &config.listeners {
        if let Protocol::Container(c) = &l.protocol {
            // A parked role's token file stays: its next use starts it.
            for role in c.roles.iter().chain(&c.parked) {
                writes.insert(c.tokens.path(role), (c.tokens.clone(), role.clone()));
            }
        }
    }
    writes
}

fn announce(addr: SocketAddr, cfg: &ListenerConfig) {
    match &cfg.protocol {
        Protocol::Imds { role, allow_v1 } => tracing::info!(
            role = %role,
            imdsv1 = allow_v1,
            "serving on http://{addr}; point SDKs at it with AWS_EC2_METADATA_SERVICE_ENDPOINT=http://{addr} \
             (and add {} to NO_PROXY if a proxy is set)",
            addr.ip()
        ),
        Protocol::Container(c) => tracing::info!(
            roles = %c.roles.join(","),
            tokens = %c.tokens.dir.display(),
            "serving on http://{addr} (container credentials at /role/NAME); point SDKs at it with \
             AWS_CONTAINER_CREDENTIALS_FULL_URI=http://{addr}/role/NAME and \
             AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE={}/NAME.token (or run `imdsd exec NAME -- CMD`)",
            c.tokens.dir.display()
        ),
    }
}
