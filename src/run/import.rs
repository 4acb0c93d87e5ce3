//! `imdsd import --to systemd-creds [PROFILE...]`: moves an AWS profile's
//! long-term keys into an encrypted systemd credential
//! (`systemd-creds encrypt`: TPM2 or the host key), for a system service
//! that reads them with `LoadCredentialEncrypted=` and
//! `source = "credential:NAME"`.
//!
//! What it would do is decided first ([`plan`], pure), then carried out;
//! `--dry-run` prints the plan only. A credential file already there is
//! left as it is (running it again changes nothing). No key is ever
//! printed: the section goes to `systemd-creds` on its stdin.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{RunError, print};
use crate::config::value::credential_name_problem;
use crate::credentials::section;
use crate::environment::Environment;
use crate::profile::Profiles;

/// Where credential files go by default.
const DEFAULT_DIR: &str = "/etc/imdsd";

/// What `imdsd import --to systemd-creds` was asked for.
pub(crate) struct ImportRequest {
    /// The profiles; every one with long-term keys when empty.
    pub(crate) profiles: Vec<String>,
    pub(crate) output_dir: Option<PathBuf>,
    pub(crate) dry_run: bool,
}

/// One profile's move: its keys go to `file` as credential `name`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Step {
    pub(crate) profile: String,
    pub(crate) file: PathBuf,
    /// Already there: left as it is.
    pub(crate) exists: bool,
}

/// The steps for `wanted` (every profile with keys when empty), or what is
/// wrong with the request (pure; `exists` says which files are there).
pub(crate) fn plan(
    profiles: &Profiles,
    wanted: &[String],
    dir: &Path,
    exists: impl Fn(&Path) -> bool,
) -> Result<Vec<Step>, String> {
    let names: Vec<&str> = if wanted.is_empty() {
        profiles.with_static_keys()
    } else {
        wanted.iter().map(String::as_str).collect()
    };
    if names.is_empty() {
        return Err("no profile holds long-term keys (aws_access_key_id and \
                    aws_secret_access_key): nothing to import"
            .into());
    }
    names
        .into_iter()
        .map(|name| {
            if profiles.static_keys(name).is_none() {
                return Err(format!(
                    "profile `{name}` holds no long-term keys (aws_access_key_id and \
                     aws_secret_access_key) of its own"
                ));
            }
            if let Some(problem) = credential_name_problem(name) {
                return Err(format!(
                    "profile `{name}` cannot be a credential name: {problem}"
                ));
            }
            let file = dir.join(format!("{name}.cred"));
            let exists = exists(&file);
            Ok(Step {
                profile: name.into(),
                file,
                exists,
            })
        })
        .collect()
}

/// What to tell the user about `step` (pure): the file, the drop-in line
/// and the config line.
pub(crate) fn describe(step: &Step, dry_run: bool) -> String {
    let Step {
        profile,
        file,
        exists,
    } = step;
    let what = match (exists, dry_run) {
        (true, _) => format!("{} exists: left as it is", file.display()),
        (false, true) => format!(
            "would encrypt profile `{profile}`'s keys into {}",
            file.display()
        ),
        (false, false) => format!(
            "encrypted profile `{profile}`'s keys into {}",
            file.display()
        ),
    };
    format!(
        "{what}\n  systemctl edit imdsd, then add:\n    [Service]\n    \
         LoadCredentialEncrypted={profile}:{}\n  and in imdsd.toml: source = \"credential:{profile}\"\n",
        file.display()
    )
}

/// `imdsd import --to systemd-creds [PROFILE...]`.
pub(super) fn import(request: ImportRequest, env: &Environment) -> Result<(), RunError> {
    let profiles = crate::profile::load(env)
        .map_err(|e| RunError::Role(format!("cannot read the AWS profiles: {e}")))?;
    let dir = request
        .output_dir
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR));
    let steps =
        plan(&profiles, &request.profiles, &dir, Path::exists).map_err(RunError::Role)?;
    for step in &steps {
        if !step.exists && !request.dry_run {
            let keys = profiles.static_keys(&step.profile).ok_or_else(|| {
                RunError::Role(format!("profile `{}` lost its keys", step.profile))
            })?;
            encrypt(&step.profile, &section::render(&keys), &step.file)?;
        }
        print(&describe(step, request.dry_run));
    }
    Ok(())
}

/// Runs `systemd-creds encrypt --name=NAME - FILE` with `text` on its
/// stdin, into a 0700 directory.
fn encrypt(name: &str, text: &str, file: &Path) -> Result<(), RunError> {
    if let Some(dir) = file.parent() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| {
                RunError::Role(format!("cannot create {}: {e}", dir.display()))
            })?;
    }
    let mut child = Command::new("systemd-creds")
        .arg("encrypt")
        .arg(format!("--name={name}"))
        .arg("-")
        .arg(file)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            RunError::Role(format!(
                "cannot run systemd-creds ({e}): it comes with systemd 250 or later"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(text.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| RunError::Role(format!("systemd-creds: {e}")))?;
    if !out.status.success() {
        return Err(RunError::Role(format!(
            "systemd-creds encrypt failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profiles() -> Profiles {
        let credentials = "[dev]\naws_access_key_id = AKIADEV\naws_secret_access_key = s3cr3t\n\
                           [half]\naws_access_key_id = AKIAHALF\n\
                           [b]\naws_access_key_id = AKIAB\naws_secret_access_key = s\n";
        let config = "[profile ops]\nrole_arn = arn:aws:iam::123456789012:role/ops\nsource_profile = dev\n";
        crate::profile::parse_files(Some(config), Some(credentials)).unwrap()
    }

    #[test]
    fn every_profile_with_keys_of_its_own_by_default() {
        let steps = plan(&profiles(), &[], Path::new("/etc/imdsd"), |_| false).unwrap();
        let named: Vec<(&str, &Path)> = steps
            .iter()
            .map(|s| (s.profile.as_str(), s.file.as_path()))
            .collect();
        assert_eq!(
            named,
            [
                ("b", Path::new("/etc/imdsd/b.cred")),
                ("dev", Path::new("/etc/imdsd/dev.cred"))
            ]
        );
    }

    #[test]
    fn a_profile_without_keys_of_its_own_is_refused_by_name() {
        for name in ["ops", "half", "nope"] {
            let problem = plan(&profiles(), &[name.into()], Path::new("/d"), |_| false)
                .unwrap_err();
            assert!(
                problem.starts_with(&format!("profile `{name}` holds no long-term keys")),
                "{problem}"
            );
        }
        let none =
            crate::profile::parse_files(None, Some("[x]\nregion = eu-west-1\n")).unwrap();
        assert!(
            plan(&none, &[], Path::new("/d"), |_| false)
                .unwrap_err()
                .contains("nothing to import")
        );
    }

    #[test]
    fn an_existing_file_is_left_alone_and_said_so() {
        let steps =
            plan(&profiles(), &["dev".into()], Path::new("/d"), |_| true).unwrap();
        assert!(steps[0].exists);
        let text = describe(&steps[0], false);
        assert!(
            text.starts_with("/d/dev.cred exists: left as it is"),
            "{text}"
        );
        assert!(
            text.contains("LoadCredentialEncrypted=dev:/d/dev.cred"),
            "{text}"
        );
        assert!(text.contains("source = \"credential:dev\""), "{text}");
        let fresh = Step {
            exists: false,
            ..steps.into_iter().next().unwrap()
        };
        assert!(describe(&fresh, true).starts_with("would encrypt profile `dev`'s keys"));
        assert!(describe(&fresh, false).starts_with("encrypted profile `dev`'s keys"));
    }

    #[test]
    fn the_section_holds_the_keys_as_the_credential_source_reads_them() {
        let keys = profiles().static_keys("dev").unwrap();
        let parsed = section::parse(&section::render(&keys)).unwrap();
        assert_eq!(parsed.access_key_id, "AKIADEV");
        assert_eq!(parsed.secret_access_key.expose(), "s3cr3t");
    }
}
