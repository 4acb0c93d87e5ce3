//! Exact response bodies of the IMDS protocol.
//!
//! Pure functions from plain values to bytes. The credentials document is
//! rendered once per STS answer (not per request) and the layout copies
//! real IMDS byte for byte, because SDKs parse it in different ways (see
//! sdk-contract.md 1.4, item 23).

use chrono::{DateTime, Utc};

use crate::creds::Credentials;
use crate::secret::SecretBytes;

/// `Expiration` and `LastUpdated` format: UTC, second precision, `Z`.
pub const EXPIRATION_FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

fn timestamp(t: DateTime<Utc>) -> String {
    t.format(EXPIRATION_FORMAT).to_string()
}

/// A JSON string literal (quotes and escapes included).
fn json_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// The credentials document served at
/// `/latest/meta-data/iam/security-credentials/<role>`.
///
/// Only STS credentials with a session token and an expiry are rendered;
/// long-term keys never reach this point.
pub fn credentials_json(
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

/// `{"Code":...,"Message":...}`: the body of a 503 when no usable
/// credentials are left.
pub fn error_json(code: &str, message: &str) -> String {
    serde_json::json!({ "Code": code, "Message": message }).to_string()
}

/// `/latest/meta-data/iam/info`.
pub fn iam_info(
    instance_profile_arn: &str,
    instance_profile_id: &str,
    last_updated: DateTime<Utc>,
) -> String {
    format!(
        "{{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : \"{}\",\n  \"InstanceProfileArn\" : {},\n  \"InstanceProfileId\" : {}\n}}",
        timestamp(last_updated),
        json_str(instance_profile_arn),
        json_str(instance_profile_id),
    )
}

/// Facts about the pretend instance, shared by several paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceFacts {
    pub account_id: String,
    pub region: String,
    pub instance_id: String,
    pub started: DateTime<Utc>,
}

impl InstanceFacts {
    /// The availability zone: the region plus one letter, since botocore and
    /// the AWS CLI derive the region by dropping the last character.
    pub fn availability_zone(&self) -> String {
        format!("{}a", self.region)
    }
}

/// `/latest/dynamic/instance-identity/document`.
pub fn identity_document(facts: &InstanceFacts) -> String {
    let doc = serde_json::json!({
        "accountId": facts.account_id,
        "architecture": std::env::consts::ARCH,
        "availabilityZone": facts.availability_zone(),
        "imageId": "ami-00000000000000000",
        "instanceId": facts.instance_id,
        "instanceType": "imdsd.local",
        "pendingTime": timestamp(facts.started),
        "privateIp": "127.0.0.1",
        "region": facts.region,
        "version": "2017-09-30",
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// The XHTML error page real IMDS sends with 4xx answers.
pub fn error_page(status: u16, reason: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n\
<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Transitional//EN\"\n\
\t\"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd\">\n\
<html xmlns=\"http://www.w3.org/1999/xhtml\" xml:lang=\"en\" lang=\"en\">\n \
<head>\n  <title>{status} - {reason}</title>\n </head>\n \
<body>\n  <h1>{status} - {reason}</h1>\n </body>\n</html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn credentials_document_has_the_exact_real_imds_layout() {
        let creds = Credentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: Secret::new("sec/ret+key"),
            session_token: Some(Secret::new("to\"ken")),
            expiration: None,
        };
        let body = credentials_json(
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

    #[test]
    fn identity_document_carries_region_and_zone() {
        let facts = InstanceFacts {
            account_id: "123456789012".into(),
            region: "eu-west-1".into(),
            instance_id: "i-0123456789abcdef0".into(),
            started: at("2026-01-01T00:00:00Z"),
        };
        let doc: serde_json::Value =
            serde_json::from_str(&identity_document(&facts)).unwrap();
        assert_eq!(doc["region"], "eu-west-1");
        assert_eq!(doc["availabilityZone"], "eu-west-1a");
        assert_eq!(doc["accountId"], "123456789012");
    }

    #[test]
    fn error_json_escapes() {
        assert_eq!(
            error_json("A", "b \"c\""),
            r#"{"Code":"A","Message":"b \"c\""}"#
        );
    }
}
