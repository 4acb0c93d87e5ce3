//! What a role looks like to its readers: the immutable [`Snapshot`] a
//! [`RoleSlot`](super::slot::RoleSlot) holds, the credentials as served (rendered once) and why
//! there are none.
//!
//! Readers load a snapshot through `ArcSwap`: no lock, no allocation, no
//! waiting on STS. The slot itself, its one writer (the refresher) and the
//! requests others send it live in [`super::slot`]. The only reader that
//! ever waits is a credentials request that finds nothing usable while a
//! refresh is in flight, and it waits a bounded time (see `endpoint.rs`).

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::schedule::servable;
use super::slot::Outcome;
// The endpoints and the crate's API name the slot here, beside what it holds.
use crate::credentials::Credentials;
use crate::credentials::documents;

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
    pub(super) fn outcome_after(&self, after: u64) -> Option<Outcome> {
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
}
