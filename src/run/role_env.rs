//! The environment a command gets for one role (`imdsd exec`, `imdsd
//! env`), decided from where the daemon serves the role. Pure; names no
//! secret: a token *file*, never a token.
//!
//! The container endpoint is preferred (SDKs consult it before IMDS, and
//! its token file lets file permissions decide who gets the role); a role
//! served only over IMDS gets the IMDS endpoint variable. Variables that
//! would make an SDK pick other credentials first are removed.

use std::fmt::Write;

use crate::control::endpoints::Endpoints;

/// What an SDK reads before the container and IMDS providers, or that
/// points them elsewhere: removed.
pub(crate) const CONFLICTING: [&str; 13] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_EC2_METADATA_DISABLED",
];

const FULL_URI: &str = "AWS_CONTAINER_CREDENTIALS_FULL_URI";
const TOKEN_FILE: &str = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE";
const IMDS_ENDPOINT: &str = "AWS_EC2_METADATA_SERVICE_ENDPOINT";
const IMDS_MODE: &str = "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE";

/// Variables to set and to remove.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RoleEnv {
    pub(crate) set: Vec<(&'static str, String)>,
    pub(crate) unset: Vec<&'static str>,
    /// Said on stderr when the profile files are hidden.
    pub(crate) note: Option<String>,
    /// The token file the command must be able to read, if any.
    pub(crate) token_file: Option<String>,
}

/// Why a role has no environment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RoleEnvError {
    #[error("the daemon has no role named `{role}` (roles: {known})")]
    NoSuchRole { role: String, known: String },
    #[error(
        "role `{0}` is not served by any listener: add it to a [[container]] (or [[imds]]) listener"
    )]
    NotServed(String),
}

/// What the current environment holds that matters here.
#[derive(Debug, Clone, Default)]
pub(crate) struct Current {
    /// `NO_PROXY` (or `no_proxy`) as it is.
    pub(crate) no_proxy: Option<String>,
    /// What in the AWS profile files SDKs would use before the daemon's
    /// credentials (`profile::shadow`'s warnings): hidden when any.
    pub(crate) profile_shadows: Vec<String>,
}

/// The environment for `role`.
pub(crate) fn for_role(
    endpoints: &Endpoints,
    role: &str,
    current: &Current,
) -> Result<RoleEnv, RoleEnvError> {
    let Some(served) = endpoints.roles.get(role) else {
        let known: Vec<&str> = endpoints.roles.keys().map(String::as_str).collect();
        return Err(RoleEnvError::NoSuchRole {
            role: role.into(),
            known: known.join(", "),
        });
    };
    let mut env = RoleEnv {
        unset: CONFLICTING.to_vec(),
        ..RoleEnv::default()
    };
    let url = if let Some(container) = served.container.first() {
        env.set.push((FULL_URI, container.url.clone()));
        env.set.push((TOKEN_FILE, container.token_file.clone()));
        env.token_file = Some(container.token_file.clone());
        container.url.clone()
    } else if let Some(imds) = served.imds.first() {
        env.set.push((IMDS_ENDPOINT, imds.clone()));
        env.unset.extend([FULL_URI, TOKEN_FILE, IMDS_MODE]);
        imds.clone()
    } else {
        return Err(RoleEnvError::NotServed(role.into()));
    };
    let region = served.region.as_ref().unwrap_or(&endpoints.region);
    env.set.push(("AWS_REGION", region.clone()));
    env.set.push(("AWS_DEFAULT_REGION", region.clone()));
    let no_proxy = with_host(current.no_proxy.as_deref(), host_of(&url));
    env.set.push(("NO_PROXY", no_proxy.clone()));
    env.set.push(("no_proxy", no_proxy));
    if !current.profile_shadows.is_empty() {
        env.set.push(("AWS_CONFIG_FILE", "/dev/null".into()));
        env.set
            .push(("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()));
        env.note = Some(format!(
            "{}\nimdsd: for this command, hiding the AWS profile files \
             (AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null)",
            current.profile_shadows.join("\n")
        ));
    }
    Ok(env)
}

/// The host of `http://HOST[:PORT]/...`.
fn host_of(url: &str) -> &str {
    let rest = url.trim_start_matches("http://");
    let authority = rest.split('/').next().unwrap_or(rest);
    match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => authority.split(':').next().unwrap_or(authority),
    }
}

/// `list` with `host` added, unless it is there already (botocore sends
/// metadata requests through `HTTP_PROXY` otherwise).
fn with_host(list: Option<&str>, host: &str) -> String {
    let list = list.unwrap_or("").trim();
    if list.split(',').any(|h| h.trim() == host) {
        return list.to_string();
    }
    if list.is_empty() {
        host.to_string()
    } else {
        format!("{list},{host}")
    }
}

/// `env` as `export`/`unset` lines for sh, bash and zsh.
pub(crate) fn sh(env: &RoleEnv) -> String {
    let mut out = String::new();
    for name in &env.unset {
        let _ = writeln!(out, "unset {name}");
    }
    for (name, value) in &env.set {
        let _ = writeln!(out, "export {name}='{}'", value.replace('\'', r"'\''"));
    }
    out
}

/// `env` as `set -e`/`set -gx` lines for fish.
pub(crate) fn fish(env: &RoleEnv) -> String {
    let mut out = String::new();
    for name in &env.unset {
        let _ = writeln!(out, "set -e {name}");
    }
    for (name, value) in &env.set {
        let quoted = value.replace('\\', r"\\").replace('\'', r"\'");
        let _ = writeln!(out, "set -gx {name} '{quoted}'");
    }
    out
}

/// `env` as one JSON object: each variable to set with its value, each to
/// remove with `null`.
pub(crate) fn json(env: &RoleEnv) -> String {
    let mut map = serde_json::Map::new();
    for name in &env.unset {
        map.insert((*name).into(), serde_json::Value::Null);
    }
    for (name, value) in &env.set {
        map.insert((*name).into(), value.clone().into());
    }
    serde_json::Value::Object(map).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::endpoints::{ContainerEndpoint, RoleEndpoints};

    fn endpoints() -> Endpoints {
        let mut e = Endpoints {
            region: "eu-west-1".into(),
            ..Endpoints::default()
        };
        e.roles.insert(
            "dev".into(),
            RoleEndpoints {
                container: vec![ContainerEndpoint {
                    url: "http://127.0.0.1:16927/role/dev".into(),
                    token_file: "/run/t/dev.token".into(),
                }],
                imds: vec!["http://127.0.0.1:16925".into()],
                region: None,
            },
        );
        e.roles.insert(
            "ops".into(),
            RoleEndpoints {
                container: vec![],
                imds: vec!["http://[::1]:16930".into()],
                region: Some("ap-south-1".into()),
            },
        );
        e.roles.insert("idle".into(), RoleEndpoints::default());
        e
    }

    fn value<'a>(env: &'a RoleEnv, name: &str) -> Option<&'a str> {
        env.set
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn the_container_endpoint_wins_and_conflicting_variables_go() {
        let env = for_role(&endpoints(), "dev", &Current::default()).unwrap();
        assert_eq!(
            value(&env, FULL_URI),
            Some("http://127.0.0.1:16927/role/dev")
        );
        assert_eq!(value(&env, TOKEN_FILE), Some("/run/t/dev.token"));
        assert_eq!(value(&env, IMDS_ENDPOINT), None);
        assert_eq!(value(&env, "AWS_REGION"), Some("eu-west-1"));
        assert_eq!(value(&env, "AWS_DEFAULT_REGION"), Some("eu-west-1"));
        assert_eq!(value(&env, "NO_PROXY"), Some("127.0.0.1"));
        for name in [
            "AWS_ACCESS_KEY_ID",
            "AWS_PROFILE",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        ] {
            assert!(env.unset.contains(&name), "{name}");
        }
        assert_eq!(env.token_file.as_deref(), Some("/run/t/dev.token"));
        assert!(env.note.is_none());
        let ops = for_role(&endpoints(), "ops", &Current::default()).unwrap();
        assert_eq!(
            value(&ops, "AWS_REGION"),
            Some("ap-south-1"),
            "a profile's own region"
        );
        assert_eq!(value(&ops, "AWS_DEFAULT_REGION"), Some("ap-south-1"));
    }

    #[test]
    fn an_imds_only_role_gets_the_imds_endpoint() {
        let current = Current {
            no_proxy: Some("example.com, ::1".into()),
            ..Current::default()
        };
        let env = for_role(&endpoints(), "ops", &current).unwrap();
        assert_eq!(value(&env, IMDS_ENDPOINT), Some("http://[::1]:16930"));
        assert!(env.unset.contains(&FULL_URI) && env.unset.contains(&TOKEN_FILE));
        assert_eq!(value(&env, "NO_PROXY"), Some("example.com, ::1"));
        assert_eq!(env.token_file, None);
    }

    #[test]
    fn unknown_and_unserved_roles_are_clear_errors() {
        let err = for_role(&endpoints(), "nope", &Current::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the daemon has no role named `nope` (roles: dev, idle, ops)"
        );
        let err = for_role(&endpoints(), "idle", &Current::default()).unwrap_err();
        assert!(
            err.to_string().contains("not served by any listener"),
            "{err}"
        );
    }

    #[test]
    fn profile_credentials_that_would_win_are_hidden() {
        let current = Current {
            profile_shadows: vec![
                "/h/.aws/credentials: the default profile has ...".into(),
            ],
            ..Current::default()
        };
        let env = for_role(&endpoints(), "dev", &current).unwrap();
        assert_eq!(
            value(&env, "AWS_SHARED_CREDENTIALS_FILE"),
            Some("/dev/null")
        );
        assert_eq!(value(&env, "AWS_CONFIG_FILE"), Some("/dev/null"));
        let note = env.note.unwrap();
        assert!(
            note.starts_with("/h/.aws/credentials: the default"),
            "{note}"
        );
        assert!(note.contains("hiding the AWS profile files"), "{note}");
    }

    #[test]
    fn shells_get_quoted_values_and_json_gets_nulls() {
        let env = RoleEnv {
            set: vec![("A", "it's \\ here".into())],
            unset: vec!["B"],
            ..RoleEnv::default()
        };
        assert_eq!(sh(&env), "unset B\nexport A='it'\\''s \\ here'\n");
        assert_eq!(fish(&env), "set -e B\nset -gx A 'it\\'s \\\\ here'\n");
        assert_eq!(json(&env), r#"{"A":"it's \\ here","B":null}"#);
    }
}
