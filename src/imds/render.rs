//! Exact response bodies of the IMDS protocol, besides the credentials
//! document (`credentials::documents`). Pure functions from plain values
//! to bytes.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::credentials::documents::{json_str, timestamp};

/// `/latest/meta-data/iam/info`.
pub(crate) fn iam_info(
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
pub(crate) struct InstanceFacts {
    pub(crate) account_id: String,
    pub(crate) region: String,
    pub(crate) instance_id: String,
    pub(crate) started: DateTime<Utc>,
}

impl InstanceFacts {
    /// The availability zone: the region plus one letter, since botocore and
    /// the AWS CLI derive the region by dropping the last character.
    pub(crate) fn availability_zone(&self) -> String {
        format!("{}a", self.region)
    }
}

/// A stable, instance-id-shaped name derived from the token key (a hash,
/// so the key itself is not revealed).
pub(crate) fn instance_id(key: &[u8]) -> String {
    let digest = Sha256::new()
        .chain_update(b"imdsd instance-id\0")
        .chain_update(key)
        .finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("i-{}", &hex[..17])
}

/// `AIPA` + 17 characters, like a real instance profile id, derived from the
/// (already public) instance id so it is stable.
pub(crate) fn instance_profile_id(instance_id: &str) -> String {
    let tail: String = instance_id
        .trim_start_matches("i-")
        .to_uppercase()
        .chars()
        .take(17)
        .collect();
    format!("AIPA{tail:0>17}")
}

/// `/latest/dynamic/instance-identity/document`.
pub(crate) fn identity_document(facts: &InstanceFacts) -> String {
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
pub(crate) fn error_page(status: u16, reason: &str) -> String {
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

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
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
    fn instance_ids_are_stable_per_key_and_shaped_like_ec2s() {
        let id = instance_id(&[7; 32]);
        assert_eq!(id, instance_id(&[7; 32]));
        assert_ne!(id, instance_id(&[8; 32]));
        assert_eq!(id.len(), 19);
        assert!(id.starts_with("i-") && id[2..].bytes().all(|b| b.is_ascii_hexdigit()));
        let profile = instance_profile_id(&id);
        assert_eq!(profile.len(), 21);
        assert_eq!(profile, format!("AIPA{}", id[2..].to_uppercase()));
    }

    #[test]
    fn iam_info_is_the_json_botocore_reads_with_the_profile_and_time() {
        let body = iam_info(
            "arn:aws:iam::123456789012:instance-profile/dev",
            "AIPA0123456789ABCDEF0",
            at("2026-01-01T10:20:30Z"),
        );
        let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(doc["Code"], "Success");
        assert_eq!(doc["LastUpdated"], "2026-01-01T10:20:30Z");
        assert_eq!(
            doc["InstanceProfileArn"],
            "arn:aws:iam::123456789012:instance-profile/dev"
        );
        assert_eq!(doc["InstanceProfileId"], "AIPA0123456789ABCDEF0");
    }

    #[test]
    fn error_pages_are_imds_xhtml_naming_status_and_reason() {
        let page = error_page(404, "Not Found");
        assert!(page.starts_with("<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n"));
        assert!(page.contains("<title>404 - Not Found</title>"));
        assert!(page.contains("<h1>404 - Not Found</h1>"));
        assert!(page.ends_with("</html>\n"));
        assert_ne!(page, error_page(401, "Unauthorized"));
    }
}
