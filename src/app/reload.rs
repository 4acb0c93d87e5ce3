//! Applying a new config to a running daemon without a gap: see
//! [`plan`](super::plan) for what changes, and ARCHITECTURE.md for the
//! order. A failed reload changes nothing: the audit log is retargeted
//! only once every fallible step has passed, and what the new roles' first
//! fetch needed before then (the new STS client, the new listeners'
//! addresses) is put back with the old roles.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::bind::{self, Bound};
use super::listener::{self, ListenerRuntime, TokenWrites, token_writes};
use super::plan::{self, KeptListener, ReloadPlan};
use super::{Daemon, ReloadSummary, RoleRuntime, StartError, settled_by};
use crate::config::Config;
use crate::container::token_files;
use crate::sts::StsClient;

/// New listeners, bound, with their index in the new config.
type Opened = Vec<(Bound, usize)>;

/// What a failed reload puts back after its new roles' first fetch.
struct Before {
    sts: Arc<StsClient>,
    own_addrs: Arc<Vec<SocketAddr>>,
}

/// Whether applying a config waits for its new roles' first fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FirstFetch {
    /// A reload: a switched listener has credentials from its first
    /// request.
    Wait,
    /// An on-demand role starting: nothing served it before, and whoever
    /// asked waits on its slot, not on the main loop.
    DontWait,
}

impl Daemon {
    /// Applies `new` (already validated, on-demand roles added). On an
    /// error nothing has changed.
    pub(super) async fn apply(
        &mut self,
        new: Config,
        first_fetch: FirstFetch,
    ) -> Result<ReloadSummary, StartError> {
        // A role whose kind changed (on demand, declared) restarts: only a
        // new refresher parks, or stops parking.
        let plan = plan::plan_restarting(&self.config, &new, |name| {
            let running = self.roles.get(name).map(|r| r.on_demand);
            running.is_some_and(|was| was != self.on_demand.is_on_demand(name))
        });
        // Built now, since it can fail; installed below.
        let sts = self.sts_client_for(&new)?;
        if plan.is_empty() && self.config.admin == new.admin {
            self.install_sts(sts);
            self.shared.audit.retarget(new.audit.clone());
            self.config = new;
            return Ok(ReloadSummary::default());
        }
        let before = Before {
            sts: self.shared.fetch.sts.load_full(),
            own_addrs: self.shared.fetch.own_addrs.load_full(),
        };
        let (opened, admin) = self.bind_new_listeners(&plan, &new)?;
        // The new roles' first fetch uses the new client: installed now,
        // put back if the reload fails below.
        self.install_sts(sts);
        let retired = self.restart_roles(&plan, &new, first_fetch).await;
        // Token files are prepared once the new role runtimes exist, and
        // become visible only after the endpoints accept their tokens.
        let writes =
            self.tokens_to_write(&new, Some((&self.config, &plan.roles_started)));
        let tokens = match listener::prepare_tokens(writes).await {
            Ok(tokens) => tokens,
            Err(e) => {
                self.undo_restart(retired, &plan, before);
                return Err(e);
            }
        };
        // Nothing fails from here on.
        self.shared.audit.retarget(new.audit.clone());
        let mut summary = self.switch_listeners(&plan, &new, opened);
        let stale = stale_tokens(&self.config, &new);
        let committed = listener::commit_tokens(tokens).await;
        for (files, role) in stale.into_values() {
            token_files::remove(&files, &role);
        }
        self.reload_admin(new.admin, admin);
        self.stop_roles(retired);
        summary.roles_started = plan.roles_started.into_iter().collect();
        summary.roles_stopped = plan.roles_stopped.into_iter().collect();
        self.config = new;
        self.publish_view();
        // Renames in a directory we just wrote in do not fail in practice;
        // if one does, the replaced token is still accepted for a minute.
        committed?;
        Ok(summary)
    }

    /// Puts back the roles [`restart_roles`](Self::restart_roles) replaced,
    /// the STS client and the own addresses, when the reload fails after
    /// it: the new runtimes stop.
    fn undo_restart(
        &mut self,
        retired: Vec<RoleRuntime>,
        plan: &ReloadPlan,
        before: Before,
    ) {
        self.shared.fetch.sts.store(before.sts);
        self.shared.fetch.own_addrs.store(before.own_addrs);
        let started: Vec<RoleRuntime> = plan
            .roles_started
            .iter()
            .filter_map(|name| self.roles.remove(name))
            .collect();
        self.stop_roles(started);
        let slots: Vec<_> = retired.iter().map(|r| r.slot.clone()).collect();
        self.shared.fetch.roles.insert(slots);
        for runtime in retired {
            self.roles.insert(runtime.config.name.clone(), runtime);
        }
    }

    /// A client for changed `[sts]` settings (even just the timeout).
    fn sts_client_for(&self, new: &Config) -> Result<Option<StsClient>, StartError> {
        if new.sts == self.config.sts {
            return Ok(None);
        }
        let fetch = &self.shared.fetch;
        Ok(Some(StsClient::new(
            &new.sts,
            &fetch.env,
            fetch.clock.clone(),
        )?))
    }

    /// Step 3: binds the listeners the new config adds. A failure aborts
    /// the reload before anything changed.
    fn bind_new_listeners(
        &mut self,
        plan: &ReloadPlan,
        new: &Config,
    ) -> Result<(Opened, Option<(SocketAddr, Bound)>), StartError> {
        let mut opened = Vec::new();
        for &i in &plan.listeners_opened {
            opened.push((bind::bind(new.listeners[i].listen, &mut self.inherited)?, i));
        }
        let admin = match new.admin {
            Some(addr) if Some(addr) != self.config.admin => {
                Some((addr, bind::bind(addr, &mut self.inherited)?))
            }
            _ => None,
        };
        // Sources must not point at a listener that is about to open.
        self.add_own_addrs(opened.iter().map(|(b, _)| b.addr));
        Ok((opened, admin))
    }

    /// Step 4: starts refreshers for new and changed roles and waits (one
    /// deadline: the fetches run in parallel) for their first fetch, so a
    /// switched listener has credentials from its first request. The old
    /// runtimes keep serving meanwhile; they are returned, to be stopped
    /// once no listener uses them.
    async fn restart_roles(
        &mut self,
        plan: &ReloadPlan,
        new: &Config,
        first_fetch: FirstFetch,
    ) -> Vec<RoleRuntime> {
        let started =
            self.start_roles(plan.roles_started.iter().map(|name| &new.roles[name]));
        if first_fetch == FirstFetch::Wait {
            let deadline =
                tokio::time::Instant::now() + new.sts.timeout + Duration::from_secs(1);
            let slots = started.values().map(|r| r.slot.clone()).collect();
            settled_by(slots, deadline).await;
        }
        let retired = plan
            .roles_stopped
            .iter()
            .filter_map(|name| self.roles.remove(name))
            .collect();
        self.roles.extend(started);
        retired
    }

    /// Step 5: swaps the endpoints of kept listeners whose role changed,
    /// starts new listeners, drains removed ones.
    fn switch_listeners(
        &mut self,
        plan: &ReloadPlan,
        new: &Config,
        opened: Opened,
    ) -> ReloadSummary {
        let mut summary = ReloadSummary::default();
        let mut old: Vec<Option<ListenerRuntime>> = std::mem::take(&mut self.listeners)
            .into_iter()
            .map(Some)
            .collect();
        let mut next: Vec<Option<ListenerRuntime>> =
            (0..new.listeners.len()).map(|_| None).collect();
        for kept in &plan.listeners_kept {
            // The plan keeps each old listener at most once.
            let Some(mut runtime) = old[kept.old].take() else {
                continue;
            };
            if kept.endpoint_changed {
                self.switch_endpoint(&mut runtime, kept, new);
                summary.listeners_switched.push(runtime.addr);
            }
            next[kept.new] = Some(runtime);
        }
        for (bound, i) in opened {
            let runtime = self.start_listener(bound, &new.listeners[i]);
            summary.listeners_opened.push(runtime.addr);
            next[i] = Some(runtime);
        }
        for runtime in old.into_iter().flatten() {
            runtime.stop.cancel();
            summary.listeners_closed.push(runtime.addr);
        }
        self.listeners = next.into_iter().flatten().collect();
        summary
    }

    /// Gives a kept listener its new endpoint; a role it no longer serves
    /// stays answerable under its old name, and a replaced token stays
    /// accepted, for a grace period.
    fn switch_endpoint(
        &self,
        runtime: &mut ListenerRuntime,
        kept: &KeptListener,
        new: &Config,
    ) {
        runtime.config = new.listeners[kept.new].clone();
        let old = runtime.endpoint.load_full();
        let endpoint = self.endpoint(
            &runtime.config,
            runtime.addr,
            runtime.stats.clone(),
            Some(&old),
        );
        runtime.endpoint.store(Arc::new(endpoint));
    }

    /// Step 6: stops the refreshers of removed and replaced roles.
    fn stop_roles(&self, retired: Vec<RoleRuntime>) {
        for runtime in retired {
            runtime.stop.cancel();
            self.forget_role(&runtime);
        }
    }

    /// Drops a retired role from the directory, unless a new runtime of the
    /// same name has replaced it there.
    fn forget_role(&self, runtime: &RoleRuntime) {
        self.shared.fetch.roles.forget(&runtime.slot);
    }

    fn reload_admin(
        &mut self,
        wanted: Option<SocketAddr>,
        bound: Option<(SocketAddr, Bound)>,
    ) {
        if self.admin.as_ref().map(|a| a.configured) == wanted {
            return;
        }
        if let Some(old) = self.admin.take() {
            old.stop.cancel();
        }
        if let Some((configured, bound)) = bound {
            self.admin = Some(self.start_admin(configured, bound));
        }
    }

    fn install_sts(&mut self, sts: Option<StsClient>) {
        if let Some(sts) = sts {
            self.shared.fetch.sts.store(Arc::new(sts));
        }
    }

    fn add_own_addrs(&self, addrs: impl Iterator<Item = SocketAddr>) {
        let own_addrs = &self.shared.fetch.own_addrs;
        let mut own = (**own_addrs.load()).clone();
        own.extend(addrs);
        own_addrs.store(Arc::new(own));
    }
}

/// Token files the old config wrote and the new one does not.
fn stale_tokens(old: &Config, new: &Config) -> TokenWrites {
    let keep = token_writes(new);
    let mut stale = token_writes(old);
    stale.retain(|path, _| !keep.contains_key(path));
    stale
}
