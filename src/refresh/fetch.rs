//! Fetching one role's credentials, for every flow: resolve what signs the
//! call (or the token/assertion for unsigned flows), get an MFA code when
//! one is needed, call STS. Only the role's refresher calls this.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use super::command::{self, CommandError};
use super::directory::RoleDirectory;
use super::mfa_desk::MfaDesk;
use super::queries;
use super::source::process::{self, ProcessError};
use super::source::remote::{self, RemoteError};
use super::source::{self, SourceError};
use crate::clock::SharedClock;
use crate::config::roles::default_session_name;
use crate::config::value::granted_duration;
use crate::config::{
    AssertionSource, AssumeRole, Flow, Mfa, RoleConfig, Saml, SourceSpec, WebIdentity,
};
use crate::credentials::Credentials;
use crate::environment::Environment;
use crate::profile::{self, Base, Plan, ProfileError};
use crate::secret::Secret;
use crate::sts::{Issued, Retry, StsClient, StsError};

/// How long a handed-in MFA code stays usable.
const MFA_CODE_FRESH: Duration = Duration::from_secs(120);
/// How long an `mfa_command` may take (a YubiKey may wait for a touch).
const MFA_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// What every fetcher shares.
pub(crate) struct FetchContext {
    /// Replaced when `[sts]` changes; every fetch uses the current one.
    pub(crate) sts: ArcSwap<StsClient>,
    pub(crate) env: Environment,
    pub(crate) clock: SharedClock,
    /// The running roles, for chaining.
    pub(crate) roles: RoleDirectory,
    /// Plain HTTP, no proxy, for the metadata and container endpoints.
    pub(crate) http: reqwest::Client,
    /// HTTPS through the configured proxy, for the SSO portal.
    pub(crate) web: reqwest::Client,
    /// This daemon's listener addresses, which no source may point at.
    pub(crate) own_addrs: Arc<ArcSwap<Vec<SocketAddr>>>,
}

impl std::fmt::Debug for FetchContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchContext")
            .field("sts", &self.sts)
            .finish()
    }
}

/// Why one fetch failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error(transparent)]
    Sts(#[from] StsError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error(transparent)]
    Store(#[from] crate::keystore::StoreError),
    #[error("cannot read {what} {path}: {reason}")]
    File {
        what: &'static str,
        path: String,
        reason: String,
    },
    #[error("source role `{role}` has no usable credentials: {reason}")]
    SourceRole { role: String, reason: String },
    #[error("the MFA code from {from} is not six digits")]
    BadMfaCode { from: &'static str },
    /// A helper or profile gave long-term keys: a config problem.
    #[error(
        "{0} returned credentials without a session token or expiry; IMDS clients need temporary credentials"
    )]
    Unservable(&'static str),
    /// STS answered 200 with credentials missing a token or expiry.
    #[error("STS returned credentials without a session token or expiry")]
    UnservableAnswer,
}

impl FetchError {
    pub(crate) fn retry(&self) -> Retry {
        match self {
            FetchError::Sts(e) => e.retry(),
            FetchError::Command(CommandError::Timeout { .. }) => Retry::Transient,
            FetchError::Process(ProcessError::Command(CommandError::Timeout {
                ..
            })) => Retry::Transient,
            FetchError::Remote(
                RemoteError::SelfReference { .. }
                | RemoteError::NoContainerUri
                | RemoteError::BadUrl { .. },
            ) => Retry::Permanent,
            FetchError::Remote(_)
            | FetchError::File { .. }
            | FetchError::SourceRole { .. }
            // The keyring gets unlocked, started, imported into.
            | FetchError::Store(_) => Retry::Transient,
            FetchError::Profile(ProfileError::SsoPortal {
                transient: true, ..
            }) => Retry::Transient,
            FetchError::Profile(_) => Retry::Permanent,
            // STS answering oddly may pass; a helper or profile that gives
            // long-term keys will not.
            FetchError::UnservableAnswer => Retry::Transient,
            FetchError::Unservable(_) => Retry::Permanent,
            FetchError::Source(_)
            | FetchError::Command(_)
            | FetchError::Process(_)
            | FetchError::BadMfaCode { .. } => Retry::Permanent,
        }
    }

    pub(crate) fn code(&self) -> &str {
        match self {
            FetchError::Sts(e) => e.code(),
            FetchError::Source(e) => e.code(),
            FetchError::Command(_) => "CommandFailed",
            FetchError::Process(_) => "CredentialProcessFailed",
            FetchError::Remote(_) => "SourceUnavailable",
            FetchError::Profile(e) => e.code(),
            FetchError::Store(e) => e.code(),
            FetchError::File { .. } => "FileUnreadable",
            FetchError::SourceRole { .. } => "SourceRoleUnavailable",
            FetchError::BadMfaCode { .. } => "InvalidMfaCode",
            FetchError::Unservable(_) => "TemporaryCredentialsNeeded",
            FetchError::UnservableAnswer => "MalformedResponse",
        }
    }
}

/// A credential source that both a role's `source` and a profile's base
/// can name.
#[derive(Debug, Clone, Copy)]
enum Direct<'a> {
    /// The daemon's own environment.
    Env,
    /// A `credential_process` command.
    Process(&'a str),
    /// The EC2 instance metadata service.
    Imds,
    /// The ECS/EKS container endpoint.
    Container,
}

/// Fetches one role's credentials.
#[derive(Clone)]
pub(crate) struct Fetcher {
    pub(crate) role: RoleConfig,
    /// Where codes handed in with `imdsd mfa` reach this fetch (through
    /// the refresher, which also tells readers the fetch waits).
    pub(crate) mfa: Arc<MfaDesk>,
    pub(crate) ctx: Arc<FetchContext>,
}

impl Fetcher {
    /// One fetch of the role's credentials, by its flow.
    pub(crate) async fn fetch(&self) -> Result<Issued, FetchError> {
        match &self.role.flow {
            Flow::AssumeRole(a) => self.assume_role(a).await,
            Flow::WebIdentity(w) => self.web_identity(w).await,
            Flow::Saml(s) => self.saml(s).await,
            Flow::SessionToken { source, mfa } => {
                self.session_token(source, mfa.as_ref()).await
            }
            Flow::Profile { name, .. } => self.profile(name).await,
            Flow::Process(command) => self.process(command).await,
        }
    }

    fn sts(&self) -> Arc<StsClient> {
        self.ctx.sts.load_full()
    }

    async fn assume_role(&self, a: &AssumeRole) -> Result<Issued, FetchError> {
        let signer = self.signer(&a.source).await?;
        // Signed with session credentials is role chaining, whatever the
        // source (a profile, IMDS, a container).
        let duration =
            granted_duration(self.role.duration, signer.session_token.is_some());
        let code = self.mfa_code(a.mfa.as_ref()).await?;
        let query = queries::assume_role(a, duration, code);
        Ok(self.sts().call(&query, Some(&signer)).await?)
    }

    async fn web_identity(&self, w: &WebIdentity) -> Result<Issued, FetchError> {
        let token = read_secret("web identity token file", &w.token_file)?;
        let query = queries::web_identity(w, self.role.duration, token);
        Ok(self.sts().call(&query, None).await?)
    }

    async fn saml(&self, s: &Saml) -> Result<Issued, FetchError> {
        let assertion = match &s.assertion {
            AssertionSource::File(path) => read_secret("SAML assertion file", path)?,
            AssertionSource::Command { command, timeout } => {
                command::run("saml_assertion_command", &self.role.name, command, *timeout)
                    .await?
            }
        };
        let query = queries::saml(s, self.role.duration, assertion);
        Ok(self.sts().call(&query, None).await?)
    }

    async fn session_token(
        &self,
        source: &SourceSpec,
        mfa: Option<&Mfa>,
    ) -> Result<Issued, FetchError> {
        let signer = self.signer(source).await?;
        let code = self.mfa_code(mfa).await?;
        let serial = mfa.map(|m| m.serial.as_str());
        let query = queries::session_token(self.role.duration, serial, code);
        Ok(self.sts().call(&query, Some(&signer)).await?)
    }

    /// A served `credential_process`: its credentials must be temporary.
    async fn process(&self, command: &str) -> Result<Issued, FetchError> {
        let credentials = self.direct(Direct::Process(command)).await?;
        if credentials.session_token.is_none() || credentials.expiration.is_none() {
            return Err(FetchError::Unservable("credential_process"));
        }
        Ok(Issued {
            credentials,
            assumed_role_arn: None,
        })
    }

    /// The credentials that sign the call, from `spec`.
    async fn signer(&self, spec: &SourceSpec) -> Result<Credentials, FetchError> {
        match spec {
            SourceSpec::Profile(name) => Ok(self.run_plan(name, None).await?.0),
            SourceSpec::Role(name) => self.chained(name).await,
            SourceSpec::Env => self.direct(Direct::Env).await,
            SourceSpec::Process(command) => self.direct(Direct::Process(command)).await,
            SourceSpec::Imds => self.direct(Direct::Imds).await,
            SourceSpec::Container => self.direct(Direct::Container).await,
            // Boxed: a D-Bus conversation is a large future, and inline it
            // would grow every role's refresher task, used or not.
            SourceSpec::Keyring(profile) => {
                Ok(Box::pin(crate::keystore::read(&self.ctx.env, profile)).await?)
            }
            SourceSpec::Credential(name) => {
                let read = source::credential::read(&self.ctx.env, name).await;
                Ok(read.map_err(SourceError::from)?)
            }
        }
    }

    /// Credentials from a source that both a role's `source` and a
    /// profile's base can name.
    async fn direct(&self, direct: Direct<'_>) -> Result<Credentials, FetchError> {
        let ctx = &self.ctx;
        let own = ctx.own_addrs.load();
        Ok(match direct {
            Direct::Env => source::from_env(&ctx.env)?,
            Direct::Process(command) => {
                process::fetch(&self.role.name, command, ctx.clock.now()).await?
            }
            Direct::Imds => remote::imds(&ctx.http, &ctx.env, &own).await?,
            Direct::Container => remote::container(&ctx.http, &ctx.env, &own).await?,
        })
    }

    /// Another role's current credentials; waits briefly if that role is
    /// fetching right now.
    async fn chained(&self, name: &str) -> Result<Credentials, FetchError> {
        let Some(slot) = self.ctx.roles.get(name) else {
            return Err(FetchError::SourceRole {
                role: name.into(),
                reason: "no such role".into(),
            });
        };
        let clock = self.ctx.clock.clone();
        let snap = slot
            .wait_usable(|| clock.now(), self.ctx.sts.load().config().timeout)
            .await;
        if let Some(served) = snap.usable(self.ctx.clock.now()) {
            return Ok(served.credentials.clone());
        }
        let reason = match (&snap.waiting_for, &snap.failure) {
            (Some(w), _) => w.clone(),
            (None, Some(f)) => f.message.clone(),
            (None, None) => "its first fetch has not finished".into(),
        };
        Err(FetchError::SourceRole {
            role: name.into(),
            reason,
        })
    }

    /// A code for `mfa`: from its command, or handed in with `imdsd mfa`
    /// (the role says it is waiting meanwhile; requests are not held up).
    async fn mfa_code(&self, mfa: Option<&Mfa>) -> Result<Option<Secret>, FetchError> {
        let Some(mfa) = mfa else { return Ok(None) };
        let (code, from) = match &mfa.command {
            Some(cmd) => (
                command::run("mfa_command", &self.role.name, cmd, MFA_COMMAND_TIMEOUT)
                    .await?,
                "mfa_command",
            ),
            None => (self.wait_for_code(&mfa.serial).await, "imdsd mfa"),
        };
        if !queries::valid_mfa_code(code.expose()) {
            return Err(FetchError::BadMfaCode { from });
        }
        Ok(Some(code))
    }

    async fn wait_for_code(&self, serial: &str) -> Secret {
        let waiting = format!(
            "waiting for an MFA code for {serial}: run `imdsd mfa {} CODE`",
            self.role.name
        );
        tracing::warn!(role = %self.role.name, "{waiting}");
        self.mfa.take(waiting, MFA_CODE_FRESH).await
    }

    /// Serves what a profile resolves to; long-term keys become session
    /// credentials through GetSessionToken.
    async fn profile(&self, name: &str) -> Result<Issued, FetchError> {
        let (credentials, plan) = self.run_plan(name, Some(self.role.duration)).await?;
        match (&credentials.session_token, credentials.expiration) {
            (Some(_), Some(_)) => Ok(Issued {
                credentials,
                assumed_role_arn: None,
            }),
            (None, _) => {
                let mfa = plan
                    .hops
                    .is_empty()
                    .then(|| self.profile_mfa(name))
                    .flatten();
                let code = self.mfa_code(mfa.as_ref()).await?;
                let duration = self.role.duration;
                let serial = mfa.as_ref().map(|m| m.serial.as_str());
                let query = queries::session_token(duration, serial, code);
                Ok(self.sts().call(&query, Some(&credentials)).await?)
            }
            (Some(_), None) => {
                Err(FetchError::Unservable("the profile's static session keys"))
            }
        }
    }

    /// A static-keys profile's own `mfa_serial`, for GetSessionToken.
    fn profile_mfa(&self, name: &str) -> Option<Mfa> {
        let profiles = profile::load(&self.ctx.env).ok()?;
        let serial = profiles
            .profiles
            .get(name)?
            .get("mfa_serial")?
            .trim()
            .to_string();
        Some(Mfa {
            serial,
            command: self.mfa_command(),
        })
    }

    /// Carries out a profile's plan: its base, then each AssumeRole hop.
    /// `last_duration` is asked for on the last hop unless the profile sets
    /// `duration_seconds`.
    async fn run_plan(
        &self,
        name: &str,
        last_duration: Option<Duration>,
    ) -> Result<(Credentials, Plan), FetchError> {
        let plan = profile::load(&self.ctx.env)?.plan(name)?;
        let mut credentials = self.plan_base(&plan.base).await?;
        for (i, hop) in plan.hops.iter().enumerate() {
            let last = i + 1 == plan.hops.len();
            let asked = hop
                .duration
                .or(last.then_some(last_duration).flatten())
                .unwrap_or(Duration::from_secs(3600));
            let duration = granted_duration(asked, credentials.session_token.is_some());
            let assume = AssumeRole {
                role_arn: hop.role_arn.clone(),
                source: SourceSpec::Profile(name.into()),
                session_name: hop
                    .session_name
                    .clone()
                    .unwrap_or_else(|| default_session_name(&self.ctx.env)),
                external_id: hop.external_id.clone(),
                mfa: hop.mfa_serial.clone().map(|serial| Mfa {
                    serial,
                    command: self.mfa_command(),
                }),
                session: Default::default(),
                tags: vec![],
                transitive_tag_keys: vec![],
                source_identity: None,
            };
            let code = self.mfa_code(assume.mfa.as_ref()).await?;
            let query = queries::assume_role(&assume, duration, code);
            credentials = self
                .sts()
                .call(&query, Some(&credentials))
                .await?
                .credentials;
        }
        Ok((credentials, plan))
    }

    async fn plan_base(&self, base: &Base) -> Result<Credentials, FetchError> {
        let ctx = &self.ctx;
        match base {
            Base::Static {
                access_key_id,
                secret_access_key,
                session_token,
            } => Ok(Credentials {
                access_key_id: access_key_id.clone(),
                secret_access_key: secret_access_key.clone(),
                session_token: session_token.clone(),
                expiration: None,
            }),
            Base::WebIdentity {
                role_arn,
                token_file,
                session_name,
            } => {
                let identity = WebIdentity {
                    role_arn: role_arn.clone(),
                    token_file: token_file.clone(),
                    session_name: session_name
                        .clone()
                        .unwrap_or_else(|| default_session_name(&ctx.env)),
                    session: Default::default(),
                };
                let token = read_secret("web identity token file", token_file)?;
                let query =
                    queries::web_identity(&identity, Duration::from_secs(3600), token);
                Ok(self.sts().call(&query, None).await?.credentials)
            }
            Base::Sso(sso) => Ok(profile::sso::role_credentials(
                &ctx.web,
                &ctx.env,
                sso,
                ctx.clock.now(),
            )
            .await?),
            Base::Process(command) => self.direct(Direct::Process(command)).await,
            // Boxed, as for `SourceSpec::Keyring`.
            Base::Stored(profile) => {
                Ok(Box::pin(crate::keystore::read(&ctx.env, profile)).await?)
            }
            Base::Environment => self.direct(Direct::Env).await,
            Base::Imds => self.direct(Direct::Imds).await,
            Base::Container => self.direct(Direct::Container).await,
        }
    }

    /// The role's configured `mfa_command`, for codes a profile asks for.
    fn mfa_command(&self) -> Option<String> {
        match &self.role.flow {
            Flow::Profile { mfa_command, .. } => mfa_command.clone(),
            _ => self.role.mfa().and_then(|m| m.command.clone()),
        }
    }
}

/// A file's content as a secret, trimmed (tokens and assertions often end
/// in a newline).
fn read_secret(what: &'static str, path: &Path) -> Result<Secret, FetchError> {
    let text =
        crate::read::file(path, crate::read::LARGE).map_err(|e| FetchError::File {
            what,
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
    let text = zeroize::Zeroizing::new(text);
    if text.trim().is_empty() {
        return Err(FetchError::File {
            what,
            path: path.display().to_string(),
            reason: "it is empty".into(),
        });
    }
    Ok(Secret::new(text.trim()))
}
