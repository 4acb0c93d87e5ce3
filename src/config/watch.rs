//! Watching the config file for changes.
//!
//! The *directory* is watched, not the file: editors save by writing a new
//! file and renaming it over the old one (vim, VS Code), some delete and
//! recreate, and Kubernetes swaps a `..data` symlink to a new directory, and
//! in all of these the watched file itself is replaced. Any change in the
//! directory (and in the directory of the symlink's target) starts a
//! debounce; when things are quiet, one reload is requested. Whether the
//! content really changed is the reloader's business.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// How long the directory must be quiet before a reload.
pub(crate) const DEBOUNCE: Duration = Duration::from_millis(50);

/// Keeps the watch alive; dropping it stops watching.
pub(crate) struct ConfigWatch {
    _watcher: RecommendedWatcher,
}

/// Why the watch could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot watch {}: {source}", path.display())]
pub(crate) struct WatchError {
    path: PathBuf,
    #[source]
    source: notify::Error,
}

/// Starts watching the directories that can change `config`. Each burst of
/// changes yields one message on `reload`.
pub(crate) fn watch(
    config: &Path,
    reload: mpsc::Sender<()>,
) -> Result<ConfigWatch, WatchError> {
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let names = relevant_names(config);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
        if let Ok(event) = event
            && is_change(&event.kind)
            && concerns(&event, &names)
        {
            let _ = events_tx.send(());
        }
    })
    .map_err(|source| WatchError {
        path: config.to_path_buf(),
        source,
    })?;
    for dir in directories(config) {
        watcher
            .watch(&dir, RecursiveMode::NonRecursive)
            .map_err(|source| WatchError {
                path: dir.clone(),
                source,
            })?;
    }
    tokio::spawn(debounce(events_rx, reload));
    Ok(ConfigWatch { _watcher: watcher })
}

/// Changes that can alter the file's content; reads (including our own)
/// are not.
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Other | EventKind::Any => false,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => true,
    }
}

/// File names whose changes can change the config: the file itself, its
/// symlink target, and Kubernetes' `..data` link.
fn relevant_names(config: &Path) -> Vec<std::ffi::OsString> {
    let mut names: Vec<std::ffi::OsString> =
        config.file_name().into_iter().map(Into::into).collect();
    if let Ok(target) = std::fs::canonicalize(config) {
        names.extend(target.file_name().map(Into::into));
    }
    names.push("..data".into());
    names
}

/// Whether an event touches one of `names` (an event without paths is
/// taken to, to be safe). Other files in the directory do not wake us.
fn concerns(event: &Event, names: &[std::ffi::OsString]) -> bool {
    event.paths.is_empty()
        || event
            .paths
            .iter()
            .any(|p| p.file_name().is_some_and(|n| names.iter().any(|w| w == n)))
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

async fn debounce(mut events: mpsc::UnboundedReceiver<()>, reload: mpsc::Sender<()>) {
    while events.recv().await.is_some() {
        // Wait for a quiet period, however long the burst.
        loop {
            match tokio::time::timeout(DEBOUNCE, events.recv()).await {
                Ok(Some(())) => continue,
                Ok(None) => return,
                Err(_) => break,
            }
        }
        // A full queue means a reload is already pending: that is enough.
        let _ = reload.try_send(());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, ModifyKind};

    #[test]
    fn reads_do_not_count_as_changes() {
        assert!(!is_change(&EventKind::Access(AccessKind::Open(
            AccessMode::Read
        ))));
        assert!(!is_change(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(is_change(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(is_change(&EventKind::Create(CreateKind::File)));
        assert!(is_change(&EventKind::Modify(ModifyKind::Any)));
    }

    #[test]
    fn only_events_about_the_config_count() {
        let names = relevant_names(Path::new("/etc/imdsd/imdsd.toml"));
        let event = |p: &str| {
            Event::new(EventKind::Modify(ModifyKind::Any)).add_path(PathBuf::from(p))
        };
        assert!(concerns(&event("/etc/imdsd/imdsd.toml"), &names));
        assert!(concerns(&event("/etc/imdsd/..data"), &names));
        assert!(!concerns(&event("/etc/imdsd/other.log"), &names));
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
    }
}
