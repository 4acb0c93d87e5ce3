//! The zero-config start: with no config file at all, serve what the AWS
//! CLI would use. Pure: decides from the environment and the parsed
//! profiles.
//!
//! In the order every SDK looks: long-term keys in the environment (served
//! as GetSessionToken session credentials); an IRSA-style web identity
//! (`AWS_ROLE_ARN` + `AWS_WEB_IDENTITY_TOKEN_FILE`); the profile named by
//! `AWS_PROFILE` (else `default`) when it exists, resolved like the CLI
//! does (long-term keys become session credentials too).

use std::collections::BTreeMap;

use super::listeners::DEFAULT_LISTEN;
use super::profile_refs::ProfileFacts;
use super::roles::{
    DEFAULT_DURATION, DEFAULT_SESSION_TOKEN_DURATION, default_session_name,
    role_arn_problem,
};
use super::validate::default_sts;
use super::value::name_problem;
use super::{
    Config, Flow, ListenerConfig, Protocol, RoleConfig, SourceSpec, WebIdentity,
};
use crate::environment::Environment;
use crate::profile::Profiles;

/// A config built without a file, and a sentence saying what it serves.
#[derive(Debug)]
pub(crate) struct ZeroConfig {
    pub(crate) config: Config,
    pub(crate) serves: String,
}

/// What to serve with no config file, or why there is nothing.
pub(crate) fn zero_config(
    env: &Environment,
    profiles: &Profiles,
) -> Result<ZeroConfig, String> {
    let (role, serves) = zero_role(env, profiles)?;
    let listen = DEFAULT_LISTEN.parse().expect("the default address parses");
    let config = Config {
        listeners: vec![ListenerConfig {
            listen,
            allow_uids: None,
            protocol: Protocol::Imds {
                role: role.name.clone(),
                allow_v1: false,
            },
        }],
        sts: default_sts(env, ProfileFacts::Read(profiles))?,
        roles: BTreeMap::from([(role.name.clone(), role)]),
        admin: None,
        control_socket: None,
        // There is no file to watch.
        watch_config: false,
        limits: Default::default(),
        audit: None,
        profiles: Default::default(),
    };
    Ok(ZeroConfig { config, serves })
}

/// The one role to serve, and a sentence saying what it is.
fn zero_role(
    env: &Environment,
    profiles: &Profiles,
) -> Result<(RoleConfig, String), String> {
    if let Some(found) = env_keys_session(env) {
        return Ok(found);
    }
    if let Some(role) = web_identity_from_env(env)? {
        let serves = format!("the web identity role {} (AWS_ROLE_ARN)", role_arn(&role));
        return Ok((role, serves));
    }
    let profile = crate::profile::selected(env);
    // With any profile at all, the daemon starts: the others are served on
    // demand, and this one's 503 (and the log) say what it lacks.
    if !profiles.profiles.is_empty() {
        let serves = match profiles.plan(&profile) {
            Ok(_) => format!("AWS profile `{profile}`"),
            Err(e) => {
                format!("AWS profile `{profile}`, which gives no credentials yet ({e})")
            }
        };
        let role = RoleConfig {
            name: role_name(&profile),
            duration: DEFAULT_DURATION,
            flow: Flow::Profile {
                name: profile.clone(),
                mfa_command: None,
            },
        };
        return Ok((role, serves));
    }
    Err(format!(
        "AWS_ACCESS_KEY_ID is not set, nor AWS_ROLE_ARN with AWS_WEB_IDENTITY_TOKEN_FILE, \
         and profile `{profile}` is not in the AWS config or credentials file"
    ))
}

/// Long-term keys in the environment, served as GetSessionToken session
/// credentials, if both halves are set.
fn env_keys_session(env: &Environment) -> Option<(RoleConfig, String)> {
    env.get("AWS_ACCESS_KEY_ID")?;
    env.get("AWS_SECRET_ACCESS_KEY")?;
    let role = RoleConfig {
        name: "env".into(),
        duration: DEFAULT_SESSION_TOKEN_DURATION,
        flow: Flow::SessionToken {
            source: SourceSpec::Env,
            mfa: None,
        },
    };
    let serves =
        "session credentials (GetSessionToken) for the keys in AWS_ACCESS_KEY_ID";
    Some((role, serves.into()))
}

/// An IRSA-style web identity role (`AWS_ROLE_ARN` +
/// `AWS_WEB_IDENTITY_TOKEN_FILE`), if the environment names one.
fn web_identity_from_env(env: &Environment) -> Result<Option<RoleConfig>, String> {
    let (Some(arn), Some(token_file)) = (
        env.get("AWS_ROLE_ARN"),
        env.get("AWS_WEB_IDENTITY_TOKEN_FILE"),
    ) else {
        return Ok(None);
    };
    if let Some(problem) = role_arn_problem(arn) {
        return Err(format!("AWS_ROLE_ARN: {problem}"));
    }
    let session_name = match env.get("AWS_ROLE_SESSION_NAME") {
        Some(name) => match name_problem(name, 2, 64, "") {
            Some(problem) => return Err(format!("AWS_ROLE_SESSION_NAME: {problem}")),
            None => name.to_string(),
        },
        None => default_session_name(env),
    };
    Ok(Some(RoleConfig {
        name: "web-identity".into(),
        duration: DEFAULT_DURATION,
        flow: Flow::WebIdentity(WebIdentity {
            role_arn: arn.into(),
            token_file: token_file.into(),
            session_name,
            session: Default::default(),
        }),
    }))
}

fn role_arn(role: &RoleConfig) -> &str {
    role.role_arn().unwrap_or_default()
}

/// A profile name as a role name (the IMDS path segment).
fn role_name(profile: &str) -> String {
    let name: String = profile
        .chars()
        .map(|c| {
            if super::value::is_iam_name_char(c) {
                c
            } else {
                '-'
            }
        })
        .take(128)
        .collect();
    if name.is_empty() {
        "default".into()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::profile::parse_files;

    #[test]
    fn serves_the_selected_profile() {
        let profiles = parse_files(Some("[profile work]\nrole_arn = arn:aws:iam::123456789012:role/w\nsource_profile = base\n[profile base]\n"), Some("[base]\naws_access_key_id = A\naws_secret_access_key = s\n")).unwrap();
        let env = Environment::from_pairs([("AWS_PROFILE", "work")]);
        let z = zero_config(&env, &profiles).unwrap();
        assert_eq!(z.config.listeners[0].listen.to_string(), "127.0.0.1:16925");
        assert_eq!(z.config.listeners[0].roles(), ["work"]);
        assert!(
            matches!(&z.config.roles["work"].flow, Flow::Profile { name, .. } if name == "work")
        );
        assert!(!z.config.watch_config);
        assert!(z.serves.contains("`work`"));
    }

    #[test]
    fn web_identity_environment_wins() {
        let env = Environment::from_pairs([
            ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/app"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token"),
        ]);
        let z = zero_config(&env, &Profiles::default()).unwrap();
        assert!(
            matches!(&z.config.roles["web-identity"].flow, Flow::WebIdentity(w) if w.role_arn.ends_with("role/app"))
        );
        assert_eq!(z.config.listeners[0].roles(), ["web-identity"]);
        assert_eq!(
            z.serves,
            "the web identity role arn:aws:iam::123456789012:role/app (AWS_ROLE_ARN)"
        );
        let env = Environment::from_pairs([
            ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/app"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token"),
            ("AWS_ROLE_SESSION_NAME", "has space"),
        ]);
        let err = zero_config(&env, &Profiles::default()).unwrap_err();
        assert!(err.starts_with("AWS_ROLE_SESSION_NAME: "), "{err}");
    }

    #[test]
    fn environment_keys_become_a_session_and_nothing_is_an_error() {
        let env = Environment::from_pairs([
            ("AWS_ACCESS_KEY_ID", "AKIA"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
        ]);
        let z = zero_config(&env, &Profiles::default()).unwrap();
        assert!(matches!(
            z.config.roles["env"].flow,
            Flow::SessionToken {
                source: SourceSpec::Env,
                ..
            }
        ));
        assert_eq!(
            z.config.roles["env"].duration,
            Duration::from_secs(12 * 3600)
        );
        let err = zero_config(&Environment::default(), &Profiles::default()).unwrap_err();
        assert!(err.contains("profile `default`"), "{err}");
    }

    /// A `[default]` profile with only a region does not hide the keys in
    /// the environment, which every SDK takes first.
    #[test]
    fn environment_keys_come_before_the_profile_and_web_identity() {
        let profiles =
            parse_files(Some("[default]\nregion = eu-west-1\n"), None).unwrap();
        let env = Environment::from_pairs([
            ("AWS_ACCESS_KEY_ID", "AKIA"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/app"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token"),
        ]);
        let z = zero_config(&env, &profiles).unwrap();
        assert_eq!(z.config.listeners[0].roles(), ["env"]);
        let only_key_id = Environment::from_pairs([("AWS_ACCESS_KEY_ID", "AKIA")]);
        let z = zero_config(&only_key_id, &profiles).unwrap();
        assert!(
            z.serves.contains("gives no credentials yet"),
            "{}",
            z.serves
        );
    }

    /// The daemon starts all the same (the other profiles are served on
    /// demand); what it serves says what is wrong.
    #[test]
    fn a_broken_or_missing_default_profile_is_reported_and_served_anyway() {
        let profiles = parse_files(
            Some("[default]\nrole_arn = arn:aws:iam::123456789012:role/x\n"),
            None,
        )
        .unwrap();
        let z = zero_config(&Environment::default(), &profiles).unwrap();
        assert!(z.serves.contains("source_profile"), "{}", z.serves);
        let others =
            parse_files(Some("[profile work]\nregion = eu-west-1\n"), None).unwrap();
        let z = zero_config(&Environment::default(), &others).unwrap();
        assert_eq!(z.config.listeners[0].roles(), ["default"]);
        assert!(
            z.serves
                .contains("profile `default` is not in the AWS config"),
            "{}",
            z.serves
        );
    }
}
