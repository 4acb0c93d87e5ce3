//! Resolving an AWS profile into a plan, as the AWS CLI does, from the
//! parsed config and credentials files. Pure: no file or network access.
//!
//! A plan is a base (static keys, a `credential_process`, a web-identity
//! token, an SSO role, or the platform's credentials) followed by zero or
//! more AssumeRole hops (`role_arn` + `source_profile` chains).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use super::ProfileError;
use crate::secret::Secret;

/// One profile's keys, merged from both files (credentials file wins).
pub(crate) type Section = HashMap<String, String>;

/// Everything in the two files.
#[derive(Default, Clone)]
pub(crate) struct Profiles {
    pub(crate) profiles: HashMap<String, Section>,
    pub(crate) sso_sessions: HashMap<String, Section>,
}

// Sections hold `aws_secret_access_key` and `aws_session_token`: print
// names only.
impl std::fmt::Debug for Profiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.profiles.keys().collect();
        names.sort();
        f.debug_struct("Profiles")
            .field("profiles", &names)
            .finish()
    }
}

impl Drop for Profiles {
    fn drop(&mut self) {
        for section in self.profiles.values_mut() {
            for value in section.values_mut() {
                zeroize::Zeroize::zeroize(value);
            }
        }
    }
}

/// Keys that make a profile a source of credentials (SDKs use such a
/// default profile before IMDS: `profile::shadow`).
pub(crate) const CREDENTIAL_KEYS: [&str; 7] = [
    "aws_access_key_id",
    "role_arn",
    "credential_process",
    "credential_source",
    "web_identity_token_file",
    "sso_session",
    "sso_start_url",
];

impl Profiles {
    /// The long-term keys profile `name` itself holds (`aws_access_key_id`
    /// and `aws_secret_access_key`, and a session token if any).
    pub(crate) fn static_keys(
        &self,
        name: &str,
    ) -> Option<crate::credentials::Credentials> {
        let section = self.profiles.get(name)?;
        let value = |key: &str| section.get(key).filter(|v| !v.is_empty());
        Some(crate::credentials::Credentials {
            access_key_id: value("aws_access_key_id")?.clone(),
            secret_access_key: Secret::new(value("aws_secret_access_key")?),
            session_token: value("aws_session_token").map(Secret::new),
            expiration: None,
        })
    }

    /// Every profile that holds long-term keys of its own, sorted.
    pub(crate) fn with_static_keys(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .profiles
            .keys()
            .map(String::as_str)
            .filter(|n| self.static_keys(n).is_some())
            .collect();
        names.sort_unstable();
        names
    }
}

/// How to get credentials for a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) base: Base,
    pub(crate) hops: Vec<Hop>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Base {
    Static {
        access_key_id: String,
        secret_access_key: Secret,
        session_token: Option<Secret>,
    },
    Process(String),
    /// Long-term keys in the Secret Service, under this profile name: the
    /// profile's `credential_process` is imdsd's own (`imdsd import` wrote
    /// it), which the daemon must never run for itself.
    Stored(String),
    WebIdentity {
        role_arn: String,
        token_file: PathBuf,
        session_name: Option<String>,
    },
    Sso(Sso),
    Environment,
    Imds,
    Container,
}

/// An IAM Identity Center role and where its login token is cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sso {
    pub(crate) account_id: String,
    pub(crate) role_name: String,
    pub(crate) region: String,
    pub(crate) start_url: String,
    /// The `sso_session` name when there is one: the token cache is keyed
    /// by it; legacy profiles key the cache by the start URL.
    pub(crate) session: Option<String>,
    pub(crate) profile: String,
}

/// An AssumeRole step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hop {
    pub(crate) role_arn: String,
    pub(crate) session_name: Option<String>,
    pub(crate) external_id: Option<String>,
    pub(crate) mfa_serial: Option<String>,
    pub(crate) duration: Option<Duration>,
}

impl Profiles {
    /// Resolves `name` into a plan.
    pub(crate) fn plan(&self, name: &str) -> Result<Plan, ProfileError> {
        let mut visited = Vec::new();
        self.plan_inner(name, &mut visited)
    }

    fn section(&self, name: &str) -> Result<&Section, ProfileError> {
        self.profiles
            .get(name)
            .ok_or_else(|| ProfileError::NoProfile(name.into()))
    }

    fn plan_inner(
        &self,
        name: &str,
        visited: &mut Vec<String>,
    ) -> Result<Plan, ProfileError> {
        if visited.iter().any(|v| v == name) {
            visited.push(name.into());
            return Err(ProfileError::Cycle(visited.join(" -> ")));
        }
        visited.push(name.into());
        let p = self.section(name)?;
        let get = |k: &str| p.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        if let Some(role_arn) = get("role_arn") {
            return self.role_plan(name, p, role_arn, visited);
        }
        if get("sso_session").is_some() || get("sso_start_url").is_some() {
            return Ok(Plan {
                base: Base::Sso(self.sso(name, p)?),
                hops: vec![],
            });
        }
        if let Some(cmd) = get("credential_process") {
            let base = match imdsd_credential_process(cmd) {
                Some(stored) => Base::Stored(stored),
                None => Base::Process(cmd.into()),
            };
            return Ok(Plan { base, hops: vec![] });
        }
        match static_keys(p) {
            Some(base) => Ok(Plan { base, hops: vec![] }),
            None => Err(ProfileError::NoCredentials(name.into())),
        }
    }

    fn role_plan(
        &self,
        name: &str,
        p: &Section,
        role_arn: &str,
        visited: &mut Vec<String>,
    ) -> Result<Plan, ProfileError> {
        let get = |k: &str| value(p, k);
        let hop = hop(name, p, role_arn)?;
        let base_plan = match (
            get("source_profile"),
            get("credential_source"),
            get("web_identity_token_file"),
        ) {
            (Some(source), None, _) if source == name => match static_keys(p) {
                // A profile may name itself as source for its own keys.
                Some(base) => Plan { base, hops: vec![] },
                None => return Err(ProfileError::NoCredentials(name.into())),
            },
            (Some(source), None, _) => self.plan_inner(&source, visited)?,
            (None, Some(cs), _) => Plan {
                base: credential_source(name, &cs)?,
                hops: vec![],
            },
            (None, None, Some(file)) => {
                let base = Base::WebIdentity {
                    role_arn: role_arn.into(),
                    token_file: file.into(),
                    session_name: get("role_session_name"),
                };
                return Ok(Plan { base, hops: vec![] });
            }
            (Some(_), Some(_), _) => {
                return Err(ProfileError::Invalid {
                    profile: name.into(),
                    key: "credential_source",
                    reason: "set source_profile or credential_source, not both".into(),
                });
            }
            (None, None, None) => {
                return Err(ProfileError::Invalid {
                    profile: name.into(),
                    key: "role_arn",
                    reason: "needs source_profile, credential_source or web_identity_token_file".into(),
                });
            }
        };
        let mut hops = base_plan.hops;
        hops.push(hop);
        Ok(Plan {
            base: base_plan.base,
            hops,
        })
    }

    fn sso(&self, name: &str, p: &Section) -> Result<Sso, ProfileError> {
        let get = |k: &str| {
            p.get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let need = |k: &'static str| {
            get(k).ok_or_else(|| ProfileError::Invalid {
                profile: name.into(),
                key: k,
                reason: "is required for SSO".into(),
            })
        };
        let (start_url, region, session) = match get("sso_session") {
            Some(session) => {
                let s = self.sso_sessions.get(&session).ok_or_else(|| {
                    ProfileError::Invalid {
                        profile: name.into(),
                        key: "sso_session",
                        reason: format!("no [sso-session {session}] section"),
                    }
                })?;
                let sget = |k: &'static str| {
                    s.get(k)
                        .map(|v| v.trim().to_string())
                        .filter(|v| !v.is_empty())
                        .ok_or_else(|| ProfileError::Invalid {
                            profile: name.into(),
                            key: k,
                            reason: format!("[sso-session {session}] has no {k}"),
                        })
                };
                (sget("sso_start_url")?, sget("sso_region")?, Some(session))
            }
            None => (need("sso_start_url")?, need("sso_region")?, None),
        };
        Ok(Sso {
            account_id: need("sso_account_id")?,
            role_name: need("sso_role_name")?,
            region,
            start_url,
            session,
            profile: name.into(),
        })
    }
}

fn static_keys(p: &Section) -> Option<Base> {
    let get = |k: &str| p.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    Some(Base::Static {
        access_key_id: get("aws_access_key_id")?.into(),
        secret_access_key: Secret::new(get("aws_secret_access_key")?),
        session_token: get("aws_session_token").map(Secret::new),
    })
}

/// The name in `imdsd credential-process NAME` (the line `imdsd import`
/// adds; `--socket PATH` may come first), when `command` is imdsd's own.
pub(crate) fn imdsd_credential_process(command: &str) -> Option<String> {
    let words = shlex::split(command)?;
    let (program, args) = words.split_first()?;
    let name = std::path::Path::new(program).file_name()?;
    if name != "imdsd" || args.first().map(String::as_str) != Some("credential-process") {
        return None;
    }
    let mut rest = args[1..].iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--socket" => {
                rest.next();
            }
            a if a.starts_with("--socket=") => {}
            a if !a.starts_with('-') => return Some(a.to_string()),
            _ => return None,
        }
    }
    None
}

fn credential_source(profile: &str, value: &str) -> Result<Base, ProfileError> {
    match value {
        "Environment" => Ok(Base::Environment),
        "Ec2InstanceMetadata" => Ok(Base::Imds),
        "EcsContainer" => Ok(Base::Container),
        other => Err(ProfileError::Invalid {
            profile: profile.into(),
            key: "credential_source",
            reason: format!(
                "`{other}` is not Environment, Ec2InstanceMetadata or EcsContainer"
            ),
        }),
    }
}

/// A key's value, trimmed; `None` when unset or empty.
fn value(p: &Section, key: &str) -> Option<String> {
    p.get(key)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The AssumeRole hop a profile with `role_arn` makes.
fn hop(name: &str, p: &Section, role_arn: &str) -> Result<Hop, ProfileError> {
    let duration = match value(p, "duration_seconds") {
        Some(d) => Some(Duration::from_secs(d.parse().map_err(|_| {
            ProfileError::Invalid {
                profile: name.into(),
                key: "duration_seconds",
                reason: format!("`{d}` is not a number of seconds"),
            }
        })?)),
        None => None,
    };
    Ok(Hop {
        role_arn: role_arn.into(),
        session_name: value(p, "role_session_name"),
        external_id: value(p, "external_id"),
        mfa_serial: value(p, "mfa_serial"),
        duration,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::profile::parse_files;

    const CONFIG: &str = r#"
[default]
region = us-east-1

[profile base]
region = eu-west-1

[profile admin]
role_arn = arn:aws:iam::123456789012:role/admin
source_profile = base
mfa_serial = arn:aws:iam::123456789012:mfa/alice
external_id = ext
duration_seconds = 7200
role_session_name = alice

[profile chained]
role_arn = arn:aws:iam::210987654321:role/deploy
source_profile = admin

[profile ec2]
role_arn = arn:aws:iam::123456789012:role/x
credential_source = Ec2InstanceMetadata

[profile web]
role_arn = arn:aws:iam::123456789012:role/web
web_identity_token_file = /var/run/token

[profile sso]
sso_session = corp
sso_account_id = 123456789012
sso_role_name = Dev

[sso-session corp]
sso_start_url = https://corp.awsapps.com/start
sso_region = us-east-2

[profile proc]
credential_process = /usr/bin/helper --json
s3 =
  max_concurrent_requests = 10

[profile loop-a]
role_arn = arn:aws:iam::123456789012:role/a
source_profile = loop-b

[profile loop-b]
role_arn = arn:aws:iam::123456789012:role/b
source_profile = loop-a

[profile empty]
region = us-west-2
"#;

    const CREDENTIALS: &str =
        "[base]\naws_access_key_id = AKIABASE\naws_secret_access_key = s3cr3t\n";

    fn profiles() -> Profiles {
        parse_files(Some(CONFIG), Some(CREDENTIALS)).unwrap()
    }

    #[test]
    fn debug_prints_profile_names_only() {
        let printed = format!("{:?}", profiles());
        assert!(
            printed.contains("base") && !printed.contains("s3cr3t"),
            "{printed}"
        );
    }

    #[test]
    fn static_keys_come_from_the_credentials_file() {
        let plan = profiles().plan("base").unwrap();
        assert!(
            matches!(&plan.base, Base::Static { access_key_id, .. } if access_key_id == "AKIABASE")
        );
        assert!(plan.hops.is_empty());
    }

    #[test]
    fn role_chains_become_hops_in_order() {
        let plan = profiles().plan("chained").unwrap();
        assert!(matches!(plan.base, Base::Static { .. }));
        let arns: Vec<&str> = plan.hops.iter().map(|h| h.role_arn.as_str()).collect();
        assert_eq!(
            arns,
            [
                "arn:aws:iam::123456789012:role/admin",
                "arn:aws:iam::210987654321:role/deploy"
            ]
        );
        let admin = &plan.hops[0];
        assert_eq!(
            admin.mfa_serial.as_deref(),
            Some("arn:aws:iam::123456789012:mfa/alice")
        );
        assert_eq!(admin.external_id.as_deref(), Some("ext"));
        assert_eq!(admin.duration, Some(Duration::from_secs(7200)));
        assert_eq!(admin.session_name.as_deref(), Some("alice"));
    }

    #[test]
    fn a_profile_may_be_the_source_of_its_own_role() {
        let p = parse_files(
            None,
            Some(
                "[me]\naws_access_key_id = AKIAME\naws_secret_access_key = s\n\
                 role_arn = arn:aws:iam::123456789012:role/me\nsource_profile = me\n",
            ),
        )
        .unwrap();
        let plan = p.plan("me").unwrap();
        assert!(
            matches!(&plan.base, Base::Static { access_key_id, .. } if access_key_id == "AKIAME")
        );
        assert_eq!(plan.hops.len(), 1);
        assert_eq!(plan.hops[0].role_arn, "arn:aws:iam::123456789012:role/me");
    }

    #[test]
    fn other_bases() {
        let p = profiles();
        assert_eq!(p.plan("ec2").unwrap().base, Base::Imds);
        assert!(matches!(
            p.plan("web").unwrap().base,
            Base::WebIdentity { .. }
        ));
        assert_eq!(
            p.plan("proc").unwrap().base,
            Base::Process("/usr/bin/helper --json".into())
        );
        let Base::Sso(sso) = p.plan("sso").unwrap().base else {
            panic!()
        };
        assert_eq!(
            (
                sso.region.as_str(),
                sso.session.as_deref(),
                sso.role_name.as_str()
            ),
            ("us-east-2", Some("corp"), "Dev")
        );
    }

    #[test]
    fn imdsds_own_credential_process_means_keys_in_the_secret_service() {
        for (line, stored) in [
            ("imdsd credential-process dev", Some("dev")),
            (
                "/usr/bin/imdsd credential-process --socket /run/c.sock dev",
                Some("dev"),
            ),
            (
                "imdsd credential-process --socket=/x 'my profile'",
                Some("my profile"),
            ),
            ("imdsd credential-process", None),
            ("imdsd exec dev", None),
            ("/opt/not-imdsd credential-process dev", None),
            ("aws-vault export --format=json dev", None),
        ] {
            assert_eq!(imdsd_credential_process(line).as_deref(), stored, "{line}");
        }
        let p = parse_files(
            Some(
                "[default]\ncredential_process = imdsd credential-process default\n\
                  [profile ops]\nrole_arn = arn:aws:iam::123456789012:role/ops\n\
                  source_profile = default\n",
            ),
            None,
        )
        .unwrap();
        assert_eq!(
            p.plan("default").unwrap().base,
            Base::Stored("default".into())
        );
        let ops = p.plan("ops").unwrap();
        assert_eq!(ops.base, Base::Stored("default".into()));
        assert_eq!(ops.hops.len(), 1);
    }

    #[test]
    fn errors_name_the_profile() {
        let p = profiles();
        assert!(
            matches!(p.plan("loop-a"), Err(ProfileError::Cycle(c)) if c == "loop-a -> loop-b -> loop-a")
        );
        assert!(matches!(p.plan("nope"), Err(ProfileError::NoProfile(n)) if n == "nope"));
        assert!(
            matches!(p.plan("empty"), Err(ProfileError::NoCredentials(n)) if n == "empty")
        );
    }
}
