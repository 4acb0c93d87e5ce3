//! The container tokens: one per role, whoever can read its file gets the
//! role.
//!
//! A token is derived, not stored: `base64url(HMAC-SHA256(state key,
//! role name ‖ digest of the role's definition))`. So it survives a restart
//! (a client holding it in `AWS_CONTAINER_AUTHORIZATION_TOKEN` keeps
//! working), it changes by itself when the role's definition changes (whoever
//! held the old role does not silently get the new one), and deleting the
//! state key rotates every token. The token replaced by a reload stays
//! accepted for [`ROTATION_GRACE`], so a client that read the file a moment
//! before is still served. Checks run in constant time.
//!
//! Files are written as `DIR/ROLE.token` with no trailing newline (every
//! SDK sends the file's bytes verbatim), in two steps: [`prepare`] writes a
//! temporary file with its owner and mode (everything that can fail), and
//! [`PreparedToken::commit`] renames it into place.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{RoleConfig, TokenFiles};
use crate::secret::Secret;

/// How long a replaced token stays accepted after a reload.
pub(crate) const ROTATION_GRACE: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// Derives role tokens from the state key.
#[derive(Clone)]
pub(crate) struct TokenMinter {
    keyed: Hmac<Sha256>,
}

impl std::fmt::Debug for TokenMinter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenMinter(** redacted **)")
    }
}

impl TokenMinter {
    pub(crate) fn new(key: &[u8]) -> Self {
        let keyed =
            Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
        TokenMinter { keyed }
    }

    /// The token of `role`: the same while the key and the role's
    /// definition stay the same.
    pub(crate) fn token_for(&self, role: &RoleConfig) -> Secret {
        // The definition's Debug form names no secret (ARNs, paths,
        // commands); only its digest enters the MAC.
        let definition = Sha256::digest(format!("{role:?}").as_bytes());
        let mut mac = self.keyed.clone();
        mac.update(b"imdsd container token v1\0");
        mac.update(role.name.as_bytes());
        mac.update(b"\0");
        mac.update(&definition);
        Secret::new(URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }
}

/// A role's current token, and the one a reload replaced while it is
/// still accepted.
#[derive(Debug, Clone)]
pub(crate) struct RoleToken {
    current: Secret,
    previous: Option<(Secret, DateTime<Utc>)>,
}

impl RoleToken {
    pub(crate) fn new(current: Secret) -> Self {
        RoleToken {
            current,
            previous: None,
        }
    }

    /// `current`, replacing `old`: when they differ, `old`'s token stays
    /// accepted until `until`.
    pub(crate) fn replacing(
        current: Secret,
        old: &RoleToken,
        until: DateTime<Utc>,
    ) -> Self {
        if old.current.expose() == current.expose() {
            return RoleToken {
                current,
                previous: old.previous.clone(),
            };
        }
        RoleToken {
            current,
            previous: Some((old.current.clone(), until)),
        }
    }

    /// Whether `presented` (the raw `Authorization` value) is this role's
    /// token at `now`. Constant time in the token's bytes.
    pub(crate) fn accepts(&self, presented: &[u8], now: DateTime<Utc>) -> bool {
        let matches =
            |token: &Secret| bool::from(token.expose().as_bytes().ct_eq(presented));
        let previous = self
            .previous
            .as_ref()
            .is_some_and(|(token, until)| now < *until && matches(token));
        matches(&self.current) | previous
    }
}

/// Why a token file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("cannot write container token file {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A token written to a temporary file next to its place, not yet visible.
/// Dropped without [`commit`](Self::commit), the temporary file goes.
#[derive(Debug)]
pub(crate) struct PreparedToken {
    tmp: PathBuf,
    path: PathBuf,
    committed: bool,
}

impl PreparedToken {
    /// Moves the token into place (atomically: readers see the old file or
    /// the new one, never a partial one).
    pub(crate) fn commit(mut self) -> Result<(), TokenFileError> {
        std::fs::rename(&self.tmp, &self.path).map_err(|source| {
            TokenFileError::Write {
                path: self.path.clone(),
                source,
            }
        })?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for PreparedToken {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Writes `role`'s token where `files` says, with its owner and mode, to a
/// temporary file. The directory is created (mode 0755) if missing.
pub(crate) fn prepare(
    files: &TokenFiles,
    role: &str,
    token: &Secret,
) -> Result<PreparedToken, TokenFileError> {
    let path = files.path(role);
    let write_err = |source| TokenFileError::Write {
        path: path.clone(),
        source,
    };
    safe_directory(&files.dir, &path)?;
    let tmp = files
        .dir
        .join(format!(".{role}.token.{}.tmp", std::process::id()));
    // A leftover of a crashed daemon with the same pid; `create_new` below
    // then refuses to follow anything put in its place.
    let _ = std::fs::remove_file(&tmp);
    let prepared = PreparedToken {
        tmp,
        path: path.clone(),
        committed: false,
    };
    write_file(&prepared.tmp, files, token).map_err(write_err)?;
    Ok(prepared)
}

/// Removes `role`'s token file, if it is there.
pub(crate) fn remove(files: &TokenFiles, role: &str) {
    let path = files.path(role);
    if let Err(e) = std::fs::remove_file(&path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "cannot remove a token file no longer used");
    }
}

/// Creates `dir` if needed. A directory others may write (a Kubernetes
/// `emptyDir` is 0777) is used with a warning: they could delete or replace
/// a token file, which denies the role to whoever reads it, but never gives
/// them a token (files are created 0600 under a fresh name, then renamed).
fn safe_directory(dir: &Path, file: &Path) -> Result<(), TokenFileError> {
    let write_err = |source| TokenFileError::Write {
        path: file.to_path_buf(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(write_err)?;
    let mode = std::fs::metadata(dir).map_err(write_err)?.mode() & 0o7777;
    if mode & 0o022 != 0 && mode & 0o1000 == 0 {
        tracing::warn!(
            dir = %dir.display(),
            mode = %format!("{mode:04o}"),
            "the token directory is writable by other users: they could delete or replace token files"
        );
    }
    Ok(())
}

fn write_file(tmp: &Path, files: &TokenFiles, token: &Secret) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)?;
    // No trailing newline: SDKs send the bytes as they are.
    file.write_all(token.expose().as_bytes())?;
    if files.owner.is_some() || files.group.is_some() {
        let uid = files.owner.map(rustix::fs::Uid::from_raw);
        let gid = files.group.map(rustix::fs::Gid::from_raw);
        rustix::fs::fchown(&file, uid, gid)?;
    }
    // Set after creation, so a umask (systemd's UMask=0077) cannot narrow it.
    file.set_permissions(std::fs::Permissions::from_mode(files.mode))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Flow;
    use std::time::Duration;

    fn role(name: &str, command: &str) -> RoleConfig {
        RoleConfig {
            name: name.into(),
            duration: Duration::from_secs(3600),
            flow: Flow::Process(command.into()),
        }
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn tokens_are_stable_per_key_and_definition() {
        let minter = TokenMinter::new(&[7; 32]);
        let dev = minter.token_for(&role("dev", "a"));
        assert_eq!(dev.expose(), minter.token_for(&role("dev", "a")).expose());
        assert_eq!(dev.expose().len(), 43);
        assert!(
            dev.expose()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_ne!(dev.expose(), minter.token_for(&role("prod", "a")).expose());
        assert_ne!(dev.expose(), minter.token_for(&role("dev", "b")).expose());
        let other_key = TokenMinter::new(&[8; 32]).token_for(&role("dev", "a"));
        assert_ne!(dev.expose(), other_key.expose());
        assert!(!format!("{minter:?}").contains('7'));
    }

    #[test]
    fn only_the_exact_token_is_accepted() {
        let token = RoleToken::new(Secret::new("abc123"));
        assert!(token.accepts(b"abc123", at(0)));
        for wrong in [&b""[..], b"abc12", b"abc1234", b"ABC123", b"Bearer abc123"] {
            assert!(!token.accepts(wrong, at(0)), "{wrong:?}");
        }
    }

    #[test]
    fn a_replaced_token_is_accepted_until_the_grace_ends() {
        let old = RoleToken::new(Secret::new("old"));
        let new = RoleToken::replacing(Secret::new("new"), &old, at(60));
        assert!(new.accepts(b"new", at(0)));
        assert!(new.accepts(b"old", at(59)));
        assert!(!new.accepts(b"old", at(60)));
        assert!(new.accepts(b"new", at(600)));
        // An unchanged token keeps what it had, and no grace starts.
        let same = RoleToken::replacing(Secret::new("new"), &new, at(900));
        assert!(same.accepts(b"old", at(59)) && !same.accepts(b"old", at(60)));
    }

    fn files(dir: &Path, mode: u32) -> TokenFiles {
        TokenFiles {
            dir: dir.to_path_buf(),
            owner: None,
            group: None,
            mode,
        }
    }

    #[test]
    fn token_files_have_no_newline_the_mode_asked_and_appear_on_commit() {
        let tmp = tempfile::tempdir().unwrap();
        let files = files(&tmp.path().join("nested/tokens"), 0o640);
        let prepared = prepare(&files, "dev", &Secret::new("tok")).unwrap();
        assert!(!files.path("dev").exists(), "not visible before commit");
        prepared.commit().unwrap();
        assert_eq!(std::fs::read(files.path("dev")).unwrap(), b"tok");
        let meta = std::fs::metadata(files.path("dev")).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o640);
        assert_eq!(std::fs::metadata(&files.dir).unwrap().mode() & 0o777, 0o755);
        // A prepared token that is dropped leaves nothing behind.
        drop(prepare(&files, "dev", &Secret::new("other")).unwrap());
        assert_eq!(std::fs::read(files.path("dev")).unwrap(), b"tok");
        assert_eq!(std::fs::read_dir(&files.dir).unwrap().count(), 1);
        remove(&files, "dev");
        assert!(!files.path("dev").exists());
    }

    #[test]
    fn a_directory_others_may_write_is_still_used() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o777))
            .unwrap();
        let files = files(tmp.path(), 0o600);
        prepare(&files, "dev", &Secret::new("t"))
            .unwrap()
            .commit()
            .unwrap();
        assert_eq!(std::fs::read(files.path("dev")).unwrap(), b"t");
    }
}
