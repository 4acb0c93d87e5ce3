//! The exact documents a set of credentials is written out as. Pure
//! functions from plain values to bytes, each rendered once per STS answer
//! (not per request).
//!
//! - [`imds_document`]: `iam/security-credentials/<role>` of the instance
//!   metadata protocol; the layout copies real IMDS byte for byte, because
//!   SDKs parse it in different ways (sdk-contract.md 1.4, item 23).

use chrono::{DateTime, Utc};

use super::Credentials;
use crate::secret::SecretBytes;

/// `Expiration` and `LastUpdated` format: UTC, second precision, `Z`.
pub(crate) const EXPIRATION_FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

/// `t` as [`EXPIRATION_FORMAT`].
pub(crate) fn timestamp(t: DateTime<Utc>) -> String {
    t.format(EXPIRATION_FORMAT).to_string()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
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
