//! The files checked into `dist/` for the Debian package are exactly what
//! they are generated from: the man page and completion scripts from the
//! real command tree (so they never drift from the parser), the systemd
//! units from `systemd/` with the packaged binary's path. `imdsd
//! completions` prints the scripts, and `imdsd --version` shows the commit
//! this build embedded.
//!
//! After changing the command line, regenerate with
//! `IMDSD_REGENERATE=1 cargo test --test it manual`.

use std::path::{Path, PathBuf};
use std::process::Command;

use imdsd::CompletionShell;

const BIN: &str = env!("CARGO_BIN_EXE_imdsd");

/// The units in `systemd/`, and the name each is shipped under in `dist/`.
const UNITS: [(&str, &str); 4] = [
    ("imdsd.service", "systemd/system/imdsd.service"),
    (
        "imdsd-transparent.service",
        "systemd/system/imdsd-transparent.service",
    ),
    (
        "imdsd-transparent.socket",
        "systemd/system/imdsd-transparent.socket",
    ),
    ("imdsd-user.service", "systemd/user/imdsd.service"),
];

/// A unit of `systemd/` as the package ships it: the binary in /usr/bin.
fn packaged_unit(file: &str) -> Vec<u8> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("systemd")
        .join(file);
    let text = std::fs::read_to_string(source).unwrap();
    format!(
        "# Shipped by the imdsd Debian package: systemd/{file} with the binary\n\
         # in /usr/bin (the install steps below are for a build from source).\n\
         # Change settings with a drop-in (`systemctl edit`), not here.\n{}",
        text.replace("/usr/local/bin/imdsd", "/usr/bin/imdsd")
    )
    .into_bytes()
}

/// Every generated file: its path under `dist/` and its expected bytes.
fn generated() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = imdsd::man_pages()
        .into_iter()
        .map(|(name, page)| (format!("man/{name}"), page))
        .collect();
    for (shell, rel) in SCRIPTS {
        files.push((rel.to_string(), imdsd::completions(shell)));
    }
    for (file, rel) in UNITS {
        files.push((rel.to_string(), packaged_unit(file)));
    }
    files
}

/// Each shell's completion script in `dist/`.
const SCRIPTS: [(CompletionShell, &str); 3] = [
    (CompletionShell::Bash, "completions/imdsd.bash"),
    (CompletionShell::Zsh, "completions/_imdsd"),
    (CompletionShell::Fish, "completions/imdsd.fish"),
];

fn dist(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dist").join(rel)
}

#[test]
fn dist_files_match_the_command_tree() {
    let regenerate = std::env::var_os("IMDSD_REGENERATE").is_some();
    let mut stale = Vec::new();
    for (rel, expected) in generated() {
        let path = dist(&rel);
        if regenerate {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &expected).unwrap();
        } else if std::fs::read(&path).ok().as_deref() != Some(&expected[..]) {
            stale.push(rel);
        }
    }
    assert!(
        stale.is_empty(),
        "dist/{stale:?} differ from what the command line generates; \
         regenerate with `IMDSD_REGENERATE=1 cargo test --test it manual` \
         and commit the result"
    );
}

#[test]
fn man_pages_document_every_subcommand() {
    let pages = imdsd::man_pages();
    let names: Vec<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
    for sub in [
        "imdsd.1",
        "imdsd-run.1",
        "imdsd-check.1",
        "imdsd-completions.1",
    ] {
        assert!(names.contains(&sub), "no {sub} in {names:?}");
    }
    let (_, run) = pages.iter().find(|(n, _)| n == "imdsd-run.1").unwrap();
    let run = String::from_utf8_lossy(run);
    assert!(
        run.contains("\\-\\-config"),
        "imdsd-run.1 lacks --config:\n{run}"
    );
    let commit = env!("IMDSD_GIT_DESCRIBE");
    for (name, page) in &pages {
        let page = String::from_utf8_lossy(page);
        assert!(
            commit.is_empty() || !page.contains(commit),
            "{name} carries the commit (it would go stale on every commit)"
        );
    }
}

#[test]
fn completions_command_prints_the_shipped_scripts() {
    for (shell, rel) in SCRIPTS {
        let name = format!("{shell:?}").to_lowercase();
        let out = Command::new(BIN)
            .args(["completions", &name])
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {out:?}");
        let shipped = std::fs::read(dist(rel)).unwrap();
        assert_eq!(
            out.stdout, shipped,
            "`imdsd completions {name}` vs dist/{rel}"
        );
    }
    let bash = String::from_utf8(imdsd::completions(CompletionShell::Bash)).unwrap();
    assert!(bash.contains("credential-process") && bash.contains("--socket"));
}

#[test]
fn version_names_the_commit_this_build_embedded() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let embedded = env!("IMDSD_GIT_DESCRIBE");
    let version = env!("CARGO_PKG_VERSION");
    if embedded.is_empty() {
        assert_eq!(text, format!("imdsd {version}\n"));
        assert!(
            !Path::new(env!("CARGO_MANIFEST_DIR")).join(".git").exists(),
            "built from a checkout, yet no commit was embedded"
        );
        return;
    }
    assert_eq!(text, format!("imdsd {version} ({embedded})\n"));
    // The embedded commit is one of this repository's commits (compared
    // with what the build saw, not with HEAD, which a commit made during
    // the test run would move).
    let hash = embedded.rsplit("-g").next().unwrap();
    let known = Command::new("git")
        .args(["cat-file", "-e", &format!("{hash}^{{commit}}")])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(
        known.success(),
        "{embedded} is not a commit of this checkout"
    );
}
