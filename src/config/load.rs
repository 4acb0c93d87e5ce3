//! Finding, reading and parsing the config file; printing its problems.
//!
//! The file is found at `--config`, else `$IMDSD_CONFIG`, else
//! `$XDG_CONFIG_HOME/imdsd/imdsd.toml` (`~/.config/imdsd/imdsd.toml`), else
//! `/etc/imdsd/imdsd.toml`. Parsing takes a `&str`, so every check is
//! testable without files; only [`load`] touches the disk.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::profile_refs::ProfileFacts;
use super::schema;
use super::validate::{Validation, validate};
use super::{Config, Diagnostic, Severity};
use crate::environment::Environment;

/// A config that passed validation, with its warnings.
#[derive(Debug, Clone)]
pub(crate) struct LoadedConfig {
    pub(crate) path: PathBuf,
    pub(crate) config: Config,
    /// Warnings, already rendered as `path:line:column: warning: ...`.
    pub(crate) warnings: Vec<String>,
}

/// Why no config could be loaded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error(
        "no config file found; tried {}. Copy examples/imdsd.toml to one of them or pass --config",
        tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NotFound { tried: Vec<PathBuf> },
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", render_all(.problems))]
    Invalid { problems: Vec<String> },
}

fn render_all(problems: &[String]) -> String {
    problems.join("\n")
}

/// The paths tried, in order, when `--config` is not given.
pub(crate) fn default_paths(env: &Environment) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if let Some(p) = env.get("IMDSD_CONFIG") {
        paths.push(PathBuf::from(p));
    }
    if let Some(xdg) = env.get("XDG_CONFIG_HOME") {
        paths.push(Path::new(xdg).join("imdsd/imdsd.toml"));
    } else if let Some(home) = env.get("HOME") {
        paths.push(Path::new(home).join(".config/imdsd/imdsd.toml"));
    }
    paths.push(PathBuf::from("/etc/imdsd/imdsd.toml"));
    paths
}

/// The config path to use: the explicit one, else the first default path
/// that exists.
pub(crate) fn resolve_path(
    explicit: Option<&Path>,
    env: &Environment,
) -> Result<PathBuf, ConfigError> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    // $IMDSD_CONFIG is as explicit as --config: a missing file is an error
    // about that file, not a reason to fall through to another one.
    if let Some(p) = env.get("IMDSD_CONFIG") {
        return Ok(PathBuf::from(p));
    }
    let tried = default_paths(env);
    tried
        .iter()
        .find(|p| p.exists())
        .cloned()
        .ok_or(ConfigError::NotFound { tried })
}

/// Reads and validates the config at `path`, and checks that the
/// directories it names can be written.
pub(crate) fn load(path: &Path, env: &Environment) -> Result<LoadedConfig, ConfigError> {
    let text = crate::read::file(path, crate::read::LARGE).map_err(|source| {
        ConfigError::Read {
            path: path.to_path_buf(),
            source,
        }
    })?;
    // The AWS profiles the roles name, read now so `check` reports a
    // missing one (and the region falls back to the selected profile's).
    let profiles = crate::profile::load(env).map_err(|e| e.to_string());
    let facts = match &profiles {
        Ok(profiles) => ProfileFacts::Read(profiles),
        Err(reason) => ProfileFacts::Unreadable(reason),
    };
    let mut validation = validate_text(&text, env, facts);
    for dir in &validation.writable_dirs {
        if let Some(problem) = unwritable(&dir.path) {
            let message = format!(
                "{}: imdsd may not write {}: {problem}; name a directory the daemon's user can write",
                dir.key,
                dir.path.display()
            );
            validation
                .diagnostics
                .push(Diagnostic::error(dir.span.clone(), message));
            validation.config = None;
        }
    }
    let render = |d: &Diagnostic| render_diagnostic(path, &text, d);
    match validation.config {
        Some(config) => Ok(LoadedConfig {
            path: path.to_path_buf(),
            config,
            warnings: validation.diagnostics.iter().map(render).collect(),
        }),
        None => Err(ConfigError::Invalid {
            problems: sorted(&validation.diagnostics).map(render).collect(),
        }),
    }
}

/// Why `dir` (or, if it does not exist yet, the directory it would be
/// created in) cannot be written by this process; `None` if it can.
fn unwritable(dir: &Path) -> Option<String> {
    let existing = dir.ancestors().find(|d| d.exists())?;
    if !existing.is_dir() {
        return Some(format!("{} is not a directory", existing.display()));
    }
    let access = rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK;
    match rustix::fs::access(existing, access) {
        Ok(()) => None,
        Err(e) => Some(format!(
            "{}: {}",
            existing.display(),
            std::io::Error::from(e)
        )),
    }
}

/// Errors first, then warnings, each in file order.
fn sorted(diags: &[Diagnostic]) -> impl Iterator<Item = &Diagnostic> {
    let mut v: Vec<&Diagnostic> = diags.iter().collect();
    v.sort_by_key(|d| {
        (
            d.severity == Severity::Warning,
            d.span.as_ref().map_or(0, |s| s.start),
        )
    });
    v.into_iter()
}

/// Parses and validates config text (AWS profiles are not read, so the
/// profiles roles name are not checked): a config if there were no errors, and
/// every diagnostic.
pub fn parse(text: &str, env: &Environment) -> (Option<Config>, Vec<Diagnostic>) {
    let v = validate_text(text, env, ProfileFacts::Unread);
    (v.config, v.diagnostics)
}

/// Parses and validates config text (pure: directories are not checked).
fn validate_text(
    text: &str,
    env: &Environment,
    profiles: ProfileFacts<'_>,
) -> Validation {
    let mut schema = schema::read(text);
    let Some(raw) = &mut schema.raw else {
        return Validation {
            config: None,
            diagnostics: schema.problems,
            writable_dirs: vec![],
        };
    };
    super::profile_refs::declare_listener_profiles(raw, profiles);
    let mut validation = validate(raw, env, profiles);
    if !schema.problems.is_empty() {
        // What can still be checked is; the file stays invalid.
        validation.config = None;
        validation.diagnostics.retain(|d| !schema.echoes(d));
        validation.diagnostics.extend(schema.problems);
    }
    validation
}

/// `path:line:column: error: message`.
pub(crate) fn render_diagnostic(path: &Path, text: &str, d: &Diagnostic) -> String {
    let level = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    match &d.span {
        Some(span) => {
            let LineCol { line, column } = line_col(text, span);
            format!("{}:{line}:{column}: {level}: {}", path.display(), d.message)
        }
        None => format!("{}: {level}: {}", path.display(), d.message),
    }
}

/// A 1-based position in a text.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct LineCol {
    pub(crate) line: usize,
    pub(crate) column: usize,
}

impl fmt::Display for LineCol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Line and column (in characters) where `span` starts.
pub(crate) fn line_col(text: &str, span: &Range<usize>) -> LineCol {
    let start = span.start.min(text.len());
    let before = text.get(..start).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    LineCol { line, column }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_that_cannot_be_written_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(unwritable(&tmp.path().join("a/b/tokens")), None);
        let file = tmp.path().join("file");
        std::fs::write(&file, "").unwrap();
        assert!(
            unwritable(&file.join("tokens"))
                .unwrap()
                .contains("not a directory")
        );
    }

    #[test]
    fn line_col_counts_from_one() {
        let text = "a = 1\nbb = 2\n";
        assert_eq!(line_col(text, &(0..1)), LineCol { line: 1, column: 1 });
        assert_eq!(line_col(text, &(9..10)), LineCol { line: 2, column: 4 });
        assert_eq!(line_col(text, &(999..1000)), LineCol { line: 3, column: 1 });
    }

    #[test]
    fn unknown_keys_are_errors_with_their_position() {
        let text = "[roles.dev]\nrole_arn = \"arn:aws:iam::123456789012:role/dev\"\nsource = \"env\"\nrolearn = 1\n";
        let (config, diags) = parse(text, &Environment::default());
        assert!(config.is_none());
        let rendered = render_diagnostic(Path::new("f.toml"), text, &diags[0]);
        assert!(
            rendered.starts_with(
                "f.toml:4:1: error: unknown key `rolearn` in [roles.dev]; did you mean `role_arn`?"
            ),
            "{rendered}"
        );
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let text = "[sts]\nregion = \n";
        let (_, diags) = parse(text, &Environment::default());
        let rendered = render_diagnostic(Path::new("f.toml"), text, &diags[0]);
        assert!(rendered.starts_with("f.toml:2:"), "{rendered}");
    }

    #[test]
    fn default_paths_follow_xdg_then_etc() {
        let env = Environment::from_pairs([("HOME", "/home/a")]);
        assert_eq!(
            default_paths(&env),
            vec![
                PathBuf::from("/home/a/.config/imdsd/imdsd.toml"),
                PathBuf::from("/etc/imdsd/imdsd.toml"),
            ]
        );
        let env = Environment::from_pairs([
            ("XDG_CONFIG_HOME", "/x"),
            ("IMDSD_CONFIG", "/c.toml"),
        ]);
        assert_eq!(
            default_paths(&env)[..2],
            [
                PathBuf::from("/c.toml"),
                PathBuf::from("/x/imdsd/imdsd.toml")
            ]
        );
    }

    #[test]
    fn not_found_names_every_path_tried_and_the_example() {
        let env =
            Environment::from_pairs([("XDG_CONFIG_HOME", "/nonexistent-imdsd-test")]);
        let err = resolve_path(None, &env).unwrap_err().to_string();
        assert!(
            err.contains("/nonexistent-imdsd-test/imdsd/imdsd.toml"),
            "{err}"
        );
        assert!(err.contains("/etc/imdsd/imdsd.toml"), "{err}");
        assert!(err.contains("examples/imdsd.toml"), "{err}");
    }

    #[test]
    fn a_listener_may_name_an_aws_profile_and_it_is_always_active() {
        let profiles = crate::profile::parse_files(
            Some(
                "[profile base]\n[profile dev]\nrole_arn = arn:aws:iam::123456789012:role/d\nsource_profile = base\n\
                 [profile ops]\nrole_arn = arn:aws:iam::123456789012:role/o\nsource_profile = base\n",
            ),
            Some("[base]\naws_access_key_id = A\naws_secret_access_key = s\n"),
        )
        .unwrap();
        let text = "[[imds]]\nrole = \"dev\"\n[[container]]\nlisten = \"127.0.0.1:9\"\nroles = [\"ops\"]\n[profiles]\n";
        let env = Environment::default();
        let v = validate_text(text, &env, ProfileFacts::Read(&profiles));
        let c = v.config.unwrap_or_else(|| panic!("{:?}", v.diagnostics));
        assert!(
            matches!(&c.roles["dev"].flow, crate::config::Flow::Profile { name, .. } if name == "dev")
        );
        assert!(c.roles.contains_key("ops"), "declared: never parked");
        // Text alone cannot tell a profile from a typo.
        let (c, d) = parse(text, &env);
        assert!(c.is_none());
        assert!(d[0].message.contains("no role named `dev`"), "{d:?}");
    }
}
