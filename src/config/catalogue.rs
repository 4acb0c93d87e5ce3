//! Which AWS profiles are served on demand, by name, and the config the
//! daemon runs with while some of them are active (pure).
//!
//! The catalogue is every profile in the AWS files that `[profiles] serve`
//! takes, minus those a `[roles.NAME]` of the same name declares (the
//! declared role wins) and those whose name cannot be a role's (refused,
//! with the reason, so `imdsd exec` can say why). Nothing in it runs until
//! it is activated; [`effective`] adds the active ones to the file's
//! config, as if the file had declared them on the on-demand listener.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::listeners::{DEFAULT_TOKEN_MODE, default_token_dir};
use super::on_demand::{DEFAULT_LISTEN, role_name_problem};
use super::roles::DEFAULT_DURATION;
use super::{
    Config, ContainerConfig, Flow, ListenerConfig, Protocol, RoleConfig, TokenFiles,
};
use crate::environment::Environment;

/// The profiles that can be served on demand, and where.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Catalogue {
    /// Each servable profile as the role that serves it.
    pub(crate) roles: BTreeMap<String, RoleConfig>,
    /// Profiles that exist but cannot be served by name, and why.
    pub(crate) refused: BTreeMap<String, String>,
    /// The `region` each servable profile sets, for the commands that run
    /// it (`exec`, `env`): as aws-vault and granted, the profile's own.
    pub(crate) regions: BTreeMap<String, String>,
    /// The listener that serves them; `None` when nothing is servable.
    pub(crate) listener: Option<OnDemandListener>,
}

/// Where on-demand roles are served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OnDemandListener {
    /// A `[[container]]` listener of the file, by index.
    Shared(usize),
    /// One of their own (its `roles` empty until one is active).
    Own(ListenerConfig),
}

/// The catalogue of `base` for `profiles` (each name, and the `region` it
/// sets); a listener of their own writes its token files in `token_dir`
/// ([`own_token_dir`]).
pub(crate) fn catalogue<'a>(
    base: &Config,
    profiles: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    token_dir: &Path,
) -> Catalogue {
    let mut cat = Catalogue::default();
    let wanted = profiles
        .into_iter()
        .filter(|(p, _)| !base.roles.contains_key(*p) && base.profiles.serve.includes(p));
    for (name, region) in wanted {
        match role_name_problem(name) {
            Some(problem) => {
                let reason = format!("its name cannot be a role's: {problem}");
                cat.refused.insert(name.to_string(), reason);
            }
            None => {
                cat.roles.insert(name.to_string(), profile_role(name));
                let region = region.map(str::trim).filter(|r| !r.is_empty());
                cat.regions
                    .extend(region.map(|r| (name.to_string(), r.to_string())));
            }
        }
    }
    if !cat.roles.is_empty() {
        cat.listener = Some(on_demand_listener(base, token_dir));
    }
    cat
}

/// Where a listener of their own writes the profiles' token files: the
/// runtime directory as for any container listener, else (a user with no
/// `XDG_RUNTIME_DIR`: ssh without pam_systemd, `sudo -u`) the daemon's
/// private state directory, which it can always write; `/run/imdsd` is
/// root's.
pub(crate) fn own_token_dir(env: &Environment, uid: u32, state_dir: &Path) -> PathBuf {
    let runtime =
        env.get("RUNTIME_DIRECTORY").is_some() || env.get("XDG_RUNTIME_DIR").is_some();
    if runtime || uid == 0 {
        default_token_dir(env)
    } else {
        state_dir.join("tokens")
    }
}

/// The role that serves profile `name` as the AWS CLI resolves it.
pub(crate) fn profile_role(name: &str) -> RoleConfig {
    RoleConfig {
        name: name.to_string(),
        duration: DEFAULT_DURATION,
        flow: Flow::Profile {
            name: name.to_string(),
            mfa_command: None,
        },
    }
}

/// A listener of their own at `[profiles] listen` or [`DEFAULT_LISTEN`],
/// with token files only the daemon's user reads; a `[[container]]`
/// listener of the file only when `listen` names its address. Never by
/// default: a file's container listener often serves a pod or another
/// user (its token directory mounted, its files owned by them), and
/// whoever reads one token file there must not get every profile.
fn on_demand_listener(base: &Config, token_dir: &Path) -> OnDemandListener {
    let is_container = |l: &ListenerConfig| matches!(l.protocol, Protocol::Container(_));
    let shared = match base.profiles.listen {
        Some(addr) if addr.port() != 0 => base
            .listeners
            .iter()
            .position(|l| is_container(l) && l.listen == addr),
        _ => None,
    };
    if let Some(i) = shared {
        return OnDemandListener::Shared(i);
    }
    let default: SocketAddr = DEFAULT_LISTEN.parse().expect("the default address parses");
    OnDemandListener::Own(ListenerConfig {
        listen: base.profiles.listen.unwrap_or(default),
        allow_uids: None,
        protocol: Protocol::Container(ContainerConfig {
            roles: vec![],
            parked: vec![],
            tokens: TokenFiles {
                dir: token_dir.to_path_buf(),
                owner: None,
                group: None,
                mode: DEFAULT_TOKEN_MODE,
            },
        }),
    })
}

/// `base` with the `active` on-demand roles added, served on the
/// on-demand listener (which is there, empty, while none is active; one
/// of their own comes last).
pub(crate) fn effective(
    base: &Config,
    cat: &Catalogue,
    active: &BTreeSet<String>,
) -> Config {
    let mut config = base.clone();
    let Some(listener) = &cat.listener else {
        return config;
    };
    let (active, parked): (Vec<String>, Vec<String>) = cat
        .roles
        .keys()
        .cloned()
        .partition(|name| active.contains(name));
    for name in &active {
        config.roles.insert(name.clone(), cat.roles[name].clone());
    }
    let at = match listener {
        OnDemandListener::Shared(i) => *i,
        OnDemandListener::Own(l) => {
            config.listeners.push(l.clone());
            config.listeners.len() - 1
        }
    };
    let target = &mut config.listeners[at];
    if let Protocol::Container(c) = &mut target.protocol {
        c.roles.extend(active);
        c.parked = parked;
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServeProfiles;
    use crate::config::load::parse;

    fn config(text: &str) -> Config {
        let (c, d) = parse(text, &Environment::default());
        c.unwrap_or_else(|| panic!("{d:?}"))
    }

    const DECLARED: &str = "[roles.dev]\nprofile = \"dev\"\n";

    /// Profiles by name that set no region.
    fn named<const N: usize>(
        names: [&str; N],
    ) -> impl Iterator<Item = (&str, Option<&str>)> {
        names.into_iter().map(|n| (n, None))
    }

    #[test]
    fn each_profile_keeps_the_region_it_sets() {
        let base = config(DECLARED);
        let cat = catalogue(
            &base,
            [
                ("ops", Some(" eu-west-1 ")),
                ("p07", None),
                ("dev", Some("x")),
            ],
            &dir(),
        );
        assert_eq!(
            cat.regions,
            BTreeMap::from([("ops".to_string(), "eu-west-1".to_string())])
        );
    }

    fn dir() -> PathBuf {
        PathBuf::from("/run/user/1000/imdsd/tokens")
    }

    #[test]
    fn every_profile_but_declared_and_unnameable_ones() {
        let base = config(DECLARED);
        let cat = catalogue(&base, named(["dev", "ops", "p07", "my profile"]), &dir());
        assert_eq!(cat.roles.keys().collect::<Vec<_>>(), ["ops", "p07"]);
        assert_eq!(cat.roles["ops"], profile_role("ops"));
        assert!(cat.refused["my profile"].contains("IMDS path"), "{cat:?}");
        assert!(!cat.refused.contains_key("dev"), "a declared role wins");
    }

    #[test]
    fn serve_limits_the_catalogue_and_none_leaves_no_listener() {
        let mut base = config(DECLARED);
        base.profiles.serve = ServeProfiles::Only(["ops".to_string()].into());
        let cat = catalogue(&base, named(["ops", "p07"]), &dir());
        assert_eq!(cat.roles.keys().collect::<Vec<_>>(), ["ops"]);
        base.profiles.serve = ServeProfiles::None;
        let cat = catalogue(&base, named(["ops", "p07"]), &dir());
        assert!(cat.roles.is_empty());
        assert_eq!(cat.listener, None, "nothing servable binds nothing");
        assert_eq!(effective(&base, &cat, &BTreeSet::new()), base);
    }

    #[test]
    fn token_files_go_to_the_runtime_dir_else_the_private_state_dir() {
        let state = Path::new("/home/u/.local/state/imdsd");
        let xdg = Environment::from_pairs([("XDG_RUNTIME_DIR", "/run/user/1000")]);
        assert_eq!(own_token_dir(&xdg, 1000, state), dir());
        let bare = Environment::default();
        assert_eq!(own_token_dir(&bare, 1000, state), state.join("tokens"));
        assert_eq!(
            own_token_dir(&bare, 0, state),
            Path::new("/run/imdsd/tokens")
        );
    }

    #[test]
    fn own_listener_by_default_in_the_runtime_token_dir() {
        let base = config(DECLARED);
        let cat = catalogue(&base, named(["ops"]), &dir());
        let Some(OnDemandListener::Own(l)) = &cat.listener else {
            panic!("{cat:?}")
        };
        assert_eq!(l.listen, "127.0.0.1:16926".parse().unwrap());
        let Protocol::Container(c) = &l.protocol else {
            panic!("{l:?}")
        };
        assert_eq!(
            c.tokens.dir,
            std::path::Path::new("/run/user/1000/imdsd/tokens")
        );
        assert_eq!(c.tokens.mode, 0o600);
    }

    #[test]
    fn a_container_listener_of_the_file_serves_them_only_when_listen_names_it() {
        let text = format!(
            "[[container]]\nlisten = \"127.0.0.1:9001\"\n[[container]]\nlisten = \"127.0.0.1:9002\"\n{DECLARED}"
        );
        let mut base = config(&text);
        let cat = catalogue(&base, named(["ops"]), &dir());
        assert!(
            matches!(&cat.listener, Some(OnDemandListener::Own(l)) if l.listen.port() == 16926),
            "never a file's listener by default: {cat:?}"
        );
        base.profiles.listen = Some("127.0.0.1:9002".parse().unwrap());
        let cat = catalogue(&base, named(["ops"]), &dir());
        assert_eq!(cat.listener, Some(OnDemandListener::Shared(1)));
        base.profiles.listen = Some("127.0.0.1:9003".parse().unwrap());
        let cat = catalogue(&base, named(["ops"]), &dir());
        assert!(
            matches!(&cat.listener, Some(OnDemandListener::Own(l)) if l.listen.port() == 9003)
        );
    }

    #[test]
    fn effective_adds_only_active_roles_to_the_on_demand_listener() {
        let text = format!(
            "[[container]]\nlisten = \"127.0.0.1:9001\"\n[profiles]\nlisten = \"127.0.0.1:9001\"\n{DECLARED}"
        );
        let base = config(&text);
        let cat = catalogue(&base, named(["ops", "p07"]), &dir());
        let none = effective(&base, &cat, &BTreeSet::new());
        assert_eq!(none.roles, base.roles);
        assert_eq!(none.listeners[0].roles(), ["dev"]);
        let active = BTreeSet::from(["p07".to_string(), "gone".to_string()]);
        let eff = effective(&base, &cat, &active);
        assert_eq!(eff.roles.keys().collect::<Vec<_>>(), ["dev", "p07"]);
        assert_eq!(eff.listeners[0].roles(), ["dev", "p07"]);
        let Protocol::Container(c) = &eff.listeners[0].protocol else {
            panic!()
        };
        assert_eq!(c.parked, ["ops"], "parked roles keep their token files");
    }

    #[test]
    fn an_own_listener_is_there_while_none_is_active() {
        let base = config(DECLARED);
        let cat = catalogue(&base, named(["ops"]), &dir());
        let none = effective(&base, &cat, &BTreeSet::new());
        assert_eq!(none.listeners.len(), base.listeners.len() + 1);
        assert!(none.listeners.last().unwrap().roles().is_empty());
        let eff = effective(&base, &cat, &BTreeSet::from(["ops".to_string()]));
        assert_eq!(eff.listeners.last().unwrap().roles(), ["ops"]);
    }
}
