//! The scaffold both credentials protocols (IMDS, container) run in: the
//! one place that owns what every credentials request goes through.
//!
//! A protocol ([`Protocol`]: `imds::endpoint`, `container::endpoint`)
//! only routes a request head and answers what it can alone (its guard,
//! tokens, metadata, errors); a credentials request that passed its checks
//! comes back as [`Answer::Credentials`], and [`Endpoint`] does the rest,
//! the same way for both: (on-demand activation will go here,) the
//! servable check with its bounded wait, the audit record, the 200 or the
//! 503, and the listener's request counters. [`Endpoint`] is the
//! [`crate::server::Handler`] the server calls; nothing else answers a
//! credentials listener's requests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use http::header::{HeaderValue, RETRY_AFTER};
use http::request::Parts;
use http::{Request, StatusCode};

use crate::audit::{Audit, Vend};
use crate::clock::SharedClock;
use crate::metrics::{RequestKind, RequestStats};
use crate::refresh::activation::Activator;
use crate::refresh::slot::RoleSlot;
use crate::refresh::store::{Failure, Served, Snapshot};
use crate::server::{Client, Handler, HttpResponse};

/// How long a credentials request may wait for an in-flight refresh: well
/// under the 1 s that botocore, JS, Java and Rust allow for the whole call,
/// and under Go's 500 ms response-header timeout.
pub(crate) const DEFAULT_WAIT: Duration = Duration::from_millis(400);

/// One credentials protocol: routing, its own checks and its wire format.
pub(crate) trait Protocol: Send + Sync + 'static {
    /// `imds` or `container`, as the audit trail names it.
    const NAME: &'static str;

    /// Routes `head` at `now` and answers everything but the credentials
    /// themselves. `stats` takes what only the protocol knows (IMDS
    /// versions); the scaffold records the request itself.
    fn route<'a>(
        &'a self,
        head: &'a Parts,
        now: DateTime<Utc>,
        stats: &RequestStats,
    ) -> (RequestKind, Answer<'a>);

    /// The 200 carrying `served`.
    fn credentials(&self, served: &Served) -> HttpResponse;

    /// The 503 saying why `role` has nothing to serve.
    fn unavailable(&self, role: &str, snap: &Snapshot) -> HttpResponse;

    /// The 429 page (the scaffold adds `Retry-After`).
    fn throttled(&self) -> HttpResponse;
}

/// What a protocol made of a request.
pub(crate) enum Answer<'a> {
    /// Answered by the protocol alone.
    Done(HttpResponse),
    /// The credentials of a role this listener serves, asked for with
    /// everything the protocol checks (token, `Authorization`) in order.
    Credentials {
        role: &'a str,
        slot: &'a Arc<RoleSlot>,
    },
    /// Credentials a role replaced by a reload still holds, handed out
    /// under its old name for a grace time. Unlike [`Answer::Credentials`]
    /// nothing is waited for, poked or activated: that role's refresher is
    /// stopped, so only what it already holds can be served.
    Retired { role: &'a str, served: Arc<Served> },
    /// An on-demand role that is parked, asked for with its token: the
    /// daemon starts it and the request waits for its first credentials
    /// (within the same bounded wait).
    Activate {
        role: &'a str,
        activator: &'a Activator,
    },
}

/// What every credentials listener has besides its protocol.
pub(crate) struct EndpointSpec {
    /// Serve only these local users (`None`: anyone who connects).
    pub(crate) allow_uids: Option<Vec<u32>>,
    pub(crate) clock: SharedClock,
    /// The longest a credentials request waits for a refresh.
    pub(crate) wait_limit: Duration,
    /// The listener's counters; kept across reloads.
    pub(crate) stats: Arc<RequestStats>,
    /// The listener's address, for the audit trail.
    pub(crate) listener: SocketAddr,
    pub(crate) audit: Audit,
}

/// One credentials listener: the shared sequence around protocol `P`.
#[derive(Debug)]
pub(crate) struct Endpoint<P> {
    protocol: P,
    allow_uids: Option<Vec<u32>>,
    clock: SharedClock,
    wait_limit: Duration,
    stats: Arc<RequestStats>,
    listener: SocketAddr,
    audit: Audit,
}

impl<P: Protocol> Endpoint<P> {
    pub(crate) fn new(spec: EndpointSpec, protocol: P) -> Self {
        Endpoint {
            protocol,
            allow_uids: spec.allow_uids,
            clock: spec.clock,
            wait_limit: spec.wait_limit,
            stats: spec.stats,
            listener: spec.listener,
            audit: spec.audit,
        }
    }

    /// The protocol's own state (a reload builds on it).
    pub(crate) fn protocol(&self) -> &P {
        &self.protocol
    }

    /// Answers one request head, and counts it.
    pub(crate) async fn respond(
        &self,
        req: Request<()>,
        client: &Client,
    ) -> HttpResponse {
        let (head, ()) = req.into_parts();
        // One clock read serves the protocol's checks and the answer.
        let now = self.clock.now();
        let (kind, answer) = self.protocol.route(&head, now, &self.stats);
        let response = match answer {
            Answer::Done(response) => response,
            Answer::Credentials { role, slot } => {
                self.vend(role, slot, now, client).await
            }
            Answer::Retired { role, served } => {
                self.hand_out(role, &served, now, client).await
            }
            Answer::Activate { role, activator } => {
                self.activate(role, activator, now, client).await
            }
        };
        self.stats.record(kind, response.status());
        response
    }

    /// The credentials sequence: the role's usable credentials (after a
    /// bounded wait for a refresh in flight or overdue), else the 503
    /// saying why there are none.
    async fn vend(
        &self,
        role: &str,
        slot: &RoleSlot,
        now: DateTime<Utc>,
        client: &Client,
    ) -> HttpResponse {
        self.serve_within(role, slot, now, client, self.wait_limit)
            .await
    }

    /// A parked on-demand role: the daemon starts it, and its first
    /// credentials are served if they come within the bounded wait; else a
    /// 503 the SDKs retry, and the role goes on starting.
    async fn activate(
        &self,
        role: &str,
        activator: &Activator,
        now: DateTime<Utc>,
        client: &Client,
    ) -> HttpResponse {
        let started = tokio::time::Instant::now();
        let snap =
            match tokio::time::timeout(self.wait_limit, activator.activate(role)).await {
                Ok(Ok(slot)) => {
                    let left = self.wait_limit.saturating_sub(started.elapsed());
                    return self.serve_within(role, &slot, now, client, left).await;
                }
                Ok(Err(message)) => Snapshot {
                    failure: Some(Failure {
                        code: "ActivationFailed".into(),
                        message,
                        at: now,
                    }),
                    ..Snapshot::default()
                },
                Err(_) => Snapshot {
                    waiting_for: Some("starting on demand; retry in a moment".into()),
                    ..Snapshot::default()
                },
            };
        self.protocol.unavailable(role, &snap)
    }

    /// The role's usable credentials after a wait of at most `limit`, else
    /// the 503 saying why there are none. A vend is a use: it keeps an
    /// on-demand role from parking.
    async fn serve_within(
        &self,
        role: &str,
        slot: &RoleSlot,
        now: DateTime<Utc>,
        client: &Client,
        limit: Duration,
    ) -> HttpResponse {
        match slot.servable(&self.clock, now, limit).await {
            Ok(served) => {
                slot.note_use(now);
                self.hand_out(role, &served, now, client).await
            }
            Err(snap) => self.protocol.unavailable(role, &snap),
        }
    }

    /// The 200 with `role`'s credentials, recorded in the audit trail
    /// (before the answer: the client is still connected).
    async fn hand_out(
        &self,
        role: &str,
        served: &Served,
        now: DateTime<Utc>,
        client: &Client,
    ) -> HttpResponse {
        self.audit
            .vend(|| Vend {
                at: now,
                listener: self.listener,
                protocol: P::NAME,
                role: role.into(),
                access_key_id: served.access_key_id.clone(),
                client: client.clone(),
                process: None,
            })
            .await;
        self.protocol.credentials(served)
    }
}

impl<P: Protocol> Handler for Endpoint<P> {
    fn allowed_uids(&self) -> Option<&[u32]> {
        self.allow_uids.as_deref()
    }

    fn throttled(&self) -> HttpResponse {
        self.stats
            .record(RequestKind::Throttled, StatusCode::TOO_MANY_REQUESTS);
        let mut response = self.protocol.throttled();
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
        response
    }

    async fn handle(&self, req: Request<()>, client: &Client) -> HttpResponse {
        self.respond(req, client).await
    }
}
