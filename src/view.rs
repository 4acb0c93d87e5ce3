//! What the rest of the daemon (status, health, metrics) may look at: the
//! roles and listeners being served, republished by every reload. Plain
//! data; readers load it through an `ArcSwap`.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::creds::store::RoleSlot;
use crate::metrics::RequestStats;

/// What the rest of the daemon (status, health, metrics) may look at.
#[derive(Debug, Default)]
pub struct View {
    pub roles: Vec<Arc<RoleSlot>>,
    pub listeners: Vec<ListenerView>,
}

#[derive(Debug)]
pub struct ListenerView {
    pub addr: SocketAddr,
    pub role: String,
    pub allow_v1: bool,
    pub stats: Arc<RequestStats>,
}
