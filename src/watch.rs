//! Watching files for changes: the config file, and the AWS profile files
//! that roles read.
//!
//! Directories are watched, not files: editors save by writing a new file
//! and renaming it over the old one (vim, VS Code), some delete and
//! recreate, Kubernetes swaps a `..data` symlink to a new directory, and
//! `aws sso login` writes a new cache file; in all of these the file itself
//! is replaced. A change to a file of interest starts a debounce; when
//! things are quiet, one message is sent. Whether the content really
//! changed is the receiver's business.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// How long things must be quiet before a message. An editor's save (write
/// a temporary file, rename it over) or Kubernetes' `..data` swap is a burst
/// of events within a few milliseconds; 20 ms covers it and keeps a reload
/// well under 100 ms. A slow writer can at worst cause one reload of a
/// half-written file, which is refused (the old config keeps serving) and
/// followed by the reload of the finished one.
pub(crate) const DEBOUNCE: Duration = Duration::from_millis(20);

/// A directory to watch, and which of its files matter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) dir: PathBuf,
    /// Watch its subdirectories too (created ones included).
    pub(crate) recursive: bool,
    /// The file names that matter; `None`: every file.
    pub(crate) names: Option<Vec<OsString>>,
}

/// Keeps the watch alive; dropping it stops watching.
pub(crate) struct FileWatch {
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

/// Starts watching `targets`. Each burst of changes to files that matter
/// yields one message on `changed`.
pub(crate) fn watch(
    targets: Vec<Target>,
    changed: mpsc::Sender<()>,
) -> Result<FileWatch, WatchError> {
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let dirs: Vec<(PathBuf, RecursiveMode)> = targets
        .iter()
        .map(|t| (t.dir.clone(), mode(t.recursive)))
        .collect();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
        if let Ok(event) = event
            && is_change(&event.kind)
            && targets.iter().any(|t| concerns(&event, t))
        {
            let _ = events_tx.send(());
        }
    })
    .map_err(|source| WatchError {
        path: dirs.first().map(|d| d.0.clone()).unwrap_or_default(),
        source,
    })?;
    for (dir, mode) in dirs {
        watcher.watch(&dir, mode).map_err(|source| WatchError {
            path: dir.clone(),
            source,
        })?;
    }
    tokio::spawn(debounce(events_rx, changed));
    Ok(FileWatch { _watcher: watcher })
}

fn mode(recursive: bool) -> RecursiveMode {
    if recursive {
        RecursiveMode::Recursive
    } else {
        RecursiveMode::NonRecursive
    }
}

/// Changes that can alter a file's content; reads (including our own)
/// are not.
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Other | EventKind::Any => false,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => true,
    }
}

/// Whether an event touches a file of `target` (an event without paths is
/// taken to, to be safe). Other files in the directory do not wake us.
fn concerns(event: &Event, target: &Target) -> bool {
    event.paths.is_empty()
        || event.paths.iter().any(|p| {
            p.starts_with(&target.dir) && matches_name(p, target.names.as_deref())
        })
}

fn matches_name(path: &Path, names: Option<&[OsString]>) -> bool {
    match names {
        None => true,
        Some(names) => path
            .file_name()
            .is_some_and(|n| names.iter().any(|w| w == n)),
    }
}

async fn debounce(mut events: mpsc::UnboundedReceiver<()>, changed: mpsc::Sender<()>) {
    while events.recv().await.is_some() {
        // Wait for a quiet period, however long the burst.
        loop {
            match tokio::time::timeout(DEBOUNCE, events.recv()).await {
                Ok(Some(())) => continue,
                Ok(None) => return,
                Err(_) => break,
            }
        }
        // A full queue means a message is already pending: that is enough.
        let _ = changed.try_send(());
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
    fn only_events_about_files_that_matter_count() {
        let event = |p: &str| {
            Event::new(EventKind::Modify(ModifyKind::Any)).add_path(PathBuf::from(p))
        };
        let named = Target {
            dir: PathBuf::from("/etc/imdsd"),
            recursive: false,
            names: Some(vec!["imdsd.toml".into(), "..data".into()]),
        };
        assert!(concerns(&event("/etc/imdsd/imdsd.toml"), &named));
        assert!(concerns(&event("/etc/imdsd/..data"), &named));
        assert!(!concerns(&event("/etc/imdsd/other.log"), &named));
        let any = Target {
            dir: PathBuf::from("/home/u/.aws/sso/cache"),
            recursive: false,
            names: None,
        };
        assert!(concerns(&event("/home/u/.aws/sso/cache/abc.json"), &any));
        assert!(!concerns(&event("/home/u/.aws/config"), &any));
        assert!(!concerns(&event("/etc/imdsd/imdsd.toml"), &any));
    }

    #[tokio::test]
    async fn a_burst_of_changes_sends_one_message() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, mut rx) = mpsc::channel(1);
        let target = Target {
            dir: dir.path().to_path_buf(),
            recursive: true,
            names: None,
        };
        let _watch = watch(vec![target], tx).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        // Let the recursive watch pick up the new directory.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _ = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await;
        for i in 0..5 {
            std::fs::write(dir.path().join("sub").join(format!("{i}.json")), "{}")
                .unwrap();
        }
        let got = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
        assert_eq!(got, Ok(Some(())), "a change in a new subdirectory is seen");
        let again = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await;
        assert!(again.is_err(), "one message for the burst");
    }
}
