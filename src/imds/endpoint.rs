//! One IMDS listener's protocol: guard, route, token check, and every
//! answer but the credentials sequence, which `crate::endpoint` runs for
//! both protocols.
//!
//! Everything a GET returns is either rendered when the listener starts
//! (role name, region, identity document) or when credentials are
//! published (the credentials document), so the hot path is a few header
//! lookups, an HMAC, an atomic load and a refcount bump.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::header::{ACCEPT_RANGES, ALLOW, HeaderName, HeaderValue, SERVER};
use http::request::Parts;
use http::{HeaderMap, StatusCode};

use super::render::{self, InstanceFacts};
use super::route::{Route, route};
use super::token::{self, TokenCheck, TokenKey, Verified};
use crate::endpoint::{Answer, Protocol};
use crate::metrics::{RequestKind, RequestStats};
use crate::refresh::slot::RoleSlot;
use crate::refresh::store::{Served, Snapshot};
use crate::server::guard::{self, HostAllowList, Refusal};
use crate::server::response::{self, HttpResponse};

pub(crate) const TOKEN_HEADER: HeaderName =
    HeaderName::from_static("x-aws-ec2-metadata-token");
pub(crate) const TTL_HEADER: HeaderName =
    HeaderName::from_static("x-aws-ec2-metadata-token-ttl-seconds");
const FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// A listener's fixed answers, rendered once.
#[derive(Debug)]
struct Rendered {
    role_name: Bytes,
    region: Bytes,
    availability_zone: Bytes,
    instance_id: Bytes,
    identity_document: Bytes,
    instance_profile_arn: String,
    instance_profile_id: String,
}

/// What one IMDS listener serves and how (the protocol inside
/// [`crate::endpoint::Endpoint`]).
#[derive(Debug)]
pub(crate) struct Imds {
    role: Arc<RoleSlot>,
    allow_v1: bool,
    hosts: HostAllowList,
    key: Arc<TokenKey>,
    /// Tokens that verified lately (the key's answer, remembered).
    verified: Verified,
    rendered: Rendered,
    started: DateTime<Utc>,
    logged_v1: AtomicBool,
    previous: Option<(Arc<RoleSlot>, DateTime<Utc>)>,
}

/// Everything needed to build an [`Imds`].
pub(crate) struct ImdsSpec {
    pub(crate) role: Arc<RoleSlot>,
    pub(crate) role_arn: String,
    pub(crate) allow_v1: bool,
    pub(crate) hosts: HostAllowList,
    pub(crate) key: Arc<TokenKey>,
    /// When the listener started: the identity document's `pendingTime`.
    pub(crate) started: DateTime<Utc>,
    pub(crate) region: String,
    pub(crate) instance_id: String,
    /// The role this listener served before a reload renamed it, still
    /// answered under its old name until the given time, so a client that
    /// read the old name a moment ago does not fail.
    pub(crate) previous: Option<(Arc<RoleSlot>, DateTime<Utc>)>,
}

/// How long a listener keeps answering for the role it served before a
/// reload switched it to another one.
pub(crate) const RENAME_GRACE: chrono::TimeDelta = chrono::TimeDelta::seconds(30);

impl Imds {
    pub(crate) fn new(spec: ImdsSpec) -> Self {
        let started = spec.started;
        let account_id = spec
            .role_arn
            .split(':')
            .nth(4)
            .unwrap_or("000000000000")
            .to_string();
        let facts = InstanceFacts {
            account_id: account_id.clone(),
            region: spec.region.clone(),
            instance_id: spec.instance_id.clone(),
            started,
        };
        let role_name = spec.role.name().to_string();
        let rendered = Rendered {
            instance_profile_arn: format!(
                "arn:aws:iam::{account_id}:instance-profile/{role_name}"
            ),
            instance_profile_id: render::instance_profile_id(&spec.instance_id),
            role_name: Bytes::from(role_name),
            availability_zone: Bytes::from(facts.availability_zone()),
            region: Bytes::from(spec.region),
            instance_id: Bytes::from(spec.instance_id),
            identity_document: Bytes::from(render::identity_document(&facts)),
        };
        Imds {
            role: spec.role,
            allow_v1: spec.allow_v1,
            hosts: spec.hosts,
            key: spec.key,
            verified: Verified::default(),
            rendered,
            started,
            logged_v1: AtomicBool::new(false),
            previous: spec.previous,
        }
    }

    pub(crate) fn role(&self) -> &Arc<RoleSlot> {
        &self.role
    }

    /// Everything but the token check: the answer to an allowed `route`.
    fn answer_route<'a>(
        &'a self,
        route: Route<'a>,
        headers: &HeaderMap,
        now: DateTime<Utc>,
    ) -> Answer<'a> {
        let response = match route {
            Route::Credentials(name) => return self.security_credentials(name, now),
            Route::Token => self.token(headers, now),
            Route::TokenOptions => {
                with_allow(text(StatusCode::OK, Bytes::new()), "OPTIONS, PUT")
            }
            Route::TokenMethodNotAllowed => {
                with_allow(error_page(StatusCode::METHOD_NOT_ALLOWED), "OPTIONS, PUT")
            }
            Route::MethodNotAllowed => {
                with_allow(error_page(StatusCode::METHOD_NOT_ALLOWED), "GET, HEAD")
            }
            Route::Listing(body) => {
                text(StatusCode::OK, Bytes::from_static(body.as_bytes()))
            }
            Route::RoleName => text(StatusCode::OK, self.rendered.role_name.clone()),
            Route::IamInfo => self.iam_info(),
            Route::InstanceId => text(StatusCode::OK, self.rendered.instance_id.clone()),
            Route::AvailabilityZone => {
                text(StatusCode::OK, self.rendered.availability_zone.clone())
            }
            Route::Region => text(StatusCode::OK, self.rendered.region.clone()),
            Route::IdentityDocument => {
                text(StatusCode::OK, self.rendered.identity_document.clone())
            }
            Route::NotFound => error_page(StatusCode::NOT_FOUND),
        };
        Answer::Done(response)
    }

    /// `PUT /latest/api/token`.
    fn token(&self, headers: &HeaderMap, now: DateTime<Utc>) -> HttpResponse {
        // A request relayed by a reverse proxy (SSRF) must not get a token.
        if headers.contains_key(FORWARDED_FOR) {
            return error_page(StatusCode::FORBIDDEN);
        }
        let ttl =
            match token::parse_ttl(headers.get(TTL_HEADER).map(HeaderValue::as_bytes)) {
                Ok(ttl) => ttl,
                Err(_) => return error_page(StatusCode::BAD_REQUEST),
            };
        let minted = self.key.mint(now, ttl);
        let mut response = text(StatusCode::OK, Bytes::from(minted));
        response
            .headers_mut()
            .insert(TTL_HEADER, HeaderValue::from(ttl));
        response
    }

    /// `None` when the request may proceed; else the 401 to send.
    fn check_token(
        &self,
        headers: &HeaderMap,
        path: &str,
        now: DateTime<Utc>,
        stats: &RequestStats,
    ) -> Option<HttpResponse> {
        match headers.get(TOKEN_HEADER) {
            Some(token) => match self.verified.check(&self.key, token.as_bytes(), now) {
                TokenCheck::Valid { .. } => {
                    stats.record_version(true);
                    None
                }
                TokenCheck::Expired | TokenCheck::Invalid => {
                    Some(error_page(StatusCode::UNAUTHORIZED))
                }
            },
            None if self.allow_v1 => {
                stats.record_version(false);
                self.note_v1(path);
                None
            }
            None => Some(error_page(StatusCode::UNAUTHORIZED)),
        }
    }

    fn note_v1(&self, path: &str) {
        if !self.logged_v1.swap(true, Ordering::Relaxed) {
            tracing::info!(role = %self.role.name(), path, "serving a token-less (IMDSv1) request; later ones are logged at debug level");
        } else {
            tracing::debug!(role = %self.role.name(), path, "token-less (IMDSv1) request");
        }
    }

    /// `iam/security-credentials/<role>`: this listener's role (the
    /// scaffold serves it), or the role a reload renamed during its grace
    /// time, or 404.
    fn security_credentials<'a>(
        &'a self,
        name: &'a str,
        now: DateTime<Utc>,
    ) -> Answer<'a> {
        if name == self.role.name() {
            return Answer::Credentials {
                role: name,
                slot: &self.role,
            };
        }
        let served = self
            .previous
            .as_ref()
            .filter(|(slot, until)| slot.name() == name && now < *until)
            .and_then(|(slot, _)| slot.load().usable(now).cloned());
        match served {
            Some(served) => Answer::Retired { role: name, served },
            None => Answer::Done(error_page(StatusCode::NOT_FOUND)),
        }
    }

    fn iam_info(&self) -> HttpResponse {
        let last_updated = self
            .role
            .load()
            .served
            .as_ref()
            .map_or(self.started, |s| s.last_updated);
        let body = render::iam_info(
            &self.rendered.instance_profile_arn,
            &self.rendered.instance_profile_id,
            last_updated,
        );
        text(StatusCode::OK, Bytes::from(body))
    }
}

impl Protocol for Imds {
    const NAME: &'static str = "imds";

    fn route<'a>(
        &'a self,
        head: &'a Parts,
        now: DateTime<Utc>,
        stats: &RequestStats,
    ) -> (RequestKind, Answer<'a>) {
        let single = [TOKEN_HEADER, TTL_HEADER];
        if let Some(refusal) =
            guard::check(&self.hosts, &head.uri, &head.headers, &single)
        {
            return (RequestKind::Refused, Answer::Done(refused(refusal)));
        }
        let route = route(&head.method, head.uri.path());
        let kind = request_kind(&route);
        if route.needs_token()
            && let Some(denied) =
                self.check_token(&head.headers, head.uri.path(), now, stats)
        {
            return (kind, Answer::Done(denied));
        }
        (kind, self.answer_route(route, &head.headers, now))
    }

    fn credentials(&self, served: &Served) -> HttpResponse {
        text(StatusCode::OK, served.imds_body.clone())
    }

    fn unavailable(&self, role: &str, snap: &Snapshot) -> HttpResponse {
        unavailable(role, snap)
    }

    fn throttled(&self) -> HttpResponse {
        error_page(StatusCode::TOO_MANY_REQUESTS)
    }
}

fn request_kind(route: &Route<'_>) -> RequestKind {
    match route {
        Route::Token | Route::TokenOptions | Route::TokenMethodNotAllowed => {
            RequestKind::Token
        }
        Route::RoleName => RequestKind::RoleName,
        Route::Credentials(_) => RequestKind::Credentials,
        Route::MethodNotAllowed => RequestKind::MethodNotAllowed,
        Route::NotFound => RequestKind::NotFound,
        _ => RequestKind::Metadata,
    }
}

/// The 503 that says why there is nothing to serve.
fn unavailable(role: &str, snap: &Snapshot) -> HttpResponse {
    let (code, message) = snap.unavailable(role);
    with_ec2_headers(response::json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        &code,
        &message,
    ))
}

fn refused(refusal: Refusal) -> HttpResponse {
    error_page(refusal.status())
}

/// A plain-text answer with the headers real IMDS sends. `Connection:
/// close` is deliberately not copied: keep-alive is much faster.
fn text(status: StatusCode, body: Bytes) -> HttpResponse {
    with_ec2_headers(response::text(status, body))
}

fn with_ec2_headers(mut response: HttpResponse) -> HttpResponse {
    let headers = response.headers_mut();
    headers.insert(SERVER, HeaderValue::from_static("EC2ws"));
    headers.insert(ACCEPT_RANGES, HeaderValue::from_static("none"));
    response
}

fn error_page(status: StatusCode) -> HttpResponse {
    let reason = status.canonical_reason().unwrap_or("Error");
    text(
        status,
        Bytes::from(render::error_page(status.as_u16(), reason)),
    )
}

fn with_allow(mut response: HttpResponse, allow: &'static str) -> HttpResponse {
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}
