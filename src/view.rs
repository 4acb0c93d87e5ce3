//! What the rest of the daemon (status, health, metrics) may look at: the
//! listeners being served, republished by every reload, and a handle on
//! the running roles (the daemon's one list, `RoleDirectory`). Readers load
//! it through an `ArcSwap`.

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::config::TokenFiles;
use crate::metrics::RequestStats;
use crate::refresh::directory::RoleDirectory;
use crate::refresh::slot::RoleSlot;

/// What the rest of the daemon (status, health, metrics) may look at.
#[derive(Debug, Default)]
pub(crate) struct View {
    /// The running roles: the daemon's one list, shared, not a copy.
    pub(crate) roles: RoleDirectory,
    pub(crate) listeners: Vec<ListenerView>,
    /// The region SDKs are told (`[sts] region`).
    pub(crate) region: String,
    /// The AWS profiles served on demand, running or parked.
    pub(crate) on_demand: std::collections::BTreeSet<String>,
    /// The region each on-demand profile sets (commands that run one get
    /// it instead of `region`).
    pub(crate) profile_regions: std::collections::BTreeMap<String, String>,
}

impl View {
    /// Whether every role a listener serves has usable credentials at
    /// `now` (what `/readyz` and `imdsd health --ready` report), and each
    /// role with its own state.
    ///
    /// Readiness is judged by the slots the listeners serve: during a
    /// reload the role list already holds a changed role's new runtime,
    /// still fetching, while the listeners serve the old one. On-demand
    /// roles do not count: they start and stop with their users, and one
    /// user's expired SSO login does not make the daemon unready.
    pub(crate) fn readiness(&self, now: DateTime<Utc>) -> (bool, Vec<(String, bool)>) {
        let usable = |slot: &RoleSlot| slot.load().usable(now).is_some();
        let ready = self
            .listeners
            .iter()
            .flat_map(|l| &l.roles)
            .filter(|slot| !self.on_demand.contains(slot.name()))
            .all(|slot| usable(slot));
        let roles = self
            .roles
            .load()
            .values()
            .map(|slot| (slot.name().to_string(), usable(slot)))
            .collect();
        (ready, roles)
    }
}

#[derive(Debug)]
pub(crate) struct ListenerView {
    pub(crate) addr: SocketAddr,
    /// `imds` or `container`.
    pub(crate) protocol: &'static str,
    /// The roles it serves, as it serves them.
    pub(crate) roles: Vec<Arc<RoleSlot>>,
    pub(crate) allow_v1: bool,
    /// A container listener's token files.
    pub(crate) token_files: Option<TokenFiles>,
    pub(crate) stats: Arc<RequestStats>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::Credentials;
    use crate::metrics::Metrics;
    use crate::refresh::store::{Served, Snapshot};
    use crate::secret::Secret;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    /// A slot holding credentials usable at `at(0)`.
    fn usable(name: &str) -> Arc<RoleSlot> {
        let slot = RoleSlot::new(name);
        let creds = Credentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: Secret::new("k"),
            session_token: Some(Secret::new("t")),
            expiration: Some(at(6 * 3600)),
        };
        slot.publish(Snapshot {
            served: Served::render(&creds, None, at(0)).map(Arc::new),
            ..Default::default()
        });
        slot
    }

    fn view(directory: Vec<Arc<RoleSlot>>, served: Vec<Arc<RoleSlot>>) -> View {
        let roles = RoleDirectory::default();
        roles.insert(directory);
        View {
            roles,
            listeners: vec![ListenerView {
                addr: "127.0.0.1:16925".parse().unwrap(),
                protocol: "imds",
                roles: served,
                allow_v1: false,
                token_files: None,
                stats: Arc::new(Metrics::default().listener_stats("l".into())),
            }],
            region: "us-east-1".into(),
            on_demand: Default::default(),
            profile_regions: Default::default(),
        }
    }

    #[test]
    fn readiness_is_judged_by_the_slots_the_listeners_serve() {
        let (served, idle) = (usable("dev"), RoleSlot::new("idle"));
        let (ready, roles) =
            view(vec![served.clone(), idle], vec![served.clone()]).readiness(at(0));
        assert!(
            ready,
            "a role no listener serves does not hold readiness back"
        );
        assert_eq!(roles, [("dev".into(), true), ("idle".into(), false)]);
        // A reload started `dev`'s new runtime, still fetching; the listener
        // serves the old one until it switches.
        let restarting = RoleSlot::new("dev");
        let (ready, _) = view(vec![restarting.clone()], vec![served]).readiness(at(0));
        assert!(ready);
        let (ready, _) =
            view(vec![restarting.clone()], vec![restarting.clone()]).readiness(at(0));
        assert!(!ready);
        let mut on_demand = view(vec![restarting.clone()], vec![restarting]);
        on_demand.on_demand.insert("dev".into());
        assert!(
            on_demand.readiness(at(0)).0,
            "an on-demand role does not count"
        );
    }
}
