//! The state directory and the token key kept in it.
//!
//! The directory is `$STATE_DIRECTORY` (set by systemd's `StateDirectory=`),
//! else `$XDG_STATE_HOME/imdsd`, else `/var/lib/imdsd` for root and
//! `~/.local/state/imdsd` (the XDG default) for anyone else. The key is 32
//! random bytes in `token.key`, mode 0600, created atomically on first
//! start so that two daemons starting at once agree on one key.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rand::RngCore;

use crate::environment::Environment;

pub(crate) const KEY_FILE: &str = "token.key";
pub(crate) const KEY_LEN: usize = 32;

/// Why the state directory or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "no state directory: set STATE_DIRECTORY or XDG_STATE_HOME (HOME is not set either)"
    )]
    NoDirectory,
    #[error("cannot use state directory {}: {source}", path.display())]
    Directory {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot {action} token key {}: {source}", path.display())]
    Key {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("token key {} is readable by other users (mode {mode:o}); run `chmod 600 {}`", path.display(), path.display())]
    KeyPermissions { path: PathBuf, mode: u32 },
    #[error("token key {} belongs to uid {uid}, not to this daemon's user", path.display())]
    KeyOwner { path: PathBuf, uid: u32 },
    #[error("token key {} holds {len} bytes, not {KEY_LEN}; delete it to make a new one (clients then need new tokens)", path.display())]
    KeyLength { path: PathBuf, len: usize },
}

/// Where state lives, decided from the environment and the user id.
pub(crate) fn state_dir(env: &Environment, uid: u32) -> Result<PathBuf, StateError> {
    if let Some(dirs) = env.get("STATE_DIRECTORY") {
        // systemd passes a colon-separated list when several are configured.
        let first = dirs.split(':').next().unwrap_or(dirs);
        return Ok(PathBuf::from(first));
    }
    if let Some(xdg) = env.get("XDG_STATE_HOME") {
        return Ok(Path::new(xdg).join("imdsd"));
    }
    if uid == 0 {
        return Ok(PathBuf::from("/var/lib/imdsd"));
    }
    env.get("HOME")
        .map(|home| Path::new(home).join(".local/state/imdsd"))
        .ok_or(StateError::NoDirectory)
}

/// The current process's real user id.
pub fn current_uid() -> u32 {
    rustix::process::getuid().as_raw()
}

/// Reads the token key in `dir`, creating both if needed.
pub(crate) fn load_or_create_key(dir: &Path) -> Result<[u8; KEY_LEN], StateError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| StateError::Directory {
            path: dir.to_path_buf(),
            source,
        })?;
    let path = dir.join(KEY_FILE);
    match read_key(&path) {
        Err(StateError::Key { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            create_key(dir, &path)?;
            read_key(&path)
        }
        other => other,
    }
}

fn read_key(path: &Path) -> Result<[u8; KEY_LEN], StateError> {
    let key_err = |source| StateError::Key {
        action: "read",
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(key_err)?;
    if meta.uid() != current_uid() {
        return Err(StateError::KeyOwner {
            path: path.to_path_buf(),
            uid: meta.uid(),
        });
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(StateError::KeyPermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    let bytes = zeroize::Zeroizing::new(std::fs::read(path).map_err(key_err)?);
    bytes
        .as_slice()
        .try_into()
        .map_err(|_| StateError::KeyLength {
            path: path.to_path_buf(),
            len: bytes.len(),
        })
}

/// Writes a fresh key to a temporary file and links it into place, which
/// fails if another process got there first; either way one key wins.
fn create_key(dir: &Path, path: &Path) -> Result<(), StateError> {
    let key_err = |action, source| StateError::Key {
        action,
        path: path.to_path_buf(),
        source,
    };
    let tmp = dir.join(format!(".{KEY_FILE}.{}", std::process::id()));
    // A leftover from a crash with the same pid; `create_new` below then
    // refuses to follow anything an attacker put in its place.
    let _ = std::fs::remove_file(&tmp);
    let mut key = zeroize::Zeroizing::new([0u8; KEY_LEN]);
    rand::rng().fill_bytes(key.as_mut());
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(key.as_ref()).and_then(|()| f.sync_all()));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(key_err("create", e));
    }
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(key_err("create", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_dir_precedence() {
        let env = Environment::from_pairs([
            ("STATE_DIRECTORY", "/var/lib/imdsd:/other"),
            ("XDG_STATE_HOME", "/x"),
        ]);
        assert_eq!(
            state_dir(&env, 1000).unwrap(),
            PathBuf::from("/var/lib/imdsd")
        );
        let env = Environment::from_pairs([("XDG_STATE_HOME", "/x"), ("HOME", "/h")]);
        assert_eq!(state_dir(&env, 1000).unwrap(), PathBuf::from("/x/imdsd"));
        let env = Environment::from_pairs([("HOME", "/h")]);
        assert_eq!(
            state_dir(&env, 1000).unwrap(),
            PathBuf::from("/h/.local/state/imdsd")
        );
        assert_eq!(state_dir(&env, 0).unwrap(), PathBuf::from("/var/lib/imdsd"));
        assert!(state_dir(&Environment::default(), 1000).is_err());
    }

    #[test]
    fn key_is_created_0600_once_and_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("nested/state");
        let first = load_or_create_key(&state).unwrap();
        let second = load_or_create_key(&state).unwrap();
        assert_eq!(first, second);
        let meta = std::fs::metadata(state.join(KEY_FILE)).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(&state).unwrap().mode() & 0o777, 0o700);
    }

    #[test]
    fn loose_permissions_and_wrong_length_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        std::fs::write(&path, [1u8; KEY_LEN]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            load_or_create_key(dir.path()),
            Err(StateError::KeyPermissions { .. })
        ));
        std::fs::write(&path, [1u8; 5]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = load_or_create_key(dir.path()).unwrap_err();
        assert!(err.to_string().contains("holds 5 bytes"), "{err}");
    }
}
