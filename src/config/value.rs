//! Rules about single values that several parts of the config share: one
//! home each. Pure.
//!
//! - durations written like `"1h"` within a range;
//! - the IAM name character set (role names, session names, profile names
//!   turned into role names);
//! - STS's one-hour cap on role-chained sessions;
//! - how long a session must be to be refreshed well ahead (the refresh
//!   schedule uses it, `check` warns below it).

use std::time::Duration;

/// STS caps a session at one hour when the call is signed with session
/// credentials (role chaining), whatever `DurationSeconds` asks for.
pub(crate) const CHAINED_MAX: Duration = Duration::from_secs(3600);

/// Sessions at least this long are refreshed with 35 to 40 minutes left
/// (`refresh::schedule`); shorter ones at half-life, so SDKs see them near
/// expiry and `check` warns. Five minutes under an hour, because a 1h
/// session arrives with a little less than an hour left: STS stamps
/// `Expiration` before its answer travels (network latency, clock skew).
pub(crate) const LONG_SESSION: Duration = Duration::from_secs(55 * 60);

/// The session length STS grants for `asked` when the call is `chained`
/// (signed with session credentials).
pub(crate) fn granted_duration(asked: Duration, chained: bool) -> Duration {
    if chained {
        asked.min(CHAINED_MAX)
    } else {
        asked
    }
}

/// Parses `text` as a duration within `min..=max`, or says what is wrong.
pub(crate) fn duration_in(
    text: &str,
    min: Duration,
    max: Duration,
) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if (min..=max).contains(&d) => Ok(d),
        Ok(_) => Err(format!(
            "`{text}` is out of range {}..{}",
            humantime::format_duration(min),
            humantime::format_duration(max)
        )),
        Err(e) => Err(format!(
            "`{text}` is not a duration like \"1h\" or \"90m\": {e}"
        )),
    }
}

/// A character IAM allows in names: letters, digits and `_+=,.@-`.
pub(crate) fn is_iam_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '=' | ',' | '.' | '@' | '-')
}

/// `min..=max` characters of the IAM name set plus `extra`, or what is
/// wrong.
pub(crate) fn name_problem(
    v: &str,
    min: usize,
    max: usize,
    extra: &str,
) -> Option<String> {
    let ok = v.chars().all(|c| is_iam_name_char(c) || extra.contains(c));
    (!(min..=max).contains(&v.len()) || !ok).then(|| {
        format!("`{v}` must be {min} to {max} characters of letters, digits and _+=,.@-{extra}")
    })
}

/// Why `name` cannot name a systemd credential (a file in
/// `$CREDENTIALS_DIRECTORY`): `source = "credential:NAME"`, `imdsd import`.
pub(crate) fn credential_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() || name == "." || name == ".." {
        Some("a credential name must not be empty, `.` or `..`")
    } else if name.contains('/') {
        Some("a credential name has no `/`")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn credential_names_are_file_names() {
        assert_eq!(credential_name_problem("aws"), None);
        assert_eq!(credential_name_problem("imdsd.keys"), None);
        for bad in ["", ".", "..", "a/b", "../x"] {
            assert!(credential_name_problem(bad).is_some(), "{bad}");
        }
    }

    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn chained_sessions_are_capped_at_an_hour_and_others_are_not() {
        assert_eq!(granted_duration(6 * HOUR, true), HOUR);
        assert_eq!(granted_duration(HOUR / 2, true), HOUR / 2);
        assert_eq!(granted_duration(6 * HOUR, false), 6 * HOUR);
    }

    #[test]
    fn durations_are_checked_against_their_range_inclusively() {
        let (min, max) = (Duration::from_secs(60), HOUR);
        assert_eq!(duration_in("1m", min, max), Ok(min));
        assert_eq!(duration_in("1h", min, max), Ok(max));
        assert_eq!(
            duration_in("59s", min, max).unwrap_err(),
            "`59s` is out of range 1m..1h"
        );
        assert!(
            duration_in("61m", min, max)
                .unwrap_err()
                .contains("out of range")
        );
        assert!(
            duration_in("soon", min, max)
                .unwrap_err()
                .contains("is not a duration")
        );
    }

    #[test]
    fn iam_names_use_letters_digits_and_a_few_signs() {
        for c in ['a', 'Z', '0', '_', '+', '=', ',', '.', '@', '-'] {
            assert!(is_iam_name_char(c), "{c}");
        }
        for c in [' ', '/', ':', 'é', '!'] {
            assert!(!is_iam_name_char(c), "{c}");
        }
        assert_eq!(name_problem("ab", 2, 64, ""), None);
        assert!(name_problem("a", 2, 64, "").is_some());
        assert!(name_problem(&"a".repeat(65), 2, 64, "").is_some());
        assert_eq!(name_problem("a:b/c", 2, 64, ":/"), None);
        assert!(name_problem("a:b", 2, 64, "").unwrap().contains("2 to 64"));
    }
}
