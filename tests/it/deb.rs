//! The Debian package: `cargo deb --no-build` packs the binary with the
//! units, man pages, completions, examples and the conffile; its metadata
//! and contents are as documented; unpacked into a scratch root (`dpkg
//! -x`), its binary accepts its own conffile and `systemd-analyze verify`
//! accepts its units; `lintian` finds no error.
//!
//! By default it packs the binary this test run was built with
//! (`target/debug/imdsd`, `--profile dev`): a release build would add
//! about 7 CPU-minutes to every test run (and cannot happen inside it: it
//! would wait for the lock cargo test holds), while everything checked
//! here but the code generation is the same. `IMDSD_DEB_PROFILE=release`
//! packs `target/release/imdsd` instead, after `cargo build --release`.
//! Needs `cargo deb` (`cargo install --locked cargo-deb@3.8.0
//! --no-default-features`: 3.8 still accepts the dev profile, with a
//! warning) and Debian's `dpkg-dev` and `lintian`; missing tools fail the
//! test and say how to install them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use crate::systemd_units::{Staged, require_systemd_analyze, verify};

fn root_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `program args` and returns its output, or fails naming the fix.
fn run(program: &str, args: &[&str], install: &str) -> Output {
    let out = Command::new(program)
        .args(args)
        .current_dir(root_dir())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} ({e}): {install}"));
    assert!(
        out.status.success(),
        "`{program} {}` failed ({}):\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The release binary, checked to be this build's (same version and
/// commit as the test binary's own `imdsd`).
fn release_binary() -> PathBuf {
    let bin = root_dir().join("target/release/imdsd");
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo build --release` before this test",
        bin.display()
    );
    let built = text(&run(bin.to_str().unwrap(), &["--version"], "rebuild it"));
    let ours = text(&run(env!("CARGO_BIN_EXE_imdsd"), &["--version"], ""));
    assert_eq!(
        built, ours,
        "target/release/imdsd is stale: run `cargo build --release`"
    );
    bin
}

/// The package, built once per test run into a scratch directory.
fn package() -> &'static Path {
    static DEB: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, deb) = DEB.get_or_init(|| {
        let profile = match std::env::var("IMDSD_DEB_PROFILE").as_deref() {
            Ok("release") => {
                release_binary();
                "release"
            }
            _ => "dev",
        };
        let out_dir = tempfile::tempdir().unwrap();
        let out = run(
            "cargo",
            &[
                "deb",
                "--no-build",
                "--profile",
                profile,
                "--strip",
                "--output",
                out_dir.path().to_str().unwrap(),
            ],
            "install cargo-deb: `cargo install --locked cargo-deb --no-default-features`",
        );
        let deb = PathBuf::from(text(&out).trim().lines().last().unwrap());
        assert!(deb.is_file(), "cargo deb printed {deb:?}");
        (out_dir, deb)
    });
    deb
}

fn dpkg_deb(args: &[&str]) -> String {
    let mut all = args.to_vec();
    let deb = package().to_str().unwrap();
    all.insert(1, deb);
    text(&run("dpkg-deb", &all, "apt-get install -y dpkg-dev"))
}

/// The package unpacked into a scratch root.
fn unpacked() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let deb = package().to_str().unwrap();
    run(
        "dpkg",
        &["-x", deb, root.path().to_str().unwrap()],
        "apt-get install -y dpkg",
    );
    root
}

const FILES: [&str; 14] = [
    "./usr/bin/imdsd",
    "./usr/lib/systemd/system/imdsd.service",
    "./usr/lib/systemd/system/imdsd-transparent.service",
    "./usr/lib/systemd/system/imdsd-transparent.socket",
    "./usr/lib/systemd/user/imdsd.service",
    "./etc/imdsd/imdsd.toml",
    "./usr/share/doc/imdsd/examples/imdsd.toml",
    "./usr/share/doc/imdsd/examples/transparent.toml",
    "./usr/share/doc/imdsd/config.md",
    "./usr/share/man/man1/imdsd.1.gz",
    "./usr/share/doc/imdsd/changelog.Debian.gz",
    "./usr/share/bash-completion/completions/imdsd",
    "./usr/share/zsh/vendor-completions/_imdsd",
    "./usr/share/fish/vendor_completions.d/imdsd.fish",
];

#[test]
fn package_metadata_and_contents_are_as_documented() {
    let info = dpkg_deb(&["--info"]);
    let version = env!("CARGO_PKG_VERSION");
    for field in [
        "Package: imdsd".to_string(),
        format!("Version: {version}-1"),
        "Architecture: amd64".to_string(),
        "Section: admin".to_string(),
    ] {
        assert!(info.contains(&field), "no `{field}` in:\n{info}");
    }
    assert!(
        info.contains("Depends: libc6"),
        "no libc6 dependency:\n{info}"
    );
    for script in ["postinst", "prerm", "postrm"] {
        assert!(info.contains(script), "no {script} in:\n{info}");
    }
    let changelog = std::fs::read_to_string(root_dir().join("debian/changelog")).unwrap();
    assert!(
        changelog.starts_with(&format!("imdsd ({version}-1) ")),
        "debian/changelog's first entry is not {version}-1: add one for this version"
    );
    let conffiles = dpkg_deb(&["--info", "conffiles"]);
    assert_eq!(conffiles.trim(), "/etc/imdsd/imdsd.toml");

    let contents = dpkg_deb(&["--contents"]);
    let paths: Vec<&str> = contents
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .collect();
    for file in FILES {
        assert!(paths.contains(&file), "{file} missing from:\n{contents}");
    }
    let pages = paths
        .iter()
        .filter(|p| p.starts_with("./usr/share/man/man1/") && p.ends_with(".1.gz"))
        .count();
    assert_eq!(
        pages,
        std::fs::read_dir(root_dir().join("dist/man"))
            .unwrap()
            .count()
    );
}

#[test]
fn maintainer_scripts_reload_systemd_but_never_enable_or_start() {
    let root = tempfile::tempdir().unwrap();
    let deb = package().to_str().unwrap();
    let control = root.path().join("DEBIAN");
    run(
        "dpkg-deb",
        &["--control", deb, control.to_str().unwrap()],
        "apt-get install -y dpkg",
    );
    let postinst = std::fs::read_to_string(control.join("postinst")).unwrap();
    assert!(postinst.contains("systemctl daemon-reload"), "{postinst}");
    for script in ["preinst", "postinst", "prerm", "postrm"] {
        let Ok(text) = std::fs::read_to_string(control.join(script)) else {
            continue;
        };
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        for forbidden in [
            "enable",
            "systemctl start",
            " restart ",
            "deb-systemd-invoke",
        ] {
            assert!(
                !code.contains(forbidden),
                "{script} runs `{forbidden}`:\n{text}"
            );
        }
    }
}

#[test]
fn installed_binary_accepts_the_installed_conffile() {
    let root = unpacked();
    let bin = root.path().join("usr/bin/imdsd");
    let conf = root.path().join("etc/imdsd/imdsd.toml");
    let out = Command::new(&bin)
        .args(["check", "--config"])
        .arg(&conf)
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "imdsd check on the conffile: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let version = text(&run(bin.to_str().unwrap(), &["--version"], ""));
    let ours = text(&run(env!("CARGO_BIN_EXE_imdsd"), &["--version"], ""));
    assert_eq!(version, ours, "the package holds another build");
}

/// The installed units, with `/usr/bin/imdsd` pointed at the unpacked
/// binary (`verify` checks that every command exists).
fn staged_units(root: &Path, dir: &str, user: bool) -> Result<(), String> {
    let bin = root.join("usr/bin/imdsd");
    let mut staged = Staged {
        dir: tempfile::tempdir().unwrap(),
        files: Vec::new(),
    };
    let units = staged.dir.path().join("units");
    std::fs::create_dir(&units).unwrap();
    for entry in std::fs::read_dir(root.join(dir)).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let service = path.extension().is_some_and(|e| e == "service");
        assert!(
            !service || text.contains("/usr/bin/imdsd "),
            "{} does not run /usr/bin/imdsd",
            path.display()
        );
        let target = units.join(path.file_name().unwrap());
        std::fs::write(
            &target,
            text.replace("/usr/bin/imdsd ", &format!("{} ", bin.display())),
        )
        .unwrap();
        staged.files.push(target);
    }
    verify(&staged, user)
}

#[test]
fn systemd_analyze_verify_accepts_the_installed_units() {
    require_systemd_analyze();
    let root = unpacked();
    staged_units(root.path(), "usr/lib/systemd/system", false).unwrap();
    staged_units(root.path(), "usr/lib/systemd/user", true).unwrap();
}

#[test]
fn lintian_reports_no_error() {
    let deb = package().to_str().unwrap();
    let out = Command::new("lintian")
        .args(["--no-tag-display-limit", "--fail-on", "error", deb])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run lintian ({e}): apt-get install -y lintian")
        });
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let errors: Vec<&str> = report.lines().filter(|l| l.starts_with("E:")).collect();
    assert!(errors.is_empty(), "lintian errors:\n{report}");
    // 1 is a lintian run-time error (no report at all), 2 an error tag.
    assert_eq!(out.status.code(), Some(0), "lintian failed:\n{report}");
}
