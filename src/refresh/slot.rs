//! One role's slot: the snapshot its readers load, the requests anyone can
//! send its refresher, and the one writer ([`SlotWriter`]) that publishes.
//!
//! A slot has exactly one writer, handed out with the slot and owned by the
//! role's refresher task. Everyone else (the MFA intake, `imdsd refresh`,
//! a request that found the role overdue, the profile watch) sends the
//! refresher a [`Request`] and the refresher applies it, so a snapshot is
//! only ever changed in one place. Readers that wait for a publish all wait
//! the same way: [`RoleSlot::wait_until`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, watch};

use super::store::{Failure, Served, Snapshot};
use crate::clock::SharedClock;
use crate::config::{MfaIntake, RoleConfig};
use crate::secret::Secret;

/// One role's slot.
#[derive(Debug)]
pub struct RoleSlot {
    name: String,
    snapshot: ArcSwap<Snapshot>,
    /// Bumped after every publish; what waiting readers watch.
    published: watch::Sender<()>,
    /// To the refresher (its [`SlotWriter`] receives).
    requests: mpsc::UnboundedSender<Request>,
    /// A poke is queued and not yet received: later pokes add nothing, so a
    /// burst of overdue requests queues one.
    poke_queued: AtomicBool,
    /// When the refresher next means to act (unix milliseconds); lets a request
    /// see in one atomic load that a timer slept through a suspend.
    next_action: AtomicI64,
    /// Fetches started so far.
    attempts: AtomicU64,
    /// When a client last took its credentials, or it was activated (unix
    /// milliseconds; `i64::MIN`: never). An on-demand role parks after
    /// `[profiles] idle_after` without one.
    last_used: AtomicI64,
    /// Its refresher parked it and ended: nothing refreshes it any more.
    parked: AtomicBool,
    /// Where the role's MFA codes come from.
    mfa_intake: MfaIntake,
    /// Whether it reads AWS profiles (and so retries when they change).
    uses_profiles: bool,
}

/// What someone asks a role's refresher to do. The refresher applies
/// requests in the order they were sent.
#[derive(Debug)]
pub(crate) enum Request {
    /// Look at the wall clock now (a timer may have slept through a
    /// suspend).
    Poke,
    /// Fetch now, whatever the schedule or backoff says (after the fetch
    /// under way, if any, ends).
    Refresh,
    /// A code handed in with `imdsd mfa`, for the next fetch that needs one.
    /// `Secret`'s `Debug` is redacted, so this never prints the code.
    MfaCode {
        code: Secret,
        /// When it was handed in: TOTP codes go stale.
        at: tokio::time::Instant,
    },
}

/// How a refresh asked for with [`RoleSlot::refresh_now`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Refreshed {
        expiration: DateTime<Utc>,
    },
    Failed(Failure),
    /// The fetch needs something first (an MFA code).
    Waiting(String),
    /// No outcome within the time allowed; the fetch goes on.
    StillRunning,
}

/// The refresher's end of a slot: the only way to publish a snapshot,
/// number a fetch or schedule the next action, and where the slot's
/// [`Request`]s arrive. One per slot, made with it.
#[derive(Debug)]
pub(crate) struct SlotWriter {
    slot: Arc<RoleSlot>,
    requests: mpsc::UnboundedReceiver<Request>,
}

// === impl RoleSlot ===

impl RoleSlot {
    /// The slot of `role`, and its one writer.
    pub(crate) fn for_role(role: &RoleConfig) -> (Arc<Self>, SlotWriter) {
        Self::unstarted(role.name.clone(), role.mfa_intake(), role.uses_profiles())
    }

    /// A slot for a role that takes no MFA code and reads no profile, with
    /// no writer (tests publish with [`RoleSlot::publish`]).
    #[cfg(any(test, fuzzing))]
    pub(crate) fn new(name: impl Into<String>) -> Arc<Self> {
        Self::unstarted(name.into(), MfaIntake::Never, false).0
    }

    /// Like [`RoleSlot::new`], with its writer.
    #[cfg(test)]
    pub(crate) fn with_writer(name: impl Into<String>) -> (Arc<Self>, SlotWriter) {
        Self::unstarted(name.into(), MfaIntake::Never, false)
    }

    fn unstarted(
        name: String,
        mfa_intake: MfaIntake,
        uses_profiles: bool,
    ) -> (Arc<Self>, SlotWriter) {
        let (tx, rx) = mpsc::unbounded_channel();
        let slot = Arc::new(RoleSlot {
            name,
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            published: watch::Sender::new(()),
            requests: tx,
            poke_queued: AtomicBool::new(false),
            next_action: AtomicI64::new(i64::MIN),
            attempts: AtomicU64::new(0),
            last_used: AtomicI64::new(i64::MIN),
            parked: AtomicBool::new(false),
            mfa_intake,
            uses_profiles,
        });
        let writer = SlotWriter {
            slot: slot.clone(),
            requests: rx,
        };
        (slot, writer)
    }

    pub(crate) fn mfa_intake(&self) -> MfaIntake {
        self.mfa_intake
    }

    pub(crate) fn uses_profiles(&self) -> bool {
        self.uses_profiles
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn load(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.snapshot.load()
    }

    pub fn load_full(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Replaces the snapshot and wakes waiting readers. Only the writer
    /// calls this outside tests and fuzzing.
    fn store(&self, snapshot: Snapshot) {
        self.snapshot.store(Arc::new(snapshot));
        self.published.send_replace(());
    }

    /// Publishes `snapshot` on a slot that has no refresher.
    #[cfg(any(test, fuzzing))]
    pub(crate) fn publish(&self, snapshot: Snapshot) {
        self.store(snapshot);
    }

    pub fn next_action(&self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_millis(self.next_action.load(Ordering::Relaxed))
    }

    /// Whether the refresher is overdue at `now` (its timer slept through a
    /// suspend, or it has not started).
    pub fn overdue(&self, now: DateTime<Utc>) -> bool {
        now.timestamp_millis() >= self.next_action.load(Ordering::Relaxed)
    }

    /// Records that credentials were taken (or the role activated) at
    /// `now`. Stores at most once a second: every credentials request
    /// calls this, and a shared cache line written on each would cost
    /// them all.
    pub(crate) fn note_use(&self, now: DateTime<Utc>) {
        let ms = now.timestamp_millis();
        if ms.saturating_sub(self.last_used.load(Ordering::Relaxed)) >= 1000 {
            self.last_used.fetch_max(ms, Ordering::Relaxed);
        }
    }

    /// When credentials were last taken (or the role activated), if ever.
    pub(crate) fn last_used(&self) -> Option<DateTime<Utc>> {
        match self.last_used.load(Ordering::Relaxed) {
            i64::MIN => None,
            ms => DateTime::from_timestamp_millis(ms),
        }
    }

    /// Whether its refresher parked it (and ended).
    pub fn is_parked(&self) -> bool {
        self.parked.load(Ordering::Acquire)
    }

    /// Sends the refresher `request`. A stopped refresher has dropped its
    /// writer; then there is no one left to ask and nothing to do.
    fn send(&self, request: Request) {
        let _ = self.requests.send(request);
    }

    /// Asks the refresher to look at the clock now.
    pub fn poke(&self) {
        if !self.poke_queued.swap(true, Ordering::Relaxed) {
            self.send(Request::Poke);
        }
    }

    /// Asks the refresher to fetch now, whatever its schedule or backoff
    /// says (after the fetch under way, if any, ends).
    pub(crate) fn force_refresh(&self) {
        self.send(Request::Refresh);
    }

    /// Hands in an MFA code for the next fetch that needs one.
    pub fn submit_mfa_code(&self, code: Secret) {
        self.send(Request::MfaCode {
            code,
            at: tokio::time::Instant::now(),
        });
    }
}

// Waiting for a publish: one primitive, four uses.
impl RoleSlot {
    /// Waits until `done` holds for the current snapshot, for at most
    /// `limit` (`None`: as long as it takes). True if it did. `done` sees
    /// every snapshot published meanwhile, or the newest of a burst.
    async fn wait_until(
        &self,
        limit: Option<Duration>,
        mut done: impl FnMut(&Arc<Snapshot>) -> bool,
    ) -> bool {
        // Subscribed before the first look, so a publish between that look
        // and the wait still wakes it.
        let mut published = self.published.subscribe();
        let wait = published.wait_for(|_| done(&self.load_full()));
        match limit {
            // The sender lives in this slot, so the wait cannot fail.
            None => wait.await.is_ok(),
            Some(limit) => matches!(tokio::time::timeout(limit, wait).await, Ok(Ok(_))),
        }
    }

    /// Fetches now and waits up to `limit` for the outcome of a fetch that
    /// started after this call (not one already under way, which may have
    /// read files that have changed since).
    pub(crate) async fn refresh_now(&self, limit: Duration) -> Outcome {
        let after = self.attempts.load(Ordering::Relaxed);
        self.force_refresh();
        self.outcome_after(after, limit).await
    }

    /// Waits up to `limit` for the outcome of the role's first fetch (a
    /// role just started: its first fetch is already a fresh one).
    pub(crate) async fn first_outcome(&self, limit: Duration) -> Outcome {
        self.outcome_after(0, limit).await
    }

    async fn outcome_after(&self, after: u64, limit: Duration) -> Outcome {
        let mut outcome = None;
        self.wait_until(Some(limit), |snap| {
            outcome = snap.outcome_after(after);
            outcome.is_some()
        })
        .await;
        outcome.unwrap_or(Outcome::StillRunning)
    }

    /// Waits until the first fetch has an outcome (credentials or an
    /// error), for at most `limit`. True if it did.
    pub(crate) async fn settled(&self, limit: Duration) -> bool {
        self.wait_until(Some(limit), |snap| {
            snap.served.is_some() || snap.failure.is_some() || snap.waiting_for.is_some()
        })
        .await
    }

    /// What a credentials request gets at `now`: the usable credentials,
    /// after a wait of at most `limit` for a refresh in flight or overdue
    /// (which it starts); else the snapshot that says why there are none.
    /// The request path of every endpoint.
    pub(crate) async fn servable(
        &self,
        clock: &SharedClock,
        now: DateTime<Utc>,
        limit: Duration,
    ) -> Result<Arc<Served>, Arc<Snapshot>> {
        // A timer that slept through a suspend: the request starts the
        // refresh.
        if self.overdue(now) {
            self.poke();
        }
        if let Some(served) = self.load().usable(now) {
            return Ok(served.clone());
        }
        let snap = self.wait_usable(|| clock.now(), limit).await;
        match snap.usable(clock.now()) {
            Some(served) => Ok(served.clone()),
            None => Err(snap),
        }
    }

    /// Resolves once the role serves usable credentials other than those
    /// fetched at `seen`.
    pub(crate) async fn fresh_credentials(
        &self,
        seen: Option<DateTime<Utc>>,
        now: impl Fn() -> DateTime<Utc>,
    ) {
        self.wait_until(None, |snap| {
            snap.usable(now())
                .is_some_and(|s| Some(s.last_updated) != seen)
        })
        .await;
    }

    /// Waits up to `limit` for usable credentials while a refresh is in
    /// flight or overdue. Returns the snapshot seen last.
    pub(crate) async fn wait_usable(
        &self,
        now: impl Fn() -> DateTime<Utc>,
        limit: Duration,
    ) -> Arc<Snapshot> {
        let mut seen = None;
        let done = self
            .wait_until(Some(limit), |snap| {
                let t = now();
                // A role waiting for an MFA code is not going to publish soon.
                let worth_waiting =
                    snap.waiting_for.is_none() && (snap.in_flight || self.overdue(t));
                seen = Some(snap.clone());
                snap.usable(t).is_some() || !worth_waiting
            })
            .await;
        match seen {
            Some(snap) if done => snap,
            _ => self.load_full(),
        }
    }
}

// === impl SlotWriter ===

impl SlotWriter {
    pub(crate) fn slot(&self) -> &Arc<RoleSlot> {
        &self.slot
    }

    /// Replaces the snapshot and wakes waiting readers.
    pub(crate) fn publish(&self, snapshot: Snapshot) {
        self.slot.store(snapshot);
    }

    /// Publishes a copy of the current snapshot changed by `f`.
    pub(crate) fn update(&self, f: impl FnOnce(&mut Snapshot)) {
        let mut next = Snapshot::clone(&self.slot.load());
        f(&mut next);
        self.publish(next);
    }

    /// Marks the slot parked: its refresher is ending.
    pub(crate) fn mark_parked(&self) {
        self.slot.parked.store(true, Ordering::Release);
    }

    pub(crate) fn set_next_action(&self, at: DateTime<Utc>) {
        self.slot
            .next_action
            .store(at.timestamp_millis(), Ordering::Relaxed);
    }

    /// Numbers a fetch that starts now.
    pub(crate) fn begin_attempt(&self) -> u64 {
        self.slot.attempts.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The next request sent to the slot. Cancel-safe: a request is never
    /// lost to a `select!` that picked another branch.
    pub(crate) async fn next_request(&mut self) -> Request {
        // The slot holds a sender for as long as this writer holds the
        // slot, so the channel never closes.
        let Some(request) = self.requests.recv().await else {
            return std::future::pending().await;
        };
        if matches!(request, Request::Poke) {
            self.slot.poke_queued.store(false, Ordering::Relaxed);
        }
        request
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::Credentials;

    #[tokio::test(start_paused = true)]
    async fn refresh_now_forces_a_fetch_and_reports_its_outcome() {
        let (slot, mut writer) = RoleSlot::with_writer("dev");
        writer.begin_attempt();
        let waiter = {
            let slot = slot.clone();
            tokio::spawn(async move { slot.refresh_now(Duration::from_secs(5)).await })
        };
        tokio::task::yield_now().await;
        assert!(
            matches!(writer.next_request().await, Request::Refresh),
            "the refresher is asked to fetch"
        );
        let failure = Failure {
            code: "ExpiredToken".into(),
            message: "expired".into(),
            at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        };
        // The outcome of the fetch that was under way does not count.
        writer.update(|s| {
            s.failure = Some(failure.clone());
            s.attempt = 1;
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        let second = writer.begin_attempt();
        writer.update(|s| s.attempt = second);
        assert_eq!(waiter.await.unwrap(), Outcome::Failed(failure));
        assert_eq!(
            slot.refresh_now(Duration::from_secs(1)).await,
            Outcome::StillRunning
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_pokes_queues_one_and_requests_keep_their_order() {
        let (slot, mut writer) = RoleSlot::with_writer("dev");
        for _ in 0..1000 {
            slot.poke();
        }
        slot.submit_mfa_code(Secret::new("123456"));
        slot.force_refresh();
        assert!(matches!(writer.next_request().await, Request::Poke));
        assert!(
            matches!(writer.next_request().await, Request::MfaCode { .. }),
            "one poke queued, then the code"
        );
        assert!(matches!(writer.next_request().await, Request::Refresh));
        // Received, a poke can be queued again.
        slot.poke();
        assert!(matches!(writer.next_request().await, Request::Poke));
    }

    #[tokio::test(start_paused = true)]
    async fn wait_usable_gives_up_after_its_limit_while_a_fetch_is_in_flight() {
        let (slot, writer) = RoleSlot::with_writer("dev");
        writer.set_next_action(DateTime::from_timestamp(1_900_000_000, 0).unwrap());
        writer.update(|s| s.in_flight = true);
        let now = || DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let started = tokio::time::Instant::now();
        let snap = slot.wait_usable(now, Duration::from_millis(400)).await;
        assert!(snap.in_flight);
        assert_eq!(started.elapsed(), Duration::from_millis(400));
        // Nothing in flight or overdue: no wait at all.
        writer.update(|s| s.in_flight = false);
        let started = tokio::time::Instant::now();
        slot.wait_usable(now, Duration::from_millis(400)).await;
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[test]
    fn debug_of_a_slot_never_shows_the_credentials() {
        let creds = Credentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: Secret::new("SECRETKEYVALUE"),
            session_token: Some(Secret::new("SESSIONTOKENVALUE")),
            expiration: DateTime::from_timestamp(1_900_000_000, 0),
        };
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let slot = RoleSlot::new("dev");
        slot.publish(Snapshot {
            served: Served::render(&creds, None, now).map(Arc::new),
            ..Default::default()
        });
        let printed = format!("{slot:?}");
        assert!(printed.contains("ASIAEXAMPLE"), "{printed}");
        assert!(
            !printed.contains("SECRETKEYVALUE") && !printed.contains("SESSIONTOKENVALUE"),
            "{printed}"
        );
    }
}
