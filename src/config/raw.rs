//! The config file's schema, exactly as written.
//!
//! Every field keeps its source span (`toml::Spanned`) so that validation can
//! point at the offending line and column. Unknown keys are refused by serde
//! itself (`deny_unknown_fields`), which also names the key and its place.
//! No defaults and no checks live here: see `validate`.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    #[serde(default)]
    pub(crate) imds: Vec<Spanned<RawListener>>,
    #[serde(default)]
    pub(crate) container: Vec<Spanned<RawContainer>>,
    #[serde(default)]
    pub(crate) sts: Option<Spanned<RawSts>>,
    #[serde(default)]
    pub(crate) roles: BTreeMap<Spanned<String>, Spanned<RawRole>>,
    pub(crate) admin: Option<Spanned<RawAdmin>>,
    pub(crate) daemon: Option<Spanned<RawDaemon>>,
    pub(crate) limits: Option<Spanned<RawLimits>>,
    pub(crate) profiles: Option<Spanned<RawProfiles>>,
}

/// The `[profiles]` table: AWS profiles served on demand by name.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProfiles {
    pub(crate) serve: Option<Spanned<RawServe>>,
    pub(crate) idle_after: Option<Spanned<String>>,
    pub(crate) listen: Option<Spanned<String>>,
}

/// `serve = "all"`, `"none"`, or a list of profile names.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawServe {
    Word(String),
    // Untagged enums buffer their input: a `Spanned` inside would lose
    // its span, so problems point at the whole list.
    Names(Vec<String>),
}

/// The `[limits]` table: what one client may take of a listener.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    pub(crate) max_connections: Option<Spanned<i64>>,
    pub(crate) max_connections_per_user: Option<Spanned<i64>>,
    pub(crate) requests_per_second: Option<Spanned<i64>>,
    pub(crate) request_burst: Option<Spanned<i64>>,
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
    pub(crate) audit_log: Option<Spanned<String>>,
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

/// One `[[container]]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawContainer {
    pub(crate) listen: Option<Spanned<String>>,
    pub(crate) roles: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) allow_non_loopback: Option<Spanned<bool>>,
    pub(crate) allow_uids: Option<Spanned<Vec<u32>>>,
    pub(crate) token_dir: Option<Spanned<String>>,
    pub(crate) token_file_owner: Option<Spanned<String>>,
    pub(crate) token_file_mode: Option<Spanned<String>>,
}

/// The `[sts]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSts {
    pub(crate) region: Option<Spanned<String>>,
    pub(crate) endpoint: Option<Spanned<String>>,
    pub(crate) timeout: Option<Spanned<String>>,
}

/// Defines [`RawRole`] from one list of keys, with [`RawRole::KEYS`] and
/// [`RawRole::present`] derived from the same list, so the three cannot
/// drift apart.
macro_rules! role_table {
    ($($field:ident: $ty:ty),* $(,)?) => {
        /// One `[roles.NAME]` table. Which keys apply depends on the flow;
        /// see `config::roles`.
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(crate) struct RawRole {
            #[serde(rename = "type")]
            pub(crate) kind: Option<Spanned<String>>,
            $(pub(crate) $field: Option<Spanned<$ty>>,)*
        }

        impl RawRole {
            /// Every key a role table may have, besides `type`.
            #[cfg(test)]
            pub(crate) const KEYS: &[&str] = &[$(stringify!($field)),*];

            /// The keys that are set, with their spans.
            pub(crate) fn present(&self) -> Vec<(&'static str, Range<usize>)> {
                let mut out = Vec::new();
                $(if let Some(v) = &self.$field {
                    out.push((stringify!($field), v.span()));
                })*
                out
            }
        }
    };
}

role_table! {
    role_arn: String,
    source: String,
    session_name: String,
    duration: String,
    external_id: String,
    mfa_serial: String,
    mfa_command: String,
    policy: String,
    policy_arns: Vec<String>,
    tags: BTreeMap<String, String>,
    transitive_tag_keys: Vec<String>,
    source_identity: String,
    web_identity_token_file: String,
    principal_arn: String,
    saml_assertion_file: String,
    saml_assertion_command: String,
    command_timeout: String,
    credential_process: String,
    profile: String,
}
