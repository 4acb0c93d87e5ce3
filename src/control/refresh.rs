//! `imdsd refresh`: what each role's forced refresh came to, in words
//! (pure).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::refresh::slot::Outcome;

/// How long the daemon waits for a forced refresh to end. Longer than one
/// STS call's timeout: a profile chain makes several.
pub(crate) const WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// One role's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Report {
    pub(crate) role: String,
    /// Fresh credentials are being served.
    pub(crate) ok: bool,
    pub(crate) message: String,
}

/// The report of `role`'s refresh that ended as `outcome`, at `now`.
pub(crate) fn report(role: &str, outcome: Outcome, now: DateTime<Utc>) -> Report {
    let (ok, message) = match outcome {
        Outcome::Refreshed { expiration } => {
            let left = (expiration - now).num_seconds().max(0) as u64;
            let left = crate::clock::human(std::time::Duration::from_secs(left));
            (
                true,
                format!(
                    "refreshed; expires {} (in {left})",
                    expiration.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
            )
        }
        Outcome::Failed(failure) => {
            (false, format!("{}: {}", failure.code, failure.message))
        }
        Outcome::Waiting(what) => (false, what),
        Outcome::StillRunning => (
            false,
            format!(
                "still refreshing after {}s; `imdsd status` shows how it ends",
                WAIT.as_secs()
            ),
        ),
    };
    Report {
        role: role.to_string(),
        ok,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refresh::store::Failure;

    #[test]
    fn each_outcome_reads_as_what_happened() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let r = report(
            "dev",
            Outcome::Refreshed {
                expiration: now + chrono::TimeDelta::minutes(59),
            },
            now,
        );
        assert!(r.ok);
        assert_eq!(
            r.message,
            "refreshed; expires 2027-01-15T08:59:00Z (in 59m)"
        );
        let failure = Failure {
            code: "AccessDenied".into(),
            message: "not authorized to assume".into(),
            at: now,
        };
        let r = report("dev", Outcome::Failed(failure), now);
        assert_eq!(
            (r.ok, r.message.as_str()),
            (false, "AccessDenied: not authorized to assume")
        );
        let r = report(
            "dev",
            Outcome::Waiting("waiting for an MFA code".into()),
            now,
        );
        assert_eq!(
            (r.ok, r.message.as_str()),
            (false, "waiting for an MFA code")
        );
        assert!(!report("dev", Outcome::StillRunning, now).ok);
    }
}
