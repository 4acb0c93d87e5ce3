//! One container listener's protocol: guard, route, token check, and every
//! answer but the credentials sequence, which `crate::endpoint` runs for
//! both protocols.
//!
//! The body is rendered when credentials are published, so the hot path is
//! a few header lookups, a constant-time compare, an atomic load and a
//! refcount bump. Every error is `{"Code","Message"}` JSON, which the SDKs
//! show their users: 403 for a missing or wrong `Authorization` (not
//! retried by SDKs), 404 for an unknown role, 503 when the role has nothing
//! servable.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use http::header::{AUTHORIZATION, HeaderName};
use http::request::Parts;
use http::{HeaderMap, StatusCode};

use super::route::{Route, route};
use super::tokens::RoleToken;
use crate::endpoint::{Answer, Protocol};
use crate::metrics::{RequestKind, RequestStats};
use crate::refresh::activation::Activator;
use crate::refresh::slot::RoleSlot;
use crate::refresh::store::{Served, Snapshot};
use crate::server::guard::{self, HostAllowList, Refusal};
use crate::server::response::{self, HttpResponse};

const FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// One role on a container listener.
#[derive(Debug, Clone)]
pub(crate) struct ServedRole {
    pub(crate) slot: Arc<RoleSlot>,
    pub(crate) token: RoleToken,
}

/// On-demand roles a listener can start: their tokens (checked like a
/// running role's), and whom to ask.
#[derive(Debug, Clone)]
pub(crate) struct Parked {
    pub(crate) tokens: BTreeMap<String, RoleToken>,
    pub(crate) activator: Activator,
}

/// What one container listener serves and how (the protocol inside
/// [`crate::endpoint::Endpoint`]).
#[derive(Debug)]
pub(crate) struct Container {
    roles: BTreeMap<String, ServedRole>,
    hosts: HostAllowList,
    /// Boxed: most listeners have none.
    parked: Option<Box<Parked>>,
}

impl Container {
    pub(crate) fn new(roles: BTreeMap<String, ServedRole>, hosts: HostAllowList) -> Self {
        Container {
            roles,
            hosts,
            parked: None,
        }
    }

    /// The same, also starting the `parked` on-demand roles on request.
    pub(crate) fn with_parked(mut self, parked: Parked) -> Self {
        self.parked = Some(Box::new(parked));
        self
    }

    /// The roles served, with their tokens (a reload builds on them).
    pub(crate) fn roles(&self) -> &BTreeMap<String, ServedRole> {
        &self.roles
    }

    /// `/role/NAME`: the token check; the scaffold serves what passes it.
    fn role_credentials<'a>(
        &'a self,
        name: &'a str,
        headers: &HeaderMap,
        now: DateTime<Utc>,
    ) -> Answer<'a> {
        if let Some(role) = self.roles.get(name) {
            return match check_authorization(&role.token, name, headers, now) {
                Some(denied) => Answer::Done(denied),
                None => Answer::Credentials {
                    role: name,
                    slot: &role.slot,
                },
            };
        }
        let parked = self
            .parked
            .as_ref()
            .and_then(|p| Some((p.tokens.get(name)?, &p.activator)));
        let Some((token, activator)) = parked else {
            let message = format!("no role `{name}` is served on this listener");
            return Answer::Done(response::json_error(
                StatusCode::NOT_FOUND,
                "NotFound",
                &message,
            ));
        };
        match check_authorization(token, name, headers, now) {
            Some(denied) => Answer::Done(denied),
            None => Answer::Activate {
                role: name,
                activator,
            },
        }
    }
}

impl Protocol for Container {
    const NAME: &'static str = "container";

    fn route<'a>(
        &'a self,
        head: &'a Parts,
        now: DateTime<Utc>,
        _stats: &RequestStats,
    ) -> (RequestKind, Answer<'a>) {
        if let Some(refused) = refusal(&self.hosts, &head.uri, &head.headers) {
            return (RequestKind::Refused, Answer::Done(refused));
        }
        match route(&head.method, head.uri.path()) {
            Route::Credentials(name) => (
                RequestKind::Credentials,
                self.role_credentials(name, &head.headers, now),
            ),
            Route::MethodNotAllowed => (
                RequestKind::MethodNotAllowed,
                Answer::Done(response::json_error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "MethodNotAllowed",
                    "only GET is served",
                )),
            ),
            Route::NotFound => (
                RequestKind::NotFound,
                Answer::Done(response::json_error(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    "credentials are served at /role/NAME",
                )),
            ),
        }
    }

    fn credentials(&self, served: &Served) -> HttpResponse {
        response::json(StatusCode::OK, served.container_body.clone())
    }

    fn unavailable(&self, role: &str, snap: &Snapshot) -> HttpResponse {
        let (code, message) = snap.unavailable(role);
        response::json_error(StatusCode::SERVICE_UNAVAILABLE, &code, &message)
    }

    fn throttled(&self) -> HttpResponse {
        response::json_error(
            StatusCode::TOO_MANY_REQUESTS,
            "Throttling",
            "too many requests from this client; retry in a second",
        )
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
    token: &RoleToken,
    name: &str,
    headers: &HeaderMap,
    now: DateTime<Utc>,
) -> Option<HttpResponse> {
    let message = match headers.get(AUTHORIZATION) {
        Some(value) if token.accepts(value.as_bytes(), now) => return None,
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
    use crate::server::guard::headers;

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
        let token = RoleToken::new(Secret::new("tok"));
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        assert!(
            check_authorization(
                &token,
                "dev",
                &headers(&[("authorization", "tok")]),
                now
            )
            .is_none()
        );
        for h in [
            headers(&[]),
            headers(&[("authorization", "nope")]),
            headers(&[("authorization", "Bearer tok")]),
        ] {
            let r = check_authorization(&token, "dev", &h, now).expect("denied");
            assert_eq!(r.status(), StatusCode::FORBIDDEN);
        }
    }
}
