//! Which log line a refresh outcome deserves (pure).
//!
//! A role that keeps failing retries every minute or so; a line per retry
//! buries everything else in the journal. So a run of failures logs its
//! first failure, a change of error, the moment nothing is left to serve
//! (once, at ERROR: requests get 503 from then on), a summary every
//! [`SUMMARY_EVERY`] while it lasts, and its end (INFO). Repeats of the same
//! error in between go to DEBUG. Failures count as the same when their
//! error code is: messages carry request IDs that differ every time.

use chrono::{DateTime, TimeDelta, Utc};

/// How often a long run of identical failures is summarised.
pub(crate) const SUMMARY_EVERY: TimeDelta = TimeDelta::minutes(10);

/// A run of failed refreshes, from the first failure to the next success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Streak {
    /// Failures in the run.
    pub(crate) failures: u32,
    /// When the first one happened.
    pub(crate) since: DateTime<Utc>,
    /// The last failure's error code, and how many in a row had it.
    code: String,
    same: u32,
    /// When a line above DEBUG was last logged for this run.
    logged_at: DateTime<Utc>,
    /// Nothing usable is being served (requests get 503).
    outage: bool,
}

/// What to log about one outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Line {
    /// The first failure; the last credentials are still served (WARN).
    Failed,
    /// Nothing is left to serve: 503s begin (ERROR, once per run).
    OutageBegins,
    /// A different error than the last one, which happened `repeats`
    /// times in a row (WARN).
    Changed { repeats: u32 },
    /// The same error again (DEBUG).
    Repeated,
    /// Still failing: `failures` failures over `over` (WARN).
    StillFailing { failures: u32, over: TimeDelta },
    /// The run is over after `failures` failures over `over` (INFO);
    /// `outage` if requests were getting 503 meanwhile.
    Recovered {
        failures: u32,
        over: TimeDelta,
        outage: bool,
    },
}

impl Line {
    /// Whether the line is worth more than DEBUG.
    pub(crate) fn is_loud(&self) -> bool {
        !matches!(self, Line::Repeated)
    }
}

/// The run after a failure with error `code` at `now`; `usable` tells
/// whether credentials are still being served. And the line to log.
pub(crate) fn failed(
    run: Option<Streak>,
    code: &str,
    usable: bool,
    now: DateTime<Utc>,
) -> (Streak, Line) {
    let Some(mut run) = run else {
        let line = if usable {
            Line::Failed
        } else {
            Line::OutageBegins
        };
        let run = Streak {
            failures: 1,
            since: now,
            code: code.to_string(),
            same: 1,
            logged_at: now,
            outage: !usable,
        };
        return (run, line);
    };
    run.failures = run.failures.saturating_add(1);
    let line = if !usable && !run.outage {
        run.outage = true;
        Line::OutageBegins
    } else if run.code != code {
        Line::Changed { repeats: run.same }
    } else if now - run.logged_at >= SUMMARY_EVERY {
        Line::StillFailing {
            failures: run.failures,
            over: now - run.since,
        }
    } else {
        Line::Repeated
    };
    if run.code == code {
        run.same = run.same.saturating_add(1);
    } else {
        run.code = code.to_string();
        run.same = 1;
    }
    if line.is_loud() {
        run.logged_at = now;
    }
    (run, line)
}

/// The line for a success at `now` that ends `run`, if there was one.
pub(crate) fn recovered(run: Option<Streak>, now: DateTime<Utc>) -> Option<Line> {
    run.map(|run| Line::Recovered {
        failures: run.failures,
        over: now - run.since,
        outage: run.outage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn the_first_failure_is_a_warning_while_something_is_still_served() {
        let (run, line) = failed(None, "Throttling", true, at(0));
        assert_eq!(line, Line::Failed);
        assert_eq!((run.failures, run.since), (1, at(0)));
        let (_, line) = failed(None, "AccessDenied", false, at(0));
        assert_eq!(line, Line::OutageBegins);
    }

    #[test]
    fn identical_failures_are_quiet_until_the_summary_is_due() {
        let (mut run, _) = failed(None, "AccessDenied", false, at(0));
        for i in 1..10 {
            let (next, line) = failed(Some(run), "AccessDenied", false, at(i * 60));
            assert_eq!(line, Line::Repeated, "retry {i}");
            run = next;
        }
        let (run, line) = failed(Some(run), "AccessDenied", false, at(600));
        assert_eq!(
            line,
            Line::StillFailing {
                failures: 11,
                over: TimeDelta::minutes(10)
            }
        );
        // The summary restarts the quiet period.
        let (_, line) = failed(Some(run), "AccessDenied", false, at(660));
        assert_eq!(line, Line::Repeated);
    }

    #[test]
    fn the_outage_is_announced_once_when_the_last_credentials_go() {
        let (run, _) = failed(None, "Throttling", true, at(0));
        let (run, line) = failed(Some(run), "Throttling", false, at(60));
        assert_eq!(line, Line::OutageBegins);
        let (_, line) = failed(Some(run), "Throttling", false, at(120));
        assert_eq!(line, Line::Repeated);
    }

    #[test]
    fn a_different_error_is_logged_with_how_often_the_last_one_repeated() {
        let (run, _) = failed(None, "SsoLoginRequired", false, at(0));
        let (run, _) = failed(Some(run), "SsoLoginRequired", false, at(60));
        let (run, line) = failed(Some(run), "AccessDenied", false, at(120));
        assert_eq!(line, Line::Changed { repeats: 2 });
        let (_, line) = failed(Some(run), "AccessDenied", false, at(180));
        assert_eq!(line, Line::Repeated);
    }

    #[test]
    fn a_success_ends_the_run_and_says_how_long_it_lasted() {
        assert_eq!(recovered(None, at(0)), None);
        let (run, _) = failed(None, "Throttling", true, at(0));
        let (run, _) = failed(Some(run), "Throttling", false, at(420));
        assert_eq!(
            recovered(Some(run), at(480)),
            Some(Line::Recovered {
                failures: 2,
                over: TimeDelta::minutes(8),
                outage: true
            })
        );
    }
}
