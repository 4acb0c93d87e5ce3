//! One IMDS listener's request handling: guard, route, token check, answer.
//!
//! Everything a GET returns is either rendered when the listener starts
//! (role name, region, identity document) or when credentials are
//! published (the credentials document), so the hot path is a few header
//! lookups, an HMAC, an atomic load and a refcount bump.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::header::{ACCEPT_RANGES, ALLOW, HeaderName, HeaderValue, SERVER};
use http::{HeaderMap, Request, StatusCode};

use super::render::{self, InstanceFacts};
use super::route::{Route, route};
use super::token::{self, TokenCheck, TokenKey};
use crate::audit::{Audit, Vend};
use crate::clock::SharedClock;
use crate::creds::store::{RoleSlot, Served, Snapshot};
use crate::metrics::{RequestKind, RequestStats};
use crate::server::Client;
use crate::server::guard::{self, HostAllowList, Refusal};
use crate::server::response::{self, HttpResponse};

pub(crate) const TOKEN_HEADER: HeaderName =
    HeaderName::from_static("x-aws-ec2-metadata-token");
pub(crate) const TTL_HEADER: HeaderName =
    HeaderName::from_static("x-aws-ec2-metadata-token-ttl-seconds");
const FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// How long a credentials request may wait for an in-flight refresh: well
/// under the 1 s that botocore, JS, Java and Rust allow for the whole call,
/// and under Go's 500 ms response-header timeout.
pub(crate) const DEFAULT_WAIT: Duration = Duration::from_millis(400);

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

/// What one listener serves and how.
#[derive(Debug)]
pub(crate) struct Endpoint {
    role: Arc<RoleSlot>,
    allow_v1: bool,
    allow_uids: Option<Vec<u32>>,
    hosts: HostAllowList,
    key: Arc<TokenKey>,
    clock: SharedClock,
    rendered: Rendered,
    started: DateTime<Utc>,
    wait_limit: Duration,
    logged_v1: AtomicBool,
    stats: Arc<RequestStats>,
    previous: Option<(Arc<RoleSlot>, DateTime<Utc>)>,
    listener: SocketAddr,
    audit: Audit,
}

/// Everything needed to build an [`Endpoint`].
pub(crate) struct EndpointSpec {
    pub(crate) role: Arc<RoleSlot>,
    pub(crate) role_arn: String,
    pub(crate) allow_v1: bool,
    pub(crate) allow_uids: Option<Vec<u32>>,
    pub(crate) hosts: HostAllowList,
    pub(crate) key: Arc<TokenKey>,
    pub(crate) clock: SharedClock,
    pub(crate) region: String,
    pub(crate) instance_id: String,
    pub(crate) wait_limit: Duration,
    /// The listener's counters; kept across reloads.
    pub(crate) stats: Arc<RequestStats>,
    /// The role this listener served before a reload renamed it, still
    /// answered under its old name until the given time, so a client that
    /// read the old name a moment ago does not fail.
    pub(crate) previous: Option<(Arc<RoleSlot>, DateTime<Utc>)>,
    /// The listener's address, for the audit trail.
    pub(crate) listener: SocketAddr,
    pub(crate) audit: Audit,
}

/// How long a listener keeps answering for the role it served before a
/// reload switched it to another one.
pub(crate) const RENAME_GRACE: chrono::TimeDelta = chrono::TimeDelta::seconds(30);

impl Endpoint {
    pub(crate) fn new(spec: EndpointSpec) -> Self {
        let started = spec.clock.now();
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
        Endpoint {
            role: spec.role,
            allow_v1: spec.allow_v1,
            allow_uids: spec.allow_uids,
            hosts: spec.hosts,
            key: spec.key,
            clock: spec.clock,
            rendered,
            started,
            wait_limit: spec.wait_limit,
            logged_v1: AtomicBool::new(false),
            stats: spec.stats,
            previous: spec.previous,
            listener: spec.listener,
            audit: spec.audit,
        }
    }

    pub(crate) fn role(&self) -> &Arc<RoleSlot> {
        &self.role
    }

    /// Keeps answering for `role` under its own name until `until`.
    pub(crate) fn keep_previous(&mut self, role: Arc<RoleSlot>, until: DateTime<Utc>) {
        self.previous = Some((role, until));
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
        let single = [TOKEN_HEADER, TTL_HEADER];
        if let Some(refusal) =
            guard::check(&self.hosts, &parts.uri, &parts.headers, &single)
        {
            return (RequestKind::Refused, refused(refusal));
        }
        let route = route(&parts.method, parts.uri.path());
        let kind = request_kind(&route);
        // One clock read serves the token check and the answer.
        let now = self.clock.now();
        if route.needs_token()
            && let Some(denied) = self.check_token(&parts.headers, parts.uri.path(), now)
        {
            return (kind, denied);
        }
        (
            kind,
            self.answer_route(route, &parts.headers, now, client).await,
        )
    }

    async fn answer_route(
        &self,
        route: Route<'_>,
        headers: &HeaderMap,
        now: DateTime<Utc>,
        client: &Client,
    ) -> HttpResponse {
        match route {
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
            Route::Credentials(name) => self.credentials(name, now, client).await,
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
        }
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
    ) -> Option<HttpResponse> {
        match headers.get(TOKEN_HEADER) {
            Some(token) => match self.key.verify(token.as_bytes(), now) {
                TokenCheck::Valid { .. } => {
                    self.stats.record_version(true);
                    None
                }
                TokenCheck::Expired | TokenCheck::Invalid => {
                    Some(error_page(StatusCode::UNAUTHORIZED))
                }
            },
            None if self.allow_v1 => {
                self.stats.record_version(false);
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

    /// `iam/security-credentials/<role>`: the current snapshot, or a short
    /// wait for an in-flight refresh, or 503 saying what failed.
    async fn credentials(
        &self,
        name: &str,
        now: DateTime<Utc>,
        client: &Client,
    ) -> HttpResponse {
        if name != self.role.name() {
            return self.previous_role(name, now, client);
        }
        match self.role.servable(&self.clock, now, self.wait_limit).await {
            Ok(served) => self.vend(name, &served, now, client),
            Err(snap) => unavailable(self.role.name(), &snap),
        }
    }

    /// The role served before a reload renamed it, during the grace time.
    fn previous_role(
        &self,
        name: &str,
        now: DateTime<Utc>,
        client: &Client,
    ) -> HttpResponse {
        let served = self
            .previous
            .as_ref()
            .filter(|(slot, until)| slot.name() == name && now < *until)
            .and_then(|(slot, _)| slot.load().usable(now).cloned());
        match served {
            Some(served) => self.vend(name, &served, now, client),
            None => error_page(StatusCode::NOT_FOUND),
        }
    }

    /// The 200 with `role`'s credentials, recorded in the audit trail.
    fn vend(
        &self,
        role: &str,
        served: &Served,
        now: DateTime<Utc>,
        client: &Client,
    ) -> HttpResponse {
        self.audit.vend(|| Vend {
            at: now,
            listener: self.listener,
            protocol: "imds",
            role: role.into(),
            access_key_id: served.access_key_id.clone(),
            client: *client,
        });
        text(StatusCode::OK, served.imds_body.clone())
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

impl crate::server::Handler for Endpoint {
    fn allowed_uids(&self) -> Option<&[u32]> {
        self.allow_uids.as_deref()
    }

    fn throttled(&self) -> HttpResponse {
        self.stats
            .record(RequestKind::Throttled, StatusCode::TOO_MANY_REQUESTS);
        let mut r = error_page(StatusCode::TOO_MANY_REQUESTS);
        r.headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
        r
    }

    async fn handle(&self, req: Request<()>, client: &Client) -> HttpResponse {
        self.respond(req, client).await
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
