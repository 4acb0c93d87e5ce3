//! `imdsd rotate PROFILE`: replaces the IAM user's access key, as
//! `aws-vault rotate` does. GetUser with the current key (it must work),
//! CreateAccessKey with it, the new key stored where the old one lives
//! (the Secret Service, or the profile files), checked with
//! GetCallerIdentity (with bounded waits for IAM's propagation), then the
//! old key deleted with the new one, and the running daemon's roles that
//! use it refreshed.
//!
//! Nothing is lost at any step: until the new key is stored and checked,
//! the old one stays where it was and active; a new key that could not be
//! stored, or does not work, is deleted again and the old one put back;
//! but when the old one cannot be put back, the new one (then the only
//! key stored) is kept, and the old one stays active. Every key stored is
//! read back before going on. Only key ids are printed.

use std::path::PathBuf;

use super::profile_edit::{self, FileKind};
use super::rotate_plan::{self, KeyHome, PROPAGATION_WAITS, Restore, Undo};
use super::{RunError, print, profile_files};
use crate::config::profile_refs::ProfileFacts;
use crate::credentials::Credentials;
use crate::environment::Environment;
use crate::iam::{Iam, IamError};
use crate::keystore;
use crate::profile::Profiles;

/// `imdsd rotate PROFILE [--socket PATH]`.
pub(super) fn rotate(
    profile: &str,
    socket: Option<PathBuf>,
    env: &Environment,
) -> Result<(), RunError> {
    let profiles = crate::profile::load(env)
        .map_err(|e| RunError::Role(format!("cannot read the AWS profiles: {e}")))?;
    let home = rotate_plan::key_home(&profiles, profile).map_err(RunError::Role)?;
    let sts = crate::config::validate::default_sts(env, ProfileFacts::Read(&profiles))
        .map_err(RunError::Role)?;
    let clock: crate::clock::SharedClock = std::sync::Arc::new(crate::clock::SystemClock);
    let iam = Iam::new(env, &sts, clock).map_err(|e| RunError::Role(e.to_string()))?;
    let runtime = super::role::current_thread_runtime()?;
    let rotation = Rotation {
        iam: &iam,
        home: &home,
        profile,
        env,
    };
    runtime.block_on(rotation.run(&profiles))?;
    refresh_roles(socket, env, &profiles, profile);
    Ok(())
}

/// One rotation's fixed parts.
struct Rotation<'a> {
    iam: &'a Iam,
    home: &'a KeyHome,
    profile: &'a str,
    env: &'a Environment,
}

impl Rotation<'_> {
    async fn run(&self, profiles: &Profiles) -> Result<(), RunError> {
        let old = self.current_key(profiles).await?;
        let unchanged =
            |what: String| RunError::Role(format!("{what}; nothing was changed"));
        let user = self.iam.user_name(&old).await.map_err(|e| {
            unchanged(format!(
                "the current key {} does not work: {e}",
                old.access_key_id
            ))
        })?;
        print(&format!(
            "rotating access key {} of IAM user {user} (profile `{}`, {})\n",
            old.access_key_id,
            self.profile,
            self.where_kept()
        ));
        let new = self
            .iam
            .create_access_key(&old, &user)
            .await
            .map_err(|e| unchanged(create_failed(&e, &user)))?;
        print(&format!("created access key {}\n", new.access_key_id));
        self.store_new(&old, &new, &user).await?;
        print(&format!("stored it in {}\n", self.where_kept()));
        if let Err(e) = self.verify(&new).await {
            let what = format!("the new key {} does not work: {e}", new.access_key_id);
            return Err(self.put_back(&old, &new, &user, what).await);
        }
        self.delete_old(&old, &new, &user).await
    }

    /// Stores `new` and reads it back. Not stored: the new key is deleted
    /// again, the old one never left. Stored but not given back (another
    /// item answers, say): the old key may be overwritten, so it is put
    /// back first ([`Self::put_back`]).
    async fn store_new(
        &self,
        old: &Credentials,
        new: &Credentials,
        user: &str,
    ) -> Result<(), RunError> {
        match self.store_checked(new).await {
            Ok(()) => Ok(()),
            Err(Stored::Not(e)) => {
                let undone = self
                    .iam
                    .delete_access_key(old, user, &new.access_key_id)
                    .await;
                Err(RunError::Role(format!(
                    "cannot store the new key {}: {e}; {}; the old key {} is unchanged",
                    new.access_key_id,
                    deleted_again(new, undone),
                    old.access_key_id
                )))
            }
            Err(Stored::NotGivenBack(e)) => {
                let what =
                    format!("the new key {} was stored, but {e}", new.access_key_id);
                Err(self.put_back(old, new, user, what).await)
            }
        }
    }

    /// The key in use now: long-term, from where it lives.
    async fn current_key(&self, profiles: &Profiles) -> Result<Credentials, RunError> {
        let key = match self.home {
            KeyHome::Store(name) => keystore::read(self.env, name)
                .await
                .map_err(|e| RunError::Role(e.to_string()))?,
            KeyHome::Files => profiles.static_keys(self.profile).ok_or_else(|| {
                RunError::Role(format!("profile `{}` lost its keys", self.profile))
            })?,
        };
        if key.session_token.is_some() {
            return Err(RunError::Role(format!(
                "profile `{}` holds temporary keys (aws_session_token): only an IAM \
                 user's long-term access key can be rotated",
                self.profile
            )));
        }
        if let KeyHome::Store(_) = self.home {
            keystore::probe(self.env)
                .await
                .map_err(|e| RunError::Role(e.to_string()))?;
        }
        Ok(key)
    }

    fn where_kept(&self) -> String {
        match self.home {
            KeyHome::Store(name) => {
                format!("the Secret Service item `{}`", keystore::item::label(name))
            }
            KeyHome::Files => "the AWS profile files".into(),
        }
    }

    /// Puts `key` where the profile's key lives, then reads it back from
    /// there as every reader will (`keystore::read` takes the first
    /// unlocked item of the profile, which may be another collection's).
    async fn store_checked(&self, key: &Credentials) -> Result<(), Stored> {
        let written = match self.home {
            KeyHome::Store(name) => keystore::write(self.env, name, key)
                .await
                .map_err(|e| e.to_string()),
            KeyHome::Files => self.store_in_files(key).map_err(|e| e.to_string()),
        };
        written.map_err(Stored::Not)?;
        let back = match self.home {
            KeyHome::Store(name) => keystore::read(self.env, name)
                .await
                .map_err(|e| e.to_string()),
            KeyHome::Files => crate::profile::load(self.env)
                .map_err(|e| e.to_string())
                .and_then(|p| {
                    p.static_keys(self.profile)
                        .ok_or_else(|| format!("profile `{}` has no keys", self.profile))
                }),
        };
        let from = self.where_kept();
        let back = back.map_err(|e| {
            Stored::NotGivenBack(format!("reading it back from {from} failed: {e}"))
        })?;
        if back.access_key_id != key.access_key_id
            || back.secret_access_key != key.secret_access_key
        {
            return Err(Stored::NotGivenBack(format!(
                "reading it back from {from} gives the key {} instead",
                back.access_key_id
            )));
        }
        Ok(())
    }

    fn store_in_files(&self, key: &Credentials) -> Result<(), RunError> {
        let (config, credentials) = profile_files::load(self.env)?;
        let secret = key.secret_access_key.expose();
        let id = &key.access_key_id;
        for (file, kind) in [
            (&credentials, FileKind::Credentials),
            (&config, FileKind::Config),
        ] {
            if let Some(text) =
                profile_edit::with_keys(&file.text, kind, self.profile, id, secret)
            {
                return profile_files::replace(&file.path, &text);
            }
        }
        Err(RunError::Role(format!(
            "profile `{}`'s aws_access_key_id and aws_secret_access_key lines are gone \
             from the files",
            self.profile
        )))
    }

    /// Waits (bounded) until STS accepts `key`.
    async fn verify(&self, key: &Credentials) -> Result<String, IamError> {
        let mut waits = PROPAGATION_WAITS.iter();
        loop {
            match self.iam.caller_arn(key).await {
                Ok(arn) => {
                    print(&format!("checked it: GetCallerIdentity answers {arn}\n"));
                    return Ok(arn);
                }
                Err(e) => match waits.next() {
                    Some(wait) => tokio::time::sleep(*wait).await,
                    None => return Err(e),
                },
            }
        }
    }

    /// The new key cannot be used (`what`): the old one goes back, and
    /// only once it is written back is the new one deleted (with the old
    /// key, which still works). When the old key cannot be written back,
    /// the new one is the only key stored: both stay
    /// ([`rotate_plan::undo`]).
    async fn put_back(
        &self,
        old: &Credentials,
        new: &Credentials,
        user: &str,
        what: String,
    ) -> RunError {
        let restored = self.store_checked(old).await;
        let old_id = &old.access_key_id;
        let (restore, said) = match &restored {
            Ok(()) => (
                Restore::Back,
                format!("the old key {old_id} is back in place"),
            ),
            Err(Stored::NotGivenBack(e)) => (
                Restore::WrittenNotGivenBack,
                format!("the old key {old_id} was written back, but {e}"),
            ),
            Err(Stored::Not(e)) => (
                Restore::NotWritten,
                format!("the old key {old_id} could not be put back ({e})"),
            ),
        };
        let next = match rotate_plan::undo(restore) {
            Undo::DeleteNew => {
                let undone = self
                    .iam
                    .delete_access_key(old, user, &new.access_key_id)
                    .await;
                deleted_again(new, undone)
            }
            Undo::KeepBoth => rotate_plan::kept_both(&new.access_key_id, old_id, user),
        };
        RunError::Role(format!("{what}; {said}; {next}"))
    }

    /// Deletes the old key with the new one (which may take IAM a moment
    /// to accept).
    async fn delete_old(
        &self,
        old: &Credentials,
        new: &Credentials,
        user: &str,
    ) -> Result<(), RunError> {
        let mut waits = PROPAGATION_WAITS.iter();
        loop {
            match self
                .iam
                .delete_access_key(new, user, &old.access_key_id)
                .await
            {
                Ok(()) => break,
                Err(e) => match waits.next() {
                    Some(wait) => tokio::time::sleep(*wait).await,
                    None => {
                        return Err(RunError::Role(format!(
                            "the new key {} is stored and works, but the old key {} could not \
                             be deleted: {e}; delete it with `aws iam delete-access-key \
                             --user-name {user} --access-key-id {}`",
                            new.access_key_id, old.access_key_id, old.access_key_id
                        )));
                    }
                },
            }
        }
        print(&format!(
            "deleted the old access key {}\n",
            old.access_key_id
        ));
        Ok(())
    }
}

/// Why a key did not end up where the profile's key lives.
enum Stored {
    /// It was not written (nothing there changed).
    Not(String),
    /// It was written, but reading it back gives something else.
    NotGivenBack(String),
}

/// Why CreateAccessKey failed, in words: a user has at most two keys.
fn create_failed(e: &IamError, user: &str) -> String {
    match e.code() {
        Some("LimitExceeded") => format!(
            "cannot create a new access key: {e}; IAM user {user} has two already: delete \
             the one not in use (`aws iam list-access-keys --user-name {user}`) and run \
             this again"
        ),
        _ => format!("cannot create a new access key: {e}"),
    }
}

fn deleted_again(new: &Credentials, undone: Result<(), IamError>) -> String {
    match undone {
        Ok(()) => format!("the new key {} was deleted again", new.access_key_id),
        Err(e) => format!(
            "the new key {} could not be deleted again ({e}): delete it with `aws iam \
             delete-access-key`",
            new.access_key_id
        ),
    }
}

/// Refreshes the running daemon's roles that use the rotated key, so none
/// goes on with credentials from the deleted one. No daemon: nothing to do.
fn refresh_roles(
    socket: Option<PathBuf>,
    env: &Environment,
    profiles: &Profiles,
    rotated: &str,
) {
    let Ok(path) = super::client::control_socket(socket, env) else {
        return;
    };
    let Ok(status) = crate::control::client::status(&path) else {
        return;
    };
    let running: Vec<String> = status.roles.iter().map(|r| r.name.clone()).collect();
    let config = super::load(Some(std::path::Path::new(&status.config)), env)
        .map(|loaded| loaded.config.roles)
        .unwrap_or_default();
    let roles = rotate_plan::roles_using(&config, &running, profiles, rotated);
    if roles.is_empty() {
        return;
    }
    match crate::control::client::refresh(&path, &roles) {
        Ok(reports) => {
            for r in reports {
                print(&format!("refreshed role `{}`: {}\n", r.role, r.message));
            }
        }
        Err(e) => print(&format!("could not refresh the daemon's roles: {e}\n")),
    }
}
