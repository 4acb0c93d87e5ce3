//! The optional admin listener: `/healthz`, `/readyz` and `/metrics`.
//!
//! Off unless `[admin] listen` is set. It carries no secrets (key ids are
//! not even shown here), so it needs no token; it does check `Host` like
//! the IMDS listeners, and is loopback-only unless explicitly opened.

use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, Request, StatusCode};

use crate::clock::SharedClock;
use crate::metrics::Metrics;
use crate::server::guard::{self, HostAllowList};
use crate::server::response::{HttpResponse, text};
use crate::view::View;

/// Answers health and metrics requests.
#[derive(Debug)]
pub(crate) struct Admin {
    hosts: HostAllowList,
    view: Arc<ArcSwap<View>>,
    metrics: Arc<Metrics>,
    clock: SharedClock,
}

impl Admin {
    pub(crate) fn new(
        hosts: HostAllowList,
        view: Arc<ArcSwap<View>>,
        metrics: Arc<Metrics>,
        clock: SharedClock,
    ) -> Self {
        Admin {
            hosts,
            view,
            metrics,
            clock,
        }
    }

    pub(crate) fn respond<B>(&self, req: &Request<B>) -> HttpResponse {
        // Role names and error codes are not for a DNS-rebinding page.
        if guard::check(&self.hosts, req.uri(), req.headers(), &[]).is_some() {
            return text(StatusCode::FORBIDDEN, Bytes::from_static(b"forbidden\n"));
        }
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return text(
                StatusCode::METHOD_NOT_ALLOWED,
                Bytes::from_static(b"method not allowed\n"),
            );
        }
        match req.uri().path().trim_end_matches('/') {
            "/healthz" => text(StatusCode::OK, Bytes::from_static(b"ok\n")),
            "/readyz" => self.readyz(),
            "/metrics" => self.metrics(),
            _ => text(
                StatusCode::NOT_FOUND,
                Bytes::from_static(b"not found: try /healthz, /readyz or /metrics\n"),
            ),
        }
    }

    /// 200 when every role a listener serves has usable credentials.
    fn readyz(&self) -> HttpResponse {
        let view = self.view.load();
        let (ready, roles) = view.readiness(self.clock.now());
        let lines: String = roles
            .iter()
            .map(|(name, usable)| {
                format!("{name}: {}\n", if *usable { "ready" } else { "not ready" })
            })
            .collect();
        let status = if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        text(status, Bytes::from(lines))
    }

    fn metrics(&self) -> HttpResponse {
        let view = self.view.load();
        let snaps: Vec<_> = view
            .roles
            .load()
            .values()
            .map(|s| (s.clone(), s.load_full()))
            .collect();
        let expiries = snaps.iter().map(|(slot, snap)| {
            (slot.name(), snap.served.as_ref().map(|s| s.expiration))
        });
        let body = self.metrics.render(expiries, self.clock.now());
        let mut response = text(StatusCode::OK, Bytes::from(body));
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        response
    }
}

impl crate::server::Handler for Admin {
    async fn handle(
        &self,
        req: Request<()>,
        _client: &crate::server::Client,
    ) -> HttpResponse {
        self.respond(&req)
    }
}
