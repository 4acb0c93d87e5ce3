//! Exact response bodies of the IMDS protocol, besides the credentials
//! document (`credentials::documents`). Pure functions from plain values
//! to bytes.

use chrono::{DateTime, Utc};

use crate::credentials::documents::{json_str, timestamp};

/// `{"Code":...,"Message":...}`: the body of a 503 when no usable
/// credentials are left.
pub(crate) fn error_json(code: &str, message: &str) -> String {
    serde_json::json!({ "Code": code, "Message": message }).to_string()
}

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
    fn error_json_escapes() {
        assert_eq!(
            error_json("A", "b \"c\""),
            r#"{"Code":"A","Message":"b \"c\""}"#
        );
    }
}
