//! The zero-config start: with no config file at all, serve what the AWS
//! CLI would use. Pure: decides from the environment and the parsed
//! profiles.
//!
//! In order: an IRSA-style web identity (`AWS_ROLE_ARN` +
//! `AWS_WEB_IDENTITY_TOKEN_FILE`); the profile named by `AWS_PROFILE`
//! (else `default`) when it exists, resolved like the CLI does (long-term
//! keys become GetSessionToken session credentials); else long-term keys in
//! the environment, also through GetSessionToken.

use std::collections::BTreeMap;
use std::time::Duration;

use super::load::parse;
use super::{Config, Flow, RoleConfig, SourceSpec};
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
    // Defaults for listeners and [sts] come from an empty role table.
    let base = |role: RoleConfig| -> Result<Config, String> {
        let text = "[roles.placeholder]\nrole_arn = \"arn:aws:iam::000000000000:role/placeholder\"\nsource = \"env\"\n";
        let (config, diags) = parse(text, env);
        let mut config = config.ok_or_else(|| format!("{diags:?}"))?;
        config.listeners[0].role = role.name.clone();
        config.roles = BTreeMap::from([(role.name.clone(), role)]);
        config.watch_config = false;
        Ok(config)
    };
    if let (Some(arn), Some(_)) = (
        env.get("AWS_ROLE_ARN"),
        env.get("AWS_WEB_IDENTITY_TOKEN_FILE"),
    ) {
        let text = "[roles.web-identity]\nsource = \"web_identity_env\"\n";
        let (config, diags) = parse(text, env);
        let mut config = config.ok_or_else(|| {
            diags
                .iter()
                .map(|d| d.message.clone())
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        config.watch_config = false;
        return Ok(ZeroConfig {
            config,
            serves: format!("the web identity role {arn} (AWS_ROLE_ARN)"),
        });
    }
    let profile = crate::profile::selected(env);
    if profiles.profiles.contains_key(&profile) {
        profiles.plan(&profile).map_err(|e| e.to_string())?;
        let role = RoleConfig {
            name: role_name(&profile),
            duration: Duration::from_secs(3600),
            flow: Flow::Profile {
                name: profile.clone(),
                mfa_command: None,
            },
        };
        return Ok(ZeroConfig {
            config: base(role)?,
            serves: format!("AWS profile `{profile}`"),
        });
    }
    if env.get("AWS_ACCESS_KEY_ID").is_some()
        && env.get("AWS_SECRET_ACCESS_KEY").is_some()
    {
        let role = RoleConfig {
            name: "env".into(),
            duration: Duration::from_secs(12 * 3600),
            flow: Flow::SessionToken {
                source: SourceSpec::Env,
                mfa: None,
            },
        };
        return Ok(ZeroConfig {
            config: base(role)?,
            serves:
                "session credentials (GetSessionToken) for the keys in AWS_ACCESS_KEY_ID"
                    .into(),
        });
    }
    Err(format!(
        "profile `{profile}` is not in the AWS config or credentials file, and AWS_ACCESS_KEY_ID is not set"
    ))
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
    use super::*;
    use crate::profile::parse_files;

    #[test]
    fn serves_the_selected_profile() {
        let profiles = parse_files(Some("[profile work]\nrole_arn = arn:aws:iam::123456789012:role/w\nsource_profile = base\n[profile base]\n"), Some("[base]\naws_access_key_id = A\naws_secret_access_key = s\n")).unwrap();
        let env = Environment::from_pairs([("AWS_PROFILE", "work")]);
        let z = zero_config(&env, &profiles).unwrap();
        assert_eq!(z.config.listeners[0].listen.to_string(), "127.0.0.1:16925");
        assert_eq!(z.config.listeners[0].role, "work");
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
        let err = zero_config(&Environment::default(), &Profiles::default()).unwrap_err();
        assert!(err.contains("profile `default`"), "{err}");
    }

    #[test]
    fn a_broken_profile_is_reported() {
        let profiles = parse_files(
            Some("[default]\nrole_arn = arn:aws:iam::123456789012:role/x\n"),
            None,
        )
        .unwrap();
        let err = zero_config(&Environment::default(), &profiles).unwrap_err();
        assert!(err.contains("source_profile"), "{err}");
    }
}
