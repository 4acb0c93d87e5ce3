//! The keys of a role table and the values STS accepts for them: each
//! check names the key and the bound, so `imdsd check` says what STS would
//! otherwise answer with an opaque `ValidationError`.

use std::collections::BTreeMap;
use std::time::Duration;

use toml::Spanned;

use super::{
    COMMAND_TIMEOUT_MAX, COMMAND_TIMEOUT_MIN, Ctx, DEFAULT_COMMAND_TIMEOUT,
    DEFAULT_DURATION, DEFAULT_SESSION_TOKEN_DURATION, Kind, MAX_ROLE_DURATION,
    MAX_SESSION_TOKEN_DURATION, MIN_DURATION,
};
use crate::config::raw::RawRole;
use crate::config::value::{self, name_problem};
use crate::config::{Diagnostic, Mfa, RoleConfig, SessionPolicy, SourceSpec};
use crate::environment::Environment;

pub(super) fn checked(
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

pub(super) fn parse_source(
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
        Some(("credential", name)) => {
            let name = name.trim();
            if let Some(problem) = value::credential_name_problem(name) {
                cx.error(Some(s.span()), "source", format!("`{text}`: {problem}"));
                return None;
            }
            Some(SourceSpec::Credential(name.into()))
        }
        Some(("keyring", name)) if !name.trim().is_empty() => {
            Some(SourceSpec::Keyring(name.trim().into()))
        }
        Some(_) => None,
    };
    if spec.is_none() {
        cx.error(Some(s.span()), "source", format!(
            "`{text}` is not a known source; use \"env\", \"profile:NAME\", \"role:NAME\", \"credential:NAME\", \"keyring:PROFILE\", \"process\", \"imds\" or \"container\""
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

pub(super) fn session_name(raw: &RawRole, env: &Environment, cx: &mut Ctx<'_>) -> String {
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

pub(super) fn mfa(raw: &RawRole, cx: &mut Ctx<'_>) -> Option<Mfa> {
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

pub(super) fn session_policy(raw: &RawRole, cx: &mut Ctx<'_>) -> SessionPolicy {
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

pub(super) fn tags(
    raw: &RawRole,
    cx: &mut Ctx<'_>,
) -> (Vec<(String, String)>, Vec<String>) {
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

pub(super) fn command_timeout(raw: &RawRole, cx: &mut Ctx<'_>) -> Duration {
    let Some(t) = &raw.command_timeout else {
        return DEFAULT_COMMAND_TIMEOUT;
    };
    value::duration_in(t.get_ref(), COMMAND_TIMEOUT_MIN, COMMAND_TIMEOUT_MAX)
        .unwrap_or_else(|problem| {
            cx.error(Some(t.span()), "command_timeout", problem);
            DEFAULT_COMMAND_TIMEOUT
        })
}

pub(super) fn duration(raw: &RawRole, kind: Kind, cx: &mut Ctx<'_>) -> Option<Duration> {
    let (default, max) = match kind {
        Kind::SessionToken => {
            (DEFAULT_SESSION_TOKEN_DURATION, MAX_SESSION_TOKEN_DURATION)
        }
        _ => (DEFAULT_DURATION, MAX_ROLE_DURATION),
    };
    // Session credentials sign the call: STS treats it as role chaining.
    let chained = matches!(&raw.source, Some(s) if {
        let s = s.get_ref().trim();
        s.starts_with("role:") || s == "imds" || s == "container"
    });
    let Some(d) = &raw.duration else {
        return Some(value::granted_duration(default, chained));
    };
    let span = Some(d.span());
    let asked = match value::duration_in(d.get_ref(), MIN_DURATION, max) {
        Ok(asked) => asked,
        Err(problem) => {
            cx.error(span, "duration", problem);
            return None;
        }
    };
    let granted = value::granted_duration(asked, chained);
    if granted < asked {
        cx.warn(
            span,
            "duration",
            "STS caps role-chained sessions at 1h; using 1h",
        );
    } else if asked < value::LONG_SESSION {
        cx.warn(span, "duration", "sessions shorter than 55m are refreshed at half-life, so SDKs will see \
            credentials with under 30 minutes left and treat them as near expiry (botocore refreshes on every call)");
    }
    Some(granted)
}

// === value checks ===

/// `arn:PARTITION:iam::ACCOUNT:role/NAME`, within STS's 20..2048 length.
pub(crate) fn role_arn_problem(arn: &str) -> Option<String> {
    iam_arn_problem(
        arn,
        "role/",
        "a role ARN like arn:aws:iam::123456789012:role/NAME",
    )
}

pub(super) fn principal_arn_problem(arn: &str) -> Option<String> {
    iam_arn_problem(
        arn,
        "saml-provider/",
        "a SAML provider ARN like arn:aws:iam::123456789012:saml-provider/NAME",
    )
}

pub(super) fn iam_arn_problem(arn: &str, resource: &str, what: &str) -> Option<String> {
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

pub(super) fn external_id_problem(id: &str) -> Option<String> {
    name_problem(id, 2, 1224, ":/")
        .map(|_| "must be 2 to 1224 characters of letters, digits and _+=,.@:/-".into())
}

/// `imdsd-<user>`, with the user name cut down to what STS accepts.
pub(crate) fn default_session_name(env: &Environment) -> String {
    let user: String = env
        .first_of(&["USER", "LOGNAME"])
        .unwrap_or("")
        .chars()
        .filter(|c| value::is_iam_name_char(*c))
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
pub(crate) fn check_chains(
    roles: &BTreeMap<String, RoleConfig>,
    spans: &BTreeMap<String, std::ops::Range<usize>>,
    diags: &mut Vec<Diagnostic>,
) {
    for (name, role) in roles {
        let mut seen = vec![name.as_str()];
        let mut next = role.depends_on();
        while let Some(dep) = next {
            let span = spans.get(name).cloned();
            // A role that exists but has errors of its own is reported there.
            if !spans.contains_key(dep) {
                let hint =
                    crate::config::suggest::hint(dep, spans.keys().map(String::as_str));
                diags.push(Diagnostic::error(
                    span,
                    format!("roles.{name}.source: no role named `{dep}`{hint}"),
                ));
                break;
            }
            if !roles.contains_key(dep) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_and_provider_arns_need_their_resource_account_and_length() {
        assert_eq!(role_arn_problem("arn:aws:iam::123456789012:role/dev"), None);
        assert_eq!(
            role_arn_problem("arn:aws-us-gov:iam::123456789012:role/a/b"),
            None
        );
        for bad in [
            "arn:aws:iam::123456789012:role/",
            "arn:aws:iam::12345678901:role/dev",
            "arn:aws:iam::12345678901x:role/dev",
            "arn:aws:sts::123456789012:role/dev",
            "arn:aws:iam:us-east-1:123456789012:role/dev",
            "arn:aws:iam::123456789012:user/dev",
            "role/dev",
        ] {
            let problem = role_arn_problem(bad).unwrap_or_default();
            assert!(problem.contains("is not a role ARN"), "{bad}: {problem:?}");
        }
        let long = format!("arn:aws:iam::123456789012:role/{}", "r".repeat(2048));
        assert_eq!(
            role_arn_problem(&long).as_deref(),
            Some("an ARN must be 20 to 2048 characters")
        );
        assert_eq!(
            principal_arn_problem("arn:aws:iam::123456789012:saml-provider/okta"),
            None
        );
        assert!(principal_arn_problem("arn:aws:iam::123456789012:role/okta").is_some());
    }

    #[test]
    fn external_ids_are_2_to_1224_allowed_characters() {
        assert_eq!(external_id_problem("ab"), None);
        assert_eq!(external_id_problem("tenant:7/x+y=z,w.v@u-t_s"), None);
        assert_eq!(external_id_problem(&"e".repeat(1224)), None);
        for bad in [
            "a".to_string(),
            "e".repeat(1225),
            "has space".into(),
            "é1".into(),
        ] {
            assert!(external_id_problem(&bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn the_default_session_name_is_imdsd_and_the_user_cut_to_64() {
        let named = |pairs: &[(&str, &str)]| {
            default_session_name(&Environment::from_pairs(pairs.iter().copied()))
        };
        assert_eq!(named(&[("USER", "alice")]), "imdsd-alice");
        assert_eq!(named(&[("LOGNAME", "bob")]), "imdsd-bob");
        assert_eq!(named(&[("USER", "a b!c")]), "imdsd-abc");
        assert_eq!(named(&[]), "imdsd");
        assert_eq!(named(&[("USER", "!!")]), "imdsd");
        let long = named(&[("USER", &"u".repeat(100))]);
        assert_eq!(long.len(), 64);
        assert!(long.starts_with("imdsd-u"));
    }
}
