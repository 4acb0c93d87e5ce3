//! Editing the AWS profile files as text (pure), for `imdsd import` and
//! `imdsd rotate`: every line, comment and section not named is kept
//! byte for byte, so a user's file stays theirs.
//!
//! - [`without_keys`]: a profile's `aws_access_key_id`,
//!   `aws_secret_access_key` and `aws_session_token` lines removed (and
//!   its section header, if nothing else was in it);
//! - [`with_credential_process`]: `credential_process = ...` added to a
//!   profile of the config file (a new section at the end if it has none);
//! - [`with_keys`]: a profile's keys replaced by new ones (rotate).

/// Which of the two files a text is: their section headers differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// `~/.aws/config`: `[default]`, `[profile NAME]`.
    Config,
    /// `~/.aws/credentials`: `[NAME]`.
    Credentials,
}

/// The keys a profile's long-term credentials are.
pub(crate) const KEY_NAMES: [&str; 3] = [
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
];

/// The profile a section header line names, if it is one.
fn header_profile(line: &str, kind: FileKind) -> Option<Option<String>> {
    let inner = line.trim().strip_prefix('[')?.split(']').next()?.trim();
    Some(match kind {
        FileKind::Credentials => Some(inner.to_string()),
        FileKind::Config if inner == "default" => Some("default".into()),
        FileKind::Config => inner
            .strip_prefix("profile ")
            .map(|rest| rest.trim().to_string()),
    })
}

/// The key of a `key = value` line, read as the profile parser
/// (rust-ini, `crate::profile`) reads it: `=` or `:`, whichever comes
/// first, ends the key, and the line may be indented. Comments and
/// section headers have none.
fn key_of(line: &str) -> Option<&str> {
    let line = line.trim_start();
    if line.starts_with(['#', ';', '[']) {
        return None;
    }
    let end = line.find(['=', ':'])?;
    Some(line[..end].trim())
}

/// Each line (with its line ending) and the profile whose section it is in
/// (`None` before the first header and in sections of other kinds).
fn lines_by_profile(text: &str, kind: FileKind) -> Vec<(&str, Option<String>, bool)> {
    let mut current = None;
    text.split_inclusive('\n')
        .map(|line| match header_profile(line, kind) {
            Some(named) => {
                current = named;
                (line, current.clone(), true)
            }
            None => (line, current.clone(), false),
        })
        .collect()
}

/// `text` without `profile`'s key lines; `None` when it has none. A
/// section left with nothing but blank lines loses its header too.
pub(crate) fn without_keys(text: &str, kind: FileKind, profile: &str) -> Option<String> {
    let lines = lines_by_profile(text, kind);
    let ours = |p: &Option<String>| p.as_deref() == Some(profile);
    let is_key = |line: &str| key_of(line).is_some_and(|k| KEY_NAMES.contains(&k));
    if !lines.iter().any(|(l, p, h)| ours(p) && !h && is_key(l)) {
        return None;
    }
    let kept: Vec<(&str, bool, bool)> = lines
        .iter()
        .filter(|(l, p, h)| !(ours(p) && !h && is_key(l)))
        .map(|(l, p, h)| (*l, ours(p), *h))
        .collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < kept.len() {
        let (line, mine, header) = kept[i];
        let body_end = kept[i + 1..]
            .iter()
            .position(|(_, _, h)| *h)
            .map_or(kept.len(), |n| i + 1 + n);
        if mine
            && header
            && kept[i + 1..body_end]
                .iter()
                .all(|(l, ..)| l.trim().is_empty())
        {
            i = body_end;
            continue;
        }
        out.push_str(line);
        i += 1;
    }
    Some(out)
}

/// The header of `profile`'s section in the config file.
fn config_header(profile: &str) -> String {
    match profile {
        "default" => "[default]".into(),
        name => format!("[profile {name}]"),
    }
}

/// `text` (the config file) with `key = value` in `profile`'s section:
/// after its last setting, or in a new section at the end. A section that
/// has `key` already is left as it is.
pub(crate) fn with_setting(text: &str, profile: &str, key: &str, value: &str) -> String {
    let lines = lines_by_profile(text, FileKind::Config);
    let ours = |p: &Option<String>| p.as_deref() == Some(profile);
    let line = format!("{key} = {value}\n");
    if lines
        .iter()
        .any(|(l, p, h)| ours(p) && !h && key_of(l) == Some(key))
    {
        return text.to_string();
    }
    let Some(header) = lines.iter().position(|(_, p, h)| *h && ours(p)) else {
        let mut out = text.to_string();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!("{}\n{line}", config_header(profile)));
        return out;
    };
    let body_end = lines[header + 1..]
        .iter()
        .position(|(_, _, h)| *h)
        .map_or(lines.len(), |n| header + 1 + n);
    let last_setting = (header..body_end)
        .rev()
        .find(|&i| {
            let t = lines[i].0.trim();
            i == header || !(t.is_empty() || t.starts_with('#') || t.starts_with(';'))
        })
        .unwrap_or(header);
    let mut out = String::with_capacity(text.len() + line.len() + 1);
    for (i, (l, ..)) in lines.iter().enumerate() {
        out.push_str(l);
        if i == last_setting {
            if !l.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&line);
        }
    }
    out
}

/// [`with_setting`] for the line `imdsd import` adds.
pub(crate) fn with_credential_process(text: &str, profile: &str) -> String {
    with_setting(
        text,
        profile,
        "credential_process",
        &credential_process(profile),
    )
}

/// The command `imdsd import` puts in a profile: the profile's role of
/// the running daemon, by its name.
pub(crate) fn credential_process(profile: &str) -> String {
    let quoted =
        shlex::try_quote(profile).map_or_else(|_| profile.into(), |q| q.into_owned());
    format!("imdsd credential-process {quoted}")
}

/// `text` with `profile`'s `aws_access_key_id` and
/// `aws_secret_access_key` values replaced (rotate); `None` when the
/// profile has no such lines here.
pub(crate) fn with_keys(
    text: &str,
    kind: FileKind,
    profile: &str,
    access_key_id: &str,
    secret_access_key: &str,
) -> Option<zeroize::Zeroizing<String>> {
    let lines = lines_by_profile(text, kind);
    let ours = |p: &Option<String>| p.as_deref() == Some(profile);
    // Room for the new keys up front: a reallocation would leave an
    // unwiped copy of the text (secrets and all) behind.
    let room = text.len() + 2 * (access_key_id.len() + secret_access_key.len() + 64);
    let mut out = zeroize::Zeroizing::new(String::with_capacity(room));
    let mut replaced = 0;
    for (line, p, header) in &lines {
        let (key, value) = match key_of(line) {
            Some(k @ "aws_access_key_id") if ours(p) && !header => (k, access_key_id),
            Some(k @ "aws_secret_access_key") if ours(p) && !header => {
                (k, secret_access_key)
            }
            _ => {
                out.push_str(line);
                continue;
            }
        };
        // Pieces straight into `out`: no `format!` copy of the secret.
        for piece in [key, " = ", value] {
            out.push_str(piece);
        }
        if line.ends_with('\n') {
            out.push('\n');
        }
        replaced += 1;
    }
    (replaced == 2).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREDENTIALS: &str = "# my keys\n[default]\naws_access_key_id = AKIADEF\n\
        aws_secret_access_key = s3cr3tdef\n\n[dev]\n; work account\n\
        aws_access_key_id=AKIADEV\naws_secret_access_key=s3cr3tdev\nregion = eu-west-1\n\n\
        [other]\naws_access_key_id = AKIAOTHER\naws_secret_access_key = s3cr3tother\n";

    #[test]
    fn keys_go_and_everything_else_stays() {
        let dev = without_keys(CREDENTIALS, FileKind::Credentials, "dev").unwrap();
        assert_eq!(
            dev,
            "# my keys\n[default]\naws_access_key_id = AKIADEF\n\
             aws_secret_access_key = s3cr3tdef\n\n[dev]\n; work account\n\
             region = eu-west-1\n\n\
             [other]\naws_access_key_id = AKIAOTHER\naws_secret_access_key = s3cr3tother\n"
        );
        // A section left empty loses its header.
        let default =
            without_keys(CREDENTIALS, FileKind::Credentials, "default").unwrap();
        assert!(default.starts_with("# my keys\n[dev]\n"), "{default}");
        assert!(!default.contains("s3cr3tdef"));
        assert_eq!(
            without_keys(CREDENTIALS, FileKind::Credentials, "nope"),
            None
        );
        assert_eq!(
            without_keys(&default, FileKind::Credentials, "default"),
            None
        );
    }

    #[test]
    fn in_the_config_file_only_profile_sections_count() {
        let config = "[dev]\naws_access_key_id = X\n[profile dev]\naws_access_key_id = Y\n\
                      aws_secret_access_key = Z\noutput = json\n";
        let out = without_keys(config, FileKind::Config, "dev").unwrap();
        assert_eq!(
            out,
            "[dev]\naws_access_key_id = X\n[profile dev]\noutput = json\n"
        );
    }

    #[test]
    fn credential_process_goes_after_the_profiles_last_setting() {
        let config = "[default]\nregion = us-east-1\n# trailing comment\n\n\
                      [profile ops]\nrole_arn = arn\n";
        let out = with_credential_process(config, "default");
        assert_eq!(
            out,
            "[default]\nregion = us-east-1\ncredential_process = imdsd credential-process default\n\
             # trailing comment\n\n[profile ops]\nrole_arn = arn\n"
        );
        // Again: nothing changes.
        assert_eq!(with_credential_process(&out, "default"), out);
        // No section yet: a new one at the end.
        let added = with_credential_process("[profile ops]\nrole_arn = arn", "dev");
        assert_eq!(
            added,
            "[profile ops]\nrole_arn = arn\n\n[profile dev]\n\
             credential_process = imdsd credential-process dev\n"
        );
        assert_eq!(
            with_credential_process("", "my profile"),
            "[profile my profile]\ncredential_process = imdsd credential-process 'my profile'\n"
        );
    }

    #[test]
    fn rotated_keys_replace_the_old_ones_in_place() {
        let out = with_keys(CREDENTIALS, FileKind::Credentials, "dev", "AKIANEW", "n3w")
            .unwrap();
        assert!(out.contains(
            "[dev]\n; work account\naws_access_key_id = AKIANEW\n\
                              aws_secret_access_key = n3w\nregion = eu-west-1\n"
        ));
        assert!(!out.contains("s3cr3tdev") && out.contains("s3cr3tother"));
        assert!(
            with_keys(CREDENTIALS, FileKind::Credentials, "nope", "A", "B").is_none()
        );
    }

    /// Keys as the profile parser also reads them: `key: value`, and
    /// indented lines.
    const LOOSE: &str = "[dev]\n  aws_access_key_id = AKIADEV\n\
        aws_secret_access_key: s3cr3t=x\n\taws_session_token :tok\nregion = x\n\
        # aws_secret_access_key = a comment\n";

    #[test]
    fn keys_are_read_as_the_profile_parser_reads_them() {
        let parsed = crate::profile::parse_files(None, Some(LOOSE)).unwrap();
        assert!(
            KEY_NAMES
                .iter()
                .all(|k| parsed.profiles["dev"].contains_key(*k))
        );
        let out = without_keys(LOOSE, FileKind::Credentials, "dev").unwrap();
        assert_eq!(
            out,
            "[dev]\nregion = x\n# aws_secret_access_key = a comment\n"
        );
        let parsed = crate::profile::parse_files(None, Some(&out)).unwrap();
        assert!(
            KEY_NAMES
                .iter()
                .all(|k| !parsed.profiles["dev"].contains_key(*k))
        );
        let rotated =
            with_keys(LOOSE, FileKind::Credentials, "dev", "AKIANEW", "n3w").unwrap();
        assert_eq!(
            *rotated,
            "[dev]\naws_access_key_id = AKIANEW\naws_secret_access_key = n3w\n\
             \taws_session_token :tok\nregion = x\n# aws_secret_access_key = a comment\n"
        );
        // `credential_process: ...` is a setting already.
        let config =
            "[profile dev]\n  credential_process: imdsd credential-process dev\n";
        assert_eq!(with_credential_process(config, "dev"), config);
        // `[profile\tdev]` is no profile to the parser, nor here.
        let tab = "[profile\tdev]\naws_access_key_id = X\n";
        assert!(
            crate::profile::parse_files(Some(tab), None)
                .unwrap()
                .profiles
                .is_empty()
        );
        assert_eq!(without_keys(tab, FileKind::Config, "dev"), None);
    }
}
