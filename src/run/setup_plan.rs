//! `imdsd setup --user`, decided (pure): from what is on disk now, the
//! steps that make a developer machine serve the current AWS profile
//! through a `systemctl --user` daemon. Plain values in, plain steps out;
//! `setup.rs` gathers the facts and carries the steps out.
//!
//! Idempotent by construction: an existing config is never touched, the
//! unit is written only when it differs, and `enable --now` does nothing
//! to a unit that is already enabled and running.

use std::fmt;
use std::path::{Path, PathBuf};

/// The listener the written config gets (the default one).
const ENDPOINT: &str = "http://127.0.0.1:16925";

/// The user unit as shipped; its binary path is replaced by the running
/// binary's.
const USER_UNIT: &str = include_str!("../../systemd/imdsd-user.service");
const UNIT_BIN: &str = "/usr/local/bin/imdsd";

/// What setup looks at.
#[derive(Debug, Clone)]
pub(crate) struct Facts {
    /// `$XDG_CONFIG_HOME` (else `~/.config`).
    pub(crate) config_home: PathBuf,
    /// Whether `imdsd/imdsd.toml` exists under it.
    pub(crate) config_exists: bool,
    /// The AWS profile the CLI would use (`AWS_PROFILE`, else `default`).
    pub(crate) profile: String,
    /// The running binary, which the unit starts.
    pub(crate) exe: PathBuf,
    /// The installed user unit's text, if any.
    pub(crate) unit_installed: Option<String>,
}

/// One thing setup does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    WriteConfig {
        path: PathBuf,
        /// The AWS profile it serves.
        profile: String,
        contents: String,
    },
    KeepConfig {
        path: PathBuf,
    },
    WriteUnit {
        path: PathBuf,
        contents: String,
    },
    KeepUnit {
        path: PathBuf,
    },
    /// `systemctl --user ARGS`.
    Systemctl(Vec<&'static str>),
}

/// The steps, and the line to add to the shell profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) steps: Vec<Step>,
    pub(crate) profile_line: String,
}

/// Decides what `setup --user` does.
pub(crate) fn plan(facts: &Facts) -> Plan {
    let config = facts.config_home.join("imdsd/imdsd.toml");
    let unit = facts.config_home.join("systemd/user/imdsd.service");
    let wanted = user_unit(&facts.exe);
    let mut steps = vec![if facts.config_exists {
        Step::KeepConfig { path: config }
    } else {
        Step::WriteConfig {
            path: config,
            profile: facts.profile.clone(),
            contents: config_for_profile(&facts.profile),
        }
    }];
    if facts.unit_installed.as_deref() == Some(wanted.as_str()) {
        steps.push(Step::KeepUnit { path: unit });
    } else {
        steps.push(Step::WriteUnit {
            path: unit,
            contents: wanted,
        });
        steps.push(Step::Systemctl(vec!["daemon-reload"]));
    }
    steps.push(Step::Systemctl(vec!["enable", "--now", "imdsd.service"]));
    Plan {
        steps,
        profile_line: format!("export AWS_EC2_METADATA_SERVICE_ENDPOINT={ENDPOINT}"),
    }
}

/// A config serving one AWS profile on the default IMDS listener. The role
/// is named after the profile where that is a valid role name.
pub(crate) fn config_for_profile(profile: &str) -> String {
    let valid = |c: char| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c);
    let role: String = profile
        .chars()
        .map(|c| if valid(c) { c } else { '-' })
        .collect();
    format!(
        "# Written by `imdsd setup --user`: serves the AWS profile \"{profile}\"\n\
         # on http://127.0.0.1:16925 (IMDSv2). README.md has every key.\n\n\
         [roles.{role}]\nprofile = \"{profile}\"\n",
        profile = profile.replace('\\', "\\\\").replace('"', "\\\"")
    )
}

/// The shipped user unit, starting `exe`.
pub(crate) fn user_unit(exe: &Path) -> String {
    USER_UNIT.replace(UNIT_BIN, &exe.display().to_string())
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::WriteConfig { path, profile, .. } => write!(
                f,
                "write {}, serving the AWS profile `{profile}`",
                path.display()
            ),
            Step::KeepConfig { path } => write!(f, "keep {} (exists)", path.display()),
            Step::WriteUnit { path, .. } => write!(f, "install {}", path.display()),
            Step::KeepUnit { path } => write!(f, "keep {} (up to date)", path.display()),
            Step::Systemctl(args) => write!(f, "systemctl --user {}", args.join(" ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts {
            config_home: PathBuf::from("/home/a/.config"),
            config_exists: false,
            profile: "work".into(),
            exe: PathBuf::from("/usr/bin/imdsd"),
            unit_installed: None,
        }
    }

    fn shown(plan: &Plan) -> Vec<String> {
        plan.steps.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_fresh_machine_gets_config_unit_reload_and_enable() {
        let plan = plan(&facts());
        assert_eq!(
            shown(&plan),
            [
                "write /home/a/.config/imdsd/imdsd.toml, serving the AWS profile `work`",
                "install /home/a/.config/systemd/user/imdsd.service",
                "systemctl --user daemon-reload",
                "systemctl --user enable --now imdsd.service",
            ]
        );
        let Step::WriteConfig { contents, .. } = &plan.steps[0] else {
            panic!("{plan:?}");
        };
        assert!(contents.contains("[roles.work]\nprofile = \"work\"\n"));
        assert_eq!(
            plan.profile_line,
            "export AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:16925"
        );
    }

    #[test]
    fn a_second_run_keeps_everything_and_only_enables() {
        let mut f = facts();
        f.config_exists = true;
        f.unit_installed = Some(user_unit(&f.exe));
        assert_eq!(
            shown(&plan(&f)),
            [
                "keep /home/a/.config/imdsd/imdsd.toml (exists)",
                "keep /home/a/.config/systemd/user/imdsd.service (up to date)",
                "systemctl --user enable --now imdsd.service",
            ]
        );
    }

    #[test]
    fn a_changed_unit_is_rewritten_but_an_existing_config_never_is() {
        let mut f = facts();
        f.config_exists = true;
        f.unit_installed = Some("[Service]\nExecStart=/old/imdsd run\n".into());
        let steps = shown(&plan(&f));
        assert_eq!(steps[0], "keep /home/a/.config/imdsd/imdsd.toml (exists)");
        assert_eq!(
            steps[1],
            "install /home/a/.config/systemd/user/imdsd.service"
        );
        assert_eq!(steps[2], "systemctl --user daemon-reload");
    }

    #[test]
    fn the_unit_starts_the_running_binary() {
        let unit = user_unit(Path::new("/opt/x/imdsd"));
        assert!(unit.contains("ExecStart=/opt/x/imdsd run --config %E/imdsd/imdsd.toml"));
        assert!(!unit.contains(UNIT_BIN));
    }

    #[test]
    fn profile_names_that_are_no_role_names_are_made_valid() {
        let text = config_for_profile("sso/dev team");
        assert!(
            text.contains("[roles.sso-dev-team]\nprofile = \"sso/dev team\"\n"),
            "{text}"
        );
        let quoted = config_for_profile("a\"b");
        assert!(quoted.contains("profile = \"a\\\"b\""), "{quoted}");
    }
}
