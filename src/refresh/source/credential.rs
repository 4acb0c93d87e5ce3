//! `source = "credential:NAME"`: long-term keys from a systemd credential,
//! `$CREDENTIALS_DIRECTORY/NAME`, as systemd provides it with
//! `LoadCredentialEncrypted=NAME:/etc/imdsd/NAME.cred` (decrypted with the
//! TPM2 or the host key, only into the service's private credentials
//! directory, never onto disk in plaintext).
//!
//! The file is an AWS credentials-file section: `aws_access_key_id`,
//! `aws_secret_access_key` and optionally `aws_session_token`, with or
//! without a `[section]` header. It is read on every refresh (a rotated
//! key takes effect without a restart); its text is wiped from memory once
//! parsed, and no value ever appears in an error.

use std::path::PathBuf;

use zeroize::Zeroizing;

use crate::credentials::{Credentials, section};
use crate::environment::Environment;

/// Why a systemd credential gave no keys.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum CredentialError {
    #[error(
        "source \"credential:{name}\": $CREDENTIALS_DIRECTORY is not set; systemd sets it \
         for a service with LoadCredential= or LoadCredentialEncrypted={name}:..."
    )]
    NoDirectory { name: String },
    #[error(
        "source \"credential:{name}\": cannot read {path} (in $CREDENTIALS_DIRECTORY \
         {directory}): {reason}"
    )]
    Unreadable {
        name: String,
        path: PathBuf,
        directory: String,
        reason: String,
    },
    #[error("source \"credential:{name}\": {problem}")]
    Malformed { name: String, problem: String },
}

/// The keys in the systemd credential `name`.
pub(crate) async fn read(
    env: &Environment,
    name: &str,
) -> Result<Credentials, CredentialError> {
    let directory = env
        .get("CREDENTIALS_DIRECTORY")
        .filter(|d| !d.is_empty())
        .ok_or_else(|| CredentialError::NoDirectory { name: name.into() })?;
    let path = PathBuf::from(directory).join(name);
    let text = tokio::fs::read_to_string(&path)
        .await
        .map(Zeroizing::new)
        .map_err(|e| CredentialError::Unreadable {
            name: name.into(),
            path: path.clone(),
            directory: directory.into(),
            reason: e.to_string(),
        })?;
    section::parse(&text).map_err(|problem| CredentialError::Malformed {
        name: name.into(),
        problem: format!("{}: {problem}", path.display()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_directory_or_file_is_named() {
        let none = Environment::default();
        assert_eq!(
            read(&none, "aws").await.unwrap_err(),
            CredentialError::NoDirectory { name: "aws".into() }
        );
        let dir = tempfile::tempdir().unwrap();
        let env = Environment::from_pairs([(
            "CREDENTIALS_DIRECTORY",
            dir.path().to_str().unwrap(),
        )]);
        let message = read(&env, "aws").await.unwrap_err().to_string();
        assert!(
            message.contains(&dir.path().join("aws").display().to_string()),
            "{message}"
        );
        assert!(message.contains("$CREDENTIALS_DIRECTORY"), "{message}");
        std::fs::write(
            dir.path().join("aws"),
            "aws_access_key_id=A\naws_secret_access_key=B\n",
        )
        .unwrap();
        assert_eq!(read(&env, "aws").await.unwrap().access_key_id, "A");
    }
}
