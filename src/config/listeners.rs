//! Validating `[[imds]]` and `[[container]]` listeners: addresses (loopback
//! unless allowed, one address each), the roles they serve, and the
//! container token files. Pure: directories that must be writable are
//! returned for `load` to check.
//!
//! With neither table, one IMDS listener on 127.0.0.1:16925 serves the only
//! role; with only `[[container]]` tables there is no IMDS listener.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::raw::{RawConfig, RawContainer, RawListener};
use super::{
    ContainerConfig, Diagnostic, ListenerConfig, Protocol, RoleConfig, TokenFiles,
};
use crate::environment::Environment;

pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:16925";
pub(crate) const DEFAULT_CONTAINER_LISTEN: &str = "127.0.0.1:16927";
pub(crate) const DEFAULT_TOKEN_MODE: u32 = 0o600;
/// Modes a token file may have: never writable or readable by others.
const TOKEN_MODES: [u32; 4] = [0o600, 0o640, 0o400, 0o440];
/// The container endpoint addresses ECS and EKS use, which SDKs accept in
/// `AWS_CONTAINER_CREDENTIALS_FULL_URI` besides loopback.
const CONTAINER_HOSTS: [Ipv4Addr; 2] = [
    Ipv4Addr::new(169, 254, 170, 2),
    Ipv4Addr::new(169, 254, 170, 23),
];

/// A directory the daemon must be able to write, and where the config
/// names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WritableDir {
    pub(crate) path: PathBuf,
    pub(crate) span: Option<Range<usize>>,
    /// The key, for messages: `container[0].token_dir`.
    pub(crate) key: String,
}

/// Every listener, in file order (`[[imds]]` first), and the directories
/// to check.
pub(crate) fn validate_listeners(
    raw: &RawConfig,
    roles: &BTreeMap<String, RoleConfig>,
    env: &Environment,
    diags: &mut Vec<Diagnostic>,
) -> (Vec<ListenerConfig>, Vec<WritableDir>) {
    let errors_before = errors(diags);
    let mut listeners = imds_listeners(raw, diags);
    let mut dirs = Vec::new();
    for (i, c) in raw.container.iter().enumerate() {
        let ctx = format!("container[{i}]");
        if let Some((l, dir)) = container_listener(raw, c, &ctx, env, diags) {
            listeners.push(l);
            dirs.push(dir);
        }
    }
    check_distinct_addresses(raw, &listeners, diags);
    // A listener in error serves nothing: saying so of each role would
    // only contradict the error that says what to write.
    if errors(diags) > errors_before {
        return (listeners, dirs);
    }
    for name in roles.keys() {
        if !listeners.iter().any(|l| l.serves(name)) {
            diags.push(Diagnostic::warning(
                role_span(raw, name),
                format!(
                    "roles.{name} is not served by any [[imds]] or [[container]] listener"
                ),
            ));
        }
    }
    (listeners, dirs)
}

fn errors(diags: &[Diagnostic]) -> usize {
    diags
        .iter()
        .filter(|d| d.severity == super::Severity::Error)
        .count()
}

// === imds ===

fn imds_listeners(raw: &RawConfig, diags: &mut Vec<Diagnostic>) -> Vec<ListenerConfig> {
    let default = [Spanned::new(0..0, RawListener::default())];
    let tables = match (raw.imds.is_empty(), raw.container.is_empty()) {
        (true, true) => &default[..],
        _ => &raw.imds[..],
    };
    let mut listeners = Vec::new();
    for (i, table) in tables.iter().enumerate() {
        let ctx = format!("imds[{i}]");
        let span = (!raw.imds.is_empty()).then(|| table.span());
        let l = table.get_ref();
        let allow = flag(&l.allow_non_loopback);
        let listen =
            listen_addr(&l.listen, DEFAULT_LISTEN, span.clone(), allow, &ctx, diags);
        let role = listener_role(raw, l, &ctx, span, diags);
        let allow_uids = allow_uids(&l.allow_uids, &ctx, diags);
        if let (Some(listen), Some(role)) = (listen, role) {
            listeners.push(ListenerConfig {
                listen,
                allow_uids,
                protocol: Protocol::Imds {
                    role,
                    allow_v1: flag(&l.v1),
                },
            });
        }
    }
    listeners
}

fn listener_role(
    raw: &RawConfig,
    l: &RawListener,
    ctx: &str,
    table_span: Option<Range<usize>>,
    diags: &mut Vec<Diagnostic>,
) -> Option<String> {
    match &l.role {
        Some(role) => known_role(raw, role, &format!("{ctx}.role"), diags),
        None if raw.roles.len() == 1 => {
            raw.roles.keys().next().map(|k| k.get_ref().clone())
        }
        None if raw.roles.is_empty() => None,
        // No listener table: the default IMDS listener serves one role.
        None if table_span.is_none() => {
            diags.push(Diagnostic::error(
                None,
                format!(
                    "several roles are defined ({}) and no listener: add a [[container]] \
                     table (it serves every role, each at /role/NAME), or an [[imds]] \
                     table with role = \"NAME\" for each role",
                    role_names(raw)
                ),
            ));
            None
        }
        None => {
            diags.push(Diagnostic::error(
                table_span,
                format!(
                    "{ctx}: several roles are defined ({}); say which one this listener \
                     serves with role = \"NAME\"",
                    role_names(raw)
                ),
            ));
            None
        }
    }
}

// === container ===

fn container_listener(
    raw: &RawConfig,
    table: &Spanned<RawContainer>,
    ctx: &str,
    env: &Environment,
    diags: &mut Vec<Diagnostic>,
) -> Option<(ListenerConfig, WritableDir)> {
    let c = table.get_ref();
    let span = Some(table.span());
    let allow = flag(&c.allow_non_loopback);
    let listen = listen_addr(
        &c.listen,
        DEFAULT_CONTAINER_LISTEN,
        span.clone(),
        allow,
        ctx,
        diags,
    );
    if let Some(addr) = listen {
        check_full_uri_host(
            addr,
            c.listen.as_ref().map(Spanned::span).or(span),
            ctx,
            diags,
        );
    }
    let roles = container_roles(raw, c, ctx, diags);
    let allow_uids = allow_uids(&c.allow_uids, ctx, diags);
    let (tokens, dir) = token_files(c, ctx, env, diags);
    Some((
        ListenerConfig {
            listen: listen?,
            allow_uids,
            protocol: Protocol::Container(ContainerConfig {
                roles: roles?,
                tokens: tokens?,
                parked: vec![],
            }),
        },
        dir,
    ))
}

/// SDKs accept only some hosts in `AWS_CONTAINER_CREDENTIALS_FULL_URI`
/// (sdk-contract.md 1.6): an IPv4 loopback literal everywhere; the ECS and
/// EKS addresses in most SDKs (not the Go SDK before mid-2023, nor the JS
/// SDK's legacy fallback).
fn check_full_uri_host(
    addr: SocketAddr,
    span: Option<Range<usize>>,
    ctx: &str,
    diags: &mut Vec<Diagnostic>,
) {
    match addr.ip() {
        IpAddr::V4(v4) if v4.is_loopback() => {}
        IpAddr::V4(v4) if CONTAINER_HOSTS.contains(&v4) => diags.push(Diagnostic::warning(
            span,
            format!(
                "{ctx}.listen: {v4} is refused as a FULL_URI host by older SDKs (Go SDK v2 \
                 before 2023, the JS SDK's legacy provider); 127.0.0.1 works everywhere"
            ),
        )),
        ip => diags.push(Diagnostic::error(
            span,
            format!(
                "{ctx}.listen: SDKs refuse {ip} in AWS_CONTAINER_CREDENTIALS_FULL_URI; listen on \
                 an IPv4 loopback address like 127.0.0.1 (or 169.254.170.23 with \
                 allow_non_loopback = true)"
            ),
        )),
    }
}

/// `roles = [...]`, each defined and listed once; by default every role.
fn container_roles(
    raw: &RawConfig,
    c: &RawContainer,
    ctx: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<String>> {
    let Some(listed) = &c.roles else {
        return Some(raw.roles.keys().map(|k| k.get_ref().clone()).collect());
    };
    if listed.get_ref().is_empty() {
        diags.push(Diagnostic::error(
            Some(listed.span()),
            format!(
                "{ctx}.roles: an empty list serves nothing; remove it to serve every role"
            ),
        ));
        return None;
    }
    let key = format!("{ctx}.roles");
    let mut seen = HashSet::new();
    let mut roles = Vec::new();
    let mut ok = true;
    for role in listed.get_ref() {
        if !seen.insert(role.get_ref().as_str()) {
            diags.push(Diagnostic::error(
                Some(role.span()),
                format!("{key}: `{}` is listed twice", role.get_ref()),
            ));
            ok = false;
            continue;
        }
        match known_role(raw, role, &key, diags) {
            Some(name) => roles.push(name),
            None => ok = false,
        }
    }
    ok.then_some(roles)
}

/// The token directory, owner and mode.
fn token_files(
    c: &RawContainer,
    ctx: &str,
    env: &Environment,
    diags: &mut Vec<Diagnostic>,
) -> (Option<TokenFiles>, WritableDir) {
    let key = format!("{ctx}.token_dir");
    let (dir, span) = match &c.token_dir {
        Some(d) => (PathBuf::from(d.get_ref()), Some(d.span())),
        None => (default_token_dir(env), None),
    };
    let dir_ok = dir.is_absolute();
    if !dir_ok {
        diags.push(Diagnostic::error(
            span.clone(),
            format!("{key}: must be an absolute path"),
        ));
    }
    let owner = c.token_file_owner.as_ref().and_then(|o| {
        let key = format!("{ctx}.token_file_owner");
        reported(o, &key, parse_owner(o.get_ref()), diags)
    });
    let mode = match &c.token_file_mode {
        None => Some(DEFAULT_TOKEN_MODE),
        Some(m) => {
            let key = format!("{ctx}.token_file_mode");
            reported(m, &key, parse_mode(m.get_ref()), diags)
        }
    };
    let owner_ok = c.token_file_owner.is_none() || owner.is_some();
    let tokens = match (dir_ok && owner_ok, mode) {
        (true, Some(mode)) => {
            let (owner, group) = owner.unwrap_or((None, None));
            Some(TokenFiles {
                dir: dir.clone(),
                owner,
                group,
                mode,
            })
        }
        _ => None,
    };
    (
        tokens,
        WritableDir {
            path: dir,
            span,
            key,
        },
    )
}

/// Where token files go by default: the service's runtime directory
/// (systemd's `RuntimeDirectory=`), else the user's, else `/run/imdsd`.
pub(crate) fn default_token_dir(env: &Environment) -> PathBuf {
    if let Some(dirs) = env.get("RUNTIME_DIRECTORY") {
        return Path::new(dirs.split(':').next().unwrap_or(dirs)).join("tokens");
    }
    if let Some(xdg) = env.get("XDG_RUNTIME_DIR") {
        return Path::new(xdg).join("imdsd/tokens");
    }
    PathBuf::from("/run/imdsd/tokens")
}

/// `"UID"`, `"UID:GID"` or `":GID"`, numeric.
/// `parsed`'s value, or `None` and an error naming `key` at `value`.
fn reported<T>(
    value: &Spanned<String>,
    key: &str,
    parsed: Result<T, String>,
    diags: &mut Vec<Diagnostic>,
) -> Option<T> {
    parsed
        .map_err(|p| {
            diags.push(Diagnostic::error(Some(value.span()), format!("{key}: {p}")))
        })
        .ok()
}

fn parse_owner(text: &str) -> Result<(Option<u32>, Option<u32>), String> {
    let id = |s: &str| -> Result<Option<u32>, String> {
        if s.is_empty() {
            return Ok(None);
        }
        s.parse()
            .map(Some)
            .map_err(|_| format!("`{s}` is not a numeric user or group id"))
    };
    let (user, group) = text.split_once(':').unwrap_or((text, ""));
    let parsed = (id(user)?, id(group)?);
    if parsed == (None, None) {
        return Err("give \"UID\", \"UID:GID\" or \":GID\"".into());
    }
    Ok(parsed)
}

/// An octal mode among [`TOKEN_MODES`].
fn parse_mode(text: &str) -> Result<u32, String> {
    let mode = u32::from_str_radix(text.trim_start_matches("0o"), 8)
        .map_err(|_| format!("`{text}` is not an octal mode like \"0640\""))?;
    if TOKEN_MODES.contains(&mode) {
        Ok(mode)
    } else {
        Err(format!(
            "{mode:04o} is not allowed: a token file is 0600, 0640, 0400 or 0440 (never \
             writable by others than the daemon, never readable by everyone)"
        ))
    }
}

// === shared ===

fn flag(v: &Option<Spanned<bool>>) -> bool {
    v.as_ref().is_some_and(|v| *v.get_ref())
}

fn allow_uids(
    v: &Option<Spanned<Vec<u32>>>,
    ctx: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<u32>> {
    let uids = v.as_ref()?;
    if uids.get_ref().is_empty() {
        diags.push(Diagnostic::error(
            Some(uids.span()),
            format!("{ctx}.allow_uids: an empty list lets nobody in; remove it to allow everyone"),
        ));
    }
    Some(uids.get_ref().clone())
}

fn known_role(
    raw: &RawConfig,
    role: &Spanned<String>,
    key: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<String> {
    if raw.roles.keys().any(|k| k.get_ref() == role.get_ref()) {
        return Some(role.get_ref().clone());
    }
    diags.push(Diagnostic::error(
        Some(role.span()),
        format!(
            "{key}: no role named `{}`{} (defined: {})",
            role.get_ref(),
            super::suggest::hint(
                role.get_ref(),
                raw.roles.keys().map(|k| k.get_ref().as_str())
            ),
            role_names(raw)
        ),
    ));
    None
}

fn role_names(raw: &RawConfig) -> String {
    let names: Vec<&str> = raw.roles.keys().map(|k| k.get_ref().as_str()).collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

fn role_span(raw: &RawConfig, name: &str) -> Option<Range<usize>> {
    raw.roles
        .keys()
        .find(|k| k.get_ref() == name)
        .map(Spanned::span)
}

/// Two listeners on one address (port 0 excepted: tests) are an error.
fn check_distinct_addresses(
    raw: &RawConfig,
    listeners: &[ListenerConfig],
    diags: &mut Vec<Diagnostic>,
) {
    let mut seen = HashSet::new();
    let spans = raw
        .imds
        .iter()
        .map(|t| {
            t.get_ref()
                .listen
                .as_ref()
                .map(Spanned::span)
                .or(Some(t.span()))
        })
        .chain(raw.container.iter().map(|t| {
            t.get_ref()
                .listen
                .as_ref()
                .map(Spanned::span)
                .or(Some(t.span()))
        }));
    for (l, span) in listeners.iter().zip(spans) {
        if l.listen.port() != 0 && !seen.insert(l.listen) {
            diags.push(Diagnostic::error(
                span,
                format!("{}.listen: {} is listed twice", l.protocol.name(), l.listen),
            ));
        }
    }
}

/// A listen address, `default` when not given.
fn listen_addr(
    given: &Option<Spanned<String>>,
    default: &str,
    table_span: Option<Range<usize>>,
    allow_non_loopback: bool,
    ctx: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<SocketAddr> {
    let (text, span) = match given {
        Some(s) => (s.get_ref().as_str(), Some(s.span())),
        None => (default, table_span),
    };
    parse_listen(text, span, allow_non_loopback, ctx, diags)
}

/// A listen address: parsed, one address (not a wildcard), and loopback
/// unless explicitly allowed.
pub(crate) fn parse_listen(
    text: &str,
    span: Option<Range<usize>>,
    allow_non_loopback: bool,
    ctx: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<SocketAddr> {
    let problem = match text.parse::<SocketAddr>() {
        Err(_) => Some(format!(
            "`{text}` is not an address like 127.0.0.1:16925 or [::1]:16925"
        )),
        Ok(addr) => listen_problem(addr, allow_non_loopback).err(),
    };
    match problem {
        Some(p) => {
            diags.push(Diagnostic::error(span, format!("{ctx}.listen: {p}")));
            None
        }
        None => text.parse().ok(),
    }
}

fn listen_problem(addr: SocketAddr, allow_non_loopback: bool) -> Result<(), String> {
    if let IpAddr::V6(v6) = addr.ip()
        && let Some(v4) = v6.to_ipv4_mapped()
    {
        // IPv4 clients of a mapped address show up in the IPv4 socket
        // table, which allow_uids would not search.
        return Err(format!("write {v4}:{} instead of {addr}", addr.port()));
    }
    if addr.ip().is_unspecified() {
        // The Host check needs to know the one address clients use.
        return Err(format!(
            "{addr} listens on every address; name the one address clients connect to"
        ));
    }
    if !crate::addr::is_loopback(addr.ip()) && !allow_non_loopback {
        return Err(format!(
            "{addr} is not a loopback address; anyone who can reach it gets the role's \
             credentials. Set allow_non_loopback = true if that is meant (for example \
             169.254.169.254 on the lo interface)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_numeric_user_and_group_ids() {
        assert_eq!(parse_owner("1000"), Ok((Some(1000), None)));
        assert_eq!(parse_owner("1000:100"), Ok((Some(1000), Some(100))));
        assert_eq!(parse_owner(":100"), Ok((None, Some(100))));
        assert!(parse_owner("alice").unwrap_err().contains("numeric"));
        assert!(parse_owner(":").is_err());
        assert!(parse_owner("").is_err());
    }

    #[test]
    fn token_modes_are_never_writable_or_readable_by_others() {
        for (text, mode) in [
            ("0600", 0o600),
            ("640", 0o640),
            ("0o400", 0o400),
            ("0440", 0o440),
        ] {
            assert_eq!(parse_mode(text), Ok(mode), "{text}");
        }
        for bad in ["0644", "0660", "0666", "0700", "0604"] {
            assert!(
                parse_mode(bad).unwrap_err().contains("not allowed"),
                "{bad}"
            );
        }
        assert!(parse_mode("rw-r-----").unwrap_err().contains("octal"));
    }

    #[test]
    fn token_dir_follows_the_runtime_directory() {
        let env = Environment::from_pairs([
            ("RUNTIME_DIRECTORY", "/run/imdsd:/run/other"),
            ("XDG_RUNTIME_DIR", "/run/user/1000"),
        ]);
        assert_eq!(default_token_dir(&env), PathBuf::from("/run/imdsd/tokens"));
        let env = Environment::from_pairs([("XDG_RUNTIME_DIR", "/run/user/1000")]);
        assert_eq!(
            default_token_dir(&env),
            PathBuf::from("/run/user/1000/imdsd/tokens")
        );
        assert_eq!(
            default_token_dir(&Environment::default()),
            PathBuf::from("/run/imdsd/tokens")
        );
    }

    const TWO_ROLES: &str = crate::config::two_roles_toml!();

    fn parse(text: &str) -> (Option<crate::config::Config>, Vec<Diagnostic>) {
        crate::config::load::parse(text, &Environment::default())
    }

    /// Each problem as (severity, message).
    fn problems(text: &str) -> Vec<(crate::config::Severity, String)> {
        parse(text)
            .1
            .into_iter()
            .map(|d| (d.severity, d.message))
            .collect()
    }

    fn container_roles_of(text: &str) -> Vec<String> {
        let (config, diags) = parse(text);
        let config = config.unwrap_or_else(|| panic!("{diags:?}"));
        match &config.listeners[..] {
            [
                ListenerConfig {
                    protocol: Protocol::Container(c),
                    ..
                },
            ] => c.roles.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_role_no_listener_serves_is_warned_about() {
        let text = format!("{TWO_ROLES}[[imds]]\nrole = \"a\"\n");
        assert_eq!(
            problems(&text),
            [(
                crate::config::Severity::Warning,
                "roles.b is not served by any [[imds]] or [[container]] listener"
                    .to_string()
            )]
        );
        // ... pointing at the role's name.
        let (_, diags) = parse(&text);
        let b = text.find("[roles.b]").unwrap() + "[roles.".len();
        assert_eq!(diags[0].span, Some(b..b + 1));
    }

    #[test]
    fn allow_uids_are_kept_and_an_empty_list_is_an_error() {
        let text = format!("{TWO_ROLES}[[imds]]\nrole = \"a\"\nallow_uids = [1000, 0]\n");
        let (config, diags) = parse(&text);
        let config = config.unwrap_or_else(|| panic!("{diags:?}"));
        assert_eq!(config.listeners[0].allow_uids, Some(vec![1000, 0]));
        let text = format!("{TWO_ROLES}[[imds]]\nrole = \"a\"\nallow_uids = []\n");
        let errors = problems(&text);
        assert!(
            errors.iter().any(|(_, m)| m
                == "imds[0].allow_uids: an empty list lets nobody in; remove it to allow everyone"),
            "{errors:?}"
        );
    }

    #[test]
    fn several_roles_need_a_role_on_each_imds_table_which_is_pointed_at() {
        let text = format!("{TWO_ROLES}[[imds]]\nlisten = \"127.0.0.1:9\"\n");
        let (_, diags) = parse(&text);
        let d = diags
            .iter()
            .find(|d| d.message.contains("several roles are defined (a, b)"))
            .unwrap_or_else(|| panic!("{diags:?}"));
        let table = text.find("[[imds]]").unwrap();
        assert_eq!(d.span.as_ref().map(|s| s.start), Some(table), "{d:?}");
        // Without tables the default listener has no place in the file.
        let (_, diags) = parse(TWO_ROLES);
        let d = diags
            .iter()
            .find(|d| d.message.contains("several roles are defined"))
            .unwrap_or_else(|| panic!("{diags:?}"));
        assert_eq!(d.span, None);
    }

    /// Issue 20: the error, and two "not served" warnings contradicting
    /// it about a listener nobody wrote, were three lines.
    #[test]
    fn two_roles_and_no_listener_is_one_error_saying_what_to_add() {
        assert_eq!(
            problems(TWO_ROLES),
            [(
                crate::config::Severity::Error,
                "several roles are defined (a, b) and no listener: add a [[container]] table \
                 (it serves every role, each at /role/NAME), or an [[imds]] table with \
                 role = \"NAME\" for each role"
                    .to_string()
            )]
        );
        // A listener in error is not also said to serve no role.
        let text =
            format!("{TWO_ROLES}[[imds]]\nrole = \"a\"\nlisten = \"localhost:80\"\n");
        let found = problems(&text);
        assert!(
            found.iter().all(|(_, m)| !m.contains("not served")),
            "{found:?}"
        );
    }

    #[test]
    fn no_roles_at_all_is_not_called_several() {
        let diags = problems("[[imds]]\n");
        assert!(
            diags.iter().all(|(_, m)| !m.contains("several roles")),
            "{diags:?}"
        );
    }

    #[test]
    fn a_container_table_serves_every_role_by_default_or_those_listed() {
        let text = format!("{TWO_ROLES}[[container]]\ntoken_dir = \"/run/t\"\n");
        assert_eq!(container_roles_of(&text), ["a", "b"]);
        let text = format!(
            "{TWO_ROLES}[[container]]\ntoken_dir = \"/run/t\"\nroles = [\"b\", \"a\"]\n"
        );
        assert_eq!(container_roles_of(&text), ["b", "a"]);
    }

    #[test]
    fn container_role_lists_are_non_empty_known_and_without_repeats() {
        let errors = |roles: &str| -> Vec<String> {
            let text = format!(
                "{TWO_ROLES}[[container]]\ntoken_dir = \"/run/t\"\nroles = {roles}\n"
            );
            let (config, diags) = parse(&text);
            assert!(config.is_none(), "{roles}");
            diags
                .into_iter()
                .filter(|d| d.severity == crate::config::Severity::Error)
                .map(|d| d.message)
                .collect()
        };
        assert_eq!(
            errors("[]"),
            [
                "container[0].roles: an empty list serves nothing; remove it to serve every role"
            ]
        );
        assert_eq!(
            errors("[\"a\", \"b\", \"a\"]"),
            ["container[0].roles: `a` is listed twice"]
        );
        let unknown = errors("[\"a\", \"c\"]");
        assert!(
            matches!(&unknown[..], [m] if m.starts_with("container[0].roles: no role named `c`")),
            "{unknown:?}"
        );
    }

    #[test]
    fn token_files_take_an_absolute_dir_and_the_owner_and_mode_given() {
        let tokens = |extra: &str| {
            let text = format!("{TWO_ROLES}[[container]]\n{extra}\n");
            let (config, diags) = parse(&text);
            let errors: Vec<String> = diags
                .into_iter()
                .filter(|d| d.severity == crate::config::Severity::Error)
                .map(|d| d.message)
                .collect();
            let files = config.map(|c| match &c.listeners[0].protocol {
                Protocol::Container(c) => c.tokens.clone(),
                other => panic!("{other:?}"),
            });
            (files, errors)
        };
        let files = |dir: &str, owner, group, mode| {
            Some(TokenFiles {
                dir: dir.into(),
                owner,
                group,
                mode,
            })
        };
        assert_eq!(
            tokens("token_dir = \"/run/t\""),
            (files("/run/t", None, None, 0o600), vec![])
        );
        assert_eq!(
            tokens(
                "token_dir = \"/run/t\"\ntoken_file_owner = \"1000:100\"\ntoken_file_mode = \"0440\""
            ),
            (files("/run/t", Some(1000), Some(100), 0o440), vec![])
        );
        assert_eq!(
            tokens("token_dir = \"run/t\""),
            (
                None,
                vec!["container[0].token_dir: must be an absolute path".into()]
            )
        );
        let (none, errors) =
            tokens("token_dir = \"/run/t\"\ntoken_file_owner = \"alice\"");
        assert_eq!(none, None);
        assert!(
            matches!(&errors[..], [m] if m.starts_with("container[0].token_file_owner: `alice`")),
            "{errors:?}"
        );
        let (none, errors) = tokens("token_dir = \"/run/t\"\ntoken_file_mode = \"0644\"");
        assert_eq!(none, None);
        assert!(
            matches!(&errors[..], [m] if m.starts_with("container[0].token_file_mode: 0644")),
            "{errors:?}"
        );
    }

    #[test]
    fn container_addresses_are_those_sdks_accept_in_full_uri() {
        let at = |listen: &str| {
            problems(&format!(
                "{TWO_ROLES}[[container]]\ntoken_dir = \"/run/t\"\nlisten = \"{listen}\"\n\
                 allow_non_loopback = true\n"
            ))
        };
        assert_eq!(at("127.0.0.2:80"), []);
        let ecs = at("169.254.170.23:80");
        assert!(
            matches!(&ecs[..], [(crate::config::Severity::Warning, m)]
                if m.contains("169.254.170.23 is refused as a FULL_URI host by older SDKs")),
            "{ecs:?}"
        );
        for refused in ["10.0.0.1:80", "[::1]:80", "169.254.170.3:80"] {
            let diags = at(refused);
            assert!(
                matches!(&diags[..], [(crate::config::Severity::Error, m)]
                    if m.contains("SDKs refuse")),
                "{refused}: {diags:?}"
            );
        }
    }

    #[test]
    fn listen_addresses_are_one_loopback_address_unless_allowed() {
        let ok = |a: &str, allow| listen_problem(a.parse().unwrap(), allow);
        assert_eq!(ok("127.0.0.1:1", false), Ok(()));
        assert_eq!(ok("[::1]:1", false), Ok(()));
        assert!(
            ok("10.0.0.1:1", false)
                .unwrap_err()
                .contains("not a loopback")
        );
        assert_eq!(ok("10.0.0.1:1", true), Ok(()));
        assert!(ok("0.0.0.0:1", true).unwrap_err().contains("every address"));
        assert!(
            ok("[::ffff:127.0.0.1]:1", false)
                .unwrap_err()
                .contains("write 127.0.0.1:1")
        );
    }
}
