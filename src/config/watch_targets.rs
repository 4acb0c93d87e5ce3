//! What to watch for changes to the config file: its directory, and that
//! of its symlink's target (Kubernetes mounts a ConfigMap as a symlink to
//! a `..data` directory that it swaps). The watching is `crate::watch`'s.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::watch::Target;

/// The directories whose changes can change `config`, each with the names
/// that matter in it.
pub(crate) fn targets(config: &Path) -> Vec<Target> {
    let names = relevant_names(config);
    directories(config)
        .into_iter()
        .map(|dir| Target {
            dir,
            recursive: false,
            names: Some(names.clone()),
        })
        .collect()
}

/// File names whose changes can change the config: the file itself, its
/// symlink target, and Kubernetes' `..data` link.
fn relevant_names(config: &Path) -> Vec<OsString> {
    let mut names: Vec<OsString> =
        config.file_name().into_iter().map(Into::into).collect();
    if let Ok(target) = std::fs::canonicalize(config) {
        names.extend(target.file_name().map(Into::into));
    }
    names.push("..data".into());
    names
}

/// The file's own directory, and that of its resolved target when it is a
/// symlink elsewhere.
fn directories(config: &Path) -> Vec<PathBuf> {
    let mut dirs = HashSet::new();
    let own = config
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    dirs.insert(own.to_path_buf());
    if let Ok(target) = std::fs::canonicalize(config)
        && let Some(parent) = target.parent()
    {
        dirs.insert(parent.to_path_buf());
    }
    dirs.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_its_symlink_target_and_kubernetes_data_link_matter() {
        let names = relevant_names(Path::new("/etc/imdsd/imdsd.toml"));
        assert_eq!(names, vec![OsString::from("imdsd.toml"), "..data".into()]);
    }

    #[test]
    fn watches_the_directory_and_a_symlink_targets_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::write(real.join("imdsd.toml"), "").unwrap();
        let link_dir = tmp.path().join("link");
        std::fs::create_dir(&link_dir).unwrap();
        std::os::unix::fs::symlink(real.join("imdsd.toml"), link_dir.join("imdsd.toml"))
            .unwrap();
        let mut dirs = directories(&link_dir.join("imdsd.toml"));
        dirs.sort();
        let real = std::fs::canonicalize(&real).unwrap();
        assert_eq!(dirs.len(), 2);
        assert!(dirs.contains(&link_dir) && dirs.contains(&real), "{dirs:?}");
        assert_eq!(
            directories(Path::new("imdsd.toml")),
            vec![PathBuf::from(".")]
        );
        let targets = targets(&link_dir.join("imdsd.toml"));
        assert!(targets.iter().all(|t| !t.recursive && t.names.is_some()));
    }
}
