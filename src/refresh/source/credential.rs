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

use crate::credentials::Credentials;
use crate::environment::Environment;
use crate::secret::Secret;

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
    parse(&text).map_err(|problem| CredentialError::Malformed {
        name: name.into(),
        problem: format!("{}: {problem}", path.display()),
    })
}

/// A line whose key is not one of the three. The key is named only when
/// it looks like a key: a line that is really a pasted secret (a session
/// token holds `=`) must not reach the log.
fn unknown_key(line: usize, key: &str) -> String {
    let key_like = key.len() <= 40
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if key_like {
        format!("line {line}: unknown key `{key}`")
    } else {
        format!(
            "line {line}: not one of aws_access_key_id, aws_secret_access_key, aws_session_token"
        )
    }
}

/// The keys in a credentials-file section (pure). Problems name the line
/// or the key, never a value.
pub(crate) fn parse(text: &str) -> Result<Credentials, String> {
    let (mut id, mut secret, mut token) = (None, None, None);
    let mut sections = 0;
    for (n, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            sections += 1;
            if sections > 1 {
                return Err(format!("line {n}: a second [section]; the file holds one"));
            }
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("line {n}: not `key = value`"));
        };
        let value = value.trim();
        match key.trim() {
            "aws_access_key_id" => id = Some(value.to_string()),
            "aws_secret_access_key" => secret = Some(Secret::new(value)),
            "aws_session_token" => token = Some(Secret::new(value)),
            other => return Err(unknown_key(n, other)),
        }
    }
    let missing = |key: &str| format!("no {key}");
    Ok(Credentials {
        access_key_id: id
            .filter(|v| !v.is_empty())
            .ok_or_else(|| missing("aws_access_key_id"))?,
        secret_access_key: secret
            .filter(|v| !v.is_empty())
            .ok_or_else(|| missing("aws_secret_access_key"))?,
        session_token: token.filter(|t| !t.is_empty()),
        expiration: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_with_or_without_its_header_gives_the_keys() {
        let with = "# imdsd\n[default]\naws_access_key_id = AKIAEXAMPLE\n\
                    aws_secret_access_key=s3cr3t/key\n";
        let without =
            "aws_access_key_id=AKIAEXAMPLE\naws_secret_access_key = s3cr3t/key\n\n";
        for text in [with, without] {
            let c = parse(text).unwrap();
            assert_eq!(c.access_key_id, "AKIAEXAMPLE");
            assert_eq!(c.secret_access_key.expose(), "s3cr3t/key");
            assert!(c.session_token.is_none() && c.expiration.is_none());
        }
        let c = parse(&format!("{without}aws_session_token = tok\n")).unwrap();
        assert_eq!(c.session_token.unwrap().expose(), "tok");
    }

    #[test]
    fn problems_name_the_line_or_key_and_never_a_value() {
        let cases = [
            ("aws_access_key_id = AKIAX\n", "no aws_secret_access_key"),
            ("aws_secret_access_key = s3cr3t\n", "no aws_access_key_id"),
            (
                "aws_access_key_id = \naws_secret_access_key = s3cr3t\n",
                "no aws_access_key_id",
            ),
            (
                "[a]\naws_access_key_id = A\n[b]\n",
                "line 3: a second [section]; the file holds one",
            ),
            (
                "aws_secret_access_key s3cr3t\n",
                "line 1: not `key = value`",
            ),
            ("region = s3cr3t\n", "line 1: unknown key `region`"),
            (
                "FwoGZXIvYXdzEBs3cr3t/token+part==\n",
                "line 1: not one of aws_access_key_id, aws_secret_access_key, aws_session_token",
            ),
        ];
        for (text, expected) in cases {
            let problem = parse(text).unwrap_err();
            assert_eq!(problem, expected, "{text}");
            assert!(!problem.contains("s3cr3t"));
        }
    }

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
