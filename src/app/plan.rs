//! What a reload changes: old config + new config → a plan. Pure.
//!
//! A role is kept (credentials and all, no STS call) only when its own
//! definition and the `[sts]` settings are unchanged. A listener is matched
//! by its configured address; listeners on port 0 (tests) are matched in
//! order among those with the same IP.

use std::collections::BTreeSet;

use crate::config::{Config, ListenerConfig};

/// The changes a reload makes.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ReloadPlan {
    /// Roles whose refresher and credentials carry on.
    pub(crate) roles_kept: BTreeSet<String>,
    /// New roles, and changed ones (a fresh refresher fetches at once).
    pub(crate) roles_started: BTreeSet<String>,
    /// Removed roles, and the old runtime of changed ones.
    pub(crate) roles_stopped: BTreeSet<String>,
    /// (old index, new index) of listeners that stay bound. Their endpoint
    /// is rebuilt when `endpoint_changed`.
    pub(crate) listeners_kept: Vec<KeptListener>,
    /// New-config indexes of listeners to bind.
    pub(crate) listeners_opened: Vec<usize>,
    /// Old-config indexes of listeners to close.
    pub(crate) listeners_closed: Vec<usize>,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct KeptListener {
    pub(crate) old: usize,
    pub(crate) new: usize,
    pub(crate) endpoint_changed: bool,
}

impl ReloadPlan {
    pub(crate) fn is_empty(&self) -> bool {
        self.roles_started.is_empty()
            && self.roles_stopped.is_empty()
            && self.listeners_opened.is_empty()
            && self.listeners_closed.is_empty()
            && self.listeners_kept.iter().all(|k| !k.endpoint_changed)
    }
}

#[cfg(test)]
pub(crate) fn plan(old: &Config, new: &Config) -> ReloadPlan {
    plan_restarting(old, new, |_| false)
}

/// Like [`plan`]; a role for which `restart` is true is restarted even
/// when its definition is unchanged (it turned from on demand into
/// declared, or back: its refresher parks or not).
pub(crate) fn plan_restarting(
    old: &Config,
    new: &Config,
    restart: impl Fn(&str) -> bool,
) -> ReloadPlan {
    let mut p = ReloadPlan::default();
    // Only where STS is changes whose credentials a role holds; a new
    // timeout applies to the next fetch without a restart.
    let sts_same =
        old.sts.region == new.sts.region && old.sts.endpoint == new.sts.endpoint;
    for (name, role) in &new.roles {
        match old.roles.get(name) {
            Some(prev) if prev == role && sts_same && !restart(name) => {
                p.roles_kept.insert(name.clone())
            }
            Some(_) => {
                p.roles_stopped.insert(name.clone());
                p.roles_started.insert(name.clone())
            }
            None => p.roles_started.insert(name.clone()),
        };
    }
    for name in old.roles.keys().filter(|n| !new.roles.contains_key(*n)) {
        p.roles_stopped.insert(name.clone());
    }
    let matches = match_listeners(&old.listeners, &new.listeners);
    for (new_i, l) in new.listeners.iter().enumerate() {
        match matches.iter().find(|(_, n)| *n == new_i) {
            Some(&(old_i, _)) => {
                let endpoint_changed = old.listeners[old_i] != *l
                    || l.roles().iter().any(|r| p.roles_started.contains(r));
                p.listeners_kept.push(KeptListener {
                    old: old_i,
                    new: new_i,
                    endpoint_changed,
                });
            }
            None => p.listeners_opened.push(new_i),
        }
    }
    p.listeners_closed = (0..old.listeners.len())
        .filter(|o| !matches.iter().any(|(m, _)| m == o))
        .collect();
    p
}

/// Pairs (old index, new index) of listeners on the same address.
fn match_listeners(
    old: &[ListenerConfig],
    new: &[ListenerConfig],
) -> Vec<(usize, usize)> {
    let mut taken = vec![false; old.len()];
    let mut pairs = Vec::new();
    for (new_i, l) in new.iter().enumerate() {
        let same = |o: &ListenerConfig| same_address(o, l);
        if let Some(old_i) = (0..old.len()).find(|&i| !taken[i] && same(&old[i])) {
            taken[old_i] = true;
            pairs.push((old_i, new_i));
        }
    }
    pairs
}

/// The same configured address; port-0 listeners (tests) pair up in order
/// among those of the same IP and protocol.
fn same_address(a: &ListenerConfig, b: &ListenerConfig) -> bool {
    let (x, y) = (a.listen, b.listen);
    if x.port() == 0 && y.port() == 0 {
        x.ip() == y.ip() && a.protocol.name() == b.protocol.name()
    } else {
        x == y
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load::parse;
    use crate::environment::Environment;

    fn config(text: &str) -> Config {
        let (c, d) = parse(text, &Environment::default());
        c.unwrap_or_else(|| panic!("{d:?}"))
    }

    const BASE: &str = concat!(
        r#"
[[imds]]
listen = "127.0.0.1:9001"
role = "a"
[[imds]]
listen = "127.0.0.1:9002"
role = "b""#,
        crate::config::two_roles_toml!()
    );

    #[test]
    fn identical_configs_change_nothing() {
        let p = plan(&config(BASE), &config(BASE));
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(p.roles_kept.len(), 2);
    }

    #[test]
    fn a_changed_role_restarts_and_its_listener_gets_a_new_endpoint() {
        let new = BASE.replace("role/b\"", "role/b2\"");
        let p = plan(&config(BASE), &config(&new));
        assert_eq!(p.roles_kept, ["a".to_string()].into());
        assert_eq!(p.roles_started, ["b".to_string()].into());
        assert_eq!(p.roles_stopped, ["b".to_string()].into());
        assert_eq!(
            p.listeners_kept,
            vec![
                KeptListener {
                    old: 0,
                    new: 0,
                    endpoint_changed: false
                },
                KeptListener {
                    old: 1,
                    new: 1,
                    endpoint_changed: true
                },
            ]
        );
    }

    #[test]
    fn sts_changes_restart_every_role() {
        let new = format!("{BASE}\n[sts]\nregion = \"eu-west-1\"\n");
        let p = plan(&config(BASE), &config(&new));
        assert_eq!(p.roles_started.len(), 2);
        assert!(p.roles_kept.is_empty());
    }

    #[test]
    fn a_new_sts_endpoint_alone_or_region_alone_restarts_every_role() {
        let endpoint = "\n[sts]\nendpoint = \"https://sts.example.test\"\n";
        let region = "\nregion = \"eu-west-1\"\n";
        for (old, new) in [
            (BASE.to_string(), format!("{BASE}{endpoint}")),
            (
                format!("{BASE}{endpoint}"),
                format!("{BASE}{endpoint}{region}"),
            ),
        ] {
            let (old, new) = (config(&old), config(&new));
            assert!(
                (old.sts.region == new.sts.region)
                    != (old.sts.endpoint == new.sts.endpoint),
                "one of the two changes"
            );
            let p = plan(&old, &new);
            assert_eq!(p.roles_started.len(), 2, "{p:?}");
            assert!(p.roles_kept.is_empty(), "{p:?}");
        }
    }

    #[test]
    fn a_plan_with_any_one_change_is_not_empty() {
        let one = |name: &str| BTreeSet::from([name.to_string()]);
        let changes = [
            ReloadPlan {
                roles_started: one("a"),
                ..Default::default()
            },
            ReloadPlan {
                roles_stopped: one("a"),
                ..Default::default()
            },
            ReloadPlan {
                listeners_opened: vec![0],
                ..Default::default()
            },
            ReloadPlan {
                listeners_closed: vec![0],
                ..Default::default()
            },
            ReloadPlan {
                listeners_kept: vec![KeptListener {
                    old: 0,
                    new: 0,
                    endpoint_changed: true,
                }],
                ..Default::default()
            },
        ];
        for p in changes {
            assert!(!p.is_empty(), "{p:?}");
        }
        let unchanged = ReloadPlan {
            roles_kept: one("a"),
            listeners_kept: vec![KeptListener {
                old: 0,
                new: 0,
                endpoint_changed: false,
            }],
            ..Default::default()
        };
        assert!(unchanged.is_empty());
    }

    #[test]
    fn a_new_sts_timeout_restarts_nothing() {
        let new = format!("{BASE}\n[sts]\ntimeout = \"20s\"\n");
        let p = plan(&config(BASE), &config(&new));
        assert!(
            p.roles_started.is_empty() && p.roles_kept.len() == 2,
            "{p:?}"
        );
    }

    #[test]
    fn listeners_open_and_close_by_address() {
        let new = BASE.replace("127.0.0.1:9002", "127.0.0.1:9003");
        let p = plan(&config(BASE), &config(&new));
        assert_eq!(p.listeners_opened, vec![1]);
        assert_eq!(p.listeners_closed, vec![1]);
        assert!(p.roles_started.is_empty());
    }

    #[test]
    fn switching_a_listener_to_another_role_keeps_the_socket() {
        let new = BASE.replacen("role = \"a\"", "role = \"b\"", 1);
        let p = plan(&config(BASE), &config(&new));
        assert_eq!(
            p.listeners_kept[0],
            KeptListener {
                old: 0,
                new: 0,
                endpoint_changed: true
            }
        );
        assert!(p.listeners_opened.is_empty());
    }

    #[test]
    fn port_zero_listeners_match_in_order() {
        let text = BASE.replace(":9001", ":0").replace(":9002", ":0");
        let p = plan(&config(&text), &config(&text));
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn port_zero_pairs_only_with_port_zero_on_the_same_ip() {
        let zero = BASE.replace(":9001", ":0");
        for other in [zero.replace("127.0.0.1:0", "127.0.0.2:0"), BASE.to_string()] {
            for (old, new) in [(&zero, &other), (&other, &zero)] {
                let p = plan(&config(old), &config(new));
                assert_eq!(p.listeners_opened, vec![0], "{old} -> {new}");
                assert_eq!(p.listeners_closed, vec![0], "{old} -> {new}");
            }
        }
    }

    #[test]
    fn port_zero_imds_and_container_listeners_do_not_pair() {
        let imds = BASE.replace(":9001", ":0");
        let container = imds.replacen(
            "[[imds]]\nlisten = \"127.0.0.1:0\"\nrole = \"a\"",
            "[[container]]\nlisten = \"127.0.0.1:0\"\nroles = [\"a\"]",
            1,
        );
        // The config lists `[[imds]]` listeners before `[[container]]` ones.
        let p = plan(&config(&imds), &config(&container));
        assert_eq!(p.listeners_opened, vec![1], "{p:?}");
        assert_eq!(p.listeners_closed, vec![0], "{p:?}");
    }

    #[test]
    fn removed_roles_stop() {
        let new = BASE.replace("role = \"b\"", "role = \"a\"").replace(
            "[roles.b]\nrole_arn = \"arn:aws:iam::123456789012:role/b\"\nsource = \"env\"\n",
            "",
        );
        let p = plan(&config(BASE), &config(&new));
        assert_eq!(p.roles_stopped, ["b".to_string()].into());
        assert!(p.roles_started.is_empty());
    }

    #[test]
    fn a_role_to_restart_is_restarted_with_its_listener_switched() {
        let env = Environment::default();
        let text = format!(
            "[[imds]]\nlisten = \"127.0.0.1:0\"\nrole = \"a\"\n{}",
            crate::config::two_roles_toml!()
        );
        let (c, _) = parse(&text, &env);
        let c = c.unwrap();
        let p = plan_restarting(&c, &c, |r| r == "a");
        assert_eq!(p.roles_kept, BTreeSet::from(["b".to_string()]));
        assert_eq!(p.roles_started, BTreeSet::from(["a".to_string()]));
        assert_eq!(p.roles_stopped, BTreeSet::from(["a".to_string()]));
        assert!(p.listeners_kept[0].endpoint_changed);
        assert!(plan(&c, &c).is_empty());
    }
}
