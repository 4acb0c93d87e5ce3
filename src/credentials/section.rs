//! The text of one AWS credentials-file section (`aws_access_key_id`,
//! `aws_secret_access_key`, optionally `aws_session_token`; a `[section]`
//! header is optional), pure: how a systemd credential
//! (`source = "credential:NAME"`) and a Secret Service item hold a
//! profile's keys, so either can be made from `~/.aws/credentials` as it is.

use zeroize::Zeroizing;

use super::Credentials;
use crate::secret::Secret;

/// The section text for `keys` (wiped from memory when dropped). Written
/// piece by piece into a buffer of its final size: no `format!` copy and
/// no reallocation leaves an unwiped copy of a secret behind.
pub(crate) fn render(keys: &Credentials) -> Zeroizing<String> {
    let mut pieces = vec![
        "aws_access_key_id = ",
        keys.access_key_id.as_str(),
        "\naws_secret_access_key = ",
        keys.secret_access_key.expose(),
        "\n",
    ];
    if let Some(token) = &keys.session_token {
        pieces.extend(["aws_session_token = ", token.expose(), "\n"]);
    }
    let mut text =
        Zeroizing::new(String::with_capacity(pieces.iter().map(|p| p.len()).sum()));
    pieces.iter().for_each(|p| text.push_str(p));
    text
}

/// A line whose key is not one of the three. The key is named only when
/// it looks like a key: a line that is really a pasted secret (a session
/// token holds `=`) must not reach the log.
fn unknown_key(line: usize, key: &str) -> String {
    let key_like = key.len() <= 40
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if key_like {
        format!("line {line}: unknown key `{key}`")
    } else {
        format!(
            "line {line}: not one of aws_access_key_id, aws_secret_access_key, aws_session_token"
        )
    }
}

/// The keys in a credentials-file section (pure). Problems name the line
/// or the key, never a value.
pub(crate) fn parse(text: &str) -> Result<Credentials, String> {
    let (mut id, mut secret, mut token) = (None, None, None);
    let mut sections = 0;
    for (n, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            sections += 1;
            if sections > 1 {
                return Err(format!("line {n}: a second [section]; the file holds one"));
            }
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("line {n}: not `key = value`"));
        };
        let value = value.trim();
        match key.trim() {
            "aws_access_key_id" => id = Some(value.to_string()),
            "aws_secret_access_key" => secret = Some(Secret::new(value)),
            "aws_session_token" => token = Some(Secret::new(value)),
            other => return Err(unknown_key(n, other)),
        }
    }
    let missing = |key: &str| format!("no {key}");
    Ok(Credentials {
        access_key_id: id
            .filter(|v| !v.is_empty())
            .ok_or_else(|| missing("aws_access_key_id"))?,
        secret_access_key: secret
            .filter(|v| !v.is_empty())
            .ok_or_else(|| missing("aws_secret_access_key"))?,
        session_token: token.filter(|t| !t.is_empty()),
        expiration: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_with_or_without_its_header_gives_the_keys() {
        let with = "# imdsd\n[default]\naws_access_key_id = AKIAEXAMPLE\n\
                    aws_secret_access_key=s3cr3t/key\n";
        let without =
            "aws_access_key_id=AKIAEXAMPLE\naws_secret_access_key = s3cr3t/key\n\n";
        for text in [with, without] {
            let c = parse(text).unwrap();
            assert_eq!(c.access_key_id, "AKIAEXAMPLE");
            assert_eq!(c.secret_access_key.expose(), "s3cr3t/key");
            assert!(c.session_token.is_none() && c.expiration.is_none());
        }
        let c = parse(&format!("{without}aws_session_token = tok\n")).unwrap();
        assert_eq!(c.session_token.unwrap().expose(), "tok");
    }

    #[test]
    fn problems_name_the_line_or_key_and_never_a_value() {
        let cases = [
            ("aws_access_key_id = AKIAX\n", "no aws_secret_access_key"),
            ("aws_secret_access_key = s3cr3t\n", "no aws_access_key_id"),
            (
                "aws_access_key_id = \naws_secret_access_key = s3cr3t\n",
                "no aws_access_key_id",
            ),
            (
                "[a]\naws_access_key_id = A\n[b]\n",
                "line 3: a second [section]; the file holds one",
            ),
            (
                "aws_secret_access_key s3cr3t\n",
                "line 1: not `key = value`",
            ),
            ("region = s3cr3t\n", "line 1: unknown key `region`"),
            (
                "FwoGZXIvYXdzEBs3cr3t/token+part==\n",
                "line 1: not one of aws_access_key_id, aws_secret_access_key, aws_session_token",
            ),
        ];
        for (text, expected) in cases {
            let problem = parse(text).unwrap_err();
            assert_eq!(problem, expected, "{text}");
            assert!(!problem.contains("s3cr3t"));
        }
    }

    #[test]
    fn rendered_keys_parse_back() {
        let keys = parse("aws_access_key_id = AKIAX\naws_secret_access_key = s3/cr+t\naws_session_token = t==\n").unwrap();
        let text = render(&keys);
        // Allocated once, at its size: nothing was copied on the way.
        assert_eq!(text.capacity(), text.len());
        let again = parse(&text).unwrap();
        assert_eq!(again.access_key_id, "AKIAX");
        assert_eq!(again.secret_access_key.expose(), "s3/cr+t");
        assert_eq!(again.session_token.unwrap().expose(), "t==");
    }
}
