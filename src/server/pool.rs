//! The connection pool of one listener: who gets a connection when the cap
//! is reached, so that no local client can starve the others.
//!
//! As nginx does when its pool runs out, an idle keep-alive connection
//! (no request in progress; a slow request head counts as idle) is closed
//! to admit a new one, the one idle longest first. Each peer (a local user,
//! or a source address when the owner is unknown) may hold at most its
//! share of the cap; a peer at its share recycles its own idle connections,
//! and is refused when it has none. At the cap, the connection closed is
//! the longest idle one of the peer holding the most connections, so a
//! peer keeping a few connections never pays for one that holds hundreds.
//! The decision ([`decide`]) is a pure function of the pool's state.
//!
//! Connections are identified lazily: below a peer's share of open
//! connections no peer can be at its share (nor the pool full), so a new
//! connection is admitted without asking the kernel who holds it. The admission that
//! reaches the share first identifies every connection still pending (in
//! a batch, outside the lock), so from then on the per-peer counts are
//! exact.
//!
//! A request starting or ending on a connection touches only that
//! connection's counters (atomics), never the pool's lock: the lock is
//! taken when a connection opens or closes, and to ask whether a peer is
//! over its fair share while the pool is full.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
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
    /// A connection not identified yet (connection `id`): while fewer
    /// connections are open than a peer's share, no decision depends on
    /// who holds them, so none is looked up; each counts as its own peer.
    Pending(u64),
}

/// Finds who a connection is accounted to (a `sock_diag` round trip; the
/// answer is kept): called when a decision first needs it, outside the
/// pool's lock.
pub(crate) type Identify = Arc<dyn Fn() -> PeerKey + Send + Sync>;

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
    let mut held: HashMap<PeerKey, usize> = HashMap::new();
    for c in conns {
        *held.entry(c.peer).or_default() += 1;
    }
    if held.get(&peer).copied().unwrap_or(0) >= limits.per_peer {
        let own = conns.iter().filter(|c| c.busy == 0 && c.peer == peer);
        return match own.min_by_key(|c| (c.idle_since, c.id)) {
            Some(c) => Decision::Evict(c.id),
            None => Decision::Refuse(Refusal::PeerShare),
        };
    }
    if conns.len() < limits.max {
        return Decision::Admit;
    }
    // The idle connection to close: of the peer holding the most (among
    // those with one idle), the one idle longest.
    let victim = conns
        .iter()
        .filter(|c| c.busy == 0)
        .min_by_key(|c| (std::cmp::Reverse(held[&c.peer]), c.idle_since, c.id));
    match victim {
        Some(c) => Decision::Evict(c.id),
        None => Decision::Refuse(Refusal::Full),
    }
}

/// Whether a peer holding `held` connections of a full pool shared by
/// `peers` peers holds more than its fair share of `max`.
pub(crate) fn over_fair_share(held: usize, peers: usize, max: usize) -> bool {
    held.saturating_mul(peers) > max
}

// === impl Pool ===

/// The open connections of one listener.
#[derive(Debug)]
pub(crate) struct Pool {
    limits: PoolLimits,
    /// What `Activity::idle_since` counts from.
    epoch: Instant,
    state: Mutex<Connections>,
    /// Open connections (read without the lock on every request).
    open: AtomicUsize,
    next_id: AtomicU64,
}

#[derive(Debug, Default)]
struct Connections {
    by_id: HashMap<u64, Entry>,
    /// Connections held per peer.
    held: HashMap<PeerKey, usize>,
}

struct Entry {
    peer: PeerKey,
    identify: Identify,
    activity: Arc<Activity>,
    evict: CancellationToken,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry").field("peer", &self.peer).finish()
    }
}

/// A connection's requests, updated by its own task without the pool's
/// lock.
#[derive(Debug, Default)]
struct Activity {
    /// Requests in progress.
    busy: AtomicU32,
    /// Since when nothing has been in progress, in nanoseconds after the
    /// pool's epoch.
    idle_since: AtomicU64,
}

impl Pool {
    pub(crate) fn new(limits: PoolLimits) -> Arc<Self> {
        Arc::new(Pool {
            limits,
            epoch: Instant::now(),
            state: Mutex::new(Connections::default()),
            open: AtomicUsize::new(0),
            next_id: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connections> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn since_epoch(&self, at: Instant) -> u64 {
        let nanos = at.saturating_duration_since(self.epoch).as_nanos();
        u64::try_from(nanos).unwrap_or(u64::MAX)
    }

    /// Admits a connection (closing an idle one if needed), or says why
    /// not. `identify` is called only once the pool holds a peer's share.
    pub(crate) fn admit(
        self: &Arc<Self>,
        identify: Identify,
        now: Instant,
    ) -> Result<Admitted, Refusal> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut key = None;
        // Bounded: each round identifies the connections pending at its
        // start; more can only come from admissions racing this one.
        for _round in 0..4 {
            let pending = {
                let mut conns = self.lock();
                // With this one, the pool would hold a peer's share.
                let shares_matter = conns.by_id.len() + 1 >= self.limits.per_peer;
                let pending = if shares_matter {
                    pending(&conns)
                } else {
                    Vec::new()
                };
                match key {
                    _ if !shares_matter => {
                        let key = key.unwrap_or(PeerKey::Pending(id));
                        let new = Newcomer { id, identify, now };
                        return Ok(self.insert(&mut conns, key, new));
                    }
                    Some(key) if pending.is_empty() => {
                        let new = Newcomer { id, identify, now };
                        return self.decide_and_insert(&mut conns, key, new);
                    }
                    _ => pending,
                }
            };
            // Outside the lock: a kernel round trip each.
            key.get_or_insert_with(|| identify());
            let keys: Vec<(u64, PeerKey)> =
                pending.into_iter().map(|(id, f)| (id, f())).collect();
            let mut conns = self.lock();
            for (id, key) in keys {
                self.rekey(&mut conns, id, key);
            }
        }
        let key = key.unwrap_or_else(|| identify());
        let mut conns = self.lock();
        self.decide_and_insert(&mut conns, key, Newcomer { id, identify, now })
    }

    /// Admits `new` from `peer` by [`decide`]'s rule.
    fn decide_and_insert(
        self: &Arc<Self>,
        conns: &mut Connections,
        peer: PeerKey,
        new: Newcomer,
    ) -> Result<Admitted, Refusal> {
        let states: Vec<ConnState> = conns
            .by_id
            .iter()
            .map(|(id, e)| self.conn_state(*id, e))
            .collect();
        match decide(&states, peer, self.limits) {
            Decision::Refuse(why) => return Err(why),
            Decision::Evict(victim) => {
                if let Some(victim) = self.remove(conns, victim) {
                    victim.evict.cancel();
                }
            }
            Decision::Admit => {}
        }
        Ok(self.insert(conns, peer, new))
    }

    /// Adds `new`, accounted to `peer`.
    fn insert(
        self: &Arc<Self>,
        conns: &mut Connections,
        peer: PeerKey,
        new: Newcomer,
    ) -> Admitted {
        let Newcomer { id, identify, now } = new;
        let activity = Arc::new(Activity::default());
        activity
            .idle_since
            .store(self.since_epoch(now), Ordering::Relaxed);
        let evict = CancellationToken::new();
        let entry = Entry {
            peer,
            identify,
            activity: activity.clone(),
            evict: evict.clone(),
        };
        conns.by_id.insert(id, entry);
        *conns.held.entry(peer).or_default() += 1;
        self.open.store(conns.by_id.len(), Ordering::Relaxed);
        Admitted {
            pool: self.clone(),
            id,
            evict,
            activity,
        }
    }

    /// Accounts connection `id`, pending until now, to `peer`.
    fn rekey(&self, conns: &mut Connections, id: u64, peer: PeerKey) {
        let Some(entry) = conns.by_id.get_mut(&id) else {
            return;
        };
        let old = std::mem::replace(&mut entry.peer, peer);
        conns.held.remove(&old);
        *conns.held.entry(peer).or_default() += 1;
    }

    fn conn_state(&self, id: u64, e: &Entry) -> ConnState {
        // `busy` first: a request that just ended stored its time before
        // lowering `busy`, so seeing 0 means the time read next is its.
        let busy = e.activity.busy.load(Ordering::Acquire);
        let idle_nanos = e.activity.idle_since.load(Ordering::Acquire);
        ConnState {
            id,
            peer: e.peer,
            busy,
            idle_since: self.epoch + std::time::Duration::from_nanos(idle_nanos),
        }
    }

    fn remove(&self, conns: &mut Connections, id: u64) -> Option<Entry> {
        let entry = conns.by_id.remove(&id)?;
        if let Some(held) = conns.held.get_mut(&entry.peer) {
            *held -= 1;
            if *held == 0 {
                conns.held.remove(&entry.peer);
            }
        }
        self.open.store(conns.by_id.len(), Ordering::Relaxed);
        Some(entry)
    }

    /// Whether the pool is full and `peer` holds more than its fair share
    /// of it: the one case where a peer's request rate is limited.
    #[cfg(test)]
    pub(crate) fn contended_by(&self, peer: PeerKey) -> bool {
        self.open.load(Ordering::Relaxed) >= self.limits.max
            && self.contended_locked(&self.lock(), peer)
    }

    fn contended_locked(&self, conns: &Connections, peer: PeerKey) -> bool {
        let held = conns.held.get(&peer).copied().unwrap_or(0);
        over_fair_share(held, conns.held.len(), self.limits.max)
    }

    /// Whether a quarter of the cap is open: from then on an answered
    /// connection gives its HTTP buffers back at once (a thousand idle
    /// connections would otherwise hold 16 MiB of them), and below it no
    /// more than a quarter of the cap's worth is ever held.
    pub(crate) fn crowded(&self) -> bool {
        self.open.load(Ordering::Relaxed).saturating_mul(4) >= self.limits.max
    }

    /// Open connections.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().by_id.len()
    }
}

/// A connection being admitted.
struct Newcomer {
    id: u64,
    identify: Identify,
    now: Instant,
}

/// The connections still pending identification, with how to identify
/// each.
fn pending(conns: &Connections) -> Vec<(u64, Identify)> {
    conns
        .by_id
        .iter()
        .filter(|(_, e)| matches!(e.peer, PeerKey::Pending(_)))
        .map(|(id, e)| (*id, e.identify.clone()))
        .collect()
}

/// An admitted connection; leaves the pool when dropped.
#[derive(Debug)]
pub(crate) struct Admitted {
    pool: Arc<Pool>,
    id: u64,
    evict: CancellationToken,
    activity: Arc<Activity>,
}

impl Admitted {
    /// Cancelled when the pool closes this connection to admit another.
    pub(crate) fn evicted(&self) -> &CancellationToken {
        &self.evict
    }

    /// Marks a request in progress until the returned guard is dropped.
    pub(crate) fn request(self: &Arc<Self>) -> InProgress {
        self.activity.busy.fetch_add(1, Ordering::AcqRel);
        InProgress(self.clone())
    }

    /// Whether the pool is crowded (see [`Pool::crowded`]).
    pub(crate) fn crowded(&self) -> bool {
        self.pool.crowded()
    }

    /// Whether this connection's peer is over its share of a full pool
    /// (a full pool has identified every connection: see [`Pool::admit`]).
    pub(crate) fn contended(&self) -> bool {
        let pool = &self.pool;
        if pool.open.load(Ordering::Relaxed) < pool.limits.max {
            return false;
        }
        let conns = pool.lock();
        let Some(entry) = conns.by_id.get(&self.id) else {
            return false;
        };
        pool.contended_locked(&conns, entry.peer)
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut conns = self.pool.lock();
        self.pool.remove(&mut conns, self.id);
    }
}

/// A request in progress on a connection.
#[derive(Debug)]
pub(crate) struct InProgress(Arc<Admitted>);

impl Drop for InProgress {
    fn drop(&mut self) {
        let conn = &self.0;
        let now = conn.pool.since_epoch(Instant::now());
        // The time first: a pool that sees the connection idle reads it.
        conn.activity.idle_since.store(now, Ordering::Release);
        conn.activity.busy.fetch_sub(1, Ordering::AcqRel);
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

    fn who(peer: PeerKey) -> Identify {
        Arc::new(move || peer)
    }

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

    #[test]
    fn at_the_cap_the_peer_holding_the_most_gives_up_its_longest_idle() {
        // B's connection idles longest, but A holds more.
        let conns = [
            conn(1, A, 0, 10),
            conn(2, A, 0, 20),
            conn(3, A, 1, 0),
            conn(4, B, 0, 90),
        ];
        let limits = PoolLimits {
            max: 4,
            per_peer: 4,
        };
        assert_eq!(decide(&conns, PeerKey::Uid(7), limits), Decision::Evict(2));
        // With every one of A's connections busy, B's idle one goes.
        let busy_a = [
            conn(1, A, 1, 0),
            conn(2, A, 1, 0),
            conn(3, A, 1, 0),
            conn(4, B, 0, 90),
        ];
        assert_eq!(decide(&busy_a, PeerKey::Uid(7), limits), Decision::Evict(4));
    }

    #[test]
    fn a_peer_is_over_its_fair_share_only_past_max_over_peers() {
        assert!(
            !over_fair_share(4, 1, 4),
            "alone, the whole pool is its share"
        );
        assert!(!over_fair_share(2, 2, 4));
        assert!(over_fair_share(3, 2, 4));
        assert!(!over_fair_share(1, 2, 4));
        assert!(over_fair_share(2, 3, 4));
        assert!(!over_fair_share(usize::MAX, 0, 4));
    }

    #[tokio::test]
    async fn only_a_full_pool_is_contended_and_only_by_a_peer_over_its_share() {
        let pool = Pool::new(PoolLimits {
            max: 4,
            per_peer: 4,
        });
        let now = Instant::now();
        let a: Vec<_> = (0..3).map(|_| pool.admit(who(A), now).unwrap()).collect();
        assert!(!pool.contended_by(A), "not full");
        let b = pool.admit(who(B), now).unwrap();
        assert!(
            pool.contended_by(A),
            "full, and A holds 3 of 4 with B there"
        );
        assert!(!pool.contended_by(B));
        drop(b);
        assert!(!pool.contended_by(A));
        drop(a);
        assert_eq!(pool.len(), 0);
    }

    #[tokio::test]
    async fn admitting_evicts_the_victim_and_counts_requests() {
        let pool = Pool::new(PoolLimits {
            max: 2,
            per_peer: 2,
        });
        let now = Instant::now();
        let first = Arc::new(pool.admit(who(A), now).unwrap());
        let second = Arc::new(pool.admit(who(B), now + Duration::from_secs(1)).unwrap());
        let busy = second.request();
        let third = pool
            .admit(who(PeerKey::Uid(7)), now + Duration::from_secs(2))
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

    #[tokio::test]
    async fn connections_are_identified_only_once_the_pool_holds_a_peers_share() {
        use std::sync::atomic::AtomicUsize;
        let pool = Pool::new(PoolLimits {
            max: 4,
            per_peer: 3,
        });
        let asked = Arc::new(AtomicUsize::new(0));
        let counted = |peer: PeerKey| -> Identify {
            let asked = asked.clone();
            Arc::new(move || {
                asked.fetch_add(1, Ordering::Relaxed);
                peer
            })
        };
        let now = Instant::now();
        let first = pool.admit(counted(A), now).unwrap();
        let second = pool.admit(counted(A), now).unwrap();
        assert_eq!(asked.load(Ordering::Relaxed), 0, "no decision needed them");
        // The third reaches A's share: it and both pending ones are looked up.
        let third = pool.admit(counted(A), now).unwrap();
        assert_eq!(asked.load(Ordering::Relaxed), 3);
        assert_eq!(pool.lock().held.get(&A), Some(&3));
        // So A's fourth recycles its own idle connection...
        let fourth = pool.admit(counted(A), now).unwrap();
        assert!(first.evicted().is_cancelled());
        assert_eq!(asked.load(Ordering::Relaxed), 4, "each looked up once");
        // ... and B still gets in.
        let b = pool.admit(counted(B), now).unwrap();
        assert!(!b.evicted().is_cancelled());
        drop((first, second, third, fourth, b));
        assert_eq!(pool.len(), 0);
        assert!(pool.lock().held.is_empty());
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
        let oldest = Arc::new(pool.admit(who(A), t0).unwrap());
        let newer = Arc::new(pool.admit(who(B), t0 + Duration::from_secs(1)).unwrap());
        // Two requests at once on the connection idle longest; one ends.
        let first_request = oldest.request();
        let second_request = oldest.request();
        drop(first_request);
        let third = Arc::new(
            pool.admit(who(PeerKey::Uid(7)), t0 + Duration::from_secs(2))
                .unwrap(),
        );
        assert!(!oldest.evicted().is_cancelled(), "a request is in progress");
        assert!(newer.evicted().is_cancelled(), "the idle one made room");
        let on_third = third.request();
        drop(second_request);
        let fourth = pool.admit(who(PeerKey::Uid(8)), t0 + Duration::from_secs(3));
        assert!(
            fourth.is_ok(),
            "the connection whose requests ended makes room"
        );
        assert!(oldest.evicted().is_cancelled());
        assert!(!third.evicted().is_cancelled());
        drop(on_third);
    }
}
