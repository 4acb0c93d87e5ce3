//! On-demand roles at run time: which AWS profiles can be served by name
//! (the catalogue), which of them run, and the main loop's side of
//! [`Event`]s: starting one on first use, forgetting one that parked,
//! reading the profile files again when they change.
//!
//! Every change goes through the same path as a reload
//! ([`Daemon::apply`]): the config being served is the file's plus the
//! active on-demand roles (`config::catalogue::effective`), so starting
//! one is adding a role to a listener, and parking one removing it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::mpsc;

use super::bind::{self, Bound, Inherited};
use super::reload::FirstFetch;
use super::{Daemon, ReloadSummary, StartError};
use crate::config::catalogue::{self, Catalogue, OnDemandListener};
use crate::config::{Config, ServeProfiles, suggest};
use crate::environment::Environment;
use crate::refresh::activation::Event;
use crate::refresh::slot::RoleSlot;

/// The file's config, the catalogue read for it, and the active names.
pub(super) struct OnDemand {
    base: Config,
    catalogue: Catalogue,
    active: BTreeSet<String>,
    /// Why profiles are not served on demand although some exist (the
    /// default address was taken at start).
    disabled: Option<String>,
    env: Environment,
    /// Where a listener of their own writes the token files.
    token_dir: PathBuf,
    events: mpsc::UnboundedReceiver<Event>,
}

impl OnDemand {
    pub(super) fn new(
        base: Config,
        env: &Environment,
        state_dir: &Path,
        events: mpsc::UnboundedReceiver<Event>,
    ) -> Self {
        let token_dir =
            catalogue::own_token_dir(env, crate::state::current_uid(), state_dir);
        let catalogue = read_catalogue(&base, env, &token_dir);
        OnDemand {
            token_dir,
            base,
            catalogue,
            active: BTreeSet::new(),
            disabled: None,
            env: env.clone(),
            events,
        }
    }

    pub(super) fn base(&self) -> &Config {
        &self.base
    }

    /// The config to serve now.
    pub(super) fn effective(&self) -> Config {
        catalogue::effective(&self.base, &self.catalogue, &self.active)
    }

    /// Binds the on-demand listener when it is one of its own (it comes
    /// last in [`effective`](Self::effective)'s listeners). When the
    /// default address is taken (another user's daemon, say), profiles are
    /// not served on demand and the daemon starts all the same; an address
    /// set in `[profiles] listen` fails the start.
    pub(super) fn bind_own_listener(
        &mut self,
        inherited: &mut Inherited,
    ) -> Option<Bound> {
        let Some(OnDemandListener::Own(l)) = &self.catalogue.listener else {
            return None;
        };
        match bind::bind(l.listen, inherited) {
            Ok(bound) => Some(bound),
            Err(e) if self.base.profiles.listen.is_none() => {
                let reason = format!(
                    "AWS profiles are not served on demand: {e}; set `listen` under \
                     [profiles] to serve them elsewhere, or `serve = \"none\"`"
                );
                tracing::warn!("{reason}");
                self.disabled = Some(reason);
                self.catalogue = Catalogue::default();
                None
            }
            // Reported by the bind of every listener that follows.
            Err(_) => None,
        }
    }

    /// The catalogue for `base` as the profile files are now; none while
    /// the default address was taken at start (a `listen` of its own in a
    /// reloaded config tries again).
    fn catalogue_for(&self, base: &Config) -> Catalogue {
        if self.disabled.is_some() && base.profiles.listen.is_none() {
            return Catalogue::default();
        }
        read_catalogue(base, &self.env, &self.token_dir)
    }

    /// Where in `config` (from [`effective`](Self::effective)) the
    /// listener of their own is, if there is one: `catalogue::effective`
    /// adds it last.
    pub(super) fn own_listener_index(&self, config: &Config) -> Option<usize> {
        let own = matches!(self.catalogue.listener, Some(OnDemandListener::Own(_)));
        own.then(|| config.listeners.len() - 1)
    }

    /// Whether `role` is an on-demand role (running or not).
    pub(super) fn is_on_demand(&self, role: &str) -> bool {
        self.catalogue.roles.contains_key(role)
    }

    /// The profiles servable on demand, running or parked.
    pub(super) fn names(&self) -> BTreeSet<String> {
        self.catalogue.roles.keys().cloned().collect()
    }

    /// The region each on-demand profile sets.
    pub(super) fn regions(&self) -> BTreeMap<String, String> {
        self.catalogue.regions.clone()
    }

    /// Why `name` cannot be started: not a role or profile (with the
    /// roles, the files searched and the nearest name), or a profile whose
    /// name cannot be a role's.
    fn unknown(&self, name: &str) -> String {
        if let Some(reason) = self.catalogue.refused.get(name) {
            return format!("profile `{name}` cannot be served by name: {reason}");
        }
        if let Some(reason) = &self.disabled {
            return format!("no role named `{name}`; {reason}");
        }
        let roles: Vec<&str> = self.base.roles.keys().map(String::as_str).collect();
        let known = roles
            .iter()
            .copied()
            .chain(self.catalogue.roles.keys().map(String::as_str));
        let hint = suggest::hint(name, known);
        let files: Vec<String> = [
            crate::profile::config_file(&self.env),
            crate::profile::credentials_file(&self.env),
        ]
        .iter()
        .flatten()
        .map(|p| p.display().to_string())
        .collect();
        let profiles = match (files.is_empty(), &self.base.profiles.serve) {
            (true, _) => "no AWS profile file: HOME is not set".to_string(),
            (false, ServeProfiles::All) => {
                format!("AWS profiles in {}", files.join(" and "))
            }
            (false, _) => format!(
                "AWS profiles in {}, as far as [profiles] serve takes them",
                files.join(" and ")
            ),
        };
        let roles = if roles.is_empty() {
            "none".to_string()
        } else {
            roles.join(", ")
        };
        format!(
            "no role or AWS profile named `{name}`{hint} (roles: {roles}; {profiles})"
        )
    }
}

impl Daemon {
    /// Applies a new config from the file (already validated), keeping the
    /// on-demand roles that are still servable running. On an error
    /// nothing has changed.
    pub async fn reload(&mut self, new: Config) -> Result<ReloadSummary, StartError> {
        let catalogue = self.on_demand.catalogue_for(&new);
        self.replace_catalogue(new, catalogue, FirstFetch::Wait)
            .await
    }

    /// The next on-demand request for the main loop (cancel-safe).
    pub(crate) async fn next_event(&mut self) -> Option<Event> {
        self.on_demand.events.recv().await
    }

    /// Carries out one on-demand request.
    pub(crate) async fn handle(&mut self, event: Event) {
        match event {
            Event::Activate { role, reply } => {
                let _ = reply.send(self.activate(&role).await);
            }
            Event::Parked(slot) => self.forget_parked(&slot).await,
            Event::ProfilesChanged => self.reread_profiles().await,
        }
    }

    /// Handles on-demand requests until `work` is done, and returns what it
    /// gave: what the main loop of `imdsd run` does, for a daemon driven
    /// in process (tests). A request is carried out whole before `work` is
    /// looked at again.
    pub async fn serve_on_demand_while<T>(&mut self, work: impl Future<Output = T>) -> T {
        tokio::pin!(work);
        loop {
            tokio::select! {
                done = &mut work => return done,
                Some(event) = self.next_event() => self.handle(event).await,
            }
        }
    }

    /// Starts on-demand role `name` if it is not running; its slot.
    async fn activate(&mut self, name: &str) -> Result<Arc<RoleSlot>, String> {
        let now = self.shared.clock().now();
        if let Some(running) = self.roles.get(name).map(|r| r.slot.clone()) {
            if !running.is_parked() {
                running.note_use(now);
                return Ok(running);
            }
            // Parked a moment ago, its `Parked` still queued: forgotten
            // now, started afresh below.
            self.forget_parked(&running).await;
        }
        if !self.on_demand.is_on_demand(name) {
            return Err(self.on_demand.unknown(name));
        }
        self.on_demand.active.insert(name.to_string());
        let config = self.on_demand.effective();
        if let Err(e) = self.apply(config, FirstFetch::DontWait).await {
            self.on_demand.active.remove(name);
            tracing::error!(role = %name, "cannot start on demand: {e}");
            return Err(format!("cannot start role `{name}`: {e}"));
        }
        tracing::info!(role = %name, "started on demand (AWS profile `{name}`)");
        let slot = self.roles[name].slot.clone();
        slot.note_use(now);
        Ok(slot)
    }

    /// Forgets an on-demand role whose refresher parked it (unless it was
    /// replaced meanwhile: then the slot is not the running one).
    async fn forget_parked(&mut self, slot: &Arc<RoleSlot>) {
        let name = slot.name();
        let current = self.roles.get(name).map(|r| &r.slot);
        if !current.is_some_and(|c| Arc::ptr_eq(c, slot)) {
            return;
        }
        self.on_demand.active.remove(name);
        let config = self.on_demand.effective();
        if let Err(e) = self.apply(config, FirstFetch::DontWait).await {
            tracing::error!(role = %name, "could not stop the parked role: {e}");
        }
    }

    /// The profile files changed: a new profile becomes servable, a
    /// removed one stops.
    async fn reread_profiles(&mut self) {
        let base = self.on_demand.base.clone();
        let catalogue = self.on_demand.catalogue_for(&base);
        if catalogue == self.on_demand.catalogue {
            return;
        }
        let n = catalogue.roles.len();
        match self
            .replace_catalogue(base, catalogue, FirstFetch::DontWait)
            .await
        {
            Ok(_) => tracing::info!(
                "AWS profile files changed: {n} profile(s) served on demand"
            ),
            Err(e) => tracing::error!("AWS profile files changed, but: {e}"),
        }
    }

    /// Serves `base` with `catalogue`; the active roles no longer in it
    /// stop. On an error the previous ones stay.
    async fn replace_catalogue(
        &mut self,
        base: Config,
        catalogue: Catalogue,
        first_fetch: FirstFetch,
    ) -> Result<ReloadSummary, StartError> {
        let od = &mut self.on_demand;
        let active = od
            .active
            .iter()
            .filter(|n| catalogue.roles.contains_key(*n))
            .cloned()
            .collect();
        let old = (
            std::mem::replace(&mut od.base, base),
            std::mem::replace(&mut od.catalogue, catalogue),
            std::mem::replace(&mut od.active, active),
        );
        let config = self.on_demand.effective();
        let applied = self.apply(config, first_fetch).await;
        let od = &mut self.on_demand;
        match &applied {
            Err(_) => (od.base, od.catalogue, od.active) = old,
            Ok(_) if od.base.profiles.listen.is_some() => od.disabled = None,
            Ok(_) => {}
        }
        applied
    }
}

/// The catalogue of `base` for the AWS profile files as they are now. An
/// unreadable file serves no profile on demand (the roles that read it say
/// why).
fn read_catalogue(base: &Config, env: &Environment, token_dir: &Path) -> Catalogue {
    if base.profiles.serve == ServeProfiles::None {
        return Catalogue::default();
    }
    match crate::profile::load(env) {
        Ok(profiles) => {
            let named = profiles.profiles.iter().map(|(name, section)| {
                (name.as_str(), section.get("region").map(String::as_str))
            });
            catalogue::catalogue(base, named, token_dir)
        }
        Err(e) => {
            tracing::warn!("no AWS profile is served on demand: {e}");
            Catalogue::default()
        }
    }
}
