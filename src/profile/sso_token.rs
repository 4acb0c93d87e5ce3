//! The login token `aws sso login` caches in `~/.aws/sso/cache`, and its
//! refresh.
//!
//! With an `sso_session` the CLI v2 also caches a refresh token and the
//! OIDC client registration, and renews the access token with SSO-OIDC
//! `CreateToken` (grant type `refresh_token`) when it has less than 15
//! minutes left, so a login lasts for the whole session (often 8 to 12
//! hours, up to 90 days), not for the access token's ~1 hour. imdsd does
//! the same, and writes the renewed token back to the cache so the CLI and
//! SDKs see it too. This module decides, purely ([`plan`], [`renewed`]);
//! reading the cache, the call and the write are `sso_renewal`'s.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::environment::Environment;
use crate::secret::Secret;

/// A token with less than this left is renewed first (botocore's window).
pub(crate) const REFRESH_WINDOW: TimeDelta = TimeDelta::minutes(15);

/// The cache file's fields that matter here; the file keeps the rest.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CachedToken {
    pub(super) access_token: String,
    pub(super) expires_at: String,
    pub(super) refresh_token: Option<String>,
    pub(super) client_id: Option<String>,
    pub(super) client_secret: Option<String>,
    pub(super) registration_expires_at: Option<String>,
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
    pub(super) access_token: Secret,
    pub(super) expires_in: i64,
    pub(super) refresh_token: Option<Secret>,
}

/// SSO-OIDC: `AWS_ENDPOINT_URL_SSO_OIDC`, else the region's.
pub(crate) fn oidc_endpoint(env: &Environment, region: &str) -> String {
    env.get("AWS_ENDPOINT_URL_SSO_OIDC")
        .map(|e| e.trim_end_matches('/').to_string())
        .unwrap_or_else(|| format!("https://oidc.{region}.amazonaws.com"))
}

/// A cache file's text as a JSON object, and the fields that matter;
/// `None` when it is not what `aws sso login` writes.
pub(crate) fn parse_cache(text: &str) -> Option<(Map<String, Value>, CachedToken)> {
    let object: Map<String, Value> = serde_json::from_str(text).ok()?;
    let token = CachedToken::deserialize(Value::Object(object.clone())).ok()?;
    Some((object, token))
}

/// Whether an SSO answer with this HTTP status is worth retrying soon
/// (the portal's and SSO-OIDC's alike): throttling and server errors.
pub(crate) fn transient_status(status: u16) -> bool {
    status >= 500 || status == 429
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
    fn at_the_very_expiry_a_renewal_has_no_fallback_and_needs_a_live_registration() {
        let now = at("2026-01-01T12:00:00Z");
        let expiring_now = "2026-01-01T12:00:00Z";
        assert_eq!(
            plan(&token(expiring_now, Some("2026-03-01T00:00:00Z")), now),
            TokenPlan::Refresh { fallback: false }
        );
        assert_eq!(
            plan(
                &token("2026-01-01T12:00:01Z", Some("2026-03-01T00:00:00Z")),
                now
            ),
            TokenPlan::Refresh { fallback: true }
        );
        // A registration that ends this instant can no longer renew.
        assert_eq!(
            plan(&token(expiring_now, Some(expiring_now)), now),
            TokenPlan::Expired
        );
    }

    #[test]
    fn sso_oidc_is_the_regions_unless_the_environment_names_one() {
        assert_eq!(
            oidc_endpoint(&Environment::default(), "eu-west-1"),
            "https://oidc.eu-west-1.amazonaws.com"
        );
        let env = Environment::from_pairs([(
            "AWS_ENDPOINT_URL_SSO_OIDC",
            "http://127.0.0.1:9/",
        )]);
        assert_eq!(oidc_endpoint(&env, "eu-west-1"), "http://127.0.0.1:9");
    }

    #[test]
    fn throttling_and_server_errors_are_transient() {
        for status in [429, 500, 502, 503] {
            assert!(transient_status(status), "{status}");
        }
        for status in [400, 401, 403, 404, 428, 499] {
            assert!(!transient_status(status), "{status}");
        }
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
}
