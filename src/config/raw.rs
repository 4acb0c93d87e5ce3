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
pub(crate) struct RawConfig {
    #[serde(default)]
    pub(crate) imds: Vec<Spanned<RawListener>>,
    #[serde(default)]
    pub(crate) sts: Option<Spanned<RawSts>>,
    #[serde(default)]
    pub(crate) roles: BTreeMap<Spanned<String>, Spanned<RawRole>>,
    pub(crate) admin: Option<Spanned<RawAdmin>>,
    pub(crate) daemon: Option<Spanned<RawDaemon>>,
}

/// The `[admin]` table: health and metrics.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAdmin {
    pub(crate) listen: Option<Spanned<String>>,
    pub(crate) allow_non_loopback: Option<Spanned<bool>>,
}

/// The `[daemon]` table: how the daemon itself runs.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDaemon {
    pub(crate) control_socket: Option<Spanned<String>>,
    pub(crate) watch_config: Option<Spanned<bool>>,
}

/// One `[[imds]]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawListener {
    pub(crate) listen: Option<Spanned<String>>,
    pub(crate) role: Option<Spanned<String>>,
    pub(crate) v1: Option<Spanned<bool>>,
    pub(crate) allow_non_loopback: Option<Spanned<bool>>,
    pub(crate) allow_uids: Option<Spanned<Vec<u32>>>,
}

/// The `[sts]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSts {
    pub(crate) region: Option<Spanned<String>>,
    pub(crate) endpoint: Option<Spanned<String>>,
    pub(crate) timeout: Option<Spanned<String>>,
}

/// One `[roles.NAME]` table. Which keys apply depends on the flow; see
/// `config::roles`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRole {
    #[serde(rename = "type")]
    pub(crate) kind: Option<Spanned<String>>,
    pub(crate) role_arn: Option<Spanned<String>>,
    pub(crate) source: Option<Spanned<String>>,
    pub(crate) session_name: Option<Spanned<String>>,
    pub(crate) duration: Option<Spanned<String>>,
    pub(crate) external_id: Option<Spanned<String>>,
    pub(crate) mfa_serial: Option<Spanned<String>>,
    pub(crate) mfa_command: Option<Spanned<String>>,
    pub(crate) policy: Option<Spanned<String>>,
    pub(crate) policy_arns: Option<Spanned<Vec<String>>>,
    pub(crate) tags: Option<Spanned<BTreeMap<String, String>>>,
    pub(crate) transitive_tag_keys: Option<Spanned<Vec<String>>>,
    pub(crate) source_identity: Option<Spanned<String>>,
    pub(crate) web_identity_token_file: Option<Spanned<String>>,
    pub(crate) principal_arn: Option<Spanned<String>>,
    pub(crate) saml_assertion_file: Option<Spanned<String>>,
    pub(crate) saml_assertion_command: Option<Spanned<String>>,
    pub(crate) command_timeout: Option<Spanned<String>>,
    pub(crate) credential_process: Option<Spanned<String>>,
    pub(crate) profile: Option<Spanned<String>>,
}
