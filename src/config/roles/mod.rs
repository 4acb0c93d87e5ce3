//! Validating `[roles.NAME]` tables: which flow each one is, its keys, and
//! STS's documented bounds, so `imdsd check` rejects what STS would.
//!
//! The flow is `type` when given, else inferred: `profile` → profile,
//! `web_identity_token_file` (or `source = "web_identity_env"`) → web
//! identity, `principal_arn` → SAML, `role_arn` → AssumeRole. GetSessionToken
//! and a served `credential_process` need `type`. Keys that do not apply to
//! the flow are errors, not silently ignored.

use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

mod keys;

use keys::*;
pub(crate) use keys::{check_chains, default_session_name, role_arn_problem};

use super::raw::RawRole;
use super::{
    AssertionSource, AssumeRole, Diagnostic, Flow, RoleConfig, Saml, SourceSpec,
    WebIdentity,
};
use crate::config::value::name_problem;
use crate::environment::Environment;

const MIN_DURATION: Duration = Duration::from_secs(15 * 60);
const MAX_ROLE_DURATION: Duration = Duration::from_secs(12 * 3600);
const MAX_SESSION_TOKEN_DURATION: Duration = Duration::from_secs(36 * 3600);
pub(crate) const DEFAULT_DURATION: Duration = Duration::from_secs(3600);
pub(crate) const DEFAULT_SESSION_TOKEN_DURATION: Duration =
    Duration::from_secs(12 * 3600);
const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
const COMMAND_TIMEOUT_MIN: Duration = Duration::from_secs(1);
const COMMAND_TIMEOUT_MAX: Duration = Duration::from_secs(600);

/// Collects the diagnostics of one role table.
struct Ctx<'a> {
    name: &'a str,
    diags: &'a mut Vec<Diagnostic>,
    failed: bool,
}

impl Ctx<'_> {
    fn error(
        &mut self,
        span: Option<std::ops::Range<usize>>,
        key: &str,
        msg: impl std::fmt::Display,
    ) {
        self.failed = true;
        self.diags.push(Diagnostic::error(
            span,
            format!("roles.{}.{key}: {msg}", self.name),
        ));
    }

    fn warn(
        &mut self,
        span: Option<std::ops::Range<usize>>,
        key: &str,
        msg: impl std::fmt::Display,
    ) {
        self.diags.push(Diagnostic::warning(
            span,
            format!("roles.{}.{key}: {msg}", self.name),
        ));
    }
}

/// The kinds of role table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    AssumeRole,
    WebIdentity,
    Saml,
    SessionToken,
    Profile,
    Process,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::AssumeRole => "assume_role",
            Kind::WebIdentity => "web_identity",
            Kind::Saml => "saml",
            Kind::SessionToken => "session_token",
            Kind::Profile => "profile",
            Kind::Process => "process",
        }
    }

    /// Keys (besides `type`) a table of this kind may have.
    fn keys(self) -> &'static [&'static str] {
        const SESSION: [&str; 2] = ["policy", "policy_arns"];
        match self {
            Kind::AssumeRole => &[
                "role_arn",
                "source",
                "session_name",
                "duration",
                "external_id",
                "mfa_serial",
                "mfa_command",
                "policy",
                "policy_arns",
                "tags",
                "transitive_tag_keys",
                "source_identity",
                "credential_process",
            ],
            Kind::WebIdentity => &[
                "role_arn",
                "source",
                "web_identity_token_file",
                "session_name",
                "duration",
                SESSION[0],
                SESSION[1],
            ],
            Kind::Saml => &[
                "role_arn",
                "principal_arn",
                "saml_assertion_file",
                "saml_assertion_command",
                "command_timeout",
                "duration",
                SESSION[0],
                SESSION[1],
            ],
            Kind::SessionToken => &[
                "source",
                "duration",
                "mfa_serial",
                "mfa_command",
                "credential_process",
            ],
            Kind::Profile => &["profile", "duration", "mfa_command"],
            Kind::Process => &["credential_process"],
        }
    }
}

fn kind_of(raw: &RawRole, cx: &mut Ctx<'_>) -> Option<Kind> {
    if let Some(t) = &raw.kind {
        let kind = match t.get_ref().as_str() {
            "assume_role" => Kind::AssumeRole,
            "web_identity" => Kind::WebIdentity,
            "saml" => Kind::Saml,
            "session_token" => Kind::SessionToken,
            "profile" => Kind::Profile,
            "process" => Kind::Process,
            other => {
                cx.error(Some(t.span()), "type", format!(
                    "`{other}` is not one of assume_role, web_identity, saml, session_token, profile, process"
                ));
                return None;
            }
        };
        return Some(kind);
    }
    let web_env = raw
        .source
        .as_ref()
        .is_some_and(|s| s.get_ref() == "web_identity_env");
    if raw.profile.is_some() {
        Some(Kind::Profile)
    } else if raw.web_identity_token_file.is_some() || web_env {
        Some(Kind::WebIdentity)
    } else if raw.principal_arn.is_some() {
        Some(Kind::Saml)
    } else if raw.role_arn.is_some() {
        Some(Kind::AssumeRole)
    } else {
        cx.error(None, "type", "say how to get credentials: role_arn (AssumeRole), web_identity_token_file, \
            principal_arn (SAML), profile = \"NAME\", or type = \"session_token\" / \"process\"");
        None
    }
}

/// Validates one role table.
pub(crate) fn validate_role(
    name: &str,
    raw: &Spanned<RawRole>,
    env: &Environment,
    diags: &mut Vec<Diagnostic>,
) -> Option<RoleConfig> {
    let mut cx = Ctx {
        name,
        diags,
        failed: false,
    };
    let table = raw.get_ref();
    let kind = kind_of(table, &mut cx)?;
    for (key, span) in table.present() {
        if !kind.keys().contains(&key) {
            cx.error(
                Some(span),
                key,
                format!("does not apply to a {} role", kind.name()),
            );
        }
    }
    let flow =
        match kind {
            Kind::AssumeRole => assume_role(table, env, &mut cx).map(Flow::AssumeRole),
            Kind::WebIdentity => web_identity(table, env, &mut cx).map(Flow::WebIdentity),
            Kind::Saml => saml(table, raw.span(), &mut cx).map(Flow::Saml),
            Kind::SessionToken => session_token(table, raw.span(), &mut cx),
            Kind::Profile => required(&table.profile, "profile", raw.span(), &mut cx)
                .map(|name| Flow::Profile {
                    name,
                    mfa_command: table.mfa_command.as_ref().map(|c| c.get_ref().clone()),
                }),
            Kind::Process => required(
                &table.credential_process,
                "credential_process",
                raw.span(),
                &mut cx,
            )
            .map(Flow::Process),
        };
    let duration = duration(table, kind, &mut cx);
    if cx.failed {
        return None;
    }
    Some(RoleConfig {
        name: name.into(),
        duration: duration?,
        flow: flow?,
    })
}

fn required(
    v: &Option<Spanned<String>>,
    key: &str,
    table: std::ops::Range<usize>,
    cx: &mut Ctx<'_>,
) -> Option<String> {
    match v {
        Some(v) if !v.get_ref().trim().is_empty() => Some(v.get_ref().trim().to_string()),
        Some(v) => {
            cx.error(Some(v.span()), key, "must not be empty");
            None
        }
        None => {
            cx.error(Some(table), key, "is required");
            None
        }
    }
}

// === flows ===

fn assume_role(raw: &RawRole, env: &Environment, cx: &mut Ctx<'_>) -> Option<AssumeRole> {
    let role_arn = checked(&raw.role_arn, "role_arn", role_arn_problem, cx);
    let source = match &raw.source {
        Some(s) => parse_source(s, raw, cx),
        None => {
            cx.error(raw.role_arn.as_ref().map(Spanned::span), "source", "is required: \"env\", \"profile:NAME\", \"role:NAME\", \"process\", \"imds\" or \"container\"");
            None
        }
    };
    let session_name = session_name(raw, env, cx);
    let external_id = checked(&raw.external_id, "external_id", external_id_problem, cx);
    let source_identity = checked(
        &raw.source_identity,
        "source_identity",
        |v| name_problem(v, 2, 64, ""),
        cx,
    );
    let mfa = mfa(raw, cx);
    let session = session_policy(raw, cx);
    let (tags, transitive_tag_keys) = tags(raw, cx);
    Some(AssumeRole {
        role_arn: role_arn?,
        source: source?,
        session_name,
        external_id,
        mfa,
        session,
        tags,
        transitive_tag_keys,
        source_identity,
    })
}

fn web_identity(
    raw: &RawRole,
    env: &Environment,
    cx: &mut Ctx<'_>,
) -> Option<WebIdentity> {
    let from_env = raw
        .source
        .as_ref()
        .is_some_and(|s| s.get_ref() == "web_identity_env");
    if let Some(s) = raw.source.as_ref().filter(|_| !from_env) {
        cx.error(
            Some(s.span()),
            "source",
            "a web identity role takes only source = \"web_identity_env\"",
        );
    }
    let (role_arn, token_file) = if from_env {
        web_identity_from_env(raw, env, cx)
    } else {
        let arn = checked(&raw.role_arn, "role_arn", role_arn_problem, cx);
        (
            arn,
            raw.web_identity_token_file
                .as_ref()
                .map(|f| f.get_ref().clone()),
        )
    };
    let session_name = match (
        &raw.session_name,
        from_env.then(|| env.get("AWS_ROLE_SESSION_NAME")).flatten(),
    ) {
        (None, Some(from_env)) => from_env.to_string(),
        _ => session_name(raw, env, cx),
    };
    let session = session_policy(raw, cx);
    Some(WebIdentity {
        role_arn: role_arn?,
        token_file: PathBuf::from(token_file?),
        session_name,
        session,
    })
}

/// `source = "web_identity_env"`: the role ARN and token file, each from
/// the role's table when set there, else from the daemon's environment
/// (as EKS sets them for IRSA); an error when either is missing.
fn web_identity_from_env(
    raw: &RawRole,
    env: &Environment,
    cx: &mut Ctx<'_>,
) -> (Option<String>, Option<String>) {
    let arn = raw
        .role_arn
        .as_ref()
        .map(|a| a.get_ref().clone())
        .or_else(|| env.get("AWS_ROLE_ARN").map(String::from));
    let file = raw
        .web_identity_token_file
        .as_ref()
        .map(|f| f.get_ref().clone())
        .or_else(|| env.get("AWS_WEB_IDENTITY_TOKEN_FILE").map(String::from));
    let span = raw.source.as_ref().map(Spanned::span);
    if arn.is_none() || file.is_none() {
        cx.error(span, "source", "web_identity_env needs AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE in the daemon's environment");
    }
    if let Some(problem) = arn.as_deref().and_then(role_arn_problem)
        && raw.role_arn.is_none()
    {
        cx.error(None, "source", format!("AWS_ROLE_ARN: {problem}"));
    }
    (arn, file)
}

fn saml(raw: &RawRole, table: std::ops::Range<usize>, cx: &mut Ctx<'_>) -> Option<Saml> {
    let role_arn = checked(&raw.role_arn, "role_arn", role_arn_problem, cx);
    let principal_arn = checked(
        &raw.principal_arn,
        "principal_arn",
        principal_arn_problem,
        cx,
    );
    let timeout = command_timeout(raw, cx);
    let assertion = match (&raw.saml_assertion_file, &raw.saml_assertion_command) {
        (Some(f), None) => Some(AssertionSource::File(PathBuf::from(f.get_ref()))),
        (None, Some(c)) => Some(AssertionSource::Command {
            command: c.get_ref().clone(),
            timeout,
        }),
        (Some(_), Some(c)) => {
            cx.error(
                Some(c.span()),
                "saml_assertion_command",
                "set saml_assertion_file or saml_assertion_command, not both",
            );
            None
        }
        (None, None) => {
            cx.error(
                Some(table),
                "saml_assertion_file",
                "a SAML role needs saml_assertion_file or saml_assertion_command",
            );
            None
        }
    };
    let session = session_policy(raw, cx);
    Some(Saml {
        role_arn: role_arn?,
        principal_arn: principal_arn?,
        assertion: assertion?,
        session,
    })
}

fn session_token(
    raw: &RawRole,
    table: std::ops::Range<usize>,
    cx: &mut Ctx<'_>,
) -> Option<Flow> {
    let source = match &raw.source {
        Some(s) => parse_source(s, raw, cx),
        None => {
            cx.error(
                Some(table),
                "source",
                "is required (the long-term keys GetSessionToken is signed with)",
            );
            None
        }
    };
    if let (Some(SourceSpec::Role(_)), Some(s)) = (&source, &raw.source) {
        cx.error(
            Some(s.span()),
            "source",
            "GetSessionToken needs long-term keys, not another role's session",
        );
    }
    let mfa = mfa(raw, cx);
    Some(Flow::SessionToken {
        source: source?,
        mfa,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load::parse;

    const HEAD: &str = "[[imds]]\nrole = \"r\"\n";

    fn check(
        role: &str,
        env: &[(&str, &str)],
    ) -> (Option<crate::config::Config>, Vec<String>) {
        let text = format!(
            "{HEAD}[roles.r]\n{role}\n[roles.base]\ntype = \"session_token\"\nsource = \"env\"\n"
        );
        let (config, diags) = parse(&text, &Environment::from_pairs(env.iter().copied()));
        (config, diags.into_iter().map(|d| d.message).collect())
    }

    fn errors_of(role: &str) -> Vec<String> {
        let (config, msgs) = check(role, &[]);
        assert!(config.is_none(), "expected errors for {role}");
        msgs
    }

    fn has(msgs: &[String], needle: &str) -> bool {
        msgs.iter().any(|m| m.contains(needle))
    }

    const ARN: &str = "role_arn = \"arn:aws:iam::123456789012:role/x\"\n";

    #[test]
    fn the_flow_is_inferred_from_the_keys() {
        let flow = |role: &str, env: &[(&str, &str)]| {
            check(role, env).0.unwrap().roles["r"].flow.clone()
        };
        assert!(matches!(
            flow(&format!("{ARN}source = \"env\""), &[]),
            Flow::AssumeRole(_)
        ));
        assert!(matches!(
            flow(&format!("{ARN}web_identity_token_file = \"/t\""), &[]),
            Flow::WebIdentity(_)
        ));
        let saml = format!(
            "{ARN}principal_arn = \"arn:aws:iam::123456789012:saml-provider/p\"\nsaml_assertion_file = \"/a\""
        );
        assert!(matches!(flow(&saml, &[]), Flow::Saml(_)));
        assert!(matches!(flow("profile = \"p\"", &[]), Flow::Profile { .. }));
        assert!(matches!(
            flow("type = \"process\"\ncredential_process = \"x\"", &[]),
            Flow::Process(_)
        ));
        assert!(has(
            &errors_of("source = \"env\""),
            "say how to get credentials"
        ));
    }

    #[test]
    fn every_flow_key_is_a_table_key_and_every_table_key_serves_a_flow() {
        let kinds = [
            Kind::AssumeRole,
            Kind::WebIdentity,
            Kind::Saml,
            Kind::SessionToken,
            Kind::Profile,
            Kind::Process,
        ];
        for kind in kinds {
            for key in kind.keys() {
                assert!(RawRole::KEYS.contains(key), "{}: {key}", kind.name());
            }
        }
        for key in RawRole::KEYS {
            assert!(
                kinds.iter().any(|k| k.keys().contains(key)),
                "{key} applies to no flow"
            );
        }
    }

    #[test]
    fn keys_that_do_not_apply_are_errors() {
        let msgs = errors_of(&format!(
            "{ARN}web_identity_token_file = \"/t\"\nexternal_id = \"abc\""
        ));
        assert!(
            has(
                &msgs,
                "roles.r.external_id: does not apply to a web_identity role"
            ),
            "{msgs:?}"
        );
        let msgs =
            errors_of("profile = \"p\"\nrole_arn = \"arn:aws:iam::123456789012:role/x\"");
        assert!(
            has(&msgs, "roles.r.role_arn: does not apply to a profile role"),
            "{msgs:?}"
        );
    }

    #[test]
    fn assume_role_parameters_are_checked_against_sts_bounds() {
        let tags: String = (0..51).map(|i| format!("k{i} = \"v\"\n")).collect();
        let cases = [
            (
                format!("{ARN}source = \"env\"\n[roles.r.tags]\n{tags}"),
                "at most 50 session tags",
            ),
            (
                format!(
                    "{ARN}source = \"env\"\ntags = {{ team = \"a\" }}\ntransitive_tag_keys = [\"other\"]"
                ),
                "`other` is not one of this role's tags",
            ),
            (
                format!("{ARN}source = \"env\"\npolicy = \"{{not json\""),
                "policy: is not valid JSON",
            ),
            (
                format!(
                    "{ARN}source = \"env\"\npolicy = '{{\"a\":\"{}\"}}'",
                    "x".repeat(2100)
                ),
                "STS allows 2048",
            ),
            (
                format!(
                    "{ARN}source = \"env\"\npolicy_arns = [{}]",
                    (0..11)
                        .map(|_| "\"arn:aws:iam::aws:policy/ReadOnlyAccess\"")
                        .collect::<Vec<_>>()
                        .join(",")
                ),
                "at most 10 managed policies",
            ),
            (
                format!("{ARN}source = \"env\"\npolicy_arns = [\"ReadOnlyAccess\"]"),
                "is not a policy ARN",
            ),
            (
                format!("{ARN}source = \"env\"\nsource_identity = \"a\""),
                "source_identity",
            ),
            (
                format!("{ARN}source = \"env\"\nmfa_serial = \"short\""),
                "mfa_serial",
            ),
            (
                format!("{ARN}source = \"env\"\nmfa_command = \"x\""),
                "mfa_command: needs mfa_serial",
            ),
            (
                format!("{ARN}source = \"env\"\nduration = \"13h\""),
                "out of range",
            ),
            (format!("{ARN}source = \"keychain\""), "not a known source"),
            (
                format!("{ARN}source = \"process\""),
                "needs credential_process",
            ),
            (
                format!("{ARN}source = \"env\"\ncredential_process = \"x\""),
                "only applies with source = \"process\"",
            ),
        ];
        for (role, needle) in cases {
            let msgs = errors_of(&role);
            assert!(has(&msgs, needle), "{needle}: {msgs:?}");
        }
    }

    #[test]
    fn saml_web_identity_and_session_token_requirements() {
        let saml =
            format!("{ARN}principal_arn = \"arn:aws:iam::123456789012:saml-provider/p\"");
        assert!(has(
            &errors_of(&saml),
            "needs saml_assertion_file or saml_assertion_command"
        ));
        let both = format!(
            "{saml}\nsaml_assertion_file = \"/a\"\nsaml_assertion_command = \"c\""
        );
        assert!(has(&errors_of(&both), "not both"));
        assert!(has(
            &errors_of("source = \"web_identity_env\""),
            "needs AWS_ROLE_ARN"
        ));
        let (config, _) = check(
            "source = \"web_identity_env\"",
            &[
                ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/irsa"),
                ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
            ],
        );
        assert!(config.is_some());
        assert!(has(
            &errors_of("type = \"session_token\"\nsource = \"env\"\nduration = \"37h\""),
            "out of range"
        ));
        let (config, _) = check(
            "type = \"session_token\"\nsource = \"env\"\nduration = \"36h\"",
            &[],
        );
        assert_eq!(
            config.unwrap().roles["r"].duration,
            Duration::from_secs(36 * 3600)
        );
        assert!(has(
            &errors_of("type = \"session_token\"\nsource = \"role:base\""),
            "needs long-term keys"
        ));
    }

    #[test]
    fn web_identity_env_needs_both_variables_and_takes_the_session_name() {
        let arn = ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/irsa");
        let file = ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t");
        for env in [[arn].as_slice(), [file].as_slice()] {
            let (config, msgs) = check("source = \"web_identity_env\"", env);
            assert!(config.is_none(), "{env:?}");
            assert!(has(
                &msgs,
                "needs AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE"
            ));
        }
        let web_identity = |env: &[(&str, &str)]| {
            let (config, msgs) = check("source = \"web_identity_env\"", env);
            match config.unwrap_or_else(|| panic!("{msgs:?}")).roles["r"]
                .flow
                .clone()
            {
                Flow::WebIdentity(w) => w,
                other => panic!("{other:?}"),
            }
        };
        let w = web_identity(&[arn, file, ("AWS_ROLE_SESSION_NAME", "pod-7")]);
        assert_eq!(
            (w.role_arn.as_str(), w.token_file, w.session_name.as_str()),
            (arn.1, PathBuf::from("/t"), "pod-7")
        );
        let w = web_identity(&[arn, file, ("USER", "alice")]);
        assert_eq!(w.session_name, "imdsd-alice");
    }

    #[test]
    fn profile_and_process_values_are_trimmed_and_never_empty() {
        let flow = |role: &str| {
            let (config, msgs) = check(role, &[]);
            config.unwrap_or_else(|| panic!("{msgs:?}")).roles["r"]
                .flow
                .clone()
        };
        assert!(
            matches!(flow("profile = \"  dev \""), Flow::Profile { name, .. } if name == "dev")
        );
        assert!(
            matches!(flow("type = \"process\"\ncredential_process = \" helper --json \""), Flow::Process(c) if c == "helper --json")
        );
        assert!(has(&errors_of("profile = \"  \""), "must not be empty"));
        assert!(has(
            &errors_of("type = \"process\"\ncredential_process = \"\""),
            "must not be empty"
        ));
    }

    #[test]
    fn profile_and_role_sources_need_a_name() {
        for source in ["profile:", "role: ", "profile:  ", "role:"] {
            let msgs = errors_of(&format!("{ARN}source = \"{source}\""));
            assert!(has(&msgs, "is not a known source"), "{source}: {msgs:?}");
        }
        let flow = check(&format!("{ARN}source = \"profile: dev \""), &[])
            .0
            .unwrap()
            .roles["r"]
            .flow
            .clone();
        assert!(
            matches!(flow, Flow::AssumeRole(a) if a.source == SourceSpec::Profile("dev".into()))
        );
    }

    #[test]
    fn session_policy_limits_are_inclusive_and_arns_need_both_prefix_and_length() {
        let ok = |extra: &str| {
            let (config, msgs) = check(&format!("{ARN}source = \"env\"\n{extra}"), &[]);
            assert!(config.is_some(), "{extra}: {msgs:?}");
        };
        let padding = "x".repeat(2048 - r#"{"a":""}"#.len());
        ok(&format!("policy = '{{\"a\":\"{padding}\"}}'"));
        let ten = ["\"arn:aws:iam::aws:policy/ReadOnlyAccess\""; 10].join(", ");
        ok(&format!("policy_arns = [{ten}]"));
        for bad in [
            "xyz:aws:iam::aws:policy/ReadOnlyAccess",
            "arn:aws:iam::aws:p",
        ] {
            let msgs =
                errors_of(&format!("{ARN}source = \"env\"\npolicy_arns = [\"{bad}\"]"));
            assert!(has(&msgs, "is not a policy ARN"), "{bad}: {msgs:?}");
        }
    }

    #[test]
    fn session_tags_keep_to_sts_limits_inclusively() {
        let with_tags = |tags: &str| {
            check(
                &format!("{ARN}source = \"env\"\n[roles.r.tags]\n{tags}"),
                &[],
            )
        };
        let fifty: String = (0..50).map(|i| format!("k{i} = \"v\"\n")).collect();
        let long_key = "k".repeat(128);
        let long_value = "v".repeat(256);
        for good in [
            fifty,
            format!("{long_key} = \"v\"\n"),
            format!("k = \"{long_value}\"\n"),
            "\"Team name_.:/=+-@\" = \"a b_.:/=+-@\"\n".into(),
            "k = \"\"\n".into(),
        ] {
            let (config, msgs) = with_tags(&good);
            assert!(config.is_some(), "{good}: {msgs:?}");
        }
        for (bad, needle) in [
            (format!("{long_key}k = \"v\"\n"), "must be 1 to 128"),
            ("\"\" = \"v\"\n".into(), "must be 1 to 128"),
            ("\"a!b\" = \"v\"\n".into(), "must be 1 to 128"),
            (format!("k = \"{long_value}v\"\n"), "must be up to 256"),
            ("k = \"a!b\"\n".into(), "must be up to 256"),
        ] {
            let (config, msgs) = with_tags(&bad);
            assert!(config.is_none() && has(&msgs, needle), "{bad}: {msgs:?}");
        }
    }

    #[test]
    fn transitive_tag_keys_are_at_most_50() {
        let tags: String = (0..51).map(|i| format!("k{i} = \"v\"\n")).collect();
        let keys = |n: usize| {
            let list: Vec<String> = (0..n).map(|i| format!("\"k{i}\"")).collect();
            format!(
                "{ARN}source = \"env\"\ntransitive_tag_keys = [{}]\n[roles.r.tags]\n{tags}",
                list.join(", ")
            )
        };
        // 51 tags are refused on their own; count only the keys' message.
        let (_, msgs) = check(&keys(50), &[]);
        assert!(
            !has(&msgs, "transitive_tag_keys: STS allows at most 50"),
            "{msgs:?}"
        );
        let (_, msgs) = check(&keys(51), &[]);
        assert!(
            has(&msgs, "transitive_tag_keys: STS allows at most 50"),
            "{msgs:?}"
        );
    }

    #[test]
    fn saml_needs_a_saml_provider_and_its_command_takes_a_timeout() {
        let saml = |principal: &str, extra: &str| {
            format!(
                "{ARN}principal_arn = \"{principal}\"\nsaml_assertion_command = \"get-saml\"\n{extra}"
            )
        };
        let provider = "arn:aws:iam::123456789012:saml-provider/corp";
        let timeout = |extra: &str| {
            let (config, msgs) = check(&saml(provider, extra), &[]);
            match config.unwrap_or_else(|| panic!("{msgs:?}")).roles["r"]
                .flow
                .clone()
            {
                Flow::Saml(Saml {
                    assertion: AssertionSource::Command { timeout, .. },
                    ..
                }) => timeout,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(timeout(""), Duration::from_secs(30));
        assert_eq!(timeout("command_timeout = \"5s\""), Duration::from_secs(5));
        let msgs = errors_of(&saml("arn:aws:iam::123456789012:role/corp", ""));
        assert!(has(&msgs, "is not a SAML provider ARN"), "{msgs:?}");
    }

    #[test]
    fn a_role_arn_names_a_role() {
        let msgs =
            errors_of("role_arn = \"arn:aws:iam::123456789012:role/\"\nsource = \"env\"");
        assert!(has(&msgs, "is not a role ARN"), "{msgs:?}");
    }

    #[test]
    fn container_is_a_source() {
        let (config, msgs) = check(&format!("{ARN}source = \"container\""), &[]);
        let flow = config.unwrap_or_else(|| panic!("{msgs:?}")).roles["r"]
            .flow
            .clone();
        assert!(matches!(flow, Flow::AssumeRole(a) if a.source == SourceSpec::Container));
    }

    #[test]
    fn session_tokens_last_12_hours_by_default() {
        let (config, _) = check("type = \"session_token\"\nsource = \"env\"", &[]);
        assert_eq!(
            config.unwrap().roles["r"].duration,
            Duration::from_secs(12 * 3600)
        );
    }

    #[test]
    fn chained_roles_are_capped_at_an_hour_and_loops_are_refused() {
        let (config, msgs) = check(
            &format!("{ARN}source = \"role:base\"\nduration = \"6h\""),
            &[],
        );
        assert_eq!(
            config.unwrap().roles["r"].duration,
            crate::config::value::CHAINED_MAX
        );
        assert!(
            has(&msgs, "STS caps role-chained sessions at 1h"),
            "{msgs:?}"
        );
        assert!(has(
            &errors_of(&format!("{ARN}source = \"role:nope\"")),
            "no role named `nope`"
        ));
        assert!(has(
            &errors_of(&format!("{ARN}source = \"role:r\"")),
            "role chain loops: r -> r"
        ));
    }
}
