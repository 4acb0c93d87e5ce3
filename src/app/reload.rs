//! Applying a new config to a running daemon without a gap: see
//! [`plan`](super::plan) for what changes, and ARCHITECTURE.md for the
//! order. Everything that can fail happens before anything changes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::{
    Bound, Daemon, ListenerRuntime, ReloadSummary, RoleRuntime, StartError, listen, plan,
    settled_by,
};
use crate::config::Config;
use crate::imds::endpoint;
use crate::sts::StsClient;

impl Daemon {
    /// Applies `new`. On an error nothing has changed.
    pub async fn reload(&mut self, new: Config) -> Result<ReloadSummary, StartError> {
        let plan = plan::plan(&self.config, &new);
        let mut summary = ReloadSummary::default();
        // A client for changed [sts] settings (even just the timeout): built
        // now, since it can fail, and installed below.
        let sts = if new.sts != self.config.sts {
            Some(StsClient::new(
                &new.sts,
                &self.shared.env,
                self.shared.clock.clone(),
            )?)
        } else {
            None
        };
        if plan.is_empty() && self.config.admin == new.admin {
            self.install_sts(sts);
            self.config = new;
            return Ok(summary);
        }
        // Everything else that can fail comes first.
        let mut opened = Vec::new();
        for &i in &plan.listeners_opened {
            opened.push((listen(new.listeners[i].listen, &mut self.inherited)?, i));
        }
        let admin_listener = match new.admin {
            Some(addr) if Some(addr) != self.config.admin => {
                Some((addr, listen(addr, &mut self.inherited)?))
            }
            _ => None,
        };
        self.install_sts(sts);
        // Sources must not point at a listener that is about to open.
        self.add_own_addrs(opened.iter().map(|(b, _): &(Bound, usize)| b.addr));

        // New and changed roles fetch now; the old ones keep serving.
        let started =
            self.start_roles(plan.roles_started.iter().map(|name| &new.roles[name]));
        // One deadline for all of them: the fetches run in parallel.
        let first_fetch =
            tokio::time::Instant::now() + new.sts.timeout + Duration::from_secs(1);
        settled_by(started.values(), first_fetch).await;
        let mut retired: Vec<RoleRuntime> = Vec::new();
        for name in &plan.roles_stopped {
            retired.extend(self.roles.remove(name));
        }
        self.roles.extend(started);

        // Switch, open and close listeners.
        let mut old_listeners: Vec<Option<ListenerRuntime>> =
            std::mem::take(&mut self.listeners)
                .into_iter()
                .map(Some)
                .collect();
        let mut next: Vec<Option<ListenerRuntime>> =
            (0..new.listeners.len()).map(|_| None).collect();
        for kept in &plan.listeners_kept {
            // The plan keeps each old listener at most once.
            let Some(mut runtime) = old_listeners[kept.old].take() else {
                continue;
            };
            if kept.endpoint_changed {
                let old_role = runtime.endpoint.load().role().clone();
                runtime.config = new.listeners[kept.new].clone();
                let mut endpoint =
                    self.endpoint(&runtime.config, runtime.addr, runtime.stats.clone());
                if old_role.name() != runtime.config.role {
                    endpoint.keep_previous(
                        old_role,
                        self.shared.clock.now() + endpoint::RENAME_GRACE,
                    );
                }
                runtime.endpoint.store(Arc::new(endpoint));
                summary.listeners_switched.push(runtime.addr);
            }
            next[kept.new] = Some(runtime);
        }
        for (listener, i) in opened {
            let runtime = self.start_listener(listener, &new.listeners[i]);
            summary.listeners_opened.push(runtime.addr);
            next[i] = Some(runtime);
        }
        for runtime in old_listeners.into_iter().flatten() {
            runtime.stop.cancel();
            summary.listeners_closed.push(runtime.addr);
        }
        self.listeners = next.into_iter().flatten().collect();
        self.reload_admin(new.admin, admin_listener);

        for runtime in retired {
            runtime.stop.cancel();
            self.forget_role(&runtime);
        }
        summary.roles_started = plan.roles_started.into_iter().collect();
        summary.roles_stopped = plan.roles_stopped.into_iter().collect();
        self.config = new;
        self.publish_view();
        Ok(summary)
    }

    /// Drops a retired role from the directory, unless a new runtime of the
    /// same name has replaced it there.
    fn forget_role(&self, runtime: &RoleRuntime) {
        let current = self.shared.roles.load();
        let name = runtime.config.name.as_str();
        if current
            .get(name)
            .is_some_and(|s| Arc::ptr_eq(s, &runtime.slot))
        {
            let mut next = (**current).clone();
            next.remove(name);
            self.shared.roles.store(Arc::new(next));
        }
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
            self.fetch.sts.store(Arc::new(sts));
        }
    }

    fn add_own_addrs(&self, addrs: impl Iterator<Item = SocketAddr>) {
        let mut own = (**self.shared.own_addrs.load()).clone();
        own.extend(addrs);
        self.shared.own_addrs.store(Arc::new(own));
    }
}
