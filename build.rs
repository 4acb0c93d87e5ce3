//! Embeds the git commit in `imdsd --version` when built from a checkout.
//!
//! Sets `IMDSD_GIT_DESCRIBE` (`git describe --always --tags`, empty outside
//! a checkout or without git) for every target of the package, so the
//! version test compares against what this very build embedded rather
//! than the checkout's HEAD, which may have moved on since. Reruns when
//! HEAD or the branch it points to moves, not on every edit.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let describe =
        git(&["describe", "--always", "--tags", "--abbrev=12"]).unwrap_or_default();
    println!("cargo:rustc-env=IMDSD_GIT_DESCRIBE={describe}");
    for file in watched_git_files() {
        println!("cargo:rerun-if-changed={}", file.display());
    }
}

/// The output of `git ARGS` in the package directory, if git succeeds.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}

/// HEAD, the ref it names and `packed-refs`: the files that change when
/// a commit is made or checked out (worktrees keep HEAD apart from refs).
/// Only existing files: cargo reruns every time for a missing one.
fn watched_git_files() -> Vec<PathBuf> {
    let (Some(git_dir), Some(common)) = (
        git(&["rev-parse", "--absolute-git-dir"]),
        git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]),
    ) else {
        return Vec::new();
    };
    let mut files = vec![Path::new(&git_dir).join("HEAD")];
    let common = Path::new(&common);
    if let Some(head_ref) = git(&["symbolic-ref", "-q", "HEAD"]) {
        files.push(common.join(head_ref));
    }
    files.push(common.join("packed-refs"));
    files.retain(|f| f.is_file());
    files
}
