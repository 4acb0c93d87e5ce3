//! The login token `aws sso login` caches in `~/.aws/sso/cache`, and its
//! refresh.
//!
//! With an `sso_session` the CLI v2 also caches a refresh token and the
//! OIDC client registration, and renews the access token with SSO-OIDC
//! `CreateToken` (grant type `refresh_token`) when it has less than 15
//! minutes left, so a login lasts for the whole session (often 8 to 12
//! hours, up to 90 days), not for the access token's ~1 hour. imdsd does
//! the same, and writes the renewed token back to the cache so the CLI and
//! SDKs see it too. Deciding is pure ([`plan`]); the call and the file
//! write are at the bottom.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::ProfileError;
use super::resolve::Sso;
use crate::environment::Environment;
use crate::secret::Secret;

/// A token with less than this left is renewed first (botocore's window).
pub(crate) const REFRESH_WINDOW: TimeDelta = TimeDelta::minutes(15);

/// The cache file's fields that matter here; the file keeps the rest.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CachedToken {
    access_token: String,
    expires_at: String,
    refresh_token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    registration_expires_at: Option<String>,
}

// Tokens and the client secret: never printed.
impl std::fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedToken")
            .field("expires_at", &self.expires_at)
            .field("refreshable", &self.refresh_token.is_some())
            .finish_non_exhaustive()
    }
}

/// What to do with a cached token at some moment.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TokenPlan {
    /// Use it as it is.
    Use,
    /// Renew it first; if that fails, it is still usable when `fallback`.
    Refresh { fallback: bool },
    /// It has expired and cannot be renewed: the user must log in.
    Expired,
    /// Not the JSON `aws sso login` writes: as good as no login.
    Unusable,
}

/// The plan for `token` at `now`.
pub(crate) fn plan(token: &CachedToken, now: DateTime<Utc>) -> TokenPlan {
    let Some(expires) = parse_time(&token.expires_at) else {
        return TokenPlan::Unusable;
    };
    let left = expires - now;
    if left >= REFRESH_WINDOW {
        return TokenPlan::Use;
    }
    if refreshable(token, now) {
        return TokenPlan::Refresh {
            fallback: left > TimeDelta::zero(),
        };
    }
    if left > TimeDelta::zero() {
        TokenPlan::Use
    } else {
        TokenPlan::Expired
    }
}

/// Whether the cache holds what CreateToken needs, with a registration
/// that has not expired.
fn refreshable(token: &CachedToken, now: DateTime<Utc>) -> bool {
    let registered = token
        .registration_expires_at
        .as_deref()
        .and_then(parse_time)
        .is_some_and(|until| until > now);
    registered
        && [&token.refresh_token, &token.client_id, &token.client_secret]
            .iter()
            .all(|v| v.as_deref().is_some_and(|v| !v.is_empty()))
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The cache file after a renewal: the new access token, its expiry (as
/// the CLI writes it) and, when CreateToken rotated it, the new refresh
/// token; every other field as it was.
pub(crate) fn renewed(
    mut cached: Map<String, Value>,
    renewal: &Renewal,
    now: DateTime<Utc>,
) -> Map<String, Value> {
    let expires = now + TimeDelta::seconds(renewal.expires_in.clamp(0, MAX_EXPIRES_IN));
    let set = |m: &mut Map<String, Value>, k: &str, v: String| {
        m.insert(k.into(), Value::String(v));
    };
    set(
        &mut cached,
        "accessToken",
        renewal.access_token.expose().into(),
    );
    set(
        &mut cached,
        "expiresAt",
        expires.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    );
    if let Some(refresh) = &renewal.refresh_token {
        set(&mut cached, "refreshToken", refresh.expose().into());
    }
    cached
}

/// The longest `expiresIn` believed (a year; SSO-OIDC gives about an
/// hour): a larger one would overflow the time arithmetic (a panic) or be
/// written as a year the CLI and imdsd cannot read back.
const MAX_EXPIRES_IN: i64 = 365 * 24 * 3600;

/// What CreateToken answered.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Renewal {
    access_token: Secret,
    expires_in: i64,
    refresh_token: Option<Secret>,
}

/// SSO-OIDC: `AWS_ENDPOINT_URL_SSO_OIDC`, else the region's.
pub(crate) fn oidc_endpoint(env: &Environment, region: &str) -> String {
    env.get("AWS_ENDPOINT_URL_SSO_OIDC")
        .map(|e| e.trim_end_matches('/').to_string())
        .unwrap_or_else(|| format!("https://oidc.{region}.amazonaws.com"))
}

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

/// A cache file's text as a JSON object, and the fields that matter;
/// `None` when it is not what `aws sso login` writes.
pub(crate) fn parse_cache(text: &str) -> Option<(Map<String, Value>, CachedToken)> {
    let object: Map<String, Value> = serde_json::from_str(text).ok()?;
    let token = CachedToken::deserialize(Value::Object(object.clone())).ok()?;
    Some((object, token))
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
        s => Err(failed(format!("HTTP {s}"), s >= 500 || s == 429)),
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

    fn at(text: &str) -> DateTime<Utc> {
        parse_time(text).unwrap()
    }

    fn token(expires_at: &str, refreshable_until: Option<&str>) -> CachedToken {
        CachedToken {
            access_token: "access".into(),
            expires_at: expires_at.into(),
            refresh_token: refreshable_until.map(|_| "refresh".into()),
            client_id: Some("client".into()),
            client_secret: Some("secret".into()),
            registration_expires_at: refreshable_until.map(String::from),
        }
    }

    #[test]
    fn a_token_is_renewed_in_its_last_15_minutes_when_it_can_be() {
        let now = at("2026-01-01T12:00:00Z");
        let later = Some("2026-03-01T00:00:00Z");
        assert_eq!(
            plan(&token("2026-01-01T12:15:00Z", later), now),
            TokenPlan::Use
        );
        assert_eq!(
            plan(&token("2026-01-01T12:14:59Z", later), now),
            TokenPlan::Refresh { fallback: true }
        );
        assert_eq!(
            plan(&token("2026-01-01T11:00:00Z", later), now),
            TokenPlan::Refresh { fallback: false }
        );
    }

    #[test]
    fn without_a_registration_it_is_used_until_it_expires() {
        let now = at("2026-01-01T12:00:00Z");
        assert_eq!(
            plan(&token("2026-01-01T12:05:00Z", None), now),
            TokenPlan::Use
        );
        assert_eq!(
            plan(&token("2026-01-01T12:00:00Z", None), now),
            TokenPlan::Expired
        );
        let lapsed = Some("2026-01-01T11:59:59Z");
        assert_eq!(
            plan(&token("2026-01-01T11:00:00Z", lapsed), now),
            TokenPlan::Expired
        );
        let mut no_secret = token("2026-01-01T11:00:00Z", Some("2026-03-01T00:00:00Z"));
        no_secret.client_secret = Some(String::new());
        assert_eq!(plan(&no_secret, now), TokenPlan::Expired);
        assert_eq!(plan(&token("yesterday", None), now), TokenPlan::Unusable);
    }

    #[test]
    fn a_renewal_keeps_every_other_field_of_the_cache() {
        let cached: Map<String, Value> = serde_json::from_str(
            r#"{"startUrl":"https://corp.awsapps.com/start","region":"us-east-1","accessToken":"old",
                "expiresAt":"2026-01-01T12:00:00Z","clientId":"c","clientSecret":"s",
                "registrationExpiresAt":"2026-03-01T00:00:00Z","refreshToken":"r1"}"#,
        )
        .unwrap();
        let renewal: Renewal =
            serde_json::from_str(r#"{"accessToken":"new","expiresIn":3600,"refreshToken":"r2","tokenType":"Bearer"}"#)
                .unwrap();
        let out = renewed(cached.clone(), &renewal, at("2026-01-01T11:50:00Z"));
        assert_eq!(out["accessToken"], "new");
        assert_eq!(out["expiresAt"], "2026-01-01T12:50:00Z");
        assert_eq!(out["refreshToken"], "r2");
        assert_eq!(out["startUrl"], cached["startUrl"]);
        assert_eq!(
            out["registrationExpiresAt"],
            cached["registrationExpiresAt"]
        );
        // Without a rotated refresh token the old one stays.
        let renewal: Renewal =
            serde_json::from_str(r#"{"accessToken":"new","expiresIn":3600}"#).unwrap();
        assert_eq!(
            renewed(cached, &renewal, at("2026-01-01T11:50:00Z"))["refreshToken"],
            "r1"
        );
    }

    #[test]
    fn a_renewal_believes_expires_in_for_a_year_at_most() {
        // `TimeDelta::seconds` panics past i64::MAX / 1000, and adding
        // centuries wrote an `expiresAt` with a five-digit year.
        let now = at("2026-01-01T00:00:00Z");
        for expires_in in [i64::MAX, 9_300_000_000_000_000, 400 * 86_400, 366 * 86_400] {
            let renewal: Renewal = serde_json::from_str(&format!(
                r#"{{"accessToken":"new","expiresIn":{expires_in}}}"#
            ))
            .unwrap();
            let out = renewed(Map::new(), &renewal, now);
            assert_eq!(out["expiresAt"], "2027-01-01T00:00:00Z", "{expires_in}");
        }
        let renewal: Renewal =
            serde_json::from_str(r#"{"accessToken":"new","expiresIn":-5}"#).unwrap();
        assert_eq!(
            renewed(Map::new(), &renewal, now)["expiresAt"],
            "2026-01-01T00:00:00Z"
        );
    }

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

    #[test]
    fn debug_never_shows_the_tokens() {
        let printed = format!(
            "{:?}",
            token("2026-01-01T12:00:00Z", Some("2026-03-01T00:00:00Z"))
        );
        for secret in ["\"access\"", "\"refresh\"", "\"secret\""] {
            assert!(!printed.contains(secret), "{printed}");
        }
        assert!(printed.contains("refreshable: true"), "{printed}");
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
        let now = at("2026-01-01T00:00:00Z");
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
