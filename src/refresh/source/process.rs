//! `credential_process`: the AWS protocol for helper commands that print
//! credentials as JSON (`Version: 1`). Parsing is pure; running uses
//! `refresh::command`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::credentials::Credentials;
use crate::refresh::command::{self, CommandError};
use crate::secret::Secret;

/// How long a credential process may take.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(60);

/// Why a credential process gave no credentials.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProcessError {
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error("credential_process output is not the JSON credential_process protocol: {0}")]
    Json(String),
    #[error("credential_process output has Version {0}; only Version 1 is defined")]
    Version(i64),
    #[error("credential_process output has an Expiration that is not RFC 3339: `{0}`")]
    Expiration(String),
    #[error("credential_process returned credentials that expired at {0}")]
    Expired(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Output {
    version: i64,
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    expiration: Option<String>,
}

/// Parses the JSON a credential process printed.
pub(crate) fn parse(text: &str, now: DateTime<Utc>) -> Result<Credentials, ProcessError> {
    // serde's messages quote offending values only for type errors on
    // numbers and booleans, never the secret strings.
    let out: Output = serde_json::from_str(text)
        .map_err(|e| ProcessError::Json(crate::read::json_error(&e)))?;
    let out = zeroize::Zeroizing::new(out);
    if out.version != 1 {
        return Err(ProcessError::Version(out.version));
    }
    if out.access_key_id.is_empty() || out.secret_access_key.is_empty() {
        return Err(ProcessError::Json(
            "AccessKeyId and SecretAccessKey must not be empty".into(),
        ));
    }
    let expiration = match out.expiration.as_deref().filter(|e| !e.is_empty()) {
        Some(e) => Some(
            DateTime::parse_from_rfc3339(e)
                .map_err(|_| ProcessError::Expiration(e.chars().take(40).collect()))?
                .with_timezone(&Utc),
        ),
        None => None,
    };
    if let Some(exp) = expiration.filter(|e| *e <= now) {
        return Err(ProcessError::Expired(exp.to_rfc3339()));
    }
    Ok(Credentials {
        access_key_id: out.access_key_id.clone(),
        secret_access_key: Secret::new(out.secret_access_key.clone()),
        session_token: out
            .session_token
            .clone()
            .filter(|t| !t.is_empty())
            .map(Secret::new),
        expiration,
    })
}

impl zeroize::Zeroize for Output {
    fn zeroize(&mut self) {
        self.secret_access_key.zeroize();
        self.session_token.zeroize();
    }
}

/// Runs `command_line` and parses what it prints.
pub(crate) async fn fetch(
    role: &str,
    command_line: &str,
    now: DateTime<Utc>,
) -> Result<Credentials, ProcessError> {
    let out = command::run("credential_process", role, command_line, TIMEOUT).await?;
    parse(out.expose(), now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn parses_temporary_and_long_term_output() {
        let c = parse(
            r#"{"Version":1,"AccessKeyId":"ASIA1","SecretAccessKey":"s","SessionToken":"t","Expiration":"2026-01-01T01:00:00Z"}"#,
            now(),
        )
        .unwrap();
        assert_eq!(c.access_key_id, "ASIA1");
        assert_eq!(c.session_token.unwrap().expose(), "t");
        assert_eq!(
            c.expiration.unwrap().to_rfc3339(),
            "2026-01-01T01:00:00+00:00"
        );
        let c = parse(
            r#"{"Version":1,"AccessKeyId":"AKIA1","SecretAccessKey":"s"}"#,
            now(),
        )
        .unwrap();
        assert!(c.session_token.is_none() && c.expiration.is_none());
    }

    #[test]
    fn rejects_bad_output_without_echoing_secrets() {
        let e = parse(
            r#"{"Version":2,"AccessKeyId":"A","SecretAccessKey":"hunter2"}"#,
            now(),
        )
        .unwrap_err();
        assert!(matches!(e, ProcessError::Version(2)));
        let e = parse(r#"{"Version":1,"AccessKeyId":"A"}"#, now()).unwrap_err();
        assert!(e.to_string().contains("SecretAccessKey"), "{e}");
        let e = parse(r#"{"Version":1,"AccessKeyId":"A","SecretAccessKey":"hunter2","Expiration":"soon"}"#, now()).unwrap_err();
        assert!(!e.to_string().contains("hunter2"));
        let e = parse(r#"{"Version":1,"AccessKeyId":"A","SecretAccessKey":"s","Expiration":"2025-01-01T00:00:00Z"}"#, now()).unwrap_err();
        assert!(matches!(e, ProcessError::Expired(_)));
        assert!(parse("not json", now()).is_err());
    }
}
