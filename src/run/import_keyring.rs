//! `imdsd import [PROFILE...]`: moves AWS profiles' long-term keys out of
//! `~/.aws/credentials` into the Secret Service (`keystore`), and points
//! each profile at the daemon (`credential_process = imdsd
//! credential-process PROFILE` in `~/.aws/config`), so every tool that
//! reads profiles keeps working, with short-lived credentials, and no
//! file holds the secret any more.
//!
//! The plan is decided first ([`plan`], pure; `--dry-run` prints it). The
//! store is checked before anything is written, every key is stored and
//! read back before either file changes, and the files are replaced
//! atomically: a failure at any step leaves the keys where they were.
//! Running it again finds nothing left to move and changes nothing. No
//! secret is ever printed.

use super::profile_edit::{self, FileKind};
use super::profile_files;
use super::{RunError, print};
use crate::environment::Environment;
use crate::keystore;
use crate::profile::Profiles;
use crate::profile::resolve::{CREDENTIAL_KEYS, imdsd_credential_process};

/// One profile's part of an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Its keys move into the store.
    Move {
        profile: String,
        access_key_id: String,
    },
    /// Imported before: its `credential_process` is imdsd's already.
    Already { profile: String },
}

/// The steps for `wanted` (by default every profile with long-term keys,
/// and those imported before), or what is wrong with the request (pure).
pub(crate) fn plan(profiles: &Profiles, wanted: &[String]) -> Result<Vec<Step>, String> {
    let names: Vec<String> = if wanted.is_empty() {
        let mut names: Vec<String> = profiles
            .profiles
            .keys()
            .filter(|n| profiles.static_keys(n).is_some() || imported(profiles, n))
            .cloned()
            .collect();
        names.sort();
        names
    } else {
        wanted.to_vec()
    };
    if names.is_empty() {
        return Err("no profile holds long-term keys (aws_access_key_id and \
                    aws_secret_access_key): nothing to import"
            .into());
    }
    names.iter().map(|name| step(profiles, name)).collect()
}

fn imported(profiles: &Profiles, name: &str) -> bool {
    profiles
        .profiles
        .get(name)
        .and_then(|s| s.get("credential_process"))
        .is_some_and(|cmd| imdsd_credential_process(cmd).is_some())
}

fn step(profiles: &Profiles, name: &str) -> Result<Step, String> {
    let Some(section) = profiles.profiles.get(name) else {
        return Err(format!(
            "profile `{name}` is not in the AWS config or credentials file"
        ));
    };
    let Some(keys) = profiles.static_keys(name) else {
        if imported(profiles, name) {
            return Ok(Step::Already {
                profile: name.into(),
            });
        }
        return Err(format!(
            "profile `{name}` holds no long-term keys (aws_access_key_id and \
             aws_secret_access_key) of its own"
        ));
    };
    let other = CREDENTIAL_KEYS[1..]
        .iter()
        .find(|k| section.get(**k).is_some_and(|v| !v.trim().is_empty()));
    if let Some(other) = other {
        return Err(format!(
            "profile `{name}` has `{other}` besides its keys: import moves only profiles \
             whose keys are their credentials; move the keys to a profile of their own \
             (its `source_profile`) first"
        ));
    }
    Ok(Step::Move {
        profile: name.into(),
        access_key_id: keys.access_key_id.clone(),
    })
}

/// What to tell the user about `step` (pure).
pub(crate) fn describe(
    step: &Step,
    dry_run: bool,
    config: &str,
    credentials: &str,
) -> String {
    match step {
        Step::Already { profile } => {
            format!(
                "profile `{profile}`: already in the Secret Service; nothing to change\n"
            )
        }
        Step::Move {
            profile,
            access_key_id,
        } => {
            let (moved, removed, added) = match dry_run {
                true => ("would move", "would remove", "would add"),
                false => ("moved", "removed", "added"),
            };
            format!(
                "profile `{profile}`: {moved} its keys ({access_key_id}) into the Secret \
                 Service (item `{}`)\n  {removed} them from {credentials}\n  {added} \
                 `credential_process = {}` to it in {config}\n",
                keystore::item::label(profile),
                profile_edit::credential_process(profile)
            )
        }
    }
}

/// `imdsd import [PROFILE...] [--dry-run]` (into the Secret Service).
pub(super) fn import(
    profiles: &[String],
    dry_run: bool,
    env: &Environment,
) -> Result<(), RunError> {
    let loaded = crate::profile::load(env)
        .map_err(|e| RunError::Role(format!("cannot read the AWS profiles: {e}")))?;
    let steps = plan(&loaded, profiles).map_err(RunError::Role)?;
    let (config, credentials) = profile_files::load(env)?;
    let say = |step: &Step, dry_run: bool| {
        let (c, k) = (config.path.display(), credentials.path.display());
        print(&describe(step, dry_run, &c.to_string(), &k.to_string()));
    };
    let moving: Vec<&String> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Move { profile, .. } => Some(profile),
            Step::Already { .. } => None,
        })
        .collect();
    if dry_run || moving.is_empty() {
        steps.iter().for_each(|s| say(s, dry_run));
        return Ok(());
    }
    store_all(&loaded, &moving, env)?;
    let (mut new_config, mut new_credentials) =
        (config.text.to_string(), credentials.text.to_string());
    for profile in &moving {
        new_config = profile_edit::with_credential_process(&new_config, profile);
        if let Some(text) =
            profile_edit::without_keys(&new_config, FileKind::Config, profile)
        {
            new_config = text;
        }
        if let Some(text) =
            profile_edit::without_keys(&new_credentials, FileKind::Credentials, profile)
        {
            new_credentials = text;
        }
    }
    let new_config = zeroize::Zeroizing::new(new_config);
    let new_credentials = zeroize::Zeroizing::new(new_credentials);
    profile_files::replace(&config.path, &new_config)?;
    if *new_credentials != *credentials.text {
        profile_files::replace(&credentials.path, &new_credentials)?;
    }
    steps.iter().for_each(|s| say(s, false));
    if let Some(note) = unserved_note(env, &moving) {
        print(&note);
    }
    Ok(())
}

/// When a daemon runs but serves no role named after a moved profile
/// (neither declared nor on demand: `[profiles] serve` leaves it out),
/// tools reading that profile (its new `credential_process`) would get
/// nothing from it: says so, and what to add. No daemon: nothing to say.
fn unserved_note(env: &Environment, moved: &[&String]) -> Option<String> {
    let socket = super::client::control_socket(None, env).ok()?;
    let status = crate::control::client::status(&socket).ok()?;
    let served = |p: &str| status.roles.iter().any(|r| r.name == p);
    let missing: Vec<&str> = moved
        .iter()
        .map(|p| p.as_str())
        .filter(|p| !served(p))
        .collect();
    (!missing.is_empty()).then(|| unserved_text(&missing))
}

/// The note for profiles the running daemon has no role for (pure).
fn unserved_text(missing: &[&str]) -> String {
    let roles: Vec<String> = missing
        .iter()
        .map(|p| format!("[roles.{p}]\nprofile = \"{p}\"\n"))
        .collect();
    format!(
        "note: the running imdsd serves no role named {}: tools reading such a profile \
         run `imdsd credential-process NAME` and get nothing until `[profiles] serve` \
         takes it or its config has the role, e.g.\n{}",
        missing
            .iter()
            .map(|p| format!("`{p}`"))
            .collect::<Vec<_>>()
            .join(", "),
        roles.join("")
    )
}

/// Stores every profile's keys and reads each back, before any file
/// changes; the store is checked first, so a locked or absent one changes
/// nothing.
fn store_all(
    loaded: &Profiles,
    moving: &[&String],
    env: &Environment,
) -> Result<(), RunError> {
    let runtime = super::role::current_thread_runtime()?;
    let store = |e: keystore::StoreError| RunError::Role(e.to_string());
    runtime.block_on(keystore::probe(env)).map_err(store)?;
    for profile in moving {
        let keys = loaded.static_keys(profile).ok_or_else(|| {
            RunError::Role(format!("profile `{profile}` lost its keys"))
        })?;
        runtime
            .block_on(keystore::write(env, profile, &keys))
            .map_err(store)?;
        let back = runtime
            .block_on(keystore::read(env, profile))
            .map_err(store)?;
        if back.access_key_id != keys.access_key_id
            || back.secret_access_key != keys.secret_access_key
        {
            return Err(RunError::Role(format!(
                "the Secret Service did not give back the keys stored for profile \
                 `{profile}`; nothing was changed in the files"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profiles(config: &str, credentials: &str) -> Profiles {
        crate::profile::parse_files(Some(config), Some(credentials)).unwrap()
    }

    #[test]
    fn every_profile_with_keys_moves_and_imported_ones_are_said_so() {
        let p = profiles(
            "[profile done]\ncredential_process = imdsd credential-process done\n\
             [profile ops]\nrole_arn = arn:aws:iam::123456789012:role/ops\nsource_profile = dev\n",
            "[dev]\naws_access_key_id = AKIADEV\naws_secret_access_key = s3cr3t\n",
        );
        assert_eq!(
            plan(&p, &[]).unwrap(),
            [
                Step::Move {
                    profile: "dev".into(),
                    access_key_id: "AKIADEV".into()
                },
                Step::Already {
                    profile: "done".into()
                }
            ]
        );
        let text = describe(&plan(&p, &["dev".into()]).unwrap()[0], true, "/h/c", "/h/k");
        assert_eq!(
            text,
            "profile `dev`: would move its keys (AKIADEV) into the Secret Service (item \
             `imdsd: AWS profile dev`)\n  would remove them from /h/k\n  would add \
             `credential_process = imdsd credential-process dev` to it in /h/c\n"
        );
        assert!(!text.contains("s3cr3t"));
    }

    #[test]
    fn profiles_the_daemon_does_not_serve_get_the_role_to_add() {
        let text = unserved_text(&["dev", "ops"]);
        assert!(
            text.starts_with("note: the running imdsd serves no role named `dev`, `ops`")
        );
        assert!(text.ends_with(
            "[roles.dev]\nprofile = \"dev\"\n[roles.ops]\nprofile = \"ops\"\n"
        ));
    }

    #[test]
    fn profiles_that_are_more_than_keys_or_no_keys_are_refused_by_name() {
        let p = profiles(
            "[profile both]\nrole_arn = arn:aws:iam::123456789012:role/x\nsource_profile = both\n",
            "[both]\naws_access_key_id = A\naws_secret_access_key = s\n[bare]\nregion = x\n",
        );
        let both = plan(&p, &["both".into()]).unwrap_err();
        assert!(
            both.starts_with("profile `both` has `role_arn` besides its keys"),
            "{both}"
        );
        let bare = plan(&p, &["bare".into()]).unwrap_err();
        assert!(bare.contains("holds no long-term keys"), "{bare}");
        let none = plan(&p, &["nope".into()]).unwrap_err();
        assert!(none.contains("not in the AWS config"), "{none}");
        let empty = profiles("", "[x]\nregion = y\n");
        assert!(plan(&empty, &[]).unwrap_err().contains("nothing to import"));
    }
}
