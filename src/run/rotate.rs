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
//! stored, or does not work, is deleted again and the old one put back.
//! Only key ids are printed.

use std::path::PathBuf;

use super::profile_edit::{self, FileKind};
use super::rotate_plan::{self, KeyHome, PROPAGATION_WAITS};
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
        if let Err(e) = self.store(&new).await {
            let undone = self
                .iam
                .delete_access_key(&old, &user, &new.access_key_id)
                .await;
            return Err(RunError::Role(format!(
                "cannot store the new key {}: {e}; {}; the old key {} is unchanged",
                new.access_key_id,
                deleted_again(&new, undone),
                old.access_key_id
            )));
        }
        print(&format!("stored it in {}\n", self.where_kept()));
        if let Err(e) = self.verify(&new).await {
            return Err(self.put_back(&old, &new, &user, e).await);
        }
        self.delete_old(&old, &new, &user).await
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

    /// Puts `key` where the profile's key lives.
    async fn store(&self, key: &Credentials) -> Result<(), String> {
        match self.home {
            KeyHome::Store(name) => keystore::write(self.env, name, key)
                .await
                .map_err(|e| e.to_string()),
            KeyHome::Files => self.store_in_files(key).map_err(|e| e.to_string()),
        }
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

    /// The new key does not work: the old one goes back, the new one is
    /// deleted (with the old key, which still works).
    async fn put_back(
        &self,
        old: &Credentials,
        new: &Credentials,
        user: &str,
        e: IamError,
    ) -> RunError {
        let restored = match self.store(old).await {
            Ok(()) => format!("the old key {} is back in place", old.access_key_id),
            Err(why) => format!(
                "the old key {} could not be put back ({why}): restore it by hand",
                old.access_key_id
            ),
        };
        let undone = self
            .iam
            .delete_access_key(old, user, &new.access_key_id)
            .await;
        RunError::Role(format!(
            "the new key {} does not work: {e}; {restored}; {}",
            new.access_key_id,
            deleted_again(new, undone)
        ))
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
