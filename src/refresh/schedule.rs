//! Pure timing decisions: when to refresh, how long to back off, and
//! whether credentials may still be served.
//!
//! The numbers come from what the SDKs do with IMDS credentials
//! (docs/refresh.md): botocore treats anything expiring within 15 to 25
//! minutes as nearly expired, so a healthy daemon must never hand out less
//! than 30 minutes. All functions take `now` and a jitter draw in `[0, 1)`
//! so they are deterministic under test.

use chrono::{DateTime, TimeDelta, Utc};

use crate::config::value;
use crate::sts::Retry;

/// Sessions with at least this much left on arrival are refreshed while
/// they still have [`LONG_SESSION_LEAD`] left; shorter ones at half-life.
/// See `config::value::LONG_SESSION` for why it is 55 minutes, not 60.
pub(crate) const LONG_SESSION: TimeDelta =
    TimeDelta::seconds(value::LONG_SESSION.as_secs() as i64);
/// Time left when a long session is refreshed, before jitter. 35 to 40
/// minutes left means a 1h session is refreshed every 20 to 25 minutes: at
/// most three STS calls an hour, and five minutes of slack above the
/// 30-minute floor for STS to answer.
pub(crate) const LONG_SESSION_LEAD: TimeDelta = TimeDelta::minutes(35);
/// Upper bound of the random extra lead, so a fleet does not refresh in step.
pub(crate) const LEAD_JITTER: TimeDelta = TimeDelta::minutes(5);
/// Credentials are served until this long before they expire, and no later:
/// the SDKs' own clock skew allowance.
pub(crate) const SERVE_MARGIN: TimeDelta = TimeDelta::minutes(1);
/// Never refresh sooner than this after an issue, whatever STS returned.
const MIN_INTERVAL: TimeDelta = TimeDelta::seconds(10);

const TRANSIENT_BASE: TimeDelta = TimeDelta::seconds(1);
const TRANSIENT_CAP: TimeDelta = TimeDelta::seconds(60);
const PERMANENT_BASE: TimeDelta = TimeDelta::minutes(2);
const PERMANENT_CAP: TimeDelta = TimeDelta::minutes(15);
const MIN_RETRY: TimeDelta = TimeDelta::milliseconds(200);

/// When to refresh credentials received at `issued` that expire at
/// `expiration`. `jitter` is a uniform draw in `[0, 1)`; jitter only ever
/// moves the refresh earlier. The lifetime is what was left on arrival;
/// see [`LONG_SESSION`] for why a 1h session arriving a little short of an
/// hour is still a long one.
pub(crate) fn refresh_at(
    issued: DateTime<Utc>,
    expiration: DateTime<Utc>,
    jitter: f64,
) -> DateTime<Utc> {
    let lifetime = expiration - issued;
    let at = if lifetime >= LONG_SESSION {
        let lead = LONG_SESSION_LEAD.max(lifetime / 2) + scale(LEAD_JITTER, jitter);
        expiration - lead
    } else {
        issued + lifetime / 2 - scale(lifetime / 10, jitter)
    };
    at.max(issued + MIN_INTERVAL)
}

/// Whether credentials expiring at `expiration` may still be served.
pub(crate) fn servable(now: DateTime<Utc>, expiration: DateTime<Utc>) -> bool {
    now < expiration - SERVE_MARGIN
}

/// How long to wait before retry number `attempt` (0 for the first retry)
/// after a failure of kind `retry`.
///
/// Transient errors use capped exponential backoff with full jitter.
/// Permanent ones retry slowly (2 minutes doubling to 15, half of it
/// jittered), so a fixed trust policy or rotated key is picked up.
/// `serve_until` is when the last good credentials stop being servable: a
/// retry is never put off past half the time left, so the daemon keeps
/// trying while it still has something to lose.
pub(crate) fn backoff(
    now: DateTime<Utc>,
    attempt: u32,
    retry: Retry,
    jitter: f64,
    serve_until: Option<DateTime<Utc>>,
) -> TimeDelta {
    let exp = 1i32 << attempt.min(16);
    let delay = match retry {
        Retry::Transient => scale((TRANSIENT_BASE * exp).min(TRANSIENT_CAP), jitter),
        Retry::Permanent => {
            let d = (PERMANENT_BASE * exp).min(PERMANENT_CAP);
            d / 2 + scale(d / 2, jitter)
        }
    };
    let delay = match serve_until {
        Some(until) if until > now => {
            delay.min(((until - now) / 2).max(TimeDelta::seconds(1)))
        }
        _ => delay,
    };
    delay.max(MIN_RETRY)
}

fn scale(d: TimeDelta, factor: f64) -> TimeDelta {
    let factor = factor.clamp(0.0, 1.0);
    TimeDelta::milliseconds((d.num_milliseconds() as f64 * factor) as i64)
}

/// Whether an on-demand role last used at `last_used` has been idle for
/// `idle_after` at `now`, and parks. A role never used is not idle: it is
/// marked used when it is activated.
pub(crate) fn idle(
    last_used: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    idle_after: std::time::Duration,
) -> bool {
    let Ok(idle_after) = TimeDelta::from_std(idle_after) else {
        return false;
    };
    last_used.is_some_and(|used| now - used >= idle_after)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn mins(m: i64) -> TimeDelta {
        TimeDelta::minutes(m)
    }

    #[test]
    fn one_hour_sessions_refresh_with_35_to_40_minutes_left() {
        let exp = t0() + mins(60);
        assert_eq!(refresh_at(t0(), exp, 0.0), exp - mins(35));
        assert_eq!(
            refresh_at(t0(), exp, 0.999_999),
            exp - mins(40) + TimeDelta::milliseconds(1)
        );
    }

    /// Issue 12: STS stamps `Expiration` before the answer travels, so a 1h
    /// session arrives with a little less than an hour left. It must still
    /// be refreshed with 35 to 40 minutes left, never at half-life.
    #[test]
    fn sessions_arriving_a_little_short_of_an_hour_count_as_long() {
        let millis = TimeDelta::milliseconds;
        for lifetime in [
            TimeDelta::seconds(3600),
            millis(3_599_996),
            TimeDelta::seconds(3590),
            TimeDelta::seconds(3300),
        ] {
            let exp = t0() + lifetime;
            let earliest = refresh_at(t0(), exp, 0.999_999);
            let latest = refresh_at(t0(), exp, 0.0);
            assert_eq!(exp - latest, mins(35), "{lifetime}");
            assert!(exp - earliest <= mins(40), "{lifetime}");
            assert!(exp - earliest > mins(39), "{lifetime}");
        }
    }

    #[test]
    fn sessions_well_under_an_hour_refresh_at_half_life() {
        let exp = t0() + TimeDelta::seconds(3299);
        assert_eq!(
            refresh_at(t0(), exp, 0.0),
            t0() + TimeDelta::milliseconds(1_649_500)
        );
    }

    #[test]
    fn twelve_hour_sessions_refresh_at_half_life() {
        let exp = t0() + TimeDelta::hours(12);
        assert_eq!(refresh_at(t0(), exp, 0.0), t0() + TimeDelta::hours(6));
        assert_eq!(
            refresh_at(t0(), exp, 0.5),
            t0() + TimeDelta::hours(6) - TimeDelta::seconds(150)
        );
    }

    #[test]
    fn long_sessions_refresh_at_half_life() {
        let exp = t0() + TimeDelta::hours(12);
        assert_eq!(refresh_at(t0(), exp, 0.0), t0() + TimeDelta::hours(6));
    }

    #[test]
    fn short_sessions_refresh_at_half_life_minus_jitter() {
        let exp = t0() + mins(30);
        assert_eq!(refresh_at(t0(), exp, 0.0), t0() + mins(15));
        assert_eq!(
            refresh_at(t0(), exp, 0.5),
            t0() + mins(15) - TimeDelta::seconds(90)
        );
    }

    #[test]
    fn tiny_or_past_expiry_never_causes_a_hot_loop() {
        assert_eq!(
            refresh_at(t0(), t0() + TimeDelta::seconds(4), 0.0),
            t0() + MIN_INTERVAL
        );
        assert_eq!(refresh_at(t0(), t0() - mins(5), 0.3), t0() + MIN_INTERVAL);
    }

    /// Simulates a day of healthy refreshes of a 1h role at every jitter
    /// extreme: what is served always has 30+ minutes left, and STS sees
    /// at most three calls in any hour.
    #[test]
    fn a_healthy_day_keeps_30_minutes_and_3_calls_an_hour() {
        for jitter in [0.0, 0.5, 0.999] {
            let mut now = t0();
            let mut calls = vec![now];
            let mut exp = now + mins(60);
            let mut next = refresh_at(now, exp, jitter);
            while now < t0() + TimeDelta::hours(24) {
                now += TimeDelta::seconds(30);
                if now >= next {
                    // STS takes up to five minutes to answer in this model.
                    let answered = now + mins(5);
                    assert!(exp - answered >= mins(30), "served too close to expiry");
                    now = answered;
                    exp = now + mins(60);
                    next = refresh_at(now, exp, jitter);
                    calls.push(now);
                }
                assert!(exp - now >= mins(30));
            }
            for w in calls.windows(4) {
                assert!(
                    w[3] - w[0] >= mins(60),
                    "4 calls within an hour at jitter {jitter}"
                );
            }
        }
    }

    #[test]
    fn serving_stops_one_minute_before_expiry() {
        let exp = t0() + mins(10);
        assert!(servable(exp - mins(2), exp));
        assert!(!servable(exp - mins(1), exp));
        assert!(!servable(exp + mins(1), exp));
    }

    #[test]
    fn transient_backoff_is_capped_exponential_with_full_jitter() {
        let b = |attempt, jitter| backoff(t0(), attempt, Retry::Transient, jitter, None);
        assert_eq!(b(0, 0.999), TimeDelta::milliseconds(999));
        assert_eq!(b(3, 0.5), TimeDelta::seconds(4));
        assert_eq!(b(30, 0.5), TimeDelta::seconds(30));
        assert_eq!(b(2, 0.0), MIN_RETRY);
    }

    #[test]
    fn permanent_errors_retry_slowly() {
        let b = |attempt, jitter| backoff(t0(), attempt, Retry::Permanent, jitter, None);
        assert_eq!(b(0, 0.0), mins(1));
        assert_eq!(b(0, 1.0), mins(2));
        assert_eq!(b(10, 1.0), mins(15));
    }

    #[test]
    fn backoff_never_waits_past_half_the_serving_time_left() {
        let until = t0() + mins(4);
        assert_eq!(
            backoff(t0(), 5, Retry::Permanent, 1.0, Some(until)),
            mins(2)
        );
        // Almost out of time: still at least a second apart.
        let until = t0() + TimeDelta::milliseconds(500);
        assert_eq!(
            backoff(t0(), 5, Retry::Permanent, 1.0, Some(until)),
            TimeDelta::seconds(1)
        );
    }

    #[test]
    fn once_serving_has_ended_retries_back_off_normally() {
        // Nothing left to protect: the retry follows the plain backoff
        // instead of hammering STS once a second.
        let plain = backoff(t0(), 5, Retry::Permanent, 1.0, None);
        assert!(plain > TimeDelta::seconds(1));
        for until in [t0(), t0() - mins(3)] {
            assert_eq!(backoff(t0(), 5, Retry::Permanent, 1.0, Some(until)), plain);
        }
    }

    #[test]
    fn a_role_parks_once_unused_for_idle_after() {
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let hour = std::time::Duration::from_secs(3600);
        assert!(!idle(None, t0, hour), "never used: not idle");
        assert!(!idle(Some(t0), t0 + TimeDelta::minutes(59), hour));
        assert!(idle(Some(t0), t0 + TimeDelta::hours(1), hour));
        assert!(
            !idle(Some(t0), t0 - TimeDelta::hours(2), hour),
            "a clock set back"
        );
    }
}
