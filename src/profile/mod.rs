//! AWS profiles, read as the AWS CLI reads them: `~/.aws/config`
//! (`AWS_CONFIG_FILE`) and `~/.aws/credentials`
//! (`AWS_SHARED_CREDENTIALS_FILE`), re-read on every refresh.
//!
//! - [`resolve`]: profile → plan (a base plus AssumeRole hops), pure.
//! - [`sso`]: IAM Identity Center: the portal's GetRoleCredentials;
//!   [`sso_token`]: the cached `aws sso login` token and when to renew it
//!   (pure); [`sso_renewal`]: reading, renewing and writing it back.
//! - [`shadow`]: what in the environment and the default profile would
//!   take SDKs elsewhere than imdsd (pure); [`default_profiles`] reads its
//!   input.
//!
//! Carrying a plan out (STS calls, MFA codes) is `refresh::fetch`'s job.

pub(crate) mod resolve;
pub(crate) mod shadow;
pub(crate) mod sso;
pub(crate) mod sso_renewal;
pub(crate) mod sso_token;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ini::{Ini, ParseOption};

pub(crate) use resolve::{Base, Plan, Profiles};

use crate::environment::Environment;
use crate::watch::Target;

/// Why a profile gave no credentials.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProfileError {
    #[error("profile `{0}` is not in the AWS config or credentials file")]
    NoProfile(String),
    #[error(
        "profile `{0}` has no credentials (no keys, role_arn, sso_session, or credential_process)"
    )]
    NoCredentials(String),
    #[error("profiles refer to each other in a loop: {0}")]
    Cycle(String),
    #[error("profile `{profile}`: {key} {reason}")]
    Invalid {
        profile: String,
        key: &'static str,
        reason: String,
    },
    #[error("cannot read {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error("{} is not a valid AWS config file: {reason}", path.display())]
    Parse { path: PathBuf, reason: String },
    #[error("profile `{profile}` uses SSO but there is no cached login ({}): run `aws sso login --profile {profile}`", path.display())]
    SsoNotLoggedIn { profile: String, path: PathBuf },
    #[error(
        "the SSO login for profile `{profile}` has expired: run `aws sso login --profile {profile}`"
    )]
    SsoExpired { profile: String },
    #[error("SSO GetRoleCredentials for profile `{profile}` failed: {reason}")]
    SsoPortal {
        profile: String,
        reason: String,
        transient: bool,
    },
}

impl ProfileError {
    pub(crate) fn code(&self) -> &'static str {
        match self {
            ProfileError::SsoNotLoggedIn { .. } | ProfileError::SsoExpired { .. } => {
                "SsoLoginRequired"
            }
            ProfileError::SsoPortal { .. } => "SsoError",
            _ => "ProfileError",
        }
    }
}

/// `AWS_CONFIG_FILE`, else `~/.aws/config`.
pub(crate) fn config_file(env: &Environment) -> Option<PathBuf> {
    file(env, "AWS_CONFIG_FILE", ".aws/config")
}

/// `AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`.
pub(crate) fn credentials_file(env: &Environment) -> Option<PathBuf> {
    file(env, "AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials")
}

fn file(env: &Environment, var: &str, default: &str) -> Option<PathBuf> {
    let home = env.get("HOME");
    match (env.get(var), home) {
        (Some(p), Some(home)) if p.starts_with("~/") => {
            Some(Path::new(home).join(&p[2..]))
        }
        (Some(p), _) => Some(PathBuf::from(p)),
        (None, Some(home)) => Some(Path::new(home).join(default)),
        (None, None) => None,
    }
}

/// The profile named by `AWS_PROFILE` (else `AWS_DEFAULT_PROFILE`), else
/// `default`.
pub(crate) fn selected(env: &Environment) -> String {
    env.first_of(&["AWS_PROFILE", "AWS_DEFAULT_PROFILE"])
        .unwrap_or("default")
        .to_string()
}

/// What to watch so that roles reading profiles retry as soon as the files
/// change: `~/.aws`, recursively (the SSO token cache is under it), and the
/// directories of `AWS_CONFIG_FILE` and `AWS_SHARED_CREDENTIALS_FILE` when
/// they are elsewhere. Only directories that exist now.
pub(crate) fn watch_targets(env: &Environment) -> Vec<Target> {
    let aws = env.get("HOME").map(|home| Path::new(home).join(".aws"));
    let mut targets: Vec<Target> = aws
        .iter()
        .map(|dir| Target {
            dir: dir.clone(),
            recursive: true,
            names: None,
        })
        .collect();
    for file in [config_file(env), credentials_file(env)]
        .into_iter()
        .flatten()
    {
        let (Some(dir), Some(name)) = (file.parent(), file.file_name()) else {
            continue;
        };
        if aws.as_deref().is_some_and(|aws| dir.starts_with(aws)) {
            continue;
        }
        match targets.iter_mut().find(|t| t.dir == dir) {
            Some(t) => t.names.get_or_insert_with(Vec::new).push(name.into()),
            None => targets.push(Target {
                dir: dir.to_path_buf(),
                recursive: false,
                names: Some(vec![name.into()]),
            }),
        }
    }
    targets.retain(|t| t.dir.is_dir());
    targets
}

/// Reads both files now; a missing file (or `/dev/null`) counts as empty.
pub(crate) fn load(env: &Environment) -> Result<Profiles, ProfileError> {
    let read =
        |path: Option<PathBuf>| -> Result<Option<(PathBuf, String)>, ProfileError> {
            let Some(path) = path else { return Ok(None) };
            // `/dev/null` says "no such file", and reads as empty in the CLI.
            if path == Path::new("/dev/null") {
                return Ok(None);
            }
            match crate::read::file(&path, crate::read::LARGE) {
                Ok(text) => Ok(Some((path, text))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(ProfileError::Read {
                    path,
                    reason: e.to_string(),
                }),
            }
        };
    let config = read(config_file(env))?;
    let credentials =
        read(credentials_file(env))?.map(|(p, t)| (p, zeroize::Zeroizing::new(t)));
    let mut profiles = Profiles::default();
    if let Some((path, text)) = &config {
        merge(&mut profiles, text, false).map_err(|reason| ProfileError::Parse {
            path: path.clone(),
            reason,
        })?;
    }
    if let Some((path, text)) = &credentials {
        merge(&mut profiles, text, true).map_err(|reason| ProfileError::Parse {
            path: path.clone(),
            reason,
        })?;
    }
    Ok(profiles)
}

/// Each profile file with the key names (never the values) of its default
/// profile, for [`shadow::shadowing`]. A file that is missing or does not
/// parse has nothing to say.
pub(crate) fn default_profiles(env: &Environment) -> Vec<shadow::DefaultProfile> {
    let files = [(config_file(env), false), (credentials_file(env), true)];
    files
        .into_iter()
        .filter_map(|(path, credentials_file)| {
            let path = path.filter(|p| p != Path::new("/dev/null"))?;
            let text = zeroize::Zeroizing::new(
                crate::read::file(&path, crate::read::LARGE).ok()?,
            );
            let mut profiles = Profiles::default();
            merge(&mut profiles, &text, credentials_file).ok()?;
            let section = profiles.profiles.get("default");
            let keys = section
                .map(|section| section.keys().cloned().collect())
                .unwrap_or_default();
            let imdsd_process = section
                .and_then(|s| s.get("credential_process"))
                .and_then(|cmd| resolve::imdsd_credential_process(cmd))
                .is_some();
            Some(shadow::DefaultProfile {
                path,
                credentials_file,
                keys,
                imdsd_process,
            })
        })
        .collect()
}

/// Parses file texts, as [`load`] parses the files (`imdsd import` checks
/// its edits with it before writing them).
pub(crate) fn parse_files(
    config: Option<&str>,
    credentials: Option<&str>,
) -> Result<Profiles, String> {
    let mut profiles = Profiles::default();
    if let Some(text) = config {
        merge(&mut profiles, text, false)?;
    }
    if let Some(text) = credentials {
        merge(&mut profiles, text, true)?;
    }
    Ok(profiles)
}

/// Adds one file's sections. In the config file profiles are
/// `[profile NAME]` (and `[default]`); in the credentials file `[NAME]`.
/// Keys from the credentials file win.
fn merge(
    profiles: &mut Profiles,
    text: &str,
    credentials_file: bool,
) -> Result<(), String> {
    let options = ParseOption {
        enabled_quote: false,
        enabled_escape: false,
        ..Default::default()
    };
    let ini = Ini::load_from_str_opt(&without_continuations(text), options)
        .map_err(|e| format!("line {}, column {}", e.line, e.col))?;
    // rust-ini reads a `[` without its `]` on to the next `]`, lines later,
    // and the lines in between (keys and secrets) would become a profile
    // name, which is printed. The CLI refuses such a file too.
    if ini.sections().flatten().any(|s| s.contains(['\n', '\r'])) {
        return Err("a section header's `[` has no `]` on its line".into());
    }
    for (section, props) in ini.iter() {
        let Some(section) = section.map(str::trim) else {
            continue;
        };
        let (table, name) = if credentials_file {
            (&mut profiles.profiles, section)
        } else if let Some(name) = section.strip_prefix("profile ") {
            (&mut profiles.profiles, name.trim())
        } else if let Some(name) = section.strip_prefix("sso-session ") {
            (&mut profiles.sso_sessions, name.trim())
        } else if section == "default" {
            (&mut profiles.profiles, "default")
        } else {
            continue;
        };
        let entry: &mut HashMap<String, String> =
            table.entry(name.to_string()).or_default();
        for (k, v) in props.iter() {
            entry.insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    Ok(())
}

/// rust-ini joins a line ending in `\` with the next one; the CLI's
/// configparser has no such continuation and keeps the `\` as a character.
/// A space after it (trimmed from the value again) makes rust-ini read it
/// as the CLI does, so the next line stays a key of its own (a secret one,
/// perhaps, that would otherwise become part of a printed command).
/// Lines and columns do not move. The copy, which may hold the
/// credentials file's secrets, is wiped when dropped, as the text is.
fn without_continuations(text: &str) -> zeroize::Zeroizing<String> {
    zeroize::Zeroizing::new(text.replace("\\\n", "\\ \n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_null_is_an_empty_file() {
        let env = Environment::from_pairs([
            ("HOME", "/nonexistent"),
            ("AWS_CONFIG_FILE", "/dev/null"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
        ]);
        let profiles = load(&env).unwrap();
        assert!(profiles.profiles.is_empty());
    }

    #[test]
    fn watches_dot_aws_and_profile_files_kept_elsewhere() {
        let home = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::create_dir(home.path().join(".aws")).unwrap();
        let h = home.path().to_str().unwrap();
        let config = elsewhere.path().join("aws-config");
        let creds = elsewhere.path().join("aws-creds");
        let env = Environment::from_pairs([
            ("HOME", h),
            ("AWS_CONFIG_FILE", config.to_str().unwrap()),
            ("AWS_SHARED_CREDENTIALS_FILE", creds.to_str().unwrap()),
        ]);
        let targets = watch_targets(&env);
        assert_eq!(targets.len(), 2, "{targets:?}");
        assert_eq!(
            (targets[0].dir.clone(), targets[0].recursive),
            (home.path().join(".aws"), true)
        );
        assert_eq!(targets[1].dir, elsewhere.path());
        assert_eq!(
            targets[1].names,
            Some(vec!["aws-config".into(), "aws-creds".into()])
        );
        // Without ~/.aws and with the files under it: nothing to watch.
        std::fs::remove_dir(home.path().join(".aws")).unwrap();
        assert!(watch_targets(&Environment::from_pairs([("HOME", h)])).is_empty());
    }

    #[test]
    fn file_locations_follow_the_cli() {
        let env = Environment::from_pairs([("HOME", "/h")]);
        assert_eq!(config_file(&env), Some(PathBuf::from("/h/.aws/config")));
        assert_eq!(
            credentials_file(&env),
            Some(PathBuf::from("/h/.aws/credentials"))
        );
        let env = Environment::from_pairs([
            ("HOME", "/h"),
            ("AWS_CONFIG_FILE", "~/c"),
            ("AWS_PROFILE", "p"),
        ]);
        assert_eq!(config_file(&env), Some(PathBuf::from("/h/c")));
        assert_eq!(selected(&env), "p");
        assert_eq!(selected(&Environment::default()), "default");
    }

    #[test]
    fn a_section_header_without_its_bracket_is_refused_without_quoting_it() {
        // The aws_profiles fuzz target: the lines up to the next `]`
        // became the profile's name, secret and all, and names are printed.
        let text = "[profile dev\naws_secret_access_key = hunter2secret\n[x]\n";
        let err = parse_files(None, Some(text)).unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
        let err = parse_files(Some(text), None).unwrap_err();
        assert!(err.contains("no `]`"), "{err}");
    }

    #[test]
    fn a_backslash_at_a_line_end_is_a_character_as_in_the_cli() {
        // The aws_profiles fuzz target: rust-ini made the next line, a
        // session token, part of the command, and commands are printed.
        let text = "[p]\ncredential_process = tool \\\naws_session_token = tok\n";
        let p = parse_files(None, Some(text)).unwrap();
        assert_eq!(p.profiles["p"]["credential_process"], "tool \\");
        assert_eq!(p.profiles["p"]["aws_session_token"], "tok");
    }

    #[test]
    fn credentials_file_keys_win_and_unprefixed_config_sections_are_not_profiles() {
        let p = parse_files(
            Some("[profile a]\naws_access_key_id = FROMCONFIG\n[a2]\nx = 1\n"),
            Some("[a]\naws_access_key_id = FROMCREDS\n"),
        )
        .unwrap();
        assert_eq!(p.profiles["a"]["aws_access_key_id"], "FROMCREDS");
        assert!(!p.profiles.contains_key("a2"));
    }
}
