//! The `[profiles]` table: which AWS profiles are served on demand by
//! name, how long an unused one keeps refreshing, and which listener serves
//! them (pure).

use std::collections::BTreeSet;
use std::time::Duration;

use toml::Spanned;

use super::listeners::parse_listen;
use super::raw::{RawConfig, RawProfiles, RawServe};
use super::{Diagnostic, ListenerConfig, ProfilesConfig, Protocol, ServeProfiles, value};

/// An on-demand role nobody used for this long is parked.
pub(crate) const DEFAULT_IDLE_AFTER: Duration = Duration::from_secs(8 * 3600);
const IDLE_AFTER_MIN: Duration = Duration::from_secs(5);
const IDLE_AFTER_MAX: Duration = Duration::from_secs(30 * 24 * 3600);

/// Where on-demand profiles are served when `[profiles] listen` is not
/// set: a listener of their own, next to the default IMDS listener's
/// 16925.
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:16926";

/// `[profiles]`, defaults filled in.
pub(crate) fn validate(
    raw: &RawConfig,
    listeners: &[ListenerConfig],
    diags: &mut Vec<Diagnostic>,
) -> ProfilesConfig {
    let mut config = ProfilesConfig::default();
    let Some(table) = &raw.profiles else {
        return config;
    };
    let t: &RawProfiles = table.get_ref();
    if let Some(serve) = &t.serve {
        config.serve = serve_list(serve, diags).unwrap_or(ServeProfiles::None);
    }
    if let Some(idle) = &t.idle_after {
        match value::duration_in(idle.get_ref(), IDLE_AFTER_MIN, IDLE_AFTER_MAX) {
            Ok(d) => config.idle_after = d,
            Err(problem) => diags.push(Diagnostic::error(
                Some(idle.span()),
                format!("profiles.idle_after: {problem}"),
            )),
        }
    }
    if let Some(listen) = &t.listen {
        config.listen = on_demand_listen(listen, listeners, diags);
    }
    config
}

fn serve_list(
    serve: &Spanned<RawServe>,
    diags: &mut Vec<Diagnostic>,
) -> Option<ServeProfiles> {
    let names = match serve.get_ref() {
        RawServe::Word(w) if w == "all" => return Some(ServeProfiles::All),
        RawServe::Word(w) if w == "none" => return Some(ServeProfiles::None),
        RawServe::Word(w) => {
            diags.push(Diagnostic::error(
                Some(serve.span()),
                format!(
                    "profiles.serve: `{w}` is not \"all\", \"none\" or a list of profile \
                     names like [\"dev\", \"prod\"]"
                ),
            ));
            return None;
        }
        RawServe::Names(names) => names,
    };
    let mut listed = BTreeSet::new();
    let mut ok = true;
    for name in names {
        let problem = match role_name_problem(name) {
            Some(problem) => Some(problem),
            None if !listed.insert(name.clone()) => {
                Some(format!("`{name}` is listed twice"))
            }
            None => None,
        };
        if let Some(problem) = problem {
            ok = false;
            diags.push(Diagnostic::error(
                Some(serve.span()),
                format!("profiles.serve: {problem}"),
            ));
        }
    }
    ok.then_some(ServeProfiles::Only(listed))
}

/// Why `name` cannot be a role's name: it becomes a path segment of both
/// endpoints and the instance profile name, 1 to 128 IAM name characters.
pub(crate) fn role_name_problem(name: &str) -> Option<String> {
    value::name_problem(name, 1, 128, "")
        .map(|problem| format!("role name {problem} (it becomes part of the IMDS path)"))
}

/// `[profiles] listen`: a `[[container]]` listener's address, or one of
/// its own; never an `[[imds]]` listener's (one role, no `/role/NAME`).
fn on_demand_listen(
    listen: &Spanned<String>,
    listeners: &[ListenerConfig],
    diags: &mut Vec<Diagnostic>,
) -> Option<std::net::SocketAddr> {
    let addr = parse_listen(
        listen.get_ref(),
        Some(listen.span()),
        false,
        "profiles",
        diags,
    )?;
    let imds = listeners.iter().any(|l| {
        l.listen == addr
            && addr.port() != 0
            && matches!(l.protocol, Protocol::Imds { .. })
    });
    if imds {
        diags.push(Diagnostic::error(
            Some(listen.span()),
            format!(
                "profiles.listen: {addr} is an [[imds]] listener, which serves one role; \
                 give a [[container]] listener's address, or a free one"
            ),
        ));
        return None;
    }
    Some(addr)
}

#[cfg(test)]
mod tests {
    use crate::config::load::parse;
    use crate::environment::Environment;

    use super::*;

    fn profiles_of(table: &str) -> Result<ProfilesConfig, Vec<String>> {
        let text = format!(
            "[[container]]\nlisten = \"127.0.0.1:9911\"\n[[imds]]\nlisten = \"127.0.0.1:9912\"\nrole = \"a\"\n{}\n[profiles]\n{table}\n",
            crate::config::two_roles_toml!()
        );
        match parse(&text, &Environment::default()) {
            (Some(c), _) => Ok(c.profiles),
            (None, diags) => Err(diags.into_iter().map(|d| d.message).collect()),
        }
    }

    #[test]
    fn defaults_serve_every_profile_for_eight_idle_hours() {
        let p = profiles_of("").unwrap();
        assert_eq!(p, ProfilesConfig::default());
        assert_eq!(p.serve, ServeProfiles::All);
        assert_eq!(p.idle_after, Duration::from_secs(8 * 3600));
        assert_eq!(p.listen, None);
    }

    #[test]
    fn serve_takes_all_none_or_names() {
        assert_eq!(
            profiles_of("serve = \"none\"").unwrap().serve,
            ServeProfiles::None
        );
        let only = profiles_of("serve = [\"dev\", \"prod\"]").unwrap().serve;
        assert!(only.includes("dev") && only.includes("prod") && !only.includes("ops"));
        let e = profiles_of("serve = \"some\"").unwrap_err();
        assert!(
            e[0].contains("profiles.serve: `some` is not \"all\", \"none\""),
            "{e:?}"
        );
        let e = profiles_of("serve = [\"dev\", \"dev\"]").unwrap_err();
        assert!(e[0].contains("`dev` is listed twice"), "{e:?}");
        let e = profiles_of("serve = [\"my profile\"]").unwrap_err();
        assert!(e[0].contains("IMDS path"), "{e:?}");
    }

    #[test]
    fn idle_after_is_between_five_seconds_and_thirty_days() {
        assert_eq!(
            profiles_of("idle_after = \"5s\"").unwrap().idle_after,
            Duration::from_secs(5)
        );
        let e = profiles_of("idle_after = \"4s\"").unwrap_err();
        assert!(
            e[0].contains("profiles.idle_after: `4s` is out of range 5s..30days"),
            "{e:?}"
        );
        assert!(profiles_of("idle_after = \"31d\"").is_err());
        assert!(profiles_of("idle_after = \"later\"").is_err());
    }

    #[test]
    fn listen_is_a_container_address_or_a_free_one_never_an_imds_one() {
        let at = |a: &str| profiles_of(&format!("listen = \"{a}\"")).map(|p| p.listen);
        assert_eq!(
            at("127.0.0.1:9911"),
            Ok(Some("127.0.0.1:9911".parse().unwrap()))
        );
        assert_eq!(
            at("127.0.0.1:9913"),
            Ok(Some("127.0.0.1:9913".parse().unwrap()))
        );
        let e = at("127.0.0.1:9912").unwrap_err();
        assert!(e[0].contains("is an [[imds]] listener"), "{e:?}");
        assert!(at("0.0.0.0:9913").is_err());
    }

    #[test]
    fn unknown_keys_in_the_table_are_named() {
        let e = profiles_of("idle = \"1h\"").unwrap_err();
        assert!(e[0].contains("unknown key `idle`"), "{e:?}");
    }
}
