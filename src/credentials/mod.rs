//! One set of AWS credentials (access key id, secret key, session token,
//! expiry), with the secrets redacted from `Debug`. A leaf: the STS client,
//! profiles and the credential lifecycle all use it, and it uses none of
//! them.
//!
//! - [`documents`]: the exact documents a set of credentials is written
//!   out as (pure);
//! - [`section`]: the credentials-file section that holds long-term keys
//!   in a systemd credential or a Secret Service item (pure).

pub(crate) mod documents;
pub(crate) mod section;

use std::fmt;

use chrono::{DateTime, Utc};

use crate::secret::Secret;

/// One set of AWS credentials.
#[derive(Clone)]
pub(crate) struct Credentials {
    pub(crate) access_key_id: String,
    pub(crate) secret_access_key: Secret,
    pub(crate) session_token: Option<Secret>,
    /// `None` for long-term keys, which never expire.
    pub(crate) expiration: Option<DateTime<Utc>>,
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
