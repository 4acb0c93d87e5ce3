//! `imdsd setup --user [--dry-run]`: gathers the facts `setup_plan`
//! decides from, prints the plan, and (unless `--dry-run`) carries it out:
//! writes files (the config 0600, in a 0700 directory) and runs
//! `systemctl --user` as found on `PATH`.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::print;
use super::setup_plan::{Facts, Step, plan};
use crate::environment::Environment;

/// Why setup stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SetupError {
    #[error("neither XDG_CONFIG_HOME nor HOME is set: where would the config go?")]
    NoHome,
    #[error("cannot find the running imdsd binary: {0}")]
    Exe(#[source] io::Error),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot run `systemctl --user {args}`: {source}")]
    Spawn {
        args: String,
        #[source]
        source: io::Error,
    },
    #[error("`systemctl --user {args}` failed ({status})")]
    Systemctl {
        args: String,
        status: std::process::ExitStatus,
    },
}

/// Runs `imdsd setup --user`.
pub(crate) fn setup_user(dry_run: bool, env: &Environment) -> Result<(), SetupError> {
    let facts = gather(env)?;
    let plan = plan(&facts);
    let mut out = String::from(if dry_run {
        "imdsd setup --user would (--dry-run: nothing changed):\n"
    } else {
        ""
    });
    for step in &plan.steps {
        if !dry_run {
            apply(step)?;
        }
        out.push_str(&format!("  {step}\n"));
        // What it would write, for the one file the user may want to
        // check first (the unit is the shipped one).
        if let (true, Step::WriteConfig { contents, .. }) = (dry_run, step) {
            for line in contents.lines() {
                out.push_str(format!("    | {line}").trim_end());
                out.push('\n');
            }
        }
    }
    out.push_str(&format!(
        "Add this line to your shell profile (~/.bashrc, ~/.zshrc, ...):\n  {}\n",
        plan.profile_line
    ));
    for w in super::shadow_warnings(env) {
        out.push_str(&format!("Warning: {w}\n"));
    }
    print(&out);
    Ok(())
}

fn gather(env: &Environment) -> Result<Facts, SetupError> {
    let config_home = match env.get("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env.get("HOME").ok_or(SetupError::NoHome)?).join(".config"),
    };
    let unit = config_home.join("systemd/user/imdsd.service");
    Ok(Facts {
        config_exists: config_home.join("imdsd/imdsd.toml").exists(),
        unit_installed: std::fs::read_to_string(unit).ok(),
        profile: crate::profile::selected(env),
        exe: std::env::current_exe().map_err(SetupError::Exe)?,
        config_home,
    })
}

fn apply(step: &Step) -> Result<(), SetupError> {
    match step {
        Step::KeepConfig { .. } | Step::KeepUnit { .. } => Ok(()),
        Step::WriteConfig { path, contents, .. } => write(path, contents, 0o600, 0o700),
        Step::WriteUnit { path, contents } => write(path, contents, 0o644, 0o755),
        Step::Systemctl(args) => systemctl(args),
    }
}

/// Writes `path` (mode `mode`), creating missing parents with `dir_mode`.
fn write(
    path: &Path,
    contents: &str,
    mode: u32,
    dir_mode: u32,
) -> Result<(), SetupError> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let err = |source| SetupError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(dir_mode)
            .create(dir)
            .map_err(err)?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .and_then(|mut f| f.write_all(contents.as_bytes()))
        .map_err(err)
}

fn systemctl(args: &[&str]) -> Result<(), SetupError> {
    let shown = args.join(" ");
    let status = Command::new("systemctl")
        .arg("--user")
        .args(args)
        .status()
        .map_err(|source| SetupError::Spawn {
            args: shown.clone(),
            source,
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(SetupError::Systemctl {
            args: shown,
            status,
        })
    }
}
