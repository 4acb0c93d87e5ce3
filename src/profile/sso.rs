//! IAM Identity Center (SSO) credentials: the login token that `aws sso
//! login` caches, and the portal's GetRoleCredentials.
//!
//! The token is read from `~/.aws/sso/cache/<sha1>.json`, keyed by the
//! `sso_session` name (or, for legacy profiles, the start URL), and renewed
//! with its refresh token when it can be (`sso_token`). When it has expired
//! for good, the error says to run `aws sso login`: the daemon cannot open
//! a browser for the user.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sha1::{Digest, Sha1};

use super::ProfileError;
use super::resolve::Sso;
use crate::credentials::Credentials;
use crate::environment::Environment;
use crate::secret::Secret;

/// Where `aws sso login` cached the token for `sso`.
pub(crate) fn cache_path(home: &Path, sso: &Sso) -> PathBuf {
    let key = sso.session.as_deref().unwrap_or(&sso.start_url);
    let digest = Sha1::digest(key.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    home.join(".aws/sso/cache").join(format!("{hex}.json"))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoleCredentialsResponse {
    role_credentials: RoleCredentials,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoleCredentials {
    access_key_id: String,
    secret_access_key: String,
    session_token: String,
    /// Milliseconds since the epoch.
    expiration: i64,
}

/// The portal: `AWS_ENDPOINT_URL_SSO`, else the region's.
pub(crate) fn portal(env: &Environment, region: &str) -> String {
    env.get("AWS_ENDPOINT_URL_SSO")
        .map(|e| e.trim_end_matches('/').to_string())
        .unwrap_or_else(|| format!("https://portal.sso.{region}.amazonaws.com"))
}

/// Parses GetRoleCredentials' answer.
pub(crate) fn parse_role_credentials(
    body: &str,
    profile: &str,
) -> Result<Credentials, ProfileError> {
    let malformed = |reason: String| ProfileError::SsoPortal {
        profile: profile.into(),
        reason,
        transient: true,
    };
    let r: RoleCredentialsResponse =
        serde_json::from_str(body).map_err(|e| malformed(crate::read::json_error(&e)))?;
    let c = r.role_credentials;
    let expiration = DateTime::from_timestamp_millis(c.expiration)
        .ok_or_else(|| malformed("bad expiration".into()))?;
    Ok(Credentials {
        access_key_id: c.access_key_id,
        secret_access_key: Secret::new(c.secret_access_key),
        session_token: Some(Secret::new(c.session_token)),
        expiration: Some(expiration),
    })
}

/// Reads the cached token and exchanges it for role credentials.
pub(crate) async fn role_credentials(
    http: &reqwest::Client,
    env: &Environment,
    sso: &Sso,
    now: DateTime<Utc>,
) -> Result<Credentials, ProfileError> {
    let home = env.get("HOME").map(PathBuf::from).unwrap_or_default();
    let path = cache_path(&home, sso);
    let token = super::sso_renewal::access_token(http, env, &path, sso, now).await?;
    let url = format!("{}/federation/credentials", portal(env, &sso.region));
    let portal_err = |reason: String, transient| ProfileError::SsoPortal {
        profile: sso.profile.clone(),
        reason,
        transient,
    };
    let response = http
        .get(&url)
        .query(&[
            ("role_name", sso.role_name.as_str()),
            ("account_id", sso.account_id.as_str()),
        ])
        .header("x-amz-sso_bearer_token", token.expose())
        .send()
        .await
        .map_err(|e| portal_err(format!("{url}: {e}"), true))?;
    let status = response.status().as_u16();
    let body = zeroize::Zeroizing::new(
        crate::read::body(response, crate::read::SMALL as usize)
            .await
            .map_err(|e| portal_err(e.to_string(), true))?,
    );
    match status {
        200 => parse_role_credentials(&body, &sso.profile),
        // 401 is a token the portal no longer accepts; 403 means this
        // user has no access to that role, which logging in will not fix.
        401 => Err(ProfileError::SsoExpired {
            profile: sso.profile.clone(),
        }),
        403 => Err(portal_err(
            format!(
                "no access to role {} in account {} (HTTP 403)",
                sso.role_name, sso.account_id
            ),
            false,
        )),
        s => Err(portal_err(
            format!("HTTP {s}"),
            super::sso_token::transient_status(s),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sso(session: Option<&str>) -> Sso {
        Sso {
            account_id: "123456789012".into(),
            role_name: "Dev".into(),
            region: "us-east-1".into(),
            start_url: "https://corp.awsapps.com/start".into(),
            session: session.map(String::from),
            profile: "p".into(),
        }
    }

    #[test]
    fn cache_is_keyed_like_the_cli() {
        // sha1("corp") and sha1 of the start URL, as botocore computes them.
        let p = cache_path(Path::new("/h"), &sso(Some("corp")));
        assert_eq!(
            p,
            Path::new("/h/.aws/sso/cache/ee0bfd2552fbd840c02cc48b6e823320543c450f.json")
        );
        let legacy = cache_path(Path::new("/h"), &sso(None));
        assert!(legacy.to_str().unwrap().ends_with(".json") && legacy != p);
    }

    #[test]
    fn parses_get_role_credentials() {
        let c = parse_role_credentials(
            r#"{"roleCredentials":{"accessKeyId":"ASIA","secretAccessKey":"s","sessionToken":"t","expiration":1767229200000}}"#,
            "p",
        )
        .unwrap();
        assert_eq!(
            c.expiration.unwrap().to_rfc3339(),
            "2026-01-01T01:00:00+00:00"
        );
    }
}
