//! Entry points for the fuzz targets in `fuzz/`, compiled only under
//! `cfg(fuzzing)` (which `cargo fuzz` sets): never part of the daemon.
//!
//! Everything else in the crate is private, so this facade hands the fuzz
//! targets the real functions behind plain public types: raw request bytes
//! through the two endpoints' service functions ([`http`]) and through the
//! connection loop every socket runs ([`stream`]), IMDSv2 tokens,
//! config parsing and validation, STS XML, `credential_process` JSON, the
//! AWS config/credentials files and the SSO cache. It decides nothing and
//! asserts nothing: the invariants live in the targets, which can only
//! check what comes out here.

pub mod http;
pub mod stream;

use std::path::Path;

use chrono::{DateTime, Utc};

use crate::config::{self, Severity};
use crate::environment::Environment;
use crate::imds::token::{self, TokenCheck, TokenKey};
use crate::profile::{self, sso_token};

/// Seconds since the epoch as a time, clamped into chrono's range.
pub fn time(unix: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(unix.clamp(-8_000_000_000_000, 8_000_000_000_000), 0)
        .unwrap_or_default()
}

// === IMDSv2 tokens ===

/// An IMDSv2 token key, as the daemon keeps one.
pub struct ImdsTokenKey(TokenKey);

/// What checking a token said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Valid { expires_at: i64 },
    Expired,
    Invalid,
}

impl ImdsTokenKey {
    pub fn new(key: &[u8]) -> Self {
        ImdsTokenKey(TokenKey::new(key))
    }

    pub fn mint(&self, now: DateTime<Utc>, ttl_secs: u32) -> String {
        self.0.mint(now, ttl_secs)
    }

    pub fn verify(&self, token: &[u8], now: DateTime<Utc>) -> Verdict {
        match self.0.verify(token, now) {
            TokenCheck::Valid { expires_at } => Verdict::Valid { expires_at },
            TokenCheck::Expired => Verdict::Expired,
            TokenCheck::Invalid => Verdict::Invalid,
        }
    }
}

/// The token PUT's TTL header, parsed as the endpoint does.
pub fn parse_ttl(header: Option<&[u8]>) -> Result<u32, String> {
    token::parse_ttl(header).map_err(|e| e.to_string())
}

/// Longest TTL a token may have.
pub const MAX_TTL_SECS: u32 = token::MAX_TTL_SECS;

// === config ===

/// What `check-config` would say about a config text.
pub struct ConfigOutcome {
    /// A config came out (no error diagnostic).
    pub valid: bool,
    /// The `Debug` of the config, when there is one.
    pub debug: Option<String>,
    /// Each diagnostic: whether it is an error, its span, the rendered line.
    pub diagnostics: Vec<(bool, Option<std::ops::Range<usize>>, String)>,
}

/// Parses and validates `text` in `env` (pure), and renders every
/// diagnostic as `check-config` prints it.
pub fn config(text: &str, env: &[(&str, &str)]) -> ConfigOutcome {
    let env = Environment::from_pairs(env.iter().copied());
    let (parsed, diagnostics) = config::load::parse(text, &env);
    let path = Path::new("imdsd.toml");
    ConfigOutcome {
        valid: parsed.is_some(),
        debug: parsed.map(|c| format!("{c:?}")),
        diagnostics: diagnostics
            .iter()
            .map(|d| {
                let rendered = config::load::render_diagnostic(path, text, d);
                (d.severity == Severity::Error, d.span.clone(), rendered)
            })
            .collect(),
    }
}

// === STS ===

/// The four actions whose answers carry credentials.
pub const STS_ACTIONS: [&str; 4] = [
    "AssumeRole",
    "AssumeRoleWithWebIdentity",
    "AssumeRoleWithSAML",
    "GetSessionToken",
];

/// Credentials as a parser returned them, secrets exposed (for checks).
#[derive(Clone)]
pub struct Parsed {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    pub expiration: Option<DateTime<Utc>>,
    /// `AssumedRoleUser/Arn` (STS only).
    pub assumed_role_arn: Option<String>,
    /// The parser's own `Debug` of what it returned.
    pub debug: String,
}

fn parsed(
    c: &crate::credentials::Credentials,
    arn: Option<String>,
    debug: String,
) -> Parsed {
    Parsed {
        access_key_id: c.access_key_id.clone(),
        secret_access_key: c.secret_access_key.expose().to_string(),
        session_token: c.session_token.as_ref().map(|t| t.expose().to_string()),
        expiration: c.expiration,
        assumed_role_arn: arn,
        debug,
    }
}

/// An error's `Display` and `Debug`.
pub type Failure = (String, String);

fn failure<E: std::fmt::Display + std::fmt::Debug>(e: &E) -> Failure {
    (e.to_string(), format!("{e:?}"))
}

/// A 200 answer to `action`, parsed.
pub fn sts_credentials(action: &str, body: &str) -> Result<Parsed, Failure> {
    crate::sts::xml::parse_credentials(action, body)
        .map(|i| parsed(&i.credentials, i.assumed_role_arn.clone(), format!("{i:?}")))
        .map_err(|e| failure(&e))
}

/// An error answer, parsed: code, message, request id.
pub fn sts_error(body: &str) -> Option<(String, String, Option<String>)> {
    crate::sts::xml::parse_error(body).map(|e| (e.code, e.message, e.request_id))
}

// === credential_process ===

/// A credential process's output, parsed at `now`.
pub fn credential_process(text: &str, now: DateTime<Utc>) -> Result<Parsed, Failure> {
    crate::refresh::source::process::parse(text, now)
        .map(|c| parsed(&c, None, format!("{c:?}")))
        .map_err(|e| failure(&e))
}

/// The IMDS and container documents (and the `credential_process` one)
/// the daemon would serve for `p`, when it would serve them at all.
pub fn documents(p: &Parsed, now: DateTime<Utc>) -> Option<[String; 3]> {
    use crate::credentials::{Credentials, documents};
    let creds = Credentials {
        access_key_id: p.access_key_id.clone(),
        secret_access_key: crate::secret::Secret::new(&p.secret_access_key),
        session_token: p.session_token.clone().map(crate::secret::Secret::new),
        expiration: p.expiration,
    };
    let served = crate::refresh::store::Served::render(&creds, None, now)?;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let process = documents::process_document(&creds, served.expiration);
    Some([
        text(&served.imds_body),
        text(&served.container_body),
        text(process.as_ref()),
    ])
}

// === AWS profiles ===

/// What the two AWS files gave.
pub struct ProfilesOutcome {
    /// `Debug` of everything parsed.
    pub debug: String,
    /// Every profile's plan (`Debug`) or error (`Display`, `Debug`).
    pub plans: Vec<(String, Result<String, Failure>)>,
}

/// Parses `~/.aws/config` and `~/.aws/credentials` texts and resolves
/// every profile in them.
pub fn aws_profiles(config: &str, credentials: &str) -> Result<ProfilesOutcome, String> {
    let profiles = profile::parse_files(Some(config), Some(credentials))?;
    let mut names: Vec<String> = profiles.profiles.keys().cloned().collect();
    names.sort();
    let plans = names
        .into_iter()
        .map(|name| {
            let plan = profiles
                .plan(&name)
                .map(|p| format!("{p:?}"))
                .map_err(|e| failure(&e));
            (name, plan)
        })
        .collect();
    Ok(ProfilesOutcome {
        debug: format!("{profiles:?}"),
        plans,
    })
}

// === SSO cache ===

/// What the daemon makes of a cached SSO token at `now`.
pub struct SsoOutcome {
    /// `Debug` of the token (`None`: not the cache's JSON shape).
    pub debug: Option<String>,
    /// `Debug` of the plan: use, refresh, expired, unusable.
    pub plan: Option<String>,
}

/// Reads a cache file's text as `sso_token` does and plans for `now`.
pub fn sso_cache(text: &str, now: DateTime<Utc>) -> SsoOutcome {
    match sso_token::parse_cache(text) {
        Some((_, token)) => SsoOutcome {
            debug: Some(format!("{token:?}")),
            plan: Some(format!("{:?}", sso_token::plan(&token, now))),
        },
        None => SsoOutcome {
            debug: None,
            plan: None,
        },
    }
}

/// The cache file after a CreateToken answer `renewal` at `now`:
/// `None` when either text is not the JSON expected.
pub fn sso_renewed(cache: &str, renewal: &str, now: DateTime<Utc>) -> Option<String> {
    let (object, _) = sso_token::parse_cache(cache)?;
    let renewal: sso_token::Renewal = serde_json::from_str(renewal).ok()?;
    let out = sso_token::renewed(object, &renewal, now);
    Some(serde_json::Value::Object(out).to_string())
}
