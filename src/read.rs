//! Bounded reads of files and HTTP bodies that come from outside: token
//! files, SAML assertions, AWS config files, the SSO cache, answers of
//! metadata and SSO endpoints.
//!
//! A path that is not a regular file (a FIFO would block a runtime thread
//! forever, `/dev/zero` would never end) or a body past its cap is an error,
//! not a hang or an out-of-memory.

use std::io::Read;
use std::path::Path;

/// Cap for files that hold one token or key.
pub(crate) const SMALL: u64 = 64 * 1024;
/// Cap for AWS config files and SAML assertions.
pub(crate) const LARGE: u64 = 1024 * 1024;

/// Reads a regular file of at most `max` bytes as UTF-8 text.
pub(crate) fn file(path: &Path, max: u64) -> std::io::Result<String> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(max + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > max {
        zeroize::Zeroize::zeroize(&mut text);
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {max} bytes"),
        ));
    }
    Ok(text)
}

/// Reads at most `max` bytes of an HTTP body as text; the rest is dropped.
pub(crate) async fn body(
    mut response: reqwest::Response,
    max: usize,
) -> Result<String, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > max {
            break;
        }
        body.extend_from_slice(&chunk);
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    zeroize::Zeroize::zeroize(&mut body);
    Ok(text)
}

/// A JSON error as a message that never quotes the input: serde quotes
/// offending values ("invalid type: string \"...\""), and the input may be
/// credentials. Missing and unknown fields are named; everything else is
/// reported by its position.
pub(crate) fn json_error(e: &serde_json::Error) -> String {
    let message = e.to_string();
    if message.starts_with("missing field") || message.starts_with("unknown field") {
        return message;
    }
    let kind = match e.classify() {
        serde_json::error::Category::Io => "unreadable",
        serde_json::error::Category::Syntax => "not valid JSON",
        serde_json::error::Category::Data => "a value of the wrong type",
        serde_json::error::Category::Eof => "cut short",
    };
    format!("{kind} at line {} column {}", e.line(), e.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_special_files_and_oversized_ones() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("ok");
        std::fs::write(&ok, "token").unwrap();
        assert_eq!(file(&ok, 10).unwrap(), "token");
        assert!(
            file(&ok, 3)
                .unwrap_err()
                .to_string()
                .contains("larger than 3 bytes")
        );
        assert!(
            file(Path::new("/dev/zero"), 10)
                .unwrap_err()
                .to_string()
                .contains("not a regular file")
        );
        assert!(file(dir.path(), 10).is_err());
    }

    #[test]
    fn json_errors_name_fields_but_never_quote_values() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Creds {
            #[serde(rename = "SecretAccessKey")]
            secret: String,
        }
        let e =
            serde_json::from_str::<Creds>(r#"{"SecretAccessKey": 98765}"#).unwrap_err();
        assert!(
            e.to_string().contains("98765"),
            "serde itself quotes the value"
        );
        assert_eq!(
            json_error(&e),
            "a value of the wrong type at line 1 column 25"
        );
        let e = serde_json::from_str::<Creds>("{}").unwrap_err();
        assert!(json_error(&e).starts_with("missing field `SecretAccessKey`"));
        let e = serde_json::from_str::<Creds>(r#"{"SecretAccessKey": "abc"#).unwrap_err();
        assert!(!json_error(&e).contains("abc"));
    }
}
