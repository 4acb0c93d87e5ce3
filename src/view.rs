//! What the rest of the daemon (status, health, metrics) may look at: the
//! roles and listeners being served, republished by every reload. Plain
//! data; readers load it through an `ArcSwap`.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::creds::store::RoleSlot;
use crate::metrics::RequestStats;

/// What the rest of the daemon (status, health, metrics) may look at.
#[derive(Debug, Default)]
pub(crate) struct View {
    pub(crate) roles: Vec<Arc<RoleSlot>>,
    pub(crate) listeners: Vec<ListenerView>,
}

#[derive(Debug)]
pub(crate) struct ListenerView {
    pub(crate) addr: SocketAddr,
    pub(crate) role: String,
    pub(crate) allow_v1: bool,
    pub(crate) stats: Arc<RequestStats>,
}
