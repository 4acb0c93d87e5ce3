//! What would make an SDK use other credentials than imdsd's, or never
//! reach imdsd at all (pure): SDK chains read the shared files' default
//! profile before IMDS and the container endpoint, and send the metadata
//! request through `HTTP_PROXY` unless `NO_PROXY` names the host. The
//! daemon at start, `imdsd status`, `setup --user`, `exec` and `env` all
//! ask this one function.
//!
//! Only key *names* come in, never values: a warning names the file and
//! the profile, not the key.

use std::path::PathBuf;

use super::resolve::CREDENTIAL_KEYS;
use crate::environment::Environment;

/// The host imdsd's endpoints listen on, which `NO_PROXY` must name.
const LOOPBACK: &str = "127.0.0.1";

/// One AWS profile file and the key names of its `[default]` profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DefaultProfile {
    pub(crate) path: PathBuf,
    /// `~/.aws/credentials` (`[default]`) rather than `~/.aws/config`.
    pub(crate) credentials_file: bool,
    pub(crate) keys: Vec<String>,
    /// Its `credential_process` is imdsd's own (`imdsd import` wrote it).
    pub(crate) imdsd_process: bool,
}

/// Something that wins over imdsd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Shadow {
    /// The default profile holds credentials of some kind (access keys,
    /// an SSO session, a role, a `credential_process`).
    DefaultCredentials {
        path: PathBuf,
        credentials_file: bool,
        /// The first key that makes it so (a name, never a value).
        key: &'static str,
    },
    /// The default profile's only credentials are imdsd's own
    /// `credential_process` (after `imdsd import`): SDKs reach imdsd
    /// through it, so it is no warning; but `exec` and `env` still hide it,
    /// or SDKs would ask it before the role's endpoint.
    ImdsdProcess { path: PathBuf },
    /// A proxy is set and `NO_PROXY` does not name 127.0.0.1.
    Proxy {
        /// `HTTP_PROXY` or `http_proxy`.
        proxy_var: &'static str,
        /// `NO_PROXY` or `no_proxy`: the one set, else `NO_PROXY`.
        no_proxy_var: &'static str,
        /// Its value now (not a secret, unlike the proxy's URL).
        no_proxy: Option<String>,
    },
}

/// Everything in `env` and the profile files that would take SDKs
/// elsewhere than imdsd. `AWS_PROFILE` selects another profile, so the
/// default one's keys do not count then.
pub(crate) fn shadowing(env: &Environment, files: &[DefaultProfile]) -> Vec<Shadow> {
    let mut out = Vec::new();
    if env
        .first_of(&["AWS_PROFILE", "AWS_DEFAULT_PROFILE"])
        .is_none()
    {
        out.extend(files.iter().filter_map(|f| {
            let key = CREDENTIAL_KEYS
                .into_iter()
                .find(|k| f.keys.iter().any(|have| have == k))?;
            if key == "credential_process" && f.imdsd_process {
                return Some(Shadow::ImdsdProcess {
                    path: f.path.clone(),
                });
            }
            Some(Shadow::DefaultCredentials {
                path: f.path.clone(),
                credentials_file: f.credentials_file,
                key,
            })
        }));
    }
    out.extend(proxy(env));
    out
}

fn proxy(env: &Environment) -> Option<Shadow> {
    let proxy_var = ["HTTP_PROXY", "http_proxy"]
        .into_iter()
        .find(|v| env.get(v).is_some())?;
    let (no_proxy_var, no_proxy) = ["NO_PROXY", "no_proxy"]
        .into_iter()
        .find_map(|v| env.get(v).map(|value| (v, Some(value.to_string()))))
        .unwrap_or(("NO_PROXY", None));
    let named = no_proxy.as_deref().is_some_and(|list| {
        list.split(',')
            .map(str::trim)
            .any(|h| h == LOOPBACK || h == "*")
    });
    (!named).then_some(Shadow::Proxy {
        proxy_var,
        no_proxy_var,
        no_proxy,
    })
}

impl std::fmt::Display for Shadow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Shadow::DefaultCredentials {
                path,
                credentials_file,
                key,
            } => {
                let renamed = if *credentials_file {
                    "[static]"
                } else {
                    "[profile static]"
                };
                write!(
                    f,
                    "{}: the default profile has `{key}`, so SDKs take their credentials \
                     from it before they ask imdsd (`aws` ignores imdsd): ",
                    path.display()
                )?;
                if *key == "aws_access_key_id" {
                    f.write_str(
                        "run `imdsd import default` to move the keys into the Secret \
                         Service (tools reading the profile then get them through imdsd), \
                         or ",
                    )?;
                }
                write!(
                    f,
                    "rename its section header there to `{renamed}` (imdsd can still use \
                     it, as `source = \"profile:static\"`)"
                )
            }
            Shadow::ImdsdProcess { path } => write!(
                f,
                "{}: the default profile's credential_process is imdsd's own (`imdsd \
                 import`): SDKs would run it before they ask the role's endpoint",
                path.display()
            ),
            Shadow::Proxy {
                proxy_var,
                no_proxy_var,
                no_proxy,
            } => {
                let value = match no_proxy {
                    Some(list) => format!("{list},{LOOPBACK}"),
                    None => LOOPBACK.into(),
                };
                write!(
                    f,
                    "{proxy_var} is set and {no_proxy_var} does not name {LOOPBACK}: SDKs \
                     would ask the proxy for imdsd's credentials; run \
                     `export {no_proxy_var}={value}`"
                )
            }
        }
    }
}

/// The warnings, as lines: imdsd's own `credential_process` is none.
pub(crate) fn warnings(env: &Environment, files: &[DefaultProfile]) -> Vec<String> {
    shadowing(env, files)
        .iter()
        .filter(|s| !matches!(s, Shadow::ImdsdProcess { .. }))
        .map(Shadow::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(keys: &[&str]) -> DefaultProfile {
        DefaultProfile {
            path: PathBuf::from("/h/.aws/credentials"),
            credentials_file: true,
            keys: keys.iter().map(|k| k.to_string()).collect(),
            imdsd_process: false,
        }
    }

    #[test]
    fn keys_in_the_default_profile_shadow_imdsd_and_name_the_file() {
        let files = [
            creds(&["aws_access_key_id", "aws_secret_access_key"]),
            DefaultProfile {
                path: PathBuf::from("/h/.aws/config"),
                credentials_file: false,
                keys: vec!["region".into()],
                imdsd_process: false,
            },
        ];
        let found = shadowing(&Environment::default(), &files);
        assert_eq!(
            found,
            [Shadow::DefaultCredentials {
                path: PathBuf::from("/h/.aws/credentials"),
                credentials_file: true,
                key: "aws_access_key_id",
            }]
        );
        let text = found[0].to_string();
        assert!(
            text.starts_with(
                "/h/.aws/credentials: the default profile has `aws_access_key_id`"
            ),
            "{text}"
        );
        assert!(text.contains("to `[static]`"), "{text}");
        assert!(text.contains("run `imdsd import default`"), "{text}");
    }

    #[test]
    fn imdsds_own_credential_process_is_no_warning_but_still_shadows() {
        let config = DefaultProfile {
            path: PathBuf::from("/h/.aws/config"),
            credentials_file: false,
            keys: vec!["region".into(), "credential_process".into()],
            imdsd_process: true,
        };
        let env = Environment::default();
        assert!(warnings(&env, std::slice::from_ref(&config)).is_empty());
        let found = shadowing(&env, std::slice::from_ref(&config));
        assert_eq!(
            found,
            [Shadow::ImdsdProcess {
                path: PathBuf::from("/h/.aws/config")
            }]
        );
        assert!(
            found[0]
                .to_string()
                .contains("credential_process is imdsd's own")
        );
        // Someone else's helper is a warning, without the import advice.
        let other = DefaultProfile {
            imdsd_process: false,
            ..config
        };
        let text = warnings(&env, &[other]);
        assert_eq!(text.len(), 1);
        assert!(!text[0].contains("imdsd import"), "{}", text[0]);
    }

    #[test]
    fn an_sso_default_profile_in_the_config_file_shadows_too() {
        let config = DefaultProfile {
            path: PathBuf::from("/h/.aws/config"),
            credentials_file: false,
            keys: vec!["region".into(), "sso_session".into()],
            imdsd_process: false,
        };
        let text = warnings(&Environment::default(), &[config]);
        assert_eq!(text.len(), 1);
        assert!(
            text[0].starts_with("/h/.aws/config: the default profile has `sso_session`")
        );
        assert!(text[0].contains("`[profile static]`"), "{}", text[0]);
    }

    #[test]
    fn no_keys_or_another_selected_profile_is_no_warning() {
        assert!(shadowing(&Environment::default(), &[creds(&["region"])]).is_empty());
        let env = Environment::from_pairs([("AWS_PROFILE", "work")]);
        assert!(shadowing(&env, &[creds(&["aws_access_key_id"])]).is_empty());
    }

    #[test]
    fn a_proxy_without_loopback_in_no_proxy_is_a_warning_with_the_line_to_run() {
        let env = Environment::from_pairs([("HTTP_PROXY", "http://u:pw@proxy:3128")]);
        let text = warnings(&env, &[]);
        assert_eq!(
            text,
            [
                "HTTP_PROXY is set and NO_PROXY does not name 127.0.0.1: SDKs would ask the \
              proxy for imdsd's credentials; run `export NO_PROXY=127.0.0.1`"
            ]
        );
        assert!(
            !text[0].contains("pw@proxy"),
            "the proxy URL may hold a password"
        );
        let env = Environment::from_pairs([
            ("http_proxy", "http://proxy:3128"),
            ("no_proxy", "localhost,.corp"),
        ]);
        assert!(
            warnings(&env, &[])[0]
                .ends_with("`export no_proxy=localhost,.corp,127.0.0.1`")
        );
    }

    #[test]
    fn a_proxy_with_loopback_in_no_proxy_is_fine() {
        for list in ["127.0.0.1", "localhost, 127.0.0.1", "*"] {
            let env = Environment::from_pairs([
                ("HTTP_PROXY", "http://p:1"),
                ("NO_PROXY", list),
            ]);
            assert!(shadowing(&env, &[]).is_empty(), "{list}");
        }
        assert!(shadowing(&Environment::default(), &[]).is_empty());
    }
}
