//! One container listener's request handling: guard, route, token check,
//! answer.
//!
//! The body is rendered when credentials are published, so the hot path is
//! a few header lookups, a constant-time compare, an atomic load and a
//! refcount bump. Every error is `{"Code","Message"}` JSON, which the SDKs
//! show their users: 403 for a missing or wrong `Authorization` (not
//! retried by SDKs), 404 for an unknown role, 503 when the role has nothing
//! servable.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use http::header::{AUTHORIZATION, HeaderName};
use http::{HeaderMap, Request, StatusCode};

use super::route::{Route, route};
use super::tokens::RoleToken;
use crate::audit::{Audit, Vend};
use crate::clock::SharedClock;
use crate::creds::store::RoleSlot;
use crate::metrics::{RequestKind, RequestStats};
use crate::server::Client;
use crate::server::guard::{self, HostAllowList, Refusal};
use crate::server::response::{self, HttpResponse};

const FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// One role on a container listener.
#[derive(Debug, Clone)]
pub(crate) struct ServedRole {
    pub(crate) slot: Arc<RoleSlot>,
    pub(crate) token: RoleToken,
}

/// What one container listener serves and how.
#[derive(Debug)]
pub(crate) struct Endpoint {
    roles: BTreeMap<String, ServedRole>,
    allow_uids: Option<Vec<u32>>,
    hosts: HostAllowList,
    clock: SharedClock,
    wait_limit: Duration,
    stats: Arc<RequestStats>,
    listener: SocketAddr,
    audit: Audit,
}

/// Everything needed to build an [`Endpoint`].
pub(crate) struct EndpointSpec {
    pub(crate) roles: BTreeMap<String, ServedRole>,
    pub(crate) allow_uids: Option<Vec<u32>>,
    pub(crate) hosts: HostAllowList,
    pub(crate) clock: SharedClock,
    pub(crate) wait_limit: Duration,
    /// The listener's counters; kept across reloads.
    pub(crate) stats: Arc<RequestStats>,
    /// The listener's address, for the audit trail.
    pub(crate) listener: SocketAddr,
    pub(crate) audit: Audit,
}

impl Endpoint {
    pub(crate) fn new(spec: EndpointSpec) -> Self {
        Endpoint {
            roles: spec.roles,
            allow_uids: spec.allow_uids,
            hosts: spec.hosts,
            clock: spec.clock,
            wait_limit: spec.wait_limit,
            stats: spec.stats,
            listener: spec.listener,
            audit: spec.audit,
        }
    }

    /// The roles served, with their tokens (a reload builds on them).
    pub(crate) fn roles(&self) -> &BTreeMap<String, ServedRole> {
        &self.roles
    }

    /// Answers one request.
    pub(crate) async fn respond<B>(
        &self,
        req: Request<B>,
        client: &Client,
    ) -> HttpResponse {
        let (kind, response) = self.answer(req, client).await;
        self.stats.record(kind, response.status());
        response
    }

    async fn answer<B>(
        &self,
        req: Request<B>,
        client: &Client,
    ) -> (RequestKind, HttpResponse) {
        let (parts, _body) = req.into_parts();
        if let Some(refused) = refusal(&self.hosts, &parts.uri, &parts.headers) {
            return (RequestKind::Refused, refused);
        }
        match route(&parts.method, parts.uri.path()) {
            Route::Credentials(name) => (
                RequestKind::Credentials,
                self.credentials(name, &parts.headers, client).await,
            ),
            Route::MethodNotAllowed => (
                RequestKind::MethodNotAllowed,
                response::json_error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "MethodNotAllowed",
                    "only GET is served",
                ),
            ),
            Route::NotFound => (
                RequestKind::NotFound,
                response::json_error(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    "credentials are served at /role/NAME",
                ),
            ),
        }
    }

    /// `/role/NAME`: the token check, then the role's current answer.
    async fn credentials(
        &self,
        name: &str,
        headers: &HeaderMap,
        client: &Client,
    ) -> HttpResponse {
        let Some(role) = self.roles.get(name) else {
            let message = format!("no role `{name}` is served on this listener");
            return response::json_error(StatusCode::NOT_FOUND, "NotFound", &message);
        };
        let now = self.clock.now();
        if let Some(denied) = check_authorization(role, name, headers, now) {
            return denied;
        }
        match role.slot.servable(&self.clock, now, self.wait_limit).await {
            Ok(served) => {
                self.audit.vend(|| Vend {
                    at: now,
                    listener: self.listener,
                    protocol: "container",
                    role: name.into(),
                    access_key_id: served.access_key_id.clone(),
                    client: *client,
                });
                response::json(StatusCode::OK, served.container_body.clone())
            }
            Err(snap) => {
                let (code, message) = snap.unavailable(name);
                response::json_error(StatusCode::SERVICE_UNAVAILABLE, &code, &message)
            }
        }
    }
}

impl crate::server::Handler for Endpoint {
    fn allowed_uids(&self) -> Option<&[u32]> {
        self.allow_uids.as_deref()
    }

    fn throttled(&self) -> HttpResponse {
        self.stats
            .record(RequestKind::Throttled, StatusCode::TOO_MANY_REQUESTS);
        let mut r = response::json_error(
            StatusCode::TOO_MANY_REQUESTS,
            "Throttling",
            "too many requests from this client; retry in a second",
        );
        r.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("1"),
        );
        r
    }

    async fn handle(&self, req: Request<()>, client: &Client) -> HttpResponse {
        self.respond(req, client).await
    }
}

/// The `Host` and browser checks of every endpoint, and no request relayed
/// by a proxy (an SSRF through a proxy on this host must not reach a role).
fn refusal(
    hosts: &HostAllowList,
    target: &http::Uri,
    headers: &HeaderMap,
) -> Option<HttpResponse> {
    let refused = |message: &str| {
        Some(response::json_error(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            message,
        ))
    };
    let reason = |r: Refusal| match r {
        Refusal::MissingHost => "the request has no Host header",
        Refusal::DuplicateHost => "the request has more than one Host header",
        Refusal::RepeatedHeader => "the request has more than one Authorization header",
        Refusal::ForeignHost => "the Host does not name this listener",
        Refusal::Browser => "requests from a web browser are refused",
    };
    let single = [AUTHORIZATION];
    match guard::check(hosts, target, headers, &single) {
        Some(r) => {
            let code = if r.status() == StatusCode::FORBIDDEN {
                "AccessDenied"
            } else {
                "BadRequest"
            };
            Some(response::json_error(r.status(), code, reason(r)))
        }
        None if headers.contains_key(FORWARDED_FOR) => {
            refused("requests relayed by a proxy (X-Forwarded-For) are refused")
        }
        None => None,
    }
}

/// `None` when `Authorization` is exactly the role's token; else the 403.
fn check_authorization(
    role: &ServedRole,
    name: &str,
    headers: &HeaderMap,
    now: DateTime<Utc>,
) -> Option<HttpResponse> {
    let message = match headers.get(AUTHORIZATION) {
        Some(value) if role.token.accepts(value.as_bytes(), now) => return None,
        Some(_) => format!("the Authorization header is not role `{name}`'s token"),
        None => format!(
            "role `{name}` needs its token in the Authorization header \
             (AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE)"
        ),
    };
    Some(response::json_error(
        StatusCode::FORBIDDEN,
        "AccessDenied",
        &message,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn proxied_foreign_and_browser_requests_are_refused() {
        let hosts = HostAllowList::for_listener("127.0.0.1:9".parse().unwrap());
        let target: http::Uri = "/role/dev".parse().unwrap();
        assert!(refusal(&hosts, &target, &headers(&[("host", "127.0.0.1:9")])).is_none());
        for h in [
            headers(&[("host", "evil:9")]),
            headers(&[("host", "127.0.0.1:9"), ("x-forwarded-for", "10.0.0.1")]),
            headers(&[("host", "127.0.0.1:9"), ("origin", "http://x")]),
        ] {
            let r = refusal(&hosts, &target, &h).expect("refused");
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{h:?}");
        }
        let r = refusal(&hosts, &target, &headers(&[])).unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let twice = headers(&[
            ("host", "127.0.0.1:9"),
            ("authorization", "a"),
            ("authorization", "b"),
        ]);
        let r = refusal(&hosts, &target, &twice).unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn authorization_must_be_the_roles_token() {
        let role = ServedRole {
            slot: RoleSlot::new("dev"),
            token: RoleToken::new(Secret::new("tok")),
        };
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        assert!(
            check_authorization(&role, "dev", &headers(&[("authorization", "tok")]), now)
                .is_none()
        );
        for h in [
            headers(&[]),
            headers(&[("authorization", "nope")]),
            headers(&[("authorization", "Bearer tok")]),
        ] {
            let r = check_authorization(&role, "dev", &h, now).expect("denied");
            assert_eq!(r.status(), StatusCode::FORBIDDEN);
        }
    }
}
