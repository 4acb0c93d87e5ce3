//! The AWS profile files as texts to edit (`imdsd import`, `imdsd
//! rotate`): read whole, and written back atomically (a temporary file in
//! the same directory, renamed over the old one, with the old one's mode),
//! so a reader sees the old file or the new one, never half of each. A
//! symlinked file (dotfiles) is written where it points.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::RunError;
use crate::environment::Environment;

/// One profile file: where it is and what it holds now (empty when it does
/// not exist).
pub(crate) struct ProfileFile {
    pub(crate) path: PathBuf,
    pub(crate) text: Zeroizing<String>,
}

/// `~/.aws/config` and `~/.aws/credentials` (or where the variables point).
pub(crate) fn load(env: &Environment) -> Result<(ProfileFile, ProfileFile), RunError> {
    let config = crate::profile::config_file(env);
    let credentials = crate::profile::credentials_file(env);
    let (Some(config), Some(credentials)) = (config, credentials) else {
        return Err(RunError::Role(
            "HOME is not set, nor AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE".into(),
        ));
    };
    Ok((read(config)?, read(credentials)?))
}

fn read(path: PathBuf) -> Result<ProfileFile, RunError> {
    if path == Path::new("/dev/null") {
        return Err(RunError::Role(
            "an AWS profile file is /dev/null (AWS_CONFIG_FILE or \
             AWS_SHARED_CREDENTIALS_FILE): there is nothing to edit"
                .into(),
        ));
    }
    let text = match crate::read::file(&path, crate::read::LARGE) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(RunError::Role(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    Ok(ProfileFile {
        path,
        text: Zeroizing::new(text),
    })
}

/// Replaces `path` with `text`, keeping its mode (0600 for a new file, in
/// a new 0700 directory).
pub(crate) fn replace(path: &Path, text: &str) -> Result<(), RunError> {
    let failed = |what: &str, e: std::io::Error| {
        RunError::Role(format!("cannot {what} {}: {e}", path.display()))
    };
    let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mode = std::fs::metadata(&target)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o600);
    let dir = target.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| failed("create the directory of", e))?;
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    let temp = dir.join(format!(".{name}.imdsd-{}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temp)
        .and_then(|mut file| {
            file.set_permissions(std::fs::Permissions::from_mode(mode))?;
            file.write_all(text.as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&temp, &target));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(failed("write", e));
    }
    Ok(())
}
