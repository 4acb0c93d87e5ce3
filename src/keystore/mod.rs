//! The Secret Service store: long-term AWS keys kept in the desktop's
//! keyring (GNOME Keyring, KWallet, KeePassXC) over D-Bus, through the
//! `secret-service` crate, instead of in `~/.aws/credentials`. `imdsd
//! import` writes them, the daemon reads them on every refresh of a
//! profile whose `credential_process` is imdsd's own (and for `source =
//! "keyring:NAME"`), `imdsd rotate` replaces them.
//!
//! - [`item`]: the items' label and attributes, and where the session bus
//!   is (pure).
//!
//! Every call connects anew (the store may have been started, unlocked or
//! locked since), is bounded by [`TIMEOUT`] and never prompts: a locked
//! keyring is an error saying to unlock it, since a daemon has no one to
//! answer a prompt. The secret travels encrypted on the bus (the `dh`
//! session, as libsecret does). No error holds a secret.

pub(crate) mod item;

use std::time::Duration;

use secret_service::{EncryptionType, SecretService};
use zeroize::Zeroizing;

use crate::credentials::{Credentials, section};
use crate::environment::Environment;

/// How long one store operation may take.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

/// What to do when the store cannot be used.
const INSTEAD: &str = "or keep the keys in a systemd credential instead \
                       (`imdsd import --to systemd-creds`, `source = \"credential:NAME\"`)";

/// Why the store gave or took no keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum StoreError {
    #[error(
        "the Secret Service (the desktop keyring: GNOME Keyring, KWallet or KeePassXC, \
         over D-Bus) cannot be reached: {reason}; start and unlock your keyring, {INSTEAD}"
    )]
    Unavailable { reason: String },
    #[error(
        "the Secret Service's keyring is locked: unlock it (log in to the desktop, or \
         unlock the `login` keyring in your keyring app), {INSTEAD}"
    )]
    Locked,
    #[error(
        "the Secret Service holds no keys for AWS profile `{profile}` (no item `{}`): \
         run `imdsd import {profile}`",
        item::label(profile)
    )]
    NotFound { profile: String },
    #[error(
        "the Secret Service item `{}` is not an AWS credentials section: {problem}; \
         run `imdsd import {profile}` again",
        item::label(profile)
    )]
    Malformed { profile: String, problem: String },
    #[error("the Secret Service failed: {reason}; {INSTEAD}")]
    Failed { reason: String },
}

impl StoreError {
    /// The error code a 503 and `imdsd status` show.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            StoreError::Locked => "SecretServiceLocked",
            StoreError::NotFound { .. } => "NotInSecretService",
            StoreError::Malformed { .. } => "SecretServiceItemMalformed",
            StoreError::Unavailable { .. } | StoreError::Failed { .. } => {
                "SecretServiceUnavailable"
            }
        }
    }
}

/// Profile `profile`'s keys.
pub(crate) async fn read(
    env: &Environment,
    profile: &str,
) -> Result<Credentials, StoreError> {
    bounded(async {
        let ss = connect(env).await?;
        let found = ss
            .search_items(item::attributes(profile))
            .await
            .map_err(failed)?;
        let Some(item) = found.unlocked.first() else {
            return Err(match found.locked.is_empty() {
                true => StoreError::NotFound {
                    profile: profile.into(),
                },
                false => StoreError::Locked,
            });
        };
        let secret = Zeroizing::new(item.get_secret().await.map_err(failed)?);
        let malformed = |problem: String| StoreError::Malformed {
            profile: profile.into(),
            problem,
        };
        let text = std::str::from_utf8(&secret)
            .map_err(|_| malformed("it is not UTF-8 text".into()))?;
        section::parse(text).map_err(malformed)
    })
    .await
}

/// Stores `keys` as profile `profile`'s item, replacing one already there.
pub(crate) async fn write(
    env: &Environment,
    profile: &str,
    keys: &Credentials,
) -> Result<(), StoreError> {
    bounded(async {
        let ss = connect(env).await?;
        let collection = unlocked_collection(&ss).await?;
        let text = section::render(keys);
        collection
            .create_item(
                &item::label(profile),
                item::attributes(profile),
                text.as_bytes(),
                true,
                "text/plain",
            )
            .await
            .map_err(failed)?;
        Ok(())
    })
    .await
}

/// Whether the store can take keys now (reachable, unlocked), before
/// anything is changed.
pub(crate) async fn probe(env: &Environment) -> Result<(), StoreError> {
    bounded(async {
        let ss = connect(env).await?;
        unlocked_collection(&ss).await.map(drop)
    })
    .await
}

async fn bounded<T>(
    work: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(TIMEOUT, work)
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Unavailable {
                reason: format!("it did not answer within {}s", TIMEOUT.as_secs()),
            })
        })
}

/// A session with the Secret Service on the session bus.
async fn connect(env: &Environment) -> Result<SecretService<'static>, StoreError> {
    let unavailable = |reason: String| StoreError::Unavailable { reason };
    let address = item::bus_address(env).map_err(unavailable)?;
    if let item::BusAddress::Socket(path) = &address
        && !path.exists()
    {
        return Err(unavailable(format!(
            "no D-Bus session: DBUS_SESSION_BUS_ADDRESS is not set and {} does not exist",
            path.display()
        )));
    }
    let shown = address.to_dbus();
    let conn = zbus::connection::Builder::address(shown.as_str())
        .map_err(|e| unavailable(format!("bad D-Bus address `{shown}`: {e}")))?
        .build()
        .await
        .map_err(|e| {
            unavailable(format!("cannot connect to the D-Bus session {shown}: {e}"))
        })?;
    SecretService::connect_with_existing(EncryptionType::Dh, conn)
        .await
        .map_err(|e| {
            unavailable(format!(
                "no Secret Service on the D-Bus session {shown}: {e}"
            ))
        })
}

/// The default collection (the `login` keyring), if it is unlocked.
async fn unlocked_collection<'a>(
    ss: &'a SecretService<'a>,
) -> Result<secret_service::Collection<'a>, StoreError> {
    let collection = ss.get_default_collection().await.map_err(|e| match e {
        secret_service::Error::NoResult => StoreError::Unavailable {
            reason: "it has no default keyring".into(),
        },
        other => failed(other),
    })?;
    if collection.is_locked().await.map_err(failed)? {
        return Err(StoreError::Locked);
    }
    Ok(collection)
}

fn failed(e: secret_service::Error) -> StoreError {
    match e {
        secret_service::Error::Locked | secret_service::Error::Prompt => {
            StoreError::Locked
        }
        secret_service::Error::Unavailable => StoreError::Unavailable {
            reason: e.to_string(),
        },
        other => StoreError::Failed {
            reason: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_secret_service_and_what_to_do() {
        let locked = StoreError::Locked.to_string();
        assert!(locked.starts_with("the Secret Service's keyring is locked: unlock it"));
        assert!(
            locked.contains("imdsd import --to systemd-creds"),
            "{locked}"
        );
        let gone = StoreError::Unavailable {
            reason: "no D-Bus session".into(),
        }
        .to_string();
        assert!(gone.contains("Secret Service") && gone.contains("no D-Bus session"));
        assert!(gone.contains("systemd credential"), "{gone}");
        let missing = StoreError::NotFound {
            profile: "dev".into(),
        }
        .to_string();
        assert_eq!(
            missing,
            "the Secret Service holds no keys for AWS profile `dev` (no item \
             `imdsd: AWS profile dev`): run `imdsd import dev`"
        );
        assert_eq!(StoreError::Locked.code(), "SecretServiceLocked");
    }

    #[tokio::test]
    async fn no_session_bus_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let env =
            Environment::from_pairs([("XDG_RUNTIME_DIR", dir.path().to_str().unwrap())]);
        let err = read(&env, "dev").await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains("no D-Bus session"), "{text}");
        assert!(
            text.contains(&dir.path().join("bus").display().to_string()),
            "{text}"
        );
        assert_eq!(probe(&env).await.unwrap_err(), err);
    }
}
