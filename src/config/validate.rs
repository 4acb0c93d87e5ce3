//! Pure config validation: raw schema + environment → [`Config`].
//!
//! Every check runs, so one `imdsd check` names every problem at once.
//! Bounds follow STS's documented limits, so a bad value is caught here
//! rather than as an opaque `ValidationError` from STS hours later.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use super::listeners::{WritableDir, parse_listen, validate_listeners};
use super::profile_refs::{self, ProfileFacts};
use super::raw::{RawConfig, RawSts};
use super::{
    AuditTarget, Config, Diagnostic, LimitsConfig, ListenerConfig, Protocol, RoleConfig,
    StsConfig,
};
use super::{roles, value};
use crate::environment::Environment;

const DEFAULT_REGION: &str = "us-east-1";
const DEFAULT_STS_TIMEOUT: Duration = Duration::from_secs(10);
const STS_TIMEOUT_MIN: Duration = Duration::from_secs(1);
const STS_TIMEOUT_MAX: Duration = Duration::from_secs(120);

/// The result of validation: a config when there were no errors, and every
/// diagnostic (errors and warnings) either way.
#[derive(Debug)]
pub(crate) struct Validation {
    pub(crate) config: Option<Config>,
    pub(crate) diagnostics: Vec<Diagnostic>,
    /// Directories the daemon will write (container token files), for the
    /// caller to check: validation itself touches no file.
    pub(crate) writable_dirs: Vec<WritableDir>,
}

/// Checks a parsed config and fills in defaults. `profiles`: the AWS
/// profiles as read at the edge, for the roles that name one and for the
/// region.
pub(crate) fn validate(
    raw: &RawConfig,
    env: &Environment,
    profiles: ProfileFacts<'_>,
) -> Validation {
    let mut diags = Vec::new();
    let roles = validate_roles(raw, env, &mut diags);
    profile_refs::check(raw, profiles, &mut diags);
    let raw_sts = raw.sts.as_ref().map(Spanned::get_ref);
    let sts = validate_sts(raw_sts, env, profiles, &mut diags);
    let (listeners, mut writable_dirs) = validate_listeners(raw, &roles, env, &mut diags);
    check_self_source(&roles, &listeners, env, &mut diags);
    let admin = validate_admin(raw, &listeners, &mut diags);
    let control_socket = validate_control(raw, &mut diags);
    let limits = validate_limits(raw, &mut diags);
    let audit = validate_audit(raw, &mut writable_dirs, &mut diags);
    let profiles = super::on_demand::validate(raw, &listeners, &mut diags);
    // With a [profiles] table, AWS profiles are the roles.
    if raw.roles.is_empty() && raw.profiles.is_none() {
        diags.push(Diagnostic::error(
            None,
            "no roles defined: add a [roles.NAME] table (see examples/imdsd.toml), or a \
             [profiles] table to serve your AWS profiles by name",
        ));
    }
    let has_errors = diags.iter().any(|d| d.severity == super::Severity::Error);
    let config = match (has_errors, sts) {
        (false, Some(sts)) => Some(Config {
            listeners,
            sts,
            roles,
            admin,
            control_socket,
            watch_config: watch_config(raw),
            limits,
            audit,
            profiles,
        }),
        _ => None,
    };
    Validation {
        config,
        diagnostics: diags,
        writable_dirs,
    }
}

// === roles ===

fn validate_roles(
    raw: &RawConfig,
    env: &Environment,
    diags: &mut Vec<Diagnostic>,
) -> BTreeMap<String, RoleConfig> {
    let mut roles = BTreeMap::new();
    let mut spans = BTreeMap::new();
    for (name, role) in &raw.roles {
        if let Some(problem) = super::on_demand::role_name_problem(name.get_ref()) {
            diags.push(Diagnostic::error(Some(name.span()), problem));
            continue;
        }
        spans.insert(name.get_ref().clone(), name.span());
        if let Some(role) = roles::validate_role(name.get_ref(), role, env, diags) {
            roles.insert(name.get_ref().clone(), role);
        }
    }
    roles::check_chains(&roles, &spans, diags);
    roles
}

// === sts ===

/// The `[sts]` settings of a config that does not have the table: from the
/// environment and defaults. An error names what in the environment is
/// wrong.
pub(crate) fn default_sts(
    env: &Environment,
    profiles: ProfileFacts<'_>,
) -> Result<StsConfig, String> {
    let mut diags = Vec::new();
    let sts = validate_sts(None, env, profiles, &mut diags);
    let problems: Vec<String> = diags.into_iter().map(|d| d.message).collect();
    match sts {
        Some(sts) if problems.is_empty() => Ok(sts),
        _ => Err(problems.join("; ")),
    }
}

/// `[sts]`; the region is `region`, else `AWS_REGION`, `AWS_DEFAULT_REGION`,
/// the selected AWS profile's `region`, and `us-east-1`, as the CLI looks.
fn validate_sts(
    raw: Option<&RawSts>,
    env: &Environment,
    profiles: ProfileFacts<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<StsConfig> {
    let empty = RawSts::default();
    let raw = raw.unwrap_or(&empty);
    let region = match &raw.region {
        Some(r) => r.get_ref().clone(),
        None => env
            .first_of(&["AWS_REGION", "AWS_DEFAULT_REGION"])
            .map(str::to_string)
            .or_else(|| profiles.region(env))
            .unwrap_or_else(|| DEFAULT_REGION.into()),
    };
    let region_ok = !region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !region_ok {
        let span = raw.region.as_ref().map(Spanned::span);
        diags.push(Diagnostic::error(
            span,
            format!("sts.region: `{region}` is not a region name"),
        ));
    }
    let (endpoint, endpoint_span, origin) = sts_endpoint(raw, env, &region);
    // An endpoint made from a bad region is bad for the same reason, said once.
    let from_bad_region = origin == "sts.region" && !region_ok;
    if let Some(problem) = endpoint_problem(&endpoint).filter(|_| !from_bad_region) {
        diags.push(Diagnostic::error(
            endpoint_span,
            format!("{origin}: {problem}"),
        ));
    }
    let timeout = match &raw.timeout {
        Some(t) => value::duration_in(t.get_ref(), STS_TIMEOUT_MIN, STS_TIMEOUT_MAX)
            .map_err(|problem| {
                diags.push(Diagnostic::error(
                    Some(t.span()),
                    format!("sts.timeout: {problem}"),
                ))
            })
            .ok(),
        None => Some(DEFAULT_STS_TIMEOUT),
    };
    Some(StsConfig {
        region,
        endpoint,
        timeout: timeout?,
    })
}

/// The STS endpoint, its span in the file (if it came from there) and a name
/// for where it came from, for error messages.
fn sts_endpoint(
    raw: &RawSts,
    env: &Environment,
    region: &str,
) -> (String, Option<Range<usize>>, &'static str) {
    if let Some(e) = &raw.endpoint {
        return (e.get_ref().clone(), Some(e.span()), "sts.endpoint");
    }
    let ignore_env = env
        .get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if !ignore_env {
        for var in ["AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"] {
            if let Some(url) = env.get(var) {
                return (url.to_string(), None, var);
            }
        }
    }
    (regional_endpoint(region), None, "sts.region")
}

/// `https://sts.REGION.amazonaws.com` (`.com.cn` in the China partition).
pub(crate) fn regional_endpoint(region: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://sts.{region}.{suffix}")
}

/// The scheme an endpoint without one most likely meant: `http://` for a
/// loopback host (a local STS stand-in), else `https://`.
fn scheme_for(endpoint: &str) -> &'static str {
    let loopback = reqwest::Url::parse(&format!("http://{endpoint}"))
        .is_ok_and(|u| u.host().is_some_and(crate::addr::is_loopback_host));
    if loopback { "http://" } else { "https://" }
}

/// https anywhere; plain http only to a loopback host, since the request
/// carries a signature over long-term keys.
fn endpoint_problem(endpoint: &str) -> Option<String> {
    let url = match reqwest::Url::parse(endpoint) {
        Ok(url) => url,
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            return Some(format!(
                "`{endpoint}` is not a URL: it has no scheme; write `{}{endpoint}`",
                scheme_for(endpoint)
            ));
        }
        Err(e) => return Some(format!("`{endpoint}` is not a URL: {e}")),
    };
    match url.scheme() {
        "https" => None,
        "http" if url.host().is_some_and(crate::addr::is_loopback_host) => None,
        "http" => Some(format!(
            "`{endpoint}` uses plain http to a non-loopback host; use https"
        )),
        other => Some(format!(
            "`{endpoint}`: scheme `{other}` is not http or https"
        )),
    }
}

/// A role with `source = "imds"` would read this daemon's own answers when
/// it listens where the metadata service is (transparent mode).
fn check_self_source(
    roles: &BTreeMap<String, RoleConfig>,
    listeners: &[ListenerConfig],
    env: &Environment,
    diags: &mut Vec<Diagnostic>,
) {
    let transparent = listeners.iter().any(|l| {
        matches!(l.protocol, Protocol::Imds { .. })
            && l.listen == SocketAddr::from(([169, 254, 169, 254], 80))
    });
    if !transparent || env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT").is_some() {
        return;
    }
    for (name, role) in roles {
        let imds = matches!(
            &role.flow,
            crate::config::Flow::AssumeRole(crate::config::AssumeRole {
                source: crate::config::SourceSpec::Imds,
                ..
            }) | crate::config::Flow::SessionToken {
                source: crate::config::SourceSpec::Imds,
                ..
            }
        );
        if imds {
            diags.push(Diagnostic::error(
                None,
                format!(
                    "roles.{name}.source: \"imds\" would read this daemon's own 169.254.169.254 listener; \
                     set AWS_EC2_METADATA_SERVICE_ENDPOINT to the real one, or do not run in transparent mode here"
                ),
            ));
        }
    }
}

// === admin and control ===

fn validate_admin(
    raw: &RawConfig,
    listeners: &[ListenerConfig],
    diags: &mut Vec<Diagnostic>,
) -> Option<SocketAddr> {
    let admin = raw.admin.as_ref()?;
    let table = admin.get_ref();
    let Some(listen) = &table.listen else {
        diags.push(Diagnostic::error(
            Some(admin.span()),
            "admin: set listen = \"127.0.0.1:16926\" (or remove [admin])",
        ));
        return None;
    };
    let allow = table
        .allow_non_loopback
        .as_ref()
        .is_some_and(|v| *v.get_ref());
    let addr =
        parse_listen(listen.get_ref(), Some(listen.span()), allow, "admin", diags)?;
    if addr.port() != 0 && listeners.iter().any(|l| l.listen == addr) {
        diags.push(Diagnostic::error(
            Some(listen.span()),
            format!("admin.listen: {addr} is also a listener's address"),
        ));
    }
    Some(addr)
}

fn validate_control(
    raw: &RawConfig,
    diags: &mut Vec<Diagnostic>,
) -> Option<std::path::PathBuf> {
    let socket = raw.daemon.as_ref()?.get_ref().control_socket.as_ref()?;
    let path = std::path::PathBuf::from(socket.get_ref());
    if !path.is_absolute() {
        diags.push(Diagnostic::error(
            Some(socket.span()),
            "daemon.control_socket: must be an absolute path",
        ));
        return None;
    }
    Some(path)
}

/// `[daemon] audit_log`: `"stderr"`, or an absolute path whose directory
/// the daemon must be able to write (added to `dirs`).
fn validate_audit(
    raw: &RawConfig,
    dirs: &mut Vec<WritableDir>,
    diags: &mut Vec<Diagnostic>,
) -> Option<AuditTarget> {
    let log = raw.daemon.as_ref()?.get_ref().audit_log.as_ref()?;
    let text = log.get_ref().as_str();
    if text == "stderr" {
        return Some(AuditTarget::Log);
    }
    let path = std::path::PathBuf::from(text);
    let Some(dir) = path.parent().filter(|_| path.is_absolute()) else {
        diags.push(Diagnostic::error(
            Some(log.span()),
            "daemon.audit_log: an absolute file path, or \"stderr\" for the daemon's own log",
        ));
        return None;
    };
    dirs.push(WritableDir {
        path: dir.to_path_buf(),
        span: Some(log.span()),
        key: "daemon.audit_log".into(),
    });
    Some(AuditTarget::File(path))
}

/// `[limits]`: each a whole number in its range; per user at most the cap.
fn validate_limits(raw: &RawConfig, diags: &mut Vec<Diagnostic>) -> LimitsConfig {
    let defaults = LimitsConfig::default();
    let Some(table) = &raw.limits else {
        return defaults;
    };
    let t = table.get_ref();
    let mut number = |v: &Option<Spanned<i64>>, key: &str, range, default| {
        limit_in_range(v, key, range, default, diags)
    };
    let max_connections = number(
        &t.max_connections,
        "max_connections",
        1..=65_536,
        defaults.max_connections,
    );
    let per_user = number(
        &t.max_connections_per_user,
        "max_connections_per_user",
        1..=65_536,
        defaults.max_connections_per_user.min(max_connections),
    );
    let limits = LimitsConfig {
        max_connections,
        max_connections_per_user: per_user,
        requests_per_second: number(
            &t.requests_per_second,
            "requests_per_second",
            0..=1_000_000,
            defaults.requests_per_second,
        ),
        request_burst: number(
            &t.request_burst,
            "request_burst",
            1..=1_000_000,
            defaults.request_burst,
        ),
    };
    if let Some(v) = &t.max_connections_per_user
        && limits.max_connections_per_user > limits.max_connections
    {
        diags.push(Diagnostic::error(
            Some(v.span()),
            format!("limits.max_connections_per_user: more than max_connections ({max_connections})"),
        ));
    }
    limits
}

/// `[limits] key`'s value when set and within `range`, else `default` (and
/// an error naming the key and the range when it is out of it).
fn limit_in_range(
    v: &Option<Spanned<i64>>,
    key: &str,
    range: std::ops::RangeInclusive<i64>,
    default: u32,
    diags: &mut Vec<Diagnostic>,
) -> u32 {
    let Some(v) = v else { return default };
    match u32::try_from(*v.get_ref()) {
        Ok(n) if range.contains(v.get_ref()) => n,
        _ => {
            diags.push(Diagnostic::error(
                Some(v.span()),
                format!(
                    "limits.{key}: {} is out of range {}..{}",
                    v.get_ref(),
                    range.start(),
                    range.end()
                ),
            ));
            default
        }
    }
}

fn watch_config(raw: &RawConfig) -> bool {
    raw.daemon
        .as_ref()
        .and_then(|d| d.get_ref().watch_config.as_ref())
        .is_none_or(|w| *w.get_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Severity;

    fn check(text: &str, env: &[(&str, &str)]) -> Validation {
        let raw: RawConfig = toml::from_str(text).expect("test config parses");
        let env = Environment::from_pairs(env.iter().copied());
        validate(&raw, &env, ProfileFacts::Unread)
    }

    fn errors(v: &Validation) -> Vec<&str> {
        v.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| d.message.as_str())
            .collect()
    }

    const MINIMAL: &str = r#"
        [roles.dev]
        role_arn = "arn:aws:iam::123456789012:role/dev"
        source = "env"
    "#;

    #[test]
    fn minimal_config_gets_every_default() {
        let v = check(MINIMAL, &[("USER", "alice")]);
        let c = v.config.expect("valid");
        assert_eq!(
            c.listeners,
            vec![ListenerConfig {
                listen: "127.0.0.1:16925".parse().unwrap(),
                allow_uids: None,
                protocol: Protocol::Imds {
                    role: "dev".into(),
                    allow_v1: false,
                },
            }]
        );
        assert_eq!(c.sts.region, "us-east-1");
        assert_eq!(c.sts.endpoint, "https://sts.us-east-1.amazonaws.com");
        let dev = &c.roles["dev"];
        let crate::config::Flow::AssumeRole(a) = &dev.flow else {
            panic!("{dev:?}")
        };
        assert_eq!(a.session_name, "imdsd-alice");
        assert_eq!(dev.duration, Duration::from_secs(3600));
        assert_eq!(a.source, crate::config::SourceSpec::Env);
        assert!(v.diagnostics.is_empty(), "{:?}", v.diagnostics);
    }

    #[test]
    fn region_and_endpoint_come_from_the_environment_in_order() {
        let c = check(MINIMAL, &[("AWS_DEFAULT_REGION", "eu-west-1")])
            .config
            .unwrap();
        assert_eq!(c.sts.endpoint, "https://sts.eu-west-1.amazonaws.com");
        let env = [
            ("AWS_REGION", "ap-south-1"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
        ];
        assert_eq!(
            check(MINIMAL, &env).config.unwrap().sts.region,
            "ap-south-1"
        );
        let env = [
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("AWS_ENDPOINT_URL_STS", "http://localhost:1"),
        ];
        assert_eq!(
            check(MINIMAL, &env).config.unwrap().sts.endpoint,
            "http://localhost:1"
        );
        let env = [
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
        ];
        assert_eq!(
            check(MINIMAL, &env).config.unwrap().sts.endpoint,
            "https://sts.us-east-1.amazonaws.com"
        );
        let cn = check(MINIMAL, &[("AWS_REGION", "cn-north-1")])
            .config
            .unwrap();
        assert_eq!(cn.sts.endpoint, "https://sts.cn-north-1.amazonaws.com.cn");
    }

    #[test]
    fn plain_http_endpoint_only_to_loopback() {
        let text = format!("{MINIMAL}\n[sts]\nendpoint = \"http://sts.example.com\"\n");
        let v = check(&text, &[]);
        assert!(
            errors(&v)[0].contains("plain http to a non-loopback host"),
            "{:?}",
            errors(&v)
        );
        let text = format!("{MINIMAL}\n[sts]\nendpoint = \"http://[::1]:4566\"\n");
        assert!(check(&text, &[]).config.is_some());
    }

    #[test]
    fn an_endpoint_without_a_scheme_is_told_which_to_write() {
        assert_eq!(
            endpoint_problem("127.0.0.1:4566").as_deref(),
            Some(
                "`127.0.0.1:4566` is not a URL: it has no scheme; write `http://127.0.0.1:4566`"
            )
        );
        assert_eq!(
            endpoint_problem("sts.example.com").as_deref(),
            Some(
                "`sts.example.com` is not a URL: it has no scheme; write `https://sts.example.com`"
            )
        );
    }

    #[test]
    fn every_problem_is_reported_with_a_span() {
        let text = r#"
            [[imds]]
            listen = "10.1.2.3:80"
            role = "nope"

            [roles.dev]
            role_arn = "arn:aws:iam::12345:role/dev"
            source = "keychain"
            session_name = "x"
            duration = "5m"
            external_id = "a"
        "#;
        let v = check(text, &[]);
        let errs = errors(&v);
        assert_eq!(errs.len(), 7, "{errs:#?}");
        assert!(v.config.is_none());
        assert!(
            v.diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .all(|d| d.span.is_some())
        );
        for needle in [
            "not a loopback",
            "no role named `nope`",
            "not a role ARN",
            "not a known source",
            "2 to 64",
            "out of range",
            "2 to 1224",
        ] {
            assert!(
                errs.iter().any(|e| e.contains(needle)),
                "missing {needle}: {errs:#?}"
            );
        }
    }

    #[test]
    fn source_imds_with_a_transparent_listener_is_refused() {
        let text = "[[imds]]\nlisten = \"169.254.169.254:80\"\nallow_non_loopback = true\n[roles.w]\nrole_arn = \"arn:aws:iam::123456789012:role/w\"\nsource = \"imds\"\n";
        assert!(errors(&check(text, &[]))[0].contains("own 169.254.169.254 listener"));
        assert!(
            check(
                text,
                &[("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://10.0.0.1")]
            )
            .config
            .is_some()
        );
        // On loopback (or another port) there is no loop.
        for listen in ["127.0.0.1:80", "169.254.169.254:8080"] {
            let text = text.replace("169.254.169.254:80\"", &format!("{listen}\""));
            assert!(check(&text, &[]).config.is_some(), "{listen}");
        }
    }

    #[test]
    fn region_names_are_lowercase_letters_digits_and_dashes() {
        for bad in ["EU-WEST-1", "eu west 1", "eu_west_1"] {
            let text = format!("{MINIMAL}\n[sts]\nregion = \"{bad}\"\n");
            assert_eq!(
                errors(&check(&text, &[])),
                [format!("sts.region: `{bad}` is not a region name")]
            );
        }
        // A bad endpoint of its own is a second problem.
        let text = format!(
            "{MINIMAL}\n[sts]\nregion = \"EU\"\nendpoint = \"http://sts.example.com\"\n"
        );
        assert_eq!(errors(&check(&text, &[])).len(), 2);
    }

    #[test]
    fn the_default_sts_settings_fail_on_a_bad_environment() {
        let env = |pairs: &[(&str, &str)]| Environment::from_pairs(pairs.iter().copied());
        let sts = default_sts(&env(&[("AWS_REGION", "eu-west-1")]), ProfileFacts::Unread);
        assert_eq!(sts.unwrap().endpoint, "https://sts.eu-west-1.amazonaws.com");
        let err = default_sts(&env(&[("AWS_REGION", "Europe")]), ProfileFacts::Unread);
        assert_eq!(
            err.unwrap_err(),
            "sts.region: `Europe` is not a region name"
        );
    }

    #[test]
    fn role_names_must_fit_an_imds_path() {
        let text = MINIMAL.replace("[roles.dev]", "[roles.\"dev/ops\"]");
        let v = check(&text, &[]);
        assert!(v.config.is_none());
        assert!(
            errors(&v)
                .iter()
                .any(|e| e.contains("(it becomes part of the IMDS path)")),
            "{:?}",
            errors(&v)
        );
    }

    #[test]
    fn wildcard_addresses_are_refused() {
        let text = format!("[[imds]]\nlisten = \"[::ffff:127.0.0.1]:9\"\n{MINIMAL}");
        assert!(errors(&check(&text, &[]))[0].contains("write 127.0.0.1:9 instead"));
        for addr in ["0.0.0.0:9", "[::]:9"] {
            let text = format!(
                "[[imds]]\nlisten = \"{addr}\"\nallow_non_loopback = true\n{MINIMAL}"
            );
            assert!(
                errors(&check(&text, &[]))[0].contains("listens on every address"),
                "{addr}"
            );
        }
    }

    #[test]
    fn non_loopback_listen_is_allowed_when_asked() {
        let text = format!(
            "[[imds]]\nlisten = \"169.254.169.254:80\"\nallow_non_loopback = true\n{MINIMAL}"
        );
        assert!(check(&text, &[]).config.is_some());
    }

    #[test]
    fn short_durations_warn_and_long_ones_do_not() {
        let text =
            MINIMAL.replace("source = \"env\"", "source = \"env\"\nduration = \"30m\"");
        let v = check(&text, &[]);
        assert!(v.config.is_some());
        assert!(v.diagnostics[0].message.contains("near expiry"));
        for long in ["12h", "55m", "1h"] {
            let text = MINIMAL.replace(
                "source = \"env\"",
                &format!("source = \"env\"\nduration = \"{long}\""),
            );
            assert!(check(&text, &[]).diagnostics.is_empty(), "{long}");
        }
        let text =
            MINIMAL.replace("source = \"env\"", "source = \"env\"\nduration = \"54m\"");
        assert!(
            check(&text, &[]).diagnostics[0]
                .message
                .contains("shorter than 55m")
        );
    }

    #[test]
    fn several_roles_need_an_explicit_listener_role() {
        let text = format!(
            "{MINIMAL}\n[roles.prod]\nrole_arn = \"arn:aws:iam::123456789012:role/prod\"\nsource = \"profile:base\"\n"
        );
        let v = check(&text, &[]);
        assert!(
            errors(&v)[0].contains("and no listener: add a [[container]] table"),
            "{:?}",
            v.diagnostics
        );
    }

    #[test]
    fn duplicate_listeners_and_missing_roles_are_errors() {
        let text = format!(
            "[[imds]]\nlisten = \"127.0.0.1:9\"\n[[imds]]\nlisten = \"127.0.0.1:9\"\n{MINIMAL}"
        );
        assert!(errors(&check(&text, &[]))[0].contains("listed twice"));
        let v = check("", &[]);
        assert!(errors(&v).iter().any(|e| e.contains("no roles defined")));
    }

    #[test]
    fn admin_listener_is_optional_loopback_and_distinct() {
        assert_eq!(check(MINIMAL, &[]).config.unwrap().admin, None);
        let text = format!("{MINIMAL}\n[admin]\nlisten = \"127.0.0.1:16926\"\n");
        assert_eq!(
            check(&text, &[]).config.unwrap().admin,
            Some("127.0.0.1:16926".parse().unwrap())
        );
        let text = format!("{MINIMAL}\n[admin]\nlisten = \"10.0.0.1:9\"\n");
        assert!(errors(&check(&text, &[]))[0].contains("not a loopback"));
        let text = format!("{MINIMAL}\n[admin]\nlisten = \"127.0.0.1:16925\"\n");
        assert!(errors(&check(&text, &[]))[0].contains("also a listener's address"));
        let text = format!("{MINIMAL}\n[daemon]\ncontrol_socket = \"rel.sock\"\n");
        assert!(errors(&check(&text, &[]))[0].contains("absolute"));
    }

    #[test]
    fn the_audit_log_is_stderr_or_an_absolute_file() {
        let audit = |v: &str| {
            let text = format!("{MINIMAL}\n[daemon]\naudit_log = \"{v}\"\n");
            check(&text, &[])
        };
        assert_eq!(
            audit("stderr").config.unwrap().audit,
            Some(AuditTarget::Log)
        );
        let v = audit("/var/log/imdsd/audit.log");
        assert_eq!(
            v.config.unwrap().audit,
            Some(AuditTarget::File("/var/log/imdsd/audit.log".into()))
        );
        assert_eq!(
            v.writable_dirs[0].path,
            std::path::PathBuf::from("/var/log/imdsd")
        );
        assert!(errors(&audit("audit.log"))[0].contains("absolute file path"));
        assert_eq!(check(MINIMAL, &[]).config.unwrap().audit, None);
    }

    #[test]
    fn limits_have_defaults_ranges_and_a_per_user_share_within_the_cap() {
        assert_eq!(
            check(MINIMAL, &[]).config.unwrap().limits,
            LimitsConfig::default()
        );
        let text = format!(
            "{MINIMAL}\n[limits]\nmax_connections = 100\nrequests_per_second = 0\n"
        );
        let limits = check(&text, &[]).config.unwrap().limits;
        assert_eq!(
            (
                limits.max_connections,
                limits.max_connections_per_user,
                limits.requests_per_second
            ),
            (100, 100, 0)
        );
        for (bad, needle) in [
            ("max_connections = 0", "out of range 1..65536"),
            ("request_burst = -5", "out of range 1..1000000"),
            (
                "max_connections = 10\nmax_connections_per_user = 11",
                "more than max_connections",
            ),
        ] {
            let text = format!("{MINIMAL}\n[limits]\n{bad}\n");
            assert!(errors(&check(&text, &[]))[0].contains(needle), "{bad}");
        }
        // A share equal to the cap is the whole pool, which is allowed.
        let text = format!(
            "{MINIMAL}\n[limits]\nmax_connections = 10\nmax_connections_per_user = 10\n"
        );
        assert_eq!(
            check(&text, &[])
                .config
                .unwrap()
                .limits
                .max_connections_per_user,
            10
        );
    }

    #[test]
    fn the_config_file_is_watched_unless_turned_off() {
        let watched = |daemon: &str| {
            let text = format!("{MINIMAL}\n[daemon]\n{daemon}\n");
            check(&text, &[]).config.unwrap().watch_config
        };
        assert!(check(MINIMAL, &[]).config.unwrap().watch_config);
        assert!(watched(""));
        assert!(watched("watch_config = true"));
        assert!(!watched("watch_config = false"));
    }

    #[test]
    fn default_session_name_is_sanitised_and_bounded() {
        let env = Environment::from_pairs([("USER", "a b!c")]);
        assert_eq!(roles::default_session_name(&env), "imdsd-abc");
        assert_eq!(
            roles::default_session_name(&Environment::default()),
            "imdsd"
        );
        let env = Environment::from_pairs([("USER", "x".repeat(100))]);
        assert_eq!(roles::default_session_name(&env).len(), 64);
    }
}
