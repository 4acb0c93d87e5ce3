//! The STS request for each flow, built from config and the secrets fetched
//! for this attempt (MFA code, web-identity token, SAML assertion). Pure.

use std::time::Duration;

use crate::config::{AssumeRole, Saml, SessionPolicy, WebIdentity};
use crate::secret::Secret;
use crate::sts::Query;

/// `AssumeRole`, with every optional parameter that is configured.
pub(crate) fn assume_role(
    a: &AssumeRole,
    duration: Duration,
    mfa_code: Option<Secret>,
) -> Query {
    let mut q = Query::new("AssumeRole")
        .param("RoleArn", &a.role_arn)
        .param("RoleSessionName", &a.session_name)
        .param("DurationSeconds", duration.as_secs().to_string())
        .optional("ExternalId", a.external_id.as_deref())
        .optional("SourceIdentity", a.source_identity.as_deref());
    q = session_policy(q, &a.session);
    for (i, (key, value)) in a.tags.iter().enumerate() {
        q = q
            .param(format!("Tags.member.{}.Key", i + 1), key)
            .param(format!("Tags.member.{}.Value", i + 1), value);
    }
    q = q.list(
        "TransitiveTagKeys",
        a.transitive_tag_keys.iter().map(String::as_str),
    );
    with_mfa(q, a.mfa.as_ref().map(|m| m.serial.as_str()), mfa_code)
}

/// `AssumeRoleWithWebIdentity` (unsigned).
pub(crate) fn web_identity(w: &WebIdentity, duration: Duration, token: Secret) -> Query {
    let q = Query::new("AssumeRoleWithWebIdentity")
        .param("RoleArn", &w.role_arn)
        .param("RoleSessionName", &w.session_name)
        .param("DurationSeconds", duration.as_secs().to_string())
        .secret_param("WebIdentityToken", token);
    session_policy(q, &w.session)
}

/// `AssumeRoleWithSAML` (unsigned).
pub(crate) fn saml(s: &Saml, duration: Duration, assertion: Secret) -> Query {
    let q = Query::new("AssumeRoleWithSAML")
        .param("RoleArn", &s.role_arn)
        .param("PrincipalArn", &s.principal_arn)
        .param("DurationSeconds", duration.as_secs().to_string())
        .secret_param("SAMLAssertion", assertion);
    session_policy(q, &s.session)
}

/// `GetSessionToken`, with an MFA device when configured.
pub(crate) fn session_token(
    duration: Duration,
    mfa_serial: Option<&str>,
    mfa_code: Option<Secret>,
) -> Query {
    let q = Query::new("GetSessionToken")
        .param("DurationSeconds", duration.as_secs().to_string());
    with_mfa(q, mfa_serial, mfa_code)
}

fn session_policy(mut q: Query, s: &SessionPolicy) -> Query {
    q = q.optional("Policy", s.policy.as_deref());
    for (i, arn) in s.policy_arns.iter().enumerate() {
        q = q.param(format!("PolicyArns.member.{}.arn", i + 1), arn);
    }
    q
}

fn with_mfa(q: Query, serial: Option<&str>, code: Option<Secret>) -> Query {
    match (serial, code) {
        (Some(serial), Some(code)) => q
            .param("SerialNumber", serial)
            .secret_param("TokenCode", code),
        _ => q,
    }
}

/// Whether `code` looks like a TOTP code STS accepts: exactly six digits.
pub(crate) fn valid_mfa_code(code: &str) -> bool {
    code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Mfa, SourceSpec};

    fn body(q: &Query) -> String {
        String::from_utf8(q.body().as_ref().to_vec()).unwrap()
    }

    #[test]
    fn assume_role_carries_every_parameter() {
        let a = AssumeRole {
            role_arn: "arn:aws:iam::123456789012:role/r".into(),
            source: SourceSpec::Env,
            session_name: "s".into(),
            external_id: Some("ext".into()),
            mfa: Some(Mfa {
                serial: "arn:aws:iam::123456789012:mfa/u".into(),
                command: None,
            }),
            session: SessionPolicy {
                policy: Some("{}".into()),
                policy_arns: vec!["arn:aws:iam::aws:policy/ReadOnlyAccess".into()],
            },
            tags: vec![("team".into(), "core".into()), ("env".into(), "dev".into())],
            transitive_tag_keys: vec!["team".into()],
            source_identity: Some("alice".into()),
        };
        let b = body(&assume_role(
            &a,
            Duration::from_secs(3600),
            Some(Secret::new("123456")),
        ));
        for part in [
            "Action=AssumeRole",
            "RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fr",
            "RoleSessionName=s",
            "DurationSeconds=3600",
            "ExternalId=ext",
            "SourceIdentity=alice",
            "Policy=%7B%7D",
            "PolicyArns.member.1.arn=arn%3Aaws%3Aiam%3A%3Aaws%3Apolicy%2FReadOnlyAccess",
            "Tags.member.1.Key=team",
            "Tags.member.1.Value=core",
            "Tags.member.2.Key=env",
            "TransitiveTagKeys.member.1=team",
            "SerialNumber=arn%3Aaws%3Aiam%3A%3A123456789012%3Amfa%2Fu",
            "TokenCode=123456",
        ] {
            assert!(b.split('&').any(|p| p == part), "missing {part} in {b}");
        }
    }

    #[test]
    fn unsigned_flows_carry_their_secret() {
        let w = WebIdentity {
            role_arn: "arn:aws:iam::123456789012:role/r".into(),
            token_file: "/t".into(),
            session_name: "s".into(),
            session: SessionPolicy::default(),
        };
        let b = body(&web_identity(
            &w,
            Duration::from_secs(900),
            Secret::new("eyJ.a.b"),
        ));
        assert!(
            b.contains("Action=AssumeRoleWithWebIdentity")
                && b.contains("WebIdentityToken=eyJ.a.b"),
            "{b}"
        );
        let q = session_token(
            Duration::from_secs(129_600),
            Some("arn:aws:iam::1:mfa/u"),
            Some(Secret::new("000111")),
        );
        let b = body(&q);
        assert!(
            b.contains("DurationSeconds=129600") && b.contains("TokenCode=000111"),
            "{b}"
        );
        assert!(
            !body(&session_token(Duration::from_secs(900), None, None))
                .contains("SerialNumber")
        );
    }

    #[test]
    fn mfa_codes_are_six_digits() {
        assert!(valid_mfa_code("012345"));
        for bad in ["12345", "1234567", "12345a", " 12345", ""] {
            assert!(!valid_mfa_code(bad), "{bad}");
        }
    }
}
