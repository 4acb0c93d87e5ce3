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

/// What the rest of the daemon (status, health, metrics) may look at.
#[derive(Debug, Default)]
pub(crate) struct View {
    /// The running roles: the daemon's one list, shared, not a copy.
    pub(crate) roles: RoleDirectory,
    pub(crate) listeners: Vec<ListenerView>,
    /// The region SDKs are told (`[sts] region`).
    pub(crate) region: String,
}

impl View {
    /// Whether every role a listener serves has usable credentials at
    /// `now` (what `/readyz` and `imdsd health --ready` report), and each
    /// role with its own state.
    pub(crate) fn readiness(&self, now: DateTime<Utc>) -> (bool, Vec<(String, bool)>) {
        let mut ready = true;
        let roles = self
            .roles
            .load()
            .values()
            .map(|slot| {
                let usable = slot.load().usable(now).is_some();
                let served = self
                    .listeners
                    .iter()
                    .any(|l| l.roles.iter().any(|r| r == slot.name()));
                ready &= usable || !served;
                (slot.name().to_string(), usable)
            })
            .collect();
        (ready, roles)
    }
}

#[derive(Debug)]
pub(crate) struct ListenerView {
    pub(crate) addr: SocketAddr,
    /// `imds` or `container`.
    pub(crate) protocol: &'static str,
    pub(crate) roles: Vec<String>,
    pub(crate) allow_v1: bool,
    /// A container listener's token files.
    pub(crate) token_files: Option<TokenFiles>,
    pub(crate) stats: Arc<RequestStats>,
}
