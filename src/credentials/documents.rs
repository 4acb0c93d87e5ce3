//! The exact documents a set of credentials is written out as. Pure
//! functions from plain values to bytes, each rendered once per STS answer
//! (not per request).
//!
//! - [`imds_document`]: `iam/security-credentials/<role>` of the instance
//!   metadata protocol; the layout copies real IMDS byte for byte, because
//!   SDKs parse it in different ways (sdk-contract.md 1.4, item 23).
//! - [`container_document`]: the container-credentials protocol's answer
//!   (sdk-contract.md 1.6, item 37).
//! - [`process_document`]: what a `credential_process` prints (`Version: 1`).

use chrono::{DateTime, Utc};

use super::Credentials;
use crate::secret::SecretBytes;

/// `Expiration` and `LastUpdated` format: UTC, second precision, `Z`.
pub(crate) const EXPIRATION_FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

/// `t` as [`EXPIRATION_FORMAT`], within the four-digit years that format
/// (and every SDK's parser) has: an expiry past 9999 (RFC 3339 allows
/// `9999-12-31T23:59:59-23:59`, which is in 10000 in UTC) would print as
/// `+10000-...`, which no SDK reads.
pub(crate) fn timestamp(t: DateTime<Utc>) -> String {
    let first = DateTime::from_timestamp(-62_167_219_200, 0).unwrap_or(t);
    let last = DateTime::from_timestamp(253_402_300_799, 0).unwrap_or(t);
    t.clamp(first, last).format(EXPIRATION_FORMAT).to_string()
}

/// A JSON string literal (quotes and escapes included).
pub(crate) fn json_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// The credentials document served at
/// `/latest/meta-data/iam/security-credentials/<role>`.
///
/// Only STS credentials with a session token and an expiry are rendered;
/// long-term keys never reach this point.
pub(crate) fn imds_document(
    creds: &Credentials,
    expiration: DateTime<Utc>,
    last_updated: DateTime<Utc>,
) -> SecretBytes {
    let token = creds
        .session_token
        .as_ref()
        .map(|t| t.expose())
        .unwrap_or_default();
    let mut out = zeroize::Zeroizing::new(String::with_capacity(1536));
    out.push_str("{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : \"");
    out.push_str(&timestamp(last_updated));
    out.push_str("\",\n  \"Type\" : \"AWS-HMAC\",\n  \"AccessKeyId\" : ");
    out.push_str(&json_str(&creds.access_key_id));
    out.push_str(",\n  \"SecretAccessKey\" : ");
    out.push_str(&zeroize::Zeroizing::new(json_str(
        creds.secret_access_key.expose(),
    )));
    out.push_str(",\n  \"Token\" : ");
    out.push_str(&zeroize::Zeroizing::new(json_str(token)));
    out.push_str(",\n  \"Expiration\" : \"");
    out.push_str(&timestamp(expiration));
    out.push_str("\"\n}");
    SecretBytes::new(out.as_bytes().to_vec())
}

/// The container-credentials answer: `AccessKeyId`, `SecretAccessKey`,
/// `Token`, `Expiration` and, when known, `AccountId`.
pub(crate) fn container_document(
    creds: &Credentials,
    expiration: DateTime<Utc>,
    account_id: Option<&str>,
) -> SecretBytes {
    let mut out = zeroize::Zeroizing::new(String::with_capacity(1536));
    out.push_str("{\"AccessKeyId\":");
    out.push_str(&json_str(&creds.access_key_id));
    push_secrets(&mut out, creds, "Token");
    out.push_str(",\"Expiration\":\"");
    out.push_str(&timestamp(expiration));
    out.push('"');
    if let Some(account) = account_id {
        out.push_str(",\"AccountId\":");
        out.push_str(&json_str(account));
    }
    out.push('}');
    SecretBytes::new(out.as_bytes().to_vec())
}

/// What `credential_process` prints: `Version` 1, the keys, the session
/// token and `Expiration`.
pub(crate) fn process_document(
    creds: &Credentials,
    expiration: DateTime<Utc>,
) -> SecretBytes {
    let mut out = zeroize::Zeroizing::new(String::with_capacity(1536));
    out.push_str("{\"Version\":1,\"AccessKeyId\":");
    out.push_str(&json_str(&creds.access_key_id));
    push_secrets(&mut out, creds, "SessionToken");
    out.push_str(",\"Expiration\":\"");
    out.push_str(&timestamp(expiration));
    out.push_str("\"}");
    SecretBytes::new(out.as_bytes().to_vec())
}

/// `,"SecretAccessKey":...,"<token_key>":...`, through wiped buffers.
fn push_secrets(out: &mut String, creds: &Credentials, token_key: &str) {
    let token = creds
        .session_token
        .as_ref()
        .map(|t| t.expose())
        .unwrap_or_default();
    out.push_str(",\"SecretAccessKey\":");
    out.push_str(&zeroize::Zeroizing::new(json_str(
        creds.secret_access_key.expose(),
    )));
    out.push_str(",\"");
    out.push_str(token_key);
    out.push_str("\":");
    out.push_str(&zeroize::Zeroizing::new(json_str(token)));
}

/// The account id in an ARN (`arn:aws:sts::123456789012:assumed-role/...`).
pub(crate) fn account_of(arn: &str) -> Option<&str> {
    let account = arn.split(':').nth(4)?;
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()))
        .then_some(account)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn creds() -> Credentials {
        Credentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: Secret::new("sec/ret+key"),
            session_token: Some(Secret::new("to\"ken")),
            expiration: None,
        }
    }

    #[test]
    fn timestamps_keep_to_four_digit_years() {
        // The credential_process fuzz target: an `Expiration` of
        // 9999-12-31T23:59:59-23:59 was served as "+10000-01-01T23:58:59Z".
        let late = chrono::DateTime::parse_from_rfc3339("9999-12-31T23:59:59-23:59")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(timestamp(late), "9999-12-31T23:59:59Z");
        let early = chrono::DateTime::parse_from_rfc3339("0000-01-01T00:00:00+23:59")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(timestamp(early), "0000-01-01T00:00:00Z");
        assert_eq!(
            timestamp(at("2026-01-02T03:04:05Z")),
            "2026-01-02T03:04:05Z"
        );
    }

    #[test]
    fn container_document_carries_what_every_sdk_reads() {
        let exp = at("2026-08-01T18:00:00.75Z");
        let body = container_document(&creds(), exp, Some("123456789012"));
        assert_eq!(
            std::str::from_utf8(body.as_ref()).unwrap(),
            "{\"AccessKeyId\":\"ASIAEXAMPLE\",\"SecretAccessKey\":\"sec/ret+key\",\
             \"Token\":\"to\\\"ken\",\"Expiration\":\"2026-08-01T18:00:00Z\",\
             \"AccountId\":\"123456789012\"}"
        );
        let body = container_document(&creds(), exp, None);
        let parsed: serde_json::Value = serde_json::from_slice(body.as_ref()).unwrap();
        assert!(parsed.get("AccountId").is_none());
        assert_eq!(parsed["Token"], "to\"ken");
    }

    #[test]
    fn process_document_is_version_1_with_a_session_token() {
        let body = process_document(&creds(), at("2026-08-01T18:00:00Z"));
        let parsed: serde_json::Value = serde_json::from_slice(body.as_ref()).unwrap();
        assert_eq!(parsed["Version"], 1);
        assert_eq!(parsed["AccessKeyId"], "ASIAEXAMPLE");
        assert_eq!(parsed["SecretAccessKey"], "sec/ret+key");
        assert_eq!(parsed["SessionToken"], "to\"ken");
        assert_eq!(parsed["Expiration"], "2026-08-01T18:00:00Z");
    }

    #[test]
    fn account_ids_come_from_twelve_digit_arn_fields() {
        let arn = "arn:aws:sts::123456789012:assumed-role/dev/s";
        assert_eq!(account_of(arn), Some("123456789012"));
        assert_eq!(account_of("arn:aws:sts::12345:assumed-role/dev/s"), None);
        assert_eq!(account_of("nonsense"), None);
    }

    #[test]
    fn imds_document_has_the_exact_real_imds_layout() {
        let creds = Credentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: Secret::new("sec/ret+key"),
            session_token: Some(Secret::new("to\"ken")),
            expiration: None,
        };
        let body = imds_document(
            &creds,
            at("2026-08-01T18:00:00.75Z"),
            at("2026-08-01T12:00:00Z"),
        );
        assert_eq!(
            std::str::from_utf8(body.as_ref()).unwrap(),
            "{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : \"2026-08-01T12:00:00Z\",\n  \
             \"Type\" : \"AWS-HMAC\",\n  \"AccessKeyId\" : \"ASIAEXAMPLE\",\n  \
             \"SecretAccessKey\" : \"sec/ret+key\",\n  \"Token\" : \"to\\\"ken\",\n  \
             \"Expiration\" : \"2026-08-01T18:00:00Z\"\n}"
        );
        let parsed: serde_json::Value = serde_json::from_slice(body.as_ref()).unwrap();
        assert_eq!(parsed["Token"], "to\"ken");
        assert!(
            parsed.get("AccountId").is_none(),
            "no AccountId on the legacy path"
        );
    }
}
