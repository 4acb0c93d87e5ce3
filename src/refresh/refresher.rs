//! The one task per role that calls STS, and the only writer of its role's
//! snapshot.
//!
//! Because only this task fetches, concurrent requests share one refresh by
//! construction. Everyone else who wants the role to act sends it a
//! [`Request`] through the slot (a poke, a forced refresh, an MFA code) and
//! this task applies it. It sleeps on tokio timers, which stop during a laptop
//! suspend, so it never sleeps more than a minute ([`DEFAULT_CLOCK_CHECK`]) at a time and
//! re-reads the wall clock on every wake; a credentials request also pokes
//! it when the wall clock says a refresh is overdue.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use rand::Rng;
use tokio_util::sync::CancellationToken;

use super::activation::Activator;
use super::fetch::{FetchError, Fetcher};
use super::schedule::{self, SERVE_MARGIN};
use super::slot::{Request, RoleSlot, SlotWriter};
use super::store::{Failure, Served, Snapshot};
use super::streak::{self, Line, Streak};
use crate::clock::SharedClock;
use crate::metrics::Metrics;
use crate::sts::Issued;

/// Longest the task sleeps before looking at the wall clock again.
pub(crate) const DEFAULT_CLOCK_CHECK: Duration = Duration::from_secs(60);

/// Keeps one role's slot fresh until cancelled.
pub(crate) struct Refresher {
    /// The slot's one writer: publishing is this task's alone.
    pub(crate) writer: SlotWriter,
    pub(crate) fetcher: Fetcher,
    pub(crate) clock: SharedClock,
    pub(crate) shutdown: CancellationToken,
    /// Longest sleep between looks at the wall clock.
    pub(crate) clock_check: Duration,
    /// A fixed jitter draw (tests); `None` draws a random one each time.
    pub(crate) jitter: Option<f64>,
    pub(crate) metrics: Arc<Metrics>,
    /// An on-demand role's: when it parks, and whom to tell.
    pub(crate) parking: Option<Parking>,
}

/// How an on-demand role stops by itself: once nobody took its
/// credentials for `idle_after`, it makes no more calls (no STS, SSO,
/// helper or MFA request), drops its credentials and tells the daemon.
pub(crate) struct Parking {
    pub(crate) idle_after: Duration,
    pub(crate) activator: Activator,
}

/// How one refresh ended, for the loop that runs them.
enum Ended {
    /// Shut down while the fetch was under way; the task ends.
    ShutDown,
    /// The fetch succeeded: no failures to remember.
    Refreshed,
    /// The fetch failed: the run of failures so far, this one included.
    Failed(Streak),
}

/// A failed refresh as its log line tells it.
struct FailedRefresh<'a> {
    error: &'a FetchError,
    /// When the next try is.
    retry_in: TimeDelta,
    /// Until when the last credentials are served, if there are any.
    serving_until: Option<DateTime<Utc>>,
}

impl Refresher {
    pub(crate) async fn run(mut self) {
        // The run of failures the last refreshes made, if the last failed.
        let mut failures: Option<Streak> = None;
        // Someone asked for a fetch now, whatever the schedule says.
        let mut forced = false;
        // The source role's credentials (their fetch time) that the last
        // fetch could use, for a role chained from another.
        let mut source_seen = None;
        // The first fetch is due at once.
        self.writer.set_next_action(self.clock.now());
        loop {
            let now = self.clock.now();
            if self.idle(now) {
                return self.park();
            }
            let due = self.slot().next_action().unwrap_or(now);
            if std::mem::take(&mut forced) || now >= due {
                source_seen = self.source_stamp();
                failures = match self.refresh_once(failures.take(), &mut forced).await {
                    Ended::ShutDown => return,
                    Ended::Refreshed => None,
                    Ended::Failed(streak) => Some(streak),
                };
                continue;
            }
            let sleep = (due - now)
                .to_std()
                .unwrap_or_default()
                .min(self.clock_check);
            // A failing role retries as soon as its source role has new
            // credentials, not when its own backoff ends.
            let source = failures.as_ref().and(self.source_slot());
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                request = self.writer.next_request() => forced |= self.apply(request),
                _ = fresh_credentials(source.as_deref(), source_seen, &self.clock),
                    if source.is_some() =>
                {
                    tracing::info!(
                        role = %self.slot().name(),
                        source_role = %self.fetcher.role.depends_on().unwrap_or_default(),
                        "source role has new credentials: retrying now"
                    );
                    self.writer.set_next_action(self.clock.now());
                }
                _ = self.shutdown.cancelled() => return,
            }
        }
    }

    fn slot(&self) -> &Arc<RoleSlot> {
        self.writer.slot()
    }

    /// Whether this is an on-demand role nobody used for its idle time.
    fn idle(&self, now: DateTime<Utc>) -> bool {
        self.parking
            .as_ref()
            .is_some_and(|p| schedule::idle(self.slot().last_used(), now, p.idle_after))
    }

    /// Drops the credentials and tells the daemon, which forgets the role;
    /// the task ends.
    fn park(&self) {
        let Some(parking) = &self.parking else {
            return;
        };
        tracing::info!(
            role = %self.slot().name(),
            "parked: no client took its credentials for {}; the next use starts it again",
            crate::clock::human(parking.idle_after)
        );
        self.writer.publish(Snapshot::default());
        self.writer.mark_parked();
        parking.activator.parked(self.slot().clone());
    }

    /// Applies a request sent to the slot; true if it asks for a fetch now.
    /// A poke asks for nothing more than the look at the clock that
    /// follows every request.
    fn apply(&self, request: Request) -> bool {
        match request {
            Request::Poke => false,
            Request::Refresh => true,
            Request::MfaCode { code, at } => {
                self.fetcher.mfa.hand_in(code, at);
                false
            }
        }
    }

    /// The slot of the role this one is chained from, as it is now.
    /// The jitter draw for one schedule decision.
    fn jitter(&self) -> f64 {
        self.jitter.unwrap_or_else(random_jitter)
    }

    fn source_slot(&self) -> Option<Arc<RoleSlot>> {
        let name = self.fetcher.role.depends_on()?;
        self.fetcher.ctx.roles.get(name)
    }

    /// When the source role's usable credentials were fetched, if any.
    fn source_stamp(&self) -> Option<DateTime<Utc>> {
        let slot = self.source_slot()?;
        let snap = slot.load();
        snap.usable(self.clock.now()).map(|s| s.last_updated)
    }

    /// One fetch and publish, ending or extending the run of `failures`.
    /// A refresh asked for meanwhile sets `forced`.
    async fn refresh_once(
        &mut self,
        failures: Option<Streak>,
        forced: &mut bool,
    ) -> Ended {
        let attempt = self.writer.begin_attempt();
        self.writer.update(|s| s.in_flight = true);
        self.metrics.refresh_attempted(self.slot().name());
        let started = std::time::Instant::now();
        let Some(result) = self.fetch(forced).await else {
            return Ended::ShutDown;
        };
        let now = self.clock.now();
        self.metrics
            .refresh_took(self.slot().name(), started.elapsed().as_secs_f64());
        let result = result.and_then(|issued| {
            Served::render(&issued.credentials, issued.assumed_role_arn, now)
                .ok_or(FetchError::UnservableAnswer)
        });
        match result {
            Ok(served) => {
                if let Some(line) = streak::recovered(failures, now) {
                    self.log_recovered(&line);
                }
                self.publish_success(served, attempt, now, started.elapsed());
                Ended::Refreshed
            }
            Err(e) => {
                self.metrics.refresh_failed(self.slot().name(), e.code());
                Ended::Failed(self.publish_failure(&e, attempt, now, failures))
            }
        }
    }

    /// Runs one fetch. Meanwhile it applies requests (a code for the fetch
    /// waiting for one) and tells readers whenever the fetch starts or
    /// stops waiting for a code. `None` when shut down.
    async fn fetch(&mut self, forced: &mut bool) -> Option<Result<Issued, FetchError>> {
        let mut desk = self.fetcher.mfa.changes();
        // Boxed: a fetch (every flow, chains, SSO, helpers) is a large
        // future that exists only while it runs; inline, every role's task
        // would carry its size all the time.
        let mut fetch = Box::pin(self.fetcher.fetch());
        // One timer for the whole fetch: requests arriving meanwhile must
        // not put off the idle check of a fetch waiting for a code.
        let mut idle_check = tokio::time::interval(self.clock_check);
        idle_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        idle_check.reset();
        loop {
            tokio::select! {
                result = &mut fetch => return Some(result),
                request = self.writer.next_request() => *forced |= self.apply(request),
                () = desk.next() => show_waiting(&self.writer, self.fetcher.mfa.waiting()),
                // A fetch waiting for a code nobody gives stops asking too.
                _ = idle_check.tick(), if self.parking.is_some() => {
                    if self.idle(self.clock.now()) {
                        self.park();
                        return None;
                    }
                }
                _ = self.shutdown.cancelled() => return None,
            }
        }
    }

    fn publish_success(
        &self,
        served: Served,
        attempt: u64,
        now: DateTime<Utc>,
        took: Duration,
    ) {
        let next = schedule::refresh_at(now, served.expiration, self.jitter());
        tracing::info!(
            role = %self.slot().name(),
            access_key_id = %served.access_key_id,
            expiration = %served.expiration,
            next_refresh = %next,
            took_ms = took.as_millis() as u64,
            "fetched credentials"
        );
        self.writer.set_next_action(next);
        self.writer.publish(Snapshot {
            served: Some(Arc::new(served)),
            failure: None,
            in_flight: false,
            waiting_for: None,
            attempt,
        });
    }

    /// Schedules the retry first, so a reader woken by the publish sees
    /// that nothing is overdue and answers at once.
    fn publish_failure(
        &self,
        e: &FetchError,
        attempt: u64,
        now: DateTime<Utc>,
        failures: Option<Streak>,
    ) -> Streak {
        let snap = self.slot().load_full();
        let serve_until = snap.served.as_ref().map(|s| s.expiration - SERVE_MARGIN);
        let retries = failures.as_ref().map_or(0, |r| r.failures);
        let delay =
            schedule::backoff(now, retries, e.retry(), self.jitter(), serve_until);
        let usable = snap.usable(now).is_some();
        let (failures, line) = streak::failed(failures, e.code(), usable, now);
        let failed = FailedRefresh {
            error: e,
            retry_in: delay,
            serving_until: serve_until,
        };
        self.log_failure(&line, &failed);
        self.writer.set_next_action(now + delay);
        let failure = Failure {
            code: e.code().to_string(),
            message: e.to_string(),
            at: now,
        };
        self.writer.update(|s| {
            s.in_flight = false;
            // A fetch that took a code has stopped waiting for one.
            s.waiting_for = None;
            s.failure = Some(failure);
            s.attempt = attempt;
        });
        failures
    }

    /// Logs a refresh that succeeded after failures, if `line` says to.
    fn log_recovered(&self, line: &Line) {
        if let Line::Recovered {
            failures,
            over,
            outage,
        } = line
        {
            let served = if *outage {
                "; serving credentials again"
            } else {
                ""
            };
            tracing::info!(
                role = %self.slot().name(),
                "refresh recovered after {failures} failure(s) in {}{served}",
                human(*over)
            );
        }
    }

    /// Logs a failed refresh as `line` says, with its error, when the next
    /// try is, and until when the last credentials are served.
    fn log_failure(&self, line: &Line, failed: &FailedRefresh<'_>) {
        let role = self.slot().name();
        let e = failed.error;
        let retry_in = crate::clock::human(round_to_ms(failed.retry_in));
        let serve_until = failed.serving_until;
        let code = e.code();
        match line {
            Line::Failed => tracing::warn!(
                role = %role, error = %e, code = %code, retry_in = %retry_in,
                serving_until = %serve_until.map(|t| t.to_rfc3339()).unwrap_or_default(),
                "refresh failed; still serving the last credentials"
            ),
            Line::OutageBegins => tracing::error!(
                role = %role, error = %e, code = %code, retry_in = %retry_in,
                "refresh failed and no usable credentials are left: requests for this \
                 role get 503 until a refresh succeeds (`imdsd refresh {role}` retries now)"
            ),
            Line::Changed { repeats } => tracing::warn!(
                role = %role, error = %e, code = %code, retry_in = %retry_in,
                "refresh failed with a different error (the last one happened {repeats} time(s))"
            ),
            Line::StillFailing { failures, over } => tracing::warn!(
                role = %role, error = %e, code = %code, retry_in = %retry_in,
                "refresh still failing: {failures} failures in {}", human(*over)
            ),
            Line::Repeated | Line::Recovered { .. } => tracing::debug!(
                role = %role, error = %e, code = %code, retry_in = %retry_in, "refresh failed again"
            ),
        }
    }
}

/// Tells readers what the fetch waits for (an MFA code), or that it is
/// fetching again, if that changed.
fn show_waiting(writer: &SlotWriter, waiting: Option<String>) {
    if writer.slot().load().waiting_for == waiting {
        return;
    }
    writer.update(|s| {
        s.in_flight = waiting.is_none();
        s.waiting_for = waiting;
    });
}

/// Resolves once `source` serves credentials other than those fetched at
/// `seen` (never, without a source).
async fn fresh_credentials(
    source: Option<&RoleSlot>,
    seen: Option<DateTime<Utc>>,
    clock: &SharedClock,
) {
    match source {
        Some(slot) => slot.fresh_credentials(seen, || clock.now()).await,
        None => std::future::pending().await,
    }
}

/// A duration as people read it, to the second.
fn human(d: TimeDelta) -> String {
    let secs = d.num_seconds().max(0) as u64;
    crate::clock::human(Duration::from_secs(secs))
}

fn round_to_ms(d: TimeDelta) -> Duration {
    Duration::from_millis(d.num_milliseconds().max(0) as u64)
}

fn random_jitter() -> f64 {
    rand::rng().random::<f64>()
}
