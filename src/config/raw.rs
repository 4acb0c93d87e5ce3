//! The config file's schema, exactly as written.
//!
//! Every field keeps its source span (`toml::Spanned`) so that validation can
//! point at the offending line and column. Unknown keys are refused by serde
//! itself (`deny_unknown_fields`), which also names the key and its place.
//! No defaults and no checks live here: see `validate`.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub imds: Vec<Spanned<RawListener>>,
    #[serde(default)]
    pub sts: Option<Spanned<RawSts>>,
    #[serde(default)]
    pub roles: BTreeMap<Spanned<String>, Spanned<RawRole>>,
    pub admin: Option<Spanned<RawAdmin>>,
    pub daemon: Option<Spanned<RawDaemon>>,
}

/// The `[admin]` table: health and metrics.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub listen: Option<Spanned<String>>,
    pub allow_non_loopback: Option<Spanned<bool>>,
}

/// The `[daemon]` table: how the daemon itself runs.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDaemon {
    pub control_socket: Option<Spanned<String>>,
    pub watch_config: Option<Spanned<bool>>,
}

/// One `[[imds]]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListener {
    pub listen: Option<Spanned<String>>,
    pub role: Option<Spanned<String>>,
    pub v1: Option<Spanned<bool>>,
    pub allow_non_loopback: Option<Spanned<bool>>,
    pub allow_uids: Option<Spanned<Vec<u32>>>,
}

/// The `[sts]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSts {
    pub region: Option<Spanned<String>>,
    pub endpoint: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
}

/// One `[roles.NAME]` table. Which keys apply depends on the flow; see
/// `config::roles`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRole {
    #[serde(rename = "type")]
    pub kind: Option<Spanned<String>>,
    pub role_arn: Option<Spanned<String>>,
    pub source: Option<Spanned<String>>,
    pub session_name: Option<Spanned<String>>,
    pub duration: Option<Spanned<String>>,
    pub external_id: Option<Spanned<String>>,
    pub mfa_serial: Option<Spanned<String>>,
    pub mfa_command: Option<Spanned<String>>,
    pub policy: Option<Spanned<String>>,
    pub policy_arns: Option<Spanned<Vec<String>>>,
    pub tags: Option<Spanned<BTreeMap<String, String>>>,
    pub transitive_tag_keys: Option<Spanned<Vec<String>>>,
    pub source_identity: Option<Spanned<String>>,
    pub web_identity_token_file: Option<Spanned<String>>,
    pub principal_arn: Option<Spanned<String>>,
    pub saml_assertion_file: Option<Spanned<String>>,
    pub saml_assertion_command: Option<Spanned<String>>,
    pub command_timeout: Option<Spanned<String>>,
    pub credential_process: Option<Spanned<String>>,
    pub profile: Option<Spanned<String>>,
}
