//! What `imdsd rotate PROFILE` decides before and after talking to IAM
//! (pure): where the profile's long-term key lives, how long to wait for
//! a new key to work, and which of the daemon's roles use the key.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::config::{Flow, RoleConfig, SourceSpec};
use crate::profile::Profiles;
use crate::profile::resolve::imdsd_credential_process;

/// Where a profile's long-term key is kept, and so where the new one goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyHome {
    /// The Secret Service item of this profile name (`imdsd import`).
    Store(String),
    /// `aws_access_key_id`/`aws_secret_access_key` in the profile files.
    Files,
}

/// Where `profile`'s key lives, or why it has none of its own.
pub(crate) fn key_home(profiles: &Profiles, profile: &str) -> Result<KeyHome, String> {
    let Some(section) = profiles.profiles.get(profile) else {
        // Only in the store (`source = "keyring:NAME"`), if anywhere.
        return Ok(KeyHome::Store(profile.into()));
    };
    if profiles.static_keys(profile).is_some() {
        return Ok(KeyHome::Files);
    }
    if let Some(stored) = section
        .get("credential_process")
        .and_then(|cmd| imdsd_credential_process(cmd))
    {
        return Ok(KeyHome::Store(stored));
    }
    Err(match section.get("source_profile").map(|s| s.trim()) {
        Some(source) if !source.is_empty() && source != profile => format!(
            "profile `{profile}` holds no long-term key of its own; it uses profile \
             `{source}`'s: run `imdsd rotate {source}`"
        ),
        _ => format!(
            "profile `{profile}` holds no long-term key (aws_access_key_id and \
             aws_secret_access_key, or one imported into the Secret Service)"
        ),
    })
}

/// The waits between checks that a new key works: IAM takes seconds to
/// make a new key usable everywhere. Bounded: about 40 s in all.
pub(crate) const PROPAGATION_WAITS: [Duration; 7] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(3),
    Duration::from_secs(5),
    Duration::from_secs(8),
    Duration::from_secs(10),
    Duration::from_secs(10),
];

/// How putting the old key back went, when the new one cannot be used
/// (it does not work, or the store did not give it back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Restore {
    /// Written and read back.
    Back,
    /// Written where the key lives (over the new one), but reading it
    /// back gives something else (another keyring's item, say).
    WrittenNotGivenBack,
    /// Not written: what is stored is still the new key.
    NotWritten,
}

/// What becomes of the new key in IAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Undo {
    /// The old key is stored again: the new one is deleted.
    DeleteNew,
    /// The old key could not be stored again, so the new one is the only
    /// key stored (the old secret is only in this process's memory): it
    /// stays, and the old one stays active.
    KeepBoth,
}

/// [`Undo`] after a put-back that went as `restore` went.
pub(crate) fn undo(restore: Restore) -> Undo {
    match restore {
        Restore::Back | Restore::WrittenNotGivenBack => Undo::DeleteNew,
        Restore::NotWritten => Undo::KeepBoth,
    }
}

/// What to tell the user when both keys stay ([`Undo::KeepBoth`]): key ids
/// only.
pub(crate) fn kept_both(new_id: &str, old_id: &str, user: &str) -> String {
    format!(
        "the new key {new_id} is stored and was kept (IAM can take a while to accept a \
         new key: it may start working shortly); the old key {old_id} is still active \
         in IAM; once {new_id} works, delete {old_id} with `aws iam delete-access-key \
         --user-name {user} --access-key-id {old_id}`"
    )
}

/// Whether profile `name` gets its credentials from `rotated`'s key
/// (itself, through `source_profile` or imdsd's own `credential_process`).
pub(crate) fn profile_uses(profiles: &Profiles, name: &str, rotated: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut current = name.to_string();
    loop {
        if current == rotated {
            return true;
        }
        if !seen.insert(current.clone()) {
            return false;
        }
        let Some(section) = profiles.profiles.get(&current) else {
            return false;
        };
        let next = section
            .get("credential_process")
            .and_then(|cmd| imdsd_credential_process(cmd))
            .or_else(|| section.get("source_profile").map(|s| s.trim().to_string()));
        match next {
            Some(next) if next != current => current = next,
            _ => return false,
        }
    }
}

/// The roles to refresh after rotating `rotated`: the config's roles whose
/// credentials come from it (directly or through `role:` chains), and the
/// running roles named after a profile that uses it (the zero-config
/// start's, on-demand ones). Sorted.
pub(crate) fn roles_using(
    config: &BTreeMap<String, RoleConfig>,
    running: &[String],
    profiles: &Profiles,
    rotated: &str,
) -> Vec<String> {
    let mut out: BTreeSet<String> = running
        .iter()
        .filter(|r| !config.contains_key(*r) && profile_uses(profiles, r, rotated))
        .cloned()
        .collect();
    out.extend(
        config
            .keys()
            .filter(|r| role_uses(config, r, profiles, rotated, 0))
            .cloned(),
    );
    out.into_iter().collect()
}

fn role_uses(
    config: &BTreeMap<String, RoleConfig>,
    role: &str,
    profiles: &Profiles,
    rotated: &str,
    depth: usize,
) -> bool {
    let Some(role) = config.get(role).filter(|_| depth < 16) else {
        return false;
    };
    let source = match &role.flow {
        Flow::Profile { name, .. } => return profile_uses(profiles, name, rotated),
        Flow::AssumeRole(a) => &a.source,
        Flow::SessionToken { source, .. } => source,
        _ => return false,
    };
    match source {
        SourceSpec::Profile(name) => profile_uses(profiles, name, rotated),
        SourceSpec::Keyring(name) => name == rotated,
        SourceSpec::Role(name) => role_uses(config, name, profiles, rotated, depth + 1),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profiles() -> Profiles {
        crate::profile::parse_files(
            Some(
                "[default]\ncredential_process = imdsd credential-process default\n\
                 [profile ops]\nrole_arn = arn:aws:iam::123456789012:role/ops\n\
                 source_profile = default\n\
                 [profile other]\nrole_arn = arn:aws:iam::123456789012:role/o\n\
                 source_profile = filed\n",
            ),
            Some("[filed]\naws_access_key_id = A\naws_secret_access_key = s\n"),
        )
        .unwrap()
    }

    #[test]
    fn the_key_lives_in_the_store_or_the_files_or_the_error_names_the_source() {
        let p = profiles();
        assert_eq!(
            key_home(&p, "default"),
            Ok(KeyHome::Store("default".into()))
        );
        assert_eq!(key_home(&p, "filed"), Ok(KeyHome::Files));
        assert_eq!(
            key_home(&p, "only-stored"),
            Ok(KeyHome::Store("only-stored".into()))
        );
        let err = key_home(&p, "ops").unwrap_err();
        assert!(err.contains("run `imdsd rotate default`"), "{err}");
    }

    #[test]
    fn roles_using_the_key_are_found_through_profiles_and_chains() {
        let (config, problems) = crate::config::load::parse(
            r#"
[[imds]]
listen = "127.0.0.1:0"
role = "a"
[roles.a]
profile = "ops"
[roles.b]
role_arn = "arn:aws:iam::123456789012:role/b"
source = "role:a"
[roles.c]
role_arn = "arn:aws:iam::123456789012:role/c"
source = "keyring:default"
[roles.d]
profile = "other"
"#,
            &crate::environment::Environment::default(),
        );
        let config = config.unwrap_or_else(|| panic!("{problems:?}"));
        let running = ["a".into(), "default".into(), "filed".into()];
        assert_eq!(
            roles_using(&config.roles, &running, &profiles(), "default"),
            ["a", "b", "c", "default"]
        );
        assert_eq!(
            roles_using(&config.roles, &running, &profiles(), "filed"),
            ["d", "filed"]
        );
        assert!(PROPAGATION_WAITS.iter().sum::<Duration>() <= Duration::from_secs(40));
    }

    #[test]
    fn a_new_key_is_deleted_only_once_the_old_one_is_back() {
        assert_eq!(undo(Restore::Back), Undo::DeleteNew);
        // Written over the new key: the old one is what is stored.
        assert_eq!(undo(Restore::WrittenNotGivenBack), Undo::DeleteNew);
        // Not written: the new key is the only one stored; deleting it
        // would lose both.
        assert_eq!(undo(Restore::NotWritten), Undo::KeepBoth);
        let text = kept_both("AKIANEW", "AKIAOLD", "alice");
        assert!(
            text.starts_with("the new key AKIANEW is stored and was kept"),
            "{text}"
        );
        assert!(text.contains("may start working shortly"), "{text}");
        assert!(
            text.contains("the old key AKIAOLD is still active in IAM"),
            "{text}"
        );
    }
}
