//! Validating `[roles.NAME]` tables: which flow each one is, its keys, and
//! STS's documented bounds, so `imdsd check` rejects what STS would.
//!
//! The flow is `type` when given, else inferred: `profile` → profile,
//! `web_identity_token_file` (or `source = "web_identity_env"`) → web
//! identity, `principal_arn` → SAML, `role_arn` → AssumeRole. GetSessionToken
//! and a served `credential_process` need `type`. Keys that do not apply to
//! the flow are errors, not silently ignored.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::raw::RawRole;
use super::{
    AssertionSource, AssumeRole, Diagnostic, Flow, Mfa, RoleConfig, Saml, SessionPolicy,
    Severity, SourceSpec, WebIdentity,
};
use crate::environment::Environment;

const MIN_DURATION: Duration = Duration::from_secs(15 * 60);
const MAX_ROLE_DURATION: Duration = Duration::from_secs(12 * 3600);
const MAX_SESSION_TOKEN_DURATION: Duration = Duration::from_secs(36 * 3600);
const DEFAULT_DURATION: Duration = Duration::from_secs(3600);
const DEFAULT_SESSION_TOKEN_DURATION: Duration = Duration::from_secs(12 * 3600);
/// STS caps role-chained sessions at one hour.
pub const CHAINED_MAX: Duration = Duration::from_secs(3600);
const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

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

/// The keys that are set in a raw table, with their spans.
fn present(raw: &RawRole) -> Vec<(&'static str, std::ops::Range<usize>)> {
    let mut out = Vec::new();
    macro_rules! key {
        ($($field:ident),*) => {$(
            if let Some(v) = &raw.$field { out.push((stringify!($field), v.span())); }
        )*};
    }
    key!(
        role_arn,
        source,
        session_name,
        duration,
        external_id,
        mfa_serial,
        mfa_command,
        policy,
        policy_arns,
        tags,
        transitive_tag_keys,
        source_identity,
        web_identity_token_file,
        principal_arn,
        saml_assertion_file,
        saml_assertion_command,
        command_timeout,
        credential_process,
        profile
    );
    out
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
pub fn validate_role(
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
    for (key, span) in present(table) {
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
        (arn, file)
    } else {
        let arn = checked(&raw.role_arn, "role_arn", role_arn_problem, cx);
        (
            arn,
            raw.web_identity_token_file
                .as_ref()
                .map(|f| f.get_ref().clone()),
        )
    };
    if let Some(problem) = role_arn.as_deref().and_then(role_arn_problem) {
        if from_env && raw.role_arn.is_none() {
            cx.error(None, "source", format!("AWS_ROLE_ARN: {problem}"));
        }
    }
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

// === keys ===

fn checked(
    v: &Option<Spanned<String>>,
    key: &str,
    problem: impl Fn(&str) -> Option<String>,
    cx: &mut Ctx<'_>,
) -> Option<String> {
    let v = v.as_ref()?;
    match problem(v.get_ref()) {
        Some(p) => {
            cx.error(Some(v.span()), key, p);
            None
        }
        None => Some(v.get_ref().clone()),
    }
}

fn parse_source(
    s: &Spanned<String>,
    raw: &RawRole,
    cx: &mut Ctx<'_>,
) -> Option<SourceSpec> {
    let text = s.get_ref().trim();
    let spec = match text.split_once(':') {
        None => {
            match text {
                "env" => Some(SourceSpec::Env),
                "imds" => Some(SourceSpec::Imds),
                "container" => Some(SourceSpec::Container),
                "process" => {
                    match &raw.credential_process {
                        Some(cmd) => Some(SourceSpec::Process(cmd.get_ref().clone())),
                        None => {
                            cx.error(Some(s.span()), "source", "source = \"process\" needs credential_process = \"COMMAND\"");
                            return None;
                        }
                    }
                }
                _ => None,
            }
        }
        Some(("profile", name)) if !name.trim().is_empty() => {
            Some(SourceSpec::Profile(name.trim().into()))
        }
        Some(("role", name)) if !name.trim().is_empty() => {
            Some(SourceSpec::Role(name.trim().into()))
        }
        Some(_) => None,
    };
    if spec.is_none() {
        cx.error(Some(s.span()), "source", format!(
            "`{text}` is not a known source; use \"env\", \"profile:NAME\", \"role:NAME\", \"process\", \"imds\" or \"container\""
        ));
    }
    if let (Some(cmd), false) = (
        &raw.credential_process,
        matches!(spec, Some(SourceSpec::Process(_))),
    ) {
        cx.error(
            Some(cmd.span()),
            "credential_process",
            "only applies with source = \"process\" (or type = \"process\")",
        );
    }
    spec
}

fn session_name(raw: &RawRole, env: &Environment, cx: &mut Ctx<'_>) -> String {
    match &raw.session_name {
        Some(s) => {
            if let Some(problem) = name_problem(s.get_ref(), 2, 64, "") {
                cx.error(Some(s.span()), "session_name", problem);
            }
            s.get_ref().clone()
        }
        None => default_session_name(env),
    }
}

fn mfa(raw: &RawRole, cx: &mut Ctx<'_>) -> Option<Mfa> {
    let serial = checked(
        &raw.mfa_serial,
        "mfa_serial",
        |v| name_problem(v, 9, 256, "/:"),
        cx,
    );
    if let (None, Some(cmd)) = (&raw.mfa_serial, &raw.mfa_command) {
        cx.error(Some(cmd.span()), "mfa_command", "needs mfa_serial");
    }
    let command = raw.mfa_command.as_ref().map(|c| c.get_ref().clone());
    serial.map(|serial| Mfa { serial, command })
}

fn session_policy(raw: &RawRole, cx: &mut Ctx<'_>) -> SessionPolicy {
    let policy = raw.policy.as_ref().map(|p| {
        let text = p.get_ref();
        if let Err(e) = serde_json::from_str::<serde_json::Value>(text) {
            cx.error(Some(p.span()), "policy", format!("is not valid JSON: {e}"));
        } else if text.len() > 2048 {
            cx.error(
                Some(p.span()),
                "policy",
                format!("is {} characters; STS allows 2048", text.len()),
            );
        }
        text.clone()
    });
    let policy_arns = raw.policy_arns.as_ref().map_or_else(Vec::new, |arns| {
        if arns.get_ref().len() > 10 {
            cx.error(
                Some(arns.span()),
                "policy_arns",
                "STS allows at most 10 managed policies per session",
            );
        }
        for arn in arns.get_ref() {
            if !arn.starts_with("arn:") || !(20..=2048).contains(&arn.len()) {
                cx.error(
                    Some(arns.span()),
                    "policy_arns",
                    format!("`{arn}` is not a policy ARN"),
                );
            }
        }
        arns.get_ref().clone()
    });
    SessionPolicy {
        policy,
        policy_arns,
    }
}

fn tags(raw: &RawRole, cx: &mut Ctx<'_>) -> (Vec<(String, String)>, Vec<String>) {
    let tags: BTreeMap<String, String> = raw
        .tags
        .as_ref()
        .map(|t| t.get_ref().clone())
        .unwrap_or_default();
    if let Some(t) = &raw.tags {
        if tags.len() > 50 {
            cx.error(Some(t.span()), "tags", "STS allows at most 50 session tags");
        }
        let ok =
            |c: char| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c);
        for (k, v) in &tags {
            if !(1..=128).contains(&k.chars().count()) || !k.chars().all(ok) {
                cx.error(
                    Some(t.span()),
                    "tags",
                    format!(
                        "key `{k}` must be 1 to 128 letters, digits, spaces and _.:/=+-@"
                    ),
                );
            }
            if v.chars().count() > 256 || !v.chars().all(ok) {
                cx.error(Some(t.span()), "tags", format!("value of `{k}` must be up to 256 letters, digits, spaces and _.:/=+-@"));
            }
        }
    }
    let transitive = raw
        .transitive_tag_keys
        .as_ref()
        .map_or_else(Vec::new, |keys| {
            if keys.get_ref().len() > 50 {
                cx.error(
                    Some(keys.span()),
                    "transitive_tag_keys",
                    "STS allows at most 50",
                );
            }
            for k in keys.get_ref() {
                if !tags.contains_key(k) {
                    cx.error(
                        Some(keys.span()),
                        "transitive_tag_keys",
                        format!("`{k}` is not one of this role's tags"),
                    );
                }
            }
            keys.get_ref().clone()
        });
    (tags.into_iter().collect(), transitive)
}

fn command_timeout(raw: &RawRole, cx: &mut Ctx<'_>) -> Duration {
    let Some(t) = &raw.command_timeout else {
        return DEFAULT_COMMAND_TIMEOUT;
    };
    match humantime::parse_duration(t.get_ref()) {
        Ok(d) if d >= Duration::from_secs(1) && d <= Duration::from_secs(600) => d,
        _ => {
            cx.error(
                Some(t.span()),
                "command_timeout",
                "must be a duration from 1s to 10m",
            );
            DEFAULT_COMMAND_TIMEOUT
        }
    }
}

fn duration(raw: &RawRole, kind: Kind, cx: &mut Ctx<'_>) -> Option<Duration> {
    let (default, max) = match kind {
        Kind::SessionToken => {
            (DEFAULT_SESSION_TOKEN_DURATION, MAX_SESSION_TOKEN_DURATION)
        }
        _ => (DEFAULT_DURATION, MAX_ROLE_DURATION),
    };
    let chained =
        matches!(&raw.source, Some(s) if s.get_ref().trim().starts_with("role:"));
    let Some(d) = &raw.duration else {
        return Some(if chained {
            default.min(CHAINED_MAX)
        } else {
            default
        });
    };
    let span = Some(d.span());
    let parsed = match humantime::parse_duration(d.get_ref()) {
        Ok(v) => v,
        Err(e) => {
            cx.error(
                span,
                "duration",
                format!(
                    "`{}` is not a duration like \"1h\" or \"90m\": {e}",
                    d.get_ref()
                ),
            );
            return None;
        }
    };
    if parsed < MIN_DURATION || parsed > max {
        let (lo, hi) = (
            humantime::format_duration(MIN_DURATION),
            humantime::format_duration(max),
        );
        cx.error(
            span,
            "duration",
            format!("`{}` is out of range {lo}..{hi}", d.get_ref()),
        );
        return None;
    }
    if chained && parsed > CHAINED_MAX {
        cx.warn(
            span,
            "duration",
            "STS caps role-chained sessions at 1h; using 1h",
        );
        return Some(CHAINED_MAX);
    }
    if parsed < Duration::from_secs(3600) {
        cx.warn(span, "duration", "sessions shorter than 1h are refreshed at half-life, so SDKs will see \
            credentials with under 30 minutes left and treat them as near expiry (botocore refreshes on every call)");
    }
    Some(parsed)
}

// === value checks ===

/// `arn:PARTITION:iam::ACCOUNT:role/NAME`, within STS's 20..2048 length.
pub fn role_arn_problem(arn: &str) -> Option<String> {
    iam_arn_problem(
        arn,
        "role/",
        "a role ARN like arn:aws:iam::123456789012:role/NAME",
    )
}

fn principal_arn_problem(arn: &str) -> Option<String> {
    iam_arn_problem(
        arn,
        "saml-provider/",
        "a SAML provider ARN like arn:aws:iam::123456789012:saml-provider/NAME",
    )
}

fn iam_arn_problem(arn: &str, resource: &str, what: &str) -> Option<String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let well_formed = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "iam"
        && parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].chars().all(|c| c.is_ascii_digit())
        && parts[5].starts_with(resource)
        && parts[5].len() > resource.len();
    if !well_formed {
        return Some(format!("`{arn}` is not {what}"));
    }
    (!(20..=2048).contains(&arn.len()))
        .then(|| "an ARN must be 20 to 2048 characters".into())
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '=' | ',' | '.' | '@' | '-')
}

/// `min..=max` characters of `[\w+=,.@-]` plus `extra`.
fn name_problem(v: &str, min: usize, max: usize, extra: &str) -> Option<String> {
    let ok = v.chars().all(|c| is_name_char(c) || extra.contains(c));
    (!(min..=max).contains(&v.len()) || !ok)
        .then(|| format!("`{v}` must be {min} to {max} characters of letters, digits and _+=,.@-{extra}"))
}

fn external_id_problem(id: &str) -> Option<String> {
    name_problem(id, 2, 1224, ":/")
        .map(|_| "must be 2 to 1224 characters of letters, digits and _+=,.@:/-".into())
}

/// `imdsd-<user>`, with the user name cut down to what STS accepts.
pub fn default_session_name(env: &Environment) -> String {
    let user: String = env
        .first_of(&["USER", "LOGNAME"])
        .unwrap_or("")
        .chars()
        .filter(|c| is_name_char(*c))
        .collect();
    let name = if user.is_empty() {
        "imdsd".to_string()
    } else {
        format!("imdsd-{user}")
    };
    name.chars().take(64).collect()
}

/// Errors for `role:NAME` sources that name no role, themselves, or form a
/// cycle.
pub fn check_chains(
    roles: &BTreeMap<String, RoleConfig>,
    spans: &BTreeMap<String, std::ops::Range<usize>>,
    diags: &mut Vec<Diagnostic>,
) {
    for (name, role) in roles {
        let mut seen = vec![name.as_str()];
        let mut next = role.depends_on();
        while let Some(dep) = next {
            let span = spans.get(name).cloned();
            if !roles.contains_key(dep) {
                diags.push(Diagnostic::error(
                    span,
                    format!("roles.{name}.source: no role named `{dep}`"),
                ));
                break;
            }
            if seen.contains(&dep) {
                seen.push(dep);
                diags.push(Diagnostic::error(
                    span,
                    format!(
                        "roles.{name}.source: role chain loops: {}",
                        seen.join(" -> ")
                    ),
                ));
                break;
            }
            seen.push(dep);
            next = roles[dep].depends_on();
        }
    }
}

/// Whether any diagnostic is an error.
pub fn has_errors(diags: &[Diagnostic]) -> bool {
    diags.iter().any(|d| d.severity == Severity::Error)
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
    fn chained_roles_are_capped_at_an_hour_and_loops_are_refused() {
        let (config, msgs) = check(
            &format!("{ARN}source = \"role:base\"\nduration = \"6h\""),
            &[],
        );
        assert_eq!(config.unwrap().roles["r"].duration, CHAINED_MAX);
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
