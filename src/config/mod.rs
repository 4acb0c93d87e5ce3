//! The role config: its file schema, its validated form, and loading it.
//!
//! Reading, in order:
//! - [`schema`]: config text → the raw schema, every problem at once
//!   (pure); [`raw`]: that schema as written (serde, unknown keys refused),
//!   with source spans so every problem can name a line and column.
//! - [`validate`]: pure checks and defaults: raw config + environment →
//!   [`Config`] or a list of [`Diagnostic`]s. It hands each part to its
//!   own module: [`listeners`] (`[[imds]]`, `[[container]]`, token files),
//!   [`roles`] (each `[roles.NAME]` table and the values STS accepts),
//!   [`profile_refs`] (the AWS profiles a config names), [`value`] (rules
//!   for single values several parts share) and [`suggest`] ("did you mean
//!   …?").
//! - [`on_demand`]: the `[profiles]` table (pure); [`catalogue`]: which
//!   AWS profiles are served on demand, and the config the daemon runs
//!   with once some of them are active (pure).
//! - [`zero`]: the zero-config start, decided from the environment and the
//!   AWS profiles (pure).
//! - [`load`]: finding the file, reading it, and printing diagnostics as
//!   `path:line:column`.
//! - [`watch_targets`]: which paths to watch for changes to the config
//!   file (the watching itself is the top-level `watch` module's).

/// Two plain roles, `a` and `b`: the role tables several modules' test
/// configs share.
#[cfg(test)]
macro_rules! two_roles_toml {
    () => {
        r#"
[roles.a]
role_arn = "arn:aws:iam::123456789012:role/a"
source = "env"
[roles.b]
role_arn = "arn:aws:iam::123456789012:role/b"
source = "env"
"#
    };
}
#[cfg(test)]
pub(crate) use two_roles_toml;

pub(crate) mod catalogue;
pub(crate) mod listeners;
pub(crate) mod load;
pub(crate) mod on_demand;
pub(crate) mod profile_refs;
pub(crate) mod raw;
pub(crate) mod roles;
pub(crate) mod schema;
pub(crate) mod suggest;
pub(crate) mod validate;
pub(crate) mod value;
pub(crate) mod watch_targets;
pub(crate) mod zero;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

pub(crate) use load::{ConfigError, LoadedConfig};

/// A validated config: everything the daemon needs, defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub(crate) listeners: Vec<ListenerConfig>,
    pub(crate) sts: StsConfig,
    pub(crate) roles: BTreeMap<String, RoleConfig>,
    /// The health and metrics listener, when enabled.
    pub(crate) admin: Option<SocketAddr>,
    /// Where the control socket lives, when set in the file (else the
    /// runtime directory decides).
    pub(crate) control_socket: Option<std::path::PathBuf>,
    /// Reload when the file changes (else only on SIGHUP).
    pub(crate) watch_config: bool,
    /// What one client may take of each listener.
    pub(crate) limits: LimitsConfig,
    /// Where the audit trail goes (`None`: no audit trail).
    pub(crate) audit: Option<AuditTarget>,
    /// `[profiles]`: which AWS profiles are served on demand, and where.
    pub(crate) profiles: ProfilesConfig,
}

/// `[profiles]`: AWS profiles served by name, started on first use and
/// parked when idle (see `catalogue` and docs/on-demand.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProfilesConfig {
    pub(crate) serve: ServeProfiles,
    /// An on-demand role nobody took credentials from for this long stops.
    pub(crate) idle_after: Duration,
    /// The container listener that serves them: a `[[container]]`
    /// listener's address shares it; another address, or `None`
    /// ([`on_demand::DEFAULT_LISTEN`]), is a listener of their own.
    pub(crate) listen: Option<SocketAddr>,
}

impl Default for ProfilesConfig {
    fn default() -> Self {
        ProfilesConfig {
            serve: ServeProfiles::All,
            idle_after: on_demand::DEFAULT_IDLE_AFTER,
            listen: None,
        }
    }
}

/// `[profiles] serve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ServeProfiles {
    All,
    None,
    Only(std::collections::BTreeSet<String>),
}

impl ServeProfiles {
    pub(crate) fn includes(&self, profile: &str) -> bool {
        match self {
            ServeProfiles::All => true,
            ServeProfiles::None => false,
            ServeProfiles::Only(names) => names.contains(profile),
        }
    }
}

/// `[daemon] audit_log`: where a line per credentials vend goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AuditTarget {
    /// JSON lines appended to this file.
    File(PathBuf),
    /// The daemon's own log (stderr), target `imdsd::audit`.
    Log,
}

/// `[limits]`: per listener. Applied at start (a change takes a restart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LimitsConfig {
    pub(crate) max_connections: u32,
    /// Most connections of one local user (else one client address).
    pub(crate) max_connections_per_user: u32,
    /// Requests per second of one user after the burst; 0: no limit.
    pub(crate) requests_per_second: u32,
    pub(crate) request_burst: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_connections: 1024,
            max_connections_per_user: 512,
            requests_per_second: 200,
            request_burst: 1000,
        }
    }
}

/// One listener: an address, who may connect, and what it speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListenerConfig {
    pub(crate) listen: SocketAddr,
    /// Serve only connections from these local users (`None`: anyone who
    /// can connect).
    pub(crate) allow_uids: Option<Vec<u32>>,
    pub(crate) protocol: Protocol,
}

impl ListenerConfig {
    /// The roles this listener serves.
    pub(crate) fn roles(&self) -> &[String] {
        match &self.protocol {
            Protocol::Imds { role, .. } => std::slice::from_ref(role),
            Protocol::Container(c) => &c.roles,
        }
    }

    pub(crate) fn serves(&self, role: &str) -> bool {
        self.roles().iter().any(|r| r == role)
    }
}

/// The protocol a listener speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// `[[imds]]`: the EC2 instance metadata protocol, one role.
    Imds {
        role: String,
        /// Serve token-less (IMDSv1) GETs.
        allow_v1: bool,
    },
    /// `[[container]]`: the container-credentials protocol, any number of
    /// roles, one path and one token each.
    Container(ContainerConfig),
}

impl Protocol {
    /// `imds` or `container`, as in the config file.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Protocol::Imds { .. } => "imds",
            Protocol::Container(_) => "container",
        }
    }
}

/// A `[[container]]` listener's roles and token files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContainerConfig {
    pub(crate) roles: Vec<String>,
    pub(crate) tokens: TokenFiles,
    /// On-demand roles not running (`catalogue::effective`): their token
    /// files are written, and a request with one's token starts it.
    pub(crate) parked: Vec<String>,
}

/// Where the container tokens are written (`DIR/ROLE.token`) and who may
/// read them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenFiles {
    pub(crate) dir: PathBuf,
    /// `chown` the files to this user (`None`: the daemon's).
    pub(crate) owner: Option<u32>,
    /// ... and this group (`None`: the daemon's).
    pub(crate) group: Option<u32>,
    /// File mode: 0600 (default), 0640, 0400 or 0440.
    pub(crate) mode: u32,
}

impl TokenFiles {
    /// The token file of `role`.
    pub(crate) fn path(&self, role: &str) -> PathBuf {
        self.dir.join(format!("{role}.token"))
    }
}

/// Where and how the daemon talks to STS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StsConfig {
    pub(crate) region: String,
    pub(crate) endpoint: String,
    /// Whole-call timeout for one STS request.
    pub(crate) timeout: Duration,
}

/// One role the daemon keeps fresh credentials for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RoleConfig {
    pub(crate) name: String,
    /// How long the credentials asked for last (`DurationSeconds`).
    pub(crate) duration: Duration,
    pub(crate) flow: Flow,
}

impl RoleConfig {
    /// The role ARN asked for, for flows that name one.
    pub(crate) fn role_arn(&self) -> Option<&str> {
        match &self.flow {
            Flow::AssumeRole(a) => Some(&a.role_arn),
            Flow::WebIdentity(w) => Some(&w.role_arn),
            Flow::Saml(s) => Some(&s.role_arn),
            Flow::SessionToken { .. } | Flow::Profile { .. } | Flow::Process(_) => None,
        }
    }

    /// The other roles this one takes its signing credentials from.
    pub(crate) fn depends_on(&self) -> Option<&str> {
        match &self.flow {
            Flow::AssumeRole(AssumeRole {
                source: SourceSpec::Role(r),
                ..
            })
            | Flow::SessionToken {
                source: SourceSpec::Role(r),
                ..
            } => Some(r),
            _ => None,
        }
    }

    pub(crate) fn mfa(&self) -> Option<&Mfa> {
        match &self.flow {
            Flow::AssumeRole(a) => a.mfa.as_ref(),
            Flow::SessionToken { mfa, .. } => mfa.as_ref(),
            _ => None,
        }
    }

    /// Where the role's MFA codes come from, if it ever needs one.
    pub(crate) fn mfa_intake(&self) -> MfaIntake {
        if let Flow::Profile {
            mfa_command: Some(_),
            ..
        } = &self.flow
        {
            return MfaIntake::Command;
        }
        match self.mfa() {
            Some(Mfa {
                command: Some(_), ..
            }) => MfaIntake::Command,
            Some(_) => MfaIntake::Handed,
            None if self.uses_profiles() => MfaIntake::HandedIfProfileAsks,
            None => MfaIntake::Never,
        }
    }

    /// Whether the role reads AWS profiles (its own flow or its source).
    pub(crate) fn uses_profiles(&self) -> bool {
        match &self.flow {
            Flow::Profile { .. } => true,
            Flow::AssumeRole(AssumeRole { source, .. })
            | Flow::SessionToken { source, .. } => {
                matches!(source, SourceSpec::Profile(_))
            }
            _ => false,
        }
    }
}

/// Where a role's MFA codes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MfaIntake {
    /// It takes none: no `mfa_serial`, no profile that could have one.
    Never,
    /// Handed in with `imdsd mfa`.
    Handed,
    /// Handed in, when a profile it reads has an `mfa_serial`.
    HandedIfProfileAsks,
    /// Its `mfa_command` gives them.
    Command,
}

/// How a role's credentials are obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Flow {
    /// `sts:AssumeRole`, signed with source credentials.
    AssumeRole(AssumeRole),
    /// `sts:AssumeRoleWithWebIdentity`, unsigned, with a token file.
    WebIdentity(WebIdentity),
    /// `sts:AssumeRoleWithSAML`, unsigned, with a SAML assertion.
    Saml(Saml),
    /// `sts:GetSessionToken` (an MFA session), signed with source keys.
    SessionToken {
        source: SourceSpec,
        mfa: Option<Mfa>,
    },
    /// Whatever an AWS profile resolves to, as the AWS CLI would; long-term
    /// keys are turned into session credentials with GetSessionToken.
    Profile {
        name: String,
        mfa_command: Option<String>,
    },
    /// A `credential_process` whose (temporary) credentials are served.
    Process(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AssumeRole {
    pub(crate) role_arn: String,
    pub(crate) source: SourceSpec,
    pub(crate) session_name: String,
    pub(crate) external_id: Option<String>,
    pub(crate) mfa: Option<Mfa>,
    pub(crate) session: SessionPolicy,
    pub(crate) tags: Vec<(String, String)>,
    pub(crate) transitive_tag_keys: Vec<String>,
    pub(crate) source_identity: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WebIdentity {
    pub(crate) role_arn: String,
    /// Re-read on every refresh: Kubernetes rotates projected tokens.
    pub(crate) token_file: std::path::PathBuf,
    pub(crate) session_name: String,
    pub(crate) session: SessionPolicy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Saml {
    pub(crate) role_arn: String,
    pub(crate) principal_arn: String,
    pub(crate) assertion: AssertionSource,
    pub(crate) session: SessionPolicy,
}

/// Where a SAML assertion (base64) comes from, on every refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AssertionSource {
    File(std::path::PathBuf),
    Command { command: String, timeout: Duration },
}

/// An inline session policy and managed policy ARNs that narrow a session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SessionPolicy {
    pub(crate) policy: Option<String>,
    pub(crate) policy_arns: Vec<String>,
}

/// An MFA device and how to get its codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mfa {
    pub(crate) serial: String,
    /// A command printing the current code; without one the daemon waits
    /// for `imdsd mfa ROLE CODE`.
    pub(crate) command: Option<String>,
}

/// Where the credentials that sign the STS call come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SourceSpec {
    /// `AWS_ACCESS_KEY_ID` etc. in the daemon's own environment.
    Env,
    /// An AWS profile, resolved as the AWS CLI does.
    Profile(String),
    /// Another role entry's current credentials (role chaining).
    Role(String),
    /// A `credential_process` command.
    Process(String),
    /// The instance's own metadata service (running on EC2).
    Imds,
    /// The container credentials endpoint (running on ECS/EKS).
    Container,
    /// A systemd credential: `$CREDENTIALS_DIRECTORY/NAME`.
    Credential(String),
    /// A profile's long-term keys in the Secret Service (`imdsd import`).
    Keyring(String),
}

/// How bad a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Severity {
    Error,
    Warning,
}

/// One problem found in a config file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub(crate) severity: Severity,
    /// Byte range in the file; `None` when the problem has no one place.
    pub(crate) span: Option<Range<usize>>,
    pub(crate) message: String,
}

impl Diagnostic {
    pub(crate) fn error(span: Option<Range<usize>>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            span,
            message: message.into(),
        }
    }

    pub(crate) fn warning(
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            span,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::environment::Environment;

    fn role(body: &str) -> RoleConfig {
        let text = format!("[[imds]]\nrole = \"r\"\n[roles.r]\n{body}\n");
        let (config, diags) = load::parse(&text, &Environment::default());
        let config = config.unwrap_or_else(|| panic!("{diags:?}"));
        config.roles["r"].clone()
    }

    #[test]
    fn mfa_intake_says_where_codes_come_from() {
        let arn = r#"role_arn = "arn:aws:iam::123456789012:role/r""#;
        let serial = r#"mfa_serial = "arn:aws:iam::123456789012:mfa/me""#;
        assert_eq!(
            role(&format!("{arn}\nsource = \"env\"")).mfa_intake(),
            MfaIntake::Never
        );
        assert_eq!(
            role(&format!("{arn}\nsource = \"env\"\n{serial}")).mfa_intake(),
            MfaIntake::Handed
        );
        assert_eq!(
            role(&format!(
                "{arn}\nsource = \"env\"\n{serial}\nmfa_command = \"otp\""
            ))
            .mfa_intake(),
            MfaIntake::Command
        );
        assert_eq!(
            role(&format!("{arn}\nsource = \"profile:base\"")).mfa_intake(),
            MfaIntake::HandedIfProfileAsks
        );
        assert_eq!(
            role("profile = \"dev\"").mfa_intake(),
            MfaIntake::HandedIfProfileAsks
        );
        assert_eq!(
            role("profile = \"dev\"\nmfa_command = \"otp\"").mfa_intake(),
            MfaIntake::Command
        );
    }

    #[test]
    fn roles_that_read_profiles_are_known() {
        let arn = r#"role_arn = "arn:aws:iam::123456789012:role/r""#;
        assert!(role("profile = \"dev\"").uses_profiles());
        assert!(role(&format!("{arn}\nsource = \"profile:base\"")).uses_profiles());
        assert!(!role(&format!("{arn}\nsource = \"env\"")).uses_profiles());
    }
}
