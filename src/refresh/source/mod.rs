//! Source credentials: the keys that sign the STS call.
//!
//! - here: the daemon's own environment;
//! - [`process`]: `credential_process` helpers;
//! - [`remote`]: the EC2 metadata service and the container endpoint;
//! - [`credential`]: a systemd credential (`$CREDENTIALS_DIRECTORY/NAME`).
//!
//! AWS profiles (`source = "profile:NAME"`) are resolved by `profile`.
//! Every source is read again on every refresh, so rotated keys take effect
//! without a restart; secret values are never part of an error message.

pub(crate) mod credential;
pub(crate) mod process;
pub(crate) mod remote;

use crate::credentials::Credentials;
use crate::environment::Environment;
use crate::secret::Secret;

/// Why source credentials could not be had.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SourceError {
    #[error("source \"env\": {0} is not set in the daemon's environment")]
    MissingEnv(&'static str),
    #[error(transparent)]
    Credential(#[from] credential::CredentialError),
}

impl SourceError {
    pub(crate) fn code(&self) -> &'static str {
        "SourceCredentialsUnavailable"
    }
}

/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and, optionally,
/// `AWS_SESSION_TOKEN`.
pub(crate) fn from_env(env: &Environment) -> Result<Credentials, SourceError> {
    let access_key_id = env
        .get("AWS_ACCESS_KEY_ID")
        .ok_or(SourceError::MissingEnv("AWS_ACCESS_KEY_ID"))?;
    let secret = env
        .get("AWS_SECRET_ACCESS_KEY")
        .ok_or(SourceError::MissingEnv("AWS_SECRET_ACCESS_KEY"))?;
    Ok(Credentials {
        access_key_id: access_key_id.to_string(),
        secret_access_key: Secret::new(secret),
        session_token: env.get("AWS_SESSION_TOKEN").map(Secret::new),
        expiration: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_source_needs_both_keys_and_takes_an_optional_token() {
        let env = Environment::from_pairs([("AWS_ACCESS_KEY_ID", "AKIA")]);
        assert_eq!(
            from_env(&env).unwrap_err().to_string(),
            "source \"env\": AWS_SECRET_ACCESS_KEY is not set in the daemon's environment"
        );
        let env = Environment::from_pairs([
            ("AWS_ACCESS_KEY_ID", "AKIA"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("AWS_SESSION_TOKEN", "t"),
        ]);
        let c = from_env(&env).unwrap();
        assert_eq!(c.session_token.unwrap().expose(), "t");
    }
}
