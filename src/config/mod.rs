//! The role config: its file schema, its validated form, and loading it.
//!
//! - [`raw`]: the TOML schema as written (serde, unknown keys refused),
//!   with source spans so every problem can name a line and column.
//! - [`validate`]: pure checks and defaults: raw config + environment →
//!   [`Config`] or a list of [`Diagnostic`]s.
//! - [`load`]: finding the file, reading it, and printing diagnostics as
//!   `path:line:column`.

pub mod load;
pub mod raw;
pub mod validate;
pub mod watch;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::time::Duration;

pub use load::{ConfigError, LoadedConfig};

/// A validated config: everything the daemon needs, defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub listeners: Vec<ListenerConfig>,
    pub sts: StsConfig,
    pub roles: BTreeMap<String, RoleConfig>,
    /// The health and metrics listener, when enabled.
    pub admin: Option<SocketAddr>,
    /// Where the control socket lives, when set in the file (else the
    /// runtime directory decides).
    pub control_socket: Option<std::path::PathBuf>,
    /// Reload when the file changes (else only on SIGHUP).
    pub watch_config: bool,
}

/// One IMDS listener, serving one role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    pub listen: SocketAddr,
    pub role: String,
    /// Serve token-less (IMDSv1) GETs.
    pub allow_v1: bool,
}

/// Where and how the daemon talks to STS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsConfig {
    pub region: String,
    pub endpoint: String,
    /// Whole-call timeout for one STS request.
    pub timeout: Duration,
}

/// One role the daemon keeps fresh credentials for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleConfig {
    pub name: String,
    pub role_arn: String,
    pub source: SourceSpec,
    pub session_name: String,
    pub duration: Duration,
    pub external_id: Option<String>,
}

/// Where the long-term credentials that sign the STS call come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// `AWS_ACCESS_KEY_ID` etc. in the daemon's own environment.
    Env,
    /// Static keys of a profile in the shared credentials file.
    Profile(String),
}

/// How bad a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem found in a config file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Byte range in the file; `None` when the problem has no one place.
    pub span: Option<Range<usize>>,
    pub message: String,
}

impl Diagnostic {
    pub fn error(span: Option<Range<usize>>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            span,
            message: message.into(),
        }
    }

    pub fn warning(span: Option<Range<usize>>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            span,
            message: message.into(),
        }
    }
}
