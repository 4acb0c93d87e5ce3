//! The connection pool of one listener: who gets a connection when the cap
//! is reached, so that no local client can starve the others.
//!
//! As nginx does when its pool runs out, an idle keep-alive connection
//! (no request in progress; a slow request head counts as idle) is closed
//! to admit a new one, the one idle longest first. Each peer (a local user,
//! or a source address when the owner is unknown) may hold at most its
//! share of the cap; a peer at its share recycles its own idle connections,
//! and is refused when it has none. The decision ([`decide`]) is a pure
//! function of the pool's state.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Who a connection is accounted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum PeerKey {
    /// A local user (the client socket's owner).
    Uid(u32),
    /// A client whose owner is not known.
    Addr(IpAddr),
}

/// The pool's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PoolLimits {
    pub(crate) max: usize,
    pub(crate) per_peer: usize,
}

/// What the pool knows of one connection, for [`decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnState {
    pub(crate) id: u64,
    pub(crate) peer: PeerKey,
    /// Requests in progress.
    pub(crate) busy: u32,
    /// Since when nothing has been in progress.
    pub(crate) idle_since: Instant,
}

/// What to do with a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Admit,
    /// Close connection `id` (idle), then admit.
    Evict(u64),
    /// No room: the peer is at its share with nothing idle, or every
    /// connection is busy.
    Refuse(Refusal),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    PeerShare,
    Full,
}

impl Refusal {
    /// For logs.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Refusal::PeerShare => "the peer has its share of connections",
            Refusal::Full => "the listener is full",
        }
    }
}

/// Decides for a new connection from `peer`, given every open connection.
pub(crate) fn decide(conns: &[ConnState], peer: PeerKey, limits: PoolLimits) -> Decision {
    let longest_idle = |of_peer: Option<PeerKey>| {
        conns
            .iter()
            .filter(|c| c.busy == 0 && of_peer.is_none_or(|p| c.peer == p))
            .min_by_key(|c| (c.idle_since, c.id))
            .map(|c| c.id)
    };
    let held = conns.iter().filter(|c| c.peer == peer).count();
    if held >= limits.per_peer {
        return match longest_idle(Some(peer)) {
            Some(id) => Decision::Evict(id),
            None => Decision::Refuse(Refusal::PeerShare),
        };
    }
    if conns.len() < limits.max {
        return Decision::Admit;
    }
    match longest_idle(None) {
        Some(id) => Decision::Evict(id),
        None => Decision::Refuse(Refusal::Full),
    }
}

// === impl Pool ===

/// The open connections of one listener.
#[derive(Debug)]
pub(crate) struct Pool {
    limits: PoolLimits,
    state: Mutex<HashMap<u64, Entry>>,
    next_id: std::sync::atomic::AtomicU64,
}

#[derive(Debug)]
struct Entry {
    state: ConnState,
    evict: CancellationToken,
}

impl Pool {
    pub(crate) fn new(limits: PoolLimits) -> Arc<Self> {
        Arc::new(Pool {
            limits,
            state: Mutex::new(HashMap::new()),
            next_id: std::sync::atomic::AtomicU64::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a connection from `peer` (closing an idle one if needed), or
    /// says why not.
    pub(crate) fn admit(
        self: &Arc<Self>,
        peer: PeerKey,
        now: Instant,
    ) -> Result<Admitted, Refusal> {
        let mut conns = self.lock();
        let states: Vec<ConnState> = conns.values().map(|e| e.state).collect();
        match decide(&states, peer, self.limits) {
            Decision::Refuse(why) => return Err(why),
            Decision::Evict(id) => {
                if let Some(victim) = conns.remove(&id) {
                    victim.evict.cancel();
                }
            }
            Decision::Admit => {}
        }
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let evict = CancellationToken::new();
        let state = ConnState {
            id,
            peer,
            busy: 0,
            idle_since: now,
        };
        conns.insert(
            id,
            Entry {
                state,
                evict: evict.clone(),
            },
        );
        Ok(Admitted {
            pool: self.clone(),
            id,
            evict,
        })
    }

    /// Open connections.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn update(&self, id: u64, f: impl FnOnce(&mut ConnState)) {
        if let Some(entry) = self.lock().get_mut(&id) {
            f(&mut entry.state);
        }
    }
}

/// An admitted connection; leaves the pool when dropped.
#[derive(Debug)]
pub(crate) struct Admitted {
    pool: Arc<Pool>,
    id: u64,
    evict: CancellationToken,
}

impl Admitted {
    /// Cancelled when the pool closes this connection to admit another.
    pub(crate) fn evicted(&self) -> &CancellationToken {
        &self.evict
    }

    /// Marks a request in progress until the returned guard is dropped.
    pub(crate) fn request(self: &Arc<Self>) -> InProgress {
        self.pool.update(self.id, |s| s.busy += 1);
        InProgress(self.clone())
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.pool.lock().remove(&self.id);
    }
}

/// A request in progress on a connection.
#[derive(Debug)]
pub(crate) struct InProgress(Arc<Admitted>);

impl Drop for InProgress {
    fn drop(&mut self) {
        let now = Instant::now();
        self.0.pool.update(self.0.id, |s| {
            s.busy = s.busy.saturating_sub(1);
            s.idle_since = now;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const A: PeerKey = PeerKey::Uid(1000);
    const B: PeerKey = PeerKey::Uid(1001);
    const LIMITS: PoolLimits = PoolLimits {
        max: 4,
        per_peer: 3,
    };

    fn conn(id: u64, peer: PeerKey, busy: u32, idle_for_secs: u64) -> ConnState {
        let base = Instant::now() + Duration::from_secs(1000);
        ConnState {
            id,
            peer,
            busy,
            idle_since: base - Duration::from_secs(idle_for_secs),
        }
    }

    #[test]
    fn below_the_cap_a_connection_is_admitted() {
        assert_eq!(decide(&[], A, LIMITS), Decision::Admit);
        let conns = [conn(1, A, 0, 5), conn(2, B, 1, 0)];
        assert_eq!(decide(&conns, A, LIMITS), Decision::Admit);
    }

    #[test]
    fn at_the_cap_the_connection_idle_longest_makes_room() {
        let conns = [
            conn(1, A, 1, 0),
            conn(2, A, 0, 30),
            conn(3, B, 0, 90),
            conn(4, B, 0, 10),
        ];
        let c = PeerKey::Uid(7);
        assert_eq!(decide(&conns, c, LIMITS), Decision::Evict(3));
    }

    #[test]
    fn at_the_cap_with_everything_busy_the_newcomer_is_refused() {
        let conns = [
            conn(1, A, 1, 0),
            conn(2, A, 2, 0),
            conn(3, B, 1, 0),
            conn(4, B, 1, 0),
        ];
        assert_eq!(
            decide(&conns, PeerKey::Uid(7), LIMITS),
            Decision::Refuse(Refusal::Full)
        );
    }

    #[test]
    fn a_peer_at_its_share_recycles_its_own_idle_connections() {
        // B idles longer, but A is the one over its share.
        let conns = [
            conn(1, A, 0, 5),
            conn(2, A, 0, 20),
            conn(3, A, 1, 0),
            conn(4, B, 0, 99),
        ];
        assert_eq!(decide(&conns, A, LIMITS), Decision::Evict(2));
        let busy = [conn(1, A, 1, 0), conn(2, A, 1, 0), conn(3, A, 1, 0)];
        assert_eq!(
            decide(&busy, A, LIMITS),
            Decision::Refuse(Refusal::PeerShare)
        );
        // ... while another peer still gets in.
        assert_eq!(decide(&busy, B, LIMITS), Decision::Admit);
    }

    #[tokio::test]
    async fn admitting_evicts_the_victim_and_counts_requests() {
        let pool = Pool::new(PoolLimits {
            max: 2,
            per_peer: 2,
        });
        let now = Instant::now();
        let first = Arc::new(pool.admit(A, now).unwrap());
        let second = Arc::new(pool.admit(B, now + Duration::from_secs(1)).unwrap());
        let busy = second.request();
        let third = pool
            .admit(PeerKey::Uid(7), now + Duration::from_secs(2))
            .unwrap();
        assert!(first.evicted().is_cancelled(), "the idle one made room");
        assert!(!second.evicted().is_cancelled());
        assert_eq!(pool.len(), 2);
        drop(third);
        drop(busy);
        assert_eq!(pool.len(), 1);
        drop(second);
        drop(first);
        assert_eq!(pool.len(), 0);
    }

    #[test]
    fn refusals_say_why_in_the_log() {
        assert_eq!(
            Refusal::PeerShare.as_str(),
            "the peer has its share of connections"
        );
        assert_eq!(Refusal::Full.as_str(), "the listener is full");
    }

    #[tokio::test]
    async fn a_connection_is_closed_for_room_only_once_its_requests_end() {
        let pool = Pool::new(PoolLimits {
            max: 2,
            per_peer: 2,
        });
        let t0 = Instant::now();
        let oldest = Arc::new(pool.admit(A, t0).unwrap());
        let newer = Arc::new(pool.admit(B, t0 + Duration::from_secs(1)).unwrap());
        // Two requests at once on the connection idle longest; one ends.
        let first_request = oldest.request();
        let second_request = oldest.request();
        drop(first_request);
        let third = Arc::new(
            pool.admit(PeerKey::Uid(7), t0 + Duration::from_secs(2))
                .unwrap(),
        );
        assert!(!oldest.evicted().is_cancelled(), "a request is in progress");
        assert!(newer.evicted().is_cancelled(), "the idle one made room");
        let on_third = third.request();
        drop(second_request);
        let fourth = pool.admit(PeerKey::Uid(8), t0 + Duration::from_secs(3));
        assert!(
            fourth.is_ok(),
            "the connection whose requests ended makes room"
        );
        assert!(oldest.evicted().is_cancelled());
        assert!(!third.evicted().is_cancelled());
        drop(on_third);
    }
}
