//! Temporary AWS credentials and their lifecycle.
//!
//! - [`Credentials`]: one set of keys with its expiry; secrets redacted.
//! - [`schedule`]: pure decisions: when to refresh, how long to back off.
//! - [`store`]: the per-role snapshot that request handlers read.
//! - [`refresher`]: the one task per role that calls STS and publishes.
//! - [`fetch`]: one fetch, for every STS flow; [`queries`]: the STS
//!   requests (pure); [`command`]: helper commands (MFA, SAML, process).
//! - [`source`]: where the keys that sign the STS call come from.

pub mod command;
pub mod fetch;
pub mod queries;
pub mod refresher;
pub mod schedule;
pub mod source;
pub mod store;

use std::fmt;

use chrono::{DateTime, Utc};

use crate::secret::Secret;

/// One set of AWS credentials.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
    /// `None` for long-term keys, which never expire.
    pub expiration: Option<DateTime<Utc>>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &self.secret_access_key)
            .field("session_token", &self.session_token)
            .field("expiration", &self.expiration)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_key_id_but_never_secrets() {
        let creds = Credentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: Secret::new("SECRETKEYVALUE"),
            session_token: Some(Secret::new("SESSIONTOKENVALUE")),
            expiration: None,
        };
        let printed = format!("{creds:?}");
        assert_eq!(
            printed,
            "Credentials { access_key_id: \"ASIAEXAMPLE\", secret_access_key: ** redacted **, \
             session_token: Some(** redacted **), expiration: None }"
        );
    }
}
