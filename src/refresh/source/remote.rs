//! Credentials from the platform this daemon runs on: the EC2 instance
//! metadata service (`source = "imds"`) or the ECS/EKS container
//! credentials endpoint (`source = "container"`), read the way the SDKs do.
//! A source that points back at one of this daemon's own listeners is
//! refused: it would serve itself.

use std::net::SocketAddr;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::credentials::Credentials;
use crate::environment::Environment;
use crate::secret::Secret;

const EC2_ENDPOINT: &str = "http://169.254.169.254";
const ECS_HOST: &str = "http://169.254.170.2";

/// Why the platform gave no credentials.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RemoteError {
    #[error(
        "source \"{source_name}\": {endpoint} is this daemon's own listener; it cannot be its own source"
    )]
    SelfReference {
        source_name: &'static str,
        endpoint: String,
    },
    #[error(
        "source \"container\": neither AWS_CONTAINER_CREDENTIALS_RELATIVE_URI nor AWS_CONTAINER_CREDENTIALS_FULL_URI is set"
    )]
    NoContainerUri,
    #[error("source \"{source_name}\": `{url}` is not a valid URL")]
    BadUrl {
        source_name: &'static str,
        url: String,
    },
    #[error("source \"{source_name}\": cannot read the token file {path}: {reason}")]
    TokenFile {
        source_name: &'static str,
        path: String,
        reason: String,
    },
    #[error("source \"{source_name}\": {url} could not be reached: {reason}")]
    Transport {
        source_name: &'static str,
        url: String,
        reason: String,
    },
    #[error("source \"{source_name}\": {url} answered HTTP {status}{detail}")]
    Status {
        source_name: &'static str,
        url: String,
        status: u16,
        /// `: Code: Message` from a JSON error body, else empty.
        detail: String,
    },
    #[error("source \"{source_name}\": the answer is not credentials: {reason}")]
    Malformed {
        source_name: &'static str,
        reason: String,
    },
}

#[derive(Deserialize)]
struct JsonCredentials {
    #[serde(rename = "Code")]
    code: Option<String>,
    #[serde(rename = "AccessKeyId")]
    access_key_id: String,
    #[serde(rename = "SecretAccessKey")]
    secret_access_key: String,
    #[serde(rename = "Token")]
    token: String,
    #[serde(rename = "Expiration")]
    expiration: String,
}

/// Parses the JSON both endpoints answer with.
pub(crate) fn parse_json(
    source_name: &'static str,
    body: &str,
) -> Result<Credentials, RemoteError> {
    let malformed = |reason: String| RemoteError::Malformed {
        source_name,
        reason,
    };
    let c: JsonCredentials =
        serde_json::from_str(body).map_err(|e| malformed(crate::read::json_error(&e)))?;
    if let Some(code) = c.code.as_deref().filter(|c| *c != "Success") {
        return Err(malformed(format!("Code is {code}")));
    }
    let expiration: DateTime<Utc> = DateTime::parse_from_rfc3339(&c.expiration)
        .map_err(|_| malformed("Expiration is not RFC 3339".into()))?
        .with_timezone(&Utc);
    Ok(Credentials {
        access_key_id: c.access_key_id,
        secret_access_key: Secret::new(c.secret_access_key),
        session_token: Some(Secret::new(c.token)),
        expiration: Some(expiration),
    })
}

/// `: Code: Message` from a JSON error body (`{"Code":..,"Message":..}`,
/// what imdsd and the ECS agent send), cut short; empty otherwise.
fn error_detail(body: &str) -> String {
    #[derive(Deserialize)]
    struct ErrorBody {
        #[serde(rename = "Code", alias = "code")]
        code: Option<String>,
        #[serde(rename = "Message", alias = "message")]
        message: Option<String>,
    }
    let Ok(e) = serde_json::from_str::<ErrorBody>(body) else {
        return String::new();
    };
    let parts: Vec<String> = [e.code, e.message].into_iter().flatten().collect();
    if parts.is_empty() {
        return String::new();
    }
    let text: String = parts.join(": ").chars().take(300).collect();
    format!(": {text}")
}

/// The container endpoint URL and the Authorization value, from the
/// environment as the SDKs read it (RELATIVE_URI wins; the token file is
/// re-read every time and wins over the token variable).
pub(crate) fn container_request(
    env: &Environment,
) -> Result<(String, Option<Secret>), RemoteError> {
    let url = match (
        env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
        env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
    ) {
        (Some(rel), _) => format!("{ECS_HOST}{rel}"),
        (None, Some(full)) => full.to_string(),
        (None, None) => return Err(RemoteError::NoContainerUri),
    };
    let token = match env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
        Some(path) => Some(Secret::new(
            crate::read::file(Path::new(path), crate::read::SMALL)
                .map_err(|e| RemoteError::TokenFile {
                    source_name: "container",
                    path: path.into(),
                    reason: e.to_string(),
                })?
                .trim_end()
                .to_string(),
        )),
        None => env
            .get("AWS_CONTAINER_AUTHORIZATION_TOKEN")
            .map(Secret::new),
    };
    Ok((url, token))
}

/// Refuses a URL whose host and port are one of `own`.
fn not_self(
    source_name: &'static str,
    url: &str,
    own: &[SocketAddr],
) -> Result<reqwest::Url, RemoteError> {
    let parsed = reqwest::Url::parse(url).map_err(|_| RemoteError::BadUrl {
        source_name,
        url: url.into(),
    })?;
    let port = parsed.port_or_known_default().unwrap_or(80);
    let host = parsed
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let ip: Option<std::net::IpAddr> = if host.eq_ignore_ascii_case("localhost") {
        Some(std::net::Ipv4Addr::LOCALHOST.into())
    } else {
        host.parse().ok()
    };
    if let Some(ip) = ip
        && own
            .iter()
            .any(|a| a.port() == port && (a.ip() == ip || (a.ip().is_unspecified())))
    {
        return Err(RemoteError::SelfReference {
            source_name,
            endpoint: format!("{host}:{port}"),
        });
    }
    Ok(parsed)
}

fn transport(
    source_name: &'static str,
    url: &reqwest::Url,
    e: reqwest::Error,
) -> RemoteError {
    RemoteError::Transport {
        source_name,
        url: url.to_string(),
        reason: e.to_string(),
    }
}

async fn text(
    source_name: &'static str,
    req: reqwest::RequestBuilder,
    url: &reqwest::Url,
) -> Result<String, RemoteError> {
    let resp = req
        .send()
        .await
        .map_err(|e| transport(source_name, url, e))?;
    let status = resp.status().as_u16();
    if status != 200 {
        // Error bodies carry no credentials: read what they say.
        let body = crate::read::body(resp, 4096).await.unwrap_or_default();
        return Err(RemoteError::Status {
            source_name,
            url: url.to_string(),
            status,
            detail: error_detail(&body),
        });
    }
    crate::read::body(resp, crate::read::SMALL as usize)
        .await
        .map_err(|e| transport(source_name, url, e))
}

/// IMDSv2: token, role name, credentials.
pub(crate) async fn imds(
    http: &reqwest::Client,
    env: &Environment,
    own: &[SocketAddr],
) -> Result<Credentials, RemoteError> {
    let base = env
        .get("AWS_EC2_METADATA_SERVICE_ENDPOINT")
        .unwrap_or(EC2_ENDPOINT)
        .trim_end_matches('/')
        .to_string();
    let n = "imds";
    let token_url = not_self(n, &format!("{base}/latest/api/token"), own)?;
    let token = text(
        n,
        http.put(token_url.clone())
            .header("x-aws-ec2-metadata-token-ttl-seconds", "300"),
        &token_url,
    )
    .await?;
    let list_url = not_self(
        n,
        &format!("{base}/latest/meta-data/iam/security-credentials/"),
        own,
    )?;
    let listing = text(
        n,
        http.get(list_url.clone())
            .header("x-aws-ec2-metadata-token", &token),
        &list_url,
    )
    .await?;
    let role = listing.lines().next().unwrap_or_default().trim();
    if role.is_empty() {
        return Err(RemoteError::Malformed {
            source_name: n,
            reason: "the instance has no IAM role".into(),
        });
    }
    let creds_url = not_self(
        n,
        &format!("{base}/latest/meta-data/iam/security-credentials/{role}"),
        own,
    )?;
    let body = zeroize::Zeroizing::new(
        text(
            n,
            http.get(creds_url.clone())
                .header("x-aws-ec2-metadata-token", &token),
            &creds_url,
        )
        .await?,
    );
    parse_json(n, &body)
}

/// The ECS/EKS container credentials endpoint.
pub(crate) async fn container(
    http: &reqwest::Client,
    env: &Environment,
    own: &[SocketAddr],
) -> Result<Credentials, RemoteError> {
    let (url, token) = container_request(env)?;
    let url = not_self("container", &url, own)?;
    let mut req = http.get(url.clone()).header("accept", "application/json");
    if let Some(token) = &token {
        req = req.header("authorization", token.expose());
    }
    let body = zeroize::Zeroizing::new(text("container", req, &url).await?);
    parse_json("container", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_imds_and_container_json() {
        let c = parse_json("imds", r#"{"Code":"Success","AccessKeyId":"ASIA","SecretAccessKey":"s","Token":"t","Expiration":"2026-01-01T00:00:00Z","Type":"AWS-HMAC"}"#).unwrap();
        assert_eq!(c.access_key_id, "ASIA");
        let c = parse_json("container", r#"{"AccessKeyId":"ASIA","SecretAccessKey":"s","Token":"t","Expiration":"2026-01-01T00:00:00Z","AccountId":"1"}"#).unwrap();
        assert!(c.expiration.is_some());
        assert!(
            parse_json(
                "imds",
                r#"{"Code":"AssumeRoleUnauthorizedAccess","Message":"no"}"#
            )
            .is_err()
        );
    }

    #[test]
    fn container_uri_and_token_precedence() {
        let env = Environment::from_pairs([
            (
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "/v2/credentials/x",
            ),
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://127.0.0.1:9/creds",
            ),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "env-token"),
        ]);
        let (url, token) = container_request(&env).unwrap();
        assert_eq!(url, "http://169.254.170.2/v2/credentials/x");
        assert_eq!(token.unwrap().expose(), "env-token");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t");
        std::fs::write(&file, "file-token\n").unwrap();
        let env = Environment::from_pairs([
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://127.0.0.1:9/creds",
            ),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "env-token"),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                file.to_str().unwrap(),
            ),
        ]);
        let (url, token) = container_request(&env).unwrap();
        assert_eq!(url, "http://127.0.0.1:9/creds");
        assert_eq!(token.unwrap().expose(), "file-token");
        assert!(matches!(
            container_request(&Environment::default()),
            Err(RemoteError::NoContainerUri)
        ));
    }

    #[test]
    fn json_error_bodies_say_what_went_wrong() {
        assert_eq!(
            error_detail(r#"{"Code":"AccessDenied","Message":"not your role"}"#),
            ": AccessDenied: not your role"
        );
        assert_eq!(error_detail(r#"{"message":"x"}"#), ": x");
        assert_eq!(error_detail("<html>"), "");
        assert_eq!(error_detail("{}"), "");
    }

    #[test]
    fn own_listeners_are_refused() {
        let own: Vec<SocketAddr> = vec!["127.0.0.1:16925".parse().unwrap()];
        assert!(matches!(
            not_self("imds", "http://127.0.0.1:16925/latest", &own),
            Err(RemoteError::SelfReference { .. })
        ));
        assert!(matches!(
            not_self("imds", "http://localhost:16925/", &own),
            Err(RemoteError::SelfReference { .. })
        ));
        assert!(not_self("imds", "http://127.0.0.1:16926/", &own).is_ok());
        let own: Vec<SocketAddr> = vec!["169.254.169.254:80".parse().unwrap()];
        assert!(not_self("imds", "http://169.254.169.254", &own).is_err());
    }
}
