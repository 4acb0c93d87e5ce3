//! The one task per role that calls STS.
//!
//! Because only this task fetches, concurrent requests share one refresh by
//! construction. It sleeps on tokio timers, which stop during a laptop
//! suspend, so it never sleeps more than a minute ([`DEFAULT_CLOCK_CHECK`]) at a time and
//! re-reads the wall clock on every wake; a credentials request also pokes
//! it when the wall clock says a refresh is overdue.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use rand::Rng;
use tokio_util::sync::CancellationToken;

use super::fetch::{FetchError, Fetcher};
use super::schedule::{self, SERVE_MARGIN};
use super::store::{Failure, RoleSlot, Served};
use super::streak::{self, Line, Streak};
use crate::clock::SharedClock;
use crate::metrics::Metrics;

/// Longest the task sleeps before looking at the wall clock again.
pub(crate) const DEFAULT_CLOCK_CHECK: Duration = Duration::from_secs(60);

/// Keeps one role's slot fresh until cancelled.
pub(crate) struct Refresher {
    pub(crate) slot: Arc<RoleSlot>,
    pub(crate) fetcher: Fetcher,
    pub(crate) clock: SharedClock,
    pub(crate) shutdown: CancellationToken,
    /// Longest sleep between looks at the wall clock.
    pub(crate) clock_check: Duration,
    /// A fixed jitter draw (tests); `None` draws a random one each time.
    pub(crate) jitter: Option<f64>,
    pub(crate) metrics: Arc<Metrics>,
}

impl Refresher {
    pub(crate) async fn run(self) {
        let mut run: Option<Streak> = None;
        // The source role's credentials (their fetch time) that the last
        // fetch could use, for a role chained from another.
        let mut source_seen = None;
        // The first fetch is due at once.
        self.slot.set_next_action(self.clock.now());
        loop {
            let now = self.clock.now();
            let due = self.slot.next_action().unwrap_or(now);
            if self.slot.take_forced() || now >= due {
                source_seen = self.source_stamp();
                match self.refresh_once(run.take()).await {
                    None => return,
                    Some(next) => run = next,
                }
                continue;
            }
            let sleep = (due - now)
                .to_std()
                .unwrap_or_default()
                .min(self.clock_check);
            // A failing role retries as soon as its source role has new
            // credentials, not when its own backoff ends.
            let source = run.as_ref().and(self.source_slot());
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = self.slot.poked() => {}
                _ = fresh_credentials(source.as_deref(), source_seen, &self.clock),
                    if source.is_some() =>
                {
                    tracing::info!(
                        role = %self.slot.name(),
                        source_role = %self.fetcher.role.depends_on().unwrap_or_default(),
                        "source role has new credentials: retrying now"
                    );
                    self.slot.set_next_action(self.clock.now());
                }
                _ = self.shutdown.cancelled() => return,
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
        self.fetcher.ctx.roles.load().get(name).cloned()
    }

    /// When the source role's usable credentials were fetched, if any.
    fn source_stamp(&self) -> Option<DateTime<Utc>> {
        let slot = self.source_slot()?;
        let snap = slot.load();
        snap.usable(self.clock.now()).map(|s| s.last_updated)
    }

    /// One fetch and publish, ending or extending a run of failures.
    /// `None` when shut down mid-flight.
    async fn refresh_once(&self, run: Option<Streak>) -> Option<Option<Streak>> {
        let attempt = self.slot.begin_attempt();
        self.slot.update(|s| s.in_flight = true);
        self.metrics.refresh_attempted(self.slot.name());
        let started = std::time::Instant::now();
        let result = tokio::select! {
            r = self.fetcher.fetch() => r,
            _ = self.shutdown.cancelled() => return None,
        };
        let now = self.clock.now();
        self.metrics
            .refresh_took(self.slot.name(), started.elapsed().as_secs_f64());
        let result = result.and_then(|issued| {
            Served::render(&issued.credentials, issued.assumed_role_arn, now)
                .ok_or(FetchError::UnservableAnswer)
        });
        Some(match result {
            Ok(served) => {
                if let Some(line) = streak::recovered(run, now) {
                    self.log(&line, None);
                }
                self.publish_success(served, attempt, now, started.elapsed());
                None
            }
            Err(e) => {
                self.metrics.refresh_failed(self.slot.name(), e.code());
                Some(self.publish_failure(&e, attempt, now, run))
            }
        })
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
            role = %self.slot.name(),
            access_key_id = %served.access_key_id,
            expiration = %served.expiration,
            next_refresh = %next,
            took_ms = took.as_millis() as u64,
            "fetched credentials"
        );
        self.slot.set_next_action(next);
        self.slot.publish(super::store::Snapshot {
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
        run: Option<Streak>,
    ) -> Streak {
        let snap = self.slot.load_full();
        let serve_until = snap.served.as_ref().map(|s| s.expiration - SERVE_MARGIN);
        let retries = run.as_ref().map_or(0, |r| r.failures);
        let delay =
            schedule::backoff(now, retries, e.retry(), self.jitter(), serve_until);
        let usable = snap.usable(now).is_some();
        let (run, line) = streak::failed(run, e.code(), usable, now);
        self.log(&line, Some((e, delay, serve_until)));
        self.slot.set_next_action(now + delay);
        let failure = Failure {
            code: e.code().to_string(),
            message: e.to_string(),
            at: now,
        };
        self.slot.update(|s| {
            s.in_flight = false;
            s.failure = Some(failure);
            s.attempt = attempt;
        });
        run
    }

    /// Logs `line`; for a failure, with its error, when the next try is,
    /// and until when the last credentials are served.
    fn log(
        &self,
        line: &Line,
        failure: Option<(&FetchError, TimeDelta, Option<DateTime<Utc>>)>,
    ) {
        let role = self.slot.name();
        let Some((e, delay, serve_until)) = failure else {
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
                    role = %role,
                    "refresh recovered after {failures} failure(s) in {}{served}",
                    human(*over)
                );
            }
            return;
        };
        let retry_in = humantime::format_duration(round_to_ms(delay)).to_string();
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
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}

fn round_to_ms(d: TimeDelta) -> Duration {
    Duration::from_millis(d.num_milliseconds().max(0) as u64)
}

fn random_jitter() -> f64 {
    rand::rng().random::<f64>()
}
