//! Container token files: `DIR/ROLE.token`, with no trailing newline
//! (every SDK sends the file's bytes verbatim), written in two steps:
//! [`prepare`] writes a temporary file with its owner and mode (everything
//! that can fail), and [`PreparedToken::commit`] renames it into place, so
//! a reader sees the old token or the new one, never a partial file.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::config::TokenFiles;
use crate::secret::Secret;

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
