//! `imdsd setup --user` in a scratch HOME, with a fake `systemctl` first on
//! `PATH` that records its arguments: `--dry-run` changes nothing; a run
//! writes a config that `imdsd check` accepts and a unit starting this
//! binary, reloads and enables; a second run changes nothing it need not.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};

use crate::binary::check;

const BIN: &str = env!("CARGO_BIN_EXE_imdsd");

struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let fake = bin.join("systemctl");
        let log = dir.path().join("systemctl.log");
        std::fs::write(
            &fake,
            format!("#!/bin/sh\necho \"$*\" >> '{}'\n", log.display()),
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        Home { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn setup(&self, args: &[&str]) -> Output {
        self.setup_with(args, &[])
    }

    fn setup_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let path = format!(
            "{}:{}",
            self.path("bin").display(),
            std::env::var("PATH").unwrap()
        );
        let out = Command::new(BIN)
            .args(["setup", "--user"])
            .args(args)
            .env_clear()
            .env("HOME", self.dir.path())
            .env("PATH", path)
            .env("AWS_PROFILE", "admin")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        out
    }

    fn systemctl_calls(&self) -> String {
        std::fs::read_to_string(self.path("systemctl.log")).unwrap_or_default()
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let home = Home::new();
    let out = stdout(&home.setup(&["--dry-run"]));
    assert!(out.contains("nothing changed"), "{out}");
    assert!(
        out.contains(".config/imdsd/imdsd.toml, serving the AWS profile `admin`"),
        "{out}"
    );
    // ... and what the config would say.
    assert!(
        out.contains("    | [roles.admin]\n    | profile = \"admin\"\n"),
        "{out}"
    );
    assert!(
        out.contains("systemctl --user enable --now imdsd.service"),
        "{out}"
    );
    assert!(!home.path(".config").exists());
    assert_eq!(home.systemctl_calls(), "");
}

/// Keys in `[default]` would win over what setup installs: setup says
/// so, naming the file and not the key.
#[test]
fn setup_warns_about_default_keys_that_would_win() {
    let home = Home::new();
    std::fs::create_dir(home.path(".aws")).unwrap();
    std::fs::write(
        home.path(".aws/credentials"),
        "[default]\naws_access_key_id = AKIASETUPKEY00000000\naws_secret_access_key = x\n",
    )
    .unwrap();
    let out = stdout(&home.setup_with(&["--dry-run"], &[("AWS_PROFILE", "")]));
    let file = home.path(".aws/credentials");
    assert!(
        out.contains(&format!(
            "Warning: {}: the default profile has `aws_access_key_id`",
            file.display()
        )),
        "{out}"
    );
    assert!(!out.contains("AKIASETUPKEY"), "{out}");
    let out = stdout(&home.setup(&["--dry-run"]));
    assert!(
        !out.contains("Warning"),
        "AWS_PROFILE selects another profile: {out}"
    );
}

#[test]
fn setup_writes_config_and_unit_then_enables_and_is_idempotent() {
    let home = Home::new();
    let out = stdout(&home.setup(&[]));
    assert!(
        out.contains("export AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:16925"),
        "{out}"
    );
    let config = home.path(".config/imdsd/imdsd.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("profile = \"admin\""), "{text}");
    let mode = std::fs::metadata(&config).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let checked = check(&config);
    assert!(checked.status.success(), "{checked:?}");
    let unit =
        std::fs::read_to_string(home.path(".config/systemd/user/imdsd.service")).unwrap();
    assert!(unit.contains(&format!("ExecStart={BIN} run")), "{unit}");
    assert_eq!(
        home.systemctl_calls(),
        "--user daemon-reload\n--user enable --now imdsd.service\n"
    );

    // Again, with the config edited by hand: kept, no reload.
    std::fs::write(&config, "# mine\n").unwrap();
    let again = stdout(&home.setup(&[]));
    assert!(
        again.contains("(exists)") && again.contains("(up to date)"),
        "{again}"
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "# mine\n");
    assert_eq!(
        home.systemctl_calls(),
        "--user daemon-reload\n--user enable --now imdsd.service\n\
         --user enable --now imdsd.service\n"
    );
}
