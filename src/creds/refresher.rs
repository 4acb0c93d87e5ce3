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
    pub(crate) metrics: Arc<Metrics>,
}

impl Refresher {
    pub(crate) async fn run(self) {
        let mut failures: u32 = 0;
        // The first fetch is due at once.
        self.slot.set_next_action(self.clock.now());
        loop {
            let now = self.clock.now();
            let due = self.slot.next_action().unwrap_or(now);
            if now >= due {
                match self.refresh_once(failures).await {
                    None => return,
                    Some(true) => failures = 0,
                    Some(false) => failures = failures.saturating_add(1),
                }
                continue;
            }
            let sleep = (due - now)
                .to_std()
                .unwrap_or_default()
                .min(self.clock_check);
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = self.slot.poked() => {}
                _ = self.shutdown.cancelled() => return,
            }
        }
    }

    /// One fetch and publish, after `failures` failed ones in a row.
    /// `Some(success)`, or `None` when shut down mid-flight.
    async fn refresh_once(&self, failures: u32) -> Option<bool> {
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
                self.publish_success(served, now, started.elapsed());
                true
            }
            Err(e) => {
                self.metrics.refresh_failed(self.slot.name(), e.code());
                self.publish_failure(&e, now, failures);
                false
            }
        })
    }

    fn publish_success(&self, served: Served, now: DateTime<Utc>, took: Duration) {
        let next = schedule::refresh_at(now, served.expiration, jitter());
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
        });
    }

    /// Schedules the retry first, so a reader woken by the publish sees
    /// that nothing is overdue and answers at once.
    fn publish_failure(&self, e: &FetchError, now: DateTime<Utc>, attempt: u32) {
        let snap = self.slot.load_full();
        let serve_until = snap.served.as_ref().map(|s| s.expiration - SERVE_MARGIN);
        let delay = schedule::backoff(now, attempt, e.retry(), jitter(), serve_until);
        tracing::warn!(
            role = %self.slot.name(),
            error = %e,
            code = %e.code(),
            retry_in = %humantime::format_duration(round_to_ms(delay)),
            serving_until = ?snap.usable(now).map(|s| s.expiration - SERVE_MARGIN),
            "refresh failed"
        );
        self.slot.set_next_action(now + delay);
        let failure = Failure {
            code: e.code().to_string(),
            message: e.to_string(),
            at: now,
        };
        self.slot.update(|s| {
            s.in_flight = false;
            s.failure = Some(failure);
        });
    }
}

fn round_to_ms(d: TimeDelta) -> Duration {
    Duration::from_millis(d.num_milliseconds().max(0) as u64)
}

fn jitter() -> f64 {
    rand::rng().random::<f64>()
}
