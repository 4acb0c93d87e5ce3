//! The per-role credential slot: one writer (the refresher), many readers
//! (request handlers).
//!
//! Readers load an immutable [`Snapshot`] through `ArcSwap`: no lock, no
//! allocation, no waiting on STS. The refresher publishes a new snapshot and
//! wakes anyone waiting for one. The only reader that ever waits is a
//! credentials request that finds nothing usable while a refresh is in
//! flight, and it waits a bounded time (see `imds::endpoint`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use super::schedule::servable;
use crate::clock::SharedClock;
use crate::config::{MfaIntake, RoleConfig};
use crate::credentials::Credentials;
use crate::credentials::documents;
use crate::secret::Secret;

/// Credentials as served: the body is rendered once, here.
pub struct Served {
    /// The credentials themselves, for roles chained from this one.
    pub(crate) credentials: Credentials,
    pub(crate) access_key_id: String,
    pub(crate) expiration: DateTime<Utc>,
    pub(crate) last_updated: DateTime<Utc>,
    pub(crate) assumed_role_arn: Option<String>,
    /// The IMDS credentials document, wiped when the last copy is dropped.
    pub(crate) imds_body: Bytes,
    /// The container-credentials document, likewise.
    pub(crate) container_body: Bytes,
}

impl Served {
    /// Renders credentials for serving. `None` for credentials without an
    /// expiry or session token, which IMDS clients cannot use correctly.
    pub(crate) fn render(
        creds: &Credentials,
        assumed_role_arn: Option<String>,
        now: DateTime<Utc>,
    ) -> Option<Self> {
        let expiration = creds.expiration?;
        creds.session_token.as_ref().filter(|t| !t.is_empty())?;
        let account = assumed_role_arn.as_deref().and_then(documents::account_of);
        Some(Served {
            credentials: creds.clone(),
            access_key_id: creds.access_key_id.clone(),
            expiration,
            last_updated: now,
            imds_body: documents::imds_document(creds, expiration, now).into_bytes(),
            container_body: documents::container_document(creds, expiration, account)
                .into_bytes(),
            assumed_role_arn,
        })
    }
}

// The body holds the secret key and token: never print it.
impl std::fmt::Debug for Served {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Served")
            .field("access_key_id", &self.access_key_id)
            .field("expiration", &self.expiration)
            .field("last_updated", &self.last_updated)
            .field("assumed_role_arn", &self.assumed_role_arn)
            .field("imds_body", &crate::secret::REDACTED)
            .field("container_body", &crate::secret::REDACTED)
            .finish()
    }
}

/// Why the last refresh failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: String,
    pub message: String,
    pub at: DateTime<Utc>,
}

/// What a role looks like at one moment. Immutable once published.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    /// The newest good credentials, servable or not.
    pub served: Option<Arc<Served>>,
    /// The last refresh failed, and this is why (cleared on success).
    pub failure: Option<Failure>,
    /// A fetch from STS is under way.
    pub in_flight: bool,
    /// What the role is waiting for, if it cannot fetch yet (an MFA code).
    pub waiting_for: Option<String>,
    /// The fetch whose outcome this is (fetches are numbered from 1; 0:
    /// none has ended yet).
    pub attempt: u64,
}

impl Snapshot {
    /// The outcome this snapshot shows of a fetch numbered above `after`,
    /// if it shows one. A role waiting for an MFA code is waiting whatever
    /// fetch it is in.
    fn outcome_after(&self, after: u64) -> Option<Outcome> {
        if let Some(waiting) = &self.waiting_for {
            return Some(Outcome::Waiting(waiting.clone()));
        }
        if self.in_flight || self.attempt <= after {
            return None;
        }
        Some(match (&self.failure, &self.served) {
            (Some(failure), _) => Outcome::Failed(failure.clone()),
            (None, Some(served)) => Outcome::Refreshed {
                expiration: served.expiration,
            },
            (None, None) => return None,
        })
    }

    /// The credentials, if they may be served at `now`.
    pub(crate) fn usable(&self, now: DateTime<Utc>) -> Option<&Arc<Served>> {
        self.served.as_ref().filter(|s| servable(now, s.expiration))
    }

    /// Why role `role` has nothing to serve: the `Code` and `Message` of
    /// the 503 every endpoint answers with (docs/refresh.md lists them).
    pub(crate) fn unavailable(&self, role: &str) -> (String, String) {
        if let Some(waiting) = &self.waiting_for {
            return (
                "CredentialsPending".into(),
                format!("role `{role}`: {waiting}"),
            );
        }
        if let Some(failure) = &self.failure {
            let message =
                format!("imdsd could not refresh role `{role}`: {}", failure.message);
            return (failure.code.clone(), message);
        }
        if self.served.is_some() {
            let message = format!(
                "credentials for role `{role}` have expired and a refresh is under way"
            );
            return ("CredentialsExpired".into(), message);
        }
        let message = format!(
            "credentials for role `{role}` are being fetched from STS; try again shortly"
        );
        ("CredentialsUninitialized".into(), message)
    }
}

/// One role's slot.
#[derive(Debug)]
pub struct RoleSlot {
    name: String,
    snapshot: ArcSwap<Snapshot>,
    published: Notify,
    poke: Notify,
    /// An MFA code handed in with `imdsd mfa`, and when.
    mfa_code: std::sync::Mutex<Option<(Secret, tokio::time::Instant)>>,
    mfa_arrived: Notify,
    /// When the refresher next means to act (unix milliseconds); lets a request
    /// see in one atomic load that a timer slept through a suspend.
    next_action: AtomicI64,
    /// Fetches started so far.
    attempts: AtomicU64,
    /// Someone asked for a fetch now, whatever the schedule says.
    forced: AtomicBool,
    /// Where the role's MFA codes come from.
    mfa_intake: MfaIntake,
    /// Whether it reads AWS profiles (and so retries when they change).
    uses_profiles: bool,
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

impl RoleSlot {
    /// The slot of `role`.
    pub(crate) fn for_role(role: &RoleConfig) -> Arc<Self> {
        Arc::new(Self::unstarted(
            role.name.clone(),
            role.mfa_intake(),
            role.uses_profiles(),
        ))
    }

    /// A slot for a role that takes no MFA code and reads no profile.
    #[cfg(any(test, fuzzing))]
    pub(crate) fn new(name: impl Into<String>) -> Arc<Self> {
        Arc::new(Self::unstarted(name.into(), MfaIntake::Never, false))
    }

    fn unstarted(name: String, mfa_intake: MfaIntake, uses_profiles: bool) -> Self {
        RoleSlot {
            name,
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            published: Notify::new(),
            poke: Notify::new(),
            mfa_code: std::sync::Mutex::new(None),
            mfa_arrived: Notify::new(),
            next_action: AtomicI64::new(i64::MIN),
            attempts: AtomicU64::new(0),
            forced: AtomicBool::new(false),
            mfa_intake,
            uses_profiles,
        }
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

    /// Replaces the snapshot and wakes waiting readers. Refresher only.
    pub(crate) fn publish(&self, snapshot: Snapshot) {
        self.snapshot.store(Arc::new(snapshot));
        self.published.notify_waiters();
    }

    /// Publishes a copy of the current snapshot changed by `f`.
    pub(crate) fn update(&self, f: impl FnOnce(&mut Snapshot)) {
        let mut next = Snapshot::clone(&self.snapshot.load());
        f(&mut next);
        self.publish(next);
    }

    pub(crate) fn set_next_action(&self, at: DateTime<Utc>) {
        self.next_action
            .store(at.timestamp_millis(), Ordering::Relaxed);
    }

    pub fn next_action(&self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_millis(self.next_action.load(Ordering::Relaxed))
    }

    /// Whether the refresher is overdue at `now` (its timer slept through a
    /// suspend, or it has not started).
    pub fn overdue(&self, now: DateTime<Utc>) -> bool {
        now.timestamp_millis() >= self.next_action.load(Ordering::Relaxed)
    }

    /// Asks the refresher to look at the clock now.
    pub fn poke(&self) {
        self.poke.notify_one();
    }

    /// Resolves when someone pokes. Refresher only.
    pub(crate) async fn poked(&self) {
        self.poke.notified().await;
    }

    /// Numbers a fetch that starts now. Refresher only.
    pub(crate) fn begin_attempt(&self) -> u64 {
        self.attempts.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Asks the refresher to fetch now, whatever its schedule or backoff
    /// says (after the fetch under way, if any, ends).
    pub(crate) fn force_refresh(&self) {
        self.forced.store(true, Ordering::Relaxed);
        self.poke();
    }

    /// Whether a fetch was asked for, clearing the request. Refresher only.
    pub(crate) fn take_forced(&self) -> bool {
        self.forced.swap(false, Ordering::Relaxed)
    }

    /// Fetches now and waits up to `limit` for the outcome of a fetch that
    /// started after this call (not one already under way, which may have
    /// read files that have changed since).
    pub(crate) async fn refresh_now(&self, limit: Duration) -> Outcome {
        let after = self.attempts.load(Ordering::Relaxed);
        self.force_refresh();
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let published = self.published.notified();
            tokio::pin!(published);
            published.as_mut().enable();
            if let Some(outcome) = self.load().outcome_after(after) {
                return outcome;
            }
            if tokio::time::timeout_at(deadline, published).await.is_err() {
                return Outcome::StillRunning;
            }
        }
    }

    /// Hands in an MFA code for the next fetch that needs one.
    pub fn submit_mfa_code(&self, code: Secret) {
        *self.mfa_code.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((code, tokio::time::Instant::now()));
        self.mfa_arrived.notify_one();
    }

    /// Takes a handed-in code no older than `fresh`, waiting for one if
    /// there is none. TOTP codes go stale in a minute or two.
    pub(crate) async fn take_mfa_code(&self, fresh: Duration) -> Secret {
        loop {
            let arrived = self.mfa_arrived.notified();
            let taken = self
                .mfa_code
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            if let Some((code, at)) = taken
                && at.elapsed() <= fresh
            {
                return code;
            }
            arrived.await;
        }
    }

    /// Waits until the first fetch has an outcome (credentials or an
    /// error), for at most `limit`. True if it did.
    pub(crate) async fn settled(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let published = self.published.notified();
            tokio::pin!(published);
            published.as_mut().enable();
            let snap = self.load();
            if snap.served.is_some()
                || snap.failure.is_some()
                || snap.waiting_for.is_some()
            {
                return true;
            }
            if tokio::time::timeout_at(deadline, published).await.is_err() {
                return false;
            }
        }
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
        loop {
            let published = self.published.notified();
            tokio::pin!(published);
            published.as_mut().enable();
            let snap = self.load();
            if snap
                .usable(now())
                .is_some_and(|s| Some(s.last_updated) != seen)
            {
                return;
            }
            published.await;
        }
    }

    /// Waits up to `limit` for usable credentials while a refresh is in
    /// flight or overdue. Returns the snapshot seen last.
    pub(crate) async fn wait_usable(
        &self,
        now: impl Fn() -> DateTime<Utc>,
        limit: Duration,
    ) -> Arc<Snapshot> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let published = self.published.notified();
            tokio::pin!(published);
            published.as_mut().enable();
            let snap = self.load_full();
            let t = now();
            // A role waiting for an MFA code is not going to publish soon.
            let worth_waiting =
                snap.waiting_for.is_none() && (snap.in_flight || self.overdue(t));
            if snap.usable(t).is_some() || !worth_waiting {
                return snap;
            }
            if tokio::time::timeout_at(deadline, published).await.is_err() {
                return self.load_full();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailable_says_why_in_order_of_what_matters_most() {
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let failure = Failure {
            code: "AccessDenied".into(),
            message: "not allowed".into(),
            at,
        };
        let mut snap = Snapshot::default();
        assert_eq!(snap.unavailable("dev").0, "CredentialsUninitialized");
        snap.failure = Some(failure);
        assert_eq!(
            snap.unavailable("dev"),
            (
                "AccessDenied".to_string(),
                "imdsd could not refresh role `dev`: not allowed".to_string()
            )
        );
        snap.waiting_for = Some("waiting for an MFA code".into());
        assert_eq!(
            snap.unavailable("dev"),
            (
                "CredentialsPending".to_string(),
                "role `dev`: waiting for an MFA code".to_string()
            )
        );
    }

    #[test]
    fn a_refresh_waits_for_a_fetch_that_started_after_it() {
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let failure = Failure {
            code: "AccessDenied".into(),
            message: "not allowed".into(),
            at,
        };
        let mut snap = Snapshot {
            failure: Some(failure.clone()),
            attempt: 3,
            ..Default::default()
        };
        assert_eq!(snap.outcome_after(3), None, "an older fetch's outcome");
        assert_eq!(snap.outcome_after(2), Some(Outcome::Failed(failure)));
        snap.in_flight = true;
        assert_eq!(snap.outcome_after(2), None, "the next fetch is under way");
        snap.waiting_for = Some("waiting for an MFA code".into());
        assert_eq!(
            snap.outcome_after(9),
            Some(Outcome::Waiting("waiting for an MFA code".into()))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn refresh_now_forces_a_fetch_and_reports_its_outcome() {
        let slot = RoleSlot::new("dev");
        slot.begin_attempt();
        let waiter = {
            let slot = slot.clone();
            tokio::spawn(async move { slot.refresh_now(Duration::from_secs(5)).await })
        };
        tokio::task::yield_now().await;
        assert!(slot.take_forced(), "the refresher is asked to fetch");
        let failure = Failure {
            code: "ExpiredToken".into(),
            message: "expired".into(),
            at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        };
        // The outcome of the fetch that was under way does not count.
        slot.update(|s| {
            s.failure = Some(failure.clone());
            s.attempt = 1;
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        let second = slot.begin_attempt();
        slot.update(|s| s.attempt = second);
        assert_eq!(waiter.await.unwrap(), Outcome::Failed(failure));
        assert_eq!(
            slot.refresh_now(Duration::from_secs(1)).await,
            Outcome::StillRunning
        );
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
