//! Renewing the cached `aws sso login` token (see `sso_token` for when):
//! reading the cache file, SSO-OIDC `CreateToken`, and writing the file
//! back atomically. I/O: tested against real files here and a fake
//! SSO-OIDC in tests/it.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::ProfileError;
use super::resolve::Sso;
use super::sso_token::{
    CachedToken, Renewal, TokenPlan, oidc_endpoint, parse_cache, plan, renewed,
    transient_status,
};
use crate::environment::Environment;
use crate::secret::Secret;

/// Roles sharing an SSO session renew its token one at a time; the second
/// finds it renewed (refresh tokens may be single-use).
static RENEWING: LazyLock<tokio::sync::Mutex<()>> =
    LazyLock::new(|| tokio::sync::Mutex::new(()));

/// The access token for `sso` from the cache at `path`, renewed first when
/// it is about to expire and can be.
pub(crate) async fn access_token(
    http: &reqwest::Client,
    env: &Environment,
    path: &Path,
    sso: &Sso,
    now: DateTime<Utc>,
) -> Result<Secret, ProfileError> {
    let (cached, token) = read(path, sso)?;
    let fallback = match plan(&token, now) {
        TokenPlan::Use => return Ok(Secret::new(token.access_token)),
        TokenPlan::Expired => return Err(expired(sso)),
        TokenPlan::Unusable => return Err(not_logged_in(path, sso)),
        TokenPlan::Refresh { fallback } => fallback,
    };
    let _one_at_a_time = RENEWING.lock().await;
    // Another role may have renewed it while we waited.
    let (cached, token) = match read(path, sso)? {
        (_, fresh) if plan(&fresh, now) == TokenPlan::Use => {
            return Ok(Secret::new(fresh.access_token));
        }
        _ => (cached, token),
    };
    match renew(http, env, sso, &token).await {
        Ok(renewal) => {
            let access = Secret::new(renewal.access_token.expose());
            write(path, renewed(cached, &renewal, now))
                .map_err(|e| tracing::warn!(path = %path.display(), error = %e, "could not save the renewed SSO token"))
                .ok();
            tracing::info!(profile = %sso.profile, "renewed the SSO access token");
            Ok(access)
        }
        Err(e) if fallback => {
            tracing::warn!(profile = %sso.profile, error = %e, "could not renew the SSO access token; using it while it lasts");
            Ok(Secret::new(token.access_token))
        }
        Err(e) => Err(e),
    }
}

fn not_logged_in(path: &Path, sso: &Sso) -> ProfileError {
    ProfileError::SsoNotLoggedIn {
        profile: sso.profile.clone(),
        path: path.to_path_buf(),
    }
}

fn expired(sso: &Sso) -> ProfileError {
    ProfileError::SsoExpired {
        profile: sso.profile.clone(),
    }
}

/// The cache file as a JSON object, and the fields that matter.
fn read(
    path: &Path,
    sso: &Sso,
) -> Result<(Map<String, Value>, CachedToken), ProfileError> {
    let text = zeroize::Zeroizing::new(
        crate::read::file(path, crate::read::SMALL)
            .map_err(|_| not_logged_in(path, sso))?,
    );
    parse_cache(&text).ok_or_else(|| not_logged_in(path, sso))
}

/// SSO-OIDC CreateToken with the refresh token. A refused grant means the
/// session is over: log in again.
async fn renew(
    http: &reqwest::Client,
    env: &Environment,
    sso: &Sso,
    token: &CachedToken,
) -> Result<Renewal, ProfileError> {
    let url = format!("{}/token", oidc_endpoint(env, &sso.region));
    let failed = |reason: String, transient| ProfileError::SsoPortal {
        profile: sso.profile.clone(),
        reason: format!("renewing the access token: {reason}"),
        transient,
    };
    let body = zeroize::Zeroizing::new(
        serde_json::json!({
            "grantType": "refresh_token",
            "clientId": token.client_id,
            "clientSecret": token.client_secret,
            "refreshToken": token.refresh_token,
        })
        .to_string(),
    );
    let response = http
        .post(&url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| failed(format!("{url}: {e}"), true))?;
    let status = response.status().as_u16();
    let answer = zeroize::Zeroizing::new(
        crate::read::body(response, crate::read::SMALL as usize)
            .await
            .map_err(|e| failed(e.to_string(), true))?,
    );
    match status {
        200 => serde_json::from_str(&answer)
            .map_err(|e| failed(crate::read::json_error(&e), true)),
        400 | 401 => Err(expired(sso)),
        s => Err(failed(format!("HTTP {s}"), transient_status(s))),
    }
}

/// Replaces the cache file atomically (a temporary file in the same
/// directory, mode 0600, renamed over it): a reader sees the old token or
/// the new one, never half of each.
fn write(path: &Path, object: Map<String, Value>) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let text = zeroize::Zeroizing::new(Value::Object(object).to_string());
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temp: PathBuf = dir.join(format!(".{name}.imdsd-{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)?;
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&temp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_is_replaced_whole_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.json");
        std::fs::write(&path, "{}").unwrap();
        let mut object = Map::new();
        object.insert("accessToken".into(), Value::String("new".into()));
        write(&path, object).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            r#"{"accessToken":"new"}"#
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
    }

    fn sso() -> Sso {
        Sso {
            account_id: "123456789012".into(),
            role_name: "Dev".into(),
            region: "us-east-1".into(),
            start_url: "https://corp.awsapps.com/start".into(),
            session: Some("corp".into()),
            profile: "p".into(),
        }
    }

    /// No renewal is due in any of these, so nothing is sent anywhere.
    #[tokio::test]
    async fn expired_and_missing_tokens_say_run_aws_sso_login() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.json");
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let http = reqwest::Client::new();
        let env = Environment::default();
        let sso = sso();
        let get = || access_token(&http, &env, &path, &sso, now);
        let err = get().await.unwrap_err();
        assert!(
            err.to_string().contains("aws sso login --profile p"),
            "{err}"
        );
        std::fs::write(
            &path,
            r#"{"accessToken":"tok","expiresAt":"2025-12-31T23:00:00Z"}"#,
        )
        .unwrap();
        let err = get().await.unwrap_err();
        assert!(matches!(err, ProfileError::SsoExpired { .. }), "{err}");
        std::fs::write(
            &path,
            r#"{"accessToken":"tok","expiresAt":"2026-01-01T08:00:00Z","region":"us-east-1"}"#,
        )
        .unwrap();
        assert_eq!(get().await.unwrap().expose(), "tok");
    }
}
