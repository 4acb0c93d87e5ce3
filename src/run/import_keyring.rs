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

use std::collections::HashMap;

use zeroize::Zeroizing;

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
    /// Its keys move into the store. `resumed`: an import before stopped
    /// half way (its `credential_process` is imdsd's line for it already,
    /// the keys are still in the files): store them again, remove them,
    /// keep the line.
    Move {
        profile: String,
        access_key_id: String,
        resumed: bool,
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

/// Whether `section`'s `credential_process` is the line `imdsd import`
/// adds for profile `name` (imdsd's own, naming `name` itself).
fn points_at_itself(section: &HashMap<String, String>, name: &str) -> bool {
    section
        .get("credential_process")
        .and_then(|cmd| imdsd_credential_process(cmd))
        .is_some_and(|stored| stored == name)
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
    // imdsd's own line for this very profile, with the keys still there:
    // an import stopped between its two file writes; it goes on.
    let resumed = points_at_itself(section, name);
    let other = CREDENTIAL_KEYS[1..].iter().find(|k| {
        section.get(**k).is_some_and(|v| !v.trim().is_empty())
            && !(**k == "credential_process" && resumed)
    });
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
        resumed,
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
            resumed,
        } => {
            let (moved, removed, added) = match dry_run {
                true => ("would move", "would remove", "would add"),
                false => ("moved", "removed", "added"),
            };
            let line = format!(
                "`credential_process = {}`",
                profile_edit::credential_process(profile)
            );
            let line = match (resumed, dry_run) {
                (false, _) => format!("{added} {line} to it in {config}"),
                (true, true) => format!("would keep its {line} in {config}"),
                (true, false) => format!("kept its {line} in {config}"),
            };
            format!(
                "profile `{profile}`: {moved} its keys ({access_key_id}) into the Secret \
                 Service (item `{}`)\n  {removed} them from {credentials}\n  {line}\n",
                keystore::item::label(profile),
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
    let (new_config, new_credentials) =
        edited(&config.text, &credentials.text, &moving).map_err(RunError::Role)?;
    store_all(&loaded, &moving, env)?;
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

/// The two files' texts with `moving`'s keys out and their
/// `credential_process` in, checked by parsing them again as every reader
/// will: a profile that would still hold a key (a line the editor did not
/// take for one), or lack imdsd's line, stops the import before anything
/// is stored or written (pure). Problems name keys and files, never values.
pub(crate) fn edited(
    config: &str,
    credentials: &str,
    moving: &[&String],
) -> Result<(Zeroizing<String>, Zeroizing<String>), String> {
    let mut new_config = Zeroizing::new(config.to_string());
    let mut new_credentials = Zeroizing::new(credentials.to_string());
    // Each text replaces the last as a new `Zeroizing`, so the one before
    // is wiped as it goes.
    for profile in moving {
        new_config =
            Zeroizing::new(profile_edit::with_credential_process(&new_config, profile));
        if let Some(text) =
            profile_edit::without_keys(&new_config, FileKind::Config, profile)
        {
            new_config = Zeroizing::new(text);
        }
        if let Some(text) =
            profile_edit::without_keys(&new_credentials, FileKind::Credentials, profile)
        {
            new_credentials = Zeroizing::new(text);
        }
    }
    let unchanged = "nothing was stored or changed";
    let parsed = crate::profile::parse_files(Some(&new_config), Some(&new_credentials))
        .map_err(|e| {
        format!("the edited AWS profile files would not parse ({e}); {unchanged}")
    })?;
    for profile in moving {
        let section = parsed.profiles.get(profile.as_str());
        let left = profile_edit::KEY_NAMES
            .iter()
            .find(|k| section.is_some_and(|s| s.contains_key(**k)));
        if let Some(key) = left {
            return Err(format!(
                "cannot remove profile `{profile}`'s `{key}` from the AWS profile files: \
                 imdsd does not read that line as its readers do; {unchanged}: write it \
                 as `{key} = ...` on a line of its own and run this again"
            ));
        }
        if !section.is_some_and(|s| points_at_itself(s, profile)) {
            return Err(format!(
                "cannot add `credential_process` to profile `{profile}` in the AWS config \
                 file as its readers read it; {unchanged}"
            ));
        }
    }
    Ok((new_config, new_credentials))
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
                    access_key_id: "AKIADEV".into(),
                    resumed: false,
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

    #[test]
    fn an_import_stopped_between_its_two_writes_goes_on() {
        // The config file was written (imdsd's line for `dev`), the
        // credentials file was not (the keys are still there).
        let config = "[profile dev]\ncredential_process = imdsd credential-process dev\n";
        let credentials =
            "[dev]\naws_access_key_id = AKIADEV\naws_secret_access_key = s3cr3t\n";
        let p = profiles(config, credentials);
        let resumed = Step::Move {
            profile: "dev".into(),
            access_key_id: "AKIADEV".into(),
            resumed: true,
        };
        assert_eq!(plan(&p, &[]).unwrap(), std::slice::from_ref(&resumed));
        assert_eq!(
            plan(&p, &["dev".into()]).unwrap(),
            std::slice::from_ref(&resumed)
        );
        let text = describe(&resumed, false, "/h/c", "/h/k");
        assert!(
            text.ends_with(
                "removed them from /h/k\n  kept its `credential_process = imdsd \
                 credential-process dev` in /h/c\n"
            ),
            "{text}"
        );
        let dev = String::from("dev");
        let (new_config, new_credentials) = edited(config, credentials, &[&dev]).unwrap();
        assert_eq!(*new_config, config, "the line is kept, not added twice");
        assert_eq!(*new_credentials, "");
        // imdsd's line for another profile, or someone else's command, is
        // still more than keys.
        for other in ["imdsd credential-process ops", "aws-vault export dev"] {
            let p = profiles(
                &format!("[profile dev]\ncredential_process = {other}\n"),
                credentials,
            );
            let err = plan(&p, &["dev".into()]).unwrap_err();
            assert!(
                err.contains("has `credential_process` besides its keys"),
                "{err}"
            );
        }
    }

    #[test]
    fn keys_written_as_the_parser_reads_them_leave_the_files() {
        let config = "[profile dev]\n  aws_session_token: t0k3n\n";
        let credentials = "[dev]\n  aws_access_key_id = AKIADEV\n\
                           aws_secret_access_key: s3cr3t\nregion = x\n";
        let dev = String::from("dev");
        let (new_config, new_credentials) = edited(config, credentials, &[&dev]).unwrap();
        assert_eq!(
            *new_config,
            "[profile dev]\ncredential_process = imdsd credential-process dev\n"
        );
        assert_eq!(*new_credentials, "[dev]\nregion = x\n");
    }

    #[test]
    fn edits_that_would_leave_a_key_behind_stop_the_import() {
        // Lines ended by a lone `\r`: the parser reads three keys, the
        // editor one line. Nothing may be written while keys remain.
        let credentials =
            "[dev]\raws_access_key_id = AKIADEV\raws_secret_access_key = s3cr3t\r";
        let p = profiles("", credentials);
        assert!(matches!(plan(&p, &[]).unwrap()[..], [Step::Move { .. }]));
        let dev = String::from("dev");
        let err = edited("", credentials, &[&dev]).unwrap_err();
        assert!(
            err.starts_with("cannot remove profile `dev`'s `aws_access_key_id`"),
            "{err}"
        );
        assert!(err.contains("nothing was stored or changed"), "{err}");
        assert!(!err.contains("s3cr3t") && !err.contains("AKIADEV"), "{err}");
    }
}
