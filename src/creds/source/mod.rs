//! Source credentials: the keys that sign the STS call.
//!
//! - here: the daemon's environment and static keys in the shared
//!   credentials file;
//! - [`process`]: `credential_process` helpers;
//! - [`remote`]: the EC2 metadata service and the container endpoint.
//!
//! Resolved again on every refresh, so rotating the keys in the credentials
//! file takes effect without a restart. Parsing takes text, reading takes a
//! path; the secret values are never part of an error message.

use std::path::{Path, PathBuf};

pub mod process;
pub mod remote;

use ini::{Ini, ParseOption};

use super::Credentials;
use crate::environment::Environment;
use crate::secret::Secret;

/// Why source credentials could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("source \"env\": {0} is not set in the daemon's environment")]
    MissingEnv(&'static str),
    #[error("source \"profile:{profile}\": cannot read {}: {source}", path.display())]
    Read {
        profile: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("source \"profile:{profile}\": {} is not a valid credentials file: {reason}", path.display())]
    Parse {
        profile: String,
        path: PathBuf,
        reason: String,
    },
    #[error("source \"profile:{profile}\": no [{profile}] section in {}", path.display())]
    NoProfile { profile: String, path: PathBuf },
    #[error("source \"profile:{profile}\": [{profile}] in {} has no {key}", path.display())]
    MissingKey {
        profile: String,
        path: PathBuf,
        key: &'static str,
    },
    #[error(
        "source \"profile:{0}\": no credentials file: neither AWS_SHARED_CREDENTIALS_FILE nor HOME is set"
    )]
    NoCredentialsFile(String),
}

impl SourceError {
    pub fn code(&self) -> &'static str {
        "SourceCredentialsUnavailable"
    }
}

/// The static keys of `profile` in the shared credentials file, read now.
pub fn profile_static_keys(
    profile: &str,
    env: &Environment,
) -> Result<Credentials, SourceError> {
    let path = credentials_file(env)
        .ok_or_else(|| SourceError::NoCredentialsFile(profile.to_string()))?;
    from_credentials_file(&path, profile)
}

/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and, optionally,
/// `AWS_SESSION_TOKEN`.
pub fn from_env(env: &Environment) -> Result<Credentials, SourceError> {
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

/// `AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`.
pub fn credentials_file(env: &Environment) -> Option<PathBuf> {
    match env.get("AWS_SHARED_CREDENTIALS_FILE") {
        Some(p) => Some(expand_home(p, env)),
        None => env
            .get("HOME")
            .map(|home| Path::new(home).join(".aws/credentials")),
    }
}

fn expand_home(path: &str, env: &Environment) -> PathBuf {
    match (path.strip_prefix("~/"), env.get("HOME")) {
        (Some(rest), Some(home)) => Path::new(home).join(rest),
        _ => PathBuf::from(path),
    }
}

fn from_credentials_file(path: &Path, profile: &str) -> Result<Credentials, SourceError> {
    let text = crate::read::file(path, crate::read::LARGE).map_err(|source| {
        SourceError::Read {
            profile: profile.into(),
            path: path.into(),
            source,
        }
    })?;
    let text = zeroize::Zeroizing::new(text);
    parse_static_keys(&text, profile).map_err(|e| e.at(path, profile))
}

/// A problem in credentials-file text, before we know its path.
#[derive(Debug, PartialEq, Eq)]
pub enum ProfileProblem {
    Syntax(String),
    NoProfile,
    MissingKey(&'static str),
}

impl ProfileProblem {
    fn at(self, path: &Path, profile: &str) -> SourceError {
        let (profile, path) = (profile.to_string(), path.to_path_buf());
        match self {
            ProfileProblem::Syntax(reason) => SourceError::Parse {
                profile,
                path,
                reason,
            },
            ProfileProblem::NoProfile => SourceError::NoProfile { profile, path },
            ProfileProblem::MissingKey(key) => {
                SourceError::MissingKey { profile, path, key }
            }
        }
    }
}

/// The static keys of `[profile]` in credentials-file text.
pub fn parse_static_keys(
    text: &str,
    profile: &str,
) -> Result<Credentials, ProfileProblem> {
    let options = ParseOption {
        enabled_quote: false,
        enabled_escape: false,
        ..Default::default()
    };
    let ini = Ini::load_from_str_opt(text, options).map_err(|e| {
        ProfileProblem::Syntax(format!("line {}, column {}", e.line, e.col))
    })?;
    let section = ini
        .section(Some(profile))
        .ok_or(ProfileProblem::NoProfile)?;
    let get =
        |key: &'static str| section.get(key).map(str::trim).filter(|v| !v.is_empty());
    let access_key_id = get("aws_access_key_id")
        .ok_or(ProfileProblem::MissingKey("aws_access_key_id"))?;
    let secret = get("aws_secret_access_key")
        .ok_or(ProfileProblem::MissingKey("aws_secret_access_key"))?;
    Ok(Credentials {
        access_key_id: access_key_id.to_string(),
        secret_access_key: Secret::new(secret),
        session_token: get("aws_session_token").map(Secret::new),
        expiration: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# comment
[default]
aws_access_key_id = AKIADEFAULT
aws_secret_access_key = secretdefault

[base]
aws_access_key_id=AKIABASE
aws_secret_access_key=abc/def+ghi
aws_session_token = tok
; another comment
[broken]
aws_access_key_id = AKIABROKEN
";

    #[test]
    fn reads_static_keys_of_the_named_profile() {
        let c = parse_static_keys(FILE, "base").unwrap();
        assert_eq!(c.access_key_id, "AKIABASE");
        assert_eq!(c.secret_access_key.expose(), "abc/def+ghi");
        assert_eq!(c.session_token.unwrap().expose(), "tok");
        assert!(
            parse_static_keys(FILE, "default")
                .unwrap()
                .session_token
                .is_none()
        );
    }

    #[test]
    fn names_what_is_missing() {
        assert_eq!(
            parse_static_keys(FILE, "nope").unwrap_err(),
            ProfileProblem::NoProfile
        );
        assert_eq!(
            parse_static_keys(FILE, "broken").unwrap_err(),
            ProfileProblem::MissingKey("aws_secret_access_key")
        );
        let err = ProfileProblem::MissingKey("aws_secret_access_key")
            .at(Path::new("/c"), "broken");
        assert_eq!(
            err.to_string(),
            "source \"profile:broken\": [broken] in /c has no aws_secret_access_key"
        );
    }

    #[test]
    fn env_source_needs_both_keys() {
        let env = Environment::from_pairs([("AWS_ACCESS_KEY_ID", "AKIA")]);
        assert_eq!(
            from_env(&env).unwrap_err().to_string(),
            "source \"env\": AWS_SECRET_ACCESS_KEY is not set in the daemon's environment"
        );
    }

    #[test]
    fn credentials_file_location() {
        let env = Environment::from_pairs([("HOME", "/h")]);
        assert_eq!(
            credentials_file(&env),
            Some(PathBuf::from("/h/.aws/credentials"))
        );
        let env = Environment::from_pairs([
            ("HOME", "/h"),
            ("AWS_SHARED_CREDENTIALS_FILE", "~/c"),
        ]);
        assert_eq!(credentials_file(&env), Some(PathBuf::from("/h/c")));
    }
}
